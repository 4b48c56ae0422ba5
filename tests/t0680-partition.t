#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Fencing by lease: a host cut off from the fabric while its agent and its
# guest run on. Its agent pauses the guest when its lease ends; the
# coordinator restores the job elsewhere only after that lease has surely
# ended, so at no moment do two copies of a guest run; when the link comes
# back the old copy is destroyed as stale, one QEMU of each guest remains,
# memwriter verifies and the next checkpoint commits. Without auto_restart,
# a host cut off and back runs its fenced guests again once the coordinator
# says so.
. "$top_srcdir/tests/lib/cluster.sh"

command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed"
command -v dropbearkey >/dev/null || skip_all "dropbear-bin not installed"
tracking_mode
guest_tests_exclusive

IMG="$top_builddir/lab"
GUEST_JOB=j4
ip_of() { echo "198.18.1.$((40 + ${1#g}))"; }
co_log="$TEST_DIR/co/coordinator.log"
h1_log="$TEST_DIR/h1/agent.log"
# h1's end of its veth to the fabric (scripts/vmckpt-lab: one per host)
fabric_link() { ip -n "vl-$LAB-fab" link set vh1 "$1"; }


test_expect_success 'setup: two hosts, job j4 of two guests running memwriter, auto_restart, epoch 1 committed' '
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >/dev/null &&
    guest_cluster_up 2 &&
    for i in 1 2; do
        vmckpt vm start --job j4 --name g$i --host h$i --mem 256 --kernel "$IMG/vmlinux" \
            --initrd "$IMG/initrd.img" --ip $(ip_of g$i)/16 \
            --append "vmckpt.run=memwriter,-m,32,-r,1000,-p,1" || exit 1
    done &&
    for i in 1 2; do wait_until 90 "test -n \"\$(gen_now g$i h$i)\"" || exit 1; done &&
    vmckpt job set j4 --auto-restart yes | grep -q "auto_restart yes" &&
    vmckpt checkpoint j4 --wait >$TEST_DIR/c1.out && cat $TEST_DIR/c1.out &&
    grep -q "job j4: epoch 1 committed: 2 VM(s)" $TEST_DIR/c1.out &&
    grep_log $h1_log "lease 2450 ms" &&
    exactly_once g1 g2 &&
    test "$(job_field incarnation)" = 1
'

test_expect_success 'h1 cut off: its agent pauses g1 when its lease ends, the job is restored on h2 only after that' '
    fabric_link down &&
    wait_until 20 "grep -q \"fence: paused j4/g1\" $h1_log" &&
    grep_log $h1_log "fence: lease of 2450 ms ended" &&
    fenced_gen=$(gen_now g1 h1) && echo "old g1 stopped at gen $fenced_gen" &&
    echo "fenced_gen=$fenced_gen" >$TEST_DIR/fenced &&
    wait_until 20 "grep -q \"host h1: up -> lost\" $co_log" &&
    wait_until 120 "grep -q \"job j4 restarted from epoch 1: 2 VM(s)\" $co_log" &&
    grep "job j4: host h1 (lost): its lease ended" $co_log &&
    grep_log $co_log "job j4: host h1 (lost): its lease ended [0-9]* ms ago (last granted [0-9]* ms ago, lease 2450 ms, margin 549 ms)" &&
    fenced=$(at_ms $h1_log "fence: paused j4/g1") &&
    restored=$(at_ms $co_log "job j4: restore g1 on h2") &&
    echo "g1 paused on h1 at $fenced ms, its restore on h2 asked at $restored ms" &&
    test "$fenced" -lt "$restored" &&
    wait_until 60 "test -n \"\$(first_gen_restored g1 h2)\"" &&
    wait_until 30 "test \"\$(gen_now g1 h2)\" -gt \"\$(first_gen_restored g1 h2)\"" &&
    echo "old g1 at gen $(gen_now g1 h1), restored g1 at gen $(gen_now g1 h2)" &&
    test "$(gen_now g1 h1)" = "$fenced_gen" &&
    test "$(qemu_count g1 h1)" = 1 && test "$(qemu_count g1 h2)" = 1 &&
    test "$(job_field incarnation)" = 2 && grep_log $co_log "job j4: incarnation 2"
'

test_expect_success 'link up: the stale copy on h1 is destroyed, one QEMU per guest, memwriter verifies' '
    . $TEST_DIR/fenced &&
    test "$(gen_now g1 h1)" = "$fenced_gen" &&
    fabric_link up &&
    wait_until 30 "grep -q \"vm j4/g1: stale copy on h1\" $co_log" &&
    grep_log $co_log "vm j4/g1: stale copy on h1 (incarnation 1; the VM is [a-z]* on h2 under incarnation 2)" &&
    wait_until 15 "grep -q \"j4/g1 (pid [0-9]*) is a stale copy, of incarnation 1\" $h1_log" &&
    vmckpt status j4 >$TEST_DIR/st.out && cat $TEST_DIR/st.out &&
    grep -qx "incarnation 2 (restarted 1 time)" $TEST_DIR/st.out &&
    grep -qx "stale copies destroyed: g1 on h1 (incarnation 1)" $TEST_DIR/st.out &&
    test "$(job_field stale_copies_destroyed)" = "g1 on h1 (incarnation 1)" &&
    ! grep -q "reported by h1, catalog had" $co_log &&
    wait_until 15 "test \"\$(qemu_count g1 h1)\" = 0" &&
    wait_until 10 "grep -q \"fence lifted by the coordinator\" $h1_log" &&
    grep_log $h1_log "guest j4/g1 stopped" &&
    test "$(host_state h1)" = up &&
    test "$(vm_field g1 host)" = h2 && test "$(vm_field g1 state)" = running &&
    exactly_once g1 g2 &&
    for i in 1 2; do in_guest g$i "killall -USR1 memwriter" || exit 1; done &&
    for i in 1 2; do
        wait_until 30 "since_restore g$i h2 | grep -aq \"memwriter: verify PASS\"" &&
        ! since_restore g$i h2 | grep -aq "verify FAIL" || exit 1
    done
'

test_expect_success 'the next checkpoint commits' '
    wait_until 10 "test \"\$(job_field state)\" = running" &&
    vmckpt checkpoint j4 --wait >$TEST_DIR/c2.out && cat $TEST_DIR/c2.out &&
    grep -q "job j4: epoch 2 committed: 2 VM(s)" $TEST_DIR/c2.out &&
    exactly_once g1 g2
'

test_expect_success 'without auto_restart, h2 cut off and back: its fenced guests resume only when the coordinator says so' '
    vmckpt job set j4 --auto-restart no | grep -q "auto_restart no" &&
    n=$(grep -c "fence: paused j4/g2" $TEST_DIR/h2/agent.log || true) &&
    ip -n "vl-$LAB-fab" link set vh2 down &&
    wait_until 20 "test \$(grep -c \"fence: paused j4/g2\" $TEST_DIR/h2/agent.log) -gt $n" &&
    wait_until 20 "test \"\$(host_state h2)\" = lost" &&
    g=$(gen_now g2 h2) && wait_until 10 "test \"\$(job_field state)\" = failed" &&
    test "$(gen_now g2 h2)" = "$g" &&
    ip -n "vl-$LAB-fab" link set vh2 up &&
    wait_until 30 "grep -q \"fence: resumed j4/g2\" $TEST_DIR/h2/agent.log" &&
    wait_until 10 "test \"\$(gen_now g2 h2)\" -gt $g" &&
    wait_until 10 "test \"\$(job_field state)\" = running" &&
    ! grep -q "stale copy on h2" $co_log &&
    exactly_once g1 g2
'

test_expect_success 'vmckpt fence: help, and refused for a host that is up or unknown' '
    vmckpt fence --help | grep -q "^Usage: vmckpt fence HOST" &&
    ! vmckpt fence h1 2>$TEST_DIR/f1.err && cat $TEST_DIR/f1.err &&
    grep -q "host h1 is up and heartbeating" $TEST_DIR/f1.err &&
    ! vmckpt fence nosuch 2>$TEST_DIR/f2.err && grep -q "no host .nosuch." $TEST_DIR/f2.err
'

test_expect_success 'clean stop; no sanitizer report' '
    for i in 1 2; do vmckpt vm stop --job j4 --name g$i >/dev/null || exit 1; done &&
    stop_daemon h1 && stop_daemon h2 && stop_daemon co &&
    no_sanitizer_reports
'
test_done
