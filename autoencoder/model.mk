# autoencoder/model.mk: the autoencoders' demo, benchmark and parity targets
# (included by the top-level Makefile).

AE_DEMO_FLAGS = --threads 2 --batch 64 --plot-term $(or $(PLOT_TERM),png) --quiet
AE_RUNS = runs/autoencoder

# The demo, about a minute: an ae and a vae on the generated glyphs (the
# reconstruction grid, the latent scatter, the vae's manifold and samples),
# a denoising example, the anomaly ROC with the shapes held out, and a linear
# autoencoder next to PCA.
DEMOS += demo-autoencoder
demo-autoencoder: $(BIN)/autoencoder
	@echo "== autoencoder: ae, 784-256-32 on glyphs ($(AE_RUNS)-ae: reconstructions.png, latent.png, loss.png)"
	$(RUN) ./$(BIN)/autoencoder train --model ae --steps 1000 --no-pca --out $(AE_RUNS)-ae $(AE_DEMO_FLAGS)
	@echo "== autoencoder: vae with a 2-D code, on the digits ($(AE_RUNS)-vae: latent.png, manifold.png, samples.png)"
	$(RUN) ./$(BIN)/autoencoder train --model vae --layers 784,256,2 --holdout shapes --steps 3000 --lr 2e-3 \
	    --beta-warmup 500 --no-pca --out $(AE_RUNS)-vae $(AE_DEMO_FLAGS)
	@echo "== autoencoder: denoising, Gaussian noise of std 0.5 ($(AE_RUNS)-dae)"
	$(RUN) ./$(BIN)/autoencoder train --model dae --noise-level 0.5 --steps 1000 --no-pca --out $(AE_RUNS)-dae $(AE_DEMO_FLAGS)
	$(RUN) ./$(BIN)/autoencoder denoise --index 7 --out $(AE_RUNS)-dae
	$(RUN) ./$(BIN)/autoencoder denoise --index 7 --out $(AE_RUNS)-ae --noise-level 0.5
	@echo "== autoencoder: anomaly detection, the digits 4 and 7 held out ($(AE_RUNS)-anomaly: roc.png)"
	$(RUN) ./$(BIN)/autoencoder train --model ae --holdout 4,7 --steps 1000 --no-pca --out $(AE_RUNS)-anomaly $(AE_DEMO_FLAGS)
	$(RUN) ./$(BIN)/autoencoder anomaly --out $(AE_RUNS)-anomaly --plot-term $(or $(PLOT_TERM),png)
	@echo "== autoencoder: a linear autoencoder (784-32, squared error) against PCA with 32 components"
	$(RUN) ./$(BIN)/autoencoder train --model ae --layers 784,32 --activation linear --output mse --steps 1500 --lr 3e-3 \
	    --out $(AE_RUNS)-linear $(AE_DEMO_FLAGS)

# tinyzoo against PyTorch on the same models (the script runs both).
BENCHES += bench-autoencoder
bench-autoencoder: $(BIN)/autoencoder
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PYTHON) tests/bench/autoencoder_torch.py \
	    --bin $(BIN)/autoencoder --configs mnist,small --threads 1,2

PARITY += parity-autoencoder
parity-autoencoder: $(BIN)/autoencoder
	$(PYTHON) tests/parity/autoencoder_parity.py --bin $(BIN)/autoencoder
