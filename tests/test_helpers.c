/* tests/test_helpers.c: small helpers shared by the test files. */
#define _XOPEN_SOURCE 700 /* nftw's FTW_PHYS, to remove test directories */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

int test_run_command(const char *command, char *output, size_t size) {
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", command);
    FILE *pipe = popen(full, "r");
    if (pipe == NULL) {
        snprintf(output, size, "popen failed for: %s", command);
        return -1;
    }
    size_t used = fread(output, 1, size - 1, pipe);
    output[used] = '\0';
    int status = pclose(pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int remove_entry(const char *path, const struct stat *info, int flag, struct FTW *walk) {
    (void)info, (void)flag, (void)walk;
    return remove(path);
}

void test_remove_tree(const char *path) {
    if (path != NULL && path[0] != '\0') nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
