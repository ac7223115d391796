/* NumPy .npy files (format versions 1.0, 2.0, 3.0).
 *
 * Layout: "\x93NUMPY", a major and a minor version byte, the header length
 * (little-endian u16 in 1.0, u32 in 2.0 and 3.0), then the header: a Python
 * dict literal such as
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 784), }
 * padded with spaces and a '\n', then the raw C-order data.  The header is
 * untrusted text, so it is parsed by a small strict parser that accepts only
 * that dict (the three keys, each once) and not general Python.  The data
 * length must equal the shape's product times the element size exactly.
 *
 * One code path reads from memory (nb_npy_parse, used by the fuzz target) or
 * from a file (nb_npy_load); for files the data buffer grows only as bytes
 * arrive, so a header announcing a huge array costs nothing. */
#include "io.h"
#include "utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest accepted header and data section. */
#define NPY_MAX_HEADER ((size_t)1 << 20)
#define NPY_MAX_BYTES ((uint64_t)1 << 34)

/* ------------------------------------------------------------ byte source */

typedef struct npy_src {
    const unsigned char *mem;   /* memory image, or NULL */
    size_t len, pos;
    FILE *f;                    /* or a file */
    const char *name;
    int err;                    /* errno of a failed read, 0 if none */
} npy_src;

/* Read up to n bytes; returns the count read (short only at the end). */
static size_t src_read(npy_src *s, void *dst, size_t n) {
    if (s->mem) {
        size_t k = s->len - s->pos < n ? s->len - s->pos : n;
        memcpy(dst, s->mem + s->pos, k);
        s->pos += k;
        return k;
    }
    size_t got = 0;
    while (got < n) {
        size_t r = fread((char *)dst + got, 1, n - got, s->f);
        if (r == 0) {
            if (ferror(s->f) && !s->err) s->err = errno ? errno : EIO;
            break;
        }
        got += r;
    }
    return got;
}

/* ------------------------------------------------------------ header dict */

typedef struct hparse {
    const char *s;
    size_t len, pos;
    const char *name;
} hparse;

static void skip_ws(hparse *h) {
    while (h->pos < h->len && (h->s[h->pos] == ' ' || h->s[h->pos] == '\t' ||
                               h->s[h->pos] == '\n' || h->s[h->pos] == '\r'))
        h->pos++;
}

static nb_status syntax(hparse *h, const char *expected) {
    char q[64];
    if (h->pos >= h->len)
        return nb_err(NB_ERR_FORMAT, "%s: .npy header ends early: expected %s", h->name,
                      expected);
    return nb_err(NB_ERR_FORMAT, "%s: .npy header offset %zu: expected %s, found '%s'", h->name,
                  h->pos, expected, nb__quote(q, sizeof q, h->s + h->pos, h->len - h->pos, 12));
}

static int peek(hparse *h, char c) {
    skip_ws(h);
    return h->pos < h->len && h->s[h->pos] == c;
}

/* A quoted string without escapes (numpy never writes any). */
static nb_status parse_string(hparse *h, const char **str, size_t *n) {
    skip_ws(h);
    if (h->pos >= h->len || (h->s[h->pos] != '\'' && h->s[h->pos] != '"'))
        return syntax(h, "a quoted string");
    char quote = h->s[h->pos++];
    size_t start = h->pos;
    while (h->pos < h->len && h->s[h->pos] != quote) {
        if (h->s[h->pos] == '\\')
            return nb_err(NB_ERR_FORMAT, "%s: .npy header offset %zu: escape sequences in "
                          "strings are not supported", h->name, h->pos);
        if (h->s[h->pos] == '\n')
            break;
        h->pos++;
    }
    if (h->pos >= h->len || h->s[h->pos] != quote)
        return nb_err(NB_ERR_FORMAT, "%s: .npy header offset %zu: string is never closed",
                      h->name, start - 1);
    *str = h->s + start;
    *n = h->pos - start;
    h->pos++;
    return NB_OK;
}

static int word_at(hparse *h, const char *w) {
    size_t n = strlen(w);
    if (h->len - h->pos < n || memcmp(h->s + h->pos, w, n) != 0) return 0;
    /* not a prefix of a longer identifier */
    if (h->pos + n < h->len) {
        char c = h->s[h->pos + n];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_')
            return 0;
    }
    h->pos += n;
    return 1;
}

static nb_status parse_bool(hparse *h, int *v) {
    skip_ws(h);
    if (word_at(h, "True")) *v = 1;
    else if (word_at(h, "False")) *v = 0;
    else return syntax(h, "True or False");
    return NB_OK;
}

/* (d0, d1, ...) with at most NB_MAX_DIMS non-negative integers; "(n)" is not
 * a tuple in Python and numpy refuses it, so do we. */
static nb_status parse_shape(hparse *h, int *ndim, int64_t dims[NB_MAX_DIMS]) {
    skip_ws(h);
    if (h->pos >= h->len || h->s[h->pos] != '(') return syntax(h, "a shape tuple '('");
    h->pos++;
    *ndim = 0;
    int trailing_comma = 0;
    while (!peek(h, ')')) {
        skip_ws(h);
        if (h->pos < h->len && h->s[h->pos] == '-')
            return nb_err(NB_ERR_FORMAT, "%s: .npy shape has a negative dimension (header "
                          "offset %zu)", h->name, h->pos);
        if (h->pos >= h->len || h->s[h->pos] < '0' || h->s[h->pos] > '9')
            return syntax(h, "a dimension (a non-negative integer)");
        int64_t v = 0;
        while (h->pos < h->len && h->s[h->pos] >= '0' && h->s[h->pos] <= '9') {
            v = v * 10 + (h->s[h->pos++] - '0');
            if (v > INT32_MAX)
                return nb_err(NB_ERR_FORMAT, "%s: .npy shape dimension %d is larger than %d",
                              h->name, *ndim, INT32_MAX);
        }
        if (h->pos < h->len && h->s[h->pos] == 'L') h->pos++; /* Python 2 long */
        if (*ndim == NB_MAX_DIMS)
            return nb_err(NB_ERR_FORMAT, "%s: .npy shape has more than %d dimensions", h->name,
                          NB_MAX_DIMS);
        dims[(*ndim)++] = v;
        trailing_comma = 0;
        if (peek(h, ',')) {
            h->pos++;
            trailing_comma = 1;
        } else if (!peek(h, ')')) {
            return syntax(h, "',' or ')' in the shape");
        }
    }
    h->pos++; /* ')' */
    if (*ndim == 1 && !trailing_comma)
        return nb_err(NB_ERR_FORMAT, "%s: .npy shape (%lld) is not a tuple (expected (%lld,))",
                      h->name, (long long)dims[0], (long long)dims[0]);
    return NB_OK;
}

typedef struct npy_header {
    char descr[16];
    int fortran;
    int ndim;
    int64_t dims[NB_MAX_DIMS];
} npy_header;

static nb_status parse_dict(hparse *h, npy_header *hd) {
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    skip_ws(h);
    if (h->pos >= h->len || h->s[h->pos] != '{') return syntax(h, "'{'");
    h->pos++;
    while (!peek(h, '}')) {
        const char *key;
        size_t klen;
        nb_status s = parse_string(h, &key, &klen);
        if (s != NB_OK) return s;
        if (!peek(h, ':')) return syntax(h, "':' after a key");
        h->pos++;
        int *seen;
        if (klen == 5 && memcmp(key, "descr", 5) == 0) {
            const char *v;
            size_t n;
            if ((s = parse_string(h, &v, &n)) != NB_OK) return s;
            if (n >= sizeof hd->descr) n = sizeof hd->descr - 1; /* unknown anyway */
            memcpy(hd->descr, v, n);
            hd->descr[n] = '\0';
            seen = &have_descr;
        } else if (klen == 13 && memcmp(key, "fortran_order", 13) == 0) {
            if ((s = parse_bool(h, &hd->fortran)) != NB_OK) return s;
            seen = &have_fortran;
        } else if (klen == 5 && memcmp(key, "shape", 5) == 0) {
            if ((s = parse_shape(h, &hd->ndim, hd->dims)) != NB_OK) return s;
            seen = &have_shape;
        } else {
            char q[64];
            return nb_err(NB_ERR_FORMAT, "%s: .npy header has an unexpected key '%s' (expected "
                          "'descr', 'fortran_order', 'shape')", h->name,
                          nb__quote(q, sizeof q, key, klen, 24));
        }
        if (*seen)
            return nb_err(NB_ERR_FORMAT, "%s: .npy header has the key '%.*s' twice", h->name,
                          (int)klen, key);
        *seen = 1;
        if (peek(h, ',')) h->pos++;
        else if (!peek(h, '}')) return syntax(h, "',' or '}'");
    }
    h->pos++; /* '}' */
    skip_ws(h);
    if (h->pos != h->len) return syntax(h, "the end of the header after '}'");
    if (!have_descr || !have_fortran || !have_shape)
        return nb_err(NB_ERR_FORMAT, "%s: .npy header lacks the key '%s'", h->name,
                      !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    return NB_OK;
}

/* descr -> dtype; *swap set when the file's byte order differs from ours. */
static nb_status parse_descr(const char *name, const char *descr, nb_dtype *t, int *swap,
                             int *is_bool) {
    const uint16_t probe = 1;
    int host_little = *(const unsigned char *)&probe == 1;
    char order = descr[0];
    const char *code = order ? descr + 1 : descr;
    *is_bool = 0;
    *swap = 0;
    *t = NB_U8;
    if (strcmp(code, "f4") == 0) *t = NB_F32;
    else if (strcmp(code, "f8") == 0) *t = NB_F64;
    else if (strcmp(code, "u1") == 0) *t = NB_U8;
    else if (strcmp(code, "b1") == 0) *t = NB_U8, *is_bool = 1;
    else if (strcmp(code, "i1") == 0) *t = NB_I8;
    else if (strcmp(code, "i2") == 0) *t = NB_I16;
    else if (strcmp(code, "i4") == 0) *t = NB_I32;
    else order = 0;
    size_t esize = order ? nb_dtype_size(*t) : 0;
    int ok = (order == '<' || order == '>' || order == '=') || (order == '|' && esize == 1);
    if (!ok) {
        char q[64];
        return nb_err(NB_ERR_FORMAT, "%s: unsupported .npy dtype '%s' (supported: '<f4' '<f8' "
                      "'|u1' '|b1' '|i1' '<i2' '<i4', either byte order)", name,
                      nb__quote(q, sizeof q, descr, strlen(descr), 15));
    }
    *swap = esize > 1 && ((order == '<' && !host_little) || (order == '>' && host_little));
    return NB_OK;
}

static void swap_bytes(unsigned char *p, size_t count, size_t sz) {
    for (size_t k = 0; k < count; k++, p += sz)
        for (size_t i = 0; i < sz / 2; i++) {
            unsigned char t = p[i];
            p[i] = p[sz - 1 - i];
            p[sz - 1 - i] = t;
        }
}

/* ------------------------------------------------------------ the file */

static nb_status read_header(npy_src *src, npy_header *hd) {
    const char *name = src->name;
    unsigned char pre[12];
    size_t got = src_read(src, pre, 10);
    if (got < 8 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        if (got >= 6 && memcmp(pre, "\x93NUMPY", 6) == 0)
            return nb_err(NB_ERR_FORMAT, "%s: truncated .npy preamble (%zu bytes)", name, got);
        if (got < 6 && memcmp(pre, "\x93NUMPY", got) == 0)
            return nb_err(NB_ERR_FORMAT, "%s: truncated .npy file (%zu bytes)", name, got);
        return nb_err(NB_ERR_FORMAT, "%s: not a .npy file (it does not start with "
                      "\"\\x93NUMPY\")", name);
    }
    int major = pre[6], minor = pre[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        return nb_err(NB_ERR_FORMAT, "%s: unsupported .npy format version %d.%d (1.0, 2.0 and "
                      "3.0 are known)", name, major, minor);
    size_t lenbytes = major == 1 ? 2 : 4;
    if (lenbytes == 4) got += src_read(src, pre + 10, 2);
    if (got < 8 + lenbytes)
        return nb_err(NB_ERR_FORMAT, "%s: truncated .npy preamble (%zu bytes)", name, got);
    uint32_t hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
    if (lenbytes == 4) hlen |= (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
    if (hlen > NPY_MAX_HEADER)
        return nb_err(NB_ERR_FORMAT, "%s: .npy header length %u is larger than the limit of "
                      "%zu bytes", name, hlen, NPY_MAX_HEADER);
    char *text = malloc(hlen ? hlen : 1);
    if (!text) return nb_err(NB_ERR_NOMEM, "%s: out of memory", name);
    size_t hgot = src_read(src, text, hlen);
    nb_status s = NB_OK;
    if (hgot < hlen) {
        s = nb_err(NB_ERR_FORMAT, "%s: .npy header length %u goes past the end of the file "
                   "(%zu header bytes present)", name, hlen, hgot);
    } else if (major == 3 && !nb__utf8_valid(text, hlen)) {
        s = nb_err(NB_ERR_FORMAT, "%s: .npy 3.0 header is not valid UTF-8", name);
    } else {
        for (size_t i = 0; i < hlen && major < 3; i++)
            if ((unsigned char)text[i] >= 0x80) {
                s = nb_err(NB_ERR_FORMAT, "%s: .npy %d.0 header has a non-ASCII byte 0x%02x at "
                           "offset %zu", name, major, (unsigned char)text[i], i);
                break;
            }
        if (s == NB_OK) {
            hparse h = {text, hlen, 0, name};
            memset(hd, 0, sizeof *hd);
            s = parse_dict(&h, hd);
        }
    }
    free(text);
    return s;
}

/* Exactly want bytes of data after the header, into *data (malloc'ed). */
static nb_status read_npy_data(npy_src *src, size_t want, unsigned char **data) {
    const char *name = src->name;
    unsigned char *buf = NULL;
    size_t got = 0;
    if (src->mem) {
        size_t have = src->len - src->pos;
        if (have != want)
            return nb_err(NB_ERR_FORMAT, "%s: .npy data is %zu bytes but the shape and dtype "
                          "need %zu (%s)", name, have, want,
                          have < want ? "truncated" : "trailing bytes");
        buf = malloc(want);
        if (!buf) return nb_err(NB_ERR_NOMEM, "%s: out of memory for %zu bytes", name, want);
        src_read(src, buf, want);
        *data = buf;
        return NB_OK;
    }
    /* grow as data arrives: a lying header cannot make us allocate more
     * than the file holds (plus one chunk) */
    size_t cap = 0;
    while (got < want) {
        if (got == cap) {
            nb_status s = nb__grow_toward(&buf, &cap, want, name);
            if (s != NB_OK) return s;
        }
        size_t ask = cap - got;
        size_t r = src_read(src, buf + got, ask);
        got += r;
        if (r < ask) break; /* end of file */
    }
    if (got < want) {
        free(buf);
        return nb_err(NB_ERR_FORMAT, "%s: .npy data is %zu bytes but the shape and dtype "
                      "need %zu (truncated)", name, got, want);
    }
    unsigned char extra;
    if (src_read(src, &extra, 1)) {
        free(buf);
        return nb_err(NB_ERR_FORMAT, "%s: .npy data is longer than the %zu bytes the shape "
                      "and dtype need (trailing bytes)", name, want);
    }
    *data = buf;
    return NB_OK;
}

static nb_status read_npy(npy_src *src, nb_array *out) {
    const char *name = src->name;
    npy_header hd;
    nb_status s = read_header(src, &hd);
    if (s != NB_OK) return s;
    nb_dtype dtype;
    int swap, is_bool;
    if ((s = parse_descr(name, hd.descr, &dtype, &swap, &is_bool)) != NB_OK) return s;
    if (hd.fortran)
        return nb_err(NB_ERR_FORMAT, "%s: .npy array is in Fortran order; save it in C order "
                      "(numpy.ascontiguousarray)", name);
    size_t esize = nb_dtype_size(dtype);
    uint64_t numel = 1;
    for (int d = 0; d < hd.ndim; d++) {
        if (hd.dims[d] == 0)
            return nb_err(NB_ERR_FORMAT, "%s: .npy shape dimension %d is 0 (empty arrays are "
                          "not supported)", name, d);
        /* divide before multiplying, so the product cannot wrap around */
        if ((uint64_t)hd.dims[d] > NPY_MAX_BYTES / esize / numel)
            return nb_err(NB_ERR_FORMAT, "%s: .npy shape announces more than %llu bytes of "
                          "data", name, (unsigned long long)NPY_MAX_BYTES);
        numel *= (uint64_t)hd.dims[d];
    }
    size_t want = (size_t)numel * esize;
    unsigned char *buf = NULL;
    if ((s = read_npy_data(src, want, &buf)) != NB_OK) return s;
    if (is_bool)
        for (size_t k = 0; k < want; k++)
            if (buf[k] > 1) {
                nb_err(NB_ERR_FORMAT, "%s: .npy boolean element %zu holds %u (not 0 or 1)",
                       name, k, buf[k]);
                free(buf);
                return NB_ERR_FORMAT;
            }
    if (swap) swap_bytes(buf, (size_t)numel, esize);
    memset(out, 0, sizeof *out);
    out->dtype = dtype;
    out->ndim = hd.ndim;
    for (int d = 0; d < hd.ndim; d++) out->dims[d] = (int)hd.dims[d];
    out->numel = (size_t)numel;
    out->data = buf;
    return NB_OK;
}

nb_status nb_npy_parse(const void *data, size_t len, const char *name, nb_array *out) {
    if (!out) return nb_err(NB_ERR_ARG, "nb_npy_parse: out is NULL");
    memset(out, 0, sizeof *out);
    if (!data && len) return nb_err(NB_ERR_ARG, "nb_npy_parse: data is NULL");
    static const unsigned char empty[1] = {0};
    npy_src src = {data ? data : empty, len, 0, NULL, name ? name : "<npy>", 0};
    return read_npy(&src, out);
}

nb_status nb_npy_load(const char *path, nb_array *out) {
    if (!path || !out)
        return nb_err(NB_ERR_ARG, "nb_npy_load: %s is NULL", path ? "out" : "path");
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return nb_err(NB_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    npy_src src = {NULL, 0, 0, f, path, 0};
    nb_status s = read_npy(&src, out);
    fclose(f);
    if (src.err) { /* a failed read looks like a short file: say what really happened */
        nb_array_free(out);
        return nb_err(NB_ERR_IO, "%s: read error (%s)", path, strerror(src.err));
    }
    return s;
}
