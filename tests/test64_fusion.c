/* test_fusion.c in the double build: the fused paths without AVX-512. */
#include "test_fusion.c"
