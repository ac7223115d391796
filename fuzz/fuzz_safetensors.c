/* libFuzzer target for the safetensors reader (and, on every input it
 * accepts, the writer and the parameter loader).
 *
 * Build and run (from the repository root; clang with libFuzzer):
 *
 *   clang -g -O1 -std=c11 -fsanitize=fuzzer,address,undefined \
 *       -fno-sanitize-recover=all -Iinclude -Isrc \
 *       fuzz/fuzz_safetensors.c $(find src -name '*.c') -lz -lm -o build/fuzz_safetensors
 *   mkdir -p build/fuzz-st-corpus
 *   build/fuzz_safetensors -dict=fuzz/safetensors.dict -max_len=4096 \
 *       -max_total_time=120 build/fuzz-st-corpus tests/corpus/safetensors fuzz/seeds
 *
 * (No NB_USE_CBLAS: the portable matrix kernel keeps OpenBLAS out of the
 * build.)  Properties checked beyond "no crash, no sanitizer report":
 *   - a rejected input leaves a message naming the input ("fuzz: ...");
 *   - an accepted one is consistent: names unique and found by nb_st_find,
 *     sizes match shapes, tensors tile the data buffer, metadata lookups
 *     agree;
 *   - writing an accepted file again and reading it back gives the same
 *     tensors and metadata (when its names are writable: non-empty). */
#include "nabla.h"
#include "formats/st_internal.h"

#include <stdlib.h>
#include <string.h>

#define REQUIRE(cond)                                                                      \
    do {                                                                                   \
        if (!(cond)) __builtin_trap();                                                     \
    } while (0)

static nb_graph *graph(void) {
    static nb_graph *g;
    if (!g) {
        g = nb_graph_new();
        int w[2] = {2, 2}, b[1] = {2};
        nb_init zero = {NB_INIT_ZEROS, 0, 0, 0, NB_FAN_IN};
        nb_param(g, "w", 2, w, zero);
        nb_param(g, "b", 1, b, zero);
    }
    return g;
}

static void same_files(const nb_safetensors *a, const nb_safetensors *b) {
    REQUIRE(nb_st_count(a) == nb_st_count(b) && nb_st_meta_count(a) == nb_st_meta_count(b));
    for (int i = 0; i < nb_st_count(a); i++) {
        nb_st_tensor x, y;
        REQUIRE(nb_st_tensor_at(a, i, &x) == NB_OK);
        int j = nb_st_find(b, x.name);
        REQUIRE(j >= 0 && nb_st_tensor_at(b, j, &y) == NB_OK);
        REQUIRE(x.dtype == y.dtype && x.ndim == y.ndim && x.numel == y.numel &&
                x.nbytes == y.nbytes);
        REQUIRE(memcmp(x.dims, y.dims, sizeof(int) * (size_t)x.ndim) == 0);
        REQUIRE(x.nbytes == 0 || memcmp(x.data, y.data, x.nbytes) == 0);
    }
    for (int i = 0; i < nb_st_meta_count(a); i++) {
        nb_kv kv = nb_st_meta_at(a, i);
        const char *v = nb_st_meta(b, kv.key);
        REQUIRE(v && strcmp(v, kv.value) == 0);
    }
}

/* One file, already in memory. */
static void check_file(const uint8_t *data, size_t size) {
    nb_safetensors *st = NULL;
    if (nb_st_parse(data, size, "fuzz", &st) != NB_OK) {
        REQUIRE(st == NULL && strncmp(nb_last_error(), "fuzz: ", 6) == 0);
        return;
    }
    int n = nb_st_count(st), writable = 1;
    nb_st_entry *e = malloc((size_t)(n ? n : 1) * sizeof *e);
    REQUIRE(e);
    const unsigned char *prev_end = NULL, *first = NULL;
    unsigned sum = 0;
    for (int i = 0; i < n; i++) {
        nb_st_tensor t;
        REQUIRE(nb_st_tensor_at(st, i, &t) == NB_OK);
        REQUIRE(nb_st_find(st, t.name) == i);
        REQUIRE(t.ndim >= 0 && t.ndim <= NB_MAX_DIMS);
        size_t numel = 1;
        for (int d = 0; d < t.ndim; d++) numel *= (size_t)t.dims[d];
        REQUIRE(numel == t.numel && t.numel * (size_t)nb_st_dtype_bits(t.dtype) / 8 == t.nbytes);
        const unsigned char *p = t.data;
        if (i == 0) first = p;
        REQUIRE(i == 0 || p == prev_end); /* data order, no gaps */
        prev_end = p + t.nbytes;
        for (size_t k = 0; k < t.nbytes; k++) sum += p[k]; /* touch every byte */
        if (!t.name[0]) writable = 0;
        e[i] = (nb_st_entry){t.name, t.dtype, t.ndim, NULL, t.data};
    }
    /* the tensors cover exactly the bytes after the header */
    uint64_t hlen = 0;
    for (int k = 7; k >= 0; k--) hlen = hlen << 8 | data[k];
    REQUIRE(n == 0 ? size == 8 + hlen : (size_t)(prev_end - first) == size - 8 - hlen);
    (void)sum;
    int m = nb_st_meta_count(st);
    nb_kv *kv = malloc((size_t)(m ? m : 1) * sizeof *kv);
    REQUIRE(kv);
    for (int i = 0; i < m; i++) {
        kv[i] = nb_st_meta_at(st, i);
        REQUIRE(kv[i].key && kv[i].value && nb_st_meta(st, kv[i].key) == kv[i].value);
        if (!kv[i].key[0]) writable = 0;
    }

    /* the parameter loader on whatever the file holds */
    nb_real *staged = NULL, *staged_buffers = NULL;
    if (nb__stage_params(st, "fuzz", graph(), 1, NULL, NULL, 0, &staged, &staged_buffers) == NB_OK) {
        free(staged);
        free(staged_buffers);
    } else {
        REQUIRE(staged == NULL && staged_buffers == NULL);
    }

    /* write it again, read it back: the same file */
    if (writable) {
        nb_st_tensor *info = malloc((size_t)(n ? n : 1) * sizeof *info);
        REQUIRE(info);
        for (int i = 0; i < n; i++) {
            nb_st_tensor_at(st, i, &info[i]);
            e[i].dims = info[i].dims;
        }
        unsigned char *buf = NULL;
        size_t len = 0;
        REQUIRE(nb__st_serialize(e, n, kv, m, &buf, &len) == NB_OK);
        nb_safetensors *again = NULL;
        REQUIRE(nb_st_parse(buf, len, "again", &again) == NB_OK);
        same_files(st, again);
        same_files(again, st);
        nb_st_free(again);
        free(buf);
        free(info);
    }
    free(kv);
    free(e);
    nb_st_free(st);
}

/* Inputs starting with '{' are "header NUL data": the length prefix is
 * computed here, so mutations explore the JSON and the rules behind it
 * instead of mostly breaking the prefix.  Anything else is a whole file. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0 || data[0] != '{') {
        check_file(data, size);
        return 0;
    }
    const uint8_t *nul = memchr(data, 0, size);
    size_t hlen = nul ? (size_t)(nul - data) : size;
    size_t dlen = nul ? size - hlen - 1 : 0;
    uint8_t *file = malloc(8 + hlen + dlen);
    REQUIRE(file);
    for (int k = 0; k < 8; k++) file[k] = (uint8_t)((uint64_t)hlen >> (8 * k));
    memcpy(file + 8, data, hlen);
    if (dlen) memcpy(file + 8 + hlen, nul + 1, dlen);
    check_file(file, 8 + hlen + dlen);
    free(file);
    return 0;
}
