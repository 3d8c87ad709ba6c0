/* tests/gradcheck.h: checks an autograd gradient against central finite
 * differences.
 *
 * The recipe (the same idea the model folders reuse for their own layers):
 *   1. Run `forward` once to get an output y of any shape.
 *   2. Reduce it to a scalar with fixed random weights R of y's shape:
 *        L = sum(y * R)
 *      (a plain sum would hide errors that cancel between elements, e.g. a
 *      softmax gradient that is off by a constant per row).
 *   3. Analytic: graph_backward(L), read every input's gradient.
 *   4. Numeric: for each input element x_i, re-run the forward at x_i + eps
 *      and x_i - eps:  dL/dx_i ~ (L(x+eps) - L(x-eps)) / (2 eps).
 *   5. Compare with a mixed tolerance: |a - n| <= atol + rtol * max(|a|, |n|).
 *
 * Inputs must outlive graph_reset, so they are malloc'd tensors
 * (tensor_alloc) or parameters of a ParamSet, never arena tensors.  The
 * forward may create arena tensors of its own (constants, masks).
 */
#ifndef TINYZOO_GRADCHECK_H
#define TINYZOO_GRADCHECK_H

#include <stdbool.h>

#include "rng.h"
#include "tensor.h"

/* Builds the computation from `inputs` and returns its output (any shape).
 * Called many times; it must compute the same function every time (reseed
 * any Rng it uses, as the dropout check does). */
typedef Tensor *(*GradcheckForward)(Graph *g, Tensor *const *inputs, void *context);

typedef struct {
    float eps;  /* half-width of the central difference        */
    float rtol; /* relative tolerance, of max(|analytic|, |numeric|) */
    float atol; /* absolute tolerance, for gradients near zero  */
} GradcheckTolerance;

/* eps 1e-2, rtol 1e-2, atol 1e-3; gradcheck.c explains the choice. */
extern const GradcheckTolerance GRADCHECK_DEFAULT;

/* Compares analytic and numeric gradients of every element of every input.
 * Returns the number of elements that disagree (0 when all agree) and prints
 * the first few to stderr, prefixed with `label`.  A check in which every
 * numeric derivative is exactly zero counts as one failure: it could not
 * have caught anything. */
int gradcheck_tensor(const char *label, GradcheckForward forward, void *context,
                     Tensor *const *inputs, int input_count, GradcheckTolerance tolerance);

/* The first element that disagreed, for a message that names it (the
 * coursework grader's "differs at index 3: got 0.12, expected 0.42"). */
typedef struct {
    int input;       /* which input; -1 when every element agreed            */
    int index;       /* which element of it                                  */
    double analytic; /* the gradient backward computed                       */
    double numeric;  /* the finite-difference estimate                       */
    bool vacuous;    /* every numeric derivative was zero                    */
} GradcheckMismatch;

/* gradcheck_tensor that also fills `first` (which may be NULL). */
int gradcheck_tensor_first(const char *label, GradcheckForward forward, void *context,
                           Tensor *const *inputs, int input_count, GradcheckTolerance tolerance,
                           GradcheckMismatch *first);

/* A malloc'd tensor with a gradient, filled with N(0, scale^2) values. */
Tensor *gradcheck_random_tensor(const char *name, int ndim, const int *shape, float scale,
                                Rng *rng);
#define gradcheck_random_of(name, scale, rng, ndim, ...) \
    gradcheck_random_tensor((name), (ndim), (const int[]){__VA_ARGS__}, (scale), (rng))

#endif
