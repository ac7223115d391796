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

/* Refuse --init, --init-skip or --freeze given twice (the last would win).
 * Returns the exit code (0: none repeated). */
int finetune_check_repeats(int argc, char **argv);

/* The checkpoint `resume` must have been made with the same --freeze
 * (its metadata train.freeze).  Returns the exit code (0: same). */
int finetune_check_resume(const char *resume, const char *freeze);

#endif
