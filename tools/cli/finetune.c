/* nabla train --init, --init-skip, --freeze: fine-tuning from given weights. */
#define _POSIX_C_SOURCE 200809L
#include "finetune.h"

#include "cli.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char finetune_help[] =
    "fine-tuning (docs/weights-and-checkpoints.md)\n"
    "  --init FILE            start from these weights, matched by name: safetensors\n"
    "                         written by nabla or PyTorch, or a checkpoint's weights\n"
    "                         (not its optimiser state); the other options are free.\n"
    "                         Tensors the model lacks are ignored; shapes must agree\n"
    "  --init-skip PATTERNS   leave the tensors matching these globs at their\n"
    "                         initialiser, e.g. '5.*' for a new classifier head\n"
    "  --freeze PATTERNS      train only the parameters that match none of these globs\n"
    "                         (the others keep their values exactly)\n"
    "  PATTERNS: comma-separated globs on tensor names ('*' matches dots too)\n";

enum { MAX_PATTERNS = 64 };

/* Split a comma-separated list in place into at most MAX_PATTERNS patterns;
 * -1 (error printed) for an empty one or too many. */
static int split(const char *flag, char *list, const char **out) {
    int n = 0;
    for (char *p = list;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        if (!*p) return cli_usage_error("train", "--%s: an empty pattern in the list", flag), -1;
        if (n == MAX_PATTERNS)
            return cli_usage_error("train", "--%s: more than %d patterns", flag, MAX_PATTERNS), -1;
        out[n++] = p;
        if (!comma) return n;
        p = comma + 1;
    }
}

/* How many parameters (and buffers, if buffers) of g match pattern. */
static int matches(const nb_graph *g, const char *pattern, int buffers) {
    int n = 0;
    for (int k = 0; k < nb_param_tensor_count(g); k++)
        n += fnmatch(pattern, nb_node_name(g, nb_param_tensor(g, k)), 0) == 0;
    for (int k = 0; buffers && k < nb_buffer_count(g); k++)
        n += fnmatch(pattern, nb_node_name(g, nb_buffer_tensor(g, k)), 0) == 0;
    return n;
}

/* "1.weight, 1.bias, ..." into buf: the names a pattern could match. */
static const char *param_names(const nb_graph *g, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int k = 0; k < nb_param_tensor_count(g) && used + 8 < size; k++) {
        int w = snprintf(buf + used, size - used, "%s%s", k ? ", " : "",
                         nb_node_name(g, nb_param_tensor(g, k)));
        if (w < 0 || (size_t)w >= size - used) {
            snprintf(buf + used, size - used, ", ...");
            break;
        }
        used += (size_t)w;
    }
    return buf;
}

static int no_match(const nb_graph *g, const char *model, const char *flag, const char *pattern) {
    char names[400];
    return cli_usage_error("train", "--%s '%s' matches no parameter of %s (they are: %s)", flag,
                           pattern, model, param_names(g, names, sizeof names));
}

static int load_init(nb_graph *g, const char *model, const char *init, char *skip, int quiet) {
    const char *pat[MAX_PATTERNS];
    int n = skip ? split("init-skip", skip, pat) : 0;
    if (n < 0) return 2;
    int kept = 0;
    for (int k = 0; k < n; k++) {
        int m = matches(g, pat[k], 1);
        if (!m) return no_match(g, model, "init-skip", pat[k]);
        kept += m;
    }
    /* tensors the graph lacks (a checkpoint's optimiser state, another
     * head) are ignored: only the graph's own must be there */
    nb_load_opts o = {NB_LOAD_ALLOW_EXTRA, pat, n};
    nb_status s = nb_load_weights_opts(g, init, &o);
    if (s != NB_OK)
        return cli_fail("train", "--init %s%s", nb_last_error(),
                        s == NB_ERR_SHAPE || strstr(nb_last_error(), "missing from the file")
                            ? " (--init-skip PATTERN leaves a layer at its initialiser)" : "");
    if (!quiet)
        fprintf(stderr, "init: weights from %s%s%s\n", init, kept ? ", except " : "",
                kept ? "the --init-skip tensors (initialised)" : "");
    return 0;
}

static int freeze(nb_graph *g, const char *model, char *list, int quiet) {
    const char *pat[MAX_PATTERNS];
    int n = split("freeze", list, pat);
    if (n < 0) return 2;
    for (int k = 0; k < n; k++) {
        int count;
        if (nb_freeze_matching(g, pat[k], 1, &count) != NB_OK)
            return cli_fail("train", "--freeze: %s", nb_last_error());
        if (!count) return no_match(g, model, "freeze", pat[k]);
    }
    int ranges;
    const size_t *r = nb_trainable_ranges(g, &ranges);
    size_t trainable = 0;
    for (int k = 0; k < ranges; k++) trainable += r[2 * k + 1] - r[2 * k];
    if (!trainable)
        return cli_usage_error("train", "--freeze freezes every parameter of %s: nothing would "
                               "train", model);
    if (!quiet)
        fprintf(stderr, "freeze: training %zu of %zu parameters\n", trainable,
                nb_param_count(g));
    return 0;
}

int finetune_apply(nb_graph *g, const char *model, const char *init, const char *skip,
                   const char *freeze_list, int quiet) {
    char *skip_copy = skip ? strdup(skip) : NULL, *freeze_copy = freeze_list ? strdup(freeze_list) : NULL;
    int rc = 0;
    if ((skip && !skip_copy) || (freeze_list && !freeze_copy)) rc = cli_fail("train", "out of memory");
    if (!rc && init) rc = load_init(g, model, init, skip_copy, quiet);
    if (!rc && freeze_list) rc = freeze(g, model, freeze_copy, quiet);
    free(skip_copy);
    free(freeze_copy);
    return rc;
}

/* cli_parse keeps the last of a repeated option: a second --freeze would
 * silently drop the first one's patterns. */
int finetune_check_repeats(int argc, char **argv) {
    const char *flags[] = {"--init", "--init-skip", "--freeze"};
    for (int f = 0; f < 3; f++) {
        size_t len = strlen(flags[f]);
        int seen = 0;
        for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
            seen += strncmp(argv[i], flags[f], len) == 0 && (!argv[i][len] || argv[i][len] == '=');
        if (seen > 1)
            return cli_usage_error("train", "%s given %d times; list several patterns "
                                   "comma-separated in one", flags[f], seen);
    }
    return 0;
}

int finetune_check_resume(const char *resume, const char *freeze_list) {
    nb_safetensors *ck;
    if (nb_st_open(resume, &ck) != NB_OK) return cli_fail("train", "--resume: %s", nb_last_error());
    const char *was = nb_st_meta(ck, "train.freeze");
    int rc = 0;
    if (strcmp(was ? was : "", freeze_list ? freeze_list : "") != 0)
        rc = cli_fail("train", "--resume %s: the checkpoint was made with %s%s%s, this run asks "
                      "for %s%s%s", resume, was && *was ? "--freeze '" : "no --freeze",
                      was && *was ? was : "", was && *was ? "'" : "",
                      freeze_list ? "--freeze '" : "no --freeze", freeze_list ? freeze_list : "",
                      freeze_list ? "'" : "");
    nb_st_free(ck);
    return rc;
}
