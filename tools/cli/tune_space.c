/* The search file of nabla tune: JSON, checked key by key; every error names
 * the file and the key. */
#include "tune_space.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const flags[][2] = {
    {"lr", "--lr"}, {"batch", "--batch"}, {"optim", "--optim"}, {"weight_decay", "--weight-decay"}};

static int bad(const char *path, const char *key, const char *fmt, const char *what) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, what);
    return cli_fail("tune", "%s: %s: %s", path, key, msg);
}

static char *dup_str(const char *s) {
    char *d = malloc(strlen(s) + 1);
    if (d) strcpy(d, s);
    return d;
}

/* A whole number in [lo, hi]. */
static int get_int(const char *path, const cJSON *j, const char *key, long lo, long hi, long *out) {
    double v = j->valuedouble;
    char range[96];
    snprintf(range, sizeof range, "%ld to %ld", lo, hi);
    if (!cJSON_IsNumber(j) || v != floor(v) || v < (double)lo || v > (double)hi)
        return bad(path, key, "expected a whole number from %s", range);
    *out = (long)v;
    return 0;
}

static int get_string(const char *path, const cJSON *j, const char *key, char **out) {
    if (!cJSON_IsString(j) || !j->valuestring[0]) return bad(path, key, "expected a %s", "string");
    if (!(*out = dup_str(j->valuestring))) return cli_fail("tune", "out of memory");
    return 0;
}

/* A choice as the token that goes on the command line. */
static int choice_token(const char *path, const char *key, const cJSON *c, char **out) {
    char buf[64];
    if (cJSON_IsNumber(c)) snprintf(buf, sizeof buf, "%.15g", c->valuedouble);
    else if (cJSON_IsString(c) && c->valuestring[0] && strlen(c->valuestring) < 32 &&
             !strpbrk(c->valuestring, " \t\n#${}"))
        snprintf(buf, sizeof buf, "%s", c->valuestring);
    else
        return bad(path, key, "a choice must be a number or a string of 1 to 31 characters "
                   "without spaces, '#', '$' or braces%s", "");
    return (*out = dup_str(buf)) ? 0 : cli_fail("tune", "out of memory");
}

static int parse_range(const char *path, const char *key, const cJSON *a, tune_param *p) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 2 ||
        !cJSON_IsNumber(cJSON_GetArrayItem(a, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(a, 1)))
        return bad(path, key, "expected two numbers [%s]", "low, high");
    p->lo = cJSON_GetArrayItem(a, 0)->valuedouble;
    p->hi = cJSON_GetArrayItem(a, 1)->valuedouble;
    if (!(p->lo <= p->hi)) return bad(path, key, "the low bound is above the high one%s", "");
    if (p->dist == TUNE_LOG_UNIFORM && !(p->lo > 0))
        return bad(path, key, "log_uniform bounds must be above 0%s", "");
    if (p->flag && strcmp(p->flag, "--lr") == 0 && !(p->lo > 0))
        return bad(path, key, "a learning rate must be above 0%s", "");
    return 0;
}

/* "NAME": {"choice": [...]} | {"uniform": [a, b]} | {"log_uniform": [a, b]} */
static int parse_param(const char *path, const cJSON *j, tune_param *p) {
    char key[160];
    snprintf(key, sizeof key, "space.%s", j->string);
    if (!(p->name = dup_str(j->string))) return cli_fail("tune", "out of memory");
    for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
        if (strcmp(j->string, flags[k][0]) == 0) p->flag = flags[k][1];
    if (!cJSON_IsObject(j) || cJSON_GetArraySize(j) != 1)
        return bad(path, key, "expected one of {\"choice\": [...]}, {\"uniform\": [low, high]}, "
                   "{\"log_uniform\": [low, high]}%s", "");
    const cJSON *d = j->child;
    if (strcmp(d->string, "choice") == 0) p->dist = TUNE_CHOICE;
    else if (strcmp(d->string, "uniform") == 0) p->dist = TUNE_UNIFORM;
    else if (strcmp(d->string, "log_uniform") == 0) p->dist = TUNE_LOG_UNIFORM;
    else return bad(path, key, "unknown distribution '%s' (choice, uniform, log_uniform)", d->string);
    int discrete = p->flag && (strcmp(p->name, "batch") == 0 || strcmp(p->name, "optim") == 0);
    if (discrete && p->dist != TUNE_CHOICE) return bad(path, key, "%s takes a choice", p->name);
    if (p->dist != TUNE_CHOICE) return parse_range(path, key, d, p);
    if (!cJSON_IsArray(d) || cJSON_GetArraySize(d) == 0)
        return bad(path, key, "the choice list is %s", cJSON_IsArray(d) ? "empty" : "not a list");
    if (cJSON_GetArraySize(d) > TUNE_MAX_CHOICES) return bad(path, key, "more than %s choices", "64");
    for (const cJSON *c = d->child; c; c = c->next)
        if (choice_token(path, key, c, &p->choices[p->n_choices++])) return 1;
    if (p->flag && strcmp(p->flag, "--lr") == 0)
        for (int c = 0; c < p->n_choices; c++)
            if (!(atof(p->choices[c]) > 0)) return bad(path, key, "a learning rate must be above 0%s", "");
    return 0;
}

static int parse_space(const char *path, const cJSON *j, tune_space *s) {
    if (!cJSON_IsObject(j) || !j->child) return bad(path, "space", "expected an object of %s", "parameters");
    for (const cJSON *p = j->child; p; p = p->next) {
        for (const cJSON *q = j->child; q != p; q = q->next)
            if (strcmp(q->string, p->string) == 0) return bad(path, "space", "'%s' given twice", p->string);
        if (s->n_params == TUNE_MAX_PARAMS) return bad(path, "space", "more than %s parameters", "16");
        if (parse_param(path, p, &s->params[s->n_params++])) return 1;
    }
    return 0;
}

static int budget(const char *path, tune_space *s) {
    if (s->min_epochs > s->max_epochs)
        return bad(path, "min_epochs", "above max_epochs%s", "");
    s->n_rungs = 0;
    for (long e = s->min_epochs; e < s->max_epochs && s->n_rungs < TUNE_MAX_RUNGS - 1; e *= s->eta)
        s->rungs[s->n_rungs++] = (int)e;
    s->rungs[s->n_rungs++] = s->max_epochs;
    return 0;
}

/* One member of the top-level object. */
static int parse_member(const char *path, const cJSON *m, tune_space *s) {
    const char *k = m->string;
    long v = 0;
    if (strcmp(k, "model") == 0) return get_string(path, m, k, &s->model);
    if (strcmp(k, "data") == 0) return get_string(path, m, k, &s->data);
    if (strcmp(k, "val") == 0) return get_string(path, m, k, &s->val);
    if (strcmp(k, "space") == 0) return parse_space(path, m, s);
    if (strcmp(k, "val_split") == 0) {
        if (!cJSON_IsNumber(m) || !(m->valuedouble > 0 && m->valuedouble < 1))
            return bad(path, k, "expected a fraction between 0 and 1%s", "");
        s->val_split = m->valuedouble;
        return 0;
    }
    if (strcmp(k, "metric") == 0) {
        if (!cJSON_IsString(m) || (strcmp(m->valuestring, "val_acc") && strcmp(m->valuestring, "val_loss")))
            return bad(path, k, "expected \"val_acc\" (higher is better) or \"val_loss\"%s", "");
        s->metric_max = strcmp(m->valuestring, "val_acc") == 0;
        s->metric = s->metric_max ? "val_acc" : "val_loss";
        return 0;
    }
    static const char *const ints[] = {"trials", "seed", "min_epochs", "max_epochs", "eta"};
    static const long lo[] = {1, 0, 1, 1, 2}, hi[] = {TUNE_MAX_TRIALS, 1000000, 100000, 100000, 100};
    for (int i = 0; i < 5; i++)
        if (strcmp(k, ints[i]) == 0) {
            if (get_int(path, m, k, lo[i], hi[i], &v)) return 1;
            if (i == 0) s->trials = (int)v;
            else if (i == 1) s->seed = v;
            else if (i == 2) s->min_epochs = (int)v;
            else if (i == 3) s->max_epochs = (int)v;
            else s->eta = (int)v;
            return 0;
        }
    return bad(path, k, "unknown key (known: model, data, val, val_split, metric, trials, seed, "
               "min_epochs, max_epochs, eta, space)%s", "");
}

static int parse_root(const char *path, const cJSON *root, tune_space *s) {
    if (!cJSON_IsObject(root)) return cli_fail("tune", "%s: expected a JSON object", path);
    for (const cJSON *m = root->child; m; m = m->next) {
        for (const cJSON *q = root->child; q != m; q = q->next)
            if (strcmp(q->string, m->string) == 0) return bad(path, m->string, "given twice%s", "");
        if (parse_member(path, m, s)) return 1;
    }
    const char *need[] = {s->model ? NULL : "model", s->data ? NULL : "data",
                          s->n_params ? NULL : "space", s->max_epochs ? NULL : "max_epochs"};
    for (int i = 0; i < 4; i++)
        if (need[i]) return cli_fail("tune", "%s: '%s' is missing", path, need[i]);
    if (!s->val && !(s->val_split > 0))
        return cli_fail("tune", "%s: the metric needs validation data: give 'val_split' or 'val'",
                        path);
    if (s->val && s->val_split > 0)
        return cli_fail("tune", "%s: 'val' and 'val_split' exclude each other", path);
    return budget(path, s);
}

int tune_space_load(const char *path, tune_space *s) {
    memset(s, 0, sizeof *s);
    *s = (tune_space){.metric_max = 1, .metric = "val_acc", .trials = 27, .eta = 3,
                      .min_epochs = 1};
    FILE *f = fopen(path, "rb");
    if (!f) return cli_fail("tune", "%s: cannot open", path);
    char *text = malloc(1 << 20);
    size_t n = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!text) return cli_fail("tune", "out of memory");
    text[n] = '\0';
    if (n == (1 << 20) - 1 || memchr(text, '\0', n)) {
        free(text);
        return cli_fail("tune", "%s: not a search file (larger than 1 MB, or binary)", path);
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    int rc;
    if (!root) {
        int line = 1;
        for (const char *p = text; end && p < end; p++) line += *p == '\n';
        rc = cli_fail("tune", "%s:%d: not valid JSON", path, line);
    } else {
        rc = parse_root(path, root, s);
    }
    cJSON_Delete(root);
    free(text);
    return rc;
}

void tune_space_free(tune_space *s) {
    free(s->model);
    free(s->data);
    free(s->val);
    for (int p = 0; p < s->n_params; p++) {
        free(s->params[p].name);
        for (int c = 0; c < s->params[p].n_choices; c++) free(s->params[p].choices[c]);
    }
    memset(s, 0, sizeof *s);
}

/* Each trial has its own generator, so its values do not depend on how many
 * trials there are or in which order they run. */
void tune_space_sample(const tune_space *s, int t, tune_values v) {
    nb_rng r;
    nb_rng_seed(&r, (uint64_t)s->seed * 1000003u + (uint64_t)t);
    for (int i = 0; i < s->n_params; i++) {
        const tune_param *p = &s->params[i];
        double u = nb_rng_uniform(&r);
        if (p->dist == TUNE_CHOICE)
            snprintf(v[i], sizeof v[i], "%s", p->choices[(int)(u * p->n_choices) % p->n_choices]);
        else if (p->dist == TUNE_UNIFORM)
            snprintf(v[i], sizeof v[i], "%.3g", p->lo + u * (p->hi - p->lo));
        else
            snprintf(v[i], sizeof v[i], "%.3g", exp(log(p->lo) + u * (log(p->hi) - log(p->lo))));
    }
}

long tune_trial_seed(const tune_space *s, int t) { return s->seed + t; }
