/* No allocation inside the training step after the first batch.
 *
 * This program is linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,
 * --wrap=free (see CMakeLists.txt), so every call to those functions made by
 * nabla (a static library linked into this program) and by this file goes
 * through the counters below.  Calls made inside shared libraries (OpenBLAS,
 * libc itself) are not seen by --wrap; on glibc we therefore also check that
 * the heap in use (mallinfo2) does not change during the steps.
 *
 * Counting is switched on only after the first batch, and nothing that may
 * allocate (printf) runs while it is on. */
#include "test.h"
#include "fit_support.h"
#include "nabla.h"

#include <stdlib.h>
#include <string.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NB_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define NB_ASAN 1
#endif

#if defined(__GLIBC__) && !defined(NB_ASAN) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
#define NB_HEAP_CHECK 1
static size_t heap_in_use(void) { return mallinfo2().uordblks; }
#endif

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void __real_free(void *p);

static volatile int counting;
static volatile long n_malloc, n_calloc, n_realloc, n_free;

void *__wrap_malloc(size_t size) {
    if (counting) n_malloc++;
    return __real_malloc(size);
}
void *__wrap_calloc(size_t n, size_t size) {
    if (counting) n_calloc++;
    return __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t size) {
    if (counting) n_realloc++;
    return __real_realloc(p, size);
}
void __wrap_free(void *p) {
    if (counting) n_free++;
    __real_free(p);
}

static void start_counting(void) {
    n_malloc = n_calloc = n_realloc = n_free = 0;
    counting = 1;
}

static long allocations(void) { return n_malloc + n_calloc + n_realloc; }

/* The wrappers must really be in use, or a zero count proves nothing. */
static void test_wrap_works(void) {
    /* volatile pointers: compilers may otherwise elide a malloc/free pair */
    void *volatile p, *volatile q;
    start_counting();
    p = malloc(16);
    p = realloc(p, 32);
    q = calloc(2, 8);
    free(p);
    free(q);
    counting = 0;
    CHECKF(n_malloc == 1 && n_realloc == 1 && n_calloc == 1 && n_free == 2,
           "wrappers saw malloc %ld realloc %ld calloc %ld free %ld", n_malloc, n_realloc,
           n_calloc, n_free);
    /* and they see the library's allocations too */
    start_counting();
    nb_graph *g = nb_graph_new();
    nb_graph_free(g);
    counting = 0;
    CHECKF(allocations() >= 1 && n_free >= 1, "nb_graph_new allocated %ld times",
           allocations());
}

enum { N = 100, IN = 20, HID = 32, OUT = 5, BATCH = 16 }; /* 100 = 6 * 16 + 4 */
static nb_real data_x[N * IN], data_y[N];
static nb_precision precision = NB_PRECISION_FP32; /* of the models' products */

/* A small classifier touching the common ops: dense, ReLU, tanh, a skip
 * connection (add), cross-entropy on class indices (which keeps scratch). */
typedef struct model {
    nb_graph *g;
    nb_node x, y, out, loss;
} model;

static model make_model(void) {
    model m;
    int in = IN;
    m.g = nb_graph_new();
    m.x = nb_input(m.g, "x", 1, &in);
    m.y = nb_input(m.g, "y", 0, NULL);
    nb_node h = nb_relu(m.g, nb_dense(m.g, m.x, HID, "h", NULL));
    nb_node h2 = nb_add(m.g, nb_tanh(m.g, nb_dense(m.g, h, HID, "h2", NULL)), h);
    m.out = nb_dense(m.g, h2, OUT, "out", NULL);
    m.loss = nb_cross_entropy(m.g, m.out, m.y, 0.1f);
    CHECK_OK(nb_graph_status(m.g));
    nb_rng r;
    nb_rng_seed(&r, 1);
    CHECK_OK(nb_graph_init(m.g, &r));
    CHECK_OK(nb_graph_set_precision(m.g, precision));
    return m;
}

static void make_data(void) {
    nb_rng r;
    nb_rng_seed(&r, 2);
    for (int k = 0; k < N * IN; k++) data_x[k] = (nb_real)nb_rng_normal(&r);
    for (int k = 0; k < N; k++) data_y[k] = (nb_real)(k % OUT);
}

/* A hand-written loop: batches of 16 and a short one of 4, forward, backward,
 * clipping, Adam (with AMSGrad: the most optimiser state). */
static void test_manual_loop(void) {
    model m = make_model();
    nb_optim_config oc = nb_optim_defaults(NB_OPT_ADAM);
    oc.amsgrad = 1;
    nb_optim *opt = nb_optim_new(&oc, nb_param_count(m.g));
    CHECK(opt != NULL);
    nb_status bad = NB_OK;
    int steps = 0;
#ifdef NB_HEAP_CHECK
    size_t heap = 0;
#endif
    for (int epoch = 0; epoch < 20; epoch++) {
        for (int start = 0; start < N; start += BATCH) {
            int bs = N - start < BATCH ? N - start : BATCH;
            nb_status s = nb_set_input(m.g, m.x, data_x + start * IN, bs);
            if (s == NB_OK) s = nb_set_input(m.g, m.y, data_y + start, bs);
            if (s == NB_OK) s = nb_forward(m.g, m.loss);
            nb_zero_grad(m.g);
            if (s == NB_OK) s = nb_backward(m.g, m.loss);
            nb_clip_grad_norm(nb_grads(m.g), nb_param_count(m.g), 1.0);
            if (s == NB_OK) s = nb_optim_step(opt, nb_params(m.g), nb_grads(m.g), 1e-3);
            if (s != NB_OK && bad == NB_OK) bad = s;
            if (++steps == 1) { /* everything after the first batch is counted */
#ifdef NB_HEAP_CHECK
                heap = heap_in_use();
#endif
                start_counting();
            }
        }
    }
    counting = 0;
    CHECK_OK(bad);
    CHECK(steps == 20 * 7);
    CHECKF(allocations() == 0 && n_free == 0,
           "%d steps after the first allocated: malloc %ld calloc %ld realloc %ld free %ld",
           steps - 1, n_malloc, n_calloc, n_realloc, n_free);
#ifdef NB_HEAP_CHECK
    size_t now = heap_in_use();
    CHECKF(now == heap, "heap in use changed during training: %zu -> %zu bytes", heap, now);
#endif
    nb_optim_free(opt);
    nb_graph_free(m.g);
}

/* nb_fit itself: counting starts in the callback after epoch 1 and stops in
 * the callback of the last epoch, so it covers every step (and every
 * validation pass) of epochs 2..E-1 plus the steps of epoch E. */
typedef struct window {
    int epochs;
#ifdef NB_HEAP_CHECK
    size_t heap_start, heap_end;
#endif
} window;

static int count_window(const nb_epoch_stats *s, void *user) {
    window *w = user;
    if (s->epoch == 1) {
#ifdef NB_HEAP_CHECK
        w->heap_start = heap_in_use();
#endif
        start_counting();
    } else if (s->epoch == w->epochs) {
        counting = 0;
#ifdef NB_HEAP_CHECK
        w->heap_end = heap_in_use();
#endif
    }
    return 0;
}

/* nb_fit with cfg (epochs and all), counting allocations from the end of
 * epoch 1 to the start of the last: there must be none. */
static void fit_allocates_nothing(nb_graph *g, nb_fit_config *cfg, const nb_data *train,
                                  const nb_data *val, nb_epoch_stats *last, const char *what) {
    window w;
    memset(&w, 0, sizeof w);
    w.epochs = cfg->epochs;
    cfg->on_epoch = count_window;
    cfg->user = &w;
    CHECK_OK(nb_fit(g, cfg, train, val, last));
    counting = 0;
    CHECKF(allocations() == 0 && n_free == 0,
           "nb_fit (%s) allocated during epochs 2..%d: malloc %ld calloc %ld realloc %ld free %ld",
           what, cfg->epochs, n_malloc, n_calloc, n_realloc, n_free);
#ifdef NB_HEAP_CHECK
    CHECKF(w.heap_end == w.heap_start, "heap in use changed during nb_fit (%s): %zu -> %zu",
           what, w.heap_start, w.heap_end);
#endif
}

static void test_fit(void) {
    model m = make_model();
    nb_data train = test_data(data_x, data_y, N, IN, 1);
    nb_data val = test_data(data_x, data_y, 30, IN, 1); /* 30 = 16 + 14: short batch */
    nb_fit_config cfg = nb_fit_defaults(m.x, m.y, m.loss, m.out);
    cfg.optimizer = test_optim(m.g, NB_OPT_ADAM, -1);
    cfg.epochs = 12;
    cfg.batch_size = BATCH;
    cfg.clip_norm = 1.0;
    cfg.schedule = nb_schedule_defaults(NB_SCHED_COSINE);
    nb_epoch_stats last;
    fit_allocates_nothing(m.g, &cfg, &train, &val, &last, "MLP");
    CHECK(last.epoch == 12 && last.step == 12 * 7);
    nb_graph_free(m.g);
}

/* The convolutional ops too: conv, batch norm (running statistics), max pool,
 * dropout (random masks), a residual projection, global average pooling, and
 * augmented batches; nb_fit with validation. */
static nb_real img_x[N * 64];

static void test_fit_cnn(void) {
    nb_rng r;
    nb_rng_seed(&r, 3);
    for (int k = 0; k < N * 64; k++) img_x[k] = (nb_real)nb_rng_uniform(&r);
    nb_graph *g = nb_graph_new();
    int shape[3] = {1, 8, 8};
    nb_node x = nb_input(g, "x", 3, shape), y = nb_input(g, "y", 0, NULL);
    nb_conv_opts pad = {.pad_h = 1, .pad_w = 1};
    nb_node c = nb_relu(g, nb_batch_norm(g, nb_conv2d_layer(g, x, 4, 3, 3, &pad, "c1"), "bn1", NULL));
    nb_node p = nb_max_pool2d(g, c, 2, 2, 0, 0, 0, 0, 0);
    nb_node c2 = nb_conv2d_layer(g, p, 8, 3, 3, &pad, "c2");
    nb_node res = nb_residual(g, c2, p, "res");
    nb_node out = nb_dense(g, nb_dropout(g, nb_global_avg_pool2d(g, res), 0.2f), OUT, "fc", NULL);
    nb_node loss = nb_cross_entropy(g, out, y, 0);
    CHECK_OK(nb_graph_status(g));
    CHECK_OK(nb_graph_init(g, &r));
    CHECK_OK(nb_graph_set_precision(g, precision));
    nb_data train = test_data(img_x, data_y, N, 64, 1);
    nb_data val = test_data(img_x, data_y, 30, 64, 1);
    nb_fit_config cfg = nb_fit_defaults(x, y, loss, out);
    cfg.optimizer = test_optim(g, NB_OPT_ADAM, -1);
    cfg.epochs = 6;
    cfg.batch_size = BATCH;
    cfg.augment_flip = 1;
    cfg.augment_crop = 1;
    fit_allocates_nothing(g, &cfg, &train, &val, NULL, "CNN");
    nb_graph_free(g);
}

/* A pre-LN transformer block over sequences [8, 8] (layer norm, causal
 * attention, GELU, adds), flattened into a classifier; nb_fit with
 * validation (batches of 16 and short ones). */
static void test_fit_transformer(void) {
    nb_rng r;
    nb_rng_seed(&r, 4);
    nb_graph *g = nb_graph_new();
    int shape[2] = {8, 8};
    nb_node x = nb_input(g, "x", 2, shape), y = nb_input(g, "y", 0, NULL);
    nb_node a = nb_attention(g, nb_layer_norm(g, x, 1, "ln1", NULL), 2, 1, "attn");
    nb_node h = nb_add(g, a, x);
    nb_node f = nb_gelu(g, nb_dense(g, nb_layer_norm(g, h, 1, "ln2", NULL), 16, "up", NULL), 0);
    h = nb_add(g, nb_dense(g, f, 8, "down", NULL), h);
    nb_node out = nb_dense(g, nb_flatten(g, h), OUT, "fc", NULL);
    nb_node loss = nb_cross_entropy(g, out, y, 0);
    CHECK_OK(nb_graph_status(g));
    CHECK_OK(nb_graph_init(g, &r));
    nb_data train = test_data(img_x, data_y, N, 64, 1);
    nb_data val = test_data(img_x, data_y, 30, 64, 1);
    nb_fit_config cfg = nb_fit_defaults(x, y, loss, out);
    cfg.optimizer = test_optim(g, NB_OPT_ADAM, -1);
    cfg.epochs = 4;
    cfg.batch_size = BATCH;
    fit_allocates_nothing(g, &cfg, &train, &val, NULL, "transformer");
    nb_graph_free(g);
}

/* The sequence ops: token ids through an embedding, positional
 * embeddings, an LSTM and a GRU (their scratch holds every step), an RNN's
 * last state, and the cross-entropy per position with ignored targets;
 * nb_fit with validation (accuracy per position). */
enum { SEQ_T = 6, SEQ_V = 7 };
static nb_real seq_x[N * SEQ_T], seq_y[N * SEQ_T];

static void test_fit_sequence(void) {
    for (int k = 0; k < N * SEQ_T; k++) {
        seq_x[k] = (nb_real)((k * 5 + k / SEQ_T) % SEQ_V);
        seq_y[k] = k % 4 == 3 ? 0 : (nb_real)((k * 3 + 1) % SEQ_V); /* 0: ignored */
    }
    nb_graph *g = nb_graph_new();
    int t = SEQ_T;
    nb_node x = nb_input(g, "x", 1, &t), y = nb_input(g, "y", 1, &t);
    nb_node e = nb_pos_embedding(g, nb_embedding(g, x, SEQ_V, 8, "emb"), "pos");
    nb_node h = nb_recurrent(g, nb_recurrent(g, e, NB_LSTM, 12, 0, "lstm"), NB_GRU, 10, 0, "gru");
    nb_node last = nb_recurrent(g, h, NB_RNN_TANH, 4, 1, "rnn"); /* [B, 4] */
    nb_node out = nb_dense(g, h, SEQ_V, "out", NULL);
    nb_node loss = nb_add(g, nb_cross_entropy_ignore(g, out, y, 0, 0),
                          nb_scale(g, nb_mean(g, last), 0.1f));
    CHECK_OK(nb_graph_status(g));
    nb_rng r;
    nb_rng_seed(&r, 4);
    CHECK_OK(nb_graph_init(g, &r));
    nb_data train = test_data(seq_x, seq_y, N, SEQ_T, SEQ_T);
    nb_data val = test_data(seq_x, seq_y, 30, SEQ_T, SEQ_T);
    nb_fit_config cfg = nb_fit_defaults(x, y, loss, out);
    cfg.optimizer = test_optim(g, NB_OPT_ADAM, -1);
    cfg.epochs = 4;
    cfg.batch_size = BATCH;
    fit_allocates_nothing(g, &cfg, &train, &val, NULL, "sequence");
    nb_graph_free(g);
}

int main(void) {
#ifdef NB_ASAN
    printf("note: AddressSanitizer build: counting through --wrap only (mallinfo2 heap "
           "check skipped, ASan owns the heap)\n");
#endif
    make_data();
    test_wrap_works();
    test_manual_loop();
    test_fit();
    test_fit_cnn();
    test_fit_transformer();
    test_fit_sequence();
    /* the bf16 products too, where the CPU has them */
    nb_graph *probe = nb_graph_new();
    if (nb_graph_set_precision(probe, NB_PRECISION_BF16) == NB_OK) {
        precision = NB_PRECISION_BF16;
        test_manual_loop();
        test_fit();
        test_fit_cnn();
    } else {
        printf("bf16 runs skipped: %s\n", nb_last_error());
    }
    nb_graph_free(probe);
    test_free_optims();
    TEST_END();
}
