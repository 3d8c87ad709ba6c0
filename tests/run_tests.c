/* tests/run_tests.c: the Check runner for every tinyzoo test suite.
 *
 * Each tests/test_*.c file defines one `Suite *<name>_suite(void)`; they are
 * listed here once.  Check forks every test by default, so a crash or an
 * exit() inside a test fails that test alone and the run goes on.
 *
 *   build/tests/run_tests                 run everything
 *   CK_RUN_SUITE=matmul build/tests/run_tests   one suite
 *   CK_FORK=no gdb build/tests/run_tests  step into a failing test
 */
#include <check.h>
#include <stdlib.h>

#include "test_suites.h"

int main(void) {
    SRunner *runner = srunner_create(rng_suite());
    srunner_add_suite(runner, tensor_ops_suite());
    srunner_add_suite(runner, matmul_suite());
    srunner_add_suite(runner, nn_suite());
    srunner_add_suite(runner, data_suite());
    srunner_add_suite(runner, checkpoint_suite());
    srunner_add_suite(runner, cli_suite());
    srunner_add_suite(runner, plot_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
