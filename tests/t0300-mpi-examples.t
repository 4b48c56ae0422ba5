#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The MPI examples on the host, without VMs: heat's checksum does not
# depend on the number of ranks, and ring's token is the expected one.
. "$top_srcdir/tests/lib/tap.sh"

HEAT="$top_builddir/examples/mpi/heat"
RING="$top_builddir/examples/mpi/ring"
[ -x "$HEAT" ] || skip_all "built without Open MPI (configure --with-mpi)"
command -v mpirun >/dev/null || skip_all "mpirun not found"

# Run as root only when root; oversubscribe the small test machines;
# the ob1 PML over shared memory and loopback.
MPIRUN=(mpirun --oversubscribe --mca pml ob1 --mca btl self,vader,tcp
        --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
# ASan's leak checker reports Open MPI's own allocations at exit.
export ASAN_OPTIONS=detect_leaks=0

checksum() { sed -n 's/.*checksum=\([0-9a-f]*\).*/\1/p'; }

test_expect_success 'heat: the same checksum on 1, 2 and 3 ranks' '
    "${MPIRUN[@]}" -np 1 "$HEAT" -n 64 -i 200 >$TEST_DIR/h1 &&
    "${MPIRUN[@]}" -np 2 "$HEAT" -n 64 -i 200 >$TEST_DIR/h2 &&
    "${MPIRUN[@]}" -np 3 "$HEAT" -n 64 -i 200 >$TEST_DIR/h3 &&
    cat $TEST_DIR/h1 $TEST_DIR/h2 $TEST_DIR/h3 &&
    c1=$(checksum <$TEST_DIR/h1) && test -n "$c1" &&
    test "$c1" = "$(checksum <$TEST_DIR/h2)" &&
    test "$c1" = "$(checksum <$TEST_DIR/h3)"
'

test_expect_success 'heat: the checksum changes with the iteration count' '
    "${MPIRUN[@]}" -np 2 "$HEAT" -n 64 -i 199 >$TEST_DIR/h4 &&
    test "$(checksum <$TEST_DIR/h4)" != "$(checksum <$TEST_DIR/h1)"
'

test_expect_success 'ring: the token is the expected sum on 3 ranks' '
    "${MPIRUN[@]}" -np 3 "$RING" -l 50 >$TEST_DIR/r3 && cat $TEST_DIR/r3 &&
    grep -qx "ring: laps=50 ranks=3 token=3825 ok" $TEST_DIR/r3
'

test_expect_success 'bad arguments are refused' '
    ! "${MPIRUN[@]}" -np 1 "$HEAT" -n 2 2>$TEST_DIR/err &&
    grep -q "need N >= ranks + 2" $TEST_DIR/err
'

test_done
