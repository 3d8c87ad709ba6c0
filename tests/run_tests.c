/* tests/run_tests.c: the Check runner for every tinyzoo test suite.
 *
 * Each tests/test_*.c file defines `Suite *<name>_suite(void)`.  The Makefile
 * collects those names into build/tests/suites.inc (one SUITE(name) line
 * each), so a new test file is picked up without editing this one.  Check
 * forks every test by default, so a crash or an exit() inside a test fails
 * that test alone and the run goes on.
 *
 *   build/tests/run_tests                        run everything
 *   CK_RUN_SUITE=matmul build/tests/run_tests    one suite
 *   CK_FORK=no gdb build/tests/run_tests         step into a failing test
 *
 * Every test's files go under one fresh directory ($TMPDIR for the run), which
 * is removed when all tests pass and kept, with its path printed, otherwise.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_suites.h"

#define SUITE(name) Suite *name(void);
#include "suites.inc"
#undef SUITE

int main(void) {
    char run_dir[512];
    const char *base = getenv("TMPDIR");
    snprintf(run_dir, sizeof run_dir, "%s/tinyzoo-tests-XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    if (mkdtemp(run_dir) == NULL || setenv("TMPDIR", run_dir, 1) != 0) {
        perror("run_tests: cannot create the temporary directory");
        return EXIT_FAILURE;
    }
    SRunner *runner = srunner_create(NULL);
#define SUITE(name) srunner_add_suite(runner, name());
#include "suites.inc"
#undef SUITE
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    if (failed == 0) test_remove_tree(run_dir);
    else fprintf(stderr, "test files kept in %s\n", run_dir);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
