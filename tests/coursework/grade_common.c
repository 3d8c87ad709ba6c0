/* tests/coursework/grade_common.c: grading of the autograd exercises of
 * common/ (tensor.c's backward passes, nn.c's Adam update).
 *
 * A backward pass is graded by finite differences on small random inputs,
 * once plainly, once on the case the code must not forget (a mask, a frozen
 * parameter, a shared or transposed matrix), and once with the input also
 * used by a second op, which catches `=` where the gradient must be `+=`.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "grade.h"
#include "nn.h"

/* Every check draws its inputs from its own fixed seed. */
static Rng seeded(uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed, 1u);
    return rng;
}

static void free_all(Tensor **tensors, int count) {
    for (int i = 0; i < count; i++) tensor_free(tensors[i]);
}

/* Gradient check of a one-input forward on x (shape) ~ N(0, scale^2). */
static void check_one_input(const char *id, const char *what, GradcheckForward forward,
                            void *context, uint64_t seed, float scale, int ndim, const int *shape) {
    Rng rng = seeded(seed);
    Tensor *x = gradcheck_random_tensor("x", ndim, shape, scale, &rng);
    grade_gradcheck(id, what, forward, context, &x, 1);
    tensor_free(x);
}

/* ==== tanh_backward ============================================================== */

static Tensor *tanh_only(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return op_tanh(g, in[0]);
}

/* x feeds tanh and a scale: its gradient is the sum of both paths.  tanh
 * is recorded first, so its backward runs last, after the scale's has
 * already added to x->grad: an `=` there would wipe that out.  (Hence one
 * statement per op: C leaves the order of a call's arguments open.) */
static Tensor *tanh_plus_scale(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    Tensor *y = op_tanh(g, in[0]);
    return op_add(g, y, op_scale(g, in[0], 2.0f));
}

START_TEST(tanh_gradient) {
    check_one_input("tanh_backward", "tanh(x)", tanh_only, NULL, 11, 1.5f, 2, (const int[]){3, 5});
}
END_TEST

START_TEST(tanh_accumulates) {
    check_one_input("tanh_backward", "tanh(x) + 2x (add to x->grad with +=, do not overwrite it)",
                    tanh_plus_scale, NULL, 12, 1.5f, 2, (const int[]){4, 3});
}
END_TEST

static void tanh_tests(TCase *tc) {
    tcase_add_test(tc, tanh_gradient);
    tcase_add_test(tc, tanh_accumulates);
}

/* ==== softmax_backward =========================================================== */

static Tensor *softmax_only(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return op_softmax(g, in[0], NULL);
}

/* Scores (B, T, T) under a causal mask (T, T): row i sees keys 0..i. */
static Tensor *softmax_causal(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    int T = in[0]->shape[2];
    Tensor *mask = tensor_of(g, false, 2, T, T);
    for (int i = 0; i < T; i++)
        for (int j = 0; j <= i; j++) mask->data[i * T + j] = 1.0f;
    return op_softmax(g, in[0], mask);
}

static Tensor *softmax_plus_scale(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    Tensor *y = op_softmax(g, in[0], NULL); /* first, as in tanh_plus_scale */
    return op_add(g, y, op_scale(g, in[0], 0.5f));
}

START_TEST(softmax_gradient) {
    check_one_input("softmax_backward", "softmax(x)", softmax_only, NULL, 21, 1.0f, 3,
                    (const int[]){2, 3, 5});
}
END_TEST

START_TEST(softmax_masked_gradient) {
    check_one_input("softmax_backward", "softmax(x) under a causal mask", softmax_causal, NULL, 22,
                    1.0f, 3, (const int[]){2, 4, 4});
}
END_TEST

START_TEST(softmax_accumulates) {
    check_one_input("softmax_backward", "softmax(x) + x/2 (add to x->grad with +=, do not overwrite it)",
                    softmax_plus_scale, NULL, 23, 1.0f, 2, (const int[]){3, 6});
}
END_TEST

static void softmax_tests(TCase *tc) {
    tcase_add_test(tc, softmax_gradient);
    tcase_add_test(tc, softmax_masked_gradient);
    tcase_add_test(tc, softmax_accumulates);
}

/* ==== layernorm_backward ========================================================= */

static Tensor *layernorm_all(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return op_layernorm(g, in[0], in[1], in[2], 1e-5f);
}

/* gamma and beta (no gradient) come in through the context: frozen. */
static Tensor *layernorm_frozen(Graph *g, Tensor *const *in, void *context) {
    Tensor **frozen = context;
    return op_layernorm(g, in[0], frozen[0], frozen[1], 1e-5f);
}

static Tensor *layernorm_plus_scale(Graph *g, Tensor *const *in, void *context) {
    Tensor *y = layernorm_frozen(g, in, context); /* first, as in tanh_plus_scale */
    return op_add(g, y, op_scale(g, in[0], 0.5f));
}

/* gamma near 1 and beta near 0, but not exactly, so that both matter. */
static void fill_affine(Tensor *gamma, Tensor *beta, Rng *rng) {
    for (int c = 0; c < gamma->numel; c++) {
        gamma->data[c] = 1.0f + 0.3f * rng_normal(rng);
        beta->data[c] = 0.3f * rng_normal(rng);
    }
}

START_TEST(layernorm_gradient) {
    Rng rng = seeded(31);
    Tensor *in[3] = {gradcheck_random_of("x", 2.0f, &rng, 2, 3, 6),
                     gradcheck_random_of("gamma", 1.0f, &rng, 1, 6),
                     gradcheck_random_of("beta", 1.0f, &rng, 1, 6)};
    fill_affine(in[1], in[2], &rng);
    grade_gradcheck("layernorm_backward", "layernorm(x) with gamma and beta", layernorm_all, NULL, in, 3);
    free_all(in, 3);
}
END_TEST

/* x (rows, C) through a layernorm whose gamma and beta (C) have no gradient. */
static void check_frozen_layernorm(const char *what, GradcheckForward forward, uint64_t seed,
                                   int rows, int C) {
    Rng rng = seeded(seed + 100);
    Tensor *frozen[2] = {tensor_alloc("gamma", 1, &C, false), tensor_alloc("beta", 1, &C, false)};
    fill_affine(frozen[0], frozen[1], &rng);
    check_one_input("layernorm_backward", what, forward, frozen, seed, 2.0f, 2, (const int[]){rows, C});
    free_all(frozen, 2);
}

START_TEST(layernorm_frozen_parameters) {
    check_frozen_layernorm("layernorm(x) with frozen gamma and beta (their grad is NULL: skip them)",
                           layernorm_frozen, 32, 4, 5);
}
END_TEST

START_TEST(layernorm_accumulates) {
    check_frozen_layernorm("layernorm(x) + x/2 (add to x->grad with +=, do not overwrite it)",
                           layernorm_plus_scale, 33, 3, 4);
}
END_TEST

static void layernorm_tests(TCase *tc) {
    tcase_add_test(tc, layernorm_gradient);
    tcase_add_test(tc, layernorm_frozen_parameters);
    tcase_add_test(tc, layernorm_accumulates);
}

/* ==== matmul_backward ============================================================ */

static Tensor *matmul_plain(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return op_matmul(g, in[0], in[1], NO_TRANSPOSE);
}

static Tensor *matmul_transposed(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return op_matmul(g, in[0], in[1], TRANSPOSE_B);
}

/* a (4, 4) feeds the product and a scale. */
static Tensor *matmul_plus_scale(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    Tensor *y = op_matmul(g, in[0], in[1], NO_TRANSPOSE); /* first, as in tanh_plus_scale */
    return op_add(g, y, op_scale(g, in[0], 0.5f));
}

/* a (shape_a) @ b (shape_b): shapes as {ndim, d0, d1, d2}. */
static void check_product(const char *what, GradcheckForward forward, const int *shape_a,
                          const int *shape_b, uint64_t seed) {
    Rng rng = seeded(seed);
    Tensor *in[2] = {gradcheck_random_tensor("a", shape_a[0], shape_a + 1, 1.0f, &rng),
                     gradcheck_random_tensor("b", shape_b[0], shape_b + 1, 1.0f, &rng)};
    grade_gradcheck("matmul_backward", what, forward, NULL, in, 2);
    free_all(in, 2);
}

START_TEST(matmul_2d) {
    check_product("a (3,4) @ b (4,5)", matmul_plain, (const int[]){2, 3, 4}, (const int[]){2, 4, 5}, 41);
}
END_TEST

START_TEST(matmul_transpose_b) {
    check_product("a (3,4) @ b^T, b stored (5,4) (TRANSPOSE_B)", matmul_transposed,
                  (const int[]){2, 3, 4}, (const int[]){2, 5, 4}, 42);
}
END_TEST

START_TEST(matmul_batched) {
    check_product("a (2,3,4) @ b (2,4,5), one b per batch item", matmul_plain,
                  (const int[]){3, 2, 3, 4}, (const int[]){3, 2, 4, 5}, 43);
    check_product("a (2,3,4) @ b^T, b stored (2,5,4)", matmul_transposed,
                  (const int[]){3, 2, 3, 4}, (const int[]){3, 2, 5, 4}, 44);
}
END_TEST

START_TEST(matmul_shared_b) {
    check_product("a (2,3,4) @ b (4,5), b shared by the batch: its gradient sums over it",
                  matmul_plain, (const int[]){3, 2, 3, 4}, (const int[]){2, 4, 5}, 45);
    check_product("a (2,3,4) @ b^T, b stored (5,4) and shared by the batch", matmul_transposed,
                  (const int[]){3, 2, 3, 4}, (const int[]){2, 5, 4}, 46);
}
END_TEST

START_TEST(matmul_accumulates) {
    check_product("a @ b + a/2 (add to a->grad with +=, do not overwrite it)", matmul_plus_scale,
                  (const int[]){2, 4, 4}, (const int[]){2, 4, 4}, 47);
}
END_TEST

static void matmul_tests(TCase *tc) {
    tcase_add_test(tc, matmul_2d);
    tcase_add_test(tc, matmul_transpose_b);
    tcase_add_test(tc, matmul_batched);
    tcase_add_test(tc, matmul_shared_b);
    tcase_add_test(tc, matmul_accumulates);
}

/* ==== adam_update ================================================================ */

/* A weight matrix (decayed) and a bias (not decayed), as in a Linear layer. */
static void adam_parameters(ParamSet *ps, Rng *rng) {
    params_init(ps);
    Tensor *weight = params_add_of(ps, "weight", true, 2, 2, 3);
    Tensor *bias = params_add_of(ps, "bias", false, 1, 3);
    params_allocate(ps);
    for (int i = 0; i < weight->numel; i++) weight->data[i] = rng_normal(rng);
    for (int i = 0; i < bias->numel; i++) bias->data[i] = rng_normal(rng);
}

/* Three steps with seeded gradients; the weights and both moments must be
 * those of the reference implementation (PyTorch's formulas). */
static void adam_three_steps(OptimizerKind kind, const char *name) {
    Rng rng = seeded(kind == OPTIMIZER_ADAM ? 51 : 52);
    ParamSet ps;
    adam_parameters(&ps, &rng);
    Optimizer opt;
    optimizer_init(&opt, kind, &ps);
    opt.weight_decay = 0.1f;
    for (int step = 0; step < 3; step++) {
        for (size_t i = 0; i < ps.total; i++) ps.grads[i] = rng_normal(&rng);
        optimizer_step(&opt, &ps, 0.01f);
    }
    grade_require_implemented("adam_update");
    char label[64];
    snprintf(label, sizeof label, "%s_weights_after_3_steps", name);
    grade_compare_reference("adam_update", label, ps.values, (int)ps.total, 1e-6f, 1e-4f);
    snprintf(label, sizeof label, "%s_m_after_3_steps", name);
    grade_compare_reference("adam_update", label, opt.moment1, (int)ps.total, 1e-6f, 1e-4f);
    snprintf(label, sizeof label, "%s_v_after_3_steps", name);
    grade_compare_reference("adam_update", label, opt.moment2, (int)ps.total, 1e-7f, 1e-4f);
    optimizer_free(&opt);
    params_free(&ps);
}

START_TEST(adam_steps) { adam_three_steps(OPTIMIZER_ADAM, "adam"); }
END_TEST

START_TEST(adamw_steps) { adam_three_steps(OPTIMIZER_ADAMW, "adamw"); }
END_TEST

/* Behaviour: Adam walks w to the minimum of sum (w - target)^2 / 2. */
START_TEST(adam_minimises) {
    Rng rng = seeded(53);
    ParamSet ps;
    adam_parameters(&ps, &rng);
    float target[9];
    for (int i = 0; i < 9; i++) target[i] = 2.0f * rng_normal(&rng);
    Optimizer opt;
    optimizer_init(&opt, OPTIMIZER_ADAM, &ps);
    for (int step = 0; step < 600; step++) {
        for (size_t i = 0; i < ps.total; i++) ps.grads[i] = ps.values[i] - target[i];
        optimizer_step(&opt, &ps, 0.05f);
    }
    grade_require_implemented("adam_update");
    for (size_t i = 0; i < ps.total; i++)
        ck_assert_msg(fabsf(ps.values[i] - target[i]) < 0.05f,
                      "adam_update: 600 steps at lr 0.05 on sum (w - t)^2 / 2 leave w[%zu] = %g, "
                      "expected close to %g", i, (double)ps.values[i], (double)target[i]);
    optimizer_free(&opt);
    params_free(&ps);
}
END_TEST

static void adam_tests(TCase *tc) {
    tcase_add_test(tc, adam_steps);
    tcase_add_test(tc, adamw_steps);
    tcase_add_test(tc, adam_minimises);
}

const GradedExercise grade_common_exercises[] = {
    {"tanh_backward", 10, tanh_tests},
    {"softmax_backward", 10, softmax_tests},
    {"layernorm_backward", 10, layernorm_tests},
    {"matmul_backward", 10, matmul_tests},
    {"adam_update", 10, adam_tests},
    {NULL, 0, NULL},
};
