#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# The man pages of docs/man/ against the binaries they describe:
#
#  1. each page renders without a single warning: `groff -man -Tutf8 -ww -z`,
#     and `man --warnings=w -l` at 80 columns when man(1) is installed;
#  2. each page has the sections NAME, SYNOPSIS, DESCRIPTION, OPTIONS,
#     EXIT STATUS and SEE ALSO;
#  3. everything `--help` prints is documented. Each binary's help is read,
#     and for rlctl the help of every subcommand and sub-subcommand, found
#     by walking the "Subcommands:" sections recursively. Then, in the page
#     source with its roff escapes undone (\- is -, fonts dropped, comments
#     ignored):
#       - each subcommand, by its full name (`ban add`), must begin a .SH/.SS
#         heading or a .TP/.TQ/.IP tag (an optional leading "rlctl " is
#         allowed): that tag starts the subcommand's entry, which runs until
#         the next heading or the tag of another subcommand (tags grouped by
#         .TQ share one entry);
#       - each option (long and short; -h/--help only at the top level) and
#         each positional argument of a subcommand must appear in that
#         subcommand's entry, those of the binary itself anywhere in the page,
#         as a whole word (`--for` is not satisfied by `--format`).
#     Only this direction is checked, binary to page: a page may document
#     more than the binary it is run against has.
#
# So an option or subcommand added to the code and not to its page fails
# here, with one line per thing missing.
#
# Usage: man_pages_test.sh BIN_DIR REPO_ROOT
#   BIN_DIR    the directory holding rlgated, rlctl and rlgate-l7
#              (build/default/userspace)
#   REPO_ROOT  the repository (its docs/man/ is checked)
# Exit: 0 passed, 1 failed (including groff missing or a binary whose help
# cannot be read). KEEP_TMP=1 keeps the work files (normalised pages, the
# help items, the entries) and prints where they are.
set -euo pipefail

BIN_DIR=${1:-}
ROOT=${2:-}
if [[ -z "$BIN_DIR" || -z "$ROOT" || ! -d "$BIN_DIR" || ! -d "$ROOT" ]]; then
    echo "usage: $0 BIN_DIR REPO_ROOT (got '${BIN_DIR}' '${ROOT}')" >&2
    exit 1
fi
MAN_DIR="$ROOT/docs/man"
BINARIES=(rlgated rlctl rlgate-l7)
REQUIRED_SECTIONS=("NAME" "SYNOPSIS" "DESCRIPTION" "OPTIONS" "EXIT STATUS" "SEE ALSO")
export LC_ALL=C.UTF-8

TMP=$(mktemp -d)
if [[ -n "${KEEP_TMP:-}" ]]; then
    echo "man_pages_test: work files kept in $TMP" >&2
else
    trap 'rm -rf "$TMP"' EXIT
fi

PROBLEMS=()
problem() { PROBLEMS+=("$*"); }

if ! command -v groff >/dev/null; then
    echo "FAIL: groff is not installed (Debian: apt-get install groff-base)" >&2
    exit 1
fi

# --- roff source -> one line per output line: KIND<TAB>TEXT ----------------
# KIND: sh (.SH), ss (.SS), tag (the tag of .TP/.TQ, or the first argument of
# .IP), text. Escapes are undone, comments and other requests dropped,
# whitespace collapsed.
normalise_page() {
    awk '
    function unescape(s) {
        gsub(/\\\\/, "\001", s)                       # \\ (a literal backslash)
        gsub(/\\-/, "-", s)
        gsub(/\\\((dq|lq|rq)/, "\"", s)
        gsub(/\\\([A-Za-z0-9][A-Za-z0-9]/, " ", s)    # other special characters
        gsub(/\\\[[^]]*\]/, " ", s)
        gsub(/\\f\([A-Za-z0-9][A-Za-z0-9]/, "", s)    # font changes
        gsub(/\\f\[[^]]*\]/, "", s)
        gsub(/\\f./, "", s)
        gsub(/\\\*\([A-Za-z0-9][A-Za-z0-9]/, "", s)   # strings
        gsub(/\\\*\[[^]]*\]/, "", s)
        gsub(/\\\*./, "", s)
        gsub(/\\[&%c|^]/, "", s)                      # zero-width escapes
        gsub(/\\[~ 0]/, " ", s)                       # unbreakable spaces
        gsub(/\\e/, "\001", s)
        gsub(/\001/, "\\", s)
        return s
    }
    function strip_comment(s) {
        gsub(/\\\\/, "\001", s)
        sub(/\\".*$/, "", s)
        gsub(/\001/, "\\\\", s)
        return s
    }
    # Splits macro arguments as roff does: blanks separate, "double quotes"
    # group ("" inside them is a quote), a backslash escape stays whole.
    function split_args(s, A,    n, i, L, c, cur) {
        n = 0; i = 1; L = length(s)
        while (i <= L) {
            while (i <= L && substr(s, i, 1) ~ /[ \t]/) i++
            if (i > L) break
            cur = ""
            if (substr(s, i, 1) == "\"") {
                i++
                while (i <= L) {
                    c = substr(s, i, 1)
                    if (c == "\"") {
                        if (substr(s, i + 1, 1) == "\"") { cur = cur "\""; i += 2; continue }
                        i++; break
                    }
                    cur = cur c; i++
                }
            } else {
                while (i <= L && substr(s, i, 1) !~ /[ \t]/) {
                    c = substr(s, i, 1)
                    if (c == "\\") { cur = cur substr(s, i, 2); i += 2; continue }
                    cur = cur c; i++
                }
            }
            A[++n] = cur
        }
        return n
    }
    function tidy(s) {
        gsub(/[ \t]+/, " ", s); sub(/^ /, "", s); sub(/ $/, "", s)
        return s
    }
    function emit(kind, s) {
        s = tidy(s)
        if (s == "") return
        if (pending_tag && kind == "text") { kind = "tag"; pending_tag = 0 }
        print kind "\t" s
    }
    {
        line = strip_comment($0)
        if (line ~ /^[.\047]/) {
            body = substr(line, 2)
            sub(/^[ \t]+/, "", body)
            if (!match(body, /^[A-Za-z][A-Za-z0-9]*/)) next
            name = substr(body, 1, RLENGTH)
            n = split_args(substr(body, RLENGTH + 1), A)
            joined = ""; glued = ""
            for (i = 1; i <= n; i++) {
                a = unescape(A[i])
                joined = joined (i > 1 ? " " : "") a
                glued = glued a
            }
            if (name == "SH") { pending_tag = 0; emit("sh", joined) }
            else if (name == "SS") { pending_tag = 0; emit("ss", joined) }
            else if (name == "TP" || name == "TQ") pending_tag = 1
            else if (name == "IP") { if (n >= 1) { pending_tag = 0; emit("tag", unescape(A[1])) } }
            else if (name ~ /^(B|I|SM|SB)$/) emit("text", joined)
            else if (name ~ /^(BR|RB|BI|IB|IR|RI)$/) emit("text", glued)
            next
        }
        emit("text", unescape(line))
    }'
}

# --- normalised page + subcommand paths -> entries -------------------------
# Reads the paths (one per line, "ban add") from file $1 and the normalised
# page on stdin. Prints "D<TAB>PATH" for each path some heading or tag starts
# with, and "S<TAB>PATH<TAB>TEXT" for each line of PATH's entry.
scope_entries() {
    awk -F '\t' -v paths_file="$1" '
    BEGIN {
        np = 0
        while ((getline p < paths_file) > 0) if (p != "") P[++np] = p
        close(paths_file)
    }
    function starts_with(t, p,    L) {
        L = length(p)
        return substr(t, 1, L) == p && (length(t) == L || substr(t, L + 1, 1) !~ /[A-Za-z0-9_-]/)
    }
    {
        kind = $1; text = $2
        if (kind == "sh" || kind == "ss" || kind == "tag") {
            t = text
            sub(/^rlctl /, "", t)
            best = ""
            for (i = 1; i <= np; i++)
                if (starts_with(t, P[i])) {
                    print "D\t" P[i]
                    if (length(P[i]) > length(best)) best = P[i]
                }
            if (best != "") {
                if (kind == "tag" && last_was_entry_tag) cur[best] = 1
                else { split("", cur); cur[best] = 1 }
                last_was_entry_tag = (kind == "tag")
            } else {
                if (kind != "tag") split("", cur)   # a heading ends the entry, an option tag does not
                last_was_entry_tag = 0
            }
        } else {
            last_was_entry_tag = 0
        }
        for (p in cur) print "S\t" p "\t" text
    }'
}

# --- CLI11 help -> "opt|pos|sub<TAB>NAME" -----------------------------------
parse_help() {
    awk '
    /^[A-Z][A-Za-z ]*:$/ { section = $0; next }
    /^  [^ ]/ {
        tok = $1
        if (section == "Subcommands:") print "sub\t" tok
        else if (section == "Positionals:") print "pos\t" tok
        else if (section != "") {
            n = split(tok, names, ",")
            for (i = 1; i <= n; i++)
                if (match(names[i], /^--?[A-Za-z0-9][A-Za-z0-9_-]*/))
                    print "opt\t" substr(names[i], 1, RLENGTH)
        }
    }'
}

# Walks BIN's help: writes ITEMS ("PATH|KIND|NAME", PATH empty for the binary
# itself; not tab-separated: read would merge an empty field into the next) and PATHS (every subcommand path).
walk_help() {
    local bin=$1 items=$2 paths=$3 name path out rc kind item usage_re
    name=$(basename "$bin")
    : >"$items"
    : >"$paths"
    local -a queue=("")
    while ((${#queue[@]} > 0)); do
        path=${queue[0]}
        queue=("${queue[@]:1}")
        local -a args=()
        [[ -z "$path" ]] || read -r -a args <<<"$path"
        if ((${#args[@]} > 4)); then
            problem "$name: subcommands nested deeper than 4 levels at '$path': not walked"
            continue
        fi
        rc=0
        out=$("$bin" "${args[@]}" --help 2>&1) || rc=$?
        if ((rc != 0)); then
            problem "$name${path:+ $path} --help: exit status $rc"
            continue
        fi
        # CLI11 answers an unknown subcommand with its parent's help: make
        # sure this is the help of PATH.
        usage_re="^Usage: (.*/)?${name}${path:+ $path}( |\$)"
        if ! grep -Eq -e "$usage_re" <<<"$out"; then
            problem "$name${path:+ $path} --help: not the help of '$name${path:+ $path}' (its Usage line does not name it)"
            continue
        fi
        while IFS=$'\t' read -r kind item; do
            case $kind in
                opt)
                    # Every subcommand has -h,--help: documented once, at the top.
                    if [[ -n "$path" && ("$item" == "--help" || "$item" == "-h") ]]; then continue; fi
                    printf '%s|opt|%s\n' "$path" "$item" >>"$items"
                    ;;
                pos) printf '%s|pos|%s\n' "$path" "$item" >>"$items" ;;
                sub)
                    printf '%s|sub|%s\n' "$path" "$item" >>"$items"
                    printf '%s\n' "${path:+$path }$item" >>"$paths"
                    queue+=("${path:+$path }$item")
                    ;;
            esac
        done < <(parse_help <<<"$out")
    done
}

# Whether FILE holds TOKEN as a whole word (not inside --longer-option).
mentions() {
    local file=$1 token=$2 re
    re=$(printf '%s' "$token" | sed 's/[][\.*^$+?(){}|/]/\\&/g')
    grep -Eq -e "(^|[^A-Za-z0-9_-])${re}([^A-Za-z0-9_-]|\$)" "$file"
}

SUMMARY=()
for bin_name in "${BINARIES[@]}"; do
    bin="$BIN_DIR/$bin_name"
    page="$MAN_DIR/$bin_name.8"
    if [[ ! -x "$bin" ]]; then
        problem "$bin: not found or not executable"
        continue
    fi
    if [[ ! -f "$page" ]]; then
        problem "$page: missing"
        continue
    fi

    # 1. Rendering.
    rc=0
    warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1 >/dev/null) || rc=$?
    if ((rc != 0)) || [[ -n "$warnings" ]]; then
        problem "$bin_name.8: groff -man -Tutf8 -ww -z: status $rc: ${warnings//$'\n'/ | }"
    fi
    if command -v man >/dev/null; then
        rc=0
        warnings=$(MANWIDTH=80 MANPAGER=cat PAGER=cat man --warnings=w -l "$page" 2>&1 >/dev/null) || rc=$?
        if ((rc != 0)) || [[ -n "$warnings" ]]; then
            problem "$bin_name.8: man --warnings=w -l: status $rc: ${warnings//$'\n'/ | }"
        fi
    fi

    # 2. Sections.
    norm="$TMP/$bin_name.norm"
    normalise_page <"$page" >"$norm"
    for section in "${REQUIRED_SECTIONS[@]}"; do
        grep -qxF -e "sh"$'\t'"$section" "$norm" || problem "$bin_name.8: no section .SH \"$section\""
    done

    # 3. Help against the page.
    items="$TMP/$bin_name.items"
    paths="$TMP/$bin_name.paths"
    walk_help "$bin" "$items" "$paths"
    scoped="$TMP/$bin_name.scoped"
    scope_entries "$paths" <"$norm" >"$scoped"
    cut -f2- "$norm" >"$TMP/$bin_name.text"

    n_opt=0 n_pos=0 n_sub=0
    while IFS='|' read -r path kind item; do
        where="$bin_name${path:+ $path}"
        case $kind in
            sub)
                n_sub=$((n_sub + 1))
                full="${path:+$path }$item"
                if ! grep -qxF -e "D"$'\t'"$full" "$scoped"; then
                    problem "$bin_name.8: subcommand '$bin_name $full' (listed by '$where --help') has no .SS heading or .TP tag starting with '$full'"
                fi
                ;;
            opt | pos)
                if [[ $kind == opt ]]; then n_opt=$((n_opt + 1)); what="option $item"; else
                    n_pos=$((n_pos + 1)); what="positional argument $item"; fi
                if [[ -z "$path" ]]; then
                    mentions "$TMP/$bin_name.text" "$item" || problem "$bin_name.8: $what (from '$where --help') is not mentioned"
                else
                    awk -F '\t' -v p="$path" '$1 == "S" && $2 == p { print $3 }' "$scoped" >"$TMP/entry"
                    mentions "$TMP/entry" "$item" ||
                        problem "$bin_name.8: $what of '$where' (from its --help) is not mentioned in the entry of '$path'"
                fi
                ;;
        esac
    done <"$items"
    SUMMARY+=("$bin_name: $n_opt options, $n_pos positionals, $n_sub subcommands")
done

join_summary() {
    local out="" s
    for s in "${SUMMARY[@]}"; do out+="${out:+; }$s"; done
    printf '%s' "$out"
}

if ((${#PROBLEMS[@]} > 0)); then
    printf 'FAIL: %s\n' "${PROBLEMS[@]}" >&2
    echo "man_pages_test: FAILED, ${#PROBLEMS[@]} problem(s) in $MAN_DIR (checked $(join_summary))" >&2
    exit 1
fi
echo "man_pages_test: OK: ${#BINARIES[@]} pages render without warnings and document all of --help ($(join_summary))"
