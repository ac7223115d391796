/* The processes of `mpirun -np N nabla CMD` (or Slurm's srun): MPI is
 * started when an MPI launcher started the program, never otherwise. */
#ifndef NB_CLI_DIST_LAUNCH_H
#define NB_CLI_DIST_LAUNCH_H

#include "nabla.h"

/* *d := the group of processes, or NULL when the program runs alone.
 * Returns 0, or the exit code after printing why MPI could not start (a
 * nabla built without MPI refuses to run as one of several processes). */
int dist_launch_start(const char *cmd, nb_dist **d);
/* The end of the command with exit code rc: MPI finished, or, when this
 * process failed, every process ended (MPI_Abort) so that none waits for it. */
int dist_launch_finish(nb_dist *d, int rc);

/* The launcher's variables removed from the environment, so that the child
 * processes this one starts run alone instead of taking themselves for ranks. */
void dist_launch_hide(void);

#endif
