/* common/cli.c: the shared command line, progress line and metrics file.
 *
 * Read in this order:
 *   1. values      parsing one option's text (numbers checked in full);
 *   2. parsing     walking argv, "--name value" and "--name=value";
 *   3. help        --help and config.txt, both printed from the same table;
 *   4. common      the options every model program shares;
 *   5. progress    the step / loss / throughput / ETA line;
 *   6. metrics     metrics.csv, one flushed row per record.
 *
 * Shapes: none; options are a table of `count` Option, one per flag.
 */
#include "cli.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"

/* ==== 1. Parsing one value ===================================================== */

static bool range_checked(const Option *option) { return option->min != option->max; }

/* "an integer from 1 to 100", "an integer >= 0" or "an integer": the words
 * used in every error about this option, so the user learns the range. */
static void describe_expected(const Option *option, char *buffer, size_t size) {
    bool is_float = option->kind == OPTION_FLOAT;
    const char *noun = is_float ? "a number" : "an integer";
    double type_max = option->kind == OPTION_INT ? (double)INT_MAX
                      : option->kind == OPTION_LONG ? (double)LONG_MAX
                                                    : (double)HUGE_VALF;
    const char *format = is_float ? "%s from %g to %g" : "%s from %.0f to %.0f";
    if (!range_checked(option))
        snprintf(buffer, size, "%s", noun);
    else if (option->max >= type_max)
        snprintf(buffer, size, is_float ? "%s >= %g" : "%s >= %.0f", noun, option->min);
    else
        snprintf(buffer, size, format, noun, option->min, option->max);
}

static bool value_error(const Option *option, const char *text, const char *why, Error *err) {
    char expected[128];
    describe_expected(option, expected, sizeof expected);
    return error_set(err, "--%s: expected %s, got '%s'%s", option->name, expected, text, why);
}

/* strtol accepts leading spaces, an empty string and trailing junk ("12abc"
 * reads as 12); a value on the command line must be the number and nothing
 * else, so each of those is checked. */
static bool parse_integer(const Option *option, const char *text, long *value, Error *err) {
    if (text[0] == '\0' || text[0] == ' ' || text[0] == '\t')
        return value_error(option, text, "", err);
    char *end;
    errno = 0;
    long parsed = strtol(text, &end, 10);
    if (*end != '\0') return value_error(option, text, "", err);
    long low = option->kind == OPTION_INT ? INT_MIN : LONG_MIN;
    long high = option->kind == OPTION_INT ? INT_MAX : LONG_MAX;
    if (errno == ERANGE || parsed < low || parsed > high)
        return value_error(option, text, " (too large)", err);
    if (range_checked(option) && (parsed < option->min || parsed > option->max))
        return value_error(option, text, "", err);
    *value = parsed;
    return true;
}

/* Like parse_integer; also rejects nan and inf, which strtod accepts but
 * which would silently poison a training run.  The range is checked on the
 * double, before rounding to float, so "--lr 1e-6" meets a minimum of 1e-6
 * (1e-6f is a little below it). */
static bool parse_float(const Option *option, const char *text, float *value, Error *err) {
    if (text[0] == '\0' || text[0] == ' ' || text[0] == '\t')
        return value_error(option, text, "", err);
    char *end;
    errno = 0;
    double parsed = strtod(text, &end);
    if (*end != '\0') return value_error(option, text, "", err);
    if (!isfinite(parsed)) return value_error(option, text, " (not a finite number)", err);
    bool underflow = parsed != 0.0 && fabs(parsed) < FLT_MIN;
    if (errno == ERANGE || fabs(parsed) > FLT_MAX || underflow)
        return value_error(option, text, " (outside the range of a float)", err);
    if (range_checked(option) && (parsed < option->min || parsed > option->max))
        return value_error(option, text, "", err);
    *value = (float)parsed;
    return true;
}

/* The index of `text` in "a|b|c", or -1. */
static int choice_index(const char *choices, const char *text) {
    size_t length = strlen(text);
    int index = 0;
    for (const char *start = choices;; index++) {
        const char *end = strchr(start, '|');
        size_t choice_length = end != NULL ? (size_t)(end - start) : strlen(start);
        if (choice_length == length && strncmp(start, text, length) == 0) return index;
        if (end == NULL) return -1;
        start = end + 1;
    }
}

static bool parse_value(const Option *option, const char *text, Error *err) {
    long integer;
    switch (option->kind) {
    case OPTION_INT:
        if (!parse_integer(option, text, &integer, err)) return false;
        *(int *)option->value = (int)integer;
        return true;
    case OPTION_LONG:
        if (!parse_integer(option, text, &integer, err)) return false;
        *(long *)option->value = integer;
        return true;
    case OPTION_FLOAT:
        return parse_float(option, text, (float *)option->value, err);
    case OPTION_STRING:
        if (text[0] == '\0') return error_set(err, "--%s: expected a value, got ''", option->name);
        *(const char **)option->value = text;
        return true;
    case OPTION_CHOICE: {
        int index = choice_index(option->choices, text);
        if (index < 0)
            return error_set(err, "--%s: expected one of %s, got '%s'", option->name,
                             option->choices, text);
        *(int *)option->value = index;
        return true;
    }
    case OPTION_FLAG:
        break;
    }
    fatal("--%s: parse_value called for a flag", option->name);
}

/* ==== 2. Walking argv ========================================================== */

/* Edit distance with adjacent transpositions counted as one edit ("stpes"
 * is one edit from "steps"), for did-you-mean suggestions.  Names are short,
 * so the full (a+1) x (b+1) table is fine. */
static int edit_distance(const char *a, const char *b) {
    enum { MAX_NAME = 64 };
    size_t la = strlen(a), lb = strlen(b);
    if (la >= MAX_NAME || lb >= MAX_NAME) return MAX_NAME;
    int d[MAX_NAME + 1][MAX_NAME + 1];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int substitute = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            int remove = d[i - 1][j] + 1, insert = d[i][j - 1] + 1;
            int best = substitute < remove ? substitute : remove;
            if (insert < best) best = insert;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* The closest option name within 2 edits (and within half its length, so
 * "--xy" does not suggest "--lr"), or NULL. */
static const char *closest_name(const char *typed, const Option *options, int count) {
    const char *best = NULL;
    int best_distance = 3;
    for (int i = -1; i < count; i++) {
        const char *name = i < 0 ? "help" : options[i].name;
        int distance = edit_distance(typed, name);
        if (distance < best_distance && distance <= (int)strlen(name) / 2) {
            best = name;
            best_distance = distance;
        }
    }
    return best;
}

static bool unknown_option(const char *argument, const Option *options, int count,
                           Error *err) {
    char typed[64];
    /* Compare without dashes and without "=value": "-steps" and
     * "--stpes=10" both suggest --steps. */
    const char *name = argument;
    while (*name == '-') name++;
    snprintf(typed, sizeof typed, "%.*s", (int)strcspn(name, "="), name);
    const char *suggestion = closest_name(typed, options, count);
    if (suggestion != NULL)
        return error_set(err, "unknown option '%s'; did you mean '--%s'?", argument, suggestion);
    return error_set(err, "unknown option '%s'", argument);
}

static const Option *find_option(const char *name, size_t length, const Option *options,
                                 int count) {
    for (int i = 0; i < count; i++)
        if (strlen(options[i].name) == length && strncmp(options[i].name, name, length) == 0)
            return &options[i];
    return NULL;
}

/* Handles argv[*index] (an option); advances *index past its value. */
static bool parse_one(int argc, char **argv, int *index, const Option *options, int count,
                      Error *err) {
    const char *argument = argv[*index];
    const char *name = argument + 2;
    const char *equals = strchr(name, '=');
    size_t length = equals != NULL ? (size_t)(equals - name) : strlen(name);
    const Option *option = find_option(name, length, options, count);
    if (option == NULL) return unknown_option(argument, options, count, err);
    if (option->kind == OPTION_FLAG) {
        if (equals != NULL)
            return error_set(err, "--%s: is a flag and takes no value, got '%s'", option->name,
                             argument);
        *(bool *)option->value = true;
        return true;
    }
    if (equals != NULL) return parse_value(option, equals + 1, err);
    /* "--steps --lr 1": the next option is not a value (but "-5" can be). */
    const char *next = *index + 1 < argc ? argv[*index + 1] : NULL;
    if (next == NULL || strncmp(next, "--", 2) == 0) {
        char expected[128];
        if (option->kind == OPTION_CHOICE)
            snprintf(expected, sizeof expected, "one of %s", option->choices);
        else if (option->kind == OPTION_STRING)
            snprintf(expected, sizeof expected, "a value");
        else
            describe_expected(option, expected, sizeof expected);
        return error_set(err, "--%s: expected %s after it", option->name, expected);
    }
    (*index)++;
    return parse_value(option, next, err);
}

bool options_parse(int argc, char **argv, int first, const Option *options, int count,
                   bool *help_requested, Error *err) {
    *help_requested = false;
    for (int i = first; i < argc; i++) {
        const char *argument = argv[i];
        if (strcmp(argument, "--help") == 0 || strcmp(argument, "-h") == 0) {
            /* Help wins over any mistake elsewhere on the line. */
            *help_requested = true;
            return true;
        }
        if (strncmp(argument, "--", 2) == 0 && argument[2] != '\0') {
            if (!parse_one(argc, argv, &i, options, count, err)) return false;
        } else if (argument[0] == '-' && argument[1] != '\0') {
            return unknown_option(argument, options, count, err);
        } else {
            return error_set(err, "unexpected argument '%s' (every option starts with --)",
                             argument);
        }
    }
    return true;
}

void options_parse_or_exit(int argc, char **argv, int first, const Option *options,
                           int count, const char *usage) {
    bool help = false;
    Error err;
    if (!options_parse(argc, argv, first, options, count, &help, &err)) {
        const char *program = argc > 0 ? argv[0] : "tinyzoo";
        const char *slash = strrchr(program, '/');
        if (slash != NULL) program = slash + 1;
        if (first >= 2)
            fprintf(stderr, "%s %s: %s (see --help)\n", program, argv[first - 1], err.message);
        else
            fprintf(stderr, "%s: %s (see --help)\n", program, err.message);
        exit(EXIT_USAGE_ERROR);
    }
    if (help) {
        options_print_help(stdout, usage, options, count);
        exit(EXIT_SUCCESS);
    }
}

/* ==== 3. Help and config.txt =================================================== */

void option_value_string(const Option *option, char *buffer, size_t size) {
    switch (option->kind) {
    case OPTION_INT: snprintf(buffer, size, "%d", *(const int *)option->value); return;
    case OPTION_LONG: snprintf(buffer, size, "%ld", *(const long *)option->value); return;
    case OPTION_FLOAT: snprintf(buffer, size, "%g", (double)*(const float *)option->value); return;
    case OPTION_FLAG:
        snprintf(buffer, size, "%s", *(const bool *)option->value ? "true" : "false");
        return;
    case OPTION_STRING: {
        const char *text = *(const char *const *)option->value;
        snprintf(buffer, size, "%s", text != NULL ? text : "(none)");
        return;
    }
    case OPTION_CHOICE: {
        /* The name of the chosen index, cut out of "a|b|c". */
        int wanted = *(const int *)option->value;
        const char *start = option->choices;
        for (int i = 0; i < wanted && start != NULL; i++) {
            start = strchr(start, '|');
            if (start != NULL) start++;
        }
        if (wanted < 0 || start == NULL) {
            snprintf(buffer, size, "?%d", wanted);
            return;
        }
        snprintf(buffer, size, "%.*s", (int)strcspn(start, "|"), start);
        return;
    }
    }
}

/* The placeholder after the name in --help: "--steps INT". Strings are
 * named after the option, as argparse does ("--data DATA"). */
static void value_placeholder(const Option *option, char *buffer, size_t size) {
    switch (option->kind) {
    case OPTION_INT:
    case OPTION_LONG: snprintf(buffer, size, " INT"); return;
    case OPTION_FLOAT: snprintf(buffer, size, " FLOAT"); return;
    case OPTION_FLAG: buffer[0] = '\0'; return;
    case OPTION_CHOICE: snprintf(buffer, size, " %s", option->choices); return;
    case OPTION_STRING: {
        size_t i = 0;
        buffer[i++] = ' ';
        for (const char *c = option->name; *c != '\0' && i + 1 < size; c++)
            buffer[i++] = *c == '-' ? '_' : (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
        buffer[i] = '\0';
        return;
    }
    }
}

void options_print_help(FILE *out, const char *usage, const Option *options, int count) {
    enum { NAME_COLUMN = 30 };
    fprintf(out, "usage: %s\n\noptions:\n", usage);
    fprintf(out, "  %-*s show this help and exit\n", NAME_COLUMN - 3, "-h, --help");
    for (int i = 0; i < count; i++) {
        char placeholder[96], left[160], value[256];
        value_placeholder(&options[i], placeholder, sizeof placeholder);
        snprintf(left, sizeof left, "--%s%s", options[i].name, placeholder);
        /* A long name and placeholder gets the help on the next line. */
        if (strlen(left) > NAME_COLUMN - 4)
            fprintf(out, "  %s\n  %-*s", left, NAME_COLUMN - 3, "");
        else
            fprintf(out, "  %-*s", NAME_COLUMN - 3, left);
        fprintf(out, " %s", options[i].help != NULL ? options[i].help : "");
        /* An unset string has no default to show; its help says what
         * happens without it. */
        bool unset_string = options[i].kind == OPTION_STRING &&
                            *(const char *const *)options[i].value == NULL;
        if (!unset_string) {
            option_value_string(&options[i], value, sizeof value);
            fprintf(out, " (default: %s)", value);
        }
        fputc('\n', out);
    }
}

bool options_write_config(const char *path, const Option *options, int count, Error *err) {
    char temp_path[4096];
    int length = snprintf(temp_path, sizeof temp_path, "%s.tmp", path);
    if (length < 0 || (size_t)length >= sizeof temp_path)
        return error_set(err, "%s: path too long", path);
    FILE *file = fopen(temp_path, "w");
    if (file == NULL) return error_set(err, "%s: cannot create: %s", temp_path, strerror(errno));
    for (int i = 0; i < count; i++) {
        char value[1024];
        option_value_string(&options[i], value, sizeof value);
        fprintf(file, "%s = %s\n", options[i].name, value);
    }
    bool failed = ferror(file) != 0;
    failed = fclose(file) != 0 || failed;
    /* Renaming over the old file is atomic: a reader sees the old
     * config.txt or the new one, never half of one. */
    if (failed || rename(temp_path, path) != 0) {
        int saved_errno = errno;
        remove(temp_path);
        return error_set(err, "%s: write failed: %s", path, strerror(saved_errno));
    }
    return true;
}

/* ==== 4. The options every program shares ====================================== */

int options_select(const Option *options, int count, const char *const *names, Option *selected) {
    int chosen = 0, wanted = 0;
    for (; names[wanted] != NULL; wanted++) {
        bool found = false;
        for (int i = 0; i < count && !found; i++) found = strcmp(options[i].name, names[wanted]) == 0;
        if (!found) fatal("options_select: no option --%s in the table", names[wanted]);
    }
    for (int i = 0; i < count; i++)
        for (int n = 0; n < wanted; n++)
            if (strcmp(options[i].name, names[n]) == 0) selected[chosen++] = options[i];
    return chosen;
}

void common_options_table(CommonOptions *common, Option *options) {
    const Option table[COMMON_OPTION_COUNT] = {
        {"task", OPTION_STRING, &common->task, "built-in task to train on (see the README)",
         NULL, 0, 0},
        {"data", OPTION_STRING, &common->data,
         "train on this file or directory instead of the task's built-in data", NULL, 0, 0},
        {"input", OPTION_STRING, &common->input, "inference input file (default: stdin)", NULL,
         0, 0},
        {"out", OPTION_STRING, &common->out,
         "run directory for checkpoints, metrics.csv, config.txt and plots "
         "(default: runs/<arch>-<task>)", NULL, 0, 0},
        {"checkpoint", OPTION_STRING, &common->checkpoint,
         "checkpoint to load for eval, inference or --resume", NULL, 0, 0},
        {"checkpoint-every", OPTION_LONG, &common->checkpoint_every,
         "steps between checkpoints; 0 saves only at the end", NULL, 0, 1e9},
        {"steps", OPTION_LONG, &common->steps, "training steps (one batch each)", NULL, 1, 1e9},
        {"batch", OPTION_INT, &common->batch, "examples per training step", NULL, 1, 65536},
        {"lr", OPTION_FLOAT, &common->lr, "learning rate", NULL, 1e-9, 1e30},
        {"seed", OPTION_LONG, &common->seed,
         "random seed: the same seed repeats a run exactly", NULL, 0, (double)LONG_MAX},
        {"threads", OPTION_INT, &common->threads, "worker threads for matmul and batches",
         NULL, 1, 256},
        {"resume", OPTION_FLAG, &common->resume,
         "continue training from --checkpoint, keeping its step count and optimizer state",
         NULL, 0, 0},
        {"plot-term", OPTION_CHOICE, &common->plot_term,
         "plots as PNG (needs gnuplot), as text on stdout, or only their .dat/.gp sources",
         "png|dumb|none", 0, 0},
        {"quiet", OPTION_FLAG, &common->quiet, "no progress line", NULL, 0, 0},
        {"check-numerics", OPTION_FLAG, &common->check_numerics,
         "stop at the first NaN or infinity, naming the op that made it (slower)", NULL, 0, 0},
    };
    memcpy(options, table, sizeof table);
}

/* ==== 5. Progress ============================================================== */

void progress_start(Progress *p, long first_step, long total_steps, const char *unit,
                    bool quiet) {
    memset(p, 0, sizeof *p);
    p->first_step = first_step;
    p->total_steps = total_steps > 0 ? total_steps : 1;
    p->start_time = time_seconds();
    p->last_print = -1.0; /* nothing printed yet */
    p->unit = unit != NULL ? unit : "items/s";
    p->interactive = isatty(STDERR_FILENO) != 0;
    p->quiet = quiet;
    /* A resumed run at 40% reports next at 50%, not at 10% again. */
    p->last_percent_reported = (int)(first_step * 100 / p->total_steps) / 10 * 10;
}

/* "0:07", "12:34", "1:02:03". */
static void format_duration(double seconds, char *buffer, size_t size) {
    if (!isfinite(seconds) || seconds < 0) seconds = 0;
    long total = (long)(seconds + 0.5);
    if (total >= 3600)
        snprintf(buffer, size, "%ld:%02ld:%02ld", total / 3600, total / 60 % 60, total % 60);
    else
        snprintf(buffer, size, "%ld:%02ld", total / 60, total % 60);
}

/* "950", "5.2k", "1.3M": throughput at a glance. */
static void format_rate(double rate, char *buffer, size_t size) {
    if (rate >= 1e6)
        snprintf(buffer, size, "%.1fM", rate / 1e6);
    else if (rate >= 1e3)
        snprintf(buffer, size, "%.1fk", rate / 1e3);
    else
        snprintf(buffer, size, "%.0f", rate);
}

static void progress_format(const Progress *p, long step, float loss, double now,
                            char *line, size_t size) {
    double elapsed = now - p->start_time;
    long done = step - p->first_step;
    double left = done > 0 ? elapsed / done * (double)(p->total_steps - step) : 0.0;
    char rate[32], elapsed_text[32], left_text[32];
    format_rate(p->items_per_second, rate, sizeof rate);
    format_duration(elapsed, elapsed_text, sizeof elapsed_text);
    format_duration(left, left_text, sizeof left_text);
    snprintf(line, size, "step %ld/%ld  loss %.4g  avg %.4g  %s %s  %s elapsed  %s left", step,
             p->total_steps, (double)loss, p->smoothed_loss, rate, p->unit, elapsed_text,
             left_text);
}

void progress_update(Progress *p, long step, float loss, double items) {
    p->smoothed_loss = p->has_smoothed ? 0.9 * p->smoothed_loss + 0.1 * (double)loss : loss;
    p->has_smoothed = true;
    double now = time_seconds();
    p->items_done += items;
    double elapsed = now - p->start_time;
    p->items_per_second = elapsed > 0 ? p->items_done / elapsed : 0.0;
    if (p->quiet) return;
    bool last = step >= p->total_steps;
    char line[256];
    if (p->interactive) {
        /* At most ~10 redraws a second: printing is slow on some terminals,
         * and nobody reads faster. */
        if (!last && p->last_print >= 0 && now - p->last_print < 0.1) return;
        progress_format(p, step, loss, now, line, sizeof line);
        fprintf(stderr, "\r%s\033[K", line); /* \033[K clears the rest */
        fflush(stderr);
        p->last_print = now;
        return;
    }
    /* A log file gets one plain line per 10% of the run. */
    int percent = (int)(step * 100 / p->total_steps);
    if (percent / 10 * 10 <= p->last_percent_reported) return;
    p->last_percent_reported = percent / 10 * 10;
    progress_format(p, step, loss, now, line, sizeof line);
    fprintf(stderr, "%s\n", line);
    p->last_print = now;
}

void progress_finish(Progress *p) {
    /* End the line rewritten in place, so what follows starts fresh. */
    if (!p->quiet && p->interactive && p->last_print >= 0) fputc('\n', stderr);
    p->last_print = -1.0;
}

/* ==== 6. metrics.csv =========================================================== */

/* True when the file at `path` exists and holds at least one byte. */
static bool file_has_content(const char *path) {
    FILE *file = fopen(path, "r");
    if (file == NULL) return false;
    bool has = fgetc(file) != EOF;
    fclose(file);
    return has;
}

/* On resume the existing header must match, or the columns would be
 * mislabelled from that row on. */
static bool header_matches(const char *path, const char *header, Error *err) {
    FILE *file = fopen(path, "r");
    if (file == NULL) return error_set(err, "%s: cannot read: %s", path, strerror(errno));
    char existing[4096];
    bool read = fgets(existing, sizeof existing, file) != NULL;
    fclose(file);
    if (read) existing[strcspn(existing, "\r\n")] = '\0';
    size_t header_length = strcspn(header, "\n");
    if (!read || strlen(existing) != header_length || strncmp(existing, header, header_length))
        return error_set(err, "%s: existing header '%s' differs from '%.*s'; use a new --out",
                         path, read ? existing : "", (int)header_length, header);
    return true;
}

bool metrics_open(MetricsLog *log, const char *path, const char *header, bool append,
                  Error *err) {
    log->file = NULL;
    log->columns = 1;
    for (const char *c = header; *c != '\0' && *c != '\n'; c++) log->columns += *c == ',';
    bool continuing = append && file_has_content(path);
    if (continuing && !header_matches(path, header, err)) return false;
    log->file = fopen(path, continuing ? "a" : "w");
    if (log->file == NULL) return error_set(err, "%s: cannot open: %s", path, strerror(errno));
    snprintf(log->path, sizeof log->path, "%s", path);
    if (!continuing) {
        fprintf(log->file, "%.*s\n", (int)strcspn(header, "\n"), header);
        if (fflush(log->file) != 0 || ferror(log->file)) {
            error_set(err, "%s: cannot write: %s", path, strerror(errno));
            metrics_close(log);
            return false;
        }
    }
    return true;
}

void metrics_write(MetricsLog *log, const double *values, int count) {
    if (log->file == NULL) return;
    if (count != log->columns)
        fatal("metrics_write: %d values for %d columns", count, log->columns);
    for (int i = 0; i < count; i++) fprintf(log->file, i > 0 ? ",%.9g" : "%.9g", values[i]);
    fputc('\n', log->file);
    /* Flushed row by row: a crash or Ctrl-C loses no finished record. */
    if (fflush(log->file) == 0 && !ferror(log->file)) return;
    fprintf(stderr, "tinyzoo: %s: cannot write a row: %s; stopping (the last checkpoint is "
                    "unchanged)\n", log->path, strerror(errno));
    exit(EXIT_RUNTIME_ERROR);
}

void metrics_close(MetricsLog *log) {
    if (log->file != NULL) fclose(log->file);
    log->file = NULL;
}

bool metrics_truncate(const char *path, long step, Error *err) {
    if (access(path, F_OK) != 0) return true;
    char *text;
    size_t size;
    if (!file_read_all(path, DATA_MAX_FILE_BYTES, &text, &size, err)) return false;
    size_t keep = 0; /* bytes of the whole lines to keep */
    for (char *line = text; line < text + size;) {
        char *end = memchr(line, '\n', (size_t)(text + size - line));
        if (end == NULL) break; /* no newline: a row cut short */
        char *after;
        long row_step = strtol(line, &after, 10);
        if (after != line && row_step > step) break; /* (the header has no number) */
        keep = (size_t)(end + 1 - text);
        line = end + 1;
    }
    bool ok = keep == size || file_write_atomic(path, text, keep, err);
    free(text);
    return ok;
}
