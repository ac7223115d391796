/*
 * nabla.h — the public API of nabla, a small neural-network training library.
 *
 * A model is a static computation graph: build it once from nb_* calls, then
 * run nb_forward / nb_backward as often as you like.  Backward is reverse-mode
 * automatic differentiation over the DAG, so any node may feed several others
 * (skip connections are just an nb_add).
 *
 * Conventions
 *  - Every call that can fail returns an nb_status (or NB_NONE / NULL) and
 *    leaves a message in nb_last_error().  The library never prints, exits or
 *    aborts on user error.
 *  - Node-building calls return a node handle (>= 0) or NB_NONE.  Passing
 *    NB_NONE as an input makes the next call return NB_NONE too, keeping the
 *    first error message, so a whole model can be built and checked once:
 *    nb_graph_status(g).
 *  - Tensors are float32, row-major, with up to NB_MAX_DIMS dimensions.
 *    Inputs are "batched": their first dimension is the mini-batch size, chosen
 *    at run time (train with 128, predict with 1, same graph).  Parameters and
 *    constants are not batched.
 *  - Every random choice comes from an explicit seed; same seed, same thread
 *    count => bit-identical results.
 */
#ifndef NABLA_H
#define NABLA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What this header declares is the library's interface: exported from the
 * shared library, which is built with every other symbol hidden. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#define NB_VERSION "0.1.0"

/* The scalar type.  Always float in the installed library; the test suite
 * also builds the library with doubles to check gradients exactly. */
#ifdef NB_REAL_DOUBLE
typedef double nb_real;
#else
typedef float nb_real;
#endif

#define NB_MAX_DIMS 6
#define NB_MAX_INPUTS 4
#define NB_NONE (-1)

/* ------------------------------------------------------------------ errors */

typedef enum nb_status {
    NB_OK = 0,
    NB_ERR_ARG,     /* NULL pointer, out-of-range value, unknown option      */
    NB_ERR_SHAPE,   /* incompatible tensor shapes                            */
    NB_ERR_STATE,   /* call not valid now (e.g. backward before forward)     */
    NB_ERR_NOMEM,   /* allocation failed                                     */
    NB_ERR_IO,      /* a file could not be read or written                   */
    NB_ERR_FORMAT,  /* malformed or hostile input data                       */
    NB_ERR_NUMERIC  /* NaN or infinity where a finite number is required     */
} nb_status;

/* Message describing the last error on this thread ("" if none). */
const char *nb_last_error(void);
/* Short name of a status code, e.g. "shape error". */
const char *nb_status_name(nb_status s);
/* Forget the last error message. */
void nb_clear_error(void);
/* Set the message nb_last_error() returns (for code built on nabla that
 * reports through the same channel); returns s. */
nb_status nb_set_error(nb_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Threads of the library: matrix products, convolutions, large elementwise
 * ops and optimiser updates split their work over this many (the caller and
 * a pool of workers that sleep when idle).  Default: OpenBLAS's default
 * (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, else the cores); without BLAS,
 * the cores.  Results are repeatable for a given thread count. */
nb_status nb_set_threads(int threads);
int nb_threads(void);
/* The matrix kernels in use, for reports: "nabla-avx512 (...)" (nabla's own
 * single-precision kernel, chosen when the CPU has AVX-512), "nabla-avx2
 * (...)" (its kernel for CPUs with AVX2 and FMA but not AVX-512), "OpenBLAS
 * Haswell" (OpenBLAS and the kernel family it chose from the CPU or from the
 * environment variable OPENBLAS_CORETYPE), or "portable".  The environment
 * variable NB_GEMM=avx2, NB_GEMM=openblas or NB_GEMM=portable selects another
 * kernel. */
const char *nb_blas_core(void);

/* NULL, or a sentence saying why the matrix products run slower than this
 * CPU allows: OpenBLAS runs them (NB_GEMM=openblas, or a double build) with
 * kernels for an older CPU than this one (it does not know this one, or
 * OPENBLAS_CORETYPE asks for them); the sentence says which, and names the
 * OPENBLAS_CORETYPE that selects the right ones.  `nabla train` prints it. */
const char *nb_blas_warning(void);

/* --------------------------------------------------------------------- rng */

/* xoshiro256** generator.  The state is plain data so it can be saved in a
 * checkpoint and restored bit-exactly. */
typedef struct nb_rng {
    uint64_t s[4];
} nb_rng;

void nb_rng_seed(nb_rng *r, uint64_t seed);
uint64_t nb_rng_u64(nb_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double nb_rng_uniform(nb_rng *r);
/* Standard normal (Box-Muller, no cached second value). */
double nb_rng_normal(nb_rng *r);
/* Uniform integer in [0, n) without modulo bias; n > 0. */
uint64_t nb_rng_below(nb_rng *r, uint64_t n);
/* Fisher-Yates shuffle of idx[0..n). */
void nb_rng_shuffle(nb_rng *r, size_t *idx, size_t n);

/* ---------------------------------------------------------------- initialisers */

/* The formulas, and which PyTorch function each follows: docs/definitions.md. */

typedef enum nb_init_kind {
    NB_INIT_DEFAULT = 0,     /* the layer's own default (PyTorch's); for a bare
                                nb_param: TORCH_LINEAR, or zeros below 2 dims    */
    NB_INIT_ZEROS,
    NB_INIT_CONSTANT,        /* value a                                           */
    NB_INIT_UNIFORM,         /* U(a, b)                                           */
    NB_INIT_NORMAL,          /* N(mean a, std b)                                  */
    NB_INIT_XAVIER_UNIFORM,  /* bound gain*sqrt(6/(fan_in+fan_out))               */
    NB_INIT_XAVIER_NORMAL,   /* std gain*sqrt(2/(fan_in+fan_out))                 */
    NB_INIT_LECUN_UNIFORM,   /* bound sqrt(3/fan_in)   (variance 1/fan_in)        */
    NB_INIT_LECUN_NORMAL,    /* std 1/sqrt(fan_in)                                */
    NB_INIT_KAIMING_UNIFORM, /* bound gain*sqrt(3/fan)                            */
    NB_INIT_KAIMING_NORMAL,  /* std gain/sqrt(fan)                                */
    NB_INIT_TORCH_LINEAR     /* PyTorch's nn.Linear/Conv default: U(+-1/sqrt(fan_in)) */
} nb_init_kind;

typedef enum nb_fan_mode { NB_FAN_IN = 0, NB_FAN_OUT = 1 } nb_fan_mode;

typedef enum nb_nonlinearity {
    NB_NL_LINEAR = 0, NB_NL_SIGMOID, NB_NL_TANH, NB_NL_RELU,
    NB_NL_LEAKY_RELU, NB_NL_SELU
} nb_nonlinearity;

/* An initialiser.  Zero-initialise it and set what you need; gain 0 means
 * the kind's default (1 for Xavier, sqrt(2) for Kaiming). */
typedef struct nb_init {
    nb_init_kind kind;
    double a, b;        /* CONSTANT: value a; UNIFORM: [a,b); NORMAL: mean a, std b */
    double gain;
    nb_fan_mode mode;   /* Kaiming only */
} nb_init;

/* PyTorch's torch.nn.init.calculate_gain; param is the leaky-ReLU slope
 * (negative: use the default 0.01). */
double nb_init_gain(nb_nonlinearity nl, double param);

/* Fans of a weight tensor as PyTorch computes them:
 * fan_in = dims[1]*prod(dims[2:]), fan_out = dims[0]*prod(dims[2:]). */
nb_status nb_init_fans(int ndim, const int *dims, double *fan_in, double *fan_out);

/* Fill w (shape dims) from init using r. */
nb_status nb_init_tensor(nb_real *w, int ndim, const int *dims, nb_init init, nb_rng *r);

/* --------------------------------------------------------------------- graph */

typedef struct nb_graph nb_graph;
typedef int nb_node;

nb_graph *nb_graph_new(void);
void nb_graph_free(nb_graph *g);
/* NB_OK, or the status of the first failed node-building call. */
nb_status nb_graph_status(const nb_graph *g);

/* Leaves. */
/* A batched input: its shape is [batch, sample_dims...]. */
nb_node nb_input(nb_graph *g, const char *name, int ndim, const int *sample_dims);
/* A trainable parameter, filled by nb_graph_init. */
nb_node nb_param(nb_graph *g, const char *name, int ndim, const int *dims, nb_init init);
/* A constant tensor (values copied; not trained). values may be NULL (zeros). */
nb_node nb_constant(nb_graph *g, const char *name, int ndim, const int *dims,
                    const nb_real *values);

/* Layers: create their parameters and return the output node. */
typedef struct nb_dense_opts {
    int no_bias;          /* non-zero: y = x W^T                       */
    nb_init weight_init;  /* default: PyTorch's Linear init            */
    nb_init bias_init;    /* default: U(+-1/sqrt(in_features))         */
} nb_dense_opts;
/* y = x W^T + b with W [out, in], b [out].  Parameters are named
 * "<name>.weight" and "<name>.bias" (name NULL: "dense<k>").  x is [B, in]
 * (or any shape whose last dim is in; leading dims are rows). opts may be NULL. */
nb_node nb_dense(nb_graph *g, nb_node x, int out_features, const char *name,
                 const nb_dense_opts *opts);

/* Ops. */
nb_node nb_linear(nb_graph *g, nb_node x, nb_node w, nb_node b /* may be NB_NONE */);
/* a [M, K] (rows may be batched) times b [K, N] -> [M, N]. */
nb_node nb_matmul(nb_graph *g, nb_node a, nb_node b);
/* Elementwise with broadcasting of the smaller operand over the leading rows
 * of the larger: equal shapes, trailing-shape match ([B,N] with [N] or [1,N]),
 * or a single element. */
nb_node nb_add(nb_graph *g, nb_node a, nb_node b);
nb_node nb_sub(nb_graph *g, nb_node a, nb_node b);
nb_node nb_mul(nb_graph *g, nb_node a, nb_node b);
nb_node nb_scale(nb_graph *g, nb_node x, nb_real s);
/* Sum or mean of all elements -> a scalar (shape [], not batched). */
nb_node nb_sum(nb_graph *g, nb_node x);
nb_node nb_mean(nb_graph *g, nb_node x);
/* New shape for the same elements.  For a batched x, dims are the per-sample
 * dims (the batch dimension is kept); one dim may be -1 (inferred). */
nb_node nb_reshape(nb_graph *g, nb_node x, int ndim, const int *dims);
/* [B, d1, d2, ...] -> [B, d1*d2*...]; an unbatched tensor keeps its dim 0
 * the same way ([d0, d1, ...] -> [d0, d1*...]). */
nb_node nb_flatten(nb_graph *g, nb_node x);
/* Concatenate n tensors along axis (counted on the full shape, so axis 1 is
 * the feature axis of a batched [B, F] tensor; the batch axis is not allowed;
 * a negative axis counts from the end).  Any n >= 1. */
nb_node nb_concat(nb_graph *g, int n, const nb_node *xs, int axis);

/* Activations. */
nb_node nb_relu(nb_graph *g, nb_node x);
nb_node nb_leaky_relu(nb_graph *g, nb_node x, nb_real slope);
nb_node nb_abs(nb_graph *g, nb_node x);
nb_node nb_sigmoid(nb_graph *g, nb_node x);
nb_node nb_tanh(nb_graph *g, nb_node x);
/* Softmax / log-softmax over the last dimension. */
nb_node nb_softmax(nb_graph *g, nb_node x);
nb_node nb_log_softmax(nb_graph *g, nb_node x);
/* GELU, exact (erf) or with PyTorch's tanh approximation. */
nb_node nb_gelu(nb_graph *g, nb_node x, int tanh_approx);
nb_node nb_silu(nb_graph *g, nb_node x);
/* Hardswish (PyTorch's nn.Hardswish): x relu6(x + 3) / 6. */
nb_node nb_hardswish(nb_graph *g, nb_node x);
nb_node nb_elu(nb_graph *g, nb_node x, nb_real alpha);
nb_node nb_softplus(nb_graph *g, nb_node x, nb_real beta, nb_real threshold);

/* Normalisation (PyTorch's BatchNorm1d/2d and LayerNorm).  Zero-initialise
 * the options for the defaults, or pass NULL. */
typedef struct nb_norm_opts {
    double eps;        /* added to the variance; 0: 1e-5                         */
    double momentum;   /* batch norm: weight of the new batch in the running
                          statistics, in (0, 1]; 0: 0.1                          */
    int no_affine;     /* non-zero: no weight and bias (y = x-hat)               */
} nb_norm_opts;
/* Batch normalisation of x [B, C] or [B, C, spatial...] (e.g. [B, C, H, W]):
 * statistics per channel (dim 1) over all other dims, n = B*H*W values.
 * Parameters "<name>.weight" (ones) and "<name>.bias" (zeros), each [C],
 * unless no_affine; buffers "<name>.running_mean" (zeros), "<name>.running_var"
 * (ones), each [C], and "<name>.num_batches_tracked" (a scalar count), as in
 * PyTorch's state_dict (name NULL: "batch_norm<k>").
 * Training mode: y = (x - mean) / sqrt(var + eps) * weight + bias with the
 * batch mean and biased variance; every training forward also updates
 *   running_mean = (1 - m) running_mean + m mean,
 *   running_var  = (1 - m) running_var  + m var * n / (n - 1)   (unbiased)
 * and adds 1 to num_batches_tracked, once per nb_forward.  n = 1 makes
 * nb_forward fail (NB_ERR_ARG).  Eval mode: the running statistics are used
 * and nothing is updated; the layer is then an affine map. */
nb_node nb_batch_norm(nb_graph *g, nb_node x, const char *name, const nb_norm_opts *opts);
/* Layer normalisation over the last normalized_ndim dims of x (not the
 * batch dim), biased variance, the same in training and eval.  Parameters
 * "<name>.weight" (ones) and "<name>.bias" (zeros) shaped like those dims,
 * unless no_affine (name NULL: "layer_norm<k>"); momentum is not used. */
nb_node nb_layer_norm(nb_graph *g, nb_node x, int normalized_ndim, const char *name,
                      const nb_norm_opts *opts);

/* Inverted dropout: in training mode y = x * mask / (1 - p), each mask
 * element 1 with probability 1 - p, drawn from the graph's generator
 * (nb_graph_rng) once per nb_forward; in eval mode, and for p = 0, y = x.
 * p in [0, 1). */
nb_node nb_dropout(nb_graph *g, nb_node x, nb_real p);

/* Convolution and pooling, on NCHW images x [B, C, H, W] (PyTorch's
 * definitions; output sizes as in torch.nn.Conv2d / MaxPool2d / AvgPool2d). */
/* Cross-correlation with w [C_out, C/groups, kh, kw] and b [C_out] (may be
 * NB_NONE) -> [B, C_out, Ho, Wo], Ho = (H + 2 pad_h - dil_h (kh-1) - 1) / stride_h + 1.
 * stride and dilation >= 1, padding >= 0 (zeros); C and C_out divisible by groups. */
nb_node nb_conv2d(nb_graph *g, nb_node x, nb_node w, nb_node b, int stride_h, int stride_w,
                  int pad_h, int pad_w, int dil_h, int dil_w, int groups);
/* Options of nb_conv2d_layer; a zero-filled struct is PyTorch's default
 * (stride 1, padding 0, dilation 1, groups 1, bias, PyTorch's init). */
typedef struct nb_conv_opts {
    int stride_h, stride_w;  /* 0: 1                                         */
    int pad_h, pad_w;
    int dil_h, dil_w;        /* 0: 1                                         */
    int groups;              /* 0: 1                                         */
    int no_bias;
    nb_init weight_init;     /* default: U(+-1/sqrt(fan_in)), fan_in = C/groups*kh*kw */
    nb_init bias_init;       /* default: U(+-1/sqrt(fan_in))                 */
} nb_conv_opts;
/* A conv layer: creates "<name>.weight" [out_channels, C/groups, kh, kw] and
 * "<name>.bias" [out_channels] (name NULL: "conv<k>"); opts may be NULL. */
nb_node nb_conv2d_layer(nb_graph *g, nb_node x, int out_channels, int kh, int kw,
                        const nb_conv_opts *opts, const char *name);
/* Pooling windows kh x kw; stride 0 means the kernel size; padding at most
 * half the kernel.  ceil_mode rounds the output size up, but the last window
 * must start inside the input or its left padding.  Every window overlaps
 * the input. */
/* Max: padding counts as -inf; the first maximum in row-major order wins and
 * gets the gradient; NaN propagates. */
nb_node nb_max_pool2d(nb_graph *g, nb_node x, int kh, int kw, int stride_h, int stride_w,
                      int pad_h, int pad_w, int ceil_mode);
/* Mean over each window.  count_include_pad: divide by the window size
 * clipped to the padded input (PyTorch's default), else by the number of
 * input elements in it. */
nb_node nb_avg_pool2d(nb_graph *g, nb_node x, int kh, int kw, int stride_h, int stride_w,
                      int pad_h, int pad_w, int ceil_mode, int count_include_pad);
/* Mean over H and W: [B, C, H, W] -> [B, C]. */
nb_node nb_global_avg_pool2d(nb_graph *g, nb_node x);

/* A residual connection: main_path + x when their shapes agree, else
 * main_path + batchnorm(conv1x1(x)) with the stride that maps x's image size
 * to main_path's (ResNet's projection shortcut; parameters and buffers
 * "<name>.downsample.0.weight", "<name>.downsample.1.*"). */
nb_node nb_residual(nb_graph *g, nb_node main_path, nb_node x, const char *name);

/* Multi-head self-attention over sequences x [B, T, D], PyTorch's
 * nn.MultiheadAttention(D, heads, batch_first=True) with query = key = value
 * = x: parameters "<name>.in_proj_weight" [3D, D] (xavier_uniform),
 * "<name>.in_proj_bias" [3D] (zeros), "<name>.out_proj.weight" [D, D] and
 * "<name>.out_proj.bias" [D] (zeros) (name NULL: "attention<k>").  D must be
 * a multiple of heads.  causal: position i attends to positions 0..i only. */
nb_node nb_attention(nb_graph *g, nb_node x, int heads, int causal, const char *name);
/* Its core, scaled dot-product attention per head, on the packed in-projection
 * qkv [B, T, 3D] (q, k, v along the last dim; head h owns columns h*D/heads ..
 * of each): softmax(q k^T / sqrt(D/heads)) v -> [B, T, D]. */
nb_node nb_dot_product_attention(nb_graph *g, nb_node qkv, int heads, int causal);

/* Sequences (docs/sequences.md).  Token ids travel as reals holding whole
 * numbers: a batch of sequences is an input [B, T] of ids. */
/* An embedding table "<name>.weight" [vocab, dim], drawn from N(0, 1) like
 * PyTorch's nn.Embedding (name NULL: "embedding<k>"): ids [B, ...] ->
 * [B, ..., dim], each id picking its row.  An id that is not an integer in
 * [0, vocab) makes nb_forward return NB_ERR_ARG naming the sample of the
 * batch and the position (its row of the output is NaN). */
nb_node nb_embedding(nb_graph *g, nb_node ids, int vocab, int dim, const char *name);
/* The same lookup in a given table [V, D] (a parameter or constant). */
nb_node nb_embedding_lookup(nb_graph *g, nb_node ids, nb_node table);
/* Learned positional embeddings: x [B, T, D] + a table "<name>.weight"
 * [T, D] (N(0, 1), name NULL: "pos_embedding<k>"), the same rows for every
 * sample: row t is added at position t. */
nb_node nb_pos_embedding(nb_graph *g, nb_node x, const char *name);
/* Recurrent layers with PyTorch's equations and gate order: nn.RNN (tanh),
 * nn.LSTM (gates i, f, g, o) and nn.GRU (r, z, n with
 * n = tanh(W_in x + b_in + r (W_hn h + b_hn))), one layer, batch_first,
 * h0 = c0 = 0.  x [B, T, D] -> every state [B, T, H], or with last_only the
 * last one [B, H].  Parameters "<name>.weight_ih_l0" [G*H, D],
 * "<name>.weight_hh_l0" [G*H, H], "<name>.bias_ih_l0" and
 * "<name>.bias_hh_l0" [G*H] (G = 1, 4, 3), all U(+-1/sqrt(H)) as in PyTorch
 * (name NULL: "rnn<k>", "lstm<k>", "gru<k>"). */
typedef enum nb_rnn_kind { NB_RNN_TANH = 0, NB_LSTM, NB_GRU } nb_rnn_kind;
nb_node nb_recurrent(nb_graph *g, nb_node x, nb_rnn_kind kind, int hidden, int last_only,
                     const char *name);

/* Losses (each returns a scalar, averaged like PyTorch's 'mean' reduction). */
/* Mean of (pred - target)^2 over all elements. */
nb_node nb_mse_loss(nb_graph *g, nb_node pred, nb_node target);
/* Cross-entropy from logits [B, C] (stable log-softmax).  target is either
 * [B] class indices (stored as reals) or [B, C] probabilities.
 * label_smoothing in [0, 1).  A class index that is not an integer in [0, C)
 * makes nb_forward return NB_ERR_ARG (the loss is NaN).  Logits [B, T, C]
 * are T positions per sample, with targets [B, T] of class indices or
 * [B, T, C] of probabilities: the loss is the mean over all positions.
 * Index targets equal to -100 (PyTorch's default ignore_index) are left out
 * of the mean. */
nb_node nb_cross_entropy(nb_graph *g, nb_node logits, nb_node target,
                         nb_real label_smoothing);
/* The same with another ignore_index: index targets equal to it are left
 * out of the mean (a batch in which every target is left out has loss 0
 * and zero gradients; PyTorch gives 0/0 there). */
nb_node nb_cross_entropy_ignore(nb_graph *g, nb_node logits, nb_node target,
                                nb_real label_smoothing, int ignore_index);
/* Binary cross-entropy with logits, mean over all elements. */
nb_node nb_bce_with_logits(nb_graph *g, nb_node logits, nb_node target);

/* Inspection. */
int nb_graph_node_count(const nb_graph *g);
const char *nb_node_name(const nb_graph *g, nb_node n);
/* Name of the op that made node n ("input", "param", "buffer", "constant",
 * "linear", "relu", "conv2d", ...). */
const char *nb_node_op(const nb_graph *g, nb_node n);
/* Node by name, or NB_NONE. */
nb_node nb_find(const nb_graph *g, const char *name);
/* Current shape (batch dimension = current batch size, 1 before any is set). */
nb_status nb_node_shape(const nb_graph *g, nb_node n, int *ndim, int dims[NB_MAX_DIMS]);
size_t nb_node_numel(const nb_graph *g, nb_node n);
int nb_node_is_batched(const nb_graph *g, nb_node n);
/* Floating-point operations of n's forward computation at the current batch
 * size (0 for leaves). */
double nb_node_flops(const nb_graph *g, nb_node n);
/* Per-op timing.  With on != 0, every later forward and backward adds the
 * wall-clock seconds of each node's op to that node's totals, from zero
 * (calling it again restarts them); on = 0 stops and frees them.  An op that
 * another computes (a relu in its product's store) has no time of its own. */
nb_status nb_graph_time_ops(nb_graph *g, int on);
/* Node n's forward and backward seconds since nb_graph_time_ops (either
 * pointer may be NULL); NB_ERR_ARG when timing is off. */
nb_status nb_node_times(const nb_graph *g, nb_node n, double *forward_s, double *backward_s);

/* Parameters: all values in one flat buffer, all gradients in another. */
size_t nb_param_count(const nb_graph *g);      /* number of scalars            */
int nb_param_tensor_count(const nb_graph *g);   /* number of parameter tensors  */
nb_node nb_param_tensor(const nb_graph *g, int i); /* i-th parameter node       */
nb_real *nb_params(nb_graph *g);
nb_real *nb_grads(nb_graph *g);
/* Buffers: state that ops update and that is saved with the weights but not
 * trained (batch norm's running statistics).  Each is a node with a name;
 * read or write its values with nb_value.  Not in nb_params / nb_grads. */
int nb_buffer_count(const nb_graph *g);
nb_node nb_buffer_tensor(const nb_graph *g, int i); /* i-th buffer node */
/* Change a parameter's initialiser (before nb_graph_init). */
nb_status nb_param_set_init(nb_graph *g, nb_node p, nb_init init);
/* Initialise every parameter from its initialiser, drawing from r; reset
 * every buffer to its initial value; then seed the graph's generator with
 * one more draw from r. */
nb_status nb_graph_init(nb_graph *g, nb_rng *r);
/* The generator of the random ops (dropout).  A new graph is seeded with 0;
 * nb_graph_init and nb_graph_seed reseed it.  Its state is plain data, saved
 * in checkpoints, and may be copied in and out. */
nb_rng *nb_graph_rng(nb_graph *g);
void nb_graph_seed(nb_graph *g, uint64_t seed);
/* frozen non-zero: random ops reuse the numbers of their last forward (a
 * dropout keeps its mask) instead of drawing new ones, e.g. to check
 * gradients or to compare two forwards.  Where there is no earlier draw for
 * the current batch size, one is made. */
void nb_graph_freeze_random(nb_graph *g, int frozen);

/* The arithmetic of the matrix products: dense and matmul layers and
 * convolutions, forward and backward.  NB_PRECISION_FP32 (the default):
 * float throughout.  NB_PRECISION_BF16: each product's operands are rounded
 * to bfloat16 (to nearest even) and the products summed in float, with AMX
 * or AVX512-BF16 instructions; parameters (the master weights), gradients,
 * optimiser state, activations, reductions, the loss, and the products inside
 * attention and recurrent layers stay float.  Where
 * the CPU lacks AVX512-BF16, and in the double-precision build, setting
 * NB_PRECISION_BF16 fails with NB_ERR_STATE saying what the CPU has. */
typedef enum nb_precision { NB_PRECISION_FP32 = 0, NB_PRECISION_BF16 = 1 } nb_precision;
nb_status nb_graph_set_precision(nb_graph *g, nb_precision precision);
nb_precision nb_graph_precision(const nb_graph *g);
/* "fp32" or "bf16"; nb_precision_parse reads them (NB_ERR_ARG otherwise). */
const char *nb_precision_name(nb_precision precision);
nb_status nb_precision_parse(const char *text, nb_precision *out);

/* Execution. */
/* Size activation memory for this batch size.  Memory is allocated only
 * when the batch grows; training at a fixed batch never allocates. */
nb_status nb_graph_set_batch(nb_graph *g, int batch);
int nb_graph_batch(const nb_graph *g);
/* Copy batch * sample-numel values into an input (sets the batch size).  A
 * new batch size asks for every input again. */
nb_status nb_set_input(nb_graph *g, nb_node input, const nb_real *data, int batch);
/* Pointer to a node's current value / gradient (NULL if it has none).  An
 * input's values may be written through it: it then counts as set.  A
 * convolution whose only consumer is a relu computes the relu's value in its
 * own pass (and, when a max pool is the relu's only consumer, the pool's),
 * leaving its own value and gradient unwritten (and the relu's, before a
 * pool); a dense layer whose only consumer is a relu leaves its own value
 * unwritten.  These two calls fill them in first, from the parameters as
 * they are then, so call them again after each nb_forward / nb_backward
 * rather than reading through a pointer kept from an earlier one, and read
 * such nodes before changing the parameters (or call nb_graph_fill_fused
 * first).  An op's gradient is that of the last nb_backward until the next
 * nb_forward.  A reshape or flatten that is the only consumer of an op (or
 * of an input without a gradient) shares that node's memory. */
nb_real *nb_value(nb_graph *g, nb_node n);
nb_real *nb_grad(nb_graph *g, nb_node n);
/* Fill in now every value and gradient the last passes' fused ops left
 * unwritten (see nb_value), so that they read as the unfused ops would
 * have written them even after the parameters change (an optimiser step):
 * call it between nb_backward and the step when the nodes will be read
 * after it.  Costs about one unfused pass over those nodes. */
nb_status nb_graph_fill_fused(nb_graph *g);
/* Mark a non-parameter leaf as needing a gradient (for gradient checks). */
nb_status nb_requires_grad(nb_graph *g, nb_node n, int on);
/* Freeze (frozen 1) or unfreeze (0) a parameter, for fine-tuning: training
 * (nb_train_step, nb_fit) leaves a frozen parameter's values and optimiser
 * state as they are.  It has no gradient (nb_grad gives NULL): backward
 * computes none for it, nor for the parts of the graph that lead only to
 * frozen parameters.  Buffers (batch-norm statistics) still update in train
 * mode, as in PyTorch; use eval mode to keep them too. */
nb_status nb_param_freeze(nb_graph *g, nb_node param, int frozen);
int nb_param_is_frozen(const nb_graph *g, nb_node param);
/* Freeze or unfreeze every parameter whose name matches a glob pattern
 * (fnmatch: "*" and "?" match any characters, dots too; "[...]" a set), as
 * in "1.*" or "fc3.weight".  *count (may be NULL) gets how many matched. */
nb_status nb_freeze_matching(nb_graph *g, const char *pattern, int frozen, int *count);
/* The unfrozen parameters' positions in nb_params: *n [begin, end) pairs,
 * for nb_optim_step_ranges.  Valid until the graph's parameters or frozen
 * set change. */
const size_t *nb_trainable_ranges(const nb_graph *g, int *n);
/* Compute target and everything it depends on (target NB_NONE: all nodes).
 * Bad data found while running (e.g. a class label out of range) is
 * reported here; every node is still computed (with NaN where the data was
 * bad) and nb_backward refuses to run on that forward.  NB_ERR_STATE, naming
 * it, if an input the target needs has not been set for this batch size. */
nb_status nb_forward(nb_graph *g, nb_node target);
/* Reverse-mode autodiff from a scalar node, after nb_forward.  Gradients are
 * added into parameter gradients (call nb_zero_grad between steps, as in
 * PyTorch); activation gradients start from zero each call. */
nb_status nb_backward(nb_graph *g, nb_node loss);
void nb_zero_grad(nb_graph *g);
/* nb_zero_grad then nb_backward, with the same result, but faster: the
 * parameter gradients are not zeroed in a pass of their own first, the
 * first op to write each one overwrites it instead (as PyTorch's
 * zero_grad(set_to_none=True) before backward).  A failing backward leaves
 * them zeroed, as nb_zero_grad would. */
nb_status nb_backward_zeroed(nb_graph *g, nb_node loss);
/* Train mode (default) or eval mode, for ops that differ (dropout, batch norm). */
void nb_graph_set_training(nb_graph *g, int training);
/* Where this graph's batch starts within a larger batch split over
 * processes (0, the default: it is the whole batch).  Dropout draws each
 * sample's mask from the sample's index in the larger batch, so processes
 * that split a batch draw what one process holding all of it draws.  nb_fit
 * sets it for each step; a program that splits batches over processes
 * itself and calls nb_train_step sets it before each step.  first < 0 is
 * NB_ERR_ARG. */
nb_status nb_graph_set_sample_offset(nb_graph *g, long first);

/* Compare the gradient of scalar node loss with respect to every parameter
 * and every leaf marked with nb_requires_grad against central differences
 * with step eps.  Passes when |analytic - numeric| <= atol + rtol*|numeric|
 * everywhere.  A scalar outside that is measured again with step eps/100:
 * a difference that straddles a kink (a ReLU input or a max-pool switch
 * within eps) is not a derivative.  Inputs must be set; parameters are
 * restored afterwards.
 * It runs forward many times in the current mode: random ops draw once, in
 * the first forward, and are frozen for the rest (as nb_graph_freeze_random);
 * afterwards the buffers (batch-norm statistics), the generator and the
 * freeze flag are put back as they were, so a check disturbs no training. */
typedef struct nb_gradcheck_report {
    size_t checked;          /* scalars compared                      */
    size_t failed;           /* scalars outside the tolerance         */
    double max_abs_err;
    nb_node worst_node;      /* node holding the worst scalar         */
    size_t worst_index;      /* its flat index in that node           */
    double worst_analytic, worst_numeric;
} nb_gradcheck_report;
nb_status nb_gradcheck(nb_graph *g, nb_node loss, double eps, double atol, double rtol,
                       nb_gradcheck_report *report);
/* The same, comparing at most max_per_tensor evenly spaced scalars of each
 * tensor (0: all) — for large models. */
nb_status nb_gradcheck_sampled(nb_graph *g, nb_node loss, double eps, double atol,
                               double rtol, size_t max_per_tensor,
                               nb_gradcheck_report *report);

/* ---------------------------------------------------------------- optimisers */

/* The update rules, PyTorch's and the exponential-average momentum:
 * docs/definitions.md, Optimisers. */

typedef enum nb_optim_kind {
    NB_OPT_SGD = 0,     /* PyTorch SGD: weight decay, classical momentum, Nesterov */
    NB_OPT_MOMENTUM_EMA,/* exponential average v = beta v + (1-beta) g, theta -= lr v */
    NB_OPT_ADAGRAD,
    NB_OPT_RMSPROP,
    NB_OPT_ADAM,
    NB_OPT_ADAMW
} nb_optim_kind;

typedef struct nb_optim_config {
    nb_optim_kind kind;
    double lr;
    double weight_decay;     /* L2 added to the gradient; decoupled for AdamW   */
    double momentum;         /* SGD, RMSProp: mu                                */
    double dampening;        /* SGD                                             */
    int nesterov;            /* SGD                                             */
    double beta;             /* MOMENTUM_EMA                                    */
    double beta1, beta2;     /* Adam, AdamW                                     */
    double eps;              /* Adam, AdamW, RMSProp, AdaGrad                   */
    int amsgrad;             /* Adam, AdamW                                     */
    double alpha;            /* RMSProp smoothing constant                      */
    int centered;            /* RMSProp                                         */
    double lr_decay;         /* AdaGrad                                         */
    double initial_accumulator; /* AdaGrad                                      */
} nb_optim_config;

/* PyTorch's defaults for kind (lr 1e-3 for Adam/AdamW, 1e-2 otherwise). */
nb_optim_config nb_optim_defaults(nb_optim_kind kind);
/* Parse "sgd", "momentum", "nesterov", "ema-momentum", "adagrad", "rmsprop",
 * "adam", "adamw" into defaults for that optimiser. */
nb_status nb_optim_parse(const char *name, nb_optim_config *out);
const char *nb_optim_name(nb_optim_kind kind);
/* Check a configuration's fields (nb_optim_new does); NB_ERR_ARG with a
 * message naming the field if invalid. */
nb_status nb_optim_check(const nb_optim_config *cfg);

typedef struct nb_optim nb_optim;
/* An optimiser for n scalars (all state allocated here, once). */
nb_optim *nb_optim_new(const nb_optim_config *cfg, size_t n);
void nb_optim_free(nb_optim *o);
/* One update of params from grads with learning rate lr (from a schedule). */
nb_status nb_optim_step(nb_optim *o, nb_real *params, const nb_real *grads, double lr);
/* The same step on the values in n_ranges [begin, end) pairs only
 * (ranges[2r], ranges[2r + 1]; in order, not overlapping): the others, and
 * their optimiser state, stay as they are; weight decay does not touch them
 * either.  nb_trainable_ranges gives a graph's unfrozen parameters. */
nb_status nb_optim_step_ranges(nb_optim *o, nb_real *params, const nb_real *grads, double lr,
                               const size_t *ranges, int n_ranges);
/* Steps taken so far (t in the bias corrections). */
long nb_optim_steps(const nb_optim *o);
/* Number of parameters the optimiser was made for. */
size_t nb_optim_size(const nb_optim *o);
/* The state buffers as one flat array (for checkpoints): *n scalars. */
nb_real *nb_optim_state(nb_optim *o, size_t *n);
nb_status nb_optim_set_steps(nb_optim *o, long steps);
const nb_optim_config *nb_optim_get_config(const nb_optim *o);

/* Scale grads so their global L2 norm is at most max_norm; returns the norm
 * before clipping (PyTorch's clip_grad_norm_, eps 1e-6). */
double nb_clip_grad_norm(nb_real *grads, size_t n, double max_norm);

/* --------------------------------------------------------------- schedules */

/* The schedules and their defaults: docs/definitions.md, Learning-rate schedules. */

typedef enum nb_schedule_kind {
    NB_SCHED_CONSTANT = 0,
    NB_SCHED_STEP,         /* base * gamma^floor(e / step_size)                 */
    NB_SCHED_EXPONENTIAL,  /* base * gamma^e                                    */
    NB_SCHED_COSINE,       /* eta_min + (base-eta_min)(1+cos(pi e/t_max))/2     */
    NB_SCHED_WARMUP,       /* PyTorch LinearLR: base*(s + (f-s) min(T,e)/T)     */
    NB_SCHED_LINEAR_DECAY  /* (1-e/tau) base + (e/tau) lr_tau, then lr_tau         */
} nb_schedule_kind;

typedef struct nb_schedule {
    nb_schedule_kind kind;
    int step_size;          /* STEP                                   */
    double gamma;           /* STEP, EXPONENTIAL                      */
    int t_max;              /* COSINE                                 */
    double eta_min;         /* COSINE                                 */
    double start_factor, end_factor; /* WARMUP                        */
    int total_iters;        /* WARMUP                                 */
    int tau;                /* LINEAR_DECAY                           */
    double lr_tau;          /* LINEAR_DECAY                           */
} nb_schedule;

/* PyTorch's defaults for kind (gamma 0.1, start_factor 1/3, ...). */
nb_schedule nb_schedule_defaults(nb_schedule_kind kind);
nb_status nb_schedule_parse(const char *name, nb_schedule *out);
const char *nb_schedule_name(nb_schedule_kind kind);
/* Learning rate at counter e (e >= 0; counted in epochs by the trainer). */
double nb_schedule_lr(const nb_schedule *s, double base_lr, long e);
/* Check a schedule's fields; NB_ERR_ARG with a message if invalid. */
nb_status nb_schedule_check(const nb_schedule *s);

/* ----------------------------------------------------------------- training */

/* The training data is an nb_data (see "training data" below): what the
 * loaders return, or nb_data_from_reals for arrays already in memory. */
typedef struct nb_data nb_data;

typedef struct nb_epoch_stats {
    int epoch;               /* 1-based                                  */
    long step;               /* optimiser steps so far                   */
    double lr;
    double train_loss;       /* mean per sample over the epoch (a resumed
                                epoch: over the batches run since)     */
    double train_acc;        /* -1 when no output node is given          */
    double val_loss, val_acc;/* -1 when there is no validation set       */
    double seconds;          /* wall time of the epoch                   */
} nb_epoch_stats;

/* Called after every epoch; return non-zero to stop training. */
typedef int (*nb_epoch_callback)(const nb_epoch_stats *stats, void *user);

typedef struct nb_batch_stats {
    int epoch;               /* 1-based                                  */
    size_t batch, batches;   /* 1-based index in the epoch; per epoch    */
    long step;               /* optimiser steps so far                   */
    double loss;             /* this batch's loss                        */
    double epoch_loss;       /* mean loss of the epoch's batches so far  */
    double loss_weight;      /* what the batch's loss averaged: its
                                samples, or the positions that count of a
                                loss per position; the epoch's loss is the
                                batch losses' mean with these weights     */
    size_t correct, counted; /* accuracy of the batch (cfg.output set):
                                right predictions of the rows or positions
                                counted                                   */
    int batch_size;          /* samples of this batch (over all processes) */
} nb_batch_stats;

/* Called after every optimiser step; return non-zero to stop training
 * (nb_fit then returns NB_OK with the epoch unfinished). */
typedef int (*nb_batch_callback)(const nb_batch_stats *stats, void *user);

/* Called by nb_train_step between backward and clipping with the flat
 * gradient buffer (nb_grads): the one place where gradients of several
 * processes are combined (summed or averaged) before every process takes
 * the same optimiser step.  Return NB_OK, or an error to stop the step. */
typedef nb_status (*nb_gradient_hook)(nb_real *grads, size_t n, void *user);

/* ------------------------------------------------- several processes (MPI) */

/* A group of processes that train one model together (data parallelism,
 * docs/scaling.md): each has the same graph and takes its own slice of every
 * batch; one sum of the gradients per step makes every process take the same
 * optimiser step.  The sums are in a fixed order (rank 0 + rank 1 + ...), so
 * a given number of processes always gives the same bits, whatever the
 * transport's own reduction order.  Set cfg.dist and nb_fit does the rest.
 *
 * A group is made from a transport: nb_dist_mpi (Open MPI; in the separate
 * library nabla_mpi, so that libnabla needs no MPI), or any other through
 * nb_dist_new. */
typedef struct nb_dist nb_dist;

/* A transport: collective calls every process of the group makes in the same
 * order.  bytes is the size of one process's block. */
typedef struct nb_dist_ops {
    /* every process's `in` into `out` of every process, in rank order */
    nb_status (*allgather)(void *ctx, const void *in, void *out, size_t bytes);
    /* block j of `in` goes to rank j; block j of `out` comes from rank j */
    nb_status (*alltoall)(void *ctx, const void *in, void *out, size_t bytes);
    /* buf of rank 0 into buf of every process */
    nb_status (*broadcast)(void *ctx, void *buf, size_t bytes);
    void (*free_ctx)(void *ctx); /* NULL: nothing to free */
} nb_dist_ops;

/* A group of `size` processes over ops (copied); this one is `rank`.  NULL
 * on a bad argument or out of memory (nb_last_error). */
nb_dist *nb_dist_new(const nb_dist_ops *ops, void *ctx, int rank, int size);
/* The group of an MPI communicator: comm points to an MPI_Comm (so this
 * header needs no mpi.h), e.g. nb_dist_mpi(&MPI_COMM_WORLD) after MPI_Init.
 * Defined in libnabla_mpi (built when MPI is found): link it before nabla
 * with your MPI's flags (mpicc).  The communicator is used, not freed. */
nb_dist *nb_dist_mpi(const void *comm);
void nb_dist_free(nb_dist *d);
int nb_dist_rank(const nb_dist *d);
int nb_dist_size(const nb_dist *d);
/* v[0..n) := the sum over the processes of their v, in rank order (each
 * element accumulated in double), the same bits on every process.  Its cost
 * is that of a ring allreduce: each process sends and receives
 * 2 (size-1)/size of the buffer (an all-to-all, then an all-gather). */
nb_status nb_dist_sum(nb_dist *d, nb_real *v, size_t n);
/* The same for a few doubles (statistics), through one all-gather. */
nb_status nb_dist_sum_f64(nb_dist *d, double *v, size_t n);
/* bytes of rank 0's buf into every process's buf. */
nb_status nb_dist_broadcast(nb_dist *d, void *buf, size_t bytes);
/* Rank 0's training state into every process: the parameters, the buffers
 * (batch norm statistics), the graph's generator, and opt's state and step
 * count (opt may be NULL).  Fails, on every process, when the processes
 * hold graphs or optimisers of different sizes. */
nb_status nb_dist_broadcast_state(nb_dist *d, nb_graph *g, nb_optim *opt);
/* on: g's batch norms normalise with the statistics of the global batch, and
 * their backward uses its sums (synchronised batch norm): two sums of 2C+1
 * doubles over the processes per batch norm of C channels per step, and in
 * nb_train_step one sum of 2 doubles after the forward, by which all
 * processes run the backward or none does.  Every forward and backward of g
 * in training mode is then a collective call.  off
 * (the default): each process's own slice.  No effect for a single process. */
nb_status nb_dist_sync_batch_norm(nb_dist *d, nb_graph *g, int on);

typedef struct nb_fit_config {
    nb_node input, target, loss;
    nb_node output;          /* scores for accuracy (argmax); NB_NONE: none */
    int epochs;
    int batch_size;
    uint64_t seed;           /* drives shuffling and augmentation         */
    int no_shuffle;
    int drop_last;           /* skip a final partial batch                */
    /* The optimiser (required, caller-owned, from nb_optim_new): its
     * configuration holds the base learning rate, and its state carries over
     * between calls and can be checkpointed. */
    nb_optim *optimizer;
    nb_schedule schedule;    /* the rate per epoch, from the base rate    */
    double clip_norm;        /* 0: no clipping                            */
    nb_epoch_callback on_epoch;
    nb_batch_callback on_batch;
    nb_gradient_hook on_gradients; /* NULL: none                         */
    void *user;              /* passed to the callbacks and the hook      */
    /* Resuming: start_epoch epochs and start_batch batches of the next epoch
     * already done.  With the same seed the remaining steps are exactly
     * those an uninterrupted run would take. */
    int start_epoch;
    size_t start_batch;
    /* Image augmentation of the training batches (inputs [B, C, H, W] or
     * [B, H, W]): a horizontal flip with probability 1/2, and a random crop
     * after zero padding by augment_crop pixels on every side.  Drawn from
     * (seed, epoch, position), so runs stay reproducible and resumable. */
    int augment_flip;
    int augment_crop;
    /* Several processes (nb_dist): NULL trains alone.  Each process then
     * takes its contiguous slice of every batch of batch_size (the global
     * batch: sample r*B/size to (r+1)*B/size - 1 of it), nb_train_step sums
     * the weighted gradients over the processes, and the statistics passed
     * to the callbacks are those of the global batch (the validation figures
     * are rank 0's); a callback that asks to stop on any process stops all.
     * Start every process from the same state (nb_dist_broadcast_state). */
    nb_dist *dist;
} nb_fit_config;

/* The augmentation of one image of c channels of h x w: mirrored if flip,
 * then shifted by (dy, dx) with zeros filling in (what a random crop of the
 * zero-padded image is).  in and out must not overlap. */
void nb_augment_image(const nb_real *in, nb_real *out, int c, int h, int w, int flip, int dy,
                      int dx);

/* Defaults: 10 epochs, batch 32, seed 0, constant schedule, no optimiser
 * (set cfg.optimizer). */
nb_fit_config nb_fit_defaults(nb_node input, nb_node target, nb_node loss, nb_node output);

/* Check the settings of cfg that depend on neither the graph nor the data
 * (epochs, batch size, clipping, schedule, augmentation, resume position).  nb_fit runs this check itself; a program may call it
 * early to report bad settings before loading anything. */
nb_status nb_fit_check(const nb_fit_config *cfg);

/* One training step on the batch already set on cfg->input and cfg->target
 * (nb_set_input): zero the gradients, forward (loss and cfg->output in one
 * pass), backward, cfg->on_gradients, clip to cfg->clip_norm, and one step
 * of cfg->optimizer at learning rate lr.  *loss receives the batch loss.
 * A non-finite loss or gradient stops the step before the update with
 * NB_ERR_NUMERIC; the step's values and gradients are left in place, so
 * nb_find_nonfinite can say where the first NaN or inf appeared.
 * With cfg->dist, the gradients become the mean of the processes'
 * gradients weighted by their batch sizes (the gradient of the mean loss
 * over all their samples), in one fixed-order sum, before
 * cfg->on_gradients; *loss is this process's loss.  A process whose loss is
 * not finite, or whose forward or backward fails, still takes part in the
 * sum, with NaN gradients, so that every process stops at the same step. */
nb_status nb_train_step(nb_graph *g, const nb_fit_config *cfg, double lr, double *loss);

/* Mini-batch training: each epoch reshuffles the training set with a
 * permutation derived from (seed, epoch), so a run is reproducible and can be
 * resumed at any epoch.  val may be NULL.  The learning rate of epoch e is
 * nb_schedule_lr(&cfg->schedule, the optimiser's lr, e - 1).
 * Every step checks that the loss and the gradients are finite; if not,
 * nb_fit stops before the optimiser step (the parameters as they were) with
 * NB_ERR_NUMERIC and a message naming the epoch, the step and where the
 * first non-finite number appeared (nb_find_nonfinite): the node, its op,
 * NaN or inf, and for bad data the training sample.  An update that
 * overflows shows in the next step's loss (the message names the
 * parameter); the parameters are also checked at the end of every epoch, so
 * on_epoch and a successful return never see non-finite parameters. */
nb_status nb_fit(nb_graph *g, const nb_fit_config *cfg, const nb_data *train,
                 const nb_data *val, nb_epoch_stats *last);

/* Early stopping (Keras' EarlyStopping): a monitored value, e.g. the
 * validation loss of nb_epoch_stats, is fed once per epoch from an on_epoch
 * callback, which returns non-zero to stop nb_fit on NB_EARLY_STOP.  The
 * struct is plain data: save and restore it to resume a run exactly. */
typedef struct nb_early_stop {
    int patience;            /* epochs without improvement before stopping;
                                0: never stop (only track the best)       */
    double min_delta;        /* an improvement must exceed it             */
    int maximize;            /* 1: higher is better (accuracy); 0: lower  */
    double best;             /* the best value so far                     */
    int best_epoch;          /* its epoch; 0: none yet                    */
    int wait;                /* epochs since the best                     */
    int stopped;             /* NB_EARLY_STOP was returned                */
} nb_early_stop;

enum { NB_EARLY_WAIT = 0, NB_EARLY_IMPROVED = 1, NB_EARLY_STOP = 2 };

void nb_early_stop_init(nb_early_stop *es, int patience, double min_delta, int maximize);
/* The value of epoch `epoch`: NB_EARLY_IMPROVED when it beats the best by
 * more than min_delta (the first finite value always does; NaN never),
 * NB_EARLY_STOP when patience epochs have passed without improvement (the
 * best epoch is then es->best_epoch), NB_EARLY_WAIT otherwise. */
int nb_early_stop_update(nb_early_stop *es, int epoch, double value);

/* Mean loss and accuracy (-1 when output is NB_NONE) over a data set, in eval mode. */
nb_status nb_evaluate(nb_graph *g, nb_node input, nb_node target, nb_node loss,
                      nb_node output, const nb_data *data, int batch_size,
                      double *loss_out, double *acc_out);

/* ------------------------------------------------------- evaluation reports */

/* The figures of one class, or an average over the classes, defined as
 * scikit-learn's classification_report defines them (docs/metrics.md):
 * precision = TP / predicted, recall = TP / support, F1 = 2 TP / (support +
 * predicted).  A 0/0 is taken as 0 (scikit-learn's default zero_division)
 * and flagged. */
typedef struct nb_class_metrics {
    double precision, recall, f1;
    size_t support;          /* samples of this true class (averages: all)      */
    size_t predicted;        /* samples predicted as this class (averages: all) */
    unsigned zero_division;  /* NB_ZERO_DIV_* of the figures that were 0/0;
                                an average: of any class                       */
} nb_class_metrics;

#define NB_ZERO_DIV_PRECISION 1u /* never predicted: precision 0/0, taken as 0   */
#define NB_ZERO_DIV_RECALL 2u    /* support 0: recall 0/0, taken as 0            */
#define NB_ZERO_DIV_F1 4u        /* neither occurs nor predicted: F1 0/0, as 0  */

/* An evaluation report: a classifier's per-class figures, confusion matrix
 * and top-k accuracy, or a regression model's MAE, RMSE and R^2.  Made by
 * nb_report_init, filled by nb_report_add (or nb_evaluate_report), computed
 * by nb_report_finish. */
typedef struct nb_report {
    int n_classes;           /* > 0: a classifier's report; 0: regression       */
    int top_k;               /* 0: no top-k accuracy; else 1 .. n_classes       */
    size_t n_outputs;        /* values per sample (a classifier: n_classes)     */
    size_t n;                /* samples counted                                 */
    double loss;             /* nb_evaluate_report: mean loss; otherwise NaN    */
    /* classification */
    size_t *confusion;       /* n_classes x n_classes, row-major: row = true
                                class, column = predicted class (argmax, the
                                first of equal scores)                          */
    nb_class_metrics *per_class; /* n_classes, by class index                  */
    nb_class_metrics macro;  /* unweighted means of the per-class figures       */
    nb_class_metrics weighted; /* means weighted by support                     */
    size_t correct, top_k_correct;
    double accuracy;         /* correct / n                                     */
    double top_k_accuracy;   /* true class among the top_k scores; -1: top_k 0  */
    unsigned zero_division;  /* NB_ZERO_DIV_* of any class                      */
    /* regression: per output (n_outputs each), then their means (RMSE: the
     * root of the mean squared error over all outputs) */
    double *mae_out, *rmse_out, *r2_out;
    double mae, rmse, r2;    /* R^2: NaN with fewer than 2 samples              */
    double *sums;            /* running sums (internal)                         */
} nb_report;

/* Start a report: a classifier's with n_classes >= 2 (top_k 0 .. n_classes,
 * n_outputs ignored), or with n_classes 0 a regression report of n_outputs
 * >= 1 values per sample (top_k 0).  Allocates; free with nb_report_free. */
nb_status nb_report_init(nb_report *r, int n_classes, int top_k, size_t n_outputs);
/* Count rows samples: out holds rows x n_outputs scores or predictions,
 * target rows x target_size values.  A classifier's target is a class index
 * (target_size 1; an integer in 0 .. n_classes-1, else NB_ERR_ARG naming the
 * sample) or a row of n_classes probabilities (its argmax).  A regression
 * target has n_outputs values. */
nb_status nb_report_add(nb_report *r, const nb_real *out, const nb_real *target, size_t rows,
                        size_t target_size);
/* Compute the figures from the counts (at least one sample). */
nb_status nb_report_finish(nb_report *r);
void nb_report_free(nb_report *r);
/* Run the model once over data in eval mode (like nb_evaluate) and fill r,
 * started by nb_report_init with output's width: its mean loss and, after
 * nb_report_finish, every figure. */
nb_status nb_evaluate_report(nb_graph *g, nb_node input, nb_node target, nb_node loss,
                             nb_node output, const nb_data *data, int batch_size,
                             nb_report *r);

/* ------------------------------------------------------------ diagnostics */

/* Where the first NaN or infinity of a forward / backward pass is. */
typedef struct nb_nonfinite {
    nb_node node;        /* NB_NONE: every value (and gradient) checked is finite */
    int in_grad;         /* 0: in node's forward value; 1: in its gradient        */
    int is_nan;          /* 1: the first bad element is NaN; 0: +inf or -inf      */
    size_t index;        /* flat index of the first bad element in the node       */
    size_t count;        /* how many of the node's elements are non-finite        */
    nb_node source;      /* value of a leaf (input, parameter, ...): the first op
                            that reads it; gradient: the op whose backward wrote
                            it (of several consumers, the last one created);
                            value of an op: the node itself                      */
    int n_sources;       /* gradient: number of ops whose backward adds into it   */
} nb_nonfinite;

/* Find the first non-finite number of the last pass.  Values: loss and its
 * ancestors as the last nb_forward left them, in creation (topological)
 * order, leaves included, so the first hit is where the NaN or inf was born:
 * an op computing it from finite inputs, or a leaf (data, parameter)
 * holding it.  Then, if grads is non-zero (after nb_backward(g, loss)),
 * their gradients in the order backward computed them (reverse creation
 * order).  NB_OK with out->node = NB_NONE when all are finite. */
nb_status nb_find_nonfinite(nb_graph *g, nb_node loss, int grads, nb_nonfinite *out);
/* One sentence about r into buf, e.g. "the forward value of node 'h2' (scale)
 * is inf (element 3, sample 0 of the batch, 4 of 16 elements non-finite);
 * its inputs are finite".  Returns buf. */
const char *nb_nonfinite_describe(const nb_graph *g, const nb_nonfinite *r, char *buf,
                                  size_t size);

/* Training diagnostics (docs/diagnostics.md): per layer statistics of one
 * training batch.  A row is either a parameter or an activation: an op node
 * with a batched value that the loss depends on (reshape and flatten, which
 * only copy, are left out).  Warning flags of a row: */
#define NB_DIAG_DEAD 1u          /* relu: more than 25% of its units dead            */
#define NB_DIAG_SATURATED 2u     /* sigmoid/tanh: more than 50% of values saturated  */
#define NB_DIAG_VANISHING 4u     /* weight: gradient norm < 1e-7, or RMS gradient
                                    < 1e-3 times the largest weight's RMS gradient  */
#define NB_DIAG_EXPLODING 8u     /* weight: gradient norm > 1e3, or > 10 and over 10x
                                    the previous diagnosis                           */
#define NB_DIAG_UPDATE_SMALL 16u /* weight: update/weight ratio < 1e-5               */
#define NB_DIAG_UPDATE_LARGE 32u /* weight: update/weight ratio > 1e-1               */
#define NB_DIAG_NONFINITE 64u    /* a NaN or inf in the values or the gradient       */

typedef struct nb_diag_row {
    nb_node node;
    const char *name;        /* nb_node_name                                      */
    const char *op;          /* nb_node_op: "param" for parameters                */
    int is_param;
    size_t numel;            /* elements (an activation: over the whole batch)     */
    double mean, std;        /* of the values the batch was computed with (for a
                                parameter given params_before: those); population */
    double dead;             /* ops whose units can die (relu, hardswish): fraction
                                of units that are 0 for every sample of the batch
                                (unit: a feature of [B, F], a channel of [B, C,
                                ...], over all its positions); else -1             */
    double saturated;        /* saturating ops (sigmoid, tanh): fraction of values
                                outside [sat_low, sat_high]; else -1               */
    double sat_low, sat_high;/* within 0.01 of the op's output range: sigmoid
                                [0.01, 0.99], tanh [-0.99, 0.99]                   */
    double grad_norm;        /* L2 norm of the gradient (dL/dw, or dL/da over the
                                batch); -1 when the node has none                  */
    double weight_norm;      /* parameter: ||w|| before the step; else -1          */
    double update_ratio;     /* parameter: ||w - w_before|| / ||w_before||; -1 when
                                unknown (no params_before, or w_before = 0)         */
    double prev_grad_norm;   /* grad_norm of the previous nb_diagnose (-1: none)   */
    unsigned warn;           /* NB_DIAG_* flags                                   */
} nb_diag_row;

typedef struct nb_diagnosis {
    int n_rows;
    nb_diag_row *rows;       /* in creation order                                  */
    int n_warnings;          /* flags set over all rows by the last nb_diagnose    */
    nb_node loss;
} nb_diagnosis;

/* Choose the rows for the graph and loss (allocates; the graph must not
 * gain nodes afterwards).  Free with nb_diagnosis_free. */
nb_status nb_diagnosis_init(nb_diagnosis *d, const nb_graph *g, nb_node loss);
void nb_diagnosis_free(nb_diagnosis *d);
/* Measure the current state: call after nb_forward and nb_backward of a
 * training batch, optionally after the optimiser step (then call
 * nb_graph_fill_fused before the step, so that fused layers' activations and
 * gradients are those of the pass).  params_before: a copy of nb_params(g)
 * from before that step, for the update/weight ratios (NULL: none; the
 * weight norms are then of the current parameters).  Gradients are read as
 * they are (after clipping, if the trainer clips).  Allocates nothing. */
nb_status nb_diagnose(nb_graph *g, const nb_real *params_before, nb_diagnosis *d);
/* The warning of row r for one flag, as a sentence without "WARNING", e.g.
 * "layer '2' (sigmoid): 87.5% of its values are saturated (outside [0.01,
 * 0.99]); ...".  Returns buf ("" if the flag is not set). */
const char *nb_diag_warning(const nb_diag_row *r, unsigned flag, char *buf, size_t size);

/* ------------------------------------------------------------ data files */

typedef enum nb_dtype { NB_U8 = 0, NB_I8, NB_I16, NB_I32, NB_F32, NB_F64 } nb_dtype;

/* An n-dimensional array as stored in a file (row-major, host byte order). */
typedef struct nb_array {
    nb_dtype dtype;
    int ndim;
    int dims[NB_MAX_DIMS];
    size_t numel;
    void *data;          /* owned; release with nb_array_free */
} nb_array;

size_t nb_dtype_size(nb_dtype t);
const char *nb_dtype_name(nb_dtype t);
/* Element k converted to double. */
double nb_array_get(const nb_array *a, size_t k);
void nb_array_free(nb_array *a);

/* Load an IDX file (MNIST format), plain or gzip-compressed; every element
 * type.  Magic, dimensions and sizes are validated against the file. */
nb_status nb_idx_load(const char *path, nb_array *out);

/* CSV files: one sample per row, numeric feature columns and one label column.
 *
 * Accepted: an optional header row, quoted fields ("a,b", "" for a quote),
 * LF, CRLF or CR line endings, blank lines (skipped), a UTF-8 byte-order mark,
 * spaces or tabs around cells.  Numbers are read with '.' as the decimal
 * point whatever the C locale says; NaN, infinities, empty cells and
 * anything else that is not a finite decimal number are errors naming the
 * file, the line and the column (columns are counted from 1 in messages, as
 * lines are).  Labels: if every label is a number they are kept as numbers;
 * otherwise they are class names, mapped to 0..K-1 in byte-wise sorted order
 * (or to a trained model's classes: nb_csv_opts.classes). */
typedef enum nb_csv_header {
    NB_CSV_HEADER_AUTO = 0, /* a header if the first row has a non-numeric cell in a
                               feature column (always one when label_name is set) */
    NB_CSV_HEADER_YES,
    NB_CSV_HEADER_NO
} nb_csv_header;

/* Start from nb_csv_defaults(): a zero-filled struct would pick column 0 as
 * the label.  Limits of 0 mean the default limit. */
typedef struct nb_csv_opts {
    nb_csv_header header;     /* default NB_CSV_HEADER_AUTO                        */
    char delimiter;           /* default (and 0) ','; not '"', '\r' or '\n'          */
    const char *label_name;   /* label column by header name; NULL: use label_index */
    int label_index;          /* 0-based; negative counts from the end; default -1  */
    int no_label;             /* no label column: every column is a feature (y NULL) */
    size_t max_line_bytes;    /* longest accepted line; default 1 MiB              */
    int max_columns;          /* default 65536                                     */
    size_t max_rows;          /* default 100 million                               */
    size_t max_file_bytes;    /* nb_csv_load only; default 4 GiB                    */
    /* The classes of a trained model, for data to evaluate it on.  When
     * n_classes > 0, every label is a class of that list: with names, the
     * label's text is looked up (numbers too: "3" is the class named "3");
     * without (classes NULL), a whole number 0..n_classes-1.  Anything else is
     * an error naming the file, the line and the known classes, and the
     * result has exactly these classes (names copied), so a file lacking one
     * of them still numbers the others as in training. */
    char *const *classes;
    int n_classes;
} nb_csv_opts;

nb_csv_opts nb_csv_defaults(void);

typedef struct nb_csv_data {
    size_t rows;
    int features;
    nb_real *x;             /* rows * features, row-major                         */
    nb_real *y;             /* rows labels: numbers, or class indices             */
    char **feature_names;   /* features names (UTF-8) if there was a header, else NULL */
    char *label_name;       /* the label column's name, or NULL without a header  */
    int n_classes;          /* 0 when the labels are numbers                      */
    char **class_names;     /* n_classes names in index order, or NULL            */
} nb_csv_data;

/* Read and parse a whole CSV file.  opts may be NULL (the defaults). */
nb_status nb_csv_load(const char *path, const nb_csv_opts *opts, nb_csv_data *out);
/* Parse CSV text held in memory (len bytes, need not end in '\0'); name is
 * used in error messages in place of a file name. */
nb_status nb_csv_parse(const char *text, size_t len, const char *name,
                       const nb_csv_opts *opts, nb_csv_data *out);
void nb_csv_free(nb_csv_data *d);

/* NumPy .npy files (format versions 1.0, 2.0 and 3.0), C order only.  Element
 * types: '<f4' '<f8' '|u1' '|i1' '<i2' '<i4' (either byte order), and '|b1'
 * (read as u8 0/1).  The header, the shape and the exact data length are
 * validated against the file; shape () gives ndim 0 and one element. */
nb_status nb_npy_load(const char *path, nb_array *out);
/* The same from a file image in memory; name is used in error messages. */
nb_status nb_npy_parse(const void *data, size_t len, const char *name, nb_array *out);

/* ------------------------------------------------------------ training data */

/* N samples of features with a per-sample shape ([1, 28, 28], [F], ...) and
 * y_size labels each.  Features are stored either as bytes (u8 images keep
 * 1 byte per value in memory) or as reals; nb_data_batch converts a batch to
 * reals on the fly, applying
 *     x = (raw * scale - mean[j]) * inv_std[j]        (j: feature index)
 * where mean/inv_std are set by nb_data_standardize (NULL: 0 and 1), in
 * double (bytes without standardisation: raw * scale in nb_real, as fast as
 * a copy).  nb_fit and nb_evaluate read their batches this way, so byte
 * images stay four times smaller in memory during training. */
struct nb_data {
    size_t n;
    int ndim;
    int dims[NB_MAX_DIMS];
    size_t sample_size;     /* product of dims                                   */
    uint8_t *x_u8;          /* n * sample_size bytes, or NULL                    */
    nb_real *x_real;        /* n * sample_size reals, or NULL (exactly one is set) */
    nb_real *y;             /* n * y_size labels                                 */
    size_t y_size;          /* 1: a class index or a number per sample           */
    double scale;           /* 1 unless changed by nb_data_scale                 */
    double *mean, *inv_std; /* sample_size each, or NULL                         */
    int n_classes;          /* CSV class names, or max+1 of integer label arrays;
                               0 when the labels are real numbers               */
    char **class_names;     /* n_classes names, or NULL                          */
    char **feature_names;   /* sample_size names (from a CSV header), or NULL    */
    char *label_name;       /* or NULL                                           */
};

void nb_data_free(nb_data *d);
/* n samples copied from x (n * x_size reals, per-sample shape [x_size]) and
 * y (n * y_size reals; NULL when y_size is 0). */
nb_status nb_data_from_reals(const nb_real *x, const nb_real *y, size_t n, size_t x_size,
                             size_t y_size, nb_data *out);
/* Take over a CSV table (csv is emptied): per-sample shape [features]. */
nb_status nb_data_from_csv(nb_csv_data *csv, nb_data *out);
/* Samples from x [N, ...] (any element type; u8 stays bytes) and labels y
 * [N] or [N, k] (may be NULL: no labels, y_size 0).  Both arrays are emptied
 * on success (their buffers are taken over or converted). */
nb_status nb_data_from_arrays(nb_array *x, nb_array *y, nb_data *out);
/* Text for character models (docs/sequences.md, Text data).  A character is
 * a Unicode code point of UTF-8 text; its token id (an exact integer in
 * x_real) is its index in the vocabulary, which becomes the class names
 * (n_classes, class_names) of the data.  NB_TEXT_LINES: one sequence per
 * non-empty line (a trailing \r dropped), the newline "\n" the line
 * boundary, id 0, that starts and ends every line; with context = K > 0,
 * every character of a line and its end is a sample x [K] (the K characters
 * before it, boundaries before the line) with y [1] that character; with
 * context 0, a sample is the whole line: x [length] = boundary, line,
 * boundaries; y [length] = line, boundary, NB_TEXT_IGNORE (length 0: the
 * longest line + 1).  NB_TEXT_STREAM: the whole text as one sequence, windows
 * x = c[i .. i+context), y = c[i+1 .. i+context+1) every stride characters. */
typedef enum nb_text_kind { NB_TEXT_LINES = 0, NB_TEXT_STREAM = 1 } nb_text_kind;
/* The target of padding positions: PyTorch's default ignore_index. */
#define NB_TEXT_IGNORE (-100)
typedef struct nb_text_opts {
    nb_text_kind kind;
    int context;          /* lines: K (0: whole lines); stream: window length  */
    int length;           /* lines without context: positions (0: longest + 1) */
    int stride;           /* stream: between window starts (0: 1)              */
    double val_fraction;  /* [0, 1): held out as val, by line (lines) or as one
                             span of the stream (no window crosses into it)    */
    uint64_t seed;        /* chooses the held-out lines or span                */
    char *const *vocab;   /* a trained model's vocabulary (one character each) */
    int vocab_size;       /* 0: built from the text, in code-point order (lines:
                             the boundary first); a character not in a given
                             vocabulary is an error naming its line and column */
} nb_text_opts;
/* Parse text data[0..len) named name; val (may be NULL without a validation
 * fraction) gets the held-out part.  Bad UTF-8, NUL bytes, an empty text and a
 * line longer than length are NB_ERR_FORMAT errors naming line and column. */
nb_status nb_text_parse(const char *data, size_t len, const char *name, const nb_text_opts *opts,
                        nb_data *train, nb_data *val);
nb_status nb_text_load(const char *path, const nb_text_opts *opts, nb_data *train, nb_data *val);
/* Renumber d's class labels as the n_classes classes of a trained model
 * (classes: their names, or NULL when it was trained on class numbers), so
 * labels keep their meaning whatever classes a file happens to hold.  Labels
 * with names are matched by name when classes is given; otherwise every label
 * must be a whole number below n_classes.  A label outside the list is
 * NB_ERR_FORMAT naming what (e.g. the file), the sample and the known
 * classes.  With classes, d's class names become copies of them.  Data
 * without labels are left as they are. */
nb_status nb_data_map_classes(nb_data *d, char *const *classes, int n_classes, const char *what);
/* Samples stored channels last, [H, W, C] (NumPy image arrays, IDX files of
 * colour images), rearranged to channels first, [C, H, W], as convolutions
 * and `input C H W` take them.  [H, W] becomes [1, H, W].  Must come before
 * nb_data_standardize. */
nb_status nb_data_hwc_to_chw(nb_data *d);
/* Multiply the raw features by factor (e.g. 1.0/255 maps u8 images to
 * [0, 1]).  Must come before nb_data_standardize; the overall scale must stay
 * within 1e-30 .. 1e30 in magnitude. */
nb_status nb_data_scale(nb_data *d, double factor);
/* Scale byte data (u8 images) to [0, 1]: the same as nb_data_scale(d, 1.0/255).
 * NB_ERR_ARG for real-valued data, whose range is not known in advance. */
nb_status nb_data_scale_unit(nb_data *d);
/* Per-feature mean and standard deviation (population, ddof 0) of train,
 * computed on train only and applied to train and to val and test (either may
 * be NULL), so no statistic leaks from held-out data into training.  A feature
 * that is constant on train gets std 1 (it becomes 0 there, x - mean elsewhere).
 * May be called again (e.g. after a split); statistics are of raw * scale. */
nb_status nb_data_standardize(nb_data *train, nb_data *val, nb_data *test);
/* Seeded split: round(val_fraction * n) samples, chosen by a permutation drawn
 * from nb_rng seeded with seed, go to val and the rest to train; both keep the
 * original order of their samples.  0 < val_fraction < 1 and both parts must
 * be non-empty.  all is left unchanged (the parts are copies). */
nb_status nb_data_split(const nb_data *all, double val_fraction, uint64_t seed,
                        nb_data *train, nb_data *val);
/* Write count converted samples into x (count * sample_size reals) and their
 * labels into y (count * y_size; y may be NULL).  The samples are
 * idx[start .. start+count) or, when idx is NULL, start .. start+count.
 * NB_ERR_NUMERIC if a converted value does not fit in nb_real (a held-out
 * sample far outside the training set's spread). */
nb_status nb_data_batch(const nb_data *d, const size_t *idx, size_t start, size_t count,
                        nb_real *x, nb_real *y);
/* Load a named data set's split ("train" or "test") from dir/<name>/ (or
 * dir/ itself when it holds the files).  dir NULL: $NABLA_DATA_DIR, else
 * /usr/share/datasets.  Known names: "fashion-mnist" (u8 images [1, 28, 28],
 * 10 classes with their names; raw values 0..255, see nb_data_scale_unit). */
nb_status nb_data_load(const char *name, const char *split, const char *dir, nb_data *out);

/* ------------------------------------------------------------------ images */

/* An 8-bit image: h rows of w pixels of c channels (1: grey, 3: RGB), row by
 * row and pixel by pixel (HWC).  PNG and JPEG files are decoded by libpng and
 * libjpeg when the build found them (nb_image_formats); see docs/images.md
 * for the conversions. */
typedef struct nb_image {
    int h, w, c;
    uint8_t *pix;
} nb_image;

enum { NB_IMAGE_PNG = 1, NB_IMAGE_JPEG = 2 };
/* The formats this build decodes: NB_IMAGE_PNG | NB_IMAGE_JPEG, or fewer. */
int nb_image_formats(void);
/* Decode a PNG or JPEG file image in memory (the format from its first
 * bytes); name is used in error messages.  Palettes are expanded, 16-bit
 * samples scaled to 8 bits and transparency dropped, so the result is grey
 * or RGB.  A corrupt or truncated file gives NB_ERR_FORMAT naming it. */
nb_status nb_image_parse(const void *data, size_t len, const char *name, nb_image *out);
nb_status nb_image_load(const char *path, nb_image *out);
void nb_image_free(nb_image *im);
/* in with 1 or 3 channels: grey from RGB is ITU-R BT.601 luma as Pillow's
 * convert("L") computes it; RGB from grey repeats the value. */
nb_status nb_image_convert(const nb_image *in, int channels, nb_image *out);
/* in resized to h x w: area averaging along an axis that shrinks, bilinear
 * interpolation (pixel centres aligned) along one that grows. */
nb_status nb_image_resize(const nb_image *in, int h, int w, nb_image *out);
/* in converted to `channels`, resized to h x w, and written channels first
 * (channels * h * w bytes) to chw: the layout a model's "input C H W" takes. */
nb_status nb_image_to_chw(const nb_image *in, int channels, int h, int w, uint8_t *chw);

/* How nb_data_from_folder prepares images, and what it reports. */
typedef struct nb_folder_opts {
    int channels;           /* 1 (grey) or 3 (RGB)                               */
    int height, width;      /* every image is resized to this                    */
    int skip_bad;           /* skip images that do not decode instead of failing */
    /* Optional, called on the calling thread: progress after each block of
     * images, and each skipped image's error message, in sample order. */
    void (*progress)(size_t done, size_t total, void *user);
    void (*on_skip)(const char *message, void *user);
    void *user;
} nb_folder_opts;

/* Images of a folder as byte samples [channels, height, width], decoded once
 * on nb_threads() threads (the result does not depend on their number).
 * path is one of:
 *   - a folder of class folders, path/CLASS/ *.png|jpg|jpeg (torchvision's
 *     ImageFolder): classes sorted by name, the label is the class's place
 *     in that order, and class_names are set;
 *   - a folder of image files without class folders, or one image file: no
 *     labels (y_size 0), for prediction.
 * Names starting with '.' and files with other extensions are ignored.
 * Samples are in file-name order across classes (equal names: class order).
 * A file that does not decode is an error naming it, unless opts->skip_bad;
 * *skipped (may be NULL) is the number skipped. */
nb_status nb_data_from_folder(const char *path, const nb_folder_opts *opts, nb_data *out,
                              size_t *skipped);

/* ------------------------------------------------------------ model files */

/* A model built from the text format of docs/model-format.md. */
typedef struct nb_model {
    nb_graph *graph;
    nb_node input;      /* the model input                                  */
    nb_node output;     /* scores / predictions (the node before the loss)  */
    nb_node target;     /* created by the loss line; NB_NONE without one    */
    nb_node loss;       /* NB_NONE for an inference-only model              */
    int classes;        /* classes of a cross_entropy model, else 0         */
    int vocab;          /* 'input T tokens=V': V, else 0                    */
    char *text;         /* the model text as parsed (saved in checkpoints)  */
} nb_model;

/* Parse model text; source names it in error messages ("model.nn:3: ..."). */
nb_status nb_model_parse(const char *text, const char *source, nb_model *m);
nb_status nb_model_load(const char *path, nb_model *m);
void nb_model_free(nb_model *m);
/* The same with values for the model's variables: ${NAME} in the text takes
 * the value of NAME in vars, or its default, ${NAME:-DEFAULT} (inside
 * comments nothing is replaced).  m->text is the text with the values in.
 * A variable without a value or default, a malformed ${...} and a variable
 * of vars that the text does not use are errors (NB_ERR_FORMAT / NB_ERR_ARG)
 * that name source, line and variable. */
struct nb_kv;
nb_status nb_model_parse_vars(const char *text, const char *source, const struct nb_kv *vars,
                             int n_vars, nb_model *m);
nb_status nb_model_load_vars(const char *path, const struct nb_kv *vars, int n_vars,
                             nb_model *m);

/* --------------------------------------------------------- TensorBoard logs */

/* Event files that TensorBoard reads (docs/tensorboard.md): scalars, each an
 * Event record holding a Summary value, framed as TFRecords.  Built when the
 * build found protobuf-c (nb_tb_available); without it nb_tb_open and
 * nb_tb_create fail with NB_ERR_STATE saying so.  A writer is not thread-safe. */
typedef struct nb_tb_writer nb_tb_writer;

/* 1 if this build writes event files, else 0. */
int nb_tb_available(void);
/* Create dir (and its missing parents) and a new event file in it,
 * dir/events.out.tfevents.<unix time>.<host> (with a suffix .1, .2, ... if
 * that name is taken: an existing file is never written to).  TensorBoard
 * shows the files of one directory as one run, so a resumed run opens a new
 * file in the same directory. */
nb_status nb_tb_open(const char *dir, nb_tb_writer **out);
/* The same at exactly `path`, which must not exist; the version record gets
 * wall_time (seconds since the Unix epoch; <= 0: now). */
nb_status nb_tb_create(const char *path, double wall_time, nb_tb_writer **out);
/* The file's path ("" for NULL). */
const char *nb_tb_path(const nb_tb_writer *w);
/* Add a scalar: tag (non-empty UTF-8, e.g. "train/loss"), step, value
 * (stored as float, as TensorBoard's simple_value), wall_time (<= 0: now).
 * Records are kept in memory and written whole when 64 KiB gather, on
 * nb_tb_flush and on nb_tb_close; after a failed write every call fails. */
nb_status nb_tb_scalar(nb_tb_writer *w, const char *tag, int64_t step, double value,
                       double wall_time);
/* Write the records kept so far, so that a running TensorBoard sees them. */
nb_status nb_tb_flush(nb_tb_writer *w);
/* Flush, close and free (NULL: nothing).  Returns the flush's or close's error. */
nb_status nb_tb_close(nb_tb_writer *w);

/* ------------------------------------------------------------- safetensors */

/* A key/value pair of strings (file metadata). */
typedef struct nb_kv {
    const char *key, *value;
} nb_kv;

/* Element types of the safetensors format; nb_st_dtype_name gives the name
 * used in files ("F32", "BF16", "F8_E4M3", ...). */
typedef enum nb_st_dtype {
    NB_ST_BOOL = 0, NB_ST_U8, NB_ST_I8, NB_ST_U16, NB_ST_I16, NB_ST_F16, NB_ST_BF16,
    NB_ST_U32, NB_ST_I32, NB_ST_F32, NB_ST_U64, NB_ST_I64, NB_ST_F64, NB_ST_C64,
    NB_ST_F8_E4M3, NB_ST_F8_E5M2, NB_ST_F8_E4M3FNUZ, NB_ST_F8_E5M2FNUZ, NB_ST_F8_E8M0,
    NB_ST_F6_E2M3, NB_ST_F6_E3M2, NB_ST_F4
} nb_st_dtype;
#define NB_ST_DTYPE_COUNT 22

const char *nb_st_dtype_name(nb_st_dtype t);
/* Bits per element: 4 for F4, 6 for F6_*, otherwise 8 times the byte size. */
int nb_st_dtype_bits(nb_st_dtype t);

/* A validated safetensors file held in memory. */
typedef struct nb_safetensors nb_safetensors;

/* One tensor of a file.  data points into the reader's copy of the file:
 * little-endian, row-major, not necessarily aligned (memcpy from it); valid
 * until nb_st_free. */
typedef struct nb_st_tensor {
    const char *name;
    nb_st_dtype dtype;
    int ndim;
    int dims[NB_MAX_DIMS];
    size_t numel;
    const void *data;
    size_t nbytes;
} nb_st_tensor;

/* Read a whole file and check every rule of the format (header size, UTF-8,
 * strict JSON, known dtypes, string metadata, unique names, sizes, offsets
 * covering the data buffer exactly).  Any violation: NB_ERR_FORMAT with a
 * message naming the file and the tensor or field.  Limits: at most
 * NB_MAX_DIMS dimensions of at most INT_MAX each. */
nb_status nb_st_open(const char *path, nb_safetensors **out);
/* The same for a file already in memory (copied); label names it in messages. */
nb_status nb_st_parse(const void *bytes, size_t size, const char *label,
                      nb_safetensors **out);
void nb_st_free(nb_safetensors *st);
/* Tensors are numbered 0..count-1 in the order of their data in the file. */
int nb_st_count(const nb_safetensors *st);
nb_status nb_st_tensor_at(const nb_safetensors *st, int i, nb_st_tensor *out);
/* Index of the tensor called name, or -1. */
int nb_st_find(const nb_safetensors *st, const char *name);
/* __metadata__: the value for key (NULL if absent), or pair i (0..count-1). */
const char *nb_st_meta(const nb_safetensors *st, const char *key);
int nb_st_meta_count(const nb_safetensors *st);
nb_kv nb_st_meta_at(const nb_safetensors *st, int i);

/* A tensor to write: data holds numel elements of dtype, little-endian
 * (on x86 and ARM simply the host's float array for NB_ST_F32). */
typedef struct nb_st_entry {
    const char *name;
    nb_st_dtype dtype;
    int ndim;
    const int *dims;
    const void *data;
} nb_st_entry;

/* Write a safetensors file: JSON header padded with spaces to a multiple of
 * 8 bytes, tensors ordered by element size (largest first) then name.  Names
 * and metadata keys must be unique, non-empty UTF-8.  Atomic: the bytes go to
 * a temporary file in the same directory, which is fsync'ed and renamed over
 * path, so a failure or crash leaves any previous file intact.  A new file
 * gets mode 0644; an existing one keeps its mode. */
nb_status nb_st_write(const char *path, const nb_st_entry *tensors, int n,
                      const nb_kv *meta, int n_meta);

/* --------------------------------------------------------- graph weights */

/* Save every parameter and every buffer of g as an F32 tensor named after
 * its node (nb_node_name), with the given metadata (may be NULL / 0).  A
 * counting buffer (num_batches_tracked) is saved as an I64 scalar, as in
 * PyTorch's state_dict.  Atomic. */
nb_status nb_save_weights(const nb_graph *g, const char *path, const nb_kv *meta,
                          int n_meta);

/* Write the part of g from input to output (the model without its loss) as
 * an ONNX model at path: IR version 8, opset 17, float32, a dynamic batch
 * dimension named "batch", the parameters and batch-norm running statistics
 * as initializers under their node names, and meta as metadata_props.
 * Inference form: dropout becomes Identity, batch norm uses its running
 * statistics.  An op without an ONNX counterpart is NB_ERR_ARG naming the op
 * and the node; NB_ERR_STATE if nabla was built without ONNX support.
 * Atomic, like nb_save_weights.  docs/onnx.md lists the mapping. */
nb_status nb_export_onnx(const nb_graph *g, nb_node input, nb_node output, const char *path,
                         const nb_kv *meta, int n_meta);

/* Load an ONNX model made of the ops the export writes, and of what
 * torch.onnx.export writes for such models (opsets 13 to 24; docs/onnx.md
 * lists them), with tensors stored in external data files beside the model
 * (as PyTorch 2 writes them; a relative location without ".." and not a
 * symbolic link): its nodes become the lines of a model text (m->text, as
 * `nabla import` writes it), parsed as nb_model_parse does, and its
 * initializers the parameters and batch-norm statistics, named after the
 * ONNX names where they allow ("fc.weight").  loss is the loss line added:
 * "cross_entropy", "mse", "bce" or "none"; NULL chooses cross_entropy for a
 * [batch, C] output (C >= 2) and none otherwise.  Before cross_entropy a
 * final Softmax is left out: the loss and nabla predict apply it.  meta (may
 * be NULL) receives the metadata_props, *n_meta pairs, to free with
 * nb_kv_free.  Any problem of the file is NB_ERR_FORMAT naming the file, the
 * node or initializer and what is wrong; NB_ERR_STATE if nabla was built
 * without ONNX support. */
nb_status nb_model_from_onnx(const char *path, const char *loss, nb_model *m, nb_kv **meta,
                             int *n_meta);
/* The same for a file in memory; label names it in messages.  A tensor in
 * external data is an error: there is no directory to find it in. */
nb_status nb_model_from_onnx_bytes(const void *bytes, size_t size, const char *label,
                                   const char *loss, nb_model *m, nb_kv **meta, int *n_meta);
/* The external data files the ONNX model at path stores tensors in, as
 * nb_model_from_onnx reads them: each once, the location written in the
 * model as key and the path opened as value; *n pairs to free with
 * nb_kv_free (none: *files NULL, *n 0).  A location nb_model_from_onnx
 * would refuse is NB_ERR_FORMAT with its message. */
nb_status nb_onnx_external_data(const char *path, nb_kv **files, int *n);
/* Free n pairs whose strings were allocated by nabla, and the array. */
void nb_kv_free(nb_kv *kv, int n);

/* Flags of nb_load_weights. */
#define NB_LOAD_ALLOW_EXTRA 1  /* ignore tensors that are not parameters or buffers */

/* Load parameters and buffers by name: every one must be in the file with the
 * same shape, as F32 (F64, F16 and BF16 are converted; F64 values beyond the
 * float range are an error); a counting buffer may also be I64 or I32
 * (non-negative).  A tensor that is neither a parameter nor a buffer is an
 * error unless flags has NB_LOAD_ALLOW_EXTRA.  The graph changes only if the
 * whole file validates. */
nb_status nb_load_weights(nb_graph *g, const char *path, int flags);

/* What nb_load_weights_opts loads (all zero: as nb_load_weights with flags 0). */
typedef struct nb_load_opts {
    int flags;               /* NB_LOAD_ALLOW_EXTRA */
    const char *const *skip; /* n_skip glob patterns (fnmatch, as nb_freeze_matching) */
    int n_skip;
} nb_load_opts;

/* nb_load_weights, except that parameters and buffers whose names match a
 * skip pattern keep their values (say, a new classifier head at its
 * initialiser), and tensors of the file that match one are ignored.  Every
 * other parameter and buffer must be in the file with its shape; a tensor
 * the graph lacks is an error unless NB_LOAD_ALLOW_EXTRA (which also reads
 * the weights of a checkpoint, leaving its optimiser state). */
nb_status nb_load_weights_opts(nb_graph *g, const char *path, const nb_load_opts *opts);

/* ------------------------------------------------------------ checkpoints */

/* Training state saved with a checkpoint besides parameters and optimiser. */
typedef struct nb_checkpoint {
    int epoch;            /* epochs completed                                */
    long step;            /* trainer steps taken                             */
    uint64_t seed;        /* the run's base seed                             */
    nb_rng rng;           /* generator state to continue from                */
    const char *model;    /* model description text; NULL: none              */
    const nb_kv *meta;    /* more metadata saved with it (keys not starting   */
    int n_meta;           /* with "nabla." or "optim."); read with nb_st_meta */
    /* A second set of n_best values kept with the checkpoint, e.g. the best
     * weights so far (the tensor "__optim__.best"; its layout is the
     * caller's).  Save: written when best is non-NULL.  Load: with best
     * non-NULL, a file holding it must hold n_best values, copied to best
     * (has_best = 1); a file without it sets has_best = 0. */
    nb_real *best;
    size_t n_best;
    int has_best;
} nb_checkpoint;

/* Save parameters and buffers (F32 tensors under their node names, as
 * nb_save_weights), the optimiser's state (one tensor "__optim__.state"), its
 * step count and every config field, the graph's generator (nb_graph_rng) and
 * ck, as a safetensors file.  opt may be NULL.  Atomic, like nb_st_write.
 * Metadata keys: "nabla.format" = "checkpoint", "nabla.model", "nabla.epoch",
 * "nabla.step", "nabla.seed", "nabla.rng" and "nabla.graph_rng" (four 16-digit
 * hex words each), "optim.kind" ("none" without optimiser), "optim.*". */
nb_status nb_checkpoint_save(const char *path, const nb_graph *g, const nb_optim *opt,
                             const nb_checkpoint *ck);

/* Restore a checkpoint into an existing graph and optimiser, bit-exactly.
 * Checked first, changing nothing on error: every parameter and buffer
 * present with its shape and no other tensor; if ck->model is non-NULL on entry, the
 * saved model text must equal it; if opt is non-NULL, the checkpoint must
 * hold an optimiser of the same kind with equal config fields and state
 * size (opt NULL: the optimiser part is ignored).  Then fills params,
 * buffers, the graph's generator (when the file has "nabla.graph_rng"; older
 * checkpoints lack it), the optimiser (state and step count) and ck's epoch,
 * step, seed and rng (ck->model is left as it was). */
nb_status nb_checkpoint_load(const char *path, nb_graph *g, nb_optim *opt,
                             nb_checkpoint *ck);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* NABLA_H */
