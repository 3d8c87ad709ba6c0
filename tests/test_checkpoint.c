/* tests/test_checkpoint.c: the JSON parser, metadata, and safetensors
 * checkpoints (round trip, rejection of bad files, atomic saving).
 *
 * The rejection tests build small files by hand, each wrong in one way, and
 * check three things: the load fails, the message names the problem, and the
 * model's values are exactly as they were before.
 *
 * Shapes: the toy model has "w" (2,3) and "b" (3): 9 floats, 36 bytes.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "json.h"
#include "nn.h"
#include "test_suites.h"

/* ---- JSON: parsing ---------------------------------------------------------- */

static JsonValue parse_ok(const char *text) {
    JsonValue value;
    Error err = {{0}};
    ck_assert_msg(json_parse(text, strlen(text), &value, &err), "rejected %s: %s", text, err.message);
    return value;
}

/* The parse fails and the message contains `words`. */
static void parse_fails(const char *text, size_t size, const char *words) {
    JsonValue value;
    Error err = {{0}};
    ck_assert_msg(!json_parse(text, size, &value, &err), "accepted malformed JSON: %s", text);
    ck_assert_msg(strstr(err.message, words) != NULL, "for %s: message \"%s\" lacks \"%s\"", text,
                  err.message, words);
    ck_assert_int_eq(value.type, JSON_NULL); /* nothing left to free */
}

START_TEST(test_json_parses_objects_and_arrays) {
    JsonValue root = parse_ok(" {\"a\": [1, -2.5e3, true, false, null], \"b\" : {\"c\":\"x\"},"
                              "\"empty\":[], \"none\":{}} \n");
    ck_assert_int_eq(root.type, JSON_OBJECT);
    ck_assert_int_eq(root.count, 4);
    ck_assert_str_eq(root.keys[0], "a"); /* key order is kept */
    ck_assert_str_eq(root.keys[3], "none");
    const JsonValue *a = json_get(&root, "a");
    ck_assert_int_eq(a->type, JSON_ARRAY);
    ck_assert_int_eq(a->count, 5);
    ck_assert(a->items[0].type == JSON_NUMBER && a->items[0].number == 1.0);
    ck_assert(a->items[1].number == -2500.0);
    ck_assert(a->items[2].type == JSON_BOOL && a->items[2].boolean);
    ck_assert(a->items[3].type == JSON_BOOL && !a->items[3].boolean);
    ck_assert_int_eq(a->items[4].type, JSON_NULL);
    ck_assert_str_eq(json_get(json_get(&root, "b"), "c")->string, "x");
    ck_assert_int_eq(json_get(&root, "empty")->count, 0);
    ck_assert_int_eq(json_get(&root, "none")->type, JSON_OBJECT);
    ck_assert_ptr_null(json_get(&root, "missing"));
    ck_assert_ptr_null(json_get(a, "a")); /* not an object */
    json_free(&root);
}
END_TEST

START_TEST(test_json_decodes_escapes_and_unicode) {
    /* é is U+00E9 (2 UTF-8 bytes), € U+20AC (3), 😀 U+1F600 a surrogate pair (4). */
    JsonValue value = parse_ok("\"q\\\"b\\\\s\\/n\\n t\\t\\b\\f\\r \\u00e9 \\u20AC \\ud83d\\ude00 raw\xc3\xa9\"");
    ck_assert_int_eq(value.type, JSON_STRING);
    ck_assert_str_eq(value.string, "q\"b\\s/n\n t\t\b\f\r \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 raw\xc3\xa9");
    json_free(&value);
}
END_TEST

START_TEST(test_json_numbers) {
    const struct { const char *text; double value; } cases[] = {
        {"0", 0.0}, {"-0.5", -0.5}, {"1E+2", 100.0}, {"123456789012", 123456789012.0},
        {"1e-3", 1e-3}, {"2.5E-1", 0.25}, {"-12", -12.0}, {"9007199254740993", 9007199254740992.0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        JsonValue value = parse_ok(cases[i].text);
        ck_assert_int_eq(value.type, JSON_NUMBER);
        ck_assert_msg(value.number == cases[i].value, "%s parsed as %.17g", cases[i].text, value.number);
        json_free(&value);
    }
    const char *bad[] = {"01", "1.", ".5", "-", "1e", "1e+", "+1", "0x10", "NaN", "Infinity", "-inf", "1.e3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) parse_fails(bad[i], strlen(bad[i]), "JSON byte");
    parse_fails("1e999", 5, "too large");
}
END_TEST

START_TEST(test_json_rejects_malformed) {
    const struct { const char *text; const char *words; } cases[] = {
        {"\"abc", "unterminated string"},
        {"[\"abc\\\"]", "unterminated string"},
        {"[1,2,]", "expected a value"},
        {"{\"a\":1,}", "expected '\"'"},
        {"\"\\x\"", "invalid escape"},
        {"\"\\u12G4\"", "four hex digits"},
        {"\"\\u12\"", "four hex digits"},
        {"\"\\ud800\"", "low surrogate"},
        {"\"\\ud800\\u0041\"", "low surrogate"},
        {"\"\\udc00\"", "lone low surrogate"},
        {"\"\\u0000\"", "\\u0000"},
        {"\"a\x01z\"", "control character"},
        {"\"line\nbreak\"", "control character"},
        {"{} x", "after the JSON value"},
        {"[1] [2]", "after the JSON value"},
        {"{\"a\" 1}", "expected ':'"},
        {"{a:1}", "expected '\"'"},
        {"[1 2]", "expected ',' or ']'"},
        {"{\"a\":1 \"b\":2}", "expected ',' or '}'"},
        {"[1,2", "expected ',' or ']'"},
        {"", "end of input"},
        {"   ", "end of input"},
        {"tru", "expected a value"},
        {"nul", "expected a value"},
        {"'single'", "expected a value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        parse_fails(cases[i].text, strlen(cases[i].text), cases[i].words);
    /* A NUL byte inside the text is not the end of it, and not valid JSON. */
    parse_fails("[1]\0", 4, "after the JSON value");
    parse_fails("\"a\0b\"", 5, "control character");
}
END_TEST

/* n '[' then n ']'. */
static char *nested_arrays(int n) {
    char *text = malloc((size_t)(2 * n + 1));
    for (int i = 0; i < n; i++) {
        text[i] = '[';
        text[2 * n - 1 - i] = ']';
    }
    text[2 * n] = '\0';
    return text;
}

START_TEST(test_json_depth_limit) {
    char *deepest_allowed = nested_arrays(JSON_MAX_DEPTH);
    JsonValue value = parse_ok(deepest_allowed);
    json_free(&value);
    char *too_deep = nested_arrays(JSON_MAX_DEPTH + 1);
    parse_fails(too_deep, strlen(too_deep), "nested deeper");
    /* Far deeper than any stack could take if the limit were missing. */
    char *hostile = nested_arrays(1000000);
    parse_fails(hostile, strlen(hostile), "nested deeper");
    free(deepest_allowed);
    free(too_deep);
    free(hostile);
}
END_TEST

START_TEST(test_json_reads_only_size_bytes) {
    JsonValue value;
    Error err;
    const char *text = "[1,2]garbage";
    ck_assert(json_parse(text, 5, &value, &err));
    ck_assert_int_eq(value.count, 2);
    json_free(&value);
    parse_fails(text, 4, "expected ',' or ']'");
    parse_fails("\"abc\"", 4, "unterminated string");
    parse_fails("\"\\u00e9\"", 6, "unterminated string");
}
END_TEST

/* ---- JSON: writing ------------------------------------------------------------ */

START_TEST(test_json_append_string_escapes) {
    StringBuilder sb = {0};
    json_append_string(&sb, "say \"hi\" \\ back\nslash\ttab\x01\x1f\r\b\f \xc3\xa9");
    ck_assert_str_eq(sb.data, "\"say \\\"hi\\\" \\\\ back\\nslash\\ttab\\u0001\\u001f\\r\\b\\f \xc3\xa9\"");
    ck_assert_uint_eq(sb.length, strlen(sb.data));
    sb_free(&sb);
    ck_assert_ptr_null(sb.data);

    /* Every byte from 1 to 255 survives escaping then parsing. */
    char all_bytes[256];
    for (int i = 1; i < 256; i++) all_bytes[i - 1] = (char)i;
    all_bytes[255] = '\0';
    json_append_string(&sb, all_bytes);
    JsonValue value = parse_ok(sb.data);
    ck_assert_int_eq(value.type, JSON_STRING);
    ck_assert_mem_eq(value.string, all_bytes, 256);
    json_free(&value);
    sb_free(&sb);
}
END_TEST

START_TEST(test_string_builder_grows) {
    StringBuilder sb = {0};
    sb_append(&sb, "x=");
    sb_appendf(&sb, "%d y=%s", 3, "abc");
    ck_assert_str_eq(sb.data, "x=3 y=abc");
    for (int i = 0; i < 1000; i++) sb_appendf(&sb, "%04d", i);
    ck_assert_uint_eq(sb.length, 9 + 4000);
    ck_assert_uint_eq(strlen(sb.data), sb.length);
    ck_assert(memcmp(sb.data + 9 + 4 * 999, "0999", 4) == 0);
    sb_free(&sb);
}
END_TEST

/* ---- Metadata --------------------------------------------------------------------- */

START_TEST(test_metadata_values_round_trip) {
    Metadata meta;
    metadata_init(&meta);
    Error err = {{0}};
    metadata_set(&meta, "architecture", "seq2seq");
    metadata_set(&meta, "architecture", "transformer"); /* replaces */
    ck_assert_int_eq(meta.count, 1);
    ck_assert_str_eq(metadata_get(&meta, "architecture"), "transformer");
    ck_assert_ptr_null(metadata_get(&meta, "missing"));

    metadata_set_int(&meta, "steps", -1234567890L);
    long steps = 0;
    ck_assert(metadata_get_int(&meta, "steps", &steps, &err));
    ck_assert_int_eq(steps, -1234567890L);

    const float floats[] = {0.1f, 3e-4f, 1.17549435e-38f, 123456.789f, -2.71828182f, 1e-45f};
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        float back = 0;
        metadata_set_float(&meta, "lr", floats[i]);
        ck_assert(metadata_get_float(&meta, "lr", &back, &err));
        ck_assert_mem_eq(&back, &floats[i], sizeof back); /* bit for bit */
    }
    ck_assert(!metadata_get_int(&meta, "nothing", &steps, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "\"nothing\""));
    const char *bad_ints[] = {"12x", "", " 5", "1.5", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad_ints / sizeof bad_ints[0]; i++) {
        metadata_set(&meta, "steps", bad_ints[i]);
        ck_assert_msg(!metadata_get_int(&meta, "steps", &steps, &err), "accepted \"%s\"", bad_ints[i]);
        ck_assert_ptr_nonnull(strstr(err.message, "not an integer"));
    }
    float value;
    metadata_set(&meta, "lr", "3e-4abc");
    ck_assert(!metadata_get_float(&meta, "lr", &value, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "\"lr\""));
    metadata_free(&meta);
    ck_assert_int_eq(meta.count, 0);
}
END_TEST

START_TEST(test_metadata_rng) {
    Metadata meta;
    metadata_init(&meta);
    Error err = {{0}};
    Rng rng = {.state = 0x0123456789abcdefULL, .increment = 0xfedcba9876543211ULL};
    metadata_set_rng(&meta, "rng", &rng);
    ck_assert_str_eq(metadata_get(&meta, "rng"), "0123456789abcdef:fedcba9876543211");
    Rng back = {0, 0};
    ck_assert(metadata_get_rng(&meta, "rng", &back, &err));
    ck_assert(back.state == rng.state && back.increment == rng.increment);

    /* A seeded generator continues the same sequence after the round trip. */
    rng_seed(&rng, 42, 7);
    rng_u32(&rng);
    metadata_set_rng(&meta, "rng", &rng);
    ck_assert(metadata_get_rng(&meta, "rng", &back, &err));
    for (int i = 0; i < 10; i++) ck_assert_uint_eq(rng_u32(&back), rng_u32(&rng));

    const char *bad[] = {"0123456789abcdef", "0123456789abcdef:fedcba987654321",
                         "0123456789abcdeg:fedcba9876543211", "0123456789abcdef-fedcba9876543211",
                         "0123456789abcdef:fedcba98765432110", "0123456789abcdef:fedcba9876543210"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        metadata_set(&meta, "rng", bad[i]);
        back = (Rng){1, 3};
        ck_assert_msg(!metadata_get_rng(&meta, "rng", &back, &err), "accepted \"%s\"", bad[i]);
        ck_assert_ptr_nonnull(strstr(err.message, "\"rng\""));
        ck_assert(back.state == 1 && back.increment == 3);
    }
    ck_assert(!metadata_get_rng(&meta, "other", &back, &err));
    metadata_free(&meta);
}
END_TEST

/* ---- Temporary directories, removed after each test -------------------------------- */

static char current_dir[512]; /* the running test's directory, or "" */

/* A fresh directory for this test's files; teardown_temp_dir removes it. */
static const char *fresh_dir(void) {
    snprintf(current_dir, sizeof current_dir, "%s", test_temp_dir("ckpt"));
    return current_dir;
}

/* A checked fixture: runs in the test's process, also after a failure. */
static void teardown_temp_dir(void) {
    test_remove_tree(current_dir);
    current_dir[0] = '\0';
}

/* ---- Models for the checkpoint tests ----------------------------------------------- */

/* Four tensors of different ranks, as a real model would have. */
static void declare_model(ParamSet *ps, int hidden) {
    params_init(ps);
    params_add_of(ps, "embed.table", false, 2, 7, hidden);
    params_add_of(ps, "block.0.attn.weight", true, 2, hidden, hidden);
    params_add_of(ps, "block.0.attn.bias", false, 1, hidden);
    params_add_of(ps, "conv.kernel", true, 4, 2, 3, 2, 2);
    params_allocate(ps);
}

static void fill_random(float *values, size_t count, Rng *rng) {
    for (size_t i = 0; i < count; i++) values[i] = rng_normal(rng);
}

/* The toy model of the hand-written files: "w" (2,3), "b" (3). */
static void declare_toy(ParamSet *ps) {
    params_init(ps);
    params_add_of(ps, "w", true, 2, 2, 3);
    params_add_of(ps, "b", false, 1, 3);
    params_allocate(ps);
}

static char *path_in(const char *dir, const char *name) {
    size_t size = strlen(dir) + strlen(name) + 2;
    char *path = malloc(size);
    snprintf(path, size, "%s/%s", dir, name);
    return path;
}

static unsigned char *read_file_bytes(const char *path, size_t *size) {
    FILE *file = fopen(path, "rb");
    ck_assert_msg(file != NULL, "cannot open %s", path);
    fseek(file, 0, SEEK_END);
    *size = (size_t)ftell(file);
    fseek(file, 0, SEEK_SET);
    unsigned char *bytes = malloc(*size + 1);
    ck_assert_uint_eq(fread(bytes, 1, *size, file), *size);
    fclose(file);
    return bytes;
}

static void write_file_bytes(const char *path, const void *bytes, size_t size) {
    FILE *file = fopen(path, "wb");
    ck_assert_msg(file != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(bytes, 1, size, file), size);
    ck_assert_int_eq(fclose(file), 0);
}

static uint64_t header_length_of(const unsigned char *bytes) {
    uint64_t length = 0;
    for (int i = 7; i >= 0; i--) length = length << 8 | bytes[i];
    return length;
}

static bool file_exists(const char *path) {
    struct stat info;
    return stat(path, &info) == 0;
}

/* A model with random values, Adam moments and metadata, saved to `path`. */
static void save_random_model(const char *path, ParamSet *ps, Optimizer *opt, Metadata *meta, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed, 1);
    declare_model(ps, 5);
    fill_random(ps->values, ps->total, &rng);
    optimizer_init(opt, OPTIMIZER_ADAM, ps);
    fill_random(opt->moment1, ps->total, &rng);
    fill_random(opt->moment2, ps->total, &rng);
    opt->step = 1234;
    metadata_init(meta);
    metadata_set(meta, "architecture", "transformer");
    metadata_set_float(meta, "lr", 3e-4f);
    metadata_set_int(meta, "hidden", 5);
    metadata_set(meta, "vocabulary", "a\"b\\c\nd\te \xc3\xa9 \xf0\x9f\x98\x80 \x01");
    metadata_set_rng(meta, "rng", &rng);
    Error err = {{0}};
    ck_assert_msg(checkpoint_save(path, ps, opt, meta, &err), "save failed: %s", err.message);
}

/* ---- Round trips -------------------------------------------------------------------- */

START_TEST(test_round_trip_is_bit_exact) {
    const char *dir = fresh_dir();
    char *path = path_in(dir, "model.safetensors");
    ParamSet saved, loaded;
    Optimizer saved_opt, loaded_opt;
    Metadata meta, loaded_meta;
    save_random_model(path, &saved, &saved_opt, &meta, 11);

    declare_model(&loaded, 5);
    optimizer_init(&loaded_opt, OPTIMIZER_ADAM, &loaded);
    Error err = {{0}};
    ck_assert_msg(checkpoint_load(path, &loaded, &loaded_opt, "transformer", &loaded_meta, &err), "%s",
                  err.message);
    ck_assert_mem_eq(loaded.values, saved.values, saved.total * sizeof(float));
    ck_assert_mem_eq(loaded_opt.moment1, saved_opt.moment1, saved.total * sizeof(float));
    ck_assert_mem_eq(loaded_opt.moment2, saved_opt.moment2, saved.total * sizeof(float));
    ck_assert_int_eq(loaded_opt.step, 1234);
    /* The caller's metadata, plus the optimizer's kind and step. */
    ck_assert_int_eq(loaded_meta.count, meta.count + 2);
    for (int i = 0; i < meta.count; i++) {
        const char *value = metadata_get(&loaded_meta, meta.keys[i]);
        ck_assert_msg(value != NULL, "metadata \"%s\" lost", meta.keys[i]);
        ck_assert_str_eq(value, meta.values[i]);
    }
    ck_assert_str_eq(metadata_get(&loaded_meta, "optimizer.kind"), optimizer_name(OPTIMIZER_ADAM));
    ck_assert_str_eq(metadata_get(&loaded_meta, "optimizer.step"), "1234");

    /* The layout: header length a multiple of 8, data exactly 3 * total floats. */
    size_t size;
    unsigned char *bytes = read_file_bytes(path, &size);
    uint64_t header_length = header_length_of(bytes);
    ck_assert_uint_eq(header_length % 8, 0);
    ck_assert_uint_eq(size, 8 + header_length + 3 * saved.total * sizeof(float));
    ck_assert_int_eq(bytes[8], '{');
    ck_assert_mem_eq(bytes + 8 + header_length, saved.values, saved.total * sizeof(float));
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert(!file_exists(tmp));
    free(bytes);

    metadata_free(&meta);
    metadata_free(&loaded_meta);
    optimizer_free(&saved_opt);
    optimizer_free(&loaded_opt);
    params_free(&saved);
    params_free(&loaded);
    free(path);
}
END_TEST

START_TEST(test_optimizer_state_is_optional) {
    const char *dir = fresh_dir();
    char *with_sgd = path_in(dir, "sgd.safetensors"), *without = path_in(dir, "plain.safetensors");
    Rng rng;
    rng_seed(&rng, 5, 5);
    ParamSet ps, loaded;
    declare_model(&ps, 3);
    fill_random(ps.values, ps.total, &rng);
    Optimizer sgd, loaded_sgd, adam;
    optimizer_init(&sgd, OPTIMIZER_SGD, &ps);
    fill_random(sgd.moment1, ps.total, &rng);
    sgd.step = 77;
    Error err = {{0}};
    ck_assert(checkpoint_save(with_sgd, &ps, &sgd, NULL, &err));
    ck_assert(checkpoint_save(without, &ps, NULL, NULL, &err));

    declare_model(&loaded, 3);
    optimizer_init(&loaded_sgd, OPTIMIZER_SGD, &loaded);
    ck_assert_msg(checkpoint_load(with_sgd, &loaded, &loaded_sgd, NULL, NULL, &err), "%s", err.message);
    ck_assert_mem_eq(loaded_sgd.moment1, sgd.moment1, ps.total * sizeof(float));
    ck_assert_int_eq(loaded_sgd.step, 77);

    /* Weights alone load from either file; extra optimizer.* tensors are fine. */
    memset(loaded.values, 0, ps.total * sizeof(float));
    ck_assert(checkpoint_load(with_sgd, &loaded, NULL, NULL, NULL, &err));
    ck_assert_mem_eq(loaded.values, ps.values, ps.total * sizeof(float));
    memset(loaded.values, 0, ps.total * sizeof(float));
    ck_assert(checkpoint_load(without, &loaded, NULL, NULL, NULL, &err));
    ck_assert_mem_eq(loaded.values, ps.values, ps.total * sizeof(float));

    /* Resuming needs the state, and of the same kind. */
    optimizer_init(&adam, OPTIMIZER_ADAM, &loaded);
    ck_assert(!checkpoint_load(without, &loaded, &adam, NULL, NULL, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "no optimizer state"));
    ck_assert(!checkpoint_load(with_sgd, &loaded, &adam, NULL, NULL, &err));
    ck_assert_ptr_nonnull(strstr(err.message, optimizer_name(OPTIMIZER_SGD)));
    ck_assert_ptr_nonnull(strstr(err.message, optimizer_name(OPTIMIZER_ADAM)));
    ck_assert_int_eq(adam.step, 0);

    optimizer_free(&adam);
    optimizer_free(&sgd);
    optimizer_free(&loaded_sgd);
    params_free(&ps);
    params_free(&loaded);
    free(with_sgd);
    free(without);
}
END_TEST

START_TEST(test_read_metadata_only) {
    const char *dir = fresh_dir();
    char *path = path_in(dir, "model.safetensors");
    ParamSet ps;
    Optimizer opt;
    Metadata meta, read;
    save_random_model(path, &ps, &opt, &meta, 3);
    Error err = {{0}};
    ck_assert_msg(checkpoint_read_metadata(path, &read, &err), "%s", err.message);
    ck_assert_str_eq(metadata_get(&read, "architecture"), "transformer");
    ck_assert_str_eq(metadata_get(&read, "vocabulary"), metadata_get(&meta, "vocabulary"));
    long hidden;
    ck_assert(metadata_get_int(&read, "hidden", &hidden, &err));
    ck_assert_int_eq(hidden, 5);
    metadata_free(&read);

    /* A file whose data is cut short still has a readable header, but the
     * header's offsets no longer fit, and that is reported. */
    size_t size;
    unsigned char *bytes = read_file_bytes(path, &size);
    write_file_bytes(path, bytes, size - 4);
    ck_assert(!checkpoint_read_metadata(path, &read, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "out of bounds"));
    ck_assert_int_eq(read.count, 0);
    free(bytes);
    metadata_free(&meta);
    optimizer_free(&opt);
    params_free(&ps);
    free(path);
}
END_TEST

START_TEST(test_save_replaces_previous) {
    const char *dir = fresh_dir();
    char *path = path_in(dir, "model.safetensors");
    ParamSet first, second, loaded;
    Optimizer opt1, opt2;
    Metadata meta1, meta2;
    save_random_model(path, &first, &opt1, &meta1, 1);
    save_random_model(path, &second, &opt2, &meta2, 2);
    declare_model(&loaded, 5);
    Error err = {{0}};
    ck_assert(checkpoint_load(path, &loaded, NULL, "transformer", NULL, &err));
    ck_assert_mem_eq(loaded.values, second.values, second.total * sizeof(float));
    ck_assert(memcmp(loaded.values, first.values, first.total * sizeof(float)) != 0);
    metadata_free(&meta1);
    metadata_free(&meta2);
    optimizer_free(&opt1);
    optimizer_free(&opt2);
    params_free(&first);
    params_free(&second);
    params_free(&loaded);
    free(path);
}
END_TEST

/* ---- Rejections: the load fails, says why, and changes nothing ------------------- */

static const float SENTINEL = -7.25f;

/* Loads `path` into a toy-or-full model filled with SENTINEL and checks the
 * failure: the message contains each of `words` (NULL-terminated). */
static void expect_load_fails(const char *path, ParamSet *ps, const char *architecture, const char *const *words) {
    for (size_t i = 0; i < ps->total; i++) ps->values[i] = SENTINEL;
    Metadata meta;
    Error err = {{0}};
    ck_assert_msg(!checkpoint_load(path, ps, NULL, architecture, &meta, &err), "loaded a bad file %s", path);
    for (int w = 0; words[w] != NULL; w++)
        ck_assert_msg(strstr(err.message, words[w]) != NULL, "message \"%s\" lacks \"%s\"", err.message, words[w]);
    ck_assert_msg(strchr(err.message, '\n') == NULL, "message is not one line: %s", err.message);
    for (size_t i = 0; i < ps->total; i++) ck_assert_msg(ps->values[i] == SENTINEL, "value %zu changed", i);
    ck_assert_int_eq(meta.count, 0);
    metadata_free(&meta);
}

#define EXPECT_LOAD_FAILS(path, ps, architecture, ...) \
    expect_load_fails((path), (ps), (architecture), (const char *const[]){__VA_ARGS__, NULL})

START_TEST(test_rejects_truncated_files) {
    const char *dir = fresh_dir();
    char *path = path_in(dir, "model.safetensors"), *cut = path_in(dir, "cut.safetensors");
    ParamSet ps, target;
    Optimizer opt;
    Metadata meta;
    save_random_model(path, &ps, &opt, &meta, 9);
    declare_model(&target, 5);
    size_t size;
    unsigned char *bytes = read_file_bytes(path, &size);
    size_t header_end = 8 + (size_t)header_length_of(bytes);
    const struct { size_t keep; const char *words; } cases[] = {
        {0, "empty"},
        {3, "truncated"},                   /* inside the length */
        {8, "runs past the end"},           /* the length alone */
        {header_end / 2, "runs past the end"}, /* inside the header */
        {header_end, "out of bounds"},      /* no data at all */
        {header_end + 10, "out of bounds"}, /* inside the data */
        {size - 1, "out of bounds"},        /* one byte short */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file_bytes(cut, bytes, cases[i].keep);
        EXPECT_LOAD_FAILS(cut, &target, "transformer", cut, cases[i].words);
    }
    free(bytes);
    metadata_free(&meta);
    optimizer_free(&opt);
    params_free(&ps);
    params_free(&target);
    free(path);
    free(cut);
}
END_TEST

START_TEST(test_rejects_bad_header_length_and_json) {
    const char *dir = fresh_dir();
    char *path = path_in(dir, "model.safetensors"), *bad = path_in(dir, "bad.safetensors");
    ParamSet ps, target;
    Optimizer opt;
    Metadata meta;
    save_random_model(path, &ps, &opt, &meta, 4);
    declare_model(&target, 5);
    size_t size;
    unsigned char *bytes = read_file_bytes(path, &size);
    unsigned char *copy = malloc(size);

    memcpy(copy, bytes, size); /* length 2^40 */
    memset(copy, 0, 8);
    copy[5] = 1;
    write_file_bytes(bad, copy, size);
    EXPECT_LOAD_FAILS(bad, &target, "transformer", "1099511627776", "exceeds");

    memcpy(copy, bytes, size); /* length = file size */
    for (int i = 0; i < 8; i++) copy[i] = (unsigned char)((uint64_t)size >> (8 * i));
    write_file_bytes(bad, copy, size);
    EXPECT_LOAD_FAILS(bad, &target, "transformer", "runs past the end");

    memcpy(copy, bytes, size); /* the first ':' of the JSON becomes ';' */
    *(unsigned char *)memchr(copy + 8, ':', size - 8) = ';';
    write_file_bytes(bad, copy, size);
    EXPECT_LOAD_FAILS(bad, &target, "transformer", "not valid JSON", "expected ':'");

    memcpy(copy, bytes, size); /* the header all spaces */
    memset(copy + 8, ' ', (size_t)header_length_of(bytes));
    write_file_bytes(bad, copy, size);
    EXPECT_LOAD_FAILS(bad, &target, "transformer", "not valid JSON");

    memcpy(copy, bytes, size); /* junk in the padding after the JSON */
    copy[8 + header_length_of(bytes) - 1] = 'x';
    write_file_bytes(bad, copy, size);
    EXPECT_LOAD_FAILS(bad, &target, "transformer", "after the JSON value");

    free(copy);
    free(bytes);
    metadata_free(&meta);
    optimizer_free(&opt);
    params_free(&ps);
    params_free(&target);
    free(path);
    free(bad);
}
END_TEST

/* Writes length, header and `data_bytes` bytes of data (float k at float k). */
static void write_raw_checkpoint(const char *path, const char *header, size_t data_bytes) {
    size_t length = strlen(header);
    size_t size = 8 + length + data_bytes;
    unsigned char *bytes = calloc(size, 1);
    for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)((uint64_t)length >> (8 * i));
    memcpy(bytes + 8, header, length);
    for (size_t k = 0; 4 * k + 4 <= data_bytes; k++) {
        float value = (float)k + 0.5f;
        memcpy(bytes + 8 + length + 4 * k, &value, 4);
    }
    write_file_bytes(path, bytes, size);
    free(bytes);
}

#define TOY_META "\"__metadata__\":{\"architecture\":\"toy\"}"
#define TOY_W "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"
#define TOY_B "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]}"

START_TEST(test_hand_written_file_loads) {
    /* The good file the rejection cases below each break in one place. */
    const char *dir = fresh_dir();
    char *path = path_in(dir, "toy.safetensors");
    write_raw_checkpoint(path, "{" TOY_META "," TOY_W "," TOY_B "}", 36);
    ParamSet ps;
    declare_toy(&ps);
    Metadata meta;
    Error err = {{0}};
    ck_assert_msg(checkpoint_load(path, &ps, NULL, "toy", &meta, &err), "%s", err.message);
    for (int k = 0; k < 9; k++) ck_assert(ps.values[k] == (float)k + 0.5f);
    ck_assert_str_eq(metadata_get(&meta, "architecture"), "toy");
    metadata_free(&meta);
    /* Order in the header does not matter, nor do gaps, nor the metadata
     * when no architecture is expected. */
    write_raw_checkpoint(path, "{\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                               "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[16,40]}}", 40);
    ck_assert_msg(checkpoint_load(path, &ps, NULL, NULL, NULL, &err), "%s", err.message);
    ck_assert(ps.values[0] == 4.5f && ps.values[6] == 0.5f);
    params_free(&ps);
    free(path);
}
END_TEST

/* Each hand-written file is the good one above broken in one way. */
static const struct {
    const char *header;
    size_t data_bytes;
    const char *words[3];
} BAD_FILES[] = {
    {"{" TOY_META ",\"w\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]}," TOY_B "}", 36,
     {"\"w\"", "dtype", "F16"}},
    {"{" TOY_META "," TOY_W ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]}}", 32,
     {"\"b\"", "out of bounds", "32-byte"}},
    {"{" TOY_META "," TOY_W ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[20,32]}}", 36,
     {"\"w\"", "\"b\"", "overlap"}},
    {"{" TOY_META "," TOY_W ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[36,24]}}", 36,
     {"\"b\"", "out of bounds", NULL}},
    {"{" TOY_META "," TOY_W ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,32]}}", 36,
     {"\"b\"", "span 8 bytes", "(3)"}},
    {"{" TOY_META ",\"w\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]}," TOY_B "}", 36,
     {"\"w\"", "(3,2)", "(2,3)"}},
    {"{" TOY_META ",\"w\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[0,24]}," TOY_B "}", 36,
     {"\"w\"", "(6)", "(2,3)"}},
    {"{" TOY_META "," TOY_W "}", 36, {"\"b\"", "missing", NULL}},
    {"{" TOY_META "," TOY_W "," TOY_B ",\"extra\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[36,36]}}", 36,
     {"\"extra\"", "not a parameter", NULL}},
    {"{\"__metadata__\":{\"architecture\":\"seq2seq\"}," TOY_W "," TOY_B "}", 36, {"architecture", "seq2seq", "toy"}},
    {"{\"__metadata__\":{}," TOY_W "," TOY_B "}", 36, {"architecture", "toy", NULL}},
    {"{" TOY_W "," TOY_B "}", 36, {"architecture", "toy", NULL}},
    {"{\"__metadata__\":{\"architecture\":\"toy\",\"steps\":10}," TOY_W "," TOY_B "}", 36,
     {"\"steps\"", "not a string", NULL}},
    {"{\"__metadata__\":[]," TOY_W "," TOY_B "}", 36, {"__metadata__", "not a JSON object", NULL}},
    {"{" TOY_META ",\"w\":{\"dtype\":\"F32\",\"shape\":[2,-3],\"data_offsets\":[0,24]}," TOY_B "}", 36,
     {"\"w\"", "non-negative integers", NULL}},
    {"{" TOY_META ",\"w\":{\"dtype\":\"F32\",\"shape\":[2,1.5],\"data_offsets\":[0,12]}," TOY_B "}", 36,
     {"\"w\"", "shape", NULL}},
    {"{" TOY_META ",\"w\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}," TOY_B "}", 36,
     {"\"w\"", "shape", NULL}},
    {"{" TOY_META ",\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0]}," TOY_B "}", 36,
     {"\"w\"", "data_offsets", NULL}},
    {"{" TOY_META ",\"w\":{\"dtype\":\"F32\",\"shape\":[2,3]}," TOY_B "}", 36, {"\"w\"", "data_offsets", NULL}},
    {"{" TOY_META ",\"w\":{\"shape\":[2,3],\"data_offsets\":[0,24]}," TOY_B "}", 36, {"\"w\"", "dtype", NULL}},
    {"{" TOY_META ",\"w\":[]," TOY_B "}", 36, {"\"w\"", "not a JSON object", NULL}},
    {"{" TOY_META "," TOY_W "," TOY_B "," TOY_W "}", 36, {"\"w\"", "twice", NULL}},
    {"{" TOY_META "," TOY_META "," TOY_W "," TOY_B "}", 36, {"__metadata__", "twice", NULL}},
    {"[" TOY_META "," TOY_W "]", 36, {"not valid JSON", NULL, NULL}},
    {"[1,2,3]", 36, {"not a JSON object", NULL, NULL}},
    {"{" TOY_META ",\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,24]}," TOY_B "}",
     36, {"\"w\"", "shape", NULL}},
};

START_TEST(test_rejects_bad_entry) {
    const char *dir = fresh_dir();
    char *path = path_in(dir, "toy.safetensors");
    write_raw_checkpoint(path, BAD_FILES[_i].header, BAD_FILES[_i].data_bytes);
    ParamSet ps;
    declare_toy(&ps);
    const char *words[5] = {path};
    for (int w = 0; w < 3; w++) words[w + 1] = BAD_FILES[_i].words[w];
    expect_load_fails(path, &ps, "toy", words);
    params_free(&ps);
    free(path);
}
END_TEST

START_TEST(test_rejects_paths_that_are_not_checkpoints) {
    const char *dir = fresh_dir();
    char *missing = path_in(dir, "missing.safetensors");
    ParamSet ps;
    declare_toy(&ps);
    EXPECT_LOAD_FAILS(missing, &ps, "toy", missing, strerror(ENOENT));
    EXPECT_LOAD_FAILS(dir, &ps, "toy", dir, "directory");
    EXPECT_LOAD_FAILS("/dev/null", &ps, "toy", "/dev/null", "not a regular file");
    /* A sparse file just over 2 GiB is refused before any memory is taken. */
    char *huge = path_in(dir, "huge.safetensors");
    FILE *file = fopen(huge, "wb");
    ck_assert_ptr_nonnull(file);
    ck_assert_int_eq(ftruncate(fileno(file), (off_t)(2LL << 30) + 1), 0);
    fclose(file);
    EXPECT_LOAD_FAILS(huge, &ps, "toy", huge, "2 GiB");
    remove(huge);
    free(huge);
    Metadata meta;
    Error err;
    ck_assert(!checkpoint_read_metadata(dir, &meta, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "directory"));
    ck_assert_int_eq(meta.count, 0);
    ck_assert(!checkpoint_read_metadata(missing, &meta, &err));
    ck_assert_ptr_nonnull(strstr(err.message, missing));
    params_free(&ps);
    free(missing);
}
END_TEST

START_TEST(test_rejects_wrong_shape_keeps_optimizer) {
    /* A checkpoint of a wider model: the error names tensor and both
     * shapes, and neither parameters nor moments nor step change. */
    const char *dir = fresh_dir();
    char *path = path_in(dir, "model.safetensors");
    ParamSet ps, narrow;
    Optimizer opt, narrow_opt;
    Metadata meta;
    save_random_model(path, &ps, &opt, &meta, 8);
    declare_model(&narrow, 4);
    optimizer_init(&narrow_opt, OPTIMIZER_ADAM, &narrow);
    for (size_t i = 0; i < narrow.total; i++) narrow.values[i] = narrow_opt.moment1[i] = narrow_opt.moment2[i] = SENTINEL;
    narrow_opt.step = 3;
    Error err;
    ck_assert(!checkpoint_load(path, &narrow, &narrow_opt, "transformer", NULL, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "\"embed.table\""));
    ck_assert_ptr_nonnull(strstr(err.message, "(7,5)"));
    ck_assert_ptr_nonnull(strstr(err.message, "(7,4)"));
    for (size_t i = 0; i < narrow.total; i++)
        ck_assert(narrow.values[i] == SENTINEL && narrow_opt.moment1[i] == SENTINEL && narrow_opt.moment2[i] == SENTINEL);
    ck_assert_int_eq(narrow_opt.step, 3);
    metadata_free(&meta);
    optimizer_free(&opt);
    optimizer_free(&narrow_opt);
    params_free(&ps);
    params_free(&narrow);
    free(path);
}
END_TEST

/* ---- Atomic saving ---------------------------------------------------------------- */

/* `path` still holds the checkpoint of `ps`, and no "<path>.tmp" is left. */
static void assert_checkpoint_intact(const char *path, const ParamSet *ps) {
    ParamSet loaded;
    declare_model(&loaded, 5);
    Error err = {{0}};
    ck_assert_msg(checkpoint_load(path, &loaded, NULL, "transformer", NULL, &err), "%s", err.message);
    ck_assert_mem_eq(loaded.values, ps->values, ps->total * sizeof(float));
    params_free(&loaded);
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert_msg(!file_exists(tmp), "%s was left behind", tmp);
}

START_TEST(test_save_into_missing_directory_fails) {
    const char *dir = fresh_dir();
    char *good = path_in(dir, "model.safetensors");
    char *no_dir = path_in(dir, "no/such/dir/model.safetensors");
    char *under_file = path_in(dir, "model.safetensors/inside.safetensors");
    ParamSet ps, other;
    Optimizer opt;
    Metadata meta;
    save_random_model(good, &ps, &opt, &meta, 21);
    declare_model(&other, 5); /* different (zero) values */
    Error err = {{0}};
    ck_assert(!checkpoint_save(no_dir, &other, NULL, &meta, &err));
    ck_assert_ptr_nonnull(strstr(err.message, no_dir));
    ck_assert_ptr_nonnull(strstr(err.message, strerror(ENOENT)));
    /* Root can write anywhere, but not under a regular file. */
    ck_assert(!checkpoint_save(under_file, &other, NULL, &meta, &err));
    ck_assert_ptr_nonnull(strstr(err.message, under_file));
    ck_assert_ptr_nonnull(strstr(err.message, strerror(ENOTDIR)));
    assert_checkpoint_intact(good, &ps);
    metadata_free(&meta);
    optimizer_free(&opt);
    params_free(&ps);
    params_free(&other);
    free(good);
    free(no_dir);
    free(under_file);
}
END_TEST

START_TEST(test_failed_write_keeps_previous_checkpoint) {
    /* A disk that fills up mid-save, simulated with a file size limit: the
     * kernel refuses writes past 4 KiB (EFBIG) as it would with ENOSPC. */
    const char *dir = fresh_dir();
    char *path = path_in(dir, "model.safetensors");
    ParamSet ps, big;
    Optimizer opt, big_opt;
    Metadata meta;
    save_random_model(path, &ps, &opt, &meta, 31);
    declare_model(&big, 40); /* 7*40 + 1600 + 40 + 24 floats: ~7.8 KB, x3 with Adam */
    optimizer_init(&big_opt, OPTIMIZER_ADAM, &big);

    struct rlimit saved_limit, small_limit;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved_limit), 0);
    small_limit = saved_limit;
    small_limit.rlim_cur = 4096;
    void (*saved_handler)(int) = signal(SIGXFSZ, SIG_IGN); /* else the signal kills us */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small_limit), 0);
    Error err = {{0}};
    bool saved = checkpoint_save(path, &big, &big_opt, &meta, &err);
    setrlimit(RLIMIT_FSIZE, &saved_limit);
    signal(SIGXFSZ, saved_handler);

    ck_assert_msg(!saved, "save past the file size limit succeeded");
    ck_assert_ptr_nonnull(strstr(err.message, path));
    ck_assert_ptr_nonnull(strstr(err.message, strerror(EFBIG)));
    assert_checkpoint_intact(path, &ps);
    metadata_free(&meta);
    optimizer_free(&opt);
    optimizer_free(&big_opt);
    params_free(&ps);
    params_free(&big);
    free(path);
}
END_TEST

/* A diverged run: a NaN in a weight, or an Inf in Adam's second moment,
 * is refused with the tensor's name, and the last good checkpoint stays. */
START_TEST(test_non_finite_values_are_not_saved) {
    const char *dir = fresh_dir();
    char *path = path_in(dir, "model.safetensors");
    ParamSet ps;
    Optimizer opt;
    Metadata meta;
    save_random_model(path, &ps, &opt, &meta, 32);
    for (int which = 0; which < 2; which++) {
        float *bad = which == 0 ? &ps.tensors[1].data[3] : &opt.moment2[ps.total - 1];
        float saved = *bad;
        *bad = which == 0 ? NAN : INFINITY;
        Error err = {{0}};
        ck_assert_msg(!checkpoint_save(path, &ps, &opt, &meta, &err), "a %s was saved", which ? "Inf" : "NaN");
        const char *name = which == 0 ? "\"block.0.attn.weight\" holds NaN at element 3"
                                      : "optimizer.moment2.";
        ck_assert_msg(strstr(err.message, name) && strstr(err.message, path), "%s", err.message);
        *bad = saved;
        assert_checkpoint_intact(path, &ps);
    }
    metadata_free(&meta);
    optimizer_free(&opt);
    params_free(&ps);
    free(path);
}
END_TEST

START_TEST(test_failed_rename_removes_tmp) {
    /* The target is a non-empty directory: the temporary file is written,
     * the rename fails, and the temporary file must go. */
    const char *dir = fresh_dir();
    char *target = path_in(dir, "model.safetensors");
    char *inside = path_in(dir, "model.safetensors/keep");
    char *tmp = path_in(dir, "model.safetensors.tmp");
    ck_assert_int_eq(mkdir(target, 0777), 0);
    write_file_bytes(inside, "x", 1);
    ParamSet ps;
    declare_toy(&ps);
    Error err = {{0}};
    ck_assert(!checkpoint_save(target, &ps, NULL, NULL, &err));
    ck_assert_ptr_nonnull(strstr(err.message, target));
    ck_assert_ptr_nonnull(strstr(err.message, "renaming"));
    ck_assert(!file_exists(tmp));
    ck_assert(file_exists(inside));
    params_free(&ps);
    free(target);
    free(inside);
    free(tmp);
}
END_TEST

/* ---- The Python reader (optional: skipped without /usr/bin/python3 + numpy) ------- */

static const char *find_python_checker(void) {
    static const char *const candidates[] = {"safetensors_check.py", "tests/safetensors_check.py"};
    for (size_t i = 0; i < 2; i++)
        if (file_exists(candidates[i])) return candidates[i];
    return NULL;
}

/* Runs the checker; returns its exit status and the start of its output. */
static int run_python_checker(const char *script, const char *path, char *output, size_t size) {
    char command[2048];
    snprintf(command, sizeof command, "/usr/bin/python3 %s '%s' 2>&1", script, path);
    FILE *pipe = popen(command, "r");
    ck_assert_ptr_nonnull(pipe);
    size_t got = fread(output, 1, size - 1, pipe);
    output[got] = '\0';
    int status = pclose(pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(test_python_reader_agrees) {
    const char *script = find_python_checker();
    if (script == NULL || access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_python_reader_agrees: skipped (needs /usr/bin/python3 with numpy)\n");
        return;
    }
    const char *dir = fresh_dir();
    char *path = path_in(dir, "model.safetensors");
    ParamSet ps;
    Optimizer opt;
    Metadata meta;
    save_random_model(path, &ps, &opt, &meta, 12);
    char output[8192];
    ck_assert_int_eq(run_python_checker(script, path, output, sizeof output), 0);
    ck_assert_msg(strstr(output, "conv.kernel") != NULL && strstr(output, "(2, 3, 2, 2)") != NULL, "%s", output);
    ck_assert_msg(strstr(output, "transformer") != NULL, "%s", output);
    /* The sum printed by numpy equals the sum of the values here. */
    double sum = 0;
    for (int i = 0; i < ps.tensors[2].numel; i++) sum += ps.tensors[2].data[i];
    char expected[128];
    snprintf(expected, sizeof expected, "block.0.attn.bias (5,) sum %.4f", sum);
    ck_assert_msg(strstr(output, expected) != NULL, "no \"%s\" in:\n%s", expected, output);

    size_t size;
    unsigned char *bytes = read_file_bytes(path, &size);
    write_file_bytes(path, bytes, size - 1);
    ck_assert_int_ne(run_python_checker(script, path, output, sizeof output), 0);
    free(bytes);
    metadata_free(&meta);
    optimizer_free(&opt);
    params_free(&ps);
    free(path);
}
END_TEST

Suite *checkpoint_suite(void) {
    Suite *suite = suite_create("checkpoint");
    TCase *json = tcase_create("json");
    tcase_add_test(json, test_json_parses_objects_and_arrays);
    tcase_add_test(json, test_json_decodes_escapes_and_unicode);
    tcase_add_test(json, test_json_numbers);
    tcase_add_test(json, test_json_rejects_malformed);
    tcase_add_test(json, test_json_depth_limit);
    tcase_add_test(json, test_json_reads_only_size_bytes);
    tcase_add_test(json, test_json_append_string_escapes);
    tcase_add_test(json, test_string_builder_grows);
    suite_add_tcase(suite, json);

    TCase *metadata = tcase_create("metadata");
    tcase_add_test(metadata, test_metadata_values_round_trip);
    tcase_add_test(metadata, test_metadata_rng);
    suite_add_tcase(suite, metadata);

    TCase *round_trip = tcase_create("round_trip");
    tcase_add_test(round_trip, test_round_trip_is_bit_exact);
    tcase_add_test(round_trip, test_optimizer_state_is_optional);
    tcase_add_test(round_trip, test_read_metadata_only);
    tcase_add_test(round_trip, test_save_replaces_previous);
    tcase_add_test(round_trip, test_python_reader_agrees);
    tcase_add_checked_fixture(round_trip, NULL, teardown_temp_dir);
    suite_add_tcase(suite, round_trip);

    TCase *rejections = tcase_create("rejections");
    tcase_add_test(rejections, test_rejects_truncated_files);
    tcase_add_test(rejections, test_rejects_bad_header_length_and_json);
    tcase_add_test(rejections, test_hand_written_file_loads);
    tcase_add_loop_test(rejections, test_rejects_bad_entry, 0, (int)(sizeof BAD_FILES / sizeof BAD_FILES[0]));
    tcase_add_test(rejections, test_rejects_paths_that_are_not_checkpoints);
    tcase_add_test(rejections, test_rejects_wrong_shape_keeps_optimizer);
    tcase_add_checked_fixture(rejections, NULL, teardown_temp_dir);
    suite_add_tcase(suite, rejections);

    TCase *atomic = tcase_create("atomic_save");
    tcase_add_test(atomic, test_save_into_missing_directory_fails);
    tcase_add_test(atomic, test_failed_write_keeps_previous_checkpoint);
    tcase_add_test(atomic, test_failed_rename_removes_tmp);
    tcase_add_test(atomic, test_non_finite_values_are_not_saved);
    tcase_add_checked_fixture(atomic, NULL, teardown_temp_dir);
    suite_add_tcase(suite, atomic);
    return suite;
}
