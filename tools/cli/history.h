/* The per-epoch metrics of a training run: kept in memory, carried in
 * checkpoints, written as a CSV log (--log) and drawn as a picture (--plot). */
#ifndef NB_HISTORY_H
#define NB_HISTORY_H

#include "nabla.h"

typedef struct history {
    nb_epoch_stats *rows;
    int n, cap;
} history;

int history_add(history *h, const nb_epoch_stats *s);   /* 0 on success */
/* CSV text of all rows, header first (malloc'ed; NULL when out of memory). */
char *history_csv(const history *h);
/* Rows from CSV text made by history_csv; 0 on success. */
int history_parse(history *h, const char *csv);
/* Write the CSV log, replacing the file atomically (outfile.h); 0 on
 * success, -1 with errno (the previous file left whole). */
int history_write_log(const history *h, const char *path);
/* Loss and accuracy curves as SVG, replacing the file atomically; 0 on
 * success, -1 with errno. */
int history_plot(const history *h, const char *path, const char *title);
void history_free(history *h);

#endif
