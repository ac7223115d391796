/* The precision of a graph's matrix products (nb_graph_set_precision): ops
 * pass it to nb_gemm_at.  Setting bf16 is refused where no bf16 kernel can
 * run, so a graph never computes in a precision it did not ask for. */
#include "../core/internal.h"
#include "../kernels/gemm.h"

#include <string.h>

nb_status nb_graph_set_precision(nb_graph *g, nb_precision precision) {
    if (!g) return nb_err(NB_ERR_ARG, "nb_graph_set_precision: graph is NULL");
    if (precision != NB_PRECISION_FP32 && precision != NB_PRECISION_BF16)
        return nb_err(NB_ERR_ARG, "nb_graph_set_precision: unknown precision %d", (int)precision);
    const char *missing = precision == NB_PRECISION_BF16 ? nb__bf16_missing() : NULL;
    if (missing)
        return nb_err(NB_ERR_STATE, "precision bf16 needs a CPU with AVX512-BF16 (%s)", missing);
    g->precision = precision;
    return NB_OK;
}

nb_precision nb_graph_precision(const nb_graph *g) { return g ? g->precision : NB_PRECISION_FP32; }

const char *nb_precision_name(nb_precision precision) {
    return precision == NB_PRECISION_BF16 ? "bf16" : precision == NB_PRECISION_FP32 ? "fp32" : "?";
}

nb_status nb_precision_parse(const char *text, nb_precision *out) {
    if (text && strcmp(text, "fp32") == 0) *out = NB_PRECISION_FP32;
    else if (text && strcmp(text, "bf16") == 0) *out = NB_PRECISION_BF16;
    else return nb_err(NB_ERR_ARG, "precision '%s': expected fp32 or bf16", text ? text : "");
    return NB_OK;
}
