/* nabla import MODEL.onnx [--out MODEL.nn --weights W.safetensors] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "outfile.h"
#include "outputs.h"

static const char *help =
    "usage: nabla import MODEL.onnx [--out MODEL.nn] [--weights FILE]\n"
    "                    [--loss cross_entropy|mse|bce|none] [--data-input bytes/255|raw]\n\n"
    "Read an ONNX model (opsets 13 to 24) made of the ops nabla exports, or\n"
    "exported by PyTorch from such layers, with tensors in the model or in an\n"
    "external data file beside it, and write it as a nabla model file (--out;\n"
    "without it the model text is printed) and its weights as safetensors\n"
    "(--weights), which nabla eval, predict and train then use as usual.\n"
    "Layers and parameters are named after the ONNX names where they allow\n"
    "(\"fc.weight\").  A model with a [batch, C] output (or, from int64 token\n"
    "ids, [batch, T, C]) gets 'loss cross_entropy' and loses a final Softmax\n"
    "(nabla predict applies it); --loss chooses another loss, or none.  The\n"
    "metadata_props that nabla export writes (data.input, data.mean,\n"
    "data.inv_std, data.classes) go into the weights' metadata; --data-input\n"
    "bytes/255 says that the model expects byte images divided by 255 (as\n"
    "PyTorch's ToTensor gives).  An op nabla does not import is an error naming\n"
    "it and its node.  docs/onnx.md lists the mapping.\n";

/* The metadata nabla reads from weights: the data.* pairs, each key once,
 * data.input replaced by --data-input. */
static int weights_meta(const nb_kv *meta, int n, const char *data_input, nb_kv *out) {
    int k = 0;
    if (data_input) out[k++] = (nb_kv){"data.input", data_input};
    for (int i = 0; i < n; i++) {
        int dup = strncmp(meta[i].key, "data.", 5) != 0;
        for (int j = 0; j < k && !dup; j++) dup = !strcmp(out[j].key, meta[i].key);
        if (!dup) out[k++] = meta[i];
    }
    return k;
}

static int write_text(const char *path, const char *text) {
    outfile o;
    FILE *f = outfile_open(&o, path);
    if (!f) return -1;
    if (fputs(text, f) < 0) {
        outfile_abort(&o);
        return -1;
    }
    return outfile_commit(&o);
}

static int import_model(const char *onnx, const char *out, const char *weights,
                        const char *loss, const char *data_input) {
    nb_model m;
    nb_kv *meta = NULL;
    int n_meta = 0, rc = 0;
    if (nb_model_from_onnx(onnx, loss, &m, &meta, &n_meta) != NB_OK)
        return cli_fail("import", "%s", nb_last_error());
    nb_kv *kv = malloc(((size_t)n_meta + 1) * sizeof *kv);
    int n_kv = kv ? weights_meta(meta, n_meta, data_input, kv) : 0;
    const char *input = NULL;
    for (int k = 0; k < n_kv; k++)
        if (!strcmp(kv[k].key, "data.input")) input = kv[k].value;
    if (!kv) rc = cli_fail("import", "out of memory");
    else if (input && strcmp(input, "bytes/255") && strcmp(input, "standardized") &&
             strcmp(input, "raw"))
        rc = cli_fail("import", "%s: metadata data.input '%s' is not bytes/255, standardized "
                      "or raw", onnx, input);
    else if (weights && nb_save_weights(m.graph, weights, kv, n_kv) != NB_OK)
        rc = cli_fail("import", "%s", nb_last_error());
    else if (out && write_text(out, m.text) != 0)
        rc = cli_fail("import", "--out %s: cannot write the model file", out);
    else if (!out)
        fputs(m.text, stdout);
    free(kv);
    nb_kv_free(meta, n_meta);
    nb_model_free(&m);
    return rc;
}

/* Neither output is a file the model keeps tensors in (external data), which
 * the import reads: 0, or 1 after an error line. */
static int check_external_data(const char *onnx, const char *out, const char *weights) {
    nb_kv *data = NULL;
    int n = 0, rc = 0;
    struct stat st; /* outputs that do not exist yet are no one's data: no second read */
    if ((!out || stat(out, &st) != 0) && (!weights || stat(weights, &st) != 0)) return 0;
    if (nb_onnx_external_data(onnx, &data, &n) != NB_OK) return 0; /* the import says why */
    const char *outputs[2][2] = {{"--out", out}, {"--weights", weights}};
    for (int o = 0; o < 2 && !rc; o++) {
        struct stat a, b;
        if (!outputs[o][1] || stat(outputs[o][1], &a) != 0) continue;
        for (int k = 0; k < n && !rc; k++)
            if (stat(data[k].value, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
                rc = cli_fail("import", "%s %s is the external data file '%s' of %s, which the "
                              "import reads", outputs[o][0], outputs[o][1], data[k].key, onnx);
    }
    nb_kv_free(data, n);
    return rc;
}

int cmd_import(int argc, char **argv) {
    cli_flag f[] = {{"out", 1, 0}, {"weights", 1, 0}, {"loss", 1, 0}, {"data-input", 1, 0}};
    const int nf = (int)(sizeof f / sizeof f[0]);
    const char *pos[1];
    int npos, want_help;
    int rc = cli_parse("import", argc, argv, 2, f, nf, pos, 1, &npos, &want_help);
    if (rc) return rc;
    if (want_help) return fputs(help, stdout), 0;
    if (npos != 1) return cli_usage_error("import", "expected one ONNX file");
    const char *out = cli_get(f, nf, "out"), *weights = cli_get(f, nf, "weights");
    const char *loss = cli_get(f, nf, "loss"), *data_input = cli_get(f, nf, "data-input");
    if (out && !weights)
        return cli_usage_error("import", "--out needs --weights: the model file is used with them");
    if (loss && strcmp(loss, "cross_entropy") && strcmp(loss, "mse") && strcmp(loss, "bce") &&
        strcmp(loss, "none"))
        return cli_usage_error("import", "--loss %s: expected cross_entropy, mse, bce or none", loss);
    if (data_input && strcmp(data_input, "bytes/255") && strcmp(data_input, "raw"))
        return cli_usage_error("import", "--data-input %s: expected bytes/255 or raw", data_input);
    if ((out && !cli_check_output("import", "out", out)) ||
        (weights && !cli_check_output("import", "weights", weights)))
        return 1;
    cli_files files; /* the outputs are neither the ONNX file nor each other */
    cli_files_init(&files);
    cli_files_input(&files, "the ONNX file", pos[0]);
    if (out) cli_files_output(&files, "--out", out);
    if (weights) cli_files_output(&files, "--weights", weights);
    if ((rc = cli_files_check(&files, "import")) || (rc = cli_files_lock(&files, "import"))) {
        cli_files_release(&files);
        return rc;
    }
    if (!(rc = check_external_data(pos[0], out, weights)))
        rc = import_model(pos[0], out, weights, loss, data_input);
    cli_files_release(&files);
    return rc;
}
