/* nabla gradcheck MODEL: the model's analytic gradients against central
 * finite differences.  This runs in the nabla-gradcheck program, which is
 * the library built with doubles, so the comparison is limited by the
 * finite-difference formula and not by float32 rounding. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static const char *help =
    "usage: nabla gradcheck MODEL.nn [--seed N] [--batch N] [--samples N]\n\n"
    "Build the model in double precision with random parameters, random inputs and\n"
    "random targets, and compare the gradient of the loss with respect to every\n"
    "parameter tensor with central finite differences (step 1e-6), as PyTorch's\n"
    "gradcheck does: pass when |analytic - numeric| <= 1e-5 + 1e-3 |numeric|.\n"
    "A value outside that is measured again with step 1e-8, in case the first\n"
    "difference straddled a kink (a ReLU input or a max-pool switch near it).\n\n"
    "  --seed N      random seed (default 1)\n"
    "  --batch N     samples in the batch (default 3)\n"
    "  --samples N   scalars compared per tensor, evenly spaced (default 64; 0: all)\n";

int gradcheck_main(int argc, char **argv) {
    cli_flag flags[] = {{"seed", 1, NULL}, {"batch", 1, NULL}, {"samples", 1, NULL},
                          {"set", 1, NULL}};
    const int nf = (int)(sizeof flags / sizeof flags[0]);
    const char *pos[1];
    int npos, want_help;
    int rc = cli_parse("gradcheck", argc, argv, 2, flags, nf, pos, 1, &npos, &want_help);
    if (rc) return rc;
    if (want_help) return printf("%s%s", help, cli_set_help), 0;
    if (npos != 1) return cli_usage_error("gradcheck", "expected one model file");
    long seed = 1, batch = 3, samples = 64;
    const char *v;
    if ((v = cli_get(flags, nf, "seed")) && !cli_int("gradcheck", "seed", v, 0, 2147483647L, &seed)) return 2;
    if ((v = cli_get(flags, nf, "batch")) && !cli_int("gradcheck", "batch", v, 1, 4096, &batch)) return 2;
    if ((v = cli_get(flags, nf, "samples")) && !cli_int("gradcheck", "samples", v, 0, 1L << 30, &samples))
        return 2;
    nb_model m;
    char path[4096];
    pos[0] = cli_model_path(pos[0], path, sizeof path);
    if (cli_model_load(pos[0], &m) != NB_OK) return cli_fail("gradcheck", "%s", nb_last_error());
    if (m.loss == NB_NONE) {
        nb_model_free(&m);
        return cli_fail("gradcheck", "%s: the model has no loss line", pos[0]);
    }
    nb_graph *g = m.graph;
    nb_rng r;
    nb_rng_seed(&r, (uint64_t)seed);
    nb_status s = nb_graph_init(g, &r);
    if (s == NB_OK) s = nb_graph_set_batch(g, (int)batch);
    /* random inputs; targets that suit the loss */
    if (s == NB_OK) {
        nb_real *x = nb_value(g, m.input), *t = nb_value(g, m.target);
        for (size_t k = 0; k < nb_node_numel(g, m.input); k++) /* token ids, or features */
            x[k] = m.vocab ? (nb_real)nb_rng_below(&r, (uint64_t)m.vocab) : nb_rng_normal(&r);
        for (size_t k = 0; k < nb_node_numel(g, m.target); k++) {
            if (m.classes) t[k] = (nb_real)nb_rng_below(&r, (uint64_t)m.classes);
            else if (nb_node_op(g, m.loss)[0] == 'b') t[k] = (nb_real)nb_rng_below(&r, 2);
            else t[k] = nb_rng_normal(&r);
        }
    }
    nb_gradcheck_report rep;
    if (s == NB_OK) s = nb_gradcheck_sampled(g, m.loss, 1e-6, 1e-5, 1e-3, (size_t)samples, &rep);
    if (s != NB_OK) {
        nb_model_free(&m);
        return cli_fail("gradcheck", "%s", nb_last_error());
    }
    printf("%s: %zu gradient values compared in double precision, %zu outside tolerance\n",
           pos[0], rep.checked, rep.failed);
    printf("largest difference %.3g", rep.max_abs_err);
    if (rep.worst_node != NB_NONE)
        printf(" (worst: %s[%zu], analytic %.10g, numeric %.10g)", nb_node_name(g, rep.worst_node),
               rep.worst_index, rep.worst_analytic, rep.worst_numeric);
    printf("\n%s\n", rep.failed ? "FAILED" : "passed");
    nb_model_free(&m);
    return rep.failed ? 1 : 0;
}
