/*
 * nabla experiment bptt — the vanishing gradient through time
 * (docs/course.md, "bptt: the vanishing gradient through time").
 *
 * The twin of `depth`: a recurrent layer unrolled over T = 50 steps is a
 * chain of 50 layers sharing one weight matrix.  For the tanh RNN
 *     h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),
 *     d h_t / d h_{t-1} = diag(tanh'(s_t)) W_hh,
 * so the gradient of the last state with respect to the input k steps back
 * is a product of k such factors and shrinks geometrically in k.  The LSTM's
 * cell c_t = f_t c_{t-1} + i_t g_t carries the gradient through the factor
 * f_t (the forget gate) instead; it vanishes only as fast as f_t is below 1.
 *
 * We measure ||dL/dx_{T-1-k}|| (over the batch and the D inputs), k = 0..T-1,
 * for L = sum(h_T * R) / B with R and x standard normal, at PyTorch's
 * initialisation (every weight and bias U(+-1/sqrt(H))), for the RNN, the GRU
 * and the LSTM, and for the LSTM with its forget-gate bias (bias_ih_l0 rows
 * H..2H) raised by 1 and by 3.  The norms are geometric means over a few
 * seeds; the three LSTMs of one seed share their weights and inputs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "course_out.h"
#include "exp_course.h"
#include "nabla.h"

const char *const bptt_labels[BPTT_CASES] = {"RNN (tanh)", "GRU", "LSTM",
                                               "LSTM, forget bias +1", "LSTM, forget bias +3"};
static const nb_rnn_kind bptt_kind[BPTT_CASES] = {NB_RNN_TANH, NB_GRU, NB_LSTM, NB_LSTM, NB_LSTM};
static const double bptt_forget_bias[BPTT_CASES] = {0, 0, 0, 1, 3};

static void seed_stream(nb_rng *r, uint64_t seed, uint64_t stream) {
    nb_rng_seed(r, seed * 0x9E3779B97F4A7C15ULL + stream * 0xD1B54A32D192ED03ULL + 3);
}

/* Raise the LSTM's forget-gate bias (gate order i, f, g, o: rows H..2H). */
static int raise_forget_bias(nb_graph *g, int hidden, double by) {
    nb_real *b = nb_value(g, nb_find(g, "cell.bias_ih_l0"));
    if (!b) return 0;
    for (int j = hidden; j < 2 * hidden; j++) b[j] += (nb_real)by;
    return 1;
}

typedef struct bptt_setup {
    int hidden, inputs, batch, steps;
    const nb_real *x, *up;  /* x [batch, steps, inputs], R [batch, hidden] */
} bptt_setup;

/* norm[k] = ||dL/dx_{T-1-k}|| for case c; 0, or 1 after an error (printed). */
static int grads_through_time(int c, const bptt_setup *s, nb_rng *weights, double *norm) {
    nb_graph *g = nb_graph_new();
    if (!g) return course_fail("bptt", "out of memory");
    int xdims[2] = {s->steps, s->inputs};
    nb_node xin = nb_input(g, "x", 2, xdims), rin = nb_input(g, "R", 1, &s->hidden);
    nb_node h = nb_recurrent(g, xin, bptt_kind[c], s->hidden, 1, "cell");
    nb_node loss = nb_scale(g, nb_sum(g, nb_mul(g, h, rin)), (nb_real)(1.0 / s->batch));
    int ok = nb_graph_status(g) == NB_OK && nb_requires_grad(g, xin, 1) == NB_OK &&
             nb_graph_init(g, weights) == NB_OK &&
             (bptt_forget_bias[c] == 0 || raise_forget_bias(g, s->hidden, bptt_forget_bias[c])) &&
             nb_set_input(g, xin, s->x, s->batch) == NB_OK &&
             nb_set_input(g, rin, s->up, s->batch) == NB_OK && nb_forward(g, loss) == NB_OK &&
             nb_backward(g, loss) == NB_OK;
    const nb_real *gx = ok ? nb_grad(g, xin) : NULL;
    if (gx) {
        for (int k = 0; k < s->steps; k++) {
            int t = s->steps - 1 - k;
            double ss = 0;
            for (int b = 0; b < s->batch; b++)
                for (int d = 0; d < s->inputs; d++) {
                    double v = gx[((size_t)b * s->steps + t) * s->inputs + d];
                    ss += v * v;
                }
            norm[k] = sqrt(ss);
        }
    } else {
        course_fail("bptt", "%s: %s", bptt_labels[c], nb_last_error());
    }
    nb_graph_free(g);
    return gx ? 0 : 1;
}

/* The RNN's factor per step for infinite width (mean field): with every
 * weight of variance 1/(3H), s = W_ih x + b_ih + W_hh h + b_hh has variance
 * q = (D + 2)/(3H) + E[h^2]/3 at the fixed point, and each step back
 * multiplies the squared norm of the gradient by H (1/(3H)) E[tanh'(s)^2]. */
static double rnn_rate(int inputs, int hidden) {
    double q = 0.5, d2 = 0;
    for (int it = 0; it < 100; it++) {
        double m2 = 0;
        d2 = 0;
        for (double z = -10; z <= 10; z += 0.002) {
            double w = exp(-z * z / 2) / sqrt(2 * 3.14159265358979323846) * 0.002;
            double o = tanh(sqrt(q) * z);
            m2 += w * o * o, d2 += w * (1 - o * o) * (1 - o * o);
        }
        q = (inputs + 2.0) / (3.0 * hidden) + m2 / 3;
    }
    return sqrt(d2 / 3);
}

/* Geometric means over the seeds of the norms, into res->norm. */
static int measure(const exp_ctx *ctx, const bptt_setup *shape, int seeds, bptt_result *res) {
    size_t nx = (size_t)shape->batch * shape->steps * shape->inputs;
    size_t nr = (size_t)shape->batch * shape->hidden;
    nb_real *x = malloc((nx + nr) * sizeof *x);
    if (!x) return course_fail("bptt", "out of memory");
    bptt_setup s = *shape;
    s.x = x, s.up = x + nx;
    double logsum[BPTT_CASES][BPTT_STEPS] = {{0}}, norm[BPTT_STEPS];
    int rc = 0;
    for (int seed = 0; seed < seeds && !rc; seed++) {
        nb_rng data;
        seed_stream(&data, ctx->seed, 1000 + (uint64_t)seed);
        for (size_t i = 0; i < nx + nr; i++) x[i] = (nb_real)nb_rng_normal(&data);
        for (int c = 0; c < BPTT_CASES && !rc; c++) {
            nb_rng w;
            seed_stream(&w, ctx->seed, (uint64_t)seed); /* the LSTMs share their weights */
            rc = grads_through_time(c, &s, &w, norm);
            for (int k = 0; k < s.steps && !rc; k++) {
                if (!(isfinite(norm[k]) && norm[k] > 0))
                    rc = course_fail("bptt", "%s: gradient norm %g at k = %d", bptt_labels[c],
                                     norm[k], k);
                else
                    logsum[c][k] += log(norm[k]) / seeds;
            }
        }
    }
    free(x);
    for (int c = 0; c < BPTT_CASES && !rc; c++)
        for (int k = 0; k < s.steps; k++) res->norm[c][k] = exp(logsum[c][k]);
    return rc;
}

static void summarise(course_out *out, const bptt_result *res, int batch, int seeds) {
    int last = res->steps - 1;
    course_say(out, "Backpropagation through time: ||dL/dx_{T-1-k}|| at initialisation, the\n"
               "gradient of the last state with respect to the input k steps back, over\n"
               "T = %d steps of one recurrent layer, H = %d, D = %d inputs x ~ N(0, 1).\n"
               "Init: PyTorch's (every weight and bias U(+-1/sqrt(H))); the forget-bias\n"
               "cases add 1 or 3 to the LSTM's forget-gate bias b_if.\n"
               "Batch %d, L = sum(h_T * R) / %d; geometric mean over %d seeds.\n\n",
               res->steps, res->hidden, res->inputs, batch, batch, seeds);
    static const int rows[] = {0, 1, 2, 3, 5, 10, 15, 20, 25, 30, 35, 40, 45, 49};
    course_say(out, "%4s", "k");
    for (int c = 0; c < BPTT_CASES; c++) course_say(out, " %20s", bptt_labels[c]);
    course_say(out, "\n");
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        if (rows[r] > last) break;
        course_say(out, "%4d", rows[r]);
        for (int c = 0; c < BPTT_CASES; c++) course_say(out, " %20.4g", res->norm[c][rows[r]]);
        course_say(out, "\n");
    }
    course_say(out, "\nfitted factor per step back (exp of the slope of ln ||dL/dx_{T-1-k}||\n"
               "against k = 0..%d), and the norm at k = %d relative to k = 0:\n", last, last);
    for (int c = 0; c < BPTT_CASES; c++) {
        course_say(out, "  %-20s %.3f per step   %10.3g", bptt_labels[c], res->rate[c],
                   res->ratio[c]);
        if (c == BPTT_RNN)
            course_say(out, "   (predicted for infinite width: %.3f per step)", res->rnn_predicted);
        course_say(out, "\n");
    }
}

int exp_bptt_run(const exp_ctx *ctx, bptt_result *res) {
    course_out out;
    if (course_open(&out, ctx, "bptt")) return 1;
    const int seeds = ctx->quick ? 3 : 8;
    bptt_setup shape = {.hidden = 32, .inputs = 32, .batch = ctx->quick ? 16 : 32,
                        .steps = BPTT_STEPS};
    res->hidden = shape.hidden, res->inputs = shape.inputs, res->steps = shape.steps;
    if (measure(ctx, &shape, seeds, res)) return course_close(&out, 1);
    double kk[BPTT_STEPS], logn[BPTT_STEPS];
    for (int k = 0; k < res->steps; k++) kk[k] = k;
    for (int c = 0; c < BPTT_CASES; c++) {
        for (int k = 0; k < res->steps; k++) logn[k] = log(res->norm[c][k]);
        res->rate[c] = exp(course_slope(kk, logn, res->steps));
        res->ratio[c] = res->norm[c][res->steps - 1] / res->norm[c][0];
    }
    res->rnn_predicted = rnn_rate(shape.inputs, shape.hidden);
    summarise(&out, res, shape.batch, seeds);

    svg_series series[BPTT_CASES];
    for (int c = 0; c < BPTT_CASES; c++)
        series[c] = (svg_series){.label = bptt_labels[c], .x = kk, .y = res->norm[c],
                                 .n = res->steps, .dashed = bptt_forget_bias[c] != 0};
    svg_panel panel = {.title = "gradient with respect to the input k steps back",
                       .xlabel = "steps back k", .ylabel = "||dL/dx_{T-1-k}||", .log_y = 1,
                       .series = series, .n_series = BPTT_CASES,
                       .legend_at = SVG_LEGEND_AUTO};
    int rc = course_plot(&out, "The vanishing gradient through time", &panel, 1, 1);
    return course_close(&out, rc);
}

int exp_bptt(const exp_ctx *ctx) {
    bptt_result r;
    return exp_bptt_run(ctx, &r);
}
