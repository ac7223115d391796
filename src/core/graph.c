/* The computation graph: building, memory planning, forward and backward
 * (gradient checking is in gradcheck.c).
 *
 * Nodes can only refer to nodes created before them, so creation order is a
 * topological order of the DAG and no cycle can exist.  Forward walks that
 * order over the ancestors of the requested node; backward walks it in
 * reverse, each op adding its contribution into its inputs' gradients, so a
 * node used by several others receives the sum of their contributions (the
 * first contribution may overwrite instead: see nb_backward). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ lifecycle */

nb_graph *nb_graph_new(void) {
    nb_graph *g = calloc(1, sizeof *g);
    if (!g) {
        nb_err(NB_ERR_NOMEM, "nb_graph_new: out of memory");
        return NULL;
    }
    g->training = 1;
    nb_rng_seed(&g->rng, 0); /* reproducible even without nb_graph_init */
    return g;
}

void nb_graph_free(nb_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_nodes; i++) free(g->nodes[i].const_data);
    free(g->nodes);
    free(g->params);
    free(g->grads);
    free(g->param_nodes);
    free(g->buffer_nodes);
    free(g->arena);
    free(g->mark);
    free(g->train_ranges);
    free(g->sync_buf);
    free(g->op_seconds);
    nb__free_names(g);
    free(g);
}

double *nb__sync_buffer(nb_graph *g, size_t n) {
    if (n > g->sync_cap) {
        double *b = realloc(g->sync_buf, n * sizeof *b);
        if (!b) return NULL;
        g->sync_buf = b;
        g->sync_cap = n;
    }
    return g->sync_buf;
}

nb_status nb_graph_status(const nb_graph *g) {
    if (!g) return nb_err(NB_ERR_ARG, "nb_graph_status: graph is NULL");
    return g->status;
}

/* ------------------------------------------------------------ building */

nb_node nb__fail(nb_graph *g, nb_status s, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    nb_err(s, "%s", msg);
    if (g && g->status == NB_OK) g->status = s;
    return NB_NONE;
}

void nb__run_fail(nb_graph *g, nb_status s, const char *fmt, ...) {
    if (g->run_status != NB_OK) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->run_error, sizeof g->run_error, fmt, ap);
    va_end(ap);
    g->run_status = s;
}

int nb__check_input(nb_graph *g, const char *op, nb_node h) {
    if (h == NB_NONE) {
        /* An earlier call failed: keep its message, just propagate. */
        if (g->status == NB_OK) nb__fail(g, NB_ERR_ARG, "%s: input is NB_NONE", op);
        return 0;
    }
    if (h < 0 || h >= g->n_nodes) {
        nb__fail(g, NB_ERR_ARG, "%s: node handle %d does not exist (graph has %d nodes)",
                 op, h, g->n_nodes);
        return 0;
    }
    return 1;
}

int nb__begin(nb_graph *g, const char *op, int nin, const nb_node *in) {
    if (!g) {
        nb_err(NB_ERR_ARG, "%s: graph is NULL", op);
        return 0;
    }
    for (int k = 0; k < nin; k++)
        if (!nb__check_input(g, op, in[k])) return 0;
    return 1;
}

void nb__auto_name(nb_graph *g, const char *prefix, char *buf, size_t size) {
    snprintf(buf, size, "%s%d", prefix, g->auto_names++);
}

static int check_dims(nb_graph *g, const char *op, int ndim, const int *dims) {
    if (ndim < 0 || ndim > NB_MAX_DIMS) {
        nb__fail(g, NB_ERR_SHAPE, "%s: %d dimensions (at most %d allowed)", op, ndim,
                 NB_MAX_DIMS);
        return 0;
    }
    if (ndim > 0 && !dims) {
        nb__fail(g, NB_ERR_ARG, "%s: dims is NULL", op);
        return 0;
    }
    size_t total = 1;
    for (int d = 0; d < ndim; d++) {
        if (dims[d] <= 0) {
            char s[128];
            nb__fail(g, NB_ERR_SHAPE, "%s: dimension %d of %s is not positive", op, d,
                     nb_shape_str(s, sizeof s, ndim, dims));
            return 0;
        }
        total *= (size_t)dims[d];
        if (total > ((size_t)1 << 40)) {
            nb__fail(g, NB_ERR_SHAPE, "%s: tensor too large", op);
            return 0;
        }
    }
    return 1;
}

/* Append a blank node; returns its handle or NB_NONE. */
static nb_node new_node(nb_graph *g, const char *op) {
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 32;
        nb_node_t *nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        unsigned char *mark = realloc(g->mark, (size_t)cap);
        if (mark) g->mark = mark;
        if (!nodes || !mark) {
            if (nodes) g->nodes = nodes;
            return nb__fail(g, NB_ERR_NOMEM, "%s: out of memory", op);
        }
        g->nodes = nodes;
        g->cap_nodes = cap;
    }
    nb_node h = g->n_nodes++;
    memset(&g->nodes[h], 0, sizeof g->nodes[h]);
    g->mark[h] = 0;
    g->planned = 0; /* the arena layout must include the new node */
    return h;
}

/* name, or PREFIX followed by the handle when there is none */
static void set_name(nb_graph *g, nb_node h, const char *name, const char *prefix) {
    char buf[64];
    if (!name || !name[0]) snprintf(buf, sizeof buf, "%s%d", prefix, h);
    nb__set_name(g, h, name && name[0] ? name : buf);
}

static int name_taken(const nb_graph *g, const char *name) {
    return name && name[0] && nb_find(g, name) != NB_NONE;
}

nb_node nb__add_node(nb_graph *g, const nb_op *op, int nin, const nb_node *in, int ndim,
                     const int *dims, int batched) {
    if (!check_dims(g, op->name, ndim, dims)) return NB_NONE;
    if (batched && ndim == 0)
        return nb__fail(g, NB_ERR_SHAPE, "%s: a batched tensor needs a batch dimension",
                        op->name);
    /* dims often points into an input node, which new_node may move */
    int shape[NB_MAX_DIMS];
    if (ndim) memcpy(shape, dims, (size_t)ndim * sizeof *dims);
    nb_node h = new_node(g, op->name);
    if (h == NB_NONE) return NB_NONE;
    nb_node_t *n = &g->nodes[h];
    n->op = op;
    n->nin = nin;
    for (int k = 0; k < nin; k++) {
        n->in[k] = in[k];
        g->nodes[in[k]].consumers++;
        if (g->nodes[in[k]].requires_grad) n->requires_grad = 1;
    }
    n->ndim = ndim;
    if (ndim) memcpy(n->dims, shape, (size_t)ndim * sizeof *shape);
    n->batched = batched;
    if (batched) n->dims[0] = g->batch > 0 ? g->batch : 1;
    set_name(g, h, NULL, op->name);
    return h;
}

nb_node nb_input(nb_graph *g, const char *name, int ndim, const int *sample_dims) {
    if (!nb__begin(g, "nb_input", 0, NULL)) return NB_NONE;
    if (!check_dims(g, "nb_input", ndim, sample_dims)) return NB_NONE;
    if (ndim + 1 > NB_MAX_DIMS)
        return nb__fail(g, NB_ERR_SHAPE, "nb_input: %d sample dimensions plus the batch "
                        "exceed %d", ndim, NB_MAX_DIMS);
    if (name_taken(g, name))
        return nb__fail(g, NB_ERR_ARG, "nb_input: name '%s' already used", name);
    int shape[NB_MAX_DIMS]; /* sample_dims may point into a node that new_node moves */
    for (int d = 0; d < ndim; d++) shape[d] = sample_dims[d];
    nb_node h = new_node(g, "nb_input");
    if (h == NB_NONE) return NB_NONE;
    nb_node_t *n = &g->nodes[h];
    n->leaf = NB_LEAF_INPUT;
    n->batched = 1;
    n->ndim = ndim + 1;
    n->dims[0] = g->batch > 0 ? g->batch : 1;
    for (int d = 0; d < ndim; d++) n->dims[d + 1] = shape[d];
    set_name(g, h, name, "input");
    return h;
}

/* Point every parameter node at its slice of the (possibly moved) buffers. */
static void bind_params(nb_graph *g) {
    for (int k = 0; k < g->n_param_nodes; k++) {
        nb_node_t *n = &g->nodes[g->param_nodes[k]];
        n->val = g->params + n->val_off;
        n->grad = n->requires_grad ? g->grads + n->val_off : NULL; /* frozen: none */
    }
}

nb_node nb_param(nb_graph *g, const char *name, int ndim, const int *dims, nb_init init) {
    if (!nb__begin(g, "nb_param", 0, NULL)) return NB_NONE;
    if (!check_dims(g, "nb_param", ndim, dims)) return NB_NONE;
    if (name_taken(g, name))
        return nb__fail(g, NB_ERR_ARG, "nb_param: name '%s' already used", name);
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (size_t)dims[d];
    if (g->n_params + numel > g->cap_params) {
        /* calloc, not realloc: fresh pages arrive zeroed and untouched, so
         * declaring a large model costs no memory until it is used */
        size_t cap = g->cap_params ? g->cap_params : 1024;
        while (cap < g->n_params + numel) cap *= 2;
        nb_real *p = calloc(cap, sizeof *p), *q = calloc(cap, sizeof *q);
        if (!p || !q) {
            free(p);
            free(q);
            return nb__fail(g, NB_ERR_NOMEM, "nb_param: out of memory for %zu values", numel);
        }
        nb__prefer_huge_pages(p, cap * sizeof *p);
        nb__prefer_huge_pages(q, cap * sizeof *q);
        if (g->n_params) {
            memcpy(p, g->params, g->n_params * sizeof *p);
            memcpy(q, g->grads, g->n_params * sizeof *q);
        }
        free(g->params);
        free(g->grads);
        g->params = p;
        g->grads = q;
        g->cap_params = cap;
        bind_params(g);
    }
    if (g->n_param_nodes == g->cap_param_nodes) {
        int cap = g->cap_param_nodes ? 2 * g->cap_param_nodes : 16;
        int *pn = realloc(g->param_nodes, (size_t)cap * sizeof *pn);
        if (!pn) return nb__fail(g, NB_ERR_NOMEM, "nb_param: out of memory");
        g->param_nodes = pn;
        g->cap_param_nodes = cap;
    }
    int shape[NB_MAX_DIMS]; /* dims may point into a node that new_node moves */
    if (ndim) memcpy(shape, dims, (size_t)ndim * sizeof *dims);
    nb_node h = new_node(g, "nb_param");
    if (h == NB_NONE) return NB_NONE;
    nb_node_t *n = &g->nodes[h];
    n->leaf = NB_LEAF_PARAM;
    n->ndim = ndim;
    if (ndim) memcpy(n->dims, shape, (size_t)ndim * sizeof *shape);
    n->requires_grad = 1;
    n->init = init;
    n->val_off = g->n_params;
    g->n_params += numel;
    g->param_nodes[g->n_param_nodes++] = h;
    set_name(g, h, name, "param");
    n->val = g->params + n->val_off; /* the others are bound already */
    n->grad = g->grads + n->val_off;
    if (nb__add_train_range(g, n->val_off, g->n_params) != NB_OK)
        return nb__fail(g, NB_ERR_NOMEM, "nb_param: out of memory");
    return h;
}

nb_node nb_constant(nb_graph *g, const char *name, int ndim, const int *dims,
                    const nb_real *values) {
    if (!nb__begin(g, "nb_constant", 0, NULL)) return NB_NONE;
    if (!check_dims(g, "nb_constant", ndim, dims)) return NB_NONE;
    if (name_taken(g, name))
        return nb__fail(g, NB_ERR_ARG, "nb_constant: name '%s' already used", name);
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (size_t)dims[d];
    nb_real *data = calloc(numel, sizeof *data);
    if (!data) return nb__fail(g, NB_ERR_NOMEM, "nb_constant: out of memory");
    if (values) memcpy(data, values, numel * sizeof *data);
    int shape[NB_MAX_DIMS]; /* dims may point into a node that new_node moves */
    if (ndim) memcpy(shape, dims, (size_t)ndim * sizeof *dims);
    nb_node h = new_node(g, "nb_constant");
    if (h == NB_NONE) {
        free(data);
        return NB_NONE;
    }
    nb_node_t *n = &g->nodes[h];
    n->leaf = NB_LEAF_CONST;
    n->ndim = ndim;
    if (ndim) memcpy(n->dims, shape, (size_t)ndim * sizeof *shape);
    n->const_data = data;
    n->val = data;
    set_name(g, h, name, "const");
    return h;
}

nb_node nb__buffer(nb_graph *g, const char *name, int ndim, const int *dims, nb_real fill,
                   int is_counter) {
    if (!nb__begin(g, "buffer", 0, NULL)) return NB_NONE;
    if (!check_dims(g, "buffer", ndim, dims)) return NB_NONE;
    if (!name || !name[0]) return nb__fail(g, NB_ERR_ARG, "buffer: a buffer needs a name");
    if (name_taken(g, name))
        return nb__fail(g, NB_ERR_ARG, "buffer: name '%s' already used", name);
    if (g->n_buffer_nodes == g->cap_buffer_nodes) {
        int cap = g->cap_buffer_nodes ? 2 * g->cap_buffer_nodes : 8;
        int *bn = realloc(g->buffer_nodes, (size_t)cap * sizeof *bn);
        if (!bn) return nb__fail(g, NB_ERR_NOMEM, "buffer: out of memory");
        g->buffer_nodes = bn;
        g->cap_buffer_nodes = cap;
    }
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (size_t)dims[d];
    nb_real *data = malloc(numel * sizeof *data);
    if (!data) return nb__fail(g, NB_ERR_NOMEM, "buffer: out of memory");
    for (size_t k = 0; k < numel; k++) data[k] = fill;
    int shape[NB_MAX_DIMS]; /* dims may point into a node that new_node moves */
    if (ndim) memcpy(shape, dims, (size_t)ndim * sizeof *dims);
    nb_node h = new_node(g, "buffer");
    if (h == NB_NONE) {
        free(data);
        return NB_NONE;
    }
    nb_node_t *n = &g->nodes[h];
    n->leaf = NB_LEAF_BUFFER;
    n->ndim = ndim;
    if (ndim) memcpy(n->dims, shape, (size_t)ndim * sizeof *shape);
    n->const_data = data;
    n->val = data;
    n->init = (nb_init){.kind = NB_INIT_CONSTANT, .a = (double)fill};
    n->is_counter = is_counter != 0;
    set_name(g, h, name, "buffer");
    g->buffer_nodes[g->n_buffer_nodes++] = h;
    return h;
}

/* ------------------------------------------------------------ inspection */

static int valid(const nb_graph *g, nb_node n, const char *fn) {
    if (!g) {
        nb_err(NB_ERR_ARG, "%s: graph is NULL", fn);
        return 0;
    }
    if (n < 0 || n >= g->n_nodes) {
        nb_err(NB_ERR_ARG, "%s: node %d does not exist (graph has %d nodes)", fn, n,
               g->n_nodes);
        return 0;
    }
    return 1;
}

int nb_graph_node_count(const nb_graph *g) { return g ? g->n_nodes : 0; }

const char *nb_node_name(const nb_graph *g, nb_node n) {
    return valid(g, n, "nb_node_name") ? g->nodes[n].name : NULL;
}

const char *nb_node_op(const nb_graph *g, nb_node n) {
    if (!valid(g, n, "nb_node_op")) return NULL;
    const nb_node_t *t = &g->nodes[n];
    switch (t->leaf) {
    case NB_LEAF_INPUT: return "input";
    case NB_LEAF_PARAM: return "param";
    case NB_LEAF_CONST: return "constant";
    case NB_LEAF_BUFFER: return "buffer";
    case NB_LEAF_NONE: break;
    }
    return t->op->name;
}

nb_node nb_find(const nb_graph *g, const char *name) {
    if (!g || !name) return NB_NONE;
    return nb__find_name(g, name);
}

nb_status nb_node_shape(const nb_graph *g, nb_node n, int *ndim, int dims[NB_MAX_DIMS]) {
    if (!valid(g, n, "nb_node_shape")) return NB_ERR_ARG;
    if (ndim) *ndim = g->nodes[n].ndim;
    if (dims) memcpy(dims, g->nodes[n].dims, sizeof g->nodes[n].dims);
    return NB_OK;
}

size_t nb_node_numel(const nb_graph *g, nb_node n) {
    return valid(g, n, "nb_node_numel") ? nb__numel(&g->nodes[n]) : 0;
}

int nb_node_is_batched(const nb_graph *g, nb_node n) {
    return valid(g, n, "nb_node_is_batched") ? g->nodes[n].batched : 0;
}

double nb_node_flops(const nb_graph *g, nb_node n) {
    if (!valid(g, n, "nb_node_flops")) return 0;
    const nb_node_t *t = &g->nodes[n];
    if (!t->op) return 0;
    return t->op->flops ? t->op->flops(g, t) : (double)nb__numel(t);
}

size_t nb_param_count(const nb_graph *g) { return g ? g->n_params : 0; }
int nb_param_tensor_count(const nb_graph *g) { return g ? g->n_param_nodes : 0; }

nb_node nb_param_tensor(const nb_graph *g, int i) {
    if (!g || i < 0 || i >= g->n_param_nodes) {
        nb_err(NB_ERR_ARG, "nb_param_tensor: index %d out of range", i);
        return NB_NONE;
    }
    return g->param_nodes[i];
}

int nb_buffer_count(const nb_graph *g) { return g ? g->n_buffer_nodes : 0; }

nb_node nb_buffer_tensor(const nb_graph *g, int i) {
    if (!g || i < 0 || i >= g->n_buffer_nodes) {
        nb_err(NB_ERR_ARG, "nb_buffer_tensor: index %d out of range", i);
        return NB_NONE;
    }
    return g->buffer_nodes[i];
}

nb_real *nb_params(nb_graph *g) { return g ? g->params : NULL; }
nb_real *nb_grads(nb_graph *g) { return g ? g->grads : NULL; }

nb_status nb_param_set_init(nb_graph *g, nb_node p, nb_init init) {
    if (!valid(g, p, "nb_param_set_init")) return NB_ERR_ARG;
    if (g->nodes[p].leaf != NB_LEAF_PARAM)
        return nb_err(NB_ERR_ARG, "nb_param_set_init: node '%s' is not a parameter",
                      g->nodes[p].name);
    g->nodes[p].init = init;
    return NB_OK;
}

nb_status nb_graph_init(nb_graph *g, nb_rng *r) {
    if (!g || !r) return nb_err(NB_ERR_ARG, "nb_graph_init: %s is NULL", g ? "rng" : "graph");
    for (int k = 0; k < g->n_param_nodes; k++) {
        nb_node_t *n = &g->nodes[g->param_nodes[k]];
        nb_init init = n->init;
        /* the default: PyTorch's layer init for weights, zeros for vectors
         * and scalars (which have no fan-in) */
        if (init.kind == NB_INIT_DEFAULT)
            init.kind = n->ndim >= 2 ? NB_INIT_TORCH_LINEAR : NB_INIT_ZEROS;
        nb_status s = nb_init_tensor(n->val, n->ndim, n->dims, init, r);
        if (s != NB_OK) return nb_err_prefix(s, "nb_graph_init: parameter '%s'", n->name);
    }
    /* a fresh model also starts with fresh statistics */
    for (int k = 0; k < g->n_buffer_nodes; k++) {
        nb_node_t *n = &g->nodes[g->buffer_nodes[k]];
        for (size_t j = 0, len = nb__numel(n); j < len; j++) n->val[j] = (nb_real)n->init.a;
    }
    /* one more draw seeds the generator of the random ops */
    nb_rng_seed(&g->rng, nb_rng_u64(r));
    return NB_OK;
}

/* ------------------------------------------------------------ memory plan */

/* Lay out every non-parameter node's value, gradient and scratch in one
 * arena: values, then gradients, then scratch.  Reallocates only when the
 * arena must grow, so a fixed batch size never allocates after the first. */
static nb_status plan(nb_graph *g) {
    size_t off = 0;
    nb__plan_fusion(g); /* before the scratch: a fused op may need more */
    for (int i = 0; i < g->n_nodes; i++) {
        nb_node_t *n = &g->nodes[i];
        if (n->batched) n->dims[0] = g->batch;
        if (n->leaf == NB_LEAF_PARAM || n->leaf == NB_LEAF_CONST || n->leaf == NB_LEAF_BUFFER)
            continue;
        n->val_off = off;
        off += nb__numel(n);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        nb_node_t *n = &g->nodes[i];
        if (n->leaf == NB_LEAF_PARAM || !n->requires_grad) continue;
        n->grad_off = off;
        off += nb__numel(n);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        nb_node_t *n = &g->nodes[i];
        n->scratch_len = (n->op && n->op->scratch) ? n->op->scratch(g, n) : 0;
        n->scratch_off = off;
        off += n->scratch_len;
    }
    if (off > g->arena_cap) { /* a new block, asked for on 2 MiB pages before the copy */
        nb_real *a = malloc(off * sizeof *a);
        if (!a) return nb_err(NB_ERR_NOMEM, "nb_graph_set_batch: out of memory for %zu "
                              "activation values", off);
        nb__prefer_huge_pages(a, off * sizeof *a);
        if (g->arena_cap) memcpy(a, g->arena, g->arena_cap * sizeof *a);
        free(g->arena);
        g->arena = a;
        g->arena_cap = off;
    }
    g->arena_len = off;
    for (int i = 0; i < g->n_nodes; i++) {
        nb_node_t *n = &g->nodes[i];
        if (n->leaf == NB_LEAF_PARAM) continue;
        if (n->leaf != NB_LEAF_CONST && n->leaf != NB_LEAF_BUFFER)
            n->val = g->arena + n->val_off;
        n->grad = n->requires_grad ? g->arena + n->grad_off : NULL;
        n->scratch = n->scratch_len ? g->arena + n->scratch_off : NULL;
    }
    nb__plan_views(g);
    g->planned = 1;
    g->plan_id++;
    /* Values come first in the arena, in node order, sized by the batch: a
     * new plan for the same batch size (a node added, a gradient asked for)
     * keeps every value where it was, and a grown arena keeps the contents.  A new
     * batch size moves them, so inputs must be set again. */
    if (g->layout_batch != g->batch) {
        g->layout_batch = g->batch;
        g->value_layout++;
    }
    g->forwarded = 0;
    return NB_OK;
}

nb_status nb_graph_set_batch(nb_graph *g, int batch) {
    if (!g) return nb_err(NB_ERR_ARG, "nb_graph_set_batch: graph is NULL");
    if (g->status != NB_OK)
        return nb_err(g->status, "nb_graph_set_batch: the graph has a build error");
    if (batch <= 0) return nb_err(NB_ERR_ARG, "nb_graph_set_batch: batch size %d is not "
                                  "positive", batch);
    if (g->planned && g->batch == batch) return NB_OK;
    g->batch = batch;
    return plan(g);
}

int nb_graph_batch(const nb_graph *g) { return g ? g->batch : 0; }

void nb_graph_set_training(nb_graph *g, int training) {
    if (g) g->training = training != 0;
}

nb_status nb_graph_set_sample_offset(nb_graph *g, long first) {
    if (!g) return nb_err(NB_ERR_ARG, "nb_graph_set_sample_offset: graph is NULL");
    if (first < 0)
        return nb_err(NB_ERR_ARG, "nb_graph_set_sample_offset: first sample %ld is negative",
                      first);
    g->sample_offset = first;
    return NB_OK;
}

nb_rng *nb_graph_rng(nb_graph *g) { return g ? &g->rng : NULL; }

void nb_graph_seed(nb_graph *g, uint64_t seed) {
    if (g) nb_rng_seed(&g->rng, seed);
}

void nb_graph_freeze_random(nb_graph *g, int frozen) {
    if (g) g->freeze_random = frozen != 0;
}

nb_status nb_set_input(nb_graph *g, nb_node input, const nb_real *data, int batch) {
    if (!valid(g, input, "nb_set_input")) return NB_ERR_ARG;
    nb_node_t *n = &g->nodes[input];
    if (n->leaf != NB_LEAF_INPUT)
        return nb_err(NB_ERR_ARG, "nb_set_input: node '%s' is not an input", n->name);
    if (!data) return nb_err(NB_ERR_ARG, "nb_set_input: data is NULL");
    nb_status s = nb_graph_set_batch(g, batch);
    if (s != NB_OK) return s;
    memcpy(n->val, data, nb__numel(n) * sizeof *data);
    n->set_layout = g->value_layout;
    return NB_OK;
}

nb_real *nb_value(nb_graph *g, nb_node n) {
    if (!valid(g, n, "nb_value")) return NULL;
    nb_node_t *t = &g->nodes[n];
    if (t->leaf != NB_LEAF_PARAM && t->leaf != NB_LEAF_CONST && t->leaf != NB_LEAF_BUFFER &&
        !g->planned) {
        nb_err(NB_ERR_STATE, "nb_value: no batch size set yet (nb_graph_set_batch)");
        return NULL;
    }
    if (t->leaf == NB_LEAF_INPUT) t->set_layout = g->value_layout; /* the caller may fill it */
    nb__fill_value(g, n);
    return t->val;
}

nb_real *nb_grad(nb_graph *g, nb_node n) {
    if (!valid(g, n, "nb_grad")) return NULL;
    nb_node_t *t = &g->nodes[n];
    if (t->leaf != NB_LEAF_PARAM && !g->planned) return NULL;
    nb__fill_grad(g, n);
    return t->grad;
}

nb_status nb_graph_fill_fused(nb_graph *g) {
    if (!g) return nb_err(NB_ERR_ARG, "nb_graph_fill_fused: graph is NULL");
    if (g->planned) nb__fill_all(g);
    return NB_OK;
}

nb_status nb_requires_grad(nb_graph *g, nb_node n, int on) {
    if (!valid(g, n, "nb_requires_grad")) return NB_ERR_ARG;
    nb_node_t *t = &g->nodes[n];
    if (t->leaf == NB_LEAF_NONE || t->leaf == NB_LEAF_PARAM || t->leaf == NB_LEAF_BUFFER)
        return nb_err(NB_ERR_ARG, "nb_requires_grad: '%s' is not an input or constant "
                      "(parameters always have gradients; ops follow their inputs; "
                      "buffers are state, not differentiable)", t->name);
    if ((t->requires_grad != 0) == (on != 0)) return NB_OK;
    t->requires_grad = on != 0;
    nb__propagate_requires_grad(g, n);
    return NB_OK;
}

void nb__propagate_requires_grad(nb_graph *g, int from) {
    for (int i = from + 1; i < g->n_nodes; i++) {
        nb_node_t *m = &g->nodes[i];
        if (m->leaf != NB_LEAF_NONE) continue;
        m->requires_grad = 0;
        for (int k = 0; k < m->nin; k++)
            if (g->nodes[m->in[k]].requires_grad) m->requires_grad = 1;
    }
    g->planned = 0; /* gradient storage follows requires_grad */
}

/* ------------------------------------------------------------ execution */

static nb_status ensure_planned(nb_graph *g, const char *fn) {
    if (g->status != NB_OK)
        return nb_err(g->status, "%s: the graph has a build error", fn);
    if (g->planned) return NB_OK;
    if (g->batch <= 0) g->batch = 1;
    return plan(g);
}

/* An input among the needed nodes that has no values for the current batch
 * size (never set, or set before the batch size changed): its memory would be
 * stale or uninitialised. */
static nb_status check_inputs_set(const nb_graph *g, nb_node last) {
    for (int i = 0; i <= last; i++) {
        const nb_node_t *n = &g->nodes[i];
        if (n->leaf == NB_LEAF_INPUT && (g->mark[i] & MARK_NEEDED) &&
            n->set_layout != g->value_layout)
            return nb_err(NB_ERR_STATE, "nb_forward: input '%s' has not been set for batch "
                          "size %d (nb_set_input)", n->name, g->batch);
    }
    return NB_OK;
}

/* Mark target and all its ancestors with MARK_NEEDED (other bits kept). */
static void mark_ancestors(nb_graph *g, nb_node target) {
    for (int i = 0; i < g->n_nodes; i++) g->mark[i] &= (unsigned char)~MARK_NEEDED;
    g->mark[target] |= MARK_NEEDED;
    for (int i = target; i >= 0; i--) {
        if (!(g->mark[i] & MARK_NEEDED)) continue;
        const nb_node_t *n = &g->nodes[i];
        for (int k = 0; k < n->nin; k++) g->mark[n->in[k]] |= MARK_NEEDED;
    }
}

nb_status nb_forward(nb_graph *g, nb_node target) {
    if (!g) return nb_err(NB_ERR_ARG, "nb_forward: graph is NULL");
    if (target != NB_NONE && !valid(g, target, "nb_forward")) return NB_ERR_ARG;
    nb_status s = ensure_planned(g, "nb_forward");
    if (s != NB_OK) return s;
    if (g->n_nodes == 0) return NB_OK;
    nb_node last = target == NB_NONE ? g->n_nodes - 1 : target;
    if (target == NB_NONE)
        for (int i = 0; i < g->n_nodes; i++) g->mark[i] = MARK_NEEDED;
    else
        mark_ancestors(g, target);
    s = check_inputs_set(g, last);
    if (s != NB_OK) {
        g->forwarded = 0; /* nothing computed: backward must not run */
        return s;
    }
    g->run_status = NB_OK;
    g->run_error[0] = '\0';
    nb__fusion_begin_forward(g);
    for (int i = 0; i <= last; i++) {
        if (!(g->mark[i] & MARK_NEEDED)) {
            g->mark[i] &= (unsigned char)~MARK_COMPUTED;
            continue;
        }
        nb_node_t *n = &g->nodes[i];
        if (n->op && !nb__fused_away(g, n, 0)) {
            double started = nb__op_clock(g);
            n->op->forward(g, n);
            nb__op_timed(g, i, 0, started);
        }
        g->mark[i] |= MARK_COMPUTED;
    }
    for (int i = last + 1; i < g->n_nodes; i++) g->mark[i] &= (unsigned char)~MARK_COMPUTED;
    g->forwarded = 1;
    if (g->run_status != NB_OK) return nb_err(g->run_status, "%s", g->run_error);
    return NB_OK;
}

nb_status nb__forward_both(nb_graph *g, nb_node a, nb_node b) {
    if (!g) return nb_err(NB_ERR_ARG, "nb_forward: graph is NULL");
    nb_node target = a;
    if (b != NB_NONE && b != a) {
        if (!valid(g, a, "nb_forward") || !valid(g, b, "nb_forward")) return NB_ERR_ARG;
        nb_status s = ensure_planned(g, "nb_forward");
        if (s != NB_OK) return s;
        mark_ancestors(g, a);
        if (!(g->mark[b] & MARK_NEEDED)) target = NB_NONE;
    }
    return nb_forward(g, target);
}

/* Does input k of n appear again in another of n's input slots? */
static int input_repeated(const nb_node_t *n, int k) {
    for (int j = 0; j < n->nin; j++)
        if (j != k && n->in[j] == n->in[k]) return 1;
    return 0;
}

/* Just before n's backward: each input whose gradient is still unset is
 * either handed to n to overwrite (an op with NB_OP_ASSIGNS_GRAD, when the
 * input fills one slot only) or zeroed here, so that n may add into it. */
static void prepare_input_grads(nb_graph *g, nb_node_t *n) {
    unsigned assign = 0;
    for (int k = 0; k < n->nin; k++) {
        int i = n->in[k];
        if (!(g->mark[i] & MARK_GRAD_UNSET)) continue;
        g->mark[i] &= (unsigned char)~MARK_GRAD_UNSET;
        nb_node_t *x = &g->nodes[i];
        if ((n->op->flags & NB_OP_ASSIGNS_GRAD) && !input_repeated(n, k)) assign |= 1u << k;
        else memset(x->grad, 0, nb__numel(x) * sizeof *x->grad);
    }
    n->grad_assign = assign;
}

void nb__grad_add_only(nb_graph *g, nb_node_t *n, int k) {
    if (!nb__grad_assign(n, k)) return;
    nb_node_t *x = nb__in(g, n, k);
    memset(x->grad, 0, nb__numel(x) * sizeof *x->grad);
    n->grad_assign &= ~(1u << k);
}

static nb_status check_backward(nb_graph *g, nb_node loss) {
    if (!valid(g, loss, "nb_backward")) return NB_ERR_ARG;
    nb_node_t *L = &g->nodes[loss];
    if (nb__numel(L) != 1) {
        char s[128];
        return nb_err(NB_ERR_SHAPE, "nb_backward: '%s' has shape %s; backward needs a "
                      "scalar", L->name, nb_shape_str(s, sizeof s, L->ndim, L->dims));
    }
    if (!g->forwarded || !(g->mark[loss] & MARK_COMPUTED))
        return nb_err(NB_ERR_STATE, "nb_backward: '%s' has not been computed; call "
                      "nb_forward first", L->name);
    if (g->run_status != NB_OK)
        return nb_err(g->run_status, "nb_backward: the last nb_forward failed: %s",
                      g->run_error);
    if (!L->requires_grad)
        return nb_err(NB_ERR_STATE, "nb_backward: '%s' does not depend on any parameter "
                      "or input that requires a gradient", L->name);
    return NB_OK;
}

/* Zero the gradient of node i if it is still unset. */
static void settle(nb_graph *g, int i) {
    if (!(g->mark[i] & MARK_GRAD_UNSET)) return;
    g->mark[i] &= (unsigned char)~MARK_GRAD_UNSET;
    memset(g->nodes[i].grad, 0, nb__numel(&g->nodes[i]) * sizeof(nb_real));
}

/* Backward proper.  Activation gradients are cleared lazily: one on the
 * loss's path is written first by the backward of its last consumer, which
 * overwrites it or adds into zeros (prepare_input_grads); any other is zeroed
 * now.  Parameter gradients accumulate (as in PyTorch), unless zero_params:
 * then they are cleared lazily too. */
static void run_backward(nb_graph *g, nb_node loss, int zero_params) {
    nb__unfold(g);
    mark_ancestors(g, loss);
    for (int i = 0; i < g->n_nodes; i++) /* the gradients this pass writes */
        if (g->mark[i] & MARK_NEEDED) g->mark[i] &= (unsigned char)~MARK_GRAD_STALE;
    for (int i = 0; i <= loss; i++) {
        nb_node_t *n = &g->nodes[i];
        if (n->leaf == NB_LEAF_PARAM || !n->grad) continue;
        if (g->mark[i] & MARK_NEEDED) g->mark[i] |= MARK_GRAD_UNSET;
        else memset(n->grad, 0, nb__numel(n) * sizeof *n->grad);
    }
    for (int k = 0; zero_params && k < g->n_param_nodes; k++)
        if (g->nodes[g->param_nodes[k]].grad) g->mark[g->param_nodes[k]] |= MARK_GRAD_UNSET;
    g->mark[loss] &= (unsigned char)~MARK_GRAD_UNSET;
    g->nodes[loss].grad[0] = 1;
    for (int i = loss; i >= 0; i--) {
        nb_node_t *n = &g->nodes[i];
        if (!n->op || !n->requires_grad || !(g->mark[i] & MARK_NEEDED)) continue;
        if (nb__fused_away(g, n, 1)) { /* the producer's backward does its work */
            int in = n->in[0];
            g->mark[in] = (unsigned char)((g->mark[in] & ~MARK_GRAD_UNSET) | MARK_GRAD_STALE);
            continue;
        }
        prepare_input_grads(g, n);
        double started = nb__op_clock(g);
        n->op->backward(g, n);
        nb__op_timed(g, i, 1, started);
        n->grad_assign = 0;
    }
    /* a parameter off the loss's path (or frozen: no gradient, its zeros
     * stay) has no writer; every needed activation has one, this is a guard */
    for (int k = 0; k < g->n_param_nodes; k++) settle(g, g->param_nodes[k]);
    for (int i = 0; i < loss; i++) settle(g, i);
}

nb_status nb_backward(nb_graph *g, nb_node loss) {
    nb_status s = check_backward(g, loss);
    if (s == NB_OK) run_backward(g, loss, 0);
    return s;
}

/* The parameter gradients that no op writes are zeroed at the end of
 * run_backward. */
nb_status nb_backward_zeroed(nb_graph *g, nb_node loss) {
    nb_status s = check_backward(g, loss);
    if (s == NB_OK) run_backward(g, loss, 1);
    else nb_zero_grad(g);
    return s;
}

void nb_zero_grad(nb_graph *g) {
    if (g && g->grads) memset(g->grads, 0, g->n_params * sizeof *g->grads);
}
