/* nabla train --diagnose: the per-layer diagnostics table, its WARNING
 * lines and the --diagnose-log CSV (docs/diagnostics.md). */
#ifndef NB_DIAG_REPORT_H
#define NB_DIAG_REPORT_H

#include <stdio.h>

#include "nabla.h"

/* The table of d measured at optimiser step `step` (batch `batch` of epoch
 * `epoch`, `samples` samples), then one "WARNING: ..." line per warning. */
void diag_print(FILE *out, const nb_diagnosis *d, int epoch, size_t batch, long step,
                size_t samples);
/* Open the CSV log: appended to when `append` and it already has rows (a
 * resumed run; a row cut by a kill is dropped), else created with its
 * header.  NULL with errno on failure. */
FILE *diag_log_open(const char *path, int append);
/* One row per layer, appended whole and flushed; on failure the file is cut
 * back to its previous rows.  0 on success, -1 with errno. */
int diag_log_write(FILE *f, const nb_diagnosis *d, int epoch, long step);

#endif
