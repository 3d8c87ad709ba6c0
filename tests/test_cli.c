/* tests/test_cli.c: option parsing, --help, config.txt, progress line and
 * metrics.csv (common/cli.c).
 *
 * Every parse test builds argv as a program would see it:
 *   {"tinyzoo", "train", "--steps", "10", ...}, parsed from index 2.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "test_suites.h"

/* ---- A small table with every kind of option ---------------------------------- */

typedef struct {
    int steps;
    long big;
    float lr;
    const char *data;
    bool resume;
    int cell;
    int offset; /* unchecked range: any int */
} TestValues;

enum { TEST_OPTION_COUNT = 7 };

static void test_table(TestValues *v, Option *options) {
    *v = (TestValues){.steps = 100, .big = 5, .lr = 0.001f, .data = NULL, .resume = false,
                      .cell = 0, .offset = 0};
    const Option table[TEST_OPTION_COUNT] = {
        {"steps", OPTION_INT, &v->steps, "training steps", NULL, 1, 100000000},
        {"big", OPTION_LONG, &v->big, "a long", NULL, 0, 1e12},
        {"lr", OPTION_FLOAT, &v->lr, "learning rate", NULL, 1e-6, 1},
        {"data", OPTION_STRING, &v->data, "data file", NULL, 0, 0},
        {"resume", OPTION_FLAG, &v->resume, "resume training", NULL, 0, 0},
        {"cell", OPTION_CHOICE, &v->cell, "recurrent cell", "gru|lstm|rnn", 0, 0},
        {"offset", OPTION_INT, &v->offset, "any integer", NULL, 0, 0},
    };
    memcpy(options, table, sizeof table);
}

/* Parses the NULL-terminated argument list after "tinyzoo train". */
static bool parse_args(TestValues *v, Error *err, bool *help, const char *const *args) {
    Option options[TEST_OPTION_COUNT];
    test_table(v, options);
    char *argv[32] = {"tinyzoo", "train"};
    int argc = 2;
    while (args[argc - 2] != NULL) {
        argv[argc] = (char *)args[argc - 2];
        argc++;
    }
    err->message[0] = '\0';
    return options_parse(argc, argv, 2, options, TEST_OPTION_COUNT, help, err);
}

/* Asserts that parsing fails with a message containing each of the given
 * fragments. */
static void assert_rejected(const char *const *args, const char *fragment1,
                            const char *fragment2) {
    TestValues v;
    Error err;
    bool help;
    ck_assert_msg(!parse_args(&v, &err, &help, args), "accepted %s %s", args[0],
                  args[1] != NULL ? args[1] : "");
    ck_assert_msg(strstr(err.message, fragment1) != NULL, "message '%s' lacks '%s'",
                  err.message, fragment1);
    if (fragment2 != NULL)
        ck_assert_msg(strstr(err.message, fragment2) != NULL, "message '%s' lacks '%s'",
                      err.message, fragment2);
}

static char *read_whole_file(const char *path) {
    FILE *file = fopen(path, "rb");
    ck_assert_msg(file != NULL, "cannot open %s", path);
    static char buffer[65536];
    size_t size = fread(buffer, 1, sizeof buffer - 1, file);
    buffer[size] = '\0';
    fclose(file);
    return buffer;
}

/* ---- Parsing good values ------------------------------------------------------ */

START_TEST(test_cli_parses_every_kind_space_form) {
    TestValues v;
    Error err;
    bool help;
    const char *args[] = {"--steps", "250",      "--big",  "123456789012", "--lr", "3e-4",
                          "--data",  "in.txt",   "--resume", "--cell",     "lstm", "--offset",
                          "-7",      NULL};
    ck_assert_msg(parse_args(&v, &err, &help, args), "%s", err.message);
    ck_assert(!help);
    ck_assert_int_eq(v.steps, 250);
    ck_assert_int_eq(v.big, 123456789012L);
    ck_assert_float_eq_tol(v.lr, 3e-4f, 1e-9f);
    ck_assert_str_eq(v.data, "in.txt");
    ck_assert(v.resume);
    ck_assert_int_eq(v.cell, 1);
    ck_assert_int_eq(v.offset, -7);
}
END_TEST

START_TEST(test_cli_parses_equals_form) {
    TestValues v;
    Error err;
    bool help;
    const char *args[] = {"--steps=42", "--lr=0.5", "--data=a=b.txt", "--cell=rnn",
                          "--data=last.txt", NULL};
    ck_assert_msg(parse_args(&v, &err, &help, args), "%s", err.message);
    ck_assert_int_eq(v.steps, 42);
    ck_assert_float_eq(v.lr, 0.5f);
    ck_assert_int_eq(v.cell, 2);
    /* A repeated option: the last one wins. */
    ck_assert_str_eq(v.data, "last.txt");
}
END_TEST

START_TEST(test_cli_defaults_stay_when_not_given) {
    TestValues v;
    Error err;
    bool help;
    const char *args[] = {NULL};
    ck_assert(parse_args(&v, &err, &help, args));
    ck_assert_int_eq(v.steps, 100);
    ck_assert(!v.resume);
    ck_assert_ptr_null(v.data);
}
END_TEST

/* options_select keeps the named options in the table's order, and a
 * command parsing with the selection rejects the others as unknown. */
START_TEST(test_cli_select_keeps_named_options_in_table_order) {
    TestValues v;
    Option options[TEST_OPTION_COUNT], selected[TEST_OPTION_COUNT];
    test_table(&v, options);
    const char *const names[] = {"cell", "steps", NULL};
    int count = options_select(options, TEST_OPTION_COUNT, names, selected);
    ck_assert_int_eq(count, 2);
    ck_assert_str_eq(selected[0].name, "steps");
    ck_assert_str_eq(selected[1].name, "cell");
    char *argv[] = {"prog", "cmd", "--cell", "lstm", "--steps", "7", NULL};
    bool help;
    Error err;
    ck_assert_msg(options_parse(6, argv, 2, selected, count, &help, &err), "%s", err.message);
    ck_assert_int_eq(v.steps, 7);
    ck_assert_int_eq(v.cell, 1);
    char *rejected[] = {"prog", "cmd", "--lr", "0.1", NULL};
    ck_assert(!options_parse(4, rejected, 2, selected, count, &help, &err));
    ck_assert_msg(strstr(err.message, "unknown option '--lr'") != NULL, "%s", err.message);
}
END_TEST

START_TEST(test_cli_range_edges_are_inclusive) {
    TestValues v;
    Error err;
    bool help;
    const char *low[] = {"--steps", "1", "--lr", "1e-6", NULL};
    ck_assert_msg(parse_args(&v, &err, &help, low), "%s", err.message);
    ck_assert_int_eq(v.steps, 1);
    const char *high[] = {"--steps", "100000000", "--lr", "1", NULL};
    ck_assert_msg(parse_args(&v, &err, &help, high), "%s", err.message);
    ck_assert_int_eq(v.steps, 100000000);
}
END_TEST

START_TEST(test_cli_help_is_reported) {
    TestValues v;
    Error err;
    bool help;
    /* --help wins even after a bad value. */
    const char *args[] = {"--steps", "5", "--help", "--steps", "abc", NULL};
    ck_assert(parse_args(&v, &err, &help, args));
    ck_assert(help);
    const char *short_form[] = {"-h", NULL};
    ck_assert(parse_args(&v, &err, &help, short_form));
    ck_assert(help);
}
END_TEST

/* ---- Rejecting bad values ------------------------------------------------------ */

START_TEST(test_cli_rejects_bad_integers) {
    const char *junk[] = {"--steps", "12abc", NULL};
    assert_rejected(junk, "--steps: expected an integer from 1 to 100000000, got '12abc'", NULL);
    const char *word[] = {"--steps", "abc", NULL};
    assert_rejected(word, "--steps", "'abc'");
    const char *empty[] = {"--steps=", NULL};
    assert_rejected(empty, "--steps", "got ''");
    const char *fraction[] = {"--steps", "1.5", NULL};
    assert_rejected(fraction, "--steps", "'1.5'");
    const char *spaced[] = {"--steps", " 5", NULL};
    assert_rejected(spaced, "--steps", NULL);
    const char *overflow[] = {"--big", "99999999999999999999999", NULL};
    assert_rejected(overflow, "--big", "too large");
    /* Fits a long but not an int: must not wrap around. */
    const char *int_overflow[] = {"--offset", "3000000000", NULL};
    assert_rejected(int_overflow, "--offset: expected an integer", "3000000000");
}
END_TEST

START_TEST(test_cli_rejects_out_of_range) {
    const char *zero[] = {"--steps", "0", NULL};
    assert_rejected(zero, "--steps: expected an integer from 1 to 100000000, got '0'", NULL);
    const char *above[] = {"--steps", "100000001", NULL};
    assert_rejected(above, "--steps", "100000001");
    const char *negative[] = {"--big", "-1", NULL};
    assert_rejected(negative, "--big", "'-1'");
    const char *lr[] = {"--lr", "2", NULL};
    assert_rejected(lr, "--lr: expected a number from 1e-06 to 1, got '2'", NULL);
    const char *lr_zero[] = {"--lr=0", NULL};
    assert_rejected(lr_zero, "--lr", "'0'");
}
END_TEST

START_TEST(test_cli_rejects_bad_floats) {
    const char *nan_value[] = {"--lr", "nan", NULL};
    assert_rejected(nan_value, "--lr", "'nan'");
    const char *inf_value[] = {"--lr", "inf", NULL};
    assert_rejected(inf_value, "--lr", "'inf'");
    const char *huge[] = {"--lr", "1e50", NULL};
    assert_rejected(huge, "--lr", "'1e50'");
    const char *junk[] = {"--lr", "0.1x", NULL};
    assert_rejected(junk, "--lr", "'0.1x'");
    const char *empty[] = {"--lr=", NULL};
    assert_rejected(empty, "--lr", "got ''");
}
END_TEST

START_TEST(test_cli_missing_value) {
    const char *at_end[] = {"--steps", NULL};
    assert_rejected(at_end, "--steps", "expected an integer");
    /* The next option is not taken as the value. */
    const char *next_option[] = {"--data", "--resume", NULL};
    assert_rejected(next_option, "--data", "expected a value");
    const char *empty_string[] = {"--data=", NULL};
    assert_rejected(empty_string, "--data", "''");
}
END_TEST

START_TEST(test_cli_choices) {
    const char *bad[] = {"--cell", "transformer", NULL};
    assert_rejected(bad, "--cell: expected one of gru|lstm|rnn, got 'transformer'", NULL);
    /* A prefix of a choice is not the choice. */
    const char *prefix[] = {"--cell", "gr", NULL};
    assert_rejected(prefix, "--cell", "'gr'");
    TestValues v;
    Error err;
    bool help;
    const char *good[] = {"--cell", "gru", NULL};
    v.cell = 2;
    ck_assert(parse_args(&v, &err, &help, good));
    ck_assert_int_eq(v.cell, 0);
}
END_TEST

START_TEST(test_cli_flags_take_no_value) {
    const char *with_value[] = {"--resume=yes", NULL};
    assert_rejected(with_value, "--resume", "takes no value");
    /* A word after a flag is a stray positional argument, not its value. */
    const char *positional[] = {"--resume", "yes", NULL};
    assert_rejected(positional, "unexpected argument 'yes'", NULL);
}
END_TEST

START_TEST(test_cli_unknown_option_suggests) {
    const char *typo[] = {"--stpes", "10", NULL};
    assert_rejected(typo, "unknown option '--stpes'", "did you mean '--steps'?");
    const char *missing_letter[] = {"--resme", NULL};
    assert_rejected(missing_letter, "unknown option '--resme'", "'--resume'");
    const char *single_dash[] = {"-steps", "10", NULL};
    assert_rejected(single_dash, "unknown option '-steps'", "'--steps'");
    const char *equals[] = {"--dta=x", NULL};
    assert_rejected(equals, "unknown option '--dta=x'", "'--data'");
    /* Nothing close: no suggestion. */
    TestValues v;
    Error err;
    bool help;
    const char *far[] = {"--temperature", "1", NULL};
    ck_assert(!parse_args(&v, &err, &help, far));
    ck_assert_str_eq(err.message, "unknown option '--temperature'");
    const char *short_far[] = {"--xy", NULL};
    ck_assert(!parse_args(&v, &err, &help, short_far));
    ck_assert_ptr_null(strstr(err.message, "did you mean"));
}
END_TEST

START_TEST(test_cli_rejects_positional) {
    const char *args[] = {"--steps", "10", "extra.txt", NULL};
    assert_rejected(args, "unexpected argument 'extra.txt'", NULL);
    const char *dash[] = {"-", NULL};
    assert_rejected(dash, "unexpected argument '-'", NULL);
}
END_TEST

/* ---- parse_or_exit: exit statuses and messages ---------------------------------- */

/* Runs options_parse_or_exit on argv in a child process (it exits), with
 * stdout and stderr sent to files in `dir`; returns the exit status.  The
 * child never uses ck_assert, so this also works under CK_FORK=no. */
static int run_parse_or_exit(const char *dir, int argc, char **argv) {
    char out_path[600], err_path[600];
    snprintf(out_path, sizeof out_path, "%s/stdout.txt", dir);
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", dir);
    fflush(stdout);
    fflush(stderr);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        if (freopen(out_path, "w", stdout) == NULL || freopen(err_path, "w", stderr) == NULL)
            _exit(99);
        TestValues v;
        Option options[TEST_OPTION_COUNT];
        test_table(&v, options);
        options_parse_or_exit(argc, argv, 2, options, TEST_OPTION_COUNT, "seq2seq train");
        _exit(100); /* returned: the caller sees 100, not 0 or 2 */
    }
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

START_TEST(test_cli_parse_or_exit_usage_error) {
    const char *dir = test_temp_dir("cli");
    char *bad_value[] = {"bin/seq2seq", "train", "--steps", "abc", NULL};
    ck_assert_int_eq(run_parse_or_exit(dir, 4, bad_value), EXIT_USAGE_ERROR);
    char path[600];
    snprintf(path, sizeof path, "%s/stderr.txt", dir);
    ck_assert_str_eq(read_whole_file(path), "seq2seq train: --steps: expected an integer from "
                                            "1 to 100000000, got 'abc' (see --help)\n");
    /* The program name is argv[0] without its directory. */
    char *typo[] = {"/usr/local/bin/seq2seq", "train", "--stpes", "3", NULL};
    ck_assert_int_eq(run_parse_or_exit(dir, 4, typo), EXIT_USAGE_ERROR);
    ck_assert_str_eq(read_whole_file(path), "seq2seq train: unknown option '--stpes'; did you "
                                            "mean '--steps'? (see --help)\n");
    snprintf(path, sizeof path, "%s/stdout.txt", dir);
    ck_assert_str_eq(read_whole_file(path), ""); /* errors go to stderr only */
}
END_TEST

START_TEST(test_cli_parse_or_exit_help) {
    const char *dir = test_temp_dir("cli");
    char *argv[] = {"bin/seq2seq", "train", "--help", NULL};
    ck_assert_int_eq(run_parse_or_exit(dir, 3, argv), EXIT_SUCCESS);
    char path[600];
    snprintf(path, sizeof path, "%s/stdout.txt", dir);
    const char *help = read_whole_file(path);
    ck_assert_msg(strncmp(help, "usage: seq2seq train\n", 21) == 0, "%s", help);
    ck_assert_ptr_nonnull(strstr(help, "--steps INT"));
    /* Good options: parse_or_exit returns to the caller. */
    char *good[] = {"bin/seq2seq", "train", "--steps", "5", NULL};
    ck_assert_int_eq(run_parse_or_exit(dir, 4, good), 100);
}
END_TEST

/* ---- Help text, value strings, config.txt --------------------------------------- */

START_TEST(test_cli_value_strings) {
    TestValues v;
    Option options[TEST_OPTION_COUNT];
    test_table(&v, options);
    char text[64];
    const char *expected[TEST_OPTION_COUNT] = {"100", "5", "0.001", "(none)", "false", "gru",
                                               "0"};
    for (int i = 0; i < TEST_OPTION_COUNT; i++) {
        option_value_string(&options[i], text, sizeof text);
        ck_assert_str_eq(text, expected[i]);
    }
    v.cell = 2;
    v.resume = true;
    v.data = "x.txt";
    option_value_string(&options[5], text, sizeof text);
    ck_assert_str_eq(text, "rnn");
    option_value_string(&options[4], text, sizeof text);
    ck_assert_str_eq(text, "true");
    option_value_string(&options[3], text, sizeof text);
    ck_assert_str_eq(text, "x.txt");
}
END_TEST

START_TEST(test_cli_help_lists_every_option_with_default) {
    TestValues v;
    Option options[TEST_OPTION_COUNT];
    test_table(&v, options);
    v.data = "corpus.txt";
    const char *dir = test_temp_dir("cli");
    char path[600];
    snprintf(path, sizeof path, "%s/help.txt", dir);
    FILE *out = fopen(path, "w");
    ck_assert_ptr_nonnull(out);
    options_print_help(out, "seq2seq train [options]", options, TEST_OPTION_COUNT);
    fclose(out);
    const char *help = read_whole_file(path);
    ck_assert_msg(strncmp(help, "usage: seq2seq train [options]\n", 31) == 0, "%s", help);
    const char *lines[] = {"--steps INT", "training steps (default: 100)",
                           "--big INT", "(default: 5)",
                           "--lr FLOAT", "learning rate (default: 0.001)",
                           "--data DATA", "data file (default: corpus.txt)",
                           "--resume ", "resume training (default: false)",
                           "--cell gru|lstm|rnn", "recurrent cell (default: gru)",
                           "--offset INT", "--help"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        ck_assert_msg(strstr(help, lines[i]) != NULL, "help lacks '%s':\n%s", lines[i], help);
    /* Aligned: every help text starts in the same column. */
    const char *steps = strstr(help, "  --steps INT");
    const char *lr = strstr(help, "  --lr FLOAT");
    ck_assert_int_eq(strstr(steps, "training") - steps, strstr(lr, "learning") - lr);
}
END_TEST

START_TEST(test_cli_write_config) {
    TestValues v;
    Option options[TEST_OPTION_COUNT];
    test_table(&v, options);
    v.steps = 7;
    v.lr = 0.25f;
    v.resume = true;
    v.cell = 1;
    const char *dir = test_temp_dir("cli");
    char path[600], temp[620];
    snprintf(path, sizeof path, "%s/config.txt", dir);
    snprintf(temp, sizeof temp, "%s.tmp", path);
    Error err;
    ck_assert_msg(options_write_config(path, options, TEST_OPTION_COUNT, &err), "%s",
                  err.message);
    ck_assert_str_eq(read_whole_file(path), "steps = 7\nbig = 5\nlr = 0.25\ndata = (none)\n"
                                            "resume = true\ncell = lstm\noffset = 0\n");
    ck_assert_int_ne(access(temp, F_OK), 0); /* no temporary left behind */
    /* Overwriting replaces the whole file. */
    ck_assert(options_write_config(path, options, 1, &err));
    ck_assert_str_eq(read_whole_file(path), "steps = 7\n");
    /* An unwritable place is an Error naming the path, not a crash. */
    snprintf(path, sizeof path, "%s/no/such/dir/config.txt", dir);
    ck_assert(!options_write_config(path, options, TEST_OPTION_COUNT, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "no/such/dir/config.txt"));
}
END_TEST

START_TEST(test_cli_common_options_table) {
    CommonOptions common = {.task = "copy", .steps = 1000, .batch = 32, .lr = 1e-3f,
                            .seed = 1, .threads = 2, .plot_term = 0};
    Option options[COMMON_OPTION_COUNT];
    common_options_table(&common, options);
    const char *names[COMMON_OPTION_COUNT] = {
        "task", "data", "input", "out", "checkpoint", "checkpoint-every", "steps", "batch",
        "lr", "seed", "threads", "resume", "plot-term", "quiet", "check-numerics"};
    for (int i = 0; i < COMMON_OPTION_COUNT; i++) {
        ck_assert_str_eq(options[i].name, names[i]);
        ck_assert_msg(options[i].help != NULL && strlen(options[i].help) > 5, "%s", names[i]);
    }
    char *argv[] = {"prog",       "train", "--steps",     "50",     "--plot-term", "dumb",
                    "--threads",  "4",     "--quiet",     "--out",  "runs/x",      "--lr",
                    "0.01",       "--seed", "0",          "--checkpoint-every", "0", NULL};
    bool help;
    Error err;
    ck_assert_msg(options_parse(17, argv, 2, options, COMMON_OPTION_COUNT, &help, &err), "%s",
                  err.message);
    ck_assert_int_eq(common.steps, 50);
    ck_assert_int_eq(common.plot_term, 1); /* PLOT_TERM_DUMB */
    ck_assert_int_eq(common.threads, 4);
    ck_assert(common.quiet);
    ck_assert_str_eq(common.out, "runs/x");
    ck_assert_float_eq(common.lr, 0.01f);
    ck_assert_str_eq(common.task, "copy");
    /* Ranges: steps >= 1, batch >= 1, lr > 0, threads 1..256, seed >= 0. */
    const char *bad[][2] = {{"--steps", "0"},   {"--batch", "0"},   {"--lr", "0"},
                            {"--lr", "-1"},     {"--threads", "0"}, {"--threads", "257"},
                            {"--seed", "-1"},   {"--checkpoint-every", "-5"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *args[] = {"prog", "train", (char *)bad[i][0], (char *)bad[i][1], NULL};
        ck_assert_msg(!options_parse(4, args, 2, options, COMMON_OPTION_COUNT, &help, &err),
                      "accepted %s %s", bad[i][0], bad[i][1]);
        ck_assert_ptr_nonnull(strstr(err.message, bad[i][0]));
    }
}
END_TEST

/* ---- Progress ----------------------------------------------------------------- */

/* Runs a fake training loop of `steps` steps with stderr sent to a file, and
 * returns what was printed. */
static const char *progress_output(long first, long steps, bool quiet, bool interactive) {
    const char *dir = test_temp_dir("cli");
    static char path[600];
    snprintf(path, sizeof path, "%s/progress.txt", dir);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    ck_assert(freopen(path, "w", stderr) != NULL);
    Progress progress;
    progress_start(&progress, first, steps, "tok/s", quiet);
    progress.interactive = interactive; /* a test's stderr is never a terminal */
    for (long step = first + 1; step <= steps; step++)
        progress_update(&progress, step, 2.0f, 512.0);
    progress_finish(&progress);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    return read_whole_file(path);
}

static int count_char(const char *text, char wanted) {
    int count = 0;
    for (; *text != '\0'; text++) count += *text == wanted;
    return count;
}

START_TEST(test_cli_progress_plain_every_ten_percent) {
    const char *output = progress_output(0, 100, false, false);
    ck_assert_int_eq(count_char(output, '\n'), 10);
    ck_assert_ptr_null(strchr(output, '\r'));
    ck_assert_msg(strncmp(output, "step 10/100  loss 2  avg 2  ", 28) == 0, "%s", output);
    ck_assert_ptr_nonnull(strstr(output, "step 50/100"));
    ck_assert_ptr_nonnull(strstr(output, "step 100/100"));
    ck_assert_ptr_nonnull(strstr(output, "tok/s"));
    ck_assert_ptr_nonnull(strstr(output, "elapsed"));
    ck_assert_ptr_nonnull(strstr(output, "left"));
    /* A resumed run starting at 45% reports 50%, 60% ... 100%. */
    const char *resumed = progress_output(45, 100, false, false);
    ck_assert_int_eq(count_char(resumed, '\n'), 6);
    ck_assert_msg(strncmp(resumed, "step 50/100", 11) == 0, "%s", resumed);
}
END_TEST

START_TEST(test_cli_progress_quiet_prints_nothing) {
    ck_assert_str_eq(progress_output(0, 50, true, false), "");
    ck_assert_str_eq(progress_output(0, 50, true, true), "");
}
END_TEST

START_TEST(test_cli_progress_interactive_rewrites_one_line) {
    const char *output = progress_output(0, 1000, false, true);
    /* Rate-limited: a fast loop draws far fewer than 1000 lines, at least
     * the first and the last, and ends with one newline. */
    int redraws = count_char(output, '\r');
    ck_assert_int_ge(redraws, 2);
    ck_assert_int_lt(redraws, 100);
    ck_assert_int_eq(count_char(output, '\n'), 1);
    ck_assert_ptr_nonnull(strstr(output, "\033[K"));
    ck_assert_ptr_nonnull(strstr(output, "\rstep 1000/1000  loss 2"));
}
END_TEST

START_TEST(test_cli_progress_smoothed_loss) {
    Progress progress;
    progress_start(&progress, 0, 10, "seq/s", true);
    progress_update(&progress, 1, 1.0f, 1);
    ck_assert_double_eq_tol(progress.smoothed_loss, 1.0, 1e-12);
    progress_update(&progress, 2, 2.0f, 1);
    ck_assert_double_eq_tol(progress.smoothed_loss, 1.1, 1e-12); /* 0.9*1 + 0.1*2 */
    progress_update(&progress, 3, 0.0f, 1);
    ck_assert_double_eq_tol(progress.smoothed_loss, 0.99, 1e-12);
    ck_assert_double_eq(progress.items_done, 3.0);
}
END_TEST

/* ---- metrics.csv -------------------------------------------------------------- */

START_TEST(test_cli_metrics_header_rows_and_append) {
    const char *dir = test_temp_dir("cli");
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    MetricsLog log;
    Error err;
    ck_assert_msg(metrics_open(&log, path, "step,loss,val_loss", false, &err), "%s",
                  err.message);
    ck_assert_int_eq(log.columns, 3);
    double row1[3] = {1, 2.5, 1.0 / 3.0};
    metrics_write(&log, row1, 3);
    /* Flushed at once: readable before the log is closed. */
    ck_assert_str_eq(read_whole_file(path), "step,loss,val_loss\n1,2.5,0.333333333\n");
    metrics_close(&log);
    /* Append keeps the old rows and writes no second header. */
    ck_assert(metrics_open(&log, path, "step,loss,val_loss", true, &err));
    double row2[3] = {2, 1e-12, 123456789};
    metrics_write(&log, row2, 3);
    metrics_close(&log);
    ck_assert_str_eq(read_whole_file(path),
                     "step,loss,val_loss\n1,2.5,0.333333333\n2,1e-12,123456789\n");
    /* Without append the file starts over. */
    ck_assert(metrics_open(&log, path, "step,loss,val_loss", false, &err));
    metrics_close(&log);
    ck_assert_str_eq(read_whole_file(path), "step,loss,val_loss\n");
}
END_TEST

START_TEST(test_cli_metrics_append_to_new_or_empty_file_writes_header) {
    const char *dir = test_temp_dir("cli");
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    MetricsLog log;
    Error err;
    ck_assert(metrics_open(&log, path, "step,loss", true, &err));
    metrics_close(&log);
    ck_assert_str_eq(read_whole_file(path), "step,loss\n");
    FILE *empty = fopen(path, "w");
    fclose(empty);
    ck_assert(metrics_open(&log, path, "step,loss", true, &err));
    metrics_close(&log);
    ck_assert_str_eq(read_whole_file(path), "step,loss\n");
}
END_TEST

/* A row that cannot be written (here to /dev/full, a disk that is always
 * full) stops the program with exit 1 and a message naming the file, rather
 * than losing rows without a word. */
START_TEST(test_cli_metrics_full_disk_stops) {
    if (access("/dev/full", W_OK) != 0) return; /* not Linux: nothing to write to */
    MetricsLog log;
    Error err;
    ck_assert(!metrics_open(&log, "/dev/full", "step,loss", false, &err));
    ck_assert_msg(strstr(err.message, "/dev/full: cannot write") != NULL, "%s", err.message);
    int pipe_ends[2];
    ck_assert_int_eq(pipe(pipe_ends), 0);
    fflush(NULL);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) { /* a log whose header went through, then a full disk */
        dup2(pipe_ends[1], STDERR_FILENO);
        log = (MetricsLog){.file = fopen("/dev/full", "w"), .columns = 2, .path = "/dev/full"};
        metrics_write(&log, (double[]){1, 0.5}, 2);
        _exit(100); /* reached only if the write did not stop */
    }
    close(pipe_ends[1]);
    char text[512] = "";
    ssize_t got = read(pipe_ends[0], text, sizeof text - 1);
    text[got > 0 ? got : 0] = '\0';
    close(pipe_ends[0]);
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == EXIT_RUNTIME_ERROR);
    ck_assert_msg(strstr(text, "/dev/full: cannot write a row: No space left on device"), "%s", text);
}
END_TEST

/* Before a resume from step 2: rows after it go (a killed run logged them),
 * and so does a last row cut short; a missing file is fine. */
START_TEST(test_cli_metrics_truncate_to_checkpoint_step) {
    const char *dir = test_temp_dir("cli");
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    Error err;
    ck_assert_msg(metrics_truncate(path, 2, &err), "%s", err.message);
    ck_assert_int_ne(access(path, F_OK), 0);
    FILE *file = fopen(path, "w");
    fputs("step,loss\n1,0.5\n2,0.25\n3,0.125\n4,0.0", file);
    fclose(file);
    ck_assert_msg(metrics_truncate(path, 2, &err), "%s", err.message);
    ck_assert_str_eq(read_whole_file(path), "step,loss\n1,0.5\n2,0.25\n");
    file = fopen(path, "a");
    fputs("3,0.1", file); /* cut short: no newline */
    fclose(file);
    ck_assert_msg(metrics_truncate(path, 5, &err), "%s", err.message);
    ck_assert_str_eq(read_whole_file(path), "step,loss\n1,0.5\n2,0.25\n");
    ck_assert_msg(metrics_truncate(path, 0, &err), "%s", err.message);
    ck_assert_str_eq(read_whole_file(path), "step,loss\n");
}
END_TEST

START_TEST(test_cli_metrics_errors) {
    const char *dir = test_temp_dir("cli");
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    MetricsLog log;
    Error err;
    ck_assert(metrics_open(&log, path, "step,loss", false, &err));
    metrics_close(&log);
    /* Resuming with different columns would mislabel every later row. */
    ck_assert(!metrics_open(&log, path, "step,loss,accuracy", true, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "header"));
    ck_assert_ptr_null(log.file);
    snprintf(path, sizeof path, "%s/missing/metrics.csv", dir);
    ck_assert(!metrics_open(&log, path, "step,loss", false, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "missing/metrics.csv"));
}
END_TEST

Suite *cli_suite(void) {
    Suite *suite = suite_create("cli");
    TCase *parse = tcase_create("parse");
    tcase_add_test(parse, test_cli_parses_every_kind_space_form);
    tcase_add_test(parse, test_cli_parses_equals_form);
    tcase_add_test(parse, test_cli_defaults_stay_when_not_given);
    tcase_add_test(parse, test_cli_select_keeps_named_options_in_table_order);
    tcase_add_test(parse, test_cli_range_edges_are_inclusive);
    tcase_add_test(parse, test_cli_help_is_reported);
    tcase_add_test(parse, test_cli_rejects_bad_integers);
    tcase_add_test(parse, test_cli_rejects_out_of_range);
    tcase_add_test(parse, test_cli_rejects_bad_floats);
    tcase_add_test(parse, test_cli_missing_value);
    tcase_add_test(parse, test_cli_choices);
    tcase_add_test(parse, test_cli_flags_take_no_value);
    tcase_add_test(parse, test_cli_unknown_option_suggests);
    tcase_add_test(parse, test_cli_rejects_positional);
    tcase_add_test(parse, test_cli_parse_or_exit_usage_error);
    tcase_add_test(parse, test_cli_parse_or_exit_help);
    suite_add_tcase(suite, parse);
    TCase *output = tcase_create("output");
    tcase_add_test(output, test_cli_value_strings);
    tcase_add_test(output, test_cli_help_lists_every_option_with_default);
    tcase_add_test(output, test_cli_write_config);
    tcase_add_test(output, test_cli_common_options_table);
    tcase_add_test(output, test_cli_progress_plain_every_ten_percent);
    tcase_add_test(output, test_cli_progress_quiet_prints_nothing);
    tcase_add_test(output, test_cli_progress_interactive_rewrites_one_line);
    tcase_add_test(output, test_cli_progress_smoothed_loss);
    tcase_add_test(output, test_cli_metrics_header_rows_and_append);
    tcase_add_test(output, test_cli_metrics_append_to_new_or_empty_file_writes_header);
    tcase_add_test(output, test_cli_metrics_errors);
    tcase_add_test(output, test_cli_metrics_truncate_to_checkpoint_step);
    tcase_add_test(output, test_cli_metrics_full_disk_stops);
    suite_add_tcase(suite, output);
    return suite;
}
