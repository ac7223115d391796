/* nabla lr-find MODEL --data SRC: the learning-rate range test of fastai's
 * lr_find.  The rate grows exponentially from --start-lr to --end-lr over
 * one pass, one optimiser step per rate; the loss, smoothed, is recorded
 * until it exceeds 4 times its best; the suggestion is fastai's "minimum"
 * rule (the rate of the lowest smoothed loss, divided by 10).  Nothing is
 * saved: the command only measures. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "data_source.h"
#include "folder_source.h"
#include "optim_text.h"
#include "outfile.h"
#include "outputs.h"
#include "svgplot.h"

static const char *help =
    "usage: nabla lr-find MODEL.nn --data SOURCE [options]\n\n"
    "The learning-rate range test (fastai's lr_find): from freshly initialised\n"
    "weights, one optimiser step per mini-batch with a rate growing exponentially\n"
    "from --start-lr to --end-lr, over at most one pass of the shuffled data.  The\n"
    "loss is smoothed (exponentially weighted average, beta 0.98, bias corrected);\n"
    "the test stops early once the smoothed loss exceeds 4 times its lowest value\n"
    "(or the loss is no longer finite).  The suggested rate is fastai's 'minimum'\n"
    "rule: the rate of the lowest smoothed loss divided by 10, leaving out the\n"
    "first tenth of the steps and the last 5 points as fastai does (--start-lr\n"
    "when that is below the range).  fastai's 'valley' (within the longest run of\n"
    "falling losses) and 'steep' (steepest descent against log rate) rules are\n"
    "printed for comparison.  No weights are written.  The data are prepared as\n"
    "'nabla train' prepares them.\n\n"
    "  --data SOURCE          as for 'nabla train' (see its --help)\n"
    "  --batch N              mini-batch size (default 128)\n"
    "  --optim NAME           as for 'nabla train' (default adam)\n"
    "  --start-lr X           first rate (default 1e-7)\n"
    "  --end-lr X             last rate (default 10)\n"
    "  --steps N              steps from start to end (default: the mini-batches of\n"
    "                         one pass, at most that many)\n"
    "  --plot FILE.svg        smoothed loss against rate (log axis), the\n"
    "                         suggestion marked\n"
    "  --seed N               seed of the initialisation and shuffling (default 0)\n"
    "  --no-standardize       CSV features as they are (as for 'nabla train')\n";

/* fastai leaves out the first tenth of the steps and the last 5 points; a
 * suggestion needs 2 points left */
enum { BETA_PERCENT = 98, MIN_STEPS = 8, SKIP_END = 5 };

typedef struct lr_trace {
    double *lr, *loss, *smooth;
    int n;            /* steps recorded */
    int stopped;      /* 1: the smoothed loss passed 4x its best; 2: not finite */
} lr_trace;

/* fastai's valley: the longest decreasing subsequence of y[lo..hi), and the
 * point (max_end - max_start)/3 + half of that past its start. */
static int valley(const double *y, int lo, int hi) {
    int n = hi - lo, max_start = 0, max_end = 0;
    int *lds = malloc((size_t)(n > 0 ? n : 1) * sizeof *lds);
    if (!lds) return -1;
    for (int i = 0; i < n; i++) lds[i] = 1;
    for (int i = 1; i < n; i++)
        for (int j = 0; j < i; j++) {
            if (y[lo + i] < y[lo + j] && lds[i] < lds[j] + 1) lds[i] = lds[j] + 1;
            if (lds[max_end] < lds[i]) max_end = i, max_start = max_end - lds[max_end];
        }
    free(lds);
    double sections = (max_end - max_start) / 3.0;
    int idx = max_start + (int)sections + (int)(sections / 2);
    return lo + (idx < n ? idx : n - 1);
}

/* fastai's "minimum" (the index of the lowest smoothed loss) and "steep"
 * (the rate where the smoothed loss falls fastest against log(rate)). */
static void min_and_steep(const lr_trace *t, int lo, int hi, int *min, double *steep) {
    int imin = lo, isteep = lo;
    double best = INFINITY;
    for (int i = lo; i < hi; i++) {
        if (t->smooth[i] < t->smooth[imin]) imin = i;
        if (i + 1 < hi) {
            double g = (t->smooth[i + 1] - t->smooth[i]) / (log(t->lr[i + 1]) - log(t->lr[i]));
            if (g < best) best = g, isteep = i;
        }
    }
    *min = imin;
    *steep = t->lr[isteep];
}

/* The data as nabla train prepares them, checked against the model. */
static int prepare(const char *spec, const nb_model *m, int standardize, nb_data *d) {
    data_text_default_length(cli_sample_size(m->graph, m->input));
    nb_status s = data_load(spec, "train", d);
    if (s == NB_OK && d->x_u8) s = nb_data_scale_unit(d);
    else if (s == NB_OK && standardize && !data_is_text(spec)) s = nb_data_standardize(d, NULL, NULL);
    if (s == NB_OK && d->sample_size != cli_sample_size(m->graph, m->input))
        s = nb_set_error(NB_ERR_SHAPE, "%s: samples have %zu values but the model takes %zu "
                         "values per sample", spec, d->sample_size,
                         cli_sample_size(m->graph, m->input));
    if (s == NB_OK) s = data_check_shape(d, spec, m->graph, m->input);
    for (size_t i = 0; s == NB_OK && m->classes && i < d->n; i++) {
        double y = (double)d->y[i * d->y_size];
        if (d->y_size != 1 || !(y >= 0 && y < m->classes) || y != floor(y))
            s = nb_set_error(NB_ERR_FORMAT, "%s: sample %zu has label %g; the model has %d "
                             "classes (labels 0 to %d)", spec, i, y, m->classes, m->classes - 1);
    }
    return s == NB_OK ? 0 : cli_fail("lr-find", "%s", nb_last_error());
}

/* One step per rate over a shuffled pass; fills t. */
static int range_test(const nb_model *m, nb_fit_config *cfg, const nb_data *d, int batch,
                      int steps, double start, double end, uint64_t seed, lr_trace *t) {
    size_t *idx = malloc(d->n * sizeof *idx);
    nb_real *xb = malloc((size_t)batch * d->sample_size * sizeof *xb);
    nb_real *yb = malloc((size_t)batch * d->y_size * sizeof *yb);
    int rc = 0;
    if (!idx || !xb || !yb) rc = cli_fail("lr-find", "out of memory for %zu samples", d->n);
    nb_rng rng;
    nb_rng_seed(&rng, seed ^ 0x6c7266696e64ull); /* not the initialisation's stream */
    for (size_t i = 0; !rc && i < d->n; i++) idx[i] = i;
    if (!rc) nb_rng_shuffle(&rng, idx, d->n);
    if (!rc && nb_graph_set_batch(m->graph, batch) != NB_OK)
        rc = cli_fail("lr-find", "%s", nb_last_error());
    const double beta = BETA_PERCENT / 100.0;
    double avg = 0, best = INFINITY;
    for (int i = 0; !rc && i < steps; i++) {
        size_t first = (size_t)i * (size_t)batch;
        int bs = (int)(d->n - first < (size_t)batch ? d->n - first : (size_t)batch);
        double lr = start * pow(end / start, steps > 1 ? (double)i / (steps - 1) : 0), loss;
        nb_status s = nb_data_batch(d, idx, first, (size_t)bs, xb, yb);
        if (s == NB_OK) s = nb_set_input(m->graph, cfg->input, xb, bs);
        if (s == NB_OK) s = nb_set_input(m->graph, cfg->target, yb, bs);
        if (s == NB_OK) s = nb_train_step(m->graph, cfg, lr, &loss);
        if (s == NB_ERR_NUMERIC) { /* diverged: the end of the test, not a failure */
            t->stopped = 2;
            break;
        }
        if (s != NB_OK) {
            rc = cli_fail("lr-find", "step %d (rate %.3g): %s", i + 1, lr, nb_last_error());
            break;
        }
        avg = beta * avg + (1 - beta) * loss;
        double smooth = avg / (1 - pow(beta, i + 1));
        t->lr[t->n] = lr, t->loss[t->n] = loss, t->smooth[t->n] = smooth, t->n++;
        if (smooth < best) best = smooth;
        if (smooth > 4 * best) {
            t->stopped = 1;
            break;
        }
    }
    free(idx);
    free(xb);
    free(yb);
    return rc;
}

/* The smoothed loss, the suggestion marked on it (at the nearest recorded
 * rate). */
static int plot(const char *path, const char *model, const lr_trace *t, double sug) {
    int at = 0;
    for (int i = 1; i < t->n; i++)
        if (fabs(log(t->lr[i] / sug)) < fabs(log(t->lr[at] / sug))) at = i;
    double sx[1] = {sug}, sy[1] = {t->smooth[at]};
    char label[64];
    snprintf(label, sizeof label, "suggestion %.2g", sug);
    svg_series se[] = {{.label = "smoothed loss", .x = t->lr, .y = t->smooth, .n = t->n},
                       {.label = label, .x = sx, .y = sy, .n = 1, .marker = 5,
                        .no_line = 1, .color = "#d62728"}};
    svg_panel p = {.title = model, .xlabel = "learning rate", .ylabel = "training loss",
                   .series = se, .n_series = 2, .log_x = 1};
    /* written beside and renamed: a failed write leaves an older plot whole */
    char *tmp;
    int rc = outfile_temp(path, &tmp);
    if (rc == 0) {
        rc = svg_write(tmp, "learning-rate range test", &p, 1);
        int e = errno;
        if (rc == 0) rc = outfile_replace(tmp, path);
        else unlink(tmp), errno = e;
        free(tmp);
    }
    return rc;
}

/* The table (about 12 rows), the suggestion, and the other rules; returns
 * the suggested rate, or -1 without memory. */
static double report(const lr_trace *t, int lo, int hi, int steps) {
    int imin, ivalley = valley(t->smooth, lo, hi);
    double steep;
    if (ivalley < 0) return -1;
    min_and_steep(t, lo, hi, &imin, &steep);
    printf("%6s %12s %12s %12s\n", "step", "rate", "loss", "smoothed");
    int every = t->n > 12 ? (t->n + 11) / 12 : 1;
    for (int i = 0; i < t->n; i++)
        if (i % every == 0 || i == t->n - 1 || i == imin)
            printf("%6d %12.4g %12.4g %12.4g%s\n", i + 1, t->lr[i], t->loss[i], t->smooth[i],
                   i == imin ? "  <- lowest smoothed loss" : "");
    if (t->stopped)
        printf("stopped after %d of %d steps: %s\n", t->n, steps,
               t->stopped == 1 ? "the smoothed loss passed 4 times its lowest value"
                               : "the loss or a gradient was no longer finite");
    printf("other rules: valley %.3g, steepest descent %.3g\n", t->lr[ivalley], steep);
    double sug = t->lr[imin] / 10;
    if (sug < t->lr[0]) { /* the range starts too high to show a descent */
        printf("suggested learning rate: %.3g (--start-lr: the lowest smoothed loss's rate / 10 "
               "is below the range; try a lower --start-lr)\n", t->lr[0]);
        return t->lr[0];
    }
    printf("suggested learning rate: %.3g (the lowest smoothed loss's rate / 10)\n", sug);
    return sug;
}

typedef struct lr_opts {
    long batch, steps, seed;
    double start, end;
    const char *plot, *optim;
    int standardize;
} lr_opts;

static int parse(int argc, char **argv, const char **model, const char **spec,
                 nb_optim_config *oc, lr_opts *o) {
    cli_flag f[] = {{"data", 1, 0},   {"batch", 1, 0}, {"optim", 1, 0},
                    {"start-lr", 1, 0}, {"end-lr", 1, 0}, {"steps", 1, 0},
                    {"plot", 1, 0},   {"seed", 1, 0},  {"no-standardize", 0, 0},
                    {"set", 1, 0}};
    const int nf = (int)(sizeof f / sizeof f[0]);
    const char *pos[1], *v;
    int npos, want_help;
    int rc = cli_parse("lr-find", argc, argv, 2, f, nf, pos, 1, &npos, &want_help);
    if (rc) return rc;
    if (want_help) return printf("%s%s", help, cli_set_help), -1;
    if (npos != 1) return cli_usage_error("lr-find", "expected one model file");
    if (!(*spec = cli_get(f, nf, "data"))) return cli_usage_error("lr-find", "--data is required");
    *model = pos[0];
    *o = (lr_opts){.batch = 128, .start = 1e-7, .end = 10, .plot = cli_get(f, nf, "plot"),
                   .standardize = !cli_get(f, nf, "no-standardize")};
    if (((v = cli_get(f, nf, "batch")) && !cli_int("lr-find", "batch", v, 1, 1 << 20, &o->batch)) ||
        ((v = cli_get(f, nf, "steps")) && !cli_int("lr-find", "steps", v, MIN_STEPS, 1L << 30, &o->steps)) ||
        ((v = cli_get(f, nf, "seed")) && !cli_int("lr-find", "seed", v, 0, 2147483647L, &o->seed)) ||
        ((v = cli_get(f, nf, "start-lr")) && !cli_double("lr-find", "start-lr", v, 1e-30, 1e30,
                                                         &o->start)) ||
        ((v = cli_get(f, nf, "end-lr")) && !cli_double("lr-find", "end-lr", v, 1e-30, 1e30,
                                                       &o->end)))
        return 2;
    if (!(o->end > o->start))
        return cli_usage_error("lr-find", "--end-lr %g must be above --start-lr %g", o->end,
                               o->start);
    o->optim = cli_get(f, nf, "optim") ? cli_get(f, nf, "optim") : "adam";
    if (nb_optim_parse(o->optim, oc) != NB_OK)
        return cli_usage_error("lr-find", "--optim: %s", nb_last_error());
    oc->lr = o->start;
    if (nb_optim_check(oc) != NB_OK) return cli_usage_error("lr-find", "%s", nb_last_error());
    if (o->plot && !cli_check_output("lr-find", "plot", o->plot)) return 1;
    return 0;
}

/* Run the test on a loaded model and data; report and plot. */
static int find(const char *model, nb_model *m, const nb_data *d, const nb_optim_config *oc,
                lr_opts *o) {
    size_t batches = (d->n + (size_t)o->batch - 1) / (size_t)o->batch;
    if (o->batch > (long)d->n) o->batch = (long)d->n;
    if (o->steps > (long)batches)
        return cli_usage_error("lr-find", "--steps %ld: one pass over the data has only %zu "
                               "mini-batches of %ld", o->steps, batches, o->batch);
    if (!o->steps) o->steps = (long)batches;
    if (o->steps < MIN_STEPS)
        return cli_fail("lr-find", "one pass over the data has %ld mini-batches of %ld; the "
                        "test takes at least %d steps: use a smaller --batch", o->steps,
                        o->batch, MIN_STEPS);
    nb_rng rng;
    nb_rng_seed(&rng, (uint64_t)o->seed);
    nb_optim *opt = nb_optim_new(oc, nb_param_count(m->graph));
    if (!opt || nb_graph_init(m->graph, &rng) != NB_OK) {
        nb_optim_free(opt);
        return cli_fail("lr-find", "%s", nb_last_error());
    }
    nb_fit_config cfg = nb_fit_defaults(m->input, m->target, m->loss, NB_NONE);
    cfg.optimizer = opt;
    lr_trace t = {.lr = calloc((size_t)o->steps, sizeof(double)),
                  .loss = calloc((size_t)o->steps, sizeof(double)),
                  .smooth = calloc((size_t)o->steps, sizeof(double))};
    int rc = !t.lr || !t.loss || !t.smooth ? cli_fail("lr-find", "out of memory") : 0;
    if (!rc)
        rc = range_test(m, &cfg, d, (int)o->batch, (int)o->steps, o->start, o->end,
                        (uint64_t)o->seed, &t);
    int lo = (int)(o->steps / 10), hi = t.n - SKIP_END;
    if (!rc && hi - lo < 2)
        rc = cli_fail("lr-find", "the loss diverged after %d of %ld steps, too early for a "
                      "suggestion; lower --start-lr or --end-lr", t.n, o->steps);
    double sug = 0;
    if (!rc) {
        char text[256];
        printf("%s: %zu training samples, batch %ld, optimiser %s\n", model, d->n, o->batch,
               optim_text(nb_optim_get_config(opt), o->optim, text, sizeof text));
        if ((sug = report(&t, lo, hi, (int)o->steps)) < 0) rc = cli_fail("lr-find", "out of memory");
    }
    if (!rc) {
        if (o->plot && plot(o->plot, model, &t, sug) != 0)
            rc = cli_fail("lr-find", "--plot %s: %s", o->plot, strerror(errno));
    }
    free(t.lr);
    free(t.loss);
    free(t.smooth);
    nb_optim_free(opt);
    return rc;
}

int cmd_lr_find(int argc, char **argv) {
    const char *model = NULL, *spec = NULL;
    nb_optim_config oc;
    lr_opts o;
    int rc = parse(argc, argv, &model, &spec, &oc, &o);
    if (rc) return rc < 0 ? 0 : rc;
    char path[4096];
    model = cli_model_path(model, path, sizeof path);
    cli_files files; /* the plot is no input, and locked while written */
    cli_files_init(&files);
    cli_files_input(&files, "the model file", model);
    cli_files_data(&files, "--data", spec);
    cli_files_output(&files, "--plot", o.plot);
    if ((rc = cli_files_check(&files, "lr-find")) || (rc = cli_files_lock(&files, "lr-find"))) {
        cli_files_release(&files);
        return rc;
    }
    nb_model m;
    if (cli_model_load(model, &m) != NB_OK) {
        cli_files_release(&files);
        return cli_fail("lr-find", "%s", nb_last_error());
    }
    nb_data d = {0};
    folder_source_setup(&m, 0, 1);
    if (m.loss == NB_NONE) rc = cli_fail("lr-find", "%s: the model has no 'loss' line", model);
    if (!rc) rc = prepare(spec, &m, o.standardize, &d);
    if (!rc) rc = find(model, &m, &d, &oc, &o);
    nb_data_free(&d);
    nb_model_free(&m);
    cli_files_release(&files);
    return rc;
}
