#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A guest that ends by itself: a job of two guests running memwriter, one
# committed epoch. A guest's QEMU killed shows as exited at the coordinator
# at once, with the reason, and fails its job; with auto_restart on, the
# job comes back from its last epoch by itself, every memwriter verifying
# and every guest running exactly once. A guest stopped with 'vmckpt vm
# stop' is no failure.
. "$top_srcdir/tests/lib/cluster.sh"

command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed"
command -v dropbearkey >/dev/null || skip_all "dropbear-bin not installed"
tracking_mode
guest_tests_exclusive

IMG="$top_builddir/lab"
GUEST_JOB=j3
ip_of() { echo "198.18.1.$((20 + ${1#e}))"; }
co_log="$TEST_DIR/co/coordinator.log"

test_expect_success 'setup: two hosts, job j3 of two guests running memwriter, epoch 1 committed' '
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >/dev/null &&
    guest_cluster_up 2 &&
    for i in 1 2; do
        vmckpt vm start --job j3 --name e$i --host h$i --mem 256 --kernel "$IMG/vmlinux" \
            --initrd "$IMG/initrd.img" --ip $(ip_of e$i)/16 \
            --append "vmckpt.run=memwriter,-m,32,-r,1000,-p,1" || exit 1
    done &&
    for i in 1 2; do wait_until 90 "test -n \"\$(gen_now e$i h$i)\"" || exit 1; done &&
    for i in 1 2; do echo "LO_$i=$(gen_now e$i h$i)" >>$TEST_DIR/gens || exit 1; done &&
    vmckpt checkpoint j3 --wait >$TEST_DIR/c1.out && cat $TEST_DIR/c1.out &&
    grep -q "job j3: epoch 1 committed: 2 VM(s)" $TEST_DIR/c1.out &&
    for i in 1 2; do echo "HI_$i=$(gen_now e$i h$i)" >>$TEST_DIR/gens || exit 1; done &&
    exactly_once e1 e2
'

test_expect_success 'QEMU of e1 killed: the coordinator shows e1 exited, with the reason, and the job failed' '
    pid=$(qemu_pids e1 h1) && test -n "$pid" &&
    kill -KILL $pid &&
    wait_until 5 "test \"\$(vm_field e1 state)\" = exited" &&
    vm_field e1 exit_reason | grep -q "QEMU (pid $pid) killed by signal 9" &&
    vmckpt vm list >$TEST_DIR/l1.out && cat $TEST_DIR/l1.out &&
    grep -q "^j3  *e1  *h1  *exited " $TEST_DIR/l1.out &&
    grep -q "^j3/e1 exited: QEMU (pid $pid) killed by signal 9" $TEST_DIR/l1.out &&
    vmckpt status j3 | grep -q "^j3/e1 exited: " &&
    wait_until 5 "test \"\$(job_field state)\" = failed" &&
    job_field last_error | grep -q "vm e1 exited on h1: QEMU (pid $pid) killed by signal 9" &&
    grep_log $TEST_DIR/h1/agent.log "guest j3/e1: QEMU (pid $pid) killed by signal 9" &&
    grep_log $co_log "vm j3/e1: running -> exited (on h1)" &&
    test "$(vm_field e2 state)" = running &&
    test "$(qemu_count e1)" = 0 && test "$(qemu_count e2)" = 1
'

test_expect_success 'restart j3 by hand: both guests back from epoch 1' '
    vmckpt restart j3 >$TEST_DIR/r1.out && cat $TEST_DIR/r1.out &&
    grep -q "job j3 restarted from epoch 1: 2 VM(s) on 2 host(s)" $TEST_DIR/r1.out &&
    test "$(job_field state)" = running &&
    test -z "$(vm_field e1 exit_reason)" &&
    exactly_once e1 e2
'

test_expect_success 'auto_restart on, QEMU of e2 killed: the job comes back from epoch 1 by itself' '
    . $TEST_DIR/gens &&
    vmckpt job set j3 --auto-restart yes | grep -q "auto_restart yes" &&
    n=$(grep -c "job j3 restarted from epoch 1" $co_log) &&
    pid=$(qemu_pids e2 h2) && test -n "$pid" &&
    kill -KILL $pid &&
    wait_until 5 "grep -q \"vm j3/e2: running -> exited (on h2)\" $co_log" &&
    grep_log $co_log "job j3: running -> failed (vm e2 exited on h2: QEMU (pid $pid) killed by signal 9" &&
    grep_log $co_log "job j3: auto_restart from its last committed epoch" &&
    wait_until 120 "test \"\$(grep -c \"job j3 restarted from epoch 1: 2 VM(s) on 2 host(s)\" $co_log)\" -gt $n" &&
    wait_until 10 "test \"\$(job_field state)\" = running" &&
    test "$(vm_field e1 state)$(vm_field e2 state)" = runningrunning &&
    for i in 1 2; do
        eval "lo=\$LO_$i hi=\$HI_$i" &&
        wait_until 30 "test -n \"\$(first_gen_restored e$i h$i)\"" &&
        first=$(first_gen_restored e$i h$i) &&
        echo "e$i: first counter after the restart $first, epoch 1 taken between $lo and $hi" &&
        test "$first" -gt "$lo" && test "$first" -le "$((hi + 2500))" || exit 1
    done &&
    for i in 1 2; do in_guest e$i "killall -USR1 memwriter" || exit 1; done &&
    for i in 1 2; do
        wait_until 30 "since_restore e$i h$i | grep -aq \"memwriter: verify PASS\"" &&
        ! since_restore e$i h$i | grep -aq "verify FAIL" || exit 1
    done &&
    exactly_once e1 e2
'

test_expect_success 'vmckpt vm stop of e2 is no failure' '
    wc -l <$co_log >$TEST_DIR/co_lines &&
    vmckpt vm stop --job j3 --name e2 | grep -q "j3/e2 stopped" &&
    test "$(vm_field e2 state)" = stopped &&
    test -z "$(vm_field e2 exit_reason)" &&
    grep_log $TEST_DIR/h2/agent.log "guest j3/e2 stopped" &&
    test "$(qemu_count e2)" = 0 &&
    test "$(job_field state)" = running
'

test_expect_success 'clean stop; only the two kills were reported as exits; no sanitizer report' '
    vmckpt vm stop --job j3 --name e1 >/dev/null &&
    stop_daemon h1 && stop_daemon h2 && stop_daemon co &&
    tail -n +$(($(cat $TEST_DIR/co_lines) + 1)) $co_log >$TEST_DIR/after-stop.log &&
    ! grep -E "ended by itself|-> failed|-> exited" $TEST_DIR/after-stop.log &&
    test "$(grep -c "ended by itself" $co_log)" = 2 &&
    no_sanitizer_reports
'
test_done
