#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Keeps `rlgate-bench e2e` from rotting: a tiny run (no figures asserted) must
# exit 0, print the JSON shape the docs promise, and leave no namespace behind.
# Exit 0 pass, 1 fail, 77 skipped (not root; a failure under CI=true).
set -uo pipefail
BENCH=${1:?usage: $0 PATH/TO/rlgate-bench}
if [[ $EUID -ne 0 ]]; then
    [[ "${CI:-}" == true ]] && { echo "FAIL: needs root (CI=true)"; exit 1; }
    echo "SKIP: needs root"; exit 77
fi
before=$(ip netns list | wc -l)
out=$("$BENCH" e2e --count 20000 --rounds 1 --warmup 0 --threads 1 --json) || { echo "FAIL: e2e exited $?"; exit 1; }
echo "$out"
for key in '"sources": 1' '"sources": 10000' xdp_drop_mpps rlgate_mpps nft_mpps rlgate_vs_xdp_drop; do
    grep -q "$key" <<<"$out" || { echo "FAIL: no $key in the JSON"; exit 1; }
done
after=$(ip netns list | wc -l)
[[ $before -eq $after ]] || { echo "FAIL: namespaces left behind"; exit 1; }
echo PASS
