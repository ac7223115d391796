/* Line charts written as SVG: panels in a grid under a title, each with axes,
 * ticks, a legend and any number of series (lines, dots or both), optionally
 * over the level curves of a function of (x, y).
 *
 * Every field added after the first version sits at the end of its struct
 * and means "nothing special" when zero, so designated initialisers that
 * leave it out keep the old picture. */
#ifndef NB_SVGPLOT_H
#define NB_SVGPLOT_H

#include <stdio.h>

typedef struct svg_series {
    const char *label;
    const double *x, *y;   /* n points; non-finite y values break the line */
    int n;
    int dashed;
    double marker;         /* radius in pixels of a dot drawn at every point; 0: none */
    int no_line;           /* points only (a scatter): the dots, no line between them;
                              dots of radius 2 when marker is 0 */
    const char *color;     /* an SVG colour; NULL: the palette's, by position */
} svg_series;

/* Level curves of a function sampled on a regular grid, drawn under a panel's
 * series.  The grid's extent becomes the panel's axis ranges (series are
 * clipped to it); use linear axes (log_y 0) with it. */
typedef struct svg_contour {
    int nx, ny;             /* grid points along x and y, each >= 2             */
    double x0, x1, y0, y1;  /* z[j*nx + i] is the value at x0 + i (x1-x0)/(nx-1),
                               y0 + j (y1-y0)/(ny-1); non-finite values leave gaps */
    const double *z;
    const double *levels;   /* one curve z = levels[k] for each k               */
    int n_levels;
} svg_contour;

/* Where a panel's legend box goes.  AUTO (the default): the corner whose box
 * covers the fewest points of the series' lines and dots; when every corner
 * covers some and the y range is free (no contour, no fixed range), the y
 * axis is extended upwards so that the legend sits in a band above the data. */
enum {
    SVG_LEGEND_AUTO = 0, SVG_LEGEND_TOP_RIGHT, SVG_LEGEND_TOP_LEFT, SVG_LEGEND_BOTTOM_RIGHT,
    SVG_LEGEND_BOTTOM_LEFT, SVG_LEGEND_NONE
};

typedef struct svg_panel {
    const char *title, *xlabel, *ylabel;
    int log_y;             /* logarithmic y axis (non-positive values skipped) */
    const svg_series *series;
    int n_series;
    const svg_contour *contour; /* optional level curves (NULL: none)            */
    int legend_at;         /* SVG_LEGEND_*; 0 is AUTO                             */
    double y_min, y_max;   /* a fixed y range when y_min < y_max (log_y: y_min > 0);
                              overrides the contour's; series are clipped to it */
    int log_x;             /* logarithmic x axis (non-positive values skipped) */
} svg_panel;

/* Write the panels in rows of `columns` (filled left to right, top to bottom;
 * columns < 1 or > n_panels: one row) under a band holding the title.
 * Returns 0 on success, -1 (errno set) on failure. */
int svg_write_grid(const char *path, const char *title, const svg_panel *panels, int n_panels,
                   int columns);
/* The panels side by side in one row: svg_write_grid with columns = n_panels. */
int svg_write(const char *path, const char *title, const svg_panel *panels, int n_panels);

/* Write s into an SVG document with XML special characters escaped. */
void svg_put_text(FILE *f, const char *s);

#endif
