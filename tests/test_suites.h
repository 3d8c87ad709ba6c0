/* tests/test_suites.h: one constructor per test file, and shared helpers. */
#ifndef TINYZOO_TEST_SUITES_H
#define TINYZOO_TEST_SUITES_H

#include <check.h>

Suite *rng_suite(void);        /* tests/test_rng.c        */
Suite *tensor_ops_suite(void); /* tests/test_tensor_ops.c */
Suite *matmul_suite(void);     /* tests/test_matmul.c     */
Suite *nn_suite(void);         /* tests/test_nn.c         */
Suite *data_suite(void);       /* tests/test_data.c       */
Suite *checkpoint_suite(void); /* tests/test_checkpoint.c */
Suite *cli_suite(void);        /* tests/test_cli.c        */
Suite *plot_suite(void);       /* tests/test_plot.c       */

/* A fresh, empty directory under $TMPDIR (or /tmp) for a test's files;
 * returns a static buffer. */
const char *test_temp_dir(const char *prefix);

#endif
