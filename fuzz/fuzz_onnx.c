/* libFuzzer target for the ONNX import (nb_model_from_onnx_bytes).
 *
 * Built and run by `make fuzz FUZZ_TARGETS=onnx` (docs/fuzzing.md); the
 * default test suite replays tests/corpus/onnx through it.  Properties
 * checked beyond "no crash, no sanitizer report":
 *   - a rejected input leaves no model and a message naming the input
 *     ("fuzz: ...");
 *   - an accepted one is a model whose text parses again to the same
 *     parameters and buffers, and whose forward pass runs (at batch 1, when the model is small enough to run
 *     within the fuzzer's time limit). */
#include "nabla.h"
#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

#define REQUIRE(cond)                                                                      \
    do {                                                                                   \
        if (!(cond)) __builtin_trap();                                                     \
    } while (0)

enum { MAX_RUN = 1 << 18 }; /* activation elements per sample worth a forward pass */

static void check_model(nb_model *m) {
    nb_model again;
    REQUIRE(nb_model_parse(m->text, "again", &again) == NB_OK);
    REQUIRE(nb_param_count(again.graph) == nb_param_count(m->graph));
    REQUIRE(nb_buffer_count(again.graph) == nb_buffer_count(m->graph));
    nb_model_free(&again);
    REQUIRE(m->input != NB_NONE && m->output != NB_NONE);
    nb_graph *g = m->graph;
    size_t elements = 0;
    for (int h = 0; h < g->n_nodes; h++) {
        size_t n = 1;
        for (int d = g->nodes[h].batched ? 1 : 0; d < g->nodes[h].ndim; d++)
            n *= (size_t)g->nodes[h].dims[d];
        elements += n;
    }
    if (elements > MAX_RUN) return;
    size_t in = nb_node_numel(g, m->input); /* the batch is 1 until set */
    nb_real *x = calloc(in ? in : 1, sizeof *x);
    REQUIRE(x);
    nb_graph_set_training(g, 0);
    REQUIRE(nb_set_input(g, m->input, x, 1) == NB_OK);
    REQUIRE(nb_forward(g, m->output) == NB_OK);
    free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nb_model m;
    nb_kv *meta = NULL;
    int n_meta = -1;
    if (nb_model_from_onnx_bytes(data, size, "fuzz", NULL, &m, &meta, &n_meta) != NB_OK) {
        REQUIRE(m.graph == NULL && meta == NULL && n_meta == 0);
        REQUIRE(strncmp(nb_last_error(), "fuzz: ", 6) == 0);
        return 0;
    }
    for (int k = 0; k < n_meta; k++) REQUIRE(meta[k].key && meta[k].value);
    nb_kv_free(meta, n_meta);
    check_model(&m);
    nb_model_free(&m);
    return 0;
}
