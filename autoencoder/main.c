/* autoencoder/main.c: the command line of bin/autoencoder.
 *
 *   bin/autoencoder train --model ae|dae|vae [options]   train, plot, save
 *   bin/autoencoder eval|plot                             from a checkpoint
 *   bin/autoencoder encode|reconstruct|denoise|sample|anomaly
 *   bin/autoencoder bench --config mnist|small --threads N
 *   bin/autoencoder parity --model ae|vae --out DIR       weights, batch,
 *                                                         loss and gradients
 *                                                         for the PyTorch check
 *   bin/autoencoder <command> --help                      the options that
 *                                                         command reads
 *
 * Legend: B batch, D = H*W pixels, Z code size, N images.
 *
 * The inference commands rebuild the model from the checkpoint's metadata,
 * and take the data settings (glyph seed and count, --data, --holdout) from
 * it too, unless given again on the command line: defaults, then the
 * checkpoint, then the flags.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoencoder.h"
#include "data.h"
#include "matmul.h"

/* ==== Settings and options ====================================================== */

static void settings_defaults(AutoencoderSettings *s) {
    memset(s, 0, sizeof *s);
    s->common = (CommonOptions){.task = "glyphs", .steps = 3000, .batch = 128, .lr = 1e-3f, .seed = 1,
                                .threads = 1, .plot_term = PLOT_TERM_PNG};
    s->kind = AUTOENCODER_AE;
    s->layers = "784,256,32";
    s->activation = ACTIVATION_RELU;
    s->output = OUTPUT_SIGMOID_BCE;
    s->noise = NOISE_GAUSSIAN;
    s->noise_level = 0.3f;
    s->beta = 1.0f;
    s->data = (AutoencoderDataOptions){.glyph_size = 28, .glyph_count = 12000, .glyph_noise = 0.03f};
    s->holdout = "none";
    s->validation_fraction = 0.1f;
    s->eval_every = 100;
    s->eval_images = 500;
    s->percentile = 95.0f;
    s->index = -1;
    s->samples = 40;
    s->bench_warmup = 20;
    s->bench_steps = 100;
    s->bench_repeats = 5;
}

enum { OPTION_COUNT = COMMON_OPTION_COUNT + 26 };

static void options_table(AutoencoderSettings *s, Option *options) {
    common_options_table(&s->common, options);
    const Option mine[OPTION_COUNT - COMMON_OPTION_COUNT] = {
        {"model", OPTION_CHOICE, &s->kind, "ae (undercomplete), dae (denoising) or vae (variational)",
         AUTOENCODER_KIND_CHOICES, 0, 0},
        {"layers", OPTION_STRING, &s->layers, "encoder sizes from the input to the code; the decoder mirrors them",
         NULL, 0, 0},
        {"activation", OPTION_CHOICE, &s->activation, "activation of the hidden layers", AUTOENCODER_ACTIVATION_CHOICES, 0, 0},
        {"output", OPTION_CHOICE, &s->output, "sigmoid output with binary cross-entropy, or linear with squared error",
         AUTOENCODER_OUTPUT_CHOICES, 0, 0},
        {"tied", OPTION_FLAG, &s->tied, "decoder weights are the encoder's, transposed", NULL, 0, 0},
        {"noise", OPTION_CHOICE, &s->noise, "dae corruption (and the noisy row of the plots)", AUTOENCODER_NOISE_CHOICES, 0, 0},
        {"noise-level", OPTION_FLOAT, &s->noise_level, "Gaussian std, or the probability of masking a pixel", NULL, 0, 10},
        {"beta", OPTION_FLOAT, &s->beta, "vae: weight of the KL term", NULL, 0, 1000},
        {"beta-warmup", OPTION_LONG, &s->beta_warmup, "vae: steps over which beta rises from 0 (0: none)", NULL, 0, 1e9},
        {"l1", OPTION_FLOAT, &s->l1, "weight of the L1 sparsity penalty on the code (0: none)", NULL, 0, 1000},
        {"labels", OPTION_STRING, &s->labels, "IDX label file for --data IDX images", NULL, 0, 0},
        {"glyph-size", OPTION_INT, &s->data.glyph_size, "side of the generated glyph images (e.g. 16, or 28 as MNIST)", NULL, 8, 64},
        {"glyph-count", OPTION_INT, &s->data.glyph_count, "number of generated glyph images", NULL, 20, 1000000},
        {"glyph-noise", OPTION_FLOAT, &s->data.glyph_noise, "std of the pixel noise of the glyphs", NULL, 0, 1},
        {"holdout", OPTION_STRING, &s->holdout, "classes kept out of training (anomalies): shapes, digits, none, or a list",
         NULL, 0, 0},
        {"validation", OPTION_FLOAT, &s->validation_fraction, "fraction of the images kept for validation", NULL, 0.001, 0.9},
        {"eval-every", OPTION_LONG, &s->eval_every, "steps between validation passes", NULL, 1, 1e9},
        {"eval-images", OPTION_INT, &s->eval_images, "validation images per pass", NULL, 1, 10000000},
        {"no-pca", OPTION_FLAG, &s->no_pca, "skip the PCA baseline at the end of training", NULL, 0, 0},
        {"percentile", OPTION_FLOAT, &s->percentile, "anomaly: threshold at this percentile of validation errors", NULL, 0, 100},
        {"index", OPTION_INT, &s->index, "reconstruct/denoise/encode: dataset image (-1: --input, or all for encode)",
         NULL, -1, 1e9},
        {"samples", OPTION_INT, &s->samples, "sample: number of draws from the prior", NULL, 1, 10000},
        {"write", OPTION_STRING, &s->write, "output file (encode) or file prefix (reconstruct, denoise, sample)", NULL, 0, 0},
        {"config", OPTION_CHOICE, &s->bench_config, "bench: mnist (784-256-32) or small (64-32-2)", "mnist|small", 0, 0},
        {"bench-steps", OPTION_INT, &s->bench_steps, "bench: timed steps per repetition", NULL, 1, 1000000},
        {"repeats", OPTION_INT, &s->bench_repeats, "bench: repetitions (the best is reported)", NULL, 1, 1000},
    };
    memcpy(options + COMMON_OPTION_COUNT, mine, sizeof mine);
}

/* The options each command reads: its --help lists only these, and any
 * other is refused (exit 2) rather than silently ignored.  The commands on
 * a checkpoint take --model and --data because those name the default run
 * directory (runs/autoencoder-<model>-<glyphs|data>), and the image options
 * because they read the images again, with the checkpoint's settings unless
 * given. */
#define ON_CHECKPOINT "out", "checkpoint", "model", "data", "seed", "threads"
#define IMAGES "labels", "glyph-size", "glyph-count", "glyph-noise"
#define SPLIT "holdout", "validation"
#define ARCHITECTURE "model", "layers", "activation", "output", "tied", "noise", "noise-level", "beta", "l1"
static const char *const TRAIN_OPTIONS[] = {"task", "data", "out", "checkpoint", "checkpoint-every", "steps",
                                            "batch", "lr", "seed", "threads", "resume", "plot-term", "quiet",
                                            "check-numerics", ARCHITECTURE, "beta-warmup", IMAGES, SPLIT,
                                            "eval-every", "eval-images", "no-pca", NULL};
static const char *const EVAL_OPTIONS[] = {ON_CHECKPOINT, IMAGES, SPLIT, "batch", NULL};
static const char *const PLOT_OPTIONS[] = {ON_CHECKPOINT, IMAGES, SPLIT, "plot-term", "noise", "noise-level", NULL};
static const char *const ENCODE_OPTIONS[] = {ON_CHECKPOINT, IMAGES, "input", "index", "batch", "write", NULL};
static const char *const RECONSTRUCT_OPTIONS[] = {ON_CHECKPOINT, IMAGES, "input", "index", "write", NULL};
static const char *const DENOISE_OPTIONS[] = {ON_CHECKPOINT, IMAGES, "input", "index", "write", "noise",
                                              "noise-level", NULL};
static const char *const SAMPLE_OPTIONS[] = {ON_CHECKPOINT, "plot-term", "samples", "write", NULL};
static const char *const ANOMALY_OPTIONS[] = {ON_CHECKPOINT, IMAGES, SPLIT, "input", "batch", "plot-term",
                                              "percentile", NULL};
static const char *const BENCH_OPTIONS[] = {"batch", "seed", "threads", "config", "bench-steps", "repeats", NULL};
static const char *const PARITY_OPTIONS[] = {ARCHITECTURE, "out", "batch", "seed", "threads", NULL};

/* A command: its name, what it does (one line of `autoencoder --help`, and
 * the head of its own --help), the options it reads, whether it reads a
 * checkpoint, and what runs it (NULL for train, which takes its options
 * too, to write them to config.txt). */
typedef struct {
    const char *name;
    const char *summary;
    const char *const *options;
    bool on_checkpoint;
    int (*run)(AutoencoderSettings *s);
} Command;

/* On a checkpoint, --model and --data mean something else than in
 * training: their help says what.  (sample reads no images: for it --data
 * only names the run directory.) */
static void describe_for_checkpoint(Option *options, int count) {
    bool reads_images = false;
    for (int i = 0; i < count; i++) reads_images |= strcmp(options[i].name, "labels") == 0;
    for (int i = 0; i < count; i++) {
        if (strcmp(options[i].name, "model") == 0)
            options[i].help = "names the default run directory runs/autoencoder-<model>-...; the architecture "
                              "is the checkpoint's";
        if (strcmp(options[i].name, "data") == 0)
            options[i].help = reads_images ? "images instead of the checkpoint's (IDX, CSV or PGM); also names the "
                                             "default run directory runs/autoencoder-<model>-data"
                                           : "names the default run directory runs/autoencoder-<model>-data";
    }
}

/* The model config from the parsed choices; exits 2 on a bad --layers. */
static void settings_finish(AutoencoderSettings *s, const char *command) {
    Error err;
    if (!autoencoder_parse_layers(s->layers, &s->model, &err)) {
        fprintf(stderr, "autoencoder %s: %s\n", command, err.message);
        exit(EXIT_USAGE_ERROR);
    }
    s->model.kind = (AutoencoderKind)s->kind;
    s->model.activation = (AutoencoderActivation)s->activation;
    s->model.output = (AutoencoderOutput)s->output;
    s->model.noise = (AutoencoderNoise)s->noise;
    s->model.tied = s->tied;
    s->model.noise_level = s->noise_level;
    s->model.beta = s->beta;
    s->model.beta_warmup = s->beta_warmup;
    s->model.l1 = s->l1;
    s->data.labels_path = s->labels;
    s->data.data_path = s->common.data;
    s->data.seed = s->common.seed;
    if (strcmp(s->common.task, "glyphs") != 0) {
        fprintf(stderr, "autoencoder %s: --task %s: the built-in task is 'glyphs' (use --data for files)\n", command,
                s->common.task);
        exit(EXIT_USAGE_ERROR);
    }
    if (s->common.out == NULL) {
        static const char *const kinds[] = {"ae", "dae", "vae"};
        snprintf(s->out_buffer, sizeof s->out_buffer, "runs/autoencoder-%s-%s", kinds[s->kind],
                 s->common.data ? "data" : "glyphs");
        s->common.out = s->out_buffer;
    }
}

/* Parses the options of `command` into s, and returns them (options, the
 * count) for config.txt.  For the commands on a checkpoint, the
 * checkpoint's data settings sit between the defaults and the flags. */
static int parse_settings(AutoencoderSettings *s, int argc, char **argv, const Command *command, Option *options) {
    settings_defaults(s);
    Option all[OPTION_COUNT];
    options_table(s, all);
    int count = options_select(all, OPTION_COUNT, command->options, options);
    if (command->on_checkpoint) describe_for_checkpoint(options, count);
    char usage[512];
    snprintf(usage, sizeof usage, "autoencoder %s [options]\n%s", command->name, command->summary);
    options_parse_or_exit(argc, argv, 2, options, count, usage);
    settings_finish(s, command->name);
    if (!command->on_checkpoint) return count;
    char path[1200];
    snprintf(path, sizeof path, "%s", autoencoder_checkpoint_path(s));
    Metadata meta;
    Error err;
    if (!checkpoint_read_metadata(path, &meta, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    /* Fresh defaults, the checkpoint's data settings, then the flags again
     * (the options point into s, which stays where it is). */
    char out[1024];
    snprintf(out, sizeof out, "%s", s->common.out);
    settings_defaults(s);
    static char data_path[1024], labels_path[1024], holdout[512]; /* outlive meta */
    const char *value;
    if ((value = metadata_get(&meta, "data")) && value[0]) s->common.data = strcpy(data_path, value);
    if ((value = metadata_get(&meta, "labels")) && value[0]) s->labels = strcpy(labels_path, value);
    if ((value = metadata_get(&meta, "holdout"))) s->holdout = strcpy(holdout, value);
    long number;
    float real;
    if (metadata_get_int(&meta, "glyph_size", &number, &err)) s->data.glyph_size = (int)number;
    if (metadata_get_int(&meta, "glyph_count", &number, &err)) s->data.glyph_count = (int)number;
    if (metadata_get_int(&meta, "seed", &number, &err)) s->common.seed = number;
    if (metadata_get_float(&meta, "glyph_noise", &real, &err)) s->data.glyph_noise = real;
    if (metadata_get_float(&meta, "validation_fraction", &real, &err)) s->validation_fraction = real;
    if (metadata_get_float(&meta, "noise_level", &real, &err)) s->noise_level = real;
    if ((value = metadata_get(&meta, "noise"))) s->noise = strcmp(value, "masking") == 0 ? NOISE_MASKING : NOISE_GAUSSIAN;
    metadata_free(&meta);
    options_parse_or_exit(argc, argv, 2, options, count, usage);
    if (s->common.out == NULL) s->common.out = strcpy(s->out_buffer, out);
    settings_finish(s, command->name);
    return count;
}

/* ==== Commands on a checkpoint ====================================================== */

typedef struct {
    Autoencoder model;
    AutoencoderData data;
    Graph g;
    int D, Z;
} Loaded;

/* Loads model and data; the data must fit the model's input. */
static void load_all(AutoencoderSettings *s, Loaded *l, bool need_data) {
    threads_set(s->common.threads);
    Metadata meta;
    autoencoder_load(autoencoder_checkpoint_path(s), &l->model, &meta);
    metadata_free(&meta);
    l->D = autoencoder_input_size(&l->model.config);
    l->Z = autoencoder_code_size(&l->model.config);
    graph_init(&l->g, 8 << 20, 256);
    memset(&l->data, 0, sizeof l->data);
    if (!need_data) return;
    autoencoder_data_prepare(s, &l->data);
    int D = l->data.data.height * l->data.data.width;
    if (D != l->D) {
        fprintf(stderr, "tinyzoo: the model takes %d pixels but the images have %d x %d = %d\n", l->D,
                l->data.data.height, l->data.data.width, D);
        exit(EXIT_RUNTIME_ERROR);
    }
}

/* The images alone, for the commands that name them by their index in the
 * data set (encode, reconstruct, denoise): they need no split, so they read
 * no --holdout or --validation. */
static void load_images(const AutoencoderSettings *s, Loaded *l) {
    Error err;
    if (!autoencoder_load_dataset(&s->data, &l->data.data, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
}

static void loaded_free(Loaded *l) {
    autoencoder_data_free(&l->data);
    graph_free(&l->g);
    autoencoder_free(&l->model);
}

static int command_eval(AutoencoderSettings *s) {
    Loaded l;
    load_all(s, &l, true);
    AutoencoderEval e = autoencoder_evaluate(&l.g, &l.model, &l.data.data, l.data.split.validation,
                                             l.data.split.validation_count, s->common.batch, s->common.seed);
    printf("eval: images=%d val_loss=%.4f val_recon=%.4f val_kl=%.4f val_squared_error=%.4f\n",
           l.data.split.validation_count, e.loss, e.recon, e.kl, e.squared);
    loaded_free(&l);
    return 0;
}

static int command_plot(AutoencoderSettings *s) {
    Loaded l;
    load_all(s, &l, true);
    PlotTarget target = {.dir = s->common.out, .term = (PlotTerm)s->common.plot_term};
    Error err;
    if (!make_directory(s->common.out, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    if (!autoencoder_plot_curves(&target, &err)) fprintf(stderr, "tinyzoo: no loss curves: %s\n", err.message);
    const AutoencoderSplit *split = &l.data.split;
    int columns = split->validation_count < 10 ? split->validation_count : 10;
    if (columns > 0)
        autoencoder_plot_reconstructions(&l.g, &l.model, &l.data.data, split->validation, columns,
                                         (AutoencoderNoise)s->noise, s->noise_level, &target, s->common.seed);
    int scatter = split->validation_count < 2000 ? split->validation_count : 2000;
    if (scatter > 1) autoencoder_plot_latent(&l.g, &l.model, &l.data.data, split->validation, scatter, &target, s->common.seed);
    if (l.model.config.kind == AUTOENCODER_VAE) {
        autoencoder_plot_manifold(&l.g, &l.model, l.data.data.height, l.data.data.width, &target);
        Rng rng;
        rng_seed(&rng, (uint64_t)s->common.seed, 40);
        autoencoder_plot_samples(&l.g, &l.model, l.data.data.height, l.data.data.width, 40, &target, "samples", &rng,
                                 NULL);
    }
    printf("plots written to %s\n", s->common.out);
    loaded_free(&l);
    return 0;
}

/* The image to work on: --input PGM, or dataset image --index.  (H, W)
 * must match the model.  Returns a malloc'd (D) buffer. */
static float *input_image(AutoencoderSettings *s, Loaded *l, const char *command, int *height, int *width) {
    Error err;
    float *pixels;
    if (s->common.input != NULL && s->index >= 0) {
        fprintf(stderr, "autoencoder %s: --input and --index %d both name the image; give one of them\n", command,
                s->index);
        exit(EXIT_USAGE_ERROR);
    }
    if (s->common.input != NULL) {
        if (!autoencoder_read_pgm(s->common.input, &pixels, height, width, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
        if (*height * *width != l->D) {
            fprintf(stderr, "tinyzoo: %s: %d x %d = %d pixels; the model takes %d\n", s->common.input, *height, *width,
                    *height * *width, l->D);
            free(pixels);
            exit(EXIT_RUNTIME_ERROR);
        }
        return pixels;
    }
    if (s->index < 0) {
        fprintf(stderr, "autoencoder %s: give --input FILE.pgm or --index N\n", command);
        exit(EXIT_USAGE_ERROR);
    }
    load_images(s, l);
    const AutoencoderDataset *d = &l->data.data;
    if (s->index >= d->count || d->height * d->width != l->D) {
        fprintf(stderr, "tinyzoo: --index %d: the data has %d images of %d pixels (the model takes %d)\n", s->index,
                d->count, d->height * d->width, l->D);
        exit(EXIT_RUNTIME_ERROR);
    }
    pixels = xmalloc(sizeof(float) * (size_t)l->D);
    autoencoder_gather(d, &s->index, 1, pixels);
    *height = d->height, *width = d->width;
    return pixels;
}

/* Reconstruction of one image (D) through the code (the vae's mean). */
static void reconstruct_one(Loaded *l, const float *image, float *out) {
    graph_reset(&l->g);
    l->g.no_grad = true;
    Tensor *x = tensor_of(&l->g, false, 2, 1, l->D); /* (1, D) */
    memcpy(x->data, image, sizeof(float) * (size_t)l->D);
    Tensor *logits = autoencoder_decode(&l->g, &l->model, autoencoder_encode(&l->g, &l->model, x, NULL));
    Tensor *y = l->model.config.output == OUTPUT_SIGMOID_BCE ? op_sigmoid(&l->g, logits) : logits;
    memcpy(out, y->data, sizeof(float) * (size_t)l->D);
}

/* <prefix><suffix>.pgm and .png, 8x enlarged in the PNG. */
static void write_image_pair(const char *prefix, const char *suffix, const float *pixels, int height, int width) {
    char path[2048];
    Error err;
    snprintf(path, sizeof path, "%s%s.pgm", prefix, suffix);
    if (!autoencoder_write_pgm(path, pixels, height, width, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    snprintf(path, sizeof path, "%s%s.png", prefix, suffix);
    if (!autoencoder_write_png(path, pixels, height, width, 8, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    printf("wrote %s%s.pgm and .png\n", prefix, suffix);
}

static const char *output_prefix(AutoencoderSettings *s, const char *name) {
    static char prefix[1200];
    if (s->write != NULL) return s->write;
    Error err;
    if (!make_directory(s->common.out, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    snprintf(prefix, sizeof prefix, "%s/%s", s->common.out, name);
    return prefix;
}

static double squared_error(const float *a, const float *b, int count) {
    double total = 0;
    for (int i = 0; i < count; i++) total += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return total;
}

static int reconstruct_or_denoise(AutoencoderSettings *s, bool denoise) {
    Loaded l;
    load_all(s, &l, false);
    int height, width;
    float *image = input_image(s, &l, denoise ? "denoise" : "reconstruct", &height, &width);
    float *noisy = xmalloc(sizeof(float) * (size_t)l.D), *out = xmalloc(sizeof(float) * (size_t)l.D);
    const char *prefix = output_prefix(s, denoise ? "denoise" : "reconstruction");
    if (denoise) {
        Rng rng;
        rng_seed(&rng, (uint64_t)s->common.seed, 70);
        autoencoder_corrupt((AutoencoderNoise)s->noise, s->noise_level, image, noisy, l.D, &rng);
        reconstruct_one(&l, noisy, out);
        write_image_pair(prefix, "-noisy", noisy, height, width);
        write_image_pair(prefix, "-denoised", out, height, width);
        printf("squared error to the clean image: noisy %.4f, denoised %.4f\n", squared_error(noisy, image, l.D),
               squared_error(out, image, l.D));
    } else {
        reconstruct_one(&l, image, out);
        write_image_pair(prefix, "", out, height, width);
        printf("squared error: %.4f\n", squared_error(out, image, l.D));
    }
    free(image), free(noisy), free(out);
    loaded_free(&l);
    return 0;
}

static int command_reconstruct(AutoencoderSettings *s) { return reconstruct_or_denoise(s, false); }
static int command_denoise(AutoencoderSettings *s) { return reconstruct_or_denoise(s, true); }

/* One row of encode's CSV: index,label,z1,...,zZ.  An index or a label of
 * -1 (not known) is written "-": a number there would read as data. */
static void write_code_row(FILE *out, int index, int label, const float *code, int Z) {
    if (index >= 0) fprintf(out, "%d,", index);
    else fputs("-,", out);
    if (label >= 0) fprintf(out, "%d", label);
    else fputc('-', out);
    for (int k = 0; k < Z; k++) fprintf(out, ",%.6g", (double)code[k]);
    fputc('\n', out);
}

static int command_encode(AutoencoderSettings *s) {
    Loaded l;
    load_all(s, &l, false);
    /* An --input image is in no data set: it has neither index nor label
     * (labels stays NULL).  Images of a data set have both, but the label
     * may be -1 (IDX images without --labels, a PGM as --data). */
    int first = 0, count = 1;
    float *images;
    const int *labels = NULL;
    if (s->common.input != NULL || s->index >= 0) {
        int height, width;
        images = input_image(s, &l, "encode", &height, &width);
        first = s->index;
        if (s->index >= 0) labels = &l.data.data.labels[s->index];
    } else {
        load_images(s, &l);
        if (l.data.data.height * l.data.data.width != l.D) {
            fprintf(stderr, "tinyzoo: the model takes %d pixels, the data has %d\n", l.D,
                    l.data.data.height * l.data.data.width);
            return EXIT_RUNTIME_ERROR;
        }
        count = l.data.data.count;
        images = xmalloc(sizeof(float) * (size_t)count * l.D);
        memcpy(images, l.data.data.images, sizeof(float) * (size_t)count * l.D);
        labels = l.data.data.labels;
    }
    /* Opened once the images are read: an image that fails leaves no .tmp. */
    FILE *out = stdout;
    char temporary[2100];
    if (s->write != NULL) {
        snprintf(temporary, sizeof temporary, "%s.tmp", s->write);
        out = fopen(temporary, "w");
        if (out == NULL) {
            fprintf(stderr, "tinyzoo: %s: cannot write\n", temporary);
            return EXIT_RUNTIME_ERROR;
        }
    }
    fprintf(out, "index,label");
    for (int k = 0; k < l.Z; k++) fprintf(out, ",z%d", k + 1);
    fputc('\n', out);
    for (int start = 0; start < count; start += s->common.batch) {
        int B = count - start < s->common.batch ? count - start : s->common.batch;
        graph_reset(&l.g);
        l.g.no_grad = true;
        Tensor *x = tensor_of(&l.g, false, 2, B, l.D); /* (B, D) */
        memcpy(x->data, images + (size_t)start * l.D, sizeof(float) * (size_t)B * l.D);
        Tensor *mu = autoencoder_encode(&l.g, &l.model, x, NULL); /* (B, Z) */
        for (int b = 0; b < B; b++)
            write_code_row(out, labels ? first + start + b : -1, labels ? labels[start + b] : -1,
                           mu->data + (size_t)b * l.Z, l.Z);
    }
    if (out != stdout) {
        bool ok = fclose(out) == 0 && rename(temporary, s->write) == 0;
        if (!ok) {
            fprintf(stderr, "tinyzoo: %s: cannot write\n", s->write);
            return EXIT_RUNTIME_ERROR;
        }
        fprintf(stderr, "wrote %d codes to %s\n", count, s->write);
    }
    free(images);
    loaded_free(&l);
    return 0;
}

static int command_sample(AutoencoderSettings *s) {
    Loaded l;
    load_all(s, &l, false);
    if (l.model.config.kind != AUTOENCODER_VAE) {
        fprintf(stderr, "tinyzoo: sample needs a vae checkpoint; %s holds an %s\n", autoencoder_checkpoint_path(s),
                l.model.config.kind == AUTOENCODER_AE ? "ae" : "dae");
        return EXIT_RUNTIME_ERROR;
    }
    int side = 1;
    while (side * side < l.D) side++;
    int height = side * side == l.D ? side : 1, width = side * side == l.D ? side : l.D;
    Rng rng;
    rng_seed(&rng, (uint64_t)s->common.seed, 80);
    float *pixels = xmalloc(sizeof(float) * (size_t)s->samples * l.D);
    Error err;
    if (!make_directory(s->common.out, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    /* A grid of its own: train and plot draw <out>/samples.png, which this
     * must not overwrite (it would no longer be the run's figure). */
    PlotTarget target = {.dir = s->common.out, .term = (PlotTerm)s->common.plot_term};
    autoencoder_plot_samples(&l.g, &l.model, height, width, s->samples, &target, "sample-grid", &rng, pixels);
    const char *prefix = output_prefix(s, "sample");
    int shown = s->samples < 8 ? s->samples : 8;
    for (int i = 0; i < shown; i++) {
        char suffix[32];
        snprintf(suffix, sizeof suffix, "-%d", i);
        write_image_pair(prefix, suffix, pixels + (size_t)i * l.D, height, width);
    }
    printf("%d samples drawn; the grid is %s/sample-grid.{dat,gp%s}\n", s->samples, s->common.out,
           target.term == PLOT_TERM_PNG ? ",png" : "");
    free(pixels);
    loaded_free(&l);
    return 0;
}

/* ==== Anomaly detection =============================================================== */

static int compare_floats(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Linear interpolation between order statistics, as numpy's default. */
static float percentile_of(const float *values, int count, float percent) {
    float *sorted = xmalloc(sizeof(float) * (size_t)count);
    memcpy(sorted, values, sizeof(float) * (size_t)count);
    qsort(sorted, (size_t)count, sizeof(float), compare_floats);
    double position = (double)percent / 100.0 * (count - 1);
    int low = (int)floor(position);
    int high = low + 1 < count ? low + 1 : low;
    float result = (float)(sorted[low] + (position - low) * (sorted[high] - sorted[low]));
    free(sorted);
    return result;
}

/* Histogram of scores as a step curve (bin centres, fraction per bin). */
static void histogram(const float *scores, int count, float low, float high, int bins, float *x, float *y) {
    for (int b = 0; b < bins; b++) x[b] = low + (high - low) * ((float)b + 0.5f) / (float)bins, y[b] = 0;
    for (int i = 0; i < count; i++) {
        int b = (int)((scores[i] - low) / (high - low) * (float)bins);
        b = b < 0 ? 0 : b >= bins ? bins - 1 : b;
        y[b] += 1.0f / (float)count;
    }
}

/* Scores of the three sets: calibration (one half of the validation images,
 * for the threshold), normal (the other half) and anomalous (held out). */
typedef struct {
    float *calibration, *normal, *anomalous;
    int calibration_count, normal_count, anomalous_count;
    float threshold;
} AnomalyScores;

/* anomaly.csv: every scored test image, whether it is flagged and whether it
 * is an anomaly. */
static void write_anomaly_csv(const char *dir, const Loaded *l, const AnomalyScores *a) {
    const AutoencoderSplit *split = &l->data.split;
    size_t capacity = (size_t)(a->normal_count + a->anomalous_count + 1) * 96, used = 0;
    char *csv = xmalloc(capacity);
    used += (size_t)snprintf(csv, capacity, "index,class,score,flagged,anomalous\n");
    for (int set = 0; set < 2; set++) {
        const int *indices = set == 0 ? split->validation + a->calibration_count : split->holdout;
        const float *scores = set == 0 ? a->normal : a->anomalous;
        for (int i = 0; i < (set == 0 ? a->normal_count : a->anomalous_count); i++) {
            int label = l->data.data.labels[indices[i]];
            used += (size_t)snprintf(csv + used, capacity - used, "%d,%s,%.6g,%d,%d\n", indices[i],
                                     label >= 0 ? l->data.data.class_names[label] : "?", (double)scores[i],
                                     scores[i] > a->threshold, set);
        }
    }
    char path[2048];
    Error err;
    snprintf(path, sizeof path, "%s/anomaly.csv", dir);
    if (!file_write_atomic(path, csv, used, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    free(csv);
}

/* roc.png, and anomaly_histogram.png with the threshold.  Returns the AUC. */
static double plot_anomaly(const PlotTarget *target, const AnomalyScores *a, float percentile) {
    int points = a->normal_count + a->anomalous_count + 1;
    float *fpr = xmalloc(sizeof(float) * (size_t)points), *tpr = xmalloc(sizeof(float) * (size_t)points);
    double auc = autoencoder_roc(a->normal, a->normal_count, a->anomalous, a->anomalous_count, fpr, tpr);
    char title[160];
    snprintf(title, sizeof title, "ROC of reconstruction error as anomaly score (AUC %.3f)", auc);
    float diagonal[2] = {0, 1};
    PlotSeries roc[2] = {{.name = "autoencoder", .x = fpr, .y = tpr, .count = points},
                         {.name = "chance", .x = diagonal, .y = diagonal, .count = 2}};
    PlotAxes roc_axes = {.title = title, .x_label = "false positive rate (normal images flagged)",
                         .y_label = "true positive rate (anomalies flagged)"};
    Error err;
    if (!plot_lines(target, "roc", &roc_axes, roc, 2, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);

    enum { BINS = 40 };
    float high = fmaxf(percentile_of(a->anomalous, a->anomalous_count, 99.0f),
                       percentile_of(a->normal, a->normal_count, 99.0f));
    float hx[2][BINS], hy[2][BINS], tx[2] = {a->threshold, a->threshold}, ty[2] = {0, 0};
    histogram(a->normal, a->normal_count, 0, high, BINS, hx[0], hy[0]);
    histogram(a->anomalous, a->anomalous_count, 0, high, BINS, hx[1], hy[1]);
    for (int b = 0; b < BINS; b++) ty[1] = fmaxf(ty[1], fmaxf(hy[0][b], hy[1][b]));
    char threshold_name[96];
    snprintf(threshold_name, sizeof threshold_name, "threshold (%.0fth percentile of validation)", (double)percentile);
    PlotSeries hist[3] = {{.name = "normal (held-in classes)", .x = hx[0], .y = hy[0], .count = BINS},
                          {.name = "anomalous (held-out classes)", .x = hx[1], .y = hy[1], .count = BINS},
                          {.name = threshold_name, .x = tx, .y = ty, .count = 2}};
    PlotAxes hist_axes = {.title = "Reconstruction error per image (last bin: everything above)",
                          .x_label = "squared reconstruction error", .y_label = "fraction of images"};
    if (!plot_lines(target, "anomaly_histogram", &hist_axes, hist, 3, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    free(fpr), free(tpr);
    return auc;
}

/* How many validation images set the anomaly threshold: the first half. */
static int calibration_count(const AutoencoderSplit *split) { return split->validation_count / 2; }

/* The threshold of both anomaly modes: the --percentile of the errors of
 * the first half of the validation images (the calibration half,
 * calibration_count of them; the ROC mode tests on the other half).
 * scores (calibration_count) receives those errors. */
static float calibration_threshold(const AutoencoderSettings *s, Loaded *l, float *scores) {
    const AutoencoderSplit *split = &l->data.split;
    int count = calibration_count(split);
    autoencoder_scores(&l->g, &l->model, &l->data.data, split->validation, count, s->common.batch, scores);
    return percentile_of(scores, count, s->percentile);
}

/* anomaly --input image.pgm: one image's score against the same threshold
 * as the ROC mode's. */
static int anomaly_of_input(AutoencoderSettings *s, Loaded *l) {
    const AutoencoderSplit *split = &l->data.split;
    if (split->validation_count < 2) {
        fprintf(stderr, "tinyzoo: anomaly --input needs validation images to set its threshold; this "
                        "run has %d\n", split->validation_count);
        loaded_free(l);
        return EXIT_RUNTIME_ERROR;
    }
    float *scores = xmalloc(sizeof(float) * (size_t)calibration_count(split));
    float threshold = calibration_threshold(s, l, scores);
    int height, width;
    float *image = input_image(s, l, "anomaly", &height, &width);
    float *rebuilt = xmalloc(sizeof(float) * (size_t)l->D);
    reconstruct_one(l, image, rebuilt);
    double score = squared_error(image, rebuilt, l->D);
    printf("anomaly: input=%s score=%.4f threshold=%.4f anomalous=%s\n", s->common.input, score, (double)threshold,
           score > threshold ? "yes" : "no");
    free(scores), free(image), free(rebuilt);
    loaded_free(l);
    return 0;
}

static int command_anomaly(AutoencoderSettings *s) {
    Loaded l;
    load_all(s, &l, true);
    if (s->common.input != NULL) return anomaly_of_input(s, &l);
    const AutoencoderSplit *split = &l.data.split;
    if (split->holdout_count == 0 || split->validation_count < 4) {
        fprintf(stderr, "tinyzoo: anomaly needs held-out classes and validation images: train with --holdout "
                        "(e.g. --holdout shapes); here %d held out, %d validation\n", split->holdout_count,
                split->validation_count);
        loaded_free(&l);
        return EXIT_RUNTIME_ERROR;
    }
    /* The threshold comes from one half of the validation images; the other
     * half are the normal test images, so the false-positive rate is
     * measured on images the threshold never saw. */
    AnomalyScores a = {.calibration_count = calibration_count(split), .anomalous_count = split->holdout_count};
    a.normal_count = split->validation_count - a.calibration_count;
    a.calibration = xmalloc(sizeof(float) * (size_t)a.calibration_count);
    a.normal = xmalloc(sizeof(float) * (size_t)a.normal_count);
    a.anomalous = xmalloc(sizeof(float) * (size_t)a.anomalous_count);
    const AutoencoderDataset *d = &l.data.data;
    a.threshold = calibration_threshold(s, &l, a.calibration);
    autoencoder_scores(&l.g, &l.model, d, split->validation + a.calibration_count, a.normal_count, s->common.batch,
                       a.normal);
    autoencoder_scores(&l.g, &l.model, d, split->holdout, a.anomalous_count, s->common.batch, a.anomalous);

    Error err;
    if (!make_directory(s->common.out, &err)) error_exit(&err, EXIT_RUNTIME_ERROR);
    write_anomaly_csv(s->common.out, &l, &a);
    PlotTarget target = {.dir = s->common.out, .term = (PlotTerm)s->common.plot_term};
    double auc = plot_anomaly(&target, &a, s->percentile);
    int normal_flagged = 0, anomalous_flagged = 0;
    for (int i = 0; i < a.normal_count; i++) normal_flagged += a.normal[i] > a.threshold;
    for (int i = 0; i < a.anomalous_count; i++) anomalous_flagged += a.anomalous[i] > a.threshold;
    printf("anomaly: threshold=%.4f auc=%.4f normal_flagged=%.4f anomalous_flagged=%.4f normal=%d anomalous=%d\n",
           (double)a.threshold, auc, (double)normal_flagged / a.normal_count,
           (double)anomalous_flagged / a.anomalous_count, a.normal_count, a.anomalous_count);
    free(a.calibration), free(a.normal), free(a.anomalous);
    loaded_free(&l);
    return 0;
}

/* ==== Main ================================================================================ */

static const Command COMMANDS[] = {
    {"train", "train --model ae|dae|vae; writes <out>/model.safetensors, metrics.csv, config.txt, plots",
     TRAIN_OPTIONS, false, NULL},
    {"eval", "validation losses of a checkpoint", EVAL_OPTIONS, true, command_eval},
    {"plot", "redraw the plots of a checkpoint", PLOT_OPTIONS, true, command_plot},
    {"encode", "print (or --write) CSV index,label,z1,... of --input PGM (index, label: -), of --index N, or of all",
     ENCODE_OPTIONS, true, command_encode},
    {"reconstruct", "--input PGM or --index N: write <prefix>.pgm and .png", RECONSTRUCT_OPTIONS, true,
     command_reconstruct},
    {"denoise", "corrupt then reconstruct: <prefix>-noisy and <prefix>-denoised", DENOISE_OPTIONS, true,
     command_denoise},
    {"sample", "vae: decode --samples draws from the prior: <out>/sample-grid.png, and <prefix>-<i>.pgm/.png",
     SAMPLE_OPTIONS, true, command_sample},
    {"anomaly", "score images by reconstruction error, ROC against the --holdout classes (or --input: one image)",
     ANOMALY_OPTIONS, true, command_anomaly},
    {"bench", "training speed: --config mnist|small --threads N", BENCH_OPTIONS, false, autoencoder_bench},
    {"parity", "dump weights, a batch, loss and gradients for tests/parity/autoencoder_parity.py", PARITY_OPTIONS,
     false, autoencoder_parity},
};
enum { COMMAND_COUNT = sizeof COMMANDS / sizeof COMMANDS[0] };

static void print_commands(FILE *out) {
    fputs("usage: autoencoder <command> [options]\n"
          "Autoencoders (ae, dae, vae) on generated glyphs or MNIST-style IDX files.\n"
          "commands:\n", out);
    for (int c = 0; c < COMMAND_COUNT; c++) fprintf(out, "  %-12s %s\n", COMMANDS[c].name, COMMANDS[c].summary);
    fputs("`autoencoder <command> --help` lists the options that command reads, with their defaults.\n", out);
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_commands(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE_ERROR : 0;
    }
    for (int c = 0; c < COMMAND_COUNT; c++) {
        if (strcmp(argv[1], COMMANDS[c].name) != 0) continue;
        AutoencoderSettings s;
        Option options[OPTION_COUNT];
        int count = parse_settings(&s, argc, argv, &COMMANDS[c], options);
        return COMMANDS[c].run != NULL ? COMMANDS[c].run(&s) : autoencoder_train(&s, options, count);
    }
    fprintf(stderr, "autoencoder: unknown command '%s' (see --help)\n", argv[1]);
    return EXIT_USAGE_ERROR;
}
