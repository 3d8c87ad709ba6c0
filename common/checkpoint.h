/* common/checkpoint.h: saving and loading models in the safetensors format.
 *
 * Layout of a .safetensors file (https://huggingface.co/docs/safetensors):
 *   8 bytes     N, the header length, unsigned little-endian
 *   N bytes     JSON: {"__metadata__": {"key": "value", ...},
 *                      "name": {"dtype": "F32", "shape": [..],
 *                               "data_offsets": [begin, end]}, ...}
 *   the rest    the tensors' bytes; offsets are relative to this point
 * so the weights open in Python with numpy or the safetensors package.
 *
 * tinyzoo writes every parameter under its name, and optionally the
 * optimizer's moments as "optimizer.moment1.<name>" and
 * "optimizer.moment2.<name>" with "optimizer.step" in the metadata, so that
 * training resumes exactly.  Metadata values are strings (the format's rule):
 * architecture, hyperparameters, vocabulary, step, RNG state.
 *
 * Saving is atomic: write "<path>.tmp", fsync, rename over <path>.  A crash
 * mid-save leaves the previous checkpoint intact.
 * Loading validates everything before it copies anything into the model.
 */
#ifndef TINYZOO_CHECKPOINT_H
#define TINYZOO_CHECKPOINT_H

#include <stdbool.h>

#include "nn.h"
#include "rng.h"
#include "util.h"

/* String key/value pairs for "__metadata__". */
typedef struct {
    char **keys;
    char **values;
    int count;
    int capacity;
} Metadata;

void metadata_init(Metadata *meta);
void metadata_free(Metadata *meta);
/* Sets (or replaces) key = value; both are copied. */
void metadata_set(Metadata *meta, const char *key, const char *value);
void metadata_set_int(Metadata *meta, const char *key, long value);
/* Written with "%.9g" so a float survives the round trip exactly. */
void metadata_set_float(Metadata *meta, const char *key, float value);
/* Written with "%.17g": a double survives the round trip exactly (for sums
 * a resumed run must continue, such as the training loss since the last
 * metrics row). */
void metadata_set_double(Metadata *meta, const char *key, double value);
/* The value, or NULL when absent. */
const char *metadata_get(const Metadata *meta, const char *key);
/* Parses the value; false with an Error naming the key when absent or bad. */
bool metadata_get_int(const Metadata *meta, const char *key, long *value, Error *err);
bool metadata_get_float(const Metadata *meta, const char *key, float *value, Error *err);
bool metadata_get_double(const Metadata *meta, const char *key, double *value, Error *err);
/* An Rng as "state:increment" in hex, and back. */
void metadata_set_rng(Metadata *meta, const char *key, const Rng *rng);
bool metadata_get_rng(const Metadata *meta, const char *key, Rng *rng, Error *err);

/* Largest header accepted: far above any model here, far below memory. */
enum { CHECKPOINT_MAX_HEADER_BYTES = 16 << 20 };

/* Writes every tensor of `ps`, the optimizer state when `opt` is not NULL,
 * and `meta` (which should contain "architecture").  Refuses (false, nothing
 * written) when a parameter or moment holds NaN or Inf: a diverged run
 * keeps its last good checkpoint. */
bool checkpoint_save(const char *path, const ParamSet *ps, const Optimizer *opt,
                     const Metadata *meta, Error *err);

/* Reads `path` into the already-declared and allocated `ps`:
 *   - the header length fits in the file, the JSON is well formed;
 *   - every dtype is F32, offsets lie in the data and do not overlap;
 *   - metadata "architecture" equals expected_architecture (when not NULL);
 *   - every tensor of ps is present with the same shape.
 * Optimizer moments are loaded when `opt` is not NULL (an error if absent).
 * `meta` (may be NULL) receives the metadata.  On any error nothing in ps
 * or opt has been changed. */
/* `meta` is initialised here (pass an empty or uninitialised one), and is
 * left empty on failure; metadata_free is always safe afterwards. */
bool checkpoint_load(const char *path, ParamSet *ps, Optimizer *opt,
                     const char *expected_architecture, Metadata *meta, Error *err);
/* The same checks and copies for a whole file already in memory,
 * bytes[0..size) (checkpoint_load reads the file, then calls this); `path`
 * only names the input in errors. */
bool checkpoint_load_from_memory(const unsigned char *bytes, size_t size, const char *path,
                                 ParamSet *ps, Optimizer *opt, const char *expected_architecture,
                                 Metadata *meta, Error *err);

/* Reads only the metadata (e.g. to learn the architecture and sizes before
 * declaring the model's parameters). */
bool checkpoint_read_metadata(const char *path, Metadata *meta, Error *err);

#endif
