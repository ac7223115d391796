/* Asynchronous successive halving: rungs at r, eta r, eta^2 r, ... epochs
 * (tune_space.rungs).  A trial that finished rung k waits there; it goes on
 * to rung k + 1 when it ranks among the best floor(n_k / eta) of the n_k
 * trials that finished rung k so far.  New trials start when nothing can be
 * promoted.  With a fixed number of trials, the search ends when every trial
 * has started and no waiting trial can be promoted. */
#include "tune_asha.h"

#include <math.h>
#include <stdlib.h>

int asha_init(asha *a, const tune_space *s, int random) {
    *a = (asha){.space = s, .random = random};
    a->trials = calloc((size_t)s->trials, sizeof *a->trials);
    if (!a->trials) return -1;
    for (int t = 0; t < s->trials; t++) {
        a->trials[t].rung = -1;
        for (int k = 0; k < TUNE_MAX_RUNGS; k++) a->trials[t].metric[k] = NAN;
    }
    return 0;
}

void asha_free(asha *a) {
    free(a->trials);
    a->trials = NULL;
}

int asha_better(const asha *a, double x, double y) {
    if (isnan(x)) return 0;
    if (isnan(y)) return 1;
    return a->space->metric_max ? x > y : x < y;
}

/* How many trials that finished rung k rank above trial t there (ties: the
 * lower trial number first). */
static int rank_at(const asha *a, int k, int t) {
    int above = 0;
    double m = a->trials[t].metric[k];
    for (int u = 0; u < a->started; u++) {
        const trial *o = &a->trials[u];
        if (u == t || o->rung < k || o->status == TRIAL_FAILED) continue;
        if (asha_better(a, o->metric[k], m) || (o->metric[k] == m && u < t)) above++;
    }
    return above;
}

static int finished_rung(const asha *a, int k) {
    int n = 0;
    for (int u = 0; u < a->started; u++)
        n += a->trials[u].rung >= k && a->trials[u].status != TRIAL_FAILED;
    return n;
}

static int promotable(const asha *a, int *t, int *rung) {
    const tune_space *s = a->space;
    for (int k = s->n_rungs - 2; k >= 0; k--) {
        int quota = finished_rung(a, k) / s->eta;
        for (int u = 0; u < a->started && quota > 0; u++) {
            const trial *tr = &a->trials[u];
            if (tr->status != TRIAL_WAITING || tr->rung != k) continue;
            if (rank_at(a, k, u) < quota) {
                *t = u;
                *rung = k + 1;
                return 1;
            }
        }
    }
    return 0;
}

int asha_next(asha *a, int *t, int *rung) {
    if (!a->random && promotable(a, t, rung)) {
        a->trials[*t].status = TRIAL_RUNNING;
        a->trials[*t].target = *rung;
        return 1;
    }
    if (a->started == a->space->trials) return 0;
    *t = a->started++;
    *rung = a->random ? a->space->n_rungs - 1 : 0;
    a->trials[*t].status = TRIAL_RUNNING;
    a->trials[*t].target = *rung;
    return 1;
}

void asha_restart(asha *a, int t, int rung) {
    while (a->started <= t) a->started++;
    a->trials[t].status = TRIAL_RUNNING;
    a->trials[t].target = rung;
}

void asha_done(asha *a, int t, const double *metric) {
    trial *tr = &a->trials[t];
    for (int k = tr->rung + 1; k <= tr->target; k++) tr->metric[k] = metric[k];
    tr->rung = tr->target;
    tr->status = tr->rung == a->space->n_rungs - 1 ? TRIAL_DONE : TRIAL_WAITING;
}

void asha_failed(asha *a, int t) { a->trials[t].status = TRIAL_FAILED; }

int asha_best(const asha *a) {
    int best = -1;
    for (int t = 0; t < a->started; t++) {
        const trial *tr = &a->trials[t];
        if (tr->rung < 0 || tr->status == TRIAL_FAILED) continue;
        if (best < 0 || tr->rung > a->trials[best].rung ||
            (tr->rung == a->trials[best].rung &&
             asha_better(a, tr->metric[tr->rung], a->trials[best].metric[tr->rung])))
            best = t;
    }
    return best;
}

int asha_epochs(const asha *a, int t) {
    int k = a->trials[t].rung;
    return k < 0 ? 0 : a->space->rungs[k];
}
