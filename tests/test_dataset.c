/* Training data: arrays and CSV tables into nb_data, scaling, standardisation
 * with training statistics only, the seeded split, batch conversion, the
 * nb_dataset view, and loading Fashion-MNIST by name (a small fake copy in a
 * temporary directory always; the real one when installed). */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "files.h"
#include "nabla.h"

#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static uint8_t *bytes_of(size_t n, uint64_t seed) {
    uint8_t *p = malloc(n);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (uint8_t)(seed >> 56);
    }
    return p;
}

/* n u8 "images" [n, 2, 3] and labels i % 4 as arrays. */
static void make_arrays(size_t n, nb_array *x, nb_array *y) {
    memset(x, 0, sizeof *x);
    memset(y, 0, sizeof *y);
    x->dtype = NB_U8;
    x->ndim = 3;
    x->dims[0] = (int)n;
    x->dims[1] = 2;
    x->dims[2] = 3;
    x->numel = n * 6;
    x->data = bytes_of(n * 6, 7);
    y->dtype = NB_U8;
    y->ndim = 1;
    y->dims[0] = (int)n;
    y->numel = n;
    uint8_t *l = malloc(n);
    for (size_t i = 0; i < n; i++) l[i] = (uint8_t)(i % 4);
    y->data = l;
}

static void test_from_arrays(void) {
    nb_array x, y;
    make_arrays(10, &x, &y);
    uint8_t copy[60];
    memcpy(copy, x.data, 60);
    nb_data d;
    CHECK_OK(nb_data_from_arrays(&x, &y, &d));
    CHECK(x.data == NULL && y.data == NULL); /* taken over */
    CHECK(d.n == 10 && d.ndim == 2 && d.dims[0] == 2 && d.dims[1] == 3 && d.sample_size == 6);
    CHECK(d.x_u8 != NULL && d.x_real == NULL); /* bytes stay bytes */
    CHECK(d.y_size == 1 && d.n_classes == 4 && d.scale == 1);
    if (d.x_u8) CHECK(memcmp(d.x_u8, copy, 60) == 0);
    if (d.y) CHECK(d.y[5] == 1 && d.y[7] == 3);
    /* scaling to [0, 1] and batches of chosen samples */
    CHECK_OK(nb_data_scale_unit(&d));
    nb_real xb[18], yb[3];
    size_t idx[] = {9, 0, 4};
    CHECK_OK(nb_data_batch(&d, idx, 0, 3, xb, yb));
    for (int b = 0; b < 3; b++) {
        for (int j = 0; j < 6; j++)
            CHECK_CLOSE(xb[b * 6 + j], copy[idx[b] * 6 + j] / 255.0, 1e-7, 1e-7);
        CHECK(yb[b] == (nb_real)(idx[b] % 4));
    }
    CHECK_OK(nb_data_batch(&d, idx, 1, 2, xb, NULL)); /* from offset 1: samples 0, 4 */
    CHECK_CLOSE(xb[0], copy[0] / 255.0, 1e-7, 1e-7);
    CHECK_CLOSE(xb[6], copy[24] / 255.0, 1e-7, 1e-7);
    CHECK_OK(nb_data_batch(&d, NULL, 8, 2, xb, yb)); /* consecutive: samples 8, 9 */
    CHECK_CLOSE(xb[0], copy[48] / 255.0, 1e-7, 1e-7);
    CHECK(yb[1] == 1);
    size_t bad_idx[] = {10};
    CHECK(nb_data_batch(&d, bad_idx, 0, 1, xb, yb) == NB_ERR_ARG);
    CHECK(strstr(nb_last_error(), "sample index 10 out of range"));
    CHECK(nb_data_batch(&d, NULL, 9, 2, xb, yb) == NB_ERR_ARG);
    /* the last value of the last sample: what nb_fit reads is the whole set */
    CHECK_OK(nb_data_batch(&d, NULL, 9, 1, xb, yb));
    CHECK_CLOSE(xb[5], copy[59] / 255.0, 1e-7, 1e-7);
    nb_data_free(&d);
    CHECK(d.x_u8 == NULL);

    /* f64 features become reals; NaN is refused; label count must match */
    double vals[6] = {1, 2, 3, 4, 5, 6};
    nb_array fx = {NB_F64, 2, {3, 2}, 6, NULL};
    fx.data = malloc(sizeof vals);
    memcpy(fx.data, vals, sizeof vals);
    nb_array fy = {NB_F32, 1, {2}, 2, NULL};
    fy.data = calloc(2, sizeof(float));
    CHECK(nb_data_from_arrays(&fx, &fy, &d) == NB_ERR_SHAPE);
    CHECK(strstr(nb_last_error(), "x [3, 2] has 3 samples but y [2] has 2"));
    CHECK(fx.data != NULL && fy.data != NULL); /* untouched on failure */
    nb_array_free(&fy);
    ((double *)fx.data)[4] = NAN;
    CHECK(nb_data_from_arrays(&fx, NULL, &d) == NB_ERR_NUMERIC);
    CHECK(strstr(nb_last_error(), "x element 4 is NaN"));
    ((double *)fx.data)[4] = 5;
    CHECK_OK(nb_data_from_arrays(&fx, NULL, &d));
    CHECK(d.x_real && !d.x_u8 && d.y == NULL && d.y_size == 0 && d.sample_size == 2);
    CHECK(nb_data_scale_unit(&d) == NB_ERR_ARG);
    CHECK(nb_data_scale(&d, 0) == NB_ERR_ARG);
    CHECK(nb_data_scale(&d, NAN) == NB_ERR_ARG);
    CHECK_OK(nb_data_scale(&d, 1e20));
    CHECK(nb_data_scale(&d, 1e20) == NB_ERR_ARG && strstr(nb_last_error(), "1e+40"));
    nb_data_free(&d);
}

static void test_standardize(void) {
    /* train: feature 0 varies, feature 1 is constant; val comes from a
     * different distribution and must be transformed with train's numbers */
    enum { NT = 50, NV = 20 };
    nb_array tx = {NB_F32, 2, {NT, 2}, NT * 2, NULL}, vx = {NB_F32, 2, {NV, 2}, NV * 2, NULL};
    float *t = malloc(sizeof(float) * NT * 2), *v = malloc(sizeof(float) * NV * 2);
    for (int i = 0; i < NT; i++) {
        t[2 * i] = (float)(i % 7) * 0.5f + 10;
        t[2 * i + 1] = 3.25f;
    }
    for (int i = 0; i < NV; i++) {
        v[2 * i] = (float)i * 3 - 5;
        v[2 * i + 1] = (float)i;
    }
    double mean = 0, var = 0;
    for (int i = 0; i < NT; i++) mean += t[2 * i];
    mean /= NT;
    for (int i = 0; i < NT; i++) var += (t[2 * i] - mean) * (t[2 * i] - mean);
    double sd = sqrt(var / NT); /* population std, as documented */
    tx.data = t;
    vx.data = v;
    float vcopy[NV * 2];
    memcpy(vcopy, v, sizeof vcopy);
    nb_data train, val;
    CHECK_OK(nb_data_from_arrays(&tx, NULL, &train));
    CHECK_OK(nb_data_from_arrays(&vx, NULL, &val));
    CHECK_OK(nb_data_standardize(&train, &val, NULL));
    CHECK(train.mean && val.mean && train.mean != val.mean);
    if (train.mean) {
        CHECK_CLOSE(train.mean[0], mean, 1e-6, 1e-6);
        CHECK_CLOSE(train.inv_std[0], 1 / sd, 1e-6, 1e-6);
        CHECK(train.mean[1] == 3.25f && train.inv_std[1] == 1); /* constant: std 1 */
    }
    nb_real tb[NT * 2], vb[NV * 2];
    CHECK_OK(nb_data_batch(&train, NULL, 0, NT, tb, NULL));
    CHECK_OK(nb_data_batch(&val, NULL, 0, NV, vb, NULL));
    double m = 0, s2 = 0;
    for (int i = 0; i < NT; i++) m += tb[2 * i];
    for (int i = 0; i < NT; i++) s2 += tb[2 * i] * tb[2 * i];
    CHECK_CLOSE(m / NT, 0, 1e-5, 0);
    CHECK_CLOSE(s2 / NT, 1, 1e-5, 1e-5);
    for (int i = 0; i < NT; i++) CHECK(tb[2 * i + 1] == 0);
    for (int i = 0; i < NV; i++) {
        CHECK_CLOSE(vb[2 * i], (vcopy[2 * i] - mean) / sd, 1e-5, 1e-5);
        CHECK_CLOSE(vb[2 * i + 1], vcopy[2 * i + 1] - 3.25, 1e-6, 1e-6);
    }
    /* a held-out value far outside a tiny training spread does not fit a float */
    nb_array sx = {NB_F32, 2, {2, 1}, 2, NULL}, sv = {NB_F32, 2, {1, 1}, 1, NULL};
    float *sxv = malloc(2 * sizeof(float)), *svv = malloc(sizeof(float));
    sxv[0] = 0;
    sxv[1] = 1e-20f;
    svv[0] = 1e30f;
    sx.data = sxv;
    sv.data = svv;
    nb_data small, far;
    CHECK_OK(nb_data_from_arrays(&sx, NULL, &small));
    CHECK_OK(nb_data_from_arrays(&sv, NULL, &far));
    CHECK_OK(nb_data_standardize(&small, &far, NULL));
    nb_real one[2];
    CHECK_OK(nb_data_batch(&small, NULL, 0, 2, one, NULL));
    CHECK_CLOSE(one[0], -1, 1e-6, 1e-6);
    CHECK_CLOSE(one[1], 1, 1e-6, 1e-6);
    CHECK(nb_data_batch(&far, NULL, 0, 1, one, NULL) == NB_ERR_NUMERIC);
    CHECK(strstr(nb_last_error(), "sample 0, feature 0 is 2e+50"));
    nb_data_free(&small);
    nb_data_free(&far);
    /* scaling after standardising is refused; mismatched sets are refused */
    CHECK(nb_data_scale(&train, 2) == NB_ERR_STATE);
    nb_data other;
    nb_array ox = {NB_F32, 2, {2, 3}, 6, NULL};
    ox.data = calloc(6, sizeof(float));
    CHECK_OK(nb_data_from_arrays(&ox, NULL, &other));
    CHECK(nb_data_standardize(&train, NULL, &other) == NB_ERR_SHAPE);
    CHECK(strstr(nb_last_error(), "the test set samples are [3] but training samples are [2]"));
    nb_data_free(&other);
    nb_data_free(&train);
    nb_data_free(&val);
    CHECK(nb_data_standardize(NULL, NULL, NULL) == NB_ERR_ARG);
}

/* Feature 0 of sample i is i, so samples can be recognised after a split. */
static void make_numbered(size_t n, nb_data *d) {
    nb_array x = {NB_F32, 2, {(int)n, 2}, n * 2, NULL};
    nb_array y = {NB_I32, 1, {(int)n}, n, NULL};
    float *xv = malloc(sizeof(float) * n * 2);
    int32_t *yv = malloc(sizeof(int32_t) * n);
    for (size_t i = 0; i < n; i++) {
        xv[2 * i] = (float)i;
        xv[2 * i + 1] = (float)(i * 2);
        yv[i] = (int32_t)(i % 3);
    }
    x.data = xv;
    y.data = yv;
    CHECK_OK(nb_data_from_arrays(&x, &y, d));
}

static void test_split(void) {
    nb_data all, tr, va, tr2, va2;
    make_numbered(100, &all);
    CHECK(all.n_classes == 3);
    CHECK_OK(nb_data_scale(&all, 0.5));
    CHECK_OK(nb_data_split(&all, 0.2, 42, &tr, &va));
    CHECK(tr.n == 80 && va.n == 20 && tr.scale == 0.5 && va.n_classes == 3);
    int seen[100] = {0}, ordered = 1;
    for (size_t i = 0; i < tr.n; i++) {
        int id = (int)tr.x_real[2 * i];
        seen[id]++;
        CHECK(tr.x_real[2 * i + 1] == 2 * id && tr.y[i] == id % 3); /* rows stay whole */
        if (i && tr.x_real[2 * i] <= tr.x_real[2 * (i - 1)]) ordered = 0;
    }
    for (size_t i = 0; i < va.n; i++) {
        seen[(int)va.x_real[2 * i]]++;
        if (i && va.x_real[2 * i] <= va.x_real[2 * (i - 1)]) ordered = 0;
    }
    int each_once = 1;
    for (int i = 0; i < 100; i++) each_once &= seen[i] == 1;
    CHECK(each_once); /* a partition */
    CHECK(ordered);   /* original order kept within each part */
    /* same seed, same split; another seed, another split */
    CHECK_OK(nb_data_split(&all, 0.2, 42, &tr2, &va2));
    CHECK(memcmp(va.x_real, va2.x_real, sizeof(nb_real) * 40) == 0);
    nb_data_free(&tr2);
    nb_data_free(&va2);
    CHECK_OK(nb_data_split(&all, 0.2, 43, &tr2, &va2));
    CHECK(memcmp(va.x_real, va2.x_real, sizeof(nb_real) * 40) != 0);
    nb_data_free(&tr2);
    nb_data_free(&va2);
    /* the validation part is not the first or last samples: it is drawn */
    CHECK(!(va.x_real[0] == 0 && va.x_real[38] == 19) && !(va.x_real[0] == 80));
    /* statistics from the training part only */
    CHECK_OK(nb_data_standardize(&tr, &va, NULL));
    double mean = 0;
    for (size_t i = 0; i < tr.n; i++) mean += tr.x_real[2 * i] * 0.5;
    CHECK_CLOSE(va.mean[0], mean / (double)tr.n, 1e-5, 1e-6);
    nb_data_free(&tr);
    nb_data_free(&va);
    /* bad fractions */
    CHECK(nb_data_split(&all, 0, 1, &tr, &va) == NB_ERR_ARG);
    CHECK(nb_data_split(&all, 1, 1, &tr, &va) == NB_ERR_ARG);
    CHECK(nb_data_split(&all, NAN, 1, &tr, &va) == NB_ERR_ARG);
    CHECK(nb_data_split(&all, 0.001, 1, &tr, &va) == NB_ERR_ARG);
    CHECK(strstr(nb_last_error(), "leaves the validation set empty"));
    CHECK(nb_data_split(&all, 0.999, 1, &tr, &va) == NB_ERR_ARG);
    CHECK(strstr(nb_last_error(), "leaves the training set empty"));
    nb_data_free(&all);
    /* bytes split as bytes */
    nb_array x, y;
    make_arrays(30, &x, &y);
    uint8_t copy[180];
    memcpy(copy, x.data, 180);
    CHECK_OK(nb_data_from_arrays(&x, &y, &all));
    CHECK_OK(nb_data_split(&all, 0.5, 7, &tr, &va));
    CHECK(tr.x_u8 && va.x_u8 && tr.n == 15 && va.n == 15 && tr.ndim == 2);
    nb_data_free(&tr);
    nb_data_free(&va);
    nb_data_free(&all);
}

static void test_from_csv(void) {
    nb_csv_data c;
    REQUIRE_OK(nb_csv_load(test_source_path("tests/corpus/csv/valid_iris.csv"), NULL, &c));
    nb_data d;
    REQUIRE_OK(nb_data_from_csv(&c, &d));
    CHECK(c.x == NULL && c.class_names == NULL);
    CHECK(d.n == 4 && d.ndim == 1 && d.dims[0] == 4 && d.sample_size == 4 && d.n_classes == 3);
    CHECK(d.feature_names && strcmp(d.feature_names[2], "petal_length") == 0);
    CHECK(d.label_name && strcmp(d.label_name, "species") == 0);
    nb_data a, b;
    nb_status split = nb_data_split(&d, 0.5, 1, &a, &b);
    CHECK_OK(split);
    nb_data_free(&d);
    if (split != NB_OK) return;
    CHECK(a.feature_names && strcmp(a.feature_names[3], "petal_width") == 0);
    CHECK(b.class_names && strcmp(b.class_names[2], "virginica") == 0);
    CHECK(a.x_real && a.n == 2 && a.sample_size == 4);
    nb_data_free(&a);
    nb_data_free(&b);
}

/* An IDX u8 file, gzip-compressed. */
static void write_idx_gz(const char *path, int ndim, const int *dims, const uint8_t *data) {
    gzFile f = gzopen(path, "wb");
    if (!f) return;
    unsigned char head[4 + 4 * 3] = {0, 0, 8, (unsigned char)ndim};
    size_t n = 1;
    for (int d = 0; d < ndim; d++) {
        head[4 + 4 * d + 2] = (unsigned char)(dims[d] >> 8);
        head[4 + 4 * d + 3] = (unsigned char)dims[d];
        n *= (size_t)dims[d];
    }
    gzwrite(f, head, (unsigned)(4 + 4 * ndim));
    gzwrite(f, data, (unsigned)n);
    gzclose(f);
}

/* A fake Fashion-MNIST: 3 test images of 28x28 in dir/fashion-mnist/. */
/* Samples copied from arrays in memory: owned, shaped [x_size], read back. */
static void test_from_reals(void) {
    nb_real x[6] = {1, 2, 3, 4, 5, 6}, y[3] = {0, 1, 2};
    nb_data d;
    CHECK_OK(nb_data_from_reals(x, y, 3, 2, 1, &d));
    CHECK(d.n == 3 && d.ndim == 1 && d.dims[0] == 2 && d.sample_size == 2 && d.y_size == 1);
    CHECK(d.x_real != x && d.x_u8 == NULL && d.scale == 1);
    x[0] = 99; /* a copy: later changes to the caller's array do not show */
    nb_real xb[2], yb[1];
    size_t idx[3] = {2, 0, 1};
    CHECK_OK(nb_data_batch(&d, idx, 1, 1, xb, yb));
    CHECK(xb[0] == 1 && xb[1] == 2 && yb[0] == 0);
    nb_data_free(&d);
    CHECK(nb_data_from_reals(NULL, y, 3, 2, 1, &d) == NB_ERR_ARG);
    CHECK(strstr(nb_last_error(), "x is NULL"));
    CHECK(nb_data_from_reals(x, NULL, 3, 2, 1, &d) == NB_ERR_ARG);
    CHECK(nb_data_from_reals(x, y, 3, 0, 1, &d) == NB_ERR_ARG);
    CHECK_OK(nb_data_from_reals(x, NULL, 3, 2, 0, &d)); /* no labels */
    CHECK(d.y == NULL && d.y_size == 0);
    nb_data_free(&d);
}

static void test_load_by_name_fake(void) {
    char dir[] = "/tmp/nabla_data_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp failed");
        return;
    }
    char sub[256], ipath[300], lpath[300];
    snprintf(sub, sizeof sub, "%s/fashion-mnist", dir);
    CHECK(mkdir(sub, 0700) == 0);
    snprintf(ipath, sizeof ipath, "%s/t10k-images-idx3-ubyte.gz", sub);
    snprintf(lpath, sizeof lpath, "%s/t10k-labels-idx1-ubyte.gz", sub);
    int idims[3] = {3, 28, 28}, ldims[1] = {3};
    uint8_t *pix = bytes_of(3 * 784, 3);
    uint8_t labels[3] = {9, 0, 4};
    write_idx_gz(ipath, 3, idims, pix);
    write_idx_gz(lpath, 1, ldims, labels);

    nb_data d;
    CHECK_OK(nb_data_load("fashion-mnist", "test", dir, &d));
    CHECK(d.n == 3 && d.ndim == 3 && d.dims[0] == 1 && d.dims[1] == 28 && d.dims[2] == 28);
    CHECK(d.x_u8 && !d.x_real && d.n_classes == 10 && d.class_names);
    if (d.class_names) CHECK(strcmp(d.class_names[9], "Ankle boot") == 0);
    if (d.x_u8) CHECK(memcmp(d.x_u8, pix, 3 * 784) == 0);
    if (d.y) CHECK(d.y[0] == 9 && d.y[1] == 0 && d.y[2] == 4);
    nb_data_free(&d);
    /* the environment variable is used when no directory is given */
    setenv("NABLA_DATA_DIR", dir, 1);
    CHECK_OK(nb_data_load("fashion-mnist", "test", NULL, &d));
    CHECK(d.n == 3);
    nb_data_free(&d);
    /* missing training files: the message says how to install them */
    CHECK(nb_data_load("fashion-mnist", "train", NULL, &d) == NB_ERR_IO);
    CHECK(strstr(nb_last_error(), "train-images-idx3-ubyte.gz not found") &&
          strstr(nb_last_error(), "apt-get install dataset-fashion-mnist") &&
          strstr(nb_last_error(), dir));
    unsetenv("NABLA_DATA_DIR");
    /* counts that disagree */
    ldims[0] = 2;
    write_idx_gz(lpath, 1, ldims, labels);
    CHECK(nb_data_load("fashion-mnist", "test", dir, &d) == NB_ERR_FORMAT);
    CHECK(strstr(nb_last_error(), "2 labels, but") && strstr(nb_last_error(), "has 3 images"));
    /* a label out of range */
    ldims[0] = 3;
    labels[1] = 10;
    write_idx_gz(lpath, 1, ldims, labels);
    CHECK(nb_data_load("fashion-mnist", "test", dir, &d) == NB_ERR_FORMAT);
    CHECK(strstr(nb_last_error(), "label 1 is 10"));
    /* unknown names */
    CHECK(nb_data_load("cifar-10", "test", dir, &d) == NB_ERR_ARG);
    CHECK(nb_data_load("fashion-mnist", "validation", dir, &d) == NB_ERR_ARG);
    CHECK(strstr(nb_last_error(), "unknown split 'validation'"));
    remove(ipath);
    remove(lpath);
    rmdir(sub);
    rmdir(dir);
    free(pix);
}

static void test_fashion_mnist(void) {
    const char *dir = "/usr/share/datasets/fashion-mnist";
    if (access(dir, R_OK) != 0) {
        printf("skipped: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)\n");
        return;
    }
    nb_data train, test;
    REQUIRE_OK(nb_data_load("fashion-mnist", "train", "/usr/share/datasets", &train));
    nb_status loaded = nb_data_load("fashion-mnist", "test", "/usr/share/datasets", &test);
    CHECK_OK(loaded);
    if (loaded != NB_OK) {
        nb_data_free(&train);
        return;
    }
    CHECK(train.n == 60000 && test.n == 10000 && train.sample_size == 784);
    CHECK(train.x_u8 && !train.x_real); /* 47 MB of bytes, not 188 MB of floats */
    if (test.y) CHECK(test.y[0] == 9 && test.y[1] == 2 && test.y[2] == 1 && test.y[3] == 1);
    int count[10] = {0};
    for (size_t i = 0; i < train.n && train.y; i++) count[(int)train.y[i]]++;
    for (int c = 0; c < 10; c++) CHECK(count[c] == 6000);
    /* scaled to [0, 1], then standardised with training statistics */
    CHECK_OK(nb_data_scale_unit(&train));
    CHECK_OK(nb_data_scale_unit(&test));
    CHECK_OK(nb_data_standardize(&train, NULL, &test));
    nb_real batch[2 * 784];
    size_t idx[2] = {59999, 0};
    CHECK_OK(nb_data_batch(&train, idx, 0, 2, batch, NULL));
    int finite = 1;
    for (int k = 0; k < 2 * 784; k++) finite &= isfinite(batch[k]) != 0;
    CHECK(finite);
    nb_data_free(&train);
    nb_data_free(&test);
}

/* Labels renumbered through a trained model's class list. */
static void test_map_classes(void) {
    char *const names[] = {"cat", "dog", "emu"};
    const char *text = "a,label\n1,emu\n2,dog\n3,emu\n";
    nb_csv_data c;
    nb_data d;
    CHECK_OK(nb_csv_parse(text, strlen(text), "t.csv", NULL, &c));
    CHECK_OK(nb_data_from_csv(&c, &d)); /* its own classes: dog 0, emu 1 */
    CHECK(d.n_classes == 2 && d.y[0] == 1);
    CHECK_OK(nb_data_map_classes(&d, names, 3, "t.csv"));
    CHECK(d.n_classes == 3 && d.y[0] == 2 && d.y[1] == 1 && d.y[2] == 2);
    CHECK(d.class_names && strcmp(d.class_names[1], "dog") == 0);
    nb_data_free(&d);
    text = "a,label\n1,emu\n2,cow\n";
    CHECK_OK(nb_csv_parse(text, strlen(text), "t.csv", NULL, &c));
    CHECK_OK(nb_data_from_csv(&c, &d));
    CHECK(nb_data_map_classes(&d, names, 3, "t.csv") == NB_ERR_FORMAT);
    CHECK(strstr(nb_last_error(), "t.csv: sample 1 has class 'cow'") &&
          strstr(nb_last_error(), "classes 'cat', 'dog', 'emu'"));
    CHECK(d.n_classes == 2 && d.y[0] == 1); /* untouched on failure (emu stays 1, not 2) */
    nb_data_free(&d);
    /* integer labels i % 4: class numbers, checked against the count */
    nb_array x, y;
    make_arrays(6, &x, &y);
    CHECK_OK(nb_data_from_arrays(&x, &y, &d));
    CHECK(nb_data_map_classes(&d, NULL, 3, "y.npy") == NB_ERR_FORMAT);
    CHECK(strstr(nb_last_error(), "y.npy: sample 3 has label 3") &&
          strstr(nb_last_error(), "classes 0 to 2"));
    CHECK_OK(nb_data_map_classes(&d, NULL, 5, "y.npy"));
    CHECK(d.n_classes == 5 && d.class_names == NULL && d.y[5] == 1);
    CHECK(nb_data_map_classes(&d, names, 3, "y.npy") == NB_ERR_FORMAT);
    char *const four[] = {"a", "b", "c", "d"};
    CHECK_OK(nb_data_map_classes(&d, four, 4, "y.npy")); /* numbers index the names */
    CHECK(d.n_classes == 4 && d.class_names && strcmp(d.class_names[3], "d") == 0);
    CHECK(d.y[3] == 3);
    nb_data_free(&d);
}

/* Channels last to channels first: value (y, x, c) moves to (c, y, x). */
static void test_hwc_to_chw(void) {
    nb_array x = {0};
    x.dtype = NB_U8;
    x.ndim = 4;
    int dims[4] = {2, 2, 3, 3}; /* 2 samples of H 2, W 3, C 3 */
    memcpy(x.dims, dims, sizeof dims);
    x.numel = 36;
    x.data = bytes_of(36, 3);
    uint8_t raw[36];
    memcpy(raw, x.data, 36);
    nb_data d;
    CHECK_OK(nb_data_from_arrays(&x, NULL, &d));
    CHECK_OK(nb_data_hwc_to_chw(&d));
    CHECK(d.ndim == 3 && d.dims[0] == 3 && d.dims[1] == 2 && d.dims[2] == 3);
    for (int i = 0; i < 2; i++)
        for (int y = 0; y < 2; y++)
            for (int xx = 0; xx < 3; xx++)
                for (int c = 0; c < 3; c++)
                    CHECK(d.x_u8[i * 18 + (c * 2 + y) * 3 + xx] == raw[i * 18 + (y * 3 + xx) * 3 + c]);
    nb_data_free(&d);
    nb_real r[4] = {1, 2, 3, 4};
    CHECK_OK(nb_data_from_reals(r, NULL, 1, 4, 0, &d));
    CHECK(nb_data_hwc_to_chw(&d) == NB_ERR_SHAPE && strstr(nb_last_error(), "[4], not [H, W, C]"));
    nb_data_free(&d);
}

/* A feature with an infinity has no finite mean or variance: standardising
 * it would make every sample's value NaN.  Refused, naming the feature and
 * the sample. */
static void test_standardize_nonfinite(void) {
    nb_real x[6] = {1, 2, 3, (nb_real)INFINITY, 5, 6}, y[3] = {0, 1, 2};
    nb_data d;
    CHECK_OK(nb_data_from_reals(x, y, 3, 2, 1, &d));
    CHECK(nb_data_standardize(&d, NULL, NULL) == NB_ERR_NUMERIC);
    CHECKF(strstr(nb_last_error(), "feature 1 of the training data") &&
               strstr(nb_last_error(), "sample 1 has inf"),
           "%s", nb_last_error());
    CHECK(d.mean == NULL && d.inv_std == NULL);
    nb_data_free(&d);
}

int main(void) {
    test_from_arrays();
    test_standardize_nonfinite();
    test_standardize();
    test_split();
    test_from_csv();
    test_from_reals();
    test_map_classes();
    test_hwc_to_chw();
    test_load_by_name_fake();
    test_fashion_mnist();
    TEST_END();
}
