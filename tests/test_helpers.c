/* tests/test_helpers.c: small helpers shared by the test files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_suites.h"

const char *test_temp_dir(const char *prefix) {
    static char path[512];
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0') base = "/tmp";
    snprintf(path, sizeof path, "%s/tinyzoo-%s-XXXXXX", base, prefix);
    if (mkdtemp(path) == NULL) {
        perror("mkdtemp");
        abort();
    }
    return path;
}

const char *test_bin_dir(void) {
    const char *dir = getenv("TINYZOO_BIN");
    return dir != NULL && dir[0] != '\0' ? dir : "../bin";
}
