/* The scheduler of nabla tune: asynchronous successive halving (ASHA, Li et
 * al., MLSys 2020) or plain random search, as pure bookkeeping.  It hands
 * out jobs ("train trial t up to rung k") and takes their results; running
 * the jobs is the caller's.  Decisions depend only on the results taken, in
 * the order they were taken: replaying a search's journal in order rebuilds
 * its state exactly. */
#ifndef NB_TUNE_ASHA_H
#define NB_TUNE_ASHA_H

#include "tune_space.h"

typedef enum trial_status {
    TRIAL_PENDING,   /* not started                                         */
    TRIAL_RUNNING,   /* a job is training it                                 */
    TRIAL_WAITING,   /* finished a rung below the top; may still be promoted  */
    TRIAL_DONE,      /* reached the last rung                                */
    TRIAL_FAILED     /* its training failed (diverged, ...)                  */
} trial_status;

typedef struct trial {
    trial_status status;
    int rung;             /* the highest rung finished (-1: none)           */
    int target;           /* RUNNING: the rung its job trains up to         */
    double metric[TUNE_MAX_RUNGS]; /* at each rung; NAN where not reached  */
} trial;

typedef struct asha {
    const tune_space *space;
    int random;           /* plain random search: every trial to the top rung */
    trial *trials;
    int started;          /* trials begun, in order 0, 1, ...                */
} asha;

int asha_init(asha *a, const tune_space *s, int random);   /* 0, or -1: no memory */
void asha_free(asha *a);

/* The next job: 1 with *t and *rung set (the trial is marked RUNNING), or 0
 * when nothing can start until a running job ends (or the search is over).
 * ASHA first promotes, from the highest rung down, a waiting trial that is
 * among the best 1/eta of the results of its rung; else it starts a new one. */
int asha_next(asha *a, int *t, int *rung);
/* A job's end: the metric at each rung it passed (metric[k] for rungs up to
 * its target; the rungs before its start are ignored), or failed. */
void asha_done(asha *a, int t, const double *metric);
void asha_failed(asha *a, int t);
/* Mark trial t RUNNING to rung: a job of a journal that had not ended. */
void asha_restart(asha *a, int t, int rung);
/* Is a better than b (the metric's direction; NaN is worst)? */
int asha_better(const asha *a, double x, double y);
/* The trial with the best metric at the highest rung any trial finished;
 * -1 if none finished a rung. */
int asha_best(const asha *a);
/* Epochs trained by trial t so far (those of its highest finished rung). */
int asha_epochs(const asha *a, int t);

#endif
