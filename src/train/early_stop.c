/* Early stopping: stop when a monitored value (validation loss or accuracy)
 * has not improved for `patience` epochs, remembering the best epoch.  The
 * state is plain data, so a checkpoint can carry it and a resumed run stops
 * where an uninterrupted one would. */
#include "train.h"

void nb_early_stop_init(nb_early_stop *es, int patience, double min_delta, int maximize) {
    es->patience = patience;
    es->min_delta = min_delta < 0 ? -min_delta : min_delta;
    es->maximize = maximize != 0;
    es->best = 0;
    es->best_epoch = 0;
    es->wait = 0;
    es->stopped = 0;
}

/* Keras' rule: better than the best by more than min_delta. */
static int improves(const nb_early_stop *es, double value) {
    if (!nb__is_finite(value)) return 0;
    if (es->best_epoch == 0) return 1;
    return es->maximize ? value > es->best + es->min_delta : value < es->best - es->min_delta;
}

int nb_early_stop_update(nb_early_stop *es, int epoch, double value) {
    if (improves(es, value)) {
        es->best = value;
        es->best_epoch = epoch;
        es->wait = 0;
        return NB_EARLY_IMPROVED;
    }
    es->wait++;
    if (es->patience > 0 && es->wait >= es->patience) {
        es->stopped = 1;
        return NB_EARLY_STOP;
    }
    return NB_EARLY_WAIT;
}
