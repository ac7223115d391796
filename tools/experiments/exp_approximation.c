/*
 * nabla experiment approximation — one hidden layer is enough if it is wide
 * enough (docs/course.md, "approximation: one hidden layer of growing width";
 * the universal approximation theorem, Cybenko 1989 / Hornik 1991):  f(x; Theta) = w2^T sigma(W1 x + b1) (+ b2)  comes within any
 * epsilon of a continuous f on a compact set for some width N1, with sigma
 * continuous, bounded, non-constant and increasing — here tanh.
 *
 * Networks 1 -> N1 -> 1 of growing width are fitted to f(x) = sin(3x) + 0.3 x^2
 * on [-2, 2] with Adam (full batch); the final training MSE falls with the
 * width.  The theorem says nothing about how wide, nor whether training finds
 * the weights: we keep the best of a few random starts.
 */
#include <math.h>
#include <stdio.h>

#include "course_out.h"
#include "exp_course.h"
#include "nabla.h"

enum { POINTS = 200, MAX_RESTARTS = 3 };

static const int widths[APPROX_WIDTHS] = {1, 2, 4, 8, 16, 64};

static double target(double x) { return sin(3 * x) + 0.3 * x * x; }

/* Train one network; its final MSE and its predictions on the points. */
static int fit(int width, uint64_t seed, int steps, const nb_real *x, const nb_real *y,
               double *mse, double *pred) {
    int one = 1;
    nb_graph *g = nb_graph_new();
    if (!g) return course_fail("approximation", "out of memory"), 0;
    nb_node xi = nb_input(g, "x", 1, &one), yi = nb_input(g, "y", 1, &one);
    /* hidden units of varied steepness with their centres -b/w spread over
     * [-2, 2] and beyond (PyTorch's default, U(-1, 1) for one input, gives
     * only gentle slopes that training must first steepen) */
    nb_dense_opts o = {.weight_init = {.kind = NB_INIT_UNIFORM, .a = -3, .b = 3},
                       .bias_init = {.kind = NB_INIT_UNIFORM, .a = -3, .b = 3}};
    nb_node h = nb_tanh(g, nb_dense(g, xi, width, "hidden", &o));
    nb_node f = nb_dense(g, h, 1, "out", NULL);
    nb_node loss = nb_mse_loss(g, f, yi);
    nb_fit_config cfg = nb_fit_defaults(xi, yi, loss, NB_NONE);
    nb_optim_config adam = nb_optim_defaults(NB_OPT_ADAM);
    adam.lr = 0.01;
    cfg.epochs = steps;
    cfg.batch_size = POINTS; /* full batch */
    cfg.no_shuffle = 1;
    cfg.schedule = nb_schedule_defaults(NB_SCHED_COSINE); /* decay to 0 for a precise end */
    cfg.schedule.t_max = steps;
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    int ok = nb_graph_status(g) == NB_OK && nb_graph_init(g, &rng) == NB_OK &&
             course_fit(g, &cfg, &adam, x, y, POINTS, 1) == NB_OK &&
             nb_set_input(g, xi, x, POINTS) == NB_OK && nb_set_input(g, yi, y, POINTS) == NB_OK &&
             nb_forward(g, loss) == NB_OK;
    if (ok) {
        *mse = nb_value(g, loss)[0];
        const nb_real *p = nb_value(g, f);
        for (int i = 0; i < POINTS; i++) pred[i] = p[i];
    } else {
        course_fail("approximation", "%s", nb_last_error());
    }
    nb_graph_free(g);
    return ok;
}

int exp_approximation_run(const exp_ctx *ctx, approx_result *res) {
    course_out out;
    if (course_open(&out, ctx, "approximation")) return 1;
    const int steps = ctx->quick ? 1500 : 4000, restarts = ctx->quick ? 2 : MAX_RESTARTS;
    nb_real x[POINTS], y[POINTS];
    double xd[POINTS], yd[POINTS], best_pred[APPROX_WIDTHS][POINTS], pred[POINTS];
    for (int i = 0; i < POINTS; i++) {
        xd[i] = -2 + 4.0 * i / (POINTS - 1);
        x[i] = (nb_real)xd[i];
        y[i] = (nb_real)target(xd[i]);
        yd[i] = y[i];
    }
    course_say(&out, "Universal approximation: f(x) = sin(3x) + 0.3 x^2 on [-2, 2],\n"
               "%d evenly spaced points; networks x -> tanh(W1 x + b1) -> w2^T h + b2 of width\n"
               "N1 (W1, b1 uniform in [-3, 3]), Adam lr 0.01 with cosine decay, %d full-batch\n"
               "steps, best of %d random starts.\n\n",
               POINTS, steps, restarts);
    course_say(&out, "%8s %14s %12s\n", "width", "final MSE", "parameters");
    for (int k = 0; k < APPROX_WIDTHS; k++) {
        res->width[k] = widths[k];
        res->mse[k] = INFINITY;
        for (int r = 0; r < restarts; r++) {
            double mse;
            uint64_t seed = ctx->seed * 1000 + (uint64_t)(k * MAX_RESTARTS + r) + 1;
            if (!fit(widths[k], seed, steps, x, y, &mse, pred)) return course_close(&out, 1);
            if (mse < res->mse[k]) {
                res->mse[k] = mse;
                for (int i = 0; i < POINTS; i++) best_pred[k][i] = pred[i];
            }
        }
        course_say(&out, "%8d %14.3g %12d\n", widths[k], res->mse[k], 3 * widths[k] + 1);
    }
    double var = 0, mean = 0;
    for (int i = 0; i < POINTS; i++) mean += yd[i] / POINTS;
    for (int i = 0; i < POINTS; i++) var += (yd[i] - mean) * (yd[i] - mean) / POINTS;
    course_say(&out, "(the variance of f over the points, the MSE of the best constant: %.3g)\n",
               var);

    svg_series fits[APPROX_WIDTHS + 1];
    char labels[APPROX_WIDTHS][24];
    for (int k = 0; k < APPROX_WIDTHS; k++) {
        snprintf(labels[k], sizeof labels[k], "width %d", widths[k]);
        fits[k] = (svg_series){.label = labels[k], .x = xd, .y = best_pred[k], .n = POINTS};
    }
    fits[APPROX_WIDTHS] = (svg_series){.label = "target f(x)", .x = xd, .y = yd, .n = POINTS,
                                       .dashed = 1, .color = "black"};
    double lw[APPROX_WIDTHS];
    for (int k = 0; k < APPROX_WIDTHS; k++) lw[k] = log2(widths[k]);
    svg_series mse_s = {.label = "final MSE", .x = lw, .y = res->mse, .n = APPROX_WIDTHS,
                        .marker = 4};
    svg_panel panels[2] = {
        {.title = "the target and the fits", .xlabel = "x", .ylabel = "f(x)", .series = fits,
         .n_series = APPROX_WIDTHS + 1, .y_min = -3.2, .y_max = 2.2,
         .legend_at = SVG_LEGEND_AUTO},
        {.title = "final training MSE against width", .xlabel = "log2(width)",
         .ylabel = "MSE", .log_y = 1, .series = &mse_s, .n_series = 1,
         .legend_at = SVG_LEGEND_NONE},
    };
    int rc = course_plot(&out, "Universal approximation: one hidden layer of growing width",
                         panels, 2, 2);
    return course_close(&out, rc);
}

int exp_approximation(const exp_ctx *ctx) {
    approx_result r;
    return exp_approximation_run(ctx, &r);
}
