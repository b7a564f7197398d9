#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# The rlgate demo: installs what is missing, builds, then runs rlgated on one
# end of a veth pair between two network namespaces and floods it from the
# other end while a slow legitimate client talks to it at the same time.
# Prints rlctl status/top/stats and a summary; removes everything on exit.
#
# Nothing of the host is touched: the interfaces live in namespaces rlq-gw
# and rlq-client, the daemon uses its own socket, state and pin directory
# (docs/examples/quickstart.json).
#
# The last line is machine-readable (tests/netns/quickstart_test.sh):
#   RESULT flood_sent=N flood_passed=N flood_dropped=N flood_sources=N
#          flood_seconds=S legit_sent=N legit_passed=N legit_dropped=N
# Exit: 0 when the flood was held to its limit and the legitimate client
# lost nothing; 1 otherwise (or on an error).
set -euo pipefail

usage() {
    cat <<EOF
Usage: sudo $0 [--no-setup] [--build-dir DIR] [--duration S]

Runs the rlgate demo: rlgated on a veth in namespace rlq-gw, a flood from
$FLOOD_SOURCES spoofed sources and a slow legitimate client in namespace
rlq-client; prints rlctl status, top and stats, then cleans everything up.

  --no-setup       skip installing packages and building; use the existing build
  --build-dir DIR  build directory (default: build/default)
  --duration S     seconds of traffic, integer >= 3 (default: 5)
  -h, --help       this help
EOF
}

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
CONFIG="$ROOT/docs/examples/quickstart.json"
BUILD_DIR="$ROOT/build/default"
SETUP=1
DURATION=5

# Must match docs/examples/quickstart.json.
NS_GW=rlq-gw
NS_CLIENT=rlq-client
DEV_GW=rlq-gw
DEV_CLIENT=rlq-client
RUN_DIR=/run/rlgate-quickstart
SOCKET=$RUN_DIR/rlgated.sock
PIN_DIR=/sys/fs/bpf/rlgate-quickstart
GW_ADDR=10.98.0.1
CLIENT_ADDR=10.98.0.2
FLOOD_SRC=10.99.1.0     # default tier: 100 packets/s per source, burst 200
FLOOD_SOURCES=100
FLOOD_RATE=200000       # 2000 packets/s per source
LEGIT_SRC=10.99.0.5     # tier premium (10.99.0.0/28)
LEGIT_RATE=50

while (($#)); do
    case $1 in
        --no-setup) SETUP=0 ;;
        --build-dir)
            [[ $# -ge 2 ]] || { echo "quickstart: --build-dir needs a directory" >&2; exit 1; }
            BUILD_DIR=$(readlink -m "$2")
            shift ;;
        --duration)
            if [[ $# -lt 2 || ! $2 =~ ^[0-9]{1,4}$ ]] || ((10#$2 < 3 || 10#$2 > 3600)); then
                echo "quickstart: --duration needs whole seconds, 3 to 3600" >&2
                exit 1
            fi
            DURATION=$((10#$2))
            shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "quickstart: unknown argument '$1' (see --help)" >&2; exit 1 ;;
    esac
    shift
done

if [[ $EUID -ne 0 ]]; then
    echo "quickstart: must run as root (namespaces, XDP, bpffs): sudo $0 $*" >&2
    exit 1
fi

RLGATED="$BUILD_DIR/userspace/rlgated"
RLCTL_BIN="$BUILD_DIR/userspace/rlctl"
FLOOD="$BUILD_DIR/userspace/tools/rlgate-flood"

step() { printf '\n==> %s\n' "$*"; }
die() { echo "quickstart: $*" >&2; exit 1; }
rlctl() { "$RLCTL_BIN" --socket "$SOCKET" --timeout 5000 "$@"; }

# --- cleanup ---------------------------------------------------------------

# PIDs of rlgated processes (not zombies) started with our config file.
daemon_pids() {
    local dir pid state
    for dir in /proc/[0-9]*; do
        pid=${dir#/proc/}
        [[ $(readlink "$dir/exe" 2>/dev/null) == */rlgated* ]] || continue
        tr '\0' '\n' <"$dir/cmdline" 2>/dev/null | grep -qxF -e "$CONFIG" -e "docs/examples/quickstart.json" || continue
        state=$(awk '/^State:/ {print $2}' "$dir/status" 2>/dev/null) || continue
        [[ $state != Z && -n $state ]] && echo "$pid"
    done
    return 0
}

wait_gone() {  # PIDs: up to 5 s
    local i pid alive
    for ((i = 0; i < 50; i++)); do
        alive=0
        for pid in "$@"; do
            [[ -e /proc/$pid && $(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null) != Z ]] && alive=1
        done
        ((alive)) || return 0
        sleep 0.1
    done
    return 1
}

CHILDREN=()
# Idempotent: also removes what an interrupted earlier run left behind.
cleanup() {
    local - pid pids
    set +e  # remove as much as possible, whatever fails
    for pid in "${CHILDREN[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    pids=$(daemon_pids)
    if [[ -S $SOCKET && -n $pids ]]; then
        echo "  rlctl detach: detach, remove the pinned state, stop rlgated"
        rlctl detach >/dev/null 2>&1 || true
        # shellcheck disable=SC2086  # a list of PIDs
        wait_gone $pids || true
    fi
    for pid in $(daemon_pids); do
        echo "  stopping rlgated (pid $pid)"
        kill "$pid" 2>/dev/null || true
        wait_gone "$pid" || { kill -9 "$pid" 2>/dev/null || true; wait_gone "$pid" || true; }
    done
    if [[ -e $PIN_DIR ]]; then
        echo "  rlgated --cleanup: removing pinned state $PIN_DIR"
        if [[ -x $RLGATED ]]; then
            if [[ -e /run/netns/$NS_GW ]]; then
                nsenter --net="/run/netns/$NS_GW" "$RLGATED" --config "$CONFIG" --cleanup >/dev/null 2>&1 || true
            else
                "$RLGATED" --config "$CONFIG" --cleanup >/dev/null 2>&1 || true
            fi
        fi
        rm -rf "$PIN_DIR"
    fi
    for ns in "$NS_CLIENT" "$NS_GW"; do
        if [[ -e /run/netns/$ns ]]; then
            echo "  deleting namespace $ns"
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
    rm -rf "$RUN_DIR"
    rm -f "${TMP_FILES[@]}"
}

TMP_FILES=()
RESULT_LINE=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
on_exit() {
    local rc=$?
    set +e  # clean up as much as possible, whatever fails
    trap '' INT TERM HUP PIPE
    step "cleaning up"
    cleanup
    if [[ -n $RESULT_LINE ]]; then
        echo "$RESULT_LINE"
    else
        echo "  done"
    fi
    exit "$rc"
}

# --- 1. dependencies and build ---------------------------------------------

cd "$ROOT"
if ((SETUP)); then
    step "installing missing packages (scripts/setup-deps.sh)"
    scripts/setup-deps.sh
    step "building rlgated, rlctl, rlgate-flood in $BUILD_DIR"
    if [[ $BUILD_DIR == "$ROOT/build/default" ]]; then
        cmake --preset default >/dev/null
    else
        cmake --preset default -B "$BUILD_DIR" >/dev/null
    fi
    cmake --build "$BUILD_DIR" --target rlgated rlctl rlgate-flood
fi
for bin in "$RLGATED" "$RLCTL_BIN" "$FLOOD"; do
    [[ -x $bin ]] || die "$bin not found: build first, or run without --no-setup"
done
for tool in ip nsenter awk sed grep; do
    command -v "$tool" >/dev/null || die "$tool not found (run scripts/setup-deps.sh)"
done
[[ -f $CONFIG ]] || die "$CONFIG not found"

if [[ -n $(daemon_pids) || -e $PIN_DIR || -e $RUN_DIR || -e /run/netns/$NS_GW || -e /run/netns/$NS_CLIENT ]]; then
    step "removing leftovers of an earlier run"
    cleanup
fi
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

# --- 2. namespaces ----------------------------------------------------------

step "creating namespaces $NS_GW and $NS_CLIENT, joined by a veth pair"
ip netns add "$NS_GW"
ip netns add "$NS_CLIENT"
# No IPv6 autoconfiguration chatter: the demo counts every packet.
for ns in "$NS_GW" "$NS_CLIENT"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
# Both ends are created inside the namespaces, never in the caller's.
ip link add "$DEV_CLIENT" netns "$NS_CLIENT" type veth peer name "$DEV_GW" netns "$NS_GW"
ip -n "$NS_GW" addr add "$GW_ADDR/24" dev "$DEV_GW"
ip -n "$NS_CLIENT" addr add "$CLIENT_ADDR/24" dev "$DEV_CLIENT"
ip -n "$NS_CLIENT" addr add "$LEGIT_SRC/32" dev "$DEV_CLIENT"
ip -n "$NS_CLIENT" addr add "$FLOOD_SRC/24" dev "$DEV_CLIENT"
for ns_dev in "$NS_GW:$DEV_GW" "$NS_CLIENT:$DEV_CLIENT"; do
    ip -n "${ns_dev%%:*}" link set lo up
    ip -n "${ns_dev%%:*}" link set "${ns_dev#*:}" up
done
ip -n "$NS_GW" route add 10.99.0.0/16 via "$CLIENT_ADDR"
GW_MAC=$(ip -n "$NS_GW" -br link show "$DEV_GW" | awk '{print $3}')
echo "  $NS_GW:     $DEV_GW $GW_ADDR ($GW_MAC)"
echo "  $NS_CLIENT: $DEV_CLIENT $CLIENT_ADDR, $LEGIT_SRC, $FLOOD_SRC/24"

# --- 3. the daemon ----------------------------------------------------------

step "starting rlgated in $NS_GW ($CONFIG)"
# nsenter, not "ip netns exec": that remounts /sys, and the daemon's pins in
# /sys/fs/bpf must be the host's bpffs. rlgated returns once it enforces.
nsenter --net="/run/netns/$NS_GW" "$RLGATED" --config "$CONFIG" || die "rlgated failed to start (exit $?)"
echo "  \$ rlctl --socket $SOCKET status"
rlctl status | sed 's/^./  &/'

# --- 4. traffic ---------------------------------------------------------------

# class_packets TIER VERDICT: packets of `rlctl --json stats` by_class rows (stdin).
class_packets() {
    awk -v tier="$1" -v verdict="$2" '
        /"by_class"[[:space:]]*:/ { inside = 1; next }
        inside && /^[[:space:]]*\]/ { inside = 0 }
        !inside { next }
        /"packets"[[:space:]]*:/ { p = $0; gsub(/[^0-9]/, "", p) }
        /"tier"[[:space:]]*:/ { t = $0; sub(/.*"tier"[[:space:]]*:[[:space:]]*/, "", t); gsub(/[",[:space:]]/, "", t) }
        /"verdict"[[:space:]]*:/ { v = $0; sub(/.*"verdict"[[:space:]]*:[[:space:]]*/, "", v); gsub(/[",[:space:]]/, "", v) }
        /^[[:space:]]*\},?[[:space:]]*$/ { if (t == tier && v == verdict) sum += p; p = 0; t = ""; v = "" }
        END { print sum + 0 }'
}

# json_field NAME: a number of the one-line JSON of rlgate-flood (stdin).
json_field() {
    sed -n "s/.*\"$1\":\([0-9.][0-9.]*\).*/\1/p" | head -n 1
}

before=$(rlctl --json stats) || die "rlctl stats failed"
flood_out=$(mktemp) legit_out=$(mktemp) top_json=$(mktemp)
TMP_FILES+=("$flood_out" "$legit_out" "$top_json")

step "traffic for ${DURATION} s from $NS_CLIENT, both at once"
echo "  flood:             rlgate-flood --src $FLOOD_SRC --sources $FLOOD_SOURCES --rate $FLOOD_RATE" \
    "(tier default: 100 packets/s per source)"
echo "  legitimate client: rlgate-flood --src $LEGIT_SRC --sources 1 --rate $LEGIT_RATE (tier premium)"
ip netns exec "$NS_CLIENT" "$FLOOD" --dev "$DEV_CLIENT" --src "$FLOOD_SRC" --sources "$FLOOD_SOURCES" \
    --dst "$GW_ADDR" --dst-mac "$GW_MAC" --rate "$FLOOD_RATE" --duration "$DURATION" --count 0 --json \
    >"$flood_out" 2>&1 &
flood_pid=$!
CHILDREN+=("$flood_pid")
ip netns exec "$NS_CLIENT" "$FLOOD" --dev "$DEV_CLIENT" --src "$LEGIT_SRC" --sources 1 \
    --dst "$GW_ADDR" --dst-mac "$GW_MAC" --rate "$LEGIT_RATE" --duration "$DURATION" --count 0 --json \
    >"$legit_out" 2>&1 &
legit_pid=$!
CHILDREN+=("$legit_pid")

sleep 1
step "during the flood: the heaviest sources over 1 s"
echo "  \$ rlctl top -n 10"
rlctl --json top -n 1000 --interval 1000 >"$top_json" 2>&1 &
top_pid=$!
rlctl top -n 10 --interval 1000 | sed 's/^./  &/' || true
wait "$top_pid" || true
# The legitimate client's line of the same measurement.
awk -v src="$LEGIT_SRC/32" '
    /"source"[[:space:]]*:/ { s = $0; sub(/.*"source"[[:space:]]*:[[:space:]]*"/, "", s); sub(/".*/, "", s) }
    /"passed_pps"[[:space:]]*:/ { p = $0; sub(/.*:[[:space:]]*/, "", p); sub(/,.*/, "", p) }
    /"dropped_pps"[[:space:]]*:/ { d = $0; sub(/.*:[[:space:]]*/, "", d); sub(/,.*/, "", d) }
    /^[[:space:]]*\},?[[:space:]]*$/ {
        if (s == src) { printf "  legitimate client %s: %.1f passed/s, %.1f dropped/s\n", s, p, d; seen = 1 }
        s = ""; p = 0; d = 0
    }
    END { if (!seen) printf "  legitimate client %s: not among the sources measured\n", src }' "$top_json"

flood_rc=0 legit_rc=0
wait "$flood_pid" || flood_rc=$?
wait "$legit_pid" || legit_rc=$?
CHILDREN=()
((flood_rc == 0)) || die "rlgate-flood (flood) exited $flood_rc: $(cat "$flood_out")"
((legit_rc == 0)) || die "rlgate-flood (legitimate client) exited $legit_rc: $(cat "$legit_out")"
after=$(rlctl --json stats) || die "rlctl stats failed"

step "after the flood: counters"
echo "  \$ rlctl stats"
rlctl stats | sed 's/^./  &/'

# --- 5. summary ---------------------------------------------------------------

delta() {  # TIER VERDICT
    echo $(($(class_packets "$1" "$2" <<<"$after") - $(class_packets "$1" "$2" <<<"$before")))
}
flood_sent=$(json_field sent <"$flood_out")
flood_seconds=$(json_field seconds <"$flood_out")
legit_sent=$(json_field sent <"$legit_out")
[[ -n $flood_sent && -n $legit_sent ]] || die "no report from rlgate-flood: $(cat "$flood_out" "$legit_out")"
flood_passed=$(delta default pass)
flood_dropped=$(delta default drop)
legit_passed=$(delta premium pass)
legit_dropped=$(delta premium drop)
percent=$(awk -v d="$flood_dropped" -v s="$flood_sent" 'BEGIN { printf "%.1f", s ? 100 * d / s : 0 }')

step "summary"
echo "  flood: $flood_sent sent, $flood_dropped dropped ($percent%), $flood_passed passed;" \
    "legitimate client: $legit_sent sent, $legit_passed passed"
# What the default tier lets through: per source a burst of 200, then 100/s.
bound=$(awk -v n="$FLOOD_SOURCES" -v s="$flood_seconds" 'BEGIN { printf "%d", n * (200 + 100 * s) }')
ok=1
if ((flood_passed <= bound + bound / 20)); then
    echo "  OK: the flood sources passed $flood_passed packets, within their limit ($FLOOD_SOURCES x (200 + 100/s x ${flood_seconds} s) = $bound)"
else
    echo "  UNEXPECTED: the flood sources passed $flood_passed packets, over their limit of $bound"
    ok=0
fi
if ((legit_passed == legit_sent && legit_dropped == 0)); then
    echo "  OK: the legitimate client lost nothing"
else
    echo "  UNEXPECTED: the legitimate client lost $((legit_sent - legit_passed)) packets ($legit_dropped dropped by rlgate)"
    ok=0
fi

RESULT_LINE="RESULT flood_sent=$flood_sent flood_passed=$flood_passed flood_dropped=$flood_dropped"
RESULT_LINE+=" flood_sources=$FLOOD_SOURCES flood_seconds=$flood_seconds"
RESULT_LINE+=" legit_sent=$legit_sent legit_passed=$legit_passed legit_dropped=$legit_dropped"
# The EXIT trap cleans up, then prints RESULT_LINE last.
((ok)) && exit 0
exit 1
