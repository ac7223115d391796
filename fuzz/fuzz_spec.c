/* libFuzzer target for the model-file parser (see docs/fuzzing.md). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* numbers of 4 or more digits only build models too large for the
     * fuzzer's memory limit (a line "dense 9999" is 10^8 parameters); the
     * parser's handling of large numbers is tested in tests/test_spec.c */
    for (size_t i = 0, run = 0; i < size; i++) {
        run = data[i] >= '0' && data[i] <= '9' ? run + 1 : 0;
        if (run > 3) return 0;
    }
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0'; /* the parser takes a C string; embedded NULs end it early */
    nb_model m;
    if (nb_model_parse(text, "fuzz.nn", &m) == NB_OK) {
        /* a model that parses must also plan and run a forward pass, when it
         * is small enough for the fuzzer's memory limit */
        double size = (double)nb_param_count(m.graph);
        for (int i = 0; i < nb_graph_node_count(m.graph); i++)
            size += 2.0 * (double)nb_node_numel(m.graph, i);
        if (size < 2e7 && nb_graph_set_batch(m.graph, 2) == NB_OK) nb_forward(m.graph, NB_NONE);
        nb_model_free(&m);
    }
    free(text);
    return 0;
}
