#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Doc tests: the docs cannot drift from the code.
#  1. Every config in the docs runs through the binary that reads it:
#     docs/examples/*.json, fences tagged `jsonc rlgated-config` (rlgated --check)
#     and `jsonc rlgate-l7-config` (rlgate-l7 --check), and the packaged configs.
#  2. Every "$ command" of the transcript pages is executed against a real
#     rlgated started with docs/examples/docs-scratch.json, in a private mount
#     namespace (tmpfs /run and /tmp, its own bpffs on /sys/fs/bpf, so the
#     default paths the docs show are the test's own) and network namespace
#     rld-ns. Each must exit with the status its transcript shows (0, N from
#     "$ echo $?", or non-zero when it prints an "rlctl: " error), within 20 s.
#     tests/docs/doctest-exceptions.txt lists the few that cannot run here,
#     each with its reason; a stale entry fails the test.
# Usage: doctest.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../netns/lib.sh"
build=$(cd "${1:?usage: doctest.sh BUILD_DIR SOURCE_DIR}" && pwd)
src=$(cd "${2:?usage: doctest.sh BUILD_DIR SOURCE_DIR}" && pwd)
bin=$build/userspace
failures=0
bad() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# --- 1. configs -------------------------------------------------------------
if [[ ${RLGATE_DOCTEST_PHASE:-} != commands ]]; then
  work=$(mktemp -d /tmp/rlgate-doccfg.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  configs=0
  check_config() {  # KIND FILE LABEL
    local out
    if [[ $1 == rlgated ]]; then
      out=$("$bin/rlgated" --check -c "$2" 2>&1) || { bad "$3: rlgated --check: $out"; return; }
    else
      out=$("$bin/rlgate-l7" --check --config "$2" 2>&1) || { bad "$3: rlgate-l7 --check: $out"; return; }
    fi
    configs=$((configs + 1))
  }
  for f in "$src"/docs/examples/*.json "$src"/packaging/config/*.json; do
    if grep -q '"mode"[[:space:]]*:[[:space:]]*"\(forward_auth\|proxy\)"' "$f"; then
      check_config l7 "$f" "${f#"$src"/}"
    else
      check_config rlgated "$f" "${f#"$src"/}"
    fi
  done
  for md in "$src"/README.md "$src"/docs/*.md; do
    # Each tagged fence to a file of its own; stdout lists KIND LINE FILE.
    # A `jsonc rlgated-fragment` holds members of the top-level object
    # ("alerts": {...}): it is checked inside a minimal config.
    manifest=$(awk -v out="$work/$(basename "$md")" '
      function open_block(k, frag) { kind = k; fragment = frag; file = out "." NR ".json"
                                     print kind, NR, file; if (fragment) print "{" > file }
      /^```jsonc rlgated-config[[:space:]]*$/   { open_block("rlgated", 0); next }
      /^```jsonc rlgate-l7-config[[:space:]]*$/ { open_block("l7", 0); next }
      /^```jsonc rlgated-fragment[[:space:]]*$/ { open_block("rlgated", 1); next }
      /^```/ { if (fragment && file != "") print ", \"tiers\": {\"default\": {\"pps\": 1, \"burst\": 1}}}" > file
               file = ""; fragment = 0; next }
      file != "" { print > file }' "$md")
    while read -r kind line file; do
      [[ -n $kind ]] && check_config "$kind" "$file" "${md#"$src"/}:$line"
    done <<<"$manifest"
  done
  # Instructions (fences without "$ " prompts: builds, benchmarks, installs) are
  # not run here, but every repository path they invoke must exist, so that a
  # moved script or renamed binary breaks the test, not the reader.
  paths=0
  for md in "$src"/README.md "$src"/docs/*.md; do
    while read -r line path; do
      case $path in
        build/default/*) target=$build/${path#build/default/} ;;
        *) target=$src/$path ;;
      esac
      [[ -e $target ]] || bad "${md#"$src"/}:$line: $path does not exist"
      paths=$((paths + 1))
    done < <(awk '
      /^```/ { in_fence = !in_fence; next }
      in_fence && !/^\$ / {
        n = split($0, w, /[ \t]+/); i = 1
        while (i <= n && (w[i] == "" || w[i] == "sudo")) i++
        if (w[i] ~ /^(scripts|build\/default|tests)\//) print NR, w[i]
      }' "$md")
  done
  echo "doctest: $configs configs checked; $paths repository paths in instructions exist"
  rm -rf "$work"  # the exec below would skip the EXIT trap
  trap - EXIT
  ((failures == 0)) || exit 1
fi

# --- 2. transcripts ---------------------------------------------------------
# Every page; the scratch daemon's pages first, in the order they were written.
pages=(docs/rlctl.md docs/bpftool.md docs/observability.md docs/control-protocol.md)
for md in "$src"/README.md "$src"/docs/*.md; do
  rel=${md#"$src"/}
  [[ " ${pages[*]} " == *" $rel "* ]] || pages+=("$rel")
done
[[ $EUID -eq 0 ]] || skip "transcripts need root (a daemon, namespaces, bpffs)"
command -v jq >/dev/null || skip "transcripts need jq (docs/bpftool.md pipes bpftool into jq)"
command -v unshare >/dev/null && command -v nsenter >/dev/null || skip "needs util-linux unshare/nsenter"

if [[ ${RLGATE_DOCTEST_PHASE:-} != commands ]]; then
  # Re-run in a private mount namespace: the mounts below vanish with it.
  RLGATE_DOCTEST_PHASE=commands exec unshare --mount --propagation private "$0" "$build" "$src"
fi

ns=rld-ns
daemon_pid=
cleanup() {
  set +e
  [[ -n $daemon_pid ]] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  # Anything else still running in the namespace (a transcript's background job).
  ip netns pids $ns 2>/dev/null | xargs -r kill 2>/dev/null
  ip netns del $ns 2>/dev/null
  # The veths live in $ns and went with it; pins live in this namespace's bpffs.
}
trap cleanup EXIT
mount -t tmpfs -o mode=0755 tmpfs /run
# The sources and the build may live under /tmp (CI clones there): keep them in
# view under /run/doctest before /tmp becomes the test's own.
mkdir -p /run/doctest/src /run/doctest/build
mount --bind "$src" /run/doctest/src
mount --bind "$build" /run/doctest/build
src=/run/doctest/src build=/run/doctest/build bin=/run/doctest/build/userspace here=/run/doctest/src/tests/docs
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t bpf bpf /sys/fs/bpf
# /etc and /var/lib as copy-on-write overlays: /etc/rlgate/rlgate.json (rlctl.md
# validates it) and the state in /var/lib/rlgate exist in this namespace only.
for dir in /etc /var/lib; do
  layer=/tmp/overlay$dir
  mkdir -p "$layer/upper" "$layer/work"
  mount -t overlay overlay -o "lowerdir=$dir,upperdir=$layer/upper,workdir=$layer/work" "$dir"
done
mkdir -p /etc/rlgate
cp "$src/docs/examples/docs-scratch.json" /etc/rlgate/rlgate.json

ip netns add $ns
ip -n $ns link set lo up
ip -n $ns link add rld-gw type veth peer name rld-cl
ip -n $ns link add rld-x0 type veth peer name rld-x1
for l in rld-gw rld-cl rld-x0 rld-x1; do ip -n $ns link set $l up; done
ip -n $ns addr add 10.98.0.1/24 dev rld-gw
ip -n $ns addr add 10.98.0.2/24 dev rld-cl

in_ns() { nsenter --net=/run/netns/$ns "$@"; }
start_daemon() {
  # nsenter execs rlgated: $! is the daemon itself (a backgrounded function would be a subshell).
  nsenter --net=/run/netns/$ns "$bin/rlgated" --foreground --config /etc/rlgate/rlgate.json >>/tmp/rlgated.log 2>&1 &
  daemon_pid=$!
  for _ in $(seq 100); do
    "$bin/rlctl" --timeout 1000 status >/dev/null 2>&1 && return 0
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat /tmp/rlgated.log >&2
  fail "rlgated did not start with docs/examples/docs-scratch.json"
}
start_daemon
# Traffic as the transcripts had it, so that the maps hold buckets, counters and
# auto-bans: four flooding default-tier sources and one premium source.
traffic() {
  in_ns rlgate-flood --dev rld-cl --src 10.99.1.0 --sources 4 --dst 10.98.0.1 \
    --count 40000 --duration 2 >/dev/null 2>&1 || fail "rlgate-flood failed"
  in_ns rlgate-flood --dev rld-cl --src 10.99.0.5 --dst 10.98.0.1 --count 100 >/dev/null 2>&1 ||
    fail "rlgate-flood failed"
}

# Fixtures the transcripts use.
fixtures=/tmp/doctest
mkdir -p $fixtures
cd $fixtures
sed 's/"pps": 100,/"ppss": 100,/' /etc/rlgate/rlgate.json >/tmp/bad.json
sed 's/"pps": 100,/"pps": 10,/' /etc/rlgate/rlgate.json >/tmp/strict.json
awk '/^\$ cat scanners.txt$/ { on = 1; next } on && /^\$ / { exit } on && NF { print }' \
  "$src/docs/rlctl.md" >scanners.txt
export TOKEN=s3cret-token-0123456789 PATH="$bin:$build/userspace/tools:$PATH"

exceptions=$here/doctest-exceptions.txt
declare -A skip_reason used
while IFS=$'\t' read -r page occurrence command reason; do
  [[ -z $page || $page == \#* ]] && continue
  skip_reason["$page"$'\t'"$occurrence"$'\t'"$command"]=$reason
done <"$exceptions"

ran=0 skipped=0
for page in "${pages[@]}"; do
  traffic
  while IFS=$'\t' read -r line occurrence expect command; do
    key="$page"$'\t'"$occurrence"$'\t'"$command"
    # RLGATE_DOCTEST_ONLY=REGEX runs only matching commands (debugging the docs).
    if [[ -n ${RLGATE_DOCTEST_ONLY:-} && ! $command =~ $RLGATE_DOCTEST_ONLY ]]; then
      [[ -n ${skip_reason[$key]+x} ]] && used[$key]=1
      continue
    fi
    if [[ -n ${skip_reason[$key]+x} ]]; then
      used[$key]=1; skipped=$((skipped + 1)); continue
    fi
    # A transcript may stop the daemon (rlctl detach): the next command gets a fresh one.
    if ! kill -0 "$daemon_pid" 2>/dev/null; then wait "$daemon_pid" 2>/dev/null || true; start_daemon; fi
    status=0
    out=$(in_ns timeout 20 bash -c "$command" 2>&1 </dev/null) || status=$?
    [[ -n ${RLGATE_DOCTEST_VERBOSE:-} ]] && printf "$ %s\n%s\n" "$command" "$out"
    # `rlctl detach` without an interface stops the daemon: let it finish.
    if [[ $command =~ ^rlctl( --json)?\ detach$ ]]; then
      for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
    fi
    ran=$((ran + 1))
    case $expect in
      0) ((status == 0)) || bad "$page:$line: \`$command\` exited $status (transcript: 0): $(head -c 300 <<<"$out")" ;;
      fail) ((status != 0 && status != 124)) || bad "$page:$line: \`$command\` exited $status, the transcript shows an error" ;;
      *) ((status == expect)) || bad "$page:$line: \`$command\` exited $status (transcript: $expect): $(head -c 300 <<<"$out")" ;;
    esac
  done < <(awk -f "$here/extract_commands.awk" "$src/$page")
done
for key in "${!skip_reason[@]}"; do
  [[ -n ${used[$key]+x} ]] || bad "stale entry in doctest-exceptions.txt (no such command): ${key//$'\t'/ | }"
done
((failures == 0)) || { echo "--- rlgated log (tail) ---" >&2; tail -n 30 /tmp/rlgated.log >&2; }
echo "doctest: $ran commands of ${#pages[@]} pages ran as their transcripts show; $skipped listed exceptions"
((failures == 0)) || { echo "doctest: $failures failures" >&2; exit 1; }
