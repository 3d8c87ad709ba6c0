/* transformer/generate.c: autoregressive decoding.
 *
 * Legend: V vocabulary, T context, L layers, C d_model.
 *
 * A GPT model gives p(next token | tokens so far).  Generation repeats:
 *   1. logits = model(tokens)[last position]                           (V)
 *   2. pick a token: the argmax (greedy), or a sample from
 *      softmax(logits / temperature) restricted to the top-k tokens and to
 *      the smallest set whose probability reaches top-p (nucleus)
 *   3. append it and go on.
 * Step 1 done naively runs the whole prefix through the model each time:
 * O(t) positions at step t, O(n^2) for n tokens.  But the keys and values of
 * earlier positions never change (the causal mask keeps them from seeing
 * later tokens), so the KV cache keeps them, and step t computes only the
 * new position and attends to the cached ones (transformer_cache_step).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "transformer.h"

/* Sorting (probability, id) pairs, most probable first; ties by id, so the
 * order never depends on qsort's whims. */
typedef struct {
    float p;
    int id;
} Candidate;

static int by_probability(const void *a, const void *b) {
    const Candidate *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id - y->id;
}

int transformer_sample(const float *logits, int V, const TransformerSampling *s, Rng *rng,
                       float *scratch) {
    if (s->temperature <= 0) { /* greedy */
        int best = 0;
        for (int v = 1; v < V; v++)
            if (logits[v] > logits[best]) best = v;
        return best;
    }
    /* softmax(logits / temperature): below 1 sharpens, above 1 flattens */
    Candidate *candidates = (Candidate *)scratch; /* (V) in the caller's 2V floats */
    float highest = logits[0];
    for (int v = 1; v < V; v++) highest = logits[v] > highest ? logits[v] : highest;
    double total = 0;
    for (int v = 0; v < V; v++) {
        candidates[v].p = expf((logits[v] - highest) / s->temperature);
        candidates[v].id = v;
        total += candidates[v].p;
    }
    for (int v = 0; v < V; v++) candidates[v].p = (float)(candidates[v].p / total);
    qsort(candidates, (size_t)V, sizeof *candidates, by_probability);
    /* top-k, then top-p: the most probable tokens whose mass reaches p */
    int keep = s->top_k > 0 && s->top_k < V ? s->top_k : V;
    double mass = 0;
    for (int i = 0; i < keep; i++) {
        mass += candidates[i].p;
        if (s->top_p > 0 && s->top_p < 1 && mass >= s->top_p) {
            keep = i + 1;
            break;
        }
    }
    double kept = 0;
    for (int i = 0; i < keep; i++) kept += candidates[i].p;
    /* draw from the renormalised kept set */
    double u = rng_uniform(rng) * kept;
    for (int i = 0; i < keep; i++) {
        u -= candidates[i].p;
        if (u < 0) return candidates[i].id;
    }
    return candidates[keep - 1].id;
}

/* Feeds ids[0..count) into an empty cache; logits of the last one. */
static void cache_fill(Graph *g, const Transformer *m, TransformerCache *cache, const int *ids,
                       int count, float *logits) {
    cache->length = 0;
    for (int i = 0; i < count; i++) transformer_cache_step(g, m, cache, ids[i], logits);
}

int transformer_generate(Graph *g, const Transformer *m, const int *prompt, int prompt_count,
                         int count, int stop_id, const TransformerSampling *sampling, Rng *rng,
                         bool use_cache, int *out) {
    int V = m->config.vocab, T = m->config.context;
    if (prompt_count < 1 || prompt_count > T)
        fatal("transformer_generate: a prompt of %d tokens (context %d)", prompt_count, T);
    float *logits = xmalloc((size_t)V * sizeof(float));      /* (V) */
    float *scratch = xmalloc((size_t)2 * V * sizeof(float)); /* (2V) */
    memcpy(out, prompt, (size_t)prompt_count * sizeof(int));
    int total = prompt_count;
    TransformerCache cache = {0};
    if (use_cache) {
        transformer_cache_init(&cache, &m->config);
        cache_fill(g, m, &cache, out, total, logits);
    } else {
        transformer_last_logits(g, m, out, total, logits);
    }
    /* `window` is where the model's view of the text starts: the last T
     * tokens at most, since positions beyond the context do not exist. */
    int window = 0;
    for (int n = 0; n < count; n++) {
        int next = transformer_sample(logits, V, sampling, rng, scratch);
        out[total++] = next;
        if (next == stop_id || n + 1 == count) break;
        if (total - window > T) {
            /* Full: keep the newest half and start over from position 0 (the
             * positions, hence every key and value, change). */
            window = total - T / 2;
            if (use_cache) cache_fill(g, m, &cache, out + window, total - window, logits);
        } else if (use_cache) {
            transformer_cache_step(g, m, &cache, next, logits);
        }
        if (!use_cache) transformer_last_logits(g, m, out + window, total - window, logits);
    }
    if (use_cache) transformer_cache_free(&cache);
    free(logits);
    free(scratch);
    return total;
}

int transformer_answer(Graph *g, const Transformer *m, TransformerCache *cache, int *ids,
                       int prompt_count, int stop_id, float *logits) {
    int V = m->config.vocab, T = m->config.context;
    if (prompt_count < 1 || prompt_count > T)
        fatal("transformer_answer: a prompt of %d tokens (context %d)", prompt_count, T);
    const TransformerSampling greedy = {.temperature = 0};
    if (cache) cache_fill(g, m, cache, ids, prompt_count, logits);
    else transformer_last_logits(g, m, ids, prompt_count, logits);
    int total = prompt_count;
    /* The context is full when a token lands at position T-1: feeding it
     * would predict position T, which the model does not have.  No sliding
     * window (as transformer_generate has): training examples fit in the
     * context, so an answer that overflows it is wrong anyway. */
    while (total < T) {
        int next = transformer_sample(logits, V, &greedy, NULL, NULL);
        if (next == stop_id) break;
        ids[total++] = next;
        if (total == T) break;
        if (cache) transformer_cache_step(g, m, cache, next, logits);
        else transformer_last_logits(g, m, ids, total, logits);
    }
    return total - prompt_count;
}
