/* Strict JSON: check and build the tree in one pass (see json.h for what
 * "strict" means here). */
#include "json.h"
#include "utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Nodes come from blocks that never move, so the tree can use pointers. */
enum { BLOCK_NODES = 256 };

typedef struct node_block {
    struct node_block *next;
    int used;
    nb_json node[BLOCK_NODES];
} node_block;

struct nb_json_doc {
    const nb_json *root;
    char *strings;      /* every decoded string, one after another */
    node_block *blocks;
};

typedef struct parser {
    const unsigned char *start, *p, *end;
    nb_json_limits limits;
    int depth;
    nb_json_error *err;
    nb_json_doc *doc;
    char *out; /* where the next decoded string goes */
} parser;

void nb_json_free(nb_json_doc *doc) {
    if (!doc) return;
    while (doc->blocks) {
        node_block *b = doc->blocks;
        doc->blocks = b->next;
        free(b);
    }
    free(doc->strings);
    free(doc);
}

const nb_json *nb_json_root(const nb_json_doc *doc) { return doc ? doc->root : NULL; }

static nb_json *new_node(parser *ps, nb_json_type type) {
    node_block *b = ps->doc->blocks;
    if (!b || b->used == BLOCK_NODES) {
        b = malloc(sizeof *b);
        if (!b) {
            ps->err->fault = NB_JSON_FAULT_NOMEM;
            return NULL;
        }
        b->next = ps->doc->blocks;
        b->used = 0;
        ps->doc->blocks = b;
    }
    nb_json *j = &b->node[b->used++];
    memset(j, 0, sizeof *j);
    j->type = type;
    return j;
}

/* ------------------------------------------------------------ errors */

static int fail(parser *ps, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int fail(parser *ps, const char *fmt, ...) {
    nb_json_error *e = ps->err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->fault = NB_JSON_FAULT_SYNTAX;
    e->at = (size_t)(ps->p - ps->start);
    e->at_end = ps->p >= ps->end;
    e->depth = ps->depth;
    return 0;
}

/* Remember the member names of the two outer levels for messages. */
static void note_name(parser *ps, const unsigned char *raw, size_t len) {
    if (ps->depth > 2) return;
    ps->err->name[ps->depth - 1] = (const char *)raw;
    ps->err->name_len[ps->depth - 1] = len;
    if (ps->depth == 1) ps->err->name[1] = NULL;
}

static void skip_space(parser *ps) {
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

/* ------------------------------------------------------------ strings */

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Four hex digits at p (which has at least 4 bytes), or -1. */
static long hex4(const unsigned char *p) {
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p[k]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Check the \u escape at ps->p (a surrogate pair counts as one); returns
 * its length in bytes, or 0 after reporting what is wrong. */
static int check_u_escape(parser *ps) {
    const unsigned char *p = ps->p;
    long u = ps->end - p >= 6 ? hex4(p + 2) : -1;
    if (u < 0) return fail(ps, "invalid \\u escape");
    if (u == 0) return fail(ps, "string contains a NUL character (\\u0000)");
    if (u >= 0xDC00 && u <= 0xDFFF) return fail(ps, "unpaired surrogate \\u%04lx", u);
    if (u < 0xD800 || u > 0xDBFF) return 6;
    long lo = ps->end - p >= 12 && p[6] == '\\' && p[7] == 'u' ? hex4(p + 8) : -1;
    if (lo < 0xDC00 || lo > 0xDFFF) return fail(ps, "unpaired surrogate \\u%04lx", u);
    return 12;
}

/* Check a string from its opening quote to past its closing one; its raw
 * text between the quotes in *raw, *len. */
static int scan_string(parser *ps, const unsigned char **raw, size_t *len) {
    ps->p++; /* opening quote */
    const unsigned char *begin = ps->p;
    for (;;) {
        if (ps->p >= ps->end) return fail(ps, "unterminated string");
        unsigned char c = *ps->p;
        if (c == '"') break;
        if (c < 0x20) return fail(ps, "control character 0x%02x inside a string", c);
        if (c != '\\') {
            ps->p++;
            continue;
        }
        if (ps->end - ps->p < 2) return fail(ps, "unterminated escape");
        unsigned char e = ps->p[1];
        if (e && strchr("\"\\/bfnrt", e)) {
            ps->p += 2;
            continue;
        }
        if (e != 'u')
            return fail(ps, "invalid escape '\\%c'", e >= 0x20 && e < 0x7F ? e : '?');
        int n = check_u_escape(ps);
        if (!n) return 0;
        ps->p += n;
    }
    *raw = begin;
    *len = (size_t)(ps->p - begin);
    ps->p++; /* closing quote */
    return 1;
}

static char *put_utf8(char *out, unsigned long cp) {
    if (cp < 0x80) {
        *out++ = (char)cp;
    } else if (cp < 0x800) {
        *out++ = (char)(0xC0 | cp >> 6);
        *out++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *out++ = (char)(0xE0 | cp >> 12);
        *out++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *out++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *out++ = (char)(0xF0 | cp >> 18);
        *out++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *out++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *out++ = (char)(0x80 | (cp & 0x3F));
    }
    return out;
}

/* Resolve the escapes of checked raw string text into out, NUL-terminated
 * (never longer than the raw text plus its quotes); returns the end. */
static char *decode_string(const unsigned char *s, size_t len, char *out) {
    const unsigned char *end = s + len;
    while (s < end) {
        if (*s != '\\') {
            *out++ = (char)*s++;
            continue;
        }
        unsigned char e = s[1];
        if (e != 'u') {
            *out++ = e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r'
                   : e == 't' ? '\t' : (char)e;
            s += 2;
            continue;
        }
        unsigned long cp = (unsigned long)hex4(s + 2);
        s += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) { /* checked: a low surrogate follows */
            cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned long)hex4(s + 2) - 0xDC00);
            s += 6;
        }
        out = put_utf8(out, cp);
    }
    *out++ = '\0';
    return out;
}

/* A string: checked, then decoded into the document; NULL on failure. */
static const char *parse_string(parser *ps, const unsigned char **raw, size_t *len) {
    if (!scan_string(ps, raw, len)) return NULL;
    const char *s = ps->out;
    ps->out = decode_string(*raw, *len, ps->out);
    return s;
}

/* ------------------------------------------------------------ numbers */

/* End of the digits from q on. */
static const unsigned char *skip_digits(const parser *ps, const unsigned char *q) {
    while (q < ps->end && *q >= '0' && *q <= '9') q++;
    return q;
}

static int is_digit_at(const parser *ps, const unsigned char *q) {
    return q < ps->end && *q >= '0' && *q <= '9';
}

/* A number: must follow the JSON grammar, and be a non-negative integer that
 * fits in int64. */
static int parse_number(parser *ps, uint64_t *value) {
    const unsigned char *b = ps->p, *q = ps->p;
    int negative = q < ps->end && *q == '-', fraction = 0;
    q += negative;
    if (!is_digit_at(ps, q)) return fail(ps, "malformed number");
    q = *q == '0' ? q + 1 : skip_digits(ps, q);
    const unsigned char *int_end = q;
    if (q < ps->end && *q == '.') {
        fraction = 1;
        if (!is_digit_at(ps, ++q)) return fail(ps, "malformed number");
        q = skip_digits(ps, q);
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        fraction = 1;
        q++;
        if (q < ps->end && (*q == '+' || *q == '-')) q++;
        if (!is_digit_at(ps, q)) return fail(ps, "malformed number");
        q = skip_digits(ps, q);
    }
    int len = (int)(q - b), shown = len > 40 ? 40 : len;
    const char *more = len > shown ? "..." : "";
    if (negative || fraction)
        return fail(ps, "%.*s%s is not a non-negative integer", shown, (const char *)b, more);
    uint64_t v = 0;
    for (const unsigned char *d = b; d < int_end; d++) {
        unsigned digit = (unsigned)(*d - '0');
        if (v > ((uint64_t)INT64_MAX - digit) / 10)
            return fail(ps, "%.*s%s does not fit in int64", shown, (const char *)b, more);
        v = v * 10 + digit;
    }
    ps->p = q;
    *value = v;
    return 1;
}

/* ------------------------------------------------------------ values */

static nb_json *parse_value(parser *ps);

static void append(nb_json *parent, nb_json **last, nb_json *child) {
    if (*last) (*last)->next = child;
    else parent->child = child;
    *last = child;
    parent->count++;
}

/* After a member or element: 1 at ',' (more follow), 0 at the closing
 * bracket, -1 (reported) at anything else. */
static int after_item(parser *ps, char close, const char *what) {
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == ',') {
        ps->p++;
        return 1;
    }
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return 0;
    }
    fail(ps, "expected ',' or '%c' in %s", close, what);
    return -1;
}

static int parse_object(parser *ps, nb_json *obj) {
    ps->p++; /* { */
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return 1;
    }
    nb_json *last = NULL;
    for (int more = 1; more;) {
        skip_space(ps);
        if (ps->p >= ps->end || *ps->p != '"')
            return fail(ps, "expected a string key in an object");
        const unsigned char *raw;
        size_t raw_len;
        const char *key = parse_string(ps, &raw, &raw_len);
        if (!key) return 0;
        note_name(ps, raw, raw_len);
        skip_space(ps);
        if (ps->p >= ps->end || *ps->p != ':') return fail(ps, "expected ':' after a key");
        ps->p++;
        nb_json *v = parse_value(ps);
        if (!v) return 0;
        v->key = key;
        append(obj, &last, v);
        if ((more = after_item(ps, '}', "an object")) < 0) return 0;
    }
    return 1;
}

static int parse_array(parser *ps, nb_json *arr) {
    ps->p++; /* [ */
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return 1;
    }
    nb_json *last = NULL;
    for (int more = 1; more;) {
        /* a long array is refused before the tree spends memory on it */
        if (arr->count >= ps->limits.max_array)
            return fail(ps, "array longer than %d elements", ps->limits.max_array);
        nb_json *v = parse_value(ps);
        if (!v) return 0;
        append(arr, &last, v);
        if ((more = after_item(ps, ']', "an array")) < 0) return 0;
    }
    return 1;
}

static nb_json *parse_container(parser *ps) {
    int object = *ps->p == '{';
    if (ps->depth >= ps->limits.max_depth) {
        fail(ps, "nested deeper than %d levels", ps->limits.max_depth);
        return NULL;
    }
    nb_json *j = new_node(ps, object ? NB_JSON_OBJECT : NB_JSON_ARRAY);
    if (!j) return NULL;
    ps->depth++;
    int ok = object ? parse_object(ps, j) : parse_array(ps, j);
    ps->depth--;
    return ok ? j : NULL;
}

/* true, false or null; word[0] is already known to match. */
static nb_json *parse_literal(parser *ps, const char *word, nb_json_type type, uint64_t v) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) {
        fail(ps, "unexpected character '%c'", *ps->p >= 0x20 && *ps->p < 0x7F ? *ps->p : '?');
        return NULL;
    }
    ps->p += n;
    nb_json *j = new_node(ps, type);
    if (j) j->num = v;
    return j;
}

static nb_json *parse_scalar(parser *ps) {
    unsigned char c = *ps->p;
    nb_json *j = NULL;
    if (c == '"') {
        const unsigned char *raw;
        size_t len;
        const char *s = parse_string(ps, &raw, &len);
        if (s && (j = new_node(ps, NB_JSON_STRING))) j->str = s;
        return j;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        uint64_t v = 0;
        if (parse_number(ps, &v) && (j = new_node(ps, NB_JSON_NUMBER))) j->num = v;
        return j;
    }
    if (c == 't') return parse_literal(ps, "true", NB_JSON_BOOL, 1);
    if (c == 'f') return parse_literal(ps, "false", NB_JSON_BOOL, 0);
    if (c == 'n') return parse_literal(ps, "null", NB_JSON_NULL, 0);
    fail(ps, "unexpected character '%c'", c >= 0x20 && c < 0x7F ? c : '?');
    return NULL;
}

static nb_json *parse_value(parser *ps) {
    skip_space(ps);
    if (ps->p >= ps->end) {
        fail(ps, "unexpected end of the text");
        return NULL;
    }
    if (*ps->p == '{' || *ps->p == '[') return parse_container(ps);
    return parse_scalar(ps);
}

nb_json_doc *nb_json_parse_object(const char *text, size_t len, nb_json_limits limits,
                                  nb_json_error *err) {
    memset(err, 0, sizeof *err);
    size_t bad = nb__utf8_invalid_at(text, len);
    if (bad < len) {
        err->fault = NB_JSON_FAULT_UTF8;
        err->at = bad;
        return NULL;
    }
    const unsigned char *t = (const unsigned char *)text;
    parser ps = {t, t, t + len, limits, 0, err, NULL, NULL};
    skip_space(&ps);
    if (ps.p < ps.end && *ps.p != '{') {
        err->fault = NB_JSON_FAULT_NOT_OBJECT;
        err->at = (size_t)(ps.p - t);
        return NULL;
    }
    ps.doc = calloc(1, sizeof *ps.doc);
    if (ps.doc) ps.doc->strings = ps.out = malloc(len + 1);
    if (!ps.doc || !ps.doc->strings) {
        nb_json_free(ps.doc);
        err->fault = NB_JSON_FAULT_NOMEM;
        return NULL;
    }
    const nb_json *root = parse_value(&ps);
    skip_space(&ps);
    if (root && ps.p != ps.end) {
        fail(&ps, "unexpected text after the JSON object");
        root = NULL;
    }
    if (!root) {
        nb_json_free(ps.doc);
        return NULL;
    }
    ps.doc->root = root;
    return ps.doc;
}

/* ------------------------------------------------------------ queries */

const char *nb_json_type_name(const nb_json *j) {
    switch (j->type) {
    case NB_JSON_OBJECT: return "an object";
    case NB_JSON_ARRAY: return "an array";
    case NB_JSON_STRING: return "a string";
    case NB_JSON_NUMBER: return "a number";
    case NB_JSON_BOOL: return "a boolean";
    case NB_JSON_NULL: return "null";
    }
    return "invalid";
}

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char *nb_json_duplicate_key(const nb_json *obj, int *nomem) {
    int n = obj->count;
    *nomem = 0;
    if (n < 2) return NULL;
    const char **keys = malloc((size_t)n * sizeof *keys);
    if (!keys) {
        *nomem = 1;
        return NULL;
    }
    int k = 0;
    for (const nb_json *c = obj->child; c; c = c->next) keys[k++] = c->key;
    qsort(keys, (size_t)n, sizeof *keys, cmp_cstr);
    const char *dup = NULL;
    for (k = 1; k < n && !dup; k++)
        if (strcmp(keys[k - 1], keys[k]) == 0) dup = keys[k];
    free(keys);
    return dup;
}
