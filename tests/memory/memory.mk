# tests/memory/memory.mk: memory checks (README "Memory").
#   make memcheck    every demo at a small size under valgrind memcheck:
#                    no invalid access, no uninitialised value, no leak
#   make peak-rss    peak resident memory of every demo and bench config,
#                    as the Markdown table in the README
# valgrind does not decode AVX-512, so memcheck uses its own build without
# -march=native in build-valgrind/ (the optimised build stays as it is).

MEMCHECK_MAKE_FLAGS = BUILD=build-valgrind BIN=build-valgrind/bin NATIVE=0 OPT='-O1 -g'

.PHONY: memcheck peak-rss deps-memcheck
deps-memcheck:
	@sh .ci/ensure-packages valgrind gnuplot-nox

memcheck: deps-memcheck
	@$(MAKE) --no-print-directory $(MEMCHECK_MAKE_FLAGS) build-valgrind/bin/spiral \
	    $(MODELS:%=build-valgrind/bin/%)
	sh tests/memory/memcheck.sh build-valgrind/bin build-valgrind/memcheck

peak-rss: all
	sh tests/memory/peak_rss.sh $(BIN) runs/peak-rss
