/* seq2seq/cells.c: the recurrent cells, a whole recurrent layer, and the
 * attention scores as fused autograd ops, each forward followed by its
 * backward.
 *
 * Legend: B batch, S source steps, H hidden size, A attention size,
 * G gates (3 GRU, 4 LSTM), P parts of a recurrent state (1 for a GRU, 2
 * for an LSTM), In a layer's input size.
 *
 * Why fused ops.  common/nn.c's gru_cell_forward builds a GRU step from
 * about fifteen small ops (slices, adds, sigmoids, products), and each one
 * reads and writes a (B, H) tensor and adds a tape entry.  With B = 64 and
 * H = 128 the matmuls of a step are small, so that traffic and bookkeeping
 * cost as much as the arithmetic.  Here a step's two matmuls stay linear
 * layers (op_linear calls in model.c, or linear_rows inside the
 * whole-sequence layer below), and everything after them is one loop over
 * (B, H) elements with one tape entry.  tests/test_seq2seq.c checks each op
 * against the op-by-op version of common/nn.c and against finite
 * differences.
 *
 * Padding.  A row b with active[b] == 0 is a padded position of a shorter
 * sequence: its state passes through unchanged, h' = h (and c' = c), so the
 * final state of every sequence is the one after its last real token, as
 * with torch.nn.utils.rnn.pack_padded_sequence.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fastmath.h"
#include "seq2seq.h"

/* ---- sigmoid and tanh that the compiler can vectorize ------------------------
 * glibc's expf and tanhf are calls the compiler cannot turn into vector code,
 * and in a profile of a GRU step they cost more than the matmuls.  Both are
 * built on common/fastmath.h's branch-free exp_in_range, so the loops below
 * vectorize; the loops that call them are marked FUSE_MULTIPLY_ADD, so that
 * its polynomial is one fused multiply-add per degree, not two
 * instructions, and WIDE_VECTORS.  tests/test_seq2seq.c compares them with
 * libm. */
static inline float sigmoid(float x) {
    /* e^-x with -x clamped to [-87, 87], the range exp_in_range takes
     * without special cases.  Above x = 87 sigmoid is 1 in float either
     * way; below x = -87 the true value is a subnormal float, and 1e-38
     * stands in for it: subnormals make every multiply that meets them
     * slow.  A NaN fails both comparisons and becomes -87 (exp_in_range
     * must never see one); it is handed back at the end, for
     * --check-numerics. */
    float minus_x = -x > -87.0f ? -x : -87.0f;
    minus_x = minus_x < 87.0f ? minus_x : 87.0f;
    float s = 1.0f / (1.0f + exp_in_range(minus_x));
    return x == x ? s : x;
}

/* tanh x = 2 sigmoid(2x) - 1: absolute error about 1e-7 (near 0 the
 * subtraction loses the relative accuracy, not the absolute one). */
static inline float tanh_approx(float x) {
    return 2.0f / (1.0f + exp_fast(-2.0f * x)) - 1.0f;
}

/* Exposed for the tests. */
float seq2seq_sigmoid(float x) { return sigmoid(x); }
float seq2seq_tanh(float x) { return tanh_approx(x); }

/* The backwards below compute a step's gate gradients into this buffer
 * before writing or adding them where they belong, and their vectorized
 * row loops must not test for a missing gradient at every element: a state
 * without one (the zero initial state) sends its gradient here instead,
 * written, never read.  Per thread, grown on demand and kept, like
 * matmul's packing buffers. */
static float *scratch_row(size_t count) {
    static _Thread_local float *buffer;
    static _Thread_local size_t capacity;
    if (count > capacity) {
        buffer = xrealloc(buffer, count * sizeof(float));
        capacity = count;
    }
    return buffer;
}

/* A copy of active (B) in the arena, kept for backward (NULL stays NULL). */
static int *keep_active(Graph *g, const int *active, int B) {
    if (active == NULL) return NULL;
    int *kept = arena_alloc(&g->arena, (size_t)B * sizeof(int));
    memcpy(kept, active, (size_t)B * sizeof(int));
    return kept;
}

/* t's gradient = values when nothing has been written there yet (the op
 * declared t in overwrites_input), else += values.  count floats. */
static void grad_store(Tensor *t, const float *values, size_t count) {
    if (t->grad == NULL) return;
    if (tensor_grad_overwrite(t)) {
        memcpy(t->grad, values, count * sizeof(float));
        return;
    }
    for (size_t i = 0; i < count; i++) t->grad[i] += values[i];
}

/* ======================================================================== */
/* GRU step                                                                  */
/* ======================================================================== */

static void gru_step_backward(TapeEntry *entry);

enum { GRU_SAVED = 4 }; /* floats per unit saved for backward: r, z, n, gh_n */

/* One row of the step.  A function of its own so that `restrict` (which gcc
 * honours on parameters) tells the vectorizer that nothing overlaps. */
FUSE_MULTIPLY_ADD WIDE_VECTORS
static void gru_row_forward(int H, const float *restrict x_gates, const float *restrict h_gates,
                            const float *restrict h, float *restrict h_new, float *restrict saved) {
    /* EXERCISE gru_cell: the GRU equations (above seq2seq_gru_step, just below) for each of the H
     * units j: h_new[j] = h', and saved = (r, z, n) at j, H + j, 2H + j (backward needs them).
     * x_gates and h_gates hold gx and gh: (r, z, n) parts of H values each.
     * STUB: (void)x_gates, (void)h_gates, (void)h;
     * STUB: exercise_missing("gru_cell");
     * STUB: for (int j = 0; j < 3 * H; j++) saved[j] = 0.0f;
     * STUB: for (int j = 0; j < H; j++) h_new[j] = 0.0f; */
    /* r and z of every unit first, then n and h': two loops, for the
     * reason given at lstm_row_forward below (one loop measured 15% slower). */
    float *r = saved, *z = saved + H, *n = saved + 2 * H;
    for (int j = 0; j < H; j++) {
        r[j] = sigmoid(x_gates[j] + h_gates[j]);
        z[j] = sigmoid(x_gates[H + j] + h_gates[H + j]);
    }
    for (int j = 0; j < H; j++) {
        n[j] = tanh_approx(x_gates[2 * H + j] + r[j] * h_gates[2 * H + j]);
        h_new[j] = n[j] + z[j] * (h[j] - n[j]);
    }
    /* END EXERCISE */
}

/* Every row of one step: gx, gh (B, 3H), state (1, B, H) -> out (1, B, H),
 * saved (B, 4H) = r, z, n and gh_n, the four things backward reads (so it
 * need not keep gh).  A padded row (active[b] == 0) keeps its h. */
static void gru_rows_forward(int B, int H, const float *gx, const float *gh, const float *state,
                             const int *active, float *out, float *saved) {
    for (int b = 0; b < B; b++) {
        const float *h = state + (size_t)b * H;
        float *h_new = out + (size_t)b * H;
        if (active != NULL && !active[b]) {
            memcpy(h_new, h, (size_t)H * sizeof(float));
            continue;
        }
        float *saved_row = saved + (size_t)b * GRU_SAVED * H;
        gru_row_forward(H, gx + (size_t)b * 3 * H, gh + (size_t)b * 3 * H, h, h_new, saved_row);
        memcpy(saved_row + 3 * H, gh + (size_t)b * 3 * H + 2 * H, (size_t)H * sizeof(float));
    }
}

/* torch.nn.GRU, gate order (r, z, n), with gx = W_ih x + b_ih, gh = W_hh h + b_hh:
 *   r  = sigmoid(gx_r + gh_r)
 *   z  = sigmoid(gx_z + gh_z)
 *   n  = tanh(gx_n + r * gh_n)        (b_hn sits inside r * (...), as in torch)
 *   h' = (1 - z) * n + z * h                                                   */
Tensor *seq2seq_gru_step(Graph *g, Tensor *gx, Tensor *gh, Tensor *state, const int *active) {
    int B = state->shape[state->ndim - 2], H = state->shape[state->ndim - 1];
    tensor_check_shapes(gx->numel == B * 3 * H, "gru_step", gx, state, "gx must be (B, 3H)");
    tensor_check_shapes(gh->numel == B * 3 * H, "gru_step", gh, state, "gh must be (B, 3H)");
    tensor_check_shapes(state->numel == B * H, "gru_step", state, NULL, "state must be (1, B, H)");
    bool grad = graph_needs_grad(g, gx, gh, state);
    /* (1, B, H) h', not zeroed: every row is written below */
    Tensor *out = tensor_empty(g, state->ndim, state->shape, grad, "gru_step");
    /* (B, 4H) r, z, n and gh_n, saved for backward */
    float *saved = arena_alloc(&g->arena, (size_t)B * GRU_SAVED * H * sizeof(float));
    gru_rows_forward(B, H, gx->data, gh->data, state->data, active, out->data, saved);
    if (grad) {
        TapeEntry *entry = graph_record_custom(g, "gru_step", gru_step_backward, out, gx, gh, state);
        entry->saved = saved;
        entry->indices = keep_active(g, active, B);
        entry->int_args[0] = B, entry->int_args[1] = H;
        entry->overwrites_input = 1u << 0 | 1u << 1; /* gx, gh: see grad_store */
    }
    graph_check_finite(g, "gru_step", out);
    return out;
}

/* With dh' the gradient of h' (and a_r, a_z, a_n the pre-activations):
 *   dn = dh' (1 - z)           dz = dh' (h - n)           dh += dh' z
 *   da_n = dn (1 - n^2)   ->   dgx_n = da_n,  dgh_n = da_n r,  dr = da_n gh_n
 *   da_r = dr r (1 - r)   ->   dgx_r = dgh_r = da_r
 *   da_z = dz z (1 - z)   ->   dgx_z = dgh_z = da_z
 * dgx and dgh are written (this step is their only use); dh is added to. */
static void gru_row_backward(int H, const float *restrict dy, const float *restrict saved,
                             const float *restrict h, float *restrict dgx, float *restrict dgh,
                             float *restrict dh) {
    for (int j = 0; j < H; j++) {
        float r = saved[j], z = saved[H + j], n = saved[2 * H + j], gh_n = saved[3 * H + j];
        float dn = dy[j] * (1.0f - z), dz = dy[j] * (h[j] - n);
        float da_n = dn * (1.0f - n * n);
        float da_r = da_n * gh_n * r * (1.0f - r);
        float da_z = dz * z * (1.0f - z);
        dh[j] += dy[j] * z;
        dgx[j] = da_r, dgx[H + j] = da_z, dgx[2 * H + j] = da_n;
        dgh[j] = da_r, dgh[H + j] = da_z, dgh[2 * H + j] = da_n * r;
    }
}

/* Every row: dy (1, B, H) the gradient of h'.  Writes dgx and dgh (B, 3H)
 * (zeros for a padded row) and adds into dstate (1, B, H) the direct path
 * dh' z, or all of dh' for a padded row, whose h' is h. */
static void gru_rows_backward(int B, int H, const float *dy, const float *saved,
                              const float *state, const int *active, float *dgx, float *dgh,
                              float *dstate) {
    for (int b = 0; b < B; b++) {
        const float *dy_row = dy + (size_t)b * H;
        float *dh = dstate + (size_t)b * H;
        size_t gates = (size_t)b * 3 * H;
        if (active != NULL && !active[b]) {
            for (int j = 0; j < H; j++) dh[j] += dy_row[j];
            memset(dgx + gates, 0, (size_t)3 * H * sizeof(float));
            memset(dgh + gates, 0, (size_t)3 * H * sizeof(float));
            continue;
        }
        gru_row_backward(H, dy_row, saved + (size_t)b * GRU_SAVED * H, state + (size_t)b * H,
                         dgx + gates, dgh + gates, dh);
    }
}

static void gru_step_backward(TapeEntry *entry) {
    Tensor *gx = entry->inputs[0], *gh = entry->inputs[1], *state = entry->inputs[2];
    int B = entry->int_args[0], H = entry->int_args[1];
    size_t gates = (size_t)B * 3 * H;
    float *dgx = scratch_row(2 * gates + (size_t)B * H), *dgh = dgx + gates;
    float *dstate = state->grad ? state->grad : dgh + gates; /* see scratch_row */
    gru_rows_backward(B, H, entry->out->grad, entry->saved, state->data, entry->indices, dgx, dgh,
                      dstate);
    grad_store(gx, dgx, gates);
    grad_store(gh, dgh, gates);
}

/* ======================================================================== */
/* LSTM step                                                                 */
/* ======================================================================== */

static void lstm_step_backward(TapeEntry *entry);

/* Two loops rather than one.  In one unit j, tanh(c') waits for three
 * gates, and each gate is a long chain of dependent steps (exp_fast's
 * polynomial, a division): one loop doing all of it runs at the speed of
 * that chain.  The gates of different units do not depend on each other,
 * so with all gates first the processor overlaps many of them at once:
 * this form measured twice as fast. */
FUSE_MULTIPLY_ADD WIDE_VECTORS
static void lstm_row_forward(int H, const float *restrict ax, const float *restrict ah,
                             const float *restrict c, float *restrict h_new,
                             float *restrict c_new, float *restrict saved) {
    /* the five saved rows i, f, g, o, tanh(c'), each (H) */
    float *si = saved, *sf = saved + H, *sg = saved + 2 * H, *so = saved + 3 * H;
    float *stc = saved + 4 * H;
    for (int j = 0; j < H; j++) {
        si[j] = sigmoid(ax[j] + ah[j]);
        sf[j] = sigmoid(ax[H + j] + ah[H + j]);
        sg[j] = tanh_approx(ax[2 * H + j] + ah[2 * H + j]);
        so[j] = sigmoid(ax[3 * H + j] + ah[3 * H + j]);
    }
    for (int j = 0; j < H; j++) {
        c_new[j] = sf[j] * c[j] + si[j] * sg[j];
        stc[j] = tanh_approx(c_new[j]);
        h_new[j] = so[j] * stc[j];
    }
}

/* Every row of one step: gx, gh (B, 4H), state (2, B, H) = [h, c] ->
 * out (2, B, H), saved (B, 5H) = i, f, g, o, tanh(c').  A padded row keeps
 * its h and c. */
static void lstm_rows_forward(int B, int H, const float *gx, const float *gh, const float *state,
                              const int *active, float *out, float *saved) {
    size_t part = (size_t)B * H; /* offset of c in a state */
    for (int b = 0; b < B; b++) {
        const float *h = state + (size_t)b * H, *c = state + part + (size_t)b * H;
        float *h_new = out + (size_t)b * H, *c_new = out + part + (size_t)b * H;
        if (active != NULL && !active[b]) {
            memcpy(h_new, h, (size_t)H * sizeof(float));
            memcpy(c_new, c, (size_t)H * sizeof(float));
            continue;
        }
        lstm_row_forward(H, gx + (size_t)b * 4 * H, gh + (size_t)b * 4 * H, c, h_new, c_new,
                         saved + (size_t)b * 5 * H);
    }
}

/* torch.nn.LSTM, gate order (i, f, g, o), with a = gx + gh:
 *   i = sigmoid(a_i)   f = sigmoid(a_f)   g = tanh(a_g)   o = sigmoid(a_o)
 *   c' = f * c + i * g
 *   h' = o * tanh(c')
 * state and result are (2, B, H): part 0 is h, part 1 is c. */
Tensor *seq2seq_lstm_step(Graph *g, Tensor *gx, Tensor *gh, Tensor *state, const int *active) {
    int B = state->shape[state->ndim - 2], H = state->shape[state->ndim - 1];
    tensor_check_shapes(state->numel == 2 * B * H, "lstm_step", state, NULL,
                        "state must be (2, B, H): h then c");
    tensor_check_shapes(gx->numel == B * 4 * H, "lstm_step", gx, state, "gx must be (B, 4H)");
    tensor_check_shapes(gh->numel == B * 4 * H, "lstm_step", gh, state, "gh must be (B, 4H)");
    bool grad = graph_needs_grad(g, gx, gh, state);
    /* (2, B, H) [h', c'], not zeroed: every row is written below */
    Tensor *out = tensor_empty(g, state->ndim, state->shape, grad, "lstm_step");
    /* (B, 5H) i, f, g, o and tanh(c'), saved for backward */
    float *saved_all = arena_alloc(&g->arena, (size_t)B * 5 * H * sizeof(float));
    lstm_rows_forward(B, H, gx->data, gh->data, state->data, active, out->data, saved_all);
    if (grad) {
        TapeEntry *entry = graph_record_custom(g, "lstm_step", lstm_step_backward, out, gx, gh, state);
        entry->saved = saved_all;
        entry->indices = keep_active(g, active, B);
        entry->int_args[0] = B, entry->int_args[1] = H;
        entry->overwrites_input = 1u << 0 | 1u << 1; /* gx, gh: see grad_store */
    }
    graph_check_finite(g, "lstm_step", out);
    return out;
}

/* With dh', dc' the gradients of the new state:
 *   dc = dc' + dh' o (1 - tanh(c')^2)      (c' reaches the loss two ways)
 *   do = dh' tanh(c')   di = dc g   dg = dc i   df = dc c   dc_prev += dc f
 *   da_{i,f,o} = d{i,f,o} s (1 - s),  da_g = dg (1 - g^2)
 * da (4H) is the gradient of gx and of gh alike, since a = gx + gh: it is
 * written; dc_prev is added to.  h reaches this op only through gh
 * (computed outside), so dh_prev gets nothing here. */
static void lstm_row_backward(int H, const float *restrict dh_new, const float *restrict dc_new,
                              const float *restrict saved, const float *restrict c,
                              float *restrict da, float *restrict dc_prev) {
    /* the five saved rows i, f, g, o, tanh(c'), each (H) */
    const float *si = saved, *sf = saved + H, *sg = saved + 2 * H, *so = saved + 3 * H;
    const float *stc = saved + 4 * H;
    for (int j = 0; j < H; j++) {
        float i = si[j], f = sf[j], gc = sg[j], o = so[j], tc = stc[j];
        float dc = dc_new[j] + dh_new[j] * o * (1.0f - tc * tc);
        da[j] = dc * gc * i * (1.0f - i);
        da[H + j] = dc * c[j] * f * (1.0f - f);
        da[2 * H + j] = dc * i * (1.0f - gc * gc);
        da[3 * H + j] = dh_new[j] * tc * o * (1.0f - o);
        dc_prev[j] += dc * f;
    }
}

/* Every row: dy (2, B, H) the gradient of [h', c'].  Writes da (B, 4H)
 * (zeros for a padded row) and adds into dstate's c part the path dc f; a
 * padded row, whose state passed through, adds all of dy to dstate. */
static void lstm_rows_backward(int B, int H, const float *dy, const float *saved,
                               const float *state, const int *active, float *da, float *dstate) {
    size_t part = (size_t)B * H;
    for (int b = 0; b < B; b++) {
        const float *dh_new = dy + (size_t)b * H, *dc_new = dy + part + (size_t)b * H;
        float *dh = dstate + (size_t)b * H, *dc = dstate + part + (size_t)b * H;
        if (active != NULL && !active[b]) {
            for (int j = 0; j < H; j++) dh[j] += dh_new[j], dc[j] += dc_new[j];
            memset(da + (size_t)b * 4 * H, 0, (size_t)4 * H * sizeof(float));
            continue;
        }
        lstm_row_backward(H, dh_new, dc_new, saved + (size_t)b * 5 * H, state + part + (size_t)b * H,
                          da + (size_t)b * 4 * H, dc);
    }
}

static void lstm_step_backward(TapeEntry *entry) {
    Tensor *gx = entry->inputs[0], *gh = entry->inputs[1], *state = entry->inputs[2];
    int B = entry->int_args[0], H = entry->int_args[1];
    size_t gates = (size_t)B * 4 * H;
    float *da = scratch_row(gates + (size_t)2 * B * H);
    float *dstate = state->grad ? state->grad : da + gates; /* see scratch_row */
    lstm_rows_backward(B, H, entry->out->grad, entry->saved, state->data, entry->indices, da, dstate);
    grad_store(gx, da, gates);
    grad_store(gh, da, gates);
}

/* ======================================================================== */
/* A whole layer over a sequence: backpropagation through time in one op     */
/* ======================================================================== */

/* Why.  Run step by step, each time step is two linear ops, a cell op and a
 * few views, and each step's (B, G*H) gates and their gradients pass
 * through memory on their way from one op to the next.  When every input of
 * the sequence is known before the first step (the encoder; the decoder
 * under full teacher forcing), one op can run all S steps, as
 * torch.nn.GRU/LSTM do, and its backward is backpropagation through time
 * written out, as in the equations below.  Every product of a step works on
 * that step's gates while they are still in cache: measured, that is faster
 * than one big input projection for all S steps before the loop, whose
 * (S*B, G*H) result and gradient go out to memory and back.  It reuses the
 * cell functions above, row for row; tests/test_seq2seq.c checks it against
 * the step ops and against finite differences. */

static void recurrent_layer_backward(TapeEntry *entry);

/* What the layer's backward needs besides its tensor inputs x and state0. */
typedef struct {
    int cell, S, B, H, In;
    /* W_ih, b_ih, W_hh, b_hh: parameters, whose gradients are plain buffers
     * zeroed by params_zero_grad, so the tape need not know about them */
    Seq2seqRecurrentLayer weights;
    const float *packed_ih, *packed_hh; /* each weight packed by linear_pack_weight */
    float *saved; /* (S, B, 5H) LSTM or (S, B, 4H) GRU: the cell's saved values */
    int *active;  /* (S, B) copy, or NULL                                     */
} RecurrentLayer;

static int saved_per_row(int cell, int H) { return (cell == SEQ2SEQ_LSTM ? 5 : GRU_SAVED) * H; }

/* For t = 0 .. S-1, with state_{-1} = state0 and x_t rows t*B.. of x:
 *   gx_t    = x_t W_ih^T + b_ih                     (B, In) @ (In, G*H)
 *   gh_t    = h_{t-1} W_hh^T + b_hh                 (B, H) @ (H, G*H)
 *   state_t = cell(gx_t, gh_t, state_{t-1})         seq2seq_gru_step / _lstm_step's equations
 * x (S*B, In), state0 (P, B, H), active (S, B) or NULL.  Returns every
 * state_t: (S, P, B, H). */
Tensor *seq2seq_recurrent_layer(Graph *g, int cell, const Seq2seqRecurrentLayer *weights,
                                Tensor *x, Tensor *state0, const int *active) {
    int P = cell == SEQ2SEQ_LSTM ? 2 : 1, G = cell == SEQ2SEQ_LSTM ? 4 : 3;
    const Tensor *w_ih = weights->input_gates.weight, *w_hh = weights->hidden_gates.weight;
    tensor_check_shapes(state0->ndim == 3 && state0->shape[0] == P, "recurrent_layer", state0,
                        NULL, "state0 must be (P, B, H): P = 2 for an LSTM, 1 for a GRU");
    int B = state0->shape[1], H = state0->shape[2], In = x->shape[x->ndim - 1];
    tensor_check_shapes(w_hh->ndim == 2 && w_hh->shape[0] == G * H && w_hh->shape[1] == H,
                        "recurrent_layer", w_hh, state0, "W_hh must be (G*H, H)");
    tensor_check_shapes(w_ih->ndim == 2 && w_ih->shape[0] == G * H && w_ih->shape[1] == In,
                        "recurrent_layer", w_ih, x, "W_ih must be (G*H, In), In = x's last dimension");
    tensor_check_shapes(x->numel % (B * In) == 0, "recurrent_layer", x, state0, "x must be (S*B, In)");
    int S = x->numel / (B * In);
    bool grad = graph_needs_grad(g, x, state0, weights->hidden_gates.weight) ||
                graph_needs_grad(g, weights->input_gates.weight, weights->input_gates.bias,
                                 weights->hidden_gates.bias);
    Tensor *out = tensor_empty(g, 4, (const int[]){S, P, B, H}, grad, "recurrent_layer");
    RecurrentLayer *layer = arena_alloc(&g->arena, sizeof *layer);
    *layer = (RecurrentLayer){
        .cell = cell, .S = S, .B = B, .H = H, .In = In, .weights = *weights,
        /* each weight multiplies at every step: packed for matmul once here */
        .packed_ih = linear_pack_weight(g, w_ih), .packed_hh = linear_pack_weight(g, w_hh),
        .saved = arena_alloc(&g->arena, (size_t)S * B * saved_per_row(cell, H) * sizeof(float)),
        .active = active ? keep_active(g, active, S * B) : NULL};
    size_t state_size = (size_t)P * B * H, gates = (size_t)B * G * H;
    /* (B, G*H) gx_t and gh_t, one step at a time: what backward needs of
     * them is saved by the cell */
    float *gx = arena_alloc(&g->arena, 2 * gates * sizeof(float)), *gh = gx + gates;
    for (int t = 0; t < S; t++) {
        const float *prev = t == 0 ? state0->data : out->data + (t - 1) * state_size; /* (P, B, H) */
        linear_rows(B, x->data + (size_t)t * B * In, w_ih, layer->packed_ih,
                    weights->input_gates.bias, gx);
        linear_rows(B, prev, w_hh, layer->packed_hh, weights->hidden_gates.bias, gh);
        const int *active_t = active ? active + (size_t)t * B : NULL;
        float *next = out->data + t * state_size, *saved = layer->saved + (size_t)t * B * saved_per_row(cell, H);
        if (cell == SEQ2SEQ_LSTM) lstm_rows_forward(B, H, gx, gh, prev, active_t, next, saved);
        else gru_rows_forward(B, H, gx, gh, prev, active_t, next, saved);
    }
    if (grad) {
        TapeEntry *entry = graph_record_custom(g, "recurrent_layer", recurrent_layer_backward, out,
                                               x, state0, NULL);
        entry->context = layer;
        entry->overwrites_input = 1u << 0; /* x: see recurrent_layer_backward */
    }
    graph_check_finite(g, "recurrent_layer", out);
    return out;
}

/* Backpropagation through time.  out's gradient arrives holding, for each
 * step t, d(loss)/d(state_t) from outside the layer (whatever read the
 * states).  Walking t = S-1 .. 0, each step adds what it sends back to
 * state_{t-1} into row t-1 of that same buffer, so the row is complete when
 * the walk reaches it (the buffer is this op's own; nothing reads it later):
 *   dgx_t, dgh_t   = the cell's backward at step t       (cells above)
 *   dstate_{t-1}  += the cell's direct path              (GRU dh' z, LSTM dc f)
 *   dh_{t-1}      += dgh_t W_hh       dW_hh += dgh_t^T h_{t-1}     db_hh += rows of dgh_t
 *   dx_t           = dgx_t W_ih       dW_ih += dgx_t^T x_t         db_ih += rows of dgx_t
 * dx_t is written, not added: model.c makes x for this layer alone (when
 * something else has added to x's gradient, tensor_grad_overwrite says so
 * and it is added to).  For an LSTM dgh_t = dgx_t, since a = gx + gh. */
static void recurrent_layer_backward(TapeEntry *entry) {
    Tensor *x = entry->inputs[0], *state0 = entry->inputs[1];
    const RecurrentLayer *layer = entry->context;
    const Linear *input_gates = &layer->weights.input_gates, *hidden_gates = &layer->weights.hidden_gates;
    int cell = layer->cell, S = layer->S, B = layer->B, H = layer->H, In = layer->In;
    int P = cell == SEQ2SEQ_LSTM ? 2 : 1, G = cell == SEQ2SEQ_LSTM ? 4 : 3;
    size_t state_size = (size_t)P * B * H, gates = (size_t)B * G * H;
    bool add_to_dx = x->grad && !tensor_grad_overwrite(x);
    /* dgx_t, the GRU's dgh_t, and the gradient of a state0 that has none:
     * see scratch_row */
    float *dgx = scratch_row(2 * gates + state_size);
    float *dgh = cell == SEQ2SEQ_LSTM ? dgx : dgx + gates, *dstate_scratch = dgx + 2 * gates;
    for (int t = S - 1; t >= 0; t--) {
        const float *prev = t == 0 ? state0->data : entry->out->data + (t - 1) * state_size;
        float *dprev = t > 0 ? entry->out->grad + (t - 1) * state_size
                             : state0->grad ? state0->grad : dstate_scratch;
        const float *dy = entry->out->grad + t * state_size;                     /* (P, B, H) */
        const float *saved = layer->saved + (size_t)t * B * saved_per_row(cell, H);
        const int *active_t = layer->active ? layer->active + (size_t)t * B : NULL;
        if (cell == SEQ2SEQ_LSTM) lstm_rows_backward(B, H, dy, saved, prev, active_t, dgx, dprev);
        else gru_rows_backward(B, H, dy, saved, prev, active_t, dgx, dgh, dprev);
        /* through W_hh to h_{t-1} (nowhere when t = 0 and state0 has no gradient) */
        linear_rows_backward(B, dgh, prev, hidden_gates->weight, layer->packed_hh,
                             hidden_gates->bias, t > 0 || state0->grad ? dprev : NULL, true);
        /* through W_ih to x_t */
        linear_rows_backward(B, dgx, x->data + (size_t)t * B * In, input_gates->weight,
                             layer->packed_ih, input_gates->bias,
                             x->grad ? x->grad + (size_t)t * B * In : NULL, add_to_dx);
    }
}

/* ======================================================================== */
/* Bahdanau's additive attention score                                       */
/* ======================================================================== */

static void additive_scores_backward(TapeEntry *entry);

/* scores[b, j] = sum_a v[a] tanh(keys[b, j, a] + query[b, a]).
 * One op instead of broadcast-add, tanh, matmul: the (B, S, A) sum is never
 * stored apart from its tanh, which backward needs. */
Tensor *seq2seq_additive_scores(Graph *g, Tensor *keys, Tensor *query, Tensor *v) {
    tensor_check_shapes(keys->ndim == 3, "additive_scores", keys, NULL, "keys must be (B, S, A)");
    int B = keys->shape[0], S = keys->shape[1], A = keys->shape[2];
    tensor_check_shapes(query->numel == B * A, "additive_scores", query, keys, "query must be (B, A)");
    tensor_check_shapes(v->numel == A, "additive_scores", v, keys, "v must be (A)");
    bool grad = graph_needs_grad(g, keys, query, v);
    Tensor *out = tensor_of(g, grad, 2, B, S); /* (B, S) */
    out->name = "additive_scores";
    /* (B, S, A) tanh(keys + query), saved for backward */
    float *activations = arena_alloc(&g->arena, (size_t)keys->numel * sizeof(float));
    for (int b = 0; b < B; b++) {
        const float *q = query->data + (size_t)b * A;
        for (int j = 0; j < S; j++) {
            const float *k = keys->data + ((size_t)b * S + j) * A;
            float *t = activations + ((size_t)b * S + j) * A;
            float score = 0;
            for (int a = 0; a < A; a++) {
                t[a] = tanh_approx(k[a] + q[a]);
                score += v->data[a] * t[a];
            }
            out->data[b * S + j] = score;
        }
    }
    if (grad) {
        TapeEntry *entry =
            graph_record_custom(g, "additive_scores", additive_scores_backward, out, keys, query, v);
        entry->saved = activations;
    }
    graph_check_finite(g, "additive_scores", out);
    return out;
}

/* With t = tanh(keys + query) and ds the gradient of a score:
 *   dv += ds t      d(keys + query) = ds v (1 - t^2)  -> dkeys += it, dquery += it (summed over j) */
static void additive_scores_backward(TapeEntry *entry) {
    Tensor *keys = entry->inputs[0], *query = entry->inputs[1], *v = entry->inputs[2];
    int B = keys->shape[0], S = keys->shape[1], A = keys->shape[2];
    for (int b = 0; b < B; b++) {
        float *dq = query->grad ? query->grad + (size_t)b * A : NULL;
        for (int j = 0; j < S; j++) {
            float ds = entry->out->grad[b * S + j];
            if (ds == 0.0f) continue; /* masked positions */
            const float *t = entry->saved + ((size_t)b * S + j) * A;
            float *dk = keys->grad ? keys->grad + ((size_t)b * S + j) * A : NULL;
            for (int a = 0; a < A; a++) {
                float d_sum = ds * v->data[a] * (1.0f - t[a] * t[a]);
                if (v->grad) v->grad[a] += ds * t[a];
                if (dk) dk[a] += d_sum;
                if (dq) dq[a] += d_sum;
            }
        }
    }
}

/* ---- Luong's dot score and the context: one row of products per example --
 * As batched matmuls these are B products of one row each, (1, H) @ (H, S)
 * and (1, S) @ (S, H), too small for the blocked kernel's packing to pay
 * off; these loops read each key or memory row once. */

static void dot_scores_backward(TapeEntry *entry);

/* scores[b, j] = keys[b, j] . query[b]:  keys (B, S, H), query (B, H) -> (B, S) */
Tensor *seq2seq_dot_scores(Graph *g, Tensor *keys, Tensor *query) {
    tensor_check_shapes(keys->ndim == 3, "dot_scores", keys, NULL, "keys must be (B, S, H)");
    int B = keys->shape[0], S = keys->shape[1], H = keys->shape[2];
    tensor_check_shapes(query->numel == B * H, "dot_scores", query, keys, "query must be (B, H)");
    bool grad = graph_needs_grad(g, keys, query, NULL);
    Tensor *out = tensor_of(g, grad, 2, B, S); /* (B, S) */
    out->name = "dot_scores";
    for (int b = 0; b < B; b++)
        for (int j = 0; j < S; j++) {
            const float *k = keys->data + ((size_t)b * S + j) * H, *q = query->data + (size_t)b * H;
            float score = 0;
            for (int i = 0; i < H; i++) score += k[i] * q[i];
            out->data[b * S + j] = score;
        }
    if (grad) graph_record_custom(g, "dot_scores", dot_scores_backward, out, keys, query, NULL);
    graph_check_finite(g, "dot_scores", out);
    return out;
}

/* s = k . q:  dk += ds q,  dq += ds k */
static void dot_scores_backward(TapeEntry *entry) {
    Tensor *keys = entry->inputs[0], *query = entry->inputs[1];
    int B = keys->shape[0], S = keys->shape[1], H = keys->shape[2];
    for (int b = 0; b < B; b++)
        for (int j = 0; j < S; j++) {
            float ds = entry->out->grad[b * S + j];
            if (ds == 0.0f) continue; /* masked positions */
            size_t row = ((size_t)b * S + j) * H;
            if (keys->grad)
                for (int i = 0; i < H; i++) keys->grad[row + i] += ds * query->data[(size_t)b * H + i];
            if (query->grad)
                for (int i = 0; i < H; i++) query->grad[(size_t)b * H + i] += ds * keys->data[row + i];
        }
}

static void context_backward(TapeEntry *entry);

/* context[b] = sum_j weights[b, j] memory[b, j]:  (B, S), (B, S, H) -> (B, H) */
Tensor *seq2seq_context(Graph *g, Tensor *weights, Tensor *memory) {
    tensor_check_shapes(memory->ndim == 3, "context", memory, NULL, "memory must be (B, S, H)");
    int B = memory->shape[0], S = memory->shape[1], H = memory->shape[2];
    tensor_check_shapes(weights->numel == B * S, "context", weights, memory, "weights must be (B, S)");
    bool grad = graph_needs_grad(g, weights, memory, NULL);
    Tensor *out = tensor_of(g, grad, 2, B, H); /* (B, H), zeroed */
    out->name = "context";
    for (int b = 0; b < B; b++)
        for (int j = 0; j < S; j++) {
            float w = weights->data[b * S + j];
            if (w == 0.0f) continue; /* masked positions */
            const float *m = memory->data + ((size_t)b * S + j) * H;
            float *c = out->data + (size_t)b * H;
            for (int i = 0; i < H; i++) c[i] += w * m[i];
        }
    if (grad) graph_record_custom(g, "context", context_backward, out, weights, memory, NULL);
    graph_check_finite(g, "context", out);
    return out;
}

/* c = sum_j w_j m_j:  dw_j += dc . m_j,  dm_j += w_j dc */
static void context_backward(TapeEntry *entry) {
    Tensor *weights = entry->inputs[0], *memory = entry->inputs[1];
    int B = memory->shape[0], S = memory->shape[1], H = memory->shape[2];
    for (int b = 0; b < B; b++) {
        const float *dc = entry->out->grad + (size_t)b * H;
        for (int j = 0; j < S; j++) {
            size_t row = ((size_t)b * S + j) * H;
            if (weights->grad) {
                float dw = 0;
                for (int i = 0; i < H; i++) dw += dc[i] * memory->data[row + i];
                weights->grad[b * S + j] += dw;
            }
            float w = weights->data[b * S + j];
            if (memory->grad && w != 0.0f)
                for (int i = 0; i < H; i++) memory->grad[row + i] += w * dc[i];
        }
    }
}

/* ======================================================================== */
/* Moving states around                                                      */
/* ======================================================================== */

static void hidden_states_backward(TapeEntry *entry);

/* states (S, P, B, H) -> h (S, B, H), or (B, S, H) when batch_major:
 *   out[s, b] (or out[b, s]) = states[s, 0, b]. */
Tensor *seq2seq_hidden_states(Graph *g, Tensor *states, bool batch_major) {
    tensor_check_shapes(states->ndim == 4, "hidden_states", states, NULL,
                        "states must be (S, P, B, H)");
    int S = states->shape[0], P = states->shape[1], B = states->shape[2], H = states->shape[3];
    bool grad = graph_needs_grad(g, states, NULL, NULL);
    int shape[3] = {batch_major ? B : S, batch_major ? S : B, H}; /* (B, S, H) or (S, B, H) */
    Tensor *out = tensor_empty(g, 3, shape, grad, "hidden_states"); /* every row copied below */
    for (int s = 0; s < S; s++)
        for (int b = 0; b < B; b++) {
            size_t to = batch_major ? ((size_t)b * S + s) * H : ((size_t)s * B + b) * H;
            memcpy(out->data + to, states->data + ((size_t)s * P * B + b) * H, (size_t)H * sizeof(float));
        }
    if (grad) {
        TapeEntry *entry = graph_record_custom(g, "hidden_states", hidden_states_backward, out,
                                               states, NULL, NULL);
        entry->int_args[0] = batch_major;
        entry->overwrites_input = 1u << 0; /* see hidden_states_backward */
    }
    return out;
}

/* A copy: each h element receives the gradient of its copy.  When nothing
 * has reached the states' gradient yet (the usual case: this is their one
 * reader), it is written instead: the h parts copied, the other parts
 * (an LSTM's c) zeroed, which saves zeroing the h parts first. */
static void hidden_states_backward(TapeEntry *entry) {
    Tensor *states = entry->inputs[0];
    int S = states->shape[0], P = states->shape[1], B = states->shape[2], H = states->shape[3];
    bool batch_major = entry->int_args[0];
    bool overwrite = tensor_grad_overwrite(states);
    for (int s = 0; s < S; s++) {
        if (overwrite) /* parts 1..P-1 of step s */
            memset(states->grad + ((size_t)s * P + 1) * B * H, 0, (size_t)(P - 1) * B * H * sizeof(float));
        for (int b = 0; b < B; b++) {
            size_t from = batch_major ? ((size_t)b * S + s) * H : ((size_t)s * B + b) * H;
            float *dst = states->grad + ((size_t)s * P * B + b) * H;
            if (overwrite) memcpy(dst, entry->out->grad + from, (size_t)H * sizeof(float));
            else for (int j = 0; j < H; j++) dst[j] += entry->out->grad[from + j];
        }
    }
}

static void copy_into_backward(TapeEntry *entry);

Tensor *seq2seq_copy_into(Graph *g, Tensor *src, Tensor *dst) {
    tensor_check_shapes(src->numel == dst->numel, "copy_into", src, dst,
                        "source and destination need the same number of elements");
    memcpy(dst->data, src->data, (size_t)src->numel * sizeof(float));
    if (graph_needs_grad(g, src, NULL, NULL)) {
        if (dst->grad == NULL) fatal("copy_into: the destination has no gradient");
        graph_record_custom(g, "copy_into", copy_into_backward, dst, src, NULL, NULL);
    }
    return dst;
}

/* dst = src:  dsrc += ddst */
static void copy_into_backward(TapeEntry *entry) {
    Tensor *src = entry->inputs[0];
    for (int i = 0; i < src->numel; i++) src->grad[i] += entry->out->grad[i];
}
