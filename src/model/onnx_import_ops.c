/* ONNX import: each supported op as lines of model text (docs/onnx.md,
 * "Import").  Shapes are those of one sample (without the batch). */
#include "../core/internal.h"
#include "../formats/io.h"

#ifdef NB_HAVE_ONNX

#include "onnx_import.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ attributes */

const Onnx__AttributeProto *imp_attr(const Onnx__NodeProto *nd, const char *name) {
    for (size_t k = 0; k < nd->n_attribute; k++)
        if (!strcmp(imp_str(nd->attribute[k]->name), name)) return nd->attribute[k];
    return NULL;
}

int imp_string_attr_is(const Onnx__NodeProto *nd, const char *name, const char *want) {
    const Onnx__AttributeProto *a = imp_attr(nd, name);
    if (!a) return 1;
    if (!a->has_s) return 0;
    for (const char *w = want; *w; w += strcspn(w, "|") + (w[strcspn(w, "|")] == '|')) {
        size_t n = strcspn(w, "|");
        if (a->s.len == n && !memcmp(a->s.data, w, n)) return 1;
    }
    return 0;
}

nb_status imp_attr_int(importer *im, const Onnx__NodeProto *nd, const char *name,
                       int64_t dflt, int64_t lo, int64_t hi, int64_t *out) {
    const Onnx__AttributeProto *a = imp_attr(nd, name);
    *out = dflt;
    if (!a) return NB_OK;
    if (!a->has_type || a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)
        return imp_fail(im, nd, "attribute %s is not an int", name);
    if (a->i < lo || a->i > hi)
        return imp_fail(im, nd, "attribute %s=%lld is not supported (%lld to %lld)", name,
                        (long long)a->i, (long long)lo, (long long)hi);
    *out = a->i;
    return NB_OK;
}

static nb_status attr_float(importer *im, const Onnx__NodeProto *nd, const char *name,
                            float dflt, float *out) {
    const Onnx__AttributeProto *a = imp_attr(nd, name);
    *out = dflt;
    if (!a) return NB_OK;
    if (!a->has_type || a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT || !isfinite(a->f))
        return imp_fail(im, nd, "attribute %s is not a finite float", name);
    *out = a->f;
    return NB_OK;
}

/* n ints, each in [lo, hi]; absent: dflt for each. */
static nb_status attr_ints(importer *im, const Onnx__NodeProto *nd, const char *name, int n,
                           int64_t dflt, int64_t lo, int64_t hi, int64_t *out) {
    const Onnx__AttributeProto *a = imp_attr(nd, name);
    for (int k = 0; k < n; k++) out[k] = dflt;
    if (!a) return NB_OK;
    if (!a->has_type || a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS ||
        a->n_ints != (size_t)n)
        return imp_fail(im, nd, "attribute %s must be %d ints", name, n);
    for (int k = 0; k < n; k++) {
        if (a->ints[k] < lo || a->ints[k] > hi)
            return imp_fail(im, nd, "attribute %s: value %lld is not supported (%lld to %lld)",
                            name, (long long)a->ints[k], (long long)lo, (long long)hi);
        out[k] = a->ints[k];
    }
    return NB_OK;
}

/* auto_pad: NOTSET, or VALID without pads. */
static nb_status auto_pad(importer *im, const Onnx__NodeProto *nd, const int64_t *pads) {
    const Onnx__AttributeProto *a = imp_attr(nd, "auto_pad");
    if (!a || !a->has_s || !a->s.len) return NB_OK;
    if (a->s.len == 6 && !memcmp(a->s.data, "NOTSET", 6)) return NB_OK;
    if (a->s.len == 5 && !memcmp(a->s.data, "VALID", 5) && !pads[0] && !pads[1] && !pads[2] &&
        !pads[3])
        return NB_OK;
    char q[64];
    return imp_fail(im, nd, "auto_pad=%s is not supported (give explicit pads)",
                    nb__quote(q, sizeof q, (const char *)a->s.data, a->s.len, 20));
}

/* ------------------------------------------------------------ inputs */

const char *imp_input_name(const Onnx__NodeProto *nd, int i) {
    return (size_t)i < nd->n_input && nd->input[i] && nd->input[i][0] ? nd->input[i] : NULL;
}

/* Input i, computed by a layer. */
nb_status imp_computed(importer *im, const Onnx__NodeProto *nd, int i, imp_value **v) {
    const char *name = imp_input_name(nd, i);
    *v = name ? imp_find(im, name) : NULL;
    if (!name) return imp_fail(im, nd, "input %d is missing", i + 1);
    if (!*v) return imp_fail(im, nd, "input '%s' is not defined", imp_q(im, name));
    if ((*v)->c)
        return imp_fail(im, nd, "input %d ('%s') is a constant; nabla needs it computed from "
                        "the model's input", i + 1, imp_q(im, name));
    if ((*v)->line < 0)
        return imp_fail(im, nd, "input '%s' is an output nabla does not compute", imp_q(im, name));
    return NB_OK;
}

/* Input i, a float constant (NULL if absent and optional). */
nb_status imp_constant(importer *im, const Onnx__NodeProto *nd, int i, int optional,
                       imp_const **c) {
    const char *name = imp_input_name(nd, i);
    imp_value *v = name ? imp_find(im, name) : NULL;
    *c = NULL;
    if (!name && optional) return NB_OK;
    if (!name) return imp_fail(im, nd, "input %d is missing", i + 1);
    if (!v) return imp_fail(im, nd, "input '%s' is not defined", imp_q(im, name));
    if (!v->c || v->c->is_int)
        return imp_fail(im, nd, "input %d ('%s') must be a float32 initializer or Constant",
                        i + 1, imp_q(im, name));
    *c = v->c;
    return NB_OK;
}

const char *imp_out_name(const Onnx__NodeProto *nd) {
    return nd->n_output ? nd->output[0] : NULL;
}

/* "b2.downsample.0" from PyTorch's node name "/b2/downsample/downsample.0/Conv";
 * a name without '/' as it is. */
const char *imp_module_path(importer *im, const Onnx__NodeProto *nd) {
    const char *name = imp_str(nd->name);
    if (!strchr(name, '/')) return name[0] ? name : NULL;
    char path[128] = "", last[128] = "";
    const char *p = name;
    while (*p) {
        while (*p == '/') p++;
        size_t n = strcspn(p, "/");
        if (!p[n] || n >= sizeof last) break; /* the op itself, or too long */
        char comp[128];
        memcpy(comp, p, n);
        comp[n] = '\0';
        size_t ll = strlen(last), pl = strlen(path);
        if (ll && !strncmp(comp, last, ll) && comp[ll] == '.' && pl >= ll)
            path[pl - ll] = '\0'; /* "downsample.0" replaces "downsample" */
        else if (pl && pl + 1 < sizeof path)
            strcat(path, ".");
        size_t at = strlen(path);
        snprintf(path + at, sizeof path - at, "%s", comp);
        snprintf(last, sizeof last, "%s", comp);
        p += n;
    }
    return path[0] ? imp_strf(im, "%s", path) : NULL;
}

/* The prefix of a weight named "<prefix>.weight", else the node's module path. */
const char *imp_param_hint(importer *im, const Onnx__NodeProto *nd, int i) {
    const char *w = imp_input_name(nd, i);
    size_t n = w ? strlen(w) : 0;
    if (n > 7 && !strcmp(w + n - 7, ".weight")) return imp_strf(im, "%.*s", (int)(n - 7), w);
    return imp_module_path(im, nd);
}

void imp_add_param(imp_line *l, const char *suffix, const imp_const *c, int transpose,
                   float fill) {
    l->params[l->n_params++] = (imp_param){suffix, c, transpose, fill};
}

/* A value for output o that is v under another name (Identity, Dropout, a
 * Reshape that changes nothing in nabla), with ONNX's shape ndim/dims. */
static nb_status alias(importer *im, const Onnx__NodeProto *nd, const imp_value *v,
                       int ndim, const int *dims) {
    imp_value copy = *v;
    imp_value *a = imp_define(im, nd, imp_out_name(nd));
    if (!a) return im->err;
    const char *name = a->name;
    *a = copy;
    a->name = name;
    if (dims && !copy.c) {
        a->ndim = ndim;
        memcpy(a->dims, dims, (size_t)ndim * sizeof *dims);
        a->shaped = 0;
    }
    return NB_OK;
}

/* Outputs after the first are values nabla does not compute. */
static nb_status extra_outputs(importer *im, const Onnx__NodeProto *nd) {
    for (size_t o = 1; o < nd->n_output; o++)
        if (nd->output[o] && nd->output[o][0] && !imp_define(im, nd, nd->output[o]))
            return im->err;
    return NB_OK;
}

/* ------------------------------------------------------------ elementwise */

/* One-input ops that keep the shape. */
static nb_status unary(importer *im, const Onnx__NodeProto *nd, const char *keyword,
                       const char *args, const char *x_name) {
    imp_value *x;
    nb_status s;
    if (x_name) {
        x = imp_find(im, x_name);
        if (!x || x->c || x->line < 0)
            return imp_fail(im, nd, "input '%s' is not computed by a layer", imp_q(im, x_name));
    } else if ((s = imp_computed(im, nd, 0, &x)) != NB_OK) {
        return s;
    }
    int line = x->line;
    imp_value xv = *x; /* x moves when a value is added */
    if (!strcmp(keyword, "softmax") || !strcmp(keyword, "log_softmax")) {
        int64_t axis;
        int rank = xv.ndim + 1;
        if ((s = imp_attr_int(im, nd, "axis", -1, -rank, rank - 1, &axis)) != NB_OK) return s;
        if (axis != -1 && axis != rank - 1)
            return imp_fail(im, nd, "axis=%lld: nabla's %s is over the last axis only",
                            (long long)axis, keyword);
        if ((s = imp_materialize(im, nd, x, &line)) != NB_OK) return s;
        xv.nb_ndim = xv.ndim;
        memcpy(xv.nb_dims, xv.dims, sizeof xv.dims);
    }
    imp_line *l = imp_add_line(im, nd, keyword, imp_module_path(im, nd), imp_out_name(nd), xv.nb_ndim,
                               xv.nb_dims, "%s", args);
    if (!l) return im->err;
    l->in[l->n_in++] = line;
    imp_value *y = imp_find(im, imp_out_name(nd));
    y->ndim = xv.ndim; /* ONNX's shape stays, as the elements do */
    memcpy(y->dims, xv.dims, sizeof y->dims);
    return NB_OK;
}

static nb_status activation(importer *im, const Onnx__NodeProto *nd, const char *op) {
    static const char *const plain[][2] = {
        {"Relu", "relu"}, {"Sigmoid", "sigmoid"}, {"Tanh", "tanh"}, {"Abs", "abs"},
        {"Softplus", "softplus"}, {"HardSwish", "hardswish"}, {"Softmax", "softmax"},
        {"LogSoftmax", "log_softmax"}};
    for (size_t k = 0; k < sizeof plain / sizeof plain[0]; k++)
        if (!strcmp(op, plain[k][0])) return unary(im, nd, plain[k][1], plain[k][1], NULL);
    float alpha;
    char a[32], args[64];
    int leaky = !strcmp(op, "LeakyRelu");
    nb_status s = attr_float(im, nd, "alpha", leaky ? 0.01f : 1.0f, &alpha);
    if (s != NB_OK) return s;
    imp_float_text(a, sizeof a, alpha);
    snprintf(args, sizeof args, leaky ? "leaky_relu slope=%s" : "elu alpha=%s", a);
    return unary(im, nd, leaky ? "leaky_relu" : "elu", args, NULL);
}

/* Where(x > threshold, x, Softplus(x)), PyTorch's softplus: at node k, the Where. */
static nb_status softplus_threshold(importer *im, const Onnx__NodeProto *nd, int k) {
    const imp_const *c = imp_known_const(im, im->fused_b[k]);
    char t[32], args[64] = "softplus";
    if (!c || c->is_int || c->count != 1 || !isfinite(c->f[0]))
        return imp_fail(im, nd, "the threshold must be a finite float scalar");
    imp_float_text(t, sizeof t, c->f[0]);
    if (c->f[0] != 20.0f) snprintf(args, sizeof args, "softplus threshold=%s", t);
    return unary(im, nd, "softplus", args, im->fused_x[k]);
}

/* ONNX's Gelu (opset 20), exact or in the tanh form. */
static nb_status gelu(importer *im, const Onnx__NodeProto *nd) {
    if (imp_string_attr_is(nd, "approximate", "none")) return unary(im, nd, "gelu", "gelu", NULL);
    if (imp_string_attr_is(nd, "approximate", "tanh"))
        return unary(im, nd, "gelu", "gelu approximate=tanh", NULL);
    return imp_fail(im, nd, "attribute approximate must be none or tanh");
}

static int same_shape(const imp_value *a, const imp_value *b) {
    return a->ndim == b->ndim && !memcmp(a->dims, b->dims, (size_t)a->ndim * sizeof *a->dims);
}

/* Add, Sub, Mul of two computed tensors of one shape; Mul by a scalar. */
static nb_status binary(importer *im, const Onnx__NodeProto *nd, const char *keyword) {
    const char *an = imp_input_name(nd, 0), *bn = imp_input_name(nd, 1);
    imp_value *a = an ? imp_find(im, an) : NULL, *b = bn ? imp_find(im, bn) : NULL;
    if (!a || !b) return imp_fail(im, nd, "needs two inputs");
    if (!strcmp(keyword, "mul") && (a->c || b->c)) {
        const imp_const *c = a->c ? a->c : b->c;
        if (c->is_int || c->count != 1 || !isfinite(c->f[0]))
            return imp_fail(im, nd, "a product with a constant tensor of %zu elements (only a "
                            "finite float scalar: nabla's scale)", c->count);
        char f[32], args[48];
        imp_float_text(f, sizeof f, c->f[0]);
        snprintf(args, sizeof args, "scale %s", f);
        return unary(im, nd, "scale", args, a->c ? bn : an);
    }
    if (!strcmp(keyword, "add") && (a->c || b->c) && !(a->c && b->c)) {
        imp_value *x = a->c ? b : a;
        const imp_const *c = a->c ? a->c : b->c;
        if (x->ndim == 2 && c->ndim == 2 && !c->is_int && same_shape(x, &(imp_value){
                .ndim = 2, .dims = {c->dims[0], c->dims[1]}}))
            return imp_pos_embedding(im, nd, x, c);
    }
    if (a->c || b->c)
        return imp_fail(im, nd, "input '%s' is a constant; nabla's %s takes two computed "
                        "tensors (a constant is added only as the bias of a MatMul)",
                        imp_q(im, a->c ? an : bn), keyword);
    if (a->line < 0 || b->line < 0)
        return imp_fail(im, nd, "an input is an output nabla does not compute");
    if (!same_shape(a, b)) {
        char sa[64], sb[64];
        return imp_fail(im, nd, "shapes %s and %s differ (nabla's %s takes one shape)",
                        nb_shape_str(sa, sizeof sa, a->ndim, a->dims),
                        nb_shape_str(sb, sizeof sb, b->ndim, b->dims), keyword);
    }
    int la, lb;
    nb_status s = imp_materialize(im, nd, a, &la);
    if (s == NB_OK) s = imp_materialize(im, nd, imp_find(im, bn), &lb);
    if (s != NB_OK) return s;
    imp_value av = *imp_find(im, an);
    imp_line *l = imp_add_line(im, nd, keyword, imp_module_path(im, nd), imp_out_name(nd), av.ndim,
                               av.dims, "%s", keyword);
    if (!l) return im->err;
    l->in[l->n_in++] = la;
    l->in[l->n_in++] = lb;
    return NB_OK;
}

/* ------------------------------------------------------------ dense */

/* Gemm(x, B, C) with B [out, in] (transB=1) or [in, out]. */
static nb_status gemm(importer *im, const Onnx__NodeProto *nd) {
    imp_value *x;
    imp_const *w, *b;
    int64_t trans_a, trans_b;
    float alpha, beta;
    nb_status s;
    if ((s = imp_computed(im, nd, 0, &x)) != NB_OK || (s = imp_constant(im, nd, 1, 0, &w)) != NB_OK ||
        (s = imp_constant(im, nd, 2, 1, &b)) != NB_OK ||
        (s = imp_attr_int(im, nd, "transA", 0, 0, 0, &trans_a)) != NB_OK ||
        (s = imp_attr_int(im, nd, "transB", 0, 0, 1, &trans_b)) != NB_OK ||
        (s = attr_float(im, nd, "alpha", 1, &alpha)) != NB_OK ||
        (s = attr_float(im, nd, "beta", 1, &beta)) != NB_OK)
        return s;
    if (alpha != 1 || (b && beta != 1))
        return imp_fail(im, nd, "alpha and beta must be 1 (a dense layer)");
    if (x->ndim != 1 || w->ndim != 2)
        return imp_fail(im, nd, "needs a [batch, features] input and a 2-D weight");
    int out = w->dims[trans_b ? 0 : 1], in = w->dims[trans_b ? 1 : 0];
    if (in != x->dims[0])
        return imp_fail(im, nd, "the weight takes %d features, the input has %d", in, x->dims[0]);
    if (b && ((int)b->count != out || (b->ndim == 2 && b->dims[0] != 1) || b->ndim > 2))
        return imp_fail(im, nd, "the bias must have shape [%d]", out);
    int line;
    if ((s = imp_materialize(im, nd, x, &line)) != NB_OK) return s;
    imp_line *l = imp_add_line(im, nd, "dense", imp_param_hint(im, nd, 1), imp_out_name(nd), 1, &out,
                               "dense %d%s", out, b ? "" : " bias=false");
    if (!l) return im->err;
    l->in[l->n_in++] = line;
    imp_add_param(l, "weight", w, !trans_b, 0);
    if (b) imp_add_param(l, "bias", b, 0, 0);
    return NB_OK;
}

/* MatMul(x, W [in, out]) over the last axis; with the Add after it (found
 * beforehand) its bias. */
static nb_status matmul(importer *im, const Onnx__NodeProto *nd, int k) {
    imp_value *x;
    imp_const *w, *b = NULL;
    nb_status s;
    if ((s = imp_computed(im, nd, 0, &x)) != NB_OK || (s = imp_constant(im, nd, 1, 0, &w)) != NB_OK)
        return s;
    if (w->ndim != 2 || x->dims[x->ndim - 1] != w->dims[0])
        return imp_fail(im, nd, "needs a 2-D weight [in, out] matching the input's last "
                        "dimension");
    if (im->fused[k] == FUSE_DENSE) b = imp_find(im, im->fused_b[k])->c;
    int line, dims[NB_MAX_DIMS], ndim = x->ndim;
    memcpy(dims, x->dims, sizeof dims);
    dims[ndim - 1] = w->dims[1];
    if ((s = imp_materialize(im, nd, x, &line)) != NB_OK) return s;
    const char *out = b ? im->fused_x[k] : imp_out_name(nd), *wn = imp_input_name(nd, 1);
    size_t nw = wn ? strlen(wn) : 0, nb = b ? strlen(im->fused_b[k]) : 0;
    int by_bias = !(nw > 7 && !strcmp(wn + nw - 7, ".weight")) && nb > 5 &&
                  !strcmp(im->fused_b[k] + nb - 5, ".bias"); /* "fc.bias" when "val_82" */
    const char *hint = by_bias ? imp_strf(im, "%.*s", (int)(nb - 5), im->fused_b[k])
                               : imp_param_hint(im, nd, 1);
    imp_line *l = imp_add_line(im, nd, "dense", hint, out, ndim, dims,
                               "dense %d%s", w->dims[1], b ? "" : " bias=false");
    if (!l) return im->err;
    l->in[l->n_in++] = line;
    imp_add_param(l, "weight", w, 1, 0);
    if (b) imp_add_param(l, "bias", b, 0, 0);
    return NB_OK;
}

/* ------------------------------------------------------------ images */

/* The window settings nabla's model format has: one stride, padding and
 * dilation for both axes, padding equal on both sides. */
static nb_status window(importer *im, const Onnx__NodeProto *nd, int *stride, int *pad,
                        int *dil) {
    int64_t st[2], pads[4], d[2];
    nb_status s;
    if ((s = attr_ints(im, nd, "strides", 2, 1, 1, 1 << 16, st)) != NB_OK ||
        (s = attr_ints(im, nd, "pads", 4, 0, 0, 1 << 16, pads)) != NB_OK ||
        (s = attr_ints(im, nd, "dilations", 2, 1, 1, 1 << 16, d)) != NB_OK ||
        (s = auto_pad(im, nd, pads)) != NB_OK)
        return s;
    if (st[0] != st[1] || d[0] != d[1] || pads[0] != pads[1] || pads[0] != pads[2] ||
        pads[0] != pads[3])
        return imp_fail(im, nd, "strides %lldx%lld, dilations %lldx%lld, pads [%lld, %lld, %lld, "
                        "%lld]: nabla's model format has one stride, one dilation and one "
                        "padding on every side", (long long)st[0], (long long)st[1],
                        (long long)d[0], (long long)d[1], (long long)pads[0],
                        (long long)pads[1], (long long)pads[2], (long long)pads[3]);
    *stride = (int)st[0], *pad = (int)pads[0], *dil = (int)d[0];
    return NB_OK;
}

static nb_status image_input(importer *im, const Onnx__NodeProto *nd, imp_value **x) {
    nb_status s = imp_computed(im, nd, 0, x);
    if (s == NB_OK && (*x)->ndim != 3)
        return imp_fail(im, nd, "needs [batch, C, H, W] images; the input has %d dimensions",
                        (*x)->ndim + 1);
    return s;
}

static nb_status conv(importer *im, const Onnx__NodeProto *nd) {
    imp_value *x;
    imp_const *w, *b;
    int64_t group, ks[2];
    int stride, pad, dil, line;
    nb_status s;
    if ((s = image_input(im, nd, &x)) != NB_OK || (s = imp_constant(im, nd, 1, 0, &w)) != NB_OK ||
        (s = imp_constant(im, nd, 2, 1, &b)) != NB_OK ||
        (s = window(im, nd, &stride, &pad, &dil)) != NB_OK ||
        (s = imp_attr_int(im, nd, "group", 1, 1, 1 << 20, &group)) != NB_OK)
        return s;
    int C = x->dims[0], H = x->dims[1], W = x->dims[2];
    if (w->ndim != 4 || C % group || w->dims[1] != C / group || w->dims[0] % group ||
        !w->dims[0] || !w->dims[2] || !w->dims[3])
        return imp_fail(im, nd, "the weight must be [M, %d/%lld, kH, kW] for %d input channels "
                        "in %lld groups", C, (long long)group, C, (long long)group);
    if ((s = attr_ints(im, nd, "kernel_shape", 2, w->dims[2], 1, IMP_MAX_DIM, ks)) != NB_OK)
        return s;
    if (ks[0] != w->dims[2] || ks[1] != w->dims[3])
        return imp_fail(im, nd, "kernel_shape differs from the weight's");
    if (b && (b->ndim != 1 || b->dims[0] != w->dims[0]))
        return imp_fail(im, nd, "the bias must have shape [%d]", w->dims[0]);
    int64_t ho = ((int64_t)H + 2 * pad - (int64_t)dil * (w->dims[2] - 1) - 1) / stride + 1;
    int64_t wo = ((int64_t)W + 2 * pad - (int64_t)dil * (w->dims[3] - 1) - 1) / stride + 1;
    if (ho < 1 || wo < 1) return imp_fail(im, nd, "the kernel is larger than the padded image");
    char args[160], kw[16] = "";
    if (w->dims[3] != w->dims[2]) snprintf(kw, sizeof kw, " %d", w->dims[3]);
    snprintf(args, sizeof args, "conv %d %d%s", w->dims[0], w->dims[2], kw);
    if (stride != 1) snprintf(args + strlen(args), sizeof args - strlen(args), " stride=%d", stride);
    if (pad) snprintf(args + strlen(args), sizeof args - strlen(args), " padding=%d", pad);
    if (dil != 1) snprintf(args + strlen(args), sizeof args - strlen(args), " dilation=%d", dil);
    if (group != 1) snprintf(args + strlen(args), sizeof args - strlen(args), " groups=%lld", (long long)group);
    if (!b) strcat(args, " bias=false");
    if ((s = imp_materialize(im, nd, x, &line)) != NB_OK) return s;
    int dims[3] = {w->dims[0], (int)ho, (int)wo};
    imp_line *l = imp_add_line(im, nd, "conv", imp_param_hint(im, nd, 1), imp_out_name(nd), 3, dims,
                               "%s", args);
    if (!l) return im->err;
    l->in[l->n_in++] = line;
    imp_add_param(l, "weight", w, 0, 0);
    if (b) imp_add_param(l, "bias", b, 0, 0);
    return NB_OK;
}

/* A pooled size: ONNX's (floor, or ceil without PyTorch's rule that the
 * last window start inside the input or its left padding) must be nabla's. */
static int pooled(importer *im, const Onnx__NodeProto *nd, int in, int k, int s, int p, int ceil_mode) {
    int span = in + 2 * p - k;
    if (span < 0) return imp_fail(im, nd, "the window is larger than the padded image"), -1;
    int out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + p)
        return imp_fail(im, nd, "ceil_mode=1 makes a last window that starts in the right "
                        "padding, which nabla (like PyTorch) leaves out"), -1;
    return out;
}

static nb_status pool(importer *im, const Onnx__NodeProto *nd, int average) {
    imp_value *x;
    int64_t ks[2], ceil_mode, include_pad = 0, order;
    int stride, pad, dil, line;
    nb_status s;
    if ((s = image_input(im, nd, &x)) != NB_OK ||
        (s = attr_ints(im, nd, "kernel_shape", 2, 0, 1, 1 << 16, ks)) != NB_OK ||
        (s = window(im, nd, &stride, &pad, &dil)) != NB_OK ||
        (s = imp_attr_int(im, nd, "ceil_mode", 0, 0, 1, &ceil_mode)) != NB_OK ||
        (s = imp_attr_int(im, nd, "storage_order", 0, 0, 0, &order)) != NB_OK ||
        (average && (s = imp_attr_int(im, nd, "count_include_pad", 0, 0, 1, &include_pad)) != NB_OK))
        return s;
    if (!ks[0] || ks[0] != ks[1] || dil != 1)
        return imp_fail(im, nd, "needs a square kernel_shape and no dilation (nabla's "
                        "maxpool/avgpool K)");
    int k = (int)ks[0];
    if (2 * pad > k) return imp_fail(im, nd, "pads %d exceed half the window %d", pad, k);
    int ho = pooled(im, nd, x->dims[1], k, stride, pad, (int)ceil_mode);
    int wo = ho < 0 ? -1 : pooled(im, nd, x->dims[2], k, stride, pad, (int)ceil_mode);
    if (ho < 0 || wo < 0) return im->err;
    char args[128];
    snprintf(args, sizeof args, "%s %d", average ? "avgpool" : "maxpool", k);
    if (stride != k) snprintf(args + strlen(args), sizeof args - strlen(args), " stride=%d", stride);
    if (pad) snprintf(args + strlen(args), sizeof args - strlen(args), " padding=%d", pad);
    if (ceil_mode) strcat(args, " ceil=true");
    if (average && !include_pad && pad) strcat(args, " count_include_pad=false");
    int C = x->dims[0];
    if ((s = imp_materialize(im, nd, x, &line)) != NB_OK) return s;
    int dims[3] = {C, ho, wo};
    imp_line *l = imp_add_line(im, nd, average ? "avgpool" : "maxpool", imp_module_path(im, nd),
                               imp_out_name(nd), 3,
                               dims, "%s", args);
    if (!l) return im->err;
    l->in[l->n_in++] = line;
    return NB_OK;
}

/* global_avgpool gives [C]; ONNX's [C, 1, 1] unless keepdims=0. */
static nb_status global_pool(importer *im, const Onnx__NodeProto *nd, int keep) {
    imp_value *x;
    int line;
    nb_status s = image_input(im, nd, &x);
    if (s == NB_OK) s = imp_materialize(im, nd, x, &line);
    if (s != NB_OK) return s;
    int C = imp_find(im, imp_input_name(nd, 0))->dims[0];
    imp_line *l = imp_add_line(im, nd, "global_avgpool", imp_module_path(im, nd), imp_out_name(nd), 1, &C,
                               "global_avgpool");
    if (!l) return im->err;
    l->in[l->n_in++] = line;
    if (keep) {
        imp_value *y = imp_find(im, imp_out_name(nd));
        y->ndim = 3;
        y->dims[0] = C, y->dims[1] = y->dims[2] = 1;
    }
    return NB_OK;
}

/* ReduceMean over H and W (axes an attribute to opset 17, an input from 18). */
static nb_status reduce_mean(importer *im, const Onnx__NodeProto *nd) {
    const Onnx__AttributeProto *a = imp_attr(nd, "axes");
    const imp_const *input = imp_known_const(im, imp_input_name(nd, 1));
    int64_t keep;
    nb_status s = imp_attr_int(im, nd, "keepdims", 1, 0, 1, &keep);
    if (s != NB_OK) return s;
    int ok = a ? a->n_ints == 2 && !imp_input_name(nd, 1)
               : input && input->is_int && input->count == 2;
    unsigned axes = 0; /* the set of axes, in any order */
    for (size_t k = 0; ok && k < 2; k++) {
        int64_t ax = a ? a->ints[k] : input->i[k];
        if (ax < 0) ax += 4;
        if (ax == 2 || ax == 3) axes |= 1u << ax;
    }
    if (!ok || axes != (1u << 2 | 1u << 3))
        return imp_fail(im, nd, "only the mean over the axes [2, 3] of [batch, C, H, W] "
                        "(global average pooling) is supported");
    return global_pool(im, nd, (int)keep);
}

/* ------------------------------------------------------------ shapes */

/* x with per-sample shape ndim/dims: no line where nabla's shape is that
 * already, else flatten or reshape. */
static nb_status reshape_to(importer *im, const Onnx__NodeProto *nd, imp_value *x, int ndim,
                            const int *dims) {
    if (x->nb_ndim == ndim && !memcmp(x->nb_dims, dims, (size_t)ndim * sizeof *dims))
        return alias(im, nd, x, ndim, dims);
    char args[160] = "flatten";
    if (ndim > 1 || x->nb_ndim == 1) {
        snprintf(args, sizeof args, "reshape");
        for (int k = 0; k < ndim; k++)
            snprintf(args + strlen(args), sizeof args - strlen(args), " %d", dims[k]);
    }
    int line = x->line;
    imp_line *l = imp_add_line(im, nd, ndim > 1 ? "reshape" : "flatten", imp_module_path(im, nd),
                               imp_out_name(nd), ndim, dims, "%s", args);
    if (!l) return im->err;
    l->in[l->n_in++] = line;
    return NB_OK;
}

static size_t numel(int ndim, const int *dims) {
    size_t n = 1;
    for (int k = 0; k < ndim; k++) n *= (size_t)dims[k];
    return n;
}

static nb_status flatten(importer *im, const Onnx__NodeProto *nd) {
    imp_value *x;
    int64_t axis;
    nb_status s = imp_computed(im, nd, 0, &x);
    if (s != NB_OK) return s;
    int rank = x->ndim + 1;
    if ((s = imp_attr_int(im, nd, "axis", 1, -rank, rank, &axis)) != NB_OK) return s;
    if (axis < 0) axis += rank;
    if (axis != 1)
        return imp_fail(im, nd, "axis=%lld: only axis 1 (keeping the batch) is supported",
                        (long long)axis);
    int n = (int)numel(x->ndim, x->dims);
    return reshape_to(im, nd, x, 1, &n);
}

/* Reshape to a constant shape whose first entry keeps the batch (0, -1 or
 * the input's fixed batch size). */
static nb_status reshape(importer *im, const Onnx__NodeProto *nd) {
    imp_value *x, *sv;
    int64_t allow_zero;
    nb_status s = imp_computed(im, nd, 0, &x);
    if (s == NB_OK) s = imp_attr_int(im, nd, "allowzero", 0, 0, 1, &allow_zero);
    if (s != NB_OK) return s;
    const char *sn = imp_input_name(nd, 1);
    if (!sn || !(sv = imp_find(im, sn)) || !sv->c || !sv->c->is_int || sv->c->ndim != 1)
        return imp_fail(im, nd, "the shape must be a constant 1-D int64 tensor");
    const int64_t *t = sv->c->i;
    int n = (int)sv->c->count - 1, dims[NB_MAX_DIMS], infer = -1;
    if (n < 1 || n > NB_MAX_DIMS - 1)
        return imp_fail(im, nd, "a shape of %d dimensions (2 to %d)", n + 1, NB_MAX_DIMS);
    if (!(t[0] == -1 || (t[0] == 0 && !allow_zero) || (im->batch > 0 && t[0] == im->batch)))
        return imp_fail(im, nd, "the shape's first entry %lld is not the batch (0 or -1)",
                        (long long)t[0]);
    size_t known = 1, total = numel(x->ndim, x->dims);
    for (int k = 0; k < n; k++) {
        int64_t d = t[k + 1];
        if (d == 0 && k < x->ndim && !allow_zero) d = x->dims[k]; /* else a literal 0 */
        if (d == -1 && infer < 0 && t[0] != -1) infer = k, d = 1;
        if (d <= 0 || d > IMP_MAX_DIM)
            return imp_fail(im, nd, "shape entry %lld is not supported", (long long)t[k + 1]);
        dims[k] = (int)d;
        known *= (size_t)d;
        if (known > total) break;
    }
    if (infer >= 0 && known && total % known == 0) dims[infer] = (int)(total / known), known = total;
    if (known != total)
        return imp_fail(im, nd, "the shape does not hold the input's %zu elements per sample",
                        total);
    return reshape_to(im, nd, x, n, dims);
}

static nb_status concat(importer *im, const Onnx__NodeProto *nd) {
    int n = (int)nd->n_input, lines[NB_MAX_INPUTS], total = 0;
    int64_t axis;
    imp_value *x;
    nb_status s = imp_computed(im, nd, 0, &x);
    if (s != NB_OK) return s;
    int ndim = x->ndim, dims[NB_MAX_DIMS];
    memcpy(dims, x->dims, sizeof dims);
    if (n < 1 || n > NB_MAX_INPUTS) return imp_fail(im, nd, "%d inputs (1 to %d)", n, NB_MAX_INPUTS);
    if ((s = imp_attr_int(im, nd, "axis", 1, -ndim - 1, ndim, &axis)) != NB_OK) return s;
    if (axis < 0) axis += ndim + 1;
    if (axis == 0) return imp_fail(im, nd, "axis 0 is the batch");
    for (int k = 0; k < n; k++) {
        if ((s = imp_computed(im, nd, k, &x)) != NB_OK) return s;
        int ok = x->ndim == ndim;
        for (int d = 0; ok && d < ndim; d++) ok = d == axis - 1 || x->dims[d] == dims[d];
        if (!ok) return imp_fail(im, nd, "input %d's shape does not match the first's", k + 1);
        total += x->dims[axis - 1];
        if ((s = imp_materialize(im, nd, imp_find(im, nd->input[k]), &lines[k])) != NB_OK) return s;
    }
    dims[axis - 1] = total;
    char args[32] = "concat";
    if (axis != 1) snprintf(args, sizeof args, "concat axis=%lld", (long long)axis);
    imp_line *l = imp_add_line(im, nd, "concat", imp_module_path(im, nd), imp_out_name(nd), ndim, dims,
                               "%s", args);
    if (!l) return im->err;
    memcpy(l->in, lines, (size_t)n * sizeof *lines);
    l->n_in = n;
    l->concat = 1;
    return NB_OK;
}

/* ------------------------------------------------------------ normalization */

static void eps_option(char *args, size_t size, float eps) {
    char f[32];
    imp_float_text(f, sizeof f, eps);
    if (eps != (float)1e-5) snprintf(args + strlen(args), size - strlen(args), " eps=%s", f);
}

/* BatchNormalization in inference form: scale, shift, running mean and
 * variance per channel of [C] or [C, H, W]. */
static nb_status batch_norm(importer *im, const Onnx__NodeProto *nd) {
    imp_value *x;
    imp_const *c[4];
    float eps, momentum;
    int64_t training;
    int line;
    nb_status s = imp_computed(im, nd, 0, &x);
    for (int k = 0; k < 4 && s == NB_OK; k++) s = imp_constant(im, nd, k + 1, 0, &c[k]);
    if (s == NB_OK) s = attr_float(im, nd, "epsilon", 1e-5f, &eps);
    if (s == NB_OK) s = attr_float(im, nd, "momentum", 0.9f, &momentum);
    if (s == NB_OK) s = imp_attr_int(im, nd, "training_mode", 0, 0, 0, &training);
    if (s != NB_OK) return s;
    if (x->ndim != 1 && x->ndim != 3)
        return imp_fail(im, nd, "needs [batch, C] or [batch, C, H, W]");
    for (int k = 0; k < 4; k++)
        if (c[k]->ndim != 1 || c[k]->dims[0] != x->dims[0])
            return imp_fail(im, nd, "input %d must have shape [%d]", k + 2, x->dims[0]);
    if (!(eps > 0) || !(momentum >= 0 && momentum < 1))
        return imp_fail(im, nd, "epsilon must be positive and momentum in [0, 1)");
    char args[96] = "batchnorm", m[32];
    eps_option(args, sizeof args, eps);
    snprintf(m, sizeof m, "%.7g", 1.0 - (double)momentum); /* nabla's momentum is ONNX's 1 - m */
    if (strtod(m, NULL) != 0.1) snprintf(args + strlen(args), sizeof args - strlen(args), " momentum=%s", m);
    if ((s = imp_materialize(im, nd, x, &line)) != NB_OK) return s;
    imp_value xv = *imp_find(im, imp_input_name(nd, 0));
    imp_line *l = imp_add_line(im, nd, "batchnorm", imp_param_hint(im, nd, 1), imp_out_name(nd),
                               xv.ndim, xv.dims, "%s", args);
    if (!l) return im->err;
    l->in[l->n_in++] = line;
    static const char *const names[] = {"weight", "bias", "running_mean", "running_var"};
    for (int k = 0; k < 4; k++) imp_add_param(l, names[k], c[k], 0, 0);
    return extra_outputs(im, nd);
}

/* LayerNormalization (opset 17) over the dims from axis on. */
static nb_status layer_norm(importer *im, const Onnx__NodeProto *nd) {
    imp_value *x;
    imp_const *scale, *shift;
    float eps;
    int64_t axis, stash;
    int line;
    nb_status s = imp_computed(im, nd, 0, &x);
    if (s == NB_OK) s = imp_constant(im, nd, 1, 0, &scale);
    if (s == NB_OK) s = imp_constant(im, nd, 2, 1, &shift);
    if (s == NB_OK) s = attr_float(im, nd, "epsilon", 1e-5f, &eps);
    if (s == NB_OK) s = imp_attr_int(im, nd, "stash_type", 1, 1, 1, &stash);
    if (s == NB_OK) s = imp_attr_int(im, nd, "axis", -1, -x->ndim - 1, x->ndim, &axis);
    if (s != NB_OK) return s;
    if (axis < 0) axis += x->ndim + 1;
    if (axis == 0) return imp_fail(im, nd, "axis 0 normalizes over the batch");
    int dims = x->ndim + 1 - (int)axis;
    size_t count = numel(dims, x->dims + axis - 1);
    if (scale->count != count || (shift && shift->count != count) || !(eps > 0))
        return imp_fail(im, nd, "scale and bias must have the normalized shape's %zu elements, "
                        "epsilon be positive", count);
    char args[96] = "layernorm";
    if (dims != 1) snprintf(args, sizeof args, "layernorm dims=%d", dims);
    eps_option(args, sizeof args, eps);
    if ((s = imp_materialize(im, nd, x, &line)) != NB_OK) return s;
    imp_value xv = *imp_find(im, imp_input_name(nd, 0));
    imp_line *l = imp_add_line(im, nd, "layernorm", imp_param_hint(im, nd, 1), imp_out_name(nd),
                               xv.ndim, xv.dims, "%s", args);
    if (!l) return im->err;
    l->in[l->n_in++] = line;
    imp_add_param(l, "weight", scale, 0, 0);
    imp_add_param(l, "bias", shift, 0, 0);
    return extra_outputs(im, nd);
}

/* ------------------------------------------------------------ the rest */

nb_status imp_constant_value(importer *im, const Onnx__NodeProto *nd, imp_const **out) {
    const Onnx__AttributeProto *a = imp_attr(nd, "value");
    char what[128], q[96];
    snprintf(what, sizeof what, "node '%s' (Constant): its value",
             nb__quote(q, sizeof q, imp_str(nd->name), strlen(imp_str(nd->name)), 60));
    if (a && a->t) return imp_const_from_tensor(im, a->t, what, out);
    Onnx__TensorProto t = ONNX__TENSOR_PROTO__INIT;
    int64_t one = 1;
    t.has_data_type = 1;
    if ((a = imp_attr(nd, "value_float")) && a->has_f) {
        t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, t.n_float_data = 1, t.float_data = (float *)&a->f;
    } else if ((a = imp_attr(nd, "value_floats"))) {
        t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, t.n_float_data = a->n_floats;
        t.float_data = a->floats, t.n_dims = 1, t.dims = &one, one = (int64_t)a->n_floats;
    } else if ((a = imp_attr(nd, "value_int")) && a->has_i) {
        t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64, t.n_int64_data = 1, t.int64_data = (int64_t *)&a->i;
    } else if ((a = imp_attr(nd, "value_ints"))) {
        t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64, t.n_int64_data = a->n_ints;
        t.int64_data = a->ints, t.n_dims = 1, t.dims = &one, one = (int64_t)a->n_ints;
    } else {
        *out = NULL;
        return imp_fail(im, nd, "only a float or int64 value is supported");
    }
    return imp_const_from_tensor(im, &t, what, out);
}

static nb_status constant_node(importer *im, const Onnx__NodeProto *nd) {
    imp_const *c;
    nb_status s = imp_constant_value(im, nd, &c);
    if (s != NB_OK) return s;
    imp_value *v = imp_define(im, nd, imp_out_name(nd));
    if (!v) return im->err;
    v->c = c;
    return NB_OK;
}

/* Identity, and Dropout in inference form. */
static nb_status identity(importer *im, const Onnx__NodeProto *nd) {
    const char *in = imp_input_name(nd, 0);
    imp_value *x = in ? imp_find(im, in) : NULL;
    if (!x) return imp_fail(im, nd, "input 1 is missing");
    nb_status s = alias(im, nd, x, 0, NULL);
    return s == NB_OK ? extra_outputs(im, nd) : s;
}

nb_status imp_node(importer *im, int k) {
    const Onnx__NodeProto *nd = im->gp->node[k];
    const char *op = imp_str(nd->op_type), *domain = imp_str(nd->domain);
    if (domain[0] && strcmp(domain, "ai.onnx"))
        return imp_fail(im, nd, "op '%s' of domain '%s' is not supported", imp_q(im, op),
                        imp_q(im, domain));
    if (!imp_out_name(nd)) return imp_fail(im, nd, "has no output");
    switch (im->fused[k]) {
    case FUSE_GELU: return unary(im, nd, "gelu", "gelu", im->fused_x[k]);
    case FUSE_GELU_TANH:
        return unary(im, nd, "gelu", "gelu approximate=tanh", im->fused_x[k]);
    case FUSE_SILU: return unary(im, nd, "silu", "silu", im->fused_x[k]);
    case FUSE_SOFTPLUS: return softplus_threshold(im, nd, k);
    case FUSE_RECURRENT: return imp_recurrent(im, nd, k);
    case FUSE_ATTENTION: return imp_attention(im, nd, k);
    default: break;
    }
    static const char *const act[] = {"Relu", "Sigmoid", "Tanh", "Abs", "Softplus", "HardSwish",
                                      "Softmax", "LogSoftmax", "LeakyRelu", "Elu"};
    for (size_t a = 0; a < sizeof act / sizeof act[0]; a++)
        if (!strcmp(op, act[a])) return activation(im, nd, op);
    if (!strcmp(op, "Gelu")) return gelu(im, nd);
    if (!strcmp(op, "Add")) return binary(im, nd, "add");
    if (!strcmp(op, "Sub")) return binary(im, nd, "sub");
    if (!strcmp(op, "Mul")) return binary(im, nd, "mul");
    if (!strcmp(op, "Gemm")) return gemm(im, nd);
    if (!strcmp(op, "MatMul")) return matmul(im, nd, k);
    if (!strcmp(op, "Conv")) return conv(im, nd);
    if (!strcmp(op, "MaxPool")) return pool(im, nd, 0);
    if (!strcmp(op, "AveragePool")) return pool(im, nd, 1);
    if (!strcmp(op, "GlobalAveragePool")) return global_pool(im, nd, 1);
    if (!strcmp(op, "ReduceMean")) return reduce_mean(im, nd);
    if (!strcmp(op, "Flatten")) return flatten(im, nd);
    if (!strcmp(op, "Reshape")) return reshape(im, nd);
    if (!strcmp(op, "Concat")) return concat(im, nd);
    if (!strcmp(op, "BatchNormalization")) return batch_norm(im, nd);
    if (!strcmp(op, "LayerNormalization")) return layer_norm(im, nd);
    if (!strcmp(op, "Identity") || !strcmp(op, "Dropout")) return identity(im, nd);
    if (!strcmp(op, "Constant")) return constant_node(im, nd);
    if (!strcmp(op, "Gather")) return imp_embedding(im, nd);
    if (!strcmp(op, "Transpose"))
        return imp_fail(im, nd, "a Transpose is imported only before a recurrent layer (to "
                        "time-major, with a Squeeze and a Transpose back after it) and inside "
                        "attention, as nabla's export writes them (docs/onnx.md)");
    if (!strcmp(op, "RNN") || !strcmp(op, "LSTM") || !strcmp(op, "GRU"))
        return imp_recurrent(im, nd, k);
    if (!strcmp(op, "Shape"))
        return imp_fail(im, nd, "a Shape is imported only in the shape arithmetic PyTorch's "
                        "exports write around a recurrent layer (a zero initial state, the "
                        "Reshape that drops the direction axis), and this one is not part of "
                        "it (docs/onnx.md)");
    char q[64];
    return imp_fail(im, nd, "op '%s' is not supported (docs/onnx.md lists the ops nabla "
                    "imports)", nb__quote(q, sizeof q, op, strlen(op), 40));
}

#endif
