/* Line charts written as SVG: one or more panels side by side, each with
 * axes, ticks, a legend and any number of series. */
#ifndef NB_SVGPLOT_H
#define NB_SVGPLOT_H

typedef struct svg_series {
    const char *label;
    const double *x, *y;   /* n points; non-finite y values break the line */
    int n;
    int dashed;
    double marker;         /* radius of a dot drawn at every point; 0: none */
} svg_series;

/* Level curves of a function sampled on a regular grid, drawn under a panel's
 * series.  The grid's extent becomes the panel's fixed axis ranges (series
 * are clipped to it); use linear axes (log_y 0) with it. */
typedef struct svg_contour {
    int nx, ny;             /* grid points along x and y, each >= 2             */
    double x0, x1, y0, y1;  /* z[j*nx + i] is the value at x0 + i (x1-x0)/(nx-1),
                               y0 + j (y1-y0)/(ny-1); non-finite values leave gaps */
    const double *z;
    const double *levels;   /* one curve z = levels[k] for each k               */
    int n_levels;
} svg_contour;

typedef struct svg_panel {
    const char *title, *xlabel, *ylabel;
    int log_y;             /* logarithmic y axis (non-positive values skipped) */
    const svg_series *series;
    int n_series;
    const svg_contour *contour; /* optional level curves (NULL: none)            */
    int legend_at;         /* where the legend box goes: SVG_LEGEND_* (0: top right) */
} svg_panel;

enum {
    SVG_LEGEND_TOP_RIGHT = 0, SVG_LEGEND_NONE, SVG_LEGEND_BOTTOM_RIGHT, SVG_LEGEND_BOTTOM_LEFT,
    SVG_LEGEND_TOP_LEFT
};

/* Write the panels to path; returns 0 on success, -1 (errno set) on failure. */
int svg_write(const char *path, const char *title, const svg_panel *panels, int n_panels);
/* The same with the panels in rows of cols (filled left to right, top to bottom). */
int svg_write_grid(const char *path, const char *title, const svg_panel *panels, int n_panels,
                   int cols);

#endif
