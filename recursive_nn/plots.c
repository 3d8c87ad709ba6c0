/* recursive_nn/plots.c: what a run draws.
 *
 * Legend: P nodes of a tree, K classes, V vocabulary, d embedding size.
 *
 *   loss.png, accuracy.png   curves read back from metrics.csv, so a resumed
 *                            run plots its whole history (plot_lines)
 *   confusion.png            gold against predicted label, each row as
 *                            fractions of its gold class (plot_heatmap)
 *   embeddings.png           the word vectors on their two principal axes,
 *                            coloured by the word's own label (plot_scatter)
 *   tree_<i>.png             one tree, drawn here: common/plot.h has no tree
 *                            plot, so this file writes the .dat and .gp itself
 *                            with plot.c's conventions (a script that reads
 *                            <stem>.dat, tz_term = png or dumb) and runs
 *                            gnuplot the same way.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pca.h"
#include "plot.h"
#include "recursive_nn.h"
#include "sentiment.h"

static const char *const SENTIMENT_NAMES[SENTIMENT_CLASSES] = {
    "0 very negative", "1 negative", "2 neutral", "3 positive", "4 very positive"};
static const char *const DIGIT_NAMES[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

static const char *const *class_names(int classes) {
    return classes == SENTIMENT_CLASSES ? SENTIMENT_NAMES : DIGIT_NAMES;
}

/* ---- Curves from metrics.csv --------------------------------------------------- */

bool recursive_plot_curves(const char *dir, PlotTerm term, Error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    char *text;
    size_t size;
    if (!file_read_all(path, DATA_MAX_FILE_BYTES, &text, &size, err)) return false;
    int rows = 0;
    for (size_t i = 0; i < size; i++) rows += text[i] == '\n';
    /* columns: step, train_loss, val_loss, val_accuracy, val_root_accuracy,
     * probe_binary (-1 when there is no probe set), lr */
    float *columns = xmalloc((size_t)(rows + 1) * 6 * sizeof(float)); /* (6, rows) */
    float *step = columns, *train = step + rows + 1, *val = train + rows + 1;
    float *accuracy = val + rows + 1, *root = accuracy + rows + 1, *probe = root + rows + 1;
    int n = 0, probes = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        double v[7];
        if (sscanf(line, "%lf,%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]) != 7) continue;
        step[n] = (float)v[0], train[n] = (float)v[1], val[n] = (float)v[2];
        accuracy[n] = (float)v[3], root[n] = (float)v[4], probe[n] = (float)v[5];
        probes += v[5] >= 0;
        n++;
    }
    free(text);
    PlotTarget target = {.dir = dir, .term = term};
    PlotSeries losses[2] = {{.name = "train (mean over each interval)", .x = step, .y = train, .count = n},
                            {.name = "validation", .x = step, .y = val, .count = n}};
    PlotAxes loss_axes = {.title = "Loss per tree (sum over its nodes)", .x_label = "step",
                          .y_label = "cross-entropy", .log_y = true};
    PlotSeries accuracies[3] = {{.name = "validation, all nodes (5 classes)", .x = step, .y = accuracy, .count = n},
                                {.name = "validation, roots (5 classes)", .x = step, .y = root, .count = n},
                                {.name = "negation probe, roots (positive vs negative)", .x = step, .y = probe,
                                 .count = probes == n ? n : 0}};
    /* The key goes above the chart, outside it: accuracies climb to the top
     * within a few hundred steps (the bag of words' all-nodes curve sits near
     * 0.9 from the start), so a key inside, in any corner, can hide a curve.
     * ("below" would be as good but gnuplot 5.4 draws its box over the x
     * label.) */
    PlotAxes accuracy_axes = {.title = "Accuracy", .x_label = "step", .y_label = "accuracy", .legend = "above"};
    bool ok = n > 0 ? plot_lines(&target, "loss", &loss_axes, losses, 2, err) &&
                          plot_lines(&target, "accuracy", &accuracy_axes, accuracies, probes == n ? 3 : 2, err)
                    : error_set(err, "%s: no rows to plot", path);
    free(columns);
    return ok;
}

/* ---- Confusion matrix ---------------------------------------------------------------- */

bool recursive_plot_confusion(const PlotTarget *target, const RecursiveMetrics *m, Error *err) {
    int K = m->classes;
    float values[RECURSIVE_MAX_CLASSES * RECURSIVE_MAX_CLASSES]; /* (K, K) */
    for (int gold = 0; gold < K; gold++) {
        long total = 0;
        for (int k = 0; k < K; k++) total += m->confusion[gold][k];
        for (int k = 0; k < K; k++)
            values[gold * K + k] = total > 0 ? (float)m->confusion[gold][k] / (float)total : 0.0f;
    }
    HeatmapData data = {.rows = K, .cols = K, .values = values, .row_labels = class_names(K),
                        .col_labels = class_names(K)};
    PlotAxes axes = {.title = "Confusion, all nodes (each gold row sums to 1)",
                     .x_label = "predicted", .y_label = "gold"};
    return plot_heatmap(target, "confusion", &axes, &data, err);
}

/* ---- Word embeddings on their principal axes ---------------------------------------- */

bool recursive_plot_embeddings(const PlotTarget *target, const RecursiveModel *model,
                               const Vocab *vocab, const Treebank *train, Error *err) {
    int V = vocab->size, d = model->config.dim, K = model->config.classes;
    if (V < 3) return true; /* nothing to project */
    /* The class of a word: its most frequent leaf label; K = no label. */
    long *votes = xcalloc((size_t)V * (K + 1), sizeof(long)); /* (V, K+1) */
    for (int t = 0; t < train->count; t++)
        for (int i = 0; i < train->trees[t].count; i++) {
            const TreeNode *n = &train->trees[t].nodes[i];
            if (n->left < 0 && n->word >= 0) votes[(size_t)n->word * (K + 1) + (n->label >= 0 ? n->label : K)]++;
        }
    int *classes = xmalloc((size_t)V * sizeof(int));
    for (int w = 0; w < V; w++) {
        int best = K;
        for (int k = 0; k < K; k++) best = votes[(size_t)w * (K + 1) + k] > votes[(size_t)w * (K + 1) + best] ? k : best;
        classes[w] = best;
    }
    Pca pca;
    Rng rng;
    rng_seed(&rng, 1, 7);
    pca_fit(&pca, model->embedding->data, V, d, 2, &rng);
    float *codes = xmalloc((size_t)V * 2 * sizeof(float)); /* (V, 2) */
    pca_project(&pca, model->embedding->data, V, codes);
    float *x = xmalloc((size_t)V * sizeof(float)), *y = xmalloc((size_t)V * sizeof(float));
    for (int w = 0; w < V; w++) x[w] = codes[2 * w], y[w] = codes[2 * w + 1];
    const char *names[RECURSIVE_MAX_CLASSES + 1];
    for (int k = 0; k < K; k++) names[k] = class_names(K)[k];
    names[K] = "no label";
    char title[160];
    snprintf(title, sizeof title, "Word embeddings, first two principal axes (%.0f%% of the variance)",
             100.0 * (pca.variances[0] + pca.variances[1]) / (pca.total_variance > 0 ? pca.total_variance : 1));
    ScatterData data = {.count = V, .x = x, .y = y, .classes = classes, .class_count = K + 1,
                        .class_names = names,
                        .point_labels = V <= 200 ? (const char *const *)vocab->tokens : NULL};
    PlotAxes axes = {.title = title, .x_label = "principal axis 1", .y_label = "principal axis 2"};
    bool ok = plot_scatter(target, "embeddings", &axes, &data, err);
    pca_free(&pca);
    free(votes), free(classes), free(codes), free(x), free(y);
    return ok;
}

/* ---- One tree ----------------------------------------------------------------------------- */

/* Diverging colours for sentiment (red negative, grey neutral, blue
 * positive); tab10 for other tasks. */
static const unsigned SENTIMENT_COLORS[SENTIMENT_CLASSES] = {0xb2182b, 0xef8a62, 0xbababa, 0x67a9cf, 0x2166ac};
static const unsigned TAB10[10] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                   0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};

/* Layout: leaves on the bottom row, x = 0, 1, 2, ... left to right; every
 * internal node centred over its children, at y = its height. */
static void tree_layout(const Tree *tree, float *x, int *height) {
    tree_heights(tree, height);
    int *stack = xmalloc((size_t)tree->count * sizeof(int));
    int top = 0, next_leaf = 0;
    stack[top++] = tree->count - 1;
    while (top > 0) { /* pre-order, left first: leaves come out in reading order */
        const TreeNode *n = &tree->nodes[stack[--top]];
        if (n->left < 0) { x[n - tree->nodes] = (float)next_leaf++; continue; }
        stack[top++] = n->right;
        stack[top++] = n->left;
    }
    free(stack);
    for (int i = 0; i < tree->count; i++) /* children first */
        if (tree->nodes[i].left >= 0) x[i] = 0.5f * (x[tree->nodes[i].left] + x[tree->nodes[i].right]);
}

/* A word inside double quotes in the .dat: a '"' in it becomes '\''. */
static void put_quoted(FILE *out, const char *text) {
    fputc('"', out);
    for (const char *c = text; *c; c++) fputc(*c == '"' ? '\'' : *c, out);
    fputc('"', out);
}

static void write_tree_data(FILE *dat, const Tree *tree, const int *predicted, const float *x,
                            const int *height, int *differ) {
    fputs("# tree drawing.  index 0: edges, columns x1 y1 x2 y2\n", dat);
    for (int i = 0; i < tree->count; i++) {
        const TreeNode *n = &tree->nodes[i];
        if (n->left < 0) continue;
        fprintf(dat, "%g %d %g %d\n", x[i], height[i], x[n->left], height[n->left]);
        fprintf(dat, "%g %d %g %d\n", x[i], height[i], x[n->right], height[n->right]);
    }
    if (tree->count == 1) fprintf(dat, "%g %d %g %d\n", x[0], 0, x[0], 0); /* no edge: a dot */
    fputs("\n\n# index 1: nodes, columns x y predicted gold(-1 none) word(\"\" for internal)\n", dat);
    *differ = 0;
    for (int i = 0; i < tree->count; i++) {
        const TreeNode *n = &tree->nodes[i];
        fprintf(dat, "%g %d %d %d ", x[i], height[i], predicted[i], n->label);
        put_quoted(dat, n->text != NULL ? n->text : "");
        fputc('\n', dat);
        *differ += n->label >= 0 && n->label != predicted[i];
    }
}

static void write_tree_script(FILE *gp, const char *stem, const char *title, const Tree *tree,
                              int tallest, int classes, bool differ) {
    const unsigned *colors = classes == SENTIMENT_CLASSES ? SENTIMENT_COLORS : TAB10;
    int width = tree->leaves * 90 + 260, height = tallest * 70 + 200;
    fprintf(gp, "# %s.gp: a tree with its predicted labels, written by tinyzoo.\n", stem);
    fprintf(gp, "# Re-plot: `gnuplot %s.gp` in this directory writes %s.png;\n", stem, stem);
    fprintf(gp, "# `gnuplot -e \"tz_term='dumb'\" %s.gp` draws it as text instead.\n", stem);
    fprintf(gp, "if (!exists(\"tz_term\")) tz_term = \"png\"\nset encoding utf8\ndatafile = '%s.dat'\n", stem);
    fprintf(gp, "if (tz_term eq \"png\") {\n    set terminal pngcairo size %d,%d font 'Sans,11' noenhanced\n"
                "    set output '%s.png'\n} else {\n    set terminal dumb size %d,%d\n    set output\n}\n",
            width < 760 ? 760 : width, height < 420 ? 420 : height, stem,
            tree->leaves * 9 + 30 < 200 ? tree->leaves * 9 + 30 : 200, tallest * 4 + 12);
    fputs("set termoption noenhanced\nunset border\nunset tics\nset key below horizontal\n", gp);
    fputs("set title \"", gp); /* double quotes: gnuplot turns \n into a line break */
    for (const char *c = title; *c; c++) fputc(*c == '"' || *c == '\\' ? '\'' : *c, gp);
    fputs("\\nin each node: the predicted label; in red: the gold label where it differs\" font ',12'\n", gp);
    fprintf(gp, "set xrange [-0.8:%g]\nset yrange [-1.2:%g]\n", (double)tree->leaves - 0.2, tallest + 0.8);
    for (int k = 0; k < classes; k++) fprintf(gp, "set linetype %d lc rgb '#%06x'\n", k + 1, colors[k]);
    fputs("plot datafile index 0 using 1:2:($3-$1):($4-$2) with vectors nohead lc rgb '#999999' lw 1.5 notitle, \\\n"
          "     datafile index 1 using 1:2:($3+1) with points pt 7 ps 3.2 lc variable notitle, \\\n"
          "     datafile index 1 using 1:2:(sprintf('%d', $3)) with labels tc rgb 'white' font ',10' notitle, \\\n"
          "     datafile index 1 using 1:2:(stringcolumn(5)) with labels offset 0,-1.6 notitle", gp);
    if (differ)
        fputs(", \\\n     datafile index 1 using 1:($4 >= 0 && $4 != $3 ? $2 : NaN):(sprintf('gold %d', $4)) "
              "with labels offset 0,1.4 tc rgb '#cc0000' notitle", gp);
    for (int k = 0; k < classes; k++)
        fprintf(gp, ", \\\n     NaN with points pt 7 ps 2 lc %d title '%s'", k + 1, class_names(classes)[k]);
    fputc('\n', gp);
}

/* Writes a memstream's text to <dir>/<stem><ext> atomically. */
static bool write_file(const PlotTarget *target, const char *stem, const char *ext, char *text,
                       size_t size, Error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s%s", target->dir, stem, ext);
    bool ok = file_write_atomic(path, text, size, err);
    free(text);
    return ok;
}

bool recursive_plot_tree(const PlotTarget *target, const char *stem, const char *title,
                         const Tree *tree, const int *predicted, int classes, Error *err) {
    if (!make_directory(target->dir, err)) return false;
    float *x = xmalloc((size_t)tree->count * sizeof(float)); /* (P) */
    int *height = xmalloc((size_t)tree->count * sizeof(int)); /* (P) */
    tree_layout(tree, x, height);
    char *dat_text = NULL, *gp_text = NULL;
    size_t dat_size = 0, gp_size = 0;
    FILE *dat = open_memstream(&dat_text, &dat_size), *gp = open_memstream(&gp_text, &gp_size);
    if (dat == NULL || gp == NULL) fatal("open_memstream failed");
    int differ;
    write_tree_data(dat, tree, predicted, x, height, &differ);
    write_tree_script(gp, stem, title, tree, height[tree->count - 1], classes, differ > 0);
    fclose(dat);
    fclose(gp);
    free(x), free(height);
    return write_file(target, stem, ".dat", dat_text, dat_size, err) &&
           write_file(target, stem, ".gp", gp_text, gp_size, err) && plot_render(target, stem, err);
}
