/*
 * nabla experiment init — why the scale of the initial weights matters
 * (docs/course.md, "init: the scale of the initial weights").
 *
 * A 20-layer MLP  z_l = W_l h_{l-1} + b_l,  h_l = act(z_l),  h_0 = x  (square
 * layers of `width` units, b_l = 0), fed a batch of standard-normal inputs,
 * at initialisation.  Forward: the std of h_l per layer.  Backward: the loss
 * L = sum(h_20 * R) with R standard normal, so dL/dh_20 = R, and the std of
 * dL/dh_l per layer (the backward signal).
 * A linear layer gives Var(z_i) = n_in sigma^2 Var(h_i), so sigma^2 = 1/n_in
 * keeps its forward variance; the backward needs 1/n_out, and
 * Xavier 2/(n_in + n_out) balances both.  For ReLU, which zeroes half of its
 * inputs, He's 2/n_in.
 *
 * Then the symmetry problem: hidden units that start identical get identical
 * gradients and stay identical, whatever the training.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "course_out.h"
#include "exp_course.h"
#include "nabla.h"

const char *const init_labels[INIT_KINDS] = {
    "zeros", "normal std 0.01", "normal std 1", "Xavier", "LeCun", "He", "Xavier, gain 5/3",
};

static nb_init init_of(int kind) {
    nb_init in = {0};
    switch (kind) {
    case INIT_ZEROS: in.kind = NB_INIT_ZEROS; break;
    case INIT_SMALL: in.kind = NB_INIT_NORMAL, in.b = 0.01; break;
    case INIT_LARGE: in.kind = NB_INIT_NORMAL, in.b = 1; break;
    case INIT_XAVIER: in.kind = NB_INIT_XAVIER_NORMAL; break;
    case INIT_LECUN: in.kind = NB_INIT_LECUN_NORMAL; break;
    case INIT_HE: in.kind = NB_INIT_KAIMING_NORMAL; break;
    default: /* PyTorch's recommended gain for tanh, calculate_gain("tanh") */
        in.kind = NB_INIT_XAVIER_NORMAL, in.gain = nb_init_gain(NB_NL_TANH, -1);
    }
    return in;
}

/* Independent generator streams from one seed. */
static void seed_stream(nb_rng *r, uint64_t seed, uint64_t stream) {
    nb_rng_seed(r, seed * 0x9E3779B97F4A7C15ULL + stream * 0xD1B54A32D192ED03ULL + 1);
}

static void fill_normal(nb_real *v, size_t n, nb_rng *r) {
    for (size_t i = 0; i < n; i++) v[i] = (nb_real)nb_rng_normal(r);
}

/* n sigma_w^2 for square layers of n units: the factor a linear layer
 * multiplies the second moment by (E[z^2] = n sigma_w^2 E[h^2]). */
static double weight_var_n(int kind, int n) {
    switch (kind) {
    case INIT_ZEROS: return 0;
    case INIT_SMALL: return 1e-4 * n;
    case INIT_LARGE: return n;
    case INIT_XAVIER: case INIT_LECUN: return 1;
    case INIT_HE: return 2;
    default: return 25.0 / 9;
    }
}

/* E[act(sqrt(q) Z)], E[act(sqrt(q) Z)^2] and E[act'(sqrt(q) Z)^2] for Z ~ N(0, 1),
 * by the trapezoid rule over |Z| <= 10. */
static void gauss_moments(int act, double q, double *m1, double *m2, double *d2) {
    const double step = 0.002, c = 1 / sqrt(2 * 3.14159265358979323846);
    *m1 = *m2 = *d2 = 0;
    for (double z = -10; z <= 10 + 1e-9; z += step) {
        double w = c * exp(-z * z / 2) * step, u = sqrt(q) * z;
        double a = act == ACT_TANH ? tanh(u) : (u > 0 ? u : 0);
        double d = act == ACT_TANH ? 1 - a * a : (u > 0);
        *m1 += w * a, *m2 += w * a * a, *d2 += w * d * d;
    }
}

/* The infinite-width prediction: forward, the second moment of z_l is
 * q_l = v E[h_{l-1}^2] (q_1 = v for standard-normal inputs), h_l = act(z_l);
 * backward, E[(dL/dh_{l-1})^2] = v E[act'(z_l)^2] E[(dL/dh_l)^2] with
 * E[(dL/dh_20)^2] = 1.  v = n sigma_w^2. */
static void mean_field(int act, double v, double *fwd, double *bwd) {
    double q = v, d2[INIT_LAYERS];
    for (int l = 0; l < INIT_LAYERS; l++) {
        double m1, m2;
        gauss_moments(act, q, &m1, &m2, &d2[l]);
        fwd[l] = sqrt(fmax(m2 - m1 * m1, 0));
        q = v * m2;
    }
    double g2 = 1;
    bwd[INIT_LAYERS - 1] = 1;
    for (int l = INIT_LAYERS - 1; l > 0; l--) {
        g2 *= v * d2[l];
        bwd[l - 1] = sqrt(g2);
    }
}

static double rms(const nb_real *v, size_t n) {
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)v[i] * v[i];
    return n ? sqrt(ss / (double)n) : 0;
}

/* The chain, its per-layer statistics for one initialiser and activation. */
static int measure(int act, int kind, int width, int batch, const nb_real *x, const nb_real *up,
                   uint64_t seed, init_result *res) {
    nb_graph *g = nb_graph_new();
    if (!g) return 0;
    nb_node z[INIT_LAYERS], h[INIT_LAYERS + 1];
    nb_node xin = nb_input(g, "x", 1, &width), rin = nb_input(g, "R", 1, &width);
    nb_dense_opts o = {.weight_init = init_of(kind), .bias_init = {.kind = NB_INIT_ZEROS}};
    h[0] = xin;
    for (int l = 0; l < INIT_LAYERS; l++) {
        char name[32];
        snprintf(name, sizeof name, "layer%d", l + 1);
        z[l] = nb_dense(g, h[l], width, name, &o);
        h[l + 1] = act == ACT_TANH ? nb_tanh(g, z[l]) : nb_relu(g, z[l]);
    }
    nb_node loss = nb_sum(g, nb_mul(g, h[INIT_LAYERS], rin));
    nb_rng rng;
    seed_stream(&rng, seed, 100 + (uint64_t)kind); /* the same weights for tanh and ReLU */
    int ok = nb_graph_status(g) == NB_OK && nb_graph_init(g, &rng) == NB_OK &&
             nb_set_input(g, xin, x, batch) == NB_OK && nb_set_input(g, rin, up, batch) == NB_OK &&
             nb_forward(g, loss) == NB_OK && nb_backward(g, loss) == NB_OK;
    if (!ok) {
        course_fail("init", "%s", nb_last_error());
        nb_graph_free(g);
        return 0;
    }
    size_t n = (size_t)batch * (size_t)width;
    for (int l = 0; l < INIT_LAYERS; l++) {
        double in = rms(nb_value(g, h[l]), n);
        res->fwd[act][kind][l] = course_std(nb_value(g, h[l + 1]), n);
        res->bwd[act][kind][l] = course_std(nb_grad(g, h[l + 1]), n);
        res->lin[act][kind][l] = in > 0 ? rms(nb_value(g, z[l]), n) / in : NAN;
    }
    mean_field(act, weight_var_n(kind, width), res->pred_fwd[act][kind],
               res->pred_bwd[act][kind]);
    nb_graph_free(g);
    return 1;
}

/* max over units i and inputs k of |W[i,k] - W[0,k]| for a [rows, cols] weight */
static double row_spread(const nb_real *w, int rows, int cols) {
    double d = 0;
    for (int i = 1; i < rows; i++)
        for (int k = 0; k < cols; k++) d = fmax(d, fabs((double)w[i * cols + k] - w[k]));
    return d;
}

/* Train a 2-16-16-1 tanh network on y = x1 x2 from the given weight init
 * (biases 0); returns the final loss and the largest spread between the
 * hidden units of a layer. */
static int symmetry(nb_init w_init, uint64_t seed, int steps, double *spread, double *loss_out) {
    enum { N = 128, H = 16 };
    int two = 2, one = 1;
    nb_real x[N * 2], y[N];
    nb_rng rng;
    seed_stream(&rng, seed, 7);
    for (int m = 0; m < N; m++) {
        x[2 * m] = (nb_real)(3 * nb_rng_uniform(&rng) - 1.5);
        x[2 * m + 1] = (nb_real)(3 * nb_rng_uniform(&rng) - 1.5);
        y[m] = x[2 * m] * x[2 * m + 1];
    }
    nb_graph *g = nb_graph_new();
    if (!g) return 0;
    nb_dense_opts o = {.weight_init = w_init, .bias_init = {.kind = NB_INIT_ZEROS}};
    nb_node xi = nb_input(g, "x", 1, &two), yi = nb_input(g, "y", 1, &one);
    nb_node h1 = nb_tanh(g, nb_dense(g, xi, H, "hidden1", &o));
    nb_node h2 = nb_tanh(g, nb_dense(g, h1, H, "hidden2", &o));
    nb_node loss = nb_mse_loss(g, nb_dense(g, h2, 1, "out", &o), yi);
    nb_optim_config oc = nb_optim_defaults(NB_OPT_SGD);
    oc.lr = 0.1;
    nb_optim *opt = NULL;
    int ok = nb_graph_status(g) == NB_OK && nb_graph_init(g, &rng) == NB_OK &&
             nb_set_input(g, xi, x, N) == NB_OK && nb_set_input(g, yi, y, N) == NB_OK &&
             (opt = nb_optim_new(&oc, nb_param_count(g))) != NULL;
    for (int s = 0; ok && s < steps; s++) {
        nb_zero_grad(g);
        ok = nb_forward(g, loss) == NB_OK && nb_backward(g, loss) == NB_OK &&
             nb_optim_step(opt, nb_params(g), nb_grads(g), oc.lr) == NB_OK;
    }
    ok = ok && nb_forward(g, loss) == NB_OK;
    if (ok) {
        *loss_out = nb_value(g, loss)[0];
        *spread = fmax(row_spread(nb_value(g, nb_find(g, "hidden1.weight")), H, 2),
                       row_spread(nb_value(g, nb_find(g, "hidden2.weight")), H, H));
    } else {
        course_fail("init", "%s", nb_last_error());
    }
    nb_optim_free(opt);
    nb_graph_free(g);
    return ok;
}

/* max/min over the layers; 0 when some std is exactly 0 (no ratio exists) */
double init_spread(const double *s) {
    double lo = INFINITY, hi = 0;
    for (int l = 0; l < INIT_LAYERS; l++) lo = fmin(lo, s[l]), hi = fmax(hi, s[l]);
    return lo > 0 ? hi / lo : 0;
}

/* A ratio of two stds, "-" when either is 0 (printed, not divided by). */
static const char *fmt_ratio(char *buf, size_t size, double num, double den) {
    if (num > 0 && den > 0) snprintf(buf, size, "%9.3g", num / den);
    else snprintf(buf, size, "%9s", "-");
    return buf;
}

int exp_init_run(const exp_ctx *ctx, init_result *res) {
    course_out out;
    if (course_open(&out, ctx, "init")) return 1;
    res->width = ctx->quick ? 256 : 256;
    res->batch = ctx->quick ? 128 : 512;
    size_t n = (size_t)res->width * (size_t)res->batch;
    nb_real *x = malloc(2 * n * sizeof *x), *up = x ? x + n : NULL;
    if (!x) return course_close(&out, course_fail("init", "out of memory"));
    nb_rng rng;
    seed_stream(&rng, ctx->seed, 1);
    fill_normal(x, n, &rng);
    fill_normal(up, n, &rng);
    int ok = 1;
    for (int a = 0; a < INIT_ACTS && ok; a++)
        for (int k = 0; k < INIT_KINDS && ok; k++)
            ok = measure(a, k, res->width, res->batch, x, up, ctx->seed, res);
    free(x);
    const int sym_steps = 300;
    nb_init constant = {.kind = NB_INIT_CONSTANT, .a = 0.3}, random = {.kind = NB_INIT_DEFAULT};
    ok = ok && symmetry(constant, ctx->seed, sym_steps, &res->sym_diff_const, &res->sym_loss_const);
    ok = ok && symmetry(random, ctx->seed, sym_steps, &res->sym_diff_random, &res->sym_loss_random);
    if (!ok) return course_close(&out, 1);

    static const char *act_name[INIT_ACTS] = {"tanh", "ReLU"};
    course_say(&out, "Initialisation: a %d-layer MLP of width %d (biases 0) at initialisation,\n"
               "a batch of %d standard-normal inputs; loss L = sum(h_%d * R), R standard normal.\n"
               "Xavier and LeCun have the same variance 1/%d here (square layers) but are\n"
               "drawn separately; 'Xavier, gain 5/3' is PyTorch's recommendation for tanh.\n\n",
               INIT_LAYERS, res->width, res->batch, INIT_LAYERS, res->width);
    course_say(&out, "std of the activations h_l (forward) and of dL/dh_l (backward):\n"
               "  ratio  = std at layer %d / std at layer 1 ('-': a std is exactly 0)\n"
               "  spread = max/min of the std over the %d layers ('-': some std is 0)\n"
               "  pred   = the spread predicted for infinite width (mean-field recursion)\n\n",
               INIT_LAYERS, INIT_LAYERS);
    course_say(&out, "%-5s %-17s %9s %9s %9s %9s | %9s %9s %9s %9s\n", "act", "init",
               "fwd l=1", "ratio", "spread", "pred", "bwd l=1", "ratio", "spread", "pred");
    for (int a = 0; a < INIT_ACTS; a++)
        for (int k = 0; k < INIT_KINDS; k++) {
            const double *f = res->fwd[a][k], *b = res->bwd[a][k];
            char c[6][32];
            course_say(&out, "%-5s %-17s %9.3g %s %s %s | %9.3g %s %s %s\n", act_name[a],
                       init_labels[k], f[0], fmt_ratio(c[0], 32, f[INIT_LAYERS - 1], f[0]),
                       fmt_ratio(c[1], 32, init_spread(f), 1),
                       fmt_ratio(c[2], 32, init_spread(res->pred_fwd[a][k]), 1), b[0],
                       fmt_ratio(c[3], 32, b[INIT_LAYERS - 1], b[0]),
                       fmt_ratio(c[4], 32, init_spread(b), 1),
                       fmt_ratio(c[5], 32, init_spread(res->pred_bwd[a][k]), 1));
        }
    course_say(&out, "zeros: h_l = 0 at every layer and dL/dh_l = 0 below the last one.\n");
    /* the linear map alone: the second moment is multiplied by n sigma^2 */
    course_say(&out, "\nrms(z_l) / rms(h_{l-1}), the linear layer alone (it multiplies the second\n"
               "moment by n sigma^2: E[z^2] = n sigma^2 E[h^2]), range over the layers:\n");
    for (int a = 0; a < INIT_ACTS; a++)
        for (int k = INIT_XAVIER; k <= INIT_HE; k++) {
            double lo = INFINITY, hi = 0;
            for (int l = 0; l < INIT_LAYERS; l++)
                lo = fmin(lo, res->lin[a][k][l]), hi = fmax(hi, res->lin[a][k][l]);
            course_say(&out, "  %-5s %-7s %.3f .. %.3f  (expected %s)\n", act_name[a],
                       init_labels[k], lo, hi, k == INIT_HE ? "sqrt 2 = 1.414" : "1");
        }
    course_say(&out, "\nSymmetry: a 2-16-16-1 tanh network trained %d steps (SGD lr 0.1) on\n"
               "y = x1 x2; largest difference between two hidden units' incoming weights:\n"
               "  all weights 0.3 at the start: %g   (final loss %.4f)\n"
               "  random (PyTorch's default):   %.3g   (final loss %.4f)\n",
               sym_steps, res->sym_diff_const, res->sym_loss_const, res->sym_diff_random,
               res->sym_loss_random);
    course_say(&out, "Units that start equal get equal gradients and stay equal: the constant\n"
               "start trains a network with effectively one unit per layer.\n");

    /* plot: rows tanh, ReLU; columns forward, backward; one series per init */
    double layer[INIT_LAYERS];
    for (int l = 0; l < INIT_LAYERS; l++) layer[l] = l + 1;
    svg_series series[INIT_ACTS][2][INIT_KINDS];
    svg_panel panels[INIT_ACTS * 2];
    static const char *titles[4] = {"tanh: forward", "tanh: backward", "ReLU: forward",
                                    "ReLU: backward"};
    for (int a = 0; a < INIT_ACTS; a++)
        for (int dir = 0; dir < 2; dir++) {
            for (int k = 0; k < INIT_KINDS; k++)
                series[a][dir][k] = (svg_series){
                    /* a log axis cannot draw 0: the legend says why it is missing */
                    .label = k == INIT_ZEROS ? "zeros: identically 0, not drawn" : init_labels[k],
                    .x = layer,
                    .y = dir ? res->bwd[a][k] : res->fwd[a][k], .n = INIT_LAYERS,
                    .dashed = k == INIT_LECUN};
            panels[2 * a + dir] = (svg_panel){
                .title = titles[2 * a + dir], .xlabel = "layer l",
                .ylabel = dir ? "std of dL/dh_l" : "std of h_l", .log_y = 1,
                .series = series[a][dir], .n_series = INIT_KINDS,
                .y_min = 1e-4, .y_max = 1e5, /* the others leave the frame */
                .legend_at = a == 0 && dir == 0 ? SVG_LEGEND_AUTO : SVG_LEGEND_NONE};
        }
    int rc = course_plot(&out, "Activation and gradient std per layer at initialisation",
                         panels, 4, 2);
    return course_close(&out, rc);
}

int exp_init(const exp_ctx *ctx) {
    init_result r;
    return exp_init_run(ctx, &r);
}
