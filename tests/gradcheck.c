/* tests/gradcheck.c: analytic gradients against central finite differences.
 *
 * Why eps = 1e-2, rtol = 1e-2, atol = 1e-3 (GRADCHECK_DEFAULT):
 * the central difference (L(x+eps) - L(x-eps)) / (2 eps) has two errors.
 *   - Truncation: (eps^2 / 6) |L'''|, about 2e-5 for eps = 1e-2 and the O(1)
 *     third derivatives of these ops on O(1) inputs.
 *   - Rounding: every output y_k is float32 (unit roundoff u = 6e-8), so each
 *     L carries an error of about u * S, S = sum |y_k R_k| over the outputs
 *     that x_i changes (the other outputs are recomputed bit for bit and
 *     cancel exactly).  Divided by 2 eps: about u S / eps = 6e-6 S, and S is
 *     at most a few tens here, so ~1e-4.
 * Shrinking eps to 1e-3 would cut truncation 100x but multiply rounding by
 * 10, and in float32 rounding dominates; 1e-2 balances the two.  Both errors
 * stay well under atol + rtol * |gradient| = 1e-3 + 1% of the gradient,
 * while a wrong backward (a missing term, a sign, `=` instead of `+=`, a
 * factor of 2) is off by a sizeable fraction of the gradient itself.
 * L is summed in double from the float outputs, so the sum adds no error,
 * and the step is divided by the perturbation actually stored in float
 * ((x+eps) - (x-eps) after rounding), not by the nominal 2 eps.
 */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const GradcheckTolerance GRADCHECK_DEFAULT = {.eps = 1e-2f, .rtol = 1e-2f, .atol = 1e-3f};

enum { GRADCHECK_ARENA_BYTES = 1 << 20, GRADCHECK_TAPE = 4096, GRADCHECK_MAX_REPORTS = 8 };

/* The fixed random weights R of L = sum(y * R): a fresh generator with a
 * fixed seed, so every evaluation uses the same R. */
static void fill_loss_weights(float *weights, int count) {
    Rng rng;
    rng_seed(&rng, 20240607u, 7u);
    for (int i = 0; i < count; i++) weights[i] = rng_normal(&rng);
}

/* Numeric path: L(x) = sum(y * R) in double, forward only. */
static double evaluate_loss(Graph *g, GradcheckForward forward, void *context,
                            Tensor *const *inputs, const float *weights, int weight_count) {
    graph_reset(g);
    Tensor *output = forward(g, inputs, context);
    if (output->numel != weight_count)
        fatal("gradcheck: the forward changed its output size from %d to %d", weight_count,
              output->numel);
    double loss = 0.0;
    for (int k = 0; k < output->numel; k++) loss += (double)output->data[k] * weights[k];
    return loss;
}

/* Analytic path: L = op_sum(op_mul(y, R)), then graph_backward.  Copies each
 * input's gradient into `analytic[i]` (numel floats).  Returns y's size. */
static int analytic_gradients(Graph *g, GradcheckForward forward, void *context,
                              Tensor *const *inputs, int input_count, float **analytic,
                              float **weights) {
    for (int i = 0; i < input_count; i++) {
        if (inputs[i]->grad == NULL) fatal("gradcheck: input %d has no gradient", i);
        memset(inputs[i]->grad, 0, (size_t)inputs[i]->numel * sizeof(float));
    }
    graph_reset(g);
    Tensor *output = forward(g, inputs, context);
    *weights = xmalloc((size_t)output->numel * sizeof(float));
    fill_loss_weights(*weights, output->numel);
    Tensor *weight_tensor = tensor_new(g, output->ndim, output->shape, false);
    memcpy(weight_tensor->data, *weights, (size_t)output->numel * sizeof(float));
    Tensor *loss = op_sum(g, op_mul(g, output, weight_tensor));
    graph_backward(g, loss);
    for (int i = 0; i < input_count; i++) {
        analytic[i] = xmalloc((size_t)inputs[i]->numel * sizeof(float));
        memcpy(analytic[i], inputs[i]->grad, (size_t)inputs[i]->numel * sizeof(float));
    }
    return output->numel;
}

static bool close_enough(double analytic, double numeric, GradcheckTolerance tolerance) {
    double scale = fmax(fabs(analytic), fabs(numeric));
    return fabs(analytic - numeric) <= tolerance.atol + tolerance.rtol * scale;
}

int gradcheck_tensor(const char *label, GradcheckForward forward, void *context,
                     Tensor *const *inputs, int input_count, GradcheckTolerance tolerance) {
    return gradcheck_tensor_first(label, forward, context, inputs, input_count, tolerance, NULL);
}

int gradcheck_tensor_first(const char *label, GradcheckForward forward, void *context,
                           Tensor *const *inputs, int input_count, GradcheckTolerance tolerance,
                           GradcheckMismatch *first) {
    if (first) *first = (GradcheckMismatch){.input = -1};
    Graph g;
    graph_init(&g, GRADCHECK_ARENA_BYTES, GRADCHECK_TAPE);
    float **analytic = xcalloc((size_t)input_count, sizeof(float *));
    float *weights = NULL;
    int weight_count =
        analytic_gradients(&g, forward, context, inputs, input_count, analytic, &weights);

    int mismatches = 0;
    double largest_numeric = 0.0;
    for (int i = 0; i < input_count; i++) {
        float *x = inputs[i]->data;
        for (int j = 0; j < inputs[i]->numel; j++) {
            float saved = x[j];
            float up = saved + tolerance.eps, down = saved - tolerance.eps;
            x[j] = up;
            double loss_up = evaluate_loss(&g, forward, context, inputs, weights, weight_count);
            x[j] = down;
            double loss_down = evaluate_loss(&g, forward, context, inputs, weights, weight_count);
            x[j] = saved;
            double numeric = (loss_up - loss_down) / ((double)up - (double)down);
            largest_numeric = fmax(largest_numeric, fabs(numeric));
            if (close_enough(analytic[i][j], numeric, tolerance)) continue;
            if (first && first->input < 0)
                *first = (GradcheckMismatch){.input = i, .index = j, .analytic = analytic[i][j],
                                             .numeric = numeric};
            if (mismatches++ < GRADCHECK_MAX_REPORTS)
                fprintf(stderr,
                        "gradcheck %s: input %d (%s) element %d: analytic %.6g, numeric %.6g\n",
                        label, i, inputs[i]->name ? inputs[i]->name : "?", j, analytic[i][j],
                        numeric);
        }
    }
    if (largest_numeric == 0.0) {
        fprintf(stderr, "gradcheck %s: every numeric derivative is zero; the check is vacuous\n",
                label);
        if (first) first->vacuous = true;
        mismatches++;
    }
    for (int i = 0; i < input_count; i++) free(analytic[i]);
    free(analytic);
    free(weights);
    graph_free(&g);
    return mismatches;
}

Tensor *gradcheck_random_tensor(const char *name, int ndim, const int *shape, float scale,
                                Rng *rng) {
    Tensor *t = tensor_alloc(name, ndim, shape, true);
    for (int i = 0; i < t->numel; i++) t->data[i] = scale * rng_normal(rng);
    return t;
}
