! SPDX-License-Identifier: GPL-2.0-or-later
! heatf: the heat example in Fortran, built three times: with use mpi_f08
! (-DUSE_F08), use mpi (-DUSE_MPI) or include 'mpif.h' (neither), so the
! hooks are shown to align every Fortran binding. A 2-D Jacobi stencil on
! an N x N grid split by rows, one MPI_Barrier per iteration; the result is
! the same for any number of ranks and printed as a checksum (XOR of each
! cell's bits rotated by its position).
!
!   heatf N ITERATIONS SLEEP_MS
program heatf
#if defined(USE_F08)
    use mpi_f08
#elif defined(USE_MPI)
    use mpi
#endif
    use, intrinsic :: iso_fortran_env, only: int64, real64
    implicit none
#if !defined(USE_F08) && !defined(USE_MPI)
    include 'mpif.h'
#endif
    integer :: n = 128, iters = 200, sleep_ms = 0
    integer :: rank, nranks, ierr, rows, first, i, j, it, up, down, gi
    real(real64), allocatable :: u(:, :), v(:, :)
    integer(int64) :: local, total, bits
    character(len=32) :: arg

    call MPI_Init(ierr)
    call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
    call MPI_Comm_size(MPI_COMM_WORLD, nranks, ierr)
    if (command_argument_count() >= 1) then
        call get_command_argument(1, arg)
        read (arg, *) n
    end if
    if (command_argument_count() >= 2) then
        call get_command_argument(2, arg)
        read (arg, *) iters
    end if
    if (command_argument_count() >= 3) then
        call get_command_argument(3, arg)
        read (arg, *) sleep_ms
    end if
    if (n < 3 .or. n - 2 < nranks) then
        if (rank == 0) write (0, '(a)') 'heatf: need N >= ranks + 2'
        call MPI_Finalize(ierr)
        stop 2
    end if
    ! interior rows 1..n-2 split as evenly as possible; u(:, 0) and
    ! u(:, rows+1) are the halo rows
    rows = (n - 2)/nranks
    first = 1 + rank*rows + min(rank, mod(n - 2, nranks))
    if (rank < mod(n - 2, nranks)) rows = rows + 1
    allocate (u(0:n - 1, 0:rows + 1), v(0:n - 1, 0:rows + 1))
    u = 0
    do i = 0, rows + 1
        gi = first - 1 + i
        do j = 0, n - 1
            u(j, i) = edge(gi, j)
        end do
    end do
    v = u
    up = rank - 1
    down = rank + 1
    if (rank == 0) up = MPI_PROC_NULL
    if (rank == nranks - 1) down = MPI_PROC_NULL
    do it = 1, iters
        call MPI_Sendrecv(u(:, 1), n, MPI_DOUBLE_PRECISION, up, 0, &
                          u(:, rows + 1), n, MPI_DOUBLE_PRECISION, down, 0, &
                          MPI_COMM_WORLD, MPI_STATUS_IGNORE, ierr)
        call MPI_Sendrecv(u(:, rows), n, MPI_DOUBLE_PRECISION, down, 1, &
                          u(:, 0), n, MPI_DOUBLE_PRECISION, up, 1, &
                          MPI_COMM_WORLD, MPI_STATUS_IGNORE, ierr)
        do i = 1, rows
            do j = 1, n - 2
                v(j, i) = 0.25_real64*(u(j, i - 1) + u(j, i + 1) + &
                                       u(j - 1, i) + u(j + 1, i))
            end do
        end do
        u(1:n - 2, 1:rows) = v(1:n - 2, 1:rows)
        call MPI_Barrier(MPI_COMM_WORLD, ierr)
        if (sleep_ms > 0) call nap(sleep_ms)
    end do
    local = 0
    do i = 1, rows
        gi = first - 1 + i
        do j = 0, n - 1
            bits = transfer(u(j, i), bits)
            local = ieor(local, ishftc(bits, mod(gi*n + j, 64)))
        end do
    end do
    call MPI_Reduce(local, total, 1, MPI_INTEGER8, MPI_BXOR, 0, &
                    MPI_COMM_WORLD, ierr)
    if (rank == 0) write (*, '(a,i0,a,i0,a,i0,a,z16.16)') 'heatf: n=', n, &
        ' iterations=', iters, ' ranks=', nranks, ' checksum=', total
    call MPI_Finalize(ierr)
contains
    pure function edge(gi, j) result(t)
        integer, intent(in) :: gi, j
        real(real64) :: t
        t = 0
        if (gi == 0) then
            t = 100
        else if (j == 0 .and. gi > n/3 .and. gi < 2*n/3) then
            t = 50
        end if
    end function edge
    subroutine nap(ms)
        use, intrinsic :: iso_c_binding, only: c_int
        integer, intent(in) :: ms
        interface
            integer(c_int) function usleep(us) bind(C, name='usleep')
                import :: c_int
                integer(c_int), value :: us
            end function usleep
        end interface
        integer(c_int) :: rc
        rc = usleep(int(ms, c_int)*1000_c_int)
    end subroutine nap
end program heatf
