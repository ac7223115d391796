/* Batch norm and layer norm of the float library against PyTorch
 * (tests/reference/norm.ref, written by tests/reference/norm.py): training
 * forward and input/weight/bias gradients, running statistics after 1 and 3
 * training forwards, eval-mode outputs and gradients.  Then weights with
 * buffers: PyTorch's BatchNorm state_dict loads into nabla and nabla writes
 * the same tensors back (names, I64 num_batches_tracked); checkpoints keep
 * the statistics and the dropout generator, so a resumed run continues
 * bit-exactly. */
#define _POSIX_C_SOURCE 200809L
#include "nabla.h"
#include "refdata.h"
#include "test.h"
#include "core/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RTOL 1e-5
#define REF "tests/reference/norm.ref"
#define TORCH_STATE "tests/reference/norm_bn.safetensors"

static ref_file *ref;
static char tmpdir[64];

static const ref_tensor *need(const ref_case *c, const char *name) {
    const ref_tensor *t = ref_get(c, name);
    CHECKF(t != NULL, "case %s: tensor '%s' missing", c->name, name);
    return t;
}

static void copy_in(nb_real *dst, const ref_tensor *t) {
    for (size_t k = 0; k < t->n; k++) dst[k] = (nb_real)t->v[k];
}

/* Set a batched input from a reference tensor (its dim 0 is the batch). */
static void feed(nb_graph *g, nb_node in, const ref_tensor *t) {
    if (!t) return;
    nb_real *data = malloc(t->n * sizeof *data);
    if (!data) return;
    copy_in(data, t);
    CHECK_OK(nb_set_input(g, in, data, t->dims[0]));
    free(data);
}

static void compare(const ref_case *c, const char *what, const nb_real *got, size_t n,
                    const char *ref_name) {
    char label[160];
    snprintf(label, sizeof label, "%s: %s", c->name, what);
    CHECK(got && ref_check(label, got, n, need(c, ref_name), RTOL) == 0);
}

/* A graph y = norm(x), loss = sum(y * wy), x requiring a gradient. */
typedef struct net {
    nb_graph *g;
    nb_node x, wy, y, loss, w, b;
    const ref_case *c;
} net;

static int build_tail(net *m) {
    m->loss = nb_sum(m->g, nb_mul(m->g, m->y, m->wy));
    CHECK_OK(nb_requires_grad(m->g, m->x, 1));
    nb_status s = nb_graph_status(m->g);
    CHECKF(s == NB_OK, "case %s: build failed: %s", m->c->name, nb_last_error());
    if (s != NB_OK) return 0;
    m->w = nb_find(m->g, "norm.weight");
    m->b = nb_find(m->g, "norm.bias");
    if (m->w != NB_NONE) copy_in(nb_value(m->g, m->w), need(m->c, "weight"));
    if (m->b != NB_NONE) copy_in(nb_value(m->g, m->b), need(m->c, "bias"));
    return 1;
}

static int begin(net *m, const char *name) {
    memset(m, 0, sizeof *m);
    m->c = ref_case_get(ref, name);
    CHECKF(m->c != NULL, "reference case %s missing", name);
    if (!m->c || !need(m->c, "x")) return 0;
    m->g = nb_graph_new();
    const ref_tensor *x = ref_get(m->c, "x");
    m->x = nb_input(m->g, "x", x->ndim - 1, x->dims + 1);
    m->wy = nb_input(m->g, "wy", x->ndim - 1, x->dims + 1);
    return 1;
}

/* Forward on x and backward; compare y and the gradients with suffix sfx. */
static void forward_backward(net *m, const char *sfx) {
    char name[64];
    feed(m->g, m->x, need(m->c, "x"));
    feed(m->g, m->wy, need(m->c, "wy"));
    CHECK_OK(nb_forward(m->g, m->loss));
    nb_zero_grad(m->g);
    CHECK_OK(nb_backward(m->g, m->loss));
    size_t n = nb_node_numel(m->g, m->y);
    snprintf(name, sizeof name, "y%s", sfx);
    compare(m->c, name, nb_value(m->g, m->y), n, name);
    snprintf(name, sizeof name, "dx%s", sfx);
    compare(m->c, name, nb_grad(m->g, m->x), n, name);
    if (m->w == NB_NONE) return;
    snprintf(name, sizeof name, "dweight%s", sfx);
    compare(m->c, name, nb_grad(m->g, m->w), nb_node_numel(m->g, m->w), name);
    snprintf(name, sizeof name, "dbias%s", sfx);
    compare(m->c, name, nb_grad(m->g, m->b), nb_node_numel(m->g, m->b), name);
}

static void test_batch_norm(const char *name) {
    net m;
    if (!begin(&m, name)) return;
    nb_norm_opts o = {.eps = ref_scalar(m.c, "eps", 0), .momentum = ref_scalar(m.c, "momentum", 0),
                      .no_affine = !(int)ref_scalar(m.c, "affine", 1)};
    m.y = nb_batch_norm(m.g, m.x, "norm", &o);
    if (build_tail(&m)) {
        nb_node rm = nb_find(m.g, "norm.running_mean"), rv = nb_find(m.g, "norm.running_var");
        nb_node nbt = nb_find(m.g, "norm.num_batches_tracked");
        size_t C = nb_node_numel(m.g, rm);
        forward_backward(&m, "");
        compare(m.c, "running_mean after 1", nb_value(m.g, rm), C, "running_mean1");
        compare(m.c, "running_var after 1", nb_value(m.g, rv), C, "running_var1");
        /* backward must not have touched the statistics: one update per forward */
        feed(m.g, m.x, need(m.c, "x2"));
        CHECK_OK(nb_forward(m.g, m.y));
        feed(m.g, m.x, need(m.c, "x3"));
        CHECK_OK(nb_forward(m.g, m.y));
        compare(m.c, "running_mean after 3", nb_value(m.g, rm), C, "running_mean3");
        compare(m.c, "running_var after 3", nb_value(m.g, rv), C, "running_var3");
        CHECK(nb_value(m.g, nbt)[0] == (nb_real)ref_scalar(m.c, "num_batches_tracked", -1));
        nb_graph_set_training(m.g, 0);
        forward_backward(&m, "_eval");
        /* eval forwards leave the statistics alone */
        compare(m.c, "running_mean after eval", nb_value(m.g, rm), C, "running_mean3");
        CHECK(nb_value(m.g, nbt)[0] == 3);
    }
    nb_graph_free(m.g);
}

/* Batch norm large enough for its channels to be split between threads:
 * training and eval, values, gradients and running statistics have the same
 * bits on 1 and 2 threads, and training's are finite and normalised. */
typedef struct bn_run {
    nb_real *y, *dx, *dw, *db, *rm, *rv;
} bn_run;

enum { BN_B = 16, BN_C = 8, BN_HW = 16 * 16 }; /* 32768 values: two parts */

static void run_bn_threads(int threads, int training, const nb_real *xs, bn_run *out) {
    CHECK_OK(nb_set_threads(threads));
    nb_graph *g = nb_graph_new();
    const int dims[3] = {BN_C, 16, 16};
    nb_node x = nb_input(g, "x", 3, dims), wy = nb_input(g, "wy", 3, dims);
    nb_node y = nb_batch_norm(g, x, "bn", NULL);
    nb_node loss = nb_sum(g, nb_mul(g, y, wy));
    nb_node w = nb_find(g, "bn.weight"), b = nb_find(g, "bn.bias");
    nb_node rm = nb_find(g, "bn.running_mean"), rv = nb_find(g, "bn.running_var");
    CHECK_OK(nb_graph_status(g));
    CHECK_OK(nb_set_input(g, x, xs, BN_B));
    CHECK_OK(nb_set_input(g, wy, xs + (size_t)BN_B * BN_C * BN_HW, BN_B));
    CHECK_OK(nb_requires_grad(g, x, 1));
    for (int c = 0; c < BN_C; c++) { /* affine parameters other than 1 and 0 */
        nb_value(g, w)[c] = (nb_real)(0.5 + 0.25 * c);
        nb_value(g, b)[c] = (nb_real)(0.1 * c - 0.3);
    }
    nb_graph_set_training(g, training);
    CHECK_OK(nb_forward(g, loss));
    nb_zero_grad(g);
    CHECK_OK(nb_backward(g, loss));
    size_t n = (size_t)BN_B * BN_C * BN_HW;
    out->y = malloc(n * sizeof *out->y), out->dx = malloc(n * sizeof *out->dx);
    out->dw = malloc(4 * BN_C * sizeof *out->dw);
    if (out->y && out->dx && out->dw) {
        memcpy(out->y, nb_value(g, y), n * sizeof *out->y);
        memcpy(out->dx, nb_grad(g, x), n * sizeof *out->dx);
        out->db = out->dw + BN_C, out->rm = out->db + BN_C, out->rv = out->rm + BN_C;
        memcpy(out->dw, nb_grad(g, w), BN_C * sizeof *out->dw);
        memcpy(out->db, nb_grad(g, b), BN_C * sizeof *out->db);
        memcpy(out->rm, nb_value(g, rm), BN_C * sizeof *out->rm);
        memcpy(out->rv, nb_value(g, rv), BN_C * sizeof *out->rv);
    }
    nb_graph_free(g);
}

static void test_bn_threads(void) {
    const int threads_before = nb_threads();
    size_t n = (size_t)BN_B * BN_C * BN_HW;
    nb_real *xs = malloc(2 * n * sizeof *xs);
    if (!xs) return;
    nb_rng r;
    nb_rng_seed(&r, 77);
    for (size_t k = 0; k < 2 * n; k++) /* channel c: mean 2 (c + 1), spread c + 1 */
        xs[k] = (nb_real)(k < n ? (double)(k / BN_HW % BN_C + 1) * (2 + nb_rng_normal(&r))
                                : nb_rng_normal(&r));
    for (int training = 1; training >= 0; training--) {
        bn_run one = {0}, two = {0};
        run_bn_threads(1, training, xs, &one);
        run_bn_threads(2, training, xs, &two);
        if (one.y && two.y && one.dw && two.dw) {
            CHECKF(memcmp(one.y, two.y, n * sizeof *one.y) == 0, "training %d: y", training);
            CHECKF(memcmp(one.dx, two.dx, n * sizeof *one.dx) == 0, "training %d: dx", training);
            CHECKF(memcmp(one.dw, two.dw, 4 * BN_C * sizeof *one.dw) == 0,
                   "training %d: weight and bias gradients, running statistics", training);
        }
        for (int c = 0; training && one.y && c < BN_C; c++) { /* y = x-hat w + b */
            double sum = 0, sq = 0, w = 0.5 + 0.25 * c, b = 0.1 * c - 0.3;
            for (int s = 0; s < BN_B; s++)
                for (int k = 0; k < BN_HW; k++) {
                    double v = ((double)one.y[((size_t)s * BN_C + c) * BN_HW + k] - b) / w;
                    sum += v, sq += v * v;
                }
            double count = (double)BN_B * BN_HW, mean = sum / count;
            CHECKF(fabs(mean) < 1e-5 && fabs(sq / count - mean * mean - 1) < 1e-3,
                   "channel %d: x-hat mean %g, variance %g", c, mean, sq / count - mean * mean);
        }
        free(one.y), free(one.dx), free(one.dw), free(two.y), free(two.dx), free(two.dw);
    }
    free(xs);
    CHECK_OK(nb_set_threads(threads_before));
}

/* A batch norm whose only consumer is a relu writes the relu's value
 * itself, and backward reads the relu's gradient and output in place of its
 * own gradient (fusion.c); built again with a second, unused consumer it is
 * not fused.  The two agree bit for bit in training and eval mode: the loss,
 * the relu's value, the gradients, the running statistics; batch norm's own
 * value and gradient (not written by the fused passes) read the same
 * through nb_value and nb_grad, and filling them in updates no statistics.
 * The loss weighs the relu's (or the pool's) outputs by c, so that its
 * gradient is not 0 where the relu's slope is. */
typedef struct bn_relu {
    nb_graph *g;
    nb_node x, c, bn, relu, pool, loss, w, rm, nbt;
} bn_relu;

/* pool: a 2 x 2 max pool after the relu (batch norm computes it too when
 * fused, and the pool's backward runs). */
static bn_relu bn_relu_net(int fused, int pool) {
    bn_relu m = {.g = nb_graph_new(), .pool = NB_NONE};
    const int dims[3] = {BN_C, 16, 16}, pooled[3] = {BN_C, 8, 8};
    m.x = nb_input(m.g, "x", 3, dims);
    m.bn = nb_batch_norm(m.g, m.x, "bn", NULL);
    m.relu = nb_relu(m.g, m.bn);
    if (!fused) nb_scale(m.g, m.bn, 2); /* a second consumer, off the loss's path */
    if (pool) m.pool = nb_max_pool2d(m.g, m.relu, 2, 2, 0, 0, 0, 0, 0);
    m.c = nb_input(m.g, "c", 3, pool ? pooled : dims);
    m.loss = nb_sum(m.g, nb_mul(m.g, pool ? m.pool : m.relu, m.c));
    m.w = nb_find(m.g, "bn.weight");
    m.rm = nb_find(m.g, "bn.running_mean");
    m.nbt = nb_find(m.g, "bn.num_batches_tracked");
    CHECK_OK(nb_graph_status(m.g));
    CHECK_OK(nb_requires_grad(m.g, m.x, 1));
    return m;
}

static void test_bn_relu_fusion(int pool) {
    size_t n = (size_t)BN_B * BN_C * BN_HW;
    nb_real *xs = malloc(n * sizeof *xs), *bn_fused = malloc(n * sizeof *xs);
    if (!xs || !bn_fused) return;
    nb_rng r;
    nb_rng_seed(&r, 5);
    for (size_t k = 0; k < n; k++) xs[k] = (nb_real)(nb_rng_normal(&r) + (double)(k % 3));
    bn_relu a = bn_relu_net(1, pool), b = bn_relu_net(0, pool);
    for (int training = 1; training >= 0; training--) {
        bn_relu *m[2] = {&a, &b};
        for (int i = 0; i < 2; i++) {
            nb_graph_set_training(m[i]->g, training);
            CHECK_OK(nb_set_input(m[i]->g, m[i]->x, xs, BN_B));
            nb_real *c = nb_value(m[i]->g, m[i]->c);
            for (size_t k = 0; k < nb_node_numel(m[i]->g, m[i]->c); k++)
                c[k] = (nb_real)(0.5 + 0.25 * (double)(k % 7));
            CHECK_OK(nb_forward(m[i]->g, m[i]->loss));
            nb_zero_grad(m[i]->g);
            nb_node_t *bn = &m[i]->g->nodes[m[i]->bn];
            for (size_t k = 0; k < n; k++) bn->grad[k] = (nb_real)NAN;
            CHECK_OK(nb_backward(m[i]->g, m[i]->loss));
        }
        CHECKF(nb_test_all_nan(a.g->nodes[a.bn].grad, n),
               "training %d: the fused backward wrote batch norm's own gradient", training);
        CHECKF(nb_value(a.g, a.loss)[0] == nb_value(b.g, b.loss)[0], "training %d: loss",
               training);
        CHECKF(memcmp(nb_value(a.g, a.relu), nb_value(b.g, b.relu), n * sizeof *xs) == 0,
               "training %d: the relu's value", training);
        CHECKF(!pool || memcmp(nb_value(a.g, a.pool), nb_value(b.g, b.pool),
                               nb_node_numel(a.g, a.pool) * sizeof *xs) == 0,
               "training %d: the pool's value", training);
        CHECKF(memcmp(nb_grad(a.g, a.x), nb_grad(b.g, b.x), n * sizeof *xs) == 0,
               "training %d: the input's gradient", training);
        CHECKF(memcmp(nb_grads(a.g), nb_grads(b.g), nb_param_count(a.g) * sizeof *xs) == 0,
               "training %d: the parameters' gradients", training);
        CHECKF(memcmp(nb_grad(a.g, a.bn), nb_grad(b.g, b.bn), n * sizeof *xs) == 0,
               "training %d: batch norm's own gradient, filled in", training);
        nb_real rm = nb_value(a.g, a.rm)[1], nbt = nb_value(a.g, a.nbt)[0];
        memcpy(bn_fused, nb_value(a.g, a.bn), n * sizeof *xs); /* filled in */
        CHECKF(memcmp(bn_fused, nb_value(b.g, b.bn), n * sizeof *xs) == 0,
               "training %d: batch norm's own value, filled in", training);
        CHECKF(nb_value(a.g, a.rm)[1] == rm && nb_value(a.g, a.nbt)[0] == nbt &&
                   rm == nb_value(b.g, b.rm)[1] && nbt == nb_value(b.g, b.nbt)[0],
               "training %d: running statistics untouched by the fill", training);
    }
    nb_graph_free(a.g);
    nb_graph_free(b.g);
    free(xs);
    free(bn_fused);
}

static void test_layer_norm(const char *name) {
    net m;
    if (!begin(&m, name)) return;
    nb_norm_opts o = {.eps = ref_scalar(m.c, "eps", 0),
                      .no_affine = !(int)ref_scalar(m.c, "affine", 1)};
    m.y = nb_layer_norm(m.g, m.x, (int)ref_scalar(m.c, "ndim", 0), "norm", &o);
    if (build_tail(&m)) {
        forward_backward(&m, "");
        /* the same in eval mode */
        nb_graph_set_training(m.g, 0);
        forward_backward(&m, "");
    }
    nb_graph_free(m.g);
}

/* ------------------------------------------------------------ state_dict */

/* Layer "0" = BatchNorm2d(3) on [B, 3, 3, 2], as PyTorch's Sequential names it. */
static nb_graph *bn_graph(nb_node *x, nb_node *y) {
    nb_graph *g = nb_graph_new();
    int dims[3] = {3, 3, 2};
    *x = nb_input(g, "x", 3, dims);
    *y = nb_batch_norm(g, *x, "0", NULL);
    CHECK_OK(nb_graph_status(g));
    return g;
}

/* Same names, dtypes, shapes and bytes in both files. */
static void same_tensors(const char *path_a, const char *path_b) {
    nb_safetensors *a = NULL, *b = NULL;
    CHECK_OK(nb_st_open(path_a, &a));
    CHECK_OK(nb_st_open(path_b, &b));
    if (a && b) {
        CHECK(nb_st_count(a) == nb_st_count(b));
        for (int i = 0; i < nb_st_count(a); i++) {
            nb_st_tensor ta, tb;
            CHECK_OK(nb_st_tensor_at(a, i, &ta));
            int j = nb_st_find(b, ta.name);
            CHECKF(j >= 0, "'%s' missing from %s", ta.name, path_b);
            if (j < 0) continue;
            CHECK_OK(nb_st_tensor_at(b, j, &tb));
            CHECKF(ta.dtype == tb.dtype && ta.ndim == tb.ndim && ta.nbytes == tb.nbytes &&
                   memcmp(ta.dims, tb.dims, sizeof(int) * (size_t)ta.ndim) == 0 &&
                   memcmp(ta.data, tb.data, ta.nbytes) == 0,
                   "'%s': %s %dd vs %s %dd or different bytes", ta.name,
                   nb_st_dtype_name(ta.dtype), ta.ndim, nb_st_dtype_name(tb.dtype), tb.ndim);
        }
    }
    nb_st_free(a);
    nb_st_free(b);
}

static void test_state_dict(void) {
    const ref_case *c = ref_case_get(ref, "bn2d");
    CHECK(c != NULL);
    if (!c) return;
    nb_node x, y;
    nb_graph *g = bn_graph(&x, &y);
    /* PyTorch -> nabla: the statistics come with the weights */
    CHECK_OK(nb_load_weights(g, TORCH_STATE, 0));
    compare(c, "loaded running_mean", nb_value(g, nb_find(g, "0.running_mean")), 3,
            "running_mean3");
    compare(c, "loaded running_var", nb_value(g, nb_find(g, "0.running_var")), 3,
            "running_var3");
    CHECK(nb_value(g, nb_find(g, "0.num_batches_tracked"))[0] == 3);
    compare(c, "loaded weight", nb_value(g, nb_find(g, "0.weight")), 3, "weight");
    nb_graph_set_training(g, 0);
    feed(g, x, need(c, "x"));
    CHECK_OK(nb_forward(g, y));
    compare(c, "eval output of the loaded layer", nb_value(g, y), nb_node_numel(g, y),
            "y_eval");

    /* nabla -> PyTorch: the same tensors, I64 scalar count included */
    char path[128];
    snprintf(path, sizeof path, "%s/bn.safetensors", tmpdir);
    CHECK_OK(nb_save_weights(g, path, NULL, 0));
    same_tensors(TORCH_STATE, path);

    /* and back into a fresh graph */
    nb_node x2, y2;
    nb_graph *h = bn_graph(&x2, &y2);
    CHECK_OK(nb_load_weights(h, path, 0));
    for (int i = 0; i < nb_buffer_count(g); i++) {
        nb_node a = nb_buffer_tensor(g, i), b = nb_buffer_tensor(h, i);
        CHECK(strcmp(nb_node_name(g, a), nb_node_name(h, b)) == 0);
        CHECK(memcmp(nb_value(g, a), nb_value(h, b), nb_node_numel(g, a) * sizeof(nb_real)) == 0);
    }
    nb_graph_free(h);
    remove(path);

    /* a file without the statistics is refused, naming what is missing */
    int three = 3;
    nb_st_entry only_affine[2] = {
        {"0.weight", NB_ST_F32, 1, &three, nb_value(g, nb_find(g, "0.weight"))},
        {"0.bias", NB_ST_F32, 1, &three, nb_value(g, nb_find(g, "0.bias"))}};
    snprintf(path, sizeof path, "%s/affine.safetensors", tmpdir);
    CHECK_OK(nb_st_write(path, only_affine, 2, NULL, 0));
    CHECK(nb_load_weights(g, path, 0) == NB_ERR_FORMAT);
    CHECKF(strstr(nb_last_error(), "buffer '0.running_mean'") &&
           strstr(nb_last_error(), "missing"), "%s", nb_last_error());
    remove(path);

    /* a negative count or an integer running mean is refused; a float count is converted */
    float stats[3] = {0.5f, 1.5f, 2.5f};
    int64_t count = -1;
    float fcount = 7;
    int32_t istats[3] = {1, 2, 3};
    nb_st_entry e[5] = {only_affine[0], only_affine[1],
                        {"0.running_mean", NB_ST_F32, 1, &three, stats},
                        {"0.running_var", NB_ST_F32, 1, &three, stats},
                        {"0.num_batches_tracked", NB_ST_I64, 0, NULL, &count}};
    snprintf(path, sizeof path, "%s/bad.safetensors", tmpdir);
    CHECK_OK(nb_st_write(path, e, 5, NULL, 0));
    CHECK(nb_load_weights(g, path, 0) == NB_ERR_NUMERIC);
    CHECKF(strstr(nb_last_error(), "num_batches_tracked") &&
           strstr(nb_last_error(), "negative"), "%s", nb_last_error());
    e[4] = (nb_st_entry){"0.num_batches_tracked", NB_ST_F32, 0, NULL, &fcount};
    e[2] = (nb_st_entry){"0.running_mean", NB_ST_I32, 1, &three, istats};
    CHECK_OK(nb_st_write(path, e, 5, NULL, 0));
    CHECK(nb_load_weights(g, path, 0) == NB_ERR_FORMAT);
    CHECKF(strstr(nb_last_error(), "running_mean") && strstr(nb_last_error(), "I32"), "%s",
           nb_last_error());
    CHECK(nb_value(g, nb_find(g, "0.num_batches_tracked"))[0] == 3); /* unchanged */
    e[2] = (nb_st_entry){"0.running_mean", NB_ST_F32, 1, &three, stats};
    CHECK_OK(nb_st_write(path, e, 5, NULL, 0));
    CHECK_OK(nb_load_weights(g, path, 0));
    CHECK(nb_value(g, nb_find(g, "0.num_batches_tracked"))[0] == 7);
    CHECK(nb_value(g, nb_find(g, "0.running_mean"))[1] == 1.5f);
    remove(path);
    nb_graph_free(g);
}

/* ------------------------------------------------------------ checkpoints */

/* x [B, 4] -> dense -> batch norm -> dropout -> loss */
static nb_graph *ck_graph(nb_node *x, nb_node *y, uint64_t seed) {
    nb_graph *g = nb_graph_new();
    int in = 4;
    *x = nb_input(g, "x", 1, &in);
    nb_node h = nb_dense(g, *x, 5, "fc", NULL);
    h = nb_batch_norm(g, h, "bn", NULL);
    *y = nb_dropout(g, h, 0.5f);
    CHECK_OK(nb_graph_status(g));
    nb_rng r;
    nb_rng_seed(&r, seed);
    CHECK_OK(nb_graph_init(g, &r));
    return g;
}

static void test_checkpoint(void) {
    nb_node x, y;
    nb_graph *g = ck_graph(&x, &y, 1);
    nb_real xs[24];
    for (int k = 0; k < 24; k++) xs[k] = (nb_real)((k * 7 % 11) - 5) / 4;
    CHECK_OK(nb_set_input(g, x, xs, 6));
    CHECK_OK(nb_forward(g, y));
    CHECK_OK(nb_forward(g, y));
    char path[128];
    snprintf(path, sizeof path, "%s/ck.safetensors", tmpdir);
    nb_checkpoint ck = {.epoch = 1, .step = 2, .seed = 1};
    CHECK_OK(nb_checkpoint_save(path, g, NULL, &ck));
    nb_safetensors *st = NULL;
    CHECK_OK(nb_st_open(path, &st));
    if (st) {
        int i = nb_st_find(st, "bn.num_batches_tracked");
        nb_st_tensor t;
        CHECK(i >= 0 && nb_st_tensor_at(st, i, &t) == NB_OK && t.dtype == NB_ST_I64 &&
              t.ndim == 0);
        CHECK(nb_st_find(st, "bn.running_var") >= 0);
        CHECK(nb_st_meta(st, "nabla.graph_rng") != NULL);
        nb_st_free(st);
    }
    /* the uninterrupted run goes on */
    CHECK_OK(nb_forward(g, y));
    size_t n = nb_node_numel(g, y);

    /* a different graph (other init, other generator) resumes from the file */
    nb_node x2, y2;
    nb_graph *h = ck_graph(&x2, &y2, 99);
    nb_checkpoint got = {0};
    CHECK_OK(nb_checkpoint_load(path, h, NULL, &got));
    CHECK(memcmp(nb_graph_rng(h), nb_graph_rng(g), sizeof(nb_rng)) != 0); /* g moved on */
    CHECK(nb_value(h, nb_find(h, "bn.num_batches_tracked"))[0] == 2);
    CHECK_OK(nb_set_input(h, x2, xs, 6));
    CHECK_OK(nb_forward(h, y2));
    CHECK(memcmp(nb_graph_rng(h), nb_graph_rng(g), sizeof(nb_rng)) == 0);
    CHECK(memcmp(nb_value(h, y2), nb_value(g, y), n * sizeof(nb_real)) == 0);
    for (int i = 0; i < nb_buffer_count(g); i++) {
        nb_node a = nb_buffer_tensor(g, i), b = nb_buffer_tensor(h, i);
        CHECK(memcmp(nb_value(g, a), nb_value(h, b), nb_node_numel(g, a) * sizeof(nb_real)) == 0);
    }
    nb_graph_free(h);
    nb_graph_free(g);
    remove(path);
}

int main(void) {
    ref = ref_load(REF);
    CHECK(ref != NULL);
    if (!ref) TEST_END();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/nb-norm-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        CHECK(0);
        TEST_END();
    }
    static const char *bn[] = {"bn1d", "bn1d_noaffine", "bn1d_seq", "bn2d", "bn2d_opts",
                               "bn2d_noaffine"};
    static const char *ln[] = {"ln1", "ln2", "ln1_3d", "ln2_noaffine"};
    for (size_t k = 0; k < sizeof bn / sizeof *bn; k++) test_batch_norm(bn[k]);
    for (size_t k = 0; k < sizeof ln / sizeof *ln; k++) test_layer_norm(ln[k]);
    test_bn_threads();
    test_bn_relu_fusion(0);
    test_bn_relu_fusion(1);
    test_state_dict();
    test_checkpoint();
    CHECKF(rmdir(tmpdir) == 0, "files left in %s", tmpdir);
    ref_free(ref);
    TEST_END();
}
