/* nabla train --tensorboard DIR (tb_log.h). */
#include "tb_log.h"

#include <stdio.h>

nb_status tb_log_open(tb_log *t, const char *dir, const nb_schedule *schedule, double base_lr) {
    t->schedule = *schedule;
    t->base_lr = base_lr;
    return nb_tb_open(dir, &t->w);
}

nb_status tb_log_batch(tb_log *t, const nb_batch_stats *b) {
    double lr = nb_schedule_lr(&t->schedule, t->base_lr, b->epoch - 1);
    nb_status s = nb_tb_scalar(t->w, "train/loss", b->step, b->loss, 0);
    return s == NB_OK ? nb_tb_scalar(t->w, "train/lr", b->step, lr, 0) : s;
}

nb_status tb_log_epoch(tb_log *t, const nb_epoch_stats *e) {
    const struct { const char *tag; double v; int have; } rows[] = {
        {"epoch/train_loss", e->train_loss, 1},
        {"epoch/train_acc", e->train_acc, e->train_acc >= 0},
        {"epoch/lr", e->lr, 1},
        {"epoch/val_loss", e->val_loss, e->val_loss >= 0},
        {"epoch/val_acc", e->val_acc, e->val_acc >= 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (!rows[i].have) continue;
        nb_status s = nb_tb_scalar(t->w, rows[i].tag, e->epoch, rows[i].v, 0);
        if (s != NB_OK) return s;
    }
    return nb_tb_flush(t->w); /* a running TensorBoard sees every finished epoch */
}

/* A row's figures; -1 marks one the row does not have. */
nb_status tb_log_diagnosis(tb_log *t, const nb_diagnosis *d, long step) {
    for (int i = 0; i < d->n_rows; i++) {
        const nb_diag_row *r = &d->rows[i];
        const struct { const char *name; double v; } figs[] = {
            {"mean", r->mean},           {"std", r->std},
            {"dead", r->dead},           {"saturated", r->saturated},
            {"grad_norm", r->grad_norm}, {"update_ratio", r->update_ratio},
        };
        for (size_t k = 0; k < sizeof figs / sizeof figs[0]; k++) {
            if (figs[k].v < 0 && k >= 2) continue;
            char tag[512];
            snprintf(tag, sizeof tag, "diagnose/%s/%s", r->name, figs[k].name);
            nb_status s = nb_tb_scalar(t->w, tag, step, figs[k].v, 0);
            if (s != NB_OK) return s;
        }
    }
    return NB_OK;
}

nb_status tb_log_close(tb_log *t) {
    nb_status s = nb_tb_close(t->w);
    t->w = NULL;
    return s;
}
