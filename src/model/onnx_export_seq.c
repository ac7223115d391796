/* ONNX export of the sequence ops: embedding (Gather), rnn, lstm and gru
 * (ONNX's RNN, LSTM and GRU, with the layer's input projection folded in)
 * and attention (written out in MatMul, Softmax and reshapes, as ONNX before
 * opset 23 has no attention op).  docs/onnx.md maps them. */
#include "onnx_export.h"
#include "onnx_gates.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef NB_HAVE_ONNX

#define IN(k) e->names[n->in[k]]

/* A node of op_type from one input x, whose output is a new value; NULL on failure. */
static char *ex_step(exporter *e, int h, const char *op_type, const char *what, char *x,
                     Onnx__NodeProto **nd) {
    char *out = ex_temp(e, h, what);
    *nd = out ? ex_node(e, op_type, ex_str(e, "%s/%s", e->g->nodes[h].name, what), 1,
                        (char *[]){x}, out) : NULL;
    return *nd ? out : NULL;
}

/* Transpose x by perm into out (a new value when out is NULL); the output's name. */
static char *ex_transpose(exporter *e, int h, const char *what, char *x, int ndim,
                          const int *perm, char *out) {
    Onnx__NodeProto *nd;
    if (out) nd = ex_node(e, "Transpose", ex_str(e, "%s/%s", e->g->nodes[h].name, what), 1,
                          (char *[]){x}, out);
    else out = ex_step(e, h, "Transpose", what, x, &nd);
    attr_ints(e, nd, "perm", ndim, perm);
    return nd ? out : NULL;
}

/* ------------------------------------------------------------ embedding */

/* Gather(table, ids) along the table's rows.  The ids are the graph's input
 * when it holds token ids (int64), else a float tensor cast to int64. */
Onnx__NodeProto *ex_embedding(exporter *e, int h, const nb_node_t *n) {
    char *ids = IN(0);
    if (!e->tokens || e->g->nodes[n->in[0]].leaf != NB_LEAF_INPUT) {
        Onnx__NodeProto *cast;
        ids = ex_step(e, h, "Cast", "ids", ids, &cast);
        attr_i(e, cast, "to", ONNX_INT64);
        if (!ids) return NULL;
    }
    Onnx__NodeProto *nd = ex_node(e, "Gather", n->name, 2, (char *[]){IN(1), ids}, e->names[h]);
    attr_i(e, nd, "axis", 0);
    return nd;
}

/* ------------------------------------------------------------ recurrent layers */


/* Rows of v [G H, cols] into out with the gate blocks in ONNX's order. */
static void to_onnx_gates(int kind, int H, int cols, const nb_real *v, nb_real *out) {
    size_t block = (size_t)H * (size_t)cols;
    for (int j = 0; j < onnx_gate_count[kind]; j++)
        memcpy(out + (size_t)j * block, v + (size_t)onnx_gate_order[kind][j] * block,
               block * sizeof *v);
}

/* The W, R and B inputs of the ONNX node from nabla's W_ih, W_hh, b_ih and
 * b_hh (leaves w_ih, w_hh, b_ih, b_hh), one direction: [1, G H, D],
 * [1, G H, H] and [1, 2 G H] (b_ih then b_hh); names into names[3]. */
static int ex_gate_weights(exporter *e, int h, int kind, int H, const int leaf[4],
                           char *names[3]) {
    const nb_node_t *w_ih = &e->g->nodes[leaf[0]];
    int GH = onnx_gate_count[kind] * H, D = w_ih->dims[1];
    const nb_real *v[4];
    for (int k = 0; k < 4; k++)
        if (!(v[k] = ex_values(e, leaf[k]))) return 0;
    int widest = D > H ? D : H > 2 ? H : 2; /* the columns of W, R, or B's two halves */
    nb_real *buf = malloc((size_t)GH * (size_t)widest * sizeof *buf);
    if (!buf) return e->oom = 1, 0;
    int dims[3][3] = {{1, GH, D}, {1, GH, H}, {1, 2 * GH, 0}};
    const char *what[3] = {"W", "R", "B"};
    int ok = 1;
    for (int k = 0; k < 3 && ok; k++) {
        names[k] = ex_str(e, "%s/%s", e->names[h], what[k]);
        if (k < 2) to_onnx_gates(kind, H, k ? H : D, v[k], buf);
        else to_onnx_gates(kind, H, 1, v[2], buf), to_onnx_gates(kind, H, 1, v[3], buf + GH);
        ok = names[k] && ex_init_reals(e, names[k], k < 2 ? 3 : 2, dims[k], buf);
    }
    free(buf);
    return ok;
}

/* The layer over [B, T, D] as ONNX runs it, time-major: Transpose to
 * [T, B, D]; the op with hidden_size (the GRU with linear_before_reset = 1,
 * PyTorch's n gate); then Y [T, 1, B, H] squeezed and transposed back to
 * [B, T, H], or for the last state only Y_h [1, B, H] squeezed to [B, H]. */
Onnx__NodeProto *ex_recurrent(exporter *e, int h, const nb_node_t *n) {
    const nb_recurrent_settings *r = &n->settings.recurrent;
    const nb_node_t *xp = &e->g->nodes[n->in[0]]; /* the input projection, folded in */
    int leaf[4] = {xp->in[1], n->in[1], xp->nin > 2 ? xp->in[2] : -1, n->in[2]};
    char *w[3], *x = ex_transpose(e, h, "time_major", e->names[xp->in[0]], 3,
                                  (int[]){1, 0, 2}, NULL);
    if (!x || leaf[2] < 0 || !ex_gate_weights(e, h, r->kind, r->hidden, leaf, w)) return NULL;
    char *y = ex_temp(e, h, r->last ? "last" : "steps");
    Onnx__NodeProto *nd = ex_node(e, onnx_rnn_op[r->kind], n->name, 4,
                                  (char *[]){x, w[0], w[1], w[2]}, y);
    if (r->last) ex_outputs(e, nd, 2, (char *[]){"", y});
    attr_i(e, nd, "hidden_size", r->hidden);
    if (r->kind == NB_GRU) attr_i(e, nd, "linear_before_reset", 1);
    char *axis = ex_int64s(e, h, "axis", 1, (int64_t[]){r->last ? 0 : 1});
    if (!nd || !axis) return NULL;
    char *out = r->last ? e->names[h] : ex_temp(e, h, "squeezed");
    Onnx__NodeProto *sq = ex_node(e, "Squeeze", ex_str(e, "%s/squeeze", n->name), 2,
                                  (char *[]){y, axis}, out);
    if (!sq || r->last) return sq;
    return ex_transpose(e, h, "batch_major", out, 3, (int[]){1, 0, 2}, e->names[h]) ? sq : NULL;
}

/* ------------------------------------------------------------ attention */

/* The heads of qkv [B, T, 3 D] (q, k, v side by side, head j owning columns
 * j dh .. (j+1) dh of each): Reshape to [B, T, 3, heads, dh], Transpose to
 * [3, B, heads, T, dh], and q, k, v are Gathers of index 0, 1, 2. */
static int ex_split_heads(exporter *e, int h, const nb_node_t *n, char *qkv[3]) {
    int heads = n->settings.attention.heads, D = n->dims[2];
    char *shape = ex_int64s(e, h, "shape", 5, (int64_t[]){0, 0, 3, heads, D / heads});
    char *r = ex_temp(e, h, "split");
    if (!shape || !r || !ex_node(e, "Reshape", ex_str(e, "%s/split", n->name), 2,
                                 (char *[]){IN(0), shape}, r))
        return 0;
    char *t = ex_transpose(e, h, "heads", r, 5, (int[]){2, 0, 3, 1, 4}, NULL);
    static const char *const what[3] = {"q", "k", "v"};
    for (int k = 0; t && k < 3; k++) {
        char *index = ex_int64s(e, h, "index", 0, (int64_t[]){k});
        qkv[k] = ex_temp(e, h, what[k]);
        Onnx__NodeProto *nd = index && qkv[k] ? ex_node(e, "Gather",
            ex_str(e, "%s/%s", n->name, what[k]), 2, (char *[]){t, index}, qkv[k]) : NULL;
        attr_i(e, nd, "axis", 0);
        if (!nd) return 0;
    }
    return t != NULL;
}

/* A [T, T] float initializer: 0 where position i may attend to j (j <= i),
 * -inf elsewhere; its name. */
static char *ex_causal_mask(exporter *e, int h, int T) {
    nb_real *m = malloc((size_t)T * (size_t)T * sizeof *m);
    char *name = ex_temp(e, h, "causal_mask");
    if (!m || !name) return free(m), e->oom = 1, NULL;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) m[(size_t)i * T + j] = j <= i ? R(0) : (nb_real)-INFINITY;
    int ok = ex_init_reals(e, name, 2, (int[]){T, T}, m);
    free(m);
    return ok ? name : NULL;
}

/* softmax(q kᵀ / √dh [+ mask]) v per sample and head, then the heads side by
 * side again: Transpose to [B, T, heads, dh] and Reshape to [B, T, D]. */
Onnx__NodeProto *ex_attention(exporter *e, int h, const nb_node_t *n) {
    int heads = n->settings.attention.heads, T = n->dims[1], D = n->dims[2];
    char *qkv[3], *s = ex_temp(e, h, "scores"), *scaled = ex_temp(e, h, "scaled");
    if (!ex_split_heads(e, h, n, qkv)) return NULL;
    char *kt = ex_transpose(e, h, "k_t", qkv[1], 4, (int[]){0, 1, 3, 2}, NULL);
    if (!kt || !ex_node(e, "MatMul", ex_str(e, "%s/scores", n->name), 2,
                        (char *[]){qkv[0], kt}, s) ||
        !ex_mul_scalar(e, h, ex_str(e, "%s/scale", n->name), s, 1.0 / sqrt(D / heads),
                       scaled))
        return NULL;
    if (n->settings.attention.causal) {
        char *mask = ex_causal_mask(e, h, T), *masked = ex_temp(e, h, "masked");
        if (!mask || !ex_node(e, "Add", ex_str(e, "%s/mask", n->name), 2,
                              (char *[]){scaled, mask}, masked))
            return NULL;
        scaled = masked;
    }
    Onnx__NodeProto *sm;
    char *p = ex_step(e, h, "Softmax", "weights", scaled, &sm), *o = ex_temp(e, h, "context");
    attr_i(e, sm, "axis", -1);
    if (!p || !o || !ex_node(e, "MatMul", ex_str(e, "%s/context", n->name), 2,
                             (char *[]){p, qkv[2]}, o))
        return NULL;
    char *joined = ex_transpose(e, h, "join", o, 4, (int[]){0, 2, 1, 3}, NULL);
    char *shape = ex_int64s(e, h, "shape", 3, (int64_t[]){0, 0, D});
    if (!joined || !shape) return NULL;
    return ex_node(e, "Reshape", n->name, 2, (char *[]){joined, shape}, e->names[h]);
}

#endif
