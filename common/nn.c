/* common/nn.c: parameters, initializers, layers, optimizers and schedules.
 *
 * Legend: In/Out a Linear's sizes, Hd a recurrent cell's hidden size,
 * B batch, C features, V vocabulary.
 */
#include "nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ======================================================================== */
/* Parameters: declare, then carve one block                                 */
/* ======================================================================== */

void params_init(ParamSet *ps) {
    memset(ps, 0, sizeof *ps);
}

Tensor *params_add(ParamSet *ps, const char *name, int ndim, const int *shape, bool decay) {
    if (ps->allocated) fatal("params_add(%s): declare every parameter before params_allocate", name);
    if (ps->count == PARAMS_MAX_TENSORS) fatal("params_add(%s): more than %d tensors", name, PARAMS_MAX_TENSORS);
    if (strlen(name) >= PARAM_NAME_MAX) fatal("params_add: name '%s' is too long", name);
    if (params_find(ps, name) >= 0) fatal("params_add: '%s' is declared twice", name);
    int index = ps->count++;
    Tensor *t = &ps->tensors[index];
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < TENSOR_MAX_DIMS; i++) {
        t->shape[i] = i < ndim ? shape[i] : 1;
        if (i < ndim) t->numel *= shape[i];
    }
    if (ndim < 1 || ndim > TENSOR_MAX_DIMS || t->numel < 1)
        fatal("params_add(%s): bad shape with %d dimensions", name, ndim);
    snprintf(ps->names[index], PARAM_NAME_MAX, "%s", name);
    t->name = ps->names[index];
    ps->decay[index] = decay;
    ps->total += (size_t)t->numel;
    return t;
}

void params_allocate(ParamSet *ps) {
    if (ps->allocated) fatal("params_allocate: called twice");
    ps->values = xcalloc(ps->total, sizeof(float));
    ps->grads = xcalloc(ps->total, sizeof(float));
    size_t offset = 0;
    for (int i = 0; i < ps->count; i++) {
        ps->tensors[i].data = ps->values + offset;
        ps->tensors[i].grad = ps->grads + offset;
        offset += (size_t)ps->tensors[i].numel;
    }
    ps->allocated = true;
}

void params_free(ParamSet *ps) {
    free(ps->values);
    free(ps->grads);
    params_init(ps);
}

void params_zero_grad(ParamSet *ps) {
    memset(ps->grads, 0, ps->total * sizeof(float));
}

int params_find(const ParamSet *ps, const char *name) {
    for (int i = 0; i < ps->count; i++)
        if (strcmp(ps->names[i], name) == 0) return i;
    return -1;
}

/* g <- g * min(1, max_norm / ||g||), ||g|| over all parameters together. */
float params_clip_grad_norm(ParamSet *ps, float max_norm) {
    double squares = 0;
    for (size_t i = 0; i < ps->total; i++) squares += (double)ps->grads[i] * ps->grads[i];
    float norm = (float)sqrt(squares);
    if (max_norm > 0 && norm > max_norm) {
        float scale = max_norm / norm;
        for (size_t i = 0; i < ps->total; i++) ps->grads[i] *= scale;
    }
    return norm;
}

/* ======================================================================== */
/* Initializers                                                               */
/* ======================================================================== */

void init_uniform(Tensor *t, float low, float high, Rng *rng) {
    for (int i = 0; i < t->numel; i++) t->data[i] = low + (high - low) * rng_uniform(rng);
}

/* Glorot & Bengio (2010): keeps the variance of activations and gradients
 * about equal across layers for tanh/sigmoid networks. */
void init_xavier_uniform(Tensor *t, int fan_in, int fan_out, Rng *rng) {
    float bound = sqrtf(6.0f / (float)(fan_in + fan_out));
    init_uniform(t, -bound, bound, rng);
}

/* He et al. (2015): ReLU zeroes half its inputs, so double the variance. */
void init_kaiming_normal(Tensor *t, int fan_in, Rng *rng) {
    init_normal(t, sqrtf(2.0f / (float)fan_in), rng);
}

void init_normal(Tensor *t, float std, Rng *rng) {
    for (int i = 0; i < t->numel; i++) t->data[i] = std * rng_normal(rng);
}

void init_constant(Tensor *t, float value) {
    for (int i = 0; i < t->numel; i++) t->data[i] = value;
}

/* ======================================================================== */
/* Layers                                                                     */
/* ======================================================================== */

static void join_name(char *out, const char *prefix, const char *suffix) {
    snprintf(out, PARAM_NAME_MAX, "%s.%s", prefix, suffix);
}

Linear linear_declare(ParamSet *ps, const char *name, int in, int out, bool with_bias) {
    char full[PARAM_NAME_MAX];
    Linear layer = {0};
    join_name(full, name, "weight");
    layer.weight = params_add_of(ps, full, true, 2, out, in);
    if (with_bias) {
        join_name(full, name, "bias");
        layer.bias = params_add_of(ps, full, false, 1, out);
    }
    return layer;
}

void linear_init(Linear *layer, Rng *rng) {
    float bound = 1.0f / sqrtf((float)layer->weight->shape[1]);
    init_uniform(layer->weight, -bound, bound, rng);
    if (layer->bias) init_uniform(layer->bias, -bound, bound, rng);
}

/* y = x W^T + b:  x (..., In) @ W^T (In, Out) -> (..., Out) */
Tensor *linear_forward(Graph *g, const Linear *layer, Tensor *x) {
    return op_linear(g, x, layer->weight, layer->bias); /* (..., Out) */
}

Embedding embedding_declare(ParamSet *ps, const char *name, int vocab, int dim) {
    char full[PARAM_NAME_MAX];
    join_name(full, name, "weight");
    return (Embedding){.table = params_add_of(ps, full, true, 2, vocab, dim)};
}

Tensor *embedding_forward(Graph *g, const Embedding *layer, const int *ids, int count) {
    return op_gather_rows(g, layer->table, ids, count); /* (count, C) */
}

LayerNorm layernorm_declare(ParamSet *ps, const char *name, int dim) {
    char full[PARAM_NAME_MAX];
    LayerNorm layer = {.epsilon = 1e-5f}; /* PyTorch's default */
    join_name(full, name, "weight");
    layer.gamma = params_add_of(ps, full, false, 1, dim);
    join_name(full, name, "bias");
    layer.beta = params_add_of(ps, full, false, 1, dim);
    return layer;
}

void layernorm_init(LayerNorm *layer) {
    init_constant(layer->gamma, 1.0f);
    init_constant(layer->beta, 0.0f);
}

Tensor *layernorm_forward(Graph *g, const LayerNorm *layer, Tensor *x) {
    return op_layernorm(g, x, layer->gamma, layer->beta, layer->epsilon);
}

/* ---- GRU cell ---------------------------------------------------------------
 * Names follow torch.nn.GRUCell (weight_ih, weight_hh, bias_ih, bias_hh), so a
 * checkpoint maps one to one onto PyTorch's parameters. */

static void recurrent_declare(ParamSet *ps, const char *name, int in, int hidden, int gates,
                              Linear *input_gates, Linear *hidden_gates) {
    char full[PARAM_NAME_MAX];
    join_name(full, name, "weight_ih");
    input_gates->weight = params_add_of(ps, full, true, 2, gates * hidden, in);
    join_name(full, name, "bias_ih");
    input_gates->bias = params_add_of(ps, full, false, 1, gates * hidden);
    join_name(full, name, "weight_hh");
    hidden_gates->weight = params_add_of(ps, full, true, 2, gates * hidden, hidden);
    join_name(full, name, "bias_hh");
    hidden_gates->bias = params_add_of(ps, full, false, 1, gates * hidden);
}

/* PyTorch's recurrent default: everything U(-1/sqrt(Hd), 1/sqrt(Hd)). */
static void recurrent_init(Linear *input_gates, Linear *hidden_gates, int hidden, Rng *rng) {
    float bound = 1.0f / sqrtf((float)hidden);
    init_uniform(input_gates->weight, -bound, bound, rng);
    init_uniform(input_gates->bias, -bound, bound, rng);
    init_uniform(hidden_gates->weight, -bound, bound, rng);
    init_uniform(hidden_gates->bias, -bound, bound, rng);
}

GRUCell gru_cell_declare(ParamSet *ps, const char *name, int in, int hidden) {
    GRUCell cell = {.hidden = hidden};
    recurrent_declare(ps, name, in, hidden, 3, &cell.input_gates, &cell.hidden_gates);
    return cell;
}

void gru_cell_init(GRUCell *cell, Rng *rng) {
    recurrent_init(&cell->input_gates, &cell->hidden_gates, cell->hidden, rng);
}

Tensor *gru_cell_forward(Graph *g, const GRUCell *cell, Tensor *x, Tensor *h) {
    /* EXERCISE gru_cell: the same GRU step as seq2seq/cells.c's, built from autograd ops (linear,
     * slices, sigmoid, tanh, add, mul), one line per equation; x (B, In), h (B, Hd) -> h' (B, Hd)
     * STUB: (void)cell, (void)x;
     * STUB: exercise_missing("gru_cell");
     * STUB: return tensor_new(g, h->ndim, h->shape, false); */
    int Hd = cell->hidden;
    Tensor *gates_x = linear_forward(g, &cell->input_gates, x);  /* (B, 3Hd) */
    Tensor *gates_h = linear_forward(g, &cell->hidden_gates, h); /* (B, 3Hd) */
    /* r, z: sigmoid(W_i. x + b_i. + W_h. h + b_h.) */
    Tensor *r = op_sigmoid(g, op_add(g, op_slice_columns(g, gates_x, 0, Hd),
                                     op_slice_columns(g, gates_h, 0, Hd))); /* (B, Hd) */
    Tensor *z = op_sigmoid(g, op_add(g, op_slice_columns(g, gates_x, Hd, Hd),
                                     op_slice_columns(g, gates_h, Hd, Hd))); /* (B, Hd) */
    /* n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) */
    Tensor *n = op_tanh(g, op_add(g, op_slice_columns(g, gates_x, 2 * Hd, Hd),
                                  op_mul(g, r, op_slice_columns(g, gates_h, 2 * Hd, Hd))));
    /* h' = (1 - z) * n + z * h = n + z * (h - n) */
    return op_add(g, n, op_mul(g, z, op_sub(g, h, n))); /* (B, Hd) */
    /* END EXERCISE */
}

/* ---- LSTM cell (torch.nn.LSTMCell names and gate order i, f, g, o) ---------- */

LSTMCell lstm_cell_declare(ParamSet *ps, const char *name, int in, int hidden) {
    LSTMCell cell = {.hidden = hidden};
    recurrent_declare(ps, name, in, hidden, 4, &cell.input_gates, &cell.hidden_gates);
    return cell;
}

void lstm_cell_init(LSTMCell *cell, Rng *rng) {
    recurrent_init(&cell->input_gates, &cell->hidden_gates, cell->hidden, rng);
}

void lstm_cell_forward(Graph *g, const LSTMCell *cell, Tensor *x, Tensor *h, Tensor *c,
                       Tensor **h_out, Tensor **c_out) {
    int Hd = cell->hidden;
    Tensor *gates = op_add(g, linear_forward(g, &cell->input_gates, x),
                           linear_forward(g, &cell->hidden_gates, h)); /* (B, 4Hd) */
    Tensor *input_gate = op_sigmoid(g, op_slice_columns(g, gates, 0, Hd));      /* i (B, Hd) */
    Tensor *forget_gate = op_sigmoid(g, op_slice_columns(g, gates, Hd, Hd));    /* f (B, Hd) */
    Tensor *candidate = op_tanh(g, op_slice_columns(g, gates, 2 * Hd, Hd));     /* g (B, Hd) */
    Tensor *output_gate = op_sigmoid(g, op_slice_columns(g, gates, 3 * Hd, Hd)); /* o (B, Hd) */
    /* c' = f * c + i * g;  h' = o * tanh(c') */
    *c_out = op_add(g, op_mul(g, forget_gate, c), op_mul(g, input_gate, candidate));
    *h_out = op_mul(g, output_gate, op_tanh(g, *c_out));
}

/* ======================================================================== */
/* Optimizers: one flat loop over every parameter                             */
/* ======================================================================== */

const char *optimizer_name(OptimizerKind kind) {
    switch (kind) {
    case OPTIMIZER_SGD: return "sgd";
    case OPTIMIZER_ADAM: return "adam";
    default: return "adamw";
    }
}

void optimizer_init(Optimizer *opt, OptimizerKind kind, const ParamSet *ps) {
    if (!ps->allocated) fatal("optimizer_init: allocate the parameters first");
    memset(opt, 0, sizeof *opt);
    opt->kind = kind;
    opt->momentum = 0.9f;
    opt->beta1 = 0.9f;
    opt->beta2 = 0.999f;
    opt->epsilon = 1e-8f;
    opt->total = ps->total;
    opt->moment1 = xcalloc(ps->total, sizeof(float));
    opt->moment2 = kind == OPTIMIZER_SGD ? NULL : xcalloc(ps->total, sizeof(float));
}

void optimizer_free(Optimizer *opt) {
    free(opt->moment1);
    free(opt->moment2);
    memset(opt, 0, sizeof *opt);
}

/* SGD with momentum (PyTorch's form, dampening 0):
 *   g <- grad + wd * w;  v <- momentum * v + g;  w <- w - lr * v */
static void sgd_update(Optimizer *opt, float *w, const float *grad, float *velocity, size_t n,
                       float decay, float lr) {
    for (size_t i = 0; i < n; i++) {
        float gradient = grad[i] + decay * w[i];
        velocity[i] = opt->momentum * velocity[i] + gradient;
        w[i] -= lr * velocity[i];
    }
}

/* Adam (Kingma & Ba 2015), and AdamW (Loshchilov & Hutter 2019):
 *   Adam:  g <- grad + wd * w          (L2 folded into the gradient)
 *   AdamW: w <- w - lr * wd * w        (decay decoupled from the moments)
 *   m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
 *   w <- w - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * The last line is evaluated as PyTorch does, with the corrections folded
 * into two scalars:  w -= (lr / c1) * m / (sqrt(v) / sqrt(c2) + eps).
 * Two loops (one per variant) with restrict pointers and no branch inside,
 * so the compiler vectorizes them: this runs over every parameter every step. */
static void adam_update(Optimizer *opt, float *restrict w, const float *restrict grad,
                        float *restrict m, float *restrict v, size_t n, float decay, float lr) {
    /* EXERCISE adam_update: one Adam or AdamW step (opt->kind) on n weights, as in the comment
     * above; opt->step is already t (1 at the first update), m and v persist between steps.
     * STUB: (void)opt, (void)w, (void)grad, (void)m, (void)v, (void)n, (void)decay, (void)lr;
     * STUB: exercise_missing("adam_update"); */
    float step_size = lr / (1.0f - powf(opt->beta1, (float)opt->step));
    float sqrt_correction2 = sqrtf(1.0f - powf(opt->beta2, (float)opt->step));
    float beta1 = opt->beta1, beta2 = opt->beta2, epsilon = opt->epsilon;
    if (opt->kind == OPTIMIZER_ADAMW) {
        float shrink = 1.0f - lr * decay;
        for (size_t i = 0; i < n; i++) {
            w[i] *= shrink;
            m[i] = beta1 * m[i] + (1.0f - beta1) * grad[i];
            v[i] = beta2 * v[i] + (1.0f - beta2) * grad[i] * grad[i];
            w[i] -= step_size * m[i] / (sqrtf(v[i]) / sqrt_correction2 + epsilon);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float gradient = grad[i] + decay * w[i];
            m[i] = beta1 * m[i] + (1.0f - beta1) * gradient;
            v[i] = beta2 * v[i] + (1.0f - beta2) * gradient * gradient;
            w[i] -= step_size * m[i] / (sqrtf(v[i]) / sqrt_correction2 + epsilon);
        }
    }
    /* END EXERCISE */
}

void optimizer_step(Optimizer *opt, ParamSet *ps, float lr) {
    if (opt->total != ps->total) fatal("optimizer_step: optimizer and parameters differ in size");
    opt->step++;
    size_t offset = 0;
    /* Per tensor only to choose the decay: biases and LayerNorm gains are not
     * decayed, which is the usual choice for transformers. */
    for (int t = 0; t < ps->count; t++) {
        size_t n = (size_t)ps->tensors[t].numel;
        float decay = ps->decay[t] ? opt->weight_decay : 0.0f;
        float *w = ps->values + offset;
        const float *grad = ps->grads + offset;
        if (opt->kind == OPTIMIZER_SGD)
            sgd_update(opt, w, grad, opt->moment1 + offset, n, decay, lr);
        else
            adam_update(opt, w, grad, opt->moment1 + offset, opt->moment2 + offset, n, decay, lr);
        offset += n;
    }
}

/* ======================================================================== */
/* Learning-rate schedules                                                    */
/* ======================================================================== */

/* Warmup: lr = base * (step + 1) / warmup for step < warmup (never 0).
 * Then cosine: progress p = (step - warmup) / (total - 1 - warmup) in [0,1],
 *   lr = min + (base - min) * (1 + cos(pi p)) / 2,
 * so lr = base right after warmup and lr = min at the last step. */
float schedule_lr(const Schedule *schedule, long step) {
    if (schedule->kind == SCHEDULE_CONSTANT) return schedule->base_lr;
    if (step < schedule->warmup_steps)
        return schedule->base_lr * (float)(step + 1) / (float)schedule->warmup_steps;
    long decay_steps = schedule->total_steps - 1 - schedule->warmup_steps;
    if (decay_steps <= 0) return schedule->base_lr;
    double progress = (double)(step - schedule->warmup_steps) / (double)decay_steps;
    if (progress > 1) progress = 1;
    double cosine = 0.5 * (1.0 + cos(3.14159265358979323846 * progress));
    return schedule->min_lr + (schedule->base_lr - schedule->min_lr) * (float)cosine;
}
