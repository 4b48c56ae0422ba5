#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The same spine through the coordinator and the admin console: agents
# launch and own the guest, 'vmckpt checkpoint' commits epochs in the
# catalog (the store picked on the ring of hosts), 'vmckpt status' shows
# them, and after its host dies 'vmckpt restore' brings the guest back on
# another host from the peer's store.
. "$top_srcdir/tests/lib/cluster.sh"

command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed"
command -v dropbearkey >/dev/null || skip_all "dropbear-bin not installed"
require_kernel 6 7 "userfaultfd async write-protect"
guest_tests_exclusive

IMG="$top_builddir/lab"
guest_log() { echo "$RUN_BASE/$1/default-g1.log"; }
in_guest() { in_host co dbclient -y -y -i "$IMG/lab.key" root@198.18.1.1 "$@" 2>/dev/null; }
catalog() { sqlite3 "$TEST_DIR/co/state/catalog.db" "$1"; }

test_expect_success 'setup: three hosts whose agents preload the tracker' '
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >/dev/null &&
    cluster_up 3 &&
    agents_for_guests h1 h2 h3 &&
    start_coordinator && start_agent h1 && start_agent h2 && start_agent h3 &&
    wait_until 10 "hosts_up h1 h2 h3"
'

test_expect_success 'vmckpt vm start: the agent of h1 launches the guest' '
    vmckpt vm start --name g1 --host h1 --kernel "$IMG/vmlinux" --initrd "$IMG/initrd.img" \
        --ip 198.18.1.1/16 --append "vmckpt.run=memwriter,-m,64,-r,2000,-p,1" >$TEST_DIR/start.out &&
    cat $TEST_DIR/start.out && grep -q "default/g1 started on h1" $TEST_DIR/start.out &&
    wait_until 60 "grep -aq \"memwriter: gen=\" $(guest_log h1)" &&
    vmckpt vm list | grep -q "^default  *g1  *h1  *running"
'

test_expect_success 'vmckpt checkpoint: full, then incremental, committed on the next host (h2)' '
    vmckpt checkpoint --vm g1 >$TEST_DIR/c1.out && cat $TEST_DIR/c1.out &&
    grep -q "epoch 1 committed (full, on h2)" $TEST_DIR/c1.out &&
    g=$(grep -ao "memwriter: gen=[0-9]*" $(guest_log h1) | tail -n 1 | cut -d= -f2) &&
    wait_until 20 "grep -ao \"memwriter: gen=[0-9]*\" $(guest_log h1) | tail -n 1 | grep -qv \"gen=$g\$\"" &&
    vmckpt checkpoint --vm g1 >$TEST_DIR/c2.out && cat $TEST_DIR/c2.out &&
    grep -q "epoch 2 committed (incremental, on h2)" $TEST_DIR/c2.out &&
    test "$(catalog "select count(*) from epochs where state=\"committed\" and store_host=\"h2\"")" = 2 &&
    p1=$(catalog "select pages from epochs where epoch=1") &&
    p2=$(catalog "select pages from epochs where epoch=2") &&
    test "$p2" -lt $((p1 / 2)) &&
    test "$(catalog "select pause_us > 0 from epochs where epoch=2")" = 1
'

test_expect_success 'vmckpt status shows the last epoch and pause; --json too' '
    vmckpt status >$TEST_DIR/status.out && cat $TEST_DIR/status.out &&
    grep -q "PAUSE-ms" $TEST_DIR/status.out &&
    vmckpt status --json | jq -e ".[0].last_epoch == 2 and .[0].last_pause_us > 0 and .[0].tracking == \"uffd-wp\"" >/dev/null
'

test_expect_success 'checkpoint of an unknown VM: a clear error' '
    ! vmckpt checkpoint --vm nope 2>$TEST_DIR/err && cat $TEST_DIR/err &&
    grep -q "default/nope is not running" $TEST_DIR/err
'

test_expect_success 'h1 dies; vmckpt restore brings g1 back on h2; memwriter verifies' '
    "$LAB_CMD" kill-host $LAB h1 &&
    wait_until 10 "test \"\$(host_state h1)\" = lost" &&
    vmckpt restore --vm g1 --host h2 >$TEST_DIR/r.out && cat $TEST_DIR/r.out &&
    grep -q "default/g1 restored from epoch 2 on h2" $TEST_DIR/r.out &&
    vmckpt vm list | grep -q "^default  *g1  *h2  *running" &&
    wait_until 20 "grep -aq \"memwriter: gen=\" $(guest_log h2)" &&
    in_guest "killall -USR1 memwriter" &&
    wait_until 20 "grep -aq \"memwriter: verify PASS\" $(guest_log h2)" &&
    ! grep -aq "verify FAIL" $(guest_log h2)
'

test_expect_success 'the next checkpoint is full (a new QEMU) and goes to h3' '
    vmckpt checkpoint --vm g1 >$TEST_DIR/c3.out && cat $TEST_DIR/c3.out &&
    grep -q "epoch 3 committed (full, on h3)" $TEST_DIR/c3.out
'

manifest() { cat "$TEST_DIR/$1/state/store/default/g1/manifest" 2>/dev/null; }
g1_store=$TEST_DIR/h3/state/store/default/g1
test_expect_success 'retention keeps 2 epochs: old ones expire and leave the stores' '
    vmckpt checkpoint --vm g1 | grep -q "epoch 4 committed (incremental, on h3)" &&
    wait_until 30 "manifest h3 | grep -q \"^epoch 3 parent 0 .* base 1\$\"" &&
    stat -c %i $g1_store/e3.base >$TEST_DIR/e3.inode &&
    vmckpt checkpoint --vm g1 | grep -q "epoch 5 committed (incremental, on h3)" &&
    test "$(catalog "select group_concat(epoch) from epochs where state=\"committed\"")" = "4,5" &&
    test "$(catalog "select count(*) from epochs where state=\"expired\"")" = 3 &&
    wait_until 30 "test \"\$(manifest h3 | grep -c ^epoch)\" = 2 &&
        manifest h3 | grep -q \"^epoch 4 parent 0 .* base 1\$\"" &&
    test -e $TEST_DIR/h3/state/store/default/g1/e4.base &&
    test ! -e $TEST_DIR/h3/state/store/default/g1/e4.pages &&
    test "$(stat -c %s $TEST_DIR/h3/state/store/default/g1/e4.base)" = "$(manifest h3 | head -n 1 | cut -d" " -f4)" &&
    manifest h3 | grep -q "^epoch 5 parent 4 " &&
    : "epoch 4 was written into the base of epoch 3, not into a new file" &&
    test "$(stat -c %i $g1_store/e4.base)" = "$(cat $TEST_DIR/e3.inode)" &&
    test ! -e $g1_store/e3.base &&
    wait_until 30 "test \"\$(manifest h2 | grep -c ^epoch)\" = 0" &&
    test ! -e $TEST_DIR/h3/state/store/default/g1/e3.pages &&
    test ! -e $TEST_DIR/h2/state/store/default/g1/e1.pages
'

test_expect_success 'the folded epoch 4 restores (on h3) and verifies' '
    vmckpt vm stop --name g1 | grep -q stopped &&
    vmckpt vm list | grep -q "^default  *g1  *h2  *stopped" &&
    wait_until 10 "test ! -e /dev/shm/vmckpt-default-g1.ram" &&
    vmckpt restore --vm g1 --host h3 --epoch 4 | grep -q "restored from epoch 4 on h3" &&
    wait_until 20 "grep -aq \"memwriter: gen=\" $(guest_log h3)" &&
    in_guest "killall -USR1 memwriter" &&
    wait_until 20 "grep -aq \"memwriter: verify PASS\" $(guest_log h3)" &&
    ! grep -aq "verify FAIL" $(guest_log h3) &&
    ! vmckpt restore --vm g1 --host h2 --epoch 2 2>$TEST_DIR/err &&
    grep -q "no committed epoch" $TEST_DIR/err
'

test_expect_success 'vm stop, clean daemons, no sanitizer report' '
    vmckpt vm stop --name g1 | grep -q stopped &&
    wait_until 10 "test ! -e /dev/shm/vmckpt-default-g1.ram" &&
    stop_daemon h2 && stop_daemon h3 && stop_daemon co &&
    no_sanitizer_reports
'
rm -f /dev/shm/vmckpt-default-g1.ram /dev/shm/vmckpt-restore-default-g1.ram
test_done
