/* common/util.c: errors, checked allocation, clocks, directories. */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

bool error_set(Error *err, const char *format, ...) {
    if (err != NULL) {
        va_list args;
        va_start(args, format);
        vsnprintf(err->message, sizeof err->message, format, args);
        va_end(args);
    }
    return false;
}

_Noreturn void error_exit(const Error *err, int status) {
    fprintf(stderr, "tinyzoo: %s\n", err->message);
    exit(status);
}

void fatal_stop(void) {
    /* Intentionally empty: a stable place for `break fatal_stop` in gdb. */
}

_Noreturn void fatal_at(const char *file, int line, const char *format, ...) {
    fflush(stdout);
    fprintf(stderr, "%s:%d: ", file, line);
    va_list args;
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    fatal_stop();
    exit(EXIT_RUNTIME_ERROR);
}

void *xmalloc_at(const char *file, int line, size_t bytes) {
    void *ptr = malloc(bytes > 0 ? bytes : 1);
    if (ptr == NULL) fatal_at(file, line, "out of memory allocating %zu bytes", bytes);
    return ptr;
}

void *xcalloc_at(const char *file, int line, size_t count, size_t size) {
    void *ptr = calloc(count > 0 ? count : 1, size > 0 ? size : 1);
    if (ptr == NULL) fatal_at(file, line, "out of memory allocating %zu x %zu bytes", count, size);
    return ptr;
}

void *xrealloc_at(const char *file, int line, void *ptr, size_t bytes) {
    void *grown = realloc(ptr, bytes > 0 ? bytes : 1);
    if (grown == NULL) fatal_at(file, line, "out of memory growing a buffer to %zu bytes", bytes);
    return grown;
}

char *xstrdup(const char *text) {
    size_t length = strlen(text);
    char *copy = xmalloc(length + 1);
    memcpy(copy, text, length + 1);
    return copy;
}

double time_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

double cpu_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

long peak_rss_kib(void) {
    /* VmHWM in /proc is this process's own peak.  getrusage's ru_maxrss is
     * the fallback: it survives exec, so a program started by a large one
     * (Python with torch loaded) would report its parent's peak. */
    FILE *status = fopen("/proc/self/status", "r");
    if (status != NULL) {
        char line[256];
        long kib = -1;
        while (fgets(line, sizeof line, status) != NULL)
            if (sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
        fclose(status);
        if (kib >= 0) return kib;
    }
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
    return usage.ru_maxrss; /* KiB on Linux */
}

bool path_is_directory(const char *path) {
    struct stat info;
    return stat(path, &info) == 0 && S_ISDIR(info.st_mode);
}

bool make_directory(const char *path, Error *err) {
    char partial[4096];
    size_t length = strlen(path);
    if (length == 0 || length >= sizeof partial)
        return error_set(err, "%s: directory path is empty or too long", path);
    memcpy(partial, path, length + 1);
    /* Create each prefix ending at a '/', then the whole path. */
    for (size_t i = 1; i <= length; i++) {
        if (partial[i] != '/' && partial[i] != '\0') continue;
        char saved = partial[i];
        partial[i] = '\0';
        if (mkdir(partial, 0777) != 0 && errno != EEXIST)
            return error_set(err, "%s: cannot create directory: %s", partial, strerror(errno));
        if (!path_is_directory(partial))
            return error_set(err, "%s: exists and is not a directory", partial);
        partial[i] = saved;
    }
    return true;
}
