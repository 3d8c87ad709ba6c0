# tests/fuzz/fuzz.mk: libFuzzer targets for every input parser (README "Fuzzing").
#   make fuzz                      build every target in build-fuzz/, run each FUZZ_SECONDS
#   make fuzz FUZZ_SECONDS=600     longer runs
#   make fuzz FUZZ_TARGETS="tree pgm"   only some targets (fuzz_<name>.c)
#   make fuzz-clean                remove build-fuzz/ (objects, grown corpora, crashes)
# Each target is built with clang -fsanitize=fuzzer,address,undefined and
# runs, one after the other, over build-fuzz/corpus/<name>/: a copy of the
# seeds in tests/fuzz/corpus/<name>/ plus whatever earlier runs found, so the
# repository is never written to.  Inputs that crash, leak or hang are saved
# as build-fuzz/artifacts/<name>/crash-* (leak-*, timeout-*) and fail the run.

FUZZ_CC         ?= clang
FUZZ_SECONDS    ?= 30
FUZZ_DIR         = build-fuzz
# Debian's clang and its compiler-rt (libclang_rt.fuzzer-x86_64.a lives in
# libclang-rt-NN-dev, which libclang-rt-dev pulls in for the default clang).
FUZZ_PACKAGES    = clang libclang-rt-dev zlib1g-dev
FUZZ_ALL_TARGETS = $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS    ?= $(FUZZ_ALL_TARGETS)
# -O1 keeps the sanitizers' reports readable; no -march=native or OpenMP:
# the fuzzer runs one input at a time, and clang's OpenMP needs libomp.
FUZZ_MAKE_FLAGS  = BUILD=$(FUZZ_DIR) BIN=$(FUZZ_DIR)/bin CC=$(FUZZ_CC) OPT='-O1 -g' NATIVE=0 OPENMP=0 \
                   EXTRA_CFLAGS='-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all'
# -timeout: seconds for one input before it counts as a hang.
FUZZ_RUN_FLAGS   = -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1

.PHONY: fuzz deps-fuzz fuzz-programs fuzz-clean

deps-fuzz:
	@sh .ci/ensure-packages $(FUZZ_PACKAGES)

# Only meaningful with $(FUZZ_MAKE_FLAGS): `make fuzz` calls it that way.
fuzz-programs: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz/fuzz_%)

$(FUZZ_DIR)/fuzz/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/checks.o $(MODEL_LIB_OBJ) $(LIBRARY)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS)
# Objects made through the pattern rule above are kept, not rebuilt each time.
.SECONDARY: $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/tests/fuzz/%.o,$(wildcard tests/fuzz/*.c))

# First every saved regression input once (each must pass), then the timed run.
fuzz: deps-fuzz
	@$(MAKE) --no-print-directory $(FUZZ_MAKE_FLAGS) fuzz-programs
	@failed=""; \
	for name in $(FUZZ_TARGETS); do \
	    program=$(FUZZ_DIR)/fuzz/fuzz_$$name; corpus=$(FUZZ_DIR)/corpus/$$name; \
	    artifacts=$(FUZZ_DIR)/artifacts/$$name/; log=$(FUZZ_DIR)/logs/$$name.log; \
	    mkdir -p $$corpus $$artifacts $(FUZZ_DIR)/logs; \
	    cp tests/fuzz/corpus/$$name/* $$corpus/; \
	    dictionary=; [ -f tests/fuzz/$$name.dict ] && dictionary=-dict=tests/fuzz/$$name.dict; \
	    if [ -d tests/fuzz/regressions/$$name ] && \
	       ! $$program tests/fuzz/regressions/$$name/* >$$log 2>&1; then \
	        echo "fuzz_$$name: a saved regression input fails again; see $$log"; \
	        failed="$$failed $$name"; continue; \
	    fi; \
	    echo "fuzz_$$name: fuzzing for $(FUZZ_SECONDS) s ..."; \
	    if $$program $(FUZZ_RUN_FLAGS) -artifact_prefix=$$artifacts $$dictionary $$corpus >$$log 2>&1; then \
	        echo "fuzz_$$name: ok, $$(sed -n 's/^stat::number_of_executed_units: *//p' $$log) executions," \
	             "corpus of $$(ls $$corpus | wc -l) inputs"; \
	    else \
	        echo "fuzz_$$name: FAILED; the report ends with:"; tail -n 25 $$log; \
	        echo "fuzz_$$name: input saved in $$artifacts, full log in $$log"; \
	        failed="$$failed $$name"; \
	    fi; \
	done; \
	if [ -n "$$failed" ]; then echo "make fuzz: failed:$$failed"; exit 1; fi

fuzz-clean:
	rm -rf $(FUZZ_DIR)

-include $(shell find $(FUZZ_DIR) -name '*.d' 2>/dev/null)
