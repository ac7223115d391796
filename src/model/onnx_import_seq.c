/* ONNX import of the sequence ops (docs/onnx.md, "Import"): an int64 input
 * of token ids, Gather of an embedding table's rows, Add of a position
 * table, and RNN / LSTM / GRU between the Transpose to time-major and the
 * Squeeze (and Transpose back) that PyTorch's batch_first export and
 * nabla's put around them. */
#include "../core/internal.h"

#ifdef NB_HAVE_ONNX

#include "onnx_gates.h"
#include "onnx_import.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ tokens */

nb_status imp_token_vocab(importer *im, const char *input, int *vocab) {
    *vocab = 0;
    for (size_t k = 0; k < im->gp->n_node; k++) {
        const Onnx__NodeProto *nd = im->gp->node[k];
        const char *ids = imp_input_name(nd, 1), *table = imp_input_name(nd, 0);
        if (!imp_is_op(im, (int)k, "Gather") || !ids || strcmp(ids, input)) continue;
        imp_value *t = table ? imp_find(im, table) : NULL;
        if (!t || !t->c || t->c->is_int || t->c->ndim != 2)
            return imp_fail(im, nd, "the token ids index '%s', which is not a float [rows, dim] "
                            "initializer (an embedding table)", imp_q(im, table));
        if (*vocab && *vocab != t->c->dims[0])
            return imp_fail(im, nd, "its table has %d rows, another one %d: a nabla model has "
                            "one vocabulary", t->c->dims[0], *vocab);
        *vocab = t->c->dims[0];
    }
    if (!*vocab)
        return imp_fail(im, NULL, "input '%s' is int64 (token ids), but no Gather of an "
                        "embedding table reads it", imp_q(im, input));
    return NB_OK;
}

/* Gather(table [V, D], ids) with the model's token ids: `embedding D`. */
nb_status imp_embedding(importer *im, const Onnx__NodeProto *nd) {
    imp_const *table;
    int64_t axis;
    const char *ids = imp_input_name(nd, 1);
    imp_value *x = ids ? imp_find(im, ids) : NULL;
    nb_status s = imp_constant(im, nd, 0, 0, &table);
    if (s == NB_OK) s = imp_attr_int(im, nd, "axis", 0, 0, 0, &axis);
    if (s != NB_OK) return s;
    if (!im->vocab || !x || x->line != 0 || x->c)
        return imp_fail(im, nd, "nabla imports a Gather as an embedding: rows of a constant "
                        "table picked by the model's int64 input");
    if (table->ndim != 2)
        return imp_fail(im, nd, "the table must be [rows, dim]");
    int dims[2] = {x->dims[0], table->dims[1]};
    imp_line *l = imp_add_line(im, nd, "embedding", imp_param_hint(im, nd, 0),
                               imp_out_name(nd), 2, dims, "embedding %d", table->dims[1]);
    if (!l) return im->err;
    l->in[l->n_in++] = 0;
    imp_add_param(l, "weight", table, 0, 0);
    return NB_OK;
}

/* x [T, D] + a constant table [T, D]: `pos_embedding`. */
nb_status imp_pos_embedding(importer *im, const Onnx__NodeProto *nd, imp_value *x,
                            const imp_const *table) {
    int line, table_input = imp_find(im, imp_input_name(nd, 0))->c ? 0 : 1;
    imp_value xv = *x; /* x moves when a value is added */
    nb_status s = imp_materialize(im, nd, x, &line);
    if (s != NB_OK) return s;
    imp_line *l = imp_add_line(im, nd, "pos_embedding", imp_param_hint(im, nd, table_input),
                               imp_out_name(nd), 2, xv.dims, "pos_embedding");
    if (!l) return im->err;
    l->in[l->n_in++] = line;
    imp_add_param(l, "weight", table, 0, 0);
    return NB_OK;
}

/* ------------------------------------------------------------ recurrent layers */

/* Node k is a Transpose of a 3-D tensor by [1, 0, 2]. */
static int swaps_batch_and_time(importer *im, int k) {
    return imp_transposes(im, k, 3, (int[]){1, 0, 2});
}

/* Input i of node k, when it is an integer initializer or Constant of one
 * element, of rank ndim, equal to want. */
static int int_input_is(importer *im, int k, int i, int ndim, int64_t want) {
    const imp_const *c = imp_known_const(im, imp_input_name(im->gp->node[k], i));
    return c && c->is_int && c->count == 1 && c->ndim == ndim && c->i[0] == want;
}

/* Node k is a Squeeze of the one axis axis (opset 13: the axes an input). */
static int squeezes(importer *im, int k, int64_t axis) {
    return imp_is_op(im, k, "Squeeze") && int_input_is(im, k, 1, 1, axis);
}

/* Node k is a Gather of the last position, x[:, -1] of [batch, T, H]. */
static int picks_last_step(importer *im, int k) {
    const Onnx__AttributeProto *a = k >= 0 ? imp_attr(im->gp->node[k], "axis") : NULL;
    return imp_is_op(im, k, "Gather") && int_input_is(im, k, 1, 0, -1) && a &&
           a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT && (a->i == 1 || a->i == -2);
}

enum { MAX_CHAIN = 32 };

/* The nodes that compute the shape [1, batch, H] of a zero state from the
 * input's Shape (PyTorch's export of h0 = 0): Constant, Gather, Unsqueeze,
 * Concat, Cast and Slice back to a Shape, each output read once; into
 * chain[*n].  0 if value is not such a shape. */
static int shape_chain(importer *im, const char *value, int *chain, int *n) {
    static const char *const ops[] = {"Shape", "Constant", "Gather", "Unsqueeze", "Concat",
                                      "Cast", "Slice"};
    int p = value ? imp_producer(im, value) : -1, known = 0;
    for (size_t j = 0; p >= 0 && j < sizeof ops / sizeof ops[0]; j++)
        known |= imp_is_op(im, p, ops[j]);
    if (!known || imp_uses(im, value) != 1 || *n >= MAX_CHAIN) return 0;
    chain[(*n)++] = p;
    const Onnx__NodeProto *nd = im->gp->node[p];
    for (size_t i = 0; !imp_is_op(im, p, "Shape") && i < nd->n_input; i++)
        if (nd->input[i] && nd->input[i][0] && !imp_find(im, nd->input[i]) &&
            !shape_chain(im, nd->input[i], chain, n))
            return 0;
    return 1;
}

/* A float constant of zeros. */
static int zeros(importer *im, const char *name) {
    const imp_const *c = imp_known_const(im, name);
    for (size_t k = 0; c && !c->is_int && k < c->count; k++)
        if (c->f[k] != 0) return 0;
    return c && !c->is_int;
}

/* Is value a zero initial state: ConstantOfShape of 0 (PyTorch's h0, c0), or
 * Expand of a zero constant and a Slice of that (PyTorch 2's)? */
static int zero_state(importer *im, const char *value, int *chain, int *n) {
    int p = value ? imp_producer(im, value) : -1;
    const Onnx__NodeProto *nd = p >= 0 ? im->gp->node[p] : NULL;
    if (*n >= MAX_CHAIN || !nd) return 0;
    if (imp_is_op(im, p, "Slice") || imp_is_op(im, p, "Expand")) {
        int slice = imp_is_op(im, p, "Slice");
        for (int i = 1; slice && i < (int)nd->n_input; i++)
            if (imp_input_name(nd, i) && !imp_known_const(im, imp_input_name(nd, i))) return 0;
        chain[(*n)++] = p;
        return slice ? imp_uses(im, imp_input_name(nd, 0)) == 1 &&
                           zero_state(im, imp_input_name(nd, 0), chain, n)
                     : zeros(im, imp_input_name(nd, 0)) &&
                           shape_chain(im, imp_input_name(nd, 1), chain, n);
    }
    if (!imp_is_op(im, p, "ConstantOfShape")) return 0;
    const Onnx__AttributeProto *a = imp_attr(im->gp->node[p], "value");
    const Onnx__TensorProto *t = a ? a->t : NULL;
    float v = 0;
    if (t && t->has_raw_data && t->raw_data.len == sizeof v) memcpy(&v, t->raw_data.data, sizeof v);
    else if (t && t->n_float_data == 1) v = t->float_data[0];
    else if (t) return 0;
    chain[(*n)++] = p;
    return v == 0 && shape_chain(im, imp_input_name(im->gp->node[p], 0), chain, n);
}

/* Transpose [0, 2, 1, 3] (node t) of Y [T, 1, batch, H] and a Reshape to
 * [T, batch, H] computed from its shape (PyTorch 2's export of the Squeeze):
 * the Reshape, its shape's nodes added to chain; else -1. */
static int drops_direction(importer *im, int t, int *chain, int *n) {
    const char *v = imp_output(im, t, 0);
    int r = -1, before = *n, shapes = 0;
    if (!imp_transposes(im, t, 4, (int[]){0, 2, 1, 3})) return -1;
    for (int k = 0; k < (int)im->gp->n_node; k++) {
        const char *x = imp_input_name(im->gp->node[k], 0);
        if (!im->needed[k] || !imp_is_op(im, k, "Reshape") || !x || strcmp(x, v)) continue;
        if (r >= 0) return -1;
        r = k;
    }
    unsigned d[3];
    if (r < 0 || imp_shape_of(im, imp_input_name(im->gp->node[r], 1), v, 4, d, 3, chain, n,
                              MAX_CHAIN) != 3)
        return -1;
    for (int i = before; i < *n; i++) shapes += imp_is_op(im, chain[i], "Shape");
    if (d[0] != 1u << 0 || d[1] != 1u << 1 || (d[2] != 1u << 3 && d[2] != (3u << 2)) ||
        imp_uses(im, v) != 1 + shapes) {
        *n = before;
        return -1;
    }
    return r;
}

/* Transpose [1, 0, 2] -> node k -> Squeeze(axis 1) of Y -> Transpose [1, 0, 2]
 * (every step; a Gather of the last step after it: the last state), or ->
 * Squeeze(axis 0) of Y_h (the last state): one layer; initial states that are
 * zeros (and the nodes that make them) left out. */
void imp_match_recurrent(importer *im, int k) {
    const char *x = imp_input_name(im->gp->node[k], 0);
    const char *y = imp_output(im, k, 0), *yh = imp_output(im, k, 1);
    int t = x ? imp_producer(im, x) : -1;
    if (imp_uses(im, x) != 1 || !swaps_batch_and_time(im, t)) return;
    int last = imp_uses(im, y) == 0 && imp_uses(im, yh) == 1;
    if (!last && !(imp_uses(im, y) == 1 && imp_uses(im, yh) == 0)) return;
    int sq = imp_only_consumer(im, last ? yh : y), back = -1, pick = -1, merged = -1;
    int chain[MAX_CHAIN], n = 0;
    if (!squeezes(im, sq, last ? 0 : 1) && (last || (merged = drops_direction(im, sq, chain,
                                                                              &n)) < 0))
        return;
    if (!last) {
        back = imp_only_consumer(im, imp_output(im, merged >= 0 ? merged : sq, 0));
        if (!swaps_batch_and_time(im, back)) return;
        pick = imp_only_consumer(im, imp_output(im, back, 0));
        if (!picks_last_step(im, pick)) pick = -1;
    }
    const Onnx__NodeProto *nd = im->gp->node[k];
    for (int i = 5; i < 7; i++) { /* initial_h, initial_c (the LSTM's may be h's value) */
        const char *h0 = imp_input_name(nd, i);
        int same = i == 6 && h0 && imp_input_name(nd, 5) && !strcmp(h0, nd->input[5]);
        int before = n; /* any other state is refused by recurrent_settings, naming the node */
        if (h0 && !same && !zero_state(im, h0, chain, &n)) n = before;
    }
    for (int i = 0; i < n; i++) im->fused[chain[i]] = FUSE_SKIP;
    im->fused[t] = im->fused[sq] = FUSE_SKIP;
    if (back >= 0) im->fused[back] = FUSE_SKIP;
    if (pick >= 0) im->fused[pick] = FUSE_SKIP;
    if (merged >= 0) im->fused[merged] = FUSE_SKIP;
    im->fused[k] = FUSE_RECURRENT;
    im->fused_x[k] = imp_input_name(im->gp->node[t], 0);
    im->fused_b[k] = imp_output(im, pick >= 0 ? pick : last ? sq : back, 0);
}

/* Is value the output of a node left out (a zero initial state's chain)? */
static int made_by_skipped(importer *im, const char *value) {
    int p = imp_producer(im, value);
    return p >= 0 && im->fused[p] == FUSE_SKIP;
}

/* The attributes and optional inputs nabla's layer has: one forward layer,
 * zero initial state, the default activations, no clip, no peepholes. */
static nb_status recurrent_settings(importer *im, const Onnx__NodeProto *nd, int kind,
                                    int64_t *hidden) {
    static const char *const acts[3] = {"Tanh", "Sigmoid,Tanh,Tanh", "Sigmoid,Tanh"};
    int64_t layout, lbr, forget;
    nb_status s = imp_attr_int(im, nd, "hidden_size", 0, 1, 1 << 20, hidden);
    if (s == NB_OK) s = imp_attr_int(im, nd, "layout", 0, 0, 0, &layout);
    if (s == NB_OK && kind == NB_GRU)
        s = imp_attr_int(im, nd, "linear_before_reset", 0, 1, 1, &lbr);
    if (s == NB_OK && kind == NB_LSTM) s = imp_attr_int(im, nd, "input_forget", 0, 0, 0, &forget);
    if (s != NB_OK) return s;
    if (!*hidden) return imp_fail(im, nd, "attribute hidden_size is missing");
    if (kind == NB_GRU && lbr != 1)
        return imp_fail(im, nd, "linear_before_reset=0 is not supported: nabla's GRU is "
                        "PyTorch's, which applies the reset gate after the recurrent product "
                        "(linear_before_reset=1)");
    if (!imp_string_attr_is(nd, "direction", "forward"))
        return imp_fail(im, nd, "only direction=forward is supported (one direction)");
    if (imp_attr(nd, "clip")) return imp_fail(im, nd, "attribute clip is not supported");
    const Onnx__AttributeProto *a = imp_attr(nd, "activations");
    char list[64] = "";
    for (size_t j = 0; a && j < a->n_strings && strlen(list) + a->strings[j].len + 2 < sizeof list;
         j++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%.*s", j ? "," : "",
                 (int)a->strings[j].len, (const char *)a->strings[j].data);
    if (a && strcmp(list, acts[kind]))
        return imp_fail(im, nd, "activations %s are not supported (nabla's are %s)", list,
                        acts[kind]);
    for (int i = 4; i < 8; i++) /* zero initial states were left out with their nodes */
        if (imp_input_name(nd, i) && (i == 4 || i == 7 || !made_by_skipped(im, nd->input[i])))
            return imp_fail(im, nd, "input %d (%s) is not supported: nabla's layers start from "
                            "a zero state and run over every position", i + 1,
                            i == 4 ? "sequence_lens" : i == 7 ? "P, peepholes" : "initial state");
    return NB_OK;
}

/* ONNX's [1, G H, cols] (gates in ONNX's order) as PyTorch's [G H, cols];
 * part selects half of B (0: the input biases, 1: the recurrent ones). */
static imp_const *to_torch_gates(importer *im, const imp_const *c, int kind, int H, int cols,
                                 int part) {
    int GH = onnx_gate_count[kind] * H, dims[2] = {GH, cols};
    imp_const *t = imp_new_const(im, cols > 1 ? 2 : 1, dims);
    size_t block = (size_t)H * (size_t)cols;
    for (int j = 0; t && j < onnx_gate_count[kind]; j++)
        memcpy(t->f + (size_t)onnx_gate_order[kind][j] * block,
               c->f + (size_t)part * GH + (size_t)j * block, block * sizeof *t->f);
    return t;
}

static nb_status recurrent_weights(importer *im, const Onnx__NodeProto *nd, int kind, int H,
                                   int D, imp_const *w[3]) {
    int GH = onnx_gate_count[kind] * H;
    nb_status s = imp_constant(im, nd, 1, 0, &w[0]);
    if (s == NB_OK) s = imp_constant(im, nd, 2, 0, &w[1]);
    if (s == NB_OK) s = imp_constant(im, nd, 3, 1, &w[2]);
    if (s != NB_OK) return s;
    int want[3][3] = {{1, GH, D}, {1, GH, H}, {1, 2 * GH, 0}};
    for (int i = 0; i < 3; i++) {
        const imp_const *c = w[i];
        if (c && (c->ndim != (i < 2 ? 3 : 2) || c->dims[0] != want[i][0] ||
                  c->dims[1] != want[i][1] || (i < 2 && c->dims[2] != want[i][2])))
            return imp_fail(im, nd, "%s must be [1, %d%s%d] for hidden_size %d and %d input "
                            "features", i == 0 ? "W" : i == 1 ? "R" : "B", want[i][1],
                            i < 2 ? ", " : "", i < 2 ? want[i][2] : 0, H, D);
    }
    return NB_OK;
}

nb_status imp_recurrent(importer *im, const Onnx__NodeProto *nd, int k) {
    const char *op = imp_str(nd->op_type);
    int kind = !strcmp(op, "RNN") ? NB_RNN_TANH : !strcmp(op, "LSTM") ? NB_LSTM : NB_GRU;
    if (im->fused[k] != FUSE_RECURRENT)
        return imp_fail(im, nd, "nabla imports a recurrent layer over [batch, T, D] as "
                        "PyTorch exports batch_first: a Transpose to time-major before it, and "
                        "after it a Squeeze of Y and a Transpose back, or a Squeeze of Y_h");
    imp_value *x = imp_find(im, im->fused_x[k]);
    int64_t hidden;
    imp_const *w[3];
    nb_status s = recurrent_settings(im, nd, kind, &hidden);
    if (s != NB_OK) return s;
    if (!x || x->c || x->line < 0 || x->ndim != 2)
        return imp_fail(im, nd, "its input must be [batch, T, D], computed by a layer");
    int H = (int)hidden, T = x->dims[0], D = x->dims[1], line;
    if ((s = recurrent_weights(im, nd, kind, H, D, w)) != NB_OK ||
        (s = imp_materialize(im, nd, x, &line)) != NB_OK)
        return s;
    int last = imp_uses(im, imp_output(im, k, 1)) == 1 ||
               picks_last_step(im, imp_producer(im, im->fused_b[k])),
        dims[2] = {T, H};
    static const char *const keyword[3] = {"rnn", "lstm", "gru"};
    imp_line *l = imp_add_line(im, nd, keyword[kind], imp_module_path(im, nd), im->fused_b[k],
                               last ? 1 : 2, last ? dims + 1 : dims, "%s %d%s", keyword[kind],
                               H, last ? " last=true" : "");
    if (!l) return im->err;
    l->in[l->n_in++] = line;
    static const char *const names[4] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                         "bias_hh_l0"};
    for (int i = 0; i < 4; i++) {
        const imp_const *c = i < 2 ? w[i] : w[2];
        imp_const *t = c ? to_torch_gates(im, c, kind, H, i == 0 ? D : i == 1 ? H : 1, i == 3)
                         : NULL;
        if (c && !t) return im->err;
        imp_add_param(l, names[i], t, 0, 0);
    }
    return NB_OK;
}

#endif
