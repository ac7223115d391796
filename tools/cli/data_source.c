#define _POSIX_C_SOURCE 200809L
#include "data_source.h"
#include "folder_source.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int data_has_test_split(const char *spec) { return strcmp(spec, "fashion-mnist") == 0; }

/* spec's message prefixed to the library's last error. */
static nb_status with_spec(nb_status s, const char *kind, const char *spec) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", nb_last_error());
    if (strstr(msg, spec)) return nb_set_error(s, "%s", msg); /* names its file already */
    return nb_set_error(s, "%s%s: %s", kind, spec, msg);
}

/* Arrays: "KIND:SAMPLES[,LABELS][,layout=hwc|chw]" with KIND idx or npy. */
static nb_status load_arrays(const char *kind, const char *spec, nb_data *out) {
    char paths[4096], *labels = NULL;
    int hwc = 0;
    if (snprintf(paths, sizeof paths, "%s", spec) >= (int)sizeof paths)
        return nb_set_error(NB_ERR_ARG, "--data: path too long");
    for (char *opt; (opt = strrchr(paths, ',')) && strchr(opt, '=');) {
        *opt++ = '\0';
        if (strcmp(opt, "layout=hwc") == 0) hwc = 1;
        else if (strcmp(opt, "layout=chw") != 0)
            return nb_set_error(NB_ERR_ARG, "%s:%s: unknown option '%s' (known: layout=hwc, "
                                "layout=chw)", kind, spec, opt);
    }
    char *comma = strchr(paths, ',');
    if (comma) {
        *comma = '\0';
        labels = comma + 1;
    }
    nb_status (*load)(const char *, nb_array *) = kind[0] == 'i' ? nb_idx_load : nb_npy_load;
    nb_array x = {0}, y = {0};
    nb_status s = load(paths, &x);
    if (s == NB_OK && labels) s = load(labels, &y);
    if (s == NB_OK && (s = nb_data_from_arrays(&x, labels ? &y : NULL, out)) != NB_OK)
        s = with_spec(s, kind[0] == 'i' ? "idx:" : "npy:", spec);
    nb_array_free(&x);
    nb_array_free(&y);
    if (s == NB_OK && hwc && (s = nb_data_hwc_to_chw(out)) != NB_OK) {
        s = with_spec(s, kind[0] == 'i' ? "idx:" : "npy:", spec);
        nb_data_free(out);
    }
    return s;
}

/* "csv:PATH[,label=COLUMN][,header=yes|no]" */
static nb_status load_csv(const char *spec, char *const *classes, int n_classes, nb_data *out) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s", spec) >= (int)sizeof path)
        return nb_set_error(NB_ERR_ARG, "--data: path too long");
    nb_csv_opts o = nb_csv_defaults();
    o.classes = classes;
    o.n_classes = n_classes;
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

int data_is_text(const char *spec) {
    return strncmp(spec, "lines:", 6) == 0 || strncmp(spec, "text:", 5) == 0;
}

/* lines: without context= or length= pads to the model's input size */
static size_t text_length;

void data_text_default_length(size_t n) { text_length = n; }

/* A positive whole number of a text option, or 0. */
static int text_int(const char *val) {
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    return *val && !*end && errno == 0 && v > 0 && v <= 1000000 ? (int)v : 0;
}

/* "lines:FILE[,context=K][,length=T]" or "text:FILE,context=T[,stride=S]",
 * encoded with the vocabulary given (n_vocab 0: built from the file); val
 * gets the held-out fraction (0: none). */
static nb_status load_text(const char *spec, char *const *vocab, int n_vocab, double val_fraction,
                           uint64_t seed, nb_data *train, nb_data *val) {
    int lines = spec[0] == 'l';
    const char *kind = lines ? "lines" : "text", *known = lines ? "context, length" : "context, stride";
    char path[4096];
    if (snprintf(path, sizeof path, "%s", spec + (lines ? 6 : 5)) >= (int)sizeof path)
        return nb_set_error(NB_ERR_ARG, "--data: path too long");
    nb_text_opts o = {.kind = lines ? NB_TEXT_LINES : NB_TEXT_STREAM, .vocab = vocab,
                      .vocab_size = n_vocab, .val_fraction = val_fraction, .seed = seed};
    for (char *opt; (opt = strrchr(path, ',')) && strchr(opt, '=');) {
        *opt++ = '\0';
        char *val_s = strchr(opt, '=');
        *val_s++ = '\0';
        int v = text_int(val_s), *field = strcmp(opt, "context") == 0 ? &o.context
                                         : strcmp(opt, "length") == 0 && lines ? &o.length
                                         : strcmp(opt, "stride") == 0 && !lines ? &o.stride
                                                                                 : NULL;
        if (!field)
            return nb_set_error(NB_ERR_ARG, "--data %s: unknown option '%s' (known: %s)", kind,
                                opt, known);
        if (!v)
            return nb_set_error(NB_ERR_ARG, "--data %s: %s=%s is not a whole number from 1 to "
                                "1000000", kind, opt, val_s);
        *field = v;
    }
    if (lines && !o.context && !o.length && text_length <= 1000000) o.length = (int)text_length;
    if (!lines && !o.context)
        return nb_set_error(NB_ERR_ARG, "--data text:%s needs context=T, the window length "
                            "(e.g. text:%s,context=64)", path, path);
    return nb_text_load(path, &o, train, val);
}

nb_status data_load_split(const char *spec, char *const *vocab, int n_vocab, double val_fraction,
                          uint64_t seed, nb_data *train, nb_data *val) {
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    return load_text(spec, vocab, n_vocab, val_fraction, seed, train, val);
}

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

/* The prefix a data file without one gets from its name ("" if unknown). */
static const char *kind_of(const char *spec) {
    char first[4096];
    snprintf(first, sizeof first, "%s", spec);
    char *comma = strchr(first, ',');
    if (comma) *comma = '\0';
    if (ends_with(first, ".csv") || ends_with(first, ".csv.gz")) return "csv:";
    if (ends_with(first, ".npy")) return "npy:";
    if (ends_with(first, "-ubyte") || ends_with(first, "-ubyte.gz") || ends_with(first, ".idx") ||
        ends_with(first, ".idx.gz"))
        return "idx:";
    return "";
}

nb_status data_load(const char *spec, const char *split, nb_data *out) {
    memset(out, 0, sizeof *out);
    if (strncmp(spec, "folder:", 7) == 0) return folder_source_load(spec + 7, out);
    if (folder_source_is_image(spec)) return folder_source_load(spec, out);
    if (strncmp(spec, "idx:", 4) == 0) return load_arrays("idx", spec + 4, out);
    if (strncmp(spec, "npy:", 4) == 0) return load_arrays("npy", spec + 4, out);
    if (strncmp(spec, "csv:", 4) == 0) return load_csv(spec + 4, NULL, 0, out);
    if (data_is_text(spec)) return load_text(spec, NULL, 0, 0, 0, out, NULL);
    const char *kind = kind_of(spec);
    if (strcmp(kind, "csv:") == 0) return load_csv(spec, NULL, 0, out);
    if (kind[0]) return load_arrays(kind[0] == 'i' ? "idx" : "npy", spec, out);
    if (strcmp(spec, "fashion-mnist") == 0) return nb_data_load(spec, split, NULL, out);
    return nb_set_error(NB_ERR_ARG, "%s: unknown data source; write csv:FILE for a CSV file, "
                        "npy:X.npy,Y.npy for NumPy arrays, idx:IMAGES,LABELS for IDX files, "
                        "folder:DIR for a folder of class folders of images, lines:FILE or "
                        "text:FILE,context=T for text, or fashion-mnist",
                        spec);
}

nb_status data_load_classes(const char *spec, const char *split, char *const *classes,
                            int n_classes, nb_data *out) {
    if (data_is_text(spec)) { /* the vocabulary encodes the inputs too */
        memset(out, 0, sizeof *out);
        return load_text(spec, classes, classes ? n_classes : 0, 0, 0, out, NULL);
    }
    if (n_classes < 1) return data_load(spec, split, out);
    const char *csv = strncmp(spec, "csv:", 4) == 0 ? spec + 4
                      : strcmp(kind_of(spec), "csv:") == 0 ? spec
                                                           : NULL;
    if (csv) { /* mapped while parsing: errors name the line */
        memset(out, 0, sizeof *out);
        return load_csv(csv, classes, n_classes, out);
    }
    nb_status s = data_load(spec, split, out);
    if (s == NB_OK && (s = nb_data_map_classes(out, classes, n_classes, spec)) != NB_OK)
        nb_data_free(out);
    return s;
}

int data_is_csv(const char *spec) {
    return strncmp(spec, "csv:", 4) == 0 || strcmp(kind_of(spec), "csv:") == 0;
}

/* "[3, 32, 32]" into buf */
static const char *shape_text(char *buf, size_t size, int ndim, const int *dims) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int k = 0; k < ndim && used < size; k++)
        used += (size_t)snprintf(buf + used, size - used, "%s%d", k ? ", " : "", dims[k]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

/* dims without the dimensions of size 1 */
static int squeeze(int ndim, const int *dims, int *out) {
    int n = 0;
    for (int k = 0; k < ndim; k++)
        if (dims[k] != 1) out[n++] = dims[k];
    return n;
}

static int same_shape(int na, const int *a, int nb, const int *b) {
    int sa[NB_MAX_DIMS], sb[NB_MAX_DIMS];
    na = squeeze(na, a, sa);
    nb = squeeze(nb, b, sb);
    return na == nb && memcmp(sa, sb, sizeof *sa * (size_t)na) == 0;
}

nb_status data_check_shape(const nb_data *d, const char *spec, const nb_graph *g, nb_node input) {
    int ndim, dims[NB_MAX_DIMS];
    if (nb_node_shape(g, input, &ndim, dims) != NB_OK) return NB_ERR_ARG;
    int skip = nb_node_is_batched(g, input) ? 1 : 0, *m = dims + skip, nm = ndim - skip;
    /* flat features (CSV) or a flat input (dense layers) take any layout */
    if (d->ndim <= 1 || nm <= 1 || same_shape(d->ndim, d->dims, nm, m)) return NB_OK;
    char ds[64], ms[64];
    shape_text(ds, sizeof ds, d->ndim, d->dims);
    shape_text(ms, sizeof ms, nm, m);
    int hwc[3] = {nm == 3 ? m[1] : 0, nm == 3 ? m[2] : 0, nm == 3 ? m[0] : 0};
    if (nm == 3 && same_shape(d->ndim, d->dims, 3, hwc))
        return nb_set_error(NB_ERR_SHAPE, "%s: samples are %s, channels last (H W C), but the "
                            "model's input is C H W %s; add ,layout=hwc to the source to "
                            "transpose them", spec, ds, ms);
    return nb_set_error(NB_ERR_SHAPE, "%s: samples are %s but the model's input is %s", spec, ds,
                        ms);
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
