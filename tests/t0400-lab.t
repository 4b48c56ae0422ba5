#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The lab: three hosts with one real QEMU guest each. Guests reach each
# other across hosts; heat runs across the three guests under mpirun with
# the checksum of a run outside the VMs; memwriter catches a byte flipped
# in its guest's RAM; and 'vmckpt-lab down' after a killed run leaves
# nothing behind.
. "$top_srcdir/tests/lib/tap.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root for network namespaces"
command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed (apt-get install qemu-system-x86)"
command -v dropbearkey >/dev/null || skip_all "dropbear-bin not installed"
guest_tests_exclusive
[ -x "$top_builddir/examples/mpi/heat" ] || skip_all "built without Open MPI"

LAB_CMD="$top_srcdir/scripts/vmckpt-lab"
export VMCKPT_QEMU_TOOL="$top_builddir/lib/qemu/vmckpt-qemu"
# the guests' sockets live in the lab's run state: a short directory, not
# the build tree (a UNIX socket path holds at most 107 bytes)
VMCKPT_LAB_RUN=$(mktemp -d /tmp/vmckpt-lab.XXXXXX)
export VMCKPT_LAB_RUN
LAB="t$$"
LAB=${LAB:0:12}
trap '"$LAB_CMD" down "$LAB" >/dev/null 2>&1 || true; "$LAB_CMD" down "k$$" >/dev/null 2>&1 || true; rm -rf "$VMCKPT_LAB_RUN"' EXIT
lab() { "$LAB_CMD" "$@"; }

test_expect_success 'guest image builds (kernel from Debian, initramfs)' '
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >$TEST_DIR/image.dir &&
    test -s "$top_builddir/lab/initrd.img" && test -s "$top_builddir/lab/vmlinux"
'
export VMCKPT_LAB_IMAGE="$top_builddir/lab"
note "$(lab accel)"

test_expect_success 'three hosts, one guest each, all boot' '
    lab up $LAB 3 &&
    for i in 1 2 3; do lab vm-start $LAB h$i g$i --no-wait || exit 1; done &&
    for i in 1 2 3; do lab vm-wait $LAB g$i 180 || exit 1; done &&
    lab ps $LAB | grep -c "^guest g[123] on h[123]" | grep -qx 3
'
for i in 1 2 3; do
    note "$(grep -ao "vmckpt-guest: g$i up .*" "$(lab log $LAB g$i)" | tr -d '\r')"
done

test_expect_success 'guests reach each other across hosts, with their fixed addresses' '
    lab ssh $LAB g1 "ping -c1 -W3 198.18.1.2 && ping -c1 -W3 198.18.1.3" &&
    lab ssh $LAB g3 "ip addr show eth0" | grep -q "198.18.1.3/16" &&
    lab ssh $LAB g2 "cat /sys/class/net/eth0/address" >$TEST_DIR/mac &&
    test "$(cat $TEST_DIR/mac)" = "$("$VMCKPT_QEMU_TOOL" --mac-for g2)"
'

MPI_OPTS="--allow-run-as-root --mca plm_rsh_agent 'dbclient -y -y -i /root/.ssh/id_dropbear' --mca pml ob1 --mca btl self,tcp --mca btl_tcp_if_include eth0 --mca oob_tcp_if_include eth0"
test_expect_success 'heat across the three guests: the checksum of a run without VMs' '
    lab ssh $LAB g1 "mpirun $MPI_OPTS -np 3 --host g1,g2,g3 heat -n 96 -i 300" >$TEST_DIR/vm.out 2>$TEST_DIR/vm.err &&
    cat $TEST_DIR/vm.out &&
    ASAN_OPTIONS=detect_leaks=0 mpirun --allow-run-as-root --oversubscribe --mca pml ob1 \
        --mca btl self,vader -np 3 "$top_builddir/examples/mpi/heat" -n 96 -i 300 >$TEST_DIR/host.out &&
    cat $TEST_DIR/host.out &&
    grep -q "ranks=3 checksum=" $TEST_DIR/vm.out &&
    test "$(grep -o "checksum=.*" $TEST_DIR/vm.out)" = "$(grep -o "checksum=.*" $TEST_DIR/host.out)"
'

test_expect_success 'ring across the three guests' '
    lab ssh $LAB g2 "mpirun $MPI_OPTS -np 3 --host g1,g2,g3 ring -l 20" 2>/dev/null | tee $TEST_DIR/ring.out &&
    grep -qx "ring: laps=20 ranks=3 token=630 ok" $TEST_DIR/ring.out
'

test_expect_success 'memwriter verifies its memory: PASS while writing' '
    log=$(lab log $LAB g3) &&
    lab ssh $LAB g3 "setsid memwriter -m 16 -r 2000 </dev/null >/dev/console 2>&1 &" &&
    wait_until 20 "grep -aq \"memwriter: gen=\" $log" &&
    lab ssh $LAB g3 "killall -USR1 memwriter" &&
    wait_until 20 "grep -aq \"memwriter: verify PASS\" $log" &&
    ! grep -aq "verify FAIL" $log
'

test_expect_success 'a byte flipped through the shared RAM backend: memwriter FAILs' '
    log=$(lab log $LAB g2) &&
    lab ssh $LAB g2 "setsid memwriter -m 16 -r 0 -p 0 </dev/null >/dev/console 2>&1 &" &&
    wait_until 20 "grep -aq \"memwriter: page 0 at phys 0x[0-9a-f]*[1-9a-f]\" $log" &&
    phys=$(grep -ao "page 0 at phys 0x[0-9a-f]*" $log | tail -n 1 | cut -d" " -f5) &&
    lab ssh $LAB g2 "killall -USR1 memwriter" &&
    wait_until 20 "grep -aq \"memwriter: verify PASS gen=0\" $log" &&
    lab poke $LAB g2 $((phys + 1234)) &&
    lab ssh $LAB g2 "killall -USR1 memwriter" &&
    wait_until 20 "grep -aq \"memwriter: verify FAIL gen=0: 1 bad page(s), first page 0 (phys $phys) at byte 1234\" $log"
'

test_expect_success 'a guest socket path over 107 bytes: refused before QEMU starts, naming VMCKPT_LAB_RUN' '
    long=$VMCKPT_LAB_RUN/$(printf "d%.0s" $(seq 1 90)) &&
    ! VMCKPT_LAB_RUN=$long lab vm-start $LAB h1 g9 --no-wait 2>$TEST_DIR/long.err &&
    cat $TEST_DIR/long.err &&
    grep -q "is 1[0-9][0-9] bytes, over the 107 a UNIX socket allows; set VMCKPT_LAB_RUN" $TEST_DIR/long.err &&
    ! ls /dev/shm | grep -q "^vmckpt-lab-$LAB-g9" &&
    ! pgrep -f "vmckpt-lab-$LAB-g9"
'

test_expect_success 'lab down removes namespaces, guests, RAM files and run state' '
    lab down $LAB &&
    ! ip netns list | grep -q "^vl-$LAB-" &&
    ! ls /dev/shm | grep -q "^vmckpt-lab-$LAB-" &&
    ! pgrep -f "/dev/shm/vmckpt-lab-$LAB-" &&
    test ! -e "$VMCKPT_LAB_RUN/$LAB"
'

test_expect_success 'after a killed run, lab down still leaves nothing behind' '
    setsid bash -c "\"$LAB_CMD\" up k$$ 2 && \"$LAB_CMD\" vm-start k$$ h1 g1 &&
        \"$LAB_CMD\" vm-start k$$ h2 g2 --no-wait && sleep 600" >$TEST_DIR/killed.out 2>&1 &
    runner=$! &&
    wait_until 120 "grep -q \"g1 up\" $TEST_DIR/killed.out" &&
    kill -9 -- -$runner &&
    ip netns list | grep -q "^vl-k$$-h1" &&
    lab down k$$ &&
    ! ip netns list | grep -q "^vl-k$$-" &&
    ! ls /dev/shm | grep -q "^vmckpt-lab-k$$-" &&
    ! pgrep -f "/dev/shm/vmckpt-lab-k$$-" &&
    ! ip link show | grep -q "tap-g[12]" &&
    test ! -e "$VMCKPT_LAB_RUN/k$$"
'

test_done
