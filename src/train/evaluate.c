/* Loss and accuracy over a data set in eval mode. */
#include "train.h"

#include <stdlib.h>

nb__acc_layout nb__acc_layout_of(const nb_graph *g, nb_node output, nb_node target,
                                 nb_node loss) {
    const nb_node_t *O = &g->nodes[output];
    size_t c = nb__sample_numel(O), t = nb__sample_numel(&g->nodes[target]);
    nb__acc_layout a = {c, 1, t, &g->nodes[loss]};
    if (t != 1 && t != c) /* one class index per position (checked by check_output) */
        a = (nb__acc_layout){(size_t)O->dims[O->ndim - 1], t, 1, &g->nodes[loss]};
    return a;
}

size_t nb__count_correct(const nb__acc_layout *a, const nb_real *out, const nb_real *y,
                         int batch, size_t *counted) {
    size_t correct = 0, c = a->classes, rows = (size_t)batch * a->rows;
    int (*skips)(const nb_node_t *, nb_real) = a->loss->op ? a->loss->op->skips_target : NULL;
    for (size_t r = 0; r < rows; r++) {
        size_t pred = nb__argmax(out + r * c, c);
        size_t want;
        if (a->ys == 1) {
            if (skips && skips(a->loss, y[r])) continue;
            double t = (double)y[r];
            ++*counted;
            if (!(t >= 0 && t < (double)c)) continue; /* not a class: counts as wrong */
            want = (size_t)t;
        } else {
            ++*counted;
            want = nb__argmax(y + r * a->ys, a->ys);
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

/* The evaluation pass: mean loss, correct argmax rows when with_acc is set,
 * and every batch's outputs counted into rep (NULL: none).  The mean loss
 * weights each batch's mean by the terms it averaged, so it is the mean
 * over every position that counts, as accuracy is. */
static nb_status eval_pass(const char *fn, nb_graph *g, nb_node input, nb_node target,
                           nb_node loss, nb_node output, int with_acc, const nb_data *d,
                           int batch_size, nb_real *xb, nb_report *rep, double *loss_out,
                           size_t *correct, size_t *counted) {
    int was_training = g->training;
    nb_graph_set_training(g, 0);
    double loss_sum = 0, weight_sum = 0;
    nb__acc_layout acc = {0};
    if (with_acc) acc = nb__acc_layout_of(g, output, target, loss);
    nb_status s = NB_OK;
    *correct = *counted = 0;
    for (size_t start = 0; start < d->n && s == NB_OK; start += (size_t)batch_size) {
        int bs = (int)(d->n - start < (size_t)batch_size ? d->n - start : (size_t)batch_size);
        s = eval_batch(fn, g, input, target, loss, output, d, start, bs, xb);
        if (s != NB_OK) break;
        double w = nb__loss_weight(g, loss, bs);
        if (w > 0) loss_sum += (double)g->nodes[loss].val[0] * w;
        weight_sum += w;
        const nb_real *y = d->y + start * d->y_size;
        if (with_acc) *correct += nb__count_correct(&acc, g->nodes[output].val, y, bs, counted);
        if (rep) s = nb_report_add(rep, g->nodes[output].val, y, (size_t)bs, d->y_size);
        if (s != NB_OK) s = nb_err_prefix(s, "%s", fn);
    }
    nb_graph_set_training(g, was_training);
    if (s == NB_OK) *loss_out = weight_sum > 0 ? loss_sum / weight_sum : 0;
    return s;
}

nb_status nb__evaluate(const char *fn, nb_graph *g, nb_node input, nb_node target,
                       nb_node loss, nb_node output, const nb_data *d, int batch_size,
                       nb_real *xb, double *loss_out, double *acc_out) {
    double mean_loss;
    size_t correct, counted;
    nb_status s = eval_pass(fn, g, input, target, loss, output, output != NB_NONE, d,
                            batch_size, xb, NULL, &mean_loss, &correct, &counted);
    if (s != NB_OK) return s;
    if (loss_out) *loss_out = mean_loss;
    if (acc_out)
        *acc_out = output == NB_NONE ? -1 : counted ? (double)correct / (double)counted : 0;
    return NB_OK;
}

/* A batch buffer for data (at most batch_size samples); NULL: out of memory. */
static nb_real *batch_buffer(const nb_data *data, int batch_size) {
    size_t rows = data->n < (size_t)batch_size ? data->n : (size_t)batch_size;
    return malloc(rows * data->sample_size * sizeof(nb_real));
}

/* The data fit the input and the target, and *xb holds a batch of inputs. */
static nb_status prepare(const char *fn, const nb_graph *g, nb_node input, nb_node target,
                         const nb_data *data, int batch_size, nb_real **xb) {
    nb_status s = nb__check_data(g, fn, "the", data, input, target);
    if (s != NB_OK) return s;
    if (batch_size <= 0)
        return nb_err(NB_ERR_ARG, "%s: batch_size %d is not positive", fn, batch_size);
    *xb = batch_buffer(data, batch_size);
    return *xb ? NB_OK : nb_err(NB_ERR_NOMEM, "%s: out of memory", fn);
}

nb_status nb_evaluate(nb_graph *g, nb_node input, nb_node target, nb_node loss,
                      nb_node output, const nb_data *data, int batch_size,
                      double *loss_out, double *acc_out) {
    const char *fn = "nb_evaluate";
    nb_real *xb = NULL;
    nb_status s = nb__check_nodes(g, fn, input, target, loss, output);
    if (s == NB_OK) s = prepare(fn, g, input, target, data, batch_size, &xb);
    if (s != NB_OK) return s;
    s = nb__evaluate(fn, g, input, target, loss, output, data, batch_size, xb, loss_out,
                     acc_out);
    free(xb);
    return s;
}

/* The output node gives the report's n_outputs values per sample, and the
 * target fits the report's kind. */
static nb_status check_report(const nb_graph *g, const char *fn, nb_node target,
                              nb_node output, const nb_report *r) {
    if (!r || !r->n_outputs) return nb_err(NB_ERR_ARG, "%s: the report is not started", fn);
    if (r->n) return nb_err(NB_ERR_ARG, "%s: the report already counts %zu samples", fn, r->n);
    if (output < 0 || output >= g->n_nodes)
        return nb_err(NB_ERR_ARG, "%s: output node %d does not exist (graph has %d nodes)", fn,
                      output, g->n_nodes);
    const nb_node_t *O = &g->nodes[output];
    size_t c = nb__sample_numel(O), t = nb__sample_numel(&g->nodes[target]);
    if (!O->batched || c != r->n_outputs)
        return nb_err(NB_ERR_SHAPE, "%s: output '%s' %s %zu values per sample; the report "
                      "was started for %zu", fn, O->name, O->batched ? "has" : "is not "
                      "batched, with", c, r->n_outputs);
    if (r->n_classes ? t != 1 && t != c : t != c)
        return nb_err(NB_ERR_SHAPE, "%s: target '%s' has %zu values per sample; expected %s%zu",
                      fn, g->nodes[target].name, t, r->n_classes ? "1 (class index) or " : "",
                      c);
    return NB_OK;
}

nb_status nb_evaluate_report(nb_graph *g, nb_node input, nb_node target, nb_node loss,
                             nb_node output, const nb_data *data, int batch_size,
                             nb_report *r) {
    const char *fn = "nb_evaluate_report";
    nb_status s = nb__check_nodes(g, fn, input, target, loss, NB_NONE);
    nb_real *xb = NULL;
    if (s == NB_OK) s = check_report(g, fn, target, output, r);
    if (s == NB_OK) s = prepare(fn, g, input, target, data, batch_size, &xb);
    if (s != NB_OK) return s;
    size_t correct, counted;
    s = eval_pass(fn, g, input, target, loss, output, 0, data, batch_size, xb, r, &r->loss,
                  &correct, &counted);
    free(xb);
    if (s == NB_OK) s = nb_report_finish(r);
    return s;
}
