/* common/util.h: errors, checked allocation and small helpers shared by
 * every tinyzoo program.
 *
 * Two kinds of failure, handled differently (see README "Errors"):
 *   - A mistake in the code (two tensors of the wrong shape, an arena that is
 *     too small) stops the program at once with a message naming the place:
 *     fatal().  Put a breakpoint on fatal_stop in gdb to catch it.
 *   - A mistake in the input (a bad file, a bad flag) is returned to the
 *     caller as `false` plus an Error, so that tests can check the message and
 *     the command line can print one line and exit with a chosen status.
 */
#ifndef TINYZOO_UTIL_H
#define TINYZOO_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit statuses shared by every program: usage errors (bad flag, bad value)
 * exit 2, runtime errors (bad file, failed write) exit 1. */
enum { EXIT_RUNTIME_ERROR = 1, EXIT_USAGE_ERROR = 2 };

/* A one-line message describing why an operation on user input failed. */
typedef struct {
    char message[512];
} Error;

/* Formats `err->message` and returns false, so a loader can write
 *   if (bad) return error_set(err, "%s: line %d: expected a tab", path, line);
 * `err` may be NULL, in which case the message is dropped. */
bool error_set(Error *err, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "tinyzoo: <message>" to stderr and exits with `status`. */
_Noreturn void error_exit(const Error *err, int status);

/* A programming error: prints "file:line: message" and exits 1. */
#define fatal(...) fatal_at(__FILE__, __LINE__, __VA_ARGS__)
_Noreturn void fatal_at(const char *file, int line, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
/* Empty function called just before a fatal exit: `break fatal_stop` in gdb
 * stops with the failing op still on the stack. */
void fatal_stop(void);

/* Checked allocation: on failure, names the call site and the size. */
#define xmalloc(bytes) xmalloc_at(__FILE__, __LINE__, (bytes))
#define xcalloc(count, size) xcalloc_at(__FILE__, __LINE__, (count), (size))
#define xrealloc(ptr, bytes) xrealloc_at(__FILE__, __LINE__, (ptr), (bytes))
void *xmalloc_at(const char *file, int line, size_t bytes);
void *xcalloc_at(const char *file, int line, size_t count, size_t size);
void *xrealloc_at(const char *file, int line, void *ptr, size_t bytes);
char *xstrdup(const char *text);

/* Seconds from a monotonic clock, for throughput and ETA. */
double time_seconds(void);
/* CPU seconds used by this process (all threads). */
double cpu_seconds(void);
/* Peak resident set size of this process in KiB (0 when unknown). */
long peak_rss_kib(void);

/* OpenMP directives through a macro, so that a build without OpenMP gets no
 * "ignoring #pragma" warnings and runs the same loops on one thread:
 * OMP("omp parallel for") is #pragma omp parallel for. */
#ifdef _OPENMP
#define OMP(directive) _Pragma(directive)
#else
#define OMP(directive)
#endif

/* Creates `path` and its parents (like mkdir -p). */
bool make_directory(const char *path, Error *err);
bool path_is_directory(const char *path);

#endif
