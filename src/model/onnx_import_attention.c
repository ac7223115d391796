/* ONNX import of multi-head self-attention as nabla's export writes it
 * (docs/onnx.md): the q/k/v projection (MatMul + Add), Reshape to
 * [batch, T, 3, heads, dh], Transpose to [3, batch, heads, T, dh], Gathers of
 * q, k and v, MatMul of q by kᵀ (a Transpose), Mul by 1/√dh, the causal mask
 * (an Add, when present), Softmax, MatMul by v, Transpose and Reshape back to
 * [batch, T, D], and the out-projection (MatMul + Add): one `attention` line. */
#include "../core/internal.h"

#ifdef NB_HAVE_ONNX

#include "onnx_import.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { PARTS = 14 };

/* The nodes of one attention between its two projections. */
typedef struct attn_match {
    int heads, causal;
    int parts[PARTS]; /* nodes left out (-1: none) */
    int n_parts;
    const char *q, *k, *v;
} attn_match;

static const Onnx__NodeProto *node(importer *im, int k) { return im->gp->node[k]; }

static int same(const char *a, const char *b) { return a && b && !strcmp(a, b); }

/* Node k is op, and the one reader of value. */
static int next_is(importer *im, const char *value, const char *op, attn_match *a) {
    int k = imp_only_consumer(im, value);
    if (!imp_is_op(im, k, op) || a->n_parts >= PARTS) return -1;
    a->parts[a->n_parts++] = k;
    return k;
}

/* The int64 constant (initializer or Constant node) a value holds, or NULL. */
static const imp_const *int_const(importer *im, const char *name) {
    const imp_const *c = imp_known_const(im, name);
    return c && c->is_int ? c : NULL;
}

static const imp_const *float_const(importer *im, const char *name) {
    imp_value *v = name ? imp_find(im, name) : NULL;
    return v && v->c && !v->c->is_int ? v->c : NULL;
}

/* The three Gathers of index 0, 1, 2 along axis 0 of value (q, k, v). */
static int gather_qkv(importer *im, int from, const char *value, attn_match *a) {
    const char **out[3] = {&a->q, &a->k, &a->v};
    int found = 0;
    for (int k = from; k < (int)im->gp->n_node && found < 3; k++) {
        const Onnx__NodeProto *nd = node(im, k);
        const char *src = imp_input_name(nd, 0);
        if (!imp_is_op(im, k, "Gather") || !src || strcmp(src, value)) continue;
        const imp_const *idx = int_const(im, imp_input_name(nd, 1));
        const Onnx__AttributeProto *axis = imp_attr(nd, "axis");
        if (!idx || idx->ndim != 0 || idx->i[0] < 0 || idx->i[0] > 2 || *out[idx->i[0]] ||
            (axis && axis->i != 0) || a->n_parts >= PARTS)
            return 0;
        *out[idx->i[0]] = imp_output(im, k, 0);
        a->parts[a->n_parts++] = k;
        found++;
    }
    return found == 3 && imp_uses(im, value) == 3;
}

/* A square mask of 0 on and below the diagonal and -inf above it. */
static int causal_mask(const imp_const *c) {
    int T = c ? c->dims[0] : 0;
    if (!c || c->ndim != 2 || c->dims[1] != T) return 0;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            float m = c->f[(size_t)i * T + j];
            if (j <= i ? m != 0 : !(isinf(m) && m < 0)) return 0;
        }
    return 1;
}

/* scores = q kᵀ, scaled by 1/√dh, masked or not, softmax, times v: the
 * value of the product by v, or NULL. */
static const char *attention_weights(importer *im, int dh, attn_match *a) {
    int kt = next_is(im, a->k, "Transpose", a);
    int s = kt >= 0 ? next_is(im, imp_output(im, kt, 0), "MatMul", a) : -1;
    if (s < 0 || !imp_transposes(im, kt, 4, (int[]){0, 1, 3, 2}) ||
        imp_only_consumer(im, a->q) != s || !same(imp_input_name(node(im, s), 0), a->q))
        return NULL;
    int sc = next_is(im, imp_output(im, s, 0), "Mul", a);
    const Onnx__NodeProto *m = sc >= 0 ? node(im, sc) : NULL;
    const imp_const *f = m ? float_const(im, imp_input_name(m, 1)) : NULL;
    if (!f || f->count != 1 || fabs(f->f[0] * sqrt(dh) - 1) > 1e-6) return NULL;
    const char *scores = imp_output(im, sc, 0);
    int add = imp_only_consumer(im, scores);
    if (imp_is_op(im, add, "Add")) {
        const Onnx__NodeProto *ad = node(im, add);
        if (!causal_mask(float_const(im, imp_input_name(ad, 1))) || a->n_parts >= PARTS)
            return NULL;
        a->parts[a->n_parts++] = add;
        a->causal = 1;
        scores = imp_output(im, add, 0);
    }
    int sm = next_is(im, scores, "Softmax", a);
    const Onnx__AttributeProto *axis = sm >= 0 ? imp_attr(node(im, sm), "axis") : NULL;
    if (sm < 0 || (axis && axis->i != -1 && axis->i != 3)) return NULL;
    int pv = next_is(im, imp_output(im, sm, 0), "MatMul", a);
    if (pv < 0 || imp_only_consumer(im, a->v) != pv) return NULL;
    return imp_output(im, pv, 0);
}

/* From Reshape r (reading the q/k/v projection) to the Reshape that joins
 * the heads: that Reshape's node, or -1. */
static int attention_core(importer *im, int r, attn_match *a) {
    const Onnx__NodeProto *nd = node(im, r);
    const imp_const *shape = int_const(im, imp_input_name(nd, 1));
    if (!shape || shape->count != 5 || shape->i[2] != 3 || shape->i[3] < 1 || shape->i[4] < 1)
        return -1;
    a->heads = (int)shape->i[3];
    int dh = (int)shape->i[4];
    a->parts[a->n_parts++] = r;
    int t = next_is(im, imp_output(im, r, 0), "Transpose", a);
    if (t < 0 || !imp_transposes(im, t, 5, (int[]){2, 0, 3, 1, 4}) ||
        !gather_qkv(im, t + 1, imp_output(im, t, 0), a))
        return -1;
    const char *context = attention_weights(im, dh, a);
    int j = context ? next_is(im, context, "Transpose", a) : -1;
    int y = j >= 0 ? next_is(im, imp_output(im, j, 0), "Reshape", a) : -1;
    const imp_const *back = y >= 0 ? int_const(im, imp_input_name(node(im, y), 1)) : NULL;
    if (!back || !imp_transposes(im, j, 4, (int[]){0, 2, 1, 3}) || back->count != 3 ||
        back->i[2] != (int64_t)a->heads * dh)
        return -1;
    return y;
}

/* At Reshape node r: the whole attention, from the in-projection (a fused
 * dense MatMul) to the out-projection (MatMul + Add of constants). */
void imp_match_attention(importer *im, int r) {
    const char *qkv = imp_input_name(node(im, r), 0);
    int add_in = imp_producer(im, qkv);
    int in_proj = add_in >= 0 ? imp_producer(im, imp_input_name(node(im, add_in), 0)) : -1;
    if (in_proj < 0 || im->fused[in_proj] != FUSE_DENSE || !same(im->fused_x[in_proj], qkv))
        return;
    attn_match a = {.n_parts = 0};
    int y = imp_uses(im, qkv) == 1 ? attention_core(im, r, &a) : -1;
    int out_proj = y >= 0 ? imp_only_consumer(im, imp_output(im, y, 0)) : -1;
    const char *projected = imp_is_op(im, out_proj, "MatMul") ? imp_output(im, out_proj, 0) : "";
    int add_out = imp_only_consumer(im, projected);
    const Onnx__NodeProto *ad = imp_is_op(im, add_out, "Add") ? node(im, add_out) : NULL;
    if (!ad || !float_const(im, imp_input_name(node(im, out_proj), 1)) ||
        !same(imp_input_name(ad, 0), projected) ||
        !float_const(im, imp_input_name(ad, 1)))
        return;
    for (int i = 0; i < a.n_parts; i++) im->fused[a.parts[i]] = FUSE_SKIP;
    im->fused[in_proj] = im->fused[add_out] = FUSE_SKIP;
    im->fused[out_proj] = FUSE_ATTENTION;
    im->fused_x[out_proj] = imp_input_name(node(im, in_proj), 0);
    im->fused_b[out_proj] = imp_input_name(ad, 1);
    im->fused_n[out_proj] = in_proj;
    im->fused_i[out_proj] = a.heads * 2 + a.causal;
}

/* The layer's name: the in-projection weight's "<name>.in_proj_weight[_t]". */
static const char *attention_hint(importer *im, const char *w) {
    const char *dot = w ? strstr(w, ".in_proj_weight") : NULL;
    return dot ? imp_strf(im, "%.*s", (int)(dot - w), w) : NULL;
}

/* The fused attention at out-projection MatMul node k: `attention heads`. */
nb_status imp_attention(importer *im, const Onnx__NodeProto *nd, int k) {
    const Onnx__NodeProto *in_proj = node(im, im->fused_n[k]);
    int heads = im->fused_i[k] / 2, causal = im->fused_i[k] % 2, line;
    imp_value *x = imp_find(im, im->fused_x[k]);
    imp_const *w_in, *w_out;
    nb_status s = imp_constant(im, in_proj, 1, 0, &w_in);
    if (s == NB_OK) s = imp_constant(im, nd, 1, 0, &w_out);
    if (s != NB_OK) return s;
    const imp_const *b_in = float_const(im, im->fused_b[im->fused_n[k]]);
    const imp_const *b_out = float_const(im, im->fused_b[k]);
    if (!x || x->c || x->line < 0 || x->ndim != 2)
        return imp_fail(im, nd, "attention's input must be [batch, T, D], computed by a layer");
    int D = x->dims[1], dims[2] = {x->dims[0], D};
    if (w_in->ndim != 2 || w_in->dims[0] != D || w_in->dims[1] != 3 * D || w_out->ndim != 2 ||
        w_out->dims[0] != D || w_out->dims[1] != D || D % heads || !b_in || !b_out ||
        b_in->count != (size_t)(3 * D) || b_out->count != (size_t)D)
        return imp_fail(im, nd, "attention over D = %d: the projections must be [%d, %d] and "
                        "[%d, %d] with biases, and %d heads must divide D", D, D, 3 * D, D, D,
                        heads);
    if ((s = imp_materialize(im, nd, x, &line)) != NB_OK) return s;
    int out = imp_only_consumer(im, imp_out_name(nd));
    imp_line *l = imp_add_line(im, nd, "attention",
                               attention_hint(im, imp_input_name(in_proj, 1)),
                               imp_output(im, out, 0), 2, dims, "attention %d%s", heads,
                               causal ? " causal=true" : "");
    if (!l) return im->err;
    l->in[l->n_in++] = line;
    imp_add_param(l, "in_proj_weight", w_in, 1, 0);
    imp_add_param(l, "in_proj_bias", b_in, 0, 0);
    imp_add_param(l, "out_proj.weight", w_out, 1, 0);
    imp_add_param(l, "out_proj.bias", b_out, 0, 0);
    return NB_OK;
}

#endif
