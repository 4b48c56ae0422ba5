#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Xen back end against a real Xen: a nested Xen host (Debian's Xen
# 4.17 under QEMU TCG) on lab host h1 runs PVH guests with memwriter in
# its dom0; the store is h2's agent, outside the Xen host, and the
# coordinator runs outside too. One boot runs the scenarios of
# tests/in-dom0 (smoke.sh, dirty.sh, agent.sh) inside dom0; each is a test
# here.
. "$top_srcdir/tests/lib/cluster.sh"
# the nested Xen host gets the cluster key on its command line; credentials are not passed in yet
CLUSTER_TLS=0

command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed"
grep -q "^#define HAVE_XEN 1" "$top_builddir/config.h" ||
    skip_all "built without the Xen back end (apt-get install libxen-dev; configure --with-xen)"
guest_tests_exclusive

export VMCKPT_XEN_IMAGE="$top_builddir/xen-lab"
# the lab's run state in the cluster's short run directory, removed with it
export VMCKPT_LAB_RUN="$RUN_BASE/lab"
# the serial log, without the console's carriage returns
LOG=$TEST_DIR/xen-h1.log
result() { grep -a "^xen-result $1 " "$LOG" | tail -n 1 | awk '{print $3}'; }
# the lines a scenario printed, for the TAP log
lines() { sed -n "/^xen-result $1 begins/,/^xen-result $1 /p" "$LOG" | grep -av "^\[" ; }

test_expect_success 'setup: the Xen image, two hosts, h2 serving a store' '
    "$top_srcdir/scripts/vmckpt-xen-image" "$top_builddir" >/dev/null &&
    cluster_up 2 &&
    sed -i "/^heartbeat_timeout_ms = /d; /^\[coordinator\]/a max_precopy_ms = 60000\ncheckpoint_timeout_ms = 240000\nheartbeat_timeout_ms = 10000" \
        $TEST_DIR/co/vmckpt.conf &&
    start_coordinator && start_agent h2 &&
    wait_until 10 "test \"\$(host_state h2)\" = up"
'

test_expect_success 'the Xen host boots and runs the scenarios in its dom0' '
    rc=0 &&
    "$LAB_CMD" xen-run $LAB h1 --key $TEST_DIR/cluster.key --timeout 900 \
        smoke.sh dirty.sh agent.sh || rc=$? &&
    echo "scenarios failed: $rc" &&
    tr -d "\r" <$VMCKPT_LAB_RUN/$LAB/xen-h1.log >$LOG &&
    grep -aq "vmckpt-xen-dom0: up after" "$LOG" &&
    test $rc != 124 && test $rc != 125
'

test_expect_success 'a PVH guest boots on Xen and runs memwriter' '
    lines smoke.sh && test "$(result smoke.sh)" = ok
'

test_expect_success 'log-dirty of a PVH guest misses no written page; a PV guest is refused live, saying why' '
    lines dirty.sh && test "$(result dirty.sh)" = ok
'

test_expect_success 'the agent in dom0: a Xen guest from a VM spec, two live job checkpoints to h2 (short pauses, the second a delta in two streams), guest and agent killed, the job restarted from h2 into a new domain, memwriter verifies, a third checkpoint; a domain taken over, lost, restored in place from its configuration' '
    lines agent.sh && test "$(result agent.sh)" = ok &&
    vmckpt list xa --all --json >$TEST_DIR/xa.json && vmckpt list xa --all &&
    jq -e "[.[] | select(.epoch <= 2 and .pause_us * 2 >= .total_ms * 1000)] | length == 0" $TEST_DIR/xa.json &&
    test "$(jq -r ".[] | select(.epoch == 2) | .parent" $TEST_DIR/xa.json)" = 1 &&
    test "$(jq -r ".[] | select(.epoch == 3) | .state" $TEST_DIR/xa.json)" = committed &&
    test "$(jq -r ".[] | select(.epoch == 3) | .source" $TEST_DIR/xa.json)" = xen-logdirty &&
    m=$TEST_DIR/h2/state/store/xa/a1/manifest && cat $m &&
    grep -q "^epoch 3 " $m &&
    grep_log $TEST_DIR/h2/agent.log "store: xa/a1 epoch 2 durable" &&
    grep_log $TEST_DIR/co/coordinator.log "job xa restarted from epoch 2"
'

test_expect_success 'clean stop, no sanitizer report' '
    stop_daemon h2 && stop_daemon co && no_sanitizer_reports
'
test_done
