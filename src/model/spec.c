/* Model files: a small line-based text format for sequential models and DAGs.
 * The format is documented in docs/model-format.md.  Every error names the
 * source, the line and the offending token. */
#include "../core/internal.h"
#include "spec_vars.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_TOKENS = 32, MAX_NAMES = 1024, MAX_LINE = 4096, MAX_TEXT = 1 << 20 };

typedef struct spec_line {
    int lineno;
    char *tok[MAX_TOKENS];
    int ntok;
    int used[MAX_TOKENS];   /* options consumed by the layer's builder */
    const char *label;      /* "name = ..." or NULL */
    const char *op;
    const struct layer_kind *kind; /* the op's entry in the layer table */
    int first_arg;          /* index of the first token after the op */
} spec_line;

typedef struct spec_ctx {
    const char *source;
    nb_model *m;
    nb_graph *g;
    nb_node prev;           /* output of the previous line */
    int layer_index;        /* index in the equivalent nn.Sequential */
    struct { char name[64]; nb_node node; } names[MAX_NAMES];
    int n_names;
} spec_ctx;

static nb_status fail(const spec_ctx *c, const spec_line *l, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static nb_status fail(const spec_ctx *c, const spec_line *l, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nb_err(NB_ERR_FORMAT, "%s:%d: %s", c->source, l->lineno, msg);
}

/* ------------------------------------------------------------ arguments */

static int is_option(const char *t) { return strchr(t, '=') != NULL; }
static int is_ref(const char *t) { return t[0] == '@'; }

/* Value of option key=..., marking it used; NULL if absent. */
static const char *option(spec_line *l, const char *key) {
    size_t n = strlen(key);
    for (int k = l->first_arg; k < l->ntok; k++)
        if (strncmp(l->tok[k], key, n) == 0 && l->tok[k][n] == '=') {
            l->used[k] = 1;
            return l->tok[k] + n + 1;
        }
    return NULL;
}

/* Strict number parsing: the whole token, finite. */
static int parse_double(const char *s, double *out) {
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

static int parse_int(const char *s, int *out) {
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno == ERANGE || v < -2147483647L || v > 2147483647L) return 0;
    *out = (int)v;
    return 1;
}

static nb_status double_option(spec_ctx *c, spec_line *l, const char *key, double dflt,
                               double *out) {
    const char *v = option(l, key);
    *out = dflt;
    if (v && !parse_double(v, out))
        return fail(c, l, "%s: option %s=%s is not a number", l->op, key, v);
    return NB_OK;
}

static nb_status int_option(spec_ctx *c, spec_line *l, const char *key, int dflt, int lo,
                            int hi, int *out) {
    const char *v = option(l, key);
    *out = dflt;
    if (v && (!parse_int(v, out) || *out < lo || *out > hi))
        return fail(c, l, "%s: option %s=%s is not an integer from %d to %d", l->op, key, v, lo,
                    hi);
    return NB_OK;
}

static nb_status bool_option(spec_ctx *c, spec_line *l, const char *key, int dflt, int *out) {
    const char *v = option(l, key);
    *out = dflt;
    if (!v) return NB_OK;
    if (strcmp(v, "true") == 0) *out = 1;
    else if (strcmp(v, "false") == 0) *out = 0;
    else return fail(c, l, "%s: option %s=%s must be true or false", l->op, key, v);
    return NB_OK;
}

/* Positional (non-option, non-reference) arguments. */
static int positionals(spec_line *l, const char **out, int max) {
    int n = 0;
    for (int k = l->first_arg; k < l->ntok; k++) {
        if (is_option(l->tok[k]) || is_ref(l->tok[k])) continue;
        if (n < max) out[n] = l->tok[k];
        n++;
        l->used[k] = 1;
    }
    return n;
}

static nb_node lookup(const spec_ctx *c, const char *name) {
    for (int i = 0; i < c->n_names; i++)
        if (strcmp(c->names[i].name, name) == 0) return c->names[i].node;
    return NB_NONE;
}

/* Inputs of a line: its @references, preceded by the previous output when the
 * op needs more inputs than were named. */
static nb_status inputs(spec_ctx *c, spec_line *l, int arity, nb_node *in) {
    int nref = 0;
    nb_node refs[MAX_TOKENS];
    for (int k = l->first_arg; k < l->ntok; k++) {
        if (!is_ref(l->tok[k])) continue;
        l->used[k] = 1;
        nb_node n = lookup(c, l->tok[k] + 1);
        if (n == NB_NONE) return fail(c, l, "%s: unknown node '%s'", l->op, l->tok[k]);
        refs[nref++] = n;
    }
    if (nref > arity)
        return fail(c, l, "%s takes %d input%s, %d named", l->op, arity, arity == 1 ? "" : "s",
                    nref);
    int k = 0;
    if (nref < arity) {
        if (nref + 1 < arity)
            return fail(c, l, "%s needs %d inputs: name at least %d with @name", l->op, arity,
                        arity - 1);
        if (c->prev == NB_NONE) return fail(c, l, "%s: no previous layer to take as input", l->op);
        in[k++] = c->prev;
    }
    for (int r = 0; r < nref; r++) in[k++] = refs[r];
    return NB_OK;
}

/* ------------------------------------------------------------ initialisers */

static nb_status parse_init(spec_ctx *c, spec_line *l, nb_init *init) {
    const char *v = option(l, "init");
    memset(init, 0, sizeof *init);
    double gain = 0;
    nb_status s = double_option(c, l, "gain", 0, &gain);
    if (s != NB_OK) return s;
    if (!v) {
        if (gain) return fail(c, l, "%s: gain= needs an init= that uses it", l->op);
        return NB_OK;
    }
    static const struct { const char *name; nb_init_kind kind; int mode; } kinds[] = {
        {"torch", NB_INIT_TORCH_LINEAR, 0},      {"zeros", NB_INIT_ZEROS, 0},
        {"xavier", NB_INIT_XAVIER_NORMAL, 0},    {"xavier_normal", NB_INIT_XAVIER_NORMAL, 0},
        {"xavier_uniform", NB_INIT_XAVIER_UNIFORM, 0}, {"lecun", NB_INIT_LECUN_NORMAL, 0},
        {"lecun_normal", NB_INIT_LECUN_NORMAL, 0}, {"lecun_uniform", NB_INIT_LECUN_UNIFORM, 0},
        {"he", NB_INIT_KAIMING_NORMAL, 0},       {"he_normal", NB_INIT_KAIMING_NORMAL, 0},
        {"he_uniform", NB_INIT_KAIMING_UNIFORM, 0}, {"he_fan_out", NB_INIT_KAIMING_NORMAL, 1},
        {"he_uniform_fan_out", NB_INIT_KAIMING_UNIFORM, 1},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        if (strcmp(v, kinds[k].name) == 0) {
            init->kind = kinds[k].kind;
            init->mode = kinds[k].mode ? NB_FAN_OUT : NB_FAN_IN;
            init->gain = gain;
            return NB_OK;
        }
    /* forms with values: normal:STD, uniform:A:B, constant:V */
    char kind[32];
    double a = 0, b = 0;
    const char *colon = strchr(v, ':');
    size_t klen = colon ? (size_t)(colon - v) : strlen(v);
    if (colon && klen < sizeof kind) {
        memcpy(kind, v, klen);
        kind[klen] = '\0';
        char rest[64];
        snprintf(rest, sizeof rest, "%s", colon + 1);
        char *second = strchr(rest, ':');
        if (second) *second++ = '\0';
        int ok_a = parse_double(rest, &a), ok_b = second && parse_double(second, &b);
        if (strcmp(kind, "normal") == 0 && ok_a && !second && a >= 0) {
            *init = (nb_init){.kind = NB_INIT_NORMAL, .a = 0, .b = a};
            return NB_OK;
        }
        if (strcmp(kind, "uniform") == 0 && ok_a && ok_b && a <= b) {
            *init = (nb_init){.kind = NB_INIT_UNIFORM, .a = a, .b = b};
            return NB_OK;
        }
        if (strcmp(kind, "constant") == 0 && ok_a && !second) {
            *init = (nb_init){.kind = NB_INIT_CONSTANT, .a = a};
            return NB_OK;
        }
    }
    return fail(c, l, "%s: unknown initialiser init=%s (known: torch, zeros, constant:V, "
                "normal:STD, uniform:A:B, xavier, xavier_uniform, lecun, lecun_uniform, he, "
                "he_uniform, he_fan_out, he_uniform_fan_out)", l->op, v);
}

/* ------------------------------------------------------------ layers */

/* A layer keyword: the builder that reads its line, and for the layers that
 * are one call of a graph op without options, that op.  The table `layers`
 * below lists every keyword once; parsing and the "known:" list of the
 * unknown-layer message both read it. */
typedef struct layer_kind {
    const char *keyword;
    nb_status (*build)(spec_ctx *c, spec_line *l, nb_node *out);
    int sequential; /* counts as a layer of the equivalent nn.Sequential */
    nb_node (*unary)(nb_graph *g, nb_node x);             /* layer_unary  */
    nb_node (*binary)(nb_graph *g, nb_node a, nb_node b); /* layer_binary */
} layer_kind;

static void param_prefix(const spec_ctx *c, const spec_line *l, char *buf, size_t size) {
    if (l->label) snprintf(buf, size, "%s", l->label);
    else snprintf(buf, size, "%d", c->layer_index);
}

static nb_status layer_input(spec_ctx *c, spec_line *l, nb_node *out) {
    const char *pos[NB_MAX_DIMS];
    int n = positionals(l, pos, NB_MAX_DIMS);
    if (n < 1 || n > NB_MAX_DIMS - 1)
        return fail(c, l, "input: give 1 to %d per-sample dimensions, e.g. 'input 784' or "
                    "'input 1 28 28'", NB_MAX_DIMS - 1);
    if (c->m->input != NB_NONE) return fail(c, l, "input: a model has one input");
    int dims[NB_MAX_DIMS];
    for (int k = 0; k < n; k++)
        if (!parse_int(pos[k], &dims[k]) || dims[k] <= 0)
            return fail(c, l, "input: dimension '%s' is not a positive integer", pos[k]);
    nb_status s = int_option(c, l, "tokens", 0, 1, 1 << 24, &c->m->vocab);
    if (s != NB_OK) return s;
    if (c->m->vocab && n != 1)
        return fail(c, l, "input: token input takes one dimension, the positions: 'input T "
                    "tokens=V'");
    *out = nb_input(c->g, l->label ? l->label : "input", n, dims);
    c->m->input = *out;
    return NB_OK;
}

static nb_status layer_dense(spec_ctx *c, spec_line *l, nb_node *out) {
    const char *pos[1] = {NULL};
    int units;
    if (positionals(l, pos, 1) != 1 || !parse_int(pos[0], &units) || units <= 0)
        return fail(c, l, "dense: give the number of output units, e.g. 'dense 128'");
    nb_dense_opts o = {0};
    const char *bias = option(l, "bias");
    if (bias && strcmp(bias, "true") && strcmp(bias, "false"))
        return fail(c, l, "dense: bias=%s must be true or false", bias);
    o.no_bias = bias && strcmp(bias, "false") == 0;
    nb_status s = parse_init(c, l, &o.weight_init);
    if (s != NB_OK) return s;
    nb_node x;
    if ((s = inputs(c, l, 1, &x)) != NB_OK) return s;
    char prefix[48];
    param_prefix(c, l, prefix, sizeof prefix);
    *out = nb_dense(c->g, x, units, prefix, &o);
    return NB_OK;
}

/* Activations and other one-input ops without options or parameters: the
 * op is the keyword's entry in `layers`. */
static nb_status layer_unary(spec_ctx *c, spec_line *l, nb_node *out) {
    nb_node x;
    nb_status s = inputs(c, l, 1, &x);
    if (s == NB_OK) *out = l->kind->unary(c->g, x);
    return s;
}

static nb_status layer_leaky_relu(spec_ctx *c, spec_line *l, nb_node *out) {
    nb_node x;
    double slope;
    nb_status s;
    if ((s = inputs(c, l, 1, &x)) != NB_OK ||
        (s = double_option(c, l, "slope", 0.01, &slope)) != NB_OK)
        return s;
    *out = nb_leaky_relu(c->g, x, (nb_real)slope);
    return NB_OK;
}

static nb_status layer_elu(spec_ctx *c, spec_line *l, nb_node *out) {
    nb_node x;
    double alpha;
    nb_status s;
    if ((s = inputs(c, l, 1, &x)) != NB_OK ||
        (s = double_option(c, l, "alpha", 1.0, &alpha)) != NB_OK)
        return s;
    *out = nb_elu(c->g, x, (nb_real)alpha);
    return NB_OK;
}

static nb_status layer_softplus(spec_ctx *c, spec_line *l, nb_node *out) {
    nb_node x;
    double beta, threshold;
    nb_status s;
    if ((s = inputs(c, l, 1, &x)) != NB_OK ||
        (s = double_option(c, l, "beta", 1.0, &beta)) != NB_OK ||
        (s = double_option(c, l, "threshold", 20.0, &threshold)) != NB_OK)
        return s;
    *out = nb_softplus(c->g, x, (nb_real)beta, (nb_real)threshold);
    return NB_OK;
}

static nb_status layer_gelu(spec_ctx *c, spec_line *l, nb_node *out) {
    nb_node x;
    nb_status s = inputs(c, l, 1, &x);
    if (s != NB_OK) return s;
    const char *approx = option(l, "approximate");
    if (approx && strcmp(approx, "tanh") && strcmp(approx, "none"))
        return fail(c, l, "gelu: approximate=%s must be none or tanh", approx);
    *out = nb_gelu(c->g, x, approx && strcmp(approx, "tanh") == 0);
    return NB_OK;
}

static nb_status layer_scale(spec_ctx *c, spec_line *l, nb_node *out) {
    nb_node x;
    nb_status s = inputs(c, l, 1, &x);
    if (s != NB_OK) return s;
    const char *pos[1] = {NULL};
    double factor;
    if (positionals(l, pos, 1) != 1 || !parse_double(pos[0], &factor))
        return fail(c, l, "scale: give the factor, e.g. 'scale 0.5'");
    *out = nb_scale(c->g, x, (nb_real)factor);
    return NB_OK;
}

static nb_status layer_reshape(spec_ctx *c, spec_line *l, nb_node *out) {
    const char *pos[NB_MAX_DIMS];
    int n = positionals(l, pos, NB_MAX_DIMS), dims[NB_MAX_DIMS];
    if (n < 1 || n > NB_MAX_DIMS - 1)
        return fail(c, l, "reshape: give 1 to %d per-sample dimensions", NB_MAX_DIMS - 1);
    for (int k = 0; k < n; k++)
        if (!parse_int(pos[k], &dims[k]) || (dims[k] <= 0 && dims[k] != -1))
            return fail(c, l, "reshape: dimension '%s' is not a positive integer or -1", pos[k]);
    nb_node x;
    nb_status s = inputs(c, l, 1, &x);
    if (s == NB_OK) *out = nb_reshape(c->g, x, n, dims);
    return s;
}

/* conv C_OUT K [KW]: stride=, padding=, dilation=, groups=, bias=, init=, gain= */
static nb_status layer_conv(spec_ctx *c, spec_line *l, nb_node *out) {
    const char *pos[3] = {NULL};
    int n = positionals(l, pos, 3), cout, kh, kw;
    if (n < 2 || n > 3 || !parse_int(pos[0], &cout) || cout <= 0 || !parse_int(pos[1], &kh) ||
        kh <= 0 || (n == 3 && (!parse_int(pos[2], &kw) || kw <= 0)))
        return fail(c, l, "conv: give output channels and kernel size, e.g. 'conv 32 3' or "
                    "'conv 32 3 5'");
    if (n == 2) kw = kh;
    nb_conv_opts o = {0};
    nb_status s;
    int bias;
    if ((s = int_option(c, l, "stride", 1, 1, 1 << 16, &o.stride_h)) != NB_OK ||
        (s = int_option(c, l, "padding", 0, 0, 1 << 16, &o.pad_h)) != NB_OK ||
        (s = int_option(c, l, "dilation", 1, 1, 1 << 16, &o.dil_h)) != NB_OK ||
        (s = int_option(c, l, "groups", 1, 1, 1 << 20, &o.groups)) != NB_OK ||
        (s = bool_option(c, l, "bias", 1, &bias)) != NB_OK ||
        (s = parse_init(c, l, &o.weight_init)) != NB_OK)
        return s;
    o.stride_w = o.stride_h;
    o.pad_w = o.pad_h;
    o.dil_w = o.dil_h;
    o.no_bias = !bias;
    nb_node x;
    if ((s = inputs(c, l, 1, &x)) != NB_OK) return s;
    char prefix[48];
    param_prefix(c, l, prefix, sizeof prefix);
    *out = nb_conv2d_layer(c->g, x, cout, kh, kw, &o, prefix);
    return NB_OK;
}

/* What maxpool and avgpool share: the window size K, stride= (default K),
 * padding=, ceil=. */
static nb_status pool_args(spec_ctx *c, spec_line *l, int *k, int *stride, int *pad,
                           int *ceil_mode) {
    const char *pos[1] = {NULL};
    if (positionals(l, pos, 1) != 1 || !parse_int(pos[0], k) || *k <= 0)
        return fail(c, l, "%s: give the window size, e.g. '%s 2'", l->op, l->op);
    nb_status s;
    if ((s = int_option(c, l, "stride", *k, 1, 1 << 16, stride)) != NB_OK ||
        (s = int_option(c, l, "padding", 0, 0, 1 << 16, pad)) != NB_OK)
        return s;
    return bool_option(c, l, "ceil", 0, ceil_mode);
}

static nb_status layer_maxpool(spec_ctx *c, spec_line *l, nb_node *out) {
    int k = 0, stride = 0, pad = 0, ceil_mode = 0;
    nb_node x;
    nb_status s;
    if ((s = pool_args(c, l, &k, &stride, &pad, &ceil_mode)) != NB_OK ||
        (s = inputs(c, l, 1, &x)) != NB_OK)
        return s;
    *out = nb_max_pool2d(c->g, x, k, k, stride, stride, pad, pad, ceil_mode);
    return NB_OK;
}

/* avgpool K: the pool options and count_include_pad= */
static nb_status layer_avgpool(spec_ctx *c, spec_line *l, nb_node *out) {
    int k = 0, stride = 0, pad = 0, ceil_mode = 0, include_pad = 1;
    nb_node x;
    nb_status s;
    if ((s = pool_args(c, l, &k, &stride, &pad, &ceil_mode)) != NB_OK ||
        (s = bool_option(c, l, "count_include_pad", 1, &include_pad)) != NB_OK ||
        (s = inputs(c, l, 1, &x)) != NB_OK)
        return s;
    *out = nb_avg_pool2d(c->g, x, k, k, stride, stride, pad, pad, ceil_mode, include_pad);
    return NB_OK;
}

/* What batchnorm and layernorm share: eps=, affine= */
static nb_status norm_args(spec_ctx *c, spec_line *l, nb_norm_opts *o) {
    nb_status s;
    int affine;
    if ((s = double_option(c, l, "eps", 1e-5, &o->eps)) != NB_OK ||
        (s = bool_option(c, l, "affine", 1, &affine)) != NB_OK)
        return s;
    if (!(o->eps > 0)) return fail(c, l, "%s: eps must be positive", l->op);
    o->no_affine = !affine;
    return NB_OK;
}

/* batchnorm: the norm options and momentum= */
static nb_status layer_batchnorm(spec_ctx *c, spec_line *l, nb_node *out) {
    nb_norm_opts o = {0};
    nb_status s;
    if ((s = norm_args(c, l, &o)) != NB_OK ||
        (s = double_option(c, l, "momentum", 0.1, &o.momentum)) != NB_OK)
        return s;
    if (!(o.momentum > 0 && o.momentum <= 1))
        return fail(c, l, "batchnorm: momentum must be in (0, 1]");
    nb_node x;
    if ((s = inputs(c, l, 1, &x)) != NB_OK) return s;
    char prefix[48];
    param_prefix(c, l, prefix, sizeof prefix);
    *out = nb_batch_norm(c->g, x, prefix, &o);
    return NB_OK;
}

/* layernorm: the norm options and dims= */
static nb_status layer_layernorm(spec_ctx *c, spec_line *l, nb_node *out) {
    nb_norm_opts o = {0};
    nb_status s;
    int dims;
    nb_node x;
    if ((s = norm_args(c, l, &o)) != NB_OK ||
        (s = int_option(c, l, "dims", 1, 1, NB_MAX_DIMS - 1, &dims)) != NB_OK ||
        (s = inputs(c, l, 1, &x)) != NB_OK)
        return s;
    char prefix[48];
    param_prefix(c, l, prefix, sizeof prefix);
    *out = nb_layer_norm(c->g, x, dims, prefix, &o);
    return NB_OK;
}

static nb_status layer_dropout(spec_ctx *c, spec_line *l, nb_node *out) {
    const char *pos[1] = {NULL};
    double p;
    if (positionals(l, pos, 1) != 1 || !parse_double(pos[0], &p) || p < 0 || p >= 1)
        return fail(c, l, "dropout: give the drop probability in [0, 1), e.g. 'dropout 0.2'");
    nb_node x;
    nb_status s = inputs(c, l, 1, &x);
    if (s == NB_OK) *out = nb_dropout(c->g, x, (nb_real)p);
    return s;
}

/* attention HEADS: causal= (default false) */
static nb_status layer_attention(spec_ctx *c, spec_line *l, nb_node *out) {
    const char *pos[1] = {NULL};
    int heads, causal;
    nb_status s;
    if (positionals(l, pos, 1) != 1 || !parse_int(pos[0], &heads) || heads <= 0)
        return fail(c, l, "attention: give the number of heads, e.g. 'attention 4 causal=true'");
    nb_node x;
    if ((s = bool_option(c, l, "causal", 0, &causal)) != NB_OK ||
        (s = inputs(c, l, 1, &x)) != NB_OK)
        return s;
    char prefix[48];
    param_prefix(c, l, prefix, sizeof prefix);
    *out = nb_attention(c->g, x, heads, causal, prefix);
    return NB_OK;
}

/* residual @x: previous output + x, through a 1x1 projection if shapes differ */
static nb_status layer_residual(spec_ctx *c, spec_line *l, nb_node *out) {
    nb_node in[2];
    nb_status s = inputs(c, l, 2, in);
    if (s != NB_OK) return s;
    char prefix[48];
    param_prefix(c, l, prefix, sizeof prefix);
    *out = nb_residual(c->g, in[0], in[1], prefix);
    return NB_OK;
}

/* add, sub, mul: the op is the keyword's entry in `layers` */
static nb_status layer_binary(spec_ctx *c, spec_line *l, nb_node *out) {
    nb_node in[2];
    nb_status s = inputs(c, l, 2, in);
    if (s == NB_OK) *out = l->kind->binary(c->g, in[0], in[1]);
    return s;
}

static nb_status layer_concat(spec_ctx *c, spec_line *l, nb_node *out) {
    int nref = 0;
    for (int k = l->first_arg; k < l->ntok; k++) nref += is_ref(l->tok[k]);
    if (nref < 1) return fail(c, l, "concat: name the tensors to join with @name");
    nb_node in[MAX_TOKENS];
    int n = nref + 1; /* previous output first, unless all are named */
    const char *axis_s = option(l, "axis");
    int axis = 1;
    if (axis_s && !parse_int(axis_s, &axis))
        return fail(c, l, "concat: axis=%s is not an integer", axis_s);
    const char *prev_s = option(l, "previous");
    if (prev_s && strcmp(prev_s, "false") == 0) n = nref;
    nb_status s = inputs(c, l, n, in);
    if (s == NB_OK) *out = nb_concat(c->g, n, in, axis);
    return s;
}

/* embedding D: a table of the model's vocabulary (input T tokens=V) */
static nb_status layer_embedding(spec_ctx *c, spec_line *l, nb_node *out) {
    const char *pos[1] = {NULL};
    int dim;
    if (positionals(l, pos, 1) != 1 || !parse_int(pos[0], &dim) || dim <= 0)
        return fail(c, l, "embedding: give the embedding dimension, e.g. 'embedding 32'");
    if (!c->m->vocab)
        return fail(c, l, "embedding: the model input must be tokens, e.g. 'input 16 "
                    "tokens=27'");
    nb_node x;
    nb_status s = inputs(c, l, 1, &x);
    if (s != NB_OK) return s;
    char prefix[48];
    param_prefix(c, l, prefix, sizeof prefix);
    *out = nb_embedding(c->g, x, c->m->vocab, dim, prefix);
    return NB_OK;
}

static nb_status layer_pos_embedding(spec_ctx *c, spec_line *l, nb_node *out) {
    nb_node x;
    nb_status s = inputs(c, l, 1, &x);
    if (s != NB_OK) return s;
    char prefix[48];
    param_prefix(c, l, prefix, sizeof prefix);
    *out = nb_pos_embedding(c->g, x, prefix);
    return NB_OK;
}

/* rnn H, lstm H, gru H: last= (only the last state) */
static nb_status layer_recurrent(spec_ctx *c, spec_line *l, nb_node *out) {
    const char *pos[1] = {NULL};
    int hidden, last;
    if (positionals(l, pos, 1) != 1 || !parse_int(pos[0], &hidden) || hidden <= 0)
        return fail(c, l, "%s: give the hidden size, e.g. '%s 64'", l->op, l->op);
    nb_node x;
    nb_status s;
    if ((s = bool_option(c, l, "last", 0, &last)) != NB_OK || (s = inputs(c, l, 1, &x)) != NB_OK)
        return s;
    nb_rnn_kind kind = strcmp(l->op, "lstm") == 0 ? NB_LSTM
                       : strcmp(l->op, "gru") == 0 ? NB_GRU : NB_RNN_TANH;
    char prefix[48];
    param_prefix(c, l, prefix, sizeof prefix);
    *out = nb_recurrent(c->g, x, kind, hidden, last, prefix);
    return NB_OK;
}

/* ------------------------------------------------------------ losses */

/* loss cross_entropy: label_smoothing=, ignore_index=; the target holds
 * class indices, one per sample ([batch, classes] scores) or one per
 * position ([batch, positions, classes]) */
static nb_status loss_cross_entropy(spec_ctx *c, spec_line *l, nb_node x, nb_node *out) {
    double eps;
    int ignore;
    nb_status s = double_option(c, l, "label_smoothing", 0, &eps);
    if (s == NB_OK) s = int_option(c, l, "ignore_index", -100, -(1 << 30), 1 << 30, &ignore);
    if (s != NB_OK) return s;
    const nb_node_t *X = nb__node(c->g, x);
    if (X->ndim != 2 && X->ndim != 3)
        return fail(c, l, "loss cross_entropy: expects [batch, classes] or [batch, positions, "
                    "classes] scores, the previous layer gives %d dimensions", X->ndim);
    int classes = X->dims[X->ndim - 1], positions = X->ndim == 3 ? X->dims[1] : 0;
    /* nb_input moves the node table */
    c->m->target = nb_input(c->g, "target", positions ? 1 : 0, &positions);
    *out = nb_cross_entropy_ignore(c->g, x, c->m->target, (nb_real)eps, ignore);
    c->m->classes = classes;
    return NB_OK;
}

/* loss mse and loss bce: the target is shaped like the output */
static void target_like(spec_ctx *c, nb_node x) {
    const nb_node_t X = *nb__node(c->g, x); /* a copy: nb_input moves the table */
    c->m->target = nb_input(c->g, "target", X.ndim - 1, X.dims + 1);
}

static nb_status loss_mse(spec_ctx *c, spec_line *l, nb_node x, nb_node *out) {
    (void)l;
    target_like(c, x);
    *out = nb_mse_loss(c->g, x, c->m->target);
    return NB_OK;
}

static nb_status loss_bce(spec_ctx *c, spec_line *l, nb_node x, nb_node *out) {
    (void)l;
    target_like(c, x);
    *out = nb_bce_with_logits(c->g, x, c->m->target);
    return NB_OK;
}

/* Every loss keyword, once: dispatch and the lists in messages read it. */
static const struct {
    const char *keyword;
    nb_status (*build)(spec_ctx *c, spec_line *l, nb_node x, nb_node *out);
} losses[] = {
    {"cross_entropy", loss_cross_entropy},
    {"mse", loss_mse},
    {"bce", loss_bce},
};

/* "cross_entropy, mse, bce" */
static const char *loss_names(char *buf, size_t size) {
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof losses / sizeof losses[0]; i++) {
        strncat(buf, i ? ", " : "", size - strlen(buf) - 1);
        strncat(buf, losses[i].keyword, size - strlen(buf) - 1);
    }
    return buf;
}

static nb_status layer_loss(spec_ctx *c, spec_line *l, nb_node *out) {
    const char *pos[1] = {NULL};
    char names[64];
    if (positionals(l, pos, 1) != 1)
        return fail(c, l, "loss: give one of %s", loss_names(names, sizeof names));
    if (c->m->loss != NB_NONE) return fail(c, l, "loss: a model has one loss");
    nb_node x;
    nb_status s = inputs(c, l, 1, &x);
    if (s != NB_OK) return s;
    size_t which = 0, n = sizeof losses / sizeof losses[0];
    while (which < n && strcmp(losses[which].keyword, pos[0]) != 0) which++;
    if (which == n)
        return fail(c, l, "loss: unknown loss '%s' (known: %s)", pos[0],
                    loss_names(names, sizeof names));
    if ((s = losses[which].build(c, l, x, out)) != NB_OK) return s;
    c->m->output = x;
    c->m->loss = *out;
    return NB_OK;
}

/* ------------------------------------------------------------ the layer table */

/* Every layer keyword, once, in the order the unknown-layer message lists them. */
static const layer_kind layers[] = {
    {"input", layer_input, 0, NULL, NULL},
    {"dense", layer_dense, 1, NULL, NULL},
    {"relu", layer_unary, 1, nb_relu, NULL},
    {"leaky_relu", layer_leaky_relu, 1, NULL, NULL},
    {"abs", layer_unary, 1, nb_abs, NULL},
    {"sigmoid", layer_unary, 1, nb_sigmoid, NULL},
    {"tanh", layer_unary, 1, nb_tanh, NULL},
    {"softmax", layer_unary, 1, nb_softmax, NULL},
    {"log_softmax", layer_unary, 1, nb_log_softmax, NULL},
    {"gelu", layer_gelu, 1, NULL, NULL},
    {"silu", layer_unary, 1, nb_silu, NULL},
    {"hardswish", layer_unary, 1, nb_hardswish, NULL},
    {"elu", layer_elu, 1, NULL, NULL},
    {"softplus", layer_softplus, 1, NULL, NULL},
    {"flatten", layer_unary, 1, nb_flatten, NULL},
    {"scale", layer_scale, 1, NULL, NULL},
    {"reshape", layer_reshape, 1, NULL, NULL},
    {"add", layer_binary, 1, NULL, nb_add},
    {"sub", layer_binary, 1, NULL, nb_sub},
    {"mul", layer_binary, 1, NULL, nb_mul},
    {"concat", layer_concat, 1, NULL, NULL},
    {"conv", layer_conv, 1, NULL, NULL},
    {"maxpool", layer_maxpool, 1, NULL, NULL},
    {"avgpool", layer_avgpool, 1, NULL, NULL},
    {"global_avgpool", layer_unary, 1, nb_global_avg_pool2d, NULL},
    {"batchnorm", layer_batchnorm, 1, NULL, NULL},
    {"layernorm", layer_layernorm, 1, NULL, NULL},
    {"dropout", layer_dropout, 1, NULL, NULL},
    {"attention", layer_attention, 1, NULL, NULL},
    {"residual", layer_residual, 1, NULL, NULL},
    {"embedding", layer_embedding, 1, NULL, NULL},
    {"pos_embedding", layer_pos_embedding, 1, NULL, NULL},
    {"rnn", layer_recurrent, 1, NULL, NULL},
    {"lstm", layer_recurrent, 1, NULL, NULL},
    {"gru", layer_recurrent, 1, NULL, NULL},
    {"loss", layer_loss, 0, NULL, NULL},
};

/* ------------------------------------------------------------ parsing */

static int valid_name(const char *s) {
    if (!isalpha((unsigned char)s[0]) && s[0] != '_') return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_') return 0;
    return strlen(s) < 40;
}

static nb_status parse_line(spec_ctx *c, spec_line *l) {
    int k = 0;
    if (l->ntok >= 2 && strcmp(l->tok[1], "=") == 0) {
        if (!valid_name(l->tok[0]))
            return fail(c, l, "'%s' is not a valid node name (letters, digits, _; at most 39)",
                        l->tok[0]);
        if (lookup(c, l->tok[0]) != NB_NONE)
            return fail(c, l, "node name '%s' is already used", l->tok[0]);
        l->label = l->tok[0];
        k = 2;
    }
    if (k >= l->ntok) return fail(c, l, "'%s =' needs a layer after it", l->tok[0]);
    l->op = l->tok[k];
    l->first_arg = k + 1;
    const layer_kind *kind = NULL;
    for (size_t i = 0; i < sizeof layers / sizeof layers[0] && !kind; i++)
        if (strcmp(layers[i].keyword, l->op) == 0) kind = &layers[i];
    if (!kind) {
        char known[512] = "";
        for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
            strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
            strncat(known, layers[i].keyword, sizeof known - strlen(known) - 1);
        }
        return fail(c, l, "unknown layer '%s' (known: %s)", l->op, known);
    }
    l->kind = kind;
    if (c->m->input == NB_NONE && kind->build != layer_input)
        return fail(c, l, "%s: the first layer must be 'input'", l->op);
    if (c->m->loss != NB_NONE) return fail(c, l, "%s: nothing may follow the loss", l->op);
    nb_node out = NB_NONE;
    nb_status s = kind->build(c, l, &out);
    if (s != NB_OK) return s;
    for (int t = l->first_arg; t < l->ntok; t++)
        if (!l->used[t])
            return fail(c, l, "%s: unexpected %s '%s'", l->op,
                        is_option(l->tok[t]) ? "option" : "argument", l->tok[t]);
    if (out == NB_NONE) /* the graph rejected it: shapes, values */
        return nb_err_prefix(NB_ERR_FORMAT, "%s:%d", c->source, l->lineno);
    /* the node takes the layer's name: its label, or its Sequential index */
    char index[16];
    snprintf(index, sizeof index, "%d", c->layer_index);
    if (l->label) nb__set_name(c->g, out, l->label);
    else if (kind->sequential) nb__set_name(c->g, out, index);
    else if (out == c->m->loss) nb__set_name(c->g, out, "loss");
    if (l->label) {
        if (c->n_names == MAX_NAMES) return fail(c, l, "too many named nodes");
        snprintf(c->names[c->n_names].name, sizeof c->names[0].name, "%s", l->label);
        c->names[c->n_names++].node = out;
    }
    if (kind->sequential) c->layer_index++;
    c->prev = out;
    return NB_OK;
}

static void tokenize(char *text, spec_line *l) {
    char *hash = strchr(text, '#');
    if (hash) *hash = '\0';
    l->ntok = 0;
    for (char *p = text; *p;) {
        while (*p && isspace((unsigned char)*p)) p++;
        if (!*p) break;
        if (l->ntok == MAX_TOKENS) { /* flagged by the caller */
            l->ntok++;
            break;
        }
        l->tok[l->ntok++] = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        if (*p) *p++ = '\0';
    }
}

/* The text without variables (spec_vars.c). */
static nb_status parse_text(const char *text, const char *source, nb_model *m) {
    memset(m, 0, sizeof *m);
    m->input = m->output = m->target = m->loss = NB_NONE;
    if (!source) source = "<model>";
    size_t len = strlen(text);
    if (len > MAX_TEXT) return nb_err(NB_ERR_FORMAT, "%s: model text larger than %d bytes", source, MAX_TEXT);
    spec_ctx *c = calloc(1, sizeof *c);
    m->text = malloc(len + 1);
    m->graph = nb_graph_new();
    if (!c || !m->text || !m->graph) {
        free(c);
        nb_model_free(m);
        return nb_err(NB_ERR_NOMEM, "%s: out of memory", source);
    }
    memcpy(m->text, text, len + 1);
    c->source = source;
    c->m = m;
    c->g = m->graph;
    c->prev = NB_NONE;
    nb_status s = NB_OK;
    const char *p = text;
    char line[MAX_LINE];
    for (int lineno = 1; *p && s == NB_OK; lineno++) {
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        spec_line l;
        memset(&l, 0, sizeof l);
        l.lineno = lineno;
        if (n >= sizeof line) {
            s = fail(c, &l, "line longer than %d characters", MAX_LINE - 1);
            break;
        }
        memcpy(line, p, n);
        line[n] = '\0';
        for (size_t i = 0; i < n; i++)
            if (line[i] == '\0' || ((unsigned char)line[i] < 32 && !isspace((unsigned char)line[i]))) {
                s = fail(c, &l, "control character 0x%02x in column %zu", (unsigned char)line[i], i + 1);
                break;
            }
        if (s != NB_OK) break;
        tokenize(line, &l);
        if (l.ntok > MAX_TOKENS) s = fail(c, &l, "more than %d tokens", MAX_TOKENS);
        else if (l.ntok > 0) s = parse_line(c, &l);
        p = end ? end + 1 : p + n;
    }
    if (s == NB_OK && m->input == NB_NONE)
        s = nb_err(NB_ERR_FORMAT, "%s: the model has no 'input' line", source);
    if (s == NB_OK && m->loss == NB_NONE) m->output = c->prev; /* inference-only model */
    free(c);
    if (s != NB_OK) nb_model_free(m);
    return s;
}

nb_status nb_model_parse_vars(const char *text, const char *source, const nb_kv *vars,
                             int n_vars, nb_model *m) {
    if (!text || !m) return nb_err(NB_ERR_ARG, "nb_model_parse: %s is NULL", text ? "model" : "text");
    if (!source) source = "<model>";
    char *expanded;
    nb_status s = nb__model_expand(text, source, vars, n_vars, MAX_TEXT, &expanded);
    if (s != NB_OK) {
        memset(m, 0, sizeof *m);
        return s;
    }
    s = parse_text(expanded, source, m);
    free(expanded);
    return s;
}

nb_status nb_model_parse(const char *text, const char *source, nb_model *m) {
    return nb_model_parse_vars(text, source, NULL, 0, m);
}

nb_status nb_model_load(const char *path, nb_model *m) {
    return nb_model_load_vars(path, NULL, 0, m);
}

nb_status nb_model_load_vars(const char *path, const nb_kv *vars, int n_vars, nb_model *m) {
    if (!path || !m) return nb_err(NB_ERR_ARG, "nb_model_load: %s is NULL", path ? "model" : "path");
    FILE *f = fopen(path, "rb");
    if (!f) return nb_err(NB_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    char *buf = malloc(MAX_TEXT + 1);
    if (!buf) {
        fclose(f);
        return nb_err(NB_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, MAX_TEXT + 1, f);
    int err = ferror(f);
    fclose(f);
    nb_status s;
    if (err) s = nb_err(NB_ERR_IO, "%s: read error", path);
    else if (n > MAX_TEXT) s = nb_err(NB_ERR_FORMAT, "%s: larger than %d bytes", path, MAX_TEXT);
    else if (memchr(buf, '\0', n)) s = nb_err(NB_ERR_FORMAT, "%s: contains a NUL byte (not a text file)", path);
    else {
        buf[n] = '\0';
        s = nb_model_parse_vars(buf, path, vars, n_vars, m);
    }
    free(buf);
    return s;
}

void nb_model_free(nb_model *m) {
    if (!m) return;
    nb_graph_free(m->graph);
    free(m->text);
    m->graph = NULL;
    m->text = NULL;
}
