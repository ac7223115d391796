/* Fine-tuning: loading weights with skip patterns (a new head keeps its
 * initialiser, shapes checked, checkpoints as a source of weights), frozen
 * parameters (no gradient, nothing upstream that only they need, and the
 * optimiser never touches them, weight decay included) and the optimiser's
 * step on ranges of the parameters. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "nabla.h"
#include "fit_support.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];

#define TMP(var, name)                                                                     \
    char var[600];                                                                         \
    snprintf(var, sizeof var, "%s/%s", tmpdir, name)

/* x [5] -> dense "0" (hidden) -> relu -> dense "2" (head of `classes`);
 * cross-entropy on class indices. */
typedef struct net {
    nb_graph *g;
    nb_node x, y, out, hidden, loss;
} net;

static net make_net(int hidden, int classes, uint64_t seed) {
    net m;
    int five = 5;
    m.g = nb_graph_new();
    m.x = nb_input(m.g, "x", 1, &five);
    m.y = nb_input(m.g, "y", 0, NULL);
    m.hidden = nb_dense(m.g, m.x, hidden, "0", NULL);
    m.out = nb_dense(m.g, nb_relu(m.g, m.hidden), classes, "2", NULL);
    m.loss = nb_cross_entropy(m.g, m.out, m.y, 0);
    nb_rng r;
    nb_rng_seed(&r, seed);
    CHECK_OK(nb_graph_status(m.g));
    CHECK_OK(nb_graph_init(m.g, &r));
    return m;
}

static nb_real *values(net *m, const char *name) { return nb_value(m->g, nb_find(m->g, name)); }

static size_t numel(net *m, const char *name) { return nb_node_numel(m->g, nb_find(m->g, name)); }

/* ------------------------------------------------------------ loading */

static void test_load_skip(void) {
    TMP(path, "src.safetensors");
    net a = make_net(6, 4, 1), b = make_net(6, 3, 2);
    CHECK_OK(nb_save_weights(a.g, path, NULL, 0));
    size_t nw = numel(&b, "2.weight");
    nb_real *head = malloc(nw * sizeof *head);
    memcpy(head, values(&b, "2.weight"), nw * sizeof *head);
    nb_real before0 = values(&b, "0.weight")[0];

    /* the head of another size: a shape error naming it and both shapes */
    CHECK(nb_load_weights(b.g, path, 0) == NB_ERR_SHAPE);
    CHECKF(strstr(nb_last_error(), "'2.weight'") && strstr(nb_last_error(), "[4, 6]") &&
           strstr(nb_last_error(), "[3, 6]"), "%s", nb_last_error());
    CHECK(values(&b, "0.weight")[0] == before0); /* nothing changed */

    const char *skip[] = {"2.*"};
    nb_load_opts o = {0, skip, 1};
    CHECK_OK(nb_load_weights_opts(b.g, path, &o));
    CHECK(memcmp(values(&b, "0.weight"), values(&a, "0.weight"),
                 numel(&a, "0.weight") * sizeof(nb_real)) == 0);
    CHECK(memcmp(values(&b, "0.bias"), values(&a, "0.bias"), 6 * sizeof(nb_real)) == 0);
    CHECK(memcmp(values(&b, "2.weight"), head, nw * sizeof *head) == 0); /* kept */

    /* a parameter the file lacks, not skipped: an error naming it */
    const char *skip_bias[] = {"2.bias"};
    net c = make_net(6, 4, 3);
    TMP(partial, "partial.safetensors");
    o = (nb_load_opts){0, skip_bias, 1};
    CHECK_OK(nb_load_weights_opts(c.g, path, &o));
    nb_graph *small = nb_graph_new();
    int five = 5;
    nb_dense(small, nb_input(small, "x", 1, &five), 6, "0", NULL);
    CHECK_OK(nb_save_weights(small, partial, NULL, 0));
    CHECK(nb_load_weights_opts(c.g, partial, &o) == NB_ERR_FORMAT);
    CHECKF(strstr(nb_last_error(), "'2.weight'") && strstr(nb_last_error(), "missing"), "%s",
           nb_last_error());
    const char *skip_head[] = {"2.weight", "2.bias"};
    o = (nb_load_opts){0, skip_head, 2};
    CHECK_OK(nb_load_weights_opts(c.g, partial, &o));

    /* tensors the graph lacks: an error, unless skipped or allowed */
    CHECK(nb_load_weights(small, path, 0) == NB_ERR_FORMAT);
    CHECK(strstr(nb_last_error(), "'2.") != NULL);
    o = (nb_load_opts){0, skip, 1};
    CHECK_OK(nb_load_weights_opts(small, path, &o));
    o = (nb_load_opts){NB_LOAD_ALLOW_EXTRA, NULL, 0};
    CHECK_OK(nb_load_weights_opts(small, path, &o));
    o = (nb_load_opts){0, NULL, 1};
    CHECK(nb_load_weights_opts(small, path, &o) == NB_ERR_ARG);
    free(head);
    nb_graph_free(small);
    nb_graph_free(a.g);
    nb_graph_free(b.g);
    nb_graph_free(c.g);
    unlink(path);
    unlink(partial);
}

/* A checkpoint's weights, without its optimiser state. */
static void test_load_checkpoint(void) {
    TMP(path, "run.ckpt");
    net a = make_net(6, 4, 4), b = make_net(6, 4, 5);
    nb_optim *opt = test_optim(a.g, NB_OPT_ADAM, -1);
    nb_checkpoint ck = {0};
    CHECK_OK(nb_checkpoint_save(path, a.g, opt, &ck));
    CHECK(nb_load_weights(b.g, path, 0) == NB_ERR_FORMAT); /* __optim__.state */
    nb_load_opts o = {NB_LOAD_ALLOW_EXTRA, NULL, 0};
    CHECK_OK(nb_load_weights_opts(b.g, path, &o));
    CHECK(memcmp(nb_params(b.g), nb_params(a.g), nb_param_count(a.g) * sizeof(nb_real)) == 0);
    nb_graph_free(a.g);
    nb_graph_free(b.g);
    unlink(path);
}

/* ------------------------------------------------------------ freezing */

enum { N = 64 };
static nb_real xs[N * 5], ys[N];

static void make_data(void) {
    nb_rng r;
    nb_rng_seed(&r, 9);
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int k = 0; k < 5; k++) s += (xs[i * 5 + k] = (nb_real)nb_rng_normal(&r));
        ys[i] = (nb_real)(s > 0 ? 1 : 0) + (nb_real)(xs[i * 5] > 0 ? 1 : 0);
    }
}

static void test_freeze_gradients(void) {
    net m = make_net(6, 3, 6);
    int count = -1;
    CHECK_OK(nb_freeze_matching(m.g, "0.*", 1, &count));
    CHECK(count == 2);
    CHECK(nb_param_is_frozen(m.g, nb_find(m.g, "0.weight")));
    CHECK(!nb_param_is_frozen(m.g, nb_find(m.g, "2.weight")));
    CHECK_OK(nb_freeze_matching(m.g, "nothing*", 1, &count));
    CHECK(count == 0);
    CHECK(nb_param_freeze(m.g, m.x, 1) == NB_ERR_ARG); /* not a parameter */
    CHECK(nb_grad(m.g, nb_find(m.g, "0.weight")) == NULL);
    /* a sentinel where dW of the frozen layer would go survives backward */
    nb_real *grads = nb_grads(m.g);
    grads[0] = 12345;
    REQUIRE_OK(nb_set_input(m.g, m.x, xs, 4));
    REQUIRE_OK(nb_set_input(m.g, m.y, ys, 4));
    REQUIRE_OK(nb_forward(m.g, m.loss));
    REQUIRE_OK(nb_backward(m.g, m.loss));
    CHECK(grads[0] == 12345);
    /* nothing upstream of the frozen layer gets a gradient either */
    CHECK(nb_grad(m.g, m.hidden) == NULL);
    CHECK(nb_grad(m.g, nb_find(m.g, "2.weight")) != NULL);
    int n;
    const size_t *r = nb_trainable_ranges(m.g, &n);
    size_t off0 = 5 * 6 + 6;
    CHECK(n == 1 && r[0] == off0 && r[1] == nb_param_count(m.g));
    /* unfrozen again: gradients as before */
    CHECK_OK(nb_freeze_matching(m.g, "*", 0, &count));
    CHECK(count == 4);
    REQUIRE_OK(nb_set_input(m.g, m.x, xs, 4));
    REQUIRE_OK(nb_set_input(m.g, m.y, ys, 4));
    REQUIRE_OK(nb_forward(m.g, m.loss));
    nb_zero_grad(m.g);
    REQUIRE_OK(nb_backward(m.g, m.loss));
    CHECK(nb_grad(m.g, m.hidden) != NULL && nb_grad(m.g, nb_find(m.g, "0.weight")) != NULL);
    r = nb_trainable_ranges(m.g, &n);
    CHECK(n == 1 && r[0] == 0 && r[1] == nb_param_count(m.g));
    /* a parameter added after freezing trains; the frozen ones stay out */
    CHECK_OK(nb_freeze_matching(m.g, "0.*", 1, NULL));
    int three = 3;
    nb_node extra = nb_param(m.g, "extra", 1, &three, (nb_init){0});
    CHECK(extra != NB_NONE && nb_grad(m.g, extra) != NULL);
    r = nb_trainable_ranges(m.g, &n);
    CHECK(n == 1 && r[0] == off0 && r[1] == nb_param_count(m.g));
    nb_graph_free(m.g);
}

static double last_loss;
static int record(const nb_epoch_stats *s, void *user) {
    double *first = user;
    if (s->epoch == 1) *first = s->train_loss;
    last_loss = s->train_loss;
    return 0;
}

/* Training leaves frozen parameters bit-identical with every optimiser,
 * weight decay on, and their optimiser state untouched. */
static void test_freeze_training(nb_optim_kind kind) {
    net m = make_net(6, 3, 7);
    nb_optim_config oc = nb_optim_defaults(kind);
    oc.weight_decay = 0.1;
    oc.momentum = kind == NB_OPT_SGD ? 0.9 : oc.momentum;
    nb_optim *opt = nb_optim_new(&oc, nb_param_count(m.g));
    REQUIRE_OK(nb_freeze_matching(m.g, "0.*", 1, NULL));
    size_t nf = 5 * 6 + 6, n = nb_param_count(m.g);
    nb_real *before = malloc(n * sizeof *before);
    memcpy(before, nb_params(m.g), n * sizeof *before);
    nb_fit_config cfg = nb_fit_defaults(m.x, m.y, m.loss, m.out);
    cfg.epochs = 20;
    cfg.batch_size = 16;
    cfg.optimizer = opt;
    cfg.on_epoch = record;
    double first = 0;
    cfg.user = &first;
    nb_data d = test_data(xs, ys, N, 5, 1);
    CHECK_OK(nb_fit(m.g, &cfg, &d, NULL, NULL));
    CHECKF(memcmp(before, nb_params(m.g), nf * sizeof *before) == 0, "%s moved a frozen value",
           nb_optim_name(kind));
    CHECKF(memcmp(before + nf, nb_params(m.g) + nf, (n - nf) * sizeof *before) != 0,
           "%s trained nothing", nb_optim_name(kind));
    CHECKF(last_loss < first, "%s: loss %g -> %g", nb_optim_name(kind), first, last_loss);
    /* every state buffer is n long; the frozen values' state stays as new */
    size_t len;
    const nb_real *state = nb_optim_state(opt, &len);
    nb_optim *fresh = nb_optim_new(&oc, n);
    const nb_real *init = nb_optim_state(fresh, NULL);
    int same = 1;
    for (size_t b = 0; b < len; b += n) same &= memcmp(state + b, init + b, nf * sizeof *state) == 0;
    CHECKF(same, "%s changed a frozen value's state", nb_optim_name(kind));
    nb_optim_free(fresh);
    nb_optim_free(opt);
    free(before);
    nb_graph_free(m.g);
}

static void test_all_frozen(void) {
    net m = make_net(6, 3, 8);
    REQUIRE_OK(nb_freeze_matching(m.g, "*", 1, NULL));
    nb_fit_config cfg = nb_fit_defaults(m.x, m.y, m.loss, m.out);
    cfg.optimizer = test_optim(m.g, NB_OPT_SGD, 0.1);
    REQUIRE_OK(nb_set_input(m.g, m.x, xs, 4));
    REQUIRE_OK(nb_set_input(m.g, m.y, ys, 4));
    CHECK(nb_train_step(m.g, &cfg, 0.1, NULL) == NB_ERR_ARG);
    CHECKF(strstr(nb_last_error(), "unfrozen") != NULL, "%s", nb_last_error());
    nb_graph_free(m.g);
}

/* ------------------------------------------------------------ optimiser ranges */

static void test_step_ranges(void) {
    enum { M = 40 };
    nb_real p[M], q[M], g[M];
    for (int k = 0; k < M; k++) {
        p[k] = q[k] = (nb_real)(k - 20) / 8;
        g[k] = (nb_real)((k * 7) % 11 - 5) / 10;
    }
    nb_optim_config c = nb_optim_defaults(NB_OPT_ADAMW);
    nb_optim *a = nb_optim_new(&c, M), *b = nb_optim_new(&c, 10);
    const size_t ranges[4] = {3, 8, 20, 25};
    for (int s = 0; s < 3; s++) {
        CHECK_OK(nb_optim_step_ranges(a, p, g, 0.01, ranges, 2));
        /* the same updates as an optimiser of just those values */
        nb_real sub[10], subg[10];
        memcpy(sub, q + 3, 5 * sizeof *sub), memcpy(sub + 5, q + 20, 5 * sizeof *sub);
        memcpy(subg, g + 3, 5 * sizeof *subg), memcpy(subg + 5, g + 20, 5 * sizeof *subg);
        CHECK_OK(nb_optim_step(b, sub, subg, 0.01));
        memcpy(q + 3, sub, 5 * sizeof *sub), memcpy(q + 20, sub + 5, 5 * sizeof *sub);
    }
    CHECK(memcmp(p, q, sizeof p) == 0);
    CHECK(p[0] == (nb_real)(-20) / 8 && p[39] == (nb_real)19 / 8);
    const size_t unordered[4] = {20, 25, 3, 8}, outside[2] = {30, 41};
    CHECK(nb_optim_step_ranges(a, p, g, 0.01, unordered, 2) == NB_ERR_ARG);
    CHECK(nb_optim_step_ranges(a, p, g, 0.01, outside, 1) == NB_ERR_ARG);
    CHECK(nb_optim_step_ranges(a, p, g, 0.01, NULL, 1) == NB_ERR_ARG);
    CHECK_OK(nb_optim_step_ranges(a, p, g, 0.01, NULL, 0)); /* nothing to update */
    CHECK(memcmp(p, q, sizeof p) == 0);
    nb_optim_free(a);
    nb_optim_free(b);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/nb_finetune_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    make_data();
    test_load_skip();
    test_load_checkpoint();
    test_freeze_gradients();
    const nb_optim_kind kinds[] = {NB_OPT_SGD, NB_OPT_MOMENTUM_EMA, NB_OPT_ADAGRAD,
                                   NB_OPT_RMSPROP, NB_OPT_ADAM, NB_OPT_ADAMW};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) test_freeze_training(kinds[k]);
    test_all_frozen();
    test_step_ranges();
    test_free_optims();
    CHECKF(rmdir(tmpdir) == 0, "files left in %s", tmpdir);
    TEST_END();
}
