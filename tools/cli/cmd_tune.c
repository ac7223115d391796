/* nabla tune SEARCH.json --out DIR: hyperparameter search by random search
 * with asynchronous successive halving (docs/tune.md).  Trials are `nabla
 * train` child processes; promotion resumes a trial's checkpoint.  Every
 * decision goes to DIR/journal first, so --resume replays it and continues. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "data_source.h"
#include "dist_launch.h"
#include "outfile.h"
#include "outputs.h"
#include "tune_asha.h"
#include "tune_jobs.h"
#include "tune_mpi.h"
#include "tune_report.h"

static const char *help =
    "usage: nabla tune SEARCH.json --out DIR [options]\n\n"
    "Search hyperparameters: random configurations from the space in SEARCH.json\n"
    "(docs/tune.md), trained by 'nabla train' child processes and judged by their\n"
    "validation metric.  With asynchronous successive halving (ASHA, the default) a\n"
    "trial trains r epochs, then only the best 1/eta of each rung go on to eta r,\n"
    "eta^2 r, ... up to max_epochs, each promotion resuming the trial's checkpoint.\n\n"
    "  --out DIR             the search's directory: a new or empty one (with\n"
    "                        --resume, the one of the search to continue)\n"
    "  --strategy NAME       asha (default) or random: every trial to max_epochs\n"
    "  --jobs N              trials trained at the same time (default 1); under\n"
    "                        mpirun -np N, N-1: one on each rank but rank 0\n"
    "  --threads N           threads of each trial (default 1)\n"
    "  --resume              continue the interrupted search in DIR: finished trials\n"
    "                        are kept, an interrupted one resumes its checkpoint\n"
    "  --quiet               no line per finished trial\n\n"
    "DIR receives trials.csv (trial, status, seed, epochs, the values and the metric\n"
    "at every rung), tune.svg (the metric against the epochs of each trial),\n"
    "best.safetensors (the best trial's weights), journal (the search's decisions,\n"
    "for --resume), search.json (a copy of SEARCH.json) and trials/ (each trial's\n"
    "checkpoint, log and output).  At the end a table of the trials is printed.\n"
    "With --jobs 1 a search is repeatable, --resume included; with more jobs the\n"
    "promotions depend on which trial ends first, as in ASHA.\n\n"
    "Under mpirun -np N (or srun), rank 0 schedules and ranks 1..N-1 each run one\n"
    "trial at a time on their node; DIR, the data and the model file must be on a\n"
    "filesystem every node shares (docs/tune.md).\n";

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

typedef struct tune_run {
    const char *search, *dir;
    char model[4096];
    tune_space s;
    asha a;
    tune_values *values;
    pid_t *pid;                   /* per trial: its running child (under MPI,
                                     its worker's rank), or 0                */
    int mpi;                      /* under mpirun: trials run on ranks 1..N-1 */
    int jobs, threads, quiet, random, running, stopping, forwarded;
    FILE *journal;
    char journal_path[4200], csv_path[4200], svg_path[4200], best_path[4200], copy_path[4200];
    cli_files files;
} tune_run;

#define PATHS(r, buf, name) snprintf((r)->buf, sizeof (r)->buf, "%s/%s", (r)->dir, name)

/* The data are there and fit the model (of the first trial): a search whose
 * every trial would fail stops before it starts. */
static int check_data(tune_run *r, nb_model *m) {
    const char *spec[2] = {r->s.data, r->s.val};
    for (int i = 0; i < 2 && spec[i]; i++) {
        nb_data d = {0};
        nb_status s = data_load(spec[i], i ? "test" : "train", &d);
        size_t need = cli_sample_size(m->graph, m->input);
        if (s == NB_OK && d.sample_size != need)
            s = nb_set_error(NB_ERR_SHAPE, "%s: samples have %zu values but %s takes %zu",
                             spec[i], d.sample_size, r->model, need);
        if (s == NB_OK) s = data_check_shape(&d, spec[i], m->graph, m->input);
        nb_data_free(&d);
        if (s != NB_OK) return cli_fail("tune", "%s: %s: %s", r->search, i ? "val" : "data",
                                        nb_last_error());
    }
    return 0;
}

/* Every trial's model and optimiser settings are valid: said now, naming
 * the search file, not as failed trials later. */
static int check_trials(tune_run *r) {
    for (int t = 0; t < r->s.trials; t++) {
        tune_space_sample(&r->s, t, r->values[t]);
        nb_kv vars[TUNE_MAX_PARAMS];
        int nv = 0;
        const char *optim = "adam", *lr = NULL, *wd = NULL;
        for (int p = 0; p < r->s.n_params; p++) {
            const tune_param *tp = &r->s.params[p];
            if (!tp->flag) vars[nv++] = (nb_kv){tp->name, r->values[t][p]};
            else if (strcmp(tp->name, "optim") == 0) optim = r->values[t][p];
            else if (strcmp(tp->name, "lr") == 0) lr = r->values[t][p];
            else if (strcmp(tp->name, "weight_decay") == 0) wd = r->values[t][p];
        }
        nb_model m;
        if (nb_model_load_vars(r->model, vars, nv, &m) != NB_OK)
            return cli_fail("tune", "%s: space: %s", r->search, nb_last_error());
        int rc = m.loss == NB_NONE ? cli_fail("tune", "%s: the model has no 'loss' line", r->model)
                                   : t == 0 ? check_data(r, &m) : 0;
        nb_model_free(&m);
        if (rc) return rc;
        nb_optim_config oc;
        if (nb_optim_parse(optim, &oc) != NB_OK)
            return cli_fail("tune", "%s: space.optim: %s", r->search, nb_last_error());
        if (lr) oc.lr = atof(lr);
        if (wd) oc.weight_decay = atof(wd);
        if (nb_optim_check(&oc) != NB_OK)
            return cli_fail("tune", "%s: space: trial %d (optim %s, lr %s, weight_decay %s): %s",
                            r->search, t + 1, optim, lr ? lr : "default", wd ? wd : "default",
                            nb_last_error());
    }
    return 0;
}

static int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* DIR: new or empty for a new search; holding a journal for --resume. */
static int prepare_dir(tune_run *r, int resume) {
    struct stat st;
    char trials[4300];
    snprintf(trials, sizeof trials, "%s/trials", r->dir);
    int exists = lstat(r->dir, &st) == 0;
    if (exists && !S_ISDIR(st.st_mode))
        return cli_fail("tune", "--out %s: not a directory", r->dir);
    int has_journal = access(r->journal_path, F_OK) == 0;
    if (resume && !has_journal)
        return cli_fail("tune", "--resume: %s holds no search (no %s)", r->dir, r->journal_path);
    if (!resume && has_journal)
        return cli_fail("tune", "--out %s holds a search already: continue it with --resume, or "
                        "choose another directory", r->dir);
    if (!resume && exists && dir_entries(r->dir) != 0)
        return cli_fail("tune", "--out %s: %s; choose a new or empty directory", r->dir,
                        dir_entries(r->dir) < 0 ? strerror(errno) : "not empty");
    if ((!exists && mkdir(r->dir, 0755) != 0) ||
        (mkdir(trials, 0755) != 0 && errno != EEXIST))
        return cli_fail("tune", "--out %s: %s", exists ? trials : r->dir, strerror(errno));
    if (lstat(trials, &st) != 0 || !S_ISDIR(st.st_mode))
        return cli_fail("tune", "--out %s: %s is not a directory", r->dir, trials);
    return 0;
}

static int claim_files(tune_run *r, int resume) {
    cli_files *fs = &r->files;
    cli_files_init(fs);
    cli_files_input(fs, "the search file", r->search);
    cli_files_input(fs, "the model file", r->model);
    cli_files_data(fs, "data", r->s.data);
    cli_files_data(fs, "val", r->s.val);
    const char *out[] = {r->journal_path, r->csv_path, r->svg_path, r->best_path, r->copy_path};
    for (int i = 0; i < 5; i++) {
        if (i == 4 && resume) cli_files_input(fs, "--out", out[i]);
        else cli_files_output(fs, "--out", out[i]);
        if (!(i == 4 && resume) && !cli_check_output("tune", "out", out[i])) return 1;
    }
    int rc = cli_files_check(fs, "tune");
    return rc ? rc : cli_files_lock(fs, "tune");
}

static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *t = malloc(1 << 20);
    *len = t ? fread(t, 1, 1 << 20, f) : 0;
    fclose(f);
    return t;
}

static int journal_line(tune_run *r, const char *fmt, int t, int k, const double *m) {
    fprintf(r->journal, fmt, t + 1, k);
    for (int i = 0; m && i <= k; i++) fprintf(r->journal, " %.17g", m[i]);
    fputc('\n', r->journal);
    if (fflush(r->journal) != 0 || fsync(fileno(r->journal)) != 0)
        return cli_fail("tune", "%s: %s", r->journal_path, strerror(errno));
    return 0;
}

/* A new search: the copy of the search file, and the journal's first line. */
static int journal_new(tune_run *r) {
    size_t n;
    char *text = read_text(r->search, &n);
    outfile o;
    FILE *f = text ? outfile_open(&o, r->copy_path) : NULL;
    int ok = f && fwrite(text, 1, n, f) == n;
    free(text);
    if (f && !ok) outfile_abort(&o);
    if (!ok || outfile_commit(&o) != 0)
        return cli_fail("tune", "%s: %s", r->copy_path, strerror(errno));
    r->journal = fopen(r->journal_path, "w");
    if (!r->journal) return cli_fail("tune", "%s: %s", r->journal_path, strerror(errno));
    fprintf(r->journal, "nabla tune journal 1 strategy=%s\n# start TRIAL RUNG | done TRIAL "
            "RUNG METRIC@RUNG0 ... | failed TRIAL RUNG (trials from 1, rungs from 0)\n",
            r->random ? "random" : "asha");
    if (fflush(r->journal) != 0 || fsync(fileno(r->journal)) != 0)
        return cli_fail("tune", "%s: %s", r->journal_path, strerror(errno));
    return 0;
}

/* One line of an old journal into the scheduler's state. */
static int replay_line(tune_run *r, const char *line, int lineno) {
    char kind[16];
    int t, k, at;
    if (line[0] == '#') return 0;
    if (sscanf(line, "%15s %d %d%n", kind, &t, &k, &at) != 3 || t < 1 || t > r->s.trials ||
        k < 0 || k >= r->s.n_rungs)
        return cli_fail("tune", "%s:%d: damaged line", r->journal_path, lineno);
    t--;
    if (strcmp(kind, "start") == 0) asha_restart(&r->a, t, k);
    else if (strcmp(kind, "failed") == 0) asha_failed(&r->a, t);
    else if (strcmp(kind, "done") == 0) {
        double m[TUNE_MAX_RUNGS];
        const char *p = line + at;
        for (int i = 0; i <= k; i++) {
            char *end;
            m[i] = strtod(p, &end);
            if (end == p) return cli_fail("tune", "%s:%d: damaged line", r->journal_path, lineno);
            p = end;
        }
        r->a.trials[t].target = k;
        asha_done(&r->a, t, m);
    } else {
        return cli_fail("tune", "%s:%d: damaged line", r->journal_path, lineno);
    }
    return 0;
}

/* --resume: the same search file and strategy; the journal replayed. */
static int journal_replay(tune_run *r) {
    size_t n1 = 0, n2 = 0;
    char *now = read_text(r->search, &n1), *then = read_text(r->copy_path, &n2);
    int same = now && then && n1 == n2 && memcmp(now, then, n1) == 0;
    free(now);
    free(then);
    if (!same)
        return cli_fail("tune", "--resume: %s differs from the search file this search started "
                        "with (%s)", r->search, r->copy_path);
    FILE *f = fopen(r->journal_path, "r");
    if (!f) return cli_fail("tune", "%s: %s", r->journal_path, strerror(errno));
    char line[4096], want[64];
    snprintf(want, sizeof want, "nabla tune journal 1 strategy=%s\n", r->random ? "random" : "asha");
    int rc = 0, lineno = 1;
    if (!fgets(line, sizeof line, f) || strcmp(line, want) != 0)
        rc = cli_fail("tune", "--resume: %s is not a journal of a search with --strategy %s",
                      r->journal_path, r->random ? "random" : "asha");
    while (!rc && fgets(line, sizeof line, f)) rc = replay_line(r, line, ++lineno);
    fclose(f);
    if (!rc && !(r->journal = fopen(r->journal_path, "a")))
        rc = cli_fail("tune", "%s: %s", r->journal_path, strerror(errno));
    return rc;
}

static void describe(const tune_run *r, int t, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int p = 0; p < r->s.n_params && used < size; p++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s=%s", p ? " " : "",
                                 r->s.params[p].name, r->values[t][p]);
}

static int launch(tune_run *r, int t, int rung, const char *out) {
    tune_job j = {.space = &r->s, .dir = r->dir, .model = r->model, .values = r->values[t],
                  .trial = t, .epochs = r->s.rungs[rung], .threads = r->threads, .out = out};
    pid_t pid = r->mpi ? tune_mpi_submit(&j) : tune_job_start(&j);
    if (pid < 0 && r->mpi) return 1;
    if (pid < 0) return cli_fail("tune", "cannot start trial %d: %s", t + 1, strerror(errno));
    r->pid[t] = pid;
    r->running++;
    return 0;
}

/* The metric at every rung up to the trial's target, from its log. */
static int read_metrics(tune_run *r, int t, double *m) {
    char path[4200];
    tune_trial_path(path, sizeof path, r->dir, t, "csv");
    history h;
    if (tune_read_log(path, &h)) return -1;
    int target = r->a.trials[t].target;
    for (int k = 0; k <= target; k++) {
        m[k] = NAN;
        for (int i = 0; i < h.n; i++)
            if (h.rows[i].epoch == r->s.rungs[k]) m[k] = tune_row_metric(&r->s, &h.rows[i]);
    }
    history_free(&h);
    return isnan(m[target]) ? -1 : 0;
}

/* A child ended: record the trial's result, or its failure. */
static int job_ended(tune_run *r, int t, int status) {
    r->pid[t] = 0;
    r->running--;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code == 130 || (interrupted && code > 128)) { /* stopped: resumed next time */
        r->stopping = 1;
        return 0;
    }
    double m[TUNE_MAX_RUNGS];
    int k = r->a.trials[t].target;
    char what[600], last[1024] = "the log has no metric";
    describe(r, t, what, sizeof what);
    if (code == 0 && read_metrics(r, t, m) == 0) {
        asha_done(&r->a, t, m);
        if (!r->quiet)
            fprintf(stderr, "trial %d (%s): %s %.4f at epoch %d\n", t + 1, what,
                    r->s.metric, m[k], r->s.rungs[k]);
        if (journal_line(r, "done %d %d", t, k, m)) return 1;
    } else {
        if (code) tune_job_last_line(r->dir, t, last, sizeof last);
        asha_failed(&r->a, t);
        fprintf(stderr, "trial %d (%s) failed (exit %d): %s\n", t + 1, what, code, last);
        if (journal_line(r, "failed %d %d", t, k, NULL)) return 1;
    }
    if (tune_write_csv(r->csv_path, &r->s, &r->a, (const tune_values *)r->values, 0))
        return cli_fail("tune", "%s: %s", r->csv_path, strerror(errno));
    return 0;
}

static int start_jobs(tune_run *r, int *queue, int nq, int *qi) {
    while (!interrupted && !r->stopping && r->running < r->jobs) {
        int t, k;
        if (*qi < nq) {
            t = queue[(*qi)++];
            k = r->a.trials[t].target;
        } else if (asha_next(&r->a, &t, &k)) {
            if (journal_line(r, "start %d %d", t, k, NULL)) return 1;
        } else {
            break;
        }
        if (launch(r, t, k, NULL)) return 1;
    }
    return 0;
}

/* A job ended: its pid (under MPI, its rank), or -1 (errno EINTR: a signal). */
static pid_t wait_job(const tune_run *r, int *status) {
    return r->mpi ? tune_mpi_wait(status) : waitpid(-1, status, 0);
}

/* Ctrl-C: every running trial is told to stop, once. */
static void forward_interrupt(tune_run *r) {
    for (int t = 0; interrupted && !r->forwarded && t < r->s.trials; t++) {
        if (r->pid[t] && r->mpi) tune_mpi_interrupt(r->pid[t]);
        else if (r->pid[t]) kill(r->pid[t], SIGINT);
    }
    r->forwarded = interrupted;
}

/* Run jobs until the search is over or interrupted; queue: the trials an
 * earlier run left running, started first. */
static int run_loop(tune_run *r, int *queue, int nq) {
    int qi = 0, rc = 0;
    while (!rc) {
        rc = start_jobs(r, queue, nq, &qi);
        if (rc || r->running == 0) break;
        int status;
        forward_interrupt(r);
        pid_t pid = wait_job(r, &status);
        if (pid < 0 && errno == EINTR) {
            forward_interrupt(r);
            continue;
        }
        if (pid < 0) return cli_fail("tune", "waitpid: %s", strerror(errno));
        for (int t = 0; t < r->s.trials; t++)
            if (r->pid[t] == pid) rc = job_ended(r, t, status);
    }
    while (r->running > 0) { /* after an error: let the trials stop */
        int status;
        pid_t pid = wait_job(r, &status);
        if (pid < 0 && errno != EINTR) break;
        for (int t = 0; pid > 0 && t < r->s.trials; t++)
            if (r->pid[t] == pid) r->pid[t] = 0, r->running--;
    }
    return rc;
}

/* The best trial's weights: its checkpoint, finished, written out by `nabla
 * train --resume`, then copied to DIR/best.safetensors. */
static int keep_best(tune_run *r, int best) {
    char weights[4200];
    tune_trial_path(weights, sizeof weights, r->dir, best, "safetensors");
    tune_job j = {.space = &r->s, .dir = r->dir, .model = r->model, .values = r->values[best],
                  .trial = best, .epochs = asha_epochs(&r->a, best), .threads = r->threads,
                  .out = weights};
    pid_t pid = tune_job_start(&j);
    int status;
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char last[1024];
        tune_job_last_line(r->dir, best, last, sizeof last);
        return cli_fail("tune", "writing the weights of trial %d failed: %s", best + 1, last);
    }
    if (rename(weights, r->best_path) != 0)
        return cli_fail("tune", "%s: %s", r->best_path, strerror(errno));
return 0;
}

static long total_epochs(const tune_run *r) {
    long n = 0;
    for (int t = 0; t < r->s.trials; t++) n += asha_epochs(&r->a, t);
    return n;
}

/* The CSV with its final statuses, the table, the picture, the weights. */
static int finish(tune_run *r) {
    if (tune_write_csv(r->csv_path, &r->s, &r->a, (const tune_values *)r->values, 1))
        return cli_fail("tune", "%s: %s", r->csv_path, strerror(errno));
    int best = asha_best(&r->a);
    tune_print_table(stdout, &r->s, &r->a, (const tune_values *)r->values);
    char title[600], what[600] = "";
    if (best >= 0) describe(r, best, what, sizeof what);
    snprintf(title, sizeof title, "%s search of %d trials: best trial %d",
             r->random ? "random" : "ASHA", r->s.trials, best + 1);
    if (tune_plot(r->svg_path, r->dir, title, &r->s, &r->a))
        return cli_fail("tune", "%s: %s", r->svg_path, strerror(errno));
    if (best < 0) return cli_fail("tune", "no trial finished a rung (see %s/trials/*.out)", r->dir);
    if (keep_best(r, best)) return 1;
    int k = r->a.trials[best].rung;
    printf("best: trial %d (%s): %s %.4f at epoch %d; %ld epochs trained in all "
           "(%d trials x %d epochs: %ld)\nweights: %s\n", best + 1, what, r->s.metric,
           r->a.trials[best].metric[k], r->s.rungs[k], total_epochs(r), r->s.trials,
           r->s.max_epochs, (long)r->s.trials * r->s.max_epochs, r->best_path);
    return 0;
}

/* The trials the journal left running, in its order, to start first. */
static int running_trials(const tune_run *r, int *queue) {
    int n = 0;
    for (int t = 0; t < r->s.trials; t++)
        if (r->a.trials[t].status == TRIAL_RUNNING) queue[n++] = t;
    return n;
}

static int search(tune_run *r, int resume) {
    int rc = prepare_dir(r, resume);
    if (!rc) rc = claim_files(r, resume);
    if (!rc) rc = resume ? journal_replay(r) : journal_new(r);
    if (!rc && r->mpi) rc = tune_mpi_check_dir(r->dir);
    int *queue = rc ? NULL : malloc((size_t)r->s.trials * sizeof *queue);
    if (!rc && !queue) rc = cli_fail("tune", "out of memory");
    if (rc) return rc;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint; /* no SA_RESTART: waitpid returns to pass it on */
    sigaction(SIGINT, &sa, NULL);
    if (r->mpi) sigaction(SIGTERM, &sa, NULL); /* how mpirun passes Ctrl-C on */
    rc = run_loop(r, queue, running_trials(r, queue));
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    free(queue);
    if (!rc && (interrupted || r->stopping)) {
        tune_write_csv(r->csv_path, &r->s, &r->a, (const tune_values *)r->values, 0);
        fprintf(stderr, "nabla tune: interrupted; continue with: nabla tune %s --out %s%s "
                "--resume\n", r->search, r->dir, r->random ? " --strategy random" : "");
        return 130;
    }
    return rc ? rc : finish(r);
}

static int options(tune_run *r, cli_flag *f, int nf) {
    const char *v;
    long n;
    r->jobs = r->threads = 1;
    if (r->mpi && cli_get(f, nf, "jobs"))
        return cli_usage_error("tune", "--jobs: under mpirun every rank but rank 0 runs one "
                               "trial at a time (here %d): leave --jobs out", r->mpi);
    if (r->mpi) r->jobs = r->mpi;
    if ((v = cli_get(f, nf, "jobs"))) {
        if (!cli_int("tune", "jobs", v, 1, 256, &n)) return 2;
        r->jobs = (int)n;
    }
    if ((v = cli_get(f, nf, "threads"))) {
        if (!cli_int("tune", "threads", v, 1, 1024, &n)) return 2;
        r->threads = (int)n;
    }
    v = cli_get(f, nf, "strategy");
    if (v && strcmp(v, "asha") != 0 && strcmp(v, "random") != 0)
        return cli_usage_error("tune", "--strategy %s: expected asha or random", v);
    r->random = v && strcmp(v, "random") == 0;
    r->quiet = cli_get(f, nf, "quiet") != NULL;
    if (!(r->dir = cli_get(f, nf, "out"))) return cli_usage_error("tune", "--out DIR is required");
    PATHS(r, journal_path, "journal");
    PATHS(r, csv_path, "trials.csv");
    PATHS(r, svg_path, "tune.svg");
    PATHS(r, best_path, "best.safetensors");
    PATHS(r, copy_path, "search.json");
    return 0;
}

static int tune_command(int argc, char **argv, int workers) {
    cli_flag f[] = {{"out", 1, 0}, {"strategy", 1, 0}, {"jobs", 1, 0}, {"threads", 1, 0},
                    {"resume", 0, 0}, {"quiet", 0, 0}};
    const int nf = (int)(sizeof f / sizeof f[0]);
    const char *pos[1];
    int npos, want_help;
    int rc = cli_parse("tune", argc, argv, 2, f, nf, pos, 1, &npos, &want_help);
    if (rc) return rc;
    if (want_help) return fputs(help, stdout), 0;
    if (npos != 1) return cli_usage_error("tune", "expected one search file");
    tune_run r;
    memset(&r, 0, sizeof r);
    r.mpi = workers;
    r.search = pos[0];
    if ((rc = options(&r, f, nf))) return rc;
    if ((rc = tune_space_load(r.search, &r.s))) {
        tune_space_free(&r.s);
        return rc;
    }
    char found[4096];
    snprintf(r.model, sizeof r.model, "%s", cli_model_path(r.s.model, found, sizeof found));
    r.values = calloc((size_t)r.s.trials, sizeof *r.values);
    r.pid = calloc((size_t)r.s.trials, sizeof *r.pid);
    if (!r.values || !r.pid || asha_init(&r.a, &r.s, r.random))
        rc = cli_fail("tune", "out of memory");
    if (!rc) rc = check_trials(&r);
    if (!rc) rc = search(&r, cli_get(f, nf, "resume") != NULL);
    if (r.journal) fclose(r.journal);
    cli_files_release(&r.files);
    asha_free(&r.a);
    free(r.values);
    free(r.pid);
    tune_space_free(&r.s);
    return rc;
}

/* Under mpirun -np N (N > 1) rank 0 runs the search and ranks 1..N-1 its
 * trials; alone, the trials are this program's children. */
int cmd_tune(int argc, char **argv) {
    nb_dist *d;
    int rc = dist_launch_start("tune", &d);
    if (rc) return rc;
    int rank = d ? nb_dist_rank(d) : 0, size = d ? nb_dist_size(d) : 1;
    dist_launch_hide(); /* the trials, on any rank, train alone */
    if (rank > 0) rc = tune_mpi_worker();
    else rc = tune_command(argc, argv, size - 1);
    if (rank == 0 && size > 1) tune_mpi_stop();
    dist_launch_finish(d, 0); /* not MPI_Abort: the workers have been told */
    return rc;
}
