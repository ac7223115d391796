/* Optimisers, gradient clipping and learning-rate schedules against PyTorch
 * (tests/reference/optim.py writes the trajectories and rates), plus
 * configuration checks, name parsing and checkpoint-style state restore. */
#include "refdata.h"
#include "test.h"
#include "nabla.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#define REF_PATH "tests/reference/optim.ref"

/* Agreement with PyTorch's float64 trajectories: float32 rounding in the
 * float build; test64_optim.c includes this file with a tight tolerance. */
#ifndef TRAJECTORY_RTOL
#define TRAJECTORY_RTOL 1e-5
#endif

static int starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The configuration written by optim.py: every nb_optim_config field. */
static nb_optim_config config_of(const ref_case *c) {
    nb_optim_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.kind = (nb_optim_kind)ref_scalar(c, "kind", -1);
    cfg.lr = ref_scalar(c, "lr", NAN);
    cfg.weight_decay = ref_scalar(c, "weight_decay", NAN);
    cfg.momentum = ref_scalar(c, "momentum", NAN);
    cfg.dampening = ref_scalar(c, "dampening", NAN);
    cfg.nesterov = (int)ref_scalar(c, "nesterov", 0);
    cfg.beta = ref_scalar(c, "beta", NAN);
    cfg.beta1 = ref_scalar(c, "beta1", NAN);
    cfg.beta2 = ref_scalar(c, "beta2", NAN);
    cfg.eps = ref_scalar(c, "eps", NAN);
    cfg.amsgrad = (int)ref_scalar(c, "amsgrad", 0);
    cfg.alpha = ref_scalar(c, "alpha", NAN);
    cfg.centered = (int)ref_scalar(c, "centered", 0);
    cfg.lr_decay = ref_scalar(c, "lr_decay", NAN);
    cfg.initial_accumulator = ref_scalar(c, "initial_accumulator", NAN);
    return cfg;
}

/* Field by field: struct padding need not match. */
static int same_config(const nb_optim_config *a, const nb_optim_config *b) {
    return a->kind == b->kind && a->lr == b->lr && a->weight_decay == b->weight_decay &&
           a->momentum == b->momentum && a->dampening == b->dampening &&
           a->nesterov == b->nesterov && a->beta == b->beta && a->beta1 == b->beta1 &&
           a->beta2 == b->beta2 && a->eps == b->eps && a->amsgrad == b->amsgrad &&
           a->alpha == b->alpha && a->centered == b->centered && a->lr_decay == b->lr_decay &&
           a->initial_accumulator == b->initial_accumulator;
}

/* Number of n-sized state buffers a configuration needs. */
static size_t expected_buffers(const nb_optim_config *c) {
    switch (c->kind) {
    case NB_OPT_SGD: return c->momentum != 0;
    case NB_OPT_MOMENTUM_EMA: return 1;
    case NB_OPT_ADAGRAD: return 1;
    case NB_OPT_RMSPROP: return 1 + (c->centered != 0) + (c->momentum > 0);
    case NB_OPT_ADAM: case NB_OPT_ADAMW: return 2 + (c->amsgrad != 0);
    }
    return 0;
}

/* Every opt_* case: the float build follows PyTorch's float64 trajectory. */
static void test_trajectories(const ref_file *f) {
    int cases = 0, per_kind[6] = {0};
    for (int i = 0; i < f->nc; i++) {
        const ref_case *c = &f->c[i];
        if (!starts_with(c->name, "opt_")) continue;
        cases++;
        nb_optim_config cfg = config_of(c);
        const ref_tensor *x0 = ref_get(c, "x0"), *grads = ref_get(c, "grads");
        const ref_tensor *lrs = ref_get(c, "lrs"), *want = ref_get(c, "params");
        CHECKF(x0 && grads && lrs && want, "%s: incomplete case", c->name);
        if (!x0 || !grads || !lrs || !want) continue;
        if ((int)cfg.kind >= 0 && (int)cfg.kind < 6) per_kind[cfg.kind]++;
        size_t n = x0->n;
        int steps = grads->dims[0];
        nb_optim *o = nb_optim_new(&cfg, n);
        CHECKF(o != NULL, "%s: %s", c->name, nb_last_error());
        if (!o) continue;
        size_t state_n = 99;
        nb_real *state = nb_optim_state(o, &state_n);
        CHECKF(state_n == expected_buffers(&cfg) * n, "%s: state has %zu values", c->name,
               state_n);
        CHECK((state != NULL) == (state_n > 0));
        nb_real *p = malloc(n * sizeof *p), *g = malloc(n * sizeof *g);
        nb_real *traj = malloc((size_t)steps * n * sizeof *traj);
        for (size_t k = 0; k < n; k++) p[k] = (nb_real)x0->v[k];
        for (int t = 0; t < steps; t++) {
            for (size_t k = 0; k < n; k++) g[k] = (nb_real)grads->v[(size_t)t * n + k];
            CHECK_OK(nb_optim_step(o, p, g, lrs->v[t]));
            memcpy(traj + (size_t)t * n, p, n * sizeof *p);
            /* the step never writes into the gradients */
            for (size_t k = 0; k < n; k++)
                if (g[k] != (nb_real)grads->v[(size_t)t * n + k]) {
                    CHECKF(0, "%s: gradient %zu changed by step %d", c->name, k, t);
                    break;
                }
        }
        CHECKF(ref_check(c->name, traj, (size_t)steps * n, want, TRAJECTORY_RTOL) == 0,
               "%s trajectory", c->name);
        CHECK(nb_optim_steps(o) == steps);
        CHECK(nb_optim_get_config(o)->kind == cfg.kind);
        CHECK(same_config(nb_optim_get_config(o), &cfg));
        free(p);
        free(g);
        free(traj);
        nb_optim_free(o);
    }
    /* the file must hold what optim.py promises, or the loop above proves little */
    CHECKF(cases >= 30, "only %d optimiser cases", cases);
    for (int k = 0; k < 6; k++) CHECKF(per_kind[k] >= 3, "kind %d has %d cases", k, per_kind[k]);
}

/* Save the state after 4 steps, restore it into a fresh optimiser, and the
 * remaining steps give bit-identical parameters. */
static void test_state_restore(const ref_file *f) {
    const char *names[] = {"opt_sgd_momentum", "opt_sgd_nesterov", "opt_ema",
                           "opt_adagrad_all", "opt_rmsprop_centered_momentum",
                           "opt_adam_amsgrad_b2", "opt_adamw_amsgrad"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const ref_case *c = ref_case_get(f, names[i]);
        CHECKF(c != NULL, "missing case %s", names[i]);
        if (!c) continue;
        nb_optim_config cfg = config_of(c);
        const ref_tensor *x0 = ref_get(c, "x0"), *grads = ref_get(c, "grads");
        size_t n = x0->n;
        int steps = grads->dims[0], split = 4;
        nb_optim *whole = nb_optim_new(&cfg, n), *first = nb_optim_new(&cfg, n);
        nb_real *pw = malloc(n * sizeof *pw), *pr = malloc(n * sizeof *pr);
        nb_real *g = malloc(n * sizeof *g);
        for (size_t k = 0; k < n; k++) pw[k] = pr[k] = (nb_real)x0->v[k];
        for (int t = 0; t < steps; t++) {
            for (size_t k = 0; k < n; k++) g[k] = (nb_real)grads->v[(size_t)t * n + k];
            CHECK_OK(nb_optim_step(whole, pw, g, cfg.lr));
            if (t < split) CHECK_OK(nb_optim_step(first, pr, g, cfg.lr));
        }
        /* "checkpoint": state array and step count; then a new optimiser */
        size_t sn = 0, rn = 0;
        nb_real *saved = nb_optim_state(first, &sn);
        nb_optim *resumed = nb_optim_new(&cfg, n);
        nb_real *dst = nb_optim_state(resumed, &rn);
        CHECK(sn == rn && sn > 0);
        memcpy(dst, saved, sn * sizeof *dst);
        CHECK_OK(nb_optim_set_steps(resumed, nb_optim_steps(first)));
        nb_optim_free(first);
        for (int t = split; t < steps; t++) {
            for (size_t k = 0; k < n; k++) g[k] = (nb_real)grads->v[(size_t)t * n + k];
            CHECK_OK(nb_optim_step(resumed, pr, g, cfg.lr));
        }
        CHECKF(memcmp(pw, pr, n * sizeof *pw) == 0, "%s: resumed run differs", names[i]);
        CHECK(nb_optim_steps(resumed) == steps);
        free(pw);
        free(pr);
        free(g);
        nb_optim_free(whole);
        nb_optim_free(resumed);
    }
}

static void test_defaults(const ref_file *f) {
    static const char *names[] = {"sgd", "adagrad", "rmsprop", "adam", "adamw"};
    static const nb_optim_kind kinds[] = {NB_OPT_SGD, NB_OPT_ADAGRAD, NB_OPT_RMSPROP,
                                          NB_OPT_ADAM, NB_OPT_ADAMW};
    for (int i = 0; i < 5; i++) {
        char cname[64];
        snprintf(cname, sizeof cname, "defaults_%s", names[i]);
        const ref_case *c = ref_case_get(f, cname);
        CHECKF(c != NULL, "missing %s", cname);
        if (!c) continue;
        nb_optim_config d = nb_optim_defaults(kinds[i]);
        CHECK(d.kind == kinds[i]);
        CHECK((int)ref_scalar(c, "kind", -1) == (int)kinds[i]);
        /* every field PyTorch has a default for, exactly */
#define SAME(field, refname)                                                          \
    do {                                                                              \
        const ref_tensor *t_ = ref_get(c, refname);                                   \
        if (t_) CHECKF((double)d.field == t_->v[0], "%s.%s = %g, PyTorch %g", names[i], \
                       #field, (double)d.field, t_->v[0]);                            \
    } while (0)
        SAME(lr, "lr");
        SAME(weight_decay, "weight_decay");
        SAME(momentum, "momentum");
        SAME(dampening, "dampening");
        SAME(nesterov, "nesterov");
        SAME(beta1, "beta1");
        SAME(beta2, "beta2");
        SAME(eps, "eps");
        SAME(amsgrad, "amsgrad");
        SAME(alpha, "alpha");
        SAME(centered, "centered");
        SAME(lr_decay, "lr_decay");
        SAME(initial_accumulator, "initial_accumulator");
#undef SAME
    }
    /* where PyTorch has no default: the header's lr 1e-2, and beta 0.9 (docs/definitions.md) */
    CHECK(nb_optim_defaults(NB_OPT_SGD).lr == 1e-2);
    nb_optim_config ema = nb_optim_defaults(NB_OPT_MOMENTUM_EMA);
    CHECK(ema.lr == 1e-2 && ema.beta == 0.9 && ema.weight_decay == 0);
    /* every default configuration is valid */
    for (int k = 0; k < 6; k++) {
        nb_optim_config d = nb_optim_defaults((nb_optim_kind)k);
        nb_optim *o = nb_optim_new(&d, 3);
        CHECKF(o != NULL, "defaults of kind %d rejected: %s", k, nb_last_error());
        nb_optim_free(o);
    }
}

static void test_parse(void) {
    static const struct {
        const char *name;
        nb_optim_kind kind;
        double momentum;
        int nesterov;
    } want[] = {
        {"sgd", NB_OPT_SGD, 0, 0},           {"momentum", NB_OPT_SGD, 0.9, 0},
        {"nesterov", NB_OPT_SGD, 0.9, 1},    {"ema-momentum", NB_OPT_MOMENTUM_EMA, 0, 0},
        {"adagrad", NB_OPT_ADAGRAD, 0, 0},   {"rmsprop", NB_OPT_RMSPROP, 0, 0},
        {"adam", NB_OPT_ADAM, 0, 0},         {"adamw", NB_OPT_ADAMW, 0, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        nb_optim_config c;
        memset(&c, 0xff, sizeof c);
        CHECK_OK(nb_optim_parse(want[i].name, &c));
        CHECKF(c.kind == want[i].kind && c.momentum == want[i].momentum &&
                   c.nesterov == want[i].nesterov,
               "%s -> kind %d momentum %g nesterov %d", want[i].name, (int)c.kind, c.momentum,
               c.nesterov);
        /* the rest are the kind's defaults */
        nb_optim_config d = nb_optim_defaults(want[i].kind);
        CHECK(c.lr == d.lr && c.eps == d.eps && c.weight_decay == d.weight_decay &&
              c.beta1 == d.beta1 && c.beta2 == d.beta2 && c.alpha == d.alpha);
        nb_optim *o = nb_optim_new(&c, 4);
        CHECKF(o != NULL, "%s: %s", want[i].name, nb_last_error());
        nb_optim_free(o);
    }
    /* names round-trip */
    for (int k = 0; k < 6; k++) {
        nb_optim_config c;
        CHECK_OK(nb_optim_parse(nb_optim_name((nb_optim_kind)k), &c));
        CHECK((int)c.kind == k);
    }
    CHECK(strcmp(nb_optim_name((nb_optim_kind)42), "unknown") == 0);

    nb_optim_config c = nb_optim_defaults(NB_OPT_ADAM);
    nb_optim_config before = c;
    CHECK(nb_optim_parse("adamax", &c) == NB_ERR_ARG);
    CHECK(same_config(&c, &before));
    const char *msg = nb_last_error();
    CHECKF(strstr(msg, "adamax") != NULL, "message: %s", msg);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECKF(strstr(msg, want[i].name) != NULL, "message lacks %s: %s", want[i].name, msg);
    CHECK(nb_optim_parse("", &c) == NB_ERR_ARG);
    CHECK(nb_optim_parse("Adam", &c) == NB_ERR_ARG);
    CHECK(nb_optim_parse(NULL, &c) == NB_ERR_ARG);
    CHECK(nb_optim_parse("adam", NULL) == NB_ERR_ARG);
}

/* A configuration change that must be rejected, and a word the message names. */
typedef struct bad_config {
    nb_optim_kind kind;
    const char *field;
    double value;
    const char *says;
} bad_config;

static void set_field(nb_optim_config *c, const char *field, double v) {
    if (!strcmp(field, "lr")) c->lr = v;
    else if (!strcmp(field, "weight_decay")) c->weight_decay = v;
    else if (!strcmp(field, "momentum")) c->momentum = v;
    else if (!strcmp(field, "dampening")) c->dampening = v;
    else if (!strcmp(field, "nesterov")) c->nesterov = (int)v;
    else if (!strcmp(field, "beta")) c->beta = v;
    else if (!strcmp(field, "beta1")) c->beta1 = v;
    else if (!strcmp(field, "beta2")) c->beta2 = v;
    else if (!strcmp(field, "eps")) c->eps = v;
    else if (!strcmp(field, "alpha")) c->alpha = v;
    else if (!strcmp(field, "lr_decay")) c->lr_decay = v;
    else if (!strcmp(field, "initial_accumulator")) c->initial_accumulator = v;
    else if (!strcmp(field, "kind")) c->kind = (nb_optim_kind)v;
}

static void test_invalid_configs(void) {
    const double inf = INFINITY, nan = NAN;
    static bad_config bad[64];
    int nb = 0;
#define BAD(k, f, v, s) (bad[nb++] = (bad_config){k, f, v, s})
    for (int k = 0; k < 6; k++) {
        BAD((nb_optim_kind)k, "lr", -0.1, "lr");
        BAD((nb_optim_kind)k, "lr", nan, "lr");
        BAD((nb_optim_kind)k, "lr", inf, "lr");
        BAD((nb_optim_kind)k, "weight_decay", -1e-4, "weight_decay");
    }
    BAD(NB_OPT_SGD, "momentum", -0.5, "momentum");
    BAD(NB_OPT_SGD, "dampening", 1.5, "dampening");
    BAD(NB_OPT_SGD, "dampening", -0.5, "dampening");
    BAD(NB_OPT_SGD, "nesterov", 1, "nesterov"); /* momentum 0 */
    BAD(NB_OPT_MOMENTUM_EMA, "beta", 1.0, "beta");
    BAD(NB_OPT_MOMENTUM_EMA, "beta", -0.1, "beta");
    BAD(NB_OPT_ADAGRAD, "eps", 0, "eps");
    BAD(NB_OPT_ADAGRAD, "lr_decay", -1, "lr_decay");
    BAD(NB_OPT_ADAGRAD, "initial_accumulator", -0.1, "initial_accumulator");
    BAD(NB_OPT_RMSPROP, "alpha", 1.0, "alpha");
    BAD(NB_OPT_RMSPROP, "alpha", -0.5, "alpha");
    BAD(NB_OPT_RMSPROP, "eps", -1e-8, "eps");
    BAD(NB_OPT_RMSPROP, "momentum", -0.9, "momentum");
    BAD(NB_OPT_ADAM, "beta1", 1.0, "beta1");
    BAD(NB_OPT_ADAM, "beta2", 1.0, "beta2");
    BAD(NB_OPT_ADAM, "beta2", -0.5, "beta2");
    BAD(NB_OPT_ADAM, "eps", 0, "eps");
    BAD(NB_OPT_ADAMW, "beta1", nan, "beta1");
    BAD(NB_OPT_ADAMW, "eps", inf, "eps");
    BAD(NB_OPT_ADAM, "kind", 17, "kind");
#undef BAD
    for (int i = 0; i < nb; i++) {
        nb_optim_config c = nb_optim_defaults(bad[i].kind);
        set_field(&c, bad[i].field, bad[i].value);
        nb_clear_error();
        nb_optim *o = nb_optim_new(&c, 5);
        CHECKF(o == NULL, "%s %s = %g accepted", nb_optim_name(bad[i].kind), bad[i].field,
               bad[i].value);
        CHECKF(strstr(nb_last_error(), bad[i].says) != NULL, "%s %s = %g: message \"%s\"",
               nb_optim_name(bad[i].kind), bad[i].field, bad[i].value, nb_last_error());
        nb_optim_free(o);
    }
    /* Nesterov with dampening, as PyTorch refuses it */
    nb_optim_config c = nb_optim_defaults(NB_OPT_SGD);
    c.momentum = 0.9;
    c.nesterov = 1;
    c.dampening = 0.1;
    CHECK(nb_optim_new(&c, 3) == NULL);
    CHECKF(strstr(nb_last_error(), "dampening") != NULL, "%s", nb_last_error());
    /* NULL config, zero parameters */
    CHECK(nb_optim_new(NULL, 3) == NULL);
    c = nb_optim_defaults(NB_OPT_ADAM);
    CHECK(nb_optim_new(&c, 0) == NULL);
    CHECK(strstr(nb_last_error(), "0 parameters") != NULL);
    /* state too large to address */
    CHECK(nb_optim_new(&c, SIZE_MAX / 2) == NULL);

    /* edges that are valid: lr 0, beta1 0, dampening 1, fields of other kinds ignored */
    c = nb_optim_defaults(NB_OPT_ADAM);
    c.lr = 0;
    c.beta1 = 0;
    c.alpha = 7;      /* RMSProp's field: not Adam's business */
    c.dampening = -3; /* SGD's field */
    nb_optim *o = nb_optim_new(&c, 3);
    CHECKF(o != NULL, "%s", nb_last_error());
    nb_optim_free(o);
    c = nb_optim_defaults(NB_OPT_SGD);
    c.momentum = 0.9;
    c.dampening = 1;
    c.beta2 = 5;
    o = nb_optim_new(&c, 3);
    CHECKF(o != NULL, "%s", nb_last_error());
    nb_optim_free(o);
}

static void test_step_errors(void) {
    nb_optim_config c = nb_optim_defaults(NB_OPT_ADAM);
    nb_optim *o = nb_optim_new(&c, 3);
    nb_real p[3] = {1, 2, 3}, g[3] = {0.5f, -0.5f, 1};
    CHECK(nb_optim_step(o, p, g, -1e-3) == NB_ERR_ARG);
    CHECK(strstr(nb_last_error(), "learning rate") != NULL);
    CHECK(nb_optim_step(o, p, g, NAN) == NB_ERR_ARG);
    CHECK(nb_optim_step(o, p, g, INFINITY) == NB_ERR_ARG);
    CHECK(nb_optim_step(o, NULL, g, 1e-3) == NB_ERR_ARG);
    CHECK(nb_optim_step(o, p, NULL, 1e-3) == NB_ERR_ARG);
    CHECK(nb_optim_step(NULL, p, g, 1e-3) == NB_ERR_ARG);
    /* failed steps change nothing */
    CHECK(nb_optim_steps(o) == 0);
    CHECK(p[0] == 1 && p[1] == 2 && p[2] == 3);
    size_t sn;
    nb_real *s = nb_optim_state(o, &sn);
    CHECK(sn == 6);
    for (size_t k = 0; k < sn; k++) CHECK(s[k] == 0);
    /* lr 0 is a valid step: parameters stay, state and counter advance */
    CHECK_OK(nb_optim_step(o, p, g, 0));
    CHECK(p[0] == 1 && p[1] == 2 && p[2] == 3);
    CHECK(nb_optim_steps(o) == 1);
    CHECK(s[0] != 0);
    CHECK(nb_optim_set_steps(o, -1) == NB_ERR_ARG);
    CHECK_OK(nb_optim_set_steps(o, 1000));
    CHECK(nb_optim_steps(o) == 1000);
    CHECK(nb_optim_set_steps(NULL, 1) == NB_ERR_ARG);
    CHECK(nb_optim_steps(NULL) == 0);
    CHECK(nb_optim_get_config(NULL) == NULL);
    size_t zn = 7;
    CHECK(nb_optim_state(NULL, &zn) == NULL && zn == 0);
    nb_optim_free(o);
    nb_optim_free(NULL);
    /* plain SGD keeps no state */
    c = nb_optim_defaults(NB_OPT_SGD);
    o = nb_optim_new(&c, 3);
    CHECK(nb_optim_state(o, &zn) == NULL && zn == 0);
    nb_optim_free(o);
}

static void test_clip(const ref_file *f) {
    int cases = 0;
    for (int i = 0; i < f->nc; i++) {
        const ref_case *c = &f->c[i];
        if (!starts_with(c->name, "clip_")) continue;
        cases++;
        const ref_tensor *grads = ref_get(c, "grads"), *want = ref_get(c, "clipped");
        double max_norm = ref_scalar(c, "max_norm", NAN), norm = ref_scalar(c, "norm", NAN);
        nb_real *g = malloc(grads->n * sizeof *g);
        for (size_t k = 0; k < grads->n; k++) g[k] = (nb_real)grads->v[k];
        double got = nb_clip_grad_norm(g, grads->n, max_norm);
        /* the norm of float32 inputs, accumulated in double: only the final
         * rounding differs from PyTorch's float64 */
        CHECK_CLOSE(got, norm, 0, 1e-12);
        CHECKF(ref_check(c->name, g, grads->n, want, TRAJECTORY_RTOL) == 0, "%s", c->name);
        free(g);
    }
    CHECK(cases == 5);

    /* squares of 1e20 overflow float but not the double accumulator */
    nb_real big[2] = {(nb_real)3e20, (nb_real)4e20};
    double norm = nb_clip_grad_norm(big, 2, 1.0);
    CHECK_CLOSE(norm, 5e20, 0, 1e-6);
    CHECK_CLOSE(big[0], 0.6, 0, 1e-6);
    CHECK_CLOSE(big[1], 0.8, 0, 1e-6);
    /* below the limit: untouched, and the norm is still returned */
    nb_real small[3] = {1, 2, 2};
    CHECK(nb_clip_grad_norm(small, 3, 3.5) == 3.0);
    CHECK(small[0] == 1 && small[1] == 2 && small[2] == 2);
    /* PyTorch's eps: max_norm equal to the norm still scales by 3/(3+1e-6) */
    CHECK(nb_clip_grad_norm(small, 3, 3.0) == 3.0);
    CHECK(small[1] < 2 && small[1] > 2 * (1 - 1e-6));
    /* empty, non-finite, invalid */
    CHECK(nb_clip_grad_norm(NULL, 0, 1.0) == 0);
    nb_real withinf[2] = {INFINITY, 1};
    CHECK(isinf(nb_clip_grad_norm(withinf, 2, 1.0)));
    CHECK(withinf[1] == 1); /* left for the caller to handle */
    nb_real withnan[2] = {NAN, 1};
    CHECK(isnan(nb_clip_grad_norm(withnan, 2, 1.0)));
    CHECK(withnan[1] == 1);
    nb_real ok[2] = {3, 4};
    CHECK(isnan(nb_clip_grad_norm(ok, 2, -1.0)));
    CHECK(strstr(nb_last_error(), "max_norm") != NULL);
    CHECK(isnan(nb_clip_grad_norm(ok, 2, NAN)));
    CHECK(isnan(nb_clip_grad_norm(NULL, 2, 1.0)));
    CHECK(ok[0] == 3 && ok[1] == 4);
}

/* ---------------------------------------------------------------- schedules */

static void test_schedules(const ref_file *f) {
    int cases = 0, per_kind[6] = {0};
    for (int i = 0; i < f->nc; i++) {
        const ref_case *c = &f->c[i];
        if (!starts_with(c->name, "sched_")) continue;
        cases++;
        nb_schedule_kind kind = (nb_schedule_kind)ref_scalar(c, "kind", -1);
        if ((int)kind >= 0 && (int)kind < 6) per_kind[kind]++;
        nb_schedule s = nb_schedule_defaults(kind);
        s.step_size = (int)ref_scalar(c, "step_size", s.step_size);
        s.gamma = ref_scalar(c, "gamma", s.gamma);
        s.t_max = (int)ref_scalar(c, "t_max", s.t_max);
        s.eta_min = ref_scalar(c, "eta_min", s.eta_min);
        s.start_factor = ref_scalar(c, "start_factor", s.start_factor);
        s.end_factor = ref_scalar(c, "end_factor", s.end_factor);
        s.total_iters = (int)ref_scalar(c, "total_iters", s.total_iters);
        s.tau = (int)ref_scalar(c, "tau", s.tau);
        s.lr_tau = ref_scalar(c, "lr_tau", s.lr_tau);
        CHECK_OK(nb_schedule_check(&s));
        double base = ref_scalar(c, "base_lr", NAN);
        const ref_tensor *want = ref_get(c, "lr");
        CHECKF(want != NULL && want->n >= 20, "%s: rates missing", c->name);
        if (!want) continue;
        /* Closed forms in double against PyTorch's recursive updates in double:
         * they agree to rounding, so a tight tolerance. */
        for (size_t e = 0; e < want->n; e++) {
            double lr = nb_schedule_lr(&s, base, (long)e);
            CHECKF(fabs(lr - want->v[e]) <= 1e-12 + 1e-9 * fabs(want->v[e]),
                   "%s: lr(%zu) = %.15g, PyTorch %.15g", c->name, e, lr, want->v[e]);
        }
        /* a negative counter is treated as 0 */
        CHECK(nb_schedule_lr(&s, base, -5) == nb_schedule_lr(&s, base, 0));
    }
    CHECKF(cases >= 10, "only %d schedule cases", cases);
    for (int k = 0; k < 6; k++) CHECKF(per_kind[k] >= 1, "schedule kind %d untested", k);

    /* defaults PyTorch has */
    const ref_case *c = ref_case_get(f, "defaults_sched_step");
    CHECK(c && nb_schedule_defaults(NB_SCHED_STEP).gamma == ref_scalar(c, "gamma", -1));
    c = ref_case_get(f, "defaults_sched_cosine");
    CHECK(c && nb_schedule_defaults(NB_SCHED_COSINE).eta_min == ref_scalar(c, "eta_min", -1));
    c = ref_case_get(f, "defaults_sched_warmup");
    nb_schedule w = nb_schedule_defaults(NB_SCHED_WARMUP);
    CHECK(c && w.start_factor == ref_scalar(c, "start_factor", -1) &&
          w.end_factor == ref_scalar(c, "end_factor", -1) &&
          w.total_iters == (int)ref_scalar(c, "total_iters", -1));
    for (int k = 0; k < 6; k++) {
        nb_schedule d = nb_schedule_defaults((nb_schedule_kind)k);
        CHECK((int)d.kind == k);
        CHECK_OK(nb_schedule_check(&d));
        CHECK(nb_schedule_lr(&d, 0.1, 0) == 0.1 || k == NB_SCHED_WARMUP);
    }
}

/* Field by field: struct padding need not match. */
static int same_schedule(const nb_schedule *a, const nb_schedule *b) {
    return a->kind == b->kind && a->step_size == b->step_size && a->gamma == b->gamma &&
           a->t_max == b->t_max && a->eta_min == b->eta_min &&
           a->start_factor == b->start_factor && a->end_factor == b->end_factor &&
           a->total_iters == b->total_iters && a->tau == b->tau && a->lr_tau == b->lr_tau;
}

static void test_schedule_parse(void) {
    static const char *names[] = {"constant", "step", "exponential", "cosine", "warmup",
                                  "linear-decay"};
    for (int k = 0; k < 6; k++) {
        nb_schedule s;
        memset(&s, 0xff, sizeof s);
        CHECK_OK(nb_schedule_parse(names[k], &s));
        CHECK((int)s.kind == k);
        nb_schedule d = nb_schedule_defaults((nb_schedule_kind)k);
        CHECK(same_schedule(&s, &d));
        CHECK(strcmp(nb_schedule_name((nb_schedule_kind)k), names[k]) == 0);
    }
    CHECK(strcmp(nb_schedule_name((nb_schedule_kind)99), "unknown") == 0);
    nb_schedule s = nb_schedule_defaults(NB_SCHED_COSINE), before = s;
    CHECK(nb_schedule_parse("cosine-annealing", &s) == NB_ERR_ARG);
    CHECK(same_schedule(&s, &before));
    const char *msg = nb_last_error();
    CHECKF(strstr(msg, "cosine-annealing") != NULL, "%s", msg);
    for (int k = 0; k < 6; k++) CHECKF(strstr(msg, names[k]) != NULL, "%s lacks %s", msg, names[k]);
    CHECK(nb_schedule_parse(NULL, &s) == NB_ERR_ARG);
    CHECK(nb_schedule_parse("step", NULL) == NB_ERR_ARG);
}

static void test_schedule_invalid(void) {
    nb_schedule s;
#define BAD_SCHED(kind_, field, value, word)                                             \
    do {                                                                                 \
        s = nb_schedule_defaults(kind_);                                                 \
        s.field = value;                                                                 \
        CHECKF(nb_schedule_check(&s) == NB_ERR_ARG, "%s = %g accepted", #field,          \
               (double)(value));                                                         \
        CHECKF(strstr(nb_last_error(), word) != NULL, "message: %s", nb_last_error());   \
        CHECK(isnan(nb_schedule_lr(&s, 0.1, 3)));                                        \
    } while (0)
    BAD_SCHED(NB_SCHED_STEP, step_size, 0, "step_size");
    BAD_SCHED(NB_SCHED_STEP, gamma, 0, "gamma");
    BAD_SCHED(NB_SCHED_STEP, gamma, -0.5, "gamma");
    BAD_SCHED(NB_SCHED_EXPONENTIAL, gamma, NAN, "gamma");
    BAD_SCHED(NB_SCHED_EXPONENTIAL, gamma, INFINITY, "gamma");
    BAD_SCHED(NB_SCHED_COSINE, t_max, 0, "t_max");
    BAD_SCHED(NB_SCHED_COSINE, eta_min, -1e-3, "eta_min");
    BAD_SCHED(NB_SCHED_WARMUP, start_factor, 0, "start_factor");
    BAD_SCHED(NB_SCHED_WARMUP, start_factor, 1.5, "start_factor");
    BAD_SCHED(NB_SCHED_WARMUP, end_factor, -0.1, "end_factor");
    BAD_SCHED(NB_SCHED_WARMUP, end_factor, 2, "end_factor");
    BAD_SCHED(NB_SCHED_WARMUP, total_iters, 0, "total_iters");
    BAD_SCHED(NB_SCHED_LINEAR_DECAY, tau, 0, "tau");
    BAD_SCHED(NB_SCHED_LINEAR_DECAY, tau, -3, "tau");
    BAD_SCHED(NB_SCHED_LINEAR_DECAY, lr_tau, -1e-4, "lr_tau");
    BAD_SCHED(NB_SCHED_CONSTANT, kind, (nb_schedule_kind)17, "kind");
#undef BAD_SCHED
    CHECK(nb_schedule_check(NULL) == NB_ERR_ARG);
    CHECK(isnan(nb_schedule_lr(NULL, 0.1, 0)));
    /* fields of other kinds are not this kind's business */
    s = nb_schedule_defaults(NB_SCHED_CONSTANT);
    s.gamma = -1;
    s.t_max = 0;
    CHECK_OK(nb_schedule_check(&s));
}

/* Large parameter vectors are updated in slices on several threads: the
 * result must be bit-identical to one thread's, for every optimiser. */
static void test_sliced_steps(void) {
    const size_t n = 300007; /* several slices, and a ragged end */
    nb_optim_kind kinds[] = {NB_OPT_SGD, NB_OPT_MOMENTUM_EMA, NB_OPT_ADAGRAD, NB_OPT_RMSPROP,
                             NB_OPT_ADAM, NB_OPT_ADAMW};
    nb_real *p1 = malloc(n * sizeof *p1), *p2 = malloc(n * sizeof *p2), *g = malloc(n * sizeof *g);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        nb_optim_config c = nb_optim_defaults(kinds[k]);
        c.momentum = kinds[k] == NB_OPT_SGD || kinds[k] == NB_OPT_RMSPROP ? 0.9 : c.momentum;
        c.centered = kinds[k] == NB_OPT_RMSPROP;
        c.weight_decay = 0.01;
        nb_optim *o1 = nb_optim_new(&c, n), *o2 = nb_optim_new(&c, n);
        for (size_t i = 0; i < n; i++) p1[i] = p2[i] = (nb_real)((double)(i % 97) / 50 - 1);
        int same = 1;
        for (int step = 0; step < 3; step++) {
            for (size_t i = 0; i < n; i++) g[i] = (nb_real)((double)((i * 31 + step) % 89) / 40 - 1);
            CHECK_OK(nb_set_threads(1));
            CHECK_OK(nb_optim_step(o1, p1, g, 0.01));
            CHECK_OK(nb_set_threads(2));
            CHECK_OK(nb_optim_step(o2, p2, g, 0.01));
        }
        for (size_t i = 0; i < n; i++) same &= memcmp(&p1[i], &p2[i], sizeof *p1) == 0;
        CHECKF(same, "%s: 2 threads differ from 1", nb_optim_name(kinds[k]));
        nb_optim_free(o1);
        nb_optim_free(o2);
    }
    free(p1), free(p2), free(g);
}

/* A gradient that stays zero: Adam's m decays into the subnormal range and
 * is flushed to zero there (it would stick at the smallest subnormal), on 1
 * and 2 threads; the caller's own arithmetic keeps its subnormals after. */
static void test_subnormals_flushed(void) {
    enum { N = 1 << 17 }; /* large enough for two slices */
    for (int threads = 1; threads <= 2; threads++) {
        nb_set_threads(threads);
        nb_optim_config c = nb_optim_defaults(NB_OPT_ADAM);
        nb_optim *o = nb_optim_new(&c, N);
        nb_real *p = calloc(N, sizeof *p), *g = calloc(N, sizeof *g);
        for (int k = 0; k < N; k++) p[k] = 1, g[k] = (nb_real)1e-3;
        CHECK_OK(nb_optim_step(o, p, g, 1e-3));
        memset(g, 0, N * sizeof *g);
        /* m from 1e-4 by 0.9 a step: below the smallest normal float after 770
         * steps, double after 6640 */
        const int float_build = sizeof(nb_real) == sizeof(float);
        const double smallest = float_build ? FLT_MIN : DBL_MIN;
        for (int t = 0; t < (float_build ? 1000 : 7000); t++) nb_optim_step(o, p, g, 1e-3);
        size_t n = 0, nonzero = 0;
        const nb_real *state = nb_optim_state(o, &n);
        for (size_t k = 0; k < n; k++) nonzero += state[k] != 0 && fabs((double)state[k]) < smallest;
        CHECKF(nonzero == 0, "%d threads: %zu subnormal state values left", threads, nonzero);
        volatile float tiny = 1e-38f, half = tiny * 0.5f;
        CHECKF(half != 0, "%d threads: the caller's subnormals are flushed after a step", threads);
        free(p), free(g);
        nb_optim_free(o);
    }
    nb_set_threads(1);
}

int main(void) {
    test_sliced_steps();
    test_subnormals_flushed();
    ref_file *f = ref_load(REF_PATH);
    CHECKF(f != NULL, "cannot load %s", REF_PATH);
    if (f) {
        test_trajectories(f);
        test_state_restore(f);
        test_defaults(f);
        test_clip(f);
        test_schedules(f);
    }
    test_parse();
    test_invalid_configs();
    test_step_errors();
    test_schedule_parse();
    test_schedule_invalid();
    ref_free(f);
    TEST_END();
}
