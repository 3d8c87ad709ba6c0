/* common/plot.c: plots as a data file plus a gnuplot script, then rendered.
 *
 * Read in this order:
 *   1. files      the .dat and .gp are written to temporary names and renamed
 *                 into place, so an error never leaves a half-written plot;
 *   2. strings    how text is embedded in a gnuplot script safely;
 *   3. preamble   the part every script shares (terminal, output, labels);
 *   4. the four kinds: lines, heatmap, scatter, image grid;
 *   5. rendering  running gnuplot without a shell and checking its status.
 *
 * Shapes: R, C = rows and columns of a matrix; N = points; K = classes;
 * G = rows x cols images of H x W pixels.
 *
 * Why a script and not a C plotting library: the script is the plot's
 * source.  A student can open <stem>.gp, change a colour or an axis, and run
 * `gnuplot <stem>.gp` again, without recompiling or retraining.
 */
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

enum { PLOT_PATH_MAX = 4096 };

/* Ten distinguishable colours (the "tab10" palette that matplotlib made
 * familiar), cycled for series and classes. */
static const unsigned CLASS_COLORS[10] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                          0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};
enum { CLASS_COLOR_COUNT = 10 };

bool plot_term_parse(const char *text, PlotTerm *term) {
    static const char *const names[] = {"png", "dumb", "none"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(text, names[i]) == 0) {
            *term = (PlotTerm)i;
            return true;
        }
    }
    return false;
}

bool plot_gnuplot_available(void) {
    const char *path = getenv("PATH");
    if (path == NULL) return false;
    /* Walk PATH the way execvp does: ':'-separated, empty entry = ".". */
    while (true) {
        const char *end = strchr(path, ':');
        size_t length = end != NULL ? (size_t)(end - path) : strlen(path);
        char candidate[PLOT_PATH_MAX];
        int written = length == 0 ? snprintf(candidate, sizeof candidate, "./gnuplot")
                                  : snprintf(candidate, sizeof candidate, "%.*s/gnuplot",
                                             (int)length, path);
        struct stat info;
        if (written > 0 && (size_t)written < sizeof candidate &&
            stat(candidate, &info) == 0 && S_ISREG(info.st_mode) &&
            access(candidate, X_OK) == 0)
            return true;
        if (end == NULL) return false;
        path = end + 1;
    }
}

/* ==== 1. Files written atomically ========================================== */

/* A file being written under "<final>.tmp"; renamed to <final> on commit. */
typedef struct {
    char final_path[PLOT_PATH_MAX];
    char temp_path[PLOT_PATH_MAX + 8];
    FILE *file;
    bool committed;
} PendingFile;

static bool pending_open(PendingFile *pending, const char *dir, const char *stem,
                         const char *extension, Error *err) {
    pending->file = NULL;
    pending->committed = false;
    int length = snprintf(pending->final_path, sizeof pending->final_path, "%s/%s.%s", dir,
                          stem, extension);
    if (length < 0 || (size_t)length >= sizeof pending->final_path)
        return error_set(err, "%s/%s.%s: path too long", dir, stem, extension);
    snprintf(pending->temp_path, sizeof pending->temp_path, "%s.tmp", pending->final_path);
    pending->file = fopen(pending->temp_path, "w");
    if (pending->file == NULL)
        return error_set(err, "%s: cannot create: %s", pending->temp_path, strerror(errno));
    return true;
}

/* Closes and renames into place; any write error seen so far (a full disk)
 * shows up here, through ferror and fclose. */
static bool pending_commit(PendingFile *pending, Error *err) {
    bool write_failed = ferror(pending->file) != 0;
    int saved_errno = errno;
    if (fclose(pending->file) != 0) {
        write_failed = true;
        saved_errno = errno;
    }
    pending->file = NULL;
    if (write_failed) {
        remove(pending->temp_path);
        return error_set(err, "%s: write failed: %s", pending->final_path,
                         strerror(saved_errno));
    }
    if (rename(pending->temp_path, pending->final_path) != 0) {
        saved_errno = errno;
        remove(pending->temp_path);
        return error_set(err, "%s: cannot rename into place: %s", pending->final_path,
                         strerror(saved_errno));
    }
    pending->committed = true;
    return true;
}

/* Undoes whatever exists: the open temporary, or the committed file. */
static void pending_discard(PendingFile *pending) {
    if (pending->file != NULL) {
        fclose(pending->file);
        pending->file = NULL;
        remove(pending->temp_path);
    }
    if (pending->committed) remove(pending->final_path);
    pending->committed = false;
}

/* The two sources of one plot. */
typedef struct {
    const PlotTarget *target;
    const char *stem;
    PendingFile data;   /* <stem>.dat */
    PendingFile script; /* <stem>.gp  */
} PlotFiles;

static bool plot_files_open(PlotFiles *files, const PlotTarget *target, const char *stem,
                            Error *err) {
    /* The stem is chosen by the program, not the user: a bad one is a bug. */
    if (stem == NULL || stem[0] == '\0' || strchr(stem, '/') != NULL)
        fatal("plot: stem '%s' must be a non-empty file name without '/'",
              stem != NULL ? stem : "(null)");
    if (target == NULL || target->dir == NULL) fatal("plot: no target directory");
    files->target = target;
    files->stem = stem;
    if (!make_directory(target->dir, err)) return false;
    if (!pending_open(&files->data, target->dir, stem, "dat", err)) return false;
    if (!pending_open(&files->script, target->dir, stem, "gp", err)) {
        pending_discard(&files->data);
        return false;
    }
    return true;
}


/* Puts both sources in place, then renders them. */
static bool plot_files_finish(PlotFiles *files, Error *err) {
    if (!pending_commit(&files->data, err)) {
        pending_discard(&files->script);
        return false;
    }
    if (!pending_commit(&files->script, err)) {
        pending_discard(&files->data);
        return false;
    }
    return plot_render(files->target, files->stem, err);
}

/* Data values: %.9g round-trips a float; gnuplot reads NaN as "no value". */
static void put_number(FILE *out, double value) {
    if (isfinite(value))
        fprintf(out, "%.9g", value);
    else
        fputs("NaN", out);
}

/* ==== 2. Strings inside a gnuplot script ===================================== */

/* How a string is used decides what must be escaped. */
typedef enum {
    TEXT_PLAIN,     /* titles, axis labels, legend entries                   */
    TEXT_TIC_LABEL, /* gnuplot treats tic labels as printf formats: '%' → '%%' */
    TEXT_TOKEN      /* a tic label that is a token: whitespace made visible,
                     * ' ' as a middle dot, newline and tab as \n and \t  */
} TextUse;

/* Writes `text` as a double-quoted gnuplot string.  Inside double quotes
 * gnuplot would run `command` between backquotes, and it reads backslash
 * escapes, so \ " and ` are written as escapes (` as its octal code \140).
 * (Single quotes expand nothing, but gnuplot cannot read a string that
 * starts or ends with the escaped quote '' they need.)  Enhanced-text markup
 * (_ ^ @ & { }) is disabled by `noenhanced` in the preamble.  A newline would
 * end the command, so control characters never reach the script. */
static void put_string(FILE *out, const char *text, TextUse use) {
    fputc('"', out);
    for (const char *c = text; *c != '\0'; c++) {
        unsigned char byte = (unsigned char)*c;
        /* A middle dot for a space: symbols such as the open box U+2423
         * come out rotated on the y axis of pngcairo; a dot looks the same
         * either way. */
        if (use == TEXT_TOKEN && byte == ' ')
            fputs("\xc2\xb7", out); /* · */
        else if (use == TEXT_TOKEN && byte == '\n')
            fputs("\\\\n", out); /* shown as \n */
        else if (use == TEXT_TOKEN && byte == '\t')
            fputs("\\\\t", out); /* shown as \t */
        else if (byte < 0x20 || byte == 0x7f)
            fputc(' ', out);
        else if (byte == '\\' || byte == '"')
            fprintf(out, "\\%c", byte);
        else if (byte == '`')
            fputs("\\140", out);
        else if (byte == '%' && use != TEXT_PLAIN)
            fputs("%%", out);
        else
            fputc(*c, out);
    }
    fputc('"', out);
}

/* For # comments in the .dat header: one line, nothing hidden. */
static void put_comment_text(FILE *out, const char *text) {
    for (const char *c = text; *c != '\0'; c++) {
        unsigned char byte = (unsigned char)*c;
        fputc(byte < 0x20 || byte == 0x7f ? ' ' : *c, out);
    }
}

/* `set xtics ('a' 0, 'b' 1, ...)`, several labels per line for reading. */
static void put_tic_list(FILE *gp, const char *axis, const char *const *labels, int count,
                         double first_position, double step, TextUse use) {
    fprintf(gp, "set %s (", axis);
    for (int i = 0; i < count; i++) {
        if (i > 0) fputs(i % 8 == 0 ? ", \\\n    " : ", ", gp);
        put_string(gp, labels[i], use);
        fprintf(gp, " %g", first_position + step * i);
    }
    fputs(")\n", gp);
}

static int longest_label(const char *const *labels, int count) {
    int longest = 0;
    for (int i = 0; labels != NULL && i < count; i++) {
        int length = (int)strlen(labels[i]);
        if (length > longest) longest = length;
    }
    return longest;
}

/* ==== 3. The preamble every script shares ==================================== */

typedef struct {
    int png_width, png_height;   /* pixels, pngcairo                 */
    int text_width, text_height; /* characters, dumb terminal        */
} PlotSize;

static int clamp_int(int value, int low, int high) {
    return value < low ? low : value > high ? high : value;
}

/* The terminal is chosen from the variable tz_term, so the same script
 * writes a PNG by default and ASCII art with -e "tz_term='dumb'". */
static void put_preamble(FILE *gp, const char *stem, const char *kind, PlotSize size,
                         const PlotAxes *axes) {
    fprintf(gp, "# %s.gp: %s, written by tinyzoo.\n", stem, kind);
    fprintf(gp, "# Re-plot: `gnuplot %s.gp` in this directory writes %s.png;\n", stem, stem);
    fprintf(gp, "# `gnuplot -e \"tz_term='dumb'\" %s.gp` draws it as text instead.\n", stem);
    fputs("if (!exists(\"tz_term\")) tz_term = \"png\"\n", gp);
    fputs("set encoding utf8\ndatafile = ", gp);
    put_string(gp, stem, TEXT_PLAIN);
    fputs(" . '.dat'\n", gp);
    fputs("if (tz_term eq \"png\") {\n", gp);
    fprintf(gp, "    set terminal pngcairo size %d,%d font 'Sans,11' noenhanced\n",
            size.png_width, size.png_height);
    fputs("    set output ", gp);
    put_string(gp, stem, TEXT_PLAIN);
    fputs(" . '.png'\n", gp);
    fputs("} else {\n", gp);
    fprintf(gp, "    set terminal dumb size %d,%d\n", size.text_width, size.text_height);
    fputs("    set output\n}\n", gp);
    /* Titles and tokens are shown exactly as written: '_' or '^' in a label
     * must not become a subscript or superscript. */
    fputs("set termoption noenhanced\n", gp);
    if (axes == NULL) return;
    if (axes->title != NULL) {
        fputs("set title ", gp);
        put_string(gp, axes->title, TEXT_PLAIN);
        fputs(" font ',13'\n", gp);
    }
    if (axes->x_label != NULL) {
        fputs("set xlabel ", gp);
        put_string(gp, axes->x_label, TEXT_PLAIN);
        fputc('\n', gp);
    }
    if (axes->y_label != NULL) {
        /* Text cannot be rotated on the dumb terminal: a y label written
         * across the tic labels would hide them, so it goes above the axis. */
        fputs("if (tz_term eq \"png\") {\n    set ylabel ", gp);
        put_string(gp, axes->y_label, TEXT_PLAIN);
        fputs("\n} else {\n    set label 1000 ", gp);
        put_string(gp, axes->y_label, TEXT_PLAIN);
        fputs(" at graph 0, graph 1 offset 0,1 left\n    set title offset 0,1\n}\n", gp);
    }
}

/* One `set linetype` per colour, so series and classes share colours. */
static void put_class_linetypes(FILE *gp) {
    for (int i = 0; i < CLASS_COLOR_COUNT; i++)
        fprintf(gp, "set linetype %d lc rgb '#%06x' lw 2 pt 7 ps 0.8\n", i + 1,
                CLASS_COLORS[i]);
    fprintf(gp, "set linetype cycle %d\n", CLASS_COLOR_COUNT);
}

/* ==== 4a. Line plots =========================================================== */

/* One data block per series, blocks separated by two blank lines, so series
 * of different lengths and x values coexist: block i is `index i`. */
static int write_lines_data(FILE *dat, const PlotSeries *series, int series_count) {
    fputs("# line plot: one block per series (gnuplot `index` i), blocks separated by\n"
          "# two blank lines.  Columns: x y\n", dat);
    int blocks = 0;
    for (int s = 0; s < series_count; s++) {
        if (series[s].count <= 0) continue; /* an empty block would stop gnuplot */
        if (blocks > 0) fputs("\n\n", dat);
        fprintf(dat, "# index %d: ", blocks);
        put_comment_text(dat, series[s].name != NULL ? series[s].name : "(unnamed)");
        fputc('\n', dat);
        for (int i = 0; i < series[s].count; i++) {
            put_number(dat, series[s].x[i]);
            fputc(' ', dat);
            put_number(dat, series[s].y[i]);
            fputc('\n', dat);
        }
        blocks++;
    }
    return blocks;
}

static void write_lines_script(FILE *gp, const PlotSeries *series, int series_count,
                               const PlotAxes *axes) {
    put_class_linetypes(gp);
    fputs("set border 3\nset tics nomirror out\n", gp);
    /* The legend's place is the caller's choice (gnuplot `set key` words),
     * since only the caller knows where its curves leave room. */
    const char *legend = axes != NULL && axes->legend != NULL ? axes->legend : "top right";
    for (const char *c = legend; *c; c++)
        if (!(*c == ' ' || (*c >= 'a' && *c <= 'z')))
            fatal("plot_lines: legend position '%s' must be gnuplot words like 'bottom left'", legend);
    fprintf(gp, "set key %s\n", legend);
    /* A grid and a boxed key help in the PNG but clutter ASCII art. */
    fputs("if (tz_term eq \"png\") {\n    set grid lc rgb '#e0e0e0'\n"
          "    set key box opaque\n}\n", gp);
    if (axes != NULL && axes->log_y) fputs("set logscale y\n", gp);
    fputs("plot", gp);
    int block = 0;
    for (int s = 0; s < series_count; s++) {
        if (series[s].count <= 0) continue;
        /* Short series get point markers, so single values are visible. */
        const char *style = series[s].count <= 30 ? "linespoints" : "lines";
        fprintf(gp, "%sdatafile index %d using 1:2 with %s lt %d title ",
                block > 0 ? ", \\\n    " : " ", block, style, s + 1);
        put_string(gp, series[s].name != NULL ? series[s].name : "", TEXT_PLAIN);
        block++;
    }
    fputc('\n', gp);
}

bool plot_lines(const PlotTarget *target, const char *stem, const PlotAxes *axes,
                const PlotSeries *series, int series_count, Error *err) {
    int points = 0;
    for (int s = 0; s < series_count; s++) {
        if (series[s].count > 0 && (series[s].x == NULL || series[s].y == NULL))
            fatal("plot_lines %s: series %d has %d points but no x or y", stem, s,
                  series[s].count);
        if (series[s].count > 0) points += series[s].count;
    }
    if (points == 0) return error_set(err, "%s: nothing to plot (every series is empty)", stem);
    PlotFiles files;
    if (!plot_files_open(&files, target, stem, err)) return false;
    write_lines_data(files.data.file, series, series_count);
    PlotSize size = {800, 600, 100, 30};
    put_preamble(files.script.file, stem, "line plot", size, axes);
    write_lines_script(files.script.file, series, series_count, axes);
    return plot_files_finish(&files, err);
}

/* ==== 4b. Heatmaps ============================================================= */

/* The matrix as gnuplot's `matrix` format: one line per row, so the file
 * looks like the matrix it holds. */
static void write_heatmap_data(FILE *dat, const HeatmapData *data) {
    fprintf(dat, "# heatmap: %d rows x %d columns; line r holds row r (drawn at the top\n"
                 "# first), value c on it is column c.  Read with `matrix`.\n",
            data->rows, data->cols);
    const char *const *axis_labels[2] = {data->row_labels, data->col_labels};
    int counts[2] = {data->rows, data->cols};
    for (int axis = 0; axis < 2; axis++) {
        if (axis_labels[axis] == NULL) continue;
        fprintf(dat, "# %s labels:", axis == 0 ? "row" : "column");
        for (int i = 0; i < counts[axis]; i++) {
            fputs(" [", dat);
            put_comment_text(dat, axis_labels[axis][i]);
            fputc(']', dat);
        }
        fputc('\n', dat);
    }
    for (int r = 0; r < data->rows; r++) {
        for (int c = 0; c < data->cols; c++) {
            if (c > 0) fputc(' ', dat);
            put_number(dat, data->values[(size_t)r * data->cols + c]);
        }
        fputc('\n', dat);
    }
}

/* The range of the finite values, for the ASCII shading. */
static void finite_range(const float *values, size_t count, double *low, double *high) {
    *low = INFINITY;
    *high = -INFINITY;
    for (size_t i = 0; i < count; i++) {
        if (!isfinite(values[i])) continue;
        if (values[i] < *low) *low = values[i];
        if (values[i] > *high) *high = values[i];
    }
    if (*low > *high) *low = *high = 0.0;
}

/* On the dumb terminal an image cannot be drawn, so each cell becomes one
 * character, darker for larger values: " .:-=+*#%@". */
static void put_ascii_shading(FILE *gp, double low, double high) {
    double span = high > low ? high - low : 1.0;
    fprintf(gp, "    shades = ' .:-=+*#%%@'\n");
    fprintf(gp, "    shade_index(v) = 1 + int(9.999 * (v - (%.9g)) / %.9g)\n", low, span);
    fputs("    shade(v) = (v != v) ? '?' : substr(shades, shade_index(v), shade_index(v))\n",
          gp);
}

/* Axis tics: the labels when given, else integer indices. */
static void put_matrix_tics(FILE *gp, const char *axis, const char *const *labels, int count,
                            bool rotate, int font_points) {
    if (labels != NULL) {
        put_tic_list(gp, axis, labels, count, 0.0, 1.0, TEXT_TOKEN);
    } else {
        int step = count <= 16 ? 1 : count <= 64 ? 4 : 16;
        fprintf(gp, "set %s 0,%d,%d\n", axis, step, count - 1);
    }
    fprintf(gp, "set %s out nomirror scale 0.5 font ',%d'%s\n", axis, font_points,
            rotate ? " rotate by 90 right" : "");
}

static PlotSize heatmap_size(const HeatmapData *data, int *font_points) {
    int largest = data->rows > data->cols ? data->rows : data->cols;
    int cell = clamp_int(640 / largest, 7, 48); /* pixels per cell */
    *font_points = clamp_int(cell * 7 / 10, 6, 11);
    int col_text = longest_label(data->col_labels, data->cols) * *font_points;
    int row_text = longest_label(data->row_labels, data->rows) * *font_points;
    PlotSize size;
    size.png_width = clamp_int(data->cols * cell + 240 + row_text, 480, 4000);
    size.png_height =
        clamp_int(data->rows * cell + 140 + (col_text > 3 * *font_points ? col_text : 0), 360,
                  4000);
    size.text_width = clamp_int(2 * data->cols + 24, 60, 240);
    size.text_height = clamp_int(data->rows + 8, 20, 140);
    return size;
}

static void write_heatmap_script(FILE *gp, const HeatmapData *data, int font_points) {
    double low, high;
    finite_range(data->values, (size_t)data->rows * data->cols, &low, &high);
    /* Word labels on x are rotated so they do not run into each other. */
    bool rotate_x = longest_label(data->col_labels, data->cols) > 2;
    put_matrix_tics(gp, "xtics", data->col_labels, data->cols, rotate_x, font_points);
    put_matrix_tics(gp, "ytics", data->row_labels, data->rows, false, font_points);
    fprintf(gp, "set xrange [-0.5:%g]\n", data->cols - 0.5);
    fprintf(gp, "# Reversed y range: row 0 at the top, as attention maps are read.\n");
    fprintf(gp, "set yrange [%g:-0.5]\n", data->rows - 0.5);
    fputs("unset key\n", gp);
    fputs("if (tz_term eq \"png\") {\n", gp);
    /* Square cells, unless the matrix is so long and thin (one query row
     * over many keys) that square cells would be slivers. */
    if (data->rows * 4 >= data->cols && data->cols * 4 >= data->rows)
        fputs("    set size ratio -1\n", gp);
    /* viridis: perceptually uniform, readable in grey and by most
     * colour-blind readers. */
    fputs("    set palette defined (0 '#440154', 1 '#3b528b', 2 '#21918c', 3 '#5ec962', "
          "4 '#fde725')\n", gp);
    fputs("    set colorbox\n", gp);
    if (data->rows > 1 && data->cols > 1) {
        fputs("    plot datafile matrix with image notitle\n", gp);
    } else {
        /* gnuplot draws no image one cell thick; boxes of 1 x 1 instead. */
        fputs("    set style fill solid noborder\n"
              "    plot datafile matrix using 1:2:(0.5):(0.5):3 with boxxyerror "
              "fillcolor palette notitle\n", gp);
    }
    fputs("} else {\n", gp);
    put_ascii_shading(gp, low, high);
    fputs("    plot datafile matrix using 1:2:(shade($3)) with labels notitle\n}\n", gp);
}

bool plot_heatmap(const PlotTarget *target, const char *stem, const PlotAxes *axes,
                  const HeatmapData *data, Error *err) {
    if (data->rows <= 0 || data->cols <= 0 || data->values == NULL)
        fatal("plot_heatmap %s: empty matrix (%d, %d)", stem, data->rows, data->cols);
    PlotFiles files;
    if (!plot_files_open(&files, target, stem, err)) return false;
    write_heatmap_data(files.data.file, data);
    int font_points;
    PlotSize size = heatmap_size(data, &font_points);
    put_preamble(files.script.file, stem, "heatmap", size, axes);
    write_heatmap_script(files.script.file, data, font_points);
    return plot_files_finish(&files, err);
}

/* ==== 4c. Scatter plots ======================================================== */

/* Block 0 (when there is a background) is the class grid as "x y class"
 * triples, one scan line per grid row; then one block per class. */
static int write_scatter_data(FILE *dat, const ScatterData *data, int classes) {
    fputs("# scatter plot.  Columns: x y class\n", dat);
    int block = 0;
    if (data->background != NULL) {
        fprintf(dat, "# index 0: background, %d x %d grid of predicted classes at cell\n"
                     "# centres, row 0 at y_min; one blank line between grid rows\n",
                data->background_rows, data->background_cols);
        double dx = (data->x_max - data->x_min) / data->background_cols;
        double dy = (data->y_max - data->y_min) / data->background_rows;
        for (int r = 0; r < data->background_rows; r++) {
            if (r > 0) fputc('\n', dat);
            for (int c = 0; c < data->background_cols; c++) {
                put_number(dat, data->x_min + (c + 0.5) * dx);
                fputc(' ', dat);
                put_number(dat, data->y_min + (r + 0.5) * dy);
                fprintf(dat, " %.9g\n", data->background[(size_t)r * data->background_cols + c]);
            }
        }
        block = 1;
    }
    for (int k = 0; k < classes; k++, block++) {
        fprintf(dat, "%s# index %d: class %d", block > 0 ? "\n\n" : "", block, k);
        if (data->class_names != NULL) {
            fputs(" ", dat);
            put_comment_text(dat, data->class_names[k]);
        }
        fputc('\n', dat);
        for (int i = 0; i < data->count; i++) {
            int point_class = data->classes != NULL ? data->classes[i] : 0;
            if (point_class != k) continue;
            put_number(dat, data->x[i]);
            fputc(' ', dat);
            put_number(dat, data->y[i]);
            fprintf(dat, " %d\n", point_class);
        }
    }
    return block;
}

/* A class's colour mixed with white, for the regions behind the points. */
static unsigned light_color(unsigned color) {
    unsigned light = 0;
    for (int shift = 0; shift <= 16; shift += 8) {
        unsigned channel = (color >> shift) & 0xff;
        light |= (channel + (255 - channel) * 7 / 10) << shift;
    }
    return light;
}

/* The background image: class k is a flat band [k, k+1] of the palette, and
 * cbrange [-0.5, K-0.5] puts class id k in the middle of band k. */
static void put_background_palette(FILE *gp, int classes) {
    fputs("set palette defined (", gp);
    for (int k = 0; k < classes; k++) {
        unsigned light = light_color(CLASS_COLORS[k % CLASS_COLOR_COUNT]);
        fprintf(gp, "%s%d '#%06x', %d '#%06x'", k > 0 ? ", " : "", k, light, k + 1, light);
    }
    fprintf(gp, ")\nset cbrange [-0.5:%g]\nunset colorbox\n", classes - 0.5);
}

static void put_point_labels(FILE *gp, const ScatterData *data) {
    for (int i = 0; i < data->count; i++) {
        if (!isfinite(data->x[i]) || !isfinite(data->y[i])) continue;
        fputs("set label ", gp);
        put_string(gp, data->point_labels[i], TEXT_PLAIN);
        fprintf(gp, " at %.9g,%.9g offset 0.6,0.4 font ',9' tc rgb '#333333' front\n",
                data->x[i], data->y[i]);
    }
}

static void write_scatter_script(FILE *gp, const ScatterData *data, int classes) {
    put_class_linetypes(gp);
    fputs("set border 3\nset tics nomirror out\nset key outside right top\n", gp);
    /* In the PNG, classes 0-9 are filled circles in the ten colours, 10-19
     * squares and 20+ triangles in the same colours, so no two classes look
     * alike; on the dumb terminal point type k is the letter A, B, C..., and
     * the background is drawn in lower case. */
    fputs("point_type(k) = (tz_term eq \"png\") ? (k < 10 ? 7 : (k < 20 ? 5 : 9)) : (k % 26) + 1\n",
          gp);
    fputs("region_letter(k) = substr('abcdefghijklmnopqrstuvwxyz', int(k) % 26 + 1, "
          "int(k) % 26 + 1)\n", gp);
    if (data->point_labels != NULL) put_point_labels(gp, data);
    if (data->background != NULL) put_background_palette(gp, classes);
    int block = 0;
    fputs("plot", gp);
    if (data->background != NULL) {
        /* The image is invisible on the dumb terminal, the letters are empty
         * in the PNG: each terminal draws the regions its own way. */
        fprintf(gp, " [%.9g:%.9g] [%.9g:%.9g] datafile index 0 using 1:2:3 with image "
                    "notitle, \\\n    datafile index 0 using 1:2:(tz_term eq \"png\" ? '' : "
                    "region_letter($3)) with labels notitle",
                data->x_min, data->x_max, data->y_min, data->y_max);
        block = 1;
    }
    for (int k = 0; k < classes; k++, block++) {
        fprintf(gp, "%sdatafile index %d using 1:2 with points lt %d pt point_type(%d) ",
                block > 0 ? ", \\\n    " : " ", block, k % CLASS_COLOR_COUNT + 1, k);
        if (data->classes == NULL) {
            fputs("notitle", gp);
            continue;
        }
        char fallback[32];
        snprintf(fallback, sizeof fallback, "class %d", k);
        fputs("title ", gp);
        put_string(gp, data->class_names != NULL ? data->class_names[k] : fallback,
                   TEXT_PLAIN);
    }
    fputc('\n', gp);
}

static void check_scatter(const char *stem, const ScatterData *data, int classes) {
    if (data->count < 0 || (data->count > 0 && (data->x == NULL || data->y == NULL)))
        fatal("plot_scatter %s: %d points without coordinates", stem, data->count);
    for (int i = 0; data->classes != NULL && i < data->count; i++)
        if (data->classes[i] < 0 || data->classes[i] >= classes)
            fatal("plot_scatter %s: point %d has class %d, outside [0, %d)", stem, i,
                  data->classes[i], classes);
    if (data->background != NULL && (data->background_rows <= 0 ||
                                      data->background_cols <= 0 ||
                                      !(data->x_max > data->x_min) ||
                                      !(data->y_max > data->y_min)))
        fatal("plot_scatter %s: background grid (%d, %d) over [%g, %g] x [%g, %g] is empty",
              stem, data->background_rows, data->background_cols, data->x_min, data->x_max,
              data->y_min, data->y_max);
}

bool plot_scatter(const PlotTarget *target, const char *stem, const PlotAxes *axes,
                  const ScatterData *data, Error *err) {
    int classes = data->classes != NULL && data->class_count > 0 ? data->class_count : 1;
    check_scatter(stem, data, classes);
    PlotFiles files;
    if (!plot_files_open(&files, target, stem, err)) return false;
    write_scatter_data(files.data.file, data, classes);
    PlotSize size = {900, 650, 100, 34};
    put_preamble(files.script.file, stem, "scatter plot", size, axes);
    write_scatter_script(files.script.file, data, classes);
    return plot_files_finish(&files, err);
}

/* ==== 4d. Image grids ========================================================== */

/* The images are laid out as one matrix, with a gap between neighbours
 * filled with GRID_GAP_VALUE: below every pixel value, so the palette can
 * give it its own colour (white) and the ASCII shading a blank. */
#define GRID_GAP_VALUE (-1.0)
typedef struct {
    int gap;          /* pixels between images                 */
    int total_rows;   /* rows*H + (rows-1)*gap                  */
    int total_cols;   /* cols*W + (cols-1)*gap                  */
} GridLayout;

static GridLayout grid_layout(const ImageGridData *data) {
    GridLayout layout;
    layout.gap = data->height >= 10 ? data->height / 10 : 1;
    layout.total_rows = data->rows * data->height + (data->rows - 1) * layout.gap;
    layout.total_cols = data->cols * data->width + (data->cols - 1) * layout.gap;
    return layout;
}

/* The value shown at composite pixel (y, x), GRID_GAP_VALUE in a gap. */
static double grid_pixel(const ImageGridData *data, GridLayout layout, int y, int x) {
    int cell_h = data->height + layout.gap, cell_w = data->width + layout.gap;
    int py = y % cell_h, px = x % cell_w;
    if (py >= data->height || px >= data->width) return GRID_GAP_VALUE;
    size_t image = (size_t)(y / cell_h) * data->cols + (size_t)(x / cell_w);
    return data->pixels[(image * data->height + py) * data->width + px];
}

static void write_grid_data(FILE *dat, const ImageGridData *data, GridLayout layout) {
    fprintf(dat, "# image grid: %d x %d images of %d x %d pixels, laid out as one\n"
                 "# %d x %d matrix (line = pixel row, top first), %g in the %d-pixel gaps.\n",
            data->rows, data->cols, data->height, data->width, layout.total_rows,
            layout.total_cols, GRID_GAP_VALUE, layout.gap);
    for (int y = 0; y < layout.total_rows; y++) {
        for (int x = 0; x < layout.total_cols; x++) {
            if (x > 0) fputc(' ', dat);
            put_number(dat, grid_pixel(data, layout, y, x));
        }
        fputc('\n', dat);
    }
}

static void write_grid_script(FILE *gp, const ImageGridData *data, GridLayout layout) {
    fprintf(gp, "set xrange [-0.5:%g]\nset yrange [%g:-0.5]\n", layout.total_cols - 0.5,
            layout.total_rows - 0.5);
    fputs("unset xtics\nunset key\nunset border\nunset colorbox\n", gp);
    if (data->row_labels != NULL) {
        /* One label at the middle of each row of images. */
        double step = data->height + layout.gap;
        put_tic_list(gp, "ytics", data->row_labels, data->rows, (data->height - 1) / 2.0,
                     step, TEXT_TIC_LABEL);
        fputs("set ytics scale 0 font ',12'\n", gp);
    } else {
        fputs("unset ytics\n", gp);
    }
    fputs("if (tz_term eq \"png\") {\n", gp);
    /* Grey from black (0) to white (1); the gaps (-1) white as the page. */
    fputs("    set size ratio -1\n    set cbrange [-1:1]\n"
          "    set palette defined (-1 'white', -0.001 'white', 0 'black', 1 'white')\n", gp);
    fputs("    plot datafile matrix with image notitle\n", gp);
    fputs("} else {\n", gp);
    put_ascii_shading(gp, 0.0, 1.0);
    fputs("    plot datafile matrix using 1:2:(shade($3 < 0 ? 0 : $3 > 1 ? 1 : $3)) "
          "with labels notitle\n}\n", gp);
}

bool plot_image_grid(const PlotTarget *target, const char *stem, const PlotAxes *axes,
                     const ImageGridData *data, Error *err) {
    if (data->rows <= 0 || data->cols <= 0 || data->height <= 0 || data->width <= 0 ||
        data->pixels == NULL)
        fatal("plot_image_grid %s: empty grid (%d x %d images of %d x %d)", stem, data->rows,
              data->cols, data->height, data->width);
    GridLayout layout = grid_layout(data);
    PlotFiles files;
    if (!plot_files_open(&files, target, stem, err)) return false;
    write_grid_data(files.data.file, data, layout);
    /* About 900 pixels across, whole pixels per image pixel. */
    int scale = clamp_int(900 / layout.total_cols, 1, 16);
    int label_width = 11 * longest_label(data->row_labels, data->rows);
    PlotSize size;
    size.png_width = clamp_int(layout.total_cols * scale + 120 + label_width, 480, 4000);
    size.png_height = clamp_int(layout.total_rows * scale + 120, 240, 4000);
    size.text_width = clamp_int(layout.total_cols + 16, 60, 240);
    size.text_height = clamp_int(layout.total_rows / 2 + 8, 20, 140);
    put_preamble(files.script.file, stem, "image grid", size, axes);
    write_grid_script(files.script.file, data, layout);
    return plot_files_finish(&files, err);
}

/* ==== 5. Rendering ============================================================= */

/* Runs `gnuplot args...` inside dir, without a shell: a stem with spaces or
 * quotes reaches gnuplot as one argument, untouched.  Returns the exit
 * status, or -1 when gnuplot could not be started or was killed. */
static int run_gnuplot(const char *dir, char *const *args) {
    /* Flush first: the child inherits our buffers' file descriptors, and
     * ASCII plots must appear after what we printed before them. */
    fflush(stdout);
    fflush(stderr);
    pid_t child = fork();
    if (child < 0) return -1;
    if (child == 0) {
        if (chdir(dir) != 0) _exit(126);
        execvp("gnuplot", args);
        _exit(127);
    }
    int status;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool plot_render(const PlotTarget *target, const char *stem, Error *err) {
    if (target->term == PLOT_TERM_NONE) return true;
    if (!plot_gnuplot_available()) {
        static bool noted = false; /* say it once per run, not once per plot */
        if (!noted)
            fprintf(stderr, "tinyzoo: gnuplot not found; wrote %s/%s.gp and .dat "
                            "(install gnuplot-nox to render PNG)\n", target->dir, stem);
        noted = true;
        return true;
    }
    char script[PLOT_PATH_MAX];
    snprintf(script, sizeof script, "./%s.gp", stem); /* "./": a stem may start with '-' */
    char term_setting[] = "tz_term='dumb'";
    char program[] = "gnuplot", option_e[] = "-e";
    char *png_args[] = {program, script, NULL};
    char *dumb_args[] = {program, option_e, term_setting, script, NULL};
    int status = run_gnuplot(target->dir, target->term == PLOT_TERM_DUMB ? dumb_args : png_args);
    if (status == 0) return true;
    if (target->term == PLOT_TERM_PNG) {
        /* Never leave a half-drawn picture that looks like a result. */
        char png[PLOT_PATH_MAX + 8];
        snprintf(png, sizeof png, "%s/%s.png", target->dir, stem);
        remove(png);
    }
    return error_set(err, "gnuplot failed on %s/%s.gp (exit status %d); see its message above",
                     target->dir, stem, status);
}
