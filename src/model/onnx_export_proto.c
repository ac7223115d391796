/* Building an ONNX model's messages for the export (onnx_export*.c): every
 * allocation is the exporter's and is freed when the export ends; a failed
 * allocation sets e->oom and makes the builder return NULL or 0. */
#include "onnx_export.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef NB_HAVE_ONNX

static int grow(void ***arr, size_t n, size_t *cap) {
    if (n < *cap) return 1;
    size_t c = *cap ? *cap * 2 : 16;
    void **p = realloc(*arr, c * sizeof *p);
    if (!p) return 0;
    *arr = p;
    *cap = c;
    return 1;
}

void *ex_alloc(exporter *e, size_t size) {
    void *p = calloc(1, size ? size : 1);
    if (!p || !grow(&e->owned, e->n_owned, &e->cap_owned)) {
        free(p);
        e->oom = 1;
        return NULL;
    }
    e->owned[e->n_owned++] = p;
    return p;
}

char *ex_str(exporter *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = ex_alloc(e, (size_t)len + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return s;
}

Onnx__NodeProto *ex_node(exporter *e, const char *op_type, const char *name, int n_in,
                         char *const *in, char *out) {
    Onnx__NodeProto *nd = ex_alloc(e, sizeof *nd);
    char **ins = ex_alloc(e, (size_t)n_in * sizeof *ins);
    char **outs = ex_alloc(e, sizeof *outs);
    Onnx__AttributeProto **attrs = ex_alloc(e, MAX_ATTRS * sizeof *attrs);
    if (!nd || !ins || !outs || !attrs || !grow((void ***)&e->nodes, e->n_nodes, &e->cap_nodes)) {
        e->oom = 1;
        return NULL;
    }
    *nd = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
    memcpy(ins, in, (size_t)n_in * sizeof *ins);
    outs[0] = out;
    nd->n_input = (size_t)n_in;
    nd->input = ins;
    nd->n_output = 1;
    nd->output = outs;
    nd->name = ex_str(e, "%s", name);
    nd->op_type = (char *)op_type;
    nd->attribute = attrs;
    e->nodes[e->n_nodes++] = nd;
    return nd;
}

static Onnx__AttributeProto *ex_attr(exporter *e, Onnx__NodeProto *nd, const char *name,
                                     Onnx__AttributeProto__AttributeType type) {
    if (!nd || nd->n_attribute >= MAX_ATTRS) return NULL;
    Onnx__AttributeProto *a = ex_alloc(e, sizeof *a);
    if (!a) return NULL;
    *a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
    a->name = (char *)name;
    a->has_type = 1;
    a->type = type;
    nd->attribute[nd->n_attribute++] = a;
    return a;
}

void attr_i(exporter *e, Onnx__NodeProto *nd, const char *name, int64_t v) {
    Onnx__AttributeProto *a = ex_attr(e, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) a->has_i = 1, a->i = v;
}

void attr_f(exporter *e, Onnx__NodeProto *nd, const char *name, double v) {
    Onnx__AttributeProto *a = ex_attr(e, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) a->has_f = 1, a->f = (float)v;
}

void attr_ints(exporter *e, Onnx__NodeProto *nd, const char *name, int n, const int *v) {
    Onnx__AttributeProto *a = ex_attr(e, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *ints = ex_alloc(e, (size_t)n * sizeof *ints);
    if (!a || !ints) return;
    for (int k = 0; k < n; k++) ints[k] = v[k];
    a->n_ints = (size_t)n;
    a->ints = ints;
}

/* An initializer: little-endian raw data of ndim dims. */
int ex_init(exporter *e, const char *name, int32_t type, int ndim, const int64_t *dims,
            const void *data, size_t bytes) {
    Onnx__TensorProto *t = ex_alloc(e, sizeof *t);
    int64_t *d = ex_alloc(e, (size_t)ndim * sizeof *d);
    uint8_t *raw = ex_alloc(e, bytes);
    if (!t || !d || !raw || !grow((void ***)&e->inits, e->n_inits, &e->cap_inits))
        return e->oom = 1, 0;
    *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    memcpy(d, dims, (size_t)ndim * sizeof *d);
    memcpy(raw, data, bytes);
    t->n_dims = (size_t)ndim;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = type;
    t->name = ex_str(e, "%s", name);
    t->has_raw_data = 1;
    t->raw_data = (ProtobufCBinaryData){bytes, raw};
    e->inits[e->n_inits++] = t;
    return 1;
}

/* A float initializer from nb_real values (the double build narrows). */
int ex_init_reals(exporter *e, const char *name, int ndim, const int *dims, const nb_real *v) {
    int64_t d[NB_MAX_DIMS];
    size_t count = 1;
    for (int k = 0; k < ndim; k++) d[k] = dims[k], count *= (size_t)dims[k];
    float *f = malloc(count ? count * sizeof *f : 1);
    if (!f) return e->oom = 1, 0;
    for (size_t k = 0; k < count; k++) f[k] = (float)v[k];
    int ok = ex_init(e, name, ONNX_FLOAT, ndim, d, f, count * sizeof *f);
    free(f);
    return ok;
}

/* A leaf's values: parameters live in g->params, buffers and constants in val;
 * NULL with the error set when it has none yet. */
const nb_real *ex_values(exporter *e, int h) {
    const nb_node_t *n = &e->g->nodes[h];
    const nb_real *v = n->leaf == NB_LEAF_PARAM ? e->g->params + n->val_off
                       : n->val                 ? n->val
                                                : n->const_data;
    if (!v) nb_err(NB_ERR_STATE, "ONNX export: node '%s' has no values yet", n->name);
    return v;
}

int ex_leaf(exporter *e, int h) {
    const nb_node_t *n = &e->g->nodes[h];
    const nb_real *v = ex_values(e, h);
    return v && ex_init_reals(e, e->names[h], n->ndim, n->dims, v);
}

/* An int64 initializer of n values (a scalar when n is 0: one value); its name. */
char *ex_int64s(exporter *e, int h, const char *what, int n, const int64_t *v) {
    char *name = ex_temp(e, h, what);
    int64_t len = n;
    if (!name || !ex_init(e, name, ONNX_INT64, n ? 1 : 0, &len, v, (size_t)(n ? n : 1) * sizeof *v))
        return NULL;
    return name;
}

/* Give node nd n_out outputs (an empty name: an output left out). */
Onnx__NodeProto *ex_outputs(exporter *e, Onnx__NodeProto *nd, int n_out, char *const *out) {
    char **outs = ex_alloc(e, (size_t)n_out * sizeof *outs);
    if (!nd || !outs) return NULL;
    memcpy(outs, out, (size_t)n_out * sizeof *outs);
    nd->n_output = (size_t)n_out;
    nd->output = outs;
    return nd;
}

char *ex_temp(exporter *e, int h, const char *what) {
    return ex_str(e, "%s/%s%d", e->names[h], what, e->temps++);
}

char *ex_fill(exporter *e, int h, const char *what, int ndim, const int *dims, double v) {
    size_t count = 1;
    for (int k = 0; k < ndim; k++) count *= (size_t)dims[k];
    nb_real *vals = malloc(count * sizeof *vals);
    char *name = ex_temp(e, h, what);
    if (!vals || !name) return free(vals), e->oom = 1, NULL;
    for (size_t k = 0; k < count; k++) vals[k] = (nb_real)v;
    int ok = ex_init_reals(e, name, ndim, dims, vals);
    free(vals);
    return ok ? name : NULL;
}

Onnx__NodeProto *ex_mul_scalar(exporter *e, int h, const char *name, char *x, double v, char *out) {
    char *c = ex_fill(e, h, "scalar", 0, NULL, v);
    return c ? ex_node(e, "Mul", name, 2, (char *[]){x, c}, out) : NULL;
}

#endif
