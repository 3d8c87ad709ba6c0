/* transformer/attention.c: multi-head scaled dot-product attention as one
 * fused autograd op, its backward right below it, and the one-token version
 * that generation runs against the key/value cache.
 *
 * Legend: B batch, T time, C d_model, H heads, D = C / H head size,
 * i a query position, j a key position.
 *
 * For each batch row b and head h, with q_i, k_j, v_j the head's D columns
 * of the (B, T, 3C) qkv projection at positions i and j:
 *   s_ij = q_i . k_j / sqrt(D)                 scores             (T, T)
 *   s_ij = -inf where j is hidden              the mask:
 *            GPT (causal): j > i;  padding: j >= length[b]
 *   p_ij = exp(s_ij) / sum_j' exp(s_ij')       softmax over keys  (T, T)
 *   o_i  = sum_j p_ij v_j                      weighted values    (T, D)
 * and head h's o is written to columns h*D..h*D+D-1 of out (B, T, C).
 *
 * Why one fused op rather than op_matmul + op_softmax + op_matmul:
 *   - Q, K and V are read in place from the qkv projection: head h's q is
 *     the (T, D) matrix at column h*D with row stride 3C, which matmul()
 *     takes as it is (lda = 3C), so no (B, H, T, D) copies are made, forward
 *     or backward, and the heads' outputs land in their columns of out;
 *   - the mask is applied inside the softmax loop, without a mask tensor;
 *   - the batch rows are independent, so they are shared out between
 *     threads, each writing its own slice of out (and of dqkv in backward);
 *     matmul() called from inside that loop runs on the calling thread, and
 *     is deterministic: the result is identical for any number of threads.
 * The scores are computed for every (i, j), also the masked half of the
 * causal case: skipping it would halve the work of two small products but
 * break them into ragged pieces that the matmul kernel handles far worse.
 */
#include <math.h>
#include <string.h>

#include "fastmath.h"
#include "matmul.h"
#include "transformer.h"
#include "util.h"

/* The sizes of one call, unpacked from the tensors. */
typedef struct {
    int B, T, C, H, D;
    bool causal;
    const int *lengths; /* (B) or NULL */
} AttentionShape;

/* How many keys position i may look at: keys 0..visible-1. */
static int visible_keys(const AttentionShape *s, int b, int i) {
    /* EXERCISE causal_mask: the keys query i of batch row b may see are 0..visible-1: the row's
     * real keys (s->lengths[b], or all T when s->lengths is NULL) and, when s->causal, none after i.
     * STUB: (void)b, (void)i;
     * STUB: exercise_missing("causal_mask");
     * STUB: return s->T; */
    int length = s->lengths ? s->lengths[b] : s->T;
    return s->causal && i + 1 < length ? i + 1 : length;
    /* END EXERCISE */
}

/* EXERCISE attention_forward: attention_row_forward below, for batch row b and every head h:
 * S = Q K^T (the head's columns of qkv, row stride 3C: matmul() reads them in place),
 * P = softmax(S / sqrt(D)) over the visible_keys(s, b, i) first keys of each row i (0 after them),
 * O = P V into the head's D columns of out.  Keep P in probabilities (H, T, T): backward reads it.
 * STUB: static void attention_row_forward(const AttentionShape *s, int b, const float *qkv, float *out,
 * STUB:                                   float *probabilities) {
 * STUB:     (void)b, (void)qkv;
 * STUB:     exercise_missing("attention_forward");
 * STUB:     memset(out, 0, (size_t)s->T * s->C * sizeof(float));
 * STUB:     memset(probabilities, 0, (size_t)s->H * s->T * s->T * sizeof(float));
 * STUB: } */
/* Softmax of row i of the scores in place, over its n visible keys; the
 * hidden ones (the mask) get probability 0. */
static void softmax_row(float *p, int n, int T, float scale) {
    for (int j = 0; j < n; j++) p[j] *= scale;
    float highest = max_fast(p, n);
    for (int j = 0; j < n; j++) p[j] = exp_fast(p[j] - highest);
    float inverse = 1.0f / sum_fast(p, n);
    for (int j = 0; j < n; j++) p[j] *= inverse;
    for (int j = n; j < T; j++) p[j] = 0.0f;
}

/* Forward for batch row b, all heads: probabilities (H, T, T) and out.
 * qkv points at row b's (T, 3C) block, out at its (T, C) block.  Head h's
 * q, k, v are the matrices starting at columns h*D, C + h*D, 2C + h*D with
 * row stride 3C: matmul reads them in place, one head per batch item. */
static void attention_row_forward(const AttentionShape *s, int b, const float *qkv, float *out,
                                  float *probabilities) {
    int T = s->T, D = s->D, C = s->C, H = s->H;
    /* S = Q K^T, (T, D) @ (D, T) per head */
    MatmulSpec scores = {.batch = H, .M = T, .N = T, .K = D,
                         .A = qkv, .lda = 3 * C, .stride_a = D,
                         .B = qkv + C, .ldb = 3 * C, .stride_b = D, .transpose_b = true,
                         .C = probabilities, .ldc = T, .stride_c = (long)T * T};
    matmul(&scores);
    /* P = softmax(S / sqrt(D)) under the mask */
    float scale = 1.0f / sqrtf((float)D);
    for (int h = 0; h < H; h++)
        for (int i = 0; i < T; i++)
            softmax_row(probabilities + ((size_t)h * T + i) * T, visible_keys(s, b, i), T, scale);
    /* O = P V, (T, T) @ (T, D) per head, into the head's columns of out */
    MatmulSpec values = {.batch = H, .M = T, .N = D, .K = T,
                         .A = probabilities, .lda = T, .stride_a = (long)T * T,
                         .B = qkv + 2 * C, .ldb = 3 * C, .stride_b = D,
                         .C = out, .ldc = C, .stride_c = D};
    matmul(&values);
}
/* END EXERCISE */

static void attention_backward(TapeEntry *entry);

Tensor *transformer_attention(Graph *g, Tensor *qkv, int heads, bool causal, const int *lengths,
                              float **probabilities_out) {
    tensor_check_shapes(qkv->ndim == 3 && qkv->shape[2] % (3 * heads) == 0, "attention", qkv,
                        NULL, "qkv must be (B, T, 3C) with C a multiple of the head count");
    AttentionShape s = {.B = qkv->shape[0], .T = qkv->shape[1], .C = qkv->shape[2] / 3,
                        .H = heads, .causal = causal};
    s.D = s.C / heads;
    bool grad = graph_needs_grad(g, qkv, NULL, NULL);
    Tensor *out = tensor_empty(g, 3, (const int[]){s.B, s.T, s.C}, grad,
                                            "attention"); /* (B, T, C) */
    int *kept_lengths = NULL; /* (B) a copy: the caller's buffer may change before backward */
    if (lengths) {
        kept_lengths = arena_alloc(&g->arena, (size_t)s.B * sizeof(int));
        for (int b = 0; b < s.B; b++) {
            if (lengths[b] < 1 || lengths[b] > s.T)
                fatal("attention: length %d of row %d outside [1, %d]", lengths[b], b, s.T);
            kept_lengths[b] = lengths[b];
        }
    }
    s.lengths = kept_lengths;
    int threads = threads_get();
    /* probabilities (B, H, T, T), then the backward's scratch: dP (B, H, T, T) */
    size_t maps = (size_t)s.B * s.H * s.T * s.T;
    float *saved = arena_alloc(&g->arena, (grad ? 2 : 1) * maps * sizeof(float));
    float *probabilities = saved;
    OMP("omp parallel for num_threads(threads) schedule(static)")
    for (int b = 0; b < s.B; b++)
        attention_row_forward(&s, b, qkv->data + (size_t)b * s.T * 3 * s.C,
                              out->data + (size_t)b * s.T * s.C,
                              probabilities + (size_t)b * s.H * s.T * s.T);
    if (grad) {
        TapeEntry *entry = graph_record_custom(g, "attention", attention_backward, out, qkv, NULL,
                                               NULL);
        entry->saved = saved;
        entry->indices = kept_lengths;
        entry->int_args[0] = heads;
        entry->int_args[1] = causal;
        entry->int_args[2] = threads;
    }
    graph_check_finite(g, "attention", out);
    if (probabilities_out) *probabilities_out = probabilities;
    return out;
}

/* Backward for batch row b, all heads.  With dO the gradient of O:
 *   dV  += P^T dO                                (O is linear in V)
 *   dP   = dO V^T
 *   dS   = P * (dP - rowsum(P * dP))             (softmax backward, per row)
 *   dQ  += dS K / sqrt(D)
 *   dK  += dS^T Q / sqrt(D)
 * Masked keys have P = 0, hence dS = 0: no gradient reaches them.  Every
 * product reads and writes the heads' columns of qkv and dqkv in place. */
static void attention_row_backward(const AttentionShape *s, int b, const float *qkv, float *dqkv,
                                   const float *dout, const float *probabilities, float *dp) {
    int T = s->T, D = s->D, C = s->C, H = s->H;
    float scale = 1.0f / sqrtf((float)D);
    long TT = (long)T * T;
    /* dV += P^T dO:  (T, T)^T @ (T, D) */
    MatmulSpec dv = {.batch = H, .M = T, .N = D, .K = T,
                     .A = probabilities, .lda = T, .stride_a = TT, .transpose_a = true,
                     .B = dout, .ldb = C, .stride_b = D,
                     .C = dqkv + 2 * C, .ldc = 3 * C, .stride_c = D, .accumulate = true};
    matmul(&dv);
    /* dP = dO V^T:  (T, D) @ (D, T) */
    MatmulSpec dprob = {.batch = H, .M = T, .N = T, .K = D,
                        .A = dout, .lda = C, .stride_a = D,
                        .B = qkv + 2 * C, .ldb = 3 * C, .stride_b = D, .transpose_b = true,
                        .C = dp, .ldc = T, .stride_c = TT};
    matmul(&dprob);
    /* dS / sqrt(D), in place of dP */
    for (int h = 0; h < H; h++)
        for (int i = 0; i < T; i++) {
            const float *p = probabilities + h * TT + (size_t)i * T;
            float *ds = dp + h * TT + (size_t)i * T;
            int n = visible_keys(s, b, i);
            float dot = dot_fast(p, ds, n); /* sum_j p_ij dp_ij */
            for (int j = 0; j < n; j++) ds[j] = p[j] * (ds[j] - dot) * scale;
            for (int j = n; j < T; j++) ds[j] = 0.0f;
        }
    /* dQ += dS K:  (T, T) @ (T, D) */
    MatmulSpec dq = {.batch = H, .M = T, .N = D, .K = T,
                     .A = dp, .lda = T, .stride_a = TT,
                     .B = qkv + C, .ldb = 3 * C, .stride_b = D,
                     .C = dqkv, .ldc = 3 * C, .stride_c = D, .accumulate = true};
    matmul(&dq);
    /* dK += dS^T Q:  (T, T)^T @ (T, D) */
    MatmulSpec dk = {.batch = H, .M = T, .N = D, .K = T,
                     .A = dp, .lda = T, .stride_a = TT, .transpose_a = true,
                     .B = qkv, .ldb = 3 * C, .stride_b = D,
                     .C = dqkv + C, .ldc = 3 * C, .stride_c = D, .accumulate = true};
    matmul(&dk);
}

static void attention_backward(TapeEntry *entry) {
    Tensor *qkv = entry->inputs[0], *out = entry->out;
    AttentionShape s = {.B = qkv->shape[0], .T = qkv->shape[1], .C = qkv->shape[2] / 3,
                        .H = entry->int_args[0], .causal = entry->int_args[1] != 0,
                        .lengths = entry->indices};
    s.D = s.C / s.H;
    int threads = entry->int_args[2]; /* as many as the forward used */
    (void)threads;                    /* (unused without OpenMP) */
    size_t maps = (size_t)s.B * s.H * s.T * s.T, per_row = (size_t)s.H * s.T * s.T;
    const float *probabilities = entry->saved;
    float *dp = entry->saved + maps;
    OMP("omp parallel for num_threads(threads) schedule(static)")
    for (int b = 0; b < s.B; b++) {
        size_t qkv_offset = (size_t)b * s.T * 3 * s.C, out_offset = (size_t)b * s.T * s.C;
        attention_row_backward(&s, b, qkv->data + qkv_offset, qkv->grad + qkv_offset,
                               out->grad + out_offset, probabilities + b * per_row, dp + b * per_row);
    }
}

/* ==== One new token against the cache (generation) ========================== */

/* The same equations for a single query at `position`, whose keys are rows
 * 0..position of the cache: the new token's own k and v are stored first.
 * No mask is needed: the cache holds only the past. */
void transformer_attention_cached(const float *qkv, float *keys, float *values, int position,
                                  int C, int heads, float *out, float *probabilities) {
    /* EXERCISE attention_forward: the same attention for one query (qkv's q, the new token) over the
     * position + 1 cached keys and values, after storing the new k and v at row `position`
     * of the cache (keys, values (T, C)); probabilities (H, position + 1) may be NULL
     * STUB: (void)qkv, (void)keys, (void)values;
     * STUB: exercise_missing("attention_forward");
     * STUB: memset(out, 0, (size_t)C * sizeof(float));
     * STUB: if (probabilities) memset(probabilities, 0, (size_t)heads * (position + 1) * sizeof(float)); */
    int D = C / heads, n = position + 1;
    float scale = 1.0f / sqrtf((float)D);
    memcpy(keys + (size_t)position * C, qkv + C, (size_t)C * sizeof(float));
    memcpy(values + (size_t)position * C, qkv + 2 * C, (size_t)C * sizeof(float));
    float p[TRANSFORMER_MAX_CONTEXT]; /* (n) one head's probabilities */
    for (int h = 0; h < heads; h++) {
        const float *q = qkv + h * D;
        for (int j = 0; j < n; j++) { /* s_j = q . k_j / sqrt(D) */
            const float *kj = keys + (size_t)j * C + h * D;
            float dot = 0.0f;
            for (int d = 0; d < D; d++) dot += q[d] * kj[d];
            p[j] = dot * scale;
        }
        float highest = max_fast(p, n);
        for (int j = 0; j < n; j++) p[j] = exp_fast(p[j] - highest);
        float inverse = 1.0f / sum_fast(p, n);
        float *o = out + h * D;
        for (int d = 0; d < D; d++) o[d] = 0.0f;
        for (int j = 0; j < n; j++) {
            float pj = p[j] * inverse;
            if (probabilities) probabilities[(size_t)h * n + j] = pj;
            const float *vj = values + (size_t)j * C + h * D;
            for (int d = 0; d < D; d++) o[d] += pj * vj[d];
        }
    }
    /* END EXERCISE */
}
