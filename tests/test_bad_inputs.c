/* tests/test_bad_inputs.c: every program against every kind of bad input.
 *
 * One table, one row per (program, bad input): the command line, the exit
 * status it must end with (2 for a usage error, 1 for a runtime error), and
 * two pieces of text its stderr must hold: what it names (the file or the
 * option) and what it says about it.  Every row also checks that the
 * program was not killed by a signal, printed no sanitizer report, and left
 * nothing behind: neither its --out directory nor a .tmp file.
 *
 * The bad inputs, built once by make_inputs():
 *   {missing}     a path that does not exist
 *   {empty}       an empty file
 *   {directory}   a directory where a file is expected
 *   {garbage}     random bytes (with NUL bytes, and a first 8 bytes that
 *                 no safetensors header length can have)
 *   {oversized}   a sparse file of 2 GiB + 1 byte: over every size limit
 *                 (64 MiB for text in common/data.c, 512 MiB for the
 *                 autoencoder's CSV, 2 GiB for checkpoints), yet it takes
 *                 no disk space, and each limit is checked with stat()
 *                 before anything is read
 *   {transformer-checkpoint}, {seq2seq-checkpoint}   real checkpoints of
 *                 those architectures, given to the others
 *   {out}         a fresh run directory for the row, which must not exist
 *                 afterwards; "{empty}/run" is an --out that cannot be
 *                 created (its parent is a file), for root too
 *   {tiny}        the program's tiny `train` options (program_runs.c)
 *
 * spiral reads no file, so it has only the rows about options and --out.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "program_runs.h"
#include "rng.h"
#include "test_suites.h"

typedef struct {
    const char *program;
    const char *arguments; /* with the {placeholders} above              */
    int status;            /* EXIT_USAGE_ERROR (2) or EXIT_RUNTIME_ERROR (1) */
    const char *names;     /* stderr must hold this ...                  */
    const char *says;      /* ... and this                               */
} BadInputCase;

/* The rows every model shares: a bad --checkpoint for eval, and another
 * architecture's checkpoint for eval and for train --resume. */
#define CHECKPOINT_ROWS(program, foreign)                                                              \
    {program, "eval --checkpoint {missing} --out {out}", 1, "{missing}", "cannot open checkpoint"},   \
    {program, "eval --checkpoint {empty} --out {out}", 1, "{empty}", "checkpoint file is empty"},      \
    {program, "eval --checkpoint {directory} --out {out}", 1, "{directory}", "is a directory"},        \
    {program, "eval --checkpoint {garbage} --out {out}", 1, "{garbage}", "not a safetensors file"},    \
    {program, "eval --checkpoint {oversized} --out {out}", 1, "{oversized}", "2 GiB limit"},           \
    {program, "eval --checkpoint " foreign " --out {out}", 1, foreign, "architecture"},               \
    {program, "{tiny} --steps 3 --resume --checkpoint " foreign " --out {out}", 1, foreign, "architecture"}
#define OPTION_ROWS(program, train)                                                                    \
    {program, train " --no-such-flag --out {out}", 2, "--no-such-flag", "unknown option"},             \
    {program, train " --steps 0 --out {out}", 2, "--steps", "expected an integer from 1"},             \
    {program, train " --steps 2 --out {empty}/run", 1, "{empty}", "not a directory"}

static const BadInputCase CASES[] = {
    {"transformer", "{tiny} --data {missing} --out {out}", 1, "{missing}", "no such file"},
    {"transformer", "{tiny} --data {empty} --out {out}", 1, "{empty}", "empty"},
    {"transformer", "{tiny} --data {directory} --out {out}", 1, "{directory}", "is a directory"},
    {"transformer", "{tiny} --data {garbage} --out {out}", 1, "{garbage}", "binary"},
    {"transformer", "{tiny} --data {oversized} --out {out}", 1, "{oversized}", "over the limit"},
    CHECKPOINT_ROWS("transformer", "{seq2seq-checkpoint}"),
    OPTION_ROWS("transformer", "{tiny}"),

    {"seq2seq", "{tiny} --data {missing} --out {out}", 1, "{missing}", "no such file"},
    {"seq2seq", "{tiny} --data {empty} --out {out}", 1, "{empty}", "empty file"},
    {"seq2seq", "{tiny} --data {directory} --out {out}", 1, "{directory}", "is a directory"},
    {"seq2seq", "{tiny} --data {garbage} --out {out}", 1, "{garbage}", "binary file"},
    {"seq2seq", "{tiny} --data {oversized} --out {out}", 1, "{oversized}", "over the limit"},
    {"seq2seq", "{tiny} --val-data {empty} --out {out}", 2, "--val-data", "needs --data"},
    {"seq2seq", "export --task reverse --data {empty} --out {out}", 2, "--data", "built-in --task"},
    {"seq2seq", "export --task reverse --min-length 9 --max-length 3 --out {out}", 1, "--min-length", "larger"},
    {"seq2seq", "export --task reverse --out {empty}/run", 1, "{empty}", "not a directory"},
    CHECKPOINT_ROWS("seq2seq", "{transformer-checkpoint}"),
    OPTION_ROWS("seq2seq", "{tiny}"),

    {"recursive_nn", "{tiny} --train {missing} --out {out}", 1, "{missing}", "no such file"},
    {"recursive_nn", "{tiny} --train {empty} --out {out}", 1, "{empty}", "the input is empty"},
    {"recursive_nn", "{tiny} --train {directory} --out {out}", 1, "{directory}", "is a directory"},
    {"recursive_nn", "{tiny} --train {garbage} --out {out}", 1, "{garbage}", "binary data"},
    {"recursive_nn", "{tiny} --train {oversized} --out {out}", 1, "{oversized}", "over the limit"},
    CHECKPOINT_ROWS("recursive_nn", "{transformer-checkpoint}"),
    OPTION_ROWS("recursive_nn", "{tiny}"),
    /* a training option given to predict is refused, not ignored */
    {"recursive_nn", "predict --steps 5 --out {out}", 2, "--steps", "unknown option"},

    {"autoencoder", "{tiny} --data {missing} --out {out}", 1, "{missing}", "No such file"},
    {"autoencoder", "{tiny} --data {empty} --out {out}", 1, "{empty}", "empty file"},
    {"autoencoder", "{tiny} --data {directory} --out {out}", 1, "{directory}", "is a directory"},
    {"autoencoder", "{tiny} --data {garbage} --out {out}", 1, "{garbage}", "not an IDX image file"},
    {"autoencoder", "{tiny} --data {oversized} --out {out}", 1, "{oversized}", "over the limit"},
    CHECKPOINT_ROWS("autoencoder", "{transformer-checkpoint}"),
    OPTION_ROWS("autoencoder", "{tiny}"),
    /* an option a command does not read is refused, not ignored */
    {"autoencoder", "{tiny} --samples 4 --out {out}", 2, "--samples", "unknown option"},
    {"autoencoder", "sample --steps 5 --out {out}", 2, "--steps", "unknown option"},
    {"autoencoder", "encode --plot-term none --out {out}", 2, "--plot-term", "unknown option"},
    {"autoencoder", "bench --out {out}", 2, "--out", "unknown option"},

    OPTION_ROWS("spiral", "train --plot-term none --quiet"),
};
enum { CASE_COUNT = sizeof CASES / sizeof CASES[0] };

/* ---- The bad inputs, made once for all rows ---------------------------------------- */

static char inputs_dir[512];

static void write_file(const char *name, const unsigned char *bytes, size_t size) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", inputs_dir, name);
    FILE *file = fopen(path, "wb");
    ck_assert_msg(file != NULL && fwrite(bytes, 1, size, file) == size && fclose(file) == 0,
                  "cannot write %s", path);
}

/* A tiny real run of `program`, for its checkpoint. */
static void train_tiny(const char *program) {
    for (int a = 0; a < TINY_ARCHITECTURE_COUNT; a++) {
        if (strcmp(TINY_ARCHITECTURES[a].program, program) != 0) continue;
        char arguments[2048];
        snprintf(arguments, sizeof arguments, "%s --steps 2 --out %s/%s-run", TINY_ARCHITECTURES[a].tiny,
                 inputs_dir, program);
        ProgramResult result;
        program_run(inputs_dir, program, arguments, &result);
        ck_assert_msg(result.status == 0, "%s: %s", arguments, result.err);
    }
}

static void make_inputs(void) {
    snprintf(inputs_dir, sizeof inputs_dir, "%s", test_temp_dir("bad-inputs"));
    write_file("empty.txt", (const unsigned char *)"", 0);
    char path[700];
    snprintf(path, sizeof path, "%s/directory", inputs_dir);
    ck_assert(mkdir(path, 0755) == 0);
    unsigned char garbage[4096];
    Rng rng;
    rng_seed(&rng, 8, 8);
    for (size_t i = 0; i < sizeof garbage; i++) garbage[i] = (unsigned char)rng_below(&rng, 256);
    garbage[7] = 0xff; /* a header length above 2^56 */
    garbage[100] = 0;  /* a NUL byte: binary, not text */
    write_file("garbage.bin", garbage, sizeof garbage);
    snprintf(path, sizeof path, "%s/oversized.csv", inputs_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_msg(fd >= 0 && ftruncate(fd, ((off_t)2 << 30) + 1) == 0 && close(fd) == 0,
                  "cannot make the sparse file %s", path);
    train_tiny("transformer");
    train_tiny("seq2seq");
}

static void remove_inputs(void) { test_remove_tree(inputs_dir); }

/* ---- One row ------------------------------------------------------------------------ */

/* `text` with every {placeholder} replaced, for row `index`. */
static void expand(const char *text, const BadInputCase *c, int index, char *out, size_t size) {
    char tiny[2048] = "train";
    for (int a = 0; a < TINY_ARCHITECTURE_COUNT; a++)
        if (strcmp(TINY_ARCHITECTURES[a].program, c->program) == 0)
            snprintf(tiny, sizeof tiny, "%s", TINY_ARCHITECTURES[a].tiny);
    char values[9][2048];
    const char *names[9] = {"{missing}", "{empty}", "{directory}", "{garbage}", "{oversized}",
                            "{transformer-checkpoint}", "{seq2seq-checkpoint}", "{out}", "{tiny}"};
    snprintf(values[0], sizeof values[0], "%s/missing.txt", inputs_dir);
    snprintf(values[1], sizeof values[1], "%s/empty.txt", inputs_dir);
    snprintf(values[2], sizeof values[2], "%s/directory", inputs_dir);
    snprintf(values[3], sizeof values[3], "%s/garbage.bin", inputs_dir);
    snprintf(values[4], sizeof values[4], "%s/oversized.csv", inputs_dir);
    snprintf(values[5], sizeof values[5], "%s/transformer-run/model.safetensors", inputs_dir);
    snprintf(values[6], sizeof values[6], "%s/seq2seq-run/model.safetensors", inputs_dir);
    snprintf(values[7], sizeof values[7], "%s/out-%d", inputs_dir, index);
    snprintf(values[8], sizeof values[8], "%s", tiny);
    size_t used = 0;
    out[0] = '\0';
    for (const char *p = text; *p != '\0' && used + 1 < size;) {
        int found = -1;
        for (int k = 0; k < 9 && found < 0; k++)
            if (strncmp(p, names[k], strlen(names[k])) == 0) found = k;
        if (found < 0) {
            out[used++] = *p++;
            out[used] = '\0';
            continue;
        }
        used += (size_t)snprintf(out + used, size - used, "%s", values[found]);
        if (used >= size) used = size - 1;
        p += strlen(names[found]);
    }
}

/* The name of a .tmp file left in the inputs directory, or NULL. */
static const char *leftover_tmp(void) {
    static char name[256];
    DIR *dir = opendir(inputs_dir);
    const char *found = NULL;
    for (struct dirent *e; dir != NULL && found == NULL && (e = readdir(dir)) != NULL;) {
        size_t length = strlen(e->d_name);
        if (length > 4 && strcmp(e->d_name + length - 4, ".tmp") == 0)
            found = strncpy(name, e->d_name, sizeof name - 1);
    }
    if (dir != NULL) closedir(dir);
    return found;
}

START_TEST(test_bad_input_row) {
    const BadInputCase *c = &CASES[_i];
    char arguments[4096], names[2048], says[512], out[2048], row[4400];
    expand(c->arguments, c, _i, arguments, sizeof arguments);
    expand(c->names, c, _i, names, sizeof names);
    expand(c->says, c, _i, says, sizeof says);
    expand("{out}", c, _i, out, sizeof out);
    snprintf(row, sizeof row, "row %d: %s %s", _i, c->program, c->arguments);
    char log_dir[600];
    snprintf(log_dir, sizeof log_dir, "%s/log-%d", inputs_dir, _i);
    ck_assert(mkdir(log_dir, 0755) == 0);
    ProgramResult r;
    program_run(log_dir, c->program, arguments, &r);
    ck_assert_msg(r.signal == 0, "%s: killed by signal %d; stderr: %s", row, r.signal, r.err);
    ck_assert_msg(r.status == c->status, "%s: exit status %d, expected %d; stderr: %s", row, r.status,
                  c->status, r.err);
    ck_assert_msg(strstr(r.err, names) != NULL && strstr(r.err, says) != NULL,
                  "%s: stderr should name \"%s\" and say \"%s\"; it is: %s", row, names, says, r.err);
    ck_assert_msg(strstr(r.err, "Sanitizer") == NULL && strstr(r.err, "runtime error") == NULL,
                  "%s: sanitizer report: %s", row, r.err);
    struct stat info;
    ck_assert_msg(stat(out, &info) != 0, "%s: left its --out directory %s behind", row, out);
    const char *tmp = leftover_tmp();
    ck_assert_msg(tmp == NULL, "%s: left %s behind", row, tmp);
}
END_TEST

Suite *bad_inputs_suite(void) {
    Suite *s = suite_create("bad_inputs");
    TCase *matrix = tcase_create("matrix");
    tcase_set_timeout(matrix, 60);
    tcase_add_unchecked_fixture(matrix, make_inputs, remove_inputs);
    tcase_add_loop_test(matrix, test_bad_input_row, 0, CASE_COUNT);
    suite_add_tcase(s, matrix);
    return s;
}
