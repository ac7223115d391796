/* Max pooling 2x2 / stride 2 in the float build (the vectorised path on CPUs
 * with AVX-512) against a plain reference written from the definition:
 * values with many ties, NaNs and -inf, widths on both sides of 16 and 32
 * outputs and of 8 (two rows at a time), odd sizes; forward values, argmax
 * routing of the gradient; and the loop that writes the values alone (an
 * eval-mode convolution's folded pool, nb__maxpool_planes_values). */
#include "nabla.h"
#include "test.h"
#include "core/internal.h"

#include <stdlib.h>

static unsigned long long state = 99;
static int next(int n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (int)((state >> 33) % (unsigned long long)n);
}

/* Reference: windows in row-major order, strictly greater wins, NaN takes over. */
static void reference(const nb_real *x, int H, int W, nb_real *y, int *arg) {
    int Ho = H / 2, Wo = W / 2;
    for (int oh = 0; oh < Ho; oh++)
        for (int ow = 0; ow < Wo; ow++) {
            nb_real best = -INFINITY;
            int at = 2 * oh * W + 2 * ow;
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++) {
                    int k = (2 * oh + i) * W + 2 * ow + j;
                    if (x[k] > best || x[k] != x[k]) best = x[k], at = k;
                }
            y[oh * Wo + ow] = best;
            arg[oh * Wo + ow] = at;
        }
}

static void check_size(int H, int W) {
    int Ho = H / 2, Wo = W / 2;
    nb_real *x = malloc((size_t)H * W * sizeof *x), *y = malloc((size_t)Ho * Wo * sizeof *y);
    int *arg = malloc((size_t)Ho * Wo * sizeof *arg);
    for (int k = 0; k < H * W; k++) {
        int r = next(20);
        x[k] = r == 0 ? (nb_real)NAN : r == 1 ? -INFINITY : (nb_real)next(4); /* many ties */
    }
    reference(x, H, W, y, arg);
    nb_graph *g = nb_graph_new();
    int xd[3] = {1, H, W};
    nb_node xi = nb_input(g, "x", 3, xd);
    CHECK_OK(nb_requires_grad(g, xi, 1));
    nb_node p = nb_max_pool2d(g, xi, 2, 2, 0, 0, 0, 0, 0);
    nb_node loss = nb_sum(g, p);
    CHECK_OK(nb_set_input(g, xi, x, 1));
    nb_zero_grad(g);
    nb_forward(g, loss); /* the sum is NaN when a window is */
    nb_backward(g, loss);
    const nb_real *v = nb_value(g, p), *dx = nb_grad(g, xi);
    int bad_value = 0, bad_grad = 0;
    for (int k = 0; k < Ho * Wo; k++)
        if (!(v[k] == y[k] || (v[k] != v[k] && y[k] != y[k]))) bad_value++;
    for (int k = 0; k < H * W; k++) {
        int routed = 0;
        for (int o = 0; o < Ho * Wo; o++) routed += arg[o] == k;
        if (dx[k] != (nb_real)routed) bad_grad++;
    }
    CHECKF(bad_value == 0, "%dx%d: %d outputs differ from the reference", H, W, bad_value);
    CHECKF(bad_grad == 0, "%dx%d: %d gradients routed differently", H, W, bad_grad);

    /* the values alone, read from a copy of x, into a cleared output */
    nb_real *copy = malloc((size_t)H * W * sizeof *copy);
    for (int k = 0; k < H * W; k++) copy[k] = x[k];
    nb_node_t *pn = &g->nodes[p];
    for (int k = 0; k < Ho * Wo; k++) pn->val[k] = 42;
    nb__maxpool_planes_values(g, pn, 0, 1, copy, (size_t)H * W);
    bad_value = 0;
    for (int k = 0; k < Ho * Wo; k++)
        if (!(pn->val[k] == y[k] || (pn->val[k] != pn->val[k] && y[k] != y[k]))) bad_value++;
    CHECKF(bad_value == 0, "%dx%d: %d values-only outputs differ from the reference", H, W,
           bad_value);
    free(copy);
    nb_graph_free(g);
    free(x), free(y), free(arg);
}

int main(void) {
    static const int sizes[][2] = {{2, 2}, {4, 30}, {5, 33}, {6, 34}, {3, 64}, {8, 65}, {26, 26},
                                   {11, 11}, {2, 100}, {16, 16}, {7, 9}, {4, 3}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (int rep = 0; rep < 5; rep++) check_size(sizes[i][0], sizes[i][1]);
    TEST_END();
}
