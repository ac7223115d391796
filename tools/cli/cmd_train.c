/* nabla train MODEL --data SRC: train, show progress, keep the result,
 * checkpoint and resume. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "data_source.h"
#include "diag_report.h"
#include "dist_launch.h"
#include "early_stop_cli.h"
#include "epoch_sums.h"
#include "finetune.h"
#include "folder_source.h"
#include "history.h"
#include "optim_text.h"
#include "outputs.h"
#include "progress.h"
#include "report.h"
#include "tb_log.h"

static const char *help =
    "usage: nabla train MODEL.nn --data SOURCE [options]\n\n"
    "Train the model described in MODEL.nn (see docs/model-format.md).\n\n"
    "data\n"
    "  --data SOURCE          fashion-mnist | idx:IMAGES,LABELS | npy:X.npy,Y.npy |\n"
    "                         csv:FILE[,label=COL][,header=yes|no] | folder:DIR\n"
    "                         (DIR/CLASS/*.png|jpg|jpeg, see docs/images.md); idx and npy\n"
    "                         take ,layout=hwc for channels-last images [N, H, W, C]; a file\n"
    "                         without a prefix is read by its extension (.csv, .npy, -ubyte,\n"
    "                         .png, .jpg); text of characters (docs/sequences.md):\n"
    "                         lines:FILE[,context=K][,length=T] (a sequence per line,\n"
    "                         padded to the model's input without context=) |\n"
    "                         text:FILE,context=T[,stride=S] (windows of the stream)\n"
    "  --test SOURCE          data for the final evaluation (fashion-mnist: its test split)\n"
    "  --skip-bad             skip images that do not decode (counted) instead of failing\n"
    "  --val-split F          hold out this fraction of the training data (default 0;\n"
    "                         text: whole lines, or one span of the stream, by --seed)\n"
    "  --val SOURCE           validation data (as --data; labels mapped to the training\n"
    "                         classes, standardised with the training statistics)\n"
    "  --no-standardize       CSV features as they are (default: standardised with\n"
    "                         training statistics); byte images are always scaled to [0, 1];\n"
    "                         the token ids of 'input T tokens=V' are never changed\n"
    "training\n"
    "  --epochs N             passes over the training data (default 10)\n"
    "  --batch N              mini-batch size (default 128)\n"
    "  --optim NAME           sgd, momentum, nesterov, ema-momentum, adagrad, rmsprop,\n"
    "                         adam (default), adamw; with PyTorch's defaults (momentum\n"
    "                         and nesterov: momentum 0.9); training starts by printing them\n"
    "  --lr X                 learning rate (default: the optimiser's, 1e-3 for adam and\n"
    "                         adamw, 1e-2 for the others)\n"
    "  --weight-decay X       L2 penalty, decoupled for adamw (default: the optimiser's,\n"
    "                         0.01 for adamw, 0 for the others)\n"
    "  --schedule NAME        constant (default), step (x0.1 every third of the epochs),\n"
    "                         exponential (x0.9 per epoch), cosine (to 0 at the last epoch),\n"
    "                         warmup (linear from lr/3 over 5 epochs), linear-decay\n"
    "                         (linear to lr/100 at the last epoch, then constant)\n"
    "  --clip-norm X          clip the global gradient norm to X\n"
    "  --flip                 augment images: mirror at random (probability 1/2)\n"
    "  --crop P               augment images: random crops after padding P pixels\n"
    "  --seed N               seed of the initialisation, split and shuffling (default 0)\n"
    "  --threads N            threads of the matrix products (default: OpenBLAS's choice)\n"
    "  --precision P          fp32 (default) or bf16: the products of dense and conv layers\n"
    "                         (forward and backward) on operands rounded to bfloat16, summed\n"
    "                         in fp32; weights, gradients, optimiser state and the loss stay\n"
    "                         fp32.  Needs a CPU with AVX512-BF16 (AMX used where present).\n"
    "                         A checkpoint resumes in its own precision.\n";

/* (split: a C99 compiler need not take a longer string) */
static const char *help_output =
    "output\n"
    "  --out FILE             save the trained weights (safetensors, PyTorch names);\n"
    "                         without it, training says that they will not be saved\n"
    "  --checkpoint FILE      checkpoint file (default FILE.ckpt for --out FILE)\n"
    "  --checkpoint-every N   also checkpoint every N steps (always: at each epoch end)\n"
    "  --resume FILE          continue from a checkpoint; same model, data and options\n"
    "  --log FILE             per-epoch metrics as CSV\n"
    "  --plot FILE            loss and accuracy curves as SVG\n"
    "  --tensorboard DIR      TensorBoard logs (docs/tensorboard.md): a new event file in\n"
    "                         DIR per run (and per --resume) with the loss and lr of every\n"
    "                         step, the epoch metrics (train and validation) and, with\n"
    "                         --diagnose, its figures; view with tensorboard --logdir DIR\n"
    "  --quiet                no progress output\n"
    "  --top-k K, --report FILE.json, --confusion FILE.svg\n"
    "                         the test data's report, as for 'nabla eval' (see its --help)\n"
    "  Outputs are regular files or new paths, never an input or another output;\n"
    "  each is locked (FILE.lock) so that a second run on it stops.\n"
    "several processes (mpirun -np N nabla train ..., docs/scaling.md)\n"
    "  --batch is the global batch: each process takes its slice of every batch, and\n"
    "  the gradients are summed over them each step (same rate as one process).  Only\n"
    "  rank 0 writes files and progress; --resume reads the checkpoint on every rank.\n"
    "  Ctrl-C under mpirun ends every rank at once: resume from the last checkpoint.\n"
    "  --sync-bn              batch norm with the statistics of the global batch (default:\n"
    "                         each process's slice)\n";
static const char *help_diagnostics =
    "diagnostics (docs/diagnostics.md)\n"
    "  --diagnose             a table per layer on the first batch of every epoch, on\n"
    "                         stderr (also with --quiet): activation mean and std, dead\n"
    "                         ReLU units and saturated sigmoid/tanh values (%), gradient\n"
    "                         norms, update/weight ratios; then WARNING lines\n"
    "  --diagnose-every N     the table every N optimiser steps instead (steps 1, N+1, ...)\n"
    "  --diagnose-log FILE    the same measurements as CSV, one row per layer\n"
    "  --op-times             after training, the time each op took, forward (evaluation\n"
    "                         passes included) and backward, and their share of the run,\n"
    "                         on stderr (also with --quiet)\n\n"
    "Ctrl-C stops after the current step and writes the checkpoint (another Ctrl-C\n"
    "meanwhile is ignored until it is written).  A NaN or infinity\n"
    "stops training with exit code 1 and names the node and op where it appeared (or the\n"
    "training sample); the last checkpoint and the --out file are left as they were.\n";

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

typedef struct run {
    const char *model_path, *data_spec, *ckpt, *log, *plot, *optim_name;
    report_opts report;      /* of the test data: --top-k, --report, --confusion */
    nb_model m;
    nb_data train, val, test;
    preprocess pre;
    nb_optim *opt;
    nb_rng rng;
    uint64_t seed;
    long ckpt_every, batch;
    history hist;
    progress prog;
    int quiet, failed;
    int op_times;            /* --op-times: each op's time after training   */
    int finished;            /* resumed after the last epoch: outputs only */
    char augment[64];        /* "flip=0 crop=0": must match when resuming */
    const char *init;        /* --init: the starting weights              */
    const char *freeze;      /* --freeze: must match when resuming        */
    char err[600];
    long ckpt_step;          /* step of the checkpoint on disk; -1: none written */
    /* --diagnose */
    int diag_print;
    long diag_every;         /* steps between diagnoses; 0: off          */
    const char *diag_log_path;
    FILE *diag_log;
    nb_diagnosis diag;
    nb_real *diag_before;    /* the parameters after step diag_snap_step  */
    long diag_snap_step;
    cli_files files;         /* inputs and outputs, the outputs locked    */
    epoch_sums sums;         /* the epoch in progress, for resumed epochs  */
    char sums_meta[160];     /* train.epoch_sums of the --resume checkpoint */
    const char *val_spec;    /* --val */
    early_stop_cli stop;     /* --early-stop, --monitor, --keep            */
    tb_log tb;               /* --tensorboard                              */
    nb_dist *dist;           /* under mpirun: the processes; NULL: alone   */
} run;

static int tb_failed(run *r) {
    snprintf(r->err, sizeof r->err, "--tensorboard: %s", nb_last_error());
    r->failed = 1;
    return 1;
}

/* The training options a resumed run must share with the one it continues. */
static void run_meta(run *r, nb_kv *kv, int *n, char *buf, size_t size) {
    snprintf(buf, size, "%ld", r->batch);
    kv[(*n)++] = (nb_kv){"train.batch", buf};
    kv[(*n)++] = (nb_kv){"train.data", r->data_spec};
    kv[(*n)++] = (nb_kv){"train.augment", r->augment};
    if (r->freeze) kv[(*n)++] = (nb_kv){"train.freeze", r->freeze};
}

static int save_checkpoint(run *r, int epochs_done, long step) {
    if (!r->ckpt) return 0;
    /* never replace a good checkpoint with a poisoned one (nb_fit checks
     * the parameters at epoch ends; --checkpoint-every saves in between) */
    char bad[160];
    if (cli_nonfinite_param(r->m.graph, bad, sizeof bad)) {
        snprintf(r->err, sizeof r->err, "after optimiser step %ld %s: an update overflowed; "
                 "lower the learning rate (checkpoint %s not written)", step, bad, r->ckpt);
        r->failed = 1;
        return -1;
    }
    char *csv = history_csv(&r->hist);
    nb_kv kv[16];
    int n = 0;
    char batch[32];
    run_meta(r, kv, &n, batch, sizeof batch);
    n += preprocess_to_meta(&r->pre, kv + n);
    if (csv) kv[n++] = (nb_kv){"train.history", csv};
    n += early_stop_to_meta(&r->stop, kv + n);
    char sums[160];
    if (r->sums.epoch == epochs_done + 1 && r->sums.seen) { /* in the middle of an epoch */
        epoch_sums_format(&r->sums, sums, sizeof sums);
        kv[n++] = (nb_kv){"train.epoch_sums", sums};
    }
    nb_checkpoint ck = {.epoch = epochs_done, .step = step, .seed = r->seed, .rng = r->rng,
                        .model = r->m.text, .meta = kv, .n_meta = n,
                        .best = early_stop_best(&r->stop), .n_best = r->stop.n_best};
    nb_status s = nb_checkpoint_save(r->ckpt, r->m.graph, r->opt, &ck);
    free(csv);
    if (s != NB_OK) {
        snprintf(r->err, sizeof r->err, "checkpoint: %s", nb_last_error());
        r->failed = 1;
        return -1;
    }
    r->ckpt_step = step;
    return 0;
}

/* --diagnose: measure at steps 1, N+1, 2N+1, ... and keep a copy of the
 * parameters from the step before each, for the update/weight ratios.  The
 * step's activations and gradients are still in the graph here. */
static int diagnose_step(run *r, const nb_batch_stats *b) {
    nb_graph *g = r->m.graph;
    if ((b->step - 1) % r->diag_every == 0) {
        const nb_real *before = r->diag_snap_step == b->step - 1 ? r->diag_before : NULL;
        if (nb_diagnose(g, before, &r->diag) != NB_OK) {
            snprintf(r->err, sizeof r->err, "--diagnose: %s", nb_last_error());
            r->failed = 1;
            return 1;
        }
        if (r->diag_print) {
            progress_clear(&r->prog);
            diag_print(stderr, &r->diag, b->epoch, b->batch, b->step, (size_t)nb_graph_batch(g));
        }
        if (r->tb.w && tb_log_diagnosis(&r->tb, &r->diag, b->step) != NB_OK) return tb_failed(r);
        if (r->diag_log && diag_log_write(r->diag_log, &r->diag, b->epoch, b->step)) {
            snprintf(r->err, sizeof r->err, "--diagnose-log %s: %s", r->diag_log_path,
                     strerror(errno));
            r->failed = 1;
            return 1;
        }
    }
    if (b->step % r->diag_every == 0) {
        memcpy(r->diag_before, nb_params(g), nb_param_count(g) * sizeof *r->diag_before);
        r->diag_snap_step = b->step;
    }
    return 0;
}

static int diagnose_setup(run *r, int resumed) {
    nb_graph *g = r->m.graph;
    if (nb_diagnosis_init(&r->diag, g, r->m.loss) != NB_OK)
        return cli_fail("train", "--diagnose: %s", nb_last_error());
    size_t n = nb_param_count(g);
    r->diag_before = malloc((n ? n : 1) * sizeof *r->diag_before);
    if (!r->diag_before) return cli_fail("train", "--diagnose: out of memory");
    memcpy(r->diag_before, nb_params(g), n * sizeof *r->diag_before);
    r->diag_snap_step = nb_optim_steps(r->opt);
    if (r->diag_log_path && !(r->diag_log = diag_log_open(r->diag_log_path, resumed)))
        return cli_fail("train", "--diagnose-log %s: %s", r->diag_log_path, strerror(errno));
    return 0;
}

/* Before the optimiser step of a diagnosed step: the fused layers' own
 * values and gradients, which nb_diagnose reads after the step, are filled
 * in while the parameters are still those the step's passes used. */
static nb_status fill_before_diagnosed_step(nb_real *grads, size_t n, void *user) {
    (void)grads, (void)n;
    run *r = user;
    if (nb_optim_steps(r->opt) % r->diag_every != 0) return NB_OK;
    return nb_graph_fill_fused(r->m.graph);
}

static int on_batch(const nb_batch_stats *b, void *user) {
    run *r = user;
    epoch_sums_batch(&r->sums, b, b->batch_size, r->m.classes != 0);
    if (r->diag_every && diagnose_step(r, b)) return 1;
    if (r->tb.w && tb_log_batch(&r->tb, b) != NB_OK) return tb_failed(r);
    if (!r->quiet) progress_batch(&r->prog, b->epoch, b->batch, b->epoch_loss);
    if (r->ckpt_every && b->step % r->ckpt_every == 0 && b->batch < b->batches &&
        save_checkpoint(r, b->epoch - 1, b->step))
        return 1;
    /* an interrupt in an epoch's last step lets the epoch finish, so that
     * its row is logged and its checkpoint is whole */
    return interrupted && b->batch < b->batches ? 1 : 0;
}

static int on_epoch(const nb_epoch_stats *fit_stats, void *user) {
    run *r = user;
    nb_epoch_stats whole = *fit_stats, *s = &whole; /* a resumed epoch: all of it */
    epoch_sums_finish(&r->sums, &whole);
    if (history_add(&r->hist, s)) {
        snprintf(r->err, sizeof r->err, "out of memory");
        r->failed = 1;
        return 1;
    }
    if (r->tb.w && tb_log_epoch(&r->tb, s) != NB_OK) return tb_failed(r);
    if (!r->quiet) progress_epoch(&r->prog, s);
    if (r->log && history_write_log(&r->hist, r->log)) {
        snprintf(r->err, sizeof r->err, "--log %s: %s", r->log, strerror(errno));
        r->failed = 1;
        return 1;
    }
    if (r->plot && history_plot(&r->hist, r->plot, r->model_path)) {
        snprintf(r->err, sizeof r->err, "--plot %s: %s", r->plot, strerror(errno));
        r->failed = 1;
        return 1;
    }
    int stop = early_stop_epoch(&r->stop, r->m.graph, s, r->quiet);
    if (save_checkpoint(r, s->epoch, s->step)) return 1;
    return stop || interrupted ? 1 : 0;
}

/* Class labels must be whole numbers in [0, classes): say so before training. */
static int check_labels(const char *what, const nb_data *d, int classes, size_t per_sample) {
    if (d->n == 0) return 0;
    if (per_sample > 1 && d->y_size == per_sample)
        return 0; /* one per position: the loss checks them, knowing its ignore_index */
    if (d->y_size != 1)
        return cli_fail("train", "%s: %zu label values per sample; a cross_entropy model needs "
                        "one class index per sample", what, d->y_size);
    for (size_t i = 0; i < d->n; i++) {
        double y = (double)d->y[i];
        if (!(y >= 0 && y < classes) || y != (double)(long)y)
            return cli_fail("train", "%s: sample %zu has label %g; the model has %d classes "
                            "(labels 0 to %d)", what, i, y, classes, classes - 1);
    }
    return 0;
}

static nb_schedule schedule_for(const char *name, int epochs, double lr, int *ok) {
    nb_schedule s = nb_schedule_defaults(NB_SCHED_CONSTANT);
    *ok = nb_schedule_parse(name, &s) == NB_OK;
    switch (s.kind) {
    case NB_SCHED_STEP: s.step_size = epochs / 3 > 0 ? epochs / 3 : 1; break;
    case NB_SCHED_COSINE: s.t_max = epochs; break;
    case NB_SCHED_LINEAR_DECAY:
        s.tau = epochs > 1 ? epochs - 1 : 1;
        s.lr_tau = lr / 100;
        break;
    default: break;
    }
    return s;
}

static void run_free(run *r) {
    nb_optim_free(r->opt);
    nb_model_free(&r->m);
    nb_data_free(&r->train);
    nb_data_free(&r->val);
    nb_data_free(&r->test);
    preprocess_free(&r->pre);
    history_free(&r->hist);
    early_stop_free(&r->stop);
    nb_diagnosis_free(&r->diag);
    free(r->diag_before);
    if (r->diag_log) fclose(r->diag_log);
    tb_log_close(&r->tb);
    cli_files_release(&r->files);
}

/* No output may replace an input or another output, and no other run may
 * write them at the same time: checked before anything is loaded. */
static int claim_files(run *r, const char *out, const char *test_spec, const char *resume) {
    cli_files *fs = &r->files;
    cli_files_input(fs, "the model file", r->model_path);
    cli_files_data(fs, "--data", r->data_spec);
    cli_files_data(fs, "--test", test_spec);
    cli_files_data(fs, "--val", r->val_spec);
    cli_files_input(fs, "--resume", resume);
    cli_files_input(fs, "--init", r->init);
    cli_files_output(fs, "--out", out);
    cli_files_output(fs, "--checkpoint", r->ckpt);
    cli_files_output(fs, "--log", r->log);
    cli_files_output(fs, "--plot", r->plot);
    cli_files_output(fs, "--diagnose-log", r->diag_log_path);
    cli_files_output(fs, "--report", r->report.json);
    cli_files_output(fs, "--confusion", r->report.svg);
    cli_files_may_rewrite(fs, "--resume", "--checkpoint"); /* a checkpoint is rewritten */
    int rc = cli_files_check(fs, "train");
    return rc ? rc : cli_files_lock(fs, "train");
}

/* A resumed run continues the checkpoint's run: same data, batch size,
 * augmentation and seed (taken from the checkpoint), and its history. */
static int check_resume(run *r, const char *resume, const char *seed_flag) {
    nb_safetensors *ck;
    if (nb_st_open(resume, &ck) != NB_OK) return cli_fail("train", "--resume: %s", nb_last_error());
    const char *b = nb_st_meta(ck, "train.batch"), *d = nb_st_meta(ck, "train.data");
    const char *aug = nb_st_meta(ck, "train.augment"), *sd = nb_st_meta(ck, "nabla.seed");
    const char *hist = nb_st_meta(ck, "train.history");
    const char *sums = nb_st_meta(ck, "train.epoch_sums");
    const char *prec = nb_st_meta(ck, "nabla.precision"); /* absent: fp32 */
    const char *want = nb_precision_name(nb_graph_precision(r->m.graph));
    if (sums) snprintf(r->sums_meta, sizeof r->sums_meta, "%s", sums);
    int rc = 0;
    if (!b || !d || !aug || !sd)
        rc = cli_fail("train", "--resume %s: not a checkpoint written by nabla train", resume);
    else if (atol(b) != r->batch)
        rc = cli_fail("train", "--resume %s: the checkpoint was made with --batch %s, not %ld",
                      resume, b, r->batch);
    else if (strcmp(d, r->data_spec) != 0)
        rc = cli_fail("train", "--resume %s: the checkpoint was made with --data %s", resume, d);
    else if (strcmp(aug, r->augment) != 0)
        rc = cli_fail("train", "--resume %s: the checkpoint was made with augmentation '%s', "
                      "this run asks for '%s'", resume, aug, r->augment);
    else if (strcmp(prec ? prec : "fp32", want) != 0)
        rc = cli_fail("train", "--resume %s: the checkpoint was trained with --precision %s, "
                      "this run asks for %s", resume, prec, want);
    else if (seed_flag && strtoull(sd, NULL, 10) != r->seed)
        rc = cli_fail("train", "--resume %s: the checkpoint was made with --seed %s", resume, sd);
    else if (hist && history_parse(&r->hist, hist))
        rc = cli_fail("train", "--resume %s: unreadable train.history", resume);
    else
        rc = early_stop_check_resume(&r->stop, resume, nb_st_meta(ck, "train.early_stop"),
                                     nb_st_meta(ck, "train.early_stop.state"));
    if (!rc) r->seed = strtoull(sd, NULL, 10);
    nb_st_free(ck);
    return rc;
}

/* Load the data, hold out validation data, scale bytes to [0, 1] or
 * standardise features with training statistics, and check them against the
 * model. */
static int prepare_data(run *r, const char *test_spec, double val_split, int standardize) {
    data_text_default_length(cli_sample_size(r->m.graph, r->m.input));
    /* text is held out by line or by span, not by sample */
    int text = data_is_text(r->data_spec), text_split = text && val_split > 0;
    nb_status s = text_split ? data_load_split(r->data_spec, NULL, 0, val_split, r->seed,
                                               &r->train, &r->val)
                             : data_load(r->data_spec, "train", &r->train);
    /* test labels numbered as the training data's classes (text: its
     * vocabulary); other labels per position stay numbers */
    int positions = cli_per_position(&r->m) && !text;
    char *const *names = (r->m.classes && !positions) || text ? r->train.class_names : NULL;
    int n_classes = positions ? 0 : names ? r->train.n_classes : r->m.classes;
    if (s == NB_OK && (test_spec || data_has_test_split(r->data_spec)))
        s = data_load_classes(test_spec ? test_spec : r->data_spec, "test", names, n_classes,
                              &r->test);
    if (s == NB_OK && r->val_spec) /* labels numbered as the training data's */
        s = data_load_classes(r->val_spec, "test", names, n_classes, &r->val);
    if (s == NB_OK && val_split > 0 && !text_split) {
        nb_data all = r->train;
        memset(&r->train, 0, sizeof r->train);
        s = nb_data_split(&all, val_split, r->seed, &r->train, &r->val);
        nb_data_free(&all);
    }
    if (s == NB_OK && r->m.vocab) {
        /* token ids stay the whole numbers they are */
    } else if (s == NB_OK && r->train.x_u8) {
        s = nb_data_scale_unit(&r->train);
        if (s == NB_OK && r->val.n) s = nb_data_scale_unit(&r->val);
        if (s == NB_OK && r->test.n) s = nb_data_scale_unit(&r->test);
    } else if (s == NB_OK && standardize && !text) { /* ids stay ids */
        s = nb_data_standardize(&r->train, r->val.n ? &r->val : NULL, r->test.n ? &r->test : NULL);
    }
    if (s == NB_OK) s = preprocess_from_data(&r->train, &r->pre);
    if (s != NB_OK) return cli_fail("train", "%s", nb_last_error());
    size_t in_size = cli_sample_size(r->m.graph, r->m.input);
    if (r->train.sample_size != in_size)
        return cli_fail("train", "%s: samples have %zu values but %s takes %zu values per sample",
                        r->data_spec, r->train.sample_size, r->model_path, in_size);
    if (data_check_shape(&r->train, r->data_spec, r->m.graph, r->m.input) != NB_OK ||
        (r->val_spec && data_check_shape(&r->val, r->val_spec, r->m.graph, r->m.input) != NB_OK) ||
        (r->test.n && data_check_shape(&r->test, test_spec ? test_spec : r->data_spec, r->m.graph,
                                       r->m.input) != NB_OK))
        return cli_fail("train", "%s", nb_last_error());
    size_t labels = cli_sample_size(r->m.graph, r->m.target);
    if (r->m.classes && (check_labels(r->data_spec, &r->train, r->m.classes, labels) ||
                         check_labels("validation data", &r->val, r->m.classes, labels) ||
                         check_labels("test data", &r->test, r->m.classes, labels)))
        return 1;
    return 0;
}

/* A checkpoint of nabla train counts the same steps twice (the run's and
 * the optimiser's), one history row per finished epoch at most, and holds
 * finite parameters: anything else is a damaged file, said before training
 * fails in a way that blames the settings. */
static int check_counters(run *r, const char *resume, const nb_checkpoint *ck, long steps) {
    char bad[160];
    if (ck->step != steps || ck->epoch < 0)
        return cli_fail("train", "--resume %s: the checkpoint's counters disagree (epoch %d, "
                        "step %ld, optimiser steps %ld); the file is damaged", resume, ck->epoch,
                        ck->step, steps);
    if (r->hist.n > ck->epoch || (r->hist.n && r->hist.rows[r->hist.n - 1].step > steps))
        return cli_fail("train", "--resume %s: the checkpoint's history has %d epochs (to step "
                        "%ld) but the checkpoint is at epoch %d, step %ld; the file is damaged",
                        resume, r->hist.n, r->hist.n ? r->hist.rows[r->hist.n - 1].step : 0,
                        ck->epoch, steps);
    if (cli_nonfinite_param(r->m.graph, bad, sizeof bad))
        return cli_fail("train", "--resume %s: %s; the checkpoint is damaged", resume, bad);
    return 0;
}

/* Parameters, optimiser state and position from the checkpoint. */
static int restore(run *r, const char *resume, nb_fit_config *cfg, size_t per_epoch) {
    nb_checkpoint ck = {.model = r->m.text, .best = r->stop.best, .n_best = r->stop.n_best};
    if (nb_checkpoint_load(resume, r->m.graph, r->opt, &ck) != NB_OK)
        return cli_fail("train", "--resume: %s", nb_last_error());
    r->rng = ck.rng;
    long step = nb_optim_steps(r->opt);
    if (check_counters(r, resume, &ck, step) || early_stop_restored(&r->stop, resume, ck.has_best))
        return 1;
    if (r->stop.es.stopped) { /* it stopped early, but was killed while it wrote its outputs */
        if (!r->quiet) fprintf(stderr, "%s: stopped early after epoch %d; writing the outputs\n",
                               resume, ck.epoch);
        r->finished = 1;
        return 0;
    }
    if (ck.epoch == cfg->epochs && step == (long)((size_t)ck.epoch * per_epoch)) {
        /* the run ended, but was killed while it wrote its outputs */
        if (!r->quiet) fprintf(stderr, "%s: all %d epochs done; writing the outputs\n", resume,
                               ck.epoch);
        r->finished = 1;
        return 0;
    }
    if (ck.epoch >= cfg->epochs)
        return cli_fail("train", "--resume %s: %d epochs already done; ask for more with --epochs",
                        resume, ck.epoch);
    if (step < (long)((size_t)ck.epoch * per_epoch) ||
        step >= (long)((size_t)(ck.epoch + 1) * per_epoch))
        return cli_fail("train", "--resume %s: step %ld does not fall in epoch %d of %zu steps; "
                        "were the data or batch size changed?", resume, step, ck.epoch + 1,
                        per_epoch);
    if (r->ckpt && strcmp(r->ckpt, resume) == 0) r->ckpt_step = step;
    cfg->start_epoch = ck.epoch;
    cfg->start_batch = (size_t)step - (size_t)ck.epoch * per_epoch;
    if (cfg->start_batch && r->sums_meta[0] &&
        epoch_sums_restore(&r->sums, r->sums_meta, ck.epoch + 1,
                           cfg->start_batch * (size_t)r->batch) != 0)
        return cli_fail("train", "--resume %s: unreadable train.epoch_sums", resume);
    if (!r->quiet) fprintf(stderr, "resuming %s at epoch %d, step %ld\n", resume, ck.epoch + 1, step);
    return 0;
}

/* --op-times: each op that took any time, then what the ops leave of the run
 * (batches, optimiser, evaluation's bookkeeping, checkpoints, progress). */
static void print_op_times(const nb_graph *g, double total) {
    double ops = 0;
    fprintf(stderr, "\ntime per op over the run (%.3f s):\n", total);
    fprintf(stderr, "  %-24s %-16s %12s %12s %7s\n", "node", "op", "forward ms", "backward ms",
            "share");
    for (nb_node n = 0; n < nb_graph_node_count(g); n++) {
        double f = 0, b = 0;
        if (nb_node_times(g, n, &f, &b) != NB_OK || f + b == 0) continue;
        const char *name = nb_node_name(g, n);
        fprintf(stderr, "  %-24s %-16s %12.3f %12.3f %6.1f%%\n", name ? name : "",
                nb_node_op(g, n), 1e3 * f, 1e3 * b, total > 0 ? 100 * (f + b) / total : 0);
        ops += f + b;
    }
    fprintf(stderr, "  the ops %.3f s; the rest of the run %.3f s\n", ops, total - ops);
}

/* nb_fit with progress, checkpoints and Ctrl-C. */
static int train(run *r, nb_fit_config *cfg, size_t per_epoch) {
    if (!r->quiet) {
        fprintf(stderr, "%s: %zu parameters; %zu training samples", r->model_path,
                nb_param_count(r->m.graph), r->train.n);
        if (r->val.n) fprintf(stderr, ", %zu validation", r->val.n);
        char text[256];
        fprintf(stderr, "\noptimiser %s\n",
                optim_text(nb_optim_get_config(r->opt), r->optim_name, text, sizeof text));
        if (nb_graph_precision(r->m.graph) != NB_PRECISION_FP32)
            fprintf(stderr, "precision %s: products of bf16-rounded operands, summed in fp32\n",
                    nb_precision_name(nb_graph_precision(r->m.graph)));
    }
    const char *slow = nb_blas_warning();
    if (slow) fprintf(stderr, "warning: %s\n", slow);
    progress_init(&r->prog, stderr, cfg->epochs, per_epoch, (size_t)r->batch);
    if (r->hist.n) { /* resumed: the bar shows the last validation metrics */
        r->prog.val_loss = r->hist.rows[r->hist.n - 1].val_loss;
        r->prog.val_acc = r->hist.rows[r->hist.n - 1].val_acc;
    }
    epoch_sums_start(&r->sums);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    if (r->op_times && nb_graph_time_ops(r->m.graph, 1) != NB_OK)
        return cli_fail("train", "--op-times: %s", nb_last_error());
    double started = r->op_times ? progress_now() : 0;
    nb_status s = nb_fit(r->m.graph, cfg, &r->train, r->val.n ? &r->val : NULL, NULL);
    if (r->op_times && s == NB_OK && nb_dist_rank(r->dist) == 0)
        print_op_times(r->m.graph, progress_now() - started);
    /* the handler stays until the interrupt checkpoint is written: another
     * Ctrl-C must not kill that write */
    if (!interrupted) signal(SIGINT, SIG_DFL);
    if (r->failed) return cli_fail("train", "%s", r->err);
    if (s != NB_OK) {
        char kept[4200] = "";
        if (r->ckpt && r->ckpt_step >= 0)
            snprintf(kept, sizeof kept, " (checkpoint %s, from step %ld, is intact)", r->ckpt,
                     r->ckpt_step);
        else if (r->ckpt)
            snprintf(kept, sizeof kept, " (no checkpoint was written)");
        return cli_fail("train", "%s%s", nb_last_error(), kept);
    }
    if (interrupted) {
        long step = nb_optim_steps(r->opt);
        if (r->ckpt && save_checkpoint(r, (int)((size_t)step / per_epoch), step) == 0)
            fprintf(stderr, "\ninterrupted at step %ld; continue with --resume %s\n", step, r->ckpt);
        else
            fprintf(stderr, "\ninterrupted at step %ld (no checkpoint: use --out or --checkpoint)\n",
                    step);
        signal(SIGINT, SIG_DFL);
        return 130;
    }
    return 0;
}

/* The log and the plot of a finished run, from its checkpoint's history. */
static int rewrite_history(run *r) {
    if (r->log && history_write_log(&r->hist, r->log))
        return cli_fail("train", "--log %s: %s", r->log, strerror(errno));
    if (r->plot && history_plot(&r->hist, r->plot, r->model_path))
        return cli_fail("train", "--plot %s: %s", r->plot, strerror(errno));
    return 0;
}

/* Save the weights (with the model text and the input preprocessing) and
 * report the test set's loss and accuracy. */
static int keep_result(run *r, const char *out) {
    if (nb_dist_rank(r->dist) > 0) return 0; /* rank 0 writes and reports */
    nb_graph *g = r->m.graph;
    char why[64];
    int epoch = early_stop_choose(&r->stop, g, r->hist.n, why, sizeof why); /* --keep best */
    char bad[160];
    if (out && cli_nonfinite_param(g, bad, sizeof bad))
        return cli_fail("train", "%s: not saving --out %s", bad, out);
    if (out) {
        nb_kv kv[8];
        int n = 0;
        kv[n++] = (nb_kv){"nabla.model", r->m.text};
        n += preprocess_to_meta(&r->pre, kv + n);
        if (nb_save_weights(g, out, kv, n) != NB_OK)
            return cli_fail("train", "--out: %s", nb_last_error());
        if (!r->quiet) fprintf(stderr, "weights of epoch %d (%s) saved to %s\n", epoch, why, out);
    }
    if (!r->test.n) return 0;
    return report_evaluate("train", &r->m, &r->test, (int)r->batch,
                           report_class_names(&r->pre, &r->test, r->m.classes), "test ",
                           &r->report);
}

/* Under mpirun, the processes other than rank 0 write no files and print
 * nothing: their output flags are dropped. */
static void only_rank0_writes(cli_flag *f, int nf) {
    static const char *const outputs[] = {
        "out", "checkpoint", "checkpoint-every", "log", "plot", "tensorboard", "diagnose",
        "diagnose-every", "diagnose-log", "test", "top-k", "report", "confusion"};
    for (int i = 0; i < nf; i++)
        for (size_t k = 0; k < sizeof outputs / sizeof outputs[0]; k++)
            if (strcmp(f[i].name, outputs[k]) == 0) f[i].value = NULL;
    for (int i = 0; i < nf; i++)
        if (strcmp(f[i].name, "quiet") == 0) f[i].value = "1";
}

static int train_command(int argc, char **argv, nb_dist *dist) {
    cli_flag f[] = {{"data", 1, 0},         {"test", 1, 0},     {"val-split", 1, 0},
                    {"no-standardize", 0, 0}, {"epochs", 1, 0},   {"batch", 1, 0},
                    {"optim", 1, 0},        {"lr", 1, 0},       {"weight-decay", 1, 0},
                    {"schedule", 1, 0},     {"clip-norm", 1, 0}, {"seed", 1, 0},
                    {"threads", 1, 0},      {"out", 1, 0},      {"checkpoint", 1, 0},
                    {"checkpoint-every", 1, 0}, {"resume", 1, 0}, {"log", 1, 0},
                    {"plot", 1, 0},         {"quiet", 0, 0},    {"flip", 0, 0},
                    {"crop", 1, 0},         {"diagnose", 0, 0}, {"diagnose-every", 1, 0},
                    {"diagnose-log", 1, 0}, {"top-k", 1, 0}, {"report", 1, 0},
                    {"confusion", 1, 0},    {"skip-bad", 0, 0}, {"val", 1, 0},
                    {"sync-bn", 0, 0},
                    {"early-stop", 1, 0},   {"monitor", 1, 0}, {"min-delta", 1, 0},
                    {"keep", 1, 0},         {"tensorboard", 1, 0},
                    {"init", 1, 0},         {"init-skip", 1, 0}, {"freeze", 1, 0},
                    {"set", 1, 0},          {"precision", 1, 0}, {"op-times", 0, 0}};
    const int nf = (int)(sizeof f / sizeof f[0]);
    const char *pos[1];
    int npos, want_help;
    int rc = cli_parse("train", argc, argv, 2, f, nf, pos, 1, &npos, &want_help);
    if (rc) return rc;
    if (want_help)
        return printf("%s%s%s%s%s%s", help, cli_set_help, early_stop_help, finetune_help,
                      help_output, help_diagnostics), 0;
    if (npos != 1) return cli_usage_error("train", "expected one model file");
    if (nb_dist_rank(dist) > 0) only_rank0_writes(f, nf);
    if ((rc = finetune_check_repeats(argc, argv))) return rc;
    const char *v;
#define FLAG(name) cli_get(f, nf, name)
    if (!FLAG("data")) return cli_usage_error("train", "--data is required");

    /* options */
    run r;
    memset(&r, 0, sizeof r);
    r.dist = dist;
    char model_path[4096];
    r.model_path = cli_model_path(pos[0], model_path, sizeof model_path);
    r.data_spec = FLAG("data");
    r.quiet = FLAG("quiet") != NULL;
    r.op_times = FLAG("op-times") != NULL;
    r.log = FLAG("log");
    r.plot = FLAG("plot");
    r.ckpt_step = -1;
    r.diag_log_path = FLAG("diagnose-log");
    r.diag_print = FLAG("diagnose") || FLAG("diagnose-every");
    long epochs = 10, seed = 0, threads = 0, crop = 0;
    double val_split = 0, lr = 0, wd = 0, clip = 0;
    r.batch = 128;
    if ((v = FLAG("epochs")) && !cli_int("train", "epochs", v, 1, 1000000, &epochs)) return 2;
    if ((v = FLAG("batch")) && !cli_int("train", "batch", v, 1, 1 << 20, &r.batch)) return 2;
    if ((v = FLAG("seed")) && !cli_int("train", "seed", v, 0, 2147483647L, &seed)) return 2;
    if ((v = FLAG("threads")) && !cli_int("train", "threads", v, 1, 1024, &threads)) return 2;
    nb_precision precision = NB_PRECISION_FP32;
    if ((v = FLAG("precision")) && !cli_precision("train", v, &precision)) return 2;
    if ((v = FLAG("val-split")) && !cli_double("train", "val-split", v, 0, 0.99, &val_split)) return 2;
    /* numbers only here: their ranges are checked once, by the library below */
    if ((v = FLAG("lr")) && !cli_number("train", "lr", v, &lr)) return 2;
    if ((v = FLAG("weight-decay")) && !cli_number("train", "weight-decay", v, &wd)) return 2;
    if ((v = FLAG("clip-norm")) && !cli_number("train", "clip-norm", v, &clip)) return 2;
    if ((v = FLAG("crop")) && !cli_int("train", "crop", v, 1, 1 << 16, &crop)) return 2;
    if ((v = FLAG("diagnose-every")) &&
        !cli_int("train", "diagnose-every", v, 1, 1L << 40, &r.diag_every))
        return 2;
    if ((v = FLAG("checkpoint-every")) &&
        !cli_int("train", "checkpoint-every", v, 1, 1L << 40, &r.ckpt_every))
        return 2;
    r.val_spec = FLAG("val");
    if (r.val_spec && val_split > 0)
        return cli_usage_error("train", "--val and --val-split exclude each other");
    char split_name[64];
    snprintf(split_name, sizeof split_name, "split:%.17g", val_split);
    if ((rc = early_stop_options(&r.stop, FLAG("early-stop"), FLAG("monitor"), FLAG("min-delta"),
                                 FLAG("keep"), r.val_spec ? r.val_spec :
                                 val_split > 0 ? split_name : NULL)))
        return rc;
    nb_optim_config oc;
    r.optim_name = FLAG("optim") ? FLAG("optim") : "adam";
    if (nb_optim_parse(r.optim_name, &oc) != NB_OK)
        return cli_usage_error("train", "--optim: %s", nb_last_error());
    if (FLAG("lr")) oc.lr = lr;
    if (FLAG("weight-decay")) oc.weight_decay = wd;
    if (nb_optim_check(&oc) != NB_OK)
        return cli_usage_error("train", "--lr / --weight-decay: %s", nb_last_error());
    int ok;
    nb_fit_config cfg = nb_fit_defaults(NB_NONE, NB_NONE, NB_NONE, NB_NONE);
    cfg.schedule = schedule_for(FLAG("schedule") ? FLAG("schedule") : "constant", (int)epochs,
                                oc.lr, &ok);
    if (!ok) return cli_usage_error("train", "--schedule: %s", nb_last_error());
    cfg.epochs = (int)epochs;
    cfg.batch_size = (int)r.batch;
    cfg.clip_norm = clip;
    cfg.augment_flip = FLAG("flip") != NULL;
    cfg.augment_crop = (int)crop;
    cfg.on_batch = on_batch;
    cfg.on_epoch = on_epoch;
    cfg.user = &r;
    if (nb_fit_check(&cfg) != NB_OK)
        return cli_usage_error("train", "--clip-norm / --schedule: %s", nb_last_error());
    const char *out = FLAG("out"), *resume = FLAG("resume");
    char ckpt_default[4096];
    r.ckpt = FLAG("checkpoint");
    if (!r.ckpt && out) {
        snprintf(ckpt_default, sizeof ckpt_default, "%s.ckpt", out);
        r.ckpt = ckpt_default;
    }
    if ((FLAG("init") && resume) || (FLAG("init-skip") && !FLAG("init")))
        return cli_usage_error("train", FLAG("init") ? "--init starts a run; --resume continues "
                               "one" : "--init-skip needs --init FILE");
    r.init = FLAG("init");
    r.freeze = FLAG("freeze");
    if (r.ckpt_every && !r.ckpt)
        return cli_usage_error("train", "--checkpoint-every needs --checkpoint FILE or --out FILE");
    snprintf(r.augment, sizeof r.augment, "flip=%d crop=%ld", FLAG("flip") != NULL, crop);
    /* a long run must not fail at its end for want of a directory */
    if ((out && !cli_check_output("train", "out", out)) ||
        (r.ckpt && !cli_check_output("train", "checkpoint", r.ckpt)) ||
        (r.log && !cli_check_output("train", "log", r.log)) ||
        (r.plot && !cli_check_output("train", "plot", r.plot)) ||
        (r.diag_log_path && !cli_check_output("train", "diagnose-log", r.diag_log_path)))
        return 1;
    if ((rc = report_options("train", FLAG("top-k"), FLAG("report"), FLAG("confusion"),
                             &r.report)))
        return rc;
    if ((FLAG("top-k") || FLAG("report") || FLAG("confusion")) && !FLAG("test") &&
        !data_has_test_split(r.data_spec))
        return cli_usage_error("train", "--top-k, --report and --confusion need test data "
                               "(--test SOURCE)");
    if (FLAG("tensorboard") && !nb_tb_available())
        return cli_fail("train", "--tensorboard needs protobuf-c: this nabla was built without "
                        "it (install protobuf-c-compiler and libprotobuf-c-dev, make deps, and "
                        "rebuild)");
    if (threads && nb_set_threads((int)threads) != NB_OK)
        return cli_fail("train", "%s", nb_last_error());
    r.seed = (uint64_t)seed;

    /* model, data, parameters, optimiser; then train and keep the result */
    rc = claim_files(&r, out, FLAG("test"), resume);
    if (!rc && cli_model_load(r.model_path, &r.m) != NB_OK)
        rc = cli_fail("train", "%s", nb_last_error());
    if (!rc && r.m.loss == NB_NONE) rc = cli_fail("train", "%s: the model has no 'loss' line", r.model_path);
    if (!rc) rc = cli_set_precision("train", r.m.graph, precision);
    if (!rc) rc = report_check("train", &r.m, &r.report);
    if (!rc) rc = early_stop_setup(&r.stop, r.m.graph, r.m.classes, r.model_path);
    if (!rc && resume) rc = check_resume(&r, resume, FLAG("seed"));
    folder_source_setup(&r.m, FLAG("skip-bad") != NULL, r.quiet);
    if (!rc) rc = prepare_data(&r, FLAG("test"), val_split, !FLAG("no-standardize"));
    if (!rc) {
        nb_rng_seed(&r.rng, r.seed);
        r.opt = nb_optim_new(&oc, nb_param_count(r.m.graph));
        if (!r.opt || nb_graph_init(r.m.graph, &r.rng) != NB_OK)
            rc = cli_fail("train", "%s", nb_last_error());
    }
    if (!rc && resume) rc = finetune_check_resume(resume, r.freeze);
    if (!rc) rc = finetune_apply(r.m.graph, r.model_path, r.init, FLAG("init-skip"),
                                 r.freeze, r.quiet);
    cfg.input = r.m.input;
    cfg.target = r.m.target;
    cfg.loss = r.m.loss;
    cfg.output = r.m.classes ? r.m.output : NB_NONE;
    cfg.seed = r.seed;
    cfg.optimizer = r.opt;
    cfg.dist = dist;
    size_t per_epoch = (r.train.n + (size_t)r.batch - 1) / (size_t)r.batch;
    if (!rc && resume) rc = restore(&r, resume, &cfg, per_epoch);
    /* every process from rank 0's state (the same already, unless a file differs) */
    if (!rc && dist && (nb_dist_broadcast_state(dist, r.m.graph, r.opt) != NB_OK ||
                        nb_dist_sync_batch_norm(dist, r.m.graph, FLAG("sync-bn") != NULL) != NB_OK))
        rc = cli_fail("train", "%s", nb_last_error());
    /* by default the first batch of every epoch */
    if ((r.diag_print || r.diag_log_path) && !r.diag_every) r.diag_every = (long)per_epoch;
    if (!rc && r.diag_every) rc = diagnose_setup(&r, resume != NULL);
    if (r.diag_every) cfg.on_gradients = fill_before_diagnosed_step;
    if (!rc && !r.finished && !out && !r.quiet)
        fprintf(stderr, "note: no --out: the trained weights will not be saved\n");
    if (!rc && FLAG("tensorboard") && !r.finished &&
        tb_log_open(&r.tb, FLAG("tensorboard"), &cfg.schedule, oc.lr) != NB_OK)
        rc = cli_fail("train", "--tensorboard: %s", nb_last_error());
    if (!rc && !r.finished) rc = train(&r, &cfg, per_epoch);
    if (!rc && tb_log_close(&r.tb) != NB_OK) rc = cli_fail("train", "--tensorboard: %s", nb_last_error());
    if (!rc && r.finished) rc = rewrite_history(&r);
    if (!rc) rc = keep_result(&r, out);
    run_free(&r);
    return rc;
#undef FLAG
}

int cmd_train(int argc, char **argv) {
    nb_dist *dist;
    int rc = dist_launch_start("train", &dist);
    if (rc == 0) rc = train_command(argc, argv, dist);
    return dist_launch_finish(dist, rc);
}
