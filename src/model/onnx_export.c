/* ONNX export (nb_export_onnx): the part of a graph between an input and an
 * output node, written as an ONNX model (IR 8, opset 17) whose initializers
 * are the parameters and buffers under their nabla names.  The messages are
 * those of Debian's onnx.proto compiled by protoc-c, packed by protobuf-c.
 * docs/onnx.md maps nabla's ops to ONNX's. */
#include "core/internal.h"
#include "formats/atomic.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef NB_HAVE_ONNX

nb_status nb_export_onnx(const nb_graph *g, nb_node input, nb_node output, const char *path,
                         const nb_kv *meta, int n_meta) {
    (void)g, (void)input, (void)output, (void)path, (void)meta, (void)n_meta;
    return nb_err(NB_ERR_STATE, "ONNX export: nabla was built without ONNX support; install "
                  "libonnx-dev, protobuf-c-compiler and libprotobuf-c-dev (make deps) and rebuild");
}

#else

#include "onnx_export.h"

/* ------------------------------------------------------------ the ops */

#define IN(k) e->names[n->in[k]]

static Onnx__NodeProto *ex_conv(exporter *e, int h, const nb_node_t *n) {
    const nb_conv_settings *c = &n->settings.conv;
    const nb_node_t *w = &e->g->nodes[n->in[1]];
    Onnx__NodeProto *nd = ex_node(e, "Conv", n->name, n->nin, (char *[]){IN(0), IN(1),
                                  n->nin > 2 ? IN(2) : NULL}, e->names[h]);
    int pads[4] = {c->pad.h, c->pad.w, c->pad.h, c->pad.w};
    attr_ints(e, nd, "kernel_shape", 2, (int[]){w->dims[2], w->dims[3]});
    attr_ints(e, nd, "strides", 2, (int[]){c->stride.h, c->stride.w});
    attr_ints(e, nd, "pads", 4, pads);
    attr_ints(e, nd, "dilations", 2, (int[]){c->dilation.h, c->dilation.w});
    attr_i(e, nd, "group", c->groups);
    return nd;
}

/* ONNX (to opset 18) rounds up without PyTorch's rule that the last window
 * start inside the input or its left padding; where the rule dropped that
 * window, nabla's size is the rounded-down one. */
static int onnx_ceil_mode(const nb_graph *g, const nb_node_t *n) {
    const nb_pool_settings *p = &n->settings.pool;
    const nb_node_t *x = &g->nodes[n->in[0]];
    if (!p->ceil_mode) return 0;
    int in[2] = {x->dims[2], x->dims[3]}, k[2] = {p->kernel.h, p->kernel.w};
    int s[2] = {p->stride.h, p->stride.w}, pad[2] = {p->pad.h, p->pad.w}, up[2];
    for (int a = 0; a < 2; a++) {
        int span = in[a] + 2 * pad[a] - k[a];
        up[a] = (span + s[a] - 1) / s[a] + 1 == n->dims[2 + a];
    }
    if (up[0] != up[1])
        return nb_err(NB_ERR_ARG, "ONNX export: pool node '%s': ceil_mode rounds one axis up "
                      "and drops the last window of the other, which ONNX cannot express",
                      n->name), -1;
    return up[0];
}

static Onnx__NodeProto *ex_pool(exporter *e, int h, const nb_node_t *n, int average) {
    const nb_pool_settings *p = &n->settings.pool;
    int ceil_mode = onnx_ceil_mode(e->g, n);
    if (ceil_mode < 0) return NULL;
    Onnx__NodeProto *nd = ex_node(e, average ? "AveragePool" : "MaxPool", n->name, 1,
                                  (char *[]){IN(0)}, e->names[h]);
    int pads[4] = {p->pad.h, p->pad.w, p->pad.h, p->pad.w};
    attr_ints(e, nd, "kernel_shape", 2, (int[]){p->kernel.h, p->kernel.w});
    attr_ints(e, nd, "strides", 2, (int[]){p->stride.h, p->stride.w});
    attr_ints(e, nd, "pads", 4, pads);
    attr_i(e, nd, "ceil_mode", ceil_mode);
    if (average) attr_i(e, nd, "count_include_pad", p->count_include_pad);
    return nd;
}

/* BatchNormalization in inference form: the running statistics, and a unit
 * scale and zero shift when the norm has no affine parameters. */
static Onnx__NodeProto *ex_batch_norm(exporter *e, int h, const nb_node_t *n) {
    const nb_batch_norm_settings *b = &n->settings.batch_norm;
    int C = e->g->nodes[b->running_mean].ndim ? e->g->nodes[b->running_mean].dims[0] : 1;
    char *scale = n->nin > 1 ? IN(1) : ex_fill(e, h, "scale", 1, &C, 1);
    char *shift = n->nin > 2 ? IN(2) : ex_fill(e, h, "shift", 1, &C, 0);
    if (!scale || !shift) return NULL;
    if (!ex_leaf(e, b->running_mean) || !ex_leaf(e, b->running_var)) return NULL;
    Onnx__NodeProto *nd = ex_node(e, "BatchNormalization", n->name, 5,
                                  (char *[]){IN(0), scale, shift, e->names[b->running_mean],
                                             e->names[b->running_var]}, e->names[h]);
    attr_f(e, nd, "epsilon", b->eps);
    attr_f(e, nd, "momentum", 1.0 - b->momentum);
    return nd;
}

/* LayerNormalization (opset 17) over the trailing normalized_ndim dims. */
static Onnx__NodeProto *ex_layer_norm(exporter *e, int h, const nb_node_t *n) {
    const nb_layer_norm_settings *l = &n->settings.layer_norm;
    const int *tail = n->dims + (n->ndim - l->normalized_ndim);
    char *scale = n->nin > 1 ? IN(1) : ex_fill(e, h, "scale", l->normalized_ndim, tail, 1);
    char *shift = n->nin > 2 ? IN(2) : ex_fill(e, h, "shift", l->normalized_ndim, tail, 0);
    if (!scale || !shift) return NULL;
    Onnx__NodeProto *nd = ex_node(e, "LayerNormalization", n->name, 3,
                                  (char *[]){IN(0), scale, shift}, e->names[h]);
    attr_i(e, nd, "axis", n->ndim - l->normalized_ndim);
    attr_f(e, nd, "epsilon", l->eps);
    return nd;
}

/* silu x * sigmoid(x); gelu 0.5 x (1 + erf(x / sqrt 2)), from primitives. */
static Onnx__NodeProto *ex_composed(exporter *e, int h, const nb_node_t *n, int gelu) {
    char *x = IN(0), *y = e->names[h];
    char *sig = ex_temp(e, h, "sigmoid");
    if (!gelu)
        return ex_node(e, "Sigmoid", ex_str(e, "%s/sigmoid", n->name), 1, (char *[]){x}, sig)
                   ? ex_node(e, "Mul", n->name, 2, (char *[]){x, sig}, y) : NULL;
    char *scaled = ex_temp(e, h, "scaled"), *erf = ex_temp(e, h, "erf");
    char *plus = ex_temp(e, h, "plus"), *half = ex_temp(e, h, "half");
    char *one = ex_fill(e, h, "one", 0, NULL, 1);
    if (!one || !ex_mul_scalar(e, h, ex_str(e, "%s/scale", n->name), x, 0.70710678118654752,
                               scaled) ||
        !ex_node(e, "Erf", ex_str(e, "%s/erf", n->name), 1, (char *[]){scaled}, erf) ||
        !ex_node(e, "Add", ex_str(e, "%s/add", n->name), 2, (char *[]){erf, one}, plus) ||
        !ex_mul_scalar(e, h, ex_str(e, "%s/half", n->name), x, 0.5, half))
        return NULL;
    return ex_node(e, "Mul", n->name, 2, (char *[]){half, plus}, y);
}

/* gelu's tanh form 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in the
 * order PyTorch exports it (ONNX's Gelu is opset 20). */
static Onnx__NodeProto *ex_gelu_tanh(exporter *e, int h, const nb_node_t *n) {
    char *x = IN(0), *x2 = ex_temp(e, h, "x2"), *x3 = ex_temp(e, h, "x3");
    char *a = ex_temp(e, h, "cubic"), *b = ex_temp(e, h, "inner"), *c = ex_temp(e, h, "scaled");
    char *t = ex_temp(e, h, "tanh"), *p = ex_temp(e, h, "plus"), *m = ex_temp(e, h, "times");
    char *one = ex_fill(e, h, "one", 0, NULL, 1);
    if (!one || !ex_node(e, "Mul", ex_str(e, "%s/square", n->name), 2, (char *[]){x, x}, x2) ||
        !ex_node(e, "Mul", ex_str(e, "%s/cube", n->name), 2, (char *[]){x, x2}, x3) ||
        !ex_mul_scalar(e, h, ex_str(e, "%s/kappa", n->name), x3, 0.044715, a) ||
        !ex_node(e, "Add", ex_str(e, "%s/inner", n->name), 2, (char *[]){x, a}, b) ||
        !ex_mul_scalar(e, h, ex_str(e, "%s/scale", n->name), b, 0.79788456080286535588, c) ||
        !ex_node(e, "Tanh", ex_str(e, "%s/tanh", n->name), 1, (char *[]){c}, t) ||
        !ex_node(e, "Add", ex_str(e, "%s/add", n->name), 2, (char *[]){t, one}, p) ||
        !ex_node(e, "Mul", ex_str(e, "%s/times", n->name), 2, (char *[]){x, p}, m))
        return NULL;
    return ex_mul_scalar(e, h, n->name, m, 0.5, e->names[h]);
}

/* Softplus is ln(1 + e^x); nabla's beta b gives softplus(b x) / b. */
static Onnx__NodeProto *ex_softplus(exporter *e, int h, const nb_node_t *n) {
    double beta = n->settings.activation.beta;
    if (beta == 1)
        return ex_node(e, "Softplus", n->name, 1, (char *[]){IN(0)}, e->names[h]);
    char *bx = ex_temp(e, h, "beta_x"), *sp = ex_temp(e, h, "softplus");
    if (!ex_mul_scalar(e, h, ex_str(e, "%s/beta", n->name), IN(0), beta, bx) ||
        !ex_node(e, "Softplus", ex_str(e, "%s/softplus", n->name), 1, (char *[]){bx}, sp))
        return NULL;
    return ex_mul_scalar(e, h, n->name, sp, 1.0 / beta, e->names[h]);
}

static Onnx__NodeProto *ex_concat(exporter *e, int h, const nb_node_t *n) {
    char *in[NB_MAX_INPUTS];
    for (int k = 0; k < n->nin; k++) in[k] = IN(k);
    Onnx__NodeProto *nd = ex_node(e, "Concat", n->name, n->nin, in, e->names[h]);
    attr_i(e, nd, "axis", n->settings.concat_axis);
    return nd;
}

/* The node's shape as a Reshape target: 0 keeps the batch dimension. */
static Onnx__NodeProto *ex_reshape(exporter *e, int h, const nb_node_t *n) {
    int64_t shape[NB_MAX_DIMS];
    for (int k = 0; k < n->ndim; k++) shape[k] = n->batched && k == 0 ? 0 : n->dims[k];
    char *target = ex_temp(e, h, "shape");
    int64_t len = n->ndim;
    if (!target || !ex_init(e, target, ONNX_INT64, 1, &len, shape, (size_t)len * sizeof *shape))
        return NULL;
    return ex_node(e, "Reshape", n->name, 2, (char *[]){IN(0), target}, e->names[h]);
}

/* A linear over the last axis of a tensor of more than 2 dims: MatMul by the
 * weight transposed to [in, out] (an initializer "<weight>_t"), then Add of
 * the bias, as PyTorch exports nn.Linear there. */
static Onnx__NodeProto *ex_matmul_add(exporter *e, int h, const nb_node_t *n) {
    const nb_node_t *w = &e->g->nodes[n->in[1]];
    int out = w->dims[0], in = w->dims[1], dims[2] = {in, out};
    nb_real *t = malloc((size_t)in * (size_t)out * sizeof *t);
    char *name = ex_str(e, "%s_t", IN(1));
    if (!t || !name) return free(t), e->oom = 1, NULL;
    const nb_real *v = ex_values(e, n->in[1]);
    if (!v) return free(t), NULL;
    for (size_t i = 0; i < (size_t)in; i++)
        for (size_t o = 0; o < (size_t)out; o++) t[i * (size_t)out + o] = v[o * (size_t)in + i];
    int ok = ex_init_reals(e, name, 2, dims, t);
    free(t);
    if (!ok) return NULL;
    char *prod = n->nin > 2 ? ex_temp(e, h, "matmul") : e->names[h];
    Onnx__NodeProto *nd = ex_node(e, "MatMul", n->name, 2, (char *[]){IN(0), name}, prod);
    if (!nd || n->nin < 3) return nd;
    return ex_node(e, "Add", ex_str(e, "%s/bias", n->name), 2, (char *[]){prod, IN(2)},
                   e->names[h]);
}

static Onnx__NodeProto *ex_linear(exporter *e, int h, const nb_node_t *n) {
    if (n->ndim != 2) return ex_matmul_add(e, h, n);
    Onnx__NodeProto *nd = ex_node(e, "Gemm", n->name, n->nin, (char *[]){IN(0), IN(1),
                                  n->nin > 2 ? IN(2) : NULL}, e->names[h]);
    attr_i(e, nd, "transB", 1);
    return nd;
}

/* A one-input op that maps to one ONNX op; NULL if there is none. */
static const char *simple_op(const char *op) {
    static const char *const map[][2] = {
        {"relu", "Relu"}, {"sigmoid", "Sigmoid"}, {"tanh", "Tanh"}, {"abs", "Abs"},
        {"dropout", "Identity"}, {"softmax", "Softmax"}, {"log_softmax", "LogSoftmax"},
        {"leaky_relu", "LeakyRelu"}, {"elu", "Elu"}, {"hardswish", "HardSwish"}};
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
        if (!strcmp(op, map[k][0])) return map[k][1];
    return NULL;
}

static Onnx__NodeProto *ex_simple(exporter *e, int h, const nb_node_t *n, const char *type) {
    Onnx__NodeProto *nd = ex_node(e, type, n->name, 1, (char *[]){IN(0)}, e->names[h]);
    if (!strcmp(type, "Softmax") || !strcmp(type, "LogSoftmax")) attr_i(e, nd, "axis", -1);
    if (!strcmp(type, "LeakyRelu")) attr_f(e, nd, "alpha", n->settings.activation.slope);
    if (!strcmp(type, "Elu")) attr_f(e, nd, "alpha", n->settings.activation.alpha);
    return nd;
}

/* GlobalAveragePool keeps [batch, C, 1, 1]; nabla's result is [batch, C]. */
static Onnx__NodeProto *ex_global_avg(exporter *e, int h, const nb_node_t *n) {
    char *pooled = ex_temp(e, h, "pooled");
    if (!ex_node(e, "GlobalAveragePool", n->name, 1, (char *[]){IN(0)}, pooled)) return NULL;
    Onnx__NodeProto *nd = ex_node(e, "Flatten", ex_str(e, "%s/flatten", n->name), 1,
                                  (char *[]){pooled}, e->names[h]);
    attr_i(e, nd, "axis", 1);
    return nd;
}

/* Translate op node h; 0 with the error set if it has no ONNX counterpart. */
static int ex_op(exporter *e, int h) {
    const nb_node_t *n = &e->g->nodes[h];
    const char *op = n->op->name, *type = simple_op(op);
    Onnx__NodeProto *nd = NULL;
    if (type) nd = ex_simple(e, h, n, type);
    else if (!strcmp(op, "linear")) nd = ex_linear(e, h, n);
    else if (!strcmp(op, "conv2d")) nd = ex_conv(e, h, n);
    else if (!strcmp(op, "max_pool2d")) nd = ex_pool(e, h, n, 0);
    else if (!strcmp(op, "avg_pool2d")) nd = ex_pool(e, h, n, 1);
    else if (!strcmp(op, "global_avg_pool2d")) nd = ex_global_avg(e, h, n);
    else if (!strcmp(op, "batch_norm")) nd = ex_batch_norm(e, h, n);
    else if (!strcmp(op, "reshape") || !strcmp(op, "flatten")) nd = ex_reshape(e, h, n);
    else if (!strcmp(op, "layer_norm")) nd = ex_layer_norm(e, h, n);
    else if (!strcmp(op, "silu") || !strcmp(op, "gelu")) nd = ex_composed(e, h, n, op[0] == 'g');
    else if (!strcmp(op, "gelu_tanh")) nd = ex_gelu_tanh(e, h, n);
    else if (!strcmp(op, "softplus")) nd = ex_softplus(e, h, n);
    else if (!strcmp(op, "concat")) nd = ex_concat(e, h, n);
    else if (!strcmp(op, "embedding")) nd = ex_embedding(e, h, n);
    else if (!strcmp(op, "attention")) nd = ex_attention(e, h, n);
    else if (!strcmp(op, "rnn") || !strcmp(op, "lstm") || !strcmp(op, "gru"))
        nd = ex_recurrent(e, h, n);
    else if (!strcmp(op, "scale"))
        nd = ex_mul_scalar(e, h, n->name, IN(0), n->settings.scale, e->names[h]);
    else if (!strcmp(op, "matmul")) nd = ex_node(e, "MatMul", n->name, 2,
                                                 (char *[]){IN(0), IN(1)}, e->names[h]);
    else if (!strcmp(op, "add") || !strcmp(op, "sub") || !strcmp(op, "mul")) {
        static const char *const bin[] = {"Add", "Sub", "Mul"};
        nd = ex_node(e, bin[n->settings.binary.kind], n->name, 2, (char *[]){IN(0), IN(1)},
                     e->names[h]);
    } else {
        nb_err(NB_ERR_ARG, "ONNX export: op '%s' of node '%s' has no ONNX counterpart", op,
               n->name);
        return 0;
    }
    if (e->oom) nb_err(NB_ERR_NOMEM, "ONNX export: out of memory at node '%s'", n->name);
    return nd && !e->oom;
}

/* ----------------------------------------------------------- the graph */

/* Mark the nodes output depends on; every input leaf among them must be input. */
static int mark_needed(const nb_graph *g, nb_node input, nb_node output, unsigned char *need) {
    need[output] = 1;
    for (int h = output; h >= 0; h--) {
        if (!need[h]) continue;
        const nb_node_t *n = &g->nodes[h];
        if (n->leaf == NB_LEAF_INPUT && h != input)
            return nb_err(NB_ERR_ARG, "ONNX export: output '%s' depends on input '%s', which is "
                          "not the exported input '%s'", g->nodes[output].name, n->name,
                          g->nodes[input].name), 0;
        for (int k = 0; k < n->nin; k++) need[n->in[k]] = 1;
    }
    if (!need[input])
        return nb_err(NB_ERR_ARG, "ONNX export: output '%s' does not depend on input '%s'",
                      g->nodes[output].name, g->nodes[input].name), 0;
    return 1;
}

/* A graph input or output: float (int64 token ids), the batch dimension named
 * "batch". */
static Onnx__ValueInfoProto *ex_value_info(exporter *e, int h, int32_t elem_type) {
    const nb_node_t *n = &e->g->nodes[h];
    Onnx__ValueInfoProto *vi = ex_alloc(e, sizeof *vi);
    Onnx__TypeProto *tp = ex_alloc(e, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = ex_alloc(e, sizeof *tt);
    Onnx__TensorShapeProto *sh = ex_alloc(e, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dims = ex_alloc(e, (size_t)n->ndim * sizeof *dims);
    if (!vi || !tp || !tt || !sh || !dims) return NULL;
    *sh = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
    for (int k = 0; k < n->ndim; k++) {
        Onnx__TensorShapeProto__Dimension *d = ex_alloc(e, sizeof *d);
        if (!d) return NULL;
        *d = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
        if (n->batched && k == 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = "batch";
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = n->dims[k];
        }
        dims[k] = d;
    }
    sh->n_dim = (size_t)n->ndim;
    sh->dim = dims;
    *tt = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
    tt->has_elem_type = 1;
    tt->elem_type = elem_type;
    tt->shape = sh;
    *tp = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    *vi = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
    vi->name = e->names[h];
    vi->type = tp;
    return vi;
}

/* Value names: a node's own name when it is the first with it, else "node<h>". */
static int ex_names(exporter *e, const unsigned char *need) {
    e->names = ex_alloc(e, (size_t)e->g->n_nodes * sizeof *e->names);
    if (!e->names) return 0;
    for (int h = 0; h < e->g->n_nodes; h++) {
        const nb_node_t *n = &e->g->nodes[h];
        int own = n->name[0] && nb__find_name(e->g, n->name) == h;
        if (need[h] || n->leaf == NB_LEAF_BUFFER)
            e->names[h] = own ? ex_str(e, "%s", n->name) : ex_str(e, "node%d", h);
    }
    return !e->oom;
}

static int is_recurrent(const nb_node_t *n) {
    return n->op && (!strcmp(n->op->name, "rnn") || !strcmp(n->op->name, "lstm") ||
                     !strcmp(n->op->name, "gru"));
}

/* What the sequence ops change: a recurrent layer's ONNX node computes its
 * input projection too (folded), and the input is int64 when only
 * embeddings read it (the token ids). */
static int ex_sequence_plan(exporter *e, const unsigned char *need, nb_node input) {
    const nb_graph *g = e->g;
    int readers = 0, lookups = 0;
    e->folded = ex_alloc(e, (size_t)g->n_nodes);
    if (!e->folded) return 0;
    for (int h = 0; h < g->n_nodes; h++) {
        const nb_node_t *n = &g->nodes[h];
        if (!need[h] || !n->op) continue;
        if (is_recurrent(n)) e->folded[n->in[0]] = 1;
        for (int k = 0; k < n->nin; k++) {
            if (n->in[k] != input) continue;
            readers++;
            lookups += k == 0 && !strcmp(n->op->name, "embedding");
        }
    }
    e->tokens = readers > 0 && lookups == readers;
    return 1;
}

/* Leaves that are an initializer as they are: all but a weight that only
 * linears of more than 2 dims use (they write it transposed) and a recurrent
 * layer's parameters (written in ONNX's gate order). */
static unsigned char *ex_plain_leaves(exporter *e, const unsigned char *need) {
    unsigned char *plain = ex_alloc(e, (size_t)e->g->n_nodes);
    for (int h = 0; plain && h < e->g->n_nodes; h++) {
        const nb_node_t *n = &e->g->nodes[h];
        if (!need[h] || !n->op || e->folded[h] || is_recurrent(n)) continue;
        for (int k = 0; k < n->nin; k++)
            if (k != 1 || strcmp(n->op->name, "linear") || n->ndim == 2) plain[n->in[k]] = 1;
    }
    return plain;
}

/* Nodes and initializers in creation order (which is topological). */
static int ex_body(exporter *e, const unsigned char *need, nb_node input) {
    unsigned char *plain = ex_sequence_plan(e, need, input) ? ex_plain_leaves(e, need) : NULL;
    if (!plain) return nb_err(NB_ERR_NOMEM, "ONNX export: out of memory"), 0;
    for (int h = 0; h < e->g->n_nodes; h++) {
        if (!need[h] || h == input || e->folded[h]) continue;
        const nb_node_t *n = &e->g->nodes[h];
        if (!n->op && !plain[h]) continue;
        int ok = n->op ? ex_op(e, h) : ex_leaf(e, h);
        if (!ok) return 0;
    }
    return 1;
}

static Onnx__ModelProto *ex_model(exporter *e, Onnx__GraphProto *gp, const nb_kv *meta,
                                  int n_meta) {
    Onnx__ModelProto *m = ex_alloc(e, sizeof *m);
    Onnx__OperatorSetIdProto *ops = ex_alloc(e, sizeof *ops);
    Onnx__OperatorSetIdProto **opsets = ex_alloc(e, sizeof *opsets);
    Onnx__StringStringEntryProto **props = ex_alloc(e, (size_t)n_meta * sizeof *props);
    if (!m || !ops || !opsets || !props) return NULL;
    *ops = (Onnx__OperatorSetIdProto)ONNX__OPERATOR_SET_ID_PROTO__INIT;
    ops->domain = "";
    ops->has_version = 1;
    ops->version = ONNX_OPSET;
    opsets[0] = ops;
    for (int k = 0; k < n_meta; k++) {
        Onnx__StringStringEntryProto *p = ex_alloc(e, sizeof *p);
        if (!p) return NULL;
        *p = (Onnx__StringStringEntryProto)ONNX__STRING_STRING_ENTRY_PROTO__INIT;
        p->key = ex_str(e, "%s", meta[k].key);
        p->value = ex_str(e, "%s", meta[k].value);
        props[k] = p;
    }
    *m = (Onnx__ModelProto)ONNX__MODEL_PROTO__INIT;
    m->has_ir_version = 1;
    m->ir_version = ONNX_IR_VERSION;
    m->n_opset_import = 1;
    m->opset_import = opsets;
    m->producer_name = "nabla";
    m->graph = gp;
    m->n_metadata_props = (size_t)n_meta;
    m->metadata_props = props;
    return e->oom ? NULL : m;
}

static nb_status write_packed(const char *path, const Onnx__ModelProto *m) {
    size_t len = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return nb_err(NB_ERR_NOMEM, "ONNX export: out of memory packing %zu bytes", len);
    onnx__model_proto__pack(m, buf);
    nb_afile f;
    nb_status s = nb__afile_open(&f, path);
    if (s == NB_OK) s = nb__afile_write(&f, buf, len);
    if (s == NB_OK) s = nb__afile_commit(&f);
    else nb__afile_abort(&f);
    free(buf);
    return s;
}

static nb_status ex_check_args(const nb_graph *g, nb_node input, nb_node output,
                               const char *path, const nb_kv *meta, int n_meta) {
    if (!g || !path) return nb_err(NB_ERR_ARG, "ONNX export: graph or path is NULL");
    if (n_meta < 0 || (n_meta > 0 && !meta))
        return nb_err(NB_ERR_ARG, "ONNX export: bad metadata (%d entries)", n_meta);
    for (int k = 0; k < n_meta; k++)
        if (!meta[k].key || !meta[k].value)
            return nb_err(NB_ERR_ARG, "ONNX export: metadata entry %d has a NULL key or value", k);
    if (input < 0 || input >= g->n_nodes || output < 0 || output >= g->n_nodes)
        return nb_err(NB_ERR_ARG, "ONNX export: input %d or output %d is not a node of the "
                      "graph (%d nodes)", input, output, g->n_nodes);
    if (g->nodes[input].leaf != NB_LEAF_INPUT)
        return nb_err(NB_ERR_ARG, "ONNX export: '%s' is not an input node",
                      g->nodes[input].name);
    return NB_OK;
}

static nb_status ex_run(exporter *e, nb_node input, nb_node output, const char *path,
                        const nb_kv *meta, int n_meta) {
    unsigned char *need = ex_alloc(e, (size_t)e->g->n_nodes);
    Onnx__GraphProto *gp = ex_alloc(e, sizeof *gp);
    if (!need || !gp) return nb_err(NB_ERR_NOMEM, "ONNX export: out of memory");
    if (!mark_needed(e->g, input, output, need)) return NB_ERR_ARG;
    if (!ex_names(e, need)) return nb_err(NB_ERR_NOMEM, "ONNX export: out of memory");
    if (!ex_body(e, need, input)) return e->oom ? NB_ERR_NOMEM : NB_ERR_ARG;
    Onnx__ValueInfoProto *in = ex_value_info(e, input, e->tokens ? ONNX_INT64 : ONNX_FLOAT);
    Onnx__ValueInfoProto *out = ex_value_info(e, output, ONNX_FLOAT);
    *gp = (Onnx__GraphProto)ONNX__GRAPH_PROTO__INIT;
    gp->name = "nabla";
    gp->n_node = e->n_nodes;
    gp->node = e->nodes;
    gp->n_initializer = e->n_inits;
    gp->initializer = e->inits;
    gp->n_input = gp->n_output = 1;
    gp->input = ex_alloc(e, sizeof *gp->input);
    gp->output = ex_alloc(e, sizeof *gp->output);
    Onnx__ModelProto *m = gp->input && gp->output ? ex_model(e, gp, meta, n_meta) : NULL;
    if (!in || !out || !m || e->oom) return nb_err(NB_ERR_NOMEM, "ONNX export: out of memory");
    gp->input[0] = in;
    gp->output[0] = out;
    return write_packed(path, m);
}

nb_status nb_export_onnx(const nb_graph *g, nb_node input, nb_node output, const char *path,
                         const nb_kv *meta, int n_meta) {
    nb_status s = ex_check_args(g, input, output, path, meta, n_meta);
    if (s != NB_OK) return s;
    exporter e = {.g = g};
    s = ex_run(&e, input, output, path, meta, n_meta);
    if (s != NB_OK) nb_err_prefix(s, "%s", path);
    for (size_t k = 0; k < e.n_owned; k++) free(e.owned[k]);
    free(e.owned);
    free(e.nodes);
    free(e.inits);
    return s;
}

#endif
