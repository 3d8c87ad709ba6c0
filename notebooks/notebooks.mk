# notebooks/notebooks.mk: `make notebooks` executes every notebook headless.
#
#   make notebooks                          all of notebooks/[0-9]*.ipynb
#   make notebooks NOTEBOOKS=notebooks/01-seq2seq.ipynb   just one
#
# Each notebook runs top to bottom in a fresh kernel (jupyter nbconvert
# --execute, Debian's python3-nbclient and python3-ipykernel) and is written
# with its outputs to $(BUILD)/notebooks/; any cell error stops the target
# with a non-zero exit.  The stored notebooks must have no outputs, which
# check_clean.py verifies first.
NOTEBOOK_PACKAGES = jupyter-nbconvert python3-nbclient python3-ipykernel python3-numpy \
                    gnuplot-nox zlib1g-dev
NOTEBOOKS ?= $(sort $(wildcard notebooks/[0-9]*.ipynb))
# A cell may train a model for a minute; none should take ten.
NOTEBOOK_CELL_TIMEOUT = 600

.PHONY: notebooks deps-notebooks
deps-notebooks:
	@sh .ci/ensure-packages $(NOTEBOOK_PACKAGES)

notebooks: export OMP_WAIT_POLICY ?= passive
# ipykernel warns that its debugger and frozen modules disagree; no debugger runs here.
notebooks: export PYDEVD_DISABLE_FILE_VALIDATION = 1
notebooks: deps-notebooks
	@$(MAKE) --no-print-directory all
	/usr/bin/python3 notebooks/check_clean.py $(NOTEBOOKS)
	@mkdir -p $(BUILD)/notebooks
	@for notebook in $(NOTEBOOKS); do \
	    echo "== $$notebook"; \
	    start=$$(date +%s); \
	    jupyter nbconvert --to notebook --execute --log-level=WARN \
	        --ExecutePreprocessor.timeout=$(NOTEBOOK_CELL_TIMEOUT) \
	        --output-dir $(BUILD)/notebooks "$$notebook" || exit 1; \
	    echo "   ran in $$(( $$(date +%s) - start )) s: $(BUILD)/notebooks/$$(basename $$notebook)"; \
	done
