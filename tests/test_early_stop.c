/* nb_early_stop: Keras' rule for loss (lower) and accuracy (higher), with
 * min_delta, patience, NaN, and state that resumes exactly. */
#include "nabla.h"
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

int main(void) {
    test_loss();
    test_accuracy_and_nan();
    test_no_patience();
    TEST_END();
}
