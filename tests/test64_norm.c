/* Batch norm, layer norm and dropout in double precision: gradient checks in
 * training and eval mode (with and without the affine map), the statistics
 * and their updates computed independently here, dropout's mask (keep
 * fraction, independent neighbours, scaling, freezing, reproducibility, the
 * same on 1 and 2 threads), the graph generator, the
 * buffers, and the errors. */
#include "test.h"
#include "nabla.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-6
#define ATOL 1e-7
#define RTOL 1e-6

/* Deterministic, uneven test values: channel c gets its own scale and offset
 * so that every per-channel statistic differs. */
static void fill(nb_real *v, size_t n, unsigned seed) {
    nb_rng r;
    nb_rng_seed(&r, seed);
    for (size_t k = 0; k < n; k++) v[k] = (nb_real)(1.5 * nb_rng_normal(&r) + 0.3);
}

static void check_report(const char *what, nb_status s, const nb_gradcheck_report *rep,
                         size_t want_checked) {
    CHECKF(s == NB_OK, "%s: %s", what, nb_last_error());
    CHECKF(rep->failed == 0 && rep->checked == want_checked,
           "%s: checked %zu (want %zu), failed %zu, max err %g (node %d [%zu]: analytic %g "
           "numeric %g)", what, rep->checked, want_checked, rep->failed, rep->max_abs_err,
           rep->worst_node, rep->worst_index, rep->worst_analytic, rep->worst_numeric);
}

/* y = op(x); loss = sum(y * wy) with a fixed random wy (a plain sum would
 * make the batch-norm input gradient vanish identically). */
typedef struct net {
    nb_graph *g;
    nb_node x, wy, y, loss;
    int batch;
    size_t sample;
} net;

static void net_begin(net *m, int batch, int ndim, const int *sample_dims) {
    m->g = nb_graph_new();
    m->batch = batch;
    m->sample = 1;
    for (int d = 0; d < ndim; d++) m->sample *= (size_t)sample_dims[d];
    m->x = nb_input(m->g, "x", ndim, sample_dims);
    m->wy = nb_input(m->g, "wy", ndim, sample_dims);
}

static int net_finish(net *m, unsigned seed) {
    m->loss = nb_sum(m->g, nb_mul(m->g, m->y, m->wy));
    CHECK_OK(nb_requires_grad(m->g, m->x, 1));
    nb_status s = nb_graph_status(m->g);
    CHECKF(s == NB_OK, "build: %s", nb_last_error());
    if (s != NB_OK) return 0;
    size_t n = (size_t)m->batch * m->sample;
    nb_real *v = malloc(n * sizeof *v);
    fill(v, n, seed);
    CHECK_OK(nb_set_input(m->g, m->x, v, m->batch));
    fill(v, n, seed + 1000);
    CHECK_OK(nb_set_input(m->g, m->wy, v, m->batch));
    free(v);
    /* weight and bias away from 1 and 0, so the affine map is exercised */
    for (int i = 0; i < nb_param_tensor_count(m->g); i++) {
        nb_node p = nb_param_tensor(m->g, i);
        nb_real *pv = nb_value(m->g, p);
        for (size_t k = 0; k < nb_node_numel(m->g, p); k++)
            pv[k] = (nb_real)(0.5 + 0.25 * (double)((k * 3 + (size_t)i) % 5));
    }
    return 1;
}

/* ------------------------------------------------------------ batch norm */

/* Batch norm's training forward computed here from the definition. */
static void check_bn_forward(net *m, int C, size_t inner, double eps, int affine) {
    nb_graph *g = m->g;
    const nb_real *x = nb_value(g, m->x), *y = nb_value(g, m->y);
    const nb_real *w = affine ? nb_value(g, nb_find(g, "bn.weight")) : NULL;
    const nb_real *b = affine ? nb_value(g, nb_find(g, "bn.bias")) : NULL;
    int B = m->batch;
    double max_err = 0;
    for (int c = 0; c < C; c++) {
        double mu = 0, var = 0, n = (double)B * (double)inner;
        for (int o = 0; o < B; o++)
            for (size_t k = 0; k < inner; k++) mu += x[((size_t)o * C + c) * inner + k];
        mu /= n;
        for (int o = 0; o < B; o++)
            for (size_t k = 0; k < inner; k++) {
                double d = x[((size_t)o * C + c) * inner + k] - mu;
                var += d * d;
            }
        var /= n;
        for (int o = 0; o < B; o++)
            for (size_t k = 0; k < inner; k++) {
                size_t at = ((size_t)o * C + c) * inner + k;
                double want = (x[at] - mu) / sqrt(var + eps);
                if (affine) want = want * w[c] + b[c];
                max_err = fmax(max_err, fabs(y[at] - want));
            }
    }
    CHECKF(max_err < 1e-12, "batch norm forward differs by %g", max_err);
}

static void test_bn_train(int ndim, const int *sample_dims, int batch, int affine) {
    net m;
    net_begin(&m, batch, ndim, sample_dims);
    nb_norm_opts o = {.no_affine = !affine};
    m.y = nb_batch_norm(m.g, m.x, "bn", &o);
    if (!net_finish(&m, 11u + (unsigned)ndim)) {
        nb_graph_free(m.g);
        return;
    }
    int C = sample_dims[0];
    size_t inner = m.sample / (size_t)C;
    nb_node rm = nb_find(m.g, "bn.running_mean"), rv = nb_find(m.g, "bn.running_var");
    nb_node nbt = nb_find(m.g, "bn.num_batches_tracked");
    CHECK(rm != NB_NONE && rv != NB_NONE && nbt != NB_NONE);
    CHECK(nb_buffer_count(m.g) == 3 && nb_buffer_tensor(m.g, 0) == rm &&
          nb_buffer_tensor(m.g, 2) == nbt);
    CHECK(strcmp(nb_node_op(m.g, rm), "buffer") == 0);
    CHECK(nb_param_tensor_count(m.g) == (affine ? 2 : 0));
    CHECK(nb_node_numel(m.g, nbt) == 1);

    /* one training forward: y from the definition, one statistics update */
    CHECK_OK(nb_forward(m.g, m.loss));
    check_bn_forward(&m, C, inner, 1e-5, affine);
    const nb_real *x = nb_value(m.g, m.x);
    double n = (double)batch * (double)inner, worst = 0;
    for (int c = 0; c < C; c++) {
        double mu = 0, ss = 0;
        for (int o = 0; o < batch; o++)
            for (size_t k = 0; k < inner; k++) mu += x[((size_t)o * C + c) * inner + k];
        mu /= n;
        for (int o = 0; o < batch; o++)
            for (size_t k = 0; k < inner; k++) {
                double d = x[((size_t)o * C + c) * inner + k] - mu;
                ss += d * d;
            }
        worst = fmax(worst, fabs(nb_value(m.g, rm)[c] - 0.1 * mu));
        worst = fmax(worst, fabs(nb_value(m.g, rv)[c] - (0.9 + 0.1 * ss / (n - 1))));
    }
    CHECKF(worst < 1e-14, "running statistics off by %g", worst);
    CHECK(nb_value(m.g, nbt)[0] == 1);

    /* gradcheck in training mode: the statistics are as before afterwards */
    size_t C_ = (size_t)C;
    nb_real saved_rm[16], saved_rv[16];
    memcpy(saved_rm, nb_value(m.g, rm), C_ * sizeof(nb_real));
    memcpy(saved_rv, nb_value(m.g, rv), C_ * sizeof(nb_real));
    nb_gradcheck_report rep;
    nb_status s = nb_gradcheck(m.g, m.loss, EPS, ATOL, RTOL, &rep);
    check_report(affine ? "batch norm (train)" : "batch norm no affine (train)", s, &rep,
                 (size_t)batch * m.sample + (affine ? 2 * C_ : 0));
    CHECK(memcmp(saved_rm, nb_value(m.g, rm), C_ * sizeof(nb_real)) == 0);
    CHECK(memcmp(saved_rv, nb_value(m.g, rv), C_ * sizeof(nb_real)) == 0);
    CHECK(nb_value(m.g, nbt)[0] == 1);

    /* eval mode: running statistics, gradient of the affine map */
    for (int c = 0; c < C; c++) {
        nb_value(m.g, rm)[c] = (nb_real)(0.25 * c - 0.5);
        nb_value(m.g, rv)[c] = (nb_real)(0.5 + c);
    }
    nb_graph_set_training(m.g, 0);
    CHECK_OK(nb_forward(m.g, m.loss));
    const nb_real *y = nb_value(m.g, m.y);
    const nb_real *w = affine ? nb_value(m.g, nb_find(m.g, "bn.weight")) : NULL;
    const nb_real *b = affine ? nb_value(m.g, nb_find(m.g, "bn.bias")) : NULL;
    worst = 0;
    for (int o = 0; o < batch; o++)
        for (int c = 0; c < C; c++)
            for (size_t k = 0; k < inner; k++) {
                size_t at = ((size_t)o * C + c) * inner + k;
                double want = (x[at] - (0.25 * c - 0.5)) / sqrt(0.5 + c + 1e-5);
                if (affine) want = want * w[c] + b[c];
                worst = fmax(worst, fabs(y[at] - want));
            }
    CHECKF(worst < 1e-12, "eval forward off by %g", worst);
    CHECK(nb_value(m.g, nbt)[0] == 1);
    s = nb_gradcheck(m.g, m.loss, EPS, ATOL, RTOL, &rep);
    check_report(affine ? "batch norm (eval)" : "batch norm no affine (eval)", s, &rep,
                 (size_t)batch * m.sample + (affine ? 2 * C_ : 0));
    CHECK(nb_value(m.g, rm)[1] == (nb_real)(0.25 - 0.5));

    /* nb_graph_init resets the statistics */
    nb_rng r;
    nb_rng_seed(&r, 3);
    CHECK_OK(nb_graph_init(m.g, &r));
    CHECK(nb_value(m.g, rm)[1] == 0 && nb_value(m.g, rv)[1] == 1 && nb_value(m.g, nbt)[0] == 0);
    if (affine) CHECK(nb_value(m.g, nb_find(m.g, "bn.weight"))[0] == 1);
    nb_graph_free(m.g);
}

/* momentum and eps options; the weight is 1 even before nb_graph_init */
static void test_bn_options(void) {
    net m;
    int dims[1] = {2};
    net_begin(&m, 3, 1, dims);
    nb_norm_opts o = {.eps = 0.5, .momentum = 0.75};
    m.y = nb_batch_norm(m.g, m.x, NULL, &o);
    CHECK(strcmp(nb_node_name(m.g, m.y), "batch_norm0") == 0);
    nb_node w = nb_find(m.g, "batch_norm0.weight");
    CHECK(w != NB_NONE && nb_value(m.g, w)[1] == 1);
    CHECK(nb_value(m.g, nb_find(m.g, "batch_norm0.bias"))[1] == 0);
    m.loss = nb_sum(m.g, m.y);
    nb_real xs[6] = {1, 10, 2, 20, 6, 60};
    CHECK_OK(nb_set_input(m.g, m.x, xs, 3));
    CHECK_OK(nb_forward(m.g, m.y));
    /* channel 0: mean 3, biased var 14/3, unbiased 7 */
    CHECK_CLOSE(nb_value(m.g, m.y)[0], (1 - 3) / sqrt(14.0 / 3 + 0.5), 1e-14, 0);
    CHECK_CLOSE(nb_value(m.g, nb_find(m.g, "batch_norm0.running_mean"))[0], 0.75 * 3, 1e-14, 0);
    CHECK_CLOSE(nb_value(m.g, nb_find(m.g, "batch_norm0.running_var"))[0], 0.25 + 0.75 * 7,
                1e-14, 0);
    CHECK_CLOSE(nb_value(m.g, nb_find(m.g, "batch_norm0.running_var"))[1], 0.25 + 0.75 * 700,
                1e-12, 0);
    nb_graph_free(m.g);
}

/* ------------------------------------------------------------ layer norm */

static void test_ln(int ndim, const int *sample_dims, int norm_ndim, int affine) {
    net m;
    net_begin(&m, 3, ndim, sample_dims);
    nb_norm_opts o = {.no_affine = !affine};
    m.y = nb_layer_norm(m.g, m.x, norm_ndim, "ln", &o);
    if (!net_finish(&m, 40u + (unsigned)(ndim * 2 + norm_ndim))) {
        nb_graph_free(m.g);
        return;
    }
    size_t D = 1;
    for (int d = ndim - norm_ndim; d < ndim; d++) D *= (size_t)sample_dims[d];
    if (affine) {
        int pnd;
        int pdims[NB_MAX_DIMS];
        CHECK_OK(nb_node_shape(m.g, nb_find(m.g, "ln.weight"), &pnd, pdims));
        CHECK(pnd == norm_ndim &&
              memcmp(pdims, sample_dims + ndim - norm_ndim, sizeof(int) * (size_t)pnd) == 0);
    }
    CHECK(nb_buffer_count(m.g) == 0);
    CHECK_OK(nb_forward(m.g, m.loss));
    /* every row: mean b and biased std w (up to eps) of x-hat */
    const nb_real *x = nb_value(m.g, m.x), *y = nb_value(m.g, m.y);
    const nb_real *w = affine ? nb_value(m.g, nb_find(m.g, "ln.weight")) : NULL;
    const nb_real *b = affine ? nb_value(m.g, nb_find(m.g, "ln.bias")) : NULL;
    double worst = 0;
    size_t rows = (size_t)m.batch * m.sample / D;
    for (size_t r = 0; r < rows; r++) {
        double mu = 0, var = 0;
        for (size_t j = 0; j < D; j++) mu += x[r * D + j];
        mu /= (double)D;
        for (size_t j = 0; j < D; j++) var += (x[r * D + j] - mu) * (x[r * D + j] - mu);
        var /= (double)D;
        for (size_t j = 0; j < D; j++) {
            double want = (x[r * D + j] - mu) / sqrt(var + 1e-5);
            if (affine) want = want * w[j] + b[j];
            worst = fmax(worst, fabs(y[r * D + j] - want));
        }
    }
    CHECKF(worst < 1e-12, "layer norm forward off by %g", worst);
    size_t want = (size_t)m.batch * m.sample + (affine ? 2 * D : 0);
    nb_gradcheck_report rep;
    nb_status s = nb_gradcheck(m.g, m.loss, EPS, ATOL, RTOL, &rep);
    check_report("layer norm (train)", s, &rep, want);
    nb_graph_set_training(m.g, 0);
    s = nb_gradcheck(m.g, m.loss, EPS, ATOL, RTOL, &rep);
    check_report("layer norm (eval)", s, &rep, want);
    nb_graph_free(m.g);
}

/* ------------------------------------------------------------ dropout */

static void test_dropout_mask(void) {
    enum { N = 100000 };
    nb_graph *g = nb_graph_new();
    int n = N;
    nb_node x = nb_input(g, "x", 1, &n);
    const nb_real p = 0.3;
    nb_node y = nb_dropout(g, x, p);
    nb_node l = nb_sum(g, y);
    CHECK_OK(nb_requires_grad(g, x, 1));
    CHECK_OK(nb_graph_status(g));
    nb_real *xs = malloc(N * sizeof *xs), *first = malloc(N * sizeof *first);
    fill(xs, N, 5);
    for (size_t k = 0; k < N; k++)
        if (xs[k] == 0) xs[k] = 1; /* a zero input would hide its mask element */
    nb_graph_seed(g, 42);
    CHECK_OK(nb_set_input(g, x, xs, 1));
    CHECK_OK(nb_forward(g, l));
    const nb_real *yv = nb_value(g, y);
    const nb_real scale = (nb_real)(1 / (1 - (double)p));
    size_t kept = 0, bad = 0;
    for (size_t k = 0; k < N; k++) {
        if (yv[k] == 0) continue;
        kept++;
        if (yv[k] != xs[k] * scale) bad++;
    }
    /* binomial: sd of the kept fraction sqrt(0.21 / N) = 0.00145; allow 5 sd */
    double frac = (double)kept / N;
    CHECKF(fabs(frac - 0.7) < 5 * sqrt(0.21 / N), "kept fraction %g, expected 0.7", frac);
    CHECKF(bad == 0, "%zu kept elements are not x / (1 - p)", bad);
    /* neighbours are drawn independently: both kept with probability 0.49 */
    size_t both = 0;
    for (size_t k = 0; k + 1 < N; k++) both += yv[k] != 0 && yv[k + 1] != 0;
    frac = (double)both / (N - 1);
    CHECKF(fabs(frac - 0.49) < 5 * sqrt(0.49 * 0.51 / N), "neighbours both kept %g", frac);
    /* backward: the gradient is the mask */
    CHECK_OK(nb_backward(g, l));
    bad = 0;
    for (size_t k = 0; k < N; k++)
        if (nb_grad(g, x)[k] != (yv[k] == 0 ? 0 : scale)) bad++;
    CHECKF(bad == 0, "%zu gradient elements differ from the mask", bad);
    memcpy(first, yv, N * sizeof *first);

    /* a new forward draws a new mask; frozen, it reuses the last one */
    CHECK_OK(nb_forward(g, l));
    CHECK(memcmp(first, nb_value(g, y), N * sizeof *first) != 0);
    memcpy(first, nb_value(g, y), N * sizeof *first);
    nb_graph_freeze_random(g, 1);
    nb_rng before = *nb_graph_rng(g);
    CHECK_OK(nb_forward(g, l));
    CHECK(memcmp(first, nb_value(g, y), N * sizeof *first) == 0);
    CHECK(memcmp(&before, nb_graph_rng(g), sizeof before) == 0); /* nothing drawn */
    nb_graph_freeze_random(g, 0);

    /* the same seed gives the same mask */
    nb_graph_seed(g, 42);
    CHECK_OK(nb_forward(g, l));
    memcpy(first, nb_value(g, y), N * sizeof *first);
    nb_graph_seed(g, 42);
    CHECK_OK(nb_forward(g, l));
    CHECK(memcmp(first, nb_value(g, y), N * sizeof *first) == 0);
    nb_graph_seed(g, 43);
    CHECK_OK(nb_forward(g, l));
    CHECK(memcmp(first, nb_value(g, y), N * sizeof *first) != 0);

    /* the mask is drawn in slices on several threads: the same on any count */
    const int threads = nb_threads();
    CHECK_OK(nb_set_threads(1));
    nb_graph_seed(g, 42);
    CHECK_OK(nb_forward(g, l));
    memcpy(first, nb_value(g, y), N * sizeof *first);
    CHECK_OK(nb_set_threads(2));
    nb_graph_seed(g, 42);
    CHECK_OK(nb_forward(g, l));
    CHECK(memcmp(first, nb_value(g, y), N * sizeof *first) == 0);
    CHECK_OK(nb_set_threads(threads));

    /* eval mode: the identity, gradient 1 */
    nb_graph_set_training(g, 0);
    CHECK_OK(nb_forward(g, l));
    CHECK(memcmp(xs, nb_value(g, y), N * sizeof *xs) == 0);
    CHECK_OK(nb_backward(g, l));
    bad = 0;
    for (size_t k = 0; k < N; k++) bad += nb_grad(g, x)[k] != 1;
    CHECK(bad == 0);
    free(xs);
    free(first);
    nb_graph_free(g);
}

static void test_dropout_zero_and_batch(void) {
    nb_graph *g = nb_graph_new();
    int n = 6;
    nb_node x = nb_input(g, "x", 1, &n);
    nb_node y0 = nb_dropout(g, x, 0);
    nb_node y = nb_dropout(g, x, 0.5);
    CHECK_OK(nb_graph_status(g));
    nb_real xs[24];
    fill(xs, 24, 9);
    /* p = 0 is the identity in training too, and draws nothing */
    CHECK_OK(nb_set_input(g, x, xs, 2));
    nb_rng before = *nb_graph_rng(g);
    CHECK_OK(nb_forward(g, y0));
    CHECK(memcmp(xs, nb_value(g, y0), 12 * sizeof *xs) == 0);
    CHECK(memcmp(&before, nb_graph_rng(g), sizeof before) == 0);
    /* frozen before any draw, and again after a batch change: a fresh,
     * valid mask (0 or 2 times x), never stale memory */
    nb_graph_freeze_random(g, 1);
    CHECK_OK(nb_forward(g, y));
    CHECK(memcmp(&before, nb_graph_rng(g), sizeof before) != 0);
    CHECK_OK(nb_set_input(g, x, xs, 4));
    before = *nb_graph_rng(g);
    CHECK_OK(nb_forward(g, y));
    CHECK(memcmp(&before, nb_graph_rng(g), sizeof before) != 0);
    size_t bad = 0, zeros = 0;
    for (int k = 0; k < 24; k++) {
        nb_real v = nb_value(g, y)[k];
        zeros += v == 0;
        bad += v != 0 && v != 2 * xs[k];
    }
    CHECK(bad == 0 && zeros > 0 && zeros < 24);
    nb_graph_free(g);
}

static void test_dropout_gradcheck(void) {
    net m;
    int dims[2] = {3, 4};
    net_begin(&m, 5, 2, dims);
    nb_node h = nb_dense(m.g, nb_reshape(m.g, m.x, 1, (int[]){12}), 12, "fc", NULL);
    m.y = nb_reshape(m.g, nb_tanh(m.g, nb_dropout(m.g, h, 0.4)), 2, dims);
    if (!net_finish(&m, 77)) {
        nb_graph_free(m.g);
        return;
    }
    nb_rng r;
    nb_rng_seed(&r, 8);
    CHECK_OK(nb_graph_init(m.g, &r));
    /* explicitly frozen: gradcheck's forwards all use this mask */
    CHECK_OK(nb_forward(m.g, m.loss));
    nb_graph_freeze_random(m.g, 1);
    nb_gradcheck_report rep;
    nb_status s = nb_gradcheck(m.g, m.loss, EPS, ATOL, RTOL, &rep);
    check_report("dropout (frozen)", s, &rep, 5 * 12 + 12 * 12 + 12);
    nb_graph_freeze_random(m.g, 0);
    /* not frozen: gradcheck freezes after its first forward by itself and puts
     * the generator back */
    nb_rng before = *nb_graph_rng(m.g);
    s = nb_gradcheck(m.g, m.loss, EPS, ATOL, RTOL, &rep);
    check_report("dropout (gradcheck freezes)", s, &rep, 5 * 12 + 12 * 12 + 12);
    CHECK(memcmp(&before, nb_graph_rng(m.g), sizeof before) == 0);
    /* the freeze ended with the check: the next forward draws */
    CHECK_OK(nb_forward(m.g, m.loss));
    CHECK(memcmp(&before, nb_graph_rng(m.g), sizeof before) != 0);
    nb_graph_free(m.g);
}

/* nb_graph_init seeds the generator from its rng: same seed, same masks */
static void test_graph_rng(void) {
    nb_real out[2][8];
    for (int t = 0; t < 2; t++) {
        nb_graph *g = nb_graph_new();
        int n = 8;
        nb_node x = nb_input(g, "x", 1, &n);
        nb_node y = nb_dropout(g, x, 0.5);
        nb_rng r;
        nb_rng_seed(&r, 1234);
        CHECK_OK(nb_graph_init(g, &r));
        nb_rng fresh;
        nb_rng_seed(&fresh, 1234);
        nb_rng_seed(&fresh, nb_rng_u64(&fresh)); /* no parameters: the first draw seeds */
        CHECK(memcmp(&fresh, nb_graph_rng(g), sizeof fresh) == 0);
        nb_real xs[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        CHECK_OK(nb_set_input(g, x, xs, 1));
        CHECK_OK(nb_forward(g, y));
        memcpy(out[t], nb_value(g, y), sizeof out[t]);
        nb_graph_free(g);
    }
    CHECK(memcmp(out[0], out[1], sizeof out[0]) == 0);
}

/* A graph holding samples [2, 5) of a batch of 6 (nb_graph_set_sample_offset)
 * draws for them the masks one graph holding all 6 draws, from the same
 * generator state; a negative offset is an error. */
static void test_dropout_sample_offset(void) {
    enum { B = 6, N = 40, FIRST = 2, LOCAL = 3 };
    nb_real xs[B * N], whole[B * N];
    for (int k = 0; k < B * N; k++) xs[k] = (nb_real)(1 + k % 5);
    for (int part = 0; part < 2; part++) {
        nb_graph *g = nb_graph_new();
        int n = N;
        nb_node x = nb_input(g, "x", 1, &n);
        nb_node y = nb_dropout(g, x, 0.5);
        nb_rng r;
        nb_rng_seed(&r, 77);
        CHECK_OK(nb_graph_init(g, &r));
        if (part) CHECK_OK(nb_graph_set_sample_offset(g, FIRST));
        CHECK_OK(nb_set_input(g, x, part ? xs + FIRST * N : xs, part ? LOCAL : B));
        CHECK_OK(nb_forward(g, y));
        if (!part) memcpy(whole, nb_value(g, y), sizeof whole);
        else
            CHECKF(memcmp(nb_value(g, y), whole + FIRST * N, LOCAL * N * sizeof *whole) == 0,
                   "samples %d.. of the batch drew other masks than the whole batch", FIRST);
        if (part) CHECK(nb_graph_set_sample_offset(g, -1) == NB_ERR_ARG);
        nb_graph_free(g);
    }
}

/* ------------------------------------------------------------ errors */

static void expect_build_error(nb_graph *g, nb_node h, nb_status want, const char *text) {
    CHECK(h == NB_NONE);
    CHECK(nb_graph_status(g) == want);
    CHECKF(strstr(nb_last_error(), text) != NULL, "message '%s' lacks '%s'", nb_last_error(),
           text);
}

static void test_errors(void) {
    int four = 4, chw[3] = {2, 3, 3};
    struct {
        const char *text;
        nb_status st;
        int kind; /* 0 dropout p, 1 bn on [B], 2 ln ndim, 3 bn opts, 4 ln opts */
        double v;
    } cases[] = {
        {"dropout: p = 1 must be in [0, 1)", NB_ERR_ARG, 0, 1.0},
        {"1 would zero everything", NB_ERR_ARG, 0, 1.0},
        {"dropout: p = -0.1 must be in [0, 1)", NB_ERR_ARG, 0, -0.1},
        {"dropout: p = nan", NB_ERR_ARG, 0, NAN},
        {"batch_norm: input 'x' has shape [1]; expected [batch, channels]", NB_ERR_SHAPE, 1, 0},
        {"layer_norm: cannot normalise over the last 0 dims of input 'x' [1, 2, 3, 3]; "
         "expected 1 to 3", NB_ERR_SHAPE, 2, 0},
        {"last 4 dims", NB_ERR_SHAPE, 2, 4},
        {"(not the batch dim)", NB_ERR_SHAPE, 2, 4},
        {"batch_norm: momentum = 1.5 must be in (0, 1]", NB_ERR_ARG, 3, 1.5},
        {"batch_norm: eps = -1 must be positive", NB_ERR_ARG, 3, -1},
        {"layer_norm: eps = -0.5 must be positive", NB_ERR_ARG, 4, -0.5},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        nb_graph *g = nb_graph_new();
        nb_node h = NB_NONE;
        if (cases[k].kind == 1) {
            nb_node x = nb_input(g, "x", 0, NULL);
            h = nb_batch_norm(g, x, "bn", NULL);
        } else {
            nb_node x = nb_input(g, "x", 3, chw);
            if (cases[k].kind == 0) h = nb_dropout(g, x, (nb_real)cases[k].v);
            else if (cases[k].kind == 2) h = nb_layer_norm(g, x, (int)cases[k].v, NULL, NULL);
            else if (cases[k].kind == 3) {
                nb_norm_opts o = {0};
                if (cases[k].v > 0) o.momentum = cases[k].v;
                else o.eps = cases[k].v;
                h = nb_batch_norm(g, x, "bn", &o);
            } else {
                nb_norm_opts o = {.eps = cases[k].v};
                h = nb_layer_norm(g, x, 1, "ln", &o);
            }
        }
        expect_build_error(g, h, cases[k].st, cases[k].text);
        nb_graph_free(g);
    }

    /* two layers with one name */
    nb_graph *g = nb_graph_new();
    nb_node x = nb_input(g, "x", 1, &four);
    nb_node h = nb_batch_norm(g, x, "bn", NULL);
    CHECK(h != NB_NONE);
    expect_build_error(g, nb_batch_norm(g, h, "bn", NULL), NB_ERR_ARG, "'bn.weight' already used");
    nb_graph_free(g);
    g = nb_graph_new();
    x = nb_input(g, "x", 1, &four);
    h = nb_batch_norm(g, x, "bn", &(nb_norm_opts){.no_affine = 1});
    expect_build_error(g, nb_batch_norm(g, h, "bn", &(nb_norm_opts){.no_affine = 1}),
                       NB_ERR_ARG, "'bn.running_mean' already used");
    nb_graph_free(g);

    /* one value per channel in training: a run-time error; eval is fine */
    g = nb_graph_new();
    x = nb_input(g, "x", 1, &four);
    nb_node y = nb_batch_norm(g, x, "bn", NULL);
    nb_node l = nb_sum(g, y);
    CHECK_OK(nb_graph_status(g));
    CHECK(nb_requires_grad(g, nb_find(g, "bn.running_mean"), 1) == NB_ERR_ARG);
    CHECKF(strstr(nb_last_error(), "buffers are state"), "%s", nb_last_error());
    nb_real xs[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    CHECK_OK(nb_set_input(g, x, xs, 1));
    CHECK(nb_forward(g, l) == NB_ERR_ARG);
    CHECKF(strstr(nb_last_error(), "batch_norm 'bn': input [1, 4] has 1 value per channel") &&
           strstr(nb_last_error(), "more than 1"), "%s", nb_last_error());
    CHECK(isnan(nb_value(g, y)[0]));
    CHECK(nb_backward(g, l) == NB_ERR_ARG);
    CHECK(nb_value(g, nb_find(g, "bn.num_batches_tracked"))[0] == 0); /* no update */
    CHECK(nb_value(g, nb_find(g, "bn.running_var"))[0] == 1);
    nb_graph_set_training(g, 0);
    CHECK_OK(nb_forward(g, l));
    CHECK_CLOSE(nb_value(g, y)[2], 3 / sqrt(1 + 1e-5), 1e-14, 0);
    nb_graph_set_training(g, 1);
    CHECK_OK(nb_set_input(g, x, xs, 2));
    CHECK_OK(nb_forward(g, l));
    nb_graph_free(g);

    /* [1, C, H, W] has H*W values per channel: fine unless H*W = 1 */
    g = nb_graph_new();
    int c11[3] = {2, 1, 1}, c21[3] = {2, 2, 1};
    nb_node ai = nb_input(g, "a", 3, c11), bi = nb_input(g, "b", 3, c21);
    nb_node a = nb_batch_norm(g, ai, "bna", NULL);
    nb_node b = nb_batch_norm(g, bi, "bnb", NULL);
    const nb_real av[2] = {0.5, -1}, bv[4] = {1, 2, -3, 0.25};
    CHECK_OK(nb_graph_set_batch(g, 1));
    CHECK_OK(nb_set_input(g, ai, av, 1));
    CHECK_OK(nb_set_input(g, bi, bv, 1));
    CHECK_OK(nb_forward(g, b));
    CHECK(nb_forward(g, a) == NB_ERR_ARG);
    CHECKF(strstr(nb_last_error(), "[1, 2, 1, 1]"), "%s", nb_last_error());
    nb_graph_free(g);

    CHECK(nb_buffer_tensor(NULL, 0) == NB_NONE);
    CHECK(nb_buffer_count(NULL) == 0);
}

int main(void) {
    int d1[1] = {3}, d2[3] = {2, 3, 2}, d3[2] = {4, 5};
    test_bn_train(1, d1, 5, 1);
    test_bn_train(1, d1, 5, 0);
    test_bn_train(3, d2, 3, 1);
    test_bn_train(3, d2, 3, 0);
    test_bn_train(2, d3, 2, 1); /* [B, C, L] */
    test_bn_options();
    int l1[1] = {6}, l2[2] = {3, 4};
    test_ln(1, l1, 1, 1);
    test_ln(1, l1, 1, 0);
    test_ln(2, l2, 1, 1);
    test_ln(2, l2, 2, 1);
    test_ln(2, l2, 2, 0);
    test_dropout_mask();
    test_dropout_zero_and_batch();
    test_dropout_sample_offset();
    test_dropout_gradcheck();
    test_graph_rng();
    test_errors();
    TEST_END();
}
