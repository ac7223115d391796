/* nabla eval MODEL --weights FILE --data SRC: loss and accuracy of saved weights. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "data_source.h"
#include "folder_source.h"
#include "outputs.h"
#include "report.h"

static const char *help =
    "usage: nabla eval MODEL.nn --weights FILE --data SOURCE [options]\n\n"
    "Loss and accuracy of the weights in FILE (written by 'nabla train --out', a\n"
    "checkpoint, or PyTorch with the same tensor names) on SOURCE. For fashion-mnist\n"
    "the test split is used. Inputs are prepared as they were for training (the\n"
    "weights file records how).\n\n"
    "A classifier (loss cross_entropy) also gets per-class precision, recall, F1 and\n"
    "support, their macro and weighted averages, top-k accuracy and the confusion\n"
    "matrix (rows: true class, columns: predicted); a regression model (loss mse)\n"
    "gets MAE, RMSE and R^2.  Definitions: docs/metrics.md.  A model with a class\n"
    "per position (scores [B, T, C]) gets its loss and accuracy over the positions\n"
    "that count (docs/sequences.md).\n\n"
    "  --batch N              samples per forward pass (default 256)\n"
    "  --top-k K              top-K accuracy (default: 5 with more than 5 classes,\n"
    "                         else none; 0: none)\n"
    "  --report FILE.json     write the whole report as JSON\n"
    "  --confusion FILE.svg   draw the confusion matrix\n"
    "  --skip-bad             with folder:DIR, skip images that do not decode\n"
    "                         (counted) instead of failing\n"
    "  --precision P          fp32 (default) or bf16: the products on operands rounded to\n"
    "                         bfloat16, as 'nabla train --precision bf16' (needs a CPU\n"
    "                         with AVX512-BF16)\n";

/* Load model, weights and their preprocessing: shared with predict. */
int load_trained(const char *cmd, const char *model_path, const char *weights, nb_model *m,
                 preprocess *pre) {
    char path[4096];
    model_path = cli_model_path(model_path, path, sizeof path);
    if (cli_model_load(model_path, m) != NB_OK) return cli_fail(cmd, "%s", nb_last_error());
    if (nb_load_weights(m->graph, weights, NB_LOAD_ALLOW_EXTRA) != NB_OK ||
        preprocess_from_file(weights, pre) != NB_OK) {
        int rc = cli_fail(cmd, "%s", nb_last_error());
        nb_model_free(m);
        return rc;
    }
    char bad[160];
    if (cli_nonfinite_param(m->graph, bad, sizeof bad)) {
        preprocess_free(pre);
        nb_model_free(m);
        return cli_fail(cmd, "--weights %s: %s; these weights cannot be used", weights, bad);
    }
    return 0;
}

int cmd_eval(int argc, char **argv) {
    cli_flag f[] = {{"weights", 1, 0}, {"data", 1, 0},   {"batch", 1, 0},
                    {"top-k", 1, 0},   {"report", 1, 0}, {"confusion", 1, 0},
                    {"skip-bad", 0, 0}, {"set", 1, 0},  {"precision", 1, 0}};
    const int nf = (int)(sizeof f / sizeof f[0]);
    const char *pos[1];
    int npos, want_help;
    int rc = cli_parse("eval", argc, argv, 2, f, nf, pos, 1, &npos, &want_help);
    if (rc) return rc;
    if (want_help) return printf("%s%s", help, cli_set_help), 0;
    if (npos != 1) return cli_usage_error("eval", "expected one model file");
    const char *weights = cli_get(f, nf, "weights"), *spec = cli_get(f, nf, "data"), *v;
    if (!weights || !spec) return cli_usage_error("eval", "--weights and --data are required");
    long batch = 256;
    if ((v = cli_get(f, nf, "batch")) && !cli_int("eval", "batch", v, 1, 1 << 20, &batch)) return 2;
    nb_precision precision = NB_PRECISION_FP32;
    if ((v = cli_get(f, nf, "precision")) && !cli_precision("eval", v, &precision)) return 2;
    report_opts ro;
    if ((rc = report_options("eval", cli_get(f, nf, "top-k"), cli_get(f, nf, "report"),
                             cli_get(f, nf, "confusion"), &ro)))
        return rc;
    cli_files files; /* the reports are neither an input nor each other, and locked */
    cli_files_init(&files);
    cli_files_input(&files, "the model file", pos[0]);
    cli_files_input(&files, "--weights", weights);
    cli_files_data(&files, "--data", spec);
    cli_files_output(&files, "--report", ro.json);
    cli_files_output(&files, "--confusion", ro.svg);
    if ((rc = cli_files_check(&files, "eval")) || (rc = cli_files_lock(&files, "eval"))) {
        cli_files_release(&files);
        return rc;
    }
    nb_model m;
    preprocess pre;
    if ((rc = load_trained("eval", pos[0], weights, &m, &pre))) {
        cli_files_release(&files);
        return rc;
    }
    folder_source_setup(&m, cli_get(f, nf, "skip-bad") != NULL, 0);
    if ((rc = cli_set_precision("eval", m.graph, precision))) goto done_model;
    if (m.loss == NB_NONE) {
        rc = cli_fail("eval", "%s: the model has no loss line", pos[0]);
        goto done_model;
    }
    nb_data d;
    data_text_default_length(cli_sample_size(m.graph, m.input));
    /* labels numbered as in training (the class list saved with the weights) */
    int n_classes = cli_per_position(&m) ? 0 : pre.n_classes ? pre.n_classes : m.classes;
    nb_status s = data_load_classes(spec, data_has_test_split(spec) ? "test" : "train",
                                    pre.n_classes ? pre.class_names : NULL, n_classes, &d);
    if (s == NB_OK) s = preprocess_apply(&pre, &d);
    if (s == NB_OK && d.sample_size != cli_sample_size(m.graph, m.input))
        s = nb_set_error(NB_ERR_SHAPE, "%s: %zu values per sample, the model takes %zu", spec,
                   d.sample_size, cli_sample_size(m.graph, m.input));
    if (s == NB_OK) s = data_check_shape(&d, spec, m.graph, m.input);
    if (s != NB_OK)
        rc = cli_fail("eval", "%s", nb_last_error());
    else
        rc = report_evaluate("eval", &m, &d, (int)batch, report_class_names(&pre, &d, m.classes),
                             "", &ro);
    nb_data_free(&d);
done_model:
    preprocess_free(&pre);
    nb_model_free(&m);
    cli_files_release(&files);
    return rc;
}
