/* nabla tune under mpirun: rank 0 schedules, the other ranks run the trials.
 * Rank 0 sends a worker a job (the trial's `nabla train` arguments); the
 * worker runs it on its node as a local job and sends back its exit status.
 * Results travel through the search directory, shared by every node. */
#ifndef NB_CLI_TUNE_MPI_H
#define NB_CLI_TUNE_MPI_H

#include "tune_jobs.h"

/* The ranks, or 1 when the program runs alone (or without MPI). */
int tune_mpi_size(void);
/* Ranks other than 0: run the jobs rank 0 sends until it says stop; the
 * exit code. */
int tune_mpi_worker(void);
/* Every worker can read DIR/search.json: 0, or 1 after printing which
 * cannot (DIR must be on a filesystem that every node shares). */
int tune_mpi_check_dir(const char *dir);
/* Send the job to a free worker: its rank, or -1 with the error printed. */
int tune_mpi_submit(const tune_job *j);
/* Wait for a job to end: the worker's rank with the job's wait status in
 * *status; -1 with errno EINTR when a signal arrived, else -1 on failure. */
int tune_mpi_wait(int *status);
/* Ask the worker of rank to stop its job (Ctrl-C: it checkpoints). */
void tune_mpi_interrupt(int rank);
/* Tell every worker to end (after stopping its job). */
void tune_mpi_stop(void);

#endif
