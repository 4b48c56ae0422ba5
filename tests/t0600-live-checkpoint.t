#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The spine: a guest running memwriter on host h1 is checkpointed live to
# h2's store, twice (the second incremental; both in parallel streams, the
# second LZ4-compressed); h1 dies; the guest comes back
# on h2 from h2's store and memwriter's own verification passes. A store
# killed mid-checkpoint aborts it without stopping the guest; damaged
# images and bad names are refused.
. "$top_srcdir/tests/lib/cluster.sh"

command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed"
command -v dropbearkey >/dev/null || skip_all "dropbear-bin not installed"
require_kernel 6 7 "userfaultfd async write-protect"
guest_tests_exclusive

export VMCKPT_QEMU_TOOL="$top_builddir/lib/qemu/vmckpt-qemu"
# the lab's run state (g1's sockets) in the cluster's short run directory,
# removed with it
export VMCKPT_LAB_RUN="$RUN_BASE/lab"
export VMCKPT_UFFD_PRELOAD="$top_builddir/agent/hv/libvmckpt-uffd.so"
export VMCKPT_LAB_IMAGE="$top_builddir/lab"
VMTOOL="$top_builddir/agent/vmtool/vmckpt-vmtool"
FLIP="$top_builddir/tests/tools/tlsflip"
lab() { "$LAB_CMD" "$@"; }
RUN=$VMCKPT_LAB_RUN/$LAB
# how vmtool proves itself to a store: HOST's credential
cred() { echo "--config $TEST_DIR/$1/vmckpt.conf"; }
guest() { echo --name g1 --pid "$(cat $RUN/g1.pid)" --qmp $RUN/g1.qmp --ram "$(lab ram $LAB g1)"; }
last_gen() { grep -ao "memwriter: gen=[0-9]*" "$(lab log $LAB g1)" | tail -n 1 | cut -d= -f2; }
field() { sed -n "s/.* $1 \([0-9]*\).*/\1/p" "$2"; }

test_expect_success 'setup: image, three hosts with agents, g1 on h1 running memwriter' '
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >/dev/null &&
    cluster_up 3 && start_coordinator &&
    start_agent h1 && start_agent h2 -o agent.store_tickets=no &&
    wait_until 10 "hosts_up h1 h2" &&
    lab vm-start $LAB h1 g1 --run "memwriter -m 64 -r 2000 -p 1" &&
    wait_until 20 "test -n \"\$(last_gen)\""
'

test_expect_success 'live checkpoint to h2 in 2 streams: durable, the guest ran during pre-copy, short pause' '
    in_host h1 "$VMTOOL" checkpoint $(guest) --job j1 --epoch 1 --streams 2 \
        --store 198.18.0.12:7471 $(cred h1) >$TEST_DIR/e1.out &&
    cat $TEST_DIR/e1.out &&
    grep -q "epoch 1 (full) durable" $TEST_DIR/e1.out &&
    # the guest wrote pages while round 0 copied its memory: it ran (its
    # printed counter moves once a second, slower than a fast checkpoint)
    w0=$(sed -n "s/^round 0: .*, \([0-9]*\) written meanwhile.*/\1/p" $TEST_DIR/e1.out) &&
    test "${w0:-0}" -gt 0 &&
    pause=$(field pause_us $TEST_DIR/e1.out) total=$(field total_ms $TEST_DIR/e1.out) &&
    test "$pause" -lt $((total * 1000 / 4)) &&
    grep -q " streams 2$" $TEST_DIR/e1.out &&
    grep_log $TEST_DIR/h2/agent.log "writes j1/g1 epoch 1 (full, 2 streams)" &&
    grep_log $TEST_DIR/h2/agent.log "store: j1/g1 epoch 1 durable"
'

GEN_BEFORE_E2=$(last_gen)
test_expect_success 'second checkpoint (3 streams, LZ4) is incremental: only pages written since the first cut' '
    wait_until 20 "test \"\$(last_gen)\" -gt $GEN_BEFORE_E2" &&
    in_host h1 "$VMTOOL" checkpoint $(guest) --job j1 --epoch 2 --parent 1 \
        --streams 3 --lz4 --store 198.18.0.12:7471 $(cred h1) >$TEST_DIR/e2.out &&
    cat $TEST_DIR/e2.out &&
    p1=$(field pages $TEST_DIR/e1.out) p2=$(field pages $TEST_DIR/e2.out) &&
    test "$p2" -lt $((p1 / 2)) &&
    grep -q "epoch 2 (delta) durable" $TEST_DIR/e2.out &&
    grep_log $TEST_DIR/h2/agent.log "writes j1/g1 epoch 2 (delta, 3 streams)" &&
    test "$(field wire_bytes $TEST_DIR/e2.out)" -lt "$(field raw_bytes $TEST_DIR/e2.out)"
'

test_expect_success 'a man in the middle alters one record of a page stream: the store drops it, epoch 3 fails, the committed epochs are untouched' '
    d=$TEST_DIR/h2/state/store/j1/g1 && ls -a $d >$TEST_DIR/files.before &&
    cp $d/manifest $TEST_DIR/manifest.before &&
    (in_host h2 "$FLIP" 198.18.0.12:7480 198.18.0.12:7471 40 >$TEST_DIR/flip.out 2>&1 &) &&
    wait_until 10 "grep -q listening $TEST_DIR/flip.out" &&
    ! in_host h1 "$VMTOOL" checkpoint $(guest) --job j1 --epoch 3 --parent 2 \
        --store 198.18.0.12:7480 $(cred h1) >$TEST_DIR/e3x.out 2>&1 &&
    cat $TEST_DIR/e3x.out && cat $TEST_DIR/flip.out &&
    grep -q "flipped record 40" $TEST_DIR/flip.out &&
    grep -q "checkpoint failed; the guest keeps running" $TEST_DIR/e3x.out &&
    grep_log $TEST_DIR/h2/agent.log "store: .*TLS: .*bad record mac" &&
    cmp $d/manifest $TEST_DIR/manifest.before &&
    wait_until 10 "ls -a $d | cmp -s - $TEST_DIR/files.before"
'

test_expect_success 'host h1 dies (agent and QEMU killed, namespace gone)' '
    lab kill-host $LAB h1 &&
    ! ip netns list | grep -q "^vl-$LAB-h1 " &&
    wait_until 10 "test \"\$(host_state h1)\" = lost"
'

restore_g1() {  # epoch
    in_host h2 "$VMTOOL" restore-local --store-dir $TEST_DIR/h2/state/store \
        --job j1 --vm g1 --epoch "$1" --ram-out /dev/shm/vmckpt-t-$LAB.ram \
        --state-out $TEST_DIR/g1.state &&
    lab vm-start $LAB h2 g1 --restore-ram /dev/shm/vmckpt-t-$LAB.ram &&
    in_host h2 "$VMTOOL" load $(guest) --state $TEST_DIR/g1.state --resume
}

test_expect_success 'g1 restored on h2 from epoch 2: memwriter continues and verifies' '
    restore_g1 2 &&
    wait_until 20 "test -n \"\$(last_gen)\"" &&
    first=$(grep -ao "memwriter: gen=[0-9]*" "$(lab log $LAB g1)" | head -n 1 | cut -d= -f2) &&
    test "$first" -gt "$GEN_BEFORE_E2" &&
    lab ssh $LAB g1 "killall -USR1 memwriter" &&
    wait_until 20 "grep -aq \"memwriter: verify PASS\" \"$(lab log $LAB g1)\"" &&
    ! grep -aq "verify FAIL" "$(lab log $LAB g1)" &&
    lab ssh $LAB g1 "ping -c1 -W3 198.18.0.12"
'

test_expect_success 'the older epoch 1 restores too, and verifies' '
    lab vm-stop $LAB g1 &&
    restore_g1 1 &&
    lab ssh $LAB g1 "killall -USR1 memwriter" &&
    wait_until 20 "grep -aq \"memwriter: verify PASS\" \"$(lab log $LAB g1)\"" &&
    ! grep -aq "verify FAIL" "$(lab log $LAB g1)"
'

test_expect_success 'store killed mid-checkpoint: clear failure, guest keeps running, nothing durable' '
    start_agent h3 -o agent.store_tickets=no && wait_until 10 "test \"\$(host_state h3)\" = up" &&
    (in_host h2 "$VMTOOL" checkpoint $(guest) --job j1 --epoch 3 --streams 2 \
        --store 198.18.0.13:7471 $(cred h2) >$TEST_DIR/e3.out 2>&1; echo "rc=$?" >>$TEST_DIR/e3.out) &
    wait_until 20 "grep -q \"writes j1/g1 epoch 3\" $TEST_DIR/h3/agent.log" &&
    stop_daemon h3 KILL && wait &&
    cat $TEST_DIR/e3.out &&
    grep -q "checkpoint failed; the guest keeps running" $TEST_DIR/e3.out &&
    grep -q "rc=1" $TEST_DIR/e3.out &&
    wait_until 20 "test -n \"\$(last_gen)\"" && g=$(last_gen) &&
    wait_until 20 "test \"\$(last_gen)\" -gt $g" &&
    ! grep -qs "^epoch 3" $TEST_DIR/h3/state/store/j1/g1/manifest &&
    in_host h2 "$VMTOOL" restore-local --store-dir $TEST_DIR/h2/state/store \
        --job j1 --vm g1 --epoch 2 --ram-out $TEST_DIR/check.ram --state-out $TEST_DIR/check.state &&
    rm -f $TEST_DIR/check.ram
'

test_expect_success 'a flipped byte in a stored image: restore refuses and says where' '
    f=$TEST_DIR/h2/state/store/j1/g1/e2.pages &&
    cp $f $TEST_DIR/e2.pages.orig &&
    size=$(stat -c %s $f) && off=$((size > 5000 ? 5000 : size / 2)) &&
    flip_byte $f $off && ! cmp -s $f $TEST_DIR/e2.pages.orig &&
    test "$(stat -c %s $f)" = "$size" &&
    ! in_host h2 "$VMTOOL" restore-local --store-dir $TEST_DIR/h2/state/store \
        --job j1 --vm g1 --epoch 2 --ram-out $TEST_DIR/x.ram --state-out $TEST_DIR/x.state 2>$TEST_DIR/err &&
    cat $TEST_DIR/err &&
    grep -q "j1/g1 epoch 2: damaged \(batch\|record\) .*in .*e2.pages at offset [0-9]*" $TEST_DIR/err &&
    test ! -e $TEST_DIR/x.ram &&
    cp $TEST_DIR/e2.pages.orig $f
'

test_expect_success 'job or VM names with ../ or / are refused by the store' '
    start_agent h3 -o agent.store_tickets=no && wait_until 10 "test \"\$(host_state h3)\" = up" &&
    ! in_host h2 "$VMTOOL" checkpoint $(guest) --job ../x --epoch 1 \
        --store 198.18.0.13:7471 $(cred h2) 2>$TEST_DIR/err &&
    cat $TEST_DIR/err && grep -q "refused job/VM name" $TEST_DIR/err &&
    ! in_host h2 "$VMTOOL" checkpoint $(guest) --job a/b --epoch 1 \
        --store 198.18.0.13:7471 $(cred h2) 2>/dev/null &&
    test ! -e $TEST_DIR/h3/state/x && test ! -e $TEST_DIR/h3/state/store/a &&
    grep_log $TEST_DIR/h3/agent.log "refused job/VM name"
'

test_expect_success 'clean stop, no sanitizer report' '
    kill $(sed -n "s/^listening on .* pid //p" $TEST_DIR/flip.out) 2>/dev/null;
    lab vm-stop $LAB g1 && stop_daemon h2 && stop_daemon h3 && stop_daemon co &&
    no_sanitizer_reports
'
rm -f /dev/shm/vmckpt-t-$LAB.ram
test_done
