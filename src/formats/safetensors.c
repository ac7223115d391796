/* safetensors: a strict reader and a writer.
 *
 * File layout: an 8-byte little-endian header length N, N bytes of UTF-8
 * JSON, then the data buffer.  The header maps each tensor name to
 * {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
 * data buffer, end exclusive) and may hold "__metadata__": {string: string}.
 *
 * The header is untrusted.  It is read once, by nabla's strict JSON parser
 * (json.c), which checks UTF-8 and strict JSON (RFC 8259: no raw control
 * characters, "01", "+1", ".5" or trailing text; every number a plain
 * non-negative integer within int64, as numbers only appear in shape and
 * data_offsets) while it builds the tree.  Every rule of the format is then
 * checked on the tree: known dtype, string metadata, no duplicate keys,
 * sizes without overflow, offsets covering the data buffer exactly, with no
 * gap or overlap.
 * Every failure names the file and the tensor or field. */
#define _POSIX_C_SOURCE 200809L
#include "atomic.h"
#include "json.h"
#include "st_internal.h"
#include "utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER 100000000u /* the reference implementation's limit */
#define ST_MAX_DEPTH 32          /* a valid header nests 3 levels deep    */
#define ST_MAX_ARRAY 64          /* and its arrays have at most 6 entries  */

static const struct {
    const char *name;
    int bits;
} dtypes[NB_ST_DTYPE_COUNT] = {
    [NB_ST_BOOL] = {"BOOL", 8},           [NB_ST_U8] = {"U8", 8},
    [NB_ST_I8] = {"I8", 8},               [NB_ST_U16] = {"U16", 16},
    [NB_ST_I16] = {"I16", 16},            [NB_ST_F16] = {"F16", 16},
    [NB_ST_BF16] = {"BF16", 16},          [NB_ST_U32] = {"U32", 32},
    [NB_ST_I32] = {"I32", 32},            [NB_ST_F32] = {"F32", 32},
    [NB_ST_U64] = {"U64", 64},            [NB_ST_I64] = {"I64", 64},
    [NB_ST_F64] = {"F64", 64},            [NB_ST_C64] = {"C64", 64},
    [NB_ST_F8_E4M3] = {"F8_E4M3", 8},     [NB_ST_F8_E5M2] = {"F8_E5M2", 8},
    [NB_ST_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8}, [NB_ST_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8},
    [NB_ST_F8_E8M0] = {"F8_E8M0", 8},     [NB_ST_F6_E2M3] = {"F6_E2M3", 6},
    [NB_ST_F6_E3M2] = {"F6_E3M2", 6},     [NB_ST_F4] = {"F4", 4},
};

static int dtype_valid(nb_st_dtype t) { return (int)t >= 0 && (int)t < NB_ST_DTYPE_COUNT; }

const char *nb_st_dtype_name(nb_st_dtype t) { return dtype_valid(t) ? dtypes[t].name : "?"; }

int nb_st_dtype_bits(nb_st_dtype t) { return dtype_valid(t) ? dtypes[t].bits : 0; }

static int dtype_lookup(const char *name, nb_st_dtype *out) {
    for (int k = 0; k < NB_ST_DTYPE_COUNT; k++)
        if (strcmp(dtypes[k].name, name) == 0) {
            *out = (nb_st_dtype)k;
            return 1;
        }
    return 0;
}

/* Byte size of numel elements of dtype, or 0 with *why set when it
 * overflows or is not a whole number of bytes. */
static int tensor_bytes(uint64_t numel, nb_st_dtype t, uint64_t *bytes, const char **why) {
    uint64_t bits = (uint64_t)dtypes[t].bits;
    if (numel > UINT64_MAX / bits) {
        *why = "overflows 64 bits";
        return 0;
    }
    if (numel * bits % 8 != 0) {
        *why = "is not a whole number of bytes";
        return 0;
    }
    *bytes = numel * bits / 8;
    return 1;
}

/* Element count of a shape, 0 on overflow of uint64 (with *ok = 0). */
static uint64_t shape_numel(int ndim, const int *dims, int *ok) {
    uint64_t n = 1;
    *ok = 1;
    for (int d = 0; d < ndim; d++) {
        uint64_t v = (uint64_t)dims[d];
        if (v != 0 && n > UINT64_MAX / v) *ok = 0;
        n *= v;
    }
    return *ok ? n : 0;
}

const char *nb__st_show(char buf[100], const char *s) {
    size_t n = 0, cut = 80;
    if (!s) s = "(null)";
    while (s[n] && n < cut) n++;
    int truncated = s[n] != '\0';
    /* cut on a character boundary */
    if (truncated)
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        buf[k] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
    }
    strcpy(buf + n, truncated ? "..." : "");
    return buf;
}

/* "label: message" as NB_ERR_FORMAT. */
static nb_status format_err(const char *label, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int utf8_valid(const char *s) { return nb__utf8_valid(s, strlen(s)); }

static nb_status format_err(const char *label, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nb_err(NB_ERR_FORMAT, "%s: %s", label, msg);
}

/* ------------------------------------------------------------ header JSON */

static const nb_json_limits header_limits = {ST_MAX_DEPTH, ST_MAX_ARRAY};

static char printable(unsigned char c) { return c >= 0x20 && c < 0x7F ? (char)c : '?'; }

/* "tensor 'w' field 'shape': " (or "'__metadata__' key 'a': "): where in
 * the header a syntax error is, from the raw member names being read. */
static void syntax_context(const nb_json_error *e, char *ctx, size_t size) {
    int n0 = (int)(e->name_len[0] > 80 ? 80 : e->name_len[0]);
    int n1 = (int)(e->name_len[1] > 80 ? 80 : e->name_len[1]);
    int meta = e->name_len[0] == 12 && memcmp(e->name[0], "__metadata__", 12) == 0;
    ctx[0] = '\0';
    if (e->name[0] && e->name[1] && e->depth >= 2)
        snprintf(ctx, size, "%s'%.*s' %s '%.*s': ", meta ? "" : "tensor ", n0, e->name[0],
                 meta ? "key" : "field", n1, e->name[1]);
    else if (e->name[0])
        snprintf(ctx, size, "%s'%.*s': ", meta ? "" : "tensor ", n0, e->name[0]);
}

/* The message for a header the JSON parser refused. */
static nb_status header_error(const nb_json_error *e, const unsigned char *h,
                              const char *label) {
    char ctx[240];
    switch (e->fault) {
    case NB_JSON_FAULT_UTF8:
        return format_err(label, "header is not valid UTF-8 (byte 0x%02x at header offset %zu)",
                          h[e->at], e->at);
    case NB_JSON_FAULT_NOT_OBJECT:
        return format_err(label, "header is not a JSON object (it starts with '%c')",
                          printable(h[e->at]));
    case NB_JSON_FAULT_NOMEM:
        return nb_err(NB_ERR_NOMEM, "%s: out of memory for the header", label);
    default:
        syntax_context(e, ctx, sizeof ctx);
        return format_err(label, "invalid header at byte %zu: %s%s", e->at, ctx,
                          e->at_end ? "unexpected end of the header" : e->msg);
    }
}

/* ------------------------------------------------------------ reader */

typedef struct st_info {
    char *name;
    nb_st_dtype dtype;
    int ndim;
    int dims[NB_MAX_DIMS];
    size_t numel;
    uint64_t begin, end;
} st_info;

struct nb_safetensors {
    unsigned char *buf; /* the whole file */
    size_t size;
    size_t data_off;    /* 8 + N */
    st_info *t;         /* in data order */
    int n;
    int *by_name;       /* indices of t sorted by name */
    nb_kv *meta;        /* owned strings */
    int n_meta;
};

void nb_st_free(nb_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n; i++) free(st->t[i].name);
    for (int i = 0; i < st->n_meta; i++) {
        free((char *)st->meta[i].key);
        free((char *)st->meta[i].value);
    }
    free(st->t);
    free(st->by_name);
    free(st->meta);
    free(st->buf);
    free(st);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* The three fields of a tensor entry, each exactly once. */
typedef struct entry_fields {
    const nb_json *dtype, *shape, *offsets;
} entry_fields;

static nb_status find_fields(const nb_json *e, const char *label, const char *nm,
                             entry_fields *f) {
    char fld[100];
    *f = (entry_fields){NULL, NULL, NULL};
    for (const nb_json *c = e->child; c; c = c->next) {
        const nb_json **slot = strcmp(c->key, "dtype") == 0          ? &f->dtype
                               : strcmp(c->key, "shape") == 0        ? &f->shape
                               : strcmp(c->key, "data_offsets") == 0 ? &f->offsets
                                                                     : NULL;
        if (!slot)
            return format_err(label, "tensor '%s': unknown field '%s' (expected dtype, shape, "
                              "data_offsets)", nm, nb__st_show(fld, c->key));
        if (*slot)
            return format_err(label, "tensor '%s': field '%s' appears twice", nm, c->key);
        *slot = c;
    }
    if (!f->dtype || !f->shape || !f->offsets)
        return format_err(label, "tensor '%s': missing field '%s'", nm,
                          !f->dtype ? "dtype" : !f->shape ? "shape" : "data_offsets");
    return NB_OK;
}

static nb_status read_dtype(const nb_json *dtype, const char *label, const char *nm,
                            st_info *t) {
    char shown[100];
    if (dtype->type != NB_JSON_STRING)
        return format_err(label, "tensor '%s': dtype is %s, not a string", nm,
                          nb_json_type_name(dtype));
    if (!dtype_lookup(dtype->str, &t->dtype))
        return format_err(label, "tensor '%s': unknown dtype '%s'", nm,
                          nb__st_show(shown, dtype->str));
    return NB_OK;
}

static nb_status read_shape(const nb_json *shape, const char *label, const char *nm,
                            st_info *t) {
    if (shape->type != NB_JSON_ARRAY)
        return format_err(label, "tensor '%s': shape is %s, not an array", nm,
                          nb_json_type_name(shape));
    if (shape->count > NB_MAX_DIMS)
        return format_err(label, "tensor '%s': shape has %d dimensions (at most %d supported)",
                          nm, shape->count, NB_MAX_DIMS);
    t->ndim = 0;
    for (const nb_json *d = shape->child; d; d = d->next) {
        /* the JSON parser let only non-negative integers through */
        if (d->type != NB_JSON_NUMBER)
            return format_err(label, "tensor '%s': shape entry %d is %s, not an integer", nm,
                              t->ndim, nb_json_type_name(d));
        if (d->num > (uint64_t)INT_MAX)
            return format_err(label, "tensor '%s': shape entry %d is %llu, beyond the limit "
                              "%d", nm, t->ndim, (unsigned long long)d->num, INT_MAX);
        t->dims[t->ndim++] = (int)d->num;
    }
    return NB_OK;
}

static nb_status read_offsets(const nb_json *offsets, const char *label, const char *nm,
                              uint64_t data_size, st_info *t) {
    const nb_json *b = offsets->child, *e = b ? b->next : NULL;
    if (offsets->type != NB_JSON_ARRAY || offsets->count != 2 || b->type != NB_JSON_NUMBER ||
        e->type != NB_JSON_NUMBER)
        return format_err(label, "tensor '%s': data_offsets must be [begin, end] (two "
                          "integers)", nm);
    if (e->num < b->num)
        return format_err(label, "tensor '%s': data_offsets [%llu, %llu] end before they "
                          "begin", nm, (unsigned long long)b->num, (unsigned long long)e->num);
    if (e->num > data_size)
        return format_err(label, "tensor '%s': data_offsets [%llu, %llu] reach past the end "
                          "of the file (the data buffer has %llu bytes)", nm,
                          (unsigned long long)b->num, (unsigned long long)e->num,
                          (unsigned long long)data_size);
    t->begin = b->num;
    t->end = e->num;
    return NB_OK;
}

/* The shape and dtype must fill the bytes data_offsets give exactly. */
static nb_status check_size(const char *label, const char *nm, st_info *t) {
    int ok;
    uint64_t numel = shape_numel(t->ndim, t->dims, &ok), bytes = 0;
    const char *why = "overflows 64 bits";
    char sh[128];
    if (!ok || !tensor_bytes(numel, t->dtype, &bytes, &why))
        return format_err(label, "tensor '%s': size of shape %s of %s %s", nm,
                          nb_shape_str(sh, sizeof sh, t->ndim, t->dims),
                          dtypes[t->dtype].name, why);
    if (bytes != t->end - t->begin)
        return format_err(label, "tensor '%s': shape %s of %s needs %llu bytes but "
                          "data_offsets [%llu, %llu] hold %llu", nm,
                          nb_shape_str(sh, sizeof sh, t->ndim, t->dims), dtypes[t->dtype].name,
                          (unsigned long long)bytes, (unsigned long long)t->begin,
                          (unsigned long long)t->end, (unsigned long long)(t->end - t->begin));
    t->numel = (size_t)numel;
    return NB_OK;
}

/* One tensor entry {"dtype", "shape", "data_offsets"} into *t (name excluded). */
static nb_status parse_entry(const nb_json *e, const char *label, uint64_t data_size,
                             st_info *t) {
    char nm[100];
    nb__st_show(nm, e->key);
    if (e->type != NB_JSON_OBJECT)
        return format_err(label, "tensor '%s': entry is %s, not an object", nm,
                          nb_json_type_name(e));
    entry_fields f;
    nb_status s = find_fields(e, label, nm, &f);
    if (s == NB_OK) s = read_dtype(f.dtype, label, nm, t);
    if (s == NB_OK) s = read_shape(f.shape, label, nm, t);
    if (s == NB_OK) s = read_offsets(f.offsets, label, nm, data_size, t);
    if (s == NB_OK) s = check_size(label, nm, t);
    return s;
}

static nb_status parse_metadata(nb_safetensors *st, const nb_json *m, const char *label) {
    char k[100];
    if (m->type != NB_JSON_OBJECT)
        return format_err(label, "__metadata__ is %s, not an object of strings",
                          nb_json_type_name(m));
    int nomem;
    const char *dup = nb_json_duplicate_key(m, &nomem);
    if (nomem) return nb_err(NB_ERR_NOMEM, "%s: out of memory", label);
    if (dup) return format_err(label, "__metadata__: key '%s' appears twice", nb__st_show(k, dup));
    st->meta = calloc(m->count ? (size_t)m->count : 1, sizeof *st->meta);
    if (!st->meta) return nb_err(NB_ERR_NOMEM, "%s: out of memory", label);
    for (const nb_json *c = m->child; c; c = c->next) {
        if (c->type != NB_JSON_STRING)
            return format_err(label, "__metadata__: value of '%s' is %s, not a string",
                              nb__st_show(k, c->key), nb_json_type_name(c));
        nb_kv *kv = &st->meta[st->n_meta];
        kv->key = dup_str(c->key);
        kv->value = kv->key ? dup_str(c->str) : NULL;
        if (!kv->key || !kv->value) {
            free((char *)kv->key);
            kv->key = NULL;
            return nb_err(NB_ERR_NOMEM, "%s: out of memory", label);
        }
        st->n_meta++;
    }
    return NB_OK;
}

/* Every member of the header: tensor entries and __metadata__. */
static nb_status read_members(nb_safetensors *st, const nb_json *root, const char *label) {
    char nm[100];
    uint64_t data_size = st->size - st->data_off;
    int nomem;
    const char *dup = nb_json_duplicate_key(root, &nomem);
    if (nomem) return nb_err(NB_ERR_NOMEM, "%s: out of memory", label);
    if (dup)
        return format_err(label, "tensor '%s' appears twice in the header", nb__st_show(nm, dup));
    st->t = calloc(root->count ? (size_t)root->count : 1, sizeof *st->t);
    if (!st->t) return nb_err(NB_ERR_NOMEM, "%s: out of memory", label);
    for (const nb_json *e = root->child; e; e = e->next) {
        nb_status s;
        if (strcmp(e->key, "__metadata__") == 0) {
            if ((s = parse_metadata(st, e, label)) != NB_OK) return s;
            continue;
        }
        st_info *t = &st->t[st->n];
        if ((s = parse_entry(e, label, data_size, t)) != NB_OK) return s;
        t->name = dup_str(e->key);
        if (!t->name) return nb_err(NB_ERR_NOMEM, "%s: out of memory", label);
        st->n++;
    }
    return NB_OK;
}

static int cmp_by_offset(const void *a, const void *b) {
    const st_info *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name); /* zero-size tensors: still a fixed order */
}

/* The data buffer must be covered exactly: sorted by offset, each tensor
 * begins where the previous one ended, the first at 0, the last at the end
 * of the file.  Leaves st->t in data order. */
static nb_status check_coverage(nb_safetensors *st, const char *label) {
    char nm[100], prev[100];
    uint64_t data_size = st->size - st->data_off, pos = 0;
    qsort(st->t, (size_t)st->n, sizeof *st->t, cmp_by_offset);
    for (int i = 0; i < st->n; i++) {
        const st_info *t = &st->t[i];
        if (t->begin == pos) {
            pos = t->end;
            continue;
        }
        if (i == 0)
            return format_err(label, "tensor '%s': data_offsets begin at %llu; the first "
                              "tensor must begin at 0", nb__st_show(nm, t->name),
                              (unsigned long long)t->begin);
        return format_err(label, "tensor '%s': data_offsets [%llu, %llu] %s tensor '%s', "
                          "which ends at %llu", nb__st_show(nm, t->name),
                          (unsigned long long)t->begin, (unsigned long long)t->end,
                          t->begin > pos ? "leave a gap after" : "overlap",
                          nb__st_show(prev, st->t[i - 1].name), (unsigned long long)pos);
    }
    if (pos != data_size)
        return format_err(label, "the tensors cover %llu bytes of data but %llu follow the "
                          "header: the data must end exactly at the end of the file",
                          (unsigned long long)pos, (unsigned long long)data_size);
    return NB_OK;
}

/* qsort has no context argument: sort indices through a pointer into a
 * temporary array of names. */
typedef struct name_index {
    const char *name;
    int index;
} name_index;

static int cmp_name_index(const void *a, const void *b) {
    return strcmp(((const name_index *)a)->name, ((const name_index *)b)->name);
}

/* st->by_name: the tensors' indices sorted by name, for nb_st_find. */
static nb_status index_names(nb_safetensors *st, const char *label) {
    name_index *ni = malloc((st->n ? (size_t)st->n : 1) * sizeof *ni);
    st->by_name = malloc((st->n ? (size_t)st->n : 1) * sizeof *st->by_name);
    if (!ni || !st->by_name) {
        free(ni);
        return nb_err(NB_ERR_NOMEM, "%s: out of memory", label);
    }
    for (int i = 0; i < st->n; i++) ni[i] = (name_index){st->t[i].name, i};
    qsort(ni, (size_t)st->n, sizeof *ni, cmp_name_index);
    for (int i = 0; i < st->n; i++) st->by_name[i] = ni[i].index;
    free(ni);
    return NB_OK;
}

/* The header: parsed once into a tree, then every rule of the format
 * checked on it. */
static nb_status parse_header(nb_safetensors *st, const char *label) {
    const unsigned char *h = st->buf + 8;
    nb_json_error err;
    nb_json_doc *doc = nb_json_parse_object((const char *)h, st->data_off - 8, header_limits,
                                            &err);
    if (!doc) return header_error(&err, h, label);
    nb_status s = read_members(st, nb_json_root(doc), label);
    if (s == NB_OK) s = check_coverage(st, label);
    if (s == NB_OK) s = index_names(st, label);
    nb_json_free(doc);
    return s;
}

/* Take ownership of buf (size bytes) and validate it as a safetensors file. */
static nb_status parse_owned(unsigned char *buf, size_t size, const char *label,
                             nb_safetensors **out) {
    *out = NULL;
    nb_safetensors *st = calloc(1, sizeof *st);
    if (!st) {
        free(buf);
        return nb_err(NB_ERR_NOMEM, "%s: out of memory", label);
    }
    st->buf = buf;
    st->size = size;
    nb_status s;
    if (size < 8) {
        s = format_err(label, "file is %zu bytes, too short for the 8-byte header length", size);
        goto fail;
    }
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--) n = n << 8 | buf[k];
    if (n > ST_MAX_HEADER) {
        s = format_err(label, "header length %llu exceeds the limit of %u bytes",
                       (unsigned long long)n, ST_MAX_HEADER);
        goto fail;
    }
    if (n > size - 8) {
        s = format_err(label, "header length %llu runs past the end of the file (%zu bytes)",
                       (unsigned long long)n, size);
        goto fail;
    }
    st->data_off = 8 + (size_t)n;
    s = parse_header(st, label);
    if (s != NB_OK) goto fail;
    *out = st;
    return NB_OK;
fail:
    nb_st_free(st);
    return s;
}

nb_status nb_st_parse(const void *bytes, size_t size, const char *label, nb_safetensors **out) {
    if (!label) label = "<memory>";
    if (!out) return nb_err(NB_ERR_ARG, "nb_st_parse: out is NULL");
    *out = NULL;
    if (!bytes && size) return nb_err(NB_ERR_ARG, "nb_st_parse: bytes is NULL");
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) return nb_err(NB_ERR_NOMEM, "%s: out of memory for %zu bytes", label, size);
    if (size) memcpy(buf, bytes, size);
    return parse_owned(buf, size, label, out);
}

nb_status nb_st_open(const char *path, nb_safetensors **out) {
    if (!out) return nb_err(NB_ERR_ARG, "nb_st_open: out is NULL");
    *out = NULL;
    if (!path) return nb_err(NB_ERR_ARG, "nb_st_open: path is NULL");
    int fd = open(path, O_RDONLY);
    if (fd < 0) return nb_err(NB_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return nb_err(NB_ERR_IO, "%s: cannot read (%s)", path, strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return nb_err(NB_ERR_IO, "%s: cannot read (is a directory)", path);
    }
    /* Read to the end (the size is only a hint: the file may be a pipe). */
    size_t cap = sb.st_size > 0 && (uintmax_t)sb.st_size < SIZE_MAX ? (size_t)sb.st_size + 1
                                                                      : 65536;
    size_t len = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            close(fd);
            return nb_err(NB_ERR_NOMEM, "%s: out of memory for %zu bytes", path, cap);
        }
        if (len == cap) {
            if (cap > SIZE_MAX / 2) {
                free(buf);
                buf = NULL;
                continue;
            }
            unsigned char *nb = realloc(buf, cap * 2);
            if (!nb) free(buf);
            buf = nb;
            cap *= 2;
            continue;
        }
        size_t want = cap - len > ((size_t)1 << 30) ? ((size_t)1 << 30) : cap - len;
        ssize_t r = read(fd, buf + len, want);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return nb_err(NB_ERR_IO, "%s: read failed (%s)", path, strerror(e));
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    close(fd);
    return parse_owned(buf, len, path, out);
}

int nb_st_count(const nb_safetensors *st) { return st ? st->n : 0; }

nb_status nb_st_tensor_at(const nb_safetensors *st, int i, nb_st_tensor *out) {
    if (!st || !out) return nb_err(NB_ERR_ARG, "nb_st_tensor_at: NULL argument");
    if (i < 0 || i >= st->n)
        return nb_err(NB_ERR_ARG, "nb_st_tensor_at: index %d out of range (%d tensors)", i,
                      st->n);
    const st_info *t = &st->t[i];
    memset(out, 0, sizeof *out);
    out->name = t->name;
    out->dtype = t->dtype;
    out->ndim = t->ndim;
    memcpy(out->dims, t->dims, sizeof t->dims);
    out->numel = t->numel;
    out->data = st->buf + st->data_off + t->begin;
    out->nbytes = (size_t)(t->end - t->begin);
    return NB_OK;
}

int nb_st_find(const nb_safetensors *st, const char *name) {
    if (!st || !name) return -1;
    int lo = 0, hi = st->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, st->t[st->by_name[mid]].name);
        if (c == 0) return st->by_name[mid];
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return -1;
}

const char *nb_st_meta(const nb_safetensors *st, const char *key) {
    if (!st || !key) return NULL;
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta[i].key, key) == 0) return st->meta[i].value;
    return NULL;
}

int nb_st_meta_count(const nb_safetensors *st) { return st ? st->n_meta : 0; }

nb_kv nb_st_meta_at(const nb_safetensors *st, int i) {
    nb_kv kv = {NULL, NULL};
    if (st && i >= 0 && i < st->n_meta) kv = st->meta[i];
    return kv;
}

/* ------------------------------------------------------------ writer */

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
    int bx = dtypes[x->e->dtype].bits, by = dtypes[y->e->dtype].bits;
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

static nb_status plan_file(const char *label, const nb_st_entry *t, int n, const nb_kv *meta,
                           int n_meta, w_plan *plan) {
    memset(plan, 0, sizeof *plan);
    char nm[100];
    if (n < 0 || n_meta < 0 || (n > 0 && !t) || (n_meta > 0 && !meta))
        return nb_err(NB_ERR_ARG, "%s: invalid tensor or metadata list (%d tensors, %d "
                      "metadata pairs)", label, n, n_meta);
    plan->items = malloc((n ? (size_t)n : 1) * sizeof *plan->items);
    nb_kv *kv = malloc((n_meta ? (size_t)n_meta : 1) * sizeof *kv);
    const char **names = NULL;
    nb_status s = NB_OK;
    if (!plan->items || !kv) {
        s = nb_err(NB_ERR_NOMEM, "%s: out of memory", label);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const nb_st_entry *e = &t[i];
        if (!e->name || !e->name[0] || !utf8_valid(e->name) ||
            strcmp(e->name, "__metadata__") == 0) {
            s = nb_err(NB_ERR_ARG, "%s: tensor %d: name '%s' is empty, not UTF-8 or reserved",
                       label, i, nb__st_show(nm, e->name));
            goto done;
        }
        if (!dtype_valid(e->dtype) || e->ndim < 0 || e->ndim > NB_MAX_DIMS ||
            (e->ndim > 0 && !e->dims)) {
            s = nb_err(NB_ERR_ARG, "%s: tensor '%s': invalid dtype %d or %d dimensions", label,
                       nb__st_show(nm, e->name), (int)e->dtype, e->ndim);
            goto done;
        }
        for (int d = 0; d < e->ndim; d++)
            if (e->dims[d] < 0) {
                s = nb_err(NB_ERR_ARG, "%s: tensor '%s': dimension %d is %d", label,
                           nb__st_show(nm, e->name), d, e->dims[d]);
                goto done;
            }
        int ok;
        uint64_t numel = shape_numel(e->ndim, e->dims, &ok), bytes = 0;
        const char *why = "overflows 64 bits";
        if (!ok || !tensor_bytes(numel, e->dtype, &bytes, &why) || bytes > SIZE_MAX) {
            s = nb_err(NB_ERR_ARG, "%s: tensor '%s': size %s", label, nb__st_show(nm, e->name),
                       why);
            goto done;
        }
        if (bytes && !e->data) {
            s = nb_err(NB_ERR_ARG, "%s: tensor '%s': data is NULL", label,
                       nb__st_show(nm, e->name));
            goto done;
        }
        if (plan->data_bytes > UINT64_MAX - bytes) {
            s = nb_err(NB_ERR_ARG, "%s: total size overflows", label);
            goto done;
        }
        plan->data_bytes += bytes;
        plan->items[i] = (w_item){e, bytes};
    }
    qsort(plan->items, (size_t)n, sizeof *plan->items, cmp_w_item);
    names = malloc((n ? (size_t)n : 1) * sizeof *names);
    if (!names) {
        s = nb_err(NB_ERR_NOMEM, "%s: out of memory", label);
        goto done;
    }
    for (int i = 0; i < n; i++) names[i] = t[i].name;
    qsort(names, (size_t)n, sizeof *names, cmp_cstr);
    for (int i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            s = nb_err(NB_ERR_ARG, "%s: two tensors are named '%s'", label,
                       nb__st_show(nm, names[i]));
            goto done;
        }
    for (int i = 0; i < n_meta; i++) {
        kv[i] = meta[i];
        if (!kv[i].key || !kv[i].key[0] || !kv[i].value || !utf8_valid(kv[i].key) ||
            !utf8_valid(kv[i].value)) {
            s = nb_err(NB_ERR_ARG, "%s: metadata pair %d ('%s'): key empty, or key or value "
                       "NULL or not UTF-8", label, i, nb__st_show(nm, kv[i].key));
            goto done;
        }
    }
    qsort(kv, (size_t)n_meta, sizeof *kv, cmp_kv);
    for (int i = 1; i < n_meta; i++)
        if (strcmp(kv[i - 1].key, kv[i].key) == 0) {
            s = nb_err(NB_ERR_ARG, "%s: metadata key '%s' given twice", label,
                       nb__st_show(nm, kv[i].key));
            goto done;
        }

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
        const nb_st_entry *e = plan->items[i].e;
        if (i || n_meta > 0) sb_str(h, ",");
        sb_json_string(h, e->name);
        sb_str(h, ":{\"dtype\":\"");
        sb_str(h, dtypes[e->dtype].name);
        sb_str(h, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            if (d) sb_str(h, ",");
            sb_u64(h, (uint64_t)e->dims[d]);
        }
        sb_str(h, "],\"data_offsets\":[");
        sb_u64(h, off);
        sb_str(h, ",");
        off += plan->items[i].bytes;
        sb_u64(h, off);
        sb_str(h, "]}");
    }
    sb_str(h, "}");
    while (!h->oom && h->len % 8 != 0) sb_str(h, " ");
    if (h->oom) {
        s = nb_err(NB_ERR_NOMEM, "%s: out of memory for the header", label);
        goto done;
    }
    uint64_t hlen = h->len - 8;
    if (hlen > ST_MAX_HEADER) {
        s = nb_err(NB_ERR_ARG, "%s: header of %llu bytes exceeds the format's limit of %u",
                   label, (unsigned long long)hlen, ST_MAX_HEADER);
        goto done;
    }
    for (int k = 0; k < 8; k++) h->p[k] = (char)(hlen >> (8 * k) & 0xFF);
    plan->n = n;
done:
    free(kv);
    free(names);
    if (s != NB_OK) plan_free(plan);
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
