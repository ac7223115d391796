/* libFuzzer target for the .npy parser (nb_npy_parse). */
#include "nabla.h"

#include <stdint.h>
#include <string.h>

#define REQUIRE(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nb_array a;
    nb_status s = nb_npy_parse(data, size, "fuzz.npy", &a);
    if (s != NB_OK) {
        REQUIRE(a.data == NULL);
        REQUIRE(strstr(nb_last_error(), "fuzz.npy") != NULL);
        return 0;
    }
    /* the shape, the element count and the bytes agree */
    size_t numel = 1;
    REQUIRE(a.ndim >= 0 && a.ndim <= NB_MAX_DIMS);
    for (int d = 0; d < a.ndim; d++) {
        REQUIRE(a.dims[d] > 0);
        numel *= (size_t)a.dims[d];
    }
    REQUIRE(numel == a.numel && a.data);
    REQUIRE(numel * nb_dtype_size(a.dtype) <= size);
    volatile double sum = 0;
    for (size_t k = 0; k < a.numel; k++) sum += nb_array_get(&a, k);
    (void)sum;
    nb_array_free(&a);
    return 0;
}
