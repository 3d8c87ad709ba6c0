/* seq2seq/model.c: the encoder-decoder: parameters, encoder, attention,
 * decoder, loss, greedy decoding and beam search.
 *
 * Legend: B batch, S source steps, T decoder steps, E embedding, H hidden,
 * A attention size (= H), G gates (3 GRU, 4 LSTM), P state parts (1 GRU: h;
 * 2 LSTM: h, c), L layers, Vs/Vt vocabularies, F decoder feature size,
 * K beam width.
 *
 * The whole model, in equations (README.md explains each one):
 *   encoder    h_j = RNN_enc(emb_src(x_j), h_{j-1}),  j = 1..S    seq2seq_encode
 *   context    c = h_S (the final state, per layer)                 seq2seq_encode
 *   decoder    s_t = RNN_dec(emb_tgt(y_{t-1}) [; c_t], s_{t-1}),  s_0 = c
 *                                                                   seq2seq_decoder_step
 *   attention  a_t = softmax_j(score(s, h_j)) over real tokens,
 *              c_t = sum_j a_tj h_j                                  attend
 *   output     p(y_t | y_<t, x) = softmax(W_o f_t + b_o)            seq2seq_logits
 *   loss       mean over real target tokens of -log p(y_t | ...)    seq2seq_forward
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seq2seq.h"

/* ======================================================================== */
/* Configuration                                                             */
/* ======================================================================== */

int seq2seq_gates(const Seq2seqConfig *c) { return c->cell == SEQ2SEQ_LSTM ? 4 : 3; }
int seq2seq_state_parts(const Seq2seqConfig *c) { return c->cell == SEQ2SEQ_LSTM ? 2 : 1; }
int seq2seq_feature_size(const Seq2seqConfig *c) {
    return c->attention == SEQ2SEQ_BAHDANAU ? 2 * c->hidden : c->hidden;
}
const char *seq2seq_cell_name(int cell) { return cell == SEQ2SEQ_LSTM ? "lstm" : "gru"; }
const char *seq2seq_attention_name(int attention) {
    static const char *const names[] = {"none", "bahdanau", "luong"};
    return attention >= 0 && attention <= SEQ2SEQ_LUONG ? names[attention] : "?";
}

/* ======================================================================== */
/* Parameters: declare with torch's names, then initialise as torch does     */
/* ======================================================================== */

/* "<prefix>.weight_ih_l<k>" etc., torch.nn.GRU/LSTM's names for layer k. */
static Seq2seqRecurrentLayer recurrent_declare(ParamSet *ps, const char *prefix, int layer,
                                               int in, int gates, int hidden) {
    char name[PARAM_NAME_MAX];
    Seq2seqRecurrentLayer r;
    snprintf(name, sizeof name, "%s.weight_ih_l%d", prefix, layer);
    r.input_gates.weight = params_add_of(ps, name, true, 2, gates * hidden, in);
    snprintf(name, sizeof name, "%s.bias_ih_l%d", prefix, layer);
    r.input_gates.bias = params_add_of(ps, name, false, 1, gates * hidden);
    snprintf(name, sizeof name, "%s.weight_hh_l%d", prefix, layer);
    r.hidden_gates.weight = params_add_of(ps, name, true, 2, gates * hidden, hidden);
    snprintf(name, sizeof name, "%s.bias_hh_l%d", prefix, layer);
    r.hidden_gates.bias = params_add_of(ps, name, false, 1, gates * hidden);
    return r;
}

/* torch.nn.GRU/LSTM's default (the same as common/nn.c's gru_cell_init):
 * every weight and bias U(-1/sqrt(H), 1/sqrt(H)). */
static void recurrent_init(Seq2seqRecurrentLayer *r, int hidden, Rng *rng) {
    float bound = 1.0f / sqrtf((float)hidden);
    init_uniform(r->input_gates.weight, -bound, bound, rng);
    init_uniform(r->input_gates.bias, -bound, bound, rng);
    init_uniform(r->hidden_gates.weight, -bound, bound, rng);
    init_uniform(r->hidden_gates.bias, -bound, bound, rng);
}

static void model_declare(Seq2seqModel *m) {
    const Seq2seqConfig *c = &m->config;
    int E = c->embed, H = c->hidden, G = seq2seq_gates(c);
    ParamSet *ps = &m->params;
    params_init(ps);
    m->source_embedding = embedding_declare(ps, "encoder.embedding", c->source_vocab, E);
    for (int l = 0; l < c->layers; l++)
        m->encoder[l] = recurrent_declare(ps, "encoder.rnn", l, l == 0 ? E : H, G, H);
    m->target_embedding = embedding_declare(ps, "decoder.embedding", c->target_vocab, E);
    int decoder_in = c->attention == SEQ2SEQ_BAHDANAU ? E + H : E; /* [emb; context] */
    for (int l = 0; l < c->layers; l++)
        m->decoder[l] = recurrent_declare(ps, "decoder.rnn", l, l == 0 ? decoder_in : H, G, H);
    if (c->attention == SEQ2SEQ_BAHDANAU) {
        m->attention_query = linear_declare(ps, "decoder.attention.query", H, H, false);
        m->attention_key = linear_declare(ps, "decoder.attention.key", H, H, false);
        m->attention_v = params_add_of(ps, "decoder.attention.v", false, 1, H);
    } else if (c->attention == SEQ2SEQ_LUONG) {
        m->attention_score = linear_declare(ps, "decoder.attention.score", H, H, false);
        m->attention_combine = linear_declare(ps, "decoder.attention.combine", 2 * H, H, false);
    }
    m->output = linear_declare(ps, "decoder.output", seq2seq_feature_size(c), c->target_vocab, true);
}

void seq2seq_model_build(Seq2seqModel *m, const Seq2seqConfig *config, Rng *rng) {
    memset(m, 0, sizeof *m);
    m->config = *config;
    if (config->layers < 1 || config->layers > SEQ2SEQ_MAX_LAYERS)
        fatal("seq2seq_model_build: %d layers; 1..%d are supported", config->layers,
              SEQ2SEQ_MAX_LAYERS);
    model_declare(m);
    params_allocate(&m->params);
    const Seq2seqConfig *c = &m->config;
    init_normal(m->source_embedding.table, 1.0f, rng); /* torch.nn.Embedding: N(0, 1) */
    init_normal(m->target_embedding.table, 1.0f, rng);
    for (int l = 0; l < c->layers; l++) {
        recurrent_init(&m->encoder[l], c->hidden, rng);
        recurrent_init(&m->decoder[l], c->hidden, rng);
    }
    if (c->attention == SEQ2SEQ_BAHDANAU) {
        linear_init(&m->attention_query, rng);
        linear_init(&m->attention_key, rng);
        float bound = 1.0f / sqrtf((float)c->hidden);
        init_uniform(m->attention_v, -bound, bound, rng);
    } else if (c->attention == SEQ2SEQ_LUONG) {
        linear_init(&m->attention_score, rng);
        linear_init(&m->attention_combine, rng);
    }
    linear_init(&m->output, rng);
}

void seq2seq_model_free(Seq2seqModel *m) {
    params_free(&m->params);
}

/* ======================================================================== */
/* One recurrent step (either cell)                                          */
/* ======================================================================== */

/* h (1, B, H): part 0 of a state (P, B, H), a view sharing its gradient. */
static Tensor *state_hidden(Graph *g, Tensor *state) {
    return tensor_rows(g, state, 0, 1);
}

/* gx (B, G*H) already holds W_ih x + b_ih; this adds the hidden-to-hidden
 * product and applies the cell: the new state (P, B, H). */
static Tensor *recurrent_step(Graph *g, const Seq2seqModel *m, const Seq2seqRecurrentLayer *r,
                              const float *packed_w_hh, Tensor *gx, Tensor *state) {
    Tensor *gh = op_linear_packed(g, state_hidden(g, state), r->hidden_gates.weight, packed_w_hh,
                                  r->hidden_gates.bias); /* (1, B, G*H) */
    return m->config.cell == SEQ2SEQ_LSTM ? seq2seq_lstm_step(g, gx, gh, state, NULL)
                                          : seq2seq_gru_step(g, gx, gh, state, NULL);
}

/* ======================================================================== */
/* Encoder                                                                   */
/* ======================================================================== */

/* The h of every step of a layer's states (S, P, B, H), as (S*B, H) rows:
 * the next layer's input, or the decoder's features.  A GRU's state is h
 * alone, so that is a view; an LSTM's h is copied out of [h, c]. */
static Tensor *layer_outputs(Graph *g, Tensor *states) {
    int S = states->shape[0], P = states->shape[1], B = states->shape[2], H = states->shape[3];
    return tensor_reshape(g, P == 1 ? states : seq2seq_hidden_states(g, states, false), 2,
                          (int[]){S * B, H});
}

/* Layers 0..L-1 over a whole sequence whose inputs are known in advance:
 * x (S*B, In) the inputs of layer 0, initial[l] (P, B, H) the state each
 * layer starts from; each layer is one op, seq2seq_recurrent_layer.
 * Returns the top layer's states (S, P, B, H); final[l] (P, B, H) receives
 * each layer's state after step S-1, which for a padded row is the state
 * after its last real token. */
static Tensor *run_layers(Graph *g, const Seq2seqModel *m, const Seq2seqRecurrentLayer *layers,
                          Tensor *x, Tensor *const *initial, const int *active, Tensor **final) {
    const Seq2seqConfig *c = &m->config;
    Tensor *states = NULL; /* (S, P, B, H) */
    for (int l = 0; l < c->layers; l++) {
        if (l > 0) x = layer_outputs(g, states); /* (S*B, H) */
        states = seq2seq_recurrent_layer(g, c->cell, &layers[l], x, initial[l], active);
        if (final) {
            int S = states->shape[0];
            final[l] = tensor_reshape(g, tensor_rows(g, states, S - 1, 1), 3,
                                      (int[]){states->shape[1], states->shape[2], states->shape[3]});
        }
    }
    return states;
}

/* active (S, B): 1 at the real tokens of each row, 0 at its padding. */
Seq2seqEncoded seq2seq_encode(Graph *g, const Seq2seqModel *m, const int *source,
                              const int *lengths, int B, int S) {
    const Seq2seqConfig *c = &m->config;
    int H = c->hidden, P = seq2seq_state_parts(c);
    Seq2seqEncoded enc = {.B = B, .S = S};
    int *active = arena_alloc(&g->arena, (size_t)S * B * sizeof(int)); /* (S, B) */
    enc.mask = tensor_of(g, false, 2, B, S);                            /* (B, S) */
    for (int b = 0; b < B; b++) {
        if (lengths[b] < 1 || lengths[b] > S)
            fatal("seq2seq_encode: length %d of row %d is outside 1..%d", lengths[b], b, S);
        for (int t = 0; t < S; t++) {
            active[t * B + b] = t < lengths[b];
            enc.mask->data[b * S + t] = t < lengths[b] ? 1.0f : 0.0f;
        }
    }
    Tensor *x = embedding_forward(g, &m->source_embedding, source, S * B); /* (S*B, E) */
    Tensor *zero[SEQ2SEQ_MAX_LAYERS]; /* h_0 = 0 (and c_0 = 0) for every layer */
    for (int l = 0; l < c->layers; l++) zero[l] = tensor_of(g, false, 3, P, B, H);
    Tensor *states = run_layers(g, m, m->encoder, x, zero, active, enc.final_state); /* (S, P, B, H) */
    if (c->attention != SEQ2SEQ_NO_ATTENTION) {
        enc.memory = seq2seq_hidden_states(g, states, true); /* (B, S, H) */
        /* The keys do not depend on the decoder: computed once, not per step. */
        enc.keys = linear_forward(g, c->attention == SEQ2SEQ_BAHDANAU ? &m->attention_key
                                                                       : &m->attention_score,
                                  enc.memory); /* (B, S, A) */
    }
    return enc;
}

/* ======================================================================== */
/* Attention                                                                 */
/* ======================================================================== */

/* query_state (1, B, H) -> context c (B, H) = sum_j a_j h_j, with
 *   Bahdanau: score_j = v . tanh(W_q s + W_k h_j)       (additive)
 *   Luong:    score_j = s . (W_a h_j)                   ("general")
 *   a = softmax over the real source tokens (padding masked out).
 * weights_out (B, S), when not NULL, receives a. */
static Tensor *attend(Graph *g, const Seq2seqModel *m, const Seq2seqEncoded *enc,
                      Tensor *query_state, float *weights_out) {
    int B = enc->B, S = enc->S;
    Tensor *scores; /* (B, S) */
    if (m->config.attention == SEQ2SEQ_BAHDANAU) {
        Tensor *query = linear_forward(g, &m->attention_query, query_state); /* (1, B, A) */
        scores = seq2seq_additive_scores(g, enc->keys, query, m->attention_v);
    } else {
        scores = seq2seq_dot_scores(g, enc->keys, query_state);
    }
    Tensor *weights = op_softmax(g, scores, enc->mask); /* (B, S) */
    if (weights_out) memcpy(weights_out, weights->data, (size_t)B * S * sizeof(float));
    return seq2seq_context(g, weights, enc->memory); /* (B, H) */
}

/* ======================================================================== */
/* Decoder                                                                   */
/* ======================================================================== */

Seq2seqDecoderState seq2seq_decoder_start(const Seq2seqEncoded *enc, int layers) {
    Seq2seqDecoderState st = {{0}};
    for (int l = 0; l < layers; l++) st.state[l] = enc->final_state[l]; /* s_0 = c */
    return st;
}

/* Luong: attend with the new top state s_t (B, H), then the features
 * h~_t = tanh(W_c [c_t; s_t])  (B, H). */
static Tensor *luong_features(Graph *g, const Seq2seqModel *m, const Seq2seqEncoded *enc,
                              Tensor *s_t, float *attention) {
    Tensor *context = attend(g, m, enc, s_t, attention); /* (B, H) */
    return op_tanh(g, linear_forward(g, &m->attention_combine, op_concat(g, context, s_t)));
}

/* input_gates (B, G*H): W_ih emb(y) + b_ih for layer 0 when the caller has
 * already computed it (teacher forcing, see seq2seq_forward), else NULL.
 * packed_w_hh: each layer's W_hh packed once for all steps, or NULL. */
static Tensor *decoder_step(Graph *g, const Seq2seqModel *m, const Seq2seqEncoded *enc,
                            Seq2seqDecoderState *st, const int *input_ids, Tensor *input_gates,
                            const float *const *packed_w_hh, float *attention) {
    const Seq2seqConfig *c = &m->config;
    int B = enc->B, H = c->hidden, L = c->layers;
    Tensor *context = NULL; /* (B, H) */
    Tensor *x = NULL;       /* (B, In) the input of the current layer */
    if (input_gates == NULL) {
        x = embedding_forward(g, &m->target_embedding, input_ids, B); /* (B, E) */
        if (c->attention == SEQ2SEQ_BAHDANAU) {
            /* Bahdanau: attend with the previous state s_{t-1}, feed [emb; c_t]. */
            context = attend(g, m, enc, state_hidden(g, st->state[L - 1]), attention);
            x = op_concat(g, x, context); /* (B, E + H) */
        }
    }
    for (int l = 0; l < L; l++) {
        Tensor *gx = l == 0 && input_gates ? input_gates
                                           : linear_forward(g, &m->decoder[l].input_gates, x);
        st->state[l] = recurrent_step(g, m, &m->decoder[l], packed_w_hh ? packed_w_hh[l] : NULL,
                                      gx, st->state[l]);
        x = tensor_reshape(g, state_hidden(g, st->state[l]), 2, (int[]){B, H}); /* s_t (B, H) */
    }
    if (c->attention == SEQ2SEQ_BAHDANAU) return op_concat(g, x, context); /* [s_t; c_t] (B, 2H) */
    if (c->attention == SEQ2SEQ_LUONG) return luong_features(g, m, enc, x, attention);
    return x; /* s_t (B, H) */
}

Tensor *seq2seq_decoder_step(Graph *g, const Seq2seqModel *m, const Seq2seqEncoded *enc,
                             Seq2seqDecoderState *st, const int *input_ids, float *attention) {
    return decoder_step(g, m, enc, st, input_ids, NULL, NULL, attention);
}

Tensor *seq2seq_logits(Graph *g, const Seq2seqModel *m, Tensor *features) {
    return linear_forward(g, &m->output, features); /* (N, Vt) */
}

static int argmax_row(const float *row, int count) {
    int best = 0;
    for (int v = 1; v < count; v++)
        if (row[v] > row[best]) best = v; /* first maximum on ties */
    return best;
}

/* ======================================================================== */
/* Training forward: teacher forcing, one loss over all real tokens          */
/* ======================================================================== */

/* Full teacher forcing without Bahdanau attention: every decoder input is
 * known before the first step, so each decoder layer runs over all T steps
 * as one op, as the encoder's do (run_layers).  Returns the features
 * (T*B, F); attention (T, B, S), when not NULL, receives Luong's weights. */
static Tensor *decode_whole_sequence(Graph *g, const Seq2seqModel *m, const Seq2seqEncoded *enc,
                                     const Seq2seqBatch *batch, float *attention) {
    int B = batch->B, T = batch->T;
    Tensor *x = embedding_forward(g, &m->target_embedding, batch->decoder_inputs, T * B); /* (T*B, E) */
    Tensor *states = run_layers(g, m, m->decoder, x, enc->final_state, NULL, NULL); /* (T, P, B, H) */
    Tensor *top = layer_outputs(g, states);                                            /* (T*B, H) s_t */
    if (m->config.attention != SEQ2SEQ_LUONG) return top;
    Tensor *features = tensor_empty(g, 2, (const int[]){T * B, m->config.hidden}, true,
                                    "decoder_features"); /* (T*B, H), each step's rows written below */
    for (int t = 0; t < T; t++) {
        Tensor *f = luong_features(g, m, enc, tensor_rows(g, top, t * B, B),
                                   attention ? attention + (size_t)t * B * enc->S : NULL); /* (B, H) */
        seq2seq_copy_into(g, f, tensor_rows(g, features, t * B, B));
    }
    return features;
}

Seq2seqOutput seq2seq_forward(Graph *g, const Seq2seqModel *m, const Seq2seqBatch *batch,
                              float teacher_forcing, Rng *rng) {
    const Seq2seqConfig *c = &m->config;
    int B = batch->B, T = batch->T, F = seq2seq_feature_size(c), V = c->target_vocab;
    Seq2seqOutput result = {0};
    Seq2seqEncoded enc = seq2seq_encode(g, m, batch->source, batch->source_lengths, B, batch->S);
    if (c->attention != SEQ2SEQ_NO_ATTENTION)
        result.attention = arena_alloc(&g->arena, (size_t)T * B * enc.S * sizeof(float));
    Tensor *features; /* (T*B, F) every step's f_t */
    if (teacher_forcing >= 1.0f && c->attention != SEQ2SEQ_BAHDANAU) {
        features = decode_whole_sequence(g, m, &enc, batch, result.attention);
    } else {
        /* Step by step: Bahdanau's input holds the context of each step, and
         * without full teacher forcing an input can be the previous output. */
        Seq2seqDecoderState st = seq2seq_decoder_start(&enc, c->layers);
        features = tensor_empty(g, 2, (const int[]){T * B, F}, true, "decoder_features");
        /* Layer 0's input projection of all T steps as one matmul, for the
         * steps that read the true previous token (not for Bahdanau, whose
         * input also holds the context of each step). */
        Tensor *input_gates_all = NULL; /* (T*B, G*H) */
        if (c->attention != SEQ2SEQ_BAHDANAU)
            input_gates_all = linear_forward(
                g, &m->decoder[0].input_gates,
                embedding_forward(g, &m->target_embedding, batch->decoder_inputs, T * B));
        const float *packed_w_hh[SEQ2SEQ_MAX_LAYERS]; /* each used at all T steps: packed once */
        for (int l = 0; l < c->layers; l++)
            packed_w_hh[l] = linear_pack_weight(g, m->decoder[l].hidden_gates.weight);
        int *predicted = arena_alloc(&g->arena, (size_t)B * sizeof(int)); /* (B) */
        bool forced = true; /* step 0 reads <bos> */
        for (int t = 0; t < T; t++) {
            const int *inputs = forced ? batch->decoder_inputs + (size_t)t * B : predicted;
            Tensor *gates = forced && input_gates_all ? tensor_rows(g, input_gates_all, t * B, B) : NULL;
            float *attention = result.attention ? result.attention + (size_t)t * B * enc.S : NULL;
            Tensor *f = decoder_step(g, m, &enc, &st, inputs, gates, packed_w_hh, attention); /* (B, F) */
            seq2seq_copy_into(g, f, tensor_rows(g, features, t * B, B));
            if (t + 1 == T) break;
            forced = teacher_forcing >= 1.0f || (teacher_forcing > 0.0f && rng_uniform(rng) < teacher_forcing);
            if (!forced) {
                /* Feed back the model's own guess.  argmax has no gradient, so
                 * these logits are computed without recording them. */
                bool no_grad = g->no_grad;
                g->no_grad = true;
                Tensor *logits = seq2seq_logits(g, m, f); /* (B, Vt) */
                g->no_grad = no_grad;
                for (int b = 0; b < B; b++) predicted[b] = argmax_row(logits->data + (size_t)b * V, V);
            }
        }
    }
    result.logits = seq2seq_logits(g, m, features);
    result.loss = op_cross_entropy(g, result.logits, batch->targets, SEQ2SEQ_IGNORE);
    return result;
}

/* ======================================================================== */
/* Greedy decoding                                                           */
/* ======================================================================== */

void seq2seq_greedy(Graph *g, const Seq2seqModel *m, const int *source, const int *lengths,
                    int B, int S, int max_steps, int *out, int *out_lengths, float *attention) {
    int V = m->config.target_vocab;
    graph_reset(g);
    bool no_grad = g->no_grad;
    g->no_grad = true;
    Seq2seqEncoded enc = seq2seq_encode(g, m, source, lengths, B, S);
    Seq2seqDecoderState st = seq2seq_decoder_start(&enc, m->config.layers);
    int *ids = arena_alloc(&g->arena, (size_t)B * sizeof(int));        /* (B) */
    float *weights = arena_alloc(&g->arena, (size_t)B * S * sizeof(float)); /* (B, S) */
    int unfinished = B;
    for (int b = 0; b < B; b++) ids[b] = SEQ2SEQ_BOS, out_lengths[b] = -1;
    for (int t = 0; t < max_steps && unfinished > 0; t++) {
        Tensor *logits = seq2seq_logits(g, m, seq2seq_decoder_step(g, m, &enc, &st, ids,
                                                                   attention ? weights : NULL));
        for (int b = 0; b < B; b++) {
            ids[b] = argmax_row(logits->data + (size_t)b * V, V);
            if (out_lengths[b] >= 0) continue; /* already finished */
            if (attention)
                memcpy(attention + ((size_t)b * max_steps + t) * S, weights + (size_t)b * S,
                       (size_t)S * sizeof(float));
            if (ids[b] == SEQ2SEQ_EOS) out_lengths[b] = t, unfinished--;
            else out[(size_t)b * max_steps + t] = ids[b];
        }
    }
    for (int b = 0; b < B; b++)
        if (out_lengths[b] < 0) out_lengths[b] = max_steps; /* never said <eos> */
    g->no_grad = no_grad;
}

/* ======================================================================== */
/* Beam search                                                               */
/* ======================================================================== */

/* A (rows, ...) tensor made of `count` copies of row 0 of t (no gradient). */
static Tensor *repeat_row(Graph *g, const Tensor *t, int count) {
    int shape[TENSOR_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[0] = count;
    Tensor *out = tensor_new(g, t->ndim, shape, false);
    int row = t->numel / t->shape[0];
    for (int k = 0; k < count; k++)
        memcpy(out->data + (size_t)k * row, t->data, (size_t)row * sizeof(float));
    return out;
}

/* state (P, K, H): row i of the result is row parent[i] of state. */
static Tensor *reorder_state(Graph *g, const Tensor *state, const int *parent) {
    int P = state->shape[0], K = state->shape[1], H = state->shape[2];
    Tensor *out = tensor_of(g, false, 3, P, K, H);
    for (int p = 0; p < P; p++)
        for (int i = 0; i < K; i++)
            memcpy(out->data + ((size_t)p * K + i) * H, state->data + ((size_t)p * K + parent[i]) * H,
                   (size_t)H * sizeof(float));
    return out;
}

/* A candidate extension: hypothesis `parent` followed by `token`. */
typedef struct {
    double score; /* total log-probability                         */
    float logit;  /* breaks ties as greedy's argmax would            */
    int parent, token;
} Candidate;

/* EXERCISE beam_search: top_candidates below: among every extension (parent k, token v) of the
 * live hypotheses (scores[k] > -inf), score = scores[k] + log softmax(logits row k)[v]; keep the
 * `width` best in best[0..*count), best first.  Ties: the larger logit wins, then the earlier k, v.
 * STUB: static void top_candidates(const float *logits, const double *scores, int K, int V, int width,
 * STUB:                            Candidate *best, int *count) {
 * STUB:     (void)logits, (void)scores, (void)K, (void)V, (void)width, (void)best;
 * STUB:     exercise_missing("beam_search");
 * STUB:     *count = 0;
 * STUB: } */
static bool candidate_better(const Candidate *a, const Candidate *b) {
    return a->score > b->score || (a->score == b->score && a->logit > b->logit);
}

/* Keeps the `width` best candidates, best first (insertion into a short
 * sorted list; earlier candidates win exact ties). */
static void top_candidates(const float *logits, const double *scores, int K, int V, int width,
                           Candidate *best, int *count) {
    *count = 0;
    for (int k = 0; k < K; k++) {
        if (scores[k] == -INFINITY) continue; /* an empty beam slot */
        const float *z = logits + (size_t)k * V;
        float highest = z[argmax_row(z, V)];
        double total = 0;
        for (int v = 0; v < V; v++) total += exp((double)(z[v] - highest));
        double log_normalizer = highest + log(total); /* log sum_v exp z_v */
        for (int v = 0; v < V; v++) {
            Candidate c = {scores[k] + (double)z[v] - log_normalizer, z[v], k, v};
            if (*count == width && !candidate_better(&c, &best[width - 1])) continue;
            int i = *count < width ? (*count)++ : width - 1;
            while (i > 0 && candidate_better(&c, &best[i - 1])) best[i] = best[i - 1], i--;
            best[i] = c;
        }
    }
}
/* END EXERCISE */

/* The hypotheses of the beam, K rows. */
typedef struct {
    int *tokens;      /* (K, max_steps) */
    double *scores;   /* (K) log p, -inf for an empty slot */
    float *attention; /* (K, max_steps, S) or NULL */
} Beam;

static Beam beam_alloc(Graph *g, int K, int max_steps, int S, bool with_attention) {
    Beam beam = {
        .tokens = arena_alloc(&g->arena, (size_t)K * max_steps * sizeof(int)),
        .scores = arena_alloc(&g->arena, (size_t)K * sizeof(double)),
        .attention = with_attention ? arena_alloc(&g->arena, (size_t)K * max_steps * S * sizeof(float)) : NULL,
    };
    for (int k = 0; k < K; k++) beam.scores[k] = k == 0 ? 0.0 : -INFINITY;
    return beam;
}

/* The best finished hypothesis so far. */
typedef struct {
    double normalized; /* log p / length^alpha */
    int length;        /* tokens before <eos>  */
    int *tokens;       /* (max_steps)          */
    float *attention;  /* (max_steps, S) or NULL */
} BeamResult;

static void beam_finish(BeamResult *best, const Beam *beam, int k, int length, double score,
                        float alpha, int max_steps, int S) {
    double normalized = score / pow((double)length + 1.0, (double)alpha); /* +1: <eos> */
    if (length == max_steps) normalized = score / pow((double)length, (double)alpha);
    if (normalized <= best->normalized) return; /* the earlier one wins ties */
    best->normalized = normalized;
    best->length = length;
    memcpy(best->tokens, beam->tokens + (size_t)k * max_steps, (size_t)length * sizeof(int));
    if (best->attention)
        memcpy(best->attention, beam->attention + (size_t)k * max_steps * S,
               (size_t)(length < max_steps ? length + 1 : length) * S * sizeof(float));
}

int seq2seq_beam_search(Graph *g, const Seq2seqModel *m, const int *source, int S, int width,
                        float length_penalty, int max_steps, int *out, float *attention) {
    const Seq2seqConfig *c = &m->config;
    int K = width, V = c->target_vocab;
    graph_reset(g);
    bool no_grad = g->no_grad;
    g->no_grad = true;
    Seq2seqEncoded one = seq2seq_encode(g, m, source, &S, 1, S);
    /* The same encoding for each of the K rows of the beam. */
    Seq2seqEncoded enc = {.B = K, .S = S, .mask = repeat_row(g, one.mask, K)};
    if (one.memory) enc.memory = repeat_row(g, one.memory, K), enc.keys = repeat_row(g, one.keys, K);
    Seq2seqDecoderState st = {{0}};
    for (int l = 0; l < c->layers; l++) {
        int P = one.final_state[l]->shape[0], H = c->hidden;
        st.state[l] = tensor_of(g, false, 3, P, K, H); /* (P, K, H) */
        for (int p = 0; p < P; p++)
            for (int k = 0; k < K; k++)
                memcpy(st.state[l]->data + ((size_t)p * K + k) * H,
                       one.final_state[l]->data + (size_t)p * H, (size_t)H * sizeof(float));
    }
    bool with_attention = attention != NULL && c->attention != SEQ2SEQ_NO_ATTENTION;
    Beam beam = beam_alloc(g, K, max_steps, S, with_attention), next = beam_alloc(g, K, max_steps, S, with_attention);
    BeamResult best = {.normalized = -INFINITY, .tokens = out,
                       .attention = with_attention ? attention : NULL};
    int *ids = arena_alloc(&g->arena, (size_t)K * sizeof(int));       /* (K) */
    int *parent = arena_alloc(&g->arena, (size_t)K * sizeof(int));    /* (K) */
    float *weights = arena_alloc(&g->arena, (size_t)K * S * sizeof(float)); /* (K, S) */
    Candidate *top = arena_alloc(&g->arena, (size_t)K * sizeof(Candidate));  /* (K) */
    for (int k = 0; k < K; k++) ids[k] = SEQ2SEQ_BOS;
    int finished = 0;
    for (int t = 0; t < max_steps && finished < K; t++) {
        Tensor *f = seq2seq_decoder_step(g, m, &enc, &st, ids, with_attention ? weights : NULL);
        Tensor *logits = seq2seq_logits(g, m, f); /* (K, Vt) */
        int count;
        top_candidates(logits->data, beam.scores, K, V, K - finished, top, &count);
        /* The best K - finished extensions: those ending in <eos> are done,
         * the others fill the beam again (so the beam shrinks as it finishes). */
        for (int i = 0; i < K; i++) next.scores[i] = -INFINITY, parent[i] = 0;
        int live = 0;
        for (int i = 0; i < count; i++) {
            const Candidate *cand = &top[i];
            if (with_attention)
                memcpy(beam.attention + ((size_t)cand->parent * max_steps + t) * S,
                       weights + (size_t)cand->parent * S, (size_t)S * sizeof(float));
            if (cand->token == SEQ2SEQ_EOS) {
                beam_finish(&best, &beam, cand->parent, t, cand->score, length_penalty, max_steps, S);
                finished++;
                continue;
            }
            int slot = live++;
            parent[slot] = cand->parent;
            next.scores[slot] = cand->score;
            memcpy(next.tokens + (size_t)slot * max_steps, beam.tokens + (size_t)cand->parent * max_steps,
                   (size_t)t * sizeof(int));
            next.tokens[(size_t)slot * max_steps + t] = cand->token;
            if (with_attention)
                memcpy(next.attention + (size_t)slot * max_steps * S,
                       beam.attention + (size_t)cand->parent * max_steps * S,
                       (size_t)(t + 1) * S * sizeof(float));
            ids[slot] = cand->token;
        }
        Beam swap = beam;
        beam = next, next = swap;
        for (int l = 0; l < c->layers; l++) st.state[l] = reorder_state(g, st.state[l], parent);
        if (live == 0) break;
    }
    /* Hypotheses still open at max_steps compete with their full length. */
    for (int k = 0; k < K && best.normalized == -INFINITY; k++)
        if (beam.scores[k] > -INFINITY)
            beam_finish(&best, &beam, k, max_steps, beam.scores[k], length_penalty, max_steps, S);
    g->no_grad = no_grad;
    return best.length;
}

/* ======================================================================== */
/* Checkpoint metadata                                                       */
/* ======================================================================== */

void seq2seq_config_to_metadata(const Seq2seqConfig *c, Metadata *meta) {
    metadata_set(meta, "architecture", "seq2seq");
    metadata_set(meta, "config.cell", seq2seq_cell_name(c->cell));
    metadata_set(meta, "config.attention", seq2seq_attention_name(c->attention));
    metadata_set_int(meta, "config.layers", c->layers);
    metadata_set_int(meta, "config.embed", c->embed);
    metadata_set_int(meta, "config.hidden", c->hidden);
    metadata_set_int(meta, "config.source_vocab", c->source_vocab);
    metadata_set_int(meta, "config.target_vocab", c->target_vocab);
}

static bool get_bounded(const Metadata *meta, const char *key, long low, long high, int *value,
                        Error *err) {
    long number;
    if (!metadata_get_int(meta, key, &number, err)) return false;
    if (number < low || number > high)
        return error_set(err, "checkpoint metadata %s = %ld is outside %ld..%ld", key, number, low, high);
    *value = (int)number;
    return true;
}

bool seq2seq_config_from_metadata(const Metadata *meta, Seq2seqConfig *c, Error *err) {
    const char *architecture = metadata_get(meta, "architecture");
    if (architecture == NULL || strcmp(architecture, "seq2seq") != 0)
        return error_set(err, "checkpoint architecture is '%s', expected 'seq2seq'",
                         architecture ? architecture : "(missing)");
    const char *cell = metadata_get(meta, "config.cell");
    const char *attention = metadata_get(meta, "config.attention");
    if (cell == NULL || (strcmp(cell, "gru") != 0 && strcmp(cell, "lstm") != 0))
        return error_set(err, "checkpoint metadata config.cell is '%s', expected gru or lstm",
                         cell ? cell : "(missing)");
    c->cell = strcmp(cell, "lstm") == 0 ? SEQ2SEQ_LSTM : SEQ2SEQ_GRU;
    c->attention = -1;
    for (int a = 0; a <= SEQ2SEQ_LUONG && attention; a++)
        if (strcmp(attention, seq2seq_attention_name(a)) == 0) c->attention = a;
    if (c->attention < 0)
        return error_set(err, "checkpoint metadata config.attention is '%s', expected "
                         "none, bahdanau or luong", attention ? attention : "(missing)");
    return get_bounded(meta, "config.layers", 1, SEQ2SEQ_MAX_LAYERS, &c->layers, err) &&
           get_bounded(meta, "config.embed", 1, 1 << 16, &c->embed, err) &&
           get_bounded(meta, "config.hidden", 1, 1 << 16, &c->hidden, err) &&
           get_bounded(meta, "config.source_vocab", SEQ2SEQ_SPECIALS, 1 << 24, &c->source_vocab, err) &&
           get_bounded(meta, "config.target_vocab", SEQ2SEQ_SPECIALS, 1 << 24, &c->target_vocab, err);
}
