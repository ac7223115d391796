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
    double val_loss, val_acc;/* the last epoch's (-1: none), shown in the bar */
} progress;

/* What one redraw of the bar shows. */
typedef struct progress_line {
    int epoch, epochs;
    size_t batch, batches;
    double rate;             /* samples per second                      */
    double loss;             /* running loss of the epoch               */
    double eta;              /* seconds left in the epoch               */
    double val_loss, val_acc;/* -1: not shown                           */
} progress_line;

/* The bar's text for a terminal of `width` columns: at most width - 1
 * characters (the last column would make some terminals wrap), the bar
 * narrowed and then the less important parts left out (samples/s, the
 * validation metrics, the bar, ETA, the batch count) until it fits.
 * Returns the length written (size must exceed width). */
size_t progress_format(char *out, size_t size, int width, const progress_line *v);
/* Columns of the terminal behind fd: TIOCGWINSZ, else $COLUMNS, else 80. */
int progress_columns(int fd);

double progress_now(void);   /* monotonic seconds */
void progress_init(progress *p, FILE *out, int epochs, size_t batches, size_t batch_size);
/* After batch `batch` (1-based) of epoch `epoch`; redraws at most 10 times a second. */
void progress_batch(progress *p, int epoch, size_t batch, double running_loss);
/* Erase the live bar (if drawn) so other output can start on a clean line. */
void progress_clear(progress *p);
/* After an epoch: one permanent line with its metrics. */
void progress_epoch(progress *p, const nb_epoch_stats *s);

#endif
