/* nabla predict MODEL --weights FILE --input SRC: predictions as CSV. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "data_source.h"
#include "folder_source.h"

static const char *help =
    "usage: nabla predict MODEL.nn --weights FILE --input SOURCE [--limit N] [--skip-bad]\n"
    "                     [--precision fp32|bf16]\n\n"
    "Predict every sample of SOURCE (csv:FILE[,label=COL|none], idx:IMAGES,\n"
    "npy:X.npy (idx and npy with ,layout=hwc for channels-last images), folder:DIR\n"
    "or one image file, IMAGE.png|jpg|jpeg; see nabla train --help) and\n"
    "print CSV on standard output: for a classifier the sample number, the\n"
    "predicted class (and its name when known) and the probability of every class;\n"
    "for a model with a class per position the class of each (class0, class1, ...)\n"
    "and the probabilities of each (p0_0, p0_1, ...: position, class);\n"
    "for a regression model the outputs.  With csv:FILE a label column (by default\n"
    "the last column, when the file has one more column than the model has inputs)\n"
    "is ignored.  Images are numbered in file-name order (docs/images.md);\n"
    "--skip-bad skips those that do not decode.  --precision bf16 computes the\n"
    "products on operands rounded to bfloat16, as 'nabla train --precision bf16'.\n";

int load_trained(const char *cmd, const char *model_path, const char *weights, nb_model *m,
                 preprocess *pre);

/* The first largest of p[0..n). */
static size_t argmax(const nb_real *p, size_t n) {
    size_t best = 0;
    for (size_t c = 1; c < n; c++)
        if (p[c] > p[best]) best = c;
    return best;
}

/* Class names are printed only when there is one per output. */
static int named_classes(const nb_model *m, const preprocess *pre, size_t outs) {
    return pre->n_classes > 0 && pre->n_classes == m->classes && (size_t)m->classes == outs;
}

/* Positions per sample: a model with a class per position predicts one at
 * each (columns class0.., p0_0..), any other one class per sample. */
static size_t positions_of(const nb_model *m) {
    return cli_per_position(m) ? cli_sample_size(m->graph, m->target) : 1;
}

static void print_header(const nb_model *m, const preprocess *pre, size_t outs) {
    printf("sample");
    size_t P = positions_of(m);
    if (P > 1) {
        for (size_t t = 0; t < P; t++) printf(",class%zu", t);
        for (size_t k = 0; k < outs; k++) printf(",p%zu_%zu", k / (outs / P), k % (outs / P));
    } else if (m->classes) {
        printf(",class%s", named_classes(m, pre, outs) ? ",name" : "");
        for (size_t c = 0; c < outs; c++) {
            if (named_classes(m, pre, outs)) {
                fputs(",p_", stdout);
                for (const char *p = pre->class_names[c]; *p; p++) /* keep the CSV valid */
                    putchar(*p == ',' || *p == '"' || *p == '\n' ? '_' : *p);
            } else {
                printf(",p%zu", c);
            }
        }
    } else {
        for (size_t k = 0; k < outs; k++) printf(",out%zu", k);
    }
    putchar('\n');
}

int cmd_predict(int argc, char **argv) {
    cli_flag f[] = {{"weights", 1, 0}, {"input", 1, 0}, {"limit", 1, 0}, {"skip-bad", 0, 0},
                    {"set", 1, 0},     {"precision", 1, 0}};
    const int nf = (int)(sizeof f / sizeof f[0]);
    const char *pos[1];
    int npos, want_help;
    int rc = cli_parse("predict", argc, argv, 2, f, nf, pos, 1, &npos, &want_help);
    if (rc) return rc;
    if (want_help) return printf("%s%s", help, cli_set_help), 0;
    if (npos != 1) return cli_usage_error("predict", "expected one model file");
    const char *weights = cli_get(f, nf, "weights"), *spec = cli_get(f, nf, "input"), *v;
    if (!weights || !spec) return cli_usage_error("predict", "--weights and --input are required");
    long limit = -1;
    if ((v = cli_get(f, nf, "limit")) && !cli_int("predict", "limit", v, 1, 1L << 40, &limit)) return 2;
    nb_precision precision = NB_PRECISION_FP32;
    if ((v = cli_get(f, nf, "precision")) && !cli_precision("predict", v, &precision)) return 2;
    nb_model m;
    preprocess pre;
    if ((rc = load_trained("predict", pos[0], weights, &m, &pre))) return rc;
    if ((rc = cli_set_precision("predict", m.graph, precision))) {
        preprocess_free(&pre);
        nb_model_free(&m);
        return rc;
    }
    folder_source_setup(&m, cli_get(f, nf, "skip-bad") != NULL, 0);
    nb_graph *g = m.graph;
    size_t in_size = cli_sample_size(g, m.input);
    nb_data d;
    data_text_default_length(in_size);
    nb_status s = data_is_text(spec) /* encoded with the model's vocabulary */
                      ? data_load_classes(spec, "test", pre.class_names, pre.n_classes, &d)
                      : data_load(spec, "test", &d);
    /* a CSV whose last column is the label: drop it rather than refuse */
    if (s == NB_OK && data_is_csv(spec) && !strstr(spec, ",label=") &&
        d.sample_size + 1 == in_size) {
        nb_data_free(&d);
        char with_none[4200];
        snprintf(with_none, sizeof with_none, "%s,label=none", spec);
        s = data_load(with_none, "test", &d);
    }
    if (s == NB_OK && d.sample_size != in_size)
        s = nb_set_error(NB_ERR_SHAPE, "%s: %zu values per sample, the model takes %zu", spec,
                   d.sample_size, in_size);
    if (s == NB_OK) s = data_check_shape(&d, spec, g, m.input);
    if (s == NB_OK) s = preprocess_apply(&pre, &d);
    size_t n = limit > 0 && (size_t)limit < d.n ? (size_t)limit : d.n;
    enum { BATCH = 256 };
    nb_real *x = s == NB_OK ? malloc(BATCH * in_size * sizeof *x) : NULL;
    if (s == NB_OK && !x) s = nb_set_error(NB_ERR_NOMEM, "out of memory");
    nb_node out = m.classes ? nb_softmax(g, m.output) : m.output;
    if (s == NB_OK && out == NB_NONE) s = NB_ERR_ARG;
    size_t outs = out != NB_NONE ? cli_sample_size(g, out) : 0;
    nb_graph_set_training(g, 0);
    if (s == NB_OK) print_header(&m, &pre, outs);
    for (size_t start = 0; s == NB_OK && start < n; start += BATCH) {
        size_t count = n - start < BATCH ? n - start : BATCH;
        s = nb_data_batch(&d, NULL, start, count, x, NULL);
        if (s == NB_OK) s = nb_set_input(g, m.input, x, (int)count);
        if (s == NB_OK) s = nb_forward(g, out);
        const nb_real *p = s == NB_OK ? nb_value(g, out) : NULL;
        for (size_t i = 0; p && i < count; i++, p += outs) {
            printf("%zu", start + i);
            if (positions_of(&m) > 1) {
                size_t P = positions_of(&m), C = outs / P;
                for (size_t t = 0; t < P; t++) printf(",%zu", argmax(p + t * C, C));
                for (size_t c = 0; c < outs; c++) printf(",%.6f", (double)p[c]);
            } else if (m.classes) {
                size_t best = argmax(p, outs);
                printf(",%zu", best);
                if (named_classes(&m, &pre, outs)) {
                    putchar(',');
                    for (const char *q = pre.class_names[best]; *q; q++)
                        putchar(*q == ',' || *q == '"' || *q == '\n' ? '_' : *q);
                }
                for (size_t c = 0; c < outs; c++) printf(",%.6f", (double)p[c]);
            } else {
                for (size_t c = 0; c < outs; c++) printf(",%.9g", (double)p[c]);
            }
            putchar('\n');
        }
    }
    if (s != NB_OK) rc = cli_fail("predict", "%s", nb_last_error());
    free(x);
    nb_data_free(&d);
    preprocess_free(&pre);
    nb_model_free(&m);
    return rc;
}
