/* Shape ops: reshape, flatten and concat.
 *
 * Reshape and flatten copy the values (row-major order is unchanged, so the
 * copy is a memcpy), unless the graph had them share their input's memory
 * (nb__plan_views: they are its only consumer), and then do nothing.
 * Concat interleaves blocks of its inputs. */
#include "../core/internal.h"

#include <string.h>

/* ---- reshape / flatten: same elements, new dims ---- */

static void copy_forward(nb_graph *g, nb_node_t *n) {
    const nb_node_t *x = nb__in(g, n, 0);
    if (n->val != x->val) memcpy(n->val, x->val, nb__numel(n) * sizeof *n->val);
}

static void copy_backward(nb_graph *g, nb_node_t *n) {
    nb_node_t *x = nb__in(g, n, 0);
    if (!x->grad || x->grad == n->grad) return;
    size_t total = nb__numel(n);
    if (nb__grad_assign(n, 0)) memcpy(x->grad, n->grad, total * sizeof *x->grad);
    else
        for (size_t k = 0; k < total; k++) x->grad[k] += n->grad[k];
}

static const nb_op op_reshape = {
    .name = "reshape",
    .forward = copy_forward,
    .backward = copy_backward,
    .flags = NB_OP_VIEW | NB_OP_ASSIGNS_GRAD,
};
static const nb_op op_flatten = {
    .name = "flatten",
    .forward = copy_forward,
    .backward = copy_backward,
    .flags = NB_OP_VIEW | NB_OP_ASSIGNS_GRAD,
};

nb_node nb_reshape(nb_graph *g, nb_node x, int ndim, const int *dims) {
    if (!nb__begin(g, "reshape", 1, &x)) return NB_NONE;
    const nb_node_t *X = nb__node(g, x);
    int lead = X->batched; /* the batch dimension is kept as is */
    if (ndim < 0 || ndim + lead > NB_MAX_DIMS)
        return nb__fail(g, NB_ERR_SHAPE, "reshape: %d new dimensions%s (at most %d in all)",
                        ndim, lead ? " plus the batch" : "", NB_MAX_DIMS);
    if (ndim > 0 && !dims) return nb__fail(g, NB_ERR_ARG, "reshape: dims is NULL");
    char sx[96], sd[96];
    nb_shape_str(sx, sizeof sx, X->ndim, X->dims);
    nb_shape_str(sd, sizeof sd, ndim, dims);
    /* known: product of the given dims, in double so huge dims cannot wrap;
     * exact whenever it is <= have (< 2^53) */
    size_t have = nb__numel_from(X, lead);
    double known = 1;
    int infer = -1;
    for (int d = 0; d < ndim; d++) {
        if (dims[d] == -1 && infer < 0)
            infer = d;
        else if (dims[d] == -1)
            return nb__fail(g, NB_ERR_ARG, "reshape: new shape %s has more than one -1", sd);
        else if (dims[d] <= 0)
            return nb__fail(g, NB_ERR_SHAPE, "reshape: new shape %s has a dimension that "
                            "is neither positive nor -1", sd);
        else
            known *= dims[d];
    }
    const char *per = lead ? " per sample" : "", *bt = lead ? " (batched)" : "";
    int out[NB_MAX_DIMS];
    out[0] = X->dims[0]; /* overwritten below when x is not batched */
    for (int d = 0; d < ndim; d++) out[lead + d] = dims[d];
    if (infer >= 0) {
        if (known > (double)have || have % (size_t)known != 0)
            return nb__fail(g, NB_ERR_SHAPE, "reshape: cannot reshape %s%s into %s: %zu "
                            "elements%s are not a multiple of %.0f", sx, bt, sd, have, per,
                            known);
        if (have / (size_t)known > 2147483647u)
            return nb__fail(g, NB_ERR_SHAPE, "reshape: the -1 of %s would exceed %d", sd,
                            2147483647);
        out[lead + infer] = (int)(have / (size_t)known);
    } else if (known != (double)have) {
        return nb__fail(g, NB_ERR_SHAPE, "reshape: cannot reshape %s%s into %s: %zu "
                        "elements%s, the new shape holds %.0f", sx, bt, sd, have, per, known);
    }
    return nb__add_node(g, &op_reshape, 1, &x, ndim + lead, out, X->batched);
}

nb_node nb_flatten(nb_graph *g, nb_node x) {
    if (!nb__begin(g, "flatten", 1, &x)) return NB_NONE;
    const nb_node_t *X = nb__node(g, x);
    if (X->ndim < 1)
        return nb__fail(g, NB_ERR_SHAPE, "flatten: '%s' is a scalar []; flatten needs a "
                        "first dimension to keep", X->name);
    /* dim 0 is kept, batched or not; everything after it becomes one dim */
    long long rest = (long long)nb__numel_from(X, 1);
    if (rest > 2147483647LL) {
        char sx[96];
        return nb__fail(g, NB_ERR_SHAPE, "flatten: %s has too many elements per row",
                        nb_shape_str(sx, sizeof sx, X->ndim, X->dims));
    }
    int out[2] = {X->dims[0], (int)rest};
    return nb__add_node(g, &op_flatten, 1, &x, 2, out, X->batched);
}

/* ---- concat along one axis ----
 * Every input is viewed as [outer, len_k * inner] where outer is the product
 * of the dims before the axis; the output row o is the inputs' rows o laid
 * end to end.  settings.concat_axis holds the axis. */

static void concat_geometry(const nb_node_t *n, size_t *outer, size_t *inner) {
    int axis = n->settings.concat_axis;
    *outer = 1;
    for (int d = 0; d < axis; d++) *outer *= (size_t)n->dims[d];
    *inner = nb__numel_from(n, axis + 1);
}

static void concat_forward(nb_graph *g, nb_node_t *n) {
    size_t outer, inner, off = 0;
    concat_geometry(n, &outer, &inner);
    size_t row = (size_t)n->dims[n->settings.concat_axis] * inner;
    for (int k = 0; k < n->nin; k++) {
        const nb_node_t *x = nb__in(g, n, k);
        size_t len = (size_t)x->dims[n->settings.concat_axis] * inner;
        for (size_t o = 0; o < outer; o++)
            memcpy(n->val + o * row + off, x->val + o * len, len * sizeof *n->val);
        off += len;
    }
}

static void concat_backward(nb_graph *g, nb_node_t *n) {
    size_t outer, inner, off = 0;
    concat_geometry(n, &outer, &inner);
    size_t row = (size_t)n->dims[n->settings.concat_axis] * inner;
    for (int k = 0; k < n->nin; k++) {
        nb_node_t *x = nb__in(g, n, k);
        size_t len = (size_t)x->dims[n->settings.concat_axis] * inner;
        if (x->grad && nb__grad_assign(n, k))
            for (size_t o = 0; o < outer; o++)
                memcpy(x->grad + o * len, n->grad + o * row + off, len * sizeof *x->grad);
        else if (x->grad)
            for (size_t o = 0; o < outer; o++) {
                const nb_real *dy = n->grad + o * row + off;
                nb_real *dx = x->grad + o * len;
                for (size_t j = 0; j < len; j++) dx[j] += dy[j];
            }
        off += len;
    }
}

static const nb_op op_concat = {
    .name = "concat",
    .forward = concat_forward,
    .backward = concat_backward,
    .flags = NB_OP_ASSIGNS_GRAD,
};

nb_node nb_concat(nb_graph *g, int n, const nb_node *xs, int axis) {
    if (!nb__begin(g, "concat", 0, NULL)) return NB_NONE; /* checks g */
    if (n <= 0) return nb__fail(g, NB_ERR_ARG, "concat: %d inputs (need at least one)", n);
    if (!xs) return nb__fail(g, NB_ERR_ARG, "concat: xs is NULL");
    if (!nb__begin(g, "concat", n, xs)) return NB_NONE;
    const nb_node_t *F = nb__node(g, xs[0]);
    int ndim = F->ndim;
    if (axis < -ndim || axis >= ndim)
        return nb__fail(g, NB_ERR_ARG, "concat: axis %d is out of range for %d-dimensional "
                        "inputs", axis, ndim);
    if (axis < 0) axis += ndim;
    if (axis == 0 && F->batched)
        return nb__fail(g, NB_ERR_ARG, "concat: axis 0 is the batch axis of '%s'; concat "
                        "along a sample axis (>= 1)", F->name);
    int out[NB_MAX_DIMS];
    memcpy(out, F->dims, sizeof out);
    long long len = F->dims[axis];
    for (int k = 1; k < n; k++) {
        const nb_node_t *X = nb__node(g, xs[k]);
        int fits = X->ndim == ndim && X->batched == F->batched;
        for (int d = 0; fits && d < ndim; d++)
            if (d != axis && X->dims[d] != F->dims[d]) fits = 0;
        if (!fits) {
            char s0[96], sk[96];
            return nb__fail(g, NB_ERR_SHAPE, "concat: input 0 %s%s and input %d %s%s must "
                            "match except along axis %d", nb_shape_str(s0, sizeof s0, ndim, F->dims),
                            F->batched ? " (batched)" : "", k,
                            nb_shape_str(sk, sizeof sk, X->ndim, X->dims),
                            X->batched ? " (batched)" : "", axis);
        }
        len += X->dims[axis];
    }
    if (len > 2147483647LL) return nb__fail(g, NB_ERR_SHAPE, "concat: result too large");
    out[axis] = (int)len;
    if (n <= NB_MAX_INPUTS) {
        nb_node h = nb__add_node(g, &op_concat, n, xs, ndim, out, F->batched);
        if (h != NB_NONE) nb__node(g, h)->settings.concat_axis = axis;
        return h;
    }
    /* A node has at most NB_MAX_INPUTS inputs: concatenate groups first
     * (concat along one axis is associative), then the groups. */
    nb_node parts[NB_MAX_INPUTS];
    int per = (n + NB_MAX_INPUTS - 1) / NB_MAX_INPUTS, np = 0;
    for (int k = 0; k < n; k += per, np++) {
        int m = n - k < per ? n - k : per;
        parts[np] = nb_concat(g, m, xs + k, axis);
        if (parts[np] == NB_NONE) return NB_NONE;
    }
    return nb_concat(g, np, parts, axis);
}
