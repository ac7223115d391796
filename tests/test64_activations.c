/* Activation and softmax ops in double precision: gradient checks of every op
 * (away from kinks, including large |x|), the exact derivative conventions at
 * kinks, numerical stability at extreme inputs, shapes and batching, gradients
 * through composite graphs, and argument errors. */
#include "nabla.h"
#include "test.h"

#include <math.h>

/* Tolerances for nb_gradcheck: central differences with eps 1e-6 in double
 * have a truncation error ~ eps^2 |f'''| < 1e-11 and a rounding error
 * ~ 1e-16 |loss| / eps < 1e-8 for the losses used here (|loss| < 1000). */
#define GC_EPS 1e-6
#define GC_ATOL 1e-7
#define GC_RTOL 1e-6

typedef nb_node (*op_builder)(nb_graph *g, nb_node x);

static nb_node build_relu(nb_graph *g, nb_node x) { return nb_relu(g, x); }
static nb_node build_leaky(nb_graph *g, nb_node x) { return nb_leaky_relu(g, x, 0.2); }
static nb_node build_leaky_neg(nb_graph *g, nb_node x) { return nb_leaky_relu(g, x, -0.3); }
static nb_node build_abs(nb_graph *g, nb_node x) { return nb_abs(g, x); }
static nb_node build_sigmoid(nb_graph *g, nb_node x) { return nb_sigmoid(g, x); }
static nb_node build_tanh(nb_graph *g, nb_node x) { return nb_tanh(g, x); }
static nb_node build_gelu(nb_graph *g, nb_node x) { return nb_gelu(g, x, 0); }
static nb_node build_gelu_tanh(nb_graph *g, nb_node x) { return nb_gelu(g, x, 1); }
static nb_node build_silu(nb_graph *g, nb_node x) { return nb_silu(g, x); }
static nb_node build_hardswish(nb_graph *g, nb_node x) { return nb_hardswish(g, x); }
static nb_node build_elu(nb_graph *g, nb_node x) { return nb_elu(g, x, 1.5); }
static nb_node build_softplus(nb_graph *g, nb_node x) { return nb_softplus(g, x, 1, 20); }
static nb_node build_softplus_b(nb_graph *g, nb_node x) { return nb_softplus(g, x, 2, 10); }
static nb_node build_softmax(nb_graph *g, nb_node x) { return nb_softmax(g, x); }
static nb_node build_log_softmax(nb_graph *g, nb_node x) { return nb_log_softmax(g, x); }

static const struct {
    const char *name;
    op_builder build;
} OPS[] = {
    {"relu", build_relu},         {"leaky_relu", build_leaky},
    {"leaky_relu(-0.3)", build_leaky_neg}, {"abs", build_abs},
    {"sigmoid", build_sigmoid},   {"tanh", build_tanh},
    {"gelu", build_gelu},         {"gelu_tanh", build_gelu_tanh},
    {"silu", build_silu},         {"elu", build_elu},
    {"hardswish", build_hardswish},
    {"softplus", build_softplus}, {"softplus(2,10)", build_softplus_b},
    {"softmax", build_softmax},   {"log_softmax", build_log_softmax},
};
#define N_OPS ((int)(sizeof OPS / sizeof OPS[0]))

/* ------------------------------------------------------------ gradcheck */

/* Input [2, 3, 4]: ordinary values, none within 0.05 of a kink (0) or of the
 * softplus switch points (x = 20 for beta 1, x = 5 for beta 2), plus large
 * values where sigmoid, tanh and softplus saturate and log_softmax rows span
 * +-100. */
static const nb_real GC_X[24] = {
    -2.3, -0.7, 0.45, 1.9,   /* row 0 */
    0.13, -0.21, 3.7, -4.4,  /* row 1 */
    30, -30, 100, -100,      /* row 2: saturated */
    0.9, -1.6, 2.2, -0.06,   /* row 3 */
    5.3, -5.8, 4.6, 19.7,    /* row 4: near the softplus switch points */
    20.4, 12.0, -17.5, 0.3,  /* row 5 */
};

/* loss = sum(f(x) * w) with an uneven w, so every output matters differently
 * (with w = 1 the softmax gradient would be identically zero). */
static void gradcheck_op(int k) {
    nb_graph *g = nb_graph_new();
    CHECK_OK(nb_graph_set_batch(g, 2));
    int sample[2] = {3, 4};
    nb_real w[24];
    for (int j = 0; j < 24; j++) w[j] = 0.25 * ((j * 5) % 7) - 0.8;
    nb_node x = nb_input(g, "x", 2, sample);
    nb_node y = OPS[k].build(g, x);
    /* w varies per sample, so it is a batched input, not a constant */
    nb_node wn = nb_input(g, "w", 2, sample);
    nb_node loss = nb_sum(g, nb_mul(g, y, wn));
    CHECK_OK(nb_graph_status(g));
    CHECK_OK(nb_set_input(g, x, GC_X, 2));
    CHECK_OK(nb_set_input(g, wn, w, 2));
    CHECK_OK(nb_requires_grad(g, x, 1));
    nb_gradcheck_report rep;
    CHECK_OK(nb_gradcheck(g, loss, GC_EPS, GC_ATOL, GC_RTOL, &rep));
    CHECKF(rep.failed == 0 && rep.checked == 24,
           "%s: checked %zu failed %zu, worst x[%zu]: analytic %.12g numeric %.12g",
           OPS[k].name, rep.checked, rep.failed, rep.worst_index, rep.worst_analytic,
           rep.worst_numeric);
    nb_graph_free(g);
}

/* ------------------------------------------------------------ kinks */

/* y = f(x) and dy/dx for each of n scalars (loss = sum f(x)). */
static void value_and_slope(op_builder build, const nb_real *xs, int n, nb_real *y,
                            nb_real *dx) {
    nb_graph *g = nb_graph_new();
    nb_node x = nb_input(g, "x", 1, &n);
    nb_node f = build(g, x);
    nb_node loss = nb_sum(g, f);
    CHECK_OK(nb_graph_status(g));
    CHECK_OK(nb_requires_grad(g, x, 1));
    CHECK_OK(nb_set_input(g, x, xs, 1));
    CHECK_OK(nb_forward(g, loss));
    CHECK_OK(nb_backward(g, loss));
    for (int k = 0; k < n; k++) {
        y[k] = nb_value(g, f)[k];
        dx[k] = nb_grad(g, x)[k];
    }
    nb_graph_free(g);
}

static void test_kinks(void) {
    const nb_real zero[1] = {0};
    nb_real y[2], d[2];
    /* PyTorch's conventions (docs/definitions.md, Activations), exactly */
    value_and_slope(build_relu, zero, 1, y, d);
    CHECK(y[0] == 0 && d[0] == 0);                   /* ReLU'(0) = 0 */
    value_and_slope(build_leaky, zero, 1, y, d);
    CHECK(y[0] == 0 && d[0] == (nb_real)0.2);        /* LeakyReLU'(0) = slope */
    value_and_slope(build_leaky_neg, zero, 1, y, d);
    CHECK(y[0] == 0 && d[0] == (nb_real)-0.3);
    value_and_slope(build_abs, zero, 1, y, d);
    CHECK(y[0] == 0 && d[0] == 0);                   /* |x|'(0) = sign(0) = 0 */
    value_and_slope(build_elu, zero, 1, y, d);
    CHECK(y[0] == 0 && d[0] == (nb_real)1.5);        /* x <= 0 branch: alpha e^0 */
    /* smooth ones at 0, from their closed forms */
    value_and_slope(build_sigmoid, zero, 1, y, d);
    CHECK(y[0] == 0.5 && d[0] == 0.25);
    value_and_slope(build_tanh, zero, 1, y, d);
    CHECK(y[0] == 0 && d[0] == 1);
    value_and_slope(build_gelu, zero, 1, y, d);
    CHECK(y[0] == 0 && d[0] == 0.5);                 /* Phi(0) + 0 phi(0) */
    value_and_slope(build_gelu_tanh, zero, 1, y, d);
    CHECK(y[0] == 0 && d[0] == 0.5);
    value_and_slope(build_silu, zero, 1, y, d);
    CHECK(y[0] == 0 && d[0] == 0.5);                 /* sigma(0) (1 + 0) */
    value_and_slope(build_softplus, zero, 1, y, d);
    CHECK_CLOSE(y[0], log(2.0), 1e-15, 0);
    CHECK(d[0] == 0.5);
    /* softplus switches to x only where beta x > threshold: at beta x ==
     * threshold it is still log1p(e^(beta x)) / beta with slope sigma(beta x) */
    const nb_real at_switch[2] = {5, 5.25};          /* beta 2, threshold 10 */
    value_and_slope(build_softplus_b, at_switch, 2, y, d);
    CHECK_CLOSE(y[0], log1p(exp(10.0)) / 2, 1e-14, 1e-15);
    CHECK_CLOSE(d[0], 1 / (1 + exp(-10.0)), 1e-15, 0);
    CHECK(y[1] == 5.25 && d[1] == 1);
    /* either side of the kinks: the ordinary branches */
    const nb_real around[2] = {-1e-3, 1e-3};
    value_and_slope(build_relu, around, 2, y, d);
    CHECK(d[0] == 0 && d[1] == 1);
    value_and_slope(build_leaky, around, 2, y, d);
    CHECK(d[0] == (nb_real)0.2 && d[1] == 1);
    value_and_slope(build_abs, around, 2, y, d);
    CHECK(d[0] == -1 && d[1] == 1 && y[0] == 1e-3);
    value_and_slope(build_elu, around, 2, y, d);
    CHECK_CLOSE(d[0], 1.5 * exp(-1e-3), 1e-15, 0);
    CHECK_CLOSE(y[0], 1.5 * expm1(-1e-3), 1e-18, 1e-15);
    CHECK(d[1] == 1 && y[1] == 1e-3);
}

/* Hardswish's kinks at -3 and 3 take PyTorch's slopes: the middle piece's
 * x/3 + 1/2 at -3, the right piece's 1 at 3. */
static void test_hardswish_kinks(void) {
    const nb_real at[3] = {-3, 0, 3};
    nb_real y[4], d[4];
    value_and_slope(build_hardswish, at, 3, y, d);
    CHECK(y[0] == 0 && d[0] == -0.5);
    CHECK(y[1] == 0 && d[1] == 0.5);
    CHECK(y[2] == 3 && d[2] == 1);
    const nb_real around[4] = {-3.001, -2.999, 2.999, 3.001};
    value_and_slope(build_hardswish, around, 4, y, d);
    CHECK(y[0] == 0 && d[0] == 0);
    CHECK_CLOSE(y[1], -2.999 * 0.001 / 6, 1e-15, 1e-12);
    CHECK_CLOSE(d[1], -2.999 / 3 + 0.5, 1e-15, 0);
    CHECK_CLOSE(y[2], 2.999 * 5.999 / 6, 1e-15, 0);
    CHECK_CLOSE(d[2], 2.999 / 3 + 0.5, 1e-15, 0);
    CHECK_CLOSE(y[3], 3.001, 1e-15, 0);
    CHECK(d[3] == 1);
}

/* ------------------------------------------------------------ stability */

static int all_finite(const nb_real *v, int n) {
    for (int k = 0; k < n; k++)
        if (!isfinite(v[k])) return 0;
    return 1;
}

/* exp(1000) overflows even in double: the ops must never compute it. */
static void test_extremes(void) {
    const nb_real xs[4] = {-1000, 1000, -800, 800};
    nb_real y[4], d[4];
    value_and_slope(build_sigmoid, xs, 4, y, d);
    CHECK(all_finite(y, 4) && all_finite(d, 4));
    CHECK(y[0] == 0 && y[1] == 1 && d[0] == 0 && d[1] == 0);
    value_and_slope(build_tanh, xs, 4, y, d);
    CHECK(y[0] == -1 && y[1] == 1 && d[0] == 0 && d[1] == 0);
    value_and_slope(build_silu, xs, 4, y, d);
    CHECK(all_finite(y, 4) && all_finite(d, 4));
    CHECK(y[1] == 1000 && d[1] == 1 && y[0] == 0 && d[0] == 0);
    value_and_slope(build_gelu, xs, 4, y, d);
    CHECK(all_finite(y, 4) && all_finite(d, 4));
    CHECK(y[1] == 1000 && d[1] == 1);
    value_and_slope(build_gelu_tanh, xs, 4, y, d);
    CHECK(all_finite(y, 4) && all_finite(d, 4));
    CHECK(y[1] == 1000 && d[1] == 1);
    value_and_slope(build_elu, xs, 4, y, d);
    CHECK(y[0] == -1.5 && d[0] == 0 && y[1] == 1000);
    /* an infinite threshold never switches to the linear branch, yet the log
     * form stays finite and exact */
    value_and_slope(build_softplus, xs, 4, y, d);
    CHECK(y[1] == 1000 && d[1] == 1 && y[0] == 0 && d[0] == 0);
    {
        nb_graph *g = nb_graph_new();
        int n = 4;
        nb_node x = nb_input(g, "x", 1, &n);
        nb_node f = nb_softplus(g, x, 1, INFINITY);
        CHECK_OK(nb_graph_status(g));
        CHECK_OK(nb_set_input(g, x, xs, 1));
        CHECK_OK(nb_forward(g, f));
        const nb_real *v = nb_value(g, f);
        CHECK(v[0] == 0 && v[1] == 1000 && v[3] == 800);
        nb_graph_free(g);
    }
    /* softmax rows spanning +-1000 */
    value_and_slope(build_log_softmax, xs, 4, y, d);
    CHECK(all_finite(y, 4) && all_finite(d, 4));
    CHECK(y[1] == 0 && y[0] == -2000 && y[3] == -200);
    value_and_slope(build_softmax, xs, 4, y, d);
    CHECK(all_finite(y, 4) && all_finite(d, 4));
    CHECK(y[1] == 1 && y[0] == 0);
}

/* Softmax rows sum to 1, log-softmax rows log-sum-exp to 0, each row on its
 * own (rows = numel / last dim), and shifting a row leaves softmax unchanged. */
static void test_softmax_rows(void) {
    nb_graph *g = nb_graph_new();
    int sample[2] = {2, 3};
    nb_node x = nb_input(g, "x", 2, sample);
    nb_node s = nb_softmax(g, x), ls = nb_log_softmax(g, x);
    CHECK_OK(nb_graph_status(g));
    nb_real xs[12] = {1, 2, 3, 101, 102, 103, -5, 0, 5, 0, 0, 0};
    CHECK_OK(nb_set_input(g, x, xs, 2));
    CHECK_OK(nb_forward(g, NB_NONE));
    const nb_real *y = nb_value(g, s), *ly = nb_value(g, ls);
    for (int r = 0; r < 4; r++) {
        double sum = 0, lse = 0;
        for (int c = 0; c < 3; c++) {
            sum += y[3 * r + c];
            lse += exp(ly[3 * r + c]);
            CHECK_CLOSE(log(y[3 * r + c]), ly[3 * r + c], 1e-14, 1e-14);
        }
        CHECK_CLOSE(sum, 1, 1e-15, 0);
        CHECK_CLOSE(lse, 1, 1e-15, 0);
    }
    for (int c = 0; c < 3; c++) CHECK_CLOSE(y[c], y[3 + c], 1e-15, 1e-14); /* shift */
    double z = exp(1.0) + exp(2.0) + exp(3.0);
    CHECK_CLOSE(y[0], exp(1.0) / z, 0, 1e-15);
    CHECK_CLOSE(y[9], 1.0 / 3, 1e-16, 0);
    nb_graph_free(g);
}

/* ------------------------------------------------------------ shapes */

/* Output shape = input shape; batched iff the input is; a new batch size
 * flows through. */
static void test_shapes(void) {
    for (int k = 0; k < N_OPS; k++) {
        nb_graph *g = nb_graph_new();
        int sample[2] = {3, 4}, cdims[2] = {5, 2};
        nb_node x = nb_input(g, "x", 2, sample);
        nb_node c = nb_constant(g, "c", 2, cdims, NULL);
        nb_node y = OPS[k].build(g, x), yc = OPS[k].build(g, c);
        CHECK_OK(nb_graph_status(g));
        CHECKF(nb_node_is_batched(g, y) && !nb_node_is_batched(g, yc), "%s", OPS[k].name);
        CHECK_OK(nb_graph_set_batch(g, 7));
        int nd, d[NB_MAX_DIMS];
        CHECK_OK(nb_node_shape(g, y, &nd, d));
        CHECKF(nd == 3 && d[0] == 7 && d[1] == 3 && d[2] == 4, "%s: batched shape", OPS[k].name);
        CHECK_OK(nb_node_shape(g, yc, &nd, d));
        CHECKF(nd == 2 && d[0] == 5 && d[1] == 2, "%s: constant shape", OPS[k].name);
        nb_graph_free(g);
    }
    /* ops work elementwise over any batch size: same rows, same values */
    nb_graph *g = nb_graph_new();
    int n = 3;
    nb_node x = nb_input(g, "x", 1, &n);
    nb_node y = nb_log_softmax(g, nb_gelu(g, x, 0));
    CHECK_OK(nb_graph_status(g));
    nb_real xs[15];
    for (int k = 0; k < 15; k++) xs[k] = 0.3 * (k % 3) - 0.2 * (k % 5);
    CHECK_OK(nb_set_input(g, x, xs, 1));
    CHECK_OK(nb_forward(g, y));
    nb_real first[3];
    for (int k = 0; k < 3; k++) first[k] = nb_value(g, y)[k];
    CHECK_OK(nb_set_input(g, x, xs, 5));
    CHECK_OK(nb_forward(g, y));
    CHECK(nb_node_numel(g, y) == 15);
    for (int k = 0; k < 3; k++) CHECK(nb_value(g, y)[k] == first[k]);
    nb_graph_free(g);
}

/* ------------------------------------------------------------ composites */

static void check_report(const char *what, nb_status s, const nb_gradcheck_report *rep,
                         size_t expect_checked) {
    CHECKF(s == NB_OK, "%s: %s", what, nb_last_error());
    CHECKF(rep->failed == 0 && rep->checked == expect_checked,
           "%s: checked %zu (expected %zu) failed %zu, worst node %d [%zu]: analytic %.12g "
           "numeric %.12g", what, rep->checked, expect_checked, rep->failed,
           rep->worst_node, rep->worst_index, rep->worst_analytic, rep->worst_numeric);
}

/* Softmax feeding a weighted sum: loss = sum(softmax(x W^T + b) * w). */
static void test_softmax_weighted_sum(void) {
    nb_graph *g = nb_graph_new();
    int in = 5;
    nb_real w[4] = {0.5, -1.25, 2.0, 0.75};
    int wd = 4;
    nb_node x = nb_input(g, "x", 1, &in);
    nb_node p = nb_softmax(g, nb_dense(g, x, 4, "fc", NULL));
    nb_node loss = nb_sum(g, nb_mul(g, p, nb_constant(g, "w", 1, &wd, w)));
    CHECK_OK(nb_graph_status(g));
    nb_rng r;
    nb_rng_seed(&r, 11);
    CHECK_OK(nb_graph_init(g, &r));
    nb_real xs[15];
    for (int k = 0; k < 15; k++) xs[k] = nb_rng_normal(&r);
    CHECK_OK(nb_set_input(g, x, xs, 3));
    CHECK_OK(nb_requires_grad(g, x, 1));
    nb_gradcheck_report rep;
    nb_status s = nb_gradcheck(g, loss, GC_EPS, GC_ATOL, GC_RTOL, &rep);
    check_report("softmax weighted sum", s, &rep, 15 + 20 + 4);
    nb_graph_free(g);
}

/* Negative log-likelihood from log_softmax of a dense layer, with one-hot
 * targets as a constant: loss = -mean over rows of log p[target]. */
static void test_log_softmax_dense(void) {
    nb_graph *g = nb_graph_new();
    CHECK_OK(nb_graph_set_batch(g, 4));
    int in = 6, classes = 5;
    nb_real onehot[20] = {0};
    int target[4] = {2, 0, 4, 1};
    for (int r = 0; r < 4; r++) onehot[5 * r + target[r]] = 1;
    nb_node x = nb_input(g, "x", 1, &in);
    nb_node lp = nb_log_softmax(g, nb_dense(g, x, 5, "fc", NULL));
    nb_node t = nb_input(g, "t", 1, &classes);
    nb_node nll = nb_scale(g, nb_sum(g, nb_mul(g, lp, t)), -0.25);
    CHECK_OK(nb_graph_status(g));
    nb_rng r;
    nb_rng_seed(&r, 5);
    CHECK_OK(nb_graph_init(g, &r));
    nb_real xs[24];
    for (int k = 0; k < 24; k++) xs[k] = 2 * nb_rng_normal(&r);
    CHECK_OK(nb_set_input(g, x, xs, 4));
    CHECK_OK(nb_set_input(g, t, onehot, 4));
    CHECK_OK(nb_requires_grad(g, x, 1));
    nb_gradcheck_report rep;
    nb_status s = nb_gradcheck(g, nll, GC_EPS, GC_ATOL, GC_RTOL, &rep);
    check_report("log_softmax of dense", s, &rep, 24 + 30 + 5);
    nb_graph_free(g);
}

/* Every activation in one DAG with fan-out: the smooth ones chained through
 * dense layers, the piecewise ones on values kept away from their kinks by
 * the fixed seed (checked by the gradient check itself). */
static void test_deep_chain(void) {
    nb_graph *g = nb_graph_new();
    int in = 4;
    nb_node x = nb_input(g, "x", 1, &in);
    nb_node h = nb_dense(g, x, 6, "l1", NULL);
    nb_node a = nb_mul(g, nb_sigmoid(g, h), nb_tanh(g, h));          /* h used twice */
    nb_node b = nb_add(g, nb_gelu(g, a, 0), nb_silu(g, h));
    nb_node c = nb_dense(g, nb_elu(g, b, 0.7), 6, "l2", NULL);
    nb_node d = nb_add(g, nb_leaky_relu(g, c, 0.1), nb_abs(g, nb_gelu(g, c, 1)));
    nb_node e = nb_add(g, nb_softplus(g, d, 1.5, 3), nb_relu(g, c));
    nb_node f = nb_softmax(g, nb_dense(g, e, 3, "l3", NULL));
    nb_node loss = nb_mean(g, nb_mul(g, nb_log_softmax(g, f), f));  /* f used twice */
    CHECK_OK(nb_graph_status(g));
    nb_rng r;
    nb_rng_seed(&r, 3);
    CHECK_OK(nb_graph_init(g, &r));
    nb_real xs[12];
    for (int k = 0; k < 12; k++) xs[k] = 1.5 * nb_rng_normal(&r);
    CHECK_OK(nb_set_input(g, x, xs, 3));
    CHECK_OK(nb_requires_grad(g, x, 1));
    nb_gradcheck_report rep;
    nb_status s = nb_gradcheck(g, loss, GC_EPS, GC_ATOL, GC_RTOL, &rep);
    check_report("deep chain", s, &rep, 12 + 30 + 42 + 21);
    nb_graph_free(g);
}

/* ------------------------------------------------------------ errors */

static int message_has(const char *needle) { return strstr(nb_last_error(), needle) != NULL; }

static void test_errors(void) {
    int n = 3;
    nb_graph *g;
    nb_node x, y;

    /* bad parameters are rejected with a message naming the op */
    g = nb_graph_new();
    x = nb_input(g, "x", 1, &n);
    CHECK(nb_leaky_relu(g, x, NAN) == NB_NONE);
    CHECKF(nb_graph_status(g) == NB_ERR_ARG && message_has("leaky_relu") &&
           message_has("slope"), "%s", nb_last_error());
    /* a later op on NB_NONE propagates it and keeps the first message */
    y = nb_relu(g, NB_NONE);
    CHECK(y == NB_NONE);
    CHECKF(message_has("leaky_relu"), "%s", nb_last_error());
    CHECK(nb_softmax(g, nb_sigmoid(g, NB_NONE)) == NB_NONE);
    CHECKF(message_has("leaky_relu"), "%s", nb_last_error());
    nb_graph_free(g);

    g = nb_graph_new();
    x = nb_input(g, "x", 1, &n);
    CHECK(nb_leaky_relu(g, x, INFINITY) == NB_NONE && message_has("leaky_relu"));
    nb_graph_free(g);

    g = nb_graph_new();
    x = nb_input(g, "x", 1, &n);
    CHECK(nb_elu(g, x, NAN) == NB_NONE);
    CHECKF(message_has("elu: alpha"), "%s", nb_last_error());
    nb_graph_free(g);

    const nb_real bad_beta[3] = {0, -1, NAN};
    for (int k = 0; k < 3; k++) {
        g = nb_graph_new();
        x = nb_input(g, "x", 1, &n);
        CHECK(nb_softplus(g, x, bad_beta[k], 20) == NB_NONE);
        CHECKF(nb_graph_status(g) == NB_ERR_ARG && message_has("softplus: beta"), "%s",
               nb_last_error());
        nb_graph_free(g);
    }
    g = nb_graph_new();
    x = nb_input(g, "x", 1, &n);
    CHECK(nb_softplus(g, x, 1, NAN) == NB_NONE && message_has("softplus: threshold"));
    nb_graph_free(g);

    /* NB_NONE as the first error in a graph: named after the op */
    g = nb_graph_new();
    CHECK(nb_tanh(g, NB_NONE) == NB_NONE);
    CHECKF(message_has("tanh") && nb_graph_status(g) == NB_ERR_ARG, "%s", nb_last_error());
    nb_graph_free(g);

    g = nb_graph_new();
    CHECK(nb_gelu(g, 42, 1) == NB_NONE);
    CHECKF(message_has("gelu") && message_has("42"), "%s", nb_last_error());
    nb_graph_free(g);

    CHECK(nb_relu(NULL, 0) == NB_NONE && message_has("relu"));

    /* softmax needs a dimension to normalise over, other than the batch */
    g = nb_graph_new();
    x = nb_input(g, "x", 1, &n);
    CHECK(nb_softmax(g, nb_sum(g, x)) == NB_NONE);
    CHECKF(nb_graph_status(g) == NB_ERR_SHAPE && message_has("softmax") &&
           message_has("scalar"), "%s", nb_last_error());
    nb_graph_free(g);
    g = nb_graph_new();
    x = nb_input(g, "labels", 0, NULL);
    CHECK(nb_log_softmax(g, x) == NB_NONE);
    CHECKF(nb_graph_status(g) == NB_ERR_SHAPE && message_has("log_softmax") &&
           message_has("labels"), "%s", nb_last_error());
    nb_graph_free(g);
}

int main(void) {
    for (int k = 0; k < N_OPS; k++) gradcheck_op(k);
    test_kinks();
    test_hardswish_kinks();
    test_extremes();
    test_softmax_rows();
    test_shapes();
    test_softmax_weighted_sum();
    test_log_softmax_dense();
    test_deep_chain();
    test_errors();
    TEST_END();
}
