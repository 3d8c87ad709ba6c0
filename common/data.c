/* common/data.c: reading files, UTF-8, vocabularies, tab-separated pairs and
 * mini-batches.  The API and its contract are in data.h.
 *
 * Sections, in reading order:
 *   1. Whole files: file_read_all, file_write_atomic, text_is_binary
 *   2. UTF-8: one code point at a time
 *   3. Vocabulary: token <-> id, with a small open-addressing hash table
 *   4. Tab-separated pairs: source<TAB>target lines, bad lines counted
 *   5. Mini-batches: epoch-wise shuffling and train/validation splits
 *
 * Array lengths are named in the shape comments: (size) bytes of text,
 * (count) examples, (batch) indices in one mini-batch.
 */
#include "data.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"

/* ==== 1. Whole files ======================================================= */

/* Reads an open stream to its end into *contents.  The loop does not trust
 * the size stat() reported: files under /proc report 0, and a file that is
 * being appended to grows while we read.  `expected` is only the first
 * guess at the buffer size. */
static bool read_stream(FILE *file, const char *path, size_t expected, size_t max_bytes,
                        char **contents, size_t *size, Error *err) {
    /* +1 for the NUL terminator, +1 so that the read which finds the end of
     * a file of exactly `expected` bytes needs no bigger buffer. */
    size_t capacity = expected + 2;
    size_t length = 0;
    char *buffer = xmalloc(capacity);
    for (;;) {
        if (length + 1 == capacity) {
            if (length > max_bytes) break; /* read enough to know it is too big */
            capacity = capacity < 4096 ? 4096 : capacity * 2;
            buffer = xrealloc(buffer, capacity);
        }
        size_t got = fread(buffer + length, 1, capacity - 1 - length, file);
        length += got;
        if (got == 0) break;
    }
    if (ferror(file)) {
        free(buffer);
        return error_set(err, "%s: read error: %s", path, strerror(errno));
    }
    if (length > max_bytes) {
        free(buffer);
        return error_set(err, "%s: grew past the limit of %zu bytes while being read", path,
                         max_bytes);
    }
    buffer[length] = '\0';
    *contents = buffer;
    *size = length;
    return true;
}

bool file_read_all(const char *path, size_t max_bytes, char **contents, size_t *size,
                   Error *err) {
    *contents = NULL;
    *size = 0;
    /* stat first, so a directory or a huge file fails with a clear message
     * before we open or allocate anything. */
    struct stat info;
    if (stat(path, &info) != 0) {
        if (errno == ENOENT) return error_set(err, "%s: no such file", path);
        return error_set(err, "%s: cannot access: %s", path, strerror(errno));
    }
    if (S_ISDIR(info.st_mode))
        return error_set(err, "%s: is a directory, expected a file", path);
    if (!S_ISREG(info.st_mode))
        return error_set(err, "%s: is not a regular file (a device or a pipe?), expected a file",
                         path);
    if ((uintmax_t)info.st_size > (uintmax_t)max_bytes)
        return error_set(err, "%s: %jd bytes is over the limit of %zu", path,
                         (intmax_t)info.st_size, max_bytes);

    FILE *file = fopen(path, "rb");
    if (file == NULL) return error_set(err, "%s: cannot open: %s", path, strerror(errno));
    bool ok = read_stream(file, path, (size_t)info.st_size, max_bytes, contents, size, err);
    fclose(file);
    return ok;
}

/* Writes to "<path>.tmp" and renames it over `path`.  rename() within one
 * directory is atomic on POSIX file systems, so a reader (or a crash) sees
 * either the old file or the whole new one, never half of it.  The fsync
 * before the rename makes sure the bytes are on disk before the name is. */
bool file_write_atomic(const char *path, const void *bytes, size_t size, Error *err) {
    size_t path_length = strlen(path);
    char *temporary = xmalloc(path_length + sizeof ".tmp");
    memcpy(temporary, path, path_length);
    memcpy(temporary + path_length, ".tmp", sizeof ".tmp");

    FILE *file = fopen(temporary, "wb");
    if (file == NULL) {
        error_set(err, "%s: cannot create the temporary file %s: %s", path, temporary,
                  strerror(errno));
        free(temporary);
        return false;
    }
    const char *failed_step = NULL;
    if (size > 0 && fwrite(bytes, 1, size, file) != size) failed_step = "write";
    else if (fflush(file) != 0) failed_step = "write";
    else if (fsync(fileno(file)) != 0) failed_step = "sync";
    int saved_errno = errno;
    if (fclose(file) != 0 && failed_step == NULL) {
        failed_step = "close";
        saved_errno = errno;
    }
    if (failed_step == NULL && rename(temporary, path) != 0) {
        failed_step = "rename the temporary file to";
        saved_errno = errno;
    }
    if (failed_step != NULL) {
        remove(temporary); /* leave no half-written .tmp behind */
        error_set(err, "%s: cannot %s it: %s", path, failed_step, strerror(saved_errno));
    }
    free(temporary);
    return failed_step == NULL;
}

bool text_is_binary(const char *bytes, size_t size) {
    /* Text never holds NUL; nearly every binary format does, early on. */
    return size > 0 && memchr(bytes, '\0', size) != NULL;
}

/* ==== 2. UTF-8 ============================================================= */

/* A code point U is stored as:
 *   U+0000..U+007F     0xxxxxxx
 *   U+0080..U+07FF     110xxxxx 10xxxxxx
 *   U+0800..U+FFFF     1110xxxx 10xxxxxx 10xxxxxx
 *   U+10000..U+10FFFF  11110xxx 10xxxxxx 10xxxxxx 10xxxxxx
 * Each value has exactly one valid encoding: the shortest.  A longer
 * ("overlong") form such as C0 AF for '/' is rejected, because accepting it
 * lets two different byte strings mean the same text. */
int utf8_decode(const char *bytes, size_t size, uint32_t *codepoint) {
    if (size == 0) return 0;
    const unsigned char *b = (const unsigned char *)bytes;
    int length;
    uint32_t value, smallest;
    if (b[0] < 0x80) {
        *codepoint = b[0];
        return 1;
    } else if (b[0] >= 0xC2 && b[0] <= 0xDF) { /* C0, C1 could only be overlong */
        length = 2, value = b[0] & 0x1Fu, smallest = 0x80;
    } else if (b[0] >= 0xE0 && b[0] <= 0xEF) {
        length = 3, value = b[0] & 0x0Fu, smallest = 0x800;
    } else if (b[0] >= 0xF0 && b[0] <= 0xF4) { /* F5..FF would exceed U+10FFFF */
        length = 4, value = b[0] & 0x07u, smallest = 0x10000;
    } else {
        return 0; /* a stray continuation byte 80..BF, or C0, C1, F5..FF */
    }
    if (size < (size_t)length) return 0; /* truncated */
    for (int i = 1; i < length; i++) {
        if ((b[i] & 0xC0u) != 0x80u) return 0; /* not a continuation byte */
        value = (value << 6) | (b[i] & 0x3Fu);
    }
    if (value < smallest) return 0;                      /* overlong */
    if (value >= 0xD800 && value <= 0xDFFF) return 0;    /* UTF-16 surrogate */
    if (value > 0x10FFFF) return 0;                      /* beyond Unicode */
    *codepoint = value;
    return length;
}

/* Returns 0 (and writes nothing) for a value that has no UTF-8 form: a
 * surrogate or anything above U+10FFFF. */
int utf8_encode(uint32_t codepoint, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (codepoint < 0x80) {
        o[0] = (unsigned char)codepoint;
        return 1;
    }
    if (codepoint < 0x800) {
        o[0] = (unsigned char)(0xC0 | (codepoint >> 6));
        o[1] = (unsigned char)(0x80 | (codepoint & 0x3F));
        return 2;
    }
    if (codepoint >= 0xD800 && codepoint <= 0xDFFF) return 0;
    if (codepoint < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (codepoint >> 12));
        o[1] = (unsigned char)(0x80 | ((codepoint >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (codepoint & 0x3F));
        return 3;
    }
    if (codepoint > 0x10FFFF) return 0;
    o[0] = (unsigned char)(0xF0 | (codepoint >> 18));
    o[1] = (unsigned char)(0x80 | ((codepoint >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((codepoint >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (codepoint & 0x3F));
    return 4;
}

long utf8_first_invalid(const char *bytes, size_t size) {
    size_t offset = 0;
    while (offset < size) {
        uint32_t codepoint;
        int used = utf8_decode(bytes + offset, size - offset, &codepoint);
        if (used == 0) return (long)offset;
        offset += (size_t)used;
    }
    return -1;
}

/* ==== 3. Vocabulary ======================================================== */

/* Tokens live in an array indexed by id, so ids follow insertion order and
 * decoding is one array lookup.  Finding the id of a token uses a hash table
 * with open addressing: buckets[] holds ids (-1 = empty); a token hashes to
 * a bucket, and on a collision we try the next bucket, then the next
 * (linear probing).  Keeping the table at most half full keeps those probe
 * runs short, and a power-of-two bucket count turns "hash mod count" into
 * "hash & (count - 1)". */

enum { VOCAB_FIRST_BUCKETS = 16 };

/* FNV-1a, 32-bit: xor in each byte, then multiply by the FNV prime.  Simple,
 * and it spreads short strings (single characters!) well. */
static uint32_t fnv1a_hash(const char *text) {
    uint32_t hash = 2166136261u; /* FNV offset basis */
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        hash ^= *p;
        hash *= 16777619u; /* FNV prime */
    }
    return hash;
}

/* The bucket that holds `token`, or the empty bucket where it would go. */
static int vocab_bucket_of(const Vocab *vocab, const char *token) {
    int mask = vocab->bucket_count - 1;
    int bucket = (int)(fnv1a_hash(token) & (uint32_t)mask);
    while (vocab->buckets[bucket] != -1 && strcmp(vocab->tokens[vocab->buckets[bucket]], token) != 0)
        bucket = (bucket + 1) & mask;
    return bucket;
}

/* Doubles the table (or creates it) and re-inserts every id. */
static void vocab_grow_buckets(Vocab *vocab) {
    int new_count = vocab->bucket_count == 0 ? VOCAB_FIRST_BUCKETS : vocab->bucket_count * 2;
    free(vocab->buckets);
    vocab->buckets = xmalloc((size_t)new_count * sizeof *vocab->buckets);
    for (int i = 0; i < new_count; i++) vocab->buckets[i] = -1;
    vocab->bucket_count = new_count;
    for (int id = 0; id < vocab->size; id++)
        vocab->buckets[vocab_bucket_of(vocab, vocab->tokens[id])] = id;
}

/* An empty vocabulary owns no memory; the table is created on first add. */
void vocab_init(Vocab *vocab) {
    memset(vocab, 0, sizeof *vocab);
}

void vocab_free(Vocab *vocab) {
    for (int id = 0; id < vocab->size; id++) free(vocab->tokens[id]);
    free(vocab->tokens);
    free(vocab->buckets);
    vocab_init(vocab);
}

int vocab_add(Vocab *vocab, const char *token) {
    /* Grow at 50% load, before inserting: size + 1 must stay <= half. */
    if (2 * (vocab->size + 1) > vocab->bucket_count) vocab_grow_buckets(vocab);
    int bucket = vocab_bucket_of(vocab, token);
    if (vocab->buckets[bucket] != -1) return vocab->buckets[bucket];
    if (vocab->size == vocab->capacity) {
        vocab->capacity = vocab->capacity == 0 ? 64 : vocab->capacity * 2;
        vocab->tokens = xrealloc(vocab->tokens, (size_t)vocab->capacity * sizeof *vocab->tokens);
    }
    int id = vocab->size++;
    vocab->tokens[id] = xstrdup(token);
    vocab->buckets[bucket] = id;
    return id;
}

int vocab_find(const Vocab *vocab, const char *token) {
    if (vocab->bucket_count == 0) return -1;
    return vocab->buckets[vocab_bucket_of(vocab, token)];
}

bool vocab_add_chars(Vocab *vocab, const char *text, size_t size, Error *err) {
    size_t offset = 0;
    while (offset < size) {
        char character[5] = {0}; /* one code point: at most 4 bytes + NUL */
        uint32_t codepoint;
        int used = utf8_decode(text + offset, size - offset, &codepoint);
        if (used == 0) return error_set(err, "invalid UTF-8 at byte %zu", offset);
        memcpy(character, text + offset, (size_t)used);
        vocab_add(vocab, character);
        offset += (size_t)used;
    }
    return true;
}

/* Names a character for an error message: 'é' (U+00E9), or just U+000A for
 * control characters, which would garble a one-line message. */
static void describe_character(const char *bytes, int length, uint32_t codepoint, char *out,
                               size_t out_size) {
    if (codepoint < 0x20 || codepoint == 0x7F)
        snprintf(out, out_size, "U+%04X", (unsigned)codepoint);
    else
        snprintf(out, out_size, "'%.*s' (U+%04X)", length, bytes, (unsigned)codepoint);
}

/* Positions in messages count characters (code points) from 0. */
int vocab_encode_chars(const Vocab *vocab, const char *text, size_t size, int *ids,
                       int max_ids, Error *err) {
    return vocab_encode_chars_or(vocab, text, size, -1, ids, max_ids, err);
}

int vocab_encode_chars_or(const Vocab *vocab, const char *text, size_t size, int unknown_id,
                          int *ids, int max_ids, Error *err) {
    int count = 0;
    size_t offset = 0;
    while (offset < size) {
        char character[5] = {0};
        uint32_t codepoint;
        int used = utf8_decode(text + offset, size - offset, &codepoint);
        if (used == 0) {
            error_set(err, "invalid UTF-8 at byte %zu", offset);
            return -1;
        }
        if (count == max_ids) {
            error_set(err, "text has more than %d characters, the most allowed here", max_ids);
            return -1;
        }
        memcpy(character, text + offset, (size_t)used);
        int id = vocab_find(vocab, character);
        if (id < 0) id = unknown_id;
        if (id < 0) {
            char described[32];
            describe_character(character, used, codepoint, described, sizeof described);
            error_set(err, "character %s at position %d is not in the vocabulary", described,
                      count);
            return -1;
        }
        ids[count++] = id;
        offset += (size_t)used;
    }
    return count;
}

/* Truncates between tokens, never inside one, so a short buffer never ends
 * in half a UTF-8 character.  Like snprintf, returns the full length. */
size_t vocab_decode(const Vocab *vocab, const int *ids, int count, char *out,
                    size_t out_size) {
    size_t needed = 0;
    bool fits = true;
    for (int i = 0; i < count; i++) {
        if (ids[i] < 0 || ids[i] >= vocab->size)
            fatal("vocab_decode: id %d is outside the vocabulary of %d tokens", ids[i],
                  vocab->size);
        size_t length = strlen(vocab->tokens[ids[i]]);
        if (fits && needed + length < out_size) memcpy(out + needed, vocab->tokens[ids[i]], length);
        else if (fits) {
            fits = false;
            if (out_size > 0) out[needed] = '\0';
        }
        needed += length;
    }
    if (fits && out_size > 0) out[needed] = '\0';
    return needed;
}

char *vocab_to_json(const Vocab *vocab) {
    StringBuilder sb = {0};
    sb_append(&sb, "[");
    for (int id = 0; id < vocab->size; id++) {
        if (id > 0) sb_append(&sb, ",");
        json_append_string(&sb, vocab->tokens[id]);
    }
    sb_append(&sb, "]");
    return sb.data; /* the caller owns the buffer */
}

/* `vocab` need not be initialised.  On failure it is left empty (and owns no
 * memory), so the caller may vocab_free it or not. */
bool vocab_from_json(Vocab *vocab, const char *json, Error *err) {
    vocab_init(vocab);
    JsonValue root;
    Error parse_error;
    if (!json_parse(json, strlen(json), &root, &parse_error))
        return error_set(err, "vocabulary: %s", parse_error.message);
    bool ok = true;
    if (root.type != JSON_ARRAY)
        ok = error_set(err, "vocabulary: expected a JSON array of strings");
    for (int i = 0; ok && i < root.count; i++) {
        const JsonValue *item = &root.items[i];
        if (item->type != JSON_STRING) {
            ok = error_set(err, "vocabulary: token %d is not a string", i);
        } else if (vocab_find(vocab, item->string) >= 0) {
            ok = error_set(err, "vocabulary: token %d \"%.200s\" repeats token %d", i,
                           item->string, vocab_find(vocab, item->string));
        } else {
            vocab_add(vocab, item->string);
        }
    }
    json_free(&root);
    if (!ok) vocab_free(vocab);
    return ok;
}

/* ==== 4. Tab-separated pairs =============================================== */

/* How one line was judged.  Only LINE_PAIR lines are kept. */
typedef enum { LINE_PAIR, LINE_EMPTY, LINE_NO_TAB, LINE_TOO_LONG, LINE_BAD_UTF8 } LineKind;

/* One line, split into its first two columns (pointers into the file). */
typedef struct {
    const char *source;
    size_t source_length;
    const char *target;
    size_t target_length;
} LineColumns;

static bool is_blank(const char *text, size_t length) {
    for (size_t i = 0; i < length; i++)
        if (text[i] != ' ' && text[i] != '\t') return false;
    return true;
}

/* Judges line[0..length) (without its line ending).  A line whose source or
 * target column is empty counts as "no tab": it has one usable column. */
static LineKind classify_line(const char *line, size_t length, size_t max_line_bytes,
                              LineColumns *columns) {
    if (max_line_bytes > 0 && length > max_line_bytes) return LINE_TOO_LONG;
    if (is_blank(line, length)) return LINE_EMPTY;
    if (utf8_first_invalid(line, length) >= 0) return LINE_BAD_UTF8;
    const char *tab = memchr(line, '\t', length);
    if (tab == NULL) return LINE_NO_TAB;
    const char *target = tab + 1;
    const char *end = line + length;
    const char *next_tab = memchr(target, '\t', (size_t)(end - target));
    if (next_tab != NULL) end = next_tab; /* columns after the second are ignored */
    columns->source = line;
    columns->source_length = (size_t)(tab - line);
    columns->target = target;
    columns->target_length = (size_t)(end - target);
    if (columns->source_length == 0 || columns->target_length == 0) return LINE_NO_TAB;
    return LINE_PAIR;
}

/* Lowercases A-Z and, in UTF-8, the Latin-1 capitals U+00C0..U+00DE (À..Þ,
 * except × U+00D7).  Both map to a letter 0x20 higher with the same byte
 * count (C3 80..C3 9E -> C3 A0..C3 BE), so this works in place.  Other
 * scripts are left alone: full Unicode case mapping needs tables. */
void text_lowercase(char *text) {
    unsigned char *t = (unsigned char *)text;
    for (size_t i = 0; t[i] != '\0'; i++) {
        if (t[i] >= 'A' && t[i] <= 'Z') {
            t[i] = (unsigned char)(t[i] + ('a' - 'A'));
        } else if (t[i] == 0xC3 && t[i + 1] >= 0x80 && t[i + 1] <= 0x9E && t[i + 1] != 0x97) {
            t[i + 1] = (unsigned char)(t[i + 1] + 0x20);
            i++;
        }
    }
}

static char *copy_span(const char *text, size_t length) {
    char *copy = xmalloc(length + 1);
    memcpy(copy, text, length);
    copy[length] = '\0';
    return copy;
}

static void pair_list_append(PairList *list, int *capacity, const LineColumns *columns,
                             int line_number, bool lowercase) {
    if (list->count == *capacity) {
        *capacity = *capacity == 0 ? 256 : *capacity * 2;
        list->pairs = xrealloc(list->pairs, (size_t)*capacity * sizeof *list->pairs);
    }
    TextPair *pair = &list->pairs[list->count++];
    pair->source = copy_span(columns->source, columns->source_length);
    pair->target = copy_span(columns->target, columns->target_length);
    pair->line = line_number;
    if (lowercase) {
        text_lowercase(pair->source);
        text_lowercase(pair->target);
    }
}

/* 1-based line number of byte `offset`: one plus the newlines before it. */
static int line_number_of(const char *text, size_t offset) {
    int line = 1;
    for (size_t i = 0; i < offset; i++) line += text[i] == '\n';
    return line;
}

/* Walks the lines of text[0..size), keeping pairs and counting the rest.
 * A line ends at '\n'; a '\r' before it (Windows line endings) is dropped. */
static void parse_pair_lines(const char *text, size_t size, size_t max_line_bytes,
                             bool lowercase, PairList *list) {
    int capacity = 0;
    int line_number = 0;
    size_t start = 0;
    while (start < size) {
        const char *newline = memchr(text + start, '\n', size - start);
        size_t end = newline != NULL ? (size_t)(newline - text) : size;
        size_t length = end - start;
        if (length > 0 && text[start + length - 1] == '\r') length--;
        line_number++;
        LineColumns columns;
        switch (classify_line(text + start, length, max_line_bytes, &columns)) {
        case LINE_PAIR: pair_list_append(list, &capacity, &columns, line_number, lowercase); break;
        case LINE_EMPTY: list->skipped_empty++; break;
        case LINE_NO_TAB: list->skipped_no_tab++; break;
        case LINE_TOO_LONG: list->skipped_too_long++; break;
        case LINE_BAD_UTF8: list->skipped_bad_utf8++; break;
        }
        start = end + 1;
    }
}

/* max_line_bytes == 0 means no line length limit. */
bool tsv_read_pairs(const char *path, size_t max_line_bytes, bool lowercase, PairList *list,
                    Error *err) {
    memset(list, 0, sizeof *list);
    char *text;
    size_t size;
    if (!file_read_all(path, DATA_MAX_FILE_BYTES, &text, &size, err)) return false;
    bool ok = tsv_parse_pairs(text, size, path, max_line_bytes, lowercase, list, err);
    free(text);
    return ok;
}

bool tsv_parse_pairs(const char *text, size_t size, const char *path, size_t max_line_bytes,
                     bool lowercase, PairList *list, Error *err) {
    memset(list, 0, sizeof *list);
    bool ok = true;
    if (size == 0) {
        ok = error_set(err, "%s: empty file, expected source<TAB>target lines", path);
    } else if (text_is_binary(text, size)) {
        size_t nul = (size_t)((const char *)memchr(text, '\0', size) - text);
        ok = error_set(err, "%s: line %d: NUL byte; this looks like a binary file, expected "
                       "source<TAB>target text lines", path, line_number_of(text, nul));
    } else {
        /* A UTF-8 byte order mark (some Windows editors write one) is not text. */
        size_t skip = size >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
        parse_pair_lines(text + skip, size - skip, max_line_bytes, lowercase, list);
        if (list->count == 0)
            ok = error_set(err, "%s: no usable source<TAB>target line (skipped %d blank, %d "
                           "without a tab, %d longer than %zu bytes, %d invalid UTF-8)", path,
                           list->skipped_empty, list->skipped_no_tab, list->skipped_too_long,
                           max_line_bytes, list->skipped_bad_utf8);
    }
    if (!ok) pair_list_free(list);
    return ok;
}

void pair_list_free(PairList *list) {
    for (int i = 0; i < list->count; i++) {
        free(list->pairs[i].source);
        free(list->pairs[i].target);
    }
    free(list->pairs);
    memset(list, 0, sizeof *list);
}

void pair_list_warn_skipped(const PairList *list, const char *path, size_t max_line_bytes) {
    int skipped = list->skipped_empty + list->skipped_no_tab + list->skipped_too_long +
                  list->skipped_bad_utf8;
    if (skipped > 0)
        fprintf(stderr, "%s: skipped %d lines (%d blank, %d without a tab, %d longer than %zu "
                "bytes, %d invalid UTF-8)\n", path, skipped, list->skipped_empty,
                list->skipped_no_tab, list->skipped_too_long, max_line_bytes,
                list->skipped_bad_utf8);
}

/* ==== 5. Mini-batches ====================================================== */

/* Sampling without replacement within an epoch (rather than independent
 * draws) means every example contributes once per pass, which lowers the
 * variance of an epoch's gradient and makes "epoch" mean something. */
void batch_sampler_init(BatchSampler *sampler, int count, Rng *rng) {
    if (count < 1) fatal("batch_sampler_init: need at least one example, got %d", count);
    sampler->order = xmalloc((size_t)count * sizeof *sampler->order);
    for (int i = 0; i < count; i++) sampler->order[i] = i;
    rng_shuffle(rng, sampler->order, count);
    sampler->count = count;
    sampler->position = 0;
    sampler->epoch = 0;
}

void batch_sampler_free(BatchSampler *sampler) {
    free(sampler->order);
    memset(sampler, 0, sizeof *sampler);
}

/* A batch may straddle two epochs: its first indices end one permutation
 * and the rest start the next. */
void batch_sampler_next(BatchSampler *sampler, Rng *rng, int *indices, int batch) {
    for (int i = 0; i < batch; i++) {
        indices[i] = sampler->order[sampler->position++];
        if (sampler->position == sampler->count) {
            /* Shuffling the previous permutation gives a uniformly random
             * new one, just as shuffling 0..count-1 would. */
            rng_shuffle(rng, sampler->order, sampler->count);
            sampler->position = 0;
            sampler->epoch++;
        }
    }
}

static int compare_ints(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Both parts come back sorted, so examples keep their file order (easier to
 * read when printing validation examples).  The fraction is checked by the
 * command line; a value outside [0, 1] here is a bug in the caller. */
void split_indices(int count, float validation_fraction, Rng *rng, int **train,
                   int *train_count, int **validation, int *validation_count) {
    if (!(validation_fraction >= 0.0f && validation_fraction <= 1.0f))
        fatal("split_indices: validation_fraction %g is outside [0, 1]",
              (double)validation_fraction);
    if (count < 0) fatal("split_indices: negative count %d", count);
    int *order = xmalloc((size_t)(count > 0 ? count : 1) * sizeof *order);
    for (int i = 0; i < count; i++) order[i] = i;
    rng_shuffle(rng, order, count);
    int held_out = (int)lround((double)count * (double)validation_fraction);
    if (held_out > count) held_out = count;

    *validation_count = held_out;
    *validation = xmalloc((size_t)(held_out > 0 ? held_out : 1) * sizeof **validation);
    memcpy(*validation, order, (size_t)held_out * sizeof *order);
    qsort(*validation, (size_t)held_out, sizeof **validation, compare_ints);

    *train_count = count - held_out;
    *train = xmalloc((size_t)(*train_count > 0 ? *train_count : 1) * sizeof **train);
    memcpy(*train, order + held_out, (size_t)*train_count * sizeof *order);
    qsort(*train, (size_t)*train_count, sizeof **train, compare_ints);
    free(order);
}
