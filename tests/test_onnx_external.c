/* ONNX external data: an exported model whose initializers are moved to a
 * file beside it (as PyTorch 2's torch.onnx.export writes them) imports with
 * the same predictions; hostile locations, sizes and files get their
 * messages, and a model in memory cannot reach its data. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "files.h"
#include "nabla.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef NB_HAVE_ONNX
#include "onnx_read.h"

enum { BATCH = 3, IN = 6 };
static char dir[64], model_path[96], data_path[96];

static nb_graph *mlp(nb_node *x, nb_node *y) {
    nb_graph *g = nb_graph_new();
    *x = nb_input(g, "x", 1, (int[]){IN});
    *y = nb_softmax(g, nb_dense(g, nb_relu(g, nb_dense(g, *x, 5, "fc1", NULL)), 3, "fc2", NULL));
    nb_rng r;
    nb_rng_seed(&r, 4);
    CHECK_OK(nb_graph_init(g, &r));
    return g;
}

static void write_model(const Onnx__ModelProto *m) {
    size_t n = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = malloc(n);
    FILE *f = buf ? fopen(model_path, "wb") : NULL;
    CHECK(f != NULL);
    if (f) {
        onnx__model_proto__pack(m, buf);
        CHECK(fwrite(buf, 1, n, f) == n);
        fclose(f);
    }
    free(buf);
}

static Onnx__StringStringEntryProto *entry(const char *key, const char *value) {
    Onnx__StringStringEntryProto *e = malloc(sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = strdup(key);
    e->value = strdup(value);
    return e;
}

/* Every initializer's raw_data appended to data_path, 8 bytes apart, and
 * named by location/offset/length; the model written to model_path. */
static void write_external(Onnx__ModelProto *m, const char *location) {
    FILE *f = fopen(data_path, "wb");
    CHECK(f != NULL);
    long offset = 0;
    for (size_t k = 0; f && k < m->graph->n_initializer; k++) {
        Onnx__TensorProto *t = m->graph->initializer[k];
        char off[32], len[32];
        snprintf(off, sizeof off, "%ld", offset);
        snprintf(len, sizeof len, "%zu", t->raw_data.len);
        CHECK(fwrite(t->raw_data.data, 1, t->raw_data.len, f) == t->raw_data.len);
        CHECK(fwrite("padding!", 1, 8, f) == 8);
        offset += (long)t->raw_data.len + 8;
        free(t->raw_data.data);
        t->raw_data = (ProtobufCBinaryData){0, NULL};
        t->has_raw_data = 0;
        t->has_data_location = 1;
        t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
        t->n_external_data = 3;
        t->external_data = malloc(3 * sizeof *t->external_data);
        t->external_data[0] = entry("location", location);
        t->external_data[1] = entry("offset", off);
        t->external_data[2] = entry("length", len);
    }
    if (f) fclose(f);
    write_model(m);
}

/* The exported model, unpacked. */
static Onnx__ModelProto *exported(nb_graph *g, nb_node x, nb_node y) {
    CHECK_OK(nb_export_onnx(g, x, y, model_path, NULL, 0));
    return test_read_onnx(model_path);
}

static void test_round_trip(void) {
    nb_node x, y;
    nb_graph *g = mlp(&x, &y);
    Onnx__ModelProto *m = exported(g, x, y);
    if (!m) {
        nb_graph_free(g);
        return;
    }
    write_external(m, "weights.data");
    onnx__model_proto__free_unpacked(m, NULL);
    nb_model back;
    nb_status s = nb_model_from_onnx(model_path, NULL, &back, NULL, NULL);
    CHECKF(s == NB_OK, "%s", nb_last_error());
    nb_real in[BATCH * IN];
    for (int k = 0; k < BATCH * IN; k++) in[k] = (nb_real)(k % 7) - 3;
    nb_graph_set_training(g, 0);
    CHECK_OK(nb_set_input(g, x, in, BATCH));
    CHECK_OK(nb_forward(g, y));
    if (s == NB_OK) {
        nb_node p = nb_softmax(back.graph, back.output);
        nb_graph_set_training(back.graph, 0);
        CHECK_OK(nb_set_input(back.graph, back.input, in, BATCH));
        CHECK_OK(nb_forward(back.graph, p));
        CHECK(!memcmp(nb_value(back.graph, p), nb_value(g, y), BATCH * 3 * sizeof(nb_real)));
        nb_model_free(&back);
    }
    nb_graph_free(g);
    nb_kv *files = NULL;
    int n = -1;
    CHECK_OK(nb_onnx_external_data(model_path, &files, &n)); /* four tensors, one file */
    CHECK(n == 1 && files && !strcmp(files[0].key, "weights.data") &&
          !strcmp(files[0].value, data_path));
    nb_kv_free(files, n);
}

/* Import model_path after change(m): NB_ERR_FORMAT naming want (NULL: it
 * imports). */
static void expect(const char *what, void (*change)(Onnx__ModelProto *), const char *location,
                   const char *want) {
    nb_node x, y;
    nb_graph *g = mlp(&x, &y);
    Onnx__ModelProto *m = exported(g, x, y);
    nb_graph_free(g);
    if (!m) return;
    write_external(m, location);
    if (change) {
        change(m);
        write_model(m);
    }
    onnx__model_proto__free_unpacked(m, NULL);
    nb_model back;
    nb_status s = nb_model_from_onnx(model_path, NULL, &back, NULL, NULL);
    const char *e = nb_last_error();
    CHECKF(want ? s == NB_ERR_FORMAT && strstr(e, want) : s == NB_OK, "%s: %s: %s", what,
           nb_status_name(s), e);
    if (s == NB_OK) nb_model_free(&back);
}

static void set_entry(Onnx__ModelProto *m, int i, const char *value) {
    Onnx__StringStringEntryProto *e = m->graph->initializer[0]->external_data[i];
    free(e->value);
    e->value = strdup(value);
}

static void long_length(Onnx__ModelProto *m) { set_entry(m, 2, "124"); }
static void far_offset(Onnx__ModelProto *m) { set_entry(m, 1, "100000"); }
static void signed_offset(Onnx__ModelProto *m) { set_entry(m, 1, "-4"); }
static void huge_offset(Onnx__ModelProto *m) { set_entry(m, 1, "99999999999999999999999"); }
static void no_location(Onnx__ModelProto *m) {
    Onnx__StringStringEntryProto *e = m->graph->initializer[0]->external_data[0];
    free(e->key);
    e->key = strdup("place");
}
static void no_length(Onnx__ModelProto *m) { /* then the rest of the file: too much */
    Onnx__TensorProto *t = m->graph->initializer[0];
    onnx__string_string_entry_proto__free_unpacked(t->external_data[2], NULL);
    t->n_external_data = 2;
}
static void also_raw(Onnx__ModelProto *m) {
    Onnx__TensorProto *t = m->graph->initializer[0];
    t->has_raw_data = 1;
    t->raw_data = (ProtobufCBinaryData){4, (uint8_t *)strdup("abc")};
}

static void test_hostile(void) {
    expect("length", long_length, "weights.data", "holds 124 bytes at offset 0");
    expect("offset", far_offset, "weights.data", "bytes at offset 100000 run past the end");
    expect("signed", signed_offset, "weights.data", "offset '-4' is not a byte count");
    expect("huge", huge_offset, "weights.data", "is not a byte count");
    expect("location", no_location, "weights.data", "external data without a location");
    expect("no length", no_length, "weights.data", "its shape needs");
    expect("raw and external", also_raw, "weights.data", "both raw_data and external data");
    expect("up", NULL, "../weights.data", "must be a path under the model's directory");
    expect("up inside", NULL, "a/../../weights.data", "must be a path under");
    expect("absolute", NULL, "/etc/passwd", "must be a path under the model's directory");
    nb_kv *files = NULL;
    int n = -1;
    CHECK(nb_onnx_external_data(model_path, &files, &n) == NB_ERR_FORMAT && !files && n == 0);
    CHECK(strstr(nb_last_error(), "'/etc/passwd' must be a path under") != NULL);
    expect("missing", NULL, "other.data", "other.data': No such file or directory");
    char sub[128], ln[128];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    CHECK(mkdir(sub, 0700) == 0);
    expect("directory", NULL, "sub", "sub': not a regular file");
    CHECK(rmdir(sub) == 0);
    snprintf(ln, sizeof ln, "%s/link.data", dir);
    CHECK(symlink("weights.data", ln) == 0);
    expect("symlink", NULL, "link.data", "a symbolic link, which is not followed");
    CHECK(unlink(ln) == 0);
    char real[128], in_real[160]; /* a directory under the model's: fine; a link to it: not */
    snprintf(real, sizeof real, "%s/real", dir);
    snprintf(in_real, sizeof in_real, "%s/weights.data", real);
    snprintf(ln, sizeof ln, "%s/linkdir", dir);
    CHECK(mkdir(real, 0700) == 0 && link(data_path, in_real) == 0 && symlink("real", ln) == 0);
    expect("subdirectory", NULL, "real//weights.data", NULL);
    expect("linked directory", NULL, "linkdir/weights.data", "a symbolic link, which is not");
    CHECK(unlink(ln) == 0 && unlink(in_real) == 0 && rmdir(real) == 0);
    /* in memory there is no directory to find the data in */
    size_t len = 0;
    unsigned char *buf = test_read_file(model_path, &len);
    nb_model m;
    CHECK(buf && nb_model_from_onnx_bytes(buf, len, "mem.onnx", NULL, &m, NULL, NULL) ==
                     NB_ERR_FORMAT);
    CHECK(strstr(nb_last_error(), "load the model from its file (nb_model_from_onnx)") != NULL);
    free(buf);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/nb_test_onnx_external_%d", (int)getpid());
    snprintf(model_path, sizeof model_path, "%s/model.onnx", dir);
    snprintf(data_path, sizeof data_path, "%s/weights.data", dir);
    CHECK(mkdir(dir, 0700) == 0);
    test_round_trip();
    test_hostile();
    unlink(model_path);
    unlink(data_path);
    rmdir(dir);
    TEST_END();
}

#else

int main(void) {
    printf("built without ONNX support: the external data tests skipped\n");
    TEST_END();
}

#endif
