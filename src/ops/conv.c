/* 2-D convolution (cross-correlation, as PyTorch's Conv2d), NCHW.
 *
 * x [B, C, H, W], weight [C_out, C/groups, kh, kw], bias [C_out] ->
 * y [B, C_out, Ho, Wo] with Ho = (H + 2 ph - dh (kh - 1) - 1) / sh + 1.
 *
 * Lowered to GEMM through im2col (src/kernels/im2col.h).  Samples are taken
 * in chunks: the columns of `chunk` samples of one group sit side by side in
 * one matrix col [K, chunk*P] (K = C/groups*kh*kw, P = Ho*Wo), so each group
 * of each chunk is ONE product
 *     forward    Y  [Cog, chunk*P] = W_g [Cog, K] · col
 *     backward   dW_g += dY · col^T,   dcol = W_g^T · dY  -> col2im into dx
 * The chunk size is chosen below (target_columns); scratch holds one chunk,
 * whatever the batch size.
 * Y is in [channel, sample, position] order, so it is copied into NCHW (with
 * the bias added on the way); with a chunk of one sample the product writes
 * NCHW directly, and with nabla's AVX-512 kernel it packs col's panels
 * straight from the image (forward_sample), so col is never stored.
 * Backward recomputes the column matrices: keeping them
 * from forward costs K*P reals per sample of arena, and writing them all out
 * slowed forward by more than it saved in backward (measured on the
 * Fashion-MNIST CNN: +1.6 ms forward, -0.9 ms backward for the second layer).
 *
 * Scratch (from the arena, no allocation per call): per lane, col, K*chunk*P
 * reals, then, when chunk > 1, a relu is fused or a pool folded, Y / dY,
 * Cog*chunk*P reals,
 * then a private dW; after the lanes, with a fused relu and a bias, B*Co
 * channel sums (keep_sums); last, for a single sample with the direct
 * product, the kept weights (a copy of them and their packed panels).
 *
 * A relu that is the op's only consumer is fused (src/core/fusion.c): forward
 * writes the relu's value, each sample passed through the relu while it is
 * in cache; backward forms the op's output gradient one sample (or chunk) at
 * a time from the relu's gradient and output.  A max pool after the relu is
 * fused too: forward pools each sample in cache, backward starts from the
 * pool's gradient (pool.c does both, nb__maxpool_planes and
 * nb__maxpool_relu_backward_planes).  In eval mode a batch norm that is the
 * op's only consumer is folded in the same way, with its relu and pool
 * (nb__fold): each sample is normalised, passed through the relu and pooled
 * in cache.
 *
 * Settings: stride, padding, dilation and groups (nb_conv_settings). */
#include "../core/internal.h"
#include "../kernels/gemm.h"
#include "../kernels/parallel.h"
#include "../kernels/im2col.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Samples per chunk: with OpenBLAS, enough for about 1024 columns per
 * product (a product over a 11x11 image alone is too thin for it, and its
 * threads need width to split), but no more than fit SCRATCH_BUDGET reals of
 * col and Y (4 MiB in float).  nabla's own kernels (AVX-512, AVX2) handle one
 * image's product well, and threads split the batch instead, so there every
 * sample is one product written straight into the output: no copy of Y
 * forward and of dY backward (measured on the Fashion-MNIST CNN: 5% faster
 * per step than chunks of 256, 512 or 1024 columns on AVX-512, 5-8% on AVX2).
 * Large images always get one sample per product. */
static size_t target_columns(void) { return nb__gemm_kernel() <= NB__GEMM_AVX2 ? 1 : 1024; }
#define SCRATCH_BUDGET ((size_t)1 << 20)
#define AXIS_MAX 32767 /* largest stride, padding and dilation accepted */

typedef struct conv_shape {
    int B, C, Co, groups, Cg, Cog;
    int K;            /* rows of col: Cg*kh*kw                 */
    int P;            /* output positions per plane: Ho*Wo     */
    int chunk;        /* samples per product                   */
    int fuses_relu;   /* a relu is fused in (planned: scratch for it) */
    int folds_pool;   /* a pool is folded in, eval mode (planned: Y for it) */
    /* the products read straight from the image (nb__sgemm_avx512_direct)
     * that this shape takes on nabla's AVX-512 kernel at fp32: forward, and
     * backward's input gradient (a convolution of the padded output gradient
     * with the flipped weights); planned: room for their packed weights */
    int direct_fwd, direct_dx;
    /* a single sample with the direct product keeps its packed weights and
     * the weights they were packed from (kept_weights): in eval mode a call
     * whose weights are the same bits packs nothing */
    int keeps_packed;
    nb_conv_geom geom;
} conv_shape;

/* The direct product computes fewer padded values than the packed one
 * (tiles of 32 or 16 channels by up to 14 positions of a row, against
 * MR-row blocks by 32-position panels: rows of `terms` for the forward's
 * channels, or of the input gradient's column matrix).  Even a 3x3 window
 * on one channel (an image net's first layer, K = 9) pays for the tiles'
 * transposed stores: no column matrix is built (fashion_cnn's first layer
 * at batch 1 1.07x faster on one thread, and on two, where each thread
 * takes half a panel, each built all of that matrix). */
enum { DIRECT_MIN_K = 9, DIRECT_MAX_K = 2304 };

#ifdef NB_AVX512_GEMM
static int direct_pays(int channels, int K, int rows, int width, double packed) {
    if (K < DIRECT_MIN_K || K > DIRECT_MAX_K) return 0;
    int segs = (width + 13) / 14, per_row = (width + segs - 1) / segs;
    return (double)((channels + 15) / 16 * 16) * rows * segs * per_row * K < packed;
}
#endif

static void plan_direct(conv_shape *s) {
    s->direct_fwd = s->direct_dx = 0;
#ifdef NB_AVX512_GEMM
    const nb_conv_geom *g = &s->geom;
    const double panels = (s->P + 31) / 32 * 32;
    s->direct_fwd = s->groups == 1 && g->sw == 1 &&
                    direct_pays(s->Cog, s->K, g->Ho, g->Wo, (s->Cog + 3) / 4 * 4 * panels * s->K);
    /* the input gradient as a convolution needs stride 1 and padding that
     * leaves the flipped window inside the padded output gradient */
    const int K2 = s->Cog * g->kh * g->kw;
    s->direct_dx = s->groups == 1 && g->sh == 1 && g->sw == 1 &&
                   g->ph <= (g->kh - 1) * g->dh && g->pw <= (g->kw - 1) * g->dw &&
                   direct_pays(s->C, K2, g->H, g->W, (s->K + 11) / 12 * 12 * panels * s->Cog);
#endif
}

static conv_shape shape_of(const nb_graph *g, const nb_node_t *n) {
    const nb_node_t *x = &g->nodes[n->in[0]], *w = &g->nodes[n->in[1]];
    conv_shape s;
    s.B = x->dims[0];
    s.C = x->dims[1];
    s.Co = w->dims[0];
    const nb_conv_settings *cs = &n->settings.conv;
    s.groups = cs->groups;
    s.Cg = s.C / s.groups;
    s.Cog = s.Co / s.groups;
    s.geom = (nb_conv_geom){
        .C = s.Cg, .H = x->dims[2], .W = x->dims[3], .kh = w->dims[2], .kw = w->dims[3],
        .sh = cs->stride.h, .sw = cs->stride.w, .ph = cs->pad.h, .pw = cs->pad.w,
        .dh = cs->dilation.h, .dw = cs->dilation.w, .Ho = n->dims[2], .Wo = n->dims[3]};
    s.K = s.Cg * s.geom.kh * s.geom.kw;
    s.P = s.geom.Ho * s.geom.Wo;
    size_t fit = SCRATCH_BUDGET / ((size_t)(s.K + s.Cog) * (size_t)s.P);
    size_t want = (target_columns() + (size_t)s.P - 1) / (size_t)s.P;
    if (fit > want) fit = want;
    s.chunk = fit < 1 ? 1 : fit > (size_t)s.B ? s.B : (int)fit;
    s.fuses_relu = n->epilogue != 0;
    s.folds_pool = n->fold_pool != 0;
    plan_direct(&s);
    s.keeps_packed = s.B == 1 && s.direct_fwd;
    return s;
}

/* A fused relu (fusion.c) on one sample's or one row's values while they are
 * in cache: the relu's value in place, and backward the op's own gradient
 * from the relu's gradient and output. */
NB_VECTOR_LOOP static void relu_inplace(nb_real *restrict y, size_t n) { nb__relu_run(y, n); }

NB_VECTOR_LOOP static void relu_backward(const nb_real *restrict dy,
                                         const nb_real *restrict y, nb_real *restrict dx,
                                         size_t n) {
    for (size_t k = 0; k < n; k++) dx[k] = dy[k] * nb__relu_slope(y[k]);
}

/* Chunks run in parallel, one lane of scratch per part (nb__parallel): a
 * lane holds col, the chunk's Y / dY, and (lanes after the first) a private
 * dW that is added into the weight gradient once all parts are done.  Each
 * part always takes the same chunks and its own lane, so results do not
 * depend on which thread ran it. */
#define MAX_LANES 8

/* Room for the direct products' packed weights (forward's or backward's),
 * and for aligning them to 64 bytes (the kernel's aligned loads). */
static size_t weights_len(const conv_shape *s) {
#ifdef NB_AVX512_GEMM
    size_t fwd = s->direct_fwd ? nb__direct_packed_len(s->Cog, s->K) : 0;
    size_t dx = s->direct_dx ? nb__direct_packed_len(s->C, s->Cog * s->geom.kh * s->geom.kw) : 0;
    size_t len = fwd > dx ? fwd : dx;
    return len ? len + 64 / sizeof(nb_real) : 0;
#else
    (void)s;
    return 0;
#endif
}

static size_t lane_len(const conv_shape *s) {
    size_t cols = (size_t)s->chunk * (size_t)s->P;
    const int y = s->chunk > 1 || s->fuses_relu || s->folds_pool;
    return (size_t)s->K * cols + (y ? (size_t)s->Cog * cols : 0) + weights_len(s) +
           (size_t)s->Co * (size_t)s->K;
}

/* The first 64-byte boundary at or after p (the direct kernel's aligned loads). */
static nb_real *aligned_64(nb_real *p) {
    return (nb_real *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

/* A lane's packed weights: before its private dW, at the end. */
static nb_real *lane_weights(const conv_shape *s, nb_real *lane) {
    return aligned_64(lane + lane_len(s) - (size_t)s->Co * s->K - weights_len(s));
}

static int chunks_of(const conv_shape *s) { return (s->B + s->chunk - 1) / s->chunk; }

/* After the lanes, with a fused relu and a bias: the sums area (keep_sums). */
static size_t sums_len(const nb_node_t *n, const conv_shape *s) {
    return s->fuses_relu && n->nin == 3 ? (size_t)s->B * (size_t)s->Co : 0;
}

/* At the end of the scratch (conv_shape.keeps_packed): a copy of the weights
 * and their packed panels, 64-byte aligned. */
static size_t kept_len(const conv_shape *s) {
#ifdef NB_AVX512_GEMM
    if (s->keeps_packed)
        return (size_t)s->Co * s->K + nb__direct_packed_len(s->Cog, s->K) + 64 / sizeof(nb_real);
#endif
    (void)s;
    return 0;
}

#ifdef NB_AVX512_GEMM
typedef struct kept_weights {
    nb_real *copy, *packed;
} kept_weights;

static kept_weights kept_of(const nb_node_t *n, const conv_shape *s) {
    nb_real *copy = n->scratch + n->scratch_len - kept_len(s);
    return (kept_weights){copy, aligned_64(copy + (size_t)s->Co * s->K)};
}
#endif

static size_t conv_scratch(const nb_graph *g, const nb_node_t *n) {
    conv_shape s = shape_of(g, n);
    int lanes = nb_threads() < MAX_LANES ? nb_threads() : MAX_LANES;
    if (lanes > chunks_of(&s)) lanes = chunks_of(&s);
    return (size_t)lanes * lane_len(&s) + sums_len(n, &s) + kept_len(&s);
}

typedef struct conv_job {
    nb_graph *g;
    nb_node_t *n;
    conv_shape s;
    int parts;
    int assign_dx; /* backward: overwrite the input's gradient */
    nb_real *db;   /* backward: the bias gradient, or NULL */
    nb_real *sums; /* backward with a fused relu and db: [B, Co] channel sums */
    int dw_t;      /* backward: every part sums dW transposed (dw_transposed) */
    /* the relu applied in this pass (fusion.c), or NULL: forward writes its
     * value, backward reads its gradient and output instead of the op's own;
     * and the max pool after it, or NULL: then forward writes the pool's
     * value and backward reads the pool's gradient instead of the relu's */
    nb_node_t *relu, *pool;
    /* forward in eval mode: the batch norm folded in (nb__fold), or NULL;
     * relu and pool are then the fold's, applied after it */
    nb_node_t *bn;
} conv_job;

/* The node whose value forward writes (before a fused pool). */
static nb_node_t *written_node(const conv_job *j) {
    return j->relu ? j->relu : j->bn ? j->bn : j->n;
}

/* The relu is applied as the product is stored, unless a batch norm comes
 * first. */
static int relu_in_store(const conv_job *j) { return j->relu && !j->bn; }

/* What follows the product on planes [p0, p0 + count) of the output at y
 * (ld apart), while they are in cache: the folded batch norm (and its relu),
 * then the pool. */
static void after_product(const conv_job *j, size_t p0, size_t count, nb_real *y, size_t ld) {
    if (j->bn) nb__batch_norm_planes(j->g, j->bn, p0, count, y, ld, j->relu != NULL);
    if (j->pool && j->bn) nb__maxpool_planes_values(j->g, j->pool, p0, count, y, ld);
    else if (j->pool) nb__maxpool_planes(j->g, j->pool, p0, count, y, ld);
}

/* How many parts the scratch planned for this batch allows now.  Chunks run
 * in parallel and each product runs on its part's thread (inside a part
 * nb_gemm does not split it again): with OpenBLAS, chunks of about 1024
 * columns keep it busy, where splitting each thin product between threads
 * left the second thread half idle.  The portable kernel, a plain reference,
 * keeps one part and splits each product.  If the kernel changed since the
 * scratch was planned (tests switch kernels), the chunk falls back to one
 * sample, which any planned lane holds. */
static int parts_of(const nb_node_t *n, conv_shape *s) {
    size_t room = n->scratch_len - sums_len(n, s) - kept_len(s);
    if (room < lane_len(s)) s->chunk = 1;
    if (nb__gemm_kernel() == NB__GEMM_PORTABLE) return 1;
    size_t lanes = room / lane_len(s);
    int parts = nb_threads() < (int)lanes ? nb_threads() : (int)lanes;
    if (parts > chunks_of(s)) parts = chunks_of(s);
    return parts < 1 ? 1 : parts;
}

/* Chunks [*c0, *c1) of part p. */
static void part_chunks(const conv_job *j, int p, int *c0, int *c1) {
    size_t lo, hi;
    nb__part_range((size_t)chunks_of(&j->s), p, j->parts, 1, &lo, &hi);
    *c0 = (int)lo, *c1 = (int)hi;
}

/* im2col of samples s0 .. s0+nc-1, group grp, side by side in col. */
static void gather_columns(const conv_shape *s, const nb_real *x, int s0, int nc, int grp,
                           nb_real *col) {
    size_t plane = (size_t)s->geom.H * (size_t)s->geom.W, ld = (size_t)nc * s->P;
    for (int k = 0; k < nc; k++) {
        const nb_real *xs = x + ((size_t)(s0 + k) * s->C + (size_t)grp * s->Cg) * plane;
        nb_im2col(&s->geom, xs, col + (size_t)k * s->P, ld);
    }
}

/* One sample's product with its column matrix packed block by block
 * straight from the image (nb__sgemm_avx512_pack_b): no matrix written and
 * read back, no bias pass; the same results as im2col and nb_gemm.  Taken
 * where nb_gemm would run that kernel at fp32 without its matrix-vector path
 * (more than 4 output channels per group). */
typedef struct image_source {
    nb_conv_geom geom;
    const nb_real *x;
} image_source;

#ifdef NB_AVX512_GEMM
/* The image to pack from: with padding and stride 1 along columns, a copy
 * with the padding written out (into buf, the lane's column-matrix room,
 * which this path does not use), so that the blocks are packed by the
 * permutes of an unpadded image (2.7x faster than the masked loads the
 * padding takes, the copy included); the values are the same. */
static image_source image_of(const conv_shape *s, const nb_real *x, nb_real *buf) {
    image_source src = {.geom = s->geom, .x = x};
    const nb_conv_geom *g = &s->geom;
    const int H = g->H + 2 * g->ph, W = g->W + 2 * g->pw;
    if ((g->ph == 0 && g->pw == 0) || g->sw != 1 ||
        (size_t)g->C * H * W > (size_t)s->K * s->chunk * s->P)
        return src;
    nb_pad_image(g, x, buf);
    src.geom.H = H, src.geom.W = W, src.geom.ph = 0, src.geom.pw = 0;
    src.x = buf;
    return src;
}

static void pack_image(const void *ctx, int k0, int kc, int j0, int nv, float *dst) {
    const image_source *src = ctx;
    nb_im2col_block(&src->geom, src->x, k0, kc, j0, nv, dst, NB__PANEL);
}

static int packs_from_image(const nb_graph *g, const conv_shape *s) {
    return nb__gemm_kernel() == NB__GEMM_AVX512 && g->precision == NB_PRECISION_FP32 &&
           s->Cog > 4;
}

/* A single sample outside a parallel region (batch-1 inference) with a
 * fused (or folded) pool, or with the direct product: the output channels
 * are split between the threads, each computing its channels' product
 * (packing every panel of the image itself, or its panels of the weights),
 * then its batch norm, relu and pool in its own cache, so nothing runs
 * serially after the product and no thread reads what the other wrote.
 * Parts start on a multiple of 4 channels (a 4- or 8-row tile then ends each
 * part: the same multiply-add chains, the same bits as one product), of 16
 * with the direct product (half a panel of weights).  Otherwise the packed
 * product splits its columns, and each thread packs only its own panels
 * (batch-1 latency of the course's CNN 1.1x shorter than with the channel
 * split there). */
enum { CHANNEL_SPLIT_MIN_MACS = 1 << 16, PREFETCH_IMAGE_MAX = 8192 /* values: 32 KiB */ };

typedef struct channel_part {
    const conv_job *j;
    const image_source *src;
    const nb_real *w, *bias;
    nb_real *y;
    size_t plane0;
    int parts;
    const nb__direct_conv *direct; /* the product read from the image, or NULL */
    const kept_weights *kept;      /* its packed weights are kept, or NULL */
    int fresh;                     /* nothing kept yet under this plan */
} channel_part;

/* Channels [lo, hi) of the direct product's packed weights: kept ones (k
 * not NULL) are packed again only when never packed under this plan, or
 * when w's rows are not the same bits as the copy they were packed from. */
static void pack_channels(const conv_shape *s, const nb_real *w, const kept_weights *k,
                          int fresh, int lo, int hi, nb_real *packed) {
    const size_t at = (size_t)lo * s->K, bytes = (size_t)(hi - lo) * s->K * sizeof *w;
    if (k && !fresh && memcmp(k->copy + at, w + at, bytes) == 0) return;
    nb__direct_pack(w, s->Cog, s->K, lo, hi, packed);
    if (k) memcpy(k->copy + at, w + at, bytes);
}

/* The forward's direct product (conv_shape.direct_fwd) in *d, its term
 * offsets in off (room for DIRECT_MAX_K) and its weights packed in
 * `weights`, or NULL: not planned, or the image's padding is not written
 * out (image_of). */
static const nb__direct_conv *direct_of(const conv_shape *s, const image_source *src,
                                        const nb_real *weights, const nb_real *bias, int relu,
                                        nb_real *y, int *off, nb__direct_conv *d) {
    const nb_conv_geom *g = &src->geom;
    if (!s->direct_fwd || g->ph || g->pw) return NULL;
    for (int c = 0, k = 0; c < g->C; c++)
        for (int i = 0; i < g->kh; i++)
            for (int jk = 0; jk < g->kw; jk++, k++)
                off[k] = (c * g->H + i * g->dh) * g->W + jk * g->dw;
    *d = (nb__direct_conv){.M = s->Cog, .K = s->K, .packed = weights, .bias = bias,
                           .relu = relu, .x = src->x, .off = off, .rows = g->Ho,
                           .width = g->Wo, .row_step = (long)g->sh * g->W, .y = y};
    return d;
}

static void channels_forward(void *ctx, int part) {
    const channel_part *c = ctx;
    const conv_shape *s = &c->j->s;
    size_t lo, hi;
    nb__part_range((size_t)s->Cog, part, c->parts, c->direct ? 16 : 4, &lo, &hi);
    if (lo >= hi) return;
    /* part of a small image was written by the other cores (the previous
     * layer's channel parts): ask for all of its lines at once, not one by
     * one as the packing reaches them (CNN latency 1.055x shorter) */
    const nb_conv_geom *g = &c->src->geom;
    const size_t image = (size_t)g->C * g->H * g->W;
    if (image <= PREFETCH_IMAGE_MAX)
        for (size_t k = 0; k < image; k += 16) __builtin_prefetch(c->src->x + k, 0, 3);
    const size_t P = (size_t)s->P;
    if (c->direct) { /* this part's panels of the weights, then its product */
        pack_channels(s, c->w, c->kept, c->fresh, (int)lo, (int)hi, (nb_real *)c->direct->packed);
        nb__sgemm_avx512_direct(c->direct, (int)lo, (int)hi);
    } else {
        nb__sgemm_avx512_pack_b((int)(hi - lo), s->P, s->K, c->w + lo * s->K, s->K, pack_image,
                                c->src, c->bias ? c->bias + lo : NULL, relu_in_store(c->j),
                                c->y + lo * P, s->P);
    }
    after_product(c->j, c->plane0 + lo, hi - lo, c->y + lo * P, P);
}

/* How many channel parts a single sample takes here (1: none): parts of 8
 * channels or more, or with the direct product of whole half panels (a
 * thread then has nothing to pack but its own channels' weights). */
static int channel_parts(const conv_shape *s, int direct) {
    int threads = nb__free_threads();
    double macs = (double)s->Cog * s->P * s->K;
    if (threads < 2 || s->Cog < 16 || macs < CHANNEL_SPLIT_MIN_MACS) return 1;
    int parts = direct ? (s->Cog + 15) / 16 : s->Cog / 8;
    return parts < threads ? parts : threads;
}
#endif

/* Group grp of sample b, product straight into NCHW: bias first, then the
 * product added (the order packs_from_image keeps).  With a fused pool, the
 * product goes to ybuf instead, and the pool reads it there.  The direct
 * product's weights are packed into `weights` (the lane's) with a part's
 * first sample (*packed says whether they are). */
static void forward_sample(const conv_job *j, int b, int grp, nb_real *col, nb_real *ybuf,
                           nb_real *weights, int *packed) {
    const conv_shape *s = &j->s;
    const nb_node_t *x = nb__in(j->g, j->n, 0), *w = nb__in(j->g, j->n, 1);
    const nb_real *bias = j->n->nin == 3 ? nb__in(j->g, j->n, 2)->val + grp * s->Cog : NULL;
    const nb_real *wg = w->val + (size_t)grp * s->Cog * s->K;
    const size_t P = (size_t)s->P, plane = (size_t)s->geom.H * (size_t)s->geom.W;
    const nb_real *xs = x->val + ((size_t)b * s->C + (size_t)grp * s->Cg) * plane;
    const size_t plane0 = (size_t)b * s->Co + (size_t)grp * s->Cog; /* the first output plane */
    nb_real *y = j->pool ? ybuf : written_node(j)->val + plane0 * P;
#ifdef NB_AVX512_GEMM
    if (packs_from_image(j->g, s)) {
        image_source src = image_of(s, xs, col);
        /* in eval mode the weights rarely change between calls: keep them packed */
        nb_conv_settings *cs = &j->n->settings.conv;
        const int keep = s->keeps_packed && !j->g->training;
        const int fresh = !cs->packed_kept || cs->packed_plan != j->g->plan_id;
        kept_weights kw = keep ? kept_of(j->n, s) : (kept_weights){0};
        int off[DIRECT_MAX_K];
        nb__direct_conv d;
        const nb__direct_conv *direct = direct_of(s, &src, keep ? kw.packed : weights, bias,
                                                  relu_in_store(j), y, off, &d);
        int split = direct || j->pool ? channel_parts(s, direct != NULL) : 1;
        if (direct && keep) cs->packed_kept = 1, cs->packed_plan = j->g->plan_id;
        if (split > 1) { /* each part packs, computes and pools its own channels */
            channel_part c = {.j = j, .src = &src, .w = wg, .bias = bias, .y = y,
                              .plane0 = plane0, .parts = split, .direct = direct,
                              .kept = keep ? &kw : NULL, .fresh = fresh};
            nb__parallel(split, channels_forward, &c);
            *packed = 0;
            return;
        }
        if (direct && (keep || !*packed))
            pack_channels(s, wg, keep ? &kw : NULL, fresh, 0, s->Cog, (nb_real *)direct->packed);
        if (direct) *packed = 1, nb__sgemm_avx512_direct(direct, 0, s->Cog);
        else
            nb__sgemm_avx512_pack_b(s->Cog, s->P, s->K, wg, s->K, pack_image, &src, bias,
                                    relu_in_store(j), y, s->P);
    } else
#endif
    {
        (void)weights, (void)packed;
        nb_im2col(&s->geom, xs, col, P);
        for (int co = 0; co < s->Cog; co++) {
            nb_real v = bias ? bias[co] : R(0);
            for (size_t p = 0; p < P; p++) y[co * P + p] = v;
        }
        nb_gemm_at(j->g->precision, 0, 0, s->Cog, s->P, s->K, R(1), wg, s->K, col, s->P, R(1),
                   y, s->P);
        if (relu_in_store(j)) relu_inplace(y, (size_t)s->Cog * P);
    }
    /* the fused pool (after a folded batch norm) while the sample is in cache */
    after_product(j, plane0, (size_t)s->Cog, y, P);
}

static void forward_part(void *ctx, int part) {
    const conv_job *j = ctx;
    const conv_shape s = j->s;
    nb_node_t *n = j->n;
    const nb_node_t *x = nb__in(j->g, n, 0), *w = nb__in(j->g, n, 1);
    const nb_real *bias = n->nin == 3 ? nb__in(j->g, n, 2)->val : NULL;
    const size_t P = (size_t)s.P;
    nb_real *col = n->scratch + (size_t)part * lane_len(&s);
    nb_real *ybuf = col + (size_t)s.K * s.chunk * P;
    nb_real *weights = lane_weights(&s, col);
    int packed = 0; /* the direct product's weights, packed with the first sample */
    int c0, c1;
    part_chunks(j, part, &c0, &c1);
    for (int c = c0; c < c1; c++) {
        int s0 = c * s.chunk, nc = s.B - s0 < s.chunk ? s.B - s0 : s.chunk;
        size_t ld = (size_t)nc * P;
        for (int grp = 0; grp < s.groups; grp++) {
            if (s.chunk == 1) { /* one sample: the product lands in NCHW directly */
                forward_sample(j, s0, grp, col, ybuf, weights, &packed);
                continue;
            }
            const nb_real *wg = w->val + (size_t)grp * s.Cog * s.K;
            gather_columns(&s, x->val, s0, nc, grp, col);
            nb_gemm_at(j->g->precision, 0, 0, s.Cog, (int)ld, s.K, R(1), wg, s.K, col, (int)ld,
                       R(0), ybuf, (int)ld);
            for (int co = 0; co < s.Cog; co++) {
                int oc = grp * s.Cog + co;
                nb_real b = bias ? bias[oc] : R(0);
                for (int k = 0; k < nc; k++) {
                    nb_real *src = ybuf + co * ld + (size_t)k * P;
                    /* with a fused pool in place: the pool reads the chunk */
                    nb_real *dst = j->pool ? src
                                           : written_node(j)->val +
                                                 ((size_t)(s0 + k) * s.Co + oc) * P;
                    for (size_t p = 0; p < P; p++) dst[p] = src[p] + b;
                    if (relu_in_store(j)) relu_inplace(dst, P);
                    else if (j->bn && !j->pool)
                        nb__batch_norm_planes(j->g, j->bn, (size_t)(s0 + k) * s.Co + oc, 1, dst,
                                              P, j->relu != NULL);
                }
            }
            for (int k = 0; j->pool && k < nc; k++)
                after_product(j, (size_t)(s0 + k) * s.Co + (size_t)grp * s.Cog, (size_t)s.Cog,
                              ybuf + (size_t)k * P, ld);
        }
    }
}

static void conv_forward(nb_graph *g, nb_node_t *n) {
    conv_job j = {.g = g, .n = n, .s = shape_of(g, n), .relu = nb__epilogue(g, n)};
    j.pool = nb__epilogue_pool(g, j.relu);
    if (!j.relu) j.bn = nb__fold(g, n, &j.relu, &j.pool);
    if (j.bn) nb__batch_norm_fold_begin(g, j.bn);
    j.parts = parts_of(n, &j.s);
    /* a single part runs outside a region, so its product may use the threads */
    if (j.parts == 1) forward_part(&j, 0);
    else nb__parallel(j.parts, forward_part, &j);
}

/* Sums of `rows` runs of n values, ld apart: each with eight independent
 * partial sums (a single running sum is one long dependency chain the
 * compiler may not reorder), and the runs side by side, so that with eight
 * of them eight chains of additions keep both adders busy.  Inlined into
 * the loops below, compiled for each instruction set: a run's eight sums are
 * one 256-bit vector where the CPU has one.  A run's sum does not depend on
 * how many run beside it. */
NB_LOOP_BODY void sum_runs(const nb_real *d, size_t ld, size_t n, const int rows, nb_real *out) {
    nb_real part[8][8] = {{0}};
    size_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < 8; j++) part[r][j] += d[r * ld + k + j];
    for (int r = 0; r < rows; r++) {
        nb_real s = 0;
        for (size_t t = k; t < n; t++) s += d[r * ld + t];
        const nb_real *q = part[r];
        out[r] = s + (((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7])));
    }
}

NB_LOOP_BODY nb_real sum_run(const nb_real *d, size_t n) {
    nb_real s;
    sum_runs(d, 0, n, 1, &s);
    return s;
}

/* db[co] += the sum of dY over samples and positions, for the channels of
 * one part: each channel sums in sample order, however they are split. */
NB_VECTOR_LOOP static void bias_sums(const conv_job *j, int part) {
    size_t c0, c1;
    nb__part_range((size_t)j->s.Co, part, j->parts, 1, &c0, &c1);
    const size_t P = (size_t)j->s.P;
    for (int b = 0; b < j->s.B; b++)
        for (size_t co = c0; co < c1; co++)
            j->db[co] += sum_run(j->n->grad + ((size_t)b * j->s.Co + co) * P, P);
}

/* With a fused relu, the output gradient exists one sample (or chunk) at a
 * time: each sample's channel sums go to the sums area, and are added into
 * the bias gradient after the region, in the order bias_sums adds them. */
NB_VECTOR_LOOP static void keep_sums(const conv_job *j, int b, int grp, const nb_real *dy,
                                     size_t ld) {
    nb_real *out = j->sums + (size_t)b * j->s.Co + (size_t)grp * j->s.Cog;
    int co = 0;
    for (; co + 8 <= j->s.Cog; co += 8) sum_runs(dy + co * ld, ld, (size_t)j->s.P, 8, out + co);
    for (; co < j->s.Cog; co++) out[co] = sum_run(dy + co * ld, (size_t)j->s.P);
}

/* The weight gradient per sample, dW_g += dY · col^T, is a [Cog, K] product;
 * summed transposed, dW_g^T += col · dY^T, it is [K, Cog].  The kernel's
 * tiles are 12 rows by 32 columns, so the form whose shape fills them better
 * is taken: with K = 9 (a 3x3 kernel on one channel) the original form uses
 * 9 columns of 32, the transposed one 9 rows of 12; with K = 288 and 64
 * channels the transposed form fills every tile, and its packed operand is
 * dY (64 x 121) instead of col (288 x 121).  Each value is the same chain of
 * multiply-adds either way (rows and columns of a tile are computed alike),
 * so the results are the same bits: at fp32, on nabla's AVX-512 kernel, with
 * more than 4 rows in both forms, so that neither takes the few-rows path. */
static double tile_fill(int rows, int cols) {
    return (double)rows / (12.0 * ((rows + 11) / 12)) * (double)cols / (32.0 * ((cols + 31) / 32));
}

static int dw_transposed(const nb_graph *g, const conv_shape *s) {
    return nb__gemm_kernel() == NB__GEMM_AVX512 && g->precision == NB_PRECISION_FP32 &&
           s->chunk == 1 && s->K > 4 && s->Cog > 4 &&
           tile_fill(s->K, s->Cog) >= tile_fill(s->Cog, s->K);
}

/* Element (co, k) of group grp of dW [Co, K] and of its transpose, [K, Cog]
 * per group. */
static size_t dw_at(const conv_shape *s, int grp, int co, int k) {
    return ((size_t)grp * s->Cog + (size_t)co) * s->K + (size_t)k;
}
static size_t dw_t_at(const conv_shape *s, int grp, int co, int k) {
    return (size_t)grp * s->Cog * s->K + (size_t)k * s->Cog + (size_t)co;
}

/* dw_t = dw transposed; or back: dw = dw_t transposed, or dw += it (add). */
static void transpose_dw(const conv_shape *s, const nb_real *dw, nb_real *dw_t) {
    for (int grp = 0; grp < s->groups; grp++)
        for (int co = 0; co < s->Cog; co++)
            for (int k = 0; k < s->K; k++) dw_t[dw_t_at(s, grp, co, k)] = dw[dw_at(s, grp, co, k)];
}
static void untranspose_dw(const conv_shape *s, const nb_real *dw_t, nb_real *dw, int add) {
    for (int grp = 0; grp < s->groups; grp++)
        for (int co = 0; co < s->Cog; co++)
            for (int k = 0; k < s->K; k++) {
                nb_real v = dw_t[dw_t_at(s, grp, co, k)];
                dw[dw_at(s, grp, co, k)] = add ? dw[dw_at(s, grp, co, k)] + v : v;
            }
}

/* The output gradient of samples [s0, s0 + nc), group grp, for the
 * products: the op's own where it is written, or formed in dybuf from the
 * fused relu's or pool's (one sample: [channel, position]; a chunk:
 * [channel, sample, position]), with its channel sums kept for the bias. */
static const nb_real *chunk_dy(const conv_job *j, int s0, int nc, int grp, const nb_real *dy,
                               const nb_real *relu_out, nb_real *dybuf) {
    const conv_shape s = j->s;
    const size_t P = (size_t)s.P, ld = (size_t)nc * P;
    if (s.chunk == 1) {
        size_t plane0 = (size_t)s0 * s.Co + (size_t)grp * s.Cog;
        if (j->pool)
            nb__maxpool_relu_backward_planes(j->g, j->pool, plane0, (size_t)s.Cog, dybuf, P);
        else if (relu_out)
            relu_backward(dy + plane0 * P, relu_out + plane0 * P, dybuf, (size_t)s.Cog * P);
        if (!j->relu) return dy + plane0 * P;
        if (j->sums) keep_sums(j, s0, grp, dybuf, P);
        return dybuf;
    }
    for (int k = 0; j->pool && k < nc; k++)
        nb__maxpool_relu_backward_planes(j->g, j->pool,
                                         (size_t)(s0 + k) * s.Co + (size_t)grp * s.Cog,
                                         (size_t)s.Cog, dybuf + (size_t)k * P, ld);
    for (int co = 0; !j->pool && co < s.Cog; co++)
        for (int k = 0; k < nc; k++) {
            size_t at = ((size_t)(s0 + k) * s.Co + grp * s.Cog + co) * P;
            nb_real *to = dybuf + co * ld + (size_t)k * P;
            if (relu_out) relu_backward(dy + at, relu_out + at, to, P);
            else memcpy(to, dy + at, P * sizeof *dybuf);
        }
    for (int k = 0; j->sums && k < nc; k++) keep_sums(j, s0 + k, grp, dybuf + (size_t)k * P, ld);
    return dybuf;
}

/* dcol = W_g^T · dY (into col), scattered back into dx (col2im). */
static void dx_by_col2im(const conv_job *j, int s0, int nc, int grp, const nb_real *dyg,
                         nb_real *col) {
    const conv_shape s = j->s;
    const nb_node_t *x = nb__in(j->g, j->n, 0), *w = nb__in(j->g, j->n, 1);
    const size_t P = (size_t)s.P, ld = (size_t)nc * P;
    nb_gemm_at(j->g->precision, 1, 0, s.K, (int)ld, s.Cog, R(1),
               w->val + (size_t)grp * s.Cog * s.K, s.K, dyg, (int)ld, R(0), col, (int)ld);
    size_t plane = (size_t)s.geom.H * (size_t)s.geom.W;
    for (int k = 0; k < nc; k++) {
        nb_real *dx = x->grad + ((size_t)(s0 + k) * s.C + (size_t)grp * s.Cg) * plane;
        /* overwrite: zero the sample's planes just before, in cache */
        if (j->assign_dx) memset(dx, 0, (size_t)s.Cg * plane * sizeof *dx);
        nb_col2im(&s.geom, col + (size_t)k * P, ld, dx);
    }
}

#ifdef NB_AVX512_GEMM
/* ---- the input gradient as a direct convolution (conv_shape.direct_dx):
 * dx[c][h][w] = sum over (co, a, b) of W[co][c][kh-1-a][kw-1-b] dYpad[co][h +
 * a dh][w + b dw], dYpad the output gradient padded by (k - 1) d - p on
 * each side.  No column matrix is written and scattered back (col2im). */
typedef struct dx_direct {
    int Hq, Wq;              /* the padded output gradient's planes */
    int off[DIRECT_MAX_K];   /* term (co, a, b)'s offset in it */
    nb__direct_conv d;
} dx_direct;

/* Whether this part computes the input gradient directly: planned, the
 * kernel's, written whole (nothing to add to), and the padded output
 * gradient fits the lane's column room. */
static int dx_direct_usable(const conv_job *j, const nb_node_t *x) {
    const conv_shape *s = &j->s;
    const nb_conv_geom *g = &s->geom;
    size_t padded = (size_t)s->Cog * (g->Ho + 2 * ((g->kh - 1) * g->dh - g->ph)) *
                    (g->Wo + 2 * ((g->kw - 1) * g->dw - g->pw));
    return s->direct_dx && x->grad && j->assign_dx && s->chunk == 1 &&
           packs_from_image(j->g, s) && padded <= (size_t)s->K * s->P;
}

/* The flipped weights' panels (of the input channels), their term
 * offsets, and the product's fixed parts. */
static void dx_direct_begin(const conv_shape *s, const nb_real *w, nb_real *weights,
                            dx_direct *dd) {
    const nb_conv_geom *g = &s->geom;
    const int kh = g->kh, kw = g->kw, K2 = s->Cog * kh * kw;
    dd->Hq = g->Ho + 2 * ((kh - 1) * g->dh - g->ph);
    dd->Wq = g->Wo + 2 * ((kw - 1) * g->dw - g->pw);
    const int panels = (s->C + NB__PANEL - 1) / NB__PANEL * NB__PANEL;
    for (int c = 0; c < panels; c++) {
        nb_real *dst = weights + (size_t)(c / NB__PANEL) * NB__PANEL * K2 + c % NB__PANEL;
        for (int co = 0, k = 0; co < s->Cog; co++)
            for (int a = 0; a < kh; a++)
                for (int b = 0; b < kw; b++, k++)
                    dst[(size_t)k * NB__PANEL] =
                        c < s->C ? w[(((size_t)co * s->C + c) * kh + kh - 1 - a) * kw + kw - 1 - b]
                                 : R(0);
    }
    for (int co = 0, k = 0; co < s->Cog; co++)
        for (int a = 0; a < kh; a++)
            for (int b = 0; b < kw; b++, k++)
                dd->off[k] = (co * dd->Hq + a * g->dh) * dd->Wq + b * g->dw;
    dd->d = (nb__direct_conv){.M = s->C, .K = K2, .packed = weights, .off = dd->off,
                              .rows = g->H, .width = g->W, .row_step = dd->Wq};
}

/* One sample's input gradient from its output gradient dy ([Cog][P]), padded
 * into pad (the lane's column room). */
static void dx_direct_sample(const conv_shape *s, dx_direct *dd, const nb_real *dy, nb_real *pad,
                             nb_real *dx) {
    const nb_conv_geom *g = &s->geom;
    const int ph = (dd->Hq - g->Ho) / 2, pw = (dd->Wq - g->Wo) / 2;
    memset(pad, 0, (size_t)s->Cog * dd->Hq * dd->Wq * sizeof *pad);
    for (int co = 0; co < s->Cog; co++)
        for (int h = 0; h < g->Ho; h++)
            memcpy(pad + ((size_t)co * dd->Hq + ph + h) * dd->Wq + pw,
                   dy + ((size_t)co * g->Ho + h) * g->Wo, (size_t)g->Wo * sizeof *pad);
    dd->d.x = pad, dd->d.y = dx;
    nb__sgemm_avx512_direct(&dd->d, 0, s->C);
}
#endif

static void backward_part(void *ctx, int part) {
    const conv_job *j = ctx;
    const conv_shape s = j->s;
    nb_node_t *n = j->n, *x = nb__in(j->g, n, 0), *w = nb__in(j->g, n, 1);
    if (j->db && !j->sums) bias_sums(j, part);
    if (!x->grad && !w->grad && !j->sums) return;
    const size_t P = (size_t)s.P;
    /* the op's output gradient, or with a fused relu the relu's, turned into
     * the op's one sample (or chunk) at a time */
    const nb_real *dy = j->relu ? j->relu->grad : n->grad;
    const nb_real *relu_out = j->relu ? j->relu->val : NULL;
    if (j->pool) dy = relu_out = NULL; /* from the pool's gradient instead */
    nb_real *col = n->scratch + (size_t)part * lane_len(&s);
    nb_real *dybuf = col + (size_t)s.K * s.chunk * P;
    nb_real *dw = w->grad;
    if (w->grad && (part > 0 || j->dw_t)) { /* a private dW, added in after the region */
        dw = col + lane_len(&s) - (size_t)s.Co * s.K;
        if (part > 0) memset(dw, 0, (size_t)s.Co * s.K * sizeof *dw);
        else transpose_dw(&s, w->grad, dw); /* part 0 goes on from the gradient */
    }
#ifdef NB_AVX512_GEMM
    dx_direct dd;
    const int direct = dx_direct_usable(j, x);
    if (direct) dx_direct_begin(&s, w->val, lane_weights(&s, col), &dd);
#endif
    int c0, c1;
    part_chunks(j, part, &c0, &c1);
    for (int c = c0; c < c1; c++) {
        int s0 = c * s.chunk, nc = s.B - s0 < s.chunk ? s.B - s0 : s.chunk;
        size_t ld = (size_t)nc * P;
        for (int grp = 0; grp < s.groups; grp++) {
            const nb_real *dyg = chunk_dy(j, s0, nc, grp, dy, relu_out, dybuf);
            if (w->grad) { /* dW_g += dY · col^T */
                gather_columns(&s, x->val, s0, nc, grp, col);
                if (j->dw_t) /* dW_g^T += col · dY^T */
                    nb_gemm_at(j->g->precision, 0, 1, s.K, s.Cog, (int)ld, R(1), col, (int)ld,
                               dyg, (int)ld, R(1), dw + (size_t)grp * s.Cog * s.K, s.Cog);
                else
                    nb_gemm_at(j->g->precision, 0, 1, s.Cog, s.K, (int)ld, R(1), dyg, (int)ld,
                               col, (int)ld, R(1), dw + (size_t)grp * s.Cog * s.K, s.K);
            }
#ifdef NB_AVX512_GEMM
            if (direct) {
                size_t plane = (size_t)s.geom.H * (size_t)s.geom.W;
                dx_direct_sample(&s, &dd, dyg, col, x->grad + (size_t)s0 * s.C * plane);
                continue;
            }
#endif
            if (x->grad) dx_by_col2im(j, s0, nc, grp, dyg, col);
        }
    }
}

static void conv_backward(nb_graph *g, nb_node_t *n) {
    nb_node_t *x = nb__in(g, n, 0), *w = nb__in(g, n, 1);
    conv_job j = {.g = g, .n = n, .s = shape_of(g, n), .assign_dx = nb__grad_assign(n, 0),
                  .relu = nb__epilogue(g, n)};
    j.pool = nb__epilogue_pool(g, j.relu);
    const conv_shape s = j.s;
    for (int k = 1; k < n->nin; k++) nb__grad_add_only(g, n, k);
    if (n->nin == 3) j.db = nb__in(g, n, 2)->grad;
    if (!x->grad && !w->grad && !j.db) return;
    if (j.db && j.relu) j.sums = n->scratch + n->scratch_len - kept_len(&s) - sums_len(n, &s);
    j.parts = parts_of(n, &j.s);
    j.dw_t = w->grad && dw_transposed(g, &j.s);
    if (j.parts == 1) backward_part(&j, 0);
    else nb__parallel(j.parts, backward_part, &j);
    for (int b = 0; j.sums && b < s.B; b++) /* as bias_sums: channel by channel, in sample order */
        for (int co = 0; co < s.Co; co++) j.db[co] += j.sums[(size_t)b * s.Co + co];
    if (!w->grad) return;
    /* the parts' dW, in part order (part 0's own, when transposed) */
    for (int p = j.dw_t ? 0 : 1; p < j.parts; p++) {
        const nb_real *restrict src =
            n->scratch + (size_t)(p + 1) * lane_len(&j.s) - (size_t)s.Co * s.K;
        nb_real *restrict dw = w->grad;
        if (j.dw_t) untranspose_dw(&s, src, dw, p > 0);
        else
            for (size_t k = 0; k < (size_t)s.Co * s.K; k++) dw[k] += src[k];
    }
}

/* 2 per multiply-add: 2*C_out*(C/groups)*kh*kw*Ho*Wo per sample */
static double conv_flops(const nb_graph *g, const nb_node_t *n) {
    conv_shape s = shape_of(g, n);
    return 2.0 * s.B * s.Co * (double)s.K * s.P;
}

static const nb_op op_conv2d = {
    .name = "conv2d",
    .forward = conv_forward,
    .backward = conv_backward,
    .scratch = conv_scratch,
    .flops = conv_flops,
    .flags = NB_OP_ASSIGNS_GRAD | NB_OP_FUSES_RELU,
};

/* Output length along one axis, PyTorch's formula; may be < 1 (an error). */
static long long conv_out(int in, int k, int stride, int pad, int dil) {
    long long span = (long long)in + 2LL * pad - (long long)dil * (k - 1) - 1;
    return span < 0 ? 0 : span / stride + 1;
}

nb_node nb_conv2d(nb_graph *g, nb_node x, nb_node w, nb_node b, int stride_h, int stride_w,
                  int pad_h, int pad_w, int dil_h, int dil_w, int groups) {
    nb_node in[3] = {x, w, b};
    int nin = b == NB_NONE ? 2 : 3;
    if (!nb__begin(g, "conv2d", nin, in)) return NB_NONE;
    const nb_node_t *X = nb__node(g, x), *Wt = nb__node(g, w);
    char sx[96], sw[96], sb[96];
    nb_shape_str(sx, sizeof sx, X->ndim, X->dims);
    nb_shape_str(sw, sizeof sw, Wt->ndim, Wt->dims);
    if (X->ndim != 4)
        return nb__fail(g, NB_ERR_SHAPE, "conv2d: input '%s' has shape %s; expected [batch, "
                        "channels, height, width]", X->name, sx);
    if (Wt->ndim != 4 || Wt->batched)
        return nb__fail(g, NB_ERR_SHAPE, "conv2d: weight '%s' has shape %s; expected an "
                        "unbatched [out_channels, in_channels/groups, kh, kw]", Wt->name, sw);
    if (stride_h < 1 || stride_w < 1 || stride_h > AXIS_MAX || stride_w > AXIS_MAX)
        return nb__fail(g, NB_ERR_ARG, "conv2d: stride %dx%d must be 1 to %d", stride_h,
                        stride_w, AXIS_MAX);
    if (dil_h < 1 || dil_w < 1 || dil_h > AXIS_MAX || dil_w > AXIS_MAX)
        return nb__fail(g, NB_ERR_ARG, "conv2d: dilation %dx%d must be 1 to %d", dil_h, dil_w,
                        AXIS_MAX);
    if (pad_h < 0 || pad_w < 0 || pad_h > AXIS_MAX || pad_w > AXIS_MAX)
        return nb__fail(g, NB_ERR_ARG, "conv2d: padding %dx%d must be 0 to %d", pad_h, pad_w,
                        AXIS_MAX);
    int C = X->dims[1], Co = Wt->dims[0];
    if (groups < 1)
        return nb__fail(g, NB_ERR_ARG, "conv2d: groups %d is not positive", groups);
    if (C % groups != 0 || Co % groups != 0)
        return nb__fail(g, NB_ERR_SHAPE, "conv2d: %s of input %s and weight %s: %d input and "
                        "%d output channels must both be divisible by groups = %d",
                        C % groups ? "in_channels" : "out_channels", sx, sw, C, Co, groups);
    if (Wt->dims[1] != C / groups)
        return nb__fail(g, NB_ERR_SHAPE, "conv2d: input '%s' %s has %d channels, so weight "
                        "'%s' must be [%d, %d, kh, kw] (groups = %d), but it is %s", X->name,
                        sx, C, Wt->name, Co, C / groups, groups, sw);
    if (nin == 3) {
        const nb_node_t *Bn = nb__node(g, b);
        if (Bn->ndim != 1 || Bn->dims[0] != Co || Bn->batched)
            return nb__fail(g, NB_ERR_SHAPE, "conv2d: bias '%s' has shape %s; expected [%d] "
                            "for weight %s", Bn->name,
                            nb_shape_str(sb, sizeof sb, Bn->ndim, Bn->dims), Co, sw);
    }
    int kh = Wt->dims[2], kw = Wt->dims[3], H = X->dims[2], W = X->dims[3];
    long long Ho = conv_out(H, kh, stride_h, pad_h, dil_h);
    long long Wo = conv_out(W, kw, stride_w, pad_w, dil_w);
    if (Ho < 1 || Wo < 1)
        return nb__fail(g, NB_ERR_SHAPE, "conv2d: kernel %dx%d with dilation %dx%d spans "
                        "%lldx%lld, larger than the padded input %lldx%lld (input %s, "
                        "padding %dx%d)", kh, kw, dil_h, dil_w,
                        (long long)dil_h * (kh - 1) + 1, (long long)dil_w * (kw - 1) + 1,
                        (long long)H + 2LL * pad_h, (long long)W + 2LL * pad_w, sx, pad_h,
                        pad_w);
    /* one sample's column matrix is addressed with int leading dimensions */
    if ((double)Ho * (double)Wo * (double)(C / groups) * kh * kw > 2147483647.0)
        return nb__fail(g, NB_ERR_SHAPE, "conv2d: input %s with weight %s: the column matrix "
                        "of one sample would exceed 2^31 values", sx, sw);
    int dims[4] = {X->dims[0], Co, (int)Ho, (int)Wo};
    nb_node h = nb__add_node(g, &op_conv2d, nin, in, 4, dims, X->batched);
    if (h == NB_NONE) return NB_NONE;
    nb__node(g, h)->settings.conv = (nb_conv_settings){
        .stride = {stride_h, stride_w}, .pad = {pad_h, pad_w}, .dilation = {dil_h, dil_w},
        .groups = groups};
    return h;
}

nb_node nb_conv2d_layer(nb_graph *g, nb_node x, int out_channels, int kh, int kw,
                        const nb_conv_opts *opts, const char *name) {
    if (!nb__begin(g, "conv2d", 1, &x)) return NB_NONE;
    const nb_node_t *X = nb__node(g, x);
    char sx[96];
    nb_shape_str(sx, sizeof sx, X->ndim, X->dims);
    if (X->ndim != 4)
        return nb__fail(g, NB_ERR_SHAPE, "conv2d: input '%s' has shape %s; expected [batch, "
                        "channels, height, width]", X->name, sx);
    if (out_channels <= 0 || kh <= 0 || kw <= 0)
        return nb__fail(g, NB_ERR_ARG, "conv2d: out_channels %d and kernel %dx%d must be "
                        "positive", out_channels, kh, kw);
    nb_conv_opts o = {0};
    if (opts) o = *opts;
    /* zero fields mean PyTorch's defaults */
    if (o.stride_h == 0) o.stride_h = 1;
    if (o.stride_w == 0) o.stride_w = 1;
    if (o.dil_h == 0) o.dil_h = 1;
    if (o.dil_w == 0) o.dil_w = 1;
    if (o.groups == 0) o.groups = 1;
    int C = X->dims[1];
    if (o.groups < 1 || C % o.groups != 0 || out_channels % o.groups != 0)
        return nb__fail(g, NB_ERR_SHAPE, "conv2d: input %s has %d channels and the layer %d "
                        "output channels; both must be divisible by groups = %d", sx, C,
                        out_channels, o.groups);
    char base[48], pname[64];
    if (name && name[0]) snprintf(base, sizeof base, "%s", name);
    else nb__auto_name(g, "conv", base, sizeof base);
    double fan_in = (double)(C / o.groups) * kh * kw;
    if (o.weight_init.kind == NB_INIT_DEFAULT) o.weight_init.kind = NB_INIT_TORCH_LINEAR;
    if (o.bias_init.kind == NB_INIT_DEFAULT) {
        /* PyTorch: bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in of the weight */
        double bound = 1.0 / sqrt(fan_in);
        o.bias_init = (nb_init){.kind = NB_INIT_UNIFORM, .a = -bound, .b = bound};
    }
    int wd[4] = {out_channels, C / o.groups, kh, kw};
    snprintf(pname, sizeof pname, "%s.weight", base);
    nb_node w = nb_param(g, pname, 4, wd, o.weight_init);
    if (w == NB_NONE) return NB_NONE;
    nb_node b = NB_NONE;
    if (!o.no_bias) {
        snprintf(pname, sizeof pname, "%s.bias", base);
        b = nb_param(g, pname, 1, &out_channels, o.bias_init);
        if (b == NB_NONE) return NB_NONE;
    }
    nb_node y = nb_conv2d(g, x, w, b, o.stride_h, o.stride_w, o.pad_h, o.pad_w, o.dil_h,
                          o.dil_w, o.groups);
    if (y != NB_NONE)
        nb__set_name(g, y, base);
    return y;
}
