/* tests/test_transformer.c: the transformer's gradients, masks, cache,
 * checkpoints, resume, and its command line on bad input.
 *
 * Legend: B batch, T time, C d_model, H heads, V vocabulary, L layers.
 * Every model here is tiny (C = 8, L = 2) so that the whole suite runs in a
 * few seconds, and under the sanitizers in well under a minute.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "gradcheck.h"
#include "matmul.h"
#include "program_runs.h"
#include "test_suites.h"
#include "../transformer/transformer.h"

/* ---- Fixtures ---------------------------------------------------------------- */

static TransformerConfig tiny_config(TransformerMode mode, TransformerPositions positions) {
    TransformerConfig c = {.vocab = 7, .context = 6, .layers = 2, .heads = 2, .d_model = 8,
                           .d_ff = 16, .positions = positions, .mode = mode, .bias = true};
    return c;
}

/* A model with weights large enough that every part matters (GPT-2's 0.02
 * would leave the attention almost uniform), and non-trivial LayerNorms. */
static void build_random(Transformer *m, const TransformerConfig *c, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed, 9);
    transformer_build(m, c);
    for (size_t i = 0; i < m->params.total; i++) m->params.values[i] = 0.5f * rng_normal(&rng);
    for (int t = 0; t < m->params.count; t++) /* gains near 1 */
        if (strstr(m->params.names[t], "ln") && strstr(m->params.names[t], ".weight"))
            for (int i = 0; i < m->params.tensors[t].numel; i++) m->params.tensors[t].data[i] += 1.0f;
}

static void random_ids(int *ids, int n, int V, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed, 3);
    for (int i = 0; i < n; i++) ids[i] = (int)rng_below(&rng, (uint32_t)V);
}

/* Logits (B, T, V) of a forward pass without gradients, copied out. */
static void logits_of(const Transformer *m, const int *ids, const int *lengths, int B, int T,
                      float *out) {
    Graph g;
    graph_init(&g, 1 << 20, 256);
    g.no_grad = true;
    TransformerInput in = {.ids = ids, .lengths = lengths, .batch = B, .time = T};
    Tensor *logits = transformer_lm_logits(&g, m, transformer_forward(&g, m, &in));
    memcpy(out, logits->data, (size_t)logits->numel * sizeof(float));
    graph_free(&g);
}

/* ---- The whole model's gradient against finite differences ----------------------------------- */

typedef struct {
    const Transformer *m;
    const int *ids, *targets, *lengths;
    int B, T;
    bool classify;
} LossCase;

static float loss_of(Graph *g, const LossCase *lc) {
    graph_reset(g);
    TransformerInput in = {.ids = lc->ids, .lengths = lc->lengths, .batch = lc->B, .time = lc->T};
    Tensor *hidden = transformer_forward(g, lc->m, &in);
    Tensor *logits = lc->classify ? transformer_class_logits(g, lc->m, hidden, lc->lengths)
                                  : transformer_lm_logits(g, lc->m, hidden);
    Tensor *loss = op_cross_entropy(g, logits, lc->targets, TRANSFORMER_NO_TARGET);
    if (!g->no_grad) graph_backward(g, loss);
    return loss->data[0];
}

/* For every parameter tensor, up to 4 random elements: the analytic
 * gradient against (L(w + eps) - L(w - eps)) / 2 eps, in float32. */
static void check_model_gradient(Transformer *m, const LossCase *lc, const char *label) {
    Graph g;
    graph_init(&g, 1 << 20, 256);
    params_zero_grad(&m->params);
    loss_of(&g, lc);
    float *analytic = malloc(m->params.total * sizeof(float));
    memcpy(analytic, m->params.grads, m->params.total * sizeof(float));
    g.no_grad = true;
    Rng rng;
    rng_seed(&rng, 5, 5);
    const float eps = 1e-2f, rtol = 2e-2f, atol = 2e-3f;
    int checked = 0, failures = 0, nonzero = 0;
    size_t offset = 0;
    for (int t = 0; t < m->params.count; t++) {
        Tensor *p = &m->params.tensors[t];
        for (int k = 0; k < 4 && k < p->numel; k++) {
            int i = (int)rng_below(&rng, (uint32_t)p->numel);
            float saved = p->data[i];
            p->data[i] = saved + eps;
            double plus = loss_of(&g, lc);
            p->data[i] = saved - eps;
            double minus = loss_of(&g, lc);
            p->data[i] = saved;
            float numeric = (float)((plus - minus) / (2 * eps));
            float a = analytic[offset + (size_t)i];
            nonzero += fabsf(numeric) > 1e-4f;
            checked++;
            if (fabsf(a - numeric) > atol + rtol * fmaxf(fabsf(a), fabsf(numeric))) {
                if (failures++ < 8)
                    fprintf(stderr, "%s: %s[%d]: analytic %g, numeric %g\n", label,
                            m->params.names[t], i, (double)a, (double)numeric);
            }
        }
        offset += (size_t)p->numel;
    }
    free(analytic);
    graph_free(&g);
    ck_assert_msg(failures == 0, "%s: %d of %d gradient elements disagree", label, failures, checked);
    ck_assert_msg(nonzero > checked / 2, "%s: only %d of %d numeric gradients are non-zero", label,
                  nonzero, checked);
}

START_TEST(test_gradient_gpt) {
    TransformerConfig c = tiny_config(TRANSFORMER_GPT, TRANSFORMER_POS_LEARNED);
    Transformer m;
    build_random(&m, &c, 1);
    int ids[2 * 6], targets[2 * 6];
    random_ids(ids, 12, c.vocab, 1);
    random_ids(targets, 12, c.vocab, 2);
    targets[3] = -1; /* an ignored position */
    LossCase lc = {.m = &m, .ids = ids, .targets = targets, .B = 2, .T = 6};
    check_model_gradient(&m, &lc, "gpt");
    transformer_free(&m);
}
END_TEST

/* Encoder: no mask, padding, tied head, sinusoidal positions, no biases. */
START_TEST(test_gradient_bert_masked_tokens) {
    TransformerConfig c = tiny_config(TRANSFORMER_BERT, TRANSFORMER_POS_SINUSOIDAL);
    c.tied_head = true;
    c.bias = false;
    Transformer m;
    build_random(&m, &c, 2);
    int ids[12], targets[12], lengths[2] = {6, 4};
    random_ids(ids, 12, c.vocab, 3);
    random_ids(targets, 12, c.vocab, 4);
    targets[0] = targets[4] = -1;
    LossCase lc = {.m = &m, .ids = ids, .targets = targets, .lengths = lengths, .B = 2, .T = 6};
    check_model_gradient(&m, &lc, "bert");
    transformer_free(&m);
}
END_TEST

START_TEST(test_gradient_bert_classifier) {
    TransformerConfig c = tiny_config(TRANSFORMER_BERT, TRANSFORMER_POS_LEARNED);
    c.classes = 3;
    Transformer m;
    build_random(&m, &c, 3);
    int ids[12], labels[2] = {2, 0}, lengths[2] = {3, 6};
    random_ids(ids, 12, c.vocab, 5);
    LossCase lc = {.m = &m, .ids = ids, .targets = labels, .lengths = lengths, .B = 2, .T = 6,
                   .classify = true};
    /* the LM head plays no part here: skip it by checking the rest only */
    check_model_gradient(&m, &lc, "classifier");
    transformer_free(&m);
}
END_TEST

/* ---- Masks and symmetry -------------------------------------------------------------------------- */

START_TEST(test_causal_mask_hides_the_future) {
    TransformerConfig c = tiny_config(TRANSFORMER_GPT, TRANSFORMER_POS_LEARNED);
    Transformer m;
    build_random(&m, &c, 4);
    int T = 6, V = c.vocab, ids[6], changed[6];
    float before[6 * 7], after[6 * 7];
    random_ids(ids, T, V, 6);
    logits_of(&m, ids, NULL, 1, T, before);
    for (int k = 1; k < T; k++) {
        memcpy(changed, ids, sizeof ids);
        for (int t = k; t < T; t++) changed[t] = (ids[t] + 1 + t) % V; /* a different future */
        logits_of(&m, changed, NULL, 1, T, after);
        for (int i = 0; i < k * V; i++)
            ck_assert_msg(before[i] == after[i], "changing tokens >= %d changed logit %d (position %d)",
                          k, i, i / V);
        bool differs = false; /* ... while the changed positions do change */
        for (int i = k * V; i < T * V; i++) differs = differs || before[i] != after[i];
        ck_assert(differs);
    }
    /* The encoder has no mask: the same change reaches position 0. */
    transformer_free(&m);
    c.mode = TRANSFORMER_BERT;
    build_random(&m, &c, 4);
    logits_of(&m, ids, NULL, 1, T, before);
    memcpy(changed, ids, sizeof ids);
    changed[T - 1] = (ids[T - 1] + 1) % V;
    logits_of(&m, changed, NULL, 1, T, after);
    bool differs = false;
    for (int i = 0; i < V; i++) differs = differs || before[i] != after[i];
    ck_assert_msg(differs, "bert: position 0 ignored the last token");
    transformer_free(&m);
}
END_TEST

START_TEST(test_no_positions_is_permutation_equivariant) {
    TransformerConfig c = tiny_config(TRANSFORMER_BERT, TRANSFORMER_POS_NONE);
    Transformer m;
    build_random(&m, &c, 5);
    int T = 6, V = c.vocab, ids[6], permuted[6], order[6] = {3, 0, 5, 1, 4, 2};
    float plain[6 * 7], shuffled[6 * 7];
    random_ids(ids, T, V, 7);
    for (int t = 0; t < T; t++) permuted[t] = ids[order[t]];
    logits_of(&m, ids, NULL, 1, T, plain);
    logits_of(&m, permuted, NULL, 1, T, shuffled);
    for (int t = 0; t < T; t++)
        for (int v = 0; v < V; v++) {
            float a = shuffled[t * V + v], b = plain[order[t] * V + v];
            ck_assert_msg(fabsf(a - b) <= 1e-5f * (1 + fabsf(b)), "position %d: %g vs %g", t,
                          (double)a, (double)b);
        }
    /* With positions, the same permutation changes the outputs. */
    transformer_free(&m);
    c.positions = TRANSFORMER_POS_SINUSOIDAL;
    build_random(&m, &c, 5);
    logits_of(&m, ids, NULL, 1, T, plain);
    logits_of(&m, permuted, NULL, 1, T, shuffled);
    float largest = 0;
    for (int t = 0; t < T; t++)
        for (int v = 0; v < V; v++) largest = fmaxf(largest, fabsf(shuffled[t * V + v] - plain[order[t] * V + v]));
    ck_assert_msg(largest > 1e-3f, "positions made no difference (%g)", (double)largest);
    transformer_free(&m);
}
END_TEST

/* ---- Learning ----------------------------------------------------------------------------------- */

START_TEST(test_overfits_a_tiny_batch) {
    TransformerConfig c = {.vocab = 11, .context = 8, .layers = 2, .heads = 2, .d_model = 32,
                           .d_ff = 64, .positions = TRANSFORMER_POS_LEARNED,
                           .mode = TRANSFORMER_GPT, .bias = true};
    Transformer m;
    Rng rng;
    rng_seed(&rng, 1, 2);
    transformer_build(&m, &c);
    transformer_init(&m, &rng);
    Optimizer opt;
    optimizer_init(&opt, OPTIMIZER_ADAMW, &m.params);
    int B = 4, T = 8, ids[32], targets[32];
    random_ids(ids, B * T, c.vocab, 11);
    random_ids(targets, B * T, c.vocab, 12);
    Graph g;
    graph_init(&g, 1 << 20, 256);
    float first = 0, last = 0;
    for (int step = 0; step < 150; step++) {
        graph_reset(&g);
        params_zero_grad(&m.params);
        TransformerInput in = {.ids = ids, .batch = B, .time = T};
        Tensor *loss = op_cross_entropy(&g, transformer_lm_logits(&g, &m, transformer_forward(&g, &m, &in)),
                                                 targets, TRANSFORMER_NO_TARGET);
        graph_backward(&g, loss);
        optimizer_step(&opt, &m.params, 1e-2f);
        if (step == 0) first = loss->data[0];
        last = loss->data[0];
    }
    ck_assert_msg(first > 2.0f && last < 0.05f, "loss %g -> %g", (double)first, (double)last);
    graph_free(&g);
    optimizer_free(&opt);
    transformer_free(&m);
}
END_TEST

/* ---- Generation ----------------------------------------------------------------------------------- */

START_TEST(test_kv_cache_matches_full_forward) {
    const TransformerPositions kinds[2] = {TRANSFORMER_POS_LEARNED, TRANSFORMER_POS_SINUSOIDAL};
    for (int k = 0; k < 2; k++) {
        TransformerConfig c = tiny_config(TRANSFORMER_GPT, kinds[k]);
        c.context = 12;
        Transformer m;
        build_random(&m, &c, 6 + (uint64_t)k);
        int ids[12];
        random_ids(ids, 12, c.vocab, 8);
        Graph g;
        graph_init(&g, 1 << 20, 256);
        TransformerCache cache;
        transformer_cache_init(&cache, &c);
        float cached[7], full[7];
        double worst = 0;
        for (int t = 0; t < 12; t++) {
            transformer_cache_step(&g, &m, &cache, ids[t], cached);
            transformer_last_logits(&g, &m, ids, t + 1, full);
            for (int v = 0; v < c.vocab; v++)
                worst = fmax(worst, fabs(cached[v] - full[v]) / (1 + fabs(full[v])));
        }
        ck_assert_msg(worst <= 1e-5, "%s positions: cached and full logits differ by %g",
                      transformer_positions_name(kinds[k]), worst);
        /* Greedy generation gives the same text either way. */
        int with[40], without[40];
        TransformerSampling greedy = {.temperature = 0};
        int n1 = transformer_generate(&g, &m, ids, 3, 30, -1, &greedy, NULL, true, with);
        int n2 = transformer_generate(&g, &m, ids, 3, 30, -1, &greedy, NULL, false, without);
        ck_assert_int_eq(n1, 33);
        ck_assert_int_eq(n2, 33);
        ck_assert_mem_eq(with, without, 33 * sizeof(int));
        transformer_cache_free(&cache);
        graph_free(&g);
        transformer_free(&m);
    }
}
END_TEST

START_TEST(test_sampling_rules) {
    float logits[5] = {2.0f, 1.0f, 0.5f, -1.0f, 3.0f};
    float scratch[10];
    Rng rng;
    rng_seed(&rng, 1, 1);
    TransformerSampling greedy = {.temperature = 0};
    ck_assert_int_eq(transformer_sample(logits, 5, &greedy, &rng, scratch), 4);
    TransformerSampling top1 = {.temperature = 1, .top_k = 1};
    TransformerSampling top2 = {.temperature = 1, .top_k = 2};
    TransformerSampling nucleus = {.temperature = 1, .top_p = 0.5f}; /* p(4) ~ 0.63 */
    int counts[5] = {0};
    for (int i = 0; i < 2000; i++) {
        ck_assert_int_eq(transformer_sample(logits, 5, &top1, &rng, scratch), 4);
        ck_assert_int_eq(transformer_sample(logits, 5, &nucleus, &rng, scratch), 4);
        int id = transformer_sample(logits, 5, &top2, &rng, scratch);
        ck_assert(id == 4 || id == 0);
        counts[id]++;
    }
    /* among the top two, p(0) = e^2 / (e^2 + e^3) = 0.269 */
    ck_assert_msg(counts[0] > 440 && counts[0] < 640, "token 0 drawn %d times of 2000", counts[0]);
}
END_TEST

/* ---- Data ---------------------------------------------------------------------------------------- */

START_TEST(test_tasks_make_their_answers) {
    const TransformerTask tasks[4] = {TRANSFORMER_TASK_COPY, TRANSFORMER_TASK_REVERSE,
                                      TRANSFORMER_TASK_SORT, TRANSFORMER_TASK_ADD};
    for (int k = 0; k < 4; k++) {
        TransformerDataOptions o = {.task = tasks[k], .max_length = 4, .examples = 200, .seed = 3};
        TransformerData d;
        Error err;
        ck_assert_msg(transformer_data_load(&d, &o, false, &err), "%s", err.message);
        for (int n = 0; n < d.count; n++) {
            char text[64];
            transformer_decode(&d.vocab, false, d.tokens + (size_t)n * d.width, d.lengths[n], text, sizeof text);
            char *sep = strpbrk(text, ">=");
            ck_assert_ptr_nonnull(sep);
            ck_assert_int_eq((int)(sep - text) + 1, d.answer_start[n]);
            ck_assert(text[strlen(text) - 1] == '.');
            if (tasks[k] == TRANSFORMER_TASK_ADD) {
                long a, b, sum;
                ck_assert_int_eq(sscanf(text, "%ld+%ld=%ld.", &a, &b, &sum), 3);
                ck_assert_int_eq(a + b, sum);
                continue;
            }
            int len = (int)(sep - text);
            for (int i = 0; i < len; i++) {
                char answer = sep[1 + i];
                if (tasks[k] == TRANSFORMER_TASK_COPY) ck_assert(answer == text[i]);
                if (tasks[k] == TRANSFORMER_TASK_REVERSE) ck_assert(answer == text[len - 1 - i]);
                if (tasks[k] == TRANSFORMER_TASK_SORT && i) ck_assert(answer >= sep[i]);
            }
        }
        /* the batch scores only the answer: targets before the separator are -1 */
        TransformerBatch batch;
        transformer_batch_alloc(&batch, 4, transformer_data_time(&d, 64));
        Rng rng;
        rng_seed(&rng, 1, 1);
        transformer_batch_sample(&d, false, &rng, &batch);
        for (int b = 0; b < 4; b++) {
            int scored = 0;
            for (int t = 0; t < batch.time; t++) scored += batch.targets[b * batch.time + t] >= 0;
            ck_assert_int_gt(scored, 1);
            ck_assert_int_eq(batch.targets[b * batch.time], -1);
        }
        transformer_batch_free(&batch);
        transformer_data_free(&d);
    }
}
END_TEST

START_TEST(test_toy_language_is_word_level) {
    TransformerDataOptions o = {.task = TRANSFORMER_TASK_TOY, .examples = 50, .seed = 1};
    TransformerData d;
    Error err;
    ck_assert(transformer_data_load(&d, &o, true, &err));
    ck_assert(d.word_level);
    ck_assert_int_ge(d.mask_id, 0);
    ck_assert_str_eq(transformer_toy_category("cow"), "animal");
    ck_assert_str_eq(transformer_toy_category("hay"), "plant");
    int ids[8];
    ck_assert_int_eq(transformer_encode(&d, "the cow <mask> the hay", ids, 8, &err), 5);
    ck_assert_int_eq(ids[2], d.mask_id);
    ck_assert_int_eq(transformer_encode(&d, "the robot eats", ids, 8, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "robot"));
    transformer_data_free(&d);
}
END_TEST

/* ---- Checkpoints -------------------------------------------------------------------------------- */

START_TEST(test_checkpoint_round_trip) {
    TransformerDataOptions o = {.task = TRANSFORMER_TASK_REVERSE, .max_length = 3, .examples = 50, .seed = 1};
    TransformerData d;
    Error err;
    ck_assert(transformer_data_load(&d, &o, false, &err));
    TransformerConfig c = tiny_config(TRANSFORMER_GPT, TRANSFORMER_POS_SINUSOIDAL);
    c.vocab = d.vocab.size;
    c.context = 8;
    c.tied_head = true;
    Transformer m, loaded;
    build_random(&m, &c, 9);
    Metadata meta;
    metadata_init(&meta);
    transformer_metadata_write(&meta, &m, &d, &o, 17);
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", test_temp_dir("transformer-ckpt"));
    ck_assert_msg(checkpoint_save(path, &m.params, NULL, &meta, &err), "%s", err.message);
    metadata_free(&meta);
    ck_assert_msg(transformer_load(path, &loaded, &meta, &err), "%s", err.message);
    ck_assert_int_eq(loaded.config.vocab, c.vocab);
    ck_assert(loaded.config.tied_head && loaded.config.positions == TRANSFORMER_POS_SINUSOIDAL);
    ck_assert_mem_eq(loaded.params.values, m.params.values, m.params.total * sizeof(float));
    int ids[8];
    random_ids(ids, 8, c.vocab, 1);
    float a[8 * 16], b[8 * 16];
    logits_of(&m, ids, NULL, 1, 8, a);
    logits_of(&loaded, ids, NULL, 1, 8, b);
    ck_assert_mem_eq(a, b, (size_t)8 * c.vocab * sizeof(float));
    Vocab vocab;
    bool word_level;
    ck_assert(transformer_vocab_from_metadata(&meta, &vocab, &word_level, &err));
    ck_assert_int_eq(vocab.size, d.vocab.size);
    ck_assert(!word_level);
    vocab_free(&vocab);
    metadata_free(&meta);
    transformer_free(&loaded);
    transformer_free(&m);
    transformer_data_free(&d);
}
END_TEST

/* ---- The program ------------------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *bytes = malloc(*size + 1);
    ck_assert_int_eq(fread(bytes, 1, *size, f), *size);
    fclose(f);
    return bytes;
}

static void assert_same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = read_file(a, &na), *y = read_file(b, &nb);
    ck_assert_msg(na == nb && memcmp(x, y, na) == 0, "%s and %s differ", a, b);
    free(x), free(y);
}

/* N steps in one run == k steps, --resume, N - k steps: the same bytes.
 * k = 7 falls between two metrics rows, so the partial training-loss sum
 * must survive in the checkpoint too. */
START_TEST(test_resume_is_bit_identical) {
    const char *dir = test_temp_dir("transformer-resume");
    char command[2048], output[8192], a[700], b[700];
    const char *flags = "--task reverse --task-length 4 --examples 200 --layers 1 --d-model 16 "
                        "--heads 2 --context 16 --batch 8 --steps 12 --eval-every 5 --dropout 0.1 "
                        "--plot-term none --quiet";
    snprintf(command, sizeof command, "%s/transformer train %s --out %s/once --threads 1",
             test_bin_dir(), flags, dir);
    ck_assert_msg(test_run_command(command, output, sizeof output) == 0, "%s", output);
    ck_assert_ptr_nonnull(strstr(output, "final: step=12 "));
    snprintf(command, sizeof command, "%s/transformer train %s --out %s/twice --stop-after 7 --threads 2",
             test_bin_dir(), flags, dir);
    ck_assert_msg(test_run_command(command, output, sizeof output) == 0, "%s", output);
    ck_assert_ptr_nonnull(strstr(output, "stopped: step=7"));
    snprintf(command, sizeof command, "%s/transformer train %s --out %s/twice --resume --threads 2",
             test_bin_dir(), flags, dir);
    ck_assert_msg(test_run_command(command, output, sizeof output) == 0, "%s", output);
    snprintf(a, sizeof a, "%s/once/model.safetensors", dir);
    snprintf(b, sizeof b, "%s/twice/model.safetensors", dir);
    assert_same_file(a, b);
    snprintf(a, sizeof a, "%s/once/metrics.csv", dir);
    snprintf(b, sizeof b, "%s/twice/metrics.csv", dir);
    assert_same_file(a, b);
    /* eval and generate read the checkpoint back */
    snprintf(command, sizeof command, "%s/transformer eval --checkpoint %s/once/model.safetensors",
             test_bin_dir(), dir);
    ck_assert_msg(test_run_command(command, output, sizeof output) == 0, "%s", output);
    ck_assert_ptr_nonnull(strstr(output, "val_exact_match="));
    snprintf(command, sizeof command,
             "%s/transformer generate --checkpoint %s/once/model.safetensors --prompt abc\\> --greedy --quiet",
             test_bin_dir(), dir);
    ck_assert_msg(test_run_command(command, output, sizeof output) == 0, "%s", output);
    ck_assert_msg(strncmp(output, "abc>", 4) == 0, "%s", output);
}
END_TEST

static void write_bytes(const char *path, const char *bytes, size_t size) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(bytes, 1, size, f);
    fclose(f);
}

/* Each case: the command fails with the expected status, one line that
 * holds `words`, and leaves no checkpoint behind. */
static void expect_failure(const char *dir, const char *arguments, int status, const char *words) {
    char command[4096], output[8192], path[700];
    snprintf(command, sizeof command, "%s/transformer %s", test_bin_dir(), arguments);
    int got = test_run_command(command, output, sizeof output);
    ck_assert_msg(got == status, "`%s`: exit %d, expected %d; output: %s", arguments, got, status, output);
    ck_assert_msg(strstr(output, words) != NULL, "`%s`: \"%s\" lacks \"%s\"", arguments, output, words);
    ck_assert_msg(strchr(output, '\n') == strrchr(output, '\n'), "`%s`: more than one line: %s",
                  arguments, output);
    snprintf(path, sizeof path, "%s/bad/model.safetensors", dir);
    ck_assert_msg(access(path, F_OK) != 0, "`%s` left a checkpoint behind", arguments);
    snprintf(path, sizeof path, "%s/bad/config.txt", dir);
    ck_assert_msg(access(path, F_OK) != 0, "`%s` left config.txt behind", arguments);
}

START_TEST(test_bad_input_is_rejected) {
    const char *dir = test_temp_dir("transformer-bad");
    char path[700], args[3000], model[700];
    snprintf(path, sizeof path, "%s/empty.txt", dir);
    write_bytes(path, "", 0);
    snprintf(args, sizeof args, "train --data %s --out %s/bad", path, dir);
    expect_failure(dir, args, 1, "empty");
    snprintf(path, sizeof path, "%s/binary.bin", dir);
    write_bytes(path, "\x7f" "ELF\x02\x01\x00\x00" "abc", 11);
    snprintf(args, sizeof args, "train --data %s --out %s/bad", path, dir);
    expect_failure(dir, args, 1, "binary");
    snprintf(args, sizeof args, "train --data %s/missing.txt --out %s/bad", dir, dir);
    expect_failure(dir, args, 1, "missing.txt");
    snprintf(path, sizeof path, "%s/short.txt", dir);
    write_bytes(path, "hello", 5);
    snprintf(args, sizeof args, "train --data %s --out %s/bad", path, dir);
    expect_failure(dir, args, 1, "too few");
    /* nonsense flags */
    snprintf(args, sizeof args, "train --layers many --out %s/bad", dir);
    expect_failure(dir, args, 2, "--layers");
    snprintf(args, sizeof args, "train --heads 3 --d-model 64 --out %s/bad", dir);
    expect_failure(dir, args, 2, "--heads");
    snprintf(args, sizeof args, "train --pos diagonal --out %s/bad", dir);
    expect_failure(dir, args, 2, "--pos");
    snprintf(args, sizeof args, "train --task juggle --out %s/bad", dir);
    expect_failure(dir, args, 2, "juggle");
    snprintf(args, sizeof args, "train --context 5 --out %s/bad", dir);
    expect_failure(dir, args, 2, "--context");
    snprintf(args, sizeof args, "train --mode bert --task reverse --out %s/bad", dir);
    expect_failure(dir, args, 1, "bert");
    snprintf(args, sizeof args, "fly");
    expect_failure(dir, args, 2, "unknown command");
    /* --task pairs: GPT only, --data required, --val-data only with it */
    snprintf(args, sizeof args, "train --val-data %s/short.txt --out %s/bad", dir, dir);
    expect_failure(dir, args, 2, "--val-data");
    snprintf(args, sizeof args, "train --task reverse --val-data %s/short.txt --out %s/bad", dir, dir);
    expect_failure(dir, args, 2, "--task pairs");
    snprintf(args, sizeof args, "train --task pairs --data %s/short.txt --mode bert --out %s/bad", dir, dir);
    expect_failure(dir, args, 2, "--mode gpt");
    snprintf(args, sizeof args, "train --task pairs --out %s/bad", dir);
    expect_failure(dir, args, 2, "--data");
    snprintf(args, sizeof args, "train --task pairs --data %s --out %s/bad", path, dir);
    expect_failure(dir, args, 1, "source<TAB>target");
    /* a model to generate from, then bad prompts */
    snprintf(args, sizeof args,
             "%s/transformer train --task reverse --task-length 3 --examples 100 --layers 1 "
             "--d-model 8 --heads 2 --context 8 --batch 4 --steps 2 --plot-term none --quiet --out %s/model",
             test_bin_dir(), dir);
    char output[8192];
    ck_assert_msg(test_run_command(args, output, sizeof output) == 0, "%s", output);
    snprintf(model, sizeof model, "%s/model/model.safetensors", dir);
    snprintf(args, sizeof args, "generate --checkpoint %s --prompt 'xyz>'", model);
    expect_failure(dir, args, 2, "not in the vocabulary");
    snprintf(args, sizeof args, "generate --checkpoint %s --prompt abcabcabcabc", model);
    expect_failure(dir, args, 2, "context");
    snprintf(args, sizeof args, "generate --checkpoint %s --temperature -1", model);
    expect_failure(dir, args, 2, "--temperature");
    /* plot reads --prompt but no sampling option: refused, not ignored */
    snprintf(args, sizeof args, "plot --checkpoint %s --top-k 5", model);
    expect_failure(dir, args, 2, "--top-k");
    /* a checkpoint of another architecture */
    ParamSet ps;
    params_init(&ps);
    params_add_of(&ps, "w", true, 1, 3);
    params_allocate(&ps);
    Metadata meta;
    metadata_init(&meta);
    metadata_set(&meta, "architecture", "spiral-mlp");
    snprintf(path, sizeof path, "%s/other.safetensors", dir);
    Error err;
    ck_assert(checkpoint_save(path, &ps, NULL, &meta, &err));
    metadata_free(&meta);
    params_free(&ps);
    snprintf(args, sizeof args, "generate --checkpoint %s", path);
    expect_failure(dir, args, 1, "architecture");
    snprintf(args, sizeof args, "eval --checkpoint %s/nothing.safetensors", dir);
    expect_failure(dir, args, 1, "nothing.safetensors");
}
END_TEST

/* ---- --task pairs ------------------------------------------------------------------------------ */

/* Eight pairs whose text holds the characters the built-in tasks use as
 * separator and end (">" and "."), the pad "_", and a two-byte "é". */
static const char PAIRS_TSV[] = "cat\tchat\n"
                                "dog>.\tchien_\n"
                                "bird\toiseau\n"
                                "fish\tpoisson\n"
                                "horse\tcheval\n"
                                "cow\tvache\n"
                                "pig\tcochon\n"
                                "sheep\tmouton é\n";
static const char *const PAIRS_TARGETS[8] = {"chat",  "chien_", "oiseau", "poisson",
                                             "cheval", "vache",  "cochon", "mouton é"};

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* The vocabulary is pad, sep, end, unk, then the training characters
 * sorted; each row is "source<sep>target<end>", padded; a batch scores the
 * target and <end> only; --val-data validates on its own lines, where an
 * unseen character is <unk>; --val-fraction holds out a share of --data. */
START_TEST(test_pairs_task_reads_a_tsv) {
    const char *dir = test_temp_dir("transformer-pairs-load");
    char train_path[700], val_path[700];
    snprintf(train_path, sizeof train_path, "%s/train.tsv", dir);
    snprintf(val_path, sizeof val_path, "%s/val.tsv", dir);
    write_text(train_path, PAIRS_TSV);
    write_text(val_path, "cat\tchat\nZebra\tzèbre\n");
    TransformerDataOptions o = {.task = TRANSFORMER_TASK_PAIRS, .data_path = train_path,
                                .val_data_path = val_path, .context = 64, .examples = 100,
                                .seed = 1};
    TransformerData d;
    Error err;
    ck_assert_msg(transformer_data_load(&d, &o, false, &err), "%s", err.message);
    ck_assert_int_eq(d.kind, TRANSFORMER_EXAMPLES);
    ck_assert_int_eq(d.train_count, 8);
    ck_assert_int_eq(d.validation_count, 2);
    const char *specials[4] = {"<pad>", "<sep>", "<end>", "<unk>"};
    for (int i = 0; i < 4; i++) ck_assert_str_eq(d.vocab.tokens[i], specials[i]);
    ck_assert_int_eq(d.pad_id, 0);
    ck_assert_int_eq(d.end_id, 2);
    ck_assert_int_eq(vocab_find(&d.vocab, "<unk>"), 3);
    /* the characters of the training text, each once, in byte order */
    const char *characters = " .>_abcdefghilmnoprstuvwé"; /* by hand from PAIRS_TSV */
    Vocab expected;
    vocab_init(&expected);
    ck_assert(vocab_add_chars(&expected, characters, strlen(characters), &err));
    ck_assert_int_eq(d.vocab.size, 4 + expected.size);
    for (int i = 0; i < expected.size; i++) ck_assert_str_eq(d.vocab.tokens[4 + i], expected.tokens[i]);
    vocab_free(&expected);
    /* rows: the training lines in file order, then the validation lines */
    char text[256], want[256];
    for (int n = 0; n < 8; n++) {
        const char *line = strstr(PAIRS_TSV, PAIRS_TARGETS[n]) - 1; /* the TAB before it */
        const char *start = line;
        while (start > PAIRS_TSV && start[-1] != '\n') start--;
        snprintf(want, sizeof want, "%.*s<sep>%s<end>", (int)(line - start), start, PAIRS_TARGETS[n]);
        ck_assert_int_eq(d.train[n], n);
        transformer_decode(&d.vocab, false, d.tokens + (size_t)n * d.width, d.lengths[n], text, sizeof text);
        ck_assert_str_eq(text, want);
        ck_assert_int_eq(d.tokens[(size_t)n * d.width + d.answer_start[n] - 1], 1); /* <sep> */
        for (int t = d.lengths[n]; t < d.width; t++) ck_assert_int_eq(d.tokens[(size_t)n * d.width + t], 0);
    }
    int zebra = d.validation[1];
    transformer_decode(&d.vocab, false, d.tokens + (size_t)zebra * d.width, d.lengths[zebra], text, sizeof text);
    ck_assert_str_eq(text, "<unk>ebra<sep><unk><unk>bre<end>"); /* no Z, z or è in training */
    /* a validation batch: targets are the answer and <end>, nothing else */
    TransformerBatch batch;
    transformer_batch_alloc(&batch, 4, transformer_data_time(&d, 64));
    ck_assert_int_eq(transformer_batch_validation(&d, false, 0, 4, NULL, &batch), 2);
    for (int b = 0; b < 2; b++) {
        int n = d.validation[b];
        const int *row = d.tokens + (size_t)n * d.width;
        for (int t = 0; t < batch.time; t++) {
            bool answer = t + 1 >= d.answer_start[n] && t + 1 < d.lengths[n];
            ck_assert_int_eq(batch.targets[b * batch.time + t], answer ? row[t + 1] : -1);
        }
    }
    transformer_batch_free(&batch);
    transformer_data_free(&d);
    /* --val-fraction 0.25 of 8 lines: 2 held out, each line in one part */
    o.val_data_path = NULL;
    o.val_fraction = 0.25f;
    ck_assert_msg(transformer_data_load(&d, &o, false, &err), "%s", err.message);
    ck_assert_int_eq(d.train_count, 6);
    ck_assert_int_eq(d.validation_count, 2);
    ck_assert_int_eq(d.count, 8);
    transformer_data_free(&d);
    /* --context 10: "horse<sep>cheval<end>" (13), "fish<sep>poisson<end>" (13),
     * "dog>.<sep>chien_<end>" (13), "sheep<sep>mouton é<end>" (15), "bird<sep>oiseau<end>" (12)
     * and "pig<sep>cochon<end>" (11) do not fit; they are skipped */
    o.val_data_path = val_path;
    o.context = 10;
    ck_assert_msg(transformer_data_load(&d, &o, false, &err), "%s", err.message);
    ck_assert_int_eq(d.train_count, 2); /* cat, cow */
    ck_assert_int_eq(d.validation_count, 1); /* cat; "Zebra<sep>zèbre<end>" is 12 */
    ck_assert_int_le(d.width, 10);
    transformer_data_free(&d);
    o.context = 8; /* none fits: an error naming the file and the option */
    ck_assert(!transformer_data_load(&d, &o, false, &err));
    ck_assert_ptr_nonnull(strstr(err.message, train_path));
    ck_assert_ptr_nonnull(strstr(err.message, "--context 8"));
}
END_TEST

/* Trains on the eight pairs until it knows them; then generate --input
 * prints exactly the targets, one line per input line, from the TSV file
 * itself (the TAB cuts the target off) and from a file of sources; eval
 * agrees; the same seed gives the same checkpoint. */
START_TEST(test_pairs_overfit_then_generate_input) {
    const char *dir = test_temp_dir("transformer-pairs-run");
    char data[700], sources[700], args[4096], path_a[800], path_b[800];
    snprintf(data, sizeof data, "%s/pairs.tsv", dir);
    snprintf(sources, sizeof sources, "%s/sources.txt", dir);
    write_text(data, PAIRS_TSV);
    write_text(sources, "cat\ndog>.\nbird\nfish\nhorse\ncow\npig\nsheep\n");
    const char *flags = "--task pairs --context 16 --layers 2 --d-model 32 --heads 4 --batch 8 "
                        "--steps 300 --lr 3e-3 --eval-every 100 --plot-term none --quiet --threads 1";
    ProgramResult r;
    snprintf(args, sizeof args, "train %s --data %s --val-data %s --out %s/a", flags, data, data, dir);
    program_run(dir, "transformer", args, &r);
    ck_assert_msg(r.status == 0, "train: %s", r.err);
    ck_assert_msg(strstr(r.out, "final: step=300 ") && strstr(r.out, "val_exact_match=1.0000"),
                  "%s", r.out);
    char expected[256] = "";
    for (int i = 0; i < 8; i++) {
        strcat(expected, PAIRS_TARGETS[i]);
        strcat(expected, "\n");
    }
    const char *inputs[2] = {data, sources};
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "generate --checkpoint %s/a/model.safetensors --input %s --quiet",
                 dir, inputs[k]);
        program_run(dir, "transformer", args, &r);
        ck_assert_msg(r.status == 0, "generate: %s", r.err);
        ck_assert_str_eq(r.out, expected);
        ck_assert_str_eq(r.err, "");
    }
    snprintf(args, sizeof args, "eval --checkpoint %s/a/model.safetensors", dir);
    program_run(dir, "transformer", args, &r);
    ck_assert_msg(r.status == 0 && strstr(r.out, "val_exact_match=1.0000"), "%s%s", r.out, r.err);
    /* plot without --out draws beside the checkpoint, not in runs/transformer-pairs */
    snprintf(path_a, sizeof path_a, "%s/a/attention_l0_h0.dat", dir);
    ck_assert_int_eq(unlink(path_a), 0);
    snprintf(args, sizeof args, "plot --checkpoint %s/a/model.safetensors --plot-term none --quiet", dir);
    program_run(dir, "transformer", args, &r);
    ck_assert_msg(r.status == 0, "plot: %s", r.err);
    ck_assert_msg(access(path_a, R_OK) == 0, "plot did not write %s", path_a);
    /* the same flags and seed: the same bytes */
    snprintf(args, sizeof args, "train %s --data %s --val-data %s --out %s/b", flags, data, data, dir);
    program_run(dir, "transformer", args, &r);
    ck_assert_msg(r.status == 0, "train: %s", r.err);
    snprintf(path_a, sizeof path_a, "%s/a/model.safetensors", dir);
    snprintf(path_b, sizeof path_b, "%s/b/model.safetensors", dir);
    char why[512];
    ck_assert_msg(checkpoints_identical(path_a, path_b, why, sizeof why), "%s", why);
}
END_TEST

/* A pair longer than --context is skipped with a count on stderr, and the
 * others still train; a prompt longer than the context gets an empty line
 * and a warning, so output line n still answers input line n; --input
 * needs an example task; --val-fraction holds out a share. */
START_TEST(test_pairs_limits) {
    const char *dir = test_temp_dir("transformer-pairs-limits");
    char data[700], prompts[700], args[4096];
    snprintf(data, sizeof data, "%s/pairs.tsv", dir);
    snprintf(prompts, sizeof prompts, "%s/prompts.txt", dir);
    write_text(data, PAIRS_TSV);
    write_text(prompts, "cat\nabcdefghijklmnopqrstuvwxyz\ncow\n");
    ProgramResult r;
    snprintf(args, sizeof args, "train --task pairs --data %s --val-fraction 0.25 --context 12 "
             "--layers 1 --d-model 8 --heads 2 --batch 4 --steps 3 --plot-term none --quiet "
             "--out %s/run", data, dir);
    program_run(dir, "transformer", args, &r);
    ck_assert_msg(r.status == 0, "train: %s", r.err);
    /* 15 tokens for "sheep<sep>mouton é<end>", 13 for dog, fish and horse */
    ck_assert_msg(strstr(r.err, "skipped ") && strstr(r.err, "longer than --context 12"), "%s", r.err);
    ck_assert_msg(strstr(r.out, "val_exact_match="), "%s", r.out);
    snprintf(args, sizeof args, "generate --checkpoint %s/run/model.safetensors --input %s --quiet",
             dir, prompts);
    program_run(dir, "transformer", args, &r);
    ck_assert_msg(r.status == 0, "generate: %s", r.err);
    int lines = 0;
    for (const char *p = r.out; *p; p++) lines += *p == '\n';
    ck_assert_msg(lines == 3, "%d lines: %s", lines, r.out);
    ck_assert_msg(strstr(r.out, "\n\n") != NULL, "the long prompt's line is not empty: %s", r.out);
    ck_assert_msg(strstr(r.err, "line 2") && strstr(r.err, "--context 12"), "%s", r.err);
    /* a stream task has no answers to give */
    snprintf(args, sizeof args, "train --task toy --context 8 --layers 1 --d-model 8 --heads 2 "
             "--batch 2 --steps 1 --examples 100 --plot-term none --quiet --out %s/toy", dir);
    program_run(dir, "transformer", args, &r);
    ck_assert_msg(r.status == 0, "train: %s", r.err);
    snprintf(args, sizeof args, "generate --checkpoint %s/toy/model.safetensors --input %s", dir, prompts);
    program_run(dir, "transformer", args, &r);
    ck_assert_int_eq(r.status, 2);
    ck_assert_msg(strstr(r.err, "--input") && strstr(r.err, "toy"), "%s", r.err);
}
END_TEST

Suite *transformer_suite(void) {
    Suite *s = suite_create("transformer");
    TCase *model = tcase_create("model");
    tcase_set_timeout(model, 60);
    tcase_add_test(model, test_gradient_gpt);
    tcase_add_test(model, test_gradient_bert_masked_tokens);
    tcase_add_test(model, test_gradient_bert_classifier);
    tcase_add_test(model, test_causal_mask_hides_the_future);
    tcase_add_test(model, test_no_positions_is_permutation_equivariant);
    tcase_add_test(model, test_overfits_a_tiny_batch);
    tcase_add_test(model, test_kv_cache_matches_full_forward);
    tcase_add_test(model, test_sampling_rules);
    tcase_add_test(model, test_tasks_make_their_answers);
    tcase_add_test(model, test_toy_language_is_word_level);
    tcase_add_test(model, test_checkpoint_round_trip);
    tcase_add_test(model, test_pairs_task_reads_a_tsv);
    suite_add_tcase(s, model);
    TCase *program = tcase_create("program");
    tcase_set_timeout(program, 120);
    tcase_add_test(program, test_resume_is_bit_identical);
    tcase_add_test(program, test_bad_input_is_rejected);
    tcase_add_test(program, test_pairs_overfit_then_generate_input);
    tcase_add_test(program, test_pairs_limits);
    suite_add_tcase(s, program);
    return s;
}
