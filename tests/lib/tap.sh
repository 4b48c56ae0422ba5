# SPDX-License-Identifier: GPL-2.0-or-later
# A small TAP producer for the shell tests: each test_expect_* runs its
# commands in a subshell with output to the test's log, prints ok / not ok,
# and on failure shows the tail of that output as TAP comments.

: "${top_srcdir:?run through make check}"
: "${top_builddir:?run through make check}"

TEST_NAME=$(basename "$0" .t)
TEST_DIR="$top_builddir/tests/$TEST_NAME.dir"
rm -rf "$TEST_DIR"
mkdir -p "$TEST_DIR"
TEST_OUT="$TEST_DIR/out"
_tap_n=0
_tap_failed=0
_tap_t0=$SECONDS # reset once a guest test has its turn

skip_all() {
    echo "1..0 # SKIP $*"
    exit 0
}

# test_expect_success DESCRIPTION 'COMMANDS'
test_expect_success() {
    local t0=$SECONDS
    _tap_n=$((_tap_n + 1))
    TEST_OUT="$TEST_DIR/out.$_tap_n"
    if (set -x; eval "$2") >"$TEST_OUT" 2>&1; then
        echo "ok $_tap_n - $1"
    else
        echo "not ok $_tap_n - $1"
        _tap_failed=$((_tap_failed + 1))
        sed 's/^/#   /' "$TEST_OUT" | tail -n 40
    fi
    echo "# ($((SECONDS - t0)) s)"
}

# test_skip DESCRIPTION REASON: one test that cannot run here, said so.
test_skip() {
    _tap_n=$((_tap_n + 1))
    echo "ok $_tap_n - $1 # SKIP $2"
}

# test_expect_slow DESCRIPTION 'COMMANDS': a case that takes minutes and
# whose parts faster cases cover too; it runs in the full suite
# (VMCKPT_FULL=1, './quickstart test --full') and is counted as skipped,
# said so, in the default run (kept well under 30 minutes).
test_expect_slow() {
    if [ "${VMCKPT_FULL:-0}" = 1 ]; then
        test_expect_success "$1" "$2"
    else
        test_skip "$1" "slow: runs with VMCKPT_FULL=1 (./quickstart test --full)"
    fi
}

# require_kernel MAJOR MINOR WHAT: skip the whole test on older kernels.
require_kernel() {
    local maj min
    maj=$(uname -r | cut -d. -f1) min=$(uname -r | cut -d. -f2)
    [ "$maj" -gt "$1" ] || { [ "$maj" -eq "$1" ] && [ "$min" -ge "$2" ]; } ||
        skip_all "kernel $(uname -r): $3 needs $1.$2"
}

# Tests that boot guests run one at a time: each boots several TCG guests,
# and two such tests at once starve each other on a small machine. With
# VMCKPT_GUEST_TESTS=skip (make distcheck, after the main build ran them)
# they are skipped.
guest_tests_exclusive() {
    [ "${VMCKPT_GUEST_TESTS:-run}" != skip ] ||
        skip_all "guest tests skipped (VMCKPT_GUEST_TESTS=skip)"
    exec 8>"${TMPDIR:-/tmp}/vmckpt-guest-tests.lock"
    flock 8
    _tap_t0=$SECONDS
}

# test_skip DESCRIPTION REASON: a test that cannot run here, counted and
# said so (never a silent pass).
test_skip() {
    _tap_n=$((_tap_n + 1))
    echo "ok $_tap_n - $1 # SKIP $2"
}

# Print a note into the TAP stream.
note() { echo "# $*"; }

test_done() {
    echo "# took $((SECONDS - _tap_t0)) s"
    echo "1..$_tap_n"
    [ "$_tap_failed" -eq 0 ]
}

# Fail (inside a test) with a message.
fail() { echo "FAIL: $*"; return 1; }

# wait_until SECONDS 'CONDITION' [INTERVAL]: poll every INTERVAL seconds
# (0.1 by default).
wait_until() {
    local end=$((SECONDS + $1))
    while ! eval "$2"; do
        [ $SECONDS -lt $end ] || { echo "timed out after $1 s: $2"; return 1; }
        sleep "${3:-0.1}"
    done
}

# grep_log FILE PATTERN: succeed if FILE has PATTERN, else show FILE.
grep_log() {
    if ! grep -q -- "$2" "$1"; then
        echo "'$2' not found in $1:"
        tail -n 20 "$1"
        return 1
    fi
}
