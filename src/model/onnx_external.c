/* ONNX external data (docs/onnx.md, "Import"): a tensor whose bytes are in
 * another file, named by its external_data entries "location" (relative to
 * the model file's directory), "offset" and "length", as torch.onnx.export
 * of PyTorch 2.x writes every large tensor by default.  The file must be a
 * regular file under that directory (no absolute path, no "..", no symbolic
 * link on the way), and hold the tensor's bytes exactly. */
#define _POSIX_C_SOURCE 200809L /* pread, openat, O_NOFOLLOW, O_DIRECTORY, O_CLOEXEC */
#include "../core/internal.h"

#ifdef NB_HAVE_ONNX

#include "onnx_import.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { MAX_LOCATION = 1024 };

/* A decimal count of bytes, as the entries store them; -1 if it is not one. */
static int64_t byte_count(const char *s) {
    int64_t v = 0;
    if (!s || !*s) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* A location that stays under the model's directory. */
static int location_ok(const char *loc) {
    size_t n = strlen(loc);
    if (!n || n > MAX_LOCATION || loc[0] == '/') return 0;
    for (const char *p = loc; *p; p += strcspn(p, "/"), p += *p == '/') {
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.') return 0;
    }
    return 1;
}

/* The entries of t: location (required), offset and length (-1: absent). */
static nb_status entries(importer *im, const Onnx__TensorProto *t, const char *what,
                         const char **loc, int64_t *offset, int64_t *length) {
    *loc = NULL, *offset = 0, *length = -1;
    for (size_t k = 0; k < t->n_external_data; k++) {
        const Onnx__StringStringEntryProto *e = t->external_data[k];
        const char *key = imp_str(e->key), *value = imp_str(e->value);
        if (!strcmp(key, "location")) *loc = value;
        else if (!strcmp(key, "offset") && (*offset = byte_count(value)) < 0)
            return imp_fail(im, NULL, "%s: external data offset '%s' is not a byte count",
                            what, imp_q(im, value));
        else if (!strcmp(key, "length") && (*length = byte_count(value)) < 0)
            return imp_fail(im, NULL, "%s: external data length '%s' is not a byte count",
                            what, imp_q(im, value));
    }
    if (!*loc) return imp_fail(im, NULL, "%s: external data without a location", what);
    if (!location_ok(*loc))
        return imp_fail(im, NULL, "%s: external data location '%s' must be a path under the "
                        "model's directory (relative, without '..')", what, imp_q(im, *loc));
    if (t->has_raw_data)
        return imp_fail(im, NULL, "%s: both raw_data and external data", what);
    return NB_OK;
}

/* loc opened from dir one component at a time, none of them followed if it
 * is a symbolic link (a link anywhere on the way is ELOOP). */
static int open_beneath(const char *dir, const char *loc) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char part[MAX_LOCATION + 1];
    for (const char *p = loc; fd >= 0 && *p;) {
        size_t n = strcspn(p, "/");
        int last = !p[n] || !p[n + strspn(p + n, "/")];
        memcpy(part, p, n);
        part[n] = '\0';
        p += n + strspn(p + n, "/");
        if (!n) continue;
        int next = openat(fd, part, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
                                        (last ? O_NONBLOCK : O_DIRECTORY));
        int e = errno;
        struct stat st; /* a link to a directory fails as "not a directory" */
        if (next < 0 && e == ENOTDIR && fstatat(fd, part, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(st.st_mode))
            e = ELOOP;
        close(fd);
        errno = e;
        fd = next;
    }
    return fd;
}

/* The path a location names, as messages and nb_onnx_external_data show it. */
static const char *data_path(importer *im, const char *loc) {
    return imp_strf(im, "%s/%s", im->dir, loc);
}

static nb_status read_at(importer *im, const char *what, int fd, const char *path,
                         int64_t offset, size_t n, uint8_t *out) {
    for (size_t done = 0; done < n;) {
        ssize_t got = pread(fd, out + done, n - done, (off_t)(offset + (int64_t)done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0)
            return imp_fail(im, NULL, "%s: external data '%s': %s", what, imp_q(im, path),
                            got < 0 ? strerror(errno) : "shorter than it was");
        done += (size_t)got;
    }
    return NB_OK;
}

nb_status imp_external_data(importer *im, const Onnx__TensorProto *t, const char *what,
                            size_t want, uint8_t **out) {
    const char *loc;
    int64_t offset, length;
    *out = NULL;
    nb_status s = entries(im, t, what, &loc, &offset, &length);
    if (s != NB_OK) return s;
    if (!im->dir)
        return imp_fail(im, NULL, "%s: its data is in the file '%s' beside the model; load "
                        "the model from its file (nb_model_from_onnx) to read it", what,
                        imp_q(im, loc));
    const char *path = data_path(im, loc);
    if (!path) return im->err;
    int fd = open_beneath(im->dir, loc);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = fd < 0 ? errno : 0;
        if (fd >= 0) close(fd);
        return imp_fail(im, NULL, "%s: external data '%s': %s", what, imp_q(im, path),
                        e == ELOOP ? "a symbolic link, which is not followed"
                        : e ? strerror(e) : "not a regular file");
    }
    int64_t have = (int64_t)st.st_size - offset;
    if (length < 0) length = have < 0 ? 0 : have;
    if (length != (int64_t)want || have < length) {
        close(fd);
        if (length != (int64_t)want)
            return imp_fail(im, NULL, "%s: external data '%s' holds %lld bytes at offset %lld; "
                            "its shape needs %zu", what, imp_q(im, path), (long long)length,
                            (long long)offset, want);
        return imp_fail(im, NULL, "%s: external data '%s' is %lld bytes long: its %zu bytes "
                        "at offset %lld run past the end", what, imp_q(im, path),
                        (long long)st.st_size, want, (long long)offset);
    }
    uint8_t *buf = malloc(want ? want : 1);
    s = buf ? read_at(im, what, fd, path, offset, want, buf) : imp_oom(im);
    close(fd);
    if (s != NB_OK) free(buf);
    else *out = buf;
    return s;
}

/* Add tensor t's file to files unless it is there. */
static nb_status add_file(importer *im, const Onnx__TensorProto *t, const char *what,
                          nb_kv **files, int *n) {
    const char *loc;
    int64_t offset, length;
    nb_status s = entries(im, t, what, &loc, &offset, &length);
    const char *path = s == NB_OK ? data_path(im, loc) : NULL;
    if (!path) return s != NB_OK ? s : im->err;
    for (int k = 0; k < *n; k++)
        if (!strcmp((*files)[k].value, path)) return NB_OK;
    nb_kv *grown = realloc(*files, ((size_t)*n + 1) * sizeof *grown);
    if (!grown) return imp_oom(im);
    *files = grown;
    char *key = strdup(loc), *value = strdup(path);
    if (!key || !value) return free(key), free(value), imp_oom(im);
    grown[(*n)++] = (nb_kv){key, value};
    return NB_OK;
}

static int external(const Onnx__TensorProto *t) {
    return t && t->has_data_location &&
           t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}

nb_status imp_external_files(importer *im, nb_kv **files, int *n) {
    const Onnx__GraphProto *gp = im->m->graph;
    nb_status s = NB_OK;
    for (size_t k = 0; gp && s == NB_OK && k < gp->n_initializer; k++)
        if (external(gp->initializer[k]))
            s = add_file(im, gp->initializer[k], imp_strf(im, "initializer '%s'",
                         imp_q(im, gp->initializer[k]->name)), files, n);
    for (size_t k = 0; gp && s == NB_OK && k < gp->n_node; k++)
        for (size_t a = 0; s == NB_OK && a < gp->node[k]->n_attribute; a++)
            if (external(gp->node[k]->attribute[a]->t))
                s = add_file(im, gp->node[k]->attribute[a]->t, imp_strf(im, "node '%s'",
                             imp_q(im, gp->node[k]->name)), files, n);
    if (s != NB_OK) nb_kv_free(*files, *n), *files = NULL, *n = 0;
    return s;
}

#endif
