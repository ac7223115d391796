#define _POSIX_C_SOURCE 200809L
#include "data_source.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int data_has_test_split(const char *spec) { return strcmp(spec, "fashion-mnist") == 0; }

/* "idx:IMAGES[,LABELS]" */
static nb_status load_idx(const char *spec, nb_data *out) {
    char images[4096], *labels = NULL;
    if (snprintf(images, sizeof images, "%s", spec) >= (int)sizeof images)
        return nb_set_error(NB_ERR_ARG, "--data: path too long");
    char *comma = strchr(images, ',');
    if (comma) {
        *comma = '\0';
        labels = comma + 1;
    }
    nb_array x = {0}, y = {0};
    nb_status s = nb_idx_load(images, &x);
    if (s == NB_OK && labels) s = nb_idx_load(labels, &y);
    if (s == NB_OK && (s = nb_data_from_arrays(&x, labels ? &y : NULL, out)) != NB_OK) {
        char msg[512]; /* say which file */
        snprintf(msg, sizeof msg, "%s", nb_last_error());
        s = nb_set_error(s, "%s: %s", images, msg);
    }
    nb_array_free(&x);
    nb_array_free(&y);
    return s;
}

/* "csv:PATH[,label=COLUMN][,header=yes|no]" */
static nb_status load_csv(const char *spec, nb_data *out) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s", spec) >= (int)sizeof path)
        return nb_set_error(NB_ERR_ARG, "--data: path too long");
    nb_csv_opts o = nb_csv_defaults();
    /* options are the trailing ",key=value" parts; the path may hold commas */
    for (char *opt; (opt = strrchr(path, ',')) && strchr(opt, '=');) {
        *opt++ = '\0';
        char *val = strchr(opt, '=');
        *val++ = '\0';
        if (strcmp(opt, "label") == 0) {
            char *end;
            long k = strtol(val, &end, 10);
            if (strcmp(val, "none") == 0) o.no_label = 1;
            else if (*val && !*end && k >= -1000000 && k <= 1000000) o.label_index = (int)k;
            else o.label_name = val;
            /* label_name points into path: it lives until nb_csv_load returns */
        } else if (strcmp(opt, "header") == 0) {
            if (strcmp(val, "yes") == 0) o.header = NB_CSV_HEADER_YES;
            else if (strcmp(val, "no") == 0) o.header = NB_CSV_HEADER_NO;
            else if (strcmp(val, "auto") == 0) o.header = NB_CSV_HEADER_AUTO;
            else return nb_set_error(NB_ERR_ARG, "--data csv: header=%s (use yes, no or auto)", val);
        } else {
            return nb_set_error(NB_ERR_ARG, "--data csv: unknown option '%s' (known: label, header)",
                          opt);
        }
    }
    nb_csv_data csv;
    nb_status s = nb_csv_load(path, &o, &csv);
    if (s != NB_OK) return s;
    s = nb_data_from_csv(&csv, out);
    nb_csv_free(&csv);
    return s;
}

nb_status data_load(const char *spec, const char *split, nb_data *out) {
    memset(out, 0, sizeof *out);
    if (strncmp(spec, "idx:", 4) == 0) return load_idx(spec + 4, out);
    if (strncmp(spec, "csv:", 4) == 0) return load_csv(spec + 4, out);
    if (strchr(spec, ':') == NULL) return nb_data_load(spec, split, NULL, out);
    return nb_set_error(NB_ERR_ARG, "--data %s: unknown source (use fashion-mnist, "
                  "idx:IMAGES,LABELS or csv:FILE)", spec);
}

/* ------------------------------------------------------------ preprocessing */

nb_status preprocess_from_data(const nb_data *d, preprocess *p) {
    memset(p, 0, sizeof *p);
    p->unit = d->x_u8 != NULL && d->scale != 1;
    if (d->mean) {
        p->features = d->sample_size;
        p->mean = malloc(p->features * sizeof *p->mean);
        p->inv_std = malloc(p->features * sizeof *p->inv_std);
        if (!p->mean || !p->inv_std) return nb_set_error(NB_ERR_NOMEM, "out of memory");
        memcpy(p->mean, d->mean, p->features * sizeof *p->mean);
        memcpy(p->inv_std, d->inv_std, p->features * sizeof *p->inv_std);
    }
    if (d->n_classes && d->class_names) { /* IDX labels have no names */
        p->class_names = calloc((size_t)d->n_classes, sizeof *p->class_names);
        if (!p->class_names) return nb_set_error(NB_ERR_NOMEM, "out of memory");
        p->n_classes = d->n_classes;
        for (int k = 0; k < d->n_classes; k++) {
            p->class_names[k] = strdup(d->class_names[k]);
            if (!p->class_names[k]) return nb_set_error(NB_ERR_NOMEM, "out of memory");
        }
    }
    return NB_OK;
}

nb_status preprocess_apply(const preprocess *p, nb_data *d) {
    if (p->unit) {
        if (!d->x_u8)
            return nb_set_error(NB_ERR_ARG, "the model was trained on byte images scaled to [0, 1], "
                          "but these data are not bytes");
        nb_status s = nb_data_scale_unit(d);
        if (s != NB_OK) return s;
    }
    if (p->features) {
        if (p->features != d->sample_size)
            return nb_set_error(NB_ERR_SHAPE, "the model was trained on %zu features, these data "
                          "have %zu", p->features, d->sample_size);
        free(d->mean);
        free(d->inv_std);
        d->mean = malloc(p->features * sizeof *d->mean);
        d->inv_std = malloc(p->features * sizeof *d->inv_std);
        if (!d->mean || !d->inv_std) return nb_set_error(NB_ERR_NOMEM, "out of memory");
        memcpy(d->mean, p->mean, p->features * sizeof *d->mean);
        memcpy(d->inv_std, p->inv_std, p->features * sizeof *d->inv_std);
    }
    return NB_OK;
}

static char *json_reals(const double *v, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    char *s = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return s;
}

int preprocess_to_meta(preprocess *p, nb_kv *kv) {
    int n = 0;
    kv[n++] = (nb_kv){"data.input", p->unit ? "bytes/255" : p->features ? "standardized" : "raw"};
    if (p->features) { /* made once, reused by every checkpoint */
        if (!p->meta[0]) p->meta[0] = json_reals(p->mean, p->features);
        if (!p->meta[1]) p->meta[1] = json_reals(p->inv_std, p->features);
        if (p->meta[0] && p->meta[1]) {
            kv[n++] = (nb_kv){"data.mean", p->meta[0]};
            kv[n++] = (nb_kv){"data.inv_std", p->meta[1]};
        }
    }
    if (p->n_classes && !p->meta[2]) {
        cJSON *a = cJSON_CreateArray();
        for (int k = 0; a && k < p->n_classes; k++)
            cJSON_AddItemToArray(a, cJSON_CreateString(p->class_names[k]));
        p->meta[2] = a ? cJSON_PrintUnformatted(a) : NULL;
        cJSON_Delete(a);
    }
    if (p->meta[2]) kv[n++] = (nb_kv){"data.classes", p->meta[2]};
    return n;
}

/* A JSON array of n numbers (n 0: any length, returned in *count). */
static nb_status parse_reals(const char *path, const char *key, const char *text, size_t *count,
                             double **out) {
    cJSON *a = cJSON_Parse(text);
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
    double *v = n > 0 ? malloc((size_t)n * sizeof *v) : NULL;
    nb_status s = NB_OK;
    if (!v) s = nb_set_error(NB_ERR_FORMAT, "%s: metadata %s is not a list of numbers", path, key);
    for (int i = 0; s == NB_OK && i < n; i++) {
        cJSON *e = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(e)) s = nb_set_error(NB_ERR_FORMAT, "%s: metadata %s[%d] is not a number", path, key, i);
        else v[i] = e->valuedouble;
    }
    cJSON_Delete(a);
    if (s != NB_OK) {
        free(v);
        return s;
    }
    *count = (size_t)n;
    *out = v;
    return NB_OK;
}

nb_status preprocess_from_file(const char *path, preprocess *p) {
    memset(p, 0, sizeof *p);
    nb_safetensors *st;
    nb_status s = nb_st_open(path, &st);
    if (s != NB_OK) return s;
    const char *input = nb_st_meta(st, "data.input");
    const char *mean = nb_st_meta(st, "data.mean"), *inv = nb_st_meta(st, "data.inv_std");
    const char *classes = nb_st_meta(st, "data.classes");
    if (input && strcmp(input, "bytes/255") == 0) p->unit = 1;
    else if (input && strcmp(input, "standardized") == 0) {
        size_t nm = 0, ni = 0;
        if (!mean || !inv) s = nb_set_error(NB_ERR_FORMAT, "%s: standardized input without data.mean "
                                      "and data.inv_std", path);
        if (s == NB_OK) s = parse_reals(path, "data.mean", mean, &nm, &p->mean);
        if (s == NB_OK) s = parse_reals(path, "data.inv_std", inv, &ni, &p->inv_std);
        if (s == NB_OK && nm != ni)
            s = nb_set_error(NB_ERR_FORMAT, "%s: data.mean has %zu values, nabla.inv_std %zu", path, nm, ni);
        p->features = nm;
    } else if (input && strcmp(input, "raw") != 0) {
        s = nb_set_error(NB_ERR_FORMAT, "%s: unknown data.input '%s'", path, input);
    }
    if (s == NB_OK && classes) {
        cJSON *a = cJSON_Parse(classes);
        int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
        p->class_names = n > 0 ? calloc((size_t)n, sizeof *p->class_names) : NULL;
        if (!p->class_names) s = nb_set_error(NB_ERR_FORMAT, "%s: data.classes is not a list of names", path);
        for (int k = 0; s == NB_OK && k < n; k++) {
            cJSON *e = cJSON_GetArrayItem(a, k);
            if (!cJSON_IsString(e)) s = nb_set_error(NB_ERR_FORMAT, "%s: data.classes[%d] is not a string", path, k);
            else if (!(p->class_names[k] = strdup(e->valuestring))) s = nb_set_error(NB_ERR_NOMEM, "out of memory");
            else p->n_classes = k + 1;
        }
        cJSON_Delete(a);
    }
    nb_st_free(st);
    if (s != NB_OK) preprocess_free(p);
    return s;
}

void preprocess_free(preprocess *p) {
    free(p->mean);
    free(p->inv_std);
    for (int k = 0; k < p->n_classes; k++) free(p->class_names[k]);
    free(p->class_names);
    for (int k = 0; k < 3; k++) cJSON_free(p->meta[k]);
    memset(p, 0, sizeof *p);
}
