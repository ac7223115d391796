/* What nabla tune writes about its trials: the CSV of every trial, the table
 * printed at the end and the SVG of the metric against the epochs. */
#ifndef NB_TUNE_REPORT_H
#define NB_TUNE_REPORT_H

#include <stdio.h>

#include "history.h"
#include "tune_asha.h"

/* "DIR/trials/007.EXT" of trial t (0-based; files are numbered from 1). */
void tune_trial_path(char *buf, size_t size, const char *dir, int t, const char *ext);
/* The per-epoch rows of a trial's --log file; 0, or -1 if it is missing or
 * unreadable (h is then empty). */
int tune_read_log(const char *path, history *h);
/* The metric of a row (val_acc or val_loss); NAN when the row has none. */
double tune_row_metric(const tune_space *s, const nb_epoch_stats *row);

/* One row per trial: trial,status,seed,epochs, the values, the metric at
 * each rung.  Replaced atomically; 0, or -1 with errno.  final: trials still
 * waiting for a promotion are "stopped". */
int tune_write_csv(const char *path, const tune_space *s, const asha *a,
                   const tune_values *values, int final);
void tune_print_table(FILE *f, const tune_space *s, const asha *a, const tune_values *values);
/* The metric against the epochs of every trial, from their logs; the best
 * trial drawn in colour.  0, or -1 with errno. */
int tune_plot(const char *path, const char *dir, const char *title, const tune_space *s,
              const asha *a);

#endif
