/* nabla info SPEC: what a model file builds. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char *help =
    "usage: nabla info MODEL.nn [--set NAME=VALUE ...]\n\n"
    "Print every node of the model with its shape (B is the batch), the number of\n"
    "parameters, and the floating-point operations of a forward pass per sample.\n";

static void human(char *buf, size_t n, double v) {
    if (v >= 1e9) snprintf(buf, n, "%.2fG", v / 1e9);
    else if (v >= 1e6) snprintf(buf, n, "%.2fM", v / 1e6);
    else if (v >= 1e3) snprintf(buf, n, "%.1fk", v / 1e3);
    else snprintf(buf, n, "%.0f", v);
}

int cmd_info(int argc, char **argv) {
    cli_flag f[] = {{"set", 1, 0}};
    const char *pos[1];
    int npos, want_help;
    int rc = cli_parse("info", argc, argv, 2, f, 1, pos, 1, &npos, &want_help);
    if (rc) return rc;
    if (want_help) return printf("%s%s", help, cli_set_help), 0;
    if (npos != 1) return cli_usage_error("info", "expected one model file");
    nb_model m;
    char path[4096];
    pos[0] = cli_model_path(pos[0], path, sizeof path);
    if (cli_model_load(pos[0], &m) != NB_OK) return cli_fail("info", "%s", nb_last_error());
    nb_graph *g = m.graph;
    nb_graph_set_batch(g, 1);
    int wname = 4, wop = 2; /* column widths from the longest name and op */
    for (int i = 0; i < nb_graph_node_count(g); i++) {
        int ln = (int)strlen(nb_node_name(g, i)), lo = (int)strlen(nb_node_op(g, i));
        if (ln > wname) wname = ln;
        if (lo > wop) wop = lo;
    }
    printf("model %s\n\n  %-4s %-*s %-*s %-20s %10s %12s\n", pos[0], "#", wname, "node", wop, "op",
           "shape", "params", "FLOPs");
    double flops = 0;
    for (int i = 0; i < nb_graph_node_count(g); i++) {
        int ndim, dims[NB_MAX_DIMS];
        nb_node_shape(g, i, &ndim, dims);
        char shape[96];
        size_t used = 0;
        for (int d = 0; d < ndim && used < sizeof shape; d++) {
            int w = d == 0 && nb_node_is_batched(g, i)
                        ? snprintf(shape + used, sizeof shape - used, "[B")
                        : snprintf(shape + used, sizeof shape - used, "%s%d", d ? ", " : "[", dims[d]);
            used += w > 0 ? (size_t)w : 0;
        }
        if (used < sizeof shape) snprintf(shape + used, sizeof shape - used, ndim ? "]" : "[]");
        const char *op = nb_node_op(g, i);
        int is_param = op && op[0] == 'p' && op[1] == 'a';
        double f = nb_node_flops(g, i);
        flops += f;
        char fs[32] = "";
        if (f > 0) human(fs, sizeof fs, f);
        printf("  %-4d %-*s %-*s %-20s %10zu %12s\n", i, wname, nb_node_name(g, i), wop, op, shape,
               is_param ? nb_node_numel(g, i) : 0, fs);
    }
    char fs[32];
    human(fs, sizeof fs, flops);
    size_t params = nb_param_count(g);
    printf("\nparameters: %zu (%.2f MB as float32)\n", params, (double)params * 4 / 1e6);
    printf("forward FLOPs per sample: %s (training step about 3x: forward + backward)\n", fs);
    if (m.loss != NB_NONE) printf("loss: %s", nb_node_op(g, m.loss));
    if (m.classes) printf(", %d classes", m.classes);
    if (m.loss != NB_NONE) printf("\n");
    nb_model_free(&m);
    return 0;
}
