/* autoencoder/glyphs.c: the built-in data set.  Digits 0-9 and four shapes
 * from a small bitmap font written for tinyzoo, drawn like handwriting:
 * every image gets its own shift, scale, rotation, slant and pen width, and
 * some pixel noise.  Nothing is downloaded, and the same seed gives the
 * same images.
 *
 * Legend: N images, S image side (16 or 28 pixels), R x C the font's cells
 * (7 rows, up to 7 columns).
 *
 * How a glyph is drawn:
 *   1. The bitmap's "on" cells become the nodes of a pen path: every pair of
 *      on cells that touch (sideways, up-down or diagonally) is a stroke.
 *   2. An affine map (scale, rotation, slant, shift) takes font cells to
 *      pixels; it maps strokes to strokes.
 *   3. Each stroke is drawn as a capsule (all points within the pen radius
 *      of the segment), with a one-pixel soft edge so it is anti-aliased; a
 *      pixel keeps the darkest ink of any stroke over it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoencoder.h"

enum { FONT_ROWS = 7, FONT_COLS = 7 };

typedef struct {
    const char *name;
    const char *rows[FONT_ROWS]; /* '#' ink, '.' paper; all rows one width */
} Glyph;

/* Digits are 5 cells wide, shapes 7: a shape drawn in 5 columns would be too
 * close to a digit (a circle to a 0) to make a fair anomaly. */
static const Glyph FONT[GLYPH_CLASSES] = {
    {"0", {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
    {"1", {"..#..", ".##..", "#.#..", "..#..", "..#..", "..#..", "#####"}},
    {"2", {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"}},
    {"3", {"####.", "....#", "....#", ".###.", "....#", "....#", "####."}},
    {"4", {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."}},
    {"5", {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."}},
    {"6", {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."}},
    {"7", {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."}},
    {"8", {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."}},
    {"9", {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."}},
    {"circle", {"..###..", ".#...#.", "#.....#", "#.....#", "#.....#", ".#...#.", "..###.."}},
    {"square", {"#######", "#.....#", "#.....#", "#.....#", "#.....#", "#.....#", "#######"}},
    {"triangle", {"...#...", "..#.#..", "..#.#..", ".#...#.", ".#...#.", "#.....#", "#######"}},
    {"cross", {"#.....#", ".#...#.", "..#.#..", "...#...", "..#.#..", ".#...#.", "#.....#"}},
};

/* Where a glyph's font cell (column u, row v) lands in the image. */
typedef struct {
    float a, b, c, d; /* the linear part: x = a u + b v + tx, y = c u + d v + ty */
    float tx, ty;
} Affine;

/* Draws the capsule of a stroke from (x0,y0) to (x1,y1), pen radius r, into
 * image (S, S): ink = clamp(r + 1/2 - distance, 0, 1), max with what is there.
 * Only the pixels of the capsule's bounding box are visited. */
static void draw_stroke(float *image, int S, float x0, float y0, float x1, float y1, float r) {
    float reach = r + 1.0f;
    int col_lo = (int)floorf(fminf(x0, x1) - reach), col_hi = (int)ceilf(fmaxf(x0, x1) + reach);
    int row_lo = (int)floorf(fminf(y0, y1) - reach), row_hi = (int)ceilf(fmaxf(y0, y1) + reach);
    if (col_lo < 0) col_lo = 0;
    if (row_lo < 0) row_lo = 0;
    if (col_hi > S - 1) col_hi = S - 1;
    if (row_hi > S - 1) row_hi = S - 1;
    float dx = x1 - x0, dy = y1 - y0, length2 = dx * dx + dy * dy;
    for (int row = row_lo; row <= row_hi; row++) {
        for (int col = col_lo; col <= col_hi; col++) {
            float px = (float)col + 0.5f - x0, py = (float)row + 0.5f - y0;
            /* The nearest point of the segment is at t in [0, 1] along it. */
            float t = length2 > 0 ? (px * dx + py * dy) / length2 : 0.0f;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            float ex = px - t * dx, ey = py - t * dy;
            float ink = r + 0.5f - sqrtf(ex * ex + ey * ey);
            ink = ink < 0 ? 0 : ink > 1 ? 1 : ink;
            float *pixel = &image[row * S + col];
            if (ink > *pixel) *pixel = ink;
        }
    }
}

static bool cell_on(const Glyph *glyph, int width, int row, int col) {
    return row >= 0 && row < FONT_ROWS && col >= 0 && col < width && glyph->rows[row][col] == '#';
}

/* Steps 1 and 3: every pair of touching on-cells is a stroke.  Looking only
 * right, down, down-right and down-left visits each pair once.  A lone cell
 * is a dot. */
static void draw_glyph(float *image, int S, const Glyph *glyph, const Affine *map, float radius) {
    static const int NEIGHBOURS[4][2] = {{0, 1}, {1, 0}, {1, 1}, {1, -1}}; /* (drow, dcol) */
    int width = (int)strlen(glyph->rows[0]);
    for (int row = 0; row < FONT_ROWS; row++) {
        for (int col = 0; col < width; col++) {
            if (!cell_on(glyph, width, row, col)) continue;
            float u0 = (float)col, v0 = (float)row;
            float x0 = map->a * u0 + map->b * v0 + map->tx, y0 = map->c * u0 + map->d * v0 + map->ty;
            bool joined = false;
            for (int n = 0; n < 4; n++) {
                int r1 = row + NEIGHBOURS[n][0], c1 = col + NEIGHBOURS[n][1];
                if (!cell_on(glyph, width, r1, c1)) continue;
                /* Skip a diagonal when an L-shaped path of cells already
                 * joins the two: it would fatten the corner. */
                if (NEIGHBOURS[n][0] == 1 && NEIGHBOURS[n][1] != 0 &&
                    (cell_on(glyph, width, row, c1) || cell_on(glyph, width, r1, col)))
                    continue;
                float u1 = (float)c1, v1 = (float)r1;
                draw_stroke(image, S, x0, y0, map->a * u1 + map->b * v1 + map->tx,
                            map->c * u1 + map->d * v1 + map->ty, radius);
                joined = true;
            }
            if (!joined) draw_stroke(image, S, x0, y0, x0, y0, radius);
        }
    }
}

/* Step 2: a random affine map.  The glyph's centre goes to the image centre
 * plus a shift; one font cell spans `cell` pixels (7 rows take ~60% of the
 * image, as MNIST digits do), times a random scale. */
static Affine random_map(const Glyph *glyph, int S, Rng *rng) {
    int width = (int)strlen(glyph->rows[0]);
    float cell = 0.088f * (float)S * (0.85f + 0.3f * rng_uniform(rng));
    float angle = (rng_uniform(rng) - 0.5f) * 0.4f;  /* +-0.2 rad, ~11 degrees */
    float slant = (rng_uniform(rng) - 0.5f) * 0.4f;  /* x += slant * y          */
    float shift_x = (rng_uniform(rng) - 0.5f) * 0.14f * (float)S;
    float shift_y = (rng_uniform(rng) - 0.5f) * 0.14f * (float)S;
    float cosine = cosf(angle), sine = sinf(angle);
    /* (u, v) -> cell * Rotation * Slant * (u - u_c, v - v_c) + centre */
    Affine map;
    map.a = cell * cosine;
    map.b = cell * (cosine * slant - sine);
    map.c = cell * sine;
    map.d = cell * (sine * slant + cosine);
    float uc = (float)(width - 1) / 2.0f, vc = (float)(FONT_ROWS - 1) / 2.0f;
    map.tx = (float)S / 2.0f + shift_x - (map.a * uc + map.b * vc);
    map.ty = (float)S / 2.0f + shift_y - (map.c * uc + map.d * vc);
    return map;
}

void autoencoder_glyphs_generate(AutoencoderDataset *data, int count, int size, float noise, Rng *rng) {
    memset(data, 0, sizeof *data);
    const int S = size, D = S * S;
    data->count = count;
    data->height = data->width = S;
    data->images = xcalloc((size_t)count * D, sizeof(float)); /* (N, S, S) */
    data->labels = xmalloc(sizeof(int) * (size_t)count);       /* (N)       */
    data->class_count = GLYPH_CLASSES;
    for (int k = 0; k < GLYPH_CLASSES; k++)
        snprintf(data->class_names[k], AUTOENCODER_CLASS_NAME, "%s", FONT[k].name);
    for (int n = 0; n < count; n++) {
        int label = n % GLYPH_CLASSES; /* classes in turn: balanced */
        const Glyph *glyph = &FONT[label];
        Affine map = random_map(glyph, S, rng);
        /* Pen radius in pixels: from a thin pen to a thick marker. */
        float cell = sqrtf(fabsf(map.a * map.d - map.b * map.c));
        float radius = cell * (0.3f + 0.25f * rng_uniform(rng));
        float *image = &data->images[(size_t)n * D];
        draw_glyph(image, S, glyph, &map, radius);
        if (noise > 0) {
            for (int i = 0; i < D; i++) {
                float value = image[i] + noise * rng_normal(rng);
                image[i] = value < 0 ? 0 : value > 1 ? 1 : value;
            }
        }
        data->labels[n] = label;
    }
}
