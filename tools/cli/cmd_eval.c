/* nabla eval MODEL --weights FILE --data SRC: loss and accuracy of saved weights. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "data_source.h"

static const char *help =
    "usage: nabla eval MODEL.nn --weights FILE --data SOURCE [--batch N]\n\n"
    "Loss and accuracy of the weights in FILE (written by 'nabla train --out', a\n"
    "checkpoint, or PyTorch with the same tensor names) on SOURCE. For fashion-mnist\n"
    "the test split is used. Inputs are prepared as they were for training (the\n"
    "weights file records how).\n";

/* Load model, weights and their preprocessing: shared with predict. */
int load_trained(const char *cmd, const char *model_path, const char *weights, nb_model *m,
                 preprocess *pre) {
    if (nb_model_load(model_path, m) != NB_OK) return cli_fail(cmd, "%s", nb_last_error());
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
    cli_flag f[] = {{"weights", 1, 0}, {"data", 1, 0}, {"batch", 1, 0}};
    const int nf = 3;
    const char *pos[1];
    int npos, want_help;
    int rc = cli_parse("eval", argc, argv, 2, f, nf, pos, 1, &npos, &want_help);
    if (rc) return rc;
    if (want_help) return fputs(help, stdout), 0;
    if (npos != 1) return cli_usage_error("eval", "expected one model file");
    const char *weights = cli_get(f, nf, "weights"), *spec = cli_get(f, nf, "data"), *v;
    if (!weights || !spec) return cli_usage_error("eval", "--weights and --data are required");
    long batch = 256;
    if ((v = cli_get(f, nf, "batch")) && !cli_int("eval", "batch", v, 1, 1 << 20, &batch)) return 2;
    nb_model m;
    preprocess pre;
    if ((rc = load_trained("eval", pos[0], weights, &m, &pre))) return rc;
    if (m.loss == NB_NONE) {
        rc = cli_fail("eval", "%s: the model has no loss line", pos[0]);
        goto done_model;
    }
    nb_data d;
    nb_status s = data_load(spec, data_has_test_split(spec) ? "test" : "train", &d);
    if (s == NB_OK) s = preprocess_apply(&pre, &d);
    double loss, acc;
    if (s == NB_OK && d.sample_size != cli_sample_size(m.graph, m.input))
        s = nb_set_error(NB_ERR_SHAPE, "%s: %zu values per sample, the model takes %zu", spec,
                   d.sample_size, cli_sample_size(m.graph, m.input));
    if (s == NB_OK)
        s = nb_evaluate(m.graph, m.input, m.target, m.loss, m.classes ? m.output : NB_NONE, &d,
                        (int)batch, &loss, &acc);
    if (s != NB_OK) {
        rc = cli_fail("eval", "%s", nb_last_error());
    } else {
        printf("loss %.4f", loss);
        if (acc >= 0) printf(", accuracy %.2f%%", 100 * acc);
        printf(" (%zu samples)\n", d.n);
    }
    nb_data_free(&d);
done_model:
    preprocess_free(&pre);
    nb_model_free(&m);
    return rc;
}
