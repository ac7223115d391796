/*
 * nabla experiment xor — a linear model cannot learn XOR, one ReLU layer can
 * (docs/course.md, "xor: a linear model against a ReLU layer"; examples/xor.c
 * tells the longer story).
 *
 *   1. The linear model f(x) = w^T x + b by least squares in closed form
 *      (normal equations): w = 0, b = 1/2, f = 0.5 everywhere, MSE 1/4.  The
 *      same model trained by gradient descent stops at the same loss.
 *   2. The hand-set network f(x) = w2^T ReLU(W1 x + b1) + b2 with
 *      W1 = [[1,1],[1,1]], b1 = [0,-1], w2 = [1,-2], b2 = 0 is exactly XOR.
 *   3. A 2-8-1 ReLU network trained with Adam from random weights (PyTorch's
 *      default init) finds such a solution.
 * The plot shows the training losses and slices of the learnt functions
 * along x2 = 0 and x2 = 1.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "course_out.h"
#include "exp_course.h"
#include "nabla.h"

static const nb_real X[4 * 2] = {0, 0, 0, 1, 1, 0, 1, 1};
static const nb_real Y[4] = {0, 1, 1, 0};

enum { SLICE = 81, MAX_STEPS = 600, MAX_RUNS = 5 };

typedef struct net {
    nb_graph *g;
    nb_node x, y, f, loss;
} net;

/* f(x) = w2^T ReLU(W1 x + b1) + b2 with `hidden` units, or w^T x + b if 0. */
static int build(net *n, int hidden) {
    int two = 2, one = 1;
    n->g = nb_graph_new();
    if (!n->g) return 0;
    n->x = nb_input(n->g, "x", 1, &two);
    n->y = nb_input(n->g, "y", 1, &one);
    nb_node h = n->x;
    if (hidden > 0) h = nb_relu(n->g, nb_dense(n->g, n->x, hidden, "hidden", NULL));
    n->f = nb_dense(n->g, h, 1, "out", NULL);
    n->loss = nb_mse_loss(n->g, n->f, n->y);
    if (nb_graph_status(n->g) != NB_OK) {
        course_fail("xor", "%s", nb_last_error());
        nb_graph_free(n->g);
        n->g = NULL;
        return 0;
    }
    return 1;
}

typedef struct curve {
    double *loss;
    int n;
} curve;

static int record(const nb_epoch_stats *s, void *user) {
    curve *c = user;
    c->loss[c->n++] = s->train_loss;
    return 0;
}

/* Full-batch Adam on the four points with nb_fit; the loss of every step. */
static int train(net *n, uint64_t seed, double lr, int steps, double *losses) {
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    nb_graph_init(n->g, &rng);
    nb_fit_config cfg = nb_fit_defaults(n->x, n->y, n->loss, NB_NONE);
    nb_optim_config adam = nb_optim_defaults(NB_OPT_ADAM);
    adam.lr = lr;
    cfg.epochs = steps;
    cfg.batch_size = 4;
    cfg.no_shuffle = 1;
    curve c = {losses, 0};
    cfg.on_epoch = record;
    cfg.user = &c;
    if (course_fit(n->g, &cfg, &adam, X, Y, 4, 2) != NB_OK) {
        course_fail("xor", "training failed: %s", nb_last_error());
        return 0;
    }
    return 1;
}

/* The four outputs and the MSE. */
static int evaluate(net *n, double f[4], double *mse) {
    if (nb_set_input(n->g, n->x, X, 4) != NB_OK || nb_set_input(n->g, n->y, Y, 4) != NB_OK ||
        nb_forward(n->g, n->loss) != NB_OK)
        return course_fail("xor", "%s", nb_last_error()), 0;
    const nb_real *out = nb_value(n->g, n->f);
    for (int m = 0; m < 4; m++) f[m] = out[m];
    *mse = nb_value(n->g, n->loss)[0];
    return 1;
}

/* f(t, 0) and f(t, 1) for t in [-0.5, 1.5]. */
static int slices(net *n, const double *t, double *at0, double *at1) {
    nb_real in[2 * SLICE * 2];
    for (int i = 0; i < SLICE; i++) {
        in[2 * i] = in[2 * (SLICE + i)] = (nb_real)t[i];
        in[2 * i + 1] = 0, in[2 * (SLICE + i) + 1] = 1;
    }
    if (nb_set_input(n->g, n->x, in, 2 * SLICE) != NB_OK || nb_forward(n->g, n->f) != NB_OK)
        return course_fail("xor", "%s", nb_last_error()), 0;
    const nb_real *f = nb_value(n->g, n->f);
    for (int i = 0; i < SLICE; i++) at0[i] = f[i], at1[i] = f[SLICE + i];
    return 1;
}

/* Values that print as zero at 4 decimals shown as 0, not -0.0000. */
static double clean(double v) { return fabs(v) < 5e-5 ? 0 : v; }

static int solved(const double f[4], double mse) {
    int ok = mse < 0.01;
    for (int m = 0; m < 4; m++) ok &= (f[m] > 0.5) == (Y[m] > 0.5);
    return ok;
}

int exp_xor_run(const exp_ctx *ctx, xor_result *res) {
    course_out out;
    if (course_open(&out, ctx, "xor")) return 1;
    const int steps = MAX_STEPS, runs = MAX_RUNS; /* quick as it is: a few ms */
    double t[SLICE], step_x[MAX_STEPS], lin_curve[MAX_STEPS], mlp_curve[MAX_RUNS][MAX_STEPS];
    double quarter[2] = {0.25, 0.25}, quarter_x[2] = {1, MAX_STEPS};
    double s_lin[2][SLICE], s_hand[2][SLICE], s_mlp[2][SLICE];
    for (int i = 0; i < SLICE; i++) t[i] = -0.5 + 2.0 * i / (SLICE - 1);
    for (int i = 0; i < steps; i++) step_x[i] = i + 1;
    quarter_x[1] = steps;

    /* 1. least squares in closed form: columns x1, x2, 1 */
    double a[4 * 3], y[4], z[3];
    for (int m = 0; m < 4; m++) a[3 * m] = X[2 * m], a[3 * m + 1] = X[2 * m + 1], a[3 * m + 2] = 1,
                                y[m] = Y[m];
    if (!course_least_squares(a, y, 4, 3, z))
        return course_close(&out, course_fail("xor", "normal equations are singular"));
    res->lin_w[0] = z[0], res->lin_w[1] = z[1], res->lin_b = z[2];
    res->lin_mse = 0;
    for (int m = 0; m < 4; m++) {
        double e = Y[m] - (z[0] * X[2 * m] + z[1] * X[2 * m + 1] + z[2]);
        res->lin_mse += e * e / 4;
    }
    course_say(&out, "XOR: four points (0,0)->0 (0,1)->1 (1,0)->1 (1,1)->0, loss MSE.\n\n"
               "1. linear model f(x) = w^T x + b, least squares (normal equations):\n"
               "   w = [%.4f, %.4f], b = %.4f, MSE = %.4f\n", clean(res->lin_w[0]),
               clean(res->lin_w[1]), clean(res->lin_b), res->lin_mse);

    net n;
    double f[4];
    if (!build(&n, 0)) return course_close(&out, 1);
    int ok = train(&n, ctx->seed + 1, 0.05, steps, lin_curve) &&
             evaluate(&n, f, &res->lin_trained_mse) && slices(&n, t, s_lin[0], s_lin[1]);
    if (ok) {
        const nb_real *w = nb_value(n.g, nb_find(n.g, "out.weight"));
        const nb_real *b = nb_value(n.g, nb_find(n.g, "out.bias"));
        course_say(&out, "   trained (Adam lr 0.05, %d full-batch steps): w = [%.4f, %.4f], "
                   "b = %.4f, MSE = %.4f\n   outputs %.3f %.3f %.3f %.3f: 0.5 everywhere, "
                   "no line separates the classes\n\n", steps, clean(w[0]), clean(w[1]), b[0],
                   res->lin_trained_mse, clean(f[0]), clean(f[1]), clean(f[2]), clean(f[3]));
    }
    nb_graph_free(n.g);
    if (!ok) return course_close(&out, 1);

    /* 2. the hand-set network */
    if (!build(&n, 2)) return course_close(&out, 1);
    static const nb_real W1[4] = {1, 1, 1, 1}, b1[2] = {0, -1}, w2[2] = {1, -2}, b2[1] = {0};
    static const char *names[4] = {"hidden.weight", "hidden.bias", "out.weight", "out.bias"};
    const nb_real *vals[4] = {W1, b1, w2, b2};
    for (int p = 0; p < 4; p++) {
        nb_node node = nb_find(n.g, names[p]);
        nb_real *v = nb_value(n.g, node);
        for (size_t k = 0; k < nb_node_numel(n.g, node); k++) v[k] = vals[p][k];
    }
    ok = evaluate(&n, f, &res->hand_mse) && slices(&n, t, s_hand[0], s_hand[1]);
    res->hand_exact = ok;
    for (int m = 0; m < 4 && ok; m++) res->hand_exact &= f[m] == Y[m];
    if (ok)
        course_say(&out, "2. the hand-set network w2^T ReLU(W1 x + b1) + b2, W1 = [[1,1],[1,1]],\n"
                   "   b1 = [0,-1], w2 = [1,-2], b2 = 0: outputs %g %g %g %g, MSE %g (%s)\n\n",
                   f[0], f[1], f[2], f[3], res->hand_mse,
                   res->hand_exact ? "exactly XOR" : "NOT XOR");
    nb_graph_free(n.g);
    if (!ok) return course_close(&out, 1);

    /* 3. trained 2-8-1 ReLU networks */
    course_say(&out, "3. a 2-8-1 ReLU network, PyTorch's default init, Adam lr 0.01, %d\n"
               "   full-batch steps (solved: MSE < 0.01 and every output on the right side of 0.5):\n",
               steps);
    res->mlp_runs = runs, res->mlp_solved = 0, res->mlp_best_mse = INFINITY;
    for (int r = 0; r < runs && ok; r++) {
        double mse;
        ok = build(&n, 8);
        ok = ok && train(&n, ctx->seed * 100 + (uint64_t)r + 1, 0.01, steps, mlp_curve[r]) &&
             evaluate(&n, f, &mse);
        if (ok) {
            int s = solved(f, mse);
            res->mlp_solved += s;
            course_say(&out, "   run %d: MSE %.3g, outputs %.3f %.3f %.3f %.3f  %s\n", r + 1,
                       mse, clean(f[0]), clean(f[1]), clean(f[2]), clean(f[3]),
                       s ? "solved" : "NOT solved");
            if (mse < res->mlp_best_mse) {
                res->mlp_best_mse = mse;
                ok = slices(&n, t, s_mlp[0], s_mlp[1]);
            }
        }
        if (n.g) nb_graph_free(n.g);
        n.g = NULL;
    }
    if (!ok) return course_close(&out, 1);
    course_say(&out, "   %d of %d runs solved XOR\n", res->mlp_solved, runs);

    svg_series loss_s[MAX_RUNS + 2];
    char labels[MAX_RUNS][32];
    int ns = 0;
    loss_s[ns++] = (svg_series){.label = "linear model", .x = step_x, .y = lin_curve, .n = steps};
    for (int r = 0; r < runs; r++) {
        snprintf(labels[r], sizeof labels[r], "2-8-1 ReLU, run %d", r + 1);
        loss_s[ns++] = (svg_series){.label = labels[r], .x = step_x, .y = mlp_curve[r],
                                    .n = steps};
    }
    loss_s[ns++] = (svg_series){.label = "MSE 1/4", .x = quarter_x, .y = quarter, .n = 2,
                                .dashed = 1};
    static const double tx[4] = {0, 0, 1, 1}, ty[4] = {0, 1, 1, 0};
    svg_series slice_s[7] = {
        {.label = "targets", .x = tx, .y = ty, .n = 4, .marker = 6, .no_line = 1},
        {.label = "linear, x2 = 0 and 1", .x = t, .y = s_lin[0], .n = SLICE},
        {.label = "hand-set net, x2 = 0", .x = t, .y = s_hand[0], .n = SLICE},
        {.label = "hand-set net, x2 = 1", .x = t, .y = s_hand[1], .n = SLICE},
        {.label = "trained, x2 = 0", .x = t, .y = s_mlp[0], .n = SLICE, .dashed = 1},
        {.label = "trained, x2 = 1", .x = t, .y = s_mlp[1], .n = SLICE, .dashed = 1},
    };
    svg_panel panels[2] = {
        {.title = "training loss", .xlabel = "step", .ylabel = "MSE", .log_y = 1,
         .series = loss_s, .n_series = ns, .y_min = 1e-8, .y_max = 2,
         .legend_at = SVG_LEGEND_AUTO},
        {.title = "f(x1, x2) along x2 = 0 and x2 = 1", .xlabel = "x1", .ylabel = "f",
         .series = slice_s, .n_series = 6, .y_min = -1.7, .y_max = 1.7,
         .legend_at = SVG_LEGEND_AUTO},
    };
    int rc = course_plot(&out, "XOR: a linear model against a ReLU layer", panels, 2, 2);
    return course_close(&out, rc);
}

int exp_xor(const exp_ctx *ctx) {
    xor_result r;
    return exp_xor_run(ctx, &r);
}
