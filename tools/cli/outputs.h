/* The files a command reads and writes, checked together before any work:
 * no output may be one of the inputs or another output, and two runs may not
 * write the same output at once (an advisory lock beside each output).
 * The kind of every single output (a regular file or a new path) is checked
 * by cli_check_output (cli.h). */
#ifndef NB_OUTPUTS_H
#define NB_OUTPUTS_H

#include <sys/types.h>

#define CLI_MAX_FILES 32

typedef struct cli_file {
    const char *flag;        /* what named it, for messages: "--out"       */
    char *path;              /* owned copy                                  */
    int output;
    const char *rewritten_by;/* an input that this output may replace      */
    int exists;
    dev_t dev;
    ino_t ino;
    char *norm;              /* canonical directory + file name (owned)     */
    int lock_fd;             /* -1: not locked                              */
    char *lock_path;
} cli_file;

typedef struct cli_files {
    cli_file f[CLI_MAX_FILES];
    int n;
} cli_files;

void cli_files_init(cli_files *fs);
/* A file read by the command (a model, weights, a checkpoint). */
void cli_files_input(cli_files *fs, const char *flag, const char *path);
/* The files named by a data source ("csv:PATH,...", "idx:A,B", a plain path). */
void cli_files_data(cli_files *fs, const char *flag, const char *spec);
/* A file written by the command. */
void cli_files_output(cli_files *fs, const char *flag, const char *path);
/* The input named by in_flag may be the output named by out_flag: a
 * checkpoint that is resumed from and then rewritten. */
void cli_files_may_rewrite(cli_files *fs, const char *in_flag, const char *out_flag);
/* Every output differs from every input and from the other outputs.
 * Returns 0, or prints one error line and returns 1. */
int cli_files_check(cli_files *fs, const char *cmd);
/* Lock every output against other runs (flock on "OUTPUT.lock"), then remove
 * the temporary files that killed writes of the outputs left behind.
 * Returns 0, or prints one error line (naming the other run's lock file)
 * and returns 1. */
int cli_files_lock(cli_files *fs, const char *cmd);
/* Unlock, remove the lock files and free. */
void cli_files_release(cli_files *fs);

#endif
