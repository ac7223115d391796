/* nb_early_stop: Keras' rule for loss (lower) and accuracy (higher), with
 * min_delta, patience, NaN, and state that resumes exactly. */
#include "nabla.h"
#include "support/fit_support.h"
#include "support/test.h"

static void test_loss(void) {
    nb_early_stop es;
    nb_early_stop_init(&es, 2, 0.01, 0);
    CHECK(nb_early_stop_update(&es, 1, 1.0) == NB_EARLY_IMPROVED);
    CHECK(nb_early_stop_update(&es, 2, 0.5) == NB_EARLY_IMPROVED);
    /* better, but not by more than min_delta */
    CHECK(nb_early_stop_update(&es, 3, 0.495) == NB_EARLY_WAIT);
    CHECK(es.best == 0.5 && es.best_epoch == 2 && es.wait == 1);
    nb_early_stop saved = es; /* a checkpoint here */
    CHECK(nb_early_stop_update(&es, 4, 0.7) == NB_EARLY_STOP);
    CHECK(es.stopped && es.best_epoch == 2);
    CHECK(nb_early_stop_update(&saved, 4, 0.7) == NB_EARLY_STOP && saved.best_epoch == 2);
}

static void test_accuracy_and_nan(void) {
    nb_early_stop es;
    nb_early_stop_init(&es, 3, 0, 1);
    CHECK(nb_early_stop_update(&es, 1, NAN) == NB_EARLY_WAIT); /* NaN never improves */
    CHECK(nb_early_stop_update(&es, 2, 0.5) == NB_EARLY_IMPROVED);
    CHECK(nb_early_stop_update(&es, 3, 0.5) == NB_EARLY_WAIT);      /* equal: not better */
    CHECK(nb_early_stop_update(&es, 4, 0.6) == NB_EARLY_IMPROVED);
    CHECK(nb_early_stop_update(&es, 5, 0.4) == NB_EARLY_WAIT);
    CHECK(nb_early_stop_update(&es, 6, 0.4) == NB_EARLY_WAIT);
    CHECK(nb_early_stop_update(&es, 7, 0.4) == NB_EARLY_STOP);
    CHECK(es.best == 0.6 && es.best_epoch == 4);
}

static void test_no_patience(void) {
    nb_early_stop es;
    nb_early_stop_init(&es, 0, 0, 0); /* tracks the best, never stops */
    for (int e = 1; e <= 50; e++)
        CHECK(nb_early_stop_update(&es, e, e == 3 ? 0.1 : 1.0) != NB_EARLY_STOP);
    CHECK(es.best_epoch == 3 && es.wait == 47 && !es.stopped);
}

/* From C: nb_fit's on_epoch feeds it the validation loss and stops the run.
 * Training targets y = x, validation targets y = -x: validation loss rises
 * as soon as the model learns, so the first epoch stays the best. */
typedef struct watch {
    nb_early_stop es;
    int calls;
} watch;

static int on_epoch(const nb_epoch_stats *s, void *user) {
    watch *w = user;
    w->calls++;
    return nb_early_stop_update(&w->es, s->epoch, s->val_loss) == NB_EARLY_STOP;
}

static void test_with_fit(void) {
    nb_real x[32], y[32], vy[32];
    for (int i = 0; i < 32; i++) {
        x[i] = (nb_real)(i - 16) / 16;
        y[i] = x[i];
        vy[i] = -x[i];
    }
    nb_graph *g = nb_graph_new();
    int one = 1;
    nb_node in = nb_input(g, "x", 1, &one), target = nb_input(g, "y", 1, &one);
    nb_node out = nb_dense(g, in, 1, "fc", NULL);
    nb_node loss = nb_mse_loss(g, out, target);
    nb_rng r;
    nb_rng_seed(&r, 1);
    REQUIRE_OK(nb_graph_init(g, &r));
    nb_data train = test_data(x, y, 32, 1, 1), val = test_data(x, vy, 32, 1, 1);
    nb_fit_config cfg = nb_fit_defaults(in, target, loss, NB_NONE);
    cfg.epochs = 50;
    cfg.batch_size = 8;
    cfg.optimizer = test_optim(g, NB_OPT_SGD, 0.1);
    cfg.on_epoch = on_epoch;
    watch w = {{0}, 0};
    nb_early_stop_init(&w.es, 3, 0, 0);
    cfg.user = &w;
    nb_epoch_stats last;
    CHECK_OK(nb_fit(g, &cfg, &train, &val, &last));
    CHECKF(w.es.stopped && w.calls == w.es.best_epoch + 3 && last.epoch == w.calls,
           "stopped %d after %d epochs (best %d, last %d)", w.es.stopped, w.calls,
           w.es.best_epoch, last.epoch);
    nb_graph_free(g);
    test_free_optims();
}

int main(void) {
    test_loss();
    test_accuracy_and_nan();
    test_no_patience();
    test_with_fit();
    TEST_END();
}
