#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# The .deb packages on this machine: build them with cpack, `dpkg -i` them,
# run the installed rlgated as its unit does, attached to a veth in a namespace
# made here, `rlctl status` answers; re-install (the upgrade path) while it
# runs and restart it: the pinned link keeps the program attached; purge
# removes binaries, config, state and the pinned maps and links.
# Usage: deb_test.sh BUILD_DIR      (root; exit 77 = skipped outside CI)
set -euo pipefail
source "$(dirname "$0")/../netns/lib.sh"

build=${1:?usage: deb_test.sh BUILD_DIR}
[[ $EUID -eq 0 ]] || skip "needs root (dpkg -i, namespaces, XDP)"
command -v dpkg-deb >/dev/null && command -v cpack >/dev/null || skip "needs dpkg-deb and cpack"
for p in rlgate rlgate-l7; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    skip "package $p is installed on this machine: not touching it"
  fi
done
[[ ! -e /sys/fs/bpf/rlgate && ! -e /etc/rlgate && ! -e /run/rlgate/rlgated.sock ]] ||
  skip "an rlgate installation (/etc/rlgate, /sys/fs/bpf/rlgate or /run/rlgate) exists: not touching it"
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

ns=rlpkg-ns
work=$(mktemp -d /tmp/rlgate-deb.XXXXXX)
daemon_pid=
cleanup() {
  set +e
  [[ -n $daemon_pid ]] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  for p in rlgate-l7 rlgate; do
    dpkg-query -W "$p" >/dev/null 2>&1 && dpkg --purge "$p" >/dev/null 2>&1
  done
  [[ -n ${l7_pid:-} ]] && kill "$l7_pid" 2>/dev/null
  ip netns del $ns 2>/dev/null
  rm -rf "$work" /sys/fs/bpf/rlgate
}
trap cleanup EXIT

cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; fail "cpack failed"; }
deb=$(ls "$work"/rlgate_*.deb) && l7deb=$(ls "$work"/rlgate-l7_*.deb) || fail "cpack made no rlgate/rlgate-l7 .deb"
dpkg-deb -f "$deb" Depends | grep -q libbpf || fail "rlgate does not depend on libbpf: $(dpkg-deb -f "$deb" Depends)"
dpkg-deb -f "$l7deb" Depends | grep -q libbpf && fail "rlgate-l7 should not need libbpf"
contents=$(dpkg-deb -c "$deb")  # not piped into grep -q: pipefail would see dpkg-deb's SIGPIPE
grep -q ' ./usr/sbin/rlgated$' <<<"$contents" || fail "rlgated not in $deb"
dpkg-deb -I "$deb" conffiles | grep -qx /etc/rlgate/rlgate.json || fail "rlgate.json is not a conffile"

dpkg -i "$deb" "$l7deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i failed"; }
[[ -d /run/rlgate && -d /var/lib/rlgate && -f /etc/rlgate/rlgate.json ]] ||
  fail "postinst did not create /run/rlgate and /var/lib/rlgate"
if [[ -d /run/systemd/system ]]; then
  # postinst started the units on the packaged config (no interface): take them over.
  systemctl stop rlgated.service rlgate-l7.service
fi

# The namespace setup: the daemon's interface rlpkg-gw in $ns, its peer there too.
ip netns add $ns
ip -n $ns link add rlpkg-gw type veth peer name rlpkg-cl
ip -n $ns link set lo up
ip -n $ns link set rlpkg-gw up
ip -n $ns link set rlpkg-cl up
sed -i 's/"interfaces": \[\]/"interfaces": ["rlpkg-gw"]/' /etc/rlgate/rlgate.json

# Exactly the unit's command line, in the namespace.
exec_start=$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/rlgated.service)
[[ $exec_start == /usr/sbin/rlgated* ]] || fail "unexpected ExecStart: $exec_start"
start_daemon() {
  # shellcheck disable=SC2086
  nsenter --net=/run/netns/$ns $exec_start >>"$work/rlgated.log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 100); do
    /usr/sbin/rlctl --timeout 1000 status >/dev/null 2>&1 && return 0
    kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/rlgated.log"; fail "installed rlgated exited"; }
    sleep 0.1
  done
  cat "$work/rlgated.log"; fail "installed rlgated did not answer within 10 s"
}
attached() { ip -n $ns -d link show rlpkg-gw | grep -q 'prog/xdp'; }
start_daemon
status=$(/usr/sbin/rlctl --json status) || fail "rlctl status"
grep -q '"rlpkg-gw"' <<<"$status" || fail "rlctl status does not show rlpkg-gw: $status"
attached || fail "no XDP program on rlpkg-gw"
[[ -e /sys/fs/bpf/rlgate/rl_buckets && -e /sys/fs/bpf/rlgate/links/rlpkg-gw ]] || fail "no pins under /sys/fs/bpf/rlgate"

# The L7 package: its binary, unprivileged, as the unit's DynamicUser would be.
l7_start=$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/rlgate-l7.service)
# shellcheck disable=SC2086
nsenter --net=/run/netns/$ns setpriv --reuid=nobody --regid=nogroup --clear-groups $l7_start \
  >"$work/l7.log" 2>&1 &
l7_pid=$!
code=
for _ in $(seq 50); do
  code=$(nsenter --net=/run/netns/$ns curl -s -o /dev/null -w '%{http_code}' -H 'X-Forwarded-Uri: /x' \
           -H 'X-Forwarded-Method: GET' -H 'X-Forwarded-For: 192.0.2.1' http://127.0.0.1:8081/check || true)
  [[ $code == 200 ]] && break
  sleep 0.1
done
[[ $code == 200 ]] || { cat "$work/l7.log"; fail "installed rlgate-l7 did not answer /check with 200 (got '$code')"; }
kill "$l7_pid"; wait "$l7_pid" 2>/dev/null || true; l7_pid=

# Upgrade: the same packages again (prerm upgrade, postinst configure) while the
# daemon runs, then the restart systemd's try-restart would do.
dpkg -i "$deb" "$l7deb" >"$work/dpkg2.log" 2>&1 || { cat "$work/dpkg2.log"; fail "re-install failed"; }
grep -q '"rlpkg-gw"' /etc/rlgate/rlgate.json || fail "the upgrade replaced the edited conffile"
attached || fail "the upgrade detached the program"
kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true; daemon_pid=
attached || fail "stopping rlgated detached the program (the pinned link should keep it)"
start_daemon
/usr/sbin/rlctl --json status | grep -q '"adopted": true' || fail "the new daemon did not adopt the pinned state"

# Purge: prerm detaches through the running daemon, postrm removes the rest.
dpkg --purge rlgate-l7 rlgate >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg --purge failed"; }
for _ in $(seq 50); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$daemon_pid" 2>/dev/null && fail "rlgated still runs after purge"
wait "$daemon_pid" 2>/dev/null || true; daemon_pid=
for p in /usr/sbin/rlgated /usr/sbin/rlctl /usr/bin/rlgate-l7 /etc/rlgate /var/lib/rlgate /run/rlgate \
         /sys/fs/bpf/rlgate /usr/lib/systemd/system/rlgated.service; do
  [[ ! -e $p ]] || fail "purge left $p"
done
attached && fail "purge left the XDP program on rlpkg-gw"
echo "PASS: .deb install, run in a namespace, rlctl status, upgrade keeps enforcing, purge removes everything"
