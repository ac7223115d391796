/* Experiments not written yet: each says so instead of pretending. */
#include <stdio.h>

#include "experiment.h"

static int pending(const char *name) {
    fprintf(stderr, "nabla experiment: '%s' is not implemented yet\n", name);
    return 1;
}

int exp_regression(const exp_ctx *ctx) { (void)ctx; return pending("regression"); }
int exp_approximation(const exp_ctx *ctx) { (void)ctx; return pending("approximation"); }


int exp_optimizers(const exp_ctx *ctx) { (void)ctx; return pending("optimizers"); }
int exp_schedules(const exp_ctx *ctx) { (void)ctx; return pending("schedules"); }
