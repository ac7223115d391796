/* Several processes (nb_dist) without MPI: threads stand for processes
 * through an in-memory transport.  The fixed-order sum gives every process
 * the same bits, in rank order; the state broadcast copies rank 0's; and
 * nb_fit on 3 processes agrees with one process at the same global batch
 * (with uneven slices and a short last batch), and is repeatable. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "nabla.h"
#include "fit_support.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAXP = 4 };

/* The shared exchange: each process posts a pointer, waits, reads. */
typedef struct world {
    int size;
    pthread_barrier_t bar;
    const void *slot[MAXP];
} world;

typedef struct proc {
    world *w;
    int rank;
} proc;

static nb_status t_allgather(void *ctx, const void *in, void *out, size_t bytes) {
    proc *p = ctx;
    p->w->slot[p->rank] = in;
    pthread_barrier_wait(&p->w->bar);
    for (int j = 0; j < p->w->size; j++) memcpy((char *)out + j * bytes, p->w->slot[j], bytes);
    pthread_barrier_wait(&p->w->bar);
    return NB_OK;
}

static nb_status t_alltoall(void *ctx, const void *in, void *out, size_t bytes) {
    proc *p = ctx;
    p->w->slot[p->rank] = in;
    pthread_barrier_wait(&p->w->bar);
    for (int j = 0; j < p->w->size; j++)
        memcpy((char *)out + j * bytes, (const char *)p->w->slot[j] + p->rank * bytes, bytes);
    pthread_barrier_wait(&p->w->bar);
    return NB_OK;
}

static nb_status t_broadcast(void *ctx, void *buf, size_t bytes) {
    proc *p = ctx;
    if (p->rank == 0) p->w->slot[0] = buf;
    pthread_barrier_wait(&p->w->bar);
    if (p->rank != 0) memcpy(buf, p->w->slot[0], bytes);
    pthread_barrier_wait(&p->w->bar);
    return NB_OK;
}

static const nb_dist_ops ops = {t_allgather, t_alltoall, t_broadcast, NULL};

/* Run fn(rank's dist, arg) on `size` threads. */
typedef void (*proc_fn)(nb_dist *d, void *arg);
typedef struct job {
    proc p;
    proc_fn fn;
    void *arg;
} job;

static void *run_job(void *v) {
    job *j = v;
    nb_dist *d = nb_dist_new(&ops, &j->p, j->p.rank, j->p.w->size);
    if (d) j->fn(d, j->arg);
    nb_dist_free(d);
    return NULL;
}

static void run_procs(int size, proc_fn fn, void *args, size_t arg_size) {
    world w = {.size = size};
    pthread_barrier_init(&w.bar, NULL, (unsigned)size);
    job jobs[MAXP];
    pthread_t t[MAXP];
    for (int r = 0; r < size; r++) {
        jobs[r] = (job){{&w, r}, fn, (char *)args + (size_t)r * arg_size};
        pthread_create(&t[r], NULL, run_job, &jobs[r]);
    }
    for (int r = 0; r < size; r++) pthread_join(t[r], NULL);
    pthread_barrier_destroy(&w.bar);
}

/* ---------------------------------------------------------------- sums */

enum { N = 1001 }; /* not a multiple of 3: the last block is padded */

typedef struct sum_arg {
    nb_real v[N];
    double f[2];
    int rank, size;
} sum_arg;

static nb_real value_of(int rank, size_t k) { /* spread magnitudes: order matters */
    return (nb_real)((k % 7 == 0 ? 1e7 : 1.0) * (rank + 1) * (1 + 1e-3 * (double)k) *
                     (rank % 2 ? -1 : 1));
}

static void sum_proc(nb_dist *d, void *v) {
    sum_arg *a = v;
    a->rank = nb_dist_rank(d);
    a->size = nb_dist_size(d);
    for (size_t k = 0; k < N; k++) a->v[k] = value_of(a->rank, k);
    a->f[0] = 0.1 * (a->rank + 1);
    a->f[1] = a->rank;
    CHECK_OK(nb_dist_sum(d, a->v, N));
    CHECK_OK(nb_dist_sum_f64(d, a->f, 2));
}

static void test_sum(void) {
    static sum_arg a[3];
    run_procs(3, sum_proc, a, sizeof a[0]);
    int same = 1, ordered = 1;
    for (size_t k = 0; k < N; k++) {
        double acc = (double)value_of(0, k);
        for (int r = 1; r < 3; r++) acc += (double)value_of(r, k);
        ordered &= a[0].v[k] == (nb_real)acc;
        for (int r = 1; r < 3; r++) same &= memcmp(&a[r].v[k], &a[0].v[k], sizeof(nb_real)) == 0;
    }
    CHECK(a[1].rank == 1 && a[2].size == 3);
    CHECKF(same, "every process holds the same bits");
    CHECKF(ordered, "the sum is rank 0 + rank 1 + rank 2, accumulated in double");
    CHECK(a[2].f[0] == (0.1 * 1 + 0.1 * 2) + 0.1 * 3);
    CHECK(a[0].f[1] == 3 && a[2].f[1] == 3);
}

static void test_bad_group(void) {
    CHECK(nb_dist_new(&ops, NULL, 2, 2) == NULL && strstr(nb_last_error(), "rank 2 of 2"));
    nb_dist_ops none = {0};
    CHECK(nb_dist_new(&none, NULL, 0, 1) == NULL && strstr(nb_last_error(), "allgather"));
    CHECK(nb_dist_rank(NULL) == 0 && nb_dist_size(NULL) == 1);
}

/* ----------------------------------------------------- training together */

enum { SAMPLES = 100, BATCH = 16 }; /* 6 batches of 16 and one of 4 */
static nb_real xs[SAMPLES * 3], ys[SAMPLES];

typedef struct fit_arg {
    int sizes;               /* the graph of rank 1 differs when set      */
    int bn, sync;            /* a batch norm; synchronised statistics     */
    int keep_last;           /* with bn: keep the short last batch        */
    int dropout;             /* dropout after the hidden layer            */
    nb_real params[64];
    size_t n;
    nb_status status;
    char err[300];
    double train_loss, train_acc;
} fit_arg;

static void make_data(void) {
    nb_rng r;
    nb_rng_seed(&r, 5);
    for (int i = 0; i < SAMPLES; i++) {
        ys[i] = (nb_real)(i % 2);
        for (int k = 0; k < 3; k++) xs[i * 3 + k] = (nb_real)(nb_rng_normal(&r) + (k == 0) * ys[i]);
    }
}

/* x [B,3] -> dense 5 (ReLU) -> dense 2, cross-entropy on class indices;
 * every process draws its own (different) initialisation: rank 0's wins. */
static void fit_proc(nb_dist *d, void *v) {
    fit_arg *a = v;
    const int rank = nb_dist_rank(d), three = 3;
    nb_graph *g = nb_graph_new();
    nb_node x = nb_input(g, "x", 1, &three), y = nb_input(g, "y", 0, NULL);
    nb_node h = nb_dense(g, x, a->sizes && rank == 1 ? 6 : 5, "h", NULL);
    if (a->bn) h = nb_batch_norm(g, h, "bn", NULL);
    h = nb_relu(g, h);
    if (a->dropout) h = nb_dropout(g, h, (nb_real)0.4);
    nb_node out = nb_dense(g, h, 2, "out", NULL);
    nb_node loss = nb_cross_entropy(g, out, y, 0);
    nb_rng r;
    nb_rng_seed(&r, 100 + (uint64_t)rank);
    nb_graph_init(g, &r);
    nb_optim_config oc = nb_optim_defaults(NB_OPT_SGD); oc.momentum = 0.9;
    oc.lr = 0.1;
    nb_optim *opt = nb_optim_new(&oc, nb_param_count(g));
    a->status = nb_dist_broadcast_state(d, g, opt);
    if (a->status == NB_OK) a->status = nb_dist_sync_batch_norm(d, g, a->sync);
    if (a->status == NB_OK) {
        nb_fit_config cfg = nb_fit_defaults(x, y, loss, out);
        cfg.epochs = 2;
        cfg.batch_size = BATCH;
        cfg.seed = 3;
        cfg.optimizer = opt;
        cfg.dist = nb_dist_size(d) > 1 ? d : NULL;
        cfg.drop_last = a->bn && !a->keep_last; /* else a slice of 1: no variance */
        nb_data data = test_data(xs, ys, SAMPLES, 3, 1);
        nb_epoch_stats last;
        a->status = nb_fit(g, &cfg, &data, NULL, &last);
        a->train_loss = last.train_loss;
        a->train_acc = last.train_acc;
        a->n = nb_param_count(g);
        memcpy(a->params, nb_params(g), a->n * sizeof *a->params);
    }
    snprintf(a->err, sizeof a->err, "%s", nb_last_error());
    nb_optim_free(opt);
    nb_graph_free(g);
}

static void test_fit_together(void) {
    make_data();
    static fit_arg one[1], three[3], again[3];
    run_procs(1, fit_proc, one, sizeof one[0]);
    run_procs(3, fit_proc, three, sizeof three[0]);
    run_procs(3, fit_proc, again, sizeof again[0]);
    CHECKF(one[0].status == NB_OK, "%s", one[0].err);
    CHECKF(three[0].status == NB_OK, "%s", three[0].err);
    double diff = 0, scale = 0;
    for (size_t k = 0; k < one[0].n; k++) {
        diff = fmax(diff, fabs((double)one[0].params[k] - (double)three[0].params[k]));
        scale = fmax(scale, fabs((double)one[0].params[k]));
    }
    CHECKF(diff <= 1e-5 * scale, "3 processes vs 1: largest difference %g of %g", diff, scale);
    CHECKF(diff > 0, "the 3-process sums really are in another order");
    for (int r = 1; r < 3; r++)
        CHECK(memcmp(three[r].params, three[0].params, three[0].n * sizeof(nb_real)) == 0);
    CHECK(memcmp(again[0].params, three[0].params, three[0].n * sizeof(nb_real)) == 0);
    /* the statistics are the global batch's, the same on every process */
    CHECK_CLOSE(three[2].train_loss, one[0].train_loss, 0, 1e-5);
    CHECK(fabs(three[2].train_acc - one[0].train_acc) <= 1.0 / SAMPLES);
    CHECK(three[0].train_acc == three[2].train_acc && three[0].train_loss == three[1].train_loss);
}

static void test_fit_mismatch(void) {
    static fit_arg a[2];
    a[0].sizes = a[1].sizes = 1;
    run_procs(2, fit_proc, a, sizeof a[0]);
    CHECK(a[0].status == NB_ERR_ARG && a[1].status == NB_ERR_ARG);
    static fit_arg b[3];
    run_procs(3, fit_proc, b, sizeof b[0]);
    CHECKF(b[0].status == NB_OK, "%s", b[0].err);
}

/* Batch norm: per-process statistics train another model than one process
 * does; synchronised statistics train the same one (up to float order). */
static double max_rel_diff(const fit_arg *a, const fit_arg *b) {
    double diff = 0, scale = 0;
    for (size_t k = 0; k < a->n; k++) {
        diff = fmax(diff, fabs((double)a->params[k] - (double)b->params[k]));
        scale = fmax(scale, fabs((double)a->params[k]));
    }
    return diff / scale;
}

static void test_sync_batch_norm(void) {
    static fit_arg one[1], local[3], sync[3], again[3];
    one[0].bn = 1;
    for (int r = 0; r < 3; r++) {
        local[r].bn = sync[r].bn = again[r].bn = 1;
        sync[r].sync = again[r].sync = 1;
    }
    run_procs(1, fit_proc, one, sizeof one[0]);
    run_procs(3, fit_proc, local, sizeof local[0]);
    run_procs(3, fit_proc, sync, sizeof sync[0]);
    run_procs(3, fit_proc, again, sizeof again[0]);
    CHECKF(one[0].status == NB_OK && sync[0].status == NB_OK, "%s / %s", one[0].err, sync[0].err);
    double d_local = max_rel_diff(one, local), d_sync = max_rel_diff(one, sync);
    CHECKF(d_local > 1e-3, "per-process statistics differ from one process: %g", d_local);
    CHECKF(d_sync <= 1e-5, "synchronised statistics agree with one process: %g", d_sync);
    CHECK(memcmp(sync[2].params, sync[0].params, sync[0].n * sizeof(nb_real)) == 0);
    CHECK(memcmp(again[0].params, sync[0].params, sync[0].n * sizeof(nb_real)) == 0);
}

/* Dropout: each process draws, for its samples of the batch, the mask one
 * process draws for them, so 3 processes train what one does (up to the
 * order of the gradient sums), and again the same bits. */
static void test_dropout_together(void) {
    static fit_arg one[1], three[3], again[3];
    one[0].dropout = 1;
    for (int r = 0; r < 3; r++) three[r].dropout = again[r].dropout = 1;
    run_procs(1, fit_proc, one, sizeof one[0]);
    run_procs(3, fit_proc, three, sizeof three[0]);
    run_procs(3, fit_proc, again, sizeof again[0]);
    CHECKF(one[0].status == NB_OK && three[0].status == NB_OK, "%s / %s", one[0].err,
           three[0].err);
    double d = max_rel_diff(one, three);
    CHECKF(d <= 1e-5, "with dropout 3 processes agree with one: %g", d);
    CHECK(memcmp(again[0].params, three[0].params, three[0].n * sizeof(nb_real)) == 0);
}

/* A process whose forward fails (its slice of the short last batch is 1
 * sample, too few for batch norm's variance) still joins the gradient sum:
 * every process stops with an error instead of waiting forever. */
static void test_one_process_fails(void) {
    static fit_arg a[3];
    for (int r = 0; r < 3; r++) a[r].bn = a[r].keep_last = 1;
    run_procs(3, fit_proc, a, sizeof a[0]);
    CHECKF(a[0].status != NB_OK && strstr(a[0].err, "1 value per channel"), "%s", a[0].err);
    CHECKF(a[2].status == NB_ERR_NUMERIC && strstr(a[2].err, "gradient is not finite"), "%s",
           a[2].err);
}

/* With synchronised batch norm the backward has sums too: a process whose
 * forward fails (a label out of range in its slice, after the batch norm)
 * must not leave the others in the backward's batch-norm sums while it
 * waits in the gradient sum.  Every process stops at the same step, the one
 * with the bad label saying why, the others saying that another failed. */
static void test_sync_batch_norm_fails(void) {
    static fit_arg a[3];
    for (int r = 0; r < 3; r++) a[r].bn = a[r].sync = 1;
    const nb_real kept = ys[37];
    ys[37] = 7; /* two classes */
    run_procs(3, fit_proc, a, sizeof a[0]);
    ys[37] = kept;
    int bad = 0, told = 0;
    for (int r = 0; r < 3; r++) {
        CHECKF(a[r].status != NB_OK, "process %d: %s", r, a[r].err);
        bad += strstr(a[r].err, "not a class index") != NULL;
        told += a[r].status == NB_ERR_STATE && strstr(a[r].err, "another process") != NULL;
    }
    CHECKF(bad == 1 && told == 2, "%s / %s / %s", a[0].err, a[1].err, a[2].err);
}

int main(void) {
    alarm(120); /* processes waiting for each other forever fail the test */
    /* nabla's AVX-512 kernel keeps packing buffers for the life of each
     * thread that calls it (src/kernels/sgemm_avx512.c); these threads end
     * before the program, so the leak checker would count them */
    setenv("NB_GEMM", "portable", 1);
    nb_set_threads(1);
    test_sum();
    test_bad_group();
    test_fit_together();
    test_fit_mismatch();
    test_sync_batch_norm();
    test_dropout_together();
    test_one_process_fails();
    test_sync_batch_norm_fails();
    TEST_END();
}
