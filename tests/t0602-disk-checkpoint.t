#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A guest with a disk: its writes are in its checkpoints at the instant of
# its memory. The guest writes files of known content to its disk
# (diskwriter) and runs bonnie++ beside; two live checkpoints, the second
# a delta whose disk part is the layer frozen at its cut; its host dies;
# the guest comes back on another host from the peer's store, memory and
# disk from the same epoch: diskwriter finds exactly the files it had
# written before the cut, memwriter its memory, and after a clean
# shutdown e2fsck finds no error.
. "$top_srcdir/tests/lib/cluster.sh"

command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed"
command -v qemu-img >/dev/null || skip_all "qemu-img not installed (apt-get install qemu-utils)"
command -v dropbearkey >/dev/null || skip_all "dropbear-bin not installed"
command -v mke2fs >/dev/null || skip_all "e2fsprogs not installed"
require_kernel 6 7 "userfaultfd async write-protect"
guest_tests_exclusive

IMG="$top_builddir/lab"
guest_log() { echo "$RUN_BASE/$1/default-g1.log"; }
in_guest() { in_host co dbclient -y -y -i "$IMG/lab.key" root@198.18.1.1 "$@" 2>/dev/null; }
catalog() { sqlite3 "$TEST_DIR/co/state/catalog.db" "$1"; }
# the last count diskwriter printed on host $1's console log. A restored
# count must be at least the one read before the epoch began, and at most
# 3 s of writes (10 files/s) past the one read after its commit (the last
# line before the cut may be a second old, and the console lags under
# load): a disk or a writer not rolled back would be far off, or fail.
dw_count() { grep -ao "diskwriter: n=[0-9]*" "$(guest_log $1)" | tail -n 1 | cut -d= -f2; }
store_of() { echo "$TEST_DIR/$1/state/store/default/g1"; }
# bonnie++ again and again, from the guest disk (its libstdc++ is there)
a=x86_64-linux-gnu
BONNIE_LOOP="export LD_LIBRARY_PATH=/lib/$a:/usr/lib/$a:/mnt/disk/lib/$a:/mnt/disk/usr/lib/$a;
    setsid sh -c \"while [ ! -e /tmp/no-bonnie ]; do /mnt/disk/usr/sbin/bonnie++ -d /mnt/disk -s 32 -r 16 -n 0 -u root -q \
    >/dev/null; sleep 0.1; done\" </dev/null >/dev/console 2>&1 &"
bonnie_runs() { in_guest "pidof bonnie++" >/dev/null; }
# a stored layer is a whole qcow2 file (checked alone: its backing is
# another layer, named as on the guest's host)
check_layer() {
    qemu-img check -q "json:{\"driver\":\"qcow2\",\"backing\":null,\"file\":{\"driver\":\"file\",\"filename\":\"$1\"}}"
}

test_expect_success 'setup: the lab image with its disk, three hosts' '
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >/dev/null &&
    test -s "$IMG/disk.img" &&
    cluster_up 3 &&
    agents_for_guests h1 h2 h3 &&
    start_coordinator && start_agent h1 && start_agent h2 && start_agent h3 &&
    wait_until 10 "hosts_up h1 h2 h3"
'

test_expect_success 'a guest with --disk: it runs on its chain over the base, which is never written' '
    sum0=$(sha256sum <"$IMG/disk.img") &&
    vmckpt vm start --name g1 --host h1 --kernel "$IMG/vmlinux" --initrd "$IMG/initrd.img" \
        --ip 198.18.1.1/16 --disk "$IMG/disk.img,format=raw" \
        --append "vmckpt.run=memwriter,-m,64,-r,2000,-p,1" >$TEST_DIR/start.out &&
    cat $TEST_DIR/start.out &&
    wait_until 90 "grep -aq \"memwriter: gen=\" $(guest_log h1)" &&
    grep -aq "vmckpt-guest: disk mounted" $(guest_log h1) &&
    grep -q "vmckpt-chain 1" $TEST_DIR/h1/state/disks/default/g1/chain &&
    grep -q "^layer 0 2 active" $TEST_DIR/h1/state/disks/default/g1/chain &&
    wait_until 30 "in_guest true" &&
    in_guest "setsid /mnt/disk/usr/bin/diskwriter -d /mnt/disk/dw -s 64 -r 10 -p 1 </dev/null >/dev/console 2>&1 &" &&
    in_guest "$BONNIE_LOOP" &&
    wait_until 60 "test \"\$(dw_count h1)\" -ge 3 2>/dev/null" &&
    wait_until 30 bonnie_runs &&
    echo "$sum0" >$TEST_DIR/base.sum
'

test_expect_success 'two live checkpoints with bonnie++ running: the disk layers go to the peer store with memory' '
    wait_until 30 bonnie_runs &&
    vmckpt checkpoint --vm g1 >$TEST_DIR/c1.out && cat $TEST_DIR/c1.out &&
    grep -q "epoch 1 committed (full, on h2)" $TEST_DIR/c1.out &&
    wait_until 30 bonnie_runs &&
    grep -Eq "^disks 1 1 2 0 bases [0-9a-f]{16}$" "$(store_of h2)/manifest" &&
    ! grep -q "^disks 1 1 2 0 bases 0000000000000000$" "$(store_of h2)/manifest" &&
    test -s "$(store_of h2)/e1.d0.l1" && test -s "$(store_of h2)/e1.d0.l1.sum" &&
    check_layer "$(store_of h2)/e1.d0.l1" &&
    grep_log $TEST_DIR/h1/agent.log "default/g1 epoch 1: disks snapshot [0-9]* us" &&
    before=$(dw_count h1) && echo "$before" >$TEST_DIR/before &&
    wait_until 30 bonnie_runs &&
    vmckpt checkpoint --vm g1 >$TEST_DIR/c2.out && cat $TEST_DIR/c2.out &&
    grep -q "epoch 2 committed (incremental, on h2)" $TEST_DIR/c2.out &&
    wait_until 30 bonnie_runs &&
    dw_count h1 >$TEST_DIR/after &&
    grep -Eq "^disks 2 1 1 0 bases [0-9a-f]{16}$" "$(store_of h2)/manifest" &&
    check_layer "$(store_of h2)/e2.d0.l0"
'

test_expect_success 'the guest host keeps its chain short: epoch 1 merged at the next checkpoint' '
    grep_log $TEST_DIR/h1/agent.log "default/g1 disk 0: layers up to epoch 1 merged" &&
    test "$(grep -c " frozen " $TEST_DIR/h1/state/disks/default/g1/chain)" = 1
'

test_expect_success 'h1 dies; g1 comes back on h3 from h2, memory and disk of epoch 2' '
    "$LAB_CMD" kill-host $LAB h1 &&
    wait_until 10 "test \"\$(host_state h1)\" = lost" &&
    vmckpt restore --vm g1 --host h3 >$TEST_DIR/r.out && cat $TEST_DIR/r.out &&
    grep -q "default/g1 restored from epoch 2 on h3" $TEST_DIR/r.out &&
    grep -q " restored 2 r0.0.qcow2" $TEST_DIR/h3/state/disks/default/g1/chain &&
    wait_until 30 "grep -aq \"memwriter: gen=\" $(guest_log h3)" &&
    wait_until 30 "in_guest true" &&
    in_guest "sync; echo 3 >/proc/sys/vm/drop_caches; killall -USR1 diskwriter memwriter" &&
    wait_until 60 "grep -aq \"diskwriter: verify \" $(guest_log h3)" &&
    wait_until 60 "grep -aq \"memwriter: verify \" $(guest_log h3)" &&
    grep -a "verify" $(guest_log h3) &&
    ! grep -aq "verify FAIL" $(guest_log h3) &&
    n=$(grep -ao "diskwriter: verify PASS n=[0-9]*" $(guest_log h3) | head -n 1 | cut -d= -f2) &&
    echo "restored with n=$n; before epoch 2: $(cat $TEST_DIR/before), after: $(cat $TEST_DIR/after)" &&
    test "$n" -ge "$(cat $TEST_DIR/before)" &&
    test "$n" -le $(($(cat $TEST_DIR/after) + 30))
'

test_expect_success 'bonnie++ restored mid-run goes on; a clean shutdown leaves a disk e2fsck finds clean; the base is untouched' '
    wait_until 30 bonnie_runs &&
    in_guest "touch /tmp/no-bonnie; killall diskwriter memwriter bonnie++; while pidof bonnie++ diskwriter; do sleep 0.2; done; sync; umount /mnt/disk && e2fsck -fn /dev/vda" >$TEST_DIR/fsck.out 2>&1;
    rc=$?; cat $TEST_DIR/fsck.out; test $rc = 0 &&
    test "$(sha256sum <"$IMG/disk.img")" = "$(cat $TEST_DIR/base.sum)"
'

test_expect_success 'a base changed under a running guest stops its checkpoints; its committed epoch stays' '
    cp --sparse=always "$IMG/disk.img" $TEST_DIR/b2.img &&
    vmckpt vm start --name g2 --host h2 --kernel "$IMG/vmlinux" --initrd "$IMG/initrd.img" \
        --disk "$TEST_DIR/b2.img,format=raw" --append "vmckpt.run=memwriter,-m,16,-r,100,-p,1" &&
    wait_until 90 "grep -aq \"memwriter: gen=\" $RUN_BASE/h2/default-g2.log" &&
    vmckpt checkpoint --vm g2 >$TEST_DIR/g2c1.out && cat $TEST_DIR/g2c1.out &&
    grep -q "epoch [0-9]* committed" $TEST_DIR/g2c1.out &&
    grep_log $TEST_DIR/h2/agent.log "default/g2 disk 0: base image $TEST_DIR/b2.img, digest" &&
    printf x | dd of=$TEST_DIR/b2.img bs=1 seek=$((600 << 20)) conv=notrunc 2>/dev/null &&
    ! vmckpt checkpoint --vm g2 2>$TEST_DIR/g2c2.err && cat $TEST_DIR/g2c2.err &&
    grep -q "disk 0: base image $TEST_DIR/b2.img changed since the guest started" $TEST_DIR/g2c2.err &&
    vmckpt vm list | grep -q "^default  *g2  *h2  *running" &&
    test "$(catalog "select count(*) from epochs where vm=\"g2\" and state=\"committed\"")" = 1 &&
    vmckpt vm stop --name g2 | grep -q stopped
'

test_expect_success 'vm stop removes the guest and its chain; clean daemons, no sanitizer report' '
    vmckpt vm stop --name g1 | grep -q stopped &&
    wait_until 10 "test ! -e $TEST_DIR/h3/state/disks/default/g1" &&
    stop_daemon h2 && stop_daemon h3 && stop_daemon co &&
    no_sanitizer_reports
'
rm -f /dev/shm/vmckpt-default-g1.ram /dev/shm/vmckpt-restore-default-g1.ram
test_done
