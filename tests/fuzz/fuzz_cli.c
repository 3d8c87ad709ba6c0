/* tests/fuzz/fuzz_cli.c: libFuzzer target for the command-line option
 * parser (common/cli.c options_parse) over the table every program shares
 * plus one option of each remaining kind.
 *
 * The input is split at NUL bytes into argv[1..].  When the parser accepts
 * it, every number must lie in its option's range and every choice index in
 * its list; each value is then printed as config.txt and --help would.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_ARGUMENTS = 64, EXTRA_OPTIONS = 4, OPTION_COUNT = COMMON_OPTION_COUNT + EXTRA_OPTIONS };

typedef struct {
    CommonOptions common;
    int cell;      /* OPTION_CHOICE */
    float dropout; /* OPTION_FLOAT with a range */
    int layers;    /* OPTION_INT without a range */
    long budget;   /* OPTION_LONG with a negative minimum */
} Settings;

static void build_table(Settings *s, Option *options) {
    memset(s, 0, sizeof *s);
    s->common = (CommonOptions){.steps = 100, .batch = 8, .lr = 0.01f, .seed = 1, .threads = 1};
    common_options_table(&s->common, options);
    Option extra[EXTRA_OPTIONS] = {
        {"cell", OPTION_CHOICE, &s->cell, "recurrent cell", "gru|lstm|rnn", 0, 0},
        {"dropout", OPTION_FLOAT, &s->dropout, "dropout rate", NULL, 0, 0.9},
        {"layers", OPTION_INT, &s->layers, "layers", NULL, 0, 0},
        {"budget", OPTION_LONG, &s->budget, "budget", NULL, -5, 5},
    };
    memcpy(options + COMMON_OPTION_COUNT, extra, sizeof extra);
}

static void check_value(const Option *option) {
    double value;
    switch (option->kind) {
    case OPTION_INT: value = *(const int *)option->value; break;
    case OPTION_LONG: value = (double)*(const long *)option->value; break;
    case OPTION_FLOAT: value = *(const float *)option->value; break;
    case OPTION_CHOICE: {
        int index = *(const int *)option->value, choices = 1;
        for (const char *c = option->choices; *c; c++) choices += *c == '|';
        if (index < 0 || index >= choices) {
            fuzz_fail("--%s: choice index %d of %d", option->name, index, choices);
        }
        return;
    }
    default: return;
    }
    /* The float's range is checked on the double before rounding. */
    double slack = option->kind == OPTION_FLOAT ? 1e-6 * (option->max > 1 ? option->max : 1) : 0;
    if (option->min != option->max && (value < option->min - slack || value > option->max + slack)) {
        fuzz_fail("--%s: %g outside [%g, %g]", option->name, value, option->min, option->max);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* argv strings: the input with a NUL added, cut at each NUL. */
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    char *argv[MAX_ARGUMENTS + 1] = {"fuzz"};
    int argc = 1;
    for (size_t at = 0; at <= size && argc < MAX_ARGUMENTS; at += strlen(text + at) + 1)
        argv[argc++] = text + at;
    argv[argc] = NULL;

    Settings settings;
    Option options[OPTION_COUNT];
    build_table(&settings, options);
    bool help = false;
    Error err;
    if (options_parse(argc, argv, 1, options, OPTION_COUNT, &help, &err)) {
        char buffer[256];
        for (int i = 0; i < OPTION_COUNT; i++) {
            check_value(&options[i]);
            option_value_string(&options[i], buffer, sizeof buffer);
        }
        static FILE *sink = NULL;
        if (sink == NULL) sink = fopen("/dev/null", "w");
        options_print_help(sink, "usage: fuzz [options]", options, OPTION_COUNT);
    }
    free(text);
    return 0;
}
