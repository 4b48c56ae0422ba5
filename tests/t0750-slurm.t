#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Slurm integration (docs/slurm.md) on a lab Slurm: munged and slurmctld
# beside the coordinator, one slurmd per lab host. A job without
# --vmckpt-image runs as plain Slurm; bad options fail at sbatch; a
# protected job with the coordinator down is cancelled with the reason in
# its AdminComment. A protected job of three VMs runs heat under
# 'vmckpt-slurm run'; two periodic checkpoints commit; its host h3 dies;
# the coordinator sets h3 down in Slurm (lost_command), which requeues the
# job; the controller's prolog restores it from its last epoch on h1, h2
# and the spare h4; heat ends with the checksum of an uninterrupted run;
# nothing of the job runs after it ends. A job with a time limit, warned
# by Slurm (--signal=B:USR1), takes a last checkpoint and requeues
# itself; a later run resumes from it and ends with the same checksum.
# A job with --no-kill and a spare node (--vmckpt-spares=1) is not
# requeued when a node dies: its VM comes back on the spare, inside the
# allocation, and heat ends right. These last two take minutes each and
# run in the full suite (VMCKPT_FULL=1, './quickstart test --full').
. "$top_srcdir/tests/lib/cluster.sh"
. "$top_srcdir/tests/lib/slurm.sh"

command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed"
command -v dropbearkey >/dev/null || skip_all "dropbear-bin not installed"
[ -x "$top_builddir/mpi-hooks/vmckpt-mpirun" ] || skip_all "built without Open MPI"
missing=$(slurm_installed) || skip_all "Slurm not installed ($missing; apt-get install slurmctld slurmd slurm-client munge)"
[ -e "$top_builddir/slurm/vmckpt.so" ] || skip_all "built without the SPANK plugin (libslurm-dev)"
tracking_mode
guest_tests_exclusive

# Slurm's own waits before the requeued job runs again, short (the
# test is of vmckpt's part: the node down, the requeue, the restore)
SLURM_CRED_EXPIRE=5 SLURM_SCHED_INTERVAL=1 SLURM_MESSAGE_TIMEOUT=5
. "$top_srcdir/tests/lib/vmckpt-slurm.sh"

test_expect_success 'setup: coordinator and agents on h1..h4, a lab Slurm with the plugin, prolog, epilog and lost_command' '
    vmckpt_slurm_up
'

export VMCKPT_CONFIG="$VCONF"

test_expect_success 'bad options fail at sbatch with a clear error' '
    printf "#!/bin/sh\ntrue\n" >$TEST_DIR/true.sh &&
    ! sbatch --vmckpt-image=$IMG --vmckpt-interval=soon $TEST_DIR/true.sh 2>$TEST_DIR/err &&
    cat $TEST_DIR/err && grep -q "vmckpt-interval=soon: give seconds" $TEST_DIR/err &&
    id=$(sbatch --parsable --vmckpt-interval=30 $TEST_DIR/true.sh 2>$TEST_DIR/err) &&
    cat $TEST_DIR/err && grep -q "need --vmckpt-image; the job will be cancelled" $TEST_DIR/err &&
    ! sbatch --vmckpt-image=$IMG --vmckpt-keep=many $TEST_DIR/true.sh 2>$TEST_DIR/err2 &&
    grep -q "vmckpt-keep=many: give the number of committed epochs" $TEST_DIR/err2 &&
    wait_until 30 "test \"\$(job_state $id)\" = CANCELLED" &&
    scontrol show job $id | grep -q "AdminComment=vmckpt: --vmckpt-interval, --vmckpt-mem, --vmckpt-keep, --vmckpt-spares and --vmckpt-disk need --vmckpt-image" &&
    ! sbatch --vmckpt-image=lab $TEST_DIR/true.sh 2>$TEST_DIR/err &&
    grep -q "give the absolute path" $TEST_DIR/err &&
    ! sbatch --vmckpt-image=$IMG --vmckpt-disk=$IMG/disk.img,format=vmdk $TEST_DIR/true.sh 2>$TEST_DIR/err &&
    cat $TEST_DIR/err && grep -q "vmckpt-disk=.*: give FILE\[,format=raw|qcow2\]\[,base=shared|copy\]" $TEST_DIR/err &&
    sbatch --help 2>&1 | grep -q -- "--vmckpt-image=DIR"
'

test_expect_success 'a job without --vmckpt-image runs as plain Slurm: no VM, no vmckpt job' '
    printf "#!/bin/sh\necho plain on \$SLURM_JOB_NODELIST\n" >$TEST_DIR/plain.sh &&
    id=$(sbatch --parsable -N2 -o "$TEST_DIR/job-%j.out" $TEST_DIR/plain.sh) &&
    wait_until 30 "test \"\$(job_state $id)\" = COMPLETED" &&
    grep -q "^plain on h" "$TEST_DIR/job-$id.out" &&
    test -z "$(vjob_field slurm-$id state)" &&
    ! grep -qs "job $id" "$VMCKPT_SLURM_LOG"
'

test_expect_success 'coordinator down: the protected job is cancelled, the reason in scontrol show job' '
    stop_daemon co &&
    id=$(sbatch --parsable -N3 --vmckpt-image=$IMG -o "$TEST_DIR/job-%j.out" $TEST_DIR/true.sh) &&
    wait_until 60 "test \"\$(job_state $id)\" = CANCELLED" &&
    scontrol show job $id | tee $TEST_DIR/cdown | grep -q "AdminComment=vmckpt: the coordinator does not answer" &&
    grep_log "$VMCKPT_SLURM_LOG" "job $id: the coordinator does not answer" &&
    start_coordinator &&
    wait_until 20 "hosts_up h1 h4" &&
    for h in h1 h2 h3 h4; do wait_until 30 "test \"\$(node_state $h)\" = IDLE" || exit 1; done
'

# the time-limit job's heat runs longer than the warning can take to come
# (Slurm sends it 120 s before the limit of 4 min, or up to 60 s earlier:
# 60 to 120 s into each run, so a run always starts the program first;
# heat of -i 4000 took 38 s in its VMs on an idle machine, this four
# times as long: two or three runs)
LIMIT_ARGS="-n 96 -i 16000"
# the spare's job runs long enough for two epochs after heat starts and
# a host's death after them: a full epoch of its two guests took 21 s on
# a busy machine, heat of -i 4000 on two ranks under a minute
NOKILL_ARGS="-n 96 -i 12000"

test_expect_success 'the reference: heat on 3 ranks (and the longer runs of the spare and time-limit jobs) here, no VMs' '
    REF=$(heat_here 3) &&
    if [ "${VMCKPT_FULL:-0}" = 1 ]; then
        REF2=$(HEAT_ARGS=$NOKILL_ARGS heat_here 2) &&
        REF3=$(HEAT_ARGS=$LIMIT_ARGS heat_here 3)
    else
        REF2=slow-only REF3=slow-only
    fi &&
    printf "REF=%s\nREF2=%s\nREF3=%s\n" "$REF" "$REF2" "$REF3" | tee $TEST_DIR/ref &&
    test -n "$REF" && test -n "$REF2" && test -n "$REF3"
'
. $TEST_DIR/ref 2>/dev/null || true

heat_job "$TEST_DIR/heat.sbatch" "-N 3" --requeue --open-mode=append \
    "--vmckpt-image=$IMG" --vmckpt-interval=15 --vmckpt-mem=384 --vmckpt-keep=1 \
    "--vmckpt-disk=$IMG/disk.img,format=raw"
# has_disk VM HOST: VM runs on its disk chain there, and its peer's copy of
# its epochs holds the disk
has_disk() { test -s "$TEST_DIR/$2/state/disks/$J/$1/chain"; }
# heat_caught JOB: JOB has two epochs or more, and its last one is aligned:
# every rank of heat stopped at the same barrier for its cut (so heat
# runs in it, and a restore from it resumes heat)
heat_caught() {
    local e
    e=$(vjob_field "$1" last_epoch) && [ "${e:-0}" -ge 2 ] &&
        vmckpt list "$1" --all --json |
        jq -e "[.[] | select(.epoch == $e)][0].align == \"aligned\"" >/dev/null
}

test_expect_success 'sbatch a protected job: three VMs on h1..h3, heat under vmckpt-mpirun, two periodic checkpoints' '
    JOBID=$(sbatch --parsable -o "$TEST_DIR/job-%j.out" $TEST_DIR/heat.sbatch) &&
    echo "JOBID=$JOBID" >$TEST_DIR/jobid && J=slurm-$JOBID &&
    wait_running 60 $JOBID &&
    test "$(vjob_field $J vms)" = 3 &&
    vmckpt vm list --job $J &&
    for i in 0 1 2; do
        test "$(vmckpt vm list --job $J --json | jq -r ".[] | select(.vm == \"r$i\") | .host")" = h$((i + 1)) || exit 1
    done &&
    wait_until 240 "out_of $JOBID | grep -q \"starting heat\"" &&
    wait_until 120 "test \"\$(vjob_field $J ranks)\" = 3" &&
    wait_until 300 "heat_caught $J" &&
    vmckpt list $J && out_of $JOBID &&
    test "$(vjob_field $J keep_epochs)" = 1 &&
    test "$(vmckpt list $J --all --json | jq "[.[] | select(.state == \"committed\")] | length")" = 3 &&
    for i in 0 1 2; do has_disk r$i h$((i + 1)) || exit 1; done &&
    grep -q "^disks " $TEST_DIR/h2/state/store/$J/r0/manifest
'
. $TEST_DIR/jobid 2>/dev/null || true
J=slurm-${JOBID:-0}

test_expect_success 'h3 dies: Slurm hears it from the coordinator, the job is requeued and restored on h1, h2, h4' '
    e=$(vjob_field $J last_epoch) && echo "last epoch $e" &&
    "$LAB_CMD" kill-host $LAB h3 &&
    wait_until 20 "test \"\$(node_state h3)\" = DOWN" &&
    scontrol show node h3 | grep -q "Reason=vmckpt: host lost" &&
    grep_log $TEST_DIR/co/coordinator.log "host h3: lost_command done" &&
    wait_until 60 "test \"\$(job_value $JOBID Restarts)\" = 1" &&
    wait_running 120 $JOBID &&
    scontrol show job $JOBID | tee $TEST_DIR/requeued &&
    grep -q "NodeList=h\[1-2,4\]" $TEST_DIR/requeued &&
    grep_log "$VMCKPT_SLURM_LOG" "job $JOBID run 1 on h1 h2 h4: vmckpt job $J, last epoch" &&
    test "$(vmckpt vm list --job $J --json | jq -r "[.[] | .vm + \"@\" + .host + \":\" + .state] | sort | join(\",\")")" = "r0@h1:running,r1@h2:running,r2@h4:running" &&
    has_disk r2 h4 &&
    wait_until 240 "out_of $JOBID | grep -q \"the program resumes in the restored VMs\""
'

# kept_one JOB: every store copy of JOB's VMs on the live hosts holds one
# epoch (--vmckpt-keep=1; the dead h3 keeps what it had)
kept_one() {
    local m
    for m in "$TEST_DIR"/h[124]/state/store/"$1"/*/manifest; do
        [ "$(grep -c "^epoch " "$m")" = 1 ] || { echo "$m:" && cat "$m" && return 1; }
    done
}
test_expect_success 'heat ends with the checksum of an uninterrupted run; the job completed, its VMs stopped, one epoch kept' '
    ended $JOBID 900 && out_of $JOBID &&
    test "$(job_state $JOBID)" = COMPLETED &&
    out_of $JOBID | grep -q "^run 0 on h\[1-3\]" &&
    out_of $JOBID | grep -q "CANCELLED .* DUE TO NODE FAILURE" &&
    out_of $JOBID | grep -q "^run 1 on h\[1-2,4\]" &&
    out_of $JOBID | grep -q "the program resumes in the restored VMs" &&
    out_of $JOBID | grep -q "$REF" &&
    test "$(job_value $JOBID ExitCode)" = 0:0 &&
    wait_until 30 "test -z \"\$(vms_running $J)\"" &&
    test "$(qemu_count r0)$(qemu_count r1)$(qemu_count r2)" = 000 &&
    test "$(vmckpt list $J --all --json | jq "[.[] | select(.state == \"committed\")] | length")" = 3 &&
    wait_until 30 "kept_one $J >/dev/null" && kept_one $J
'

HEAT_ARGS=$LIMIT_ARGS heat_job "$TEST_DIR/limit.sbatch" "-N 3" --requeue --open-mode=append --time=4 \
    --signal=B:USR1@120 "--vmckpt-image=$IMG" --vmckpt-interval=20 --vmckpt-mem=384

test_expect_slow 'time limit: warned, the job checkpoints and requeues itself; a later run resumes and ends right' '
    for h in h1 h2 h4; do wait_until 30 "test \"\$(node_state $h)\" = IDLE" || exit 1; done &&
    id=$(sbatch --parsable -o "$TEST_DIR/job-%j.out" $TEST_DIR/limit.sbatch) &&
    wait_until 240 "out_of $id | grep -q \"time limit near: checkpointing job slurm-$id, then requeue\"" &&
    wait_until 120 "test \"\$(job_value $id Restarts)\" -ge 1" &&
    ended $id 1200 && out_of $id &&
    test "$(job_state $id)" = COMPLETED &&
    out_of $id | grep -q "the program resumes in the restored VMs" &&
    out_of $id | grep -q "$REF3" &&
    test "$(job_value $id ExitCode)" = 0:0 &&
    wait_until 30 "test -z \"\$(vms_running slurm-$id)\""
'

HEAT_ARGS=$NOKILL_ARGS heat_job "$TEST_DIR/nokill.sbatch" "-N 3" --no-kill --open-mode=append \
    "--vmckpt-image=$IMG" --vmckpt-interval=5 --vmckpt-mem=384 --vmckpt-spares=1

test_expect_slow '--no-kill with a spare: h2 dies, its VM comes back on the spare h4 inside the allocation, no requeue; heat ends right' '
    for h in h1 h2 h4; do wait_until 30 "test \"\$(node_state $h)\" = IDLE" || exit 1; done &&
    id=$(sbatch --parsable -o "$TEST_DIR/job-%j.out" $TEST_DIR/nokill.sbatch) &&
    wait_running 60 $id &&
    test "$(vm_places slurm-$id)" = "r0@h1:running,r1@h2:running" &&
    test "$(vjob_field slurm-$id restart_hosts)" = h1,h2,h4 &&
    test "$(vjob_field slurm-$id auto_restart)" = true &&
    wait_until 240 "out_of $id | grep -q \"starting heat\"" &&
    e0=$(vjob_field slurm-$id last_epoch) &&
    wait_until 300 "test \"\$(vjob_field slurm-$id last_epoch)\" -ge $((e0 + 2)) || job_over $id" &&
    { test "$(vjob_field slurm-$id last_epoch)" -ge $((e0 + 2)) ||
        { echo "job $id: $(job_state $id) before two epochs after heat started:"; out_of $id
          grep "slurm-$id" $TEST_DIR/co/coordinator.log | grep -E "epoch|job slurm" | tail -n 30; false; }; } &&
    "$LAB_CMD" kill-host $LAB h2 &&
    wait_until 20 "test \"\$(node_state h2)\" = DOWN" &&
    wait_until 120 "test \"\$(vm_places slurm-$id)\" = r0@h1:running,r1@h4:running" &&
    grep_log $TEST_DIR/co/coordinator.log "job slurm-$id: auto_restart from its last committed epoch, on its restart hosts h1,h2,h4" &&
    test "$(job_state $id)" = RUNNING && test "$(job_value $id Restarts)" = 0 &&
    ended $id 900 && out_of $id &&
    test "$(job_state $id)" = COMPLETED &&
    test "$(job_value $id Restarts)" = 0 &&
    out_of $id | grep -q "$REF2" &&
    wait_until 30 "test -z \"\$(vms_running slurm-$id)\""
'

test_expect_success 'no sanitizer report' '
    no_sanitizer_reports
'
test_done
