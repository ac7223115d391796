/* safetensors: the strict reader.
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
 * gap or overlap.  Every failure names the file and the tensor or field. */
#define _POSIX_C_SOURCE 200809L
#include "json.h"
#include "st_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_DEPTH 32 /* a valid header nests 3 levels deep   */
#define ST_MAX_ARRAY 64 /* and its arrays have at most 6 entries */

/* "label: message" as NB_ERR_FORMAT. */
static nb_status format_err(const char *label, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
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
    if (!nb__st_dtype_lookup(dtype->str, &t->dtype))
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
    uint64_t numel = nb__st_shape_numel(t->ndim, t->dims, &ok), bytes = 0;
    const char *why = "overflows 64 bits";
    char sh[128];
    if (!ok || !nb__st_tensor_bytes(numel, t->dtype, &bytes, &why))
        return format_err(label, "tensor '%s': size of shape %s of %s %s", nm,
                          nb_shape_str(sh, sizeof sh, t->ndim, t->dims),
                          nb_st_dtype_name(t->dtype), why);
    if (bytes != t->end - t->begin)
        return format_err(label, "tensor '%s': shape %s of %s needs %llu bytes but "
                          "data_offsets [%llu, %llu] hold %llu", nm,
                          nb_shape_str(sh, sizeof sh, t->ndim, t->dims), nb_st_dtype_name(t->dtype),
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
    if (n > NB_ST_MAX_HEADER) {
        s = format_err(label, "header length %llu exceeds the limit of %u bytes",
                       (unsigned long long)n, NB_ST_MAX_HEADER);
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

/* Reading can stop at a header that cannot be valid: a header length over
 * the limit, or a header that is not a JSON object.  parse_owned then says
 * why, and an endless device (/dev/zero) or pipe is not read to the end. */
static int header_is_bad(const unsigned char *buf, size_t len) {
    if (len < 8) return 0;
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--) n = n << 8 | buf[k];
    if (n > NB_ST_MAX_HEADER || n < 2) return 1;
    if (len < 8 + n) return 0;
    size_t i = 8;
    while (i < 8 + n && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r')) i++;
    return i == 8 + n || buf[i] != '{';
}

/* For a pipe or device: the bytes the file should have, once its header is
 * in (0 before).  The largest end offset the header gives, plus one byte
 * so that data past it is seen and refused; the rest of the header is
 * checked by parse_owned.  An unreadable header needs no more bytes. */
static size_t bytes_needed(const unsigned char *buf, size_t len) {
    if (len < 8) return 0;
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--) n = n << 8 | buf[k];
    if (len < 8 + n) return 0;
    nb_json_error err;
    nb_json_doc *doc = nb_json_parse_object((const char *)buf + 8, (size_t)n, header_limits, &err);
    if (!doc) return len;
    uint64_t end = 0;
    for (const nb_json *e = nb_json_root(doc)->child; e; e = e->next) {
        const nb_json *o = e->type == NB_JSON_OBJECT ? e->child : NULL;
        while (o && strcmp(o->key, "data_offsets") != 0) o = o->next;
        const nb_json *last = o && o->type == NB_JSON_ARRAY && o->child ? o->child->next : NULL;
        if (last && last->type == NB_JSON_NUMBER && last->num > end) end = last->num;
    }
    nb_json_free(doc);
    return end > SIZE_MAX - 9 - n ? SIZE_MAX : (size_t)(8 + n + end + 1);
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
    size_t len = 0, needed = 0;
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
        if (header_is_bad(buf, len)) break; /* the error needs no more bytes */
        if (!S_ISREG(sb.st_mode) && !needed) needed = bytes_needed(buf, len);
        if (needed && len >= needed) break; /* an endless pipe is not read to its end */
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
