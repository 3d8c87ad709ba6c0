#!/bin/sh
# tests/memory/memcheck.sh: every demo of `make demo`, at a small size, under
# valgrind memcheck.  A run passes when valgrind reports no error (invalid
# read or write, use of uninitialised values, bad free) and no leak, and the
# program itself exits 0.  Prints one line per run and a summary; exits 1 if
# any run fails.  Run it through `make memcheck`, which first builds the
# programs for valgrind: valgrind does not know AVX-512, so that build has no
# -march=native (BIN below).
#
#   sh tests/memory/memcheck.sh BIN_DIR [OUT_DIR]
set -u
BIN=${1:?usage: memcheck.sh BIN_DIR [OUT_DIR]}
OUT=${2:-build-valgrind/memcheck}
rm -rf "$OUT" && mkdir -p "$OUT"
command -v valgrind >/dev/null 2>&1 || { echo "memcheck: valgrind is not installed" >&2; exit 1; }

# --errors-for-leak-kinds: memory lost for good (definite) or reachable only
# through lost memory (indirect) is a leak; OpenMP's thread pool, still in use
# at exit, is not.  --error-exitcode makes any of them fail the run.
VALGRIND="valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite,indirect \
  --show-leak-kinds=definite,indirect --track-origins=yes --error-exitcode=99 --quiet"
COMMON="--threads 2 --plot-term dumb --quiet"
failures=0
runs=0

# run NAME COMMAND...: one program run under valgrind, its log in OUT/NAME.log.
run() {
    name=$1; shift
    runs=$((runs + 1))
    start=$(date +%s)
    $VALGRIND --log-file="$OUT/$name.valgrind" "$@" >"$OUT/$name.log" 2>&1 </dev/null
    status=$?
    seconds=$(( $(date +%s) - start ))
    errors=$(grep -c "^==[0-9]*== [A-Z]" "$OUT/$name.valgrind" 2>/dev/null)
    if [ "$status" -eq 0 ] && [ "$errors" -eq 0 ]; then
        printf 'ok    %-26s %4ss\n' "$name" "$seconds"
    else
        failures=$((failures + 1))
        printf 'FAIL  %-26s exit %s, %s valgrind lines: see %s/%s.valgrind\n' \
            "$name" "$status" "$errors" "$OUT" "$name"
    fi
}

# Each demo of the model.mk files, with few steps and small data.
run spiral-train        "$BIN/spiral" train --steps 30 --out "$OUT/spiral" $COMMON
TF_SMALL="--batch 8 --eval-batches 2 --eval-every 10"
run transformer-reverse "$BIN/transformer" train --task reverse --task-length 6 --context 16 \
    --d-model 32 --heads 2 --layers 1 --steps 20 --out "$OUT/tf-reverse" $TF_SMALL $COMMON
run transformer-toy     "$BIN/transformer" train --task toy --context 32 --d-model 32 --heads 2 \
    --layers 1 --steps 20 --out "$OUT/tf-toy" $TF_SMALL $COMMON
run transformer-generate "$BIN/transformer" generate --checkpoint "$OUT/tf-toy/model.safetensors" \
    --prompt "the " --tokens 20 --quiet
run transformer-bert    "$BIN/transformer" train --task sentiment --mode bert --context 32 \
    --d-model 32 --heads 2 --layers 1 --steps 20 --out "$OUT/tf-bert" $TF_SMALL $COMMON
S2S_SMALL="--embed 16 --hidden 32 --batch 16 --val-size 40 --eval-per-length 4 --eval-max-length 8 --heatmaps 1"
run seq2seq-attention   "$BIN/seq2seq" train --task reverse --attention bahdanau --steps 20 \
    --out "$OUT/s2s-attention" $S2S_SMALL $COMMON
run seq2seq-none        "$BIN/seq2seq" train --task reverse --attention none --cell lstm --steps 20 \
    --out "$OUT/s2s-none" $S2S_SMALL $COMMON
printf 'abc\nhello\n' >"$OUT/translate-input.txt"
run seq2seq-translate   "$BIN/seq2seq" translate --checkpoint "$OUT/s2s-attention/model.safetensors" \
    --beam 3 --input "$OUT/translate-input.txt"
RNN_SMALL="--dim 16 --train-size 200 --dev-size 50 --test-size 50 --probe-size 20"
run recursive_nn-rnn    "$BIN/recursive_nn" train --model rnn --steps 20 --out "$OUT/rnn" $RNN_SMALL $COMMON
run recursive_nn-rntn   "$BIN/recursive_nn" train --model rntn --steps 20 --out "$OUT/rntn" $RNN_SMALL $COMMON
printf 'the movie is not very good\n' >"$OUT/predict-input.txt"
run recursive_nn-predict "$BIN/recursive_nn" predict --checkpoint "$OUT/rnn/model.safetensors" \
    --input "$OUT/predict-input.txt"
AE_SMALL="--glyph-size 16 --glyph-count 400 --eval-images 40 --batch 32"
run autoencoder-ae      "$BIN/autoencoder" train --model ae --layers 256,64,8 --steps 20 --no-pca \
    --out "$OUT/ae" $AE_SMALL $COMMON
run autoencoder-vae     "$BIN/autoencoder" train --model vae --layers 256,64,2 --steps 20 \
    --out "$OUT/vae" $AE_SMALL $COMMON
run autoencoder-denoise "$BIN/autoencoder" denoise --index 7 --out "$OUT/ae"

echo "memcheck: $runs runs, $failures failed (logs in $OUT)"
[ "$failures" -eq 0 ]
