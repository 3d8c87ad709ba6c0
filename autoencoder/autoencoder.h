/* autoencoder/autoencoder.h: undercomplete (ae), denoising (dae) and
 * variational (vae) autoencoders, their data, and the training loop.
 *
 * Legend: B batch, D input features (pixels, H*W), H image height, W image
 * width, Hk hidden sizes, Z code (latent) size, L encoder layers, N images,
 * K classes.
 *
 * The model, in one line each (README.md has the full derivation):
 *   encoder   h_0 = x~,  h_k = act(W_k h_{k-1} + b_k),  code = W_L h_{L-1} + b_L
 *   vae       mu = W_mu h + b_mu,  logvar = W_lv h + b_lv,  z = mu + exp(logvar/2) eps
 *   decoder   the mirror image: sizes Z -> ... -> D, then sigmoid or identity
 *   loss      recon(x, x^) + beta_t KL(q(z|x) || N(0, I)) + l1 * |code|_1
 * with every term summed over features and averaged over the batch, so
 * the numbers read "per image" whatever the batch size.
 *
 * Files:
 *   model.c   config, parameters, forward pass, losses and the custom ops
 *             (reparameterisation, KL, L1, fused sigmoid + cross-entropy)
 *             with their backward passes
 *   glyphs.c  the built-in data: a bitmap font of digits and shapes rendered
 *             with random shift, scale, rotation, stroke and noise
 *   data.c    IDX (MNIST, gzip or plain), PGM, CSV and PNG files; datasets
 *   train.c   the training loop, evaluation, checkpoints and resuming
 *   plots.c   reconstruction grid, latent scatter, manifold, anomaly ROC
 *   bench.c   the speed benchmark and the PyTorch parity dump
 *   main.c    the command line
 */
#ifndef TINYZOO_AUTOENCODER_H
#define TINYZOO_AUTOENCODER_H

#include <stdbool.h>

#include "checkpoint.h"
#include "cli.h"
#include "nn.h"
#include "plot.h"
#include "rng.h"
#include "tensor.h"
#include "util.h"

/* ==== Model (model.c) ======================================================= */

typedef enum { AUTOENCODER_AE, AUTOENCODER_DAE, AUTOENCODER_VAE } AutoencoderKind;
#define AUTOENCODER_KIND_CHOICES "ae|dae|vae"
typedef enum {
    ACTIVATION_RELU,
    ACTIVATION_TANH,
    ACTIVATION_SIGMOID,
    ACTIVATION_GELU,
    ACTIVATION_LINEAR
} AutoencoderActivation;
#define AUTOENCODER_ACTIVATION_CHOICES "relu|tanh|sigmoid|gelu|linear"
/* The output layer and its loss go together: sigmoid outputs in (0,1)
 * compared by binary cross-entropy, or linear outputs by squared error. */
typedef enum { OUTPUT_SIGMOID_BCE, OUTPUT_LINEAR_MSE } AutoencoderOutput;
#define AUTOENCODER_OUTPUT_CHOICES "bce|mse"
typedef enum { NOISE_GAUSSIAN, NOISE_MASKING } AutoencoderNoise;
#define AUTOENCODER_NOISE_CHOICES "gaussian|masking"

enum { AUTOENCODER_MAX_LAYERS = 8 };

typedef struct {
    AutoencoderKind kind;
    int sizes[AUTOENCODER_MAX_LAYERS + 1]; /* D, H1, ..., Z: the encoder's widths    */
    int layer_count;                       /* L = number of sizes - 1                */
    AutoencoderActivation activation;      /* of every hidden layer                  */
    AutoencoderOutput output;
    bool tied;               /* decoder layer k uses encoder layer k's W^T         */
    /* Regularisers, used in training only (not needed to rebuild the model): */
    AutoencoderNoise noise;  /* dae: how the input is corrupted                    */
    float noise_level;       /* dae: Gaussian std, or masking probability          */
    float beta;              /* vae: weight of the KL term                         */
    long beta_warmup;        /* vae: steps over which beta rises linearly from 0   */
    float l1;                /* weight of the L1 sparsity penalty on the code      */
} AutoencoderConfig;

/* "784,256,32" into config->sizes and layer_count.  False with an Error for a
 * malformed list, fewer than 2 or more than AUTOENCODER_MAX_LAYERS + 1 sizes,
 * a size outside [1, 65536]. */
bool autoencoder_parse_layers(const char *text, AutoencoderConfig *config, Error *err);
/* "784,256,32" from config->sizes. */
void autoencoder_layers_string(const AutoencoderConfig *config, char *out, size_t size);
int autoencoder_code_size(const AutoencoderConfig *config); /* Z */
int autoencoder_input_size(const AutoencoderConfig *config); /* D */

typedef struct {
    AutoencoderConfig config;
    ParamSet params;
    /* encoder[k] maps sizes[k] -> sizes[k+1]; for the vae, encoder[L-1] is
     * the mean head and `logvar` the log-variance head. */
    Linear encoder[AUTOENCODER_MAX_LAYERS]; /* weight (sizes[k+1], sizes[k]) */
    Linear logvar;                          /* vae: weight (Z, sizes[L-1])    */
    /* decoder[k] maps sizes[k+1] -> sizes[k]; with tied weights its weight is
     * NULL and encoder[k].weight is used transposed. */
    Linear decoder[AUTOENCODER_MAX_LAYERS]; /* weight (sizes[k], sizes[k+1]) */
} Autoencoder;

/* Declares and allocates the parameters; autoencoder_init fills them. */
void autoencoder_build(Autoencoder *model, const AutoencoderConfig *config);
void autoencoder_init(Autoencoder *model, Rng *rng);
void autoencoder_free(Autoencoder *model);

/* Everything one forward pass produced, for the loss, the plots and tests. */
typedef struct {
    Tensor *mu;             /* (B, Z) the code: ae/dae code, vae posterior mean    */
    Tensor *logvar;         /* (B, Z) vae posterior log-variance; NULL otherwise   */
    Tensor *z;              /* (B, Z) what the decoder saw: mu, or a vae sample    */
    Tensor *logits;         /* (B, D) decoder output before the output activation  */
    Tensor *reconstruction; /* (B, D) sigmoid(logits), or logits for mse           */
    Tensor *recon_loss;     /* (1) per image: sum over D, mean over B              */
    Tensor *kl;             /* (1) per image; NULL unless vae                      */
    Tensor *sparsity;       /* (1) per image sum |code|; NULL unless l1 > 0        */
    Tensor *loss;           /* (1) recon + beta * kl + l1 * sparsity               */
} AutoencoderPass;

/* x (B, D) -> mu (B, Z), and *logvar (B, Z) for the vae (else NULL). */
Tensor *autoencoder_encode(Graph *g, const Autoencoder *model, Tensor *x, Tensor **logvar);
/* z (B, Z) -> logits (B, D) (apply the output activation for pixels). */
Tensor *autoencoder_decode(Graph *g, const Autoencoder *model, Tensor *z);
/* The whole pass.  `input` (B, D) is what the encoder sees (the corrupted
 * image for the dae), `target` (B, D) what it must rebuild.  For the vae,
 * `eps` (B, Z) holds the N(0, 1) draws of the reparameterisation; NULL
 * decodes the mean (evaluation).  `beta` is the current KL weight. */
AutoencoderPass autoencoder_forward(Graph *g, const Autoencoder *model, Tensor *input,
                                    Tensor *target, const float *eps, float beta);

/* The custom ops, forward and backward side by side in model.c. */
/* z (B, Z) = mu + exp(logvar / 2) * eps */
Tensor *autoencoder_op_reparameterize(Graph *g, Tensor *mu, Tensor *logvar, const float *eps);
/* (1) = mean over B of sum over Z of -1/2 (1 + logvar - mu^2 - exp(logvar)) */
Tensor *autoencoder_op_kl(Graph *g, Tensor *mu, Tensor *logvar);
/* (1) = mean over B of sum over Z of |x| */
Tensor *autoencoder_op_l1(Graph *g, Tensor *x);

/* The dae's corruption of clean (B*D) into noisy (B*D), drawing from rng. */
void autoencoder_corrupt(AutoencoderNoise noise, float level, const float *clean, float *noisy,
                         int count, Rng *rng);
/* beta_t = beta * min(1, (step + 1) / warmup); beta when warmup is 0. */
float autoencoder_beta_at(const AutoencoderConfig *config, long step);

/* Architecture metadata for checkpoints, and back (validated). */
void autoencoder_config_to_metadata(const AutoencoderConfig *config, Metadata *meta);
bool autoencoder_config_from_metadata(const Metadata *meta, AutoencoderConfig *config, Error *err);

/* ==== Data (glyphs.c, data.c) ================================================ */

enum { AUTOENCODER_MAX_CLASSES = 64, AUTOENCODER_CLASS_NAME = 16 };

typedef struct {
    float *images;  /* (N, H, W) pixel values in [0, 1]          */
    int *labels;    /* (N) class ids, -1 when unknown             */
    int count;      /* N                                          */
    int height, width;
    int class_count; /* K                                         */
    char class_names[AUTOENCODER_MAX_CLASSES][AUTOENCODER_CLASS_NAME];
} AutoencoderDataset;

/* The glyph classes: digits 0-9, then the shapes. */
enum { GLYPH_DIGITS = 10, GLYPH_CLASSES = 14 };
/* `count` glyph images of size x size (16 or 28), classes in turn, each with
 * random shift, scale, rotation, shear and stroke width, plus Gaussian pixel
 * noise of std `noise` (clipped to [0, 1]). */
void autoencoder_glyphs_generate(AutoencoderDataset *data, int count, int size, float noise,
                                 Rng *rng);
void autoencoder_dataset_free(AutoencoderDataset *data);
/* Ten classes named "0".."9" (IDX and CSV data), or more if labels reach it. */
void autoencoder_dataset_name_classes(AutoencoderDataset *data);

/* Limits that make a wrong file fail at once instead of exhausting memory. */
enum { AUTOENCODER_MAX_IMAGES = 10000000, AUTOENCODER_MAX_SIDE = 4096 };
#define AUTOENCODER_MAX_PIXELS (1L << 28) /* N * H * W, 1 GiB of floats */

/* IDX (the MNIST format), plain or gzip-compressed (detected by zlib):
 * images magic 0x00000803, labels 0x00000801, big-endian sizes.  Labels
 * must be below AUTOENCODER_MAX_CLASSES. */
bool autoencoder_read_idx_images(const char *path, AutoencoderDataset *data, Error *err);
bool autoencoder_read_idx_labels(const char *path, AutoencoderDataset *data, Error *err);
/* Writes images (values rounded to 0..255) or labels; gzip when `compress`. */
bool autoencoder_write_idx_images(const char *path, const AutoencoderDataset *data,
                                  bool compress, Error *err);
bool autoencoder_write_idx_labels(const char *path, const AutoencoderDataset *data,
                                  bool compress, Error *err);
/* CSV: one image per line, "label,p1,...,pD" (label below
 * AUTOENCODER_MAX_CLASSES); an optional header line; pixel values 0..255
 * (divided by 255) or, when none exceeds 1, already in [0, 1].
 * Square images get H = W = sqrt(D), others H = 1. */
bool autoencoder_read_csv(const char *path, AutoencoderDataset *data, Error *err);
/* The same from text[0..size) in memory, which must be followed by a NUL
 * (as file_read_all leaves it); `path` only names it in errors. */
bool autoencoder_parse_csv(const char *text, size_t size, const char *path, AutoencoderDataset *data,
                           Error *err);
bool autoencoder_write_csv(const char *path, const AutoencoderDataset *data, Error *err);
/* PGM: P2 (text) or P5 (binary, 8 or 16 bits), maxval 1..65535, comments.
 * *pixels (H*W) is malloc'd, values in [0, 1]. */
bool autoencoder_read_pgm(const char *path, float **pixels, int *height, int *width, Error *err);
/* The same from text[0..size) in memory; `path` only names it in errors. */
bool autoencoder_parse_pgm(const char *text, size_t size, const char *path, float **pixels,
                           int *height, int *width, Error *err);
/* Writes P5 with maxval 255 (values clipped to [0, 1]), atomically. */
bool autoencoder_write_pgm(const char *path, const float *pixels, int height, int width, Error *err);
/* An 8-bit greyscale PNG (zlib for the compression and the checksums). */
bool autoencoder_write_png(const char *path, const float *pixels, int height, int width,
                           int scale, Error *err);

/* Loads --data (IDX, CSV or a single PGM) or generates glyphs. */
typedef struct {
    const char *data_path;   /* NULL: glyphs                                    */
    const char *labels_path; /* IDX labels for --data IDX images; may be NULL   */
    int glyph_size;
    int glyph_count;
    float glyph_noise;
    long seed;
} AutoencoderDataOptions;
bool autoencoder_load_dataset(const AutoencoderDataOptions *options, AutoencoderDataset *data,
                              Error *err);

/* Train/validation/held-out split: validation_fraction of the images go to
 * validation, and every image whose class is in `holdout` (a mask of
 * class_count bools) goes to the held-out list instead (anomalies). */
typedef struct {
    int *train, *validation, *holdout; /* indices into the dataset */
    int train_count, validation_count, holdout_count;
} AutoencoderSplit;
void autoencoder_split(const AutoencoderDataset *data, float validation_fraction,
                       const bool *holdout, long seed, AutoencoderSplit *split);
void autoencoder_split_free(AutoencoderSplit *split);
/* "shapes", "digits", "none", or a comma list of class names or ids
 * ("0,circle,3") into a mask (class_count bools).  False on an unknown name. */
bool autoencoder_parse_classes(const char *text, const AutoencoderDataset *data, bool *mask,
                               Error *err);

/* ==== Training and evaluation (train.c) ======================================= */

typedef struct {
    CommonOptions common;
    AutoencoderConfig model; /* filled from the choice ints below       */
    int kind, activation, output, noise; /* OPTION_CHOICE indices       */
    const char *layers;      /* "784,256,32"                             */
    bool tied;
    float noise_level, beta, l1;
    long beta_warmup;
    AutoencoderDataOptions data;
    const char *labels;      /* --labels                                 */
    const char *holdout;     /* --holdout                                */
    float validation_fraction;
    long eval_every;
    int eval_images;         /* validation images used per evaluation    */
    bool no_pca;             /* skip the PCA baseline                    */
    float percentile;        /* anomaly threshold                        */
    int index;               /* dataset index for reconstruct/denoise    */
    int samples;             /* sample: how many draws                   */
    const char *write;       /* encode: output file                      */
    int bench_config;        /* bench: mnist|small                       */
    int bench_warmup, bench_steps, bench_repeats;
    char out_buffer[1024];   /* default --out                            */
    char checkpoint_buffer[1100];
} AutoencoderSettings;

/* Everything training and the inference commands need at once. */
typedef struct {
    AutoencoderDataset data;
    AutoencoderSplit split;
    bool holdout_mask[AUTOENCODER_MAX_CLASSES];
} AutoencoderData;

/* Loads the data and splits it, per the settings; exits 1 with a message on
 * a bad file. */
void autoencoder_data_prepare(const AutoencoderSettings *settings, AutoencoderData *data);
void autoencoder_data_free(AutoencoderData *data);

/* Copies images `indices` (count) of the dataset into out (count, D). */
void autoencoder_gather(const AutoencoderDataset *data, const int *indices, int count, float *out);

/* Mean per-image losses over `count` images (no gradients), with a fixed
 * noise stream so that successive evaluations are comparable.  `squared`
 * receives the mean per-image sum of squared errors of the reconstruction
 * (the quantity PCA minimises). */
typedef struct {
    double loss, recon, kl, squared;
} AutoencoderEval;
AutoencoderEval autoencoder_evaluate(Graph *g, const Autoencoder *model, const AutoencoderDataset *data,
                                     const int *indices, int count, int batch, long seed);
/* Per-image squared reconstruction error (the anomaly score) of the images
 * `indices`, written to scores (count); the encoder sees clean images and
 * the vae decodes its mean. */
void autoencoder_scores(Graph *g, const Autoencoder *model, const AutoencoderDataset *data,
                        const int *indices, int count, int batch, float *scores);

/* The training command: returns the exit status.  The options are written
 * to <out>/config.txt once the data has loaded (nothing is written for a
 * run that fails on its input). */
int autoencoder_train(AutoencoderSettings *settings, const Option *options, int option_count);
/* Loads a checkpoint's architecture and weights (exits 1 on a bad file). */
void autoencoder_load(const char *path, Autoencoder *model, Metadata *meta);
/* Path of the checkpoint for the inference commands. */
const char *autoencoder_checkpoint_path(const AutoencoderSettings *settings);

/* ==== Speed and parity (bench.c) ============================================= */

/* bench: training steps per second on random images, best of the repeats. */
int autoencoder_bench(AutoencoderSettings *settings);
/* parity: writes <out>/parity.safetensors with the weights ("param.<name>"),
 * the batch, the vae's eps, the loss terms and every gradient
 * ("grad.<name>") of one training step, for tests/parity/autoencoder_parity.py. */
int autoencoder_parity(AutoencoderSettings *settings);

/* ==== Plots (plots.c) ========================================================= */

/* original / noisy / reconstructed rows for `columns` validation images. */
void autoencoder_plot_reconstructions(Graph *g, const Autoencoder *model, const AutoencoderDataset *data,
                                      const int *indices, int columns, AutoencoderNoise noise,
                                      float noise_level, const PlotTarget *target, long seed);
/* 2-D codes of the images coloured by class (PCA of the codes when Z > 2). */
void autoencoder_plot_latent(Graph *g, const Autoencoder *model, const AutoencoderDataset *data,
                             const int *indices, int count, const PlotTarget *target, long seed);
/* vae: the decoder's images over a grid of latent points (the first two
 * code dimensions, the others at 0), and `count` draws from the prior as
 * the grid <stem>.png ("samples" for train and plot, "sample-grid" for the
 * sample command, so that it never overwrites the training run's figure);
 * pixels_out (count, D) receives the draws when not NULL. */
void autoencoder_plot_manifold(Graph *g, const Autoencoder *model, int height, int width,
                               const PlotTarget *target);
void autoencoder_plot_samples(Graph *g, const Autoencoder *model, int height, int width,
                              int count, const PlotTarget *target, const char *stem, Rng *rng,
                              float *pixels_out);
/* Loss curves from <dir>/metrics.csv. */
bool autoencoder_plot_curves(const PlotTarget *target, Error *err);
/* Area under the ROC curve of scores where positives are the anomalies;
 * fills the curve (count+1 points each) when fpr/tpr are not NULL. */
double autoencoder_roc(const float *normal, int normal_count, const float *anomalous,
                       int anomalous_count, float *fpr, float *tpr);

#endif
