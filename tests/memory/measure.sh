#!/bin/sh
# tests/memory/measure.sh FILE COMMAND...: runs COMMAND and appends a line
# "<peak resident KiB><TAB><command>" to FILE (GNU time's %M).  Used as
# `make demo RUN="sh tests/memory/measure.sh FILE"`; exits with COMMAND's status.
file=$1; shift
record=$(mktemp)
/usr/bin/time -f '%M' -o "$record" "$@"
status=$?
printf '%s\t%s\n' "$(tail -n 1 "$record")" "$*" >>"$file"
rm -f "$record"
exit "$status"
