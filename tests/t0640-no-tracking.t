#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A host without userfaultfd write-protection (forced here with
# [agent] dirty_tracking = qemu-migration; on a kernel before 6.7 'auto'
# comes to the same): its guests are checkpointed from QEMU's own migration
# stream, a full image every epoch, stored on the peer like any other;
# status says so and no epoch claims to be incremental; the job restarts
# from it on another host after its host dies.
. "$top_srcdir/tests/lib/cluster.sh"

command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed"
command -v dropbearkey >/dev/null || skip_all "dropbear-bin not installed"
guest_tests_exclusive

IMG="$top_builddir/lab"
catalog() { sqlite3 "$TEST_DIR/co/state/catalog.db" "$1"; }
glog() { echo "$RUN_BASE/$2/j3-$1.log"; }
gen_now() { grep -ao "memwriter: gen=[0-9]*" "$(glog $1 $2)" | tail -n 1 | cut -d= -f2; }
since_restore() { since_restore_of j3 "$1" "$(glog $1 $2)"; }

test_expect_success 'setup: h1 without dirty tracking, h2 a peer; g1 on h1' '
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >/dev/null &&
    cluster_up 2 &&
    printf "dirty_tracking = qemu-migration\naccel = %s\n" "$(lab_accel)" >>$TEST_DIR/h1/vmckpt.conf &&
    agents_for_guests h2 &&
    start_coordinator && start_agent h1 && start_agent h2 &&
    wait_until 10 "hosts_up h1 h2" &&
    vmckpt vm start --job j3 --name g1 --host h1 --mem 256 --kernel "$IMG/vmlinux" \
        --initrd "$IMG/initrd.img" --ip 198.18.1.1/16 \
        --append "vmckpt.run=memwriter,-m,32,-r,1000,-p,1" >$TEST_DIR/start.out &&
    cat $TEST_DIR/start.out &&
    grep -q "no dirty tracking here: checkpoints use QEMU.s migration stream, full each time" $TEST_DIR/start.out &&
    wait_until 90 "test -n \"\$(gen_now g1 h1)\""
'

test_expect_success 'status says how the guest is tracked' '
    vmckpt status j3 && vmckpt status j3 | grep -q "qemu-migration (full each epoch)" &&
    test "$(vmckpt vm list --json | jq -r ".[0].tracking")" = qemu-migration
'

G_BEFORE=$(gen_now g1 h1)
test_expect_success 'two checkpoints: both full QEMU streams, none incremental, the guest ran on' '
    vmckpt checkpoint j3 --wait >$TEST_DIR/c1.out && cat $TEST_DIR/c1.out &&
    grep -q "epoch 1 committed: 1 VM(s)" $TEST_DIR/c1.out &&
    g=$(gen_now g1 h1) &&
    vmckpt checkpoint j3 --wait >$TEST_DIR/c2.out && cat $TEST_DIR/c2.out &&
    grep -q "epoch 2 committed: 1 VM(s)" $TEST_DIR/c2.out &&
    test "$(gen_now g1 h1)" -gt "$g" &&
    vmckpt list j3 && vmckpt list j3 --json >$TEST_DIR/l.json &&
    test "$(jq -r "[.[] | .source] | join(\",\")" $TEST_DIR/l.json)" = "qemu-migration,qemu-migration" &&
    test "$(jq "[.[] | select(.parent != 0)] | length" $TEST_DIR/l.json)" = 0 &&
    vmckpt list j3 | grep -q " qemu " &&
    grep -q "^epoch 2 parent 0 pages 0 " $TEST_DIR/h2/state/store/j3/g1/manifest
'
G_AFTER=$(gen_now g1 h1)

test_expect_success 'h1 dies; the job restarts on h2 from the stream; memwriter verifies' '
    "$LAB_CMD" kill-host $LAB h1 &&
    wait_until 10 "test \"\$(host_state h1)\" = lost" &&
    vmckpt restart j3 >$TEST_DIR/r.out && cat $TEST_DIR/r.out &&
    grep -q "job j3 restarted from epoch 2: 1 VM(s) on 1 host(s)" $TEST_DIR/r.out &&
    wait_until 30 "since_restore g1 h2 | grep -aq \"memwriter: gen=\"" &&
    first=$(since_restore g1 h2 | grep -ao "memwriter: gen=[0-9]*" | head -n 1 | cut -d= -f2) &&
    echo "first counter $first; epoch 2 taken between $G_BEFORE and $G_AFTER" &&
    test "$first" -gt "$G_BEFORE" && test "$first" -le "$((G_AFTER + 2500))" &&
    in_host co dbclient -y -y -i "$IMG/lab.key" root@198.18.1.1 "killall -USR1 memwriter" 2>/dev/null &&
    wait_until 30 "since_restore g1 h2 | grep -aq \"memwriter: verify PASS\"" &&
    ! since_restore g1 h2 | grep -aq "verify FAIL"
'

test_expect_success 'clean stop, no sanitizer report' '
    vmckpt vm stop --job j3 --name g1 >/dev/null &&
    stop_daemon h2 && stop_daemon co &&
    no_sanitizer_reports
'
test_done
