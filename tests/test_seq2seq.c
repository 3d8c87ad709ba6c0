/* tests/test_seq2seq.c: the encoder-decoder of seq2seq/.
 *
 *   - the fused ops (GRU/LSTM step, additive score, state moves) against
 *     common/nn.c's op-by-op cells and against finite differences; the
 *     whole-sequence layer against the step ops and finite differences;
 *   - finite-difference gradients through time of whole tiny models: GRU
 *     and LSTM, each without attention, with Bahdanau's and with Luong's,
 *     run as whole-sequence layers and step by step (which must agree);
 *   - padding changes neither the loss nor the outputs of the real tokens;
 *   - beam search of width 1 is greedy decoding; a tiny set can be overfit;
 *   - checkpoints round trip; resuming is bit for bit; threads 1 and 2 agree;
 *   - the TSV reader's bad input (through bin/seq2seq); BLEU by hand; tasks;
 *   - export writes the very examples train uses; --val-data reads them back.
 *
 * Legend: B batch, S source steps, T decoder steps, H hidden, A attention,
 * P state parts, V vocabulary.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gradcheck.h"
#include "../seq2seq/seq2seq.h"
#include "program_runs.h"
#include "test_suites.h"

/* ---- Helpers ------------------------------------------------------------------ */

enum { TINY_E = 3, TINY_H = 4, TINY_VS = 7, TINY_VT = 8 };

static void tiny_model(Seq2seqModel *m, int cell, int attention, int layers, int hidden,
                       uint64_t seed) {
    Seq2seqConfig c = {cell, attention, layers, TINY_E, hidden, TINY_VS, TINY_VT};
    Rng rng;
    rng_seed(&rng, seed, 1);
    seq2seq_model_build(m, &c, &rng);
}

/* Pairs with random ids in [SEQ2SEQ_SPECIALS, V), the given lengths. */
static Seq2seqDataset random_pairs(const int *source_lengths, const int *target_lengths, int count,
                                   uint64_t seed) {
    Seq2seqDataset d = {0};
    Rng rng;
    rng_seed(&rng, seed, 2);
    int source[64], target[64];
    for (int i = 0; i < count; i++) {
        for (int t = 0; t < source_lengths[i]; t++) source[t] = SEQ2SEQ_SPECIALS + (int)rng_below(&rng, TINY_VS - SEQ2SEQ_SPECIALS);
        for (int t = 0; t < target_lengths[i]; t++) target[t] = SEQ2SEQ_SPECIALS + (int)rng_below(&rng, TINY_VT - SEQ2SEQ_SPECIALS);
        seq2seq_dataset_add(&d, source, source_lengths[i], target, target_lengths[i]);
    }
    return d;
}


static const char *const CELL_NAMES[] = {"gru", "lstm"};
static const char *const ATTENTION_NAMES[] = {"none", "bahdanau", "luong"};

/* ======================================================================== */
/* The vectorizable exp and tanh                                            */
/* ======================================================================== */

START_TEST(test_exp_and_tanh_approximations) {
    double worst_sigmoid = 0, worst_tanh = 0;
    for (int i = -30000; i <= 30000; i++) {
        float x = (float)i * 1e-3f; /* -30 .. 30 */
        double sigmoid = 1.0 / (1.0 + exp(-(double)x));
        worst_sigmoid = fmax(worst_sigmoid, fabs((double)seq2seq_sigmoid(x) - sigmoid) / sigmoid);
        worst_tanh = fmax(worst_tanh, fabs((double)seq2seq_tanh(x) - tanh((double)x)));
    }
    ck_assert_msg(worst_sigmoid < 4e-7, "sigmoid: worst relative error %g", worst_sigmoid);
    ck_assert_msg(worst_tanh < 3e-7, "tanh: worst absolute error %g", worst_tanh);
    ck_assert(isnan(seq2seq_sigmoid(NAN)) && isnan(seq2seq_tanh(NAN)));
    ck_assert(seq2seq_sigmoid(-200.0f) >= 0.0f && seq2seq_sigmoid(-200.0f) < 1e-37f);
    ck_assert(seq2seq_sigmoid(200.0f) == 1.0f);
    ck_assert(seq2seq_tanh(50.0f) == 1.0f && seq2seq_tanh(-50.0f) == -1.0f);
}
END_TEST

/* ======================================================================== */
/* Fused ops against common/nn.c's cells                                    */
/* ======================================================================== */

START_TEST(test_gru_step_matches_gru_cell) {
    enum { B = 3, IN = 5, H = 6 };
    ParamSet ps;
    params_init(&ps);
    GRUCell cell = gru_cell_declare(&ps, "cell", IN, H);
    params_allocate(&ps);
    Rng rng;
    rng_seed(&rng, 3, 3);
    gru_cell_init(&cell, &rng);
    Graph g;
    graph_init(&g, 1 << 20, 256);
    Tensor *x = tensor_of(&g, false, 2, B, IN), *h = tensor_of(&g, false, 3, 1, B, H);
    for (int i = 0; i < x->numel; i++) x->data[i] = rng_normal(&rng);
    for (int i = 0; i < h->numel; i++) h->data[i] = rng_normal(&rng);
    Tensor *expected = gru_cell_forward(&g, &cell, x, tensor_reshape(&g, h, 2, (int[]){B, H}));
    Tensor *gx = linear_forward(&g, &cell.input_gates, x), *gh = linear_forward(&g, &cell.hidden_gates, h);
    int active[B] = {1, 0, 1};
    Tensor *got = seq2seq_gru_step(&g, gx, gh, h, active);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < H; j++) {
            float want = active[b] ? expected->data[b * H + j] : h->data[b * H + j];
            ck_assert_msg(fabsf(got->data[b * H + j] - want) < 1e-6f, "row %d col %d: %g vs %g", b, j,
                          (double)got->data[b * H + j], (double)want);
        }
    graph_free(&g);
    params_free(&ps);
}
END_TEST

START_TEST(test_lstm_step_matches_lstm_cell) {
    enum { B = 3, IN = 5, H = 6 };
    ParamSet ps;
    params_init(&ps);
    LSTMCell cell = lstm_cell_declare(&ps, "cell", IN, H);
    params_allocate(&ps);
    Rng rng;
    rng_seed(&rng, 4, 4);
    lstm_cell_init(&cell, &rng);
    Graph g;
    graph_init(&g, 1 << 20, 256);
    Tensor *x = tensor_of(&g, false, 2, B, IN), *state = tensor_of(&g, false, 3, 2, B, H);
    for (int i = 0; i < x->numel; i++) x->data[i] = rng_normal(&rng);
    for (int i = 0; i < state->numel; i++) state->data[i] = rng_normal(&rng);
    Tensor *h = tensor_reshape(&g, tensor_rows(&g, state, 0, 1), 2, (int[]){B, H});
    Tensor *c = tensor_reshape(&g, tensor_rows(&g, state, 1, 1), 2, (int[]){B, H});
    Tensor *h_want, *c_want;
    lstm_cell_forward(&g, &cell, x, h, c, &h_want, &c_want);
    Tensor *gx = linear_forward(&g, &cell.input_gates, x), *gh = linear_forward(&g, &cell.hidden_gates, h);
    Tensor *got = seq2seq_lstm_step(&g, gx, gh, state, NULL);
    for (int i = 0; i < B * H; i++) {
        ck_assert_msg(fabsf(got->data[i] - h_want->data[i]) < 1e-6f, "h %d", i);
        ck_assert_msg(fabsf(got->data[B * H + i] - c_want->data[i]) < 1e-6f, "c %d", i);
    }
    graph_free(&g);
    params_free(&ps);
}
END_TEST

/* ---- Fused ops against finite differences ------------------------------------- */

static const int MIXED_ACTIVE[3] = {1, 0, 1}; /* row 1 is padding */

static Tensor *gru_step_forward(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return seq2seq_gru_step(g, in[0], in[1], in[2], MIXED_ACTIVE);
}

static Tensor *lstm_step_forward(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return seq2seq_lstm_step(g, in[0], in[1], in[2], MIXED_ACTIVE);
}

static Tensor *additive_forward(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return seq2seq_additive_scores(g, in[0], in[1], in[2]);
}

static Tensor *dot_scores_forward(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    return seq2seq_dot_scores(g, in[0], in[1]);
}

/* Softmax first, with a padded position: the weights the op really gets. */
static Tensor *context_forward(Graph *g, Tensor *const *in, void *context) {
    (void)context;
    Tensor *mask = tensor_of(g, false, 2, 3, 5);
    for (int i = 0; i < mask->numel; i++) mask->data[i] = i != 7; /* row 1, position 2 masked */
    return seq2seq_context(g, op_softmax(g, in[0], mask), in[1]);
}

static Tensor *hidden_states_forward(Graph *g, Tensor *const *in, void *context) {
    bool batch_major = *(const bool *)context;
    /* a product, so that the gradient reaching the copy is not constant */
    Tensor *h = seq2seq_hidden_states(g, in[0], batch_major);
    return op_mul(g, h, h);
}

START_TEST(test_fused_op_gradients) {
    enum { B = 3, H = 4, S = 5, A = 4 };
    Rng rng;
    rng_seed(&rng, 5, 5);
    Tensor *gru[3] = {gradcheck_random_of("gx", 1.0f, &rng, 2, B, 3 * H),
                      gradcheck_random_of("gh", 1.0f, &rng, 2, B, 3 * H),
                      gradcheck_random_of("h", 1.0f, &rng, 3, 1, B, H)};
    ck_assert_int_eq(gradcheck_tensor("gru_step", gru_step_forward, NULL, gru, 3, GRADCHECK_DEFAULT), 0);
    Tensor *lstm[3] = {gradcheck_random_of("gx", 1.0f, &rng, 2, B, 4 * H),
                       gradcheck_random_of("gh", 1.0f, &rng, 2, B, 4 * H),
                       gradcheck_random_of("state", 1.0f, &rng, 3, 2, B, H)};
    ck_assert_int_eq(gradcheck_tensor("lstm_step", lstm_step_forward, NULL, lstm, 3, GRADCHECK_DEFAULT), 0);
    Tensor *additive[3] = {gradcheck_random_of("keys", 1.0f, &rng, 3, B, S, A),
                           gradcheck_random_of("query", 1.0f, &rng, 2, B, A),
                           gradcheck_random_of("v", 1.0f, &rng, 1, A)};
    ck_assert_int_eq(gradcheck_tensor("additive_scores", additive_forward, NULL, additive, 3, GRADCHECK_DEFAULT), 0);
    Tensor *dot[2] = {gradcheck_random_of("keys", 1.0f, &rng, 3, B, S, H),
                      gradcheck_random_of("query", 1.0f, &rng, 2, B, H)};
    ck_assert_int_eq(gradcheck_tensor("dot_scores", dot_scores_forward, NULL, dot, 2, GRADCHECK_DEFAULT), 0);
    Tensor *ctx[2] = {gradcheck_random_of("scores", 1.0f, &rng, 2, B, S),
                      gradcheck_random_of("memory", 1.0f, &rng, 3, B, S, H)};
    ck_assert_int_eq(gradcheck_tensor("context", context_forward, NULL, ctx, 2, GRADCHECK_DEFAULT), 0);
    for (int i = 0; i < 2; i++) tensor_free(dot[i]), tensor_free(ctx[i]);
    Tensor *states[1] = {gradcheck_random_of("states", 1.0f, &rng, 4, S, 2, B, H)};
    for (int major = 0; major < 2; major++) {
        bool batch_major = major;
        ck_assert_int_eq(gradcheck_tensor("hidden_states", hidden_states_forward, &batch_major,
                                          states, 1, GRADCHECK_DEFAULT), 0);
    }
    for (int i = 0; i < 3; i++) tensor_free(gru[i]), tensor_free(lstm[i]), tensor_free(additive[i]);
    tensor_free(states[0]);
}
END_TEST

/* ---- The whole-sequence layer against the steps it stands for -------------------- */

enum { LAYER_S = 4, LAYER_B = 6, LAYER_H = 5, LAYER_IN = 3, LAYER_INPUTS = 6 };
/* Row b is real for its first LAYER_LENGTHS[b] steps, then padding. */
static const int LAYER_LENGTHS[LAYER_B] = {4, 1, 2, 4, 3, 1};

static void layer_active(int *active) { /* (S, B) */
    for (int t = 0; t < LAYER_S; t++)
        for (int b = 0; b < LAYER_B; b++) active[t * LAYER_B + b] = t < LAYER_LENGTHS[b];
}

/* inputs: x (S*B, In), state0 (P, B, H), W_ih (G*H, In), b_ih (G*H),
 * W_hh (G*H, H), b_hh (G*H); context: the cell.  -> (S, P, B, H) */
static Tensor *layer_forward(Graph *g, Tensor *const *in, void *context) {
    int active[LAYER_S * LAYER_B];
    layer_active(active);
    Seq2seqRecurrentLayer weights = {{in[2], in[3]}, {in[4], in[5]}};
    return seq2seq_recurrent_layer(g, *(const int *)context, &weights, in[0], in[1], active);
}

/* The same recurrence as S step ops, gx_t and gh_t by op_linear, the
 * states stacked by copy_into: how the decoder runs step by step. */
static Tensor *steps_forward(Graph *g, Tensor *const *in, void *context) {
    int cell = *(const int *)context, P = cell == SEQ2SEQ_LSTM ? 2 : 1;
    int active[LAYER_S * LAYER_B];
    layer_active(active);
    Tensor *states = tensor_empty(g, 4, (const int[]){LAYER_S, P, LAYER_B, LAYER_H}, true, "steps");
    Tensor *state = in[1]; /* (P, B, H) */
    for (int t = 0; t < LAYER_S; t++) {
        Tensor *gx = op_linear(g, tensor_rows(g, in[0], t * LAYER_B, LAYER_B), in[2], in[3]); /* (B, G*H) */
        Tensor *gh = op_linear(g, tensor_rows(g, state, 0, 1), in[4], in[5]); /* (1, B, G*H) */
        const int *active_t = active + t * LAYER_B;
        state = cell == SEQ2SEQ_LSTM ? seq2seq_lstm_step(g, gx, gh, state, active_t)
                                     : seq2seq_gru_step(g, gx, gh, state, active_t);
        seq2seq_copy_into(g, state, tensor_rows(g, states, t, 1));
    }
    return states;
}

static void layer_inputs(int cell, Tensor **in, Rng *rng) {
    int P = cell == SEQ2SEQ_LSTM ? 2 : 1, GH = (cell == SEQ2SEQ_LSTM ? 4 : 3) * LAYER_H;
    in[0] = gradcheck_random_of("x", 1.0f, rng, 2, LAYER_S * LAYER_B, LAYER_IN);
    in[1] = gradcheck_random_of("state0", 1.0f, rng, 3, P, LAYER_B, LAYER_H);
    in[2] = gradcheck_random_of("weight_ih", 0.5f, rng, 2, GH, LAYER_IN);
    in[3] = gradcheck_random_of("bias_ih", 0.5f, rng, 1, GH);
    in[4] = gradcheck_random_of("weight_hh", 0.5f, rng, 2, GH, LAYER_H);
    in[5] = gradcheck_random_of("bias_hh", 0.5f, rng, 1, GH);
}

/* forward, then backward of sum(out * weights); values (S*P*B*H) and the
 * gradients of the inputs, one after the other, into results. */
static void layer_run(GradcheckForward forward, int cell, Tensor **in, const float *weights,
                      float *results) {
    Graph g;
    graph_init(&g, 1 << 20, 256);
    for (int k = 0; k < LAYER_INPUTS; k++) memset(in[k]->grad, 0, (size_t)in[k]->numel * sizeof(float));
    Tensor *out = forward(&g, in, &cell);
    Tensor *w = tensor_new(&g, out->ndim, out->shape, false);
    memcpy(w->data, weights, (size_t)out->numel * sizeof(float));
    graph_backward(&g, op_sum(&g, op_mul(&g, out, w)));
    memcpy(results, out->data, (size_t)out->numel * sizeof(float));
    results += out->numel;
    for (int k = 0; k < LAYER_INPUTS; k++) {
        memcpy(results, in[k]->grad, (size_t)in[k]->numel * sizeof(float));
        results += in[k]->numel;
    }
    graph_free(&g);
}

/* seq2seq_recurrent_layer computes what S step ops compute, values and
 * gradients (padding included), and its backward agrees with finite
 * differences; x here already holds a gradient, so backward adds to it
 * (inside the model it is written: the model gradient checks cover that). */
START_TEST(test_recurrent_layer_matches_steps) {
    int cell = _i;
    Rng rng;
    rng_seed(&rng, 40 + (uint64_t)cell, 0);
    Tensor *in[LAYER_INPUTS];
    layer_inputs(cell, in, &rng);
    int P = cell == SEQ2SEQ_LSTM ? 2 : 1, count = LAYER_S * P * LAYER_B * LAYER_H;
    for (int k = 0; k < LAYER_INPUTS; k++) count += in[k]->numel;
    float *weights = malloc((size_t)LAYER_S * P * LAYER_B * LAYER_H * sizeof(float));
    for (int i = 0; i < LAYER_S * P * LAYER_B * LAYER_H; i++) weights[i] = rng_normal(&rng);
    float *layer = malloc((size_t)count * sizeof(float)), *steps = malloc((size_t)count * sizeof(float));
    layer_run(layer_forward, cell, in, weights, layer);
    layer_run(steps_forward, cell, in, weights, steps);
    for (int i = 0; i < count; i++)
        ck_assert_msg(fabsf(layer[i] - steps[i]) <= 1e-5f * (1.0f + fabsf(steps[i])),
                      "%s: value %d of %d: layer %g, steps %g", CELL_NAMES[cell], i, count,
                      (double)layer[i], (double)steps[i]);
    ck_assert_int_eq(gradcheck_tensor(CELL_NAMES[cell], layer_forward, &cell, in, LAYER_INPUTS,
                                      GRADCHECK_DEFAULT), 0);
    for (int k = 0; k < LAYER_INPUTS; k++) tensor_free(in[k]);
    free(weights), free(layer), free(steps);
}
END_TEST

/* ======================================================================== */
/* Gradients through time of whole models                                   */
/* ======================================================================== */

typedef struct {
    const Seq2seqModel *model;
    const Seq2seqBatch *batch;
    /* 1: the decoder runs as whole-sequence layers (but with Bahdanau's
     * attention); below 1 step by step, with one coin per step */
    float teacher_forcing;
} ModelContext;

static Tensor *model_loss(Graph *g, Tensor *const *inputs, void *context) {
    (void)inputs; /* the parameters, read through the model */
    const ModelContext *c = context;
    Rng coins; /* the same coins at every call: the same function */
    rng_seed(&coins, 99, 0);
    return seq2seq_forward(g, c->model, c->batch, c->teacher_forcing, &coins).loss;
}

/* Every parameter of a tiny model, on a padded batch of three pairs. */
static void check_model_gradients_forced(int cell, int attention, int layers, float teacher_forcing) {
    Seq2seqModel m;
    tiny_model(&m, cell, attention, layers, TINY_H, 11 + (uint64_t)(cell * 3 + attention));
    const int source_lengths[3] = {4, 1, 2}, target_lengths[3] = {2, 0, 3};
    Seq2seqDataset d = random_pairs(source_lengths, target_lengths, 3, 12);
    Seq2seqBatch batch;
    seq2seq_batch_init(&batch, 3, 4, 3);
    seq2seq_batch_fill(&batch, d.pairs, NULL, 3);
    Tensor *inputs[PARAMS_MAX_TENSORS];
    for (int i = 0; i < m.params.count; i++) inputs[i] = &m.params.tensors[i];
    ModelContext context = {&m, &batch, teacher_forcing};
    char label[64];
    snprintf(label, sizeof label, "%s/%s/%d layers/forcing %g", CELL_NAMES[cell],
             ATTENTION_NAMES[attention], layers, (double)teacher_forcing);
    ck_assert_int_eq(gradcheck_tensor(label, model_loss, &context, inputs, m.params.count, GRADCHECK_DEFAULT), 0);
    seq2seq_batch_free(&batch);
    seq2seq_dataset_free(&d);
    seq2seq_model_free(&m);
}

static void check_model_gradients(int cell, int attention, int layers) {
    check_model_gradients_forced(cell, attention, layers, 1.0f);
}

START_TEST(test_model_gradients_gru) {
    check_model_gradients(SEQ2SEQ_GRU, _i, 1);
}
END_TEST

START_TEST(test_model_gradients_lstm) {
    check_model_gradients(SEQ2SEQ_LSTM, _i, 1);
}
END_TEST

START_TEST(test_model_gradients_two_layers) {
    check_model_gradients(_i == 0 ? SEQ2SEQ_GRU : SEQ2SEQ_LSTM, _i == 0 ? SEQ2SEQ_LUONG : SEQ2SEQ_BAHDANAU, 2);
}
END_TEST

/* Below full teacher forcing the decoder runs step by step (seq2seq_forward's
 * other path).  With forcing 0.9999 these coins all come up "forced" (a
 * prediction fed back would make the loss jump under finite differences),
 * so this is the step path computing what the whole-sequence path does:
 * the gradient check runs through its step ops, and both paths must give
 * the same loss and gradients.  Two layers, without attention and with
 * Luong's, GRU and LSTM. */
START_TEST(test_model_gradients_step_by_step) {
    int cell = _i % 2 ? SEQ2SEQ_LSTM : SEQ2SEQ_GRU;
    int attention = _i / 2 ? SEQ2SEQ_LUONG : SEQ2SEQ_NO_ATTENTION;
    check_model_gradients_forced(cell, attention, 2, 0.9999f);
    Seq2seqModel m;
    tiny_model(&m, cell, attention, 2, TINY_H, 30 + (uint64_t)_i);
    const int source_lengths[3] = {4, 1, 2}, target_lengths[3] = {2, 0, 3};
    Seq2seqDataset d = random_pairs(source_lengths, target_lengths, 3, 13);
    Seq2seqBatch batch;
    seq2seq_batch_init(&batch, 3, 4, 3);
    seq2seq_batch_fill(&batch, d.pairs, NULL, 3);
    float loss[2], *grads[2];
    for (int path = 0; path < 2; path++) {
        ModelContext context = {&m, &batch, path == 0 ? 1.0f : 0.9999f};
        Graph g;
        graph_init(&g, 1 << 20, 1024);
        params_zero_grad(&m.params);
        Tensor *l = model_loss(&g, NULL, &context);
        graph_backward(&g, l);
        loss[path] = l->data[0];
        grads[path] = malloc(m.params.total * sizeof(float));
        memcpy(grads[path], m.params.grads, m.params.total * sizeof(float));
        graph_free(&g);
    }
    ck_assert_msg(fabsf(loss[0] - loss[1]) <= 1e-6f * loss[0], "loss %g vs %g", (double)loss[0], (double)loss[1]);
    for (size_t i = 0; i < m.params.total; i++)
        ck_assert_msg(fabsf(grads[0][i] - grads[1][i]) <= 1e-5f * (1e-3f + fabsf(grads[0][i])),
                      "gradient %zu: whole-sequence %g, step by step %g", i, (double)grads[0][i],
                      (double)grads[1][i]);
    free(grads[0]), free(grads[1]);
    seq2seq_batch_free(&batch);
    seq2seq_dataset_free(&d);
    seq2seq_model_free(&m);
}
END_TEST

/* ======================================================================== */
/* Padding                                                                  */
/* ======================================================================== */

/* Loss and logits of the given pairs (copied out of the graph). */
static float forward_pairs(const Seq2seqModel *m, const Seq2seqPair *pairs, int count,
                           float *logits, int *T) {
    Seq2seqBatch batch;
    seq2seq_batch_init(&batch, count, 16, 16);
    seq2seq_batch_fill(&batch, pairs, NULL, count);
    Graph g;
    graph_init(&g, 1 << 20, 256);
    Seq2seqOutput out = seq2seq_forward(&g, m, &batch, 1.0f, NULL);
    memcpy(logits, out.logits->data, (size_t)out.logits->numel * sizeof(float));
    float loss = out.loss->data[0];
    *T = batch.T;
    graph_free(&g);
    seq2seq_batch_free(&batch);
    return loss;
}

/* Pair A alone, and A padded next to a longer pair C: A's logits at its real
 * positions and the token-weighted losses agree. */
START_TEST(test_padding_changes_nothing) {
    int cell = _i / 3, attention = _i % 3;
    Seq2seqModel m;
    tiny_model(&m, cell, attention, 2, 5, 21);
    const int source_lengths[2] = {3, 7}, target_lengths[2] = {2, 6};
    Seq2seqDataset d = random_pairs(source_lengths, target_lengths, 2, 22);
    float alone[64 * TINY_VT], padded[128 * TINY_VT], other[64 * TINY_VT];
    int T_alone, T_padded, T_other;
    float loss_alone = forward_pairs(&m, d.pairs, 1, alone, &T_alone);
    float loss_padded = forward_pairs(&m, d.pairs, 2, padded, &T_padded);
    float loss_other = forward_pairs(&m, d.pairs + 1, 1, other, &T_other);
    ck_assert_int_eq(T_alone, 3);
    ck_assert_int_eq(T_padded, 7);
    for (int t = 0; t < T_alone; t++) /* row t*B + 0 holds A's step t */
        for (int v = 0; v < TINY_VT; v++)
            ck_assert_msg(fabsf(alone[t * TINY_VT + v] - padded[(t * 2) * TINY_VT + v]) < 1e-5f,
                          "%s/%s: step %d token %d: %g alone, %g padded", CELL_NAMES[cell],
                          ATTENTION_NAMES[attention], t, v, (double)alone[t * TINY_VT + v],
                          (double)padded[(t * 2) * TINY_VT + v]);
    /* The mean over all 3 + 7 real target tokens (with <eos>). */
    double expected = ((double)loss_alone * 3 + (double)loss_other * 7) / 10;
    ck_assert_msg(fabs(loss_padded - expected) < 1e-5 * fabs(expected), "loss %g, expected %g",
                  (double)loss_padded, expected);
    seq2seq_dataset_free(&d);
    seq2seq_model_free(&m);
}
END_TEST

/* ======================================================================== */
/* Decoding                                                                 */
/* ======================================================================== */

START_TEST(test_beam_width_one_is_greedy) {
    int cell = _i / 3, attention = _i % 3;
    Seq2seqModel m;
    tiny_model(&m, cell, attention, 1, 16, 31 + (uint64_t)_i);
    Graph g;
    graph_init(&g, 1 << 20, 256);
    enum { MAX_STEPS = 12 };
    Rng rng;
    rng_seed(&rng, 32, 1);
    int nonempty = 0;
    for (int trial = 0; trial < 20; trial++) {
        int S = 1 + (int)rng_below(&rng, 8), source[8];
        for (int t = 0; t < S; t++) source[t] = SEQ2SEQ_SPECIALS + (int)rng_below(&rng, TINY_VS - SEQ2SEQ_SPECIALS);
        int greedy[MAX_STEPS], beam[MAX_STEPS], greedy_length;
        float greedy_attention[MAX_STEPS * 8], beam_attention[MAX_STEPS * 8];
        seq2seq_greedy(&g, &m, source, &S, 1, S, MAX_STEPS, greedy, &greedy_length, greedy_attention);
        int beam_length = seq2seq_beam_search(&g, &m, source, S, 1, 1.0f, MAX_STEPS, beam, beam_attention);
        ck_assert_int_eq(beam_length, greedy_length);
        for (int t = 0; t < greedy_length; t++) ck_assert_int_eq(beam[t], greedy[t]);
        if (attention != SEQ2SEQ_NO_ATTENTION)
            for (int i = 0; i < (greedy_length < MAX_STEPS ? greedy_length + 1 : MAX_STEPS) * S; i++)
                ck_assert(beam_attention[i] == greedy_attention[i]);
        nonempty += greedy_length > 0;
    }
    ck_assert_msg(nonempty > 0, "every output was empty: the comparison proves little");
    graph_free(&g);
    seq2seq_model_free(&m);
}
END_TEST

/* Trains on six pairs until it has learned them by heart; greedy and a beam
 * of three must then reproduce every target. */
START_TEST(test_overfits_a_tiny_set) {
    int cell = _i == 0 ? SEQ2SEQ_GRU : SEQ2SEQ_LSTM;
    int attention = _i == 0 ? SEQ2SEQ_BAHDANAU : SEQ2SEQ_NO_ATTENTION;
    Seq2seqModel m;
    Seq2seqConfig c = {cell, attention, 1, 8, 32, TINY_VS, TINY_VS};
    Rng rng;
    rng_seed(&rng, 41, 1);
    seq2seq_model_build(&m, &c, &rng);
    const int lengths[6] = {1, 2, 3, 4, 5, 3};
    Seq2seqDataset d = random_pairs(lengths, lengths, 6, 42);
    for (int i = 0; i < d.count; i++) /* reverse: target = source backwards */
        for (int t = 0; t < lengths[i]; t++) d.pairs[i].target[t] = d.pairs[i].source[lengths[i] - 1 - t];
    Seq2seqBatch batch;
    seq2seq_batch_init(&batch, 6, 5, 5);
    seq2seq_batch_fill(&batch, d.pairs, NULL, 6);
    Optimizer opt;
    optimizer_init(&opt, OPTIMIZER_ADAM, &m.params);
    Graph g;
    graph_init(&g, 1 << 20, 1024);
    float loss = 0;
    for (int step = 0; step < 400; step++) {
        graph_reset(&g);
        params_zero_grad(&m.params);
        Seq2seqOutput out = seq2seq_forward(&g, &m, &batch, 1.0f, NULL);
        loss = out.loss->data[0];
        graph_backward(&g, out.loss);
        optimizer_step(&opt, &m.params, 1e-2f);
    }
    ck_assert_msg(loss < 0.02f, "loss after 400 steps: %g", (double)loss);
    Seq2seqScores greedy = seq2seq_evaluate(&g, &m, &d, 6, 1, 1.0f);
    Seq2seqScores beam = seq2seq_evaluate(&g, &m, &d, 6, 3, 1.0f);
    ck_assert_msg(greedy.exact_match == 1.0 && greedy.token_accuracy == 1.0, "greedy %g", greedy.exact_match);
    ck_assert_msg(beam.exact_match == 1.0, "beam %g", beam.exact_match);
    ck_assert(fabs(greedy.bleu - 1.0) < 1e-12);
    graph_free(&g);
    optimizer_free(&opt);
    seq2seq_batch_free(&batch);
    seq2seq_dataset_free(&d);
    seq2seq_model_free(&m);
}
END_TEST

/* eval --beam K draws its per-length table with the beam too: for a
 * half-trained model, seq2seq_length_accuracy of width 3 is, length by
 * length, the exact match of beam search on those very examples; and it
 * differs from greedy's at some length, or this check could not tell. */
START_TEST(test_length_accuracy_decodes_with_the_beam) {
    enum { LOW = 1, HIGH = 7, PER_LENGTH = 30 };
    Seq2seqSettings s;
    memset(&s, 0, sizeof s);
    s.common.task = "reverse", s.common.seed = 5;
    s.min_length = 1, s.max_length = 6, s.symbols = 6, s.val_size = 10;
    Seq2seqData d;
    Error err;
    ck_assert_msg(seq2seq_data_build(&s, &d, &err), "%s", err.message);
    Seq2seqModel m;
    Seq2seqConfig c = {SEQ2SEQ_GRU, SEQ2SEQ_NO_ATTENTION, 1, 8, 24, d.vocabs.source.size,
                       d.vocabs.target.size};
    Rng rng;
    rng_seed(&rng, 6, 1);
    seq2seq_model_build(&m, &c, &rng);
    enum { B = 32 };
    Seq2seqPair pairs[B];
    int ids[B][2][16];
    for (int b = 0; b < B; b++) pairs[b].source = ids[b][0], pairs[b].target = ids[b][1];
    Seq2seqBatch batch;
    seq2seq_batch_init(&batch, B, d.max_source, d.max_target);
    Optimizer opt;
    optimizer_init(&opt, OPTIMIZER_ADAM, &m.params);
    Graph g;
    graph_init(&g, 1 << 20, 1024);
    for (int step = 0; step < 150; step++) { /* partly trained: beam and greedy still disagree */
        for (int b = 0; b < B; b++) seq2seq_data_sample(&d, &rng, &pairs[b]);
        seq2seq_batch_fill(&batch, pairs, NULL, B);
        graph_reset(&g);
        params_zero_grad(&m.params);
        Seq2seqOutput out = seq2seq_forward(&g, &m, &batch, 1.0f, NULL);
        graph_backward(&g, out.loss);
        optimizer_step(&opt, &m.params, 1e-2f);
    }
    float greedy[HIGH - LOW + 1], beam[HIGH - LOW + 1];
    Rng chart;
    rng_seed(&chart, 7, 5);
    seq2seq_length_accuracy(&g, &m, &d, LOW, HIGH, PER_LENGTH, 1, 1.0f, &chart, greedy);
    rng_seed(&chart, 7, 5);
    seq2seq_length_accuracy(&g, &m, &d, LOW, HIGH, PER_LENGTH, 3, 1.0f, &chart, beam);
    rng_seed(&chart, 7, 5);
    bool differ = false;
    for (int length = LOW; length <= HIGH; length++) {
        Seq2seqDataset set = {0};
        seq2seq_length_examples(&d, length, PER_LENGTH, &chart, &set);
        double want = seq2seq_evaluate(&g, &m, &set, 256, 3, 1.0f).exact_match;
        ck_assert_msg(fabs(beam[length - LOW] - want) < 1e-6, "length %d: table %g, beam search %g",
                      length, (double)beam[length - LOW], want);
        differ = differ || beam[length - LOW] != greedy[length - LOW];
        seq2seq_dataset_free(&set);
    }
    ck_assert_msg(differ, "beam and greedy agree at every length: the check tells nothing");
    graph_free(&g);
    optimizer_free(&opt);
    seq2seq_batch_free(&batch);
    seq2seq_model_free(&m);
    seq2seq_data_free(&d);
}
END_TEST

/* ======================================================================== */
/* Data: batches, tasks, BLEU                                               */
/* ======================================================================== */

START_TEST(test_batch_layout) {
    const int source_lengths[2] = {3, 1}, target_lengths[2] = {1, 2};
    Seq2seqDataset d = random_pairs(source_lengths, target_lengths, 2, 51);
    Seq2seqBatch batch;
    seq2seq_batch_init(&batch, 2, 3, 2);
    seq2seq_batch_fill(&batch, d.pairs, NULL, 2);
    ck_assert_int_eq(batch.S, 3);
    ck_assert_int_eq(batch.T, 3); /* the longest target, 2, plus <eos> */
    const Seq2seqPair *a = &d.pairs[0], *b = &d.pairs[1];
    /* source (S, B): column b is pair b, padded */
    int source[6] = {a->source[0], b->source[0], a->source[1], SEQ2SEQ_PAD, a->source[2], SEQ2SEQ_PAD};
    int inputs[6] = {SEQ2SEQ_BOS, SEQ2SEQ_BOS, a->target[0], b->target[0], SEQ2SEQ_PAD, b->target[1]};
    int targets[6] = {a->target[0], b->target[0], SEQ2SEQ_EOS, b->target[1], SEQ2SEQ_IGNORE, SEQ2SEQ_EOS};
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(batch.source[i], source[i]);
        ck_assert_int_eq(batch.decoder_inputs[i], inputs[i]);
        ck_assert_int_eq(batch.targets[i], targets[i]);
    }
    ck_assert_int_eq(batch.target_lengths[0], 2);
    seq2seq_batch_free(&batch);
    seq2seq_dataset_free(&d);
}
END_TEST

START_TEST(test_tasks_are_correct) {
    char source[256], target[256];
    Rng rng;
    rng_seed(&rng, 61, 1);
    for (int task = 0; task < SEQ2SEQ_TASK_COUNT; task++) {
        Seq2seqTaskSpec spec = {task, task == SEQ2SEQ_TASK_DATES ? 8 : 3, task == SEQ2SEQ_TASK_DATES ? 28 : 12, 6};
        for (int i = 0; i < 200; i++) {
            ck_assert(seq2seq_task_text(&spec, &rng, source, target, sizeof source));
            int n = (int)strlen(source);
            ck_assert_msg(n >= spec.min_length && n <= spec.max_length, "%s: '%s'", seq2seq_task_name(task), source);
            if (task == SEQ2SEQ_TASK_COPY) ck_assert_str_eq(source, target);
            if (task == SEQ2SEQ_TASK_REVERSE)
                for (int k = 0; k < n; k++) ck_assert(target[k] == source[n - 1 - k]);
            if (task == SEQ2SEQ_TASK_SORT)
                for (int k = 1; k < n; k++) ck_assert(target[k - 1] <= target[k]);
            if (task <= SEQ2SEQ_TASK_SORT)
                for (int k = 0; k < n; k++) ck_assert(source[k] >= 'a' && source[k] < 'a' + 6);
            if (task == SEQ2SEQ_TASK_ADD) {
                long a, b;
                ck_assert(sscanf(source, "%ld+%ld", &a, &b) == 2);
                char sum[32];
                snprintf(sum, sizeof sum, "%ld", a + b);
                ck_assert_str_eq(target, sum);
            }
            if (task == SEQ2SEQ_TASK_DATES) {
                int y, mo, da;
                ck_assert(sscanf(target, "%4d-%2d-%2d", &y, &mo, &da) == 3);
                ck_assert(y >= 1950 && y <= 2049 && mo >= 1 && mo <= 12 && da >= 1 && da <= 31);
            }
        }
    }
    /* The examples, all 3 March 2021 (a Wednesday). */
    const char *expected[] = {"3rd of March 2021", "Mar 3, 2021", "03/03/21", "March 3, 2021",
                              "3 March 2021", "03.03.2021", "Wednesday, March 3, 2021",
                              "3 mar 2021", "MARCH 3, 2021", "march 3rd, 2021", "3/3/2021",
                              "Wed 3 Mar 2021"};
    ck_assert_int_eq(seq2seq_date_format_count(), 12);
    for (int f = 0; f < 12; f++) {
        seq2seq_format_date(2021, 3, 3, f, source, sizeof source);
        ck_assert_str_eq(source, expected[f]);
    }
    seq2seq_format_date(2012, 2, 29, 0, source, sizeof source);
    ck_assert_str_eq(source, "29th of February 2012");
    seq2seq_format_date(1999, 12, 11, 0, source, sizeof source);
    ck_assert_str_eq(source, "11th of December 1999");
    /* add: lengths below 3 have no example */
    Seq2seqTaskSpec tiny_add = {SEQ2SEQ_TASK_ADD, 1, 2, 10};
    ck_assert(!seq2seq_task_text(&tiny_add, &rng, source, target, sizeof source));
}
END_TEST

START_TEST(test_tokenize_words_and_chars) {
    Seq2seqVocabs v;
    seq2seq_vocabs_init(&v, true);
    ck_assert(seq2seq_vocab_add_text(&v.source, true, "le chat  noir"));
    ck_assert_int_eq(v.source.size, SEQ2SEQ_SPECIALS + 3);
    int ids[8];
    ck_assert_int_eq(seq2seq_tokenize(&v.source, true, " le chien noir ", ids, 8), 3);
    ck_assert_int_eq(ids[0], SEQ2SEQ_SPECIALS);
    ck_assert_int_eq(ids[1], SEQ2SEQ_UNK);
    ck_assert_int_eq(ids[2], SEQ2SEQ_SPECIALS + 2);
    char text[64];
    seq2seq_detokenize(&v.source, true, ids, 3, text, sizeof text);
    ck_assert_str_eq(text, "le <unk> noir");
    ck_assert_int_eq(seq2seq_tokenize(&v.source, true, "a b c", ids, 2), -1); /* too many */
    /* words that spell special tokens: never <pad>, <bos> or <eos> */
    ck_assert(seq2seq_vocab_add_text(&v.source, true, "<eos> <pad> <bos> <unk>"));
    ck_assert_int_eq(seq2seq_tokenize(&v.source, true, "le <eos> <pad> <bos> <unk> noir", ids, 8), 6);
    for (int i = 1; i <= 4; i++) ck_assert_int_eq(ids[i], SEQ2SEQ_UNK);
    ck_assert_int_eq(ids[5], SEQ2SEQ_SPECIALS + 2);
    seq2seq_vocabs_free(&v);
    seq2seq_vocabs_init(&v, false);
    ck_assert(seq2seq_vocab_add_text(&v.target, false, "caf\xc3\xa9"));
    ck_assert_int_eq(v.target.size, SEQ2SEQ_SPECIALS + 4); /* é is one token */
    ck_assert_int_eq(seq2seq_tokenize(&v.target, false, "\xc3\xa9" "a", ids, 8), 2);
    ck_assert_int_eq(seq2seq_tokenize(&v.target, false, "\xff", ids, 8), -1); /* invalid UTF-8 */
    ids[2] = SEQ2SEQ_EOS, ids[3] = ids[0];
    seq2seq_detokenize(&v.target, false, ids, 4, text, sizeof text);
    ck_assert_str_eq(text, "\xc3\xa9" "a"); /* stops at <eos> */
    seq2seq_vocabs_free(&v);
}
END_TEST

/* BLEU on one pair, by hand:
 *   candidate 1 2 3 4 5 6, reference 1 2 3 4 7 6 8
 *   p1 = 5/6 (all but 5), p2 = 3/5 (12 23 34), p3 = 2/4 (123 234), p4 = 1/3
 *   c = 6 < r = 7: BP = exp(1 - 7/6)
 *   BLEU = exp(-1/6) (5/6 * 3/5 * 2/4 * 1/3)^(1/4) = exp(-1/6) (1/12)^(1/4) = 0.45480 */
START_TEST(test_bleu_by_hand) {
    const int cand1[] = {1, 2, 3, 4, 5, 6}, ref1[] = {1, 2, 3, 4, 7, 6, 8};
    const int *cands[2] = {cand1, NULL}, *refs[2] = {ref1, NULL};
    int cand_lengths[2] = {6, 0}, ref_lengths[2] = {7, 0};
    Seq2seqBleu b = seq2seq_corpus_bleu(cands, cand_lengths, refs, ref_lengths, 1);
    ck_assert(fabs(b.precision[0] - 5.0 / 6) < 1e-12 && fabs(b.precision[1] - 3.0 / 5) < 1e-12);
    ck_assert(fabs(b.precision[2] - 2.0 / 4) < 1e-12 && fabs(b.precision[3] - 1.0 / 3) < 1e-12);
    ck_assert(fabs(b.brevity_penalty - exp(-1.0 / 6)) < 1e-12);
    ck_assert(fabs(b.bleu - exp(-1.0 / 6) * pow(1.0 / 12, 0.25)) < 1e-12);
    ck_assert(fabs(b.bleu - 0.454802) < 1e-6);
    /* Corpus level: counts add up over sentences before dividing.  With an
     * exact 4-token sentence added: p = 9/10, 6/8, 4/6, 2/4; c = 10, r = 11. */
    const int same[] = {1, 2, 3, 4};
    cands[1] = same, refs[1] = same, cand_lengths[1] = 4, ref_lengths[1] = 4;
    b = seq2seq_corpus_bleu(cands, cand_lengths, refs, ref_lengths, 2);
    double expected = exp(1.0 - 11.0 / 10) * pow(0.9 * 0.75 * (4.0 / 6) * 0.5, 0.25);
    ck_assert_msg(fabs(b.bleu - expected) < 1e-12, "corpus BLEU %g, expected %g", b.bleu, expected);
    /* Clipping: "the the the the the the the" vs "the cat is on the mat":
     * "the" counts at most twice, p1 = 2/7; no bigram matches, so BLEU = 0. */
    const int the7[] = {1, 1, 1, 1, 1, 1, 1}, mat[] = {1, 2, 3, 4, 1, 5};
    cands[0] = the7, refs[0] = mat, cand_lengths[0] = 7, ref_lengths[0] = 6;
    b = seq2seq_corpus_bleu(cands, cand_lengths, refs, ref_lengths, 1);
    ck_assert(fabs(b.precision[0] - 2.0 / 7) < 1e-12);
    ck_assert(b.brevity_penalty == 1.0 && b.bleu == 0.0);
    /* Identical: 1; empty candidate: 0. */
    cands[0] = ref1, cand_lengths[0] = 7, refs[0] = ref1, ref_lengths[0] = 7;
    ck_assert(fabs(seq2seq_corpus_bleu(cands, cand_lengths, refs, ref_lengths, 1).bleu - 1.0) < 1e-12);
    cand_lengths[0] = 0;
    ck_assert(seq2seq_corpus_bleu(cands, cand_lengths, refs, ref_lengths, 1).bleu == 0.0);
}
END_TEST

/* ======================================================================== */
/* Checkpoints and resuming                                                 */
/* ======================================================================== */

START_TEST(test_checkpoint_round_trip) {
    const char *dir = test_temp_dir("seq2seq-ckpt");
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    Seq2seqModel m;
    tiny_model(&m, SEQ2SEQ_LSTM, SEQ2SEQ_LUONG, 2, 5, 71);
    Seq2seqVocabs v;
    Seq2seqTaskSpec spec = {SEQ2SEQ_TASK_REVERSE, 1, 5, 3}; /* 4 + 3 tokens: TINY_VS would be 7 */
    seq2seq_task_vocabs(&spec, &v);
    vocab_add(&v.target, "x");
    ck_assert_int_eq(v.source.size, TINY_VS);
    ck_assert_int_eq(v.target.size, TINY_VT);
    Error err;
    ck_assert_msg(seq2seq_save(path, &m, NULL, &v, NULL, &err), "%s", err.message);
    Seq2seqModel loaded;
    Seq2seqVocabs loaded_vocabs;
    Metadata meta;
    ck_assert_msg(seq2seq_load(path, &loaded, &loaded_vocabs, &meta, &err), "%s", err.message);
    ck_assert(memcmp(&loaded.config, &m.config, sizeof m.config) == 0);
    ck_assert(loaded.params.total == m.params.total);
    ck_assert(memcmp(loaded.params.values, m.params.values, m.params.total * sizeof(float)) == 0);
    for (int i = 0; i < v.target.size; i++) ck_assert_str_eq(loaded_vocabs.target.tokens[i], v.target.tokens[i]);
    ck_assert_str_eq(metadata_get(&meta, "architecture"), "seq2seq");
    metadata_free(&meta);
    /* A wrong file is refused with its name in the message. */
    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    ck_assert(!seq2seq_load(path, &loaded, &loaded_vocabs, &meta, &err) && strstr(err.message, "missing"));
    metadata_free(&meta);
    seq2seq_vocabs_free(&loaded_vocabs);
    seq2seq_model_free(&loaded);
    seq2seq_vocabs_free(&v);
    seq2seq_model_free(&m);
    test_remove_tree(dir);
}
END_TEST

/* Parameters and Adam moments of a run's checkpoint. */
static void load_run(const char *dir, Seq2seqModel *m, Optimizer *opt) {
    char path[700];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    Seq2seqVocabs v;
    Metadata meta;
    Error err;
    ck_assert_msg(seq2seq_load(path, m, &v, &meta, &err), "%s", err.message);
    metadata_free(&meta);
    optimizer_init(opt, OPTIMIZER_ADAM, &m->params);
    ck_assert_msg(checkpoint_load(path, &m->params, opt, "seq2seq", &meta, &err), "%s", err.message);
    metadata_free(&meta);
    seq2seq_vocabs_free(&v);
}

static void assert_same_run(const char *dir_a, const char *dir_b) {
    Seq2seqModel a, b;
    Optimizer oa, ob;
    load_run(dir_a, &a, &oa);
    load_run(dir_b, &b, &ob);
    ck_assert(a.params.total == b.params.total);
    ck_assert_msg(memcmp(a.params.values, b.params.values, a.params.total * sizeof(float)) == 0,
                  "%s and %s: the weights differ", dir_a, dir_b);
    ck_assert(memcmp(oa.moment1, ob.moment1, a.params.total * sizeof(float)) == 0);
    ck_assert(memcmp(oa.moment2, ob.moment2, a.params.total * sizeof(float)) == 0);
    ck_assert(oa.step == ob.step);
    optimizer_free(&oa), optimizer_free(&ob);
    seq2seq_model_free(&a), seq2seq_model_free(&b);
    char why[1024]; /* and the rest: metadata, metrics.csv, train_loss.csv */
    ck_assert_msg(runs_identical(dir_a, dir_b, why, sizeof why), "%s", why);
}

static const char SMALL_RUN[] =
    "--hidden 12 --embed 6 --batch 8 --val-size 30 --eval-every 7 --eval-per-length 4 "
    "--eval-max-length 5 --heatmaps 1 --plot-term none --quiet";

/* N steps in one go, or k steps then a resume to N, or on two threads: the
 * same weights and optimizer state, bit for bit.  `data` selects a --data
 * run (whose sampler state must also survive) instead of a task. */
static void check_resume(const char *data_option) {
    const char *dir = test_temp_dir("seq2seq-resume");
    char command[4096], output[8192];
    const char *bin = test_bin_dir();
    const char *variants[3] = {"--threads 1", "--threads 2", "--threads 1"};
    for (int v = 0; v < 3; v++) {
        if (v == 2) { /* a session that stops after 9 of the 20 steps, then --resume */
            snprintf(command, sizeof command, "%s/seq2seq train %s %s --steps 20 --stop-at 9 --out %s/run2 "
                     "--attention luong --cell lstm", bin, data_option, SMALL_RUN, dir);
            ck_assert_msg(test_run_command(command, output, sizeof output) == 0, "%s\n%s", command, output);
            ck_assert_msg(strstr(output, "final: step=9 ") != NULL, "%s", output);
        }
        snprintf(command, sizeof command, "%s/seq2seq train %s %s --steps 20 --out %s/run%d %s --attention luong --cell lstm %s",
                 bin, data_option, SMALL_RUN, dir, v, variants[v], v == 2 ? "--resume" : "");
        ck_assert_msg(test_run_command(command, output, sizeof output) == 0, "%s\n%s", command, output);
        ck_assert_msg(strstr(output, "final: step=20 ") != NULL, "%s", output);
    }
    char a[600], b[600], c[600];
    snprintf(a, sizeof a, "%s/run0", dir), snprintf(b, sizeof b, "%s/run1", dir), snprintf(c, sizeof c, "%s/run2", dir);
    assert_same_run(a, b); /* threads 1 and 2 */
    assert_same_run(a, c); /* resumed */
    test_remove_tree(dir);
}

START_TEST(test_resume_is_bit_identical_task) {
    check_resume("--task reverse --max-length 5");
}
END_TEST

START_TEST(test_resume_is_bit_identical_data) {
    const char *dir = test_temp_dir("seq2seq-tsv");
    char path[600], option[700];
    snprintf(path, sizeof path, "%s/pairs.tsv", dir);
    FILE *file = fopen(path, "w");
    Rng rng;
    rng_seed(&rng, 81, 1);
    for (int i = 0; i < 50; i++) { /* word-level reversal of short "sentences" */
        const char *words[] = {"le", "chat", "noir", "dort", "ici"};
        int n = 1 + (int)rng_below(&rng, 4), pick[4];
        for (int k = 0; k < n; k++) pick[k] = (int)rng_below(&rng, 5);
        for (int k = 0; k < n; k++) fprintf(file, "%s%s", k ? " " : "", words[pick[k]]);
        fputc('\t', file);
        for (int k = n - 1; k >= 0; k--) fprintf(file, "%s%s", k < n - 1 ? " " : "", words[pick[k]]);
        fputc('\n', file);
    }
    fclose(file);
    snprintf(option, sizeof option, "--data %s --tokens word --val-fraction 0.2", path);
    check_resume(option);
    test_remove_tree(dir);
}
END_TEST

/* ======================================================================== */
/* export and --val-data                                                    */
/* ======================================================================== */

/* A small alphabet and short strings: 340 sources in all, so a training set
 * of 400 would hold most held-out ones unless they were kept out. */
static const char EXPORT_OPTIONS[] =
    "--task reverse --symbols 4 --max-length 4 --val-size 10 --train-size 400 --eval-per-length 3";
enum { EXPORT_TRAIN = 400, EXPORT_VAL = 10, EXPORT_LENGTHS = 6, EXPORT_PER_LENGTH = 3 };

/* The lines of a file without their '\n', pointing into *text (both
 * malloc'd).  Returns the count. */
static int read_lines(const char *path, char **text, char ***lines) {
    size_t size;
    *text = read_entire_file(path, &size);
    ck_assert_msg(*text != NULL, "cannot read %s", path);
    int count = 0;
    for (size_t i = 0; i < size; i++) count += (*text)[i] == '\n';
    *lines = malloc((size_t)(count + 1) * sizeof(char *));
    char *line = *text;
    for (int i = 0; i < count; i++) {
        char *end = strchr(line, '\n');
        *end = '\0';
        (*lines)[i] = line;
        line = end + 1;
    }
    ck_assert_msg(*line == '\0', "%s: the last line has no newline", path);
    return count;
}

static void export_to(const char *dir, long seed, char *output, size_t size) {
    char command[4096];
    snprintf(command, sizeof command, "%s/seq2seq export %s --seed %ld --out %s", test_bin_dir(),
             EXPORT_OPTIONS, seed, dir);
    ck_assert_msg(test_run_command(command, output, size) == 0, "%s\n%s", command, output);
}

/* One "source<TAB>target" line of the reverse task over letters a..d:
 * returns the source length. */
static int check_reverse_line(const char *path, int number, char *line) {
    char *tab = strchr(line, '\t');
    ck_assert_msg(tab != NULL && strchr(tab + 1, '\t') == NULL, "%s line %d: '%s'", path, number, line);
    *tab = '\0';
    const char *source = line, *target = tab + 1;
    int n = (int)strlen(source);
    ck_assert_msg(n >= 1 && (int)strlen(target) == n, "%s line %d: '%s' -> '%s'", path, number, source, target);
    for (int k = 0; k < n; k++) {
        ck_assert_msg(source[k] >= 'a' && source[k] <= 'd', "%s line %d: '%s'", path, number, source);
        ck_assert_msg(target[k] == source[n - 1 - k], "%s line %d: '%s' -> '%s' is no reversal", path,
                      number, source, target);
    }
    return n;
}

/* The three files, their counts (printed and written), and each pair a
 * reversal of the right length; no training source is held out. */
START_TEST(test_export_writes_the_task) {
    const char *dir = test_temp_dir("seq2seq-export");
    char out_dir[600], path[700], output[8192], expected[800];
    snprintf(out_dir, sizeof out_dir, "%s/new/a", dir); /* made like mkdir -p */
    export_to(out_dir, 3, output, sizeof output);
    const struct { const char *name; int count; int low, high; } files[] = {
        {"train.tsv", EXPORT_TRAIN, 1, 4}, {"val.tsv", EXPORT_VAL, 1, 4},
        {"length.tsv", EXPORT_LENGTHS * EXPORT_PER_LENGTH, 1, EXPORT_LENGTHS}};
    char *texts[3], **lines[3];
    for (int f = 0; f < 3; f++) {
        snprintf(path, sizeof path, "%s/%s", out_dir, files[f].name);
        snprintf(expected, sizeof expected, "wrote %s: %d pairs\n", path, files[f].count);
        ck_assert_msg(strstr(output, expected) != NULL, "expected '%s' in:\n%s", expected, output);
        int count = read_lines(path, &texts[f], &lines[f]);
        ck_assert_msg(count == files[f].count, "%s: %d lines, expected %d", path, count, files[f].count);
        for (int i = 0; i < count; i++) {
            int n = check_reverse_line(path, i + 1, lines[f][i]);
            ck_assert_msg(n >= files[f].low && n <= files[f].high, "%s line %d: length %d", path, i + 1, n);
            /* length.tsv: EXPORT_PER_LENGTH of each length, shortest first */
            if (f == 2) ck_assert_int_eq(n, 1 + i / EXPORT_PER_LENGTH);
        }
    }
    for (int v = 0; v < EXPORT_VAL; v++) { /* distinct, and never trained on */
        for (int w = 0; w < v; w++) ck_assert_str_ne(lines[1][v], lines[1][w]);
        for (int t = 0; t < EXPORT_TRAIN; t++)
            ck_assert_msg(strcmp(lines[1][v], lines[0][t]) != 0, "val.tsv's '%s' is train.tsv line %d",
                          lines[1][v], t + 1);
    }
    for (int f = 0; f < 3; f++) free(texts[f]), free(lines[f]);
    test_remove_tree(dir);
}
END_TEST

/* The same seed writes the same bytes; another seed other examples. */
START_TEST(test_export_is_reproducible) {
    const char *dir = test_temp_dir("seq2seq-export-seed");
    char a[600], b[600], c[600], output[8192], why[1024];
    snprintf(a, sizeof a, "%s/a", dir), snprintf(b, sizeof b, "%s/b", dir), snprintf(c, sizeof c, "%s/c", dir);
    export_to(a, 7, output, sizeof output);
    export_to(b, 7, output, sizeof output);
    export_to(c, 8, output, sizeof output);
    const char *names[] = {"train.tsv", "val.tsv", "length.tsv"};
    for (int f = 0; f < 3; f++) {
        char path_a[700], path_b[700], path_c[700];
        snprintf(path_a, sizeof path_a, "%s/%s", a, names[f]);
        snprintf(path_b, sizeof path_b, "%s/%s", b, names[f]);
        snprintf(path_c, sizeof path_c, "%s/%s", c, names[f]);
        ck_assert_msg(files_identical(path_a, path_b, why, sizeof why), "seed 7 twice: %s", why);
        ck_assert_msg(!files_identical(path_a, path_c, why, sizeof why), "seeds 7 and 8 wrote the same %s",
                      names[f]);
    }
    test_remove_tree(dir);
}
END_TEST

/* The first line of `eval`'s output: "eval: examples=N ... bleu=B". */
static void eval_line(const char *arguments, char *line, size_t size) {
    char command[4096], output[8192];
    snprintf(command, sizeof command, "%s/seq2seq eval %s 2>&1", test_bin_dir(), arguments);
    ck_assert_msg(test_run_command(command, output, sizeof output) == 0, "%s\n%s", command, output);
    const char *start = strstr(output, "eval: ");
    ck_assert_msg(start != NULL, "%s\n%s", command, output);
    snprintf(line, size, "%.*s", (int)strcspn(start, "\n"), start);
}

/* The examples of each file are those train uses: val.tsv scores exactly
 * as the checkpoint's own held-out set does (same examples, same order);
 * train.tsv holds the first draws of the data stream, length.tsv the
 * chart's (both checked against the functions train calls). */
START_TEST(test_export_matches_train) {
    const char *dir = test_temp_dir("seq2seq-export-train");
    char command[4096], output[8192], arguments[2048], path[700];
    snprintf(command, sizeof command, "%s/seq2seq train --task reverse --symbols 4 --max-length 4 "
             "--val-size %d --seed 3 --hidden 12 --embed 6 --batch 8 --steps 5 --eval-every 5 "
             "--eval-per-length 3 --heatmaps 0 --plot-term none --quiet --out %s/run",
             test_bin_dir(), EXPORT_VAL, dir);
    ck_assert_msg(test_run_command(command, output, sizeof output) == 0, "%s\n%s", command, output);
    snprintf(path, sizeof path, "%s/export", dir);
    export_to(path, 3, output, sizeof output);
    char from_task[1024], from_file[1024];
    snprintf(arguments, sizeof arguments, "--checkpoint %s/run/model.safetensors --val-size %d", dir, EXPORT_VAL);
    eval_line(arguments, from_task, sizeof from_task);
    snprintf(arguments, sizeof arguments, "--checkpoint %s/run/model.safetensors --data %s/val.tsv", dir, path);
    eval_line(arguments, from_file, sizeof from_file);
    ck_assert_msg(strstr(from_task, "examples=10 ") != NULL, "%s", from_task);
    ck_assert_str_eq(from_task, from_file);

    /* The settings export used, for the data functions of train.c. */
    Seq2seqSettings s;
    memset(&s, 0, sizeof s);
    s.common.task = "reverse", s.common.seed = 3;
    s.min_length = 1, s.max_length = 4, s.symbols = 4, s.val_size = EXPORT_VAL;
    Seq2seqData d;
    Error err;
    ck_assert_msg(seq2seq_data_build(&s, &d, &err), "%s", err.message);
    char *texts[2], **lines[2], source[64], target[64], line[200];
    const char *names[2] = {"train.tsv", "length.tsv"};
    for (int f = 0; f < 2; f++) {
        char file[800];
        snprintf(file, sizeof file, "%s/%s", path, names[f]);
        read_lines(file, &texts[f], &lines[f]);
    }
    Rng data_rng, chart_rng; /* seq2seq_train's stream 1, plot_run's stream 5 */
    rng_seed(&data_rng, 3, 1), rng_seed(&chart_rng, 3, 5);
    int ids[2][64];
    Seq2seqPair pair = {.source = ids[0], .target = ids[1]};
    for (int i = 0; i < EXPORT_TRAIN; i++) {
        seq2seq_data_sample(&d, &data_rng, &pair);
        seq2seq_detokenize(&d.vocabs.source, false, pair.source, pair.source_length, source, sizeof source);
        seq2seq_detokenize(&d.vocabs.target, false, pair.target, pair.target_length, target, sizeof target);
        snprintf(line, sizeof line, "%s\t%s", source, target);
        ck_assert_msg(strcmp(line, lines[0][i]) == 0, "train.tsv line %d: '%s', train draws '%s'", i + 1,
                      lines[0][i], line);
    }
    for (int length = 1, i = 0; length <= EXPORT_LENGTHS; length++) {
        Seq2seqDataset set = {0};
        ck_assert_int_eq(seq2seq_length_examples(&d, length, EXPORT_PER_LENGTH, &chart_rng, &set), EXPORT_PER_LENGTH);
        for (int k = 0; k < set.count; k++, i++) {
            const Seq2seqPair *p = &set.pairs[k];
            seq2seq_detokenize(&d.vocabs.source, false, p->source, p->source_length, source, sizeof source);
            seq2seq_detokenize(&d.vocabs.target, false, p->target, p->target_length, target, sizeof target);
            snprintf(line, sizeof line, "%s\t%s", source, target);
            ck_assert_msg(strcmp(line, lines[1][i]) == 0, "length.tsv line %d: '%s', the chart draws '%s'",
                          i + 1, lines[1][i], line);
        }
        seq2seq_dataset_free(&set);
    }
    for (int f = 0; f < 2; f++) free(texts[f]), free(lines[f]);
    seq2seq_data_free(&d);
    test_remove_tree(dir);
}
END_TEST

static int count_file_lines(const char *path) {
    char *text, **lines;
    int count = read_lines(path, &text, &lines);
    free(text), free(lines);
    return count;
}

static const char *metadata_of(const char *checkpoint, const char *key, char *value, size_t size) {
    Metadata meta;
    Error err;
    ck_assert_msg(checkpoint_read_metadata(checkpoint, &meta, &err), "%s", err.message);
    const char *found = metadata_get(&meta, key);
    ck_assert_msg(found != NULL, "%s: no %s", checkpoint, key);
    snprintf(value, size, "%s", found);
    metadata_free(&meta);
    return value;
}

/* train --data train.tsv --val-data val.tsv: every line of val.tsv is held
 * out, every line of train.tsv trains; the final val_loss is eval's on
 * val.tsv; the checkpoint records it; the misuses exit with a message. */
START_TEST(test_val_data) {
    const char *dir = test_temp_dir("seq2seq-val-data");
    char command[4096], output[8192], data[700], run[700], train[800], val[800], checkpoint[800], value[256];
    snprintf(data, sizeof data, "%s/data", dir), snprintf(run, sizeof run, "%s/run", dir);
    export_to(data, 5, output, sizeof output);
    snprintf(train, sizeof train, "%s/train.tsv", data), snprintf(val, sizeof val, "%s/val.tsv", data);
    snprintf(checkpoint, sizeof checkpoint, "%s/model.safetensors", run);
    snprintf(command, sizeof command, "%s/seq2seq train --data %s --val-data %s %s --steps 6 --out %s 2>&1",
             test_bin_dir(), train, val, SMALL_RUN, run);
    ck_assert_msg(test_run_command(command, output, sizeof output) == 0, "%s\n%s", command, output);
    double val_loss = -1, eval_loss = -2;
    const char *at = strstr(output, "val_loss=");
    ck_assert_msg(at && sscanf(at, "val_loss=%lf", &val_loss) == 1, "%s", output);
    ck_assert_int_eq(atoi(metadata_of(checkpoint, "data.validation_pairs", value, sizeof value)),
                     count_file_lines(val));
    ck_assert_int_eq(atoi(metadata_of(checkpoint, "data.train_pairs", value, sizeof value)),
                     count_file_lines(train));
    ck_assert_str_eq(metadata_of(checkpoint, "data.val_data", value, sizeof value), val);
    char line[1024], arguments[2048];
    snprintf(arguments, sizeof arguments, "--checkpoint %s --data %s", checkpoint, val);
    eval_line(arguments, line, sizeof line);
    snprintf(value, sizeof value, "eval: examples=%d ", count_file_lines(val));
    ck_assert_msg(strncmp(line, value, strlen(value)) == 0, "%s", line);
    ck_assert_msg(sscanf(strstr(line, " loss="), " loss=%lf", &eval_loss) == 1, "%s", line);
    ck_assert_msg(val_loss == eval_loss, "train's val_loss %.4f, eval on val.tsv %.4f", val_loss, eval_loss);

    /* --resume needs --val-data as the run began */
    snprintf(command, sizeof command, "%s/seq2seq train --data %s %s --steps 8 --out %s --resume", test_bin_dir(),
             train, SMALL_RUN, run);
    ck_assert_int_eq(test_run_command(command, output, sizeof output), 1);
    ck_assert_msg(strstr(output, "--val-data") != NULL, "%s", output);
    /* without --data: a usage error */
    snprintf(command, sizeof command, "%s/seq2seq train --task reverse --val-data %s --out %s/none", test_bin_dir(),
             val, dir);
    ck_assert_int_eq(test_run_command(command, output, sizeof output), 2);
    ck_assert_msg(strstr(output, "--val-data") && strstr(output, "--data"), "%s", output);
    /* a missing file: named, exit 1, no run directory */
    snprintf(command, sizeof command, "%s/seq2seq train --data %s --val-data %s/missing_val.tsv %s --out %s/none",
             test_bin_dir(), train, dir, SMALL_RUN, dir);
    ck_assert_int_eq(test_run_command(command, output, sizeof output), 1);
    ck_assert_msg(strstr(output, "missing_val.tsv") != NULL, "%s", output);
    snprintf(command, sizeof command, "%s/none", dir);
    struct stat st;
    ck_assert_msg(stat(command, &st) != 0, "a failed run left %s behind", command);
    /* export refuses --data */
    snprintf(command, sizeof command, "%s/seq2seq export --data %s --out %s/none", test_bin_dir(), train, dir);
    ck_assert_int_eq(test_run_command(command, output, sizeof output), 2);
    ck_assert_msg(strstr(output, "--data") != NULL, "%s", output);
    test_remove_tree(dir);
}
END_TEST

START_TEST(test_resume_is_bit_identical_val_data) {
    const char *dir = test_temp_dir("seq2seq-val-data-resume");
    char output[8192], option[1600];
    export_to(dir, 9, output, sizeof output);
    snprintf(option, sizeof option, "--data %s/train.tsv --val-data %s/val.tsv", dir, dir);
    check_resume(option);
    test_remove_tree(dir);
}
END_TEST

/* ======================================================================== */
/* The command line: bad input, translate                                   */
/* ======================================================================== */

static int train_on(const char *file, char *output, size_t size, const char *out_dir) {
    char command[4096];
    snprintf(command, sizeof command, "%s/seq2seq train --data %s %s --steps 2 --out %s",
             test_bin_dir(), file, SMALL_RUN, out_dir);
    return test_run_command(command, output, size);
}

static void write_file(const char *path, const char *bytes, size_t size) {
    FILE *file = fopen(path, "wb");
    ck_assert_ptr_nonnull(file);
    ck_assert(fwrite(bytes, 1, size, file) == size);
    fclose(file);
}

/* What the TSV reader does with each kind of bad input (README, "Your own
 * data"): bad lines are skipped and counted, bad files are errors that name
 * the file (and line), exit 1 and leave no run directory behind. */
START_TEST(test_tsv_bad_input) {
    const char *dir = test_temp_dir("seq2seq-bad");
    char path[600], out_dir[700], output[16384];
    snprintf(out_dir, sizeof out_dir, "%s/run", dir);
    snprintf(path, sizeof path, "%s/mixed.tsv", dir);
    /* 20 good lines, then one of each bad kind */
    char text[12000];
    size_t used = 0;
    for (int i = 0; i < 20; i++) used += (size_t)snprintf(text + used, sizeof text - used, "ab%c\tba%c\n", 'a' + i % 3, 'b');
    used += (size_t)snprintf(text + used, sizeof text - used, "no tab here\n\n\xff\xfe\tbad utf8\n");
    memset(text + used, 'x', 5000), used += 5000;
    used += (size_t)snprintf(text + used, sizeof text - used, "\ttoo long\nlast\tline\textra column\n");
    write_file(path, text, used);
    ck_assert_msg(train_on(path, output, sizeof output, out_dir) == 0, "%s", output);
    ck_assert_msg(strstr(output, "skipped 4 lines (1 blank, 1 without a tab, 1 longer than 4096 bytes, "
                                 "1 invalid UTF-8)") != NULL, "%s", output);
    test_remove_tree(out_dir);
    struct stat st;
    struct { const char *name; const char *bytes; size_t size; const char *message; } bad[] = {
        {"empty.tsv", "", 0, "empty file"},
        {"binary.tsv", "a\tb\n\x01\x00\x02\tc\n", 10, "line 2: NUL byte"},
        {"no_pairs.tsv", "one column\n\n", 12, "no usable source<TAB>target line"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, bad[i].name);
        write_file(path, bad[i].bytes, bad[i].size);
        ck_assert_int_eq(train_on(path, output, sizeof output, out_dir), 1);
        ck_assert_msg(strstr(output, bad[i].message) && strstr(output, bad[i].name), "%s: %s", bad[i].name, output);
        ck_assert_msg(stat(out_dir, &st) != 0, "%s left a run directory behind", bad[i].name);
    }
    snprintf(path, sizeof path, "%s/does_not_exist.tsv", dir);
    ck_assert_int_eq(train_on(path, output, sizeof output, out_dir), 1);
    ck_assert_msg(strstr(output, "does_not_exist.tsv") != NULL, "%s", output);
    test_remove_tree(dir);
}
END_TEST

START_TEST(test_command_line_errors) {
    char command[1024], output[8192];
    const char *bin = test_bin_dir();
    snprintf(command, sizeof command, "%s/seq2seq train --no-such-option", bin);
    ck_assert_int_eq(test_run_command(command, output, sizeof output), 2);
    snprintf(command, sizeof command, "%s/seq2seq train --task juggle", bin);
    ck_assert_int_eq(test_run_command(command, output, sizeof output), 2);
    ck_assert_msg(strstr(output, "--task juggle") != NULL, "%s", output);
    snprintf(command, sizeof command, "%s/seq2seq train --cell rnn", bin);
    ck_assert_int_eq(test_run_command(command, output, sizeof output), 2);
    snprintf(command, sizeof command, "%s/seq2seq frobnicate", bin);
    ck_assert_int_eq(test_run_command(command, output, sizeof output), 2);
    snprintf(command, sizeof command, "%s/seq2seq translate --checkpoint /nonexistent/model.safetensors < /dev/null", bin);
    ck_assert_int_eq(test_run_command(command, output, sizeof output), 1);
    ck_assert_msg(strstr(output, "/nonexistent/model.safetensors") != NULL, "%s", output);
    snprintf(command, sizeof command, "%s/seq2seq train --help", bin);
    ck_assert_int_eq(test_run_command(command, output, sizeof output), 0);
    ck_assert(strstr(output, "--teacher-forcing") && strstr(output, "--attention"));
}
END_TEST

/* translate prints one line per input line (an empty line for an empty one),
 * and --show-attention adds the alignment. */
START_TEST(test_translate_one_line_per_input) {
    const char *dir = test_temp_dir("seq2seq-translate");
    char command[4096], output[16384], input[600];
    snprintf(command, sizeof command, "%s/seq2seq train --task reverse --max-length 5 %s --steps 5 --out %s",
             test_bin_dir(), SMALL_RUN, dir);
    ck_assert_msg(test_run_command(command, output, sizeof output) == 0, "%s", output);
    snprintf(input, sizeof input, "%s/input.txt", dir);
    write_file(input, "abc\n\ncba\n", 9);
    snprintf(command, sizeof command, "%s/seq2seq translate --checkpoint %s/model.safetensors --input %s 2>/dev/null",
             test_bin_dir(), dir, input);
    ck_assert_int_eq(test_run_command(command, output, sizeof output), 0);
    int lines = 0;
    for (const char *c = output; *c; c++) lines += *c == '\n';
    ck_assert_msg(lines == 3, "expected 3 lines, got %d:\n%s", lines, output);
    /* --quiet: the outputs alone, even with --show-attention */
    snprintf(command, sizeof command, "%s/seq2seq translate --checkpoint %s/model.safetensors --input %s "
             "--show-attention --quiet 2>/dev/null", test_bin_dir(), dir, input);
    ck_assert_int_eq(test_run_command(command, output, sizeof output), 0);
    lines = 0;
    for (const char *c = output; *c; c++) lines += *c == '\n';
    ck_assert_msg(lines == 3, "--quiet: expected 3 lines, got %d:\n%s", lines, output);
    /* source<TAB>target: only the source is translated (the alignment shows
     * its columns, so a TAB read as <unk> would show) */
    char plain[4096];
    snprintf(command, sizeof command, "printf 'cab\\n' | %s/seq2seq translate --checkpoint %s/model.safetensors "
             "--show-attention", test_bin_dir(), dir);
    ck_assert_int_eq(test_run_command(command, plain, sizeof plain), 0);
    snprintf(command, sizeof command, "printf 'cab\\tbac\\tmore\\n' | %s/seq2seq translate --checkpoint "
             "%s/model.safetensors --show-attention", test_bin_dir(), dir);
    ck_assert_int_eq(test_run_command(command, output, sizeof output), 0);
    ck_assert_str_eq(output, plain);
    snprintf(command, sizeof command, "echo abc | %s/seq2seq translate --checkpoint %s/model.safetensors "
             "--show-attention --beam 3 --out %s --plot-term none", test_bin_dir(), dir, dir);
    ck_assert_int_eq(test_run_command(command, output, sizeof output), 0);
    ck_assert_msg(strstr(output, "<eos>") != NULL, "no alignment printed:\n%s", output);
    snprintf(input, sizeof input, "%s/attention_line1.dat", dir);
    struct stat st;
    ck_assert_msg(stat(input, &st) == 0, "no attention_line1.dat");
    test_remove_tree(dir);
}
END_TEST

Suite *seq2seq_suite(void) {
    Suite *suite = suite_create("seq2seq");
    TCase *ops = tcase_create("ops");
    tcase_set_timeout(ops, 120);
    tcase_add_test(ops, test_exp_and_tanh_approximations);
    tcase_add_test(ops, test_gru_step_matches_gru_cell);
    tcase_add_test(ops, test_lstm_step_matches_lstm_cell);
    tcase_add_test(ops, test_fused_op_gradients);
    tcase_add_loop_test(ops, test_recurrent_layer_matches_steps, 0, 2); /* gru, lstm */
    suite_add_tcase(suite, ops);

    TCase *model = tcase_create("model");
    tcase_set_timeout(model, 120);
    tcase_add_loop_test(model, test_model_gradients_gru, 0, 3);  /* none, bahdanau, luong */
    tcase_add_loop_test(model, test_model_gradients_lstm, 0, 3);
    tcase_add_loop_test(model, test_model_gradients_two_layers, 0, 2);
    tcase_add_loop_test(model, test_model_gradients_step_by_step, 0, 4);
    tcase_add_loop_test(model, test_padding_changes_nothing, 0, 6);
    tcase_add_loop_test(model, test_beam_width_one_is_greedy, 0, 6);
    tcase_add_loop_test(model, test_overfits_a_tiny_set, 0, 2);
    tcase_add_test(model, test_length_accuracy_decodes_with_the_beam);
    suite_add_tcase(suite, model);

    TCase *data = tcase_create("data");
    tcase_add_test(data, test_batch_layout);
    tcase_add_test(data, test_tasks_are_correct);
    tcase_add_test(data, test_tokenize_words_and_chars);
    tcase_add_test(data, test_bleu_by_hand);
    suite_add_tcase(suite, data);

    TCase *runs = tcase_create("runs");
    tcase_set_timeout(runs, 240);
    tcase_add_test(runs, test_checkpoint_round_trip);
    tcase_add_test(runs, test_resume_is_bit_identical_task);
    tcase_add_test(runs, test_resume_is_bit_identical_data);
    tcase_add_test(runs, test_tsv_bad_input);
    tcase_add_test(runs, test_command_line_errors);
    tcase_add_test(runs, test_translate_one_line_per_input);
    suite_add_tcase(suite, runs);

    TCase *export = tcase_create("export");
    tcase_set_timeout(export, 240);
    tcase_add_test(export, test_export_writes_the_task);
    tcase_add_test(export, test_export_is_reproducible);
    tcase_add_test(export, test_export_matches_train);
    tcase_add_test(export, test_val_data);
    tcase_add_test(export, test_resume_is_bit_identical_val_data);
    suite_add_tcase(suite, export);
    return suite;
}
