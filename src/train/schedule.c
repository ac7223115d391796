/* Learning-rate schedules as closed forms of the counter e: PyTorch's
 * schedulers, and a linear decay to a final rate (docs/definitions.md,
 * Learning-rate schedules).  A closed form needs no state, so resuming at any
 * epoch gives the same rates. */
#include "../core/internal.h"

#include <string.h>

static const struct {
    const char *name;
    nb_schedule_kind kind;
} schedule_names[] = {
    {"constant", NB_SCHED_CONSTANT},     {"step", NB_SCHED_STEP},
    {"exponential", NB_SCHED_EXPONENTIAL}, {"cosine", NB_SCHED_COSINE},
    {"warmup", NB_SCHED_WARMUP},         {"linear-decay", NB_SCHED_LINEAR_DECAY},
};
#define N_SCHEDULE_NAMES (sizeof schedule_names / sizeof schedule_names[0])

const char *nb_schedule_name(nb_schedule_kind kind) {
    for (size_t i = 0; i < N_SCHEDULE_NAMES; i++)
        if (schedule_names[i].kind == kind) return schedule_names[i].name;
    return "unknown";
}

/* PyTorch's defaults where it has them (StepLR gamma 0.1, LinearLR 1/3 -> 1
 * over 5, CosineAnnealingLR eta_min 0).  Where PyTorch requires the argument
 * (step_size, ExponentialLR's gamma, T_max) and for the linear decay,
 * the values suit the trainer's default of 10 epochs. */
nb_schedule nb_schedule_defaults(nb_schedule_kind kind) {
    nb_schedule s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.step_size = 10;
    s.gamma = kind == NB_SCHED_EXPONENTIAL ? 0.9 : 0.1;
    s.t_max = 10;
    s.eta_min = 0;
    s.start_factor = 1.0 / 3.0;
    s.end_factor = 1.0;
    s.total_iters = 5;
    s.tau = 10;
    s.lr_tau = 1e-4;
    return s;
}

nb_status nb_schedule_parse(const char *name, nb_schedule *out) {
    if (!name || !out)
        return nb_err(NB_ERR_ARG, "schedule: NULL %s", !name ? "name" : "output schedule");
    for (size_t i = 0; i < N_SCHEDULE_NAMES; i++)
        if (strcmp(name, schedule_names[i].name) == 0) {
            *out = nb_schedule_defaults(schedule_names[i].kind);
            return NB_OK;
        }
    return nb_err(NB_ERR_ARG, "schedule: unknown schedule \"%s\" (valid: constant, step, "
                  "exponential, cosine, warmup, linear-decay)", name);
}

nb_status nb_schedule_check(const nb_schedule *s) {
    if (!s) return nb_err(NB_ERR_ARG, "schedule: NULL schedule");
    const char *name = nb_schedule_name(s->kind);
    switch (s->kind) {
    case NB_SCHED_CONSTANT: return NB_OK;
    case NB_SCHED_STEP:
    case NB_SCHED_EXPONENTIAL:
        if (s->kind == NB_SCHED_STEP && s->step_size < 1)
            return nb_err(NB_ERR_ARG, "schedule step: step_size = %d, must be >= 1",
                          s->step_size);
        if (!(s->gamma > 0) || !isfinite(s->gamma))
            return nb_err(NB_ERR_ARG, "schedule %s: gamma = %g, must be > 0 and finite", name,
                          s->gamma);
        return NB_OK;
    case NB_SCHED_COSINE:
        if (s->t_max < 1)
            return nb_err(NB_ERR_ARG, "schedule cosine: t_max = %d, must be >= 1", s->t_max);
        if (!(s->eta_min >= 0) || !isfinite(s->eta_min))
            return nb_err(NB_ERR_ARG, "schedule cosine: eta_min = %g, must be >= 0 and finite",
                          s->eta_min);
        return NB_OK;
    case NB_SCHED_WARMUP:
        /* PyTorch's LinearLR bounds */
        if (!(s->start_factor > 0 && s->start_factor <= 1))
            return nb_err(NB_ERR_ARG, "schedule warmup: start_factor = %g, must be in (0, 1]",
                          s->start_factor);
        if (!(s->end_factor >= 0 && s->end_factor <= 1))
            return nb_err(NB_ERR_ARG, "schedule warmup: end_factor = %g, must be in [0, 1]",
                          s->end_factor);
        if (s->total_iters < 1)
            return nb_err(NB_ERR_ARG, "schedule warmup: total_iters = %d, must be >= 1",
                          s->total_iters);
        return NB_OK;
    case NB_SCHED_LINEAR_DECAY:
        if (s->tau < 1)
            return nb_err(NB_ERR_ARG, "schedule linear-decay: tau = %d, must be >= 1", s->tau);
        if (!(s->lr_tau >= 0) || !isfinite(s->lr_tau))
            return nb_err(NB_ERR_ARG, "schedule linear-decay: lr_tau = %g, must be >= 0 and "
                          "finite", s->lr_tau);
        return NB_OK;
    }
    return nb_err(NB_ERR_ARG, "schedule: unknown schedule kind %d", (int)s->kind);
}

/* NaN for a NULL or invalid schedule, which nb_optim_step then rejects. */
double nb_schedule_lr(const nb_schedule *s, double base_lr, long e) {
    if (!s || nb_schedule_check(s) != NB_OK) return NAN;
    if (e < 0) e = 0;
    const double pi = 3.14159265358979323846;
    switch (s->kind) {
    case NB_SCHED_CONSTANT: return base_lr;
    case NB_SCHED_STEP: return base_lr * pow(s->gamma, (double)(e / s->step_size));
    case NB_SCHED_EXPONENTIAL: return base_lr * pow(s->gamma, (double)e);
    case NB_SCHED_COSINE:
        return s->eta_min +
               (base_lr - s->eta_min) * (1 + cos(pi * (double)e / s->t_max)) / 2;
    case NB_SCHED_WARMUP: {
        double k = e < s->total_iters ? (double)e : (double)s->total_iters;
        return base_lr *
               (s->start_factor + (s->end_factor - s->start_factor) * k / s->total_iters);
    }
    case NB_SCHED_LINEAR_DECAY: {
        if (e >= s->tau) return s->lr_tau;
        double f = (double)e / s->tau;
        return (1 - f) * base_lr + f * s->lr_tau;
    }
    }
    return NAN;
}
