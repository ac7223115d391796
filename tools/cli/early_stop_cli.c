/* nabla train --early-stop / --monitor / --min-delta / --keep: see
 * early_stop_cli.h. */
#include "early_stop_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char *const early_stop_help =
    "early stopping (needs --val or --val-split)\n"
    "  --early-stop N         stop when the monitored metric has not improved for N\n"
    "                         epochs (patience)\n"
    "  --monitor M            val_loss (default; lower is better) or val_acc\n"
    "  --min-delta D          an improvement must exceed D: val_loss < best - D,\n"
    "                         val_acc > best + D (default 0)\n"
    "  --keep best|last       what --out holds (and --test evaluates): the weights of the\n"
    "                         best epoch by the monitored metric (default when validating)\n"
    "                         or of the last; the final line says which epoch.  The\n"
    "                         checkpoint keeps the best weights and the patience count,\n"
    "                         so --resume stops where the uninterrupted run would\n";

int early_stop_options(early_stop_cli *e, const char *patience, const char *monitor,
                       const char *min_delta, const char *keep, const char *val) {
    memset(e, 0, sizeof e[0]);
    e->validating = val != NULL;
    long p = 0;
    double delta = 0;
    if (patience && !cli_int("train", "early-stop", patience, 1, 1000000, &p)) return 2;
    if (min_delta && !cli_double("train", "min-delta", min_delta, 0, 1e300, &delta)) return 2;
    if (monitor && strcmp(monitor, "val_loss") && strcmp(monitor, "val_acc"))
        return cli_usage_error("train", "--monitor %s: val_loss or val_acc expected", monitor);
    if (keep && strcmp(keep, "best") && strcmp(keep, "last"))
        return cli_usage_error("train", "--keep %s: best or last expected", keep);
    const char *needs = patience ? "--early-stop" : monitor ? "--monitor" : min_delta ?
                        "--min-delta" : keep && !strcmp(keep, "best") ? "--keep best" : NULL;
    if (needs && !val)
        return cli_usage_error("train", "%s needs validation data (--val SOURCE or "
                               "--val-split F)", needs);
    e->monitor_acc = monitor && !strcmp(monitor, "val_acc");
    e->keep_best = val && (!keep || !strcmp(keep, "best"));
    nb_early_stop_init(&e->es, (int)p, delta, e->monitor_acc);
    if (val)
        snprintf(e->settings, sizeof e->settings, "monitor=%s patience=%ld min_delta=%.17g "
                 "keep=%s val=%s", e->monitor_acc ? "val_acc" : "val_loss", p, delta,
                 e->keep_best ? "best" : "last", val);
    else
        snprintf(e->settings, sizeof e->settings, "none");
    return 0;
}

/* The weights: parameters, then every buffer (batch-norm statistics). */
static size_t weights_count(nb_graph *g) {
    size_t n = nb_param_count(g);
    for (int i = 0; i < nb_buffer_count(g); i++) n += nb_node_numel(g, nb_buffer_tensor(g, i));
    return n;
}

static void weights_copy(nb_graph *g, nb_real *to, int restore) {
    size_t n = nb_param_count(g), at = n;
    if (restore) memcpy(nb_params(g), to, n * sizeof *to);
    else memcpy(to, nb_params(g), n * sizeof *to);
    for (int i = 0; i < nb_buffer_count(g); i++) {
        nb_node b = nb_buffer_tensor(g, i);
        size_t k = nb_node_numel(g, b);
        if (restore) memcpy(nb_value(g, b), to + at, k * sizeof *to);
        else memcpy(to + at, nb_value(g, b), k * sizeof *to);
        at += k;
    }
}

int early_stop_setup(early_stop_cli *e, nb_graph *g, int classes, const char *model_path) {
    if (e->monitor_acc && !classes)
        return cli_usage_error("train", "--monitor val_acc: %s has no class output (its loss "
                               "is not cross_entropy); use val_loss", model_path);
    if (!e->keep_best) return 0;
    e->n_best = weights_count(g);
    e->best = malloc((e->n_best ? e->n_best : 1) * sizeof *e->best);
    if (!e->best) return cli_fail("train", "out of memory for the best weights");
    return 0;
}

/* "val_loss 0.1234" or "val_acc 87.50%", as the epoch lines show them. */
static void best_text(const early_stop_cli *e, char *buf, size_t n) {
    if (e->monitor_acc) snprintf(buf, n, "val_acc %.2f%%", 100 * e->es.best);
    else snprintf(buf, n, "val_loss %.4f", e->es.best);
}

int early_stop_epoch(early_stop_cli *e, nb_graph *g, const nb_epoch_stats *s, int quiet) {
    if (!e->validating) return 0;
    double v = e->monitor_acc ? s->val_acc : s->val_loss;
    int r = nb_early_stop_update(&e->es, s->epoch, v);
    if (r == NB_EARLY_IMPROVED && e->best) weights_copy(g, e->best, 0);
    if (r != NB_EARLY_STOP) return 0;
    char best[48];
    best_text(e, best, sizeof best);
    if (!quiet)
        fprintf(stderr, "early stop: %s has not improved for %d epochs since epoch %d (%s)\n",
                e->monitor_acc ? "val_acc" : "val_loss", e->es.wait, e->es.best_epoch, best);
    return 1;
}

int early_stop_to_meta(early_stop_cli *e, nb_kv *kv) {
    kv[0] = (nb_kv){"train.early_stop", e->settings};
    if (!e->validating) return 1;
    snprintf(e->state, sizeof e->state, "%a %d %d %d", e->es.best, e->es.best_epoch, e->es.wait,
             e->es.stopped);
    kv[1] = (nb_kv){"train.early_stop.state", e->state};
    return 2;
}

nb_real *early_stop_best(early_stop_cli *e) {
    return e->best && e->es.best_epoch > 0 ? e->best : NULL;
}

int early_stop_check_resume(early_stop_cli *e, const char *resume, const char *settings,
                            const char *state) {
    if (!settings) settings = "none"; /* a checkpoint from before early stopping */
    if (strcmp(settings, e->settings) != 0)
        return cli_fail("train", "--resume %s: the checkpoint was made with validation "
                        "settings '%s', this run asks for '%s'", resume, settings, e->settings);
    if (!e->validating) return 0;
    nb_early_stop *es = &e->es;
    char extra;
    if (!state || sscanf(state, "%la %d %d %d %c", &es->best, &es->best_epoch, &es->wait,
                         &es->stopped, &extra) != 4 || es->best_epoch < 0 || es->wait < 0)
        return cli_fail("train", "--resume %s: unreadable train.early_stop.state '%s'; the "
                        "file is damaged", resume, state ? state : "(missing)");
    return 0;
}

int early_stop_restored(early_stop_cli *e, const char *resume, int has_best) {
    if (early_stop_best(e) && !has_best)
        return cli_fail("train", "--resume %s: the checkpoint lacks the weights of its best "
                        "epoch %d; the file is damaged", resume, e->es.best_epoch);
    return 0;
}

int early_stop_choose(early_stop_cli *e, nb_graph *g, int epochs_done, char *why, size_t n) {
    if (!early_stop_best(e)) {
        snprintf(why, n, "the last");
        return epochs_done;
    }
    weights_copy(g, e->best, 1);
    char best[48];
    best_text(e, best, sizeof best);
    snprintf(why, n, "the best, %s", best);
    return e->es.best_epoch;
}

void early_stop_free(early_stop_cli *e) {
    free(e->best);
    e->best = NULL;
}
