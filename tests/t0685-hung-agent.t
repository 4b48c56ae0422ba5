#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Fencing when the agent itself cannot: its fence guard (vmckpt-guard, a
# process of its own) stops the guests' QEMUs when the lease runs out while
# the agent is hung (SIGSTOP) or dead (SIGKILL), so the coordinator's
# restore elsewhere never runs next to a live copy. A hung agent that
# comes back destroys its stale copy; a new agent started after a killed
# one takes the stopped copies over paused and destroys them as stale.
# Each guest runs exactly once before, during and after; memwriter
# verifies and the next checkpoint commits.
. "$top_srcdir/tests/lib/cluster.sh"

command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed"
command -v dropbearkey >/dev/null || skip_all "dropbear-bin not installed"
tracking_mode
guest_tests_exclusive

IMG="$top_builddir/lab"
GUEST_JOB=j6
ip_of() { echo "198.18.1.$((50 + ${1#g}))"; }
co_log="$TEST_DIR/co/coordinator.log"
h1_log="$TEST_DIR/h1/agent.log"
h2_log="$TEST_DIR/h2/agent.log"

# stopped PID: the process is stopped (SIGSTOP)
stopped() { grep -q '^[0-9]* (.*) T ' "/proc/$1/stat" 2>/dev/null; }
# running_once VM...: each guest has exactly one QEMU that is not stopped
running_once() {
    local g n p
    for g in "$@"; do
        n=0
        for p in $(qemu_pids $g); do stopped $p || n=$((n + 1)); done
        echo "$g: $n running QEMU(s) of $(qemu_count $g)"
        [ "$n" = 1 ] || return 1
    done
}

# (keep_epochs=0: no retention, not the subject here, whose fold of the
# oldest epoch kept into a base image is seconds of I/O in a commit)
test_expect_success 'setup: two hosts with fence guards, job j6 of two guests, auto_restart, epoch 1 committed' '
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >/dev/null &&
    guest_cluster_up 2 keep_epochs=0 &&
    grep_log $h1_log "fence guard started (pid [0-9]*)" &&
    for i in 1 2; do
        vmckpt vm start --job j6 --name g$i --host h$i --mem 256 --kernel "$IMG/vmlinux" \
            --initrd "$IMG/initrd.img" --ip $(ip_of g$i)/16 \
            --append "vmckpt.run=memwriter,-m,32,-r,1000,-p,1" || exit 1
    done &&
    for i in 1 2; do wait_until 90 "test -n \"\$(gen_now g$i h$i)\"" || exit 1; done &&
    vmckpt job set j6 --auto-restart yes | grep -q "auto_restart yes" &&
    vmckpt checkpoint j6 --wait | grep -q "job j6: epoch 1 committed: 2 VM(s)" &&
    exactly_once g1 g2
'

test_expect_success 'h1 agent hung (SIGSTOP): its guard stops g1 when the lease ends, the job is restored on h2 only after that' '
    kill -STOP $(pid_of h1) &&
    wait_until 20 "grep -q \"vmckpt-guard warning: stopped the QEMU of j6-g1 (pid [0-9]*)\" $h1_log" &&
    grep_log $h1_log "vmckpt-guard warning: the lease of agent [0-9]* ended [0-9]* ms ago and its loop is silent (hung or stopped): stopping its guests" &&
    p=$(qemu_pids g1 h1) && stopped $p &&
    frozen=$(gen_now g1 h1) && echo "old g1 stopped at gen $frozen" &&
    wait_until 20 "grep -q \"host h1: up -> lost\" $co_log" &&
    wait_until 120 "grep -q \"job j6 restarted from epoch 1: 2 VM(s)\" $co_log" &&
    guarded=$(at_ms $h1_log "stopped the QEMU of j6-g1") &&
    restored=$(at_ms $co_log "job j6: restore g1 on h2") &&
    echo "g1 stopped on h1 at $guarded ms, its restore on h2 asked at $restored ms" &&
    test "$guarded" -lt "$restored" &&
    wait_until 60 "test -n \"\$(first_gen_restored g1 h2)\"" &&
    wait_until 30 "test \"\$(gen_now g1 h2)\" -gt \"\$(first_gen_restored g1 h2)\"" &&
    test "$(gen_now g1 h1)" = "$frozen" && stopped $p &&
    running_once g1 g2
'

test_expect_success 'the hung agent continues: it destroys its stale copy; one QEMU per guest, memwriter verifies' '
    kill -CONT $(pid_of h1) &&
    wait_until 30 "grep -q \"j6/g1 (pid [0-9]*) is a stale copy, of incarnation 1\" $h1_log" &&
    wait_until 15 "test \"\$(qemu_count g1 h1)\" = 0" &&
    wait_until 20 "test \"\$(host_state h1)\" = up" &&
    exactly_once g1 g2 && running_once g1 g2 &&
    for i in 1 2; do in_guest g$i "killall -USR1 memwriter" || exit 1; done &&
    for i in 1 2; do
        wait_until 30 "since_restore g$i h2 | grep -aq \"memwriter: verify PASS\"" &&
        ! since_restore g$i h2 | grep -aq "verify FAIL" || exit 1
    done &&
    vmckpt checkpoint j6 --wait | grep -q "job j6: epoch 2 committed: 2 VM(s)"
'

test_expect_success 'h2 agent killed (SIGKILL), its QEMUs alive: its guard stops them after the lease; the job comes back on h1' '
    n=$(grep -c "job j6 restarted from epoch" $co_log) &&
    kill -KILL $(pid_of h2) &&
    wait_until 20 "grep -q \"vmckpt-guard warning: the lease of agent [0-9]* ended [0-9]* ms ago and the agent is gone\" $h2_log" &&
    wait_until 10 "grep -q \"vmckpt-guard info: agent [0-9]* is gone; nothing left to guard\" $h2_log" &&
    for g in g1 g2; do stopped $(qemu_pids $g h2) || exit 1; done &&
    wait_until 120 "test \$(grep -c \"job j6 restarted from epoch 2\" $co_log) -gt 0" &&
    wait_until 60 "test -n \"\$(first_gen_restored g2 h1)\"" &&
    running_once g1 g2
'

test_expect_success 'a new agent on h2 takes the stopped copies over paused, and destroys them as stale' '
    start_agent h2 &&
    wait_until 20 "grep -q \"guest j6/g2 (pid [0-9]*) was stopped by a fence guard: paused until the coordinator lifts the fence\" $h2_log" &&
    wait_until 30 "test \"\$(qemu_count g1 h2)\" = 0 && test \"\$(qemu_count g2 h2)\" = 0" &&
    grep_log $h2_log "j6/g2 (pid [0-9]*) is a stale copy, of incarnation 2" &&
    exactly_once g1 g2 && running_once g1 g2 &&
    for i in 1 2; do in_guest g$i "killall -USR1 memwriter" || exit 1; done &&
    for i in 1 2; do
        wait_until 30 "since_restore g$i h1 | grep -aq \"memwriter: verify PASS\"" &&
        ! since_restore g$i h1 | grep -aq "verify FAIL" || exit 1
    done &&
    test "$(job_field incarnation)" = 3 &&
    vmckpt checkpoint j6 --wait | grep -q "job j6: epoch 3 committed: 2 VM(s)"
'

test_expect_success 'clean stop: the guards end with their agents; no sanitizer report' '
    for i in 1 2; do vmckpt vm stop --job j6 --name g$i >/dev/null || exit 1; done &&
    stop_daemon h1 && stop_daemon h2 && stop_daemon co &&
    wait_until 10 "! pgrep -f \"vmckpt-guard $RUN_BASE/\" >/dev/null" &&
    no_sanitizer_reports
'
test_done
