/* The evaluation report of `nabla eval` and `nabla train --test`: printed,
 * written as JSON (--report) and drawn as an SVG confusion matrix
 * (--confusion).  Figures: nb_report (docs/metrics.md). */
#ifndef NB_CLI_REPORT_H
#define NB_CLI_REPORT_H

#include "data_source.h"
#include "nabla.h"

typedef struct report_opts {
    long top_k;              /* -1: the default (5 with more than 5 classes, else off) */
    const char *json, *svg;  /* --report, --confusion; NULL: none                     */
} report_opts;

/* The flags' values (NULL: not given) into o, with the output paths checked.
 * Returns 0, or the exit code after printing the error. */
int report_options(const char *cmd, const char *top_k, const char *json, const char *svg,
                   report_opts *o);

/* Do the options suit model m (--confusion and --top-k need a classifier,
 * K at most its classes)?  Returns 0 or the exit code after the error:
 * checked before a long run starts. */
int report_check(const char *cmd, const nb_model *m, const report_opts *o);

/* The class names of a model of `classes` classes: those saved with the
 * weights (pre), else the data's, else NULL. */
const char *const *report_class_names(const preprocess *pre, const nb_data *d, int classes);

/* Evaluate m on d in one pass and print "<prefix>loss L, <prefix>accuracy A%
 * (N samples)", then the report; write the files of o.  Returns 0 or the exit
 * code after printing the error. */
int report_evaluate(const char *cmd, nb_model *m, const nb_data *d, int batch,
                    const char *const *class_names, const char *prefix, const report_opts *o);

#endif
