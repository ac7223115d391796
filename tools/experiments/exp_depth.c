/*
 * nabla experiment depth — vanishing gradients and skip connections
 * (docs/course.md, "depth: vanishing gradients and skip connections").
 *
 * A chain of N dense layers  s_i = W_i o_{i-1} + b_i,  o_i = sigma(s_i),
 * o_0 = x, of `width` units each.  The derivative is a product
 *   d o_N / d w_1 = sigma'(s_N) w_N ... sigma'(s_2) w_2 sigma'(s_1) x,
 * one factor w_i sigma'(s_i) per layer, so the gradient at the first layer
 * shrinks (or grows) geometrically with the depth.  With skip connections
 * over the pairs of layers (2j, 2j+1):
 *   o_{2j+1} = sigma(s_{2j+1}) + o_{2j-1},
 * each pair contributes a factor (1 + w sigma' w sigma') instead, which does
 * not vanish.  Layer 1 and layer N stay outside the pairs, so N = 2
 * has no skip and both chains agree there.
 *
 * We measure ||dL/dW_1|| (Frobenius) for L = sum(o_N * R) / B with R
 * standard normal, at initialisation, for N = 2, 4, ..., with sigmoid and
 * with ReLU.  Every case uses the same initialisation, Xavier
 * (normal, Var(w) = 2/(n_in + n_out) = 1/n for these square layers, b = 0),
 * and the chains of one seed share their first layers' weights.  The norms
 * are geometric means over a few seeds (independent weights and inputs).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "course_out.h"
#include "exp_course.h"
#include "nabla.h"

const char *const depth_labels[DEPTH_CASES] = {"sigmoid, plain", "sigmoid, skips",
                                                 "ReLU, plain", "ReLU, skips"};

static void seed_stream(nb_rng *r, uint64_t seed, uint64_t stream) {
    nb_rng_seed(r, seed * 0x9E3779B97F4A7C15ULL + stream * 0xD1B54A32D192ED03ULL + 2);
}

/* ||dL/dW_1|| for one chain; NAN after an error (printed). */
static double first_layer_grad(int c, int depth, int width, int batch, const nb_real *x,
                               const nb_real *up, nb_rng *weights) {
    int relu = c == DEPTH_RELU_PLAIN || c == DEPTH_RELU_SKIP;
    int skips = c == DEPTH_SIGMOID_SKIP || c == DEPTH_RELU_SKIP;
    nb_graph *g = nb_graph_new();
    if (!g) return NAN;
    nb_dense_opts o = {.weight_init = {.kind = NB_INIT_XAVIER_NORMAL},
                       .bias_init = {.kind = NB_INIT_ZEROS}};
    nb_node xin = nb_input(g, "x", 1, &width), rin = nb_input(g, "R", 1, &width);
    nb_node prev = xin, pair_start = NB_NONE;
    for (int i = 1; i <= depth; i++) {
        char name[32];
        snprintf(name, sizeof name, "layer%d", i);
        nb_node s = nb_dense(g, prev, width, name, &o);
        nb_node out = relu ? nb_relu(g, s) : nb_sigmoid(g, s);
        /* pairs (2j, 2j+1) for 2j+1 < depth: remember o_{2j-1}, add it after 2j+1 */
        if (skips && i % 2 == 0 && i + 1 < depth) pair_start = prev;
        if (skips && i % 2 == 1 && i > 1) {
            snprintf(name, sizeof name, "skip%d", i);
            out = nb_residual(g, out, pair_start, name);
        }
        prev = out;
    }
    nb_node loss = nb_scale(g, nb_sum(g, nb_mul(g, prev, rin)), (nb_real)(1.0 / batch));
    double norm = NAN;
    if (nb_graph_status(g) == NB_OK && nb_graph_init(g, weights) == NB_OK &&
        nb_set_input(g, xin, x, batch) == NB_OK && nb_set_input(g, rin, up, batch) == NB_OK &&
        nb_forward(g, loss) == NB_OK && nb_backward(g, loss) == NB_OK) {
        nb_node w1 = nb_find(g, "layer1.weight");
        const nb_real *gw = nb_grad(g, w1);
        double ss = 0;
        for (size_t k = 0; k < nb_node_numel(g, w1); k++) ss += (double)gw[k] * gw[k];
        norm = sqrt(ss);
    } else {
        course_fail("depth", "%s", nb_last_error());
    }
    nb_graph_free(g);
    return norm;
}

/* The infinite-width factor per layer of a plain chain at its fixed point:
 * sqrt(n sigma_w^2 E[sigma'(s)^2]) with s ~ N(0, q), q = n sigma_w^2 E[o^2]. */
static double plain_rate(int relu) {
    if (relu) return sqrt(0.5); /* E[relu'(s)^2] = 1/2 whatever q */
    double q = 1, d2 = 0;
    for (int it = 0; it < 200; it++) {
        double m2 = 0;
        d2 = 0;
        for (double z = -10; z <= 10; z += 0.002) {
            double w = exp(-z * z / 2) / sqrt(2 * 3.14159265358979323846) * 0.002;
            double o = 1 / (1 + exp(-sqrt(q) * z));
            m2 += w * o * o, d2 += w * o * (1 - o) * o * (1 - o);
        }
        q = m2;
    }
    return sqrt(d2);
}

int exp_depth_run(const exp_ctx *ctx, depth_result *res) {
    course_out out;
    if (course_open(&out, ctx, "depth")) return 1;
    const int width = ctx->quick ? 64 : 128, batch = 64, seeds = ctx->quick ? 3 : 6;
    const int max_depth = ctx->quick ? 20 : 30;
    res->n_depths = 0;
    for (int d = 2; d <= max_depth && res->n_depths < DEPTH_MAX_POINTS; d += 2)
        res->depth[res->n_depths++] = d;
    size_t n = (size_t)width * batch;
    nb_real *x = malloc(2 * n * sizeof *x), *up = x ? x + n : NULL;
    if (!x) return course_close(&out, course_fail("depth", "out of memory"));
    double logsum[DEPTH_CASES][DEPTH_MAX_POINTS] = {{0}};
    int ok = 1;
    for (int s = 0; s < seeds && ok; s++) {
        nb_rng data;
        seed_stream(&data, ctx->seed, 1000 + (uint64_t)s);
        for (size_t i = 0; i < 2 * n; i++) x[i] = (nb_real)nb_rng_normal(&data);
        for (int c = 0; c < DEPTH_CASES && ok; c++)
            for (int k = 0; k < res->n_depths && ok; k++) {
                nb_rng w;
                seed_stream(&w, ctx->seed, (uint64_t)s); /* nested: same first layers */
                double norm = first_layer_grad(c, res->depth[k], width, batch, x, up, &w);
                ok = isfinite(norm) && norm > 0;
                if (ok) logsum[c][k] += log(norm) / seeds;
                else if (!isnan(norm)) course_fail("depth", "gradient norm %g", norm);
            }
    }
    free(x);
    if (!ok) return course_close(&out, 1);
    double dd[DEPTH_MAX_POINTS];
    for (int k = 0; k < res->n_depths; k++) dd[k] = res->depth[k];
    for (int c = 0; c < DEPTH_CASES; c++) {
        for (int k = 0; k < res->n_depths; k++) res->norm[c][k] = exp(logsum[c][k]);
        res->rate[c] = exp(course_slope(dd, logsum[c], res->n_depths));
    }

    int last = res->n_depths - 1;
    course_say(&out, "Depth: ||dL/dW_1|| at initialisation for chains of N dense layers of width\n"
               "%d, with and without skip connections over the pairs of layers (2j, 2j+1).\n"
               "Init: Xavier normal for every case (Var 1/%d), b = 0.\n"
               "Batch %d, L = sum(o_N * R) / %d; geometric mean over %d seeds.\n\n",
               width, width, batch, batch, seeds);
    course_say(&out, "%6s", "N");
    for (int c = 0; c < DEPTH_CASES; c++) course_say(&out, " %15s", depth_labels[c]);
    course_say(&out, "\n");
    for (int k = 0; k < res->n_depths; k++) {
        course_say(&out, "%6d", res->depth[k]);
        for (int c = 0; c < DEPTH_CASES; c++) course_say(&out, " %15.4g", res->norm[c][k]);
        course_say(&out, "\n");
    }
    course_say(&out, "\nfitted factor per added layer (exp of the slope of ln ||dL/dW_1|| against N),\n"
               "and the norm at N = %d relative to N = 2:\n", res->depth[last]);
    for (int c = 0; c < DEPTH_CASES; c++) {
        course_say(&out, "  %-15s %.3f per layer   %10.3g", depth_labels[c], res->rate[c],
                   res->norm[c][last] / res->norm[c][0]);
        if (c == DEPTH_SIGMOID_PLAIN || c == DEPTH_RELU_PLAIN)
            course_say(&out, "   (predicted for infinite width: %.3f per layer)",
                       plain_rate(c == DEPTH_RELU_PLAIN));
        course_say(&out, "\n");
    }

    svg_series series[DEPTH_CASES];
    for (int c = 0; c < DEPTH_CASES; c++)
        series[c] = (svg_series){.label = depth_labels[c], .x = dd, .y = res->norm[c],
                                 .n = res->n_depths, .dashed = c == DEPTH_SIGMOID_SKIP ||
                                                               c == DEPTH_RELU_SKIP};
    svg_panel panel = {.title = "first-layer gradient against depth", .xlabel = "layers N",
                       .ylabel = "||dL/dW_1||", .log_y = 1, .series = series,
                       .n_series = DEPTH_CASES, .legend_at = SVG_LEGEND_AUTO};
    int rc = course_plot(&out, "Vanishing gradients and skip connections", &panel, 1, 1);
    return course_close(&out, rc);
}

int exp_depth(const exp_ctx *ctx) {
    depth_result r;
    return exp_depth_run(ctx, &r);
}
