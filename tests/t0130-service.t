#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The daemons under a service manager, without one: each runs in the
# foreground with NOTIFY_SOCKET naming a socket this test listens on (a
# path for the coordinator, an abstract name for the agent). READY=1 comes
# once the daemon serves, RELOADING=1 and READY=1 frame a SIGHUP (the log
# file opened anew after a rotation, log_level applied, a broken file
# refused while the daemon serves on), STOPPING=1 starts a clean stop. The
# systemd units pass systemd-analyze verify, and the logrotate file
# rotates both daemons' logs.
. "$top_srcdir/tests/lib/cluster.sh"

command -v socat >/dev/null || skip_all "needs socat"

cluster_up 1
CO_CONF=$TEST_DIR/co/vmckpt.conf
H1_CONF=$TEST_DIR/h1/vmckpt.conf
LOGS=$TEST_DIR/logs
CO_LOG=$LOGS/coordinator.log
H1_LOG=$LOGS/agent.log
CO_NOTIFY=$TEST_DIR/co/notify.out
H1_NOTIFY=$TEST_DIR/h1/notify.out
# a UNIX socket path holds at most 107 bytes: in the short run directory
CO_SOCKET=$RUN_BASE/co-notify
H1_SOCKET=vmckpt-$LAB-h1 # abstract: per network namespace
mkdir -p $LOGS
sed -i "/^\[coordinator\]/a log = $CO_LOG" $CO_CONF
# the agent's probe runs 'QEMU --version': this one says what it inherited
printf '#!/bin/sh\necho "NOTIFY_SOCKET=${NOTIFY_SOCKET-unset}" >>%s\nexec qemu-system-x86_64 "$@"\n' \
    $TEST_DIR/h1/qemu-env >$TEST_DIR/h1/env-qemu
chmod +x $TEST_DIR/h1/env-qemu
sed -i "/^\[agent\]/a log = $H1_LOG\nqemu = $TEST_DIR/h1/env-qemu" $H1_CONF

# framed FILE: the last RELOADING=1 in FILE came with its MONOTONIC_USEC=
# and was followed by a READY=1
framed() {
    awk '/^RELOADING=1$/ { r = 1; m = 0; ok = 0; next }
         r && /^MONOTONIC_USEC=[0-9]+$/ { m = 1 }
         r && /^READY=1$/ { ok = m; r = 0 }
         END { exit !ok }' "$1"
}
# count WORD FILE: how many lines of FILE are WORD
count() { grep -c -x -- "$1" "$2"; }

for u in coordinator agent; do
    unit=$top_builddir/scripts/systemd/vmckpt-$u.service
    test_expect_success "the unit vmckpt-$u.service is built: notify, -f, reload by SIGHUP" '
        test -f $unit && ! grep -n "@[a-z]*@" $unit &&
        grep -qx "Type=notify" $unit &&
        grep -qx "ExecStart=/.*/vmckpt-$u -f" $unit &&
        grep -qx "ExecReload=/bin/kill -HUP \$MAINPID" $unit &&
        grep -qx "Restart=on-failure" $unit
    '
done
test_expect_success 'the agent unit leaves the guests to the agent (KillMode=process)' '
    grep -qx "KillMode=process" $top_builddir/scripts/systemd/vmckpt-agent.service
'

if command -v systemd-analyze >/dev/null; then
    # verify wants the executables the units name: the build tree's
    test_expect_success 'systemd-analyze verify accepts both units (ExecStart in the build tree)' '
        mkdir -p $TEST_DIR/units &&
        for u in coordinator agent; do
            sed "s|^ExecStart=/.*/vmckpt-$u |ExecStart=$top_builddir/$u/vmckpt-$u |" \
                $top_builddir/scripts/systemd/vmckpt-$u.service \
                >$TEST_DIR/units/vmckpt-$u.service || exit 1
        done &&
        grep -q "^ExecStart=$top_builddir/agent/vmckpt-agent -f" $TEST_DIR/units/vmckpt-agent.service &&
        systemd-analyze verify $TEST_DIR/units/vmckpt-coordinator.service \
            $TEST_DIR/units/vmckpt-agent.service >$TEST_DIR/verify.out 2>&1
        rc=$?
        cat $TEST_DIR/verify.out
        test $rc = 0 && test ! -s $TEST_DIR/verify.out
    '
else
    test_skip 'systemd-analyze verify accepts both units' 'no systemd-analyze (Debian package systemd)'
fi

test_expect_success 'the coordinator in the foreground reports READY=1 once it answers' '
    in_host co socat -u UNIX-RECV:$CO_SOCKET - >>$CO_NOTIFY 2>>$TEST_DIR/co/socat.err &
    wait_until 5 "test -S $CO_SOCKET" &&
    NOTIFY_SOCKET=$CO_SOCKET in_host co "$COORD_BIN" -f -c $CO_CONF \
        >>$TEST_DIR/co/stderr 2>&1 &
    wait_until 20 "grep -qx READY=1 $CO_NOTIFY" 0.02 &&
    vmckpt hosts | grep -q "No host has registered" &&
    test -s $TEST_DIR/co/state/coordinator.pid &&
    grep -qx "STATUS=listening on $CO_IP:7470 as .coordinator.; MPI ranks. endpoint on $CO_IP:7471" $CO_NOTIFY &&
    test $(count READY=1 $CO_NOTIFY) = 1 && ! grep -q RELOADING $CO_NOTIFY
'

test_expect_success 'the agent reports READY=1 (abstract socket), then that it registered; QEMU does not inherit NOTIFY_SOCKET' '
    in_host h1 socat -u ABSTRACT-RECV:$H1_SOCKET - >>$H1_NOTIFY 2>>$TEST_DIR/h1/socat.err &
    wait_until 5 "in_host h1 ss -xa | grep -q \"@$H1_SOCKET \"" &&
    NOTIFY_SOCKET=@$H1_SOCKET in_host h1 "$AGENT_BIN" -f -c $H1_CONF \
        >>$TEST_DIR/h1/stderr 2>&1 &
    wait_until 20 "grep -qx READY=1 $H1_NOTIFY" 0.02 &&
    test -s $TEST_DIR/h1/state/agent.pid &&
    grep -q "^STATUS=host h1: store on [0-9.]*:7471, 0 guest(s); connecting to coordinator $CO_IP:7470$" $H1_NOTIFY &&
    wait_until 10 "test \"\$(host_state h1)\" = up" &&
    wait_until 5 "grep -qx \"STATUS=host h1: registered with coordinator $CO_IP:7470\" $H1_NOTIFY" &&
    cat $TEST_DIR/h1/qemu-env && grep -qx NOTIFY_SOCKET=unset $TEST_DIR/h1/qemu-env
'

test_expect_success 'SIGHUP after a rotation: the coordinator logs to a new file, RELOADING=1 then READY=1' '
    pid=$(pid_of co) && n=$(count READY=1 $CO_NOTIFY) &&
    mv $CO_LOG $CO_LOG.1 &&
    kill -HUP $pid &&
    wait_until 10 "grep -q \"reloaded: log file $CO_LOG reopened\" $CO_LOG 2>/dev/null" &&
    grep_log $CO_LOG.1 "SIGHUP: reloading $CO_CONF" &&
    ! grep -q "reloaded:" $CO_LOG.1 &&
    wait_until 5 "test \$(count READY=1 $CO_NOTIFY) -gt $n" &&
    framed $CO_NOTIFY && grep -qx "STATUS=reloading the configuration" $CO_NOTIFY &&
    tail -n 1 $CO_NOTIFY | grep -qx "STATUS=listening on $CO_IP:7470 as .coordinator.; .*" &&
    alive $pid && vmckpt hosts | grep -q "^h1 *up"
'

test_expect_success 'vmckpt-coordinator --reload: log_level applied, other changed keys named for the next start' '
    pid=$(pid_of co) && cp $CO_CONF $TEST_DIR/co/good.conf &&
    sed -i -e "/^\[coordinator\]/a log_level = debug" \
        -e "s/^heartbeat_interval_ms = 200/heartbeat_interval_ms = 300/" $CO_CONF &&
    "$COORD_BIN" -c $CO_CONF --reload >$TEST_DIR/reload.out && cat $TEST_DIR/reload.out &&
    grep -q "asked pid $pid to reload" $TEST_DIR/reload.out &&
    wait_until 10 "grep -q \"reloaded: log file $CO_LOG reopened; log_level info -> debug; changed, for the next start: \[coordinator\] heartbeat_interval_ms$\" $CO_LOG" &&
    vmckpt hosts >/dev/null &&
    wait_until 5 "grep -q \" vmckpt-coordinator debug: \" $CO_LOG" &&
    test "$(jq -r .hosts[0].state <(vmckpt hosts --json))" = up
'

test_expect_success 'a broken file: the error is logged in a new log file, the settings stay, the coordinator serves on' '
    pid=$(pid_of co) && n=$(count READY=1 $CO_NOTIFY) &&
    sed -i "/^\[coordinator\]/a heartbeat_intervall_ms = 5" $CO_CONF &&
    mv $CO_LOG $CO_LOG.2 &&
    "$COORD_BIN" -c $CO_CONF --reload >/dev/null &&
    wait_until 10 "grep -q \"reload failed, the running settings stay: $CO_CONF:[0-9]*: unknown key .heartbeat_intervall_ms. in \[coordinator\]\" $CO_LOG 2>/dev/null" &&
    wait_until 5 "test \$(count READY=1 $CO_NOTIFY) -gt $n" && framed $CO_NOTIFY &&
    tail -n 1 $CO_NOTIFY | grep -q "^STATUS=reload failed, running settings kept: .*heartbeat_intervall_ms" &&
    alive $pid && vmckpt hosts | grep -q "^h1 *up" &&
    ! grep -q "log_level debug -> info" $CO_LOG &&
    wait_until 5 "grep -q \" vmckpt-coordinator debug: \" $CO_LOG" &&
    cp $TEST_DIR/co/good.conf $CO_CONF &&
    printf "[coordinator\n" >>$CO_CONF && kill -HUP $pid &&
    wait_until 10 "grep -q \"reload failed, the running settings stay: $CO_CONF:[0-9]*: syntax error\" $CO_LOG" &&
    cp $TEST_DIR/co/good.conf $CO_CONF && kill -HUP $pid &&
    wait_until 10 "grep -q \"reloaded: log file $CO_LOG reopened; log_level debug -> info$\" $CO_LOG" &&
    alive $pid
'

test_expect_success 'SIGHUP after a rotation: the agent logs to a new file, RELOADING=1 then READY=1, its status again' '
    pid=$(pid_of h1) && n=$(count READY=1 $H1_NOTIFY) &&
    mv $H1_LOG $H1_LOG.1 &&
    kill -HUP $pid &&
    wait_until 10 "grep -q \"reloaded: log file $H1_LOG reopened\" $H1_LOG 2>/dev/null" &&
    grep_log $H1_LOG.1 "SIGHUP: reloading $H1_CONF" &&
    wait_until 5 "test \$(count READY=1 $H1_NOTIFY) -gt $n" && framed $H1_NOTIFY &&
    tail -n 1 $H1_NOTIFY | grep -qx "STATUS=host h1: registered with coordinator $CO_IP:7470" &&
    alive $pid && test "$(host_state h1)" = up
'

test_expect_success 'the agent checks a new file as its start would: a bad value is refused' '
    pid=$(pid_of h1) && cp $H1_CONF $TEST_DIR/h1/good.conf &&
    sed -i "/^\[agent\]/a accel = fast" $H1_CONF && kill -HUP $pid &&
    wait_until 10 "grep -q \"reload failed, the running settings stay: \[agent\] accel = .fast.: expected auto, kvm or tcg\" $H1_LOG" &&
    cp $TEST_DIR/h1/good.conf $H1_CONF && alive $pid &&
    test "$(host_state h1)" = up
'

if command -v logrotate >/dev/null; then
    test_expect_success 'the logrotate file parses, and rotates both logs: each daemon writes a new one' '
        f=$top_builddir/scripts/logrotate/vmckpt &&
        ! grep -n "@[a-z]*@" $f &&
        logrotate -d -s $TEST_DIR/logrotate.dry $f >$TEST_DIR/logrotate-d.out 2>&1 &&
        ! grep -i "error" $TEST_DIR/logrotate-d.out &&
        mkdir -p $TEST_DIR/conf &&
        ln -sf $CO_CONF $TEST_DIR/conf/coordinator.conf &&
        ln -sf $H1_CONF $TEST_DIR/conf/agent.conf &&
        sed -e "s|^/var/log/vmckpt/|$LOGS/|" \
            -e "s|[^ ]*/vmckpt-\\\$d|$top_builddir/\$d/vmckpt-\$d|g" \
            -e "s|--reload|-c $TEST_DIR/conf/\$d.conf --reload|" \
            $f >$TEST_DIR/logrotate.conf &&
        grep -q "^$LOGS/\*.log {" $TEST_DIR/logrotate.conf &&
        grep -q "$top_builddir/\$d/vmckpt-\$d -c" $TEST_DIR/logrotate.conf &&
        rm -f $CO_LOG.[12] $H1_LOG.1 &&
        logrotate -f -s $TEST_DIR/logrotate.state $TEST_DIR/logrotate.conf &&
        grep_log $CO_LOG.1 "SIGHUP: reloading" && grep_log $H1_LOG.1 "SIGHUP: reloading" &&
        wait_until 10 "grep -q \"reloaded: log file $CO_LOG reopened\" $CO_LOG 2>/dev/null" &&
        wait_until 10 "grep -q \"reloaded: log file $H1_LOG reopened\" $H1_LOG 2>/dev/null"
    '
else
    test_skip 'the logrotate file rotates both logs' 'no logrotate (Debian package logrotate)'
fi

test_expect_success 'SIGTERM: STOPPING=1, then each daemon stops cleanly' '
    pid=$(pid_of h1) && kill -TERM $pid &&
    wait_until 10 "! alive $pid" &&
    grep -qx STOPPING=1 $H1_NOTIFY &&
    grep -q "^STATUS=shutting down (signal 15): stopping the guests$" $H1_NOTIFY &&
    grep_log $H1_LOG "stopped" &&
    pid=$(pid_of co) && kill -TERM $pid &&
    wait_until 10 "! alive $pid" &&
    grep -qx STOPPING=1 $CO_NOTIFY &&
    tail -n 1 $CO_NOTIFY | grep -qx "STATUS=shutting down (signal 15)" &&
    grep_log $CO_LOG "stopped" &&
    no_sanitizer_reports
'

test_done
