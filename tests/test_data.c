/* tests/test_data.c: files, UTF-8, vocabularies, TSV pairs and batches
 * (common/data.c).
 *
 * Each file test works in a fresh directory from test_temp_dir and removes
 * it at the end.  Error tests check the message text, since the message is
 * what a user sees.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data.h"
#include "test_suites.h"

/* ---- Helpers: temporary files ---------------------------------------------- */

static char temp_dir[512];

static void setup_temp_dir(void) {
    snprintf(temp_dir, sizeof temp_dir, "%s", test_temp_dir("data"));
}

/* Removes the files (and empty subdirectories) in temp_dir, then temp_dir. */
static void teardown_temp_dir(void) {
    DIR *dir = opendir(temp_dir);
    if (dir == NULL) return;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", temp_dir, entry->d_name);
        if (remove(path) != 0) rmdir(path);
    }
    closedir(dir);
    rmdir(temp_dir);
}

/* path = temp_dir/name */
static void temp_path(const char *name, char *path, size_t path_size) {
    snprintf(path, path_size, "%s/%s", temp_dir, name);
}

/* Writes bytes[0..size) to temp_dir/name and stores its path in `path`. */
static void write_temp_file(const char *name, const char *bytes, size_t size, char *path,
                            size_t path_size) {
    temp_path(name, path, path_size);
    FILE *file = fopen(path, "wb");
    ck_assert_ptr_nonnull(file);
    ck_assert_uint_eq(fwrite(bytes, 1, size, file), size);
    ck_assert_int_eq(fclose(file), 0);
}

static bool file_exists(const char *path) {
    struct stat info;
    return stat(path, &info) == 0;
}

/* ---- file_read_all ------------------------------------------------------------ */

START_TEST(test_file_read_all_reads_bytes_and_terminates) {
    char path[1024];
    const char bytes[] = "line one\nline two\n";
    write_temp_file("text.txt", bytes, sizeof bytes - 1, path, sizeof path);
    char *contents = NULL;
    size_t size = 0;
    Error err;
    ck_assert(file_read_all(path, 1000, &contents, &size, &err));
    ck_assert_uint_eq(size, sizeof bytes - 1);
    ck_assert_mem_eq(contents, bytes, size);
    ck_assert_int_eq(contents[size], '\0');
    free(contents);
}
END_TEST

START_TEST(test_file_read_all_empty_file_has_size_zero) {
    char path[1024];
    write_temp_file("empty.txt", "", 0, path, sizeof path);
    char *contents = NULL;
    size_t size = 99;
    Error err;
    ck_assert(file_read_all(path, 1000, &contents, &size, &err));
    ck_assert_uint_eq(size, 0);
    ck_assert_ptr_nonnull(contents);
    ck_assert_str_eq(contents, "");
    free(contents);
}
END_TEST

START_TEST(test_file_read_all_missing_file) {
    char path[1024], expected[1100];
    temp_path("missing.txt", path, sizeof path);
    char *contents = NULL;
    size_t size = 0;
    Error err;
    ck_assert(!file_read_all(path, 1000, &contents, &size, &err));
    ck_assert_ptr_null(contents);
    snprintf(expected, sizeof expected, "%s: no such file", path);
    ck_assert_str_eq(err.message, expected);
}
END_TEST

START_TEST(test_file_read_all_directory) {
    char *contents = NULL;
    size_t size = 0;
    Error err;
    char expected[1100];
    ck_assert(!file_read_all(temp_dir, 1000, &contents, &size, &err));
    ck_assert_ptr_null(contents);
    snprintf(expected, sizeof expected, "%s: is a directory, expected a file", temp_dir);
    ck_assert_str_eq(err.message, expected);
}
END_TEST

START_TEST(test_file_read_all_device_is_not_a_file) {
    char *contents = NULL;
    size_t size = 0;
    Error err;
    ck_assert(!file_read_all("/dev/zero", 1000, &contents, &size, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "/dev/zero: is not a regular file"));
}
END_TEST

START_TEST(test_file_read_all_size_limit) {
    char path[1024], expected[1100];
    char bytes[100];
    memset(bytes, 'x', sizeof bytes);
    write_temp_file("big.txt", bytes, sizeof bytes, path, sizeof path);
    char *contents = NULL;
    size_t size = 0;
    Error err;
    ck_assert(!file_read_all(path, 99, &contents, &size, &err));
    ck_assert_ptr_null(contents);
    snprintf(expected, sizeof expected, "%s: 100 bytes is over the limit of 99", path);
    ck_assert_str_eq(err.message, expected);
    /* Exactly at the limit is fine. */
    ck_assert(file_read_all(path, 100, &contents, &size, &err));
    ck_assert_uint_eq(size, 100);
    free(contents);
}
END_TEST

/* Files under /proc report a size of 0 to stat() but have content: the
 * reader must read to the end rather than trust the reported size. */
START_TEST(test_file_read_all_does_not_trust_reported_size) {
    char *contents = NULL;
    size_t size = 0;
    Error err;
    ck_assert(file_read_all("/proc/self/status", 1 << 20, &contents, &size, &err));
    ck_assert_uint_gt(size, 0);
    ck_assert_uint_eq(strlen(contents), size);
    ck_assert_ptr_nonnull(strstr(contents, "Name:"));
    free(contents);
    ck_assert(!file_read_all("/proc/self/status", 10, &contents, &size, &err));
    ck_assert_str_eq(err.message,
                     "/proc/self/status: grew past the limit of 10 bytes while being read");
}
END_TEST

/* ---- file_write_atomic and text_is_binary ---------------------------------- */

START_TEST(test_file_write_atomic_writes_and_leaves_no_temporary) {
    char path[1024], temporary[1100];
    temp_path("out.bin", path, sizeof path);
    snprintf(temporary, sizeof temporary, "%s.tmp", path);
    Error err;
    ck_assert(file_write_atomic(path, "first version, long", 19, &err));
    ck_assert(file_write_atomic(path, "second", 6, &err)); /* replaces, shorter */
    ck_assert(!file_exists(temporary));
    char *contents;
    size_t size;
    ck_assert(file_read_all(path, 1000, &contents, &size, &err));
    ck_assert_uint_eq(size, 6);
    ck_assert_str_eq(contents, "second");
    free(contents);
}
END_TEST

START_TEST(test_file_write_atomic_missing_directory) {
    char path[1024];
    temp_path("no/such/dir/out.bin", path, sizeof path);
    Error err;
    ck_assert(!file_write_atomic(path, "x", 1, &err));
    ck_assert_ptr_nonnull(strstr(err.message, path));
    ck_assert_ptr_nonnull(strstr(err.message, "No such file or directory"));
}
END_TEST

/* Renaming a file over a non-empty directory fails after the temporary
 * file was written: the temporary must be removed and the target kept. */
START_TEST(test_file_write_atomic_failed_rename_removes_temporary) {
    char target[1024], inside[1100], temporary[1100];
    temp_path("target", target, sizeof target);
    ck_assert_int_eq(mkdir(target, 0777), 0);
    snprintf(inside, sizeof inside, "%s/keep", target);
    FILE *file = fopen(inside, "w");
    ck_assert_ptr_nonnull(file);
    fclose(file);
    snprintf(temporary, sizeof temporary, "%s.tmp", target);
    Error err;
    ck_assert(!file_write_atomic(target, "data", 4, &err));
    ck_assert_ptr_nonnull(strstr(err.message, target));
    ck_assert(!file_exists(temporary));
    ck_assert(file_exists(inside));
    remove(inside);
}
END_TEST

START_TEST(test_text_is_binary) {
    ck_assert(!text_is_binary("plain text\n", 11));
    ck_assert(!text_is_binary("", 0));
    ck_assert(text_is_binary("ab\0cd", 5));
    ck_assert(text_is_binary("abcd\0", 5)); /* a NUL in the last byte counts too */
    ck_assert(!text_is_binary("abcd\0", 4)); /* but not one past the size */
}
END_TEST

/* ---- UTF-8 ---------------------------------------------------------------- */

/* One code point from each length class and each edge of each class. */
START_TEST(test_utf8_known_encodings) {
    static const struct {
        uint32_t codepoint;
        const char *bytes;
    } cases[] = {
        {0x0000, ""}, /* NUL: one zero byte, checked with length 1 below */
        {0x0041, "A"},          {0x007F, "\x7F"},          {0x0080, "\xC2\x80"},
        {0x00E9, "\xC3\xA9"},   {0x07FF, "\xDF\xBF"},      {0x0800, "\xE0\xA0\x80"},
        {0x20AC, "\xE2\x82\xAC"}, {0xD7FF, "\xED\x9F\xBF"}, {0xE000, "\xEE\x80\x80"},
        {0xFFFF, "\xEF\xBF\xBF"}, {0x10000, "\xF0\x90\x80\x80"},
        {0x1F600, "\xF0\x9F\x98\x80"}, {0x10FFFF, "\xF4\x8F\xBF\xBF"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t length = cases[i].codepoint == 0 ? 1 : strlen(cases[i].bytes);
        char out[4];
        ck_assert_int_eq(utf8_encode(cases[i].codepoint, out), (int)length);
        ck_assert_mem_eq(out, cases[i].bytes, length);
        uint32_t decoded = 0xFFFFFFFF;
        ck_assert_int_eq(utf8_decode(cases[i].bytes, length, &decoded), (int)length);
        ck_assert_uint_eq(decoded, cases[i].codepoint);
    }
}
END_TEST

/* Every valid code point survives encode then decode, with the length its
 * class demands. */
START_TEST(test_utf8_round_trip_every_code_point) {
    for (uint32_t codepoint = 0; codepoint <= 0x10FFFF; codepoint++) {
        if (codepoint >= 0xD800 && codepoint <= 0xDFFF) continue;
        char out[4];
        int expected = codepoint < 0x80 ? 1 : codepoint < 0x800 ? 2 : codepoint < 0x10000 ? 3 : 4;
        int length = utf8_encode(codepoint, out);
        if (length != expected) ck_abort_msg("U+%04X encodes to %d bytes", codepoint, length);
        uint32_t decoded;
        if (utf8_decode(out, (size_t)length, &decoded) != length || decoded != codepoint)
            ck_abort_msg("U+%04X does not round-trip", codepoint);
    }
}
END_TEST

START_TEST(test_utf8_encode_rejects_non_characters) {
    char out[4];
    ck_assert_int_eq(utf8_encode(0xD800, out), 0);
    ck_assert_int_eq(utf8_encode(0xDFFF, out), 0);
    ck_assert_int_eq(utf8_encode(0x110000, out), 0);
    ck_assert_int_eq(utf8_encode(0xFFFFFFFF, out), 0);
}
END_TEST

START_TEST(test_utf8_decode_rejects_invalid) {
    static const struct {
        const char *bytes;
        const char *why;
    } cases[] = {
        {"\xC0\xAF", "overlong '/' in 2 bytes"},
        {"\xC1\xBF", "overlong U+007F in 2 bytes"},
        {"\xE0\x80\xAF", "overlong '/' in 3 bytes"},
        {"\xE0\x9F\xBF", "overlong U+07FF in 3 bytes"},
        {"\xF0\x80\x80\xAF", "overlong '/' in 4 bytes"},
        {"\xF0\x8F\xBF\xBF", "overlong U+FFFF in 4 bytes"},
        {"\xED\xA0\x80", "surrogate U+D800"},
        {"\xED\xBF\xBF", "surrogate U+DFFF"},
        {"\xF4\x90\x80\x80", "U+110000, above Unicode"},
        {"\xF5\x80\x80\x80", "lead byte F5"},
        {"\xFF", "byte FF"},
        {"\xFE", "byte FE"},
        {"\x80", "stray continuation byte 80"},
        {"\xBF", "stray continuation byte BF"},
        {"\xC3", "truncated 2-byte sequence"},
        {"\xE2\x82", "truncated 3-byte sequence"},
        {"\xF0\x9F\x98", "truncated 4-byte sequence"},
        {"\xC3\x41", "2-byte lead followed by ASCII"},
        {"\xE2\x28\xA1", "3-byte lead followed by ASCII"},
        {"\xF0\x9F\x98\xC3", "4-byte sequence with a lead byte last"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t codepoint = 0;
        int used = utf8_decode(cases[i].bytes, strlen(cases[i].bytes), &codepoint);
        if (used != 0) ck_abort_msg("accepted %s (returned %d)", cases[i].why, used);
    }
    /* A valid sequence cut short by `size` is truncated too. */
    uint32_t codepoint;
    ck_assert_int_eq(utf8_decode("\xC3\xA9", 1, &codepoint), 0);
    ck_assert_int_eq(utf8_decode("\xF0\x9F\x98\x80", 3, &codepoint), 0);
    ck_assert_int_eq(utf8_decode("A", 0, &codepoint), 0);
}
END_TEST

START_TEST(test_utf8_first_invalid) {
    ck_assert_int_eq(utf8_first_invalid("", 0), -1);
    ck_assert_int_eq(utf8_first_invalid("caf\xC3\xA9 \xF0\x9F\x98\x80", 10), -1);
    ck_assert_int_eq(utf8_first_invalid("ab\xC3", 3), 2);
    ck_assert_int_eq(utf8_first_invalid("\xC3\xA9\x80z", 4), 2);
    ck_assert_int_eq(utf8_first_invalid("x\xED\xA0\x80", 4), 1);
}
END_TEST

/* ---- Vocabulary ------------------------------------------------------------- */

START_TEST(test_vocab_add_and_find) {
    Vocab vocab;
    vocab_init(&vocab);
    ck_assert_int_eq(vocab_find(&vocab, "a"), -1); /* empty: no table yet */
    ck_assert_int_eq(vocab_add(&vocab, "<pad>"), 0);
    ck_assert_int_eq(vocab_add(&vocab, "a"), 1);
    ck_assert_int_eq(vocab_add(&vocab, "\xC3\xA9"), 2);
    ck_assert_int_eq(vocab_add(&vocab, "a"), 1); /* existing: same id, no growth */
    ck_assert_int_eq(vocab.size, 3);
    ck_assert_int_eq(vocab_find(&vocab, "\xC3\xA9"), 2);
    ck_assert_int_eq(vocab_find(&vocab, "<pad>"), 0);
    ck_assert_int_eq(vocab_find(&vocab, "b"), -1);
    ck_assert_int_eq(vocab_find(&vocab, "<pad"), -1);
    ck_assert_str_eq(vocab.tokens[2], "\xC3\xA9");
    vocab_free(&vocab);
    ck_assert_int_eq(vocab.size, 0);
}
END_TEST

/* Many tokens force several table growths; every id must survive them, and
 * the table must stay at most half full. */
START_TEST(test_vocab_grows_and_keeps_ids) {
    enum { TOKENS = 5000 };
    Vocab vocab;
    vocab_init(&vocab);
    char token[32];
    for (int i = 0; i < TOKENS; i++) {
        snprintf(token, sizeof token, "word%d", i);
        ck_assert_int_eq(vocab_add(&vocab, token), i);
        ck_assert_int_le(2 * vocab.size, vocab.bucket_count);
    }
    ck_assert_int_eq(vocab.bucket_count & (vocab.bucket_count - 1), 0); /* power of two */
    for (int i = 0; i < TOKENS; i++) {
        snprintf(token, sizeof token, "word%d", i);
        ck_assert_int_eq(vocab_find(&vocab, token), i);
        ck_assert_str_eq(vocab.tokens[i], token);
    }
    ck_assert_int_eq(vocab_find(&vocab, "word5000"), -1);
    vocab_free(&vocab);
}
END_TEST

START_TEST(test_vocab_add_chars_one_token_per_code_point) {
    const char *text = "h\xC3\xA9h\xE2\x82\xAC \xF0\x9F\x98\x80\xC3\xA9"; /* "héh€ 😀é" */
    Vocab vocab;
    vocab_init(&vocab);
    Error err;
    ck_assert(vocab_add_chars(&vocab, text, strlen(text), &err));
    ck_assert_int_eq(vocab.size, 5); /* h é € space 😀: first appearance order */
    ck_assert_str_eq(vocab.tokens[0], "h");
    ck_assert_str_eq(vocab.tokens[1], "\xC3\xA9");
    ck_assert_str_eq(vocab.tokens[2], "\xE2\x82\xAC");
    ck_assert_str_eq(vocab.tokens[3], " ");
    ck_assert_str_eq(vocab.tokens[4], "\xF0\x9F\x98\x80");
    vocab_free(&vocab);
}
END_TEST

START_TEST(test_vocab_add_chars_invalid_utf8) {
    Vocab vocab;
    vocab_init(&vocab);
    Error err;
    ck_assert(!vocab_add_chars(&vocab, "ab\xFF" "c", 4, &err));
    ck_assert_str_eq(err.message, "invalid UTF-8 at byte 2");
    vocab_free(&vocab);
}
END_TEST

START_TEST(test_vocab_encode_decode_round_trip) {
    const char *text = "na\xC3\xAFve caf\xC3\xA9 \xF0\x9F\x98\x80"; /* "naïve café 😀" */
    size_t size = strlen(text);
    Vocab vocab;
    vocab_init(&vocab);
    vocab_add(&vocab, "<pad>");
    Error err;
    ck_assert(vocab_add_chars(&vocab, text, size, &err));
    int ids[32];
    int count = vocab_encode_chars(&vocab, text, size, ids, 32, &err);
    ck_assert_int_eq(count, 12); /* characters, not bytes */
    ck_assert_int_eq(ids[0], vocab_find(&vocab, "n"));
    ck_assert_int_eq(ids[2], vocab_find(&vocab, "\xC3\xAF"));
    char out[64];
    ck_assert_uint_eq(vocab_decode(&vocab, ids, count, out, sizeof out), size);
    ck_assert_str_eq(out, text);
    vocab_free(&vocab);
}
END_TEST

/* A short buffer is cut between tokens and always NUL-terminated; the return
 * value is the full length either way. */
START_TEST(test_vocab_decode_truncates_between_tokens) {
    Vocab vocab;
    vocab_init(&vocab);
    int a = vocab_add(&vocab, "a");
    int e = vocab_add(&vocab, "\xC3\xA9");
    int ids[] = {a, e, a};
    char out[4];
    memset(out, '#', sizeof out);
    ck_assert_uint_eq(vocab_decode(&vocab, ids, 3, out, sizeof out), 4);
    ck_assert_str_eq(out, "a\xC3\xA9"); /* "aé" is 3 bytes + NUL; the last "a" is cut */
    char tiny[3];
    ck_assert_uint_eq(vocab_decode(&vocab, ids, 3, tiny, sizeof tiny), 4);
    ck_assert_str_eq(tiny, "a"); /* not "a\xC3": no half character */
    ck_assert_uint_eq(vocab_decode(&vocab, ids, 3, NULL, 0), 4);
    vocab_free(&vocab);
}
END_TEST

START_TEST(test_vocab_encode_unknown_character) {
    Vocab vocab;
    vocab_init(&vocab);
    Error err;
    ck_assert(vocab_add_chars(&vocab, "abcf", 4, &err));
    int ids[16];
    const char *text = "cab\xC3\xA9" "a";
    ck_assert_int_eq(vocab_encode_chars(&vocab, text, strlen(text), ids, 16, &err), -1);
    ck_assert_str_eq(err.message,
                     "character '\xC3\xA9' (U+00E9) at position 3 is not in the vocabulary");
    /* Control characters are named by code point only, keeping one line. */
    ck_assert_int_eq(vocab_encode_chars(&vocab, "ab\nc", 4, ids, 16, &err), -1);
    ck_assert_str_eq(err.message, "character U+000A at position 2 is not in the vocabulary");
    vocab_free(&vocab);
}
END_TEST

START_TEST(test_vocab_encode_limits_and_bad_utf8) {
    Vocab vocab;
    vocab_init(&vocab);
    Error err;
    ck_assert(vocab_add_chars(&vocab, "abc", 3, &err));
    int ids[3];
    ck_assert_int_eq(vocab_encode_chars(&vocab, "abc", 3, ids, 3, &err), 3); /* exactly fits */
    ck_assert_int_eq(vocab_encode_chars(&vocab, "abca", 4, ids, 3, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "more than 3 characters"));
    ck_assert_int_eq(vocab_encode_chars(&vocab, "a\xE2\x82", 3, ids, 3, &err), -1);
    ck_assert_str_eq(err.message, "invalid UTF-8 at byte 1");
    vocab_free(&vocab);
}
END_TEST

START_TEST(test_vocab_json_round_trip) {
    static const char *tokens[] = {"<pad>", "a", "\"", "\\", "\n", "\t", "\xC3\xA9",
                                   "\xF0\x9F\x98\x80", "two words", "/"};
    enum { TOKENS = sizeof tokens / sizeof tokens[0] };
    Vocab vocab;
    vocab_init(&vocab);
    for (int i = 0; i < TOKENS; i++) vocab_add(&vocab, tokens[i]);
    char *json = vocab_to_json(&vocab);
    ck_assert_ptr_nonnull(json);
    ck_assert_int_eq(json[0], '[');
    Vocab loaded;
    Error err;
    if (!vocab_from_json(&loaded, json, &err)) ck_abort_msg("%s in %s", err.message, json);
    ck_assert_int_eq(loaded.size, TOKENS);
    for (int i = 0; i < TOKENS; i++) {
        ck_assert_str_eq(loaded.tokens[i], tokens[i]);
        ck_assert_int_eq(vocab_find(&loaded, tokens[i]), i);
    }
    free(json);
    vocab_free(&loaded);
    vocab_free(&vocab);
}
END_TEST

START_TEST(test_vocab_from_json_rejects_bad_input) {
    Vocab vocab;
    Error err;
    ck_assert(!vocab_from_json(&vocab, "[\"a\", \"b\", \"a\"]", &err));
    ck_assert_ptr_nonnull(strstr(err.message, "token 2 \"a\" repeats token 0"));
    ck_assert_int_eq(vocab.size, 0); /* left empty, owning nothing */
    ck_assert_ptr_null(vocab.tokens);
    ck_assert(!vocab_from_json(&vocab, "{\"a\": 1}", &err));
    ck_assert_ptr_nonnull(strstr(err.message, "expected a JSON array of strings"));
    ck_assert(!vocab_from_json(&vocab, "[\"a\", 1]", &err));
    ck_assert_ptr_nonnull(strstr(err.message, "token 1 is not a string"));
    ck_assert(!vocab_from_json(&vocab, "[\"a\", ", &err));
    ck_assert_ptr_nonnull(strstr(err.message, "vocabulary: "));
    ck_assert(vocab_from_json(&vocab, "[]", &err)); /* empty is valid */
    ck_assert_int_eq(vocab.size, 0);
    vocab_free(&vocab);
}
END_TEST

/* ---- Tab-separated pairs ------------------------------------------------------- */

/* Writes `text` to temp_dir/name and reads it as pairs. */
static bool read_pairs_from(const char *name, const char *text, size_t size,
                            size_t max_line_bytes, bool lowercase, PairList *list, Error *err,
                            char *path, size_t path_size) {
    write_temp_file(name, text, size, path, path_size);
    return tsv_read_pairs(path, max_line_bytes, lowercase, list, err);
}

static void assert_pair(const PairList *list, int index, const char *source, const char *target,
                        int line) {
    ck_assert_int_lt(index, list->count);
    ck_assert_str_eq(list->pairs[index].source, source);
    ck_assert_str_eq(list->pairs[index].target, target);
    ck_assert_int_eq(list->pairs[index].line, line);
}

START_TEST(test_tsv_good_file) {
    const char text[] = "hello\tbonjour\nthe cat\tle chat\ngood night\tbonne nuit";
    char path[1024];
    PairList list;
    Error err;
    ck_assert(read_pairs_from("good.tsv", text, sizeof text - 1, 1000, false, &list, &err, path,
                              sizeof path));
    ck_assert_int_eq(list.count, 3); /* the last line has no newline and still counts */
    assert_pair(&list, 0, "hello", "bonjour", 1);
    assert_pair(&list, 1, "the cat", "le chat", 2);
    assert_pair(&list, 2, "good night", "bonne nuit", 3);
    ck_assert_int_eq(list.skipped_empty + list.skipped_no_tab + list.skipped_too_long +
                         list.skipped_bad_utf8, 0);
    pair_list_free(&list);
    ck_assert_int_eq(list.count, 0);
}
END_TEST

START_TEST(test_tsv_extra_columns_crlf_and_bom) {
    const char text[] = "\xEF\xBB\xBFone\tun\tCC-BY 2.0\tattribution\r\ntwo\tdeux\r\n";
    char path[1024];
    PairList list;
    Error err;
    ck_assert(read_pairs_from("crlf.tsv", text, sizeof text - 1, 1000, false, &list, &err, path,
                              sizeof path));
    ck_assert_int_eq(list.count, 2);
    assert_pair(&list, 0, "one", "un", 1); /* no BOM, third and fourth columns dropped */
    assert_pair(&list, 1, "two", "deux", 2); /* no '\r' */
    pair_list_free(&list);
}
END_TEST

/* One line of each kind of bad line, between two good ones. */
START_TEST(test_tsv_skips_and_counts_bad_lines) {
    const char text[] = "first\tpremier\n"         /* 1 kept              */
                        "\n"                       /* 2 empty             */
                        "  \t \r\n"                /* 3 blank: empty      */
                        "no tab here\n"            /* 4 no tab            */
                        "source only\t\n"          /* 5 empty target      */
                        "\tlonely target\n"        /* 6 empty source      */
                        "this line is far too long\tfor the limit\n" /* 7 */
                        "bad \xFF byte\tx\n"       /* 8 invalid UTF-8     */
                        "last\tdernier\n";         /* 9 kept              */
    char path[1024];
    PairList list;
    Error err;
    ck_assert(read_pairs_from("mixed.tsv", text, sizeof text - 1, 20, false, &list, &err, path,
                              sizeof path));
    ck_assert_int_eq(list.count, 2);
    assert_pair(&list, 0, "first", "premier", 1);
    assert_pair(&list, 1, "last", "dernier", 9);
    ck_assert_int_eq(list.skipped_empty, 2);
    ck_assert_int_eq(list.skipped_no_tab, 3);
    ck_assert_int_eq(list.skipped_too_long, 1);
    ck_assert_int_eq(list.skipped_bad_utf8, 1);
    pair_list_free(&list);
}
END_TEST

START_TEST(test_tsv_lowercase) {
    /* "Hello ÀÉÎ×ß\tWORLD ÜNÏCODE Ω" */
    const char text[] = "Hello \xC3\x80\xC3\x89\xC3\x8E\xC3\x97\xC3\x9F\tWORLD \xC3\x9CN\xC3\x8F"
                        "CODE \xCE\xA9\n";
    char path[1024];
    PairList list;
    Error err;
    ck_assert(read_pairs_from("case.tsv", text, sizeof text - 1, 1000, true, &list, &err, path,
                              sizeof path));
    /* à é î, × and ß unchanged; Ω (outside Latin-1) unchanged. */
    assert_pair(&list, 0, "hello \xC3\xA0\xC3\xA9\xC3\xAE\xC3\x97\xC3\x9F",
                "world \xC3\xBCn\xC3\xAF" "code \xCE\xA9", 1);
    pair_list_free(&list);
    ck_assert(tsv_read_pairs(path, 1000, false, &list, &err));
    assert_pair(&list, 0, "Hello \xC3\x80\xC3\x89\xC3\x8E\xC3\x97\xC3\x9F",
                "WORLD \xC3\x9CN\xC3\x8F" "CODE \xCE\xA9", 1);
    pair_list_free(&list);
}
END_TEST

START_TEST(test_tsv_missing_file) {
    char path[1024], expected[1100];
    temp_path("absent.tsv", path, sizeof path);
    PairList list;
    Error err;
    ck_assert(!tsv_read_pairs(path, 1000, false, &list, &err));
    snprintf(expected, sizeof expected, "%s: no such file", path);
    ck_assert_str_eq(err.message, expected);
    ck_assert_int_eq(list.count, 0);
}
END_TEST

START_TEST(test_tsv_empty_file) {
    char path[1024], expected[1100];
    PairList list;
    Error err;
    ck_assert(!read_pairs_from("empty.tsv", "", 0, 1000, false, &list, &err, path, sizeof path));
    snprintf(expected, sizeof expected, "%s: empty file, expected source<TAB>target lines", path);
    ck_assert_str_eq(err.message, expected);
    ck_assert_int_eq(list.count, 0);
    ck_assert_ptr_null(list.pairs);
}
END_TEST

START_TEST(test_tsv_binary_file) {
    const char text[] = "a\tb\nc\td\nxx\0yy\tzz\n";
    char path[1024], expected[1100];
    PairList list;
    Error err;
    ck_assert(!read_pairs_from("binary.tsv", text, sizeof text - 1, 1000, false, &list, &err,
                               path, sizeof path));
    snprintf(expected, sizeof expected, "%s: line 3: NUL byte", path);
    ck_assert_ptr_nonnull(strstr(err.message, expected));
    ck_assert_ptr_nonnull(strstr(err.message, "binary file"));
    ck_assert_int_eq(list.count, 0);
}
END_TEST

START_TEST(test_tsv_no_usable_pair) {
    const char text[] = "\n\nonly one column\nway too long a line\tx\nbad\xC3\tutf8\n";
    char path[1024], expected[1200];
    PairList list;
    Error err;
    ck_assert(!read_pairs_from("bad.tsv", text, sizeof text - 1, 16, false, &list, &err, path,
                               sizeof path));
    snprintf(expected, sizeof expected,
             "%s: no usable source<TAB>target line (skipped 2 blank, 1 without a tab, "
             "1 longer than 16 bytes, 1 invalid UTF-8)", path);
    ck_assert_str_eq(err.message, expected);
    ck_assert_int_eq(list.count, 0);
    ck_assert_ptr_null(list.pairs);
}
END_TEST

/* ---- Mini-batches -------------------------------------------------------------- */

/* Draws 7 epochs of 10 examples in batches of 7, so batches straddle epoch
 * boundaries; each run of 10 consecutive indices must be a permutation. */
START_TEST(test_batch_sampler_covers_each_index_once_per_epoch) {
    enum { COUNT = 10, BATCH = 7, EPOCHS = 7 };
    Rng rng;
    rng_seed(&rng, 5, 5);
    BatchSampler sampler;
    batch_sampler_init(&sampler, COUNT, &rng);
    int drawn[COUNT * EPOCHS];
    for (int b = 0; b < EPOCHS * COUNT / BATCH; b++)
        batch_sampler_next(&sampler, &rng, drawn + b * BATCH, BATCH);
    ck_assert_int_eq(sampler.epoch, EPOCHS);
    int identical_orders = 0;
    for (int epoch = 0; epoch < EPOCHS; epoch++) {
        int seen[COUNT] = {0};
        for (int i = 0; i < COUNT; i++) seen[drawn[epoch * COUNT + i]]++;
        for (int i = 0; i < COUNT; i++) ck_assert_int_eq(seen[i], 1);
        if (epoch > 0)
            identical_orders += memcmp(drawn + epoch * COUNT, drawn + (epoch - 1) * COUNT,
                                       sizeof(int) * COUNT) == 0;
    }
    ck_assert_int_eq(identical_orders, 0); /* reshuffled every epoch */
    batch_sampler_free(&sampler);
}
END_TEST

START_TEST(test_batch_sampler_epoch_count_and_determinism) {
    Rng first_rng, second_rng;
    rng_seed(&first_rng, 9, 1);
    rng_seed(&second_rng, 9, 1);
    BatchSampler first, second;
    batch_sampler_init(&first, 5, &first_rng);
    batch_sampler_init(&second, 5, &second_rng);
    int a[4], b[4];
    batch_sampler_next(&first, &first_rng, a, 4);
    batch_sampler_next(&second, &second_rng, b, 4);
    ck_assert_int_eq(first.epoch, 0);
    ck_assert_mem_eq(a, b, sizeof a);
    batch_sampler_next(&first, &first_rng, a, 1); /* the fifth example ends epoch 0 */
    ck_assert_int_eq(first.epoch, 1);
    batch_sampler_next(&second, &second_rng, b, 1);
    for (int step = 0; step < 20; step++) {
        batch_sampler_next(&first, &first_rng, a, 4);
        batch_sampler_next(&second, &second_rng, b, 4);
        ck_assert_mem_eq(a, b, sizeof a); /* same seed, same batches */
    }
    ck_assert_int_eq(first.epoch, 17); /* 5 + 80 = 85 draws = 17 epochs */
    batch_sampler_free(&first);
    batch_sampler_free(&second);
}
END_TEST

/* ---- split_indices --------------------------------------------------------------- */

/* Checks that train and validation are disjoint, sorted and cover 0..count-1. */
static void assert_partition(const int *train, int train_count, const int *validation,
                             int validation_count, int count) {
    ck_assert_int_eq(train_count + validation_count, count);
    int *seen = calloc((size_t)count + 1, sizeof *seen);
    for (int i = 0; i < train_count; i++) {
        ck_assert(train[i] >= 0 && train[i] < count);
        if (i > 0) ck_assert_int_lt(train[i - 1], train[i]);
        seen[train[i]]++;
    }
    for (int i = 0; i < validation_count; i++) {
        ck_assert(validation[i] >= 0 && validation[i] < count);
        if (i > 0) ck_assert_int_lt(validation[i - 1], validation[i]);
        seen[validation[i]]++;
    }
    for (int i = 0; i < count; i++) ck_assert_int_eq(seen[i], 1);
    free(seen);
}

START_TEST(test_split_indices_partitions) {
    static const struct {
        int count;
        float fraction;
        int expected_validation;
    } cases[] = {{100, 0.2f, 20}, {7, 0.5f, 4}, {7, 0.0f, 0}, {7, 1.0f, 7}, {0, 0.3f, 0},
                 {10, 0.14f, 1}, {10, 0.16f, 2}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Rng rng;
        rng_seed(&rng, 1, 2);
        int *train, *validation, train_count, validation_count;
        split_indices(cases[c].count, cases[c].fraction, &rng, &train, &train_count, &validation,
                      &validation_count);
        ck_assert_int_eq(validation_count, cases[c].expected_validation);
        assert_partition(train, train_count, validation, validation_count, cases[c].count);
        free(train);
        free(validation);
    }
}
END_TEST

START_TEST(test_split_indices_is_random_and_reproducible) {
    int *train[3], *validation[3], train_count[3], validation_count[3];
    const uint64_t seeds[3] = {10, 10, 11};
    for (int run = 0; run < 3; run++) {
        Rng rng;
        rng_seed(&rng, seeds[run], 0);
        split_indices(100, 0.2f, &rng, &train[run], &train_count[run], &validation[run],
                      &validation_count[run]);
    }
    ck_assert_mem_eq(validation[0], validation[1], 20 * sizeof(int)); /* same seed */
    ck_assert(memcmp(validation[0], validation[2], 20 * sizeof(int)) != 0); /* other seed */
    /* Held out at random, not the first 20 examples. */
    ck_assert_int_ne(validation[0][19], 19);
    for (int run = 0; run < 3; run++) {
        free(train[run]);
        free(validation[run]);
    }
}
END_TEST

/* The command line validates the fraction; a bad one here is a bug, which
 * stops the program with exit status 1. */
START_TEST(test_split_indices_rejects_bad_fraction) {
    Rng rng;
    rng_seed(&rng, 1, 1);
    int *train, *validation, train_count, validation_count;
    split_indices(10, 1.5f, &rng, &train, &train_count, &validation, &validation_count);
}
END_TEST

Suite *data_suite(void) {
    Suite *suite = suite_create("data");

    TCase *files = tcase_create("files");
    tcase_add_checked_fixture(files, setup_temp_dir, teardown_temp_dir);
    tcase_add_test(files, test_file_read_all_reads_bytes_and_terminates);
    tcase_add_test(files, test_file_read_all_empty_file_has_size_zero);
    tcase_add_test(files, test_file_read_all_missing_file);
    tcase_add_test(files, test_file_read_all_directory);
    tcase_add_test(files, test_file_read_all_device_is_not_a_file);
    tcase_add_test(files, test_file_read_all_size_limit);
    tcase_add_test(files, test_file_read_all_does_not_trust_reported_size);
    tcase_add_test(files, test_file_write_atomic_writes_and_leaves_no_temporary);
    tcase_add_test(files, test_file_write_atomic_missing_directory);
    tcase_add_test(files, test_file_write_atomic_failed_rename_removes_temporary);
    tcase_add_test(files, test_text_is_binary);
    suite_add_tcase(suite, files);

    TCase *utf8 = tcase_create("utf8");
    tcase_add_test(utf8, test_utf8_known_encodings);
    tcase_add_test(utf8, test_utf8_round_trip_every_code_point);
    tcase_add_test(utf8, test_utf8_encode_rejects_non_characters);
    tcase_add_test(utf8, test_utf8_decode_rejects_invalid);
    tcase_add_test(utf8, test_utf8_first_invalid);
    suite_add_tcase(suite, utf8);

    TCase *vocab = tcase_create("vocab");
    tcase_add_test(vocab, test_vocab_add_and_find);
    tcase_add_test(vocab, test_vocab_grows_and_keeps_ids);
    tcase_add_test(vocab, test_vocab_add_chars_one_token_per_code_point);
    tcase_add_test(vocab, test_vocab_add_chars_invalid_utf8);
    tcase_add_test(vocab, test_vocab_encode_decode_round_trip);
    tcase_add_test(vocab, test_vocab_decode_truncates_between_tokens);
    tcase_add_test(vocab, test_vocab_encode_unknown_character);
    tcase_add_test(vocab, test_vocab_encode_limits_and_bad_utf8);
    tcase_add_test(vocab, test_vocab_json_round_trip);
    tcase_add_test(vocab, test_vocab_from_json_rejects_bad_input);
    suite_add_tcase(suite, vocab);

    TCase *tsv = tcase_create("tsv");
    tcase_add_checked_fixture(tsv, setup_temp_dir, teardown_temp_dir);
    tcase_add_test(tsv, test_tsv_good_file);
    tcase_add_test(tsv, test_tsv_extra_columns_crlf_and_bom);
    tcase_add_test(tsv, test_tsv_skips_and_counts_bad_lines);
    tcase_add_test(tsv, test_tsv_lowercase);
    tcase_add_test(tsv, test_tsv_missing_file);
    tcase_add_test(tsv, test_tsv_empty_file);
    tcase_add_test(tsv, test_tsv_binary_file);
    tcase_add_test(tsv, test_tsv_no_usable_pair);
    suite_add_tcase(suite, tsv);

    TCase *batches = tcase_create("batches");
    tcase_add_test(batches, test_batch_sampler_covers_each_index_once_per_epoch);
    tcase_add_test(batches, test_batch_sampler_epoch_count_and_determinism);
    tcase_add_test(batches, test_split_indices_partitions);
    tcase_add_test(batches, test_split_indices_is_random_and_reproducible);
    tcase_add_exit_test(batches, test_split_indices_rejects_bad_fraction, 1);
    suite_add_tcase(suite, batches);
    return suite;
}
