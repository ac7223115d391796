/* TensorBoard event files (docs/tensorboard.md): TFRecord records
 * (tfrecord.c) of Event messages (tensorboard.proto, packed by protobuf-c),
 * the first carrying file_version "brain.Event:2", every other one a scalar
 * summary.  Records are gathered in memory and written whole, so a file cut
 * short by a kill still ends with a complete record (short of a kill during
 * the write itself, which TensorBoard reads as a truncated last record).
 * Built in when CMake found protobuf-c (NB_HAVE_PROTOBUF_C). */
#define _POSIX_C_SOURCE 200809L
#include "../core/internal.h"
#include "tfrecord.h"
#include "utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef NB_HAVE_PROTOBUF_C
#include "tensorboard.pb-c.h"
#endif

int nb_tb_available(void) {
#ifdef NB_HAVE_PROTOBUF_C
    return 1;
#else
    return 0;
#endif
}

#ifndef NB_HAVE_PROTOBUF_C

#define NEEDS_PROTOBUF_C                                                                        \
    nb_err(NB_ERR_STATE, "TensorBoard event files need protobuf-c: this nabla was built "      \
           "without it (install protobuf-c-compiler and libprotobuf-c-dev, e.g. make deps, and " \
           "rebuild)")

nb_status nb_tb_open(const char *dir, nb_tb_writer **out) {
    (void)dir;
    if (out) *out = NULL;
    return NEEDS_PROTOBUF_C;
}
nb_status nb_tb_create(const char *path, double wall_time, nb_tb_writer **out) {
    (void)path, (void)wall_time;
    if (out) *out = NULL;
    return NEEDS_PROTOBUF_C;
}
const char *nb_tb_path(const nb_tb_writer *w) { return (void)w, ""; }
nb_status nb_tb_scalar(nb_tb_writer *w, const char *tag, int64_t step, double value,
                       double wall_time) {
    (void)w, (void)tag, (void)step, (void)value, (void)wall_time;
    return NEEDS_PROTOBUF_C;
}
nb_status nb_tb_flush(nb_tb_writer *w) { return (void)w, NEEDS_PROTOBUF_C; }
nb_status nb_tb_close(nb_tb_writer *w) { return (void)w, NB_OK; }

#else

#define FLUSH_AT ((size_t)1 << 16) /* bytes gathered before they are written */

struct nb_tb_writer {
    int fd;
    char *path;
    unsigned char *buf;
    size_t len, cap;
    int failed; /* a write failed: the file may end in a partial record */
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

const char *nb_tb_path(const nb_tb_writer *w) { return w ? w->path : ""; }

nb_status nb_tb_flush(nb_tb_writer *w) {
    if (!w) return nb_err(NB_ERR_ARG, "TensorBoard writer: NULL");
    if (w->failed) return nb_err(NB_ERR_IO, "%s: an earlier write failed", w->path);
    size_t done = 0;
    while (done < w->len) {
        ssize_t k = write(w->fd, w->buf + done, w->len - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            w->failed = 1;
            return nb_err(NB_ERR_IO, "%s: %s", w->path, k < 0 ? strerror(errno) : "write failed");
        }
        done += (size_t)k;
    }
    w->len = 0;
    return NB_OK;
}

/* Frame the packed event as one record at the end of the buffer. */
static nb_status append_event(nb_tb_writer *w, const Tensorboard__Event *ev) {
    size_t n = tensorboard__event__get_packed_size(ev);
    size_t need = w->len + NB_TFRECORD_HEAD + n + NB_TFRECORD_TAIL;
    if (need > w->cap) {
        size_t cap = need > 2 * w->cap ? need : 2 * w->cap;
        unsigned char *b = realloc(w->buf, cap);
        if (!b) return nb_err(NB_ERR_NOMEM, "%s: out of memory for a record", w->path);
        w->buf = b;
        w->cap = cap;
    }
    unsigned char *rec = w->buf + w->len;
    nb__tfrecord_head(n, rec);
    tensorboard__event__pack(ev, rec + NB_TFRECORD_HEAD);
    nb__tfrecord_tail(rec + NB_TFRECORD_HEAD, n, rec + NB_TFRECORD_HEAD + n);
    w->len = need;
    return w->len >= FLUSH_AT ? nb_tb_flush(w) : NB_OK;
}

nb_status nb_tb_scalar(nb_tb_writer *w, const char *tag, int64_t step, double value,
                       double wall_time) {
    if (!w || !tag) return nb_err(NB_ERR_ARG, "TensorBoard scalar: NULL writer or tag");
    if (!tag[0] || !nb__utf8_valid(tag, strlen(tag)))
        return nb_err(NB_ERR_ARG, "%s: a scalar's tag must be non-empty UTF-8 text", w->path);
    if (w->failed) return nb_err(NB_ERR_IO, "%s: an earlier write failed", w->path);
    Tensorboard__Summary__Value val = TENSORBOARD__SUMMARY__VALUE__INIT;
    val.tag = (char *)tag;
    val.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
    val.simple_value = (float)value;
    Tensorboard__Summary__Value *vals[1] = {&val};
    Tensorboard__Summary sum = TENSORBOARD__SUMMARY__INIT;
    sum.n_value = 1;
    sum.value = vals;
    Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
    ev.wall_time = wall_time > 0 ? wall_time : now();
    ev.step = step;
    ev.what_case = TENSORBOARD__EVENT__WHAT_SUMMARY;
    ev.summary = &sum;
    return append_event(w, &ev);
}

nb_status nb_tb_close(nb_tb_writer *w) {
    if (!w) return NB_OK;
    nb_status s = w->len ? nb_tb_flush(w) : NB_OK;
    if (close(w->fd) != 0 && s == NB_OK)
        s = nb_err(NB_ERR_IO, "%s: %s", w->path, strerror(errno));
    free(w->buf);
    free(w->path);
    free(w);
    return s;
}

/* A new file at path (never an existing one), starting with the version
 * record, written at once so that even an empty log is a valid file. */
static nb_status create_at(const char *path, double wall_time, nb_tb_writer **out) {
    nb_tb_writer *w = calloc(1, sizeof *w);
    char *p = malloc(strlen(path) + 1);
    if (!w || !p) {
        free(w), free(p);
        return nb_err(NB_ERR_NOMEM, "%s: out of memory", path);
    }
    w->path = strcpy(p, path);
    w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        int e = errno;
        free(p), free(w);
        nb_status s = nb_err(NB_ERR_IO, "%s: %s", path, strerror(e));
        errno = e; /* EEXIST: nb_tb_open tries another name */
        return s;
    }
    Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
    ev.wall_time = wall_time > 0 ? wall_time : now();
    ev.what_case = TENSORBOARD__EVENT__WHAT_FILE_VERSION;
    ev.file_version = "brain.Event:2";
    nb_status s = append_event(w, &ev);
    if (s == NB_OK) s = nb_tb_flush(w);
    if (s != NB_OK) {
        nb_tb_close(w);
        unlink(path);
        return s;
    }
    *out = w;
    return NB_OK;
}

nb_status nb_tb_create(const char *path, double wall_time, nb_tb_writer **out) {
    if (!out) return nb_err(NB_ERR_ARG, "nb_tb_create: NULL result pointer");
    *out = NULL;
    if (!path || !path[0]) return nb_err(NB_ERR_ARG, "TensorBoard event file: no path given");
    return create_at(path, wall_time, out);
}

/* dir and its missing parents, as mkdir -p. */
static nb_status make_dirs(const char *dir) {
    char *p = malloc(strlen(dir) + 1);
    if (!p) return nb_err(NB_ERR_NOMEM, "%s: out of memory", dir);
    strcpy(p, dir);
    for (char *c = p + 1;; c++) {
        if (*c != '/' && *c != '\0') continue;
        char end = *c;
        *c = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            nb_status s = nb_err(NB_ERR_IO, "%s: cannot create the directory: %s", p,
                                 strerror(errno));
            free(p);
            return s;
        }
        *c = end;
        if (!end) break;
    }
    free(p);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return nb_err(NB_ERR_IO, "%s: not a directory", dir);
    return NB_OK;
}

/* DIR/events.out.tfevents.<unix time>.<host>; another writer's file of the
 * same second gets a new one with a suffix .1, .2, ... */
nb_status nb_tb_open(const char *dir, nb_tb_writer **out) {
    if (!out) return nb_err(NB_ERR_ARG, "nb_tb_open: NULL result pointer");
    *out = NULL;
    if (!dir || !dir[0]) return nb_err(NB_ERR_ARG, "TensorBoard log directory: none given");
    nb_status s = make_dirs(dir);
    if (s != NB_OK) return s;
    char host[256] = "localhost";
    if (gethostname(host, sizeof host) != 0 || !host[0]) strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    double t = now();
    size_t size = strlen(dir) + strlen(host) + 64;
    char *path = malloc(size);
    if (!path) return nb_err(NB_ERR_NOMEM, "%s: out of memory", dir);
    for (int n = 0; n < 1000; n++) {
        int k = snprintf(path, size, "%s/events.out.tfevents.%lld.%s", dir, (long long)t, host);
        if (n) snprintf(path + k, size - (size_t)k, ".%d", n);
        s = create_at(path, t, out);
        if (s == NB_OK || errno != EEXIST) break;
    }
    free(path);
    return s;
}

#endif
