/* --set NAME=VALUE: values of a model file's variables (${NAME}), for every
 * command that reads a model.  cli_parse collects them in order. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

enum { MAX_SET = 64 };
static nb_kv vars[MAX_SET];
static char names[MAX_SET][64];
static int n_vars;

const char *const cli_set_help =
    "  --set NAME=VALUE       value of the model file's variable ${NAME} (repeatable;\n"
    "                         see docs/model-format.md)\n";

int cli_model_set(const char *cmd, const char *arg) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1])
        return cli_usage_error(cmd, "--set %s: expected NAME=VALUE", arg);
    if ((size_t)(eq - arg) >= sizeof names[0])
        return cli_usage_error(cmd, "--set %s: the name is too long", arg);
    if (n_vars == MAX_SET) return cli_usage_error(cmd, "more than %d --set", MAX_SET);
    memcpy(names[n_vars], arg, (size_t)(eq - arg));
    names[n_vars][eq - arg] = '\0';
    vars[n_vars] = (nb_kv){names[n_vars], eq + 1};
    n_vars++;
    return 0;
}

int cli_model_vars(const nb_kv **out) {
    *out = vars;
    return n_vars;
}

nb_status cli_model_load(const char *path, nb_model *m) {
    nb_status s = nb_model_load_vars(path, vars, n_vars, m);
    if (s != NB_ERR_ARG) return s;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", nb_last_error());
    return nb_set_error(s, "--set: %s", msg);
}
