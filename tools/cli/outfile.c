#define _POSIX_C_SOURCE 200809L
#include "outfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The target may be replaced only if it is a regular file or absent. */
static int replaceable(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return errno == ENOENT ? 1 : 0;
    if (S_ISREG(st.st_mode)) return 1;
    errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    return 0;
}

/* "DIR/.BASE.tmp-" of path: the prefix of its temporary files (malloc'ed). */
static char *temp_prefix(const char *path) {
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0, len = strlen(path) + 16;
    char *t = malloc(len);
    if (t) snprintf(t, len, "%.*s.%s.tmp-", (int)dirlen, path, path + dirlen);
    return t;
}

int outfile_temp(const char *path, char **tmp) {
    *tmp = NULL;
    if (!replaceable(path)) return -1;
    char *prefix = temp_prefix(path);
    char *t = prefix ? malloc(strlen(prefix) + 8) : NULL;
    if (!t) {
        free(prefix);
        errno = ENOMEM;
        return -1;
    }
    snprintf(t, strlen(prefix) + 8, "%sXXXXXX", prefix);
    free(prefix);
    int fd = mkstemp(t);
    if (fd < 0 || fchmod(fd, 0644) != 0) {
        int e = errno;
        if (fd >= 0) close(fd), unlink(t);
        free(t);
        errno = e;
        return -1;
    }
    close(fd);
    *tmp = t;
    return 0;
}

int outfile_replace(const char *tmp, const char *path) {
    int fd = open(tmp, O_RDONLY);
    int ok = fd >= 0 && fsync(fd) == 0;
    int e = errno;
    if (fd >= 0) close(fd);
    /* checked again at the last moment: never rename over a device or a FIFO */
    if (ok && !replaceable(path)) ok = 0, e = errno;
    if (ok && rename(tmp, path) != 0) ok = 0, e = errno;
    if (!ok) {
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

FILE *outfile_open(outfile *o, const char *path) {
    memset(o, 0, sizeof *o);
    o->path = path;
    if (outfile_temp(path, &o->tmp) != 0) return NULL;
    o->f = fopen(o->tmp, "w");
    if (!o->f) {
        int e = errno;
        unlink(o->tmp);
        free(o->tmp);
        o->tmp = NULL;
        errno = e;
    }
    return o->f;
}

int outfile_commit(outfile *o) {
    int ok = fflush(o->f) == 0 && !ferror(o->f);
    int e = errno;
    if (fclose(o->f) != 0 && ok) ok = 0, e = errno;
    o->f = NULL;
    if (ok && outfile_replace(o->tmp, o->path) != 0) ok = 0, e = errno;
    else if (!ok) unlink(o->tmp);
    free(o->tmp);
    o->tmp = NULL;
    errno = e;
    return ok ? 0 : -1;
}

void outfile_abort(outfile *o) {
    if (o->f) fclose(o->f);
    if (o->tmp) unlink(o->tmp);
    free(o->tmp);
    memset(o, 0, sizeof *o);
}

/* Is name PREFIX followed by the 6 letters or digits mkstemp adds? */
static int is_temp_of(const char *name, const char *prefix) {
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0 || strlen(name) != n + 6) return 0;
    for (const char *p = name + n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return 0;
    return 1;
}

void outfile_remove_stale(const char *path) {
    char *prefix = temp_prefix(path);
    if (!prefix) return;
    char *slash = strrchr(prefix, '/');
    const char *base = slash ? slash + 1 : prefix;
    if (slash) *slash = '\0';
    DIR *d = opendir(slash ? (prefix[0] ? prefix : "/") : ".");
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!is_temp_of(e->d_name, base)) continue;
        size_t len = strlen(prefix) + strlen(e->d_name) + 2;
        char *full = malloc(len);
        if (!full) break;
        snprintf(full, len, "%s%s%s", slash ? prefix : "", slash ? "/" : "", e->d_name);
        struct stat st;
        if (lstat(full, &st) == 0 && S_ISREG(st.st_mode)) unlink(full);
        free(full);
    }
    if (d) closedir(d);
    free(prefix);
}
