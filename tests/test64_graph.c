/* Core graph mechanics in double precision: forward values, reverse-mode
 * gradients over a DAG with fan-out and a skip connection, batch changes. */
#include "test.h"
#include "nabla.h"
#include "core/internal.h"

static void test_dense_values(void) {
    nb_graph *g = nb_graph_new();
    int in = 2;
    nb_node x = nb_input(g, "x", 1, &in);
    nb_node y = nb_dense(g, x, 3, "fc", NULL);
    CHECK_OK(nb_graph_status(g));
    nb_real *W = nb_value(g, nb_find(g, "fc.weight"));
    nb_real *b = nb_value(g, nb_find(g, "fc.bias"));
    for (int k = 0; k < 6; k++) W[k] = k + 1;  /* [[1,2],[3,4],[5,6]] */
    for (int k = 0; k < 3; k++) b[k] = 0.5 * k;
    nb_real xs[4] = {1, -1, 2, 0.5};
    CHECK_OK(nb_set_input(g, x, xs, 2));
    CHECK_OK(nb_forward(g, y));
    nb_real *v = nb_value(g, y);
    nb_real want[6] = {-1, -0.5, 0, 3, 8.5, 14};
    for (int k = 0; k < 6; k++) CHECK_CLOSE(v[k], want[k], 1e-12, 0);
    nb_graph_free(g);
}

/* loss = sum(tanh(dense(x)) * x2 + skip) where x feeds two ops (fan-out). */
static void test_gradcheck_dag(void) {
    nb_graph *g = nb_graph_new();
    int in = 3;
    nb_node x = nb_input(g, "x", 1, &in);
    nb_node h = nb_dense(g, x, 3, "a", NULL);
    nb_node h2 = nb_dense(g, h, 3, "b", NULL);
    nb_node skip = nb_add(g, h2, h);          /* h used twice */
    nb_node m = nb_mul(g, skip, x);            /* x used twice */
    nb_node l = nb_sum(g, nb_scale(g, m, 0.5));
    CHECK_OK(nb_graph_status(g));
    nb_rng r;
    nb_rng_seed(&r, 7);
    CHECK_OK(nb_graph_init(g, &r));
    nb_real xs[6] = {0.3, -0.7, 1.1, 0.2, 0.5, -1.3};
    CHECK_OK(nb_set_input(g, x, xs, 2));
    CHECK_OK(nb_requires_grad(g, x, 1));
    nb_gradcheck_report rep;
    CHECK_OK(nb_gradcheck(g, l, 1e-6, 1e-7, 1e-6, &rep));
    CHECKF(rep.failed == 0 && rep.checked == 6 + 12 + 12,
           "checked %zu failed %zu max err %g", rep.checked, rep.failed, rep.max_abs_err);
    nb_graph_free(g);
}

/* A bare parameter left on NB_INIT_DEFAULT: PyTorch's Linear init for a
 * matrix, zeros for a vector (no fan-in to scale by). */
static void test_default_init(void) {
    nb_graph *g = nb_graph_new();
    int wd[2] = {4, 9}, bd = 4;
    nb_node w = nb_param(g, "w", 2, wd, (nb_init){0});
    nb_node b = nb_param(g, "b", 1, &bd, (nb_init){0});
    nb_rng r;
    nb_rng_seed(&r, 1);
    CHECK_OK(nb_graph_init(g, &r));
    const nb_real *wv = nb_value(g, w), *bv = nb_value(g, b);
    int nonzero = 0;
    for (int k = 0; k < 36; k++) {
        CHECK(fabs(wv[k]) <= 1.0 / 3.0);
        nonzero += wv[k] != 0;
    }
    CHECK(nonzero == 36);
    for (int k = 0; k < 4; k++) CHECK(bv[k] == 0);
    nb_graph_free(g);
}

/* Many nodes: the node table moves while ops read their inputs' shapes
 * (found by fuzzing the model parser). */
static void test_many_nodes(void) {
    nb_graph *g = nb_graph_new();
    int dims[2] = {4, 4};
    nb_node x = nb_input(g, "x", 2, dims);
    for (int k = 0; k < 300; k++) x = nb_tanh(g, x);
    CHECK_OK(nb_graph_status(g));
    int ndim, got[NB_MAX_DIMS];
    CHECK_OK(nb_node_shape(g, x, &ndim, got));
    CHECK(ndim == 3 && got[1] == 4 && got[2] == 4);
    nb_graph_free(g);
}

/* The check can fail: an op whose backward is off by 1% is caught. */
static void square_forward(nb_graph *g, nb_node_t *n) {
    const nb_node_t *x = &g->nodes[n->in[0]];
    for (size_t k = 0; k < nb__numel(n); k++) n->val[k] = x->val[k] * x->val[k];
}
static void square_backward_wrong(nb_graph *g, nb_node_t *n) {
    nb_node_t *x = &g->nodes[n->in[0]];
    for (size_t k = 0; k < nb__numel(n); k++) x->grad[k] += 2.02 * x->val[k] * n->grad[k];
}
static const nb_op wrong_square = {.name = "wrong_square", .forward = square_forward,
                                   .backward = square_backward_wrong};

static void test_gradcheck_fails_on_wrong_gradient(void) {
    nb_graph *g = nb_graph_new();
    int in = 3;
    nb_node x = nb_input(g, "x", 1, &in);
    const nb_node_t *X = nb__node(g, x);
    nb_node sq = nb__add_node(g, &wrong_square, 1, &x, X->ndim, X->dims, X->batched);
    nb_node l = nb_sum(g, sq);
    CHECK_OK(nb_graph_status(g));
    nb_real xs[3] = {0.5, -1.5, 2};
    CHECK_OK(nb_set_input(g, x, xs, 1));
    CHECK_OK(nb_requires_grad(g, x, 1));
    nb_gradcheck_report rep;
    CHECK_OK(nb_gradcheck(g, l, 1e-6, 1e-5, 1e-3, &rep));
    CHECKF(rep.failed == 3 && rep.checked == 3, "checked %zu failed %zu", rep.checked, rep.failed);
    CHECK_CLOSE(rep.worst_analytic, 2.02 * 2, 1e-12, 0); /* the largest error: x = 2 */
    nb_graph_free(g);
}

/* A ReLU input 3e-7 above its kink: the difference over +-1e-6 straddles
 * the kink (it gives 0.65, not 1); the check measures again with a smaller
 * step and passes, as the gradient is right. */
static void test_gradcheck_kink_within_step(void) {
    nb_graph *g = nb_graph_new();
    int in = 2;
    nb_node x = nb_input(g, "x", 1, &in);
    nb_node l = nb_sum(g, nb_relu(g, x));
    CHECK_OK(nb_graph_status(g));
    nb_real xs[2] = {3e-7, 0.5};
    CHECK_OK(nb_set_input(g, x, xs, 1));
    CHECK_OK(nb_requires_grad(g, x, 1));
    nb_gradcheck_report rep;
    CHECK_OK(nb_gradcheck(g, l, 1e-6, 1e-5, 1e-3, &rep));
    CHECKF(rep.failed == 0 && rep.checked == 2, "checked %zu failed %zu worst numeric %g",
           rep.checked, rep.failed, rep.worst_numeric);
    nb_graph_free(g);
}

int main(void) {
    test_dense_values();
    test_gradcheck_dag();
    test_default_init();
    test_many_nodes();
    test_gradcheck_fails_on_wrong_gradient();
    test_gradcheck_kink_within_step();
    TEST_END();
}
