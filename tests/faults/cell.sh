# SPDX-License-Identifier: GPL-2.0-or-later
# The fault-injection matrix (docs/reliability.md): one lab of four hosts
# whose job FJ has two guests running memwriter (auto_restart on), and
# `cell PHASE FAULT`, which holds one job epoch (or restart) at the end
# of PHASE (the coordinator's test_hold_file), injects FAULT while it is
# held, heals what the fault broke the way an administrator would, and
# checks what must hold whatever happened:
#   - the committed epochs from before are still committed, and every
#     image file of theirs is byte-identical (or retention removed it);
#   - the epoch in flight ended (committed or aborted; an abort names its
#     cause), or the restart ended;
#   - the job runs, each guest in exactly one QEMU across all hosts;
#   - memwriter verifies its memory in both guests;
#   - the next checkpoint commits.
# Each cell adds a line to $CELLS (tab-separated) for tests/faults/table.
# Sourced by tests/t0697-fault-matrix.t after tests/lib/cluster.sh.

PHASES="precopy align cut drain commit restore"
FAULTS="kill-origin kill-store kill-coordinator kill-qemu hang-agent partition disk-full"

GUEST_JOB=fj
IMG="$top_builddir/lab"
CELLS="$TEST_DIR/cells.tsv"
HOLD="$TEST_DIR/co/hold"
HOLD_MS=3000
co_log="$TEST_DIR/co/coordinator.log"
ip_of() { echo "198.18.1.$((60 + ${1#g}))"; }
store_of() { echo "$TEST_DIR/$1/state/store"; }

fault_cleanup() {
    local h
    cluster_cleanup
    for h in h1 h2 h3 h4; do umount -l "$(store_of $h)" 2>/dev/null || true; done
    rm -rf /dev/shm/vmckpt-$LAB-h?
}
trap fault_cleanup EXIT

# fault_lab_up: hosts h1..h4 (stores on tmpfs, to be filled), g1 on h1
# and g2 on h3, both running memwriter, auto_restart, epoch 1 committed.
fault_lab_up() {
    local h i
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >/dev/null &&
        cluster_up 4 || return 1
    # (a RAM directory each: the lab's hosts share one /dev/shm, and a guest
    # restored elsewhere must not take the name of its stale copy's RAM)
    for h in h1 h2 h3 h4; do
        mkdir -p "$(store_of $h)" /dev/shm/vmckpt-$LAB-$h &&
            echo "ram_dir = /dev/shm/vmckpt-$LAB-$h" >>"$TEST_DIR/$h/vmckpt.conf" &&
            mount -t tmpfs -o size=2g,mode=0700 vmckpt-fault "$(store_of $h)" || return 1
    done
    sed -i "/^\[coordinator\]/a max_precopy_ms = 15000\ncheckpoint_timeout_ms = 60000\ntest_hold_file = $HOLD" \
        "$TEST_DIR/co/vmckpt.conf" &&
        agents_for_guests h1 h2 h3 h4 && start_coordinator || return 1
    for h in h1 h2 h3 h4; do start_agent $h || return 1; done
    wait_until 10 "hosts_up h1 h2 h3 h4" &&
        for i in 1 2; do
            vmckpt vm start --job $GUEST_JOB --name g$i --host h$((2 * i - 1)) --mem 256 \
                --kernel "$IMG/vmlinux" --initrd "$IMG/initrd.img" --ip "$(ip_of g$i)/16" \
                --append "vmckpt.run=memwriter,-m,32,-r,1000,-p,1" >/dev/null || return 1
        done &&
        for i in 1 2; do
            wait_until 90 "test -n \"\$(gen_now g$i h$((2 * i - 1)))\"" || return 1
        done &&
        vmckpt job set $GUEST_JOB --auto-restart yes >/dev/null &&
        vmckpt checkpoint $GUEST_JOB --wait | grep -q "epoch 1 committed" &&
        printf "phase\tfault\twhere\tepoch\toutcome\tcause\tincarnation\tstopped_s\tnext\n" >"$CELLS"
}

# next_host H: the host after H in the coordinator's ring of stores
next_host() { local n=${1#h}; echo "h$((n % 4 + 1))"; }
# the memwriter lines of guest G in its console on host H (a restored
# guest's console is appended to; one left behind stays)
gen_lines() {
    local n
    n=$(grep -ac "memwriter: gen=" "$RUN_BASE/$2/$GUEST_JOB-$1.log" 2>/dev/null)
    echo "${n:-0}"
}
# progress sampler, every 200 ms to FILE: "ms" and the lines of g1 on
# h1..h4, then of g2 on h1..h4
sample_progress() {
    local g h line
    set +x # (not in the test's trace, five times a second)
    while :; do
        line=$(date +%s%3N)
        for g in g1 g2; do
            for h in h1 h2 h3 h4; do line="$line $(gen_lines $g $h)"; done
        done
        echo "$line"
        sleep 0.2
    done >"$1"
}
# longest_stop FILE: the longest time, in s, either guest printed nothing
# (on any host)
longest_stop() {
    awk '{ for (g = 0; g < 2; g++) { n = 0; for (h = 2; h <= 5; h++) n += $(h + 4 * g)
               if (NR == 1 || n != last[g]) {
                   if (NR > 1 && $1 - at[g] > gap) gap = $1 - at[g]
                   last[g] = n; at[g] = $1 } } }
         END { for (g = 0; g < 2; g++) if ($1 - at[g] > gap) gap = $1 - at[g]
               printf "%.1f\n", gap / 1000 }' "$1"
}
# never_twice FILE: between two samples, no guest printed on two hosts
# (two copies running at once)
never_twice() {
    awk 'NR > 1 { for (g = 0; g < 2; g++) { moved = ""
             for (h = 2; h <= 5; h++) { c = h + 4 * g
                 if ($c != prev[c]) moved = moved " h" (h - 1) }
             if (split(moved, m, " ") > 1) {
                 printf "g%d printed on%s at once (ms %s)\n", g + 1, moved, $1; bad = 1 } } }
         { for (c = 2; c <= 9; c++) prev[c] = $c }
         END { exit bad }' "$1"
}
epoch_rows() { vmckpt list $GUEST_JOB --all --json; }
# sha256_files: "SHA256  FILE" for each file named (NUL-separated) on
# stdin, two at a time (a cell hashes a gigabyte or two of images twice:
# OpenSSL's SHA-256 where there is one, twice as fast as sha256sum's)
sha256_files() {
    if command -v openssl >/dev/null; then
        xargs -0 -r -n 2 -P 2 openssl dgst -sha256 -r | sed "s/ [*]/  /"
    else
        xargs -0 -r -n 2 -P 2 sha256sum
    fi
}
# committed_sums: one "EPOCH SHA256 FILE" line per image file of every
# committed epoch, on every store and local copy
committed_sums() {
    local e
    for e in $(epoch_rows | jq -r '.[] | select(.state == "committed") | .epoch' | sort -u); do
        find "$TEST_DIR"/h*/state -path "*/$GUEST_JOB/*" -name "e$e.*" ! -name "*.tmp" \
            -type f -print0 2>/dev/null | sha256_files | sed "s/^/$e /"
    done | sort -k3
}
# sums_kept BEFORE: every committed epoch of BEFORE is committed or
# expired now, and each of its files left is byte-identical
sums_kept() {
    local rows e sum file now
    rows=$(epoch_rows) && [ -n "$rows" ] || return 1
    while read -r e sum file; do
        now=$(echo "$rows" | jq -r "[.[] | select(.epoch == $e)][0].state")
        case "$now" in
        committed | expired) ;;
        *) echo "epoch $e was committed, now: $now" && return 1 ;;
        esac
    done <"$1"
    while read -r e sum file; do
        [ ! -f "$file" ] || printf "%s\0" "$file"
    done <"$1" | sha256_files | sort -k2 >"$TEST_DIR/sums.after"
    while read -r e sum file; do
        now=$(awk -v f="$file" '$2 == f { print $1 }' "$TEST_DIR/sums.after")
        if [ -z "$now" ]; then
            [ ! -f "$file" ] || { echo "epoch $e: $file not read" && return 1; }
            continue # (retention removed it)
        fi
        [ "$now" = "$sum" ] || { echo "epoch $e: $file changed" && return 1; }
    done <"$1"
}
# verify_memory: memwriter in each guest checks its whole memory (both
# asked at once, then each answer waited for)
verify_memory() {
    local g h n vms p1 r1 r2
    vms=$(vmckpt vm list --json) || return 1
    for g in g1 g2; do
        h=$(echo "$vms" | jq -r ".[] | select(.job == \"$GUEST_JOB\" and .vm == \"$g\") | .host")
        eval "h_$g=$h n_$g=$(grep -ac "memwriter: verify PASS" "$(glog $g $h)")"
    done
    in_guest g1 "killall -USR1 memwriter" &
    p1=$!
    in_guest g2 "killall -USR1 memwriter"
    r2=$?
    wait $p1
    r1=$?
    [ $r1 = 0 ] || { echo "g1: no ssh" && return 1; }
    [ $r2 = 0 ] || { echo "g2: no ssh" && return 1; }
    for g in g1 g2; do
        eval "h=\$h_$g n=\$n_$g"
        wait_until 60 "test \$(grep -ac \"memwriter: verify PASS\" $(glog $g $h)) -gt $n" ||
            { echo "$g: no verify PASS" && return 1; }
        ! grep -aq "memwriter: verify FAIL" "$(glog $g $h)" || return 1
    done
}
# qemu_counts: the QEMU processes of g1 and of g2 across the lab's hosts,
# as "N1 N2" (qemu_count of each, from one look at the lab's processes)
qemu_counts() {
    local pid cmd n1=0 n2=0
    for pid in $("$LAB_CMD" ps "$LAB" | sed -n "s/^[^ ]*-h[0-9]*: //p"); do
        cmd=$(tr "\0" " " <"/proc/$pid/cmdline" 2>/dev/null) || continue
        case "$cmd" in
        *"-name g1,process=vmckpt-g1 "*) n1=$((n1 + 1)) ;;
        *"-name g2,process=vmckpt-g2 "*) n2=$((n2 + 1)) ;;
        esac
    done
    echo "$n1 $n2"
}
# once_each: g1 and g2 each run in exactly one QEMU (exactly_once g1 g2)
once_each() {
    local n
    n=$(qemu_counts) && echo "g1: ${n% *} QEMU process(es)" &&
        echo "g2: ${n#* } QEMU process(es)" && test "$n" = "1 1"
}
# job_settled: the job, both guests and the four hosts run, each guest in
# one QEMU, and no epoch or phase is in flight (one look at each list: a
# call of the CLI takes 0.3 s here, and this is polled)
job_settled() {
    local job vms
    job=$(vmckpt jobs --json | jq -c ".[] | select(.job == \"$GUEST_JOB\")") &&
        test "$(echo "$job" | jq -r .state)" = running &&
        vms=$(vmckpt vm list --json) &&
        test "$(echo "$vms" | jq -r "[.[] | select(.job == \"$GUEST_JOB\" and (.vm == \"g1\" or .vm == \"g2\"))] | sort_by(.vm) | map(.state) | join(\" \")")" = "running running" &&
        test "$(vmckpt hosts --json | jq -r '[.hosts[] | select(.name | test("^h[1-4]$")) | .state] | join(" ")')" = "up up up up" &&
        test "$(qemu_counts)" = "1 1" &&
        test -z "$(echo "$job" | jq -r .epoch_in_flight | grep -v '^0$\|^null$')" &&
        test -z "$(echo "$job" | jq -r .phase | grep -v '^null$')"
}

# pick_roles FAULT: the guest V the fault aims at and the host H it hits
# (its host, or for kill-store and disk-full the store of its epoch), so
# that H runs no other guest and stores no other guest's epoch where it
# can: sets CELL_VM and CELL_HOST.
pick_roles() {
    local g o other oo hosts
    hosts=$(vmckpt vm list --json) || return 1
    for g in g1 g2; do
        other=$([ $g = g1 ] && echo g2 || echo g1)
        o=$(echo "$hosts" | jq -r ".[] | select(.job == \"$GUEST_JOB\" and .vm == \"$g\") | .host")
        oo=$(echo "$hosts" | jq -r ".[] | select(.job == \"$GUEST_JOB\" and .vm == \"$other\") | .host")
        case "$1" in
        kill-store | disk-full)
            [ "$(next_host $o)" != "$oo" ] || continue
            CELL_VM=$g CELL_HOST=$(next_host $o) && return 0 ;;
        *)
            [ "$o" != "$(next_host $oo)" ] || continue
            CELL_VM=$g CELL_HOST=$o && return 0 ;;
        esac
    done
    echo "no guest fits fault $1 in this placement" && return 1
}

# inject FAULT: on CELL_VM / CELL_HOST, now
inject() {
    local pid avail
    case "$1" in
    kill-origin | kill-store) kill -KILL "$(pid_of $CELL_HOST)" ;;
    kill-coordinator) kill -KILL "$(pid_of co)" ;;
    kill-qemu)
        pid=$(qemu_pids $CELL_VM $CELL_HOST) && test -n "$pid" && kill -KILL $pid ;;
    hang-agent) kill -STOP "$(pid_of $CELL_HOST)" ;;
    partition) ip -n "vl-$LAB-fab" link set "v$CELL_HOST" down ;;
    disk-full) # (the store writes, and its retention frees, meanwhile: the
        # rest is filled by writing, again while space comes back; a store
        # that hit the full disk removes its partial files at once, so the
        # space left afterwards proves nothing: the cell's outcome shows)
        avail=$(df --output=avail -B1 "$(store_of $CELL_HOST)" | tail -n 1) &&
            fallocate -l $((avail - 32 * 1024 * 1024)) "$(store_of $CELL_HOST)/filler" &&
            for i in 1 2 3 4 5 6 7 8 9 10; do
                { cat /dev/zero >>"$(store_of $CELL_HOST)/filler.rest" 2>/dev/null || true; }
                [ "$(df --output=avail -B1 "$(store_of $CELL_HOST)" | tail -n 1)" -ge 65536 ] || break
            done ;;
    *) echo "no fault $1" && return 1 ;;
    esac
}

# heal FAULT INC: what an administrator does once the fault has done its
# harm (INC: the job's incarnation before it); a host that lost its
# guests comes back only after they were restarted elsewhere
heal() {
    local pid
    case "$1" in
    kill-origin | kill-store | hang-agent | partition)
        wait_until 30 "test \"\$(host_state $CELL_HOST)\" = lost" || return 1
        if [ "$1" != kill-store ]; then
            wait_until 120 "test \"\$(job_field incarnation)\" -gt $2" || return 1
        fi
        case "$1" in
        kill-origin | kill-store) start_agent $CELL_HOST ;;
        hang-agent) kill -CONT "$(pid_of $CELL_HOST)" ;;
        partition) ip -n "vl-$LAB-fab" link set "v$CELL_HOST" up ;;
        esac ;;
    kill-coordinator)
        pid=$(pid_of co)
        wait_until 10 "! alive $pid" && start_coordinator ;;
    kill-qemu) wait_until 120 "test \"\$(job_field incarnation)\" -gt $2" ;;
    disk-full) rm -f "$(store_of $CELL_HOST)"/filler* ;;
    esac
}

# undo_faults: whatever a failed cell left injected is undone, so that the
# next cell starts from a healthy lab (its own failure is reported)
undo_faults() {
    local h pid
    rm -f "$HOLD"
    for h in h1 h2 h3 h4; do
        rm -f "$(store_of $h)"/filler*
        ip -n "vl-$LAB-fab" link set "v$h" up 2>/dev/null
        pid=$(pid_of $h)
        if [ -n "$pid" ] && alive "$pid"; then kill -CONT "$pid"; else start_agent $h; fi
    done
    pid=$(pid_of co)
    { [ -n "$pid" ] && alive "$pid"; } || start_coordinator
    wait_until 240 job_settled || echo "the job did not settle after undoing the faults"
    return 1
}

# the coordinator's lines since line N of its log
co_since() { tail -n +$(($1 + 1)) "$co_log"; }

# cell_run PHASE FAULT: one cell; its row goes to $CELLS when it passes
cell_run() {
    local phase=$1 fault=$2 n0 inc0 epoch sampler st note outcome stop next where
    echo "# cell: $fault at the end of $phase"
    wait_until 180 job_settled || { echo "the job did not settle before the cell"; undo_faults; return 1; }
    pick_roles "$fault" || return 1
    echo "# $fault aims at $CELL_VM, host $CELL_HOST"
    committed_sums >"$TEST_DIR/sums.before"
    n0=$(wc -l <"$co_log") inc0=$(job_field incarnation)
    sample_progress "$TEST_DIR/progress" &
    sampler=$!
    echo "$phase $HOLD_MS" >"$HOLD"
    if [ "$phase" = restore ]; then
        vmckpt restart $GUEST_JOB >"$TEST_DIR/action.out" 2>&1 &
    else
        vmckpt checkpoint $GUEST_JOB --wait >"$TEST_DIR/action.out" 2>&1 &
    fi
    if ! wait_until 120 "co_since $n0 | grep -q \"test_hold: job $GUEST_JOB: held at the end of $phase\""; then
        rm -f "$HOLD"; kill $sampler; cat "$TEST_DIR/action.out"
        return 1
    fi
    rm -f "$HOLD" # one hold: nothing after this cell is held
    epoch=$(co_since $n0 | grep -o "epoch $GUEST_JOB/[0-9]*" | head -n 1 | cut -d/ -f2)
    inject "$fault" || { kill $sampler; undo_faults; return 1; }
    echo "# injected in $([ -n "$epoch" ] && echo "epoch $epoch" || echo "the restart")"
    # the epoch in flight ends (or the restart does), then the healing
    if [ "$phase" != restore ]; then
        wait_until 120 "test \"\$(epoch_rows | jq -r '[.[] | select(.epoch == $epoch)][0].state')\" != running" ||
            { kill $sampler; echo "epoch $epoch did not end"; undo_faults; return 1; }
    fi
    heal "$fault" "$inc0" || { kill $sampler; echo "healing $fault failed"; undo_faults; return 1; }
    wait_until 240 job_settled || { kill $sampler; echo "the job did not settle after the cell"; undo_faults; return 1; }
    kill $sampler
    stop=$(longest_stop "$TEST_DIR/progress")
    never_twice "$TEST_DIR/progress" || return 1
    if [ "$phase" = restore ]; then
        outcome=$(co_since $n0 | grep -o "job $GUEST_JOB restarted from epoch [0-9]*" | tail -n 1)
        outcome=${outcome:-"not restarted"} epoch=-
        note=$(co_since $n0 | grep -o "restart of $GUEST_JOB from epoch [0-9]* failed: .*\|job $GUEST_JOB: restart failed.*\|lost the agent of [a-z0-9]*" |
            head -n 1 | sed "s/ (auto_restart tries it again).*//; s/ (restored VMs stay paused.*//")
        case "$note" in
        "restart of "*) outcome="the restart failed; auto_restart: ${outcome#job $GUEST_JOB }" ;;
        esac
    else
        st=$(epoch_rows | jq -r "[.[] | select(.epoch == $epoch)][0]")
        outcome=$(echo "$st" | jq -r .state) note=$(echo "$st" | jq -r .note)
        if [ "$outcome" = aborted ] && [ -z "$note" ]; then
            echo "epoch $epoch aborted without a cause" && return 1
        fi
    fi
    echo "# outcome: $outcome${note:+ ($note)}; the job stopped at most $stop s"
    once_each && sums_kept "$TEST_DIR/sums.before" && verify_memory || return 1
    vmckpt checkpoint $GUEST_JOB --wait >"$TEST_DIR/next.out" 2>&1 ||
        { cat "$TEST_DIR/next.out"; return 1; }
    next=$(grep -o "epoch [0-9]* committed" "$TEST_DIR/next.out" | tail -n 1)
    [ -n "$next" ] || return 1
    case "$fault" in
    kill-coordinator) where="the coordinator" ;;
    kill-qemu) where="QEMU of $CELL_VM on $CELL_HOST" ;;
    kill-store | disk-full) where="$CELL_HOST (stores $CELL_VM)" ;;
    *) where="$CELL_HOST (runs $CELL_VM)" ;;
    esac
    printf "%s\t%s\t%s\t%s\t%s\t%s\t%s -> %s\t%s\t%s\n" "$phase" "$fault" \
        "$where" "$epoch" "$outcome" "$note" "$inc0" \
        "$(job_field incarnation)" "$stop" "$next" >>"$CELLS"
}

# cell PHASE FAULT: one cell; a cell that fails gets its row too, marked
# FAILED with the first thing it said, so that the table shows every cell
cell() {
    local rc why
    cell_run "$@" >"$TEST_DIR/cell.out"
    rc=$?
    cat "$TEST_DIR/cell.out"
    [ $rc = 0 ] && return 0
    why=$(grep -v "^#" "$TEST_DIR/cell.out" | head -n 1 | tr "\t" " ")
    printf "%s\t%s\t-\t-\tFAILED\t%s\t-\t-\t-\n" "$1" "$2" \
        "${why:-see the test log}" >>"$CELLS"
    return 1
}
