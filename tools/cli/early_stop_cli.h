/* nabla train's early stopping and best weights (--early-stop, --monitor,
 * --min-delta, --keep): the monitored validation metric is tracked with
 * nb_early_stop, a copy of the weights (parameters, then buffers) of the best
 * epoch is kept, and both travel in the checkpoint so that a resumed run
 * stops at the same epoch with the same weights. */
#ifndef NB_EARLY_STOP_CLI_H
#define NB_EARLY_STOP_CLI_H

#include <stddef.h>

#include "nabla.h"

/* The flags' part of nabla train --help. */
extern const char *const early_stop_help;

typedef struct early_stop_cli {
    int validating;          /* validation data: the metric is tracked     */
    int monitor_acc;         /* --monitor val_acc (else val_loss)           */
    int keep_best;           /* --out holds the best epoch's weights        */
    nb_early_stop es;        /* patience 0: track the best only             */
    nb_real *best;           /* the best epoch's weights (keep_best)        */
    size_t n_best;
    char settings[4352];     /* what a resumed run must share                */
    char state[128];         /* the nb_early_stop state, for the checkpoint  */
} early_stop_cli;

/* The flags' values (NULL: not given); val names the validation data
 * ("split:F" or the --val source; NULL: none).  0, or 2 after a usage error. */
int early_stop_options(early_stop_cli *e, const char *patience, const char *monitor,
                       const char *min_delta, const char *keep, const char *val);
/* With the model loaded: the metric must exist, the copy is allocated.
 * 0, or 1 / 2 after an error (printed). */
int early_stop_setup(early_stop_cli *e, nb_graph *g, int classes, const char *model_path);
/* After an epoch: track the metric (copying the weights on improvement);
 * non-zero when training should stop (the message printed unless quiet). */
int early_stop_epoch(early_stop_cli *e, nb_graph *g, const nb_epoch_stats *s, int quiet);
/* Metadata for the checkpoint ("train.early_stop", "train.early_stop.state"):
 * adds at most 2 entries to kv, pointing into e. */
int early_stop_to_meta(early_stop_cli *e, nb_kv *kv);
/* The best weights for nb_checkpoint.best (NULL: none to keep). */
nb_real *early_stop_best(early_stop_cli *e);
/* From a --resume checkpoint's metadata (NULL: absent), before loading it:
 * settings must match.  0, or 1 after an error (printed). */
int early_stop_check_resume(early_stop_cli *e, const char *resume, const char *settings,
                            const char *state);
/* After nb_checkpoint_load: has_best as it reported.  0, or 1 (printed). */
int early_stop_restored(early_stop_cli *e, const char *resume, int has_best);
/* Before saving --out: put the best weights in place when keeping them;
 * returns the epoch whose weights the graph then holds (the last:
 * epochs_done), and says which in why ("the last", "the best, val_loss X"). */
int early_stop_choose(early_stop_cli *e, nb_graph *g, int epochs_done, char *why, size_t n);
void early_stop_free(early_stop_cli *e);

#endif
