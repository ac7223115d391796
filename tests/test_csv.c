/* CSV loader: the dialects it accepts, header detection, label columns and
 * class names, locale-independent numbers, limits, and a corpus of hostile
 * files that must each give a clear error naming the file, line and column. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "nabla.h"

#include <locale.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#define CORPUS "tests/corpus/csv/"

static nb_status parse(const char *text, const nb_csv_opts *o, nb_csv_data *d) {
    return nb_csv_parse(text, strlen(text), "t.csv", o, d);
}

/* Parse text expecting failure with every needle in the message. */
#define CHECK_FAILS(text, opts, ...)                                                      \
    do {                                                                                  \
        nb_csv_data d_;                                                                   \
        nb_status s_ = parse(text, opts, &d_);                                            \
        const char *needles_[] = {__VA_ARGS__};                                           \
        CHECKF(s_ != NB_OK, "parsed: %s", #text);                                         \
        for (size_t k_ = 0; k_ < sizeof needles_ / sizeof needles_[0]; k_++)              \
            CHECKF(strstr(nb_last_error(), needles_[k_]), "message '%s' lacks '%s'",      \
                   nb_last_error(), needles_[k_]);                                        \
        CHECK(d_.x == NULL && d_.y == NULL && d_.rows == 0);                              \
        nb_csv_free(&d_);                                                                 \
    } while (0)

static void test_iris(void) {
    nb_csv_data d;
    CHECK_OK(nb_csv_load(CORPUS "valid_iris.csv", NULL, &d));
    CHECK(d.rows == 4 && d.features == 4);
    CHECK(d.feature_names && d.label_name && strcmp(d.label_name, "species") == 0);
    if (d.feature_names) {
        /* the BOM is not part of the first name */
        CHECK(strcmp(d.feature_names[0], "sepal_length") == 0);
        CHECK(strcmp(d.feature_names[3], "petal_width") == 0);
    }
    CHECK(d.n_classes == 3 && d.class_names);
    if (d.class_names) {
        CHECK(strcmp(d.class_names[0], "setosa") == 0);
        CHECK(strcmp(d.class_names[1], "versicolor") == 0);
        CHECK(strcmp(d.class_names[2], "virginica") == 0);
    }
    if (d.x && d.y) {
        static const float x[4][4] = {{5.1f, 3.5f, 1.4f, 0.2f}, {7.0f, 3.2f, 4.7f, 1.4f},
                                      {6.3f, 3.3f, 6.0f, 2.5f}, {4.9f, 3.0f, 1.4f, 0.2f}};
        static const float y[4] = {0, 1, 2, 0};
        for (int i = 0; i < 4; i++) {
            for (int j = 0; j < 4; j++) CHECK(d.x[i * 4 + j] == x[i][j]);
            CHECK(d.y[i] == y[i]);
        }
    }
    nb_csv_free(&d);
    CHECK(d.x == NULL && d.class_names == NULL);
}

static void test_noheader_and_numbers(void) {
    nb_csv_data d;
    CHECK_OK(nb_csv_load(CORPUS "valid_noheader.csv", NULL, &d));
    CHECK(d.rows == 3 && d.features == 2 && d.feature_names == NULL && d.label_name == NULL);
    CHECK(d.n_classes == 0 && d.class_names == NULL);
    if (d.x && d.y) {
        CHECK(d.x[0] == 1 && d.x[1] == 2 && d.y[0] == 0.5f);
        CHECK(d.x[2] == -150 && d.x[3] == 3 && d.y[1] == 0.25f);
        CHECK(d.x[4] == 1e-3f && d.x[5] == 4 && d.y[2] == -7);
    }
    nb_csv_free(&d);
}

static void test_quoted_and_label_by_name(void) {
    nb_csv_opts o = nb_csv_defaults();
    o.label_name = "target";
    nb_csv_data d;
    CHECK_OK(nb_csv_load(CORPUS "valid_quoted.csv", &o, &d));
    CHECK(d.rows == 2 && d.features == 3);
    if (d.feature_names) {
        CHECK(strcmp(d.feature_names[0], "width, cm") == 0);
        CHECK(strcmp(d.feature_names[1], "say \"hi\"") == 0);
        CHECK(strcmp(d.feature_names[2], "two\nlines") == 0);
    }
    CHECK(d.label_name && strcmp(d.label_name, "target") == 0);
    CHECK(d.n_classes == 2);
    if (d.x && d.y) {
        CHECK(d.x[0] == 1 && d.x[1] == 2 && d.x[2] == 3 && d.y[0] == 1); /* "b" -> 1 */
        CHECK(d.x[3] == 4 && d.x[4] == 5 && d.x[5] == 6 && d.y[1] == 0); /* "a" -> 0 */
    }
    nb_csv_free(&d);

    o = nb_csv_defaults();
    o.delimiter = ';';
    CHECK_OK(nb_csv_load(CORPUS "valid_semicolon.csv", &o, &d));
    CHECK(d.rows == 2 && d.features == 2 && d.n_classes == 2);
    if (d.feature_names) CHECK(strcmp(d.feature_names[0], "größe") == 0);
    if (d.x) CHECK(d.x[0] == 1.5f && d.x[3] == 3);
    nb_csv_free(&d);
}

static void test_header_modes(void) {
    nb_csv_data d;
    nb_csv_opts o = nb_csv_defaults();
    /* auto: a text label in the first row is not a header */
    CHECK_OK(parse("1,2,cat\n3,4,dog\n", NULL, &d));
    CHECK(d.rows == 2 && d.feature_names == NULL && d.n_classes == 2);
    nb_csv_free(&d);
    /* auto: one text cell among the features makes a header */
    CHECK_OK(parse("1,b,y\n3,4,5\n", NULL, &d));
    CHECK(d.rows == 1 && d.feature_names && d.label_name && strcmp(d.label_name, "y") == 0);
    nb_csv_free(&d);
    /* forced header with numeric names */
    o.header = NB_CSV_HEADER_YES;
    CHECK_OK(parse("10,20,30\n1,2,3\n", &o, &d));
    CHECK(d.rows == 1 && d.feature_names && strcmp(d.feature_names[1], "20") == 0);
    if (d.y) CHECK(d.y[0] == 3);
    nb_csv_free(&d);
    /* forced no header: a text first row is an error, with no column names */
    o.header = NB_CSV_HEADER_NO;
    CHECK_FAILS("a,b,c\n1,2,3\n", &o, "t.csv:1: column 1: 'a' is not a number");
    o.label_name = "c";
    CHECK_FAILS("a,b,c\n1,2,3\n", &o, "no header");
    /* label by index: first column, negative from the end, out of range */
    o = nb_csv_defaults();
    o.label_index = 0;
    CHECK_OK(parse("7,1,2\n8,3,4\n", &o, &d));
    if (d.x && d.y) CHECK(d.y[0] == 7 && d.y[1] == 8 && d.x[0] == 1 && d.x[3] == 4);
    nb_csv_free(&d);
    o.label_index = -2;
    CHECK_OK(parse("7,1,2\n8,3,4\n", &o, &d));
    if (d.x && d.y) CHECK(d.y[0] == 1 && d.x[0] == 7 && d.x[1] == 2);
    nb_csv_free(&d);
    o.label_index = 3;
    CHECK_FAILS("7,1,2\n", &o, "label column index 3 is out of range", "3 columns");
    o.label_index = -4;
    CHECK_FAILS("7,1,2\n", &o, "out of range");
    /* label by name: missing, twice */
    o = nb_csv_defaults();
    o.label_name = "z";
    CHECK_FAILS("x,y\n1,2\n", &o, "t.csv:1: no column named 'z'");
    CHECK_FAILS("z,y,z\n1,2,3\n", &o, "'z' appears twice (columns 1 and 3)");
    /* bad options */
    o = nb_csv_defaults();
    o.delimiter = '"';
    CHECK_FAILS("1,2\n", &o, "delimiter");
    o = nb_csv_defaults();
    o.header = (nb_csv_header)7;
    CHECK_FAILS("1,2\n", &o, "header mode");
}

static void test_labels(void) {
    nb_csv_data d;
    /* classes in byte-wise sorted order, whatever the order of appearance */
    CHECK_OK(parse("1,b\n2,a\n3,c\n4,a\n5,B\n", NULL, &d));
    CHECK(d.n_classes == 4);
    if (d.class_names && d.y) {
        CHECK(strcmp(d.class_names[0], "B") == 0 && strcmp(d.class_names[1], "a") == 0);
        CHECK(strcmp(d.class_names[2], "b") == 0 && strcmp(d.class_names[3], "c") == 0);
        CHECK(d.y[0] == 2 && d.y[1] == 1 && d.y[2] == 3 && d.y[3] == 1 && d.y[4] == 0);
    }
    nb_csv_free(&d);
    /* one text label turns every label into a class name, numbers included */
    CHECK_OK(parse("1,2\n2,10\n3,x\n", NULL, &d));
    CHECK(d.n_classes == 3);
    if (d.class_names && d.y) {
        CHECK(strcmp(d.class_names[0], "10") == 0 && strcmp(d.class_names[1], "2") == 0);
        CHECK(d.y[0] == 1 && d.y[1] == 0 && d.y[2] == 2);
    }
    nb_csv_free(&d);
    /* numeric labels stay numbers */
    CHECK_OK(parse("1,2.5\n2,-1e3\n", NULL, &d));
    CHECK(d.n_classes == 0 && d.class_names == NULL);
    if (d.y) CHECK(d.y[0] == 2.5f && d.y[1] == -1000);
    nb_csv_free(&d);
    /* a quoted label keeps its inner spaces as part of the class name */
    CHECK_OK(parse("1,\"a b\"\n2,\" a b\"\n", NULL, &d));
    CHECK(d.n_classes == 1);
    nb_csv_free(&d);
    CHECK_FAILS("1,nan\n", NULL, "t.csv:1: column 2: 'nan' is not a finite number");
    CHECK_FAILS("1,2\n1,\n", NULL, "t.csv:2: column 2: empty label");
}

static void test_dialects(void) {
    nb_csv_data d;
    /* CR-only line endings, blank lines, spaces, tabs, a final line without newline */
    CHECK_OK(parse("1,2\r\r3 ,\t4\r  \r5,6", NULL, &d));
    CHECK(d.rows == 3);
    if (d.x && d.y) CHECK(d.x[1] == 3 && d.y[1] == 4 && d.y[2] == 6);
    nb_csv_free(&d);
    /* tab-separated: the tab is the delimiter, not a space */
    nb_csv_opts o = nb_csv_defaults();
    o.delimiter = '\t';
    CHECK_OK(parse("a\tb\tc\n1\t2\t3\n", &o, &d));
    CHECK(d.rows == 1 && d.features == 2 && d.feature_names);
    nb_csv_free(&d);
    o.delimiter = ' ';
    CHECK_OK(parse("1 2 3\n4 5 6\n", &o, &d));
    CHECK(d.rows == 2 && d.features == 2);
    nb_csv_free(&d);
    /* a line break inside quotes: later errors report the right line */
    CHECK_FAILS("\"x\ny\",b,c\n1,2,3\n1,q,3\n", NULL, "t.csv:4: column 2 ('b'): 'q'");
    CHECK_FAILS("a,b,c\r\n\r\n1,2,3\r\n\r\n1,2\r\n", NULL, "t.csv:5: 2 cells, expected 3 as on "
                "line 1");
    /* a BOM alone, or only blank lines */
    CHECK_FAILS("\xEF\xBB\xBF", NULL, "t.csv: empty file");
    /* a trailing delimiter is an extra, empty cell */
    CHECK_FAILS("1,2,3,\n", NULL, "t.csv:1: column 4: empty label");
}

/* Numbers: exact for short decimals, close to strtof (C locale) otherwise. */
static void test_numbers(void) {
    static const char *exact[] = {"0", "-0", "1", "0.1", "0.2", "0.3", "3.14159", "-2.5e-3",
                                  "1e10", "1E-10", "123456.7", "16777216", "16777217", ".5",
                                  "5.", "+7", "0.000001", "9999999", "1.17549435e-38",
                                  "3.4028234e38", "1e-45", "7e-46", "123456789012345678901234",
                                  "0.1000000000000000055511151231257827", "2.7182818284590452",
                                  "00012.5000", "1e-400", "4.9406564584124654e-324"};
    for (size_t k = 0; k < sizeof exact / sizeof exact[0]; k++) {
        char text[128];
        snprintf(text, sizeof text, "%s,1\n", exact[k]);
        nb_csv_data d;
        nb_status s = parse(text, NULL, &d);
        CHECKF(s == NB_OK, "%s: %s", exact[k], nb_last_error());
        if (s == NB_OK) {
            float want = strtof(exact[k], NULL); /* the test runs in the "C" locale */
            CHECKF(d.x[0] == want, "%s -> %.9g, strtof says %.9g", exact[k], d.x[0], want);
        }
        nb_csv_free(&d);
    }
    /* random decimals of 1 to 17 digits with exponents: within 1 ulp of strtof,
     * and equal whenever at most 7 digits and |exponent| <= 10 (the exact path) */
    uint64_t state = 12345;
    int mismatches = 0;
    for (int t = 0; t < 20000; t++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        int digits = 1 + (int)((state >> 33) % 17);
        int point = (int)((state >> 40) % (unsigned)(digits + 1));
        int exp10 = (int)((state >> 45) % 81) - 40;
        char num[64];
        int o = 0;
        if (state >> 63) num[o++] = '-';
        for (int i = 0; i < digits; i++) {
            if (i == point && i) num[o++] = '.';
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            num[o++] = (char)('0' + (state >> 60) % 10);
        }
        o += snprintf(num + o, sizeof num - (size_t)o, "e%d", exp10);
        char text[96];
        snprintf(text, sizeof text, "%s,0\n", num);
        float want = strtof(num, NULL);
        nb_csv_data d;
        nb_status s = parse(text, NULL, &d);
        if (!isfinite(want) || fabsf(want) > 3.4e38f) {
            if (s != NB_ERR_NUMERIC) mismatches++;
        } else if (s != NB_OK) {
            mismatches++;
        } else {
            float got = d.x[0];
            int frac_digits = point ? digits - point : 0;
            int e_eff = exp10 - frac_digits;
            int short_path = digits <= 7 && e_eff >= -10 && e_eff <= 10;
            int ok = got == want || (!short_path && (nextafterf(want, INFINITY) == got ||
                                                      nextafterf(want, -INFINITY) == got));
            if (!ok && mismatches < 5)
                fprintf(stderr, "%s -> %.9g, strtof %.9g\n", num, got, want);
            mismatches += !ok;
        }
        nb_csv_free(&d);
    }
    CHECKF(mismatches == 0, "%d numbers parsed differently from strtof", mismatches);
    /* not numbers */
    static const char *bad[] = {"", ".", "+", "-", "e5", "1e", "1e+", "1.2.3", "0x10", "1_000",
                                "1,5", "1 2", "--1", "1e5.5", "NaN", "inf", "∞", "1d5"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char text[64];
        snprintf(text, sizeof text, "\"%s\",1\n", bad[k]);
        nb_csv_data d;
        CHECKF(parse(text, NULL, &d) != NB_OK, "'%s' parsed as a number", bad[k]);
        nb_csv_free(&d);
    }
    CHECK_FAILS("x,y\n\"1,5\",1\n", NULL, "t.csv:2: column 1 ('x'): '1,5' is not a number "
                "(the decimal point must be '.'");
    CHECK_FAILS("1e39,1\n", NULL, "'1e39' is out of range for a float");
    CHECK_FAILS("1,2\n3,-4e38\n", NULL, "t.csv:2: column 2: '-4e38' is out of range");
}

/* A decimal comma locale must not change how "0.5" is read. */
static void test_locale(void) {
    static const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8",
                                  "de_DE", "fr_FR", "ru_RU.UTF-8", "nl_NL.UTF-8"};
    const char *got = NULL;
    for (size_t k = 0; k < sizeof names / sizeof names[0] && !got; k++)
        got = setlocale(LC_NUMERIC, names[k]);
    /* none installed: compile de_DE into a temporary directory if the
     * locale sources are there (Debian's "locales" package) */
    char dir[] = "/tmp/nabla_locale_XXXXXX", cmd[256];
    int made = 0;
    if (!got && access("/usr/share/i18n/locales/de_DE", R_OK) == 0 && mkdtemp(dir)) {
        made = 1;
        snprintf(cmd, sizeof cmd, "localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 >/dev/null 2>&1",
                 dir);
        if (system(cmd) == 0) {
            setenv("LOCPATH", dir, 1);
            got = setlocale(LC_NUMERIC, "de_DE.UTF-8");
        }
    }
    if (!got || strtod("0.5", NULL) == 0.5) {
        printf("skipped: no locale with a decimal comma available (e.g. de_DE.UTF-8)\n");
    } else {
        nb_csv_data d;
        CHECK_OK(parse("0.5,1.25\n-3.75e-1,2\n", NULL, &d));
        if (d.x && d.y) CHECK(d.x[0] == 0.5f && d.y[0] == 1.25f && d.x[1] == -0.375f);
        nb_csv_free(&d);
    }
    setlocale(LC_NUMERIC, "C");
    if (made) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
        unsetenv("LOCPATH");
    }
}


static void test_limits(void) {
    nb_csv_opts o = nb_csv_defaults();
    o.max_line_bytes = 16;
    nb_csv_data d;
    CHECK_OK(parse("1,2\n12345678,1234567\n", &o, &d));
    nb_csv_free(&d);
    CHECK_FAILS("1,2,3\n123456789,12345678\n", &o, "t.csv:2: line longer than 16 bytes");
    CHECK_FAILS("\"1234567890123456789\",2\n", &o, "t.csv:1: line longer than 16 bytes");
    o = nb_csv_defaults();
    o.max_columns = 3;
    CHECK_FAILS("1,2,3,4\n", &o, "t.csv:1: more than 3 columns");
    o = nb_csv_defaults();
    o.max_rows = 2;
    CHECK_OK(parse("1,2\n3,4\n", &o, &d));
    nb_csv_free(&d);
    CHECK_FAILS("x,y\n1,2\n3,4\n5,6\n", &o, "t.csv:4: more than 2 data rows");
    /* the file size limit of nb_csv_load */
    o = nb_csv_defaults();
    o.max_file_bytes = 100;
    CHECK(nb_csv_load(CORPUS "valid_iris.csv", &o, &d) == NB_ERR_FORMAT);
    CHECK(strstr(nb_last_error(), "larger than the limit of 100 bytes"));
}

static void test_hostile(void) {
    static const struct { const char *file, *needle; } cases[] = {
        {"bad_empty.csv", "empty file"},
        {"bad_blank_only.csv", "empty file"},
        {"bad_header_only.csv", "a header but no data rows"},
        {"bad_one_column.csv", ":1: only 1 column"},
        {"bad_nan.csv", ":3: column 2 ('y'): 'nan' is not a finite number"},
        {"bad_inf.csv", ":2: column 2 ('y'): '-Infinity' is not a finite number"},
        {"bad_garbage.csv", ":3: column 3 ('petal_length'): 'abc' is not a number"},
        {"bad_empty_cell.csv", ":2: column 2: empty cell where a number is expected"},
        {"bad_hex.csv", ":2: column 1 ('a'): '0x1A' is not a number"},
        {"bad_comma_decimal.csv", ":2: column 1 ('x'): '1,5' is not a number (the decimal "
                                  "point must be '.'"},
        {"bad_out_of_range.csv", ":1: column 1: '1e39' is out of range"},
        {"bad_ragged_short.csv", ":3: 2 cells, expected 3 as on line 1"},
        {"bad_ragged_long.csv", ":2: 4 cells, expected 3 as on line 1"},
        {"bad_unterminated_quote.csv", ":2: column 2: quoted cell is never closed"},
        {"bad_quote_inside.csv", ":1: column 2: quote inside an unquoted cell"},
        {"bad_after_quote.csv", ":1: column 1: 'x' after a closing quote"},
        {"bad_utf8_header.csv", ":1: column 2: header name '\\xff\\xfe' is not valid UTF-8"},
        {"bad_utf8_label.csv", ":2: column 3 ('label'): label '\\xc3(' is not valid UTF-8"},
        {"bad_overlong_utf8.csv", "is not valid UTF-8"},
        {"bad_nul.csv", ":2: column 2: NUL byte"},
        {"bad_label_empty.csv", ":2: column 3 ('label'): empty label"},
        {"bad_binary.csv", "NUL byte"},
        {"does_not_exist.csv", "cannot open"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, CORPUS "%s", cases[i].file);
        nb_csv_data d;
        nb_status s = nb_csv_load(path, NULL, &d);
        CHECKF(s != NB_OK, "%s loaded", cases[i].file);
        CHECKF(strstr(nb_last_error(), cases[i].needle) && strstr(nb_last_error(), path),
               "%s: message '%s' lacks '%s' or the file name", cases[i].file, nb_last_error(),
               cases[i].needle);
        CHECK(d.x == NULL && d.rows == 0);
    }
    nb_csv_data d;
    CHECK(nb_csv_load("tests/corpus/csv", NULL, &d) == NB_ERR_IO); /* a directory */
    CHECK(strstr(nb_last_error(), "tests/corpus/csv: read error"));
    CHECK(nb_csv_load(NULL, NULL, &d) == NB_ERR_ARG);
    CHECK(nb_csv_parse(NULL, 5, "x", NULL, &d) == NB_ERR_ARG);
    CHECK(nb_csv_parse("1,2", 3, "x", NULL, NULL) == NB_ERR_ARG);
    /* a huge cell in a message is shortened */
    char big[4096];
    memset(big, 'a', sizeof big - 8);
    memcpy(big + sizeof big - 8, ",1\n", 4);
    nb_csv_opts o = nb_csv_defaults();
    o.header = NB_CSV_HEADER_NO;
    CHECK(parse(big, &o, &d) != NB_OK && strlen(nb_last_error()) < 300 &&
          strstr(nb_last_error(), "aaa...'"));
}

/* nb_csv_load reads gzip-compressed files too, from a temporary directory. */
static void test_gzip_file(void) {
    char dir[] = "/tmp/nabla_csv_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp failed");
        return;
    }
    char path[256];
    snprintf(path, sizeof path, "%s/data.csv.gz", dir);
    gzFile f = gzopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    const char *text = "a,b,label\n1,2,x\n3,4,y\n";
    gzwrite(f, text, (unsigned)strlen(text));
    gzclose(f);
    nb_csv_data d;
    CHECK_OK(nb_csv_load(path, NULL, &d));
    CHECK(d.rows == 2 && d.features == 2 && d.n_classes == 2);
    nb_csv_free(&d);
    /* a truncated compressed file is an error, not a short table */
    FILE *raw = fopen(path, "r+b");
    if (raw) {
        fseek(raw, 0, SEEK_END);
        long size = ftell(raw);
        fclose(raw);
        CHECK(truncate(path, size - 6) == 0);
        CHECK(nb_csv_load(path, NULL, &d) != NB_OK && strstr(nb_last_error(), "truncated"));
    }
    remove(path);
    rmdir(dir);
}

/* Data to evaluate a trained model on: labels are that model's classes, by
 * name, so a file lacking a class numbers the others as in training. */
static void test_trained_classes(void) {
    char *const names[] = {"cat", "dog", "emu"};
    nb_csv_opts o = nb_csv_defaults();
    o.classes = names;
    o.n_classes = 3;
    nb_csv_data d;
    CHECK_OK(parse("a,label\n1,dog\n2,emu\n3,dog\n", &o, &d));
    CHECK(d.rows == 3 && d.n_classes == 3 && d.class_names);
    if (d.y) CHECK(d.y[0] == 1 && d.y[1] == 2 && d.y[2] == 1);
    if (d.class_names) CHECK(strcmp(d.class_names[0], "cat") == 0 && d.class_names[0] != names[0]);
    nb_csv_free(&d);
    /* without the list the same file numbers its own classes from 0 */
    CHECK_OK(parse("a,label\n1,dog\n2,emu\n3,dog\n", NULL, &d));
    if (d.y) CHECK(d.y[0] == 0 && d.y[1] == 1);
    nb_csv_free(&d);
    CHECK_FAILS("a,label\n1,dog\n\n2,cow\n", &o, "t.csv:4:", "column 2 ('label')", "'cow'",
                "classes 'cat', 'dog', 'emu'");
    /* names that look like numbers are still names */
    char *const mixed[] = {"1", "2", "x"};
    o.classes = mixed;
    CHECK_OK(parse("a,label\n1,2\n2,1\n", &o, &d));
    if (d.y) CHECK(d.y[0] == 1 && d.y[1] == 0);
    nb_csv_free(&d);
    CHECK_FAILS("a,label\n1,2.0\n", &o, "t.csv:2:", "'2.0'");
    /* a model trained on class numbers: whole numbers below n_classes */
    o.classes = NULL;
    CHECK_OK(parse("1,2\n2,0\n", &o, &d));
    CHECK(d.n_classes == 3 && d.class_names == NULL);
    if (d.y) CHECK(d.y[0] == 2 && d.y[1] == 0);
    nb_csv_free(&d);
    CHECK_FAILS("1,2\n2,3\n", &o, "t.csv:2:", "label '3'", "classes 0 to 2");
    CHECK_FAILS("1,1.5\n", &o, "t.csv:1:", "label '1.5'");
    CHECK_FAILS("1,dog\n", &o, "t.csv:1:", "label 'dog'");
    o.n_classes = -1;
    CHECK(parse("1,2\n", &o, &d) == NB_ERR_ARG);
}

int main(void) {
    test_iris();
    test_noheader_and_numbers();
    test_quoted_and_label_by_name();
    test_header_modes();
    test_labels();
    test_trained_classes();
    test_dialects();
    test_numbers();
    test_locale();
    test_limits();
    test_hostile();
    test_gzip_file();
    TEST_END();
}
