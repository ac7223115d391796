/* The trials of nabla tune as child processes: each job is this program
 * running `nabla train` on the trial's checkpoint, resumed when there is one. */
#ifndef NB_TUNE_JOBS_H
#define NB_TUNE_JOBS_H

#include <sys/types.h>

#include "tune_space.h"

typedef struct tune_job {
    const tune_space *space;
    const char *dir, *model;     /* the output directory; the model file's path */
    char (*values)[32];          /* the trial's values (its tune_values)       */
    int trial, epochs, threads;
    const char *out;             /* --out FILE (the best weights), or NULL      */
} tune_job;

enum { TUNE_MAX_ARGS = 64 + 2 * TUNE_MAX_PARAMS, TUNE_ARG_SPACE = 16384 };

/* A job's argument vector; space holds its strings one after the other,
 * each ending in NUL (used bytes), which is how a job travels to an MPI rank. */
typedef struct tune_argv {
    char *argv[TUNE_MAX_ARGS];
    int n;
    char space[TUNE_ARG_SPACE];
    size_t used;
} tune_argv;

/* The job's `nabla train` command; argv[0] is this program's path. */
void tune_job_argv(const tune_job *j, const char *exe, tune_argv *b);
/* Run argv with this program in place of argv[0], output appended to
 * DIR/trials/NNN.out: the child's pid, or -1 (errno set). */
pid_t tune_job_spawn(const char *dir, int trial, char **argv);
/* Start `nabla train` for the job, output to DIR/trials/NNN.out; the child's
 * pid, or -1 (errno set).  It resumes DIR/trials/NNN.ckpt when that exists. */
pid_t tune_job_start(const tune_job *j);
/* The last line the child wrote (its error), into buf. */
void tune_job_last_line(const char *dir, int trial, char *buf, size_t size);

#endif
