/* common/nn.h: parameters, layers, initializers, optimizers, schedules.
 *
 * Legend: B batch, T time, C features, In/Out a Linear's input/output sizes,
 * Hd a recurrent cell's hidden size, V vocabulary.
 *
 * All of a model's parameters live in one ParamSet: one block of values and
 * one block of gradients, carved into named tensors (as llm.c does).  The
 * optimizer is then one loop over a flat array, zeroing gradients is one
 * memset, and a checkpoint writes the named tensors in order.
 */
#ifndef TINYZOO_NN_H
#define TINYZOO_NN_H

#include <stdbool.h>
#include <stddef.h>

#include "rng.h"
#include "tensor.h"

/* ---- Parameters --------------------------------------------------------- */

enum { PARAMS_MAX_TENSORS = 512, PARAM_NAME_MAX = 64 };

typedef struct {
    Tensor tensors[PARAMS_MAX_TENSORS]; /* data/grad point into the blocks   */
    char names[PARAMS_MAX_TENSORS][PARAM_NAME_MAX];
    bool decay[PARAMS_MAX_TENSORS]; /* weight decay applies (matrices only)  */
    int count;
    size_t total;   /* floats in all tensors                                 */
    float *values;  /* (total) every parameter, in declaration order         */
    float *grads;   /* (total) their gradients                               */
    bool allocated; /* after params_allocate, no more params_add             */
} ParamSet;

/* Two phases, so the block is allocated once at its final size:
 *   1. params_add() declares each tensor (data is NULL until step 2);
 *   2. params_allocate() carves the block; then initialize the values. */
void params_init(ParamSet *ps);
Tensor *params_add(ParamSet *ps, const char *name, int ndim, const int *shape, bool decay);
#define params_add_of(ps, name, decay, ndim, ...) \
    params_add((ps), (name), (ndim), (const int[]){__VA_ARGS__}, (decay))
void params_allocate(ParamSet *ps);
void params_free(ParamSet *ps);
void params_zero_grad(ParamSet *ps);
/* Index of the tensor called `name`, or -1. */
int params_find(const ParamSet *ps, const char *name);
/* Scales all gradients so that their global L2 norm is at most max_norm
 * (no-op when max_norm <= 0).  Returns the norm before clipping. */
float params_clip_grad_norm(ParamSet *ps, float max_norm);

/* ---- Initializers ------------------------------------------------------- */

/* Xavier/Glorot uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)). */
void init_xavier_uniform(Tensor *t, int fan_in, int fan_out, Rng *rng);
/* Kaiming/He normal for ReLU: N(0, 2 / fan_in). */
void init_kaiming_normal(Tensor *t, int fan_in, Rng *rng);
void init_normal(Tensor *t, float std, Rng *rng);
void init_uniform(Tensor *t, float low, float high, Rng *rng);
void init_constant(Tensor *t, float value);

/* ---- Layers: short functions built from ops ------------------------------ */

/* y = x W^T + b, as torch.nn.Linear.  weight (Out, In), bias (Out) or NULL. */
typedef struct {
    Tensor *weight; /* (Out, In) */
    Tensor *bias;   /* (Out) or NULL */
} Linear;
/* Declares "<name>.weight" and "<name>.bias" (when with_bias). */
Linear linear_declare(ParamSet *ps, const char *name, int in, int out, bool with_bias);
/* PyTorch's default: U(-1/sqrt(In), 1/sqrt(In)) for weight and bias. */
void linear_init(Linear *layer, Rng *rng);
/* x (..., In) -> (..., Out) */
Tensor *linear_forward(Graph *g, const Linear *layer, Tensor *x);

typedef struct {
    Tensor *table; /* (V, C) */
} Embedding;
Embedding embedding_declare(ParamSet *ps, const char *name, int vocab, int dim);
/* ids (count) -> (count, C) */
Tensor *embedding_forward(Graph *g, const Embedding *layer, const int *ids, int count);

typedef struct {
    Tensor *gamma; /* (C) scale, initialised to 1 */
    Tensor *beta;  /* (C) shift, initialised to 0 */
    float epsilon;
} LayerNorm;
LayerNorm layernorm_declare(ParamSet *ps, const char *name, int dim);
void layernorm_init(LayerNorm *layer);
/* x (..., C) -> (..., C) */
Tensor *layernorm_forward(Graph *g, const LayerNorm *layer, Tensor *x);

/* GRU cell with torch.nn.GRUCell's equations and gate order (r, z, n):
 *   r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
 *   z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
 *   n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
 *   h' = (1 - z) * n + z * h                                                */
typedef struct {
    Linear input_gates;  /* weight (3*Hd, In), the rows of r, z, n stacked */
    Linear hidden_gates; /* weight (3*Hd, Hd)                               */
    int hidden;
} GRUCell;
GRUCell gru_cell_declare(ParamSet *ps, const char *name, int in, int hidden);
/* PyTorch's default: every weight and bias U(-1/sqrt(Hd), 1/sqrt(Hd)). */
void gru_cell_init(GRUCell *cell, Rng *rng);
/* x (B, In), h (B, Hd) -> h' (B, Hd) */
Tensor *gru_cell_forward(Graph *g, const GRUCell *cell, Tensor *x, Tensor *h);

/* LSTM cell with torch.nn.LSTMCell's equations and gate order (i, f, g, o):
 *   i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)
 *   f = sigmoid(W_if x + b_if + W_hf h + b_hf)
 *   g = tanh   (W_ig x + b_ig + W_hg h + b_hg)
 *   o = sigmoid(W_io x + b_io + W_ho h + b_ho)
 *   c' = f * c + i * g
 *   h' = o * tanh(c')                                                       */
typedef struct {
    Linear input_gates;  /* weight (4*Hd, In) */
    Linear hidden_gates; /* weight (4*Hd, Hd) */
    int hidden;
} LSTMCell;
LSTMCell lstm_cell_declare(ParamSet *ps, const char *name, int in, int hidden);
void lstm_cell_init(LSTMCell *cell, Rng *rng);
/* x (B, In), h (B, Hd), c (B, Hd) -> *h_out (B, Hd), *c_out (B, Hd) */
void lstm_cell_forward(Graph *g, const LSTMCell *cell, Tensor *x, Tensor *h, Tensor *c,
                       Tensor **h_out, Tensor **c_out);

/* ---- Optimizers ---------------------------------------------------------- */

typedef enum { OPTIMIZER_SGD, OPTIMIZER_ADAM, OPTIMIZER_ADAMW } OptimizerKind;

typedef struct {
    OptimizerKind kind;
    float momentum;     /* SGD: velocity = momentum * velocity + grad          */
    float beta1, beta2; /* Adam: decay rates of the first and second moments  */
    float epsilon;      /* Adam: added to sqrt(v_hat)                          */
    float weight_decay; /* SGD/Adam: L2 added to the gradient; AdamW: decoupled */
    long step;          /* updates done so far (Adam's bias correction)        */
    size_t total;       /* floats, equal to the ParamSet's total               */
    float *moment1;     /* (total) SGD velocity, or Adam's m                   */
    float *moment2;     /* (total) Adam's v; NULL for SGD                      */
} Optimizer;

/* Defaults: momentum 0.9, betas (0.9, 0.999), epsilon 1e-8, decay 0. */
void optimizer_init(Optimizer *opt, OptimizerKind kind, const ParamSet *ps);
void optimizer_free(Optimizer *opt);
/* One update of every parameter from its gradient, at learning rate lr. */
void optimizer_step(Optimizer *opt, ParamSet *ps, float lr);
const char *optimizer_name(OptimizerKind kind);

/* ---- Learning-rate schedules --------------------------------------------- */

typedef enum { SCHEDULE_CONSTANT, SCHEDULE_WARMUP_COSINE } ScheduleKind;

typedef struct {
    ScheduleKind kind;
    float base_lr;     /* peak learning rate                              */
    float min_lr;      /* reached at the last step (cosine)               */
    long warmup_steps; /* linear from base_lr/warmup_steps up to base_lr   */
    long total_steps;  /* cosine decays from the end of warmup to here     */
} Schedule;

/* Learning rate for step `step` (0-based). */
float schedule_lr(const Schedule *schedule, long step);

#endif
