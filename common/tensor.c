/* common/tensor.c: tensors, the arena, the tape, and every autograd op.
 *
 * Legend: N rows (all leading dimensions flattened), C the last dimension,
 * M, K, N for matmul as in matmul.h, V classes / vocabulary.
 *
 * Reading order:
 *   1. the arena            (one block of memory per step)
 *   2. the graph and tape   (what backward replays)
 *   3. tensors              (creation, shapes, printing, views)
 *   4. the ops, each forward followed by its backward, with the derivative
 *      written above the backward
 *   5. graph_backward       (the reverse walk that calls the backwards)
 *
 * Speed and determinism.  Above PARALLEL_MIN_FLOATS elements the pointwise
 * and row-wise ops share their loops out between the threads (OpenMP), and
 * they call the vectorisable exp/erf of fastmath.h.  Every result is the
 * same, bit for bit, for any thread count and without OpenMP:
 *   - pointwise ops and per-row work (softmax, layernorm, a row's loss) do
 *     not depend on which thread runs them;
 *   - sums over rows (a bias or gamma gradient) are split by COLUMNS, so
 *     each column is still summed over its rows in row order;
 *   - sums within a row use fastmath.h's fixed LANES order, which depends
 *     on the row length only;
 *   - per-row losses are added up on one thread, in row order.
 */
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastmath.h"
#include "matmul.h"
#include "util.h"

/* Below this many floats an op stays on one thread: waking the others
 * costs a few microseconds, more than a small pass over memory. */
enum { PARALLEL_MIN_FLOATS = 1 << 14 };

const char *const op_names[OP_COUNT] = {
#define OP_NAME_ENTRY(kind, text) text,
    OP_LIST(OP_NAME_ENTRY)
#undef OP_NAME_ENTRY
};

/* ======================================================================== */
/* 1. The arena                                                              */
/* ======================================================================== */

enum { ARENA_ALIGNMENT = 64 };

static size_t align_up(size_t bytes) {
    return (bytes + ARENA_ALIGNMENT - 1) & ~(size_t)(ARENA_ALIGNMENT - 1);
}

void arena_init(Arena *arena, size_t capacity_bytes) {
    memset(arena, 0, sizeof *arena);
    arena->capacity = align_up(capacity_bytes > 0 ? capacity_bytes : ARENA_ALIGNMENT);
    arena->base = aligned_alloc(ARENA_ALIGNMENT, arena->capacity);
    if (arena->base == NULL) fatal("arena: cannot allocate %zu bytes", arena->capacity);
}

static void arena_free_overflow(Arena *arena) {
    while (arena->overflow != NULL) {
        ArenaOverflow *next = arena->overflow->next;
        free(arena->overflow);
        arena->overflow = next;
    }
    arena->overflow_used = 0;
}

void arena_free(Arena *arena) {
    arena_free_overflow(arena);
    free(arena->base);
    memset(arena, 0, sizeof *arena);
}

void *arena_alloc(Arena *arena, size_t bytes) {
    bytes = align_up(bytes > 0 ? bytes : 1);
    if (arena->used + bytes <= arena->capacity) {
        void *slice = arena->base + arena->used;
        arena->used += bytes;
        if (arena->used + arena->overflow_used > arena->peak)
            arena->peak = arena->used + arena->overflow_used;
        return slice;
    }
    /* The block is full: take a chunk from malloc for now.  The header is
     * padded to the alignment so the slice after it stays aligned. */
    size_t header = align_up(sizeof(ArenaOverflow));
    ArenaOverflow *chunk = aligned_alloc(ARENA_ALIGNMENT, header + bytes);
    if (chunk == NULL) fatal("arena: out of memory allocating %zu bytes", bytes);
    chunk->next = arena->overflow;
    chunk->bytes = bytes;
    arena->overflow = chunk;
    arena->overflow_used += bytes;
    if (arena->used + arena->overflow_used > arena->peak)
        arena->peak = arena->used + arena->overflow_used;
    return (unsigned char *)chunk + header;
}

void arena_reset(Arena *arena) {
    if (arena->overflow != NULL) {
        /* Last step outgrew the block: replace it by one that holds the
         * peak with a quarter to spare, so the next steps fit. */
        arena_free_overflow(arena);
        free(arena->base);
        arena->capacity = align_up(arena->peak + arena->peak / 4);
        arena->base = aligned_alloc(ARENA_ALIGNMENT, arena->capacity);
        if (arena->base == NULL) fatal("arena: cannot grow to %zu bytes", arena->capacity);
    }
    arena->used = 0;
}

/* ======================================================================== */
/* 2. The graph and its tape                                                 */
/* ======================================================================== */

void graph_init(Graph *g, size_t arena_bytes, int tape_capacity) {
    memset(g, 0, sizeof *g);
    arena_init(&g->arena, arena_bytes);
    g->tape_capacity = tape_capacity > 16 ? tape_capacity : 16;
    g->tape = xmalloc((size_t)g->tape_capacity * sizeof(TapeEntry));
    g->training = true;
}

void graph_free(Graph *g) {
    arena_free(&g->arena);
    free(g->tape);
    memset(g, 0, sizeof *g);
}

void graph_reset(Graph *g) {
    g->tape_length = 0;
    arena_reset(&g->arena);
}

/* Does this op need a tape entry?  Only when some input carries a gradient
 * and the graph is not in inference mode. */
bool graph_needs_grad(const Graph *g, const Tensor *a, const Tensor *b, const Tensor *c) {
    if (g->no_grad) return false;
    return (a && a->grad) || (b && b->grad) || (c && c->grad);
}

/* Appends an entry; the tape doubles when full (only during the first
 * steps: its length is the same from step to step). */
static TapeEntry *tape_record(Graph *g, OpKind op, Tensor *out, Tensor *a, Tensor *b,
                              Tensor *c) {
    if (g->tape_length == g->tape_capacity) {
        g->tape_capacity *= 2;
        g->tape = xrealloc(g->tape, (size_t)g->tape_capacity * sizeof(TapeEntry));
    }
    TapeEntry *entry = &g->tape[g->tape_length++];
    memset(entry, 0, sizeof *entry);
    entry->op = op;
    entry->out = out;
    entry->inputs[0] = a;
    entry->inputs[1] = b;
    entry->inputs[2] = c;
    return entry;
}

/* --check-numerics: stop at the first op whose result is NaN or Inf. */
static void check_finite_named(const Graph *g, const char *op, const Tensor *t,
                               const float *values, const char *what) {
    if (!g->check_numerics || values == NULL) return;
    for (int i = 0; i < t->numel; i++) {
        if (!isfinite(values[i])) {
            char shape[64];
            fatal("check-numerics: op %s produced %s in the %s of tensor '%s' %s at element "
                  "%d, step %ld",
                  op, isnan(values[i]) ? "NaN" : "Inf", what,
                  t->name ? t->name : "(unnamed)", tensor_shape_string(t, shape, sizeof shape),
                  i, g->step);
        }
    }
}

static void check_finite(const Graph *g, OpKind op, const Tensor *t, const float *values,
                         const char *what) {
    check_finite_named(g, op_names[op], t, values, what);
}

void graph_check_finite(const Graph *g, const char *op_name, const Tensor *t) {
    check_finite_named(g, op_name, t, t->data, "values");
}

TapeEntry *graph_record_custom(Graph *g, const char *name, BackwardFunction backward,
                               Tensor *out, Tensor *a, Tensor *b, Tensor *c) {
    TapeEntry *entry = tape_record(g, OP_CUSTOM, out, a, b, c);
    entry->custom_name = name;
    entry->custom_backward = backward;
    return entry;
}

/* ======================================================================== */
/* 3. Tensors                                                                */
/* ======================================================================== */

static int shape_numel(int ndim, const int *shape, const char *where) {
    if (ndim < 1 || ndim > TENSOR_MAX_DIMS)
        fatal("%s: %d dimensions; tensors have 1 to %d", where, ndim, TENSOR_MAX_DIMS);
    long numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1) fatal("%s: dimension %d has size %d; sizes must be >= 1", where, i, shape[i]);
        numel *= shape[i];
        if (numel > 1L << 30) fatal("%s: more than 2^30 elements", where);
    }
    return (int)numel;
}

static void tensor_set_shape(Tensor *t, int ndim, const int *shape, const char *where) {
    t->numel = shape_numel(ndim, shape, where);
    t->ndim = ndim;
    for (int i = 0; i < TENSOR_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
}

/* A tensor in the arena.  `zero_data` is false only for op outputs, whose
 * forward writes every element anyway: skipping the memset saves a pass over
 * memory per op.  Gradients are zeroed, since backward adds into them;
 * except an op output's (`lazy_grad`, also tensor_empty's), which is marked
 * grad_unwritten instead: see "Gradients zeroed late, or never" in
 * section 5. */
static Tensor *arena_tensor(Graph *g, int ndim, const int *shape, bool with_grad, bool zero_data,
                            bool lazy_grad) {
    Tensor *t = arena_alloc(&g->arena, sizeof(Tensor));
    memset(t, 0, sizeof *t);
    tensor_set_shape(t, ndim, shape, "tensor_new");
    size_t bytes = (size_t)t->numel * sizeof(float);
    t->data = arena_alloc(&g->arena, bytes);
    if (zero_data) memset(t->data, 0, bytes);
    if (with_grad && !g->no_grad) {
        t->grad = arena_alloc(&g->arena, bytes);
        if (lazy_grad) t->grad_unwritten = true;
        else memset(t->grad, 0, bytes);
    }
    return t;
}

Tensor *tensor_new(Graph *g, int ndim, const int *shape, bool with_grad) {
    return arena_tensor(g, ndim, shape, with_grad, true, false);
}

Tensor *tensor_empty(Graph *g, int ndim, const int *shape, bool with_grad, const char *name) {
    Tensor *t = arena_tensor(g, ndim, shape, with_grad, false, true);
    t->name = name;
    return t;
}

/* The tensor whose grad_unwritten flag covers t's gradient: t itself, or
 * the base of a view (views share their base's gradient buffer). */
static Tensor *grad_owner(Tensor *t) { return t->base ? t->base : t; }

static bool grad_is_unwritten(Tensor *t) { return grad_owner(t)->grad_unwritten; }

/* Zeroes a gradient that is still unwritten, so that it can be added into:
 * for a view, the whole base, since its other views may add there too. */
static void grad_make_zero(Tensor *t) {
    Tensor *owner = grad_owner(t);
    if (!owner->grad_unwritten) return;
    memset(owner->grad, 0, (size_t)owner->numel * sizeof(float));
    owner->grad_unwritten = false;
}

/* For a backward that writes every element of t's gradient: true if it
 * should overwrite (the gradient is unwritten, so nothing is lost), false
 * if it must add.  Either way the gradient counts as written afterwards.
 * A view covering part of its base cannot vouch for the rest: the base is
 * zeroed and the backward adds. */
bool tensor_grad_overwrite(Tensor *t) {
    Tensor *owner = grad_owner(t);
    if (owner->numel != t->numel) {
        grad_make_zero(owner);
        return false;
    }
    bool overwrite = owner->grad_unwritten;
    owner->grad_unwritten = false;
    return overwrite;
}

Tensor *tensor_alloc(const char *name, int ndim, const int *shape, bool with_grad) {
    Tensor *t = xcalloc(1, sizeof(Tensor));
    tensor_set_shape(t, ndim, shape, "tensor_alloc");
    t->data = xcalloc((size_t)t->numel, sizeof(float));
    t->grad = with_grad ? xcalloc((size_t)t->numel, sizeof(float)) : NULL;
    t->name = name;
    return t;
}

void tensor_free(Tensor *t) {
    if (t == NULL) return;
    free(t->data);
    free(t->grad);
    free(t);
}

bool tensor_same_shape(const Tensor *a, const Tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

const char *tensor_shape_string(const Tensor *t, char *buffer, size_t size) {
    size_t used = (size_t)snprintf(buffer, size, "(");
    for (int i = 0; i < t->ndim && used < size; i++)
        used += (size_t)snprintf(buffer + used, size - used, i ? ",%d" : "%d", t->shape[i]);
    if (used < size) snprintf(buffer + used, size - used, ")");
    return buffer;
}

void tensor_check_shapes(bool ok, const char *op, const Tensor *a, const Tensor *b,
                         const char *why) {
    if (ok) return;
    char shape_a[64], shape_b[64] = "";
    tensor_shape_string(a, shape_a, sizeof shape_a);
    if (b != NULL) tensor_shape_string(b, shape_b, sizeof shape_b);
    fatal("%s: shapes %s%s%s disagree: %s", op, shape_a, b ? " and " : "", shape_b, why);
}

void tensor_print(const Tensor *t) {
    char shape[64];
    double sum = 0;
    float low = INFINITY, high = -INFINITY;
    for (int i = 0; i < t->numel; i++) {
        sum += t->data[i];
        if (t->data[i] < low) low = t->data[i];
        if (t->data[i] > high) high = t->data[i];
    }
    printf("%s %s  min %.6g  max %.6g  mean %.6g%s\n  [", t->name ? t->name : "(unnamed)",
           tensor_shape_string(t, shape, sizeof shape), low, high, sum / t->numel,
           t->grad ? "  (has grad)" : "");
    int shown = t->numel < 8 ? t->numel : 8;
    for (int i = 0; i < shown; i++) printf(i ? ", %.6g" : "%.6g", t->data[i]);
    printf("%s]\n", t->numel > shown ? ", ..." : "");
    fflush(stdout);
}

/* A view shares its tensor's gradient, and the two may be reached by
 * backward in either order.  Nothing is zeroed here: the view points at its
 * base, whose grad_unwritten flag stands for both, and the first backward
 * to reach either zeroes the whole base then (grad_make_zero), when the
 * memory is about to be used anyway. */
static Tensor *view_of(Graph *g, Tensor *t) {
    Tensor *view = arena_alloc(&g->arena, sizeof(Tensor));
    *view = *t;
    view->base = grad_owner(t);
    view->grad_unwritten = false; /* unused: the base's flag counts */
    return view;
}

Tensor *tensor_reshape(Graph *g, Tensor *t, int ndim, const int *shape) {
    Tensor *view = view_of(g, t);
    tensor_set_shape(view, ndim, shape, "tensor_reshape");
    if (view->numel != t->numel) {
        char from[64], to[64];
        fatal("tensor_reshape: cannot view %s (%d elements) as %s (%d elements)",
              tensor_shape_string(t, from, sizeof from), t->numel,
              tensor_shape_string(view, to, sizeof to), view->numel);
    }
    return view;
}

Tensor *tensor_rows(Graph *g, Tensor *t, int first, int count) {
    if (first < 0 || count < 1 || first + count > t->shape[0])
        fatal("tensor_rows: rows [%d, %d) outside the first dimension of size %d", first,
              first + count, t->shape[0]);
    Tensor *view = view_of(g, t); /* see view_of */
    int row_size = t->numel / t->shape[0];
    view->shape[0] = count;
    view->numel = count * row_size;
    view->data = t->data + (size_t)first * row_size;
    if (t->grad) view->grad = t->grad + (size_t)first * row_size;
    return view;
}

/* An op's output: same graph, gradient when any input has one.  Its values
 * are NOT zeroed: every op below writes all of them. */
static Tensor *op_output(Graph *g, OpKind op, int ndim, const int *shape, bool with_grad) {
    Tensor *t = arena_tensor(g, ndim, shape, with_grad, false, true);
    t->name = op_names[op];
    return t;
}

static Tensor *op_output_like(Graph *g, OpKind op, const Tensor *like, bool with_grad) {
    return op_output(g, op, like->ndim, like->shape, with_grad);
}

/* Number of rows when the last dimension is the row: (..., C) -> N. */
static int leading_rows(const Tensor *t) {
    return t->numel / t->shape[t->ndim - 1];
}

/* Pointwise passes are cut into chunks of CHUNK floats shared out between
 * the threads; each chunk runs a small kernel whose pointers are `restrict`
 * (they never overlap), so that the compiler vectorises its loop. */
enum { CHUNK = 1 << 13 };

static int chunk_count(int n) { return (n + CHUNK - 1) / CHUNK; }
static int chunk_size(int n, int c) { return n - c * CHUNK < CHUNK ? n - c * CHUNK : CHUNK; }

/* y += d and y += d * w over n floats: the gradient of most pointwise ops. */
static void accumulate_kernel(const float *restrict d, float *restrict y, int n) {
    for (int i = 0; i < n; i++) y[i] += d[i];
}

static void accumulate_product_kernel(const float *restrict d, const float *restrict w,
                                      float *restrict y, int n) {
    for (int i = 0; i < n; i++) y[i] += d[i] * w[i];
}

/* sums[c] += sum over r of m[r, c], m (rows, cols): the gradient of a bias
 * or a LayerNorm gamma.  The columns, not the rows, are shared out between
 * the threads, so every column is summed in row order whatever their number;
 * a thread walks its columns row by row, reading memory in order. */
static void column_sums(const float *m, int rows, int cols, float *sums) {
    int threads = threads_get();
    int chunk = (cols + threads - 1) / threads;
    OMP("omp parallel for num_threads(threads) schedule(static) if ((long)rows * cols >= PARALLEL_MIN_FLOATS)")
    for (int first = 0; first < cols; first += chunk) {
        int last = first + chunk < cols ? first + chunk : cols;
        for (int r = 0; r < rows; r++) {
            const float *row = m + (size_t)r * cols;
            for (int c = first; c < last; c++) sums[c] += row[c];
        }
    }
}

/* ======================================================================== */
/* 4. Ops                                                                    */
/* ======================================================================== */

/* ---- matmul ---------------------------------------------------------------
 * C = A @ op(B), A (..., M, K), op(B) (K, N) [or B^T with TRANSPOSE_B]. */

/* Leading ("batch") elements of a (..., M, K): product of all but two dims. */
static int batch_count(const Tensor *t) {
    return t->ndim <= 2 ? 1 : t->numel / (t->shape[t->ndim - 1] * t->shape[t->ndim - 2]);
}

Tensor *op_matmul(Graph *g, Tensor *a, Tensor *b, Transpose transpose_b) {
    tensor_check_shapes(a->ndim >= 2 && b->ndim >= 2, "matmul", a, b,
                        "both operands need at least 2 dimensions");
    bool shared_b = b->ndim == 2;
    int M = a->shape[a->ndim - 2], K = a->shape[a->ndim - 1];
    int b_rows = b->shape[b->ndim - 2], b_cols = b->shape[b->ndim - 1];
    int N = transpose_b ? b_rows : b_cols;
    int inner_b = transpose_b ? b_cols : b_rows;
    tensor_check_shapes(inner_b == K, "matmul", a, b,
                        transpose_b ? "a's last dim must equal b's last dim (a @ b^T)"
                                    : "a's last dim must equal b's first dim");
    if (!shared_b) {
        bool same_leading = a->ndim == b->ndim;
        for (int i = 0; same_leading && i < a->ndim - 2; i++)
            same_leading = a->shape[i] == b->shape[i];
        tensor_check_shapes(same_leading, "matmul", a, b,
                            "leading (batch) dimensions must match, or b must be 2-D");
    }
    int shape[TENSOR_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[a->ndim - 1] = N;
    bool grad = graph_needs_grad(g, a, b, NULL);
    Tensor *out = op_output(g, OP_MATMUL, a->ndim, shape, grad);

    /* A 2-D b is shared by every batch item, so the batch folds into M:
     * one (batch*M, K) @ (K, N) product, which the kernel blocks better. */
    int batch = batch_count(a);
    MatmulSpec spec = {
        .batch = shared_b ? 1 : batch, .M = shared_b ? batch * M : M, .N = N, .K = K,
        .A = a->data, .lda = K, .stride_a = (long)M * K,
        .B = b->data, .ldb = b_cols, .stride_b = shared_b ? 0 : (long)b_rows * b_cols,
        .transpose_b = transpose_b == TRANSPOSE_B,
        .C = out->data, .ldc = N, .stride_c = (long)M * N,
    };
    matmul(&spec);
    if (grad) {
        TapeEntry *entry = tape_record(g, OP_MATMUL, out, a, b, NULL);
        entry->int_args[0] = transpose_b;
    }
    check_finite(g, OP_MATMUL, out, out->data, "values");
    return out;
}

/* EXERCISE matmul_backward: a->grad += dC op(B)^T and b->grad += the matching product, for
 * batched a (..., M, K), b shared (2-D) or batched, b stored (K, N) or, with TRANSPOSE_B, (N, K).
 * matmul() (common/matmul.h) multiplies and accumulates; out->grad is dC.
 * STUB: static void matmul_backward(TapeEntry *entry) {
 * STUB:     (void)entry;
 * STUB:     exercise_missing("matmul_backward");
 * STUB: } */
/* dA = dC @ op(B)^T          (M,N) @ (N,K)
 * dB = A^T @ dC              (K,M) @ (M,N)   when B is (K,N)
 * dB = dC^T @ A              (N,M) @ (M,K)   when B is stored (N,K)
 * For a shared 2-D B the batch is folded into M, which also sums dB over
 * the batch, as the chain rule requires for a weight used B times. */
static void matmul_backward(TapeEntry *entry) {
    Tensor *a = entry->inputs[0], *b = entry->inputs[1], *out = entry->out;
    bool transposed = entry->int_args[0] == TRANSPOSE_B;
    bool shared_b = b->ndim == 2;
    int M = a->shape[a->ndim - 2], K = a->shape[a->ndim - 1], N = out->shape[out->ndim - 1];
    int b_rows = b->shape[b->ndim - 2], b_cols = b->shape[b->ndim - 1];
    int batch = shared_b ? 1 : batch_count(a);
    int rows = shared_b ? batch_count(a) * M : M;
    long stride_b = shared_b ? 0 : (long)b_rows * b_cols;
    if (a->grad) {
        MatmulSpec spec = {
            .batch = batch, .M = rows, .N = K, .K = N,
            .A = out->grad, .lda = N, .stride_a = (long)M * N,
            .B = b->data, .ldb = b_cols, .stride_b = stride_b, .transpose_b = !transposed,
            .C = a->grad, .ldc = K, .stride_c = (long)M * K, .accumulate = true,
        };
        matmul(&spec);
    }
    if (b->grad) {
        MatmulSpec spec = {
            .batch = batch, .K = rows, .accumulate = true,
            .C = b->grad, .ldc = b_cols, .stride_c = stride_b,
        };
        if (!transposed) { /* dB (K,N) = A^T (K,rows) @ dC (rows,N) */
            spec.M = K, spec.N = N;
            spec.A = a->data, spec.lda = K, spec.stride_a = (long)M * K, spec.transpose_a = true;
            spec.B = out->grad, spec.ldb = N, spec.stride_b = (long)M * N;
        } else { /* dB (N,K) = dC^T (N,rows) @ A (rows,K) */
            spec.M = N, spec.N = K;
            spec.A = out->grad, spec.lda = N, spec.stride_a = (long)M * N, spec.transpose_a = true;
            spec.B = a->data, spec.ldb = K, spec.stride_b = (long)M * K;
        }
        matmul(&spec);
    }
}
/* END EXERCISE */

/* ---- add, sub, mul, scale ------------------------------------------------ */

/* One chunk of y = a + b, a - b or a * b; each loop is vectorised. */
static void binary_kernel(OpKind op, const float *restrict a, const float *restrict b,
                          float *restrict y, int n) {
    switch (op) {
    case OP_ADD: for (int i = 0; i < n; i++) y[i] = a[i] + b[i]; break;
    case OP_SUB: for (int i = 0; i < n; i++) y[i] = a[i] - b[i]; break;
    default: for (int i = 0; i < n; i++) y[i] = a[i] * b[i]; break; /* OP_MUL */
    }
}

static Tensor *elementwise_binary(Graph *g, OpKind op, Tensor *a, Tensor *b) {
    tensor_check_shapes(tensor_same_shape(a, b), op_names[op], a, b,
                        "elementwise ops need equal shapes");
    bool grad = graph_needs_grad(g, a, b, NULL);
    Tensor *out = op_output_like(g, op, a, grad);
    int n = out->numel;
    OMP("omp parallel for num_threads(threads_get()) schedule(static) if (n >= PARALLEL_MIN_FLOATS)")
    for (int c = 0; c < chunk_count(n); c++) {
        size_t first = (size_t)c * CHUNK;
        binary_kernel(op, a->data + first, b->data + first, out->data + first, chunk_size(n, c));
    }
    if (grad) tape_record(g, op, out, a, b, NULL);
    check_finite(g, op, out, out->data, "values");
    return out;
}

Tensor *op_add(Graph *g, Tensor *a, Tensor *b) { return elementwise_binary(g, OP_ADD, a, b); }
Tensor *op_sub(Graph *g, Tensor *a, Tensor *b) { return elementwise_binary(g, OP_SUB, a, b); }
Tensor *op_mul(Graph *g, Tensor *a, Tensor *b) { return elementwise_binary(g, OP_MUL, a, b); }

/* y = a + b: da += dy, db += dy.   y = a - b: da += dy, db -= dy.
 * y = a * b: da += dy * b, db += dy * a. */
static void elementwise_binary_backward(TapeEntry *entry) {
    Tensor *a = entry->inputs[0], *b = entry->inputs[1];
    OpKind op = entry->op;
    int n = entry->out->numel;
    /* a + b and a - b may write da = dy over an unwritten da (a residual
     * stream's first gradient); b, and a * b, are zeroed by graph_backward. */
    bool overwrite_a = op != OP_MUL && a->grad && tensor_grad_overwrite(a);
    OMP("omp parallel for num_threads(threads_get()) schedule(static) if (n >= PARALLEL_MIN_FLOATS)")
    for (int c = 0; c < chunk_count(n); c++) {
        size_t first = (size_t)c * CHUNK;
        int count = chunk_size(n, c);
        const float *dy = entry->out->grad + first;
        if (op == OP_MUL) {
            if (a->grad) accumulate_product_kernel(dy, b->data + first, a->grad + first, count);
            if (b->grad) accumulate_product_kernel(dy, a->data + first, b->grad + first, count);
            continue;
        }
        if (a->grad && overwrite_a) memcpy(a->grad + first, dy, (size_t)count * sizeof(float));
        else if (a->grad) accumulate_kernel(dy, a->grad + first, count);
        if (b->grad && op == OP_ADD) accumulate_kernel(dy, b->grad + first, count);
        if (b->grad && op == OP_SUB)
            for (int i = 0; i < count; i++) b->grad[first + i] -= dy[i];
    }
}

Tensor *op_scale(Graph *g, Tensor *a, float factor) {
    bool grad = graph_needs_grad(g, a, NULL, NULL);
    Tensor *out = op_output_like(g, OP_SCALE, a, grad);
    for (int i = 0; i < a->numel; i++) out->data[i] = factor * a->data[i];
    if (grad) tape_record(g, OP_SCALE, out, a, NULL, NULL)->float_args[0] = factor;
    check_finite(g, OP_SCALE, out, out->data, "values");
    return out;
}

/* y = s * a: da += s * dy */
static void scale_backward(TapeEntry *entry) {
    Tensor *a = entry->inputs[0];
    float factor = entry->float_args[0];
    for (int i = 0; i < a->numel; i++) a->grad[i] += factor * entry->out->grad[i];
}

/* ---- add_bias: x (N, C) + bias (C) --------------------------------------- */

Tensor *op_add_bias(Graph *g, Tensor *x, Tensor *bias) {
    int C = x->shape[x->ndim - 1];
    tensor_check_shapes(bias->ndim == 1 && bias->shape[0] == C, "add_bias", x, bias,
                        "bias must be 1-D with the size of x's last dimension");
    bool grad = graph_needs_grad(g, x, bias, NULL);
    Tensor *out = op_output_like(g, OP_ADD_BIAS, x, grad);
    int rows = leading_rows(x);
    OMP("omp parallel for num_threads(threads_get()) schedule(static) if ((long)rows * C >= PARALLEL_MIN_FLOATS)")
    for (int r = 0; r < rows; r++) {
        const float *in = x->data + (size_t)r * C;
        float *y = out->data + (size_t)r * C;
        for (int c = 0; c < C; c++) y[c] = in[c] + bias->data[c];
    }
    if (grad) tape_record(g, OP_ADD_BIAS, out, x, bias, NULL);
    check_finite(g, OP_ADD_BIAS, out, out->data, "values");
    return out;
}

/* y[r,c] = x[r,c] + b[c]: dx += dy, db[c] += sum over rows r of dy[r,c] */
static void add_bias_backward(TapeEntry *entry) {
    Tensor *x = entry->inputs[0], *bias = entry->inputs[1];
    const float *dy = entry->out->grad;
    int C = bias->shape[0], rows = leading_rows(x), n = x->numel;
    if (x->grad) {
        OMP("omp parallel for num_threads(threads_get()) schedule(static) if (n >= PARALLEL_MIN_FLOATS)")
        for (int c = 0; c < chunk_count(n); c++)
            accumulate_kernel(dy + (size_t)c * CHUNK, x->grad + (size_t)c * CHUNK, chunk_size(n, c));
    }
    if (bias->grad) column_sums(dy, rows, C, bias->grad);
}

/* ---- linear: y = x W^T + b, fused ---------------------------------------------
 * One op (one tape entry, one pass over y) instead of op_matmul followed by
 * op_add_bias: y starts as the bias, and matmul() accumulates x W^T onto it. */

/* Linear layers on at most this many rows (generation: one token at a time)
 * use one dot product per output: matmul() would first copy ("pack") the
 * whole weight matrix to multiply it by a single row. */
enum { LINEAR_FEW_ROWS = 4 };

/* Two copies, one after the other: W^T (In, Out) for forward's x W^T, then
 * W (Out, In) for backward's dx = dy W, which starts here. */
static float *packed_weight_for_backward(const float *packed_weight, int In, int Out) {
    return (float *)(packed_weight + matmul_packed_b_floats(In, Out));
}

const float *linear_pack_weight(Graph *g, const Tensor *weight) {
    int In = weight->shape[1], Out = weight->shape[0];
    float *packed = arena_alloc(
        &g->arena, (matmul_packed_b_floats(In, Out) + matmul_packed_b_floats(Out, In)) *
                       sizeof(float));
    matmul_pack_b(weight->data, In, true, In, Out, packed);                            /* W^T */
    matmul_pack_b(weight->data, In, false, Out, In, packed_weight_for_backward(packed, In, Out));
    return packed;
}

/* Every row of y starts as the bias, inside matmul's sums. */
void linear_rows(int rows, const float *x, const Tensor *weight, const float *packed_weight,
                 const Tensor *bias, float *y) {
    int In = weight->shape[1], Out = weight->shape[0];
    MatmulSpec spec = {.batch = 1, .M = rows, .N = Out, .K = In, .A = x, .lda = In,
                       .B = weight->data, .ldb = In, .transpose_b = true, .C = y, .ldc = Out,
                       .bias = bias ? bias->data : NULL, .packed_b = packed_weight};
    matmul(&spec);
}

/* y = x W^T + b, x (N, In), W (Out, In):
 *   dx (=|+=) dy W      (N, Out) @ (Out, In)
 *   dW += dy^T x        (Out, N) @ (N, In)   (summed over the rows: W is shared)
 *   db += sum_r dy[r]   column sums of dy */
void linear_rows_backward(int rows, const float *dy, const float *x, const Tensor *weight,
                          const float *packed_weight, const Tensor *bias, float *dx,
                          bool dx_accumulate) {
    int In = weight->shape[1], Out = weight->shape[0];
    if (dx) {
        MatmulSpec spec = {.batch = 1, .M = rows, .N = In, .K = Out, .A = dy, .lda = Out,
                           .B = weight->data, .ldb = In, .C = dx, .ldc = In,
                           .accumulate = dx_accumulate,
                           .packed_b = packed_weight ? packed_weight_for_backward(packed_weight, In, Out)
                                                     : NULL};
        matmul(&spec);
    }
    if (weight->grad) {
        MatmulSpec spec = {.batch = 1, .M = Out, .N = In, .K = rows, .A = dy, .lda = Out,
                           .transpose_a = true, .B = x, .ldb = In, .C = weight->grad,
                           .ldc = In, .accumulate = true};
        matmul(&spec);
    }
    if (bias && bias->grad) column_sums(dy, rows, Out, bias->grad);
}

Tensor *op_linear(Graph *g, Tensor *x, Tensor *weight, Tensor *bias) {
    return op_linear_packed(g, x, weight, NULL, bias);
}

Tensor *op_linear_packed(Graph *g, Tensor *x, Tensor *weight, const float *packed_weight,
                         Tensor *bias) {
    int In = weight->shape[1], Out = weight->shape[0], rows = leading_rows(x);
    tensor_check_shapes(weight->ndim == 2 && x->shape[x->ndim - 1] == In, "linear", x, weight,
                        "the weight must be (Out, In), In the size of x's last dimension");
    if (bias)
        tensor_check_shapes(bias->ndim == 1 && bias->shape[0] == Out, "linear", weight, bias,
                            "the bias must be 1-D with the weight's first dimension (Out)");
    int shape[TENSOR_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = Out;
    bool grad = graph_needs_grad(g, x, weight, bias);
    Tensor *out = op_output(g, OP_LINEAR, x->ndim, shape, grad); /* (..., Out) */
    if (rows <= LINEAR_FEW_ROWS) {
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < Out; o++)
                out->data[(size_t)r * Out + o] =
                    (bias ? bias->data[o] : 0.0f) +
                    dot_fast(x->data + (size_t)r * In, weight->data + (size_t)o * In, In);
    } else {
        linear_rows(rows, x->data, weight, packed_weight, bias, out->data);
    }
    if (grad) {
        TapeEntry *entry = tape_record(g, OP_LINEAR, out, x, weight, bias);
        entry->saved = (float *)packed_weight; /* NULL, or both copies (linear_pack_weight) */
    }
    check_finite(g, OP_LINEAR, out, out->data, "values");
    return out;
}

/* The rows of x: its leading dimensions flattened.  dx is written over an
 * unwritten gradient, which saves zeroing it. */
static void linear_backward(TapeEntry *entry) {
    Tensor *x = entry->inputs[0], *weight = entry->inputs[1], *bias = entry->inputs[2];
    bool add_to_dx = x->grad && !tensor_grad_overwrite(x);
    linear_rows_backward(leading_rows(x), entry->out->grad, x->data, weight, entry->saved, bias,
                         x->grad, add_to_dx);
}

/* ---- sum and mean ---------------------------------------------------------- */

static Tensor *reduce_all(Graph *g, OpKind op, Tensor *a) {
    bool grad = graph_needs_grad(g, a, NULL, NULL);
    Tensor *out = op_output(g, op, 1, (const int[]){1}, grad);
    double total = 0; /* double: summing many floats loses digits otherwise */
    for (int i = 0; i < a->numel; i++) total += a->data[i];
    out->data[0] = (float)(op == OP_MEAN ? total / a->numel : total);
    if (grad) tape_record(g, op, out, a, NULL, NULL);
    check_finite(g, op, out, out->data, "values");
    return out;
}

Tensor *op_sum(Graph *g, Tensor *a) { return reduce_all(g, OP_SUM, a); }
Tensor *op_mean(Graph *g, Tensor *a) { return reduce_all(g, OP_MEAN, a); }

/* y = sum_i a_i: da_i += dy.   y = mean_i a_i: da_i += dy / n. */
static void reduce_all_backward(TapeEntry *entry) {
    Tensor *a = entry->inputs[0];
    float dy = entry->out->grad[0];
    if (entry->op == OP_MEAN) dy /= (float)a->numel;
    for (int i = 0; i < a->numel; i++) a->grad[i] += dy;
}

/* ---- pointwise activations ---------------------------------------------------- */

static const float INV_SQRT2 = 0.70710678118654752440f;
static const float INV_SQRT_2PI = 0.39894228040143267794f;

/* GELU: y = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, Phi the normal CDF,
 * with the vectorisable erf of fastmath.h.  Its derivative
 *   dy/dx = Phi(x) + x phi(x),   phi(x) = exp(-x^2/2) / sqrt(2 pi)
 * needs the same exp and erf, so when training, forward also stores it
 * (slope, NULL otherwise) and backward is one multiplication per element:
 * computing erf twice cost more than the extra pass over memory. */
FUSE_MULTIPLY_ADD
static void gelu_kernel(const float *restrict x, float *restrict y, float *restrict slope, int n) {
    for (int i = 0; i < n; i++) {
        float z = x[i] * INV_SQRT2;
        float gauss = exp_fast(-z * z);                  /* exp(-x^2/2) */
        float cdf = 0.5f * (1.0f + erf_from_exp(z, gauss)); /* Phi(x) */
        y[i] = x[i] * cdf;
        if (slope) slope[i] = cdf + x[i] * INV_SQRT_2PI * gauss;
    }
}

/* One chunk of an activation (slope: GELU's derivative, see gelu_kernel). */
static void activation_kernel(OpKind op, const float *restrict x, float *restrict y,
                              float *restrict slope, int n) {
    switch (op) {
    case OP_TANH: for (int i = 0; i < n; i++) y[i] = tanhf(x[i]); break;
    case OP_SIGMOID: for (int i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i])); break;
    case OP_RELU: for (int i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0; break;
    default: gelu_kernel(x, y, slope, n); break; /* OP_GELU */
    }
}

static Tensor *activation(Graph *g, OpKind op, Tensor *a) {
    bool grad = graph_needs_grad(g, a, NULL, NULL);
    Tensor *out = op_output_like(g, op, a, grad);
    int n = a->numel;
    /* (n) GELU's dy/dx, for backward */
    float *slope = op == OP_GELU && grad ? arena_alloc(&g->arena, (size_t)n * sizeof(float)) : NULL;
    OMP("omp parallel for num_threads(threads_get()) schedule(static) if (n >= PARALLEL_MIN_FLOATS)")
    for (int c = 0; c < chunk_count(n); c++) {
        size_t first = (size_t)c * CHUNK;
        activation_kernel(op, a->data + first, out->data + first, slope ? slope + first : NULL,
                          chunk_size(n, c));
    }
    if (grad) tape_record(g, op, out, a, NULL, NULL)->saved = slope;
    check_finite(g, op, out, out->data, "values");
    return out;
}

Tensor *op_tanh(Graph *g, Tensor *a) { return activation(g, OP_TANH, a); }
Tensor *op_sigmoid(Graph *g, Tensor *a) { return activation(g, OP_SIGMOID, a); }
Tensor *op_relu(Graph *g, Tensor *a) { return activation(g, OP_RELU, a); }
Tensor *op_gelu(Graph *g, Tensor *a) { return activation(g, OP_GELU, a); }

/* gelu: dx = dy * slope, the derivative saved by forward (gelu_kernel).
 * Two loops, not one with a choice per element: the compiler would compute
 * dx[i] + ... on the unwritten bytes too and then discard it, and leftover
 * bytes that happen to be subnormal floats make that addition very slow. */
static void gelu_backward_kernel(const float *restrict slope, const float *restrict dy,
                                 float *restrict dx, int n, bool overwrite) {
    if (overwrite) {
        for (int i = 0; i < n; i++) dx[i] = dy[i] * slope[i];
    } else {
        for (int i = 0; i < n; i++) dx[i] += dy[i] * slope[i];
    }
}

/* sigmoid: dy/dx = y (1 - y)
 * relu:    dy/dx = 1 if x > 0 else 0
 * gelu:    above
 * tanh:    in its case, written with y = tanh(x) as sigmoid's is */
static void activation_backward_kernel(OpKind op, const float *restrict x, const float *restrict y,
                                       const float *restrict slope, const float *restrict dy,
                                       float *restrict dx, int n, bool overwrite) {
    switch (op) {
    /* EXERCISE tanh_backward: dx += dy * dtanh(x)/dx, the derivative written with y = tanh(x)
     * STUB: case OP_TANH: exercise_missing("tanh_backward"); break; */
    /* tanh: dy/dx = 1 - y^2 */
    case OP_TANH: for (int i = 0; i < n; i++) dx[i] += dy[i] * (1.0f - y[i] * y[i]); break;
    /* END EXERCISE */
    case OP_SIGMOID: for (int i = 0; i < n; i++) dx[i] += dy[i] * y[i] * (1.0f - y[i]); break;
    case OP_RELU: for (int i = 0; i < n; i++) dx[i] += x[i] > 0 ? dy[i] : 0; break;
    default: gelu_backward_kernel(slope, dy, dx, n, overwrite); break; /* OP_GELU */
    }
}

static void activation_backward(TapeEntry *entry) {
    Tensor *a = entry->inputs[0], *out = entry->out;
    int n = a->numel;
    /* GELU (the transformer's feed-forward) may overwrite an unwritten dx;
     * for the others graph_backward zeroes it first. */
    bool overwrite = entry->op == OP_GELU && tensor_grad_overwrite(a);
    OMP("omp parallel for num_threads(threads_get()) schedule(static) if (n >= PARALLEL_MIN_FLOATS)")
    for (int c = 0; c < chunk_count(n); c++) {
        size_t first = (size_t)c * CHUNK;
        activation_backward_kernel(entry->op, a->data + first, out->data + first,
                                   entry->saved ? entry->saved + first : NULL,
                                   out->grad + first, a->grad + first, chunk_size(n, c),
                                   overwrite);
    }
}

/* ---- softmax over the last dimension, with an optional mask ------------------ */

/* One row: y = softmax(x) over the allowed positions (allowed NULL: all).
 * Subtracting the max changes nothing mathematically but keeps exp() from
 * overflowing.  Without a mask every loop is a plain vectorised pass. */
FUSE_MULTIPLY_ADD
static void softmax_row(const float *restrict x, const float *restrict allowed, int C,
                        float *restrict y) {
    float highest = -INFINITY;
    if (allowed == NULL) highest = max_fast(x, C);
    else
        for (int c = 0; c < C; c++)
            if (allowed[c] != 0 && x[c] > highest) highest = x[c];
    if (highest == -INFINITY) { /* every position masked: zeros */
        memset(y, 0, (size_t)C * sizeof(float));
        return;
    }
    if (allowed == NULL) for (int c = 0; c < C; c++) y[c] = exp_fast(x[c] - highest);
    else for (int c = 0; c < C; c++) y[c] = allowed[c] != 0 ? exp_fast(x[c] - highest) : 0.0f;
    float inverse = 1.0f / sum_fast(y, C);
    for (int c = 0; c < C; c++) y[c] *= inverse;
}

Tensor *op_softmax(Graph *g, Tensor *x, const Tensor *mask) {
    int C = x->shape[x->ndim - 1], rows = leading_rows(x), mask_rows = 1;
    if (mask != NULL) {
        bool trailing = mask->ndim <= x->ndim;
        for (int i = 1; trailing && i <= mask->ndim; i++)
            trailing = mask->shape[mask->ndim - i] == x->shape[x->ndim - i];
        tensor_check_shapes(trailing, "softmax", x, mask,
                            "the mask's shape must equal the trailing dimensions of x");
        mask_rows = leading_rows(mask);
    }
    bool grad = graph_needs_grad(g, x, NULL, NULL);
    Tensor *out = op_output_like(g, OP_SOFTMAX, x, grad);
    /* Rows are independent: shared out between the threads. */
    OMP("omp parallel for num_threads(threads_get()) schedule(static) if ((long)rows * C >= PARALLEL_MIN_FLOATS)")
    for (int r = 0; r < rows; r++) {
        /* Mask row r % mask_rows: the mask repeats over the leading dims. */
        const float *allowed = mask ? mask->data + (size_t)(r % mask_rows) * C : NULL;
        softmax_row(x->data + (size_t)r * C, allowed, C, out->data + (size_t)r * C);
    }
    if (grad) tape_record(g, OP_SOFTMAX, out, x, NULL, NULL);
    check_finite(g, OP_SOFTMAX, out, out->data, "values");
    return out;
}

/* EXERCISE softmax_backward: x->grad += d(loss)/dx for y = softmax(x) over the last dimension,
 * row by row, from out->data (y) and out->grad (dy); masked positions (y = 0) get nothing.
 * STUB: static void softmax_backward(TapeEntry *entry) {
 * STUB:     (void)entry;
 * STUB:     exercise_missing("softmax_backward");
 * STUB: } */
/* y_i = exp(x_i) / sum_j exp(x_j):  dy_i/dx_k = y_i (delta_ik - y_k), so
 * dx_k += y_k (dy_k - sum_i dy_i y_i).  Masked positions have y = 0, so
 * they receive no gradient.  One row per iteration, rows shared out. */
static void softmax_backward(TapeEntry *entry) {
    Tensor *x = entry->inputs[0], *out = entry->out;
    int C = x->shape[x->ndim - 1], rows = leading_rows(x);
    OMP("omp parallel for num_threads(threads_get()) schedule(static) if ((long)rows * C >= PARALLEL_MIN_FLOATS)")
    for (int r = 0; r < rows; r++) {
        const float *y = out->data + (size_t)r * C, *dy = out->grad + (size_t)r * C;
        float *dx = x->grad + (size_t)r * C;
        float dot = dot_fast(dy, y, C);
        for (int c = 0; c < C; c++) dx[c] += y[c] * (dy[c] - dot);
    }
}
/* END EXERCISE */

/* ---- cross-entropy: fused log-softmax + negative log-likelihood -------------- */

/* One row: p = softmax(z) into probabilities (V); returns -log p[target]. */
FUSE_MULTIPLY_ADD
static float cross_entropy_row(const float *restrict z, int V, int target,
                               float *restrict probabilities) {
    float highest = max_fast(z, V);
    for (int v = 0; v < V; v++) probabilities[v] = exp_fast(z[v] - highest);
    float total = sum_fast(probabilities, V), inverse = 1.0f / total;
    for (int v = 0; v < V; v++) probabilities[v] *= inverse;
    /* -log softmax(z)[t] = log sum_v exp(z_v - max) - (z_t - max) */
    return logf(total) - (z[target] - highest);
}

Tensor *op_cross_entropy(Graph *g, Tensor *logits, const int *targets, int ignore_index) {
    int V = logits->shape[logits->ndim - 1], rows = leading_rows(logits);
    bool grad = graph_needs_grad(g, logits, NULL, NULL);
    Tensor *out = op_output(g, OP_CROSS_ENTROPY, 1, (const int[]){1}, grad);
    /* probabilities (rows, V), softmax(logits) kept for backward, then each
     * row's loss (rows) */
    float *probabilities = arena_alloc(&g->arena, ((size_t)rows * V + rows) * sizeof(float));
    float *row_loss = probabilities + (size_t)rows * V;
    int *kept_targets = arena_alloc(&g->arena, (size_t)rows * sizeof(int)); /* (rows) */
    /* Checked here, before the threads start: fatal() inside them would not
     * be a clean exit. */
    for (int r = 0; r < rows; r++) {
        int target = targets[r];
        if (target != ignore_index && (target < 0 || target >= V))
            fatal("cross_entropy: target %d of row %d is outside [0, %d)", target, r, V);
        kept_targets[r] = target;
    }
    OMP("omp parallel for num_threads(threads_get()) schedule(static) if ((long)rows * V >= PARALLEL_MIN_FLOATS)")
    for (int r = 0; r < rows; r++)
        row_loss[r] = kept_targets[r] == ignore_index
                          ? 0.0f
                          : cross_entropy_row(logits->data + (size_t)r * V, V, kept_targets[r],
                                              probabilities + (size_t)r * V);
    double total = 0; /* summed in row order, on one thread: the same for any thread count */
    int counted = 0;
    for (int r = 0; r < rows; r++)
        if (kept_targets[r] != ignore_index) total += row_loss[r], counted++;
    out->data[0] = counted ? (float)(total / counted) : 0.0f;
    if (grad) {
        TapeEntry *entry = tape_record(g, OP_CROSS_ENTROPY, out, logits, NULL, NULL);
        entry->saved = probabilities;
        entry->indices = kept_targets;
        entry->int_args[0] = ignore_index;
        entry->int_args[1] = counted;
    }
    check_finite(g, OP_CROSS_ENTROPY, out, out->data, "values");
    return out;
}

/* L = (1/n) sum_r (log sum_v exp z_rv - z_r,t_r) over the n counted rows:
 * dL/dz_rv = (softmax(z_r)_v - [v == t_r]) / n;  ignored rows get nothing. */
static void cross_entropy_backward(TapeEntry *entry) {
    Tensor *logits = entry->inputs[0];
    int V = logits->shape[logits->ndim - 1], rows = leading_rows(logits);
    int ignore_index = entry->int_args[0], counted = entry->int_args[1];
    if (counted == 0) return;
    float scale = entry->out->grad[0] / (float)counted;
    OMP("omp parallel for num_threads(threads_get()) schedule(static) if ((long)rows * V >= PARALLEL_MIN_FLOATS)")
    for (int r = 0; r < rows; r++) {
        int target = entry->indices[r];
        if (target == ignore_index) continue;
        const float *p = entry->saved + (size_t)r * V;
        float *dz = logits->grad + (size_t)r * V;
        for (int v = 0; v < V; v++) dz[v] += scale * p[v];
        dz[target] -= scale;
    }
}

/* ---- regression and binary losses --------------------------------------------- */

Tensor *op_mse(Graph *g, Tensor *prediction, const Tensor *target) {
    tensor_check_shapes(prediction->numel == target->numel, "mse", prediction, target,
                        "prediction and target need the same number of elements");
    bool grad = graph_needs_grad(g, prediction, NULL, NULL);
    Tensor *out = op_output(g, OP_MSE, 1, (const int[]){1}, grad);
    double total = 0;
    for (int i = 0; i < prediction->numel; i++) {
        double diff = (double)prediction->data[i] - target->data[i];
        total += diff * diff;
    }
    out->data[0] = (float)(total / prediction->numel);
    if (grad) tape_record(g, OP_MSE, out, prediction, (Tensor *)target, NULL);
    check_finite(g, OP_MSE, out, out->data, "values");
    return out;
}

/* L = (1/n) sum (p - t)^2:  dL/dp = 2 (p - t) / n.  (The target is data, so it
 * gets no gradient.) */
static void mse_backward(TapeEntry *entry) {
    Tensor *p = entry->inputs[0];
    const Tensor *t = entry->inputs[1];
    float scale = 2.0f * entry->out->grad[0] / (float)p->numel;
    for (int i = 0; i < p->numel; i++) p->grad[i] += scale * (p->data[i] - t->data[i]);
}

Tensor *op_bce_with_logits(Graph *g, Tensor *logits, const Tensor *target) {
    tensor_check_shapes(logits->numel == target->numel, "bce_with_logits", logits, target,
                        "logits and target need the same number of elements");
    bool grad = graph_needs_grad(g, logits, NULL, NULL);
    Tensor *out = op_output(g, OP_BCE_WITH_LOGITS, 1, (const int[]){1}, grad);
    double total = 0;
    for (int i = 0; i < logits->numel; i++) {
        float x = logits->data[i], t = target->data[i];
        /* -[t log s(x) + (1-t) log(1-s(x))] = max(x,0) - x t + log(1 + e^-|x|),
         * which never takes the log of 0 nor exp of a large number. */
        total += (x > 0 ? x : 0) - x * t + log1pf(expf(-fabsf(x)));
    }
    out->data[0] = (float)(total / logits->numel);
    if (grad) tape_record(g, OP_BCE_WITH_LOGITS, out, logits, (Tensor *)target, NULL);
    check_finite(g, OP_BCE_WITH_LOGITS, out, out->data, "values");
    return out;
}

/* dL/dx = (sigmoid(x) - t) / n */
static void bce_with_logits_backward(TapeEntry *entry) {
    Tensor *x = entry->inputs[0];
    const Tensor *t = entry->inputs[1];
    float scale = entry->out->grad[0] / (float)x->numel;
    for (int i = 0; i < x->numel; i++) {
        float s = 1.0f / (1.0f + expf(-x->data[i]));
        x->grad[i] += scale * (s - t->data[i]);
    }
}

/* ---- layernorm over the last dimension ------------------------------------------ */

/* One row: y = (x - mean) rstd gamma + beta, rstd = 1 / sqrt(var + eps);
 * stats receives (mean, rstd).  Both sums run in fastmath.h's lanes. */
static void layernorm_row(const float *restrict x, const float *restrict gamma,
                          const float *restrict beta, float epsilon, int C, float *restrict y,
                          float *restrict stats) {
    float mean = sum_fast(x, C) / (float)C;
    for (int c = 0; c < C; c++) y[c] = x[c] - mean;
    float variance = dot_fast(y, y, C) / (float)C; /* biased, as PyTorch's LayerNorm */
    float rstd = 1.0f / sqrtf(variance + epsilon);
    for (int c = 0; c < C; c++) y[c] = y[c] * rstd * gamma[c] + beta[c];
    stats[0] = mean;
    stats[1] = rstd;
}

Tensor *op_layernorm(Graph *g, Tensor *x, Tensor *gamma, Tensor *beta, float epsilon) {
    int C = x->shape[x->ndim - 1], rows = leading_rows(x);
    tensor_check_shapes(gamma->ndim == 1 && gamma->shape[0] == C, "layernorm", x, gamma,
                        "gamma must be 1-D with the size of x's last dimension");
    tensor_check_shapes(tensor_same_shape(gamma, beta), "layernorm", gamma, beta,
                        "gamma and beta must have the same shape");
    bool grad = graph_needs_grad(g, x, gamma, beta);
    Tensor *out = op_output_like(g, OP_LAYERNORM, x, grad);
    /* (rows, 2): each row's mean and reciprocal standard deviation */
    float *stats = arena_alloc(&g->arena, (size_t)rows * 2 * sizeof(float));
    /* Rows are independent: shared out between the threads. */
    OMP("omp parallel for num_threads(threads_get()) schedule(static) if ((long)rows * C >= PARALLEL_MIN_FLOATS)")
    for (int r = 0; r < rows; r++)
        layernorm_row(x->data + (size_t)r * C, gamma->data, beta->data, epsilon, C,
                      out->data + (size_t)r * C, stats + 2 * r);
    if (grad) tape_record(g, OP_LAYERNORM, out, x, gamma, beta)->saved = stats;
    check_finite(g, OP_LAYERNORM, out, out->data, "values");
    return out;
}

/* EXERCISE layernorm_backward: x->grad, gamma->grad and beta->grad for y = gamma xhat + beta,
 * xhat = (x - mean) rstd per row of the last dimension; entry->saved holds each row's (mean, rstd).
 * gamma->grad or beta->grad is NULL for a frozen parameter: skip it then.
 * STUB: static void layernorm_backward(TapeEntry *entry) {
 * STUB:     (void)entry;
 * STUB:     exercise_missing("layernorm_backward");
 * STUB: } */
/* One row of dx += rstd (dxhat - mean_c(dxhat) - xhat mean_c(dxhat xhat)),
 * dxhat = dy gamma, with both means summed in LANES partial sums. */
static void layernorm_row_backward(const float *restrict x, const float *restrict dy,
                                   const float *restrict gamma, float mean, float rstd, int C,
                                   float *restrict dx) {
    float lanes_g[LANES] = {0}, lanes_gx[LANES] = {0};
    int blocked = C - C % LANES;
    for (int i = 0; i < blocked; i += LANES)
        for (int k = 0; k < LANES; k++) {
            float dxhat = dy[i + k] * gamma[i + k];
            lanes_g[k] += dxhat;
            lanes_gx[k] += dxhat * (x[i + k] - mean) * rstd;
        }
    for (int i = blocked; i < C; i++) {
        float dxhat = dy[i] * gamma[i];
        lanes_g[i - blocked] += dxhat;
        lanes_gx[i - blocked] += dxhat * (x[i] - mean) * rstd;
    }
    float mean_dxhat = lanes_total(lanes_g) / (float)C;
    float mean_dxhat_xhat = lanes_total(lanes_gx) / (float)C;
    for (int c = 0; c < C; c++) {
        float xhat = (x[c] - mean) * rstd;
        dx[c] += rstd * (dy[c] * gamma[c] - mean_dxhat - xhat * mean_dxhat_xhat);
    }
}

/* Columns [0, n) of one row's share of dgamma += dy xhat and dbeta += dy,
 * in one pass over dy; either pointer may be NULL (a frozen parameter). */
static void layernorm_row_params(const float *restrict x, const float *restrict dy, float mean,
                                 float rstd, int n, float *restrict dgamma, float *restrict dbeta) {
    if (dgamma && dbeta) {
        for (int c = 0; c < n; c++) {
            dgamma[c] += dy[c] * (x[c] - mean) * rstd;
            dbeta[c] += dy[c];
        }
    } else if (dgamma) {
        for (int c = 0; c < n; c++) dgamma[c] += dy[c] * (x[c] - mean) * rstd;
    } else if (dbeta) {
        accumulate_kernel(dy, dbeta, n);
    }
}

/* xhat = (x - mean) * rstd,  y = gamma * xhat + beta.
 * dgamma += sum_r dy * xhat,  dbeta += sum_r dy            (split by columns)
 * and with dxhat = dy * gamma:
 * dx = rstd * (dxhat - mean_c(dxhat) - xhat * mean_c(dxhat * xhat))   (by rows)
 * (the two means are what the row's mean and variance pass back). */
static void layernorm_backward(TapeEntry *entry) {
    Tensor *x = entry->inputs[0], *gamma = entry->inputs[1], *beta = entry->inputs[2];
    int C = x->shape[x->ndim - 1], rows = leading_rows(x), threads = threads_get();
    const float *stats = entry->saved, *dy = entry->out->grad;
    bool parallel = (long)rows * C >= PARALLEL_MIN_FLOATS;
    (void)parallel; /* (unused without OpenMP) */
    if (x->grad) {
        OMP("omp parallel for num_threads(threads) schedule(static) if (parallel)")
        for (int r = 0; r < rows; r++)
            layernorm_row_backward(x->data + (size_t)r * C, dy + (size_t)r * C, gamma->data,
                                   stats[2 * r], stats[2 * r + 1], C, x->grad + (size_t)r * C);
    }
    if (!gamma->grad && !beta->grad) return;
    /* Each thread takes a range of columns and walks all rows over it, so
     * each dgamma[c] and dbeta[c] is summed in row order whatever the
     * thread count (as column_sums does). */
    int chunk = (C + threads - 1) / threads;
    OMP("omp parallel for num_threads(threads) schedule(static) if (parallel)")
    for (int first = 0; first < C; first += chunk) {
        int count = first + chunk < C ? chunk : C - first;
        for (int r = 0; r < rows; r++)
            layernorm_row_params(x->data + (size_t)r * C + first, dy + (size_t)r * C + first,
                                 stats[2 * r], stats[2 * r + 1], count,
                                 gamma->grad ? gamma->grad + first : NULL,
                                 beta->grad ? beta->grad + first : NULL);
    }
}
/* END EXERCISE */

/* ---- gather_rows (embedding lookup) ------------------------------------------- */

Tensor *op_gather_rows(Graph *g, Tensor *table, const int *ids, int count) {
    int rows = table->shape[0], C = table->numel / rows;
    bool grad = graph_needs_grad(g, table, NULL, NULL);
    Tensor *out = op_output(g, OP_GATHER_ROWS, 2, (const int[]){count, C}, grad);
    int *kept_ids = arena_alloc(&g->arena, (size_t)count * sizeof(int));
    for (int i = 0; i < count; i++) {
        if (ids[i] < 0 || ids[i] >= rows)
            fatal("gather_rows: id %d at position %d is outside the table's %d rows", ids[i], i,
                  rows);
        kept_ids[i] = ids[i];
        memcpy(out->data + (size_t)i * C, table->data + (size_t)ids[i] * C, (size_t)C * sizeof(float));
    }
    if (grad) tape_record(g, OP_GATHER_ROWS, out, table, NULL, NULL)->indices = kept_ids;
    return out;
}

/* y_i = T[id_i]:  dT[id_i] += dy_i  (a row picked twice gets both gradients) */
static void gather_rows_backward(TapeEntry *entry) {
    Tensor *table = entry->inputs[0];
    int count = entry->out->shape[0], C = entry->out->shape[1];
    for (int i = 0; i < count; i++) {
        float *row = table->grad + (size_t)entry->indices[i] * C;
        const float *dy = entry->out->grad + (size_t)i * C;
        for (int c = 0; c < C; c++) row[c] += dy[c];
    }
}

/* ---- concat and slice on the last dimension ---------------------------------- */

Tensor *op_concat(Graph *g, Tensor *a, Tensor *b) {
    int Ca = a->shape[a->ndim - 1], Cb = b->shape[b->ndim - 1];
    bool leading_match = a->ndim == b->ndim;
    for (int i = 0; leading_match && i < a->ndim - 1; i++) leading_match = a->shape[i] == b->shape[i];
    tensor_check_shapes(leading_match, "concat", a, b, "all but the last dimension must match");
    int shape[TENSOR_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[a->ndim - 1] = Ca + Cb;
    bool grad = graph_needs_grad(g, a, b, NULL);
    Tensor *out = op_output(g, OP_CONCAT, a->ndim, shape, grad);
    int rows = leading_rows(a);
    for (int r = 0; r < rows; r++) {
        float *y = out->data + (size_t)r * (Ca + Cb);
        memcpy(y, a->data + (size_t)r * Ca, (size_t)Ca * sizeof(float));
        memcpy(y + Ca, b->data + (size_t)r * Cb, (size_t)Cb * sizeof(float));
    }
    if (grad) tape_record(g, OP_CONCAT, out, a, b, NULL);
    return out;
}

/* y = [a, b]: da += dy[:, :Ca], db += dy[:, Ca:] */
static void concat_backward(TapeEntry *entry) {
    Tensor *a = entry->inputs[0], *b = entry->inputs[1];
    int Ca = a->shape[a->ndim - 1], Cb = b->shape[b->ndim - 1], rows = leading_rows(a);
    for (int r = 0; r < rows; r++) {
        const float *dy = entry->out->grad + (size_t)r * (Ca + Cb);
        if (a->grad) for (int c = 0; c < Ca; c++) a->grad[(size_t)r * Ca + c] += dy[c];
        if (b->grad) for (int c = 0; c < Cb; c++) b->grad[(size_t)r * Cb + c] += dy[Ca + c];
    }
}

Tensor *op_slice_columns(Graph *g, Tensor *x, int first, int count) {
    int C = x->shape[x->ndim - 1];
    if (first < 0 || count < 1 || first + count > C)
        fatal("slice_columns: columns [%d, %d) outside the last dimension of size %d", first,
              first + count, C);
    int shape[TENSOR_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = count;
    bool grad = graph_needs_grad(g, x, NULL, NULL);
    Tensor *out = op_output(g, OP_SLICE_COLUMNS, x->ndim, shape, grad);
    int rows = leading_rows(x);
    for (int r = 0; r < rows; r++)
        memcpy(out->data + (size_t)r * count, x->data + (size_t)r * C + first,
               (size_t)count * sizeof(float));
    if (grad) {
        TapeEntry *entry = tape_record(g, OP_SLICE_COLUMNS, out, x, NULL, NULL);
        entry->int_args[0] = first;
    }
    return out;
}

/* y = x[:, first:first+count]:  dx[:, first:first+count] += dy */
static void slice_columns_backward(TapeEntry *entry) {
    Tensor *x = entry->inputs[0];
    int C = x->shape[x->ndim - 1], count = entry->out->shape[entry->out->ndim - 1];
    int first = entry->int_args[0], rows = leading_rows(x);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < count; c++)
            x->grad[(size_t)r * C + first + c] += entry->out->grad[(size_t)r * count + c];
}

/* ---- dropout ------------------------------------------------------------------ */

Tensor *op_dropout(Graph *g, Tensor *x, float p, Rng *rng) {
    if (p < 0 || p >= 1) fatal("dropout: probability %g outside [0, 1)", (double)p);
    if (!g->training || p == 0) return x;
    bool grad = graph_needs_grad(g, x, NULL, NULL);
    Tensor *out = op_output_like(g, OP_DROPOUT, x, grad);
    /* (numel) each element's factor: 0 (dropped) or 1/(1-p) (kept), so the
     * expected value of the output equals the input. */
    float *factors = arena_alloc(&g->arena, (size_t)x->numel * sizeof(float));
    float keep_scale = 1.0f / (1.0f - p);
    for (int i = 0; i < x->numel; i++) {
        factors[i] = rng_uniform(rng) < p ? 0.0f : keep_scale;
        out->data[i] = x->data[i] * factors[i];
    }
    if (grad) tape_record(g, OP_DROPOUT, out, x, NULL, NULL)->saved = factors;
    return out;
}

/* y = x * m (m fixed by the forward):  dx += dy * m */
static void dropout_backward(TapeEntry *entry) {
    Tensor *x = entry->inputs[0];
    for (int i = 0; i < x->numel; i++) x->grad[i] += entry->out->grad[i] * entry->saved[i];
}

/* ======================================================================== */
/* 5. Backward: the reverse walk over the tape                               */
/* ======================================================================== */

static void entry_backward(TapeEntry *entry) {
    switch (entry->op) {
    case OP_MATMUL: matmul_backward(entry); break;
    case OP_ADD:
    case OP_SUB:
    case OP_MUL: elementwise_binary_backward(entry); break;
    case OP_SCALE: scale_backward(entry); break;
    case OP_ADD_BIAS: add_bias_backward(entry); break;
    case OP_LINEAR: linear_backward(entry); break;
    case OP_SUM:
    case OP_MEAN: reduce_all_backward(entry); break;
    case OP_TANH:
    case OP_SIGMOID:
    case OP_RELU:
    case OP_GELU: activation_backward(entry); break;
    case OP_SOFTMAX: softmax_backward(entry); break;
    case OP_CROSS_ENTROPY: cross_entropy_backward(entry); break;
    case OP_MSE: mse_backward(entry); break;
    case OP_BCE_WITH_LOGITS: bce_with_logits_backward(entry); break;
    case OP_LAYERNORM: layernorm_backward(entry); break;
    case OP_GATHER_ROWS: gather_rows_backward(entry); break;
    case OP_CONCAT: concat_backward(entry); break;
    case OP_SLICE_COLUMNS: slice_columns_backward(entry); break;
    case OP_DROPOUT: dropout_backward(entry); break;
    case OP_CUSTOM: entry->custom_backward(entry); break;
    case OP_LEAF:
    case OP_COUNT: fatal("backward: tape entry with op %d has no backward", (int)entry->op);
    }
}

static const char *entry_name(const TapeEntry *entry) {
    return entry->op == OP_CUSTOM ? entry->custom_name : op_names[entry->op];
}

/* Gradients zeroed late, or never.  An op's output gets its gradient
 * buffer without zeroing it (grad_unwritten), because zeroing every
 * gradient up front is a full extra pass over memory: 7% of a small
 * transformer's step.  Instead:
 *   - an entry whose output gradient is still unwritten gets no gradient
 *     from anywhere, so its backward would add zeros: it is skipped;
 *   - the backwards of linear (dx = dy W), of a + b and a - b (da = dy) and
 *     of GELU overwrite an unwritten input gradient instead of adding to
 *     it (tensor_grad_overwrite): most activations have exactly one consumer, and
 *     then nothing ever zeroes their gradient;
 *     A custom op declares the inputs its backward overwrites the same way
 *     (TapeEntry.overwrites_input, calling tensor_grad_overwrite too);
 *   - for every other input, the unwritten gradient is zeroed just before
 *     the first backward that adds into it, while it is about to be used;
 *   - views (tensor_rows, tensor_reshape) share their base's flag: the
 *     first backward that adds into any view zeroes the whole base then,
 *     and one that would overwrite a view of only part of it adds instead;
 *   - at the end, any gradient still unwritten is zeroed, so that after
 *     graph_backward every gradient holds a gradient. */
static bool backward_overwrites_input(const TapeEntry *entry, int k) {
    switch (entry->op) {
    case OP_LINEAR: case OP_ADD: case OP_SUB: case OP_GELU: return k == 0;
    case OP_CUSTOM: return (entry->overwrites_input >> k) & 1u;
    default: return false;
    }
}

void graph_backward(Graph *g, Tensor *loss) {
    if (loss->numel != 1) {
        char shape[64];
        fatal("graph_backward: the loss must have one element, got shape %s",
              tensor_shape_string(loss, shape, sizeof shape));
    }
    if (loss->grad == NULL)
        fatal("graph_backward: the loss has no gradient (nothing it depends on has one)");
    grad_make_zero(loss);
    loss->grad[0] += 1.0f; /* d(loss)/d(loss) */
    for (int i = g->tape_length - 1; i >= 0; i--) {
        TapeEntry *entry = &g->tape[i];
        if (grad_is_unwritten(entry->out)) continue; /* no gradient reached it */
        for (int k = 0; k < 3; k++) {
            Tensor *input = entry->inputs[k];
            if (input && input->grad && !backward_overwrites_input(entry, k)) grad_make_zero(input);
        }
        entry_backward(entry);
        if (g->check_numerics)
            for (int k = 0; k < 3; k++)
                if (entry->inputs[k] && entry->inputs[k]->grad && !grad_is_unwritten(entry->inputs[k]))
                    check_finite_named(g, entry_name(entry), entry->inputs[k],
                                       entry->inputs[k]->grad, "gradient (backward)");
    }
    for (int i = 0; i < g->tape_length; i++) {
        TapeEntry *entry = &g->tape[i];
        grad_make_zero(entry->out);
        for (int k = 0; k < 3; k++) /* e.g. a tensor_empty input that no gradient reached */
            if (entry->inputs[k] && entry->inputs[k]->grad) grad_make_zero(entry->inputs[k]);
    }
}

void graph_print_tape(const Graph *g) {
    printf("tape: %d entries, arena %zu of %zu bytes used (peak %zu)\n", g->tape_length,
           g->arena.used, g->arena.capacity, g->arena.peak);
    for (int i = 0; i < g->tape_length; i++) {
        const TapeEntry *entry = &g->tape[i];
        char shape[64];
        printf("%4d  %-16s -> %s", i, entry_name(entry),
               tensor_shape_string(entry->out, shape, sizeof shape));
        for (int k = 0; k < 3; k++) {
            const Tensor *input = entry->inputs[k];
            if (input == NULL) continue;
            printf("%s%s%s", k ? ", " : "   from ", input->name ? input->name : "?",
                   tensor_shape_string(input, shape, sizeof shape));
        }
        printf("\n");
    }
    fflush(stdout);
}
