# tests/coursework/coursework.mk: the coursework kit (README, "Coursework").
#
# In the reference tree:
#   make assignment SET=transformer          build/assignment/transformer/ and .tar.gz
#   make assignment EX="tanh_backward causal_mask" [NAME=week1]
#   make assignment-list                     the exercises, where they are, the sets
#   make coursework-check                    every set: stubbed tree scores 0, solution full
# In a student tree (written by `make assignment`):
#   make grade                               grade the assignment's exercises
#
# The generator is tests/coursework/make_assignment.py (Python 3, standard
# library only); the grader is C (tests/coursework/grade*.c) and is built in
# the student tree, where common/exercise.c exists.

GRADER      = $(BUILD)/coursework/grade
GRADER_OBJ  = $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/coursework/grade*.c)) $(BUILD)/tests/gradcheck.o
GRADE_FLAGS =
# `make grade EXERCISES=all` grades every exercise, not just the assignment's.
EXERCISES   =

$(BUILD)/tests/coursework/%.o: CFLAGS_BASE += -Itests

.PHONY: grade grade-reference assignment assignment-list coursework-check deps-coursework

ifneq ($(wildcard common/exercise.c),)
# ---- A student tree --------------------------------------------------------------
$(GRADER): $(GRADER_OBJ) $(MODEL_LIB_OBJ) $(LIBRARY)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $^ -o $@ $(shell pkg-config --libs check) $(LDLIBS)

grade: deps-test
	@$(MAKE) --no-print-directory $(GRADER)
	./$(GRADER) --log $(BUILD)/coursework/grade.log $(if $(EXERCISES),--exercises "$(EXERCISES)") $(GRADE_FLAGS)

# What the solution computes, for the student trees' grade_compare_reference:
# run in a tree with nothing stubbed.
grade-reference: deps-test
	@$(MAKE) --no-print-directory $(GRADER)
	./$(GRADER) --log $(BUILD)/coursework/grade.log --exercises all --write-reference tests/coursework/reference.txt
else
grade:
	@echo "make grade runs inside an assignment tree: make assignment SET=<set>, then make -C build/assignment/<set> grade" >&2
	@exit 2
endif

ifneq ($(wildcard tests/coursework/make_assignment.py),)
# ---- The reference tree ----------------------------------------------------------
ASSIGNMENT_DIR   = build/assignment
NAME            ?= $(if $(SET),$(SET),custom)
# The optimisation of the trees that coursework-check builds: grading runs
# small inputs, so a quick compile matters more than fast code.
COURSEWORK_OPT  ?= -O1
MAKE_ASSIGNMENT  = python3 tests/coursework/make_assignment.py
COURSEWORK_SETS  = $(shell sed -n 's/^\([a-z0-9_]*\):.*/\1/p' tests/coursework/sets.txt)
# The solution tree: the reference with nothing stubbed, whose grader writes
# the reference values every assignment ships with.
SOLUTION_DIR     = $(ASSIGNMENT_DIR)/solution
REFERENCE_VALUES = $(SOLUTION_DIR)/tests/coursework/reference.txt
COURSEWORK_INPUTS = $(foreach d,common seq2seq recursive_nn autoencoder transformer,$(wildcard $(d)/*.c $(d)/*.h)) \
                    $(wildcard tests/coursework/*) tests/gradcheck.c tests/gradcheck.h

deps-coursework:
	@sh .ci/ensure-packages python3 $(TEST_PACKAGES)

$(REFERENCE_VALUES): $(COURSEWORK_INPUTS) | deps-coursework
	$(MAKE_ASSIGNMENT) --exercises none --out $(SOLUTION_DIR)
	$(MAKE) --no-print-directory -C $(SOLUTION_DIR) OPT=$(COURSEWORK_OPT) WERROR=$(WERROR) grade-reference

assignment-list: deps-coursework
	@$(MAKE_ASSIGNMENT) --list

assignment: $(REFERENCE_VALUES)
	@test -n "$(SET)$(EX)" || { echo 'make assignment: give SET=<set> or EX="<exercise ids>" (make assignment-list shows them)' >&2; exit 2; }
	$(MAKE_ASSIGNMENT) $(if $(SET),--set $(SET),--exercises "$(EX)") --out $(ASSIGNMENT_DIR)/$(NAME) \
	    --reference $(REFERENCE_VALUES) --tarball

# For every set: the stubbed tree builds with -Werror (the grader, then every
# program) and scores 0 on every exercise; the solution tree scores full points on every exercise (graded
# once: the sets only choose among the same exercises).
coursework-check: $(REFERENCE_VALUES)
	$(MAKE) --no-print-directory -C $(SOLUTION_DIR) OPT=$(COURSEWORK_OPT) WERROR=1 grade \
	    EXERCISES=all GRADE_FLAGS='--expect full --reference tests/coursework/reference.txt'
	@for set in $(COURSEWORK_SETS); do \
	    echo "== coursework-check: set $$set"; \
	    $(MAKE_ASSIGNMENT) --set $$set --out $(ASSIGNMENT_DIR)/check-$$set --reference $(REFERENCE_VALUES) || exit 1; \
	    $(MAKE) --no-print-directory -C $(ASSIGNMENT_DIR)/check-$$set OPT=$(COURSEWORK_OPT) WERROR=1 \
	        grade GRADE_FLAGS='--expect zero' || exit 1; \
	    $(MAKE) --no-print-directory -C $(ASSIGNMENT_DIR)/check-$$set OPT=$(COURSEWORK_OPT) WERROR=1 \
	        $(PROGRAMS) || exit 1; \
	done
	@echo "coursework-check: every set's stubs score 0, the solution scores full points"
	@# Outside a git checkout (a release tarball) the generator walks the
	@# folders instead of asking git: both must choose the same files.
	@$(MAKE_ASSIGNMENT) --list-files > $(ASSIGNMENT_DIR)/files-git.txt
	@GIT_DIR=/nonexistent $(MAKE_ASSIGNMENT) --list-files > $(ASSIGNMENT_DIR)/files-walked.txt
	@diff $(ASSIGNMENT_DIR)/files-git.txt $(ASSIGNMENT_DIR)/files-walked.txt || \
	    { echo "coursework-check: without git the generator would copy other files (diff above)" >&2; exit 1; }
	@echo "coursework-check: without git, the same $$(wc -l < $(ASSIGNMENT_DIR)/files-git.txt) files"
endif
