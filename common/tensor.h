/* common/tensor.h: float32 tensors with reverse-mode automatic differentiation.
 *
 * Dimension legend used in the shape comments of every file:
 *   B batch, T time (sequence position), C channels / features,
 *   M, K, N matrix dimensions (A is (M,K), B is (K,N), C = A @ B is (M,N)),
 *   V vocabulary size, H attention heads, D head size.
 * Dimensions follow PyTorch's order, row-major: the last dimension is
 * contiguous in memory.
 *
 * How the autograd works, in ten lines:
 *   1. Every op (op_matmul, op_tanh, ...) computes its output now
 *      (define-by-run) and, when an input needs a gradient, appends one
 *      TapeEntry to the Graph: the op kind, its inputs, its output and what
 *      backward will need.
 *   2. graph_backward(g, loss) sets d(loss)/d(loss) = 1 and walks the tape
 *      from the last entry to the first.
 *   3. Each entry's backward reads the gradient of its output and ADDS (+=)
 *      the gradient of each input, by the chain rule.
 *   4. Because entries are visited in reverse creation order, an output's
 *      gradient is complete before its backward runs.
 *   5. Parameter gradients accumulate across calls until params_zero_grad().
 *   6. Activations and their gradients live in the graph's arena, which
 *      graph_reset() empties in O(1) at the start of each step.
 */
#ifndef TINYZOO_TENSOR_H
#define TINYZOO_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rng.h"

enum { TENSOR_MAX_DIMS = 4 };

typedef struct Tensor {
    float *data;        /* (numel) values, row-major                        */
    float *grad;        /* (numel) d(loss)/d(data); NULL if no gradient      */
    int ndim;           /* 1..TENSOR_MAX_DIMS                                */
    int shape[TENSOR_MAX_DIMS];
    int numel;          /* product of shape                                  */
    const char *name;   /* for printing, traces and checkpoints; may be NULL */
    /* true while `grad` holds leftover bytes that stand for zeros: an op's
     * output gets its gradient buffer unzeroed, and the first backward to
     * reach it either overwrites it or zeroes it first (graph_backward).
     * A view has no flag of its own: its base's flag covers both. */
    bool grad_unwritten;
    /* A view (tensor_reshape, tensor_rows): the tensor that owns the memory
     * it looks into.  NULL for a tensor that owns its own. */
    struct Tensor *base;
} Tensor;

/* ---- Arena: bump allocation for one step's activations ------------------ */

/* One big block, allocated once.  arena_alloc hands out aligned slices of it;
 * arena_reset makes all of it free again without touching the memory, so a
 * training step does no malloc and its pages stay warm from step to step. */
/* If a step needs more than the block holds, the extra comes from malloc'd
 * overflow chunks, and the next arena_reset replaces the block by one large
 * enough for the whole step: after the first step, no more mallocs. */
typedef struct ArenaOverflow {
    struct ArenaOverflow *next;
    size_t bytes;
} ArenaOverflow;

typedef struct {
    unsigned char *base;     /* (capacity) the block                          */
    size_t capacity;         /* bytes                                         */
    size_t used;             /* bytes handed out since the last reset         */
    size_t overflow_used;    /* bytes handed out from overflow chunks         */
    size_t peak;             /* largest used + overflow_used ever seen        */
    ArenaOverflow *overflow; /* chunks allocated since the last reset          */
} Arena;

void arena_init(Arena *arena, size_t capacity_bytes);
void arena_free(Arena *arena);
/* 64-byte aligned (a cache line, and an AVX-512 register). */
void *arena_alloc(Arena *arena, size_t bytes);
void arena_reset(Arena *arena);

/* ---- Ops: one enum, one name table ------------------------------------- */

#define OP_LIST(X)                                                           \
    X(OP_LEAF, "leaf")                                                       \
    X(OP_MATMUL, "matmul")                                                   \
    X(OP_ADD, "add")                                                         \
    X(OP_SUB, "sub")                                                         \
    X(OP_MUL, "mul")                                                         \
    X(OP_SCALE, "scale")                                                     \
    X(OP_ADD_BIAS, "add_bias")                                               \
    X(OP_LINEAR, "linear")                                                   \
    X(OP_SUM, "sum")                                                         \
    X(OP_MEAN, "mean")                                                       \
    X(OP_TANH, "tanh")                                                       \
    X(OP_SIGMOID, "sigmoid")                                                 \
    X(OP_RELU, "relu")                                                       \
    X(OP_GELU, "gelu")                                                       \
    X(OP_SOFTMAX, "softmax")                                                 \
    X(OP_CROSS_ENTROPY, "cross_entropy")                                     \
    X(OP_MSE, "mse")                                                         \
    X(OP_BCE_WITH_LOGITS, "bce_with_logits")                                 \
    X(OP_LAYERNORM, "layernorm")                                             \
    X(OP_GATHER_ROWS, "gather_rows")                                         \
    X(OP_CONCAT, "concat")                                                   \
    X(OP_SLICE_COLUMNS, "slice_columns")                                     \
    X(OP_DROPOUT, "dropout")                                                 \
    X(OP_CUSTOM, "custom")

#define OP_ENUM_ENTRY(kind, text) kind,
typedef enum { OP_LIST(OP_ENUM_ENTRY) OP_COUNT } OpKind;
#undef OP_ENUM_ENTRY
extern const char *const op_names[OP_COUNT];

struct TapeEntry;
/* The backward of an op defined in a model's folder (OP_CUSTOM). */
typedef void (*BackwardFunction)(struct TapeEntry *entry);

/* What backward needs from one op call, saved at forward time. */
typedef struct TapeEntry {
    OpKind op;
    const char *custom_name;          /* OP_CUSTOM: the op's name          */
    BackwardFunction custom_backward; /* OP_CUSTOM: its backward           */
    Tensor *out;       /* the op's result                                  */
    Tensor *inputs[3]; /* its tensor inputs, NULL where unused             */
    float *saved;      /* op-specific buffer (e.g. softmax probabilities)   */
    int *indices;      /* op-specific ints (targets, row ids, dropout mask) */
    int int_args[4];   /* op-specific integers (see each op)                */
    float float_args[2];
    void *context;     /* OP_CUSTOM: anything else its backward needs       */
    /* OP_CUSTOM: bit k set when backward writes every element of input k's
     * gradient, asking tensor_grad_overwrite whether to write or add; then
     * graph_backward does not zero that gradient first. */
    unsigned overwrites_input;
} TapeEntry;

/* One step's computation: the tape plus the arena its tensors live in. */
typedef struct {
    Arena arena;        /* activations, gradients, saved buffers           */
    TapeEntry *tape;    /* (tape_capacity) entries in creation order       */
    int tape_length;
    int tape_capacity;
    bool check_numerics; /* stop at the first op producing NaN/Inf         */
    long step;           /* reported by check_numerics                     */
    bool training;       /* dropout is active only when true               */
    bool no_grad;        /* inference: record nothing, no output gradients */
} Graph;

void graph_init(Graph *g, size_t arena_bytes, int tape_capacity);
void graph_free(Graph *g);
/* Forgets the tape and empties the arena.  Call at the start of each step. */
void graph_reset(Graph *g);
/* d(loss)/d(every tensor on the tape).  `loss` must have one element. */
void graph_backward(Graph *g, Tensor *loss);
/* Prints one line per tape entry: index, op, output name and shape, inputs. */
void graph_print_tape(const Graph *g);

/* ---- Ops defined outside common/ ------------------------------------------
 * An op that one model alone needs (the transformer's fused attention, say)
 * lives in that model's folder, forward and backward side by side, and
 * plugs into the tape with these three calls:
 *   if (graph_needs_grad(g, q, k, v))
 *       graph_record_custom(g, "attention", attention_backward, out, q, k, v);
 *   graph_check_finite(g, "attention", out);                                  */
bool graph_needs_grad(const Graph *g, const Tensor *a, const Tensor *b, const Tensor *c);
/* For a backward that writes every element of t's gradient (and declared so
 * in overwrites_input): true when nothing has been written there yet, so it
 * may overwrite the leftover bytes; false when it must add to them. */
bool tensor_grad_overwrite(Tensor *t);
struct TapeEntry *graph_record_custom(Graph *g, const char *name, BackwardFunction backward,
                                      Tensor *out, Tensor *a, Tensor *b, Tensor *c);
/* With g->check_numerics, stops when `t` holds a NaN or Inf. */
void graph_check_finite(const Graph *g, const char *op_name, const Tensor *t);

/* ---- Tensors ------------------------------------------------------------ */

/* A tensor in the graph's arena, zero-filled, with a zeroed gradient when
 * `with_grad`.  `shape` has `ndim` entries. */
Tensor *tensor_new(Graph *g, int ndim, const int *shape, bool with_grad);
/* Same, from a literal shape list: tensor_of(g, true, 2, (int[]){B, C}). */
#define tensor_of(g, with_grad, ndim, ...) \
    tensor_new((g), (ndim), (const int[]){__VA_ARGS__}, (with_grad))
/* A tensor in the arena whose values are NOT initialised (like torch.empty),
 * for an op that writes every element anyway: skipping the zero-fill saves
 * a pass over memory.  Its gradient is not zeroed either, but marked
 * grad_unwritten: graph_backward zeroes it (or lets a backward overwrite
 * it) when a gradient first reaches it.  This is how every op makes its
 * output, in common/ and in model folders. */
Tensor *tensor_empty(Graph *g, int ndim, const int *shape, bool with_grad, const char *name);
/* A tensor that owns its memory with malloc (for parameters and tests). */
Tensor *tensor_alloc(const char *name, int ndim, const int *shape, bool with_grad);
void tensor_free(Tensor *t);
bool tensor_same_shape(const Tensor *a, const Tensor *b);
/* "(2,3,4)" into buffer; returns buffer. */
const char *tensor_shape_string(const Tensor *t, char *buffer, size_t size);
/* Stops with "op: shapes (a) and (b) disagree: why" when `ok` is false. */
void tensor_check_shapes(bool ok, const char *op, const Tensor *a, const Tensor *b,
                         const char *why);
/* Name, shape, first values, min/max/mean.  Callable from gdb:
 *   (gdb) call tensor_print(logits) */
void tensor_print(const Tensor *t);
/* A view with another shape over the same data and gradient (no copy, no
 * tape entry): the gradient is shared, so nothing needs to flow back.  A
 * view of a view looks into the same base. */
Tensor *tensor_reshape(Graph *g, Tensor *t, int ndim, const int *shape);
/* A view of rows [first, first+count) of the first dimension (no copy). */
Tensor *tensor_rows(Graph *g, Tensor *t, int first, int count);

/* ---- Ops: each records itself on the tape when an input has a gradient -- */

typedef enum { NO_TRANSPOSE = 0, TRANSPOSE_B = 1 } Transpose;

/* a (..., M, K) @ b (K, N) or (..., K, N) -> (..., M, N).
 * With TRANSPOSE_B, b is (N, K) or (..., N, K) and a @ b^T is computed: this
 * is how Linear multiplies by its (out, in) weight.  Leading dimensions of a
 * and b must match, or b must be 2-D (shared by the whole batch). */
Tensor *op_matmul(Graph *g, Tensor *a, Tensor *b, Transpose transpose_b);
Tensor *op_add(Graph *g, Tensor *a, Tensor *b);   /* same shapes */
Tensor *op_sub(Graph *g, Tensor *a, Tensor *b);   /* same shapes */
Tensor *op_mul(Graph *g, Tensor *a, Tensor *b);   /* elementwise, same shapes */
Tensor *op_scale(Graph *g, Tensor *a, float factor);
/* x (..., C) + bias (C), the bias broadcast over every row. */
Tensor *op_add_bias(Graph *g, Tensor *x, Tensor *bias);
/* y (..., Out) = x (..., In) @ weight^T + bias: weight (Out, In) as in
 * torch.nn.Linear, bias (Out) or NULL.  One op, one tape entry: the same
 * result as op_matmul(x, weight, TRANSPOSE_B) then op_add_bias, in one pass. */
Tensor *op_linear(Graph *g, Tensor *x, Tensor *weight, Tensor *bias);
/* A weight (Out, In) packed once (matmul_pack_b) for many op_linear_packed
 * calls in one graph, such as a recurrent W_hh used at every time step: as
 * W^T for forward and as W for backward's dx = dy W.  The copies live in the
 * graph's arena: valid until graph_reset, and only while the weight does not
 * change. */
const float *linear_pack_weight(Graph *g, const Tensor *weight);
/* op_linear reading the weight from its packed copy: the same result bit for
 * bit, the same backward (which reads weight itself). */
Tensor *op_linear_packed(Graph *g, Tensor *x, Tensor *weight, const float *packed_weight,
                         Tensor *bias);
/* What op_linear_packed (on more than a few rows: with matmul) and its
 * backward compute, on plain buffers of rows, for an op in a model's folder
 * that applies a linear layer inside its own forward and backward (a
 * recurrent layer, one time step at a time):
 *   linear_rows:           y (rows, Out) = x (rows, In) W^T + b
 *   linear_rows_backward:  dx (=|+=) dy W, unless dx is NULL;
 *                          dW += dy^T x and db += the rows of dy, where W and b have gradients
 * weight (Out, In), bias (Out) or NULL, packed_weight linear_pack_weight's
 * copies of weight or NULL. */
void linear_rows(int rows, const float *x, const Tensor *weight, const float *packed_weight,
                 const Tensor *bias, float *y);
void linear_rows_backward(int rows, const float *dy, const float *x, const Tensor *weight,
                          const float *packed_weight, const Tensor *bias, float *dx,
                          bool dx_accumulate);
Tensor *op_sum(Graph *g, Tensor *a);  /* -> (1) */
Tensor *op_mean(Graph *g, Tensor *a); /* -> (1) */
Tensor *op_tanh(Graph *g, Tensor *a);
Tensor *op_sigmoid(Graph *g, Tensor *a);
Tensor *op_relu(Graph *g, Tensor *a);
/* Exact GELU, x * Phi(x) with the normal CDF (PyTorch's default). */
Tensor *op_gelu(Graph *g, Tensor *a);
/* Softmax over the last dimension.  `mask` (optional, NULL for none) holds 1
 * for allowed and 0 for masked positions; its shape equals the trailing
 * dimensions of x and it is broadcast over the leading ones, e.g. a (T,T)
 * causal mask for scores (B,H,T,T), or (B,T) key padding for scores (B,T).
 * A row with every position masked gives all zeros. */
Tensor *op_softmax(Graph *g, Tensor *x, const Tensor *mask);
/* Mean over rows of -log softmax(logits)[target]; logits (N,V) or (...,V),
 * targets (N) ints in [0,V) or equal to ignore_index, which is skipped.
 * Returns (1).  If every row is ignored the loss is 0. */
Tensor *op_cross_entropy(Graph *g, Tensor *logits, const int *targets, int ignore_index);
/* Mean of (prediction - target)^2 over all elements -> (1). */
Tensor *op_mse(Graph *g, Tensor *prediction, const Tensor *target);
/* Mean of the binary cross-entropy of sigmoid(logits) against targets in
 * [0,1], computed stably from the logits -> (1). */
Tensor *op_bce_with_logits(Graph *g, Tensor *logits, const Tensor *target);
/* LayerNorm over the last dimension C: gamma (C), beta (C). */
Tensor *op_layernorm(Graph *g, Tensor *x, Tensor *gamma, Tensor *beta, float epsilon);
/* Rows of table (R, C) picked by ids (count) -> (count, C).  An embedding
 * lookup is a row gather; gradients scatter-add back into the picked rows. */
Tensor *op_gather_rows(Graph *g, Tensor *table, const int *ids, int count);
/* Concatenates a (..., Ca) and b (..., Cb) on the last dimension. */
Tensor *op_concat(Graph *g, Tensor *a, Tensor *b);
/* Columns [first, first+count) of the last dimension: (..., C) -> (..., count).
 * Splitting on the last dimension is several slices. */
Tensor *op_slice_columns(Graph *g, Tensor *x, int first, int count);
/* Zeroes each element with probability p and scales the rest by 1/(1-p)
 * (inverted dropout).  The identity when !g->training or p == 0. */
Tensor *op_dropout(Graph *g, Tensor *x, float p, Rng *rng);

#endif
