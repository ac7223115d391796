/* Dense layers and matrix products: every product is one GEMM over the whole
 * mini-batch (the design matrix), never a per-sample loop. */
#include "../core/internal.h"
#include "../kernels/gemm.h"

#include <stdio.h>
#include <string.h>

/* ---- linear: y = x W^T + b, x [rows.., in], W [out, in], b [out] ---- */

/* With a relu fused (nb__epilogue: the relu is the layer's only consumer and
 * the kernel applies it as it stores), the product goes straight to the
 * relu's value and the layer's own value is left stale (fusion.c). */
static void linear_forward(nb_graph *g, nb_node_t *n) {
    nb_node_t *x = nb__in(g, n, 0), *w = nb__in(g, n, 1), *relu = nb__epilogue(g, n);
    int in = w->dims[1], out = w->dims[0];
    int rows = (int)(nb__numel(x) / (size_t)in);
    const nb_real *b = n->nin == 3 ? nb__in(g, n, 2)->val : NULL;
    nb_gemm_dense(g->precision, rows, out, in, x->val, w->val, b, relu != NULL,
                  relu ? relu->val : n->val);
}

/* The relu is fused only where the kernel applies it in its store. */
static int linear_fuses_relu(const nb_graph *g, const nb_node_t *n) {
    (void)n;
    return nb_gemm_dense_fuses_relu(g->precision);
}

static void linear_backward(nb_graph *g, nb_node_t *n) {
    nb_node_t *x = nb__in(g, n, 0), *w = nb__in(g, n, 1);
    int in = w->dims[1], out = w->dims[0];
    int rows = (int)(nb__numel(x) / (size_t)in);
    /* beta 0 overwrites an input's gradient, without reading it */
    if (x->grad) /* dx += dy W */
        nb_gemm_at(g->precision, 0, 0, rows, in, out, R(1), n->grad, out, w->val, in,
                   nb__grad_assign(n, 0) ? R(0) : R(1), x->grad, in);
    if (w->grad) /* dW += dy^T x */
        nb_gemm_at(g->precision, 1, 0, out, in, rows, R(1), n->grad, out, x->val, in,
                   nb__grad_assign(n, 1) ? R(0) : R(1), w->grad, in);
    if (n->nin == 3) nb__grad_add_only(g, n, 2);
    if (n->nin == 3 && nb__in(g, n, 2)->grad) { /* db += column sums of dy */
        nb_real *db = nb__in(g, n, 2)->grad;
        for (int r = 0; r < rows; r++) {
            const nb_real *dy = n->grad + (size_t)r * out;
            for (int j = 0; j < out; j++) db[j] += dy[j];
        }
    }
}

/* 2 per multiply-add of the product, plus the bias */
static double linear_flops(const nb_graph *g, const nb_node_t *n) {
    const nb_node_t *w = &g->nodes[n->in[1]];
    double rows = (double)nb__numel(n) / w->dims[0];
    return rows * w->dims[0] * (2.0 * w->dims[1] + (n->nin == 3));
}

static const nb_op op_linear = {
    .name = "linear",
    .forward = linear_forward,
    .backward = linear_backward,
    .flops = linear_flops,
    .fuses_relu = linear_fuses_relu,
    .flags = NB_OP_ASSIGNS_GRAD | NB_OP_FUSES_RELU_VALUE,
};

nb_node nb_linear(nb_graph *g, nb_node x, nb_node w, nb_node b) {
    nb_node in[3] = {x, w, b};
    int nin = b == NB_NONE ? 2 : 3;
    if (!nb__begin(g, "linear", nin, in)) return NB_NONE;
    const nb_node_t *X = nb__node(g, x), *W = nb__node(g, w);
    char sx[96], sw[96], sb[96];
    nb_shape_str(sx, sizeof sx, X->ndim, X->dims);
    nb_shape_str(sw, sizeof sw, W->ndim, W->dims);
    if (W->ndim != 2)
        return nb__fail(g, NB_ERR_SHAPE, "linear: weight '%s' has shape %s; expected "
                        "[out_features, in_features]", W->name, sw);
    if (X->ndim < 1 || X->dims[X->ndim - 1] != W->dims[1])
        return nb__fail(g, NB_ERR_SHAPE, "linear: input '%s' has shape %s but weight '%s' "
                        "%s expects %d input features", X->name, sx, W->name, sw, W->dims[1]);
    if (X->ndim < 2 && !X->batched)
        return nb__fail(g, NB_ERR_SHAPE, "linear: input '%s' has shape %s; expected "
                        "[rows, %d]", X->name, sx, W->dims[1]);
    if (nin == 3) {
        const nb_node_t *B = nb__node(g, b);
        if (B->ndim != 1 || B->dims[0] != W->dims[0])
            return nb__fail(g, NB_ERR_SHAPE, "linear: bias '%s' has shape %s; expected [%d]",
                            B->name, nb_shape_str(sb, sizeof sb, B->ndim, B->dims), W->dims[0]);
    }
    int dims[NB_MAX_DIMS];
    memcpy(dims, X->dims, sizeof dims);
    dims[X->ndim - 1] = W->dims[0];
    return nb__add_node(g, &op_linear, nin, in, X->ndim, dims, X->batched);
}

nb_node nb_dense(nb_graph *g, nb_node x, int out_features, const char *name,
                 const nb_dense_opts *opts) {
    if (!nb__begin(g, "dense", 1, &x)) return NB_NONE;
    const nb_node_t *X = nb__node(g, x);
    if (out_features <= 0)
        return nb__fail(g, NB_ERR_ARG, "dense: out_features %d is not positive", out_features);
    if (X->ndim < 2) {
        char sx[96];
        return nb__fail(g, NB_ERR_SHAPE, "dense: input '%s' has shape %s; expected "
                        "[batch, features]", X->name,
                        nb_shape_str(sx, sizeof sx, X->ndim, X->dims));
    }
    int in_features = X->dims[X->ndim - 1];
    char base[48], pname[64];
    if (name && name[0]) snprintf(base, sizeof base, "%s", name);
    else nb__auto_name(g, "dense", base, sizeof base);
    nb_dense_opts o = {0};
    if (opts) o = *opts;
    if (o.weight_init.kind == NB_INIT_DEFAULT) o.weight_init.kind = NB_INIT_TORCH_LINEAR;
    if (o.bias_init.kind == NB_INIT_DEFAULT) {
        /* PyTorch: bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the weight's fan_in */
        double bound = 1.0 / sqrt((double)in_features);
        o.bias_init = (nb_init){.kind = NB_INIT_UNIFORM, .a = -bound, .b = bound};
    }
    int wd[2] = {out_features, in_features};
    snprintf(pname, sizeof pname, "%s.weight", base);
    nb_node w = nb_param(g, pname, 2, wd, o.weight_init);
    nb_node b = NB_NONE;
    if (!o.no_bias) {
        snprintf(pname, sizeof pname, "%s.bias", base);
        b = nb_param(g, pname, 1, &out_features, o.bias_init);
        if (b == NB_NONE) return NB_NONE;
    }
    if (w == NB_NONE) return NB_NONE;
    nb_node y = nb_linear(g, x, w, b);
    if (y != NB_NONE) nb__set_name(g, y, base);
    return y;
}

/* ---- matmul: a [M, K] (may be batched) times b [K, N] ---- */

static void matmul_forward(nb_graph *g, nb_node_t *n) {
    nb_node_t *a = nb__in(g, n, 0), *b = nb__in(g, n, 1);
    int M = a->dims[0], K = a->dims[1], N = b->dims[1];
    nb_gemm_at(g->precision, 0, 0, M, N, K, R(1), a->val, K, b->val, N, R(0), n->val, N);
}

static void matmul_backward(nb_graph *g, nb_node_t *n) {
    nb_node_t *a = nb__in(g, n, 0), *b = nb__in(g, n, 1);
    int M = a->dims[0], K = a->dims[1], N = b->dims[1];
    if (a->grad) /* da += dy b^T (beta 0: overwrite) */
        nb_gemm_at(g->precision, 0, 1, M, K, N, R(1), n->grad, N, b->val, N,
                   nb__grad_assign(n, 0) ? R(0) : R(1), a->grad, K);
    if (b->grad) /* db += a^T dy */
        nb_gemm_at(g->precision, 1, 0, K, N, M, R(1), a->val, K, n->grad, N,
                   nb__grad_assign(n, 1) ? R(0) : R(1), b->grad, N);
}

static double matmul_flops(const nb_graph *g, const nb_node_t *n) {
    return 2.0 * (double)nb__numel(n) * g->nodes[n->in[0]].dims[1];
}

static const nb_op op_matmul = {
    .name = "matmul",
    .forward = matmul_forward,
    .backward = matmul_backward,
    .flops = matmul_flops,
    .flags = NB_OP_ASSIGNS_GRAD,
};

nb_node nb_matmul(nb_graph *g, nb_node a, nb_node b) {
    nb_node in[2] = {a, b};
    if (!nb__begin(g, "matmul", 2, in)) return NB_NONE;
    const nb_node_t *A = nb__node(g, a), *B = nb__node(g, b);
    char sa[96], sb[96];
    nb_shape_str(sa, sizeof sa, A->ndim, A->dims);
    nb_shape_str(sb, sizeof sb, B->ndim, B->dims);
    if (A->ndim != 2 || B->ndim != 2 || A->dims[1] != B->dims[0])
        return nb__fail(g, NB_ERR_SHAPE, "matmul: shapes %s and %s do not multiply "
                        "(need [M, K] and [K, N])", sa, sb);
    if (B->batched)
        return nb__fail(g, NB_ERR_SHAPE, "matmul: %s times %s: the right operand must not "
                        "be batched (its rows are the contraction dimension)", sa, sb);
    int dims[2] = {A->dims[0], B->dims[1]};
    return nb__add_node(g, &op_matmul, 2, in, 2, dims, A->batched);
}
