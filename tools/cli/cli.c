#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Is s[0..] "nb_NAME: ", the library function a message comes from? */
static size_t function_prefix(const char *s) {
    if (strncmp(s, "nb_", 3) != 0) return 0;
    size_t n = 3;
    while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_') n++;
    return s[n] == ':' && s[n + 1] == ' ' ? n + 2 : 0;
}

/* msg without the library's function names ("nb_fit: epoch 2: ..." reads
 * "epoch 2: ..."): a user of the command never called them. */
static void drop_function_names(char *msg) {
    char *w = msg;
    for (const char *r = msg; *r;) {
        int at_start = r == msg || (r >= msg + 2 && r[-2] == ':' && r[-1] == ' ');
        size_t skip = at_start ? function_prefix(r) : 0;
        if (skip) r += skip;
        else *w++ = *r++;
    }
    *w = '\0';
}

static void vreport(const char *cmd, const char *fmt, va_list ap) {
    char msg[4096];
    vsnprintf(msg, sizeof msg, fmt, ap);
    drop_function_names(msg);
    fprintf(stderr, "nabla%s%s: %s\n", cmd ? " " : "", cmd ? cmd : "", msg);
}

int cli_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, fmt, ap);
    va_end(ap);
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    drop_function_names(msg);
    fprintf(stderr, "nabla %s: %s (see 'nabla %s --help')\n", cmd, msg, cmd);
    return 2;
}

int cli_parse(const char *cmd, int argc, char **argv, int first, cli_flag *flags, int nflags,
              const char **positional, int max_pos, int *npos, int *help) {
    *npos = 0;
    *help = 0;
    int only_positional = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (only_positional || a[0] != '-' || a[1] == '\0') {
            if (*npos >= max_pos) return cli_usage_error(cmd, "unexpected argument '%s'", a);
            positional[(*npos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *help = 1;
            return 0;
        }
        if (a[1] != '-') return cli_usage_error(cmd, "unknown option '%s'", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        cli_flag *f = NULL;
        for (int k = 0; k < nflags; k++)
            if (strlen(flags[k].name) == len && strncmp(flags[k].name, name, len) == 0) f = &flags[k];
        if (!f) return cli_usage_error(cmd, "unknown option '--%.*s'", (int)len, name);
        if (!f->takes_value) {
            if (eq) return cli_usage_error(cmd, "option '--%s' takes no value", f->name);
            f->value = "1";
        } else if (eq) {
            f->value = eq + 1;
        } else {
            if (i + 1 >= argc) return cli_usage_error(cmd, "option '--%s' needs a value", f->name);
            f->value = argv[++i];
        }
        if (f->takes_value && f->value[0] == '\0')
            return cli_usage_error(cmd, "option '--%s' has an empty value", f->name);
        if (strcmp(f->name, "set") == 0 && cli_model_set(cmd, f->value)) return 2;
    }
    return 0;
}

const char *cli_get(const cli_flag *flags, int nflags, const char *name) {
    for (int k = 0; k < nflags; k++)
        if (strcmp(flags[k].name, name) == 0) return flags[k].value;
    return NULL;
}

int cli_int(const char *cmd, const char *flag, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || end == s || errno == ERANGE || v < lo || v > hi) {
        cli_usage_error(cmd, "--%s %s: expected an integer from %ld to %ld", flag, s, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_precision(const char *cmd, const char *s, nb_precision *out) {
    if (nb_precision_parse(s, out) == NB_OK) return 1;
    cli_usage_error(cmd, "--precision %s: expected fp32 or bf16", s);
    return 0;
}

int cli_set_precision(const char *cmd, nb_graph *g, nb_precision p) {
    if (nb_graph_set_precision(g, p) == NB_OK) return 0;
    return cli_fail(cmd, "--%s", nb_last_error()); /* "--precision bf16 needs a CPU ..." */
}

int cli_double(const char *cmd, const char *flag, const char *s, double lo, double hi,
               double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || end == s || errno == ERANGE || !isfinite(v) || v < lo || v > hi) {
        cli_usage_error(cmd, "--%s %s: expected a number from %g to %g", flag, s, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_number(const char *cmd, const char *flag, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || end == s || errno == ERANGE || !isfinite(v)) {
        cli_usage_error(cmd, "--%s %s: expected a number", flag, s);
        return 0;
    }
    *out = v;
    return 1;
}

const char *cli_nonfinite_param(nb_graph *g, char *buf, size_t size) {
    for (int i = 0; i < nb_param_tensor_count(g); i++) {
        nb_node p = nb_param_tensor(g, i);
        const nb_real *v = nb_value(g, p);
        for (size_t k = 0, n = nb_node_numel(g, p); k < n; k++)
            if (!(v[k] - v[k] == 0)) {
                snprintf(buf, size, "parameter '%s' is %s (element %zu)", nb_node_name(g, p),
                         v[k] != v[k] ? "NaN" : "infinite", k);
                return buf;
            }
    }
    return NULL;
}

size_t cli_sample_size(const nb_graph *g, nb_node n) {
    int ndim, dims[NB_MAX_DIMS];
    if (nb_node_shape(g, n, &ndim, dims) != NB_OK) return 0;
    size_t size = 1;
    for (int d = nb_node_is_batched(g, n) ? 1 : 0; d < ndim; d++) size *= (size_t)dims[d];
    return size;
}

int cli_per_position(const nb_model *m) {
    return m->classes && m->target != NB_NONE && cli_sample_size(m->graph, m->target) > 1;
}

/* What a file that is not a regular file is, for messages. */
static const char *kind_of(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

/* Only a regular file or a new path: a device, a FIFO or a directory (or a
 * symbolic link to one) would be replaced by the rename of the new file. */
static int check_kind(const char *cmd, const char *flag, const char *path) {
    struct stat st, lst;
    const char *why = NULL, *link = "";
    if (path[strlen(path) - 1] == '/') why = "a directory name";
    else if (lstat(path, &lst) != 0) return 1; /* a new file */
    else if (S_ISLNK(lst.st_mode)) {
        link = "a symbolic link to ";
        if (stat(path, &st) != 0) why = "a missing file";
        else if (!S_ISREG(st.st_mode)) why = kind_of(st.st_mode);
    } else if (!S_ISREG(lst.st_mode)) {
        why = kind_of(lst.st_mode);
    }
    if (!why) return 1;
    cli_fail(cmd, "--%s %s: is %s%s; an output must be a regular file or a new path", flag, path,
             link, why);
    return 0;
}

int cli_check_output(const char *cmd, const char *flag, const char *path) {
    if (!check_kind(cmd, flag, path)) return 0;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    if (access(dir, W_OK) != 0) {
        cli_fail(cmd, "--%s %s: cannot write in directory %s (%s)", flag, path, dir,
                 strerror(errno));
        return 0;
    }
    return 1;
}
