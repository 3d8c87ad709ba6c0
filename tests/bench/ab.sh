#!/bin/sh
# tests/bench/ab.sh: is build B faster than build A?  Runs the same bench
# command from each build's bin/ folder in turn, ROUNDS times, and prints
# the best and the median ms/step of each.
#
# Why alternate: on a shared machine the speed of everything drifts by 20%
# and more from one minute to the next, so A's runs and B's runs must be
# spread over the same minutes; and the best of many runs is the figure
# least disturbed by other programs (they can only slow a run down).  Even
# so, differences under ~10% need many rounds to be believed.
#
# usage: tests/bench/ab.sh ROUNDS BIN_A BIN_B PROGRAM ARGS...
#   e.g. (B is this tree, A a worktree of an older commit built as usual)
#   git worktree add /tmp/old HEAD~3 && make -C /tmp/old
#   tests/bench/ab.sh 8 /tmp/old/bin bin transformer bench --config tiny --threads 1
# PROGRAM's output must contain "N ms/step" or "ms_per_step=N" (every
# bench command of tinyzoo prints one of them).
set -eu
if [ $# -lt 4 ]; then
    echo "usage: $0 ROUNDS BIN_A BIN_B PROGRAM ARGS..." >&2
    exit 2
fi
rounds=$1 bin_a=$2 bin_b=$3 program=$4
shift 4
case $rounds in ''|*[!0-9]*) echo "$0: ROUNDS must be a positive integer, got '$rounds'" >&2; exit 2;; esac
for bin in "$bin_a" "$bin_b"; do
    [ -x "$bin/$program" ] || { echo "$0: no program $bin/$program" >&2; exit 2; }
done
results=$(mktemp)
trap 'rm -f "$results"' EXIT
round=1
while [ "$round" -le "$rounds" ]; do
    for side in A B; do
        bin=$bin_a; [ $side = B ] && bin=$bin_b
        ms=$("$bin/$program" "$@" 2>&1 | grep -oE '([0-9.]+ ms/step|ms_per_step=[0-9.]+)' | head -1 |
             grep -oE '[0-9]+(\.[0-9]+)?') || true
        [ -n "$ms" ] || { echo "$0: $bin/$program printed no ms/step" >&2; exit 1; }
        echo "$side $ms" >> "$results"
    done
    echo "round $round of $rounds done" >&2
    round=$((round + 1))
done
for side in A B; do
    bin=$bin_a; [ $side = B ] && bin=$bin_b
    grep "^$side " "$results" | cut -d' ' -f2 | sort -n |
        awk -v side="$side" -v bin="$bin" '{ v[NR] = $1 }
            END { printf "%s (%s): best %.3f ms/step, median %.3f, over %d runs\n",
                         side, bin, v[1], v[int((NR + 1) / 2)], NR }'
done
