/* Shape arithmetic in an ONNX graph, followed symbolically: what a shape
 * computed from another value's Shape holds, entry by entry, as the set of
 * that value's dimensions each entry multiplies.  PyTorch 2's exporter
 * computes reshapes this way (Shape, Slice, Mul, Concat, Reshape) where the
 * TorchScript one wrote a Squeeze; the import recognises them by what they
 * compute, not by how they are written. */
#include "../core/internal.h"

#ifdef NB_HAVE_ONNX

#include "onnx_import.h"

#include <string.h>

enum { MAX_ENTRIES = 8, MAX_DEPTH = 16 };

typedef struct shape_walk {
    const char *of; /* the value whose Shape the entries come from */
    int rank;       /* its rank */
    int *chain, *n, cap;
} shape_walk;

static int add_node(shape_walk *w, int k) {
    for (int i = 0; i < *w->n; i++)
        if (w->chain[i] == k) return 1;
    if (*w->n >= w->cap) return 0;
    w->chain[(*w->n)++] = k;
    return 1;
}

/* An int64 constant of one element (any rank): its value in *v. */
static int int_scalar(importer *im, const char *name, int64_t *v) {
    const imp_const *c = imp_known_const(im, name);
    if (!c || !c->is_int || c->count != 1) return 0;
    *v = c->i[0];
    return 1;
}

static int eval(importer *im, shape_walk *w, const char *value, unsigned *out, int depth);

/* Shape(of) with its start and end: one entry per dimension. */
static int eval_shape(shape_walk *w, const Onnx__NodeProto *nd, unsigned *out) {
    const char *src = imp_input_name(nd, 0);
    const Onnx__AttributeProto *a = imp_attr(nd, "start"), *b = imp_attr(nd, "end");
    int64_t start = a ? a->i : 0, end = b ? b->i : w->rank;
    if (!src || strcmp(src, w->of)) return -1;
    if (start < 0) start += w->rank;
    if (end < 0) end += w->rank;
    start = start < 0 ? 0 : start > w->rank ? w->rank : start;
    end = end < start ? start : end > w->rank ? w->rank : end;
    for (int64_t i = start; i < end; i++) out[i - start] = 1u << i;
    return (int)(end - start);
}

/* Slice of a 1-D vector along axis 0 with step 1. */
static int eval_slice(importer *im, shape_walk *w, const Onnx__NodeProto *nd, unsigned *out,
                      int depth) {
    unsigned in[MAX_ENTRIES];
    int64_t start, end, axis = 0, step = 1;
    int len = eval(im, w, imp_input_name(nd, 0), in, depth + 1);
    if (len < 0 || !int_scalar(im, imp_input_name(nd, 1), &start) ||
        !int_scalar(im, imp_input_name(nd, 2), &end) ||
        (imp_input_name(nd, 3) && !int_scalar(im, imp_input_name(nd, 3), &axis)) ||
        (imp_input_name(nd, 4) && !int_scalar(im, imp_input_name(nd, 4), &step)) ||
        (axis != 0 && axis != -1) || step != 1)
        return -1;
    if (start < 0) start += len;
    if (end < 0) end += len;
    start = start < 0 ? 0 : start > len ? len : start;
    end = end < start ? start : end > len ? len : end;
    memcpy(out, in + start, (size_t)(end - start) * sizeof *out);
    return (int)(end - start);
}

/* Concat along axis 0 of 1-D vectors. */
static int eval_concat(importer *im, shape_walk *w, const Onnx__NodeProto *nd, unsigned *out,
                       int depth) {
    const Onnx__AttributeProto *a = imp_attr(nd, "axis");
    int len = 0;
    if (!a || (a->i != 0 && a->i != -1)) return -1;
    for (size_t i = 0; i < nd->n_input; i++) {
        unsigned part[MAX_ENTRIES];
        int n = eval(im, w, imp_input_name(nd, (int)i), part, depth + 1);
        if (n < 0 || len + n > MAX_ENTRIES) return -1;
        memcpy(out + len, part, (size_t)n * sizeof *out);
        len += n;
    }
    return len;
}

/* Mul of two one-entry vectors of different dimensions. */
static int eval_mul(importer *im, shape_walk *w, const Onnx__NodeProto *nd, unsigned *out,
                    int depth) {
    unsigned a[MAX_ENTRIES], b[MAX_ENTRIES];
    if (eval(im, w, imp_input_name(nd, 0), a, depth + 1) != 1 ||
        eval(im, w, imp_input_name(nd, 1), b, depth + 1) != 1 || (a[0] & b[0]))
        return -1;
    out[0] = a[0] | b[0];
    return 1;
}

/* Reshape to [-1] or [len], Squeeze and Unsqueeze of one entry, Cast to
 * int64: the same entries. */
static int eval_same(importer *im, shape_walk *w, const Onnx__NodeProto *nd, unsigned *out,
                     int depth) {
    const char *op = imp_str(nd->op_type);
    int len = eval(im, w, imp_input_name(nd, 0), out, depth + 1);
    int64_t to = -1;
    if (len < 0) return -1;
    if (!strcmp(op, "Reshape"))
        return int_scalar(im, imp_input_name(nd, 1), &to) && (to == -1 || to == len) ? len : -1;
    if (!strcmp(op, "Cast")) {
        const Onnx__AttributeProto *a = imp_attr(nd, "to");
        return a && a->i == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? len : -1;
    }
    return len == 1 ? 1 : -1; /* Squeeze, Unsqueeze */
}

static int eval(importer *im, shape_walk *w, const char *value, unsigned *out, int depth) {
    int p = value ? imp_producer(im, value) : -1;
    if (p < 0 || depth > MAX_DEPTH || !add_node(w, p)) return -1;
    const Onnx__NodeProto *nd = im->gp->node[p];
    if (imp_is_op(im, p, "Shape")) return eval_shape(w, nd, out);
    if (imp_is_op(im, p, "Slice")) return eval_slice(im, w, nd, out, depth);
    if (imp_is_op(im, p, "Concat")) return eval_concat(im, w, nd, out, depth);
    if (imp_is_op(im, p, "Mul")) return eval_mul(im, w, nd, out, depth);
    if (imp_is_op(im, p, "Reshape") || imp_is_op(im, p, "Cast") ||
        imp_is_op(im, p, "Squeeze") || imp_is_op(im, p, "Unsqueeze"))
        return eval_same(im, w, nd, out, depth);
    return -1;
}

int imp_shape_of(importer *im, const char *value, const char *of, int rank, unsigned *dims,
                 int max, int *chain, int *n, int cap) {
    unsigned all[MAX_ENTRIES];
    shape_walk w = {of, rank, chain, n, cap};
    int before = *n, len = rank <= MAX_ENTRIES ? eval(im, &w, value, all, 0) : -1;
    if (len < 0 || len > max) {
        *n = before;
        return -1;
    }
    memcpy(dims, all, (size_t)len * sizeof *dims);
    return len;
}

#endif
