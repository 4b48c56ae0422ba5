#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A restart whose image fails its checksum does not leave a mixed job:
# the VM is restored from the other copy of that epoch (the peer store's,
# or the local copy its host kept), and when every copy of some VM's image
# is damaged, every VM of the job comes back from the previous committed
# epoch instead. Status says which; memwriter verifies; the next
# checkpoint commits.
. "$top_srcdir/tests/lib/cluster.sh"

command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed"
command -v dropbearkey >/dev/null || skip_all "dropbear-bin not installed"
tracking_mode
guest_tests_exclusive

IMG="$top_builddir/lab"
GUEST_JOB=j9
ip_of() { echo "198.18.1.$((60 + ${1#g}))"; }
co_log="$TEST_DIR/co/coordinator.log"

# damage HOST VM EPOCH: flip a byte in what HOST's store holds of VM's
# epoch: its page records (a delta), or, on QEMU's migration stream, the
# stream itself (stored as the epoch's state)
damage() {
    local f=$TEST_DIR/$1/state/store/j9/$2/e$3.pages
    incremental || f=${f%.pages}.state
    local size off
    test -s "$f" || { echo "no $f"; return 1; }
    # inside the file, whatever its size (a delta can be small)
    size=$(stat -c %s "$f") && off=$((size > 5000 ? 5000 : size / 2)) &&
        flip_byte "$f" $off
}
# verify VM HOST: memwriter checks its memory after the restore
verify() {
    in_guest $1 "killall -USR1 memwriter" &&
        wait_until 30 "since_restore $1 $2 | grep -aq \"memwriter: verify PASS\"" &&
        ! since_restore $1 $2 | grep -aq "verify FAIL"
}

# (keep_epochs=0: every epoch stays as it was written; retention, not the
# subject here, would fold the oldest epoch kept into a base image at each
# commit from the third, seconds of I/O before the epoch is durable)
test_expect_success 'setup: job j9 of two guests on h1 and h2, epochs 1 and 2 committed (2 a delta where the writes are tracked)' '
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >/dev/null &&
    guest_cluster_up 2 keep_epochs=0 &&
    for i in 1 2; do
        vmckpt vm start --job j9 --name g$i --host h$i --mem 256 --kernel "$IMG/vmlinux" \
            --initrd "$IMG/initrd.img" --ip $(ip_of g$i)/16 \
            --append "vmckpt.run=memwriter,-m,32,-r,1000,-p,1" || exit 1
    done &&
    for i in 1 2; do wait_until 90 "test -n \"\$(gen_now g$i h$i)\"" || exit 1; done &&
    for e in 1 2; do
        vmckpt checkpoint j9 --wait | grep -q "job j9: epoch $e committed: 2 VM(s)" || exit 1
    done &&
    { ! incremental ||
        test "$(vmckpt list j9 --json | jq -r ".[] | select(.epoch == 2 and .vm == \"g1\") | .parent")" = 1; }
'

test_expect_success 'g1 local copy of epoch 2 damaged: the restart takes the copy on h2 instead, status says so' '
    damage h1 g1 2 &&
    vmckpt restart j9 >$TEST_DIR/r1.out && cat $TEST_DIR/r1.out &&
    grep -q "job j9 restarted from epoch 2: 2 VM(s)" $TEST_DIR/r1.out &&
    grep -q "g1 from h2.s copy (h1.s failed: j9/g1 epoch 2: " $TEST_DIR/r1.out &&
    grep_log $co_log "job j9: the restore of g1 from h1.s copy of epoch 2 failed (.*damaged.*); trying the copy on h2" &&
    job_field last_error | grep -q "^restarted from epoch 2: g1 from h2.s copy" &&
    exactly_once g1 g2 && verify g1 h1 && verify g2 h2
'

test_expect_success 'g2 epoch 4 damaged on both copies: every VM comes back from epoch 3' '
    for e in 3 4; do
        vmckpt checkpoint j9 --wait | grep -q "job j9: epoch $e committed: 2 VM(s)" || exit 1
    done &&
    { ! incremental ||
        test "$(vmckpt list j9 --json | jq -r ".[] | select(.epoch == 4 and .vm == \"g2\") | .parent")" = 3; } &&
    damage h2 g2 4 && damage h1 g2 4 &&
    inc=$(job_field incarnation) &&
    vmckpt restart j9 >$TEST_DIR/r2.out && cat $TEST_DIR/r2.out &&
    grep -q "job j9 restarted from epoch 3: 2 VM(s)" $TEST_DIR/r2.out &&
    grep_log $co_log "job j9: epoch 4 could not be restored (g2 on h2: .*); every VM comes back from epoch 3 instead" &&
    grep_log $co_log "job j9: restore g1 on h1 from epoch 3" &&
    job_field last_error | grep -q "^restarted from epoch 3: epoch 4 could not be restored" &&
    test "$(job_field incarnation)" -gt "$inc" &&
    exactly_once g1 g2 && verify g1 h1 && verify g2 h2
'

test_expect_success 'the next checkpoint commits' '
    vmckpt checkpoint j9 --wait | grep -q "job j9: epoch 5 committed: 2 VM(s)" &&
    test "$(job_field state)" = running
'

test_expect_success 'clean stop; no sanitizer report' '
    for i in 1 2; do vmckpt vm stop --job j9 --name g$i >/dev/null || exit 1; done &&
    stop_daemon h1 && stop_daemon h2 && stop_daemon co &&
    no_sanitizer_reports
'
test_done
