/* common/cli.h: the shared command line, progress line and metrics file.
 *
 * Every program has the shape `bin/<arch> <command> [options]`.  Options are
 * described once, in a table of Option; that table parses argv, prints
 * --help with each default, and writes config.txt, so the three never
 * disagree.  Bad flags and values exit 2 with a one-line message.
 */
#ifndef TINYZOO_CLI_H
#define TINYZOO_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "util.h"

typedef enum {
    OPTION_INT,    /* int *,         --steps 100                          */
    OPTION_LONG,   /* long *                                              */
    OPTION_FLOAT,  /* float *,       --lr 3e-4                            */
    OPTION_STRING, /* const char **, --data file.txt                      */
    OPTION_FLAG,   /* bool *,        --resume (no value)                  */
    OPTION_CHOICE  /* int *,         --cell gru: index into `choices`      */
} OptionKind;

typedef struct {
    const char *name;    /* without the leading "--"                        */
    OptionKind kind;
    void *value;         /* where the parsed value goes; holds the default  */
    const char *help;    /* one line                                        */
    const char *choices; /* OPTION_CHOICE: "gru|lstm"                       */
    double min, max;     /* numbers: inclusive range, unchecked when equal   */
} Option;

/* Parses argv[first..argc) against the table.  Accepts "--name value" and
 * "--name=value".  False with an Error for an unknown option, a missing or
 * malformed value, a value out of range, a choice not in the list, or a
 * stray positional argument.  "--help" sets *help_requested. */
bool options_parse(int argc, char **argv, int first, const Option *options, int count,
                   bool *help_requested, Error *err);
/* options_parse, then: on --help print help and exit 0; on error print
 * "<program> <command>: <message> (see --help)" and exit 2. */
void options_parse_or_exit(int argc, char **argv, int first, const Option *options,
                           int count, const char *usage);
/* "usage" line, then one line per option: name, value kind, help, default. */
void options_print_help(FILE *out, const char *usage, const Option *options, int count);
/* The current value of an option as text (for help and config files). */
void option_value_string(const Option *option, char *buffer, size_t size);
/* Writes "name = value" for every option, atomically. */
bool options_write_config(const char *path, const Option *options, int count, Error *err);

/* The options every model program shares, with their defaults. */
typedef struct {
    const char *task;       /* built-in task name                          */
    const char *data;       /* --data FILE or DIR                          */
    const char *input;      /* inference input; NULL = stdin               */
    const char *out;        /* run directory; NULL = runs/<arch>-<task>/   */
    const char *checkpoint; /* model to load (eval, inference, resume)     */
    long checkpoint_every;  /* steps between checkpoints; 0 = only at end  */
    long steps;
    int batch;
    float lr;
    long seed;
    int threads;
    bool resume;
    int plot_term;          /* PlotTerm                                    */
    bool quiet;
    bool check_numerics;
} CommonOptions;

enum { COMMON_OPTION_COUNT = 15 };
/* Fills options[0..COMMON_OPTION_COUNT) pointing into `common`.  The caller
 * sets the defaults in `common` first (they differ between models). */
void common_options_table(CommonOptions *common, Option *options);
/* Copies to `selected`, in table order, the options of `options` (count of
 * them) named in `names` (NULL-terminated), and returns how many: a command
 * that reads only some common options shows only those in --help.  A name
 * missing from the table is a bug: fatal. */
int options_select(const Option *options, int count, const char *const *names, Option *selected);

/* ---- Progress --------------------------------------------------------------- */

/* On a terminal, one line rewritten in place:
 *   step 120/1000  loss 1.234  avg 1.301  5.2k tok/s  0:12 elapsed  1:28 left
 * When stderr is not a terminal (CI, a pipe), a plain line every ~10%. */
typedef struct {
    long total_steps;
    long first_step;     /* where this run started (resume)              */
    double start_time;
    double last_print;
    double smoothed_loss; /* exponential moving average, factor 0.9       */
    bool has_smoothed;
    double items_per_second;
    double items_done;   /* items processed since progress_start           */
    const char *unit;    /* "tok/s", "seq/s", "img/s", "trees/s"          */
    bool interactive;    /* stderr is a TTY                               */
    bool quiet;
    int last_percent_reported;
} Progress;

void progress_start(Progress *p, long first_step, long total_steps, const char *unit,
                    bool quiet);
/* Called after each step with the step just finished (1-based count) and
 * the number of items it processed. */
void progress_update(Progress *p, long step, float loss, double items);
/* Ends the in-place line. */
void progress_finish(Progress *p);

/* ---- Metrics file ------------------------------------------------------------ */

/* metrics.csv in the run directory: a header row, then one row per record. */
typedef struct {
    FILE *file;
    int columns;
    char path[4096]; /* for the message when a row cannot be written */
} MetricsLog;

/* Creates (or with `append`, continues) the file; writes the header when new. */
bool metrics_open(MetricsLog *log, const char *path, const char *header, bool append,
                  Error *err);
/* One row of `count` numbers, in the header's order, flushed at once.  A
 * row that cannot be written (a full disk) ends the program with exit 1 and
 * a message naming the file: going on would lose rows without a word. */
void metrics_write(MetricsLog *log, const double *values, int count);
void metrics_close(MetricsLog *log);
/* Before a --resume from a checkpoint at `step`: keeps the header and the
 * rows up to `step`, dropping those that a run stopped or killed after its
 * last checkpoint had logged (the resumed run logs them again), and a last
 * row cut short.  A missing file is not an error: there is nothing to keep. */
bool metrics_truncate(const char *path, long step, Error *err);

#endif
