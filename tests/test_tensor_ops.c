/* tests/test_tensor_ops.c: the arena, the tape and every autograd op.
 *
 * Legend: B batch, T time, H heads, C channels, M/K/N matrix sizes, V vocab.
 *
 * Four kinds of test, in this order:
 *   1. Arena and graph bookkeeping (alignment, reset, growth, tape).
 *   2. Forward values against hand-computed numbers (softmax of [1,2,3],
 *      gelu(1) = 0.8413447, ...) or a plain double-precision loop.
 *   3. Every op's backward against central finite differences
 *      (tests/gradcheck.c explains the method and the tolerance), on odd
 *      shapes (1, 3, 5, 7, 17) where off-by-one indexing shows.
 *   4. Mismatched shapes stop the program with status 1 and a message that
 *      names the op and both shapes; printing helpers print what they claim.
 */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gradcheck.h"
#include "matmul.h"
#include "tensor.h"
#include "test_suites.h"
#include "util.h"

enum { TEST_ARENA_BYTES = 1 << 20, TEST_TAPE = 1024, IGNORE = -100 };

/* ======================================================================== */
/* Small helpers                                                            */
/* ======================================================================== */

/* An arena tensor without gradient holding `values` (numel floats). */
static Tensor *constant_new(Graph *g, int ndim, const int *shape, const float *values) {
    Tensor *t = tensor_new(g, ndim, shape, false);
    memcpy(t->data, values, (size_t)t->numel * sizeof(float));
    return t;
}
#define constant_of(g, values, ndim, ...) \
    constant_new((g), (ndim), (const int[]){__VA_ARGS__}, (values))

/* A leaf in the arena with a gradient, holding `values`. */
static Tensor *leaf_new(Graph *g, int ndim, const int *shape, const float *values) {
    Tensor *t = tensor_new(g, ndim, shape, true);
    memcpy(t->data, values, (size_t)t->numel * sizeof(float));
    return t;
}
#define leaf_of(g, values, ndim, ...) leaf_new((g), (ndim), (const int[]){__VA_ARGS__}, (values))

static void expect_values(const char *what, const float *actual, const double *expected,
                          int count, double tolerance) {
    for (int i = 0; i < count; i++)
        ck_assert_msg(fabs(actual[i] - expected[i]) <= tolerance,
                      "%s[%d] = %.8g, expected %.8g", what, i, actual[i], expected[i]);
}

static void expect_shape(const Tensor *t, int ndim, const int *shape) {
    ck_assert_int_eq(t->ndim, ndim);
    for (int d = 0; d < ndim; d++) ck_assert_int_eq(t->shape[d], shape[d]);
}
#define expect_shape_of(t, ndim, ...) expect_shape((t), (ndim), (const int[]){__VA_ARGS__})

/* Sends stderr to /dev/null while a test provokes an expected message;
 * returns the descriptor restore_stderr() needs. */
static int silence_stderr(void) {
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, STDERR_FILENO);
    close(null);
    return saved;
}

static void restore_stderr(int saved) {
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
}

/* Values pushed at least 0.1 away from zero, so that relu's kink is never
 * inside a finite-difference step. */
static void push_away_from_zero(Tensor *t) {
    for (int i = 0; i < t->numel; i++) t->data[i] += t->data[i] >= 0.0f ? 0.1f : -0.1f;
}

/* ======================================================================== */
/* 1. Arena and graph bookkeeping                                           */
/* ======================================================================== */

START_TEST(test_arena_alignment_and_reset) {
    Arena arena;
    arena_init(&arena, 4096);
    const size_t sizes[] = {1, 3, 64, 65, 100};
    unsigned char *previous_end = NULL;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = arena_alloc(&arena, sizes[i]);
        ck_assert_msg((uintptr_t)p % 64 == 0, "allocation %zu is not 64-byte aligned", i);
        ck_assert_msg(previous_end == NULL || p >= previous_end, "allocations overlap");
        memset(p, 0xab, sizes[i]); /* ASan flags it if the slice is not ours */
        previous_end = p + sizes[i];
    }
    ck_assert_uint_ge(arena.used, 1 + 3 + 64 + 65 + 100);
    size_t peak = arena.peak;
    ck_assert_uint_ge(peak, arena.used);
    arena_reset(&arena);
    ck_assert_uint_eq(arena.used, 0);
    ck_assert_uint_eq(arena.peak, peak);
    arena_alloc(&arena, 10); /* a smaller step leaves the peak alone */
    ck_assert_uint_eq(arena.peak, peak);
    arena_free(&arena);
}
END_TEST

START_TEST(test_arena_grows_to_the_step_after_overflow) {
    Arena arena;
    arena_init(&arena, 256);
    unsigned char *big = arena_alloc(&arena, 1000);
    ck_assert((uintptr_t)big % 64 == 0);
    memset(big, 1, 1000);
    ck_assert_uint_ge(arena.peak, 1000);
    /* The header's promise: the next reset makes the block big enough. */
    arena_reset(&arena);
    ck_assert_uint_ge(arena.capacity, 1000);
    ck_assert_ptr_null(arena.overflow);
    big = arena_alloc(&arena, 1000);
    memset(big, 2, 1000);
    ck_assert_ptr_null(arena.overflow); /* served from the block this time */
    arena_free(&arena);
}
END_TEST

START_TEST(test_graph_reset_empties_tape_and_arena) {
    Graph g;
    graph_init(&g, TEST_ARENA_BYTES, TEST_TAPE);
    Tensor *x = leaf_of(&g, ((float[]){1, 2, 3}), 1, 3);
    op_sum(&g, op_tanh(&g, op_scale(&g, x, 2.0f)));
    ck_assert_int_eq(g.tape_length, 3);
    ck_assert_uint_gt(g.arena.used, 0);
    graph_reset(&g);
    ck_assert_int_eq(g.tape_length, 0);
    ck_assert_uint_eq(g.arena.used, 0);
    graph_free(&g);
}
END_TEST

/* Ops whose inputs need no gradient, or any op in no_grad mode, record
 * nothing: inference must not fill the tape. */
START_TEST(test_tape_records_only_what_needs_gradients) {
    Graph g;
    graph_init(&g, TEST_ARENA_BYTES, TEST_TAPE);
    Tensor *constant = constant_of(&g, ((float[]){1, -2}), 1, 2);
    op_tanh(&g, op_add(&g, constant, constant));
    ck_assert_int_eq(g.tape_length, 0);
    Tensor *x = leaf_of(&g, ((float[]){1, -2}), 1, 2);
    g.no_grad = true;
    Tensor *y = op_tanh(&g, op_mul(&g, x, constant));
    ck_assert_int_eq(g.tape_length, 0);
    ck_assert_ptr_null(y->grad);
    ck_assert_float_eq_tol(y->data[0], tanhf(1.0f), 1e-6f); /* still computed */
    g.no_grad = false;
    op_mul(&g, x, constant);
    ck_assert_int_eq(g.tape_length, 1);
    graph_free(&g);
}
END_TEST

/* d/dx sum(x*x) = 2x, and a second backward without zeroing adds another
 * 2x: gradients accumulate (+=) across steps. */
START_TEST(test_backward_accumulates_across_steps) {
    Graph g;
    graph_init(&g, TEST_ARENA_BYTES, TEST_TAPE);
    Tensor *x = tensor_alloc("x", 1, (const int[]){3}, true);
    const float values[] = {1, -2, 3};
    memcpy(x->data, values, sizeof values);
    for (int step = 1; step <= 2; step++) {
        graph_reset(&g);
        Tensor *loss = op_sum(&g, op_mul(&g, x, x));
        ck_assert_float_eq_tol(loss->data[0], 14.0f, 1e-6f);
        graph_backward(&g, loss);
        expect_values("dx", x->grad, (const double[]){2.0 * step, -4.0 * step, 6.0 * step}, 3,
                      1e-6);
    }
    tensor_free(x);
    graph_free(&g);
}
END_TEST

/* ======================================================================== */
/* 2. Forward values                                                        */
/* ======================================================================== */

START_TEST(test_forward_elementwise) {
    Graph g;
    graph_init(&g, TEST_ARENA_BYTES, TEST_TAPE);
    const float a_values[] = {1, -2, 0.5f, 0};
    const float b_values[] = {3, 4, -1, 2};
    Tensor *a = constant_of(&g, a_values, 2, 2, 2);
    Tensor *b = constant_of(&g, b_values, 2, 2, 2);
    expect_values("add", op_add(&g, a, b)->data, (const double[]){4, 2, -0.5, 2}, 4, 0);
    expect_values("sub", op_sub(&g, a, b)->data, (const double[]){-2, -6, 1.5, -2}, 4, 0);
    expect_values("mul", op_mul(&g, a, b)->data, (const double[]){3, -8, -0.5, 0}, 4, 0);
    expect_values("scale", op_scale(&g, a, -3)->data, (const double[]){-3, 6, -1.5, 0}, 4, 0);
    expect_values("relu", op_relu(&g, a)->data, (const double[]){1, 0, 0.5, 0}, 4, 0);
    expect_values("sum", op_sum(&g, a)->data, (const double[]){-0.5}, 1, 1e-7);
    expect_values("mean", op_mean(&g, a)->data, (const double[]){-0.125}, 1, 1e-7);
    expect_values("tanh", op_tanh(&g, a)->data,
                  (const double[]){tanh(1), tanh(-2), tanh(0.5), 0}, 4, 1e-6);
    expect_values("sigmoid", op_sigmoid(&g, a)->data,
                  (const double[]){1 / (1 + exp(-1)), 1 / (1 + exp(2)), 1 / (1 + exp(-0.5)), 0.5},
                  4, 1e-6);
    /* Exact GELU x * Phi(x), values from erf in double. */
    Tensor *x = constant_of(&g, ((float[]){1, -1, 0, 2, -3, 0.5f}), 1, 6);
    expect_values("gelu", op_gelu(&g, x)->data,
                  (const double[]){0.8413447460685429, -0.15865525393145707, 0.0,
                                   1.9544997361036416, -0.00404969409489031, 0.34573123063700656},
                  6, 1e-6);
    ck_assert_int_eq(op_sum(&g, a)->numel, 1);
    graph_free(&g);
}
END_TEST

START_TEST(test_forward_add_bias_concat_slice_gather) {
    Graph g;
    graph_init(&g, TEST_ARENA_BYTES, TEST_TAPE);
    Tensor *x = constant_of(&g, ((float[]){1, 2, 3, 4, 5, 6}), 2, 2, 3); /* (2,3) */
    Tensor *bias = constant_of(&g, ((float[]){10, 20, 30}), 1, 3);
    expect_values("add_bias", op_add_bias(&g, x, bias)->data,
                  (const double[]){11, 22, 33, 14, 25, 36}, 6, 0);
    Tensor *y = constant_of(&g, ((float[]){7, 8}), 2, 2, 1); /* (2,1) */
    Tensor *joined = op_concat(&g, x, y);
    expect_shape_of(joined, 2, 2, 4);
    expect_values("concat", joined->data, (const double[]){1, 2, 3, 7, 4, 5, 6, 8}, 8, 0);
    Tensor *middle = op_slice_columns(&g, joined, 1, 2);
    expect_shape_of(middle, 2, 2, 2);
    expect_values("slice_columns", middle->data, (const double[]){2, 3, 5, 6}, 4, 0);
    const int ids[] = {1, 0, 1};
    Tensor *rows = op_gather_rows(&g, x, ids, 3);
    expect_shape_of(rows, 2, 3, 3);
    expect_values("gather_rows", rows->data, (const double[]){4, 5, 6, 1, 2, 3, 4, 5, 6}, 9, 0);
    graph_free(&g);
}
END_TEST

/* Fills (M,N) outputs of a (M,K) @ op(b) in double, b stored (K,N) or (N,K). */
static void matmul_by_loops(const float *a, const float *b, bool transpose_b, int M, int K,
                            int N, double *c) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double sum = 0.0;
            for (int k = 0; k < K; k++)
                sum += (double)a[i * K + k] * (transpose_b ? b[j * K + k] : b[k * N + j]);
            c[i * N + j] = sum;
        }
}

/* Checks c (B,M,N) = a (B,M,K) @ op(b) item by item, where b is (B,K,N),
 * (B,N,K), or shared (K,N) / (N,K). */
static void expect_matmul(const Tensor *c, const Tensor *a, const Tensor *b, bool transpose,
                          int M, int K, int N) {
    int batch = a->numel / (M * K);
    bool shared = b->ndim == 2;
    double expected[17 * 17];
    for (int item = 0; item < batch; item++) {
        const float *b_item = b->data + (shared ? 0 : item * K * N);
        matmul_by_loops(a->data + item * M * K, b_item, transpose, M, K, N, expected);
        expect_values("matmul", c->data + item * M * N, expected, M * N, 1e-5);
    }
}

/* op_matmul against loops: batched (B,M,K)@(B,K,N), shared (B,M,K)@(K,N),
 * each with and without TRANSPOSE_B (then b is read as (B,N,K) / (N,K)). */
START_TEST(test_forward_matmul_against_loops) {
    enum { B = 3, M = 5, K = 7, N = 3 };
    Graph g;
    graph_init(&g, TEST_ARENA_BYTES, TEST_TAPE);
    Rng rng;
    rng_seed(&rng, 1, 0);
    Tensor *a = tensor_of(&g, false, 3, B, M, K);
    Tensor *b_batched = tensor_of(&g, false, 3, B, K, N);
    Tensor *b_shared = tensor_of(&g, false, 2, K, N);
    Tensor *all[] = {a, b_batched, b_shared};
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < all[t]->numel; i++) all[t]->data[i] = rng_normal(&rng);
    for (int transpose = 0; transpose <= 1; transpose++) {
        Tensor *batched = b_batched, *shared = b_shared;
        if (transpose) {
            batched = tensor_reshape(&g, b_batched, 3, (const int[]){B, N, K});
            shared = tensor_reshape(&g, b_shared, 2, (const int[]){N, K});
        }
        Transpose mode = transpose ? TRANSPOSE_B : NO_TRANSPOSE;
        Tensor *c = op_matmul(&g, a, batched, mode);
        expect_shape_of(c, 3, B, M, N);
        expect_matmul(c, a, batched, transpose, M, K, N);
        c = op_matmul(&g, a, shared, mode);
        expect_shape_of(c, 3, B, M, N);
        expect_matmul(c, a, shared, transpose, M, K, N);
    }
    graph_free(&g);
}
END_TEST

START_TEST(test_forward_softmax) {
    Graph g;
    graph_init(&g, TEST_ARENA_BYTES, TEST_TAPE);
    /* (3,3): a plain row, a row shifted by 1000 (must not overflow: softmax
     * is shift invariant), and the same row with a mask. */
    Tensor *x = constant_of(&g, ((float[]){1, 2, 3, 1001, 1002, 1003, 1, 2, 3}), 2, 3, 3);
    const double plain[] = {0.09003057, 0.24472847, 0.66524096};
    Tensor *p = op_softmax(&g, x, NULL);
    expect_values("softmax row 0", p->data, plain, 3, 1e-6);
    expect_values("softmax row 1", p->data + 3, plain, 3, 1e-6);
    /* (3,3) mask; row 2 masks its last position, row 1 masks everything. */
    Tensor *mask = constant_of(&g, ((float[]){1, 1, 1, 0, 0, 0, 1, 1, 0}), 2, 3, 3);
    Tensor *q = op_softmax(&g, x, mask);
    expect_values("softmax row 0", q->data, plain, 3, 1e-6);
    expect_values("fully masked row", q->data + 3, (const double[]){0, 0, 0}, 3, 0);
    expect_values("masked row", q->data + 6, (const double[]){0.26894142, 0.73105858, 0}, 3, 1e-6);
    /* A (2,2) causal mask broadcast over (2,2,2) scores. */
    Tensor *scores = constant_of(&g, ((float[]){5, 9, 0, 0, 3, 7, 1, 2}), 3, 2, 2, 2);
    Tensor *causal = constant_of(&g, ((float[]){1, 0, 1, 1}), 2, 2, 2);
    expect_values("causal softmax", op_softmax(&g, scores, causal)->data,
                  (const double[]){1, 0, 0.5, 0.5, 1, 0, 0.26894142, 0.73105858}, 8, 1e-6);
    graph_free(&g);
}
END_TEST

START_TEST(test_forward_layernorm) {
    Graph g;
    graph_init(&g, TEST_ARENA_BYTES, TEST_TAPE);
    /* Row [1,2,3,6]: mean 3, biased variance 3.5; epsilon 1e-5. */
    Tensor *x = constant_of(&g, ((float[]){1, 2, 3, 6}), 2, 1, 4);
    Tensor *gamma = constant_of(&g, ((float[]){2, 1, 0.5f, -1}), 1, 4);
    Tensor *beta = constant_of(&g, ((float[]){0, 1, -1, 0.25f}), 1, 4);
    expect_values("layernorm", op_layernorm(&g, x, gamma, beta, 1e-5f)->data,
                  (const double[]){-2.13808688, 0.46547828, -1.0, -1.35356516}, 4, 1e-5);
    graph_free(&g);
}
END_TEST

START_TEST(test_forward_losses) {
    Graph g;
    graph_init(&g, TEST_ARENA_BYTES, TEST_TAPE);
    /* Rows' -log softmax[target]: 0.40760596, 1.09861229 (= log 3), 0.00762072. */
    const float logit_values[] = {1, 2, 3, 1, 1, 1, 0, 5, -2};
    Tensor *logits = constant_of(&g, logit_values, 2, 3, 3);
    const int targets[] = {2, 0, 1}, some_ignored[] = {2, IGNORE, 1};
    const int all_ignored[] = {IGNORE, IGNORE, IGNORE};
    expect_values("cross_entropy", op_cross_entropy(&g, logits, targets, IGNORE)->data,
                  (const double[]){0.5046129901689879}, 1, 1e-6);
    expect_values("cross_entropy ignoring row 1",
                  op_cross_entropy(&g, logits, some_ignored, IGNORE)->data,
                  (const double[]){0.20761334091942696}, 1, 1e-6);
    expect_values("cross_entropy all ignored",
                  op_cross_entropy(&g, logits, all_ignored, IGNORE)->data, (const double[]){0},
                  1, 0);
    Tensor *prediction = constant_of(&g, ((float[]){1, 2, 3}), 1, 3);
    Tensor *target = constant_of(&g, ((float[]){0, 2, 5}), 1, 3);
    expect_values("mse", op_mse(&g, prediction, target)->data, (const double[]){5.0 / 3.0}, 1,
                  1e-6);
    graph_free(&g);
}
END_TEST

/* Large |logit| must neither overflow exp() nor lose the loss: the stable
 * form max(x,0) - x t + log(1 + exp(-|x|)). */
START_TEST(test_bce_with_logits_is_stable) {
    Graph g;
    graph_init(&g, TEST_ARENA_BYTES, TEST_TAPE);
    Tensor *logits = leaf_of(&g, ((float[]){100, -100, 0, 2}), 1, 4);
    Tensor *target = constant_of(&g, ((float[]){0, 1, 0.5f, 1}), 1, 4);
    Tensor *loss = op_bce_with_logits(&g, logits, target);
    expect_values("bce_with_logits", loss->data, (const double[]){50.20501879790073}, 1, 1e-4);
    graph_backward(&g, loss);
    /* d/dx = (sigmoid(x) - t) / count. */
    expect_values("d bce/d logits", logits->grad,
                  (const double[]){0.25, -0.25, 0.0, -0.02980073}, 4, 1e-6);
    graph_free(&g);
}
END_TEST

/* Every row ignored: loss 0 and no gradient at all (not NaN from 0/0). */
START_TEST(test_cross_entropy_all_ignored_has_zero_gradient) {
    Graph g;
    graph_init(&g, TEST_ARENA_BYTES, TEST_TAPE);
    Tensor *logits = leaf_of(&g, ((float[]){1, 2, 3, 4}), 2, 2, 2);
    const int targets[] = {IGNORE, IGNORE};
    Tensor *loss = op_cross_entropy(&g, logits, targets, IGNORE);
    graph_backward(&g, loss);
    ck_assert_float_eq(loss->data[0], 0.0f);
    for (int i = 0; i < 4; i++) ck_assert_float_eq(logits->grad[i], 0.0f);
    graph_free(&g);
}
END_TEST

START_TEST(test_dropout_forward) {
    enum { COUNT = 10000 };
    Graph g;
    graph_init(&g, TEST_ARENA_BYTES, TEST_TAPE);
    Rng rng;
    rng_seed(&rng, 3, 0);
    Tensor *x = tensor_of(&g, false, 1, COUNT);
    for (int i = 0; i < COUNT; i++) x->data[i] = 1.0f + rng_uniform(&rng);
    g.training = false;
    Tensor *same = op_dropout(&g, x, 0.5f, &rng);
    for (int i = 0; i < COUNT; i++) ck_assert_float_eq(same->data[i], x->data[i]);
    g.training = true;
    Tensor *unchanged = op_dropout(&g, x, 0.0f, &rng);
    for (int i = 0; i < COUNT; i++) ck_assert_float_eq(unchanged->data[i], x->data[i]);
    /* p = 0.25: each element is 0 or x / 0.75, and about a quarter are 0
     * (binomial standard deviation 0.0043, so 0.22..0.28 is 7 sigma). */
    Tensor *dropped = op_dropout(&g, x, 0.25f, &rng);
    int zeros = 0;
    for (int i = 0; i < COUNT; i++) {
        if (dropped->data[i] == 0.0f) zeros++;
        else ck_assert_float_eq_tol(dropped->data[i], x->data[i] / 0.75f, 1e-6f);
    }
    ck_assert_int_gt(zeros, (int)(0.22 * COUNT));
    ck_assert_int_lt(zeros, (int)(0.28 * COUNT));
    graph_free(&g);
}
END_TEST

/* ======================================================================== */
/* 3. Gradients against finite differences                                  */
/* ======================================================================== */

/* Everything the op under test needs besides its tensor inputs. */
typedef struct {
    Transpose transpose;
    float factor;        /* scale; dropout probability                    */
    const Tensor *other; /* softmax mask, mse / bce target (no gradient)  */
    const int *ids;      /* cross_entropy targets, gather_rows ids        */
    int count;           /* gather_rows: number of ids                    */
    int first, columns;  /* slice_columns; tensor_rows                    */
    int ndim;            /* tensor_reshape target shape                   */
    int shape[TENSOR_MAX_DIMS];
    uint64_t seed;       /* dropout: reseeded every forward               */
} OpArgs;

/* Frees the inputs, then fails the test if any gradient disagreed. */
static void check_gradients(const char *label, GradcheckForward forward, OpArgs *args,
                            Tensor **inputs, int input_count) {
    int bad = gradcheck_tensor(label, forward, args, inputs, input_count, GRADCHECK_DEFAULT);
    for (int i = 0; i < input_count; i++) tensor_free(inputs[i]);
    ck_assert_msg(bad == 0, "%s: %d gradient elements disagree with finite differences", label,
                  bad);
}

static Tensor *forward_matmul(Graph *g, Tensor *const *in, void *context) {
    const OpArgs *args = context;
    return op_matmul(g, in[0], in[1], args->transpose);
}

/* One matmul case: a (lead..., M, K) @ b, where b has the same leading
 * dimensions or (when `shared`) none, and is stored (K,N) or (N,K). */
static void gradcheck_matmul(int leading_count, const int *leading, int M, int K, int N,
                             bool shared, Transpose transpose, Rng *rng) {
    int a_shape[TENSOR_MAX_DIMS], b_shape[TENSOR_MAX_DIMS];
    int b_leading = shared ? 0 : leading_count;
    memcpy(a_shape, leading, (size_t)leading_count * sizeof(int));
    memcpy(b_shape, leading, (size_t)b_leading * sizeof(int));
    a_shape[leading_count] = M;
    a_shape[leading_count + 1] = K;
    b_shape[b_leading] = transpose ? N : K;
    b_shape[b_leading + 1] = transpose ? K : N;
    Tensor *inputs[2] = {gradcheck_random_tensor("a", leading_count + 2, a_shape, 1.0f, rng),
                         gradcheck_random_tensor("b", b_leading + 2, b_shape, 1.0f, rng)};
    char label[96];
    snprintf(label, sizeof label, "matmul %d leading, M=%d K=%d N=%d%s%s", leading_count, M, K, N,
             shared ? " shared b" : "", transpose ? " TRANSPOSE_B" : "");
    OpArgs args = {.transpose = transpose};
    check_gradients(label, forward_matmul, &args, inputs, 2);
}

START_TEST(test_gradient_matmul) {
    Rng rng;
    rng_seed(&rng, 11, 0);
    const int sizes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 3, 5}, {5, 17, 1}, {1, 7, 3}};
    const int batch[] = {3}, heads[] = {2, 3};
    for (int s = 0; s < 5; s++)
        for (int transpose = 0; transpose <= 1; transpose++) {
            int M = sizes[s][0], K = sizes[s][1], N = sizes[s][2];
            Transpose mode = transpose ? TRANSPOSE_B : NO_TRANSPOSE;
            gradcheck_matmul(0, batch, M, K, N, false, mode, &rng);  /* 2-D             */
            gradcheck_matmul(1, batch, M, K, N, false, mode, &rng);  /* (B,M,K)@(B,K,N) */
            gradcheck_matmul(1, batch, M, K, N, true, mode, &rng);   /* (B,M,K)@(K,N) */
        }
    /* Attention's shape: (B,H,T,D) @ (B,H,D,T), and Q K^T with TRANSPOSE_B. */
    gradcheck_matmul(2, heads, 5, 3, 5, false, NO_TRANSPOSE, &rng);
    gradcheck_matmul(2, heads, 5, 3, 5, false, TRANSPOSE_B, &rng);
}
END_TEST

static Tensor *forward_add(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return op_add(g, in[0], in[1]);
}
static Tensor *forward_sub(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return op_sub(g, in[0], in[1]);
}
static Tensor *forward_mul(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return op_mul(g, in[0], in[1]);
}
/* The same tensor on both sides: d(x*x)/dx = 2x only if both contributions
 * are added (+=), not the second overwriting the first. */
static Tensor *forward_square(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return op_mul(g, in[0], in[0]);
}
/* x feeds three ops: y = tanh(x); out = y * x + y. */
static Tensor *forward_fan_out(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    Tensor *y = op_tanh(g, in[0]);
    return op_add(g, op_mul(g, y, in[0]), y);
}
static Tensor *forward_scale(Graph *g, Tensor *const *in, void *context) {
    return op_scale(g, in[0], ((const OpArgs *)context)->factor);
}
static Tensor *forward_sum(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return op_sum(g, in[0]);
}
static Tensor *forward_mean(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return op_mean(g, in[0]);
}
static Tensor *forward_tanh(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return op_tanh(g, in[0]);
}
static Tensor *forward_sigmoid(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return op_sigmoid(g, in[0]);
}
static Tensor *forward_relu(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return op_relu(g, in[0]);
}
static Tensor *forward_gelu(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return op_gelu(g, in[0]);
}

/* The odd shapes every elementwise op is checked on. */
static const int SHAPE_NDIM[] = {1, 2, 3, 1, 2};
static const int SHAPES[][3] = {{1}, {3, 5}, {2, 3, 7}, {17}, {7, 1}};
enum { SHAPE_COUNT = 5 };

/* One-input op on every shape in SHAPES. */
static void gradcheck_unary(const char *name, GradcheckForward forward, bool avoid_zero,
                            Rng *rng) {
    OpArgs args = {.factor = -1.7f};
    for (int s = 0; s < SHAPE_COUNT; s++) {
        Tensor *x = gradcheck_random_tensor("x", SHAPE_NDIM[s], SHAPES[s], 1.0f, rng);
        if (avoid_zero) push_away_from_zero(x);
        char label[64];
        snprintf(label, sizeof label, "%s shape %d", name, s);
        check_gradients(label, forward, &args, &x, 1);
    }
}

/* Two-input op on every shape in SHAPES, both inputs of that shape. */
static void gradcheck_binary(const char *name, GradcheckForward forward, Rng *rng) {
    for (int s = 0; s < SHAPE_COUNT; s++) {
        Tensor *inputs[2] = {gradcheck_random_tensor("a", SHAPE_NDIM[s], SHAPES[s], 1.0f, rng),
                             gradcheck_random_tensor("b", SHAPE_NDIM[s], SHAPES[s], 1.0f, rng)};
        char label[64];
        snprintf(label, sizeof label, "%s shape %d", name, s);
        check_gradients(label, forward, &(OpArgs){0}, inputs, 2);
    }
}

START_TEST(test_gradient_elementwise) {
    Rng rng;
    rng_seed(&rng, 12, 0);
    gradcheck_binary("add", forward_add, &rng);
    gradcheck_binary("sub", forward_sub, &rng);
    gradcheck_binary("mul", forward_mul, &rng);
    gradcheck_unary("x*x", forward_square, false, &rng);
    gradcheck_unary("fan-out", forward_fan_out, false, &rng);
    gradcheck_unary("scale", forward_scale, false, &rng);
    gradcheck_unary("sum", forward_sum, false, &rng);
    gradcheck_unary("mean", forward_mean, false, &rng);
    gradcheck_unary("tanh", forward_tanh, false, &rng);
    gradcheck_unary("sigmoid", forward_sigmoid, false, &rng);
    gradcheck_unary("relu", forward_relu, true, &rng);
    gradcheck_unary("gelu", forward_gelu, false, &rng);
}
END_TEST

static Tensor *forward_add_bias(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return op_add_bias(g, in[0], in[1]);
}

START_TEST(test_gradient_add_bias) {
    Rng rng;
    rng_seed(&rng, 13, 0);
    for (int s = 0; s < SHAPE_COUNT; s++) {
        int channels = SHAPES[s][SHAPE_NDIM[s] - 1];
        Tensor *inputs[2] = {gradcheck_random_tensor("x", SHAPE_NDIM[s], SHAPES[s], 1.0f, &rng),
                             gradcheck_random_of("bias", 1.0f, &rng, 1, channels)};
        check_gradients("add_bias", forward_add_bias, &(OpArgs){0}, inputs, 2);
    }
}
END_TEST

static Tensor *forward_softmax(Graph *g, Tensor *const *in, void *context) {
    return op_softmax(g, in[0], ((const OpArgs *)context)->other);
}

/* Unmasked on SHAPES; a (T,T) causal mask over (B,H,T,T) scores; a (B,T)
 * padding mask with one fully masked row.  Masked inputs get zero gradient
 * both ways, so the check also catches gradient leaking into them. */
START_TEST(test_gradient_softmax) {
    enum { B = 2, H = 2, T = 5 };
    Rng rng;
    rng_seed(&rng, 14, 0);
    for (int s = 0; s < SHAPE_COUNT; s++) {
        /* A softmax over one position is constantly 1: nothing to check. */
        if (SHAPES[s][SHAPE_NDIM[s] - 1] == 1) continue;
        Tensor *x = gradcheck_random_tensor("x", SHAPE_NDIM[s], SHAPES[s], 2.0f, &rng);
        check_gradients("softmax", forward_softmax, &(OpArgs){0}, &x, 1);
    }
    Tensor *causal = tensor_alloc("causal", 2, (const int[]){T, T}, false);
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) causal->data[i * T + j] = j <= i ? 1.0f : 0.0f;
    Tensor *scores = gradcheck_random_of("scores", 2.0f, &rng, 4, B, H, T, T);
    check_gradients("softmax causal", forward_softmax, &(OpArgs){.other = causal}, &scores, 1);
    tensor_free(causal);

    enum { ROWS = 3, KEYS = 7 };
    const int lengths[ROWS] = {7, 3, 0}; /* row 2 is entirely padding */
    Tensor *padding = tensor_alloc("padding", 2, (const int[]){ROWS, KEYS}, false);
    for (int r = 0; r < ROWS; r++)
        for (int k = 0; k < KEYS; k++) padding->data[r * KEYS + k] = k < lengths[r] ? 1.0f : 0.0f;
    Tensor *x = gradcheck_random_of("x", 2.0f, &rng, 2, ROWS, KEYS);
    check_gradients("softmax padding", forward_softmax, &(OpArgs){.other = padding}, &x, 1);
    tensor_free(padding);
}
END_TEST

static Tensor *forward_cross_entropy(Graph *g, Tensor *const *in, void *context) {
    return op_cross_entropy(g, in[0], ((const OpArgs *)context)->ids, IGNORE);
}

START_TEST(test_gradient_cross_entropy) {
    Rng rng;
    rng_seed(&rng, 15, 0);
    const int targets[] = {0, 6, IGNORE, 3, 6};
    Tensor *logits = gradcheck_random_of("logits", 2.0f, &rng, 2, 5, 7); /* (N,V) */
    check_gradients("cross_entropy (N,V)", forward_cross_entropy, &(OpArgs){.ids = targets},
                    &logits, 1);
    const int sequence_targets[] = {4, IGNORE, 0, 1, 1, IGNORE};
    logits = gradcheck_random_of("logits", 2.0f, &rng, 3, 2, 3, 5); /* (B,T,V) */
    check_gradients("cross_entropy (B,T,V)", forward_cross_entropy,
                    &(OpArgs){.ids = sequence_targets}, &logits, 1);
    const int single[] = {0};
    logits = gradcheck_random_of("logits", 2.0f, &rng, 2, 1, 17);
    check_gradients("cross_entropy (1,17)", forward_cross_entropy, &(OpArgs){.ids = single},
                    &logits, 1);
}
END_TEST

static Tensor *forward_mse(Graph *g, Tensor *const *in, void *context) {
    return op_mse(g, in[0], ((const OpArgs *)context)->other);
}
static Tensor *forward_bce(Graph *g, Tensor *const *in, void *context) {
    return op_bce_with_logits(g, in[0], ((const OpArgs *)context)->other);
}

START_TEST(test_gradient_mse_and_bce) {
    Rng rng;
    rng_seed(&rng, 16, 0);
    for (int s = 0; s < SHAPE_COUNT; s++) {
        Tensor *target = tensor_alloc("target", SHAPE_NDIM[s], SHAPES[s], false);
        /* Probabilities, including exact 0 and 1 labels. */
        for (int i = 0; i < target->numel; i++)
            target->data[i] = i % 3 == 0 ? (float)(i % 2) : rng_uniform(&rng);
        Tensor *x = gradcheck_random_tensor("x", SHAPE_NDIM[s], SHAPES[s], 2.0f, &rng);
        check_gradients("mse", forward_mse, &(OpArgs){.other = target}, &x, 1);
        x = gradcheck_random_tensor("logits", SHAPE_NDIM[s], SHAPES[s], 2.0f, &rng);
        check_gradients("bce_with_logits", forward_bce, &(OpArgs){.other = target}, &x, 1);
        tensor_free(target);
    }
}
END_TEST

static Tensor *forward_layernorm(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return op_layernorm(g, in[0], in[1], in[2], 1e-5f);
}

/* Gradients of x, gamma and beta.  C = 1 is excluded: every row is then
 * its own mean and the output is just beta (checked in nn tests by the
 * layer, and it would make the x check vacuous). */
START_TEST(test_gradient_layernorm) {
    Rng rng;
    rng_seed(&rng, 17, 0);
    for (int s = 0; s < SHAPE_COUNT; s++) {
        int channels = SHAPES[s][SHAPE_NDIM[s] - 1];
        if (channels == 1) continue;
        Tensor *inputs[3] = {gradcheck_random_tensor("x", SHAPE_NDIM[s], SHAPES[s], 1.0f, &rng),
                             gradcheck_random_of("gamma", 0.5f, &rng, 1, channels),
                             gradcheck_random_of("beta", 0.5f, &rng, 1, channels)};
        for (int c = 0; c < channels; c++) inputs[1]->data[c] += 1.0f;
        check_gradients("layernorm", forward_layernorm, &(OpArgs){0}, inputs, 3);
    }
}
END_TEST

static Tensor *forward_linear(Graph *g, Tensor *const *in, void *context) {
    const OpArgs *args = context;
    return op_linear(g, in[0], in[1], args->count ? in[2] : NULL); /* count: has a bias */
}

static Tensor *forward_linear_packed(Graph *g, Tensor *const *in, void *context) {
    const OpArgs *args = context;
    return op_linear_packed(g, in[0], in[1], linear_pack_weight(g, in[1]),
                            args->count ? in[2] : NULL);
}

/* op_linear on 2-D and 3-D x, with and without bias, on few rows (<= 4:
 * the dot-product path) and more (the matmul path).  Its values must also
 * equal op_matmul(x, W, TRANSPOSE_B) + op_add_bias, which it replaces, and
 * op_linear_packed (the weight packed in advance) must give the same bits. */
START_TEST(test_gradient_linear) {
    enum { IN = 5, OUT = 3, CASES = 4 };
    static const int NDIM[CASES] = {2, 2, 3, 3};
    static const int X_SHAPES[CASES][3] = {{3, IN}, {7, IN}, {1, 2, IN}, {2, 3, IN}}; /* rows 3, 7, 2, 6 */
    Rng rng;
    rng_seed(&rng, 21, 0);
    for (int s = 0; s < CASES; s++)
        for (int with_bias = 0; with_bias <= 1; with_bias++) {
            Tensor *inputs[3] = {gradcheck_random_tensor("x", NDIM[s], X_SHAPES[s], 1.0f, &rng),
                                 gradcheck_random_of("weight", 1.0f, &rng, 2, OUT, IN),
                                 gradcheck_random_of("bias", 1.0f, &rng, 1, OUT)};
            Graph g;
            graph_init(&g, TEST_ARENA_BYTES, TEST_TAPE);
            Tensor *fused = op_linear(&g, inputs[0], inputs[1], with_bias ? inputs[2] : NULL);
            Tensor *plain = op_matmul(&g, inputs[0], inputs[1], TRANSPOSE_B);
            if (with_bias) plain = op_add_bias(&g, plain, inputs[2]);
            ck_assert(tensor_same_shape(fused, plain));
            for (int i = 0; i < fused->numel; i++)
                ck_assert_msg(fabsf(fused->data[i] - plain->data[i]) <= 1e-5f,
                              "linear case %d bias %d [%d]: %g vs matmul + add_bias %g", s,
                              with_bias, i, fused->data[i], plain->data[i]);
            Tensor *prepacked = forward_linear_packed(&g, inputs, &(OpArgs){.count = with_bias});
            ck_assert_msg(memcmp(prepacked->data, fused->data, sizeof(float) * fused->numel) == 0,
                          "linear case %d bias %d: op_linear_packed differs from op_linear", s,
                          with_bias);
            graph_free(&g);
            char label[64];
            snprintf(label, sizeof label, "linear case %d %s", s, with_bias ? "bias" : "no bias");
            ck_assert_int_eq(gradcheck_tensor(label, forward_linear_packed,
                                              &(OpArgs){.count = with_bias}, inputs, 3,
                                              GRADCHECK_DEFAULT), 0);
            check_gradients(label, forward_linear, &(OpArgs){.count = with_bias}, inputs, 3);
        }
}
END_TEST

/* ---- the same bits for any thread count ----------------------------------------- */

enum { BIG_ROWS = 64, BIG_C = 384, BIG_TENSORS = 16 }; /* 64 x 384 = 24576 floats per tensor */

/* A leaf (BIG_ROWS, BIG_C) or (BIG_C) filled from rng, in the arena. */
static Tensor *big_leaf(Graph *g, int ndim, const int *shape, Rng *rng) {
    Tensor *t = tensor_new(g, ndim, shape, true);
    for (int i = 0; i < t->numel; i++) t->data[i] = rng_normal(rng);
    return t;
}

/* Runs every sped-up op, forward and backward, on tensors above the
 * parallel threshold (PARALLEL_MIN_FLOATS = 16384 floats in tensor.c) and
 * copies every value and gradient into a new buffer of *count floats. */
static float *run_big_ops(int *count) {
    Graph g;
    graph_init(&g, 16 << 20, TEST_TAPE);
    Rng rng;
    rng_seed(&rng, 22, 0);
    const int rc[2] = {BIG_ROWS, BIG_C}, cc[2] = {BIG_C, BIG_C}, c1[1] = {BIG_C};
    Tensor *x = big_leaf(&g, 2, rc, &rng), *w = big_leaf(&g, 2, cc, &rng);
    Tensor *b = big_leaf(&g, 1, c1, &rng), *gamma = big_leaf(&g, 1, c1, &rng);
    Tensor *beta = big_leaf(&g, 1, c1, &rng), *b2 = big_leaf(&g, 1, c1, &rng);
    Tensor *mask = tensor_new(&g, 1, c1, false);
    for (int c = 0; c < BIG_C; c++) mask->data[c] = c % 3 ? 1.0f : 0.0f;
    int targets[BIG_ROWS];
    for (int r = 0; r < BIG_ROWS; r++) targets[r] = r % 5 ? (r * 37) % BIG_C : IGNORE;
    Tensor *t[BIG_TENSORS];
    t[0] = x, t[1] = w, t[2] = b, t[3] = gamma, t[4] = beta, t[5] = b2;
    t[6] = op_linear(&g, x, w, b);                                  /* (R, C) */
    t[7] = op_layernorm(&g, t[6], gamma, beta, 1e-5f);
    t[8] = op_gelu(&g, t[7]);
    t[9] = op_mul(&g, op_sub(&g, op_add(&g, t[8], x), t[7]), t[6]);
    t[10] = op_softmax(&g, t[9], mask);
    t[11] = op_softmax(&g, t[9], NULL);
    t[12] = op_add_bias(&g, op_add(&g, t[10], t[11]), b2);
    t[13] = op_sigmoid(&g, op_tanh(&g, t[12]));
    t[14] = op_add(&g, t[13], op_scale(&g, t[9], 0.01f));
    t[15] = op_cross_entropy(&g, t[14], targets, IGNORE);           /* (1) */
    graph_backward(&g, t[15]);
    *count = 0;
    for (int i = 0; i < BIG_TENSORS; i++) *count += t[i]->numel * (t[i]->grad ? 2 : 1);
    float *all = xmalloc((size_t)*count * sizeof(float)), *at = all;
    for (int i = 0; i < BIG_TENSORS; i++) {
        memcpy(at, t[i]->data, (size_t)t[i]->numel * sizeof(float));
        at += t[i]->numel;
        if (t[i]->grad) memcpy(at, t[i]->grad, (size_t)t[i]->numel * sizeof(float));
        if (t[i]->grad) at += t[i]->numel;
    }
    graph_free(&g);
    return all;
}

/* Determinism: 1 and 2 threads give the same bits, values and gradients.
 * (Without OpenMP both runs take one thread and this passes trivially.) */
START_TEST(test_ops_identical_for_1_and_2_threads) {
    int saved = threads_get(), count_one, count_two;
    threads_set(1);
    float *one = run_big_ops(&count_one);
    threads_set(2);
    float *two = run_big_ops(&count_two);
    threads_set(saved);
    ck_assert_int_eq(count_one, count_two);
    int first_difference = -1;
    for (int i = 0; i < count_one && first_difference < 0; i++)
        if (memcmp(&one[i], &two[i], sizeof(float)) != 0) first_difference = i;
    ck_assert_msg(first_difference < 0, "element %d of %d differs: %.9g with 1 thread, %.9g with 2",
                  first_difference, count_one, first_difference < 0 ? 0 : one[first_difference],
                  first_difference < 0 ? 0 : two[first_difference]);
    free(one);
    free(two);
}
END_TEST

static Tensor *forward_gather_rows(Graph *g, Tensor *const *in, void *context) {
    const OpArgs *args = context;
    return op_gather_rows(g, in[0], args->ids, args->count);
}
static Tensor *forward_concat(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return op_concat(g, in[0], in[1]);
}
static Tensor *forward_slice_columns(Graph *g, Tensor *const *in, void *context) {
    const OpArgs *args = context;
    return op_slice_columns(g, in[0], args->first, args->columns);
}

/* Repeated ids must add their gradients into the same table row. */
START_TEST(test_gradient_gather_concat_slice) {
    Rng rng;
    rng_seed(&rng, 18, 0);
    const int ids[] = {0, 2, 2, 4, 2, 0};
    Tensor *table = gradcheck_random_of("table", 1.0f, &rng, 2, 5, 3);
    check_gradients("gather_rows", forward_gather_rows, &(OpArgs){.ids = ids, .count = 6}, &table,
                    1);
    const int zeros[] = {0, 0, 0};
    table = gradcheck_random_of("table", 1.0f, &rng, 2, 1, 1);
    check_gradients("gather_rows (1,1)", forward_gather_rows, &(OpArgs){.ids = zeros, .count = 3},
                    &table, 1);

    const int concat_shapes[][2][3] = {{{2, 3}, {2, 5}}, {{2, 3, 1}, {2, 3, 4}}, {{1, 1}, {1, 1}}};
    const int concat_ndim[] = {2, 3, 2};
    for (int s = 0; s < 3; s++) {
        Tensor *inputs[2] = {
            gradcheck_random_tensor("a", concat_ndim[s], concat_shapes[s][0], 1.0f, &rng),
            gradcheck_random_tensor("b", concat_ndim[s], concat_shapes[s][1], 1.0f, &rng)};
        check_gradients("concat", forward_concat, &(OpArgs){0}, inputs, 2);
    }

    const int slices[][2] = {{2, 3}, {0, 7}, {6, 1}, {0, 1}};
    for (int s = 0; s < 4; s++) {
        Tensor *x = gradcheck_random_of("x", 1.0f, &rng, 3, 2, 3, 7);
        OpArgs args = {.first = slices[s][0], .columns = slices[s][1]};
        check_gradients("slice_columns", forward_slice_columns, &args, &x, 1);
    }
}
END_TEST

/* The mask is drawn in the forward, so every evaluation reseeds the same
 * generator: the finite differences then see the same mask as backward. */
static Tensor *forward_dropout(Graph *g, Tensor *const *in, void *context) {
    const OpArgs *args = context;
    Rng rng;
    rng_seed(&rng, args->seed, 1);
    g->training = true;
    return op_dropout(g, in[0], args->factor, &rng);
}

START_TEST(test_gradient_dropout) {
    Rng rng;
    rng_seed(&rng, 19, 0);
    const float probabilities[] = {0.3f, 0.5f, 0.0f};
    for (int p = 0; p < 3; p++) {
        Tensor *x = gradcheck_random_of("x", 1.0f, &rng, 2, 3, 17);
        OpArgs args = {.factor = probabilities[p], .seed = 99u + (uint64_t)p};
        check_gradients("dropout", forward_dropout, &args, &x, 1);
    }
}
END_TEST

/* x (2,6) seen as (3,4), then multiplied: the gradient arrives in x's
 * buffer through the shared view. */
static Tensor *forward_reshape_matmul(Graph *g, Tensor *const *in, void *context) {
    const OpArgs *args = context;
    Tensor *view = tensor_reshape(g, in[0], args->ndim, args->shape);
    return op_matmul(g, view, in[1], NO_TRANSPOSE);
}
/* Rows [first, first+columns) of a leaf, and of an intermediate result. */
static Tensor *forward_rows(Graph *g, Tensor *const *in, void *context) {
    const OpArgs *args = context;
    Tensor *leaf_rows = tensor_rows(g, in[0], args->first, args->columns);
    Tensor *y = op_tanh(g, in[0]);
    Tensor *y_rows = tensor_rows(g, y, args->first, args->columns);
    return op_mul(g, leaf_rows, op_sigmoid(g, y_rows));
}

START_TEST(test_gradient_through_views) {
    Rng rng;
    rng_seed(&rng, 20, 0);
    Tensor *inputs[2] = {gradcheck_random_of("x", 1.0f, &rng, 2, 2, 6),
                         gradcheck_random_of("w", 1.0f, &rng, 2, 4, 5)};
    OpArgs reshape = {.ndim = 2, .shape = {3, 4}};
    check_gradients("reshape", forward_reshape_matmul, &reshape, inputs, 2);
    const int rows[][2] = {{1, 3}, {0, 5}, {4, 1}};
    for (int r = 0; r < 3; r++) {
        Tensor *x = gradcheck_random_of("x", 1.0f, &rng, 3, 5, 3, 2);
        OpArgs args = {.first = rows[r][0], .columns = rows[r][1]};
        check_gradients("tensor_rows", forward_rows, &args, &x, 1);
    }
}
END_TEST

/* Every way an op output's gradient can be reached, for graph_backward's
 * late zeroing (common/tensor.c, section 5): h has three consumers (a
 * linear, whose backward may overwrite; an add; a view), u = gelu(...)
 * is added to itself, and `dead` never reaches the loss. */
static Tensor *forward_gradients_written_late(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    Tensor *x = in[0], *weight = in[1];                       /* (4, 6), (6, 6) */
    Tensor *h = op_tanh(g, x);                                /* (4, 6) */
    Tensor *u = op_gelu(g, op_linear(g, h, weight, NULL));    /* (4, 6) */
    Tensor *doubled = op_add(g, u, u);                        /* (4, 6) */
    Tensor *residual = op_add(g, h, doubled);                 /* (4, 6) */
    (void)op_sigmoid(g, residual);                            /* dead: never used */
    Tensor *h_rows = tensor_rows(g, h, 1, 2);                 /* (2, 6) a view of h */
    Tensor *tail = op_mul(g, h_rows, h_rows);                 /* (2, 6) */
    return op_concat(g, tensor_reshape(g, residual, 2, (int[]){2, 12}),
                     tensor_reshape(g, tail, 2, (int[]){2, 6})); /* (2, 18) */
}

/* A graph whose arena is full of NaN: a gradient read before it is
 * written turns the results into NaN.  Also the inputs x (4, 6) and w
 * (6, 6) of the two tests below. */
static void nan_arena_graph(Graph *g, uint64_t seed, Tensor **inputs) {
    Rng rng;
    rng_seed(&rng, seed, 0);
    inputs[0] = gradcheck_random_of("x", 1.0f, &rng, 2, 4, 6);
    inputs[1] = gradcheck_random_of("w", 0.5f, &rng, 2, 6, 6);
    graph_init(g, TEST_ARENA_BYTES, TEST_TAPE);
    Tensor *junk = tensor_new(g, 1, (const int[]){TEST_ARENA_BYTES / 16}, true);
    for (int i = 0; i < junk->numel; i++) junk->data[i] = junk->grad[i] = NAN;
    graph_reset(g);
}

START_TEST(test_gradients_written_late_or_never) {
    Graph g;
    Tensor *inputs[2];
    nan_arena_graph(&g, 22, inputs);
    Tensor *out = forward_gradients_written_late(&g, inputs, NULL);
    graph_backward(&g, op_sum(&g, out));
    for (int i = 0; i < g.tape_length; i++) {
        const Tensor *t = g.tape[i].out;
        ck_assert_msg(!t->grad_unwritten, "tape entry %d (%s): gradient left unwritten", i,
                      t->name);
        for (int k = 0; k < t->numel; k++)
            ck_assert_msg(isfinite(t->grad[k]), "tape entry %d (%s): gradient[%d] = %g", i,
                          t->name, k, t->grad[k]);
    }
    const Tensor *dead = NULL; /* the sigmoid: the only entry of its kind */
    for (int i = 0; i < g.tape_length; i++)
        if (g.tape[i].op == OP_SIGMOID) dead = g.tape[i].out;
    ck_assert_ptr_nonnull(dead);
    for (int k = 0; k < dead->numel; k++) ck_assert_float_eq(dead->grad[k], 0.0f);
    graph_free(&g);
    /* and the gradients themselves, against finite differences */
    check_gradients("written late", forward_gradients_written_late, NULL, inputs, 2);
}
END_TEST

/* Views zero nothing when they are made: the base's gradient stays
 * unwritten until a backward reaches it.  Here only rows 1..2 of h reach
 * the loss, through a linear whose backward would overwrite its input's
 * gradient; since the view covers part of h, it must zero all of h and
 * add, or rows 0 and 3 keep the leftover bytes (NaN here), which tanh's
 * backward would carry into x's gradient. */
static Tensor *forward_part_of_a_view(Graph *g, Tensor *const *in, void *context) {
    bool *lazy = context; /* NULL, or receives: h's gradient unwritten after the views */
    Tensor *x = in[0], *weight = in[1];                      /* (4, 6), (6, 6) */
    Tensor *h = op_tanh(g, x);                               /* (4, 6) */
    Tensor *middle = tensor_rows(g, h, 1, 2);                /* (2, 6) a view of h */
    Tensor *flat = tensor_reshape(g, middle, 1, (int[]){12}); /* (12) a view of the view */
    if (lazy) *lazy = h->grad_unwritten && flat->base == h;
    Tensor *empty = tensor_empty(g, 2, (const int[]){2, 6}, true, "empty");
    if (lazy) *lazy = *lazy && empty->grad_unwritten;
    return op_linear(g, tensor_reshape(g, flat, 2, (int[]){2, 6}), weight, NULL); /* (2, 6) */
}

START_TEST(test_views_zero_their_base_when_reached) {
    Graph g;
    Tensor *inputs[2];
    nan_arena_graph(&g, 23, inputs);
    bool lazy = false;
    Tensor *out = forward_part_of_a_view(&g, inputs, &lazy);
    ck_assert_msg(lazy, "making a view (or tensor_empty) zeroed a gradient in the forward");
    graph_backward(&g, op_sum(&g, out));
    for (int k = 0; k < inputs[0]->numel; k++)
        ck_assert_msg(isfinite(inputs[0]->grad[k]), "x gradient[%d] = %g", k, (double)inputs[0]->grad[k]);
    for (int k = 0; k < 6; k++) /* row 0 of x reaches nothing */
        ck_assert_float_eq(inputs[0]->grad[k], 0.0f);
    graph_free(&g);
    check_gradients("part of a view", forward_part_of_a_view, NULL, inputs, 2);
}
END_TEST

/* The checker itself must fail on a wrong gradient: here the second factor
 * of x*x is a copy without gradient, so backward gives x where the true
 * derivative is 2x. */
static Tensor *forward_detached_square(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    Tensor *copy = tensor_new(g, in[0]->ndim, in[0]->shape, false);
    memcpy(copy->data, in[0]->data, (size_t)in[0]->numel * sizeof(float));
    return op_mul(g, in[0], copy);
}

START_TEST(test_gradcheck_catches_a_wrong_gradient) {
    Rng rng;
    rng_seed(&rng, 21, 0);
    Tensor *x = gradcheck_random_of("x", 1.0f, &rng, 2, 3, 5);
    push_away_from_zero(x);
    int saved_stderr = silence_stderr(); /* the mismatch report is expected */
    int bad = gradcheck_tensor("detached", forward_detached_square, NULL, &x, 1, GRADCHECK_DEFAULT);
    restore_stderr(saved_stderr);
    /* Off by x*R per element; a few elements with tiny R may pass. */
    ck_assert_int_ge(bad, x->numel / 2);
    tensor_free(x);
}
END_TEST

/* ======================================================================== */
/* 4. Shape errors and printing                                             */
/* ======================================================================== */

/* Runs body() in a child with stderr sent to a pipe; returns the child's
 * exit status (-1 if it did not exit normally) and what it wrote. */
static int run_capturing_stderr(void (*body)(void), char *text, size_t size) {
    int pipe_ends[2];
    ck_assert_int_eq(pipe(pipe_ends), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        close(pipe_ends[0]);
        dup2(pipe_ends[1], STDERR_FILENO);
        body();
        _exit(0); /* reached only if the op failed to stop */
    }
    close(pipe_ends[1]);
    size_t length = 0;
    ssize_t got;
    while (length + 1 < size && (got = read(pipe_ends[0], text + length, size - 1 - length)) > 0)
        length += (size_t)got;
    text[length] = '\0';
    close(pipe_ends[0]);
    int status;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Static so that LeakSanitizer, which runs at the child's exit, still
 * reaches the arena. */
static Graph shape_graph;

static Tensor *shape_tensor(int ndim, const int *shape) {
    return tensor_new(&shape_graph, ndim, shape, true);
}
#define shaped(ndim, ...) shape_tensor((ndim), (const int[]){__VA_ARGS__})

static void bad_add(void) { op_add(&shape_graph, shaped(2, 2, 3), shaped(2, 3, 2)); }
static void bad_sub(void) { op_sub(&shape_graph, shaped(1, 3), shaped(1, 4)); }
static void bad_mul(void) { op_mul(&shape_graph, shaped(2, 2, 3), shaped(1, 6)); }
static void bad_matmul(void) {
    op_matmul(&shape_graph, shaped(2, 2, 3), shaped(2, 4, 5), NO_TRANSPOSE);
}
static void bad_matmul_transposed(void) {
    op_matmul(&shape_graph, shaped(2, 2, 3), shaped(2, 3, 5), TRANSPOSE_B);
}
static void bad_matmul_batch(void) {
    op_matmul(&shape_graph, shaped(3, 2, 3, 4), shaped(3, 3, 4, 5), NO_TRANSPOSE);
}
static void bad_add_bias(void) { op_add_bias(&shape_graph, shaped(2, 2, 3), shaped(1, 4)); }
static void bad_concat(void) { op_concat(&shape_graph, shaped(2, 2, 3), shaped(2, 3, 3)); }
static void bad_layernorm(void) {
    op_layernorm(&shape_graph, shaped(2, 2, 3), shaped(1, 4), shaped(1, 3), 1e-5f);
}
static void bad_mse(void) { op_mse(&shape_graph, shaped(1, 3), shaped(1, 4)); }
/* mse and bce compare element counts, so the shapes differ in count here. */
static void bad_bce(void) { op_bce_with_logits(&shape_graph, shaped(2, 3, 2), shaped(1, 5)); }
static void bad_softmax_mask(void) {
    op_softmax(&shape_graph, shaped(3, 2, 3, 3), shaped(2, 4, 4));
}

typedef struct {
    void (*body)(void);
    const char *needles[3]; /* op name, then both shapes */
} ShapeCase;

START_TEST(test_shape_mismatch_names_op_and_shapes) {
    const ShapeCase cases[] = {
        {bad_add, {"add", "(2,3)", "(3,2)"}},
        {bad_sub, {"sub", "(3)", "(4)"}},
        {bad_mul, {"mul", "(2,3)", "(6)"}},
        {bad_matmul, {"matmul", "(2,3)", "(4,5)"}},
        {bad_matmul_transposed, {"matmul", "(2,3)", "(3,5)"}},
        {bad_matmul_batch, {"matmul", "(2,3,4)", "(3,4,5)"}},
        {bad_add_bias, {"add_bias", "(2,3)", "(4)"}},
        {bad_concat, {"concat", "(2,3)", "(3,3)"}},
        {bad_layernorm, {"layernorm", "(2,3)", "(4)"}},
        {bad_mse, {"mse", "(3)", "(4)"}},
        {bad_bce, {"bce_with_logits", "(3,2)", "(5)"}},
        {bad_softmax_mask, {"softmax", "(2,3,3)", "(4,4)"}},
    };
    graph_init(&shape_graph, TEST_ARENA_BYTES, TEST_TAPE);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char text[1024];
        int status = run_capturing_stderr(cases[c].body, text, sizeof text);
        ck_assert_msg(status == 1, "%s: exit status %d, expected 1 (stderr: %s)",
                      cases[c].needles[0], status, text);
        for (int n = 0; n < 3; n++)
            ck_assert_msg(strstr(text, cases[c].needles[n]) != NULL,
                          "%s: message lacks \"%s\": %s", cases[c].needles[0], cases[c].needles[n],
                          text);
    }
    graph_free(&shape_graph);
}
END_TEST

/* Check's own exit test: the forked test must end with status 1.  Without
 * fork (CK_FORK=no, for gdb) the exit would end the whole run, so the
 * test then does nothing: the test above covers the same ground. */
START_TEST(test_shape_mismatch_exits_with_status_1) {
    const char *fork_mode = getenv("CK_FORK");
    if (fork_mode != NULL && strcmp(fork_mode, "no") == 0) return;
    graph_init(&shape_graph, TEST_ARENA_BYTES, TEST_TAPE);
    silence_stderr(); /* the message itself is checked by the test above */
    bad_add();
}
END_TEST

/* Ops that take no second tensor still stop on an index out of range. */
static void bad_slice(void) { op_slice_columns(&shape_graph, shaped(2, 2, 7), 5, 3); }
static void bad_gather(void) {
    op_gather_rows(&shape_graph, shaped(2, 4, 3), (const int[]){1, 4}, 2);
}
static void bad_target(void) {
    op_cross_entropy(&shape_graph, shaped(2, 2, 5), (const int[]){1, 5}, IGNORE);
}

/* With check_numerics on, the first op producing NaN stops and names itself. */
static void nan_from_sub(void) {
    shape_graph.check_numerics = true;
    Tensor *a = shaped(1, 2);
    a->data[0] = INFINITY;
    op_sub(&shape_graph, a, a); /* inf - inf */
}

START_TEST(test_bad_indices_and_values_stop) {
    const ShapeCase cases[] = {{bad_slice, {"slice_columns"}},
                               {bad_gather, {"gather_rows"}},
                               {bad_target, {"cross_entropy"}},
                               {nan_from_sub, {"sub"}}};
    graph_init(&shape_graph, TEST_ARENA_BYTES, TEST_TAPE);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char text[1024];
        int status = run_capturing_stderr(cases[c].body, text, sizeof text);
        ck_assert_msg(status == 1, "%s: exit status %d, expected 1", cases[c].needles[0], status);
        ck_assert_msg(strstr(text, cases[c].needles[0]) != NULL, "message lacks \"%s\": %s",
                      cases[c].needles[0], text);
    }
    graph_free(&shape_graph);
}
END_TEST

/* Runs body(g) with stdout sent to a temporary file; returns its text
 * (malloc'd). */
static char *capture_stdout(void (*body)(Graph *), Graph *g) {
    char directory[512], path[600];
    snprintf(directory, sizeof directory, "%s", test_temp_dir("print"));
    snprintf(path, sizeof path, "%s/stdout.txt", directory);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int file = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(file, 0);
    dup2(file, STDOUT_FILENO);
    body(g);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(file);
    FILE *in = fopen(path, "r");
    ck_assert_ptr_nonnull(in);
    char *text = xcalloc(1 << 16, 1);
    size_t length = fread(text, 1, (1 << 16) - 1, in);
    text[length] = '\0';
    fclose(in);
    remove(path);
    rmdir(directory);
    return text;
}

static void print_small_graph(Graph *g) {
    Tensor *x = leaf_of(g, ((float[]){1, 2, 3, 4, 5, 6}), 2, 2, 3);
    x->name = "inputs";
    Tensor *w = leaf_of(g, ((float[]){1, 0, 0, 1, 1, 1}), 2, 3, 2);
    Tensor *logits = op_tanh(g, op_matmul(g, x, w, NO_TRANSPOSE));
    logits->name = "logits";
    graph_print_tape(g);
    tensor_print(logits);
}

START_TEST(test_print_tape_and_tensor) {
    Graph g;
    graph_init(&g, TEST_ARENA_BYTES, TEST_TAPE);
    char *text = capture_stdout(print_small_graph, &g);
    const char *expected[] = {"matmul", "tanh", "logits", "(2,2)"};
    for (int i = 0; i < 4; i++)
        ck_assert_msg(strstr(text, expected[i]) != NULL, "printout lacks \"%s\":\n%s",
                      expected[i], text);
    free(text);
    char buffer[32];
    Tensor *t = tensor_of(&g, false, 3, 2, 17, 1);
    ck_assert_str_eq(tensor_shape_string(t, buffer, sizeof buffer), "(2,17,1)");
    graph_free(&g);
}
END_TEST

/* ======================================================================== */
/* Suite                                                                    */
/* ======================================================================== */

Suite *tensor_ops_suite(void) {
    Suite *suite = suite_create("tensor_ops");
    TCase *bookkeeping = tcase_create("arena_and_tape");
    tcase_add_test(bookkeeping, test_arena_alignment_and_reset);
    tcase_add_test(bookkeeping, test_arena_grows_to_the_step_after_overflow);
    tcase_add_test(bookkeeping, test_graph_reset_empties_tape_and_arena);
    tcase_add_test(bookkeeping, test_tape_records_only_what_needs_gradients);
    tcase_add_test(bookkeeping, test_backward_accumulates_across_steps);
    suite_add_tcase(suite, bookkeeping);

    TCase *forward = tcase_create("forward_values");
    tcase_add_test(forward, test_forward_elementwise);
    tcase_add_test(forward, test_forward_add_bias_concat_slice_gather);
    tcase_add_test(forward, test_forward_matmul_against_loops);
    tcase_add_test(forward, test_forward_softmax);
    tcase_add_test(forward, test_forward_layernorm);
    tcase_add_test(forward, test_forward_losses);
    tcase_add_test(forward, test_bce_with_logits_is_stable);
    tcase_add_test(forward, test_cross_entropy_all_ignored_has_zero_gradient);
    tcase_add_test(forward, test_dropout_forward);
    suite_add_tcase(suite, forward);

    TCase *gradients = tcase_create("gradients");
    tcase_set_timeout(gradients, 60); /* sanitizer builds are ~10x slower */
    tcase_add_test(gradients, test_gradcheck_catches_a_wrong_gradient);
    tcase_add_test(gradients, test_gradient_matmul);
    tcase_add_test(gradients, test_gradient_elementwise);
    tcase_add_test(gradients, test_gradient_add_bias);
    tcase_add_test(gradients, test_gradient_linear);
    tcase_add_test(gradients, test_gradient_softmax);
    tcase_add_test(gradients, test_gradient_cross_entropy);
    tcase_add_test(gradients, test_gradient_mse_and_bce);
    tcase_add_test(gradients, test_gradient_layernorm);
    tcase_add_test(gradients, test_gradient_gather_concat_slice);
    tcase_add_test(gradients, test_gradient_dropout);
    tcase_add_test(gradients, test_gradient_through_views);
    tcase_add_test(gradients, test_gradients_written_late_or_never);
    tcase_add_test(gradients, test_views_zero_their_base_when_reached);
    tcase_add_test(gradients, test_ops_identical_for_1_and_2_threads);
    suite_add_tcase(suite, gradients);

    TCase *errors = tcase_create("errors_and_printing");
    /* 12 children that each exit through LeakSanitizer: about 3 s under
     * `make asan` on a busy machine, near Check's default of 4. */
    tcase_set_timeout(errors, 30);
    tcase_add_test(errors, test_shape_mismatch_names_op_and_shapes);
    tcase_add_exit_test(errors, test_shape_mismatch_exits_with_status_1, 1);
    tcase_add_test(errors, test_bad_indices_and_values_stop);
    tcase_add_test(errors, test_print_tape_and_tensor);
    suite_add_tcase(suite, errors);
    return suite;
}
