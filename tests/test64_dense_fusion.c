/* test_dense_fusion.c in the double build: nothing fuses, the results agree. */
#include "test_dense_fusion.c"
