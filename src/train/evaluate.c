/* Loss and accuracy over a data set in eval mode. */
#include "train.h"

#include <stdlib.h>

/* Index of the largest of v[0..n) (the first one on ties; NaN never wins). */
static size_t argmax(const nb_real *v, size_t n) {
    size_t best = 0;
    for (size_t j = 1; j < n; j++)
        if (v[j] > v[best] || v[best] != v[best]) best = j;
    return best;
}

size_t nb__count_correct(const nb_real *out, const nb_real *y, int batch, size_t c, size_t ys) {
    size_t correct = 0;
    for (int r = 0; r < batch; r++) {
        size_t pred = argmax(out + (size_t)r * c, c);
        size_t want;
        if (ys == 1) {
            double t = (double)y[r];
            if (!(t >= 0 && t < (double)c)) continue; /* not a class: counts as wrong */
            want = (size_t)t;
        } else {
            want = argmax(y + (size_t)r * ys, ys);
        }
        correct += pred == want;
    }
    return correct;
}

/* Run one batch of d (samples start .. start+bs) forward in eval mode. */
static nb_status eval_batch(const char *fn, nb_graph *g, nb_node input, nb_node target,
                            nb_node loss, nb_node output, const nb_data *d, size_t start, int bs,
                            nb_real *xb) {
    nb_status s = nb_data_batch(d, NULL, start, (size_t)bs, xb, NULL);
    if (s == NB_OK) s = nb_set_input(g, input, xb, bs);
    if (s == NB_OK) s = nb_set_input(g, target, d->y + start * d->y_size, bs);
    if (s == NB_OK) s = nb__forward_both(g, loss, output);
    if (s != NB_OK)
        return nb_err_prefix(s, "%s: samples %zu..%zu", fn, start, start + (size_t)bs - 1);
    return NB_OK;
}

nb_status nb__evaluate(const char *fn, nb_graph *g, nb_node input, nb_node target,
                       nb_node loss, nb_node output, const nb_data *d, int batch_size,
                       nb_real *xb, double *loss_out, double *acc_out) {
    int was_training = g->training;
    nb_graph_set_training(g, 0);
    double loss_sum = 0;
    size_t correct = 0;
    size_t c = output != NB_NONE ? nb__sample_numel(&g->nodes[output]) : 0;
    nb_status s = NB_OK;
    for (size_t start = 0; start < d->n && s == NB_OK; start += (size_t)batch_size) {
        int bs = (int)(d->n - start < (size_t)batch_size ? d->n - start : (size_t)batch_size);
        s = eval_batch(fn, g, input, target, loss, output, d, start, bs, xb);
        if (s != NB_OK) break;
        /* mean losses: the data set's mean is the batch means weighted by size */
        loss_sum += (double)g->nodes[loss].val[0] * bs;
        if (c) correct += nb__count_correct(g->nodes[output].val, d->y + start * d->y_size, bs,
                                            c, d->y_size);
    }
    nb_graph_set_training(g, was_training);
    if (s != NB_OK) return s;
    if (loss_out) *loss_out = loss_sum / (double)d->n;
    if (acc_out) *acc_out = c ? (double)correct / (double)d->n : -1;
    return NB_OK;
}

nb_status nb_evaluate(nb_graph *g, nb_node input, nb_node target, nb_node loss,
                      nb_node output, const nb_data *data, int batch_size,
                      double *loss_out, double *acc_out) {
    const char *fn = "nb_evaluate";
    nb_status s = nb__check_nodes(g, fn, input, target, loss, output);
    if (s == NB_OK) s = nb__check_data(g, fn, "the", data, input, target);
    if (s != NB_OK) return s;
    if (batch_size <= 0)
        return nb_err(NB_ERR_ARG, "%s: batch_size %d is not positive", fn, batch_size);
    size_t rows = data->n < (size_t)batch_size ? data->n : (size_t)batch_size;
    nb_real *xb = malloc(rows * data->sample_size * sizeof *xb);
    if (!xb) return nb_err(NB_ERR_NOMEM, "%s: out of memory", fn);
    s = nb__evaluate(fn, g, input, target, loss, output, data, batch_size, xb, loss_out,
                     acc_out);
    free(xb);
    return s;
}
