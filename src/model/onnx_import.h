/* ONNX import, shared by onnx_import.c (the file, its values, the names and
 * the weights) and onnx_import_ops.c (each ONNX op as lines of model text).
 * An ONNX graph becomes the lines of a model file (docs/model-format.md);
 * each line remembers the constants that become its parameters. */
#ifndef NB_ONNX_IMPORT_H
#define NB_ONNX_IMPORT_H

#include "../core/internal.h"
#include "onnx.pb-c.h"

#include <stdint.h>

enum {
    IMP_MAX_DIM = 1 << 24,    /* one dimension of a tensor                    */
    IMP_MAX_SAMPLE = 1 << 26, /* elements of one sample of an activation      */
    IMP_MAX_NODES = 1 << 16,  /* nodes, initializers, values                  */
    IMP_MAX_PARAMS = 5,
    /* From 18 to 24 the ops read here changed only in types (the import reads
     * float32 and int64), ReduceMean's axes (an input from 18) and pools'
     * dilations (AveragePool 19), which the import reads either way. */
    IMP_MIN_OPSET = 13,
    IMP_MAX_OPSET = 24,
};

/* A constant (an initializer or a Constant node's value), decoded. */
typedef struct imp_const {
    int ndim;
    int dims[NB_MAX_DIMS];
    size_t count;
    int is_int;   /* int64 values (shapes, axes) in i, else floats in f */
    float *f;
    int64_t *i;
} imp_const;

/* A named ONNX value: a constant, or the output of a line with a shape. */
typedef struct imp_value {
    const char *name;
    imp_const *c;      /* NULL for a computed value                          */
    int line;          /* the line that computes it                          */
    int ndim, dims[NB_MAX_DIMS];       /* ONNX's shape of one sample          */
    int nb_ndim, nb_dims[NB_MAX_DIMS]; /* the line's shape of one sample      */
    int shaped;        /* a line giving nabla the ONNX shape (0: none yet)    */
} imp_value;

/* A parameter of a line: "<prefix>.<suffix>" gets c (transposed for a
 * [in, out] matrix), or the value fill when c is NULL. */
typedef struct imp_param {
    const char *suffix;
    const imp_const *c;
    int transpose;
    float fill;
} imp_param;

/* A line of the model text: a layer and its inputs (earlier lines). */
typedef struct imp_line {
    char *args;           /* "conv 32 3 padding=1", without names and inputs */
    const char *keyword;  /* for generated names ("conv3")                   */
    const char *hint;     /* preferred name: a parameter prefix or module path */
    const char *node;     /* the ONNX node, for the comment                   */
    int in[NB_MAX_INPUTS], n_in;
    int concat;           /* concat: previous=false when in[0] is not the line before */
    imp_param params[IMP_MAX_PARAMS];
    int n_params;
    char label[48];       /* "" : unnamed                                    */
} imp_line;

typedef struct importer {
    const char *label;    /* the file, in messages */
    const char *dir;      /* the file's directory, for external data; NULL: from memory */
    Onnx__ModelProto *m;
    const Onnx__GraphProto *gp;
    int opset;
    imp_value *vals;
    int n_vals, cap_vals;
    int *slots;           /* hash table of value names: index + 1, 0 empty */
    int n_slots;
    imp_line *lines;
    int n_lines, cap_lines;
    imp_const **consts;   /* owned */
    int n_consts, cap_consts;
    char **strs;          /* owned strings */
    int n_strs, cap_strs;
    /* per node of the graph */
    int *producer_of;     /* scratch */
    unsigned char *needed;
    int *fused;           /* node replaced by another (-1), or the op it becomes */
    const char **fused_x; /* the input of a fused node (gelu, silu, dense)      */
    const char **fused_b; /* MatMul + Add: the bias; a recurrent layer: its output */
    int *fused_n;         /* attention (at its out-projection): the in-projection's node */
    int *fused_i;         /* attention: heads * 2 + causal                            */
    const char *output;   /* the graph output value, after a final Softmax left out */
    const char *loss;
    int64_t batch;        /* the input's fixed batch size, 0: symbolic */
    int vocab;            /* an int64 input of token ids: the tables' rows; 0: float */
    struct graph_maps *gm; /* producers and uses of the values (onnx_import.c) */
    imp_value *out;       /* the model's output */
    nb_status err;        /* the status of the first failure */
} importer;

enum { FUSE_NONE = 0, FUSE_SKIP, FUSE_GELU, FUSE_GELU_TANH, FUSE_SILU, FUSE_DENSE,
       FUSE_RECURRENT, FUSE_ATTENTION, FUSE_SOFTPLUS };

/* messages name the file and the node */
nb_status imp_fail(importer *im, const Onnx__NodeProto *nd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
nb_status imp_oom(importer *im);
const char *imp_str(const char *s); /* s, or "" for NULL */
/* A name as it may appear in a message: control characters escaped, long
 * names cut (a copy owned by the importer). */
const char *imp_q(importer *im, const char *s);
char *imp_strf(importer *im, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* A float as the shortest text that reads back as the same float. */
void imp_float_text(char *buf, size_t size, float v);

imp_value *imp_find(importer *im, const char *name);
/* A new value; NULL with the error set when the name is taken or memory is out. */
imp_value *imp_define(importer *im, const Onnx__NodeProto *nd, const char *name);
nb_status imp_const_from_tensor(importer *im, const Onnx__TensorProto *t, const char *what,
                                imp_const **out);
/* The want bytes of a tensor stored in an external file (onnx_external.c),
 * in *out to free. */
nb_status imp_external_data(importer *im, const Onnx__TensorProto *t, const char *what,
                            size_t want, uint8_t **out);
/* The external files of im->m's tensors, each once: the location as key and
 * the path opened as value (nb_onnx_external_data). */
nb_status imp_external_files(importer *im, nb_kv **files, int *n);
/* A new line computing a value of per-sample shape ndim/dims, named out. */
imp_line *imp_add_line(importer *im, const Onnx__NodeProto *nd, const char *keyword,
                       const char *hint, const char *out, int ndim, const int *dims,
                       const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 8, 9)))
#endif
    ;
/* The line of a value as nabla must see it: reshaped to ONNX's shape first
 * where the two differ (a GlobalAveragePool keeps [C, 1, 1]). */
nb_status imp_materialize(importer *im, const Onnx__NodeProto *nd, imp_value *v, int *line);

/* A new float constant of the given shape, its values to be filled in. */
imp_const *imp_new_const(importer *im, int ndim, const int *dims);
/* The graph's structure: the node computing a value (-1: none), how many
 * needed nodes read it, the one that does when it is read once (else -1). */
int imp_producer(importer *im, const char *value);
int imp_uses(importer *im, const char *value);
int imp_only_consumer(importer *im, const char *value);
int imp_is_op(const importer *im, int k, const char *op);
/* Node k is a Transpose by perm (n axes). */
int imp_transposes(importer *im, int k, int n, const int *perm);
/* The name of output o of node k; "" when there is no such node or output. */
const char *imp_output(importer *im, int k, size_t o);
/* The constant a value holds, an initializer's or a Constant node's; else NULL. */
imp_const *imp_known_const(importer *im, const char *name);

/* Attributes and inputs of a node (onnx_import_ops.c). */
const Onnx__AttributeProto *imp_attr(const Onnx__NodeProto *nd, const char *name);
/* A string attribute absent or equal to one of the strings in want ("|"-separated). */
int imp_string_attr_is(const Onnx__NodeProto *nd, const char *name, const char *want);
nb_status imp_attr_int(importer *im, const Onnx__NodeProto *nd, const char *name,
                       int64_t dflt, int64_t lo, int64_t hi, int64_t *out);
const char *imp_input_name(const Onnx__NodeProto *nd, int i); /* NULL: absent or "" */
const char *imp_out_name(const Onnx__NodeProto *nd);
/* Input i computed by a layer; input i a float constant (NULL if optional and absent). */
nb_status imp_computed(importer *im, const Onnx__NodeProto *nd, int i, imp_value **v);
nb_status imp_constant(importer *im, const Onnx__NodeProto *nd, int i, int optional,
                       imp_const **c);
/* A line's name hints: PyTorch's module path of the node; the prefix of
 * input i named "<prefix>.weight", else the module path. */
const char *imp_module_path(importer *im, const Onnx__NodeProto *nd);
const char *imp_param_hint(importer *im, const Onnx__NodeProto *nd, int i);
void imp_add_param(imp_line *l, const char *suffix, const imp_const *c, int transpose,
                   float fill);

/* The sequence ops (onnx_import_seq.c): the vocabulary of an int64 input;
 * Transpose, RNN / LSTM / GRU, Squeeze (and Transpose) as one recurrent
 * layer; Gather of a table's rows; Add of a position table. */
nb_status imp_token_vocab(importer *im, const char *input, int *vocab);
void imp_match_recurrent(importer *im, int k);
nb_status imp_recurrent(importer *im, const Onnx__NodeProto *nd, int k);
nb_status imp_embedding(importer *im, const Onnx__NodeProto *nd);
nb_status imp_pos_embedding(importer *im, const Onnx__NodeProto *nd, imp_value *x,
                            const imp_const *table);

/* The int64 vector value holds when it is computed from the shape of of
 * (rank rank) by Shape, Slice, Concat, Mul, Reshape, Squeeze, Unsqueeze and
 * Cast only (onnx_import_shape.c): its length (at most max), each entry in
 * dims as the set of of's dimensions it multiplies (bit i: dimension i);
 * the nodes that compute it are added to chain[*n] (once each, at most cap
 * in all).  -1 (chain as it was) when value is not such a vector. */
int imp_shape_of(importer *im, const char *value, const char *of, int rank, unsigned *dims,
                 int max, int *chain, int *n, int cap);

/* Attention as the export writes it, found at the Reshape that splits the
 * heads and translated at the out-projection (onnx_import_attention.c). */
void imp_match_attention(importer *im, int k);
nb_status imp_attention(importer *im, const Onnx__NodeProto *nd, int k);

/* The value of a Constant node (onnx_import_ops.c). */
nb_status imp_constant_value(importer *im, const Onnx__NodeProto *nd, imp_const **out);
/* Translate one node (onnx_import_ops.c). */
nb_status imp_node(importer *im, int k);

#endif
