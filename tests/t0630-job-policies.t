#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Job policies and failures on four hosts, a job j2 of three guests on
# h1-h3 (h4 stores g3's image): periodic checkpoints at a fixed interval,
# then 'auto' from Young/Daly with the measured cost; the agent of a peer
# store killed during pre-copy aborts the epoch without harming the guests,
# and the next checkpoint succeeds, and so does killing the agent of a
# VM's own host (a new agent takes its guest over); with auto_restart,
# losing h2 brings the whole job back from its last epoch without an
# administrator; losing h1 then, 'restart --hosts h4' brings its VM back on
# h4, streamed from the store that holds its image.
. "$top_srcdir/tests/lib/cluster.sh"

command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed"
command -v dropbearkey >/dev/null || skip_all "dropbear-bin not installed"
tracking_mode
guest_tests_exclusive

IMG="$top_builddir/lab"
catalog() { sqlite3 "$TEST_DIR/co/state/catalog.db" "$1"; }
ip_of() { echo "198.18.1.${1#g}"; }
in_guest() {
    local g=$1; shift
    in_host co dbclient -y -y -i "$IMG/lab.key" root@"$(ip_of $g)" "$@" 2>/dev/null
}
glog() { echo "$RUN_BASE/$2/j2-$1.log"; }
gen_now() { grep -ao "memwriter: gen=[0-9]*" "$(glog $1 $2)" | tail -n 1 | cut -d= -f2; }
# A restored counter must be past the one read before the epoch began, and
# at most 2.5 s of writes (1000/s) past the one read after its commit (the
# last print before the cut may be a second old): a guest that was not
# rolled back would be many seconds further on.
since_restore() { since_restore_of j2 "$1" "$(glog $1 $2)"; }
job_field() { vmckpt jobs --json | jq -r ".[] | select(.job == \"j2\") | .$1"; }
committed() { catalog "select count(distinct epoch) from epochs where job=\"j2\" and state in (\"committed\", \"expired\")"; }

# (the job keeps every epoch until the case of --keep: retention, which
# that case is about, folds the oldest epoch kept into a base image at
# every commit, seconds of I/O before the epoch is durable, a full one's
# 8 s here; the coordinator's keep_epochs stays the default, 2, for that
# case's 'default')
test_expect_success 'setup: four hosts, job j2 of three guests on h1-h3' '
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >/dev/null &&
    guest_cluster_up 4 &&
    for i in 1 2 3; do
        vmckpt vm start --job j2 --name g$i --host h$i --mem 256 --kernel "$IMG/vmlinux" \
            --initrd "$IMG/initrd.img" --ip $(ip_of g$i)/16 \
            --append "vmckpt.run=memwriter,-m,32,-r,1000,-p,1" || exit 1
    done &&
    vmckpt job set j2 --keep 0 | grep -q "keep all" &&
    for i in 1 2 3; do wait_until 90 "test -n \"\$(gen_now g$i h$i)\"" || exit 1; done
'

test_expect_success 'interval 3: checkpoints come by themselves' '
    vmckpt job set j2 --interval 3 >$TEST_DIR/set.out && cat $TEST_DIR/set.out &&
    grep -q "job j2: interval 3 (3 s in effect), auto_restart no" $TEST_DIR/set.out &&
    wait_until 120 "test \"\$(committed)\" -ge 2" &&
    grep_log $TEST_DIR/co/coordinator.log "job j2: periodic checkpoint (every 3 s)" &&
    vmckpt jobs
'

test_expect_success 'interval auto: Young/Daly from the measured cost, shown by jobs' '
    vmckpt job set j2 --interval auto --mtbf 100 >$TEST_DIR/set.out && cat $TEST_DIR/set.out &&
    vmckpt jobs --json >$TEST_DIR/j.json && cat $TEST_DIR/j.json &&
    cost=$(jq ".[0].cost_ms" $TEST_DIR/j.json) && iv=$(jq ".[0].interval_s" $TEST_DIR/j.json) &&
    test "$cost" -gt 0 &&
    want=$(echo "sqrt(2 * $cost / 1000 * 100)" | bc -l | cut -d. -f1) &&
    want=${want:-0} && test "$want" -ge 1 || want=1 &&
    echo "cost $cost ms, MTBF 100 s: interval $iv s, formula $want s" &&
    test "$iv" = "$want" &&
    test "$(jq -r ".[0].interval" $TEST_DIR/j.json)" = auto &&
    jq -e ".[0].next_checkpoint_in_ms > 0" $TEST_DIR/j.json &&
    vmckpt status j2 | grep -q "auto=${iv}s" &&
    vmckpt job set j2 --interval off | grep -q "interval off" &&
    wait_until 90 "test -z \"\$(job_field phase)\""
'

epoch_state() { catalog "select state from job_epochs where job=\"j2\" and epoch=$1"; }
# kill_during_precopy HOST PATTERN: start an epoch and SIGKILL HOST's agent
# as soon as its log shows PATTERN (EPOCH standing for the epoch's number);
# prints the epoch. An epoch that committed before the kill landed tests
# nothing: then the agent is restarted and it is tried again (3 times).
kill_during_precopy() {
    local h=$1 pat=$2 try e
    for try in 1 2 3; do
        vmckpt checkpoint j2 >$TEST_DIR/k.out || return 1
        e=$(sed -n "s/.*epoch \([0-9]*\) begins.*/\1/p" $TEST_DIR/k.out)
        wait_until 30 "grep -q \"${pat//EPOCH/$e}\" $TEST_DIR/$h/agent.log" || return 1
        stop_daemon $h KILL || return 1
        wait_until 30 "test -n \"\$(epoch_state $e | grep -v running)\"" || return 1
        if [ "$(epoch_state $e)" = aborted ]; then
            echo $e
            return 0
        fi
        echo "# epoch $e committed before the kill landed; again" >&2
        start_agent $h && wait_until 10 "test \"\$(host_state $h)\" = up" &&
            wait_until 10 "test \"\$(job_field state)\" = running" || return 1
    done
    return 1
}

test_expect_success 'the agent of a peer store is killed during pre-copy: epoch aborted, guests run on' '
    e=$(kill_during_precopy h4 "writes j2/g3 epoch EPOCH") &&
    last=$(job_field last_epoch) && test "$last" -lt "$e" &&
    catalog "select note from job_epochs where job=\"j2\" and epoch=$e" &&
    test "$(job_field last_epoch)" = "$last" &&
    for i in 1 2 3; do
        g=$(gen_now g$i h$i) &&
            wait_until 20 "test \"\$(gen_now g$i h$i)\" -gt $g" || exit 1
    done &&
    vmckpt vm list | grep -c " running " | grep -q 3
'

test_expect_success 'the agent comes back; the next checkpoint succeeds' '
    start_agent h4 && wait_until 10 "test \"\$(host_state h4)\" = up" &&
    vmckpt checkpoint j2 --wait >$TEST_DIR/c2.out && cat $TEST_DIR/c2.out &&
    grep -q "committed: 3 VM(s)" $TEST_DIR/c2.out
'

test_expect_success 'the agent of a VM host is killed during pre-copy: epoch aborted; its fence guard stops the guest when the lease ends' '
    e=$(kill_during_precopy h1 "checkpoint of j2/g1 epoch EPOCH (.*job) .* begins") &&
    test "$(epoch_state $e)" = aborted &&
    wait_until 20 "grep -q \"vmckpt-guard warning: stopped the QEMU of j2-g1 (pid [0-9]*)\" $TEST_DIR/h1/agent.log" &&
    grep_log $TEST_DIR/h1/agent.log "vmckpt-guard warning: the lease of agent [0-9]* ended [0-9]* ms ago and the agent is gone"
'

test_expect_success 'a new agent takes the guest over paused, runs it when the coordinator lifts the fence; the next checkpoint succeeds' '
    g=$(gen_now g1 h1) &&
    start_agent h1 && wait_until 10 "test \"\$(host_state h1)\" = up" &&
    grep_log $TEST_DIR/h1/agent.log "guest j2/g1 (pid [0-9]*) of an earlier agent taken over; paused until the coordinator lifts the fence" &&
    wait_until 10 "grep -q \"fence: resumed j2/g1\" $TEST_DIR/h1/agent.log" &&
    wait_until 20 "test \"\$(gen_now g1 h1)\" -gt $g" &&
    wait_until 10 "vmckpt vm list | grep -q \"^j2  *g1  *h1  *running\"" &&
    wait_until 10 "test \"\$(job_field state)\" = running" &&
    vmckpt checkpoint j2 --wait >$TEST_DIR/c5.out && cat $TEST_DIR/c5.out &&
    grep -q "committed: 3 VM(s)" $TEST_DIR/c5.out &&
    test "$(catalog "select parent from epochs where job=\"j2\" and vm=\"g1\" and state=\"committed\" order by epoch desc limit 1")" = 0
'

for i in 1 2 3; do eval "G_BEFORE_$i=\$(gen_now g$i h$i)"; done
test_expect_success 'auto_restart: h2 dies, the job comes back by itself from its last epoch' '
    vmckpt job set j2 --auto-restart yes | grep -q "auto_restart yes" &&
    vmckpt checkpoint j2 --wait >$TEST_DIR/c3.out && cat $TEST_DIR/c3.out &&
    e=$(sed -n "s/.*epoch \([0-9]*\) begins.*/\1/p" $TEST_DIR/c3.out) &&
    for i in 1 2 3; do eval "hi_$i=\$(gen_now g$i h$i)"; done &&
    "$LAB_CMD" kill-host $LAB h2 &&
    wait_until 20 "grep -q \"job j2: auto_restart from its last committed epoch\" $TEST_DIR/co/coordinator.log" &&
    wait_until 120 "test \"\$(job_field state)\" = running" &&
    grep_log $TEST_DIR/co/coordinator.log "job j2 restarted from epoch $e: 3 VM(s) on 2 host(s)" &&
    vmckpt vm list | grep -q "^j2  *g2  *h3  *running" &&
    for p in "1 h1" "2 h3" "3 h3"; do
        set -- $p &&
        eval "lo=\$G_BEFORE_$1 hi=\$hi_$1" &&
        wait_until 30 "since_restore g$1 $2 | grep -aq \"memwriter: gen=\"" &&
        first=$(since_restore g$1 $2 | grep -ao "memwriter: gen=[0-9]*" | head -n 1 | cut -d= -f2) &&
        echo "g$1 on $2: first counter $first, epoch $e taken between $lo and $hi" &&
        test "$first" -gt "$lo" && test "$first" -le "$((hi + 2500))" || exit 1
    done &&
    for i in 1 2 3; do in_guest g$i "killall -USR1 memwriter" || exit 1; done &&
    for p in "g1 h1" "g2 h3" "g3 h3"; do
        wait_until 30 "since_restore $p | grep -aq \"memwriter: verify PASS\"" &&
        ! since_restore $p | grep -aq "verify FAIL" || exit 1
    done
'

G_BEFORE_1=$(gen_now g1 h1)
test_expect_success 'restart --hosts: h1 dies, its VM comes back on h4, streamed from its store' '
    vmckpt job set j2 --auto-restart no | grep -q "auto_restart no" &&
    vmckpt checkpoint j2 --wait >$TEST_DIR/c6.out && cat $TEST_DIR/c6.out &&
    e=$(sed -n "s/.*epoch \([0-9]*\) begins.*/\1/p" $TEST_DIR/c6.out) &&
    test "$(catalog "select store_host from epochs where job=\"j2\" and vm=\"g1\" and epoch=$e")" = h3 &&
    hi=$(gen_now g1 h1) &&
    "$LAB_CMD" kill-host $LAB h1 &&
    wait_until 10 "test \"\$(job_field state)\" = failed" &&
    vmckpt restart j2 --hosts h4 >$TEST_DIR/r6.out && cat $TEST_DIR/r6.out &&
    grep -q "job j2 restarted from epoch $e: 3 VM(s) on 2 host(s)" $TEST_DIR/r6.out &&
    grep_log $TEST_DIR/h4/agent.log "restore of j2/g1 epoch $e from h3 begins" &&
    vmckpt vm list | grep -q "^j2  *g1  *h4  *running" &&
    wait_until 30 "since_restore g1 h4 | grep -aq \"memwriter: gen=\"" &&
    first=$(since_restore g1 h4 | grep -ao "memwriter: gen=[0-9]*" | head -n 1 | cut -d= -f2) &&
    echo "g1 on h4: first counter $first, epoch $e taken between $G_BEFORE_1 and $hi" &&
    test "$first" -gt "$G_BEFORE_1" && test "$first" -le "$((hi + 2500))" &&
    in_guest g1 "killall -USR1 memwriter" &&
    wait_until 30 "since_restore g1 h4 | grep -aq \"memwriter: verify PASS\"" &&
    ! since_restore g1 h4 | grep -aq "verify FAIL"
'

test_expect_success 'job set --lz4 yes: the next epoch (full: new QEMUs) is compressed on the wire' '
    vmckpt job set j2 --lz4 yes | grep -q "lz4 yes" &&
    vmckpt jobs --json | jq -e ".[] | select(.job == \"j2\") | .lz4" &&
    vmckpt checkpoint j2 --wait >$TEST_DIR/c7.out && cat $TEST_DIR/c7.out &&
    e=$(sed -n "s/.*epoch \([0-9]*\) begins.*/\1/p" $TEST_DIR/c7.out) &&
    if ! incremental; then
        grep_log $TEST_DIR/h4/agent.log "j2/g1: LZ4 does not apply to QEMU.s migration stream" &&
        grep_log $TEST_DIR/h4/agent.log "checkpoint of j2/g1 epoch $e (full, job) "
    else
        grep_log $TEST_DIR/h4/agent.log "checkpoint of j2/g1 epoch $e (full, job, lz4)" &&
        for v in g1 g2 g3; do
            # the page data (non-zero pages) against what went on the wire
            cat $TEST_DIR/h*/agent.log |
                sed -n "s/.*checkpoint of j2\/$v epoch $e durable.*(\([0-9]*\) bytes of page data, \([0-9]*\) on the wire).*/\1 \2/p" \
                >$TEST_DIR/z.$v && echo "$v: $(cat $TEST_DIR/z.$v)" &&
            read -r raw wire <$TEST_DIR/z.$v && test "$raw" -gt 0 &&
            test "$((wire * 10))" -lt "$((raw * 9))" || exit 1
        done
    fi &&
    vmckpt job set j2 --lz4 maybe 2>&1 | grep -q "give yes or no"
'

committed_of() { vmckpt list j2 --all --json | jq "[.[] | select(.state == \"committed\" and .vm == \"$1\")] | length"; }
test_expect_success 'job set --keep: the job keeps its own number of epochs from its next commit; default goes back to keep_epochs' '
    vmckpt job set j2 --keep 1 | grep -q "keep 1" &&
    test "$(vmckpt jobs --json | jq ".[] | select(.job == \"j2\") | .keep_epochs")" = 1 &&
    vmckpt checkpoint j2 --wait >/dev/null &&
    for v in g1 g2 g3; do test "$(committed_of $v)" = 1 || exit 1; done &&
    vmckpt job set j2 --keep 0 | grep -q "keep all" &&
    vmckpt checkpoint j2 --wait >/dev/null && vmckpt checkpoint j2 --wait >/dev/null &&
    for v in g1 g2 g3; do test "$(committed_of $v)" = 3 || exit 1; done &&
    vmckpt job set j2 --keep default | grep -q "keep 2 (the default)" &&
    vmckpt jobs --json | jq -e ".[] | select(.job == \"j2\") | .keep_default" &&
    vmckpt checkpoint j2 --wait >/dev/null &&
    for v in g1 g2 g3; do test "$(committed_of $v)" = 2 || exit 1; done &&
    vmckpt job set j2 --keep lots 2>&1 | grep -q "give a number of epochs"
'

test_expect_success 'clean stop, no sanitizer report' '
    for i in 1 2 3; do vmckpt vm stop --job j2 --name g$i >/dev/null || exit 1; done &&
    stop_daemon h3 && stop_daemon h4 && stop_daemon co &&
    no_sanitizer_reports
'
test_done
