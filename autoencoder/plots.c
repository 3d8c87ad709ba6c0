/* autoencoder/plots.c: what a trained autoencoder looks like.
 *
 * Legend: B images, D = H*W pixels, Z code size, G grid side.
 *
 *   reconstructions  rows original / reconstructed / noisy / from noisy
 *   latent           the codes of validation images, coloured by class
 *                    (a PCA of the codes to 2-D when Z > 2)
 *   manifold         vae: images decoded from a G x G grid of latent points
 *   samples          vae: images decoded from z ~ N(0, I) (the sample
 *                    command's own draws: sample-grid)
 *   loss             the curves of metrics.csv
 *   roc              (used by the anomaly command) the ROC curve and its AUC
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoencoder.h"
#include "data.h"
#include "pca.h"

/* The decoder's images (B, D) for codes z (B, Z), in [0, 1] for display:
 * sigmoid outputs as they are, linear outputs clipped. */
static void decode_images(Graph *g, const Autoencoder *model, const float *codes, int count, float *images) {
    const int Z = autoencoder_code_size(&model->config), D = autoencoder_input_size(&model->config);
    graph_reset(g);
    g->no_grad = true;
    Tensor *z = tensor_of(g, false, 2, count, Z); /* (B, Z) */
    memcpy(z->data, codes, sizeof(float) * (size_t)count * Z);
    Tensor *logits = autoencoder_decode(g, model, z); /* (B, D) */
    Tensor *out = model->config.output == OUTPUT_SIGMOID_BCE ? op_sigmoid(g, logits) : logits;
    for (int i = 0; i < count * D; i++) images[i] = fminf(1.0f, fmaxf(0.0f, out->data[i]));
    g->no_grad = false;
}

/* codes (B, Z) = the encoder's mean for images (B, D). */
static void encode_images(Graph *g, const Autoencoder *model, const float *images, int count, float *codes) {
    const int Z = autoencoder_code_size(&model->config), D = autoencoder_input_size(&model->config);
    graph_reset(g);
    g->no_grad = true;
    Tensor *x = tensor_of(g, false, 2, count, D); /* (B, D) */
    memcpy(x->data, images, sizeof(float) * (size_t)count * D);
    Tensor *mu = autoencoder_encode(g, model, x, NULL); /* (B, Z) */
    memcpy(codes, mu->data, sizeof(float) * (size_t)count * Z);
    g->no_grad = false;
}

/* images (B, D) -> reconstructions (B, D) through the code (the vae's mean). */
static void reconstruct_images(Graph *g, const Autoencoder *model, const float *images, int count, float *out) {
    int Z = autoencoder_code_size(&model->config);
    float *codes = xmalloc(sizeof(float) * (size_t)count * Z); /* (B, Z) */
    encode_images(g, model, images, count, codes);
    decode_images(g, model, codes, count, out);
    free(codes);
}

static void plot_or_exit(bool ok, const Error *err) {
    if (!ok) error_exit(err, EXIT_RUNTIME_ERROR);
}

void autoencoder_plot_reconstructions(Graph *g, const Autoencoder *model, const AutoencoderDataset *data,
                                      const int *indices, int columns, AutoencoderNoise noise, float noise_level,
                                      const PlotTarget *target, long seed) {
    const int D = data->height * data->width, C = columns;
    float *pixels = xmalloc(sizeof(float) * 4 * (size_t)C * D); /* (4 rows, C, D) */
    float *original = pixels, *rebuilt = pixels + (size_t)C * D;
    float *noisy = pixels + 2 * (size_t)C * D, *from_noisy = pixels + 3 * (size_t)C * D;
    autoencoder_gather(data, indices, C, original);
    reconstruct_images(g, model, original, C, rebuilt);
    Rng rng;
    rng_seed(&rng, (uint64_t)seed, 50);
    autoencoder_corrupt(noise, noise_level, original, noisy, C * D, &rng);
    reconstruct_images(g, model, noisy, C, from_noisy);
    for (int i = 0; i < C * D; i++) noisy[i] = fminf(1.0f, fmaxf(0.0f, noisy[i])); /* for display */
    const char *labels[4] = {"original", "reconstructed", "noisy", "from noisy"};
    ImageGridData grid = {.rows = 4, .cols = C, .height = data->height, .width = data->width,
                          .pixels = pixels, .row_labels = labels};
    char title[128];
    snprintf(title, sizeof title, "Reconstructions (noise: %s %.2g)", noise == NOISE_GAUSSIAN ? "Gaussian" : "masking",
             (double)noise_level);
    PlotAxes axes = {.title = title};
    Error err;
    plot_or_exit(plot_image_grid(target, "reconstructions", &axes, &grid, &err), &err);
    free(pixels);
}

void autoencoder_plot_latent(Graph *g, const Autoencoder *model, const AutoencoderDataset *data,
                             const int *indices, int count, const PlotTarget *target, long seed) {
    const int D = data->height * data->width, Z = autoencoder_code_size(&model->config);
    float *images = xmalloc(sizeof(float) * (size_t)count * D); /* (B, D) */
    float *codes = xmalloc(sizeof(float) * (size_t)count * Z);  /* (B, Z) */
    float *xy = xmalloc(sizeof(float) * (size_t)count * 2);     /* (B, 2) */
    int *classes = xmalloc(sizeof(int) * (size_t)count);        /* (B)    */
    autoencoder_gather(data, indices, count, images);
    encode_images(g, model, images, count, codes);
    char title[160];
    if (Z > 2) { /* the two directions along which the codes vary most */
        Pca pca;
        Rng rng;
        rng_seed(&rng, (uint64_t)seed, 60);
        pca_fit(&pca, codes, count, Z, 2, &rng);
        pca_project(&pca, codes, count, xy);
        snprintf(title, sizeof title, "Latent space: PCA of the %d-D codes (%.0f%% of their variance)", Z,
                 100.0 * (pca.variances[0] + pca.variances[1]) / (pca.total_variance > 0 ? pca.total_variance : 1));
        pca_free(&pca);
    } else {
        for (int b = 0; b < count; b++) {
            xy[2 * b] = codes[(size_t)b * Z];
            xy[2 * b + 1] = Z == 2 ? codes[(size_t)b * Z + 1] : 0.0f;
        }
        snprintf(title, sizeof title, "Latent space: the %d-D codes", Z);
    }
    float *x = xmalloc(sizeof(float) * (size_t)count), *y = xmalloc(sizeof(float) * (size_t)count);
    /* Only the classes present get a colour and a legend entry (held-out
     * classes are absent), numbered in order: plot ids (B). */
    int plot_id[AUTOENCODER_MAX_CLASSES], shown = 0;
    const char *names[AUTOENCODER_MAX_CLASSES];
    bool labelled = data->class_count > 0;
    for (int k = 0; k < AUTOENCODER_MAX_CLASSES; k++) plot_id[k] = -1;
    for (int b = 0; b < count; b++) {
        int label = data->labels[indices[b]];
        if (label < 0 || label >= data->class_count) labelled = false;
        else if (plot_id[label] < 0) plot_id[label] = 0;
    }
    for (int k = 0; labelled && k < data->class_count; k++)
        if (plot_id[k] == 0) names[shown] = data->class_names[k], plot_id[k] = shown++;
    for (int b = 0; b < count; b++) {
        x[b] = xy[2 * b], y[b] = xy[2 * b + 1];
        classes[b] = labelled ? plot_id[data->labels[indices[b]]] : 0;
    }
    ScatterData scatter = {.count = count, .x = x, .y = y, .classes = labelled ? classes : NULL,
                           .class_count = labelled ? shown : 0, .class_names = labelled ? names : NULL};
    PlotAxes axes = {.title = title, .x_label = Z > 2 ? "PC 1" : "z_1", .y_label = Z > 2 ? "PC 2" : "z_2"};
    Error err;
    plot_or_exit(plot_scatter(target, "latent", &axes, &scatter, &err), &err);
    free(images), free(codes), free(xy), free(classes), free(x), free(y);
}

/* G x G latent points evenly over [-2, 2]^2 in (z_1, z_2), the rest of z 0:
 * two standard deviations of the prior either way.  Row 0 is z_2 = +2. */
void autoencoder_plot_manifold(Graph *g, const Autoencoder *model, int height, int width, const PlotTarget *target) {
    enum { G = 15 };
    const int Z = autoencoder_code_size(&model->config), D = height * width;
    float *codes = xcalloc((size_t)G * G * Z, sizeof(float));  /* (G*G, Z) */
    float *images = xmalloc(sizeof(float) * (size_t)G * G * D); /* (G*G, D) */
    for (int r = 0; r < G; r++)
        for (int c = 0; c < G; c++) {
            codes[(size_t)(r * G + c) * Z] = -2.0f + 4.0f * (float)c / (G - 1);
            if (Z > 1) codes[(size_t)(r * G + c) * Z + 1] = 2.0f - 4.0f * (float)r / (G - 1);
        }
    decode_images(g, model, codes, G * G, images);
    ImageGridData grid = {.rows = G, .cols = G, .height = height, .width = width, .pixels = images};
    char title[128];
    snprintf(title, sizeof title, "VAE manifold: decoded z_1 (left to right) and z_2 (top to bottom) in [-2, 2]%s",
             Z > 2 ? ", other z = 0" : "");
    PlotAxes axes = {.title = title};
    Error err;
    plot_or_exit(plot_image_grid(target, "manifold", &axes, &grid, &err), &err);
    free(codes), free(images);
}

void autoencoder_plot_samples(Graph *g, const Autoencoder *model, int height, int width, int count,
                              const PlotTarget *target, const char *stem, Rng *rng, float *pixels_out) {
    const int Z = autoencoder_code_size(&model->config), D = height * width;
    int cols = count < 10 ? count : 10, rows = (count + cols - 1) / cols;
    float *codes = xmalloc(sizeof(float) * (size_t)rows * cols * Z); /* (rows*cols, Z) */
    float *images = xmalloc(sizeof(float) * (size_t)rows * cols * D);
    for (int i = 0; i < rows * cols * Z; i++) codes[i] = rng_normal(rng);
    decode_images(g, model, codes, rows * cols, images);
    for (int i = count * D; i < rows * cols * D; i++) images[i] = 0; /* unused cells */
    if (pixels_out) memcpy(pixels_out, images, sizeof(float) * (size_t)count * D);
    if (target != NULL) {
        ImageGridData grid = {.rows = rows, .cols = cols, .height = height, .width = width, .pixels = images};
        PlotAxes axes = {.title = "VAE samples: decoded draws z ~ N(0, I)"};
        Error err;
        plot_or_exit(plot_image_grid(target, stem, &axes, &grid, &err), &err);
    }
    free(codes), free(images);
}

/* ---- Loss curves from metrics.csv ------------------------------------------------- */

bool autoencoder_plot_curves(const PlotTarget *target, Error *err) {
    char path[2048];
    snprintf(path, sizeof path, "%s/metrics.csv", target->dir);
    char *text;
    size_t size;
    if (!file_read_all(path, 64 << 20, &text, &size, err)) return false;
    enum { COLUMNS = 8 };
    int rows = 0;
    for (size_t i = 0; i < size; i++) rows += text[i] == '\n';
    float *columns[COLUMNS];
    for (int c = 0; c < COLUMNS; c++) columns[c] = xmalloc(sizeof(float) * (size_t)(rows + 1));
    int count = 0;
    const char *line = strchr(text, '\n'); /* after the header */
    while (line != NULL && *++line != '\0') {
        double values[COLUMNS];
        int fields = 0;
        const char *at = line;
        while (fields < COLUMNS) { /* "v0,v1,...,v7" */
            char *end;
            values[fields] = strtod(at, &end);
            if (end == at) break;
            fields++;
            if (*end != ',') break;
            at = end + 1;
        }
        if (fields == COLUMNS) {
            for (int c = 0; c < COLUMNS; c++) columns[c][count] = (float)values[c];
            count++;
        }
        line = strchr(line, '\n');
    }
    free(text);
    bool has_kl = false;
    for (int i = 0; i < count; i++) has_kl |= columns[4][i] > 0;
    PlotSeries series[4] = {
        {.name = "train (mean since last point)", .x = columns[0], .y = columns[1], .count = count},
        {.name = "validation", .x = columns[0], .y = columns[2], .count = count},
        {.name = "validation reconstruction", .x = columns[0], .y = columns[3], .count = count},
        {.name = "validation KL", .x = columns[0], .y = columns[4], .count = count},
    };
    PlotAxes axes = {.title = "Autoencoder loss per image", .x_label = "step", .y_label = "loss", .log_y = true};
    bool ok = count == 0 || plot_lines(target, "loss", &axes, series, has_kl ? 4 : 2, err);
    for (int c = 0; c < COLUMNS; c++) free(columns[c]);
    return ok;
}

/* ---- ROC ------------------------------------------------------------------------------ */

typedef struct {
    float score;
    int anomalous;
} Scored;

static int by_score_descending(const void *a, const void *b) {
    float x = ((const Scored *)a)->score, y = ((const Scored *)b)->score;
    return (x < y) - (x > y);
}

/* Sorting every score from high to low and lowering the threshold past one
 * distinct score at a time traces the ROC curve from (0,0) to (1,1); its
 * area (trapezoids, so tied scores count half) is the probability that an
 * anomaly scores above a normal image. */
double autoencoder_roc(const float *normal, int normal_count, const float *anomalous, int anomalous_count,
                       float *fpr, float *tpr) {
    int total = normal_count + anomalous_count;
    Scored *all = xmalloc(sizeof(Scored) * (size_t)(total > 0 ? total : 1));
    for (int i = 0; i < normal_count; i++) all[i] = (Scored){normal[i], 0};
    for (int i = 0; i < anomalous_count; i++) all[normal_count + i] = (Scored){anomalous[i], 1};
    qsort(all, (size_t)total, sizeof *all, by_score_descending);
    double area = 0, last_fpr = 0, last_tpr = 0;
    int true_positives = 0, false_positives = 0, points = 0;
    if (fpr) fpr[points] = 0, tpr[points] = 0;
    points++;
    for (int i = 0; i < total; i++) {
        if (all[i].anomalous) true_positives++;
        else false_positives++;
        if (i + 1 < total && all[i + 1].score == all[i].score) continue; /* one step per distinct score */
        double x = normal_count ? (double)false_positives / normal_count : 0;
        double y = anomalous_count ? (double)true_positives / anomalous_count : 0;
        area += (x - last_fpr) * (y + last_tpr) / 2;
        if (fpr) fpr[points] = (float)x, tpr[points] = (float)y;
        points++;
        last_fpr = x, last_tpr = y;
    }
    if (fpr) /* repeat the last point to fill the promised count+1 entries */
        for (; points <= total; points++) fpr[points] = (float)last_fpr, tpr[points] = (float)last_tpr;
    free(all);
    return area;
}
