/* safetensors: the writer.  Tensors are written widest element first (so
 * data stays aligned), then by name; metadata sorted by key; the header is
 * padded with spaces to a multiple of 8 bytes, as the reference
 * implementation does.  nb_st_write replaces the file atomically. */
#include "atomic.h"
#include "st_internal.h"
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int utf8_valid(const char *s) { return nb__utf8_valid(s, strlen(s)); }

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* A JSON string literal (s is valid UTF-8: only '"', '\\' and control
 * characters need escapes). */
static void sb_json_string(sbuf *b, const char *s) {
    sb_add(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        sb_add(b, run, (size_t)(s - run));
        char esc[8];
        if (c == '"' || c == '\\') snprintf(esc, sizeof esc, "\\%c", c);
        else snprintf(esc, sizeof esc, "\\u%04x", c);
        sb_str(b, esc);
        run = s + 1;
    }
    sb_add(b, run, (size_t)(s - run));
    sb_add(b, "\"", 1);
}

static void sb_u64(sbuf *b, uint64_t v) {
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    sb_str(b, num);
}

/* What the writer knows about one tensor. */
typedef struct w_item {
    const nb_st_entry *e;
    uint64_t bytes;
} w_item;

static int cmp_w_item(const void *a, const void *b) {
    const w_item *x = a, *y = b;
    int bx = nb_st_dtype_bits(x->e->dtype), by = nb_st_dtype_bits(y->e->dtype);
    if (bx != by) return bx > by ? -1 : 1; /* widest first keeps data aligned */
    return strcmp(x->e->name, y->e->name);
}

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_kv(const void *a, const void *b) {
    return strcmp(((const nb_kv *)a)->key, ((const nb_kv *)b)->key);
}

/* A prepared file: the padded header (with its 8-byte length in front) and
 * the tensors in write order. */
typedef struct w_plan {
    sbuf head;
    w_item *items;
    int n;
    uint64_t data_bytes;
} w_plan;

static void plan_free(w_plan *p) {
    free(p->head.p);
    free(p->items);
}

/* One tensor to write: a usable name, dtype and shape, data present; its
 * size in *bytes. */
static nb_status check_tensor(const char *label, int i, const nb_st_entry *e, uint64_t *bytes) {
    char nm[100];
    if (!e->name || !e->name[0] || !utf8_valid(e->name) || strcmp(e->name, "__metadata__") == 0)
        return nb_err(NB_ERR_ARG, "%s: tensor %d: name '%s' is empty, not UTF-8 or reserved",
                      label, i, nb__st_show(nm, e->name));
    if (!nb_st_dtype_bits(e->dtype) || e->ndim < 0 || e->ndim > NB_MAX_DIMS ||
        (e->ndim > 0 && !e->dims))
        return nb_err(NB_ERR_ARG, "%s: tensor '%s': invalid dtype %d or %d dimensions", label,
                      nb__st_show(nm, e->name), (int)e->dtype, e->ndim);
    for (int d = 0; d < e->ndim; d++)
        if (e->dims[d] < 0)
            return nb_err(NB_ERR_ARG, "%s: tensor '%s': dimension %d is %d", label,
                          nb__st_show(nm, e->name), d, e->dims[d]);
    int ok;
    uint64_t numel = nb__st_shape_numel(e->ndim, e->dims, &ok);
    const char *why = "overflows 64 bits";
    if (!ok || !nb__st_tensor_bytes(numel, e->dtype, bytes, &why) || *bytes > SIZE_MAX)
        return nb_err(NB_ERR_ARG, "%s: tensor '%s': size %s", label, nb__st_show(nm, e->name),
                      why);
    if (*bytes && !e->data)
        return nb_err(NB_ERR_ARG, "%s: tensor '%s': data is NULL", label,
                      nb__st_show(nm, e->name));
    return NB_OK;
}

/* Check every tensor and put them in write order in plan->items. */
static nb_status plan_tensors(const char *label, const nb_st_entry *t, int n, w_plan *plan) {
    for (int i = 0; i < n; i++) {
        uint64_t bytes = 0;
        nb_status s = check_tensor(label, i, &t[i], &bytes);
        if (s != NB_OK) return s;
        if (plan->data_bytes > UINT64_MAX - bytes)
            return nb_err(NB_ERR_ARG, "%s: total size overflows", label);
        plan->data_bytes += bytes;
        plan->items[i] = (w_item){&t[i], bytes};
    }
    qsort(plan->items, (size_t)n, sizeof *plan->items, cmp_w_item);
    return NB_OK;
}

static nb_status check_unique_names(const char *label, const nb_st_entry *t, int n) {
    char nm[100];
    if (n < 2) return NB_OK;
    const char **names = malloc((size_t)n * sizeof *names);
    if (!names) return nb_err(NB_ERR_NOMEM, "%s: out of memory", label);
    for (int i = 0; i < n; i++) names[i] = t[i].name;
    qsort(names, (size_t)n, sizeof *names, cmp_cstr);
    nb_status s = NB_OK;
    for (int i = 1; i < n && s == NB_OK; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            s = nb_err(NB_ERR_ARG, "%s: two tensors are named '%s'", label,
                       nb__st_show(nm, names[i]));
    free(names);
    return s;
}

/* Check the metadata pairs and copy them into kv, sorted by key. */
static nb_status sort_metadata(const char *label, const nb_kv *meta, int n_meta, nb_kv *kv) {
    char nm[100];
    for (int i = 0; i < n_meta; i++) {
        kv[i] = meta[i];
        if (!kv[i].key || !kv[i].key[0] || !kv[i].value || !utf8_valid(kv[i].key) ||
            !utf8_valid(kv[i].value))
            return nb_err(NB_ERR_ARG, "%s: metadata pair %d ('%s'): key empty, or key or value "
                          "NULL or not UTF-8", label, i, nb__st_show(nm, kv[i].key));
    }
    qsort(kv, (size_t)n_meta, sizeof *kv, cmp_kv);
    for (int i = 1; i < n_meta; i++)
        if (strcmp(kv[i - 1].key, kv[i].key) == 0)
            return nb_err(NB_ERR_ARG, "%s: metadata key '%s' given twice", label,
                          nb__st_show(nm, kv[i].key));
    return NB_OK;
}

/* {"dtype":"F32","shape":[2,3],"data_offsets":[begin,end]} under its name. */
static void put_entry(sbuf *h, const nb_st_entry *e, uint64_t begin, uint64_t end) {
    sb_json_string(h, e->name);
    sb_str(h, ":{\"dtype\":\"");
    sb_str(h, nb_st_dtype_name(e->dtype));
    sb_str(h, "\",\"shape\":[");
    for (int d = 0; d < e->ndim; d++) {
        if (d) sb_str(h, ",");
        sb_u64(h, (uint64_t)e->dims[d]);
    }
    sb_str(h, "],\"data_offsets\":[");
    sb_u64(h, begin);
    sb_str(h, ",");
    sb_u64(h, end);
    sb_str(h, "]}");
}

/* The header after its 8-byte length: metadata first, then the tensors in
 * write order, padded with spaces so the data starts 8-byte aligned. */
static nb_status put_header(const char *label, w_plan *plan, int n, const nb_kv *kv,
                            int n_meta) {
    sbuf *h = &plan->head;
    sb_add(h, "\0\0\0\0\0\0\0\0", 8); /* length, filled in below */
    sb_str(h, "{");
    if (n_meta > 0) {
        sb_str(h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) sb_str(h, ",");
            sb_json_string(h, kv[i].key);
            sb_str(h, ":");
            sb_json_string(h, kv[i].value);
        }
        sb_str(h, "}");
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        if (i || n_meta > 0) sb_str(h, ",");
        put_entry(h, plan->items[i].e, off, off + plan->items[i].bytes);
        off += plan->items[i].bytes;
    }
    sb_str(h, "}");
    while (!h->oom && h->len % 8 != 0) sb_str(h, " ");
    if (h->oom) return nb_err(NB_ERR_NOMEM, "%s: out of memory for the header", label);
    uint64_t hlen = h->len - 8;
    if (hlen > NB_ST_MAX_HEADER)
        return nb_err(NB_ERR_ARG, "%s: header of %llu bytes exceeds the format's limit of %u",
                      label, (unsigned long long)hlen, NB_ST_MAX_HEADER);
    for (int k = 0; k < 8; k++) h->p[k] = (char)(hlen >> (8 * k) & 0xFF);
    return NB_OK;
}

static nb_status plan_file(const char *label, const nb_st_entry *t, int n, const nb_kv *meta,
                           int n_meta, w_plan *plan) {
    memset(plan, 0, sizeof *plan);
    if (n < 0 || n_meta < 0 || (n > 0 && !t) || (n_meta > 0 && !meta))
        return nb_err(NB_ERR_ARG, "%s: invalid tensor or metadata list (%d tensors, %d "
                      "metadata pairs)", label, n, n_meta);
    plan->items = malloc((n ? (size_t)n : 1) * sizeof *plan->items);
    nb_kv *kv = malloc((n_meta ? (size_t)n_meta : 1) * sizeof *kv);
    nb_status s = NB_OK;
    if (!plan->items || !kv) s = nb_err(NB_ERR_NOMEM, "%s: out of memory", label);
    if (s == NB_OK) s = plan_tensors(label, t, n, plan);
    if (s == NB_OK) s = check_unique_names(label, t, n);
    if (s == NB_OK) s = sort_metadata(label, meta, n_meta, kv);
    if (s == NB_OK) s = put_header(label, plan, n, kv, n_meta);
    if (s == NB_OK) plan->n = n;
    else plan_free(plan);
    free(kv);
    return s;
}

nb_status nb__st_serialize(const nb_st_entry *tensors, int n, const nb_kv *meta, int n_meta,
                           unsigned char **out, size_t *out_len) {
    if (!out || !out_len) return nb_err(NB_ERR_ARG, "nb__st_serialize: NULL output");
    *out = NULL;
    *out_len = 0;
    w_plan plan;
    nb_status s = plan_file("<memory>", tensors, n, meta, n_meta, &plan);
    if (s != NB_OK) return s;
    if (plan.data_bytes > SIZE_MAX - plan.head.len) {
        plan_free(&plan);
        return nb_err(NB_ERR_NOMEM, "<memory>: file too large");
    }
    size_t total = plan.head.len + (size_t)plan.data_bytes;
    unsigned char *buf = malloc(total);
    if (!buf) {
        plan_free(&plan);
        return nb_err(NB_ERR_NOMEM, "<memory>: out of memory for %zu bytes", total);
    }
    memcpy(buf, plan.head.p, plan.head.len);
    size_t pos = plan.head.len;
    for (int i = 0; i < plan.n; i++) {
        if (plan.items[i].bytes) memcpy(buf + pos, plan.items[i].e->data, plan.items[i].bytes);
        pos += (size_t)plan.items[i].bytes;
    }
    plan_free(&plan);
    *out = buf;
    *out_len = total;
    return NB_OK;
}

nb_status nb_st_write(const char *path, const nb_st_entry *tensors, int n, const nb_kv *meta,
                      int n_meta) {
    if (!path) return nb_err(NB_ERR_ARG, "nb_st_write: path is NULL");
    w_plan plan;
    nb_status s = plan_file(path, tensors, n, meta, n_meta, &plan);
    if (s != NB_OK) return s;
    nb_afile f;
    s = nb__afile_open(&f, path);
    if (s == NB_OK) s = nb__afile_write(&f, plan.head.p, plan.head.len);
    for (int i = 0; i < plan.n && s == NB_OK; i++)
        s = nb__afile_write(&f, plan.items[i].e->data, (size_t)plan.items[i].bytes);
    if (s == NB_OK) s = nb__afile_commit(&f);
    else nb__afile_abort(&f);
    plan_free(&plan);
    return s;
}
