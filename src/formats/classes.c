/* Class labels matched to the class list of a trained model.
 *
 * Class names are numbered per file (CSV labels in sorted order), so a test
 * file that lacks one class numbers the others differently from the training
 * file.  Evaluation data are therefore renumbered by name through the
 * training list, and a label the model was never trained on is an error, not
 * a silently wrong score. */
#include "io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How many class names an error message lists before "...". */
#define LIST_SHOW 20

/* Byte-wise order of s[0..n) against the terminated string t (as strcmp). */
static int cmp_text(const char *s, size_t n, const char *t) {
    size_t m = strlen(t);
    int c = memcmp(s, t, n < m ? n : m);
    if (c) return c;
    return (n > m) - (n < m);
}

static int cmp_entry(const void *a, const void *b) {
    const nb__class_entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

nb_status nb__class_lookup_init(nb__class_lookup *l, char *const *names, int n) {
    memset(l, 0, sizeof *l);
    if (!names || n < 1) return NB_OK;
    l->entries = malloc(sizeof *l->entries * (size_t)n);
    if (!l->entries) return nb_err(NB_ERR_NOMEM, "out of memory for %d class names", n);
    for (int k = 0; k < n; k++) l->entries[k] = (nb__class_entry){names[k], k};
    qsort(l->entries, (size_t)n, sizeof *l->entries, cmp_entry);
    l->n = n;
    return NB_OK;
}

int nb__class_find(const nb__class_lookup *l, const char *s, size_t len) {
    int lo = 0, hi = l->n; /* binary search in [lo, hi) */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, c = cmp_text(s, len, l->entries[mid].name);
        if (c == 0) return l->entries[mid].index;
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return -1;
}

void nb__class_lookup_free(nb__class_lookup *l) {
    free(l->entries);
    memset(l, 0, sizeof *l);
}

const char *nb__class_list(char *buf, size_t size, char *const *names, int n) {
    if (!names) {
        snprintf(buf, size, "classes 0 to %d", n - 1);
        return buf;
    }
    size_t used = (size_t)snprintf(buf, size, "classes ");
    for (int k = 0; k < n && used < size; k++) {
        char q[128];
        const char *name = nb__quote(q, sizeof q, names[k], strlen(names[k]), 40);
        int w = k == LIST_SHOW ? snprintf(buf + used, size - used, ", ... (%d in all)", n)
                               : snprintf(buf + used, size - used, "%s'%s'", k ? ", " : "", name);
        if (w < 0 || k == LIST_SHOW) break;
        used += (size_t)w;
    }
    return buf;
}

/* Label k of d as a class index below limit, or -1. */
static long label_index(const nb_data *d, size_t i, int limit) {
    double v = (double)d->y[i];
    if (!(v >= 0 && v < limit) || v != (double)(long)v) return -1;
    return (long)v;
}

/* d's class k -> the trained class of the same name (-1: none). */
static nb_status name_map(const nb_data *d, char *const *classes, int n, int **map) {
    nb__class_lookup l;
    nb_status s = nb__class_lookup_init(&l, classes, n);
    *map = s == NB_OK ? malloc(sizeof **map * (size_t)d->n_classes) : NULL;
    if (s == NB_OK && !*map) s = nb_err(NB_ERR_NOMEM, "out of memory");
    for (int k = 0; s == NB_OK && k < d->n_classes; k++)
        (*map)[k] = nb__class_find(&l, d->class_names[k], strlen(d->class_names[k]));
    nb__class_lookup_free(&l);
    return s;
}

static nb_status unknown_label(const nb_data *d, size_t i, char *const *classes, int n,
                               const char *what, int by_name) {
    char known[1024], q[128];
    nb__class_list(known, sizeof known, classes, n);
    if (by_name) {
        const char *name = d->class_names[(size_t)d->y[i]];
        return nb_err(NB_ERR_FORMAT, "%s: sample %zu has class '%s', which the model was not "
                      "trained on (it knows %s)", what, i,
                      nb__quote(q, sizeof q, name, strlen(name), 40), known);
    }
    return nb_err(NB_ERR_FORMAT, "%s: sample %zu has label %g, which is not a class of the "
                  "model (it knows %s)", what, i, (double)d->y[i], known);
}

/* Check every label, then renumber them through map, if given (so d is
 * unchanged on failure). */
static nb_status map_labels(nb_data *d, const int *map, char *const *classes, int n,
                            const char *what) {
    for (size_t i = 0; i < d->n; i++) {
        long c = label_index(d, i, map ? d->n_classes : n);
        if (c >= 0 && map && map[c] < 0) return unknown_label(d, i, classes, n, what, 1);
        if (c < 0) return unknown_label(d, i, classes, n, what, 0);
    }
    for (size_t i = 0; map && i < d->n; i++) d->y[i] = (nb_real)map[(size_t)d->y[i]];
    return NB_OK;
}

/* d's class names replaced by copies of classes. */
static nb_status take_names(nb_data *d, char *const *classes, int n) {
    char **copy = calloc((size_t)n, sizeof *copy);
    for (int k = 0; copy && k < n; k++) {
        size_t len = strlen(classes[k]) + 1;
        if ((copy[k] = malloc(len))) {
            memcpy(copy[k], classes[k], len);
        } else {
            while (k--) free(copy[k]);
            free(copy);
            copy = NULL;
        }
    }
    if (!copy) return nb_err(NB_ERR_NOMEM, "out of memory for %d class names", n);
    if (d->class_names)
        for (int k = 0; k < d->n_classes; k++) free(d->class_names[k]);
    free(d->class_names);
    d->class_names = copy;
    d->n_classes = n;
    return NB_OK;
}

nb_status nb_data_map_classes(nb_data *d, char *const *classes, int n_classes, const char *what) {
    if (!d) return nb_err(NB_ERR_ARG, "class mapping: the data are NULL");
    if (n_classes < 1) return nb_err(NB_ERR_ARG, "class mapping: %d classes", n_classes);
    if (!what) what = "the data";
    if (d->y_size == 0) return NB_OK; /* nothing to map: data to predict */
    if (d->y_size != 1) {
        if (d->y_size == (size_t)n_classes) return NB_OK; /* one value per class */
        return nb_err(NB_ERR_SHAPE, "%s: %zu label values per sample; the model knows %d "
                      "classes", what, d->y_size, n_classes);
    }
    int *map = NULL;
    int by_name = classes && d->class_names && d->n_classes > 0;
    nb_status s = by_name ? name_map(d, classes, n_classes, &map) : NB_OK;
    if (s == NB_OK) s = map_labels(d, map, classes, n_classes, what);
    free(map);
    if (s == NB_OK && classes) s = take_names(d, classes, n_classes);
    else if (s == NB_OK && !d->class_names) d->n_classes = n_classes;
    return s;
}
