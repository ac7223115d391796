#define _DEFAULT_SOURCE /* realpath, flock */
#include "outputs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "outfile.h"

void cli_files_init(cli_files *fs) {
    memset(fs, 0, sizeof *fs);
}

static char *dup_str(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* The canonical name of a file that may not exist yet: its directory
 * resolved (symbolic links, "..") and its own name appended. */
static char *normalise(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? dup_str(path, slash == path ? 1 : (size_t)(slash - path)) : dup_str(".", 1);
    const char *base = slash ? slash + 1 : path;
    char *real = dir ? realpath(dir, NULL) : NULL;
    free(dir);
    if (!real) return NULL;
    size_t len = strlen(real) + strlen(base) + 2;
    char *n = malloc(len);
    if (n) snprintf(n, len, "%s/%s", strcmp(real, "/") == 0 ? "" : real, base);
    free(real);
    return n;
}

static void add(cli_files *fs, const char *flag, const char *path, size_t len, int output) {
    if (fs->n >= CLI_MAX_FILES || len == 0) return;
    cli_file *f = &fs->f[fs->n];
    memset(f, 0, sizeof *f);
    f->lock_fd = -1;
    f->flag = flag;
    f->output = output;
    if (!(f->path = dup_str(path, len))) return;
    struct stat st;
    if (stat(f->path, &st) == 0) {
        f->exists = 1;
        f->dev = st.st_dev;
        f->ino = st.st_ino;
    }
    f->norm = normalise(f->path);
    fs->n++;
}

void cli_files_input(cli_files *fs, const char *flag, const char *path) {
    if (path) add(fs, flag, path, strlen(path), 0);
}

void cli_files_output(cli_files *fs, const char *flag, const char *path) {
    if (path) add(fs, flag, path, strlen(path), 1);
}

/* Every file a data source may name: the text after "kind:", without its
 * trailing ",key=value" options, whole (a CSV path may hold commas) and
 * split at its commas ("idx:IMAGES,LABELS").  Names that are no file are
 * harmless: only existing inputs can be overwritten. */
void cli_files_data(cli_files *fs, const char *flag, const char *spec) {
    if (!spec) return;
    const char *colon = strchr(spec, ':'), *p = colon ? colon + 1 : spec;
    size_t len = strlen(p);
    for (;;) {
        const char *last = NULL;
        for (const char *c = p; c < p + len; c++)
            if (*c == ',') last = c;
        if (!last || !memchr(last, '=', (size_t)(p + len - last))) break;
        len = (size_t)(last - p);
    }
    add(fs, flag, p, len, 0);
    if (colon) add(fs, flag, spec, strlen(spec), 0); /* a file name with a colon */
    for (const char *s = p, *end = p + len; s < end;) {
        const char *c = memchr(s, ',', (size_t)(end - s));
        size_t n = c ? (size_t)(c - s) : (size_t)(end - s);
        if (c) add(fs, flag, s, n, 0);
        s += n + 1;
    }
}

void cli_files_may_rewrite(cli_files *fs, const char *in_flag, const char *out_flag) {
    for (int i = 0; i < fs->n; i++)
        if (!fs->f[i].output && strcmp(fs->f[i].flag, in_flag) == 0)
            fs->f[i].rewritten_by = out_flag;
}

static int same_file(const cli_file *a, const cli_file *b) {
    if (a->exists && b->exists) return a->dev == b->dev && a->ino == b->ino;
    return a->norm && b->norm && strcmp(a->norm, b->norm) == 0;
}

int cli_files_check(cli_files *fs, const char *cmd) {
    for (int i = 0; i < fs->n; i++) {
        const cli_file *o = &fs->f[i];
        if (!o->output) continue;
        for (int j = 0; j < fs->n; j++) {
            const cli_file *x = &fs->f[j];
            if (j == i || !same_file(o, x)) continue;
            if (!x->output && x->rewritten_by && strcmp(x->rewritten_by, o->flag) == 0) continue;
            if (x->output && j > i) continue; /* reported once, in flag order */
            if (x->output)
                return cli_usage_error(cmd, "%s %s and %s %s are the same file; give each "
                                       "output its own name", x->flag, x->path, o->flag, o->path);
            return cli_usage_error(cmd, "%s %s is the same file as %s %s; an output must not "
                                   "replace an input", o->flag, o->path, x->flag, x->path);
        }
    }
    return 0;
}

/* Lock "PATH.lock" without waiting.  The run that held it may have removed it
 * just before: the lock counts only if the file locked is still the one on
 * disk. */
static int lock_one(cli_file *f, const char *cmd) {
    size_t len = strlen(f->path) + 6;
    if (!(f->lock_path = malloc(len))) return cli_fail(cmd, "out of memory");
    snprintf(f->lock_path, len, "%s.lock", f->path);
    for (int attempt = 0; attempt < 10; attempt++) {
        int fd = open(f->lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
        struct stat st, now;
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            int e = fd < 0 ? errno : EINVAL;
            if (fd >= 0) close(fd);
            return cli_fail(cmd, "%s %s: cannot use the lock file %s (%s)", f->flag, f->path,
                            f->lock_path, e == EINVAL ? "not a regular file" : strerror(e));
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            char pid[32] = "";
            ssize_t n = read(fd, pid, sizeof pid - 1);
            pid[n > 0 ? n : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            close(fd);
            if (e == EWOULDBLOCK)
                return cli_fail(cmd, "%s %s is being written by another run (process %s "
                                "holds its lock file %s); wait for it or choose another name",
                                f->flag, f->path, pid[0] ? pid : "?", f->lock_path);
            return cli_fail(cmd, "%s %s: cannot lock %s (%s)", f->flag, f->path, f->lock_path,
                            strerror(e));
        }
        if (stat(f->lock_path, &now) == 0 && now.st_dev == st.st_dev && now.st_ino == st.st_ino) {
            char pid[32];
            int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) != 0 || write(fd, pid, (size_t)n) != n) {
                /* the pid is only for the message of another run */
            }
            f->lock_fd = fd;
            return 0;
        }
        close(fd);
    }
    return cli_fail(cmd, "%s %s: cannot lock %s (it keeps being replaced)", f->flag, f->path,
                    f->lock_path);
}

int cli_files_lock(cli_files *fs, const char *cmd) {
    for (int i = 0; i < fs->n; i++)
        if (fs->f[i].output && lock_one(&fs->f[i], cmd)) return 1;
    /* only now, with every output ours: no other run is writing them */
    for (int i = 0; i < fs->n; i++)
        if (fs->f[i].output) outfile_remove_stale(fs->f[i].path);
    return 0;
}

void cli_files_release(cli_files *fs) {
    for (int i = 0; i < fs->n; i++) {
        cli_file *f = &fs->f[i];
        if (f->lock_fd >= 0) {
            unlink(f->lock_path); /* while still locked: see lock_one */
            close(f->lock_fd);
        }
        free(f->lock_path);
        free(f->path);
        free(f->norm);
    }
    fs->n = 0;
}
