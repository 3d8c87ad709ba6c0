/* autoencoder/data.c: image files and data sets.
 *
 * Legend: N images, H height, W width, D = H*W features, K classes.
 *
 * Formats, each read with every size checked before anything is allocated,
 * and failing with one line that names the file and what was wrong:
 *   IDX   MNIST's format: a 4-byte magic (0, 0, type 0x08 = unsigned byte,
 *         number of dimensions), one big-endian 32-bit size per dimension,
 *         then the bytes.  Images are 3-D (N, H, W), labels 1-D (N).  Read
 *         through zlib's gz* functions, which read gzip and plain files alike.
 *   PGM   netpbm greyscale: "P2" (numbers in text) or "P5" (bytes; two per
 *         value, big-endian, when maxval > 255), then width, height, maxval,
 *         with '#' comments allowed in the header.
 *   CSV   "label,p1,...,pD" per line, as the MNIST CSV dumps on the web.
 *   PNG   written only (for the inference commands): greyscale, 8 bits.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "autoencoder.h"
#include "data.h"

void autoencoder_dataset_free(AutoencoderDataset *data) {
    free(data->images);
    free(data->labels);
    memset(data, 0, sizeof *data);
}

/* Classes named by their ids: "0", "1", ... up to the largest label. */
void autoencoder_dataset_name_classes(AutoencoderDataset *data) {
    int largest = 9;
    for (int n = 0; n < data->count; n++)
        if (data->labels[n] > largest) largest = data->labels[n];
    data->class_count = largest + 1 < AUTOENCODER_MAX_CLASSES ? largest + 1 : AUTOENCODER_MAX_CLASSES;
    for (int k = 0; k < data->class_count; k++)
        snprintf(data->class_names[k], AUTOENCODER_CLASS_NAME, "%d", k);
}

/* ==== IDX =================================================================== */

static bool regular_file(const char *path, Error *err) {
    struct stat info;
    if (stat(path, &info) != 0) return error_set(err, "%s: %s", path, strerror(errno));
    if (S_ISDIR(info.st_mode)) return error_set(err, "%s: is a directory, expected an IDX file", path);
    if (!S_ISREG(info.st_mode)) return error_set(err, "%s: not a regular file, expected an IDX file", path);
    if (info.st_size == 0) return error_set(err, "%s: empty file, expected an IDX file", path);
    return true;
}

/* Reads exactly `size` bytes; a short read is a truncated file, a zlib
 * error a corrupt gzip stream. */
static bool gz_read_exact(gzFile file, const char *path, void *buffer, size_t size,
                          const char *what, Error *err) {
    unsigned char *bytes = buffer;
    size_t done = 0;
    while (done < size) {
        size_t chunk = size - done < (1u << 30) ? size - done : (1u << 30);
        int got = gzread(file, bytes + done, (unsigned)chunk);
        if (got < 0) {
            int code;
            const char *message = gzerror(file, &code);
            return error_set(err, "%s: corrupt gzip data while reading the %s (%s)", path, what, message);
        }
        if (got == 0) {
            int code;
            const char *message = gzerror(file, &code);
            if (code != Z_OK)
                return error_set(err, "%s: corrupt gzip data while reading the %s (%s)", path, what, message);
            return error_set(err, "%s: truncated: the header promises %zu bytes of %s, the file has %zu",
                             path, size, what, done);
        }
        done += (size_t)got;
    }
    return true;
}

static uint32_t big_endian32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Opens an IDX file, checks its magic, reads its `dims` sizes.  The caller
 * closes the file. */
static bool idx_open(const char *path, int dims, const char *kind, gzFile *file, uint32_t *sizes,
                     Error *err) {
    if (!regular_file(path, err)) return false;
    *file = gzopen(path, "rb");
    if (*file == NULL) return error_set(err, "%s: cannot open: %s", path, strerror(errno));
    unsigned char header[4 + 4 * 3];
    if (!gz_read_exact(*file, path, header, 4, "header", err)) goto fail;
    uint32_t magic = big_endian32(header), expected = 0x800u | (uint32_t)dims;
    if (magic != expected) {
        error_set(err, "%s: not an IDX %s file: magic 0x%08x, expected 0x%08x (unsigned bytes, %d dimension%s)",
                  path, kind, magic, expected, dims, dims > 1 ? "s" : "");
        goto fail;
    }
    if (!gz_read_exact(*file, path, header + 4, 4 * (size_t)dims, "header", err)) goto fail;
    for (int i = 0; i < dims; i++) sizes[i] = big_endian32(header + 4 + 4 * i);
    return true;
fail:
    gzclose(*file);
    return false;
}

/* After the last expected byte there must be nothing but the end. */
static bool idx_close_at_end(gzFile file, const char *path, Error *err) {
    unsigned char extra;
    int got = gzread(file, &extra, 1);
    int code;
    const char *message = gzerror(file, &code);
    bool ok = true;
    if (got < 0 || code != Z_OK)
        ok = error_set(err, "%s: corrupt gzip data at the end (%s)", path, message);
    else if (got > 0)
        ok = error_set(err, "%s: more bytes than the header's sizes account for", path);
    gzclose(file);
    return ok;
}

bool autoencoder_read_idx_images(const char *path, AutoencoderDataset *data, Error *err) {
    memset(data, 0, sizeof *data);
    gzFile file;
    uint32_t sizes[3];
    if (!idx_open(path, 3, "image", &file, sizes, err)) return false;
    if (sizes[0] < 1 || sizes[0] > AUTOENCODER_MAX_IMAGES || sizes[1] < 1 ||
        sizes[1] > AUTOENCODER_MAX_SIDE || sizes[2] < 1 || sizes[2] > AUTOENCODER_MAX_SIDE ||
        (uint64_t)sizes[0] * sizes[1] * sizes[2] > (uint64_t)AUTOENCODER_MAX_PIXELS) {
        gzclose(file);
        return error_set(err, "%s: claims %u images of %u x %u pixels; the limits are %d images, "
                              "sides of %d and %ld pixels in all", path, sizes[0], sizes[1], sizes[2],
                         AUTOENCODER_MAX_IMAGES, AUTOENCODER_MAX_SIDE, (long)AUTOENCODER_MAX_PIXELS);
    }
    size_t total = (size_t)sizes[0] * sizes[1] * sizes[2];
    unsigned char *bytes = malloc(total);
    if (bytes == NULL) {
        gzclose(file);
        return error_set(err, "%s: out of memory for %zu bytes of images", path, total);
    }
    if (!gz_read_exact(file, path, bytes, total, "images", err)) {
        free(bytes);
        gzclose(file);
        return false;
    }
    if (!idx_close_at_end(file, path, err)) {
        free(bytes);
        return false;
    }
    data->count = (int)sizes[0];
    data->height = (int)sizes[1];
    data->width = (int)sizes[2];
    data->images = xmalloc(total * sizeof(float));
    for (size_t i = 0; i < total; i++) data->images[i] = (float)bytes[i] / 255.0f;
    free(bytes);
    data->labels = xmalloc(sizeof(int) * (size_t)data->count);
    for (int n = 0; n < data->count; n++) data->labels[n] = -1;
    data->class_count = 0;
    return true;
}

bool autoencoder_read_idx_labels(const char *path, AutoencoderDataset *data, Error *err) {
    gzFile file;
    uint32_t count = 0;
    if (!idx_open(path, 1, "label", &file, &count, err)) return false;
    if (count != (uint32_t)data->count) {
        gzclose(file);
        return error_set(err, "%s: %u labels for %d images; the image and label files must match",
                         path, count, data->count);
    }
    unsigned char *bytes = xmalloc(count);
    bool ok = gz_read_exact(file, path, bytes, count, "labels", err);
    if (!ok) gzclose(file);
    else ok = idx_close_at_end(file, path, err);
    /* A byte holds up to 255, but classes are named and counted in arrays
     * of AUTOENCODER_MAX_CLASSES. */
    for (uint32_t n = 0; ok && n < count; n++)
        if (bytes[n] >= AUTOENCODER_MAX_CLASSES)
            ok = error_set(err, "%s: label %u of image %u is above %d (at most %d classes)", path,
                           bytes[n], n, AUTOENCODER_MAX_CLASSES - 1, AUTOENCODER_MAX_CLASSES);
    if (ok) {
        for (uint32_t n = 0; n < count; n++) data->labels[n] = bytes[n];
        autoencoder_dataset_name_classes(data);
    }
    free(bytes);
    return ok;
}

/* The whole file in memory, then written atomically; gzip-compressed with
 * deflate's gzip wrapper (window bits 15 + 16) when asked. */
static bool write_maybe_compressed(const char *path, const unsigned char *bytes, size_t size,
                                   bool compress, Error *err) {
    if (!compress) return file_write_atomic(path, bytes, size, err);
    z_stream stream = {0};
    if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return error_set(err, "%s: zlib could not start compressing", path);
    size_t bound = deflateBound(&stream, (uLong)size);
    unsigned char *packed = xmalloc(bound);
    stream.next_in = (unsigned char *)bytes;
    stream.avail_in = (uInt)size;
    stream.next_out = packed;
    stream.avail_out = (uInt)bound;
    int status = deflate(&stream, Z_FINISH);
    size_t packed_size = stream.total_out;
    deflateEnd(&stream);
    bool ok = status == Z_STREAM_END ? file_write_atomic(path, packed, packed_size, err)
                                     : error_set(err, "%s: zlib compression failed", path);
    free(packed);
    return ok;
}

static void put_big_endian32(unsigned char *b, uint32_t value) {
    b[0] = (unsigned char)(value >> 24), b[1] = (unsigned char)(value >> 16);
    b[2] = (unsigned char)(value >> 8), b[3] = (unsigned char)value;
}

static unsigned char to_byte(float value) {
    value = value < 0 ? 0 : value > 1 ? 1 : value;
    return (unsigned char)lrintf(value * 255.0f);
}

bool autoencoder_write_idx_images(const char *path, const AutoencoderDataset *data, bool compress,
                                  Error *err) {
    size_t total = (size_t)data->count * data->height * data->width;
    unsigned char *bytes = xmalloc(16 + total);
    put_big_endian32(bytes, 0x803);
    put_big_endian32(bytes + 4, (uint32_t)data->count);
    put_big_endian32(bytes + 8, (uint32_t)data->height);
    put_big_endian32(bytes + 12, (uint32_t)data->width);
    for (size_t i = 0; i < total; i++) bytes[16 + i] = to_byte(data->images[i]);
    bool ok = write_maybe_compressed(path, bytes, 16 + total, compress, err);
    free(bytes);
    return ok;
}

bool autoencoder_write_idx_labels(const char *path, const AutoencoderDataset *data, bool compress,
                                  Error *err) {
    unsigned char *bytes = xmalloc(8 + (size_t)data->count);
    put_big_endian32(bytes, 0x801);
    put_big_endian32(bytes + 4, (uint32_t)data->count);
    for (int n = 0; n < data->count; n++) {
        if (data->labels[n] < 0 || data->labels[n] > 255) {
            free(bytes);
            return error_set(err, "%s: label %d of image %d does not fit in a byte", path, data->labels[n], n);
        }
        bytes[8 + n] = (unsigned char)data->labels[n];
    }
    bool ok = write_maybe_compressed(path, bytes, 8 + (size_t)data->count, compress, err);
    free(bytes);
    return ok;
}

/* ==== PGM ==================================================================== */

/* Skips whitespace and '#' comments (to the end of the line). */
static size_t pgm_skip(const char *text, size_t size, size_t at) {
    while (at < size) {
        if (text[at] == '#') {
            while (at < size && text[at] != '\n') at++;
        } else if (isspace((unsigned char)text[at])) {
            at++;
        } else {
            break;
        }
    }
    return at;
}

/* One decimal number of the header (or of a P2 body). */
static bool pgm_number(const char *text, size_t size, size_t *at, long *value) {
    *at = pgm_skip(text, size, *at);
    if (*at >= size || !isdigit((unsigned char)text[*at])) return false;
    long result = 0;
    while (*at < size && isdigit((unsigned char)text[*at])) {
        result = result * 10 + (text[*at] - '0');
        if (result > 1000000000L) return false;
        (*at)++;
    }
    *value = result;
    return true;
}

enum { PGM_MAX_BYTES = 256 << 20 };

bool autoencoder_read_pgm(const char *path, float **pixels, int *height, int *width, Error *err) {
    char *text;
    size_t size;
    if (!file_read_all(path, PGM_MAX_BYTES, &text, &size, err)) return false;
    bool ok = autoencoder_parse_pgm(text, size, path, pixels, height, width, err);
    free(text);
    return ok;
}

bool autoencoder_parse_pgm(const char *text, size_t size, const char *path, float **pixels,
                           int *height, int *width, Error *err) {
    bool binary = size >= 2 && text[0] == 'P' && text[1] == '5';
    if (size < 2 || text[0] != 'P' || (text[1] != '2' && text[1] != '5'))
        return error_set(err, "%s: not a PGM image: it must start with P2 or P5", path);
    size_t at = 2;
    long w, h, maxval;
    if (!pgm_number(text, size, &at, &w) || !pgm_number(text, size, &at, &h) ||
        !pgm_number(text, size, &at, &maxval))
        return error_set(err, "%s: bad PGM header: expected width, height and maxval after P%c", path,
                         binary ? '5' : '2');
    if (w < 1 || h < 1 || w > AUTOENCODER_MAX_SIDE || h > AUTOENCODER_MAX_SIDE)
        return error_set(err, "%s: PGM size %ld x %ld outside 1..%d", path, w, h, AUTOENCODER_MAX_SIDE);
    if (maxval < 1 || maxval > 65535)
        return error_set(err, "%s: PGM maxval %ld outside 1..65535", path, maxval);
    size_t count = (size_t)w * (size_t)h;
    float *values = xmalloc(count * sizeof(float));
    bool ok = true;
    if (binary) {
        /* Exactly one whitespace byte separates maxval from the raster. */
        if (at >= size || !isspace((unsigned char)text[at])) ok = error_set(err, "%s: bad PGM header: no whitespace after maxval", path);
        at++;
        size_t bytes_per = maxval > 255 ? 2 : 1;
        if (ok && size - (at <= size ? at : size) < count * bytes_per)
            ok = error_set(err, "%s: truncated: %zu bytes of pixels, the header promises %zu", path,
                           at <= size ? size - at : 0, count * bytes_per);
        for (size_t i = 0; ok && i < count; i++) {
            const unsigned char *b = (const unsigned char *)text + at + i * bytes_per;
            long value = bytes_per == 2 ? (long)b[0] << 8 | b[1] : b[0];
            if (value > maxval) ok = error_set(err, "%s: pixel %zu is %ld, above maxval %ld", path, i, value, maxval);
            values[i] = (float)value / (float)maxval;
        }
    } else {
        for (size_t i = 0; ok && i < count; i++) {
            long value;
            if (!pgm_number(text, size, &at, &value))
                ok = error_set(err, "%s: pixel %zu: expected a number (the header promises %zu)", path, i, count);
            else if (value > maxval)
                ok = error_set(err, "%s: pixel %zu is %ld, above maxval %ld", path, i, value, maxval);
            else
                values[i] = (float)value / (float)maxval;
        }
    }
    if (!ok) {
        free(values);
        return false;
    }
    *pixels = values;
    *height = (int)h;
    *width = (int)w;
    return true;
}

bool autoencoder_write_pgm(const char *path, const float *pixels, int height, int width, Error *err) {
    char header[64];
    int header_size = snprintf(header, sizeof header, "P5\n%d %d\n255\n", width, height);
    size_t count = (size_t)height * width;
    unsigned char *bytes = xmalloc((size_t)header_size + count);
    memcpy(bytes, header, (size_t)header_size);
    for (size_t i = 0; i < count; i++) bytes[header_size + i] = to_byte(pixels[i]);
    bool ok = file_write_atomic(path, bytes, (size_t)header_size + count, err);
    free(bytes);
    return ok;
}

/* ==== PNG (write only) =========================================================== */

/* A chunk: 4-byte length, 4-byte type, data, CRC-32 of type and data. */
static unsigned char *png_chunk(unsigned char *out, const char *type, const unsigned char *data,
                                size_t size) {
    put_big_endian32(out, (uint32_t)size);
    memcpy(out + 4, type, 4);
    if (size > 0) memcpy(out + 8, data, size);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, out + 4, (uInt)(size + 4));
    put_big_endian32(out + 8 + size, (uint32_t)crc);
    return out + 12 + size;
}

/* Each pixel becomes a scale x scale block, so small images stay visible. */
bool autoencoder_write_png(const char *path, const float *pixels, int height, int width, int scale,
                           Error *err) {
    int H = height * scale, W = width * scale;
    size_t raw_size = (size_t)H * (W + 1); /* each row: filter byte 0, then W bytes */
    unsigned char *raw = xmalloc(raw_size);
    for (int y = 0; y < H; y++) {
        raw[(size_t)y * (W + 1)] = 0;
        for (int x = 0; x < W; x++) raw[(size_t)y * (W + 1) + 1 + x] = to_byte(pixels[(y / scale) * width + x / scale]);
    }
    uLongf packed_size = compressBound((uLong)raw_size);
    unsigned char *packed = xmalloc(packed_size);
    int status = compress2(packed, &packed_size, raw, (uLong)raw_size, Z_BEST_COMPRESSION);
    free(raw);
    if (status != Z_OK) {
        free(packed);
        return error_set(err, "%s: zlib compression failed", path);
    }
    unsigned char *file = xmalloc(8 + 25 + 12 + packed_size + 12);
    static const unsigned char SIGNATURE[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(file, SIGNATURE, 8);
    unsigned char ihdr[13];
    put_big_endian32(ihdr, (uint32_t)W);
    put_big_endian32(ihdr + 4, (uint32_t)H);
    ihdr[8] = 8;  /* bits per sample */
    ihdr[9] = 0;  /* colour type 0: greyscale */
    ihdr[10] = 0, ihdr[11] = 0, ihdr[12] = 0; /* deflate, adaptive filters, no interlace */
    unsigned char *end = png_chunk(file + 8, "IHDR", ihdr, sizeof ihdr);
    end = png_chunk(end, "IDAT", packed, packed_size);
    end = png_chunk(end, "IEND", NULL, 0);
    bool ok = file_write_atomic(path, file, (size_t)(end - file), err);
    free(packed);
    free(file);
    return ok;
}

/* ==== CSV ======================================================================== */

enum { CSV_MAX_BYTES = 512 << 20 };

/* Number of comma-separated fields on the line starting at `line`. */
static int csv_fields(const char *line) {
    int fields = 1;
    for (const char *p = line; *p && *p != '\n'; p++) fields += *p == ',';
    return fields;
}

static bool line_is_blank(const char *line) {
    for (const char *p = line; *p && *p != '\n'; p++)
        if (!isspace((unsigned char)*p)) return false;
    return true;
}

/* Parses one number of a CSV field ending at ',' '\n' '\r' or the end. */
static bool csv_number(const char **p, double *value) {
    /* strtod skips any whitespace, newlines included: an empty last field
     * ("5,\n3,4") would read the next line's first number. */
    while (**p == ' ' || **p == '\t') (*p)++;
    if (**p == '\n' || **p == '\r') return false;
    char *end;
    errno = 0;
    *value = strtod(*p, &end);
    if (end == *p || errno != 0 || !isfinite(*value)) return false;
    while (*end == ' ' || *end == '\r') end++;
    if (*end != ',' && *end != '\n' && *end != '\0') return false;
    *p = end;
    return true;
}

bool autoencoder_read_csv(const char *path, AutoencoderDataset *data, Error *err) {
    memset(data, 0, sizeof *data);
    char *text;
    size_t size;
    if (!file_read_all(path, CSV_MAX_BYTES, &text, &size, err)) return false;
    bool ok = autoencoder_parse_csv(text, size, path, data, err);
    free(text);
    return ok;
}

bool autoencoder_parse_csv(const char *text, size_t size, const char *path, AutoencoderDataset *data,
                           Error *err) {
    memset(data, 0, sizeof *data);
    if (text_is_binary(text, size))
        return error_set(err, "%s: binary data in a CSV file (use --data for IDX files too)", path);
    /* First pass: count the lines and the fields of the first data line. */
    const char *first = text;
    int line_number = 1;
    /* A header line ("label,pixel0,...") starts with a letter. */
    if (isalpha((unsigned char)*first)) {
        first = strchr(first, '\n');
        first = first ? first + 1 : text + size;
        line_number = 2;
    }
    int rows = 0, fields = 0;
    for (const char *p = first; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
        if (line_is_blank(p)) continue;
        if (fields == 0) fields = csv_fields(p);
        if (++rows > AUTOENCODER_MAX_IMAGES) break;
    }
    if (rows == 0 || fields < 2)
        return error_set(err, "%s: no images: expected lines of label,pixel,pixel,...", path);
    int D = fields - 1;
    if ((long)rows * D > AUTOENCODER_MAX_PIXELS)
        return error_set(err, "%s: %d images of %d pixels exceed the limit of %ld pixels", path, rows, D,
                         (long)AUTOENCODER_MAX_PIXELS);
    data->images = xmalloc(sizeof(float) * (size_t)rows * D);
    data->labels = xmalloc(sizeof(int) * (size_t)rows);
    double largest = 0;
    int n = 0;
    bool ok = true;
    for (const char *p = first; ok && *p && n < rows; line_number++) {
        const char *next = strchr(p, '\n');
        if (!line_is_blank(p)) {
            if (csv_fields(p) != fields) {
                ok = error_set(err, "%s: line %d: %d fields, expected %d (label and %d pixels) as on the first line",
                               path, line_number, csv_fields(p), fields, D);
                break;
            }
            double value;
            const char *q = p;
            if (!csv_number(&q, &value) || value < 0 || value >= AUTOENCODER_MAX_CLASSES ||
                value != floor(value)) {
                ok = error_set(err, "%s: line %d: the label must be an integer in 0..%d (at most %d "
                               "classes)", path, line_number, AUTOENCODER_MAX_CLASSES - 1,
                               AUTOENCODER_MAX_CLASSES);
                break;
            }
            data->labels[n] = (int)value;
            for (int i = 0; i < D; i++) {
                q++; /* the comma */
                if (!csv_number(&q, &value) || value < 0 || value > 255) {
                    ok = error_set(err, "%s: line %d: pixel %d is not a number in 0..255", path, line_number, i + 1);
                    break;
                }
                if (value > largest) largest = value;
                data->images[(size_t)n * D + i] = (float)value;
            }
            n++;
        }
        p = next ? next + 1 : p + strlen(p);
    }
    if (!ok) {
        autoencoder_dataset_free(data);
        return false;
    }
    data->count = n;
    /* 0..255 pixels are scaled to [0, 1]; values already there are kept. */
    if (largest > 1)
        for (size_t i = 0; i < (size_t)n * D; i++) data->images[i] /= 255.0f;
    int side = (int)lrint(sqrt((double)D));
    data->height = side * side == D ? side : 1;
    data->width = side * side == D ? side : D;
    autoencoder_dataset_name_classes(data);
    return true;
}

bool autoencoder_write_csv(const char *path, const AutoencoderDataset *data, Error *err) {
    int D = data->height * data->width;
    size_t capacity = (size_t)data->count * ((size_t)D * 16 + 16) + 64, used = 0;
    char *text = xmalloc(capacity);
    used += (size_t)snprintf(text, capacity, "label");
    for (int i = 0; i < D; i++) used += (size_t)snprintf(text + used, capacity - used, ",p%d", i);
    text[used++] = '\n';
    for (int n = 0; n < data->count; n++) {
        used += (size_t)snprintf(text + used, capacity - used, "%d", data->labels[n] < 0 ? 0 : data->labels[n]);
        for (int i = 0; i < D; i++)
            used += (size_t)snprintf(text + used, capacity - used, ",%.9g", (double)data->images[(size_t)n * D + i]);
        text[used++] = '\n';
    }
    bool ok = file_write_atomic(path, text, used, err);
    free(text);
    return ok;
}

/* ==== Data sets and splits ============================================================= */

static bool ends_with(const char *text, const char *suffix) {
    size_t a = strlen(text), b = strlen(suffix);
    return a >= b && strcmp(text + a - b, suffix) == 0;
}

bool autoencoder_load_dataset(const AutoencoderDataOptions *options, AutoencoderDataset *data, Error *err) {
    if (options->data_path == NULL) {
        if (options->labels_path != NULL)
            return error_set(err, "--labels %s: needs --data with the matching IDX images", options->labels_path);
        Rng rng;
        rng_seed(&rng, (uint64_t)options->seed, 10);
        autoencoder_glyphs_generate(data, options->glyph_count, options->glyph_size, options->glyph_noise, &rng);
        return true;
    }
    const char *path = options->data_path;
    if (ends_with(path, ".csv")) {
        if (options->labels_path != NULL)
            return error_set(err, "--labels: CSV files hold their labels in the first column");
        return autoencoder_read_csv(path, data, err);
    }
    if (ends_with(path, ".pgm")) {
        memset(data, 0, sizeof *data);
        if (!autoencoder_read_pgm(path, &data->images, &data->height, &data->width, err)) return false;
        data->count = 1;
        data->labels = xmalloc(sizeof(int));
        data->labels[0] = -1;
        return true;
    }
    if (!autoencoder_read_idx_images(path, data, err)) return false;
    if (options->labels_path != NULL && !autoencoder_read_idx_labels(options->labels_path, data, err)) {
        autoencoder_dataset_free(data);
        return false;
    }
    return true;
}

void autoencoder_split(const AutoencoderDataset *data, float validation_fraction, const bool *holdout,
                       long seed, AutoencoderSplit *split) {
    Rng rng;
    rng_seed(&rng, (uint64_t)seed, 11);
    int *train, *validation, train_count, validation_count;
    split_indices(data->count, validation_fraction, &rng, &train, &train_count, &validation, &validation_count);
    memset(split, 0, sizeof *split);
    split->train = xmalloc(sizeof(int) * (size_t)(train_count + 1));
    split->validation = xmalloc(sizeof(int) * (size_t)(validation_count + 1));
    split->holdout = xmalloc(sizeof(int) * (size_t)(data->count + 1));
    for (int pass = 0; pass < 2; pass++) {
        const int *from = pass == 0 ? train : validation;
        int count = pass == 0 ? train_count : validation_count;
        for (int i = 0; i < count; i++) {
            int n = from[i], label = data->labels[n];
            if (label >= 0 && label < data->class_count && holdout[label])
                split->holdout[split->holdout_count++] = n;
            else if (pass == 0)
                split->train[split->train_count++] = n;
            else
                split->validation[split->validation_count++] = n;
        }
    }
    free(train);
    free(validation);
}

void autoencoder_split_free(AutoencoderSplit *split) {
    free(split->train);
    free(split->validation);
    free(split->holdout);
    memset(split, 0, sizeof *split);
}

static bool is_digit_name(const char *name) { return name[0] >= '0' && name[0] <= '9' && name[1] == '\0'; }

bool autoencoder_parse_classes(const char *text, const AutoencoderDataset *data, bool *mask, Error *err) {
    memset(mask, 0, sizeof(bool) * AUTOENCODER_MAX_CLASSES);
    if (text == NULL || text[0] == '\0' || strcmp(text, "none") == 0) return true;
    if (strcmp(text, "shapes") == 0 || strcmp(text, "digits") == 0) {
        bool digits = strcmp(text, "digits") == 0;
        for (int k = 0; k < data->class_count; k++) mask[k] = is_digit_name(data->class_names[k]) == digits;
        return true;
    }
    char copy[512];
    snprintf(copy, sizeof copy, "%s", text);
    for (char *item = strtok(copy, ","); item != NULL; item = strtok(NULL, ",")) {
        int found = -1;
        for (int k = 0; k < data->class_count && found < 0; k++)
            if (strcmp(data->class_names[k], item) == 0) found = k;
        if (found < 0)
            return error_set(err, "--holdout: no class '%s' in this data (classes: %s ... %s; or 'shapes', 'digits', 'none')",
                             item, data->class_count ? data->class_names[0] : "none",
                             data->class_count ? data->class_names[data->class_count - 1] : "");
        mask[found] = true;
    }
    return true;
}
