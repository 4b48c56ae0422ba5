#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The coordinated checkpoint of a job of three guests, one per host, each
# with a disk and running memwriter and diskwriter: the epoch commits with every VM's pause window in the
# catalog and no VM resumed before the last one paused; a cancelled and a
# coordinator-interrupted epoch abort without harming the guests or the
# previous epoch, which the whole job restarts from; retention keeps two
# epochs; a host dies and the job restarts on the two survivors, every
# memwriter and diskwriter verifying (memory and disk of each guest from
# one instant) and every counter from the same epoch. g3's disk is
# base=copy over a file only h3 has: after h3 dies, its restore on h1
# takes the base from the store.
. "$top_srcdir/tests/lib/cluster.sh"

command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU not installed"
command -v qemu-img >/dev/null || skip_all "qemu-img not installed (apt-get install qemu-utils)"
command -v dropbearkey >/dev/null || skip_all "dropbear-bin not installed"
tracking_mode
guest_tests_exclusive

IMG="$top_builddir/lab"
catalog() { sqlite3 "$TEST_DIR/co/state/catalog.db" "$1"; }
ip_of() { echo "198.18.1.${1#g}"; }
in_guest() {  # in_guest gN CMD...
    local g=$1; shift
    in_host co dbclient -y -y -i "$IMG/lab.key" root@"$(ip_of $g)" "$@" 2>/dev/null
}
# where a guest's serial log is on host h
glog() { echo "$RUN_BASE/$2/j1-$1.log"; }
# gen_now gN hN: the last counter memwriter printed
gen_now() { grep -ao "memwriter: gen=[0-9]*" "$(glog $1 $2)" | tail -n 1 | cut -d= -f2; }
# A restored counter must be past the one read before the epoch began, and
# at most 2.5 s of writes (1000/s) past the one read after its commit (the
# last print before the cut may be a second old): a guest that was not
# rolled back would be many seconds further on.
# since_restore gN hN: the log of gN on hN after its last restore mark
since_restore() { since_restore_of j1 "$1" "$(glog $1 $2)"; }
first_gen_restored() {
    since_restore $1 $2 | grep -ao "memwriter: gen=[0-9]*" | head -n 1 | cut -d= -f2
}
# memwriter checks the guest's memory, diskwriter that its disk holds
# exactly the files it had written at the instant of that memory (read
# from the disk: the page cache dropped first)
VERIFY="sync; echo 3 >/proc/sys/vm/drop_caches; killall -USR1 memwriter diskwriter"
job_field() { vmckpt jobs --json | jq -r ".[] | select(.job == \"j1\") | .$1"; }

test_expect_success 'setup: three hosts, a job j1 of three guests with disks running memwriter and diskwriter' '
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >/dev/null &&
    guest_cluster_up 3 test_hold_file=$TEST_DIR/hold &&
    cp --sparse=always "$IMG/disk.img" $TEST_DIR/g3-base.img &&
    for i in 1 2 3; do
        disk="$IMG/disk.img,format=raw" &&
        { test $i != 3 || disk="$TEST_DIR/g3-base.img,format=raw,base=copy"; } &&
        vmckpt vm start --job j1 --name g$i --host h$i --mem 256 --kernel "$IMG/vmlinux" \
            --initrd "$IMG/initrd.img" --ip $(ip_of g$i)/16 --disk "$disk" \
            --append "vmckpt.run=memwriter,-m,32,-r,1000,-p,1" || exit 1
    done &&
    for i in 1 2 3; do
        wait_until 90 "test -n \"\$(gen_now g$i h$i)\"" || exit 1
    done &&
    for i in 1 2 3; do
        wait_until 30 "in_guest g$i true" &&
        in_guest g$i "setsid /mnt/disk/usr/bin/diskwriter -d /mnt/disk/dw -s 16 -r 5 -p 1 </dev/null >/dev/console 2>&1 &" || exit 1
    done &&
    vmckpt jobs | grep -q "^j1  *running  *3 "
'

test_expect_success 'checkpoint j1 --wait: one epoch, committed, with a progress line' '
    vmckpt checkpoint j1 --wait >$TEST_DIR/c1.out && cat $TEST_DIR/c1.out &&
    grep -q "job j1: epoch 1 begins (3 VM(s))" $TEST_DIR/c1.out &&
    grep -q "epoch 1: precopy" $TEST_DIR/c1.out &&
    grep -q "job j1: epoch 1 committed: 3 VM(s), pause window" $TEST_DIR/c1.out &&
    test "$(catalog "select count(*) from epochs where job=\"j1\" and epoch=1 and state=\"committed\"")" = 3 &&
    test "$(catalog "select state from job_epochs where job=\"j1\" and epoch=1")" = committed
'

test_expect_success 'every VM paused, and none resumed before the last one paused' '
    vmckpt list j1 --json >$TEST_DIR/l1.json && vmckpt list j1 &&
    test "$(jq "[.[] | select(.epoch == 1)] | length" $TEST_DIR/l1.json)" = 3 &&
    test "$(jq "[.[] | select(.epoch == 1 and .pause_us > 0 and .paused_at_ns > 0 and .resumed_at_ns > .paused_at_ns)] | length" $TEST_DIR/l1.json)" = 3 &&
    last_pause=$(jq "[.[] | select(.epoch == 1) | .paused_at_ns] | max" $TEST_DIR/l1.json) &&
    first_resume=$(jq "[.[] | select(.epoch == 1) | .resumed_at_ns] | min" $TEST_DIR/l1.json) &&
    echo "last pause $last_pause, first resume $first_resume" &&
    test "$last_pause" -lt "$first_resume" &&
    jq -e "[.[] | select(.epoch == 1) | .window_us] | min > 0" $TEST_DIR/l1.json &&
    for h in h1 h2 h3; do
        grep_log $TEST_DIR/$h/agent.log "cut of j1 epoch 1: 1 guest(s) pause here" &&
        grep_log $TEST_DIR/$h/agent.log "resume of j1 epoch 1: 1 guest(s) run again here" || exit 1
    done &&
    test "$(jq -r "[.[] | select(.epoch == 1) | .vm + \">\" + .store_host] | join(\",\")" $TEST_DIR/l1.json)" = "g1>h2,g2>h3,g3>h1"
'

test_expect_success 'status j1 and jobs show the job, its last epoch and its pause window' '
    vmckpt status j1 && vmckpt status j1 --json >$TEST_DIR/s.json &&
    test "$(jq -r .job.last_epoch $TEST_DIR/s.json)" = 1 &&
    test "$(jq -r .job.state $TEST_DIR/s.json)" = running &&
    test "$(jq ".vms | length" $TEST_DIR/s.json)" = 3 &&
    jq -e ".job.last_pause_window_us > 0 and .job.cost_ms >= 0" $TEST_DIR/s.json &&
    jq -e "[.vms[] | .bytes_sent] | min > 0" $TEST_DIR/s.json &&
    vmckpt status j1 | grep -q "SENT-MB"
'

test_expect_success 'h1 credential reports for g1, never for g2 of host h2: refused, the epoch as it was' '
    before=$(vmckpt list j1 --json) &&
    in_host h1 "$WIREPOKE" $CO_IP:7470 tls:$TEST_DIR/h1/vmckpt.conf report:j1/g2/1 >$TEST_DIR/rp &&
    cat $TEST_DIR/rp && grep -q "^ok authenticated as agent h1" $TEST_DIR/rp &&
    grep -q "^error .*j1/g2 is on host h2, not on h1: only its own agent reports for it" $TEST_DIR/rp &&
    test "$(vmckpt list j1 --json)" = "$before"
'

for i in 1 2 3; do eval "G_BEFORE_2_$i=\$(gen_now g$i h$i)"; done
test_expect_success 'second epoch, in 2 streams per VM: incremental for every VM (on the QEMU migration stream: full, one stream)' '
    ! vmckpt checkpoint j1 --streams 9 2>$TEST_DIR/err && cat $TEST_DIR/err &&
    grep -q "\-\-streams .9.: give 1 to 8" $TEST_DIR/err &&
    vmckpt checkpoint j1 --wait --streams 2 >$TEST_DIR/c2.out && cat $TEST_DIR/c2.out &&
    grep -q "epoch 2 committed: 3 VM(s)" $TEST_DIR/c2.out &&
    if incremental; then kind="delta, job" parts="2 streams" parent=1; else kind="full, job" parts="1 stream" parent=0; fi &&
    for i in 1 2 3; do
        grep_log $TEST_DIR/h$i/agent.log "checkpoint of j1/g$i epoch 2 ($kind) to .* in $parts begins" || exit 1
    done &&
    test "$(catalog "select count(*) from epochs where job=\"j1\" and epoch=2 and parent=$parent and state=\"committed\"")" = 3
'
for i in 1 2 3; do eval "G_AFTER_2_$i=\$(gen_now g$i h$i)"; done

# (the epoch to cancel is held at the end of its pre-copy, the
# coordinator's test_hold_file: an incremental epoch of these guests may
# commit before the console's next call)
test_expect_success 'cancel: the epoch aborts everywhere, the guests run on' '
    n0=$(wc -l <$TEST_DIR/co/coordinator.log) &&
    echo "precopy 60000" >$TEST_DIR/hold &&
    vmckpt checkpoint j1 >$TEST_DIR/c3.out && cat $TEST_DIR/c3.out &&
    grep -q "epoch 3 begins" $TEST_DIR/c3.out &&
    wait_until 60 "tail -n +$((n0 + 1)) $TEST_DIR/co/coordinator.log | grep -q \"test_hold: job j1: held at the end of precopy\"" &&
    rm -f $TEST_DIR/hold &&
    vmckpt cancel j1 >$TEST_DIR/x.out && cat $TEST_DIR/x.out &&
    grep -q "epoch 3 cancelled; the guests run on, epoch 2 stays the last committed" $TEST_DIR/x.out &&
    test "$(catalog "select state from job_epochs where job=\"j1\" and epoch=3")" = aborted &&
    test "$(catalog "select count(*) from epochs where job=\"j1\" and epoch=3 and state=\"aborted\"")" = 3 &&
    # every agent hears the abort, and every checkpoint thread ends: failed
    # by the abort, or (on a fast machine) already through its copy, which
    # the abort then drops: nothing of epoch 3 stays
    for i in 1 2 3; do
        wait_until 20 "grep -q \"epoch j1/3 aborted by the coordinator\" $TEST_DIR/h$i/agent.log" &&
        wait_until 20 "grep -Eq \"checkpoint of j1/g$i epoch 3 (failed|durable)\" $TEST_DIR/h$i/agent.log" || exit 1
    done &&
    g=$(gen_now g1 h1) && wait_until 20 "test \"\$(gen_now g1 h1)\" -gt $g" &&
    ! grep -qs "^epoch 3" $TEST_DIR/h2/state/store/j1/g1/manifest &&
    test "$(job_field last_epoch)" = 2
'

test_expect_success 'the coordinator dies during a checkpoint: aborted on restart; guests fenced until it is back, then run on' '
    vmckpt checkpoint j1 | grep -q "epoch 4 begins" &&
    wait_until 20 "grep -q \"checkpoint of j1/g3 epoch 4 (full, job)\" $TEST_DIR/h3/agent.log" &&
    for h in h1 h2 h3; do
        eval "paused_$h=\$(grep -c \"fence: paused j1/\" $TEST_DIR/$h/agent.log || true)" &&
        eval "lifted_$h=\$(grep -c \"fence lifted by the coordinator\" $TEST_DIR/$h/agent.log || true)" || exit 1
    done &&
    stop_daemon co KILL &&
    for h in h1 h2 h3; do
        wait_until 20 "grep -q \"lost the coordinator: 1 job checkpoint(s) aborted\" $TEST_DIR/$h/agent.log" || exit 1
    done &&
    # no coordinator renews the leases: every agent pauses its guest
    for h in h1 h2 h3; do
        eval "n=\$paused_$h" &&
        wait_until 20 "test \$(grep -c \"fence: paused j1/\" $TEST_DIR/$h/agent.log) -gt $n" || exit 1
    done &&
    start_coordinator &&
    grep_log $TEST_DIR/co/coordinator.log "epoch j1/4 was in flight when the coordinator stopped" &&
    # back and registered: the coordinator lifts the fence, the guests run
    for h in h1 h2 h3; do
        eval "n=\$lifted_$h" &&
        wait_until 20 "test \$(grep -c \"fence lifted by the coordinator\" $TEST_DIR/$h/agent.log) -gt $n" || exit 1
    done &&
    g=$(gen_now g2 h2) && wait_until 20 "test \"\$(gen_now g2 h2)\" -gt $g" &&
    wait_until 15 "test \"\$(vmckpt vm list --json | jq -r \"[.[] | .state] | join(\\\",\\\")\")\" = running,running,running" &&
    test "$(catalog "select state from job_epochs where job=\"j1\" and epoch=4")" = aborted &&
    test "$(job_field last_epoch)" = 2
'

# a restart of the whole job from epoch 2: survivors in place
test_expect_success 'restart j1 from epoch 2: every VM in place, the counters of epoch 2' '
    vmckpt restart j1 >$TEST_DIR/r2.out && cat $TEST_DIR/r2.out &&
    grep -q "job j1 restarted from epoch 2: 3 VM(s) on 3 host(s), resumed together" $TEST_DIR/r2.out &&
    for i in 1 2 3; do
        eval "lo=\$G_BEFORE_2_$i hi=\$G_AFTER_2_$i" &&
        wait_until 30 "test -n \"\$(first_gen_restored g$i h$i)\"" &&
        first=$(first_gen_restored g$i h$i) &&
        echo "g$i: first counter after restart $first, epoch 2 taken between $lo and $hi" &&
        test "$first" -gt "$lo" && test "$first" -le "$((hi + 2500))" || exit 1
    done &&
    for i in 1 2 3; do in_guest g$i "$VERIFY" || exit 1; done &&
    for i in 1 2 3; do
        wait_until 30 "since_restore g$i h$i | grep -aq \"memwriter: verify PASS\"" &&
        wait_until 30 "since_restore g$i h$i | grep -aq \"diskwriter: verify PASS\"" || exit 1
    done &&
    for i in 1 2 3; do ! since_restore g$i h$i | grep -aq "verify FAIL" || exit 1; done &&
    vmckpt jobs | grep -q "^j1  *running "
'

manifest_epochs() { grep -o "^epoch [0-9]*" "$TEST_DIR/$2/state/store/j1/$1/manifest" 2>/dev/null | cut -d" " -f2 | tr "\n" " "; }
test_expect_success 'retention: after four committed epochs (1, 2, 5, 6), two remain, in the catalog and the stores' '
    vmckpt checkpoint j1 --wait | grep -q "epoch 5 committed" &&
    vmckpt checkpoint j1 --wait | grep -q "epoch 6 committed" &&
    test "$(catalog "select group_concat(distinct epoch) from epochs where job=\"j1\" and state=\"committed\"")" = "5,6" &&
    test "$(catalog "select count(*) from epochs where job=\"j1\" and state=\"expired\"")" = 6 &&
    for p in "g1 h2" "g2 h3" "g3 h1" "g1 h1" "g2 h2" "g3 h3"; do
        wait_until 30 "test \"\$(manifest_epochs $p)\" = \"5 6 \"" || { echo "$p: $(manifest_epochs $p)"; exit 1; }
    done &&
    test ! -e $TEST_DIR/h2/state/store/j1/g1/e1.pages
'

for i in 1 2 3; do eval "G_BEFORE_7_$i=\$(gen_now g$i h$i)"; done
test_expect_success 'epoch 7, then host h3 dies: the job is marked failed' '
    vmckpt checkpoint j1 --wait | grep -q "epoch 7 committed" &&
    for i in 1 2 3; do eval "G_AFTER_7_$i=\$(gen_now g$i h$i)"; done &&
    declare -p G_AFTER_7_1 G_AFTER_7_2 G_AFTER_7_3 >$TEST_DIR/g7 &&
    "$LAB_CMD" kill-host $LAB h3 &&
    # the base of g3 went with h3: the stores keep their own copy
    rm $TEST_DIR/g3-base.img &&
    wait_until 10 "test \"\$(host_state h3)\" = lost" &&
    wait_until 5 "test \"\$(job_field state)\" = failed" &&
    vmckpt jobs && job_field last_error | grep -q "host h3 lost" &&
    vmckpt vm list | grep -q "^j1  *g3  *h3  *lost"
'

test_expect_success 'restart j1 on the two survivors: g3 on h1 (its store), all from epoch 7' '
    . $TEST_DIR/g7 &&
    vmckpt restart j1 >$TEST_DIR/r7.out && cat $TEST_DIR/r7.out &&
    grep -q "job j1 restarted from epoch 7: 3 VM(s) on 2 host(s)" $TEST_DIR/r7.out &&
    vmckpt vm list | grep -q "^j1  *g3  *h1  *running" &&
    grep -q "j1/g3 disk 0: its base came with the image (base=copy)" $TEST_DIR/h1/agent.log &&
    for p in "1 h1" "2 h2" "3 h1"; do
        set -- $p &&
        eval "lo=\$G_BEFORE_7_$1 hi=\$G_AFTER_7_$1" &&
        wait_until 30 "test -n \"\$(first_gen_restored g$1 $2)\"" &&
        first=$(first_gen_restored g$1 $2) &&
        echo "g$1 on $2: first counter $first, epoch 7 taken between $lo and $hi" &&
        test "$first" -gt "$lo" && test "$first" -le "$((hi + 2500))" || exit 1
    done &&
    for i in 1 2 3; do in_guest g$i "$VERIFY" || exit 1; done &&
    for p in "g1 h1" "g2 h2" "g3 h1"; do
        wait_until 30 "since_restore $p | grep -aq \"memwriter: verify PASS\"" &&
        wait_until 30 "since_restore $p | grep -aq \"diskwriter: verify PASS\"" &&
        ! since_restore $p | grep -aq "verify FAIL" || exit 1
    done &&
    test "$(job_field state)" = running
'

test_expect_success 'the restarted job checkpoints again (full: new QEMUs)' '
    vmckpt checkpoint j1 --wait | grep -q "epoch 8 committed: 3 VM(s)" &&
    test "$(catalog "select count(*) from epochs where job=\"j1\" and epoch=8 and parent=0")" = 3
'

test_expect_success 'bad requests: clear errors' '
    ! vmckpt checkpoint nojob 2>$TEST_DIR/err && grep -q "no job .nojob." $TEST_DIR/err &&
    ! vmckpt cancel j1 2>$TEST_DIR/err && grep -q "no checkpoint in progress" $TEST_DIR/err &&
    ! vmckpt restart j1 --epoch 1 2>$TEST_DIR/err && cat $TEST_DIR/err &&
    grep -q "no committed image of epoch 1" $TEST_DIR/err &&
    ! vmckpt job set j1 --interval soon 2>$TEST_DIR/err && grep -q "give seconds" $TEST_DIR/err
'

test_expect_success 'clean stop, no sanitizer report' '
    for i in 1 2 3; do vmckpt vm stop --job j1 --name g$i >/dev/null || exit 1; done &&
    stop_daemon h1 && stop_daemon h2 && stop_daemon co &&
    no_sanitizer_reports
'
test_done
