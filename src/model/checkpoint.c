/* Checkpoints: everything needed to resume training bit-exactly, in one
 * safetensors file.
 *
 *   tensors      every parameter and buffer under its node name (so the file
 *                is also a weights file PyTorch can read), in the library's
 *                own float type (F32; F64 in the double test build), raw
 *                bits, counting buffers as I64;
 *                "__optim__.state": the optimiser's flat state array;
 *                "__optim__.best": the caller's second set of values
 *                (nb_checkpoint.best, e.g. the best weights), if given.
 *   __metadata__ nabla.format = "checkpoint", nabla.version = "1",
 *                nabla.real, nabla.epoch, nabla.step, nabla.seed,
 *                nabla.rng and nabla.graph_rng (the generator of dropout)
 *                (four 16-digit hex words each), nabla.model (if any),
 *                nabla.precision ("fp32" or "bf16", of the graph's products;
 *                absent in older files, which are fp32);
 *                optim.kind ("none" without optimiser), optim.steps and one
 *                optim.<field> per config field (doubles with 17 significant
 *                digits, which read back to the same bits).
 *
 * Loading validates the whole file against the graph and the optimiser first
 * and changes nothing unless everything fits; a run is resumed in the
 * precision it was trained in (the graph's must match). */
#include "../formats/st_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPTIM_STATE "__optim__.state"
#define BEST_STATE "__optim__.best"
#define RESERVED "__optim__."

#ifdef NB_REAL_DOUBLE
#define REAL_DTYPE NB_ST_F64
#else
#define REAL_DTYPE NB_ST_F32
#endif

/* Every field of nb_optim_config but kind. */
static const struct {
    const char *key;
    size_t off;
    int is_int;
} optim_fields[] = {
#define D(f) {"optim." #f, offsetof(nb_optim_config, f), 0}
#define I(f) {"optim." #f, offsetof(nb_optim_config, f), 1}
    D(lr), D(weight_decay), D(momentum), D(dampening), I(nesterov), D(beta), D(beta1),
    D(beta2), D(eps), I(amsgrad), D(alpha), I(centered), D(lr_decay), D(initial_accumulator),
#undef D
#undef I
};
#define N_OPTIM_FIELDS (sizeof optim_fields / sizeof optim_fields[0])

static double field_value(const nb_optim_config *c, size_t k) {
    const char *base = (const char *)c + optim_fields[k].off;
    if (optim_fields[k].is_int) {
        int v;
        memcpy(&v, base, sizeof v);
        return v;
    }
    double v;
    memcpy(&v, base, sizeof v);
    return v;
}

/* ------------------------------------------------------------ save */

/* Metadata strings live in one fixed table of small buffers. */
enum { MAX_META = 40, META_LEN = 80 };

typedef struct meta_table {
    char val[MAX_META][META_LEN];
    nb_kv kv[MAX_META];
    int n;
} meta_table;

static void meta_put(meta_table *t, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void meta_put(meta_table *t, const char *key, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->val[t->n], META_LEN, fmt, ap);
    va_end(ap);
    t->kv[t->n] = (nb_kv){key, t->val[t->n]};
    t->n++;
}

/* The parameter and buffer names must leave the optimiser's prefix free. */
static nb_status check_reserved_names(const char *path, const nb_graph *g) {
    for (int i = 0; i < g->n_param_nodes + g->n_buffer_nodes; i++) {
        int buffer = i >= g->n_param_nodes;
        const char *name = g->nodes[buffer ? g->buffer_nodes[i - g->n_param_nodes]
                                           : g->param_nodes[i]].name;
        if (strncmp(name, RESERVED, strlen(RESERVED)) == 0)
            return nb_err(NB_ERR_ARG, "%s: %s name '%s' is reserved for the optimiser",
                          path, buffer ? "buffer" : "parameter", name);
    }
    return NB_OK;
}

/* nabla.* and optim.* metadata (see the top of this file). */
static void own_metadata(meta_table *t, const nb_graph *g, const nb_optim *opt,
                         const nb_checkpoint *ck) {
    meta_put(t, "nabla.format", "checkpoint");
    meta_put(t, "nabla.version", "1");
    meta_put(t, "nabla.real", "%s", nb_st_dtype_name(REAL_DTYPE));
    meta_put(t, "nabla.epoch", "%d", ck->epoch);
    meta_put(t, "nabla.step", "%ld", ck->step);
    meta_put(t, "nabla.seed", "%llu", (unsigned long long)ck->seed);
    meta_put(t, "nabla.rng", "%016llx %016llx %016llx %016llx",
             (unsigned long long)ck->rng.s[0], (unsigned long long)ck->rng.s[1],
             (unsigned long long)ck->rng.s[2], (unsigned long long)ck->rng.s[3]);
    meta_put(t, "nabla.graph_rng", "%016llx %016llx %016llx %016llx",
             (unsigned long long)g->rng.s[0], (unsigned long long)g->rng.s[1],
             (unsigned long long)g->rng.s[2], (unsigned long long)g->rng.s[3]);
    if (ck->model) t->kv[t->n++] = (nb_kv){"nabla.model", ck->model};
    meta_put(t, "nabla.precision", "%s", nb_precision_name(g->precision));
    const nb_optim_config *cfg = opt ? nb_optim_get_config(opt) : NULL;
    meta_put(t, "optim.kind", "%s", cfg ? nb_optim_name(cfg->kind) : "none");
    if (!cfg) return;
    meta_put(t, "optim.steps", "%ld", nb_optim_steps(opt));
    for (size_t k = 0; k < N_OPTIM_FIELDS; k++)
        meta_put(t, optim_fields[k].key, "%.17g", field_value(cfg, k));
}

/* The caller's metadata (ck->meta), after ours: no reserved prefixes. */
static nb_status extra_metadata(meta_table *t, const char *path, const nb_checkpoint *ck) {
    if (ck->n_meta < 0 || (ck->n_meta && !ck->meta) || ck->n_meta > MAX_META - t->n)
        return nb_err(NB_ERR_ARG, "%s: %d extra metadata entries (at most %d)", path,
                      ck->n_meta, MAX_META - t->n);
    for (int k = 0; k < ck->n_meta; k++) {
        const char *key = ck->meta[k].key;
        if (!key || !ck->meta[k].value || !strncmp(key, "nabla.", 6) ||
            !strncmp(key, "optim.", 6))
            return nb_err(NB_ERR_ARG, "%s: extra metadata key '%s' is missing, has no value or "
                          "uses a reserved prefix (nabla., optim.)", path, key ? key : "(null)");
        t->kv[t->n++] = ck->meta[k];
    }
    return NB_OK;
}

/* len values as the 1-D tensor `name`; *bytes (malloc'ed) and *dim hold its
 * data and shape. */
static nb_status flat_entry(const char *path, const char *name, const nb_real *vals, size_t len,
                            int *dim, unsigned char **bytes, nb_st_entry *out) {
    size_t esize = REAL_DTYPE == NB_ST_F64 ? 8 : 4;
    if (len > (size_t)INT32_MAX)
        return nb_err(NB_ERR_ARG, "%s: %s of %zu values exceeds the limit", path, name, len);
    *dim = (int)len;
    *bytes = malloc(len ? len * esize : 1);
    if (!*bytes) return nb_err(NB_ERR_NOMEM, "%s: out of memory", path);
    for (size_t k = 0; k < len; k++) nb__st_put_real(*bytes + k * esize, REAL_DTYPE, vals[k]);
    *out = (nb_st_entry){name, REAL_DTYPE, 1, dim, *bytes};
    return NB_OK;
}

nb_status nb_checkpoint_save(const char *path, const nb_graph *g, const nb_optim *opt,
                             const nb_checkpoint *ck) {
    if (!path || !g || !ck)
        return nb_err(NB_ERR_ARG, "nb_checkpoint_save: %s is NULL",
                      !path ? "path" : !g ? "graph" : "checkpoint info");
    if (g->status != NB_OK)
        return nb_err(NB_ERR_STATE, "%s: the graph has a build error; not saving", path);
    nb_status s = check_reserved_names(path, g);
    if (s != NB_OK) return s;
    meta_table meta;
    meta.n = 0;
    own_metadata(&meta, g, opt, ck);
    if ((s = extra_metadata(&meta, path, ck)) != NB_OK) return s;

    nb_st_entry *params;
    unsigned char *bytes;
    int n;
    s = nb__state_entries(g, REAL_DTYPE, &params, &bytes, &n);
    if (s != NB_OK) return nb_err_prefix(s, "%s", path);
    nb_st_entry *all = malloc((size_t)(n + 2) * sizeof *all);
    unsigned char *state_bytes = NULL, *best_bytes = NULL;
    int state_dim = 0, best_dim = 0;
    if (!all) s = nb_err(NB_ERR_NOMEM, "%s: out of memory", path);
    if (s == NB_OK && n) memcpy(all, params, (size_t)n * sizeof *all);
    if (s == NB_OK && opt) {
        size_t len;
        const nb_real *state = nb_optim_state((nb_optim *)opt, &len);
        s = flat_entry(path, OPTIM_STATE, state, len, &state_dim, &state_bytes, &all[n++]);
    }
    if (s == NB_OK && ck->best)
        s = flat_entry(path, BEST_STATE, ck->best, ck->n_best, &best_dim, &best_bytes, &all[n++]);
    if (s == NB_OK) s = nb_st_write(path, all, n, meta.kv, meta.n);
    free(all);
    free(params);
    free(bytes);
    free(state_bytes);
    free(best_bytes);
    return s;
}

/* ------------------------------------------------------------ load */

static nb_status need_meta(const nb_safetensors *st, const char *path, const char *key,
                           const char **out) {
    *out = nb_st_meta(st, key);
    if (!*out)
        return nb_err(NB_ERR_FORMAT, "%s: checkpoint metadata lacks '%s'", path, key);
    return NB_OK;
}

static nb_status bad_meta(const char *path, const char *key, const char *v, const char *want) {
    char shown[100];
    return nb_err(NB_ERR_FORMAT, "%s: checkpoint metadata '%s' = '%s' is not %s", path, key,
                  nb__st_show(shown, v), want);
}

/* Strict decimal integer in [lo, hi]: digits only (a leading '-' if lo < 0). */
static nb_status meta_int(const nb_safetensors *st, const char *path, const char *key,
                          long long lo, long long hi, long long *out) {
    const char *v;
    nb_status s = need_meta(st, path, key, &v);
    if (s != NB_OK) return s;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    int digit0 = (v[0] >= '0' && v[0] <= '9') || (lo < 0 && v[0] == '-' && v[1] >= '0' &&
                                                   v[1] <= '9');
    if (!digit0 || *end || errno || x < lo || x > hi) {
        char want[96];
        snprintf(want, sizeof want, "an integer in [%lld, %lld]", lo, hi);
        return bad_meta(path, key, v, want);
    }
    *out = x;
    return NB_OK;
}

static nb_status meta_u64(const nb_safetensors *st, const char *path, const char *key,
                          uint64_t *out) {
    const char *v;
    nb_status s = need_meta(st, path, key, &v);
    if (s != NB_OK) return s;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!(v[0] >= '0' && v[0] <= '9') || *end || errno)
        return bad_meta(path, key, v, "an unsigned 64-bit integer");
    *out = (uint64_t)x;
    return NB_OK;
}

/* Generator state stored under key; a missing key is an error unless
 * optional (then *found = 0). */
static nb_status meta_rng(const nb_safetensors *st, const char *path, const char *key,
                          int optional, nb_rng *out, int *found) {
    const char *v = nb_st_meta(st, key);
    *found = v != NULL;
    if (!v) return optional ? NB_OK : need_meta(st, path, key, &v);
    if (strlen(v) != 4 * 16 + 3) goto bad;
    for (int w = 0; w < 4; w++) {
        uint64_t x = 0;
        for (int k = 0; k < 16; k++) {
            char c = v[17 * w + k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0) goto bad;
            x = x << 4 | (uint64_t)d;
        }
        if (w < 3 && v[17 * w + 16] != ' ') goto bad;
        out->s[w] = x;
    }
    return NB_OK;
bad:
    return bad_meta(path, key, v, "four 16-digit lowercase hex words");
}

/* Line number (1-based) where two texts first differ. */
static int first_diff_line(const char *a, const char *b) {
    int line = 1;
    for (; *a && *a == *b; a++, b++)
        if (*a == '\n') line++;
    return line;
}

/* The optimiser part: same kind and config, state of the right size. */
static nb_status check_optim(const nb_safetensors *st, const char *path, const nb_optim *opt,
                             long *steps, nb_real **state) {
    *state = NULL;
    const char *kind;
    nb_status s = need_meta(st, path, "optim.kind", &kind);
    if (s != NB_OK) return s;
    int idx = nb_st_find(st, OPTIM_STATE);
    if (strcmp(kind, "none") == 0) {
        if (idx >= 0)
            return nb_err(NB_ERR_FORMAT, "%s: checkpoint has no optimiser but a tensor '%s'",
                          path, OPTIM_STATE);
        if (opt)
            return nb_err(NB_ERR_ARG, "%s: checkpoint holds no optimiser state, but an "
                          "optimiser was given to restore", path);
        return NB_OK;
    }
    if (!opt) return NB_OK; /* the caller does not want it */
    const nb_optim_config *cfg = nb_optim_get_config(opt);
    char shown[100];
    if (strcmp(kind, nb_optim_name(cfg->kind)) != 0)
        return nb_err(NB_ERR_ARG, "%s: checkpoint was saved with optimiser '%s', but this run "
                      "uses '%s'", path, nb__st_show(shown, kind), nb_optim_name(cfg->kind));
    for (size_t k = 0; k < N_OPTIM_FIELDS; k++) {
        const char *v;
        s = need_meta(st, path, optim_fields[k].key, &v);
        if (s != NB_OK) return s;
        char *end;
        double saved = strtod(v, &end);
        if (end == v || *end) return bad_meta(path, optim_fields[k].key, v, "a number");
        double now = field_value(cfg, k);
        if (saved != now)
            return nb_err(NB_ERR_ARG, "%s: optimiser setting %s differs: checkpoint %.17g, this "
                          "run %.17g", path, optim_fields[k].key + 6, saved, now);
    }
    long long st_steps;
    s = meta_int(st, path, "optim.steps", 0, LONG_MAX, &st_steps);
    if (s != NB_OK) return s;
    *steps = (long)st_steps;
    size_t len;
    nb_optim_state((nb_optim *)opt, &len);
    if (idx < 0)
        return nb_err(NB_ERR_FORMAT, "%s: checkpoint lacks the optimiser state tensor '%s'",
                      path, OPTIM_STATE);
    nb_st_tensor t;
    nb_st_tensor_at(st, idx, &t);
    if (t.ndim != 1 || (size_t)t.dims[0] != len)
        return nb_err(NB_ERR_SHAPE, "%s: optimiser state has %zu values in the checkpoint, "
                      "this optimiser has %zu", path, t.ndim == 1 ? (size_t)t.dims[0] : t.numel,
                      len);
    if (t.dtype != NB_ST_F32 && t.dtype != NB_ST_F64)
        return nb_err(NB_ERR_FORMAT, "%s: optimiser state has dtype %s (F32 or F64 expected)",
                      path, nb_st_dtype_name(t.dtype));
    nb_real *vals = malloc(len ? len * sizeof *vals : 1);
    if (!vals) return nb_err(NB_ERR_NOMEM, "%s: out of memory", path);
    for (size_t k = 0; k < len; k++) {
        int ok;
        vals[k] = nb__st_get_real(&t, k, &ok);
        if (!ok) {
            free(vals);
            return nb_err(NB_ERR_NUMERIC, "%s: optimiser state value %zu does not fit in the "
                          "parameter type", path, k);
        }
        /* no optimiser keeps a NaN or an infinity: the file is damaged, and
         * training from it would fail later as if the learning rate were */
        if (!((double)vals[k] - (double)vals[k] == 0)) {
            double v = (double)vals[k];
            free(vals);
            return nb_err(NB_ERR_NUMERIC, "%s: optimiser state value %zu is %s; the checkpoint "
                          "is damaged", path, k, v != v ? "NaN" : "infinite");
        }
    }
    *state = vals;
    return NB_OK;
}

/* A nabla checkpoint of the version this library reads, and (when
 * ck->model is given) of the same model text. */
static nb_status check_identity(const nb_safetensors *st, const char *path,
                                const nb_checkpoint *ck) {
    const char *v;
    if (need_meta(st, path, "nabla.format", &v) != NB_OK)
        return nb_err(NB_ERR_FORMAT, "%s: not a nabla checkpoint (no 'nabla.format' metadata)",
                      path);
    if (strcmp(v, "checkpoint") != 0) return bad_meta(path, "nabla.format", v, "'checkpoint'");
    nb_status s = need_meta(st, path, "nabla.version", &v);
    if (s != NB_OK) return s;
    if (strcmp(v, "1") != 0)
        return bad_meta(path, "nabla.version", v, "1 (the version this library reads)");
    if (!ck->model) return NB_OK;
    const char *saved = nb_st_meta(st, "nabla.model");
    if (!saved)
        return nb_err(NB_ERR_ARG, "%s: checkpoint has no model text to compare with", path);
    if (strcmp(saved, ck->model) != 0)
        return nb_err(NB_ERR_ARG, "%s: checkpoint was saved for a different model (the model "
                      "texts differ from line %d)", path, first_diff_line(saved, ck->model));
    return NB_OK;
}

/* The graph computes its products in the precision the run was trained in:
 * a resumed run then takes the steps an uninterrupted one would. */
static nb_status check_precision(const nb_safetensors *st, const char *path, const nb_graph *g) {
    const char *v = nb_st_meta(st, "nabla.precision");
    nb_precision saved = NB_PRECISION_FP32;
    if (v && nb_precision_parse(v, &saved) != NB_OK)
        return bad_meta(path, "nabla.precision", v, "fp32 or bf16");
    if (saved != g->precision)
        return nb_err(NB_ERR_ARG, "%s: checkpoint was trained with precision %s, but this graph "
                      "computes in %s; resume in %s (start a new run from its weights to change)",
                      path, nb_precision_name(saved), nb_precision_name(g->precision),
                      nb_precision_name(saved));
    return NB_OK;
}

/* Where the run stands: epoch, step, seed and the generators. */
typedef struct run_state {
    long long epoch, step;
    uint64_t seed;
    nb_rng rng, graph_rng;
    int have_rng, have_graph_rng;
} run_state;

static nb_status read_run_state(const nb_safetensors *st, const char *path, run_state *r) {
    nb_status s;
    if ((s = meta_int(st, path, "nabla.epoch", INT_MIN, INT_MAX, &r->epoch)) != NB_OK ||
        (s = meta_int(st, path, "nabla.step", LONG_MIN, LONG_MAX, &r->step)) != NB_OK ||
        (s = meta_u64(st, path, "nabla.seed", &r->seed)) != NB_OK ||
        (s = meta_rng(st, path, "nabla.rng", 0, &r->rng, &r->have_rng)) != NB_OK)
        return s;
    return meta_rng(st, path, "nabla.graph_rng", 1, &r->graph_rng, &r->have_graph_rng);
}

/* Tensor names under the optimiser's prefix other than its state. */
static nb_status check_reserved_tensors(const nb_safetensors *st, const char *path) {
    for (int i = 0; i < nb_st_count(st); i++) {
        nb_st_tensor t;
        nb_st_tensor_at(st, i, &t);
        if (strncmp(t.name, RESERVED, strlen(RESERVED)) == 0 && strcmp(t.name, OPTIM_STATE) &&
            strcmp(t.name, BEST_STATE)) {
            char shown[100];
            return nb_err(NB_ERR_FORMAT, "%s: unknown reserved tensor '%s'", path,
                          nb__st_show(shown, t.name));
        }
    }
    return NB_OK;
}

/* The caller's second set of values (BEST_STATE), read into a new array
 * *out when the caller asks for it and the file has it. */
static nb_status read_best(const nb_safetensors *st, const char *path, const nb_checkpoint *ck,
                           nb_real **out) {
    *out = NULL;
    int idx = nb_st_find(st, BEST_STATE);
    if (!ck->best || idx < 0) return NB_OK;
    nb_st_tensor t;
    nb_st_tensor_at(st, idx, &t);
    if (t.ndim != 1 || (size_t)t.dims[0] != ck->n_best || t.dtype != REAL_DTYPE)
        return nb_err(NB_ERR_SHAPE, "%s: tensor '%s' holds %zu values of %s; %zu values of %s "
                      "expected", path, BEST_STATE, t.numel, nb_st_dtype_name(t.dtype),
                      ck->n_best, nb_st_dtype_name(REAL_DTYPE));
    nb_real *vals = malloc(ck->n_best ? ck->n_best * sizeof *vals : 1);
    if (!vals) return nb_err(NB_ERR_NOMEM, "%s: out of memory", path);
    for (size_t k = 0; k < ck->n_best; k++) {
        int ok;
        vals[k] = nb__st_get_real(&t, k, &ok);
    }
    *out = vals;
    return NB_OK;
}

/* Everything checked: put it in place. */
static void apply_checkpoint(nb_graph *g, nb_optim *opt, nb_checkpoint *ck, const run_state *r,
                             const nb_real *params, const nb_real *buffers,
                             const nb_real *state, long optim_steps) {
    nb__apply_staged(g, params, buffers);
    if (r->have_graph_rng) g->rng = r->graph_rng;
    if (opt && state) {
        size_t len;
        nb_real *dst = nb_optim_state(opt, &len);
        if (len) memcpy(dst, state, len * sizeof *dst);
        nb_optim_set_steps(opt, optim_steps);
    }
    ck->epoch = (int)r->epoch;
    ck->step = (long)r->step;
    ck->seed = r->seed;
    ck->rng = r->rng;
    ck->has_best = 0;
}

nb_status nb_checkpoint_load(const char *path, nb_graph *g, nb_optim *opt, nb_checkpoint *ck) {
    if (!path || !g || !ck)
        return nb_err(NB_ERR_ARG, "nb_checkpoint_load: %s is NULL",
                      !path ? "path" : !g ? "graph" : "checkpoint info");
    if (g->status != NB_OK)
        return nb_err(NB_ERR_STATE, "%s: the graph has a build error; not loading", path);
    nb_safetensors *st;
    nb_status s = nb_st_open(path, &st);
    if (s != NB_OK) return s;
    nb_real *params = NULL, *buffers = NULL, *state = NULL, *best = NULL;
    long optim_steps = 0;
    run_state run = {0, 0, 0, {{0, 0, 0, 0}}, {{0, 0, 0, 0}}, 0, 0};
    s = check_identity(st, path, ck);
    if (s == NB_OK) s = check_precision(st, path, g);
    if (s == NB_OK) s = read_run_state(st, path, &run);
    if (s == NB_OK) s = check_reserved_tensors(st, path);
    if (s == NB_OK) s = nb__stage_params(st, path, g, 0, RESERVED, NULL, 0, &params, &buffers);
    if (s == NB_OK) s = check_optim(st, path, opt, &optim_steps, &state);
    if (s == NB_OK) s = read_best(st, path, ck, &best);
    if (s == NB_OK) apply_checkpoint(g, opt, ck, &run, params, buffers, state, optim_steps);
    if (s == NB_OK && best) {
        memcpy(ck->best, best, ck->n_best * sizeof *best);
        ck->has_best = 1;
    }
    free(best);
    free(params);
    free(buffers);
    free(state);
    nb_st_free(st);
    return s;
}
