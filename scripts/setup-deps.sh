#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Installs the Debian 12 packages rlgate needs (only the missing ones) and
# mounts bpffs. Idempotent; safe to run on every build.
#   --tests   also what only the test suite needs (a headless browser)
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  clang-14 llvm-14 libbpf-dev bpftool libelf-dev zlib1g-dev
  libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev libboost1.81-dev libsystemd-dev
  iproute2 nftables ethtool util-linux
)
if [[ "${1:-}" == "--tests" ]]; then
  PACKAGES+=(chromium chromium-driver fonts-liberation)  # the dashboard's browser test (fonts: a Recommends we skip)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]})); then
  if [[ $EUID -ne 0 ]]; then
    echo "setup-deps: missing packages: ${missing[*]}" >&2
    echo "setup-deps: run as root (sudo $0) to install them" >&2
    exit 1
  fi
  echo "setup-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# bpffs: rlgated pins its maps and links here.
if [[ $EUID -eq 0 ]] && ! mountpoint -q /sys/fs/bpf; then
  mount -t bpf bpf /sys/fs/bpf
  echo "setup-deps: mounted bpffs on /sys/fs/bpf"
fi
echo "setup-deps: all dependencies present"
