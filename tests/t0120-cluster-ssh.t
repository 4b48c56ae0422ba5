#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# 'vmckpt cluster start|stop' against real OpenSSH servers, one in each
# host's namespace: the console on the coordinator's host starts and stops
# the agents over SSH (libssh2) and waits for them to register; a host
# missing from known_hosts, a host whose key changed, a key the hosts do
# not accept, a host without an SSH server, an agent that cannot start and
# one that registers under another name each fail with a message saying
# so, and nothing runs on a refused host.
. "$top_srcdir/tests/lib/cluster.sh"

SSHD=/usr/sbin/sshd
[ -x "$SSHD" ] || skip_all "needs OpenSSH's sshd (openssh-server)"
command -v ssh-keygen >/dev/null || skip_all "needs ssh-keygen (openssh-client)"
command -v unshare >/dev/null || skip_all "needs unshare (util-linux)"

cluster_up 3
# keys, known_hosts and the agent wrapper in the short run directory: the
# [launch] lines that name them must fit the INI parser whatever the
# checkout's depth
S=$RUN_BASE/ssh
mkdir -p "$S" /run/sshd

# The console resolves the hosts' names through a hosts file of its own,
# bind-mounted over /etc/hosts in a private mount namespace.
for h in h1 h2 h3 h4; do
    echo "$("$LAB_CMD" ip "$h") $h"
done >"$S/hosts"

# console ARGS...: vmckpt on the coordinator's host, with those names
console() {
    in_host co unshare -m sh -c 'mount --bind "$1" /etc/hosts && shift && exec "$@"' \
        sh "$S/hosts" "$CLI_BIN" -c "$TEST_DIR/co/vmckpt.conf" "$@"
}

start_sshd() {
    in_host "$1" "$SSHD" -f "$TEST_DIR/$1/sshd_config" -E "$TEST_DIR/$1/sshd.log"
}

ssh_state() {  # the hosts' states, in order, for HOST...
    local h out=""
    for h in "$@"; do out="$out$(host_state "$h")"; done
    echo "$out"
}

test_expect_success 'an SSH server with its own host key on each host' '
    ssh-keygen -q -t ed25519 -N "" -f $S/id_ed25519 -C vmckpt-admin &&
    ssh-keygen -q -t ed25519 -N "" -f $S/stranger -C stranger &&
    cp $S/id_ed25519.pub $S/authorized_keys &&
    for h in h1 h2 h3; do
        ssh-keygen -q -t ed25519 -N "" -f $TEST_DIR/$h/ssh_host_ed25519_key -C $h &&
        cat >$TEST_DIR/$h/sshd_config <<EOF || exit 1
ListenAddress $("$LAB_CMD" ip $h):22
HostKey $TEST_DIR/$h/ssh_host_ed25519_key
PidFile $TEST_DIR/$h/sshd.pid
AuthorizedKeysFile $S/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
LogLevel VERBOSE
EOF
        start_sshd $h || exit 1
        echo "$h $(cut -d" " -f1-2 $TEST_DIR/$h/ssh_host_ed25519_key.pub)" >>$S/known_hosts
    done &&
    printf "#!/bin/sh\nh=\$1; shift\nexec %s -c %s/\$h/vmckpt.conf -o agent.log=%s/\$h/agent.log \"\$@\"\n" \
        "$AGENT_BIN" "$TEST_DIR" "$TEST_DIR" >$S/agent && chmod +x $S/agent &&
    cat $S/agent &&
    cat >>$TEST_DIR/co/vmckpt.conf <<EOF &&
[launch]
hosts = h1 h2 h3
agent_command = $S/agent %h
ssh_identity = $S/id_ed25519
known_hosts = $S/known_hosts
connect_timeout_ms = 5000
register_timeout_ms = 15000
EOF
    start_coordinator
'

test_expect_success 'cluster start: every agent started over SSH and registered' '
    console cluster start >$TEST_DIR/start.out 2>&1; rc=$?
    cat $TEST_DIR/start.out
    test $rc = 0 &&
    test $(grep -c "^h[123]: agent started$" $TEST_DIR/start.out) = 3 &&
    grep -q "^every started agent registered with the coordinator$" $TEST_DIR/start.out &&
    test "$(ssh_state h1 h2 h3)" = upupup &&
    for h in h1 h2 h3; do
        grep -q "Accepted publickey for root" $TEST_DIR/$h/sshd.log || exit 1
        alive "$(pid_of $h)" || exit 1
    done
'

test_expect_success 'the agents log to their files, not to the SSH session' '
    for h in h1 h2 h3; do
        grep -q "vmckpt-agent info: .* on host $h:" $TEST_DIR/$h/agent.log || exit 1
    done
'

test_expect_success 'cluster stop of one host: its agent says goodbye and ends' '
    pid=$(pid_of h2) &&
    console cluster stop h2 >$TEST_DIR/stop.out 2>&1; rc=$?
    cat $TEST_DIR/stop.out
    test $rc = 0 &&
    grep -q "^h2: vmckpt-agent: stopped (pid $pid)$" $TEST_DIR/stop.out &&
    grep -q "^h2: agent stopped$" $TEST_DIR/stop.out &&
    ! alive $pid &&
    wait_until 5 "test \"\$(ssh_state h1 h2 h3)\" = updownup" &&
    console cluster stop h2 >$TEST_DIR/stop2.out 2>&1 &&
    grep -q "^h2: vmckpt-agent: not running" $TEST_DIR/stop2.out
'

test_expect_success 'an agent told another name than its credential names: it does not start, the console shows why' '
    sed -i "s|^agent_command = .*|& -o agent.name=elsewhere|; s|^register_timeout_ms = .*|register_timeout_ms = 2000|" $TEST_DIR/co/vmckpt.conf &&
    console cluster start h2 >$TEST_DIR/name.out 2>&1; rc=$?
    sed -i "s| -o agent.name=elsewhere$||; s|^register_timeout_ms = .*|register_timeout_ms = 15000|" $TEST_DIR/co/vmckpt.conf
    cat $TEST_DIR/name.out
    console cluster stop h2 &&
    test $rc = 1 &&
    grep -q "^h2: vmckpt-agent: \[tls\] cert is the credential of agent .h2.; this host needs an agent.s named .elsewhere." $TEST_DIR/name.out &&
    grep -q "^h2: FAILED: .* ended with status 2" $TEST_DIR/name.out &&
    test -z "$(host_state elsewhere)" && test "$(host_state h2)" = down
'

test_expect_success 'an agent logging to stderr holds the session: the timeout says why' '
    sed -i "s|^agent_command = .*|& -o agent.log=stderr|; /^register_timeout_ms/a command_timeout_ms = 3000" $TEST_DIR/co/vmckpt.conf &&
    console cluster start --no-wait h2 >$TEST_DIR/held.out 2>&1; rc=$?
    sed -i "s| -o agent.log=stderr$||; /^command_timeout_ms = 3000$/d" $TEST_DIR/co/vmckpt.conf
    cat $TEST_DIR/held.out
    console cluster stop h2 &&
    test $rc = 1 &&
    grep -q "^h2: .* did not end within 3000 ms (an agent that logs to stderr keeps the session open" $TEST_DIR/held.out &&
    test "$(host_state h2)" = down
'

test_expect_success 'an agent that cannot start: its error is shown, the host fails' '
    sed -i "s|^agent_command = .*|& -o agent.log_level=loud|" $TEST_DIR/co/vmckpt.conf &&
    console cluster start h2 >$TEST_DIR/bad.out 2>&1; rc=$?
    sed -i "s| -o agent.log_level=loud$||" $TEST_DIR/co/vmckpt.conf
    cat $TEST_DIR/bad.out
    test $rc = 1 &&
    grep -q "^h2: vmckpt-agent: \[agent\] log_level = .loud.: expected" $TEST_DIR/bad.out &&
    grep -q "^h2: FAILED: .$S/agent h2 -o agent.log_level=loud. ended with status 2$" $TEST_DIR/bad.out &&
    test "$(host_state h2)" = down
'

test_expect_success 'a host missing from known_hosts is refused before anything runs' '
    cp $S/known_hosts $S/known_hosts.all &&
    grep -v "^h3 " $S/known_hosts.all >$S/known_hosts &&
    accepted=$(grep -c "Accepted publickey" $TEST_DIR/h3/sshd.log) &&
    console cluster stop h3 >$TEST_DIR/unknown.out 2>&1; rc=$?
    cp $S/known_hosts.all $S/known_hosts
    cat $TEST_DIR/unknown.out
    test $rc = 1 &&
    grep -q "^h3: REFUSED: no ssh-ed25519 key for it in $S/known_hosts" $TEST_DIR/unknown.out &&
    test "$(grep -c "Accepted publickey" $TEST_DIR/h3/sshd.log)" = "$accepted" &&
    alive "$(pid_of h3)" && test "$(host_state h3)" = up
'

test_expect_success 'a host whose key changed is refused, naming the danger' '
    ssh-keygen -q -t ed25519 -N "" -f $S/impostor -C impostor &&
    sed "s|^h3 .*|h3 $(cut -d" " -f1-2 $S/impostor.pub)|" $S/known_hosts.all >$S/known_hosts &&
    console cluster stop h3 >$TEST_DIR/changed.out 2>&1; rc=$?
    cp $S/known_hosts.all $S/known_hosts
    cat $TEST_DIR/changed.out
    test $rc = 1 &&
    grep -q "^h3: REFUSED: its host key differs from the one in" $TEST_DIR/changed.out &&
    alive "$(pid_of h3)" && test "$(host_state h3)" = up
'

test_expect_success 'a key the hosts do not accept: refused, saying which key' '
    sed -i "s|^ssh_identity = .*|ssh_identity = $S/stranger|" $TEST_DIR/co/vmckpt.conf &&
    console cluster stop h1 >$TEST_DIR/key.out 2>&1; rc=$?
    sed -i "s|^ssh_identity = .*|ssh_identity = $S/id_ed25519|" $TEST_DIR/co/vmckpt.conf
    cat $TEST_DIR/key.out
    test $rc = 1 &&
    grep -q "^h1: root@h1 did not accept the key $S/stranger" $TEST_DIR/key.out &&
    alive "$(pid_of h1)"
'

test_expect_success 'a host with no SSH server fails alone; the others are served' '
    console cluster start h2 h4 >$TEST_DIR/h4.out 2>&1; rc=$?
    cat $TEST_DIR/h4.out
    test $rc = 1 &&
    grep -q "^h4: cannot connect to its SSH server" $TEST_DIR/h4.out &&
    grep -q "^h2: agent started$" $TEST_DIR/h4.out &&
    grep -q "^1 of 2 host(s) failed$" $TEST_DIR/h4.out &&
    test "$(host_state h2)" = up
'

test_expect_success 'bad use is refused with a clear message' '
    ! console cluster start "h1;reboot" 2>$TEST_DIR/use.err &&
    grep -q "is not a host name" $TEST_DIR/use.err &&
    ! console cluster restart 2>$TEST_DIR/use.err &&
    grep -q "unknown subcommand .restart." $TEST_DIR/use.err &&
    console cluster --help | grep -q "^Usage: vmckpt cluster start"
'

test_expect_success 'cluster stop: every agent stopped, every host down' '
    console cluster stop >$TEST_DIR/stopall.out 2>&1; rc=$?
    cat $TEST_DIR/stopall.out
    test $rc = 0 &&
    test $(grep -c "^h[123]: agent stopped$" $TEST_DIR/stopall.out) = 3 &&
    wait_until 5 "test \"\$(ssh_state h1 h2 h3)\" = downdowndown"
'

test_expect_success 'no sanitizer report' '
    stop_daemon co TERM &&
    no_sanitizer_reports
'

test_done
