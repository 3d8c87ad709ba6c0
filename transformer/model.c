/* transformer/model.c: the architecture.  Config, parameters, the forward
 * pass of a pre-LayerNorm transformer, its two heads, and one step of
 * generation with a key/value cache.
 *
 * Legend: B batch, T time, C d_model, H heads, D = C/H, F d_ff, V vocabulary,
 * K classes, L layers.
 *
 * The whole model, equation by equation (README.md walks through it):
 *   x_0    = E[ids] + P                    token embedding + positions  (B,T,C)
 *   for each block l:
 *     a    = MultiHeadAttention(LN1(x))    masked for GPT, not for BERT (B,T,C)
 *     x    = x + a W_proj + b_proj                                      (B,T,C)
 *     x    = x + GELU(LN2(x) W_in + b_in) W_out + b_out                 (B,T,C)
 *   h      = LN_final(x)                                                (B,T,C)
 *   logits = h W_head^T + b_head           next / masked token          (B,T,V)
 *          or mean_t(h) W_cls^T + b_cls    sentence class (BERT)        (B,K)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transformer.h"

/* ==== Config ============================================================== */

const char *transformer_positions_name(TransformerPositions positions) {
    switch (positions) {
    case TRANSFORMER_POS_SINUSOIDAL: return "sinusoidal";
    case TRANSFORMER_POS_LEARNED: return "learned";
    default: return "none";
    }
}

const char *transformer_mode_name(TransformerMode mode) {
    return mode == TRANSFORMER_GPT ? "gpt" : "bert";
}

bool transformer_config_check(const TransformerConfig *c, Error *err) {
    if (c->vocab < 2) return error_set(err, "vocabulary of %d tokens; need at least 2", c->vocab);
    if (c->layers < 1 || c->layers > TRANSFORMER_MAX_LAYERS)
        return error_set(err, "--layers %d outside [1, %d]", c->layers, TRANSFORMER_MAX_LAYERS);
    if (c->context < 1 || c->context > TRANSFORMER_MAX_CONTEXT)
        return error_set(err, "--context %d outside [1, %d]", c->context, TRANSFORMER_MAX_CONTEXT);
    if (c->heads < 1 || c->d_model % c->heads != 0)
        return error_set(err, "--d-model %d is not a multiple of --heads %d", c->d_model, c->heads);
    if (c->positions == TRANSFORMER_POS_SINUSOIDAL && c->d_model % 2 != 0)
        return error_set(err, "--pos sinusoidal needs an even --d-model (sin/cos pairs), got %d",
                         c->d_model);
    if (c->d_ff < 1) return error_set(err, "--d-ff %d must be positive", c->d_ff);
    if (c->dropout < 0 || c->dropout >= 1)
        return error_set(err, "--dropout %g outside [0, 1)", (double)c->dropout);
    if (c->classes > 0 && c->mode != TRANSFORMER_BERT)
        return error_set(err, "a classification head needs --mode bert");
    return true;
}

/* ==== Parameters ============================================================ */

void transformer_sinusoidal_table(float *table, int T, int C) {
    for (int t = 0; t < T; t++)
        for (int i = 0; i < C / 2; i++) {
            /* wavelengths grow geometrically from 2 pi to 10000 * 2 pi */
            double angle = t / pow(10000.0, 2.0 * i / C);
            table[t * C + 2 * i] = (float)sin(angle);
            table[t * C + 2 * i + 1] = (float)cos(angle);
        }
}

static void block_declare(ParamSet *ps, TransformerBlock *block, int layer, int C, int F,
                          bool bias) {
    char name[PARAM_NAME_MAX];
#define BLOCK_NAME(part) (snprintf(name, sizeof name, "blocks.%d.%s", layer, part), name)
    block->ln1 = layernorm_declare(ps, BLOCK_NAME("ln1"), C);
    block->qkv = linear_declare(ps, BLOCK_NAME("attn.qkv"), C, 3 * C, bias);
    block->proj = linear_declare(ps, BLOCK_NAME("attn.proj"), C, C, bias);
    block->ln2 = layernorm_declare(ps, BLOCK_NAME("ln2"), C);
    block->fc_in = linear_declare(ps, BLOCK_NAME("mlp.fc_in"), C, F, bias);
    block->fc_out = linear_declare(ps, BLOCK_NAME("mlp.fc_out"), F, C, bias);
#undef BLOCK_NAME
}

void transformer_build(Transformer *m, const TransformerConfig *config) {
    memset(m, 0, sizeof *m);
    m->config = *config;
    const TransformerConfig *c = &m->config;
    int C = c->d_model, V = c->vocab, T = c->context;
    ParamSet *ps = &m->params;
    params_init(ps);
    m->token_embedding = embedding_declare(ps, "token_embedding", V, C);
    if (c->positions == TRANSFORMER_POS_LEARNED)
        m->position_embedding = params_add_of(ps, "position_embedding.weight", false, 2, T, C);
    for (int l = 0; l < c->layers; l++) block_declare(ps, &m->blocks[l], l, C, c->d_ff, c->bias);
    m->ln_final = layernorm_declare(ps, "ln_final", C);
    if (!c->tied_head) {
        m->head = linear_declare(ps, "head", C, V, c->bias);
    } else if (c->bias) {
        m->head.bias = params_add_of(ps, "head.bias", false, 1, V);
    }
    if (c->classes > 0) m->classifier = linear_declare(ps, "classifier", C, c->classes, true);
    params_allocate(ps);
    if (c->positions == TRANSFORMER_POS_SINUSOIDAL) {
        /* fixed, so not a parameter: no gradient, not in the checkpoint */
        m->position_embedding = tensor_alloc("sinusoidal_positions", 2, (const int[]){T, C}, false);
        transformer_sinusoidal_table(m->position_embedding->data, T, C);
    }
}

static void linear_init_gpt2(Linear *layer, float std, Rng *rng) {
    init_normal(layer->weight, std, rng);
    if (layer->bias) init_constant(layer->bias, 0.0f);
}

void transformer_init(Transformer *m, Rng *rng) {
    const TransformerConfig *c = &m->config;
    const float std = 0.02f;
    /* Each block adds two outputs to the residual stream; scaling them by
     * 1/sqrt(2L) keeps the stream's variance from growing with depth. */
    float residual_std = std / sqrtf(2.0f * (float)c->layers);
    init_normal(m->token_embedding.table, std, rng);
    if (c->positions == TRANSFORMER_POS_LEARNED) init_normal(m->position_embedding, 0.01f, rng);
    for (int l = 0; l < c->layers; l++) {
        TransformerBlock *b = &m->blocks[l];
        layernorm_init(&b->ln1);
        linear_init_gpt2(&b->qkv, std, rng);
        linear_init_gpt2(&b->proj, residual_std, rng);
        layernorm_init(&b->ln2);
        linear_init_gpt2(&b->fc_in, std, rng);
        linear_init_gpt2(&b->fc_out, residual_std, rng);
    }
    layernorm_init(&m->ln_final);
    if (m->head.weight) init_normal(m->head.weight, std, rng);
    if (m->head.bias) init_constant(m->head.bias, 0.0f);
    if (c->classes > 0) linear_init_gpt2(&m->classifier, std, rng);
}

void transformer_free(Transformer *m) {
    if (m->config.positions == TRANSFORMER_POS_SINUSOIDAL) tensor_free(m->position_embedding);
    params_free(&m->params);
    memset(m, 0, sizeof *m);
}

/* ==== Forward ================================================================ */

/* The attention half of block l:  x + proj(attention(qkv(LN1(x)))).
 * x (B, T, C).  With a cache (generation, B = T = 1), the new token's keys
 * and values are appended and its query attends to every cached position. */
static Tensor *attention_sublayer(Graph *g, const Transformer *m, int l, Tensor *x,
                                  const TransformerInput *in, TransformerCache *cache) {
    const TransformerConfig *c = &m->config;
    const TransformerBlock *block = &m->blocks[l];
    Tensor *h = layernorm_forward(g, &block->ln1, x);      /* (B, T, C)  */
    Tensor *qkv = linear_forward(g, &block->qkv, h);       /* (B, T, 3C) */
    Tensor *heads;                                             /* (B, T, C)  */
    if (cache == NULL) {
        heads = transformer_attention(g, qkv, c->heads, c->mode == TRANSFORMER_GPT, in->lengths,
                                      in->attention ? &in->attention[l] : NULL);
    } else {
        int C = c->d_model, T = cache->capacity;
        heads = tensor_of(g, false, 3, 1, 1, C);
        transformer_attention_cached(qkv->data, cache->keys + (size_t)l * T * C,
                                     cache->values + (size_t)l * T * C, cache->length, C, c->heads,
                                     heads->data, NULL);
    }
    Tensor *mixed = linear_forward(g, &block->proj, heads); /* (B, T, C) */
    Rng *rng = in ? in->dropout_rng : NULL;
    if (rng) mixed = op_dropout(g, mixed, c->dropout, rng);
    return op_add(g, x, mixed);
}

/* The feed-forward half:  x + W_out GELU(W_in LN2(x)), applied to each
 * position on its own.  x (B, T, C). */
static Tensor *feed_forward_sublayer(Graph *g, const Transformer *m, int l, Tensor *x,
                                     Rng *rng) {
    const TransformerBlock *block = &m->blocks[l];
    Tensor *h = layernorm_forward(g, &block->ln2, x);            /* (B, T, C) */
    Tensor *f = op_gelu(g, linear_forward(g, &block->fc_in, h)); /* (B, T, F) */
    Tensor *out = linear_forward(g, &block->fc_out, f);          /* (B, T, C) */
    if (rng) out = op_dropout(g, out, m->config.dropout, rng);
    return op_add(g, x, out);
}

Tensor *transformer_forward(Graph *g, const Transformer *m, const TransformerInput *in) {
    const TransformerConfig *c = &m->config;
    int B = in->batch, T = in->time;
    if (T < 1 || T > c->context)
        fatal("transformer_forward: %d positions; the model's context is %d", T, c->context);
    Rng *rng = c->dropout > 0 && g->training ? in->dropout_rng : NULL;
    TransformerInput local = *in;
    local.dropout_rng = rng;
    Tensor *x = transformer_embed(g, m->token_embedding.table, m->position_embedding, in->ids, B,
                                  T, 0); /* (B, T, C) */
    if (rng) x = op_dropout(g, x, c->dropout, rng);
    for (int l = 0; l < c->layers; l++) {
        x = attention_sublayer(g, m, l, x, &local, NULL);
        x = feed_forward_sublayer(g, m, l, x, rng);
    }
    return layernorm_forward(g, &m->ln_final, x); /* (B, T, C) */
}

/* logits = h W^T + b, with W the head's own (V, C) weight or, tied, the
 * token embedding itself: a token's output score is then the dot product of
 * the hidden state with that token's input vector. */
Tensor *transformer_lm_logits(Graph *g, const Transformer *m, Tensor *hidden) {
    if (m->head.weight) return linear_forward(g, &m->head, hidden);
    Linear tied = {.weight = m->token_embedding.table, .bias = m->head.bias};
    return linear_forward(g, &tied, hidden); /* (B, T, V) */
}

Tensor *transformer_class_logits(Graph *g, const Transformer *m, Tensor *hidden,
                                 const int *lengths) {
    if (m->config.classes <= 0) fatal("transformer_class_logits: the model has no classifier");
    Tensor *pooled = transformer_mean_pool(g, hidden, lengths); /* (B, C) */
    return linear_forward(g, &m->classifier, pooled);        /* (B, K) */
}

/* ==== Generation: one token at a time with the key/value cache ============== */

void transformer_cache_init(TransformerCache *cache, const TransformerConfig *c) {
    size_t floats = (size_t)c->layers * c->context * c->d_model;
    cache->capacity = c->context;
    cache->length = 0;
    cache->keys = xcalloc(floats, sizeof(float));
    cache->values = xcalloc(floats, sizeof(float));
}

void transformer_cache_free(TransformerCache *cache) {
    free(cache->keys);
    free(cache->values);
    memset(cache, 0, sizeof *cache);
}

/* The same computation as transformer_forward for one position, except
 * that attention reads the earlier positions' keys and values from the
 * cache: O(t C) work at position t instead of a full pass over t tokens. */
void transformer_cache_step(Graph *g, const Transformer *m, TransformerCache *cache, int id,
                            float *logits) {
    const TransformerConfig *c = &m->config;
    if (cache->length >= cache->capacity)
        fatal("transformer_cache_step: the cache holds %d positions already (context %d)",
              cache->length, cache->capacity);
    graph_reset(g);
    bool saved_no_grad = g->no_grad, saved_training = g->training;
    g->no_grad = true;
    g->training = false;
    Tensor *x = transformer_embed(g, m->token_embedding.table, m->position_embedding, &id, 1, 1,
                                  cache->length); /* (1, 1, C) */
    for (int l = 0; l < c->layers; l++) {
        x = attention_sublayer(g, m, l, x, NULL, cache);
        x = feed_forward_sublayer(g, m, l, x, NULL);
    }
    cache->length++;
    Tensor *out = transformer_lm_logits(g, m, layernorm_forward(g, &m->ln_final, x));
    memcpy(logits, out->data, (size_t)c->vocab * sizeof(float));
    g->no_grad = saved_no_grad;
    g->training = saved_training;
}

void transformer_last_logits(Graph *g, const Transformer *m, const int *ids, int count,
                             float *logits) {
    graph_reset(g);
    bool saved_no_grad = g->no_grad, saved_training = g->training;
    g->no_grad = true;
    g->training = false;
    TransformerInput in = {.ids = ids, .batch = 1, .time = count};
    Tensor *out = transformer_lm_logits(g, m, transformer_forward(g, m, &in)); /* (1, T, V) */
    int V = m->config.vocab;
    memcpy(logits, out->data + (size_t)(count - 1) * V, (size_t)V * sizeof(float));
    g->no_grad = saved_no_grad;
    g->training = saved_training;
}
