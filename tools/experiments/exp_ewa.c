/*
 * nabla experiment ewa — exponentially weighted averages and their bias
 * correction (docs/course.md, "ewa: exponentially weighted averages"):
 *   v_0 = 0,  v_t = beta v_{t-1} + (1 - beta) theta_t,  corrected v_t / (1 - beta^t).
 *
 * The series theta_t is a smooth trend (a slow wave around 10, like a daily
 * temperature) plus Gaussian noise.  Starting from v_0 = 0, the plain
 * average needs about 1/(1 - beta) steps to forget its start; dividing by
 * 1 - beta^t (the sum of the weights so far) removes that bias.  The
 * average of a trend lags behind it: by beta/(1 - beta) steps for a linear
 * trend.  Momentum in its averaging form keeps the same v for the gradients:
 * nabla's optimiser "ema-momentum" (NB_OPT_MOMENTUM_EMA) is checked to
 * produce exactly this sequence.
 */
#include <math.h>
#include <stdio.h>

#include "course_out.h"
#include "exp_course.h"
#include "nabla.h"

enum { T = 200, MAX_LAG = 80 };

static double trend_at(int t) { return 10 + 4 * sin(2 * 3.14159265358979323846 * t / 160.0); }

/* The shift k (0..MAX_LAG) that best matches v_t with trend_{t-k} over the
 * second half of the series, by mean squared difference. */
static int best_lag(const double *v, const double *trend) {
    int best = 0;
    double best_err = INFINITY;
    for (int k = 0; k <= MAX_LAG; k++) {
        double e = 0;
        for (int t = T / 2; t <= T; t++) e += (v[t] - trend[t - k]) * (v[t] - trend[t - k]);
        if (e < best_err) best_err = e, best = k;
    }
    return best;
}

int exp_ewa_run(const exp_ctx *ctx, ewa_result *res) {
    course_out out;
    if (course_open(&out, ctx, "ewa")) return 1;
    static const double betas[EWA_BETAS] = {0.5, 0.9, 0.98};
    const double noise_std = 1.5;
    /* index t = 0..T; theta_0 is unused (v_0 = 0); trend_{t} for t < 0 by the formula */
    double tt[T + 1], theta[T + 1], trend_ext[T + 1 + MAX_LAG], *trend = trend_ext + MAX_LAG;
    double v[EWA_BETAS][T + 1], vc[EWA_BETAS][T + 1];
    nb_rng rng;
    nb_rng_seed(&rng, ctx->seed * 0x9E3779B97F4A7C15ULL + 3);
    for (int t = -MAX_LAG; t <= T; t++) trend[t] = trend_at(t);
    for (int t = 0; t <= T; t++) {
        tt[t] = t;
        theta[t] = t ? trend[t] + noise_std * nb_rng_normal(&rng) : NAN;
    }
    double optim_diff = 0;
    for (int b = 0; b < EWA_BETAS; b++) {
        double beta = betas[b];
        res->beta[b] = beta;
        v[b][0] = 0, vc[b][0] = NAN;
        for (int t = 1; t <= T; t++) {
            v[b][t] = beta * v[b][t - 1] + (1 - beta) * theta[t];
            vc[b][t] = v[b][t] / (1 - pow(beta, t));
        }
        /* the same average kept by the ema-momentum optimiser: with the
         * parameter reset to 0 before each step and lr 1, it becomes -v_t */
        nb_optim_config oc = nb_optim_defaults(NB_OPT_MOMENTUM_EMA);
        oc.beta = beta;
        oc.lr = 1;
        nb_optim *opt = nb_optim_new(&oc, 1);
        if (!opt) return course_close(&out, course_fail("ewa", "%s", nb_last_error()));
        for (int t = 1; t <= T; t++) {
            nb_real p = 0, g = (nb_real)theta[t];
            nb_optim_step(opt, &p, &g, oc.lr);
            optim_diff = fmax(optim_diff, fabs(-p - v[b][t]) / fabs(v[b][t]));
        }
        nb_optim_free(opt);
        double e_plain = 0, e_corr = 0;
        for (int t = 1; t <= 10; t++)
            e_plain += fabs(v[b][t] - trend[t]) / 10, e_corr += fabs(vc[b][t] - trend[t]) / 10;
        res->err10_plain[b] = e_plain, res->err10_corrected[b] = e_corr;
        res->lag[b] = best_lag(vc[b], trend);
        double ss = 0;
        for (int t = T / 2; t <= T; t++)
            ss += (vc[b][t] - trend[t - res->lag[b]]) * (vc[b][t] - trend[t - res->lag[b]]);
        res->noise[b] = sqrt(ss / (T / 2 + 1));
        const double omega = 2 * 3.14159265358979323846 / 160;
        double re = 1 - beta * cos(omega), im = beta * sin(omega);
        res->wave_lag[b] = atan2(im, re) / omega;
        res->wave_gain[b] = (1 - beta) / hypot(re, im);
    }
    double ss = 0;
    for (int t = 1; t <= T; t++) ss += (theta[t] - trend[t]) * (theta[t] - trend[t]);
    res->noise_raw = sqrt(ss / T);

    course_say(&out, "Exponentially weighted averages: v_0 = 0,\n"
               "v_t = beta v_{t-1} + (1 - beta) theta_t, bias-corrected v_t / (1 - beta^t).\n"
               "theta_t = 10 + 4 sin(2 pi t / 160) + noise (std %.1f), t = 1..%d.\n\n",
               noise_std, T);
    course_say(&out, "%5s %8s %10s %10s %5s %9s %8s %6s %6s\n", "beta", "1/(1-b)",
               "err t<=10", "corrected", "lag", "wave lag", "b/(1-b)", "gain", "resid");
    for (int b = 0; b < EWA_BETAS; b++) {
        double beta = betas[b];
        course_say(&out, "%5.2f %8.0f %10.3f %10.3f %5d %9.1f %8.0f %6.2f %6.2f\n", beta,
                   1 / (1 - beta), res->err10_plain[b], res->err10_corrected[b], res->lag[b],
                   res->wave_lag[b], beta / (1 - beta), res->wave_gain[b], res->noise[b]);
    }
    course_say(&out, "\n  err t<=10  mean |v_t - trend_t| over the first 10 steps, plain and corrected\n"
               "  lag        the shift k best matching the corrected v_t with trend_{t-k}, t >= %d\n"
               "  wave lag   the lag predicted for this wave: arg H / omega, with the average's\n"
               "             response H = (1-b) / (1 - b e^{-i omega}), omega = 2 pi / 160\n"
               "  b/(1-b)    the lag behind a straight-line trend\n"
               "  gain       |H|: how much of the wave's amplitude the average keeps\n"
               "  resid      std of v_t - trend_{t-lag}, t >= %d (raw noise: %.2f); for a large\n"
               "             beta it is mostly the flattened wave, not noise\n",
               T / 2, T / 2, res->noise_raw);
    course_say(&out, "\nnabla's optimiser ema-momentum keeps the same v_t: largest relative\n"
               "difference %.1e (float against double)\n", optim_diff);
    if (optim_diff > 1e-4)
        return course_close(&out, course_fail("ewa", "ema-momentum differs from the average"));

    svg_series s[2][EWA_BETAS + 2];
    static const char *labels[EWA_BETAS] = {"beta 0.5", "beta 0.9", "beta 0.98"};
    for (int c = 0; c < 2; c++) {
        s[c][0] = (svg_series){.label = "theta_t (data)", .x = tt, .y = theta, .n = T + 1,
                               .no_line = 1};
        for (int b = 0; b < EWA_BETAS; b++)
            s[c][b + 1] = (svg_series){.label = labels[b], .x = tt, .y = c ? vc[b] : v[b],
                                       .n = T + 1};
        s[c][EWA_BETAS + 1] = (svg_series){.label = "trend", .x = tt, .y = trend, .n = T + 1,
                                           .dashed = 1};
    }
    svg_panel panels[2] = {
        {.title = "v_t, no bias correction", .xlabel = "t", .ylabel = "value",
         .series = s[0], .n_series = EWA_BETAS + 2, .y_min = -1, .y_max = 24},
        {.title = "v_t / (1 - beta^t), bias corrected", .xlabel = "t", .ylabel = "value",
         .series = s[1], .n_series = EWA_BETAS + 2, .y_min = -1, .y_max = 24,
         .legend_at = SVG_LEGEND_NONE},
    };
    int rc = course_plot(&out, "Exponentially weighted averages", panels, 2, 2);
    return course_close(&out, rc);
}

int exp_ewa(const exp_ctx *ctx) {
    ewa_result r;
    return exp_ewa_run(ctx, &r);
}
