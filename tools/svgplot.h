/* Line charts written as SVG: one or more panels side by side, each with
 * axes, ticks, a legend and any number of series. */
#ifndef NB_SVGPLOT_H
#define NB_SVGPLOT_H

typedef struct svg_series {
    const char *label;
    const double *x, *y;   /* n points; non-finite y values break the line */
    int n;
    int dashed;
    int marker;            /* points only, as dots (a scatter), no line; a value
                              above 1 is the dots' radius in pixels (else 2) */
    const char *color;     /* an SVG colour; NULL: the palette's, by position */
} svg_series;

typedef struct svg_panel {
    const char *title, *xlabel, *ylabel;
    int log_y;             /* logarithmic y axis (non-positive values skipped) */
    const svg_series *series;
    int n_series;
    double y_min, y_max;   /* a fixed y range when y_min < y_max (log_y: y_min > 0);
                              the series are clipped to it */
    int legend;            /* 0 top right, 1 top left, 2 bottom right, 3 bottom left,
                              -1 none */
} svg_panel;

/* Write the panels to path; returns 0 on success, -1 (errno set) on failure. */
int svg_write(const char *path, const char *title, const svg_panel *panels, int n_panels);
/* The same with the panels in rows of `columns` (row by row). */
int svg_write_grid(const char *path, const char *title, const svg_panel *panels, int n_panels,
                   int columns);

#endif
