#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# One coordinator and 200 simulated hosts: each a real agent process
# (agent/vmckpt-agent-simulated: its own connection, registration,
# heartbeats and store) whose guests are simulated ones of a few pages
# (agent/hv/hv_sim.c). A job of 800 such guests goes through two job
# epochs, loses a host, and is restarted from its last epoch. Every guest
# was cut and resumed exactly once per epoch: each guest logs, when it is
# released, how often it was paused and resumed, and each checkpoint of a
# guest is durable once per epoch.
. "$top_srcdir/tests/lib/cluster.sh"
# 200 simulated hosts share one process and one credential: the cluster key's handshake
CLUSTER_TLS=0

NHOSTS=200
NVMS=800
JOB=simjob
LOST=sim007 # holds vm00007, vm00207, vm00407, vm00607
SIM="$top_builddir/agent/vmckpt-agent-simulated"
FAKE="$top_builddir/tests/tools/fakeagents"
SIMDIR=$TEST_DIR/sim
T0=$SECONDS

# one connection per host at the coordinator, and one agent per host
[ "$(ulimit -n)" -ge $((NHOSTS + 200)) ] || ulimit -n $((NHOSTS + 200)) ||
    skip_all "needs $((NHOSTS + 200)) open files (ulimit -n is $(ulimit -n))"

cluster_up 1
# 200 agents' processes on two cores starve the console and the
# coordinator's handshakes at times: generous timeouts for them
sed -i -e 's/^heartbeat_interval_ms = .*/heartbeat_interval_ms = 1000/' \
    -e 's/^timeout_ms = .*/timeout_ms = 20000/' \
    -e 's/^auth_timeout_ms = .*/auth_timeout_ms = 10000/' \
    -e 's/^heartbeat_timeout_ms = .*/heartbeat_timeout_ms = 15000/' \
    -e 's/^register_grace_ms = .*/register_grace_ms = 30000/' \
    -e '/^\[coordinator\]/a max_precopy_ms = 30000\ncheckpoint_timeout_ms = 60000' \
    "$TEST_DIR/co/vmckpt.conf"
mkdir -p "$SIMDIR"
# what every simulated host shares; each gets its name and directories
# on the command line
cat >"$SIMDIR/sim.conf" <<CONF
[cluster]
key_file = $TEST_DIR/cluster.key
coordinator = $CO_IP:7470
[agent]
guard = none
store_listen = $CO_IP:0
reconnect_min_ms = 100
reconnect_max_ms = 1000
CONF

sim_names() { seq -f 'sim%03g' 1 $NHOSTS; }
sim_pid() { cat "$SIMDIR/$1/agent.pid" 2>/dev/null; }
# start_sims: every simulated host, in the coordinator's namespace; each
# returns once its store listens (it then registers on its own)
start_sims() {
    in_host co bash -c '
        for h in $(seq -f "sim%03g" 1 '$NHOSTS'); do
            "$1" -c "$2/sim.conf" -o agent.name=$h -o agent.state_dir="$2/$h" \
                -o agent.run_dir="$3/$h" -o agent.log="$2/$h.log" \
                2>>"$2/start.log" || exit 1
        done' start "$SIM" "$SIMDIR" "$RUN_BASE"
}
stop_sims() {
    local h p
    for h in $(sim_names); do
        p=$(sim_pid $h) && [ -n "$p" ] && kill $p 2>/dev/null
    done
    return 0
}
t0170_cleanup() {
    stop_sims
    cluster_cleanup
}
trap t0170_cleanup EXIT

up_hosts() { vmckpt hosts --json | jq "[.hosts[] | select(.state == \"up\")] | length"; }
jobs_field() { vmckpt jobs --json | jq -r --arg j $JOB ".[] | select(.job == \$j) | .$1"; }
# durable_once EPOCH: each guest's checkpoint of EPOCH was durable once
durable_once() {
    cat "$SIMDIR"/sim*.log | grep -o "checkpoint of $JOB/vm[0-9]* epoch $1 durable" >"$TEST_DIR/durable.$1" &&
        test "$(wc -l <"$TEST_DIR/durable.$1")" = $NVMS &&
        test "$(sort -u "$TEST_DIR/durable.$1" | wc -l)" = $NVMS
}
# released PATTERN: how many guests logged, when released, PATTERN
released() { cat "$SIMDIR"/sim*.log | grep -c "simulated guest $JOB/vm[0-9]* released: $1"; }

test_expect_success "$NHOSTS simulated hosts register, each its own agent" '
    start_coordinator &&
    start_sims &&
    wait_until 60 "test \"\$(up_hosts)\" = $NHOSTS" &&
    test "$(vmckpt hosts --json | jq "[.hosts[] | select(.hypervisors[0].name == \"simulated\")] | length")" = $NHOSTS &&
    note "registered after $((SECONDS - T0)) s"
'

test_expect_success "$NVMS simulated guests of one job start on them" '
    in_host co "$FAKE" $CO_IP:7470 "$TEST_DIR/cluster.key" start-vms $JOB $NVMS $NHOSTS sim simulated &&
    test "$(vmckpt vm list --job $JOB --json | jq "[.[] | select(.state == \"running\")] | length")" = $NVMS &&
    grep -q "guest $JOB/vm00007 started (simulated: pages=4,rate=2,lazy)" "$SIMDIR/$LOST.log"
'

test_expect_success 'a back end that is not the host'"'"'s is refused' '
    ! vmckpt vm start --name odd --host sim001 --kernel none --hypervisor simulatd 2>$TEST_DIR/odd &&
    grep -q "hypervisor '"'"'simulatd'"'"': give qemu or xen" $TEST_DIR/odd
'

# kept_once: the stores logged each guest's epoch 1 removed (keep 1)
kept_once() {
    cat "$SIMDIR"/sim*.log | grep -o "store: $JOB/vm[0-9]*: kept epochs from 2, removed 1" |
        sort -u >"$TEST_DIR/kept" &&
        test "$(wc -l <"$TEST_DIR/kept")" = $NVMS
}

test_expect_success 'two job epochs commit; each guest durable once in each; keeping 1, the second expires the first of every guest, in the catalog and in the stores; the listing (in pages) shows every row once' '
    vmckpt checkpoint $JOB --wait >$TEST_DIR/ckpt1 &&
    grep_log $TEST_DIR/co/coordinator.log "job $JOB: epoch 1 committed: $NVMS VM(s)" &&
    vmckpt job set $JOB --keep 1 &&
    vmckpt checkpoint $JOB --wait >$TEST_DIR/ckpt2 &&
    grep_log $TEST_DIR/co/coordinator.log "job $JOB: epoch 2 committed: $NVMS VM(s)" &&
    test "$(jobs_field last_epoch)" = 2 &&
    durable_once 1 && durable_once 2 &&
    vmckpt list $JOB --all --json >$TEST_DIR/list &&
    test "$(jq length $TEST_DIR/list)" = $((2 * NVMS)) &&
    test "$(jq -r ".[] | \"\(.epoch) \(.vm)\"" $TEST_DIR/list | sort -u | wc -l)" = $((2 * NVMS)) &&
    test "$(jq "[.[] | select(.epoch == 1 and .state == \"expired\")] | length" $TEST_DIR/list)" = $NVMS &&
    test "$(jq "[.[] | select(.epoch == 2 and .state == \"committed\")] | length" $TEST_DIR/list)" = $NVMS &&
    wait_until 30 kept_once &&
    note "two epochs after $((SECONDS - T0)) s"
'

test_expect_success "host $LOST is lost; the job restarts from epoch 2" '
    pid=$(sim_pid $LOST) && test -n "$pid" && kill -KILL $pid &&
    wait_until 30 "test \"\$(host_state $LOST)\" = lost" &&
    vmckpt restart $JOB >$TEST_DIR/restart &&
    grep -q "restarted from epoch 2: $NVMS VM(s) on $((NHOSTS - 1)) host(s)" $TEST_DIR/restart &&
    test "$(jobs_field state)" = running &&
    test "$(vmckpt vm list --job $JOB --json | jq "[.[] | select(.state == \"running\" and .host != \"$LOST\")] | length")" = $NVMS &&
    note "restarted after $((SECONDS - T0)) s"
'

test_expect_success 'each guest was paused and resumed once per epoch, and its restored copy resumed once' '
    stop_sims &&
    for h in $(sim_names); do
        p=$(sim_pid $h); test -z "$p" || wait_until 20 "! alive $p" || return 1
    done &&
    test "$(released "2 pause(s), 2 resume(s)")" = $((NVMS - 4)) &&
    test "$(released "0 pause(s), 1 resume(s)")" = $NVMS &&
    test "$(released "")" = $((2 * NVMS - 4)) &&
    ! grep -q "simulated guest $JOB/vm00007 released: 2 pause" "$SIMDIR"/sim*.log
'

test_expect_success 'no sanitizer report' '
    stop_daemon co && ! grep -l -E "ERROR: (Address|Leak)Sanitizer|runtime error:" \
        "$TEST_DIR"/co/*.log "$SIMDIR"/*.log
'

note "t0170 took $((SECONDS - T0)) s"
test_done
