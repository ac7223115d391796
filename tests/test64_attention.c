/* Attention and the ops of a transformer block over [B, T, D] in double
 * precision: the forward pass of multi-head attention recomputed here from
 * its definition (causal and not), gradient checks of attention, of dense,
 * layer norm, GELU and add on 3-D inputs, and of a pre-LN transformer block
 * written as a model file; the build errors. */
#include "fit_support.h"
#include "test.h"
#include "nabla.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-6
#define ATOL 1e-7
#define RTOL 1e-6

static void fill(nb_real *v, size_t n, unsigned seed, double sd) {
    nb_rng r;
    nb_rng_seed(&r, seed);
    for (size_t k = 0; k < n; k++) v[k] = (nb_real)(sd * nb_rng_normal(&r));
}

#define CHECK_MSG(got, want) \
    CHECKF(strcmp((got), (want)) == 0, "message\n  got  %s\n  want %s", (got), (want))

/* Set batched input x of B samples to values drawn from seed. */
static void set_random(nb_graph *g, nb_node x, int B, unsigned seed) {
    int ndim, dims[NB_MAX_DIMS];
    size_t n = (size_t)B;
    if (nb_node_shape(g, x, &ndim, dims) != NB_OK) return;
    for (int d = 1; d < ndim; d++) n *= (size_t)dims[d];
    nb_real *v = malloc(n * sizeof *v);
    fill(v, n, seed, 1.0);
    CHECK_OK(nb_set_input(g, x, v, B));
    free(v);
}

static void check_grads(const char *what, nb_graph *g, nb_node loss, size_t want_checked) {
    nb_gradcheck_report rep;
    nb_status s = nb_gradcheck(g, loss, EPS, ATOL, RTOL, &rep);
    CHECKF(s == NB_OK, "%s: %s", what, nb_last_error());
    CHECKF(rep.failed == 0 && rep.checked == want_checked,
           "%s: checked %zu (want %zu), failed %zu, max err %g (node %d [%zu]: analytic %g "
           "numeric %g)", what, rep.checked, want_checked, rep.failed, rep.max_abs_err,
           rep.worst_node, rep.worst_index, rep.worst_analytic, rep.worst_numeric);
}

/* nn.MultiheadAttention's forward for one sample, from its definition:
 * x [T, D] -> y [T, D]. */
static void reference_attention(const nb_real *x, int T, int D, int H, int causal,
                                const nb_real *wi, const nb_real *bi, const nb_real *wo,
                                const nb_real *bo, double *y) {
    int dh = D / H;
    double *qkv = calloc((size_t)T * 3 * D, sizeof *qkv), *ctx = calloc((size_t)T * D, sizeof *ctx);
    double *p = calloc((size_t)T, sizeof *p);
    for (int t = 0; t < T; t++)
        for (int o = 0; o < 3 * D; o++) {
            double acc = bi[o];
            for (int i = 0; i < D; i++) acc += wi[o * D + i] * x[t * D + i];
            qkv[t * 3 * D + o] = acc;
        }
    for (int h = 0; h < H; h++)
        for (int i = 0; i < T; i++) {
            double m = -INFINITY, sum = 0;
            for (int j = 0; j < T; j++) {
                double s = 0;
                for (int c = 0; c < dh; c++)
                    s += qkv[i * 3 * D + h * dh + c] * qkv[j * 3 * D + D + h * dh + c];
                p[j] = causal && j > i ? -INFINITY : s / sqrt((double)dh);
                m = fmax(m, p[j]);
            }
            for (int j = 0; j < T; j++) sum += p[j] = exp(p[j] - m);
            for (int c = 0; c < dh; c++) {
                double acc = 0;
                for (int j = 0; j < T; j++) acc += p[j] / sum * qkv[j * 3 * D + 2 * D + h * dh + c];
                ctx[i * D + h * dh + c] = acc;
            }
        }
    for (int t = 0; t < T; t++)
        for (int o = 0; o < D; o++) {
            double acc = bo[o];
            for (int i = 0; i < D; i++) acc += wo[o * D + i] * ctx[t * D + i];
            y[t * D + o] = acc;
        }
    free(qkv);
    free(ctx);
    free(p);
}

/* Parameters away from their initial zeros, so every bias counts. */
static void randomise_params(nb_graph *g, unsigned seed) {
    for (int i = 0; i < nb_param_tensor_count(g); i++) {
        nb_node p = nb_param_tensor(g, i);
        fill(nb_value(g, p), nb_node_numel(g, p), seed + (unsigned)i, 0.5);
    }
}

static void test_attention(int B, int T, int D, int H, int causal) {
    nb_graph *g = nb_graph_new();
    int sd[2] = {T, D};
    nb_node x = nb_input(g, "x", 2, sd), wy = nb_input(g, "wy", 2, sd);
    nb_node y = nb_attention(g, x, H, causal, "attn");
    nb_node loss = nb_sum(g, nb_mul(g, y, wy));
    REQUIRE_OK(nb_graph_status(g));
    randomise_params(g, 3);
    set_random(g, x, B, 5);
    set_random(g, wy, B, 6);
    CHECK_OK(nb_requires_grad(g, x, 1));
    CHECK_OK(nb_forward(g, loss));
    const nb_real *wi = nb_value(g, nb_find(g, "attn.in_proj_weight"));
    const nb_real *bi = nb_value(g, nb_find(g, "attn.in_proj_bias"));
    const nb_real *wo = nb_value(g, nb_find(g, "attn.out_proj.weight"));
    const nb_real *bo = nb_value(g, nb_find(g, "attn.out_proj.bias"));
    CHECK(wi && bi && wo && bo);
    double *want = malloc((size_t)T * D * sizeof *want), err = 0;
    for (int b = 0; b < B && wi && bi && wo && bo; b++) {
        size_t off = (size_t)b * T * D;
        reference_attention(nb_value(g, x) + off, T, D, H, causal, wi, bi, wo, bo, want);
        for (int k = 0; k < T * D; k++) err = fmax(err, fabs(nb_value(g, y)[off + k] - want[k]));
    }
    free(want);
    CHECKF(err < 1e-12, "attention B=%d T=%d D=%d H=%d causal=%d: forward differs by %g", B, T,
           D, H, causal, err);
    size_t params = (size_t)3 * D * D + 3 * D + (size_t)D * D + D;
    char what[96];
    snprintf(what, sizeof what, "attention B=%d T=%d D=%d H=%d causal=%d", B, T, D, H, causal);
    check_grads(what, g, loss, params + (size_t)B * T * D);
    nb_graph_free(g);
}

/* Causal: changing the last position changes no output before it. */
static void test_causal_no_peeking(void) {
    nb_graph *g = nb_graph_new();
    int T = 5, D = 4, sd[2] = {T, D};
    nb_node x = nb_input(g, "x", 2, sd);
    nb_node y = nb_attention(g, x, 2, 1, "attn");
    REQUIRE_OK(nb_graph_status(g));
    randomise_params(g, 9);
    nb_real v[20], before[20];
    fill(v, 20, 4, 1.0);
    CHECK_OK(nb_set_input(g, x, v, 1));
    CHECK_OK(nb_forward(g, y));
    memcpy(before, nb_value(g, y), sizeof before);
    for (int k = 0; k < D; k++) v[(T - 1) * D + k] += (nb_real)3;
    CHECK_OK(nb_set_input(g, x, v, 1));
    CHECK_OK(nb_forward(g, y));
    const nb_real *after = nb_value(g, y);
    int same_before = 1, last_changed = 0;
    for (int k = 0; k < (T - 1) * D; k++) same_before &= after[k] == before[k];
    for (int k = (T - 1) * D; k < T * D; k++) last_changed |= after[k] != before[k];
    CHECK(same_before && last_changed);
    nb_graph_free(g);
}

/* dense, layer norm, gelu and add on [B, T, D]: dense is one product over
 * the B*T rows, layer norm normalises each position's D values. */
static void test_ops_3d(void) {
    nb_graph *g = nb_graph_new();
    int T = 3, D = 4, sd[2] = {T, D};
    nb_node x = nb_input(g, "x", 2, sd), wy = nb_input(g, "wy", 2, sd);
    nb_node h = nb_dense(g, x, 6, "up", NULL);
    h = nb_gelu(g, h, 0);
    h = nb_dense(g, h, D, "down", NULL);
    h = nb_layer_norm(g, nb_add(g, h, x), 1, "ln", NULL);
    nb_node loss = nb_sum(g, nb_mul(g, h, wy));
    REQUIRE_OK(nb_graph_status(g));
    int ndim, dims[NB_MAX_DIMS];
    nb_node up = nb_find(g, "up");
    CHECK_OK(nb_node_shape(g, up, &ndim, dims));
    CHECKF(ndim == 3 && dims[1] == T && dims[2] == 6, "dense on [B, 3, 4] gave %d dims", ndim);
    randomise_params(g, 21);
    set_random(g, x, 2, 22);
    set_random(g, wy, 2, 23);
    CHECK_OK(nb_requires_grad(g, x, 1));
    /* the dense layer applies the same map to every position */
    CHECK_OK(nb_forward(g, loss));
    const nb_real *xv = nb_value(g, x), *uv = nb_value(g, up);
    const nb_real *w = nb_value(g, nb_find(g, "up.weight")), *b = nb_value(g, nb_find(g, "up.bias"));
    double err = 0;
    for (int r = 0; r < 2 * T; r++)
        for (int o = 0; o < 6; o++) {
            double acc = b[o];
            for (int i = 0; i < D; i++) acc += w[o * D + i] * xv[r * D + i];
            err = fmax(err, fabs(acc - uv[r * 6 + o]));
        }
    CHECKF(err < 1e-12, "dense on [B, T, D] differs by %g", err);
    check_grads("dense, gelu, add, layer norm on [B, T, D]", g, loss,
                (size_t)(6 * 4 + 6) + (4 * 6 + 4) + (4 + 4) + 2 * T * D);
    nb_graph_free(g);
}

/* A pre-LN transformer block as a model file: it builds, has the expected
 * parameters and passes the gradient check end to end. */
static const char *const BLOCK =
    "x = input 4 8\n"
    "layernorm\n"
    "attention 2 causal=true\n"
    "h = add @x\n"
    "layernorm\n"
    "dense 16\n"
    "gelu\n"
    "dense 8\n"
    "add @h\n"
    "loss mse\n";

static void test_block_model(void) {
    nb_model m;
    nb_status s = nb_model_parse(BLOCK, "block.nn", &m);
    CHECKF(s == NB_OK, "block: %s", nb_last_error());
    if (s != NB_OK) return;
    nb_graph *g = m.graph;
    CHECK(nb_find(g, "1.in_proj_weight") != NB_NONE && nb_find(g, "1.out_proj.bias") != NB_NONE);
    randomise_params(g, 31);
    set_random(g, m.input, 2, 32);
    set_random(g, m.target, 2, 33);
    size_t params = nb_param_count(g);
    CHECKF(params == 2 * 16 + (3 * 64 + 24 + 64 + 8) + (16 * 8 + 16) + (8 * 16 + 8),
           "block has %zu parameters", params);
    check_grads("pre-LN block", g, m.loss, params);
    nb_model_free(&m);
}

/* The block trains: on a causal task (each position's target is the mean
 * of the inputs up to it), 40 Adam steps cut the loss at least in half. */
static void test_block_trains(void) {
    enum { N = 64, T = 4, D = 8 };
    static nb_real xs[N * T * D], ys[N * T * D];
    fill(xs, N * T * D, 41, 1.0);
    for (int n = 0; n < N; n++)
        for (int t = 0; t < T; t++)
            for (int d = 0; d < D; d++) {
                double acc = 0;
                for (int u = 0; u <= t; u++) acc += xs[(n * T + u) * D + d];
                ys[(n * T + t) * D + d] = (nb_real)(acc / (t + 1));
            }
    nb_model m;
    REQUIRE_OK(nb_model_parse(BLOCK, "block.nn", &m));
    nb_rng r;
    nb_rng_seed(&r, 42);
    CHECK_OK(nb_graph_init(m.graph, &r));
    nb_data data = test_data(xs, ys, N, T * D, T * D);
    double before = 0, after = 0;
    CHECK_OK(nb_evaluate(m.graph, m.input, m.target, m.loss, NB_NONE, &data, 16, &before, NULL));
    nb_fit_config cfg = nb_fit_defaults(m.input, m.target, m.loss, NB_NONE);
    cfg.optimizer = test_optim(m.graph, NB_OPT_ADAM, 1e-2);
    cfg.epochs = 10;
    cfg.batch_size = 16;
    CHECK_OK(nb_fit(m.graph, &cfg, &data, NULL, NULL));
    CHECK_OK(nb_evaluate(m.graph, m.input, m.target, m.loss, NB_NONE, &data, 16, &after, NULL));
    CHECKF(after < 0.5 * before, "pre-LN block: loss %g -> %g after 40 steps", before, after);
    nb_model_free(&m);
    test_free_optims();
}

static void test_errors(void) {
    nb_graph *g = nb_graph_new();
    int sd[2] = {4, 6}, flat = 6;
    nb_node x = nb_input(g, "x", 2, sd);
    CHECK(nb_attention(g, x, 4, 0, "a") == NB_NONE);
    CHECK_MSG(nb_last_error(), "attention: 4 heads do not divide the model dimension D = 6 of "
                               "input 'x' [1, 4, 6] (D must be a multiple of the number of heads)");
    nb_graph_free(g);
    g = nb_graph_new();
    x = nb_input(g, "x", 1, &flat);
    CHECK(nb_attention(g, x, 2, 0, "a") == NB_NONE);
    CHECK_MSG(nb_last_error(), "attention: input 'x' has shape [1, 6]; expected [batch, T, D]");
    nb_graph_free(g);
    g = nb_graph_new();
    int odd[2] = {4, 7};
    x = nb_input(g, "x", 2, odd);
    CHECK(nb_dot_product_attention(g, x, 1, 0) == NB_NONE);
    CHECK_MSG(nb_last_error(), "attention: input 'x' has shape [1, 4, 7]; expected the packed "
                               "projections [batch, T, 3 D] (q, k, v)");
    nb_graph_free(g);
    nb_model m;
    CHECK(nb_model_parse("input 4 6\nattention 4\n", "m.nn", &m) != NB_OK);
    CHECK_MSG(nb_last_error(), "m.nn:2: attention: 4 heads do not divide the model dimension "
                               "D = 6 of input 'input' [1, 4, 6] (D must be a multiple of the "
                               "number of heads)");
    CHECK(nb_model_parse("input 4 6\nattention 2 causal=yes\n", "m.nn", &m) != NB_OK);
    CHECK_MSG(nb_last_error(), "m.nn:2: attention: option causal=yes must be true or false");
    CHECK(nb_model_parse("input 4 6\nattention\n", "m.nn", &m) != NB_OK);
    CHECK_MSG(nb_last_error(), "m.nn:2: attention: give the number of heads, e.g. "
                               "'attention 4 causal=true'");
}

int main(void) {
    test_attention(2, 4, 6, 2, 0);
    test_attention(2, 4, 6, 2, 1);
    test_attention(1, 5, 6, 3, 1);
    test_attention(3, 1, 4, 1, 0);
    test_causal_no_peeking();
    test_ops_3d();
    test_block_model();
    test_block_trains();
    test_errors();
    TEST_END();
}
