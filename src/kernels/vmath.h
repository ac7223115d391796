/* exp, tanh, sigmoid and erf in single precision, written so that the compiler
 * vectorises the loops that call them.  libm's expf and tanhf are function
 * calls, one value at a time: in a GRU, whose gates are sigmoids and tanhs,
 * they took half of the training step.
 *
 * exp is within 1 ulp of the exact value, tanh and erf within 2 and sigmoid
 * within 3
 * (tests/test_vmath.c sweeps the floats against double precision).  No
 * fused multiply-adds (the library is compiled without contraction), so
 * every vector width gives the same bits as the scalar code: results do not
 * depend on the CPU's vector unit.  The double build keeps libm. */
#ifndef NB_VMATH_H
#define NB_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Always inlined: a call inside a loop would stop it vectorising. */
#if defined(__GNUC__)
#define NB_VMATH static inline __attribute__((always_inline))
#else
#define NB_VMATH static inline
#endif

NB_VMATH float nb__f32_of_bits(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

NB_VMATH int32_t nb__bits_of_f32(float f) {
    int32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

/* cond ? a : b through bit masks: a `?:` on floats becomes a jump around the
 * floating-point work that computes them (which may trap, so the compiler
 * will not execute it unconditionally), and the loop would not vectorise. */
NB_VMATH float nb__select_f32(int cond, float a, float b) {
    uint32_t m = (uint32_t)0 - (uint32_t)(cond != 0);
    return nb__f32_of_bits(((uint32_t)nb__bits_of_f32(a) & m) |
                           ((uint32_t)nb__bits_of_f32(b) & ~m));
}

/* c[0] x^(n-1) + c[1] x^(n-2) + ... + c[n-1], by Horner's rule (n is a
 * constant where it is called, so this unrolls into straight code). */
NB_VMATH float nb__poly(float x, const float *c, int n) {
    float p = c[0];
    for (int k = 1; k < n; k++) p = p * x + c[k];
    return p;
}

/* e^x.  x = n ln2 + r with |r| <= ln2/2: e^r by its Taylor series to r^7
 * (truncation below 2^-28 relative; 1 added last, which rounds once),
 * scaled by 2^n in two factors so that results down to the subnormals round
 * once.  ln2 is split Cody-Waite style: n * LN2_HI is exact for the n that
 * occur (|n| <= 150), so r carries no cancellation error.
 *
 * No branch, so that loops vectorise: n is clamped to [-150, 128] as an
 * integer (a min and a max, not a jump).  Above, r is large and e^r * 2^128
 * overflows to inf as it should; below x = -104 the result is set to 0 by
 * the one select at the end (nb__select_f32).  A NaN stays NaN. */
NB_VMATH float nb__expf(float x) {
    const float shifter = 12582912.0f; /* 1.5 * 2^23: t's low bits hold round(x / ln2) */
    float t = x * 1.44269504088896341f + shifter;
    /* unsigned: for huge or NaN x, t's bits are garbage, without overflow */
    int32_t k = (int32_t)((uint32_t)nb__bits_of_f32(t) - (uint32_t)nb__bits_of_f32(shifter));
    k = k < 128 ? k : 128;
    k = k > -150 ? k : -150;
    float n = (float)k;
    float r = (x - n * 0.693145751953125f) - n * 1.428606820309417e-06f;
    /* (e^r - 1 - r) / r^2: the Taylor series' 1/7! ... 1/2! */
    static const float taylor[6] = {1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24,
                                    1.0f / 6, 0.5f};
    float q = nb__poly(r, taylor, 6);
    float p = 1.0f + (r + r * r * q); /* the small terms summed first */
    int32_t k1 = k / 2, k2 = k - k1; /* each within a normal float's exponent */
    float e = p * nb__f32_of_bits((uint32_t)(k1 + 127) << 23) *
              nb__f32_of_bits((uint32_t)(k2 + 127) << 23);
    return nb__select_f32(x < -104.0f, 0.0f, e);
}

/* tanh x.  Below |x| = 0.625, x + x u Q(u) with u = x^2 and Q of degree 4
 * (relative error 4.4e-9, fitted for this range); above, 1 - 2 / (e^2|x| + 1),
 * where the subtraction loses less than a bit, with x's sign. */
NB_VMATH float nb__tanhf(float x) {
    float a = fabsf(x), u = x * x;
    static const float Q[5] = {-5.704978708e-03f, 2.063907950e-02f, -5.373971257e-02f,
                               1.333144217e-01f, -3.333328194e-01f};
    float q = nb__poly(u, Q, 5);
    float small = a + a * (u * q), big = 1.0f - 2.0f / (nb__expf(2.0f * a) + 1.0f);
    return copysignf(nb__select_f32(a < 0.625f, small, big), x);
}

/* 1 / (1 + e^-x) without overflow: e = e^-|x| is at most 1, and the result
 * is 1 / (1 + e) for x >= 0 and e / (1 + e) below, one division each. */
NB_VMATH float nb__sigmoidf(float x) {
    float e = nb__expf(-fabsf(x));
    return (x >= 0 ? 1.0f : e) / (1.0f + e);
}

/* erf x, odd.  Below |x| = 0.875, x P(x^2) with P of degree 5 (relative
 * error 8.5e-9, fitted for this range); above, 1 - e^-x^2 Q(t) with
 * t = 1 / (1 + |x|/2) and Q of degree 7 fitted to erfc(x) e^(x^2) on
 * [0.875, 4] (beyond 4, erf is 1 in float).  A NaN stays NaN. */
NB_VMATH float nb__erff(float x) {
    float a = fabsf(x), u = a * a;
    static const float P[5] = {-6.2032543254e-04f, 5.0321813011e-03f, -2.6791463142e-02f,
                               1.1282455338e-01f, -3.7612550466e-01f};
    float p = nb__poly(u, P, 5);
    float small = a + a * (p * u + 1.283791575e-01f); /* P - 1: a added last */
    /* |x| clamped to 4 as an integer min of the bits (non-negative floats
     * order like their bits) */
    int32_t ab = nb__bits_of_f32(a), four = 0x40800000;
    float b = nb__f32_of_bits((uint32_t)(ab < four ? ab : four));
    float t = 1.0f / (1.0f + 0.5f * b);
    static const float Q[8] = {1.1062264429e-01f, -4.3564419805e-01f, 5.0149294510e-01f,
                               -4.4290555011e-02f, 3.1380355853e-01f, 2.7131721001e-01f,
                               2.8271448572e-01f, 2.2892527377e-05f};
    float q = nb__poly(t, Q, 8);
    float big = 1.0f - nb__expf(-(b * b)) * q;
    return nb__select_f32(x == x, copysignf(nb__select_f32(a < 0.875f, small, big), x), x);
}

/* The sum of x[0..n) (of a[k] b[k] for the dot product) in eight partial
 * sums, added up in a fixed order: a running sum is a chain of dependent
 * additions, while eight keep the vector adders busy; the bits do not
 * depend on the vector width.  For short rows (softmax, attention). */
#define NB__SUM8(part) \
    (((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7])))

NB_VMATH nb_real nb_vsum(const nb_real *x, int n) {
    nb_real part[8] = {0}, rest = 0;
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int q = 0; q < 8; q++) part[q] += x[j + q];
    for (; j < n; j++) rest += x[j];
    return rest + NB__SUM8(part);
}

NB_VMATH nb_real nb_vdot(const nb_real *a, const nb_real *b, int n) {
    nb_real part[8] = {0}, rest = 0;
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int q = 0; q < 8; q++) part[q] += a[j + q] * b[j + q];
    for (; j < n; j++) rest += a[j] * b[j];
    return rest + NB__SUM8(part);
}

/* For nb_real: these in the float build, libm in the double build (whose
 * results the gradient checks compare with). */
#ifdef NB_REAL_DOUBLE
NB_VMATH double nb_vexp(double x) { return exp(x); }
NB_VMATH double nb_vtanh(double x) { return tanh(x); }
NB_VMATH double nb_verf(double x) { return erf(x); }
NB_VMATH double nb_vsigmoid(double x) {
    double e = exp(-fabs(x));
    return (x >= 0 ? 1.0 : e) / (1.0 + e);
}
#else
#define nb_vexp nb__expf
#define nb_vtanh nb__tanhf
#define nb_verf nb__erff
#define nb_vsigmoid nb__sigmoidf
#endif

#endif
