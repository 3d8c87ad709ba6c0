/* transformer/kernels.c: the custom ops of the model other than attention.
 *
 * Legend: B batch, T time, C channels, V vocabulary, R rows (all leading
 * dimensions flattened), In/Out a Linear's sizes.
 *
 *   transformer_embed       x = E[ids] + P[t]      (token + position)
 *   transformer_mean_pool   the encoder's sentence vector
 *   transformer_linear      y = x W^T + b          (fused: one tape entry)
 *   transformer_layernorm   y = (x - mean) / std * gamma + beta
 *   transformer_gelu        y = x Phi(x)
 *   transformer_residual    y = x + f(x)'s output
 *   transformer_cross_entropy  mean of -log softmax(logits)[target]
 *
 * The last five compute what op_matmul + op_add_bias, op_layernorm, op_gelu,
 * op_add and op_cross_entropy compute in common/, but spread their loops
 * over the threads and use the vectorisable exp/erf of fastmath.h: at the
 * benchmark sizes these pointwise passes would otherwise cost as much as
 * the matmuls.  Every reduction (a bias or gamma gradient summed over rows)
 * is split by columns, never by rows, and per-row losses are summed on one
 * thread in row order, so each sum runs in the same order whatever the
 * thread count: results are identical with 1 or 2 threads, and without
 * OpenMP.
 */
#include <math.h>
#include <string.h>

#include "fastmath.h"
#include "matmul.h"
#include "transformer.h"

#ifdef _OPENMP
#define OMP(directive) _Pragma(directive)
#else
#define OMP(directive)
#endif

/* Below this many floats a pointwise pass stays on one thread: waking the
 * others costs a few microseconds. */
enum { PARALLEL_MIN_FLOATS = 1 << 14 };
/* Linear layers on at most this many rows use dot products, not matmul(). */
enum { SMALL_ROWS = 4 };

static int rows_of(const Tensor *t) { return t->numel / t->shape[t->ndim - 1]; }

Tensor *transformer_output_tensor(Graph *g, int ndim, const int *shape, bool with_grad,
                                  const char *name) {
    Tensor *t = arena_alloc(&g->arena, sizeof(Tensor));
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < TENSOR_MAX_DIMS; i++) {
        t->shape[i] = i < ndim ? shape[i] : 1;
        t->numel *= t->shape[i];
    }
    t->data = arena_alloc(&g->arena, (size_t)t->numel * sizeof(float));
    if (with_grad && !g->no_grad) {
        t->grad = arena_alloc(&g->arena, (size_t)t->numel * sizeof(float));
        memset(t->grad, 0, (size_t)t->numel * sizeof(float));
    }
    t->name = name;
    return t;
}

/* ==== Token embedding + positions ============================================ */

static void embed_backward(TapeEntry *entry);

Tensor *transformer_embed(Graph *g, Tensor *table, Tensor *positions, const int *ids, int B,
                          int T, int first_position) {
    int V = table->shape[0], C = table->shape[1];
    if (positions && first_position + T > positions->shape[0])
        fatal("embed: positions %d..%d beyond the table's %d", first_position,
              first_position + T - 1, positions->shape[0]);
    bool grad = graph_needs_grad(g, table, positions, NULL);
    Tensor *out = transformer_output_tensor(g, 3, (const int[]){B, T, C}, grad, "embed"); /* (B, T, C) */
    int *kept_ids = arena_alloc(&g->arena, (size_t)B * T * sizeof(int)); /* (B, T) */
    for (int bt = 0; bt < B * T; bt++) {
        int id = ids[bt], t = bt % T;
        if (id < 0 || id >= V) fatal("embed: token id %d at %d outside [0, %d)", id, bt, V);
        kept_ids[bt] = id;
        const float *e = table->data + (size_t)id * C;
        float *y = out->data + (size_t)bt * C;
        if (positions) {
            const float *p = positions->data + (size_t)(first_position + t) * C;
            for (int c = 0; c < C; c++) y[c] = e[c] + p[c];
        } else {
            memcpy(y, e, (size_t)C * sizeof(float));
        }
    }
    if (grad) {
        TapeEntry *entry = graph_record_custom(g, "embed", embed_backward, out, table,
                                               positions && positions->grad ? positions : NULL,
                                               NULL);
        entry->indices = kept_ids;
        entry->int_args[0] = first_position;
    }
    return out;
}

/* y[b,t] = E[id[b,t]] + P[t]:  dE[id] += dy[b,t] (a token used twice gets
 * both), dP[t] += sum over b of dy[b,t]. */
static void embed_backward(TapeEntry *entry) {
    Tensor *table = entry->inputs[0], *positions = entry->inputs[1], *out = entry->out;
    int T = out->shape[1], C = out->shape[2], BT = out->shape[0] * T;
    for (int bt = 0; bt < BT; bt++) {
        const float *dy = out->grad + (size_t)bt * C;
        if (table->grad) {
            float *de = table->grad + (size_t)entry->indices[bt] * C;
            for (int c = 0; c < C; c++) de[c] += dy[c];
        }
        if (positions) {
            float *dp = positions->grad + (size_t)(entry->int_args[0] + bt % T) * C;
            for (int c = 0; c < C; c++) dp[c] += dy[c];
        }
    }
}

/* ==== Mean pooling over the real tokens ======================================= */

static void mean_pool_backward(TapeEntry *entry);

Tensor *transformer_mean_pool(Graph *g, Tensor *x, const int *lengths) {
    int B = x->shape[0], T = x->shape[1], C = x->shape[2];
    bool grad = graph_needs_grad(g, x, NULL, NULL);
    Tensor *out = tensor_of(g, grad, 2, B, C); /* (B, C) */
    out->name = "mean_pool";
    int *kept = arena_alloc(&g->arena, (size_t)B * sizeof(int));
    for (int b = 0; b < B; b++) {
        int n = lengths ? lengths[b] : T;
        if (n < 1 || n > T) fatal("mean_pool: length %d of row %d outside [1, %d]", n, b, T);
        kept[b] = n;
        float *y = out->data + (size_t)b * C;
        for (int t = 0; t < n; t++)
            for (int c = 0; c < C; c++) y[c] += x->data[((size_t)b * T + t) * C + c];
        for (int c = 0; c < C; c++) y[c] /= (float)n;
    }
    if (grad) graph_record_custom(g, "mean_pool", mean_pool_backward, out, x, NULL, NULL)->indices = kept;
    return out;
}

/* y_b = (1/n_b) sum_{t < n_b} x_bt:  dx_bt += dy_b / n_b for t < n_b. */
static void mean_pool_backward(TapeEntry *entry) {
    Tensor *x = entry->inputs[0];
    int B = x->shape[0], T = x->shape[1], C = x->shape[2];
    for (int b = 0; b < B; b++) {
        int n = entry->indices[b];
        const float *dy = entry->out->grad + (size_t)b * C;
        for (int t = 0; t < n; t++)
            for (int c = 0; c < C; c++) x->grad[((size_t)b * T + t) * C + c] += dy[c] / (float)n;
    }
}

/* ==== Linear: y = x W^T + b ===================================================== */

static void linear_backward(TapeEntry *entry);

/* db[c] += sum_r dy[r, c], split over column ranges (see the header). */
static void column_sums(const float *dy, int rows, int cols, float *sums) {
    int threads = threads_get();
    int chunk = (cols + threads - 1) / threads;
    OMP("omp parallel for num_threads(threads) schedule(static) if ((long)rows * cols >= PARALLEL_MIN_FLOATS)")
    for (int first = 0; first < cols; first += chunk) {
        int last = first + chunk < cols ? first + chunk : cols;
        for (int r = 0; r < rows; r++) {
            const float *row = dy + (size_t)r * cols;
            for (int c = first; c < last; c++) sums[c] += row[c];
        }
    }
}

Tensor *transformer_linear(Graph *g, const Linear *layer, Tensor *x) {
    Tensor *w = layer->weight, *bias = layer->bias;
    int In = w->shape[1], Out = w->shape[0];
    tensor_check_shapes(x->shape[x->ndim - 1] == In, "linear", x, w,
                        "x's last dimension must equal the weight's second (x W^T)");
    int shape[TENSOR_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = Out;
    bool grad = graph_needs_grad(g, x, w, bias);
    Tensor *out = transformer_output_tensor(g, x->ndim, shape, grad, "linear"); /* (..., Out) */
    int rows = rows_of(x);
    /* Start every row of y from the bias (or 0), then add x W^T onto it. */
    for (int r = 0; r < rows; r++) {
        if (bias) memcpy(out->data + (size_t)r * Out, bias->data, (size_t)Out * sizeof(float));
        else memset(out->data + (size_t)r * Out, 0, (size_t)Out * sizeof(float));
    }
    if (rows <= SMALL_ROWS) {
        /* a few rows (generation: one token): one dot product per output.
         * matmul() would first copy ("pack") the whole weight matrix. */
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < Out; o++)
                out->data[(size_t)r * Out + o] +=
                    dot_fast(x->data + (size_t)r * In, w->data + (size_t)o * In, In);
    } else {
        MatmulSpec spec = {.batch = 1, .M = rows, .N = Out, .K = In, .A = x->data, .lda = In,
                           .B = w->data, .ldb = In, .transpose_b = true, .C = out->data,
                           .ldc = Out, .accumulate = true};
        matmul(&spec);
    }
    if (grad) graph_record_custom(g, "linear", linear_backward, out, x, w, bias);
    graph_check_finite(g, "linear", out);
    return out;
}

/* y = x W^T + b, x (R, In), W (Out, In):
 *   dx += dy W        (R, Out) @ (Out, In)
 *   dW += dy^T x      (Out, R) @ (R, In)
 *   db += sum_r dy */
static void linear_backward(TapeEntry *entry) {
    Tensor *x = entry->inputs[0], *w = entry->inputs[1], *bias = entry->inputs[2];
    const float *dy = entry->out->grad;
    int In = w->shape[1], Out = w->shape[0], rows = rows_of(x);
    if (x->grad) {
        MatmulSpec spec = {.batch = 1, .M = rows, .N = In, .K = Out, .A = dy, .lda = Out,
                           .B = w->data, .ldb = In, .C = x->grad, .ldc = In, .accumulate = true};
        matmul(&spec);
    }
    if (w->grad) {
        MatmulSpec spec = {.batch = 1, .M = Out, .N = In, .K = rows, .A = dy, .lda = Out,
                           .transpose_a = true, .B = x->data, .ldb = In, .C = w->grad, .ldc = In,
                           .accumulate = true};
        matmul(&spec);
    }
    if (bias && bias->grad) column_sums(dy, rows, Out, bias->grad);
}

/* ==== LayerNorm ==================================================================== */

static void layernorm_backward(TapeEntry *entry);

/* One row: y = (x - mean) rstd gamma + beta, rstd = 1 / sqrt(var + eps);
 * stats receives (mean, rstd). */
static void layernorm_row(const float *restrict x, const float *restrict gamma,
                          const float *restrict beta, float epsilon, int C, float *restrict y,
                          float *restrict stats) {
    float mean = sum_fast(x, C) / (float)C;
    for (int c = 0; c < C; c++) y[c] = x[c] - mean;
    float variance = dot_fast(y, y, C) / (float)C; /* biased, as PyTorch */
    float rstd = 1.0f / sqrtf(variance + epsilon);
    for (int c = 0; c < C; c++) y[c] = y[c] * rstd * gamma[c] + beta[c];
    stats[0] = mean;
    stats[1] = rstd;
}

/* One row of dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)),
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

/* Columns [0, n) of one row's share of dgamma += dy xhat, dbeta += dy. */
static void layernorm_row_params(const float *restrict x, const float *restrict dy, float mean,
                                 float rstd, int n, float *restrict dgamma, float *restrict dbeta) {
    for (int c = 0; c < n; c++) {
        dgamma[c] += dy[c] * (x[c] - mean) * rstd;
        dbeta[c] += dy[c];
    }
}

Tensor *transformer_layernorm(Graph *g, const LayerNorm *layer, Tensor *x) {
    Tensor *gamma = layer->gamma, *beta = layer->beta;
    int C = x->shape[x->ndim - 1], rows = rows_of(x);
    tensor_check_shapes(gamma->shape[0] == C, "layernorm", x, gamma,
                        "gamma must have the size of x's last dimension");
    bool grad = graph_needs_grad(g, x, gamma, beta);
    Tensor *out = transformer_output_tensor(g, x->ndim, x->shape, grad, "layernorm");
    float *stats = arena_alloc(&g->arena, (size_t)rows * 2 * sizeof(float)); /* (R, 2) mean, rstd */
    float epsilon = layer->epsilon;
    OMP("omp parallel for num_threads(threads_get()) schedule(static) if ((long)rows * C >= PARALLEL_MIN_FLOATS)")
    for (int r = 0; r < rows; r++)
        layernorm_row(x->data + (size_t)r * C, gamma->data, beta->data, epsilon, C,
                      out->data + (size_t)r * C, stats + 2 * r);
    if (grad) graph_record_custom(g, "layernorm", layernorm_backward, out, x, gamma, beta)->saved = stats;
    graph_check_finite(g, "layernorm", out);
    return out;
}

/* xhat = (x - mean) rstd, y = gamma xhat + beta:
 *   dgamma += sum_r dy xhat,  dbeta += sum_r dy          (by columns)
 *   dx = rstd (dxhat - mean_c(dxhat) - xhat mean_c(dxhat xhat)),  dxhat = dy gamma
 *                                                         (by rows)   */
static void layernorm_backward(TapeEntry *entry) {
    Tensor *x = entry->inputs[0], *gamma = entry->inputs[1], *beta = entry->inputs[2];
    int C = x->shape[x->ndim - 1], rows = rows_of(x), threads = threads_get();
    const float *stats = entry->saved, *dy_all = entry->out->grad;
    bool parallel = (long)rows * C >= PARALLEL_MIN_FLOATS;
    (void)parallel; /* (unused without OpenMP) */
    if (x->grad) {
        OMP("omp parallel for num_threads(threads) schedule(static) if (parallel)")
        for (int r = 0; r < rows; r++)
            layernorm_row_backward(x->data + (size_t)r * C, dy_all + (size_t)r * C, gamma->data,
                                   stats[2 * r], stats[2 * r + 1], C, x->grad + (size_t)r * C);
    }
    if (!gamma->grad || !beta->grad) return; /* both are parameters, or neither */
    int chunk = (C + threads - 1) / threads;
    OMP("omp parallel for num_threads(threads) schedule(static) if (parallel)")
    for (int first = 0; first < C; first += chunk) {
        int count = first + chunk < C ? chunk : C - first;
        for (int r = 0; r < rows; r++)
            layernorm_row_params(x->data + (size_t)r * C + first, dy_all + (size_t)r * C + first,
                                 stats[2 * r], stats[2 * r + 1], count, gamma->grad + first,
                                 beta->grad + first);
    }
}

/* ==== GELU and the residual add ===================================================== */

/* Pointwise passes are cut into chunks of CHUNK floats shared out between
 * the threads; each chunk runs a small kernel whose pointers are `restrict`
 * (they never overlap), so that the compiler vectorises its loop. */
enum { CHUNK = 1 << 13 };

static int chunk_count(int n) { return (n + CHUNK - 1) / CHUNK; }
static int chunk_size(int n, int c) { return n - c * CHUNK < CHUNK ? n - c * CHUNK : CHUNK; }

static const float INV_SQRT2 = 0.70710678118654752440f;
static const float INV_SQRT_2PI = 0.39894228040143267794f;

/* GCC compiles ISO C without fusing a * b + c into one instruction; these
 * polynomial-heavy loops allow it (as common/matmul.c's micro-kernel does):
 * nothing is reordered, each a * b + c is just rounded once instead of twice. */
#if defined(__GNUC__) && !defined(__clang__)
#define FUSE_MULTIPLY_ADD __attribute__((optimize("fp-contract=fast")))
#else
#define FUSE_MULTIPLY_ADD
#endif

/* y = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2 */
FUSE_MULTIPLY_ADD
static void gelu_kernel(const float *restrict x, float *restrict y, int n) {
    for (int i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erf_fast(x[i] * INV_SQRT2));
}

/* dx += dy (Phi(x) + x phi(x)),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
 * erf_fast(x / sqrt 2) needs exp(-x^2 / 2) too, so it is computed once
 * here and shared: the erf of fastmath.h written out with it. */
FUSE_MULTIPLY_ADD
static void gelu_backward_kernel(const float *restrict x, const float *restrict dy,
                                 float *restrict dx, int n) {
    for (int i = 0; i < n; i++) {
        float gauss = exp_fast(-0.5f * x[i] * x[i]);          /* exp(-x^2/2) = exp(-z^2) */
        float erf_z = erf_from_exp(x[i] * INV_SQRT2, gauss);  /* erf(z), z = x / sqrt 2 */
        float cdf = 0.5f * (1.0f + erf_z);
        dx[i] += dy[i] * (cdf + x[i] * INV_SQRT_2PI * gauss);
    }
}

static void add_kernel(const float *restrict a, const float *restrict b, float *restrict y, int n) {
    for (int i = 0; i < n; i++) y[i] = a[i] + b[i];
}

static void accumulate_kernel(const float *restrict d, float *restrict y, int n) {
    for (int i = 0; i < n; i++) y[i] += d[i];
}

static void gelu_backward(TapeEntry *entry);

/* GELU, the exact form (PyTorch's default), with erf from fastmath.h. */
Tensor *transformer_gelu(Graph *g, Tensor *x) {
    bool grad = graph_needs_grad(g, x, NULL, NULL);
    Tensor *out = transformer_output_tensor(g, x->ndim, x->shape, grad, "gelu");
    int n = x->numel;
    OMP("omp parallel for num_threads(threads_get()) schedule(static) if (n >= PARALLEL_MIN_FLOATS)")
    for (int c = 0; c < chunk_count(n); c++)
        gelu_kernel(x->data + (size_t)c * CHUNK, out->data + (size_t)c * CHUNK, chunk_size(n, c));
    if (grad) graph_record_custom(g, "gelu", gelu_backward, out, x, NULL, NULL);
    graph_check_finite(g, "gelu", out);
    return out;
}

static void gelu_backward(TapeEntry *entry) {
    Tensor *x = entry->inputs[0];
    int n = x->numel;
    OMP("omp parallel for num_threads(threads_get()) schedule(static) if (n >= PARALLEL_MIN_FLOATS)")
    for (int c = 0; c < chunk_count(n); c++) {
        size_t first = (size_t)c * CHUNK;
        gelu_backward_kernel(x->data + first, entry->out->grad + first, x->grad + first,
                             chunk_size(n, c));
    }
}

static void residual_backward(TapeEntry *entry);

Tensor *transformer_residual(Graph *g, Tensor *x, Tensor *y) {
    tensor_check_shapes(tensor_same_shape(x, y), "residual", x, y, "x + y needs equal shapes");
    bool grad = graph_needs_grad(g, x, y, NULL);
    Tensor *out = transformer_output_tensor(g, x->ndim, x->shape, grad, "residual");
    int n = x->numel;
    OMP("omp parallel for num_threads(threads_get()) schedule(static) if (n >= PARALLEL_MIN_FLOATS)")
    for (int c = 0; c < chunk_count(n); c++) {
        size_t first = (size_t)c * CHUNK;
        add_kernel(x->data + first, y->data + first, out->data + first, chunk_size(n, c));
    }
    if (grad) graph_record_custom(g, "residual", residual_backward, out, x, y, NULL);
    return out;
}

/* out = x + y:  dx += dout, dy += dout */
static void residual_backward(TapeEntry *entry) {
    Tensor *x = entry->inputs[0], *y = entry->inputs[1];
    int n = x->numel;
    OMP("omp parallel for num_threads(threads_get()) schedule(static) if (n >= PARALLEL_MIN_FLOATS)")
    for (int c = 0; c < chunk_count(n); c++) {
        size_t first = (size_t)c * CHUNK;
        const float *d = entry->out->grad + first;
        if (x->grad) accumulate_kernel(d, x->grad + first, chunk_size(n, c));
        if (y->grad) accumulate_kernel(d, y->grad + first, chunk_size(n, c));
    }
}

/* ==== Cross-entropy: log-softmax and the negative log-likelihood, fused ============== */

static void cross_entropy_backward(TapeEntry *entry);

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

Tensor *transformer_cross_entropy(Graph *g, Tensor *logits, const int *targets) {
    int V = logits->shape[logits->ndim - 1], rows = rows_of(logits);
    bool grad = graph_needs_grad(g, logits, NULL, NULL);
    Tensor *out = transformer_output_tensor(g, 1, (const int[]){1}, grad, "cross_entropy");
    /* probabilities (R, V) for backward, then each row's loss (R) */
    float *probabilities = arena_alloc(&g->arena, ((size_t)rows * V + rows) * sizeof(float));
    float *row_loss = probabilities + (size_t)rows * V;
    int *kept = arena_alloc(&g->arena, (size_t)rows * sizeof(int)); /* (R) targets */
    for (int r = 0; r < rows; r++) {
        if (targets[r] != -1 && (targets[r] < 0 || targets[r] >= V))
            fatal("cross_entropy: target %d of row %d is outside [0, %d)", targets[r], r, V);
        kept[r] = targets[r];
    }
    OMP("omp parallel for num_threads(threads_get()) schedule(static) if ((long)rows * V >= PARALLEL_MIN_FLOATS)")
    for (int r = 0; r < rows; r++)
        row_loss[r] = kept[r] < 0 ? 0.0f
                                  : cross_entropy_row(logits->data + (size_t)r * V, V, kept[r],
                                                      probabilities + (size_t)r * V);
    double total = 0; /* summed in row order, on one thread: the same for any thread count */
    int counted = 0;
    for (int r = 0; r < rows; r++)
        if (kept[r] >= 0) total += row_loss[r], counted++;
    out->data[0] = counted ? (float)(total / counted) : 0.0f;
    if (grad) {
        TapeEntry *entry = graph_record_custom(g, "cross_entropy", cross_entropy_backward, out,
                                               logits, NULL, NULL);
        entry->saved = probabilities;
        entry->indices = kept;
        entry->int_args[0] = counted;
    }
    graph_check_finite(g, "cross_entropy", out);
    return out;
}

/* L = (1/n) sum over the n rows with a target of -log softmax(z_r)[t_r]:
 * dz_r += (softmax(z_r) - onehot(t_r)) dL / n;  rows without a target get nothing. */
static void cross_entropy_backward(TapeEntry *entry) {
    Tensor *logits = entry->inputs[0];
    int V = logits->shape[logits->ndim - 1], rows = rows_of(logits), counted = entry->int_args[0];
    if (counted == 0) return;
    float scale = entry->out->grad[0] / (float)counted;
    OMP("omp parallel for num_threads(threads_get()) schedule(static) if ((long)rows * V >= PARALLEL_MIN_FLOATS)")
    for (int r = 0; r < rows; r++) {
        int target = entry->indices[r];
        if (target < 0) continue;
        const float *p = entry->saved + (size_t)r * V;
        float *dz = logits->grad + (size_t)r * V;
        for (int v = 0; v < V; v++) dz[v] += scale * p[v];
        dz[target] -= scale;
    }
}
