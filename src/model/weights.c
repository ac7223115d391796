/* Graph weights as safetensors: every parameter and buffer under its node
 * name, so a graph built with PyTorch's state_dict names ("0.weight",
 * "1.running_mean", ...) exchanges weights with PyTorch directly.  Counting
 * buffers (num_batches_tracked) are I64 scalars, as PyTorch stores them.
 * Loading checks the whole file against the graph into a staging copy
 * first: the graph changes only when everything fits. */
#define _POSIX_C_SOURCE 200809L
#include "../formats/st_internal.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ element codecs */

static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* IEEE half to float, exactly (every half is a float). */
static float f16_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
    if (exp == 0) { /* zero or subnormal: mant * 2^-24 */
        float v = ldexpf((float)mant, -24);
        return sign ? -v : v;
    }
    if (exp == 31) return f32_from_bits(sign | 0x7F800000u | mant << 13); /* inf, NaN */
    return f32_from_bits(sign | (exp + 112) << 23 | mant << 13);
}

nb_real nb__st_get_real(const nb_st_tensor *t, size_t k, int *ok) {
    const unsigned char *p = t->data;
    *ok = 1;
    switch (t->dtype) {
    case NB_ST_F32: return (nb_real)f32_from_bits(get_u32(p + 4 * k));
    case NB_ST_F16: return (nb_real)f16_to_float((uint16_t)(p[2 * k] | p[2 * k + 1] << 8));
    case NB_ST_BF16:
        return (nb_real)f32_from_bits((uint32_t)(p[2 * k] | p[2 * k + 1] << 8) << 16);
    case NB_ST_F64: {
        uint64_t u = get_u64(p + 8 * k);
        double d;
        memcpy(&d, &u, sizeof d);
        nb_real r = (nb_real)d;
        if (isfinite(d) && !isfinite(r)) *ok = 0;
        return r;
    }
    default: *ok = 0; return 0;
    }
}

void nb__st_put_real(unsigned char *p, nb_st_dtype dtype, nb_real v) {
    if (dtype == NB_ST_F64) {
        double d = (double)v;
        uint64_t u;
        memcpy(&u, &d, sizeof u);
        for (int b = 0; b < 8; b++) p[b] = (unsigned char)(u >> (8 * b));
    } else {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        for (int b = 0; b < 4; b++) p[b] = (unsigned char)(u >> (8 * b));
    }
}

/* ------------------------------------------------------------ save */

static void put_i64(unsigned char *p, int64_t v) {
    uint64_t u = (uint64_t)v;
    for (int b = 0; b < 8; b++) p[b] = (unsigned char)(u >> (8 * b));
}

/* A count as an integer; values set by hand that are no count (negative,
 * NaN, huge) are clamped rather than overflowing the conversion. */
static int64_t counter_value(nb_real v) {
    if (!(v > 0)) return 0;
    if ((double)v >= 9223372036854775807.0) return INT64_MAX;
    return (int64_t)v;
}

nb_status nb__state_entries(const nb_graph *g, nb_st_dtype dtype, nb_st_entry **entries,
                            unsigned char **bytes, int *count) {
    *entries = NULL;
    *bytes = NULL;
    *count = 0;
    size_t esize = dtype == NB_ST_F64 ? 8 : 4;
    int n = g->n_param_nodes + g->n_buffer_nodes;
    size_t nbytes = g->n_params * esize;
    for (int i = 0; i < g->n_buffer_nodes; i++) {
        const nb_node_t *t = &g->nodes[g->buffer_nodes[i]];
        nbytes += nb__numel(t) * (t->is_counter ? 8 : esize);
    }
    nb_st_entry *e = malloc((n ? (size_t)n : 1) * sizeof *e);
    unsigned char *b = malloc(nbytes ? nbytes : 1);
    if (!e || !b) {
        free(e);
        free(b);
        return nb_err(NB_ERR_NOMEM, "out of memory for %zu parameters", g->n_params);
    }
    for (int i = 0; i < g->n_param_nodes; i++) {
        const nb_node_t *p = &g->nodes[g->param_nodes[i]];
        size_t numel = nb__numel(p);
        for (size_t k = 0; k < numel; k++)
            nb__st_put_real(b + (p->val_off + k) * esize, dtype, g->params[p->val_off + k]);
        e[i] = (nb_st_entry){p->name, dtype, p->ndim, p->dims, b + p->val_off * esize};
    }
    /* buffers follow the parameters in the byte array */
    unsigned char *at = b + g->n_params * esize;
    for (int i = 0; i < g->n_buffer_nodes; i++) {
        const nb_node_t *t = &g->nodes[g->buffer_nodes[i]];
        size_t numel = nb__numel(t);
        nb_st_dtype dt = t->is_counter ? NB_ST_I64 : dtype;
        e[g->n_param_nodes + i] = (nb_st_entry){t->name, dt, t->ndim, t->dims, at};
        for (size_t k = 0; k < numel; k++) {
            if (t->is_counter) {
                put_i64(at, counter_value(t->val[k]));
                at += 8;
            } else {
                nb__st_put_real(at, dtype, t->val[k]);
                at += esize;
            }
        }
    }
    *entries = e;
    *bytes = b;
    *count = n;
    return NB_OK;
}

nb_status nb_save_weights(const nb_graph *g, const char *path, const nb_kv *meta, int n_meta) {
    if (!g || !path)
        return nb_err(NB_ERR_ARG, "nb_save_weights: %s is NULL", g ? "path" : "graph");
    if (g->status != NB_OK)
        return nb_err(NB_ERR_STATE, "%s: the graph has a build error; not saving", path);
    nb_st_entry *e;
    unsigned char *b;
    int n;
    nb_status s = nb__state_entries(g, NB_ST_F32, &e, &b, &n);
    if (s != NB_OK) return nb_err_prefix(s, "%s", path);
    s = nb_st_write(path, e, n, meta, n_meta);
    free(e);
    free(b);
    return s;
}

/* ------------------------------------------------------------ load */

/* Element k of an integer tensor (I64, I32) as a count; *ok = 0 if negative. */
static nb_real get_count(const nb_st_tensor *t, size_t k, int *ok) {
    const unsigned char *p = t->data;
    int64_t v;
    if (t->dtype == NB_ST_I64) v = (int64_t)get_u64(p + 8 * k);
    else v = (int32_t)get_u32(p + 4 * k);
    *ok = v >= 0;
    return (nb_real)v;
}

static int is_float_dtype(nb_st_dtype t) {
    return t == NB_ST_F32 || t == NB_ST_F64 || t == NB_ST_F16 || t == NB_ST_BF16;
}

/* Check tensor `name` of st against node p and convert its values into
 * dst[0 .. numel).  kind names p in messages ("parameter", "buffer"). */
static nb_status stage_one(const nb_safetensors *st, const char *label, const nb_node_t *p,
                           const char *kind, nb_real *dst) {
    char nm[100], want[128], got[128];
    nb_shape_str(want, sizeof want, p->ndim, p->dims);
    int i = nb_st_find(st, p->name);
    if (i < 0)
        return nb_err(NB_ERR_FORMAT, "%s: %s '%s' %s is missing from the file", label, kind,
                      nb__st_show(nm, p->name), want);
    nb_st_tensor t;
    nb_st_tensor_at(st, i, &t);
    if (t.ndim != p->ndim || memcmp(t.dims, p->dims, sizeof(int) * (size_t)p->ndim) != 0)
        return nb_err(NB_ERR_SHAPE, "%s: tensor '%s' has shape %s but the graph's %s is %s",
                      label, nb__st_show(nm, p->name),
                      nb_shape_str(got, sizeof got, t.ndim, t.dims), kind, want);
    int counter = p->leaf == NB_LEAF_BUFFER && p->is_counter;
    int integer = t.dtype == NB_ST_I64 || t.dtype == NB_ST_I32;
    if (!is_float_dtype(t.dtype) && !(counter && integer))
        return nb_err(NB_ERR_FORMAT, "%s: tensor '%s' has dtype %s; %ss need F32 (F64, F16 and "
                      "BF16 are converted%s)", label, nb__st_show(nm, p->name),
                      nb_st_dtype_name(t.dtype), kind,
                      counter ? "; this count may also be I64 or I32" : "");
    for (size_t e = 0; e < t.numel; e++) {
        int ok;
        dst[e] = integer ? get_count(&t, e, &ok) : nb__st_get_real(&t, e, &ok);
        if (!ok)
            return nb_err(NB_ERR_NUMERIC, "%s: tensor '%s' element %zu %s", label,
                          nb__st_show(nm, p->name), e,
                          integer ? "is a negative count" : "does not fit in the parameter type");
    }
    return NB_OK;
}

static size_t buffer_values(const nb_graph *g) {
    size_t total = 0;
    for (int k = 0; k < g->n_buffer_nodes; k++) total += nb__numel(&g->nodes[g->buffer_nodes[k]]);
    return total;
}

static int skipped(const char *name, const char *const *skip, int n_skip) {
    for (int k = 0; k < n_skip; k++)
        if (fnmatch(skip[k], name, 0) == 0) return 1;
    return 0;
}

/* Every tensor of st must be a parameter or a buffer of g, or allowed. */
static nb_status check_extra(const nb_safetensors *st, const char *label, const nb_graph *g,
                             const char *reserved_prefix, const char *const *skip, int n_skip) {
    char nm[100];
    for (int i = 0; i < nb_st_count(st); i++) {
        nb_st_tensor t;
        nb_st_tensor_at(st, i, &t);
        if (reserved_prefix && strncmp(t.name, reserved_prefix, strlen(reserved_prefix)) == 0)
            continue;
        if (skipped(t.name, skip, n_skip)) continue;
        nb_node h = nb_find(g, t.name);
        if (h == NB_NONE ||
            (g->nodes[h].leaf != NB_LEAF_PARAM && g->nodes[h].leaf != NB_LEAF_BUFFER))
            return nb_err(NB_ERR_FORMAT, "%s: tensor '%s' is not a parameter or buffer of the "
                          "graph%s", label, nb__st_show(nm, t.name),
                          reserved_prefix ? "" : " (NB_LOAD_ALLOW_EXTRA ignores such tensors)");
    }
    return NB_OK;
}

/* Node p's values from st, or its current ones if skipped. */
static nb_status stage_or_keep(const nb_safetensors *st, const char *label, const nb_node_t *p,
                               const char *kind, const char *const *skip, int n_skip,
                               nb_real *dst) {
    if (!skipped(p->name, skip, n_skip)) return stage_one(st, label, p, kind, dst);
    memcpy(dst, p->val, nb__numel(p) * sizeof *dst);
    return NB_OK;
}

nb_status nb__stage_params(const nb_safetensors *st, const char *label, const nb_graph *g,
                           int allow_extra, const char *reserved_prefix,
                           const char *const *skip, int n_skip, nb_real **staged,
                           nb_real **staged_buffers) {
    *staged = NULL;
    *staged_buffers = NULL;
    nb_status s = allow_extra ? NB_OK : check_extra(st, label, g, reserved_prefix, skip, n_skip);
    if (s != NB_OK) return s;
    size_t nbuf = buffer_values(g);
    nb_real *vals = malloc(g->n_params ? g->n_params * sizeof *vals : 1);
    nb_real *bvals = malloc(nbuf ? nbuf * sizeof *bvals : 1);
    if (!vals || !bvals) {
        free(vals);
        free(bvals);
        return nb_err(NB_ERR_NOMEM, "%s: out of memory", label);
    }
    for (int k = 0; k < g->n_param_nodes && s == NB_OK; k++) {
        const nb_node_t *p = &g->nodes[g->param_nodes[k]];
        s = stage_or_keep(st, label, p, "parameter", skip, n_skip, vals + p->val_off);
    }
    size_t off = 0;
    for (int k = 0; k < g->n_buffer_nodes && s == NB_OK; k++) {
        const nb_node_t *p = &g->nodes[g->buffer_nodes[k]];
        s = stage_or_keep(st, label, p, "buffer", skip, n_skip, bvals + off);
        off += nb__numel(p);
    }
    if (s != NB_OK) {
        free(vals);
        free(bvals);
        return s;
    }
    *staged = vals;
    *staged_buffers = bvals;
    return NB_OK;
}

void nb__apply_staged(nb_graph *g, const nb_real *params, const nb_real *buffers) {
    if (g->n_params) memcpy(g->params, params, g->n_params * sizeof *params);
    size_t off = 0;
    for (int k = 0; k < g->n_buffer_nodes; k++) {
        nb_node_t *p = &g->nodes[g->buffer_nodes[k]];
        memcpy(p->val, buffers + off, nb__numel(p) * sizeof *p->val);
        off += nb__numel(p);
    }
}

nb_status nb_load_weights_opts(nb_graph *g, const char *path, const nb_load_opts *opts) {
    const nb_load_opts none = {0, NULL, 0};
    if (!opts) opts = &none;
    if (!g || !path)
        return nb_err(NB_ERR_ARG, "nb_load_weights: %s is NULL", g ? "path" : "graph");
    if (g->status != NB_OK)
        return nb_err(NB_ERR_STATE, "%s: the graph has a build error; not loading", path);
    if (opts->flags & ~NB_LOAD_ALLOW_EXTRA)
        return nb_err(NB_ERR_ARG, "nb_load_weights: unknown flags 0x%x", (unsigned)opts->flags);
    if (opts->n_skip < 0 || (opts->n_skip > 0 && !opts->skip))
        return nb_err(NB_ERR_ARG, "nb_load_weights: %d skip patterns at NULL", opts->n_skip);
    for (int k = 0; k < opts->n_skip; k++)
        if (!opts->skip[k])
            return nb_err(NB_ERR_ARG, "nb_load_weights: skip pattern %d is NULL", k);
    nb_safetensors *st;
    nb_status s = nb_st_open(path, &st);
    if (s != NB_OK) return s;
    nb_real *vals, *bvals;
    s = nb__stage_params(st, path, g, opts->flags & NB_LOAD_ALLOW_EXTRA, NULL, opts->skip,
                         opts->n_skip, &vals, &bvals);
    nb_st_free(st);
    if (s != NB_OK) return s;
    nb__apply_staged(g, vals, bvals);
    free(vals);
    free(bvals);
    return NB_OK;
}

nb_status nb_load_weights(nb_graph *g, const char *path, int flags) {
    const nb_load_opts opts = {flags, NULL, 0};
    return nb_load_weights_opts(g, path, &opts);
}
