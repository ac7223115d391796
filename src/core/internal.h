/* Internal structures shared by the core, the ops and the trainer.
 * Nothing here is part of the public API. */
#ifndef NB_INTERNAL_H
#define NB_INTERNAL_H

#include "nabla.h"
#include "op_settings.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>

/* Literal of the scalar type, so the double test build keeps full precision. */
#define R(x) ((nb_real)(x))

/* Math functions of the scalar type (expf in the float build, exp in the
 * double one), so no computation silently widens or narrows. */
#ifdef NB_REAL_DOUBLE
#define nb_exp exp
#define nb_log log
#define nb_log1p log1p
#define nb_expm1 expm1
#define nb_tanh_r tanh
#define nb_erf erf
#define nb_sqrt sqrt
#define nb_fabs fabs
#define nb_pow pow
#define nb_fmax fmax
#define nb_fmin fmin
#else
#define nb_exp expf
#define nb_log logf
#define nb_log1p log1pf
#define nb_expm1 expm1f
#define nb_tanh_r tanhf
#define nb_erf erff
#define nb_sqrt sqrtf
#define nb_fabs fabsf
#define nb_pow powf
#define nb_fmax fmaxf
#define nb_fmin fminf
#endif

/* Hot elementwise loops (activations, the optimisers' updates): compiled
 * for AVX-512, AVX2 and the baseline, the best one picked when the library
 * loads, so a portable build still uses the machine's full vector width.
 * The loops must be written so they vectorise (restrict, no branches). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NB_VECTOR_LOOP __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NB_VECTOR_LOOP
#endif

/* A loop body split out of an NB_VECTOR_LOOP function (an instance per
 * constant flag): inlined into each of its versions, so each vectorises. */
#if defined(__GNUC__)
#define NB_LOOP_BODY static inline __attribute__((always_inline))
#else
#define NB_LOOP_BODY static inline
#endif

/* ---------------------------------------------------------------- errors */

/* Set the thread's error message; returns s so callers can `return nb_err(...)`.
 * An argument may be nb_last_error() itself. */
nb_status nb_err(nb_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Put "<formatted prefix>: " in front of the thread's error message, so a
 * caller adds where it happened and keeps the cause; returns s. */
nb_status nb_err_prefix(nb_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Format a shape as "[2, 3]" into buf (at least 64 bytes). */
const char *nb_shape_str(char *buf, size_t size, int ndim, const int *dims);

/* ---------------------------------------------------------------- nodes */

typedef struct nb_node_t nb_node_t;
typedef struct nb_graph nb_graph;

/* Traits of an op that code outside it relies on (the diagnostics), so that
 * nothing recognises an op by its name. */
enum nb_op_flag {
    NB_OP_SATURATING = 1u << 0,  /* bounded output (nb_op.range) whose gradient
                                    vanishes near the bounds: sigmoid, tanh   */
    NB_OP_CAN_DIE = 1u << 1,     /* a unit can get stuck where its output and
                                    gradient are 0 for every input: relu      */
    NB_OP_VIEW = 1u << 2,        /* the output is the input's values in a new
                                    shape: reshape, flatten                   */
    NB_OP_ASSIGNS_GRAD = 1u << 3, /* backward honours nb__grad_assign: it may
                                    be told to overwrite an input's gradient  */
    NB_OP_RELU = 1u << 4,        /* relu: a producer with NB_OP_FUSES_RELU may
                                    compute it (fusion.c)                     */
    NB_OP_FUSES_RELU = 1u << 5,  /* conv: applies the relu that is its only
                                    consumer in its own passes (nb__epilogue) */
    NB_OP_MAX_POOL = 1u << 6,    /* max pooling: fused after such a relu when
                                    it is the relu's only consumer            */
    NB_OP_FUSES_RELU_VALUE = 1u << 7, /* linear, batch norm: apply such a relu
                                    in their forward only; its backward runs  */
    NB_OP_EVAL_AFFINE = 1u << 8, /* batch norm: an affine map per channel in
                                    eval mode, which a convolution whose only
                                    consumer it is applies (a fold) */
    NB_OP_FUSES_RELU_GRAD = 1u << 9, /* batch norm: with NB_OP_FUSES_RELU_VALUE,
                                    its backward also reads the relu's gradient
                                    and output in place of its own gradient,
                                    and the relu's backward does not run */
    NB_OP_FUSES_POOL_VALUE = 1u << 10 /* batch norm: computes the max pool that
                                    is its fused relu's only consumer in its
                                    forward; the pool's backward runs */
};

/* One op = one dispatch-table entry.  forward computes n->val from the inputs;
 * backward adds n->grad's contribution into the inputs' grads (those that are
 * non-NULL), or, in an op with NB_OP_ASSIGNS_GRAD, overwrites the gradient of
 * each input k for which nb__grad_assign(n, k) holds.  scratch returns how
 * many reals of per-batch scratch the node needs (NULL: none); the core
 * allocates it in the arena. */
typedef struct nb_op {
    const char *name;
    void (*forward)(nb_graph *g, nb_node_t *n);
    void (*backward)(nb_graph *g, nb_node_t *n);
    size_t (*scratch)(const nb_graph *g, const nb_node_t *n);
    /* forward floating-point operations at the current batch (NULL: one per
     * output element) */
    double (*flops)(const nb_graph *g, const nb_node_t *n);
    /* losses: how many terms the last forward's mean averaged, the weight of
     * its value when the means of batches are combined (NULL: one per
     * sample); and whether a target value is left out of it (NULL: none) */
    size_t (*terms)(const nb_graph *g, const nb_node_t *n);
    int (*skips_target)(const nb_node_t *n, nb_real target);
    /* an op with NB_OP_FUSES_RELU_VALUE: can it apply the relu in this pass
     * (its kernel, the precision)?  NULL: always */
    int (*fuses_relu)(const nb_graph *g, const nb_node_t *n);
    unsigned flags;  /* enum nb_op_flag */
    double range[2]; /* NB_OP_SATURATING: the output's lower and upper bound */
} nb_op;

typedef enum nb_leaf_kind {
    NB_LEAF_NONE = 0, /* an op node */
    NB_LEAF_INPUT,
    NB_LEAF_PARAM,
    NB_LEAF_CONST,
    /* state that ops update but training does not (batch-norm running
     * statistics): persistent and named like a parameter, saved with the
     * weights, but not in nb_params/nb_grads and never differentiated */
    NB_LEAF_BUFFER
} nb_leaf_kind;

struct nb_node_t {
    const nb_op *op;          /* NULL for leaves                               */
    nb_leaf_kind leaf;
    char name[64];
    int nin;
    int in[NB_MAX_INPUTS];
    int ndim;
    int dims[NB_MAX_DIMS];    /* dims[0] is the batch size when batched        */
    int batched;
    int requires_grad;        /* params, marked leaves, and ops depending on them */
    nb_op_settings settings;  /* typed per op family (op_settings.h)         */
    /* storage: offsets into the param buffers (params) or the arena (rest) */
    size_t val_off, grad_off, scratch_off;
    size_t scratch_len;
    nb_real *val, *grad, *scratch;
    /* params; buffers: CONSTANT with their initial value */
    nb_init init;
    /* constants and buffers: owned copy of the values */
    nb_real *const_data;
    /* buffers: holds a whole-number count (saved as I64, like PyTorch's
     * num_batches_tracked) */
    int is_counter;
    /* inputs: the value layout (nb_graph.value_layout) for which values were
     * last given (nb_set_input, or a pointer handed out by nb_value); 0: never */
    unsigned set_layout;
    /* set by nb_backward just before this node's backward (NB_OP_ASSIGNS_GRAD
     * ops only): bit k means input k's gradient holds no value yet in this
     * pass, so backward must write all of it instead of adding */
    unsigned grad_assign;
    /* fusion (fusion.c), set when the arena is planned; indices plus 1, 0 for
     * none.  epilogue: the node's only consumer, which the op computes (an op
     * with NB_OP_FUSES_RELU(_VALUE): the relu; a fused relu: the max pool
     * after it);
     * fused_into: for the relu and the pool, the op that computes them */
    int epilogue, fused_into;
    /* the eval-mode fold (fusion.c), indices plus 1: on a convolution, the
     * batch norm that is its only consumer, that batch norm's relu and the
     * max pool after the relu (0: none); on those three, folded_into: the
     * convolution */
    int fold_bn, fold_relu, fold_pool, folded_into;
    int consumers; /* input slots of other nodes that read this one */
};

struct nb_graph {
    nb_node_t *nodes;
    int n_nodes, cap_nodes;
    nb_status status;          /* first build error */
    int training;
    int batch;                 /* current batch size (0: not planned)   */
    int planned;               /* arena layout valid for batch           */
    /* parameters */
    nb_real *params, *grads;
    size_t n_params, cap_params;
    int *param_nodes;
    int n_param_nodes, cap_param_nodes;
    /* buffers, in creation order */
    int *buffer_nodes;
    int n_buffer_nodes, cap_buffer_nodes;
    /* randomness of ops (dropout): seeded by nb_graph_init or nb_graph_seed */
    nb_rng rng;
    int freeze_random;         /* random ops reuse their last draw        */
    long sample_offset;        /* this process's first sample of the batch */
    nb_precision precision;    /* of the matrix products (nb_gemm_at)     */
    unsigned plan_id;          /* changes whenever the arena is laid out  */
    unsigned value_layout;     /* changes when the batch size moves values */
    int layout_batch;          /* the batch size value_layout is for      */
    /* activations, their gradients and op scratch */
    nb_real *arena;
    size_t arena_len, arena_cap;
    unsigned char *mark;       /* per-node work flags for forward/backward */
    int forwarded;             /* a forward has run since the last plan   */
    nb_status run_status;      /* first bad-data error of the last forward */
    char run_error[256];
    int auto_names;            /* counter for generated layer names      */
    int unfused;               /* filling a fused op's own value: no epilogue */
    /* the trainable parameters' [begin, end) ranges in params (freeze.c) */
    size_t *train_ranges;
    int n_train_ranges, cap_train_ranges;
    int n_frozen;              /* frozen parameter tensors               */
    /* the node names indexed (names.c) */
    int *name_slot, *name_count;
    int name_cap, name_used, name_broken;
    /* batch norm's statistics over several processes (nb_dist_sync_batch_norm):
     * sums v[0..n) over them, the same bits on each; NULL: this batch only */
    nb_status (*sync_sum)(void *ctx, double *v, size_t n);
    void *sync_ctx;
    double *sync_buf;          /* the sums' buffer, grown as needed        */
    size_t sync_cap;
    double *op_seconds;        /* nb_graph_time_ops: per node, forward and
                                * backward seconds; NULL when off          */
    int op_seconds_nodes;      /* the nodes it covers                      */
};

/* The graph's buffer for n synchronised sums, or NULL (out of memory). */
double *nb__sync_buffer(nb_graph *g, size_t n);

/* Name node h (every node name is written through here, so that the index
 * stays exact); the first node with a name, or NB_NONE.  names.c */
void nb__set_name(nb_graph *g, int h, const char *name);
nb_node nb__find_name(const nb_graph *g, const char *name);
void nb__free_names(nb_graph *g);

/* Per-node work flags (nb_graph.mark) of forward and backward.
 * MARK_GRAD_UNSET: during nb_backward, the node's gradient has not been
 * written yet in this pass (its memory holds stale values).  The fusion
 * flags (fusion.c) hold from one forward to the next: MARK_FUSED, the op
 * applied its relu epilogue in the last forward (and backward reads the
 * relu's gradient); MARK_VAL_STALE / MARK_GRAD_STALE, the op's own value /
 * gradient was not written, nb_value / nb_grad fill it when asked. */
enum {
    MARK_NEEDED = 1,
    MARK_COMPUTED = 2,
    MARK_GRAD_UNSET = 4,
    MARK_FUSED = 8,
    MARK_VAL_STALE = 16,
    MARK_GRAD_STALE = 32,
    MARK_FOLDED = 64 /* a convolution applied its fold in the last forward */
};

/* ---- fusion (fusion.c): a convolution whose only consumer is a relu
 * writes the relu's value itself (relu applied to each sample while it is in
 * cache) and its backward reads the relu's gradient and output, so the two
 * passes of the relu over memory disappear.  A max pool that is the relu's
 * only consumer is computed in the same way, from the sample in cache: then
 * the relu's value and gradient are not written either.  A dense layer
 * (NB_OP_FUSES_RELU_VALUE) applies its relu in the forward product's store;
 * the relu's backward still runs.  The results are the bits of the unfused
 * ops; what they no longer write is filled in only when someone asks
 * (nb_value, nb_grad, the diagnostics). */

/* Find the fusable pairs (plan time). */
void nb__plan_fusion(nb_graph *g);
/* Start of a forward pass over the MARK_NEEDED nodes: which pairs fuse. */
void nb__fusion_begin_forward(nb_graph *g);
/* n's forward or backward: the relu it applies in this pass, or NULL; and
 * the max pool after that relu which it computes too, or NULL. */
nb_node_t *nb__epilogue(nb_graph *g, const nb_node_t *n);
nb_node_t *nb__epilogue_pool(nb_graph *g, const nb_node_t *relu);
/* A relu (or pool) whose producer applies it in this pass: forward skips it,
 * and backward too when the producer also fuses the backward
 * (NB_OP_FUSES_RELU, not NB_OP_FUSES_RELU_VALUE). */
int nb__fused_away(const nb_graph *g, const nb_node_t *n, int backward);
/* The eval-mode fold: a convolution whose only consumer is a batch norm
 * (NB_OP_EVAL_AFFINE), in eval mode an affine map per channel, applies it,
 * the relu after it and the max pool after the relu to each sample in cache,
 * and writes the last one's value.  nb__fold: the batch norm convolution n
 * applies in this pass, or NULL, with the relu and pool it applies too (or
 * NULL).  Backward runs the folded ops as they are: nb__unfold fills in
 * their values first. */
nb_node_t *nb__fold(nb_graph *g, const nb_node_t *n, nb_node_t **relu, nb_node_t **pool);
void nb__unfold(nb_graph *g);
/* Write node i's value / gradient if the last pass left it stale. */
void nb__fill_value(nb_graph *g, int i);
void nb__fill_grad(nb_graph *g, int i);
/* Every stale value and gradient (code that reads all nodes' memory). */
void nb__fill_all(nb_graph *g);
/* After the arena's layout: a view (NB_OP_VIEW: reshape, flatten) that is
 * the only consumer of an op (or of an input without a gradient: the usual
 * flatten of an image batch) shares the input's value and gradient memory
 * (its own stays reserved, so the layout does not depend on it); the op then
 * has nothing to copy. */
void nb__plan_views(nb_graph *g);

/* Batch norm folded into a convolution (norm.c): the running statistics
 * into scratch (once per forward); then planes [p0, p0 + count) of its
 * input at y, ld apart, normalised in place (and the relu applied), with the
 * op's own loop (the same bits). */
void nb__batch_norm_fold_begin(nb_graph *g, nb_node_t *n);
void nb__batch_norm_planes(nb_graph *g, nb_node_t *n, size_t p0, size_t count, nb_real *y,
                           size_t ld, int relu);

/* Max pooling fused after a relu (pool.c): planes [p0, p0 + count) of pool
 * n from their inputs at x, ld apart (writes the pool's value and argmax);
 * and backward, the gradient of the relu's input over the same planes into
 * dx, ld apart: the pool's gradient routed to each maximum, times relu's
 * slope there, zero elsewhere. */
void nb__maxpool_planes(const nb_graph *g, nb_node_t *n, size_t p0, size_t count,
                        const nb_real *x, size_t ld);
/* The same for planes p0, p0 + step, ... (count of them): batch norm's
 * channel, sample by sample. */
void nb__maxpool_planes_every(const nb_graph *g, nb_node_t *n, size_t p0, size_t count,
                              size_t step, const nb_real *x, size_t ld);
/* The same values, the argmax left unwritten where that is faster (2 x 2
 * windows with AVX-512): for a pass no backward follows unless it runs the
 * pool again first (the eval-mode fold, nb__unfold). */
void nb__maxpool_planes_values(const nb_graph *g, nb_node_t *n, size_t p0, size_t count,
                               const nb_real *x, size_t ld);
void nb__maxpool_relu_backward_planes(const nb_graph *g, const nb_node_t *n, size_t p0,
                                      size_t count, nb_real *dx, size_t ld);

/* relu, for the op (activation.c) and the ops that fuse it: its value, and
 * its slope from its output y (0 where y <= 0, else 1; a NaN passes). */
static inline nb_real nb__relu(nb_real x) { return x <= 0 ? R(0) : x; }
static inline nb_real nb__relu_slope(nb_real y) { return y <= 0 ? R(0) : R(1); }
/* nb__relu over n values in place. */
static inline void nb__relu_run(nb_real *y, size_t n) {
    for (size_t k = 0; k < n; k++) y[k] = nb__relu(y[k]);
}

/* Ask for 2 MiB pages for the whole 2 MiB pages inside [p, p + bytes), before
 * they are first touched (pages.c): for the buffers a training step streams
 * through. */
void nb__prefer_huge_pages(void *p, size_t bytes);
/* Hand the whole pages inside [p, p + bytes) back to the system now (Linux;
 * elsewhere nothing): their contents become zeros.  For a buffer about to be
 * freed whose bytes were copied away piece by piece. */
void nb__release_pages(void *p, size_t bytes);

/* Node pointer for a handle (handles are validated by the builders). */
static inline nb_node_t *nb__node(nb_graph *g, int h) { return &g->nodes[h]; }
static inline nb_node_t *nb__in(nb_graph *g, const nb_node_t *n, int k) {
    return &g->nodes[n->in[k]];
}

/* In an op's backward: overwrite (not add into) input k's gradient, every
 * element of it.  Only ever true in ops with NB_OP_ASSIGNS_GRAD. */
static inline int nb__grad_assign(const nb_node_t *n, int k) {
    return (int)((n->grad_assign >> k) & 1u);
}

/* In an op's backward: an input the op adds into even when it may overwrite
 * (a weight, a bias, a broadcast operand: small, or summed in pieces) is
 * zeroed here first when it is to be overwritten.  graph.c */
void nb__grad_add_only(nb_graph *g, nb_node_t *n, int k);

static inline size_t nb__numel(const nb_node_t *n) {
    size_t s = 1;
    for (int d = 0; d < n->ndim; d++) s *= (size_t)n->dims[d];
    return s;
}

/* Product of the dims from index `from` on. */
static inline size_t nb__numel_from(const nb_node_t *n, int from) {
    size_t s = 1;
    for (int d = from; d < n->ndim; d++) s *= (size_t)n->dims[d];
    return s;
}

/* Validate handle h as an input of an op called `op`.  Returns 0 if the
 * build must stop (error already set or set here). */
int nb__check_input(nb_graph *g, const char *op, nb_node h);

/* Start building: checks g and the inputs.  Returns 0 if the build must stop. */
int nb__begin(nb_graph *g, const char *op, int nin, const nb_node *in);

/* Append an op node with the given inputs and output shape.  The output is
 * batched if any input is; requires_grad if any input requires it.  Returns
 * the handle or NB_NONE (error set, graph status updated). */
nb_node nb__add_node(nb_graph *g, const nb_op *op, int nin, const nb_node *in,
                     int ndim, const int *dims, int batched);

/* Record a build error in the graph and return NB_NONE. */
nb_node nb__fail(nb_graph *g, nb_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Per-op timing (op_times.c): the time now when timing is on (else 0),
 * and adding the time since `started` to a node's forward or backward. */
double nb__op_clock(const nb_graph *g);
void nb__op_timed(nb_graph *g, int node, int backward, double started);

/* Record bad data an op meets while running (e.g. a class label out of
 * range): forward has no return value, so the op writes NaN into its output
 * and reports here; the first report of a forward wins, nb_forward returns
 * it and nb_backward refuses to run on that forward. */
void nb__run_fail(nb_graph *g, nb_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Forward so that both a and b (NB_NONE: only a) are computed in ONE pass:
 * a alone when b is among its ancestors, else the whole graph.  One pass
 * matters for random ops (dropout): both must see the same draw. */
nb_status nb__forward_both(nb_graph *g, nb_node a, nb_node b);

/* A buffer leaf called name (required), filled with fill now and again by
 * nb_graph_init.  is_counter: a whole-number count saved as I64. */
nb_node nb__buffer(nb_graph *g, const char *name, int ndim, const int *dims, nb_real fill,
                   int is_counter);

/* Recompute every op node's requires_grad after node `from` changed it
 * (creation order is topological). */
void nb__propagate_requires_grad(nb_graph *g, int from);

/* Append values [begin, end) of params to the trainable ranges (freeze.c). */
nb_status nb__add_train_range(nb_graph *g, size_t begin, size_t end);

/* Unique generated name "<prefix><k>" into buf. */
void nb__auto_name(nb_graph *g, const char *prefix, char *buf, size_t size);

#endif
