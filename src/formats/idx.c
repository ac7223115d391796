/* IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed.
 *
 * Layout: two zero bytes, a type byte, the number of dimensions, one
 * big-endian u32 per dimension, then the row-major big-endian data.  Every
 * field is checked against the file before anything is trusted: the data
 * buffer grows only as bytes actually arrive, so a header announcing a huge
 * tensor in a tiny file costs nothing before it is reported as truncated. */
#include "io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Largest data section accepted (bytes): far above any real IDX file. */
#define IDX_MAX_BYTES ((uint64_t)1 << 34)

static int idx_dtype(int code, nb_dtype *t) {
    switch (code) {
    case 0x08: *t = NB_U8; return 1;
    case 0x09: *t = NB_I8; return 1;
    case 0x0B: *t = NB_I16; return 1;
    case 0x0C: *t = NB_I32; return 1;
    case 0x0D: *t = NB_F32; return 1;
    case 0x0E: *t = NB_F64; return 1;
    }
    return 0;
}

/* Read exactly n bytes; returns the count actually read, or -1 on a gzip error. */
static long read_full(gzFile f, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        size_t chunk = n - got > (1u << 30) ? (1u << 30) : n - got;
        int r = gzread(f, (char *)buf + got, (unsigned)chunk);
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (long)got;
}

static nb_status gz_error(gzFile f, const char *path) {
    int code = 0;
    const char *msg = gzerror(f, &code);
    if (code == Z_ERRNO) return nb_err(NB_ERR_IO, "%s: read error (%s)", path, strerror(errno));
    return nb_err(NB_ERR_FORMAT, "%s: corrupt compressed data (%s)", path,
                  msg && msg[0] ? msg : "zlib error");
}

/* Swap big-endian elements of size sz to host order in place. */
static void from_big_endian(unsigned char *p, size_t count, size_t sz) {
    const uint16_t probe = 1;
    if (sz == 1 || *(const unsigned char *)&probe == 0) return; /* bytes, or big-endian host */
    for (size_t k = 0; k < count; k++, p += sz)
        for (size_t i = 0; i < sz / 2; i++) {
            unsigned char t = p[i];
            p[i] = p[sz - 1 - i];
            p[sz - 1 - i] = t;
        }
}

/* The 4-byte magic (zeros, element type, ndim) and the dimensions. */
static nb_status read_idx_header(gzFile f, const char *path, nb_array *shape) {
    unsigned char head[4];
    long r = read_full(f, head, 4);
    if (r < 0) return gz_error(f, path);
    if (r < 4) return nb_err(NB_ERR_FORMAT, "%s: truncated IDX header (%ld of 4 bytes)", path, r);
    if (head[0] != 0 || head[1] != 0)
        return nb_err(NB_ERR_FORMAT, "%s: not an IDX file (magic %02x %02x %02x %02x; expected "
                      "00 00 <type> <ndim>)", path, head[0], head[1], head[2], head[3]);
    if (!idx_dtype(head[2], &shape->dtype))
        return nb_err(NB_ERR_FORMAT, "%s: unknown IDX element type 0x%02x (known: 08 09 0B 0C "
                      "0D 0E)", path, head[2]);
    int ndim = head[3];
    if (ndim < 1 || ndim > NB_MAX_DIMS)
        return nb_err(NB_ERR_FORMAT, "%s: IDX file has %d dimensions (1 to %d supported)", path,
                      ndim, NB_MAX_DIMS);
    unsigned char dbytes[4 * NB_MAX_DIMS];
    r = read_full(f, dbytes, 4 * (size_t)ndim);
    if (r < 0) return gz_error(f, path);
    if (r < 4 * ndim)
        return nb_err(NB_ERR_FORMAT, "%s: truncated IDX header (%d dimensions announced)", path,
                      ndim);
    size_t esize = nb_dtype_size(shape->dtype);
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        const unsigned char *p = dbytes + 4 * d;
        uint32_t v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (v == 0 || v > (uint32_t)INT32_MAX)
            return nb_err(NB_ERR_FORMAT, "%s: IDX dimension %d is %u (must be 1 to %d)", path, d,
                          v, INT32_MAX);
        /* divide before multiplying: numel * v could wrap around 2^64 */
        if (v > IDX_MAX_BYTES / esize / numel)
            return nb_err(NB_ERR_FORMAT, "%s: IDX dimensions announce more than %llu bytes of "
                          "data", path, (unsigned long long)IDX_MAX_BYTES);
        numel *= v;
        shape->dims[d] = (int)v;
    }
    shape->ndim = ndim;
    shape->numel = (size_t)numel;
    return NB_OK;
}

/* Exactly want bytes of data, nothing after them, into *data (malloc'ed). */
static nb_status read_idx_data(gzFile f, const char *path, size_t want, unsigned char **data) {
    /* Grow the buffer as data arrives, so a lying header cannot make us
     * allocate more than the file really holds (plus one chunk). */
    size_t cap = 0, got = 0;
    unsigned char *buf = NULL;
    long r;
    while (got < want) {
        if (got == cap) {
            nb_status s = nb__grow_toward(&buf, &cap, want, path);
            if (s != NB_OK) return s;
        }
        size_t ask = cap - got;
        r = read_full(f, buf + got, ask);
        if (r < 0) {
            free(buf);
            return gz_error(f, path);
        }
        got += (size_t)r;
        if ((size_t)r < ask) break; /* end of file */
    }
    if (got < want) {
        free(buf);
        return nb_err(NB_ERR_FORMAT, "%s: truncated IDX data: header announces %zu bytes, "
                      "file holds %zu", path, want, got);
    }
    unsigned char extra;
    r = read_full(f, &extra, 1);
    if (r != 0) {
        free(buf);
        if (r < 0) return gz_error(f, path);
        return nb_err(NB_ERR_FORMAT, "%s: trailing bytes after the %zu bytes of IDX data the "
                      "header announces", path, want);
    }
    *data = buf;
    return NB_OK;
}

static nb_status read_idx(gzFile f, const char *path, nb_array *out) {
    nb_array a;
    memset(&a, 0, sizeof a);
    nb_status s = read_idx_header(f, path, &a);
    if (s != NB_OK) return s;
    size_t esize = nb_dtype_size(a.dtype);
    unsigned char *buf = NULL;
    s = read_idx_data(f, path, a.numel * esize, &buf);
    if (s != NB_OK) return s;
    from_big_endian(buf, a.numel, esize);
    a.data = buf;
    *out = a;
    return NB_OK;
}

nb_status nb_idx_load(const char *path, nb_array *out) {
    if (!path || !out) return nb_err(NB_ERR_ARG, "nb_idx_load: %s is NULL", path ? "out" : "path");
    gzFile f = gzopen(path, "rb");
    if (!f) return nb_err(NB_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    nb_status s = read_idx(f, path, out);
    gzclose(f);
    return s;
}
