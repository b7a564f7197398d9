#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Installs the Debian 12 packages rlgate needs (only the missing ones) and
# mounts bpffs. Idempotent; safe to run on every build.
#   --tests   also what only the test suite needs (a headless browser; nginx,
#             caddy, curl and wrk for rlgate-l7's proxy tests, redis-server for
#             its Redis store's tests; the servers left stopped)
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  clang-14 llvm-14 libbpf-dev bpftool libelf-dev zlib1g-dev
  libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev libboost1.81-dev libsystemd-dev
  libhiredis-dev
  iproute2 nftables ethtool util-linux tzdata
)
if [[ "${1:-}" == "--tests" ]]; then
  PACKAGES+=(chromium chromium-driver fonts-liberation)  # the dashboard's browser test (fonts: a Recommends we skip)
  PACKAGES+=(libclang-rt-14-dev)  # libFuzzer and the sanitizer runtimes for clang-14 (scripts/fuzz.sh)
  PACKAGES+=(nginx caddy curl wrk)  # tests/l7: rlgate-l7 behind real proxies; wrk for load by hand
  PACKAGES+=(jq groff-base zsh)  # doc tests (bpftool | jq transcripts), man page checks, zsh completion
  PACKAGES+=(faketime)  # fault tests: wall-clock steps under a running rlgated (libfaketime)
  PACKAGES+=(openssl)  # the Redis TLS test makes a throwaway CA and certificate
  PACKAGES+=(redis-server)  # tests/redis: rlgate-l7's Redis store against real servers on loopback ports
fi
# Installed for the tests only, which start their own instances on loopback:
# never left running (or enabled) as the system's web server on port 80, or
# as a Redis on 6379.
TEST_SERVICES=(nginx caddy redis-server)

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

  for svc in "${TEST_SERVICES[@]}"; do
    [[ " ${missing[*]} " == *" $svc "* ]] || continue  # only what this run installed
    if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]] &&
      { systemctl is-active --quiet "$svc.service" || systemctl is-enabled --quiet "$svc.service"; } 2>/dev/null; then
      systemctl disable --now --quiet "$svc.service" 2>/dev/null || true
      echo "setup-deps: stopped and disabled $svc.service (a test tool: the tests start their own $svc)"
    elif [[ -x /etc/init.d/$svc ]] && "/etc/init.d/$svc" status >/dev/null 2>&1; then
      "/etc/init.d/$svc" stop >/dev/null 2>&1 || true  # no systemd (a container): its init script
      update-rc.d "$svc" disable >/dev/null 2>&1 || true
      echo "setup-deps: stopped and disabled the $svc init script (a test tool: the tests start their own $svc)"
    fi
  done
fi

# bpffs: rlgated pins its maps and links here.
if [[ $EUID -eq 0 ]] && ! mountpoint -q /sys/fs/bpf; then
  mount -t bpf bpf /sys/fs/bpf
  echo "setup-deps: mounted bpffs on /sys/fs/bpf"
fi
echo "setup-deps: all dependencies present"
