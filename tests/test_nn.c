/* tests/test_nn.c: parameters, initializers, layers, optimizers, schedules,
 * and whole training steps (arena reuse, thread-count independence).
 *
 * Legend: B batch, T time, In/Out a Linear's sizes, Hd a recurrent cell's
 * hidden size, V vocabulary, C features.
 *
 * Layers are checked twice: the forward against the equations of nn.h
 * evaluated with plain double loops, and the backward against finite
 * differences (tests/gradcheck.c).  Optimizer steps are checked against
 * numbers worked out by hand from the update rules quoted above each test.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "matmul.h"
#include "nn.h"
#include "test_suites.h"

enum { TEST_ARENA_BYTES = 1 << 20, TEST_TAPE = 1024 };

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static void expect_close(const char *what, const float *actual, const double *expected, int count,
                         double tolerance) {
    for (int i = 0; i < count; i++)
        ck_assert_msg(fabs(actual[i] - expected[i]) <= tolerance, "%s[%d] = %.9g, expected %.9g",
                      what, i, actual[i], expected[i]);
}

static void fill_normal(Tensor *t, float scale, Rng *rng) {
    for (int i = 0; i < t->numel; i++) t->data[i] = scale * rng_normal(rng);
}

/* out (rows) = W (rows, cols) @ x (cols) + bias (rows), in double. */
static void affine_by_loops(const Tensor *weight, const Tensor *bias, const float *x,
                            double *out) {
    int rows = weight->shape[0], cols = weight->shape[1];
    for (int r = 0; r < rows; r++) {
        double sum = bias ? bias->data[r] : 0.0;
        for (int c = 0; c < cols; c++) sum += (double)weight->data[r * cols + c] * x[c];
        out[r] = sum;
    }
}

/* ======================================================================== */
/* Parameters and initializers                                              */
/* ======================================================================== */

/* One block, carved in declaration order; names and decay flags kept. */
START_TEST(test_params_one_block_in_order) {
    ParamSet ps;
    params_init(&ps);
    Tensor *w = params_add_of(&ps, "w", true, 2, 2, 3);
    Tensor *b = params_add_of(&ps, "b", false, 1, 3);
    Tensor *e = params_add_of(&ps, "e", true, 3, 4, 1, 1);
    ck_assert_uint_eq(ps.total, 6 + 3 + 4);
    params_allocate(&ps);
    ck_assert_ptr_eq(w->data, ps.values);
    ck_assert_ptr_eq(b->data, ps.values + 6);
    ck_assert_ptr_eq(e->data, ps.values + 9);
    ck_assert_ptr_eq(e->grad, ps.grads + 9);
    ck_assert_int_eq(e->numel, 4);
    ck_assert_int_eq(params_find(&ps, "b"), 1);
    ck_assert_int_eq(params_find(&ps, "missing"), -1);
    ck_assert(ps.decay[0] && !ps.decay[1] && ps.decay[2]);
    for (size_t i = 0; i < ps.total; i++) ps.grads[i] = 1.0f + (float)i;
    params_zero_grad(&ps);
    for (size_t i = 0; i < ps.total; i++) ck_assert_float_eq(ps.grads[i], 0.0f);
    params_free(&ps);
}
END_TEST

/* Shapes and decay flags: weights (Out,In) decayed, biases and LayerNorm
 * gains not. */
START_TEST(test_layer_declarations) {
    ParamSet ps;
    params_init(&ps);
    Linear fc = linear_declare(&ps, "fc", 5, 7, true);
    Linear no_bias = linear_declare(&ps, "proj", 5, 2, false);
    LayerNorm norm = layernorm_declare(&ps, "ln", 7);
    Embedding embed = embedding_declare(&ps, "embed", 11, 3);
    GRUCell gru = gru_cell_declare(&ps, "gru", 5, 4);
    LSTMCell lstm = lstm_cell_declare(&ps, "lstm", 5, 4);
    ck_assert(fc.weight->shape[0] == 7 && fc.weight->shape[1] == 5 && fc.bias->numel == 7);
    ck_assert_ptr_null(no_bias.bias);
    ck_assert_int_ge(params_find(&ps, "fc.weight"), 0);
    ck_assert_int_ge(params_find(&ps, "fc.bias"), 0);
    ck_assert_int_eq(params_find(&ps, "proj.bias"), -1);
    ck_assert(ps.decay[params_find(&ps, "fc.weight")]);
    ck_assert(!ps.decay[params_find(&ps, "fc.bias")]);
    ck_assert(norm.gamma->numel == 7 && norm.beta->numel == 7);
    ck_assert(embed.table->shape[0] == 11 && embed.table->shape[1] == 3);
    ck_assert(gru.input_gates.weight->shape[0] == 12 && gru.input_gates.weight->shape[1] == 5);
    ck_assert(gru.hidden_gates.weight->shape[0] == 12 && gru.hidden_gates.weight->shape[1] == 4);
    ck_assert(lstm.input_gates.weight->shape[0] == 16 && lstm.hidden_gates.bias->numel == 16);
    params_free(&ps);
}
END_TEST

/* Every value inside the documented bound, and spread out to near it. */
static void expect_uniform_within(const Tensor *t, float bound) {
    float low = INFINITY, high = -INFINITY;
    for (int i = 0; i < t->numel; i++) {
        low = fminf(low, t->data[i]);
        high = fmaxf(high, t->data[i]);
    }
    ck_assert_msg(low >= -bound && high <= bound, "%s: [%g, %g] outside +-%g", t->name, low, high,
                  bound);
    ck_assert_msg(low < -0.8f * bound && high > 0.8f * bound, "%s: [%g, %g] too narrow for +-%g",
                  t->name, low, high, bound);
}

static double sample_std(const Tensor *t) {
    double sum = 0, squares = 0;
    for (int i = 0; i < t->numel; i++) {
        sum += t->data[i];
        squares += (double)t->data[i] * t->data[i];
    }
    double mean = sum / t->numel;
    return sqrt(squares / t->numel - mean * mean);
}

START_TEST(test_initializers) {
    ParamSet ps;
    params_init(&ps);
    Linear fc = linear_declare(&ps, "fc", 16, 32, true);
    GRUCell gru = gru_cell_declare(&ps, "gru", 3, 9);
    LayerNorm norm = layernorm_declare(&ps, "ln", 5);
    Tensor *big = params_add_of(&ps, "big", true, 2, 100, 100);
    params_allocate(&ps);
    Rng rng;
    rng_seed(&rng, 5, 0);
    linear_init(&fc, &rng);
    expect_uniform_within(fc.weight, 0.25f); /* 1/sqrt(16) */
    gru_cell_init(&gru, &rng);
    expect_uniform_within(gru.hidden_gates.weight, 1.0f / 3.0f); /* 1/sqrt(9) */
    expect_uniform_within(gru.input_gates.weight, 1.0f / 3.0f);
    layernorm_init(&norm);
    ck_assert_float_eq(norm.epsilon, 1e-5f); /* PyTorch's default, as nn.c says */
    for (int c = 0; c < 5; c++) {
        ck_assert_float_eq(norm.gamma->data[c], 1.0f);
        ck_assert_float_eq(norm.beta->data[c], 0.0f);
    }
    init_xavier_uniform(big, 100, 50, &rng);
    expect_uniform_within(big, sqrtf(6.0f / 150.0f));
    /* 10000 samples: the sample std is within 3% of the true one. */
    init_kaiming_normal(big, 50, &rng);
    ck_assert_double_eq_tol(sample_std(big), sqrt(2.0 / 50.0), 0.03 * sqrt(2.0 / 50.0));
    init_normal(big, 0.5f, &rng);
    ck_assert_double_eq_tol(sample_std(big), 0.5, 0.015);
    init_uniform(big, 2.0f, 3.0f, &rng);
    for (int i = 0; i < big->numel; i++) ck_assert(big->data[i] >= 2.0f && big->data[i] <= 3.0f);
    init_constant(big, -1.5f);
    ck_assert_float_eq(big->data[9999], -1.5f);
    params_free(&ps);
}
END_TEST

/* ======================================================================== */
/* Layers: forward against the equations                                    */
/* ======================================================================== */

/* y = x W^T + b on (B,T,In) input, with and without bias. */
START_TEST(test_linear_forward) {
    enum { B = 2, T = 3, In = 5, Out = 7 };
    ParamSet ps;
    params_init(&ps);
    Linear with_bias = linear_declare(&ps, "a", In, Out, true);
    Linear without = linear_declare(&ps, "b", In, Out, false);
    params_allocate(&ps);
    Rng rng;
    rng_seed(&rng, 6, 0);
    linear_init(&with_bias, &rng);
    linear_init(&without, &rng);
    Graph g;
    graph_init(&g, TEST_ARENA_BYTES, TEST_TAPE);
    Tensor *x = tensor_of(&g, false, 3, B, T, In);
    fill_normal(x, 1.0f, &rng);
    Tensor *y = linear_forward(&g, &with_bias, x), *y_plain = linear_forward(&g, &without, x);
    ck_assert(y->ndim == 3 && y->shape[0] == B && y->shape[1] == T && y->shape[2] == Out);
    for (int row = 0; row < B * T; row++) {
        double expected[Out];
        affine_by_loops(with_bias.weight, with_bias.bias, x->data + row * In, expected);
        expect_close("linear", y->data + row * Out, expected, Out, 1e-5);
        affine_by_loops(without.weight, NULL, x->data + row * In, expected);
        expect_close("linear without bias", y_plain->data + row * Out, expected, Out, 1e-5);
    }
    /* One fused op per layer, bias and all: one tape entry each. */
    ck_assert_int_eq(g.tape_length, 2);
    ck_assert_int_eq(g.tape[0].op, OP_LINEAR);
    ck_assert_int_eq(g.tape[1].op, OP_LINEAR);
    /* One row (generation): the dot-product path, same values. */
    Tensor *rows = tensor_reshape(&g, x, 2, (const int[]){B * T, In}); /* (B*T, In) */
    Tensor *y_row = linear_forward(&g, &with_bias, tensor_rows(&g, rows, 4, 1)); /* (1, Out) */
    double expected_row[Out];
    affine_by_loops(with_bias.weight, with_bias.bias, x->data + 4 * In, expected_row);
    expect_close("linear one row", y_row->data, expected_row, Out, 1e-5);
    graph_free(&g);
    params_free(&ps);
}
END_TEST

/* Rows of the table; a repeated id gets the sum of its rows' gradients. */
START_TEST(test_embedding_forward_and_scatter) {
    ParamSet ps;
    params_init(&ps);
    Embedding embed = embedding_declare(&ps, "embed", 4, 2);
    params_allocate(&ps);
    for (int i = 0; i < 8; i++) embed.table->data[i] = (float)i; /* row r = [2r, 2r+1] */
    Graph g;
    graph_init(&g, TEST_ARENA_BYTES, TEST_TAPE);
    const int ids[] = {3, 1, 3};
    Tensor *rows = embedding_forward(&g, &embed, ids, 3);
    expect_close("embedding", rows->data, (const double[]){6, 7, 2, 3, 6, 7}, 6, 0);
    Tensor *weights = tensor_of(&g, false, 2, 3, 2);
    for (int i = 0; i < 6; i++) weights->data[i] = (float)(i + 1); /* [[1,2],[3,4],[5,6]] */
    graph_backward(&g, op_sum(&g, op_mul(&g, rows, weights)));
    /* Row 3 was picked at positions 0 and 2: [1+5, 2+6]; row 1 at 1. */
    expect_close("embedding grad", embed.table->grad, (const double[]){0, 0, 3, 4, 0, 0, 6, 8}, 8,
                 0);
    graph_free(&g);
    params_free(&ps);
}
END_TEST

START_TEST(test_layernorm_layer_forward) {
    enum { ROWS = 3, C = 5 };
    ParamSet ps;
    params_init(&ps);
    LayerNorm norm = layernorm_declare(&ps, "ln", C);
    LayerNorm single = layernorm_declare(&ps, "one", 1);
    params_allocate(&ps);
    layernorm_init(&norm);
    layernorm_init(&single);
    for (int c = 0; c < C; c++) {
        norm.gamma->data[c] = 1.0f + 0.25f * (float)c;
        norm.beta->data[c] = -0.5f + 0.1f * (float)c;
    }
    Graph g;
    graph_init(&g, TEST_ARENA_BYTES, TEST_TAPE);
    Rng rng;
    rng_seed(&rng, 7, 0);
    Tensor *x = tensor_of(&g, false, 2, ROWS, C);
    fill_normal(x, 3.0f, &rng);
    Tensor *y = layernorm_forward(&g, &norm, x);
    for (int r = 0; r < ROWS; r++) {
        const float *in = x->data + r * C;
        double mean = 0, variance = 0, expected[C];
        for (int c = 0; c < C; c++) mean += in[c] / (double)C;
        for (int c = 0; c < C; c++) variance += (in[c] - mean) * (in[c] - mean) / C;
        for (int c = 0; c < C; c++)
            expected[c] = (in[c] - mean) / sqrt(variance + norm.epsilon) * norm.gamma->data[c] +
                          norm.beta->data[c];
        expect_close("layernorm", y->data + r * C, expected, C, 1e-5);
    }
    /* One feature: x - mean is 0, so the output is beta whatever x is. */
    single.beta->data[0] = 0.75f;
    Tensor *column = tensor_of(&g, false, 2, ROWS, 1);
    fill_normal(column, 3.0f, &rng);
    expect_close("layernorm C=1", layernorm_forward(&g, &single, column)->data,
                 (const double[]){0.75, 0.75, 0.75}, ROWS, 0);
    graph_free(&g);
    params_free(&ps);
}
END_TEST

/* torch.nn.GRUCell, gate rows (r, z, n), for one batch row, in double. */
static void gru_by_loops(const GRUCell *cell, const float *x, const float *h, double *h_next) {
    int Hd = cell->hidden;
    double from_x[3 * 64], from_h[3 * 64];
    affine_by_loops(cell->input_gates.weight, cell->input_gates.bias, x, from_x);
    affine_by_loops(cell->hidden_gates.weight, cell->hidden_gates.bias, h, from_h);
    for (int j = 0; j < Hd; j++) {
        double r = sigmoid(from_x[j] + from_h[j]);
        double z = sigmoid(from_x[Hd + j] + from_h[Hd + j]);
        double n = tanh(from_x[2 * Hd + j] + r * from_h[2 * Hd + j]);
        h_next[j] = (1 - z) * n + z * h[j];
    }
}

/* torch.nn.LSTMCell, gate rows (i, f, g, o), for one batch row, in double. */
static void lstm_by_loops(const LSTMCell *cell, const float *x, const float *h, const float *c,
                          double *h_next, double *c_next) {
    int Hd = cell->hidden;
    double from_x[4 * 64], from_h[4 * 64];
    affine_by_loops(cell->input_gates.weight, cell->input_gates.bias, x, from_x);
    affine_by_loops(cell->hidden_gates.weight, cell->hidden_gates.bias, h, from_h);
    for (int j = 0; j < Hd; j++) {
        double input = sigmoid(from_x[j] + from_h[j]);
        double forget = sigmoid(from_x[Hd + j] + from_h[Hd + j]);
        double candidate = tanh(from_x[2 * Hd + j] + from_h[2 * Hd + j]);
        double output = sigmoid(from_x[3 * Hd + j] + from_h[3 * Hd + j]);
        c_next[j] = forget * c[j] + input * candidate;
        h_next[j] = output * tanh(c_next[j]);
    }
}

/* Distinct, non-random weights: w_k = 0.1 * ((7k mod 11) - 5), so that a
 * swapped gate or a transposed weight changes the result. */
static void fill_pattern(Tensor *t, int offset) {
    for (int k = 0; k < t->numel; k++) t->data[k] = 0.1f * (float)(((7 * (k + offset)) % 11) - 5);
}

/* All weights and biases 0: r = z = 1/2 and n = 0, so h' = h/2 exactly. */
START_TEST(test_gru_cell_forward) {
    enum { B = 2, In = 3, Hd = 2 };
    ParamSet ps;
    params_init(&ps);
    GRUCell cell = gru_cell_declare(&ps, "gru", In, Hd);
    params_allocate(&ps);
    Graph g;
    graph_init(&g, TEST_ARENA_BYTES, TEST_TAPE);
    Tensor *x = tensor_of(&g, false, 2, B, In), *h = tensor_of(&g, false, 2, B, Hd);
    fill_pattern(x, 1);
    fill_pattern(h, 4);
    for (int p = 0; p < ps.count; p++) init_constant(&ps.tensors[p], 0.0f);
    Tensor *half = gru_cell_forward(&g, &cell, x, h);
    for (int i = 0; i < B * Hd; i++) ck_assert_float_eq(half->data[i], 0.5f * h->data[i]);
    fill_pattern(cell.input_gates.weight, 0);
    fill_pattern(cell.input_gates.bias, 2);
    fill_pattern(cell.hidden_gates.weight, 3);
    fill_pattern(cell.hidden_gates.bias, 5);
    Tensor *h_next = gru_cell_forward(&g, &cell, x, h);
    ck_assert(h_next->ndim == 2 && h_next->shape[0] == B && h_next->shape[1] == Hd);
    for (int b = 0; b < B; b++) {
        double expected[Hd];
        gru_by_loops(&cell, x->data + b * In, h->data + b * Hd, expected);
        expect_close("gru h'", h_next->data + b * Hd, expected, Hd, 1e-6);
    }
    graph_free(&g);
    params_free(&ps);
}
END_TEST

/* All weights 0: i = f = o = 1/2, g = 0, so c' = c/2, h' = tanh(c/2)/2. */
START_TEST(test_lstm_cell_forward) {
    enum { B = 2, In = 3, Hd = 2 };
    ParamSet ps;
    params_init(&ps);
    LSTMCell cell = lstm_cell_declare(&ps, "lstm", In, Hd);
    params_allocate(&ps);
    Graph g;
    graph_init(&g, TEST_ARENA_BYTES, TEST_TAPE);
    Tensor *x = tensor_of(&g, false, 2, B, In), *h = tensor_of(&g, false, 2, B, Hd);
    Tensor *c = tensor_of(&g, false, 2, B, Hd);
    fill_pattern(x, 1);
    fill_pattern(h, 4);
    fill_pattern(c, 6);
    for (int p = 0; p < ps.count; p++) init_constant(&ps.tensors[p], 0.0f);
    Tensor *h_next, *c_next;
    lstm_cell_forward(&g, &cell, x, h, c, &h_next, &c_next);
    for (int i = 0; i < B * Hd; i++) {
        ck_assert_float_eq_tol(c_next->data[i], 0.5f * c->data[i], 1e-7f);
        ck_assert_float_eq_tol(h_next->data[i], 0.5f * tanhf(0.5f * c->data[i]), 1e-6f);
    }
    fill_pattern(cell.input_gates.weight, 0);
    fill_pattern(cell.input_gates.bias, 2);
    fill_pattern(cell.hidden_gates.weight, 3);
    fill_pattern(cell.hidden_gates.bias, 5);
    lstm_cell_forward(&g, &cell, x, h, c, &h_next, &c_next);
    for (int b = 0; b < B; b++) {
        double expected_h[Hd], expected_c[Hd];
        lstm_by_loops(&cell, x->data + b * In, h->data + b * Hd, c->data + b * Hd, expected_h,
                      expected_c);
        expect_close("lstm c'", c_next->data + b * Hd, expected_c, Hd, 1e-6);
        expect_close("lstm h'", h_next->data + b * Hd, expected_h, Hd, 1e-6);
    }
    graph_free(&g);
    params_free(&ps);
}
END_TEST

/* ======================================================================== */
/* Layers: gradients against finite differences                             */
/* ======================================================================== */

static Tensor *forward_linear(Graph *g, Tensor *const *in, void *context) {
    return linear_forward(g, context, in[0]);
}
static Tensor *forward_layernorm_layer(Graph *g, Tensor *const *in, void *context) {
    return layernorm_forward(g, context, in[0]);
}
static Tensor *forward_gru(Graph *g, Tensor *const *in, void *context) {
    return gru_cell_forward(g, context, in[0], in[1]);
}
/* Both outputs, side by side, so the check covers h' and c'. */
static Tensor *forward_lstm(Graph *g, Tensor *const *in, void *context) {
    Tensor *h_next, *c_next;
    lstm_cell_forward(g, context, in[0], in[1], in[2], &h_next, &c_next);
    return op_concat(g, h_next, c_next);
}

/* Inputs first, then the layer's parameters (which live in `ps`). */
static void check_layer_gradients(const char *label, GradcheckForward forward, void *layer,
                                  Tensor **inputs, int input_count, ParamSet *ps) {
    Tensor *all[16] = {0};
    int count = 0;
    for (int i = 0; i < input_count; i++) all[count++] = inputs[i];
    for (int p = 0; p < ps->count && count < 16; p++) all[count++] = &ps->tensors[p];
    int bad = gradcheck_tensor(label, forward, layer, all, count, GRADCHECK_DEFAULT);
    for (int i = 0; i < input_count; i++) tensor_free(inputs[i]);
    ck_assert_msg(bad == 0, "%s: %d gradient elements disagree with finite differences", label,
                  bad);
}

START_TEST(test_linear_gradients) {
    Rng rng;
    rng_seed(&rng, 8, 0);
    for (int with_bias = 0; with_bias <= 1; with_bias++) {
        ParamSet ps;
        params_init(&ps);
        Linear fc = linear_declare(&ps, "fc", 5, 3, with_bias);
        params_allocate(&ps);
        linear_init(&fc, &rng);
        Tensor *x = gradcheck_random_of("x", 1.0f, &rng, 3, 2, 3, 5); /* (B,T,In) */
        check_layer_gradients("linear", forward_linear, &fc, &x, 1, &ps);
        params_free(&ps);
    }
}
END_TEST

START_TEST(test_layernorm_layer_gradients) {
    Rng rng;
    rng_seed(&rng, 9, 0);
    ParamSet ps;
    params_init(&ps);
    LayerNorm norm = layernorm_declare(&ps, "ln", 7);
    params_allocate(&ps);
    layernorm_init(&norm);
    fill_normal(norm.beta, 0.5f, &rng); /* beta 0 and gamma 1 would hide swaps */
    for (int c = 0; c < 7; c++) norm.gamma->data[c] += 0.3f * rng_normal(&rng);
    Tensor *x = gradcheck_random_of("x", 1.0f, &rng, 2, 3, 7);
    check_layer_gradients("layernorm layer", forward_layernorm_layer, &norm, &x, 1, &ps);
    params_free(&ps);
}
END_TEST

START_TEST(test_gru_cell_gradients) {
    enum { B = 3, In = 5, Hd = 4 };
    Rng rng;
    rng_seed(&rng, 10, 0);
    ParamSet ps;
    params_init(&ps);
    GRUCell cell = gru_cell_declare(&ps, "gru", In, Hd);
    params_allocate(&ps);
    gru_cell_init(&cell, &rng);
    Tensor *inputs[2] = {gradcheck_random_of("x", 1.0f, &rng, 2, B, In),
                         gradcheck_random_of("h", 1.0f, &rng, 2, B, Hd)};
    check_layer_gradients("gru_cell", forward_gru, &cell, inputs, 2, &ps);
    params_free(&ps);
}
END_TEST

START_TEST(test_lstm_cell_gradients) {
    enum { B = 3, In = 3, Hd = 5 };
    Rng rng;
    rng_seed(&rng, 11, 0);
    ParamSet ps;
    params_init(&ps);
    LSTMCell cell = lstm_cell_declare(&ps, "lstm", In, Hd);
    params_allocate(&ps);
    lstm_cell_init(&cell, &rng);
    Tensor *inputs[3] = {gradcheck_random_of("x", 1.0f, &rng, 2, B, In),
                         gradcheck_random_of("h", 1.0f, &rng, 2, B, Hd),
                         gradcheck_random_of("c", 1.0f, &rng, 2, B, Hd)};
    check_layer_gradients("lstm_cell", forward_lstm, &cell, inputs, 3, &ps);
    params_free(&ps);
}
END_TEST

/* ======================================================================== */
/* Optimizers, clipping, schedules                                          */
/* ======================================================================== */

/* Two tensors: w = [1, -2] (decayed) and b = [0.5] (not decayed). */
typedef struct {
    ParamSet ps;
    Tensor *w, *b;
} TinyModel;

static void tiny_model_init(TinyModel *model) {
    params_init(&model->ps);
    model->w = params_add_of(&model->ps, "w", true, 1, 2);
    model->b = params_add_of(&model->ps, "b", false, 1, 1);
    params_allocate(&model->ps);
    model->w->data[0] = 1.0f;
    model->w->data[1] = -2.0f;
    model->b->data[0] = 0.5f;
}

static void tiny_model_set_grads(TinyModel *model, float w0, float w1, float b0) {
    model->w->grad[0] = w0;
    model->w->grad[1] = w1;
    model->b->grad[0] = b0;
}

/* Runs two steps at lr 0.1 (default betas and momentum) with gradients
 * (w: [0.5, 0.25], b: [-1]) then (w: [-0.25, 0.25], b: [2]); returns the
 * final [w0, w1, b0] in `out`. */
static void two_steps(OptimizerKind kind, float weight_decay, float epsilon, float *out) {
    TinyModel model;
    tiny_model_init(&model);
    Optimizer opt;
    optimizer_init(&opt, kind, &model.ps);
    opt.weight_decay = weight_decay;
    opt.epsilon = epsilon;
    tiny_model_set_grads(&model, 0.5f, 0.25f, -1.0f);
    optimizer_step(&opt, &model.ps, 0.1f);
    tiny_model_set_grads(&model, -0.25f, 0.25f, 2.0f);
    optimizer_step(&opt, &model.ps, 0.1f);
    ck_assert_int_eq(opt.step, 2);
    memcpy(out, model.ps.values, 3 * sizeof(float));
    optimizer_free(&opt);
    params_free(&model.ps);
}

/* SGD, momentum 0.9 (defaults): v <- 0.9 v + g;  w <- w - 0.1 v.
 *   w0: v = 0.5,  w = 0.95;   v = 0.45 - 0.25 = 0.2,   w = 0.93
 *   w1: v = 0.25, w = -2.025; v = 0.225 + 0.25 = 0.475, w = -2.0725
 *   b:  v = -1,   w = 0.6;    v = -0.9 + 2 = 1.1,      w = 0.49
 * With weight_decay 0.1 the decayed w adds 0.1 w to its gradient:
 *   w0: g = 0.6, v = 0.6, w = 0.94;  g = -0.25 + 0.094 = -0.156,
 *       v = 0.54 - 0.156 = 0.384, w = 0.9016
 *   w1: g = 0.05, w = -2.005;  g = 0.25 - 0.2005 = 0.0495,
 *       v = 0.045 + 0.0495 = 0.0945, w = -2.01445;  b as without decay. */
START_TEST(test_sgd_momentum_two_steps) {
    float after[3];
    two_steps(OPTIMIZER_SGD, 0.0f, 1e-8f, after);
    expect_close("sgd", after, (const double[]){0.93, -2.0725, 0.49}, 3, 1e-6);
    two_steps(OPTIMIZER_SGD, 0.1f, 1e-8f, after);
    expect_close("sgd + L2", after, (const double[]){0.9016, -2.01445, 0.49}, 3, 1e-6);
}
END_TEST

/* Adam, betas (0.9, 0.999), eps 1e-8:
 *   m <- 0.9 m + 0.1 g;  v <- 0.999 v + 0.001 g^2
 *   w <- w - 0.1 * (m / (1 - 0.9^t)) / (sqrt(v / (1 - 0.999^t)) + eps)
 * Step 1 moves each weight by 0.1 against the sign of its gradient
 * (m_hat = g, v_hat = g^2).  Step 2, w0: m = 0.045 - 0.025 = 0.02,
 * m_hat = 0.02 / 0.19 = 0.105263; v = 0.00025 * 0.999 + 0.0000625 =
 * 0.00031225, v_hat = 0.00031225 / 0.001999 = 0.156203;
 * w0 = 0.9 - 0.1 * 0.105263 / 0.395225 = 0.873366.  (w1, b likewise.) */
START_TEST(test_adam_two_steps) {
    float after[3];
    two_steps(OPTIMIZER_ADAM, 0.0f, 1e-8f, after);
    expect_close("adam", after, (const double[]){0.8733662987, -2.199999992, 0.5633896465}, 3,
                 2e-6);
    /* A large epsilon shows where it goes: outside the square root.  Step 1,
     * w0: 1 - 0.1 * 0.5 / (0.5 + 0.1) = 0.916667. */
    two_steps(OPTIMIZER_ADAM, 0.0f, 0.1f, after);
    expect_close("adam eps 0.1", after, (const double[]){0.89541106, -2.14285714, 0.55647614}, 3,
                 2e-6);
    /* L2: the decayed w's gradient gets + 0.1 w, so it enters m and v. */
    two_steps(OPTIMIZER_ADAM, 0.1f, 1e-8f, after);
    expect_close("adam + L2", after, (const double[]){0.8544413675, -2.198812539, 0.5633896465},
                 3, 2e-6);
}
END_TEST

/* AdamW: w <- w - lr * wd * w before the Adam step, on decayed tensors only;
 * m and v see the raw gradient.  Step 1, w0: 1 - 0.01 - 0.1 = 0.89. */
START_TEST(test_adamw_decouples_decay) {
    float after[3];
    two_steps(OPTIMIZER_ADAMW, 0.1f, 1e-8f, after);
    expect_close("adamw", after, (const double[]){0.8544662987, -2.159199992, 0.5633896465}, 3,
                 2e-6);
}
END_TEST

/* The norm is over every tensor together: w = [3, 0], b = [4] has norm 5. */
START_TEST(test_clip_grad_norm) {
    TinyModel model;
    tiny_model_init(&model);
    tiny_model_set_grads(&model, 3.0f, 0.0f, 4.0f);
    ck_assert_float_eq_tol(params_clip_grad_norm(&model.ps, 0.0f), 5.0f, 1e-6f); /* no-op */
    expect_close("unclipped", model.ps.grads, (const double[]){3, 0, 4}, 3, 0);
    ck_assert_float_eq_tol(params_clip_grad_norm(&model.ps, 10.0f), 5.0f, 1e-6f); /* below */
    expect_close("below max", model.ps.grads, (const double[]){3, 0, 4}, 3, 0);
    ck_assert_float_eq_tol(params_clip_grad_norm(&model.ps, 1.0f), 5.0f, 1e-6f);
    expect_close("clipped", model.ps.grads, (const double[]){0.6, 0, 0.8}, 3, 1e-7);
    ck_assert_float_eq_tol(params_clip_grad_norm(&model.ps, 1.0f), 1.0f, 1e-6f);
    params_free(&model.ps);
}
END_TEST

/* nn.c documents: warmup lr = base (step+1) / warmup for step < warmup;
 * then cosine from base (at step = warmup) to min (at step total-1),
 * p = (step - warmup) / (total - 1 - warmup), lr = min + (base-min)(1+cos pi p)/2,
 * and min after the end. */
START_TEST(test_schedules) {
    Schedule constant = {.kind = SCHEDULE_CONSTANT, .base_lr = 0.3f, .warmup_steps = 5,
                         .total_steps = 10};
    ck_assert_float_eq(schedule_lr(&constant, 0), 0.3f);
    ck_assert_float_eq(schedule_lr(&constant, 1000), 0.3f);
    Schedule cosine = {.kind = SCHEDULE_WARMUP_COSINE, .base_lr = 1.0f, .min_lr = 0.1f,
                       .warmup_steps = 4, .total_steps = 14};
    const long steps[] = {0, 1, 3, 4, 5, 9, 13, 20};
    /* step 5: p = 1/9; step 9: p = 5/9. */
    const double expected[] = {0.25, 0.5, 1.0, 1.0, 0.9728616793536587, 0.4718583200498814,
                               0.1, 0.1};
    float previous = INFINITY;
    for (int i = 0; i < 8; i++) {
        float lr = schedule_lr(&cosine, steps[i]);
        ck_assert_msg(fabs(lr - expected[i]) < 1e-6, "step %ld: lr %.9g, expected %.9g", steps[i],
                      lr, expected[i]);
        if (steps[i] >= 4) ck_assert_float_le(lr, previous); /* decays monotonically */
        previous = lr;
    }
    Schedule no_warmup = cosine;
    no_warmup.warmup_steps = 0;
    ck_assert_float_eq_tol(schedule_lr(&no_warmup, 0), 1.0f, 1e-7f);
    ck_assert_float_eq_tol(schedule_lr(&no_warmup, 13), 0.1f, 1e-7f);
}
END_TEST

/* ======================================================================== */
/* Whole training steps                                                     */
/* ======================================================================== */

/* A 2-layer MLP: x (B,In) -> Linear -> tanh -> Linear -> (B,Out). */
typedef struct {
    ParamSet ps;
    Linear hidden, output;
} Mlp;

static void mlp_init(Mlp *mlp, int in, int width, int out, uint64_t seed) {
    params_init(&mlp->ps);
    mlp->hidden = linear_declare(&mlp->ps, "hidden", in, width, true);
    mlp->output = linear_declare(&mlp->ps, "output", width, out, true);
    params_allocate(&mlp->ps);
    Rng rng;
    rng_seed(&rng, seed, 0);
    linear_init(&mlp->hidden, &rng);
    linear_init(&mlp->output, &rng);
}

/* One step: forward, mse loss against target, backward.  Returns the loss. */
static float mlp_step(Graph *g, Mlp *mlp, const Tensor *x, const Tensor *target) {
    graph_reset(g);
    params_zero_grad(&mlp->ps);
    Tensor *input = tensor_new(g, x->ndim, x->shape, false);
    memcpy(input->data, x->data, (size_t)x->numel * sizeof(float));
    Tensor *h = op_tanh(g, linear_forward(g, &mlp->hidden, input));
    Tensor *loss = op_mse(g, linear_forward(g, &mlp->output, h), target);
    graph_backward(g, loss);
    return loss->data[0];
}

/* The arena grows during the first step (it starts tiny), then every later
 * step fits in the same block: no growth, no new malloc. */
START_TEST(test_training_loop_reuses_the_arena) {
    enum { B = 8, In = 4, Width = 16, Out = 3, STEPS = 100 };
    Mlp mlp;
    mlp_init(&mlp, In, Width, Out, 1);
    Rng rng;
    rng_seed(&rng, 2, 0);
    Tensor *x = tensor_alloc("x", 2, (const int[]){B, In}, false);
    Tensor *target = tensor_alloc("target", 2, (const int[]){B, Out}, false);
    fill_normal(x, 1.0f, &rng);
    fill_normal(target, 0.5f, &rng);
    Optimizer opt;
    optimizer_init(&opt, OPTIMIZER_ADAM, &mlp.ps);
    Graph g;
    graph_init(&g, 256, 4);
    float first_loss = mlp_step(&g, &mlp, x, target), loss = first_loss;
    size_t first_peak = g.arena.peak;
    int tape_length = g.tape_length;
    optimizer_step(&opt, &mlp.ps, 0.01f);
    for (int step = 1; step < STEPS; step++) {
        loss = mlp_step(&g, &mlp, x, target);
        ck_assert_ptr_null(g.arena.overflow);
        ck_assert_uint_eq(g.arena.peak, first_peak);
        ck_assert_int_eq(g.tape_length, tape_length);
        optimizer_step(&opt, &mlp.ps, 0.01f);
    }
    ck_assert_uint_ge(g.arena.capacity, first_peak);
    ck_assert_msg(loss < 0.5f * first_loss, "loss %g did not fall from %g", loss, first_loss);
    graph_free(&g);
    optimizer_free(&opt);
    tensor_free(x);
    tensor_free(target);
    params_free(&mlp.ps);
}
END_TEST

/* Two Adam steps of a (64,256) -> 256 -> 256 MLP, each matmul above the
 * parallel threshold.  Returns the losses, final gradients and parameters
 * (malloc'd copies). */
typedef struct {
    float losses[2];
    float *grads, *values;
    size_t total;
} RunResult;

static RunResult train_two_steps(int threads) {
    enum { B = 64, In = 256, Width = 256, Out = 256 };
    threads_set(threads);
#ifdef _OPENMP
    ck_assert_int_eq(threads_get(), threads); /* else the test compares nothing */
#endif
    Mlp mlp;
    mlp_init(&mlp, In, Width, Out, 3);
    Rng rng;
    rng_seed(&rng, 4, 0);
    Tensor *x = tensor_alloc("x", 2, (const int[]){B, In}, false);
    Tensor *target = tensor_alloc("target", 2, (const int[]){B, Out}, false);
    fill_normal(x, 1.0f, &rng);
    fill_normal(target, 1.0f, &rng);
    Optimizer opt;
    optimizer_init(&opt, OPTIMIZER_ADAM, &mlp.ps);
    Graph g;
    graph_init(&g, 4 << 20, 64);
    RunResult result = {.total = mlp.ps.total};
    for (int step = 0; step < 2; step++) {
        result.losses[step] = mlp_step(&g, &mlp, x, target);
        if (step == 0) optimizer_step(&opt, &mlp.ps, 1e-3f);
    }
    result.grads = malloc(result.total * sizeof(float));
    result.values = malloc(result.total * sizeof(float));
    memcpy(result.grads, mlp.ps.grads, result.total * sizeof(float));
    memcpy(result.values, mlp.ps.values, result.total * sizeof(float));
    graph_free(&g);
    optimizer_free(&opt);
    tensor_free(x);
    tensor_free(target);
    params_free(&mlp.ps);
    return result;
}

/* matmul.h promises each output element is summed in the same order
 * whatever the thread count, so training is reproducible bit for bit. */
START_TEST(test_threads_give_identical_results) {
    int threads_before = threads_get();
    RunResult one = train_two_steps(1), two = train_two_steps(2);
    threads_set(threads_before);
    ck_assert_msg(memcmp(one.losses, two.losses, sizeof one.losses) == 0,
                  "losses differ: %.9g %.9g vs %.9g %.9g", one.losses[0], one.losses[1],
                  two.losses[0], two.losses[1]);
    ck_assert_msg(memcmp(one.grads, two.grads, one.total * sizeof(float)) == 0,
                  "gradients differ between 1 and 2 threads");
    ck_assert_msg(memcmp(one.values, two.values, one.total * sizeof(float)) == 0,
                  "parameters differ between 1 and 2 threads");
    ck_assert(one.losses[1] < one.losses[0]); /* the step did something */
    free(one.grads);
    free(one.values);
    free(two.grads);
    free(two.values);
}
END_TEST

/* ======================================================================== */
/* Suite                                                                    */
/* ======================================================================== */

Suite *nn_suite(void) {
    Suite *suite = suite_create("nn");
    TCase *params = tcase_create("params_and_init");
    tcase_add_test(params, test_params_one_block_in_order);
    tcase_add_test(params, test_layer_declarations);
    tcase_add_test(params, test_initializers);
    suite_add_tcase(suite, params);

    TCase *layers = tcase_create("layers");
    tcase_set_timeout(layers, 60); /* sanitizer builds are ~10x slower */
    tcase_add_test(layers, test_linear_forward);
    tcase_add_test(layers, test_embedding_forward_and_scatter);
    tcase_add_test(layers, test_layernorm_layer_forward);
    tcase_add_test(layers, test_gru_cell_forward);
    tcase_add_test(layers, test_lstm_cell_forward);
    tcase_add_test(layers, test_linear_gradients);
    tcase_add_test(layers, test_layernorm_layer_gradients);
    tcase_add_test(layers, test_gru_cell_gradients);
    tcase_add_test(layers, test_lstm_cell_gradients);
    suite_add_tcase(suite, layers);

    TCase *optim = tcase_create("optimizers");
    tcase_add_test(optim, test_sgd_momentum_two_steps);
    tcase_add_test(optim, test_adam_two_steps);
    tcase_add_test(optim, test_adamw_decouples_decay);
    tcase_add_test(optim, test_clip_grad_norm);
    tcase_add_test(optim, test_schedules);
    suite_add_tcase(suite, optim);

    TCase *training = tcase_create("training");
    tcase_set_timeout(training, 60);
    tcase_add_test(training, test_training_loop_reuses_the_arena);
    tcase_add_test(training, test_threads_give_identical_results);
    suite_add_tcase(suite, training);
    return suite;
}
