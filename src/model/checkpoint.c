/* Checkpoints: everything needed to resume training bit-exactly, in one
 * safetensors file.
 *
 *   tensors      every parameter and buffer under its node name (so the file
 *                is also a weights file PyTorch can read), in the library's
 *                own float type (F32; F64 in the double test build), raw
 *                bits, counting buffers as I64;
 *                "__optim__.state": the optimiser's flat state array.
 *   __metadata__ nabla.format = "checkpoint", nabla.version = "1",
 *                nabla.real, nabla.epoch, nabla.step, nabla.seed,
 *                nabla.rng and nabla.graph_rng (the generator of dropout)
 *                (four 16-digit hex words each), nabla.model (if any);
 *                optim.kind ("none" without optimiser), optim.steps and one
 *                optim.<field> per config field (doubles with 17 significant
 *                digits, which read back to the same bits).
 *
 * Loading validates the whole file against the graph and the optimiser first
 * and changes nothing unless everything fits. */
#include "../formats/st_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPTIM_STATE "__optim__.state"
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

nb_status nb_checkpoint_save(const char *path, const nb_graph *g, const nb_optim *opt,
                             const nb_checkpoint *ck) {
    if (!path || !g || !ck)
        return nb_err(NB_ERR_ARG, "nb_checkpoint_save: %s is NULL",
                      !path ? "path" : !g ? "graph" : "checkpoint info");
    if (g->status != NB_OK)
        return nb_err(NB_ERR_STATE, "%s: the graph has a build error; not saving", path);
    for (int i = 0; i < g->n_param_nodes + g->n_buffer_nodes; i++) {
        int buffer = i >= g->n_param_nodes;
        const char *name = g->nodes[buffer ? g->buffer_nodes[i - g->n_param_nodes]
                                           : g->param_nodes[i]].name;
        if (strncmp(name, RESERVED, strlen(RESERVED)) == 0)
            return nb_err(NB_ERR_ARG, "%s: %s name '%s' is reserved for the optimiser",
                          path, buffer ? "buffer" : "parameter", name);
    }
    char val[MAX_META][META_LEN];
    nb_kv meta[MAX_META];
    int m = 0;
#define META(k, ...) (snprintf(val[m], META_LEN, __VA_ARGS__), meta[m] = (nb_kv){k, val[m]}, m++)
    META("nabla.format", "checkpoint");
    META("nabla.version", "1");
    META("nabla.real", "%s", nb_st_dtype_name(REAL_DTYPE));
    META("nabla.epoch", "%d", ck->epoch);
    META("nabla.step", "%ld", ck->step);
    META("nabla.seed", "%llu", (unsigned long long)ck->seed);
    META("nabla.rng", "%016llx %016llx %016llx %016llx", (unsigned long long)ck->rng.s[0],
         (unsigned long long)ck->rng.s[1], (unsigned long long)ck->rng.s[2],
         (unsigned long long)ck->rng.s[3]);
    META("nabla.graph_rng", "%016llx %016llx %016llx %016llx",
         (unsigned long long)g->rng.s[0], (unsigned long long)g->rng.s[1],
         (unsigned long long)g->rng.s[2], (unsigned long long)g->rng.s[3]);
    if (ck->model) meta[m++] = (nb_kv){"nabla.model", ck->model};
    const nb_optim_config *cfg = opt ? nb_optim_get_config(opt) : NULL;
    META("optim.kind", "%s", cfg ? nb_optim_name(cfg->kind) : "none");
    if (cfg) {
        META("optim.steps", "%ld", nb_optim_steps(opt));
        for (size_t k = 0; k < N_OPTIM_FIELDS; k++)
            META(optim_fields[k].key, "%.17g", field_value(cfg, k));
    }
#undef META
    if (ck->n_meta < 0 || (ck->n_meta && !ck->meta) || ck->n_meta > MAX_META - m)
        return nb_err(NB_ERR_ARG, "%s: %d extra metadata entries (at most %d)", path,
                      ck->n_meta, MAX_META - m);
    for (int k = 0; k < ck->n_meta; k++) {
        const char *key = ck->meta[k].key;
        if (!key || !ck->meta[k].value || !strncmp(key, "nabla.", 6) ||
            !strncmp(key, "optim.", 6))
            return nb_err(NB_ERR_ARG, "%s: extra metadata key '%s' is missing, has no value or "
                          "uses a reserved prefix (nabla., optim.)", path, key ? key : "(null)");
        meta[m++] = ck->meta[k];
    }

    nb_st_entry *params;
    unsigned char *bytes;
    int n;
    nb_status s = nb__state_entries(g, REAL_DTYPE, &params, &bytes, &n);
    if (s != NB_OK) return nb_err_prefix(s, "%s", path);
    nb_st_entry *all = malloc((size_t)(n + 1) * sizeof *all);
    unsigned char *state_bytes = NULL;
    int state_dim = 0;
    if (!all) {
        s = nb_err(NB_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (n) memcpy(all, params, (size_t)n * sizeof *all);
    if (opt) {
        size_t len;
        nb_real *state = nb_optim_state((nb_optim *)opt, &len);
        size_t esize = REAL_DTYPE == NB_ST_F64 ? 8 : 4;
        if (len > (size_t)INT32_MAX) {
            s = nb_err(NB_ERR_ARG, "%s: optimiser state of %zu values exceeds the limit", path,
                       len);
            goto done;
        }
        state_dim = (int)len;
        state_bytes = malloc(len ? len * esize : 1);
        if (!state_bytes) {
            s = nb_err(NB_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        for (size_t k = 0; k < len; k++) nb__st_put_real(state_bytes + k * esize, REAL_DTYPE,
                                                         state[k]);
        all[n++] = (nb_st_entry){OPTIM_STATE, REAL_DTYPE, 1, &state_dim, state_bytes};
    }
    s = nb_st_write(path, all, n, meta, m);
done:
    free(all);
    free(params);
    free(bytes);
    free(state_bytes);
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
    }
    *state = vals;
    return NB_OK;
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
    nb_real *params = NULL, *buffers = NULL, *state = NULL;
    long long epoch = 0, step = 0;
    long optim_steps = 0;
    uint64_t seed = 0;
    nb_rng rng = {{0, 0, 0, 0}}, graph_rng = {{0, 0, 0, 0}};
    int have_rng, have_graph_rng;
    const char *v;
    if ((s = need_meta(st, path, "nabla.format", &v)) != NB_OK) {
        s = nb_err(NB_ERR_FORMAT, "%s: not a nabla checkpoint (no 'nabla.format' metadata)",
                   path);
        goto done;
    }
    if (strcmp(v, "checkpoint") != 0) {
        s = bad_meta(path, "nabla.format", v, "'checkpoint'");
        goto done;
    }
    if ((s = need_meta(st, path, "nabla.version", &v)) != NB_OK) goto done;
    if (strcmp(v, "1") != 0) {
        s = bad_meta(path, "nabla.version", v, "1 (the version this library reads)");
        goto done;
    }
    if (ck->model) {
        const char *saved = nb_st_meta(st, "nabla.model");
        if (!saved) {
            s = nb_err(NB_ERR_ARG, "%s: checkpoint has no model text to compare with", path);
            goto done;
        }
        if (strcmp(saved, ck->model) != 0) {
            s = nb_err(NB_ERR_ARG, "%s: checkpoint was saved for a different model (the model "
                       "texts differ from line %d)", path, first_diff_line(saved, ck->model));
            goto done;
        }
    }
    if ((s = meta_int(st, path, "nabla.epoch", INT_MIN, INT_MAX, &epoch)) != NB_OK ||
        (s = meta_int(st, path, "nabla.step", LONG_MIN, LONG_MAX, &step)) != NB_OK ||
        (s = meta_u64(st, path, "nabla.seed", &seed)) != NB_OK ||
        (s = meta_rng(st, path, "nabla.rng", 0, &rng, &have_rng)) != NB_OK ||
        (s = meta_rng(st, path, "nabla.graph_rng", 1, &graph_rng, &have_graph_rng)) != NB_OK)
        goto done;
    for (int i = 0; i < nb_st_count(st); i++) {
        nb_st_tensor t;
        nb_st_tensor_at(st, i, &t);
        if (strncmp(t.name, RESERVED, strlen(RESERVED)) == 0 && strcmp(t.name, OPTIM_STATE)) {
            char shown[100];
            s = nb_err(NB_ERR_FORMAT, "%s: unknown reserved tensor '%s'", path,
                       nb__st_show(shown, t.name));
            goto done;
        }
    }
    if ((s = nb__stage_params(st, path, g, 0, RESERVED, &params, &buffers)) != NB_OK)
        goto done;
    if ((s = check_optim(st, path, opt, &optim_steps, &state)) != NB_OK) goto done;

    /* everything checked: apply */
    nb__apply_staged(g, params, buffers);
    if (have_graph_rng) g->rng = graph_rng;
    if (opt && state) {
        size_t len;
        nb_real *dst = nb_optim_state(opt, &len);
        if (len) memcpy(dst, state, len * sizeof *dst);
        nb_optim_set_steps(opt, optim_steps);
    }
    ck->epoch = (int)epoch;
    ck->step = (long)step;
    ck->seed = seed;
    ck->rng = rng;
done:
    free(params);
    free(buffers);
    free(state);
    nb_st_free(st);
    return s;
}
