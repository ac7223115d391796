#define _POSIX_C_SOURCE 200809L
#include "refdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

static int add_tensor(ref_case *c, const ref_tensor *t) {
    ref_tensor *nt = realloc(c->t, (size_t)(c->nt + 1) * sizeof *nt);
    if (!nt) return 0;
    c->t = nt;
    c->t[c->nt++] = *t;
    return 1;
}

static int parse_line(ref_file *f, char *line, const char *path, int lineno) {
    char *save = NULL;
    char *tok = strtok_r(line, " \t\r\n", &save);
    if (!tok || tok[0] == '#') return 1;
    if (strcmp(tok, "case") == 0) {
        char *name = strtok_r(NULL, " \t\r\n", &save);
        ref_case *nc = realloc(f->c, (size_t)(f->nc + 1) * sizeof *nc);
        if (!name || !nc) goto bad;
        f->c = nc;
        memset(&f->c[f->nc], 0, sizeof f->c[0]);
        snprintf(f->c[f->nc].name, sizeof f->c[0].name, "%s", name);
        f->nc++;
        return 1;
    }
    if (f->nc == 0) goto bad;
    ref_tensor t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", tok);
    char *next = strtok_r(NULL, " \t\r\n", &save);
    if (!next) goto bad;
    if (strcmp(next, "=") == 0) {
        char *v = strtok_r(NULL, " \t\r\n", &save);
        if (!v) goto bad;
        t.n = 1;
        t.v = malloc(sizeof *t.v);
        if (!t.v) goto bad;
        t.v[0] = strtod(v, NULL);
        return add_tensor(&f->c[f->nc - 1], &t) ? 1 : (free(t.v), 0);
    }
    t.ndim = atoi(next);
    if (t.ndim < 0 || t.ndim > 8) goto bad;
    t.n = 1;
    for (int d = 0; d < t.ndim; d++) {
        char *dt = strtok_r(NULL, " \t\r\n", &save);
        if (!dt) goto bad;
        t.dims[d] = atoi(dt);
        t.n *= (size_t)t.dims[d];
    }
    char *colon = strtok_r(NULL, " \t\r\n", &save);
    if (!colon || strcmp(colon, ":") != 0) goto bad;
    t.v = malloc((t.n ? t.n : 1) * sizeof *t.v);
    if (!t.v) goto bad;
    for (size_t k = 0; k < t.n; k++) {
        char *vt = strtok_r(NULL, " \t\r\n", &save);
        if (!vt) {
            free(t.v);
            goto bad;
        }
        t.v[k] = strtod(vt, NULL);
    }
    return add_tensor(&f->c[f->nc - 1], &t) ? 1 : (free(t.v), 0);
bad:
    fprintf(stderr, "%s:%d: malformed reference line\n", path, lineno);
    return 0;
}

ref_file *ref_load(const char *path) {
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "cannot open reference file %s\n", path);
        return NULL;
    }
    ref_file *f = calloc(1, sizeof *f);
    size_t cap = 1 << 16;
    char *line = malloc(cap);
    int lineno = 0, ok = f && line;
    while (ok) {
        /* read one whole line, growing the buffer as needed */
        size_t len = 0;
        int got = 0;
        while (fgets(line + len, (int)(cap - len), fp)) {
            got = 1;
            len += strlen(line + len);
            if (len && line[len - 1] == '\n') break;
            if (cap - len < 2) {
                char *bigger = realloc(line, cap * 2);
                if (!bigger) { ok = 0; break; }
                line = bigger;
                cap *= 2;
            }
        }
        if (!got || !ok) break;
        lineno++;
        ok = parse_line(f, line, path, lineno);
    }
    free(line);
    fclose(fp);
    if (!ok) {
        ref_free(f);
        return NULL;
    }
    return f;
}

void ref_free(ref_file *f) {
    if (!f) return;
    for (int i = 0; i < f->nc; i++) {
        for (int k = 0; k < f->c[i].nt; k++) free(f->c[i].t[k].v);
        free(f->c[i].t);
    }
    free(f->c);
    free(f);
}

const ref_case *ref_case_get(const ref_file *f, const char *name) {
    for (int i = 0; f && i < f->nc; i++)
        if (strcmp(f->c[i].name, name) == 0) return &f->c[i];
    return NULL;
}

const ref_tensor *ref_get(const ref_case *c, const char *name) {
    for (int k = 0; c && k < c->nt; k++)
        if (strcmp(c->t[k].name, name) == 0) return &c->t[k];
    return NULL;
}

double ref_scalar(const ref_case *c, const char *name, double dflt) {
    const ref_tensor *t = ref_get(c, name);
    return t && t->n ? t->v[0] : dflt;
}

int ref_check(const char *label, const nb_real *got, size_t n, const ref_tensor *want,
              double rtol) {
    if (!want) {
        fprintf(stderr, "%s: reference tensor missing\n", label);
        return 1;
    }
    if (want->n != n) {
        fprintf(stderr, "%s: %zu values, reference has %zu\n", label, n, want->n);
        return 1;
    }
    double maxabs = 0;
    for (size_t k = 0; k < n; k++)
        if (fabs(want->v[k]) > maxabs) maxabs = fabs(want->v[k]);
    int bad = 0;
    for (size_t k = 0; k < n; k++) {
        double tol = rtol * (fabs(want->v[k]) + 0.1 * maxabs);
        double err = fabs((double)got[k] - want->v[k]);
        if (!(err <= tol)) {
            if (bad < 5)
                fprintf(stderr, "%s[%zu]: got %.9g, reference %.9g (error %.3g > %.3g)\n",
                        label, k, (double)got[k], want->v[k], err, tol);
            bad++;
        }
    }
    return bad;
}
