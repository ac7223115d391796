/* Elementwise activations: relu, leaky_relu, abs, sigmoid, tanh, gelu (exact
 * and tanh form), silu, hardswish, elu, softplus.
 *
 * Each activation is a pair of small functions: its value f(x) and its slope
 * f'(x), given both x and the saved output y (sigmoid and tanh differentiate
 * from y, as PyTorch does).  One skeleton turns the pair into the op's forward
 * and backward loops; because the skeleton is inlined with a constant function
 * pointer, each loop compiles to straight code with no call per element.
 *
 * The op's parameters (slope, alpha, beta, threshold) are the node's
 * nb_activation_settings.  Values and slopes at kinks follow PyTorch exactly
 * (docs/definitions.md, Activations); the comment at each activation says which. */
#include "../core/internal.h"
#include "../kernels/parallel.h"
#include "../kernels/vmath.h"

typedef nb_real (*act_value_fn)(nb_real x, nb_activation_settings p);
typedef nb_real (*act_slope_fn)(nb_real x, nb_real y, nb_activation_settings p);

/* Large tensors are split into slices that run in parallel (elementwise:
 * the result does not depend on the split), of 16K values at least: a
 * region costs about 0.4 us, and the relu backward of 32K values took 4.3 us
 * on one thread, 2.4 in two slices. */
enum { SLICE_MIN = 1 << 14 };

typedef struct act_job {
    nb_graph *g;
    nb_node_t *n;
    int parts;
    int assign; /* backward: overwrite the input's gradient */
} act_job;

/* Values [*k0, *k1) of slice `part`, edges on multiples of 16 values. */
static void slice_of(const act_job *j, int part, size_t *k0, size_t *k1) {
    size_t total = nb__numel(j->n);
    nb__part_range(total, part, j->parts, 16, k0, k1);
}

static void run_slices(nb_graph *g, nb_node_t *n, void (*slice)(void *, int)) {
    act_job j = {.g = g, .n = n, .parts = 1, .assign = nb__grad_assign(n, 0)};
    j.parts = nb__part_count(nb__numel(n), SLICE_MIN);
    if (j.parts > 1) nb__parallel(j.parts, slice, &j);
    else slice(&j, 0);
}

static inline void act_forward(const act_job *j, int part, act_value_fn value) {
    nb_node_t *n = j->n;
    size_t k0, k1;
    slice_of(j, part, &k0, &k1);
    const nb_real *restrict x = nb__in(j->g, n, 0)->val;
    nb_real *restrict y = n->val;
    nb_activation_settings p = n->settings.activation;
    for (size_t k = k0; k < k1; k++) y[k] = value(x[k], p);
}

static inline void act_backward(const act_job *j, int part, act_slope_fn slope) {
    nb_node_t *n = j->n, *in = nb__in(j->g, n, 0);
    size_t k0, k1;
    slice_of(j, part, &k0, &k1);
    const nb_real *restrict x = in->val, *restrict y = n->val, *restrict dy = n->grad;
    nb_real *restrict dx = in->grad;
    nb_activation_settings p = n->settings.activation;
    if (j->assign)
        for (size_t k = k0; k < k1; k++) dx[k] = dy[k] * slope(x[k], y[k], p);
    else
        for (size_t k = k0; k < k1; k++) dx[k] += dy[k] * slope(x[k], y[k], p);
}

/* Defines NAME_forward, NAME_backward and the op table entry op_NAME from
 * NAME_value and NAME_slope; the remaining arguments set the entry's traits
 * (.flags, and .range for a saturating op).  Every activation's backward can
 * overwrite its input's gradient (NB_OP_ASSIGNS_GRAD). */
#define ACTIVATION_OP(NAME, LABEL, ...)                                                \
    NB_VECTOR_LOOP static void NAME##_forward_slice(void *job, int part) {             \
        act_forward(job, part, NAME##_value);                                          \
    }                                                                                  \
    NB_VECTOR_LOOP static void NAME##_backward_slice(void *job, int part) {            \
        act_backward(job, part, NAME##_slope);                                         \
    }                                                                                  \
    static void NAME##_forward(nb_graph *g, nb_node_t *n) {                            \
        run_slices(g, n, NAME##_forward_slice);                                        \
    }                                                                                  \
    static void NAME##_backward(nb_graph *g, nb_node_t *n) {                           \
        if (nb__in(g, n, 0)->grad) run_slices(g, n, NAME##_backward_slice);            \
    }                                                                                  \
    static const nb_op op_##NAME = {.name = LABEL, .forward = NAME##_forward,          \
                                   .backward = NAME##_backward, __VA_ARGS__};

/* Logistic function without overflow (vmath.h: exp is only ever taken of a
 * non-positive number, so it lies in (0, 1] for any x), and tanh: the
 * vectorisable ones, so these loops vectorise like the others. */
static inline nb_real stable_sigmoid(nb_real x) { return nb_vsigmoid(x); }

/* ---- relu: f'(0) = 0.  Written as "x <= 0" so a NaN passes through
 * forward and backward, like PyTorch's clamp / threshold_backward.  The slope
 * is taken from the output, as PyTorch does (y <= 0 exactly where x <= 0,
 * and a NaN stays NaN), so a convolution that applies the relu itself needs
 * no value of its own to differentiate it (fusion.c). */
static inline nb_real relu_value(nb_real x, nb_activation_settings p) {
    (void)p;
    return nb__relu(x);
}
static inline nb_real relu_slope(nb_real x, nb_real y, nb_activation_settings p) {
    (void)x, (void)p;
    return nb__relu_slope(y);
}
ACTIVATION_OP(relu, "relu", .flags = NB_OP_CAN_DIE | NB_OP_ASSIGNS_GRAD | NB_OP_RELU)

/* ---- leaky_relu: slope*x for x <= 0, so f'(0) = slope. */
static inline nb_real leaky_relu_value(nb_real x, nb_activation_settings p) {
    return x > 0 ? x : p.slope * x;
}
static inline nb_real leaky_relu_slope(nb_real x, nb_real y, nb_activation_settings p) {
    (void)y;
    return x > 0 ? R(1) : p.slope;
}
ACTIVATION_OP(leaky_relu, "leaky_relu", .flags = NB_OP_ASSIGNS_GRAD)

/* ---- abs: f'(x) = sign(x) with sign(0) = 0 (PyTorch's sgn). */
static inline nb_real abs_value(nb_real x, nb_activation_settings p) {
    (void)p;
    return nb_fabs(x);
}
static inline nb_real abs_slope(nb_real x, nb_real y, nb_activation_settings p) {
    (void)y, (void)p;
    return x > 0 ? R(1) : x < 0 ? R(-1) : R(0);
}
ACTIVATION_OP(abs, "abs", .flags = NB_OP_ASSIGNS_GRAD)

/* ---- sigmoid: f' = y (1 - y) from the saved output. */
static inline nb_real sigmoid_value(nb_real x, nb_activation_settings p) {
    (void)p;
    return stable_sigmoid(x);
}
static inline nb_real sigmoid_slope(nb_real x, nb_real y, nb_activation_settings p) {
    (void)x, (void)p;
    return y * (R(1) - y);
}
ACTIVATION_OP(sigmoid, "sigmoid", .flags = NB_OP_SATURATING | NB_OP_ASSIGNS_GRAD, .range = {0, 1})

/* ---- tanh: f' = 1 - y^2 from the saved output. */
static inline nb_real tanh_value(nb_real x, nb_activation_settings p) {
    (void)p;
    return nb_vtanh(x);
}
static inline nb_real tanh_slope(nb_real x, nb_real y, nb_activation_settings p) {
    (void)x, (void)p;
    return R(1) - y * y;
}
ACTIVATION_OP(tanh, "tanh", .flags = NB_OP_SATURATING | NB_OP_ASSIGNS_GRAD, .range = {-1, 1})

/* ---- gelu, exact: x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); f' = Phi(x) + x phi(x).
 * The same formulas as PyTorch's CPU kernel. */
#define NB_SQRT1_2 R(0.70710678118654752440)      /* 1/sqrt(2)    */
#define NB_INV_SQRT_2PI R(0.39894228040143267794) /* 1/sqrt(2 pi) */
#define NB_SQRT_2_PI R(0.79788456080286535588)    /* sqrt(2/pi)   */
#define NB_GELU_KAPPA R(0.044715)

static inline nb_real gelu_value(nb_real x, nb_activation_settings p) {
    (void)p;
    return R(0.5) * x * (R(1) + nb_verf(x * NB_SQRT1_2));
}
static inline nb_real gelu_slope(nb_real x, nb_real y, nb_activation_settings p) {
    (void)y, (void)p;
    nb_real cdf = R(0.5) * (R(1) + nb_verf(x * NB_SQRT1_2));
    nb_real pdf = NB_INV_SQRT_2PI * nb_vexp(R(-0.5) * x * x);
    return cdf + x * pdf;
}
ACTIVATION_OP(gelu, "gelu", .flags = NB_OP_ASSIGNS_GRAD)

/* ---- gelu, PyTorch's tanh approximation:
 * 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3). */
static inline nb_real gelu_tanh_value(nb_real x, nb_activation_settings p) {
    (void)p;
    nb_real u = NB_SQRT_2_PI * (x + NB_GELU_KAPPA * x * x * x);
    return R(0.5) * x * (R(1) + nb_vtanh(u));
}
static inline nb_real gelu_tanh_slope(nb_real x, nb_real y, nb_activation_settings p) {
    (void)y, (void)p;
    nb_real t = nb_vtanh(NB_SQRT_2_PI * (x + NB_GELU_KAPPA * x * x * x));
    nb_real du = NB_SQRT_2_PI * (R(1) + R(3) * NB_GELU_KAPPA * x * x);
    return R(0.5) * (R(1) + t) + R(0.5) * x * (R(1) - t * t) * du;
}
ACTIVATION_OP(gelu_tanh, "gelu_tanh", .flags = NB_OP_ASSIGNS_GRAD)

/* ---- silu: x sigma(x); f' = sigma (1 + x (1 - sigma)). */
static inline nb_real silu_value(nb_real x, nb_activation_settings p) {
    (void)p;
    return x * stable_sigmoid(x);
}
static inline nb_real silu_slope(nb_real x, nb_real y, nb_activation_settings p) {
    (void)y, (void)p;
    nb_real s = stable_sigmoid(x);
    return s * (R(1) + x * (R(1) - s));
}
ACTIVATION_OP(silu, "silu", .flags = NB_OP_ASSIGNS_GRAD)

/* ---- hardswish: x relu6(x + 3) / 6, written as PyTorch's CPU kernel
 * computes it, x min(max(x + 3, 0), 6) / 6.  Slope 0 for x < -3, 1 for
 * x >= 3, x/3 + 1/2 between: at x = -3 the middle piece's -1/2, at x = 3 the
 * right piece's 1, as PyTorch's vectorised CPU backward gives (its scalar
 * loop, which takes only the last few elements of a tensor, gives 3/2 at
 * x = 3).  A unit whose inputs all lie below -3 is 0 with slope 0: it can
 * die like a relu unit. */
static inline nb_real hardswish_value(nb_real x, nb_activation_settings p) {
    (void)p;
    nb_real r = x + R(3);
    r = r < R(0) ? R(0) : r;
    r = R(6) < r ? R(6) : r;
    return x * r / R(6);
}
static inline nb_real hardswish_slope(nb_real x, nb_real y, nb_activation_settings p) {
    (void)y, (void)p;
    return x < R(-3) ? R(0) : x >= R(3) ? R(1) : x / R(3) + R(0.5);
}
ACTIVATION_OP(hardswish, "hardswish", .flags = NB_OP_CAN_DIE | NB_OP_ASSIGNS_GRAD)

/* ---- elu: alpha expm1(x) for x <= 0, so at 0 the value is 0 and the slope
 * is alpha (PyTorch takes the x <= 0 branch there too). */
static inline nb_real elu_value(nb_real x, nb_activation_settings p) {
    return x <= 0 ? p.alpha * nb_expm1(x) : x;
}
static inline nb_real elu_slope(nb_real x, nb_real y, nb_activation_settings p) {
    (void)y;
    return x <= 0 ? p.alpha * nb_exp(x) : R(1);
}
ACTIVATION_OP(elu, "elu", .flags = NB_OP_ASSIGNS_GRAD)

/* ---- softplus: x where beta x > threshold (slope 1),
 * else log(1 + e^(beta x)) / beta with slope sigma(beta x).  The log is
 * computed as max(z, 0) + log1p(e^-|z|), equal to PyTorch's log1p(e^z) but
 * finite for any z, so a large threshold cannot overflow. */
static inline nb_real softplus_value(nb_real x, nb_activation_settings p) {
    nb_real z = p.beta * x;
    if (z > p.threshold) return x;
    return ((z > 0 ? z : R(0)) + nb_log1p(nb_exp(-nb_fabs(z)))) / p.beta;
}
static inline nb_real softplus_slope(nb_real x, nb_real y, nb_activation_settings p) {
    (void)y;
    nb_real z = p.beta * x;
    return z > p.threshold ? R(1) : stable_sigmoid(z);
}
ACTIVATION_OP(softplus, "softplus", .flags = NB_OP_ASSIGNS_GRAD)

/* ------------------------------------------------------------ builders */

/* Append the op node after nb__begin and any argument checks: the output has
 * the input's shape and is batched if the input is. */
static nb_node activation_node(nb_graph *g, const nb_op *op, nb_node x,
                               nb_activation_settings settings) {
    const nb_node_t *X = nb__node(g, x);
    nb_node h = nb__add_node(g, op, 1, &x, X->ndim, X->dims, X->batched);
    if (h != NB_NONE) nb__node(g, h)->settings.activation = settings;
    return h;
}

static nb_node plain_activation(nb_graph *g, const nb_op *op, nb_node x) {
    if (!nb__begin(g, op->name, 1, &x)) return NB_NONE;
    return activation_node(g, op, x, (nb_activation_settings){0});
}

nb_node nb_relu(nb_graph *g, nb_node x) { return plain_activation(g, &op_relu, x); }
nb_node nb_abs(nb_graph *g, nb_node x) { return plain_activation(g, &op_abs, x); }
nb_node nb_sigmoid(nb_graph *g, nb_node x) { return plain_activation(g, &op_sigmoid, x); }
nb_node nb_tanh(nb_graph *g, nb_node x) { return plain_activation(g, &op_tanh, x); }
nb_node nb_silu(nb_graph *g, nb_node x) { return plain_activation(g, &op_silu, x); }
nb_node nb_hardswish(nb_graph *g, nb_node x) { return plain_activation(g, &op_hardswish, x); }

nb_node nb_gelu(nb_graph *g, nb_node x, int tanh_approx) {
    return plain_activation(g, tanh_approx ? &op_gelu_tanh : &op_gelu, x);
}

nb_node nb_leaky_relu(nb_graph *g, nb_node x, nb_real slope) {
    if (!nb__begin(g, "leaky_relu", 1, &x)) return NB_NONE;
    if (!isfinite(slope))
        return nb__fail(g, NB_ERR_ARG, "leaky_relu: negative slope %g is not finite",
                        (double)slope);
    return activation_node(g, &op_leaky_relu, x, (nb_activation_settings){.slope = slope});
}

nb_node nb_elu(nb_graph *g, nb_node x, nb_real alpha) {
    if (!nb__begin(g, "elu", 1, &x)) return NB_NONE;
    if (!isfinite(alpha))
        return nb__fail(g, NB_ERR_ARG, "elu: alpha %g is not finite", (double)alpha);
    return activation_node(g, &op_elu, x, (nb_activation_settings){.alpha = alpha});
}

nb_node nb_softplus(nb_graph *g, nb_node x, nb_real beta, nb_real threshold) {
    if (!nb__begin(g, "softplus", 1, &x)) return NB_NONE;
    if (!isfinite(beta) || beta <= 0)
        return nb__fail(g, NB_ERR_ARG, "softplus: beta %g must be positive and finite",
                        (double)beta);
    /* +inf is allowed: never switch to the linear branch */
    if (isnan(threshold))
        return nb__fail(g, NB_ERR_ARG, "softplus: threshold is NaN");
    return activation_node(g, &op_softplus, x,
                           (nb_activation_settings){.beta = beta, .threshold = threshold});
}
