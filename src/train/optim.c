/* Optimisers over flat buffers, following PyTorch 1.13's update rules, plus
 * momentum as an exponential average (docs/definitions.md, Optimisers).
 *
 * Parameters, gradients and all optimiser state are each one flat array, so
 * every update is one simple loop over all scalars.  Per-step coefficients
 * (bias corrections, 1 - beta, ...) are computed in double and rounded once:
 * in float, 1 - 0.999f alone is off by 1.3e-5 relative. */
#include "../core/internal.h"
#include "../kernels/parallel.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

struct nb_optim {
    nb_optim_config cfg;
    size_t n;
    long steps;
    nb_real *state;     /* every buffer below, in one allocation (checkpoints) */
    size_t state_len;
    nb_real *buf;       /* SGD / RMSProp momentum buffer, EMA velocity         */
    nb_real *sum;       /* AdaGrad: running sum of squared gradients           */
    nb_real *sq;        /* RMSProp, Adam: running average of squared gradients */
    nb_real *gavg;      /* RMSProp centered: running average of gradients      */
    nb_real *m;         /* Adam: first moment                                  */
    nb_real *vmax;      /* amsgrad: maximum of sq so far                       */
};

static const struct {
    const char *name;
    nb_optim_kind kind;
    double momentum;
    int nesterov;
} optim_names[] = {
    {"sgd", NB_OPT_SGD, 0, 0},
    {"momentum", NB_OPT_SGD, 0.9, 0},
    {"nesterov", NB_OPT_SGD, 0.9, 1},
    {"ema-momentum", NB_OPT_MOMENTUM_EMA, 0, 0},
    {"adagrad", NB_OPT_ADAGRAD, 0, 0},
    {"rmsprop", NB_OPT_RMSPROP, 0, 0},
    {"adam", NB_OPT_ADAM, 0, 0},
    {"adamw", NB_OPT_ADAMW, 0, 0},
};
#define N_OPTIM_NAMES (sizeof optim_names / sizeof optim_names[0])

const char *nb_optim_name(nb_optim_kind kind) {
    switch (kind) {
    case NB_OPT_SGD: return "sgd";
    case NB_OPT_MOMENTUM_EMA: return "ema-momentum";
    case NB_OPT_ADAGRAD: return "adagrad";
    case NB_OPT_RMSPROP: return "rmsprop";
    case NB_OPT_ADAM: return "adam";
    case NB_OPT_ADAMW: return "adamw";
    }
    return "unknown";
}

/* Every field gets its PyTorch default (fields other optimisers use too),
 * so a config stays valid if only the kind is changed afterwards. */
nb_optim_config nb_optim_defaults(nb_optim_kind kind) {
    nb_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.lr = 1e-2;
    c.beta = 0.9;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    c.alpha = 0.99;
    switch (kind) {
    case NB_OPT_ADAGRAD: c.eps = 1e-10; break;
    case NB_OPT_ADAM: c.lr = 1e-3; break;
    case NB_OPT_ADAMW: c.lr = 1e-3; c.weight_decay = 1e-2; break;
    default: break;
    }
    return c;
}

nb_status nb_optim_parse(const char *name, nb_optim_config *out) {
    if (!name || !out)
        return nb_err(NB_ERR_ARG, "optim: NULL %s", !name ? "name" : "output config");
    for (size_t i = 0; i < N_OPTIM_NAMES; i++) {
        if (strcmp(name, optim_names[i].name) != 0) continue;
        *out = nb_optim_defaults(optim_names[i].kind);
        out->momentum = optim_names[i].momentum;
        out->nesterov = optim_names[i].nesterov;
        return NB_OK;
    }
    char list[256];
    size_t used = 0;
    for (size_t i = 0; i < N_OPTIM_NAMES && used < sizeof list; i++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                         optim_names[i].name);
        if (w < 0) break;
        used += (size_t)w;
    }
    return nb_err(NB_ERR_ARG, "optim: unknown optimiser \"%s\" (valid: %s)", name, list);
}

/* ------------------------------------------------------------ validation */

static nb_status bad_field(const nb_optim_config *c, const char *field, double v,
                           const char *want) {
    return nb_err(NB_ERR_ARG, "optim %s: %s = %g, must be %s", nb_optim_name(c->kind), field,
                  v, want);
}

#define NEED(cond, field, want)                                                   \
    do {                                                                          \
        if (!(cond)) return bad_field(c, #field, (double)c->field, want);         \
    } while (0)
#define NON_NEGATIVE(field) NEED(c->field >= 0 && isfinite(c->field), field, ">= 0 and finite")
#define POSITIVE(field) NEED(c->field > 0 && isfinite(c->field), field, "> 0 and finite")
#define IN_0_1(field) NEED(c->field >= 0 && c->field < 1, field, "in [0, 1)")

nb_status nb_optim_check(const nb_optim_config *c) {
    if (!c) return nb_err(NB_ERR_ARG, "optim: config is NULL");
    switch (c->kind) {
    case NB_OPT_SGD: case NB_OPT_MOMENTUM_EMA: case NB_OPT_ADAGRAD:
    case NB_OPT_RMSPROP: case NB_OPT_ADAM: case NB_OPT_ADAMW: break;
    default: return nb_err(NB_ERR_ARG, "optim: unknown optimiser kind %d", (int)c->kind);
    }
    NON_NEGATIVE(lr);
    NON_NEGATIVE(weight_decay);
    switch (c->kind) {
    case NB_OPT_SGD:
        NON_NEGATIVE(momentum);
        NEED(c->dampening >= 0 && c->dampening <= 1, dampening, "in [0, 1]");
        if (c->nesterov && (c->momentum <= 0 || c->dampening != 0))
            return nb_err(NB_ERR_ARG, "optim sgd: nesterov needs momentum > 0 and dampening 0 "
                          "(got momentum %g, dampening %g)", c->momentum, c->dampening);
        break;
    case NB_OPT_MOMENTUM_EMA:
        IN_0_1(beta);
        break;
    case NB_OPT_ADAGRAD:
        NON_NEGATIVE(lr_decay);
        NON_NEGATIVE(initial_accumulator);
        POSITIVE(eps);
        break;
    case NB_OPT_RMSPROP:
        IN_0_1(alpha);
        NON_NEGATIVE(momentum);
        POSITIVE(eps);
        break;
    case NB_OPT_ADAM:
    case NB_OPT_ADAMW:
        IN_0_1(beta1);
        IN_0_1(beta2);
        POSITIVE(eps);
        break;
    }
    return NB_OK;
}

/* ------------------------------------------------------------ lifetime */

nb_optim *nb_optim_new(const nb_optim_config *cfg, size_t n) {
    if (!cfg) {
        nb_err(NB_ERR_ARG, "optim: NULL config");
        return NULL;
    }
    if (nb_optim_check(cfg) != NB_OK) return NULL;
    if (n == 0) {
        nb_err(NB_ERR_ARG, "optim %s: nothing to optimise (0 parameters)",
               nb_optim_name(cfg->kind));
        return NULL;
    }
    /* how many n-sized state buffers this configuration needs */
    size_t nbuf = 0;
    switch (cfg->kind) {
    case NB_OPT_SGD: nbuf = cfg->momentum != 0; break;
    case NB_OPT_MOMENTUM_EMA: nbuf = 1; break;
    case NB_OPT_ADAGRAD: nbuf = 1; break;
    case NB_OPT_RMSPROP: nbuf = 1 + (cfg->centered != 0) + (cfg->momentum > 0); break;
    case NB_OPT_ADAM: case NB_OPT_ADAMW: nbuf = 2 + (cfg->amsgrad != 0); break;
    }
    if (nbuf && n > SIZE_MAX / sizeof(nb_real) / nbuf) {
        nb_err(NB_ERR_NOMEM, "optim %s: state for %zu parameters overflows",
               nb_optim_name(cfg->kind), n);
        return NULL;
    }
    nb_optim *o = calloc(1, sizeof *o);
    if (!o) {
        nb_err(NB_ERR_NOMEM, "optim: out of memory");
        return NULL;
    }
    o->cfg = *cfg;
    o->n = n;
    o->state_len = nbuf * n;
    if (nbuf) {
        o->state = calloc(o->state_len, sizeof(nb_real));
        nb__prefer_huge_pages(o->state, o->state_len * sizeof(nb_real));
        if (!o->state) {
            free(o);
            nb_err(NB_ERR_NOMEM, "optim %s: out of memory for %zu state values",
                   nb_optim_name(cfg->kind), nbuf * n);
            return NULL;
        }
    }
    nb_real *next = o->state;
#define TAKE(ptr) (o->ptr = next, next += n)
    switch (cfg->kind) {
    case NB_OPT_SGD:
        if (nbuf) TAKE(buf);
        break;
    case NB_OPT_MOMENTUM_EMA: TAKE(buf); break;
    case NB_OPT_ADAGRAD:
        TAKE(sum);
        for (size_t k = 0; k < n; k++) o->sum[k] = (nb_real)cfg->initial_accumulator;
        break;
    case NB_OPT_RMSPROP:
        TAKE(sq);
        if (cfg->centered) TAKE(gavg);
        if (cfg->momentum > 0) TAKE(buf);
        break;
    case NB_OPT_ADAM: case NB_OPT_ADAMW:
        TAKE(m);
        TAKE(sq);
        if (cfg->amsgrad) TAKE(vmax);
        break;
    }
#undef TAKE
    return o;
}

void nb_optim_free(nb_optim *o) {
    if (!o) return;
    free(o->state);
    free(o);
}

long nb_optim_steps(const nb_optim *o) { return o ? o->steps : 0; }

size_t nb_optim_size(const nb_optim *o) { return o ? o->n : 0; }

nb_status nb_optim_set_steps(nb_optim *o, long steps) {
    if (!o) return nb_err(NB_ERR_ARG, "optim: NULL optimiser");
    if (steps < 0) return nb_err(NB_ERR_ARG, "optim: step count %ld is negative", steps);
    o->steps = steps;
    return NB_OK;
}

nb_real *nb_optim_state(nb_optim *o, size_t *n) {
    if (n) *n = o ? o->state_len : 0;
    return o ? o->state : NULL;
}

const nb_optim_config *nb_optim_get_config(const nb_optim *o) { return o ? &o->cfg : NULL; }

/* ------------------------------------------------------------ updates */

/* SGD: d = g + wd p; b = mu b + (1 - damp) d (b = d on the first step);
 * p -= lr (d + mu b) with Nesterov, else p -= lr b.  Written branch-free:
 * on the first step keep = 0, take = 1 gives b = d exactly. */
NB_VECTOR_LOOP static void sgd_step(nb_optim *o, nb_real *restrict p, const nb_real *restrict g,
                                    double lr) {
    const size_t n = o->n;
    const nb_real rate = (nb_real)lr, wd = (nb_real)o->cfg.weight_decay;
    if (!o->buf) {
        for (size_t k = 0; k < n; k++) p[k] -= rate * (g[k] + wd * p[k]);
        return;
    }
    nb_real *restrict b = o->buf;
    const int first = o->steps == 0;
    const nb_real mu = (nb_real)o->cfg.momentum;
    const nb_real keep = first ? R(0) : mu;
    const nb_real take = first ? R(1) : (nb_real)(1.0 - o->cfg.dampening);
    const nb_real coef_d = o->cfg.nesterov ? R(1) : R(0);
    const nb_real coef_b = o->cfg.nesterov ? mu : R(1);
    for (size_t k = 0; k < n; k++) {
        nb_real d = g[k] + wd * p[k];
        nb_real v = keep * b[k] + take * d;
        b[k] = v;
        p[k] -= rate * (coef_d * d + coef_b * v);
    }
}

/* Momentum as an exponential average of the gradients (docs/definitions.md):
 * v = beta v + (1 - beta) d, p -= lr v (v starts at 0). */
NB_VECTOR_LOOP static void ema_step(nb_optim *o, nb_real *restrict p, const nb_real *restrict g,
                                    double lr) {
    const size_t n = o->n;
    nb_real *restrict v = o->buf;
    const nb_real rate = (nb_real)lr, wd = (nb_real)o->cfg.weight_decay;
    const nb_real beta = (nb_real)o->cfg.beta, one_minus = (nb_real)(1.0 - o->cfg.beta);
    for (size_t k = 0; k < n; k++) {
        nb_real d = g[k] + wd * p[k];
        v[k] = beta * v[k] + one_minus * d;
        p[k] -= rate * v[k];
    }
}

/* AdaGrad: S += d^2; p -= clr d / (sqrt(S) + eps), clr = lr / (1 + (t-1) lr_decay). */
NB_VECTOR_LOOP static void adagrad_step(nb_optim *o, nb_real *restrict p, const nb_real *restrict g,
                         double lr, long t) {
    const size_t n = o->n;
    nb_real *restrict s = o->sum;
    const nb_real clr = (nb_real)(lr / (1.0 + (double)(t - 1) * o->cfg.lr_decay));
    const nb_real wd = (nb_real)o->cfg.weight_decay, eps = (nb_real)o->cfg.eps;
    for (size_t k = 0; k < n; k++) {
        nb_real d = g[k] + wd * p[k];
        s[k] += d * d;
        p[k] -= clr * d / (nb_sqrt(s[k]) + eps);
    }
}

/* RMSProp: v = a v + (1-a) d^2; avg = sqrt(v) + eps, or sqrt(v - gbar^2) + eps
 * when centered; then p -= lr d / avg, or through a momentum buffer
 * b = mu b + d / avg, p -= lr b.  v - gbar^2 >= 0 in exact arithmetic; it is
 * clamped so rounding cannot produce a NaN.  The loop is instantiated once per
 * (centered, momentum) pair with constant flags, so each copy is branch-free. */
static inline void rmsprop_loop(nb_optim *o, nb_real *restrict p, const nb_real *restrict g,
                                double lr, const int centered, const int momentum) {
    const size_t n = o->n;
    nb_real *restrict v = o->sq, *restrict gbar = o->gavg, *restrict b = o->buf;
    const nb_real rate = (nb_real)lr, wd = (nb_real)o->cfg.weight_decay;
    const nb_real eps = (nb_real)o->cfg.eps, mu = (nb_real)o->cfg.momentum;
    const nb_real a = (nb_real)o->cfg.alpha, one_minus = (nb_real)(1.0 - o->cfg.alpha);
    for (size_t k = 0; k < n; k++) {
        nb_real d = g[k] + wd * p[k];
        v[k] = a * v[k] + one_minus * d * d;
        nb_real avg;
        if (centered) {
            gbar[k] = a * gbar[k] + one_minus * d;
            nb_real var = v[k] - gbar[k] * gbar[k];
            avg = nb_sqrt(var < 0 ? R(0) : var) + eps;
        } else {
            avg = nb_sqrt(v[k]) + eps;
        }
        if (momentum) {
            b[k] = mu * b[k] + d / avg;
            p[k] -= rate * b[k];
        } else {
            p[k] -= rate * d / avg;
        }
    }
}

NB_VECTOR_LOOP static void rmsprop_step(nb_optim *o, nb_real *params, const nb_real *grads,
                                        double lr) {
    if (o->gavg && o->buf) rmsprop_loop(o, params, grads, lr, 1, 1);
    else if (o->gavg) rmsprop_loop(o, params, grads, lr, 1, 0);
    else if (o->buf) rmsprop_loop(o, params, grads, lr, 0, 1);
    else rmsprop_loop(o, params, grads, lr, 0, 0);
}

/* Adam / AdamW: m = b1 m + (1-b1) d; v = b2 v + (1-b2) d^2;
 * p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps).  Adam adds wd p to the
 * gradient; AdamW instead first shrinks p by (1 - lr wd), in the same pass.
 * amsgrad uses the running maximum of the raw v (a NaN in v still
 * propagates).  One loop instance per amsgrad flag, each branch-free. */
static inline void adam_loop(nb_optim *o, nb_real *restrict p, const nb_real *restrict g,
                             double lr, long t, const int amsgrad) {
    const size_t n = o->n;
    const nb_optim_config *c = &o->cfg;
    nb_real *restrict m = o->m, *restrict v = o->sq, *restrict vmax = o->vmax;
    const double bc1 = 1.0 - pow(c->beta1, (double)t), bc2 = 1.0 - pow(c->beta2, (double)t);
    const nb_real step_size = (nb_real)(lr / bc1), inv_sqrt_bc2 = (nb_real)(1.0 / sqrt(bc2));
    const nb_real b1 = (nb_real)c->beta1, one_minus_b1 = (nb_real)(1.0 - c->beta1);
    const nb_real b2 = (nb_real)c->beta2, one_minus_b2 = (nb_real)(1.0 - c->beta2);
    const nb_real eps = (nb_real)c->eps;
    /* AdamW's shrink in the same pass (1 for Adam: p * 1 is p exactly) */
    nb_real wd = (nb_real)c->weight_decay, shrink = R(1);
    if (c->kind == NB_OPT_ADAMW) {
        shrink = (nb_real)(1.0 - lr * c->weight_decay);
        wd = R(0);
    }
    for (size_t k = 0; k < n; k++) {
        p[k] *= shrink;
        nb_real d = g[k] + wd * p[k];
        m[k] = b1 * m[k] + one_minus_b1 * d;
        v[k] = b2 * v[k] + one_minus_b2 * d * d;
        nb_real second = v[k];
        if (amsgrad) {
            second = vmax[k] >= v[k] ? vmax[k] : v[k];
            vmax[k] = second;
        }
        p[k] -= step_size * m[k] / (nb_sqrt(second) * inv_sqrt_bc2 + eps);
    }
}

NB_VECTOR_LOOP static void adam_step(nb_optim *o, nb_real *params, const nb_real *grads,
                                     double lr, long t) {
    if (o->vmax) adam_loop(o, params, grads, lr, t, 1);
    else adam_loop(o, params, grads, lr, t, 0);
}

enum { SLICE_MIN = 1 << 16 }; /* parameters per slice at least */

typedef struct step_job {
    nb_optim *o;
    nb_real *params;
    const nb_real *grads;
    double lr;
    long t;
    int parts;
    const size_t *ranges; /* [begin, end) pairs of the values to update */
    int n_ranges;
} step_job;

static nb_real *at(nb_real *p, size_t k) { return p ? p + k : NULL; }

/* The update of values [k0, k1): the step on a view of the optimiser whose
 * state starts at k0. */
static void step_range(const step_job *j, size_t k0, size_t k1) {
    nb_optim v = *j->o;
    v.n = k1 - k0;
    v.buf = at(v.buf, k0), v.sum = at(v.sum, k0), v.sq = at(v.sq, k0);
    v.gavg = at(v.gavg, k0), v.m = at(v.m, k0), v.vmax = at(v.vmax, k0);
    nb_real *p = j->params + k0;
    const nb_real *g = j->grads + k0;
    switch (v.cfg.kind) {
    case NB_OPT_SGD: sgd_step(&v, p, g, j->lr); break;
    case NB_OPT_MOMENTUM_EMA: ema_step(&v, p, g, j->lr); break;
    case NB_OPT_ADAGRAD: adagrad_step(&v, p, g, j->lr, j->t); break;
    case NB_OPT_RMSPROP: rmsprop_step(&v, p, g, j->lr); break;
    case NB_OPT_ADAM: case NB_OPT_ADAMW: adam_step(&v, p, g, j->lr, j->t); break;
    }
}

/* Subnormal numbers are flushed to zero during an update (x86: the FTZ and
 * DAZ bits, for this thread, while it runs a slice).  Where a gradient stays
 * zero (a weight of an input pixel that is always black), Adam's m decays by
 * 0.9 a step into the subnormal range after about 800 steps and then stays
 * at the smallest one (0.9 times it rounds back up); x86 takes a microcode
 * assist of about a hundred cycles for each operation on such a number, and
 * the whole update became 12 times slower.  A flushed value is below 2^-126
 * (1.2e-38): the update it would have made (lr/c1 times it, over at least
 * eps) is 1e-32 at most at lr 0.01, which moves no parameter larger than
 * 1e-24.  TensorFlow and XLA flush subnormals in all of their CPU work. */
typedef struct subnormal_mode {
    unsigned csr;
} subnormal_mode;

static subnormal_mode flush_subnormals(void) {
    subnormal_mode m = {0};
#if defined(__x86_64__) || defined(__i386__)
    m.csr = _mm_getcsr();
    _mm_setcsr(m.csr | 0x8040u); /* FTZ (bit 15): results; DAZ (bit 6): inputs */
#endif
    return m;
}

static void restore_subnormals(subnormal_mode m) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(m.csr);
#else
    (void)m;
#endif
}

/* Slice `part` of j->parts: the parts of the ranges that fall in it. */
static void step_slice(void *ctx, int part) {
    const step_job *j = ctx;
    subnormal_mode mode = flush_subnormals();
    /* slice edges on multiples of 16 values: whole vectors, aligned alike */
    size_t k0, k1;
    nb__part_range(j->o->n, part, j->parts, 16, &k0, &k1);
    for (int r = 0; r < j->n_ranges; r++) {
        size_t b = j->ranges[2 * r] > k0 ? j->ranges[2 * r] : k0;
        size_t e = j->ranges[2 * r + 1] < k1 ? j->ranges[2 * r + 1] : k1;
        if (b < e) step_range(j, b, e);
    }
    restore_subnormals(mode);
}

static nb_status check_ranges(const nb_optim *o, const size_t *ranges, int n_ranges) {
    if (n_ranges < 0 || (n_ranges > 0 && !ranges))
        return nb_err(NB_ERR_ARG, "optim step: %d ranges at %p", n_ranges, (const void *)ranges);
    size_t last = 0;
    for (int r = 0; r < n_ranges; r++) {
        size_t b = ranges[2 * r], e = ranges[2 * r + 1];
        if (b < last || e < b || e > o->n)
            return nb_err(NB_ERR_ARG, "optim step: range %d [%zu, %zu) is not in order within "
                          "[0, %zu)", r, b, e, o->n);
        last = e;
    }
    return NB_OK;
}

nb_status nb_optim_step_ranges(nb_optim *o, nb_real *params, const nb_real *grads, double lr,
                               const size_t *ranges, int n_ranges) {
    if (!o || !params || !grads)
        return nb_err(NB_ERR_ARG, "optim step: NULL %s",
                      !o ? "optimiser" : !params ? "parameters" : "gradients");
    if (!(lr >= 0) || !isfinite(lr))
        return nb_err(NB_ERR_ARG, "optim %s step: learning rate %g must be >= 0 and finite",
                      nb_optim_name(o->cfg.kind), lr);
    nb_status s = check_ranges(o, ranges, n_ranges);
    if (s != NB_OK) return s;
    step_job j = {.o = o, .params = params, .grads = grads, .lr = lr, .t = o->steps + 1,
                  .ranges = ranges, .n_ranges = n_ranges};
    /* every update is elementwise: slices of the parameters run in parallel */
    j.parts = nb__part_count(o->n, SLICE_MIN);
    if (j.parts > 1) nb__parallel(j.parts, step_slice, &j);
    else step_slice(&j, 0);
    o->steps = j.t;
    return NB_OK;
}

nb_status nb_optim_step(nb_optim *o, nb_real *params, const nb_real *grads, double lr) {
    const size_t all[2] = {0, o ? o->n : 0};
    return nb_optim_step_ranges(o, params, grads, lr, all, 1);
}

/* ------------------------------------------------------------ clipping */

double nb_clip_grad_norm(nb_real *grads, size_t n, double max_norm) {
    if (!grads && n) {
        nb_err(NB_ERR_ARG, "clip_grad_norm: NULL gradients");
        return NAN;
    }
    if (!(max_norm >= 0) || !isfinite(max_norm)) {
        nb_err(NB_ERR_ARG, "clip_grad_norm: max_norm %g must be >= 0 and finite", max_norm);
        return NAN;
    }
    double sumsq = 0;
    for (size_t k = 0; k < n; k++) sumsq += (double)grads[k] * (double)grads[k];
    double norm = sqrt(sumsq);
    /* A non-finite norm is returned for the caller to act on; scaling by it
     * would only turn every gradient into NaN. */
    if (!isfinite(norm)) return norm;
    double coef = max_norm / (norm + 1e-6);
    if (coef < 1) {
        const nb_real scale = (nb_real)coef;
        for (size_t k = 0; k < n; k++) grads[k] *= scale;
    }
    return norm;
}
