# recursive_nn/model.mk: demo, benchmark and parity targets of the tree networks.

# The demo: a TreeRNN and the bag-of-words baseline on the same generated
# sentiment treebank; the negation probe accuracy of each, side by side; a
# few probe trees drawn with their predicted labels (runs/recursive_nn-*/tree_*.png).
DEMOS += demo-recursive_nn
demo-recursive_nn: $(BIN)/recursive_nn
	$(RUN) ./$(BIN)/recursive_nn train --model rnn --out runs/recursive_nn-sentiment-rnn
	$(RUN) ./$(BIN)/recursive_nn train --model bow --out runs/recursive_nn-sentiment-bow
	@printf '\nnegation probe ("X" / "not X" pairs), polarity of the root:\n'
	@for m in rnn bow; do $(RUN) ./$(BIN)/recursive_nn eval --checkpoint runs/recursive_nn-sentiment-$$m/model.safetensors \
	    | sed -n "s/^probe_accuracy=\(.*\) probe_binary=\(.*\)/  $$m: fine-grained \1, positive-vs-negative \2/p"; done
	@printf 'predicted trees: runs/recursive_nn-sentiment-{rnn,bow}/tree_*.png\n'
	printf 'the movie is not very good\nthe plot is not bad\n' | $(RUN) ./$(BIN)/recursive_nn predict \
	    --checkpoint runs/recursive_nn-sentiment-rnn/model.safetensors

# tinyzoo against PyTorch on the same random trees (the script runs both).
BENCHES += bench-recursive_nn
bench-recursive_nn: $(BIN)/recursive_nn
	@for t in 1 2; do env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PYTHON) \
	    tests/bench/recursive_nn_torch.py --bin $(BIN)/recursive_nn --threads $$t || exit 1; done

PARITY += parity-recursive_nn
parity-recursive_nn: $(BIN)/recursive_nn
	$(PYTHON) tests/parity/recursive_nn_parity.py --bin $(BIN)/recursive_nn
