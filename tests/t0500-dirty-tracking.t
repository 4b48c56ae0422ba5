#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Dirty tracking against a real guest: QEMU started with libvmckpt-uffd.so,
# its guest RAM write-protected in asynchronous mode and harvested with
# PAGEMAP_SCAN. Over several rounds, idle and busy, every page whose
# content changed must have been reported (0 missed).
. "$top_srcdir/tests/lib/tap.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root for network namespaces"
command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed"
command -v dropbearkey >/dev/null || skip_all "dropbear-bin not installed"
require_kernel 6 7 "userfaultfd async write-protect"
guest_tests_exclusive

LAB_CMD="$top_srcdir/scripts/vmckpt-lab"
export VMCKPT_QEMU_TOOL="$top_builddir/lib/qemu/vmckpt-qemu"
# the guest's sockets live in the lab's run state: a short directory, not
# the build tree (a UNIX socket path holds at most 107 bytes)
VMCKPT_LAB_RUN=$(mktemp -d /tmp/vmckpt-lab.XXXXXX)
export VMCKPT_LAB_RUN
export VMCKPT_UFFD_PRELOAD="$top_builddir/agent/hv/libvmckpt-uffd.so"
DIRTYCHECK="$top_builddir/tests/tools/dirtycheck"
LAB="d$$"
LAB=${LAB:0:12}
trap '"$LAB_CMD" down "$LAB" >/dev/null 2>&1 || true; rm -rf "$VMCKPT_LAB_RUN"' EXIT
lab() { "$LAB_CMD" "$@"; }

test_expect_success 'guest image and a guest whose QEMU holds a userfaultfd' '
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >/dev/null &&
    export VMCKPT_LAB_IMAGE="$top_builddir/lab" &&
    lab up $LAB 1 && lab vm-start $LAB h1 g1 &&
    pid=$(cat $VMCKPT_LAB_RUN/$LAB/g1.pid) &&
    readlink /proc/$pid/fd/100 | grep -q userfaultfd
'
export VMCKPT_LAB_IMAGE="$top_builddir/lab"
check() {
    "$DIRTYCHECK" "$(cat $VMCKPT_LAB_RUN/$LAB/g1.pid)" "$(lab ram $LAB g1)" \
        "$VMCKPT_LAB_RUN/$LAB/g1.qmp" 100 "$@"
}

test_expect_success 'idle guest: 0 missed over 4 rounds' '
    check 4 300 | tee $TEST_DIR/idle.out &&
    grep -q "4 rounds: .* 0 missed" $TEST_DIR/idle.out
'

test_expect_success 'busy guest (memwriter, 4000 pages/s): 0 missed over 5 rounds' '
    lab ssh $LAB g1 "setsid memwriter -m 64 -r 4000 -p 0 </dev/null >/dev/console 2>&1 &" &&
    wait_until 20 "lab ssh $LAB g1 pidof memwriter >/dev/null" &&
    check 5 400 | tee $TEST_DIR/busy.out &&
    grep -q "5 rounds: .* 0 missed" $TEST_DIR/busy.out &&
    changed=$(sed -n "s/.*5 rounds: \([0-9]*\) changed.*/\1/p" $TEST_DIR/busy.out) &&
    test "$changed" -gt 1000
'

test_expect_success 'the guest is intact and running afterwards' '
    lab ssh $LAB g1 "killall -USR1 memwriter" &&
    wait_until 20 "grep -aq \"memwriter: verify PASS\" \"$(lab log $LAB g1)\""
'

test_expect_success 'a process without the preloaded library: a clear refusal' '
    ! "$DIRTYCHECK" $$ /dev/null "$VMCKPT_LAB_RUN/$LAB/g1.qmp" 100 1 10 2>$TEST_DIR/err ;
    cat $TEST_DIR/err && grep -q "no mapping of" $TEST_DIR/err
'

test_done
