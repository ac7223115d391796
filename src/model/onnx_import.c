/* ONNX import (nb_model_from_onnx): an ONNX model of the op subset the
 * export writes (docs/onnx.md) becomes a model text, parsed as a model file
 * is, and its initializers become the parameters and buffers.  This file
 * reads the file, decodes the constants, checks the graph's order, finds
 * the patterns that are one nabla op (GELU, SiLU, MatMul + Add), names the
 * lines and loads the weights; onnx_import_ops.c translates the ops. */
#define _POSIX_C_SOURCE 200809L
#include "../core/internal.h"
#include "../formats/io.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nb_kv_free(nb_kv *kv, int n) {
    for (int k = 0; kv && k < n; k++) free((char *)kv[k].key), free((char *)kv[k].value);
    free(kv);
}

#ifndef NB_HAVE_ONNX

static nb_status no_onnx(void) {
    return nb_err(NB_ERR_STATE, "ONNX import: nabla was built without ONNX support; install "
                  "libonnx-dev, protobuf-c-compiler and libprotobuf-c-dev (make deps) and rebuild");
}

nb_status nb_model_from_onnx_bytes(const void *bytes, size_t size, const char *label,
                                   const char *loss, nb_model *m, nb_kv **meta, int *n_meta) {
    (void)bytes, (void)size, (void)label, (void)loss, (void)m, (void)meta, (void)n_meta;
    return no_onnx();
}

nb_status nb_model_from_onnx(const char *path, const char *loss, nb_model *m, nb_kv **meta,
                             int *n_meta) {
    (void)path, (void)loss, (void)m, (void)meta, (void)n_meta;
    return no_onnx();
}

nb_status nb_onnx_external_data(const char *path, nb_kv **files, int *n) {
    (void)path, (void)files, (void)n;
    return no_onnx();
}

#else

#include "onnx_import.h"

enum { MAX_FILE = 1 << 30 };

/* ------------------------------------------------------------ helpers */

const char *imp_str(const char *s) { return s ? s : ""; }

nb_status imp_fail(importer *im, const Onnx__NodeProto *nd, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    im->err = NB_ERR_FORMAT;
    if (!nd) return nb_err(NB_ERR_FORMAT, "%s: %s", im->label, msg);
    char name[96], op[64];
    nb__quote(name, sizeof name, imp_str(nd->name), strlen(imp_str(nd->name)), 60);
    nb__quote(op, sizeof op, imp_str(nd->op_type), strlen(imp_str(nd->op_type)), 40);
    return nb_err(NB_ERR_FORMAT, "%s: node '%s' (%s): %s", im->label, name, op, msg);
}

const char *imp_q(importer *im, const char *s) {
    char q[96];
    const char *c = imp_strf(im, "%s", nb__quote(q, sizeof q, imp_str(s), strlen(imp_str(s)), 60));
    return c ? c : "?";
}

nb_status imp_oom(importer *im) {
    im->err = NB_ERR_NOMEM;
    return nb_err(NB_ERR_NOMEM, "%s: out of memory", im->label);
}

static int grow(void **arr, int n, int *cap, size_t size) {
    if (n < *cap) return 1;
    int c = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, (size_t)c * size);
    if (!p) return 0;
    *arr = p;
    *cap = c;
    return 1;
}

char *imp_strf(importer *im, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (!s || !grow((void **)&im->strs, im->n_strs, &im->cap_strs, sizeof *im->strs)) {
        free(s);
        return NULL;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    va_end(ap);
    im->strs[im->n_strs++] = s;
    return s;
}

void imp_float_text(char *buf, size_t size, float v) {
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, size, "%.*g", digits, (double)v);
        if (strtof(buf, NULL) == v) return;
    }
}

/* ------------------------------------------------------------ values */

static unsigned hash(const char *s) {
    unsigned h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

imp_value *imp_find(importer *im, const char *name) {
    if (!name || !im->n_slots) return NULL;
    for (unsigned k = hash(name) & (unsigned)(im->n_slots - 1);; k = (k + 1) & (unsigned)(im->n_slots - 1)) {
        int s = im->slots[k];
        if (!s) return NULL;
        if (!strcmp(im->vals[s - 1].name, name)) return &im->vals[s - 1];
    }
}

static int rehash(importer *im) {
    int n = im->n_slots ? im->n_slots * 2 : 64;
    int *slots = calloc((size_t)n, sizeof *slots);
    if (!slots) return 0;
    free(im->slots);
    im->slots = slots;
    im->n_slots = n;
    for (int v = 0; v < im->n_vals; v++) {
        unsigned k = hash(im->vals[v].name) & (unsigned)(n - 1);
        while (slots[k]) k = (k + 1) & (unsigned)(n - 1);
        slots[k] = v + 1;
    }
    return 1;
}

imp_value *imp_define(importer *im, const Onnx__NodeProto *nd, const char *name) {
    if (!name || !name[0]) return imp_fail(im, nd, "an output has no name"), NULL;
    if (imp_find(im, name)) {
        char q[96];
        return imp_fail(im, nd, "value '%s' is defined twice",
                        nb__quote(q, sizeof q, name, strlen(name), 60)), NULL;
    }
    if (im->n_vals >= IMP_MAX_NODES)
        return imp_fail(im, nd, "more than %d values", IMP_MAX_NODES), NULL;
    if (!grow((void **)&im->vals, im->n_vals, &im->cap_vals, sizeof *im->vals) ||
        ((im->n_vals + 1) * 2 > im->n_slots && !rehash(im)))
        return imp_oom(im), NULL;
    imp_value *v = &im->vals[im->n_vals++];
    memset(v, 0, sizeof *v);
    v->name = name;
    v->line = -1;
    unsigned k = hash(name) & (unsigned)(im->n_slots - 1);
    while (im->slots[k]) k = (k + 1) & (unsigned)(im->n_slots - 1);
    im->slots[k] = im->n_vals;
    return v;
}

/* ------------------------------------------------------------ constants */

static nb_status const_shape(importer *im, const Onnx__TensorProto *t, const char *what,
                             imp_const *c) {
    if (t->n_dims > NB_MAX_DIMS)
        return imp_fail(im, NULL, "%s has %zu dimensions (at most %d)", what, t->n_dims,
                        NB_MAX_DIMS);
    c->ndim = (int)t->n_dims;
    c->count = 1;
    for (int k = 0; k < c->ndim; k++) {
        if (t->dims[k] < 0 || t->dims[k] > IMP_MAX_DIM)
            return imp_fail(im, NULL, "%s: dimension %d is %lld (0 to %d)", what, k,
                            (long long)t->dims[k], IMP_MAX_DIM);
        c->dims[k] = (int)t->dims[k];
        if (c->dims[k] && c->count > (size_t)IMP_MAX_SAMPLE / (size_t)c->dims[k])
            return imp_fail(im, NULL, "%s: more than %d elements", what, IMP_MAX_SAMPLE);
        c->count *= (size_t)c->dims[k];
    }
    return NB_OK;
}

static void le_copy(void *dst, const uint8_t *src, size_t n, size_t size) {
    uint8_t *d = dst; /* little-endian file bytes to host order */
    for (size_t k = 0; k < n; k++)
        for (size_t b = 0; b < size; b++) {
            const union { uint16_t u; uint8_t c[2]; } one = {1};
            d[k * size + b] = one.c[0] ? src[k * size + b] : src[k * size + size - 1 - b];
        }
}

static nb_status external_values(importer *im, const Onnx__TensorProto *t, const char *what,
                                 imp_const *c, size_t size) {
    uint8_t *bytes;
    nb_status s = imp_external_data(im, t, what, c->count * size, &bytes);
    void *v = s == NB_OK ? malloc(c->count ? c->count * size : 1) : NULL;
    if (s == NB_OK && !v) s = imp_oom(im);
    if (s == NB_OK) le_copy(v, bytes, c->count, size);
    free(bytes);
    if (s != NB_OK) return s;
    if (c->is_int) c->i = v;
    else c->f = v;
    return NB_OK;
}

/* The values: raw_data, or float_data / int64_data, exactly count of them. */
static nb_status const_values(importer *im, const Onnx__TensorProto *t, const char *what,
                              imp_const *c) {
    size_t size = c->is_int ? sizeof(int64_t) : sizeof(float);
    size_t have = t->has_raw_data ? t->raw_data.len / size
                  : c->is_int ? t->n_int64_data : t->n_float_data;
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return external_values(im, t, what, c, size);
    if ((t->has_raw_data && t->raw_data.len % size) || have != c->count)
        return imp_fail(im, NULL, "%s: %zu %s for %zu elements of its shape", what,
                        t->has_raw_data ? t->raw_data.len : have,
                        t->has_raw_data ? "bytes of raw_data" : "values", c->count);
    void *v = malloc(c->count ? c->count * size : 1);
    if (!v) return imp_oom(im);
    if (t->has_raw_data) le_copy(v, t->raw_data.data, c->count, size);
    else if (c->count) memcpy(v, c->is_int ? (void *)t->int64_data : (void *)t->float_data,
                              c->count * size);
    if (c->is_int) c->i = v;
    else c->f = v;
    return NB_OK;
}

nb_status imp_const_from_tensor(importer *im, const Onnx__TensorProto *t, const char *what,
                                imp_const **out) {
    *out = NULL;
    if (!t) return imp_fail(im, NULL, "%s has no tensor", what);
    int type = t->has_data_type ? t->data_type : 0;
    if (type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT &&
        type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        return imp_fail(im, NULL, "%s has data type %d; only float32 (1) and, for shapes, "
                        "int64 (7) are supported", what, type);
    imp_const *c = calloc(1, sizeof *c);
    if (!c || !grow((void **)&im->consts, im->n_consts, &im->cap_consts, sizeof *im->consts))
        return free(c), imp_oom(im);
    im->consts[im->n_consts++] = c;
    c->is_int = type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    nb_status s = const_shape(im, t, what, c);
    if (s == NB_OK) s = const_values(im, t, what, c);
    if (s == NB_OK) *out = c;
    return s;
}

imp_const *imp_new_const(importer *im, int ndim, const int *dims) {
    imp_const *c = calloc(1, sizeof *c);
    if (!c || !grow((void **)&im->consts, im->n_consts, &im->cap_consts, sizeof *im->consts))
        return free(c), imp_oom(im), NULL;
    im->consts[im->n_consts++] = c;
    c->ndim = ndim;
    c->count = 1;
    for (int k = 0; k < ndim; k++) c->dims[k] = dims[k], c->count *= (size_t)dims[k];
    if (!(c->f = calloc(c->count ? c->count : 1, sizeof *c->f))) return imp_oom(im), NULL;
    return c;
}

/* ------------------------------------------------------------ lines */

imp_line *imp_add_line(importer *im, const Onnx__NodeProto *nd, const char *keyword,
                       const char *hint, const char *out, int ndim, const int *dims,
                       const char *fmt, ...) {
    size_t numel = 1;
    for (int k = 0; k < ndim; k++) {
        if (dims[k] <= 0 || dims[k] > IMP_MAX_DIM || numel > (size_t)IMP_MAX_SAMPLE / (size_t)dims[k])
            return imp_fail(im, nd, "the output would have a dimension %d, or more than %d "
                            "elements per sample", dims[k], IMP_MAX_SAMPLE), NULL;
        numel *= (size_t)dims[k];
    }
    if (im->n_lines >= IMP_MAX_NODES) return imp_fail(im, nd, "more than %d layers", IMP_MAX_NODES), NULL;
    if (!grow((void **)&im->lines, im->n_lines, &im->cap_lines, sizeof *im->lines))
        return imp_oom(im), NULL;
    imp_line *l = &im->lines[im->n_lines];
    memset(l, 0, sizeof *l);
    va_list ap;
    va_start(ap, fmt);
    char args[256];
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    l->args = imp_strf(im, "%s", args);
    l->keyword = keyword;
    l->hint = hint;
    l->node = nd ? imp_str(nd->name) : "";
    if (!l->args) return imp_oom(im), NULL;
    if (out) {
        imp_value *v = imp_define(im, nd, out);
        if (!v) return NULL;
        v->line = im->n_lines;
        v->ndim = v->nb_ndim = ndim;
        memcpy(v->dims, dims, (size_t)ndim * sizeof *dims);
        memcpy(v->nb_dims, dims, (size_t)ndim * sizeof *dims);
    }
    im->n_lines++;
    return l;
}

nb_status imp_materialize(importer *im, const Onnx__NodeProto *nd, imp_value *v, int *line) {
    if (v->c || v->line < 0)
        return imp_fail(im, nd, "value '%s' is not computed by a layer", imp_q(im, v->name));
    int same = v->ndim == v->nb_ndim &&
               !memcmp(v->dims, v->nb_dims, (size_t)v->ndim * sizeof *v->dims);
    if (same || v->shaped) {
        *line = same ? v->line : v->shaped;
        return NB_OK;
    }
    char args[128] = "reshape";
    for (int k = 0; k < v->ndim; k++)
        snprintf(args + strlen(args), sizeof args - strlen(args), " %d", v->dims[k]);
    int from = v->line;
    imp_line *l = imp_add_line(im, nd, "reshape", NULL, NULL, v->ndim, v->dims, "%s", args);
    if (!l) return im->err;
    l->in[l->n_in++] = from;
    *line = v->shaped = im->n_lines - 1;
    return NB_OK;
}

/* ------------------------------------------------------------ a name map */

/* Names (not copied) to integers, for the producers and the uses. */
typedef struct strmap {
    const char **keys;
    int *vals;
    int cap, n;
} strmap;

static int *map_slot(strmap *mp, const char *key, int add) {
    if (add && (mp->n + 1) * 2 > mp->cap) {
        strmap big = {calloc((size_t)(mp->cap ? mp->cap * 2 : 64), sizeof *big.keys),
                      calloc((size_t)(mp->cap ? mp->cap * 2 : 64), sizeof *big.vals),
                      mp->cap ? mp->cap * 2 : 64, 0};
        if (!big.keys || !big.vals) return free(big.keys), free(big.vals), NULL;
        for (int k = 0; k < mp->cap; k++)
            if (mp->keys[k]) *map_slot(&big, mp->keys[k], 1) = mp->vals[k];
        free(mp->keys), free(mp->vals);
        *mp = big;
    }
    if (!mp->cap) return NULL;
    unsigned k = hash(key) & (unsigned)(mp->cap - 1);
    for (; mp->keys[k]; k = (k + 1) & (unsigned)(mp->cap - 1))
        if (!strcmp(mp->keys[k], key)) return &mp->vals[k];
    if (!add) return NULL;
    mp->keys[k] = key;
    mp->n++;
    return &mp->vals[k];
}

static int map_get(strmap *mp, const char *key, int dflt) {
    int *v = key ? map_slot(mp, key, 0) : NULL;
    return v ? *v : dflt;
}

static void map_free(strmap *mp) {
    free(mp->keys);
    free(mp->vals);
    memset(mp, 0, sizeof *mp);
}

/* ------------------------------------------------------------ the graph */

typedef struct graph_maps {
    strmap producer; /* value -> node */
    strmap uses;     /* value -> number of uses by needed nodes and the output */
    strmap consumer; /* value -> the last needed node using it, + 1 */
} graph_maps;

static const Onnx__NodeProto *node_at(const importer *im, int k) { return im->gp->node[k]; }

static int is_op(const importer *im, int k, const char *op) {
    return k >= 0 && !strcmp(imp_str(node_at(im, k)->op_type), op);
}

static nb_status find_producers(importer *im, graph_maps *gm) {
    for (size_t k = 0; k < im->gp->n_node; k++) {
        const Onnx__NodeProto *nd = node_at(im, (int)k);
        for (size_t o = 0; o < nd->n_output; o++) {
            const char *name = nd->output[o];
            if (!name || !name[0]) continue;
            int *slot = map_slot(&gm->producer, name, 1);
            if (!slot) return imp_oom(im);
            if (*slot)
                return imp_fail(im, nd, "output '%s' is also the output of node '%s'", imp_q(im, name),
                                imp_q(im, node_at(im, *slot - 1)->name));
            *slot = (int)k + 1; /* 0: not yet set */
        }
    }
    return NB_OK;
}

static int producer(graph_maps *gm, const char *name) {
    return map_get(&gm->producer, name, 0) - 1;
}

/* The nodes the output depends on, and how often each value is used. */
static nb_status mark_needed(importer *im, graph_maps *gm) {
    int n = (int)im->gp->n_node, top = 0;
    int *stack = malloc((size_t)(n ? n : 1) * sizeof *stack);
    if (!stack) return imp_oom(im);
    int p = producer(gm, im->output);
    if (p >= 0) im->needed[p] = 1, stack[top++] = p;
    int *u = map_slot(&gm->uses, im->output, 1);
    if (!u) return free(stack), imp_oom(im);
    (*u)++;
    while (top > 0) {
        int k = stack[--top], *c;
        const Onnx__NodeProto *nd = node_at(im, k);
        for (size_t i = 0; i < nd->n_input; i++) {
            const char *in = nd->input[i];
            if (!in || !in[0]) continue;
            if (!(u = map_slot(&gm->uses, in, 1)) || !(c = map_slot(&gm->consumer, in, 1)))
                return free(stack), imp_oom(im);
            (*u)++;
            *c = k + 1;
            p = producer(gm, in);
            if (p >= 0 && !im->needed[p]) im->needed[p] = 1, stack[top++] = p;
        }
    }
    free(stack);
    return NB_OK;
}

int imp_producer(importer *im, const char *value) { return producer(im->gm, value); }

int imp_uses(importer *im, const char *value) {
    return value && value[0] ? map_get(&im->gm->uses, value, 0) : 0;
}

int imp_is_op(const importer *im, int k, const char *op) { return is_op(im, k, op); }

int imp_transposes(importer *im, int k, int n, const int *perm) {
    const Onnx__AttributeProto *p = is_op(im, k, "Transpose") ? imp_attr(node_at(im, k), "perm")
                                                               : NULL;
    if (!p || p->n_ints != (size_t)n) return 0;
    for (int i = 0; i < n; i++)
        if (p->ints[i] != perm[i]) return 0;
    return 1;
}

const char *imp_output(importer *im, int k, size_t o) {
    const Onnx__NodeProto *nd = k >= 0 && (size_t)k < im->gp->n_node ? node_at(im, k) : NULL;
    return nd && o < nd->n_output ? imp_str(nd->output[o]) : "";
}

imp_const *imp_known_const(importer *im, const char *name) {
    imp_value *v = name ? imp_find(im, name) : NULL;
    imp_const *c = v ? v->c : NULL;
    int p = name && !v ? imp_producer(im, name) : -1;
    if (is_op(im, p, "Constant") && imp_constant_value(im, node_at(im, p), &c) != NB_OK)
        return NULL;
    return c;
}

/* ------------------------------------------------------------ patterns */

/* The float scalar a value holds (an initializer or a Constant node's), or NAN. */
static float scalar_of(importer *im, const char *name) {
    const imp_const *c = imp_known_const(im, name);
    return c && !c->is_int && c->count == 1 ? c->f[0] : NAN;
}

static int near(float a, double b) { return fabs((double)a - b) <= 1e-6 * fabs(b); }

/* The one needed node that reads value (used exactly once), else -1. */
static int only_consumer(importer *im, graph_maps *gm, const char *value) {
    (void)im;
    if (!value || map_get(&gm->uses, value, 0) != 1) return -1;
    return map_get(&gm->consumer, value, 0) - 1;
}

int imp_only_consumer(importer *im, const char *value) {
    return only_consumer(im, im->gm, value);
}

/* Node k is op with two inputs, one of them a; the other is returned. */
static const char *other_input(importer *im, int k, const char *op, const char *a) {
    if (!is_op(im, k, op) || node_at(im, k)->n_input != 2 || node_at(im, k)->n_output < 1) return NULL;
    char **in = node_at(im, k)->input;
    if (!in[0] || !in[1]) return NULL;
    return !strcmp(in[0], a) ? in[1] : !strcmp(in[1], a) ? in[0] : NULL;
}

/* Node k is Mul of value by a scalar near v: its other input, used once. */
static const char *other_scalar(importer *im, graph_maps *gm, int k, const char *value, double v) {
    if (k < 0 || !value || map_get(&gm->uses, value, 0) != 1) return NULL;
    const Onnx__NodeProto *nd = node_at(im, k);
    if (!is_op(im, k, "Mul") || nd->n_input != 2 || !nd->input[0] || !nd->input[1]) return NULL;
    for (int s = 0; s < 2; s++)
        if (near(scalar_of(im, nd->input[s]), v)) return nd->input[1 - s];
    return NULL;
}

/* x / sqrt 2 (Mul by 1/sqrt 2 or Div by sqrt 2) feeding Erf node e: x, or NULL. */
static const char *gelu_input(importer *im, graph_maps *gm, int e, int *u) {
    const char *in = node_at(im, e)->input[0];
    *u = producer(gm, in);
    if (*u < 0 || map_get(&gm->uses, in, 0) != 1 || node_at(im, *u)->n_input != 2) return NULL;
    char **x = node_at(im, *u)->input;
    if (is_op(im, *u, "Div") && near(scalar_of(im, x[1]), 1.4142135623730951)) return x[0];
    if (!is_op(im, *u, "Mul")) return NULL;
    for (int s = 0; s < 2; s++)
        if (near(scalar_of(im, x[s]), 0.70710678118654752)) return x[1 - s];
    return NULL;
}

/* x + 0.044715 x^3 scaled by sqrt(2/pi) feeding Tanh node t (PyTorch's
 * order): x, or NULL; its nodes go to parts[0..4]. */
static const char *gelu_tanh_input(importer *im, graph_maps *gm, int t, int *parts) {
    const char *c = node_at(im, t)->input[0], *b, *a, *x3, *x2, *x = NULL;
    parts[0] = producer(gm, c);
    if (!(b = other_scalar(im, gm, parts[0], c, 0.79788456080286535588))) return NULL;
    parts[1] = producer(gm, b);
    for (int s = 0; s < 2 && !x && is_op(im, parts[1], "Add") && map_get(&gm->uses, b, 0) == 1; s++) {
        a = node_at(im, parts[1])->input[s];
        parts[2] = producer(gm, a);
        x3 = other_scalar(im, gm, parts[2], a, 0.044715);
        parts[3] = x3 ? producer(gm, x3) : -1;
        const char *cand = node_at(im, parts[1])->input[1 - s];
        x2 = cand ? other_input(im, parts[3], "Mul", cand) : NULL;
        parts[4] = x2 ? producer(gm, x2) : -1;
        if (x2 && map_get(&gm->uses, x3, 0) == 1 && map_get(&gm->uses, x2, 0) == 1 &&
            other_input(im, parts[4], "Mul", cand) && !strcmp(other_input(im, parts[4], "Mul", cand), cand))
            x = cand;
    }
    return x;
}

/* After the Erf or Tanh node k: Add 1, then times x and 0.5 in either order.
 * The node that computes the result, or -1; tail[] gets the others. */
static int gelu_tail(importer *im, graph_maps *gm, int k, const char *x, int *tail) {
    const char *one, *a;
    int add = only_consumer(im, gm, imp_output(im, k, 0)), last;
    one = other_input(im, add, "Add", imp_output(im, k, 0));
    if (!one || !near(scalar_of(im, one), 1)) return -1;
    int m1 = only_consumer(im, gm, imp_output(im, add, 0)), h = -1;
    if (!(a = other_input(im, m1, "Mul", imp_output(im, add, 0)))) return -1;
    if (!strcmp(a, x)) { /* (x * (1 + erf)) * 0.5 */
        last = only_consumer(im, gm, imp_output(im, m1, 0));
        const char *half = other_input(im, last, "Mul", imp_output(im, m1, 0));
        if (!half || !near(scalar_of(im, half), 0.5)) return -1;
    } else { /* (x * 0.5) * (1 + erf) */
        h = producer(gm, a);
        const char *half = other_input(im, h, "Mul", x);
        if (map_get(&gm->uses, a, 0) != 1 || !half || !near(scalar_of(im, half), 0.5))
            return -1;
        last = m1;
    }
    tail[0] = add, tail[1] = m1, tail[2] = h;
    return last;
}

/* 0.5 x (1 + erf(x / sqrt 2)) around Erf node e, or the tanh form around
 * Tanh node e: the node that computes it becomes gelu, the others are left
 * out. */
static void match_gelu(importer *im, graph_maps *gm, int e, int tanh_form) {
    int parts[9] = {-1, -1, -1, -1, -1, -1, -1, -1, -1};
    const char *x = tanh_form ? gelu_tanh_input(im, gm, e, parts)
                              : gelu_input(im, gm, e, &parts[0]);
    int last = x ? gelu_tail(im, gm, e, x, parts + 5) : -1;
    if (last < 0) return;
    for (int k = 0; k < 8; k++)
        if (parts[k] >= 0 && parts[k] != last) im->fused[parts[k]] = FUSE_SKIP;
    im->fused[e] = FUSE_SKIP;
    im->fused[last] = tanh_form ? FUSE_GELU_TANH : FUSE_GELU;
    im->fused_x[last] = x;
}

/* x * sigmoid(x) is silu. */
static void match_silu(importer *im, graph_maps *gm, int s) {
    const char *x = node_at(im, s)->input[0];
    int m = only_consumer(im, gm, imp_output(im, s, 0));
    const char *other = x ? other_input(im, m, "Mul", imp_output(im, s, 0)) : NULL;
    if (!other || strcmp(other, x)) return;
    im->fused[s] = FUSE_SKIP;
    im->fused[m] = FUSE_SILU;
    im->fused_x[m] = x;
}

/* Where(x > threshold, x, Softplus(x)), PyTorch 2's export of softplus
 * (beta 1): the Where becomes softplus, the Greater and Softplus are left out. */
static void match_softplus(importer *im, graph_maps *gm, int s) {
    const char *x = imp_input_name(node_at(im, s), 0), *y = imp_output(im, s, 0);
    int w = only_consumer(im, gm, y);
    const Onnx__NodeProto *wn = is_op(im, w, "Where") ? node_at(im, w) : NULL;
    if (!x || !wn || wn->n_input != 3 || !wn->input[1] || strcmp(wn->input[1], x) ||
        !wn->input[2] || strcmp(wn->input[2], y))
        return;
    int g = only_consumer(im, gm, wn->input[0]) == w ? producer(gm, wn->input[0]) : -1;
    const Onnx__NodeProto *gn = is_op(im, g, "Greater") ? node_at(im, g) : NULL;
    if (!gn || gn->n_input != 2 || !gn->input[0] || strcmp(gn->input[0], x)) return;
    im->fused[s] = im->fused[g] = FUSE_SKIP;
    im->fused[w] = FUSE_SOFTPLUS;
    im->fused_x[w] = x;
    im->fused_b[w] = gn->input[1];
}

/* MatMul by a constant [K, N] and Add of a constant bias [N]: one dense
 * layer.  The bias must be known when the MatMul is translated. */
static void match_dense(importer *im, graph_maps *gm, int k) {
    const Onnx__NodeProto *nd = node_at(im, k);
    if (nd->n_input != 2 || !nd->input[1]) return;
    imp_value *w = imp_find(im, nd->input[1]);
    int add = only_consumer(im, gm, imp_output(im, k, 0));
    const char *b = other_input(im, add, "Add", imp_output(im, k, 0));
    imp_value *bv = b ? imp_find(im, b) : NULL;
    if (!w || !w->c || w->c->ndim != 2 || !bv || !bv->c || bv->c->is_int ||
        (int)bv->c->count != w->c->dims[1] || bv->c->ndim < 1 ||
        bv->c->dims[bv->c->ndim - 1] != w->c->dims[1])
        return;
    im->fused[add] = FUSE_SKIP;
    im->fused[k] = FUSE_DENSE;
    im->fused_x[k] = imp_output(im, add, 0);
    im->fused_b[k] = b;
}

static void find_patterns(importer *im, graph_maps *gm) {
    for (size_t k = 0; k < im->gp->n_node; k++) {
        if (!im->needed[k] || im->fused[k] || node_at(im, (int)k)->n_output < 1 ||
            node_at(im, (int)k)->n_input < 1)
            continue;
        if (is_op(im, (int)k, "Erf")) match_gelu(im, gm, (int)k, 0);
        else if (is_op(im, (int)k, "Tanh")) match_gelu(im, gm, (int)k, 1);
        else if (is_op(im, (int)k, "Sigmoid")) match_silu(im, gm, (int)k);
        else if (is_op(im, (int)k, "Softplus")) match_softplus(im, gm, (int)k);
        else if (is_op(im, (int)k, "MatMul")) match_dense(im, gm, (int)k);
        else if (is_op(im, (int)k, "RNN") || is_op(im, (int)k, "LSTM") ||
                 is_op(im, (int)k, "GRU"))
            imp_match_recurrent(im, (int)k);
        else if (is_op(im, (int)k, "Reshape")) imp_match_attention(im, (int)k);
    }
}

/* ------------------------------------------------------------ translation */

/* The graph's one input that is not an initializer: the input line. */
static nb_status graph_input(importer *im) {
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t k = 0; k < im->gp->n_input; k++) {
        const Onnx__ValueInfoProto *vi = im->gp->input[k];
        imp_value *v = imp_find(im, vi->name);
        if (v && v->c) continue; /* an initializer listed as an input (IR < 4) */
        if (in) return imp_fail(im, NULL, "graph inputs '%s' and '%s': a nabla model has one",
                                imp_q(im, in->name), imp_q(im, vi->name));
        in = vi;
    }
    if (!in) return imp_fail(im, NULL, "the graph has no input");
    const char *name = imp_q(im, in->name);
    const Onnx__TypeProto__Tensor *tt = in->type && in->type->value_case ==
        ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ? in->type->tensor_type : NULL;
    int tokens = tt && tt->has_elem_type && tt->elem_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    if (!tokens && (!tt || !tt->has_elem_type || tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT))
        return imp_fail(im, NULL, "input '%s' is neither a float32 tensor nor int64 token ids",
                        name);
    nb_status s = tokens ? imp_token_vocab(im, imp_str(in->name), &im->vocab) : NB_OK;
    if (s != NB_OK) return s;
    const Onnx__TensorShapeProto *sh = tt->shape;
    if (!sh || sh->n_dim < 2 || sh->n_dim > NB_MAX_DIMS)
        return imp_fail(im, NULL, "input '%s' has %zu dimensions; nabla needs a batch "
                        "dimension and 1 to %d more", name, sh ? sh->n_dim : 0, NB_MAX_DIMS - 1);
    int dims[NB_MAX_DIMS], n = (int)sh->n_dim - 1;
    char args[160] = "input";
    for (int k = 0; k < n; k++) {
        const Onnx__TensorShapeProto__Dimension *d = sh->dim[k + 1];
        if (d->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
            d->dim_value <= 0 || d->dim_value > IMP_MAX_DIM)
            return imp_fail(im, NULL, "input '%s': dimension %d must be a number from 1 to %d "
                            "(only the first, the batch, may be symbolic)", name, k + 1,
                            IMP_MAX_DIM);
        dims[k] = (int)d->dim_value;
        snprintf(args + strlen(args), sizeof args - strlen(args), " %d", dims[k]);
    }
    if (tokens && n != 1)
        return imp_fail(im, NULL, "input '%s': token ids must be [batch, positions]", name);
    if (tokens) snprintf(args + strlen(args), sizeof args - strlen(args), " tokens=%d", im->vocab);
    const Onnx__TensorShapeProto__Dimension *b = sh->dim[0];
    if (b->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
        im->batch = b->dim_value;
    return imp_add_line(im, NULL, "input", NULL, in->name, n, dims, "%s", args) ? NB_OK : im->err;
}

static nb_status initializers(importer *im) {
    if (im->gp->n_initializer > IMP_MAX_NODES)
        return imp_fail(im, NULL, "%zu initializers (at most %d)", im->gp->n_initializer,
                        IMP_MAX_NODES);
    for (size_t k = 0; k < im->gp->n_initializer; k++) {
        const Onnx__TensorProto *t = im->gp->initializer[k];
        char what[128], q[96];
        snprintf(what, sizeof what, "initializer '%s'",
                 nb__quote(q, sizeof q, imp_str(t->name), strlen(imp_str(t->name)), 60));
        if (imp_find(im, t->name)) return imp_fail(im, NULL, "%s is defined twice", what);
        imp_value *v = imp_define(im, NULL, t->name);
        if (!v) return im->err;
        nb_status s = imp_const_from_tensor(im, t, what, &v->c);
        if (s != NB_OK) return s;
    }
    return NB_OK;
}

/* Every input of node k is defined by now, else why not. */
static nb_status inputs_defined(importer *im, graph_maps *gm, int k) {
    const Onnx__NodeProto *nd = node_at(im, k);
    int fused = im->fused[k] == FUSE_GELU || im->fused[k] == FUSE_GELU_TANH ||
                im->fused[k] == FUSE_SILU || im->fused[k] == FUSE_RECURRENT ||
                im->fused[k] == FUSE_ATTENTION || im->fused[k] == FUSE_SOFTPLUS;
    for (size_t i = 0; i < (fused ? 1 : nd->n_input); i++) {
        const char *in = fused ? im->fused_x[k] : nd->input[i];
        if (!in || !in[0] || imp_find(im, in)) continue;
        char q[96];
        nb__quote(q, sizeof q, in, strlen(in), 60);
        int p = producer(gm, in);
        if (p >= k)
            return imp_fail(im, nd, "input '%s' is computed by node '%s', which comes after it "
                            "(a cycle, or nodes out of order)", q, imp_q(im, node_at(im, p)->name));
        if (p < 0)
            return imp_fail(im, nd, "input '%s' is not a graph input, an initializer or the "
                            "output of a node (a missing initializer?)", q);
        return imp_fail(im, nd, "input '%s' is not available", q);
    }
    return NB_OK;
}

static nb_status translate(importer *im, graph_maps *gm) {
    nb_status s = graph_input(im);
    for (int k = 0; s == NB_OK && k < (int)im->gp->n_node; k++) {
        if (!im->needed[k] || im->fused[k] == FUSE_SKIP) continue;
        if ((s = inputs_defined(im, gm, k)) == NB_OK) s = imp_node(im, k);
    }
    if (s != NB_OK) return s;
    imp_value *out = imp_find(im, im->output);
    int line = 0;
    if (!out || out->c || out->line < 1)
        return imp_fail(im, NULL, "the graph output '%s' is %s", imp_q(im, im->output),
                        !out ? "not computed by any node" : out->c ? "a constant"
                        : out->line == 0 ? "the input itself" : "not computed by nabla");
    if ((s = imp_materialize(im, NULL, out, &line)) != NB_OK) return s;
    if (line != im->n_lines - 1)
        return imp_fail(im, NULL, "the graph output '%s' is not the last value computed",
                        imp_q(im, im->output));
    im->out = out;
    return NB_OK;
}

/* cross_entropy (given, or chosen for a [batch, C] output) without a final
 * Softmax, which the loss and nabla predict apply. */
static nb_status choose_loss(importer *im) {
    const imp_value *out = im->out;
    /* a token model's [batch, positions, classes]: a class per position */
    int per_position = im->vocab && out->ndim == 2;
    if (!im->loss)
        im->loss = (out->ndim == 1 || per_position) && out->dims[out->ndim - 1] >= 2
                       ? "cross_entropy" : "none";
    if (strcmp(im->loss, "cross_entropy")) return NB_OK;
    if (out->ndim != 1 && !per_position)
        return imp_fail(im, NULL, "loss cross_entropy needs a [batch, classes] output (or "
                        "[batch, positions, classes] from token ids); the graph output '%s' "
                        "has %d dimensions", imp_q(im, out->name), out->ndim + 1);
    imp_line *last = &im->lines[im->n_lines - 1];
    if (!strcmp(last->keyword, "softmax") && last->in[0] == im->n_lines - 2) im->n_lines--;
    return NB_OK;
}

/* ------------------------------------------------------------ names and text */

/* A label from hint: letters, digits and _, not starting with a digit, not
 * taken; base_2, base_3, ... after base (next: where to go on for a base). */
static const char *pick_label(importer *im, strmap *taken, strmap *next, const char *hint,
                              char *buf, size_t size) {
    char base[40];
    size_t n = 0;
    if (hint && hint[0] >= '0' && hint[0] <= '9') base[n++] = 'l';
    for (const char *p = hint; p && *p && n < 30; p++)
        base[n++] = (char)(((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                            (*p >= '0' && *p <= '9')) ? *p : '_');
    base[n] = '\0';
    int k = map_get(next, base, 2);
    snprintf(buf, size, "%s", base);
    while (map_get(taken, buf, 0) || !strcmp(buf, "target") || !strcmp(buf, "loss") ||
           !strcmp(buf, "input"))
        snprintf(buf, size, "%s_%d", base, k++);
    const char *key = imp_strf(im, "%s", base);
    int *slot = key ? map_slot(next, key, 1) : NULL;
    if (slot) *slot = k;
    return buf;
}

/* A line is unnamed when only the next one reads it, as its first input; a
 * layer with parameters then takes its index (PyTorch's Sequential names). */
static nb_status name_lines(importer *im) {
    unsigned char *ref = calloc((size_t)im->n_lines, 1);
    strmap taken = {0}, next = {0};
    if (!ref) return imp_oom(im);
    for (int j = 1; j < im->n_lines; j++)
        for (int i = 0; i < im->lines[j].n_in; i++)
            if (i > 0 || im->lines[j].in[0] != j - 1) ref[im->lines[j].in[i]] = 1;
    nb_status s = NB_OK;
    if (ref[0]) snprintf(im->lines[0].label, sizeof im->lines[0].label, "input");
    for (int j = 1; j < im->n_lines && s == NB_OK; j++) {
        imp_line *l = &im->lines[j];
        char index[16];
        snprintf(index, sizeof index, "%d", j - 1);
        int by_index = !ref[j] && (!l->hint || !strcmp(l->hint, index));
        if ((l->n_params && by_index) || (!l->n_params && !ref[j])) continue;
        pick_label(im, &taken, &next, l->hint ? l->hint : l->keyword, l->label, sizeof l->label);
        int *slot = map_slot(&taken, l->label, 1);
        if (!slot) s = imp_oom(im);
        else *slot = 1;
    }
    free(ref);
    map_free(&taken);
    map_free(&next);
    return s;
}

typedef struct textbuf {
    char *s;
    size_t len, cap;
    int oom;
} textbuf;

static void put(textbuf *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void put(textbuf *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || t->oom) return;
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = (t->len + (size_t)n + 1) * 2;
        char *p = realloc(t->s, cap);
        if (!p) {
            t->oom = 1;
            return;
        }
        t->s = p, t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* Printable ASCII for a comment (a name may hold anything). */
static const char *comment_text(char *buf, size_t size, const char *s) {
    size_t n = 0;
    for (; *s && n + 1 < size; s++) buf[n++] = *s >= 32 && *s < 127 ? *s : '?';
    buf[n] = '\0';
    return buf;
}

static void put_line(textbuf *t, const importer *im, int j) {
    const imp_line *l = &im->lines[j];
    if (l->label[0]) put(t, "%s = ", l->label);
    put(t, "%s", l->args);
    for (int i = 0; i < l->n_in; i++)
        if (i > 0 || l->in[0] != j - 1) put(t, " @%s", im->lines[l->in[i]].label);
    if (l->concat && l->in[0] != j - 1) put(t, " previous=false");
    char c[96];
    if (l->node && l->node[0]) put(t, "  # %s", comment_text(c, sizeof c, l->node));
    put(t, "\n");
}

static char *model_text(importer *im) {
    textbuf t = {0};
    char c[96];
    put(&t, "# Imported from %s (ONNX opset %d", comment_text(c, sizeof c, im->label), im->opset);
    if (im->m->producer_name && im->m->producer_name[0])
        put(&t, ", made by %s", comment_text(c, sizeof c, im->m->producer_name));
    put(&t, ")\n");
    for (int j = 0; j < im->n_lines; j++) put_line(&t, im, j);
    if (strcmp(im->loss, "none")) put(&t, "loss %s\n", im->loss);
    if (t.oom) free(t.s);
    return t.oom ? NULL : t.s;
}

/* ------------------------------------------------------------ weights */

static nb_status set_param(importer *im, nb_graph *g, const char *name, const imp_param *p,
                           unsigned char *done) {
    nb_node h = nb_find(g, name);
    int ndim, dims[NB_MAX_DIMS];
    nb_real *v = h == NB_NONE ? NULL : nb_value(g, h);
    if (!v || nb_node_shape(g, h, &ndim, dims) != NB_OK)
        return imp_fail(im, NULL, "no parameter '%s' in the model made from it", name);
    size_t count = nb_node_numel(g, h);
    if (p->c && p->c->count != count)
        return imp_fail(im, NULL, "parameter '%s' has %zu elements, its initializer %zu", name,
                        count, p->c->count);
    for (size_t k = 0; k < count; k++) {
        size_t from = k;
        if (p->transpose) /* [in, out] to nabla's [out, in] */
            from = (k % (size_t)dims[1]) * (size_t)dims[0] + k / (size_t)dims[1];
        v[k] = p->c ? (nb_real)p->c->f[from] : (nb_real)p->fill;
    }
    done[h] = 1;
    return NB_OK;
}

/* Every parameter and running statistic from its constant. */
static nb_status load_weights(importer *im, nb_graph *g) {
    nb_rng r;
    nb_rng_seed(&r, 0);
    nb_status s = nb_graph_init(g, &r);
    unsigned char *done = calloc((size_t)g->n_nodes, 1);
    if (s != NB_OK || !done) return free(done), s != NB_OK ? s : imp_oom(im);
    for (int j = 1; j < im->n_lines && s == NB_OK; j++) {
        const imp_line *l = &im->lines[j];
        for (int k = 0; k < l->n_params && s == NB_OK; k++) {
            char name[96];
            if (l->label[0]) snprintf(name, sizeof name, "%s.%s", l->label, l->params[k].suffix);
            else snprintf(name, sizeof name, "%d.%s", j - 1, l->params[k].suffix);
            s = set_param(im, g, name, &l->params[k], done);
        }
    }
    for (int i = 0; s == NB_OK && i < nb_param_tensor_count(g); i++)
        if (!done[nb_param_tensor(g, i)])
            s = imp_fail(im, NULL, "parameter '%s' has no initializer",
                         nb_node_name(g, nb_param_tensor(g, i)));
    free(done);
    return s;
}

/* ------------------------------------------------------------ the model */

static nb_status check_model(importer *im) {
    const Onnx__ModelProto *m = im->m;
    for (size_t k = 0; k < m->n_opset_import; k++) {
        const char *d = imp_str(m->opset_import[k]->domain);
        if (!d[0] || !strcmp(d, "ai.onnx")) im->opset = (int)m->opset_import[k]->version;
    }
    if (!im->opset)
        return imp_fail(im, NULL, "no opset of the default domain (not an ONNX model?)");
    if (im->opset < IMP_MIN_OPSET || im->opset > IMP_MAX_OPSET)
        return imp_fail(im, NULL, "opset %d of the default domain; nabla imports opsets %d to %d",
                        im->opset, IMP_MIN_OPSET, IMP_MAX_OPSET);
    if (!m->graph) return imp_fail(im, NULL, "the model has no graph");
    im->gp = m->graph;
    if (im->gp->n_node > IMP_MAX_NODES)
        return imp_fail(im, NULL, "%zu nodes (at most %d)", im->gp->n_node, IMP_MAX_NODES);
    if (im->gp->n_output != 1)
        return imp_fail(im, NULL, "the graph has %zu outputs; a nabla model has one",
                        im->gp->n_output);
    im->output = imp_str(im->gp->output[0]->name);
    size_t n = im->gp->n_node ? im->gp->n_node : 1;
    im->needed = calloc(n, 1);
    im->fused = calloc(n, sizeof *im->fused);
    im->fused_x = calloc(n, sizeof *im->fused_x);
    im->fused_b = calloc(n, sizeof *im->fused_b);
    im->fused_n = calloc(n, sizeof *im->fused_n);
    im->fused_i = calloc(n, sizeof *im->fused_i);
    return im->needed && im->fused && im->fused_x && im->fused_b && im->fused_n && im->fused_i
               ? NB_OK : imp_oom(im);
}

static nb_status import_graph(importer *im, nb_model *m) {
    graph_maps gm = {{0}, {0}, {0}};
    im->gm = &gm;
    nb_status s = check_model(im);
    if (s == NB_OK) s = initializers(im);
    if (s == NB_OK) s = find_producers(im, &gm);
    if (s == NB_OK) s = mark_needed(im, &gm);
    if (s == NB_OK) find_patterns(im, &gm);
    if (s == NB_OK) s = translate(im, &gm);
    map_free(&gm.producer);
    map_free(&gm.uses);
    map_free(&gm.consumer);
    im->gm = NULL;
    if (s == NB_OK) s = choose_loss(im);
    if (s == NB_OK) s = name_lines(im);
    char *text = s == NB_OK ? model_text(im) : NULL;
    if (s == NB_OK && !text) s = imp_oom(im);
    char source[300];
    snprintf(source, sizeof source, "%s (as model text)", im->label);
    if (s == NB_OK && (s = nb_model_parse(text, source, m)) != NB_OK)
        s = nb_err_prefix(s, "%s: the model made from it does not build", im->label);
    else if (s == NB_OK && (s = load_weights(im, m->graph)) != NB_OK)
        nb_model_free(m);
    free(text);
    return s;
}

static nb_status copy_meta(importer *im, nb_kv **meta, int *n_meta) {
    size_t n = im->m->n_metadata_props;
    nb_kv *kv = calloc(n ? n : 1, sizeof *kv);
    if (!kv) return imp_oom(im);
    for (size_t k = 0; k < n; k++) {
        const Onnx__StringStringEntryProto *p = im->m->metadata_props[k];
        kv[k].key = strdup(imp_str(p->key));
        kv[k].value = strdup(imp_str(p->value));
        if (!kv[k].key || !kv[k].value) return nb_kv_free(kv, (int)k + 1), imp_oom(im);
    }
    *meta = kv;
    *n_meta = (int)n;
    return NB_OK;
}

static void importer_free(importer *im) {
    for (int k = 0; k < im->n_consts; k++) free(im->consts[k]->f), free(im->consts[k]->i),
                                           free(im->consts[k]);
    for (int k = 0; k < im->n_strs; k++) free(im->strs[k]);
    free(im->consts), free(im->strs), free(im->vals), free(im->slots), free(im->lines);
    free(im->needed), free(im->fused), free(im->fused_x), free(im->fused_b);
    free(im->fused_n), free(im->fused_i);
    if (im->m) onnx__model_proto__free_unpacked(im->m, NULL);
}

/* protobuf-c unpacks nested messages recursively, so a file that nests them
 * deeper than any ONNX model could overflow the stack: the nesting is
 * measured first, with the schema's descriptors, to at most MAX_DEPTH.  A
 * malformed encoding passes here and fails to unpack. */
enum { MAX_DEPTH = 64 };

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    *v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 1;
    }
    return 0;
}

static int nesting_ok(const uint8_t *p, const uint8_t *end, const ProtobufCMessageDescriptor *d,
                      int depth) {
    if (depth > MAX_DEPTH) return 0;
    uint64_t key, len;
    while (p < end && read_varint(&p, end, &key)) {
        int wire = (int)(key & 7);
        if (wire == 0 && !read_varint(&p, end, &len)) return 1;
        if ((wire == 1 && end - p < 8) || (wire == 5 && end - p < 4)) return 1;
        if (wire == 1 || wire == 5) p += wire == 1 ? 8 : 4;
        if (wire == 2) {
            if (!read_varint(&p, end, &len) || len > (uint64_t)(end - p)) return 1;
            const ProtobufCFieldDescriptor *f =
                key >> 3 <= 0xffffffffu ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3)) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                !nesting_ok(p, p + len, f->descriptor, depth + 1))
                return 0;
            p += len;
        }
        if (wire != 0 && wire != 1 && wire != 2 && wire != 5) return 1;
    }
    return 1;
}

/* The model message of bytes, its nesting checked first, in im->m. */
static nb_status unpack(importer *im, const void *bytes, size_t size) {
    if (size && !nesting_ok(bytes, (const uint8_t *)bytes + size,
                            &onnx__model_proto__descriptor, 0))
        return nb_err(NB_ERR_FORMAT, "%s: not an ONNX model: messages nested more than %d deep",
                      im->label, MAX_DEPTH);
    im->m = onnx__model_proto__unpack(NULL, size, bytes);
    return im->m ? NB_OK
                 : nb_err(NB_ERR_FORMAT, "%s: not an ONNX model: the protobuf message does not "
                          "decode (truncated or corrupt)", im->label);
}

/* The file in memory; dir is the directory of its external data (NULL: none). */
static nb_status import_bytes(const void *bytes, size_t size, const char *label, const char *dir,
                              const char *loss, nb_model *m, nb_kv **meta, int *n_meta) {
    if (!m || (!bytes && size)) return nb_err(NB_ERR_ARG, "nb_model_from_onnx: %s is NULL",
                                              m ? "bytes" : "model");
    memset(m, 0, sizeof *m);
    m->input = m->output = m->target = m->loss = NB_NONE;
    if (meta) *meta = NULL;
    if (n_meta) *n_meta = 0;
    if (loss && strcmp(loss, "cross_entropy") && strcmp(loss, "mse") && strcmp(loss, "bce") &&
        strcmp(loss, "none"))
        return nb_err(NB_ERR_ARG, "nb_model_from_onnx: unknown loss '%s' (cross_entropy, mse, "
                      "bce or none)", loss);
    importer im = {.label = label ? label : "<onnx>", .dir = dir, .loss = loss};
    nb_status s = unpack(&im, bytes, size);
    if (s == NB_OK) s = import_graph(&im, m);
    if (s == NB_OK && meta && n_meta && (s = copy_meta(&im, meta, n_meta)) != NB_OK)
        nb_model_free(m);
    importer_free(&im);
    return s;
}

/* The file at path and its directory, both to free. */
static nb_status read_model(const char *path, char **buf, size_t *len, char **dir) {
    const char *slash = strrchr(path, '/');
    *buf = NULL;
    *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    if (!*dir) return nb_err(NB_ERR_NOMEM, "%s: out of memory", path);
    nb_status s = nb__read_file(path, MAX_FILE, buf, len);
    if (s != NB_OK) free(*dir), *dir = NULL;
    return s;
}

nb_status nb_model_from_onnx(const char *path, const char *loss, nb_model *m, nb_kv **meta,
                             int *n_meta) {
    if (!path) return nb_err(NB_ERR_ARG, "nb_model_from_onnx: path is NULL");
    char *buf, *dir;
    size_t len = 0;
    nb_status s = read_model(path, &buf, &len, &dir);
    if (s == NB_OK) s = import_bytes(buf, len, path, dir, loss, m, meta, n_meta);
    free(buf);
    free(dir);
    return s;
}

nb_status nb_onnx_external_data(const char *path, nb_kv **files, int *n) {
    if (!path || !files || !n) return nb_err(NB_ERR_ARG, "nb_onnx_external_data: NULL argument");
    *files = NULL, *n = 0;
    char *buf, *dir;
    size_t len = 0;
    nb_status s = read_model(path, &buf, &len, &dir);
    importer im = {.label = path, .dir = dir};
    if (s == NB_OK) s = unpack(&im, buf, len);
    if (s == NB_OK) s = imp_external_files(&im, files, n);
    importer_free(&im);
    free(buf);
    free(dir);
    return s;
}

nb_status nb_model_from_onnx_bytes(const void *bytes, size_t size, const char *label,
                                   const char *loss, nb_model *m, nb_kv **meta, int *n_meta) {
    return import_bytes(bytes, size, label, NULL, loss, m, meta, n_meta);
}

#endif
