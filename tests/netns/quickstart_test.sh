#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Runs the README's demo, scripts/quickstart.sh, on an existing build and
# checks what it reports and what it leaves behind: the flood mostly
# dropped and held to its tier's limit, the legitimate client losing
# nothing, and no namespace, pinned state, socket directory or daemon left.
#
# Usage: quickstart_test.sh BUILD_DIR
# Exit: 0 passed, 1 failed, 77 skipped (not root, a tool missing). With
# CI=true a missing prerequisite is a failure, never a skip.
set -uo pipefail

BUILD_DIR=${1:-}
QUICKSTART="$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)/scripts/quickstart.sh"
MIN_DROP_PERCENT=80
# docs/examples/quickstart.json, tier "default": 100 packets/s, burst 200.
TIER_PPS=100
TIER_BURST=200

# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

[[ -n "$BUILD_DIR" && -d "$BUILD_DIR" ]] || fail "usage: $0 BUILD_DIR (got '${BUILD_DIR}')"
[[ -x "$QUICKSTART" ]] || fail "$QUICKSTART not found"
[[ $EUID -eq 0 ]] || skip "needs root"
for tool in ip nsenter timeout; do
    command -v "$tool" >/dev/null || skip "$tool not found"
done

# rlgated processes (not zombies) of the quickstart's config.
quickstart_daemons() {
    local dir state
    for dir in /proc/[0-9]*; do
        [[ $(readlink "$dir/exe" 2>/dev/null) == */rlgated* ]] || continue
        tr '\0' '\n' <"$dir/cmdline" 2>/dev/null | grep -q 'quickstart\.json$' || continue
        state=$(awk '/^State:/ {print $2}' "$dir/status" 2>/dev/null)
        [[ -n $state && $state != Z ]] && echo "${dir#/proc/}"
    done
    return 0
}

out=$(timeout 100 "$QUICKSTART" --no-setup --build-dir "$BUILD_DIR" --duration 3 2>&1)
rc=$?
echo "$out"
[[ $rc -eq 0 ]] || fail "quickstart.sh exited $rc"

# Nothing left behind, also checked when the numbers below fail.
leftovers=$(ip netns list | awk '$1 ~ /^rlq-/ {print $1}')
[[ -z $leftovers ]] || fail "namespaces left behind: $leftovers"
[[ ! -e /sys/fs/bpf/rlgate-quickstart ]] || fail "/sys/fs/bpf/rlgate-quickstart left behind"
[[ ! -e /run/rlgate-quickstart ]] || fail "/run/rlgate-quickstart left behind"
pids=$(quickstart_daemons)
[[ -z $pids ]] || fail "rlgated left running: pid $pids"
echo "ok: no namespace, pinned state, socket directory or daemon left"

result=$(grep '^RESULT ' <<<"$out" | tail -n 1)
[[ -n $result ]] || fail "no RESULT line"
[[ $(tail -n 1 <<<"$out") == "$result" ]] || fail "RESULT is not the last line"
field() {
    sed -n "s/.* $1=\([0-9.][0-9.]*\).*/\1/p" <<<"$result"
}
flood_sent=$(field flood_sent)
flood_passed=$(field flood_passed)
flood_dropped=$(field flood_dropped)
flood_sources=$(field flood_sources)
flood_seconds=$(field flood_seconds)
legit_sent=$(field legit_sent)
legit_passed=$(field legit_passed)
legit_dropped=$(field legit_dropped)
for v in flood_sent flood_passed flood_dropped flood_sources flood_seconds legit_sent legit_passed legit_dropped; do
    [[ -n ${!v} ]] || fail "no $v in: $result"
done

((flood_sent > 0)) || fail "the flood sent nothing"
((flood_dropped * 100 > flood_sent * MIN_DROP_PERCENT)) ||
    fail "flood: $flood_dropped of $flood_sent dropped (not > $MIN_DROP_PERCENT%)"
echo "ok: flood: $flood_dropped of $flood_sent dropped (> $MIN_DROP_PERCENT%)"
# Every frame of the flood got a verdict (a few may be lost on the veth).
counted=$((flood_passed + flood_dropped))
((counted * 100 >= flood_sent * 99 && counted <= flood_sent + 10)) ||
    fail "flood: $flood_passed passed + $flood_dropped dropped = $counted, but $flood_sent sent"
bound=$(awk -v n="$flood_sources" -v s="$flood_seconds" -v pps="$TIER_PPS" -v burst="$TIER_BURST" \
    'BEGIN { printf "%d", n * (burst + pps * s) * 1.05 + n }')
((flood_passed <= bound)) || fail "flood: $flood_passed passed, over the tier's bound $bound"
echo "ok: flood: $flood_passed passed, within $bound"

((legit_sent > 0)) || fail "the legitimate client sent nothing"
((legit_passed == legit_sent && legit_dropped == 0)) ||
    fail "legitimate client: $legit_sent sent, $legit_passed passed, $legit_dropped dropped"
echo "ok: legitimate client: $legit_sent sent, $legit_passed passed"

echo "PASS"
exit 0
