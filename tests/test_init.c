/* Initialisers: gains and fans against PyTorch, sample moments and bounds of
 * every kind against the distribution PyTorch draws from (tests/reference/
 * init.py), reproducibility from the seed, and argument errors. */
#include "refdata.h"
#include "test.h"
#include "nabla.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define REF_PATH "tests/reference/init.ref"

enum { FAMILY_NORMAL = 0, FAMILY_UNIFORM = 1, FAMILY_CONSTANT = 2 };

static int starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void test_gains(const ref_file *f) {
    int cases = 0;
    for (int i = 0; i < f->nc; i++) {
        const ref_case *c = &f->c[i];
        if (!starts_with(c->name, "gain_")) continue;
        cases++;
        nb_nonlinearity nl = (nb_nonlinearity)ref_scalar(c, "nl", -1);
        double param = ref_scalar(c, "param", -1), want = ref_scalar(c, "gain", NAN);
        CHECK_CLOSE(nb_init_gain(nl, param), want, 0, 1e-15);
    }
    CHECK(cases >= 9);
}

static void test_fans(const ref_file *f) {
    int cases = 0;
    for (int i = 0; i < f->nc; i++) {
        const ref_case *c = &f->c[i];
        if (!starts_with(c->name, "fans_")) continue;
        cases++;
        const ref_tensor *d = ref_get(c, "dims");
        int dims[NB_MAX_DIMS];
        for (size_t k = 0; k < d->n; k++) dims[k] = (int)d->v[k];
        double fi = -1, fo = -1;
        CHECK_OK(nb_init_fans((int)d->n, dims, &fi, &fo));
        CHECKF(fi == ref_scalar(c, "fan_in", NAN) && fo == ref_scalar(c, "fan_out", NAN),
               "%s: fans %g %g", c->name, fi, fo);
    }
    CHECK(cases >= 5);
    int dims[2] = {3, 4};
    double fi = 0;
    CHECK_OK(nb_init_fans(2, dims, &fi, NULL)); /* either output may be NULL */
    CHECK(fi == 4);
    CHECK(nb_init_fans(1, dims, &fi, NULL) == NB_ERR_SHAPE);
    CHECK(nb_init_fans(2, NULL, &fi, NULL) != NB_OK);
}

static size_t numel(int ndim, const int *dims) {
    size_t n = 1;
    for (int d = 0; d < ndim; d++) n *= (size_t)dims[d];
    return n;
}

/* Draw every dist_* case from init.ref and compare the sample with the
 * distribution.  About 2.6e5 samples per case, so the sampling error of the
 * variance is 0.28% (normal) or 0.18% (uniform) of it: the 2% tolerance is
 * more than 7 standard errors.  The fixed seed makes each outcome
 * deterministic; the margins say it is not a lucky seed. */
static void test_distributions(const ref_file *f) {
    int cases = 0, per_kind[NB_INIT_TORCH_LINEAR + 1] = {0}, conv_cases = 0;
    for (int i = 0; i < f->nc; i++) {
        const ref_case *c = &f->c[i];
        if (!starts_with(c->name, "dist_")) continue;
        cases++;
        const ref_tensor *d = ref_get(c, "dims");
        int ndim = (int)d->n, dims[NB_MAX_DIMS];
        for (int k = 0; k < ndim; k++) dims[k] = (int)d->v[k];
        if (ndim == 4) conv_cases++;
        nb_init init;
        memset(&init, 0, sizeof init);
        init.kind = (nb_init_kind)ref_scalar(c, "kind", -1);
        init.a = ref_scalar(c, "a", 0);
        init.b = ref_scalar(c, "b", 0);
        init.gain = ref_scalar(c, "gain", 0);
        init.mode = (nb_fan_mode)ref_scalar(c, "mode", 0);
        if ((int)init.kind >= 0 && init.kind <= NB_INIT_TORCH_LINEAR) per_kind[init.kind]++;
        int family = (int)ref_scalar(c, "family", -1);
        double mean = ref_scalar(c, "mean", NAN), std = ref_scalar(c, "std", NAN);

        size_t n = numel(ndim, dims);
        nb_real *w = malloc(n * sizeof *w);
        nb_rng r;
        nb_rng_seed(&r, 1000 + (uint64_t)i);
        CHECK_OK(nb_init_tensor(w, ndim, dims, init, &r));

        double sum = 0;
        for (size_t k = 0; k < n; k++) sum += w[k];
        double m = sum / (double)n, ss = 0, wmin = w[0], wmax = w[0];
        size_t within_1sd = 0;
        for (size_t k = 0; k < n; k++) {
            ss += (w[k] - m) * (w[k] - m);
            if (w[k] < wmin) wmin = w[k];
            if (w[k] > wmax) wmax = w[k];
            if (fabs(w[k] - mean) <= std) within_1sd++;
        }
        double var = ss / (double)(n - 1);

        if (family == FAMILY_CONSTANT) {
            CHECKF(wmin == (nb_real)mean && wmax == (nb_real)mean, "%s: values in [%g, %g]",
                   c->name, wmin, wmax);
            free(w);
            continue;
        }
        CHECKF(fabs(var / (std * std) - 1) <= 0.02, "%s: variance %g, formula %g", c->name,
               var, std * std);
        if (mean == 0) {
            /* A relative error of a zero mean means nothing; compare with the
             * spread instead.  The sample mean's standard error is
             * std/sqrt(n) ~ 0.002 std here, so 0.01 std is 5 standard errors. */
            CHECKF(fabs(m) <= 0.01 * std, "%s: mean %g with std %g", c->name, m, std);
        } else {
            CHECKF(fabs(m / mean - 1) <= 0.02, "%s: mean %g, formula %g", c->name, m, mean);
        }
        if (family == FAMILY_UNIFORM) {
            double lo = ref_scalar(c, "lo", NAN), hi = ref_scalar(c, "hi", NAN);
            /* inside the bounds (as rounded to the scalar type), and reaching
             * them: P(no sample in the top 0.1%) = 0.999^n ~ e^-260 */
            CHECKF(wmin >= (nb_real)lo && wmax <= (nb_real)hi, "%s: [%g, %g] outside [%g, %g]",
                   c->name, wmin, wmax, lo, hi);
            CHECKF(wmin < lo + 1e-3 * (hi - lo) && wmax > hi - 1e-3 * (hi - lo),
                   "%s: [%g, %g] does not fill [%g, %g]", c->name, wmin, wmax, lo, hi);
        } else {
            /* the shape of a normal: 68.27% within one std (a uniform of the
             * same variance has 57.7%; standard error here ~0.1%), and tails
             * beyond 3.5 std exist (P(none) ~ e^-60) */
            double frac = (double)within_1sd / (double)n;
            CHECKF(fabs(frac - 0.6827) <= 0.007, "%s: %.4f within one std", c->name, frac);
            CHECKF(fmax(wmax - mean, mean - wmin) > 3.5 * std, "%s: no tails ([%g, %g])",
                   c->name, wmin, wmax);
        }
        free(w);
    }
    CHECKF(cases >= 34, "only %d distribution cases", cases);
    CHECKF(conv_cases >= 15, "only %d conv-shaped cases", conv_cases);
    for (int k = NB_INIT_ZEROS; k <= NB_INIT_TORCH_LINEAR; k++)
        CHECKF(per_kind[k] >= 1, "initialiser kind %d untested", k);
}

/* Same seed, same tensor; another seed or a later draw, another tensor. */
static void test_reproducible(void) {
    int dims[2] = {64, 48};
    size_t n = 64 * 48;
    nb_real *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    for (int kind = NB_INIT_UNIFORM; kind <= NB_INIT_TORCH_LINEAR; kind++) {
        nb_init init;
        memset(&init, 0, sizeof init);
        init.kind = (nb_init_kind)kind;
        init.a = -1;
        init.b = 2;
        nb_rng r1, r2;
        nb_rng_seed(&r1, 77);
        nb_rng_seed(&r2, 77);
        CHECK_OK(nb_init_tensor(a, 2, dims, init, &r1));
        CHECK_OK(nb_init_tensor(b, 2, dims, init, &r2));
        CHECKF(memcmp(a, b, n * sizeof *a) == 0, "kind %d: same seed, different tensors", kind);
        CHECK(memcmp(&r1, &r2, sizeof r1) == 0);
        CHECK_OK(nb_init_tensor(b, 2, dims, init, &r2)); /* the stream moved on */
        CHECKF(memcmp(a, b, n * sizeof *a) != 0, "kind %d: second draw repeats", kind);
        nb_rng_seed(&r2, 78);
        CHECK_OK(nb_init_tensor(b, 2, dims, init, &r2));
        CHECKF(memcmp(a, b, n * sizeof *a) != 0, "kind %d: seeds 77 and 78 agree", kind);
    }
    /* the deterministic kinds draw nothing from the generator */
    nb_rng r, before;
    nb_rng_seed(&r, 5);
    before = r;
    nb_init zeros = {.kind = NB_INIT_ZEROS};
    nb_init constant = {.kind = NB_INIT_CONSTANT, .a = 2.5};
    CHECK_OK(nb_init_tensor(a, 2, dims, zeros, &r));
    CHECK_OK(nb_init_tensor(b, 2, dims, constant, &r));
    CHECK(memcmp(&r, &before, sizeof r) == 0);
    CHECK(a[0] == 0 && a[n - 1] == 0 && b[0] == (nb_real)2.5 && b[n - 1] == (nb_real)2.5);
    /* NB_INIT_DEFAULT means "the layer decides": a bare tensor gets zeros
     * (nb_graph_init and nb_dense substitute PyTorch's layer default first) */
    nb_init dflt = {.kind = NB_INIT_DEFAULT};
    b[0] = 1;
    CHECK_OK(nb_init_tensor(b, 2, dims, dflt, &r));
    CHECK(b[0] == 0 && b[n - 1] == 0);
    free(a);
    free(b);
}

/* A bad initialiser or shape: an error naming the problem, and w untouched. */
static void expect_error(const char *what, nb_init init, int ndim, const int *dims,
                         nb_status want, const char *says) {
    nb_real w[16];
    for (int k = 0; k < 16; k++) w[k] = (nb_real)7;
    nb_rng r;
    nb_rng_seed(&r, 1);
    nb_clear_error();
    nb_status s = nb_init_tensor(w, ndim, dims, init, &r);
    CHECKF(s == want, "%s: %s (%s)", what, nb_status_name(s), nb_last_error());
    CHECKF(strstr(nb_last_error(), says) != NULL, "%s: message \"%s\" lacks \"%s\"", what,
           nb_last_error(), says);
    int untouched = 1;
    for (int k = 0; k < 16; k++) untouched &= w[k] == (nb_real)7;
    CHECKF(untouched, "%s: tensor written", what);
}

static void test_errors(void) {
    int d2[2] = {4, 4}, d1[1] = {16}, neg[2] = {-4, -4}, negfan[3] = {4, -1, 4};
    nb_init xu = {.kind = NB_INIT_XAVIER_UNIFORM};
    expect_error("xavier on 1-D", xu, 1, d1, NB_ERR_SHAPE, "2 dimensions");
    nb_init kn = {.kind = NB_INIT_KAIMING_NORMAL};
    expect_error("kaiming on 1-D", kn, 1, d1, NB_ERR_SHAPE, "2 dimensions");
    nb_init tl = {.kind = NB_INIT_TORCH_LINEAR};
    expect_error("torch default on 1-D", tl, 1, d1, NB_ERR_SHAPE, "2 dimensions");
    nb_init ln = {.kind = NB_INIT_LECUN_NORMAL};
    expect_error("lecun on a scalar", ln, 0, d1, NB_ERR_SHAPE, "2 dimensions");
    nb_init gneg = {.kind = NB_INIT_XAVIER_NORMAL, .gain = -1};
    expect_error("negative gain", gneg, 2, d2, NB_ERR_ARG, "gain");
    nb_init gnan = {.kind = NB_INIT_KAIMING_UNIFORM, .gain = NAN};
    expect_error("NaN gain", gnan, 2, d2, NB_ERR_ARG, "gain");
    nb_init mode = {.kind = NB_INIT_KAIMING_UNIFORM, .mode = (nb_fan_mode)3};
    expect_error("fan mode", mode, 2, d2, NB_ERR_ARG, "mode");
    nb_init unif = {.kind = NB_INIT_UNIFORM, .a = 1, .b = -1};
    expect_error("uniform bounds reversed", unif, 2, d2, NB_ERR_ARG, "uniform");
    nb_init uinf = {.kind = NB_INIT_UNIFORM, .a = -INFINITY, .b = 1};
    expect_error("uniform infinite bound", uinf, 2, d2, NB_ERR_ARG, "uniform");
    nb_init unan = {.kind = NB_INIT_UNIFORM, .a = 0, .b = NAN};
    expect_error("uniform NaN bound", unan, 2, d2, NB_ERR_ARG, "uniform");
    nb_init nstd = {.kind = NB_INIT_NORMAL, .a = 0, .b = -0.1};
    expect_error("normal negative std", nstd, 2, d2, NB_ERR_ARG, "std");
    nb_init nmean = {.kind = NB_INIT_NORMAL, .a = NAN, .b = 1};
    expect_error("normal NaN mean", nmean, 2, d2, NB_ERR_ARG, "mean");
    nb_init ninf = {.kind = NB_INIT_NORMAL, .a = 0, .b = INFINITY};
    expect_error("normal infinite std", ninf, 2, d2, NB_ERR_ARG, "std");
    nb_init cnan = {.kind = NB_INIT_CONSTANT, .a = NAN};
    expect_error("constant NaN", cnan, 2, d2, NB_ERR_ARG, "constant");
    nb_init unknown = {.kind = (nb_init_kind)99};
    expect_error("unknown kind", unknown, 2, d2, NB_ERR_ARG, "kind");
    nb_init zeros = {.kind = NB_INIT_ZEROS};
    expect_error("negative dims", zeros, 2, neg, NB_ERR_SHAPE, "[-4, -4]");
    expect_error("negative fan dim", xu, 3, negfan, NB_ERR_SHAPE, "[4, -1, 4]");
    expect_error("too many dims", zeros, NB_MAX_DIMS + 1, d2, NB_ERR_SHAPE, "dimensions");
    expect_error("negative ndim", zeros, -1, d2, NB_ERR_SHAPE, "dimensions");

    nb_rng r;
    nb_rng_seed(&r, 1);
    nb_real w[4];
    CHECK(nb_init_tensor(NULL, 2, d2, zeros, &r) == NB_ERR_ARG);
    CHECK(nb_init_tensor(w, 2, d2, zeros, NULL) == NB_ERR_ARG);
    CHECK(nb_init_tensor(w, 2, NULL, zeros, &r) == NB_ERR_ARG);
    /* empty tensors are fine, even where a fan is 0 */
    int empty[2] = {0, 4};
    CHECK_OK(nb_init_tensor(w, 2, empty, xu, &r));
    CHECK_OK(nb_init_tensor(w, 2, empty, kn, &r));
    nb_init kout = {.kind = NB_INIT_KAIMING_NORMAL, .mode = NB_FAN_OUT};
    CHECK_OK(nb_init_tensor(w, 2, empty, kout, &r));
}

int main(void) {
    ref_file *f = ref_load(REF_PATH);
    CHECKF(f != NULL, "cannot load %s", REF_PATH);
    if (f) {
        test_gains(f);
        test_fans(f);
        test_distributions(f);
    }
    test_reproducible();
    test_errors();
    ref_free(f);
    TEST_END();
}
