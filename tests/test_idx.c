/* IDX loader: every element type, gzip, the real Fashion-MNIST files when
 * installed, and a corpus of hostile files that must each give a clear error. */
#include "test.h"
#include "nabla.h"

#include <stdlib.h>

#define CORPUS "tests/corpus/idx/"

static void test_valid_types(void) {
    static const char *files[] = {"valid_u8.idx", "valid_i8.idx", "valid_i16.idx",
                                  "valid_i32.idx", "valid_f32.idx", "valid_f64.idx",
                                  "valid_u8.idx.gz"};
    static const nb_dtype types[] = {NB_U8, NB_I8, NB_I16, NB_I32, NB_F32, NB_F64, NB_U8};
    static const double scale[] = {1, 1, 1000, 100000, 0.5, 0.25, 1};
    for (int f = 0; f < 7; f++) {
        char path[256];
        snprintf(path, sizeof path, CORPUS "%s", files[f]);
        nb_array a;
        CHECK_OK(nb_idx_load(path, &a));
        CHECK(a.dtype == types[f]);
        CHECK(a.ndim == 2 && a.dims[0] == 2 && a.dims[1] == 3 && a.numel == 6);
        for (int k = 0; k < 6 && a.data; k++) {
            /* u8 files hold 1..6; the signed ones alternate signs */
            double v = (k + 1) * ((types[f] == NB_U8 || k % 2 == 0) ? 1 : -1) * scale[f];
            CHECKF(nb_array_get(&a, (size_t)k) == v, "%s[%d] = %g, expected %g", files[f], k,
                   nb_array_get(&a, (size_t)k), v);
        }
        nb_array_free(&a);
    }
}

static void test_hostile(void) {
    static const struct { const char *file, *needle; } cases[] = {
        {"bad_empty.idx", "truncated"},
        {"bad_short_header.idx", "truncated"},
        {"bad_magic.idx", "not an IDX file"},
        {"bad_type.idx", "element type 0x0a"},
        {"bad_zero_ndim.idx", "0 dimensions"},
        {"bad_many_dims.idx", "7 dimensions"},
        {"bad_dims_truncated.idx", "truncated IDX header"},
        {"bad_zero_dim.idx", "dimension 0 is 0"},
        {"bad_negative_dim.idx", "dimension 0 is 4294967295"},
        {"bad_huge_dims.idx", "more than"},
        {"bad_overflow_dims.idx", "more than"},
        {"bad_wrap_dims.idx", "more than"},
        {"bad_truncated_data.idx", "truncated IDX data"},
        {"bad_trailing.idx", "trailing bytes"},
        {"bad_corrupt.idx.gz", "corrupt"},
        {"bad_truncated.idx.gz", "truncated"},
        {"does_not_exist.idx", "cannot open"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, CORPUS "%s", cases[i].file);
        nb_array a = {0};
        nb_status s = nb_idx_load(path, &a);
        CHECKF(s != NB_OK, "%s loaded", cases[i].file);
        CHECKF(strstr(nb_last_error(), cases[i].needle) && strstr(nb_last_error(), cases[i].file),
               "%s: message '%s' lacks '%s' or the file name", cases[i].file, nb_last_error(),
               cases[i].needle);
        CHECK(a.data == NULL);
    }
    nb_array dir;
    CHECK(nb_idx_load("tests/corpus/idx", &dir) == NB_ERR_IO); /* a directory */
    CHECK(strstr(nb_last_error(), "tests/corpus/idx: read error"));
    CHECK(nb_idx_load(NULL, NULL) == NB_ERR_ARG);
}

static void test_fashion_mnist(void) {
    const char *dir = "/usr/share/datasets/fashion-mnist/";
    char path[256];
    snprintf(path, sizeof path, "%st10k-labels-idx1-ubyte.gz", dir);
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        printf("skipped: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)\n");
        return;
    }
    fclose(probe);
    nb_array labels, images;
    CHECK_OK(nb_idx_load(path, &labels));
    snprintf(path, sizeof path, "%st10k-images-idx3-ubyte.gz", dir);
    CHECK_OK(nb_idx_load(path, &images));
    CHECK(labels.ndim == 1 && labels.dims[0] == 10000 && labels.dtype == NB_U8);
    CHECK(images.ndim == 3 && images.dims[0] == 10000 && images.dims[1] == 28 &&
          images.dims[2] == 28);
    /* the first test labels of Fashion-MNIST: ankle boot, pullover, trouser, trouser */
    if (labels.data) {
        const uint8_t *l = labels.data;
        CHECK(l[0] == 9 && l[1] == 2 && l[2] == 1 && l[3] == 1);
        int count[10] = {0};
        for (int i = 0; i < 10000; i++) count[l[i] < 10 ? l[i] : 0]++;
        for (int c = 0; c < 10; c++) CHECK(count[c] == 1000);
    }
    nb_array_free(&labels);
    nb_array_free(&images);
}

int main(void) {
    test_valid_types();
    test_hostile();
    test_fashion_mnist();
    TEST_END();
}
