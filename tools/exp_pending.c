/* Experiments not written yet: each says so instead of pretending. */
#include <stdio.h>

#include "experiment.h"

static int pending(const char *name) {
    fprintf(stderr, "nabla experiment: '%s' is not implemented yet\n", name);
    return 1;
}



int exp_optimizers(const exp_ctx *ctx) { (void)ctx; return pending("optimizers"); }
int exp_schedules(const exp_ctx *ctx) { (void)ctx; return pending("schedules"); }
