/* Misuse of the graph, the basic ops, the losses and the shape ops: every
 * error must come back as a status or NB_NONE with a message naming the op
 * and the offending shapes or values, never as a crash.  Errors passed up
 * through several layers keep their cause.
 *
 * This program is linked with -Wl,--wrap=malloc (see CMakeLists.txt), so it
 * can make one allocation of the library fail on purpose. */
#define _POSIX_C_SOURCE 200809L
#include "nabla.h"
#include "test.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *__real_malloc(size_t size);
static int fail_next_malloc;

void *__wrap_malloc(size_t size) {
    if (fail_next_malloc) {
        fail_next_malloc = 0;
        return NULL;
    }
    return __real_malloc(size);
}

/* Does the last error message contain every string of the NULL-ended list? */
static int msg_has(const char *first, ...) {
    const char *msg = nb_last_error();
    va_list ap;
    va_start(ap, first);
    int ok = 1;
    for (const char *s = first; s; s = va_arg(ap, const char *))
        if (!strstr(msg, s)) ok = 0;
    va_end(ap);
    return ok;
}
#define CHECK_MSG(...)                                                                 \
    CHECKF(msg_has(__VA_ARGS__, (const char *)NULL), "unexpected message '%s'",       \
           nb_last_error())

/* A build call that must fail with status st, leave the graph's status at st
 * and add no node. */
#define CHECK_BUILD_FAILS(g, call, st)                                                 \
    do {                                                                               \
        int before_ = nb_graph_node_count(g);                                          \
        nb_node h_ = (call);                                                           \
        CHECKF(h_ == NB_NONE, "%s should fail", #call);                                \
        CHECKF(nb_graph_status(g) == (st), "%s: graph status %s", #call,               \
               nb_status_name(nb_graph_status(g)));                                    \
        CHECKF(nb_graph_node_count(g) == before_, "%s added a node", #call);           \
    } while (0)

static int three = 3, four = 4;

/* A fresh graph with a batched input x [B, 3]. */
static nb_graph *graph_with_x(nb_node *x) {
    nb_graph *g = nb_graph_new();
    *x = nb_input(g, "x", 1, &three);
    return g;
}

static void test_shape_mismatch(void) {
    nb_node x;
    nb_graph *g;
    int w45[2] = {4, 5}, w43[2] = {4, 3}, m42[2] = {4, 2}, s23[2] = {2, 3}, s24[2] = {2, 4};

    g = graph_with_x(&x);
    nb_node w = nb_param(g, "w", 2, w45, (nb_init){0});
    CHECK_BUILD_FAILS(g, nb_linear(g, x, w, NB_NONE), NB_ERR_SHAPE);
    CHECK_MSG("linear", "[1, 3]", "[4, 5]");
    nb_graph_free(g);

    g = graph_with_x(&x);
    w = nb_param(g, "w", 2, w43, (nb_init){0});
    nb_node b = nb_param(g, "b", 1, &three, (nb_init){0});
    CHECK_BUILD_FAILS(g, nb_linear(g, x, w, b), NB_ERR_SHAPE);
    CHECK_MSG("linear", "bias", "[3]", "[4]");
    nb_graph_free(g);

    g = graph_with_x(&x);
    w = nb_param(g, "w", 1, &three, (nb_init){0});
    CHECK_BUILD_FAILS(g, nb_linear(g, x, w, NB_NONE), NB_ERR_SHAPE);
    CHECK_MSG("linear", "weight", "[3]");
    nb_graph_free(g);

    g = nb_graph_new();
    nb_node c4 = nb_constant(g, "c", 1, &four, NULL);
    CHECK_BUILD_FAILS(g, nb_dense(g, c4, 2, NULL, NULL), NB_ERR_SHAPE);
    CHECK_MSG("dense", "[4]");
    nb_graph_free(g);

    g = graph_with_x(&x);
    nb_node m = nb_param(g, "m", 2, m42, (nb_init){0});
    CHECK_BUILD_FAILS(g, nb_matmul(g, x, m), NB_ERR_SHAPE);
    CHECK_MSG("matmul", "[1, 3]", "[4, 2]");
    nb_graph_free(g);

    g = nb_graph_new();
    nb_node k = nb_input(g, "k", 1, &four);
    m = nb_param(g, "a", 2, (int[]){2, 1}, (nb_init){0});
    CHECK_BUILD_FAILS(g, nb_matmul(g, m, k), NB_ERR_SHAPE);
    CHECK_MSG("matmul", "[2, 1]", "[1, 4]");
    nb_graph_free(g);

    nb_node (*ew[3])(nb_graph *, nb_node, nb_node) = {nb_add, nb_sub, nb_mul};
    const char *ew_name[3] = {"add", "sub", "mul"};
    for (int op = 0; op < 3; op++) {
        g = graph_with_x(&x);
        nb_node p = nb_param(g, "p", 1, &four, (nb_init){0});
        CHECK_BUILD_FAILS(g, ew[op](g, x, p), NB_ERR_SHAPE);
        CHECK_MSG(ew_name[op], "[1, 3]", "[4]");
        CHECK_BUILD_FAILS(g, ew[op](g, p, x), NB_ERR_SHAPE); /* either side */
        CHECK_MSG(ew_name[op], "[1, 3]", "[4]");
        nb_graph_free(g);

        /* two batched operands must have equal shapes */
        g = graph_with_x(&x);
        nb_node y = nb_input(g, "y", 1, &four);
        CHECK_BUILD_FAILS(g, ew[op](g, x, y), NB_ERR_SHAPE);
        CHECK_MSG(ew_name[op], "[1, 3]", "[1, 4]");
        nb_graph_free(g);

        /* an unbatched [2, 3] never matches the batch dimension of [B, 3], even
         * when the batch size happens to be 2 while building */
        g = graph_with_x(&x);
        CHECK_OK(nb_graph_set_batch(g, 2));
        nb_node c = nb_constant(g, "c", 2, (int[]){2, 3}, NULL);
        CHECK_BUILD_FAILS(g, ew[op](g, x, c), NB_ERR_SHAPE);
        CHECK_MSG(ew_name[op], "[2, 3]");
        nb_graph_free(g);
    }

    g = graph_with_x(&x);
    nb_node y4 = nb_input(g, "y", 1, &four);
    CHECK_BUILD_FAILS(g, nb_mse_loss(g, x, y4), NB_ERR_SHAPE);
    CHECK_MSG("mse_loss", "[1, 3]", "[1, 4]");
    nb_graph_free(g);

    g = graph_with_x(&x);
    nb_node c3 = nb_constant(g, "c", 2, (int[]){1, 3}, NULL); /* same dims, not batched */
    CHECK_BUILD_FAILS(g, nb_mse_loss(g, x, c3), NB_ERR_SHAPE);
    CHECK_MSG("mse_loss", "[1, 3] (batched)", "[1, 3]");
    nb_graph_free(g);

    g = graph_with_x(&x);
    y4 = nb_input(g, "y", 1, &four);
    CHECK_BUILD_FAILS(g, nb_bce_with_logits(g, y4, x), NB_ERR_SHAPE);
    CHECK_MSG("bce_with_logits", "[1, 4]", "[1, 3]");
    nb_graph_free(g);

    /* cross-entropy: probability target with the wrong class count */
    g = graph_with_x(&x);
    y4 = nb_input(g, "y", 1, &four);
    CHECK_BUILD_FAILS(g, nb_cross_entropy(g, x, y4, 0), NB_ERR_SHAPE);
    CHECK_MSG("cross_entropy", "logits [1, 3]", "target [1, 4]");
    nb_graph_free(g);

    /* label target of the wrong length (unbatched logits) */
    g = nb_graph_new();
    nb_node lg = nb_constant(g, "lg", 2, (int[]){4, 10}, NULL);
    nb_node t5 = nb_constant(g, "t", 1, (int[]){5}, NULL);
    CHECK_BUILD_FAILS(g, nb_cross_entropy(g, lg, t5, 0), NB_ERR_SHAPE);
    CHECK_MSG("cross_entropy", "[4, 10]", "[5]");
    nb_graph_free(g);

    /* batched logits, unbatched labels */
    g = graph_with_x(&x);
    nb_node t1 = nb_constant(g, "t", 1, (int[]){1}, NULL);
    CHECK_BUILD_FAILS(g, nb_cross_entropy(g, x, t1, 0), NB_ERR_SHAPE);
    CHECK_MSG("cross_entropy", "[1, 3] (batched)", "[1]");
    nb_graph_free(g);

    /* logits that are not [B, C] */
    g = nb_graph_new();
    nb_node l3 = nb_input(g, "l", 2, s23), tl = nb_input(g, "t", 0, NULL);
    CHECK_BUILD_FAILS(g, nb_cross_entropy(g, l3, tl, 0), NB_ERR_SHAPE);
    CHECK_MSG("cross_entropy", "[1, 2, 3]");
    nb_graph_free(g);

    /* concat: shapes differ outside the axis */
    g = nb_graph_new();
    nb_node a = nb_input(g, "a", 2, s23), b2 = nb_input(g, "b", 2, s24);
    CHECK_BUILD_FAILS(g, nb_concat(g, 2, (nb_node[]){a, b2}, 1), NB_ERR_SHAPE);
    CHECK_MSG("concat", "[1, 2, 3]", "[1, 2, 4]");
    nb_graph_free(g);

    /* concat: batched with unbatched, and different ranks */
    g = nb_graph_new();
    a = nb_input(g, "a", 2, s23);
    nb_node pc = nb_param(g, "p", 3, (int[]){1, 2, 3}, (nb_init){0});
    CHECK_BUILD_FAILS(g, nb_concat(g, 2, (nb_node[]){a, pc}, 2), NB_ERR_SHAPE);
    CHECK_MSG("concat", "[1, 2, 3] (batched)", "[1, 2, 3]");
    nb_graph_free(g);

    g = nb_graph_new();
    a = nb_input(g, "a", 2, s23);
    b2 = nb_input(g, "b", 1, &three);
    CHECK_BUILD_FAILS(g, nb_concat(g, 2, (nb_node[]){a, b2}, -1), NB_ERR_SHAPE);
    CHECK_MSG("concat", "[1, 2, 3]", "[1, 3]");
    nb_graph_free(g);
}

static void test_null_graph(void) {
    nb_node xs[2] = {0, 1};
    int d[1] = {3};
    struct {
        nb_node h;
        const char *op;
    } calls[] = {
        {nb_input(NULL, "x", 1, d), "nb_input"},
        {nb_param(NULL, "p", 1, d, (nb_init){0}), "nb_param"},
        {nb_constant(NULL, "c", 1, d, NULL), "nb_constant"},
        {nb_dense(NULL, 0, 3, NULL, NULL), "dense"},
        {nb_linear(NULL, 0, 1, NB_NONE), "linear"},
        {nb_matmul(NULL, 0, 1), "matmul"},
        {nb_add(NULL, 0, 1), "add"},
        {nb_sub(NULL, 0, 1), "sub"},
        {nb_mul(NULL, 0, 1), "mul"},
        {nb_scale(NULL, 0, 2), "scale"},
        {nb_sum(NULL, 0), "sum"},
        {nb_mean(NULL, 0), "mean"},
        {nb_reshape(NULL, 0, 1, d), "reshape"},
        {nb_flatten(NULL, 0), "flatten"},
        {nb_concat(NULL, 2, xs, 1), "concat"},
        {nb_mse_loss(NULL, 0, 1), "mse_loss"},
        {nb_cross_entropy(NULL, 0, 1, 0), "cross_entropy"},
        {nb_bce_with_logits(NULL, 0, 1), "bce_with_logits"},
    };
    for (size_t k = 0; k < sizeof calls / sizeof *calls; k++) {
        /* each call overwrote the message; re-run the check per call */
        CHECKF(calls[k].h == NB_NONE, "%s(NULL graph) returned %d", calls[k].op, calls[k].h);
    }
    /* the message of one such call names the op and the NULL graph */
    CHECK(nb_cross_entropy(NULL, 0, 1, 0) == NB_NONE);
    CHECK_MSG("cross_entropy", "graph is NULL");
    CHECK(nb_concat(NULL, 2, xs, 1) == NB_NONE);
    CHECK_MSG("concat", "graph is NULL");
    CHECK(nb_reshape(NULL, 0, 1, d) == NB_NONE);
    CHECK_MSG("reshape", "graph is NULL");
    CHECK(nb_graph_status(NULL) == NB_ERR_ARG);
    CHECK(nb_forward(NULL, NB_NONE) == NB_ERR_ARG);
    CHECK(nb_backward(NULL, 0) == NB_ERR_ARG);
    CHECK(nb_graph_set_batch(NULL, 2) == NB_ERR_ARG);
    CHECK(nb_set_input(NULL, 0, NULL, 1) == NB_ERR_ARG);
    CHECK(nb_value(NULL, 0) == NULL);
    CHECK(nb_grad(NULL, 0) == NULL);
    nb_gradcheck_report rep;
    CHECK(nb_gradcheck(NULL, 0, 1e-3, 1e-3, 1e-3, &rep) == NB_ERR_ARG);
    nb_graph_free(NULL); /* harmless */
}

static void test_null_arrays(void) {
    nb_node x;
    nb_graph *g = graph_with_x(&x);
    CHECK_BUILD_FAILS(g, nb_reshape(g, x, 1, NULL), NB_ERR_ARG);
    CHECK_MSG("reshape", "NULL");
    nb_graph_free(g);

    g = graph_with_x(&x);
    CHECK_BUILD_FAILS(g, nb_concat(g, 2, NULL, 1), NB_ERR_ARG);
    CHECK_MSG("concat", "NULL");
    nb_graph_free(g);

    g = graph_with_x(&x);
    CHECK_BUILD_FAILS(g, nb_concat(g, 0, (nb_node[]){x}, 1), NB_ERR_ARG);
    CHECK_MSG("concat", "0 inputs");
    nb_graph_free(g);

    g = nb_graph_new();
    CHECK_BUILD_FAILS(g, nb_input(g, "x", 2, NULL), NB_ERR_ARG);
    CHECK_MSG("nb_input", "NULL");
    nb_graph_free(g);

    g = nb_graph_new();
    CHECK_BUILD_FAILS(g, nb_param(g, "p", 2, NULL, (nb_init){0}), NB_ERR_ARG);
    CHECK_MSG("nb_param", "NULL");
    nb_graph_free(g);

    g = nb_graph_new();
    CHECK_BUILD_FAILS(g, nb_constant(g, "c", 1, NULL, NULL), NB_ERR_ARG);
    CHECK_MSG("nb_constant", "NULL");
    nb_graph_free(g);

    g = graph_with_x(&x);
    CHECK(nb_set_input(g, x, NULL, 2) == NB_ERR_ARG);
    CHECK_MSG("nb_set_input", "NULL");
    nb_node l = nb_sum(g, x);
    CHECK_OK(nb_requires_grad(g, x, 1));
    CHECK_OK(nb_set_input(g, x, (nb_real[]){1, 2, 3}, 1));
    CHECK(nb_gradcheck(g, l, 1e-3, 1e-3, 1e-3, NULL) == NB_ERR_ARG);
    CHECK_MSG("nb_gradcheck", "NULL");
    nb_graph_free(g);
}

/* After one failed build call, every call fed its NB_NONE fails too and the
 * first message and status are kept. */
static void test_none_propagation(void) {
    nb_node x;
    nb_graph *g = graph_with_x(&x);
    nb_node t = nb_input(g, "t", 0, NULL);
    nb_node p4 = nb_param(g, "p", 1, &four, (nb_init){0});
    nb_node bad = nb_add(g, x, p4);
    CHECK(bad == NB_NONE);
    char first[512];
    snprintf(first, sizeof first, "%s", nb_last_error());
    CHECK_MSG("add", "[1, 3]", "[4]");
    int dims[1] = {-1};
    nb_node again[] = {
        nb_linear(g, bad, p4, NB_NONE),
        nb_linear(g, x, bad, NB_NONE),
        nb_dense(g, bad, 2, NULL, NULL),
        nb_matmul(g, bad, p4),
        nb_sub(g, x, bad),
        nb_mul(g, bad, x),
        nb_scale(g, bad, 2),
        nb_sum(g, bad),
        nb_mean(g, bad),
        nb_reshape(g, bad, 1, dims),
        nb_flatten(g, bad),
        nb_concat(g, 2, (nb_node[]){x, bad}, 1),
        nb_mse_loss(g, bad, x),
        nb_mse_loss(g, x, bad),
        nb_cross_entropy(g, bad, t, 0),
        nb_cross_entropy(g, x, bad, 0),
        nb_bce_with_logits(g, x, bad),
    };
    for (size_t k = 0; k < sizeof again / sizeof *again; k++)
        CHECKF(again[k] == NB_NONE, "call %zu accepted NB_NONE", k);
    CHECKF(strcmp(nb_last_error(), first) == 0, "message changed to '%s'", nb_last_error());
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);

    /* chained calls: the first message survives */
    nb_graph *h = graph_with_x(&x);
    bad = nb_mul(h, x, nb_param(h, "q", 1, &four, (nb_init){0}));
    snprintf(first, sizeof first, "%s", nb_last_error());
    nb_node y = nb_flatten(h, nb_reshape(h, nb_scale(h, bad, 2), 1, dims));
    y = nb_cross_entropy(h, nb_concat(h, 2, (nb_node[]){bad, x}, 1), y, 0.1);
    y = nb_mse_loss(h, nb_bce_with_logits(h, bad, bad), y);
    CHECK(y == NB_NONE);
    CHECKF(strcmp(nb_last_error(), first) == 0, "message changed to '%s'", nb_last_error());
    CHECK(nb_graph_status(h) == NB_ERR_SHAPE);
    /* running a graph with a build error is refused */
    CHECK(nb_graph_set_batch(h, 2) == NB_ERR_SHAPE);
    CHECK(nb_forward(h, NB_NONE) == NB_ERR_SHAPE);
    CHECK_MSG("build error");
    nb_graph_free(h);
    nb_graph_free(g);

    /* an NB_NONE input on a healthy graph is itself an error */
    g = graph_with_x(&x);
    CHECK_BUILD_FAILS(g, nb_sum(g, NB_NONE), NB_ERR_ARG);
    CHECK_MSG("sum", "NB_NONE");
    nb_graph_free(g);
    /* and so is a handle that does not exist */
    g = graph_with_x(&x);
    CHECK_BUILD_FAILS(g, nb_mse_loss(g, x, 42), NB_ERR_ARG);
    CHECK_MSG("mse_loss", "42", "does not exist");
    nb_graph_free(g);
}

static void test_concat_axis(void) {
    int s23[2] = {2, 3};
    int bad_axes[] = {3, 7, -4, 0, -3};
    for (size_t k = 0; k < sizeof bad_axes / sizeof *bad_axes; k++) {
        nb_graph *g = nb_graph_new();
        nb_node a = nb_input(g, "a", 2, s23), b = nb_input(g, "b", 2, s23);
        CHECK_BUILD_FAILS(g, nb_concat(g, 2, (nb_node[]){a, b}, bad_axes[k]), NB_ERR_ARG);
        char ax[16];
        snprintf(ax, sizeof ax, "%d", bad_axes[k] == -3 ? 0 : bad_axes[k]);
        CHECK_MSG("concat", "axis", ax);
        nb_graph_free(g);
    }
    /* unbatched: axis 0 is fine, -3 of a 2-d tensor is not */
    nb_graph *g = nb_graph_new();
    nb_node p = nb_param(g, "p", 2, s23, (nb_init){0});
    CHECK(nb_concat(g, 2, (nb_node[]){p, p}, 0) != NB_NONE);
    CHECK(nb_concat(g, 2, (nb_node[]){p, p}, -2) != NB_NONE);
    CHECK_BUILD_FAILS(g, nb_concat(g, 2, (nb_node[]){p, p}, -3), NB_ERR_ARG);
    CHECK_MSG("concat", "axis -3", "2-dimensional");
    nb_graph_free(g);
    /* a scalar has no axis at all */
    g = nb_graph_new();
    nb_node s = nb_param(g, "s", 0, NULL, (nb_init){0});
    CHECK_BUILD_FAILS(g, nb_concat(g, 2, (nb_node[]){s, s}, 0), NB_ERR_ARG);
    CHECK_MSG("concat", "axis 0", "0-dimensional");
    nb_graph_free(g);
}

static void test_label_smoothing(void) {
    nb_real bad[] = {-0.1f, 1.0f, 1.5f, NAN, INFINITY};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        nb_node x;
        nb_graph *g = graph_with_x(&x);
        nb_node t = nb_input(g, "t", 0, NULL);
        CHECK_BUILD_FAILS(g, nb_cross_entropy(g, x, t, bad[k]), NB_ERR_ARG);
        CHECK_MSG("cross_entropy", "label_smoothing");
        nb_graph_free(g);
    }
    nb_node x;
    nb_graph *g = graph_with_x(&x);
    nb_node t = nb_input(g, "t", 0, NULL);
    CHECK(nb_cross_entropy(g, x, t, 0.999f) != NB_NONE);
    nb_graph_free(g);
}

static void test_reshape_flatten_errors(void) {
    int s23[2] = {2, 3};
    struct {
        int ndim;
        int dims[7];
        nb_status st;
        const char *words[3];
    } cases[] = {
        {1, {4}, NB_ERR_SHAPE, {"reshape", "[1, 2, 3]", "[4]"}},   /* 6 elements vs 4 */
        {2, {3, 3}, NB_ERR_SHAPE, {"reshape", "6", "9"}},
        {2, {-1, 4}, NB_ERR_SHAPE, {"reshape", "[-1, 4]", "multiple of 4"}},
        {2, {-1, -1}, NB_ERR_ARG, {"reshape", "more than one -1", NULL}},
        {2, {0, 6}, NB_ERR_SHAPE, {"reshape", "[0, 6]", NULL}},
        {2, {-2, 3}, NB_ERR_SHAPE, {"reshape", "[-2, 3]", NULL}},
        {3, {65536, 65536, 65536}, NB_ERR_SHAPE, {"reshape", "[65536, 65536, 65536]", NULL}},
        {6, {1, 1, 1, 1, 1, 6}, NB_ERR_SHAPE, {"reshape", "batch", NULL}}, /* 7 dims */
        {-1, {0}, NB_ERR_SHAPE, {"reshape", "-1", NULL}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        nb_graph *g = nb_graph_new();
        nb_node x = nb_input(g, "x", 2, s23);
        CHECK_BUILD_FAILS(g, nb_reshape(g, x, cases[k].ndim, cases[k].dims), cases[k].st);
        CHECK_MSG(cases[k].words[0], cases[k].words[1] ? cases[k].words[1] : "",
                  cases[k].words[2] ? cases[k].words[2] : "");
        nb_graph_free(g);
    }
    /* unbatched: the count includes dim 0 */
    nb_graph *g = nb_graph_new();
    nb_node p = nb_param(g, "p", 2, s23, (nb_init){0});
    CHECK_BUILD_FAILS(g, nb_reshape(g, p, 2, (int[]){3, 3}), NB_ERR_SHAPE);
    CHECK_MSG("reshape", "[2, 3]", "[3, 3]");
    nb_graph_free(g);
    /* flatten of a scalar */
    g = nb_graph_new();
    nb_node s = nb_param(g, "s", 0, NULL, (nb_init){0});
    CHECK_BUILD_FAILS(g, nb_flatten(g, s), NB_ERR_SHAPE);
    CHECK_MSG("flatten", "[]");
    nb_graph_free(g);
}

static void test_other_build_errors(void) {
    nb_node x;
    nb_graph *g = graph_with_x(&x);
    CHECK_BUILD_FAILS(g, nb_scale(g, x, INFINITY), NB_ERR_ARG);
    CHECK_MSG("scale", "not finite");
    nb_graph_free(g);

    g = graph_with_x(&x);
    CHECK_BUILD_FAILS(g, nb_dense(g, x, 0, "fc", NULL), NB_ERR_ARG);
    CHECK_MSG("dense", "out_features 0");
    nb_graph_free(g);
}

static void test_run_state(void) {
    nb_node x;
    nb_graph *g = graph_with_x(&x);
    nb_node d = nb_dense(g, x, 2, "fc", NULL);
    nb_node l = nb_sum(g, d);
    CHECK_OK(nb_graph_status(g));

    /* nb_value of an activation before any batch size is set */
    nb_clear_error();
    CHECK(nb_value(g, x) == NULL);
    CHECK_MSG("nb_value", "batch");
    CHECK(nb_value(g, d) == NULL);
    CHECK(nb_value(g, nb_find(g, "fc.weight")) != NULL); /* parameters always have one */

    /* nb_backward before nb_forward */
    CHECK_OK(nb_set_input(g, x, (nb_real[]){1, 2, 3}, 1));
    CHECK(nb_backward(g, l) == NB_ERR_STATE);
    CHECK_MSG("nb_backward", "nb_forward");

    /* nb_backward from a non-scalar */
    CHECK_OK(nb_forward(g, NB_NONE));
    CHECK(nb_backward(g, d) == NB_ERR_SHAPE);
    CHECK_MSG("nb_backward", "[1, 2]", "scalar");
    CHECK_OK(nb_backward(g, l));

    /* a new batch size needs a new forward */
    CHECK_OK(nb_set_input(g, x, (nb_real[]){1, 2, 3, 4, 5, 6}, 2));
    CHECK(nb_backward(g, l) == NB_ERR_STATE);

    /* nb_set_input on a non-input */
    nb_real v[6] = {0};
    CHECK(nb_set_input(g, d, v, 2) == NB_ERR_ARG);
    CHECK_MSG("nb_set_input", "not an input");
    CHECK(nb_set_input(g, nb_find(g, "fc.weight"), v, 2) == NB_ERR_ARG);
    CHECK_MSG("nb_set_input", "fc.weight", "not an input");
    CHECK(nb_set_input(g, 99, v, 2) == NB_ERR_ARG);
    CHECK(nb_set_input(g, x, v, 0) == NB_ERR_ARG);
    nb_graph_free(g);
}

/* nb_forward refuses to read an input that holds no values for the current
 * batch size: never set, or set for another batch size. */
static void test_unset_inputs(void) {
    nb_node x;
    nb_graph *g = graph_with_x(&x);
    int two = 2;
    nb_node t = nb_input(g, "target", 1, &two);
    nb_node d = nb_dense(g, x, 2, "fc", NULL);
    nb_node l = nb_mse_loss(g, d, t);
    CHECK_OK(nb_graph_status(g));
    nb_rng r;
    nb_rng_seed(&r, 1);
    CHECK_OK(nb_graph_init(g, &r));
    CHECK_OK(nb_graph_set_batch(g, 2));
    CHECK(nb_forward(g, l) == NB_ERR_STATE);
    CHECK_MSG("input 'x'", "not been set", "nb_set_input");
    CHECK(nb_backward(g, l) == NB_ERR_STATE); /* nothing was computed */

    /* only the inputs the target needs */
    CHECK_OK(nb_set_input(g, x, (nb_real[]){1, 2, 3, 4, 5, 6}, 2));
    CHECK(nb_forward(g, l) == NB_ERR_STATE);
    CHECK_MSG("input 'target'", "batch size 2");
    CHECK_OK(nb_forward(g, d));
    CHECK_OK(nb_set_input(g, t, (nb_real[]){1, 0, 0, 1}, 2));
    CHECK_OK(nb_forward(g, l));

    /* a new batch size: every input must be given again */
    CHECK_OK(nb_set_input(g, x, (nb_real[]){1, 2, 3, 4, 5, 6, 7, 8, 9}, 3));
    CHECK(nb_forward(g, l) == NB_ERR_STATE);
    CHECK_MSG("input 'target'", "batch size 3");
    CHECK_OK(nb_set_input(g, t, (nb_real[]){1, 0, 0, 1, 1, 1}, 3));
    CHECK_OK(nb_forward(g, l));
    nb_real loss = nb_value(g, l)[0];

    /* a new plan for the same batch size keeps the values */
    CHECK_OK(nb_requires_grad(g, x, 1));
    CHECK_OK(nb_forward(g, l));
    CHECK(nb_value(g, l)[0] == loss);
    CHECK_OK(nb_backward(g, l));
    nb_graph_free(g);
}

/* Bad class labels are found while running: nb_forward reports them, the
 * loss is NaN, backward refuses that forward, a corrected batch works. */
static void test_bad_labels(void) {
    nb_real bad_labels[] = {5, -1, 1.5f, NAN, 1e9f};
    for (size_t k = 0; k < sizeof bad_labels / sizeof *bad_labels; k++) {
        nb_graph *g = nb_graph_new();
        int c = 5;
        nb_node x = nb_input(g, "x", 1, &c), t = nb_input(g, "t", 0, NULL);
        nb_node l = nb_cross_entropy(g, x, t, 0.1f);
        CHECK_OK(nb_requires_grad(g, x, 1));
        nb_real xs[10] = {1, 2, 3, 4, 5, -1, 0, 1, 0, 2};
        CHECK_OK(nb_set_input(g, x, xs, 2));
        CHECK_OK(nb_set_input(g, t, (nb_real[]){4, bad_labels[k]}, 2));
        nb_status s = nb_forward(g, l);
        CHECKF(s == NB_ERR_ARG, "label %g: forward -> %s", (double)bad_labels[k],
               nb_status_name(s));
        CHECK_MSG("cross_entropy", "target[1]", "[0, 5)");
        CHECK(isnan(nb_value(g, l)[0]));
        CHECK(nb_backward(g, l) == NB_ERR_ARG);
        CHECK_MSG("nb_backward", "cross_entropy", "target[1]");
        nb_gradcheck_report rep;
        CHECK(nb_gradcheck(g, l, 1e-3, 1e-3, 1e-3, &rep) == NB_ERR_ARG);
        /* fix the label: everything works again */
        CHECK_OK(nb_set_input(g, t, (nb_real[]){4, 0}, 2));
        CHECK_OK(nb_forward(g, l));
        CHECK(isfinite(nb_value(g, l)[0]));
        CHECK_OK(nb_backward(g, l));
        nb_graph_free(g);
    }
    /* the first bad row is the one reported */
    nb_graph *g = nb_graph_new();
    int c = 3;
    nb_node x = nb_input(g, "x", 1, &c), t = nb_input(g, "t", 0, NULL);
    nb_node l = nb_cross_entropy(g, x, t, 0);
    CHECK_OK(nb_set_input(g, x, (nb_real[]){0, 0, 0, 0, 0, 0, 0, 0, 0}, 3));
    CHECK_OK(nb_set_input(g, t, (nb_real[]){1, 3, 7}, 3));
    CHECK(nb_forward(g, l) == NB_ERR_ARG);
    CHECK_MSG("target[1] = 3");
    nb_graph_free(g);
}

/* ------------------------------------------------------------ wrapped causes */

/* How often needle occurs in the last error message. */
static int msg_count(const char *needle) {
    int n = 0;
    for (const char *p = nb_last_error(); (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* The message holds the place and the cause, each exactly once. */
#define CHECK_CAUSE(where, cause)                                                      \
    CHECKF(msg_count(where) == 1 && msg_count(cause) == 1,                             \
           "message '%s' should name '%s' and '%s' once each", nb_last_error(), where,  \
           cause)

static void test_graph_init_cause(void) {
    nb_node x;
    nb_graph *g = graph_with_x(&x);
    int dims[2] = {4, 3};
    nb_param(g, "fc1.weight", 2, dims, (nb_init){NB_INIT_UNIFORM, 1, 0, 0, NB_FAN_IN});
    nb_rng r;
    nb_rng_seed(&r, 1);
    CHECK(nb_graph_init(g, &r) == NB_ERR_ARG);
    CHECK_CAUSE("nb_graph_init: parameter 'fc1.weight': ", "init: uniform bounds [1, 0)");
    nb_graph_free(g);
}

/* A graph with one parameter "w" [rows, 3]. */
static nb_graph *graph_with_w(int rows) {
    nb_graph *g = nb_graph_new();
    int dims[2] = {rows, 3};
    nb_param(g, "w", 2, dims, (nb_init){NB_INIT_CONSTANT, 0.5, 0, 0, NB_FAN_IN});
    nb_rng r;
    nb_rng_seed(&r, 1);
    nb_graph_init(g, &r);
    return g;
}

static void test_weights_cause(const char *dir) {
    char path[600];
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    nb_graph *g = graph_with_w(2), *other = graph_with_w(4);
    fail_next_malloc = 1;
    CHECK(nb_save_weights(g, path, NULL, 0) == NB_ERR_NOMEM);
    CHECK_CAUSE(path, "out of memory");
    CHECK(access(path, F_OK) != 0);
    CHECK_OK(nb_save_weights(g, path, NULL, 0));
    CHECK(nb_load_weights(other, path, 0) == NB_ERR_SHAPE);
    CHECK_CAUSE(path, "tensor 'w' has shape [2, 3] but the graph's parameter is [4, 3]");
    unlink(path);
    nb_graph_free(g);
    nb_graph_free(other);
}

static void test_checkpoint_cause(const char *dir) {
    char path[600];
    snprintf(path, sizeof path, "%s/ck.safetensors", dir);
    nb_graph *g = graph_with_w(2), *other = graph_with_w(4);
    nb_checkpoint ck = {0};
    fail_next_malloc = 1;
    CHECK(nb_checkpoint_save(path, g, NULL, &ck) == NB_ERR_NOMEM);
    CHECK_CAUSE(path, "out of memory");
    CHECK(access(path, F_OK) != 0);
    CHECK_OK(nb_checkpoint_save(path, g, NULL, &ck));
    CHECK(nb_checkpoint_load(path, other, NULL, &ck) == NB_ERR_SHAPE);
    CHECK_CAUSE(path, "tensor 'w' has shape [2, 3] but the graph's parameter is [4, 3]");
    unlink(path);
    nb_graph_free(g);
    nb_graph_free(other);
}

static void test_wrapped_causes(void) {
    char dir[] = "/tmp/nb-errors-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECKF(0, "mkdtemp failed");
        return;
    }
    test_graph_init_cause();
    test_weights_cause(dir);
    test_checkpoint_cause(dir);
    CHECKF(rmdir(dir) == 0, "files left in %s", dir);
}

int main(void) {
    test_shape_mismatch();
    test_null_graph();
    test_null_arrays();
    test_none_propagation();
    test_concat_axis();
    test_label_smoothing();
    test_reshape_flatten_errors();
    test_other_build_errors();
    test_run_state();
    test_unset_inputs();
    test_bad_labels();
    test_wrapped_causes();
    TEST_END();
}
