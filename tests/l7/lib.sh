# SPDX-License-Identifier: BSD-2-Clause
# shellcheck shell=bash
# Shared by the proxy integration tests of rlgate-l7 (source it after
# `set -euo pipefail`): fail/skip (tests/netns/lib.sh), a temp directory and
# the processes started in it (all ended and removed by the EXIT trap, also
# on failure), free loopback ports, bounded waits, config blocks taken from
# docs/l7-integration.md, and curl requests with their status, headers and
# body kept for assertions.

L7_TESTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../netns/lib.sh
source "$L7_TESTS_DIR/../netns/lib.sh"
INTEGRATION_DOC="$(cd "$L7_TESTS_DIR/../.." && pwd)/docs/l7-integration.md"

WORK=""      # the temp directory (mktemp -d), set by make_workdir
PIDS=()      # processes started by start_bg
PORTS=()     # ports handed out by free_port

# Prints the tail of every log in $WORK: what a failure needs to be understood.
dump_logs() {
    local f
    for f in "$WORK"/*.log; do
        [[ -s $f ]] || continue
        echo "---- ${f##*/} (last 40 lines)" >&2
        tail -n 40 "$f" >&2
    done
}

# Ends one process: TERM, up to 5 s, then KILL (with its children, by id:
# an nginx master's workers).
stop_pid() {
    local pid=$1 child _
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in {1..50}; do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
            kill -KILL "$child" 2>/dev/null || true
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
l7_cleanup() {
    local rc=$? pid
    trap - EXIT
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    if [[ -n $WORK && -d $WORK ]]; then
        ((rc == 0 || rc == 77)) || dump_logs
        rm -rf -- "$WORK"
    fi
    exit "$rc"
}

make_workdir() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/rlgate-l7-test.XXXXXX") || fail "mktemp -d"
    # Traversable (not listable) for nginx workers, which run as nobody under root.
    chmod 711 "$WORK"
    trap l7_cleanup EXIT
    trap 'exit 1' INT TERM
}

# start_bg NAME COMMAND ARGS...: runs COMMAND in the background, output to
# $WORK/NAME.log, and remembers its pid for the cleanup.
start_bg() {
    local name=$1
    shift
    "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=("$!")
}

# A TCP port on 127.0.0.1 nobody accepts on, below the ephemeral range, not
# handed out before by this script.
free_port() {
    local port _ used p
    for _ in {1..100}; do
        port=$((20000 + RANDOM % 12000))
        used=0
        for p in "${PORTS[@]}"; do
            [[ $p == "$port" ]] && used=1
        done
        ((used)) && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            PORTS+=("$port")
            echo "$port"
            return 0
        fi
    done
    fail "no free port on 127.0.0.1"
}

# wait_port PORT NAME: up to 10 s for 127.0.0.1:PORT to accept, failing at
# once if the last process started (NAME) has exited.
wait_port() {
    local port=$1 name=$2 pid=${PIDS[-1]} _
    for _ in {1..200}; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || fail "$name exited before listening on 127.0.0.1:$port"
        sleep 0.05
    done
    fail "$name does not listen on 127.0.0.1:$port after 10 s"
}

# doc_block NAME: the fenced block that follows `<!-- test: NAME -->` in
# docs/l7-integration.md (only blank lines may come between the two).
doc_block() {
    local name=$1 out
    [[ -r $INTEGRATION_DOC ]] || fail "$INTEGRATION_DOC not found"
    # shellcheck disable=SC2016  # an awk program, not shell
    out=$(awk -v marker="<!-- test: $name -->" '
        state == 0 && index($0, marker) == 1 { state = 1; next }
        state == 1 && /^```/ { state = 2; next }
        state == 1 && NF { exit 1 }
        state == 2 && /^```/ { state = 3; exit }
        state == 2 { print }
        END { if (state != 3) exit 1 }' "$INTEGRATION_DOC") ||
        fail "no fenced block right after '<!-- test: $name -->' in $INTEGRATION_DOC"
    printf '%s\n' "$out"
}

# no_placeholders FILE: the doc's ports (8080 public, 8081 rlgate-l7, 9000
# the app) must all have been replaced; a leftover means the doc changed.
no_placeholders() {
    if grep -nwE '8080|8081|9000' "$1" >&2; then
        fail "${1##*/}: a placeholder port of the doc was not substituted (above)"
    fi
}

# req NAME CURL_ARGS... URL: one request; sets STATUS and leaves the headers
# in $WORK/NAME.h, the body in $WORK/NAME.b.
STATUS=""
req() {
    local name=$1
    shift
    STATUS=$(curl -sS --max-time 5 -D "$WORK/$name.h" -o "$WORK/$name.b" -w '%{http_code}' "$@") ||
        fail "curl $* failed"
}

# hdr NAME FIELD: the value of a response header of request NAME ("" if absent).
hdr() {
    awk -v f="$(tr '[:upper:]' '[:lower:]' <<<"$2")" '
        { sub(/\r$/, "") }
        index(tolower($0), f ":") == 1 { v = substr($0, length(f) + 2); sub(/^[ \t]+/, "", v); print v; exit }' \
        "$WORK/$1.h"
}

body() { cat "$WORK/$1.b"; }

# expect_status NAME CODE WHAT
expect_status() {
    [[ $STATUS == "$2" ]] || {
        cat "$WORK/$1.h" "$WORK/$1.b" >&2
        echo >&2
        fail "$3: status $STATUS, expected $2"
    }
}

# expect_header NAME FIELD REGEX WHAT: the header is present and matches.
expect_header() {
    local v
    v=$(hdr "$1" "$2")
    [[ -n $v && $v =~ $3 ]] || {
        cat "$WORK/$1.h" >&2
        fail "$4: $2 is '${v}', expected /$3/"
    }
}

# metric TEXT SERIES: the value of one series of a Prometheus text (0 if absent).
metric() {
    awk -v s="$2" 'index($0, s " ") == 1 { print $2; found = 1; exit } END { if (!found) print 0 }' <<<"$1"
}

# require_tools TOOL...: skip (fail under CI=true) when one is missing.
require_tools() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null || skip "$t not found (scripts/setup-deps.sh --tests installs it)"
    done
}

# l7_user_args: rlgate-l7 refuses root without --user; under root it becomes nobody.
L7_USER_ARGS=()
l7_user_args() {
    if [[ $EUID -eq 0 ]]; then
        id nobody >/dev/null 2>&1 || skip "running as root and there is no user 'nobody' for rlgate-l7 --user"
        L7_USER_ARGS=(--user nobody)
    fi
}

# start_l7 BINARY CONFIG PORT: rlgate-l7, checked first with --check.
start_l7() {
    local bin=$1 cfg=$2 port=$3
    "$bin" --check -c "$cfg" >"$WORK/l7-check.log" 2>&1 || {
        cat "$WORK/l7-check.log" >&2
        fail "rlgate-l7 --check refuses the doc's config"
    }
    start_bg rlgate-l7 "$bin" -c "$cfg" --threads 2 "${L7_USER_ARGS[@]}"
    wait_port "$port" rlgate-l7
}
