#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Faults of guest disks, at guest level (issue 15; the store side is
# agent/store/test/image_test.c's). h2 keeps its peers' images on a tmpfs.
# A guest g1 on h1 with a disk commits epoch 1 there; then it writes
# 160 MiB to its disk (O_DIRECT: its memory delta stays small) and the
# tmpfs is filled but for 64 MiB: the memory of the next epoch fits, its
# disk layer does not, and the checkpoint fails saying the disk is full,
# leaving no file of it, epoch 1 byte-identical and the guest running; with
# room again the next one commits. A byte of that epoch's disk layer is
# then damaged and h1 dies: a restore of that epoch, fetched from h2 or
# read from h2's own store, fails naming the damaged layer, and leaves no
# QEMU, chain or RAM file behind; epoch 1 brings g1 back, diskwriter and
# memwriter verifying. Last, a job's guest g2 on h3: a damaged disk layer
# in its host's local copy of a job epoch makes the restart take the copy
# on h2, and with both copies damaged the job comes back from the epoch
# before, each time verifying.
. "$top_srcdir/tests/lib/cluster.sh"

command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed"
command -v qemu-img >/dev/null || skip_all "qemu-img not installed (apt-get install qemu-utils)"
command -v dropbearkey >/dev/null || skip_all "dropbear-bin not installed"
command -v fallocate >/dev/null || skip_all "needs fallocate (util-linux)"
require_kernel 6 7 "userfaultfd async write-protect"
guest_tests_exclusive

IMG="$top_builddir/lab"
STORE=$TEST_DIR/h2/state/store
GUEST_JOB=jd
ip_of() { echo "198.18.1.$((40 + ${1#g}))"; }
catalog() { sqlite3 "$TEST_DIR/co/state/catalog.db" "$1"; }
# g1's console log on host $1, and its log since the last restore there
g1_log() { echo "$RUN_BASE/$1/default-g1.log"; }
g1_since_restore() { since_restore_of default g1 "$(g1_log "$1")"; }
g1_gen() { grep -ao "memwriter: gen=[0-9]*" "$(g1_log "$1")" | tail -n 1 | cut -d= -f2; }
# the last count diskwriter printed on host $1's console log (t0602)
dw_count() { grep -ao "diskwriter: n=[0-9]*" "$(g1_log "$1")" | tail -n 1 | cut -d= -f2; }
store_of() { echo "$TEST_DIR/$1/state/store/$2/$3"; } # HOST JOB VM
# layers DIR EPOCH: the layer files of disk 0 of EPOCH in store dir DIR,
# each with its size
layers() {
    local f
    for f in "$1"/e"$2".d0.l*; do
        case $f in *.sum) ;; *) [ -f "$f" ] && echo "$(stat -c %s "$f") $f" ;; esac
    done
}
largest_layer() { layers "$1" "$2" | sort -n | tail -n 1 | cut -d" " -f2; }
layers_bytes() { layers "$1" "$2" | awk '{ n += $1 } END { print n + 0 }'; }
# damage FILE: one byte flipped in its middle
damage() {
    test -s "$1" || { echo "no $1"; return 1; }
    flip_byte "$1" $(($(stat -c %s "$1") / 2))
}
# nothing of a failed restore of default/g1 on $1: no QEMU, no chain (nor
# the one it was building), no RAM file
no_restore_left() {
    test "$(qemu_count g1)" = 0 &&
        test ! -e "$TEST_DIR/$1/state/disks/default/g1" &&
        test ! -e "$TEST_DIR/$1/state/disks/default/.g1.restore" &&
        test ! -e /dev/shm/vmckpt-restore-default-g1.ram
}
VERIFY="sync; echo 3 >/proc/sys/vm/drop_caches; killall -USR1 memwriter diskwriter"
# verify_g2 HOST: memwriter and diskwriter check g2 after its last restore
verify_g2() {
    in_guest g2 "$VERIFY" &&
        wait_until 60 "since_restore g2 $1 | grep -aq \"memwriter: verify \"" &&
        wait_until 60 "since_restore g2 $1 | grep -aq \"diskwriter: verify \"" &&
        since_restore g2 "$1" | grep -a "verify" &&
        since_restore g2 "$1" | grep -aq "memwriter: verify PASS" &&
        since_restore g2 "$1" | grep -aq "diskwriter: verify PASS" &&
        ! since_restore g2 "$1" | grep -aq "verify FAIL"
}

full_cleanup() {
    cluster_cleanup
    umount -l "$STORE" 2>/dev/null || true
    rm -f /dev/shm/vmckpt-default-g1.ram /dev/shm/vmckpt-restore-default-g1.ram \
        /dev/shm/vmckpt-jd-g2.ram /dev/shm/vmckpt-restore-jd-g2.ram
}
trap full_cleanup EXIT

test_expect_success 'setup: three hosts, h2 storing on a 2 GiB tmpfs; g1 on h1 with a disk runs memwriter and diskwriter' '
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >/dev/null &&
    test -s "$IMG/disk.img" &&
    cluster_up 3 &&
    sed -i "/^\[coordinator\]/a max_precopy_ms = 15000\ncheckpoint_timeout_ms = 60000\nkeep_epochs = 0" \
        "$TEST_DIR/co/vmckpt.conf" &&
    mkdir -p $STORE && mount -t tmpfs -o size=2g,mode=0700 vmckpt-test $STORE &&
    agents_for_guests h1 h2 h3 &&
    start_coordinator && start_agent h1 && start_agent h2 && start_agent h3 &&
    wait_until 10 "hosts_up h1 h2 h3" &&
    sha256sum <"$IMG/disk.img" >$TEST_DIR/base.sum &&
    vmckpt vm start --name g1 --host h1 --mem 256 --kernel "$IMG/vmlinux" --initrd "$IMG/initrd.img" \
        --ip $(ip_of g1)/16 --disk "$IMG/disk.img,format=raw" \
        --append "vmckpt.run=memwriter,-m,16,-r,100,-p,1" &&
    wait_until 120 "grep -aq \"memwriter: gen=\" $(g1_log h1)" &&
    grep -aq "vmckpt-guest: disk mounted" $(g1_log h1) &&
    wait_until 60 "in_guest g1 true" &&
    in_guest g1 "setsid /mnt/disk/usr/bin/diskwriter -d /mnt/disk/dw -s 16 -r 5 -p 1 </dev/null >/dev/console 2>&1 &" &&
    wait_until 60 "test \"\$(dw_count h1)\" -ge 3 2>/dev/null"
'

test_expect_success 'epoch 1 of g1 commits on h2, with its disk' '
    dw_count h1 >$TEST_DIR/before1 &&
    vmckpt checkpoint --vm g1 >$TEST_DIR/c1.out && cat $TEST_DIR/c1.out &&
    grep -q "epoch 1 committed (full, on h2)" $TEST_DIR/c1.out &&
    dw_count h1 >$TEST_DIR/after1 &&
    s=$(store_of h2 default g1) &&
    grep -Eq "^disks 1 1 [0-9]+ 0 bases [0-9a-f]{16}$" $s/manifest &&
    cp $s/manifest $TEST_DIR/manifest.1 &&
    (cd $s && sha256sum e1.* >$TEST_DIR/e1.sums) && cat $TEST_DIR/e1.sums &&
    # what stays byte-identical for good: retention may rewrite a full
    # epoch page records as a base image (e1.pages to e1.base) once a
    # second epoch commits, but never its disk layers or its state
    grep -E " e1\.(d0\.|state)" $TEST_DIR/e1.sums >$TEST_DIR/e1.kept.sums
'

test_expect_success 'disk full while the disk layer streams: the checkpoint fails saying so; the guest runs on' '
    # 160 MiB of disk delta, by O_DIRECT (no page cache: the memory delta
    # stays a few MiB of memwriter and the kernel)
    in_guest g1 "dd if=/dev/urandom of=/mnt/disk/big bs=1M count=160 oflag=direct 2>/dev/null && sync && ls -l /mnt/disk/big" &&
    s=$(store_of h2 default g1) &&
    avail=$(df --output=avail -B1 $STORE | tail -n 1) &&
    fallocate -l $((avail - (64 << 20))) $STORE/filler &&
    df -h $STORE &&
    g0=$(g1_gen h1) && n0=$(dw_count h1) &&
    ! vmckpt checkpoint --vm g1 >$TEST_DIR/c2.out 2>$TEST_DIR/c2.err &&
    cat $TEST_DIR/c2.out $TEST_DIR/c2.err &&
    # (refused as a chunk is sent, or, the chunks all sent, at the end)
    grep -Eq "(default/g1 epoch 2: store [0-9.:]*: refused: |store [0-9.:]*: refused: default/g1 epoch 2: ).*disk 0 layer 0: writing [0-9]* bytes at [0-9]*: No space left on device" $TEST_DIR/c2.err &&
    # the store failed on the disk layer, which follows the memory: that fitted
    grep_log $TEST_DIR/h2/agent.log "disk 0 layer [0-9]*: writing [0-9]* bytes at [0-9]*: No space left on device" &&
    test "$(catalog "select state from epochs where vm=\"g1\" and epoch=2")" = aborted &&
    test "$(catalog "select state from epochs where vm=\"g1\" and epoch=1")" = committed &&
    vmckpt vm list | grep -q "^default  *g1  *h1  *running" &&
    wait_until 30 "test \$(g1_gen h1) -gt $g0" &&
    wait_until 30 "test \$(dw_count h1) -gt $n0"
'

test_expect_success 'nothing of the failed epoch is left at the store; epoch 1 is byte-identical' '
    s=$(store_of h2 default g1) &&
    ls -la $s &&
    test -z "$(ls $s | grep "^e2\.")" &&
    test -z "$(find $STORE -name "*.tmp")" &&
    cmp $TEST_DIR/manifest.1 $s/manifest &&
    (cd $s && sha256sum -c --quiet $TEST_DIR/e1.sums)
'

test_expect_success 'with room again the next checkpoint commits, its disk layers carrying the 160 MiB' '
    rm -f $STORE/filler &&
    vmckpt checkpoint --vm g1 >$TEST_DIR/c3.out && cat $TEST_DIR/c3.out &&
    grep -q "epoch 3 committed (full, on h2)" $TEST_DIR/c3.out &&
    test "$(catalog "select group_concat(epoch) from epochs where vm=\"g1\" and state=\"committed\"")" = "1,3" &&
    s=$(store_of h2 default g1) &&
    ls -la $s &&
    test "$(layers_bytes $s 3)" -gt $((160 << 20)) &&
    (cd $s && sha256sum -c --quiet $TEST_DIR/e1.kept.sums)
'

test_expect_success 'a damaged disk layer: h1 dies; the restore of that epoch, fetched or local, fails naming it and leaves nothing behind' '
    s=$(store_of h2 default g1) &&
    layer=$(largest_layer $s 3) && echo "damaging $layer" &&
    damage $layer &&
    "$LAB_CMD" kill-host $LAB h1 &&
    wait_until 10 "test \"\$(host_state h1)\" = lost" &&
    # fetched from h2 by h3
    ! vmckpt restore --vm g1 --host h3 >$TEST_DIR/r1.out 2>$TEST_DIR/r1.err &&
    cat $TEST_DIR/r1.out $TEST_DIR/r1.err &&
    grep -q "default/g1 epoch 3: damaged disk 0 layer $(basename $layer) at offset [0-9]* (checksum mismatch)" $TEST_DIR/r1.err &&
    grep -q "an earlier epoch may be whole: vmckpt list default shows them; vmckpt restore --job default --vm g1 --epoch N" $TEST_DIR/r1.err &&
    grep_log $TEST_DIR/h3/agent.log "restore of default/g1 epoch 3 failed: .*damaged disk 0 layer $(basename $layer)" &&
    vmckpt vm list | grep "^default  *g1 " | grep -q " stopped" &&
    wait_until 10 "no_restore_left h3" &&
    # read from its own store by h2
    ! vmckpt restore --vm g1 --host h2 >$TEST_DIR/r2.out 2>$TEST_DIR/r2.err &&
    cat $TEST_DIR/r2.out $TEST_DIR/r2.err &&
    grep -q "default/g1 epoch 3: damaged disk 0 layer $(basename $layer) at offset [0-9]* (checksum mismatch)" $TEST_DIR/r2.err &&
    grep_log $TEST_DIR/h2/agent.log "restore of default/g1 epoch 3 failed: .*damaged disk 0 layer $(basename $layer)" &&
    vmckpt vm list | grep "^default  *g1 " | grep -q " stopped" &&
    wait_until 10 "no_restore_left h2" &&
    (cd $s && sha256sum -c --quiet $TEST_DIR/e1.kept.sums)
'

test_expect_success 'epoch 1 brings g1 back on h3: diskwriter and memwriter verify; the base is untouched' '
    vmckpt restore --vm g1 --host h3 --epoch 1 >$TEST_DIR/r3.out && cat $TEST_DIR/r3.out &&
    grep -q "default/g1 restored from epoch 1 on h3" $TEST_DIR/r3.out &&
    grep -q " restored 1 r0.0.qcow2" $TEST_DIR/h3/state/disks/default/g1/chain &&
    exactly_once g1 &&
    wait_until 60 "g1_since_restore h3 | grep -aq \"memwriter: gen=\"" &&
    wait_until 60 "in_guest g1 true" &&
    in_guest g1 "$VERIFY" &&
    wait_until 60 "g1_since_restore h3 | grep -aq \"diskwriter: verify \"" &&
    wait_until 60 "g1_since_restore h3 | grep -aq \"memwriter: verify \"" &&
    g1_since_restore h3 | grep -a "verify" &&
    g1_since_restore h3 | grep -aq "memwriter: verify PASS" &&
    ! g1_since_restore h3 | grep -aq "verify FAIL" &&
    n=$(g1_since_restore h3 | grep -ao "diskwriter: verify PASS n=[0-9]*" | head -n 1 | cut -d= -f2) &&
    echo "restored with n=$n; before epoch 1: $(cat $TEST_DIR/before1), after: $(cat $TEST_DIR/after1)" &&
    test "$n" -ge "$(cat $TEST_DIR/before1)" &&
    test "$n" -le $(($(cat $TEST_DIR/after1) + 25)) &&
    # written after epoch 1: not on its disk
    in_guest g1 "test ! -e /mnt/disk/big" &&
    test "$(sha256sum <"$IMG/disk.img")" = "$(cat $TEST_DIR/base.sum)" &&
    vmckpt vm stop --name g1 | grep -q stopped &&
    wait_until 30 "test \"\$(qemu_count g1)\" = 0"
'

test_expect_success 'job jd: g2 on h3 with a disk, two job epochs, each on h2 and in h3.s local copy' '
    vmckpt vm start --job jd --name g2 --host h3 --mem 256 --kernel "$IMG/vmlinux" \
        --initrd "$IMG/initrd.img" --ip $(ip_of g2)/16 --disk "$IMG/disk.img,format=raw" \
        --append "vmckpt.run=memwriter,-m,16,-r,100,-p,1" &&
    wait_until 120 "test -n \"\$(gen_now g2 h3)\"" &&
    wait_until 60 "in_guest g2 true" &&
    in_guest g2 "setsid /mnt/disk/usr/bin/diskwriter -d /mnt/disk/dw -s 16 -r 5 -p 1 </dev/null >/dev/console 2>&1 &" &&
    wait_until 60 "grep -aq \"diskwriter: n=[1-9]\" $(glog g2 h3)" &&
    for e in 1 2; do
        { vmckpt checkpoint jd --wait >$TEST_DIR/j$e.out; cat $TEST_DIR/j$e.out; }
        grep -q "job jd: epoch $e committed: 1 VM(s)" $TEST_DIR/j$e.out || exit 1
    done &&
    test "$(vmckpt list jd --json | jq -r ".[] | select(.epoch == 2 and .vm == \"g2\") | .parent")" = 1 &&
    test -s $(store_of h2 jd g2)/e2.d0.l0 && test -s $(store_of h3 jd g2)/e2.d0.l0
'

test_expect_success 'g2 disk layer damaged in h3.s local copy: the restart takes the copy on h2, status says so' '
    damage $(store_of h3 jd g2)/e2.d0.l0 &&
    vmckpt restart jd >$TEST_DIR/jr1.out && cat $TEST_DIR/jr1.out &&
    grep -q "job jd restarted from epoch 2: 1 VM(s)" $TEST_DIR/jr1.out &&
    grep -q "g2 from h2.s copy (h3.s failed: jd/g2 epoch 2: damaged disk 0 layer e2.d0.l0 at offset [0-9]* (checksum mismatch)" $TEST_DIR/jr1.out &&
    grep_log $TEST_DIR/co/coordinator.log "job jd: the restore of g2 from h3.s copy of epoch 2 failed (.*damaged disk 0 layer e2.d0.l0.*); trying the copy on h2" &&
    exactly_once g2 && verify_g2 h3
'

test_expect_success 'both copies damaged: the job comes back from epoch 1, verifying; the next checkpoint commits' '
    damage $(store_of h2 jd g2)/e2.d0.l0 &&
    vmckpt restart jd >$TEST_DIR/jr2.out && cat $TEST_DIR/jr2.out &&
    grep -q "job jd restarted from epoch 1: 1 VM(s)" $TEST_DIR/jr2.out &&
    grep_log $TEST_DIR/co/coordinator.log "job jd: epoch 2 could not be restored (g2 on h3: .*damaged disk 0 layer e2.d0.l0.*); every VM comes back from epoch 1 instead" &&
    job_field last_error | grep -q "^restarted from epoch 1: epoch 2 could not be restored" &&
    exactly_once g2 && verify_g2 h3 &&
    { vmckpt checkpoint jd --wait >$TEST_DIR/j3.out; cat $TEST_DIR/j3.out; } &&
    grep -q "job jd: epoch 3 committed: 1 VM(s)" $TEST_DIR/j3.out &&
    test "$(job_field state)" = running
'

test_expect_success 'h1 back: its agent removes the chain g1 left there (g1 was restored elsewhere)' '
    test -s $TEST_DIR/h1/state/disks/default/g1/chain &&
    "$LAB_CMD" revive-host $LAB h1 &&
    start_agent h1 &&
    wait_until 30 "test \"\$(host_state h1)\" = up" &&
    grep_log $TEST_DIR/h1/agent.log "guest default/g1 of an earlier agent is gone; cleaning up" &&
    test ! -e $TEST_DIR/h1/state/disks/default/g1
'

test_expect_success 'clean stop, the chains removed; no sanitizer report' '
    vmckpt vm stop --job jd --name g2 | grep -q stopped &&
    wait_until 10 "test ! -e $TEST_DIR/h3/state/disks/jd/g2" &&
    test "$(sha256sum <"$IMG/disk.img")" = "$(cat $TEST_DIR/base.sum)" &&
    stop_daemon h1 && stop_daemon h2 && stop_daemon h3 && stop_daemon co &&
    no_sanitizer_reports
'
test_done
