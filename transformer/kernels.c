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
 *
 * The last four compute what op_matmul + op_add_bias, op_layernorm, op_gelu
 * and op_add compute in common/, but spread their loops over the threads
 * and use the vectorisable exp/erf of fastmath.h: at the benchmark sizes
 * these pointwise passes would otherwise cost as much as the matmuls.
 * Every reduction (a bias or gamma gradient summed over rows) is split by
 * columns, never by rows, so each sum runs in the same order whatever the
 * thread count: results are identical with 1 or 2 threads.
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

static int rows_of(const Tensor *t) { return t->numel / t->shape[t->ndim - 1]; }

/* ==== Token embedding + positions ============================================ */

static void embed_backward(TapeEntry *entry);

Tensor *transformer_embed(Graph *g, Tensor *table, Tensor *positions, const int *ids, int B,
                          int T, int first_position) {
    int V = table->shape[0], C = table->shape[1];
    if (positions && first_position + T > positions->shape[0])
        fatal("embed: positions %d..%d beyond the table's %d", first_position,
              first_position + T - 1, positions->shape[0]);
    bool grad = graph_needs_grad(g, table, positions, NULL);
    Tensor *out = tensor_of(g, grad, 3, B, T, C); /* (B, T, C) */
    out->name = "embed";
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
    Tensor *out = tensor_new(g, x->ndim, shape, grad); /* (..., Out) */
    out->name = "linear";
    int rows = rows_of(x);
    /* Start every row of y from the bias, then add x W^T onto it. */
    if (bias)
        for (int r = 0; r < rows; r++)
            memcpy(out->data + (size_t)r * Out, bias->data, (size_t)Out * sizeof(float));
    MatmulSpec spec = {.batch = 1, .M = rows, .N = Out, .K = In, .A = x->data, .lda = In,
                       .B = w->data, .ldb = In, .transpose_b = true, .C = out->data, .ldc = Out,
                       .accumulate = bias != NULL};
    matmul(&spec);
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

Tensor *transformer_layernorm(Graph *g, const LayerNorm *layer, Tensor *x) {
    Tensor *gamma = layer->gamma, *beta = layer->beta;
    int C = x->shape[x->ndim - 1], rows = rows_of(x);
    tensor_check_shapes(gamma->shape[0] == C, "layernorm", x, gamma,
                        "gamma must have the size of x's last dimension");
    bool grad = graph_needs_grad(g, x, gamma, beta);
    Tensor *out = tensor_new(g, x->ndim, x->shape, grad);
    out->name = "layernorm";
    float *stats = arena_alloc(&g->arena, (size_t)rows * 2 * sizeof(float)); /* (R, 2) mean, rstd */
    float epsilon = layer->epsilon;
    OMP("omp parallel for num_threads(threads_get()) schedule(static) if ((long)rows * C >= PARALLEL_MIN_FLOATS)")
    for (int r = 0; r < rows; r++) {
        const float *in = x->data + (size_t)r * C;
        float *y = out->data + (size_t)r * C;
        float mean = 0, variance = 0;
        for (int c = 0; c < C; c++) mean += in[c];
        mean /= (float)C;
        for (int c = 0; c < C; c++) variance += (in[c] - mean) * (in[c] - mean);
        variance /= (float)C; /* biased, as PyTorch */
        float rstd = 1.0f / sqrtf(variance + epsilon);
        for (int c = 0; c < C; c++) y[c] = (in[c] - mean) * rstd * gamma->data[c] + beta->data[c];
        stats[2 * r] = mean;
        stats[2 * r + 1] = rstd;
    }
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
    if (x->grad) {
        OMP("omp parallel for num_threads(threads) schedule(static) if (parallel)")
        for (int r = 0; r < rows; r++) {
            const float *in = x->data + (size_t)r * C, *dy = dy_all + (size_t)r * C;
            float mean = stats[2 * r], rstd = stats[2 * r + 1];
            float mean_dxhat = 0, mean_dxhat_xhat = 0;
            for (int c = 0; c < C; c++) {
                float dxhat = dy[c] * gamma->data[c];
                mean_dxhat += dxhat;
                mean_dxhat_xhat += dxhat * (in[c] - mean) * rstd;
            }
            mean_dxhat /= (float)C;
            mean_dxhat_xhat /= (float)C;
            float *dx = x->grad + (size_t)r * C;
            for (int c = 0; c < C; c++) {
                float xhat = (in[c] - mean) * rstd;
                dx[c] += rstd * (dy[c] * gamma->data[c] - mean_dxhat - xhat * mean_dxhat_xhat);
            }
        }
    }
    if (!gamma->grad && !beta->grad) return;
    int chunk = (C + threads - 1) / threads;
    OMP("omp parallel for num_threads(threads) schedule(static) if (parallel)")
    for (int first = 0; first < C; first += chunk) {
        int last = first + chunk < C ? first + chunk : C;
        for (int r = 0; r < rows; r++) {
            const float *in = x->data + (size_t)r * C, *dy = dy_all + (size_t)r * C;
            float mean = stats[2 * r], rstd = stats[2 * r + 1];
            for (int c = first; c < last; c++) {
                if (gamma->grad) gamma->grad[c] += dy[c] * (in[c] - mean) * rstd;
                if (beta->grad) beta->grad[c] += dy[c];
            }
        }
    }
}

/* ==== GELU and the residual add ===================================================== */

static const float INV_SQRT2 = 0.70710678118654752440f;
static const float INV_SQRT_2PI = 0.39894228040143267794f;

static void gelu_backward(TapeEntry *entry);

/* GELU(x) = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, the exact form (PyTorch's
 * default), with erf from fastmath.h. */
Tensor *transformer_gelu(Graph *g, Tensor *x) {
    bool grad = graph_needs_grad(g, x, NULL, NULL);
    Tensor *out = tensor_new(g, x->ndim, x->shape, grad);
    out->name = "gelu";
    const float *in = x->data;
    float *y = out->data;
    int n = x->numel;
    OMP("omp parallel for simd num_threads(threads_get()) schedule(static) if (n >= PARALLEL_MIN_FLOATS)")
    for (int i = 0; i < n; i++) y[i] = 0.5f * in[i] * (1.0f + erf_fast(in[i] * INV_SQRT2));
    if (grad) graph_record_custom(g, "gelu", gelu_backward, out, x, NULL, NULL);
    graph_check_finite(g, "gelu", out);
    return out;
}

/* dy/dx = Phi(x) + x phi(x),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi) */
static void gelu_backward(TapeEntry *entry) {
    Tensor *x = entry->inputs[0];
    const float *in = x->data, *dy = entry->out->grad;
    float *dx = x->grad;
    int n = x->numel;
    OMP("omp parallel for simd num_threads(threads_get()) schedule(static) if (n >= PARALLEL_MIN_FLOATS)")
    for (int i = 0; i < n; i++) {
        float cdf = 0.5f * (1.0f + erf_fast(in[i] * INV_SQRT2));
        float pdf = INV_SQRT_2PI * exp_fast(-0.5f * in[i] * in[i]);
        dx[i] += dy[i] * (cdf + in[i] * pdf);
    }
}

static void residual_backward(TapeEntry *entry);

Tensor *transformer_residual(Graph *g, Tensor *x, Tensor *y) {
    tensor_check_shapes(tensor_same_shape(x, y), "residual", x, y, "x + y needs equal shapes");
    bool grad = graph_needs_grad(g, x, y, NULL);
    Tensor *out = tensor_new(g, x->ndim, x->shape, grad);
    out->name = "residual";
    int n = x->numel;
    OMP("omp parallel for simd num_threads(threads_get()) schedule(static) if (n >= PARALLEL_MIN_FLOATS)")
    for (int i = 0; i < n; i++) out->data[i] = x->data[i] + y->data[i];
    if (grad) graph_record_custom(g, "residual", residual_backward, out, x, y, NULL);
    return out;
}

/* out = x + y:  dx += dout, dy += dout */
static void residual_backward(TapeEntry *entry) {
    Tensor *x = entry->inputs[0], *y = entry->inputs[1];
    const float *d = entry->out->grad;
    int n = x->numel;
    OMP("omp parallel for simd num_threads(threads_get()) schedule(static) if (n >= PARALLEL_MIN_FLOATS)")
    for (int i = 0; i < n; i++) {
        if (x->grad) x->grad[i] += d[i];
        if (y->grad) y->grad[i] += d[i];
    }
}
