#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# `rlctl completion bash|zsh`, in the shells themselves.
# bash: the script is sourced into a bare bash (--norc: no bash-completion
# package), _rlctl is driven through COMP_WORDS/COMP_CWORD/COMP_LINE/COMP_POINT
# as bash would drive it, and COMPREPLY is checked.
# zsh: the script must parse (zsh -n), load both ways (sourced after compinit,
# and autoloaded from $fpath as _rlctl), and complete for real: an interactive
# zsh in a pseudo-terminal (zsh/zpty) is sent TAB and its listing is read.
# No daemon is involved: the socket points nowhere.
#
# Usage: completion_test.sh PATH/TO/rlctl
# Exit: 0 passed, 1 failed, 77 skipped (zsh missing). With CI=true a missing
# zsh is a failure, never a skip.
set -euo pipefail

# shellcheck source=../netns/lib.sh
source "$(dirname "$(readlink -f "$0")")/../netns/lib.sh"

RLCTL=${1:-}
[[ -n "$RLCTL" && -x "$RLCTL" ]] || fail "usage: $0 PATH/TO/rlctl (got '${RLCTL}')"
RLCTL=$(readlink -f "$RLCTL")
export RLGATE_SOCKET=/nonexistent/rlgated.sock  # completion must not need the daemon

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PASSED=0
FAILED=0

pass() {
    echo "ok: $*"
    PASSED+=1
}
failure() {
    echo "FAIL: $*" >&2
    FAILED+=1
}
declare -i PASSED FAILED

summary() {
    echo "$PASSED passed, $FAILED failed"
}

# Sorted words, one line: "a b c".
normalized() { tr ' ' '\n' | { grep -v '^$' || true; } | LC_ALL=C sort | tr '\n' ' '; }

# ---- bash ------------------------------------------------------------------

"$RLCTL" completion bash >"$WORK/rlctl.bash" || fail "rlctl completion bash exited $?"
if out=$(bash -n "$WORK/rlctl.bash" 2>&1); then pass "bash -n accepts the script"; else failure "bash -n: $out"; fi
if grep -q -e _init_completion -e _get_comp_words_by_ref "$WORK/rlctl.bash"; then
    failure "bash script needs the bash-completion package"
else
    pass "bash script needs no bash-completion package"
fi

# Runs _rlctl as bash would for a command line whose words are the arguments
# (the last one is the word under the cursor, '' for a fresh word), in a bare
# bash that has only `rlctl completion bash` loaded. Prints COMPREPLY, one a line.
bash_complete() {
    bash --norc --noprofile -c '
        set -u
        rlctl=$1
        shift
        source <("$rlctl" completion bash) || exit 90
        COMP_WORDS=("$@")
        COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        _rlctl || exit 91
        if ((${#COMPREPLY[@]} > 0)); then printf "%s\n" "${COMPREPLY[@]}"; fi
    ' bash_complete "$RLCTL" "$@"
}

# reply_is WHAT "EXPECTED WORDS" WORD...: COMPREPLY holds exactly those words.
reply_is() {
    local what=$1 expected got
    expected=$(normalized <<<"$2")
    shift 2
    if ! got=$(bash_complete "$@" 2>&1); then
        failure "$what: _rlctl failed: $got"
        return
    fi
    got=$(normalized <<<"$got")
    if [[ $got == "$expected" ]]; then
        pass "$what"
    else
        failure "$what: expected [${expected% }], got [${got% }]"
    fi
}

# reply_has WHAT "WORDS THAT MUST BE THERE" "WORDS THAT MUST NOT" WORD...
reply_has() {
    local what=$1 wanted=$2 unwanted=$3 got word missing='' extra=''
    shift 3
    if ! got=$(bash_complete "$@" 2>&1); then
        failure "$what: _rlctl failed: $got"
        return
    fi
    for word in $wanted; do
        grep -qxF -- "$word" <<<"$got" || missing+=" $word"
    done
    for word in $unwanted; do
        grep -qxF -- "$word" <<<"$got" && extra+=" $word"
    done
    if [[ -z $missing && -z $extra ]]; then
        pass "$what"
    else
        failure "$what: missing [${missing# }], unexpected [${extra# }], got [$(normalized <<<"$got")]"
    fi
}

registered=$(bash --norc --noprofile -c 'source <("$1" completion bash) && complete -p rlctl' _ "$RLCTL" 2>&1) || true
if [[ $registered == "complete -F _rlctl rlctl" ]]; then
    pass "registered: complete -F _rlctl rlctl"
else
    failure "registration: expected 'complete -F _rlctl rlctl', got '$registered'"
fi

reply_has "rlctl <TAB>: subcommands" "status stats ban policy version completion" "--json -h add" rlctl ''
reply_is "rlctl ban <TAB>" "add del list history" rlctl ban ''
reply_has "rlctl ban add --<TAB>: its options and the global ones" \
    "--file --ttl --reason --help --socket --json --timeout" "--watch --mode --count -n" rlctl ban add --
reply_is "rlctl --js<TAB>" "--json" rlctl --js
reply_is "rlctl completion <TAB>" "bash zsh" rlctl completion ''
reply_is "rlctl completion z<TAB>" "zsh" rlctl completion z
reply_is "rlctl attach --mode <TAB>: the choices of CLI::IsMember" "native generic auto" rlctl attach --mode ''
reply_is "rlctl ban list --js<TAB>: global options after a subcommand" "--json" rlctl ban list --js
reply_is "rlctl top -<TAB>" "-h --help -n --interval --socket --json --timeout" rlctl top -

mkdir "$WORK/run"
touch "$WORK/run/rlgated.sock" "$WORK/run/rlgate.json"
reply_is "rlctl --socket PATH<TAB>: files" "$WORK/run/rlgated.sock" rlctl --socket "$WORK/run/rlgated"
reply_is "rlctl --socket=PATH<TAB> ('=' splits words)" "$WORK/run/rlgated.sock" rlctl --socket = "$WORK/run/rlgated"
reply_is "rlctl policy validate FILE<TAB>: files" "$WORK/run/rlgate.json" rlctl policy validate "$WORK/run/rlgate.j"
reply_is "rlctl ban add --file FILE<TAB>: files" "$WORK/run/rlgate.json" rlctl ban add --file "$WORK/run/rlgate.j"
reply_is "rlctl --timeout <TAB>: a free value, nothing offered" "" rlctl --timeout ''
reply_is "rlctl --socket S ban <TAB>: option values are stepped over" "add del list history" \
    rlctl --socket "$WORK/run/rlgated.sock" ban ''
reply_is "rlctl --socket=S ban <TAB>" "add del list history" rlctl --socket = /x ban ''
reply_is "rlctl ban add <TAB>: a CIDR, no subcommands" "" rlctl ban add ''
reply_is "rlctl -- <TAB>: after --, no subcommands" "" rlctl -- ''

# A shell that is not supported: refused with a clear message, nothing on stdout.
rc=0
"$RLCTL" completion fish >"$WORK/fish.out" 2>"$WORK/fish.err" || rc=$?
if ((rc != 0)) && [[ ! -s $WORK/fish.out ]] && grep -q 'fish not in {bash,zsh}' "$WORK/fish.err"; then
    pass "rlctl completion fish: refused (exit $rc)"
else
    failure "rlctl completion fish: exit $rc, stdout $(wc -c <"$WORK/fish.out") bytes, stderr: $(cat "$WORK/fish.err")"
fi
rc=0
"$RLCTL" completion >/dev/null 2>"$WORK/none.err" || rc=$?
if ((rc != 0)) && grep -q SHELL "$WORK/none.err"; then
    pass "rlctl completion (no shell): refused (exit $rc)"
else
    failure "rlctl completion without SHELL: exit $rc, stderr: $(cat "$WORK/none.err")"
fi

# ---- zsh -------------------------------------------------------------------

if ! command -v zsh >/dev/null; then
    summary
    ((FAILED == 0)) || exit 1
    skip "zsh is not installed (apt-get install zsh): zsh completion not checked"
fi

"$RLCTL" completion zsh >"$WORK/rlctl.zsh" || fail "rlctl completion zsh exited $?"
if [[ $(head -n 1 "$WORK/rlctl.zsh") == '#compdef rlctl' ]]; then
    pass "zsh script starts with #compdef rlctl"
else
    failure "zsh script does not start with '#compdef rlctl'"
fi
if out=$(zsh -n "$WORK/rlctl.zsh" 2>&1); then pass "zsh -n accepts the script"; else failure "zsh -n: $out"; fi

# compinit writes its dump under $ZDOTDIR: keep it in $WORK.
mkdir "$WORK/zdotdir" "$WORK/fpath"
cp "$WORK/rlctl.zsh" "$WORK/fpath/_rlctl"
if out=$(ZDOTDIR=$WORK/zdotdir zsh -f -c \
    'autoload -Uz compinit && compinit -u && source <("$1" completion zsh) && [[ ${_comps[rlctl]-} == _rlctl ]]' \
    zsh "$RLCTL" 2>&1); then
    pass "zsh: source <(rlctl completion zsh) after compinit registers _rlctl"
else
    failure "zsh: sourcing after compinit: ${out:-_rlctl not registered for rlctl}"
fi
if out=$(ZDOTDIR=$WORK/zdotdir zsh -f -c \
    'fpath=("$1" $fpath) && autoload -Uz compinit && compinit -u && [[ ${_comps[rlctl]-} == _rlctl ]]' \
    zsh "$WORK/fpath" 2>&1); then
    pass "zsh: _rlctl in \$fpath is picked up by compinit"
else
    failure "zsh: _rlctl in \$fpath: ${out:-not registered for rlctl}"
fi

# Real completions: an interactive zsh in a pseudo-terminal loads the script
# (sourced, or from $fpath), is sent LINE and TAB, and what it shows is
# printed once UNTIL appears in it (or after 10 s).
cat >"$WORK/complete.zsh" <<'ZSH'
zmodload zsh/zpty || exit 3
local how=$1 script=$2 line=$3 until=$4 out='' chunk
# Reads what the shell shows until PATTERN has appeared (10 s at most).
read_until() {
    local pattern=$1
    integer deadline=$((SECONDS + 10))
    while ((SECONDS < deadline)); do
        if zpty -r -t shell chunk; then out+=$chunk; else sleep 0.05; fi
        [[ $out == *${~pattern}* ]] && return 0
    done
    return 1
}
zpty shell env -i HOME=$ZDOTDIR ZDOTDIR=$ZDOTDIR TERM=dumb PATH=$PATH zsh -f -i
zpty -w shell "PS1='' RPS1=''; setopt no_beep; LISTMAX=1000"
if [[ $how == fpath ]]; then
    zpty -w shell "fpath=(${(q)script:h} \$fpath); autoload -Uz compinit && compinit -u -D"
else
    zpty -w shell "autoload -Uz compinit && compinit -u -D && source ${(q)script}"
fi
# The markers are computed by the shell, so that its echo of the command does not match.
zpty -w shell 'echo SETUP-$((6 * 7))-DONE'
read_until 'SETUP-42-DONE' || { print -r -- "setup failed: $out"; exit 4; }
out=''
zpty -w -n shell "$line"$'\t'
read_until "$until" || true
zpty -w -n shell $'\C-u'
zpty -w shell 'echo CAPTURE-$((6 * 7))-END'
read_until 'CAPTURE-42-END' || true
zpty -d shell
print -r -- "$out"
ZSH

# zsh_shows WHAT HOW LINE UNTIL TEXT...: completing LINE shows every TEXT.
zsh_shows() {
    local what=$1 how=$2 line=$3 until=$4 shown text missing=''
    shift 4
    shown=$(ZDOTDIR=$WORK/zdotdir zsh -f "$WORK/complete.zsh" "$how" "$WORK/fpath/_rlctl" "$line" "$until" 2>&1 |
        tr -d '\r' | sed 's/\x1b\[[?0-9;]*[A-Za-z]//g') || true
    for text in "$@"; do
        grep -qF -- "$text" <<<"$shown" || missing+=" [$text]"
    done
    if [[ -z $missing ]]; then
        pass "zsh ($how): $what"
    else
        failure "zsh ($how): $what: missing$missing in:"$'\n'"$shown"
    fi
}

zsh_shows "rlctl ban <TAB> lists the subcommands with descriptions" source 'rlctl ban ' 'history' \
    'add' 'del' 'list' 'history' 'lift the ban of CIDR'
zsh_shows "rlctl <TAB> (first completion autoloads _rlctl)" fpath 'rlctl ' 'version' \
    'status' 'completion' "reload the daemon's config file"
zsh_shows "rlctl completion <TAB>" source 'rlctl completion ' 'zsh' 'bash' 'zsh'
zsh_shows "rlctl ban add --<TAB>: options, descriptions with colons intact" fpath 'rlctl ban add --' 'removed' \
    '--ttl' '--file' '--json' '(default: until removed)'
zsh_shows "rlctl --js<TAB> completes to --json" source 'rlctl --js' '--json' 'rlctl --json'
zsh_shows "rlctl attach --mode <TAB>" source 'rlctl attach --mode ' 'generic' 'native' 'generic' 'auto'

summary
((FAILED == 0))
