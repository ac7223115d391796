/* Losses, each reduced to a scalar with PyTorch's 'mean' reduction:
 * mean squared error, cross-entropy from logits (class-index or probability
 * targets, label smoothing) and binary cross-entropy with logits.
 *
 * Sums run in double: a loss adds up many small terms and its value is
 * compared across batch sizes. */
#include "../core/internal.h"
#include "../kernels/parallel.h"
#include "../kernels/vmath.h"

#include <string.h>

/* Do a and b have identical shapes (batch dimension included)? */
static int same_shape(const nb_node_t *a, const nb_node_t *b) {
    return a->ndim == b->ndim && a->batched == b->batched &&
           memcmp(a->dims, b->dims, (size_t)a->ndim * sizeof(int)) == 0;
}

/* Fail with "<op>: <what_a> [..] but <what_b> [..]" naming both shapes. */
static nb_node shape_mismatch(nb_graph *g, const char *op, const char *what_a,
                              const nb_node_t *a, const char *what_b, const nb_node_t *b,
                              const char *expect) {
    char sa[96], sb[96];
    return nb__fail(g, NB_ERR_SHAPE, "%s: %s %s%s but %s %s%s; %s", op, what_a,
                    nb_shape_str(sa, sizeof sa, a->ndim, a->dims),
                    a->batched ? " (batched)" : "", what_b,
                    nb_shape_str(sb, sizeof sb, b->ndim, b->dims),
                    b->batched ? " (batched)" : "", expect);
}

/* ---- mse: mean over all elements of (pred - target)^2 ---- */

static void mse_forward(nb_graph *g, nb_node_t *n) {
    const nb_node_t *p = nb__in(g, n, 0), *t = nb__in(g, n, 1);
    size_t total = nb__numel(p);
    double acc = 0;
    for (size_t k = 0; k < total; k++) {
        double d = (double)p->val[k] - (double)t->val[k];
        acc += d * d;
    }
    n->val[0] = (nb_real)(acc / (double)total);
}

static void mse_backward(nb_graph *g, nb_node_t *n) {
    nb_node_t *p = nb__in(g, n, 0), *t = nb__in(g, n, 1);
    size_t total = nb__numel(p);
    nb_real c = R(2) * n->grad[0] / (nb_real)total;
    for (size_t k = 0; k < total; k++) {
        nb_real d = c * (p->val[k] - t->val[k]);
        if (p->grad) p->grad[k] += d;
        if (t->grad) t->grad[k] -= d;
    }
}

static const nb_op op_mse = {
    .name = "mse_loss",
    .forward = mse_forward,
    .backward = mse_backward,
};

nb_node nb_mse_loss(nb_graph *g, nb_node pred, nb_node target) {
    nb_node in[2] = {pred, target};
    if (!nb__begin(g, "mse_loss", 2, in)) return NB_NONE;
    const nb_node_t *P = nb__node(g, pred), *T = nb__node(g, target);
    if (!same_shape(P, T))
        return shape_mismatch(g, "mse_loss", "prediction", P, "target", T,
                              "they must have the same shape");
    return nb__add_node(g, &op_mse, 2, in, 0, NULL, 0);
}

/* ---- cross-entropy from logits [B, C] or [B, T, C] ----
 *
 * With q the (smoothed) target distribution of a row and p = softmax(x):
 *   loss_row = -sum_c q_c log p_c,  q = (1-eps) t + eps/C,
 * where t is one-hot of the label (index targets) or the given row
 * (probability targets) -- PyTorch 1.13's definition for both kinds.  The
 * rows are the B samples, or the B*T positions of [B, T, C] logits.  Rows
 * whose index target is ignore_index are left out; the loss is the mean
 * over the n rows that count (0 when none does).  Gradients:
 *   d/dx_j = (p_j sum_c q_c - q_j) / n    (sum_c q_c = 1 for labels)
 *   d/dt_c = -(1-eps) log p_c / n         (probability targets; the loss is
                                         piecewise constant in class indices)
 * Forward keeps log p in scratch for backward.  Settings: eps (label
 * smoothing) and the kind of targets (nb_cross_entropy_settings).
 *
 * Confident rows (logits [30, 0, 0]) have a loss near 2 exp(-30) and p near
 * 1: log p is computed as (x - max) - log1p(the other classes' share), and
 * p - q near p = 1 from expm1, so neither rounds to the precision of 1 or of
 * the largest logit. */

/* Is v a valid class index in [0, C)?  (NaN fails every comparison.) */
static int class_index(nb_real v, int C, int *out) {
    if (!(v >= 0 && v < (nb_real)C) || (double)v != floor((double)v)) return 0;
    *out = (int)v;
    return 1;
}

/* The index of the first maximum of x[0..C). */
static int first_max(const nb_real *x, int C) {
    int top = 0;
    for (int c = 1; c < C; c++)
        if (x[c] > x[top]) top = c;
    return top;
}

/* Rows are done in blocks of at most CE_BLOCK values: the exponentials of a
 * block are one flat loop, which vectorises whatever C is (a row of 10 or 27
 * classes would leave most of its own loop to the scalar remainder). */
enum { CE_BLOCK = 4096 };

/* log p of rows [0, n) of C logits x into lp: (x_c - m) - log1p(s), s the
 * sum of exp(x_c - m) over every class but the row's first maximum m (which
 * contributes exactly 1).  n C <= CE_BLOCK, or n = 1.  A NaN logit makes
 * its whole row NaN. */
NB_LOOP_BODY void block_log_softmax(const nb_real *x, size_t n, int C, nb_real *lp) {
    int top[CE_BLOCK];
    for (size_t r = 0; r < n; r++) {
        const nb_real *xr = x + r * C;
        top[r] = first_max(xr, C);
        for (int c = 0; c < C; c++) lp[r * C + c] = xr[c] - xr[top[r]];
    }
    for (size_t k = 0; k < n * (size_t)C; k++) lp[k] = nb_vexp(lp[k]);
    for (size_t r = 0; r < n; r++) {
        const nb_real *xr = x + r * C, m = xr[top[r]];
        nb_real *lr = lp + r * C;
        lr[top[r]] = 0;
        const nb_real log_sum = nb_log1p(nb_vsum(lr, C));
        for (int c = 0; c < C; c++) lr[c] = (xr[c] - m) - log_sum;
    }
}

/* Rows of C values in a block: CE_BLOCK / C, at least 1. */
static size_t block_rows(int C) { return C < CE_BLOCK ? (size_t)(CE_BLOCK / C) : 1; }

/* d loss_row / d x_c up to the factor 1/B: p qsum - q with p = exp(lp).  For
 * p > 1/2 (the one class that can be), p - 1 comes from expm1 and the rest
 * is qsum - q, so that p near 1 and q near 1 do not cancel. */
static nb_real prob_minus_target(nb_real lp, nb_real qsum, nb_real q) {
    if (lp > -R(0.6931471805599453)) return nb_expm1(lp) * qsum + (qsum - q);
    return nb_exp(lp) * qsum - q;
}

/* The shape of a cross-entropy node: rows of C logits, per sample. */
static void ce_rows(const nb_node_t *x, size_t *rows, int *C, size_t *per_sample) {
    *C = x->dims[x->ndim - 1];
    *rows = nb__numel(x) / (size_t)*C;
    *per_sample = *rows / (size_t)x->dims[0];
}

static int ce_ignored(const nb_cross_entropy_settings *cs, nb_real v) {
    return cs->index_targets && (double)v == cs->ignore_index;
}

/* The label of row r, or -1 (reported) if it is not a class index. */
static int ce_label(nb_graph *g, const nb_node_t *t, size_t r, int C, size_t per_sample) {
    int y;
    if (class_index(t->val[r], C, &y)) return y;
    if (t->ndim == 1)
        nb__run_fail(g, NB_ERR_ARG, "cross_entropy: target[%zu] = %g is not a class index in "
                     "[0, %d)", r, (double)t->val[r], C);
    else
        nb__run_fail(g, NB_ERR_ARG, "cross_entropy: target of sample %zu of the batch, "
                     "position %zu = %g is not a class index in [0, %d) nor the ignore_index",
                     r / per_sample, r % per_sample, (double)t->val[r], C);
    return -1;
}

/* Rows run in parallel chunks of a size that depends only on the number of
 * rows, and the chunks' sums of the loss are added in chunk order: the same
 * loss on any number of threads.  Each row's gradient depends on its row
 * only.  A row of 27 classes costs some 90 ns (its exponentials, vectorised
 * across rows, and a log1p). */
enum { CE_CHUNK_ROWS = 32, CE_CHUNKS_MAX = 64 };

typedef struct ce_job {
    nb_node_t *n;
    const nb_node_t *x, *t;
    size_t rows, per_sample, chunk;
    int C;
    double part_sum[CE_CHUNKS_MAX];
} ce_job;

static ce_job ce_job_of(nb_graph *g, nb_node_t *n) {
    ce_job j = {.n = n, .x = nb__in(g, n, 0), .t = nb__in(g, n, 1)};
    ce_rows(j.x, &j.rows, &j.C, &j.per_sample);
    j.chunk = (j.rows + CE_CHUNKS_MAX - 1) / CE_CHUNKS_MAX;
    if (j.chunk < CE_CHUNK_ROWS) j.chunk = CE_CHUNK_ROWS;
    return j;
}

static int ce_chunks(const ce_job *j) { return (int)((j->rows + j->chunk - 1) / j->chunk); }

/* Rows [*r0, *r1) of chunk `part`. */
static void ce_chunk_rows(const ce_job *j, int part, size_t *r0, size_t *r1) {
    *r0 = (size_t)part * j->chunk;
    *r1 = *r0 + j->chunk < j->rows ? *r0 + j->chunk : j->rows;
}

/* Chunks run on as many threads as there are, when there is more than one. */
static void ce_run(ce_job *j, void (*chunk)(void *, int)) {
    int parts = ce_chunks(j);
    if (parts > 1 && nb__free_threads() > 1) nb__parallel(parts, chunk, j);
    else
        for (int p = 0; p < parts; p++) chunk(j, p);
}

/* The loss terms of rows [r0, r1), whose log p are in the scratch. */
NB_LOOP_BODY double ce_terms_of(const ce_job *j, size_t r0, size_t r1) {
    const nb_cross_entropy_settings *cs = &j->n->settings.cross_entropy;
    const int C = j->C, labels = cs->index_targets;
    const double eps = (double)cs->label_smoothing;
    double acc = 0;
    for (size_t r = r0; r < r1; r++) {
        if (labels && ce_ignored(cs, j->t->val[r])) continue;
        const nb_real *lr = j->n->scratch + r * C;
        double sum_logp = 0, nll;
        for (int c = 0; eps > 0 && c < C; c++) sum_logp += (double)lr[c];
        if (labels) {
            int y;
            if (!class_index(j->t->val[r], C, &y)) return NAN; /* reported before the chunks */
            nll = -(double)lr[y];
        } else {
            const nb_real *tr = j->t->val + r * C;
            nll = 0;
            for (int c = 0; c < C; c++) nll -= (double)tr[c] * (double)lr[c];
        }
        acc += (1 - eps) * nll - eps / C * sum_logp;
    }
    return acc;
}

NB_VECTOR_LOOP static void ce_forward_chunk(void *ctx, int part) {
    ce_job *j = ctx;
    const int C = j->C;
    size_t r0, r1, step = block_rows(C);
    ce_chunk_rows(j, part, &r0, &r1);
    double acc = 0;
    for (size_t r = r0; r < r1; r += step) {
        size_t n = r1 - r < step ? r1 - r : step;
        block_log_softmax(j->x->val + r * C, n, C, j->n->scratch + r * C);
        acc += ce_terms_of(j, r, r + n);
    }
    j->part_sum[part] = acc;
}

static void ce_forward(nb_graph *g, nb_node_t *n) {
    nb_cross_entropy_settings *cs = &n->settings.cross_entropy;
    ce_job j = ce_job_of(g, n);
    size_t counted = 0;
    int reported = 0; /* the first label that is not a class index */
    for (size_t r = 0; r < j.rows; r++) {
        if (cs->index_targets && ce_ignored(cs, j.t->val[r])) continue;
        counted++;
        int y;
        if (cs->index_targets && !reported && !class_index(j.t->val[r], j.C, &y))
            reported = ce_label(g, j.t, r, j.C, j.per_sample) < 0;
    }
    ce_run(&j, ce_forward_chunk);
    double acc = 0;
    for (int p = 0; p < ce_chunks(&j); p++) acc += j.part_sum[p];
    cs->counted = counted;
    n->val[0] = counted ? (nb_real)(acc / (double)counted) : R(0);
}

/* d loss / d logits of rows [0, n) (n C <= CE_BLOCK, or n = 1) with class
 * indices, scaled by gs: dx_c += gs (p_c - q_c), q_c = hit + smooth at the
 * label and smooth elsewhere, with every p = exp(log p) from one flat loop;
 * then again for each row's most likely class, the only one whose p can
 * exceed 1/2 (prob_minus_target's expm1 then).  Rows left out are skipped;
 * a label that is not a class index (reported by the forward) gives NaN. */
NB_LOOP_BODY void add_grad_span(nb_real *dx, const nb_real *p, int c0, int c1, int y,
                                nb_real hit, nb_real smooth, nb_real gs) {
    for (int c = c0; c < c1; c++)
        dx[c] += gs * (p[c - c0] - ((nb_real)(c == y) * hit + smooth));
}

NB_LOOP_BODY void block_grad_labels(const ce_job *j, size_t r0, size_t n, nb_real gs) {
    const nb_cross_entropy_settings *cs = &j->n->settings.cross_entropy;
    const int C = j->C, wide = C > CE_BLOCK; /* then p holds a piece of one row */
    const nb_real eps = cs->label_smoothing, smooth = eps / (nb_real)C, hit = R(1) - eps;
    const nb_real *lp = j->n->scratch + r0 * C;
    nb_real p[CE_BLOCK];
    for (size_t k = 0; !wide && k < n * (size_t)C; k++) p[k] = nb_vexp(lp[k]);
    for (size_t r = 0; r < n; r++) {
        const nb_real v = j->t->val[r0 + r], *lr = lp + r * C;
        nb_real *dx = j->x->grad + (r0 + r) * C;
        int y;
        if (ce_ignored(cs, v)) continue;
        if (!class_index(v, C, &y)) {
            for (int c = 0; c < C; c++) dx[c] = NAN;
            continue;
        }
        const int top = first_max(lr, C);
        const nb_real before = dx[top];
        if (!wide) add_grad_span(dx, p + r * C, 0, C, y, hit, smooth, gs);
        for (int c0 = 0; wide && c0 < C; c0 += CE_BLOCK) {
            int c1 = C - c0 < CE_BLOCK ? C : c0 + CE_BLOCK;
            for (int c = c0; c < c1; c++) p[c - c0] = nb_vexp(lr[c]);
            add_grad_span(dx, p, c0, c1, y, hit, smooth, gs);
        }
        dx[top] = before + gs * prob_minus_target(lr[top], R(1), (top == y ? hit : R(0)) + smooth);
    }
}

/* The same with probability targets, row by row; and their gradient. */
NB_LOOP_BODY void row_grad_probs(const ce_job *j, size_t r, nb_real gs) {
    const nb_real eps = j->n->settings.cross_entropy.label_smoothing, smooth = eps / (nb_real)j->C;
    const int C = j->C;
    const nb_real *lr = j->n->scratch + r * C, *tr = j->t->val + r * C;
    if (j->x->grad) {
        nb_real *dx = j->x->grad + r * C, qsum = 0;
        for (int c = 0; c < C; c++) qsum += (R(1) - eps) * tr[c] + smooth;
        for (int c = 0; c < C; c++)
            dx[c] += gs * prob_minus_target(lr[c], qsum, (R(1) - eps) * tr[c] + smooth);
    }
    if (j->t->grad) {
        nb_real *dt = j->t->grad + r * C;
        for (int c = 0; c < C; c++) dt[c] -= gs * (R(1) - eps) * lr[c];
    }
}

NB_VECTOR_LOOP static void ce_backward_chunk(void *ctx, int part) {
    ce_job *j = ctx;
    const nb_cross_entropy_settings *cs = &j->n->settings.cross_entropy;
    const nb_real gs = j->n->grad[0] / (nb_real)cs->counted;
    size_t r0, r1, step = block_rows(j->C);
    ce_chunk_rows(j, part, &r0, &r1);
    for (size_t r = r0; r < r1; r += step) {
        size_t n = r1 - r < step ? r1 - r : step;
        if (cs->index_targets && j->x->grad) block_grad_labels(j, r, n, gs);
        for (size_t k = r; !cs->index_targets && k < r + n; k++) row_grad_probs(j, k, gs);
    }
}

static void ce_backward(nb_graph *g, nb_node_t *n) {
    if (!n->settings.cross_entropy.counted) return; /* every target left out: the loss is 0 */
    ce_job j = ce_job_of(g, n);
    ce_run(&j, ce_backward_chunk);
}

static size_t ce_scratch(const nb_graph *g, const nb_node_t *n) {
    return nb__numel(&g->nodes[n->in[0]]); /* log-softmax of the logits */
}

static size_t ce_terms(const nb_graph *g, const nb_node_t *n) {
    (void)g;
    return n->settings.cross_entropy.counted;
}

static int ce_skips_target(const nb_node_t *n, nb_real target) {
    return ce_ignored(&n->settings.cross_entropy, target);
}

static const nb_op op_cross_entropy = {
    .name = "cross_entropy",
    .forward = ce_forward,
    .backward = ce_backward,
    .scratch = ce_scratch,
    .terms = ce_terms,
    .skips_target = ce_skips_target,
};

/* Do the target's shape and the logits' fit?  *labels: index targets. */
static int ce_target_fits(const nb_node_t *X, const nb_node_t *T, int *labels) {
    *labels = T->ndim == X->ndim - 1;
    if (T->batched != X->batched || T->dims[0] != X->dims[0]) return 0;
    if (!*labels && T->ndim != X->ndim) return 0;
    return memcmp(T->dims + 1, X->dims + 1, (size_t)(T->ndim - 1) * sizeof(int)) == 0;
}

nb_node nb_cross_entropy_ignore(nb_graph *g, nb_node logits, nb_node target,
                                nb_real label_smoothing, int ignore_index) {
    nb_node in[2] = {logits, target};
    if (!nb__begin(g, "cross_entropy", 2, in)) return NB_NONE;
    const nb_node_t *X = nb__node(g, logits), *T = nb__node(g, target);
    char sx[96];
    nb_shape_str(sx, sizeof sx, X->ndim, X->dims);
    if (X->ndim != 2 && !(X->ndim == 3 && X->batched))
        return nb__fail(g, NB_ERR_SHAPE, "cross_entropy: logits %s; expected [batch, "
                        "classes] or [batch, positions, classes]", sx);
    if (!(label_smoothing >= 0 && label_smoothing < 1))
        return nb__fail(g, NB_ERR_ARG, "cross_entropy: label_smoothing %g is not in [0, 1)",
                        (double)label_smoothing);
    int labels;
    if (!ce_target_fits(X, T, &labels))
        return shape_mismatch(g, "cross_entropy", "logits", X, "target", T,
                              X->ndim == 2 ? "expected target [batch] of class indices or "
                              "[batch, classes] of probabilities, batched like the logits"
                              : "expected target [batch, positions] of class indices or "
                              "[batch, positions, classes] of probabilities");
    nb_node h = nb__add_node(g, &op_cross_entropy, 2, in, 0, NULL, 0);
    if (h == NB_NONE) return NB_NONE;
    nb__node(g, h)->settings.cross_entropy = (nb_cross_entropy_settings){
        .label_smoothing = label_smoothing, .index_targets = labels,
        .ignore_index = ignore_index};
    return h;
}

nb_node nb_cross_entropy(nb_graph *g, nb_node logits, nb_node target,
                         nb_real label_smoothing) {
    return nb_cross_entropy_ignore(g, logits, target, label_smoothing, -100);
}

/* ---- binary cross-entropy with logits, mean over all elements ----
 *   loss = (1 - y) x - log sigmoid(x),  log sigmoid(x) = min(x, 0) - log1p(e^-|x|)
 * which never overflows; d/dx = sigmoid(x) - y, d/dy = -x. */

static void bce_forward(nb_graph *g, nb_node_t *n) {
    const nb_node_t *x = nb__in(g, n, 0), *y = nb__in(g, n, 1);
    size_t total = nb__numel(x);
    double acc = 0;
    for (size_t k = 0; k < total; k++) {
        nb_real v = x->val[k];
        nb_real log_sig = nb_fmin(v, R(0)) - nb_log1p(nb_exp(-nb_fabs(v)));
        acc += (double)((R(1) - y->val[k]) * v) - (double)log_sig;
    }
    n->val[0] = (nb_real)(acc / (double)total);
}

/* sigmoid without overflow for either sign */
static nb_real sigmoid(nb_real v) {
    if (v >= 0) return R(1) / (R(1) + nb_exp(-v));
    nb_real e = nb_exp(v);
    return e / (R(1) + e);
}

static void bce_backward(nb_graph *g, nb_node_t *n) {
    nb_node_t *x = nb__in(g, n, 0), *y = nb__in(g, n, 1);
    size_t total = nb__numel(x);
    nb_real gs = n->grad[0] / (nb_real)total;
    for (size_t k = 0; k < total; k++) {
        if (x->grad) x->grad[k] += gs * (sigmoid(x->val[k]) - y->val[k]);
        if (y->grad) y->grad[k] -= gs * x->val[k];
    }
}

static const nb_op op_bce = {
    .name = "bce_with_logits",
    .forward = bce_forward,
    .backward = bce_backward,
};

nb_node nb_bce_with_logits(nb_graph *g, nb_node logits, nb_node target) {
    nb_node in[2] = {logits, target};
    if (!nb__begin(g, "bce_with_logits", 2, in)) return NB_NONE;
    const nb_node_t *X = nb__node(g, logits), *T = nb__node(g, target);
    if (!same_shape(X, T))
        return shape_mismatch(g, "bce_with_logits", "logits", X, "target", T,
                              "they must have the same shape");
    return nb__add_node(g, &op_bce, 2, in, 0, NULL, 0);
}
