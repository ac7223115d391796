#include "optim_text.h"

#include <stdio.h>

const char *optim_text(const nb_optim_config *c, const char *name, char *buf, size_t size) {
    int used = snprintf(buf, size, "%s: lr %g, weight decay %g", name, c->lr, c->weight_decay);
    if (used < 0 || (size_t)used >= size) return buf;
    char *p = buf + used;
    size_t left = size - (size_t)used;
    switch (c->kind) {
    case NB_OPT_SGD:
        if (c->momentum != 0)
            snprintf(p, left, ", momentum %g%s, dampening %g", c->momentum,
                     c->nesterov ? " (Nesterov)" : "", c->dampening);
        break;
    case NB_OPT_MOMENTUM_EMA: snprintf(p, left, ", beta %g", c->beta); break;
    case NB_OPT_ADAGRAD:
        snprintf(p, left, ", lr decay %g, initial accumulator %g, eps %g", c->lr_decay,
                 c->initial_accumulator, c->eps);
        break;
    case NB_OPT_RMSPROP:
        snprintf(p, left, ", alpha %g, momentum %g, eps %g%s", c->alpha, c->momentum, c->eps,
                 c->centered ? ", centered" : "");
        break;
    case NB_OPT_ADAM:
    case NB_OPT_ADAMW:
        snprintf(p, left, ", betas %g %g, eps %g%s", c->beta1, c->beta2, c->eps,
                 c->amsgrad ? ", amsgrad" : "");
        break;
    }
    return buf;
}
