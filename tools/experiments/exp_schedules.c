/* nabla experiment schedules: learning-rate decay and the noise of SGD near a
 * minimum (docs/course.md, "schedules: learning-rate decay and SGD noise near a
 * minimum").
 *
 * Mini-batch SGD on least squares with label noise: the batch gradient is an
 * unbiased but noisy estimate of the full gradient, and the noise does not
 * vanish at the minimum, so with a constant rate eta the parameters keep
 * jumping around it.  Near the minimum the excess loss settles at about
 *     E[L(theta) - L*] = eta sigma^2 tr(G) / B      (G = A^T A / n, small eta)
 * which is proportional to eta; a rate that decays to 0 (Robbins-Monro:
 * sum eta_k = inf, sum eta_k^2 < inf) or to a small eta_tau shrinks it.  The
 * schedules are the library's (nb_schedule_lr), counted in steps here, and
 * the steps are nb_optim_step's plain SGD on a one-layer graph. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiment.h"
#include "nabla.h"
#include "svgplot.h"

enum { FEATURES = 10, P = FEATURES + 1, BATCH = 10, N_SAMPLES = 2000 };
static const double NOISE_SD = 0.5, LR0 = 0.05, LR_FLOOR = LR0 / 100;

/* Print to stdout and to the summary file. */
static void say(FILE *txt, const char *fmt, ...) {
    va_list a;
    va_start(a, fmt);
    vprintf(fmt, a);
    va_end(a);
    if (txt) {
        va_start(a, fmt);
        vfprintf(txt, fmt, a);
        va_end(a);
    }
}

/* The regression problem, its exact optimum and the model graph. */
typedef struct problem {
    nb_real *x, *y;           /* N_SAMPLES x FEATURES inputs, N_SAMPLES targets   */
    double gram[P * P];       /* G = A^T A / n with A = [x 1]                     */
    double opt[P];            /* theta* = argmin L: weights, then the bias        */
    double loss_min;          /* L* = L(theta*), the mean squared residual        */
    nb_graph *g;
    nb_node in, target, loss, weight, bias;
    nb_real *bx, *by;         /* one batch                                        */
} problem;

/* Solve the P x P symmetric positive definite system m z = r by Cholesky
 * (m is overwritten).  Returns -1 if m is not positive definite. */
static int solve_spd(double *m, double *r) {
    for (int j = 0; j < P; j++) {
        for (int k = 0; k < j; k++) m[j * P + j] -= m[j * P + k] * m[j * P + k];
        if (!(m[j * P + j] > 0)) return -1;
        m[j * P + j] = sqrt(m[j * P + j]);
        for (int i = j + 1; i < P; i++) {
            for (int k = 0; k < j; k++) m[i * P + j] -= m[i * P + k] * m[j * P + k];
            m[i * P + j] /= m[j * P + j];
        }
    }
    for (int i = 0; i < P; i++) { /* L z' = r, then L^T z = z' */
        for (int k = 0; k < i; k++) r[i] -= m[i * P + k] * r[k];
        r[i] /= m[i * P + i];
    }
    for (int i = P - 1; i >= 0; i--) {
        for (int k = i + 1; k < P; k++) r[i] -= m[k * P + i] * r[k];
        r[i] /= m[i * P + i];
    }
    return 0;
}

/* Row k of A = [x 1]. */
static void design_row(const problem *pb, int k, double *a) {
    for (int j = 0; j < FEATURES; j++) a[j] = (double)pb->x[(size_t)k * FEATURES + j];
    a[FEATURES] = 1;
}

static int make_problem(problem *pb, uint64_t seed) {
    memset(pb, 0, sizeof *pb);
    pb->x = malloc(sizeof(nb_real) * N_SAMPLES * FEATURES);
    pb->y = malloc(sizeof(nb_real) * N_SAMPLES);
    pb->bx = malloc(sizeof(nb_real) * BATCH * FEATURES);
    pb->by = malloc(sizeof(nb_real) * BATCH);
    if (!pb->x || !pb->y || !pb->bx || !pb->by) return nb_set_error(NB_ERR_NOMEM, "out of memory");
    /* y = x . w_true + 0.5 + noise, x and w_true standard normal */
    nb_rng r;
    nb_rng_seed(&r, seed ^ 0x5343484544554C45ull);
    double w_true[FEATURES];
    for (int j = 0; j < FEATURES; j++) w_true[j] = nb_rng_normal(&r);
    for (int k = 0; k < N_SAMPLES; k++) {
        double t = 0.5;
        for (int j = 0; j < FEATURES; j++) {
            nb_real v = (nb_real)nb_rng_normal(&r);
            pb->x[(size_t)k * FEATURES + j] = v;
            t += (double)v * w_true[j];
        }
        pb->y[k] = (nb_real)(t + NOISE_SD * nb_rng_normal(&r));
    }
    /* the exact least-squares optimum from the normal equations, in double */
    double m[P * P] = {0}, rhs[P] = {0}, a[P];
    for (int k = 0; k < N_SAMPLES; k++) {
        design_row(pb, k, a);
        for (int i = 0; i < P; i++) {
            rhs[i] += a[i] * (double)pb->y[k] / N_SAMPLES;
            for (int j = 0; j < P; j++) m[i * P + j] += a[i] * a[j] / N_SAMPLES;
        }
    }
    memcpy(pb->gram, m, sizeof m);
    if (solve_spd(m, rhs) != 0) return nb_set_error(NB_ERR_NUMERIC, "singular normal equations");
    memcpy(pb->opt, rhs, sizeof rhs);
    double sse = 0;
    for (int k = 0; k < N_SAMPLES; k++) {
        design_row(pb, k, a);
        double e = -(double)pb->y[k];
        for (int i = 0; i < P; i++) e += a[i] * pb->opt[i];
        sse += e * e;
    }
    pb->loss_min = sse / N_SAMPLES;

    /* the model: one dense unit, mean squared error, started at zero */
    pb->g = nb_graph_new();
    if (!pb->g) return nb_set_error(NB_ERR_NOMEM, "out of memory");
    int f = FEATURES, one = 1;
    nb_dense_opts o = {.weight_init = {.kind = NB_INIT_ZEROS},
                       .bias_init = {.kind = NB_INIT_ZEROS}};
    pb->in = nb_input(pb->g, "x", 1, &f);
    pb->target = nb_input(pb->g, "y", 1, &one);
    nb_node pred = nb_dense(pb->g, pb->in, 1, "fit", &o);
    pb->loss = nb_mse_loss(pb->g, pred, pb->target);
    pb->weight = nb_find(pb->g, "fit.weight");
    pb->bias = nb_find(pb->g, "fit.bias");
    if (nb_graph_status(pb->g) != NB_OK) return nb_graph_status(pb->g);
    if (pb->weight == NB_NONE || pb->bias == NB_NONE)
        return nb_set_error(NB_ERR_STATE, "dense layer parameters not found");
    return NB_OK;
}

static void free_problem(problem *pb) {
    nb_graph_free(pb->g);
    free(pb->x);
    free(pb->y);
    free(pb->bx);
    free(pb->by);
}

/* L(theta) - L* = (theta - theta*)^T G (theta - theta*), exactly. */
static double excess_loss(problem *pb) {
    const nb_real *w = nb_value(pb->g, pb->weight), *b = nb_value(pb->g, pb->bias);
    double d[P];
    for (int j = 0; j < FEATURES; j++) d[j] = (double)w[j] - pb->opt[j];
    d[FEATURES] = (double)b[0] - pb->opt[FEATURES];
    double e = 0;
    for (int i = 0; i < P; i++)
        for (int j = 0; j < P; j++) e += d[i] * pb->gram[i * P + j] * d[j];
    return e;
}

/* How a batch is drawn: B independent uniform samples (the textbook model:
 * every batch gradient is an independent unbiased estimate), or consecutive
 * indices of an order reshuffled every epoch (the usual practice, and what
 * nb_fit does). */
typedef enum { DRAW_IID, DRAW_RESHUFFLE } draw_mode;

/* SGD from theta = 0 for `steps` steps with rate nb_schedule_lr(s, base_lr, k).
 * Records the rate and the excess loss after every step (either may be NULL). */
static nb_status run_sgd(problem *pb, const nb_schedule *s, double base_lr, int steps,
                         draw_mode draw, uint64_t seed, double *lr_out, double *excess_out) {
    nb_rng r;
    nb_rng_seed(&r, seed);
    if (nb_graph_init(pb->g, &r) != NB_OK) return NB_ERR_STATE; /* zeros */
    nb_optim_config c = nb_optim_defaults(NB_OPT_SGD);
    nb_optim *o = nb_optim_new(&c, nb_param_count(pb->g));
    if (!o) return NB_ERR_NOMEM;
    size_t order[N_SAMPLES];
    for (size_t i = 0; i < N_SAMPLES; i++) order[i] = i;
    nb_status st = NB_OK;
    const int per_epoch = N_SAMPLES / BATCH;
    for (int k = 0; k < steps && st == NB_OK; k++) {
        if (draw == DRAW_RESHUFFLE && k % per_epoch == 0) nb_rng_shuffle(&r, order, N_SAMPLES);
        for (int b = 0; b < BATCH; b++) {
            size_t i = draw == DRAW_IID ? (size_t)nb_rng_below(&r, N_SAMPLES)
                                        : order[(size_t)(k % per_epoch) * BATCH + (size_t)b];
            memcpy(pb->bx + (size_t)b * FEATURES, pb->x + i * FEATURES, sizeof(nb_real) * FEATURES);
            pb->by[b] = pb->y[i];
        }
        double lr = nb_schedule_lr(s, base_lr, k);
        nb_zero_grad(pb->g);
        if ((st = nb_set_input(pb->g, pb->in, pb->bx, BATCH)) != NB_OK ||
            (st = nb_set_input(pb->g, pb->target, pb->by, BATCH)) != NB_OK ||
            (st = nb_forward(pb->g, pb->loss)) != NB_OK ||
            (st = nb_backward(pb->g, pb->loss)) != NB_OK ||
            (st = nb_optim_step(o, nb_params(pb->g), nb_grads(pb->g), lr)) != NB_OK)
            break;
        if (lr_out) lr_out[k] = lr;
        if (excess_out) excess_out[k] = excess_loss(pb);
    }
    nb_optim_free(o);
    return st;
}

static double mean_from(const double *v, int from, int to) {
    double s = 0;
    for (int k = from; k < to; k++) s += v[k];
    return s / (to - from);
}

enum { N_SCHED = 3, N_ETA = 4, MAX_PLOT = 400 };

int exp_schedules(const exp_ctx *ctx) {
    char svg_path[4096], txt_path[4096];
    snprintf(svg_path, sizeof svg_path, "%s/schedules.svg", ctx->out_dir);
    snprintf(txt_path, sizeof txt_path, "%s/schedules.txt", ctx->out_dir);
    FILE *txt = fopen(txt_path, "w");
    if (!txt) {
        fprintf(stderr, "nabla experiment schedules: cannot write %s\n", txt_path);
        return 1;
    }
    const int steps = ctx->quick ? 2000 : 6000;
    const int repeats = ctx->quick ? 2 : 6;   /* runs per rate in the noise-vs-eta fit */
    const int tau = steps * 3 / 5;
    const int last = steps * 4 / 5;           /* "late phase": the last 20% of steps */
    const int settled = steps / 2;            /* noise-vs-eta: mean over the second half */
    int rc = 1;
    problem pb;
    double *lr[N_SCHED] = {0}, *ex[N_SCHED] = {0}, *buf = NULL;
    double *px[N_SCHED] = {0}, *plr[N_SCHED] = {0}, *pex[N_SCHED] = {0};
    nb_status st = make_problem(&pb, ctx->seed);
    if (st != NB_OK) goto fail;
    for (int s = 0; s < N_SCHED; s++) {
        lr[s] = malloc(sizeof(double) * (size_t)steps);
        ex[s] = malloc(sizeof(double) * (size_t)steps);
        px[s] = malloc(sizeof(double) * MAX_PLOT);
        plr[s] = malloc(sizeof(double) * MAX_PLOT);
        pex[s] = malloc(sizeof(double) * MAX_PLOT);
        if (!lr[s] || !ex[s] || !px[s] || !plr[s] || !pex[s]) goto oom;
    }
    buf = malloc(sizeof(double) * (size_t)steps);
    if (!buf) goto oom;

    double trace = 0;
    for (int i = 0; i < P; i++) trace += pb.gram[i * P + i];
    /* the label noise as the data show it: L* estimates sigma^2 */
    const double per_eta = pb.loss_min * trace / BATCH;

    nb_schedule sched[N_SCHED];
    sched[0] = nb_schedule_defaults(NB_SCHED_CONSTANT);
    sched[1] = nb_schedule_defaults(NB_SCHED_LINEAR_DECAY);
    sched[1].tau = tau;
    sched[1].lr_tau = LR_FLOOR;
    sched[2] = nb_schedule_defaults(NB_SCHED_COSINE);
    sched[2].t_max = steps;
    sched[2].eta_min = LR_FLOOR;

    say(txt, "schedules: learning-rate decay and the noise of SGD near a minimum\n");
    say(txt, "problem: least squares y = x.w + b + noise, n %d, %d features + bias, noise sd %g; "
             "mini-batch SGD (nb_optim sgd), batch %d drawn uniformly and independently, %d "
             "steps from theta = 0\n", N_SAMPLES, FEATURES, NOISE_SD, BATCH, steps);
    say(txt, "L* = %.5f (mean squared residual at the exact optimum), tr(G) = %.3f; "
             "small-eta noise level eta * L* tr(G) / B = %.4f * eta\n", pb.loss_min, trace,
        per_eta);
    say(txt, "schedules (per step k, eta_0 %g): constant; linear-decay eta_k = (1-k/tau) eta_0 + "
             "(k/tau) eta_tau, tau %d, eta_tau %g, then constant; cosine to eta_min %g at "
             "k = %d\n", LR0, tau, LR_FLOOR, LR_FLOOR, steps);
    say(txt, "excess = L(theta) - L*, exact; late = mean over steps %d..%d; equilibrium = "
             "the small-eta level at the late phase's mean rate (where a long run at that "
             "rate settles)\n\n", last, steps);
    say(txt, "%-9s %-13s %-9s %-9s %-12s %-12s %s\n", "", "schedule", "lr_first", "lr_last",
        "excess_last", "excess_late", "equilibrium");
    for (int s = 0; s < N_SCHED; s++) {
        st = run_sgd(&pb, &sched[s], LR0, steps, DRAW_IID, ctx->seed + 1, lr[s], ex[s]);
        if (st != NB_OK) goto fail;
        say(txt, "%-9s %-13s %-9.4g %-9.4g %-12.4g %-12.4g %.4g\n", "schedule",
            nb_schedule_name(sched[s].kind), lr[s][0], lr[s][steps - 1], ex[s][steps - 1],
            mean_from(ex[s], last, steps), per_eta * mean_from(lr[s], last, steps));
    }

    /* noise level against constant rates */
    double etas[N_ETA], noise[N_ETA], noise_rs[N_ETA], pred[N_ETA + 1], eta_axis[N_ETA + 1];
    say(txt, "\nconstant rates: mean excess over steps %d..%d, averaged over %d runs; "
             "reshuffled = batches from a permutation per epoch instead of independent draws\n",
        settled, steps, repeats);
    say(txt, "%-9s %-9s %-12s %-12s %-12s %s\n", "", "eta", "excess", "predicted", "excess/eta",
        "reshuffled");
    eta_axis[0] = pred[0] = 0;
    for (int e = 0; e < N_ETA; e++) {
        etas[e] = LR0 / (double)(1 << (N_ETA - 1 - e));
        double sum = 0, sum_rs = 0;
        for (int rep = 0; rep < repeats; rep++) {
            uint64_t seed = ctx->seed + 100 + (uint64_t)rep;
            if ((st = run_sgd(&pb, &sched[0], etas[e], steps, DRAW_IID, seed, NULL, buf)) != NB_OK)
                goto fail;
            sum += mean_from(buf, settled, steps);
            if ((st = run_sgd(&pb, &sched[0], etas[e], steps, DRAW_RESHUFFLE, seed, NULL, buf)) !=
                NB_OK)
                goto fail;
            sum_rs += mean_from(buf, settled, steps);
        }
        noise[e] = sum / repeats;
        noise_rs[e] = sum_rs / repeats;
        eta_axis[e + 1] = etas[e];
        pred[e + 1] = per_eta * etas[e];
        say(txt, "%-9s %-9.5g %-12.4g %-12.4g %-12.4g %.4g\n", "noise", etas[e], noise[e],
            pred[e + 1], noise[e] / etas[e], noise_rs[e]);
    }

    /* plots: every step would make a large file; every k-th is the same picture */
    int every = (steps + MAX_PLOT - 1) / MAX_PLOT, m = 0;
    for (int s = 0; s < N_SCHED; s++) {
        m = 0;
        for (int k = 0; k < steps && m < MAX_PLOT; k += every, m++) {
            px[s][m] = k;
            plr[s][m] = lr[s][k];
            pex[s][m] = ex[s][k];
        }
    }
    double level_x[2] = {0, steps}, level_y[2] = {per_eta * LR0, per_eta * LR0};
    double floor_y[2] = {per_eta * LR_FLOOR, per_eta * LR_FLOOR};
    svg_series lr_series[N_SCHED], ex_series[N_SCHED + 2], noise_series[3];
    for (int s = 0; s < N_SCHED; s++) {
        const char *name = nb_schedule_name(sched[s].kind);
        lr_series[s] = (svg_series){.label = name, .x = px[s], .y = plr[s], .n = m};
        ex_series[s] = (svg_series){.label = name, .x = px[s], .y = pex[s], .n = m};
    }
    ex_series[N_SCHED] = (svg_series){.label = "level at eta_0", .x = level_x, .y = level_y,
                                      .n = 2, .dashed = 1};
    ex_series[N_SCHED + 1] = (svg_series){.label = "level at eta_tau", .x = level_x,
                                          .y = floor_y, .n = 2, .dashed = 1};
    noise_series[0] = (svg_series){.label = "independent batches", .x = etas, .y = noise,
                                   .n = N_ETA, .marker = 3};
    noise_series[1] = (svg_series){.label = "reshuffled epochs", .x = etas, .y = noise_rs,
                                   .n = N_ETA, .marker = 3};
    noise_series[2] = (svg_series){.label = "eta L* tr(G)/B", .x = eta_axis, .y = pred,
                                   .n = N_ETA + 1, .dashed = 1};
    svg_panel panels[3] = {
        {.title = "learning rate per step", .xlabel = "step", .ylabel = "eta_k",
         .series = lr_series, .n_series = N_SCHED, .legend_at = SVG_LEGEND_AUTO},
        {.title = "SGD noise: excess loss L - L*", .xlabel = "step", .ylabel = "L(theta_k) - L*",
         .log_y = 1, .series = ex_series, .n_series = N_SCHED + 2,
         .legend_at = SVG_LEGEND_AUTO},
        {.title = "noise level against a constant eta", .xlabel = "eta",
         .ylabel = "mean excess loss, second half", .series = noise_series, .n_series = 3,
         .legend_at = SVG_LEGEND_AUTO},
    };
    if (svg_write_grid(svg_path, "Learning-rate schedules and SGD noise near the minimum",
                       panels, 3, 3) != 0) {
        fprintf(stderr, "nabla experiment schedules: cannot write %s\n", svg_path);
        goto done;
    }
    say(txt, "\nplot: %s\n", svg_path);
    rc = 0;
    goto done;
oom:
    st = nb_set_error(NB_ERR_NOMEM, "out of memory");
fail:
    fprintf(stderr, "nabla experiment schedules: %s\n", nb_last_error());
done:
    if (fclose(txt) != 0 && rc == 0) {
        fprintf(stderr, "nabla experiment schedules: cannot write %s\n", txt_path);
        rc = 1;
    }
    free_problem(&pb);
    free(buf);
    for (int s = 0; s < N_SCHED; s++) {
        free(lr[s]);
        free(ex[s]);
        free(px[s]);
        free(plr[s]);
        free(pex[s]);
    }
    return rc;
}
