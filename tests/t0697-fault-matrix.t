#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The fault-injection matrix (tests/faults/cell.sh, docs/reliability.md):
# a job epoch (or a restart) is held at the end of one phase while a fault
# is injected; afterwards the committed epochs are intact, the epoch in
# flight ended with its cause, each guest runs once, memwriter verifies
# and the next checkpoint commits. The default run takes four cells (a
# VM's host, a store and the coordinator killed at the cut, the drain and
# the commit, an agent hung in a restart; faults in pre-copy are in t0630
# and t0660, the other faults have tests of their own: t0670, t0680).
# VMCKPT_FAULTS=all (or VMCKPT_FULL=1) runs every
# phase with every fault (42 cells, about 25 minutes here) and prints the
# table docs/reliability.md carries; VMCKPT_FAULTS="PHASE:FAULT ..." runs
# the cells named.
. "$top_srcdir/tests/lib/cluster.sh"

command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed"
command -v dropbearkey >/dev/null || skip_all "dropbear-bin not installed"
command -v fallocate >/dev/null || skip_all "needs fallocate (util-linux)"
tracking_mode
guest_tests_exclusive
. "$top_srcdir/tests/faults/cell.sh"

if [ "${VMCKPT_FAULTS:-}" = all ] || { [ -z "${VMCKPT_FAULTS:-}" ] && [ "${VMCKPT_FULL:-0}" = 1 ]; }; then
    CELL_LIST=$(for p in $PHASES; do for f in $FAULTS; do echo "$p:$f"; done; done)
elif [ -n "${VMCKPT_FAULTS:-}" ]; then
    CELL_LIST=$VMCKPT_FAULTS # PHASE:FAULT ... (to look at some cells again)
else
    CELL_LIST="cut:kill-origin drain:kill-store commit:kill-coordinator
        restore:hang-agent"
fi

test_expect_success 'setup: four hosts, job fj of two guests running memwriter, epoch 1 committed' '
    fault_lab_up
'

for c in $CELL_LIST; do
    test_expect_success "cell: ${c#*:} at the end of ${c%:*}" "cell ${c%:*} ${c#*:}"
done

test_expect_success 'the matrix table' '
    "$top_srcdir/tests/faults/table" "$CELLS" | tee "$TEST_DIR/table.md" &&
    test "$(tail -n +3 "$TEST_DIR/table.md" | wc -l)" = "$(echo $CELL_LIST | wc -w)"
'

test_expect_success 'the oldest committed epoch kept restores, and memwriter verifies' '
    e=$(epoch_rows | jq -r "[.[] | select(.state == \"committed\") | .epoch] | min") &&
    echo "restart from epoch $e" &&
    vmckpt restart $GUEST_JOB --epoch $e >$TEST_DIR/r.out && cat $TEST_DIR/r.out &&
    grep -q "restarted from epoch $e" $TEST_DIR/r.out &&
    wait_until 120 job_settled && once_each && verify_memory
'

test_expect_success 'clean stop; no sanitizer report' '
    for i in 1 2; do vmckpt vm stop --job $GUEST_JOB --name g$i >/dev/null || exit 1; done &&
    for h in h1 h2 h3 h4 co; do stop_daemon $h || exit 1; done &&
    no_sanitizer_reports
'
test_done
