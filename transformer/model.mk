# transformer/model.mk: the transformer's demo, benchmark and parity targets
# (included by the top-level Makefile).

TRANSFORMER_DEMO_FLAGS = --threads 2 --plot-term $(or $(PLOT_TERM),png) --quiet

DEMOS += demo-transformer
demo-transformer: $(BIN)/transformer
	@echo "== transformer: a GPT learns to reverse strings (runs/transformer-reverse)"
	$(RUN) ./$(BIN)/transformer train --task reverse --task-length 6 --context 16 --d-model 64 --heads 4 \
	    --layers 2 --steps 800 --lr 3e-3 --out runs/transformer-reverse $(TRANSFORMER_DEMO_FLAGS)
	$(RUN) ./$(BIN)/transformer generate --checkpoint runs/transformer-reverse/model.safetensors \
	    --prompt 'jihabc>' --greedy --tokens 10
	@echo "== transformer: a GPT learns the toy farm language, word by word (runs/transformer-toy)"
	$(RUN) ./$(BIN)/transformer train --task toy --context 32 --d-model 64 --heads 4 --layers 2 \
	    --steps 400 --lr 3e-3 --out runs/transformer-toy $(TRANSFORMER_DEMO_FLAGS)
	$(RUN) ./$(BIN)/transformer generate --checkpoint runs/transformer-toy/model.safetensors \
	    --prompt 'the farmer' --tokens 30 --temperature 0.8 --seed 2
	@echo "== transformer: plots in runs/transformer-reverse/ and runs/transformer-toy/ (see transformer/README.md)"

BENCHES += bench-transformer
bench-transformer: $(BIN)/transformer
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PYTHON) tests/bench/transformer_torch.py \
	    --bin $(BIN)/transformer --configs tiny,base,medium --threads 1,2

PARITY += parity-transformer
parity-transformer: $(BIN)/transformer
	$(PYTHON) tests/parity/transformer_parity.py --bin $(BIN)/transformer
