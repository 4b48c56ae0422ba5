#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Bad input on the coordinator's port: every kind is refused with a clear
# error to the peer and a log line saying why it was dropped, while the
# coordinator stays up and a registered agent is not disturbed.
. "$top_srcdir/tests/lib/cluster.sh"
# raw frames and the cluster key's handshake; t0190 does the same over TLS
CLUSTER_TLS=0

cluster_up 1
start_coordinator
# the store cases speak its stream protocol as a peer the coordinator gave
# no ticket; the last case turns tickets back on
start_agent h1 -o agent.store_tickets=no
wait_until 10 'test "$(host_state h1)" = up'

LOG=$TEST_DIR/co/coordinator.log
poke() { in_host h1 "$WIREPOKE" "$CO_IP:7470" "$TEST_DIR/cluster.key" "$1"; }

test_expect_success 'truncated frame: dropped, and the log says so' '
    poke truncated >$TEST_DIR/poke.out && cat $TEST_DIR/poke.out &&
    grep -qx closed $TEST_DIR/poke.out &&
    wait_until 3 "grep -q \"closed in the middle of a frame (truncated frame)\" $LOG"
'

test_expect_success 'oversized length: error to the peer, dropped' '
    poke oversize >$TEST_DIR/poke.out && cat $TEST_DIR/poke.out &&
    grep -q "^error 1: frame of 2147483647 bytes exceeds the maximum of 1048576" $TEST_DIR/poke.out &&
    grep -qx closed $TEST_DIR/poke.out &&
    grep_log $LOG "dropping connection from 198.18.0.11:[0-9]*: frame of 2147483647 bytes exceeds"
'

test_expect_success 'garbage protobuf: malformed envelope' '
    poke garbage >$TEST_DIR/poke.out && cat $TEST_DIR/poke.out &&
    grep -q "^error 1: malformed envelope" $TEST_DIR/poke.out &&
    grep_log $LOG "dropping connection from .*: malformed envelope"
'

test_expect_success 'wrong protocol version: refused, naming both versions' '
    poke wrong-version >$TEST_DIR/poke.out && cat $TEST_DIR/poke.out &&
    grep -q "^error 2: protocol version 2 not supported (this side speaks version 1)" $TEST_DIR/poke.out &&
    grep_log $LOG "dropping connection from .*: protocol version 2 not supported"
'

test_expect_success 'unknown message type: refused' '
    poke unknown-type >$TEST_DIR/poke.out && cat $TEST_DIR/poke.out &&
    grep -q "^error 4: unknown message type 99" $TEST_DIR/poke.out &&
    grep_log $LOG "dropping connection from .*: unknown message type 99"
'

test_expect_success 'a request before the handshake: authentication required' '
    poke no-hello >$TEST_DIR/poke.out && cat $TEST_DIR/poke.out &&
    grep -q "^error 3: authentication required" $TEST_DIR/poke.out &&
    grep_log $LOG "dropping connection from .*: authentication required"
'

test_expect_success 'a peer without the key: authentication failed' '
    poke wrong-key >$TEST_DIR/poke.out && cat $TEST_DIR/poke.out &&
    grep -q "^error 3: authentication failed: proof does not match" $TEST_DIR/poke.out &&
    grep_log $LOG "dropping connection from .*: authentication failed"
'

test_expect_success 'a replayed handshake: refused' '
    poke replay >$TEST_DIR/poke.out && cat $TEST_DIR/poke.out &&
    grep -q "^recorded [0-9]* bytes of a good handshake" $TEST_DIR/poke.out &&
    grep -q "^error 3: authentication failed: proof does not match (wrong cluster key, or a replayed handshake)" $TEST_DIR/poke.out &&
    grep -qx closed $TEST_DIR/poke.out
'

test_expect_success 'the console with another cluster key: refused, clear message' '
    "$CLI_BIN" keygen $TEST_DIR/other.key >/dev/null &&
    ! in_host co "$CLI_BIN" -c $TEST_DIR/co/vmckpt.conf -k $TEST_DIR/other.key hosts 2>$TEST_DIR/err.txt &&
    cat $TEST_DIR/err.txt &&
    grep -q "failed to prove the cluster key" $TEST_DIR/err.txt
'

test_expect_success 'an agent with another key does not register, says why' '
    in_host h1 "$AGENT_BIN" -c $TEST_DIR/h1/vmckpt.conf -o agent.name=intruder \
        -o cluster.key_file=$TEST_DIR/other.key -o agent.state_dir=$TEST_DIR/h1/intruder -o agent.store_listen=*:7472 \
        2>$TEST_DIR/h1/intruder.log &&
    wait_until 5 "grep -q \"failed to prove the cluster key\" $TEST_DIR/h1/intruder.log" &&
    kill $(cat $TEST_DIR/h1/intruder/agent.pid) &&
    ! vmckpt hosts | grep -q intruder
'

test_expect_success 'after authenticating, an unknown type still drops the peer' '
    poke authed-unknown-type >$TEST_DIR/poke.out && cat $TEST_DIR/poke.out &&
    grep -qx "ok authenticated" $TEST_DIR/poke.out &&
    grep -q "^error 4: unknown message type 99" $TEST_DIR/poke.out &&
    grep_log $LOG "dropping admin wirepoke (.*): unknown message type 99"
'

test_expect_success 'a known message the coordinator does not serve: refused, kept' '
    poke authed-not-served >$TEST_DIR/poke.out && cat $TEST_DIR/poke.out &&
    grep -q "^error: the coordinator does not serve ckpt-commit" $TEST_DIR/poke.out &&
    grep -qx "ok still connected" $TEST_DIR/poke.out
'

section() { sed -n "/^== $1\$/,/^==/p" $TEST_DIR/poke.out | grep -v "^=="; }
test_expect_success 'parallel streams misused at a store: refused, nothing half-written' '
    in_host co "$WIREPOKE" 198.18.0.11:7471 "$TEST_DIR/cluster.key" store-parts \
        >$TEST_DIR/poke.out && cat $TEST_DIR/poke.out &&
    section "no epoch" | grep -q "^error: wp/pv epoch 1: no open stream for part 1 of 2" &&
    section twice | grep -q "^error: wp/pv epoch 1: no open stream for part 1 of 2" &&
    section dies | grep -q "^error: " && ! section dies | grep -q "^ok durable" &&
    section good | tail -n 3 >$TEST_DIR/good.out && cat $TEST_DIR/good.out &&
    printf "ok open part 1\nok part 1 ended\nok durable\n" | cmp - $TEST_DIR/good.out &&
    section totals | grep -q "^error: .*stream 1 ended after 1 batches, 1 pages; the sender says 5, 5" &&
    ! section totals | grep -q "^ok durable" &&
    m=$TEST_DIR/h1/state/store/wp/pv/manifest && cat $m &&
    grep -q "^epoch 1 " $m && ! grep -q "^epoch 2 " $m &&
    ! ls $TEST_DIR/h1/state/store/wp/pv | grep -q "^e2\." &&
    grep_log $TEST_DIR/h1/agent.log "store: wp/pv epoch 1 aborted" &&
    "$top_builddir/agent/vmtool/vmckpt-vmtool" restore-local --store-dir $TEST_DIR/h1/state/store \
        --job wp --vm pv --epoch 1 --ram-out $TEST_DIR/pv.ram --state-out $TEST_DIR/pv.state &&
    test "$(od -An -tx1 -j0 -N1 $TEST_DIR/pv.ram)$(od -An -tx1 -j4096 -N1 $TEST_DIR/pv.ram)$(od -An -tx1 -j20480 -N1 $TEST_DIR/pv.ram)" = " 20 21 25" &&
    test "$(cat $TEST_DIR/pv.state)" = s
'

test_expect_success 'a store refuses a writer of an older job incarnation than it took: a stale copy cannot write' '
    in_host co "$WIREPOKE" 198.18.0.11:7471 "$TEST_DIR/cluster.key" store-incarnation \
        >$TEST_DIR/poke.out && cat $TEST_DIR/poke.out &&
    section "epoch 1, incarnation 2" | tail -n 1 | grep -qx "ok durable" &&
    section "epoch 2, incarnation 1" | grep -q "^error: wp/iv: a writer of incarnation 1 refused: this store took incarnation 2" &&
    section "epoch 2, incarnation 3" | tail -n 1 | grep -qx "ok durable" &&
    section "epoch 3, incarnation 2" | grep -q "^error: wp/iv: a writer of incarnation 2 refused: this store took incarnation 3" &&
    m=$TEST_DIR/h1/state/store/wp/iv/manifest && cat $m &&
    grep -q "^epoch 1 " $m && grep -q "^epoch 2 " $m && ! grep -q "^epoch 3 " $m &&
    test "$(cat $TEST_DIR/h1/state/store/wp/iv/incarnation)" = 3 &&
    grep_log $TEST_DIR/h1/agent.log "a writer of incarnation 2 refused"
'

test_expect_success 'the coordinator is still up and the agent undisturbed' '
    alive $(pid_of co) &&
    test "$(host_state h1)" = up &&
    test $(grep -c "registered with coordinator" $TEST_DIR/h1/agent.log) = 1
'

test_expect_success 'with store tickets (the default), no write or fetch without the coordinator'"'"'s ticket: refused, the store as it was' '
    grep -q "store_tickets = no: any agent may write and fetch" $TEST_DIR/h1/agent.log &&
    k=$(grep -c "store: ticket key from coordinator" $TEST_DIR/h1/agent.log) &&
    stop_daemon h1 && start_agent h1 &&
    wait_until 10 "test \$(grep -c \"store: ticket key from coordinator\" $TEST_DIR/h1/agent.log) -gt $k" &&
    ls -R $TEST_DIR/h1/state/store >$TEST_DIR/store.before &&
    in_host co "$WIREPOKE" 198.18.0.11:7471 "$TEST_DIR/cluster.key" store-tickets \
        >$TEST_DIR/poke.out && cat $TEST_DIR/poke.out &&
    section "write, no ticket" | grep -q "^error: .*refused: write of wp/tv epoch 1 by wirepoke without a ticket from the coordinator" &&
    section "write, forged ticket" | grep -q "^error: .*refused: the ticket does not let wirepoke write wp/tv epoch 1" &&
    section "fetch, no ticket" | grep -q "^error: .*refused: fetch of wp/pv epoch 1 by wirepoke without a ticket" &&
    section "fetch, forged ticket" | grep -q "^error: .*refused: the ticket does not let wirepoke fetch wp/pv epoch 1" &&
    ! grep -q "^ok" $TEST_DIR/poke.out &&
    ls -R $TEST_DIR/h1/state/store | cmp - $TEST_DIR/store.before &&
    grep_log $TEST_DIR/h1/agent.log "store: .*wirepoke.*refused: the ticket does not let" &&
    ! grep -q "wirepoke.* fetches wp/pv" $TEST_DIR/h1/agent.log
'

test_expect_success 'clean stop, no sanitizer report' '
    stop_daemon h1 && stop_daemon co && no_sanitizer_reports
'

test_done
