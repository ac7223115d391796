/* safetensors: what the reader and the writer share (dtypes, sizes, names
 * in messages).  The format is described in docs/weights-and-checkpoints.md;
 * safetensors_read.c reads files, safetensors_write.c writes them. */
#include "st_internal.h"

#include <string.h>

static const struct {
    const char *name;
    int bits;
} dtypes[NB_ST_DTYPE_COUNT] = {
    [NB_ST_BOOL] = {"BOOL", 8},           [NB_ST_U8] = {"U8", 8},
    [NB_ST_I8] = {"I8", 8},               [NB_ST_U16] = {"U16", 16},
    [NB_ST_I16] = {"I16", 16},            [NB_ST_F16] = {"F16", 16},
    [NB_ST_BF16] = {"BF16", 16},          [NB_ST_U32] = {"U32", 32},
    [NB_ST_I32] = {"I32", 32},            [NB_ST_F32] = {"F32", 32},
    [NB_ST_U64] = {"U64", 64},            [NB_ST_I64] = {"I64", 64},
    [NB_ST_F64] = {"F64", 64},            [NB_ST_C64] = {"C64", 64},
    [NB_ST_F8_E4M3] = {"F8_E4M3", 8},     [NB_ST_F8_E5M2] = {"F8_E5M2", 8},
    [NB_ST_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8}, [NB_ST_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8},
    [NB_ST_F8_E8M0] = {"F8_E8M0", 8},     [NB_ST_F6_E2M3] = {"F6_E2M3", 6},
    [NB_ST_F6_E3M2] = {"F6_E3M2", 6},     [NB_ST_F4] = {"F4", 4},
};

static int dtype_valid(nb_st_dtype t) { return (int)t >= 0 && (int)t < NB_ST_DTYPE_COUNT; }

const char *nb_st_dtype_name(nb_st_dtype t) { return dtype_valid(t) ? dtypes[t].name : "?"; }

int nb_st_dtype_bits(nb_st_dtype t) { return dtype_valid(t) ? dtypes[t].bits : 0; }

int nb__st_dtype_lookup(const char *name, nb_st_dtype *out) {
    for (int k = 0; k < NB_ST_DTYPE_COUNT; k++)
        if (strcmp(dtypes[k].name, name) == 0) {
            *out = (nb_st_dtype)k;
            return 1;
        }
    return 0;
}

int nb__st_tensor_bytes(uint64_t numel, nb_st_dtype t, uint64_t *bytes, const char **why) {
    uint64_t bits = (uint64_t)dtypes[t].bits;
    if (numel > UINT64_MAX / bits) {
        *why = "overflows 64 bits";
        return 0;
    }
    if (numel * bits % 8 != 0) {
        *why = "is not a whole number of bytes";
        return 0;
    }
    *bytes = numel * bits / 8;
    return 1;
}

uint64_t nb__st_shape_numel(int ndim, const int *dims, int *ok) {
    uint64_t n = 1;
    *ok = 1;
    for (int d = 0; d < ndim; d++) {
        uint64_t v = (uint64_t)dims[d];
        if (v != 0 && n > UINT64_MAX / v) *ok = 0;
        n *= v;
    }
    return *ok ? n : 0;
}

const char *nb__st_show(char buf[100], const char *s) {
    size_t n = 0, cut = 80;
    if (!s) s = "(null)";
    while (s[n] && n < cut) n++;
    int truncated = s[n] != '\0';
    /* cut on a character boundary */
    if (truncated)
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        buf[k] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
    }
    strcpy(buf + n, truncated ? "..." : "");
    return buf;
}

