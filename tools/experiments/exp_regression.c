/*
 * nabla experiment regression — least squares two ways (docs/course.md,
 * "regression: closed form and gradient descent"; examples/regression.c does
 * the same with three features).
 *
 * Data: M points y = 1.5 x - 0.5 + noise, x uniform in [-1, 3].  The linear
 * model f(x) = w x + b minimises the empirical risk (1/M) sum (y_m - w x_m - b)^2:
 *   in closed form, by the normal equations  theta* = (A^T A)^{-1} A^T y
 *   with A = [x 1], theta = (w, b) (that is, w* = [sum x x^T]^{-1} sum y x);
 *   by gradient descent, a dense layer trained with nb_fit (full batch, SGD).
 * The risk is quadratic with Hessian H = (2/M) A^T A, so gradient descent
 * with step eta shrinks the error theta - theta* by at most
 * rho = max_i |1 - eta lambda_i(H)| per step, and the excess risk by rho^2.
 */
#include <math.h>
#include <stdio.h>

#include "course_out.h"
#include "exp_course.h"
#include "nabla.h"

enum { M = 100, STEPS = 200, SHOWN = 4 };

typedef struct trace {
    nb_graph *g;
    nb_node w, b;
    double theta[STEPS + 1][2];   /* (w, b) after k steps */
    int k;
} trace;

static void read_params(trace *t) {
    t->theta[t->k][0] = nb_value(t->g, t->w)[0];
    t->theta[t->k][1] = nb_value(t->g, t->b)[0];
}

static int after_step(const nb_epoch_stats *s, void *user) {
    trace *t = user;
    (void)s;
    if (t->k < STEPS) t->k++, read_params(t);
    return 0;
}

/* the empirical risk of (w, b), in double */
static double risk(const double *x, const double *y, double w, double b) {
    double s = 0;
    for (int m = 0; m < M; m++) s += (y[m] - w * x[m] - b) * (y[m] - w * x[m] - b);
    return s / M;
}

int exp_regression_run(const exp_ctx *ctx, regression_result *res) {
    course_out out;
    if (course_open(&out, ctx, "regression")) return 1;
    const double lr = 0.1, w_true = 1.5, b_true = -0.5, noise = 0.5;
    double x[M], y[M], a[M * 2];
    nb_real xr[M], yr[M];
    nb_rng rng;
    nb_rng_seed(&rng, ctx->seed * 0x9E3779B97F4A7C15ULL + 5);
    for (int m = 0; m < M; m++) {
        x[m] = -1 + 4 * nb_rng_uniform(&rng);
        y[m] = w_true * x[m] + b_true + noise * nb_rng_normal(&rng);
        /* both methods see the same (float) data */
        xr[m] = (nb_real)x[m], yr[m] = (nb_real)y[m];
        x[m] = xr[m], y[m] = yr[m];
        a[2 * m] = x[m], a[2 * m + 1] = 1;
    }

    /* 1. closed form */
    if (!course_least_squares(a, y, M, 2, res->closed))
        return course_close(&out, course_fail("regression", "normal equations are singular"));
    res->closed_mse = risk(x, y, res->closed[0], res->closed[1]);

    /* 2. gradient descent with nabla */
    int one = 1;
    trace t;
    t.g = nb_graph_new();
    if (!t.g) return course_close(&out, course_fail("regression", "out of memory"));
    nb_node xi = nb_input(t.g, "x", 1, &one), yi = nb_input(t.g, "y", 1, &one);
    nb_node pred = nb_dense(t.g, xi, 1, "linear", NULL);
    nb_node loss = nb_mse_loss(t.g, pred, yi);
    t.w = nb_find(t.g, "linear.weight"), t.b = nb_find(t.g, "linear.bias"), t.k = 0;
    nb_fit_config cfg = nb_fit_defaults(xi, yi, loss, NB_NONE);
    nb_optim_config sgd = nb_optim_defaults(NB_OPT_SGD);
    sgd.lr = lr;
    cfg.epochs = STEPS;
    cfg.batch_size = M; /* full batch: plain gradient descent */
    cfg.on_epoch = after_step;
    cfg.user = &t;
    int ok = nb_graph_status(t.g) == NB_OK && nb_graph_init(t.g, &rng) == NB_OK;
    if (ok) read_params(&t);
    ok = ok && course_fit(t.g, &cfg, &sgd, xr, yr, M, 1) == NB_OK;
    nb_graph_free(t.g);
    if (!ok || t.k != STEPS)
        return course_close(&out, course_fail("regression", "training failed: %s",
                                              nb_last_error()));
    res->steps = STEPS;
    res->gd[0] = t.theta[STEPS][0], res->gd[1] = t.theta[STEPS][1];
    res->gd_mse = risk(x, y, res->gd[0], res->gd[1]);
    res->max_diff = fmax(fabs(res->gd[0] - res->closed[0]), fabs(res->gd[1] - res->closed[1]));

    /* the predicted rate: eigenvalues of H = (2/M) A^T A (2 x 2, symmetric) */
    double h11 = 0, h12 = 0, h22 = 2;
    for (int m = 0; m < M; m++) h11 += 2 * x[m] * x[m] / M, h12 += 2 * x[m] / M;
    double mid = (h11 + h22) / 2, rad = sqrt((h11 - h22) * (h11 - h22) / 4 + h12 * h12);
    double lmax = mid + rad, lmin = mid - rad;
    double rho = fmax(fabs(1 - lr * lmax), fabs(1 - lr * lmin));
    /* measured: slope of ln(excess risk) over the steps where it is between 1e-10 and 1e-2 */
    double kk[STEPS + 1], lossc[STEPS + 1], excess[STEPS + 1], opt_line[2], ends[2] = {0, STEPS};
    double lx[STEPS + 1], ly[STEPS + 1];
    int nfit = 0;
    for (int k = 0; k <= STEPS; k++) {
        kk[k] = k;
        lossc[k] = risk(x, y, t.theta[k][0], t.theta[k][1]);
        excess[k] = lossc[k] - res->closed_mse;
        if (excess[k] > 1e-10 && excess[k] < 1e-2) lx[nfit] = k, ly[nfit++] = log(excess[k]);
    }
    double measured = nfit > 2 ? exp(course_slope(lx, ly, nfit)) : NAN;
    opt_line[0] = opt_line[1] = res->closed_mse;

    course_say(&out, "Least squares: %d points y = %.1f x %c %.1f + noise (std %.1f),\n"
               "x uniform in [-1, 3]; model f(x) = w x + b, risk (1/M) sum (y - w x - b)^2.\n\n",
               M, w_true, b_true < 0 ? '-' : '+', fabs(b_true), noise);
    course_say(&out, "%-38s %12s %12s %14s\n", "", "w", "b", "risk");
    course_say(&out, "%-38s %12.7f %12.7f %14.10f\n", "closed form (normal equations)",
               res->closed[0], res->closed[1], res->closed_mse);
    char label[64];
    snprintf(label, sizeof label, "gradient descent (lr %.1f, %d steps)", lr, STEPS);
    course_say(&out, "%-38s %12.7f %12.7f %14.10f\n", label, res->gd[0], res->gd[1],
               res->gd_mse);
    course_say(&out, "\nmax |gradient descent - closed form| over w, b: %.2e\n", res->max_diff);
    course_say(&out, "\nHessian eigenvalues %.3f and %.3f (condition number %.1f): the excess risk\n"
               "should shrink by rho^2 = %.4f per step (rho = max |1 - lr lambda|); measured %.4f\n",
               lmax, lmin, lmax / lmin, rho * rho, measured);

    /* plot: data and lines; risk with the optimum; excess risk (log) */
    static const int shown[SHOWN] = {0, 3, 10, 30};
    double line_x[2] = {-1, 3}, lines[SHOWN + 1][2];
    char names[SHOWN][32];
    svg_series fit_s[SHOWN + 2];
    fit_s[0] = (svg_series){.label = "data", .x = x, .y = y, .n = M, .no_line = 1};
    for (int i = 0; i < SHOWN; i++) {
        const double *th = t.theta[shown[i]];
        lines[i][0] = th[0] * line_x[0] + th[1], lines[i][1] = th[0] * line_x[1] + th[1];
        snprintf(names[i], sizeof names[i], "GD, %d steps", shown[i]);
        fit_s[i + 1] = (svg_series){.label = names[i], .x = line_x, .y = lines[i], .n = 2};
    }
    lines[SHOWN][0] = res->closed[0] * line_x[0] + res->closed[1];
    lines[SHOWN][1] = res->closed[0] * line_x[1] + res->closed[1];
    fit_s[SHOWN + 1] = (svg_series){.label = "closed form", .x = line_x, .y = lines[SHOWN],
                                    .n = 2, .dashed = 1};
    svg_series risk_s[2] = {
        {.label = "gradient descent", .x = kk, .y = lossc, .n = STEPS + 1},
        {.label = "closed-form optimum", .x = ends, .y = opt_line, .n = 2, .dashed = 1},
    };
    double pred_line[2] = {excess[0], excess[0] * pow(rho * rho, STEPS)};
    svg_series excess_s[2] = {
        {.label = "gradient descent", .x = kk, .y = excess, .n = STEPS + 1},
        {.label = "rho^2 per step", .x = ends, .y = pred_line, .n = 2, .dashed = 1},
    };
    svg_panel panels[3] = {
        {.title = "data and fitted lines", .xlabel = "x", .ylabel = "y", .series = fit_s,
         .n_series = SHOWN + 2, .legend_at = SVG_LEGEND_AUTO},
        {.title = "risk against steps", .xlabel = "step", .ylabel = "risk (MSE)",
         .series = risk_s, .n_series = 2},
        {.title = "excess risk over the optimum", .xlabel = "step",
         .ylabel = "risk - optimum", .log_y = 1, .series = excess_s, .n_series = 2,
         .y_min = 1e-14, .y_max = 1e2},
    };
    int rc = course_plot(&out, "Least squares: closed form and gradient descent", panels, 3, 3);
    return course_close(&out, rc);
}

int exp_regression(const exp_ctx *ctx) {
    regression_result r;
    return exp_regression_run(ctx, &r);
}
