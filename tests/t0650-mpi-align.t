#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# MPI jobs under vmckpt-mpirun in a job of three guests: the guests learn
# the ranks' endpoint from their kernel command line and the job token
# from the firmware configuration (on no command line, host or guest);
# a checkpoint stops every rank at the same MPI_Barrier (C preloaded, C
# linked, and each Fortran binding); two checkpoints, a host killed, the
# job restarted from the last epoch finishes with the checksum of an
# uninterrupted run (C, then use mpi_f08); without barriers the cut is
# unaligned after the timeout and a restart is still right; without a
# coordinator the program runs to a correct end and the job shows
# unprotected; the ranks' endpoint takes nothing but the job's token.
. "$top_srcdir/tests/lib/cluster.sh"

command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed"
command -v dropbearkey >/dev/null || skip_all "dropbear-bin not installed"
[ -x "$top_builddir/mpi-hooks/vmckpt-mpirun" ] || skip_all "built without Open MPI"
[ -x "$top_builddir/examples/mpi/heatf-f08" ] || skip_all "built without Fortran MPI"
tracking_mode
guest_tests_exclusive

IMG="$top_builddir/lab"
ip_of() { echo "198.18.1.${1#g}"; }
in_guest() {  # in_guest gN CMD...
    local g=$1; shift
    in_host co dbclient -y -y -i "$IMG/lab.key" root@"$(ip_of $g)" "$@" 2>/dev/null
}
job_field() { vmckpt jobs --json | jq -r ".[] | select(.job == \"m1\") | .$1"; }
# (the image's Open MPI defaults start orted with dbclient, over eth0)
MPI_OPTS="-np 3 --host g1,g2,g3"
# run_bg OUT CMD: CMD in g1, detached, its output in OUT inside g1; its
# end is said on g1's console too
run_bg() {
    in_guest g1 "setsid sh -c '$2 >$1 2>&1; echo exit=\$? >>$1; echo vmckpt-test: $1 ended >/dev/console' </dev/null >/dev/null 2>&1 &"
}
out_of() { in_guest g1 "cat $1"; }
# run_ended OUT: the run of OUT said on g1's console that it ended (read
# here: no login into the guest, whose CPU the program needs, per look)
run_ended() { grep -aq "vmckpt-test: $1 ended" "$RUN_BASE"/h*/m1-g1.log 2>/dev/null; }
# wait_run SECONDS OUT: the run of OUT ended; its output and exit line
wait_run() { wait_until "$1" "run_ended $2" && out_of "$2"; }
# wait_ranks N OUT: N ranks of m1 connected; if not, what the run in g1
# printed to OUT says why
wait_ranks() {
    wait_until 60 "test \"\$(job_field ranks)\" = $1" && return 0
    echo "--- $2 in g1:"
    out_of "$2"
    return 1
}
# start_run OUT CMD: CMD in g1 (run_bg) and its 3 ranks connected
start_run() { run_bg "$1" "$2" && wait_ranks 3 "$1"; }
# the job epoch N as the catalog lists it (one row per VM; these are the
# job's fields)
epoch_field() {
    vmckpt list m1 --all --json | jq -r "[.[] | select(.epoch == $1)][0].$2"
}
# barrier counts of epoch N equal, one per rank
barriers_equal() {
    local b
    b=$(epoch_field "$1" barriers)
    echo "epoch $1: $(epoch_field "$1" align); barriers $b"
    [ "$(echo "$b" | wc -w)" = 3 ] &&
        [ "$(echo "$b" | tr ' ' '\n' | cut -d: -f2 | sort -u | wc -l)" = 1 ]
}
# reference checksums: the same programs on this machine, without VMs
ref() {
    ASAN_OPTIONS=detect_leaks=0 mpirun --allow-run-as-root --oversubscribe --mca pml ob1 \
        --mca btl self,vader -np 3 "$@" 2>/dev/null | grep -o "checksum=[0-9a-fA-F]*"
}

# (keep_epochs=0: no retention, whose fold of the first, full epoch into
# the next takes seconds of I/O in the middle of a story while its heat
# runs on; rank_grace_ms=2000: a run without the coordinator shows
# unprotected 2 s after it starts, and heat of -i 600 runs well past that)
test_expect_success 'setup: three guests of job m1 on h1..h3, an h4 spare; the reference runs' '
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >/dev/null &&
    guest_cluster_up 4 max_precopy_ms=5000 keep_epochs=0 rank_grace_ms=2000 &&
    for i in 1 2 3; do
        vmckpt vm start --job m1 --name g$i --host h$i --mem 384 --kernel "$IMG/vmlinux" \
            --initrd "$IMG/initrd.img" --ip $(ip_of g$i)/16 || exit 1
    done &&
    for i in 1 2 3; do wait_until 90 "in_guest g$i true" || exit 1; done &&
    REF_C=$(ref "$top_builddir/examples/mpi/heat" -n 96 -i 1200) &&
    REF_S=$(ref "$top_builddir/examples/mpi/heat" -n 96 -i 600) &&
    REF_F=$(ref "$top_builddir/examples/mpi/heatf-f08" 96 2500) &&
    echo "REF_C=$REF_C REF_S=$REF_S REF_F=$REF_F" | tee $TEST_DIR/ref &&
    test -n "$REF_C" && test -n "$REF_S" && test -n "$REF_F"
'
. $TEST_DIR/ref 2>/dev/null || true

test_expect_success 'guests find the job and the ranks endpoint on their command line, the token on no command line' '
    tok=$(vmckpt job token m1) && test ${#tok} -ge 64 &&
    in_guest g2 "cat /proc/cmdline" >$TEST_DIR/cmdline && cat $TEST_DIR/cmdline &&
    grep -q "vmckpt.job=m1 " $TEST_DIR/cmdline &&
    grep -q "vmckpt.coordinator=198.18.0.1:7471" $TEST_DIR/cmdline &&
    ! grep -q "$tok" $TEST_DIR/cmdline &&
    test "$(in_guest g2 "cat /sys/firmware/qemu_fw_cfg/by_name/opt/vmckpt/token/raw")" = "$tok" &&
    in_guest g2 "stat -c %a /sys/firmware/qemu_fw_cfg/by_name/opt/vmckpt/token/raw" | grep -qx 400 &&
    ps -eo args >$TEST_DIR/ps && grep -q "name=opt/vmckpt/token" $TEST_DIR/ps &&
    ! grep -q "$tok" $TEST_DIR/ps &&
    ! ls "$RUN_BASE"/h[123]/*.token 2>/dev/null
'

test_expect_success 'heat under vmckpt-mpirun: a checkpoint waits for every rank at one barrier' '
    start_run /tmp/a.out "vmckpt-mpirun $MPI_OPTS heat -n 96 -i 600" &&
    vmckpt status m1 | grep "^MPI: protected (3 ranks)" &&
    vmckpt checkpoint m1 --wait &&
    test "$(epoch_field 1 align)" = aligned && barriers_equal 1 &&
    vmckpt list m1 | grep -q " aligned " &&
    grep_log $TEST_DIR/co/coordinator.log "epoch m1/1: aligned after" &&
    vmckpt status m1 | grep -q "last checkpoint aligned" &&
    wait_run 200 /tmp/a.out >$TEST_DIR/a.out && cat $TEST_DIR/a.out &&
    grep -q "$REF_S" $TEST_DIR/a.out && grep -q "exit=0" $TEST_DIR/a.out
'

test_expect_success 'every binding aligns: heat linked before -lmpi, heatf with mpif.h and use mpi' '
    n=1 &&
    for prog in "heat-linked -n 96 -i 200" "heatf-mpifh 96 200" "heatf-mpi 96 200"; do
        n=$((n + 1)) &&
        start_run /tmp/b$n.out "vmckpt-mpirun $MPI_OPTS $prog" &&
        vmckpt checkpoint m1 --wait >/dev/null &&
        echo "$prog:" && test "$(epoch_field $n align)" = aligned && barriers_equal $n &&
        wait_run 200 /tmp/b$n.out | grep -q exit=0 &&
        wait_until 10 "test \"\$(job_field ranks)\" = 0" || exit 1
    done
'

# story: two checkpoints while PROG runs, host H killed, restart, the end
# checksum REF. story OUT PROG REF H
story() {
    local out=$1 prog=$2 want=$3 h=$4 e1 e2 restored
    start_run "$out" "vmckpt-mpirun $MPI_OPTS $prog" &&
    vmckpt checkpoint m1 --wait && e1=$(job_field last_epoch) && barriers_equal "$e1" &&
    vmckpt checkpoint m1 --wait && e2=$(job_field last_epoch) && barriers_equal "$e2" &&
    test "$e2" = $((e1 + 1)) &&
    restored=$(grep -c "job m1: rank [0-9] of 3 registered from .*, restored" $TEST_DIR/co/coordinator.log || true) &&
    "$LAB_CMD" kill-host $LAB "$h" &&
    wait_until 10 "test \"\$(job_field state)\" = failed" &&
    vmckpt restart m1 && test "$(job_field state)" = running &&
    wait_until 30 "test \$(grep -c \"job m1: rank [0-9] of 3 registered from .*, restored\" $TEST_DIR/co/coordinator.log) -ge \$((restored + 3))" &&
    wait_run 300 "$out" >$TEST_DIR/story.out && cat $TEST_DIR/story.out &&
    grep -q "restored from epoch $e2" $TEST_DIR/story.out &&
    grep -q "$want" $TEST_DIR/story.out && grep -q "exit=0" $TEST_DIR/story.out
}

test_expect_success 'C: two checkpoints, h3 killed, restart from the last (g3 on h4): the uninterrupted checksum' '
    story /tmp/c.out "heat -n 96 -i 1200" "$REF_C" h3 &&
    vmckpt vm list | grep -q "^m1  *g3  *h4  *running"
'

test_expect_slow 'Fortran (use mpi_f08): the same story with h2 killed' '
    story /tmp/f.out "heatf-f08 96 2500" "$REF_F" h2 &&
    vmckpt vm list | grep "^m1  *g2 " | grep -q running
'

# The run without barriers must outlast the epoch's pre-copy (full: the
# restart above brought new QEMUs) and the 5 s alignment timeout after it,
# however fast the machine: four times the iterations of the others.
test_expect_slow 'no barriers: the cut is unaligned after the timeout; a restart is still right' '
    REF_N=$(ref "$top_builddir/examples/mpi/heat" -n 96 -i 4800) && test -n "$REF_N" &&
    start_run /tmp/n.out "vmckpt-mpirun $MPI_OPTS heat -n 96 -i 4800 -b 0" &&
    vmckpt checkpoint m1 --wait &&
    e=$(job_field last_epoch) && a=$(epoch_field $e align) && echo "epoch $e: $a" &&
    echo "$a" | grep -q "^unaligned: no barrier within 5000 ms (rank 0 1 2)" &&
    vmckpt list m1 | grep -q " unaligned " &&
    vmckpt restart m1 &&
    wait_run 300 /tmp/n.out >$TEST_DIR/n.out && cat $TEST_DIR/n.out &&
    grep -q "$REF_N" $TEST_DIR/n.out && grep -q "exit=0" $TEST_DIR/n.out
'

test_expect_success 'coordinator unreachable at MPI_Init: runs to a correct end, shown unprotected' '
    run_bg /tmp/u.out "vmckpt-mpirun --rank-coordinator=198.18.0.1:9 $MPI_OPTS heat -n 96 -i 600" &&
    wait_until 30 "test \"\$(job_field nranks)\" = 3" &&
    wait_until 20 "job_field protection | grep -q \"^unprotected: 0 of 3 ranks\"" &&
    vmckpt status m1 | grep "^MPI: unprotected" &&
    wait_run 300 /tmp/u.out >$TEST_DIR/u.out && cat $TEST_DIR/u.out &&
    test "$(grep -c "cannot reach the coordinator" $TEST_DIR/u.out)" = 3 &&
    grep -q "$REF_S" $TEST_DIR/u.out && grep -q "exit=0" $TEST_DIR/u.out &&
    run_bg /tmp/w.out "VMCKPT_COORDINATOR=198.18.0.1:9 vmckpt-mpirun $MPI_OPTS heat -n 96 -i 100" &&
    wait_run 200 /tmp/w.out >$TEST_DIR/w.out && cat $TEST_DIR/w.out &&
    grep -q "cannot register job m1 .*runs unprotected" $TEST_DIR/w.out &&
    grep -q "exit=0" $TEST_DIR/w.out
'

test_expect_success 'the ranks endpoint: a wrong token, another job, the cluster key, a stale run are refused' '
    tok=$(vmckpt job token m1) && vmckpt job token other >/dev/null &&
    in_guest g1 "VMCKPT_TOKEN=$(vmckpt job token other) vmckpt-mpirun -np 1 true 2>&1" >$TEST_DIR/e1 2>&1;
    cat $TEST_DIR/e1 && grep -q "cannot register job m1 .*authentication failed" $TEST_DIR/e1 &&
    in_guest g1 "VMCKPT_JOB=other VMCKPT_TOKEN=$tok vmckpt-mpirun -np 1 true 2>&1" >$TEST_DIR/e2 2>&1;
    cat $TEST_DIR/e2 && grep -q "cannot register job other .*authentication failed" $TEST_DIR/e2 &&
    ! vmckpt -C 198.18.0.1:7471 hosts 2>$TEST_DIR/e3 && cat $TEST_DIR/e3 &&
    grep -q "TLS: .*handshake failure" $TEST_DIR/e3 &&
    in_guest g1 "VMCKPT_TOKEN=zz vmckpt-mpirun -np 1 true 2>&1" >$TEST_DIR/e4 2>&1;
    cat $TEST_DIR/e4 && grep -q "VMCKPT_TOKEN: not a job token" $TEST_DIR/e4 &&
    in_guest g1 "VMCKPT_RUN=1 mpirun --allow-run-as-root -np 1 -x VMCKPT_RUN \
        -x LD_PRELOAD=/usr/lib/vmckpt/libvmckpt-mpi.so heat -n 16 -i 5 2>&1" >$TEST_DIR/e5 2>&1;
    cat $TEST_DIR/e5 && grep -q "run 1 of job m1 is over" $TEST_DIR/e5 &&
    grep -q "checksum=" $TEST_DIR/e5 &&
    printf %b "$(echo "$tok" | sed "s/../\\\\x&/g")" >$TEST_DIR/tok.key && chmod 600 $TEST_DIR/tok.key &&
    test "$(stat -c %s $TEST_DIR/tok.key)" = 32 &&
    in_host co "$top_builddir/tests/tools/wirepoke" 198.18.0.1:7471 $TEST_DIR/tok.key rank:m1 >$TEST_DIR/e6 &&
    cat $TEST_DIR/e6 && grep -q "^ok authenticated" $TEST_DIR/e6 &&
    grep -q "^error: rank may not send hosts-query" $TEST_DIR/e6 &&
    grep -q "^error: a rank of job m1 may not speak for job .some-other-job." $TEST_DIR/e6
'

test_expect_success 'the token expires with its job: once every guest of m1 is stopped, the ranks endpoint refuses it' '
    for i in 1 2 3; do vmckpt vm stop --name g$i --job m1 || exit 1; done &&
    ! vmckpt vm list | grep -q "^m1 .* running" &&
    in_host co "$top_builddir/tests/tools/wirepoke" 198.18.0.1:7471 $TEST_DIR/tok.key rank:m1 >$TEST_DIR/e7 2>&1;
    cat $TEST_DIR/e7 && ! grep -q "^ok authenticated" $TEST_DIR/e7 &&
    grep -q "authentication failed: the server does not take the token of job .m1." $TEST_DIR/e7 &&
    grep_log $TEST_DIR/co/coordinator.log "dropping connection from .*: no running job .m1."
'

test_expect_success 'everything stops cleanly, with no sanitizer report' '
    for h in h1 h2 h3 h4; do
        # the hosts the stories killed are gone
        ! alive "$(pid_of $h)" || stop_daemon $h TERM || exit 1
    done &&
    stop_daemon co TERM &&
    no_sanitizer_reports
'

test_done
