#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Installs what is missing, builds (RelWithDebInfo), runs the whole suite,
# then each fuzz target for 15 s (RLGATE_FUZZ_SECONDS).
# BPF and namespace tests need root; outside CI they skip without it, under
# CI=true they fail.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

scripts/setup-deps.sh --tests
cmake --preset default
cmake --build --preset default -j"$(nproc)"
ctest --preset default -j"$(nproc)" --timeout 300
# Every libFuzzer target for a bounded time (longer runs: scripts/fuzz.sh --seconds N).
scripts/fuzz.sh --seconds "${RLGATE_FUZZ_SECONDS:-15}"
