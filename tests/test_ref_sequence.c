/* The sequence ops of the float library against PyTorch
 * (tests/reference/sequence.ref, written by tests/reference/sequence.py):
 * nn.Embedding, nn.RNN, nn.LSTM and nn.GRU (batch_first, every state and
 * the last one) forward and every gradient, and the cross-entropy over
 * [B, T, C] with ignore_index and label smoothing.  Within 1e-5. */
#include "nabla.h"
#include "refdata.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RTOL 1e-5
#define REF "tests/reference/sequence.ref"

static ref_file *ref;

static const ref_tensor *need(const ref_case *c, const char *name) {
    const ref_tensor *t = ref_get(c, name);
    CHECKF(t != NULL, "case %s: tensor '%s' missing", c->name, name);
    return t;
}

static void copy_in(nb_real *dst, const ref_tensor *t) {
    for (size_t k = 0; dst && t && k < t->n; k++) dst[k] = (nb_real)t->v[k];
}

/* A batched input shaped like reference tensor t (its dim 0 the batch). */
static nb_node input_like(nb_graph *g, const char *name, const ref_tensor *t) {
    return nb_input(g, name, t->ndim - 1, t->dims + 1);
}

static void compare(const ref_case *c, const char *what, const nb_real *got, size_t n) {
    char label[160];
    snprintf(label, sizeof label, "%s: %s", c->name, what);
    CHECK(got && ref_check(label, got, n, need(c, what), RTOL) == 0);
}

static const ref_case *get_case(const char *name) {
    const ref_case *c = ref_case_get(ref, name);
    CHECKF(c != NULL, "reference case %s missing", name);
    return c;
}

/* Forward and backward from loss; 0 (reported) if either fails. */
static int run(nb_graph *g, nb_node loss) {
    nb_status s = nb_forward(g, loss);
    CHECKF(s == NB_OK, "forward: %s", nb_last_error());
    if (s != NB_OK) return 0;
    nb_zero_grad(g);
    s = nb_backward(g, loss);
    CHECKF(s == NB_OK, "backward: %s", nb_last_error());
    return s == NB_OK;
}

static void test_embedding(const char *name) {
    const ref_case *c = get_case(name);
    if (!c || !need(c, "ids") || !need(c, "weight") || !need(c, "wy")) return;
    const ref_tensor *ids = ref_get(c, "ids"), *w = ref_get(c, "weight");
    nb_graph *g = nb_graph_new();
    nb_node x = input_like(g, "ids", ids), wy = input_like(g, "wy", ref_get(c, "wy"));
    nb_node y = nb_embedding(g, x, w->dims[0], w->dims[1], "emb");
    nb_node loss = nb_sum(g, nb_mul(g, y, wy));
    nb_node wn = nb_find(g, "emb.weight");
    CHECK_OK(nb_graph_status(g));
    CHECK_OK(nb_graph_set_batch(g, ids->dims[0]));
    copy_in(nb_value(g, x), ids);
    copy_in(nb_value(g, wy), ref_get(c, "wy"));
    copy_in(nb_value(g, wn), w);
    if (run(g, loss)) {
        compare(c, "y", nb_value(g, y), nb_node_numel(g, y));
        compare(c, "dweight", nb_grad(g, wn), nb_node_numel(g, wn));
    }
    nb_graph_free(g);
}

static void test_recurrent(const char *name, nb_rnn_kind kind) {
    static const char *const pnames[4] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                          "bias_hh_l0"};
    const ref_case *c = get_case(name);
    if (!c || !need(c, "x") || !need(c, "wy") || !need(c, "weight_hh_l0")) return;
    const ref_tensor *xt = ref_get(c, "x");
    int last = (int)ref_scalar(c, "last", 0), hidden = ref_get(c, "weight_hh_l0")->dims[1];
    nb_graph *g = nb_graph_new();
    nb_node x = input_like(g, "x", xt), wy = input_like(g, "wy", ref_get(c, "wy"));
    CHECK_OK(nb_requires_grad(g, x, 1));
    nb_node y = nb_recurrent(g, x, kind, hidden, last, "rec");
    nb_node loss = nb_sum(g, nb_mul(g, y, wy));
    CHECK_OK(nb_graph_status(g));
    CHECK_OK(nb_graph_set_batch(g, xt->dims[0]));
    copy_in(nb_value(g, x), xt);
    copy_in(nb_value(g, wy), ref_get(c, "wy"));
    nb_node p[4];
    for (int i = 0; i < 4; i++) {
        char full[64];
        snprintf(full, sizeof full, "rec.%s", pnames[i]);
        p[i] = nb_find(g, full);
        CHECKF(p[i] != NB_NONE && nb_node_numel(g, p[i]) == need(c, pnames[i])->n,
               "%s: parameter %s", name, full);
        if (p[i] == NB_NONE) return;
        copy_in(nb_value(g, p[i]), ref_get(c, pnames[i]));
    }
    if (run(g, loss)) {
        compare(c, "y", nb_value(g, y), nb_node_numel(g, y));
        compare(c, "dx", nb_grad(g, x), nb_node_numel(g, x));
        for (int i = 0; i < 4; i++) {
            char dname[64];
            snprintf(dname, sizeof dname, "d%s", pnames[i]);
            compare(c, dname, nb_grad(g, p[i]), nb_node_numel(g, p[i]));
        }
    }
    nb_graph_free(g);
}

static void test_ce_seq(const char *name) {
    const ref_case *c = get_case(name);
    if (!c || !need(c, "logits") || !need(c, "target")) return;
    const ref_tensor *lt = ref_get(c, "logits"), *tt = ref_get(c, "target");
    nb_graph *g = nb_graph_new();
    nb_node x = input_like(g, "logits", lt), t = input_like(g, "target", tt);
    CHECK_OK(nb_requires_grad(g, x, 1));
    nb_node ce = nb_cross_entropy_ignore(g, x, t, (nb_real)ref_scalar(c, "smoothing", 0),
                                         (int)ref_scalar(c, "ignore_index", -100));
    nb_node loss = nb_scale(g, ce, (nb_real)ref_scalar(c, "gscale", 1));
    CHECK_OK(nb_graph_status(g));
    CHECK_OK(nb_graph_set_batch(g, lt->dims[0]));
    copy_in(nb_value(g, x), lt);
    copy_in(nb_value(g, t), tt);
    if (run(g, loss)) {
        compare(c, "loss", nb_value(g, ce), 1);
        compare(c, "dlogits", nb_grad(g, x), nb_node_numel(g, x));
    }
    nb_graph_free(g);
}

int main(void) {
    ref = ref_load(REF);
    CHECK(ref != NULL);
    if (!ref) TEST_END();
    test_embedding("embedding_small");
    test_embedding("embedding_wide");
    static const struct { const char *name; nb_rnn_kind kind; } rec[] = {
        {"rnn_seq", NB_RNN_TANH}, {"rnn_last", NB_RNN_TANH}, {"lstm_seq", NB_LSTM},
        {"lstm_last", NB_LSTM},   {"gru_seq", NB_GRU},       {"gru_last", NB_GRU},
    };
    for (size_t k = 0; k < sizeof rec / sizeof rec[0]; k++) test_recurrent(rec[k].name, rec[k].kind);
    test_ce_seq("ce_seq_default");
    test_ce_seq("ce_seq_ignore0");
    test_ce_seq("ce_seq_smooth");
    ref_free(ref);
    TEST_END();
}
