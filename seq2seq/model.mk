# seq2seq/model.mk: the seq2seq demo, benchmark and PyTorch parity targets
# (included by the top-level Makefile).

SEQ2SEQ_THREADS ?= 2
SEQ2SEQ_DEMO_FLAGS = --threads $(SEQ2SEQ_THREADS) --plot-term $(or $(PLOT_TERM),png) --quiet
SEQ2SEQ_DATES = 3rd of March 2021\nMar 3, 2021\n03/03/21\nSaturday, July 4, 1987\n12.11.1999\n29 feb 2000

DEMOS += demo-seq2seq
demo-seq2seq: $(BIN)/seq2seq
	@echo "== seq2seq: reverse strings of 1..10 letters, with attention (runs/seq2seq-reverse-attention)"
	$(RUN) ./$(BIN)/seq2seq train --task reverse --attention bahdanau --steps 800 \
	    --out runs/seq2seq-reverse-attention $(SEQ2SEQ_DEMO_FLAGS)
	@echo "== seq2seq: the same with only the fixed-length context vector (runs/seq2seq-reverse-none)"
	$(RUN) ./$(BIN)/seq2seq train --task reverse --attention none --steps 800 \
	    --out runs/seq2seq-reverse-none $(SEQ2SEQ_DEMO_FLAGS)
	@echo "== seq2seq: accuracy against source length, both models on one chart (runs/seq2seq-reverse-compare)"
	$(RUN) ./$(BIN)/seq2seq plot --runs runs/seq2seq-reverse-none,runs/seq2seq-reverse-attention \
	    --out runs/seq2seq-reverse-compare --threads $(SEQ2SEQ_THREADS) --plot-term $(or $(PLOT_TERM),png)
	@echo "== seq2seq: human-readable dates to ISO 8601 (runs/seq2seq-dates)"
	$(RUN) ./$(BIN)/seq2seq train --task dates --attention bahdanau --steps 600 \
	    --out runs/seq2seq-dates $(SEQ2SEQ_DEMO_FLAGS)
	printf '$(SEQ2SEQ_DATES)\n' | $(RUN) ./$(BIN)/seq2seq translate \
	    --checkpoint runs/seq2seq-dates/model.safetensors --beam 3
	printf 'Saturday, July 4, 1987\n' | $(RUN) ./$(BIN)/seq2seq translate \
	    --checkpoint runs/seq2seq-dates/model.safetensors --show-attention --out runs/seq2seq-dates \
	    --plot-term $(or $(PLOT_TERM),png)

BENCHES += bench-seq2seq
bench-seq2seq: $(BIN)/seq2seq
	@for cell in gru lstm; do for threads in 1 2; do \
	    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PYTHON) tests/bench/seq2seq_torch.py \
	        --bin $(BIN)/seq2seq --cell $$cell --threads $$threads || exit 1; \
	done; done

PARITY += parity-seq2seq
parity-seq2seq: $(BIN)/seq2seq
	$(PYTHON) tests/parity/seq2seq_parity.py --bin $(BIN)/seq2seq
