# SPDX-License-Identifier: GPL-2.0-or-later
# A vmckpt cluster for integration tests: a lab of namespaces (scripts/
# vmckpt-lab), a cluster key, one configuration per host, and helpers to
# start, stop and query the real daemons. Everything is torn down on exit,
# whatever happened.

. "$top_srcdir/tests/lib/tap.sh"

LAB_CMD="$top_srcdir/scripts/vmckpt-lab"
COORD_BIN="$top_builddir/coordinator/vmckpt-coordinator"
AGENT_BIN="$top_builddir/agent/vmckpt-agent"
CLI_BIN="$top_builddir/cli/vmckpt"
WIREPOKE="$top_builddir/tests/tools/wirepoke"

# Leak reports of ASan go to the daemon logs; fail fast on UBSan.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

[ "$(id -u)" = 0 ] || skip_all "needs root for network namespaces"
command -v ip >/dev/null || skip_all "needs iproute2"

# A lab name unique to this test run: 't' + pid in base 36-ish digits.
LAB="t$$"
LAB=${LAB:0:12}
CO_IP=198.18.0.1

# The agents' run directories (guests' QMP and console sockets) and the
# lab's run state: a UNIX socket path holds at most 107 bytes, so these live
# in a short directory of their own, whatever the build tree's depth.
RUN_BASE=$(mktemp -d /tmp/vmckpt-run.XXXXXX)

# (VMCKPT_KEEP_RUN=1 keeps the run directory, guests' consoles included,
# for a look after a failure)
cluster_cleanup() {
    local f
    "$LAB_CMD" down "$LAB" >/dev/null 2>&1 || true
    # the end of each guest's console, for a look after a failure
    for f in "$RUN_BASE"/*/*.log; do
        [ -f "$f" ] || continue
        mkdir -p "$TEST_DIR/consoles" &&
            tail -n 200 "$f" >"$TEST_DIR/consoles/$(basename "$(dirname "$f")")-$(basename "$f")"
    done 2>/dev/null
    if [ "${VMCKPT_KEEP_RUN:-0}" = 1 ]; then
        echo "# kept: $RUN_BASE"
    else
        rm -rf "$RUN_BASE"
    fi
}
trap cluster_cleanup EXIT

# Every connection runs over TLS with credentials from a cluster CA in
# $TEST_DIR/ca (docs/security.md): the coordinator's and an
# administrator's on co, an agent's on each host. A test of the cluster
# key's own handshake sets CLUSTER_TLS=0 before cluster_up.
CLUSTER_TLS=${CLUSTER_TLS:-1}

# tls_section HOST: the [tls] lines of HOST's configuration.
tls_section() {
    local d=$TEST_DIR/$1/tls
    [ "$CLUSTER_TLS" = 1 ] || return 0
    if [ "$1" = co ]; then
        printf "[tls]\nca = %s/ca.crt\ncert = %s/coordinator.crt\nkey = %s/coordinator.key\nadmin_cert = %s/admin.crt\nadmin_key = %s/admin.key\ncrl = %s/ca/crl.pem\n" \
            "$d" "$d" "$d" "$d" "$d" "$TEST_DIR"
    else
        # no crl: the coordinator sends the CA's list to the agents
        printf "[tls]\nca = %s/ca.crt\ncert = %s/%s.crt\nkey = %s/%s.key\n" \
            "$d" "$d" "$1" "$d" "$1"
    fi
}

# issue_credentials N: the CA and the credentials of co and h1..hN.
issue_credentials() {
    local h
    "$CLI_BIN" cert init --ca "$TEST_DIR/ca" --cluster lab >/dev/null &&
        "$CLI_BIN" cert issue --ca "$TEST_DIR/ca" --out "$TEST_DIR/co/tls" \
            coordinator coordinator >/dev/null &&
        "$CLI_BIN" cert issue --ca "$TEST_DIR/ca" --out "$TEST_DIR/co/tls" \
            admin admin >/dev/null || return 1
    for h in $(seq -f 'h%g' 1 "$1"); do
        "$CLI_BIN" cert issue --ca "$TEST_DIR/ca" --out "$TEST_DIR/$h/tls" \
            agent "$h" >/dev/null || return 1
    done
}

# cluster_up N: namespaces, a key, credentials, and a configuration for
# co + h1..hN.
cluster_up() {
    local i
    "$LAB_CMD" up "$LAB" "$1"
    "$CLI_BIN" keygen "$TEST_DIR/cluster.key" >/dev/null
    if [ "$CLUSTER_TLS" = 1 ]; then
        issue_credentials "$1" || return 1
    fi
    for h in co $(seq -f 'h%g' 1 "$1"); do
        mkdir -p "$TEST_DIR/$h"
        { tls_section "$h"; cat; } >"$TEST_DIR/$h/vmckpt.conf" <<CONF
[cluster]
key_file = $TEST_DIR/cluster.key
coordinator = $CO_IP:7470
timeout_ms = 3000
[coordinator]
listen = $CO_IP:7470
name = coordinator
state_dir = $TEST_DIR/co/state
heartbeat_interval_ms = 200
heartbeat_timeout_ms = 3000
register_grace_ms = 4000
auth_timeout_ms = 2000
rank_listen = $CO_IP:7471
align_timeout_ms = 5000
rank_grace_ms = 8000
[agent]
name = $h
state_dir = $TEST_DIR/$h/state
run_dir = $RUN_BASE/$h
guard = $top_builddir/agent/vmckpt-guard
reconnect_min_ms = 100
reconnect_max_ms = 800
connect_timeout_ms = 1000
CONF
    done
}

in_host() { local h=$1; shift; "$LAB_CMD" exec "$LAB" "$h" "$@"; }

# Daemons run in the background (daemonized: the start command returns
# once the daemon is ready or has failed), logging to HOST/daemon.log.
start_coordinator() {
    in_host co "$COORD_BIN" -c "$TEST_DIR/co/vmckpt.conf" "$@" \
        2>>"$TEST_DIR/co/coordinator.log"
}

start_agent() {
    local h=$1; shift
    in_host "$h" "$AGENT_BIN" -c "$TEST_DIR/$h/vmckpt.conf" "$@" \
        2>>"$TEST_DIR/$h/agent.log"
}

pid_of() {  # pid_of co|hN
    local f
    case "$1" in
    co) f="$TEST_DIR/co/state/coordinator.pid" ;;
    *) f="$TEST_DIR/$1/state/agent.pid" ;;
    esac
    cat "$f" 2>/dev/null
}

# alive PID: the process exists and is not a zombie (daemons are
# reparented to whatever reaps orphans here, which may be slow).
alive() {
    [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z ' "/proc/$1/stat" 2>/dev/null
}

# stop_daemon HOST [SIGNAL]: signal and wait until the process is gone.
stop_daemon() {
    local pid
    pid=$(pid_of "$1") || return 1
    kill -"${2:-TERM}" "$pid" 2>/dev/null || return 1
    wait_until 10 "! alive $pid"
}

# The admin console, run on the coordinator's host.
vmckpt() { in_host co "$CLI_BIN" -c "$TEST_DIR/co/vmckpt.conf" "$@"; }

# host_state NAME: the state 'vmckpt hosts --json' reports for NAME.
host_state() {
    vmckpt hosts --json 2>/dev/null |
        jq -r --arg h "$1" '.hosts[] | select(.name == $h) | .state'
}

# hosts_up HOST...: every HOST is up, from one look at 'vmckpt hosts' (a
# console call is a TLS handshake, a second or more on a busy machine,
# and this is polled)
hosts_up() {
    local up h
    up=$(vmckpt hosts --json 2>/dev/null | jq -r '.hosts[] | select(.state == "up") | .name') ||
        return 1
    for h in "$@"; do
        echo "$up" | grep -qx -- "$h" || return 1
    done
}

# The accelerator the lab's probe boot found usable here (kvm or tcg).
lab_accel() {
    VMCKPT_LAB_IMAGE="$top_builddir/lab" VMCKPT_LAB_RUN=$RUN_BASE \
        VMCKPT_QEMU_TOOL="$top_builddir/lib/qemu/vmckpt-qemu" \
        "$LAB_CMD" accel | cut -d" " -f1
}

# tracking_mode: how the guests' writes are tracked in this run. With
# Linux 6.7 or later (userfaultfd asynchronous write-protection and
# PAGEMAP_SCAN) the agent's own tracking, and epochs after the first are
# deltas; on an older kernel, or with VMCKPT_TEST_TRACKING=qemu-migration,
# QEMU's own migration stream, every epoch full: the job-level tests run on
# that fallback and leave out only their checks of deltas ('incremental').
tracking_mode() {
    local maj min
    maj=$(uname -r | cut -d. -f1) min=$(uname -r | cut -d. -f2)
    TRACKING=uffd
    if [ "${VMCKPT_TEST_TRACKING:-}" = qemu-migration ]; then
        TRACKING=qemu-migration
        echo "# VMCKPT_TEST_TRACKING=qemu-migration: guests checkpointed from QEMU's migration stream, every epoch full"
    elif ! { [ "$maj" -gt 6 ] || { [ "$maj" -eq 6 ] && [ "$min" -ge 7 ]; }; }; then
        TRACKING=qemu-migration
        echo "# kernel $(uname -r): no userfaultfd write-protection (6.7): guests checkpointed from QEMU's migration stream, every epoch full"
    fi
}
# incremental: this run's epochs after the first are deltas
incremental() { [ "${TRACKING:-uffd}" = uffd ]; }

# agents_for_guests HOST...: those hosts' agents launch guests with the
# dirty-tracking preload and the lab's accelerator (and, in a
# tracking_mode fallback run, QEMU's migration stream).
agents_for_guests() {
    local accel h
    accel=$(lab_accel) || return 1
    for h in "$@"; do
        printf "uffd_preload = %s\naccel = %s\n" \
            "$top_builddir/agent/hv/libvmckpt-uffd.so" "$accel" \
            >>"$TEST_DIR/$h/vmckpt.conf" || return 1
        if ! incremental; then
            echo "dirty_tracking = qemu-migration" >>"$TEST_DIR/$h/vmckpt.conf" || return 1
        fi
    done
}

# guest_cluster_up N [KEY=VALUE...]: N hosts whose agents launch guests,
# the coordinator with job-checkpoint limits for TCG guests (and the given
# [coordinator] settings), every daemon started and up.
guest_cluster_up() {
    local n=$1 hosts h kv
    shift
    hosts=$(seq -f 'h%g' 1 "$n")
    cluster_up "$n" &&
        sed -i "/^\[coordinator\]/a max_precopy_ms = 15000\ncheckpoint_timeout_ms = 60000" \
            "$TEST_DIR/co/vmckpt.conf" || return 1
    for kv in "$@"; do
        sed -i "/^${kv%%=*} = /d; /^\[coordinator\]/a ${kv%%=*} = ${kv#*=}" \
            "$TEST_DIR/co/vmckpt.conf" || return 1
    done
    agents_for_guests $hosts && start_coordinator || return 1
    for h in $hosts; do
        start_agent "$h" || return 1
    done
    wait_until 10 "hosts_up $(echo $hosts)"
}

# since_restore_of JOB VM LOG: the guest's console log after the agent's mark
# of its last restored QEMU (empty before any).
since_restore_of() {
    awk -v m="vmckpt-agent: QEMU for $1/$2 starts (restored)" \
        'index($0, m) { buf = ""; found = 1; next } found { buf = buf $0 "\n" }
         END { printf "%s", buf }' "$3" 2>/dev/null
}

# A test's job of guests running memwriter: the test sets GUEST_JOB (the
# job's name) and defines ip_of GUEST (the guest's fabric address).
# in_guest GUEST CMD...: run CMD in the guest over SSH (from co)
in_guest() {
    local g=$1; shift
    in_host co dbclient -y -y -i "$top_builddir/lab/lab.key" root@"$(ip_of $g)" "$@" 2>/dev/null
}
# glog GUEST HOST: the guest's console log on HOST
glog() { echo "$RUN_BASE/$2/$GUEST_JOB-$1.log"; }
# gen_now GUEST HOST: the last counter memwriter printed
gen_now() { grep -ao "memwriter: gen=[0-9]*" "$(glog $1 $2)" | tail -n 1 | cut -d= -f2; }
# since_restore GUEST HOST: its log after its last restore mark
since_restore() { since_restore_of "$GUEST_JOB" "$1" "$(glog $1 $2)"; }
first_gen_restored() {
    since_restore $1 $2 | grep -ao "memwriter: gen=[0-9]*" | head -n 1 | cut -d= -f2
}
job_field() { vmckpt jobs --json | jq -r ".[] | select(.job == \"$GUEST_JOB\") | .$1"; }
vm_field() { vmckpt vm list --json | jq -r ".[] | select(.job == \"$GUEST_JOB\" and .vm == \"$1\") | .$2"; }

# qemu_pids VM [HOST]: the QEMU processes of guest VM in the lab's host
# namespaces (or HOST's only), by the name QEMU was started with; a QEMU
# that died and is not reaped yet has no command line and is not counted.
qemu_pids() {
    "$LAB_CMD" ps "$LAB" | sed -n "s/^[^ ]*-${2:-h[0-9]*}: //p" | tr " " "\n" |
        while read -r pid; do
            [ -n "$pid" ] || continue
            tr "\0" " " <"/proc/$pid/cmdline" 2>/dev/null |
                grep -q -- "-name $1,process=vmckpt-$1 " && echo "$pid"
        done
    return 0 # not the status of the last process looked at
}
qemu_count() { qemu_pids "$@" | wc -l; }
# flip_byte FILE OFFSET: damage one byte of FILE (xor 0xff: a change
# whatever the byte was)
flip_byte() {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d " ") && [ -n "$b" ] &&
        printf "\\$(printf "%03o" $((b ^ 255)))" |
        dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# exactly_once VM...: each guest runs in exactly one QEMU
exactly_once() {
    local g n
    for g in "$@"; do
        n=$(qemu_count $g)
        echo "$g: $n QEMU process(es)"
        [ "$n" = 1 ] || return 1
    done
}

# at_ms FILE PATTERN: the time of day (ms) of the first line of a log
# with PATTERN
at_ms() {
    grep -m1 -- "$2" "$1" | awk '{ split($1, t, "[:.]");
        printf "%d\n", ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000 + t[4] }'
}

# fake_pid: the process of this test's fake agents (tests/tools/
# fakeagents), found by its report path $REPORT in its command line; other
# tests' fake agents may run at the same time
fake_pid() {
    local p
    for p in $(pgrep -x fakeagents); do
        if grep -q -F "$REPORT" /proc/$p/cmdline 2>/dev/null; then
            echo $p
        fi
    done
    return 0
}

# No sanitizer report in any daemon log.
no_sanitizer_reports() {
    if grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
        "$TEST_DIR"/*/*.log 2>/dev/null; then
        grep -h -A 20 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
            "$TEST_DIR"/*/*.log | head -60
        return 1
    fi
}
