/* common/data.h: reading files, vocabularies, tab-separated pairs, batches.
 *
 * Every reader returns false with a one-line Error naming the file (and the
 * line where there is one) instead of crashing or exiting, so tests can
 * check the message and programs decide the exit status.
 */
#ifndef TINYZOO_DATA_H
#define TINYZOO_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rng.h"
#include "util.h"

/* Default size limit for text inputs: large enough for any toy corpus,
 * small enough that a wrong path (a disk image, /dev/zero) fails at once. */
enum { DATA_MAX_FILE_BYTES = 64 << 20 };

/* Reads a whole regular file into a NUL-terminated malloc'd buffer.
 * Errors: missing, unreadable, a directory, larger than max_bytes.
 * *size receives the length without the terminator. */
bool file_read_all(const char *path, size_t max_bytes, char **contents, size_t *size,
                   Error *err);
/* Writes `size` bytes to `path` atomically: a temporary file in the same
 * directory, fsync, then rename, so readers never see a partial file. */
bool file_write_atomic(const char *path, const void *bytes, size_t size, Error *err);
/* True when the buffer holds a NUL byte: a binary file, not text. */
bool text_is_binary(const char *bytes, size_t size);

/* ---- UTF-8 ---------------------------------------------------------------- */

/* Decodes one code point from bytes[0..size).  Returns the number of bytes
 * used (1..4) or 0 for an invalid or truncated sequence (overlong forms,
 * surrogates and values above U+10FFFF are invalid). */
int utf8_decode(const char *bytes, size_t size, uint32_t *codepoint);
/* Encodes one code point into out (at least 4 bytes); returns its length. */
int utf8_encode(uint32_t codepoint, char *out);
/* Byte offset of the first invalid sequence, or -1 when all is valid. */
long utf8_first_invalid(const char *bytes, size_t size);

/* Lowercases A-Z and the Latin-1 capitals À..Þ (UTF-8) in place; other
 * scripts are left alone (full Unicode case mapping needs tables). */
void text_lowercase(char *text);

/* ---- Vocabulary ----------------------------------------------------------- */

/* A bidirectional map between tokens (short strings) and ids 0..size-1.
 * Character-level vocabularies hold one UTF-8 code point per token (not one
 * byte: "é" is one token); word-level ones hold words; both can hold special
 * tokens such as "<pad>" added first, so they get the small ids. */
typedef struct {
    char **tokens;     /* (size) the token text of each id                  */
    int size;
    int capacity;
    int *buckets;      /* (bucket_count) hash table of ids, -1 when empty    */
    int bucket_count;  /* a power of two, at least twice size                */
} Vocab;

void vocab_init(Vocab *vocab);
void vocab_free(Vocab *vocab);
/* Id of `token`, adding it when new. */
int vocab_add(Vocab *vocab, const char *token);
/* Id of `token`, or -1 when absent. */
int vocab_find(const Vocab *vocab, const char *token);
/* Adds every code point of the text, in order of first appearance.  False
 * (with the byte offset) on invalid UTF-8. */
bool vocab_add_chars(Vocab *vocab, const char *text, size_t size, Error *err);
/* Character-level encoding of text into ids.  Returns the number of ids, or
 * -1 with an Error naming the first character that is not in the vocabulary
 * (and its position), invalid UTF-8, or more than max_ids characters. */
int vocab_encode_chars(const Vocab *vocab, const char *text, size_t size, int *ids,
                       int max_ids, Error *err);
/* The same, except that a character missing from the vocabulary becomes
 * unknown_id (an "<unk>" token) when unknown_id >= 0, instead of an error. */
int vocab_encode_chars_or(const Vocab *vocab, const char *text, size_t size, int unknown_id,
                          int *ids, int max_ids, Error *err);
/* Concatenates the tokens of ids into out (NUL-terminated, truncated to
 * out_size).  Returns the length it needed. */
size_t vocab_decode(const Vocab *vocab, const int *ids, int count, char *out,
                    size_t out_size);
/* The tokens as a JSON array of strings, for checkpoint metadata (malloc'd). */
char *vocab_to_json(const Vocab *vocab);
bool vocab_from_json(Vocab *vocab, const char *json, Error *err);

/* ---- Tab-separated pairs ---------------------------------------------------- */

/* One `source<TAB>target` line.  Extra columns after the second are ignored.
 * Bad lines are skipped and counted rather than fatal, so one stray line in
 * a large corpus does not stop a run; a file with no usable pair is an
 * error.  An empty file and a binary file (NUL bytes) are errors. */
typedef struct {
    char *source;
    char *target;
    int line; /* 1-based line number in the file */
} TextPair;

typedef struct {
    TextPair *pairs; /* (count) */
    int count;
    int skipped_empty;     /* blank lines                      */
    int skipped_no_tab;    /* lines with one column only        */
    int skipped_too_long;  /* longer than max_line_bytes        */
    int skipped_bad_utf8;  /* invalid UTF-8                     */
} PairList;

bool tsv_read_pairs(const char *path, size_t max_line_bytes, bool lowercase, PairList *list,
                    Error *err);
/* The same from text[0..size) already in memory (tsv_read_pairs reads the
 * file, then calls this); `path` only names the input in errors. */
bool tsv_parse_pairs(const char *text, size_t size, const char *path, size_t max_line_bytes,
                     bool lowercase, PairList *list, Error *err);
void pair_list_free(PairList *list);
/* The warning for the lines the reader skipped ("PATH: skipped N lines (a
 * blank, b without a tab, ...)"), on stderr, only when it skipped some;
 * printed even with --quiet, since data was left out. */
void pair_list_warn_skipped(const PairList *list, const char *path, size_t max_line_bytes);

/* ---- Mini-batches ------------------------------------------------------------ */

/* Walks a random permutation of 0..count-1, reshuffling at every epoch, so
 * every example is seen once per epoch.  Driven by the caller's Rng. */
typedef struct {
    int *order;   /* (count) the current permutation */
    int count;
    int position; /* next index into order           */
    long epoch;   /* completed passes                 */
} BatchSampler;

void batch_sampler_init(BatchSampler *sampler, int count, Rng *rng);
void batch_sampler_free(BatchSampler *sampler);
/* Writes `batch` example indices; wraps into a new shuffled epoch as needed. */
void batch_sampler_next(BatchSampler *sampler, Rng *rng, int *indices, int batch);

/* Splits 0..count-1 at random into a training part and a validation part of
 * round(count * validation_fraction) examples.  Both arrays are malloc'd. */
void split_indices(int count, float validation_fraction, Rng *rng, int **train,
                   int *train_count, int **validation, int *validation_count);

#endif
