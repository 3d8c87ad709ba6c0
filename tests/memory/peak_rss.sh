#!/bin/sh
# tests/memory/peak_rss.sh BIN_DIR OUT_DIR: peak resident memory of every demo
# (the whole `make demo`, each program run measured) and of every benchmark
# config, written as OUT_DIR/peak-rss.md, the table in the README.
set -eu
BIN=$1
OUT=$2
mkdir -p "$OUT"
RAW="$OUT/raw.tsv"
: >"$RAW"
MEASURE="sh tests/memory/measure.sh $RAW"
make --no-print-directory demo RUN="$MEASURE" PLOT_TERM=png >"$OUT/demo.log" 2>&1
for config in tiny base medium; do
    for threads in 1 2; do
        $MEASURE "$BIN/transformer" bench --config "$config" --threads "$threads" --steps 5 >/dev/null
    done
done
for cell in gru lstm; do $MEASURE "$BIN/seq2seq" bench --cell "$cell" --threads 1 >/dev/null; done
$MEASURE "$BIN/seq2seq" bench --attention bahdanau --threads 1 >/dev/null
for model in rnn rntn; do $MEASURE "$BIN/recursive_nn" bench --model "$model" --threads 1 >/dev/null; done
for config in mnist small; do $MEASURE "$BIN/autoencoder" bench --config "$config" --threads 1 >/dev/null; done
{
    echo "| program run | peak RSS (MiB) |"
    echo "|---|---|"
    # KiB -> MiB; the command without the bin/ prefix and the output flags
    awk -F'\t' '{ cmd = $2; sub(/^[^ ]*\//, "", cmd); gsub(/ --(plot-term|quiet)( [^ -][^ ]*)?/, "", cmd);
                  printf "| `%s` | %.1f |\n", cmd, $1 / 1024 }' "$RAW"
} >"$OUT/peak-rss.md"
cat "$OUT/peak-rss.md"
