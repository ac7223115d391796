/* Thread count of the matrix kernels.  OpenBLAS owns the threads of every
 * large product; nabla's own loops run on the calling thread, so the two
 * never oversubscribe the cores. */
#include "../core/internal.h"

#ifdef NB_USE_CBLAS
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_corename(void);
#endif

const char *nb_blas_core(void) {
#ifdef NB_USE_CBLAS
    return openblas_get_corename();
#else
    return "portable";
#endif
}

nb_status nb_set_threads(int threads) {
    if (threads < 1 || threads > 1024)
        return nb_err(NB_ERR_ARG, "nb_set_threads: %d threads (expected 1 to 1024)", threads);
#ifdef NB_USE_CBLAS
    openblas_set_num_threads(threads);
#endif
    return NB_OK;
}

int nb_threads(void) {
#ifdef NB_USE_CBLAS
    return openblas_get_num_threads();
#else
    return 1;
#endif
}
