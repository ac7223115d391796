/* The running sums of the epoch being trained (loss, correct predictions,
 * samples, time), kept by nabla train beside nb_fit so that an epoch resumed
 * from a mid-epoch checkpoint reports the whole epoch: the sums travel in
 * the checkpoint's metadata ("train.epoch_sums") and are added back. */
#ifndef NB_EPOCH_SUMS_H
#define NB_EPOCH_SUMS_H

#include <stddef.h>

#include "nabla.h"

typedef struct epoch_sums {
    int epoch;               /* the epoch summed; 0: none yet              */
    double loss_sum;         /* batch loss times batch size, summed        */
    size_t seen, correct;
    double seconds_before;   /* time earlier runs spent on this epoch      */
    double t0;               /* when this run began the epoch (monotonic)  */
    int restored;            /* sums of an earlier run were added back     */
} epoch_sums;

/* This run starts training now (before nb_fit; the struct starts zeroed). */
void epoch_sums_start(epoch_sums *e);
/* After a step: add its loss, samples and correct predictions (those of the
 * global batch, as nb_fit counts them). */
void epoch_sums_batch(epoch_sums *e, const nb_batch_stats *b);
/* After an epoch ends: the whole-epoch loss, accuracy and seconds replace
 * nb_fit's (which cover only this run) when sums were restored; then the
 * next epoch starts. */
void epoch_sums_finish(epoch_sums *e, nb_epoch_stats *s);
/* "EPOCH LOSS_SUM SEEN CORRECT SECONDS" for a mid-epoch checkpoint. */
void epoch_sums_format(const epoch_sums *e, char *buf, size_t size);
/* Add back the sums of a checkpoint taken after `seen` samples of `epoch`;
 * sums of another position are ignored (0), malformed ones are -1. */
int epoch_sums_restore(epoch_sums *e, const char *text, int epoch, size_t seen);

#endif
