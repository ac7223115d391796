/* A minimal test harness: CHECK records a failure and goes on; each test
 * program ends with TEST_END, which prints "N passed, N failed". */
#ifndef NB_TEST_H
#define NB_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int nb_test_passed, nb_test_failed;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (cond) nb_test_passed++;                                                    \
        else {                                                                         \
            nb_test_failed++;                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
        }                                                                              \
    } while (0)

/* CHECK with a printf-style explanation on failure. */
#define CHECKF(cond, ...)                                                              \
    do {                                                                               \
        if (cond) nb_test_passed++;                                                    \
        else {                                                                         \
            nb_test_failed++;                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                       \
        }                                                                              \
    } while (0)

#define CHECK_OK(expr)                                                                 \
    do {                                                                               \
        nb_status s_ = (expr);                                                         \
        CHECKF(s_ == NB_OK, "%s -> %s: %s", #expr, nb_status_name(s_), nb_last_error()); \
    } while (0)

/* CHECK_OK that returns from the calling void function on failure: for a
 * step whose result the rest of the function uses. */
#define REQUIRE_OK(expr)                                                               \
    do {                                                                               \
        nb_status r_ = (expr);                                                         \
        CHECKF(r_ == NB_OK, "%s -> %s: %s", #expr, nb_status_name(r_), nb_last_error()); \
        if (r_ != NB_OK) return;                                                       \
    } while (0)

/* |a - b| <= atol + rtol |b| */
#define CHECK_CLOSE(a, b, atol, rtol)                                                  \
    do {                                                                               \
        double a_ = (double)(a), b_ = (double)(b);                                     \
        CHECKF(fabs(a_ - b_) <= (atol) + (rtol)*fabs(b_), "%s = %.9g, expected %.9g",  \
               #a, a_, b_);                                                            \
    } while (0)

#define TEST_END()                                                                     \
    do {                                                                               \
        printf("%d passed, %d failed\n", nb_test_passed, nb_test_failed);              \
        return nb_test_failed ? 1 : 0;                                                 \
    } while (0)

/* For tests of nabla's reals (include nabla.h first): a and b are non-NULL
 * and hold the same bits; every value of v is NaN. */
#ifdef NABLA_H
static inline int nb_test_same_bits(const nb_real *a, const nb_real *b, size_t len) {
    return a && b && memcmp(a, b, len * sizeof *a) == 0;
}

static inline int nb_test_all_nan(const nb_real *v, size_t len) {
    for (size_t k = 0; k < len; k++)
        if (v[k] == v[k]) return 0;
    return 1;
}

/* The graph's parameters drawn from a generator seeded with seed (a build
 * that failed is reported on stderr; the checks after it fail). */
static inline void nb_test_init_params(nb_graph *g, uint64_t seed) {
    nb_rng r;
    nb_rng_seed(&r, seed);
    if (nb_graph_init(g, &r) != NB_OK || nb_graph_status(g) != NB_OK)
        fprintf(stderr, "build: %s\n", nb_last_error());
}

/* Every parameter moved as an optimiser step would move it: p -= g/2 + 0.01. */
static inline void nb_test_step_params(nb_graph *g) {
    nb_real *p = nb_params(g);
    const nb_real *d = nb_grads(g);
    for (size_t k = 0; k < nb_param_count(g); k++) p[k] -= (nb_real)0.5 * d[k] + (nb_real)0.01;
}
#endif

#endif
