/* Output of the course experiments (nabla experiment NAME): the summary goes
 * to stdout and to OUT/NAME.txt, the plot to OUT/NAME.svg; plus the small
 * statistics the experiments share. */
#ifndef NB_COURSE_OUT_H
#define NB_COURSE_OUT_H

#include <stddef.h>
#include <stdio.h>

#include "nabla.h"

#include "experiment.h"
#include "svgplot.h"

typedef struct course_out {
    const exp_ctx *ctx;
    const char *name;
    FILE *txt;
    int failed;   /* a write to the summary file failed */
} course_out;

/* Open OUT/NAME.txt; returns 0, or 1 after printing an error. */
int course_open(course_out *o, const exp_ctx *ctx, const char *name);
/* printf to stdout and to the summary file. */
void course_say(course_out *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Write OUT/NAME.svg as a grid of panels, `columns` per row; 0 or 1 after an error. */
int course_plot(course_out *o, const char *title, const svg_panel *panels, int n, int columns);
/* Close the summary; returns rc, or 1 if writing the summary failed. */
int course_close(course_out *o, int rc);
/* Print "nabla experiment NAME: message" on stderr; returns 1. */
int course_fail(const char *name, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Population standard deviation of n values (0 for n < 1). */
/* nb_fit on n samples held in arrays (x: n * x_size, y: n targets), with a
 * fresh optimiser configured by oc. */
nb_status course_fit(nb_graph *g, const nb_fit_config *cfg, const nb_optim_config *oc,
                     const nb_real *x, const nb_real *y, size_t n, size_t x_size);

double course_std(const nb_real *v, size_t n);
/* Least-squares slope of y against x over n points. */
double course_slope(const double *x, const double *y, int n);

/* Least squares: z (p values) minimising sum_m (y_m - a_m . z)^2 for the
 * m x p design matrix a (row-major), by the normal equations
 * (A^T A) z = A^T y solved with Cholesky.  p <= 16; returns 0 if A^T A is
 * not positive definite (the columns of A are dependent). */
int course_least_squares(const double *a, const double *y, int m, int p, double *z);

#endif
