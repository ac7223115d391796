/* Evaluation reports (nb_report_*, nb_evaluate_report) against scikit-learn:
 * classification_report, confusion_matrix, accuracy_score and
 * top_k_accuracy_score, and the regression metrics, on the fixed scores and
 * targets of tests/reference/report.ref (written by tests/reference/report.py).
 * Counts must be equal, figures within 1e-12. */
#include "nabla.h"
#include "refdata.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-12

static ref_file *ref;

static nb_real *reals(const ref_tensor *t) {
    nb_real *v = malloc(t->n * sizeof *v);
    for (size_t i = 0; i < t->n; i++) v[i] = (nb_real)t->v[i];
    return v;
}

/* Both NaN, or within TOL (absolute and relative). */
static int close_to(double got, double want) {
    if (want != want) return got != got;
    return fabs(got - want) <= TOL * (1 + fabs(want));
}

static void check_value(const char *cs, const char *what, double got, double want) {
    CHECKF(close_to(got, want), "%s: %s = %.17g, scikit-learn %.17g", cs, what, got, want);
}

static void check_values(const char *cs, const char *name, const double *got, size_t n,
                         const ref_case *c) {
    const ref_tensor *t = ref_get(c, name);
    CHECKF(t && t->n == n, "%s: %s missing or of the wrong size", cs, name);
    if (!t || t->n != n) return;
    for (size_t i = 0; i < n; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s[%zu]", name, i);
        check_value(cs, what, got[i], t->v[i]);
    }
}

/* A report of the case's scores and targets, added in two parts (so the
 * sums carry over between calls). */
static int make_report(const ref_case *c, int top_k, nb_report *r) {
    const ref_tensor *s = ref_get(c, "scores"), *t = ref_get(c, "target");
    size_t n = (size_t)s->dims[0], k = (size_t)s->dims[1], ts = t->ndim == 1 ? 1 : k;
    nb_real *sv = reals(s), *tv = reals(t);
    size_t half = n / 2;
    nb_status st = nb_report_init(r, (int)k, top_k, 0);
    if (st == NB_OK) st = nb_report_add(r, sv, tv, half, ts);
    if (st == NB_OK) st = nb_report_add(r, sv + half * k, tv + half * ts, n - half, ts);
    if (st == NB_OK) st = nb_report_finish(r);
    CHECKF(st == NB_OK, "%s: %s", c->name, nb_last_error());
    free(sv);
    free(tv);
    return st == NB_OK;
}

static void check_class_figures(const ref_case *c, const nb_report *r) {
    size_t k = (size_t)r->n_classes;
    double *v[4];
    for (int f = 0; f < 4; f++) v[f] = malloc(k * sizeof **v);
    for (size_t j = 0; j < k; j++) {
        v[0][j] = r->per_class[j].precision;
        v[1][j] = r->per_class[j].recall;
        v[2][j] = r->per_class[j].f1;
        v[3][j] = (double)r->per_class[j].support;
    }
    const char *names[4] = {"precision", "recall", "f1", "support"};
    const nb_class_metrics *avg[2] = {&r->macro, &r->weighted};
    const char *avg_names[2] = {"macro_", "weighted_"};
    for (int f = 0; f < 4; f++) {
        check_values(c->name, names[f], v[f], k, c);
        for (int a = 0; a < 2; a++) {
            double got = f == 0   ? avg[a]->precision
                         : f == 1 ? avg[a]->recall
                         : f == 2 ? avg[a]->f1
                                  : (double)avg[a]->support;
            char name[32];
            snprintf(name, sizeof name, "%s%s", avg_names[a], names[f]);
            check_values(c->name, name, &got, 1, c);
        }
        free(v[f]);
    }
}

/* Confusion counts equal; zero-division flags exactly where a class is never
 * predicted / never true, and set at all exactly when scikit-learn warned. */
static void check_counts(const ref_case *c, const nb_report *r) {
    size_t k = (size_t)r->n_classes;
    const ref_tensor *cm = ref_get(c, "confusion");
    int same = cm && cm->n == k * k;
    for (size_t i = 0; same && i < k * k; i++) same = (double)r->confusion[i] == cm->v[i];
    CHECKF(same, "%s: confusion matrix differs from scikit-learn's", c->name);
    unsigned any = 0;
    for (size_t j = 0; cm && j < k; j++) {
        double predicted = 0, support = 0;
        for (size_t i = 0; i < k; i++) {
            predicted += cm->v[i * k + j];
            support += cm->v[j * k + i];
        }
        unsigned want = (predicted == 0 ? NB_ZERO_DIV_PRECISION : 0) |
                        (support == 0 ? NB_ZERO_DIV_RECALL : 0) |
                        (predicted == 0 && support == 0 ? NB_ZERO_DIV_F1 : 0);
        CHECKF(r->per_class[j].zero_division == want && r->per_class[j].predicted == predicted,
               "%s: class %zu: flags %u (want %u), predicted %zu", c->name, j,
               r->per_class[j].zero_division, want, r->per_class[j].predicted);
        any |= want;
    }
    CHECKF(r->zero_division == any && r->macro.zero_division == any, "%s: report flags %u",
           c->name, r->zero_division);
    CHECKF((any != 0) == (ref_scalar(c, "sklearn_warned", -1) == 1),
           "%s: zero division %u, scikit-learn warned %g", c->name, any,
           ref_scalar(c, "sklearn_warned", -1));
}

static void check_classification(const ref_case *c) {
    nb_report r;
    if (!make_report(c, 0, &r)) return;
    check_counts(c, &r);
    check_class_figures(c, &r);
    check_value(c->name, "accuracy", r.accuracy, ref_scalar(c, "accuracy", NAN));
    CHECK(r.top_k_accuracy == -1 && r.n == (size_t)ref_get(c, "scores")->dims[0]);
    size_t k = (size_t)r.n_classes;
    nb_report_free(&r);
    /* top-k accuracy for every k; k = 1 is the accuracy, also with ties */
    const ref_tensor *topk = ref_get(c, "topk"), *plain = ref_get(c, "topk_plain");
    if (!topk) return;
    for (size_t kk = 1; kk <= k; kk++) {
        if (!make_report(c, (int)kk, &r)) return;
        char what[32];
        snprintf(what, sizeof what, "top-%zu accuracy", kk);
        check_value(c->name, what, r.top_k_accuracy, topk->v[kk - 1]);
        if (kk == 1) CHECK(r.top_k_accuracy == r.accuracy);
        if (ref_scalar(c, "has_ties", 1) == 0) CHECK(topk->v[kk - 1] == plain->v[kk - 1]);
        nb_report_free(&r);
    }
}

static void check_regression(const ref_case *c) {
    const ref_tensor *p = ref_get(c, "pred"), *t = ref_get(c, "target");
    size_t n = (size_t)p->dims[0], m = (size_t)p->dims[1];
    nb_real *pv = reals(p), *tv = reals(t);
    nb_report r;
    nb_status st = nb_report_init(&r, 0, 0, m);
    for (size_t i = 0; i < n && st == NB_OK; i++) /* one row at a time */
        st = nb_report_add(&r, pv + i * m, tv + i * m, 1, m);
    if (st == NB_OK) st = nb_report_finish(&r);
    CHECKF(st == NB_OK, "%s: %s", c->name, nb_last_error());
    if (st == NB_OK) {
        check_value(c->name, "mae", r.mae, ref_scalar(c, "mae", 0));
        check_value(c->name, "rmse", r.rmse, ref_scalar(c, "rmse", 0));
        check_value(c->name, "r2", r.r2, ref_scalar(c, "r2", 0));
        check_values(c->name, "mae_out", r.mae_out, m, c);
        check_values(c->name, "rmse_out", r.rmse_out, m, c);
        check_values(c->name, "r2_out", r.r2_out, m, c);
    }
    nb_report_free(&r);
    free(pv);
    free(tv);
}

/* Bad arguments and targets are errors that say what and where. */
static void test_errors(void) {
    nb_report r;
    CHECK(nb_report_init(&r, 1, 0, 0) == NB_ERR_ARG);
    CHECK(nb_report_init(&r, 3, 4, 0) == NB_ERR_ARG);
    CHECK(nb_report_init(&r, 0, 2, 1) == NB_ERR_ARG);
    CHECK(nb_report_init(&r, 0, 0, 0) == NB_ERR_ARG);
    nb_report_free(&r); /* after a failed init: harmless */
    CHECK_OK(nb_report_init(&r, 3, 2, 0));
    CHECK(nb_report_finish(&r) == NB_ERR_ARG && strstr(nb_last_error(), "no samples"));
    const nb_real scores[6] = {1, 0, 0, 0, 1, 0};
    const nb_real bad[3][2] = {{0, 3}, {1, 1.5}, {2, -1}};
    for (int i = 0; i < 3; i++) {
        CHECK(nb_report_add(&r, scores, bad[i], 2, 1) == NB_ERR_ARG);
        CHECKF(strstr(nb_last_error(), "sample 1: target") != NULL, "%s", nb_last_error());
    }
    CHECK(nb_report_add(&r, scores, bad[0], 2, 2) == NB_ERR_ARG);
    CHECK(r.n == 0);
    nb_report_free(&r);
}

/* nb_evaluate_report runs the model once over the data in batches: with the
 * scores themselves as the output, it counts what nb_report_add counts, and
 * its loss and accuracy are nb_evaluate's. */
static void test_evaluate_report(void) {
    const ref_case *c = ref_case_get(ref, "twelve");
    if (!c) return;
    const ref_tensor *s = ref_get(c, "scores"), *t = ref_get(c, "target");
    size_t n = (size_t)s->dims[0];
    int k = s->dims[1];
    nb_real *sv = reals(s), *tv = reals(t);
    nb_data d;
    CHECK_OK(nb_data_from_reals(sv, tv, n, (size_t)k, 1, &d));
    nb_graph *g = nb_graph_new();
    nb_node x = nb_input(g, "x", 1, &k), y = nb_input(g, "y", 0, NULL);
    nb_node loss = nb_cross_entropy(g, x, y, 0);
    nb_report r, want;
    CHECK_OK(nb_report_init(&r, k, 5, 0));
    CHECK_OK(nb_evaluate_report(g, x, y, loss, x, &d, 7, &r));
    CHECK_OK(nb_report_init(&want, k, 5, 0));
    CHECK_OK(nb_report_add(&want, sv, tv, n, 1));
    CHECK_OK(nb_report_finish(&want));
    CHECK(memcmp(r.confusion, want.confusion, (size_t)k * k * sizeof *r.confusion) == 0);
    CHECK(r.top_k_correct == want.top_k_correct && r.n == n);
    double l, acc;
    CHECK_OK(nb_evaluate(g, x, y, loss, x, &d, 7, &l, &acc));
    CHECK(r.loss == l && r.accuracy == acc);
    /* a second run needs a fresh report; a report of the wrong width is refused */
    CHECK(nb_evaluate_report(g, x, y, loss, x, &d, 7, &r) == NB_ERR_ARG);
    nb_report_free(&r);
    CHECK_OK(nb_report_init(&r, k + 1, 0, 0));
    CHECK(nb_evaluate_report(g, x, y, loss, x, &d, 7, &r) == NB_ERR_SHAPE);
    CHECKF(strstr(nb_last_error(), "output 'x' has 12 values per sample; the report was "
                  "started for 13") != NULL, "%s", nb_last_error());
    nb_report_free(&r);
    nb_report_free(&want);
    nb_graph_free(g);
    nb_data_free(&d);
    free(sv);
    free(tv);
}

/* Regression through the graph: RMSE squared is the MSE loss. */
static void test_evaluate_regression(void) {
    const ref_case *c = ref_case_get(ref, "three_outputs");
    if (!c) return;
    const ref_tensor *p = ref_get(c, "pred"), *t = ref_get(c, "target");
    size_t n = (size_t)p->dims[0];
    int m = p->dims[1];
    nb_real *pv = reals(p), *tv = reals(t);
    nb_data d;
    CHECK_OK(nb_data_from_reals(pv, tv, n, (size_t)m, (size_t)m, &d));
    nb_graph *g = nb_graph_new();
    nb_node x = nb_input(g, "x", 1, &m), y = nb_input(g, "y", 1, &m);
    nb_node loss = nb_mse_loss(g, x, y);
    nb_report r;
    CHECK_OK(nb_report_init(&r, 0, 0, (size_t)m));
    CHECK_OK(nb_evaluate_report(g, x, y, loss, x, &d, 16, &r));
    check_value("graph", "mae", r.mae, ref_scalar(c, "mae", 0));
    check_value("graph", "r2", r.r2, ref_scalar(c, "r2", 0));
    CHECK_CLOSE(r.rmse * r.rmse, r.loss, 0, 1e-5); /* the loss sums in float */
    nb_report_free(&r);
    nb_graph_free(g);
    nb_data_free(&d);
    free(pv);
    free(tv);
}

int main(void) {
    ref = ref_load("tests/reference/report.ref");
    CHECK(ref != NULL);
    if (!ref) TEST_END();
    int classification = 0, regression = 0;
    for (int i = 0; i < ref->nc; i++) {
        const ref_case *c = &ref->c[i];
        if (ref_get(c, "scores")) {
            check_classification(c);
            classification++;
        } else {
            check_regression(c);
            regression++;
        }
    }
    CHECK(classification >= 8 && regression >= 4);
    test_errors();
    test_evaluate_report();
    test_evaluate_regression();
    ref_free(ref);
    TEST_END();
}
