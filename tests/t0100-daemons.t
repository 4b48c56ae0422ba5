#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The coordinator and three agents in three network namespaces: agents
# register and heartbeat, a killed agent's host is declared lost, agents
# reconnect after a coordinator restart, a host whose agent died while the
# coordinator was down is declared lost after the timeout, and everything
# stops cleanly.
. "$top_srcdir/tests/lib/cluster.sh"

cluster_up 3

test_expect_success 'coordinator starts, daemonizes and writes its files' '
    start_coordinator &&
    pid=$(pid_of co) && alive "$pid" &&
    test "$(cat $TEST_DIR/co/state/coordinator.addr)" = "$CO_IP:7470" &&
    test -f $TEST_DIR/co/state/catalog.db
'

test_expect_success 'three agents register their hosts' '
    for h in h1 h2 h3; do start_agent $h || exit 1; done &&
    wait_until 10 "hosts_up h1 h2 h3"
'

test_expect_success 'vmckpt hosts lists them with topology and hypervisors' '
    vmckpt hosts >$TEST_DIR/hosts.txt &&
    cat $TEST_DIR/hosts.txt &&
    grep -q "^HOST .*STATE .*HEARTBEAT" $TEST_DIR/hosts.txt &&
    test $(grep -c -E "^h[123] +up +[0-9.]+s ago" $TEST_DIR/hosts.txt) = 3 &&
    grep -q "qemu" $TEST_DIR/hosts.txt
'

test_expect_success 'vmckpt hosts --json gives the same as JSON' '
    vmckpt hosts --json >$TEST_DIR/hosts.json &&
    test "$(jq -r ".coordinator" $TEST_DIR/hosts.json)" = coordinator &&
    test "$(jq ".hosts | length" $TEST_DIR/hosts.json)" = 3 &&
    test "$(jq -r "[.hosts[].name] | join(\",\")" $TEST_DIR/hosts.json)" = h1,h2,h3 &&
    jq -e "[.hosts[] | select(.cores < 1 or .threads < 1 or .numa_nodes < 1)] | length == 0" $TEST_DIR/hosts.json >/dev/null &&
    jq -e "[.hosts[].hypervisors[] | select(.name == \"qemu\")] | length == 3" $TEST_DIR/hosts.json >/dev/null &&
    jq -e "[.hosts[].last_heartbeat_ms] | max < 1500" $TEST_DIR/hosts.json >/dev/null &&
    test "$(jq -r "[.hosts[].store_addr] | join(\",\")" $TEST_DIR/hosts.json)" = 198.18.0.11:7471,198.18.0.12:7471,198.18.0.13:7471
'

# hb_seen N: poll the hosts; true once every host was seen to get N new
# heartbeats (its last_heartbeat_ms fell), or as soon as one is not up
# (hb_bad then names it)
declare -A hb_prev hb_count
hb_bad=
hb_seen() {
    local n s a done=1
    while read -r n s a; do
        [ "$s" = up ] || { hb_bad="$n is $s"; return 0; }
        [ "$a" -lt "${hb_prev[$n]:-999999}" ] && hb_count[$n]=$((${hb_count[$n]:-0} + 1))
        hb_prev[$n]=$a
        [ "${hb_count[$n]:-0}" -ge "$1" ] || done=0
    done < <(vmckpt hosts --json | jq -r ".hosts[] | \"\(.name) \(.state) \(.last_heartbeat_ms)\"")
    [ $done = 1 ]
}

test_expect_success 'heartbeats keep the hosts up: each seen to get 20 more (past the 3 s timeout), none ever other than up' '
    wait_until 30 "hb_seen 20" 0.05 &&
    test -z "$hb_bad" &&
    test "${#hb_count[@]}" = 3 &&
    jq -e "[.hosts[].last_heartbeat_ms] | max < 1000" <(vmckpt hosts --json) >/dev/null
'

test_expect_success 'a killed agent: its host is declared lost after the timeout' '
    test "$(host_state h2)" = up &&
    stop_daemon h2 KILL &&
    wait_until 10 "test \"\$(host_state h2)\" = lost" &&
    grep_log $TEST_DIR/co/coordinator.log "host h2: up -> lost (no heartbeat for" &&
    hosts_up h1 h3
'

test_expect_success 'the agent restarted: the host is up again' '
    start_agent h2 &&
    wait_until 5 "test \"\$(host_state h2)\" = up" &&
    grep_log $TEST_DIR/co/coordinator.log "host h2 registered again"
'

test_expect_success 'coordinator restart: the catalog remembers hosts, agents reconnect' '
    stop_daemon co TERM &&
    grep_log $TEST_DIR/co/coordinator.log "stopped" &&
    test ! -f $TEST_DIR/co/state/coordinator.pid &&
    wait_until 10 "grep -q retrying $TEST_DIR/h1/agent.log" &&
    start_coordinator &&
    grep_log $TEST_DIR/co/coordinator.log "catalog lists 3 host(s)" &&
    wait_until 10 "hosts_up h1 h2 h3" &&
    for h in h1 h2 h3; do
        test $(grep -c "registered with coordinator" $TEST_DIR/$h/agent.log) -ge 2 || exit 1
    done
'

# h1_polled PID: one poll of h1's state (i counts them, bad says one was
# not up); true once PID, the launch, has ended. An empty answer is the
# console timing out on a loaded machine, not a state.
h1_polled() {
    local s
    s=$(host_state h1)
    i=$((i + 1))
    case "$s" in up | "") ;; *) echo "h1 is $s after $i polls"; bad=1 ;; esac
    ! alive "$1"
}

test_expect_success 'an agent busy for 5 s (a slow guest launch) keeps its host up' '
    printf "#!/bin/sh\n[ \"\$1\" = --version ] && exec qemu-system-x86_64 --version\nsleep 5\nexit 1\n" \
        >$TEST_DIR/slow-qemu && chmod +x $TEST_DIR/slow-qemu &&
    stop_daemon h1 TERM && wait_until 5 "test \"\$(host_state h1)\" = down" &&
    start_agent h1 -o agent.qemu=$TEST_DIR/slow-qemu &&
    wait_until 5 "test \"\$(host_state h1)\" = up" || exit 1
    # (only the launch in the background, not the steps before it)
    (vmckpt -t 20000 vm start --name s1 --host h1 --kernel /nonexistent \
        >$TEST_DIR/slow.out 2>&1; echo "rc=$?" >>$TEST_DIR/slow.out) &
    slow=$! bad= i=0 &&
    # the host is polled for as long as the launch takes
    wait_until 60 "h1_polled $slow" 0.2 &&
    wait && cat $TEST_DIR/slow.out && test -z "$bad" && test $i -ge 5 &&
    grep -q "exited at start" $TEST_DIR/slow.out && grep -q "rc=1" $TEST_DIR/slow.out &&
    ! grep -q "host h1: up -> lost" <(tail -n 20 $TEST_DIR/co/coordinator.log)
'

test_expect_success 'vm start refuses an unknown hypervisor, a Xen guest for a host without a usable Xen back end, and Xen options without Xen' '
    ! vmckpt vm start --name x1 --host h2 --kernel /k --hypervisor vbox 2>$TEST_DIR/hv.err &&
    cat $TEST_DIR/hv.err && grep -q "hypervisor .vbox.: give qemu or xen" $TEST_DIR/hv.err &&
    ! vmckpt vm start --name x1 --host h2 --kernel /k --hypervisor xen 2>$TEST_DIR/xen.err &&
    cat $TEST_DIR/xen.err && grep -q "host h2 has no usable Xen back end" $TEST_DIR/xen.err &&
    ! vmckpt vm start --name x1 --host h2 --adopt d1 --xl-config /k 2>$TEST_DIR/adopt.err &&
    cat $TEST_DIR/adopt.err && grep -q "is for --hypervisor xen" $TEST_DIR/adopt.err &&
    ! vmckpt vm start --name x1 --host h2 --hypervisor xen --adopt d1 --kernel /k 2>$TEST_DIR/adopt2.err &&
    cat $TEST_DIR/adopt2.err && grep -q "taking over domain d1 needs its xl configuration" $TEST_DIR/adopt2.err &&
    vmckpt vm list --json | jq -e "[.[] | select(.vm == \"x1\")] | length == 0"
'

test_expect_success 'vm start refuses bad disks: the console a malformed --disk, the coordinator a Xen guest with disks, the agent a missing base (shared or copied), leaving no chain' '
    ! vmckpt vm start --name d1 --host h2 --kernel /k --disk rel.img 2>$TEST_DIR/d.err &&
    cat $TEST_DIR/d.err && grep -q "the base image must be an absolute path" $TEST_DIR/d.err &&
    ! vmckpt vm start --name d1 --host h2 --kernel /k --disk /b.img,format=vmdk 2>$TEST_DIR/d.err &&
    cat $TEST_DIR/d.err && grep -q "format=vmdk.: give format=raw|qcow2 or base=shared|copy" $TEST_DIR/d.err &&
    ! vmckpt vm start --name d1 --host h2 --kernel /k $(for i in 1 2 3 4 5 6 7 8 9; do echo --disk /b$i.img; done) 2>$TEST_DIR/d.err &&
    cat $TEST_DIR/d.err && grep -q "a guest has at most 8 disks" $TEST_DIR/d.err &&
    ! vmckpt vm start --name d1 --host h2 --kernel /k --disk /nonexistent/copied.img,format=raw,base=copy 2>$TEST_DIR/d.err &&
    cat $TEST_DIR/d.err &&
    grep -q "disk 0: base image /nonexistent/copied.img: No such file or directory" $TEST_DIR/d.err &&
    ! vmckpt vm start --name d1 --host nowhere --kernel /k --hypervisor xen --disk /b.img 2>$TEST_DIR/d.err &&
    cat $TEST_DIR/d.err && grep -q "guest disks are not supported for xen guests yet (see docs/xen.md" $TEST_DIR/d.err &&
    ! vmckpt vm start --name d1 --host h2 --kernel /k --disk /nonexistent/base.img,format=raw 2>$TEST_DIR/d.err &&
    cat $TEST_DIR/d.err &&
    grep -q "disk 0: base image /nonexistent/base.img: No such file or directory" $TEST_DIR/d.err &&
    test -z "$(ls $TEST_DIR/h2/state/disks)" &&
    ! in_host h2 ip link show vt-d1 >/dev/null 2>&1
'

test_expect_success 'a guest whose QMP socket path would be too long is refused before launch, naming [agent] run_dir and the limit' '
    long=$RUN_BASE/h2-$(printf "%0100d" 0) &&
    stop_daemon h2 TERM && start_agent h2 -o agent.run_dir=$long &&
    wait_until 5 "test \"\$(host_state h2)\" = up" &&
    grep_log $TEST_DIR/h2/agent.log "run_dir $long is" &&
    ! vmckpt vm start --name s2 --host h2 --kernel /k 2>$TEST_DIR/sock.err &&
    cat $TEST_DIR/sock.err &&
    grep -q "QMP socket path would be [0-9]* bytes, over the 107" $TEST_DIR/sock.err &&
    grep -q "set \[agent\] run_dir" $TEST_DIR/sock.err &&
    ! in_host h2 ip link show vt-s2 >/dev/null 2>&1 &&
    test -z "$(ls $long | grep -vx guard.pid)"
'

test_expect_success 'SIGTERM stops an agent cleanly; its host shows down' '
    stop_daemon h3 TERM &&
    grep_log $TEST_DIR/h3/agent.log "stopped" &&
    wait_until 3 "test \"\$(host_state h3)\" = down" &&
    grep_log $TEST_DIR/co/coordinator.log "host h3: up -> down (agent stopped"
'

test_expect_success 'an agent dies while the coordinator is down: its host goes unknown -> lost after the timeout' '
    stop_daemon co TERM &&
    stop_daemon h2 KILL &&
    start_coordinator &&
    wait_until 10 "test \"\$(host_state h2)\" = lost" &&
    grep_log $TEST_DIR/co/coordinator.log "host h2: unknown -> lost (not registered within 4000 ms of the coordinator.s start)" &&
    test "$(sqlite3 $TEST_DIR/co/state/catalog.db "select state from hosts where name = \"h2\"")" = lost &&
    test "$(host_state h1)" = up &&
    ! grep -q "host h1: unknown -> lost" $TEST_DIR/co/coordinator.log &&
    start_agent h2 && wait_until 5 "test \"\$(host_state h2)\" = up"
'

test_expect_success 'everything stops cleanly, with no sanitizer report' '
    stop_daemon h1 TERM && stop_daemon h2 TERM && stop_daemon co TERM &&
    grep_log $TEST_DIR/co/coordinator.log "stopped" &&
    no_sanitizer_reports
'

test_done
