#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# TLS on every connection (docs/security.md), with the real daemons in
# namespaces: credentials from the cluster's CA ('vmckpt cert'), a client
# without one refused, a credential that speaks only as its own host and
# role (at the coordinator and at a store, where it writes and fetches
# nothing without the coordinator's ticket), a man in the middle altering
# one record after the handshake (the connection dropped, the agent back
# through a clean one), and a revoked host that cannot come back while the
# others go on.
. "$top_srcdir/tests/lib/cluster.sh"

FLIP="$top_builddir/tests/tools/tlsflip"
LOG=$TEST_DIR/co/coordinator.log
CA=$TEST_DIR/ca
# wirepoke over TLS with HOST's credential (tls-admin: the administrator's)
poke() { local h=$1 as=$2; shift 2; in_host "$h" "$WIREPOKE" "$@" "$as" ; }

test_expect_success 'setup: a CA; credentials of the coordinator, an administrator and three agents; hosts up over TLS' '
    cluster_up 3 &&
    "$CLI_BIN" cert list --ca $CA >$TEST_DIR/certs && cat $TEST_DIR/certs &&
    test "$(grep -c " valid$" $TEST_DIR/certs)" = 5 &&
    test "$(stat -c %a $TEST_DIR/h1/tls/h1.key)" = 600 &&
    start_coordinator && start_agent h1 && start_agent h2 &&
    wait_until 20 "test \"\$(host_state h1)\" = up && test \"\$(host_state h2)\" = up" &&
    grep_log $LOG "TLS 1.3 on every connection" &&
    grep_log $TEST_DIR/h1/agent.log "proves the agent credential .h1."
'

test_expect_success 'a client without a credential (the cluster key alone) is refused, the coordinator says why' '
    printf "[cluster]\nkey_file = %s\ncoordinator = %s:7470\n" $TEST_DIR/cluster.key $CO_IP >$TEST_DIR/plain.conf &&
    ! in_host co "$CLI_BIN" -c $TEST_DIR/plain.conf hosts 2>$TEST_DIR/e1 && cat $TEST_DIR/e1 &&
    grep -q "cannot reach the coordinator" $TEST_DIR/e1 &&
    wait_until 10 "grep -q \"dropping connection from .*: TLS: \" $LOG" &&
    grep "dropping connection from .*: TLS: " $LOG
'

test_expect_success 'an agent credential speaks only as its host: not as another, not as an administrator (coordinator and store); at a store, as itself, nothing is written or fetched without the coordinator'"'"'s ticket' '
    poke h1 claim:agent:h2 $CO_IP:7470 tls:$TEST_DIR/h1/vmckpt.conf >$TEST_DIR/p1 && cat $TEST_DIR/p1 &&
    grep -q "^refused: .*credential of agent .h1. cannot speak as agent .h2." $TEST_DIR/p1 &&
    poke h1 claim:admin:ops $CO_IP:7470 tls:$TEST_DIR/h1/vmckpt.conf >$TEST_DIR/p2 && cat $TEST_DIR/p2 &&
    grep -q "^refused: .*credential of agent .h1. cannot speak as admin" $TEST_DIR/p2 &&
    poke h1 claim:agent:h1 $CO_IP:7470 tls:$TEST_DIR/h1/vmckpt.conf >$TEST_DIR/p3 && cat $TEST_DIR/p3 &&
    grep -q "^ok authenticated" $TEST_DIR/p3 &&
    poke h1 claim:peer:h2 198.18.0.12:7471 tls:$TEST_DIR/h1/vmckpt.conf >$TEST_DIR/p4 && cat $TEST_DIR/p4 &&
    grep -q "^refused: .*cannot speak as peer .h2." $TEST_DIR/p4 &&
    grep_log $TEST_DIR/h2/agent.log "store: dropping .*cannot speak as peer .h2." &&
    grep_log $TEST_DIR/h2/agent.log "store: ticket key from coordinator" &&
    poke h1 store-tickets 198.18.0.12:7471 tls:$TEST_DIR/h1/vmckpt.conf >$TEST_DIR/p7 && cat $TEST_DIR/p7 &&
    test "$(grep -c "^error: .*refused: .* by h1 without a ticket\|^error: .*refused: the ticket does not let h1 " $TEST_DIR/p7)" = 4 &&
    grep_log $TEST_DIR/h2/agent.log "store: .* h1 (.*refused: the ticket does not let h1 fetch wp/pv epoch 1" &&
    grep_log $LOG "cannot speak as agent .h2." &&
    ! in_host h1 "$CLI_BIN" -c $TEST_DIR/h1/vmckpt.conf hosts 2>$TEST_DIR/e2 && cat $TEST_DIR/e2 &&
    grep -q "credential of agent .h1., not an administrator" $TEST_DIR/e2
'

test_expect_success 'an administrator credential is not a host; the console uses it' '
    poke co claim:agent:h1 $CO_IP:7470 tls-admin:$TEST_DIR/co/vmckpt.conf >$TEST_DIR/p5 && cat $TEST_DIR/p5 &&
    grep -q "^refused: .*credential of admin .admin. cannot speak as agent .h1." $TEST_DIR/p5 &&
    vmckpt hosts | grep -q "^h1 "
'

test_expect_success 'a man in the middle alters one record after the handshake: the coordinator drops the connection, the agent comes back through a clean one' '
    (in_host co "$FLIP" $CO_IP:7480 $CO_IP:7470 12 >$TEST_DIR/flip.out 2>&1 &) &&
    wait_until 10 "grep -q listening $TEST_DIR/flip.out" &&
    start_agent h3 -o agent.coordinator=$CO_IP:7480 &&
    wait_until 30 "grep -q \"flipped record 12\" $TEST_DIR/flip.out" &&
    wait_until 10 "grep -q \"dropping agent h3 .*: TLS: .*\(bad record mac\|decrypt\)\" $LOG" &&
    grep "dropping agent h3" $LOG &&
    wait_until 30 "test \"\$(grep -c \"host h3 registered\" $LOG)\" -ge 2" &&
    wait_until 30 "test \"\$(host_state h3)\" = up"
'

test_expect_success 'a revoked host is cut off at once and cannot come back; the other hosts stores refuse it, from the list the coordinator sent them' '
    wait_until 10 "grep -q \"revocation list from the coordinator\" $TEST_DIR/h1/agent.log" &&
    "$CLI_BIN" cert revoke --ca $CA h2 >$TEST_DIR/rv && cat $TEST_DIR/rv &&
    wait_until 20 "grep -q \"host h2: its credential is revoked by the new revocation list\" $LOG" &&
    wait_until 20 "grep -q \"certificate revoked\" $TEST_DIR/h2/agent.log" &&
    grep "certificate revoked" $TEST_DIR/h2/agent.log | tail -n 2 &&
    wait_until 20 "test \"\$(host_state h2)\" != up" &&
    wait_until 20 "test \$(grep -c \"revocation list from the coordinator\" $TEST_DIR/h1/agent.log) -ge 2" &&
    poke h2 claim:peer:h2 198.18.0.11:7471 tls:$TEST_DIR/h2/vmckpt.conf >$TEST_DIR/p6; cat $TEST_DIR/p6 &&
    grep -q "^refused: " $TEST_DIR/p6 &&
    grep_log $TEST_DIR/h1/agent.log "store: dropping .*certificate revoked" &&
    stop_daemon h1 && start_agent h1 &&
    wait_until 20 "test \"\$(host_state h1)\" = up" &&
    test "$(host_state h2)" != up
'

test_expect_success 'everything stops cleanly, with no sanitizer report' '
    kill $(sed -n "s/^listening on .* pid //p" $TEST_DIR/flip.out) 2>/dev/null;
    for h in h1 h2 h3 co; do stop_daemon $h TERM || exit 1; done &&
    no_sanitizer_reports
'

test_done
