/* Checkpoints: bit-exact save/load of parameters, optimiser state and
 * training state for every optimiser; resuming continues exactly as an
 * uninterrupted run; every mismatch is rejected with nothing changed; and
 * writes are atomic: a failed write or a crash mid-write leaves the previous
 * file intact (shown with a real file-size limit, not a mock). */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "files.h"
#include "nabla.h"

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[64];

/* char var[] = "<tmpdir>/name" */
#define TMP(var, name)                                                                     \
    char var[600];                                                                         \
    snprintf(var, sizeof var, "%s/%s", tmpdir, name)


static const char *MODEL = "input 5\ndense 7\ndense 3\n";
static const char *MODEL6 = "input 5\ndense 6\ndense 3\n";

static nb_graph *mlp(int hidden, uint64_t seed) {
    nb_graph *g = nb_graph_new();
    int in_dims[1] = {5};
    nb_node x = nb_input(g, "x", 1, in_dims);
    nb_dense(g, nb_dense(g, x, hidden, "0", NULL), 3, "2", NULL);
    nb_rng r;
    nb_rng_seed(&r, seed);
    nb_graph_init(g, &r);
    return g;
}

/* k optimiser steps with gradients drawn from r. */
static void train(nb_graph *g, nb_optim *o, nb_rng *r, int k) {
    size_t n = nb_param_count(g);
    for (int s = 0; s < k; s++) {
        for (size_t i = 0; i < n; i++) nb_grads(g)[i] = (nb_real)(0.1 * nb_rng_normal(r));
        nb_optim_step(o, nb_params(g), nb_grads(g), nb_optim_get_config(o)->lr);
    }
}

static nb_optim_config config(const char *name) {
    nb_optim_config c;
    nb_optim_parse(name, &c);
    if (c.kind == NB_OPT_RMSPROP) c.centered = 1, c.momentum = 0.9;
    if (c.kind == NB_OPT_ADAM) c.amsgrad = 1;
    if (c.kind == NB_OPT_ADAGRAD) c.lr_decay = 0.01, c.initial_accumulator = 0.1;
    if (c.kind == NB_OPT_SGD) c.weight_decay = 1e-4;
    return c;
}

/* A snapshot of everything a failed load must leave alone. */
typedef struct snapshot {
    nb_real *params, *state;
    size_t n, ns;
    long steps;
} snapshot;

static snapshot snap(nb_graph *g, nb_optim *o) {
    snapshot s = {0};
    s.n = nb_param_count(g);
    s.params = malloc(s.n * sizeof *s.params);
    memcpy(s.params, nb_params(g), s.n * sizeof *s.params);
    if (o) {
        nb_real *st = nb_optim_state(o, &s.ns);
        s.state = malloc((s.ns ? s.ns : 1) * sizeof *s.state);
        if (s.ns) memcpy(s.state, st, s.ns * sizeof *s.state);
        s.steps = nb_optim_steps(o);
    }
    return s;
}

static int unchanged(const snapshot *s, nb_graph *g, nb_optim *o) {
    int same = memcmp(s->params, nb_params(g), s->n * sizeof *s->params) == 0;
    if (o) {
        size_t ns;
        nb_real *st = nb_optim_state(o, &ns);
        same = same && ns == s->ns && (!ns || memcmp(st, s->state, ns * sizeof *st) == 0) &&
               nb_optim_steps(o) == s->steps;
    }
    return same;
}

/* Field by field: the struct has padding, which memcmp would compare too. */
static int same_checkpoint(const nb_checkpoint *a, const nb_checkpoint *b) {
    return a->epoch == b->epoch && a->step == b->step && a->seed == b->seed &&
           memcmp(&a->rng, &b->rng, sizeof a->rng) == 0 && a->model == b->model &&
           a->meta == b->meta && a->n_meta == b->n_meta;
}

static void snap_free(snapshot *s) {
    free(s->params);
    free(s->state);
}

/* ------------------------------------------------------------ round trips */

static void test_round_trip_every_optimiser(void) {
    static const char *names[] = {"sgd", "momentum", "nesterov", "ema-momentum", "adagrad",
                                  "rmsprop", "adam", "adamw"};
    TMP(path, "ck.safetensors");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        nb_optim_config c = config(names[i]);
        nb_graph *a = mlp(7, 1);
        nb_optim *oa = nb_optim_new(&c, nb_param_count(a));
        nb_rng data;
        nb_rng_seed(&data, 99);
        train(a, oa, &data, 5);
        nb_checkpoint ck = {3, 42, 1234, data, MODEL, NULL, 0, NULL, 0, 0};
        CHECK_OK(nb_checkpoint_save(path, a, oa, &ck));

        /* a fresh run restores it exactly */
        nb_graph *b = mlp(7, 2);
        nb_optim *ob = nb_optim_new(&c, nb_param_count(b));
        nb_checkpoint got = {0, 0, 0, {{0, 0, 0, 0}}, MODEL, NULL, 0, NULL, 0, 0};
        CHECK_OK(nb_checkpoint_load(path, b, ob, &got));
        size_t n = nb_param_count(a), ns_a, ns_b;
        CHECKF(memcmp(nb_params(a), nb_params(b), n * sizeof(nb_real)) == 0, "%s params",
               names[i]);
        nb_real *sa = nb_optim_state(oa, &ns_a), *sb = nb_optim_state(ob, &ns_b);
        CHECKF(ns_a == ns_b && (!ns_a || memcmp(sa, sb, ns_a * sizeof *sa) == 0), "%s state",
               names[i]);
        CHECK(nb_optim_steps(ob) == 5);
        CHECK(got.epoch == 3 && got.step == 42 && got.seed == 1234 && got.model == MODEL);
        CHECK(memcmp(&got.rng, &data, sizeof data) == 0);

        /* and training on continues exactly as the uninterrupted run */
        nb_rng data_b = got.rng;
        train(a, oa, &data, 4);
        train(b, ob, &data_b, 4);
        CHECKF(memcmp(nb_params(a), nb_params(b), n * sizeof(nb_real)) == 0, "%s resumed",
               names[i]);
        nb_optim_free(oa);
        nb_optim_free(ob);
        nb_graph_free(a);
        nb_graph_free(b);
    }

    /* without optimiser; extreme values of the training state */
    nb_graph *a = mlp(7, 1), *b = mlp(7, 2);
    nb_checkpoint ck = {-1, -5, UINT64_MAX, {{0, UINT64_MAX, 1, 0x8000000000000000ull}}, NULL, NULL, 0, NULL, 0, 0};
    CHECK_OK(nb_checkpoint_save(path, a, NULL, &ck));
    nb_checkpoint got = {0};
    CHECK_OK(nb_checkpoint_load(path, b, NULL, &got));
    CHECK(memcmp(nb_params(a), nb_params(b), nb_param_count(a) * sizeof(nb_real)) == 0);
    CHECK(got.epoch == -1 && got.step == -5 && got.seed == UINT64_MAX && got.model == NULL);
    CHECK(memcmp(&got.rng, &ck.rng, sizeof ck.rng) == 0);

    /* the file is an ordinary safetensors file holding the parameters */
    nb_safetensors *st = NULL;
    CHECK_OK(nb_st_open(path, &st));
    if (st) {
        CHECK(nb_st_count(st) == 4 && nb_st_find(st, "0.weight") >= 0);
        CHECK(strcmp(nb_st_meta(st, "optim.kind"), "none") == 0);
        CHECK(strcmp(nb_st_meta(st, "nabla.rng"),
                     "0000000000000000 ffffffffffffffff 0000000000000001 8000000000000000") == 0);
        nb_st_free(st);
    }
    nb_graph *w = mlp(7, 3);
    CHECK_OK(nb_load_weights(w, path, 0));
    CHECK(memcmp(nb_params(a), nb_params(w), nb_param_count(a) * sizeof(nb_real)) == 0);
    nb_graph_free(w);
    nb_graph_free(a);
    nb_graph_free(b);
    unlink(path);
}

/* ------------------------------------------------------------ mismatches */

/* Copy the checkpoint at src to dst with metadata key set to value (NULL:
 * removed) and, if extra is non-NULL, one more tensor. */
static void rewrite(const char *src, const char *dst, const char *key, const char *value,
                    const nb_st_entry *extra, const char *drop_tensor) {
    nb_safetensors *st = NULL;
    CHECK_OK(nb_st_open(src, &st));
    if (!st) return;
    int n = nb_st_count(st), m = nb_st_meta_count(st), k = 0, j = 0;
    nb_st_entry *t = calloc((size_t)n + 1, sizeof *t);
    nb_kv *kv = calloc((size_t)m + 1, sizeof *kv);
    nb_st_tensor x[64];
    for (int i = 0; i < n && i < 64; i++) {
        nb_st_tensor_at(st, i, &x[i]);
        if (drop_tensor && strcmp(x[i].name, drop_tensor) == 0) continue;
        t[k++] = (nb_st_entry){x[i].name, x[i].dtype, x[i].ndim, x[i].dims, x[i].data};
    }
    if (extra) t[k++] = *extra;
    int found = 0;
    for (int i = 0; i < m; i++) {
        nb_kv e = nb_st_meta_at(st, i);
        if (key && strcmp(e.key, key) == 0) {
            found = 1;
            if (!value) continue;
            e.value = value;
        }
        kv[j++] = e;
    }
    if (key && value && !found) kv[j++] = (nb_kv){key, value};
    CHECK_OK(nb_st_write(dst, t, k, kv, j));
    free(t);
    free(kv);
    nb_st_free(st);
}

static void test_mismatches(void) {
    TMP(path, "good.safetensors");
    TMP(bad, "bad.safetensors");
    nb_optim_config adam = config("adam");
    nb_graph *a = mlp(7, 1);
    nb_optim *oa = nb_optim_new(&adam, nb_param_count(a));
    nb_rng data;
    nb_rng_seed(&data, 5);
    train(a, oa, &data, 3);
    nb_checkpoint ck = {2, 30, 77, data, MODEL, NULL, 0, NULL, 0, 0};
    CHECK_OK(nb_checkpoint_save(path, a, oa, &ck));

    nb_graph *b = mlp(7, 2);
    nb_optim *ob = nb_optim_new(&adam, nb_param_count(b));
    train(b, ob, &data, 1);
    snapshot before = snap(b, ob);
    const nb_checkpoint ck_before = {-7, -7, 7, {{7, 7, 7, 7}}, MODEL, NULL, 0, NULL, 0, 0};
    nb_checkpoint got = ck_before;
#define REJECT(call, status, needle)                                                       \
    do {                                                                                   \
        got = ck_before;                                                                   \
        nb_status s_ = (call);                                                             \
        CHECKF(s_ == (status) && strstr(nb_last_error(), needle), "%s -> %s: %s", #call,   \
               nb_status_name(s_), nb_last_error());                                       \
        CHECK(unchanged(&before, b, ob));                                                  \
        CHECK(same_checkpoint(&got, &ck_before));                                          \
    } while (0)

    /* a different model text */
    got.model = MODEL6;
    nb_status s = nb_checkpoint_load(path, b, ob, &got);
    CHECKF(s == NB_ERR_ARG && strstr(nb_last_error(), "different model") &&
           strstr(nb_last_error(), "from line 2"), "%s", nb_last_error());
    CHECK(unchanged(&before, b, ob));

    /* a different graph */
    nb_graph *c = mlp(6, 3);
    nb_optim *oc = nb_optim_new(&adam, nb_param_count(c));
    snapshot before_c = snap(c, oc);
    got = ck_before;
    got.model = NULL; /* not checked: the parameters must still fit */
    CHECK(nb_checkpoint_load(path, c, oc, &got) == NB_ERR_SHAPE);
    CHECKF(strstr(nb_last_error(), "'0.weight' has shape [7, 5] but the graph's parameter is "
                  "[6, 5]"), "%s", nb_last_error());
    CHECK(unchanged(&before_c, c, oc));
    snap_free(&before_c);
    nb_optim_free(oc);
    nb_graph_free(c);

    /* a different optimiser, or the same with other settings */
    nb_optim_config sgd = config("momentum");
    nb_optim *os = nb_optim_new(&sgd, nb_param_count(b));
    got = ck_before;
    CHECK(nb_checkpoint_load(path, b, os, &got) == NB_ERR_ARG);
    CHECKF(strstr(nb_last_error(), "saved with optimiser 'adam', but this run uses 'sgd'"),
           "%s", nb_last_error());
    CHECK(unchanged(&before, b, ob));
    nb_optim_free(os);
    nb_optim_config adam2 = adam;
    adam2.lr = 2e-3;
    nb_optim *o2 = nb_optim_new(&adam2, nb_param_count(b));
    CHECK(nb_checkpoint_load(path, b, o2, &got) == NB_ERR_ARG);
    CHECKF(strstr(nb_last_error(), "setting lr differs: checkpoint 0.001"), "%s",
           nb_last_error());
    nb_optim_free(o2);
    adam2 = adam;
    adam2.amsgrad = 0; /* also a different state size */
    o2 = nb_optim_new(&adam2, nb_param_count(b));
    CHECK(nb_checkpoint_load(path, b, o2, &got) == NB_ERR_ARG);
    CHECKF(strstr(nb_last_error(), "setting amsgrad differs"), "%s", nb_last_error());
    nb_optim_free(o2);
    CHECK(unchanged(&before, b, ob));

    /* an optimiser to restore, but the checkpoint has none */
    TMP(plain, "plain.safetensors");
    CHECK_OK(nb_checkpoint_save(plain, a, NULL, &ck));
    REJECT(nb_checkpoint_load(plain, b, ob, &got), NB_ERR_ARG, "holds no optimiser state");
    /* a weights file is not a checkpoint */
    CHECK_OK(nb_save_weights(a, plain, NULL, 0));
    REJECT(nb_checkpoint_load(plain, b, ob, &got), NB_ERR_FORMAT, "not a nabla checkpoint");
    unlink(plain);

    /* damaged or inconsistent metadata and tensors */
    static const struct { const char *key, *value, *needle; } meta_cases[] = {
        {"nabla.rng", "1 2 3 4", "'nabla.rng' = '1 2 3 4' is not four 16-digit"},
        {"nabla.rng", NULL, "lacks 'nabla.rng'"},
        {"nabla.epoch", "3.5", "'nabla.epoch' = '3.5' is not an integer"},
        {"nabla.epoch", "99999999999", "is not an integer in"},
        {"nabla.step", " 4", "'nabla.step' = ' 4' is not an integer"},
        {"nabla.seed", "-1", "'nabla.seed' = '-1' is not an unsigned"},
        {"nabla.seed", "18446744073709551616", "is not an unsigned"},
        {"nabla.version", "2", "'nabla.version' = '2' is not 1"},
        {"nabla.format", "weights", "'nabla.format' = 'weights'"},
        {"nabla.model", NULL, "no model text"},
        {"optim.steps", "-1", "'optim.steps' = '-1'"},
        {"optim.lr", "fast", "'optim.lr' = 'fast' is not a number"},
        {"optim.eps", NULL, "lacks 'optim.eps'"},
        {"optim.kind", "adamax", "saved with optimiser 'adamax'"},
        {"optim.kind", "none", "has no optimiser but a tensor '__optim__.state'"},
    };
    for (size_t i = 0; i < sizeof meta_cases / sizeof meta_cases[0]; i++) {
        rewrite(path, bad, meta_cases[i].key, meta_cases[i].value, NULL, NULL);
        got = ck_before;
        s = nb_checkpoint_load(bad, b, ob, &got);
        CHECKF(s != NB_OK && strstr(nb_last_error(), meta_cases[i].needle) &&
               strstr(nb_last_error(), bad), "%s=%s: %s", meta_cases[i].key,
               meta_cases[i].value ? meta_cases[i].value : "(removed)", nb_last_error());
        CHECK(unchanged(&before, b, ob) && same_checkpoint(&got, &ck_before));
    }
    const float f[3] = {1, 2, 3};
    int d3[1] = {3};
    nb_st_entry extra = {"1.weight", NB_ST_F32, 1, d3, f};
    rewrite(path, bad, NULL, NULL, &extra, NULL);
    REJECT(nb_checkpoint_load(bad, b, ob, &got), NB_ERR_FORMAT,
           "tensor '1.weight' is not a parameter");
    extra.name = "__optim__.other";
    rewrite(path, bad, NULL, NULL, &extra, NULL);
    REJECT(nb_checkpoint_load(bad, b, ob, &got), NB_ERR_FORMAT,
           "unknown reserved tensor '__optim__.other'");
    extra.name = "__optim__.state";
    rewrite(path, bad, NULL, NULL, &extra, "__optim__.state");
    REJECT(nb_checkpoint_load(bad, b, ob, &got), NB_ERR_SHAPE,
           "optimiser state has 3 values in the checkpoint");
    rewrite(path, bad, NULL, NULL, NULL, "__optim__.state");
    REJECT(nb_checkpoint_load(bad, b, ob, &got), NB_ERR_FORMAT, "lacks the optimiser state");
    rewrite(path, bad, NULL, NULL, NULL, "2.bias");
    REJECT(nb_checkpoint_load(bad, b, ob, &got), NB_ERR_FORMAT,
           "parameter '2.bias' [3] is missing");
    TMP(none, "none.safetensors");
    REJECT(nb_checkpoint_load(none, b, ob, &got), NB_ERR_IO, "cannot open");
    unlink(bad);

    /* the optimiser part may be skipped on purpose */
    got = ck_before;
    got.model = NULL;
    CHECK_OK(nb_checkpoint_load(path, b, NULL, &got));
    CHECK(memcmp(nb_params(a), nb_params(b), nb_param_count(a) * sizeof(nb_real)) == 0);
    CHECK(got.epoch == 2 && got.step == 30 && got.seed == 77);

    CHECK(nb_checkpoint_save(NULL, a, oa, &ck) == NB_ERR_ARG);
    CHECK(nb_checkpoint_save(path, a, oa, NULL) == NB_ERR_ARG);
    CHECK(nb_checkpoint_load(path, NULL, ob, &got) == NB_ERR_ARG);
    nb_checkpoint bad_model = ck;
    bad_model.model = "\xff";
    CHECK(nb_checkpoint_save(path, a, oa, &bad_model) == NB_ERR_ARG);
    CHECK(strstr(nb_last_error(), "nabla.model") != NULL);
    /* a parameter may not use the optimiser's reserved name */
    nb_graph *r = mlp(7, 1);
    int one[1] = {1};
    nb_param(r, "__optim__.state", 1, one, (nb_init){NB_INIT_ZEROS, 0, 0, 0, NB_FAN_IN});
    TMP(rpath, "r.safetensors");
    CHECK(nb_checkpoint_save(rpath, r, NULL, &ck) == NB_ERR_ARG);
    CHECK(strstr(nb_last_error(), "reserved") != NULL);
    nb_graph_free(r);
#undef REJECT
    snap_free(&before);
    nb_optim_free(oa);
    nb_optim_free(ob);
    nb_graph_free(a);
    nb_graph_free(b);
    unlink(path);
}

/* ------------------------------------------------------------ atomic writes */

/* Names in tmpdir other than the expected ones (temporary files left over). */
static int stray_files(const char *keep1, const char *keep2, int remove) {
    int stray = 0;
    DIR *d = opendir(tmpdir);
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if ((keep1 && !strcmp(e->d_name, keep1)) || (keep2 && !strcmp(e->d_name, keep2)))
            continue;
        stray++;
        TMP(victim, e->d_name);
        if (remove) unlink(victim);
    }
    closedir(d);
    return stray;
}

static void test_atomic(void) {
    TMP(path, "run.safetensors");
    nb_optim_config adam = config("adam");
    nb_graph *big = mlp(600, 1); /* ~6000 parameters: ~100 KB with the Adam state */
    nb_optim *o = nb_optim_new(&adam, nb_param_count(big));
    nb_rng data;
    nb_rng_seed(&data, 8);
    train(big, o, &data, 2);
    nb_checkpoint ck = {1, 2, 3, data, MODEL, NULL, 0, NULL, 0, 0};
    CHECK_OK(nb_checkpoint_save(path, big, o, &ck));
    size_t old_len;
    unsigned char *old = test_read_file(path, &old_len);
    CHECK(old && old_len > 64 * 1024);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0644);
    train(big, o, &data, 1); /* the next save would differ */

    /* 1. A write that fails half-way (file size limit, EFBIG) leaves the old
     *    file as it was and no temporary file behind. */
    struct rlimit saved;
    getrlimit(RLIMIT_FSIZE, &saved);
    struct rlimit lim = saved;
    lim.rlim_cur = 16 * 1024;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    nb_status s = nb_checkpoint_save(path, big, o, &ck);
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, old_handler);
    CHECKF(s == NB_ERR_IO && strstr(nb_last_error(), "write failed") &&
           strstr(nb_last_error(), "previous file is unchanged"), "%s", nb_last_error());
    size_t len;
    unsigned char *now = test_read_file(path, &len);
    CHECK(now && len == old_len && memcmp(now, old, len) == 0);
    free(now);
    CHECK(stray_files("run.safetensors", NULL, 1) == 0);

    /* 2. A crash in the middle of writing (the process is killed by
     *    SIGXFSZ) leaves the old file intact; only a temporary file remains. */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        signal(SIGXFSZ, SIG_DFL);
        setrlimit(RLIMIT_FSIZE, &lim);
        nb_checkpoint_save(path, big, o, &ck);
        _exit(0); /* not reached if the write crashes as intended */
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ, "child status %d", status);
    now = test_read_file(path, &len);
    CHECK(now && len == old_len && memcmp(now, old, len) == 0);
    free(now);
    CHECK(stray_files("run.safetensors", NULL, 1) == 1); /* the crashed write's temp file */
    nb_graph *check = mlp(600, 2);
    nb_optim *oc = nb_optim_new(&adam, nb_param_count(check));
    nb_checkpoint got = {0};
    CHECK_OK(nb_checkpoint_load(path, check, oc, &got));
    nb_optim_free(oc);
    nb_graph_free(check);

    /* 3. Replacing works and keeps the file's mode. */
    CHECK(chmod(path, 0600) == 0);
    CHECK_OK(nb_checkpoint_save(path, big, o, &ck));
    now = test_read_file(path, &len);
    CHECK(now && !(len == old_len && memcmp(now, old, len) == 0));
    free(now);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    CHECK(stray_files("run.safetensors", NULL, 0) == 0);

    /* 4. A target that cannot be replaced (a directory) is reported. */
    TMP(dir, "adir");
    CHECK(mkdir(dir, 0755) == 0);
    CHECK(nb_checkpoint_save(dir, big, o, &ck) == NB_ERR_IO);
    CHECK(strstr(nb_last_error(), "is a directory") != NULL);
    CHECK(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode));
    rmdir(dir);
    TMP(missing, "missing/dir/w.safetensors");
    CHECK(nb_save_weights(big, missing, NULL, 0) == NB_ERR_IO);
    CHECKF(strstr(nb_last_error(), "cannot create a temporary file"), "%s", nb_last_error());

    /* 5. A read-only directory (meaningless for root, who may write anyway). */
    if (geteuid() != 0) {
        TMP(ro, "ro");
        mkdir(ro, 0755);
        char target[700];
        snprintf(target, sizeof target, "%s/w.safetensors", ro);
        CHECK_OK(nb_save_weights(big, target, NULL, 0));
        chmod(ro, 0555);
        size_t before_len;
        unsigned char *before = test_read_file(target, &before_len);
        nb_rng r;
        nb_rng_seed(&r, 11);
        nb_graph_init(big, &r);
        CHECK(nb_save_weights(big, target, NULL, 0) == NB_ERR_IO);
        now = test_read_file(target, &len);
        CHECK(now && before && len == before_len && memcmp(now, before, len) == 0);
        free(now);
        free(before);
        chmod(ro, 0755);
        unlink(target);
        rmdir(ro);
    } else {
        printf("skipped: read-only directory test (running as root)\n");
    }

    free(old);
    unlink(path);
    nb_optim_free(o);
    nb_graph_free(big);
}

/* No optimiser keeps a NaN: a checkpoint whose state holds one is damaged,
 * and loading it says so (naming the file) instead of letting the next step
 * fail as if the learning rate were too high. */
static void test_nonfinite_state(void) {
    TMP(path, "nan.ckpt");
    nb_optim_config c = config("adam");
    nb_graph *a = mlp(7, 1), *b = mlp(7, 2);
    nb_optim *oa = nb_optim_new(&c, nb_param_count(a)), *ob = nb_optim_new(&c, nb_param_count(b));
    nb_rng data;
    nb_rng_seed(&data, 5);
    train(a, oa, &data, 2);
    size_t len;
    nb_real *state = nb_optim_state(oa, &len);
    CHECK(len > 3);
    state[3] = (nb_real)NAN;
    nb_checkpoint ck = {1, 2, 3, data, NULL, NULL, 0, NULL, 0, 0}, got = {0};
    CHECK_OK(nb_checkpoint_save(path, a, oa, &ck));
    CHECK(nb_checkpoint_load(path, b, ob, &got) == NB_ERR_NUMERIC);
    CHECKF(strstr(nb_last_error(), "nan.ckpt: optimiser state value 3 is NaN; the checkpoint "
                  "is damaged"), "%s", nb_last_error());
    CHECK(nb_optim_steps(ob) == 0); /* nothing restored */
    nb_optim_free(oa);
    nb_optim_free(ob);
    nb_graph_free(a);
    nb_graph_free(b);
    unlink(path);
}

/* A second set of values (the best weights) travels with the checkpoint
 * bit-exactly, is optional, and a wrong size is refused without changes. */
static void test_best_values(void) {
    TMP(path, "best.safetensors");
    TMP(plain, "plain.safetensors");
    nb_graph *a = mlp(7, 1), *b = mlp(7, 2);
    size_t n = nb_param_count(a);
    nb_real best[64], got_best[64];
    for (size_t i = 0; i < n && i < 64; i++) best[i] = (nb_real)(0.001 * (double)i - 0.01);
    nb_rng data;
    nb_rng_seed(&data, 3);
    nb_checkpoint ck = {1, 2, 3, data, NULL, NULL, 0, best, 64, 0};
    CHECK_OK(nb_checkpoint_save(path, a, NULL, &ck));
    nb_checkpoint got = {0};
    got.best = got_best;
    got.n_best = 64;
    CHECK_OK(nb_checkpoint_load(path, b, NULL, &got));
    CHECK(got.has_best == 1 && memcmp(best, got_best, sizeof best) == 0);
    CHECK(memcmp(nb_params(a), nb_params(b), n * sizeof(nb_real)) == 0);
    /* the wrong size: an error naming the tensor, nothing changed */
    nb_graph *c = mlp(7, 4);
    nb_real before = nb_params(c)[0];
    got.n_best = 63;
    CHECK(nb_checkpoint_load(path, c, NULL, &got) == NB_ERR_SHAPE);
    CHECK(strstr(nb_last_error(), "__optim__.best") != NULL && nb_params(c)[0] == before);
    /* without one: has_best = 0; a caller who does not ask ignores it */
    ck.best = NULL;
    CHECK_OK(nb_checkpoint_save(plain, a, NULL, &ck));
    got.n_best = 64;
    got.has_best = 1;
    CHECK_OK(nb_checkpoint_load(plain, b, NULL, &got));
    CHECK(got.has_best == 0);
    nb_checkpoint ignore = {0};
    CHECK_OK(nb_checkpoint_load(path, b, NULL, &ignore));
    CHECK(ignore.has_best == 0);
    remove(path);
    remove(plain);
    nb_graph_free(a);
    nb_graph_free(b);
    nb_graph_free(c);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/nb-ck-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip_every_optimiser();
    test_mismatches();
    test_atomic();
    test_nonfinite_state();
    test_best_values();
    CHECK(stray_files(NULL, NULL, 1) == 0);
    CHECKF(rmdir(tmpdir) == 0, "files left in %s", tmpdir);
    TEST_END();
}
