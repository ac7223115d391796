/* Weight initialisers, following torch.nn.init (docs/definitions.md, Initialisers). */
#include "internal.h"

#include <string.h>

double nb_init_gain(nb_nonlinearity nl, double param) {
    switch (nl) {
    case NB_NL_LINEAR:
    case NB_NL_SIGMOID: return 1.0;
    case NB_NL_TANH: return 5.0 / 3.0;
    case NB_NL_RELU: return sqrt(2.0);
    case NB_NL_LEAKY_RELU: {
        double a = param < 0 ? 0.01 : param;
        return sqrt(2.0 / (1.0 + a * a));
    }
    case NB_NL_SELU: return 0.75;
    }
    return 1.0;
}

/* 0 <= ndim <= NB_MAX_DIMS and no negative dim (a negative dim would wrap
 * the element count around size_t). */
static nb_status check_shape(int ndim, const int *dims) {
    if (ndim < 0 || ndim > NB_MAX_DIMS)
        return nb_err(NB_ERR_SHAPE, "init: %d dimensions, must be 0 to %d", ndim, NB_MAX_DIMS);
    for (int d = 0; d < ndim; d++)
        if (dims[d] < 0) {
            char buf[96];
            return nb_err(NB_ERR_SHAPE, "init: negative dimension in shape %s",
                          nb_shape_str(buf, sizeof buf, ndim, dims));
        }
    return NB_OK;
}

nb_status nb_init_fans(int ndim, const int *dims, double *fan_in, double *fan_out) {
    if (!dims) return nb_err(NB_ERR_ARG, "init: NULL dims");
    if (ndim < 2)
        return nb_err(NB_ERR_SHAPE, "init: fan in/out needs a tensor with at least 2 "
                      "dimensions, got %d", ndim);
    nb_status s = check_shape(ndim, dims);
    if (s != NB_OK) return s;
    double receptive = 1;
    for (int d = 2; d < ndim; d++) receptive *= dims[d];
    if (fan_in) *fan_in = dims[1] * receptive;
    if (fan_out) *fan_out = dims[0] * receptive;
    return NB_OK;
}

static void fill_uniform(nb_real *w, size_t n, double lo, double hi, nb_rng *r) {
    for (size_t k = 0; k < n; k++) w[k] = (nb_real)(lo + (hi - lo) * nb_rng_uniform(r));
}

static void fill_normal(nb_real *w, size_t n, double mean, double std, nb_rng *r) {
    for (size_t k = 0; k < n; k++) w[k] = (nb_real)(mean + std * nb_rng_normal(r));
}

nb_status nb_init_tensor(nb_real *w, int ndim, const int *dims, nb_init init, nb_rng *r) {
    if (!w || !r || (ndim > 0 && !dims))
        return nb_err(NB_ERR_ARG, "init: NULL %s", !w ? "tensor" : !r ? "rng" : "dims");
    nb_status shape_status = check_shape(ndim, dims);
    if (shape_status != NB_OK) return shape_status;
    size_t n = 1;
    for (int d = 0; d < ndim; d++) n *= (size_t)dims[d];
    double fan_in = 0, fan_out = 0, gain = init.gain;
    switch (init.kind) {
    case NB_INIT_XAVIER_UNIFORM: case NB_INIT_XAVIER_NORMAL: case NB_INIT_LECUN_UNIFORM:
    case NB_INIT_LECUN_NORMAL: case NB_INIT_KAIMING_UNIFORM: case NB_INIT_KAIMING_NORMAL:
    case NB_INIT_TORCH_LINEAR: {
        nb_status s = nb_init_fans(ndim, dims, &fan_in, &fan_out);
        if (s != NB_OK) return s;
        break;
    }
    default: break;
    }
    if (gain < 0 || !isfinite(gain)) return nb_err(NB_ERR_ARG, "init: gain %g is invalid", gain);
    switch (init.kind) {
    case NB_INIT_DEFAULT:
    case NB_INIT_ZEROS: memset(w, 0, n * sizeof *w); return NB_OK;
    case NB_INIT_CONSTANT:
        if (!isfinite(init.a))
            return nb_err(NB_ERR_ARG, "init: constant %g is not finite", init.a);
        for (size_t k = 0; k < n; k++) w[k] = (nb_real)init.a;
        return NB_OK;
    case NB_INIT_UNIFORM:
        if (!(init.a <= init.b) || !isfinite(init.a) || !isfinite(init.b))
            return nb_err(NB_ERR_ARG, "init: uniform bounds [%g, %g) must be finite and "
                          "ordered", init.a, init.b);
        fill_uniform(w, n, init.a, init.b, r);
        return NB_OK;
    case NB_INIT_NORMAL:
        if (!isfinite(init.a))
            return nb_err(NB_ERR_ARG, "init: normal mean %g is not finite", init.a);
        if (!(init.b >= 0) || !isfinite(init.b))
            return nb_err(NB_ERR_ARG, "init: normal std %g must be >= 0 and finite", init.b);
        fill_normal(w, n, init.a, init.b, r);
        return NB_OK;
    case NB_INIT_XAVIER_UNIFORM: {
        double bound = (gain ? gain : 1.0) * sqrt(6.0 / (fan_in + fan_out));
        fill_uniform(w, n, -bound, bound, r);
        return NB_OK;
    }
    case NB_INIT_XAVIER_NORMAL:
        fill_normal(w, n, 0, (gain ? gain : 1.0) * sqrt(2.0 / (fan_in + fan_out)), r);
        return NB_OK;
    case NB_INIT_LECUN_UNIFORM: {
        double bound = (gain ? gain : 1.0) * sqrt(3.0 / fan_in);
        fill_uniform(w, n, -bound, bound, r);
        return NB_OK;
    }
    case NB_INIT_LECUN_NORMAL:
        fill_normal(w, n, 0, (gain ? gain : 1.0) / sqrt(fan_in), r);
        return NB_OK;
    case NB_INIT_KAIMING_UNIFORM:
    case NB_INIT_KAIMING_NORMAL: {
        if (init.mode != NB_FAN_IN && init.mode != NB_FAN_OUT)
            return nb_err(NB_ERR_ARG, "init: unknown fan mode %d", (int)init.mode);
        double fan = init.mode == NB_FAN_OUT ? fan_out : fan_in;
        double std = (gain ? gain : sqrt(2.0)) / sqrt(fan);
        if (init.kind == NB_INIT_KAIMING_NORMAL) fill_normal(w, n, 0, std, r);
        else fill_uniform(w, n, -sqrt(3.0) * std, sqrt(3.0) * std, r);
        return NB_OK;
    }
    case NB_INIT_TORCH_LINEAR: {
        /* kaiming_uniform(a = sqrt(5)): gain sqrt(2/6), bound = gain*sqrt(3/fan_in) = 1/sqrt(fan_in) */
        double bound = 1.0 / sqrt(fan_in);
        fill_uniform(w, n, -bound, bound, r);
        return NB_OK;
    }
    }
    return nb_err(NB_ERR_ARG, "init: unknown initialiser kind %d", (int)init.kind);
}
