/* The search file of nabla tune (docs/tune.md): what to train, how to
 * judge it, the budget, and the space of hyperparameters; and the trials'
 * configurations drawn from it. */
#ifndef NB_TUNE_SPACE_H
#define NB_TUNE_SPACE_H

#include "nabla.h"

enum { TUNE_MAX_PARAMS = 16, TUNE_MAX_CHOICES = 64, TUNE_MAX_TRIALS = 10000, TUNE_MAX_RUNGS = 16 };

typedef enum tune_dist { TUNE_CHOICE, TUNE_UNIFORM, TUNE_LOG_UNIFORM } tune_dist;

/* One dimension of the space.  lr, batch, optim and weight_decay go to
 * nabla train's flags of those names; any other name is a model variable
 * (--set NAME=VALUE). */
typedef struct tune_param {
    char *name;
    tune_dist dist;
    double lo, hi;                       /* UNIFORM, LOG_UNIFORM          */
    char *choices[TUNE_MAX_CHOICES];     /* CHOICE: the values as tokens  */
    int n_choices;
    const char *flag;                    /* "--lr" ...; NULL: a variable   */
} tune_param;

typedef struct tune_space {
    char *model, *data, *val;            /* val: --val SOURCE, or NULL    */
    double val_split;                    /* --val-split (0: none)         */
    int metric_max;                      /* 1: val_acc (higher is better) */
    const char *metric;                  /* "val_acc" or "val_loss"       */
    int trials, eta;
    long seed;
    int min_epochs, max_epochs;
    int rungs[TUNE_MAX_RUNGS], n_rungs;  /* epochs at each rung; last = max */
    tune_param params[TUNE_MAX_PARAMS];
    int n_params;
} tune_space;

/* Read and check the search file; 0, or an error printed (exit code). */
int tune_space_load(const char *path, tune_space *s);
void tune_space_free(tune_space *s);

/* The values of trial t (0-based) of the search: value[p] for params[p],
 * written into buf (TUNE_MAX_PARAMS rows of 32 characters).  The same seed
 * gives the same configurations, whatever the strategy. */
typedef char tune_values[TUNE_MAX_PARAMS][32];
void tune_space_sample(const tune_space *s, int t, tune_values v);
/* The training seed of trial t. */
long tune_trial_seed(const tune_space *s, int t);

#endif
