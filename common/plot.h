/* common/plot.h: plots as data + gnuplot script, rendered when possible.
 *
 * Every plot <dir>/<stem> is written as
 *   <stem>.dat   the numbers, whitespace-separated, with a # header
 *   <stem>.gp    a gnuplot script that reads <stem>.dat and writes <stem>.png
 * so a student can edit the script and re-plot with `gnuplot <stem>.gp`
 * (run inside <dir>).  Then, depending on the PlotTerm:
 *   PLOT_TERM_PNG   gnuplot renders <stem>.png (pngcairo), if installed;
 *                   otherwise a one-time note says only the sources exist;
 *   PLOT_TERM_DUMB  gnuplot draws the same plot as ASCII art on stdout;
 *   PLOT_TERM_NONE  only the .dat and .gp files are written.
 */
#ifndef TINYZOO_PLOT_H
#define TINYZOO_PLOT_H

#include <stdbool.h>

#include "util.h"

typedef enum { PLOT_TERM_PNG, PLOT_TERM_DUMB, PLOT_TERM_NONE } PlotTerm;

/* "png" | "dumb" | "none" */
bool plot_term_parse(const char *text, PlotTerm *term);
/* True when a gnuplot executable is on PATH. */
bool plot_gnuplot_available(void);

typedef struct {
    const char *dir; /* output directory (created if missing) */
    PlotTerm term;
} PlotTarget;

/* One curve of a line plot. */
typedef struct {
    const char *name;  /* legend entry                 */
    const float *x;    /* (count)                      */
    const float *y;    /* (count)                      */
    int count;
} PlotSeries;

typedef struct {
    const char *title;
    const char *x_label;
    const char *y_label;
    bool log_y;         /* logarithmic y axis (losses)  */
    /* Line plots: where the legend goes, in gnuplot's `set key` words
     * ("top right", "bottom right", "outside right", ...); NULL = top right. */
    const char *legend;
} PlotAxes;

/* Several curves on one chart (loss curves, accuracy against length). */
bool plot_lines(const PlotTarget *target, const char *stem, const PlotAxes *axes,
                const PlotSeries *series, int series_count, Error *err);

/* A (rows, cols) matrix as a coloured grid, row 0 at the top, with optional
 * text labels for each row and column (tokens on attention maps). */
typedef struct {
    int rows, cols;
    const float *values;            /* (rows, cols)                 */
    const char *const *row_labels;  /* (rows) or NULL               */
    const char *const *col_labels;  /* (cols) or NULL               */
} HeatmapData;
bool plot_heatmap(const PlotTarget *target, const char *stem, const PlotAxes *axes,
                  const HeatmapData *data, Error *err);

/* Points coloured by class, optionally labelled, optionally over a
 * background grid of class ids (a classifier's decision regions). */
typedef struct {
    int count;
    const float *x;                  /* (count)                                 */
    const float *y;                  /* (count)                                 */
    const int *classes;              /* (count) in [0, class_count), or NULL    */
    int class_count;
    const char *const *class_names;  /* (class_count) legend, or NULL           */
    const char *const *point_labels; /* (count) text beside each point, or NULL */
    /* Optional background: (background_rows, background_cols) class ids over
     * the rectangle [x_min, x_max] x [y_min, y_max]; NULL for none.  Cell
     * (r, c) is drawn centred on x_min + (c + 0.5) * (x_max - x_min) / cols,
     * y_min + (r + 0.5) * (y_max - y_min) / rows: row 0 at the bottom. */
    const float *background;
    int background_rows, background_cols;
    float x_min, x_max, y_min, y_max;
} ScatterData;
bool plot_scatter(const PlotTarget *target, const char *stem, const PlotAxes *axes,
                  const ScatterData *data, Error *err);

/* A grid of grey images, values in [0,1] (reconstructions, samples). */
typedef struct {
    int rows, cols;                  /* grid of rows x cols images           */
    int height, width;               /* pixels of each image                 */
    const float *pixels;             /* (rows*cols, height, width)           */
    const char *const *row_labels;   /* (rows) e.g. "original", or NULL      */
} ImageGridData;
bool plot_image_grid(const PlotTarget *target, const char *stem, const PlotAxes *axes,
                     const ImageGridData *data, Error *err);

/* For plots drawn by a model's own script: renders <dir>/<stem>.gp, which
 * the caller wrote (reading tz_term as the scripts above do), as the
 * target's PlotTerm says.  Same messages and cleanup as the plots above. */
bool plot_render(const PlotTarget *target, const char *stem, Error *err);

#endif
