/* Shared helpers of the nabla command-line program. */
#ifndef NB_CLI_H
#define NB_CLI_H

#include <stddef.h>

#include "nabla.h"

/* One line "nabla CMD: message" on stderr; returns the exit code 1 (2 for usage). */
int cli_fail(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* A flag a subcommand accepts: "--name VALUE" / "--name=VALUE", or a switch. */
typedef struct cli_flag {
    const char *name;      /* without the dashes */
    int takes_value;
    const char *value;     /* set by cli_parse (switches get "1") */
} cli_flag;

/* Parse argv[first..argc): flags into flags[], the rest into positional[]
 * (at most max_pos).  Returns 0, or the exit code after printing an error.
 * "--help"/"-h" sets *help. */
int cli_parse(const char *cmd, int argc, char **argv, int first, cli_flag *flags, int nflags,
              const char **positional, int max_pos, int *npos, int *help);
const char *cli_get(const cli_flag *flags, int nflags, const char *name);

/* Strict conversions of a flag value; return 0 and print an error when invalid. */
int cli_int(const char *cmd, const char *flag, const char *s, long lo, long hi, long *out);
/* --precision NAME (fp32 or bf16) into *out: 1, or 0 after a usage error. */
int cli_precision(const char *cmd, const char *s, nb_precision *out);
/* Set a loaded model's precision: 0, or 1 after saying why the CPU cannot. */
int cli_set_precision(const char *cmd, nb_graph *g, nb_precision p);
/* A finite number (its range is the library's to check). */
int cli_number(const char *cmd, const char *flag, const char *s, double *out);
int cli_double(const char *cmd, const char *flag, const char *s, double lo, double hi,
               double *out);

/* Can a file be written at path: a regular file or a new path (never a
 * device, a FIFO, a directory or a symbolic link to one), in a directory that
 * exists and is writable?  Prints the error and returns 0 if not: checked
 * before a long run starts. */
int cli_check_output(const char *cmd, const char *flag, const char *path);

/* The model file arg names: arg itself if it is a file or a path, else the
 * shipped model of that name (arg or arg.nn) from $NABLA_MODEL_DIR, the
 * installed share/nabla/models, or a source tree's models/ (buf holds it). */
const char *cli_model_path(const char *arg, char *buf, size_t size);
/* The first parameter with a NaN or infinite value, described into buf
 * ("parameter 'NAME' is NaN (element K)"); NULL if all are finite. */
const char *cli_nonfinite_param(nb_graph *g, char *buf, size_t size);

/* Values per sample of a batched node (its shape without the batch). */
size_t cli_sample_size(const nb_graph *g, nb_node n);
/* A classifier of positions: scores [B, T, C] against a class index per
 * position (labels are kept as numbers, no class names). */
int cli_per_position(const nb_model *m);

/* --set NAME=VALUE (model_vars.c): cli_parse passes every --set of a command
 * that takes it to cli_model_set (usage error 2, else 0); cli_model_load
 * loads a model file with those values (nb_model_load_vars). */
int cli_model_set(const char *cmd, const char *arg);
int cli_model_vars(const nb_kv **vars);
nb_status cli_model_load(const char *path, nb_model *m);
extern const char *const cli_set_help;

/* Subcommands. */
int cmd_info(int argc, char **argv);
int cmd_gradcheck(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_experiment(int argc, char **argv);
int cmd_lr_find(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_import(int argc, char **argv);

#endif
