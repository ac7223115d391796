/* Elementwise add, sub, mul with broadcasting, and scale.
 *
 * Broadcasting: the smaller operand is repeated over the leading rows of the
 * larger one.  It must either have the same shape, match the larger one's
 * trailing dims (optionally with leading 1s: [N] or [1, N] against [B, N]),
 * or hold a single element.  The settings (nb_binary_settings) record the
 * operation, which side is the small one and its element count. */
#include "../core/internal.h"

#include <string.h>

static void ew_forward(nb_graph *g, nb_node_t *n) {
    const nb_node_t *a = nb__in(g, n, 0), *b = nb__in(g, n, 1);
    const nb_binary_settings *bs = &n->settings.binary;
    size_t total = nb__numel(n), inner = bs->small_numel ? (size_t)bs->small_numel : total;
    int small_is_a = bs->small_is_a;
    const nb_real *A = a->val, *B = b->val;
    nb_real *y = n->val;
    for (size_t o = 0; o < total; o += inner) {
        const nb_real *pa = small_is_a ? A : A + o;
        const nb_real *pb = small_is_a ? B + o : B;
        nb_real *py = y + o;
        switch (bs->kind) {
        case NB_BINARY_ADD: for (size_t k = 0; k < inner; k++) py[k] = pa[k] + pb[k]; break;
        case NB_BINARY_SUB: for (size_t k = 0; k < inner; k++) py[k] = pa[k] - pb[k]; break;
        case NB_BINARY_MUL: for (size_t k = 0; k < inner; k++) py[k] = pa[k] * pb[k]; break;
        }
    }
}

/* d = sign * s * f (f NULL: 1) when set, else d += that; d is not read
 * when set (it holds stale values). */
static void put_grad(nb_real *restrict d, const nb_real *restrict s, const nb_real *restrict f,
                     nb_real sign, size_t len, int set) {
    if (f && set)
        for (size_t k = 0; k < len; k++) d[k] = s[k] * f[k];
    else if (f)
        for (size_t k = 0; k < len; k++) d[k] += s[k] * f[k];
    else if (set)
        for (size_t k = 0; k < len; k++) d[k] = sign * s[k];
    else
        for (size_t k = 0; k < len; k++) d[k] += sign * s[k];
}

static void ew_backward(nb_graph *g, nb_node_t *n) {
    const nb_node_t *a = nb__in(g, n, 0), *b = nb__in(g, n, 1);
    const nb_binary_settings *bs = &n->settings.binary;
    size_t total = nb__numel(n), inner = bs->small_numel ? (size_t)bs->small_numel : total;
    int small_is_a = bs->small_is_a;
    nb_binary_kind kind = bs->kind;
    /* the broadcast operand's gradient sums the rows: it is added up */
    if (bs->small_numel) nb__grad_add_only(g, n, small_is_a ? 0 : 1);
    int set_a = nb__grad_assign(n, 0), set_b = nb__grad_assign(n, 1);
    const nb_real *dy = n->grad;
    for (size_t o = 0; o < total; o += inner) {
        size_t oa = small_is_a ? 0 : o, ob = small_is_a ? o : 0;
        if (a->grad)
            put_grad(a->grad + oa, dy + o, kind == NB_BINARY_MUL ? b->val + ob : NULL, R(1),
                     inner, set_a);
        if (b->grad)
            put_grad(b->grad + ob, dy + o, kind == NB_BINARY_MUL ? a->val + oa : NULL,
                     kind == NB_BINARY_SUB ? R(-1) : R(1), inner, set_b);
    }
}

static const nb_op op_add = {.name = "add", .forward = ew_forward, .backward = ew_backward,
                             .flags = NB_OP_ASSIGNS_GRAD};
static const nb_op op_sub = {.name = "sub", .forward = ew_forward, .backward = ew_backward,
                             .flags = NB_OP_ASSIGNS_GRAD};
static const nb_op op_mul = {.name = "mul", .forward = ew_forward, .backward = ew_backward,
                             .flags = NB_OP_ASSIGNS_GRAD};

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
    /* against a batched operand only the per-sample dims may match: the
     * batch size changes at run time */
    if (k > big->ndim - (big->batched ? 1 : 0)) return 0;
    for (int d = 0; d < k; d++)
        if (small->dims[lead + d] != big->dims[big->ndim - k + d]) return 0;
    return 1;
}

static nb_node elementwise(nb_graph *g, const nb_op *op, nb_binary_kind kind, nb_node a,
                           nb_node b) {
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
    nb__node(g, h)->settings.binary = (nb_binary_settings){
        .kind = kind, .small_is_a = small_is_a, .small_numel = same ? 0 : (int)nb__numel(small)};
    return h;
}

nb_node nb_add(nb_graph *g, nb_node a, nb_node b) {
    return elementwise(g, &op_add, NB_BINARY_ADD, a, b);
}
nb_node nb_sub(nb_graph *g, nb_node a, nb_node b) {
    return elementwise(g, &op_sub, NB_BINARY_SUB, a, b);
}
nb_node nb_mul(nb_graph *g, nb_node a, nb_node b) {
    return elementwise(g, &op_mul, NB_BINARY_MUL, a, b);
}

/* ---- scale: y = s x, s the node's settings.scale ---- */

static void scale_forward(nb_graph *g, nb_node_t *n) {
    const nb_node_t *x = nb__in(g, n, 0);
    nb_real s = n->settings.scale;
    size_t total = nb__numel(n);
    for (size_t k = 0; k < total; k++) n->val[k] = s * x->val[k];
}

static void scale_backward(nb_graph *g, nb_node_t *n) {
    nb_node_t *x = nb__in(g, n, 0);
    if (!x->grad) return;
    put_grad(x->grad, n->grad, NULL, n->settings.scale, nb__numel(n), nb__grad_assign(n, 0));
}

static const nb_op op_scale = {
    .name = "scale",
    .forward = scale_forward,
    .backward = scale_backward,
    .flags = NB_OP_ASSIGNS_GRAD,
};

nb_node nb_scale(nb_graph *g, nb_node x, nb_real s) {
    if (!nb__begin(g, "scale", 1, &x)) return NB_NONE;
    if (!isfinite(s)) return nb__fail(g, NB_ERR_ARG, "scale: factor is not finite");
    const nb_node_t *X = nb__node(g, x);
    nb_node h = nb__add_node(g, &op_scale, 1, &x, X->ndim, X->dims, X->batched);
    if (h != NB_NONE) nb__node(g, h)->settings.scale = s;
    return h;
}
