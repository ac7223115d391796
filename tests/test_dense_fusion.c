/* A dense layer whose only consumer is a relu adds its bias and applies the
 * relu as the forward product stores each tile (nb_gemm_dense, fusion.c);
 * the relu's backward runs as before.  And a flatten of an input without a
 * gradient shares the input's memory.
 *
 * Each network is built twice, once as it is and once with a second,
 * unused consumer of every dense layer and of the input, which keeps it
 * unfused and the flatten copying; the two must agree bit for bit, on every
 * kernel (only nabla's AVX-512 and AVX2 ones fuse), on 1 and 2 threads, at batch 1
 * (the matrix-vector path), 5 (a partial row block) and 40 (full row blocks
 * and a partial one):
 *   - the loss, every parameter gradient, every relu's value and gradient;
 *   - the dense layers' own values, which the fused pass does not write
 *     (their memory is NaN-filled first and must still hold NaN) but
 *     nb_value fills in;
 *   - a NaN in the input stays NaN through the fused relu.
 * nb_gemm_dense itself is checked against its definition (bias prefilled,
 * product added, relu pass after) on many shapes; and nb_graph_fill_fused
 * keeps the layers' own values those of the pass after the parameters
 * change.
 * The first layer has 300 inputs (two K blocks of the kernel: the bias goes
 * with the first, the relu with the last) and 37 outputs (a full and a
 * partial 32-column panel).  test64_dense_fusion runs the same in the double
 * build, where nothing fuses. */
#include "nabla.h"
#include "test.h"
#include "core/internal.h"
#include "kernels/gemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { LAYERS = 3 };

typedef struct net {
    nb_graph *g;
    nb_node x, flat, t, loss;
    nb_node dense[LAYERS], relu[LAYERS]; /* the last layer has no relu */
} net;

/* x [3, 10, 10] -> flatten -> dense 37 -> relu -> dense 40 (no bias) -> relu
 * -> dense 4 -> cross-entropy. */
static net build(int blocked) {
    net n = {.g = nb_graph_new()};
    nb_graph *g = n.g;
    int xd[3] = {3, 10, 10};
    n.x = nb_input(g, "x", 3, xd);
    n.flat = nb_flatten(g, n.x);
    nb_dense_opts no_bias = {.no_bias = 1};
    n.dense[0] = nb_dense(g, n.flat, 37, "d1", NULL);
    n.relu[0] = nb_relu(g, n.dense[0]);
    n.dense[1] = nb_dense(g, n.relu[0], 40, "d2", &no_bias);
    n.relu[1] = nb_relu(g, n.dense[1]);
    n.dense[2] = nb_dense(g, n.relu[1], 4, "d3", NULL);
    n.relu[2] = NB_NONE;
    n.t = nb_input(g, "t", 0, NULL);
    n.loss = nb_cross_entropy(g, n.dense[2], n.t, 0);
    for (int l = 0; blocked && l < LAYERS; l++) nb_scale(g, n.dense[l], 2);
    if (blocked) nb_scale(g, n.x, 2);
    nb_test_init_params(g, 11);
    return n;
}

/* Inputs of both signs, so that each relu has zeros and positives; a NaN
 * in the last sample's first input when nan. */
static void set_batch(net *n, int batch, int nan) {
    nb_graph_set_batch(n->g, batch);
    nb_real *x = nb_value(n->g, n->x), *t = nb_value(n->g, n->t);
    size_t len = nb_node_numel(n->g, n->x);
    for (size_t k = 0; k < len; k++) x[k] = (nb_real)sin(0.61 * (double)k + 0.3);
    if (nan) x[len - 300] = (nb_real)NAN;
    for (int b = 0; b < batch; b++) t[b] = (nb_real)(b % 4);
}

/* Equal, with NaN where the other has NaN (payloads aside). */
static int same_or_nan(const nb_real *a, const nb_real *b, size_t len) {
    for (size_t k = 0; k < len; k++)
        if (a[k] != a[k] ? b[k] == b[k] : memcmp(&a[k], &b[k], sizeof a[k]) != 0) return 0;
    return 1;
}

static int fuses_here(int kernel) {
    return (kernel == NB__GEMM_AVX512 || kernel == NB__GEMM_AVX2) && nb__gemm_kernel() == kernel &&
           nb_gemm_dense_fuses_relu(NB_PRECISION_FP32);
}

static void compare(int kernel, int threads, int batch) {
    nb__gemm_use(kernel);
    nb_set_threads(threads);
    net f = build(0), u = build(1);
    char what[64];
    snprintf(what, sizeof what, "kernel %d, %d threads, batch %d", kernel, threads, batch);
    set_batch(&f, batch, 0); /* plans the arena: the fusion and the views */
    set_batch(&u, batch, 0);
    int fuse = fuses_here(kernel);
    for (int l = 0; l < LAYERS; l++)
        CHECKF((f.g->nodes[f.dense[l]].epilogue != 0) == (l < 2) &&
                   !u.g->nodes[u.dense[l]].epilogue,
               "%s: dense %d pairs with its relu: %d / %d", what, l,
               f.g->nodes[f.dense[l]].epilogue, u.g->nodes[u.dense[l]].epilogue);
    CHECKF(f.g->nodes[f.flat].val == f.g->nodes[f.x].val &&
               u.g->nodes[u.flat].val != u.g->nodes[u.x].val,
           "%s: the flatten shares the input's memory: %d / %d", what,
           f.g->nodes[f.flat].val == f.g->nodes[f.x].val,
           u.g->nodes[u.flat].val == u.g->nodes[u.x].val);
    for (int l = 0; l < 2; l++) {
        nb_node_t *d = &f.g->nodes[f.dense[l]];
        for (size_t k = 0; k < nb__numel(d); k++) d->val[k] = (nb_real)NAN;
    }
    REQUIRE_OK(nb_forward(f.g, f.loss));
    REQUIRE_OK(nb_forward(u.g, u.loss));
    REQUIRE_OK(nb_backward_zeroed(f.g, f.loss));
    REQUIRE_OK(nb_backward_zeroed(u.g, u.loss));
    for (int l = 0; l < 2; l++) {
        nb_node_t *d = &f.g->nodes[f.dense[l]];
        CHECKF(nb_test_all_nan(d->val, nb__numel(d)) == fuse,
               "%s: dense %d's own value %s written in the forward pass", what, l,
               fuse ? "was" : "was not");
    }
    CHECKF(nb_test_same_bits(nb_value(f.g, f.loss), nb_value(u.g, u.loss), 1),
           "%s: loss %.9g against %.9g", what, (double)nb_value(f.g, f.loss)[0],
           (double)nb_value(u.g, u.loss)[0]);
    size_t np = nb_param_count(f.g);
    CHECKF(np == nb_param_count(u.g) && nb_test_same_bits(nb_grads(f.g), nb_grads(u.g), np),
           "%s: parameter gradients differ", what);
    for (int l = 0; l < LAYERS; l++) {
        size_t len = nb_node_numel(f.g, f.dense[l]);
        if (f.relu[l] != NB_NONE) {
            CHECKF(nb_test_same_bits(nb_value(f.g, f.relu[l]), nb_value(u.g, u.relu[l]), len),
                   "%s: relu %d's value differs", what, l);
            CHECKF(nb_test_same_bits(nb_grad(f.g, f.relu[l]), nb_grad(u.g, u.relu[l]), len),
                   "%s: relu %d's gradient differs", what, l);
        }
        CHECKF(nb_test_same_bits(nb_grad(f.g, f.dense[l]), nb_grad(u.g, u.dense[l]), len),
               "%s: dense %d's gradient differs", what, l);
        CHECKF(nb_test_same_bits(nb_value(f.g, f.dense[l]), nb_value(u.g, u.dense[l]), len),
               "%s: dense %d's value, filled on request, differs", what, l);
    }

    /* a NaN input: NaN through the relu, the same elsewhere */
    set_batch(&f, batch, 1);
    set_batch(&u, batch, 1);
    nb_forward(f.g, f.loss);
    nb_forward(u.g, u.loss);
    size_t len = nb_node_numel(f.g, f.relu[0]);
    const nb_real *rf = nb_value(f.g, f.relu[0]), *ru = nb_value(u.g, u.relu[0]);
    CHECKF(same_or_nan(rf, ru, len) && rf[len - 1] != rf[len - 1],
           "%s: relu 0 with a NaN input differs (last value %g / %g)", what,
           (double)rf[len - 1], (double)ru[len - 1]);
    nb_graph_free(f.g);
    nb_graph_free(u.g);
}

/* nb_gemm_dense against its definition: Y prefilled with the bias, the
 * product added by nb_gemm (beta 1), then a relu pass; bit for bit.  Shapes
 * with one and two K blocks, full and partial row blocks and column panels,
 * the matrix-vector path (M <= 4). */
static void test_dense_product(int kernel, int threads) {
    const int shapes[][3] = {{40, 37, 300}, {13, 70, 256}, {5, 33, 10}, {1, 37, 300},
                             {3, 16, 5}, {130, 64, 513}};
    nb__gemm_use(kernel);
    nb_set_threads(threads);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int variant = 0; variant < 4; variant++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            int with_bias = variant & 1, relu = variant >> 1;
            nb_real *x = malloc((size_t)M * K * sizeof *x), *w = malloc((size_t)N * K * sizeof *w);
            nb_real *b = malloc((size_t)N * sizeof *b), *y = malloc((size_t)M * N * sizeof *y);
            nb_real *ref = malloc((size_t)M * N * sizeof *ref);
            for (size_t k = 0; k < (size_t)M * K; k++) x[k] = (nb_real)sin(0.37 * (double)k);
            for (size_t k = 0; k < (size_t)N * K; k++) w[k] = (nb_real)cos(0.53 * (double)k);
            for (int j = 0; j < N; j++) b[j] = (nb_real)(0.25 * sin(1.7 * j));
            const nb_real *bias = with_bias ? b : NULL;
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) ref[(size_t)i * N + j] = bias ? bias[j] : 0;
            nb_gemm(0, 1, M, N, K, 1, x, K, w, K, bias ? 1 : 0, ref, N);
            for (size_t k = 0; relu && k < (size_t)M * N; k++) ref[k] = nb__relu(ref[k]);
            for (size_t k = 0; k < (size_t)M * N; k++) y[k] = (nb_real)NAN;
            nb_gemm_dense(NB_PRECISION_FP32, M, N, K, x, w, bias, relu, y);
            CHECKF(nb_test_same_bits(y, ref, (size_t)M * N),
                   "kernel %d, %d threads: dense %d x %d x %d, bias %d, relu %d differs from "
                   "its definition", kernel, threads, M, N, K, with_bias, relu);
            free(x), free(w), free(b), free(y), free(ref);
        }
}

/* Parameters changed after backward (an optimiser step): what the fused
 * pass left unwritten reads as the unfused network's when it was filled in
 * before the change (nb_graph_fill_fused), and is computed from the new
 * parameters when it was not (as documented at nb_value). */
static void test_fill_before_step(void) {
    nb__gemm_use(NB__GEMM_AVX512);
    nb_set_threads(2);
    net f = build(0), u = build(1), late = build(0);
    net *all[3] = {&f, &u, &late};
    for (int k = 0; k < 3; k++) {
        set_batch(all[k], 5, 0);
        REQUIRE_OK(nb_forward(all[k]->g, all[k]->loss));
        REQUIRE_OK(nb_backward_zeroed(all[k]->g, all[k]->loss));
    }
    REQUIRE_OK(nb_graph_fill_fused(f.g));
    for (int k = 0; k < 3; k++) nb_test_step_params(all[k]->g);
    for (int l = 0; l < 2; l++) {
        size_t len = nb_node_numel(f.g, f.dense[l]);
        CHECKF(nb_test_same_bits(nb_value(f.g, f.dense[l]), nb_value(u.g, u.dense[l]), len),
               "dense %d's value, filled before the parameters changed, differs", l);
        CHECKF(!fuses_here(NB__GEMM_AVX512) ||
                   !nb_test_same_bits(nb_value(late.g, late.dense[l]), nb_value(u.g, u.dense[l]),
                                      len),
               "dense %d's value, filled after the parameters changed, should be computed from "
               "the new ones", l);
    }
    CHECK(nb_graph_fill_fused(NULL) == NB_ERR_ARG);
    for (int k = 0; k < 3; k++) nb_graph_free(all[k]->g);
}

/* An input that needs its gradient keeps its own memory: the flatten's
 * gradient must not be written into it. */
static void test_input_with_gradient(void) {
    net n = build(0);
    nb_requires_grad(n.g, n.x, 1);
    set_batch(&n, 2, 0);
    CHECK(n.g->nodes[n.flat].val != n.g->nodes[n.x].val);
    REQUIRE_OK(nb_forward(n.g, n.loss));
    REQUIRE_OK(nb_backward(n.g, n.loss));
    size_t len = nb_node_numel(n.g, n.x);
    CHECK(nb_test_same_bits(nb_grad(n.g, n.x), nb_grad(n.g, n.flat), len));
    nb_graph_free(n.g);
}

int main(void) {
    const int kernels[] = {NB__GEMM_AVX512, NB__GEMM_AVX2, NB__GEMM_OPENBLAS, NB__GEMM_PORTABLE};
    const int batches[] = {1, 5, 40};
    for (int k = 0; k < 4; k++)
        for (int threads = 1; threads <= 2; threads++)
            for (int b = 0; b < 3; b++) compare(kernels[k], threads, batches[b]);
    for (int k = 0; k < 4; k++)
        for (int threads = 1; threads <= 2; threads++) test_dense_product(kernels[k], threads);
    test_input_with_gradient();
    test_fill_before_step();
    TEST_END();
}
