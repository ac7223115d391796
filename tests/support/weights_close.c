/* weights_close A B TOL: two safetensors files have tensors of the same
 * names and shapes; other than float32 ones are equal, and each float32
 * tensor of B is within TOL of A's
 * relative to A's largest magnitude: max |a - b| <= TOL * max |a|.
 * Prints the largest relative difference; exit 0 when within, 1 if not. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"

static float at(const nb_st_tensor *t, size_t i) {
    float v;
    memcpy(&v, (const char *)t->data + i * sizeof v, sizeof v);
    return v;
}

/* The relative difference of one tensor pair; -1 when they do not match.
 * Tensors of other types (batch norm's counter) must be equal. */
static double compare(const nb_st_tensor *a, const nb_st_tensor *b) {
    if (a->dtype != b->dtype || a->numel != b->numel || a->nbytes != b->nbytes) return -1;
    if (a->dtype != NB_ST_F32) return memcmp(a->data, b->data, a->nbytes) == 0 ? 0 : -1;
    double diff = 0, scale = 0;
    for (size_t i = 0; i < a->numel; i++) {
        double x = at(a, i), y = at(b, i);
        if (fabs(x - y) > diff || x != x || y != y) diff = x == x && y == y ? fabs(x - y) : INFINITY;
        if (fabs(x) > scale) scale = fabs(x);
    }
    return scale > 0 ? diff / scale : diff;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: weights_close A.safetensors B.safetensors TOL\n");
        return 2;
    }
    nb_safetensors *a = NULL, *b = NULL;
    if (nb_st_open(argv[1], &a) != NB_OK || nb_st_open(argv[2], &b) != NB_OK) {
        fprintf(stderr, "weights_close: %s\n", nb_last_error());
        return 2;
    }
    double tol = atof(argv[3]), worst = 0;
    int ok = nb_st_count(a) == nb_st_count(b);
    for (int i = 0; ok && i < nb_st_count(a); i++) {
        nb_st_tensor ta, tb;
        nb_st_tensor_at(a, i, &ta);
        int j = nb_st_find(b, ta.name);
        ok = j >= 0 && nb_st_tensor_at(b, j, &tb) == NB_OK;
        double d = ok ? compare(&ta, &tb) : -1;
        if (d < 0) ok = 0;
        if (d > worst) worst = d;
        if (!ok) fprintf(stderr, "weights_close: tensor '%s' missing, of another shape or "
                         "different\n", ta.name);
    }
    printf("largest relative difference %.3g (tolerance %g)\n", worst, tol);
    nb_st_free(a);
    nb_st_free(b);
    return ok && worst <= tol ? 0 : 1;
}
