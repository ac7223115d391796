/* safetensors: files written by the reference implementation (committed,
 * from tests/corpus/make_safetensors_corpus.py), a hostile corpus that must
 * each give a clear error, writer round trips, and graph weights. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "files.h"
#include "nabla.h"
#include "formats/st_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

#define CORPUS "tests/corpus/safetensors/"

static char tmpdir[64];

/* char var[] = "<tmpdir>/name" */
#define TMP(var, name)                                                                     \
    char var[600];                                                                         \
    snprintf(var, sizeof var, "%s/%s", tmpdir, name)


static uint64_t le(const void *p, int bytes, size_t k) {
    const unsigned char *b = (const unsigned char *)p + k * (size_t)bytes;
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static float le_f32(const void *p, size_t k) {
    uint32_t u = (uint32_t)le(p, 4, k);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The formula the corpus script used for valid_model.safetensors. */
static float model_value(int t, size_t k) {
    return (float)((long)((5 * k + 3 * (size_t)t) % 11) - 5) / 4.0f;
}

static int same_shape(const nb_st_tensor *t, int ndim, const int *dims) {
    if (t->ndim != ndim) return 0;
    return ndim == 0 || memcmp(t->dims, dims, sizeof(int) * (size_t)ndim) == 0;
}

/* ------------------------------------------------------------ reference files */

static void test_reference_model(void) {
    nb_safetensors *st = NULL;
    CHECK_OK(nb_st_open(CORPUS "valid_model.safetensors", &st));
    if (!st) return;
    CHECK(nb_st_count(st) == 4);
    CHECK(nb_st_meta(st, "format") && strcmp(nb_st_meta(st, "format"), "pt") == 0);
    CHECK(nb_st_meta(st, "source") != NULL && nb_st_meta(st, "absent") == NULL);
    CHECK(nb_st_meta_count(st) == 2);
    static const char *names[] = {"0.weight", "0.bias", "2.weight", "2.bias"};
    static const int shapes[4][2] = {{4, 3}, {4, 0}, {2, 4}, {2, 0}};
    for (int t = 0; t < 4; t++) {
        int i = nb_st_find(st, names[t]);
        CHECKF(i >= 0, "%s not found", names[t]);
        if (i < 0) continue;
        nb_st_tensor x;
        CHECK_OK(nb_st_tensor_at(st, i, &x));
        CHECK(strcmp(x.name, names[t]) == 0 && x.dtype == NB_ST_F32);
        CHECK(same_shape(&x, shapes[t][1] ? 2 : 1, shapes[t]));
        CHECK(x.nbytes == 4 * x.numel);
        for (size_t k = 0; k < x.numel; k++)
            CHECKF(le_f32(x.data, k) == model_value(t, k), "%s[%zu]", names[t], k);
    }
    CHECK(nb_st_find(st, "0.weigh") == -1 && nb_st_find(st, "3.bias") == -1);
    nb_st_free(st);

    /* The same file into a graph whose layers are named like PyTorch's. */
    nb_graph *g = nb_graph_new();
    int in_dims[1] = {3};
    nb_node x = nb_input(g, "x", 1, in_dims);
    nb_node h = nb_dense(g, x, 4, "0", NULL); /* (activations have no parameters) */
    nb_dense(g, h, 2, "2", NULL);
    CHECK_OK(nb_graph_status(g));
    CHECK_OK(nb_load_weights(g, CORPUS "valid_model.safetensors", 0));
    for (int t = 0; t < 4; t++) {
        nb_node p = nb_find(g, names[t]);
        const nb_real *v = nb_value(g, p);
        for (size_t k = 0; v && k < nb_node_numel(g, p); k++)
            CHECKF(v[k] == model_value(t, k), "graph %s[%zu] = %g", names[t], k, (double)v[k]);
    }
    nb_graph_free(g);
}

static void test_reference_dtypes(void) {
    nb_safetensors *st = NULL;
    CHECK_OK(nb_st_open(CORPUS "valid_dtypes.safetensors", &st));
    if (!st) return;
    CHECK(nb_st_count(st) == 12 && nb_st_meta_count(st) == 0);
    nb_st_tensor t;
#define GET(name) (nb_st_tensor_at(st, nb_st_find(st, name), &t) == NB_OK)
    CHECK(GET("i64") && t.dtype == NB_ST_I64 && t.numel == 2);
    CHECK((int64_t)le(t.data, 8, 0) == -5 && le(t.data, 8, 1) == (uint64_t)1 << 40);
    CHECK(GET("i32") && t.dtype == NB_ST_I32 && (int32_t)le(t.data, 4, 0) == -7 &&
          le(t.data, 4, 1) == 1u << 30);
    CHECK(GET("i16") && t.dtype == NB_ST_I16 && (int16_t)le(t.data, 2, 0) == -300);
    CHECK(GET("i8") && t.dtype == NB_ST_I8 && (int8_t)le(t.data, 1, 0) == -128);
    CHECK(GET("u8") && t.dtype == NB_ST_U8 && le(t.data, 1, 2) == 255);
    CHECK(GET("bool") && t.dtype == NB_ST_BOOL && t.nbytes == 4 && le(t.data, 1, 0) == 1 &&
          le(t.data, 1, 1) == 0);
    CHECK(GET("scalar") && t.ndim == 0 && t.numel == 1 && le_f32(t.data, 0) == 42.0f);
    int empty_dims[2] = {0, 3};
    CHECK(GET("empty") && same_shape(&t, 2, empty_dims) && t.numel == 0 && t.nbytes == 0);
    CHECK(GET("bf16") && t.dtype == NB_ST_BF16 && t.nbytes == 8);
    CHECK(GET("f16") && t.dtype == NB_ST_F16 && t.nbytes == 12);
    CHECK(GET("f64") && t.dtype == NB_ST_F64 && t.nbytes == 48);
#undef GET
    /* tensors come in data order, covering the buffer */
    size_t total = 0;
    const unsigned char *first = NULL, *prev_end = NULL;
    for (int i = 0; i < nb_st_count(st); i++) {
        CHECK_OK(nb_st_tensor_at(st, i, &t));
        if (i == 0) first = t.data;
        else CHECK((const unsigned char *)t.data == prev_end);
        prev_end = (const unsigned char *)t.data + t.nbytes;
        total += t.nbytes;
    }
    CHECK(prev_end == first + total);
    CHECK(nb_st_tensor_at(st, 12, &t) == NB_ERR_ARG && nb_st_tensor_at(st, -1, &t) == NB_ERR_ARG);
    nb_st_free(st);

    /* F64, F16 and BF16 convert exactly into float parameters. */
    nb_graph *g = nb_graph_new();
    nb_init zero = {NB_INIT_ZEROS, 0, 0, 0, NB_FAN_IN};
    int d23[2] = {2, 3}, d4[1] = {4}, d3[1] = {3};
    nb_node f64 = nb_param(g, "f64", 2, d23, zero), f16 = nb_param(g, "f16", 2, d23, zero);
    nb_node bf16 = nb_param(g, "bf16", 1, d4, zero), f32 = nb_param(g, "f32", 1, d3, zero);
    CHECK(nb_load_weights(g, CORPUS "valid_dtypes.safetensors", 0) == NB_ERR_FORMAT);
    CHECKF(strstr(nb_last_error(), "is not a parameter"), "%s", nb_last_error());
    CHECK_OK(nb_load_weights(g, CORPUS "valid_dtypes.safetensors", NB_LOAD_ALLOW_EXTRA));
    const float want64[6] = {-0.5f, -0.25f, 0, 0.25f, 0.5f, 0.75f};
    const float want16[6] = {0.5f, -1.0f, 65504.0f, ldexpf(1, -14), ldexpf(1, -24), -0.0f};
    const float wantbf[4] = {1.0f, -2.5f, ldexpf(1, 100), ldexpf(1, -130)};
    const float want32[3] = {1.5f, -2.25f, 3.0f};
    for (int k = 0; k < 6; k++) {
        CHECKF(nb_value(g, f64)[k] == want64[k], "f64[%d]", k);
        CHECKF(nb_value(g, f16)[k] == want16[k], "f16[%d] = %g", k, (double)nb_value(g, f16)[k]);
    }
    CHECK(signbit(nb_value(g, f16)[5]));
    for (int k = 0; k < 4; k++)
        CHECKF(nb_value(g, bf16)[k] == wantbf[k], "bf16[%d] = %g", k, (double)nb_value(g, bf16)[k]);
    for (int k = 0; k < 3; k++) CHECK(nb_value(g, f32)[k] == want32[k]);
    /* an integer tensor is not a parameter type */
    nb_graph *g2 = nb_graph_new();
    int d2[1] = {2};
    nb_param(g2, "i32", 1, d2, zero);
    CHECK(nb_load_weights(g2, CORPUS "valid_dtypes.safetensors", NB_LOAD_ALLOW_EXTRA) ==
          NB_ERR_FORMAT);
    CHECKF(strstr(nb_last_error(), "'i32' has dtype I32"), "%s", nb_last_error());
    nb_graph_free(g2);
    nb_graph_free(g);
}

static void test_rare_dtypes(void) {
    nb_safetensors *st = NULL;
    CHECK_OK(nb_st_open(CORPUS "valid_rare_dtypes.safetensors", &st));
    if (!st) return;
    static const struct { const char *name; nb_st_dtype dtype; size_t numel, nbytes; } want[] = {
        {"f8_e4m3", NB_ST_F8_E4M3, 2, 2}, {"f8_e5m2", NB_ST_F8_E5M2, 2, 2},
        {"f8_e8m0", NB_ST_F8_E8M0, 1, 1}, {"f8_e4m3fnuz", NB_ST_F8_E4M3FNUZ, 1, 1},
        {"f8_e5m2fnuz", NB_ST_F8_E5M2FNUZ, 1, 1}, {"f4", NB_ST_F4, 4, 2},
        {"f6_e2m3", NB_ST_F6_E2M3, 4, 3}, {"f6_e3m2", NB_ST_F6_E3M2, 4, 3},
        {"c64", NB_ST_C64, 1, 8}, {"u16", NB_ST_U16, 2, 4}, {"u32", NB_ST_U32, 1, 4},
        {"u64", NB_ST_U64, 1, 8}};
    CHECK(nb_st_count(st) == 12);
    size_t offset = 0;
    for (int i = 0; i < 12; i++) {
        nb_st_tensor t;
        CHECK_OK(nb_st_tensor_at(st, i, &t)); /* data order = the script's order */
        CHECKF(strcmp(t.name, want[i].name) == 0 && t.dtype == want[i].dtype &&
               t.numel == want[i].numel && t.nbytes == want[i].nbytes, "%s", want[i].name);
        CHECK(strcmp(nb_st_dtype_name(t.dtype), want[i].name) != 0); /* upper case */
        for (size_t k = 0; k < t.nbytes; k++)
            CHECK(((const unsigned char *)t.data)[k] == (offset + k) % 256);
        offset += t.nbytes;
    }
    CHECK(nb_st_dtype_bits(NB_ST_F4) == 4 && nb_st_dtype_bits(NB_ST_F6_E3M2) == 6 &&
          nb_st_dtype_bits(NB_ST_C64) == 64 && nb_st_dtype_bits((nb_st_dtype)99) == 0);
    nb_st_free(st);

    CHECK_OK(nb_st_open(CORPUS "valid_unpadded.safetensors", &st));
    if (!st) return;
    CHECK(nb_st_find(st, "na\xc3\xafve") == 0);
    CHECK(nb_st_meta(st, "note") && strcmp(nb_st_meta(st, "note"),
                                           "gr\xc3\xbc\xc3\x9f" "e \xe2\x9c\x93") == 0);
    nb_kv kv = nb_st_meta_at(st, 0);
    CHECK(kv.key && strcmp(kv.key, "note") == 0 && nb_st_meta_at(st, 1).key == NULL);
    nb_st_free(st);
}

/* ------------------------------------------------------------ hostile corpus */

static void test_hostile(void) {
    static const struct { const char *file, *needle; } cases[] = {
        {"bad_empty", "too short"},
        {"bad_short", "too short"},
        {"bad_header_too_big", "header length 100000001 exceeds the limit"},
        {"bad_header_past_end", "runs past the end of the file"},
        {"bad_utf8", "not valid UTF-8 (byte 0xff"},
        {"bad_utf8_overlong", "not valid UTF-8 (byte 0xc0"},
        {"bad_utf8_surrogate", "not valid UTF-8 (byte 0xed"},
        {"bad_utf8_truncated", "not valid UTF-8"},
        {"bad_json_truncated", "tensor 'w' field 'dtype': unexpected end of the header"},
        {"bad_json_trailing", "unexpected text after the JSON object"},
        {"bad_json_two_values", "unexpected text after the JSON object"},
        {"bad_json_control_char", "control character 0x01"},
        {"bad_json_nul_escape", "NUL character"},
        {"bad_json_bad_escape", "invalid escape '\\q'"},
        {"bad_json_lone_surrogate", "unpaired surrogate"},
        {"bad_json_leading_zero", "tensor 'w' field 'shape': expected ',' or ']'"},
        {"bad_json_plus", "tensor 'w' field 'shape': unexpected character '+'"},
        {"bad_json_trailing_comma", "expected a string key"},
        {"bad_json_single_quotes", "expected a string key"},
        {"bad_json_deep", "nested deeper than 32 levels"},
        {"bad_json_long_array", "tensor 'w' field 'shape': array longer than 64 elements"},
        {"bad_not_object", "not a JSON object"},
        {"bad_not_object_string", "not a JSON object"},
        {"bad_entry_not_object", "tensor 'w': entry is a number, not an object"},
        {"bad_unknown_dtype", "tensor 'w': unknown dtype 'F33'"},
        {"bad_dtype_lowercase", "tensor 'w': unknown dtype 'f32'"},
        {"bad_dtype_not_string", "tensor 'w': dtype is a number, not a string"},
        {"bad_metadata_number", "__metadata__: value of 'a' is a number, not a string"},
        {"bad_metadata_nested", "__metadata__: value of 'a' is an object, not a string"},
        {"bad_metadata_null", "__metadata__: value of 'a' is null, not a string"},
        {"bad_metadata_not_object", "__metadata__ is a string, not an object"},
        {"bad_duplicate_names", "tensor 'w' appears twice"},
        {"bad_duplicate_escaped", "tensor 'w' appears twice"},
        {"bad_duplicate_metadata", "tensor '__metadata__' appears twice"},
        {"bad_duplicate_metadata_key", "__metadata__: key 'a' appears twice"},
        {"bad_duplicate_field", "tensor 'w': field 'dtype' appears twice"},
        {"bad_unknown_field", "tensor 'w': unknown field 'foo'"},
        {"bad_missing_field", "tensor 'w': missing field 'data_offsets'"},
        {"bad_gap", "tensor 'b': data_offsets [12, 20] leave a gap after tensor 'a'"},
        {"bad_overlap", "tensor 'b': data_offsets [4, 12] overlap tensor 'a'"},
        {"bad_end_before_begin", "tensor 'w': data_offsets [8, 4] end before they begin"},
        {"bad_first_not_zero", "tensor 'w': data_offsets begin at 4; the first tensor"},
        {"bad_data_not_at_end", "cover 8 bytes of data but 12 follow"},
        {"bad_no_tensors_but_data", "cover 0 bytes of data but 8 follow"},
        {"bad_offsets_past_end", "tensor 'w': data_offsets [0, 1000] reach past the end"},
        {"bad_offsets_huge", "field 'data_offsets': 9223372036854775808 does not fit in int64"},
        {"bad_offsets_not_pair", "tensor 'w': data_offsets must be [begin, end]"},
        {"bad_numel_overflow", "tensor 'w': size of shape [2147483647, 2147483647, "
                               "2147483647, 2147483647] of F64 overflows"},
        {"bad_size_mismatch", "tensor 'w': shape [2, 3] of F32 needs 24 bytes but "
                              "data_offsets [0, 20] hold 20"},
        {"bad_subbyte", "tensor 'w': size of shape [3] of F4 is not a whole number of bytes"},
        {"bad_shape_negative", "tensor 'w' field 'shape': -1 is not a non-negative integer"},
        {"bad_shape_float", "tensor 'w' field 'shape': 2.5 is not a non-negative integer"},
        {"bad_shape_float_integral", "tensor 'w' field 'shape': 2.0 is not a non-negative"},
        {"bad_shape_exponent", "tensor 'w' field 'shape': 2e0 is not a non-negative"},
        {"bad_shape_huge", "99999999999999999999 does not fit in int64"},
        {"bad_shape_beyond_int", "shape entry 0 is 3000000000, beyond the limit"},
        {"bad_shape_too_many_dims", "shape has 7 dimensions (at most 6"},
        {"bad_shape_string", "tensor 'w': shape entry 0 is a string, not an integer"},
        {"bad_shape_not_array", "tensor 'w': shape is a number, not an array"},
        {"bad_offset_float", "tensor 'w' field 'data_offsets': 8.0 is not a non-negative"},
    };
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++) {
        char path[256];
        snprintf(path, sizeof path, CORPUS "%s.safetensors", cases[i].file);
        nb_safetensors *st = (nb_safetensors *)&st; /* must be reset to NULL */
        nb_status s = nb_st_open(path, &st);
        CHECKF(s == NB_ERR_FORMAT, "%s: status %s", cases[i].file, nb_status_name(s));
        CHECKF(strstr(nb_last_error(), cases[i].needle) && strstr(nb_last_error(), path),
               "%s: message '%s' lacks '%s' or the file name", cases[i].file, nb_last_error(),
               cases[i].needle);
        CHECK(st == NULL);
        /* the same bytes from memory, labelled */
        size_t len;
        unsigned char *bytes = test_read_file(path, &len);
        CHECK(bytes != NULL || len == 0);
        CHECK(nb_st_parse(bytes, len, "mem", &st) == NB_ERR_FORMAT && st == NULL);
        CHECKF(strncmp(nb_last_error(), "mem: ", 5) == 0, "%s", nb_last_error());
        free(bytes);
    }
    /* every hostile file of the corpus is in the table above */
    int count = 0;
    DIR *dir = opendir(CORPUS);
    CHECK(dir != NULL);
    for (struct dirent *de; dir && (de = readdir(dir));) {
        if (strncmp(de->d_name, "bad_", 4) != 0) continue;
        count++;
        int listed = 0;
        for (size_t i = 0; i < n; i++)
            if (strncmp(de->d_name, cases[i].file, strlen(cases[i].file)) == 0 &&
                strcmp(de->d_name + strlen(cases[i].file), ".safetensors") == 0)
                listed = 1;
        CHECKF(listed, "%s is not tested", de->d_name);
    }
    if (dir) closedir(dir);
    CHECKF(count == (int)n, "%d bad_* files in the corpus, %zu tested", count, n);

    nb_safetensors *st;
    CHECK(nb_st_open(CORPUS "does_not_exist.safetensors", &st) == NB_ERR_IO);
    CHECK(strstr(nb_last_error(), "does_not_exist.safetensors: cannot open") != NULL);
    CHECK(nb_st_open(CORPUS, &st) == NB_ERR_IO);
    CHECK(nb_st_open(NULL, &st) == NB_ERR_ARG && nb_st_open("x", NULL) == NB_ERR_ARG);
}

/* Every truncation of a valid file is rejected cleanly. */
static void test_truncations(void) {
    size_t len;
    unsigned char *bytes = test_read_file(CORPUS "valid_dtypes.safetensors", &len);
    CHECK(bytes != NULL);
    if (!bytes) return;
    int rejected = 0;
    for (size_t cut = 0; cut < len; cut++) {
        nb_safetensors *st;
        if (nb_st_parse(bytes, cut, "cut", &st) == NB_ERR_FORMAT) rejected++;
        else nb_st_free(st);
    }
    CHECKF(rejected == (int)len, "%d of %zu truncations rejected", rejected, len);
    /* and flipping any single header byte never crashes (result may be valid) */
    for (size_t k = 8; k < 8 + 64 && k < len; k++) {
        unsigned char saved = bytes[k];
        for (int bit = 0; bit < 8; bit++) {
            bytes[k] = (unsigned char)(saved ^ (1u << bit));
            nb_safetensors *st = NULL;
            if (nb_st_parse(bytes, len, "flip", &st) == NB_OK) nb_st_free(st);
        }
        bytes[k] = saved;
    }
    free(bytes);
}

/* ------------------------------------------------------------ writer */

static void test_write_round_trip(void) {
    const float w[6] = {1.5f, -2.0f, 0.1f, 3e38f, -0.0f, 1e-45f};
    const double d[2] = {0.1, -1e300};
    const uint16_t h[3] = {0x3C00, 0x8001, 0x7BFF};
    const uint8_t f4[2] = {0x12, 0x34};
    int dw[2] = {2, 3}, dd[1] = {2}, dh[1] = {3}, df4[2] = {2, 2}, dz[2] = {0, 5};
    nb_st_entry t[] = {
        {"weight \"quoted\" \\ back", NB_ST_F32, 2, dw, w},
        {"d", NB_ST_F64, 1, dd, d},
        {"half", NB_ST_F16, 1, dh, h},
        {"scalar", NB_ST_F32, 0, NULL, w},
        {"empty", NB_ST_F32, 2, dz, NULL},
        {"nibbles", NB_ST_F4, 2, df4, f4},
        {"\xc3\xa9t\xc3\xa9\n", NB_ST_U8, 1, dd, f4},
    };
    const int n = (int)(sizeof t / sizeof t[0]);
    nb_kv meta[] = {{"format", "pt"}, {"note", "line1\nline2\t\"q\" \\ \x01 \xe2\x9c\x93"},
                    {"empty", ""}};
    TMP(path, "round.safetensors");
    CHECK_OK(nb_st_write(path, t, n, meta, 3));
    size_t len;
    unsigned char *bytes = test_read_file(path, &len);
    CHECK(bytes && len > 8);
    if (!bytes) return;
    uint64_t hlen = le(bytes, 8, 0);
    CHECKF((8 + hlen) % 8 == 0 && hlen + 8 <= len, "header length %llu",
           (unsigned long long)hlen);
    CHECK(bytes[8] == '{' && (bytes[8 + hlen - 1] == ' ' || bytes[8 + hlen - 1] == '}'));
    /* the in-memory serialiser produces the same bytes */
    unsigned char *mem;
    size_t mem_len;
    CHECK_OK(nb__st_serialize(t, n, meta, 3, &mem, &mem_len));
    CHECK(mem_len == len && memcmp(mem, bytes, len) == 0);
    free(mem);
    /* input order does not matter */
    nb_st_entry rev[sizeof t / sizeof t[0]];
    for (int i = 0; i < n; i++) rev[i] = t[n - 1 - i];
    nb_kv meta_rev[3] = {meta[2], meta[0], meta[1]};
    CHECK_OK(nb__st_serialize(rev, n, meta_rev, 3, &mem, &mem_len));
    CHECK(mem_len == len && memcmp(mem, bytes, len) == 0);
    free(mem);
    free(bytes);

    nb_safetensors *st = NULL;
    CHECK_OK(nb_st_open(path, &st));
    if (!st) return;
    CHECK(nb_st_count(st) == n && nb_st_meta_count(st) == 3);
    for (int i = 0; i < 3; i++)
        CHECKF(nb_st_meta(st, meta[i].key) && strcmp(nb_st_meta(st, meta[i].key),
                                                     meta[i].value) == 0, "meta %s", meta[i].key);
    for (int i = 0; i < n; i++) {
        int k = nb_st_find(st, t[i].name);
        nb_st_tensor x;
        CHECKF(k >= 0 && nb_st_tensor_at(st, k, &x) == NB_OK, "%s", t[i].name);
        if (k < 0) continue;
        CHECK(x.dtype == t[i].dtype && same_shape(&x, t[i].ndim, t[i].dims));
        CHECK(x.nbytes == 0 || memcmp(x.data, t[i].data, x.nbytes) == 0);
    }
    /* data is ordered widest element first: F64 leads, then the F32s */
    nb_st_tensor first;
    nb_st_tensor_at(st, 0, &first);
    CHECK(first.dtype == NB_ST_F64);
    nb_st_free(st);
    unlink(path);
}

static nb_status write2(const char *path, nb_st_entry a, nb_st_entry b) {
    nb_st_entry e[2] = {a, b};
    return nb_st_write(path, e, 2, NULL, 0);
}

static void test_write_errors(void) {
    const float w[2] = {1, 2};
    int d2[1] = {2}, neg[1] = {-1}, odd[1] = {3};
    TMP(path, "bad.safetensors");
    nb_st_entry x = {"x", NB_ST_F32, 1, d2, w};
#define BAD(call, needle)                                                                  \
    CHECKF((call) == NB_ERR_ARG && strstr(nb_last_error(), needle), "%s: %s", #call,       \
           nb_last_error())
    BAD(write2(path, (nb_st_entry){"w", NB_ST_F32, 1, neg, w}, x), "dimension 0 is -1");
    BAD(write2(path, (nb_st_entry){"x", NB_ST_F32, 1, d2, w}, x), "two tensors are named 'x'");
    BAD(write2(path, (nb_st_entry){"x", NB_ST_F64, 0, NULL, w}, x), "two tensors are named 'x'");
    BAD(write2(path, (nb_st_entry){"", NB_ST_F32, 1, d2, w}, x), "empty");
    BAD(write2(path, (nb_st_entry){NULL, NB_ST_F32, 1, d2, w}, x), "empty");
    BAD(write2(path, (nb_st_entry){"__metadata__", NB_ST_F32, 1, d2, w}, x), "reserved");
    BAD(write2(path, (nb_st_entry){"\xff", NB_ST_F32, 1, d2, w}, x), "UTF-8");
    BAD(write2(path, (nb_st_entry){"w", (nb_st_dtype)40, 1, d2, w}, x), "invalid dtype 40");
    BAD(write2(path, (nb_st_entry){"w", NB_ST_F32, 7, d2, w}, x), "or 7 dimensions");
    BAD(write2(path, (nb_st_entry){"w", NB_ST_F32, 1, NULL, w}, x), "or 1 dimensions");
    BAD(write2(path, (nb_st_entry){"w", NB_ST_F32, 1, d2, NULL}, x), "data is NULL");
    nb_st_entry sub = {"f4", NB_ST_F4, 1, odd, w};
    BAD(nb_st_write(path, &sub, 1, NULL, 0), "whole number of bytes");
    nb_st_entry ok = {"w", NB_ST_F32, 1, d2, w};
    nb_kv dup[2] = {{"a", "1"}, {"a", "2"}}, empty[1] = {{"", "1"}}, nul[1] = {{"a", NULL}};
    nb_kv bad_utf8[1] = {{"a", "\xc0\xaf"}};
    BAD(nb_st_write(path, &ok, 1, dup, 2), "metadata key 'a' given twice");
    BAD(nb_st_write(path, &ok, 1, empty, 1), "key empty");
    BAD(nb_st_write(path, &ok, 1, nul, 1), "NULL");
    BAD(nb_st_write(path, &ok, 1, bad_utf8, 1), "not UTF-8");
    BAD(nb_st_write(path, &ok, -1, NULL, 0), "invalid tensor or metadata list");
    BAD(nb_st_write(path, NULL, 1, NULL, 0), "invalid tensor or metadata list");
#undef BAD
    CHECK(access(path, F_OK) != 0); /* nothing was created */
    /* no tensors at all is a valid file */
    CHECK_OK(nb_st_write(path, NULL, 0, NULL, 0));
    nb_safetensors *st = NULL;
    CHECK_OK(nb_st_open(path, &st));
    CHECK(st && nb_st_count(st) == 0);
    nb_st_free(st);
    TMP(nodir, "no/such/dir.safetensors");
    CHECK(nb_st_write(nodir, &ok, 1, NULL, 0) == NB_ERR_IO);
    CHECK(strstr(nb_last_error(), "no/such/dir.safetensors") != NULL);
    unlink(path);
}

/* Only a regular file is ever replaced: a FIFO, a directory, a symbolic link
 * to one and a device stay what they were (the rename of the new file would
 * put a regular file in their place). */
static void test_write_not_regular(void) {
    const float w[2] = {1, 2};
    int d2[1] = {2};
    nb_st_entry x = {"x", NB_ST_F32, 1, d2, w};
    TMP(fifo, "fifo");
    TMP(dir, "dir");
    TMP(link, "link");
    CHECK(mkfifo(fifo, 0600) == 0 && mkdir(dir, 0700) == 0 && symlink(fifo, link) == 0);
    const char *targets[] = {fifo, dir, link, "/dev/null"};
    const char *kinds[] = {"is a FIFO", "is a directory", "is a FIFO", "is a character device"};
    for (int i = 0; i < 4; i++) {
        CHECKF(nb_st_write(targets[i], &x, 1, NULL, 0) == NB_ERR_IO &&
                   strstr(nb_last_error(), kinds[i]),
               "%s: %s", targets[i], nb_last_error());
    }
    struct stat st, lst;
    CHECK(stat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(lstat(link, &lst) == 0 && S_ISLNK(lst.st_mode));
    CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode));
    DIR *d = opendir(tmpdir); /* and no temporary file is left */
    int entries = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d) closedir(d);
    CHECKF(entries == 3, "%d files in %s", entries, tmpdir);
    unlink(link);
    unlink(fifo);
    rmdir(dir);
}

/* An endless input is not read to its end: the header length (0) cannot be
 * valid, so reading stops there (before, /dev/zero was read until memory ran
 * out). */
static void test_endless_input(void) {
    nb_safetensors *st = NULL;
    CHECKF(nb_st_open("/dev/zero", &st) == NB_ERR_FORMAT && strstr(nb_last_error(), "/dev/zero"),
           "%s", nb_last_error());
    CHECK(st == NULL);
}

/* A pipe that carries a whole file and then endless data: reading stops one
 * byte past the data the header describes, and the extra data is refused
 * (before, the pipe was read until memory ran out). */
static void test_endless_pipe(void) {
    const char header[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    char fifo[256];
    snprintf(fifo, sizeof fifo, "%s/endless.fifo", tmpdir);
    CHECK(mkfifo(fifo, 0600) == 0);
    pid_t child = fork();
    if (child == 0) { /* the writer: the file, then zeros until the reader leaves */
        signal(SIGPIPE, SIG_DFL);
        int fd = open(fifo, O_WRONLY);
        unsigned char len[8] = {(unsigned char)(sizeof header - 1)}, zeros[4096] = {0};
        if (write(fd, len, 8) != 8 || write(fd, header, sizeof header - 1) < 0) _exit(1);
        for (;;)
            if (write(fd, zeros, sizeof zeros) < 0) _exit(0);
    }
    alarm(20); /* an endless read fails the test rather than hanging it */
    nb_safetensors *st = NULL;
    nb_status s = nb_st_open(fifo, &st);
    alarm(0);
    CHECKF(s == NB_ERR_FORMAT && strstr(nb_last_error(), "must end exactly at the end"), "%s",
           nb_last_error());
    CHECK(st == NULL);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    unlink(fifo);
}

/* ------------------------------------------------------------ graph weights */

static nb_graph *mlp(int hidden, uint64_t seed) {
    nb_graph *g = nb_graph_new();
    int in_dims[1] = {5};
    nb_node x = nb_input(g, "x", 1, in_dims);
    nb_node h = nb_dense(g, x, hidden, "0", NULL);
    nb_dense(g, h, 3, "2", NULL);
    nb_rng r;
    nb_rng_seed(&r, seed);
    nb_graph_init(g, &r);
    return g;
}

static void test_graph_weights(void) {
    TMP(path, "mlp.safetensors");
    nb_graph *a = mlp(7, 1), *b = mlp(7, 2);
    size_t n = nb_param_count(a);
    CHECK(n == nb_param_count(b) && memcmp(nb_params(a), nb_params(b), n * sizeof(nb_real)));
    nb_kv meta[1] = {{"epoch", "3"}};
    CHECK_OK(nb_save_weights(a, path, meta, 1));
    CHECK_OK(nb_load_weights(b, path, 0));
    CHECK(memcmp(nb_params(a), nb_params(b), n * sizeof(nb_real)) == 0); /* bit-exact */

    /* the file is a plain safetensors file with the node names */
    nb_safetensors *st = NULL;
    CHECK_OK(nb_st_open(path, &st));
    if (st) {
        CHECK(nb_st_count(st) == 4 && nb_st_find(st, "0.weight") >= 0 &&
              nb_st_find(st, "2.bias") >= 0);
        CHECK(nb_st_meta(st, "epoch") && strcmp(nb_st_meta(st, "epoch"), "3") == 0);
        nb_st_tensor t;
        nb_st_tensor_at(st, nb_st_find(st, "0.weight"), &t);
        int want[2] = {7, 5};
        CHECK(t.dtype == NB_ST_F32 && same_shape(&t, 2, want));
        CHECK(le_f32(t.data, 4) == nb_value(a, nb_find(a, "0.weight"))[4]);
        nb_st_free(st);
    }

    /* mismatches are rejected and leave the graph untouched */
    nb_graph *c = mlp(6, 3);
    size_t nc = nb_param_count(c);
    nb_real *before = malloc(nc * sizeof *before);
    memcpy(before, nb_params(c), nc * sizeof *before);
    CHECK(nb_load_weights(c, path, 0) == NB_ERR_SHAPE);
    CHECKF(strstr(nb_last_error(), "tensor '0.weight' has shape [7, 5] but the graph's "
                  "parameter is [6, 5]"), "%s", nb_last_error());
    CHECK(memcmp(before, nb_params(c), nc * sizeof *before) == 0);
    nb_graph_free(c);

    nb_graph *d = mlp(7, 4); /* one parameter more than the file holds */
    int dims[1] = {2};
    nb_param(d, "extra", 1, dims, (nb_init){NB_INIT_CONSTANT, 1.5, 0, 0, NB_FAN_IN});
    nb_rng r;
    nb_rng_seed(&r, 4);
    nb_graph_init(d, &r);
    size_t nd = nb_param_count(d);
    before = realloc(before, nd * sizeof *before);
    memcpy(before, nb_params(d), nd * sizeof *before);
    CHECK(nb_load_weights(d, path, 0) == NB_ERR_FORMAT);
    CHECKF(strstr(nb_last_error(), "parameter 'extra' [2] is missing"), "%s", nb_last_error());
    CHECK(memcmp(before, nb_params(d), nd * sizeof *before) == 0);
    /* the other way round: a file with a tensor the graph lacks */
    TMP(path2, "mlp_extra.safetensors");
    CHECK_OK(nb_save_weights(d, path2, NULL, 0));
    nb_graph *e = mlp(7, 5);
    size_t ne = nb_param_count(e);
    before = realloc(before, ne * sizeof *before);
    memcpy(before, nb_params(e), ne * sizeof *before);
    CHECK(nb_load_weights(e, path2, 0) == NB_ERR_FORMAT);
    CHECKF(strstr(nb_last_error(), "tensor 'extra' is not a parameter") &&
           strstr(nb_last_error(), "NB_LOAD_ALLOW_EXTRA"), "%s", nb_last_error());
    CHECK(memcmp(before, nb_params(e), ne * sizeof *before) == 0);
    CHECK_OK(nb_load_weights(e, path2, NB_LOAD_ALLOW_EXTRA));
    CHECK(memcmp(nb_params(a), nb_params(e), n * sizeof(nb_real)) != 0);
    CHECK(memcmp(nb_params(d), nb_params(e), ne * sizeof(nb_real)) == 0);
    CHECK(nb_load_weights(e, path2, 0x10) == NB_ERR_ARG);
    /* a node of the same name that is not a parameter does not count */
    nb_graph *f = mlp(7, 6);
    int one[1] = {1};
    nb_constant(f, "extra", 1, one, NULL);
    CHECK(nb_load_weights(f, path2, 0) == NB_ERR_FORMAT);
    CHECKF(strstr(nb_last_error(), "tensor 'extra' is not a parameter"), "%s", nb_last_error());
    nb_graph_free(f);
    TMP(missing, "missing.safetensors");
    CHECK(nb_load_weights(e, missing, 0) == NB_ERR_IO);
    CHECK(nb_save_weights(NULL, path, NULL, 0) == NB_ERR_ARG);

    free(before);
    unlink(path);
    unlink(path2);
    nb_graph_free(a);
    nb_graph_free(b);
    nb_graph_free(d);
    nb_graph_free(e);
}

/* F64 values that do not fit in a float are refused, not turned into inf. */
static void test_f64_overflow(void) {
    const double big[2] = {1.0, 1e300};
    int dims[1] = {2};
    nb_st_entry t = {"w", NB_ST_F64, 1, dims, big};
    TMP(path, "big.safetensors");
    CHECK_OK(nb_st_write(path, &t, 1, NULL, 0));
    nb_graph *g = nb_graph_new();
    nb_param(g, "w", 1, dims, (nb_init){NB_INIT_ZEROS, 0, 0, 0, NB_FAN_IN});
    CHECK(nb_load_weights(g, path, 0) == NB_ERR_NUMERIC);
    CHECKF(strstr(nb_last_error(), "'w' element 1"), "%s", nb_last_error());
    CHECK(nb_params(g)[0] == 0);
    nb_graph_free(g);
    unlink(path);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/nb-st-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_reference_model();
    test_reference_dtypes();
    test_rare_dtypes();
    test_hostile();
    test_truncations();
    test_write_round_trip();
    test_write_errors();
    test_write_not_regular();
    test_endless_input();
    test_endless_pipe();
    test_graph_weights();
    test_f64_overflow();
    CHECKF(rmdir(tmpdir) == 0, "files left in %s", tmpdir); /* each test removes its own */
    TEST_END();
}
