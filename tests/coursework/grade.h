/* tests/coursework/grade.h: what the grading files share.
 *
 * Each exercise is graded by the tests of one Check test case, which
 * grade.c runs in forked processes (a stub or a bug that crashes loses that
 * test only).  Every test checks, in this order:
 *   1. that the exercise's stub did not run (grade_require_implemented),
 *   2. its numbers: gradients against finite differences, values against the
 *      reference the solution computed (grade_compare_reference), or a
 *      behaviour (a model learns a task within a few hundred steps).
 * Failure messages start with the exercise id and say what to look at.
 */
#ifndef TINYZOO_GRADE_H
#define TINYZOO_GRADE_H

#include <check.h>
#include <stdbool.h>

#include "gradcheck.h"
#include "tensor.h"

typedef struct {
    const char *id;                /* the EXERCISE region's id            */
    int points;                    /* for all of its tests                */
    void (*add_tests)(TCase *tc);  /* tcase_add_test for each of its tests */
} GradedExercise;

/* Fails the test with "<id>: not implemented yet" when the stub ran. */
void grade_require_implemented(const char *id);

/* Fails with "<id>: cannot be graded until <needed> is implemented" when
 * the stub of exercise `needed`, which <id>'s tests go through, ran. */
void grade_require_other(const char *id, const char *needed);

/* Compares `values` (count) with the reference values stored under `name`
 * (tests/coursework/reference.txt), |got - expected| <= atol + rtol |expected|;
 * fails naming the first index that differs.  When the grader runs with
 * --write-reference, stores them instead (the solution's values). */
void grade_compare_reference(const char *id, const char *name, const float *values, int count,
                             float atol, float rtol);

/* Checks the gradients of `forward` against finite differences (gradcheck.h)
 * and fails with the first element that differs:
 * "<id>: gradient of <input> differs from finite differences at index 3: got 0.12, expected 0.42". */
void grade_gradcheck(const char *id, const char *what, GradcheckForward forward, void *context,
                     Tensor *const *inputs, int input_count);

/* The graded exercises of each area (grade_<area>.c). */
extern const GradedExercise grade_common_exercises[];
extern const GradedExercise grade_transformer_exercises[];
extern const GradedExercise grade_seq2seq_exercises[];
extern const GradedExercise grade_recursive_nn_exercises[];
extern const GradedExercise grade_autoencoder_exercises[];

#endif
