#define _POSIX_C_SOURCE 200809L /* unsetenv */
#include "dist_launch.h"

#include <stdlib.h>
#include <string.h>

#include "cli.h"

#ifdef NB_HAVE_MPI
#include <mpi.h>
#endif

/* The process count an MPI launcher announces: Open MPI's mpirun, PMIx
 * (Slurm's srun --mpi=pmix) and PMI (srun --mpi=pmi2, MPICH); 0: none. */
static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"};

static long launcher_size(void) {
    const char *const *vars = size_vars;
    for (size_t i = 0; i < sizeof size_vars / sizeof size_vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return strtol(v, NULL, 10) > 0 ? strtol(v, NULL, 10) : 1;
    }
    /* PMIx under srun names the rank but not always the size */
    return getenv("PMIX_RANK") ? 1 : 0;
}

void dist_launch_hide(void) {
    for (size_t i = 0; i < sizeof size_vars / sizeof size_vars[0]; i++) unsetenv(size_vars[i]);
    unsetenv("PMIX_RANK");
}

#ifdef NB_HAVE_MPI
int dist_launch_start(const char *cmd, nb_dist **d) {
    *d = NULL;
    if (launcher_size() == 0) return 0;
    int provided;
    /* the thread pool computes; only the main thread calls MPI */
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return cli_fail(cmd, "MPI_Init failed");
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size == 1) return 0; /* mpirun -np 1: alone */
    MPI_Comm world = MPI_COMM_WORLD;
    if (!(*d = nb_dist_mpi(&world))) {
        int rc = cli_fail(cmd, "%s", nb_last_error());
        MPI_Abort(MPI_COMM_WORLD, rc);
        return rc;
    }
    return 0;
}

int dist_launch_finish(nb_dist *d, int rc) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) return rc;
    if (d && rc != 0) MPI_Abort(MPI_COMM_WORLD, rc); /* the others may wait for this one */
    nb_dist_free(d);
    MPI_Finalize();
    return rc;
}
#else
int dist_launch_start(const char *cmd, nb_dist **d) {
    *d = NULL;
    long n = launcher_size();
    if (n > 1)
        return cli_fail(cmd, "started as one of %ld processes, but this nabla was built without "
                        "MPI: each would train alone (install libopenmpi-dev and openmpi-bin, "
                        "make mpi, and rebuild)", n);
    return 0;
}

int dist_launch_finish(nb_dist *d, int rc) {
    (void)d;
    return rc;
}
#endif
