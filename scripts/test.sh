#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Installs what is missing, builds (RelWithDebInfo), runs the whole suite.
# BPF and namespace tests need root; outside CI they skip without it, under
# CI=true they fail.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

scripts/setup-deps.sh --tests
cmake --preset default
cmake --build --preset default -j"$(nproc)"
ctest --preset default -j"$(nproc)" --timeout 300
