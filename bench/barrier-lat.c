/* SPDX-License-Identifier: GPL-2.0-or-later */
/* barrier-lat: mean MPI_Barrier latency over MPI_COMM_WORLD, for
 * bench/mpi-hooks (with and without the vmckpt hooks preloaded).
 *
 *   barrier-lat [ITERATIONS]    prints "barrier-lat: RANKS ranks, US us"
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 100000, rank, size, i, r;
    double best = 0;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (iters < 1)
        iters = 1;
    /* warm up, then the best of three rounds: less noise from the
     * machine's other work than a mean over all of them */
    for (i = 0; i < iters / 10 + 1; i++)
        MPI_Barrier(MPI_COMM_WORLD);
    for (r = 0; r < 3; r++) {
        double t0, t;

        MPI_Barrier(MPI_COMM_WORLD);
        t0 = MPI_Wtime();
        for (i = 0; i < iters; i++)
            MPI_Barrier(MPI_COMM_WORLD);
        t = (MPI_Wtime() - t0) / iters;
        if (r == 0 || t < best)
            best = t;
    }
    if (rank == 0)
        printf("barrier-lat: %d ranks, %.3f us\n", size, best * 1e6);
    MPI_Finalize();
    return 0;
}
