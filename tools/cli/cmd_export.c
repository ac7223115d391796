/* nabla export MODEL.nn --weights W.safetensors --onnx OUT.onnx */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "data_source.h"
#include "outputs.h"

static const char *help =
    "usage: nabla export MODEL.nn --weights FILE --onnx OUT.onnx [--logits]\n\n"
    "Write the model with its weights as an ONNX model (IR version 8, opset 17)\n"
    "that ONNX Runtime and other tools run: from the model's input to its output,\n"
    "without the loss, in inference form (dropout is the identity, batch norm uses\n"
    "its running statistics).  The batch dimension is dynamic (\"batch\").  A\n"
    "classifier's output is the probabilities, as nabla predict prints them;\n"
    "--logits exports the scores before the softmax instead.  The weights' class\n"
    "names and preprocessing go to the model's metadata_props (data.input,\n"
    "data.mean, data.inv_std, data.classes).  An op with no ONNX counterpart is an\n"
    "error naming it.  docs/onnx.md lists the mapping.\n";

int load_trained(const char *cmd, const char *model_path, const char *weights, nb_model *m,
                 preprocess *pre);

static int export_model(const char *model, const char *weights, const char *out, int logits) {
    nb_model m;
    preprocess pre;
    int rc = load_trained("export", model, weights, &m, &pre);
    if (rc) return rc;
    nb_kv meta[4];
    int n_meta = preprocess_to_meta(&pre, meta);
    nb_node y = m.classes && !logits ? nb_softmax(m.graph, m.output) : m.output;
    nb_status s = y == NB_NONE ? NB_ERR_ARG : nb_export_onnx(m.graph, m.input, y, out, meta, n_meta);
    if (s != NB_OK) rc = cli_fail("export", "%s", nb_last_error());
    preprocess_free(&pre);
    nb_model_free(&m);
    return rc;
}

int cmd_export(int argc, char **argv) {
    cli_flag f[] = {{"weights", 1, 0}, {"onnx", 1, 0}, {"logits", 0, 0}, {"set", 1, 0}};
    const int nf = (int)(sizeof f / sizeof f[0]);
    const char *pos[1];
    int npos, want_help;
    int rc = cli_parse("export", argc, argv, 2, f, nf, pos, 1, &npos, &want_help);
    if (rc) return rc;
    if (want_help) return printf("%s%s", help, cli_set_help), 0;
    if (npos != 1) return cli_usage_error("export", "expected one model file");
    const char *weights = cli_get(f, nf, "weights"), *out = cli_get(f, nf, "onnx");
    if (!weights || !out) return cli_usage_error("export", "--weights and --onnx are required");
    if (!cli_check_output("export", "onnx", out)) return 1;
    cli_files files; /* the ONNX file is neither input, and locked while written */
    cli_files_init(&files);
    cli_files_input(&files, "the model file", pos[0]);
    cli_files_input(&files, "--weights", weights);
    cli_files_output(&files, "--onnx", out);
    if ((rc = cli_files_check(&files, "export")) || (rc = cli_files_lock(&files, "export"))) {
        cli_files_release(&files);
        return rc;
    }
    rc = export_model(pos[0], weights, out, cli_get(f, nf, "logits") != NULL);
    cli_files_release(&files);
    return rc;
}
