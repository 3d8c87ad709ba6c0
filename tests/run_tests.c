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
 */
#include <check.h>
#include <stdlib.h>

#define SUITE(name) Suite *name(void);
#include "suites.inc"
#undef SUITE

int main(void) {
    SRunner *runner = srunner_create(NULL);
#define SUITE(name) srunner_add_suite(runner, name());
#include "suites.inc"
#undef SUITE
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
