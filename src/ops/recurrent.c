/* Recurrent layers over [B, T, D] (PyTorch's nn.RNN with tanh, nn.LSTM and
 * nn.GRU, one layer, batch_first, h0 = c0 = 0): equations, gate order and
 * parameter names as in PyTorch (docs/definitions.md, Recurrent layers).
 *
 * A layer is two nodes.  The input projection of all T steps,
 *     xp = x W_ih^T + b_ih   [B, T, G*H],
 * is one linear node: one GEMM over the B*T rows forward, and its backward
 * is two GEMMs too.  The recurrence is the op here: per step t one GEMM
 *     hh = h_{t-1} W_hh^T + b_hh   [B, G*H]
 * and the cell's elementwise update.  Backpropagation through time runs
 * inside the op, backwards over t: per step the cell's gradient gives
 * d(xp) (straight into the projection's gradient) and d(hh), and one GEMM
 * d(h_{t-1}) += d(hh) W_hh.  The weight gradient of all steps is one GEMM at
 * the end, dW_hh += d(hh)[1..T-1]^T h[0..T-2], because h is kept time-major.
 *
 * Everything the op keeps for backward lives in its scratch (the arena), so
 * no step allocates: the states h_t, the activated gates, the LSTM's cell
 * states or the GRU's W_hn h + b_hn, and the per-step gradients. */
#include "../core/internal.h"
#include "../kernels/gemm.h"
#include "../kernels/parallel.h"
#include "../kernels/vmath.h"

#include <stdio.h>
#include <string.h>

static const int gates_of[3] = {1, 4, 3}; /* NB_RNN_TANH, NB_LSTM, NB_GRU */
static const char *const kind_names[3] = {"rnn", "lstm", "gru"};

/* The sizes of a node and the parts of its scratch (time-major). */
typedef struct rec_view {
    int kind, B, T, H, GH;
    nb_real *hs;     /* [T, B, H]   h_t                                       */
    nb_real *gates;  /* [T, B, GH]  activated gates (LSTM i f g o; GRU r z n)  */
    nb_real *extra;  /* [T, B, H]   LSTM: c_t; GRU: W_hn h_{t-1} + b_hn       */
                     /* (the RNN has neither: both point at dhh, never read)  */
    nb_real *dhh;    /* [T, B, GH]  d(hh) per step; forward: hh of the step   */
    nb_real *dh, *dh2, *dc; /* [B, H] each: running gradients of h and c      */
} rec_view;

static size_t rec_scratch_len(int kind, size_t B, size_t T, size_t H) {
    size_t GH = (size_t)gates_of[kind] * H, kept = kind == NB_RNN_TANH ? 0 : GH + H;
    return T * B * (H + kept + GH) + 3 * B * H;
}

static rec_view rec_view_of(const nb_graph *g, const nb_node_t *n) {
    const nb_node_t *xp = &g->nodes[n->in[0]];
    rec_view v;
    v.kind = n->settings.recurrent.kind;
    v.B = xp->dims[0];
    v.T = xp->dims[1];
    v.H = n->settings.recurrent.hidden;
    v.GH = xp->dims[2];
    size_t TB = (size_t)v.T * v.B, BH = (size_t)v.B * v.H;
    v.hs = n->scratch;
    v.gates = v.hs + TB * v.H; /* the RNN keeps neither gates nor extra: h is enough */
    v.extra = v.gates + (v.kind == NB_RNN_TANH ? 0 : TB * v.GH);
    v.dhh = v.extra + (v.kind == NB_RNN_TANH ? 0 : TB * v.H);
    v.dh = v.dhh + TB * v.GH;
    v.dh2 = v.dh + BH;
    v.dc = v.dh2 + BH;
    return v;
}

static size_t rec_scratch(const nb_graph *g, const nb_node_t *n) {
    const nb_node_t *xp = &g->nodes[n->in[0]];
    return rec_scratch_len(n->settings.recurrent.kind, (size_t)xp->dims[0],
                           (size_t)xp->dims[1], (size_t)n->settings.recurrent.hidden);
}

/* ---- one step forward of one sample: h_t (and what backward needs) from
 * xp_t, hh = W_hh h_{t-1} + b_hh, and h_{t-1} and c_{t-1} (NULL at t = 0) ---- */

typedef struct cell_io {
    const nb_real *xp, *hh, *hp, *cp; /* inputs; hp, cp NULL at t = 0   */
    nb_real *h, *gt, *ex;             /* h_t, the gates, extra (c or hn) */
} cell_io;

/* The cells' loops run over the H units of one sample; the gates' sigmoid
 * and tanh are the vectorisable ones of vmath.h, and each cell is compiled
 * for each vector width (NB_VECTOR_LOOP). */
NB_VECTOR_LOOP static void rnn_cell(const cell_io *c, int H) {
    const nb_real *restrict xp = c->xp, *restrict hh = c->hh;
    nb_real *restrict h = c->h;
    for (int j = 0; j < H; j++) h[j] = nb_vtanh(xp[j] + hh[j]);
}

/* The units of one cell, on restrict parameters (so the compiler knows the
 * arrays do not overlap); `first`: t = 0, no c_{t-1} (a constant in each
 * instance, so the loop has no branch and vectorises). */
NB_LOOP_BODY void lstm_units(const nb_real *restrict xp, const nb_real *restrict hh,
                             const nb_real *restrict cp, nb_real *restrict h,
                             nb_real *restrict gt, nb_real *restrict ex, int H, const int first) {
    for (int j = 0; j < H; j++) {
        nb_real i = nb_vsigmoid(xp[j] + hh[j]), f = nb_vsigmoid(xp[H + j] + hh[H + j]);
        nb_real gg = nb_vtanh(xp[2 * H + j] + hh[2 * H + j]);
        nb_real o = nb_vsigmoid(xp[3 * H + j] + hh[3 * H + j]);
        nb_real cell = first ? i * gg + R(0) : i * gg + f * cp[j];
        gt[j] = i, gt[H + j] = f, gt[2 * H + j] = gg, gt[3 * H + j] = o;
        ex[j] = cell;
        h[j] = o * nb_vtanh(cell);
    }
}

NB_VECTOR_LOOP static void lstm_cell(const cell_io *c, int H) {
    if (c->cp) lstm_units(c->xp, c->hh, c->cp, c->h, c->gt, c->ex, H, 0);
    else lstm_units(c->xp, c->hh, NULL, c->h, c->gt, c->ex, H, 1);
}

/* n = tanh(W_in x + b_in + r (W_hn h + b_hn)): the input part is not gated;
 * `first` as for the LSTM (no h_{t-1}) */
NB_LOOP_BODY void gru_units(const nb_real *restrict xp, const nb_real *restrict hh,
                            const nb_real *restrict hp, nb_real *restrict h,
                            nb_real *restrict gt, nb_real *restrict ex, int H, const int first) {
    for (int j = 0; j < H; j++) {
        nb_real r = nb_vsigmoid(xp[j] + hh[j]), z = nb_vsigmoid(xp[H + j] + hh[H + j]);
        nb_real nn = nb_vtanh(xp[2 * H + j] + r * hh[2 * H + j]);
        gt[j] = r, gt[H + j] = z, gt[2 * H + j] = nn;
        ex[j] = hh[2 * H + j];
        h[j] = first ? (R(1) - z) * nn + z * R(0) : (R(1) - z) * nn + z * hp[j];
    }
}

NB_VECTOR_LOOP static void gru_cell(const cell_io *c, int H) {
    if (c->hp) gru_units(c->xp, c->hh, c->hp, c->h, c->gt, c->ex, H, 0);
    else gru_units(c->xp, c->hh, NULL, c->h, c->gt, c->ex, H, 1);
}

static void cell_forward(const rec_view *v, int t, const nb_real *xp_all, int b0, int b1) {
    const int H = v->H, GH = v->GH;
    for (int b = b0; b < b1; b++) {
        const size_t row = (size_t)t * v->B + b, prev = row - (size_t)v->B;
        cell_io c = {xp_all + ((size_t)b * v->T + t) * GH, v->dhh + row * GH,
                     t ? v->hs + prev * H : NULL, t ? v->extra + prev * H : NULL,
                     v->hs + row * H, v->gates + row * GH, v->extra + row * H};
        if (v->kind == NB_RNN_TANH) rnn_cell(&c, H);
        else if (v->kind == NB_LSTM) lstm_cell(&c, H);
        else gru_cell(&c, H);
    }
}

/* The samples of a batch run through time independently: parts of the
 * batch run in parallel, each through every step (no barrier per step), and
 * the products on their rows only.  A row's result does not depend on the
 * split, so neither does anything else. */
typedef struct rec_job {
    nb_graph *g;
    nb_node_t *n;
    rec_view v;
    int parts;
} rec_job;

enum { ROWS_PER_PART_MIN = 4 };

static rec_job rec_job_of(nb_graph *g, nb_node_t *n) {
    rec_job j = {.g = g, .n = n, .v = rec_view_of(g, n)};
    j.parts = nb__part_count((size_t)j.v.B, ROWS_PER_PART_MIN);
    return j;
}

static void rows_of(const rec_job *j, int part, int *b0, int *b1) {
    size_t lo, hi;
    nb__part_range((size_t)j->v.B, part, j->parts, 1, &lo, &hi);
    *b0 = (int)lo, *b1 = (int)hi;
}

static void run_rows(rec_job *j, void (*fn)(void *, int)) {
    if (j->parts == 1) fn(j, 0); /* outside a region: its products may use the threads */
    else nb__parallel(j->parts, fn, j);
}

static void forward_rows(void *ctx, int part) {
    const rec_job *j = ctx;
    const rec_view v = j->v;
    const nb_node_t *xp = nb__in(j->g, j->n, 0), *w = nb__in(j->g, j->n, 1);
    const nb_node_t *bias = nb__in(j->g, j->n, 2);
    int b0, b1;
    rows_of(j, part, &b0, &b1);
    for (int t = 0; t < v.T; t++) {
        nb_real *hh = v.dhh + (size_t)t * v.B * v.GH;
        for (int b = b0; b < b1; b++)
            memcpy(hh + (size_t)b * v.GH, bias->val, (size_t)v.GH * sizeof *hh);
        if (t && b1 > b0) /* h0 = 0 adds nothing at t = 0 */
            nb_gemm(0, 1, b1 - b0, v.GH, v.H, R(1),
                    v.hs + ((size_t)(t - 1) * v.B + b0) * v.H, v.H, w->val, v.H, R(1),
                    hh + (size_t)b0 * v.GH, v.GH);
        cell_forward(&v, t, xp->val, b0, b1);
    }
}

static void rec_forward(nb_graph *g, nb_node_t *n) {
    rec_job j = rec_job_of(g, n);
    run_rows(&j, forward_rows);
    const rec_view v = j.v;
    /* the output: every h_t as [B, T, H], or h_{T-1} as [B, H] */
    int last = n->settings.recurrent.last;
    size_t hb = (size_t)v.H * sizeof *n->val;
    for (int b = 0; b < v.B; b++) {
        if (last) {
            memcpy(n->val + (size_t)b * v.H, v.hs + ((size_t)(v.T - 1) * v.B + b) * v.H, hb);
            continue;
        }
        for (int t = 0; t < v.T; t++)
            memcpy(n->val + ((size_t)b * v.T + t) * v.H, v.hs + ((size_t)t * v.B + b) * v.H, hb);
    }
}

/* ---- one step backward of one sample: from dh (into h_t) and dc (into
 * c_t) to d(hh_t), d(xp_t) where it differs from d(hh_t) (the GRU's n gate),
 * the direct part of d(h_{t-1}) in dh2, and d(c_{t-1}) in dc ---- */

typedef struct cell_grad {
    const nb_real *h, *gt, *ex, *hp, *cp, *dh; /* hp, cp NULL at t = 0    */
    nb_real *dhh, *dxp, *dh2, *dc;             /* dxp NULL: not needed    */
} cell_grad;

static void rnn_cell_back(const cell_grad *c, int H) {
    for (int j = 0; j < H; j++) {
        c->dhh[j] = c->dh[j] * (R(1) - c->h[j] * c->h[j]);
        c->dh2[j] = 0;
    }
}

/* As forward: the units on restrict parameters, an instance per constant
 * flag (`first`: t = 0, no c_{t-1}), so the loop vectorises. */
NB_LOOP_BODY void lstm_back_units(const nb_real *restrict gt, const nb_real *restrict ex,
                                  const nb_real *restrict cp, const nb_real *restrict dh,
                                  nb_real *restrict dhh, nb_real *restrict dh2,
                                  nb_real *restrict dc, int H, const int first) {
    for (int j = 0; j < H; j++) {
        nb_real i = gt[j], f = gt[H + j], gg = gt[2 * H + j], o = gt[3 * H + j];
        nb_real tc = nb_vtanh(ex[j]), cpj = first ? R(0) : cp[j];
        nb_real dcv = dc[j] + dh[j] * o * (R(1) - tc * tc);
        dhh[j] = dcv * gg * i * (R(1) - i);
        dhh[H + j] = dcv * cpj * f * (R(1) - f);
        dhh[2 * H + j] = dcv * i * (R(1) - gg * gg);
        dhh[3 * H + j] = dh[j] * tc * o * (R(1) - o);
        dc[j] = dcv * f;
        dh2[j] = 0;
    }
}

NB_VECTOR_LOOP static void lstm_cell_back(const cell_grad *c, int H) {
    if (c->cp) lstm_back_units(c->gt, c->ex, c->cp, c->dh, c->dhh, c->dh2, c->dc, H, 0);
    else lstm_back_units(c->gt, c->ex, NULL, c->dh, c->dhh, c->dh2, c->dc, H, 1);
}

/* `first` as above; `direct`: d(xp)'s n part is written here (it differs
 * from d(hh)'s) */
NB_LOOP_BODY void gru_back_units(const nb_real *restrict gt, const nb_real *restrict ex,
                                 const nb_real *restrict hp, const nb_real *restrict dh,
                                 nb_real *restrict dhh, nb_real *restrict dxn,
                                 nb_real *restrict dh2, int H, const int first,
                                 const int direct) {
    for (int j = 0; j < H; j++) {
        nb_real r = gt[j], z = gt[H + j], nn = gt[2 * H + j], hpj = first ? R(0) : hp[j];
        nb_real dn = dh[j] * (R(1) - z) * (R(1) - nn * nn); /* d(n's argument) */
        dhh[j] = dn * ex[j] * r * (R(1) - r);
        dhh[H + j] = dh[j] * (hpj - nn) * z * (R(1) - z);
        dhh[2 * H + j] = dn * r;
        if (direct) dxn[j] += dn;
        dh2[j] = dh[j] * z;
    }
}

NB_VECTOR_LOOP static void gru_cell_back(const cell_grad *c, int H) {
    nb_real *dxn = c->dxp ? c->dxp + 2 * H : NULL;
    if (c->hp && dxn) gru_back_units(c->gt, c->ex, c->hp, c->dh, c->dhh, dxn, c->dh2, H, 0, 1);
    else if (c->hp) gru_back_units(c->gt, c->ex, c->hp, c->dh, c->dhh, NULL, c->dh2, H, 0, 0);
    else if (dxn) gru_back_units(c->gt, c->ex, NULL, c->dh, c->dhh, dxn, c->dh2, H, 1, 1);
    else gru_back_units(c->gt, c->ex, NULL, c->dh, c->dhh, NULL, c->dh2, H, 1, 0);
}

static void cell_backward(const rec_view *v, int t, nb_real *dxp_all, int b0, int b1) {
    const int H = v->H, GH = v->GH;
    for (int b = b0; b < b1; b++) {
        const size_t row = (size_t)t * v->B + b, prev = row - (size_t)v->B;
        nb_real *dxp = dxp_all ? dxp_all + ((size_t)b * v->T + t) * GH : NULL;
        cell_grad c = {v->hs + row * H, v->gates + row * GH, v->extra + row * H,
                       t ? v->hs + prev * H : NULL, t ? v->extra + prev * H : NULL,
                       v->dh + (size_t)b * H, v->dhh + row * GH, dxp,
                       v->dh2 + (size_t)b * H, v->dc + (size_t)b * H};
        if (v->kind == NB_RNN_TANH) rnn_cell_back(&c, H);
        else if (v->kind == NB_LSTM) lstm_cell_back(&c, H);
        else gru_cell_back(&c, H);
        if (!dxp) continue;
        int shared = v->kind == NB_GRU ? 2 * H : GH; /* d(xp) = d(hh) for these */
        for (int k = 0; k < shared; k++) dxp[k] += c.dhh[k];
    }
}

/* dh += the output's gradient at step t */
static void add_output_grad(const rec_view *v, const nb_node_t *n, int t, int b0, int b1) {
    int last = n->settings.recurrent.last;
    if (last && t != v->T - 1) return;
    for (int b = b0; b < b1; b++) {
        const nb_real *dy = last ? n->grad + (size_t)b * v->H
                                 : n->grad + ((size_t)b * v->T + t) * v->H;
        nb_real *dh = v->dh + (size_t)b * v->H;
        for (int j = 0; j < v->H; j++) dh[j] += dy[j];
    }
}

/* Backward through time for the rows of one part: dh and dc (and their
 * swap buffer dh2) are per row, so parts never touch each other's. */
static void backward_rows(void *ctx, int part) {
    const rec_job *j = ctx;
    rec_view v = j->v;
    nb_node_t *xp = nb__in(j->g, j->n, 0), *w = nb__in(j->g, j->n, 1);
    int b0, b1;
    rows_of(j, part, &b0, &b1);
    size_t r0 = (size_t)b0 * v.H, rows = (size_t)(b1 - b0) * v.H;
    memset(v.dh + r0, 0, rows * sizeof *v.dh);
    memset(v.dc + r0, 0, rows * sizeof *v.dc);
    for (int t = v.T - 1; t >= 0; t--) {
        add_output_grad(&v, j->n, t, b0, b1);
        cell_backward(&v, t, xp->grad, b0, b1);
        if (t && b1 > b0) /* d(h_{t-1}) += d(hh_t) W_hh */
            nb_gemm(0, 0, b1 - b0, v.H, v.GH, R(1),
                    v.dhh + ((size_t)t * v.B + b0) * v.GH, v.GH, w->val, v.H, R(1),
                    v.dh2 + r0, v.H);
        nb_real *swap = v.dh;
        v.dh = v.dh2;
        v.dh2 = swap;
    }
}

static void rec_backward(nb_graph *g, nb_node_t *n) {
    nb_node_t *w = nb__in(g, n, 1), *bias = nb__in(g, n, 2);
    rec_job j = rec_job_of(g, n);
    run_rows(&j, backward_rows);
    const rec_view v = j.v;
    size_t TB = (size_t)v.T * v.B;
    if (w->grad && v.T > 1) /* dW_hh += sum_t d(hh_t)^T h_{t-1}, t >= 1 (h0 = 0) */
        nb_gemm(1, 0, v.GH, v.H, (int)(TB - (size_t)v.B), R(1), v.dhh + (size_t)v.B * v.GH,
                v.GH, v.hs, v.H, R(1), w->grad, v.H);
    if (bias->grad)
        for (size_t r = 0; r < TB; r++)
            for (int k = 0; k < v.GH; k++) bias->grad[k] += v.dhh[r * v.GH + k];
}

/* the recurrent products, 2 per multiply-add, plus the cells */
static double rec_flops(const nb_graph *g, const nb_node_t *n) {
    const nb_node_t *xp = &g->nodes[n->in[0]];
    double steps = (double)xp->dims[0] * xp->dims[1], H = n->settings.recurrent.hidden;
    return steps * xp->dims[2] * (2.0 * H + 4.0);
}

static const nb_op op_recurrent[3] = {
    {.name = "rnn", .forward = rec_forward, .backward = rec_backward, .scratch = rec_scratch,
     .flops = rec_flops},
    {.name = "lstm", .forward = rec_forward, .backward = rec_backward, .scratch = rec_scratch,
     .flops = rec_flops},
    {.name = "gru", .forward = rec_forward, .backward = rec_backward, .scratch = rec_scratch,
     .flops = rec_flops},
};

/* The layer's four parameters, PyTorch's names and init U(+-1/sqrt(H)). */
static int rec_params(nb_graph *g, const char *base, int GH, int H, int D, nb_node p[4]) {
    static const char *const names[4] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                         "bias_hh_l0"};
    double k = 1.0 / sqrt((double)H);
    nb_init init = {.kind = NB_INIT_UNIFORM, .a = -k, .b = k};
    int dims[4][2] = {{GH, D}, {GH, H}, {GH, 0}, {GH, 0}};
    for (int i = 0; i < 4; i++) {
        char pname[64];
        snprintf(pname, sizeof pname, "%s.%s", base, names[i]);
        p[i] = nb_param(g, pname, i < 2 ? 2 : 1, dims[i], init);
        if (p[i] == NB_NONE) return 0;
    }
    return 1;
}

nb_node nb_recurrent(nb_graph *g, nb_node x, nb_rnn_kind kind, int hidden, int last_only,
                     const char *name) {
    if (!nb__begin(g, "recurrent", 1, &x)) return NB_NONE;
    if (kind < NB_RNN_TANH || kind > NB_GRU)
        return nb__fail(g, NB_ERR_ARG, "recurrent: unknown kind %d", (int)kind);
    const char *op = kind_names[kind];
    const nb_node_t *X = nb__node(g, x);
    if (!X->batched || X->ndim != 3) {
        char sx[96];
        return nb__fail(g, NB_ERR_SHAPE, "%s: input '%s' has shape %s; expected a batched "
                        "[batch, steps, features]", op, X->name,
                        nb_shape_str(sx, sizeof sx, X->ndim, X->dims));
    }
    int T = X->dims[1], D = X->dims[2], GH = gates_of[kind] * hidden;
    if (hidden <= 0 || hidden > (1 << 20))
        return nb__fail(g, NB_ERR_ARG, "%s: hidden size %d is not from 1 to %d", op, hidden,
                        1 << 20);
    char base[48];
    if (name && name[0]) snprintf(base, sizeof base, "%s", name);
    else nb__auto_name(g, op, base, sizeof base);
    nb_node p[4];
    if (!rec_params(g, base, GH, hidden, D, p)) return NB_NONE;
    nb_node xp = nb_linear(g, x, p[0], p[2]); /* all T steps in one product */
    nb_node in[3] = {xp, p[1], p[3]};
    if (!nb__begin(g, op, 3, in)) return NB_NONE;
    int dims[3] = {1, T, hidden};
    if (last_only) dims[1] = hidden;
    nb_node y = nb__add_node(g, &op_recurrent[kind], 3, in, last_only ? 2 : 3, dims, 1);
    if (y == NB_NONE) return NB_NONE;
    nb__node(g, y)->settings.recurrent =
        (nb_recurrent_settings){.kind = (int)kind, .hidden = hidden, .last = !!last_only};
    nb__set_name(g, y, base);
    return y;
}
