/* nabla experiment NAME: the course's claims, run and plotted. */
#ifndef NB_EXPERIMENT_H
#define NB_EXPERIMENT_H

#include <stdint.h>

typedef struct exp_ctx {
    const char *out_dir;   /* plots (NAME.svg) and summaries (NAME.txt) go here; exists */
    int quick;             /* smaller runs with the same shape of result (tests use it) */
    uint64_t seed;
    int threads;
} exp_ctx;

/* Each experiment prints its numeric summary on stdout, writes its plot and summary
 * under ctx->out_dir, and returns 0 or an exit code after printing an error. */
typedef struct exp_entry {
    const char *name;
    int (*run)(const exp_ctx *ctx);
    const char *summary;
} exp_entry;

int exp_init(const exp_ctx *ctx);
int exp_depth(const exp_ctx *ctx);
int exp_bptt(const exp_ctx *ctx);
int exp_ewa(const exp_ctx *ctx);
int exp_xor(const exp_ctx *ctx);
int exp_regression(const exp_ctx *ctx);
int exp_approximation(const exp_ctx *ctx);
int exp_optimizers(const exp_ctx *ctx);
int exp_schedules(const exp_ctx *ctx);

#endif
