/* nb_fit with several processes (cfg.dist): each process's slice of a
 * batch, and the statistics of the global batch.  Every function here is a
 * collective call (all processes make it, in the same order) and does
 * nothing when training alone. */
#include "train.h"

nb_status nb__dist_check(const nb_dist *d, const nb_fit_config *cfg, size_t n) {
    const int p = nb_dist_size(d);
    if (p == 1) return NB_OK;
    if (cfg->batch_size < p)
        return nb_err(NB_ERR_ARG, "nb_fit: batch_size %d is smaller than the %d processes: "
                      "each needs a sample of every batch", cfg->batch_size, p);
    const size_t last = n % (size_t)cfg->batch_size;
    if (!cfg->drop_last && last != 0 && last < (size_t)p)
        return nb_err(NB_ERR_ARG, "nb_fit: the last batch has %zu samples (%zu training samples, "
                      "batch_size %d), fewer than the %d processes: change the batch size or "
                      "drop the last batch", last, n, cfg->batch_size, p);
    return NB_OK;
}

void nb__dist_slice(const nb_dist *d, int bs, int *off, int *count) {
    const long r = nb_dist_rank(d), p = nb_dist_size(d);
    const long from = (long)bs * r / p, to = (long)bs * (r + 1) / p;
    *off = (int)from;
    *count = (int)(to - from);
}

nb_status nb__dist_sum_stats(nb_dist *d, double *v, size_t n) {
    return d ? nb_dist_sum_f64(d, v, n) : NB_OK;
}

nb_status nb__dist_any(nb_dist *d, int *flag) {
    if (!d) return NB_OK;
    double v = *flag != 0;
    nb_status s = nb_dist_sum_f64(d, &v, 1);
    *flag = v > 0;
    return s;
}

nb_status nb__dist_val_stats(nb_dist *d, nb_epoch_stats *st) {
    if (!d) return NB_OK;
    double v[2] = {st->val_loss, st->val_acc};
    nb_status s = nb_dist_broadcast(d, v, sizeof v);
    st->val_loss = v[0];
    st->val_acc = v[1];
    return s;
}
