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

/* Start `nabla train` for the job, output to DIR/trials/NNN.out; the child's
 * pid, or -1 (errno set).  It resumes DIR/trials/NNN.ckpt when that exists.
 * Under MPI, this is where a job would be sent to a free rank instead. */
pid_t tune_job_start(const tune_job *j);
/* The last line the child wrote (its error), into buf. */
void tune_job_last_line(const char *dir, int trial, char *buf, size_t size);

#endif
