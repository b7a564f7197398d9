#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Install layout: `cmake --install` into a DESTDIR with prefix /usr and with
# another prefix; the installed binaries run from there; configs, units,
# tmpfiles, man pages and completions are where packaging/CMakeLists.txt says.
# Usage: install_test.sh BUILD_DIR
set -euo pipefail
source "$(dirname "$0")/../netns/lib.sh"

build=${1:?usage: install_test.sh BUILD_DIR}
work=$(mktemp -d /tmp/rlgate-install.XXXXXX)
trap 'rm -rf "$work"' EXIT

expect_file() { [[ -f "$1" ]] || fail "not installed: ${1#"$work"}"; }
expect_mode() { [[ "$(stat -c %a "$1")" == "$2" ]] || fail "${1#"$work"}: mode $(stat -c %a "$1"), wanted $2"; }
expect_line() { grep -qxF -- "$2" "$1" || fail "${1#"$work"}: no line '$2'"; }

# --- prefix /usr: the Debian layout -----------------------------------------
d=$work/usr-root
DESTDIR=$d cmake --install "$build" --prefix /usr >"$work/install.log"
for f in usr/sbin/rlgated usr/sbin/rlctl usr/bin/rlgate-l7 usr/lib/rlgate/rlgate.bpf.o \
         etc/rlgate/rlgate.json etc/rlgate/l7.json \
         usr/lib/systemd/system/rlgated.service usr/lib/systemd/system/rlgate-l7.service \
         usr/lib/tmpfiles.d/rlgate.conf \
         usr/share/man/man8/rlgated.8.gz usr/share/man/man8/rlctl.8.gz usr/share/man/man8/rlgate-l7.8.gz \
         usr/share/bash-completion/completions/rlctl usr/share/zsh/vendor-completions/_rlctl \
         usr/share/doc/rlgate/README.md usr/share/doc/rlgate/config.md; do
  expect_file "$d/$f"
done
[[ -x $d/usr/sbin/rlgated && -x $d/usr/sbin/rlctl && -x $d/usr/bin/rlgate-l7 ]] || fail "binaries not executable"
expect_mode "$d/etc/rlgate/rlgate.json" 640   # may hold the admin token
expect_mode "$d/etc/rlgate/l7.json" 644       # read by rlgate-l7's DynamicUser
# The object rlgated embeds: an ELF for the BPF machine (e_machine 247).
[[ "$(od -An -tu2 -j18 -N2 "$d/usr/lib/rlgate/rlgate.bpf.o" | tr -d ' ')" == 247 ]] ||
  fail "rlgate.bpf.o is not a BPF ELF object"
expect_line "$d/usr/lib/systemd/system/rlgated.service" \
  "ExecStart=/usr/sbin/rlgated --foreground --config /etc/rlgate/rlgate.json"
expect_line "$d/usr/lib/systemd/system/rlgated.service" "Type=notify"
expect_line "$d/usr/lib/systemd/system/rlgated.service" "CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_NET_ADMIN"
expect_line "$d/usr/lib/systemd/system/rlgate-l7.service" \
  "ExecStart=/usr/bin/rlgate-l7 --config /etc/rlgate/l7.json"
expect_line "$d/usr/lib/systemd/system/rlgate-l7.service" "DynamicUser=yes"
expect_line "$d/usr/lib/tmpfiles.d/rlgate.conf" "d /run/rlgate     0750 root root -"
expect_line "$d/usr/lib/tmpfiles.d/rlgate.conf" "d /var/lib/rlgate 0750 root root -"
if grep -rq '@[A-Z_]*@' "$d/usr/lib/systemd/system"; then fail "unsubstituted @VAR@ in a unit"; fi

# The installed binaries run from there, on the installed configs.
"$d/usr/sbin/rlgated" --check -c "$d/etc/rlgate/rlgate.json" >/dev/null || fail "installed rlgate.json rejected"
"$d/usr/bin/rlgate-l7" --check --config "$d/etc/rlgate/l7.json" >/dev/null || fail "installed l7.json rejected"
grep -q '"interfaces": \[\]' "$d/etc/rlgate/rlgate.json" || fail "the packaged config must attach to no interface"
[[ "$("$d/usr/sbin/rlgated" --version)" == *0.* ]] ||
  fail "rlgated --version"
"$d/usr/bin/rlgate-l7" --version >/dev/null || fail "rlgate-l7 --version"
cmp -s <("$d/usr/sbin/rlctl" completion bash) "$d/usr/share/bash-completion/completions/rlctl" ||
  fail "installed bash completion differs from rlctl completion bash"
zcat "$d/usr/share/man/man8/rlctl.8.gz" | grep -q '^\.TH RLCTL' || fail "rlctl.8.gz is not the man page"
if command -v systemd-analyze >/dev/null; then
  # The units as systemd parses them, with their binaries at the DESTDIR paths.
  mkdir -p "$work/verify"
  for unit in rlgated.service rlgate-l7.service; do
    sed "s#^ExecStart=/#ExecStart=$d/#" "$d/usr/lib/systemd/system/$unit" >"$work/verify/$unit"
    out=$(systemd-analyze verify --man=no "$work/verify/$unit" 2>&1) || fail "systemd-analyze verify $unit: $out"
    [[ -z $out ]] || fail "systemd-analyze verify $unit warns: $out"
  done
fi

# A re-install keeps an operator's config (dpkg does the same for conffiles).
echo '// edited' >>"$d/etc/rlgate/rlgate.json"
DESTDIR=$d cmake --install "$build" --prefix /usr >"$work/install2.log"
grep -q '^// edited' "$d/etc/rlgate/rlgate.json" || fail "re-install overwrote the edited rlgate.json"
grep -q 'Keeping existing' "$work/install2.log" || fail "re-install did not say it kept the config"

# --- another prefix: everything below it, units pointing there --------------
o=$work/opt-root
DESTDIR=$o cmake --install "$build" --prefix /opt/rlgate >"$work/install3.log"
expect_file "$o/opt/rlgate/etc/rlgate/rlgate.json"
expect_line "$o/opt/rlgate/lib/systemd/system/rlgated.service" \
  "ExecStart=/opt/rlgate/sbin/rlgated --foreground --config /opt/rlgate/etc/rlgate/rlgate.json"
[[ ! -e $o/etc ]] || fail "prefix /opt/rlgate wrote outside it: $(find "$o/etc" | head -3)"
echo "PASS: install layout for /usr and /opt/rlgate; installed binaries run on the installed configs"
