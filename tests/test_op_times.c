/* Per-op timing (nb_graph_time_ops, nb_node_times):
 *   - off, nb_node_times says so, and nothing is recorded;
 *   - on, an MLP's dense layers get forward and backward time, leaves none,
 *     and a relu computed in its product's store none of its own;
 *   - the totals grow with each pass and start again from zero when timing
 *     is switched on again;
 *   - a node added after timing started, a node that does not exist and a
 *     NULL graph are errors that say so. */
#include "nabla.h"
#include "test.h"
#include "kernels/gemm.h" /* nb_gemm_dense_fuses_relu */

#include <string.h>

static double total(const nb_graph *g, nb_node n, int backward) {
    double f = -1, b = -1;
    if (nb_node_times(g, n, &f, &b) != NB_OK) return -1;
    return backward ? b : f;
}

int main(void) {
    nb_graph *g = nb_graph_new();
    int in_dims[1] = {256};
    nb_node x = nb_input(g, "x", 1, in_dims), t = nb_input(g, "t", 0, NULL);
    nb_node h = nb_dense(g, x, 256, "h", NULL);
    nb_node a = nb_relu(g, h);
    nb_node y = nb_dense(g, a, 10, "y", NULL);
    nb_node loss = nb_cross_entropy(g, y, t, 0);
    CHECK_OK(nb_graph_status(g));
    CHECK_OK(nb_graph_set_batch(g, 64));
    nb_rng r;
    nb_rng_seed(&r, 5);
    CHECK_OK(nb_graph_init(g, &r));
    nb_real *xv = nb_value(g, x), *tv = nb_value(g, t);
    for (int k = 0; k < 64 * 256; k++) xv[k] = (nb_real)nb_rng_uniform(&r);
    for (int k = 0; k < 64; k++) tv[k] = (nb_real)(k % 10);

    /* off */
    CHECK(nb_node_times(g, h, NULL, NULL) == NB_ERR_ARG &&
          strstr(nb_last_error(), "timing is off"));
    CHECK_OK(nb_forward(g, loss));

    /* on: two passes */
    CHECK_OK(nb_graph_time_ops(g, 1));
    CHECK(total(g, h, 0) == 0 && total(g, h, 1) == 0);
    CHECK_OK(nb_forward(g, loss));
    CHECK_OK(nb_backward(g, loss));
    double once_f = total(g, h, 0), once_b = total(g, h, 1);
    CHECKF(once_f > 0 && once_b > 0, "dense forward %g s, backward %g s", once_f, once_b);
    CHECK(total(g, y, 0) > 0 && total(g, loss, 0) > 0 && total(g, loss, 1) > 0);
    CHECK(total(g, x, 0) == 0 && total(g, x, 1) == 0); /* a leaf runs no op */
    if (nb_gemm_dense_fuses_relu(NB_PRECISION_FP32))   /* the product's store did it */
        CHECKF(total(g, a, 0) == 0, "fused relu forward %g s", total(g, a, 0));
    CHECK_OK(nb_forward(g, loss));
    CHECK_OK(nb_backward(g, loss));
    CHECK(total(g, h, 0) > once_f && total(g, h, 1) > once_b);

    /* on again: from zero */
    CHECK_OK(nb_graph_time_ops(g, 1));
    CHECK(total(g, h, 0) == 0 && total(g, h, 1) == 0);

    /* errors */
    nb_node late = nb_scale(g, loss, 2);
    CHECK(nb_node_times(g, late, NULL, NULL) == NB_ERR_ARG &&
          strstr(nb_last_error(), "was not in the graph when timing started"));
    CHECK(nb_node_times(g, 999, NULL, NULL) == NB_ERR_ARG);
    CHECK(nb_node_times(NULL, h, NULL, NULL) == NB_ERR_ARG);
    CHECK(nb_graph_time_ops(NULL, 1) == NB_ERR_ARG);

    /* off: freed, and said so */
    CHECK_OK(nb_graph_time_ops(g, 0));
    CHECK(nb_node_times(g, h, NULL, NULL) == NB_ERR_ARG);
    nb_graph_free(g);
    TEST_END();
}
