/* Typed settings of op nodes: one struct per op family, held in the union
 * nb_node_t.settings.  An op reads and writes only its own family's member;
 * the builder fills it in, forward and backward read it.  A few families
 * also keep state that a forward leaves for its backward, marked as such.
 * Nothing here is part of the public API. */
#ifndef NB_OP_SETTINGS_H
#define NB_OP_SETTINGS_H

#include "nabla.h"

/* A size along the two image axes. */
typedef struct nb_hw {
    int h, w;
} nb_hw;

/* conv2d (src/ops/conv.c) */
typedef struct nb_conv_settings {
    nb_hw stride, pad, dilation;
    int groups;
    int packed_kept;        /* state: the scratch's kept packed weights are
                               those of its copy of the weights ...        */
    unsigned packed_plan;   /* ... under this arena layout (plan_id)       */
} nb_conv_settings;

/* max_pool2d, avg_pool2d (src/ops/pool.c) */
typedef struct nb_pool_settings {
    nb_hw kernel, stride, pad;
    int ceil_mode;          /* output size rounded up                      */
    int count_include_pad;  /* average: padding counts in the divisor      */
} nb_pool_settings;

/* Elementwise activations (src/ops/activation.c); each reads its own. */
typedef struct nb_activation_settings {
    nb_real slope;          /* leaky_relu: slope for x <= 0                */
    nb_real alpha;          /* elu: scale of the negative part             */
    nb_real beta;           /* softplus: sharpness                         */
    nb_real threshold;      /* softplus: linear where beta x > threshold   */
} nb_activation_settings;

/* batch_norm (src/ops/norm.c) */
typedef struct nb_batch_norm_settings {
    double eps, momentum;
    nb_node running_mean, running_var, num_batches_tracked; /* buffers */
    int batch_stats;        /* state: the last forward normalised with the
                               batch's statistics (training mode)          */
} nb_batch_norm_settings;

/* layer_norm (src/ops/norm.c) */
typedef struct nb_layer_norm_settings {
    double eps;
    int normalized_ndim;    /* trailing dims normalised together           */
} nb_layer_norm_settings;

/* dropout (src/ops/dropout.c) */
typedef struct nb_dropout_settings {
    nb_real p;              /* probability of zeroing an element           */
    int masked;             /* state: the last forward applied the mask    */
    int has_mask;           /* state: a mask has been drawn ...            */
    unsigned mask_plan;     /* ... under this arena layout (plan_id)       */
} nb_dropout_settings;

/* cross_entropy (src/ops/loss.c) */
typedef struct nb_cross_entropy_settings {
    nb_real label_smoothing;
    int index_targets;      /* targets are class indices, not probabilities */
    double ignore_index;    /* index targets equal to it are left out       */
    size_t counted;         /* state: rows the last forward averaged over   */
} nb_cross_entropy_settings;

/* rnn, lstm, gru (src/ops/recurrent.c) */
typedef struct nb_recurrent_settings {
    int kind;               /* nb_rnn_kind                                 */
    int hidden;             /* H                                           */
    int last;               /* output h_{T-1} only, [B, H]                 */
} nb_recurrent_settings;

/* add, sub, mul (src/ops/elementwise.c) */
typedef enum nb_binary_kind { NB_BINARY_ADD, NB_BINARY_SUB, NB_BINARY_MUL } nb_binary_kind;

typedef struct nb_binary_settings {
    nb_binary_kind kind;
    int small_is_a;         /* the repeated operand is a (else b)          */
    int small_numel;        /* its element count; 0: equal shapes          */
} nb_binary_settings;

/* attention (src/ops/attention.c) */
typedef struct nb_attention_settings {
    int heads;
    int causal;             /* position i attends to positions <= i only   */
} nb_attention_settings;

typedef union nb_op_settings {
    nb_conv_settings conv;
    nb_pool_settings pool;
    nb_activation_settings activation;
    nb_batch_norm_settings batch_norm;
    nb_layer_norm_settings layer_norm;
    nb_dropout_settings dropout;
    nb_cross_entropy_settings cross_entropy;
    nb_recurrent_settings recurrent;
    nb_binary_settings binary;
    nb_attention_settings attention;
    nb_real scale;          /* scale: the factor (src/ops/elementwise.c)   */
    int mean;               /* sum, mean: divide by the count (reduce.c)   */
    int concat_axis;        /* concat: the axis joined along (shape.c)     */
} nb_op_settings;

#endif
