#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Keys and configuration: keygen, refusal of unsafe key files and bad
# configuration with clear messages, --help and --version, foreground mode.
. "$top_srcdir/tests/lib/cluster.sh"
# the cluster key and its checks, not TLS (t0190 tests the credentials)
CLUSTER_TLS=0

cluster_up 1
CONF=$TEST_DIR/co/vmckpt.conf

test_expect_success 'keygen writes a 0600 key and will not overwrite it' '
    "$CLI_BIN" keygen $TEST_DIR/k1 | grep -q "wrote a new 64-byte cluster key" &&
    test "$(stat -c %a $TEST_DIR/k1)" = 600 &&
    test "$(stat -c %s $TEST_DIR/k1)" = 64 &&
    cp $TEST_DIR/k1 $TEST_DIR/k1.orig &&
    ! "$CLI_BIN" keygen $TEST_DIR/k1 2>$TEST_DIR/err &&
    grep -q "refusing to replace" $TEST_DIR/err &&
    cmp $TEST_DIR/k1 $TEST_DIR/k1.orig &&
    "$CLI_BIN" keygen --force $TEST_DIR/k1 >/dev/null &&
    ! cmp -s $TEST_DIR/k1 $TEST_DIR/k1.orig
'

test_expect_success 'the coordinator refuses a key readable by group or other' '
    cp $TEST_DIR/cluster.key $TEST_DIR/loose.key && chmod 644 $TEST_DIR/loose.key &&
    ! in_host co "$COORD_BIN" -c $CONF -o cluster.key_file=$TEST_DIR/loose.key 2>$TEST_DIR/err &&
    cat $TEST_DIR/err &&
    grep -q "has mode 0644: it must not be accessible by group or other (chmod 600" $TEST_DIR/err
'

test_expect_success 'the agent refuses it too, and a missing key file' '
    ! in_host h1 "$AGENT_BIN" -c $TEST_DIR/h1/vmckpt.conf -o cluster.key_file=$TEST_DIR/loose.key 2>$TEST_DIR/err &&
    grep -q "must not be accessible by group or other" $TEST_DIR/err &&
    ! in_host h1 "$AGENT_BIN" -c $TEST_DIR/h1/vmckpt.conf -o cluster.key_file=$TEST_DIR/none 2>$TEST_DIR/err &&
    grep -q "cannot open key file $TEST_DIR/none" $TEST_DIR/err
'

test_expect_success 'an unknown configuration key is refused with file and line' '
    sed "s/^\[coordinator\]/&\nheartbeat_intervall_ms = 5/" $CONF >$TEST_DIR/bad.conf &&
    ! in_host co "$COORD_BIN" -c $TEST_DIR/bad.conf 2>$TEST_DIR/err &&
    cat $TEST_DIR/err &&
    grep -q "bad.conf:6: unknown key .heartbeat_intervall_ms. in \[coordinator\]" $TEST_DIR/err
'

test_expect_success 'a malformed value is refused, naming the key' '
    ! in_host co "$COORD_BIN" -c $CONF -o coordinator.heartbeat_interval_ms=fast 2>$TEST_DIR/err &&
    cat $TEST_DIR/err &&
    grep -q "heartbeat_interval_ms = .fast.: not a non-negative integer" $TEST_DIR/err
'

test_expect_success 'an agent without a coordinator address says what to set' '
    printf "[cluster]\nkey_file = %s\n" $TEST_DIR/cluster.key >$TEST_DIR/nocoord.conf &&
    ! "$AGENT_BIN" -f -c $TEST_DIR/nocoord.conf 2>$TEST_DIR/err &&
    grep -q "set \[cluster\] coordinator = HOST\[:PORT\]" $TEST_DIR/err
'

test_expect_success '--help and --version of every program' '
    "$COORD_BIN" --help | grep -q "^Usage: vmckpt-coordinator" &&
    "$AGENT_BIN" --help | grep -q "^Usage: vmckpt-agent" &&
    "$CLI_BIN" --help | grep -q "^Usage: vmckpt" &&
    "$CLI_BIN" hosts --help | grep -q "^Usage: vmckpt hosts" &&
    "$CLI_BIN" keygen --help | grep -q "^Usage: vmckpt keygen" &&
    "$COORD_BIN" --version | grep -q "^vmckpt [0-9]" &&
    ! "$CLI_BIN" frobnicate 2>$TEST_DIR/err &&
    grep -q "unknown command .frobnicate." $TEST_DIR/err &&
    ! "$COORD_BIN" --bogus 2>/dev/null
'

test_expect_success 'the console says so when no coordinator answers' '
    ! vmckpt hosts 2>$TEST_DIR/err; cat $TEST_DIR/err &&
    grep -q "cannot reach the coordinator: cannot connect to 198.18.0.1:7470" $TEST_DIR/err
'

test_expect_success 'foreground mode: runs attached, stops on SIGINT' '
    in_host co "$COORD_BIN" -f -c $CONF 2>$TEST_DIR/co/fg.log &
    wait_until 5 "grep -q listening $TEST_DIR/co/fg.log" &&
    vmckpt hosts | grep -q "No host has registered" &&
    kill -INT $(cat $TEST_DIR/co/state/coordinator.pid) &&
    wait &&
    grep -q "signal 2: shutting down" $TEST_DIR/co/fg.log &&
    grep -q "stopped" $TEST_DIR/co/fg.log
'

test_done
