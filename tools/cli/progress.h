/* Training progress: a live bar on a terminal, plain lines otherwise. */
#ifndef NB_PROGRESS_H
#define NB_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

#include "nabla.h"

typedef struct progress {
    FILE *out;
    int tty;                 /* redraw one line in place                 */
    int epochs;
    size_t batches;          /* per epoch                                */
    size_t batch_size;
    double epoch_start;      /* seconds, monotonic                       */
    int epoch;               /* the epoch the bar is drawn for           */
    size_t done_before;      /* its batches done before this run (resume) */
    double last_draw;
    size_t drawn_len;
} progress;

double progress_now(void);   /* monotonic seconds */
void progress_init(progress *p, FILE *out, int epochs, size_t batches, size_t batch_size);
/* After batch `batch` (1-based) of epoch `epoch`; redraws at most 10 times a second. */
void progress_batch(progress *p, int epoch, size_t batch, double running_loss);
/* Erase the live bar (if drawn) so other output can start on a clean line. */
void progress_clear(progress *p);
/* After an epoch: one permanent line with its metrics. */
void progress_epoch(progress *p, const nb_epoch_stats *s);

#endif
