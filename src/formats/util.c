/* Text and file helpers shared by the loaders: quoting of untrusted text
 * for error messages, reading a whole file; memory for samples. */
#include "io.h"
#include "utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

unsigned char *nb__alloc_samples(size_t bytes) {
    unsigned char *p = malloc(bytes ? bytes : 1);
    nb__prefer_huge_pages(p, bytes);
    return p;
}

unsigned char *nb__move_to_samples(unsigned char *buf, size_t bytes) {
    unsigned char *p = nb__alloc_samples(bytes);
    if (!p) return buf;
    const size_t piece = (size_t)2 << 20;
    for (size_t at = 0; at < bytes; at += piece) {
        size_t n = bytes - at < piece ? bytes - at : piece;
        memcpy(p + at, buf + at, n);
        nb__release_pages(buf + at, n); /* whole pages only: the allocator's ends stay */
    }
    free(buf);
    return p;
}

const char *nb__quote(char *dst, size_t cap, const char *s, size_t len, size_t max_bytes) {
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0;
    if (!cap) return dst;
    while (i < len && i < max_bytes) {
        size_t k = nb__utf8_seq(p + i, len - i);
        char tmp[8];
        size_t tlen;
        if (k == 1 && p[i] >= 0x20 && p[i] != 0x7F) {
            tmp[0] = (char)p[i];
            tlen = 1;
        } else if (k > 1) {
            memcpy(tmp, p + i, k);
            tlen = k;
        } else {
            snprintf(tmp, sizeof tmp, "\\x%02x", p[i]);
            tlen = 4;
            k = 1;
        }
        if (o + tlen + 4 > cap) break; /* keep room for "..." and the terminator */
        memcpy(dst + o, tmp, tlen);
        o += tlen;
        i += k;
    }
    if (i < len && o + 4 <= cap) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
    return dst;
}

nb_status nb__read_file(const char *path, size_t max_bytes, char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    if (max_bytes > SIZE_MAX / 2) max_bytes = SIZE_MAX / 2;
    gzFile f = gzopen(path, "rb");
    if (!f) return nb_err(NB_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    size_t cap = 0, got = 0;
    char *data = NULL;
    for (;;) {
        if (got == cap) {
            if (cap > max_bytes) { /* cap = max_bytes + 1 was filled: too large */
                free(data);
                gzclose(f);
                return nb_err(NB_ERR_FORMAT, "%s: larger than the limit of %zu bytes", path,
                              max_bytes);
            }
            size_t ncap = cap ? cap * 2 : (1u << 16);
            if (ncap > max_bytes || ncap < cap) ncap = max_bytes + 1; /* +1: detects excess */
            char *nd = realloc(data, ncap + 1);
            if (!nd) {
                free(data);
                gzclose(f);
                return nb_err(NB_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, ncap);
            }
            data = nd;
            cap = ncap;
        }
        size_t ask = cap - got;
        if (ask > (1u << 30)) ask = 1u << 30;
        int r = gzread(f, data + got, (unsigned)ask);
        if (r < 0) {
            int code = 0;
            const char *msg = gzerror(f, &code);
            nb_status s = nb_err(code == Z_ERRNO ? NB_ERR_IO : NB_ERR_FORMAT,
                                 "%s: read error (%s)", path,
                                 code == Z_ERRNO ? strerror(errno) : msg);
            free(data);
            gzclose(f);
            return s;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    int code = 0;
    gzerror(f, &code);
    gzclose(f);
    if (code == Z_BUF_ERROR) { /* the gzip stream ended early */
        free(data);
        return nb_err(NB_ERR_FORMAT, "%s: truncated compressed data", path);
    }
    if (!data) { /* empty file */
        data = malloc(1);
        if (!data) return nb_err(NB_ERR_NOMEM, "%s: out of memory", path);
    }
    data[got] = '\0';
    *buf = data;
    *len = got;
    return NB_OK;
}

nb_status nb__grow_toward(unsigned char **buf, size_t *cap, size_t want, const char *name) {
    size_t ncap = *cap ? *cap * 2 : (1u << 20);
    if (ncap > want) ncap = want;
    unsigned char *nbuf = realloc(*buf, ncap);
    if (!nbuf) {
        free(*buf);
        *buf = NULL;
        return nb_err(NB_ERR_NOMEM, "%s: out of memory for %zu bytes", name, ncap);
    }
    *buf = nbuf;
    *cap = ncap;
    return NB_OK;
}
