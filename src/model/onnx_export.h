/* ONNX export, shared by onnx_export.c (the graph walk and most ops),
 * onnx_export_seq.c (the sequence ops) and onnx_export_proto.c (the
 * messages: nodes, attributes, initializers).  Internal to the library. */
#ifndef NB_ONNX_EXPORT_H
#define NB_ONNX_EXPORT_H

#ifdef NB_HAVE_ONNX

#include "../core/internal.h"
#include "onnx.pb-c.h"

#include <stdint.h>

enum { ONNX_IR_VERSION = 8, ONNX_OPSET = 17, ONNX_FLOAT = 1, ONNX_INT64 = 7, MAX_ATTRS = 8 };

/* Everything the model is made of is allocated here and freed at the end. */
typedef struct exporter {
    const nb_graph *g;
    void **owned;
    size_t n_owned, cap_owned;
    int oom;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    char **names;          /* ONNX value name of each graph node */
    int temps;             /* values made by the export (extra initializers, outputs) */
    unsigned char *folded; /* graph nodes another op's ONNX nodes compute (a
                              recurrent layer's input projection) */
    int tokens;            /* the input holds token ids: int64 in the ONNX model */
} exporter;

void *ex_alloc(exporter *e, size_t size);
char *ex_str(exporter *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* A node of op_type from inputs in (n_in names) to one output. */
Onnx__NodeProto *ex_node(exporter *e, const char *op_type, const char *name, int n_in,
                         char *const *in, char *out);
Onnx__NodeProto *ex_outputs(exporter *e, Onnx__NodeProto *nd, int n_out, char *const *out);
void attr_i(exporter *e, Onnx__NodeProto *nd, const char *name, int64_t v);
void attr_f(exporter *e, Onnx__NodeProto *nd, const char *name, double v);
void attr_ints(exporter *e, Onnx__NodeProto *nd, const char *name, int n, const int *v);
/* Initializers: raw little-endian data, float from nb_real values, a leaf's
 * values under its value name, an int64 vector (n = 0: a scalar). */
int ex_init(exporter *e, const char *name, int32_t type, int ndim, const int64_t *dims,
            const void *data, size_t bytes);
int ex_init_reals(exporter *e, const char *name, int ndim, const int *dims, const nb_real *v);
const nb_real *ex_values(exporter *e, int h);
int ex_leaf(exporter *e, int h);
char *ex_int64s(exporter *e, int h, const char *what, int n, const int64_t *v);
/* A new value name for what the export adds to node h. */
char *ex_temp(exporter *e, int h, const char *what);
/* A float initializer of ndim dims filled with v; its name, or NULL. */
char *ex_fill(exporter *e, int h, const char *what, int ndim, const int *dims, double v);
/* x times a scalar initializer, into out. */
Onnx__NodeProto *ex_mul_scalar(exporter *e, int h, const char *name, char *x, double v, char *out);

/* The sequence ops (onnx_export_seq.c). */
Onnx__NodeProto *ex_embedding(exporter *e, int h, const nb_node_t *n);
Onnx__NodeProto *ex_recurrent(exporter *e, int h, const nb_node_t *n);
Onnx__NodeProto *ex_attention(exporter *e, int h, const nb_node_t *n);

#endif
#endif
