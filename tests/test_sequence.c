/* Sequences in the model language and in training: `input T tokens=V`,
 * embedding, pos_embedding, rnn/lstm/gru (last=) and the cross-entropy per
 * position with ignore_index build with PyTorch's parameter names and
 * initialisation, and
 * their mistakes give errors naming the line; nb_evaluate and nb_fit count
 * accuracy per position, leave ignored targets out, and weight the loss
 * of each batch by the positions it averaged; a bad token in the data is
 * reported with the sample and the position. */
#include "fit_support.h"
#include "nabla.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void check_param(nb_graph *g, const char *name, int d0, int d1) {
    nb_node p = nb_find(g, name);
    int ndim = 0, dims[NB_MAX_DIMS] = {0};
    if (p != NB_NONE) nb_node_shape(g, p, &ndim, dims);
    CHECKF(p != NB_NONE && strcmp(nb_node_op(g, p), "param") == 0 && ndim == (d1 ? 2 : 1) &&
           dims[0] == d0 && (!d1 || dims[1] == d1), "%s: ndim %d [%d, %d]", name, ndim,
           dims[0], dims[1]);
}

static void test_model_file(void) {
    nb_model m;
    const char *ok = "input 8 tokens=27\n"
                     "emb = embedding 16\n"
                     "pos = pos_embedding\n"
                     "lstm 24\n"
                     "g = gru 20\n"
                     "dense 27\n"
                     "loss cross_entropy ignore_index=0\n";
    REQUIRE_OK(nb_model_parse(ok, "seq.nn", &m));
    nb_graph *g = m.graph;
    CHECK(m.vocab == 27 && m.classes == 27);
    check_param(g, "emb.weight", 27, 16);
    check_param(g, "pos.weight", 8, 16);
    check_param(g, "2.weight_ih_l0", 96, 16);
    check_param(g, "2.weight_hh_l0", 96, 24);
    check_param(g, "2.bias_ih_l0", 96, 0);
    check_param(g, "2.bias_hh_l0", 96, 0);
    check_param(g, "g.weight_ih_l0", 60, 24);
    check_param(g, "g.weight_hh_l0", 60, 20);
    check_param(g, "4.weight", 27, 20);
    CHECK(strcmp(nb_node_op(g, nb_find(g, "2")), "lstm") == 0);
    CHECK(strcmp(nb_node_op(g, nb_find(g, "g")), "gru") == 0);
    int ndim, dims[NB_MAX_DIMS];
    CHECK_OK(nb_graph_set_batch(g, 5));
    CHECK(nb_node_shape(g, m.output, &ndim, dims) == NB_OK && ndim == 3 && dims[0] == 5 &&
          dims[1] == 8 && dims[2] == 27);
    CHECK(nb_node_shape(g, m.target, &ndim, dims) == NB_OK && ndim == 2 && dims[1] == 8);
    nb_model_free(&m);
    /* the last state only, into a classifier over [B, H] */
    REQUIRE_OK(nb_model_parse("input 5 tokens=4\nembedding 3\nrnn 6 last=true\ndense 2\n"
                              "loss cross_entropy\n", "last.nn", &m));
    CHECK_OK(nb_graph_set_batch(m.graph, 3));
    CHECK(nb_node_shape(m.graph, m.output, &ndim, dims) == NB_OK && ndim == 2 && dims[1] == 2);
    CHECK(m.vocab == 4 && m.classes == 2);
    check_param(m.graph, "0.weight", 4, 3);
    check_param(m.graph, "1.weight_hh_l0", 6, 6);
    nb_model_free(&m);
}

static void test_model_errors(void) {
    static const struct { const char *text, *needle; } cases[] = {
        {"input 8\nembedding 4\n", ":2: embedding: the model input must be tokens"},
        {"input 8 tokens=5\nembedding\n", ":2: embedding: give the embedding dimension"},
        {"input 8 2 tokens=5\n", ":1: input: token input takes one dimension"},
        {"input 8 tokens=0\n", ":1: input: option tokens=0 is not an integer from 1"},
        {"input 8 tokens=5\nembedding 4\ngru\n", ":3: gru: give the hidden size"},
        {"input 8 tokens=5\nembedding 4\nlstm 3 last=maybe\n",
         ":3: lstm: option last=maybe must be true or false"},
        {"input 8\nrnn 3\n", ":2: rnn: input 'input' has shape"},
        {"input 8\npos_embedding\n", ":2: pos_embedding: input 'input' has shape"},
        {"input 8 tokens=5\nembedding 4\ngru 3\nloss cross_entropy ignore_index=x\n",
         ":4: loss: option ignore_index=x is not an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nb_model m;
        nb_status s = nb_model_parse(cases[i].text, "seq.nn", &m);
        CHECKF(s != NB_OK && strstr(nb_last_error(), cases[i].needle), "case %zu: '%s' lacks '%s'",
               i, nb_last_error(), cases[i].needle);
    }
}

/* ids -> embedding of V rows of V values: the logits of a position are the
 * row of its token, set here, so every prediction and loss is known. */
enum { V = 4, T = 3, N = 5 };
static const nb_real ids[N * T] = {0, 1, 2, 3, 0, 1, 2, 2, 2, 1, 3, 0, 3, 3, 1};
/* targets; 0 is the ignore_index: 4 left out in the first batch (samples
 * 0..2), none in the second (3..4) */
static const nb_real targets[N * T] = {1, 0, 2, 0, 0, 1, 2, 3, 2, 1, 3, 2, 3, 1, 1};

static nb_graph *lookup_model(nb_node *x, nb_node *y, nb_node *out, nb_node *loss) {
    nb_graph *g = nb_graph_new();
    int t = T;
    *x = nb_input(g, "x", 1, &t);
    *y = nb_input(g, "y", 1, &t);
    *out = nb_embedding(g, *x, V, V, "table");
    *loss = nb_cross_entropy_ignore(g, *out, *y, 0, 0);
    nb_rng r;
    nb_rng_seed(&r, 7);
    if (nb_graph_status(g) != NB_OK || nb_graph_init(g, &r) != NB_OK) return g;
    nb_real *w = nb_value(g, nb_find(g, "table.weight"));
    for (int k = 0; k < V * V; k++) w[k] = (nb_real)((k * 7) % 5) * 0.5f; /* row maxima unique */
    return g;
}

/* The figures from the definition, and the mean of the two batch means
 * weighted by samples (what the loss would be without position weights). */
static void expected(double *loss, double *acc, double *per_sample_weighting) {
    double sum = 0, batch_sum[2] = {0, 0};
    int counted = 0, correct = 0, batch_counted[2] = {0, 0};
    for (int k = 0; k < N * T; k++) {
        if (targets[k] == 0) continue;
        const int row = (int)ids[k];
        double m = -INFINITY, z = 0;
        int best = 0;
        for (int c = 0; c < V; c++) {
            double v = ((row * V + c) * 7 % 5) * 0.5;
            if (v > m) m = v, best = c;
        }
        for (int c = 0; c < V; c++) z += exp(((row * V + c) * 7 % 5) * 0.5 - m);
        double nll = -(((row * V + (int)targets[k]) * 7 % 5) * 0.5 - m - log(z));
        sum += nll;
        counted++;
        correct += best == (int)targets[k];
        batch_sum[k >= 3 * T] += nll;
        batch_counted[k >= 3 * T]++;
    }
    *loss = sum / counted;
    *acc = (double)correct / counted;
    *per_sample_weighting = (3 * batch_sum[0] / batch_counted[0] +
                             2 * batch_sum[1] / batch_counted[1]) / N;
}

static void test_accuracy_per_position(void) {
    nb_node x, y, out, loss;
    nb_graph *g = lookup_model(&x, &y, &out, &loss);
    REQUIRE_OK(nb_graph_status(g));
    double want_loss, want_acc, naive;
    expected(&want_loss, &want_acc, &naive);
    CHECKF(fabs(naive - want_loss) > 1e-3, "the test data must tell the weightings apart "
           "(%g vs %g)", naive, want_loss);
    nb_data d = test_data(ids, targets, N, T, T);
    double l, a;
    CHECK_OK(nb_evaluate(g, x, y, loss, out, &d, 3, &l, &a));
    CHECK_CLOSE(l, want_loss, 1e-6, 1e-6);
    CHECK_CLOSE(a, want_acc, 1e-12, 0);
    /* nb_fit sees the same figures in its first epoch (a rate too small to
     * move any weight), for the training and the validation set */
    nb_fit_config cfg = nb_fit_defaults(x, y, loss, out);
    cfg.optimizer = test_optim(g, NB_OPT_SGD, 1e-30);
    cfg.epochs = 1;
    cfg.batch_size = 3;
    cfg.no_shuffle = 1;
    nb_epoch_stats st;
    CHECK_OK(nb_fit(g, &cfg, &d, &d, &st));
    CHECK_CLOSE(st.train_loss, want_loss, 1e-6, 1e-6);
    CHECK_CLOSE(st.train_acc, want_acc, 1e-12, 0);
    CHECK_CLOSE(st.val_loss, want_loss, 1e-6, 1e-6);
    CHECK_CLOSE(st.val_acc, want_acc, 1e-12, 0);
    /* a token outside the table is reported with its sample and position */
    nb_real bad[N * T];
    memcpy(bad, ids, sizeof bad);
    bad[4 * T + 1] = V;
    nb_data dbad = test_data(bad, targets, N, T, T);
    nb_status s = nb_evaluate(g, x, y, loss, out, &dbad, 3, &l, &a);
    CHECKF(s == NB_ERR_ARG && strstr(nb_last_error(), "samples 3..4") &&
           strstr(nb_last_error(), "embedding 'table': sample 1 of the batch, position 1: "
                  "token 4 is not an integer in [0, 4)"), "%s", nb_last_error());
    nb_graph_free(g);
}

/* PyTorch's initialisation: the tables N(0, 1), the recurrent weights and
 * biases U(-1/sqrt(H), 1/sqrt(H)). */
static void test_init(void) {
    nb_model m;
    REQUIRE_OK(nb_model_parse("input 40 tokens=50\nembedding 40\npos_embedding\nlstm 16\n"
                              "gru 25\nrnn 100\n", "init.nn", &m));
    nb_rng r;
    nb_rng_seed(&r, 11);
    CHECK_OK(nb_graph_init(m.graph, &r));
    for (int i = 0; i < nb_param_tensor_count(m.graph); i++) {
        nb_node p = nb_param_tensor(m.graph, i);
        const char *name = nb_node_name(m.graph, p);
        const nb_real *v = nb_value(m.graph, p);
        size_t n = nb_node_numel(m.graph, p);
        double sum = 0, sq = 0, lo = INFINITY, hi = -INFINITY;
        for (size_t k = 0; k < n; k++) {
            sum += v[k], sq += (double)v[k] * v[k];
            lo = fmin(lo, v[k]), hi = fmax(hi, v[k]);
        }
        double mean = sum / n, sd = sqrt(sq / n - mean * mean);
        if (i < 2) { /* the two tables, 2000 and 1600 values */
            CHECKF(fabs(mean) < 0.1 && fabs(sd - 1) < 0.06, "%s: mean %g sd %g, want N(0, 1)",
                   name, mean, sd);
            continue;
        }
        int H = i < 6 ? 16 : i < 10 ? 25 : 100;
        double bound = 1 / sqrt((double)H);
        CHECKF(lo >= -bound && hi <= bound && hi - lo > 1.6 * bound,
               "%s: values in [%g, %g], want U(+-%g)", name, lo, hi, bound);
    }
    CHECK(nb_param_tensor_count(m.graph) == 14);
    nb_model_free(&m);
}

/* Recurrent layers run parts of the batch through time in parallel: the
 * states and every gradient are the same bits on 1, 2 and 3 threads. */
static void test_threads_same_bits(void) {
    enum { B = 11, T = 7, D = 5 };
    static nb_real xs[B * T * D];
    for (int k = 0; k < B * T * D; k++) xs[k] = (nb_real)sin(0.37 * k) * 2;
    nb_real *ref = NULL;
    size_t len = 0;
    const int threads_before = nb_threads();
    for (int threads = 1; threads <= 3; threads++) {
        CHECK_OK(nb_set_threads(threads));
        nb_graph *g = nb_graph_new();
        int dims[2] = {T, D};
        nb_node x = nb_input(g, "x", 2, dims);
        CHECK_OK(nb_requires_grad(g, x, 1));
        nb_node h = nb_recurrent(g, x, NB_LSTM, 16, 0, NULL);
        h = nb_recurrent(g, h, NB_GRU, 20, 0, NULL);
        h = nb_recurrent(g, h, NB_RNN_TANH, 9, 1, NULL);
        nb_node loss = nb_mean(g, nb_mul(g, h, h));
        nb_rng r;
        nb_rng_seed(&r, 5);
        REQUIRE_OK(nb_graph_init(g, &r));
        CHECK_OK(nb_set_input(g, x, xs, B));
        CHECK_OK(nb_forward(g, loss));
        nb_zero_grad(g);
        CHECK_OK(nb_backward(g, loss));
        size_t nh = nb_node_numel(g, h), np = nb_param_count(g), nx = (size_t)B * T * D;
        nb_real *got = malloc((nh + np + nx) * sizeof *got);
        memcpy(got, nb_value(g, h), nh * sizeof *got);
        memcpy(got + nh, nb_grads(g), np * sizeof *got);
        memcpy(got + nh + np, nb_grad(g, x), nx * sizeof *got);
        if (!ref) {
            ref = got, len = nh + np + nx;
        } else {
            CHECKF(len == nh + np + nx && memcmp(ref, got, len * sizeof *got) == 0,
                   "%d threads: states or gradients differ from 1 thread", threads);
            free(got);
        }
        nb_graph_free(g);
    }
    free(ref);
    CHECK_OK(nb_set_threads(threads_before));
}

int main(void) {
    test_init();
    test_threads_same_bits();
    test_model_file();
    test_model_errors();
    test_accuracy_per_position();
    test_free_optims();
    TEST_END();
}
