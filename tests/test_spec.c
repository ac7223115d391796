/* Model files: the shipped models parse into the expected graphs with
 * PyTorch's parameter names; DAGs with skip connections; every malformed file
 * in tests/corpus/spec gives an error naming the line and the token. */
#include "test.h"
#include "nabla.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void test_fashion_mlp(void) {
    nb_model m;
    CHECK_OK(nb_model_load("models/fashion_mlp.nn", &m));
    if (!m.graph) return;
    nb_graph *g = m.graph;
    CHECK(nb_param_count(g) == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
    static const char *names[] = {"1.weight", "1.bias", "3.weight", "3.bias", "5.weight", "5.bias"};
    CHECK(nb_param_tensor_count(g) == 6);
    for (int i = 0; i < 6 && i < nb_param_tensor_count(g); i++)
        CHECKF(strcmp(nb_node_name(g, nb_param_tensor(g, i)), names[i]) == 0, "param %d is %s", i,
               nb_node_name(g, nb_param_tensor(g, i)));
    CHECK(m.classes == 10);
    CHECK(m.input != NB_NONE && m.target != NB_NONE && m.loss != NB_NONE && m.output != NB_NONE);
    int ndim, dims[NB_MAX_DIMS];
    CHECK_OK(nb_graph_set_batch(g, 7));
    CHECK_OK(nb_node_shape(g, m.output, &ndim, dims));
    CHECK(ndim == 2 && dims[0] == 7 && dims[1] == 10);
    CHECK(strstr(m.text, "loss cross_entropy label_smoothing=0.1") != NULL);
    nb_model_free(&m);
}

/* A residual block written with names and @references trains end to end:
 * the skip connection's gradient reaches the first layer. */
static void test_skip_connection(void) {
    const char *text =
        "input 4\n"
        "h = dense 6 init=he\n"
        "relu\n"
        "dense 6 init=xavier gain=1.5\n"
        "r = add @h          # skip over two layers\n"
        "cat = concat @h     # previous output joined with h: 12 features\n"
        "dense 3 bias=false\n"
        "loss cross_entropy label_smoothing=0.1\n";
    nb_model m;
    CHECK_OK(nb_model_parse(text, "skip.nn", &m));
    if (!m.graph) return;
    nb_graph *g = m.graph;
    CHECK(nb_find(g, "h.weight") != NB_NONE && nb_find(g, "2.weight") != NB_NONE);
    CHECK(nb_find(g, "5.bias") == NB_NONE && nb_find(g, "5.weight") != NB_NONE);
    CHECK(nb_find(g, "r") != NB_NONE && nb_find(g, "cat") != NB_NONE);
    int ndim, dims[NB_MAX_DIMS];
    CHECK_OK(nb_node_shape(g, nb_find(g, "cat"), &ndim, dims));
    CHECK(ndim == 2 && dims[1] == 12);
    nb_rng r;
    nb_rng_seed(&r, 3);
    CHECK_OK(nb_graph_init(g, &r));
    nb_real x[8] = {0.5f, -1, 2, 0.25f, 1, 1, -0.5f, 0}, y[2] = {2, 0};
    CHECK_OK(nb_set_input(g, m.input, x, 2));
    CHECK_OK(nb_set_input(g, m.target, y, 2));
    CHECK_OK(nb_forward(g, m.loss));
    CHECK_OK(nb_backward(g, m.loss));
    const nb_real *gw = nb_grad(g, nb_find(g, "h.weight"));
    double norm = 0;
    for (int k = 0; k < 24; k++) norm += (double)gw[k] * gw[k];
    CHECK(norm > 0);
    nb_model_free(&m);
}

static void test_initialisers_and_options(void) {
    const char *text = "input 3\n"
                       "dense 4 init=normal:0.5\n"
                       "leaky_relu slope=0.2\n"
                       "dense 4 init=uniform:-0.1:0.3\n"
                       "elu alpha=0.5\n"
                       "dense 4 init=constant:0.25\n"
                       "gelu approximate=tanh\n"
                       "softplus beta=2 threshold=10\n"
                       "dense 2 init=he_uniform_fan_out\n"
                       "loss mse\n";
    nb_model m;
    CHECK_OK(nb_model_parse(text, "opts.nn", &m));
    if (!m.graph) return;
    nb_rng r;
    nb_rng_seed(&r, 1);
    CHECK_OK(nb_graph_init(m.graph, &r));
    const nb_real *w = nb_value(m.graph, nb_find(m.graph, "4.weight"));
    for (int k = 0; k < 16; k++) CHECK(w[k] == 0.25f);
    w = nb_value(m.graph, nb_find(m.graph, "2.weight"));
    for (int k = 0; k < 16; k++) CHECK(w[k] >= -0.1f && w[k] < 0.3f);
    CHECK(strcmp(nb_node_op(m.graph, m.loss), "mse_loss") == 0);
    CHECK(m.classes == 0);
    nb_model_free(&m);
}

/* Each keyword of a one-input op without options builds its op. */
static void test_plain_keywords(void) {
    static const struct { const char *keyword, *op; } cases[] = {
        {"relu", "relu"},         {"abs", "abs"},         {"sigmoid", "sigmoid"},
        {"tanh", "tanh"},         {"silu", "silu"},       {"hardswish", "hardswish"},
        {"softmax", "softmax"},   {"log_softmax", "log_softmax"},
        {"flatten", "flatten"},   {"global_avgpool", "global_avg_pool2d"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char text[64];
        snprintf(text, sizeof text, "input 2 3 3\ndense 4\n%s\n", cases[k].keyword);
        if (strcmp(cases[k].keyword, "global_avgpool") == 0)
            snprintf(text, sizeof text, "input 2 3 3\n%s\n", cases[k].keyword);
        nb_model m;
        CHECKF(nb_model_parse(text, "plain.nn", &m) == NB_OK, "%s: %s", cases[k].keyword,
               nb_last_error());
        if (!m.graph) continue;
        CHECKF(strcmp(nb_node_op(m.graph, m.output), cases[k].op) == 0, "%s", cases[k].keyword);
        nb_model_free(&m);
    }
}

static void test_corpus(void) {
    static const struct { const char *file, *needle; } cases[] = {
        {"unknown_layer.nn", ":2: unknown layer 'dence'"},
        {"unknown_option.nn", ":2: dense: unexpected option 'inti=he'"},
        {"bad_number.nn", ":2: dense: give the number of output units"},
        {"no_input.nn", ":1: dense: the first layer must be 'input'"},
        {"unknown_ref.nn", ":2: add: unknown node '@nowhere'"},
        {"duplicate_name.nn", ":3: node name 'h' is already used"},
        {"after_loss.nn", ":4: relu: nothing may follow the loss"},
        {"unknown_init.nn", ":2: dense: unknown initialiser init=gaussian"},
        {"huge_number.nn", ":2: dense: give the number of output units"},
        {"zero_dim.nn", ":1: input: dimension '0' is not a positive integer"},
        {"unknown_loss.nn", ":3: loss: unknown loss 'hinge'"},
        {"control_char.nn", ":2: control character 0x01"},
        {"shape_mismatch.nn", ":5: add: shapes [1, 5] (batched) and [1, 3] (batched)"},
        {"two_inputs.nn", ":2: input: a model has one input"},
        {"invalid_utf8.nn", ":2: '\xff\xfe' is not a valid node name"},
        {"empty.nn", "no 'input' line"},
        {"comment_only.nn", "no 'input' line"},
        {"missing.nn", "cannot open"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/corpus/spec/%s", cases[i].file);
        nb_model m;
        nb_status s = nb_model_load(path, &m);
        CHECKF(s != NB_OK, "%s parsed", cases[i].file);
        CHECKF(strstr(nb_last_error(), cases[i].needle) && strstr(nb_last_error(), path),
               "%s: message '%s' lacks '%s'", cases[i].file, nb_last_error(), cases[i].needle);
        CHECK(m.graph == NULL);
    }
}

/* The convolutional models: PyTorch's parameter and buffer names, shapes. */
static void test_cnn_models(void) {
    nb_model m;
    CHECK_OK(nb_model_load("models/fashion_cnn.nn", &m));
    if (m.graph) {
        static const char *names[] = {"0.weight", "1.weight", "1.bias", "4.weight", "5.weight",
                                      "5.bias", "10.weight", "10.bias", "13.weight", "13.bias"};
        CHECK(nb_param_tensor_count(m.graph) == 10);
        CHECK(nb_find(m.graph, "5.running_var") != NB_NONE);
        for (int i = 0; i < 10 && i < nb_param_tensor_count(m.graph); i++)
            CHECKF(strcmp(nb_node_name(m.graph, nb_param_tensor(m.graph, i)), names[i]) == 0,
                   "cnn param %d is %s", i, nb_node_name(m.graph, nb_param_tensor(m.graph, i)));
        int ndim, dims[NB_MAX_DIMS];
        CHECK_OK(nb_node_shape(m.graph, nb_find(m.graph, "10.weight"), &ndim, dims));
        CHECK(ndim == 2 && dims[0] == 128 && dims[1] == 64 * 7 * 7);
        nb_model_free(&m);
    }
    CHECK_OK(nb_model_load("models/fashion_resnet.nn", &m));
    if (m.graph) {
        nb_graph *g = m.graph;
        CHECK(nb_find(g, "stem.weight") != NB_NONE && nb_find(g, "stem.bias") == NB_NONE);
        CHECK(nb_find(g, "b2.downsample.0.weight") != NB_NONE);
        CHECK(nb_find(g, "b2.downsample.1.running_var") != NB_NONE);
        CHECK(nb_find(g, "b1.downsample.0.weight") == NB_NONE); /* same shape: plain add */
        CHECK(nb_buffer_count(g) == 3 * 9); /* 9 batch norms, 3 buffers each */
        int ndim, dims[NB_MAX_DIMS];
        CHECK_OK(nb_graph_set_batch(g, 2));
        CHECK_OK(nb_node_shape(g, nb_find(g, "b3"), &ndim, dims));
        CHECK(ndim == 4 && dims[1] == 128 && dims[2] == 4 && dims[3] == 4);
        nb_model_free(&m);
    }
}

static void test_layer_errors(void) {
    static const struct { const char *text, *needle; } cases[] = {
        {"input 1 8 8\nconv 4\n", ":2: conv: give output channels and kernel size"},
        {"input 1 8 8\nconv 4 3 stride=0\n", ":2: conv: option stride=0 is not an integer from 1"},
        {"input 1 8 8\nconv 4 9\n", ":2: conv2d"},
        {"input 3 8 8\nconv 4 3 groups=2\n", "divisible"},
        {"input 1 8 8\nmaxpool 0\n", ":2: maxpool: give the window size"},
        {"input 1 8 8\navgpool 2 ceil=maybe\n", ":2: avgpool: option ceil=maybe must be true or false"},
        {"input 4\ndropout 1\n", ":2: dropout: give the drop probability in [0, 1)"},
        {"input 4\nbatchnorm momentum=2\n", ":2: batchnorm: momentum must be in (0, 1]"},
        {"input 4\nlayernorm dims=9\n", ":2: layernorm: option dims=9"},
        {"input 1 8 8\nx = conv 4 3\nconv 6 3\nresidual @x\n", ":4: residual"},
        {"input 4\nglobal_avgpool\n", ":2: global_avg_pool2d"},
        {"input 4 6\nattention 4\n", ":2: attention: 4 heads do not divide the model dimension D = 6"},
        {"input 24\nattention 2\n", ":2: attention: input 'input' has shape [1, 24]; expected [batch, T, D]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nb_model m;
        nb_status s = nb_model_parse(cases[i].text, "layers.nn", &m);
        CHECKF(s != NB_OK, "case %zu parsed", i);
        CHECKF(strstr(nb_last_error(), cases[i].needle) != NULL, "case %zu: '%s' lacks '%s'", i,
               nb_last_error(), cases[i].needle);
    }
}

/* Models of every length from 1 to 80 layers: somewhere the node table
 * grows exactly while the loss line creates its target (under AddressSanitizer
 * this caught a read of the moved table). */
static void test_every_length(void) {
    static char text[4096];
    for (int layers = 1; layers <= 80; layers++) {
        size_t used = (size_t)snprintf(text, sizeof text, "input 3\n");
        for (int k = 0; k < layers; k++)
            used += (size_t)snprintf(text + used, sizeof text - used, "tanh\n");
        snprintf(text + used, sizeof text - used, "dense 2\nloss %s\n",
                 layers % 2 ? "cross_entropy" : "mse");
        nb_model m;
        CHECK_OK(nb_model_parse(text, "long.nn", &m));
        CHECK(m.classes == (layers % 2 ? 2 : 0));
        nb_model_free(&m);
    }
}

/* 60,000 dense layers (a 480 KB file) parse in linear time: every new
 * parameter's name is checked for uniqueness, and a scan of all nodes made
 * that quadratic (minutes).  CPU time, so a loaded machine does not matter. */
static void test_many_layers(void) {
    enum { LAYERS = 60000 };
    char *text = malloc(16 + (size_t)LAYERS * 8);
    if (!text) return;
    size_t used = (size_t)sprintf(text, "input 4\n");
    for (int k = 0; k < LAYERS; k++) used += (size_t)sprintf(text + used, "dense 4\n");
    clock_t t0 = clock();
    nb_model m;
    CHECK_OK(nb_model_parse(text, "many.nn", &m));
    double seconds = (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECKF(seconds < 10, "%d layers took %.1f s of CPU time", LAYERS, seconds);
    if (m.graph) {
        nb_graph *g = m.graph;
        CHECK(nb_param_tensor_count(g) == 2 * LAYERS);
        /* the name index answers like a scan: layers, parameters, absent names */
        nb_node w = nb_find(g, "59999.weight"), b = nb_find(g, "30000.bias");
        CHECK(w != NB_NONE && strcmp(nb_node_name(g, w), "59999.weight") == 0);
        CHECK(b != NB_NONE && strcmp(nb_node_name(g, b), "30000.bias") == 0);
        nb_node last = nb_find(g, "59999");
        CHECK(last != NB_NONE && nb_node_numel(g, w) == 16);
        CHECK(nb_find(g, "60000") == NB_NONE && nb_find(g, "0.weigh") == NB_NONE);
        for (int i = 0; i < nb_graph_node_count(g); i += 997)
            CHECKF(nb_find(g, nb_node_name(g, i)) == i, "node %d '%s'", i, nb_node_name(g, i));
    }
    nb_model_free(&m);
    free(text);
}

/* ${NAME} and ${NAME:-DEFAULT}: the values go into the model text, defaults
 * apply when no value is given, and every mistake names file, line and
 * variable. */
static void test_variables(void) {
    const char *text = "input 4   # ${not_a_variable_in_a_comment}\n"
                       "dense ${width:-8}\n"
                       "relu\n"
                       "dense ${width:-8}\n"
                       "dense ${classes}\n"
                       "loss cross_entropy\n";
    nb_kv set[] = {{"classes", "3"}, {"width", "5"}};
    nb_model m;
    CHECK_OK(nb_model_parse_vars(text, "vars.nn", set, 2, &m));
    if (m.graph) {
        CHECK(nb_param_count(m.graph) == 4 * 5 + 5 + 5 * 5 + 5 + 5 * 3 + 3);
        CHECK(strstr(m.text, "dense 5\n") && strstr(m.text, "dense 3\n"));
        CHECK(strstr(m.text, "# ${not_a_variable_in_a_comment}") != NULL);
        nb_model_free(&m);
    }
    CHECK_OK(nb_model_parse_vars(text, "vars.nn", set, 1, &m)); /* width: its default */
    if (m.graph) CHECK(nb_param_count(m.graph) == 4 * 8 + 8 + 8 * 8 + 8 + 8 * 3 + 3);
    nb_model_free(&m);
    static const struct { const char *text; nb_kv set; int n; const char *msg; } bad[] = {
        {"input 4\ndense ${width}\n", {"x", "1"}, 0,
         "v.nn:2: variable 'width' has no value: set it (nabla ... --set width=VALUE) or give it "
         "a default, ${width:-VALUE}"},
        {"input 4\ndense ${width:-2}\n", {"widht", "3"}, 1,
         "v.nn: the model has no variable 'widht' (its variables: width)"},
        {"input 4\ndense 3\n", {"w", "3"}, 1, "v.nn: the model has no variable 'w' (it has no "
         "variables)"},
        {"input 4\ndense ${width\n", {"x", "1"}, 0, "v.nn:2: '${' without its '}'"},
        {"input 4\ndense ${2w}\n", {"x", "1"}, 0,
         "v.nn:2: '${2w}' is not a variable: write ${NAME} or ${NAME:-DEFAULT}"},
        {"input 4\ndense ${w:-3}\ndense ${w:-4}\n", {"x", "1"}, 0,
         "v.nn:3: variable 'w' has the default '4' here but '3' on line 2"},
        {"input 4\ndense ${w}\n", {"w", "3 4"}, 1, "v.nn: variable 'w': the value '3 4' is "
         "not one token (no space, '#', '$' or braces; at most 127 characters)"},
        {"input 4\ndense ${w}\n", {"w", "abc"}, 1, "v.nn:2: dense:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nb_status s = nb_model_parse_vars(bad[i].text, "v.nn", &bad[i].set, bad[i].n, &m);
        CHECKF(s != NB_OK && strncmp(nb_last_error(), bad[i].msg, strlen(bad[i].msg)) == 0,
               "case %zu: %s", i, nb_last_error());
        CHECK(m.graph == NULL && m.text == NULL);
    }
}

int main(void) {
    test_fashion_mlp();
    test_skip_connection();
    test_initialisers_and_options();
    test_plain_keywords();
    test_corpus();
    test_cnn_models();
    test_layer_errors();
    test_every_length();
    test_many_layers();
    test_variables();
    TEST_END();
}
