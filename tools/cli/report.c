/* The evaluation report on stdout, as JSON and as an SVG confusion matrix. */
#include "report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "outfile.h"
#include "svgheat.h"

/* Wider confusion matrices are left to --report and --confusion. */
enum { MAX_PRINTED_CLASSES = 20, MAX_LABEL = 32 };

int report_options(const char *cmd, const char *top_k, const char *json, const char *svg,
                   report_opts *o) {
    o->top_k = -1;
    o->json = json;
    o->svg = svg;
    if (top_k && !cli_int(cmd, "top-k", top_k, 0, 1L << 30, &o->top_k)) return 2;
    if ((json && !cli_check_output(cmd, "report", json)) ||
        (svg && !cli_check_output(cmd, "confusion", svg)))
        return 1;
    return 0;
}

const char *const *report_class_names(const preprocess *pre, const nb_data *d, int classes) {
    if (pre && pre->class_names && pre->n_classes == classes)
        return (const char *const *)pre->class_names;
    if (d && d->class_names && d->n_classes == classes)
        return (const char *const *)d->class_names;
    return NULL;
}

/* "3 Dress" (or "3" without names), cut to MAX_LABEL bytes. */
static const char *class_label(const char *const *names, int c, char *buf) {
    snprintf(buf, MAX_LABEL + 1, "%d%s%s", c, names ? " " : "", names ? names[c] : "");
    return buf;
}

/* A figure, marked '*' when it was 0/0 (taken as 0). */
static void figure(double v, int zero_division) {
    printf(" %9.4f%c", v, zero_division ? '*' : ' ');
}

static void print_row(const char *label, int width, const nb_class_metrics *m) {
    printf("%-*s", width, label);
    figure(m->precision, m->zero_division & NB_ZERO_DIV_PRECISION);
    figure(m->recall, m->zero_division & NB_ZERO_DIV_RECALL);
    figure(m->f1, m->zero_division & NB_ZERO_DIV_F1);
    printf(" %9zu\n", m->support);
}

static void print_confusion(const nb_report *r, const char *const *names, int width) {
    size_t k = (size_t)r->n_classes, most = 0;
    if (k > MAX_PRINTED_CLASSES) {
        printf("\nconfusion matrix: %zu classes, too wide to print (see --report, "
               "--confusion)\n", k);
        return;
    }
    for (size_t i = 0; i < k * k; i++) most = r->confusion[i] > most ? r->confusion[i] : most;
    int cw = snprintf(NULL, 0, "%zu", most > k - 1 ? most : k - 1) + 1;
    if (cw < 4) cw = 4;
    printf("\nconfusion matrix (rows: true class, columns: predicted class)\n%-*s", width, "");
    for (size_t c = 0; c < k; c++) printf("%*zu", cw, c);
    putchar('\n');
    char buf[MAX_LABEL + 1];
    for (size_t t = 0; t < k; t++) {
        printf("%-*s", width, class_label(names, (int)t, buf));
        for (size_t c = 0; c < k; c++) printf("%*zu", cw, r->confusion[t * k + c]);
        putchar('\n');
    }
}

static void print_classes(const nb_report *r, const char *const *names) {
    int width = 12;
    char buf[MAX_LABEL + 1];
    for (int c = 0; c < r->n_classes; c++) {
        int len = (int)strlen(class_label(names, c, buf));
        if (len > width) width = len;
    }
    width += 2;
    printf("\n%-*s %10s %10s %10s %9s\n", width, "class", "precision", "recall", "f1-score",
           "support");
    for (int c = 0; c < r->n_classes; c++)
        print_row(class_label(names, c, buf), width, &r->per_class[c]);
    print_row("macro avg", width, &r->macro);
    print_row("weighted avg", width, &r->weighted);
    if (r->zero_division)
        printf("* 0/0 taken as 0: a class never predicted (precision), without samples "
               "(recall), or both (f1-score)\n");
    if (r->top_k) printf("top-%d accuracy %.2f%%\n", r->top_k, 100 * r->top_k_accuracy);
    print_confusion(r, names, width);
}

static void print_regression(const nb_report *r) {
    printf("MAE %.6g, RMSE %.6g, R^2 %.6g\n", r->mae, r->rmse, r->r2);
    if (r->n_outputs < 2 || r->n_outputs > MAX_PRINTED_CLASSES) return;
    printf("\n%-8s %12s %12s %12s\n", "output", "MAE", "RMSE", "R^2");
    for (size_t j = 0; j < r->n_outputs; j++)
        printf("%-8zu %12.6g %12.6g %12.6g\n", j, r->mae_out[j], r->rmse_out[j], r->r2_out[j]);
}

static cJSON *json_figures(cJSON *o, const nb_class_metrics *m) {
    cJSON_AddNumberToObject(o, "precision", m->precision);
    cJSON_AddNumberToObject(o, "recall", m->recall);
    cJSON_AddNumberToObject(o, "f1", m->f1);
    cJSON_AddNumberToObject(o, "support", (double)m->support);
    cJSON_AddNumberToObject(o, "predicted", (double)m->predicted);
    cJSON *zd = cJSON_AddArrayToObject(o, "zero_division");
    const char *what[3] = {"precision", "recall", "f1"};
    for (int b = 0; b < 3; b++)
        if (m->zero_division & (1u << b)) cJSON_AddItemToArray(zd, cJSON_CreateString(what[b]));
    return o;
}

static void json_classes(cJSON *root, const nb_report *r, const char *const *names) {
    size_t k = (size_t)r->n_classes;
    cJSON_AddNumberToObject(root, "accuracy", r->accuracy);
    cJSON_AddNumberToObject(root, "top_k", r->top_k);
    if (r->top_k) cJSON_AddNumberToObject(root, "top_k_accuracy", r->top_k_accuracy);
    else cJSON_AddNullToObject(root, "top_k_accuracy");
    cJSON *classes = cJSON_AddArrayToObject(root, "classes");
    for (size_t c = 0; c < k; c++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", (double)c);
        if (names) cJSON_AddStringToObject(o, "name", names[c]);
        else cJSON_AddNullToObject(o, "name");
        cJSON_AddItemToArray(classes, json_figures(o, &r->per_class[c]));
    }
    cJSON_AddItemToObject(root, "macro_avg", json_figures(cJSON_CreateObject(), &r->macro));
    cJSON_AddItemToObject(root, "weighted_avg", json_figures(cJSON_CreateObject(), &r->weighted));
    cJSON *cm = cJSON_AddArrayToObject(root, "confusion_matrix");
    for (size_t t = 0; t < k; t++) {
        cJSON *row = cJSON_CreateArray();
        for (size_t c = 0; c < k; c++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber((double)r->confusion[t * k + c]));
        cJSON_AddItemToArray(cm, row);
    }
}

static void json_regression(cJSON *root, const nb_report *r) {
    cJSON_AddNumberToObject(root, "mae", r->mae);
    cJSON_AddNumberToObject(root, "rmse", r->rmse);
    cJSON_AddNumberToObject(root, "r2", r->r2); /* NaN: written as null */
    cJSON *outs = cJSON_AddArrayToObject(root, "outputs");
    for (size_t j = 0; j < r->n_outputs; j++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", (double)j);
        cJSON_AddNumberToObject(o, "mae", r->mae_out[j]);
        cJSON_AddNumberToObject(o, "rmse", r->rmse_out[j]);
        cJSON_AddNumberToObject(o, "r2", r->r2_out[j]);
        cJSON_AddItemToArray(outs, o);
    }
}

static int write_json(const char *cmd, const char *path, const nb_report *r,
                      const char *const *names) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "kind", r->n_classes ? "classification" : "regression");
    cJSON_AddNumberToObject(root, "samples", (double)r->n);
    cJSON_AddNumberToObject(root, "loss", r->loss);
    if (r->n_classes) json_classes(root, r, names);
    else json_regression(root, r);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return cli_fail(cmd, "--report %s: out of memory", path);
    outfile o; /* replaced whole or not at all */
    FILE *f = outfile_open(&o, path);
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && ok) ok = outfile_commit(&o) == 0;
    else if (f) outfile_abort(&o);
    free(text);
    return ok ? 0 : cli_fail(cmd, "--report %s: cannot write the file", path);
}

static int write_svg(const char *cmd, const char *path, const nb_report *r,
                     const char *const *names) {
    size_t k = (size_t)r->n_classes;
    double *numbers = malloc(2 * k * k * sizeof *numbers), *shade = numbers + k * k;
    if (!numbers) return cli_fail(cmd, "--confusion %s: out of memory", path);
    for (size_t t = 0; t < k; t++)
        for (size_t c = 0; c < k; c++) {
            size_t i = t * k + c, support = r->per_class[t].support;
            numbers[i] = (double)r->confusion[i];
            shade[i] = support ? numbers[i] / (double)support : NAN;
        }
    char title[96];
    snprintf(title, sizeof title, "confusion matrix: %zu samples, accuracy %.2f%%", r->n,
             100 * r->accuracy);
    svg_heatmap h = {title, "predicted class", "true class", (int)k, (int)k, numbers, shade,
                     names, names, "shade: share of the true class's samples (grey: none)"};
    char *tmp = NULL; /* replaced whole or not at all */
    int rc = outfile_temp(path, &tmp);
    if (rc == 0 && (rc = svg_write_heatmap(tmp, &h)) == 0) rc = outfile_replace(tmp, path);
    else if (tmp) remove(tmp);
    free(tmp);
    free(numbers);
    return rc == 0 ? 0 : cli_fail(cmd, "--confusion %s: cannot write the file", path);
}

/* The report's kind for m (*regression: an mse model), checked against the
 * options, and its top-k.  Returns 0 or the exit code. */
static int report_kind(const char *cmd, const nb_model *m, const report_opts *o,
                       int *regression, int *top_k) {
    *regression = !m->classes && strcmp(nb_node_op(m->graph, m->loss), "mse_loss") == 0;
    if (!m->classes && (o->svg || o->top_k > 0))
        return cli_usage_error(cmd, "--%s needs a classifier (a model with loss cross_entropy)",
                               o->svg ? "confusion" : "top-k");
    if (!m->classes && !*regression && o->json)
        return cli_usage_error(cmd, "--report needs a model with loss cross_entropy or mse");
    if (cli_per_position(m) && (o->svg || o->json || o->top_k > 0))
        return cli_usage_error(cmd, "--%s: a model with a class per position gives its loss "
                               "and accuracy only", o->svg ? "confusion" : o->json ? "report"
                                                                          : "top-k");
    if (o->top_k > m->classes)
        return cli_usage_error(cmd, "--top-k %ld: the model has %d classes", o->top_k,
                               m->classes);
    *top_k = o->top_k >= 0 ? (int)o->top_k : m->classes > 5 && !cli_per_position(m) ? 5 : 0;
    return 0;
}

int report_check(const char *cmd, const nb_model *m, const report_opts *o) {
    int regression, top_k;
    return report_kind(cmd, m, o, &regression, &top_k);
}

int report_evaluate(const char *cmd, nb_model *m, const nb_data *d, int batch,
                    const char *const *names, const char *prefix, const report_opts *o) {
    int regression = 0, top_k = 0, rc = report_kind(cmd, m, o, &regression, &top_k);
    if (rc) return rc;
    nb_report r;
    memset(&r, 0, sizeof r);
    nb_status s;
    if (cli_per_position(m)) { /* loss and accuracy over the positions that count */
        s = nb_evaluate(m->graph, m->input, m->target, m->loss, m->output, d, batch, &r.loss,
                        &r.accuracy);
    } else if (m->classes || regression) { /* else (bce) the loss only */
        s = nb_report_init(&r, m->classes, top_k, cli_sample_size(m->graph, m->output));
        if (s == NB_OK)
            s = nb_evaluate_report(m->graph, m->input, m->target, m->loss, m->output, d, batch,
                                   &r);
    } else {
        s = nb_evaluate(m->graph, m->input, m->target, m->loss, NB_NONE, d, batch, &r.loss,
                        NULL);
    }
    if (s != NB_OK) {
        nb_report_free(&r);
        return cli_fail(cmd, "%s%s%s", prefix, *prefix ? "evaluation: " : "", nb_last_error());
    }
    printf("%sloss %.4f", prefix, r.loss);
    if (m->classes) printf(", %saccuracy %.2f%%", prefix, 100 * r.accuracy);
    printf(" (%zu samples)\n", d->n);
    if (m->classes && !cli_per_position(m)) print_classes(&r, names);
    else if (regression) print_regression(&r);
    if (o->json) rc = write_json(cmd, o->json, &r, names);
    if (!rc && o->svg) rc = write_svg(cmd, o->svg, &r, names);
    nb_report_free(&r);
    return rc;
}
