/* Training in bf16 (nb_graph_set_precision): a few Adam steps of a small MLP
 * and a small CNN stay close to the same steps in fp32 but are not the same
 * bits (the products really are bf16), give the same bits twice (and, for
 * the MLP, on 1 and 2 threads).  Where no bf16
 * kernel runs (simulated here with nb__bf16_use), asking for bf16 is a clear
 * error; a checkpoint resumes only in its own precision. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include "nabla.h"
#include "test.h"
#include "kernels/gemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 32
#define STEPS 6

static const char *mlp =
    "input 1 12 12\nflatten\ndense 96\nrelu\ndense 64\nrelu\ndense 10\nloss cross_entropy\n";
static const char *cnn = "input 2 12 12\nconv 8 3\nrelu\nmaxpool 2\nconv 16 3 padding=1\nrelu\n"
                         "flatten\ndense 10\nloss cross_entropy\n";

typedef struct run {
    float *grads; /* of the first step */
    float *params;
    size_t n;
    double loss[STEPS];
} run;

/* STEPS Adam steps on fixed random batches from the same initial weights. */
static int train(const char *text, nb_precision precision, int threads, run *out) {
    nb_model m;
    memset(out, 0, sizeof *out);
    nb_status parsed = nb_model_parse(text, "test", &m);
    CHECK_OK(parsed);
    if (parsed != NB_OK) return 1;
    CHECK_OK(nb_set_threads(threads));
    nb_status s = nb_graph_set_precision(m.graph, precision);
    CHECK_OK(s);
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    CHECK_OK(nb_graph_init(m.graph, &rng));
    nb_optim_config oc = nb_optim_defaults(NB_OPT_ADAM);
    nb_optim *opt = nb_optim_new(&oc, nb_param_count(m.graph));
    nb_fit_config cfg = nb_fit_defaults(m.input, m.target, m.loss, m.output);
    cfg.optimizer = opt;
    size_t in = 1;
    int ndim, dims[NB_MAX_DIMS];
    CHECK_OK(nb_node_shape(m.graph, m.input, &ndim, dims));
    for (int d = 1; d < ndim; d++) in *= (size_t)dims[d];
    nb_real *x = malloc(BATCH * in * sizeof *x), y[BATCH];
    nb_rng data;
    nb_rng_seed(&data, 11);
    for (int step = 0; step < STEPS; step++) {
        for (size_t i = 0; i < BATCH * in; i++) x[i] = (nb_real)nb_rng_uniform(&data);
        for (int i = 0; i < BATCH; i++) y[i] = (nb_real)nb_rng_below(&data, 10);
        CHECK_OK(nb_set_input(m.graph, m.input, x, BATCH));
        CHECK_OK(nb_set_input(m.graph, m.target, y, BATCH));
        CHECK_OK(nb_train_step(m.graph, &cfg, 1e-3, &out->loss[step]));
        if (step == 0) {
            out->grads = malloc(nb_param_count(m.graph) * sizeof *out->grads);
            memcpy(out->grads, nb_grads(m.graph), nb_param_count(m.graph) * sizeof *out->grads);
        }
    }
    out->n = nb_param_count(m.graph);
    out->params = malloc(out->n * sizeof *out->params);
    memcpy(out->params, nb_params(m.graph), out->n * sizeof *out->params);
    free(x);
    nb_optim_free(opt);
    nb_model_free(&m);
    return s != NB_OK;
}

static void compare(const char *name) {
    const char *text = strcmp(name, "mlp") == 0 ? mlp : cnn;
    run f32, b16, again, two, two_again;
    if (train(text, NB_PRECISION_FP32, 1, &f32) || train(text, NB_PRECISION_BF16, 1, &b16) ||
        train(text, NB_PRECISION_BF16, 1, &again) || train(text, NB_PRECISION_BF16, 2, &two) ||
        train(text, NB_PRECISION_BF16, 2, &two_again))
        return;
    /* the first step's gradients: bf16 rounds each operand by up to 2^-9 of
     * it; gradients that are sums of terms of both signs (random labels)
     * lose more, measured 4% (mlp) and 1% (cnn).  A wrong product errs by
     * the whole gradient. */
    double diff = 0, size = 0;
    for (size_t i = 0; i < f32.n; i++) {
        diff += ((double)b16.grads[i] - f32.grads[i]) * ((double)b16.grads[i] - f32.grads[i]);
        size += (double)f32.grads[i] * f32.grads[i];
    }
    CHECKF(diff > 0, "%s: bf16 gave the fp32 gradients bit for bit", name);
    CHECKF(sqrt(diff / size) <= 0.1, "%s: bf16 and fp32 gradients differ by %.3g of their norm",
           name, sqrt(diff / size));
    CHECKF(memcmp(b16.params, f32.params, b16.n * sizeof *b16.params) != 0,
           "%s: bf16 gave the fp32 weights bit for bit", name);
    for (int s = 0; s < STEPS; s++)
        CHECKF(fabs(b16.loss[s] - f32.loss[s]) <= 0.01 * fabs(f32.loss[s]),
               "%s step %d: loss %.6f in bf16, %.6f in fp32", name, s + 1, b16.loss[s],
               f32.loss[s]);
    CHECKF(memcmp(b16.params, again.params, b16.n * sizeof *b16.params) == 0,
           "%s: two bf16 runs differ", name);
    CHECKF(memcmp(two.params, two_again.params, b16.n * sizeof *b16.params) == 0,
           "%s: two bf16 runs on 2 threads differ", name);
    /* a convolution's weight gradient adds its threads' parts in another
     * grouping (as in fp32); the products themselves do not depend on threads */
    CHECKF(text == cnn || memcmp(b16.params, two.params, b16.n * sizeof *b16.params) == 0,
           "%s: bf16 on 1 and 2 threads differs", name);
    run *all[] = {&f32, &b16, &again, &two, &two_again};
    for (int r = 0; r < 5; r++) free(all[r]->params), free(all[r]->grads);
}

/* A run saved in bf16 resumes in bf16 only. */
static void check_checkpoint_precision(void) {
    char dir[] = "/tmp/nb-bf16-XXXXXX", path[64];
    if (!mkdtemp(dir)) {
        CHECKF(0, "mkdtemp %s failed", dir);
        return;
    }
    snprintf(path, sizeof path, "%s/run.ckpt", dir);
    nb_model m;
    CHECK_OK(nb_model_parse(mlp, "test", &m));
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    CHECK_OK(nb_graph_init(m.graph, &rng));
    CHECK_OK(nb_graph_set_precision(m.graph, NB_PRECISION_BF16));
    nb_checkpoint ck = {.epoch = 1, .step = 3, .rng = rng};
    CHECK_OK(nb_checkpoint_save(path, m.graph, NULL, &ck));
    CHECK_OK(nb_graph_set_precision(m.graph, NB_PRECISION_FP32));
    nb_checkpoint back = {0};
    CHECK(nb_checkpoint_load(path, m.graph, NULL, &back) == NB_ERR_ARG);
    CHECKF(strstr(nb_last_error(), "precision bf16") != NULL, "message: %s", nb_last_error());
    CHECK_OK(nb_graph_set_precision(m.graph, NB_PRECISION_BF16));
    CHECK_OK(nb_checkpoint_load(path, m.graph, NULL, &back));
    CHECK(back.step == 3);
    nb_model_free(&m);
    unlink(path);
    rmdir(dir);
}

int main(void) {
    nb_precision p;
    CHECK(nb_precision_parse("bf16", &p) == NB_OK && p == NB_PRECISION_BF16);
    CHECK(nb_precision_parse("fp16", &p) == NB_ERR_ARG);
    nb_model m;
    CHECK_OK(nb_model_parse(mlp, "test", &m));
    CHECK(nb_graph_precision(m.graph) == NB_PRECISION_FP32);
    CHECK(nb_graph_set_precision(m.graph, (nb_precision)7) == NB_ERR_ARG);
    /* a CPU without a bf16 kernel: a clear error, and the graph stays fp32 */
    int kernel = nb__bf16_kernel();
    nb__bf16_use(NB__BF16_NONE);
    CHECK(nb_graph_set_precision(m.graph, NB_PRECISION_BF16) == NB_ERR_STATE);
    CHECKF(strstr(nb_last_error(), "needs a CPU with AVX512-BF16 (") != NULL, "message: %s",
           nb_last_error());
    CHECK(nb_graph_precision(m.graph) == NB_PRECISION_FP32);
    nb__bf16_use(kernel);
    nb_model_free(&m);
    if (kernel == NB__BF16_NONE) {
        printf("no bf16 kernel here (%s): training checks skipped\n", nb__bf16_missing());
        TEST_END();
    }
    static const int kernels[] = {NB__BF16_AMX, NB__BF16_AVX512};
    for (int k = 0; k < 2; k++) {
        nb__bf16_use(kernels[k]);
        if (nb__bf16_kernel() != kernels[k]) continue;
        printf("%s\n", nb__bf16_kernel_name());
        compare("mlp");
        compare("cnn");
    }
    nb__bf16_use(kernel);
    check_checkpoint_precision();
    TEST_END();
}
