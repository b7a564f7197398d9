#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Builds the libFuzzer targets (tests/fuzz, clang-14, ASan + UBSan) and runs
# each for a bounded time from the seed corpus in tests/fuzz/corpus/<target>.
# A crash fails the run and leaves its input in build/fuzz/crashes/<target>/.
# xdp_parser loads the XDP program (BPF_PROG_TEST_RUN): it needs root.
#   scripts/fuzz.sh [--seconds N] [--jobs N] [TARGET...]   (default 20 s each, all targets)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

SECONDS_EACH=20
TARGETS=()
while (($#)); do
  case "$1" in
    --seconds) SECONDS_EACH=$2; shift 2 ;;
    -h|--help) sed -n '3,7p' "$0"; exit 0 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
((${#TARGETS[@]})) || TARGETS=(config l7_config control_protocol addresses jwt tzif l7_request redis_reply xdp_parser)

BUILD=build/fuzz
CC=clang-14 CXX=clang++-14 cmake -S tests/fuzz -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)"

status=0
for t in "${TARGETS[@]}"; do
  work="$BUILD/corpus/$t"      # grows across runs; the seeds stay in the tree
  crashes="$BUILD/crashes/$t"
  mkdir -p "$work" "$crashes"
  log="$BUILD/$t.log"
  max_len=65536
  [[ $t == xdp_parser ]] && max_len=3073  # control byte + a frame the test run keeps linear
  if "$BUILD/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
      -artifact_prefix="$crashes/" -print_final_stats=1 "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
    echo "fuzz_$t: ${runs:-?} executions in ${SECONDS_EACH}s, no crash"
  else
    echo "fuzz_$t: FAILED (input saved in $crashes/):" >&2
    grep -E "ERROR|SUMMARY|MISMATCH|Test unit written" "$log" | head -5 >&2
    status=1
  fi
done
exit $status
