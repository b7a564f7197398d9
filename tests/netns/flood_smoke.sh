#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Smoke test of rlgate-flood: two network namespaces joined by a veth pair,
# nothing attached. Frames generated in A (UDP, then TCP SYN, 100 sources)
# must reach B's interface and be accepted by B's IP stack, which checks the
# checksums flood.bpf.c patches per frame. Also checks that error paths exit
# non-zero.
#
# Usage: flood_smoke.sh PATH/TO/rlgate-flood
# Exit: 0 passed, 1 failed, 77 skipped (not root, a tool missing). With
# CI=true a missing prerequisite is a failure, never a skip.
set -uo pipefail

FLOOD=${1:-}
COUNT=200000
SYN_COUNT=50000
MIN_PERCENT=90

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

[[ -n "$FLOOD" && -x "$FLOOD" ]] || fail "usage: $0 PATH/TO/rlgate-flood (got '${FLOOD}')"
[[ $EUID -eq 0 ]] || skip "needs root"
for tool in ip ethtool timeout; do
    command -v "$tool" >/dev/null || skip "$tool not found"
done

suffix="$$-$RANDOM"
NS_A="rlf-a-$suffix"
NS_B="rlf-b-$suffix"
DEV_A=veth-a
DEV_B=veth-b

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    ip netns del "$NS_A" 2>/dev/null
    ip netns del "$NS_B" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ip netns add "$NS_A" || skip "cannot create network namespaces"
ip netns add "$NS_B" || fail "ip netns add $NS_B"

# The veth ends are created inside the namespaces, never in the caller's.
ip link add "$DEV_A" netns "$NS_A" type veth peer name "$DEV_B" netns "$NS_B" || fail "creating the veth pair"
ip -n "$NS_A" addr add 10.200.0.1/24 dev "$DEV_A" || fail "address on $DEV_A"
ip -n "$NS_B" addr add 10.200.0.2/24 dev "$DEV_B" || fail "address on $DEV_B"
for ns_dev in "$NS_A:$DEV_A" "$NS_B:$DEV_B"; do
    ip -n "${ns_dev%%:*}" link set lo up || fail "lo up in ${ns_dev%%:*}"
    ip -n "${ns_dev%%:*}" link set "${ns_dev#*:}" up || fail "${ns_dev#*:} up"
done
# veth hands XDP_TX frames to its peer only if the peer runs NAPI: with no
# XDP program attached, that takes GRO.
ip netns exec "$NS_B" ethtool -K "$DEV_B" gro on >/dev/null || fail "enabling GRO on $DEV_B"
# The sources (10.0.0.x) have no route back: reverse-path filtering, which a
# new namespace may inherit from the host, would drop them before UDP/TCP.
ip netns exec "$NS_B" sysctl -qw net.ipv4.conf.all.rp_filter=0 "net.ipv4.conf.$DEV_B.rp_filter=0" ||
    fail "disabling rp_filter in $NS_B"

MAC_B=$(ip netns exec "$NS_B" cat "/sys/class/net/$DEV_B/address") || fail "reading the MAC of $DEV_B"

rx_packets() {
    ip netns exec "$NS_B" cat "/sys/class/net/$DEV_B/statistics/rx_packets"
}

# snmp PROTO FIELD: a counter of /proc/net/snmp in B, e.g. snmp Udp NoPorts.
snmp() {
    # shellcheck disable=SC2016  # an awk program, not shell
    ip netns exec "$NS_B" awk -v proto="$1:" -v field="$2" '
        $1 == proto && !names { for (i = 2; i <= NF; i++) col[$i] = i; names = 1; next }
        $1 == proto && names { print $col[field]; exit }' /proc/net/snmp
}

flood() {
    timeout 60 ip netns exec "$NS_A" "$FLOOD" "$@"
}

# shellcheck disable=SC2317  # invoked through expect_error
flood_unprivileged() {
    timeout 60 ip netns exec "$NS_A" setpriv --reuid=65534 --regid=65534 --clear-groups "$FLOOD" "$@"
}

# expect_error WHAT COMMAND ARGS...: COMMAND must fail (not time out).
expect_error() {
    local what=$1
    shift
    "$@" >/dev/null 2>&1
    local rc=$?
    [[ $rc -ne 0 && $rc -ne 124 ]] || fail "$what: $* exited $rc, expected an error"
    echo "ok: $what exits $rc"
}

# at_least ACTUAL EXPECTED WHAT: ACTUAL >= MIN_PERCENT% of EXPECTED.
at_least() {
    (($1 * 100 >= $2 * MIN_PERCENT)) || fail "$3: $1 of $2 (< $MIN_PERCENT%)"
    echo "ok: $3: $1 of $2"
}

# send COUNT ARGS...: runs the generator, checks its report, sets SENT and RX.
send() {
    local count=$1
    shift
    local rx_before out
    rx_before=$(rx_packets)
    out=$(flood --dev "$DEV_A" --count "$count" --sources 100 --dst 10.200.0.2 --dst-mac "$MAC_B" --json "$@") ||
        fail "rlgate-flood $* exited $?"
    echo "rlgate-flood $*: $out"
    SENT=$(sed -n 's/.*"sent":\([0-9][0-9]*\).*/\1/p' <<<"$out")
    [[ "$SENT" == "$count" ]] || fail "rlgate-flood reported sent=${SENT:-?}, asked for $count"
    RX=$(($(rx_packets) - rx_before))
}

expect_error "unknown device" flood --dev rlf-no-such-dev --count 10
expect_error "unbounded run" flood --dev "$DEV_A" --count 0 --duration 0
expect_error "family mismatch" flood --dev "$DEV_A" --count 10 --src 10.0.0.1 --dst 2001:db8::1
if command -v setpriv >/dev/null; then
    expect_error "not root" flood_unprivileged --dev "$DEV_A" --count 10
fi

udp_noports=$(snmp Udp NoPorts)
udp_csum=$(snmp Udp InCsumErrors)
send "$COUNT" --proto udp
at_least "$RX" "$SENT" "UDP frames received by $DEV_B"
at_least $(($(snmp Udp NoPorts) - udp_noports)) "$SENT" "UDP datagrams accepted by B's stack (NoPorts)"
(($(snmp Udp InCsumErrors) == udp_csum)) || fail "UDP checksum errors in B"

tcp_in=$(snmp Tcp InSegs)
tcp_csum=$(snmp Tcp InCsumErrors)
send "$SYN_COUNT" --proto tcp-syn --dport 80
at_least "$RX" "$SENT" "TCP SYN frames received by $DEV_B"
at_least $(($(snmp Tcp InSegs) - tcp_in)) "$SENT" "TCP segments accepted by B's stack (InSegs)"
(($(snmp Tcp InCsumErrors) == tcp_csum)) || fail "TCP checksum errors in B"

echo "PASS"
exit 0
