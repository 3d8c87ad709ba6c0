/* common/checkpoint.c: safetensors checkpoints, saved atomically and loaded
 * only after every byte of the file has been checked.
 *
 * File layout (see checkpoint.h and https://huggingface.co/docs/safetensors):
 *   [0, 8)        N, the header length, an unsigned little-endian integer
 *   [8, 8+N)      the JSON header, padded with spaces so that 8+N is a
 *                 multiple of 8 and the data after it is aligned
 *   [8+N, end)    the data section: every tensor's float32 values,
 *                 little-endian, at the header's data_offsets
 *
 * Tensors are written in ParamSet order, then "optimizer.moment1.<name>" for
 * every parameter, then "optimizer.moment2.<name>" (Adam only).
 *
 * Shapes: a parameter tensor is (numel) floats; the optimizer's moment1 and
 * moment2 are (total) floats each, laid out exactly like ps->values, so the
 * slice of a parameter starts at (tensor.data - ps->values).
 *
 * Reading: the file is read with one fread into memory (at most
 * CHECKPOINT_MAX_FILE_BYTES), the header is parsed and checked in full, and
 * only then are values copied into the model, so a bad file changes nothing.
 */
#include "checkpoint.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"

/* Larger files are refused before anything is allocated for them. */
#define CHECKPOINT_MAX_FILE_BYTES ((uint64_t)2 << 30) /* 2 GiB */
/* Integers above 2^53 cannot all be represented by the parser's doubles. */
#define LARGEST_EXACT_INTEGER 9007199254740992.0
/* Room for "optimizer.moment1." in front of a parameter name. */
enum { TENSOR_NAME_MAX = PARAM_NAME_MAX + 32 };

static const char OPTIMIZER_PREFIX[] = "optimizer.";

_Static_assert(sizeof(float) == 4, "safetensors F32 needs a 4-byte float");

/* ---- Metadata: string pairs -------------------------------------------------- */

void metadata_init(Metadata *meta) { memset(meta, 0, sizeof *meta); }

void metadata_free(Metadata *meta) {
    for (int i = 0; i < meta->count; i++) {
        free(meta->keys[i]);
        free(meta->values[i]);
    }
    free(meta->keys);
    free(meta->values);
    metadata_init(meta);
}

/* Adds a pair without looking for an existing key (the caller knows). */
static void metadata_append(Metadata *meta, const char *key, const char *value) {
    if (meta->count == meta->capacity) {
        meta->capacity = meta->capacity == 0 ? 8 : 2 * meta->capacity;
        meta->keys = xrealloc(meta->keys, (size_t)meta->capacity * sizeof *meta->keys);
        meta->values = xrealloc(meta->values, (size_t)meta->capacity * sizeof *meta->values);
    }
    meta->keys[meta->count] = xstrdup(key);
    meta->values[meta->count] = xstrdup(value);
    meta->count++;
}

static int metadata_index(const Metadata *meta, const char *key) {
    for (int i = 0; i < meta->count; i++)
        if (strcmp(meta->keys[i], key) == 0) return i;
    return -1;
}

void metadata_set(Metadata *meta, const char *key, const char *value) {
    int index = metadata_index(meta, key);
    if (index < 0) {
        metadata_append(meta, key, value);
        return;
    }
    char *copy = xstrdup(value); /* before the free: value may be the old one */
    free(meta->values[index]);
    meta->values[index] = copy;
}

void metadata_set_int(Metadata *meta, const char *key, long value) {
    char text[32];
    snprintf(text, sizeof text, "%ld", value);
    metadata_set(meta, key, text);
}

void metadata_set_float(Metadata *meta, const char *key, float value) {
    char text[32];
    snprintf(text, sizeof text, "%.9g", (double)value); /* 9 digits: exact for float */
    metadata_set(meta, key, text);
}

void metadata_set_double(Metadata *meta, const char *key, double value) {
    char text[40];
    snprintf(text, sizeof text, "%.17g", value); /* 17 digits: exact for double */
    metadata_set(meta, key, text);
}

const char *metadata_get(const Metadata *meta, const char *key) {
    int index = metadata_index(meta, key);
    return index < 0 ? NULL : meta->values[index];
}

/* A whole decimal integer: no leading space, nothing after, no overflow. */
static bool parse_long(const char *text, long *value) {
    if (text[0] == '\0' || isspace((unsigned char)text[0])) return false;
    char *end;
    errno = 0;
    long parsed = strtol(text, &end, 10);
    if (*end != '\0' || errno != 0) return false;
    *value = parsed;
    return true;
}

bool metadata_get_int(const Metadata *meta, const char *key, long *value, Error *err) {
    const char *text = metadata_get(meta, key);
    if (text == NULL) return error_set(err, "checkpoint metadata has no \"%s\"", key);
    if (!parse_long(text, value))
        return error_set(err, "checkpoint metadata \"%s\" = \"%s\" is not an integer", key, text);
    return true;
}

bool metadata_get_float(const Metadata *meta, const char *key, float *value, Error *err) {
    const char *text = metadata_get(meta, key);
    if (text == NULL) return error_set(err, "checkpoint metadata has no \"%s\"", key);
    char *end;
    errno = 0;
    float parsed = strtof(text, &end);
    /* ERANGE with a finite result is an underflow to a subnormal: still exact. */
    bool overflow = errno == ERANGE && isinf(parsed);
    if (text[0] == '\0' || isspace((unsigned char)text[0]) || *end != '\0' || overflow)
        return error_set(err, "checkpoint metadata \"%s\" = \"%s\" is not a number", key, text);
    *value = parsed;
    return true;
}

bool metadata_get_double(const Metadata *meta, const char *key, double *value, Error *err) {
    const char *text = metadata_get(meta, key);
    if (text == NULL) return error_set(err, "checkpoint metadata has no \"%s\"", key);
    char *end;
    errno = 0;
    double parsed = strtod(text, &end);
    bool overflow = errno == ERANGE && isinf(parsed);
    if (text[0] == '\0' || isspace((unsigned char)text[0]) || *end != '\0' || overflow)
        return error_set(err, "checkpoint metadata \"%s\" = \"%s\" is not a number", key, text);
    *value = parsed;
    return true;
}

void metadata_set_rng(Metadata *meta, const char *key, const Rng *rng) {
    char text[40];
    snprintf(text, sizeof text, "%016" PRIx64 ":%016" PRIx64, rng->state, rng->increment);
    metadata_set(meta, key, text);
}

/* Exactly 16 hex digits. */
static bool parse_hex64(const char *text, uint64_t *value) {
    uint64_t parsed = 0;
    for (int i = 0; i < 16; i++) {
        char c = text[i];
        int digit = c >= '0' && c <= '9' ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (digit < 0) return false;
        parsed = parsed << 4 | (uint64_t)digit;
    }
    *value = parsed;
    return true;
}

bool metadata_get_rng(const Metadata *meta, const char *key, Rng *rng, Error *err) {
    const char *text = metadata_get(meta, key);
    if (text == NULL) return error_set(err, "checkpoint metadata has no \"%s\"", key);
    uint64_t state = 0, increment = 0;
    bool ok = strlen(text) == 33 && text[16] == ':' && parse_hex64(text, &state) &&
              parse_hex64(text + 17, &increment);
    if (!ok)
        return error_set(err, "checkpoint metadata \"%s\" = \"%s\": expected an RNG state "
                              "\"state:increment\", 16 hex digits each", key, text);
    if (increment % 2 == 0) /* PCG needs an odd increment; an even one is corrupt */
        return error_set(err, "checkpoint metadata \"%s\" = \"%s\": the RNG increment must be odd", key, text);
    rng->state = state;
    rng->increment = increment;
    return true;
}

/* ---- Byte order: the file is little-endian ------------------------------------ */

/* x86-64 and ARM64 Linux are little-endian, so the floats are copied as they
 * are; a big-endian host swaps the bytes of each 32-bit word.  The 64-bit
 * header length is always assembled byte by byte, which is right on both. */
static bool host_is_little_endian(void) {
#if defined(__BYTE_ORDER__)
    return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
#else
    const uint32_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
#endif
}

static uint32_t swap_bytes32(uint32_t word) {
    return (word >> 24) | ((word >> 8) & 0xFF00u) | ((word << 8) & 0xFF0000u) | (word << 24);
}

static void u64_to_little_endian(uint64_t value, unsigned char bytes[8]) {
    for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)(value >> (8 * i));
}

static uint64_t u64_from_little_endian(const unsigned char bytes[8]) {
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--) value = value << 8 | bytes[i];
    return value;
}

/* src (4*count bytes, little-endian) -> dst (count) host floats.  memcpy,
 * not a cast: the bytes need not be aligned for a float. */
static void floats_from_file(float *dst, const unsigned char *src, size_t count) {
    if (host_is_little_endian()) {
        memcpy(dst, src, count * sizeof *dst);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        uint32_t word;
        memcpy(&word, src + 4 * i, 4);
        word = swap_bytes32(word);
        memcpy(&dst[i], &word, 4);
    }
}

/* src (count) host floats -> file, little-endian.  False on a write error. */
static bool write_floats(FILE *file, const float *src, size_t count) {
    if (host_is_little_endian()) return fwrite(src, sizeof *src, count, file) == count;
    uint32_t chunk[1024];
    for (size_t done = 0; done < count;) {
        size_t n = count - done < 1024 ? count - done : 1024;
        memcpy(chunk, src + done, n * 4);
        for (size_t i = 0; i < n; i++) chunk[i] = swap_bytes32(chunk[i]);
        if (fwrite(chunk, 4, n, file) != n) return false;
        done += n;
    }
    return true;
}

/* ---- Names and slices shared by saving and loading ----------------------------- */

static void moment_name(char *out, size_t size, int which, const char *param_name) {
    snprintf(out, size, "%smoment%d.%s", OPTIMIZER_PREFIX, which, param_name);
}

/* Where parameter i's slice starts in the flat (total) arrays. */
static size_t param_offset(const ParamSet *ps, int i) {
    ptrdiff_t offset = ps->tensors[i].data - ps->values;
    if (offset < 0 || (size_t)offset + (size_t)ps->tensors[i].numel > ps->total)
        fatal("checkpoint: tensor \"%s\" does not lie in ps->values", ps->names[i]);
    return (size_t)offset;
}

/* moment1 or moment2 of an optimizer (moment2 is NULL for SGD). */
static float *optimizer_moment(const Optimizer *opt, int which) {
    return which == 1 ? opt->moment1 : opt->moment2;
}

static void check_model_is_ready(const char *what, const ParamSet *ps, const Optimizer *opt) {
    if (!ps->allocated) fatal("%s: call params_allocate() before saving or loading", what);
    if (opt != NULL && opt->total != ps->total)
        fatal("%s: optimizer has %zu floats but the ParamSet has %zu", what, opt->total, ps->total);
}

/* ---- Saving ------------------------------------------------------------------- */

/* ,"name":{"dtype":"F32","shape":[...],"data_offsets":[begin,end]} */
static void header_add_tensor(StringBuilder *sb, const char *name, const Tensor *t, uint64_t *offset) {
    sb_append(sb, ",");
    json_append_string(sb, name);
    sb_append(sb, ":{\"dtype\":\"F32\",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) sb_appendf(sb, "%s%d", d == 0 ? "" : ",", t->shape[d]);
    uint64_t end = *offset + 4 * (uint64_t)t->numel;
    sb_appendf(sb, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", *offset, end);
    *offset = end;
}

/* {"__metadata__":{...}   (the caller's pairs, then the optimizer's) */
static void header_add_metadata(StringBuilder *sb, const Metadata *meta, const Optimizer *opt) {
    Metadata all;
    metadata_init(&all);
    for (int i = 0; meta != NULL && i < meta->count; i++) metadata_set(&all, meta->keys[i], meta->values[i]);
    if (opt != NULL) {
        metadata_set(&all, "optimizer.kind", optimizer_name(opt->kind));
        metadata_set_int(&all, "optimizer.step", opt->step);
    }
    sb_append(sb, "{\"__metadata__\":{");
    for (int i = 0; i < all.count; i++) {
        if (i > 0) sb_append(sb, ",");
        json_append_string(sb, all.keys[i]);
        sb_append(sb, ":");
        json_append_string(sb, all.values[i]);
    }
    sb_append(sb, "}");
    metadata_free(&all);
}

/* The whole header, padded with spaces to a multiple of 8 bytes: the 8-byte
 * length plus the header then end on an 8-byte boundary, and the data that
 * follows can be memory-mapped as aligned floats. */
static void build_header(StringBuilder *sb, const ParamSet *ps, const Optimizer *opt, const Metadata *meta) {
    header_add_metadata(sb, meta, opt);
    uint64_t offset = 0;
    for (int i = 0; i < ps->count; i++) header_add_tensor(sb, ps->names[i], &ps->tensors[i], &offset);
    for (int which = 1; opt != NULL && which <= 2; which++) {
        if (optimizer_moment(opt, which) == NULL) continue;
        for (int i = 0; i < ps->count; i++) {
            char name[TENSOR_NAME_MAX];
            moment_name(name, sizeof name, which, ps->names[i]);
            header_add_tensor(sb, name, &ps->tensors[i], &offset);
        }
    }
    sb_append(sb, "}");
    while (sb->length % 8 != 0) sb_append(sb, " ");
}

/* Length, header and data, in the order build_header listed them. */
static bool write_contents(FILE *file, const StringBuilder *header, const ParamSet *ps, const Optimizer *opt) {
    unsigned char length[8];
    u64_to_little_endian(header->length, length);
    if (fwrite(length, 1, 8, file) != 8) return false;
    if (fwrite(header->data, 1, header->length, file) != header->length) return false;
    for (int i = 0; i < ps->count; i++)
        if (!write_floats(file, ps->tensors[i].data, (size_t)ps->tensors[i].numel)) return false;
    for (int which = 1; opt != NULL && which <= 2; which++) {
        const float *moment = optimizer_moment(opt, which);
        if (moment == NULL) continue;
        for (int i = 0; i < ps->count; i++)
            if (!write_floats(file, moment + param_offset(ps, i), (size_t)ps->tensors[i].numel)) return false;
    }
    return true;
}

/* Writes everything to tmp_path and forces it to disk.  Returns 0, or the
 * errno of the first failure; *created says whether tmp_path now exists. */
static int write_synced(const char *tmp_path, const StringBuilder *header, const ParamSet *ps,
                        const Optimizer *opt, bool *created) {
    FILE *file = fopen(tmp_path, "wb");
    *created = file != NULL;
    if (file == NULL) return errno;
    errno = 0;
    /* fflush hands stdio's buffer to the kernel (a full disk shows up here
     * at the latest); fsync makes the kernel put it on the disk, so the
     * rename below can never expose a file whose data is not there. */
    bool ok = write_contents(file, header, ps, opt) && fflush(file) == 0 && fsync(fileno(file)) == 0;
    int failure = ok ? 0 : (errno != 0 ? errno : EIO);
    if (fclose(file) != 0 && failure == 0) failure = errno != 0 ? errno : EIO;
    return failure;
}

/* After the rename, syncing the directory makes the new entry durable too.
 * Best effort: some file systems refuse fsync on a directory. */
static void sync_parent_directory(const char *path) {
    const char *slash = strrchr(path, '/');
    char *directory = slash == NULL ? xstrdup(".") : xstrdup(path);
    if (slash != NULL) directory[slash == path ? 1 : slash - path] = '\0';
    int fd = open(directory, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(directory);
}

/* The first NaN or Inf among the parameters and the optimizer's moments:
 * true with the tensor's name, the element and the value, false when every
 * value is finite. */
static bool find_non_finite(const ParamSet *ps, const Optimizer *opt, char *name, size_t size,
                            int *element, float *value) {
    for (int which = 0; which <= 2; which++) {
        const float *base = which == 0 ? ps->values : opt != NULL ? optimizer_moment(opt, which) : NULL;
        for (int i = 0; base != NULL && i < ps->count; i++) {
            const float *x = which == 0 ? ps->tensors[i].data : base + param_offset(ps, i);
            for (int k = 0; k < ps->tensors[i].numel; k++) {
                if (isfinite(x[k])) continue;
                if (which == 0) snprintf(name, size, "%s", ps->names[i]);
                else moment_name(name, size, which, ps->names[i]);
                *element = k, *value = x[k];
                return true;
            }
        }
    }
    return false;
}

bool checkpoint_save(const char *path, const ParamSet *ps, const Optimizer *opt,
                     const Metadata *meta, Error *err) {
    check_model_is_ready("checkpoint_save", ps, opt);
    /* A run that diverged must not replace its last good checkpoint. */
    char bad_name[TENSOR_NAME_MAX];
    int bad_element;
    float bad_value;
    if (find_non_finite(ps, opt, bad_name, sizeof bad_name, &bad_element, &bad_value))
        return error_set(err, "%s: not saved: \"%s\" holds %s at element %d (training diverged; "
                              "lower --lr); any previous checkpoint is unchanged", path, bad_name,
                         isnan(bad_value) ? "NaN" : "Inf", bad_element);
    StringBuilder header = {0};
    build_header(&header, ps, opt, meta);
    size_t tmp_size = strlen(path) + sizeof ".tmp";
    char *tmp_path = xmalloc(tmp_size);
    snprintf(tmp_path, tmp_size, "%s.tmp", path);

    bool created;
    int failure = write_synced(tmp_path, &header, ps, opt, &created);
    const char *action = "writing";
    if (failure == 0 && rename(tmp_path, path) != 0) {
        failure = errno;
        action = "renaming";
    }
    if (failure != 0) {
        if (created) remove(tmp_path);
        error_set(err, "%s: cannot save checkpoint: %s (while %s %s); any previous checkpoint is unchanged",
                  path, strerror(failure), action, tmp_path);
    } else {
        sync_parent_directory(path);
    }
    free(tmp_path);
    sb_free(&header);
    return failure == 0;
}

/* ---- Loading: opening and reading the file --------------------------------------- */

/* A checkpoint holds at least the 8-byte header length, and at most
 * CHECKPOINT_MAX_FILE_BYTES. */
static bool check_file_size(const char *path, uint64_t size, Error *err) {
    if (size == 0) return error_set(err, "%s: checkpoint file is empty (0 bytes)", path);
    if (size < 8)
        return error_set(err, "%s: checkpoint file is truncated: %" PRIu64 " bytes, too short for the "
                              "8-byte header length", path, size);
    if (size > CHECKPOINT_MAX_FILE_BYTES)
        return error_set(err, "%s: checkpoint file is %" PRIu64 " bytes, more than the 2 GiB limit",
                         path, size);
    return true;
}

/* Opens a regular file of 8 bytes to CHECKPOINT_MAX_FILE_BYTES; *size gets
 * its length.  NULL with an Error otherwise. */
static FILE *open_checkpoint(const char *path, uint64_t *size, Error *err) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        error_set(err, "%s: cannot open checkpoint: %s", path, strerror(errno));
        return NULL;
    }
    struct stat info;
    bool ok = false;
    if (fstat(fileno(file), &info) != 0)
        error_set(err, "%s: cannot read checkpoint: %s", path, strerror(errno));
    else if (S_ISDIR(info.st_mode))
        error_set(err, "%s: is a directory, expected a .safetensors checkpoint file", path);
    else if (!S_ISREG(info.st_mode))
        error_set(err, "%s: is not a regular file, expected a .safetensors checkpoint file", path);
    else
        ok = check_file_size(path, (uint64_t)info.st_size, err);
    if (!ok) {
        fclose(file);
        return NULL;
    }
    *size = (uint64_t)info.st_size;
    return file;
}

static bool read_exactly(FILE *file, void *buffer, size_t bytes, const char *path, Error *err) {
    errno = 0;
    if (fread(buffer, 1, bytes, file) == bytes) return true;
    if (ferror(file))
        return error_set(err, "%s: cannot read checkpoint: %s", path, strerror(errno != 0 ? errno : EIO));
    return error_set(err, "%s: checkpoint file became shorter while it was being read", path);
}

/* N from the first 8 bytes: at most CHECKPOINT_MAX_HEADER_BYTES (a random or
 * hostile file could claim 2^60), and inside the file. */
static bool check_header_length(const char *path, const unsigned char bytes[8], uint64_t file_size,
                                uint64_t *header_length, Error *err) {
    uint64_t length = u64_from_little_endian(bytes);
    if (length > (uint64_t)CHECKPOINT_MAX_HEADER_BYTES)
        return error_set(err, "%s: header length %" PRIu64 " exceeds the %d-byte limit: "
                              "not a safetensors file, or corrupted", path, length, CHECKPOINT_MAX_HEADER_BYTES);
    if (length > file_size - 8)
        return error_set(err, "%s: header length %" PRIu64 " runs past the end of the file "
                              "(%" PRIu64 " bytes): truncated or corrupted", path, length, file_size);
    *header_length = length;
    return true;
}

/* ---- Loading: checking the header ------------------------------------------------ */

/* One tensor entry of the header, after its checks. */
typedef struct {
    const char *name;        /* the header's key (owned by the JSON tree)   */
    const JsonValue *shape;  /* (ndim) non-negative integers                */
    uint64_t begin, end;     /* byte range in the data section, end-begin = 4*numel */
} FileTensor;

typedef struct {
    JsonValue root;            /* the parsed header; owns every string     */
    const JsonValue *metadata; /* the "__metadata__" object, or NULL        */
    FileTensor *tensors;       /* (count) in header order                   */
    int count;
} Header;

static void header_free(Header *h) {
    json_free(&h->root);
    free(h->tensors);
    memset(h, 0, sizeof *h);
}

/* A JSON number that is a whole number in [0, 2^53]. */
static bool json_to_u64(const JsonValue *value, uint64_t *out) {
    if (value == NULL || value->type != JSON_NUMBER) return false;
    double number = value->number;
    if (!(number >= 0 && number <= LARGEST_EXACT_INTEGER) || number != (double)(uint64_t)number) return false;
    *out = (uint64_t)number;
    return true;
}

/* "(2,3)" from a checked shape array, or from a Tensor. */
static void json_shape_string(const JsonValue *shape, char *buffer, size_t size) {
    size_t used = (size_t)snprintf(buffer, size, "(");
    for (int d = 0; d < shape->count && used < size; d++)
        used += (size_t)snprintf(buffer + used, size - used, "%s%.0f", d == 0 ? "" : ",", shape->items[d].number);
    if (used < size) snprintf(buffer + used, size - used, ")");
}

static void tensor_shape_text(const Tensor *t, char *buffer, size_t size) {
    size_t used = (size_t)snprintf(buffer, size, "(");
    for (int d = 0; d < t->ndim && used < size; d++)
        used += (size_t)snprintf(buffer + used, size - used, "%s%d", d == 0 ? "" : ",", t->shape[d]);
    if (used < size) snprintf(buffer + used, size - used, ")");
}

/* Checks "shape" is an array of non-negative integers; *numel = product. */
static bool shape_numel(const JsonValue *shape, uint64_t *numel) {
    if (shape == NULL || shape->type != JSON_ARRAY) return false;
    uint64_t product = 1;
    for (int d = 0; d < shape->count; d++) {
        uint64_t dim;
        if (!json_to_u64(&shape->items[d], &dim)) return false;
        if (dim != 0 && product > (CHECKPOINT_MAX_FILE_BYTES / 4) / dim) return false; /* cannot fit */
        product *= dim;
    }
    *numel = product;
    return true;
}

static bool check_tensor_entry(const char *path, const char *name, const JsonValue *entry,
                               uint64_t data_size, FileTensor *out, Error *err) {
    if (entry->type != JSON_OBJECT)
        return error_set(err, "%s: tensor \"%s\": header entry is not a JSON object", path, name);
    const JsonValue *dtype = json_get(entry, "dtype");
    if (dtype == NULL || dtype->type != JSON_STRING)
        return error_set(err, "%s: tensor \"%s\" has no \"dtype\" string", path, name);
    if (strcmp(dtype->string, "F32") != 0)
        return error_set(err, "%s: tensor \"%s\" has dtype \"%s\", but tinyzoo reads only F32 (float32)",
                         path, name, dtype->string);
    const JsonValue *shape = json_get(entry, "shape");
    uint64_t numel;
    if (!shape_numel(shape, &numel))
        return error_set(err, "%s: tensor \"%s\": \"shape\" must be an array of non-negative integers "
                              "of at most 2 GiB in all", path, name);
    const JsonValue *offsets = json_get(entry, "data_offsets");
    uint64_t begin, end;
    if (offsets == NULL || offsets->type != JSON_ARRAY || offsets->count != 2 ||
        !json_to_u64(&offsets->items[0], &begin) || !json_to_u64(&offsets->items[1], &end))
        return error_set(err, "%s: tensor \"%s\": \"data_offsets\" must be [begin, end], two "
                              "non-negative integers", path, name);
    if (begin > end || end > data_size)
        return error_set(err, "%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64 "] are out of "
                              "bounds of the %" PRIu64 "-byte data section: truncated or corrupted",
                         path, name, begin, end, data_size);
    if (end - begin != 4 * numel) {
        char shape_text[128];
        json_shape_string(shape, shape_text, sizeof shape_text);
        return error_set(err, "%s: tensor \"%s\": data_offsets span %" PRIu64 " bytes but shape %s "
                              "needs %" PRIu64 " (4 per float)", path, name, end - begin, shape_text, 4 * numel);
    }
    *out = (FileTensor){.name = name, .shape = shape, .begin = begin, .end = end};
    return true;
}

static bool check_metadata_entry(const char *path, const JsonValue *metadata, Error *err) {
    if (metadata->type != JSON_OBJECT)
        return error_set(err, "%s: \"__metadata__\" is not a JSON object", path);
    for (int i = 0; i < metadata->count; i++)
        if (metadata->items[i].type != JSON_STRING)
            return error_set(err, "%s: metadata \"%s\" is not a string (safetensors metadata values "
                                  "are strings)", path, metadata->keys[i]);
    return true;
}

static int compare_by_begin(const void *a, const void *b) {
    const FileTensor *x = *(const FileTensor *const *)a, *y = *(const FileTensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

/* Sorted by begin, two tensors overlap exactly when one starts before the
 * previous one ends (empty tensors occupy no bytes and are skipped). */
static bool check_no_overlap(const char *path, const Header *h, Error *err) {
    const FileTensor **sorted = xcalloc((size_t)h->count, sizeof *sorted);
    int used = 0;
    for (int i = 0; i < h->count; i++)
        if (h->tensors[i].end > h->tensors[i].begin) sorted[used++] = &h->tensors[i];
    qsort(sorted, (size_t)used, sizeof *sorted, compare_by_begin);
    bool ok = true;
    for (int i = 1; i < used && ok; i++)
        if (sorted[i]->begin < sorted[i - 1]->end)
            ok = error_set(err, "%s: tensors \"%s\" [%" PRIu64 ", %" PRIu64 ") and \"%s\" [%" PRIu64 ", %" PRIu64
                                ") overlap in the data section: corrupted header", path, sorted[i - 1]->name,
                           sorted[i - 1]->begin, sorted[i - 1]->end, sorted[i]->name, sorted[i]->begin, sorted[i]->end);
    free(sorted);
    return ok;
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* JSON allows repeated keys; a checkpoint must not (which one would win?).
 * Sorting finds them in n log n even in a header of a million keys. */
static bool check_unique_keys(const char *path, char **keys, int count, const char *what, Error *err) {
    char **sorted = xcalloc((size_t)count, sizeof *sorted);
    if (count > 0) memcpy(sorted, keys, (size_t)count * sizeof *sorted);
    qsort(sorted, (size_t)count, sizeof *sorted, compare_strings);
    bool ok = true;
    for (int i = 1; i < count && ok; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            ok = error_set(err, "%s: %s \"%s\" appears twice in the header", path, what, sorted[i]);
    free(sorted);
    return ok;
}

/* Parses the header and checks every entry against a data section of
 * data_size bytes.  On failure h holds nothing. */
static bool parse_header(const char *path, const char *text, uint64_t length, uint64_t data_size,
                         Header *h, Error *err) {
    memset(h, 0, sizeof *h);
    Error json_error;
    if (!json_parse(text, (size_t)length, &h->root, &json_error))
        return error_set(err, "%s: header is not valid JSON: %s", path, json_error.message);
    const JsonValue *root = &h->root;
    bool ok = root->type == JSON_OBJECT || error_set(err, "%s: header is not a JSON object", path);
    if (ok) h->tensors = xcalloc((size_t)root->count, sizeof *h->tensors);
    for (int i = 0; ok && i < root->count; i++) {
        if (strcmp(root->keys[i], "__metadata__") == 0) {
            ok = check_metadata_entry(path, &root->items[i], err);
            h->metadata = &root->items[i]; /* a repeat is caught below */
        } else {
            ok = check_tensor_entry(path, root->keys[i], &root->items[i], data_size, &h->tensors[h->count], err);
            if (ok) h->count++;
        }
    }
    ok = ok && check_unique_keys(path, root->keys, root->count, "key", err) && check_no_overlap(path, h, err);
    if (ok && h->metadata != NULL)
        ok = check_unique_keys(path, h->metadata->keys, h->metadata->count, "metadata key", err);
    if (!ok) header_free(h);
    return ok;
}

/* ---- Loading: checking the header against the model --------------------------------- */

static const FileTensor *header_find(const Header *h, const char *name) {
    for (int i = 0; i < h->count; i++)
        if (strcmp(h->tensors[i].name, name) == 0) return &h->tensors[i];
    return NULL;
}

static bool shape_matches(const JsonValue *shape, const Tensor *t) {
    if (shape->count != t->ndim) return false;
    for (int d = 0; d < t->ndim; d++)
        if (shape->items[d].number != (double)t->shape[d]) return false;
    return true;
}

/* The file's tensor `name` exists and has t's shape. */
static bool check_file_tensor(const char *path, const Header *h, const char *name, const Tensor *t, Error *err) {
    const FileTensor *found = header_find(h, name);
    if (found == NULL)
        return error_set(err, "%s: tensor \"%s\" is missing from the checkpoint (was it saved with "
                              "other model options?)", path, name);
    if (shape_matches(found->shape, t)) return true;
    char file_shape[128], model_shape[64];
    json_shape_string(found->shape, file_shape, sizeof file_shape);
    tensor_shape_text(t, model_shape, sizeof model_shape);
    return error_set(err, "%s: tensor \"%s\" has shape %s in the checkpoint but %s in the model "
                          "(were the model options different?)", path, name, file_shape, model_shape);
}

static bool check_architecture(const char *path, const Header *h, const char *expected, Error *err) {
    if (expected == NULL) return true;
    const JsonValue *found = json_get(h->metadata, "architecture");
    if (found == NULL)
        return error_set(err, "%s: checkpoint metadata has no \"architecture\"; expected \"%s\"", path, expected);
    if (strcmp(found->string, expected) != 0)
        return error_set(err, "%s: checkpoint is for architecture \"%s\", but this program expects \"%s\"",
                         path, found->string, expected);
    return true;
}

/* Every parameter is in the file with its shape, and every file tensor is
 * a parameter (or optimizer state, which a model without --resume ignores). */
static bool check_model_tensors(const char *path, const Header *h, const ParamSet *ps, Error *err) {
    for (int i = 0; i < ps->count; i++)
        if (!check_file_tensor(path, h, ps->names[i], &ps->tensors[i], err)) return false;
    for (int i = 0; i < h->count; i++) {
        const char *name = h->tensors[i].name;
        if (strncmp(name, OPTIMIZER_PREFIX, sizeof OPTIMIZER_PREFIX - 1) == 0) continue;
        if (params_find(ps, name) < 0)
            return error_set(err, "%s: tensor \"%s\" in the checkpoint is not a parameter of this model "
                                  "(were the model options different?)", path, name);
    }
    return true;
}

/* Same optimizer kind, a valid step, and each moment tensor present. */
static bool check_optimizer_state(const char *path, const Header *h, const ParamSet *ps,
                                  const Optimizer *opt, long *step, Error *err) {
    const JsonValue *kind = json_get(h->metadata, "optimizer.kind");
    const JsonValue *step_text = json_get(h->metadata, "optimizer.step");
    if (kind == NULL || step_text == NULL)
        return error_set(err, "%s: checkpoint has no optimizer state (\"optimizer.kind\" and "
                              "\"optimizer.step\" in the metadata), so training cannot resume from it", path);
    if (strcmp(kind->string, optimizer_name(opt->kind)) != 0)
        return error_set(err, "%s: checkpoint's optimizer is \"%s\", but this run uses \"%s\"", path,
                         kind->string, optimizer_name(opt->kind));
    if (!parse_long(step_text->string, step) || *step < 0)
        return error_set(err, "%s: metadata \"optimizer.step\" = \"%s\" is not a non-negative integer",
                         path, step_text->string);
    for (int which = 1; which <= 2; which++) {
        if (optimizer_moment(opt, which) == NULL) continue;
        for (int i = 0; i < ps->count; i++) {
            char name[TENSOR_NAME_MAX];
            moment_name(name, sizeof name, which, ps->names[i]);
            if (!check_file_tensor(path, h, name, &ps->tensors[i], err)) return false;
        }
    }
    return true;
}

/* Only now, with every check passed, does anything in the model change. */
static void copy_into_model(const Header *h, const unsigned char *data, ParamSet *ps, Optimizer *opt, long step) {
    for (int i = 0; i < ps->count; i++) {
        const FileTensor *found = header_find(h, ps->names[i]);
        floats_from_file(ps->tensors[i].data, data + found->begin, (size_t)ps->tensors[i].numel);
    }
    for (int which = 1; opt != NULL && which <= 2; which++) {
        float *moment = optimizer_moment(opt, which);
        for (int i = 0; moment != NULL && i < ps->count; i++) {
            char name[TENSOR_NAME_MAX];
            moment_name(name, sizeof name, which, ps->names[i]);
            const FileTensor *found = header_find(h, name);
            floats_from_file(moment + param_offset(ps, i), data + found->begin, (size_t)ps->tensors[i].numel);
        }
    }
    if (opt != NULL) opt->step = step;
}

/* Keys are unique (checked), so no search is needed while copying. */
static void copy_metadata(const Header *h, Metadata *meta) {
    for (int i = 0; h->metadata != NULL && i < h->metadata->count; i++)
        metadata_append(meta, h->metadata->keys[i], h->metadata->items[i].string);
}

bool checkpoint_load(const char *path, ParamSet *ps, Optimizer *opt,
                     const char *expected_architecture, Metadata *meta, Error *err) {
    if (meta != NULL) metadata_init(meta); /* empty even when the file cannot be read */
    uint64_t size;
    FILE *file = open_checkpoint(path, &size, err);
    if (file == NULL) return false;
    unsigned char *bytes = xmalloc((size_t)size);
    bool ok = read_exactly(file, bytes, (size_t)size, path, err); /* the one read */
    fclose(file);
    ok = ok && checkpoint_load_from_memory(bytes, (size_t)size, path, ps, opt, expected_architecture,
                                           meta, err);
    free(bytes);
    return ok;
}

bool checkpoint_load_from_memory(const unsigned char *bytes, size_t size, const char *path,
                                 ParamSet *ps, Optimizer *opt, const char *expected_architecture,
                                 Metadata *meta, Error *err) {
    check_model_is_ready("checkpoint_load", ps, opt);
    if (meta != NULL) metadata_init(meta);
    uint64_t header_length = 0;
    Header h;
    bool ok = check_file_size(path, size, err) &&
              check_header_length(path, bytes, size, &header_length, err) &&
              parse_header(path, (const char *)bytes + 8, header_length, size - 8 - header_length, &h, err);
    if (ok) {
        long step = 0;
        ok = check_architecture(path, &h, expected_architecture, err) && check_model_tensors(path, &h, ps, err) &&
             (opt == NULL || check_optimizer_state(path, &h, ps, opt, &step, err));
        if (ok) {
            copy_into_model(&h, bytes + 8 + header_length, ps, opt, step);
            if (meta != NULL) copy_metadata(&h, meta);
        }
        header_free(&h);
    }
    return ok;
}

bool checkpoint_read_metadata(const char *path, Metadata *meta, Error *err) {
    metadata_init(meta);
    uint64_t size;
    FILE *file = open_checkpoint(path, &size, err);
    if (file == NULL) return false;
    unsigned char length_bytes[8];
    uint64_t header_length = 0;
    bool ok = read_exactly(file, length_bytes, 8, path, err) &&
              check_header_length(path, length_bytes, size, &header_length, err);
    char *text = ok ? xmalloc((size_t)header_length) : NULL;
    ok = ok && read_exactly(file, text, (size_t)header_length, path, err);
    fclose(file);
    /* The whole header is checked, as for a load, against the file's size. */
    Header h;
    if (ok && parse_header(path, text, header_length, size - 8 - header_length, &h, err)) {
        copy_metadata(&h, meta);
        header_free(&h);
    } else {
        ok = false;
    }
    free(text);
    return ok;
}
