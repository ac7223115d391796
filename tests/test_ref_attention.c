/* Multi-head self-attention of the float library against PyTorch's
 * nn.MultiheadAttention (tests/reference/attention.ref, written by
 * tests/reference/attention.py): forward output and the gradients of x and
 * of every parameter, under PyTorch's state_dict names, causal and not.
 * Then the (sample, head) pairs split between threads: the same bits on 1
 * and on 4 threads. */
#include "nabla.h"
#include "refdata.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RTOL 1e-5

static const char *const PARAMS[] = {"in_proj_weight", "in_proj_bias", "out_proj.weight",
                                     "out_proj.bias"};

static const ref_tensor *need(const ref_case *c, const char *name) {
    const ref_tensor *t = ref_get(c, name);
    CHECKF(t != NULL, "case %s: tensor '%s' missing", c->name, name);
    return t;
}

static void feed(nb_graph *g, nb_node in, const ref_tensor *t) {
    nb_real *v = malloc(t->n * sizeof *v);
    for (size_t k = 0; k < t->n; k++) v[k] = (nb_real)t->v[k];
    CHECK_OK(nb_set_input(g, in, v, t->dims[0]));
    free(v);
}

static void compare(const ref_case *c, const char *what, const nb_real *got, size_t n) {
    char label[160];
    snprintf(label, sizeof label, "%s: %s", c->name, what);
    const ref_tensor *want = need(c, what);
    CHECKF(want && want->n == n, "%s: %zu values, reference has %zu", label, n,
           want ? want->n : 0);
    if (want && want->n == n) CHECK(ref_check(label, got, n, want, RTOL) == 0);
}

static void test_case(const ref_file *ref, const char *name) {
    const ref_case *c = ref_case_get(ref, name);
    CHECKF(c != NULL, "reference case %s missing", name);
    const ref_tensor *xr = c ? need(c, "x") : NULL;
    if (!xr) return;
    nb_graph *g = nb_graph_new();
    nb_node x = nb_input(g, "x", 2, xr->dims + 1), wy = nb_input(g, "wy", 2, xr->dims + 1);
    nb_node y = nb_attention(g, x, (int)ref_scalar(c, "heads", 0),
                             (int)ref_scalar(c, "causal", -1), "attn");
    nb_node loss = nb_sum(g, nb_mul(g, y, wy));
    CHECK_OK(nb_requires_grad(g, x, 1));
    nb_status s = nb_graph_status(g);
    CHECKF(s == NB_OK, "case %s: %s", name, nb_last_error());
    for (int k = 0; s == NB_OK && k < 4; k++) {
        char pname[64];
        snprintf(pname, sizeof pname, "attn.%s", PARAMS[k]);
        nb_node p = nb_find(g, pname);
        const ref_tensor *t = need(c, PARAMS[k]);
        CHECKF(p != NB_NONE && t && t->n == nb_node_numel(g, p), "case %s: %s", name, pname);
        if (p == NB_NONE || !t || t->n != nb_node_numel(g, p)) s = NB_ERR_SHAPE;
        else
            for (size_t i = 0; i < t->n; i++) nb_value(g, p)[i] = (nb_real)t->v[i];
    }
    if (s == NB_OK) {
        feed(g, x, xr);
        feed(g, wy, need(c, "wy"));
        CHECK_OK(nb_forward(g, loss));
        nb_zero_grad(g);
        CHECK_OK(nb_backward(g, loss));
        compare(c, "y", nb_value(g, y), nb_node_numel(g, y));
        compare(c, "dx", nb_grad(g, x), nb_node_numel(g, x));
        for (int k = 0; k < 4; k++) {
            char pname[64], gname[64];
            snprintf(pname, sizeof pname, "attn.%s", PARAMS[k]);
            snprintf(gname, sizeof gname, "d%s", PARAMS[k]);
            nb_node p = nb_find(g, pname);
            compare(c, gname, nb_grad(g, p), nb_node_numel(g, p));
        }
    }
    nb_graph_free(g);
}

/* y and every gradient of attention on [4, 32, 64] with 4 heads, on the
 * given number of threads, appended to out (n values). */
static size_t run_threads(int threads, nb_real *out) {
    CHECK_OK(nb_set_threads(threads));
    nb_graph *g = nb_graph_new();
    int sd[2] = {32, 64};
    nb_node x = nb_input(g, "x", 2, sd), wy = nb_input(g, "wy", 2, sd);
    nb_node y = nb_attention(g, x, 4, 1, "attn");
    nb_node loss = nb_sum(g, nb_mul(g, y, wy));
    CHECK_OK(nb_requires_grad(g, x, 1));
    nb_rng r;
    nb_rng_seed(&r, 5);
    CHECK_OK(nb_graph_init(g, &r));
    size_t n = 4 * 32 * 64, k = 0;
    nb_real *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = (nb_real)nb_rng_normal(&r);
    CHECK_OK(nb_set_input(g, x, v, 4));
    for (size_t i = 0; i < n; i++) v[i] = (nb_real)nb_rng_normal(&r);
    CHECK_OK(nb_set_input(g, wy, v, 4));
    free(v);
    CHECK_OK(nb_forward(g, loss));
    nb_zero_grad(g);
    CHECK_OK(nb_backward(g, loss));
    memcpy(out + k, nb_value(g, y), n * sizeof *out), k += n;
    memcpy(out + k, nb_grad(g, x), n * sizeof *out), k += n;
    memcpy(out + k, nb_grads(g), nb_param_count(g) * sizeof *out), k += nb_param_count(g);
    nb_graph_free(g);
    return k;
}

static void test_threads(void) {
    size_t cap = 2 * 4 * 32 * 64 + 4 * 64 * 64 + 4 * 64;
    nb_real *one = calloc(cap, sizeof *one), *four = calloc(cap, sizeof *four);
    size_t n1 = run_threads(1, one), n4 = run_threads(4, four);
    CHECK(n1 == cap && n4 == cap && memcmp(one, four, cap * sizeof *one) == 0);
    free(one);
    free(four);
}

int main(void) {
    ref_file *ref = ref_load("tests/reference/attention.ref");
    CHECK(ref != NULL);
    if (!ref) TEST_END();
    test_case(ref, "self");
    test_case(ref, "causal");
    test_case(ref, "causal_4heads");
    test_case(ref, "one_head");
    ref_free(ref);
    test_threads();
    TEST_END();
}
