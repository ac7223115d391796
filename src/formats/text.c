/* Text as training data for character models (docs/sequences.md, Text data).
 *
 * A character is a Unicode code point of UTF-8 text, and its token id is its
 * place in the vocabulary: the distinct characters of the file in code-point
 * order, or a trained model's vocabulary (its class names) given in the
 * options.  Two layouts:
 *  - lines: one sequence per line (makemore's word lists).  The newline
 *    character U+000A, which no line contains, is the line boundary: id 0,
 *    the start and the end of every line.  With context=K, every character
 *    and the final boundary is one sample predicting it from the K before
 *    (boundaries before the start of the line); without, a sample is the
 *    whole line, x = boundary + line padded with boundaries to the length,
 *    y = line + boundary padded with NB_TEXT_IGNORE.
 *  - stream: the file as one sequence of characters (newlines included);
 *    window i is x = c[i .. i+T), y = c[i+1 .. i+T+1).
 * The validation part is a seeded random choice of whole lines, or one
 * seeded random span of the stream; no window crosses into it. */
#include "io.h"
#include "utf8.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEXT_BYTES ((size_t)1 << 30) /* 4 bytes of code point and of id each */
#define MAX_VALUES ((size_t)1 << 30) /* reals in all samples of one part */
#define BOUNDARY 0x0Au

typedef struct text {
    const char *name;
    uint32_t *cp;       /* the code points of the file                   */
    size_t n;
    uint32_t *vocab;    /* code point of every id                        */
    int vocab_size;
    int *ids;           /* cp mapped to ids                              */
    size_t *line_at;    /* lines: where each line starts in cp           */
    size_t *line_len;   /* lines: its length (a trailing \r left out)    */
    size_t n_lines;
} text;

static void text_free(text *t) {
    free(t->cp);
    free(t->vocab);
    free(t->ids);
    free(t->line_at);
    free(t->line_len);
}

/* 1-based line and column of character k. */
static void where(const text *t, size_t k, size_t *line, size_t *col) {
    size_t l = 1, start = 0;
    for (size_t i = 0; i < k; i++)
        if (t->cp[i] == BOUNDARY) l++, start = i + 1;
    *line = l;
    *col = k - start + 1;
}

/* The UTF-8 bytes of code point c into buf (at least 5 bytes). */
static const char *utf8_of(uint32_t c, char *buf) {
    static const unsigned char lead[5] = {0, 0, 0xC0, 0xE0, 0xF0};
    int len = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    buf[len] = '\0';
    for (int i = len - 1; i > 0; i--, c >>= 6) buf[i] = (char)(0x80 | (c & 0x3F));
    buf[0] = (char)(lead[len] | c);
    return buf;
}

/* Code point of the well-formed sequence s of len bytes. */
static uint32_t decode_one(const unsigned char *s, size_t len) {
    if (len == 1) return s[0];
    uint32_t c = s[0] & (0x7Fu >> len);
    for (size_t i = 1; i < len; i++) c = c << 6 | (s[i] & 0x3Fu);
    return c;
}

/* Decode data into t->cp; bad UTF-8 or a NUL byte is an error naming the
 * line and the column. */
static nb_status decode(text *t, const char *data, size_t len) {
    t->cp = malloc(sizeof *t->cp * (len ? len : 1));
    if (!t->cp) return nb_err(NB_ERR_NOMEM, "%s: out of memory for %zu bytes", t->name, len);
    const unsigned char *p = (const unsigned char *)data;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < len; col++) {
        size_t k = nb__utf8_seq(p + i, len - i);
        if (!k)
            return nb_err(NB_ERR_FORMAT, "%s:%zu:%zu: invalid UTF-8 (byte 0x%02x); the text "
                          "must be UTF-8", t->name, line, col, p[i]);
        if (p[i] == 0)
            return nb_err(NB_ERR_FORMAT, "%s:%zu:%zu: NUL byte (not a text file)", t->name, line,
                          col);
        uint32_t c = decode_one(p + i, k);
        t->cp[t->n++] = c;
        if (c == BOUNDARY) line++, col = 0;
        i += k;
    }
    return NB_OK;
}

/* Lines: their starts and lengths, empty lines (and a lone \r) left out. */
static nb_status split_lines(text *t) {
    size_t count = 0;
    for (size_t i = 0; i < t->n; i++) count += t->cp[i] == BOUNDARY;
    count++;
    t->line_at = malloc(count * sizeof *t->line_at);
    t->line_len = malloc(count * sizeof *t->line_len);
    if (!t->line_at || !t->line_len) return nb_err(NB_ERR_NOMEM, "%s: out of memory", t->name);
    for (size_t start = 0; start <= t->n;) {
        size_t end = start;
        while (end < t->n && t->cp[end] != BOUNDARY) end++;
        size_t len = end - start;
        if (len && t->cp[end - 1] == '\r') len--; /* CRLF line ends */
        if (len) {
            t->line_at[t->n_lines] = start;
            t->line_len[t->n_lines++] = len;
        }
        start = end + 1;
    }
    if (!t->n_lines) return nb_err(NB_ERR_FORMAT, "%s: no text (every line is empty)", t->name);
    return NB_OK;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The characters that count, in order: the lines', or the whole stream's. */
static size_t gather(const text *t, int lines, uint32_t *out) {
    if (!lines) {
        memcpy(out, t->cp, t->n * sizeof *out);
        return t->n;
    }
    size_t n = 0;
    for (size_t l = 0; l < t->n_lines; l++)
        for (size_t k = 0; k < t->line_len[l]; k++) out[n++] = t->cp[t->line_at[l] + k];
    return n;
}

/* The vocabulary of the file: its characters in code-point order, after
 * the line boundary (which no line contains) for lines. */
static nb_status build_vocab(text *t, int lines) {
    uint32_t *all = malloc((t->n + 1) * sizeof *all);
    if (!all) return nb_err(NB_ERR_NOMEM, "%s: out of memory", t->name);
    size_t n = gather(t, lines, all + lines);
    if (lines) all[0] = BOUNDARY;
    qsort(all + lines, n, sizeof *all, cmp_u32);
    size_t count = (size_t)lines, first = (size_t)lines; /* keep the boundary */
    for (size_t i = first; i < first + n; i++) /* in place: all[i - 1] is intact here */
        if (i == first || all[i] != all[i - 1]) all[count++] = all[i];
    t->vocab = all;
    t->vocab_size = (int)count;
    return NB_OK;
}

/* A trained model's vocabulary: every name one character; lines need the
 * boundary at id 0. */
static nb_status given_vocab(text *t, char *const *names, int n, int lines) {
    t->vocab = malloc(sizeof *t->vocab * (size_t)(n > 0 ? n : 1));
    if (!t->vocab) return nb_err(NB_ERR_NOMEM, "%s: out of memory", t->name);
    for (int k = 0; k < n; k++) {
        const unsigned char *s = (const unsigned char *)names[k];
        size_t len = strlen(names[k]), one = len ? nb__utf8_seq(s, len) : 0;
        if (!one || one != len) {
            char q[64];
            return nb_err(NB_ERR_FORMAT, "%s: vocabulary entry %d '%s' is not one character",
                          t->name, k, nb__quote(q, sizeof q, names[k], len, 16));
        }
        t->vocab[k] = decode_one(s, len);
    }
    t->vocab_size = n;
    if (lines && (n < 1 || t->vocab[0] != BOUNDARY))
        return nb_err(NB_ERR_FORMAT, "%s: the vocabulary does not start with the line boundary "
                      "(\\n): it was not made from lines: data", t->name);
    return NB_OK;
}

typedef struct vocab_entry {
    uint32_t cp;
    int id;
} vocab_entry;

static int cmp_entry(const void *a, const void *b) {
    return cmp_u32(&((const vocab_entry *)a)->cp, &((const vocab_entry *)b)->cp);
}

static nb_status unknown_char(const text *t, size_t k) {
    size_t line, col;
    char ch[8];
    where(t, k, &line, &col);
    uint32_t c = t->cp[k];
    if (c < 0x20 || c == 0x7F)
        return nb_err(NB_ERR_FORMAT, "%s:%zu:%zu: character U+%04X is not in the vocabulary "
                      "(%d characters)", t->name, line, col, (unsigned)c, t->vocab_size);
    return nb_err(NB_ERR_FORMAT, "%s:%zu:%zu: character '%s' (U+%04X) is not in the "
                  "vocabulary (%d characters)", t->name, line, col, utf8_of(c, ch), (unsigned)c,
                  t->vocab_size);
}

/* Map characters [from, to) to their ids (e sorted by code point). */
static nb_status encode_range(text *t, const vocab_entry *e, size_t from, size_t to) {
    for (size_t i = from; i < to; i++) {
        vocab_entry key = {t->cp[i], 0};
        const vocab_entry *hit = bsearch(&key, e, (size_t)t->vocab_size, sizeof *e, cmp_entry);
        if (!hit) return unknown_char(t, i);
        t->ids[i] = hit->id;
    }
    return NB_OK;
}

/* Map every character that counts to its id: all of a stream, the lines'
 * characters of a lines file (the rest stays 0, the boundary). */
static nb_status encode(text *t, int lines) {
    vocab_entry *e = malloc(sizeof *e * (size_t)(t->vocab_size ? t->vocab_size : 1));
    t->ids = calloc(t->n ? t->n : 1, sizeof *t->ids);
    if (!e || !t->ids) {
        free(e);
        return nb_err(NB_ERR_NOMEM, "%s: out of memory", t->name);
    }
    for (int k = 0; k < t->vocab_size; k++) e[k] = (vocab_entry){t->vocab[k], k};
    qsort(e, (size_t)t->vocab_size, sizeof *e, cmp_entry);
    nb_status s = NB_OK;
    for (int k = 1; k < t->vocab_size && s == NB_OK; k++)
        if (e[k].cp == e[k - 1].cp) { /* a given vocabulary: one id per character */
            int a = e[k - 1].id < e[k].id ? e[k - 1].id : e[k].id, b = e[k - 1].id + e[k].id - a;
            s = nb_err(NB_ERR_FORMAT, "%s: vocabulary entries %d and %d are both U+%04X",
                       t->name, a, b, (unsigned)e[k].cp);
        }
    if (!lines) s = encode_range(t, e, 0, t->n);
    for (size_t l = 0; lines && l < t->n_lines && s == NB_OK; l++)
        s = encode_range(t, e, t->line_at[l], t->line_at[l] + t->line_len[l]);
    free(e);
    return s;
}

/* ------------------------------------------------------------ samples */

typedef struct layout {
    int kind, context, length, stride;
} layout;

/* An empty part with room for n samples of x_size ids and y_size targets,
 * and the vocabulary as class names. */
static nb_status new_part(const text *t, size_t n, size_t x_size, size_t y_size, nb_data *d) {
    memset(d, 0, sizeof *d);
    if (n == 0) /* only a stream's part can be too short for a window */
        return nb_err(NB_ERR_ARG, "%s: no window of %zu + 1 characters fits outside the "
                      "validation span; hold out less", t->name, x_size);
    if (n > MAX_VALUES / (x_size + y_size))
        return nb_err(NB_ERR_NOMEM, "%s: %zu samples of %zu values are more than %zu values; "
                      "use a larger stride= or less text", t->name, n, x_size + y_size,
                      MAX_VALUES);
    d->x_real = malloc(sizeof(nb_real) * n * x_size);
    d->y = malloc(sizeof(nb_real) * n * y_size);
    d->class_names = calloc((size_t)t->vocab_size, sizeof *d->class_names);
    int ok = d->x_real && d->y && d->class_names;
    for (int k = 0; ok && k < t->vocab_size; k++) {
        char ch[8];
        ok = (d->class_names[k] = malloc(strlen(utf8_of(t->vocab[k], ch)) + 1)) != NULL;
        if (ok) strcpy(d->class_names[k], ch);
    }
    d->n_classes = t->vocab_size;
    if (!ok) {
        nb_data_free(d);
        return nb_err(NB_ERR_NOMEM, "%s: out of memory for %zu samples", t->name, n);
    }
    d->n = n;
    d->ndim = 1;
    d->dims[0] = (int)x_size;
    d->sample_size = x_size;
    d->y_size = y_size;
    d->scale = 1;
    return NB_OK;
}

/* Samples of line l written at sample k of d (NULL: only counted). */
static size_t line_samples(const text *t, const layout *o, size_t l, nb_data *d, size_t k) {
    const int *c = t->ids + t->line_at[l];
    size_t len = t->line_len[l];
    if (o->context == 0) { /* the whole line, padded */
        if (!d) return 1;
        nb_real *x = d->x_real + k * (size_t)o->length, *y = d->y + k * (size_t)o->length;
        for (size_t p = 0; p < (size_t)o->length; p++) {
            x[p] = p == 0 || p > len ? R(0) : (nb_real)c[p - 1];
            y[p] = p < len ? (nb_real)c[p] : p == len ? R(0) : (nb_real)NB_TEXT_IGNORE;
        }
        return 1;
    }
    if (d)
        for (size_t p = 0; p <= len; p++) { /* predict c[p] (the end at p == len) */
            nb_real *x = d->x_real + (k + p) * (size_t)o->context;
            for (int j = 0; j < o->context; j++) {
                long at = (long)p - o->context + j;
                x[j] = at < 0 ? R(0) : (nb_real)c[at];
            }
            d->y[k + p] = p < len ? (nb_real)c[p] : R(0);
        }
    return len + 1;
}

/* One part of a lines file: the lines l with pick[l] == want. */
static nb_status lines_part(const text *t, const layout *o, const unsigned char *pick, int want,
                            nb_data *d) {
    size_t n = 0;
    for (size_t l = 0; l < t->n_lines; l++)
        if (pick[l] == want) n += line_samples(t, o, l, NULL, 0);
    size_t xs = o->context ? (size_t)o->context : (size_t)o->length;
    nb_status s = new_part(t, n, xs, o->context ? 1 : xs, d);
    for (size_t l = 0, k = 0; s == NB_OK && l < t->n_lines; l++)
        if (pick[l] == want) k += line_samples(t, o, l, d, k);
    return s;
}

/* Windows of the stream whose x and y lie in [from, to), every stride-th. */
static size_t stream_windows(const text *t, const layout *o, size_t from, size_t to, nb_data *d,
                             size_t k) {
    size_t T = (size_t)o->length, n = 0;
    for (size_t i = from; to >= T + 1 && i <= to - (T + 1); i += (size_t)o->stride, n++) {
        if (!d) continue;
        for (size_t j = 0; j < T; j++) {
            d->x_real[(k + n) * T + j] = (nb_real)t->ids[i + j];
            d->y[(k + n) * T + j] = (nb_real)t->ids[i + j + 1];
        }
    }
    return n;
}

/* Stream windows in the spans [span[2r], span[2r+1]), r < nspan. */
static nb_status stream_part(const text *t, const layout *o, const size_t *span, int nspan,
                             nb_data *d) {
    size_t n = 0, T = (size_t)o->length;
    for (int r = 0; r < nspan; r++) n += stream_windows(t, o, span[2 * r], span[2 * r + 1], NULL, 0);
    nb_status s = new_part(t, n, T, T, d);
    for (size_t r = 0, k = 0; s == NB_OK && r < (size_t)nspan; r++)
        k += stream_windows(t, o, span[2 * r], span[2 * r + 1], d, k);
    return s;
}

/* The held-out part: a seeded random choice of round(f n) of n items. */
static nb_status held_out(const text *t, size_t n, double f, const char *what, size_t *count) {
    *count = (size_t)(f * (double)n + 0.5);
    if (*count == 0 || *count >= n)
        return nb_err(NB_ERR_ARG, "%s: a validation fraction of %g of %zu %s leaves %s empty",
                      t->name, f, n, what, *count ? "the training set" : "the validation set");
    return NB_OK;
}

static nb_status split_lines_parts(const text *t, const layout *o, const nb_text_opts *opt,
                                   nb_data *train, nb_data *val) {
    unsigned char *pick = calloc(t->n_lines, 1);
    if (!pick) return nb_err(NB_ERR_NOMEM, "%s: out of memory", t->name);
    nb_status s = NB_OK;
    if (opt->val_fraction > 0) {
        size_t n_val = 0, *perm = malloc(t->n_lines * sizeof *perm);
        if (!perm) s = nb_err(NB_ERR_NOMEM, "%s: out of memory", t->name);
        if (s == NB_OK) s = held_out(t, t->n_lines, opt->val_fraction, "lines", &n_val);
        if (s == NB_OK) {
            for (size_t i = 0; i < t->n_lines; i++) perm[i] = i;
            nb_rng r;
            nb_rng_seed(&r, opt->seed);
            nb_rng_shuffle(&r, perm, t->n_lines);
            for (size_t i = 0; i < n_val; i++) pick[perm[i]] = 1;
        }
        free(perm);
    }
    if (s == NB_OK) s = lines_part(t, o, pick, 0, train);
    if (s == NB_OK && opt->val_fraction > 0 && (s = lines_part(t, o, pick, 1, val)) != NB_OK)
        nb_data_free(train);
    free(pick);
    return s;
}

static nb_status split_stream_parts(const text *t, const layout *o, const nb_text_opts *opt,
                                    nb_data *train, nb_data *val) {
    size_t all[2] = {0, t->n};
    if (!(opt->val_fraction > 0)) return stream_part(t, o, all, 1, train);
    size_t L;
    nb_status s = held_out(t, t->n, opt->val_fraction, "characters", &L);
    if (s != NB_OK) return s;
    nb_rng r;
    nb_rng_seed(&r, opt->seed);
    size_t start = (size_t)nb_rng_below(&r, t->n - L + 1);
    size_t outside[4] = {0, start, start + L, t->n}, inside[2] = {start, start + L};
    if (L < (size_t)o->length + 1)
        return nb_err(NB_ERR_ARG, "%s: the validation span of %zu characters is shorter than "
                      "one window (context %d + 1)", t->name, L, o->length);
    if ((s = stream_part(t, o, outside, 2, train)) != NB_OK) return s;
    if ((s = stream_part(t, o, inside, 1, val)) != NB_OK) nb_data_free(train);
    return s;
}

/* The padded length: given, or the longest line + 1; every line must fit. */
static nb_status padded_length(const text *t, int given, int *length) {
    size_t longest = 0, at = 0;
    for (size_t l = 0; l < t->n_lines; l++)
        if (t->line_len[l] > longest) longest = t->line_len[l], at = l;
    if (longest >= INT_MAX)
        return nb_err(NB_ERR_FORMAT, "%s: a line of %zu characters is too long", t->name, longest);
    *length = given ? given : (int)longest + 1;
    if (longest + 1 > (size_t)*length) {
        size_t line, col;
        where(t, t->line_at[at], &line, &col);
        return nb_err(NB_ERR_ARG, "%s:%zu: the line has %zu characters; with its boundary it "
                      "needs %zu positions, more than length=%d", t->name, line, longest,
                      longest + 1, *length);
    }
    return NB_OK;
}

static nb_status check_opts(const char *name, const nb_text_opts *o) {
    if (o->kind != NB_TEXT_LINES && o->kind != NB_TEXT_STREAM)
        return nb_err(NB_ERR_ARG, "%s: unknown text layout %d", name, (int)o->kind);
    if (o->context < 0 || o->length < 0 || o->stride < 0)
        return nb_err(NB_ERR_ARG, "%s: context, length and stride must not be negative", name);
    if (o->kind == NB_TEXT_STREAM && o->context < 1)
        return nb_err(NB_ERR_ARG, "%s: a text stream needs context=T, the window length", name);
    if (o->kind == NB_TEXT_LINES && o->context && o->length)
        return nb_err(NB_ERR_ARG, "%s: length= pads whole lines; it does not go with context=",
                      name);
    if (!(o->val_fraction >= 0 && o->val_fraction < 1))
        return nb_err(NB_ERR_ARG, "%s: validation fraction %g is not in [0, 1)", name,
                      o->val_fraction);
    if (o->vocab_size < 0 || (o->vocab_size && !o->vocab))
        return nb_err(NB_ERR_ARG, "%s: vocabulary of %d entries without names", name,
                      o->vocab_size);
    return NB_OK;
}

nb_status nb_text_parse(const char *data, size_t len, const char *name, const nb_text_opts *opts,
                        nb_data *train, nb_data *val) {
    if (!name) name = "<text>";
    if (!data || !opts || !train) return nb_err(NB_ERR_ARG, "nb_text_parse: NULL argument");
    memset(train, 0, sizeof *train);
    if (val) memset(val, 0, sizeof *val);
    nb_status s = check_opts(name, opts);
    if (s != NB_OK) return s;
    if (opts->val_fraction > 0 && !val)
        return nb_err(NB_ERR_ARG, "nb_text_parse: a validation fraction without val");
    int lines = opts->kind == NB_TEXT_LINES;
    text t = {.name = name};
    layout o = {.kind = opts->kind, .context = opts->context, .length = opts->context,
                .stride = opts->stride ? opts->stride : 1};
    s = decode(&t, data, len);
    if (s == NB_OK && t.n == 0) s = nb_err(NB_ERR_FORMAT, "%s: the file is empty", name);
    if (s == NB_OK && lines) s = split_lines(&t);
    if (s == NB_OK && lines && !o.context) s = padded_length(&t, opts->length, &o.length);
    if (s == NB_OK)
        s = opts->vocab_size ? given_vocab(&t, opts->vocab, opts->vocab_size, lines)
                             : build_vocab(&t, lines);
    if (s == NB_OK) s = encode(&t, lines);
    if (s == NB_OK && !lines && t.n < (size_t)o.length + 1)
        s = nb_err(NB_ERR_FORMAT, "%s: %zu characters are fewer than one window (context %d "
                   "+ 1)", name, t.n, o.length);
    if (s == NB_OK)
        s = lines ? split_lines_parts(&t, &o, opts, train, val)
                  : split_stream_parts(&t, &o, opts, train, val);
    text_free(&t);
    return s;
}

nb_status nb_text_load(const char *path, const nb_text_opts *opts, nb_data *train, nb_data *val) {
    if (!path) return nb_err(NB_ERR_ARG, "nb_text_load: path is NULL");
    char *data;
    size_t len;
    nb_status s = nb__read_file(path, MAX_TEXT_BYTES, &data, &len);
    if (s != NB_OK) return s;
    s = nb_text_parse(data, len, path, opts, train, val);
    free(data);
    return s;
}
