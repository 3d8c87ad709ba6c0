/* transformer/kernels.c: the two custom ops of the model other than
 * attention, which no other model needs.
 *
 * Legend: B batch, T time, C channels.
 *
 *   transformer_embed       x = E[ids] + P[t]      (token + position)
 *   transformer_mean_pool   the encoder's sentence vector
 *
 * Every other layer is a common op (common/tensor.c): op_linear,
 * op_layernorm, op_gelu, op_add, op_cross_entropy, which share their loops
 * out between the threads and use the vectorisable exp/erf of
 * common/fastmath.h.
 */
#include <math.h>
#include <string.h>

#include "transformer.h"

/* ==== Token embedding + positions ============================================ */

static void embed_backward(TapeEntry *entry);

Tensor *transformer_embed(Graph *g, Tensor *table, Tensor *positions, const int *ids, int B,
                          int T, int first_position) {
    int V = table->shape[0], C = table->shape[1];
    if (positions && first_position + T > positions->shape[0])
        fatal("embed: positions %d..%d beyond the table's %d", first_position,
              first_position + T - 1, positions->shape[0]);
    bool grad = graph_needs_grad(g, table, positions, NULL);
    Tensor *out = tensor_empty(g, 3, (const int[]){B, T, C}, grad, "embed"); /* (B, T, C) */
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
