/* nabla-bench: training throughput, inference latency and memory of the
 * reference Fashion-MNIST models of ../shared/bench/torch_fmnist.py (same
 * layers, Adam lr 1e-3, batch 128), plus OpenBLAS's own sgemm speed as the
 * ceiling the matrix products could reach on this machine.
 *
 *   nabla-bench [--model mlp|mlp-wide|cnn|all] [--threads N] [--batches N]
 *
 * Each model runs in its own child process so that its peak RSS is its own. */
#define _DEFAULT_SOURCE /* wait4, struct rusage */
#include <nabla.h>

#include "kernels/gemm.h" /* nb_gemm: the product nabla runs */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#ifdef NB_BENCH_CBLAS
#include <cblas.h>
void openblas_set_num_threads(int num_threads);
#endif

#define BATCH 128
#define WARMUP_BATCHES 5
#define LATENCY_RUNS 2000

/* Same layers, in the same order, as the nn.Sequential models of torch_fmnist.py. */
static const struct {
    const char *name;
    const char *text;
} models[] = {
    {"mlp", "input 1 28 28\nflatten\ndense 256\nrelu\ndense 128\nrelu\ndense 10\n"
            "loss cross_entropy\n"},
    {"mlp-wide", "input 1 28 28\nflatten\ndense 1024\nrelu\ndense 1024\nrelu\ndense 10\n"
                 "loss cross_entropy\n"},
    {"cnn", "input 1 28 28\nconv 32 3\nrelu\nmaxpool 2\nconv 64 3\nrelu\nmaxpool 2\n"
            "flatten\ndense 128\nrelu\ndense 10\nloss cross_entropy\n"},
};
#define N_MODELS (int)(sizeof models / sizeof models[0])

typedef struct result {
    int ok;
    int threads;
    double samples_per_s;
    double gflops;
    double latency_us;
    double flops_per_sample; /* of a training step (training_flops) */
    double final_loss;
    char error[200];
} result;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int fail(result *r, const char *what) {
    snprintf(r->error, sizeof r->error, "%s: %s", what, nb_last_error());
    return 1;
}

/* FLOPs of one training step at the current batch size: forward, plus the
 * backward products — for a dense or convolution layer the weight gradient
 * (as many FLOPs as its forward) and, except for the first layer, whose
 * input is the data, the input gradient (as many again); other ops are
 * counted once more for their backward.  (The usual "3 x forward" would
 * overstate these models by up to a third.) */
static double training_flops(const nb_graph *g) {
    double f = 0;
    int seen_layer = 0;
    for (int i = 0; i < nb_graph_node_count(g); i++) {
        const char *op = nb_node_op(g, i);
        double fwd = nb_node_flops(g, i);
        if (!strcmp(op, "linear") || !strcmp(op, "conv2d")) {
            f += fwd * (seen_layer ? 3 : 2);
            seen_layer = 1;
        } else {
            f += fwd * 2;
        }
    }
    return f;
}

/* Train one model for `batches` timed batches and time batch-1 inference. */
static int run_model(int which, int threads, int batches, result *r) {
    int rc = 1;
    nb_data d;
    nb_model m;
    nb_optim *opt = NULL;
    size_t *idx = NULL;
    nb_real *x = NULL, *y = NULL;
    double *lat = NULL;
    memset(&d, 0, sizeof d);
    memset(&m, 0, sizeof m);
    memset(r, 0, sizeof *r);

    if (threads > 0 && nb_set_threads(threads) != NB_OK) return fail(r, "threads");
    r->threads = nb_threads();
    if (nb_data_load("fashion-mnist", "train", NULL, &d) != NB_OK) return fail(r, "data");
    if (nb_data_scale_unit(&d) != NB_OK) { fail(r, "scale"); goto done; }
    if (nb_model_parse(models[which].text, models[which].name, &m) != NB_OK) {
        fail(r, "model");
        goto done;
    }
    nb_graph *g = m.graph;
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    if (nb_graph_init(g, &rng) != NB_OK) { fail(r, "init"); goto done; }
    nb_optim_config oc = nb_optim_defaults(NB_OPT_ADAM);
    oc.lr = 1e-3;
    opt = nb_optim_new(&oc, nb_param_count(g));
    idx = malloc(d.n * sizeof *idx);
    x = malloc((size_t)BATCH * d.sample_size * sizeof *x);
    y = malloc((size_t)BATCH * sizeof *y);
    lat = malloc(LATENCY_RUNS * sizeof *lat);
    if (!opt || !idx || !x || !y || !lat) { fail(r, "out of memory"); goto done; }
    for (size_t i = 0; i < d.n; i++) idx[i] = i;
    nb_rng_shuffle(&rng, idx, d.n);
    if (nb_graph_set_batch(g, BATCH) != NB_OK) { fail(r, "batch"); goto done; }
    r->flops_per_sample = training_flops(g) / BATCH;

    /* Training steps, as torch_fmnist.py's loop: gather and convert the batch,
     * forward, backward, Adam step.  Full batches only, wrapping around. */
    size_t per_epoch = d.n / BATCH;
    double t0 = 0;
    for (int b = 0; b < WARMUP_BATCHES + batches; b++) {
        if (b == WARMUP_BATCHES) t0 = now();
        size_t start = ((size_t)b % per_epoch) * BATCH;
        if (nb_data_batch(&d, idx, start, BATCH, x, y) != NB_OK ||
            nb_set_input(g, m.input, x, BATCH) != NB_OK ||
            nb_set_input(g, m.target, y, BATCH) != NB_OK) {
            fail(r, "batch");
            goto done;
        }
        nb_zero_grad(g);
        if (nb_forward(g, m.loss) != NB_OK || nb_backward(g, m.loss) != NB_OK) {
            fail(r, "train step");
            goto done;
        }
        if (nb_optim_step(opt, nb_params(g), nb_grads(g), oc.lr) != NB_OK) {
            fail(r, "optimiser");
            goto done;
        }
    }
    double dt = now() - t0;
    r->final_loss = (double)nb_value(g, m.loss)[0];
    r->samples_per_s = (double)batches * BATCH / dt;
    r->gflops = r->flops_per_sample * r->samples_per_s * 1e-9;

    /* Batch-1 inference: the forward pass to the scores, in eval mode. */
    nb_graph_set_training(g, 0);
    if (nb_set_input(g, m.input, x, 1) != NB_OK) { fail(r, "latency input"); goto done; }
    for (int i = 0; i < 50; i++) nb_forward(g, m.output);
    for (int i = 0; i < LATENCY_RUNS; i++) {
        double s = now();
        if (nb_forward(g, m.output) != NB_OK) { fail(r, "latency forward"); goto done; }
        lat[i] = now() - s;
    }
    qsort(lat, LATENCY_RUNS, sizeof *lat, cmp_double);
    r->latency_us = 1e6 * 0.5 * (lat[LATENCY_RUNS / 2 - 1] + lat[LATENCY_RUNS / 2]);
    r->ok = 1;
    rc = 0;
done:
    free(lat);
    free(x);
    free(y);
    free(idx);
    nb_optim_free(opt);
    if (m.graph) nb_model_free(&m);
    nb_data_free(&d);
    return rc;
}

/* Run one model in a child; its result comes back through a pipe and its
 * peak RSS from wait4. */
static int run_child(int which, int threads, int batches, result *r, double *rss_mb) {
    int fd[2];
    if (pipe(fd) != 0) return 1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        close(fd[0]);
        result res;
        run_model(which, threads, batches, &res);
        ssize_t w = write(fd[1], &res, sizeof res);
        close(fd[1]);
        _exit(w == (ssize_t)sizeof res ? 0 : 1);
    }
    close(fd[1]);
    memset(r, 0, sizeof *r);
    ssize_t got = read(fd[0], r, sizeof *r);
    close(fd[0]);
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid) return 1;
    *rss_mb = (double)ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
    if (got != (ssize_t)sizeof *r || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (got != (ssize_t)sizeof *r) snprintf(r->error, sizeof r->error, "child crashed");
        r->ok = 0;
    }
    return r->ok ? 0 : 1;
}

/* 2048^3 single-precision products: OpenBLAS's (the ceiling the issue's
 * figures are measured against) and the one nabla uses (nb_gemm). */
static void sgemm_bench(int threads) {
    const int n = 2048;
    if (threads > 0) nb_set_threads(threads);
    float *a = malloc((size_t)n * n * sizeof *a), *b = malloc((size_t)n * n * sizeof *b),
          *c = malloc((size_t)n * n * sizeof *c);
    if (!a || !b || !c) {
        printf("sgemm: out of memory\n");
        free(a), free(b), free(c);
        return;
    }
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)((i * 7) % 13) * 0.1f;
        b[i] = (float)((i * 5) % 11) * 0.1f;
    }
    for (int which = 0; which < 2; which++) {
        /* nabla runs OpenBLAS on one thread per tile; the ceiling is OpenBLAS
         * threading one product itself */
        nb__gemm_use(which == 0 ? NB__GEMM_OPENBLAS : NB__GEMM_AVX512);
#ifndef NB_BENCH_CBLAS
        if (which == 0) {
            printf("sgemm: nabla built without OpenBLAS\n");
            continue;
        }
#endif
        double best = 1e30;
        for (int rep = 0; rep < 4; rep++) { /* the first one warms up */
            double s = now();
#ifdef NB_BENCH_CBLAS
            if (which == 0) { /* OpenBLAS's own threads, as many as nabla's */
                openblas_set_num_threads(nb_threads());
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n,
                            0.0f, c, n);
            } else
#endif
                nb_gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
            double dt = now() - s;
            if (rep > 0 && dt < best) best = dt;
        }
        double gf = 2.0 * n * (double)n * n / best * 1e-9;
        printf("RESULT sgemm kernel=%s n=%d threads=%d gflops=%.1f core=%s\n",
               which == 0 ? "openblas" : "nabla", n, nb_threads(), gf, nb_blas_core());
    }
    free(a), free(b), free(c);
}

static void usage(void) {
    fprintf(stderr, "usage: nabla-bench [--model mlp|mlp-wide|cnn|all] [--threads N] "
                    "[--batches N] [--no-sgemm]\n");
}

int main(int argc, char **argv) {
    const char *model = "all";
    int threads = 0, batches = 200, sgemm = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--no-sgemm")) { sgemm = 0; continue; }
        if (i + 1 >= argc) { usage(); return 2; }
        if (!strcmp(a, "--model")) model = argv[++i];
        else if (!strcmp(a, "--threads")) threads = atoi(argv[++i]);
        else if (!strcmp(a, "--batches")) batches = atoi(argv[++i]);
        else { usage(); return 2; }
    }
    if (batches < 1 || threads < 0) { usage(); return 2; }
    int any = 0, failed = 0;
    result res[N_MODELS];
    double rss[N_MODELS];
    int ran[N_MODELS] = {0};
    for (int k = 0; k < N_MODELS; k++) {
        if (strcmp(model, "all") && strcmp(model, models[k].name)) continue;
        any = 1;
        ran[k] = 1;
        if (run_child(k, threads, batches, &res[k], &rss[k]) != 0) {
            fprintf(stderr, "nabla-bench: %s: %s\n", models[k].name,
                    res[k].error[0] ? res[k].error : "failed");
            failed = 1;
            ran[k] = 0;
            continue;
        }
        printf("RESULT model=%s threads=%d batch=%d batches=%d samples_per_s=%.0f gflops=%.2f "
               "latency_us=%.1f peak_rss_mb=%.1f loss=%.4f\n",
               models[k].name, res[k].threads, BATCH, batches, res[k].samples_per_s,
               res[k].gflops, res[k].latency_us, rss[k], res[k].final_loss);
        fflush(stdout);
    }
    if (!any) {
        fprintf(stderr, "nabla-bench: unknown model '%s'\n", model);
        usage();
        return 2;
    }
    printf("\n%-9s %7s %12s %9s %12s %11s %11s\n", "model", "threads", "samples/s", "GFLOP/s",
           "MFLOP/sample", "latency_us", "peak_rss_MB");
    for (int k = 0; k < N_MODELS; k++)
        if (ran[k])
            printf("%-9s %7d %12.0f %9.2f %12.2f %11.1f %11.1f\n", models[k].name,
                   res[k].threads, res[k].samples_per_s, res[k].gflops,
                   res[k].flops_per_sample * 1e-6, res[k].latency_us, rss[k]);
    printf("(training FLOPs: forward + weight gradients + input gradients past the first "
           "layer;\n batch %d, %d timed batches after %d warm-up; matrix kernels: %s)\n", BATCH,
           batches, WARMUP_BATCHES, nb_blas_core());
    if (sgemm) sgemm_bench(threads);
    return failed;
}
