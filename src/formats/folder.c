/* Image folders as training data (nb_data_from_folder): find the files,
 * then decode every image once, in parallel, straight into the byte samples
 * of an nb_data.  Each image is decoded by one part of a parallel region
 * into its own slot, so the result does not depend on the thread count;
 * failures are collected per image and reported in sample order. */
#define _DEFAULT_SOURCE /* d_type, strdup, strcasecmp */
#include "../kernels/parallel.h"
#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define BLOCK 2048   /* images between progress reports */
#define PER_PART 8   /* images per part of a parallel region */

typedef struct item {
    char *path;
    size_t name_at; /* the file name starts at path + name_at */
    int label;
} item;

typedef struct listing {
    item *items;
    size_t n, cap;
    char **classes;
    int n_classes;
} listing;

static void listing_free(listing *l) {
    for (size_t i = 0; i < l->n; i++) free(l->items[i].path);
    free(l->items);
    for (int k = 0; k < l->n_classes; k++) free(l->classes[k]);
    free(l->classes);
    memset(l, 0, sizeof *l);
}

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 ||
                   strcasecmp(dot, ".jpeg") == 0);
}

/* dir/name into a new string. */
static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}

/* Is dir/e a folder (want_dir) or a regular file?  Follows symbolic links. */
static int entry_is(const char *dir, const struct dirent *e, int want_dir) {
#ifdef DT_DIR
    if (e->d_type == DT_DIR) return want_dir;
    if (e->d_type == DT_REG) return !want_dir;
#endif
    char *p = join(dir, e->d_name);
    struct stat st;
    int r = p && stat(p, &st) == 0 && (want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
    free(p);
    return r;
}

static nb_status add_item(listing *l, const char *dir, const char *name, int label) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        item *bigger = realloc(l->items, cap * sizeof *bigger);
        if (!bigger) return nb_err(NB_ERR_NOMEM, "%s: out of memory", dir);
        l->items = bigger;
        l->cap = cap;
    }
    item *it = &l->items[l->n];
    if (!(it->path = join(dir, name))) return nb_err(NB_ERR_NOMEM, "%s: out of memory", dir);
    it->name_at = strlen(dir) + 1;
    it->label = label;
    l->n++;
    return NB_OK;
}

/* The image files of dir (label: their class), or, with classes != NULL,
 * the names of its sub-folders. */
static nb_status scan(const char *dir, int label, listing *l, char ***classes, int *n_classes) {
    DIR *d = opendir(dir);
    if (!d) return nb_err(NB_ERR_IO, "%s: %s", dir, strerror(errno));
    nb_status s = NB_OK;
    int cap = 0;
    for (struct dirent *e; s == NB_OK && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (classes && entry_is(dir, e, 1)) {
            if (*n_classes == cap) {
                cap = cap ? 2 * cap : 16;
                char **bigger = cap < INT_MAX / 2 ? realloc(*classes, (size_t)cap * sizeof *bigger)
                                                  : NULL;
                if (!bigger) s = nb_err(NB_ERR_NOMEM, "%s: out of memory", dir);
                else *classes = bigger;
            }
            if (s == NB_OK && !((*classes)[*n_classes] = strdup(e->d_name)))
                s = nb_err(NB_ERR_NOMEM, "%s: out of memory", dir);
            if (s == NB_OK) ++*n_classes;
        } else if (is_image_name(e->d_name) && entry_is(dir, e, 0)) {
            s = add_item(l, dir, e->d_name, label);
        }
    }
    closedir(d);
    return s;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* File name, then class: an indexed data set written as CLASS/00042.png
 * reads back in its original order. */
static int by_file(const void *a, const void *b) {
    const item *x = a, *y = b;
    int c = strcmp(x->path + x->name_at, y->path + y->name_at);
    return c ? c : (x->label > y->label) - (x->label < y->label);
}

/* Class folders if dir has any (their own images), else dir's images. */
static nb_status list_folder(const char *dir, listing *l) {
    listing flat = {0};
    nb_status s = scan(dir, -1, &flat, &l->classes, &l->n_classes);
    if (s == NB_OK && l->n_classes == 0) {
        if (flat.n == 0)
            s = nb_err(NB_ERR_ARG, "%s: no class folders and no .png, .jpg or .jpeg files", dir);
        l->items = flat.items, l->n = flat.n, l->cap = flat.cap;
        memset(&flat, 0, sizeof flat);
    }
    listing_free(&flat);
    if (s != NB_OK || l->n_classes == 0) return s;
    qsort(l->classes, (size_t)l->n_classes, sizeof *l->classes, by_name);
    for (int k = 0; s == NB_OK && k < l->n_classes; k++) {
        char *sub = join(dir, l->classes[k]);
        size_t before = l->n;
        s = sub ? scan(sub, k, l, NULL, NULL) : nb_err(NB_ERR_NOMEM, "%s: out of memory", dir);
        if (s == NB_OK && l->n == before)
            s = nb_err(NB_ERR_ARG, "%s: class folder without .png, .jpg or .jpeg files", sub);
        free(sub);
    }
    return s;
}

/* ------------------------------------------------------------- decoding */

typedef struct decode_job {
    const listing *l;
    const nb_folder_opts *o;
    size_t first, count; /* the block being decoded */
    size_t sample;       /* bytes per sample */
    uint8_t *x;
    char **failed;       /* per image: its error message, or NULL */
} decode_job;

static char no_memory[] = "out of memory for an error message";

static void free_failed(char **failed, size_t n) {
    for (size_t i = 0; failed && i < n; i++)
        if (failed[i] != no_memory) free(failed[i]);
    free(failed);
}

static void decode_part(void *ctx, int part) {
    decode_job *j = ctx;
    size_t lo = j->first + (size_t)part * PER_PART, hi = lo + PER_PART;
    if (hi > j->first + j->count) hi = j->first + j->count;
    for (size_t i = lo; i < hi; i++) {
        nb_image im;
        nb_status s = nb_image_load(j->l->items[i].path, &im);
        if (s == NB_OK)
            s = nb_image_to_chw(&im, j->o->channels, j->o->height, j->o->width,
                                j->x + i * j->sample);
        nb_image_free(&im);
        if (s != NB_OK) {
            const char *m = nb_last_error();
            j->failed[i] = strdup(m[0] ? m : "cannot decode");
            if (!j->failed[i]) j->failed[i] = no_memory;
        }
    }
}

static nb_status decode_all(const listing *l, const nb_folder_opts *o, size_t sample, uint8_t *x,
                            char **failed) {
    decode_job j = {.l = l, .o = o, .sample = sample, .x = x, .failed = failed};
    for (j.first = 0; j.first < l->n; j.first += j.count) {
        j.count = l->n - j.first < BLOCK ? l->n - j.first : BLOCK;
        nb__parallel((int)((j.count + PER_PART - 1) / PER_PART), decode_part, &j);
        if (o->progress) o->progress(j.first + j.count, l->n, o->user);
        if (!o->skip_bad)
            for (size_t i = j.first; i < j.first + j.count; i++)
                if (failed[i]) return NB_ERR_FORMAT; /* reported by the caller */
    }
    return NB_OK;
}

/* Move the decoded samples over the failed ones; labels into y. */
static size_t compact(const listing *l, const nb_folder_opts *o, size_t sample, char **failed,
                      uint8_t *x, nb_real *y) {
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (failed[i]) {
            if (o->on_skip) o->on_skip(failed[i], o->user);
            continue;
        }
        if (k != i) memcpy(x + k * sample, x + i * sample, sample);
        if (y) y[k] = (nb_real)l->items[i].label;
        k++;
    }
    return k;
}

static nb_status check_opts(const char *path, const nb_folder_opts *o, nb_data *out) {
    const char *fn = "nb_data_from_folder";
    if (!out) return nb_err(NB_ERR_ARG, "%s: out is NULL", fn);
    memset(out, 0, sizeof *out);
    if (!path || !o) return nb_err(NB_ERR_ARG, "%s: %s is NULL", fn, path ? "opts" : "path");
    if (o->channels != 1 && o->channels != 3)
        return nb_err(NB_ERR_ARG, "%s: %d channels (expected 1 or 3)", fn, o->channels);
    if (o->height < 1 || o->width < 1 || o->height > 65535 || o->width > 65535)
        return nb_err(NB_ERR_ARG, "%s: image size %d x %d (expected 1 to 65535 each)", fn,
                      o->width, o->height);
    return NB_OK;
}

/* One image file, or a folder. */
static nb_status list_path(const char *path, listing *l) {
    struct stat st;
    if (stat(path, &st) != 0) return nb_err(NB_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return list_folder(path, l);
    if (!(l->items = malloc(sizeof *l->items)) || !(l->items[0].path = strdup(path)))
        return nb_err(NB_ERR_NOMEM, "%s: out of memory", path);
    const char *slash = strrchr(path, '/');
    l->items[0].name_at = slash ? (size_t)(slash + 1 - path) : 0;
    l->items[0].label = -1;
    l->n = l->cap = 1;
    return NB_OK;
}

/* The decoded samples and the labels become out's. */
static nb_status fill(listing *l, const nb_folder_opts *o, uint8_t *x, char **failed,
                      nb_data *out, size_t *skipped) {
    const size_t sample = (size_t)o->channels * (size_t)o->height * (size_t)o->width;
    nb_real *y = l->n_classes ? malloc(sizeof *y * l->n) : NULL;
    if (l->n_classes && !y) return nb_err(NB_ERR_NOMEM, "out of memory for %zu labels", l->n);
    size_t n = compact(l, o, sample, failed, x, y);
    if (skipped) *skipped = l->n - n;
    if (n == 0) {
        free(y);
        return nb_err(NB_ERR_FORMAT, "none of the %zu images decodes (first: %s)", l->n,
                      failed[0]);
    }
    out->n = n;
    out->ndim = 3;
    out->dims[0] = o->channels, out->dims[1] = o->height, out->dims[2] = o->width;
    out->sample_size = sample;
    out->x_u8 = x;
    out->y = y;
    out->y_size = y ? 1 : 0;
    out->scale = 1;
    out->n_classes = l->n_classes;
    out->class_names = l->classes;
    l->classes = NULL; /* out's now; n_classes kept for listing_free's loop: */
    l->n_classes = 0;
    return NB_OK;
}

nb_status nb_data_from_folder(const char *path, const nb_folder_opts *o, nb_data *out,
                              size_t *skipped) {
    if (skipped) *skipped = 0;
    nb_status s = check_opts(path, o, out);
    if (s != NB_OK) return s;
    listing l = {0};
    if ((s = list_path(path, &l)) != NB_OK) {
        listing_free(&l);
        return s;
    }
    const size_t sample = (size_t)o->channels * (size_t)o->height * (size_t)o->width;
    uint8_t *x = l.n <= SIZE_MAX / sample ? nb__alloc_samples(l.n * sample) : NULL;
    char **failed = calloc(l.n, sizeof *failed);
    if (!x || !failed) {
        s = nb_err(NB_ERR_NOMEM, "%s: out of memory for %zu images of %zu bytes", path, l.n,
                   sample);
    } else {
        qsort(l.items, l.n, sizeof *l.items, by_file);
        s = decode_all(&l, o, sample, x, failed);
        for (size_t i = 0; s != NB_OK && i < l.n; i++)
            if (failed[i]) {
                s = nb_err(NB_ERR_FORMAT, "%s", failed[i]);
                break;
            }
        if (s == NB_OK) s = fill(&l, o, x, failed, out, skipped);
    }
    if (s != NB_OK) free(x);
    free_failed(failed, l.n);
    listing_free(&l);
    return s;
}
