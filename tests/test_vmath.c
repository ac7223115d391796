/* The vectorisable exp, tanh and sigmoid of src/kernels/vmath.h against
 * double-precision libm: every 61st float from 1e-30 to 110 and from -110 to
 * -1e-30, every float around tanh's branch point, and the special values.
 * The error is counted in ulps of the float nearest the exact value. */
#include "nabla.h"
#include "test.h"
#include "kernels/vmath.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static double ulp_of(double exact) {
    float f = (float)exact;
    if (f == 0 || !isfinite(f)) return nextafterf(0, 1);
    float up = nextafterf(fabsf(f), INFINITY);
    return (double)up - fabs((double)f);
}

static double sigmoid_exact(double x) { return 1 / (1 + exp(-x)); }

typedef struct sweep {
    const char *name;
    float (*fast)(float);
    double (*exact)(double);
    double max_ulp;
} sweep;

static float fast_exp(float x) { return nb__expf(x); }
static float fast_tanh(float x) { return nb__tanhf(x); }
static float fast_sigmoid(float x) { return nb__sigmoidf(x); }
static float fast_erf(float x) { return nb__erff(x); }

/* The error of s at x, in ulps of the float nearest the exact value. */
static double ulp_error(const sweep *s, float x) {
    double e = s->exact((double)x);
    float f = s->fast(x);
    if (f == (float)e) return 0; /* also both infinite */
    return fabs((double)f - e) / ulp_of(e);
}

/* The worst error over the floats of [lo, hi] (0 < lo) and [-hi, -lo],
 * every `stride`th in bit order. */
static double worst_ulp(const sweep *s, float lo, float hi, uint32_t stride, float *where) {
    uint32_t b0, b1;
    memcpy(&b0, &lo, sizeof b0);
    memcpy(&b1, &hi, sizeof b1);
    double worst = 0;
    for (uint32_t b = b0; b <= b1; b += stride)
        for (int sign = 0; sign < 2; sign++) {
            uint32_t bits = b | (uint32_t)sign << 31;
            float x;
            memcpy(&x, &bits, sizeof x);
            double err = ulp_error(s, x);
            if (!(err <= worst)) worst = err, *where = x;
        }
    return worst;
}

static void test_sweeps(void) {
    const sweep all[] = {{"exp", fast_exp, exp, 1.0},
                         {"tanh", fast_tanh, tanh, 2.0},
                         {"sigmoid", fast_sigmoid, sigmoid_exact, 3.0},
                         {"erf", fast_erf, erf, 2.0}};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        const sweep *s = &all[i];
        float where = 0;
        double w = worst_ulp(s, 1e-30f, 110.0f, 61, &where);
        CHECKF(w <= s->max_ulp, "%s: %.2f ulp at %.9g", s->name, w, (double)where);
        double w2 = worst_ulp(s, 0.6f, 0.9f, 1, &where); /* tanh's and erf's branches */
        CHECKF(w2 <= s->max_ulp, "%s: %.2f ulp at %.9g near a branch", s->name, w2, (double)where);
        printf("%s: at most %.2f ulp\n", s->name, w > w2 ? w : w2);
    }
}

static void test_special_values(void) {
    CHECK(nb__expf(0) == 1 && nb__expf(-INFINITY) == 0 && nb__expf(INFINITY) == INFINITY);
    CHECK(nb__expf(89) == INFINITY && nb__expf(-104) == 0 && isnan(nb__expf(NAN)));
    CHECK(nb__expf(88.7f) == (float)exp(88.7f) && nb__expf(88.7f) < FLT_MAX);
    CHECK(nb__expf(-100) > 0 && nb__expf(-100) < FLT_MIN); /* subnormal, not flushed */
    CHECK(fabs(nb__expf(-100) - exp(-100.0)) <= nextafterf(0, 1));
    CHECK(nb__tanhf(0) == 0 && signbit(nb__tanhf(-0.0f)) && nb__tanhf(1e-30f) == 1e-30f);
    CHECK(nb__tanhf(INFINITY) == 1 && nb__tanhf(-INFINITY) == -1 && nb__tanhf(20) == 1);
    CHECK(isnan(nb__tanhf(NAN)) && isnan(nb__sigmoidf(NAN)));
    CHECK(nb__sigmoidf(0) == 0.5f && nb__sigmoidf(INFINITY) == 1 && nb__sigmoidf(-INFINITY) == 0);
    CHECK(nb__sigmoidf(-100) > 0 && nb__sigmoidf(200) == 1);
    CHECK(nb__erff(0) == 0 && signbit(nb__erff(-0.0f)) && nb__erff(INFINITY) == 1);
    CHECK(nb__erff(-INFINITY) == -1 && nb__erff(5) == 1 && isnan(nb__erff(NAN)));
}

int main(void) {
    test_special_values();
    test_sweeps();
    TEST_END();
}
