/* CSV tables: numeric features and one label column per row.
 *
 * The whole text is in memory (nb_csv_load reads the file, then parses), so
 * the parser is one pass over a buffer and can be fuzzed directly.  Every
 * structure it grows is bounded by the input size and by the limits in
 * nb_csv_opts, and every error names the file, the line and the column.
 *
 * Numbers are parsed by parse_real below, not strtod: strtod follows the C
 * locale's decimal point, so "0.5" would stop at the '.' in a program that
 * called setlocale(LC_ALL, "de_DE.UTF-8").  parse_real always means '.'. */
#include "io.h"
#include "utf8.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSV_MAX_LINE_DEFAULT ((size_t)1 << 20)
#define CSV_MAX_COLUMNS_DEFAULT 65536
#define CSV_MAX_ROWS_DEFAULT ((size_t)100000000)
#define CSV_MAX_FILE_DEFAULT ((size_t)0xFFFFFFFFu)
/* How much of a bad cell an error message shows. */
#define CSV_SHOW 40

nb_csv_opts nb_csv_defaults(void) {
    nb_csv_opts o;
    memset(&o, 0, sizeof o);
    o.header = NB_CSV_HEADER_AUTO;
    o.delimiter = ',';
    o.label_name = NULL;
    o.label_index = -1;
    o.max_line_bytes = CSV_MAX_LINE_DEFAULT;
    o.max_columns = CSV_MAX_COLUMNS_DEFAULT;
    o.max_rows = CSV_MAX_ROWS_DEFAULT;
    o.max_file_bytes = CSV_MAX_FILE_DEFAULT;
    return o;
}

/* ------------------------------------------------------------ numbers */

enum { NUM_OK = 1, NUM_NOT = 0, NUM_RANGE = -1 };

/* Powers of ten exactly representable in float (up to 1e10) and double (1e22). */
#ifndef NB_REAL_DOUBLE
static const float pow10_f[] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f,
                                1e6f, 1e7f, 1e8f, 1e9f, 1e10f};
#endif
static const double pow10_d[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Parse all of s[0..len) as a decimal number
 *     [+-] digits [. digits] [(e|E) [+-] digits]   or   [+-] . digits [...]
 * with '.' as the decimal point whatever the locale.  Returns NUM_OK and the
 * value rounded to nb_real, NUM_NOT if the text is not such a number (NaN and
 * infinities included), NUM_RANGE if it overflows nb_real.
 *
 * Rounding: values with at most 7 significant digits and a decimal exponent
 * within +-10 are computed with one float operation on exact operands, so
 * they are correctly rounded (Clinger's fast path); the rest go through
 * double, which is within one float ulp and almost always correctly rounded. */
static int parse_real(const char *s, size_t len, nb_real *out) {
    size_t i = 0;
    int neg = 0;
    if (i < len && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    uint64_t m = 0;   /* up to 19 significant digits */
    int nd = 0;       /* significant digits kept in m */
    int sticky = 0;   /* a non-zero digit was dropped */
    long e10 = 0;     /* decimal exponent of m */
    int digits = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
        int d = s[i] - '0';
        if (nd < 19) {
            m = m * 10 + (uint64_t)d;
            if (m) nd++;
        } else {
            e10++;
            sticky |= d != 0;
        }
    }
    if (i < len && s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
            int d = s[i] - '0';
            if (nd < 19) {
                m = m * 10 + (uint64_t)d;
                if (m) nd++;
                e10--;
            } else {
                sticky |= d != 0;
            }
        }
    }
    if (!digits) return NUM_NOT;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int eneg = 0;
        if (i < len && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
        if (i == len || s[i] < '0' || s[i] > '9') return NUM_NOT;
        long e = 0;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            if (e < 100000) e = e * 10 + (s[i] - '0'); /* saturate: far beyond any range */
        e10 += eneg ? -e : e;
    }
    if (i != len) return NUM_NOT;
    double v;
    if (m == 0) {
        v = 0;
#ifndef NB_REAL_DOUBLE
    } else if (!sticky && m <= (1u << 24) && e10 >= -10 && e10 <= 10) {
        float f = (float)m;
        f = e10 >= 0 ? f * pow10_f[e10] : f / pow10_f[-e10];
        *out = neg ? -f : f;
        return NUM_OK;
#endif
    } else if (nd + e10 > 330) {
        return NUM_RANGE;
    } else if (nd + e10 < -330) {
        v = 0; /* far below the smallest subnormal */
    } else {
        /* m <= 2^53 and |e10| <= 22: one correctly rounded double operation */
        v = (double)m;
        while (e10 > 22) v *= 1e22, e10 -= 22;
        while (e10 < -22) v /= 1e22, e10 += 22;
        v = e10 >= 0 ? v * pow10_d[e10] : v / pow10_d[-e10];
    }
#ifdef NB_REAL_DOUBLE
    if (isinf(v)) return NUM_RANGE;
#else
    /* FLT_MAX plus half an ulp (2^103) and above round to infinity */
    if (v >= (double)FLT_MAX + 0x1p103) return NUM_RANGE;
#endif
    *out = (nb_real)(neg ? -v : v);
    return NUM_OK;
}

/* NaN or an infinity spelled the way printf and spreadsheets write them. */
static int is_nan_or_inf(const char *s, size_t len) {
    static const char *const words[] = {"nan", "inf", "infinity", "-nan", "-inf", "-infinity",
                                        "+nan", "+inf", "+infinity"};
    for (size_t w = 0; w < sizeof words / sizeof words[0]; w++) {
        size_t n = strlen(words[w]);
        if (n != len) continue;
        size_t k = 0;
        while (k < n && (s[k] | 0x20) == words[w][k]) k++;
        if (k == n) return 1;
    }
    return 0;
}

/* ------------------------------------------------------------ tokenizer */

typedef struct csv_reader {
    const char *p, *end;
    const char *name;       /* file name for messages */
    char delim;
    size_t line;            /* current physical line, 1-based */
    size_t max_line;
    int max_cols;
    /* the current record: cells as NUL-terminated text in buf */
    char *buf;
    size_t buf_len, buf_cap;
    size_t *off, *len, *cell_line;
    int ncells, cells_cap;
    size_t rec_line;        /* line where the record starts */
    nb_status status;       /* why read_record failed */
} csv_reader;

static int is_space(const csv_reader *r, char c) {
    return (c == ' ' || c == '\t') && c != r->delim;
}

static nb_status buf_put(csv_reader *r, char c) {
    if (r->buf_len == r->buf_cap) {
        /* bounded: a record's text is at most max_line bytes plus terminators */
        size_t ncap = r->buf_cap ? r->buf_cap * 2 : 256;
        char *nb = realloc(r->buf, ncap);
        if (!nb) return nb_err(NB_ERR_NOMEM, "%s: out of memory", r->name);
        r->buf = nb;
        r->buf_cap = ncap;
    }
    r->buf[r->buf_len++] = c;
    return NB_OK;
}

static nb_status new_cell(csv_reader *r) {
    if (r->ncells == r->max_cols)
        return nb_err(NB_ERR_FORMAT, "%s:%zu: more than %d columns (the limit; see "
                      "nb_csv_opts.max_columns)", r->name, r->rec_line, r->max_cols);
    if (r->ncells == r->cells_cap) {
        int ncap = r->cells_cap ? r->cells_cap * 2 : 16;
        size_t *o = realloc(r->off, sizeof *o * (size_t)ncap);
        if (o) r->off = o;
        size_t *l = realloc(r->len, sizeof *l * (size_t)ncap);
        if (l) r->len = l;
        size_t *cl = realloc(r->cell_line, sizeof *cl * (size_t)ncap);
        if (cl) r->cell_line = cl;
        if (!o || !l || !cl) return nb_err(NB_ERR_NOMEM, "%s: out of memory", r->name);
        r->cells_cap = ncap;
    }
    r->off[r->ncells] = r->buf_len;
    r->len[r->ncells] = 0;
    r->cell_line[r->ncells] = r->line;
    r->ncells++;
    return NB_OK;
}

/* Consume a line ending at r->p if there is one ("\r\n", "\n" or "\r"). */
static int eat_newline(csv_reader *r) {
    if (r->p < r->end && *r->p == '\r') {
        r->p++;
        if (r->p < r->end && *r->p == '\n') r->p++;
        r->line++;
        return 1;
    }
    if (r->p < r->end && *r->p == '\n') {
        r->p++;
        r->line++;
        return 1;
    }
    return 0;
}

/* Record an error of the current record; returns -1 for read_record. */
#define FAIL(...) return (r->status = nb_err(NB_ERR_FORMAT, __VA_ARGS__)), -1
#define FAIL_LONG()                                                                      \
    FAIL("%s:%zu: line longer than %zu bytes (the limit; see nb_csv_opts.max_line_bytes)", \
         r->name, r->rec_line, r->max_line)

/* Skip blank lines (nothing but spaces or tabs); 0 at the end of the input. */
static int skip_blank_lines(csv_reader *r) {
    for (;;) {
        const char *q = r->p;
        while (q < r->end && is_space(r, *q)) q++;
        if (q == r->end) {
            r->p = q;
            return 0;
        }
        if (*q != '\r' && *q != '\n') return 1;
        r->p = q;
        eat_newline(r);
    }
}

/* The quoted cell at r->p (column c of the record starting at start) into
 * the buffer, and what follows it up to the delimiter.  0, or -1 on error. */
static int read_quoted_cell(csv_reader *r, const char *start, int c) {
    size_t qline = r->line;
    r->p++;
    for (;;) {
        if (r->p == r->end)
            FAIL("%s:%zu: column %d: quoted cell is never closed (missing '\"')", r->name, qline,
                 c);
        if ((size_t)(r->p - start) >= r->max_line) FAIL_LONG();
        char ch = *r->p;
        if (ch == '"') {
            if (r->p + 1 < r->end && r->p[1] == '"') {
                if ((r->status = buf_put(r, '"')) != NB_OK) return -1;
                r->p += 2;
                continue;
            }
            r->p++;
            break;
        }
        if (ch == '\0')
            FAIL("%s:%zu: column %d: NUL byte (binary data?)", r->name, r->line, c);
        if (ch == '\r' || ch == '\n') { /* a line break inside quotes is data */
            if ((r->status = buf_put(r, '\n')) != NB_OK) return -1;
            eat_newline(r);
            continue;
        }
        if ((r->status = buf_put(r, ch)) != NB_OK) return -1;
        r->p++;
    }
    while (r->p < r->end && is_space(r, *r->p)) r->p++;
    if (r->p < r->end && *r->p != r->delim && *r->p != '\r' && *r->p != '\n') {
        char shown[32];
        FAIL("%s:%zu: column %d: '%s' after a closing quote (expected the delimiter or the end "
             "of the line)", r->name, r->line, c, nb__quote(shown, sizeof shown, r->p, 1, 1));
    }
    return 0;
}

/* The unquoted cell at r->p into the buffer (from offset first), without
 * trailing spaces.  0, or -1 on error. */
static int read_plain_cell(csv_reader *r, const char *start, int c, size_t first) {
    while (r->p < r->end && *r->p != r->delim && *r->p != '\r' && *r->p != '\n') {
        char ch = *r->p;
        if (ch == '"')
            FAIL("%s:%zu: column %d: quote inside an unquoted cell (quote the whole cell and "
                 "double the inner quotes)", r->name, r->line, c);
        if (ch == '\0')
            FAIL("%s:%zu: column %d: NUL byte (binary data?)", r->name, r->line, c);
        if ((size_t)(r->p - start) >= r->max_line) FAIL_LONG();
        if ((r->status = buf_put(r, ch)) != NB_OK) return -1;
        r->p++;
    }
    while (r->buf_len > first && is_space(r, r->buf[r->buf_len - 1])) r->buf_len--;
    return 0;
}

/* Read the next non-blank record.  Returns 1 with the cells in r, 0 at the
 * end of the input, -1 on error (message set, status in r->status).  A byte
 * at offset max_line or beyond from the record's start makes the record too
 * long, and is caught before it is copied. */
static int read_record(csv_reader *r) {
    if (!skip_blank_lines(r)) return 0;
    const char *start = r->p;
    r->rec_line = r->line;
    r->ncells = 0;
    r->buf_len = 0;
    for (;;) { /* one cell per iteration */
        if ((r->status = new_cell(r)) != NB_OK) return -1;
        int c = r->ncells; /* 1-based column for messages */
        size_t first = r->buf_len;
        while (r->p < r->end && is_space(r, *r->p)) r->p++;
        int bad = r->p < r->end && *r->p == '"' ? read_quoted_cell(r, start, c)
                                                 : read_plain_cell(r, start, c, first);
        if (bad) return -1;
        if ((size_t)(r->p - start) > r->max_line) FAIL_LONG(); /* spaces after the cell */
        r->len[r->ncells - 1] = r->buf_len - first;
        if ((r->status = buf_put(r, '\0')) != NB_OK) return -1;
        if (r->p < r->end && *r->p == r->delim) {
            r->p++;
            continue;
        }
        eat_newline(r);
        return 1;
    }
}
#undef FAIL_LONG
#undef FAIL

static const char *cell(const csv_reader *r, int k) { return r->buf + r->off[k]; }

/* Cell k without the spaces around it (quoted cells keep inner spaces for
 * names, but a number may be written as " 1.5"). */
static void trimmed(const csv_reader *r, int k, const char **s, size_t *n) {
    const char *t = cell(r, k);
    size_t len = r->len[k];
    while (len && (*t == ' ' || *t == '\t')) t++, len--;
    while (len && (t[len - 1] == ' ' || t[len - 1] == '\t')) len--;
    *s = t;
    *n = len;
}

/* ------------------------------------------------------------ the table */

typedef struct csv_state {
    csv_reader r;
    int ncols, label;
    size_t first_line;
    char **names;           /* ncols header names, or NULL */
    nb_real *x, *y;
    size_t rows, x_cap, y_cap;
    /* label texts, kept until we know whether they are numbers or classes */
    char *ltext;
    size_t ltext_len, ltext_cap;
    size_t *loff, loff_cap;
    int any_text;
    nb__class_lookup known;  /* nb_csv_opts.classes, sorted for lookup */
} csv_state;

static void state_free(csv_state *st) {
    free(st->r.buf);
    free(st->r.off);
    free(st->r.len);
    free(st->r.cell_line);
    if (st->names)
        for (int k = 0; k < st->ncols; k++) free(st->names[k]);
    free(st->names);
    free(st->x);
    free(st->y);
    free(st->ltext);
    free(st->loff);
    nb__class_lookup_free(&st->known);
}

/* "column 3 ('petal_width')" or "column 3" into buf. */
static const char *col_desc(const csv_state *st, int k, char *buf, size_t size) {
    if (st->names) {
        char q[3 * CSV_SHOW];
        snprintf(buf, size, "column %d ('%s')", k + 1,
                 nb__quote(q, sizeof q, st->names[k], strlen(st->names[k]), CSV_SHOW));
    } else {
        snprintf(buf, size, "column %d", k + 1);
    }
    return buf;
}

static nb_status cell_error(const csv_state *st, int k, const char *s, size_t n, int why) {
    char desc[4 * CSV_SHOW], q[4 * CSV_SHOW];
    col_desc(st, k, desc, sizeof desc);
    size_t line = st->r.cell_line[k];
    if (n == 0)
        return nb_err(NB_ERR_FORMAT, "%s:%zu: %s: empty cell where a number is expected",
                      st->r.name, line, desc);
    nb__quote(q, sizeof q, s, n, CSV_SHOW);
    if (why == NUM_RANGE)
        return nb_err(NB_ERR_NUMERIC, "%s:%zu: %s: '%s' is out of range for a %s", st->r.name,
                      line, desc, q, sizeof(nb_real) == sizeof(float) ? "float" : "double");
    if (is_nan_or_inf(s, n))
        return nb_err(NB_ERR_NUMERIC, "%s:%zu: %s: '%s' is not a finite number (NaN and "
                      "infinities are not accepted)", st->r.name, line, desc, q);
    const char *comma = memchr(s, ',', n);
    if (comma && !memchr(s, '.', n))
        return nb_err(NB_ERR_FORMAT, "%s:%zu: %s: '%s' is not a number (the decimal point "
                      "must be '.', not ',')", st->r.name, line, desc, q);
    return nb_err(NB_ERR_FORMAT, "%s:%zu: %s: '%s' is not a number", st->r.name, line, desc,
                  q);
}

static int is_number_cell(const csv_reader *r, int k) {
    const char *s;
    size_t n;
    nb_real v;
    trimmed(r, k, &s, &n);
    return parse_real(s, n, &v) != NUM_NOT;
}

/* Grow an array of elem-size items so it holds at least need of them. */
static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elem) return 0;
        ncap *= 2;
    }
    void *np = realloc(*p, ncap * elem);
    if (!np) return 0;
    *p = np;
    *cap = ncap;
    return 1;
}

/* Columns of the first record: the label column, and whether it is a header. */
static nb_status read_layout(csv_state *st, const nb_csv_opts *o, int *has_header) {
    csv_reader *r = &st->r;
    st->ncols = r->ncells;
    st->first_line = r->rec_line;
    if (o->no_label) { /* every column a feature (data to predict) */
        st->label = -1;
        if (o->header == NB_CSV_HEADER_YES) *has_header = 1;
        else if (o->header == NB_CSV_HEADER_NO) *has_header = 0;
        else
            for (int k = 0; k < st->ncols; k++)
                if (!is_number_cell(r, k)) *has_header = 1;
        return NB_OK;
    }
    if (st->ncols < 2)
        return nb_err(NB_ERR_FORMAT, "%s:%zu: only 1 column; need at least one feature column "
                      "and a label column (is the delimiter '%c' right?)", r->name, r->rec_line,
                      r->delim);
    if (o->label_name) {
        if (o->header == NB_CSV_HEADER_NO)
            return nb_err(NB_ERR_ARG, "%s: label column given by name ('%s') but the options "
                          "say the file has no header", r->name, o->label_name);
        *has_header = 1;
        st->label = -1;
        for (int k = 0; k < st->ncols; k++) {
            if (strcmp(cell(r, k), o->label_name) != 0) continue;
            if (st->label >= 0)
                return nb_err(NB_ERR_FORMAT, "%s:%zu: label column name '%s' appears twice "
                              "(columns %d and %d)", r->name, r->rec_line, o->label_name,
                              st->label + 1, k + 1);
            st->label = k;
        }
        if (st->label < 0) {
            char q[3 * CSV_SHOW];
            return nb_err(NB_ERR_FORMAT, "%s:%zu: no column named '%s' in the header (its first "
                          "column is '%s')", r->name, r->rec_line, o->label_name,
                          nb__quote(q, sizeof q, cell(r, 0), r->len[0], CSV_SHOW));
        }
    } else {
        long li = o->label_index < 0 ? (long)o->label_index + st->ncols : o->label_index;
        if (li < 0 || li >= st->ncols)
            return nb_err(NB_ERR_ARG, "%s: label column index %d is out of range: the file has "
                          "%d columns", r->name, o->label_index, st->ncols);
        st->label = (int)li;
        if (o->header == NB_CSV_HEADER_YES) *has_header = 1;
        else if (o->header == NB_CSV_HEADER_NO) *has_header = 0;
        else {
            *has_header = 0;
            for (int k = 0; k < st->ncols; k++)
                if (k != st->label && !is_number_cell(r, k)) *has_header = 1;
        }
    }
    return NB_OK;
}

static nb_status keep_header(csv_state *st) {
    csv_reader *r = &st->r;
    st->names = calloc((size_t)st->ncols, sizeof *st->names);
    if (!st->names) return nb_err(NB_ERR_NOMEM, "%s: out of memory", r->name);
    for (int k = 0; k < st->ncols; k++) {
        if (!nb__utf8_valid(cell(r, k), r->len[k])) {
            char q[4 * CSV_SHOW];
            return nb_err(NB_ERR_FORMAT, "%s:%zu: column %d: header name '%s' is not valid "
                          "UTF-8", r->name, r->cell_line[k], k + 1,
                          nb__quote(q, sizeof q, cell(r, k), r->len[k], CSV_SHOW));
        }
        st->names[k] = malloc(r->len[k] + 1);
        if (!st->names[k]) return nb_err(NB_ERR_NOMEM, "%s: out of memory", r->name);
        memcpy(st->names[k], cell(r, k), r->len[k] + 1);
    }
    return NB_OK;
}

/* A label as a class of nb_csv_opts.classes (by name) or, without names, as
 * a class number below n_classes. */
static nb_status known_label(csv_state *st, const nb_csv_opts *o, const char *s, size_t n,
                             nb_real *y) {
    nb_real v;
    long k = -1;
    if (o->classes) k = nb__class_find(&st->known, s, n);
    else if (parse_real(s, n, &v) == NUM_OK && v >= 0 && v < o->n_classes && v == (long)v)
        k = (long)v;
    if (k >= 0) {
        *y = (nb_real)k;
        return NB_OK;
    }
    char q[4 * CSV_SHOW], desc[4 * CSV_SHOW], known[1024];
    return nb_err(NB_ERR_FORMAT, "%s:%zu: %s: label '%s' is not a class the model was trained "
                  "on (it knows %s)", st->r.name, st->r.cell_line[st->label],
                  col_desc(st, st->label, desc, sizeof desc),
                  nb__quote(q, sizeof q, s, n, CSV_SHOW),
                  nb__class_list(known, sizeof known, o->classes, o->n_classes));
}

/* One data record into row st->rows. */
static nb_status add_row(csv_state *st, const nb_csv_opts *o) {
    csv_reader *r = &st->r;
    if (r->ncells != st->ncols)
        return nb_err(NB_ERR_FORMAT, "%s:%zu: %d cells, expected %d as on line %zu", r->name,
                      r->rec_line, r->ncells, st->ncols, st->first_line);
    if (st->rows == o->max_rows)
        return nb_err(NB_ERR_FORMAT, "%s:%zu: more than %zu data rows (the limit; see "
                      "nb_csv_opts.max_rows)", r->name, r->rec_line, o->max_rows);
    size_t nf = (size_t)st->ncols - (st->label >= 0), row = st->rows;
    if (!grow((void **)&st->x, &st->x_cap, (row + 1) * nf, sizeof *st->x) ||
        (st->label >= 0 && !grow((void **)&st->y, &st->y_cap, row + 1, sizeof *st->y)))
        return nb_err(NB_ERR_NOMEM, "%s: out of memory at line %zu", r->name, r->rec_line);
    nb_real *xr = st->x + row * nf;
    for (int k = 0, j = 0; k < st->ncols; k++) {
        const char *s;
        size_t n;
        trimmed(r, k, &s, &n);
        if (k == st->label) continue;
        int got = parse_real(s, n, &xr[j]);
        if (got != NUM_OK) return cell_error(st, k, s, n, got);
        j++;
    }
    if (st->label < 0) {
        st->rows++;
        return NB_OK;
    }
    /* the label: a number, or text to become a class name */
    const char *s;
    size_t n;
    trimmed(r, st->label, &s, &n);
    char desc[4 * CSV_SHOW];
    if (n == 0)
        return nb_err(NB_ERR_FORMAT, "%s:%zu: %s: empty label", r->name,
                      r->cell_line[st->label], col_desc(st, st->label, desc, sizeof desc));
    if (o->n_classes > 0) {
        nb_status ks = known_label(st, o, s, n, &st->y[row]);
        if (ks == NB_OK) st->rows++;
        return ks;
    }
    int got = parse_real(s, n, &st->y[row]);
    if (got == NUM_RANGE || (got == NUM_NOT && is_nan_or_inf(s, n)))
        return cell_error(st, st->label, s, n, got);
    if (got == NUM_NOT) {
        if (!nb__utf8_valid(s, n)) {
            char q[4 * CSV_SHOW];
            return nb_err(NB_ERR_FORMAT, "%s:%zu: %s: label '%s' is not valid UTF-8", r->name,
                          r->cell_line[st->label], col_desc(st, st->label, desc, sizeof desc),
                          nb__quote(q, sizeof q, s, n, CSV_SHOW));
        }
        st->any_text = 1;
    }
    if (!grow((void **)&st->loff, &st->loff_cap, row + 1, sizeof *st->loff))
        return nb_err(NB_ERR_NOMEM, "%s: out of memory", r->name);
    if (!grow((void **)&st->ltext, &st->ltext_cap, st->ltext_len + n + 1, 1))
        return nb_err(NB_ERR_NOMEM, "%s: out of memory", r->name);
    st->loff[row] = st->ltext_len;
    memcpy(st->ltext + st->ltext_len, s, n);
    st->ltext[st->ltext_len + n] = '\0';
    st->ltext_len += n + 1;
    st->rows++;
    return NB_OK;
}

typedef struct label_ref {
    const char *text;
    size_t row;
} label_ref;

static int cmp_label(const void *a, const void *b) {
    const label_ref *x = a, *y = b;
    int c = strcmp(x->text, y->text);
    if (c) return c;
    return (x->row > y->row) - (x->row < y->row);
}

/* Text labels -> class indices in sorted order; names into out. */
static nb_status make_classes(csv_state *st, nb_csv_data *out) {
    label_ref *refs = malloc(sizeof *refs * st->rows);
    if (!refs) return nb_err(NB_ERR_NOMEM, "%s: out of memory", st->r.name);
    for (size_t i = 0; i < st->rows; i++) {
        refs[i].text = st->ltext + st->loff[i];
        refs[i].row = i;
    }
    qsort(refs, st->rows, sizeof *refs, cmp_label);
    size_t k = 0;
    for (size_t i = 0; i < st->rows; i++)
        if (i == 0 || strcmp(refs[i].text, refs[i - 1].text) != 0) k++;
    if (k > (size_t)INT32_MAX) {
        free(refs);
        return nb_err(NB_ERR_FORMAT, "%s: more than %d classes", st->r.name, INT32_MAX);
    }
    out->class_names = calloc(k, sizeof *out->class_names);
    if (!out->class_names) {
        free(refs);
        return nb_err(NB_ERR_NOMEM, "%s: out of memory", st->r.name);
    }
    out->n_classes = (int)k;
    int cls = -1;
    for (size_t i = 0; i < st->rows; i++) {
        if (i == 0 || strcmp(refs[i].text, refs[i - 1].text) != 0) {
            cls++;
            size_t n = strlen(refs[i].text);
            out->class_names[cls] = malloc(n + 1);
            if (!out->class_names[cls]) {
                free(refs);
                return nb_err(NB_ERR_NOMEM, "%s: out of memory", st->r.name);
            }
            memcpy(out->class_names[cls], refs[i].text, n + 1);
        }
        st->y[refs[i].row] = (nb_real)cls;
    }
    free(refs);
    return NB_OK;
}

/* The classes of nb_csv_opts into out. */
static nb_status copy_classes(const nb_csv_opts *o, nb_csv_data *out) {
    out->n_classes = o->n_classes;
    if (!o->classes) return NB_OK;
    out->class_names = calloc((size_t)o->n_classes, sizeof *out->class_names);
    if (!out->class_names) return nb_err(NB_ERR_NOMEM, "out of memory");
    for (int k = 0; k < o->n_classes; k++) {
        size_t len = strlen(o->classes[k]) + 1;
        if (!(out->class_names[k] = malloc(len))) return nb_err(NB_ERR_NOMEM, "out of memory");
        memcpy(out->class_names[k], o->classes[k], len);
    }
    return NB_OK;
}

static nb_status parse_table(csv_state *st, const nb_csv_opts *o, nb_csv_data *out) {
    csv_reader *r = &st->r;
    int got = read_record(r);
    if (got < 0) return r->status;
    if (got == 0) return nb_err(NB_ERR_FORMAT, "%s: empty file (no rows)", r->name);
    int has_header = 0;
    nb_status s = read_layout(st, o, &has_header);
    if (s != NB_OK) return s;
    if (has_header) {
        if ((s = keep_header(st)) != NB_OK) return s;
    } else if ((s = add_row(st, o)) != NB_OK) {
        return s;
    }
    while ((got = read_record(r)) > 0)
        if ((s = add_row(st, o)) != NB_OK) return s;
    if (got < 0) return r->status;
    if (st->rows == 0)
        return nb_err(NB_ERR_FORMAT, "%s: a header but no data rows", r->name);
    if (o->n_classes > 0) s = copy_classes(o, out);
    else if (st->any_text) s = make_classes(st, out);
    if (s != NB_OK) return s;

    int nf = st->ncols - (st->label >= 0);
    out->rows = st->rows;
    out->features = nf;
    out->x = st->x;
    out->y = st->y;
    st->x = st->y = NULL;
    if (st->names) {
        out->feature_names = malloc(sizeof *out->feature_names * (size_t)nf);
        if (!out->feature_names) return nb_err(NB_ERR_NOMEM, "%s: out of memory", r->name);
        for (int k = 0, j = 0; k < st->ncols; k++) {
            if (k == st->label) out->label_name = st->names[k];
            else out->feature_names[j++] = st->names[k];
            st->names[k] = NULL; /* now owned by out */
        }
    }
    return NB_OK;
}

void nb_csv_free(nb_csv_data *d) {
    if (!d) return;
    free(d->x);
    free(d->y);
    if (d->feature_names)
        for (int j = 0; j < d->features; j++) free(d->feature_names[j]);
    free(d->feature_names);
    free(d->label_name);
    if (d->class_names)
        for (int k = 0; k < d->n_classes; k++) free(d->class_names[k]);
    free(d->class_names);
    memset(d, 0, sizeof *d);
}

/* Options with zero limits replaced by the defaults, or an error. */
static nb_status resolve_opts(const nb_csv_opts *opts, const char *name, nb_csv_opts *o) {
    *o = opts ? *opts : nb_csv_defaults();
    nb_csv_opts d = nb_csv_defaults();
    if (!o->delimiter) o->delimiter = ',';
    if (!o->max_line_bytes) o->max_line_bytes = d.max_line_bytes;
    if (o->max_columns <= 0) o->max_columns = d.max_columns;
    if (!o->max_rows) o->max_rows = d.max_rows;
    if (!o->max_file_bytes) o->max_file_bytes = d.max_file_bytes;
    if (o->delimiter == '"' || o->delimiter == '\r' || o->delimiter == '\n')
        return nb_err(NB_ERR_ARG, "%s: the delimiter cannot be a quote or a line break", name);
    if (o->header != NB_CSV_HEADER_AUTO && o->header != NB_CSV_HEADER_YES &&
        o->header != NB_CSV_HEADER_NO)
        return nb_err(NB_ERR_ARG, "%s: unknown header mode %d", name, (int)o->header);
    if (o->n_classes < 0) return nb_err(NB_ERR_ARG, "%s: %d classes", name, o->n_classes);
    for (int k = 0; o->classes && k < o->n_classes; k++)
        if (!o->classes[k]) return nb_err(NB_ERR_ARG, "%s: class name %d is NULL", name, k);
    return NB_OK;
}

nb_status nb_csv_parse(const char *text, size_t len, const char *name, const nb_csv_opts *opts,
                       nb_csv_data *out) {
    if (!out) return nb_err(NB_ERR_ARG, "nb_csv_parse: out is NULL");
    memset(out, 0, sizeof *out);
    if (!name) name = "<csv>";
    if (!text && len) return nb_err(NB_ERR_ARG, "nb_csv_parse: text is NULL");
    nb_csv_opts o;
    nb_status s = resolve_opts(opts, name, &o);
    if (s != NB_OK) return s;
    if (!text) text = ""; /* len is 0: no arithmetic on a null pointer */
    csv_state st;
    memset(&st, 0, sizeof st);
    st.r.p = text;
    st.r.end = text + len;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) st.r.p += 3; /* UTF-8 BOM */
    st.r.name = name;
    st.r.delim = o.delimiter;
    st.r.line = 1;
    st.r.max_line = o.max_line_bytes;
    st.r.max_cols = o.max_columns;
    s = nb__class_lookup_init(&st.known, o.n_classes > 0 ? o.classes : NULL, o.n_classes);
    if (s == NB_OK) s = parse_table(&st, &o, out);
    state_free(&st);
    if (s != NB_OK) nb_csv_free(out);
    return s;
}

nb_status nb_csv_load(const char *path, const nb_csv_opts *opts, nb_csv_data *out) {
    if (!path || !out)
        return nb_err(NB_ERR_ARG, "nb_csv_load: %s is NULL", path ? "out" : "path");
    memset(out, 0, sizeof *out);
    nb_csv_opts o;
    nb_status s = resolve_opts(opts, path, &o);
    if (s != NB_OK) return s;
    char *text;
    size_t len;
    s = nb__read_file(path, o.max_file_bytes, &text, &len);
    if (s != NB_OK) return s;
    s = nb_csv_parse(text, len, path, &o, out);
    free(text);
    return s;
}
