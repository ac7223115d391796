/* Gradient checks in double precision of the losses, the shape ops and the
 * existing basic ops (linear, dense, matmul, add/sub/mul with every broadcast
 * form, scale, sum, mean), plus hand-computed values of the losses and shape
 * ops.  Gradcheck: central differences, eps 1e-6, atol 1e-7, rtol 1e-6.
 *
 * Tensor outputs are reduced with loss = sum(y * wy), wy a fixed random
 * batched input, so every output element has its own upstream gradient. */
#include "nabla.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-6
#define ATOL 1e-7
#define RTOL 1e-6
#define BATCH 3
#define MAX_LEAVES 16

/* A graph under construction: its inputs are filled with random values
 * once the graph is complete (filling first would be lost when new nodes
 * re-plan the arena). */
typedef struct tb {
    nb_graph *g;
    nb_rng r;
    nb_node in[MAX_LEAVES];
    int n_in;
} tb;

static void tb_new(tb *t, uint64_t seed) {
    memset(t, 0, sizeof *t);
    t->g = nb_graph_new();
    nb_rng_seed(&t->r, seed);
}

/* A batched input with sample dims (nsd, sd); grad: check its gradient. */
static nb_node tb_input(tb *t, int nsd, const int *sd, int grad) {
    nb_node n = nb_input(t->g, NULL, nsd, sd);
    if (grad) CHECK_OK(nb_requires_grad(t->g, n, 1));
    if (n != NB_NONE && t->n_in < MAX_LEAVES) t->in[t->n_in++] = n;
    return n;
}

static nb_node tb_param(tb *t, int ndim, const int *dims) {
    nb_init init = {.kind = NB_INIT_NORMAL, .a = 0, .b = 1};
    return nb_param(t->g, NULL, ndim, dims, init);
}

/* Initialise parameters and fill every input with N(0, 1) values. */
static void tb_fill(tb *t) {
    CHECK_OK(nb_graph_status(t->g));
    CHECK_OK(nb_graph_init(t->g, &t->r));
    CHECK_OK(nb_graph_set_batch(t->g, BATCH));
    for (int k = 0; k < t->n_in; k++) {
        nb_real *v = nb_value(t->g, t->in[k]);
        size_t n = nb_node_numel(t->g, t->in[k]);
        for (size_t j = 0; v && j < n; j++) v[j] = (nb_real)nb_rng_normal(&t->r);
    }
}

/* loss = sum(y * wy) with wy shaped like y (batched or not). */
static nb_node tb_weighted_sum(tb *t, nb_node y) {
    int ndim, dims[NB_MAX_DIMS];
    if (nb_node_shape(t->g, y, &ndim, dims) != NB_OK) return NB_NONE;
    nb_node wy = nb_node_is_batched(t->g, y) ? tb_input(t, ndim - 1, dims + 1, 0)
                                             : nb_constant(t->g, NULL, ndim, dims, NULL);
    if (!nb_node_is_batched(t->g, y) && wy != NB_NONE) {
        nb_real *v = nb_value(t->g, wy);
        for (size_t j = 0; j < nb_node_numel(t->g, wy); j++)
            v[j] = (nb_real)nb_rng_normal(&t->r);
    }
    return nb_sum(t->g, nb_mul(t->g, y, wy));
}

/* Gradcheck loss; `checked` scalars must be compared (0: don't care). */
static void gc(tb *t, nb_node loss, const char *what, size_t checked) {
    nb_gradcheck_report rep;
    nb_status s = nb_gradcheck(t->g, loss, EPS, ATOL, RTOL, &rep);
    CHECKF(s == NB_OK, "%s: gradcheck: %s", what, nb_last_error());
    CHECKF(s == NB_OK && rep.failed == 0 && rep.checked > 0,
           "%s: %zu of %zu failed; worst node %d [%zu]: analytic %.12g numeric %.12g", what,
           rep.failed, rep.checked, rep.worst_node, rep.worst_index, rep.worst_analytic,
           rep.worst_numeric);
    if (checked)
        CHECKF(rep.checked == checked, "%s: checked %zu scalars, expected %zu", what,
               rep.checked, checked);
}

static void tb_free(tb *t) { nb_graph_free(t->g); }

/* ------------------------------------------------------------ existing ops */

static void test_linear(void) {
    for (int bias = 0; bias < 2; bias++) {
        tb t;
        tb_new(&t, 11 + bias);
        int in = 4, wd[2] = {5, 4}, bd = 5;
        nb_node x = tb_input(&t, 1, &in, 1);
        nb_node w = tb_param(&t, 2, wd);
        nb_node b = bias ? tb_param(&t, 1, &bd) : NB_NONE;
        nb_node l = tb_weighted_sum(&t, nb_linear(t.g, x, w, b));
        tb_fill(&t);
        gc(&t, l, bias ? "linear with bias" : "linear without bias",
           BATCH * 4 + 20 + (bias ? 5 : 0));
        tb_free(&t);
    }
    /* rows beyond the batch: x [B, 2, 4] */
    tb t;
    tb_new(&t, 13);
    int sd[2] = {2, 4}, wd[2] = {3, 4}, bd = 3;
    nb_node x = tb_input(&t, 2, sd, 1);
    nb_node l = tb_weighted_sum(&t, nb_linear(t.g, x, tb_param(&t, 2, wd), tb_param(&t, 1, &bd)));
    tb_fill(&t);
    gc(&t, l, "linear on [B, 2, 4]", BATCH * 8 + 12 + 3);
    tb_free(&t);
}

static void test_dense(void) {
    for (int no_bias = 0; no_bias < 2; no_bias++) {
        tb t;
        tb_new(&t, 21 + no_bias);
        int in = 3;
        nb_dense_opts o = {.no_bias = no_bias};
        nb_node x = tb_input(&t, 1, &in, 1);
        nb_node h = nb_dense(t.g, x, 4, "fc", &o);
        nb_node l = tb_weighted_sum(&t, h);
        CHECK(nb_param_tensor_count(t.g) == (no_bias ? 1 : 2));
        tb_fill(&t);
        gc(&t, l, no_bias ? "dense without bias" : "dense with bias",
           BATCH * 3 + 12 + (no_bias ? 0 : 4));
        tb_free(&t);
    }
}

static void test_matmul(void) {
    tb t;
    tb_new(&t, 31);
    int k = 4, bd[2] = {4, 2};
    nb_node a = tb_input(&t, 1, &k, 1);
    nb_node l = tb_weighted_sum(&t, nb_matmul(t.g, a, tb_param(&t, 2, bd)));
    tb_fill(&t);
    gc(&t, l, "matmul (batched left operand)", BATCH * 4 + 8);
    tb_free(&t);
}

/* The second operand's form relative to a batched [B, 2, 3] (or [B, 3]). */
enum form { F_SAME, F_VEC, F_ROW, F_ONE, F_SCALAR, F_TRAIL, F_PARAMS, N_FORMS };
static const char *form_name[N_FORMS] = {"equal shapes", "[B,N] with [N]", "[B,N] with [1,N]",
                                         "a single element [1]", "a scalar []",
                                         "[B,2,3] with [3]", "two equal params"};

static void test_elementwise(void) {
    static const char *opname[3] = {"add", "sub", "mul"};
    for (int op = 0; op < 3; op++)
        for (int f = 0; f < N_FORMS; f++)
            for (int small_left = 0; small_left < 2; small_left++) {
                if (f == F_SAME && small_left) continue;
                tb t;
                tb_new(&t, (uint64_t)(100 + 20 * op + 2 * f + small_left));
                int n3 = 3, row[2] = {1, 3}, one = 1, sd[2] = {2, 3}, pd[2] = {2, 3};
                nb_node big, small;
                size_t nbig, nsmall;
                switch (f) {
                case F_SAME:
                    big = tb_input(&t, 1, &n3, 1), small = tb_input(&t, 1, &n3, 1);
                    nbig = nsmall = BATCH * 3;
                    break;
                case F_VEC: big = tb_input(&t, 1, &n3, 1), small = tb_param(&t, 1, &n3);
                    nbig = BATCH * 3, nsmall = 3;
                    break;
                case F_ROW: big = tb_input(&t, 1, &n3, 1), small = tb_param(&t, 2, row);
                    nbig = BATCH * 3, nsmall = 3;
                    break;
                case F_ONE: big = tb_input(&t, 2, sd, 1), small = tb_param(&t, 1, &one);
                    nbig = BATCH * 6, nsmall = 1;
                    break;
                case F_SCALAR: big = tb_input(&t, 1, &n3, 1), small = tb_param(&t, 0, NULL);
                    nbig = BATCH * 3, nsmall = 1;
                    break;
                case F_TRAIL: big = tb_input(&t, 2, sd, 1), small = tb_param(&t, 1, &n3);
                    nbig = BATCH * 6, nsmall = 3;
                    break;
                default: big = tb_param(&t, 2, pd), small = tb_param(&t, 2, pd);
                    nbig = nsmall = 6;
                    break;
                }
                nb_node a = small_left ? small : big, b = small_left ? big : small;
                nb_node y = op == 0 ? nb_add(t.g, a, b) : op == 1 ? nb_sub(t.g, a, b)
                                                                 : nb_mul(t.g, a, b);
                int ndim = -1, dims[NB_MAX_DIMS], bdim = -2, bdims[NB_MAX_DIMS];
                nb_node_shape(t.g, y, &ndim, dims);
                nb_node_shape(t.g, big, &bdim, bdims);
                CHECK(ndim == bdim && memcmp(dims, bdims, sizeof(int) * (size_t)ndim) == 0);
                nb_node l = tb_weighted_sum(&t, y);
                tb_fill(&t);
                char what[128];
                snprintf(what, sizeof what, "%s, %s, smaller operand %s", opname[op],
                         form_name[f], small_left ? "left" : "right");
                gc(&t, l, what, nbig + nsmall);
                tb_free(&t);
            }
}

static void test_scale_sum_mean(void) {
    tb t;
    tb_new(&t, 41);
    int sd[2] = {2, 3};
    nb_node x = tb_input(&t, 2, sd, 1);
    nb_node s = nb_scale(t.g, x, -1.75);
    nb_node l = tb_weighted_sum(&t, s);
    /* sum and mean feed a scalar mul so their upstream gradient is not 1 */
    nb_node w = tb_param(&t, 0, NULL);
    nb_node ls = nb_mul(t.g, nb_sum(t.g, x), w);
    nb_node lm = nb_mul(t.g, nb_mean(t.g, x), w);
    tb_fill(&t);
    gc(&t, l, "scale", BATCH * 6);
    gc(&t, ls, "sum", BATCH * 6 + 1);
    gc(&t, lm, "mean", BATCH * 6 + 1);
    /* exact values */
    nb_real *xv = nb_value(t.g, x);
    double sum = 0;
    for (int k = 0; k < BATCH * 6; k++) sum += xv[k];
    CHECK_OK(nb_forward(t.g, NB_NONE));
    CHECK_CLOSE(nb_value(t.g, s)[4], -1.75 * xv[4], 1e-15, 0);
    CHECK_CLOSE(nb_value(t.g, ls)[0], sum * nb_value(t.g, w)[0], 1e-13, 1e-13);
    CHECK_CLOSE(nb_value(t.g, lm)[0], sum / (BATCH * 6) * nb_value(t.g, w)[0], 1e-13, 1e-13);
    tb_free(&t);
}

/* ------------------------------------------------------------ shape ops */

static void check_shape(nb_graph *g, nb_node n, int ndim, const int *dims, const char *what) {
    int nd, d[NB_MAX_DIMS];
    CHECKF(nb_node_shape(g, n, &nd, d) == NB_OK && nd == ndim &&
               memcmp(d, dims, sizeof(int) * (size_t)ndim) == 0,
           "%s: wrong shape", what);
}

static void test_reshape_flatten(void) {
    tb t;
    tb_new(&t, 51);
    int sd[2] = {2, 6}, nd[2] = {3, -1}, nd3[3] = {1, 12, 1}, pd[3] = {2, 3, 2}, pr[2] = {-1, 4};
    nb_node x = tb_input(&t, 2, sd, 1);
    nb_node r = nb_reshape(t.g, x, 2, nd);
    nb_node r3 = nb_reshape(t.g, r, 3, nd3);
    int one = 1;
    nb_node r0 = nb_reshape(t.g, tb_input(&t, 1, &one, 0), 0, NULL); /* [B, 1] -> [B] */
    nb_node f = nb_flatten(t.g, r3);
    nb_node p = tb_param(&t, 3, pd);
    nb_node pf = nb_flatten(t.g, p);      /* unbatched: keeps dim 0 -> [2, 6] */
    nb_node prs = nb_reshape(t.g, p, 2, pr);
    CHECK_OK(nb_graph_status(t.g));
    CHECK_OK(nb_graph_set_batch(t.g, BATCH));
    check_shape(t.g, r, 3, (int[]){BATCH, 3, 4}, "reshape [B,2,6] -> (3,-1)");
    check_shape(t.g, r3, 4, (int[]){BATCH, 1, 12, 1}, "reshape -> (1,12,1)");
    check_shape(t.g, f, 2, (int[]){BATCH, 12}, "flatten");
    check_shape(t.g, pf, 2, (int[]){2, 6}, "flatten unbatched");
    check_shape(t.g, prs, 2, (int[]){3, 4}, "reshape unbatched (-1, 4)");
    check_shape(t.g, r0, 1, (int[]){BATCH}, "reshape batched [B, 1] -> per-sample []");
    tb_free(&t);

    tb_new(&t, 52);
    x = tb_input(&t, 2, sd, 1);
    r3 = nb_reshape(t.g, nb_reshape(t.g, x, 2, nd), 3, nd3);
    f = nb_flatten(t.g, r3);
    p = tb_param(&t, 3, pd);
    nb_node lx = tb_weighted_sum(&t, f);
    nb_node lp = nb_add(t.g, tb_weighted_sum(&t, nb_flatten(t.g, p)),
                        tb_weighted_sum(&t, nb_reshape(t.g, p, 2, pr)));
    tb_fill(&t);
    CHECK_OK(nb_forward(t.g, NB_NONE));
    nb_real *xv = nb_value(t.g, x), *fv = nb_value(t.g, f);
    int same = 1;
    for (int k = 0; k < BATCH * 12; k++) same &= xv[k] == fv[k];
    CHECK(same); /* row-major order is unchanged */
    /* gradcheck covers every leaf created before the loss (p before lx too) */
    gc(&t, lx, "reshape + flatten, batched", BATCH * 12 + 12);
    gc(&t, lp, "flatten + reshape, unbatched", BATCH * 12 + 12);
    tb_free(&t);
}

static void test_concat(void) {
    /* exact values: [B=2, 2] ++ [B, 1] along axis 1 and along -1 */
    nb_graph *g = nb_graph_new();
    int two = 2, one = 1;
    nb_node a = nb_input(g, "a", 1, &two), b = nb_input(g, "b", 1, &one);
    nb_node y = nb_concat(g, 2, (nb_node[]){a, b}, 1);
    nb_node y2 = nb_concat(g, 2, (nb_node[]){b, a}, -1);
    CHECK_OK(nb_graph_status(g));
    CHECK_OK(nb_set_input(g, a, (nb_real[]){1, 2, 3, 4}, 2));
    CHECK_OK(nb_set_input(g, b, (nb_real[]){5, 6}, 2));
    CHECK_OK(nb_forward(g, NB_NONE));
    nb_real want[6] = {1, 2, 5, 3, 4, 6}, want2[6] = {5, 1, 2, 6, 3, 4};
    for (int k = 0; k < 6; k++) {
        CHECK(nb_value(g, y)[k] == want[k]);
        CHECK(nb_value(g, y2)[k] == want2[k]);
    }
    nb_graph_free(g);

    /* gradients: middle axis, last axis (negative), unbatched axis 0, 6 inputs */
    tb t;
    tb_new(&t, 61);
    int s0[2] = {2, 3}, s1[2] = {1, 3}, s2[2] = {4, 3}, s3[2] = {2, 1};
    nb_node x0 = tb_input(&t, 2, s0, 1), x1 = tb_input(&t, 2, s1, 1);
    nb_node x2 = tb_input(&t, 2, s2, 1), x3 = tb_input(&t, 2, s3, 1);
    nb_node mid = nb_concat(t.g, 3, (nb_node[]){x0, x1, x2}, 1);
    nb_node last = nb_concat(t.g, 2, (nb_node[]){x0, x3}, -1);
    check_shape(t.g, mid, 3, (int[]){1, 7, 3}, "concat axis 1");
    check_shape(t.g, last, 3, (int[]){1, 2, 4}, "concat axis -1");
    nb_node lmid = tb_weighted_sum(&t, mid), llast = tb_weighted_sum(&t, last);
    int pa[2] = {2, 3}, pb[2] = {1, 3};
    nb_node p0 = tb_param(&t, 2, pa), p1 = tb_param(&t, 2, pb);
    nb_node punb = nb_concat(t.g, 2, (nb_node[]){p1, p0}, 0);
    check_shape(t.g, punb, 2, (int[]){3, 3}, "concat unbatched axis 0");
    nb_node lp = tb_weighted_sum(&t, punb);
    nb_node six[6];
    int widths[6] = {1, 2, 3, 1, 2, 3};
    for (int k = 0; k < 6; k++) six[k] = tb_input(&t, 1, &widths[k], 1);
    nb_node cat6 = nb_concat(t.g, 6, six, 1);
    check_shape(t.g, cat6, 2, (int[]){1, 12}, "concat of 6");
    nb_node l6 = tb_weighted_sum(&t, cat6);
    tb_fill(&t);
    gc(&t, lmid, "concat axis 1", 0);
    gc(&t, llast, "concat axis -1", 0);
    gc(&t, lp, "concat unbatched axis 0", BATCH * (6 + 3 + 12 + 2) + 9);
    gc(&t, l6, "concat of 6 inputs", 0);
    /* the 6-way concat keeps the inputs' order */
    CHECK_OK(nb_forward(t.g, cat6));
    nb_real *cv = nb_value(t.g, cat6);
    int ok = 1, off = 0;
    for (int k = 0; k < 6; k++) {
        nb_real *xv = nb_value(t.g, six[k]);
        for (int r = 0; r < BATCH; r++)
            for (int j = 0; j < widths[k]; j++) ok &= cv[r * 12 + off + j] == xv[r * widths[k] + j];
        off += widths[k];
    }
    CHECK(ok);
    tb_free(&t);
}

/* ------------------------------------------------------------ losses */

static void test_mse(void) {
    nb_graph *g = nb_graph_new();
    int two = 2;
    nb_node p = nb_input(g, "p", 1, &two), y = nb_input(g, "y", 1, &two);
    nb_node l = nb_mse_loss(g, p, y);
    CHECK_OK(nb_set_input(g, p, (nb_real[]){1, 2, 3, 4}, 2));
    CHECK_OK(nb_set_input(g, y, (nb_real[]){0, 2, 5, 1}, 2));
    CHECK_OK(nb_forward(g, l));
    CHECK_CLOSE(nb_value(g, l)[0], (1 + 0 + 4 + 9) / 4.0, 1e-15, 0); /* mean over all 4 */
    nb_graph_free(g);

    tb t;
    tb_new(&t, 71);
    int sd[2] = {2, 3};
    nb_node a = tb_input(&t, 2, sd, 1), b = tb_input(&t, 2, sd, 1);
    nb_node w = tb_param(&t, 0, NULL);
    nb_node lm = nb_mul(t.g, nb_mse_loss(t.g, a, b), w);
    tb_fill(&t);
    gc(&t, lm, "mse_loss", 2 * BATCH * 6 + 1);
    tb_free(&t);
}

/* loss for logits x [2, 3] = [[0, 0, ln 2], [1000, 0, -1000]] */
static void test_cross_entropy_values(void) {
    for (int probs = 0; probs < 2; probs++) {
        nb_graph *g = nb_graph_new();
        int c = 3;
        nb_node x = nb_input(g, "x", 1, &c);
        nb_node t = probs ? nb_input(g, "t", 1, &c) : nb_input(g, "t", 0, NULL);
        nb_node l0 = nb_cross_entropy(g, x, t, 0);
        nb_node l1 = nb_cross_entropy(g, x, t, 0.1);
        CHECK_OK(nb_graph_status(g));
        CHECK_OK(nb_set_input(g, x, (nb_real[]){0, 0, log(2.0), 1000, 0, -1000}, 2));
        if (probs) /* one-hot rows: must agree with the labels 2 and 0 */
            CHECK_OK(nb_set_input(g, t, (nb_real[]){0, 0, 1, 1, 0, 0}, 2));
        else
            CHECK_OK(nb_set_input(g, t, (nb_real[]){2, 0}, 2));
        CHECK_OK(nb_forward(g, NB_NONE));
        /* row 0: p = [1/4, 1/4, 1/2], nll = ln 2; row 1: p = [1, e^-1000, 0] */
        double ln2 = log(2.0);
        CHECK_CLOSE(nb_value(g, l0)[0], (ln2 + 0) / 2, 1e-15, 1e-14);
        /* smoothing: 0.9 nll + 0.1/3 sum_c(-log p_c);
         * row 0: sum = 2 ln 4 + ln 2 = 5 ln 2; row 1: sum = 0 + 1000 + 2000 */
        double r0 = 0.9 * ln2 + 0.1 / 3 * 5 * ln2, r1 = 0.1 / 3 * 3000;
        CHECK_CLOSE(nb_value(g, l1)[0], (r0 + r1) / 2, 1e-12, 1e-13);
        nb_graph_free(g);
    }
    /* uniform logits: log C with or without smoothing */
    nb_graph *g = nb_graph_new();
    int c = 4;
    nb_node x = nb_input(g, "x", 1, &c), t = nb_input(g, "t", 0, NULL);
    nb_node l = nb_cross_entropy(g, x, t, 0.3);
    CHECK_OK(nb_set_input(g, x, (nb_real[]){7, 7, 7, 7}, 1));
    CHECK_OK(nb_set_input(g, t, (nb_real[]){3}, 1));
    CHECK_OK(nb_forward(g, l));
    CHECK_CLOSE(nb_value(g, l)[0], log(4.0), 1e-15, 1e-14);
    nb_graph_free(g);
}

static void test_cross_entropy_grad(void) {
    for (int probs = 0; probs < 2; probs++)
        for (int smooth = 0; smooth < 2; smooth++) {
            tb t;
            tb_new(&t, (uint64_t)(81 + 2 * probs + smooth));
            int c = 5;
            nb_node x = tb_input(&t, 1, &c, 1);
            nb_node y = probs ? tb_input(&t, 1, &c, 1) : nb_input(t.g, "labels", 0, NULL);
            nb_node w = tb_param(&t, 0, NULL);
            nb_node l = nb_mul(t.g, nb_cross_entropy(t.g, x, y, smooth ? 0.1 : 0), w);
            tb_fill(&t);
            nb_real *yv = nb_value(t.g, y);
            for (int r = 0; r < BATCH; r++) {
                if (!probs) yv[r] = (nb_real)((3 * r + 1) % c);
                else /* positive targets that need not sum to 1 */
                    for (int k = 0; k < c; k++) yv[r * c + k] = fabs(yv[r * c + k]);
            }
            char what[96];
            snprintf(what, sizeof what, "cross_entropy, %s targets, label smoothing %s",
                     probs ? "probability" : "class-index", smooth ? "0.1" : "0");
            gc(&t, l, what, BATCH * c * (probs ? 2 : 1) + 1);
            tb_free(&t);
        }
}

/* A graph of cross-entropy (label smoothing 0.1) over rows of C logits x
 * with class-index targets t, for a batch of `rows`. */
static nb_graph *ce_graph(int rows, int C, nb_node *x, nb_node *t, nb_node *l) {
    nb_graph *g = nb_graph_new();
    *x = nb_input(g, "x", 1, &C), *t = nb_input(g, "t", 0, NULL);
    *l = nb_cross_entropy(g, *x, *t, 0.1);
    CHECK_OK(nb_requires_grad(g, *x, 1));
    CHECK_OK(nb_graph_set_batch(g, rows));
    return g;
}

/* Many rows (300 samples of 7 classes, 100 of them ignored): rows run in
 * chunks in parallel, so the loss must be the same on 1 and 2 threads, bit
 * for bit, and the definition's mean; the gradient too; and of two labels
 * that are not class indices, the first (row 250) is the one reported. */
static void test_cross_entropy_rows(void) {
    enum { ROWS = 300, C = 7 };
    nb_node x, t, l;
    nb_graph *g = ce_graph(ROWS, C, &x, &t, &l);
    nb_rng r;
    nb_rng_seed(&r, 17);
    nb_real *xv = nb_value(g, x), *tv = nb_value(g, t);
    for (int k = 0; k < ROWS * C; k++) xv[k] = (nb_real)(4 * nb_rng_uniform(&r) - 2);
    for (int k = 0; k < ROWS; k++) tv[k] = k % 3 == 2 ? -100 : (nb_real)(k * 5 % C);
    double want = 0;
    for (int k = 0; k < ROWS; k++) {
        if (k % 3 == 2) continue;
        double m = -INFINITY, sum = 0, sum_logp = 0;
        for (int j = 0; j < C; j++) m = fmax(m, xv[k * C + j]);
        for (int j = 0; j < C; j++) sum += exp(xv[k * C + j] - m);
        for (int j = 0; j < C; j++) sum_logp += xv[k * C + j] - m - log(sum);
        want += -0.9 * (xv[k * C + (int)tv[k]] - m - log(sum)) - 0.1 / C * sum_logp;
    }
    want /= ROWS - ROWS / 3;
    nb_real loss[2], *grad[2];
    for (int th = 1; th <= 2; th++) {
        nb_set_threads(th);
        CHECK_OK(nb_forward(g, l));
        CHECK_OK(nb_backward(g, l));
        loss[th - 1] = nb_value(g, l)[0];
        grad[th - 1] = malloc(sizeof(nb_real) * ROWS * C);
        memcpy(grad[th - 1], nb_grad(g, x), sizeof(nb_real) * ROWS * C);
    }
    CHECK_CLOSE(loss[0], want, 1e-13, 1e-13);
    CHECKF(memcmp(&loss[0], &loss[1], sizeof loss[0]) == 0, "loss %.17g on 1 thread, %.17g on 2",
           (double)loss[0], (double)loss[1]);
    CHECK(memcmp(grad[0], grad[1], sizeof(nb_real) * ROWS * C) == 0);
    free(grad[0]), free(grad[1]);
    tv[250] = 7, tv[260] = 0.5;
    CHECK(nb_forward(g, l) == NB_ERR_ARG &&
          strstr(nb_last_error(), "cross_entropy: target[250] = 7 is not a class index"));
    nb_set_threads(1);
    nb_graph_free(g);
}

/* More classes than a block of the op's exponentials holds (5000 > 4096),
 * a row with one confident class (p near 1: the expm1 path) and one row
 * ignored: the loss and every gradient against the definition. */
static void test_cross_entropy_wide(void) {
    enum { ROWS = 4, C = 5000 };
    nb_node x, t, l;
    nb_graph *g = ce_graph(ROWS, C, &x, &t, &l);
    nb_real *xv = nb_value(g, x), *tv = nb_value(g, t);
    for (int k = 0; k < ROWS * C; k++) xv[k] = (nb_real)((k * 7919 % 1000) / 250.0 - 2);
    xv[1 * C + 4321] = 30; /* row 1: p of class 4321 near 1 */
    tv[0] = 4999, tv[1] = 4321, tv[2] = -100, tv[3] = 17;
    CHECK_OK(nb_forward(g, l));
    CHECK_OK(nb_backward(g, l));
    double want = 0, worst = 0;
    for (int r = 0; r < ROWS; r++) {
        if (r == 2) continue;
        double m = -INFINITY, sum = 0, sum_logp = 0;
        for (int j = 0; j < C; j++) m = fmax(m, xv[r * C + j]);
        for (int j = 0; j < C; j++) sum += exp(xv[r * C + j] - m);
        for (int j = 0; j < C; j++) {
            double lp = xv[r * C + j] - m - log(sum), q = 0.1 / C + (j == (int)tv[r]) * 0.9;
            sum_logp += lp;
            worst = fmax(worst, fabs(nb_grad(g, x)[r * C + j] - (exp(lp) - q) / 3));
        }
        want += -0.9 * (xv[r * C + (int)tv[r]] - m - log(sum)) - 0.1 / C * sum_logp;
    }
    CHECK_CLOSE(nb_value(g, l)[0], want / 3, 1e-12, 1e-12);
    CHECKF(worst <= 1e-15, "gradient off by %g", worst);
    for (int j = 0; j < C; j++) worst = fmax(worst, fabs(nb_grad(g, x)[2 * C + j]));
    CHECKF(worst <= 1e-15, "the ignored row has a gradient %g", worst);
    nb_graph_free(g);
}

static void test_bce(void) {
    /* values: x = 0 gives ln 2 for any target; large |x| stays finite */
    nb_graph *g = nb_graph_new();
    nb_node x = nb_input(g, "x", 0, NULL), y = nb_input(g, "y", 0, NULL);
    nb_node l = nb_bce_with_logits(g, x, y);
    CHECK_OK(nb_requires_grad(g, x, 1));
    CHECK_OK(nb_requires_grad(g, y, 1));
    CHECK_OK(nb_set_input(g, x, (nb_real[]){0, 0, 800, -800, 800, -800}, 6));
    CHECK_OK(nb_set_input(g, y, (nb_real[]){1, 0.3, 1, 0, 0, 1}, 6));
    CHECK_OK(nb_forward(g, l));
    /* terms: ln2, ln2, 0, 0, 800, 800 */
    CHECK_CLOSE(nb_value(g, l)[0], (2 * log(2.0) + 1600) / 6, 1e-13, 1e-14);
    CHECK_OK(nb_backward(g, l));
    /* d/dx = (sigmoid(x) - y)/6, d/dy = -x/6 */
    nb_real want_dx[6] = {0.5 - 1, 0.5 - 0.3, 0, 0, 1, -1};
    for (int k = 0; k < 6; k++) {
        CHECK_CLOSE(nb_grad(g, x)[k], want_dx[k] / 6, 1e-15, 1e-14);
        CHECK_CLOSE(nb_grad(g, y)[k], -nb_value(g, x)[k] / 6, 1e-15, 1e-14);
    }
    nb_graph_free(g);

    tb t;
    tb_new(&t, 91);
    int sd[2] = {2, 3};
    nb_node a = tb_input(&t, 2, sd, 1), b = tb_input(&t, 2, sd, 1);
    nb_node w = tb_param(&t, 0, NULL);
    nb_node lb = nb_mul(t.g, nb_bce_with_logits(t.g, nb_scale(t.g, a, 3), b), w);
    tb_fill(&t);
    gc(&t, lb, "bce_with_logits", 2 * BATCH * 6 + 1);
    tb_free(&t);
}

int main(void) {
    test_linear();
    test_dense();
    test_matmul();
    test_elementwise();
    test_scale_sum_mean();
    test_reshape_flatten();
    test_concat();
    test_mse();
    test_cross_entropy_values();
    test_cross_entropy_grad();
    test_cross_entropy_rows();
    test_cross_entropy_wide();
    test_bce();
    TEST_END();
}
