/* Multi-head self-attention, as PyTorch's nn.MultiheadAttention computes it
 * (docs/definitions.md, Attention).
 *
 * nb_attention is three nodes: the q/k/v in-projection (one linear node: one
 * GEMM over all B*T rows), the scaled dot-product attention of every head
 * (the op of this file), and the out-projection (another linear node).  The
 * core op reads the packed projection qkv [B, T, 3D]: q, k and v side by
 * side along the last dim, head h owning columns h*dh .. (h+1)*dh of each,
 * dh = D / heads.  For every sample and head
 *     S = q k^T / sqrt(dh)   (T x T; causal: S[i][j] = -inf for j > i)
 *     P = softmax(S) by rows,  out = P v,
 * each product one GEMM on strided views of qkv, written straight into the
 * head's columns of the output [B, T, D].  P is kept in the scratch for the
 * backward pass:
 *     dP = dout v^T,  dv = P^T dout,
 *     dS = P * (dP - rowsum(dP * P)),           (softmax's backward)
 *     dq = dS k / sqrt(dh),  dk = dS^T q / sqrt(dh).
 * A masked entry has P = 0, so it gets no gradient.  The scratch holds P for
 * every sample and head, and a T x T block for dP per part. */
#include "../core/internal.h"
#include "../kernels/gemm.h"
#include "../kernels/parallel.h"
#include "../kernels/vmath.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct attn_shape {
    int B, T, D, H, dh;
} attn_shape;

static attn_shape shape_of(const nb_node_t *n) {
    attn_shape s = {.B = n->dims[0], .T = n->dims[1], .D = n->dims[2],
                    .H = n->settings.attention.heads};
    s.dh = s.D / s.H;
    return s;
}

/* The (sample, head) pairs run in parallel: each writes its own block of P,
 * its own columns of the output and of the input gradient, so a pair's
 * result does not depend on the thread.  Backward needs a T x T block for
 * dP per part: the scratch holds one lane per thread (at most MAX_LANES). */
#define MAX_LANES 16
#define MIN_PART_FLOPS 65536.0

static int lanes_for(const attn_shape *s) {
    int lanes = nb_threads() < MAX_LANES ? nb_threads() : MAX_LANES;
    if (lanes > s->B * s->H) lanes = s->B * s->H;
    return lanes < 1 ? 1 : lanes;
}

static size_t attn_scratch(const nb_graph *g, const nb_node_t *n) {
    (void)g;
    attn_shape s = shape_of(n);
    size_t tt = (size_t)s.T * (size_t)s.T;
    return ((size_t)s.B * (size_t)s.H + (size_t)lanes_for(&s)) * tt;
}

typedef struct attn_job {
    nb_graph *g;
    nb_node_t *n;
    attn_shape s;
    int parts;
} attn_job;

/* Parts for the pairs: enough work for each, no more than the threads free
 * now and the dP lanes planned. */
static attn_job job_of(nb_graph *g, nb_node_t *n) {
    attn_job j = {.g = g, .n = n, .s = shape_of(n)};
    size_t pairs = (size_t)j.s.B * (size_t)j.s.H, tt = (size_t)j.s.T * (size_t)j.s.T;
    double flops = 4.0 * (double)tt * j.s.dh;
    size_t per_part = flops >= MIN_PART_FLOPS ? 1 : (size_t)(MIN_PART_FLOPS / flops) + 1;
    size_t lanes = (n->scratch_len - pairs * tt) / tt;
    j.parts = nb__part_count(pairs, per_part);
    if ((size_t)j.parts > lanes) j.parts = (int)lanes;
    if (j.parts < 1) j.parts = 1;
    return j;
}

static void run_parts(attn_job *j, void (*fn)(void *, int)) {
    if (j->parts == 1) fn(j, 0);
    else nb__parallel(j->parts, fn, j);
}

/* The T x T scores in place, row by row: masked (causal) softmax.  Each row
 * less its maximum, the masked entries -inf (whose exp is 0); then the
 * exponentials of the whole block in one flat vectorised loop (a row of 16
 * alone would spend as long in the loop's set-up); then each row's sum. */
NB_VECTOR_LOOP static void softmax_rows(nb_real *P, int T, int causal) {
    for (int i = 0; i < T; i++) {
        nb_real *row = P + (size_t)i * T, m = row[0];
        int valid = causal ? i + 1 : T, j = 1;
        for (; j < valid; j++)
            if (row[j] > m) m = row[j];
        for (j = 0; j < valid; j++) row[j] -= m;
        for (; j < T; j++) row[j] = -INFINITY;
    }
    for (size_t k = 0; k < (size_t)T * T; k++) P[k] = nb_vexp(P[k]);
    for (int i = 0; i < T; i++) {
        nb_real *row = P + (size_t)i * T;
        nb_real inv = R(1) / nb_vsum(row, T); /* >= 1: the maximum contributes exp(0) */
        for (int j = 0; j < T; j++) row[j] *= inv;
    }
}

static void forward_part(void *ctx, int part) {
    attn_job *j = ctx;
    const attn_shape s = j->s;
    const nb_node_t *x = nb__in(j->g, j->n, 0);
    const int ld = 3 * s.D, causal = j->n->settings.attention.causal;
    const nb_real scale = R(1) / nb_sqrt((nb_real)s.dh);
    const size_t tt = (size_t)s.T * (size_t)s.T;
    size_t lo, hi;
    nb__part_range((size_t)s.B * s.H, part, j->parts, 1, &lo, &hi);
    for (size_t pair = lo; pair < hi; pair++) {
        int b = (int)(pair / (size_t)s.H), h = (int)(pair % (size_t)s.H);
        const nb_real *q = x->val + (size_t)b * s.T * ld + h * s.dh, *k = q + s.D, *v = q + 2 * s.D;
        nb_real *P = j->n->scratch + pair * tt;
        nb_real *out = j->n->val + (size_t)b * s.T * s.D + h * s.dh;
        nb_gemm(0, 1, s.T, s.T, s.dh, scale, q, ld, k, ld, R(0), P, s.T);
        softmax_rows(P, s.T, causal);
        nb_gemm(0, 0, s.T, s.dh, s.T, R(1), P, s.T, v, ld, R(0), out, s.D);
    }
}

static void attn_forward(nb_graph *g, nb_node_t *n) {
    attn_job j = job_of(g, n);
    run_parts(&j, forward_part);
}

/* dP becomes dS = P * (dP - rowsum(dP * P)), row by row. */
NB_VECTOR_LOOP static void softmax_grad(nb_real *dP, const nb_real *P, int T) {
    for (int i = 0; i < T; i++) {
        nb_real *d = dP + (size_t)i * T;
        const nb_real *p = P + (size_t)i * T, dot = nb_vdot(d, p, T);
        for (int j = 0; j < T; j++) d[j] = p[j] * (d[j] - dot);
    }
}

static void backward_part(void *ctx, int part) {
    attn_job *j = ctx;
    const attn_shape s = j->s;
    nb_node_t *x = nb__in(j->g, j->n, 0);
    const int ld = 3 * s.D;
    const nb_real scale = R(1) / nb_sqrt((nb_real)s.dh);
    const size_t tt = (size_t)s.T * (size_t)s.T, pairs = (size_t)s.B * s.H;
    nb_real *dP = j->n->scratch + (pairs + (size_t)part) * tt; /* this part's lane */
    size_t lo, hi;
    nb__part_range(pairs, part, j->parts, 1, &lo, &hi);
    for (size_t pair = lo; pair < hi; pair++) {
        size_t b = pair / (size_t)s.H, off = b * s.T * ld + pair % (size_t)s.H * s.dh;
        const nb_real *q = x->val + off, *k = q + s.D, *v = q + 2 * s.D;
        nb_real *dq = x->grad + off, *dk = dq + s.D, *dv = dq + 2 * s.D;
        const nb_real *P = j->n->scratch + pair * tt;
        const nb_real *dh = j->n->grad + b * s.T * s.D + pair % (size_t)s.H * s.dh;
        nb_gemm(0, 1, s.T, s.T, s.dh, R(1), dh, s.D, v, ld, R(0), dP, s.T);
        nb_gemm(1, 0, s.T, s.dh, s.T, R(1), P, s.T, dh, s.D, R(1), dv, ld);
        softmax_grad(dP, P, s.T);
        nb_gemm(0, 0, s.T, s.dh, s.T, scale, dP, s.T, k, ld, R(1), dq, ld);
        nb_gemm(1, 0, s.T, s.dh, s.T, scale, dP, s.T, q, ld, R(1), dk, ld);
    }
}

static void attn_backward(nb_graph *g, nb_node_t *n) {
    if (!nb__in(g, n, 0)->grad) return;
    attn_job j = job_of(g, n);
    run_parts(&j, backward_part);
}

/* two products of 2 T T dh per head, and the softmax (about 5 per score) */
static double attn_flops(const nb_graph *g, const nb_node_t *n) {
    (void)g;
    attn_shape s = shape_of(n);
    double scores = (double)s.B * s.H * s.T * s.T;
    return scores * (4.0 * s.dh + 5.0);
}

static const nb_op op_attention = {
    .name = "attention",
    .forward = attn_forward,
    .backward = attn_backward,
    .scratch = attn_scratch,
    .flops = attn_flops,
};

nb_node nb_dot_product_attention(nb_graph *g, nb_node qkv, int heads, int causal) {
    if (!nb__begin(g, "attention", 1, &qkv)) return NB_NONE;
    const nb_node_t *X = nb__node(g, qkv);
    char sx[96];
    nb_shape_str(sx, sizeof sx, X->ndim, X->dims);
    if (X->ndim != 3 || !X->batched || X->dims[2] % 3 != 0)
        return nb__fail(g, NB_ERR_SHAPE, "attention: input '%s' has shape %s; expected the "
                        "packed projections [batch, T, 3 D] (q, k, v)", X->name, sx);
    int D = X->dims[2] / 3;
    if (heads < 1 || D % heads != 0)
        return nb__fail(g, NB_ERR_SHAPE, "attention: %d heads do not divide the model "
                        "dimension D = %d of input '%s' %s", heads, D, X->name, sx);
    int dims[3] = {X->dims[0], X->dims[1], D};
    nb_node y = nb__add_node(g, &op_attention, 1, &qkv, 3, dims, 1);
    if (y != NB_NONE)
        nb__node(g, y)->settings.attention = (nb_attention_settings){.heads = heads,
                                                                     .causal = !!causal};
    return y;
}

/* "<base>.<what>" as a parameter of the given shape and init. */
static nb_node member(nb_graph *g, const char *base, const char *what, int ndim, const int *dims,
                      nb_init init) {
    char pname[128];
    snprintf(pname, sizeof pname, "%s.%s", base, what);
    return nb_param(g, pname, ndim, dims, init);
}

nb_node nb_attention(nb_graph *g, nb_node x, int heads, int causal, const char *name) {
    if (!nb__begin(g, "attention", 1, &x)) return NB_NONE;
    const nb_node_t *X = nb__node(g, x);
    char sx[96];
    nb_shape_str(sx, sizeof sx, X->ndim, X->dims);
    if (X->ndim != 3 || !X->batched)
        return nb__fail(g, NB_ERR_SHAPE, "attention: input '%s' has shape %s; expected "
                        "[batch, T, D]", X->name, sx);
    int D = X->dims[2];
    if (heads < 1 || D % heads != 0)
        return nb__fail(g, NB_ERR_SHAPE, "attention: %d heads do not divide the model "
                        "dimension D = %d of input '%s' %s (D must be a multiple of the "
                        "number of heads)", heads, D, X->name, sx);
    char base[48];
    if (name && name[0]) snprintf(base, sizeof base, "%s", name);
    else nb__auto_name(g, "attention", base, sizeof base);
    /* PyTorch's initialisation: xavier_uniform in-projection, zero biases,
     * the out-projection a default Linear */
    int w_in[2] = {3 * D, D}, b_in = 3 * D, w_out[2] = {D, D};
    nb_node wi = member(g, base, "in_proj_weight", 2, w_in,
                        (nb_init){.kind = NB_INIT_XAVIER_UNIFORM});
    if (wi == NB_NONE) return NB_NONE;
    nb_node bi = member(g, base, "in_proj_bias", 1, &b_in, (nb_init){.kind = NB_INIT_ZEROS});
    if (bi == NB_NONE) return NB_NONE;
    nb_node wo = member(g, base, "out_proj.weight", 2, w_out,
                        (nb_init){.kind = NB_INIT_TORCH_LINEAR});
    if (wo == NB_NONE) return NB_NONE;
    nb_node bo = member(g, base, "out_proj.bias", 1, &D, (nb_init){.kind = NB_INIT_ZEROS});
    if (bo == NB_NONE) return NB_NONE;
    char part[64];
    nb_node qkv = nb_linear(g, x, wi, bi);
    snprintf(part, sizeof part, "%s.qkv", base); /* names that diagnostics can show */
    if (qkv != NB_NONE) nb__set_name(g, qkv, part);
    nb_node heads_out = nb_dot_product_attention(g, qkv, heads, causal);
    snprintf(part, sizeof part, "%s.heads", base);
    if (heads_out != NB_NONE) nb__set_name(g, heads_out, part);
    nb_node y = nb_linear(g, heads_out, wo, bo);
    if (y != NB_NONE) nb__set_name(g, y, base);
    return y;
}
