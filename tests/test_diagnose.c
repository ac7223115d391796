/* Training diagnostics and the non-finite finder: dead ReLU and saturation
 * fractions on hand-built batches, gradient norms and update/weight ratios
 * against values worked out by hand, every warning, and NaN/inf located at
 * the node that made it (data, parameter, forward op, backward op), also
 * through nb_fit's error messages. */
#include "test.h"
#include "fit_support.h"
#include "nabla.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define R(x) ((nb_real)(x))

static const nb_diag_row *row_of(const nb_diagnosis *d, const char *name) {
    for (int i = 0; i < d->n_rows; i++)
        if (strcmp(d->rows[i].name, name) == 0) return &d->rows[i];
    return NULL;
}

#define HAS(msg, s) CHECKF(strstr((msg), (s)) != NULL, "'%s' not in: %s", (s), (msg))

/* Dense 3 -> 5 with hand-set weights: units 1 and 3 have zero weights and
 * bias -1, unit 4 zero weights and bias 0 (ReLU(0) = 0: also dead), unit 2
 * fires for one sample only (alive), unit 0 for all.  Dead: 3 of 5. */
static void test_dead_dense(void) {
    nb_graph *g = nb_graph_new();
    int three = 3;
    nb_node x = nb_input(g, "x", 1, &three);
    nb_node h = nb_dense(g, x, 5, "h", NULL);
    nb_node r = nb_relu(g, h);
    nb_node loss = nb_mean(g, r);
    CHECK_OK(nb_graph_status(g));
    const nb_real w[15] = {1, 1, 1, 0, 0, 0, 1, -1, 0, 0, 0, 0, 0, 0, 0};
    const nb_real b[5] = {0, -1, 0, -1, 0};
    memcpy(nb_value(g, nb_find(g, "h.weight")), w, sizeof w);
    memcpy(nb_value(g, nb_find(g, "h.bias")), b, sizeof b);
    /* 4 samples; unit 2 = x0 - x1 is positive only for sample 2 */
    const nb_real xs[12] = {1, 2, 3, 0, 1, 1, 3, 1, 0, 1, 1, 2};
    CHECK_OK(nb_set_input(g, x, xs, 4));
    CHECK_OK(nb_forward(g, loss));
    nb_zero_grad(g);
    CHECK_OK(nb_backward(g, loss));
    nb_diagnosis d;
    CHECK_OK(nb_diagnosis_init(&d, g, loss));
    CHECK(d.n_rows == 4); /* h.weight, h.bias, h, relu */
    CHECK_OK(nb_diagnose(g, NULL, &d));
    const nb_diag_row *rr = row_of(&d, nb_node_name(g, r));
    CHECK(rr != NULL);
    if (rr) {
        CHECK(strcmp(rr->op, "relu") == 0);
        CHECK(rr->dead == 3.0 / 5.0);
        CHECK(rr->saturated == -1);
        CHECK(rr->warn == NB_DIAG_DEAD);
        char buf[400];
        nb_diag_warning(rr, NB_DIAG_DEAD, buf, sizeof buf);
        HAS(buf, "60.0% of its units are dead");
        nb_diag_warning(rr, NB_DIAG_SATURATED, buf, sizeof buf);
        CHECK(buf[0] == '\0');
        /* mean of the 20 relu values: unit 0 gives 6, 2, 4, 4, unit 2 gives
         * 2 for sample 2, the rest 0 */
        CHECK_CLOSE(rr->mean, 18.0 / 20.0, 1e-6, 0);
    }
    const nb_diag_row *hr = row_of(&d, "h");
    CHECK(hr && hr->dead == -1 && hr->saturated == -1 && !hr->is_param);
    nb_diagnosis_free(&d);
    nb_graph_free(g);
}

/* Hardswish units die like relu units, where every input is below -3:
 * features 0 and 1 of [2, 4] are dead, 2 and 3 are not.  Leaky ReLU passes
 * a gradient everywhere: no dead fraction. */
static void test_dead_hardswish(void) {
    nb_graph *g = nb_graph_new();
    int four = 4;
    nb_node x = nb_input(g, "x", 1, &four);
    nb_node hs = nb_hardswish(g, x), lr = nb_leaky_relu(g, x, R(0.01));
    nb_node loss = nb_add(g, nb_mean(g, hs), nb_mean(g, lr));
    CHECK_OK(nb_graph_status(g));
    const nb_real xs[8] = {-6, -5, -4, 10, R(-3.5), -4, 1, 2};
    CHECK_OK(nb_set_input(g, x, xs, 2));
    CHECK_OK(nb_forward(g, loss));
    nb_diagnosis d;
    CHECK_OK(nb_diagnosis_init(&d, g, loss));
    CHECK_OK(nb_diagnose(g, NULL, &d));
    const nb_diag_row *rh = row_of(&d, nb_node_name(g, hs)), *rl = row_of(&d, nb_node_name(g, lr));
    CHECK(rh && rl);
    if (rh && rl) {
        CHECK(rh->dead == 0.5 && rh->warn == NB_DIAG_DEAD && rh->saturated == -1);
        CHECK(rl->dead == -1 && rl->warn == 0);
    }
    nb_diagnosis_free(&d);
    nb_graph_free(g);
}

/* Channels of [B, C, H, W]: a channel is dead when all its positions are 0
 * for every sample.  Channel 0 has one positive value (sample 1, last
 * position), channel 1 none, channel 2 all: dead 1 of 3. */
static void test_dead_channels(void) {
    nb_graph *g = nb_graph_new();
    int chw[3] = {3, 2, 2};
    nb_node x = nb_input(g, "x", 3, chw);
    nb_node r = nb_relu(g, x);
    nb_node loss = nb_mean(g, r);
    CHECK_OK(nb_graph_status(g));
    nb_real xs[24];
    for (int s = 0; s < 2; s++)
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < 4; k++) xs[(s * 3 + c) * 4 + k] = c == 2 ? R(1 + k) : R(-1 - k);
    xs[(1 * 3 + 0) * 4 + 3] = (nb_real)0.5;
    xs[(0 * 3 + 1) * 4 + 2] = 0; /* exactly 0 keeps channel 1 dead */
    CHECK_OK(nb_set_input(g, x, xs, 2));
    CHECK_OK(nb_forward(g, loss));
    nb_diagnosis d;
    CHECK_OK(nb_diagnosis_init(&d, g, loss));
    CHECK(d.n_rows == 1);
    CHECK_OK(nb_diagnose(g, NULL, &d));
    CHECK(d.rows[0].dead == 1.0 / 3.0);
    CHECK(d.rows[0].warn == NB_DIAG_DEAD);
    CHECK(d.rows[0].grad_norm == -1); /* nothing needs a gradient here */
    nb_diagnosis_free(&d);
    nb_graph_free(g);
}

/* Sigmoid saturates outside [0.01, 0.99], i.e. |x| > ln 99 = 4.595;
 * tanh where |y| > 0.99, i.e. |x| > atanh 0.99 = 2.647. */
static void test_saturation(void) {
    nb_graph *g = nb_graph_new();
    int five = 5;
    nb_node x = nb_input(g, "x", 1, &five);
    nb_node s = nb_sigmoid(g, x);
    nb_node t = nb_tanh(g, x);
    nb_node loss = nb_add(g, nb_mean(g, s), nb_mean(g, t));
    CHECK_OK(nb_graph_status(g));
    /* sigmoid: 10, -10, 4.7, -4.7, 20, -6 saturate (6 of 10); 4.5 does not.
     * tanh: those and 4.5, 3, -2.7 (9 of 10); 2.6 does not. */
    const nb_real xs[10] = {10, -10, R(4.7), R(-4.7), R(4.5), 3, R(-2.7), R(2.6), 20, -6};
    CHECK_OK(nb_set_input(g, x, xs, 2));
    CHECK_OK(nb_forward(g, loss));
    nb_diagnosis d;
    CHECK_OK(nb_diagnosis_init(&d, g, loss));
    CHECK(d.n_rows == 2); /* the two means are not batched */
    CHECK_OK(nb_diagnose(g, NULL, &d));
    const nb_diag_row *rs = row_of(&d, nb_node_name(g, s)), *rt = row_of(&d, nb_node_name(g, t));
    CHECK(rs && rt);
    if (rs && rt) {
        CHECK(rs->saturated == 0.6);
        CHECK(rt->saturated == 0.9);
        CHECK(rs->dead == -1);
        CHECK(rs->warn == NB_DIAG_SATURATED && rt->warn == NB_DIAG_SATURATED);
        char buf[400];
        nb_diag_warning(rt, NB_DIAG_SATURATED, buf, sizeof buf);
        HAS(buf, "90.0% of its values are saturated (|y| > 0.99");
        nb_diag_warning(rs, NB_DIAG_SATURATED, buf, sizeof buf);
        HAS(buf, "(sigmoid): 60.0%");
        HAS(buf, "outside [0.01, 0.99]");
    }
    CHECK(d.n_warnings == 2);
    /* exactly half saturated is not "more than half" */
    const nb_real half[10] = {10, -10, 5, -5, 6, 0, 1, -1, 2, R(0.5)};
    CHECK_OK(nb_set_input(g, x, half, 2));
    CHECK_OK(nb_forward(g, loss));
    CHECK_OK(nb_diagnose(g, NULL, &d));
    CHECK(d.rows[0].saturated == 0.5 && d.rows[0].warn == 0);
    nb_diagnosis_free(&d);
    nb_graph_free(g);
}

/* y = x W^T + b, loss = mean((y - t)^2) with W = [0.5, -1], b = 0.25,
 * x = [[1, 2], [3, -1]], t = [1, 0]:
 *   y = [-1.25, 2.75], error e = [-2.25, 2.75], dL/dy = 2e/2 = e,
 *   dL/dW = sum e_i x_i = [6, -7.25] (norm sqrt 88.5625), dL/db = 0.5,
 *   |dL/dy| = sqrt(2.25^2 + 2.75^2) = sqrt 12.625.
 * SGD with lr 0.1: ||dW|| / ||W|| = 0.1 sqrt 88.5625 / sqrt 1.25. */
static void test_gradients_and_updates(void) {
    nb_graph *g = nb_graph_new();
    int two = 2, one = 1;
    nb_node x = nb_input(g, "x", 1, &two);
    nb_node t = nb_input(g, "t", 1, &one);
    nb_node y = nb_dense(g, x, 1, "fc", NULL);
    nb_node loss = nb_mse_loss(g, y, t);
    CHECK_OK(nb_graph_status(g));
    nb_real *p = nb_params(g);
    p[0] = R(0.5), p[1] = -1, p[2] = R(0.25);
    const nb_real xs[4] = {1, 2, 3, -1}, ts[2] = {1, 0};
    CHECK_OK(nb_set_input(g, x, xs, 2));
    CHECK_OK(nb_set_input(g, t, ts, 2));
    CHECK_OK(nb_forward(g, loss));
    nb_zero_grad(g);
    CHECK_OK(nb_backward(g, loss));
    nb_real before[3];
    memcpy(before, p, sizeof before);
    nb_optim_config oc = nb_optim_defaults(NB_OPT_SGD);
    oc.lr = 0.1;
    nb_optim *opt = nb_optim_new(&oc, 3);
    CHECK_OK(nb_optim_step(opt, p, nb_grads(g), oc.lr));
    nb_diagnosis d;
    CHECK_OK(nb_diagnosis_init(&d, g, loss));
    CHECK(d.n_rows == 3);
    CHECK_OK(nb_diagnose(g, before, &d));
    const nb_diag_row *w = row_of(&d, "fc.weight"), *b = row_of(&d, "fc.bias"),
                      *a = row_of(&d, "fc");
    CHECK(w && b && a);
    if (w && b && a) {
        CHECK(w->is_param && strcmp(w->op, "param") == 0 && w->numel == 2);
        CHECK_CLOSE(w->grad_norm, sqrt(88.5625), 1e-6, 1e-6);
        CHECK_CLOSE(b->grad_norm, 0.5, 1e-6, 1e-6);
        CHECK_CLOSE(a->grad_norm, sqrt(12.625), 1e-6, 1e-6);
        CHECK_CLOSE(w->weight_norm, sqrt(1.25), 1e-7, 1e-7);
        CHECK_CLOSE(w->update_ratio, 0.1 * sqrt(88.5625) / sqrt(1.25), 1e-6, 1e-6);
        CHECK_CLOSE(b->update_ratio, 0.05 / 0.25, 1e-6, 1e-6);
        CHECK_CLOSE(a->mean, 0.75, 1e-6, 0);
        /* a parameter as the batch saw it, [0.5, -1], not as the step left it */
        CHECK_CLOSE(w->mean, -0.25, 1e-7, 0);
        CHECK_CLOSE(w->std, 0.75, 1e-7, 0);
        CHECK_CLOSE(a->std, 2.0, 1e-6, 0);
        CHECK(w->warn == NB_DIAG_UPDATE_LARGE); /* 0.84 > 0.1 */
        CHECK(b->warn == 0);                    /* biases are not judged */
        char buf[400];
        nb_diag_warning(w, NB_DIAG_UPDATE_LARGE, buf, sizeof buf);
        HAS(buf, "parameter 'fc.weight': update/weight ratio 0.842 is far above");
    }
    /* without the old parameters there is no ratio */
    CHECK_OK(nb_diagnose(g, NULL, &d));
    CHECK(d.rows[0].update_ratio == -1 && d.rows[0].warn == 0);
    CHECK_CLOSE(d.rows[0].mean, (-0.1 - 0.275) / 2, 1e-6, 0); /* now the current values */
    CHECK_CLOSE(d.rows[0].weight_norm, sqrt(0.01 + 0.275 * 0.275), 1e-6, 1e-6);
    /* exploding: inputs 1e4 times larger give a weight gradient over 1e3 */
    const nb_real big[4] = {1e4, 2e4, 3e4, -1e4};
    CHECK_OK(nb_set_input(g, x, big, 2));
    CHECK_OK(nb_forward(g, loss));
    nb_zero_grad(g);
    CHECK_OK(nb_backward(g, loss));
    CHECK_OK(nb_diagnose(g, NULL, &d));
    w = row_of(&d, "fc.weight");
    CHECK(w && (w->warn & NB_DIAG_EXPLODING) && w->grad_norm > 1e3);
    /* vanishing: zero inputs give the weight no gradient */
    const nb_real zero[4] = {0, 0, 0, 0};
    CHECK_OK(nb_set_input(g, x, zero, 2));
    CHECK_OK(nb_forward(g, loss));
    nb_zero_grad(g);
    CHECK_OK(nb_backward(g, loss));
    CHECK_OK(nb_diagnose(g, NULL, &d));
    CHECK(w && w->grad_norm == 0 && w->warn == NB_DIAG_VANISHING);
    /* growth: with the inputs 10 times larger the weight gradient grows from
     * 3.2 to 164: more than 10x and past 10, though below the limit 1e3 (the
     * weights are those after the SGD step above) */
    CHECK_OK(nb_set_input(g, x, xs, 2));
    CHECK_OK(nb_forward(g, loss));
    nb_zero_grad(g);
    CHECK_OK(nb_backward(g, loss));
    CHECK_OK(nb_diagnose(g, NULL, &d));
    CHECK(w && w->warn == 0);
    nb_real x10[4];
    for (int k = 0; k < 4; k++) x10[k] = 10 * xs[k];
    CHECK_OK(nb_set_input(g, x, x10, 2));
    CHECK_OK(nb_forward(g, loss));
    nb_zero_grad(g);
    CHECK_OK(nb_backward(g, loss));
    CHECK_OK(nb_diagnose(g, NULL, &d));
    CHECK(w && w->warn == NB_DIAG_EXPLODING && w->grad_norm < 1e3 &&
          w->grad_norm > 10 * w->prev_grad_norm);
    nb_optim_free(opt);
    nb_diagnosis_free(&d);
    nb_graph_free(g);
}

/* A small MLP to poison: x [B, 3] -> h = dense 4 -> relu -> out = dense 2,
 * mse against t. */
typedef struct mlp {
    nb_graph *g;
    nb_node x, t, h, r, out, loss;
} mlp;

static mlp make_mlp(void) {
    mlp m;
    int three = 3, two = 2;
    m.g = nb_graph_new();
    m.x = nb_input(m.g, "x", 1, &three);
    m.t = nb_input(m.g, "t", 1, &two);
    m.h = nb_dense(m.g, m.x, 4, "h", NULL);
    m.r = nb_relu(m.g, m.h);
    m.out = nb_dense(m.g, m.r, 2, "out", NULL);
    m.loss = nb_mse_loss(m.g, m.out, m.t);
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    CHECK_OK(nb_graph_init(m.g, &rng));
    return m;
}

static nb_real mlp_x[12] = {1, 2, 3, -1, R(0.5), 2, 0, 1, -2, R(0.25), R(-0.5), 1};
static nb_real mlp_t[8] = {1, 0, 0, 1, 1, 1, 0, 0};

static void run_mlp(mlp *m, const nb_real *xs) {
    CHECK_OK(nb_set_input(m->g, m->x, xs, 4));
    CHECK_OK(nb_set_input(m->g, m->t, mlp_t, 4));
    CHECK_OK(nb_forward(m->g, m->loss));
}

static void test_find_nonfinite(void) {
    mlp m = make_mlp();
    nb_nonfinite r;
    char buf[400];
    /* before any forward: a state error */
    CHECK(nb_find_nonfinite(m.g, m.loss, 0, &r) == NB_ERR_STATE);
    nb_diagnosis d;
    CHECK_OK(nb_diagnosis_init(&d, m.g, m.loss));
    CHECK(nb_diagnose(m.g, NULL, &d) == NB_ERR_STATE);
    /* all finite */
    run_mlp(&m, mlp_x);
    nb_zero_grad(m.g);
    CHECK_OK(nb_backward(m.g, m.loss));
    CHECK_OK(nb_find_nonfinite(m.g, m.loss, 1, &r));
    CHECK(r.node == NB_NONE);
    /* a NaN in the data: element 2 of sample 1 */
    nb_real xs[12];
    memcpy(xs, mlp_x, sizeof xs);
    xs[5] = NAN;
    run_mlp(&m, xs);
    CHECK_OK(nb_find_nonfinite(m.g, m.loss, 0, &r));
    CHECK(r.node == m.x && !r.in_grad && r.is_nan && r.index == 5 && r.count == 1);
    CHECK(r.source == m.h);
    nb_nonfinite_describe(m.g, &r, buf, sizeof buf);
    HAS(buf, "input 'x' holds NaN (element 5, sample 1 of the batch; 1 of 12 elements "
             "non-finite); it is read by 'h' (linear)");
    /* a NaN in a parameter comes before the op that reads it */
    nb_node ow = nb_find(m.g, "out.weight");
    nb_value(m.g, ow)[3] = NAN;
    run_mlp(&m, mlp_x);
    CHECK_OK(nb_find_nonfinite(m.g, m.loss, 0, &r));
    CHECK(r.node == ow && r.is_nan && r.index == 3 && r.source == m.out);
    nb_nonfinite_describe(m.g, &r, buf, sizeof buf);
    HAS(buf, "parameter 'out.weight' holds NaN (element 3;");
    HAS(buf, "read by 'out' (linear)");
    /* an infinity in an op's output from finite inputs: h = x W^T + b with
     * W[1][1] = 3e38 overflows for sample 0, whose x1 is 2 */
    nb_value(m.g, ow)[3] = R(0.5);
    nb_node hw = nb_find(m.g, "h.weight");
    nb_real keep = nb_value(m.g, hw)[4];
    nb_value(m.g, hw)[4] = R(3e38); /* row 1, column 1 */
    run_mlp(&m, mlp_x);
    CHECK_OK(nb_find_nonfinite(m.g, m.loss, 0, &r));
    CHECK(r.node == m.h && !r.is_nan && r.source == m.h);
    nb_nonfinite_describe(m.g, &r, buf, sizeof buf);
    HAS(buf, "the forward value of node 'h' (linear) is inf");
    HAS(buf, "its inputs are finite");
    nb_value(m.g, hw)[4] = keep;
    nb_diagnosis_free(&d);
    nb_graph_free(m.g);
}

/* Loss finite, gradient not: u = x * w1, v = u * w2, loss = mean(v) with
 * x = 1e10, w1 = 1e-20, w2 = 1e30: v = 1e20, but dL/dw1 = w2 x = 1e40
 * overflows float.  Backward runs v's op first (its gradient of u is
 * 1e30 / B), then u's, which writes inf into w1's gradient. */
typedef struct overflow {
    nb_graph *g;
    nb_node x, y, w1, w2, u, v, loss;
} overflow;

static overflow make_overflow(void) {
    overflow o;
    int one = 1;
    o.g = nb_graph_new();
    o.x = nb_input(o.g, "x", 1, &one);
    o.y = nb_input(o.g, "y", 1, &one);
    o.w1 = nb_param(o.g, "w1", 1, &one, (nb_init){.kind = NB_INIT_CONSTANT, .a = 1e-20});
    o.w2 = nb_param(o.g, "w2", 1, &one, (nb_init){.kind = NB_INIT_CONSTANT, .a = 1e30});
    o.u = nb_mul(o.g, o.x, o.w1);
    o.v = nb_mul(o.g, o.u, o.w2);
    o.loss = nb_mean(o.g, o.v);
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    CHECK_OK(nb_graph_init(o.g, &rng));
    return o;
}

static void test_gradient_overflow(void) {
    overflow o = make_overflow();
    nb_real xs[4] = {1e10, 1e10, 1e10, 1e10};
    CHECK_OK(nb_set_input(o.g, o.x, xs, 4));
    CHECK_OK(nb_forward(o.g, o.loss));
    CHECK(isfinite(nb_value(o.g, o.loss)[0]));
    nb_zero_grad(o.g);
    CHECK_OK(nb_backward(o.g, o.loss));
    nb_nonfinite r;
    CHECK_OK(nb_find_nonfinite(o.g, o.loss, 0, &r));
    CHECK(r.node == NB_NONE); /* values only: all finite */
    CHECK_OK(nb_find_nonfinite(o.g, o.loss, 1, &r));
    CHECK(r.node == o.w1 && r.in_grad && !r.is_nan && r.source == o.u && r.n_sources == 1);
    char buf[400];
    nb_nonfinite_describe(o.g, &r, buf, sizeof buf);
    HAS(buf, "the gradient of node 'w1' (param) is inf");
    HAS(buf, "written by the backward of '");
    HAS(buf, "(mul)");
    /* nb_fit stops before the optimiser step: the parameters are unchanged */
    nb_fit_config cfg = nb_fit_defaults(o.x, o.y, o.loss, NB_NONE);
    cfg.optimizer = test_optim(o.g, NB_OPT_SGD, -1);
    cfg.batch_size = 2;
    nb_real ys[4] = {0, 0, 0, 0};
    nb_data data = test_data(xs, ys, 4, 1, 1);
    nb_real before[2];
    memcpy(before, nb_params(o.g), sizeof before);
    CHECK(nb_fit(o.g, &cfg, &data, NULL, NULL) == NB_ERR_NUMERIC);
    const char *msg = nb_last_error();
    HAS(msg, "nb_fit: gradient is not finite at epoch 1, step 1 of 2 (optimiser step 1): "
             "the gradient of node 'w1' (param) is inf");
    CHECK(memcmp(before, nb_params(o.g), sizeof before) == 0);
    /* the same with clipping (the norm is what detects it then) */
    cfg.clip_norm = 1;
    cfg.optimizer = test_optim(o.g, NB_OPT_SGD, -1);
    CHECK(nb_fit(o.g, &cfg, &data, NULL, NULL) == NB_ERR_NUMERIC);
    HAS(nb_last_error(), "the gradient of node 'w1' (param) is inf");
    CHECK(memcmp(before, nb_params(o.g), sizeof before) == 0);
    nb_graph_free(o.g);
}

/* nb_fit's messages name the node and op. */
static void test_fit_messages(void) {
    /* a NaN in training sample 6: batches of 4 in order, so step 2 */
    mlp m = make_mlp();
    static nb_real xs[8 * 3], ts[8 * 2];
    for (int k = 0; k < 24; k++) xs[k] = R(0.1) * (nb_real)(k % 7) - R(0.3);
    for (int k = 0; k < 16; k++) ts[k] = (nb_real)(k % 3 == 0);
    xs[6 * 3 + 2] = NAN;
    nb_data data = test_data(xs, ts, 8, 3, 2);
    nb_fit_config cfg = nb_fit_defaults(m.x, m.t, m.loss, NB_NONE);
    cfg.batch_size = 4;
    cfg.no_shuffle = 1;
    cfg.optimizer = test_optim(m.g, NB_OPT_ADAM, -1);
    CHECK(nb_fit(m.g, &cfg, &data, NULL, NULL) == NB_ERR_NUMERIC);
    HAS(nb_last_error(), "nb_fit: loss is NaN at epoch 1, step 2 of 2 (optimiser step 2): "
                         "input 'x' holds NaN (element 8, sample 2 of the batch");
    HAS(nb_last_error(), "is sample 6 of the training set; check the data");
    /* shuffled: still the right training sample */
    cfg.no_shuffle = 0;
    cfg.seed = 12;
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    CHECK_OK(nb_graph_init(m.g, &rng));
    cfg.optimizer = test_optim(m.g, NB_OPT_ADAM, -1);
    CHECK(nb_fit(m.g, &cfg, &data, NULL, NULL) == NB_ERR_NUMERIC);
    HAS(nb_last_error(), "is sample 6 of the training set; check the data");
    xs[6 * 3 + 2] = 0;
    /* an overflowing layer: the message names it and its op */
    nb_rng_seed(&rng, 5);
    CHECK_OK(nb_graph_init(m.g, &rng));
    nb_value(m.g, nb_find(m.g, "out.weight"))[0] = R(3e38);
    nb_value(m.g, nb_find(m.g, "out.weight"))[1] = R(3e38);
    nb_value(m.g, nb_find(m.g, "out.weight"))[2] = R(3e38);
    nb_value(m.g, nb_find(m.g, "out.weight"))[3] = R(3e38);
    nb_value(m.g, nb_find(m.g, "h.bias"))[0] = 10; /* ReLU unit 0 fires for all */
    cfg.optimizer = test_optim(m.g, NB_OPT_ADAM, -1);
    CHECK(nb_fit(m.g, &cfg, &data, NULL, NULL) == NB_ERR_NUMERIC);
    HAS(nb_last_error(), "the forward value of node 'out' (linear) is inf");
    nb_graph_free(m.g);

    /* an update that overflows: loss = mean(x w) with x = 10, SGD lr 1e38:
     * with one step per epoch, the end of the epoch catches it */
    nb_graph *g = nb_graph_new();
    int one = 1;
    nb_node x = nb_input(g, "x", 1, &one), y = nb_input(g, "y", 1, &one);
    nb_node w = nb_param(g, "w", 1, &one, (nb_init){.kind = NB_INIT_CONSTANT, .a = 1});
    nb_node loss = nb_mean(g, nb_mul(g, x, w));
    nb_rng_seed(&rng, 1);
    CHECK_OK(nb_graph_init(g, &rng));
    nb_real tens[2] = {10, 10}, zeros[2] = {0, 0};
    nb_data d2 = test_data(tens, zeros, 2, 1, 1);
    cfg = nb_fit_defaults(x, y, loss, NB_NONE);
    cfg.optimizer = test_optim(g, NB_OPT_SGD, 1e38);
    CHECK(nb_fit(g, &cfg, &d2, NULL, NULL) == NB_ERR_NUMERIC);
    HAS(nb_last_error(), "nb_fit: optimiser step 1 (the last of epoch 1) made parameter 'w' "
                         "infinite (element 0) from finite gradients");
    /* with two steps per epoch, the next step's loss does: it names the
     * parameter */
    nb_rng_seed(&rng, 1);
    CHECK_OK(nb_graph_init(g, &rng));
    cfg.batch_size = 1;
    cfg.optimizer = test_optim(g, NB_OPT_SGD, 1e38);
    CHECK(nb_fit(g, &cfg, &d2, NULL, NULL) == NB_ERR_NUMERIC);
    HAS(nb_last_error(), "nb_fit: loss is -inf at epoch 1, step 2 of 2 (optimiser step 2): "
                         "parameter 'w' holds -inf (element 0; 1 of 1 elements non-finite); "
                         "it is read by 'mul");
    HAS(nb_last_error(), "; optimiser step 1 wrote it from finite gradients: lower the "
                         "learning rate");
    /* a parameter that was not finite to begin with */
    nb_value(g, w)[0] = NAN;
    cfg.optimizer = test_optim(g, NB_OPT_SGD, 1e38);
    CHECK(nb_fit(g, &cfg, &d2, NULL, NULL) == NB_ERR_NUMERIC);
    HAS(nb_last_error(), "at epoch 1, step 1 of 2 (optimiser step 1): parameter 'w' holds NaN");
    HAS(nb_last_error(), "it was so before training started");
    nb_graph_free(g);
}

int main(void) {
    test_dead_dense();
    test_dead_channels();
    test_dead_hardswish();
    test_saturation();
    test_gradients_and_updates();
    test_find_nonfinite();
    test_gradient_overflow();
    test_fit_messages();
    test_free_optims();
    TEST_END();
}
