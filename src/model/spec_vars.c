/* Model-file variables: ${NAME} in a model file takes a value given by the
 * caller (nabla --set NAME=VALUE), or its default, ${NAME:-VALUE}.  The
 * expansion is textual and happens before parsing; the expanded text is the
 * model's text (saved in weights and checkpoints), so a run resumed with other
 * values is refused as a different model.  docs/model-format.md. */
#include "../core/internal.h"
#include "spec_vars.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_VARS = 64, MAX_NAME = 40, MAX_VALUE = 128 };

typedef struct expander {
    const char *source;
    const nb_kv *vars;
    int n_vars;
    int used[MAX_VARS];            /* vars[i] appears in the text              */
    struct { char name[MAX_NAME], dflt[MAX_VALUE]; int line; } seen[MAX_VARS];
    int n_seen;                    /* variables met in the text, for messages  */
    char *out;
    size_t len, cap, max;
} expander;

static int valid_var_name(const char *s, size_t n) {
    if (n == 0 || n >= MAX_NAME || (!isalpha((unsigned char)s[0]) && s[0] != '_')) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_') return 0;
    return 1;
}

/* A value is one token of the model language: no space, '#', '$' or braces. */
static int valid_value(const char *s, size_t n) {
    if (n == 0 || n >= MAX_VALUE) return 0;
    for (size_t i = 0; i < n; i++)
        if (isspace((unsigned char)s[i]) || iscntrl((unsigned char)s[i]) || strchr("#${}", s[i]))
            return 0;
    return 1;
}

static nb_status put(expander *e, const char *s, size_t n) {
    if (e->len + n > e->max)
        return nb_err(NB_ERR_FORMAT, "%s: model text larger than %zu bytes after its variables "
                      "are set", e->source, e->max);
    if (e->len + n + 1 > e->cap) {
        size_t cap = (e->len + n + 1) * 2;
        char *p = realloc(e->out, cap);
        if (!p) return nb_err(NB_ERR_NOMEM, "%s: out of memory", e->source);
        e->out = p;
        e->cap = cap;
    }
    memcpy(e->out + e->len, s, n);
    e->len += n;
    e->out[e->len] = '\0';
    return NB_OK;
}

static nb_status check_vars(const expander *e) {
    for (int i = 0; i < e->n_vars; i++) {
        const char *k = e->vars[i].key, *v = e->vars[i].value;
        if (!k || !valid_var_name(k, strlen(k)))
            return nb_err(NB_ERR_ARG, "%s: '%s' is not a variable name (letters, digits, _; at "
                          "most %d)", e->source, k ? k : "(null)", MAX_NAME - 1);
        if (!v || !valid_value(v, strlen(v)))
            return nb_err(NB_ERR_ARG, "%s: variable '%s': the value '%s' is not one token (no "
                          "space, '#', '$' or braces; at most %d characters)", e->source, k,
                          v ? v : "(null)", MAX_VALUE - 1);
        for (int j = 0; j < i; j++)
            if (strcmp(e->vars[j].key, k) == 0)
                return nb_err(NB_ERR_ARG, "%s: variable '%s' is set twice", e->source, k);
    }
    return NB_OK;
}

/* Note a variable's default; one variable has one default in a file. */
static nb_status remember(expander *e, int line, const char *name, size_t n, const char *dflt,
                          size_t nd) {
    for (int i = 0; i < e->n_seen; i++) {
        if (strlen(e->seen[i].name) != n || strncmp(e->seen[i].name, name, n) != 0) continue;
        if (dflt && e->seen[i].dflt[0] &&
            (strlen(e->seen[i].dflt) != nd || strncmp(e->seen[i].dflt, dflt, nd) != 0))
            return nb_err(NB_ERR_FORMAT, "%s:%d: variable '%.*s' has the default '%.*s' here "
                          "but '%s' on line %d", e->source, line, (int)n, name, (int)nd, dflt,
                          e->seen[i].dflt, e->seen[i].line);
        if (dflt && !e->seen[i].dflt[0]) {
            snprintf(e->seen[i].dflt, MAX_VALUE, "%.*s", (int)nd, dflt);
            e->seen[i].line = line;
        }
        return NB_OK;
    }
    if (e->n_seen == MAX_VARS)
        return nb_err(NB_ERR_FORMAT, "%s:%d: more than %d variables", e->source, line, MAX_VARS);
    snprintf(e->seen[e->n_seen].name, MAX_NAME, "%.*s", (int)n, name);
    snprintf(e->seen[e->n_seen].dflt, MAX_VALUE, "%.*s", dflt ? (int)nd : 0, dflt ? dflt : "");
    e->seen[e->n_seen++].line = line;
    return NB_OK;
}

/* One ${...} at p (p[0..1] == "${"); *end receives the character after it. */
static nb_status expand_one(expander *e, int line, const char *p, const char **end) {
    const char *name = p + 2, *close = strchr(name, '}'), *nl = strchr(name, '\n');
    if (!close || (nl && nl < close))
        return nb_err(NB_ERR_FORMAT, "%s:%d: '${' without its '}'", e->source, line);
    const char *colon = strstr(name, ":-");
    if (colon && colon > close) colon = NULL;
    size_t n = (size_t)((colon ? colon : close) - name);
    const char *dflt = colon ? colon + 2 : NULL;
    size_t nd = dflt ? (size_t)(close - dflt) : 0;
    if (!valid_var_name(name, n))
        return nb_err(NB_ERR_FORMAT, "%s:%d: '%.*s' is not a variable: write ${NAME} or "
                      "${NAME:-DEFAULT}", e->source, line, (int)(close + 1 - p), p);
    if (dflt && !valid_value(dflt, nd))
        return nb_err(NB_ERR_FORMAT, "%s:%d: variable '%.*s': the default '%.*s' is not one "
                      "token", e->source, line, (int)n, name, (int)nd, dflt);
    nb_status s = remember(e, line, name, n, dflt, nd);
    if (s != NB_OK) return s;
    *end = close + 1;
    for (int i = 0; i < e->n_vars; i++)
        if (strlen(e->vars[i].key) == n && strncmp(e->vars[i].key, name, n) == 0) {
            e->used[i] = 1;
            return put(e, e->vars[i].value, strlen(e->vars[i].value));
        }
    if (dflt) return put(e, dflt, nd);
    return nb_err(NB_ERR_FORMAT, "%s:%d: variable '%.*s' has no value: set it (nabla ... --set "
                  "%.*s=VALUE) or give it a default, ${%.*s:-VALUE}", e->source, line, (int)n,
                  name, (int)n, name, (int)n, name);
}

/* Every variable given must appear in the text: a misspelt name is an error. */
static nb_status check_used(const expander *e) {
    for (int i = 0; i < e->n_vars; i++) {
        if (e->used[i]) continue;
        char known[512] = "";
        for (int k = 0; k < e->n_seen; k++) {
            strncat(known, k ? ", " : "", sizeof known - strlen(known) - 1);
            strncat(known, e->seen[k].name, sizeof known - strlen(known) - 1);
        }
        return nb_err(NB_ERR_ARG, "%s: the model has no variable '%s' (%s%s)", e->source,
                      e->vars[i].key, e->n_seen ? "its variables: " : "it has no variables",
                      known);
    }
    return NB_OK;
}

nb_status nb__model_expand(const char *text, const char *source, const nb_kv *vars, int n_vars,
                           size_t max, char **out) {
    *out = NULL;
    if (n_vars < 0 || n_vars > MAX_VARS || (n_vars && !vars))
        return nb_err(NB_ERR_ARG, "%s: %d variables (at most %d)", source, n_vars, MAX_VARS);
    expander *e = calloc(1, sizeof *e);
    if (!e) return nb_err(NB_ERR_NOMEM, "%s: out of memory", source);
    *e = (expander){.source = source, .vars = vars, .n_vars = n_vars, .max = max};
    nb_status s = check_vars(e);
    if (s == NB_OK) s = put(e, "", 0);
    int line = 1, comment = 0;
    for (const char *p = text; s == NB_OK && *p;) {
        if (*p == '\n') line++, comment = 0;
        if (*p == '#') comment = 1;
        if (!comment && p[0] == '$' && p[1] == '{') {
            s = expand_one(e, line, p, &p);
            continue;
        }
        const char *q = p + 1; /* copy up to the next character that matters */
        while (*q && *q != '\n' && *q != '#' && *q != '$') q++;
        s = put(e, p, (size_t)(q - p));
        p = q;
    }
    if (s == NB_OK) s = check_used(e);
    if (s == NB_OK) *out = e->out;
    else free(e->out);
    free(e);
    return s;
}
