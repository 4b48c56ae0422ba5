/* SPDX-License-Identifier: GPL-2.0-or-later */
/* heat: 2-D heat diffusion (Jacobi stencil) on an N x N grid split by rows
 * across the ranks, with a halo exchange and an MPI_Barrier per iteration
 * (every B iterations with -b B; never with -b 0).
 * Each cell's update depends only on its neighbours' previous values, so
 * the result is bit-for-bit the same for any number of ranks; the printed
 * checksum (sum of the cells' bit patterns, modulo 2^64) proves it.
 *
 *   heat [-n N] [-i ITERATIONS] [-s SLEEP_MS] [-p EVERY] [-b EVERY]
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(void)
{
    fprintf(stderr, "usage: heat [-n N] [-i ITERATIONS] [-s SLEEP_MS] "
                    "[-p PROGRESS_EVERY] [-b BARRIER_EVERY]\n");
}

/* Fixed boundary: hot top edge, a warm spot on the left edge, cold
 * elsewhere. Interior starts at 0. */
static double boundary(int gi, int j, int n)
{
    if (gi == 0)
        return 100.0;
    if (j == 0 && gi > n / 3 && gi < 2 * n / 3)
        return 50.0;
    return 0.0;
}

int main(int argc, char **argv)
{
    int n = 256, iters = 500, sleep_ms = 0, every = 0, bar = 1;
    int rank, size, opt, rows, first, i, j, it;
    double *u, *v;
    uint64_t local = 0, total = 0;
    double t0;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    while ((opt = getopt(argc, argv, "n:i:s:p:b:")) != -1) {
        switch (opt) {
        case 'n':
            n = atoi(optarg);
            break;
        case 'i':
            iters = atoi(optarg);
            break;
        case 's':
            sleep_ms = atoi(optarg);
            break;
        case 'p':
            every = atoi(optarg);
            break;
        case 'b':
            bar = atoi(optarg);
            break;
        default:
            if (rank == 0)
                usage();
            MPI_Finalize();
            return 2;
        }
    }
    if (n < 3 || iters < 0 || n - 2 < size || bar < 0) {
        if (rank == 0)
            fprintf(stderr, "heat: need N >= ranks + 2 and N >= 3\n");
        MPI_Finalize();
        return 2;
    }
    /* interior rows 1..n-2 are split as evenly as possible */
    rows = (n - 2) / size + (rank < (n - 2) % size);
    first = 1 + rank * ((n - 2) / size) +
            (rank < (n - 2) % size ? rank : (n - 2) % size);
    /* local block with one halo row above and below */
    u = calloc((size_t)(rows + 2) * n, sizeof(double));
    v = calloc((size_t)(rows + 2) * n, sizeof(double));
    if (u == NULL || v == NULL) {
        fprintf(stderr, "heat: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (i = 0; i < rows + 2; i++) {
        int gi = first - 1 + i;

        for (j = 0; j < n; j++) {
            if (gi == 0 || gi == n - 1 || j == 0 || j == n - 1)
                u[i * n + j] = v[i * n + j] = boundary(gi, j, n);
        }
    }
    t0 = MPI_Wtime();
    for (it = 0; it < iters; it++) {
        int up = rank > 0 ? rank - 1 : MPI_PROC_NULL;
        int down = rank < size - 1 ? rank + 1 : MPI_PROC_NULL;
        double *t;

        MPI_Sendrecv(&u[1 * n], n, MPI_DOUBLE, up, 0, &u[(rows + 1) * n], n,
                     MPI_DOUBLE, down, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Sendrecv(&u[rows * n], n, MPI_DOUBLE, down, 1, &u[0], n, MPI_DOUBLE,
                     up, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        for (i = 1; i <= rows; i++)
            for (j = 1; j < n - 1; j++)
                v[i * n + j] = 0.25 * (u[(i - 1) * n + j] + u[(i + 1) * n + j] +
                                       u[i * n + j - 1] + u[i * n + j + 1]);
        t = u;
        u = v;
        v = t;
        if (bar > 0 && (it + 1) % bar == 0)
            MPI_Barrier(MPI_COMM_WORLD);
        if (every > 0 && rank == 0 && (it + 1) % every == 0) {
            printf("heat: iteration %d/%d (%.1f s)\n", it + 1, iters,
                   MPI_Wtime() - t0);
            fflush(stdout);
        }
        if (sleep_ms > 0) {
            struct timespec ts = {sleep_ms / 1000,
                                  (sleep_ms % 1000) * 1000000L};

            nanosleep(&ts, NULL);
        }
    }
    for (i = 1; i <= rows; i++)
        for (j = 0; j < n; j++) {
            uint64_t bits;

            memcpy(&bits, &u[i * n + j], sizeof(bits));
            local += bits;
        }
    MPI_Reduce(&local, &total, 1, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
    if (rank == 0)
        printf("heat: n=%d iterations=%d ranks=%d checksum=%016llx\n", n, iters,
               size, (unsigned long long)total);
    free(u);
    free(v);
    MPI_Finalize();
    return 0;
}
