/* Strict JSON (RFC 8259) for the headers of file formats: one pass checks the
 * text and builds a tree.  Not part of the public API.
 *
 * Stricter than the RFC where nabla's formats need it: the text must be
 * well-formed UTF-8 and hold exactly one object (whitespace around it is
 * allowed); strings may not contain NUL (\u0000) or unpaired surrogates;
 * every number must be a plain non-negative integer within int64 (no sign,
 * fraction or exponent: "2.0" and "2e0" are refused, not read as 2); nesting
 * and array lengths have limits.  Duplicate keys are kept (the caller decides
 * what they mean; nb_json_duplicate_key finds them). */
#ifndef NB_FORMATS_JSON_H
#define NB_FORMATS_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum nb_json_type {
    NB_JSON_NULL,
    NB_JSON_BOOL,
    NB_JSON_NUMBER,
    NB_JSON_STRING,
    NB_JSON_ARRAY,
    NB_JSON_OBJECT
} nb_json_type;

/* One value of the tree.  Strings are decoded (escapes resolved), valid
 * UTF-8 and NUL-terminated. */
typedef struct nb_json nb_json;
struct nb_json {
    nb_json_type type;
    int count;            /* ARRAY, OBJECT: number of children               */
    const char *key;      /* member of an object: its name; otherwise NULL   */
    const char *str;      /* STRING: the text                                */
    uint64_t num;         /* NUMBER: the value; BOOL: 1 for true, 0 for false */
    const nb_json *child; /* ARRAY, OBJECT: first child, in text order        */
    const nb_json *next;  /* next child of the same parent                    */
};

typedef struct nb_json_limits {
    int max_depth; /* arrays and objects nested at most this deep     */
    int max_array; /* elements of one array at most                   */
} nb_json_limits;

typedef enum nb_json_fault {
    NB_JSON_FAULT_NONE,
    NB_JSON_FAULT_UTF8,       /* the text is not UTF-8: the byte at `at` starts no character */
    NB_JSON_FAULT_NOT_OBJECT, /* the first character (at `at`) does not begin an object     */
    NB_JSON_FAULT_SYNTAX,     /* not strict JSON at `at`: see msg and at_end                 */
    NB_JSON_FAULT_NOMEM       /* out of memory for the tree                                  */
} nb_json_fault;

/* Why a parse failed, with what a caller needs to say where. */
typedef struct nb_json_error {
    nb_json_fault fault;
    size_t at;      /* byte offset into the text                                     */
    int at_end;     /* SYNTAX: the text ended before the value did                   */
    char msg[200];  /* SYNTAX: what is wrong there                                   */
    /* SYNTAX: the member names last read in the top-level object (name[0]) and
     * in an object that is its member's value (name[1], NULL if none since
     * name[0]), raw text between the quotes; depth: how deep the parse was
     * in arrays and objects when it failed (0 outside the top-level object). */
    const char *name[2];
    size_t name_len[2];
    int depth;
} nb_json_error;

typedef struct nb_json_doc nb_json_doc;

/* Parse text[0 .. len) as one object; NULL on failure, with *err filled in.
 * The tree does not point into text. */
nb_json_doc *nb_json_parse_object(const char *text, size_t len, nb_json_limits limits,
                                  nb_json_error *err);

/* The top-level object of a parsed document. */
const nb_json *nb_json_root(const nb_json_doc *doc);

void nb_json_free(nb_json_doc *doc);

/* "an object", "a string", ... for messages. */
const char *nb_json_type_name(const nb_json *j);

/* The smallest key (in strcmp order) that appears twice among the members
 * of obj, or NULL.  *nomem = 1 if the check ran out of memory. */
const char *nb_json_duplicate_key(const nb_json *obj, int *nomem);

#endif
