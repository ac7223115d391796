/* A heat map written as SVG: a grid of shaded cells with row and column
 * labels and each cell's number (a confusion matrix, for instance). */
#ifndef NB_SVGHEAT_H
#define NB_SVGHEAT_H

typedef struct svg_heatmap {
    const char *title, *xlabel, *ylabel;
    int rows, cols;
    const double *numbers;   /* rows x cols, row-major: printed in the cells (%g) when
                                they are large enough to hold them                */
    const double *shade;     /* rows x cols in [0, 1]: 0 white, 1 the darkest blue;
                                NaN: grey (no value)                              */
    const char *const *row_labels, *const *col_labels; /* NULL: 0, 1, 2, ...     */
    const char *note;        /* a line under the chart, or NULL                    */
} svg_heatmap;

/* Returns 0 on success, -1 (errno set) on failure. */
int svg_write_heatmap(const char *path, const svg_heatmap *h);

#endif
