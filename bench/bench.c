/* nabla-bench: training throughput, inference latency and memory of the
 * bench's Fashion-MNIST models (the same layers as bench/peers/torch_train.py,
 * Adam lr 1e-3, batch 128) and of its sequence models on the word stream
 * (bench/peers/torch_seq.py: a GRU and a small transformer, Adam lr 1e-3,
 * batch 32, context 16), plus a 2048^3 sgemm with OpenBLAS and with the
 * kernel nabla runs, as the ceiling the matrix products could reach.
 *
 *   nabla-bench [--model NAME[,NAME...]|all|none] [--threads N] [--batches N]
 *               [--latency-runs N] [--save-weights DIR] [--no-sgemm]
 *               [--precision fp32|bf16] [--op-times]
 *   nabla-bench --print-model NAME     the model's text (for nabla export)
 *
 * NAME: mlp, mlp-wide, cnn, cnn-bn, gru, transformer; none: the sgemm alone.
 * --save-weights DIR writes each model's trained weights to DIR/NAME.safetensors.
 * --op-times prints where a training step's time goes: each op's forward and
 * backward (nb_graph_time_ops), the batch's conversion and the optimiser.
 * Each model runs in its own child process so that its peak RSS is its own.
 * NB_GEMM=openblas (or portable) runs every product with that kernel. */
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
char *openblas_get_corename(void);
char *openblas_get_config(void);
#endif

#define BATCH 128     /* the image models */
#define SEQ_BATCH 32  /* the sequence models: 32 windows of CONTEXT tokens */
#define CONTEXT 16
#define VOCAB 27      /* the word stream's ids: 0 the boundary, 1..26 a..z */
#define WARMUP_BATCHES 5
#define MAX_LATENCY_RUNS 100000

static int latency_runs = 2000;
static const char *weights_dir; /* --save-weights: where the trained weights go */
static int op_times;            /* --op-times: print each op's share of a step    */

/* Same layers, in the same order, as the models of bench/peers/torch_train.py
 * and jax_train.py (images), torch_seq.py and jax_seq.py (tokens: the GRU is
 * models/words_gru.nn and the transformer models/words_transformer.nn at
 * context 16). */
static const struct {
    const char *name;
    const char *text;
    int tokens; /* 1: trained on the word stream, next-token loss at every position */
} models[] = {
    {"mlp", "input 1 28 28\nflatten\ndense 256\nrelu\ndense 128\nrelu\ndense 10\n"
            "loss cross_entropy\n", 0},
    {"mlp-wide", "input 1 28 28\nflatten\ndense 1024\nrelu\ndense 1024\nrelu\ndense 10\n"
                 "loss cross_entropy\n", 0},
    {"cnn", "input 1 28 28\nconv 32 3\nrelu\nmaxpool 2\nconv 64 3\nrelu\nmaxpool 2\n"
            "flatten\ndense 128\nrelu\ndense 10\nloss cross_entropy\n", 0},
    /* models/fashion_cnn.nn: batch norm and dropout, the course's CNN */
    {"cnn-bn", "input 1 28 28\nconv 32 3 padding=1 bias=false\nbatchnorm\nrelu\nmaxpool 2\n"
               "conv 64 3 padding=1 bias=false\nbatchnorm\nrelu\nmaxpool 2\nflatten\n"
               "dropout 0.3\ndense 128\nrelu\ndropout 0.3\ndense 10\nloss cross_entropy\n", 0},
    {"gru", "input 16 tokens=27\nembedding 16\ngru 64\ndense 27\nloss cross_entropy\n", 1},
    {"transformer",
     "input 16 tokens=27\ntok = embedding 32\nx0 = pos_embedding\n"
     "ln1 = layernorm\nattn1 = attention 4 causal=true\nx1 = add @x0\n"
     "ln2 = layernorm\nup1 = dense 128\nact1 = gelu\ndown1 = dense 32\nx2 = add @x1\n"
     "ln3 = layernorm\nattn2 = attention 4 causal=true\nx3 = add @x2\n"
     "ln4 = layernorm\nup2 = dense 128\nact2 = gelu\ndown2 = dense 32\nx4 = add @x3\n"
     "lnf = layernorm\nhead = dense 27\nloss cross_entropy\n", 1},
};
#define N_MODELS (int)(sizeof models / sizeof models[0])

typedef struct result {
    int ok;
    int threads;
    int batch;
    size_t params;
    double samples_per_s;
    double tokens_per_s; /* sequence models: samples/s x the context */
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
 * (as many FLOPs as its forward) and, except for the first layer of an image
 * model, whose input is the data, the input gradient (as many again); a
 * recurrent layer's or attention's backward makes two products for each of
 * its forward ones; other ops are counted once more for their backward.
 * (The usual "3 x forward" would overstate the MLPs by up to a third.) */
static double training_flops(const nb_graph *g, int tokens) {
    double f = 0;
    int seen_layer = tokens; /* after an embedding, the first layer's input needs its gradient */
    for (int i = 0; i < nb_graph_node_count(g); i++) {
        const char *op = nb_node_op(g, i);
        double fwd = nb_node_flops(g, i);
        if (!strcmp(op, "linear") || !strcmp(op, "conv2d")) {
            f += fwd * (seen_layer ? 3 : 2);
            seen_layer = 1;
        } else if (!strcmp(op, "gru") || !strcmp(op, "lstm") || !strcmp(op, "rnn") ||
                   !strcmp(op, "attention")) {
            f += fwd * 3;
        } else {
            f += fwd * 2;
        }
    }
    return f;
}

/* The trained weights as DIR/NAME.safetensors, for nabla export. */
static nb_status save_weights(const nb_graph *g, const char *name, int tokens) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s.safetensors", weights_dir, name) >= (int)sizeof path)
        return nb_set_error(NB_ERR_ARG, "--save-weights %s: path too long", weights_dir);
    nb_kv meta = {"data.input", tokens ? "raw" : "bytes/255"};
    return nb_save_weights(g, path, &meta, 1);
}

static nb_precision precision = NB_PRECISION_FP32; /* --precision */

/* The word stream of the sequence models, as bench/peers/words.py builds it:
 * the lowercase words (lines of a-z only) of NB_WORDS (default Debian's
 * /usr/share/dict/words), in file order, each followed by the boundary 0,
 * after a first boundary; a..z are 1..26.  Window i is x = s[16 i .. 16 i + 15],
 * y = s[16 i + 1 .. 16 i + 16]. */
typedef struct word_stream {
    unsigned char *ids;
    size_t n, windows;
} word_stream;

static int load_words(word_stream *s, result *r) {
    const char *path = getenv("NB_WORDS") ? getenv("NB_WORDS") : "/usr/share/dict/words";
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(r->error, sizeof r->error, "data: cannot open %s (apt-get install wamerican)", path);
        return 1;
    }
    size_t cap = 1 << 20;
    s->ids = malloc(cap);
    s->n = 0;
    char line[256];
    while (s->ids && fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\r\n"), k = 0;
        while (k < len && line[k] >= 'a' && line[k] <= 'z') k++;
        if (len == 0 || k < len || len + 2 >= sizeof line - 1) continue;
        if (s->n + len + 2 > cap) {
            unsigned char *more = realloc(s->ids, cap *= 2);
            if (!more) { free(s->ids); s->ids = NULL; break; }
            s->ids = more;
        }
        if (s->n == 0) s->ids[s->n++] = 0;
        for (k = 0; k < len; k++) s->ids[s->n++] = (unsigned char)(line[k] - 'a' + 1);
        s->ids[s->n++] = 0;
    }
    fclose(f);
    s->windows = s->n > 0 ? (s->n - 1) / CONTEXT : 0;
    if (!s->ids || s->windows < SEQ_BATCH) {
        snprintf(r->error, sizeof r->error, "data: %s: %s", path,
                 s->ids ? "too few lowercase words" : "out of memory");
        return 1;
    }
    return 0;
}

/* Batch b of the stream: windows b B .. b B + B - 1 (wrapping around), as
 * reals, the targets shifted by one. */
static void words_batch(const word_stream *s, size_t b, nb_real *x, nb_real *y) {
    for (size_t i = 0; i < SEQ_BATCH; i++) {
        const unsigned char *w = s->ids + ((b * SEQ_BATCH + i) % s->windows) * CONTEXT;
        for (int t = 0; t < CONTEXT; t++) {
            x[i * CONTEXT + (size_t)t] = (nb_real)w[t];
            y[i * CONTEXT + (size_t)t] = (nb_real)w[t + 1];
        }
    }
}

/* --op-times: the seconds of the timed steps outside the graph. */
typedef struct step_times {
    double batch, optim;
} step_times;

/* Microseconds a step: each op that took any time, then the rest. */
static void print_op_times(const nb_graph *g, const char *model, int steps, double total,
                           const step_times *st) {
    double per = 1e6 / steps, ops = 0;
    printf("OP_TIMES model=%s threads=%d: microseconds a step (%d steps)\n", model, nb_threads(),
           steps);
    printf("  %-4s %-24s %-16s %10s %10s\n", "node", "name", "op", "forward", "backward");
    for (nb_node n = 0; n < nb_graph_node_count(g); n++) {
        double f = 0, b = 0;
        if (nb_node_times(g, n, &f, &b) != NB_OK || f + b == 0) continue;
        const char *name = nb_node_name(g, n);
        printf("  %-4d %-24s %-16s %10.1f %10.1f\n", n, name ? name : "", nb_node_op(g, n),
               f * per, b * per);
        ops += f + b;
    }
    printf("  batch conversion %.1f, optimiser %.1f, ops %.1f, the rest %.1f: step %.1f\n",
           st->batch * per, st->optim * per, ops * per,
           (total - st->batch - st->optim - ops) * per, total * per);
}

/* Train one model for `batches` timed batches and time batch-1 inference. */
static int run_model(int which, int threads, int batches, result *r) {
    int rc = 1, tokens = models[which].tokens;
    int B = tokens ? SEQ_BATCH : BATCH;
    nb_data d;
    word_stream ws = {0};
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
    if (tokens) {
        if (load_words(&ws, r) != 0) goto done;
    } else {
        if (nb_data_load("fashion-mnist", "train", NULL, &d) != NB_OK) return fail(r, "data");
        if (nb_data_scale_unit(&d) != NB_OK) { fail(r, "scale"); goto done; }
    }
    if (nb_model_parse(models[which].text, models[which].name, &m) != NB_OK) {
        fail(r, "model");
        goto done;
    }
    nb_graph *g = m.graph;
    if (nb_graph_set_precision(g, precision) != NB_OK) { fail(r, "precision"); goto done; }
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    if (nb_graph_init(g, &rng) != NB_OK) { fail(r, "init"); goto done; }
    nb_optim_config oc = nb_optim_defaults(NB_OPT_ADAM);
    oc.lr = 1e-3;
    opt = nb_optim_new(&oc, nb_param_count(g));
    size_t in_size = tokens ? CONTEXT : d.sample_size, out_size = tokens ? CONTEXT : 1;
    idx = malloc((tokens ? 1 : d.n) * sizeof *idx);
    x = malloc((size_t)B * in_size * sizeof *x);
    y = malloc((size_t)B * out_size * sizeof *y);
    lat = malloc((size_t)latency_runs * sizeof *lat);
    if (!opt || !idx || !x || !y || !lat) { fail(r, "out of memory"); goto done; }
    if (!tokens) {
        for (size_t i = 0; i < d.n; i++) idx[i] = i;
        nb_rng_shuffle(&rng, idx, d.n);
    }
    if (nb_graph_set_batch(g, B) != NB_OK) { fail(r, "batch"); goto done; }
    r->params = nb_param_count(g);
    r->flops_per_sample = training_flops(g, tokens) / B;

    /* Training steps, as the peer scripts' loop: gather and convert the batch,
     * forward, backward, Adam step.  Full batches only, wrapping around. */
    size_t per_epoch = tokens ? 1 : d.n / BATCH;
    double t0 = 0;
    step_times st = {0};
    for (int b = 0; b < WARMUP_BATCHES + batches; b++) {
        if (b == WARMUP_BATCHES) {
            if (op_times && nb_graph_time_ops(g, 1) != NB_OK) { fail(r, "op times"); goto done; }
            t0 = now();
        }
        const int timed = op_times && b >= WARMUP_BATCHES;
        double started = timed ? now() : 0;
        if (tokens)
            words_batch(&ws, (size_t)b, x, y);
        else if (nb_data_batch(&d, idx, ((size_t)b % per_epoch) * BATCH, BATCH,
                               nb_value(g, m.input), y) != NB_OK) {
            fail(r, "batch");
            goto done;
        }
        if ((tokens && nb_set_input(g, m.input, x, B) != NB_OK) ||
            nb_set_input(g, m.target, y, B) != NB_OK) {
            fail(r, "batch");
            goto done;
        }
        if (timed) st.batch += now() - started;
        /* the peers' zero_grad(set_to_none=True): no pass of zeros first */
        if (nb_forward(g, m.loss) != NB_OK || nb_backward_zeroed(g, m.loss) != NB_OK) {
            fail(r, "train step");
            goto done;
        }
        if (timed) started = now();
        if (nb_optim_step(opt, nb_params(g), nb_grads(g), oc.lr) != NB_OK) {
            fail(r, "optimiser");
            goto done;
        }
        if (timed) st.optim += now() - started;
    }
    double dt = now() - t0;
    if (op_times) { /* and off for the latency below */
        print_op_times(g, models[which].name, batches, dt, &st);
        nb_graph_time_ops(g, 0);
    }
    r->final_loss = (double)nb_value(g, m.loss)[0];
    r->batch = B;
    r->samples_per_s = (double)batches * B / dt;
    r->tokens_per_s = tokens ? r->samples_per_s * CONTEXT : 0;
    r->gflops = r->flops_per_sample * r->samples_per_s * 1e-9;
    if (weights_dir && save_weights(g, models[which].name, tokens) != NB_OK) {
        fail(r, "save weights");
        goto done;
    }

    /* Batch-1 inference: the forward pass to the scores, in eval mode, on
     * the first sample of the last batch. */
    if (!tokens) memcpy(x, nb_value(g, m.input), in_size * sizeof *x);
    nb_graph_set_training(g, 0);
    if (nb_set_input(g, m.input, x, 1) != NB_OK) { fail(r, "latency input"); goto done; }
    for (int i = 0; i < 50; i++) nb_forward(g, m.output);
    for (int i = 0; i < latency_runs; i++) {
        double s = now();
        if (nb_forward(g, m.output) != NB_OK) { fail(r, "latency forward"); goto done; }
        lat[i] = now() - s;
    }
    qsort(lat, (size_t)latency_runs, sizeof *lat, cmp_double);
    r->latency_us = 1e6 * 0.5 * (lat[(latency_runs - 1) / 2] + lat[latency_runs / 2]);
    r->ok = 1;
    rc = 0;
done:
    free(lat);
    free(x);
    free(y);
    free(idx);
    free(ws.ids);
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
        fflush(stdout); /* --op-times printed here; _exit does not flush */
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

/* The best of three timed products (after one to warm up), in GFLOP/s.
 * which 0: OpenBLAS threading the product itself, with as many threads as
 * nabla's; 1: nb_gemm, with the kernel nabla runs. */
static double time_sgemm(int which, int n, const float *a, const float *b, float *c) {
    double best = 1e30;
    for (int rep = 0; rep < 4; rep++) {
        double s = now();
#ifdef NB_BENCH_CBLAS
        if (which == 0) {
            openblas_set_num_threads(nb_threads());
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n,
                        0.0f, c, n);
        } else
#endif
            nb_gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = now() - s;
        if (rep > 0 && dt < best) best = dt;
    }
    (void)which;
    return 2.0 * n * (double)n * n / best * 1e-9;
}

/* Largest error of 256 entries of C = A B (n x n) against double-precision
 * dot products, relative to the largest of them: a kernel that computes
 * wrong results on this CPU shows here. */
static double sampled_error(int n, const float *a, const float *b, const float *c) {
    double err = 0, top = 0;
    for (int k = 0; k < 256; k++) {
        size_t i = ((size_t)k * 7919) % (size_t)n, j = ((size_t)k * 104729 + 13) % (size_t)n;
        double ref = 0;
        for (int p = 0; p < n; p++) ref += (double)a[i * n + p] * b[(size_t)p * n + j];
        double d = c[i * n + j] - ref;
        if ((d < 0 ? -d : d) > err) err = d < 0 ? -d : d;
        if ((ref < 0 ? -ref : ref) > top) top = ref < 0 ? -ref : ref;
    }
    return top > 0 ? err / top : err;
}

/* 2048^3 single-precision products: OpenBLAS's own (the ceiling of its
 * kernels on this machine) and the one nabla runs (nb_gemm). */
static void sgemm_bench(int threads) {
    const int n = 2048;
    const size_t nn = (size_t)n * n;
    if (threads > 0) nb_set_threads(threads);
    float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b);
    float *c[2] = {malloc(nn * sizeof(float)), malloc(nn * sizeof(float))};
    if (!a || !b || !c[0] || !c[1]) {
        printf("sgemm: out of memory\n");
        free(a), free(b), free(c[0]), free(c[1]);
        return;
    }
    for (size_t i = 0; i < nn; i++) {
        a[i] = (float)((i * 7) % 13) * 0.1f;
        b[i] = (float)((i * 5) % 11) * 0.1f;
    }
#ifdef NB_BENCH_CBLAS
    double ogf = time_sgemm(0, n, a, b, c[0]);
    printf("RESULT sgemm kernel=openblas n=%d threads=%d gflops=%.1f core=OpenBLAS-%s "
           "max_rel_err=%.1e\n", n, nb_threads(), ogf, openblas_get_corename(),
           sampled_error(n, a, b, c[0]));
#else
    printf("sgemm: nabla-bench built without OpenBLAS\n");
#endif
    double gf = time_sgemm(1, n, a, b, c[1]);
    printf("RESULT sgemm kernel=nabla n=%d threads=%d gflops=%.1f max_rel_err=%.1e core=\"%s\"\n",
           n, nb_threads(), gf, sampled_error(n, a, b, c[1]), nb_blas_core());
    for (int k = NB__BF16_AMX; precision == NB_PRECISION_BF16 && k > NB__BF16_NONE; k--) {
        nb__bf16_use(k); /* --precision bf16: each bf16 kernel the CPU has */
        if (nb__bf16_kernel() != k) continue;
        double best = 1e30;
        for (int rep = 0; rep < 4; rep++) {
            double s = now();
            nb__gemm_bf16(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c[1], n);
            double dt = now() - s;
            if (rep > 0 && dt < best) best = dt;
        }
        printf("RESULT bf16gemm kernel=%s n=%d threads=%d gflops=%.1f\n", nb__bf16_kernel_name(),
               n, nb_threads(), 2.0 * n * (double)n * n / best * 1e-9);
    }
    free(a), free(b), free(c[0]), free(c[1]);
}

/* Which matrix kernels this run uses, for the bench's report. */
static void print_kernels(void) {
    const char *env = getenv("NB_GEMM");
    printf("KERNELS nabla: float products: %s (NB_GEMM=%s)\n", nb_blas_core(),
           env ? env : "unset");
#ifdef NB_BENCH_CBLAS
    const char *ct = getenv("OPENBLAS_CORETYPE"), *l2 = getenv("OPENBLAS_L2_SIZE");
    printf("KERNELS nabla: OpenBLAS core %s (OPENBLAS_CORETYPE=%s, OPENBLAS_L2_SIZE=%s)\n",
           openblas_get_corename(), ct ? ct : "unset", l2 ? l2 : "unset");
    printf("KERNELS nabla: OpenBLAS config: %s\n", openblas_get_config());
    const char *slow = nb_blas_warning();
    if (slow) printf("KERNELS nabla: warning: %s\n", slow);
#endif
}

static int print_model(const char *name) {
    for (int k = 0; k < N_MODELS; k++)
        if (!strcmp(name, models[k].name)) {
            fputs(models[k].text, stdout);
            return 0;
        }
    fprintf(stderr, "nabla-bench: --print-model: unknown model '%s'\n", name);
    return 2;
}

/* Whether --model LIST (names separated by commas, "all", or "none": the
 * sgemm alone) names this model. */
static int selected(const char *list, const char *name) {
    if (!strcmp(list, "all")) return 1;
    if (!strcmp(list, "none")) return 0;
    size_t n = strlen(name);
    for (const char *p = list;;) {
        size_t len = strcspn(p, ",");
        if (len == n && !strncmp(p, name, n)) return 1;
        if (!p[len]) return 0;
        p += len + 1;
    }
}

/* The first name of LIST that is no model, or NULL: printed in *bad. */
static int unknown_model(const char *list, char *bad, size_t size) {
    if (!strcmp(list, "all") || !strcmp(list, "none")) return 0;
    for (const char *p = list;;) {
        size_t len = strcspn(p, ","), k = 0;
        while (k < N_MODELS && (strlen(models[k].name) != len || strncmp(p, models[k].name, len))) k++;
        if (k == N_MODELS) {
            snprintf(bad, size, "%.*s", (int)len, p);
            return 1;
        }
        if (!p[len]) return 0;
        p += len + 1;
    }
}

static void usage(void) {
    fprintf(stderr, "usage: nabla-bench [--model mlp|mlp-wide|cnn|cnn-bn|gru|transformer|all|none|"
                    "A,B,...]\n"
                    "                   [--threads N] [--batches N] [--latency-runs N]\n"
                    "                   [--save-weights DIR] [--no-sgemm]\n"
                    "                   [--precision fp32|bf16] [--op-times]\n"
                    "       nabla-bench --print-model mlp|mlp-wide|cnn|cnn-bn|gru|transformer\n");
}

/* The table of the models that ran. */
static void summary(int batches, const result *res, const double *rss, const int *ran) {
    printf("\n%-11s %7s %12s %9s %12s %11s %11s\n", "model", "threads", "samples/s", "GFLOP/s",
           "MFLOP/sample", "latency_us", "peak_rss_MB");
    for (int k = 0; k < N_MODELS; k++)
        if (ran[k])
            printf("%-11s %7d %12.0f %9.2f %12.2f %11.1f %11.1f\n", models[k].name,
                   res[k].threads, res[k].samples_per_s, res[k].gflops,
                   res[k].flops_per_sample * 1e-6, res[k].latency_us, rss[k]);
    printf("(training FLOPs: forward + weight gradients + input gradients past the first "
           "layer;\n batch %d (sequences: %d of %d tokens), %d timed batches after %d warm-up; "
           "matrix kernels: %s)\n", BATCH, SEQ_BATCH, CONTEXT, batches, WARMUP_BATCHES,
           nb_blas_core());
}

int main(int argc, char **argv) {
    const char *model = "all";
    int threads = 0, batches = 200, sgemm = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--no-sgemm")) { sgemm = 0; continue; }
        if (!strcmp(a, "--op-times")) { op_times = 1; continue; }
        if (i + 1 >= argc) { usage(); return 2; }
        if (!strcmp(a, "--print-model")) return print_model(argv[i + 1]);
        if (!strcmp(a, "--model")) model = argv[++i];
        else if (!strcmp(a, "--threads")) threads = atoi(argv[++i]);
        else if (!strcmp(a, "--batches")) batches = atoi(argv[++i]);
        else if (!strcmp(a, "--latency-runs")) latency_runs = atoi(argv[++i]);
        else if (!strcmp(a, "--save-weights")) weights_dir = argv[++i];
        else if (!strcmp(a, "--precision")) {
            if (nb_precision_parse(argv[++i], &precision) != NB_OK) { usage(); return 2; }
        }
        else { usage(); return 2; }
    }
    if (batches < 1 || threads < 0 || latency_runs < 1 || latency_runs > MAX_LATENCY_RUNS) {
        usage();
        return 2;
    }
    char bad[64];
    if (unknown_model(model, bad, sizeof bad)) {
        fprintf(stderr, "nabla-bench: unknown model '%s'\n", bad);
        usage();
        return 2;
    }
    print_kernels();
    int any = 0, failed = 0;
    result res[N_MODELS];
    double rss[N_MODELS];
    int ran[N_MODELS] = {0};
    for (int k = 0; k < N_MODELS; k++) {
        if (!selected(model, models[k].name)) continue;
        any = 1;
        ran[k] = 1;
        if (run_child(k, threads, batches, &res[k], &rss[k]) != 0) {
            fprintf(stderr, "nabla-bench: %s: %s\n", models[k].name,
                    res[k].error[0] ? res[k].error : "failed");
            failed = 1;
            ran[k] = 0;
            continue;
        }
        printf("RESULT model=%s threads=%d batch=%d batches=%d samples_per_s=%.0f ",
               models[k].name, res[k].threads, res[k].batch, batches, res[k].samples_per_s);
        if (models[k].tokens)
            printf("tokens_per_s=%.0f context=%d ", res[k].tokens_per_s, CONTEXT);
        printf("gflops=%.2f latency_us=%.1f peak_rss_mb=%.1f loss=%.4f params=%zu\n",
               res[k].gflops, res[k].latency_us, rss[k], res[k].final_loss, res[k].params);
        fflush(stdout);
    }
    if (!any && strcmp(model, "none") != 0) {
        fprintf(stderr, "nabla-bench: unknown model '%s'\n", model);
        usage();
        return 2;
    }
    if (!any && !sgemm) return 0;
    if (any) summary(batches, res, rss, ran);
    if (sgemm) sgemm_bench(threads);
    return failed;
}
