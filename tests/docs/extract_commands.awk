# SPDX-License-Identifier: BSD-2-Clause
# Prints the shell transcripts of one Markdown file, one command per record:
#   LINE <TAB> OCCURRENCE <TAB> EXPECT <TAB> COMMAND
# A command is a line starting with "$ " inside a fenced block (a trailing "\"
# continues it on the next line: the lines are joined with a space). OCCURRENCE counts earlier identical commands in the file
# (1 = first). EXPECT is the exit status the transcript shows: N when
# "$ echo $?" prints N right after it, "fail" when its output has a line
# "rlctl: ..." (rlctl's error prefix; not for --help), else 0.
# POSIX awk (Debian's mawk): no gawk extensions.
function flush() {
    if (cmd != "") {
        seen[cmd]++
        printf "%d\t%d\t%s\t%s\n", cmd_line, seen[cmd_raw], expect, cmd
    }
    cmd = ""
}
/^```/ { flush(); in_fence = !in_fence; continuing = 0; want_status = 0; next }
!in_fence { next }
continuing {
    line = $0
    continuing = sub(/\\$/, "", line)
    cmd = cmd " " line; cmd_raw = cmd
    next
}
/^\$ echo \$\?$/ { want_status = 1; next }
want_status { if (cmd != "") expect = $0; want_status = 0; next }
/^\$ / {
    flush()
    line = substr($0, 3)
    continuing = sub(/\\$/, "", line)
    cmd = line; cmd_raw = cmd; cmd_line = NR; expect = "0"
    next
}
/^rlctl: / { if (cmd != "" && expect == "0" && cmd !~ /--help/) expect = "fail"; next }
END { flush() }
