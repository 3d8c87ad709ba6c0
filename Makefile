# tinyzoo Makefile.  Targets by intent (see README):
#   make            build the library, every program and the tests (optimised)
#   make demo       the main job: run every demo, write plots under runs/
#   make test       build and run every Check test
#   make debug      -O0 -g3 build in build-debug/, for stepping through in gdb
#   make asan       build and run the tests under AddressSanitizer + UBSan
#   make bench      speed benchmarks (CSV under runs/bench/)
#   make compile_commands.json   for clangd (needs `bear`)
# Variables: CC, OPT (default -O3), WERROR=1 (adds -Werror), NATIVE=0 (no
# -march=native), OPENMP=0 (build without OpenMP).

CC      ?= cc
OPT     ?= -O3
BUILD   ?= build
BIN     ?= bin
NATIVE  ?= 1
OPENMP  ?= 1
WERROR  ?= 0

# The packages the Quick start needs; installed on demand by .ci/ensure-packages.
DEMO_PACKAGES = gnuplot-nox zlib1g-dev
TEST_PACKAGES = check pkg-config zlib1g-dev

WARNINGS = -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif
# -fno-math-errno: we never read errno after sqrtf/expf, and without it gcc
# cannot vectorize loops that call them.  It changes no result.
CFLAGS_BASE = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -fno-math-errno $(WARNINGS) -Icommon
LDLIBS = -lm -lz

# ---- Optional features, each probed once and reported with ✓ or ✗ ----------
probe = $(shell printf 'int main(void){return 0;}' | $(CC) $(1) -x c - -o /dev/null >/dev/null 2>&1 && echo yes)
ifeq ($(NATIVE),1)
HAVE_NATIVE := $(call probe,-march=native)
endif
ifeq ($(OPENMP),1)
HAVE_OPENMP := $(call probe,-fopenmp)
endif
HAVE_OPENBLAS := $(shell pkg-config --exists openblas 2>/dev/null && echo yes)
HAVE_CHECK := $(shell pkg-config --exists check 2>/dev/null && echo yes)

FEATURE_FLAGS =
ifeq ($(HAVE_NATIVE),yes)
FEATURE_FLAGS += -march=native
endif
ifeq ($(HAVE_OPENMP),yes)
FEATURE_FLAGS += -fopenmp
else
# Without OpenMP its pragmas are ignored by design, not a mistake.
FEATURE_FLAGS += -Wno-unknown-pragmas
endif
CFLAGS ?= $(OPT)
ALL_CFLAGS = $(CFLAGS_BASE) $(CFLAGS) $(FEATURE_FLAGS) $(EXTRA_CFLAGS)

# ---- Sources -------------------------------------------------------------------
COMMON_SRC  = $(wildcard common/*.c)
COMMON_OBJ  = $(COMMON_SRC:%.c=$(BUILD)/%.o)
LIBRARY     = $(BUILD)/libtinyzoo.a
# Each model folder builds one program bin/<folder> from all its .c files.
MODELS      = $(foreach m,seq2seq recursive_nn autoencoder transformer,$(if $(wildcard $(m)/*.c),$(m)))
PROGRAMS    = $(MODELS:%=$(BIN)/%) $(BIN)/spiral $(BIN)/bench_matmul
# The tests link every model's code except its main.c, so model functions
# are named after their model (transformer_forward, seq2seq_...).
MODEL_LIB_SRC = $(filter-out %/main.c,$(foreach m,$(MODELS),$(wildcard $(m)/*.c)))
MODEL_LIB_OBJ = $(MODEL_LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC    = $(wildcard tests/*.c)
TEST_OBJ    = $(TEST_SRC:%.c=$(BUILD)/%.o)
TEST_RUNNER = $(BUILD)/tests/run_tests
# Every `Suite *name_suite(void)` defined in tests/*.c is registered by a
# generated list, so adding a test file needs no other edit.
SUITE_LIST  = $(BUILD)/tests/suites.inc

# Each model folder may add demo and bench steps in its own model.mk:
#   DEMOS += demo-transformer     demo-transformer: ; ./bin/transformer ...
# The included *.mk files define rules before `all`; plain `make` must still build.
.DEFAULT_GOAL := all
DEMOS   =
# A command put before every demo program run, empty by default; for example
# `make demo RUN="valgrind -q"`, or the peak-memory measurement of
# tests/memory/memory.mk.
RUN     =
BENCHES =
PARITY  =
# PyTorch comparisons run with Debian's python3, or report that they were
# skipped when it is missing (each script also skips itself without torch).
PYTHON  = sh .ci/python-or-skip
-include $(wildcard */model.mk)
# Test tooling (fuzzing, coursework) adds its targets the same way.
-include $(wildcard tests/*/*.mk)
# The notebooks and the cross-model comparison (`make notebooks`, `make compare`).
-include $(wildcard notebooks/*.mk compare/*.mk)

.PHONY: all features demo test check debug asan bench clean deps-demo deps-test help $(DEMOS) $(BENCHES) $(PARITY)
all: features $(PROGRAMS) $(if $(HAVE_CHECK),$(TEST_RUNNER))

help:
	@sed -n '1,/^$$/p' Makefile

features:
	@printf 'tinyzoo build: %s %s\n' '$(CC)' '$(OPT)'
	@printf '  %s -march=native\n' '$(if $(HAVE_NATIVE),✓,✗)'
	@printf '  %s OpenMP\n' '$(if $(HAVE_OPENMP),✓,✗)'
	@printf '  %s Check (unit tests)\n' '$(if $(HAVE_CHECK),✓,✗)'
	@printf '  %s OpenBLAS (benchmark comparison only)\n' '$(if $(HAVE_OPENBLAS),✓,✗)'
	@printf '  %s gnuplot (PNG plots)\n' '$(if $(shell command -v gnuplot),✓,✗)'

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(LIBRARY): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

# bin/<model>: every .c in the model's folder, plus the library.
.SECONDEXPANSION:
$(MODELS:%=$(BIN)/%): $(BIN)/%: $$(addprefix $(BUILD)/,$$(subst .c,.o,$$(wildcard $$*/*.c))) $(LIBRARY)
	@mkdir -p $(BIN)
	$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS)

$(BIN)/spiral: $(BUILD)/common/examples/spiral.o $(LIBRARY)
	@mkdir -p $(BIN)
	$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS)

# The matmul benchmark links OpenBLAS only when it is installed.
BENCH_FLAGS = $(if $(HAVE_OPENBLAS),-DHAVE_OPENBLAS $(shell pkg-config --cflags openblas))
BENCH_LIBS  = $(if $(HAVE_OPENBLAS),$(shell pkg-config --libs openblas))
$(BUILD)/tests/bench/bench_matmul.o: tests/bench/bench_matmul.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(BENCH_FLAGS) -MMD -MP -c $< -o $@
$(BIN)/bench_matmul: $(BUILD)/tests/bench/bench_matmul.o $(LIBRARY)
	@mkdir -p $(BIN)
	$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS) $(BENCH_LIBS)

$(BUILD)/tests/%.o: CFLAGS_BASE += $(shell pkg-config --cflags check 2>/dev/null) -I$(BUILD)/tests
$(SUITE_LIST): $(TEST_SRC)
	@mkdir -p $(dir $@)
	@grep -ho '^Suite \*[a-z0-9_]*_suite(void)' $(TEST_SRC) | sed 's/^Suite \*\(.*\)(void)/SUITE(\1)/' | sort > $@.tmp
	@mv $@.tmp $@
# Every test file includes test_suites.h, which reads the generated list.
$(TEST_OBJ): $(SUITE_LIST)
$(TEST_RUNNER): $(TEST_OBJ) $(MODEL_LIB_OBJ) $(LIBRARY)
	$(CC) $(ALL_CFLAGS) $^ -o $@ $(shell pkg-config --libs check) $(LDLIBS)

# ---- Intent targets ----------------------------------------------------------
deps-demo:
	@sh .ci/ensure-packages $(DEMO_PACKAGES)
deps-test:
	@sh .ci/ensure-packages $(TEST_PACKAGES)

# OpenMP threads that wait for each other by spinning (the default) slow a
# 2-thread run down 5x when another program takes a core; sleeping costs
# about 10% on a quiet machine (README "Performance").  The demos and tests
# sleep unless OMP_WAIT_POLICY says otherwise; `make bench` keeps the default.
demo test: export OMP_WAIT_POLICY ?= passive
demo: deps-demo
	@$(MAKE) --no-print-directory all
	$(RUN) ./$(BIN)/spiral train --out runs/spiral
	@$(MAKE) --no-print-directory $(DEMOS)

# Check forks each test (CK_FORK), so a crash fails one test, not the run.
test: deps-test
	@$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory $(TEST_RUNNER)
	cd tests && TINYZOO_BIN=../$(BIN) ../$(TEST_RUNNER)
	@$(MAKE) --no-print-directory $(PARITY)

debug:
	@$(MAKE) --no-print-directory BUILD=build-debug BIN=build-debug/bin OPT='-O0 -g3' NATIVE=0 all
	@echo "debug build in build-debug/bin; try: gdb --args build-debug/bin/spiral train --steps 5"

# Sanitizers: a separate build tree so the optimised build stays intact.
asan: deps-test
	@$(MAKE) --no-print-directory BUILD=build-asan BIN=build-asan/bin OPT='-O1 -g' \
	    EXTRA_CFLAGS='-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all' \
	    all build-asan/tests/run_tests
	cd tests && TINYZOO_BIN=../build-asan/bin ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ../build-asan/tests/run_tests

bench: all
	@mkdir -p runs/bench
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./$(BIN)/bench_matmul --csv runs/bench/matmul.csv
	@$(MAKE) --no-print-directory $(BENCHES)

compile_commands.json:
	$(MAKE) clean && bear -- $(MAKE) all

clean:
	rm -rf build build-debug build-asan build-valgrind build-fuzz bin

# Header dependencies of every build tree (build/, build-asan/, build-debug/,
# build-valgrind/, build-fuzz/), so that a changed header rebuilds the objects
# of whichever tree is being built.  (build/assignment holds generated
# coursework trees, each with its own build.)
-include $(shell find build build-* -path build/assignment -prune -o -name '*.d' -print 2>/dev/null)
