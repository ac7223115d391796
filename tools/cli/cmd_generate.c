/* nabla generate MODEL --weights W: sample text from a character model
 * trained on lines: or text: data (docs/sequences.md, Generation). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "data_source.h"

static const char *help =
    "usage: nabla generate MODEL.nn --weights FILE [--prompt TEXT] [--temperature X]\n"
    "                      [--top-k K] [--count N] [--seed S] [--max-length L]\n\n"
    "Sample text from a character model trained on lines: or text: data, with the\n"
    "vocabulary saved in its weights (docs/sequences.md).  Each sample starts from the\n"
    "line boundary and the prompt, takes one character at a time from the model's\n"
    "distribution of the next one, and ends at the line boundary (the end of a word or\n"
    "line) or after L characters; it is printed on a line of its own, prompt included.\n"
    "A model of a window (lines:FILE,context=K: K ids -> the next) sees the last K\n"
    "characters, the boundary before the start; a model of whole sequences (T ids ->\n"
    "T distributions) sees the sequence so far, padded, and is read at its last\n"
    "character (the last T characters of a longer one).\n\n"
    "  --prompt TEXT          the start of every sample (default: none)\n"
    "  --temperature X        divide the scores by X before the softmax (default 1;\n"
    "                         0: always the most likely character, no randomness)\n"
    "  --top-k K              draw from the K most likely characters only (default: all)\n"
    "  --count N              samples to print (default 10)\n"
    "  --seed S               seed of the draws (default 0): the same seed, model and\n"
    "                         options print the same samples; sample i depends only on\n"
    "                         the seed and i, not on --count\n"
    "  --max-length L         characters per sample at most, prompt included (default 100)\n";

int load_trained(const char *cmd, const char *model_path, const char *weights, nb_model *m,
                 preprocess *pre);

enum { ROWS = 64 }; /* samples drawn side by side, one forward pass per character */

typedef struct gen {
    nb_model m;
    preprocess pre;
    int V, T, windowed, boundary; /* boundary: the id of "\n", -1 if none */
    int *prompt, n_prompt;
    double temperature;
    long top_k, max_len;
    uint64_t seed;
} gen;

/* The id of the vocabulary entry equal to the len bytes at s, or -1. */
static int vocab_id(const gen *g, const char *s, size_t len) {
    for (int k = 0; k < g->V; k++)
        if (strlen(g->pre.class_names[k]) == len && memcmp(g->pre.class_names[k], s, len) == 0)
            return k;
    return -1;
}

/* Bytes of the UTF-8 character at s (0: not UTF-8). */
static size_t utf8_len(const unsigned char *s) {
    size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3
             : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}

/* The prompt as ids; a character outside the vocabulary is named. */
static int encode_prompt(gen *g, const char *text) {
    size_t bytes = strlen(text);
    g->prompt = malloc((bytes + 1) * sizeof *g->prompt);
    if (!g->prompt) return cli_fail("generate", "out of memory");
    for (size_t i = 0, k; i < bytes; i += k) {
        k = utf8_len((const unsigned char *)text + i);
        if (!k) return cli_usage_error("generate", "--prompt: byte %zu is not UTF-8", i + 1);
        int id = vocab_id(g, text + i, k);
        if (id < 0 || id == g->boundary)
            return cli_usage_error("generate", "--prompt: character %zu '%.*s' is not in the "
                                   "model's vocabulary (%d characters)%s", (size_t)g->n_prompt + 1,
                                   (int)k, text + i, g->V, id >= 0 ? ": it is the line boundary" : "");
        g->prompt[g->n_prompt++] = id;
    }
    if (g->boundary < 0 && g->n_prompt == 0)
        return cli_usage_error("generate", "the vocabulary has no line boundary (newline) to "
                               "start from: give a --prompt");
    return 0;
}

/* Does the model fit: token input, a vocabulary, scores for the next character? */
static int check_model(gen *g, const char *model) {
    nb_graph *gr = g->m.graph;
    if (g->m.vocab <= 0)
        return cli_fail("generate", "%s: the input is not tokens ('input T tokens=V'); generate "
                        "samples from character models", model);
    if (g->pre.n_classes <= 0)
        return cli_fail("generate", "the weights have no vocabulary (data.classes): train on "
                        "lines: or text: data to make one");
    g->V = g->pre.n_classes;
    if (g->m.vocab != g->V)
        return cli_fail("generate", "%s: the input takes %d tokens but the weights' vocabulary "
                        "has %d characters", model, g->m.vocab, g->V);
    g->T = (int)cli_sample_size(gr, g->m.input);
    size_t outs = cli_sample_size(gr, g->m.output);
    g->windowed = outs == (size_t)g->V;
    if (!g->windowed && outs != (size_t)g->T * (size_t)g->V)
        return cli_fail("generate", "%s: %zu scores per sample; generate needs %d (the next "
                        "character) or %d x %d (one per position)", model, outs, g->V, g->T, g->V);
    g->boundary = vocab_id(g, "\n", 1);
    return 0;
}

/* The model's input for a sequence s of n ids into x[0..T), and the
 * position whose scores predict the next id. */
static int fill_input(const gen *g, const int *s, int n, nb_real *x) {
    int pad = g->boundary >= 0 ? g->boundary : 0;
    if (g->windowed) { /* the last T ids, the boundary before the start */
        for (int j = 0; j < g->T; j++) {
            int at = n - g->T + j;
            x[j] = (nb_real)(at < 0 ? pad : s[at]);
        }
        return 0;
    }
    int from = n > g->T ? n - g->T : 0, len = n - from;
    for (int j = 0; j < g->T; j++) x[j] = (nb_real)(j < len ? s[from + j] : pad);
    return len - 1;
}

/* Draw the next id from scores z[0..V): greedy at temperature 0, else a
 * softmax of z / temperature over the top_k largest. */
static int draw(const gen *g, const nb_real *z, double *p, nb_rng *r) {
    int V = g->V, best = 0;
    for (int c = 1; c < V; c++)
        if (z[c] > z[best]) best = c;
    if (g->temperature == 0 || g->top_k == 1) return best;
    double total = 0;
    for (int c = 0; c < V; c++) {
        int above = 0; /* how many scores beat c (ties: the smaller id first) */
        for (int o = 0; o < V && (g->top_k <= 0 || above < g->top_k); o++)
            above += z[o] > z[c] || (z[o] == z[c] && o < c);
        p[c] = g->top_k > 0 && above >= g->top_k
                   ? 0 : exp(((double)z[c] - (double)z[best]) / g->temperature);
        total += p[c];
    }
    double u = nb_rng_uniform(r) * total;
    int last = best;
    for (int c = 0; c < V; c++) {
        if (p[c] == 0) continue;
        last = c;
        if ((u -= p[c]) < 0) return c;
    }
    return last; /* rounding left u a hair above the total */
}

typedef struct row {
    int *s, n, done;
    nb_rng rng;
} row;

/* The rows' sequences to their end, one character of every row per pass. */
static nb_status grow(gen *g, row *rows, int count, nb_real *x, double *p) {
    nb_graph *gr = g->m.graph;
    int at[ROWS], live = 0;
    for (int i = 0; i < count; i++) live += !rows[i].done;
    while (live > 0) {
        for (int i = 0; i < count; i++) at[i] = fill_input(g, rows[i].s, rows[i].n, x + i * g->T);
        nb_status s = nb_set_input(gr, g->m.input, x, count);
        if (s == NB_OK) s = nb_forward(gr, g->m.output);
        if (s != NB_OK) return s;
        const nb_real *z = nb_value(gr, g->m.output);
        size_t per = g->windowed ? (size_t)g->V : (size_t)g->T * (size_t)g->V;
        for (int i = 0; i < count; i++) {
            row *w = &rows[i];
            if (w->done) continue;
            int c = draw(g, z + (size_t)i * per + (size_t)at[i] * (size_t)g->V, p, &w->rng);
            if (c == g->boundary) w->done = 1;
            else w->s[w->n++] = c;
            int chars = w->n - (g->boundary >= 0);
            if (chars >= g->max_len) w->done = 1;
            live -= w->done;
        }
    }
    return NB_OK;
}

static void print_row(const gen *g, const row *w) {
    for (int j = g->boundary >= 0; j < w->n; j++) fputs(g->pre.class_names[w->s[j]], stdout);
    putchar('\n');
}

/* Samples first .. first+count-1, each with its own generator. */
static nb_status sample_rows(gen *g, long first, int count, row *rows, nb_real *x, double *p) {
    for (int i = 0; i < count; i++) {
        row *w = &rows[i];
        w->n = 0;
        w->done = 0;
        nb_rng_seed(&w->rng, g->seed ^ ((uint64_t)(first + i) * 0x9E3779B97F4A7C15u));
        if (g->boundary >= 0) w->s[w->n++] = g->boundary;
        for (int j = 0; j < g->n_prompt; j++) w->s[w->n++] = g->prompt[j];
        w->done = w->n - (g->boundary >= 0) >= g->max_len;
    }
    nb_status s = grow(g, rows, count, x, p);
    for (int i = 0; s == NB_OK && i < count; i++) print_row(g, &rows[i]);
    return s;
}

static nb_status generate(gen *g, long count) {
    size_t len = (size_t)(g->max_len > g->n_prompt ? g->max_len : g->n_prompt) + 2;
    row rows[ROWS];
    nb_real *x = malloc(sizeof *x * ROWS * (size_t)g->T);
    double *p = malloc(sizeof *p * (size_t)g->V);
    int *ids = malloc(sizeof *ids * ROWS * len);
    nb_status s = x && p && ids ? NB_OK : nb_set_error(NB_ERR_NOMEM, "out of memory");
    for (int i = 0; i < ROWS && ids; i++) rows[i].s = ids + (size_t)i * len;
    nb_graph_set_training(g->m.graph, 0);
    for (long first = 0; s == NB_OK && first < count; first += ROWS)
        s = sample_rows(g, first, (int)(count - first < ROWS ? count - first : ROWS), rows, x, p);
    free(x);
    free(p);
    free(ids);
    return s;
}

/* The flags' values into g; 0 or the exit code of a usage error. */
static int read_flags(const cli_flag *f, int nf, gen *g, long *count) {
    const char *v;
    double t = 1;
    long seed = 0;
    g->top_k = 0;
    g->max_len = 100;
    *count = 10;
    if ((v = cli_get(f, nf, "temperature")) && !cli_double("generate", "temperature", v, 0, 1e6, &t))
        return 2;
    if ((v = cli_get(f, nf, "top-k")) && !cli_int("generate", "top-k", v, 1, 1L << 30, &g->top_k))
        return 2;
    if ((v = cli_get(f, nf, "count")) && !cli_int("generate", "count", v, 1, 1L << 30, count))
        return 2;
    if ((v = cli_get(f, nf, "seed")) && !cli_int("generate", "seed", v, 0, 1L << 62, &seed))
        return 2;
    if ((v = cli_get(f, nf, "max-length")) &&
        !cli_int("generate", "max-length", v, 1, 1L << 20, &g->max_len))
        return 2;
    g->temperature = t;
    g->seed = (uint64_t)seed;
    return 0;
}

int cmd_generate(int argc, char **argv) {
    cli_flag f[] = {{"weights", 1, 0}, {"prompt", 1, 0}, {"temperature", 1, 0}, {"top-k", 1, 0},
                    {"count", 1, 0},   {"seed", 1, 0},   {"max-length", 1, 0},  {"set", 1, 0}};
    const int nf = (int)(sizeof f / sizeof f[0]);
    const char *pos[1];
    int npos, want_help;
    int rc = cli_parse("generate", argc, argv, 2, f, nf, pos, 1, &npos, &want_help);
    if (rc) return rc;
    if (want_help) return printf("%s%s", help, cli_set_help), 0;
    if (npos != 1) return cli_usage_error("generate", "expected one model file");
    const char *weights = cli_get(f, nf, "weights");
    if (!weights) return cli_usage_error("generate", "--weights is required");
    gen g = {0};
    long count;
    if ((rc = read_flags(f, nf, &g, &count))) return rc;
    if ((rc = load_trained("generate", pos[0], weights, &g.m, &g.pre))) return rc;
    const char *prompt = cli_get(f, nf, "prompt");
    rc = check_model(&g, pos[0]);
    if (!rc) rc = encode_prompt(&g, prompt ? prompt : "");
    if (!rc && generate(&g, count) != NB_OK) rc = cli_fail("generate", "%s", nb_last_error());
    free(g.prompt);
    preprocess_free(&g.pre);
    nb_model_free(&g.m);
    return rc;
}
