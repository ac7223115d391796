/* ONNX import: the models of models/, tests/models/onnx_every_op.nn and
 * tests/models/onnx_sequence_ops.nn, with random weights and batch-norm
 * statistics, are exported, imported and give the original's predictions;
 * import -> export -> import gives the same model text and predictions again.
 * Then hostile files, each made by changing an exported model in memory, and
 * the message each one gets. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "files.h"
#include "nabla.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef NB_HAVE_ONNX
#include "onnx_read.h"

enum { BATCH = 5 };
static char path[64];

/* Batch norm's running statistics away from their initial values. */
static void random_buffers(nb_graph *g, nb_rng *r) {
    for (int i = 0; i < nb_buffer_count(g); i++) {
        nb_node b = nb_buffer_tensor(g, i);
        const char *name = nb_node_name(g, b);
        nb_real *v = nb_value(g, b);
        int var = strstr(name, "running_var") != NULL;
        if (strstr(name, "num_batches_tracked")) continue;
        for (size_t k = 0; k < nb_node_numel(g, b); k++)
            v[k] = (nb_real)(var ? 0.5 + nb_rng_uniform(r) : nb_rng_uniform(r) - 0.5);
    }
}

/* The class probabilities of BATCH samples x in eval mode (malloc'd). */
static nb_real *probabilities(nb_model *m, const nb_real *x, size_t *n) {
    nb_graph *g = m->graph;
    nb_node y = nb_softmax(g, m->output);
    nb_graph_set_training(g, 0);
    *n = 0;
    if (y == NB_NONE || nb_set_input(g, m->input, x, BATCH) != NB_OK || nb_forward(g, y) != NB_OK)
        return NULL;
    *n = nb_node_numel(g, y);
    nb_real *p = malloc(*n * sizeof *p);
    if (p) memcpy(p, nb_value(g, y), *n * sizeof *p);
    return p;
}

static double max_diff(const nb_real *a, const nb_real *b, size_t n) {
    double d = 0;
    for (size_t k = 0; k < n; k++) d = fmax(d, fabs((double)a[k] - (double)b[k]));
    return d;
}

/* Export m (with its softmax, as nabla export does) and import the file. */
static nb_status export_import(nb_model *m, nb_model *out, nb_kv **meta, int *n_meta) {
    nb_kv kv[] = {{"data.input", "bytes/255"}, {"data.classes", "[\"a\", \"b\"]"}};
    nb_node y = nb_softmax(m->graph, m->output);
    nb_status s = nb_export_onnx(m->graph, m->input, y, path, kv, 2);
    return s != NB_OK ? s : nb_model_from_onnx(path, NULL, out, meta, n_meta);
}

/* The model text without comments: what the model is. */
static char *layers_only(const char *text) {
    char *t = malloc(strlen(text) + 1), *o = t;
    for (const char *p = text; t && *p;) {
        size_t n = strcspn(p, "#\n");
        while (n && p[n - 1] == ' ') n--;
        memcpy(o, p, n);
        o += n;
        p += strcspn(p, "\n");
        if (*p) p++;
        if (n) *o++ = '\n';
    }
    if (t) *o = '\0';
    return t;
}

static void check_model(const char *file) {
    nb_model a, b, c;
    nb_rng r;
    nb_rng_seed(&r, 11);
    CHECK_OK(nb_model_load(test_source_path(file), &a));
    CHECK_OK(nb_graph_init(a.graph, &r));
    random_buffers(a.graph, &r);
    nb_real x[BATCH * 784]; /* images, or token ids of a model of tokens */
    for (int k = 0; k < BATCH * 784; k++)
        x[k] = a.vocab ? (nb_real)(k * 7 % a.vocab) : (nb_real)nb_rng_uniform(&r);
    nb_kv *meta = NULL;
    int n_meta = 0;
    nb_status s = export_import(&a, &b, &meta, &n_meta);
    CHECKF(s == NB_OK, "%s: %s", file, nb_last_error());
    if (s != NB_OK) {
        nb_model_free(&a);
        return;
    }
    CHECK(n_meta == 2 && !strcmp(meta[0].key, "data.input") && !strcmp(meta[1].value, "[\"a\", \"b\"]"));
    nb_kv_free(meta, n_meta);
    CHECK(b.classes == a.classes && b.vocab == a.vocab && b.loss != NB_NONE);
    size_t na, nb, nc;
    nb_real *pa = probabilities(&a, x, &na), *pb = probabilities(&b, x, &nb);
    CHECKF(pa && pb && na == nb && max_diff(pa, pb, na) <= 1e-6, "%s: imported predictions "
           "differ by %g", file, pa && pb && na == nb ? max_diff(pa, pb, na) : -1.0);
    /* and once more: the same model, the same predictions */
    s = export_import(&b, &c, NULL, NULL);
    CHECKF(s == NB_OK, "%s: again: %s", file, nb_last_error());
    if (s == NB_OK) {
        nb_real *pc = probabilities(&c, x, &nc);
        char *tb = layers_only(b.text), *tc = layers_only(c.text);
        CHECKF(tb && tc && !strcmp(tb, tc), "%s: the model text changed:\n%s---\n%s", file,
               tb, tc);
        CHECK(pc && nc == nb && max_diff(pb, pc, nb) == 0);
        free(tb), free(tc), free(pc);
        nb_model_free(&c);
    }
    free(pa), free(pb);
    nb_model_free(&a);
    nb_model_free(&b);
}

/* ------------------------------------------------------------ hostile files */

/* The exported bytes of a small MLP (kind 0: x[6], Gemm fc1, Relu, Gemm fc2,
 * Softmax) or CNN (kind 1: img[2, 8, 8], Conv, BatchNormalization, Relu,
 * MaxPool, Reshape, Gemm), unpacked. */
static Onnx__ModelProto *base(int kind) {
    nb_graph *g = nb_graph_new();
    nb_node x, y;
    if (kind == 0) {
        x = nb_input(g, "x", 1, (int[]){6});
        nb_node h = nb_relu(g, nb_dense(g, x, 5, "fc1", NULL));
        y = nb_softmax(g, nb_dense(g, h, 3, "fc2", NULL));
    } else if (kind == 2) { /* ids[4] -> Gather, Transpose, GRU, Squeeze, Transpose, MatMul, Add */
        x = nb_input(g, "ids", 1, (int[]){4});
        nb_node e = nb_embedding(g, x, 5, 3, "emb");
        y = nb_dense(g, nb_recurrent(g, e, NB_GRU, 2, 0, "gru"), 5, "fc", NULL);
    } else {
        x = nb_input(g, "img", 3, (int[]){2, 8, 8});
        nb_conv_opts co = {.stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1, .dil_h = 1,
                           .dil_w = 1, .groups = 1};
        nb_node c = nb_batch_norm(g, nb_conv2d_layer(g, x, 4, 3, 3, &co, "conv"), "bn", NULL);
        nb_node p = nb_max_pool2d(g, nb_relu(g, c), 2, 2, 2, 2, 0, 0, 0);
        y = nb_dense(g, nb_flatten(g, p), 3, "fc", NULL);
    }
    nb_rng r;
    nb_rng_seed(&r, 2);
    CHECK_OK(nb_graph_init(g, &r));
    CHECK_OK(nb_export_onnx(g, x, y, path, NULL, 0));
    nb_graph_free(g);
    return test_read_onnx(path);
}

/* Import the bytes: NB_ERR_FORMAT with a message holding want and want2. */
static void expect_bytes(const char *what, const void *bytes, size_t len, const char *want,
                         const char *want2) {
    nb_model m;
    nb_status s = nb_model_from_onnx_bytes(bytes, len, "hostile.onnx", NULL, &m, NULL, NULL);
    const char *e = nb_last_error();
    CHECKF(s == NB_ERR_FORMAT && !strncmp(e, "hostile.onnx: ", 14) && strstr(e, want) &&
           (!want2 || strstr(e, want2)), "%s: %s: %s", what, nb_status_name(s), e);
    if (s == NB_OK) nb_model_free(&m);
}

static void expect(const char *what, const Onnx__ModelProto *m, const char *want,
                   const char *want2) {
    size_t len = onnx__model_proto__get_packed_size(m);
    unsigned char *buf = malloc(len);
    onnx__model_proto__pack(m, buf);
    expect_bytes(what, buf, len, want, want2);
    free(buf);
}

static Onnx__AttributeProto *find_attr(const Onnx__NodeProto *nd, const char *name) {
    for (size_t k = 0; k < nd->n_attribute; k++)
        if (!strcmp(nd->attribute[k]->name, name)) return nd->attribute[k];
    return NULL;
}

/* Broken bytes and broken sizes. */
static void test_hostile_data(void) {
    Onnx__ModelProto *m = base(0);
    if (!m) return;
    Onnx__GraphProto *gp = m->graph;
    size_t len = onnx__model_proto__get_packed_size(m);
    unsigned char *buf = malloc(len);
    onnx__model_proto__pack(m, buf);
    expect_bytes("truncated", buf, len / 2, "does not decode", "truncated");
    expect_bytes("empty", buf, 0, "no opset of the default domain", NULL);
    free(buf);
    Onnx__TensorProto *w = gp->initializer[0];
    CHECK(!strcmp(w->name, "fc1.weight") && w->n_dims == 2);
    int64_t d0 = w->dims[0], d1 = w->dims[1];
    w->dims[0] = (int64_t)1 << 40;
    expect("huge dimension", m, "initializer 'fc1.weight': dimension 0 is 1099511627776", NULL);
    w->dims[0] = w->dims[1] = (int64_t)1 << 24;
    expect("huge tensor", m, "initializer 'fc1.weight'", "more than 67108864 elements");
    w->dims[0] = d0, w->dims[1] = d1;
    w->raw_data.len -= 4;
    expect("short raw_data", m, "initializer 'fc1.weight': 116 bytes of raw_data for 30 "
           "elements of its shape", NULL);
    w->raw_data.len += 4;
    w->has_raw_data = 0;
    expect("no data", m, "initializer 'fc1.weight': 0 values for 30 elements", NULL);
    w->has_raw_data = 1;
    w->data_type = 11; /* double */
    expect("double", m, "initializer 'fc1.weight' has data type 11; only float32", NULL);
    w->data_type = 1;
    w->has_data_location = 1, w->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    expect("external data", m, "initializer 'fc1.weight': external data without a location",
           NULL); /* tests/test_onnx_external.c has the rest */
    w->has_data_location = 0;
    Onnx__TensorShapeProto *sh = gp->input[0]->type->tensor_type->shape;
    sh->dim[1]->dim_value = (int64_t)1 << 31;
    expect("huge input", m, "input 'x': dimension 1 must be a number from 1 to 16777216", NULL);
    sh->dim[1]->dim_value = 6;
    gp->input[0]->type->tensor_type->elem_type = 7;
    expect("int input", m, "input 'x' is int64 (token ids), but no Gather of an embedding "
           "table reads it", NULL);
    gp->input[0]->type->tensor_type->elem_type = 6; /* int32 */
    expect("int32 input", m, "input 'x' is neither a float32 tensor nor int64 token ids", NULL);
    gp->input[0]->type->tensor_type->elem_type = 1;
    m->opset_import[0]->version = 9;
    expect("old opset", m, "opset 9 of the default domain; nabla imports opsets 13 to 24", NULL);
    onnx__model_proto__free_unpacked(m, NULL);
}

/* Unknown ops, cycles, missing and doubled values. */
static void test_hostile_graph(void) {
    Onnx__ModelProto *m = base(0);
    if (!m) return;
    Onnx__GraphProto *gp = m->graph;
    CHECK(gp->n_node == 4 && !strcmp(gp->node[1]->op_type, "Relu"));
    char *relu = gp->node[1]->op_type, *name = gp->node[1]->name;
    gp->node[1]->op_type = "FancyAct";
    expect("unknown op", m, "node '", "' (FancyAct): op 'FancyAct' is not supported");
    gp->node[1]->op_type = relu;
    char *in0 = gp->node[0]->input[0];
    gp->node[0]->input[0] = gp->node[1]->output[0];
    expect("cycle", m, "node 'fc1' (Gemm): input", "is computed by node");
    expect("cycle", m, "which comes after it (a cycle, or nodes out of order)", name);
    gp->node[0]->input[0] = in0;
    Onnx__NodeProto *first = gp->node[0];
    gp->node[0] = gp->node[1], gp->node[1] = first;
    expect("out of order", m, "which comes after it (a cycle, or nodes out of order)", "fc1");
    gp->node[1] = gp->node[0], gp->node[0] = first;
    gp->n_initializer--; /* fc2.bias */
    CHECK(!strcmp(gp->initializer[gp->n_initializer]->name, "fc2.bias"));
    expect("missing initializer", m, "node 'fc2' (Gemm): input 'fc2.bias' is not a graph "
           "input, an initializer or the output of a node (a missing initializer?)", NULL);
    gp->n_initializer++;
    char *bias_name = gp->initializer[1]->name;
    gp->initializer[1]->name = gp->initializer[0]->name;
    expect("doubled", m, "initializer 'fc1.weight' is defined twice", NULL);
    gp->initializer[1]->name = bias_name;
    char *out_name = gp->output[0]->name;
    gp->output[0]->name = "nowhere";
    expect("no output", m, "the graph output 'nowhere' is not computed by any node", NULL);
    gp->output[0]->name = out_name;
    onnx__model_proto__free_unpacked(m, NULL);
}

/* Attribute values nabla has no layer for. */
static void test_hostile_attributes(void) {
    Onnx__ModelProto *m = base(0);
    if (!m) return;
    Onnx__AttributeProto *a = find_attr(m->graph->node[0], "transB");
    CHECK(a != NULL);
    if (a) a->i = 5;
    expect("transB", m, "node 'fc1' (Gemm): attribute transB=5 is not supported (0 to 1)", NULL);
    if (a) a->i = 1;
    a = find_attr(m->graph->node[3], "axis");
    if (a) a->i = 0;
    expect("softmax axis", m, "(Softmax): axis=0: nabla's softmax is over the last axis only",
           NULL);
    onnx__model_proto__free_unpacked(m, NULL);
    m = base(1);
    if (!m) return;
    Onnx__GraphProto *gp = m->graph;
    CHECK(gp->n_node == 6 && !strcmp(gp->node[0]->op_type, "Conv") &&
          !strcmp(gp->node[3]->op_type, "MaxPool"));
    a = find_attr(gp->node[0], "strides");
    if (a) a->ints[0] = 2;
    expect("conv strides", m, "node 'conv' (Conv): strides 2x1, dilations 1x1, pads [1, 1, 1, "
           "1]: nabla's model format has one stride", NULL);
    if (a) a->ints[0] = 1;
    a = find_attr(gp->node[0], "group");
    if (a) a->i = 3;
    expect("conv group", m, "node 'conv' (Conv): the weight must be [M, 2/3, kH, kW]", NULL);
    if (a) a->i = 1;
    a = find_attr(gp->node[3], "kernel_shape");
    if (a) a->ints[1] = 3;
    expect("pool kernel", m, "(MaxPool): needs a square kernel_shape", NULL);
    if (a) a->ints[1] = 2;
    a = find_attr(gp->node[3], "ceil_mode");
    if (a) a->i = 1;
    a = find_attr(gp->node[3], "pads");
    if (a) a->ints[0] = a->ints[1] = a->ints[2] = a->ints[3] = 1;
    a = find_attr(gp->node[3], "strides"); /* 8 -> 4 windows, the last starting at 9 */
    if (a) a->ints[0] = a->ints[1] = 3;
    expect("ceil_mode", m, "(MaxPool): ceil_mode=1 makes a last window that starts in the "
           "right padding", NULL);
    onnx__model_proto__free_unpacked(m, NULL);
}

/* Recurrent layers and embeddings nabla has no layer for. */
static void test_hostile_sequence(void) {
    Onnx__ModelProto *m = base(2);
    if (!m) return;
    Onnx__GraphProto *gp = m->graph;
    CHECK(gp->n_node == 7 && !strcmp(gp->node[2]->op_type, "GRU"));
    if (gp->n_node != 7) {
        onnx__model_proto__free_unpacked(m, NULL);
        return;
    }
    Onnx__NodeProto *gru = gp->node[2];
    Onnx__AttributeProto *a = find_attr(gru, "linear_before_reset");
    if (a) a->i = 0;
    expect("linear_before_reset", m, "node 'gru' (GRU): attribute linear_before_reset=0 is not "
           "supported (1 to 1)", NULL);
    if (a) a->i = 1;
    a = find_attr(gru, "hidden_size");
    if (a) a->i = 3;
    expect("hidden_size", m, "node 'gru' (GRU): W must be [1, 9, 3] for hidden_size 3", NULL);
    if (a) a->i = 2;
    Onnx__AttributeProto dir = ONNX__ATTRIBUTE_PROTO__INIT, *attrs[8];
    dir.name = "direction";
    dir.has_s = 1;
    dir.s = (ProtobufCBinaryData){7, (uint8_t *)"reverse"};
    Onnx__AttributeProto **old = gru->attribute;
    memcpy(attrs, old, gru->n_attribute * sizeof *attrs);
    attrs[gru->n_attribute++] = &dir;
    gru->attribute = attrs;
    expect("direction", m, "node 'gru' (GRU): only direction=forward is supported", NULL);
    gru->attribute = old;
    gru->n_attribute--;
    char *inputs[6] = {"", "", "", "", "", ""}, **given = gru->input;
    size_t n_given = gru->n_input;
    memcpy(inputs, given, n_given * sizeof *inputs);
    inputs[5] = given[3]; /* an initializer as initial_h: a state that is not zero */
    gru->input = inputs;
    gru->n_input = 6;
    expect("initial state", m, "node 'gru' (GRU): input 6 (initial state) is not supported", NULL);
    gru->input = given;
    gru->n_input = n_given;
    char *op = gp->node[4]->op_type;
    gp->node[4]->op_type = "Identity"; /* no Transpose back to batch-major */
    expect("no transpose back", m, "node 'gru/time_major' (Transpose): a Transpose is imported "
           "only before a recurrent layer", NULL);
    gp->node[4]->op_type = op;
    char *name = gp->input[0]->name;
    gp->input[0]->name = NULL; /* found by fuzz_onnx: a crash */
    expect("nameless input", m, "input '' is int64 (token ids), but no Gather", NULL);
    gp->input[0]->name = name;
    char *ids = gp->node[0]->input[1];
    gp->node[0]->input[1] = gp->node[0]->input[0]; /* the table indexing itself */
    expect("gather", m, "input 'ids' is int64 (token ids), but no Gather of an embedding table "
           "reads it", NULL);
    gp->node[0]->input[1] = ids;
    onnx__model_proto__free_unpacked(m, NULL);
}

/* Import m: the model text holds want. */
static void imports(const char *what, const Onnx__ModelProto *m, const char *want) {
    size_t len = onnx__model_proto__get_packed_size(m);
    unsigned char *buf = malloc(len);
    nb_model out;
    onnx__model_proto__pack(m, buf);
    nb_status s = nb_model_from_onnx_bytes(buf, len, "newer.onnx", NULL, &out, NULL, NULL);
    CHECKF(s == NB_OK && strstr(out.text, want), "%s: %s", what,
           s == NB_OK ? out.text : nb_last_error());
    if (s == NB_OK) nb_model_free(&out);
    free(buf);
}

/* Relu node 1 of base(0) replaced by Where(h > t, h, Softplus(h)), PyTorch
 * 2's softplus with threshold t (an initializer). */
static void softplus_where(Onnx__ModelProto *m, float t) {
    static char thr_name[] = "threshold";
    static float value;
    static Onnx__NodeProto sp = ONNX__NODE_PROTO__INIT, gt = ONNX__NODE_PROTO__INIT,
                           wh = ONNX__NODE_PROTO__INIT;
    static Onnx__TensorProto thr = ONNX__TENSOR_PROTO__INIT;
    static char *sp_in[1], *sp_out[1] = {"sp"}, *gt_in[2], *gt_out[1] = {"gt"}, *wh_in[3];
    static Onnx__NodeProto *nodes[6];
    static Onnx__TensorProto *inits[8];
    Onnx__GraphProto *gp = m->graph;
    char *h = gp->node[1]->input[0];
    value = t;
    sp_in[0] = h, gt_in[0] = h, gt_in[1] = thr_name;
    wh_in[0] = "gt", wh_in[1] = h, wh_in[2] = "sp";
    sp = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
    sp.op_type = "Softplus", sp.n_input = 1, sp.input = sp_in, sp.n_output = 1, sp.output = sp_out;
    gt = sp;
    gt.op_type = "Greater", gt.n_input = 2, gt.input = gt_in, gt.output = gt_out;
    wh = sp;
    wh.op_type = "Where", wh.n_input = 3, wh.input = wh_in, wh.output = gp->node[1]->output;
    thr.name = thr_name, thr.has_data_type = 1, thr.data_type = 1;
    thr.n_float_data = 1, thr.float_data = &value;
    nodes[0] = gp->node[0], nodes[1] = &sp, nodes[2] = &gt, nodes[3] = &wh;
    nodes[4] = gp->node[2], nodes[5] = gp->node[3];
    memcpy(inits, gp->initializer, gp->n_initializer * sizeof *inits);
    inits[gp->n_initializer] = &thr;
    CHECK(gp->n_node == 4 && gp->n_initializer < 8);
    gp->node = nodes, gp->n_node = 6;
    gp->initializer = inits, gp->n_initializer++;
}

/* Opsets 18 to 24, as PyTorch 2's exporter writes them: its Gelu op, and a
 * Reshape with allowzero=1 (a 0 in the shape is then not the batch). */
static void test_newer_opsets(void) {
    Onnx__ModelProto *m = base(0);
    if (!m) return;
    CHECK(m->n_opset_import == 1 && m->opset_import[0]->version == 17);
    m->opset_import[0]->version = 25;
    expect("opset 25", m, "opset 25 of the default domain; nabla imports opsets 13 to 24", NULL);
    m->opset_import[0]->version = 20;
    Onnx__NodeProto *act = m->graph->node[1];
    Onnx__AttributeProto approx = ONNX__ATTRIBUTE_PROTO__INIT, *attrs[1] = {&approx};
    Onnx__AttributeProto **old = act->attribute;
    size_t n_old = act->n_attribute;
    char *op = act->op_type;
    approx.name = "approximate";
    approx.has_type = 1;
    approx.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    approx.has_s = 1;
    approx.s = (ProtobufCBinaryData){4, (uint8_t *)"tanh"};
    act->op_type = "Gelu";
    act->attribute = attrs;
    act->n_attribute = 1;
    imports("gelu tanh", m, "\ngelu approximate=tanh  # ");
    approx.s = (ProtobufCBinaryData){4, (uint8_t *)"none"};
    imports("gelu", m, "\ngelu  # ");
    approx.s = (ProtobufCBinaryData){4, (uint8_t *)"fast"};
    expect("gelu fast", m, "(Gelu): attribute approximate must be none or tanh", NULL);
    act->op_type = op;
    act->attribute = old;
    act->n_attribute = n_old;
    Onnx__GraphProto *gp = m->graph, saved = *gp;
    softplus_where(m, 20);
    imports("softplus", m, "\nsoftplus\n");
    *gp = saved;
    softplus_where(m, 15);
    imports("softplus threshold", m, "\nsoftplus threshold=15\n");
    *gp = saved;
    onnx__model_proto__free_unpacked(m, NULL);
    m = base(1);
    if (!m) return;
    Onnx__NodeProto *reshape = m->graph->node[4];
    CHECK(!strcmp(reshape->op_type, "Reshape") && reshape->n_attribute == 0);
    Onnx__AttributeProto zero = ONNX__ATTRIBUTE_PROTO__INIT, *zattrs[1] = {&zero};
    zero.name = "allowzero";
    zero.has_type = 1;
    zero.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    zero.has_i = 1;
    zero.i = 1;
    old = reshape->attribute;
    reshape->attribute = zattrs;
    reshape->n_attribute = 1;
    expect("allowzero", m, "(Reshape): the shape's first entry 0 is not the batch", NULL);
    reshape->attribute = old;
    reshape->n_attribute = 0;
    onnx__model_proto__free_unpacked(m, NULL);
}

/* tests/corpus/onnx/<name>, unpacked. */
static Onnx__ModelProto *corpus(const char *name) {
    char rel[128];
    snprintf(rel, sizeof rel, "tests/corpus/onnx/%s", name);
    return test_read_onnx(test_source_path(rel));
}

/* PyTorch 2's exports of recurrent layers: zero states from Expand and Slice,
 * the direction axis dropped by a Reshape to a shape computed from Shape,
 * Slice, Mul and Concat; the same nodes computing anything else refused. */
static void test_torch2_recurrent(void) {
    Onnx__ModelProto *m = corpus("valid_torch2_lstm.onnx");
    if (m) imports("torch2 lstm", m, "\nnode_lstm__2 = lstm 2  # ");
    if (m) onnx__model_proto__free_unpacked(m, NULL);
    if (!(m = corpus("valid_torch2_gru_last.onnx"))) return;
    Onnx__GraphProto *gp = m->graph;
    imports("torch2 gru", m, "\nnode_gru__1 = gru 2 last=true  # ");
    CHECK(gp->n_node == 20 && !strcmp(gp->node[15]->op_type, "Concat") &&
          !strcmp(gp->node[12]->op_type, "Slice") && !strcmp(gp->node[3]->op_type, "Expand"));
    if (gp->n_node != 20) {
        onnx__model_proto__free_unpacked(m, NULL);
        return;
    }
    char **c = gp->node[15]->input, *t = c[0]; /* [batch, T, H]: not the Squeeze */
    c[0] = c[1], c[1] = t;
    expect("shape order", m, "(Shape): a Shape is imported only in the shape arithmetic", NULL);
    c[1] = c[0], c[0] = t;
    char **sl = gp->node[12]->input, *s1 = sl[1], *s2 = sl[2]; /* dim 2 times dim 2 */
    sl[1] = gp->node[11]->input[1], sl[2] = gp->node[11]->input[2];
    expect("shape product", m, "(Shape): a Shape is imported only in the shape arithmetic",
           NULL);
    sl[1] = s1, sl[2] = s2;
    char **ex = gp->node[3]->input, *zero = ex[0];
    ex[0] = "fc.bias"; /* a state of other values than 0 */
    expect("non-zero state", m, "node 'node_Shape_0' (Shape): a Shape is imported only", NULL);
    ex[0] = zero;
    imports("torch2 gru again", m, "gru 2 last=true");
    onnx__model_proto__free_unpacked(m, NULL);
}

/* A model whose graph holds a node whose attribute holds a graph ..., 100000
 * levels deep: refused before protobuf-c unpacks it recursively. */
static void test_deep_nesting(void) {
    enum { LEVELS = 100000, CAP = LEVELS * 3 * 6 + 16 };
    static const unsigned char tags[3] = {0x32, 0x2a, 0x0a}; /* attribute.g, node.attribute, graph.node */
    unsigned char *buf = malloc(CAP);
    if (!buf) return;
    size_t start = CAP; /* the bytes are built from the innermost message outwards */
    for (int k = 0; k <= 3 * LEVELS; k++) {
        size_t len = CAP - start;
        unsigned char v[10];
        int n = 0;
        do v[n++] = (unsigned char)((len & 0x7f) | (len > 0x7f ? 0x80 : 0)); while ((len >>= 7));
        start -= (size_t)n;
        memcpy(buf + start, v, (size_t)n);
        buf[--start] = k == 3 * LEVELS ? 0x3a : tags[k % 3]; /* model.graph outermost */
    }
    expect_bytes("deep nesting", buf + start, CAP - start, "not an ONNX model: messages nested "
                 "more than 64 deep", NULL);
    free(buf);
}

static void test_args(void) {
    nb_model m;
    CHECK(nb_model_from_onnx("/nonexistent-dir/m.onnx", NULL, &m, NULL, NULL) == NB_ERR_IO);
    CHECK(nb_model_from_onnx_bytes("", 0, "x", "hinge", &m, NULL, NULL) == NB_ERR_ARG);
    CHECK(strstr(nb_last_error(), "unknown loss 'hinge'") != NULL);
    CHECK(nb_model_from_onnx(NULL, NULL, &m, NULL, NULL) == NB_ERR_ARG);
}

int main(void) {
    snprintf(path, sizeof path, "/tmp/nb_test_onnx_import_%d.onnx", (int)getpid());
    check_model("models/fashion_mlp.nn");
    check_model("models/fashion_cnn.nn");
    check_model("models/fashion_resnet.nn");
    check_model("tests/models/onnx_every_op.nn");
    check_model("models/words_mlp.nn");
    check_model("models/words_gru.nn");
    check_model("models/words_transformer.nn");
    check_model("tests/models/onnx_sequence_ops.nn");
    test_hostile_data();
    test_hostile_graph();
    test_hostile_attributes();
    test_hostile_sequence();
    test_newer_opsets();
    test_torch2_recurrent();
    test_deep_nesting();
    test_args();
    unlink(path);
    TEST_END();
}

#else

int main(void) {
    nb_model m;
    CHECK(nb_model_from_onnx("unused.onnx", NULL, &m, NULL, NULL) == NB_ERR_STATE);
    CHECK(strstr(nb_last_error(), "libonnx-dev") != NULL);
    printf("built without ONNX support: the import's tests skipped\n");
    TEST_END();
}

#endif
