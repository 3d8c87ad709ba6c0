/* transformer/plots.c: what a student looks at after training, and the
 * report printed at the end of `train`.
 *
 * Legend: T time, C d_model, H heads, L layers, V vocabulary, R metrics rows.
 *
 *   loss.png          training (per logged interval) and validation loss
 *   lr.png            the learning-rate schedule: warmup, then cosine
 *   attention_l<l>_h<h>.png   softmax weights of every layer and head on a
 *                     prompt: row i = the query position, column j = the key
 *   positions_sinusoidal.png  the sin/cos table; positions_learned.png when
 *                     the model learned its own
 *   embeddings_pca.png  the token embeddings projected on their first two
 *                     principal components, labelled and coloured by category
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pca.h"
#include "plot.h"
#include "transformer.h"

/* ==== Loss and learning-rate curves from metrics.csv ================================ */

typedef struct {
    float *step, *train, *val_step, *val, *lr; /* (R) each */
    int rows, val_rows;
} Curves;

static bool curves_read(const char *dir, Curves *c, Error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    char *text;
    size_t size;
    if (!file_read_all(path, DATA_MAX_FILE_BYTES, &text, &size, err)) return false;
    int lines = 0;
    for (size_t i = 0; i < size; i++) lines += text[i] == '\n';
    memset(c, 0, sizeof *c);
    c->step = xmalloc((size_t)(lines + 1) * 5 * sizeof(float));
    c->train = c->step + lines + 1, c->val_step = c->train + lines + 1;
    c->val = c->val_step + lines + 1, c->lr = c->val + lines + 1;
    char *line = strchr(text, '\n'); /* skip the header */
    while (line && line + 1 < text + size) {
        line++;
        double v[5];
        char *p = line;
        int got = 0;
        for (; got < 5; got++) {
            char *end;
            v[got] = strtod(p, &end);
            if (end == p) break;
            p = *end == ',' ? end + 1 : end;
        }
        if (got == 5) {
            c->step[c->rows] = (float)v[0], c->train[c->rows] = (float)v[1];
            c->lr[c->rows++] = (float)v[4];
            if (!isnan(v[2])) c->val_step[c->val_rows] = (float)v[0], c->val[c->val_rows++] = (float)v[2];
        }
        line = strchr(line, '\n');
    }
    free(text);
    return true;
}

bool transformer_plot_curves(const char *dir, int term, const char *title, Error *err) {
    Curves c;
    if (!curves_read(dir, &c, err)) return false;
    if (c.rows == 0) {
        free(c.step);
        return error_set(err, "%s/metrics.csv has no rows to plot", dir);
    }
    PlotTarget target = {.dir = dir, .term = (PlotTerm)term};
    PlotSeries loss[2] = {
        {.name = "train (mean per row of metrics.csv)", .x = c.step, .y = c.train, .count = c.rows},
        {.name = "validation", .x = c.val_step, .y = c.val, .count = c.val_rows},
    };
    char full_title[256];
    snprintf(full_title, sizeof full_title, "%s: cross-entropy loss", title);
    PlotAxes axes = {.title = full_title, .x_label = "step", .y_label = "loss (nats)", .log_y = true};
    bool ok = plot_lines(&target, "loss", &axes, loss, c.val_rows > 0 ? 2 : 1, err);
    PlotSeries lr = {.name = "learning rate", .x = c.step, .y = c.lr, .count = c.rows};
    PlotAxes lr_axes = {.title = "Learning rate: linear warmup, then cosine decay",
                        .x_label = "step", .y_label = "learning rate"};
    ok = ok && plot_lines(&target, "lr", &lr_axes, &lr, 1, err);
    free(c.step);
    return ok;
}

/* ==== Attention maps =================================================================== */

/* A token as a short label: the plot library makes whitespace visible. */
static const char *token_label(const Vocab *vocab, int id) { return vocab->tokens[id]; }

bool transformer_plot_attention(Graph *g, const Transformer *m, const TransformerData *d,
                                const int *ids, int count, const char *dir, int term, Error *err) {
    const TransformerConfig *c = &m->config;
    float *maps[TRANSFORMER_MAX_LAYERS]; /* (L) each (1, H, T, T) */
    graph_reset(g);
    bool saved_no_grad = g->no_grad, saved_training = g->training;
    g->no_grad = true, g->training = false;
    TransformerInput in = {.ids = ids, .batch = 1, .time = count, .attention = maps};
    transformer_forward(g, m, &in);
    g->no_grad = saved_no_grad, g->training = saved_training;
    const char **labels = xmalloc((size_t)count * sizeof(char *));
    for (int t = 0; t < count; t++) labels[t] = token_label(&d->vocab, ids[t]);
    PlotTarget target = {.dir = dir, .term = (PlotTerm)term};
    bool ok = true;
    for (int l = 0; l < c->layers && ok; l++)
        for (int h = 0; h < c->heads && ok; h++) {
            char stem[64], title[128];
            snprintf(stem, sizeof stem, "attention_l%d_h%d", l, h);
            snprintf(title, sizeof title, "Attention, layer %d head %d (%s)", l, h,
                     c->mode == TRANSFORMER_GPT ? "causal: no weight above the diagonal"
                                                : "bidirectional");
            HeatmapData data = {.rows = count, .cols = count,
                                .values = maps[l] + (size_t)h * count * count,
                                .row_labels = labels, .col_labels = labels};
            PlotAxes axes = {.title = title, .x_label = "key (attended to)",
                             .y_label = "query (attending)"};
            ok = plot_heatmap(&target, stem, &axes, &data, err);
        }
    free(labels);
    return ok;
}

/* ==== Positional encodings ============================================================== */

bool transformer_plot_positions(const Transformer *m, const char *dir, int term, Error *err) {
    const TransformerConfig *c = &m->config;
    int T = c->context, C = c->d_model - c->d_model % 2;
    float *table = xmalloc((size_t)T * C * sizeof(float)); /* (T, C) */
    transformer_sinusoidal_table(table, T, C);
    PlotTarget target = {.dir = dir, .term = (PlotTerm)term};
    HeatmapData data = {.rows = T, .cols = C, .values = table};
    PlotAxes axes = {.title = "Sinusoidal positional encoding: PE[t, 2i] = sin(t / 10000^(2i/C)), "
                              "PE[t, 2i+1] = cos(...)",
                     .x_label = "channel (low channels: fast waves; high: slow)",
                     .y_label = "position t"};
    bool ok = plot_heatmap(&target, "positions_sinusoidal", &axes, &data, err);
    free(table);
    if (ok && c->positions == TRANSFORMER_POS_LEARNED) {
        HeatmapData learned = {.rows = T, .cols = c->d_model, .values = m->position_embedding->data};
        PlotAxes learned_axes = {.title = "Learned position embedding (what training made of it)",
                                 .x_label = "channel", .y_label = "position t"};
        ok = plot_heatmap(&target, "positions_learned", &learned_axes, &learned, err);
    }
    return ok;
}

/* ==== Embedding PCA ========================================================================= */

bool transformer_plot_embeddings(const Transformer *m, const TransformerData *d, const char *dir,
                                 int term, Error *err) {
    int V = m->config.vocab, C = m->config.d_model;
    Pca pca;
    Rng rng;
    rng_seed(&rng, 7, 7);
    pca_fit(&pca, m->token_embedding.table->data, V, C, 2, &rng);
    float *codes = xmalloc((size_t)V * 2 * sizeof(float)); /* (V, 2) */
    pca_project(&pca, m->token_embedding.table->data, V, codes);
    float *x = xmalloc((size_t)V * sizeof(float)), *y = xmalloc((size_t)V * sizeof(float));
    int *classes = xmalloc((size_t)V * sizeof(int));
    const char *names[32];
    int class_count = 0;
    for (int v = 0; v < V; v++) {
        x[v] = codes[2 * v], y[v] = codes[2 * v + 1];
        const char *category = d->word_level ? transformer_toy_category(d->vocab.tokens[v]) : NULL;
        if (category == NULL) category = "other";
        int k = 0;
        while (k < class_count && strcmp(names[k], category) != 0) k++;
        if (k == class_count && class_count < 32) names[class_count++] = category;
        classes[v] = k < 32 ? k : 31;
    }
    char title[160];
    snprintf(title, sizeof title, "Token embeddings, first two principal components (%.0f%% of "
                                  "the variance)",
             100.0 * (pca.variances[0] + pca.variances[1]) / pca.total_variance);
    ScatterData data = {.count = V, .x = x, .y = y, .classes = classes, .class_count = class_count,
                        .class_names = names, .point_labels = (const char *const *)d->vocab.tokens};
    PlotAxes axes = {.title = title, .x_label = "PC 1", .y_label = "PC 2"};
    PlotTarget target = {.dir = dir, .term = (PlotTerm)term};
    bool ok = plot_scatter(&target, "embeddings_pca", &axes, &data, err);
    free(x), free(y), free(classes), free(codes);
    pca_free(&pca);
    return ok;
}

/* ==== The end-of-training report: samples, then every plot ================================== */

/* Words mode: how many of the sampled words are not in the word list. */
static void print_invented(const TransformerData *d, const char *sample) {
    Vocab known; /* used as a set of the list's words */
    vocab_init(&known);
    char word[64];
    int length = 0;
    for (long i = 0; i < d->stream_length; i++) {
        const char *token = d->vocab.tokens[d->stream[i]];
        if (d->stream[i] == d->end_id || length + 2 > (int)sizeof word) {
            word[length] = '\0';
            if (length > 0) vocab_add(&known, word);
            length = 0;
        } else {
            word[length++] = token[0];
        }
    }
    int words = 0, invented = 0;
    for (const char *p = strchr(sample, '\n'); p && p[1];) { /* whole words: after a newline */
        const char *end = strchr(p + 1, '\n');
        if (end == NULL) break;
        snprintf(word, sizeof word, "%.*s", (int)(end - p - 1), p + 1);
        words++;
        invented += vocab_find(&known, word) < 0;
        p = end;
    }
    printf("invented: %d of %d sampled words are not in the list\n", invented, words);
    vocab_free(&known);
}

/* A few answers of the example tasks (greedy), or a sampled continuation. */
static void print_samples(Graph *g, const Transformer *m, const TransformerData *d, uint64_t seed) {
    int T = m->config.context;
    int *out = xmalloc((size_t)(2 * T + 256) * sizeof(int));
    char text[4096], expected[1024];
    TransformerSampling greedy = {.temperature = 0};
    if (d->kind == TRANSFORMER_EXAMPLES) {
        for (int i = 0; i < 4 && i < d->validation_count; i++) {
            int n = d->validation[i];
            const int *row = d->tokens + (size_t)n * d->width;
            int total = transformer_generate(g, m, row, d->answer_start[n], d->width, d->end_id,
                                             &greedy, NULL, true, out);
            transformer_decode(&d->vocab, false, out, total, text, sizeof text);
            transformer_decode(&d->vocab, false, row, d->lengths[n], expected, sizeof expected);
            printf("sample: %-28s expected %-28s %s\n", text, expected,
                   strcmp(text, expected) == 0 ? "right" : "WRONG");
        }
    } else if (d->kind == TRANSFORMER_STREAM) {
        Rng rng;
        rng_seed(&rng, seed, 6);
        TransformerSampling sampling = {.temperature = 0.8f, .top_p = 1.0f};
        int prompt = d->stream[d->train_end]; /* the first validation token */
        int count = d->word_level ? 60 : 160;
        int total = transformer_generate(g, m, &prompt, 1, count, -1, &sampling, &rng, true, out);
        transformer_decode(&d->vocab, d->word_level, out, total, text, sizeof text);
        printf("sample (temperature 0.8):\n%s\n", text);
        if (d->task == TRANSFORMER_TASK_WORDS) print_invented(d, text);
    }
    free(out);
}

/* Sentiment: accuracy on the sentences with a negation, and on the probe,
 * pairs like "the plot is good" / "the plot is not good". */
static void print_negation(Graph *g, const Transformer *m, const TransformerData *d, int B) {
    int *rows = xmalloc((size_t)d->validation_count * sizeof(int)), count = 0;
    for (int i = 0; i < d->validation_count; i++)
        if (d->negated[d->validation[i]]) rows[count++] = d->validation[i];
    TransformerBatch batch;
    transformer_batch_alloc(&batch, B, d->width);
    float negated = transformer_class_accuracy(g, m, d, rows, count, &batch);
    float probe = transformer_class_accuracy(g, m, d, d->probe, d->probe_count, &batch);
    printf("negation: val_negated_accuracy=%.4f (%d sentences) probe_accuracy=%.4f (%d sentences "
           "in pairs that differ by one negation)\n", (double)negated, count, (double)probe,
           d->probe_count);
    transformer_batch_free(&batch);
    free(rows);
}

void transformer_report(Graph *g, const Transformer *m, const TransformerData *d,
                        const TransformerTrainSettings *s) {
    if (m->config.mode == TRANSFORMER_GPT) print_samples(g, m, d, s->data.seed);
    if (d->kind == TRANSFORMER_CLASSIFY) print_negation(g, m, d, s->batch);
    Error err;
    char title[128];
    snprintf(title, sizeof title, "Transformer (%s) on %s", transformer_mode_name(m->config.mode),
             transformer_task_name(d->task));
    bool ok = transformer_plot_curves(s->out, s->plot_term, title, &err) &&
              transformer_plot_positions(m, s->out, s->plot_term, &err) &&
              transformer_plot_embeddings(m, d, s->out, s->plot_term, &err);
    /* attention on one validation sequence, short enough to read */
    int ids[48], count = 0;
    if (ok && d->kind == TRANSFORMER_EXAMPLES) {
        /* the longest of the first validation examples (training ones when
         * pairs have no validation part), cut to what a plot can show */
        const int *rows = d->validation_count > 0 ? d->validation : d->train;
        int rows_count = d->validation_count > 0 ? d->validation_count : d->train_count;
        int n = rows[0];
        for (int i = 1; i < 50 && i < rows_count; i++)
            if (d->lengths[rows[i]] > d->lengths[n]) n = rows[i];
        count = d->lengths[n] - 1 < 48 ? d->lengths[n] - 1 : 48;
        memcpy(ids, d->tokens + (size_t)n * d->width, (size_t)count * sizeof(int));
    } else if (ok && d->kind == TRANSFORMER_STREAM) {
        count = m->config.context < 24 ? m->config.context : 24;
        memcpy(ids, d->stream + d->train_end, (size_t)count * sizeof(int));
    } else if (ok) {
        int n = d->validation[0];
        count = d->lengths[n] < 48 ? d->lengths[n] : 48;
        memcpy(ids, d->tokens + (size_t)n * d->width, (size_t)count * sizeof(int));
    }
    if (ok && count > 0) ok = transformer_plot_attention(g, m, d, ids, count, s->out, s->plot_term, &err);
    if (!ok) error_exit(&err, EXIT_RUNTIME_ERROR);
}
