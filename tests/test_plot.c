/* tests/test_plot.c: plot sources and rendering (common/plot.c).
 *
 * Every kind of plot is checked three ways: the .dat holds the numbers
 * (row by row), the .gp reads that file and escapes every label, and, when
 * gnuplot is installed, running the script succeeds and writes a real PNG.
 * Without gnuplot the rendering checks are skipped with a message, but the
 * sources are still checked.  Tests that change PATH run in Check's forked
 * child, so the change does not leak into other tests.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plot.h"
#include "test_suites.h"

/* ---- Helpers ------------------------------------------------------------------ */

static const char *read_text(const char *dir, const char *name) {
    static char buffer[1 << 20];
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen(path, "rb");
    ck_assert_msg(file != NULL, "missing %s", path);
    size_t size = fread(buffer, 1, sizeof buffer - 1, file);
    buffer[size] = '\0';
    fclose(file);
    return buffer;
}

static bool file_exists(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static int count_entries(const char *dir) {
    DIR *handle = opendir(dir);
    ck_assert_ptr_nonnull(handle);
    int count = 0;
    for (struct dirent *entry; (entry = readdir(handle)) != NULL;)
        count += strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0;
    closedir(handle);
    return count;
}

static void assert_contains(const char *text, const char *fragment) {
    ck_assert_msg(strstr(text, fragment) != NULL, "'%s' not found in:\n%s", fragment, text);
}

/* True when `name` starts with the 8-byte PNG signature. */
static bool is_png(const char *dir, const char *name) {
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen(path, "rb");
    if (file == NULL) return false;
    unsigned char head[8] = {0};
    size_t got = fread(head, 1, 8, file);
    fclose(file);
    return got == 8 && memcmp(head, signature, 8) == 0;
}

static bool gnuplot_or_skip(const char *test) {
    if (plot_gnuplot_available()) return true;
    fprintf(stderr, "%s: gnuplot not installed, PNG rendering not checked\n", test);
    return false;
}

/* Labels that break a naive script: quotes, backslash, backquote (command
 * substitution), gnuplot's enhanced-text characters, a printf format. */
static const char *const NASTY[] = {"'", "\"", "\\", " ", "`", "@", "&", "_", "^", "%d",
                                    "{x}", "it's \"q\""};
enum { NASTY_COUNT = 12 };

/* ---- Line plots --------------------------------------------------------------- */

static bool sample_lines(const char *dir, PlotTerm term, const char *stem, Error *err) {
    static const float train_x[4] = {0, 10, 20, 30}, train_y[4] = {4, 2, 1, 0.5f};
    static const float val_x[2] = {15, 30}, val_y[2] = {2.5f, 1.25f};
    PlotSeries series[2] = {{"train", train_x, train_y, 4}, {"validation", val_x, val_y, 2}};
    PlotAxes axes = {.title = "loss: it's \"quoted\" a_b^c", .x_label = "step", .y_label = "loss", .log_y = true};
    PlotTarget target = {dir, term};
    return plot_lines(&target, stem, &axes, series, 2, err);
}

START_TEST(test_plot_lines_sources) {
    const char *dir = test_temp_dir("plot");
    Error err;
    ck_assert_msg(sample_lines(dir, PLOT_TERM_NONE, "loss", &err), "%s", err.message);
    const char *dat = read_text(dir, "loss.dat");
    ck_assert_msg(dat[0] == '#', "no header comment:\n%s", dat);
    /* Two blocks separated by two blank lines, each series' rows in order. */
    assert_contains(dat, "\n0 4\n10 2\n20 1\n30 0.5\n\n\n");
    assert_contains(dat, "\n15 2.5\n30 1.25\n");
    const char *gp = read_text(dir, "loss.gp");
    assert_contains(gp, "datafile = \"loss\" . '.dat'");
    assert_contains(gp, "index 0 using 1:2");
    assert_contains(gp, "index 1 using 1:2");
    assert_contains(gp, "title \"train\"");
    assert_contains(gp, "title \"validation\"");
    assert_contains(gp, "set logscale y");
    assert_contains(gp, "pngcairo");
    assert_contains(gp, "noenhanced");
    assert_contains(gp, "set title \"loss: it's \\\"quoted\\\" a_b^c\"");
    ck_assert(!file_exists(dir, "loss.png"));
    ck_assert_int_eq(count_entries(dir), 2); /* no temporaries left */
}
END_TEST

START_TEST(test_plot_lines_skips_empty_series_and_rejects_all_empty) {
    const char *dir = test_temp_dir("plot");
    static const float x[2] = {1, 2}, y[2] = {3, 4};
    PlotSeries series[3] = {{"empty", NULL, NULL, 0}, {"val", x, y, 2}, {"none", NULL, NULL, 0}};
    PlotTarget target = {dir, PLOT_TERM_NONE};
    Error err;
    ck_assert_msg(plot_lines(&target, "l", NULL, series, 3, &err), "%s", err.message);
    const char *gp = read_text(dir, "l.gp");
    assert_contains(gp, "index 0 using 1:2");
    ck_assert_ptr_null(strstr(gp, "index 1"));
    ck_assert(!plot_lines(&target, "nothing", NULL, series, 1, &err));
    assert_contains(err.message, "nothing to plot");
    ck_assert(!file_exists(dir, "nothing.gp"));
}
END_TEST

/* ---- Heatmaps ------------------------------------------------------------------ */

static bool sample_heatmap(const char *dir, PlotTerm term, Error *err) {
    static const float values[2 * 3] = {0.5f, 0.25f, 0.25f, 0, 1, 0};
    static const char *const rows[2] = {"a", " "};
    static const char *const cols[3] = {"'", "\"", "\\"};
    HeatmapData data = {2, 3, values, rows, cols};
    PlotAxes axes = {.title = "attention", .x_label = "key", .y_label = "query"};
    PlotTarget target = {dir, term};
    return plot_heatmap(&target, "attention", &axes, &data, err);
}

START_TEST(test_plot_heatmap_sources) {
    const char *dir = test_temp_dir("plot");
    Error err;
    ck_assert_msg(sample_heatmap(dir, PLOT_TERM_NONE, &err), "%s", err.message);
    const char *dat = read_text(dir, "attention.dat");
    ck_assert(dat[0] == '#');
    assert_contains(dat, "\n0.5 0.25 0.25\n0 1 0\n");
    const char *gp = read_text(dir, "attention.gp");
    assert_contains(gp, "matrix with image");
    /* Row 0 at the top: the y range runs from the last row to the first. */
    assert_contains(gp, "set yrange [1.5:-0.5]");
    assert_contains(gp, "set xrange [-0.5:2.5]");
    /* Quote, double quote and backslash tokens, each escaped; the space
     * token made visible as a middle dot. */
    assert_contains(gp, "set xtics (\"'\" 0, \"\\\"\" 1, \"\\\\\" 2)");
    assert_contains(gp, "set ytics (\"a\" 0, \"\xc2\xb7\" 1)");
    assert_contains(gp, "set palette");
}
END_TEST

START_TEST(test_plot_heatmap_large_unlabelled) {
    enum { N = 128 };
    static float values[N * N];
    for (int i = 0; i < N * N; i++) values[i] = (float)(i % N) / N;
    const char *dir = test_temp_dir("plot");
    HeatmapData data = {N, N, values, NULL, NULL};
    PlotTarget target = {dir, PLOT_TERM_PNG};
    Error err;
    ck_assert_msg(plot_heatmap(&target, "big", NULL, &data, &err), "%s", err.message);
    const char *dat = read_text(dir, "big.dat");
    int lines = 0;
    for (const char *c = dat; *c != '\0'; c++) lines += *c == '\n' && c[1] != '#';
    ck_assert_int_ge(lines, N);
    if (gnuplot_or_skip("test_plot_heatmap_large_unlabelled")) ck_assert(is_png(dir, "big.png"));
}
END_TEST

/* ---- Scatter plots ------------------------------------------------------------- */

static bool sample_scatter(const char *dir, PlotTerm term, bool labels, Error *err) {
    static const float x[4] = {-1, 1, 0.5f, -0.5f}, y[4] = {-1, 1, -0.5f, 0.5f};
    static const int classes[4] = {0, 1, 1, 0};
    static const char *const names[2] = {"inner_ring", "outer \"ring\""};
    static const char *const words[4] = {"king", "it's", "`date`", "50%"};
    /* 2 x 3 background: bottom row class 0, top row class 1. */
    static const float background[2 * 3] = {0, 0, 0, 1, 1, 1};
    ScatterData data = {4, x, y, classes, 2, names, labels ? words : NULL, background, 2, 3,
                        -1.5f, 1.5f, -2, 2};
    PlotAxes axes = {.title = "spiral", .x_label = "x1", .y_label = "x2"};
    PlotTarget target = {dir, term};
    return plot_scatter(&target, "scatter", &axes, &data, err);
}

START_TEST(test_plot_scatter_sources) {
    const char *dir = test_temp_dir("plot");
    Error err;
    ck_assert_msg(sample_scatter(dir, PLOT_TERM_NONE, true, &err), "%s", err.message);
    const char *dat = read_text(dir, "scatter.dat");
    /* Background at cell centres: x = -1.5 + (c + 0.5) * 1, y = -2 + (r + 0.5) * 2. */
    assert_contains(dat, "\n-1 -1 0\n0 -1 0\n1 -1 0\n\n-1 1 1\n0 1 1\n1 1 1\n");
    /* Then one block per class, points in input order. */
    assert_contains(dat, "\n-1 -1 0\n-0.5 0.5 0\n");
    assert_contains(dat, "\n1 1 1\n0.5 -0.5 1\n");
    const char *gp = read_text(dir, "scatter.gp");
    assert_contains(gp, "datafile index 0 using 1:2:3 with image");
    assert_contains(gp, "datafile index 1 using 1:2 with points");
    assert_contains(gp, "datafile index 2 using 1:2 with points");
    assert_contains(gp, "title \"inner_ring\"");
    assert_contains(gp, "title \"outer \\\"ring\\\"\"");
    assert_contains(gp, "set label \"king\" at -1,-1");
    assert_contains(gp, "set label \"\\140date\\140\" at 0.5,-0.5"); /* no command run */
    assert_contains(gp, "set label \"50%\"");
}
END_TEST

START_TEST(test_plot_scatter_without_classes) {
    const char *dir = test_temp_dir("plot");
    static const float x[3] = {1, 2, 3}, y[3] = {3, 2, 1};
    ScatterData data = {3, x, y, NULL, 0, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0};
    PlotTarget target = {dir, PLOT_TERM_NONE};
    Error err;
    ck_assert_msg(plot_scatter(&target, "plain", NULL, &data, &err), "%s", err.message);
    assert_contains(read_text(dir, "plain.dat"), "\n1 3 0\n2 2 0\n3 1 0\n");
    const char *gp = read_text(dir, "plain.gp");
    assert_contains(gp, "datafile index 0 using 1:2 with points");
    ck_assert_ptr_null(strstr(gp, "with image"));
}
END_TEST

/* ---- Image grids --------------------------------------------------------------- */

static bool sample_grid(const char *dir, PlotTerm term, Error *err) {
    /* 2 x 2 images of 2 x 3 pixels; image i has pixel values i/4 + p/100. */
    static float pixels[4 * 2 * 3];
    for (int image = 0; image < 4; image++)
        for (int p = 0; p < 6; p++) pixels[image * 6 + p] = image / 4.0f + p / 100.0f;
    static const char *const rows[2] = {"original", "it's noisy"};
    ImageGridData data = {2, 2, 2, 3, pixels, rows};
    PlotAxes axes = {.title = "reconstructions"};
    PlotTarget target = {dir, term};
    return plot_image_grid(&target, "grid", &axes, &data, err);
}

START_TEST(test_plot_image_grid_sources) {
    const char *dir = test_temp_dir("plot");
    Error err;
    ck_assert_msg(sample_grid(dir, PLOT_TERM_NONE, &err), "%s", err.message);
    const char *dat = read_text(dir, "grid.dat");
    ck_assert(dat[0] == '#');
    /* One composite matrix, a 1-pixel gap (-1) between images. */
    assert_contains(dat, "\n0 0.00999999978 0.0199999996 -1 0.25 0.25999999 0.270000011\n"
                         "0.0299999993 0.0399999991 0.0500000007 -1 0.280000001 0.289999992 "
                         "0.300000012\n-1 -1 -1 -1 -1 -1 -1\n0.5 ");
    const char *gp = read_text(dir, "grid.gp");
    assert_contains(gp, "matrix with image");
    /* Row labels at the middle of each row of images (rows 0-1, 3-4). */
    assert_contains(gp, "set ytics (\"original\" 0.5, \"it's noisy\" 3.5)");
    assert_contains(gp, "set yrange [4.5:-0.5]");
}
END_TEST

/* ---- Rendering ------------------------------------------------------------------ */

START_TEST(test_plot_png_every_kind) {
    const char *dir = test_temp_dir("plot");
    if (!gnuplot_or_skip("test_plot_png_every_kind")) {
        /* Without gnuplot PNG mode still writes the sources and succeeds. */
        Error err;
        ck_assert(sample_lines(dir, PLOT_TERM_PNG, "loss", &err));
        ck_assert(file_exists(dir, "loss.gp") && file_exists(dir, "loss.dat"));
        return;
    }
    Error err;
    ck_assert_msg(sample_lines(dir, PLOT_TERM_PNG, "loss", &err), "%s", err.message);
    ck_assert_msg(sample_heatmap(dir, PLOT_TERM_PNG, &err), "%s", err.message);
    ck_assert_msg(sample_scatter(dir, PLOT_TERM_PNG, true, &err), "%s", err.message);
    ck_assert_msg(sample_grid(dir, PLOT_TERM_PNG, &err), "%s", err.message);
    const char *pngs[4] = {"loss.png", "attention.png", "scatter.png", "grid.png"};
    for (int i = 0; i < 4; i++) ck_assert_msg(is_png(dir, pngs[i]), "%s is not a PNG", pngs[i]);
    ck_assert_int_eq(count_entries(dir), 12);
}
END_TEST

/* Every troublesome label in every place a string goes: gnuplot must accept
 * the script (a syntax error would make plot_* return false). */
START_TEST(test_plot_nasty_labels_render) {
    const char *dir = test_temp_dir("plot");
    bool render = gnuplot_or_skip("test_plot_nasty_labels_render");
    PlotTarget target = {dir, render ? PLOT_TERM_PNG : PLOT_TERM_NONE};
    Error err;
    for (int i = 0; i < NASTY_COUNT; i++) {
        char stem[32];
        snprintf(stem, sizeof stem, "nasty%d", i);
        PlotAxes axes = {.title = NASTY[i], .x_label = NASTY[i], .y_label = NASTY[i]};
        float values[NASTY_COUNT];
        for (int j = 0; j < NASTY_COUNT; j++) values[j] = (float)j;
        HeatmapData heat = {1, NASTY_COUNT, values, &NASTY[i], NASTY};
        ck_assert_msg(plot_heatmap(&target, stem, &axes, &heat, &err), "label %s: %s", NASTY[i],
                      err.message);
        PlotSeries series = {NASTY[i], values, values, NASTY_COUNT};
        snprintf(stem, sizeof stem, "lines%d", i);
        ck_assert_msg(plot_lines(&target, stem, &axes, &series, 1, &err), "label %s: %s",
                      NASTY[i], err.message);
        if (render) ck_assert(is_png(dir, "lines0.png"));
    }
    /* Point labels, class names and image-grid row labels. */
    static const float x[NASTY_COUNT] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    static const int classes[NASTY_COUNT] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    ScatterData scatter = {NASTY_COUNT, x, x, classes, NASTY_COUNT, NASTY, NASTY, NULL,
                           0, 0, 0, 0, 0, 0};
    ck_assert_msg(plot_scatter(&target, "points", NULL, &scatter, &err), "%s", err.message);
    static float pixels[NASTY_COUNT * 4];
    ImageGridData grid = {NASTY_COUNT, 1, 2, 2, pixels, NASTY};
    ck_assert_msg(plot_image_grid(&target, "grid", NULL, &grid, &err), "%s", err.message);
    if (render) ck_assert(is_png(dir, "points.png") && is_png(dir, "grid.png"));
}
END_TEST

/* gnuplot is run without a shell, so a directory and stem with spaces and
 * quotes are passed through untouched. */
START_TEST(test_plot_path_with_spaces_and_quotes) {
    char dir[700];
    snprintf(dir, sizeof dir, "%s/my \"runs\" dir", test_temp_dir("plot"));
    PlotTarget target = {dir, PLOT_TERM_PNG};
    static const float x[3] = {1, 2, 3};
    PlotSeries series = {"s", x, x, 3};
    Error err;
    ck_assert_msg(plot_lines(&target, "it's a plot", NULL, &series, 1, &err), "%s", err.message);
    ck_assert(file_exists(dir, "it's a plot.gp"));
    ck_assert(file_exists(dir, "it's a plot.dat"));
    if (gnuplot_or_skip("test_plot_path_with_spaces_and_quotes"))
        ck_assert(is_png(dir, "it's a plot.png"));
}
END_TEST

START_TEST(test_plot_dumb_draws_ascii_on_stdout) {
    if (!gnuplot_or_skip("test_plot_dumb_draws_ascii_on_stdout")) return;
    const char *dir = test_temp_dir("plot");
    char path[700];
    snprintf(path, sizeof path, "%s/stdout.txt", dir);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    ck_assert_ptr_nonnull(freopen(path, "w", stdout));
    Error err;
    bool heat_ok = sample_heatmap(dir, PLOT_TERM_DUMB, &err);
    bool lines_ok = heat_ok && sample_lines(dir, PLOT_TERM_DUMB, "loss", &err);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    ck_assert_msg(heat_ok && lines_ok, "%s", err.message);
    ck_assert(!file_exists(dir, "attention.png"));
    const char *text = read_text(dir, "stdout.txt");
    assert_contains(text, "attention");     /* the title */
    assert_contains(text, "@");             /* the cell with value 1, darkest shade */
    assert_contains(text, "validation");    /* the line plot's legend */
    assert_contains(text, "+-----");        /* a frame drawn in characters */
}
END_TEST

START_TEST(test_plot_without_gnuplot_writes_sources_and_notes) {
    const char *dir = test_temp_dir("plot");
    char empty_bin[700], data_dir[700], log[700];
    snprintf(empty_bin, sizeof empty_bin, "%s/bin", dir);
    snprintf(data_dir, sizeof data_dir, "%s/plots", dir);
    snprintf(log, sizeof log, "%s/stderr.txt", dir);
    ck_assert_int_eq(mkdir(empty_bin, 0777), 0);
    char *saved_path = xstrdup(getenv("PATH") != NULL ? getenv("PATH") : "");
    ck_assert_int_eq(setenv("PATH", empty_bin, 1), 0);
    ck_assert(!plot_gnuplot_available());
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    ck_assert_ptr_nonnull(freopen(log, "w", stderr));
    Error err;
    bool first = sample_lines(data_dir, PLOT_TERM_PNG, "loss", &err);
    bool second = sample_heatmap(data_dir, PLOT_TERM_PNG, &err);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    setenv("PATH", saved_path, 1); /* matters under CK_FORK=no */
    free(saved_path);
    ck_assert(first && second);
    ck_assert(file_exists(data_dir, "loss.gp") && file_exists(data_dir, "loss.dat"));
    ck_assert(!file_exists(data_dir, "loss.png"));
    char expected[1024];
    snprintf(expected, sizeof expected,
             "tinyzoo: gnuplot not found; wrote %s/loss.gp and .dat (install gnuplot-nox to "
             "render PNG)\n", data_dir);
    /* Said once, not once per plot. */
    ck_assert_str_eq(read_text(dir, "stderr.txt"), expected);
}
END_TEST

/* A gnuplot that fails (here a stand-in that draws half a picture and exits
 * 3) is an Error naming the script, and the partial PNG is removed. */
START_TEST(test_plot_gnuplot_failure_is_an_error) {
    const char *dir = test_temp_dir("plot");
    char bin[700], fake[760], plots[700];
    snprintf(bin, sizeof bin, "%s/bin", dir);
    snprintf(fake, sizeof fake, "%s/gnuplot", bin);
    snprintf(plots, sizeof plots, "%s/plots", dir);
    ck_assert_int_eq(mkdir(bin, 0777), 0);
    FILE *script = fopen(fake, "w");
    ck_assert_ptr_nonnull(script);
    fputs("#!/bin/sh\nfor a; do last=$a; done\necho partial > \"${last%.gp}.png\"\nexit 3\n",
          script);
    fclose(script);
    ck_assert_int_eq(chmod(fake, 0755), 0);
    char *saved_path = xstrdup(getenv("PATH") != NULL ? getenv("PATH") : "");
    ck_assert_int_eq(setenv("PATH", bin, 1), 0);
    Error err;
    bool lines_ok = sample_lines(plots, PLOT_TERM_PNG, "loss", &err);
    Error heat_err;
    bool heat_ok = sample_heatmap(plots, PLOT_TERM_DUMB, &heat_err);
    setenv("PATH", saved_path, 1); /* matters under CK_FORK=no */
    free(saved_path);
    ck_assert(!lines_ok);
    assert_contains(err.message, "loss.gp");
    assert_contains(err.message, "exit status 3");
    ck_assert(!file_exists(plots, "loss.png"));
    ck_assert(!heat_ok);
    assert_contains(heat_err.message, "attention.gp");
}
END_TEST

/* A directory that cannot exist (its parent is a regular file): an Error,
 * and nothing is left behind. */
START_TEST(test_plot_unwritable_location) {
    const char *dir = test_temp_dir("plot");
    char blocker[700], target_dir[760];
    snprintf(blocker, sizeof blocker, "%s/not-a-dir", dir);
    FILE *file = fopen(blocker, "w");
    ck_assert_ptr_nonnull(file);
    fclose(file);
    snprintf(target_dir, sizeof target_dir, "%s/plots", blocker);
    Error err;
    err.message[0] = '\0';
    ck_assert(!sample_lines(target_dir, PLOT_TERM_PNG, "loss", &err));
    assert_contains(err.message, "not-a-dir");
    ck_assert(!sample_heatmap(target_dir, PLOT_TERM_NONE, &err));
    ck_assert(!sample_scatter(target_dir, PLOT_TERM_NONE, false, &err));
    ck_assert(!sample_grid(target_dir, PLOT_TERM_NONE, &err));
    ck_assert_int_eq(count_entries(dir), 1); /* only the blocking file */
}
END_TEST

START_TEST(test_plot_term_parse) {
    PlotTerm term = PLOT_TERM_PNG;
    ck_assert(plot_term_parse("dumb", &term));
    ck_assert_int_eq(term, PLOT_TERM_DUMB);
    ck_assert(plot_term_parse("none", &term));
    ck_assert_int_eq(term, PLOT_TERM_NONE);
    ck_assert(plot_term_parse("png", &term));
    ck_assert_int_eq(term, PLOT_TERM_PNG);
    ck_assert(!plot_term_parse("PNG", &term));
    ck_assert(!plot_term_parse("", &term));
}
END_TEST

Suite *plot_suite(void) {
    Suite *suite = suite_create("plot");
    TCase *sources = tcase_create("sources");
    tcase_add_test(sources, test_plot_lines_sources);
    tcase_add_test(sources, test_plot_lines_skips_empty_series_and_rejects_all_empty);
    tcase_add_test(sources, test_plot_heatmap_sources);
    tcase_add_test(sources, test_plot_scatter_sources);
    tcase_add_test(sources, test_plot_scatter_without_classes);
    tcase_add_test(sources, test_plot_image_grid_sources);
    tcase_add_test(sources, test_plot_term_parse);
    tcase_add_test(sources, test_plot_unwritable_location);
    suite_add_tcase(suite, sources);
    /* gnuplot runs: allow time for a slow machine under sanitizers. */
    TCase *render = tcase_create("render");
    tcase_set_timeout(render, 60);
    tcase_add_test(render, test_plot_heatmap_large_unlabelled);
    tcase_add_test(render, test_plot_png_every_kind);
    tcase_add_test(render, test_plot_nasty_labels_render);
    tcase_add_test(render, test_plot_path_with_spaces_and_quotes);
    tcase_add_test(render, test_plot_dumb_draws_ascii_on_stdout);
    tcase_add_test(render, test_plot_without_gnuplot_writes_sources_and_notes);
    tcase_add_test(render, test_plot_gnuplot_failure_is_an_error);
    suite_add_tcase(suite, render);
    return suite;
}
