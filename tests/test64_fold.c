/* test_fold.c in the double build: the fold without AVX-512. */
#include "test_fold.c"
