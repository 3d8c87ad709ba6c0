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
 * Why one fused op rather than matmul + softmax + matmul from common/:
 *   - Q, K and V are read in place from the qkv projection with strides,
 *     so no (B, H, T, D) copies are made, forward or backward;
 *   - masked keys are never computed at all (the causal half of the scores);
 *   - the (b, h) pairs are independent, so they are shared out between
 *     threads, each writing its own slice of out (and of dqkv in backward):
 *     the result is identical for any number of threads.
 * Scores need dot products q_i . k_j, whose sum over d the compiler cannot
 * vectorise without reordering it.  So each (b, h) first copies its keys
 * transposed, kt (D, T); then the scores of row i are accumulated as
 *   s[j] += q_i[d] * kt[d][j]  for d = 0..D-1, over all j at once,
 * whose inner loop over j is plain vector code.  Backward does the same
 * with the values for dp_ij = do_i . v_j.
 */
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "fastmath.h"
#include "matmul.h"
#include "transformer.h"

#ifdef _OPENMP
#define OMP(directive) _Pragma(directive)
#else
#define OMP(directive)
#endif

static int thread_index(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* The sizes of one call, unpacked from the tensors. */
typedef struct {
    int B, T, C, H, D;
    bool causal;
    const int *lengths; /* (B) or NULL */
} AttentionShape;

/* How many keys position i may look at: keys 0..visible-1. */
static int visible_keys(const AttentionShape *s, int b, int i) {
    int length = s->lengths ? s->lengths[b] : s->T;
    return s->causal && i + 1 < length ? i + 1 : length;
}

/* y[0..n) += a x[0..n).  `restrict` promises the compiler that x and y do
 * not overlap, which is what lets it vectorise the loop. */
static inline void axpy(int n, float a, const float *restrict x, float *restrict y) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

/* Copies the head's rows out of the (strided) projection:
 * x rows of stride `stride` -> packed (T, D), or transposed (D, T). */
static void pack_head(const float *x, int T, int D, int stride, float *restrict packed) {
    for (int t = 0; t < T; t++) memcpy(packed + (size_t)t * D, x + (size_t)t * stride, (size_t)D * sizeof(float));
}

static void pack_head_transposed(const float *x, int T, int D, int stride, float *restrict xt) {
    for (int t = 0; t < T; t++)
        for (int d = 0; d < D; d++) xt[(size_t)d * T + t] = x[(size_t)t * stride + d];
}

/* Scratch floats one thread needs for one (b, h), forward or backward. */
static size_t scratch_floats(int T, int D) { return (size_t)7 * T * D + 2 * (size_t)T + D; }

/* Forward for one (b, h): fills probabilities (T, T) and the head's columns
 * of out.  q, k, v point at the head's first column in row 0 of batch row b;
 * out at the head's first column of row 0. */
static void attention_head_forward(const AttentionShape *s, int b, const float *q, const float *k,
                                   const float *v, float *out, float *probabilities,
                                   float *scratch) {
    int T = s->T, D = s->D, stride = 3 * s->C;
    float scale = 1.0f / sqrtf((float)D);
    float *kt = scratch;                     /* (D, T) keys, transposed */
    float *vp = kt + (size_t)D * T;          /* (T, D) values, packed   */
    float *o = vp + (size_t)T * D;           /* (D) one output row      */
    pack_head_transposed(k, T, D, stride, kt);
    pack_head(v, T, D, stride, vp);
    for (int i = 0; i < T; i++) {
        const float *qi = q + (size_t)i * stride;
        float *p = probabilities + (size_t)i * T; /* (T) row i */
        int n = visible_keys(s, b, i);
        /* s_ij = q_i . k_j / sqrt(D) for the visible keys only, as
         * sum over d of q_i[d] * kt[d][0..n): vector code over j */
        for (int j = 0; j < n; j++) p[j] = 0.0f;
        for (int d = 0; d < D; d++) axpy(n, qi[d], kt + (size_t)d * T, p);
        /* softmax over j; the hidden keys (the mask) get probability 0 */
        float highest = -INFINITY;
        for (int j = 0; j < n; j++) {
            p[j] *= scale;
            highest = p[j] > highest ? p[j] : highest;
        }
        for (int j = 0; j < n; j++) p[j] = exp_fast(p[j] - highest); /* vectorised */
        float total = 0.0f;
        for (int j = 0; j < n; j++) total += p[j];
        float inverse = 1.0f / total;
        for (int j = 0; j < n; j++) p[j] *= inverse;
        for (int j = n; j < T; j++) p[j] = 0.0f;
        /* o_i = sum_j p_ij v_j */
        for (int d = 0; d < D; d++) o[d] = 0.0f;
        for (int j = 0; j < n; j++) axpy(D, p[j], vp + (size_t)j * D, o);
        memcpy(out + (size_t)i * s->C, o, (size_t)D * sizeof(float));
    }
}

static void attention_backward(TapeEntry *entry);

Tensor *transformer_attention(Graph *g, Tensor *qkv, int heads, bool causal, const int *lengths,
                              float **probabilities_out) {
    tensor_check_shapes(qkv->ndim == 3 && qkv->shape[2] % (3 * heads) == 0, "attention", qkv,
                        NULL, "qkv must be (B, T, 3C) with C a multiple of the head count");
    AttentionShape s = {.B = qkv->shape[0], .T = qkv->shape[1], .C = qkv->shape[2] / 3,
                        .H = heads, .causal = causal};
    s.D = s.C / heads;
    bool grad = graph_needs_grad(g, qkv, NULL, NULL);
    Tensor *out = tensor_of(g, grad, 3, s.B, s.T, s.C); /* (B, T, C) */
    out->name = "attention";
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
    size_t per_thread = scratch_floats(s.T, s.D);
    /* probabilities (B, H, T, T), then each thread's scratch */
    float *saved = arena_alloc(&g->arena, ((size_t)s.B * s.H * s.T * s.T + threads * per_thread) *
                                              sizeof(float));
    float *probabilities = saved, *scratch = saved + (size_t)s.B * s.H * s.T * s.T;
    int pairs = s.B * s.H;
    OMP("omp parallel for num_threads(threads) schedule(static)")
    for (int pair = 0; pair < pairs; pair++) {
        int b = pair / s.H, h = pair % s.H;
        const float *row0 = qkv->data + (size_t)b * s.T * 3 * s.C + h * s.D;
        attention_head_forward(&s, b, row0, row0 + s.C, row0 + 2 * s.C,
                               out->data + (size_t)b * s.T * s.C + h * s.D,
                               probabilities + (size_t)pair * s.T * s.T,
                               scratch + (size_t)thread_index() * per_thread);
    }
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

/* Backward for one (b, h).  With do_i the gradient of o_i:
 *   dv_j  += sum_i p_ij do_i                        (o is linear in v)
 *   dp_ij  = do_i . v_j
 *   ds_ij  = p_ij (dp_ij - sum_j' p_ij' dp_ij')     (softmax backward)
 *   dq_i  += sum_j ds_ij k_j / sqrt(D)
 *   dk_j  += sum_i ds_ij q_i / sqrt(D)
 * Masked keys have p_ij = 0, hence ds_ij = 0: no gradient reaches them.
 * The head's q, k, v and do are first packed into the thread's scratch, and
 * dq, dk, dv summed there, then added into dqkv: contiguous, non-aliasing
 * rows that the compiler can vectorise. */
static void attention_head_backward(const AttentionShape *s, int b, const float *qkv,
                                    float *dqkv, const float *dout, const float *probabilities,
                                    float *scratch) {
    int T = s->T, D = s->D, stride = 3 * s->C, C = s->C;
    size_t TD = (size_t)T * D;
    float scale = 1.0f / sqrtf((float)D);
    float *qp = scratch, *kp = qp + TD, *vt = kp + TD, *dop = vt + TD; /* (T, D), vt (D, T) */
    float *dq = dop + TD, *dk = dq + TD, *dv = dk + TD;                /* (T, D) each       */
    float *dp = dv + TD, *ds = dp + T;                                 /* (T) each          */
    pack_head(qkv, T, D, stride, qp);
    pack_head(qkv + C, T, D, stride, kp);
    pack_head_transposed(qkv + 2 * C, T, D, stride, vt);
    pack_head(dout, T, D, C, dop);
    memset(dq, 0, 3 * TD * sizeof(float));
    for (int i = 0; i < T; i++) {
        const float *p = probabilities + (size_t)i * T, *doi = dop + (size_t)i * D;
        int n = visible_keys(s, b, i);
        /* dp_ij = do_i . v_j, vectorised over j as in the forward */
        for (int j = 0; j < n; j++) dp[j] = 0.0f;
        for (int d = 0; d < D; d++) axpy(n, doi[d], vt + (size_t)d * T, dp);
        float dot = 0.0f; /* sum_j p_ij dp_ij */
        for (int j = 0; j < n; j++) dot += p[j] * dp[j];
        for (int j = 0; j < n; j++) ds[j] = p[j] * (dp[j] - dot) * scale; /* ds_ij / sqrt(D) */
        float *dqi = dq + (size_t)i * D;
        const float *qi = qp + (size_t)i * D;
        for (int j = 0; j < n; j++) {
            axpy(D, ds[j], kp + (size_t)j * D, dqi);
            axpy(D, ds[j], qi, dk + (size_t)j * D);
            axpy(D, p[j], doi, dv + (size_t)j * D);
        }
    }
    for (int t = 0; t < T; t++) {
        float *row = dqkv + (size_t)t * stride;
        for (int d = 0; d < D; d++) {
            row[d] += dq[(size_t)t * D + d];
            row[C + d] += dk[(size_t)t * D + d];
            row[2 * C + d] += dv[(size_t)t * D + d];
        }
    }
}

static void attention_backward(TapeEntry *entry) {
    Tensor *qkv = entry->inputs[0], *out = entry->out;
    AttentionShape s = {.B = qkv->shape[0], .T = qkv->shape[1], .C = qkv->shape[2] / 3,
                        .H = entry->int_args[0], .causal = entry->int_args[1] != 0,
                        .lengths = entry->indices};
    s.D = s.C / s.H;
    int threads = entry->int_args[2];
    size_t per_thread = scratch_floats(s.T, s.D);
    const float *probabilities = entry->saved;
    float *scratch = entry->saved + (size_t)s.B * s.H * s.T * s.T;
    int pairs = s.B * s.H;
    OMP("omp parallel for num_threads(threads) schedule(static)")
    for (int pair = 0; pair < pairs; pair++) {
        int b = pair / s.H, h = pair % s.H;
        size_t qkv_offset = (size_t)b * s.T * 3 * s.C + h * s.D;
        size_t out_offset = (size_t)b * s.T * s.C + h * s.D;
        attention_head_backward(&s, b, qkv->data + qkv_offset, qkv->grad + qkv_offset,
                                out->grad + out_offset, probabilities + (size_t)pair * s.T * s.T,
                                scratch + (size_t)thread_index() * per_thread);
    }
}

/* ==== One new token against the cache (generation) ========================== */

/* The same equations for a single query at `position`, whose keys are rows
 * 0..position of the cache: the new token's own k and v are stored first.
 * No mask is needed: the cache holds only the past. */
void transformer_attention_cached(const float *qkv, float *keys, float *values, int position,
                                  int C, int heads, float *out, float *probabilities) {
    int D = C / heads, n = position + 1;
    float scale = 1.0f / sqrtf((float)D);
    memcpy(keys + (size_t)position * C, qkv + C, (size_t)C * sizeof(float));
    memcpy(values + (size_t)position * C, qkv + 2 * C, (size_t)C * sizeof(float));
    float p[TRANSFORMER_MAX_CONTEXT]; /* (n) one head's probabilities */
    for (int h = 0; h < heads; h++) {
        const float *q = qkv + h * D;
        float highest = -INFINITY;
        for (int j = 0; j < n; j++) {
            const float *kj = keys + (size_t)j * C + h * D;
            float dot = 0.0f;
            for (int d = 0; d < D; d++) dot += q[d] * kj[d];
            p[j] = dot * scale;
            highest = p[j] > highest ? p[j] : highest;
        }
        float total = 0.0f;
        for (int j = 0; j < n; j++) {
            p[j] = exp_fast(p[j] - highest);
            total += p[j];
        }
        float *o = out + h * D;
        for (int d = 0; d < D; d++) o[d] = 0.0f;
        for (int j = 0; j < n; j++) {
            float pj = p[j] / total;
            if (probabilities) probabilities[(size_t)h * n + j] = pj;
            const float *vj = values + (size_t)j * C + h * D;
            for (int d = 0; d < D; d++) o[d] += pj * vj[d];
        }
    }
}
