/* Atomic replacement of files: write a temporary file in the target's
 * directory, fsync it, rename it over the target, fsync the directory.
 * rename() within one file system is atomic, so a reader (or a restart after
 * a crash) sees either the complete old file or the complete new one, never a
 * torn mix; the fsyncs make the new contents durable before the name points
 * at them.  POSIX only. */
#define _POSIX_C_SOURCE 200809L
#include "atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Directory part of path ("." when there is none), freshly allocated. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        char *d = malloc(2);
        if (d) memcpy(d, ".", 2);
        return d;
    }
    size_t len = slash == path ? 1 : (size_t)(slash - path); /* "/x" -> "/" */
    char *d = malloc(len + 1);
    if (!d) return NULL;
    memcpy(d, path, len);
    d[len] = '\0';
    return d;
}

/* Only a regular file is ever replaced: the rename would put the new file
 * in the place of a device, a FIFO or a directory (and of a symbolic link to
 * one). */
static nb_status not_regular(const char *path, unsigned mode) {
    const char *kind = S_ISDIR(mode)    ? "a directory"
                       : S_ISCHR(mode)  ? "a character device"
                       : S_ISBLK(mode)  ? "a block device"
                       : S_ISFIFO(mode) ? "a FIFO"
                       : S_ISSOCK(mode) ? "a socket"
                                        : "not a regular file";
    return nb_err(NB_ERR_IO, "%s: is %s; only a regular file is replaced", path, kind);
}

nb_status nb__afile_open(nb_afile *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    if (!path || !path[0]) return nb_err(NB_ERR_ARG, "write: empty file name");
    f->path = path;
    size_t len = strlen(path);
    if (path[len - 1] == '/') return nb_err(NB_ERR_ARG, "%s: is a directory name", path);
    struct stat st;
    if (stat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode)) return not_regular(path, st.st_mode);
        f->have_mode = 1;
        f->mode = (unsigned)(st.st_mode & 07777);
    }
    /* "<dir>/.<base>.tmp-XXXXXX": hidden, same directory, same file system */
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    f->tmp = malloc(len + 16);
    if (!f->tmp) return nb_err(NB_ERR_NOMEM, "%s: out of memory", path);
    snprintf(f->tmp, len + 16, "%.*s.%s.tmp-XXXXXX", (int)dirlen, path, path + dirlen);
    f->fd = mkstemp(f->tmp);
    if (f->fd < 0) {
        int e = errno;
        free(f->tmp);
        f->tmp = NULL;
        return nb_err(NB_ERR_IO, "%s: cannot create a temporary file in its directory (%s)",
                      path, strerror(e));
    }
    return NB_OK;
}

void nb__afile_abort(nb_afile *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp) unlink(f->tmp);
    free(f->tmp);
    f->tmp = NULL;
}

static nb_status fail(nb_afile *f, const char *what, int e) {
    nb_status s = nb_err(NB_ERR_IO, "%s: %s failed (%s); the previous file is unchanged",
                         f->path, what, strerror(e));
    nb__afile_abort(f);
    return s;
}

nb_status nb__afile_write(nb_afile *f, const void *p, size_t n) {
    if (f->fd < 0) return nb_err(NB_ERR_STATE, "%s: write after failure", f->path);
    const unsigned char *b = p;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t w = write(f->fd, b, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return fail(f, "write", errno);
        }
        if (w == 0) return fail(f, "write", EIO);
        b += w;
        n -= (size_t)w;
    }
    return NB_OK;
}

nb_status nb__afile_commit(nb_afile *f) {
    if (f->fd < 0) return nb_err(NB_ERR_STATE, "%s: commit after failure", f->path);
    if (fchmod(f->fd, f->have_mode ? (mode_t)f->mode : (mode_t)0644) != 0)
        return fail(f, "chmod", errno);
    if (fsync(f->fd) != 0) return fail(f, "fsync", errno);
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0) return fail(f, "close", errno);
    /* checked again at the last moment: the path may have changed meanwhile */
    struct stat st;
    if (stat(f->path, &st) == 0 && !S_ISREG(st.st_mode)) {
        nb_status s = not_regular(f->path, st.st_mode);
        nb__afile_abort(f);
        return s;
    }
    if (rename(f->tmp, f->path) != 0) return fail(f, "rename", errno);
    free(f->tmp);
    f->tmp = NULL;
    /* Make the rename itself durable.  Some file systems cannot fsync a
     * directory (EINVAL): the data is safe, only the name may be late. */
    char *dir = dir_of(f->path);
    if (!dir) return nb_err(NB_ERR_NOMEM, "%s: out of memory", f->path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    nb_status s = NB_OK;
    if (dfd >= 0) {
        if (fsync(dfd) != 0 && errno != EINVAL && errno != ENOTSUP)
            s = nb_err(NB_ERR_IO, "%s: written, but fsync of directory %s failed (%s)",
                       f->path, dir, strerror(errno));
        close(dfd);
    }
    free(dir);
    return s;
}
