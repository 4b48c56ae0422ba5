/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ring: a token goes round the ranks LAPS times; each rank adds its rank
 * number and the lap to it, with an MPI_Barrier after each lap. The final
 * token is sum over laps of (size*(size-1)/2 + size*lap), whatever the
 * placement of the ranks, and rank 0 checks it.
 *
 *   ring [-l LAPS] [-s SLEEP_MS]
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int rank, size, opt, laps = 100, sleep_ms = 0, lap;
    uint64_t token = 0, expect = 0;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    while ((opt = getopt(argc, argv, "l:s:")) != -1) {
        if (opt == 'l')
            laps = atoi(optarg);
        else if (opt == 's')
            sleep_ms = atoi(optarg);
        else {
            if (rank == 0)
                fprintf(stderr, "usage: ring [-l LAPS] [-s SLEEP_MS]\n");
            MPI_Finalize();
            return 2;
        }
    }
    for (lap = 0; lap < laps; lap++) {
        int next = (rank + 1) % size, prev = (rank + size - 1) % size;

        if (rank == 0) {
            token += (uint64_t)lap;
            if (size > 1) {
                MPI_Send(&token, 1, MPI_UINT64_T, next, lap, MPI_COMM_WORLD);
                MPI_Recv(&token, 1, MPI_UINT64_T, prev, lap, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
            }
        } else {
            MPI_Recv(&token, 1, MPI_UINT64_T, prev, lap, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
            token += (uint64_t)rank + (uint64_t)lap;
            MPI_Send(&token, 1, MPI_UINT64_T, next, lap, MPI_COMM_WORLD);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        if (sleep_ms > 0) {
            struct timespec ts = {sleep_ms / 1000,
                                  (sleep_ms % 1000) * 1000000L};

            nanosleep(&ts, NULL);
        }
    }
    for (lap = 0; lap < laps; lap++)
        expect += (uint64_t)size * (uint64_t)(size - 1) / 2 +
                  (uint64_t)size * (uint64_t)lap;
    if (rank == 0)
        printf("ring: laps=%d ranks=%d token=%llu %s\n", laps, size,
               (unsigned long long)token, token == expect ? "ok" : "WRONG");
    MPI_Finalize();
    return rank == 0 && token != expect ? 1 : 0;
}
