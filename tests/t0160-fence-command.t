#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A site's power fencing command (fence_command): run once for each lost
# host whose guests must move, its result logged; while it runs, a restart
# elsewhere waits; a host it reports off counts as fenced, one it fails
# for counts on its lease only. Three fake agents (tests/tools/fakeagents)
# hold one job of three fake VMs; no guest runs.
. "$top_srcdir/tests/lib/cluster.sh"
# the fake agents of tests/tools/fakeagents share one process and speak the cluster key's handshake
CLUSTER_TLS=0

JOB=fj
FAKE="$top_builddir/tests/tools/fakeagents"
REPORT=$TEST_DIR/fake.report
FAKELOG=$TEST_DIR/co/fakeagents.log
FENCE=$TEST_DIR/fence
CO_LOG=$TEST_DIR/co/coordinator.log

cluster_up 1
# the site's command: fake001 waits until the test lets it go, fake002's
# power switch does not answer, fake003 goes off at once
cat >"$FENCE" <<EOF
#!/bin/sh
echo "\$1" >>"$TEST_DIR/fenced.list"
case "\$1" in
fake001) read -r go <"$TEST_DIR/fence-go"
    echo "power switch: \$1 off" ;;
fake002) echo "power switch of \$1: no answer" >&2; exit 1 ;;
*) echo "power switch: \$1 off" ;;
esac
EOF
chmod +x "$FENCE"
# fake001's power switch answers when the test writes to this
mkfifo "$TEST_DIR/fence-go"
sed -i -e 's/^heartbeat_interval_ms = .*/heartbeat_interval_ms = 200/' \
    -e 's/^heartbeat_timeout_ms = .*/heartbeat_timeout_ms = 1500/' \
    -e "/^\[coordinator\]/a fence_command = $FENCE\nfence_timeout_ms = 90000" \
    "$TEST_DIR/co/vmckpt.conf"

t0160_cleanup() {
    local p
    p=$(fake_pid) && [ -n "$p" ] && kill -9 $p 2>/dev/null
    cluster_cleanup
}
trap t0160_cleanup EXIT
fake() { in_host co "$FAKE" $CO_IP:7470 "$TEST_DIR/cluster.key" "$@"; }

test_expect_success 'three fake hosts, a job of three fake VMs, epoch 1 committed' '
    start_coordinator &&
    { fake agents 3 $REPORT >/dev/null 2>$FAKELOG & } &&
    wait_until 30 "grep -q \"3 host(s) registered\" $FAKELOG" &&
    fake start-vms $JOB 3 3 &&
    vmckpt checkpoint $JOB --wait | grep -q "job $JOB: epoch 1 committed: 3 VM(s)" &&
    ! test -e $TEST_DIR/fenced.list
'

test_expect_success 'the hosts are lost: the command runs once for each, its results logged' '
    kill -9 $(fake_pid) &&
    for h in fake001 fake002 fake003; do
        wait_until 20 "grep -q \"host $h: up -> lost\" $CO_LOG" || exit 1
    done &&
    wait_until 20 "grep -q \"host fake003 fenced by fence_command (exit 0, [0-9]* ms): power switch: fake003 off\" $CO_LOG" &&
    wait_until 20 "grep -q \"host fake002: fence_command failed (exit 1, [0-9]* ms): power switch of fake002: no answer; its guests move only once its lease has ended\" $CO_LOG" &&
    grep_log $CO_LOG "host fake001: running fence_command .$FENCE fake001. (at most 90000 ms)"
'

test_expect_success 'while the command for fake001 runs, a restart elsewhere waits' '
    ! vmckpt restart $JOB >$TEST_DIR/r1.out 2>&1 && cat $TEST_DIR/r1.out &&
    grep -q "host fake001 may still run guests of job $JOB: its fence_command runs (at most [0-9]* ms more); wait, or .vmckpt fence fake001. if it is surely down" $TEST_DIR/r1.out
'

test_expect_success 'fake001 reported off: it counts as fenced, the restart no longer waits for it' '
    timeout 10 sh -c "echo go >$TEST_DIR/fence-go" &&
    wait_until 30 "grep -q \"host fake001 fenced by fence_command (exit 0, [0-9]* ms): power switch: fake001 off\" $CO_LOG" &&
    ! vmckpt restart $JOB >$TEST_DIR/r2.out 2>&1 && cat $TEST_DIR/r2.out &&
    ! grep -q "may still run" $TEST_DIR/r2.out &&
    grep -q "no up host" $TEST_DIR/r2.out &&
    sort $TEST_DIR/fenced.list | tr "\n" " " >$TEST_DIR/fenced.sorted &&
    test "$(cat $TEST_DIR/fenced.sorted)" = "fake001 fake002 fake003 "
'

test_expect_success 'clean stop, no sanitizer report' '
    stop_daemon co && no_sanitizer_reports
'

test_done
