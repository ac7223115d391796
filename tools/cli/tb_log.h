/* nabla train --tensorboard DIR: the run's scalars as a TensorBoard event
 * file (nb_tb_* of the library; docs/tensorboard.md lists the tags). */
#ifndef NB_TB_LOG_H
#define NB_TB_LOG_H

#include "nabla.h"

typedef struct tb_log {
    nb_tb_writer *w;         /* NULL: no --tensorboard                        */
    nb_schedule schedule;    /* for the learning rate of every step           */
    double base_lr;
} tb_log;

/* A new event file in dir (made if missing).  Errors: nb_last_error(). */
nb_status tb_log_open(tb_log *t, const char *dir, const nb_schedule *schedule, double base_lr);
/* After an optimiser step: train/loss (the batch's) and train/lr. */
nb_status tb_log_batch(tb_log *t, const nb_batch_stats *b);
/* After an epoch: epoch/train_loss, epoch/train_acc, epoch/lr, epoch/val_loss,
 * epoch/val_acc (those measured), at step = the epoch; then flushed. */
nb_status tb_log_epoch(tb_log *t, const nb_epoch_stats *s);
/* --diagnose: diagnose/<layer>/<figure> of every row measured, at step. */
nb_status tb_log_diagnosis(tb_log *t, const nb_diagnosis *d, long step);
/* Flush and close (nothing if not open). */
nb_status tb_log_close(tb_log *t);

#endif
