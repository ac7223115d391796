/* Model-file variables (spec_vars.c), for the model parser. */
#ifndef NB_SPEC_VARS_H
#define NB_SPEC_VARS_H

#include <stddef.h>

#include "nabla.h"

/* text with every ${NAME} and ${NAME:-DEFAULT} outside comments replaced by
 * the value of NAME in vars, else its default: a malloc'ed string in *out, at
 * most max bytes.  Errors name source and line: a variable without a value, a
 * malformed ${...}; and a variable of vars that the text does not use. */
nb_status nb__model_expand(const char *text, const char *source, const nb_kv *vars, int n_vars,
                           size_t max, char **out);

#endif
