/* The sequence ops in double precision: gradient checks of embedding (its
 * scatter-add with repeated tokens), positional embeddings, rnn, lstm and
 * gru (every state and the last only, and a stack embedding -> gru ->
 * dense -> cross-entropy), and the cross-entropy over [B, T, C] with
 * ignore_index and label smoothing; its value against the definition; bad
 * tokens and bad targets reported with the sample and the position.
 * Gradcheck: central differences, eps 1e-6, atol 1e-7, rtol 1e-6. */
#include "nabla.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-6
#define ATOL 1e-7
#define RTOL 1e-6
#define B 3
#define T 4

static void check_report(const char *what, nb_status s, const nb_gradcheck_report *rep,
                         size_t min_checked) {
    CHECKF(s == NB_OK, "%s: %s", what, nb_last_error());
    CHECKF(rep->failed == 0 && rep->checked >= min_checked,
           "%s: checked %zu (want >= %zu), failed %zu, max err %g (node %d [%zu]: analytic %g "
           "numeric %g)", what, rep->checked, min_checked, rep->failed, rep->max_abs_err,
           rep->worst_node, rep->worst_index, rep->worst_analytic, rep->worst_numeric);
}

static void fill_normal(nb_graph *g, nb_node n, nb_rng *r, double scale) {
    nb_real *v = nb_value(g, n);
    for (size_t k = 0, len = nb_node_numel(g, n); v && k < len; k++)
        v[k] = (nb_real)(scale * nb_rng_normal(r));
}

/* Token ids 0..V-1 with repeats: (3 k + 1) mod V, and id 0 never used when
 * skip0 (so its gradient row must stay zero). */
static void fill_ids(nb_graph *g, nb_node ids, int V, int skip0) {
    nb_real *v = nb_value(g, ids);
    for (size_t k = 0, len = nb_node_numel(g, ids); k < len; k++) {
        int id = (int)((3 * k + 1) % (size_t)V);
        if (skip0 && id == 0) id = 1;
        v[k] = (nb_real)id;
    }
}

/* loss = sum(y * wy), wy an input shaped like y (filled later) */
static nb_node weighted_sum(nb_graph *g, nb_node y, nb_node *wy) {
    *wy = NB_NONE;
    int ndim, dims[NB_MAX_DIMS];
    if (nb_node_shape(g, y, &ndim, dims) != NB_OK) return NB_NONE;
    *wy = nb_input(g, "wy", ndim - 1, dims + 1);
    return nb_sum(g, nb_mul(g, y, *wy));
}

static void test_embedding(void) {
    const int V = 5, D = 3;
    nb_graph *g = nb_graph_new();
    int td[1] = {T};
    nb_node ids = nb_input(g, "ids", 1, td), wy;
    nb_node y = nb_embedding(g, ids, V, D, "emb");
    nb_node loss = weighted_sum(g, y, &wy);
    REQUIRE_OK(nb_graph_status(g));
    nb_rng r;
    nb_rng_seed(&r, 1);
    CHECK_OK(nb_graph_init(g, &r));
    CHECK_OK(nb_graph_set_batch(g, B));
    fill_ids(g, ids, V, 1);
    fill_normal(g, wy, &r, 1);
    nb_node w = nb_find(g, "emb.weight");
    CHECK(w != NB_NONE && nb_node_numel(g, w) == (size_t)(V * D));
    CHECK_OK(nb_forward(g, loss));
    /* forward: the rows of the table */
    const nb_real *yv = nb_value(g, y), *wv = nb_value(g, w), *iv = nb_value(g, ids);
    int same = 1;
    for (int k = 0; k < B * T; k++)
        for (int d = 0; d < D; d++) same &= yv[k * D + d] == wv[(int)iv[k] * D + d];
    CHECK(same);
    nb_gradcheck_report rep;
    check_report("embedding", nb_gradcheck(g, loss, EPS, ATOL, RTOL, &rep), &rep,
                 (size_t)(V * D));
    /* backward: the sum of the upstream gradients of every position of a token */
    nb_zero_grad(g);
    CHECK_OK(nb_forward(g, loss));
    CHECK_OK(nb_backward(g, loss));
    const nb_real *dw = nb_grad(g, w), *wyv = nb_value(g, wy);
    double err = 0;
    for (int v = 0; v < V; v++)
        for (int d = 0; d < D; d++) {
            double want = 0;
            for (int k = 0; k < B * T; k++)
                if ((int)iv[k] == v) want += (double)wyv[k * D + d];
            err = fmax(err, fabs(want - (double)dw[v * D + d]));
        }
    CHECKF(err < 1e-12, "embedding scatter-add: max error %g", err);
    nb_graph_free(g);
}

static void test_bad_token(void) {
    nb_graph *g = nb_graph_new();
    int td[1] = {T};
    nb_node ids = nb_input(g, "ids", 1, td);
    nb_node y = nb_embedding(g, ids, 4, 2, "emb");
    REQUIRE_OK(nb_graph_status(g));
    nb_rng r;
    nb_rng_seed(&r, 2);
    CHECK_OK(nb_graph_init(g, &r));
    nb_real good[B * T] = {0, 1, 2, 3, 3, 2, 1, 0, 1, 1, 1, 1};
    const struct { int at; nb_real v; const char *msg; } bad[] = {
        {6, 4, "embedding 'emb': sample 1 of the batch, position 2: token 4 is not an integer "
               "in [0, 4)"},
        {11, -1, "sample 2 of the batch, position 3: token -1 is"},
        {1, 0.5, "sample 0 of the batch, position 1: token 0.5 is"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        nb_real x[B * T];
        memcpy(x, good, sizeof x);
        x[bad[k].at] = bad[k].v;
        CHECK_OK(nb_set_input(g, ids, x, B));
        nb_status s = nb_forward(g, y);
        CHECKF(s == NB_ERR_ARG && strstr(nb_last_error(), bad[k].msg),
               "bad token %zu: %s: %s", k, nb_status_name(s), nb_last_error());
        CHECK(isnan(nb_value(g, y)[bad[k].at * 2]));
    }
    CHECK_OK(nb_set_input(g, ids, good, B));
    CHECK_OK(nb_forward(g, y));
    nb_graph_free(g);
}

static void test_pos_embedding(void) {
    nb_graph *g = nb_graph_new();
    int xd[2] = {T, 3};
    nb_node x = nb_input(g, "x", 2, xd), wy;
    nb_node y = nb_pos_embedding(g, x, "pos");
    nb_node loss = weighted_sum(g, y, &wy);
    CHECK_OK(nb_requires_grad(g, x, 1));
    REQUIRE_OK(nb_graph_status(g));
    nb_node w = nb_find(g, "pos.weight");
    int ndim, dims[NB_MAX_DIMS];
    CHECK(nb_node_shape(g, w, &ndim, dims) == NB_OK && ndim == 2 && dims[0] == T &&
          dims[1] == 3);
    nb_rng r;
    nb_rng_seed(&r, 3);
    CHECK_OK(nb_graph_init(g, &r));
    CHECK_OK(nb_graph_set_batch(g, B));
    fill_normal(g, x, &r, 1);
    fill_normal(g, wy, &r, 1);
    nb_gradcheck_report rep;
    check_report("pos_embedding", nb_gradcheck(g, loss, EPS, ATOL, RTOL, &rep), &rep,
                 (size_t)(B * T * 3 + T * 3));
    /* a wrong shape is a build error naming the op */
    nb_graph *g2 = nb_graph_new();
    nb_node flat = nb_input(g2, "flat", 1, xd);
    CHECK(nb_pos_embedding(g2, flat, "p") == NB_NONE &&
          strstr(nb_last_error(), "pos_embedding: input 'flat' has shape"));
    nb_graph_free(g2);
    nb_graph_free(g);
}

static void test_recurrent(nb_rnn_kind kind, int last) {
    static const char *const names[3] = {"rnn", "lstm", "gru"};
    static const int gates[3] = {1, 4, 3};
    const int D = 3, H = 4, G = gates[kind];
    char what[64];
    snprintf(what, sizeof what, "%s%s", names[kind], last ? " last" : "");
    nb_graph *g = nb_graph_new();
    int xd[2] = {T, D};
    nb_node x = nb_input(g, "x", 2, xd), wy;
    nb_node y = nb_recurrent(g, x, kind, H, last, "rec");
    nb_node loss = weighted_sum(g, y, &wy);
    CHECK_OK(nb_requires_grad(g, x, 1));
    REQUIRE_OK(nb_graph_status(g));
    int ndim, dims[NB_MAX_DIMS];
    CHECK(nb_node_shape(g, y, &ndim, dims) == NB_OK && ndim == (last ? 2 : 3) &&
          dims[ndim - 1] == H && (last || dims[1] == T));
    static const char *const pn[4] = {"rec.weight_ih_l0", "rec.weight_hh_l0",
                                      "rec.bias_ih_l0", "rec.bias_hh_l0"};
    const size_t sizes[4] = {(size_t)(G * H * D), (size_t)(G * H * H), (size_t)(G * H),
                             (size_t)(G * H)};
    for (int i = 0; i < 4; i++) {
        nb_node p = nb_find(g, pn[i]);
        CHECKF(p != NB_NONE && nb_node_numel(g, p) == sizes[i], "%s: %s", what, pn[i]);
    }
    nb_rng r;
    nb_rng_seed(&r, 10 + (uint64_t)kind);
    CHECK_OK(nb_graph_init(g, &r));
    /* larger weights than the init, so that the gates leave their linear range */
    for (int i = 0; i < nb_param_tensor_count(g); i++) fill_normal(g, nb_param_tensor(g, i), &r, 0.8);
    CHECK_OK(nb_graph_set_batch(g, B));
    fill_normal(g, x, &r, 1);
    fill_normal(g, wy, &r, 1);
    nb_gradcheck_report rep;
    size_t all = B * T * D;
    for (int i = 0; i < 4; i++) all += sizes[i];
    check_report(what, nb_gradcheck(g, loss, EPS, ATOL, RTOL, &rep), &rep, all);
    nb_graph_free(g);
}

/* Logits [B, T, C] as an input, targets [B, T] with some ignored. */
static void test_sequence_ce(double smoothing, int ignore) {
    const int C = 5;
    nb_graph *g = nb_graph_new();
    int xd[2] = {T, C}, td[1] = {T};
    nb_node x = nb_input(g, "x", 2, xd), t = nb_input(g, "t", 1, td);
    nb_node loss = nb_cross_entropy_ignore(g, x, t, (nb_real)smoothing, ignore);
    CHECK_OK(nb_requires_grad(g, x, 1));
    REQUIRE_OK(nb_graph_status(g));
    nb_rng r;
    nb_rng_seed(&r, 20);
    CHECK_OK(nb_graph_set_batch(g, B));
    fill_normal(g, x, &r, 2);
    nb_real *tv = nb_value(g, t);
    for (int k = 0; k < B * T; k++) {
        int label = (k * 7) % C;
        if (label == ignore) label = (label + 1) % C;
        tv[k] = (nb_real)(k % 3 == 1 ? ignore : label);
    }
    CHECK_OK(nb_forward(g, loss));
    /* the definition: mean over the positions that count */
    const nb_real *xv = nb_value(g, x);
    double sum = 0;
    int counted = 0;
    for (int k = 0; k < B * T; k++) {
        if (tv[k] == (nb_real)ignore) continue;
        double m = -INFINITY, z = 0, mean_lp = 0;
        for (int c = 0; c < C; c++) m = fmax(m, (double)xv[k * C + c]);
        for (int c = 0; c < C; c++) z += exp((double)xv[k * C + c] - m);
        for (int c = 0; c < C; c++) mean_lp += ((double)xv[k * C + c] - m - log(z)) / C;
        double nll = -((double)xv[k * C + (int)tv[k]] - m - log(z));
        sum += (1 - smoothing) * nll - smoothing * mean_lp;
        counted++;
    }
    CHECK(counted == B * T - 4);
    CHECK_CLOSE(nb_value(g, loss)[0], sum / counted, 1e-12, 1e-12);
    nb_gradcheck_report rep;
    check_report("sequence cross_entropy", nb_gradcheck(g, loss, EPS, ATOL, RTOL, &rep), &rep,
                 (size_t)(B * T * C));
    /* every position ignored: loss 0, no gradient */
    for (int k = 0; k < B * T; k++) tv[k] = (nb_real)ignore;
    CHECK_OK(nb_forward(g, loss));
    CHECK(nb_value(g, loss)[0] == 0);
    CHECK_OK(nb_backward(g, loss));
    int zero = 1;
    for (int k = 0; k < B * T * C; k++) zero &= nb_grad(g, x)[k] == 0;
    CHECK(zero);
    /* a target out of range that is not the ignore_index */
    tv[5] = (nb_real)C;
    CHECK(nb_forward(g, loss) == NB_ERR_ARG &&
          strstr(nb_last_error(), "target of sample 1 of the batch, position 1 = 5 is not a "
                 "class index in [0, 5)"));
    nb_graph_free(g);
}

/* [B, C] logits keep their behaviour; ignore_index works there too */
static void test_flat_ce_ignore(void) {
    nb_graph *g = nb_graph_new();
    int xd[1] = {4};
    nb_node x = nb_input(g, "x", 1, xd), t = nb_input(g, "t", 0, NULL);
    nb_node loss = nb_cross_entropy(g, x, t, 0);
    CHECK_OK(nb_requires_grad(g, x, 1));
    REQUIRE_OK(nb_graph_status(g));
    nb_rng r;
    nb_rng_seed(&r, 30);
    CHECK_OK(nb_graph_set_batch(g, B));
    fill_normal(g, x, &r, 1);
    nb_real *tv = nb_value(g, t);
    tv[0] = 2, tv[1] = -100, tv[2] = 0;
    CHECK_OK(nb_forward(g, loss));
    nb_gradcheck_report rep;
    check_report("cross_entropy [B, C] ignore", nb_gradcheck(g, loss, EPS, ATOL, RTOL, &rep),
                 &rep, (size_t)(B * 4));
    tv[1] = -1;
    CHECK(nb_forward(g, loss) == NB_ERR_ARG &&
          strstr(nb_last_error(), "cross_entropy: target[1] = -1 is not a class index"));
    nb_graph_free(g);
}

/* embedding -> gru -> dense -> cross-entropy per position, every parameter */
static void test_stack(void) {
    const int V = 6, D = 3, H = 4;
    nb_graph *g = nb_graph_new();
    int td[1] = {T};
    nb_node ids = nb_input(g, "ids", 1, td), t = nb_input(g, "t", 1, td);
    nb_node e = nb_embedding(g, ids, V, D, "emb");
    nb_node h = nb_recurrent(g, nb_pos_embedding(g, e, "pos"), NB_GRU, H, 0, "gru");
    nb_node logits = nb_dense(g, h, V, "out", NULL);
    nb_node loss = nb_cross_entropy_ignore(g, logits, t, 0, 0);
    REQUIRE_OK(nb_graph_status(g));
    nb_rng r;
    nb_rng_seed(&r, 40);
    CHECK_OK(nb_graph_init(g, &r));
    CHECK_OK(nb_graph_set_batch(g, B));
    fill_ids(g, ids, V, 0);
    fill_ids(g, t, V, 0);
    CHECK_OK(nb_forward(g, loss));
    nb_gradcheck_report rep;
    check_report("embedding -> gru -> dense -> cross_entropy",
                 nb_gradcheck(g, loss, EPS, ATOL, RTOL, &rep), &rep,
                 nb_param_count(g));
    nb_graph_free(g);
}

int main(void) {
    test_embedding();
    test_bad_token();
    test_pos_embedding();
    for (int kind = NB_RNN_TANH; kind <= NB_GRU; kind++) {
        test_recurrent((nb_rnn_kind)kind, 0);
        test_recurrent((nb_rnn_kind)kind, 1);
    }
    test_sequence_ce(0, -100);
    test_sequence_ce(0.1, 2);
    test_flat_ce_ignore();
    test_stack();
    TEST_END();
}
