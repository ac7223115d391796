/* nabla experiment NAME: run one of the course's experiments, print its summary
 * and write its plot. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "experiment.h"

static const exp_entry experiments[] = {
    {"init", exp_init, "activation and gradient std per layer for each initialiser"},
    {"depth", exp_depth, "first-layer gradient against depth, with and without skips"},
    {"bptt", exp_bptt, "gradient through time for the RNN, GRU and LSTM over 50 steps"},
    {"ewa", exp_ewa, "exponentially weighted averages, with and without bias correction"},
    {"xor", exp_xor, "XOR: a linear model fails, a small ReLU network solves it"},
    {"regression", exp_regression, "least squares: closed form against gradient descent"},
    {"approximation", exp_approximation, "one hidden layer of growing width fits a function"},
    {"optimizers", exp_optimizers, "optimiser paths on 2-D functions and on Fashion-MNIST"},
    {"schedules", exp_schedules, "learning-rate decay and SGD noise near a minimum"},
};
enum { N_EXPERIMENTS = sizeof experiments / sizeof experiments[0] };

static void help(FILE *out) {
    fprintf(out, "usage: nabla experiment NAME [--out DIR] [--quick] [--seed N] [--threads N]\n\n"
                 "Run one of the course's experiments: print its numbers, write DIR/NAME.svg\n"
                 "and DIR/NAME.txt (DIR defaults to 'experiments').\n\nexperiments:\n");
    for (int i = 0; i < N_EXPERIMENTS; i++)
        fprintf(out, "  %-14s %s\n", experiments[i].name, experiments[i].summary);
    fprintf(out, "\n  --quick    smaller runs showing the same effect (seconds)\n"
                 "  --seed N   random seed (default 0)\n"
                 "  --threads N  threads for matrix products (default: all cores)\n");
}

int cmd_experiment(int argc, char **argv) {
    cli_flag flags[] = {{"out", 1, NULL}, {"quick", 0, NULL}, {"seed", 1, NULL},
                        {"threads", 1, NULL}};
    const int nflags = (int)(sizeof flags / sizeof flags[0]);
    const char *pos[1];
    int npos, want_help;
    int rc = cli_parse("experiment", argc, argv, 2, flags, nflags, pos, 1, &npos, &want_help);
    if (rc) return rc;
    if (want_help) return help(stdout), 0;
    if (npos != 1) return cli_usage_error("experiment", "expected one experiment name");

    const exp_entry *e = NULL;
    for (int i = 0; i < N_EXPERIMENTS; i++)
        if (strcmp(pos[0], experiments[i].name) == 0) e = &experiments[i];
    if (!e) {
        fprintf(stderr, "nabla experiment: unknown experiment '%s'; one of:", pos[0]);
        for (int i = 0; i < N_EXPERIMENTS; i++) fprintf(stderr, " %s", experiments[i].name);
        fputc('\n', stderr);
        return 2;
    }

    exp_ctx ctx = {.out_dir = "experiments", .quick = cli_get(flags, nflags, "quick") != NULL};
    long v;
    const char *s;
    if ((s = cli_get(flags, nflags, "out"))) ctx.out_dir = s;
    if ((s = cli_get(flags, nflags, "seed"))) {
        if (!cli_int("experiment", "seed", s, 0, 0x7fffffffL, &v)) return 2;
        ctx.seed = (uint64_t)v;
    }
    if ((s = cli_get(flags, nflags, "threads"))) {
        if (!cli_int("experiment", "threads", s, 1, 256, &v)) return 2;
        ctx.threads = (int)v;
        nb_set_threads(ctx.threads);
    }
    if (mkdir(ctx.out_dir, 0777) != 0 && errno != EEXIST)
        return cli_fail("experiment", "cannot create '%s': %s", ctx.out_dir, strerror(errno));
    return e->run(&ctx);
}
