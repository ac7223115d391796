/* Text data (nb_text_parse, nb_text_load): the vocabulary, context windows
 * of lines with their next-character targets, whole padded lines with
 * shifted targets and ignored padding, windows of a stream with stride,
 * characters as code points, a given vocabulary, splits by line and by span,
 * and every error naming the line and the column. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "nabla.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK_MSG(want)                                                                  \
    CHECKF(strcmp(nb_last_error(), (want)) == 0, "message\n  got  %s\n  want %s",         \
           nb_last_error(), (want))

static nb_text_opts lines_opts(int context) {
    nb_text_opts o = {.kind = NB_TEXT_LINES, .context = context};
    return o;
}

static nb_text_opts stream_opts(int context, int stride) {
    nb_text_opts o = {.kind = NB_TEXT_STREAM, .context = context, .stride = stride};
    return o;
}

static nb_status parse(const char *text, const nb_text_opts *o, nb_data *d) {
    return nb_text_parse(text, strlen(text), "t.txt", o, d, NULL);
}

/* d's vocabulary is exactly the names given, in order. */
static void check_vocab(const nb_data *d, int n, const char *const *names) {
    CHECKF(d->n_classes == n, "vocabulary of %d, want %d", d->n_classes, n);
    for (int k = 0; k < n && k < d->n_classes; k++)
        CHECKF(strcmp(d->class_names[k], names[k]) == 0, "vocabulary[%d] = '%s', want '%s'", k,
               d->class_names[k], names[k]);
}

static void check_values(const char *what, const nb_real *got, const nb_real *want, size_t n) {
    for (size_t k = 0; k < n; k++)
        CHECKF(got[k] == want[k], "%s[%zu] = %g, want %g", what, k, (double)got[k],
               (double)want[k]);
}

/* makemore's windows: each character and the end from the 3 before it */
static void test_lines_context(void) {
    nb_data d;
    nb_text_opts o = lines_opts(3);
    REQUIRE_OK(parse("ab\nc\n", &o, &d));
    static const char *const vocab[] = {"\n", "a", "b", "c"};
    check_vocab(&d, 4, vocab);
    CHECK(d.n == 5 && d.sample_size == 3 && d.y_size == 1 && d.ndim == 1 && d.dims[0] == 3);
    const nb_real x[] = {0, 0, 0, 0, 0, 1, 0, 1, 2, 0, 0, 0, 0, 0, 3};
    const nb_real y[] = {1, 2, 0, 3, 0};
    if (d.n == 5) {
        check_values("x", d.x_real, x, 15);
        check_values("y", d.y, y, 5);
    }
    nb_data_free(&d);
}

/* whole lines: boundary first, targets shifted by one, padding ignored */
static void test_lines_padded(void) {
    nb_data d;
    nb_text_opts o = lines_opts(0);
    REQUIRE_OK(parse("ab\r\nc", &o, &d));
    CHECK(d.n == 2 && d.sample_size == 3 && d.y_size == 3 && d.n_classes == 4);
    const nb_real x[] = {0, 1, 2, 0, 3, 0};
    const nb_real y[] = {1, 2, 0, 3, 0, NB_TEXT_IGNORE};
    if (d.n == 2 && d.sample_size == 3) {
        check_values("x", d.x_real, x, 6);
        check_values("y", d.y, y, 6);
    }
    nb_data_free(&d);
    o.length = 5;
    REQUIRE_OK(parse("ab\nc", &o, &d));
    CHECK(d.n == 2 && d.sample_size == 5 && d.y_size == 5);
    if (d.sample_size == 5) CHECK(d.x_real[9] == 0 && d.y[9] == NB_TEXT_IGNORE && d.y[4] == NB_TEXT_IGNORE);
    nb_data_free(&d);
    o.length = 2;
    CHECK(parse("c\nab\n", &o, &d) == NB_ERR_ARG);
    CHECK_MSG("t.txt:2: the line has 2 characters; with its boundary it needs 3 positions, more "
              "than length=2");
}

/* windows of a stream, newlines included, every stride characters */
static void test_stream(void) {
    nb_data d;
    nb_text_opts o = stream_opts(2, 0);
    REQUIRE_OK(parse("abca\nb", &o, &d));
    static const char *const vocab[] = {"\n", "a", "b", "c"};
    check_vocab(&d, 4, vocab);
    /* ids 1 2 3 1 0 2: windows at 0..3 */
    CHECK(d.n == 4 && d.sample_size == 2 && d.y_size == 2);
    const nb_real x[] = {1, 2, 2, 3, 3, 1, 1, 0}, y[] = {2, 3, 3, 1, 1, 0, 0, 2};
    if (d.n == 4) {
        check_values("x", d.x_real, x, 8);
        check_values("y", d.y, y, 8);
    }
    nb_data_free(&d);
    o.stride = 3;
    REQUIRE_OK(parse("abca\nb", &o, &d));
    CHECK(d.n == 2 && d.x_real[2] == 1 && d.y[3] == 2);
    nb_data_free(&d);
    o = stream_opts(6, 0);
    CHECK(parse("abca\nb", &o, &d) == NB_ERR_FORMAT);
    CHECK_MSG("t.txt: 6 characters are fewer than one window (context 6 + 1)");
    o = stream_opts(0, 0);
    CHECK(parse("abc", &o, &d) == NB_ERR_ARG);
    CHECK_MSG("t.txt: a text stream needs context=T, the window length");
}

/* characters are code points: two- and three-byte UTF-8 are one token each */
static void test_code_points(void) {
    nb_data d;
    nb_text_opts o = lines_opts(1);
    REQUIRE_OK(parse("\xc3\xa9t\xc3\xa9\n\xe2\x82\xac\n", &o, &d)); /* été, € */
    static const char *const vocab[] = {"\n", "t", "\xc3\xa9", "\xe2\x82\xac"};
    check_vocab(&d, 4, vocab);
    CHECK(d.n == 4 + 2);
    const nb_real y[] = {2, 1, 2, 0, 3, 0};
    if (d.n == 6) check_values("y", d.y, y, 6);
    nb_data_free(&d);
}

/* blank lines are no sequences, but count in line numbers */
static void test_empty_lines(void) {
    nb_data d;
    nb_text_opts o = lines_opts(2);
    REQUIRE_OK(parse("\n\nab\n\r\n\nb\n\n", &o, &d));
    CHECK(d.n == 3 + 2 && d.n_classes == 3);
    nb_data_free(&d);
    CHECK(parse("\n\r\n\n", &o, &d) == NB_ERR_FORMAT);
    CHECK_MSG("t.txt: no text (every line is empty)");
    CHECK(parse("", &o, &d) == NB_ERR_FORMAT);
    CHECK_MSG("t.txt: the file is empty");
}

/* one character class: a vocabulary of the boundary and that character */
static void test_one_class(void) {
    nb_data d;
    nb_text_opts o = lines_opts(2);
    REQUIRE_OK(parse("aaa\naa\n", &o, &d));
    static const char *const vocab[] = {"\n", "a"};
    check_vocab(&d, 2, vocab);
    CHECK(d.n == 4 + 3);
    nb_data_free(&d);
    o = stream_opts(3, 0);
    REQUIRE_OK(parse("aaaaa", &o, &d));
    CHECK(d.n == 2 && d.n_classes == 1 && strcmp(d.class_names[0], "a") == 0);
    nb_data_free(&d);
}

static void test_bad_utf8(void) {
    nb_data d;
    nb_text_opts o = lines_opts(3);
    CHECK(parse("ab\nc\xe9z\n", &o, &d) == NB_ERR_FORMAT); /* Latin-1 é */
    CHECK_MSG("t.txt:2:2: invalid UTF-8 (byte 0xe9); the text must be UTF-8");
    CHECK(parse("\xc3\xa9\xed\xa0\x80", &o, &d) == NB_ERR_FORMAT); /* a surrogate */
    CHECK_MSG("t.txt:1:2: invalid UTF-8 (byte 0xed); the text must be UTF-8");
    CHECK(nb_text_parse("a\nb\0c", 5, "t.txt", &o, &d, NULL) == NB_ERR_FORMAT);
    CHECK_MSG("t.txt:2:2: NUL byte (not a text file)");
    CHECK(d.n == 0 && d.x_real == NULL);
}

/* a trained model's vocabulary encodes new text; a new character is an error */
static void test_given_vocab(void) {
    static char *vocab[] = {"\n", "a", "b", "c", "\xc3\xa9"};
    nb_data d;
    nb_text_opts o = lines_opts(1);
    o.vocab = vocab;
    o.vocab_size = 5;
    REQUIRE_OK(parse("\xc3\xa9\nc", &o, &d)); /* its own vocabulary would number c 1 */
    check_vocab(&d, 5, (const char *const *)vocab);
    const nb_real y[] = {4, 0, 3, 0};
    if (d.n == 4) check_values("y", d.y, y, 4);
    nb_data_free(&d);
    CHECK(parse("ab\n\ncad\n", &o, &d) == NB_ERR_FORMAT);
    CHECK_MSG("t.txt:3:3: character 'd' (U+0064) is not in the vocabulary (5 characters)");
    CHECK(parse("ab\n\tb\n", &o, &d) == NB_ERR_FORMAT);
    CHECK_MSG("t.txt:2:1: character U+0009 is not in the vocabulary (5 characters)");
    o = stream_opts(2, 0);
    o.vocab = vocab + 1; /* no boundary: a stream's vocabulary */
    o.vocab_size = 4;
    CHECK(parse("ab\nc", &o, &d) == NB_ERR_FORMAT);
    CHECK_MSG("t.txt:1:3: character U+000A is not in the vocabulary (4 characters)");
    o = lines_opts(2);
    o.vocab = vocab + 1;
    o.vocab_size = 4;
    CHECK(parse("ab", &o, &d) == NB_ERR_FORMAT);
    CHECK_MSG("t.txt: the vocabulary does not start with the line boundary (\\n): it was not "
              "made from lines: data");
    static char *two[] = {"\n", "ab"};
    o.vocab = two;
    o.vocab_size = 2;
    CHECK(parse("ab", &o, &d) == NB_ERR_FORMAT);
    CHECK_MSG("t.txt: vocabulary entry 1 'ab' is not one character");
    static char *twice[] = {"\n", "b", "a", "b"};
    o.vocab = twice;
    o.vocab_size = 4;
    CHECK(parse("ab", &o, &d) == NB_ERR_FORMAT);
    CHECK_MSG("t.txt: vocabulary entries 1 and 3 are both U+0062");
}

/* held out by whole lines: every line in exactly one part, the same
 * vocabulary in both, the same choice for the same seed */
static void test_split_lines(void) {
    char text[2000] = "";
    for (int i = 0; i < 40; i++) {
        char word[16];
        snprintf(word, sizeof word, "%c%c%c\n", 'a' + i % 7, 'a' + i / 7, 'a' + (i * 3) % 11);
        strcat(text, word);
    }
    nb_text_opts o = lines_opts(0);
    o.val_fraction = 0.25;
    o.seed = 7;
    nb_data tr, va, tr2, va2;
    REQUIRE_OK(nb_text_parse(text, strlen(text), "w.txt", &o, &tr, &va));
    CHECK(tr.n == 30 && va.n == 10 && tr.sample_size == 4 && va.sample_size == 4);
    CHECK(tr.n_classes == va.n_classes && tr.n_classes > 1);
    /* each line once: the multiset of (first, second, third) ids adds up */
    double sum = 0, want = 0;
    for (size_t k = 0; k < tr.n * 4; k++) sum += tr.x_real[k];
    for (size_t k = 0; k < va.n * 4; k++) sum += va.x_real[k];
    nb_data all;
    o.val_fraction = 0;
    REQUIRE_OK(nb_text_parse(text, strlen(text), "w.txt", &o, &all, NULL));
    for (size_t k = 0; k < all.n * 4; k++) want += all.x_real[k];
    CHECK(sum == want && all.n == 40);
    o.val_fraction = 0.25;
    REQUIRE_OK(nb_text_parse(text, strlen(text), "w.txt", &o, &tr2, &va2));
    CHECK(memcmp(va.x_real, va2.x_real, sizeof(nb_real) * 40) == 0);
    nb_data_free(&tr2);
    nb_data_free(&va2);
    o.seed = 8;
    REQUIRE_OK(nb_text_parse(text, strlen(text), "w.txt", &o, &tr2, &va2));
    CHECK(memcmp(va.x_real, va2.x_real, sizeof(nb_real) * 40) != 0);
    nb_data_free(&tr2);
    nb_data_free(&va2);
    nb_data_free(&tr);
    nb_data_free(&va);
    nb_data_free(&all);
    o.val_fraction = 0.01;
    CHECK(nb_text_parse(text, strlen(text), "w.txt", &o, &tr, &va) == NB_ERR_ARG);
    CHECK_MSG("w.txt: a validation fraction of 0.01 of 40 lines leaves the validation set empty");
}

/* held out as one span of the stream: no window crosses into it */
static void test_split_stream(void) {
    char text[201];
    for (int i = 0; i < 200; i++) text[i] = (char)('a' + i % 26);
    text[200] = '\0';
    nb_text_opts o = stream_opts(4, 0);
    o.val_fraction = 0.2;
    o.seed = 3;
    nb_data tr, va;
    REQUIRE_OK(nb_text_parse(text, 200, "s.txt", &o, &tr, &va));
    /* 40 characters held out: 36 windows inside; outside, 160 characters in
     * two pieces lose 4 + 4 window starts at their ends */
    CHECKF(va.n == 36, "validation windows %zu", va.n);
    CHECKF(tr.n >= 160 - 8 && tr.n <= 160 - 4, "training windows %zu", tr.n);
    nb_data_free(&tr);
    nb_data_free(&va);
    o.context = 50;
    o.val_fraction = 0.1;
    CHECK(nb_text_parse(text, 200, "s.txt", &o, &tr, &va) == NB_ERR_ARG);
    CHECK_MSG("s.txt: the validation span of 20 characters is shorter than one window (context "
              "50 + 1)");
    o.context = 4;
    o.val_fraction = 0.5;
    CHECK(nb_text_parse(text, 9, "s.txt", &o, &tr, &va) == NB_ERR_ARG); /* 5 held out, 4 left */
    CHECK_MSG("s.txt: no window of 4 + 1 characters fits outside the validation span; hold out "
              "less");
}

static void test_options_and_file(void) {
    nb_data d;
    nb_text_opts o = lines_opts(2);
    o.length = 4;
    CHECK(parse("ab", &o, &d) == NB_ERR_ARG);
    CHECK_MSG("t.txt: length= pads whole lines; it does not go with context=");
    o = lines_opts(2);
    o.val_fraction = 1;
    CHECK(parse("ab", &o, &d) == NB_ERR_ARG);
    CHECK_MSG("t.txt: validation fraction 1 is not in [0, 1)");
    char dir[] = "/tmp/nb_text_XXXXXX", path[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/words.txt", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs("emma\nolivia\nava\n", f);
    fclose(f);
    o = lines_opts(3);
    CHECK_OK(nb_text_load(path, &o, &d, NULL));
    CHECK(d.n == 5 + 7 + 4 && d.n_classes == 1 + 7); /* \n a e i l m o v */
    nb_data_free(&d);
    remove(path);
    CHECK(nb_text_load(path, &o, &d, NULL) == NB_ERR_IO);
    rmdir(dir);
}

int main(void) {
    test_lines_context();
    test_lines_padded();
    test_stream();
    test_code_points();
    test_empty_lines();
    test_one_class();
    test_bad_utf8();
    test_given_vocab();
    test_split_lines();
    test_split_stream();
    test_options_and_file();
    TEST_END();
}
