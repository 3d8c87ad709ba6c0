# compare/compare.mk: `make compare` trains the architectures side by side on
# shared toy tasks and writes runs/compare/ (see compare/compare.py).
#
#   make compare                      3 seeds, about 15 minutes on 2 cores
#   make compare QUICK=1              a few steps and 2 seeds (CI)
#   make compare COMPARE_FLAGS="--seeds 5 --tasks reverse,sentiment"
#   make compare-check                the tables against the runs, and the
#                                     mutation test of that check
COMPARE_PACKAGES = python3 gnuplot-nox zlib1g-dev
QUICK ?= 0
COMPARE_FLAGS ?=
COMPARE_ARGS = $(if $(filter 1,$(QUICK)),--quick) $(COMPARE_FLAGS)

.PHONY: compare compare-check deps-compare
deps-compare:
	@sh .ci/ensure-packages $(COMPARE_PACKAGES)

compare: export OMP_WAIT_POLICY ?= passive
compare: deps-compare
	@$(MAKE) --no-print-directory all
	python3 compare/compare.py $(COMPARE_ARGS)
	python3 compare/check_compare.py

compare-check: deps-compare
	python3 compare/check_compare.py --mutation-test
