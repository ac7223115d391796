/* ONNX export: a small MLP and a small CNN are exported and read back with
 * protobuf-c's unpack of the same schema: graph input and output, the
 * initializers' names, shapes and bytes, the nodes' op types and attributes;
 * then an op without an ONNX counterpart and bad arguments. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "files.h"
#include "nabla.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef NB_HAVE_ONNX
#include "onnx_read.h"

static char path[64];

/* Initialise g's parameters from seed, export x -> y and read the file back. */
static Onnx__ModelProto *init_and_export(nb_graph *g, nb_node x, nb_node y, unsigned seed) {
    nb_rng r;
    nb_rng_seed(&r, seed);
    CHECK_OK(nb_graph_init(g, &r));
    CHECK_OK(nb_export_onnx(g, x, y, path, NULL, 0));
    return test_read_onnx(path);
}

static const Onnx__TensorProto *find_init(const Onnx__GraphProto *gp, const char *name) {
    for (size_t k = 0; k < gp->n_initializer; k++)
        if (!strcmp(gp->initializer[k]->name, name)) return gp->initializer[k];
    return NULL;
}

static const Onnx__AttributeProto *find_attr(const Onnx__NodeProto *nd, const char *name) {
    for (size_t k = 0; k < nd->n_attribute; k++)
        if (!strcmp(nd->attribute[k]->name, name)) return nd->attribute[k];
    return NULL;
}

/* The tensor holds exactly the parameter's values as float32. */
static void check_param(const nb_graph *g, const Onnx__GraphProto *gp, const char *name) {
    const Onnx__TensorProto *t = find_init(gp, name);
    CHECKF(t != NULL, "initializer %s", name);
    if (!t) return;
    nb_node h = nb_find(g, name);
    int ndim, dims[NB_MAX_DIMS];
    CHECK_OK(nb_node_shape(g, h, &ndim, dims));
    CHECK(t->n_dims == (size_t)ndim && t->data_type == 1);
    size_t count = 1;
    for (int k = 0; k < ndim && k < (int)t->n_dims; k++) {
        CHECK(t->dims[k] == dims[k]);
        count *= (size_t)dims[k];
    }
    CHECK(t->raw_data.len == count * sizeof(float));
    const nb_real *v = nb_value((nb_graph *)g, h);
    for (size_t k = 0; v && t->raw_data.len == count * sizeof(float) && k < count; k++) {
        float f;
        memcpy(&f, t->raw_data.data + k * sizeof f, sizeof f);
        CHECK(f == (float)v[k]);
    }
}

static void test_mlp(void) {
    nb_graph *g = nb_graph_new();
    nb_node x = nb_input(g, "x", 1, (int[]){6});
    nb_node h = nb_relu(g, nb_dense(g, x, 5, "fc1", NULL));
    nb_node y = nb_softmax(g, nb_dense(g, h, 3, "fc2", NULL));
    nb_rng r;
    nb_rng_seed(&r, 7);
    CHECK_OK(nb_graph_init(g, &r));
    nb_kv meta[] = {{"class_names", "a,b,c"}, {"scale", "255"}};
    CHECK_OK(nb_export_onnx(g, x, y, path, meta, 2));
    Onnx__ModelProto *m = test_read_onnx(path);
    CHECK(m != NULL);
    if (!m) return;
    CHECK(m->ir_version == 8 && m->n_opset_import == 1 && m->opset_import[0]->version == 17);
    CHECK(m->n_metadata_props == 2 && !strcmp(m->metadata_props[0]->key, "class_names") &&
          !strcmp(m->metadata_props[0]->value, "a,b,c"));
    const Onnx__GraphProto *gp = m->graph;
    CHECK(gp->n_input == 1 && !strcmp(gp->input[0]->name, "x"));
    const Onnx__TensorShapeProto *sh = gp->input[0]->type->tensor_type->shape;
    CHECK(sh->n_dim == 2 && !strcmp(sh->dim[0]->dim_param, "batch") && sh->dim[1]->dim_value == 6);
    CHECK(gp->n_output == 1 && gp->output[0]->type->tensor_type->shape->dim[1]->dim_value == 3);
    CHECK(gp->n_node == 4 && gp->n_initializer == 4);
    const char *want[] = {"Gemm", "Relu", "Gemm", "Softmax"};
    for (size_t k = 0; k < 4 && k < gp->n_node; k++) CHECK(!strcmp(gp->node[k]->op_type, want[k]));
    const Onnx__AttributeProto *tb = find_attr(gp->node[0], "transB");
    CHECK(tb && tb->i == 1);
    const Onnx__AttributeProto *ax = find_attr(gp->node[3], "axis");
    CHECK(ax && ax->i == -1);
    /* the layers chain: each node reads the previous one's output */
    CHECK(!strcmp(gp->node[1]->input[0], gp->node[0]->output[0]));
    CHECK(!strcmp(gp->node[3]->output[0], gp->output[0]->name));
    check_param(g, gp, "fc1.weight");
    check_param(g, gp, "fc2.bias");
    onnx__model_proto__free_unpacked(m, NULL);
    nb_graph_free(g);
}

static void test_cnn(void) {
    nb_graph *g = nb_graph_new();
    nb_node x = nb_input(g, "img", 3, (int[]){2, 8, 8});
    nb_conv_opts co = {.stride_h = 2, .stride_w = 1, .pad_h = 1, .pad_w = 2, .dil_h = 1,
                       .dil_w = 2, .groups = 2};
    nb_node c = nb_conv2d_layer(g, x, 4, 3, 3, &co, "conv");
    nb_node b = nb_batch_norm(g, c, "bn", NULL);
    nb_node p = nb_avg_pool2d(g, nb_relu(g, b), 2, 2, 0, 0, 1, 1, 1, 0);
    nb_node q = nb_max_pool2d(g, p, 2, 2, 1, 1, 0, 0, 0);
    nb_node y = nb_dense(g, nb_flatten(g, q), 3, "fc", NULL);
    nb_node z = nb_global_avg_pool2d(g, p);
    Onnx__ModelProto *m = init_and_export(g, x, y, 3);
    CHECK(m != NULL);
    if (!m) return;
    const Onnx__GraphProto *gp = m->graph;
    const char *want[] = {"Conv", "BatchNormalization", "Relu", "AveragePool", "MaxPool",
                          "Reshape", "Gemm"};
    CHECK(gp->n_node == 7);
    for (size_t k = 0; k < 7 && k < gp->n_node; k++) CHECK(!strcmp(gp->node[k]->op_type, want[k]));
    const Onnx__NodeProto *conv = gp->node[0];
    const Onnx__AttributeProto *a = find_attr(conv, "strides");
    CHECK(a && a->n_ints == 2 && a->ints[0] == 2 && a->ints[1] == 1);
    a = find_attr(conv, "pads");
    CHECK(a && a->n_ints == 4 && a->ints[0] == 1 && a->ints[1] == 2 && a->ints[2] == 1 &&
          a->ints[3] == 2);
    a = find_attr(conv, "dilations");
    CHECK(a && a->ints[0] == 1 && a->ints[1] == 2);
    a = find_attr(conv, "group");
    CHECK(a && a->i == 2);
    a = find_attr(conv, "kernel_shape");
    CHECK(a && a->n_ints == 2 && a->ints[0] == 3 && a->ints[1] == 3);
    const Onnx__NodeProto *bn = gp->node[1];
    CHECK(bn->n_input == 5 && !strcmp(bn->input[3], "bn.running_mean") &&
          !strcmp(bn->input[4], "bn.running_var"));
    a = find_attr(bn, "epsilon");
    CHECK(a && a->f == 1e-5f);
    a = find_attr(gp->node[3], "ceil_mode");
    CHECK(a && a->i == 1);
    a = find_attr(gp->node[3], "count_include_pad");
    CHECK(a && a->i == 0);
    check_param(g, gp, "conv.weight");
    check_param(g, gp, "bn.running_var");
    /* Reshape keeps the batch (0) and gives the rest */
    const Onnx__TensorProto *shape = find_init(gp, gp->node[5]->input[1]);
    CHECK(shape && shape->data_type == 7 && shape->n_dims == 1 && shape->dims[0] == 2);
    if (shape && shape->raw_data.len == 16) {
        int64_t s[2];
        memcpy(s, shape->raw_data.data, sizeof s);
        int ndim, dims[NB_MAX_DIMS]; /* fc's input features */
        CHECK_OK(nb_node_shape(g, nb_find(g, "fc.weight"), &ndim, dims));
        CHECK(s[0] == 0 && s[1] == dims[1] && s[1] == 4 * 2 * 4);
    }
    onnx__model_proto__free_unpacked(m, NULL);
    /* the other branch: GlobalAveragePool then Flatten to nabla's [batch, C] */
    CHECK_OK(nb_export_onnx(g, x, z, path, NULL, 0));
    m = test_read_onnx(path);
    CHECK(m && m->graph->n_node == 6 &&
          !strcmp(m->graph->node[4]->op_type, "GlobalAveragePool") &&
          !strcmp(m->graph->node[5]->op_type, "Flatten"));
    if (m) onnx__model_proto__free_unpacked(m, NULL);
    nb_graph_free(g);
}

/* ceil_mode where PyTorch's rule drops the last window (it would start in
 * the right padding): 3 -> 2 in nabla, so ONNX must round down there. */
static void test_ceil_mode(void) {
    nb_graph *g = nb_graph_new();
    nb_node x = nb_input(g, "x", 3, (int[]){1, 3, 5});
    nb_node y = nb_avg_pool2d(g, x, 2, 2, 2, 2, 1, 1, 1, 1);
    int ndim, dims[NB_MAX_DIMS];
    CHECK_OK(nb_node_shape(g, y, &ndim, dims));
    CHECK(dims[2] == 2 && dims[3] == 3);
    CHECK_OK(nb_export_onnx(g, x, y, path, NULL, 0));
    Onnx__ModelProto *m = test_read_onnx(path);
    CHECK(m && m->graph->n_node == 1);
    if (m && m->graph->n_node == 1) {
        const Onnx__AttributeProto *a = find_attr(m->graph->node[0], "ceil_mode");
        CHECK(a && a->i == 0);
        const Onnx__TensorShapeProto *sh = m->graph->output[0]->type->tensor_type->shape;
        CHECK(sh->n_dim == 4 && sh->dim[2]->dim_value == 2);
    }
    if (m) onnx__model_proto__free_unpacked(m, NULL);
    /* one axis up (4 -> 3), the other dropped (5 -> 3): no ONNX equivalent */
    nb_node x2 = nb_input(g, "x2", 3, (int[]){1, 4, 5});
    nb_node y2 = nb_max_pool2d(g, x2, 2, 2, 2, 2, 1, 1, 1);
    CHECK(nb_export_onnx(g, x2, y2, path, NULL, 0) == NB_ERR_ARG);
    CHECKF(strstr(nb_last_error(), "ceil_mode"), "%s", nb_last_error());
    nb_graph_free(g);
}

/* Ops made of several ONNX ops, and layer norm over the last two dims. */
static void test_composed(void) {
    nb_graph *g = nb_graph_new();
    nb_node x = nb_input(g, "x", 2, (int[]){3, 4});
    nb_node y = nb_gelu(g, nb_silu(g, nb_layer_norm(g, x, 2, "ln", NULL)), 0);
    Onnx__ModelProto *m = init_and_export(g, x, y, 5);
    const char *want[] = {"LayerNormalization", "Sigmoid", "Mul", "Mul", "Erf", "Add", "Mul",
                          "Mul"};
    CHECK(m && m->graph->n_node == 8);
    for (size_t k = 0; m && k < 8 && k < m->graph->n_node; k++)
        CHECKF(!strcmp(m->graph->node[k]->op_type, want[k]), "node %zu: %s", k,
               m->graph->node[k]->op_type);
    if (m && m->graph->n_node == 8) {
        const Onnx__AttributeProto *a = find_attr(m->graph->node[0], "axis");
        CHECK(a && a->i == 1);
        CHECK(!strcmp(m->graph->node[0]->input[1], "ln.weight"));
        CHECK(!strcmp(m->graph->node[7]->output[0], m->graph->output[0]->name));
    }
    if (m) onnx__model_proto__free_unpacked(m, NULL);
    nb_graph_free(g);
}

/* gelu's tanh form from primitives in PyTorch's order; hardswish is HardSwish. */
static void test_gelu_tanh_hardswish(void) {
    nb_graph *g = nb_graph_new();
    nb_node x = nb_input(g, "x", 1, (int[]){4});
    nb_node y = nb_hardswish(g, nb_gelu(g, x, 1));
    CHECK_OK(nb_export_onnx(g, x, y, path, NULL, 0));
    Onnx__ModelProto *m = test_read_onnx(path);
    const char *want[] = {"Mul", "Mul", "Mul", "Add", "Mul", "Tanh", "Add", "Mul", "Mul",
                          "HardSwish"};
    CHECK(m && m->graph->n_node == 10);
    for (size_t k = 0; m && k < 10 && k < m->graph->n_node; k++)
        CHECKF(!strcmp(m->graph->node[k]->op_type, want[k]), "node %zu: %s", k,
               m->graph->node[k]->op_type);
    if (m && m->graph->n_node == 10) {
        const Onnx__GraphProto *gp = m->graph;
        CHECK(!strcmp(gp->node[0]->input[0], "x") && !strcmp(gp->node[0]->input[1], "x"));
        const Onnx__TensorProto *k = find_init(gp, gp->node[2]->input[1]);
        const Onnx__TensorProto *s = find_init(gp, gp->node[4]->input[1]);
        float kv = 0, sv = 0;
        if (k && k->raw_data.len == 4) memcpy(&kv, k->raw_data.data, 4);
        if (s && s->raw_data.len == 4) memcpy(&sv, s->raw_data.data, 4);
        CHECK(kv == 0.044715f && sv == (float)0.79788456080286535588);
        CHECK(!strcmp(gp->node[9]->input[0], gp->node[8]->output[0]));
    }
    if (m) onnx__model_proto__free_unpacked(m, NULL);
    nb_graph_free(g);
}

/* A dense layer on [batch, T, in]: MatMul by the transposed weight, Add of
 * the bias; the weight is only there transposed. */
static void test_dense_3d(void) {
    nb_graph *g = nb_graph_new();
    nb_node x = nb_input(g, "x", 2, (int[]){3, 4});
    nb_node y = nb_dense(g, x, 2, "fc", NULL);
    Onnx__ModelProto *m = init_and_export(g, x, y, 9);
    CHECK(m && m->graph->n_node == 2 && m->graph->n_initializer == 2);
    if (m && m->graph->n_node == 2) {
        const Onnx__GraphProto *gp = m->graph;
        CHECK(!strcmp(gp->node[0]->op_type, "MatMul") && !strcmp(gp->node[1]->op_type, "Add"));
        CHECK(!strcmp(gp->node[1]->input[1], "fc.bias") && !find_init(gp, "fc.weight"));
        const Onnx__TensorProto *t = find_init(gp, gp->node[0]->input[1]);
        CHECK(t && !strcmp(t->name, "fc.weight_t") && t->n_dims == 2 && t->dims[0] == 4 &&
              t->dims[1] == 2 && t->raw_data.len == 8 * sizeof(float));
        const nb_real *w = nb_value(g, nb_find(g, "fc.weight")); /* [2, 4] */
        for (int i = 0; t && w && t->raw_data.len == 32 && i < 4; i++)
            for (int o = 0; o < 2; o++) {
                float f;
                memcpy(&f, t->raw_data.data + (i * 2 + o) * sizeof f, sizeof f);
                CHECK(f == (float)w[o * 4 + i]);
            }
        check_param(g, gp, "fc.bias");
    }
    if (m) onnx__model_proto__free_unpacked(m, NULL);
    nb_graph_free(g);
}

static const Onnx__NodeProto *find_node(const Onnx__GraphProto *gp, const char *op_type) {
    for (size_t k = 0; k < gp->n_node; k++)
        if (!strcmp(gp->node[k]->op_type, op_type)) return gp->node[k];
    return NULL;
}

/* Block j (rows j H .. (j+1) H) of the initializer's [1, G H, cols] equals
 * block order[j] of nabla's parameter (offset: where B's half starts). */
static void check_gates(const nb_graph *g, const Onnx__TensorProto *t, const char *param,
                        int G, int H, int cols, size_t offset, const int *order) {
    const nb_real *v = nb_value((nb_graph *)g, nb_find(g, param));
    CHECKF(t && v, "%s", param);
    if (!t || !v || t->raw_data.len < (offset + (size_t)G * H * cols) * sizeof(float)) return;
    int same = 1;
    for (int j = 0; j < G; j++)
        for (int k = 0; k < H * cols; k++) {
            float f;
            memcpy(&f, t->raw_data.data + (offset + (size_t)(j * H * cols + k)) * sizeof f,
                   sizeof f);
            same &= f == (float)v[order[j] * H * cols + k];
        }
    CHECKF(same, "%s: gate blocks not in ONNX's order", param);
}

/* Token ids -> embedding + positions -> LSTM -> GRU (last state) -> dense:
 * int64 input, Gather, the layers time-major, weights in ONNX's gate order. */
static void test_sequence(void) {
    nb_graph *g = nb_graph_new();
    nb_node ids = nb_input(g, "ids", 1, (int[]){5});
    nb_node x = nb_pos_embedding(g, nb_embedding(g, ids, 7, 4, "emb"), "pos");
    nb_node l = nb_recurrent(g, x, NB_LSTM, 3, 0, "lstm");
    nb_node y = nb_dense(g, nb_recurrent(g, l, NB_GRU, 2, 1, "gru"), 6, "fc", NULL);
    Onnx__ModelProto *m = init_and_export(g, ids, y, 3);
    CHECK(m != NULL);
    if (!m) {
        nb_graph_free(g);
        return;
    }
    const Onnx__GraphProto *gp = m->graph;
    CHECK(gp->input[0]->type->tensor_type->elem_type == 7); /* int64 token ids */
    const char *want[] = {"Gather", "Add", "Transpose", "LSTM", "Squeeze", "Transpose",
                          "Transpose", "GRU", "Squeeze", "Gemm"};
    CHECKF(gp->n_node == 10, "%zu nodes", gp->n_node);
    for (size_t k = 0; k < 10 && k < gp->n_node; k++)
        CHECKF(!strcmp(gp->node[k]->op_type, want[k]), "node %zu: %s", k, gp->node[k]->op_type);
    const Onnx__NodeProto *lstm = find_node(gp, "LSTM"), *gru = find_node(gp, "GRU");
    CHECK(lstm && find_attr(lstm, "hidden_size")->i == 3 && lstm->n_output == 1);
    const Onnx__AttributeProto *lbr = gru ? find_attr(gru, "linear_before_reset") : NULL;
    CHECK(lbr && lbr->i == 1);
    /* the last state only: Y left out, Y_h squeezed to [batch, H] */
    CHECK(gru && gru->n_output == 2 && !strcmp(gru->output[0], ""));
    const Onnx__AttributeProto *perm = find_attr(gp->node[2], "perm");
    CHECK(perm && perm->n_ints == 3 && perm->ints[0] == 1 && perm->ints[1] == 0);
    static const int lstm_order[4] = {0, 3, 1, 2}, gru_order[3] = {1, 0, 2};
    const Onnx__TensorProto *W = find_init(gp, "lstm/W"), *R = find_init(gp, "lstm/R");
    const Onnx__TensorProto *B = find_init(gp, "gru/B");
    CHECK(W && W->n_dims == 3 && W->dims[0] == 1 && W->dims[1] == 12 && W->dims[2] == 4);
    check_gates(g, W, "lstm.weight_ih_l0", 4, 3, 4, 0, lstm_order);
    check_gates(g, R, "lstm.weight_hh_l0", 4, 3, 3, 0, lstm_order);
    CHECK(B && B->n_dims == 2 && B->dims[1] == 12);
    check_gates(g, B, "gru.bias_ih_l0", 3, 2, 1, 0, gru_order);
    check_gates(g, B, "gru.bias_hh_l0", 3, 2, 1, 6, gru_order);
    check_param(g, gp, "emb.weight");
    check_param(g, gp, "pos.weight");
    CHECK(!find_init(gp, "lstm.weight_ih_l0") && !find_init(gp, "gru.bias_hh_l0"));
    onnx__model_proto__free_unpacked(m, NULL);
    nb_graph_free(g);
}

/* Causal attention over a float input: the heads split by Reshape,
 * Transpose and Gathers, the scale and the -inf mask; ids computed from the
 * input reach a Gather through a Cast. */
static void test_attention(void) {
    nb_graph *g = nb_graph_new();
    nb_node x = nb_input(g, "x", 2, (int[]){3, 4});
    nb_node a = nb_attention(g, x, 2, 1, "attn");
    nb_node e = nb_embedding(g, nb_relu(g, nb_input(g, "ids", 1, (int[]){3})), 5, 4, "emb");
    Onnx__ModelProto *m = init_and_export(g, x, a, 4);
    CHECK(m != NULL);
    if (m) {
        const Onnx__GraphProto *gp = m->graph;
        CHECK(gp->input[0]->type->tensor_type->elem_type == 1);
        const char *want[] = {"MatMul", "Add", "Reshape", "Transpose", "Gather", "Gather",
                              "Gather", "Transpose", "MatMul", "Mul", "Add", "Softmax",
                              "MatMul", "Transpose", "Reshape", "MatMul", "Add"};
        CHECKF(gp->n_node == 17, "%zu nodes", gp->n_node);
        for (size_t k = 0; k < 17 && k < gp->n_node; k++)
            CHECKF(!strcmp(gp->node[k]->op_type, want[k]), "node %zu: %s", k,
                   gp->node[k]->op_type);
        const Onnx__TensorProto *mask =
            gp->n_node > 10 ? find_init(gp, gp->node[10]->input[1]) : NULL;
        CHECK(mask && mask->n_dims == 2 && mask->dims[0] == 3 && mask->raw_data.len == 36);
        for (int i = 0; mask && mask->raw_data.len == 36 && i < 3; i++)
            for (int j = 0; j < 3; j++) {
                float f;
                memcpy(&f, mask->raw_data.data + (i * 3 + j) * sizeof f, sizeof f);
                CHECK(j <= i ? f == 0 : isinf(f) && f < 0);
            }
        const Onnx__TensorProto *scale =
            gp->n_node > 9 ? find_init(gp, gp->node[9]->input[1]) : NULL;
        float sc = 0;
        if (scale && scale->raw_data.len == 4) memcpy(&sc, scale->raw_data.data, 4);
        CHECKF(fabsf(sc - 0.70710678f) < 1e-6f, "scale %g", (double)sc); /* 1 / sqrt(dh = 2) */
        onnx__model_proto__free_unpacked(m, NULL);
    }
    CHECK_OK(nb_export_onnx(g, nb_find(g, "ids"), e, path, NULL, 0));
    m = test_read_onnx(path);
    CHECK(m && m->graph->n_node == 3 && !strcmp(m->graph->node[1]->op_type, "Cast") &&
          find_attr(m->graph->node[1], "to")->i == 7 &&
          m->graph->input[0]->type->tensor_type->elem_type == 1);
    if (m) onnx__model_proto__free_unpacked(m, NULL);
    nb_graph_free(g);
}

/* An op without a counterpart is named with its node; bad arguments fail. */
static void test_errors(void) {
    nb_graph *g = nb_graph_new();
    nb_node x = nb_input(g, "x", 1, (int[]){4});
    nb_node t = nb_input(g, "t", 1, (int[]){4});
    nb_node h = nb_dense(g, x, 4, "fc", NULL);
    nb_node y = nb_sum(g, h);
    nb_node loss = nb_mse_loss(g, h, t);
    nb_rng r;
    nb_rng_seed(&r, 1);
    CHECK_OK(nb_graph_init(g, &r));
    unlink(path);
    CHECK(nb_export_onnx(g, x, y, path, NULL, 0) == NB_ERR_ARG);
    CHECKF(strstr(nb_last_error(), "op 'sum'") && strstr(nb_last_error(), nb_node_name(g, y)),
           "%s", nb_last_error());
    CHECK(access(path, F_OK) != 0); /* nothing written */
    CHECK(nb_export_onnx(g, x, loss, path, NULL, 0) == NB_ERR_ARG);
    CHECKF(strstr(nb_last_error(), "'t'"), "%s", nb_last_error());
    CHECK(nb_export_onnx(g, h, y, path, NULL, 0) == NB_ERR_ARG);
    CHECK(nb_export_onnx(g, x, 9999, path, NULL, 0) == NB_ERR_ARG);
    CHECK(nb_export_onnx(g, x, h, NULL, NULL, 0) == NB_ERR_ARG);
    CHECK(nb_export_onnx(g, x, h, path, NULL, 1) == NB_ERR_ARG);
    CHECK(nb_export_onnx(g, x, h, "/nonexistent-dir/m.onnx", NULL, 0) == NB_ERR_IO);
    nb_graph_free(g);
}

int main(void) {
    snprintf(path, sizeof path, "/tmp/nb_test_onnx_%d.onnx", (int)getpid());
    test_mlp();
    test_cnn();
    test_ceil_mode();
    test_composed();
    test_dense_3d();
    test_gelu_tanh_hardswish();
    test_sequence();
    test_attention();
    test_errors();
    unlink(path);
    TEST_END();
}

#else

int main(void) {
    nb_graph *g = nb_graph_new();
    nb_node x = nb_input(g, "x", 1, (int[]){4});
    CHECK(nb_export_onnx(g, x, x, "unused.onnx", NULL, 0) == NB_ERR_STATE);
    CHECK(strstr(nb_last_error(), "libonnx-dev") != NULL);
    printf("built without ONNX support: the export's tests skipped\n");
    nb_graph_free(g);
    TEST_END();
}

#endif
