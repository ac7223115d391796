/* Reader for the reference-value files in tests/reference/ (*.ref).
 *
 * Format, one item per line, '#' starts a comment line:
 *   case NAME                      starts a case
 *   NAME NDIM D1 .. DN : V1 V2 ..  a tensor of that case (values row-major)
 *   NAME = V                       a scalar attribute of that case
 * The files are written by the Python scripts beside them (PyTorch). */
#ifndef NB_REFDATA_H
#define NB_REFDATA_H

#include <stddef.h>

typedef struct ref_tensor {
    char name[64];
    int ndim;
    int dims[8];
    size_t n;
    double *v;
} ref_tensor;

typedef struct ref_case {
    char name[96];
    ref_tensor *t;
    int nt;
} ref_case;

typedef struct ref_file {
    ref_case *c;
    int nc;
} ref_file;

/* Load path; on error prints a message and returns NULL. */
ref_file *ref_load(const char *path);
void ref_free(ref_file *f);
const ref_case *ref_case_get(const ref_file *f, const char *name);
/* Tensor (or scalar attribute, as a 0-dim tensor) of a case; NULL if absent. */
const ref_tensor *ref_get(const ref_case *c, const char *name);
/* Scalar attribute value, or dflt if absent. */
double ref_scalar(const ref_case *c, const char *name, double dflt);

#endif

/* Compare n computed values against a reference tensor: each element must
 * satisfy |got - want| <= rtol * (|want| + 0.1 * max|want|).  The second term
 * keeps elements that cancel to near zero from demanding more than float32
 * carries.  Prints every mismatch (up to 5) with label; returns mismatches. */
#include "nabla.h"
int ref_check(const char *label, const nb_real *got, size_t n, const ref_tensor *want,
              double rtol);
