/* Embeddings (PyTorch's nn.Embedding): a table of V rows of D values, and
 * token ids that pick rows.  Forward gathers the rows; backward adds each
 * position's gradient into the row it picked (a scatter-add: a token that
 * appears twice gets both).  The ids are reals holding whole numbers; one
 * that is not an integer in [0, V) is bad data, reported at run time with
 * the sample and the position (its output row is NaN).
 *
 * Learned positional embeddings are a [T, D] table added to every sample
 * of a [B, T, D] tensor (nb_add broadcasts it), named like an nn.Embedding
 * whose rows are the positions. */
#include "../core/internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Is v a token id of a table of V rows?  (NaN fails every comparison.) */
static int token_index(nb_real v, int V, int *out) {
    if (!(v >= 0 && v < (nb_real)V) || (double)v != floor((double)v)) return 0;
    *out = (int)v;
    return 1;
}

/* ---- embedding: ids [B, ...] of a table W [V, D] -> [B, ..., D] ---- */

static void embedding_forward(nb_graph *g, nb_node_t *n) {
    const nb_node_t *ids = nb__in(g, n, 0), *w = nb__in(g, n, 1);
    int V = w->dims[0], D = w->dims[1];
    size_t total = nb__numel(ids), per_sample = total / (size_t)ids->dims[0];
    for (size_t k = 0; k < total; k++) {
        nb_real *y = n->val + k * (size_t)D;
        int row;
        if (token_index(ids->val[k], V, &row)) {
            memcpy(y, w->val + (size_t)row * D, (size_t)D * sizeof *y);
            continue;
        }
        nb__run_fail(g, NB_ERR_ARG, "embedding '%s': sample %zu of the batch, position %zu: "
                     "token %g is not an integer in [0, %d)", n->name, k / per_sample,
                     k % per_sample, (double)ids->val[k], V);
        for (int d = 0; d < D; d++) y[d] = NAN;
    }
}

static void embedding_backward(nb_graph *g, nb_node_t *n) {
    const nb_node_t *ids = nb__in(g, n, 0), *w = nb__in(g, n, 1);
    if (!w->grad) return; /* the ids get none: the output is piecewise constant in them */
    int V = w->dims[0], D = w->dims[1];
    size_t total = nb__numel(ids);
    for (size_t k = 0; k < total; k++) {
        int row;
        if (!token_index(ids->val[k], V, &row)) continue; /* forward reported it */
        nb_real *dw = w->grad + (size_t)row * D;
        const nb_real *dy = n->grad + k * (size_t)D;
        for (int d = 0; d < D; d++) dw[d] += dy[d];
    }
}

/* a copy, no arithmetic */
static double embedding_flops(const nb_graph *g, const nb_node_t *n) {
    (void)g;
    (void)n;
    return 0;
}

static const nb_op op_embedding = {
    .name = "embedding",
    .forward = embedding_forward,
    .backward = embedding_backward,
    .flops = embedding_flops,
};

nb_node nb_embedding_lookup(nb_graph *g, nb_node ids, nb_node table) {
    nb_node in[2] = {ids, table};
    if (!nb__begin(g, "embedding", 2, in)) return NB_NONE;
    const nb_node_t *I = nb__node(g, ids), *W = nb__node(g, table);
    char si[96], sw[96];
    nb_shape_str(si, sizeof si, I->ndim, I->dims);
    nb_shape_str(sw, sizeof sw, W->ndim, W->dims);
    if (W->ndim != 2 || W->batched)
        return nb__fail(g, NB_ERR_SHAPE, "embedding: table '%s' has shape %s; expected "
                        "[vocabulary, dim], not batched", W->name, sw);
    if (!I->batched || I->ndim < 2 || I->ndim + 1 > NB_MAX_DIMS)
        return nb__fail(g, NB_ERR_SHAPE, "embedding: token ids '%s' have shape %s; expected "
                        "a batched [batch, positions] (at most %d dimensions)", I->name, si,
                        NB_MAX_DIMS - 1);
    int dims[NB_MAX_DIMS];
    memcpy(dims, I->dims, (size_t)I->ndim * sizeof *dims);
    dims[I->ndim] = W->dims[1];
    return nb__add_node(g, &op_embedding, 2, in, I->ndim + 1, dims, 1);
}

/* The layer's base name: name, or a generated "<prefix><k>". */
static void base_name(nb_graph *g, const char *name, const char *prefix, char *buf,
                      size_t size) {
    if (name && name[0]) snprintf(buf, size, "%s", name);
    else nb__auto_name(g, prefix, buf, size);
}

nb_node nb_embedding(nb_graph *g, nb_node ids, int vocab, int dim, const char *name) {
    if (!nb__begin(g, "embedding", 1, &ids)) return NB_NONE;
    if (vocab <= 0 || dim <= 0)
        return nb__fail(g, NB_ERR_ARG, "embedding: vocabulary %d and dimension %d must be "
                        "positive", vocab, dim);
    char base[48], pname[64];
    base_name(g, name, "embedding", base, sizeof base);
    snprintf(pname, sizeof pname, "%s.weight", base);
    int wd[2] = {vocab, dim};
    /* PyTorch's nn.Embedding draws its table from N(0, 1) */
    nb_node w = nb_param(g, pname, 2, wd, (nb_init){.kind = NB_INIT_NORMAL, .a = 0, .b = 1});
    nb_node y = nb_embedding_lookup(g, ids, w);
    if (y != NB_NONE) nb__set_name(g, y, base);
    return y;
}

nb_node nb_pos_embedding(nb_graph *g, nb_node x, const char *name) {
    if (!nb__begin(g, "pos_embedding", 1, &x)) return NB_NONE;
    const nb_node_t *X = nb__node(g, x);
    if (!X->batched || X->ndim != 3) {
        char sx[96];
        return nb__fail(g, NB_ERR_SHAPE, "pos_embedding: input '%s' has shape %s; expected "
                        "a batched [batch, positions, dim]", X->name,
                        nb_shape_str(sx, sizeof sx, X->ndim, X->dims));
    }
    int td[2] = {X->dims[1], X->dims[2]};
    char base[48], pname[64];
    base_name(g, name, "pos_embedding", base, sizeof base);
    snprintf(pname, sizeof pname, "%s.weight", base);
    nb_node w = nb_param(g, pname, 2, td, (nb_init){.kind = NB_INIT_NORMAL, .a = 0, .b = 1});
    nb_node y = nb_add(g, x, w);
    if (y != NB_NONE) nb__set_name(g, y, base);
    return y;
}
