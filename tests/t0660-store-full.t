#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A full disk at the store: h2 keeps its peers' images on a small tmpfs.
# A guest on h1 commits an epoch there; the disk is then filled, and the
# next checkpoint fails with an error that says so, leaves no partial file,
# and does not stop the guest; the committed epoch is untouched. Once
# there is room again a checkpoint commits (full: the failed one moved the
# tracking on), and after h1 dies the first epoch, taken before the disk
# filled, brings the guest back with memwriter's verification passing.
. "$top_srcdir/tests/lib/cluster.sh"

command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed"
command -v dropbearkey >/dev/null || skip_all "dropbear-bin not installed"
command -v fallocate >/dev/null || skip_all "needs fallocate (util-linux)"
tracking_mode
guest_tests_exclusive

IMG="$top_builddir/lab"
STORE=$TEST_DIR/h2/state/store
guest_log() { echo "$RUN_BASE/$1/default-g1.log"; }
in_guest() { in_host co dbclient -y -y -i "$IMG/lab.key" root@198.18.1.1 "$@" 2>/dev/null; }
catalog() { sqlite3 "$TEST_DIR/co/state/catalog.db" "$1"; }
last_gen() { grep -a -o "memwriter: gen=[0-9]*" "$(guest_log "$1")" | tail -n 1 | cut -d= -f2; }

full_cleanup() {
    cluster_cleanup
    umount -l "$STORE" 2>/dev/null || true
    rm -f /dev/shm/vmckpt-default-g1.ram /dev/shm/vmckpt-restore-default-g1.ram
}
trap full_cleanup EXIT

test_expect_success 'setup: h2 stores on a 600 MiB tmpfs; g1 runs memwriter on h1' '
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >/dev/null &&
    cluster_up 2 &&
    mkdir -p $STORE && mount -t tmpfs -o size=600m,mode=0700 vmckpt-test $STORE &&
    agents_for_guests h1 h2 &&
    start_coordinator && start_agent h1 && start_agent h2 &&
    wait_until 10 "hosts_up h1 h2" &&
    vmckpt vm start --name g1 --host h1 --kernel "$IMG/vmlinux" --initrd "$IMG/initrd.img" \
        --ip 198.18.1.1/16 --append "vmckpt.run=memwriter,-m,64,-r,2000,-p,1" &&
    wait_until 60 "grep -aq \"memwriter: gen=\" $(guest_log h1)"
'

test_expect_success 'epoch 1 commits on h2' '
    vmckpt checkpoint --vm g1 >$TEST_DIR/c1.out && cat $TEST_DIR/c1.out &&
    grep -q "epoch 1 committed (full, on h2)" $TEST_DIR/c1.out &&
    cp $STORE/default/g1/manifest $TEST_DIR/manifest.1 &&
    (cd $STORE/default/g1 && sha256sum e1.* >$TEST_DIR/e1.sums)
'

test_expect_success 'disk full: the checkpoint fails, saying so; the guest runs on' '
    avail=$(df --output=avail -B1 $STORE | tail -n 1) &&
    fallocate -l $((avail - 256 * 1024)) $STORE/filler &&
    df -h $STORE &&
    # the guest has written since epoch 1 (its counter moved): the delta
    # holds more than the store has room for
    g0=$(last_gen h1) &&
    wait_until 20 "test \$(last_gen h1) -gt $g0" &&
    g0=$(last_gen h1) &&
    ! vmckpt checkpoint --vm g1 >$TEST_DIR/c2.out 2>$TEST_DIR/c2.err &&
    cat $TEST_DIR/c2.out $TEST_DIR/c2.err &&
    grep -q "No space left on device" $TEST_DIR/c2.err &&
    grep -q "No space left on device" $TEST_DIR/h2/agent.log &&
    test "$(catalog "select state from epochs where epoch=2")" = aborted &&
    test "$(catalog "select state from epochs where epoch=1")" = committed &&
    wait_until 10 "test \$(last_gen h1) -gt $g0" &&
    vmckpt vm list | grep -q "^default  *g1  *h1  *running"
'

test_expect_success 'nothing of the failed epoch is left; epoch 1 is untouched' '
    ls -la $STORE/default/g1 &&
    test -z "$(ls $STORE/default/g1 | grep "^e2\.")" &&
    cmp $TEST_DIR/manifest.1 $STORE/default/g1/manifest &&
    (cd $STORE/default/g1 && sha256sum -c --quiet $TEST_DIR/e1.sums)
'

test_expect_success 'with room again the next checkpoint commits, full' '
    rm -f $STORE/filler &&
    vmckpt checkpoint --vm g1 >$TEST_DIR/c3.out && cat $TEST_DIR/c3.out &&
    grep -q "epoch 3 committed (full, on h2)" $TEST_DIR/c3.out &&
    test "$(catalog "select group_concat(epoch) from epochs where state=\"committed\"")" = "1,3"
'

test_expect_success 'h1 dies; epoch 1 brings g1 back on h2 and memwriter verifies' '
    "$LAB_CMD" kill-host $LAB h1 &&
    wait_until 10 "test \"\$(host_state h1)\" = lost" &&
    vmckpt restore --vm g1 --host h2 --epoch 1 >$TEST_DIR/r.out && cat $TEST_DIR/r.out &&
    grep -q "default/g1 restored from epoch 1 on h2" $TEST_DIR/r.out &&
    wait_until 20 "grep -aq \"memwriter: gen=\" $(guest_log h2)" &&
    in_guest "killall -USR1 memwriter" &&
    wait_until 20 "grep -aq \"memwriter: verify PASS\" $(guest_log h2)" &&
    ! grep -aq "verify FAIL" $(guest_log h2)
'

test_expect_success 'clean stop, no sanitizer report' '
    vmckpt vm stop --name g1 | grep -q stopped &&
    wait_until 10 "test ! -e /dev/shm/vmckpt-default-g1.ram" &&
    stop_daemon h2 && stop_daemon co &&
    no_sanitizer_reports
'
test_done
