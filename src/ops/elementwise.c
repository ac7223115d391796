/* Elementwise add, sub, mul with broadcasting, and scale.
 *
 * Broadcasting: the smaller operand is repeated over the leading rows of the
 * larger one.  It must either have the same shape, match the larger one's
 * trailing dims (optionally with leading 1s: [N] or [1, N] against [B, N]),
 * or hold a single element.  i[0] records which side is the small one (0: b,
 * 1: a), i[1] its element count (0: same shape) and i[2] the operation. */
#include "../core/internal.h"

#include <string.h>

enum { EW_ADD, EW_SUB, EW_MUL };

static void ew_forward(nb_graph *g, nb_node_t *n) {
    const nb_node_t *a = nb__in(g, n, 0), *b = nb__in(g, n, 1);
    size_t total = nb__numel(n), inner = n->i[1] ? (size_t)n->i[1] : total;
    int small_is_a = n->i[0];
    const nb_real *A = a->val, *B = b->val;
    nb_real *y = n->val;
    for (size_t o = 0; o < total; o += inner) {
        const nb_real *pa = small_is_a ? A : A + o;
        const nb_real *pb = small_is_a ? B + o : B;
        nb_real *py = y + o;
        switch (n->i[2]) {
        case EW_ADD: for (size_t k = 0; k < inner; k++) py[k] = pa[k] + pb[k]; break;
        case EW_SUB: for (size_t k = 0; k < inner; k++) py[k] = pa[k] - pb[k]; break;
        default: for (size_t k = 0; k < inner; k++) py[k] = pa[k] * pb[k]; break;
        }
    }
}

static void ew_backward(nb_graph *g, nb_node_t *n) {
    const nb_node_t *a = nb__in(g, n, 0), *b = nb__in(g, n, 1);
    size_t total = nb__numel(n), inner = n->i[1] ? (size_t)n->i[1] : total;
    int small_is_a = n->i[0], kind = n->i[2];
    const nb_real *dy = n->grad;
    for (size_t o = 0; o < total; o += inner) {
        size_t oa = small_is_a ? 0 : o, ob = small_is_a ? o : 0;
        const nb_real *g0 = dy + o;
        if (a->grad) {
            nb_real *ga = a->grad + oa;
            if (kind == EW_MUL)
                for (size_t k = 0; k < inner; k++) ga[k] += g0[k] * b->val[ob + k];
            else
                for (size_t k = 0; k < inner; k++) ga[k] += g0[k];
        }
        if (b->grad) {
            nb_real *gb = b->grad + ob;
            if (kind == EW_MUL)
                for (size_t k = 0; k < inner; k++) gb[k] += g0[k] * a->val[oa + k];
            else if (kind == EW_SUB)
                for (size_t k = 0; k < inner; k++) gb[k] -= g0[k];
            else
                for (size_t k = 0; k < inner; k++) gb[k] += g0[k];
        }
    }
}

static const nb_op op_add = {"add", ew_forward, ew_backward, NULL};
static const nb_op op_sub = {"sub", ew_forward, ew_backward, NULL};
static const nb_op op_mul = {"mul", ew_forward, ew_backward, NULL};

/* Can `small` be repeated over the rows of `big`? */
static int broadcasts(const nb_node_t *big, const nb_node_t *small) {
    if (!small->batched && nb__numel(small) == 1) return 1;
    if (small->batched && !big->batched) return 0;
    if (small->batched) /* both batched: only identical shapes */
        return small->ndim == big->ndim &&
               memcmp(small->dims, big->dims, (size_t)big->ndim * sizeof(int)) == 0;
    int lead = 0; /* skip leading 1s of the small shape */
    while (lead < small->ndim && small->dims[lead] == 1) lead++;
    int k = small->ndim - lead;
    /* never match the batch dimension: its size changes at run time */
    if (k > big->ndim - big->batched) return 0;
    for (int d = 0; d < k; d++)
        if (small->dims[lead + d] != big->dims[big->ndim - k + d]) return 0;
    return 1;
}

static nb_node elementwise(nb_graph *g, const nb_op *op, int kind, nb_node a, nb_node b) {
    nb_node in[2] = {a, b};
    if (!nb__begin(g, op->name, 2, in)) return NB_NONE;
    const nb_node_t *A = nb__node(g, a), *B = nb__node(g, b);
    size_t na = nb__numel(A), nb = nb__numel(B);
    int same = A->ndim == B->ndim && A->batched == B->batched &&
               memcmp(A->dims, B->dims, (size_t)A->ndim * sizeof(int)) == 0;
    /* the larger operand gives the output shape; batched counts as larger */
    int small_is_a = !same && (A->batched < B->batched || (A->batched == B->batched && na < nb));
    const nb_node_t *big = small_is_a ? B : A, *small = small_is_a ? A : B;
    if (!same && !broadcasts(big, small)) {
        char sa[96], sb[96];
        return nb__fail(g, NB_ERR_SHAPE, "%s: shapes %s%s and %s%s do not broadcast (need "
                        "equal shapes, a trailing-shape match, or one element)", op->name,
                        nb_shape_str(sa, sizeof sa, A->ndim, A->dims),
                        A->batched ? " (batched)" : "",
                        nb_shape_str(sb, sizeof sb, B->ndim, B->dims),
                        B->batched ? " (batched)" : "");
    }
    nb_node h = nb__add_node(g, op, 2, in, big->ndim, big->dims, big->batched);
    if (h == NB_NONE) return NB_NONE;
    nb_node_t *n = nb__node(g, h);
    n->i[0] = small_is_a;
    n->i[1] = same ? 0 : (int)nb__numel(small);
    n->i[2] = kind;
    return h;
}

nb_node nb_add(nb_graph *g, nb_node a, nb_node b) { return elementwise(g, &op_add, EW_ADD, a, b); }
nb_node nb_sub(nb_graph *g, nb_node a, nb_node b) { return elementwise(g, &op_sub, EW_SUB, a, b); }
nb_node nb_mul(nb_graph *g, nb_node a, nb_node b) { return elementwise(g, &op_mul, EW_MUL, a, b); }

/* ---- scale: y = s x, s stored in f[0] ---- */

static void scale_forward(nb_graph *g, nb_node_t *n) {
    const nb_node_t *x = nb__in(g, n, 0);
    nb_real s = (nb_real)n->f[0];
    size_t total = nb__numel(n);
    for (size_t k = 0; k < total; k++) n->val[k] = s * x->val[k];
}

static void scale_backward(nb_graph *g, nb_node_t *n) {
    nb_node_t *x = nb__in(g, n, 0);
    if (!x->grad) return;
    nb_real s = (nb_real)n->f[0];
    size_t total = nb__numel(n);
    for (size_t k = 0; k < total; k++) x->grad[k] += s * n->grad[k];
}

static const nb_op op_scale = {"scale", scale_forward, scale_backward, NULL};

nb_node nb_scale(nb_graph *g, nb_node x, nb_real s) {
    if (!nb__begin(g, "scale", 1, &x)) return NB_NONE;
    if (!isfinite(s)) return nb__fail(g, NB_ERR_ARG, "scale: factor is not finite");
    const nb_node_t *X = nb__node(g, x);
    nb_node h = nb__add_node(g, &op_scale, 1, &x, X->ndim, X->dims, X->batched);
    if (h != NB_NONE) nb__node(g, h)->f[0] = (double)s;
    return h;
}
