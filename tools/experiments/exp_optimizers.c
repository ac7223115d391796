/* nabla experiment optimizers: the optimisers compared (a) on three 2-D
 * functions, with their paths drawn over the level curves, and (b) training a
 * small MLP on Fashion-MNIST (docs/course.md, "optimizers: paths on 2-D
 * functions and on Fashion-MNIST").
 *
 * The paths come from the library itself: each function is a tiny graph whose
 * one parameter is the 2-vector theta = (x, y) and whose output is f(x, y),
 * and every step is nb_forward / nb_backward / nb_optim_step, exactly the loop
 * that trains a network.  Nothing here re-implements an update rule. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiment.h"
#include "nabla.h"
#include "svgplot.h"

#define R(v) ((nb_real)(v))

/* The optimisers, in the order of every table and legend (colours follow). */
enum { N_OPT = 7 };
static const struct {
    const char *name;   /* nb_optim_parse name and table key */
    const char *label;  /* legend */
} optimisers[N_OPT] = {
    {"sgd", "SGD"},
    {"momentum", "momentum"},
    {"ema-momentum", "EMA momentum"},
    {"nesterov", "Nesterov"},
    {"adagrad", "AdaGrad"},
    {"rmsprop", "RMSProp"},
    {"adam", "Adam"},
};

/* Print to stdout and to the summary file. */
static void say(FILE *txt, const char *fmt, ...) {
    va_list a;
    va_start(a, fmt);
    vprintf(fmt, a);
    va_end(a);
    if (txt) {
        va_start(a, fmt);
        vfprintf(txt, fmt, a);
        va_end(a);
    }
}

/* ------------------------------------------------------------ 2-D functions */

/* Builders: f(x, y) from the [1, 1] nodes x and y. */
static nb_node quadratic_f(nb_graph *g, nb_node x, nb_node y, nb_node one) {
    (void)one;
    return nb_add(g, nb_scale(g, nb_mul(g, x, x), R(0.05)), nb_mul(g, y, y));
}

static nb_node rosenbrock_f(nb_graph *g, nb_node x, nb_node y, nb_node one) {
    nb_node a = nb_sub(g, one, x), b = nb_sub(g, y, nb_mul(g, x, x));
    return nb_add(g, nb_mul(g, a, a), nb_scale(g, nb_mul(g, b, b), R(100.0)));
}

static nb_node saddle_f(nb_graph *g, nb_node x, nb_node y, nb_node one) {
    nb_node c = nb_sub(g, nb_mul(g, y, y), one);
    return nb_add(g, nb_mul(g, x, x), nb_scale(g, nb_mul(g, c, c), R(0.25)));
}

typedef struct surface {
    const char *name, *title;
    nb_node (*build)(nb_graph *, nb_node, nb_node, nb_node);
    double start[2];
    int steps;
    double tol;                 /* "reached" once f < tol (min f is 0 for all three)  */
    double x0, x1, y0, y1;      /* plot window                                      */
    double lr[N_OPT];           /* in the order of optimisers[]                     */
    int log_levels;             /* levels geometric from lev_lo (else linear)       */
    double lev_lo, lev_hi;
    int n_levels;
    int escape;                 /* report the step where |y| first exceeds 0.5      */
    const double *level_list;   /* n_levels explicit levels instead (or NULL)       */
} surface;

/* The saddle's levels include f = 1/4, the curve through the saddle point. */
static const double saddle_levels[] = {0.01, 0.05, 0.12, 0.25, 0.4, 0.6, 0.85,
                                       1.15, 1.5, 1.9, 2.4, 3, 3.7};

/* Learning rates.  The SGD family (plain, both momentum forms, Nesterov)
 * shares one rate per function so the comparison is at equal eta; the
 * adaptive methods get rates that suit their normalised steps. */
static const surface surfaces[] = {
    {.name = "quadratic", .title = "f = x^2/20 + y^2 (elongated bowl)", .build = quadratic_f,
     .start = {-7, 2}, .steps = 300, .tol = 1e-4, .x0 = -8, .x1 = 8, .y0 = -3, .y1 = 3,
     .lr = {0.3, 0.3, 0.3, 0.3, 1.5, 0.1, 0.3},
     .log_levels = 1, .lev_lo = 0.01, .lev_hi = 60, .n_levels = 13},
    {.name = "rosenbrock", .title = "Rosenbrock (1-x)^2 + 100(y-x^2)^2", .build = rosenbrock_f,
     .start = {-1.2, 1}, .steps = 2000, .tol = 1e-4, .x0 = -2, .x1 = 2, .y0 = -1, .y1 = 3,
     .lr = {1e-3, 1e-3, 1e-3, 1e-3, 0.5, 0.01, 0.05},
     .log_levels = 1, .lev_lo = 0.5, .lev_hi = 2000, .n_levels = 13},
    {.name = "saddle", .title = "saddle x^2 + (y^2-1)^2/4, start near y=0", .build = saddle_f,
     .start = {-1.8, 1e-6}, .steps = 300, .tol = 1e-4, .x0 = -2.2, .x1 = 1.2, .y0 = -2,
     .y1 = 1.6, .lr = {0.05, 0.05, 0.05, 0.05, 0.3, 0.02, 0.05},
     .level_list = saddle_levels, .n_levels = sizeof saddle_levels / sizeof saddle_levels[0],
     .escape = 1},
};
enum { N_SURF = sizeof surfaces / sizeof surfaces[0] };

typedef struct path2d {
    double *x, *y, *f;   /* steps + 1 values: theta_0 .. theta_steps and f there */
    int n;               /* values recorded (fewer if the run diverged)         */
    int hit, escape;     /* first step with f < tol / |y| > 0.5; -1: never      */
    int diverged;
} path2d;

typedef struct fgraph {
    nb_graph *g;
    nb_node f;
} fgraph;

static int build_surface(const surface *s, fgraph *fg) {
    fg->g = nb_graph_new();
    if (!fg->g) return -1;
    nb_graph *g = fg->g;
    int dims[2] = {1, 2}, col[2] = {2, 1}, one_dims[2] = {1, 1};
    const nb_real ex[2] = {1, 0}, ey[2] = {0, 1}, one_v[1] = {1};
    nb_init zero = {.kind = NB_INIT_ZEROS};
    nb_node theta = nb_param(g, "theta", 2, dims, zero);
    nb_node x = nb_matmul(g, theta, nb_constant(g, "ex", 2, col, ex));
    nb_node y = nb_matmul(g, theta, nb_constant(g, "ey", 2, col, ey));
    nb_node one = nb_constant(g, "one", 2, one_dims, one_v);
    fg->f = nb_sum(g, s->build(g, x, y, one));
    if (nb_graph_status(g) != NB_OK) return -1;
    nb_rng r;
    nb_rng_seed(&r, 0);
    if (nb_graph_init(g, &r) != NB_OK || nb_param_count(g) != 2) return -1;
    return 0;
}

/* f at (x, y), through the graph. */
static double eval_f(fgraph *fg, double x, double y) {
    nb_real *p = nb_params(fg->g);
    p[0] = (nb_real)x;
    p[1] = (nb_real)y;
    if (nb_forward(fg->g, fg->f) != NB_OK) return NAN;
    return (double)nb_value(fg->g, fg->f)[0];
}

/* One optimiser from s->start for s->steps steps. */
static int run_path(const surface *s, fgraph *fg, int which, path2d *out) {
    nb_optim_config cfg;
    if (nb_optim_parse(optimisers[which].name, &cfg) != NB_OK) return -1;
    cfg.lr = s->lr[which];
    nb_optim *o = nb_optim_new(&cfg, 2);
    if (!o) return -1;
    nb_graph *g = fg->g;
    nb_real *p = nb_params(g);
    p[0] = (nb_real)s->start[0];
    p[1] = (nb_real)s->start[1];
    out->hit = out->escape = -1;
    out->diverged = 0;
    out->n = 0;
    for (int k = 0; k <= s->steps; k++) {
        nb_zero_grad(g);
        if (nb_forward(g, fg->f) != NB_OK || nb_backward(g, fg->f) != NB_OK) {
            nb_optim_free(o);
            return -1;
        }
        double f = (double)nb_value(g, fg->f)[0];
        if (!isfinite(f) || fabs((double)p[0]) > 1e6 || fabs((double)p[1]) > 1e6) {
            out->diverged = 1;
            break;
        }
        out->x[k] = (double)p[0];
        out->y[k] = (double)p[1];
        out->f[k] = f;
        out->n = k + 1;
        if (out->hit < 0 && f < s->tol) out->hit = k;
        if (out->escape < 0 && fabs((double)p[1]) > 0.5) out->escape = k;
        if (k == s->steps) break;
        if (nb_optim_step(o, p, nb_grads(g), cfg.lr) != NB_OK) {
            nb_optim_free(o);
            return -1;
        }
    }
    nb_optim_free(o);
    return 0;
}

/* Keep the points that move at least about a pixel from the last one kept
 * (and the last point): the zig-zags stay, the file stays small. */
static int thin_path(const surface *s, const path2d *p, double *xs, double *ys) {
    int m = 0;
    double lx = 0, ly = 0;
    for (int k = 0; k < p->n; k++) {
        double u = (p->x[k] - lx) / (s->x1 - s->x0), v = (p->y[k] - ly) / (s->y1 - s->y0);
        if (m == 0 || k == p->n - 1 || fabs(u) > 0.003 || fabs(v) > 0.004) {
            xs[m] = lx = p->x[k];
            ys[m] = ly = p->y[k];
            m++;
        }
    }
    return m;
}

/* ------------------------------------------------------------ Fashion-MNIST */

enum { FM_HIDDEN = 128, FM_BATCH = 128 };

typedef struct fm_run {
    double *loss_x, *loss_y;   /* mean training loss of each block of batches   */
    int n_loss, cap_loss;
    double block_sum;
    int block_n, block;        /* batches per block                             */
    size_t batches;            /* per epoch                                     */
    double *acc, *test_loss, *train_loss, *epoch_x; /* per epoch                */
    int n_epochs;
} fm_run;

static int fm_on_batch(const nb_batch_stats *st, void *user) {
    fm_run *r = user;
    r->block_sum += st->loss;
    if (++r->block_n == r->block || st->batch == st->batches) {
        if (r->n_loss < r->cap_loss) {
            r->loss_x[r->n_loss] =
                (double)(st->epoch - 1) + (double)st->batch / (double)st->batches;
            r->loss_y[r->n_loss] = r->block_sum / r->block_n;
            r->n_loss++;
        }
        r->block_sum = 0;
        r->block_n = 0;
    }
    return 0;
}

static int fm_on_epoch(const nb_epoch_stats *st, void *user) {
    fm_run *r = user;
    int e = r->n_epochs++;
    r->epoch_x[e] = st->epoch;
    r->train_loss[e] = st->train_loss;
    r->test_loss[e] = st->val_loss;
    r->acc[e] = 100.0 * st->val_acc;
    return 0;
}

typedef struct fm_setup {
    int epochs;
    size_t n_train, n_test;
    double lr[N_OPT];
} fm_setup;

/* Train the MLP once per optimiser from the same initial weights.  Returns 0,
 * 1 when the data set is missing (message in nb_last_error), -1 on error. */
static int run_fashion(const exp_ctx *ctx, const fm_setup *su, fm_run *runs, size_t *n_train,
                       size_t *n_test) {
    nb_data tr, te;
    memset(&tr, 0, sizeof tr);
    memset(&te, 0, sizeof te);
    if (nb_data_load("fashion-mnist", "train", NULL, &tr) != NB_OK) return 1;
    if (nb_data_load("fashion-mnist", "test", NULL, &te) != NB_OK) {
        nb_data_free(&tr);
        return 1;
    }
    int rc = -1;
    nb_graph *g = NULL;
    nb_optim *opt = NULL;
    if (nb_data_scale_unit(&tr) != NB_OK || nb_data_scale_unit(&te) != NB_OK) goto done;
    /* the first n of each split: both files are in random class order */
    if (su->n_train < tr.n) tr.n = su->n_train;
    if (su->n_test < te.n) te.n = su->n_test;
    *n_train = tr.n;
    *n_test = te.n;

    g = nb_graph_new();
    if (!g) goto done;
    int img[3] = {1, 28, 28};
    nb_node in = nb_input(g, "x", 3, img);
    nb_node target = nb_input(g, "target", 0, NULL);
    nb_node h = nb_relu(g, nb_dense(g, nb_flatten(g, in), FM_HIDDEN, "fc1", NULL));
    nb_node out = nb_dense(g, h, 10, "fc2", NULL);
    nb_node loss = nb_cross_entropy(g, out, target, R(0));
    if (nb_graph_status(g) != NB_OK) goto done;
    size_t batches = (tr.n + FM_BATCH - 1) / FM_BATCH;
    for (int k = 0; k < N_OPT; k++) {
        fm_run *r = &runs[k];
        r->batches = batches;
        r->block = batches >= 20 ? (int)(batches / 10) : 1;
        /* a point per whole block and one for the end of each epoch */
        r->cap_loss = su->epochs * (int)(batches / (size_t)r->block + 1);
        r->loss_x = malloc((size_t)r->cap_loss * sizeof(double));
        r->loss_y = malloc((size_t)r->cap_loss * sizeof(double));
        if (!r->loss_x || !r->loss_y) {
            nb_set_error(NB_ERR_NOMEM, "out of memory for the training-loss curve");
            goto done;
        }
        nb_rng rng;
        nb_rng_seed(&rng, ctx->seed);
        if (nb_graph_init(g, &rng) != NB_OK) goto done;
        nb_fit_config cfg = nb_fit_defaults(in, target, loss, out);
        cfg.epochs = su->epochs;
        cfg.batch_size = FM_BATCH;
        cfg.seed = ctx->seed;
        nb_optim_config oc;
        if (nb_optim_parse(optimisers[k].name, &oc) != NB_OK) goto done;
        oc.lr = su->lr[k];
        nb_optim_free(opt);
        if (!(opt = nb_optim_new(&oc, nb_param_count(g)))) goto done;
        cfg.optimizer = opt;
        cfg.on_batch = fm_on_batch;
        cfg.on_epoch = fm_on_epoch;
        cfg.user = r;
        if (nb_fit(g, &cfg, &tr, &te, NULL) != NB_OK) goto done;
    }
    rc = 0;
done:
    nb_optim_free(opt);
    nb_graph_free(g);
    nb_data_free(&tr);
    nb_data_free(&te);
    return rc;
}

/* ------------------------------------------------------------ the experiment */

enum { GRID = 100, MAX_LEVELS = 32, MAX_CURVE = 160 };

int exp_optimizers(const exp_ctx *ctx) {
    char svg_path[4096], txt_path[4096];
    snprintf(svg_path, sizeof svg_path, "%s/optimizers.svg", ctx->out_dir);
    snprintf(txt_path, sizeof txt_path, "%s/optimizers.txt", ctx->out_dir);
    FILE *txt = fopen(txt_path, "w");
    if (!txt) {
        fprintf(stderr, "nabla experiment optimizers: cannot write %s\n", txt_path);
        return 1;
    }
    int rc = 1;
    /* all buffers, freed at the end */
    path2d paths[N_SURF][N_OPT];
    double *grid[N_SURF], levels[N_SURF][MAX_LEVELS];
    double *thin_x[N_SURF][N_OPT], *thin_y[N_SURF][N_OPT];
    double *curve_x[N_SURF][N_OPT], *curve_y[N_SURF][N_OPT];
    fm_run runs[N_OPT];
    memset(paths, 0, sizeof paths);
    memset(grid, 0, sizeof grid);
    memset(thin_x, 0, sizeof thin_x);
    memset(thin_y, 0, sizeof thin_y);
    memset(curve_x, 0, sizeof curve_x);
    memset(curve_y, 0, sizeof curve_y);
    memset(runs, 0, sizeof runs);
    svg_contour contours[N_SURF];
    svg_series traj[N_SURF][N_OPT], curves[N_SURF][N_OPT], fm_series[3][N_OPT];
    svg_panel panels[3 * N_SURF];
    int n_panels = 0;
    memset(traj, 0, sizeof traj);
    memset(curves, 0, sizeof curves);
    memset(fm_series, 0, sizeof fm_series);
    memset(panels, 0, sizeof panels);

    say(txt, "optimizers: nabla's optimisers on three 2-D functions and on Fashion-MNIST\n");
    say(txt, "update rules (nb_optim, PyTorch 1.13 semantics): sgd p -= lr g; momentum "
             "v = 0.9 v - lr g, p += v (classical form); ema-momentum v = 0.9 v + 0.1 g, "
             "p -= lr v (exponential-average form); nesterov mu 0.9; adagrad eps 1e-10; rmsprop alpha 0.99 eps 1e-8; "
             "adam betas 0.9/0.999 eps 1e-8\n");
    say(txt, "(a) 2-D paths from the same start; steps_to_tol = first step with f < tol "
             "(min f = 0); escape = first step with |y| > 0.5\n");

    /* ---- (a) */
    for (int s = 0; s < N_SURF; s++) {
        const surface *su = &surfaces[s];
        fgraph fg = {0};
        if (build_surface(su, &fg) != 0) {
            fprintf(stderr, "nabla experiment optimizers: %s: %s\n", su->name, nb_last_error());
            nb_graph_free(fg.g);
            goto done;
        }
        grid[s] = malloc(sizeof(double) * GRID * GRID);
        if (!grid[s]) goto oom_graph;
        for (int j = 0; j < GRID; j++)
            for (int i = 0; i < GRID; i++)
                grid[s][j * GRID + i] = eval_f(&fg, su->x0 + (su->x1 - su->x0) * i / (GRID - 1),
                                               su->y0 + (su->y1 - su->y0) * j / (GRID - 1));
        for (int k = 0; k < su->n_levels && k < MAX_LEVELS; k++)
            levels[s][k] = su->level_list ? su->level_list[k]
                           : su->log_levels
                               ? su->lev_lo * pow(su->lev_hi / su->lev_lo,
                                                  (double)k / (su->n_levels - 1))
                               : su->lev_lo + (su->lev_hi - su->lev_lo) * k / (su->n_levels - 1);
        contours[s] = (svg_contour){GRID, GRID, su->x0, su->x1, su->y0, su->y1, grid[s],
                                    levels[s], su->n_levels};
        say(txt, "\n%s: %s, start (%g, %g), %d steps, tol %g\n", su->name, su->title,
            su->start[0], su->start[1], su->steps, su->tol);
        say(txt, "%-11s %-13s %-8s %-11s %-13s %s\n", "function", "optimiser", "lr", "final_f",
            "steps_to_tol", su->escape ? "escape" : "");
        for (int k = 0; k < N_OPT; k++) {
            path2d *p = &paths[s][k];
            size_t n = (size_t)su->steps + 1;
            p->x = malloc(n * sizeof *p->x);
            p->y = malloc(n * sizeof *p->y);
            p->f = malloc(n * sizeof *p->f);
            thin_x[s][k] = malloc(n * sizeof(double));
            thin_y[s][k] = malloc(n * sizeof(double));
            curve_x[s][k] = malloc(MAX_CURVE * 2 * sizeof(double));
            curve_y[s][k] = malloc(MAX_CURVE * 2 * sizeof(double));
            if (!p->x || !p->y || !p->f || !thin_x[s][k] || !thin_y[s][k] || !curve_x[s][k] ||
                !curve_y[s][k])
                goto oom_graph;
            if (run_path(su, &fg, k, p) != 0) {
                fprintf(stderr, "nabla experiment optimizers: %s %s: %s\n", su->name,
                        optimisers[k].name, nb_last_error());
                nb_graph_free(fg.g);
                goto done;
            }
            char hit[32], esc[32];
            if (p->hit >= 0) snprintf(hit, sizeof hit, "%d", p->hit);
            else snprintf(hit, sizeof hit, "%s", p->diverged ? "diverged" : "never");
            if (p->escape >= 0) snprintf(esc, sizeof esc, "%d", p->escape);
            else snprintf(esc, sizeof esc, "never");
            say(txt, "%-11s %-13s %-8g %-11.3g %-13s %s\n", su->name, optimisers[k].name,
                su->lr[k], p->diverged ? NAN : p->f[p->n - 1], hit, su->escape ? esc : "");

            int m = thin_path(su, p, thin_x[s][k], thin_y[s][k]);
            traj[s][k] = (svg_series){.label = optimisers[k].label, .x = thin_x[s][k],
                                      .y = thin_y[s][k], .n = m};
            /* f against the step, at most about MAX_CURVE points, floored at 1e-10
             * so that an exact 0 (float underflow) stays on the log axis */
            int every = (p->n + MAX_CURVE - 1) / MAX_CURVE, c = 0;
            for (int i = 0; i < p->n; i += every) {
                curve_x[s][k][c] = i;
                curve_y[s][k][c++] = fmax(p->f[i], 1e-10);
            }
            curves[s][k] = (svg_series){.label = optimisers[k].label, .x = curve_x[s][k],
                                        .y = curve_y[s][k], .n = c};
        }
        nb_graph_free(fg.g);
        continue;
    oom_graph:
        nb_graph_free(fg.g);
        fprintf(stderr, "nabla experiment optimizers: out of memory\n");
        goto done;
    }
    /* one legend for the paths, where no path goes: the saddle panel's lower left */
    for (int s = 0; s < N_SURF; s++)
        panels[n_panels++] = (svg_panel){
            .title = surfaces[s].title, .xlabel = "x", .ylabel = "y", .series = traj[s],
            .n_series = N_OPT, .contour = &contours[s],
            .legend_at = s == N_SURF - 1 ? SVG_LEGEND_AUTO : SVG_LEGEND_NONE};
    for (int s = 0; s < N_SURF; s++)
        panels[n_panels++] = (svg_panel){.title = surfaces[s].name, .xlabel = "step",
                                         .ylabel = "f (floor 1e-10)", .log_y = 1,
                                         .series = curves[s], .n_series = N_OPT,
                                         .legend_at = SVG_LEGEND_NONE};

    /* ---- (b) */
    fm_setup fs = {.epochs = ctx->quick ? 2 : 10,
                   .n_train = ctx->quick ? 2000 : 60000,
                   .n_test = ctx->quick ? 2000 : 10000,
                   .lr = {0.05, 0.05, 0.05, 0.05, 0.05, 1e-3, 1e-3}};
    for (int k = 0; k < N_OPT; k++) {
        fm_run *r = &runs[k];
        r->acc = malloc((size_t)fs.epochs * sizeof(double));
        r->test_loss = malloc((size_t)fs.epochs * sizeof(double));
        r->train_loss = malloc((size_t)fs.epochs * sizeof(double));
        r->epoch_x = malloc((size_t)fs.epochs * sizeof(double));
        if (!r->acc || !r->test_loss || !r->train_loss ||
            !r->epoch_x) {
            fprintf(stderr, "nabla experiment optimizers: out of memory\n");
            goto done;
        }
    }
    size_t n_train = 0, n_test = 0;
    int fm = run_fashion(ctx, &fs, runs, &n_train, &n_test);
    if (fm < 0) {
        fprintf(stderr, "nabla experiment optimizers: fashion-mnist: %s\n", nb_last_error());
        goto done;
    }
    if (fm == 1) {
        /* part (a) stands on its own: report the missing data, exit 0 */
        say(txt, "\n(b) fashion-mnist: skipped: the data set could not be loaded (%s)\n",
            nb_last_error());
        fprintf(stderr, "nabla experiment optimizers: Fashion-MNIST part skipped: %s\n",
                nb_last_error());
    } else {
        say(txt, "\n(b) fashion-mnist: 784-%d-10 MLP (ReLU, PyTorch init, same initial weights "
                 "for all), batch %d, %zu training and %zu test images, %d epochs, constant lr\n",
            FM_HIDDEN, FM_BATCH, n_train, n_test, fs.epochs);
        say(txt, "%-8s %-13s %-8s %-12s %-12s %-11s %s\n", "data", "optimiser", "lr",
            "train_loss1", "train_loss", "test_loss", "test_acc");
        for (int k = 0; k < N_OPT; k++) {
            const fm_run *r = &runs[k];
            int e = r->n_epochs - 1;
            say(txt, "%-8s %-13s %-8g %-12.4f %-12.4f %-11.4f %.2f\n", "fmnist",
                optimisers[k].name, fs.lr[k], r->train_loss[0], r->train_loss[e],
                r->test_loss[e], r->acc[e]);
            fm_series[0][k] = (svg_series){.label = optimisers[k].label, .x = r->loss_x,
                                           .y = r->loss_y, .n = r->n_loss};
            fm_series[1][k] = (svg_series){.label = optimisers[k].label, .x = r->epoch_x,
                                           .y = r->acc, .n = r->n_epochs, .marker = 2.5};
            fm_series[2][k] = (svg_series){.label = optimisers[k].label, .x = r->epoch_x,
                                           .y = r->test_loss, .n = r->n_epochs, .marker = 2.5};
        }
        panels[n_panels++] = (svg_panel){.title = "Fashion-MNIST: training loss",
                                         .xlabel = "epoch",
                                         .ylabel = runs[0].block > 1
                                                       ? "mean loss per tenth of an epoch"
                                                       : "mean loss per batch",
                                         .log_y = 1, .series = fm_series[0], .n_series = N_OPT};
        panels[n_panels++] = (svg_panel){.title = "Fashion-MNIST: test accuracy",
                                         .xlabel = "epoch", .ylabel = "accuracy %",
                                         .series = fm_series[1], .n_series = N_OPT,
                                         .legend_at = SVG_LEGEND_AUTO};
        panels[n_panels++] = (svg_panel){.title = "Fashion-MNIST: test loss", .xlabel = "epoch",
                                         .ylabel = "loss", .series = fm_series[2],
                                         .n_series = N_OPT, .legend_at = SVG_LEGEND_NONE};
    }
    if (svg_write_grid(svg_path, "Optimisers: paths over level curves, f per step, and "
                                 "Fashion-MNIST training", panels, n_panels, 3) != 0) {
        fprintf(stderr, "nabla experiment optimizers: cannot write %s\n", svg_path);
        goto done;
    }
    say(txt, "\nplot: %s\n", svg_path);
    rc = 0;
done:
    if (fclose(txt) != 0 && rc == 0) {
        fprintf(stderr, "nabla experiment optimizers: cannot write %s\n", txt_path);
        rc = 1;
    }
    for (int s = 0; s < N_SURF; s++) {
        free(grid[s]);
        for (int k = 0; k < N_OPT; k++) {
            free(paths[s][k].x);
            free(paths[s][k].y);
            free(paths[s][k].f);
            free(thin_x[s][k]);
            free(thin_y[s][k]);
            free(curve_x[s][k]);
            free(curve_y[s][k]);
        }
    }
    for (int k = 0; k < N_OPT; k++) {
        free(runs[k].loss_x);
        free(runs[k].loss_y);
        free(runs[k].acc);
        free(runs[k].test_loss);
        free(runs[k].train_loss);
        free(runs[k].epoch_x);
    }
    return rc;
}
