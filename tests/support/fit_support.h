/* Training set-ups for the tests: data sets that view the test's own
 * arrays, and optimisers released together at the end of the program. */
#ifndef NB_FIT_SUPPORT_H
#define NB_FIT_SUPPORT_H

#include "nabla.h"

#include <string.h>

/* n samples of x_size reals in x and y_size targets in y, viewed in place
 * (the arrays stay the test's: never nb_data_free this). */
static inline nb_data test_data(const nb_real *x, const nb_real *y, size_t n, size_t x_size,
                                size_t y_size) {
    nb_data d;
    memset(&d, 0, sizeof d);
    d.n = n;
    d.ndim = 1;
    d.dims[0] = (int)x_size;
    d.sample_size = x_size;
    d.x_real = (nb_real *)x;
    d.y = (nb_real *)y;
    d.y_size = y_size;
    d.scale = 1;
    return d;
}

enum { TEST_MAX_OPTIMS = 256 };
static nb_optim *test_optims[TEST_MAX_OPTIMS];
static int test_n_optims;

/* An optimiser of the given kind at rate lr (< 0: the kind's default) for
 * g's parameters; freed by test_free_optims. */
static inline nb_optim *test_optim(nb_graph *g, nb_optim_kind kind, double lr) {
    nb_optim_config c = nb_optim_defaults(kind);
    if (lr >= 0) c.lr = lr;
    nb_optim *o = nb_optim_new(&c, nb_param_count(g));
    if (o && test_n_optims < TEST_MAX_OPTIMS) test_optims[test_n_optims++] = o;
    return o;
}

static inline void test_free_optims(void) {
    while (test_n_optims > 0) nb_optim_free(test_optims[--test_n_optims]);
}

#endif
