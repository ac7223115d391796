/* Work split over threads: activations (slices), convolution (sample chunks
 * with a private weight gradient per part) and pooling must give the same
 * result on 2 threads as on 1 — bit for bit where each value is computed the
 * same way, and to rounding for the weight gradient, whose per-part sums are
 * added in a different grouping.  Then a transformer block (layer norm and
 * attention split by rows and heads, cross-entropy by chunks of rows) at a
 * size that splits. */
#include "nabla.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef nb_node (*act_fn)(nb_graph *, nb_node);

/* A model large enough to be split: x [B, 3, 30, 30] -> conv 16 3x3 pad 1 ->
 * activation -> max pool 2 -> sum * weights (so every output gets its own
 * gradient). */
typedef struct run {
    nb_real *y, *dx, *dw, *db;
    size_t ny, nx, nw, nb;
} run;

static void free_run(run *r) {
    free(r->y), free(r->dx), free(r->dw), free(r->db);
}

static nb_real *copy(const nb_real *p, size_t n) {
    nb_real *c = malloc(n * sizeof *c);
    memcpy(c, p, n * sizeof *c);
    return c;
}

static run forward_backward(int threads, act_fn act, const nb_real *xdata, int B) {
    run r;
    memset(&r, 0, sizeof r);
    CHECK_OK(nb_set_threads(threads));
    nb_graph *g = nb_graph_new();
    int xd[3] = {3, 30, 30};
    nb_node x = nb_input(g, "x", 3, xd);
    CHECK_OK(nb_requires_grad(g, x, 1));
    nb_node c = nb_conv2d_layer(g, x, 16, 3, 3, &(nb_conv_opts){.pad_h = 1, .pad_w = 1}, "conv");
    nb_node a = act(g, c);
    nb_node p = nb_max_pool2d(g, a, 2, 2, 0, 0, 0, 0, 0);
    nb_node loss = nb_sum(g, nb_mul(g, p, p));
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    CHECK_OK(nb_graph_init(g, &rng));
    CHECK_OK(nb_set_input(g, x, xdata, B));
    nb_zero_grad(g);
    CHECK_OK(nb_forward(g, loss));
    CHECK_OK(nb_backward(g, loss));
    r.ny = nb_node_numel(g, a);
    r.y = copy(nb_value(g, a), r.ny);
    r.nx = nb_node_numel(g, x);
    r.dx = copy(nb_grad(g, x), r.nx);
    nb_node w = nb_find(g, "conv.weight"), b = nb_find(g, "conv.bias");
    r.nw = nb_node_numel(g, w);
    r.dw = copy(nb_grad(g, w), r.nw);
    r.nb = nb_node_numel(g, b);
    r.db = copy(nb_grad(g, b), r.nb);
    nb_graph_free(g);
    return r;
}

static void compare(const char *what, act_fn act, const nb_real *x, int B) {
    run one = forward_backward(1, act, x, B), two = forward_backward(2, act, x, B);
    CHECKF(memcmp(one.y, two.y, one.ny * sizeof *one.y) == 0, "%s: activations differ", what);
    CHECKF(memcmp(one.dx, two.dx, one.nx * sizeof *one.dx) == 0, "%s: input gradients differ",
           what);
    CHECKF(memcmp(one.db, two.db, one.nb * sizeof *one.db) == 0, "%s: bias gradients differ",
           what);
    double worst = 0, scale = 0;
    for (size_t k = 0; k < one.nw; k++) {
        double d = fabs((double)one.dw[k] - (double)two.dw[k]);
        if (d > worst) worst = d;
        if (fabs((double)one.dw[k]) > scale) scale = fabs((double)one.dw[k]);
    }
    CHECKF(worst <= 1e-5 * scale, "%s: weight gradients differ by %g (largest %g)", what, worst,
           scale);
    free_run(&one);
    free_run(&two);
}

/* The loss and every parameter's gradient of a small transformer block on
 * fixed token windows, at the given thread count. */
static nb_real *transformer_grads(int threads, size_t *n) {
    static const char *text = "input 16 tokens=27\ntok = embedding 32\nx0 = pos_embedding\n"
                              "ln = layernorm\nattn = attention 4 causal=true\nx1 = add @x0\n"
                              "lnf = layernorm\nhead = dense 27\nloss cross_entropy\n";
    enum { B = 64, T = 16 };
    nb_model m;
    CHECK_OK(nb_set_threads(threads));
    CHECK_OK(nb_model_parse(text, "block", &m));
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    CHECK_OK(nb_graph_init(m.graph, &rng));
    nb_real ids[B * T], next[B * T];
    for (int k = 0; k < B * T; k++) ids[k] = (nb_real)(k * 7 % 27), next[k] = (nb_real)(k * 5 % 27);
    CHECK_OK(nb_set_input(m.graph, m.input, ids, B));
    CHECK_OK(nb_set_input(m.graph, m.target, next, B));
    nb_zero_grad(m.graph);
    CHECK_OK(nb_forward(m.graph, m.loss));
    CHECK_OK(nb_backward(m.graph, m.loss));
    *n = 1;
    for (int i = 0; i < nb_param_tensor_count(m.graph); i++)
        *n += nb_node_numel(m.graph, nb_param_tensor(m.graph, i));
    nb_real *all = malloc(*n * sizeof *all), *at = all + 1;
    all[0] = nb_value(m.graph, m.loss)[0];
    for (int i = 0; i < nb_param_tensor_count(m.graph); i++) {
        nb_node p = nb_param_tensor(m.graph, i);
        memcpy(at, nb_grad(m.graph, p), nb_node_numel(m.graph, p) * sizeof *at);
        at += nb_node_numel(m.graph, p);
    }
    nb_model_free(&m);
    return all;
}

static void compare_transformer(void) {
    size_t n1, n2;
    nb_real *one = transformer_grads(1, &n1), *two = transformer_grads(2, &n2);
    double worst = 0;
    for (size_t k = 0; n1 == n2 && k < n1; k++)
        worst = fmax(worst, fabs((double)one[k] - (double)two[k]) / (fabs((double)one[k]) + 1e-3));
    CHECKF(n1 == n2 && worst <= 1e-5, "transformer block: loss or gradients differ by %g "
           "(relative) between 1 and 2 threads", worst);
    free(one);
    free(two);
}

int main(void) {
    const int B = 40; /* 40*16*30*30 = 576000 activations: several slices and chunks */
    nb_real *x = malloc((size_t)B * 3 * 30 * 30 * sizeof *x);
    for (size_t k = 0; k < (size_t)B * 3 * 30 * 30; k++)
        x[k] = (nb_real)((double)((k * 7919) % 1000) / 500.0 - 1.0);
    compare("relu", nb_relu, x, B);
    compare("sigmoid", nb_sigmoid, x, B);
    compare("tanh", nb_tanh, x, B);
    compare_transformer();

    /* A child forked after the pool has run has none of its workers: its
     * parallel regions must still finish, with the same result. */
    run parent = forward_backward(2, nb_relu, x, B);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        run child = forward_backward(2, nb_relu, x, B);
        int same = memcmp(child.y, parent.y, child.ny * sizeof *child.y) == 0 &&
                   memcmp(child.dx, parent.dx, child.nx * sizeof *child.dx) == 0 &&
                   memcmp(child.dw, parent.dw, child.nw * sizeof *child.dw) == 0;
        _exit(same && nb_test_failed == 0 ? 0 : 1);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "forked child: status %d", status);
    free_run(&parent);
    free(x);
    TEST_END();
}
