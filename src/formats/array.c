/* nb_array: an n-dimensional array loaded from a file, in its own dtype. */
#include "../core/internal.h"

#include <stdlib.h>

size_t nb_dtype_size(nb_dtype t) {
    switch (t) {
    case NB_U8: case NB_I8: return 1;
    case NB_I16: return 2;
    case NB_I32: case NB_F32: return 4;
    case NB_F64: return 8;
    }
    return 0;
}

const char *nb_dtype_name(nb_dtype t) {
    switch (t) {
    case NB_U8: return "u8";
    case NB_I8: return "i8";
    case NB_I16: return "i16";
    case NB_I32: return "i32";
    case NB_F32: return "f32";
    case NB_F64: return "f64";
    }
    return "?";
}

void nb_array_free(nb_array *a) {
    if (!a) return;
    free(a->data);
    a->data = NULL;
    a->numel = 0;
    a->ndim = 0;
}

double nb_array_get(const nb_array *a, size_t k) {
    const void *p = a->data;
    switch (a->dtype) {
    case NB_U8: return ((const uint8_t *)p)[k];
    case NB_I8: return ((const int8_t *)p)[k];
    case NB_I16: return ((const int16_t *)p)[k];
    case NB_I32: return ((const int32_t *)p)[k];
    case NB_F32: return ((const float *)p)[k];
    case NB_F64: return ((const double *)p)[k];
    }
    return 0;
}
