/* The trainer: reproducibility, learning, NaN detection, callbacks, metrics
 * and configuration errors.  Most losses here are built from the core ops
 * (sub, mul, mean) so the trainer is tested on its own; one test uses the
 * real classification set-up (ReLU, cross-entropy on class indices). */
#include "test.h"
#include "nabla.h"
#include "core/internal.h"
#include "fit_support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* mean((a - b)^2) from core ops */
static nb_node mse(nb_graph *g, nb_node a, nb_node b) {
    nb_node d = nb_sub(g, a, b);
    return nb_mean(g, nb_mul(g, d, d));
}

/* Three Gaussian blobs in 2-D (centres far apart), one-hot targets. */
enum { BLOB_N = 90, CLASSES = 3 };
static nb_real blob_x[BLOB_N * 2], blob_onehot[BLOB_N * CLASSES], blob_class[BLOB_N];

static void make_blobs(uint64_t seed) {
    const double cx[CLASSES] = {-2, 2, 0}, cy[CLASSES] = {-1, -1, 2};
    nb_rng r;
    nb_rng_seed(&r, seed);
    for (int m = 0; m < BLOB_N; m++) {
        int c = m % CLASSES;
        blob_x[2 * m] = (nb_real)(cx[c] + 0.5 * nb_rng_normal(&r));
        blob_x[2 * m + 1] = (nb_real)(cy[c] + 0.5 * nb_rng_normal(&r));
        for (int k = 0; k < CLASSES; k++) blob_onehot[m * CLASSES + k] = (nb_real)(k == c);
        blob_class[m] = (nb_real)c;
    }
}

/* x [B,2] -> dense 8 -> dense 3 = scores; loss MSE against one-hot rows. */
typedef struct model {
    nb_graph *g;
    nb_node x, y, out, loss;
} model;

static model make_model(uint64_t init_seed) {
    model m;
    int two = 2, c = CLASSES;
    m.g = nb_graph_new();
    m.x = nb_input(m.g, "x", 1, &two);
    m.y = nb_input(m.g, "y", 1, &c);
    nb_node h = nb_dense(m.g, m.x, 8, "h", NULL);
    m.out = nb_dense(m.g, h, CLASSES, "out", NULL);
    m.loss = mse(m.g, m.out, m.y);
    nb_rng r;
    nb_rng_seed(&r, init_seed);
    CHECK_OK(nb_graph_status(m.g));
    CHECK_OK(nb_graph_init(m.g, &r));
    return m;
}

static nb_data blobs(void) {
    return test_data(blob_x, blob_onehot, BLOB_N, 2, CLASSES);
}

static nb_real *trained_params(uint64_t shuffle_seed, int no_shuffle, size_t *n) {
    model m = make_model(11);
    nb_fit_config cfg = nb_fit_defaults(m.x, m.y, m.loss, m.out);
    cfg.epochs = 4;
    cfg.batch_size = 8; /* 90 = 11 * 8 + 2: a partial last batch */
    cfg.seed = shuffle_seed;
    cfg.no_shuffle = no_shuffle;
    cfg.optimizer = test_optim(m.g, NB_OPT_ADAM, 0.01);
    nb_data d = blobs();
    CHECK_OK(nb_fit(m.g, &cfg, &d, NULL, NULL));
    *n = nb_param_count(m.g);
    nb_real *p = malloc(*n * sizeof *p);
    memcpy(p, nb_params(m.g), *n * sizeof *p);
    nb_graph_free(m.g);
    return p;
}

static void test_reproducible(void) {
    make_blobs(1);
    size_t n1, n2, n3, n4, n5;
    nb_real *a = trained_params(5, 0, &n1);
    nb_real *b = trained_params(5, 0, &n2);
    nb_real *c = trained_params(6, 0, &n3);
    nb_real *d = trained_params(5, 1, &n4);
    nb_real *e = trained_params(6, 1, &n5);
    CHECK(n1 == n2 && n1 == n3 && n1 == n4 && n1 == n5);
    CHECKF(memcmp(a, b, n1 * sizeof *a) == 0, "same seed gave different parameters");
    CHECKF(memcmp(a, c, n1 * sizeof *a) != 0, "different seeds gave identical parameters");
    /* the seed drives only the shuffle: without shuffling it does not matter */
    CHECKF(memcmp(d, e, n1 * sizeof *d) == 0, "no_shuffle results depend on the seed");
    CHECKF(memcmp(a, d, n1 * sizeof *a) != 0, "shuffling changed nothing");
    free(a); free(b); free(c); free(d); free(e);
}

static int record_loss(const nb_epoch_stats *s, void *user) {
    double *first = user;
    if (s->epoch == 1) *first = s->train_loss;
    return 0;
}

static void test_learns(void) {
    make_blobs(1);
    model m = make_model(3);
    nb_data d = blobs();
    /* a separate validation set from the same distribution */
    static nb_real vx[BLOB_N * 2], vy[BLOB_N * CLASSES];
    make_blobs(2);
    memcpy(vx, blob_x, sizeof vx);
    memcpy(vy, blob_onehot, sizeof vy);
    make_blobs(1);
    nb_data v = test_data(vx, vy, BLOB_N, 2, CLASSES);
    double before_loss, before_acc;
    CHECK_OK(nb_evaluate(m.g, m.x, m.y, m.loss, m.out, &v, 16, &before_loss, &before_acc));
    nb_fit_config cfg = nb_fit_defaults(m.x, m.y, m.loss, m.out);
    cfg.epochs = 40;
    cfg.batch_size = 16;
    cfg.optimizer = test_optim(m.g, NB_OPT_ADAM, 0.02);
    double first = -1;
    cfg.on_epoch = record_loss;
    cfg.user = &first;
    nb_epoch_stats last;
    CHECK_OK(nb_fit(m.g, &cfg, &d, &v, &last));
    CHECK(last.epoch == 40);
    CHECK(last.step == 40 * 6); /* ceil(90 / 16) = 6 batches per epoch */
    CHECKF(last.train_loss < 0.5 * first, "loss %g -> %g", first, last.train_loss);
    CHECKF(last.train_acc >= 0.95, "train accuracy %g", last.train_acc);
    CHECKF(last.val_acc >= 0.9, "val accuracy %g (before training %g)", last.val_acc,
           before_acc);
    CHECKF(last.val_loss < before_loss, "val loss %g -> %g", before_loss, last.val_loss);
    CHECK(last.seconds >= 0);
    /* the validation numbers are exactly what nb_evaluate says afterwards */
    double l, a;
    CHECK_OK(nb_evaluate(m.g, m.x, m.y, m.loss, m.out, &v, 16, &l, &a));
    CHECK(l == last.val_loss && a == last.val_acc);
    nb_graph_free(m.g);
}

/* nb_evaluate's loss is the per-sample mean even when the last batch is short,
 * and its accuracy is the argmax match: compared with a direct computation. */
static void test_evaluate_exact(void) {
    make_blobs(1);
    model m = make_model(4);
    nb_data d = blobs();
    double l7, a7, l90, a90;
    CHECK_OK(nb_evaluate(m.g, m.x, m.y, m.loss, m.out, &d, 7, &l7, &a7));
    CHECK_OK(nb_evaluate(m.g, m.x, m.y, m.loss, m.out, &d, 90, &l90, &a90));
    /* by hand: the two dense layers in double */
    const nb_real *W1 = nb_value(m.g, nb_find(m.g, "h.weight"));
    const nb_real *b1 = nb_value(m.g, nb_find(m.g, "h.bias"));
    const nb_real *W2 = nb_value(m.g, nb_find(m.g, "out.weight"));
    const nb_real *b2 = nb_value(m.g, nb_find(m.g, "out.bias"));
    double sq = 0;
    int correct = 0;
    for (int s = 0; s < BLOB_N; s++) {
        double h[8], o[CLASSES];
        for (int j = 0; j < 8; j++)
            h[j] = b1[j] + W1[2 * j] * blob_x[2 * s] + W1[2 * j + 1] * blob_x[2 * s + 1];
        int best = 0;
        for (int k = 0; k < CLASSES; k++) {
            o[k] = b2[k];
            for (int j = 0; j < 8; j++) o[k] += W2[8 * k + j] * h[j];
            double e = o[k] - blob_onehot[s * CLASSES + k];
            sq += e * e;
            if (o[k] > o[best]) best = k;
        }
        correct += best == (int)blob_class[s];
    }
    CHECK_CLOSE(l7, sq / (BLOB_N * CLASSES), 1e-6, 1e-5);
    CHECK_CLOSE(l90, sq / (BLOB_N * CLASSES), 1e-6, 1e-5);
    CHECK_CLOSE(a7, (double)correct / BLOB_N, 0, 0);
    CHECK(a7 == a90);
    /* NB_NONE output: accuracy -1 */
    CHECK_OK(nb_evaluate(m.g, m.x, m.y, m.loss, NB_NONE, &d, 7, &l7, &a7));
    CHECK(a7 == -1);
    nb_graph_free(m.g);
}

/* Accuracy against class-index targets: a target of one value per sample.
 * The loss here ignores the target (any scalar depending on the parameters
 * will do); accuracy must still be computed against the indices. */
static void test_class_index_accuracy(void) {
    make_blobs(1);
    nb_graph *g = nb_graph_new();
    int two = 2;
    nb_node x = nb_input(g, "x", 1, &two);
    nb_node y = nb_input(g, "y", 0, NULL); /* [B] class indices */
    nb_node out = nb_dense(g, x, CLASSES, "out", NULL);
    nb_node loss = nb_mean(g, nb_mul(g, out, out));
    CHECK_OK(nb_graph_status(g));
    /* weights that classify the blobs: score_k = -|x - centre_k|^2 up to a constant */
    nb_real *W = nb_value(g, nb_find(g, "out.weight"));
    nb_real *b = nb_value(g, nb_find(g, "out.bias"));
    const double cx[CLASSES] = {-2, 2, 0}, cy[CLASSES] = {-1, -1, 2};
    for (int k = 0; k < CLASSES; k++) {
        W[2 * k] = (nb_real)(2 * cx[k]);
        W[2 * k + 1] = (nb_real)(2 * cy[k]);
        b[k] = (nb_real)(-(cx[k] * cx[k] + cy[k] * cy[k]));
    }
    int expect = 0;
    for (int s = 0; s < BLOB_N; s++) {
        int best = 0;
        double sc[CLASSES];
        for (int k = 0; k < CLASSES; k++) {
            sc[k] = b[k] + W[2 * k] * blob_x[2 * s] + W[2 * k + 1] * blob_x[2 * s + 1];
            if (sc[k] > sc[best]) best = k;
        }
        expect += best == (int)blob_class[s];
    }
    nb_data d = test_data(blob_x, blob_class, BLOB_N, 2, 1);
    double l, a;
    CHECK_OK(nb_evaluate(g, x, y, loss, out, &d, 32, &l, &a));
    CHECK_CLOSE(a, (double)expect / BLOB_N, 0, 0);
    CHECKF(a > 0.9, "accuracy %g", a);
    /* shift every label by one class: accuracy must collapse */
    static nb_real wrong[BLOB_N];
    for (int s = 0; s < BLOB_N; s++) wrong[s] = (nb_real)(((int)blob_class[s] + 1) % CLASSES);
    nb_data dw = test_data(blob_x, wrong, BLOB_N, 2, 1);
    CHECK_OK(nb_evaluate(g, x, y, loss, out, &dw, 32, &l, &a));
    CHECKF(a < 0.1, "accuracy with wrong labels %g", a);
    nb_graph_free(g);
}

/* The usual classifier: dense-ReLU-dense, cross-entropy on class indices. */
static void test_cross_entropy_classifier(void) {
    make_blobs(1);
    nb_graph *g = nb_graph_new();
    int two = 2;
    nb_node x = nb_input(g, "x", 1, &two);
    nb_node y = nb_input(g, "y", 0, NULL);
    nb_node h = nb_relu(g, nb_dense(g, x, 16, "h", NULL));
    nb_node logits = nb_dense(g, h, CLASSES, "out", NULL);
    nb_node loss = nb_cross_entropy(g, logits, y, 0);
    CHECK_OK(nb_graph_status(g));
    nb_rng r;
    nb_rng_seed(&r, 9);
    CHECK_OK(nb_graph_init(g, &r));
    nb_data d = test_data(blob_x, blob_class, BLOB_N, 2, 1);
    double loss0, acc0;
    CHECK_OK(nb_evaluate(g, x, y, loss, logits, &d, 32, &loss0, &acc0));
    nb_fit_config cfg = nb_fit_defaults(x, y, loss, logits);
    cfg.epochs = 30;
    cfg.batch_size = 16;
    cfg.optimizer = test_optim(g, NB_OPT_ADAM, 0.01);
    cfg.seed = 3;
    nb_epoch_stats last;
    CHECK_OK(nb_fit(g, &cfg, &d, &d, &last));
    CHECKF(last.train_acc >= 0.95 && last.val_acc >= 0.95, "accuracy train %g val %g",
           last.train_acc, last.val_acc);
    CHECKF(last.val_loss < 0.3 * loss0, "loss %g -> %g", loss0, last.val_loss);

    /* a label that is not a class: the loss op reports it, the trainer says where */
    static nb_real bad[BLOB_N];
    memcpy(bad, blob_class, sizeof bad);
    bad[21] = 7;
    nb_data db = test_data(blob_x, bad, BLOB_N, 2, 1);
    cfg.no_shuffle = 1;
    cfg.batch_size = 10;
    cfg.optimizer = test_optim(g, NB_OPT_ADAM, 0.01);
    nb_status s = nb_fit(g, &cfg, &db, NULL, &last);
    CHECKF(s != NB_OK && strstr(nb_last_error(), "nb_fit: epoch 1, step 3 of 9") != NULL,
           "status %s, message: %s", nb_status_name(s), nb_last_error());
    s = nb_evaluate(g, x, y, loss, logits, &db, 8, NULL, NULL);
    CHECKF(s != NB_OK && strstr(nb_last_error(), "nb_evaluate: samples 16..23") != NULL,
           "status %s, message: %s", nb_status_name(s), nb_last_error());
    cfg.no_shuffle = 0;
    cfg.optimizer = test_optim(g, NB_OPT_ADAM, 0.01);
    s = nb_fit(g, &cfg, &d, &db, &last);
    CHECKF(s != NB_OK && strstr(nb_last_error(), "nb_fit: validation: samples 20..29"),
           "status %s, message: %s", nb_status_name(s), nb_last_error());
    CHECK(last.epoch == 0);
    nb_graph_free(g);
}

static int stop_at_3(const nb_epoch_stats *s, void *user) {
    int *calls = user;
    (*calls)++;
    return s->epoch == 3;
}

static void test_callback_stop(void) {
    make_blobs(1);
    model m = make_model(3);
    nb_data d = blobs();
    nb_fit_config cfg = nb_fit_defaults(m.x, m.y, m.loss, NB_NONE);
    cfg.epochs = 10;
    cfg.batch_size = 30;
    int calls = 0;
    cfg.on_epoch = stop_at_3;
    cfg.user = &calls;
    cfg.optimizer = test_optim(m.g, NB_OPT_ADAM, -1);
    nb_epoch_stats last;
    CHECK_OK(nb_fit(m.g, &cfg, &d, NULL, &last));
    CHECK(calls == 3);
    CHECK(last.epoch == 3);
    CHECK(last.step == 9);
    CHECK(last.train_acc == -1 && last.val_loss == -1 && last.val_acc == -1);
    nb_graph_free(m.g);
}

/* drop_last skips the short batch; without it the short batch is a step. */
static void test_drop_last(void) {
    make_blobs(1);
    model m = make_model(3);
    nb_data d = blobs();
    nb_fit_config cfg = nb_fit_defaults(m.x, m.y, m.loss, m.out);
    cfg.epochs = 2;
    cfg.batch_size = 40; /* 90 = 2 * 40 + 10 */
    nb_epoch_stats last;
    cfg.optimizer = test_optim(m.g, NB_OPT_ADAM, -1);
    CHECK_OK(nb_fit(m.g, &cfg, &d, NULL, &last));
    CHECK(last.step == 6);
    cfg.drop_last = 1;
    cfg.optimizer = test_optim(m.g, NB_OPT_ADAM, -1);
    CHECK_OK(nb_fit(m.g, &cfg, &d, NULL, &last));
    CHECK(last.step == 4);
    /* batch larger than the dataset: one batch of everything */
    cfg.drop_last = 0;
    cfg.batch_size = 1000;
    cfg.optimizer = test_optim(m.g, NB_OPT_ADAM, -1);
    CHECK_OK(nb_fit(m.g, &cfg, &d, NULL, &last));
    CHECK(last.step == 2);
    nb_graph_free(m.g);
}

static double lrs[8];
static int record_lr(const nb_epoch_stats *s, void *user) {
    (void)user;
    lrs[s->epoch - 1] = s->lr;
    return 0;
}

static void test_schedule_and_mode(void) {
    make_blobs(1);
    model m = make_model(3);
    nb_data d = blobs();
    nb_fit_config cfg = nb_fit_defaults(m.x, m.y, m.loss, m.out);
    cfg.epochs = 6;
    cfg.optimizer = test_optim(m.g, NB_OPT_SGD, 0.1);
    cfg.schedule = nb_schedule_defaults(NB_SCHED_STEP);
    cfg.schedule.step_size = 2;
    cfg.schedule.gamma = 0.5;
    cfg.on_epoch = record_lr;
    nb_graph_set_training(m.g, 0);
    CHECK_OK(nb_fit(m.g, &cfg, &d, &d, NULL));
    const double want[6] = {0.1, 0.1, 0.05, 0.05, 0.025, 0.025};
    for (int e = 0; e < 6; e++) CHECK_CLOSE(lrs[e], want[e], 1e-15, 1e-12);
    CHECKF(m.g->training == 0, "nb_fit did not restore eval mode");
    nb_graph_set_training(m.g, 1);
    cfg.optimizer = test_optim(m.g, NB_OPT_SGD, 0.1);
    CHECK_OK(nb_fit(m.g, &cfg, &d, &d, NULL));
    CHECKF(m.g->training == 1, "nb_fit did not restore train mode");
    nb_graph_free(m.g);
}

/* With SGD, lr 1 and one step, the parameter change is the clipped gradient,
 * whose norm is at most clip_norm. */
static void test_clip(void) {
    make_blobs(1);
    model m = make_model(3);
    nb_data d = blobs();
    size_t n = nb_param_count(m.g);
    nb_real *before = malloc(n * sizeof *before);
    memcpy(before, nb_params(m.g), n * sizeof *before);
    nb_fit_config cfg = nb_fit_defaults(m.x, m.y, m.loss, NB_NONE);
    cfg.epochs = 1;
    cfg.batch_size = BLOB_N;
    cfg.optimizer = test_optim(m.g, NB_OPT_SGD, 1);
    cfg.clip_norm = 1e-3;
    CHECK_OK(nb_fit(m.g, &cfg, &d, NULL, NULL));
    double sq = 0;
    for (size_t k = 0; k < n; k++) {
        double dk = (double)nb_params(m.g)[k] - before[k];
        sq += dk * dk;
    }
    CHECKF(sqrt(sq) <= 1e-3 * 1.001 && sqrt(sq) > 0.9e-3, "step norm %g", sqrt(sq));
    free(before);
    nb_graph_free(m.g);
}

/* A NaN in sample 9 shows up in the third batch of 4 (no shuffling). */
static void test_nan(void) {
    make_blobs(1);
    model m = make_model(3);
    static nb_real x[BLOB_N * 2];
    memcpy(x, blob_x, sizeof x);
    x[2 * 9 + 1] = NAN;
    nb_data d = test_data(x, blob_onehot, BLOB_N, 2, CLASSES);
    nb_fit_config cfg = nb_fit_defaults(m.x, m.y, m.loss, m.out);
    cfg.batch_size = 4;
    cfg.no_shuffle = 1;
    cfg.optimizer = test_optim(m.g, NB_OPT_ADAM, -1);
    nb_epoch_stats last;
    nb_status s = nb_fit(m.g, &cfg, &d, NULL, &last);
    CHECK(s == NB_ERR_NUMERIC);
    CHECKF(strstr(nb_last_error(), "epoch 1, step 3 of 23") != NULL, "message: %s",
           nb_last_error());
    CHECK(last.epoch == 0);
    CHECK(m.g->training == 1);
    /* divergence: a huge learning rate blows the loss up in a later epoch */
    make_blobs(1);
    model m2 = make_model(3);
    d.x_real = blob_x;
    cfg = nb_fit_defaults(m2.x, m2.y, m2.loss, m2.out);
    cfg.optimizer = test_optim(m2.g, NB_OPT_SGD, 1e3);
    cfg.epochs = 50;
    s = nb_fit(m2.g, &cfg, &d, NULL, &last);
    CHECK(s == NB_ERR_NUMERIC);
    CHECKF(strstr(nb_last_error(), "is inf at epoch") && strstr(nb_last_error(), "epoch"),
           "message: %s", nb_last_error());
    /* it names where the first infinity appeared: here the square (d * d)
     * of the loss overflows first */
    CHECKF(strstr(nb_last_error(), "the forward value of node 'mul") &&
           strstr(nb_last_error(), "(mul) is inf"), "message: %s", nb_last_error());
    nb_graph_free(m.g);
    nb_graph_free(m2.g);
}

#define CHECK_ERR(expr, status, text)                                                  \
    do {                                                                               \
        nb_status s_ = (expr);                                                         \
        CHECKF(s_ == (status) && strstr(nb_last_error(), text) != NULL,                 \
               "%s -> %s: \"%s\" (wanted %s with \"%s\")", #expr, nb_status_name(s_),   \
               nb_last_error(), nb_status_name(status), text);                         \
    } while (0)

static void test_errors(void) {
    make_blobs(1);
    model m = make_model(3);
    nb_data d = blobs();
    nb_fit_config ok = nb_fit_defaults(m.x, m.y, m.loss, m.out);
    CHECK(ok.optimizer == NULL); /* the caller's to give */
    ok.optimizer = test_optim(m.g, NB_OPT_ADAM, -1);
    nb_fit_config c;
    nb_epoch_stats last;

    CHECK(ok.epochs == 10 && ok.batch_size == 32 && ok.seed == 0 &&
          ok.schedule.kind == NB_SCHED_CONSTANT &&
          ok.clip_norm == 0 && ok.on_epoch == NULL);
    CHECK_ERR(nb_fit(NULL, &ok, &d, NULL, NULL), NB_ERR_ARG, "graph is NULL");
    CHECK_ERR(nb_fit(m.g, NULL, &d, NULL, NULL), NB_ERR_ARG, "config is NULL");
    CHECK_ERR(nb_fit(m.g, &ok, NULL, NULL, NULL), NB_ERR_ARG, "training dataset is NULL");
    c = ok; c.epochs = 0;
    CHECK_ERR(nb_fit(m.g, &c, &d, NULL, &last), NB_ERR_ARG, "epochs is 0");
    CHECK(last.epoch == 0 && last.step == 0);
    c = ok; c.batch_size = -3;
    CHECK_ERR(nb_fit(m.g, &c, &d, NULL, NULL), NB_ERR_ARG, "batch_size is -3");
    c = ok; c.input = 999;
    CHECK_ERR(nb_fit(m.g, &c, &d, NULL, NULL), NB_ERR_ARG, "input node 999 does not exist");
    c = ok; c.loss = NB_NONE;
    CHECK_ERR(nb_fit(m.g, &c, &d, NULL, NULL), NB_ERR_ARG, "loss node -1 does not exist");
    c = ok; c.input = m.out;
    CHECK_ERR(nb_fit(m.g, &c, &d, NULL, NULL), NB_ERR_ARG, "is not an input");
    c = ok; c.target = m.x;
    CHECK_ERR(nb_fit(m.g, &c, &d, NULL, NULL), NB_ERR_ARG, "same node");
    c = ok; c.loss = m.out;
    CHECK_ERR(nb_fit(m.g, &c, &d, NULL, NULL), NB_ERR_SHAPE, "expected a scalar");
    c = ok; c.clip_norm = -1;
    CHECK_ERR(nb_fit(m.g, &c, &d, NULL, NULL), NB_ERR_ARG, "clip_norm");
    c = ok; c.optimizer = NULL;
    CHECK_ERR(nb_fit(m.g, &c, &d, NULL, NULL), NB_ERR_ARG, "no optimizer");
    /* the learning rate and the other optimiser settings are the optimiser's
     * to check, once, when it is made */
    nb_optim_config oc = nb_optim_defaults(NB_OPT_ADAM);
    oc.lr = NAN;
    CHECK(nb_optim_new(&oc, nb_param_count(m.g)) == NULL);
    CHECK(strstr(nb_last_error(), "lr = nan") != NULL);
    oc = nb_optim_defaults(NB_OPT_ADAM); oc.beta1 = 2;
    CHECK_ERR(nb_optim_check(&oc), NB_ERR_ARG, "beta1");
    c = ok; c.schedule = nb_schedule_defaults(NB_SCHED_STEP); c.schedule.step_size = 0;
    CHECK_ERR(nb_fit(m.g, &c, &d, NULL, NULL), NB_ERR_ARG, "nb_fit: ");
    c = ok; c.drop_last = 1; c.batch_size = 100;
    CHECK_ERR(nb_fit(m.g, &c, &d, NULL, NULL), NB_ERR_ARG, "leaves no batch");

    nb_data bad = d;
    bad.sample_size = 3;
    CHECK_ERR(nb_fit(m.g, &ok, &bad, NULL, NULL), NB_ERR_SHAPE,
              "training dataset has x_size 3 but input 'x' takes 2");
    bad = d; bad.y_size = 1;
    CHECK_ERR(nb_fit(m.g, &ok, &bad, NULL, NULL), NB_ERR_SHAPE,
              "training dataset has y_size 1 but target 'y' takes 3");
    bad = d; bad.n = 0;
    CHECK_ERR(nb_fit(m.g, &ok, &bad, NULL, NULL), NB_ERR_ARG, "no samples");
    bad = d; bad.y = NULL;
    CHECK_ERR(nb_fit(m.g, &ok, &bad, NULL, NULL), NB_ERR_ARG, "NULL y");
    bad = d; bad.sample_size = 5;
    CHECK_ERR(nb_fit(m.g, &ok, &d, &bad, NULL), NB_ERR_SHAPE,
              "validation dataset has x_size 5");

    /* output with a single score per sample cannot give an argmax accuracy */
    nb_node one = nb_dense(m.g, m.out, 1, "one", NULL);
    c = ok; c.output = one;
    CHECK_ERR(nb_fit(m.g, &c, &d, NULL, NULL), NB_ERR_SHAPE, "at least 2 classes");
    /* output with 3 scores against a target of 2 values per sample */
    int two = 2;
    nb_node y2 = nb_input(m.g, "y2", 1, &two);
    nb_node l2 = mse(m.g, nb_dense(m.g, m.x, 2, "two", NULL), y2);
    c = ok; c.target = y2; c.loss = l2;
    CHECK_ERR(nb_fit(m.g, &c, &d, NULL, NULL), NB_ERR_SHAPE, "3 scores per sample but target");
    /* a loss that does not depend on any parameter */
    nb_node lc = nb_mean(m.g, m.y);
    c = ok; c.loss = lc;
    CHECK_ERR(nb_fit(m.g, &c, &d, NULL, NULL), NB_ERR_ARG, "does not depend on any parameter");

    CHECK_ERR(nb_evaluate(m.g, m.x, m.y, m.loss, m.out, &d, 0, NULL, NULL), NB_ERR_ARG,
              "batch_size 0");
    CHECK_ERR(nb_evaluate(m.g, m.x, m.y, m.loss, m.out, NULL, 4, NULL, NULL), NB_ERR_ARG,
              "dataset is NULL");
    bad = d; bad.sample_size = 7;
    CHECK_ERR(nb_evaluate(m.g, m.x, m.y, m.loss, m.out, &bad, 4, NULL, NULL), NB_ERR_SHAPE,
              "x_size 7");

    /* a graph with a build error */
    nb_graph *broken = nb_graph_new();
    nb_node bx = nb_input(broken, "x", 1, &two);
    nb_dense(broken, bx, 0, "bad", NULL);
    c = nb_fit_defaults(bx, bx, 0, NB_NONE);
    c.optimizer = ok.optimizer;
    CHECK_ERR(nb_fit(broken, &c, &d, NULL, NULL), NB_ERR_ARG, "build error");
    nb_graph_free(broken);
    nb_graph_free(m.g);
}

/* Stop after batch `stop_batch` of epoch `stop_epoch` (from on_batch). */
typedef struct stop_at {
    int epoch;
    size_t batch;
} stop_at;
static int stop_at_batch(const nb_batch_stats *b, void *user) {
    const stop_at *s = user;
    return b->epoch == s->epoch && b->batch == s->batch;
}

/* Interrupted after a batch in the middle of epoch 2 and resumed from that
 * position with the same optimiser state: the final weights are identical,
 * bit for bit, to an uninterrupted run. */
static void test_resume(void) {
    nb_data d = blobs();
    model a = make_model(11), b = make_model(11);
    nb_fit_config cfg = nb_fit_defaults(a.x, a.y, a.loss, a.out);
    cfg.epochs = 4;
    cfg.batch_size = 16; /* 6 batches per epoch, the last one short */
    cfg.seed = 5;
    nb_optim_config adam = nb_optim_defaults(NB_OPT_ADAM);
    adam.lr = 0.01;
    cfg.optimizer = test_optim(a.g, NB_OPT_ADAM, 0.01);
    CHECK_OK(nb_fit(a.g, &cfg, &d, NULL, NULL));

    nb_optim *opt = nb_optim_new(&adam, nb_param_count(b.g));
    nb_fit_config part = cfg;
    part.input = b.x;
    part.target = b.y;
    part.loss = b.loss;
    part.output = b.out;
    part.optimizer = opt;
    stop_at where = {2, 3};
    part.on_batch = stop_at_batch;
    part.user = &where;
    CHECK_OK(nb_fit(b.g, &part, &d, NULL, NULL));
    CHECK(nb_optim_steps(opt) == 6 + 3);
    CHECK(memcmp(nb_params(a.g), nb_params(b.g), nb_param_count(a.g) * sizeof(nb_real)) != 0);
    part.on_batch = NULL;
    part.start_epoch = 1;
    part.start_batch = 3;
    CHECK_OK(nb_fit(b.g, &part, &d, NULL, NULL));
    CHECK(nb_optim_steps(opt) == 4 * 6);
    CHECK(memcmp(nb_params(a.g), nb_params(b.g), nb_param_count(a.g) * sizeof(nb_real)) == 0);

    part.start_epoch = 4; /* nothing left to do is a mistake worth reporting */
    CHECK(nb_fit(b.g, &part, &d, NULL, NULL) == NB_ERR_ARG);
    nb_optim *small = nb_optim_new(&adam, 3);
    part.start_epoch = 0;
    part.optimizer = small;
    CHECK(nb_fit(b.g, &part, &d, NULL, NULL) == NB_ERR_ARG);
    CHECK(strstr(nb_last_error(), "optimiser is for 3 parameters") != NULL);
    nb_optim_free(small);
    nb_optim_free(opt);
    nb_graph_free(a.g);
    nb_graph_free(b.g);
}

/* Inputs stored as bytes train exactly like the same values stored as reals. */
static void test_byte_inputs(void) {
    enum { N = 60 };
    static uint8_t xu[N * 2];
    static nb_real xf[N * 2], y[N * CLASSES];
    for (int i = 0; i < N; i++) {
        int c = i % CLASSES;
        xu[2 * i] = (uint8_t)(40 + 80 * c + i % 7);
        xu[2 * i + 1] = (uint8_t)(200 - 60 * c - i % 5);
        for (int k = 0; k < 2; k++) xf[2 * i + k] = (nb_real)(xu[2 * i + k] * (1.0 / 255) - 0.5);
        for (int k = 0; k < CLASSES; k++) y[i * CLASSES + k] = (nb_real)(k == c);
    }
    nb_data df = test_data(xf, y, N, 2, CLASSES);
    /* the bytes scaled to [0, 1] and centred: x = (raw / 255 - 0.5) / 1 */
    double mean[2] = {0.5, 0.5}, inv_std[2] = {1, 1};
    nb_data du = test_data(NULL, y, N, 2, CLASSES);
    du.x_u8 = xu;
    du.scale = 1.0 / 255;
    du.mean = mean;
    du.inv_std = inv_std;
    model a = make_model(3), b = make_model(3);
    nb_fit_config cfg = nb_fit_defaults(a.x, a.y, a.loss, a.out);
    cfg.epochs = 3;
    cfg.batch_size = 8;
    cfg.optimizer = test_optim(a.g, NB_OPT_ADAM, -1);
    CHECK_OK(nb_fit(a.g, &cfg, &df, &df, NULL));
    cfg.input = b.x;
    cfg.target = b.y;
    cfg.loss = b.loss;
    cfg.output = b.out;
    cfg.optimizer = test_optim(b.g, NB_OPT_ADAM, -1);
    CHECK_OK(nb_fit(b.g, &cfg, &du, &du, NULL));
    CHECK(memcmp(nb_params(a.g), nb_params(b.g), nb_param_count(a.g) * sizeof(nb_real)) == 0);
    double la, lb;
    CHECK_OK(nb_evaluate(a.g, a.x, a.y, a.loss, NB_NONE, &df, 7, &la, NULL));
    CHECK_OK(nb_evaluate(a.g, a.x, a.y, a.loss, NB_NONE, &du, 7, &lb, NULL));
    CHECK(la == lb);
    nb_data both = du;
    both.x_real = xf;
    CHECK(nb_fit(b.g, &cfg, &both, NULL, NULL) == NB_ERR_ARG);
    CHECK(strstr(nb_last_error(), "exactly one of x and x_u8") != NULL);
    nb_graph_free(a.g);
    nb_graph_free(b.g);
}

/* The augmentation transform, on a 2-channel 3x4 image with distinct values. */
static void test_augment_image(void) {
    nb_real in[24], out[24];
    for (int k = 0; k < 24; k++) in[k] = (nb_real)(k + 1);
    nb_augment_image(in, out, 2, 3, 4, 0, 0, 0);
    CHECK(memcmp(in, out, sizeof in) == 0);
    nb_augment_image(in, out, 2, 3, 4, 1, 0, 0); /* mirror each row */
    CHECK(out[0] == 4 && out[3] == 1 && out[4] == 8 && out[12] == 16 && out[15] == 13);
    nb_augment_image(in, out, 2, 3, 4, 0, 1, -1); /* out[i][j] = in[i+1][j-1], zeros outside */
    CHECK(out[0] == 0 && out[1] == 5 && out[2] == 6 && out[3] == 7);
    CHECK(out[8] == 0 && out[9] == 0 && out[11] == 0 && out[13] == 17);
    nb_augment_image(in, out, 2, 3, 4, 1, 0, 1); /* mirrored, then shifted */
    CHECK(out[0] == 3 && out[1] == 2 && out[2] == 1 && out[3] == 0);
}

/* Augmented training is reproducible, depends on the seed, and resumes
 * bit-identically in the middle of an epoch. */
static void test_augmented_resume(void) {
    enum { N = 40 };
    static nb_real x[N * 16], y[N];
    nb_rng r;
    nb_rng_seed(&r, 4);
    for (int k = 0; k < N * 16; k++) x[k] = (nb_real)nb_rng_uniform(&r);
    for (int k = 0; k < N; k++) y[k] = (nb_real)(k % 3);
    nb_data d = test_data(x, y, N, 16, 1);
    nb_real *result[3];
    size_t np = 0;
    for (int run = 0; run < 3; run++) {
        nb_graph *g = nb_graph_new();
        int shape[3] = {1, 4, 4};
        nb_node in = nb_input(g, "x", 3, shape), t = nb_input(g, "y", 0, NULL);
        nb_node out = nb_dense(g, nb_flatten(g, in), 3, "fc", NULL);
        nb_node loss = nb_cross_entropy(g, out, t, 0);
        nb_rng ir;
        nb_rng_seed(&ir, 1);
        CHECK_OK(nb_graph_init(g, &ir));
        nb_fit_config cfg = nb_fit_defaults(in, t, loss, out);
        cfg.epochs = 3;
        cfg.batch_size = 8;
        cfg.seed = run == 2 ? 8 : 7;
        cfg.augment_flip = 1;
        cfg.augment_crop = 1;
        cfg.optimizer = test_optim(g, NB_OPT_ADAM, -1);
        if (run == 1) { /* stop after batch 2 of epoch 2, then resume */
            stop_at where = {2, 2};
            cfg.on_batch = stop_at_batch;
            cfg.user = &where;
            CHECK_OK(nb_fit(g, &cfg, &d, NULL, NULL));
            cfg.on_batch = NULL;
            cfg.start_epoch = 1;
            cfg.start_batch = 2;
            CHECK_OK(nb_fit(g, &cfg, &d, NULL, NULL));
        } else {
            CHECK_OK(nb_fit(g, &cfg, &d, NULL, NULL));
        }
        np = nb_param_count(g);
        result[run] = malloc(np * sizeof(nb_real));
        memcpy(result[run], nb_params(g), np * sizeof(nb_real));
        nb_graph_free(g);
    }
    CHECK(memcmp(result[0], result[1], np * sizeof(nb_real)) == 0);
    CHECK(memcmp(result[0], result[2], np * sizeof(nb_real)) != 0);
    for (int run = 0; run < 3; run++) free(result[run]);
}

/* The gradient hook: called once per step between backward and the update
 * with the whole flat gradient buffer; what it leaves there is what the
 * optimiser uses; an error from it stops training. */
typedef struct hook_log {
    int calls;
    size_t n;
    nb_real *grads;
    nb_status answer;
} hook_log;
static nb_status zero_gradients(nb_real *grads, size_t n, void *user) {
    hook_log *h = user;
    h->calls++;
    h->n = n;
    h->grads = grads;
    memset(grads, 0, n * sizeof *grads);
    if (h->answer != NB_OK) return nb_set_error(h->answer, "the other processes are gone");
    return NB_OK;
}

static void test_gradient_hook(void) {
    make_blobs(1);
    model m = make_model(3);
    nb_data d = blobs();
    size_t n = nb_param_count(m.g);
    nb_real *before = malloc(n * sizeof *before);
    memcpy(before, nb_params(m.g), n * sizeof *before);
    nb_fit_config cfg = nb_fit_defaults(m.x, m.y, m.loss, m.out);
    cfg.epochs = 2;
    cfg.batch_size = 30;
    cfg.optimizer = test_optim(m.g, NB_OPT_SGD, 0.5);
    hook_log h = {0, 0, NULL, NB_OK};
    cfg.on_gradients = zero_gradients;
    cfg.user = &h;
    nb_epoch_stats last;
    CHECK_OK(nb_fit(m.g, &cfg, &d, NULL, &last));
    CHECK(h.calls == 6 && last.step == 6);
    CHECK(h.n == n && h.grads == nb_grads(m.g));
    /* plain SGD from zeroed gradients: nothing moved */
    CHECK(memcmp(before, nb_params(m.g), n * sizeof *before) == 0);
    h.answer = NB_ERR_IO;
    CHECK_ERR(nb_fit(m.g, &cfg, &d, NULL, NULL), NB_ERR_IO,
              "nb_fit: epoch 1, step 1 of 3: nb_train_step: on_gradients: the other processes "
              "are gone");
    free(before);
    nb_graph_free(m.g);
}

/* The step's check for non-finite gradients reads large gradients in
 * parallel slices: a NaN or inf anywhere, in any slice, on any thread
 * count, stops the step before the parameters move. */
static nb_status poison_one(nb_real *grads, size_t n, void *user) {
    const size_t *k = user;
    if (k[0] < n) grads[k[0]] = k[1] ? (nb_real)INFINITY : (nb_real)NAN;
    return NB_OK;
}

static void test_nonfinite_gradient_anywhere(void) {
    int two = 2, one = 1;
    nb_graph *g = nb_graph_new();
    nb_node x = nb_input(g, "x", 1, &two), y = nb_input(g, "y", 1, &one);
    nb_node h = nb_dense(g, x, 100000, "wide", NULL); /* 300,000 parameters */
    nb_node out = nb_dense(g, h, 1, "out", NULL);
    nb_node loss = mse(g, out, y);
    nb_rng r;
    nb_rng_seed(&r, 3);
    CHECK_OK(nb_graph_init(g, &r));
    size_t n = nb_param_count(g);
    nb_real *before = malloc(n * sizeof *before);
    memcpy(before, nb_params(g), n * sizeof *before);
    nb_real xs[4] = {0.5, -1, 2, 0.25}, ys[2] = {1, -1};
    CHECK_OK(nb_set_input(g, x, xs, 2));
    CHECK_OK(nb_set_input(g, y, ys, 2));
    nb_fit_config cfg = nb_fit_defaults(x, y, loss, NB_NONE);
    cfg.optimizer = test_optim(g, NB_OPT_SGD, 0.1);
    cfg.on_gradients = poison_one;
    const size_t where[] = {0, 65535, 65536, 150000, 299999 - 1, 299999};
    const int threads_before = nb_threads();
    for (int threads = 1; threads <= 3; threads++) {
        CHECK_OK(nb_set_threads(threads));
        for (size_t w = 0; w < sizeof where / sizeof *where; w++) {
            size_t k[2] = {where[w] < n ? where[w] : n - 1, w % 2};
            cfg.user = k;
            CHECKF(nb_train_step(g, &cfg, 0.1, NULL) == NB_ERR_NUMERIC,
                   "%d threads: a %s at gradient %zu of %zu went unnoticed", threads,
                   k[1] ? "inf" : "NaN", k[0], n);
            CHECK(memcmp(before, nb_params(g), n * sizeof *before) == 0);
        }
    }
    size_t none[2] = {n, 0}; /* nothing poisoned: the step runs */
    cfg.user = none;
    CHECK_OK(nb_train_step(g, &cfg, 0.1, NULL));
    CHECK(memcmp(before, nb_params(g), n * sizeof *before) != 0);
    CHECK_OK(nb_set_threads(threads_before));
    free(before);
    nb_graph_free(g);
}

/* nb_fit is its batches run through nb_train_step: the same steps by hand
 * (no shuffling, so batch b holds samples b*B ...) give the same bits. */
static void test_train_step(void) {
    make_blobs(1);
    model a = make_model(7), b = make_model(7);
    nb_data d = blobs();
    nb_fit_config cfg = nb_fit_defaults(a.x, a.y, a.loss, a.out);
    cfg.epochs = 1;
    cfg.batch_size = 40; /* 90 = 40 + 40 + 10 */
    cfg.no_shuffle = 1;
    cfg.clip_norm = 0.5;
    cfg.optimizer = test_optim(a.g, NB_OPT_ADAM, 0.01);
    CHECK_OK(nb_fit(a.g, &cfg, &d, NULL, NULL));

    nb_fit_config step = cfg;
    step.input = b.x, step.target = b.y, step.loss = b.loss, step.output = b.out;
    step.optimizer = test_optim(b.g, NB_OPT_ADAM, 0.01);
    for (int start = 0; start < BLOB_N; start += 40) {
        int bs = BLOB_N - start < 40 ? BLOB_N - start : 40;
        double loss = -1;
        CHECK_OK(nb_set_input(b.g, b.x, blob_x + 2 * start, bs));
        CHECK_OK(nb_set_input(b.g, b.y, blob_onehot + CLASSES * start, bs));
        CHECK_OK(nb_train_step(b.g, &step, 0.01, &loss));
        CHECK(loss == (double)nb_value(b.g, b.loss)[0] && loss > 0);
    }
    CHECK(nb_optim_steps(step.optimizer) == 3);
    CHECK(memcmp(nb_params(a.g), nb_params(b.g), nb_param_count(a.g) * sizeof(nb_real)) == 0);
    /* its own checks */
    step.optimizer = NULL;
    CHECK_ERR(nb_train_step(b.g, &step, 0.01, NULL), NB_ERR_ARG, "nb_train_step: no optimizer");
    CHECK_ERR(nb_train_step(b.g, NULL, 0.01, NULL), NB_ERR_ARG, "config is NULL");
    nb_graph_free(a.g);
    nb_graph_free(b.g);
}

int main(void) {
    test_reproducible();
    test_learns();
    test_evaluate_exact();
    test_class_index_accuracy();
    test_cross_entropy_classifier();
    test_callback_stop();
    test_drop_last();
    test_schedule_and_mode();
    test_clip();
    test_nan();
    test_errors();
    test_resume();
    test_byte_inputs();
    test_augment_image();
    test_augmented_resume();
    test_gradient_hook();
    test_nonfinite_gradient_anywhere();
    test_train_step();
    test_free_optims();
    TEST_END();
}
