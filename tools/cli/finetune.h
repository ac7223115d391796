/* nabla train's fine-tuning options: --init FILE (start from given
 * weights), --init-skip PATTERNS (leave those at their initialiser) and
 * --freeze PATTERNS (train only the other parameters). */
#ifndef NB_CLI_FINETUNE_H
#define NB_CLI_FINETUNE_H

#include "nabla.h"

/* The options' part of nabla train --help. */
extern const char finetune_help[];

/* Load init (may be NULL) into g but the tensors matching skip, then freeze
 * the parameters matching freeze (may be NULL); patterns are comma-separated
 * globs.  Prints what it did unless quiet.  Returns the exit code (0: done). */
int finetune_apply(nb_graph *g, const char *model, const char *init, const char *skip,
                   const char *freeze, int quiet);

/* The checkpoint `resume` must have been made with the same --freeze
 * (its metadata train.freeze).  Returns the exit code (0: same). */
int finetune_check_resume(const char *resume, const char *freeze);

#endif
