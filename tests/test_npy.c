/* .npy loader: files written by numpy itself (every supported dtype, both
 * byte orders, format versions 1.0 to 3.0), the same bytes parsed from
 * memory, and a corpus of hostile files that must each give a clear error. */
#include "test.h"
#include "nabla.h"

#include <stdlib.h>

#define CORPUS "tests/corpus/npy/"

/* The whole file in memory (NULL if it cannot be read). */
static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            unsigned char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static void test_valid_types(void) {
    static const struct { const char *file; nb_dtype type; double scale; int unsigned_vals; }
    cases[] = {
        {"valid_f4.npy", NB_F32, 0.5, 0},   {"valid_f8.npy", NB_F64, 0.25, 0},
        {"valid_f4_big_endian.npy", NB_F32, 0.5, 0},
        {"valid_u1.npy", NB_U8, 1, 1},      {"valid_i1.npy", NB_I8, 1, 0},
        {"valid_i2.npy", NB_I16, 1000, 0},  {"valid_i4.npy", NB_I32, 100000, 0},
        {"valid_i4_big_endian.npy", NB_I32, 100000, 0},
        {"valid_v2.npy", NB_F32, 0.5, 0},   {"valid_v3.npy", NB_F32, 0.5, 0},
    };
    for (size_t f = 0; f < sizeof cases / sizeof cases[0]; f++) {
        char path[256];
        snprintf(path, sizeof path, CORPUS "%s", cases[f].file);
        nb_array a;
        nb_status s = nb_npy_load(path, &a);
        CHECKF(s == NB_OK, "%s: %s", cases[f].file, nb_last_error());
        if (s != NB_OK) continue;
        CHECK(a.dtype == cases[f].type);
        CHECK(a.ndim == 2 && a.dims[0] == 2 && a.dims[1] == 3 && a.numel == 6);
        for (int k = 0; k < 6; k++) {
            /* 1..6 with odd positions negated (not for u8) */
            double v = (k + 1) * ((cases[f].unsigned_vals || k % 2 == 0) ? 1 : -1) *
                       cases[f].scale;
            CHECKF(nb_array_get(&a, (size_t)k) == v, "%s[%d] = %g, expected %g", cases[f].file,
                   k, nb_array_get(&a, (size_t)k), v);
        }
        /* the same bytes from memory give the same array */
        size_t len;
        unsigned char *bytes = slurp(path, &len);
        nb_array b;
        CHECK(bytes != NULL);
        if (bytes && nb_npy_parse(bytes, len, cases[f].file, &b) == NB_OK) {
            CHECK(b.dtype == a.dtype && b.ndim == a.ndim && b.numel == a.numel &&
                  memcmp(a.data, b.data, a.numel * nb_dtype_size(a.dtype)) == 0);
            nb_array_free(&b);
        } else {
            CHECKF(0, "%s from memory: %s", cases[f].file, nb_last_error());
        }
        free(bytes);
        nb_array_free(&a);
    }
}

static void test_valid_shapes(void) {
    nb_array a;
    CHECK_OK(nb_npy_load(CORPUS "valid_scalar.npy", &a));
    CHECK(a.ndim == 0 && a.numel == 1 && a.dtype == NB_F64);
    if (a.data) CHECK(nb_array_get(&a, 0) == 2.5);
    nb_array_free(&a);
    CHECK_OK(nb_npy_load(CORPUS "valid_1d.npy", &a));
    CHECK(a.ndim == 1 && a.dims[0] == 5 && a.dtype == NB_U8);
    if (a.data) CHECK(nb_array_get(&a, 0) == 1 && nb_array_get(&a, 4) == 5);
    nb_array_free(&a);
    CHECK_OK(nb_npy_load(CORPUS "valid_b1.npy", &a));
    CHECK(a.dtype == NB_U8 && a.numel == 6);
    if (a.data) {
        static const double want[6] = {1, 0, 1, 0, 1, 0};
        for (int k = 0; k < 6; k++) CHECK(nb_array_get(&a, (size_t)k) == want[k]);
    }
    nb_array_free(&a);
    CHECK_OK(nb_npy_load(CORPUS "valid_images.npy", &a));
    CHECK(a.ndim == 4 && a.dims[0] == 4 && a.dims[1] == 1 && a.dims[2] == 28 &&
          a.dims[3] == 28 && a.dtype == NB_U8);
    if (a.data) CHECK(nb_array_get(&a, 300) == 300 % 256);
    nb_array_free(&a);
}

/* Small handmade headers: the parser accepts what numpy writes and no more. */
static nb_status parse_header(const char *header, const void *data, size_t dlen, nb_array *a) {
    unsigned char buf[512];
    size_t hlen = strlen(header);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(hlen & 0xFF);
    buf[9] = (unsigned char)(hlen >> 8);
    memcpy(buf + 10, header, hlen);
    memcpy(buf + 10 + hlen, data, dlen);
    return nb_npy_parse(buf, 10 + hlen + dlen, "h.npy", a);
}

static void test_header_syntax(void) {
    static const unsigned char six[6] = {1, 2, 3, 4, 5, 6};
    nb_array a;
    /* double quotes, no spaces, no trailing comma, Python 2 longs */
    CHECK_OK(parse_header("{\"descr\":\"|u1\",\"fortran_order\":False,\"shape\":(2,3)}\n", six,
                          6, &a));
    CHECK(a.ndim == 2 && a.dims[1] == 3);
    nb_array_free(&a);
    CHECK_OK(parse_header("{'shape': (6L,), 'fortran_order': False, 'descr': '|u1'}", six, 6,
                          &a));
    CHECK(a.ndim == 1 && a.dims[0] == 6);
    nb_array_free(&a);
    static const struct { const char *header, *needle; } bad[] = {
        {"", "ends early: expected '{'"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (6,) ", "expected ',' or '}'"},
        {"{'descr': '|u1' 'fortran_order': False, 'shape': (6,)}", "offset 16: expected ',' "
                                                                   "or '}'"},
        {"{'descr': '|u1', 'fortran_order': false, 'shape': (6,)}", "expected True or False"},
        {"{'descr': '|u1', 'fortran_order': Falsey, 'shape': (6,)}", "expected True or False"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': [6]}", "expected a shape tuple"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (6,,)}", "expected a dimension"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (6 6)}", "expected ',' or ')'"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (6,)}}", "the end of the header"},
        {"{'descr': |u1, 'fortran_order': False, 'shape': (6,)}", "expected a quoted string"},
        {"{descr: '|u1'}", "expected a quoted string"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (6,), 'shape': (6,)}", "twice"},
        {"{'descr': '|u1', 'fortran_order': False}", "lacks the key 'shape'"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (6,)\x01}", "expected ',' or '}'"},
        {"{'descr': '<U8', 'fortran_order': False, 'shape': (6,)}", "unsupported .npy dtype "
                                                                    "'<U8'"},
        {"{'descr': '', 'fortran_order': False, 'shape': (6,)}", "unsupported .npy dtype ''"},
        {"{'descr': '<f4junk', 'fortran_order': False, 'shape': (6,)}", "unsupported"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,)}", "quoted string"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        nb_status s = parse_header(bad[k].header, six, 6, &a);
        CHECKF(s == NB_ERR_FORMAT && strstr(nb_last_error(), bad[k].needle) &&
                   strstr(nb_last_error(), "h.npy"),
               "header %zu: %s", k, nb_last_error());
        CHECK(a.data == NULL);
    }
}

static void test_hostile(void) {
    static const struct { const char *file, *needle; } cases[] = {
        {"bad_empty.npy", "truncated .npy file (0 bytes)"},
        {"bad_short.npy", "truncated .npy file (4 bytes)"},
        {"bad_magic.npy", "not a .npy file"},
        {"bad_text.npy", "not a .npy file"},
        {"bad_version.npy", "unsupported .npy format version 4.0"},
        {"bad_preamble.npy", "truncated .npy preamble"},
        {"bad_header_len.npy", "header length 5000 goes past the end of the file"},
        {"bad_huge_header_len.npy", "larger than the limit"},
        {"bad_dict_unclosed.npy", "expected ',' or '}'"},
        {"bad_dict_not_dict.npy", "expected '{', found '[1, 2, 3]"},
        {"bad_dict_unknown_key.npy", "unexpected key 'x'"},
        {"bad_dict_missing_key.npy", "lacks the key 'fortran_order'"},
        {"bad_dict_dup_key.npy", "the key 'descr' twice"},
        {"bad_dict_escape.npy", "escape sequences"},
        {"bad_dict_unclosed_string.npy", "expected ':' after a key"},
        {"bad_dict_garbage_after.npy", "expected the end of the header after '}', found "
                                       "'junk"},
        {"bad_fortran.npy", "Fortran order"},
        {"bad_fortran_value.npy", "expected True or False, found 'Yes"},
        {"bad_dtype_complex.npy", "unsupported .npy dtype '<c8'"},
        {"bad_dtype_object.npy", "unsupported .npy dtype '|O'"},
        {"bad_dtype_pipe_f4.npy", "unsupported .npy dtype '|f4'"},
        {"bad_shape_negative.npy", "negative dimension"},
        {"bad_shape_zero.npy", "dimension 0 is 0"},
        {"bad_shape_not_tuple.npy", "shape (6) is not a tuple (expected (6,))"},
        {"bad_shape_float.npy", "expected ',' or ')' in the shape, found '.0"},
        {"bad_shape_big_dim.npy", "dimension 0 is larger than 2147483647"},
        {"bad_shape_huge.npy", "announces more than"},
        {"bad_shape_wrap.npy", "announces more than"},
        {"bad_shape_many_dims.npy", "more than 6 dimensions"},
        {"bad_truncated_data.npy", "data is 21 bytes but the shape and dtype need 24 "
                                   "(truncated)"},
        {"bad_trailing_data.npy", "trailing bytes"},
        {"bad_bool_value.npy", "boolean element 2 holds 2"},
        {"bad_nonascii_v1.npy", "non-ASCII byte 0xe9"},
        {"bad_utf8_v3.npy", "not valid UTF-8"},
        {"does_not_exist.npy", "cannot open"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, CORPUS "%s", cases[i].file);
        nb_array a = {0};
        nb_status s = nb_npy_load(path, &a);
        CHECKF(s != NB_OK, "%s loaded", cases[i].file);
        CHECKF(strstr(nb_last_error(), cases[i].needle) && strstr(nb_last_error(), path),
               "%s: message '%s' lacks '%s' or the file name", cases[i].file, nb_last_error(),
               cases[i].needle);
        CHECK(a.data == NULL);
        /* the memory parser gives the same verdict */
        size_t len;
        unsigned char *bytes = slurp(path, &len);
        if (bytes) {
            s = nb_npy_parse(bytes, len, cases[i].file, &a);
            CHECKF(s != NB_OK && strstr(nb_last_error(), cases[i].file) &&
                       strstr(nb_last_error(), cases[i].needle),
                   "%s from memory: '%s'", cases[i].file, nb_last_error());
            CHECK(a.data == NULL);
            free(bytes);
        }
    }
    nb_array a;
    CHECK(nb_npy_load("tests/corpus/npy", &a) == NB_ERR_IO); /* a directory */
    CHECK(strstr(nb_last_error(), "tests/corpus/npy: read error"));
    CHECK(nb_npy_load(NULL, &a) == NB_ERR_ARG);
    CHECK(nb_npy_parse(NULL, 4, "x", &a) == NB_ERR_ARG);
    CHECK(nb_npy_parse(NULL, 0, "x", &a) == NB_ERR_FORMAT);
}

int main(void) {
    test_valid_types();
    test_valid_shapes();
    test_header_syntax();
    test_hostile();
    TEST_END();
}
