#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The coordinator's job state machine at scale, without a guest: a real
# vmckpt-coordinator and 300 fake agents in one process
# (tests/tools/fakeagents) holding one job of 1,000 fake VMs. Two job
# epochs and a restart: every VM is told CUT and RESUME exactly once per
# epoch (the fake agents count what they were told), both epochs commit,
# and a cut-done that another host sends for a VM it does not hold is
# refused and changes nothing.
. "$top_srcdir/tests/lib/cluster.sh"
# the fake agents of tests/tools/fakeagents share one process and speak the cluster key's handshake
CLUSTER_TLS=0

NHOSTS=300
NVMS=1000
JOB=fakejob
HOLD=fakevm0002 # on fake002; fake003 claims it
FAKE="$top_builddir/tests/tools/fakeagents"
REPORT=$TEST_DIR/fake.report
FAKELOG=$TEST_DIR/co/fakeagents.log
T0=$SECONDS

# one connection per fake host, and the coordinator's own
[ "$(ulimit -n)" -ge $((NHOSTS + 200)) ] || ulimit -n $((NHOSTS + 200)) ||
    skip_all "needs $((NHOSTS + 200)) open files (ulimit -n is $(ulimit -n))"

cluster_up 1
sed -i -e 's/^heartbeat_interval_ms = .*/heartbeat_interval_ms = 1000/' \
    -e 's/^heartbeat_timeout_ms = .*/heartbeat_timeout_ms = 20000/' \
    -e '/^\[coordinator\]/a max_precopy_ms = 30000\ncheckpoint_timeout_ms = 60000' \
    "$TEST_DIR/co/vmckpt.conf"

t0150_cleanup() {
    local p
    p=$(fake_pid) && [ -n "$p" ] && kill $p 2>/dev/null
    cluster_cleanup
}
trap t0150_cleanup EXIT

fake() { in_host co "$FAKE" $CO_IP:7470 "$TEST_DIR/cluster.key" "$@"; }
jobs_field() { vmckpt jobs --json | jq -r --arg j $JOB ".[] | select(.job == \$j) | .$1"; }
# ckpt_ok EPOCH: every VM began, was cut, resumed and committed once
ckpt_ok() {
    test "$(awk -v e=$1 '$3 == "ckpt" && $4 == e && $6 == 1 && $8 == 1 &&
        $10 == 1 && $12 == 0 && $14 == 1 && $16 == 0' $REPORT | wc -l)" = $NVMS &&
        test "$(awk -v e=$1 '$3 == "ckpt" && $4 == e' $REPORT | wc -l)" = $NVMS
}

test_expect_success "$NHOSTS fake agents register, each as its own host" '
    start_coordinator &&
    { fake agents $NHOSTS $REPORT $HOLD >/dev/null 2>$FAKELOG & } &&
    wait_until 60 "grep -q \"$NHOSTS host(s) registered\" $FAKELOG" &&
    test "$(vmckpt hosts --json | jq "[.hosts[] | select(.state == \"up\")] | length")" = $NHOSTS
'

test_expect_success "$NVMS fake VMs of one job start on them" '
    fake start-vms $JOB $NVMS $NHOSTS &&
    test "$(vmckpt vm list --job $JOB --json | jq "[.[] | select(.state == \"running\")] | length")" = $NVMS &&
    note "started after $((SECONDS - T0)) s"
'

test_expect_success 'epoch 1 begins for every VM; a cut-done from the wrong host is refused' '
    vmckpt checkpoint $JOB >$TEST_DIR/ckpt1 &&
    grep -q "epoch 1 begins ($NVMS VM(s))" $TEST_DIR/ckpt1 &&
    wait_until 30 "grep -q \"fake003: refused: ckpt-cut-done for $JOB/$HOLD epoch 1 refused: $JOB/$HOLD is on host fake002, not on fake003\" $FAKELOG" &&
    grep_log $FAKELOG "fake003: refused: ckpt-stats for $JOB/$HOLD epoch 1 refused" &&
    grep_log $TEST_DIR/co/coordinator.log "agent fake003: ckpt-cut-done for $JOB/$HOLD epoch 1 refused" &&
    test "$(jobs_field phase)" = cut &&
    ! grep -q "epoch $JOB/1: all" $TEST_DIR/co/coordinator.log
'

test_expect_success 'the held cut-done goes out: epoch 1 commits' '
    pid=$(fake_pid) && test -n "$pid" && kill -USR1 $pid &&
    wait_until 60 "test \"\$(jobs_field last_epoch)\" = 1" &&
    grep_log $TEST_DIR/co/coordinator.log "job $JOB: epoch 1 committed: $NVMS VM(s)" &&
    note "epoch 1 committed after $((SECONDS - T0)) s"
'

test_expect_success 'epoch 2 commits' '
    vmckpt checkpoint $JOB --wait >$TEST_DIR/ckpt2 &&
    test "$(jobs_field last_epoch)" = 2 &&
    grep_log $TEST_DIR/co/coordinator.log "job $JOB: epoch 2 committed: $NVMS VM(s)" &&
    note "epoch 2 committed after $((SECONDS - T0)) s"
'

test_expect_success 'the job restarts from epoch 2: every VM restored, then resumed; the end of each replaced copy, reported during the restart, is ignored' '
    vmckpt restart $JOB >$TEST_DIR/restart &&
    grep -q "restarted from epoch 2: $NVMS VM(s) on $NHOSTS host(s)" $TEST_DIR/restart &&
    test "$(grep -c "of incarnation 1 ended (fake: the replaced copy ended); it is restoring now under incarnation 2: ignored" $TEST_DIR/co/coordinator.log)" = $NVMS &&
    wait_until 30 "grep -q \"$NVMS restored VM(s) resumed, none held\" $FAKELOG" &&
    test "$(jobs_field state)" = running &&
    note "restarted after $((SECONDS - T0)) s"
'

test_expect_success 'the fake agents were told CUT and RESUME once per VM and epoch' '
    pid=$(fake_pid) && test -n "$pid" &&
    kill $pid && wait_until 20 "! alive $pid" &&
    grep_log $FAKELOG "stopped; report in" &&
    ckpt_ok 1 && ckpt_ok 2 &&
    test "$(awk "\$3 == \"restore\" && \$4 == 2 && \$6 == 1 && \$8 == 1" $REPORT | wc -l)" = $NVMS &&
    test "$(cut -d" " -f1 $REPORT | sort -u | wc -l)" = $NHOSTS
'

test_expect_success 'no sanitizer report' '
    stop_daemon co && no_sanitizer_reports
'

note "t0150 took $((SECONDS - T0)) s"
test_done
