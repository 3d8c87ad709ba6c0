/* tests/program_runs.h: helpers for the tests that run the programs as a
 * user would (test_bad_inputs.c, test_faults.c, the resume tests): tiny
 * settings of each architecture, starting and waiting for a program with
 * its stdout and stderr kept apart, and comparing two checkpoints bit for
 * bit.
 */
#ifndef TINYZOO_PROGRAM_RUNS_H
#define TINYZOO_PROGRAM_RUNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* One architecture with `train` options small enough that a step takes
 * about a millisecond, and validation rare enough not to dominate. */
typedef struct {
    const char *program; /* bin/<program>                                  */
    const char *tiny;    /* train options of a tiny model on a tiny task    */
    const char *stop;    /* the option that ends a session early, "" if none */
} TinyArchitecture;

enum { TINY_ARCHITECTURE_COUNT = 4 };
extern const TinyArchitecture TINY_ARCHITECTURES[TINY_ARCHITECTURE_COUNT];

/* What a finished program left: its exit status, or the signal that
 * killed it, and the start of its stdout and stderr. */
typedef struct {
    int status;      /* exit status; -1 when killed by a signal */
    int signal;      /* the signal, 0 when it exited            */
    char out[8192];  /* stdout, NUL-terminated (truncated)      */
    char err[8192];  /* stderr, NUL-terminated (truncated)      */
} ProgramResult;

/* Starts bin/<program> (from $TINYZOO_BIN) with `arguments`, split at
 * spaces (so no argument may hold one), stdout and stderr going to
 * <log_dir>/stdout.txt and <log_dir>/stderr.txt.  Returns the pid. */
pid_t program_start(const char *log_dir, const char *program, const char *arguments);
/* Waits for `pid` and fills `result` from the two files in log_dir. */
void program_wait(pid_t pid, const char *log_dir, ProgramResult *result);
/* program_start, then program_wait. */
void program_run(const char *log_dir, const char *program, const char *arguments,
                 ProgramResult *result);

/* The "step" of a checkpoint's metadata, or -1 when the file is absent or
 * not a valid checkpoint. */
long checkpoint_step(const char *path);

/* True when two checkpoints hold the same tensors (names, shapes and every
 * bit: weights and optimizer moments) and the same metadata; false with the
 * first difference in `why`. */
bool checkpoints_identical(const char *a, const char *b, char *why, size_t size);

/* True when every value of every tensor in the checkpoint is finite;
 * false with the first NaN or Inf (or an unreadable file) in `why`. */
bool checkpoint_all_finite(const char *path, char *why, size_t size);

/* True when two run directories hold the same checkpoint (as above) and the
 * same metrics: metrics.csv, and train_loss.csv when the first has one. */
bool runs_identical(const char *dir_a, const char *dir_b, char *why, size_t size);

/* The whole file, NUL-terminated (malloc'd; *size without the NUL), or
 * NULL when it cannot be opened. */
char *read_entire_file(const char *path, size_t *size);

/* True when the two files hold the same bytes; false with the first
 * differing line in `why`.  (metrics.csv has no wall-clock column, so two
 * runs of the same steps write the same bytes.) */
bool files_identical(const char *a, const char *b, char *why, size_t size);

#endif
