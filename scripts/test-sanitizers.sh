#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer (preset
# asan, build/asan): every userspace binary and test, including the daemons
# the namespace tests start. Too slow for every CI run on two cores (a second
# full build): run it nightly or before a release. Root for the BPF and
# namespace tests, as scripts/test.sh.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

scripts/setup-deps.sh --tests
cmake --preset asan
cmake --build --preset asan -j"$(nproc)"
# Any finding aborts the process that made it, so the test fails.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --preset asan -j"$(nproc)" --timeout 600 "$@"
