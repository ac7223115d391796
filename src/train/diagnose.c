/* Training diagnostics: where the first NaN or infinity of a step was born,
 * and per-layer statistics of one training batch (activation mean and
 * spread, dead ReLU units, saturated sigmoid/tanh units, gradient norms,
 * update/weight ratios) with warnings.  See docs/diagnostics.md.
 *
 * Both read the state a forward and a backward pass leave in the graph: the
 * activations and their gradients in the arena, the parameters and their
 * gradients in the flat buffers.  Nothing is recomputed. */
#include "../core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Warning thresholds (documented in nabla.h and docs/diagnostics.md). */
#define DEAD_WARN 0.25          /* fraction of dead ReLU units               */
#define SATURATED_WARN 0.5      /* fraction of saturated sigmoid/tanh values */
#define SATURATION_MARGIN 0.01  /* saturated: within this of a bound of the
                                   op's output range (sigmoid outside
                                   [0.01, 0.99], tanh where |y| > 0.99)      */
#define GRAD_TINY 1e-7          /* a weight gradient norm below this vanishes */
#define GRAD_RELATIVE 1e-3      /* ... as does an RMS gradient this far below
                                   the largest weight's                      */
#define GRAD_HUGE 1e3           /* a gradient norm above this explodes       */
#define GRAD_GROWTH 10.0        /* ... as does one over GROWTH_FLOOR that grew
                                   this much since the previous diagnosis    */
#define GROWTH_FLOOR 10.0
#define UPDATE_MIN 1e-5         /* update/weight ratio: the rule of thumb is ~1e-3 */
#define UPDATE_MAX 1e-1

static int finite(double v) { return v == v && v - v == 0; }

/* flags[i] = 1 for loss and every node it depends on (NULL: out of memory). */
static unsigned char *ancestors(const nb_graph *g, nb_node loss) {
    unsigned char *a = calloc((size_t)g->n_nodes, 1);
    if (!a) return NULL;
    a[loss] = 1;
    for (int i = loss; i >= 0; i--) {
        if (!a[i]) continue;
        const nb_node_t *n = &g->nodes[i];
        for (int k = 0; k < n->nin; k++) a[n->in[k]] = 1;
    }
    return a;
}

static nb_status check_graph(const nb_graph *g, nb_node loss, const char *fn) {
    if (!g) return nb_err(NB_ERR_ARG, "%s: graph is NULL", fn);
    if (loss < 0 || loss >= g->n_nodes)
        return nb_err(NB_ERR_ARG, "%s: node %d does not exist (graph has %d nodes)", fn, loss,
                      g->n_nodes);
    if (!g->planned || !g->forwarded)
        return nb_err(NB_ERR_STATE, "%s: no forward pass has run since the graph was planned",
                      fn);
    return NB_OK;
}

/* ------------------------------------------------------------ non-finite */

/* Index of the first non-finite element of v[0..n) and how many there are;
 * returns 0 when all are finite. */
static int scan(const nb_real *v, size_t n, size_t *first, size_t *count) {
    size_t c = 0;
    for (size_t k = 0; k < n; k++) {
        if (finite((double)v[k])) continue;
        if (c++ == 0) *first = k;
    }
    *count = c;
    return c != 0;
}

nb_status nb_find_nonfinite(nb_graph *g, nb_node loss, int grads, nb_nonfinite *out) {
    const char *fn = "nb_find_nonfinite";
    if (!out) return nb_err(NB_ERR_ARG, "%s: out is NULL", fn);
    memset(out, 0, sizeof *out);
    out->node = out->source = NB_NONE;
    nb_status s = check_graph(g, loss, fn);
    if (s != NB_OK) return s;
    nb__fill_all(g); /* every node's own value and gradient, fused or not */
    unsigned char *anc = ancestors(g, loss);
    if (!anc) return nb_err(NB_ERR_NOMEM, "%s: out of memory", fn);
    /* values in creation order: every input of a node comes before it, so
     * the first hit was made by its own op (or is a leaf's stored value) */
    for (int i = 0; i <= loss && out->node == NB_NONE; i++) {
        const nb_node_t *n = &g->nodes[i];
        if (!anc[i] || !n->val) continue;
        if (!scan(n->val, nb__numel(n), &out->index, &out->count)) continue;
        out->node = i;
        out->is_nan = n->val[out->index] != n->val[out->index];
        out->source = i;
        if (n->leaf != NB_LEAF_NONE)
            for (int j = i + 1; j <= loss && out->source == i; j++)
                for (int k = 0; k < g->nodes[j].nin; k++)
                    if (anc[j] && g->nodes[j].in[k] == i) out->source = j;
    }
    /* gradients in the order backward made them: node i's gradient is
     * complete once every later node has run, so the first hit going down
     * was written by the backward of one of its consumers */
    for (int i = loss; grads && i >= 0 && out->node == NB_NONE; i--) {
        const nb_node_t *n = &g->nodes[i];
        if (!anc[i] || !n->grad) continue;
        if (!scan(n->grad, nb__numel(n), &out->index, &out->count)) continue;
        out->node = i;
        out->in_grad = 1;
        out->is_nan = n->grad[out->index] != n->grad[out->index];
        for (int j = loss; j > i; j--) {
            const nb_node_t *c = &g->nodes[j];
            if (!anc[j] || !c->op || !c->requires_grad) continue;
            for (int k = 0; k < c->nin; k++)
                if (c->in[k] == i) {
                    if (out->n_sources++ == 0) out->source = j;
                    break;
                }
        }
    }
    free(anc);
    return NB_OK;
}

static const char *leaf_word(nb_leaf_kind k) {
    switch (k) {
    case NB_LEAF_INPUT: return "input";
    case NB_LEAF_PARAM: return "parameter";
    case NB_LEAF_CONST: return "constant";
    case NB_LEAF_BUFFER: return "buffer";
    case NB_LEAF_NONE: break;
    }
    return "node";
}

const char *nb_nonfinite_describe(const nb_graph *g, const nb_nonfinite *r, char *buf,
                                  size_t size) {
    if (!buf || size == 0) return buf;
    buf[0] = '\0';
    if (!g || !r) return buf;
    if (r->node < 0 || r->node >= g->n_nodes) {
        snprintf(buf, size, "every value and gradient checked is finite");
        return buf;
    }
    const nb_node_t *n = &g->nodes[r->node];
    const nb_real *data = r->in_grad ? n->grad : n->val;
    const char *kind = r->is_nan ? "NaN"
                       : data && r->index < nb__numel(n) && data[r->index] < 0 ? "-inf"
                                                                               : "inf";
    char where[160];
    size_t numel = nb__numel(n);
    int len;
    if (n->batched && n->dims[0] > 0)
        len = snprintf(where, sizeof where, "element %zu, sample %zu of the batch", r->index,
                       r->index / (numel / (size_t)n->dims[0]));
    else
        len = snprintf(where, sizeof where, "element %zu", r->index);
    if (len > 0 && (size_t)len < sizeof where)
        snprintf(where + len, sizeof where - (size_t)len, "; %zu of %zu elements non-finite",
                 r->count, numel);
    const char *src_name = "?", *src_op = "?";
    if (r->source >= 0 && r->source < g->n_nodes) {
        src_name = g->nodes[r->source].name;
        src_op = nb_node_op(g, r->source);
    }
    if (r->in_grad) {
        int written = snprintf(buf, size, "the gradient of node '%s' (%s) is %s (%s); every "
                               "forward value is finite", n->name, nb_node_op(g, r->node),
                               kind, where);
        if (r->n_sources > 0 && written > 0 && (size_t)written < size) {
            if (r->n_sources == 1)
                snprintf(buf + written, size - (size_t)written, "; it was written by the "
                         "backward of '%s' (%s)", src_name, src_op);
            else
                snprintf(buf + written, size - (size_t)written, "; it adds the backward of %d "
                         "ops, the first to run being '%s' (%s)", r->n_sources, src_name,
                         src_op);
        }
    } else if (n->leaf == NB_LEAF_NONE) {
        snprintf(buf, size, "the forward value of node '%s' (%s) is %s (%s); its inputs are "
                 "finite", n->name, n->op->name, kind, where);
    } else if (r->source != r->node) {
        snprintf(buf, size, "%s '%s' holds %s (%s); it is read by '%s' (%s)",
                 leaf_word(n->leaf), n->name, kind, where, src_name, src_op);
    } else {
        snprintf(buf, size, "%s '%s' holds %s (%s)", leaf_word(n->leaf), n->name, kind, where);
    }
    return buf;
}

/* ------------------------------------------------------------ diagnostics */

/* The op's traits (none for a leaf). */
static unsigned traits(const nb_node_t *n) { return n->op ? n->op->flags : 0; }

nb_status nb_diagnosis_init(nb_diagnosis *d, const nb_graph *g, nb_node loss) {
    const char *fn = "nb_diagnosis_init";
    if (!d) return nb_err(NB_ERR_ARG, "%s: diagnosis is NULL", fn);
    memset(d, 0, sizeof *d);
    d->loss = NB_NONE;
    if (!g) return nb_err(NB_ERR_ARG, "%s: graph is NULL", fn);
    if (g->status != NB_OK) return nb_err(g->status, "%s: the graph has a build error", fn);
    if (loss < 0 || loss >= g->n_nodes)
        return nb_err(NB_ERR_ARG, "%s: node %d does not exist (graph has %d nodes)", fn, loss,
                      g->n_nodes);
    unsigned char *anc = ancestors(g, loss);
    if (!anc) return nb_err(NB_ERR_NOMEM, "%s: out of memory", fn);
    /* a row per parameter and per activation the loss depends on */
    for (int pass = 0; pass < 2; pass++) {
        int n = 0;
        for (int i = 0; i < loss; i++) {
            const nb_node_t *t = &g->nodes[i];
            int param = t->leaf == NB_LEAF_PARAM;
            /* a view repeats its input's values: no row of its own */
            int act = t->op && t->batched && !(traits(t) & NB_OP_VIEW);
            if (!anc[i] || !(param || act)) continue;
            if (pass == 1) {
                nb_diag_row *r = &d->rows[n];
                memset(r, 0, sizeof *r);
                r->node = i;
                r->name = t->name;
                r->op = nb_node_op(g, i);
                r->is_param = param;
                r->mean = r->std = 0;
                r->dead = r->saturated = r->grad_norm = r->weight_norm = r->update_ratio = -1;
                r->prev_grad_norm = -1;
            }
            n++;
        }
        if (pass == 0) {
            d->rows = calloc(n ? (size_t)n : 1, sizeof *d->rows);
            if (!d->rows) {
                free(anc);
                return nb_err(NB_ERR_NOMEM, "%s: out of memory", fn);
            }
        }
        d->n_rows = n;
    }
    free(anc);
    d->loss = loss;
    return NB_OK;
}

void nb_diagnosis_free(nb_diagnosis *d) {
    if (!d) return;
    free(d->rows);
    memset(d, 0, sizeof *d);
    d->loss = NB_NONE;
}

static double norm2(const nb_real *v, size_t n) {
    double s = 0;
    for (size_t k = 0; k < n; k++) s += (double)v[k] * (double)v[k];
    return sqrt(s);
}

/* Fraction of units that are 0 for every sample: a unit is a feature
 * of [B, F], or a channel of [B, C, ...] over all its positions. */
static double dead_fraction(const nb_node_t *n) {
    size_t batch = (size_t)n->dims[0];
    size_t units = n->ndim >= 2 ? (size_t)n->dims[1] : 1;
    size_t inner = nb__numel_from(n, 2);
    size_t dead = 0;
    for (size_t u = 0; u < units; u++) {
        int alive = 0;
        for (size_t b = 0; b < batch && !alive; b++) {
            const nb_real *v = n->val + (b * units + u) * inner;
            for (size_t k = 0; k < inner; k++)
                if (v[k] != 0) { /* NaN counts as alive: it is not a dead unit */
                    alive = 1;
                    break;
                }
        }
        dead += !alive;
    }
    return (double)dead / (double)units;
}

/* Fraction of values outside [low, high]: within SATURATION_MARGIN of a
 * bound of the op's range. */
static double saturated_fraction(const nb_node_t *n, double low, double high) {
    size_t total = nb__numel(n), sat = 0;
    for (size_t k = 0; k < total; k++) {
        double y = (double)n->val[k];
        sat += y < low || y > high;
    }
    return (double)sat / (double)total;
}

static int is_weight(const nb_graph *g, const nb_diag_row *r) {
    return r->is_param && g->nodes[r->node].ndim >= 2;
}

nb_status nb_diagnose(nb_graph *g, const nb_real *params_before, nb_diagnosis *d) {
    const char *fn = "nb_diagnose";
    if (!d) return nb_err(NB_ERR_ARG, "%s: diagnosis is NULL", fn);
    nb_status s = check_graph(g, d->loss, fn);
    if (s != NB_OK) return s;
    nb__fill_all(g); /* every node's own value and gradient, fused or not */
    double max_rms = 0; /* largest RMS gradient of a weight */
    for (int i = 0; i < d->n_rows; i++) {
        nb_diag_row *r = &d->rows[i];
        if (r->node < 0 || r->node >= g->n_nodes)
            return nb_err(NB_ERR_ARG, "%s: the diagnosis is for another graph", fn);
        const nb_node_t *n = &g->nodes[r->node];
        r->name = n->name; /* the node array may have moved */
        r->op = nb_node_op(g, r->node);
        r->numel = nb__numel(n);
        /* a parameter as the batch saw it: before the step */
        const nb_real *v = r->is_param && params_before ? params_before + n->val_off : n->val;
        double sum = 0, sq = 0;
        for (size_t k = 0; k < r->numel; k++) sum += (double)v[k];
        r->mean = sum / (double)r->numel;
        for (size_t k = 0; k < r->numel; k++) {
            double e = (double)v[k] - r->mean;
            sq += e * e;
        }
        r->std = sqrt(sq / (double)r->numel);
        r->dead = r->saturated = -1;
        if (traits(n) & NB_OP_CAN_DIE) r->dead = dead_fraction(n);
        if (traits(n) & NB_OP_SATURATING) {
            r->sat_low = n->op->range[0] + SATURATION_MARGIN;
            r->sat_high = n->op->range[1] - SATURATION_MARGIN;
            r->saturated = saturated_fraction(n, r->sat_low, r->sat_high);
        }
        r->prev_grad_norm = r->grad_norm;
        r->grad_norm = n->grad ? norm2(n->grad, r->numel) : -1;
        r->weight_norm = r->update_ratio = -1;
        if (r->is_param) {
            const nb_real *before = v;
            r->weight_norm = norm2(before, r->numel);
            if (params_before && r->weight_norm > 0) {
                double du = 0;
                for (size_t k = 0; k < r->numel; k++) {
                    double e = (double)n->val[k] - (double)before[k];
                    du += e * e;
                }
                r->update_ratio = sqrt(du) / r->weight_norm;
            }
        }
        if (is_weight(g, r) && finite(r->grad_norm)) {
            double rms = r->grad_norm / sqrt((double)r->numel);
            if (rms > max_rms) max_rms = rms;
        }
    }
    d->n_warnings = 0;
    for (int i = 0; i < d->n_rows; i++) {
        nb_diag_row *r = &d->rows[i];
        unsigned w = 0;
        if (!finite(r->mean) || !finite(r->std) || (r->grad_norm != -1 && !finite(r->grad_norm)))
            w |= NB_DIAG_NONFINITE;
        if (r->dead > DEAD_WARN) w |= NB_DIAG_DEAD;
        if (r->saturated > SATURATED_WARN) w |= NB_DIAG_SATURATED;
        if (is_weight(g, r) && finite(r->grad_norm)) {
            double rms = r->grad_norm / sqrt((double)r->numel);
            if (r->grad_norm < GRAD_TINY || rms < GRAD_RELATIVE * max_rms)
                w |= NB_DIAG_VANISHING;
            if (r->grad_norm > GRAD_HUGE ||
                (r->prev_grad_norm > 0 && r->grad_norm > GROWTH_FLOOR &&
                 r->grad_norm > GRAD_GROWTH * r->prev_grad_norm))
                w |= NB_DIAG_EXPLODING;
        }
        if (is_weight(g, r) && r->update_ratio >= 0) {
            if (r->update_ratio < UPDATE_MIN) w |= NB_DIAG_UPDATE_SMALL;
            if (r->update_ratio > UPDATE_MAX) w |= NB_DIAG_UPDATE_LARGE;
        }
        r->warn = w;
        for (unsigned f = 1; f <= NB_DIAG_NONFINITE; f <<= 1) d->n_warnings += (w & f) != 0;
    }
    return NB_OK;
}

/* The saturation band as the warning names it: "|y| > 0.99" for a range
 * symmetric about 0, else "outside [0.01, 0.99]". */
static const char *saturation_band(const nb_diag_row *r, char *buf, size_t size) {
    if (r->sat_low == -r->sat_high) snprintf(buf, size, "|y| > %g", r->sat_high);
    else snprintf(buf, size, "outside [%g, %g]", r->sat_low, r->sat_high);
    return buf;
}

const char *nb_diag_warning(const nb_diag_row *r, unsigned flag, char *buf, size_t size) {
    if (!buf || size == 0) return buf;
    buf[0] = '\0';
    if (!r || !(r->warn & flag)) return buf;
    const char *name = r->name ? r->name : "?", *op = r->op ? r->op : "?";
    char band[64];
    switch (flag) {
    case NB_DIAG_DEAD:
        snprintf(buf, size, "layer '%s' (%s): %.1f%% of its units are dead (0 for every "
                 "sample of the batch; warning above %.0f%%): they get no gradient and stop "
                 "learning; lower the learning rate, use He init or leaky_relu", name, op,
                 100 * r->dead, 100 * DEAD_WARN);
        break;
    case NB_DIAG_SATURATED:
        snprintf(buf, size, "layer '%s' (%s): %.1f%% of its values are saturated (%s; warning "
                 "above %.0f%%), where its gradient nearly vanishes; use a smaller init "
                 "(xavier), standardised inputs or batch norm", name, op, 100 * r->saturated,
                 saturation_band(r, band, sizeof band), 100 * SATURATED_WARN);
        break;
    case NB_DIAG_VANISHING:
        snprintf(buf, size, "parameter '%s': gradient norm %.3g is vanishing (below %g, or "
                 "per element %g times the largest weight gradient); the layers before it "
                 "hardly learn", name, r->grad_norm, GRAD_TINY, GRAD_RELATIVE);
        break;
    case NB_DIAG_EXPLODING:
        snprintf(buf, size, "parameter '%s': gradient norm %.3g is exploding (above %g, or "
                 "above %g and %g times the previous diagnosis' %.3g); lower the learning "
                 "rate or clip gradients", name, r->grad_norm, GRAD_HUGE, GROWTH_FLOOR,
                 GRAD_GROWTH, r->prev_grad_norm);
        break;
    case NB_DIAG_UPDATE_SMALL:
        snprintf(buf, size, "parameter '%s': update/weight ratio %.3g is far below the usual "
                 "~1e-3 (warning below %g): the weights barely change; raise the learning "
                 "rate", name, r->update_ratio, UPDATE_MIN);
        break;
    case NB_DIAG_UPDATE_LARGE:
        snprintf(buf, size, "parameter '%s': update/weight ratio %.3g is far above the usual "
                 "~1e-3 (warning above %g): each step rewrites the weights; lower the "
                 "learning rate", name, r->update_ratio, UPDATE_MAX);
        break;
    case NB_DIAG_NONFINITE:
        snprintf(buf, size, "%s '%s' (%s): NaN or inf in its values or gradient",
                 r->is_param ? "parameter" : "layer", name, op);
        break;
    default: break;
    }
    return buf;
}
