/* The communication of one training step over MPI (docs/scaling.md): the
 * time of nb_dist_sum (the fixed-order sum of the gradients) against
 * MPI_Allreduce of the same buffer, and of one small statistics sum.
 * Usage: mpirun -np N build/bench/nabla-dist-sum [PARAMETERS [REPEATS]] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "nabla.h"

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm world = MPI_COMM_WORLD;
    nb_dist *d = nb_dist_mpi(&world);
    const long n = argc > 1 ? atol(argv[1]) : 235146; /* fashion_mlp */
    const int repeats = argc > 2 ? atoi(argv[2]) : 100;
    nb_real *v = calloc(n > 0 ? (size_t)n : 1, sizeof *v);
    if (!d || !v || n <= 0 || n > 0x7fffffff || repeats < 1) {
        fprintf(stderr, "nabla-dist-sum: %s\n", d ? "bad arguments or out of memory" : nb_last_error());
        MPI_Abort(world, 1);
    }
    nb_dist_sum(d, v, (size_t)n); /* warm-up: buffers allocated, connections made */
    MPI_Barrier(world);
    double t0 = MPI_Wtime();
    for (int i = 0; i < repeats; i++) nb_dist_sum(d, v, (size_t)n);
    double t1 = MPI_Wtime();
    for (int i = 0; i < repeats; i++)
        MPI_Allreduce(MPI_IN_PLACE, v, (int)n, sizeof(nb_real) == 4 ? MPI_FLOAT : MPI_DOUBLE,
                      MPI_SUM, world);
    double t2 = MPI_Wtime();
    double stats[2] = {1, 2};
    for (int i = 0; i < repeats; i++) nb_dist_sum_f64(d, stats, 2);
    double t3 = MPI_Wtime();
    if (nb_dist_rank(d) == 0)
        printf("%d processes, %ld parameters: nb_dist_sum %.3f ms, MPI_Allreduce %.3f ms, "
               "statistics sum %.1f us (means of %d)\n", nb_dist_size(d), n,
               1e3 * (t1 - t0) / repeats, 1e3 * (t2 - t1) / repeats, 1e6 * (t3 - t2) / repeats,
               repeats);
    free(v);
    nb_dist_free(d);
    MPI_Finalize();
    return 0;
}
