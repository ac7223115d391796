/* An optimiser's settings as one line of text, for the start of training. */
#ifndef NB_OPTIM_TEXT_H
#define NB_OPTIM_TEXT_H

#include <stddef.h>

#include "nabla.h"

/* "adamw: lr 0.001, weight decay 0.01, betas 0.9 0.999, eps 1e-08" into buf:
 * the settings that kind of optimiser uses. */
const char *optim_text(const nb_optim_config *c, const char *name, char *buf, size_t size);

#endif
