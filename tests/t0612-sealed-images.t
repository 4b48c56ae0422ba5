#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Images at rest, sealed (docs/security.md, 'Images at rest'): with
# [coordinator] seal_images the agent seals a guest's page batches and
# device state with its job's key before they leave for the peer's store,
# so the store keeps pages it cannot read. memwriter begins every page it
# writes with the bytes "etirwmem": a clear epoch on the store holds them,
# a sealed one holds none. Sealed chains are not folded (the store has no
# key): retention keeps the chain a kept epoch needs. The coordinator
# checks its data key against the catalog's check value and will not start
# with another or make a new one while sealed epochs need it. A restore
# with the wrong key fails and leaves nothing; with the right one the guest comes
# back and memwriter verifies every page. A guest with a disk: its sealed
# epoch's disk layers hold none of what it wrote, and it restores from
# them both fetched and from the local store.
. "$top_srcdir/tests/lib/cluster.sh"

command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed"
command -v dropbearkey >/dev/null || skip_all "dropbear-bin not installed"
require_kernel 6 7 "userfaultfd async write-protect"
guest_tests_exclusive

IMG="$top_builddir/lab"
guest_log() { echo "$RUN_BASE/$1/default-g1.log"; }
in_guest() { in_host co dbclient -y -y -i "$IMG/lab.key" root@198.18.1.1 "$@" 2>/dev/null; }
catalog() { sqlite3 "$TEST_DIR/co/state/catalog.db" "$1"; }
VMDIR() { echo "$TEST_DIR/$1/state/store/default/g1"; }
manifest() { cat "$(VMDIR "$1")/manifest" 2>/dev/null; }
# marks FILE: how many times memwriter's page mark is in FILE
marks() { grep -aoc etirwmem "$1"; }
# a new generation of memwriter's pages since the last look
next_gen() {
    local g
    g=$(grep -ao "memwriter: gen=[0-9]*" "$(guest_log h1)" | tail -n 1 | cut -d= -f2)
    wait_until 20 "grep -ao \"memwriter: gen=[0-9]*\" $(guest_log h1) | tail -n 1 | grep -qv \"gen=$g\$\""
}
restart_coordinator() {
    stop_daemon co && start_coordinator &&
        wait_until 20 "hosts_up h2 h3"
}

test_expect_success 'setup: three hosts, g1 on h1 running memwriter' '
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >/dev/null &&
    cluster_up 3 &&
    agents_for_guests h1 h2 h3 &&
    start_coordinator && start_agent h1 && start_agent h2 && start_agent h3 &&
    wait_until 10 "hosts_up h1 h2 h3" &&
    vmckpt vm start --name g1 --host h1 --kernel "$IMG/vmlinux" --initrd "$IMG/initrd.img" \
        --ip 198.18.1.1/16 --append "vmckpt.run=memwriter,-m,64,-r,2000,-p,1" &&
    wait_until 60 "grep -aq \"memwriter: gen=\" $(guest_log h1)"
'

test_expect_success 'seal_images off: epoch 1 is stored clear, its pages readable on h2' '
    vmckpt checkpoint --vm g1 | tee $TEST_DIR/c1.out | grep -q "epoch 1 committed (full, on h2)" &&
    test ! -e $TEST_DIR/co/state/data.key &&
    test "$(marks "$(VMDIR h2)/e1.pages")" -gt 1000 &&
    manifest h2 | grep "^epoch 1 " | grep -vq sealed
'

# (a coordinator that starts again knows no QEMU's chain: its next epoch
# of each guest is full)
test_expect_success 'seal_images on: the data key is made (0600), epochs 2 to 4 are sealed: no page mark on h2' '
    sed -i "/^\[coordinator\]/a seal_images = yes" $TEST_DIR/co/vmckpt.conf &&
    restart_coordinator &&
    test "$(stat -c %a $TEST_DIR/co/state/data.key)" = 600 &&
    test "$(stat -c %s $TEST_DIR/co/state/data.key)" = 32 &&
    grep -q "new epochs are stored sealed" $TEST_DIR/co/coordinator.log &&
    next_gen &&
    vmckpt checkpoint --vm g1 | grep -q "epoch 2 committed (full, on h2)" &&
    grep_log $TEST_DIR/h1/agent.log "checkpoint of default/g1 epoch 2 (full, sealed) to" &&
    for e in 3 4; do
        next_gen &&
        vmckpt checkpoint --vm g1 | grep -q "epoch $e committed (incremental, on h2)" || exit 1
    done &&
    for e in 2 3 4; do
        p=$(catalog "select pages from epochs where epoch=$e") && test "$p" -gt 100 &&
        test "$(marks "$(VMDIR h2)/e$e.pages")" = 0 &&
        test "$(marks "$(VMDIR h2)/e$e.state")" = 0 &&
        test "$(head -c 4 "$(VMDIR h2)/e$e.state")" = SST1 &&
        manifest h2 | grep -q "^epoch $e parent $((e > 2 ? e - 1 : 0)) .* sealed 1$" || exit 1
    done &&
    vmckpt list default --all &&
    test "$(vmckpt list default --all --json | jq -r "[.[] | select(.vm == \"g1\") | \"\(.epoch):\(.sealed)\"] | join(\" \")")" = \
        "1:false 2:true 3:true 4:true" &&
    vmckpt list default --all | grep -Eq "^ +4 +g1 .* sealed$"
'

test_expect_success 'retention: epochs 1 and 2 expire in the catalog; the store drops 1 but keeps 2, which the kept sealed 3 builds on, unfolded' '
    test "$(catalog "select group_concat(epoch) from epochs where state=\"committed\"")" = "3,4" &&
    test "$(catalog "select group_concat(epoch) from epochs where state=\"expired\"")" = "1,2" &&
    wait_until 30 "grep -q \"store: default/g1: epochs 2 to 2 kept, a kept sealed epoch builds on them\" $TEST_DIR/h2/agent.log" &&
    wait_until 30 "test \"\$(manifest h2 | grep -c ^epoch)\" = 3" &&
    test "$(manifest h2 | grep ^epoch | cut -d" " -f2 | tr "\n" " ")" = "2 3 4 " &&
    ! manifest h2 | grep -q "base 1" &&
    test ! -e "$(VMDIR h2)/e1.pages" && test -e "$(VMDIR h2)/e2.pages" &&
    test ! -e "$(VMDIR h2)/e3.base"
'

meta_check() { catalog "select value from meta where key='data_key_check'"; }
drop_meta_check() { catalog "delete from meta where key='data_key_check'"; }
test_expect_success 'h1 dies; the data key is checked against the catalog: another key, or none, is refused at start, and none is made anew' '
    "$LAB_CMD" kill-host $LAB h1 &&
    wait_until 10 "test \"\$(host_state h1)\" = lost" &&
    stop_daemon co &&
    meta_check | grep -Eq "^[0-9a-f]{16}$" &&
    mv $TEST_DIR/co/state/data.key $TEST_DIR/data.key.right &&
    head -c 32 /dev/urandom >$TEST_DIR/co/state/data.key &&
    chmod 600 $TEST_DIR/co/state/data.key &&
    ! start_coordinator &&
    grep -q "data.key is not the data key that sealed the catalog.s [1-9][0-9]* sealed epochs (its check value is [0-9a-f]*, theirs $(meta_check))" \
        $TEST_DIR/co/coordinator.log &&
    rm $TEST_DIR/co/state/data.key &&
    ! start_coordinator &&
    grep -q "data.key is missing, and the catalog holds [1-9][0-9]* sealed epochs that only the key that sealed them opens (its check value: $(meta_check))" \
        $TEST_DIR/co/coordinator.log &&
    test ! -e $TEST_DIR/co/state/data.key
'

# A catalog from before the check (its meta row deleted): a wrong key
# reaches the agents, which must find it out themselves.
test_expect_success 'a catalog without a check value: a restore with the wrong data key fails, names the epoch, leaves nothing' '
    head -c 32 /dev/urandom >$TEST_DIR/co/state/data.key &&
    chmod 600 $TEST_DIR/co/state/data.key &&
    drop_meta_check &&
    start_coordinator &&
    grep -q "data.key: the catalog holds [1-9][0-9]* sealed epochs and no check value of the key that sealed them" \
        $TEST_DIR/co/coordinator.log &&
    test -z "$(meta_check)" &&
    wait_until 20 "hosts_up h2 h3" &&
    ! vmckpt restore --vm g1 --host h3 >$TEST_DIR/bad.out 2>&1 &&
    cat $TEST_DIR/bad.out &&
    grep -q "default/g1 epoch 4" $TEST_DIR/bad.out &&
    grep -q "does not open" $TEST_DIR/bad.out &&
    ! pgrep -f "qemu-system.*default-g1" >/dev/null &&
    test ! -e /dev/shm/vmckpt-restore-default-g1.ram
'

test_expect_success 'with the right key: g1 comes back on h3 from the sealed chain on h2; memwriter verifies' '
    stop_daemon co &&
    mv $TEST_DIR/data.key.right $TEST_DIR/co/state/data.key &&
    start_coordinator &&
    wait_until 20 "hosts_up h2 h3" &&
    vmckpt restore --vm g1 --host h3 >$TEST_DIR/r.out && cat $TEST_DIR/r.out &&
    grep -q "default/g1 restored from epoch 4 on h3" $TEST_DIR/r.out &&
    wait_until 20 "grep -aq \"memwriter: gen=\" $(guest_log h3)" &&
    in_guest "killall -USR1 memwriter" &&
    wait_until 20 "grep -aq \"memwriter: verify PASS\" $(guest_log h3)" &&
    ! grep -aq "verify FAIL" $(guest_log h3)
'

# g2 on h3 with a disk: its sealed epoch's disk layers on h2 hold none of
# the mark it wrote to its disk, and .seal files beside them; it restores
# on h3 (fetched from h2) and on h2 (from its own store), the file whole.
MARK=vmckpt-sealed-disk-mark
in_g2() { in_host co dbclient -y -y -i "$IMG/lab.key" root@198.18.1.2 "$@" 2>/dev/null; }
g2_dir() { echo "$TEST_DIR/h2/state/store/default/g2"; }
kill_g2() {
    in_host $1 pkill -KILL -f "qemu-system.*default-g2" &&
        wait_until 20 "vmckpt vm list | grep -Eq \"^default +g2 +$1 +exited \""
}
test_expect_success 'a guest with a disk, sealed: no clear byte of its disk on the store' '
    vmckpt vm start --name g2 --host h3 --kernel "$IMG/vmlinux" --initrd "$IMG/initrd.img" \
        --ip 198.18.1.2/16 --disk "$IMG/disk.img,format=raw" --append "vmckpt.run=memwriter,-m,16,-r,100,-p,1" &&
    wait_until 60 "grep -aq \"vmckpt-guest: disk mounted\" $RUN_BASE/h3/default-g2.log" &&
    wait_until 30 "in_g2 true" &&
    in_g2 "yes $MARK | head -c 4194304 >/mnt/disk/sealmark && sync && sha256sum /mnt/disk/sealmark" >$TEST_DIR/mark.sum &&
    test -s $TEST_DIR/mark.sum &&
    vmckpt checkpoint --vm g2 >$TEST_DIR/g2c.out && cat $TEST_DIR/g2c.out &&
    e=$(sed -n "s/.*epoch \([0-9]*\) committed (full, on h2).*/\1/p" $TEST_DIR/g2c.out) &&
    test -n "$e" && echo $e >$TEST_DIR/g2.epoch &&
    ls -l $(g2_dir) &&
    ls $(g2_dir)/e$e.d0.l*.seal >/dev/null &&
    for f in $(g2_dir)/e$e.d0.l[0-9]; do
        test "$(grep -ac $MARK "$f")" = 0 || exit 1
    done &&
    test "$(grep -ac $MARK $(g2_dir)/e$e.pages)" = 0 &&
    manifest_g2=$(cat $(g2_dir)/manifest) &&
    echo "$manifest_g2" | grep -q "^epoch $e parent 0 .* sealed 1$"
'

test_expect_success 'g2 restored on h3 (fetched from h2) and on h2 (its own store): the disk file is whole' '
    e=$(cat $TEST_DIR/g2.epoch) &&
    kill_g2 h3 &&
    vmckpt restore --vm g2 --host h3 --epoch $e | grep -q "default/g2 restored from epoch $e on h3" &&
    wait_until 30 "in_g2 true" &&
    in_g2 "sha256sum /mnt/disk/sealmark" | cmp - $TEST_DIR/mark.sum &&
    test "$(cat $TEST_DIR/h3/state/disks/default/g2/r0.*.qcow2 | grep -ac $MARK)" -gt 0 &&
    kill_g2 h3 &&
    vmckpt restore --vm g2 --host h2 --epoch $e | grep -q "default/g2 restored from epoch $e on h2" &&
    wait_until 30 "in_g2 true" &&
    in_g2 "sha256sum /mnt/disk/sealmark" | cmp - $TEST_DIR/mark.sum &&
    vmckpt vm stop --name g2 | grep -q stopped
'

test_expect_success 'vm stop, clean daemons, no sanitizer report' '
    vmckpt vm stop --name g1 | grep -q stopped &&
    wait_until 10 "test ! -e /dev/shm/vmckpt-default-g1.ram" &&
    stop_daemon h2 && stop_daemon h3 && stop_daemon co &&
    no_sanitizer_reports
'
rm -f /dev/shm/vmckpt-default-g[12].ram /dev/shm/vmckpt-restore-default-g[12].ram
test_done
