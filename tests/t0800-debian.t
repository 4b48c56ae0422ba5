#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Debian packages (debian/): built from the tree 'make dist' would ship,
# with no lintian error, installed with apt from the Debian archive into a
# fresh root (mmdebstrap) where every program runs. Then, a guest test:
# in a lab of three hosts, the coordinator and two agents of that root
# start as their systemd units would (ExecStart, the packaged configuration
# file edited as an administrator would), and a guest is checkpointed and
# restored on another host through them.
. "$top_srcdir/tests/lib/cluster.sh"

[ "${VMCKPT_GUEST_TESTS:-run}" != skip ] ||
    skip_all "package test skipped with the guest tests (VMCKPT_GUEST_TESTS=skip)"
[ "${VMCKPT_FULL:-0}" = 1 ] ||
    skip_all "slow (3 to 4 minutes, a Debian root from the archive): runs with VMCKPT_FULL=1 (./quickstart test --full)"
for t in dpkg-buildpackage dh lintian mmdebstrap; do
    command -v $t >/dev/null ||
        skip_all "$t not installed (apt-get install debhelper lintian mmdebstrap)"
done
[ -f "$top_srcdir/debian/control" ] || skip_all "no debian/ in $top_srcdir"
# Building the packages compiles the whole tree: not next to a test whose
# guests would be starved of CPU (a TCG guest held up for seconds after a
# restore can panic), so the whole test takes the guest tests' turn.
guest_tests_exclusive

VERSION=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$top_builddir/config.h")
SUITE=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$SUITE" ] || skip_all "not a Debian release (no VERSION_CODENAME in /etc/os-release)"
SRC=$TEST_DIR/src/vmckpt-$VERSION
ROOT=$TEST_DIR/root
PKGS="vmckpt-coordinator vmckpt-agent vmckpt-client vmckpt-mpi-hooks vmckpt-common"
JOB=debpkg

t0800_cleanup() {
    cluster_cleanup
    rm -f /dev/shm/vmckpt-$JOB-g1.ram /dev/shm/vmckpt-restore-$JOB-g1.ram
    # the mounts of the root live in the lab hosts' mount namespaces,
    # gone with their processes: here it is a plain directory
    rm -rf "$ROOT" "$SRC" "$TEST_DIR"/h*/state/store
}
trap t0800_cleanup EXIT

# Run without what 'make check' passes to its children.
clean_env() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u top_srcdir -u top_builddir "$@"
}
# timed NAME CMD...: run CMD, record how long it took in TEST_DIR/NAME.s
timed() {
    local name=$1 t0=$SECONDS rc=0
    shift
    "$@" || rc=$?
    echo $((SECONDS - t0)) >"$TEST_DIR/$name.s"
    return $rc
}
deb() { ls "$TEST_DIR"/src/"$1"_"$VERSION"-*_*.deb; }
in_deb() { dpkg-deb -c "$(deb "$1")" | awk '{print $1, $6}'; }

test_expect_success 'the packages build from the tree make dist ships' '
    mkdir -p $TEST_DIR/src &&
    clean_env make -C "$top_builddir" distdir distdir="$SRC" >$TEST_DIR/distdir.log 2>&1 &&
    test -x "$SRC/debian/rules" &&
    if ! (cd "$SRC" && timed build clean_env DEB_BUILD_OPTIONS=parallel=2 \
            dpkg-buildpackage -us -uc -b) >$TEST_DIR/build.log 2>&1; then
        tail -n 30 $TEST_DIR/build.log; exit 1
    fi &&
    for p in $PKGS; do deb $p || exit 1; done &&
    grep -q "^PASS: lib/wire/test/wire_test" $TEST_DIR/build.log &&
    ! grep -q "^PASS: tests/" $TEST_DIR/build.log
'
note "packages built in $(cat $TEST_DIR/build.s 2>/dev/null) s"

# lintian exits 1 on an error; warnings are shown in the log.
test_expect_success 'lintian: no error' '
    timed lintian lintian --tag-display-limit 0 $TEST_DIR/src/vmckpt_${VERSION}-*.changes \
        >$TEST_DIR/lintian.out 2>&1; rc=$?; cat $TEST_DIR/lintian.out &&
    test $rc = 0 &&
    ! grep -q "^E: " $TEST_DIR/lintian.out
'
note "lintian: $(grep -c "^W: " $TEST_DIR/lintian.out 2>/dev/null) warning(s), in $TEST_DIR/lintian.out"

# Each file at its place in its package.
has() { in_deb "$1" | grep -q -- " \./$2\$" || fail "$1 lacks $2"; }
test_expect_success 'each package holds its files' '
    has vmckpt-coordinator usr/sbin/vmckpt-coordinator &&
    has vmckpt-agent usr/sbin/vmckpt-agent &&
    has vmckpt-agent usr/libexec/vmckpt/libvmckpt-uffd.so &&
    has vmckpt-client usr/bin/vmckpt &&
    has vmckpt-client usr/bin/vmckpt-mpirun &&
    has vmckpt-mpi-hooks usr/libexec/vmckpt/libvmckpt-mpi.so &&
    has vmckpt-common etc/vmckpt/vmckpt.conf &&
    in_deb vmckpt-common | grep -q "^drwx------ \./var/lib/vmckpt/$" &&
    has vmckpt-agent usr/libexec/vmckpt/vmckpt-guard &&
    for d in coordinator agent; do
        has vmckpt-$d lib/systemd/system/vmckpt-$d.service &&
        has vmckpt-$d usr/share/man/man8/vmckpt-$d.8.gz || exit 1
    done &&
    has vmckpt-client usr/share/man/man1/vmckpt.1.gz &&
    has vmckpt-common usr/share/man/man5/vmckpt.conf.5.gz &&
    has vmckpt-common etc/logrotate.d/vmckpt &&
    ! in_deb vmckpt-agent | grep -q vmtool &&
    dpkg-deb -f "$(deb vmckpt-agent)" Depends | grep -q "qemu-system-x86 | xen-utils"
'

# A fresh root of the machine's Debian release, our packages installed
# into it by apt with what they depend on, as an administrator would.
make_root() {
    mmdebstrap --variant=minbase --mode=root "$SUITE" "$ROOT" &&
        mkdir -p "$ROOT/tmp/debs" &&
        for p in $PKGS; do cp "$(deb $p)" "$ROOT/tmp/debs/" || return 1; done &&
        chroot "$ROOT" sh -c 'apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
                --no-install-recommends /tmp/debs/*.deb'
}
test_expect_success 'installed with apt into a fresh root from the Debian archive' '
    if ! timed root make_root >$TEST_DIR/root.log 2>&1; then
        tail -n 30 $TEST_DIR/root.log; exit 1
    fi &&
    for p in $PKGS; do
        chroot "$ROOT" dpkg-query -W -f="\${Status}\n" $p | grep -qx "install ok installed" || exit 1
    done &&
    chroot "$ROOT" dpkg-query -W -f="\${Conffiles}\n" vmckpt-common | grep -q " /etc/vmckpt/vmckpt.conf " &&
    test "$(stat -c %a "$ROOT/var/lib/vmckpt")" = 700 &&
    chroot "$ROOT" dpkg -L vmckpt-agent | grep -qx /usr/libexec/vmckpt/libvmckpt-uffd.so
'
note "fresh root made and packages installed in $(cat $TEST_DIR/root.s 2>/dev/null) s"

test_expect_success 'every program runs there, every library finds its libraries' '
    for b in vmckpt vmckpt-coordinator vmckpt-agent vmckpt-mpirun; do
        chroot "$ROOT" $b --version | grep -q "vmckpt $VERSION" || exit 1
    done &&
    for l in libvmckpt-uffd.so libvmckpt-mpi.so; do
        chroot "$ROOT" ldd /usr/libexec/vmckpt/$l >$TEST_DIR/ldd.out &&
        ! grep "not found" $TEST_DIR/ldd.out || exit 1
    done &&
    ! timeout 10 chroot "$ROOT" vmckpt-coordinator -f 2>$TEST_DIR/err &&
    grep -q "cannot open key file /etc/vmckpt/cluster.key" $TEST_DIR/err
'

# The packages leave cleanly: programs and the configuration go with a
# purge, and the empty state directory too.
purge_check() {
    test_expect_success 'apt-get purge: nothing of the packages is left' '
        chroot "$ROOT" sh -c "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q $PKGS" \
            >$TEST_DIR/purge.log 2>&1 &&
        ! chroot "$ROOT" dpkg-query -W -f="\${Status}\n" $PKGS 2>/dev/null | grep -q "ok installed" &&
        test ! -e "$ROOT/usr/sbin/vmckpt-agent" && test ! -e "$ROOT/usr/bin/vmckpt" &&
        test ! -e "$ROOT/usr/libexec/vmckpt" &&
        test ! -e "$ROOT/etc/vmckpt" && test ! -e "$ROOT/var/lib/vmckpt"
    '
}

# --- the daemons of the root, in the lab ------------------------------
skip_rest() {
    _tap_n=$((_tap_n + 1))
    echo "ok $_tap_n - a checkpoint and a restore through the packaged daemons # SKIP $1"
    purge_check
    test_done
    exit
}
command -v dropbearkey >/dev/null || skip_rest "dropbear-bin not installed: no guest checkpoint"

# in_root HOST CMD...: CMD in the fresh root inside lab host HOST, as a
# service of that host: its own /etc/vmckpt and /var/lib/vmckpt
# (TEST_DIR/HOST/etc and state), the environment of a unit.
in_root() {
    local h=$1
    shift
    in_host "$h" unshare --mount --propagation private /bin/sh -c '
        r=$1 d=$2; shift 2
        mount --rbind /dev "$r/dev" && mount -t proc proc "$r/proc" &&
        mount --rbind /sys "$r/sys" &&
        mount --bind "$d/etc" "$r/etc/vmckpt" &&
        mount --bind "$d/state" "$r/var/lib/vmckpt" &&
        exec chroot "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"' \
        in_root "$ROOT" "$TEST_DIR/$h" "$@"
}
vmckpt() { in_root co vmckpt "$@"; }

# exec_start DAEMON: the command its unit starts (ExecStart=, without the
# prefixes systemd reads), or, in a tree without the units, the same.
exec_start() {
    local u
    for u in "$ROOT/lib/systemd/system/$1.service" "$ROOT/usr/lib/systemd/system/$1.service"; do
        [ -f "$u" ] || continue
        sed -n "s/^ExecStart=[-@+!:]*//p" "$u" | head -n 1
        return
    done
    echo "/usr/sbin/$1 -f"
}
# start_unit HOST DAEMON: as systemd would, its log where the journal was
start_unit() {
    { set +x; } 2>/dev/null
    in_root "$1" /bin/sh -c "exec $(exec_start "$2")" 2>>"$TEST_DIR/$1/$2.log" &
}

# conf_set FILE SECTION KEY VALUE: KEY = VALUE in SECTION, where the
# commented default was, as an administrator edits the file
conf_set() {
    awk -v s="[$2]" -v k="$3" -v v="$4" '
        /^\[/ { if (in_s && !done) { print k " = " v; done = 1 }; in_s = ($0 == s) }
        in_s && !done && ($0 ~ "^;?" k " =") { print k " = " v; done = 1; next }
        { print }
        END { if (!done) { if (!in_s) print s; print k " = " v } }' "$1" >"$1.new" &&
        mv "$1.new" "$1"
}

IMG=$top_builddir/lab
# uffd_wp: yes where the kernel has userfaultfd write-protection (6.7+),
# and the agent preloads the packaged tracker into QEMU
uffd_wp() {
    local maj min
    maj=$(uname -r | cut -d. -f1) min=$(uname -r | cut -d. -f2)
    if [ "$maj" -gt 6 ] || { [ "$maj" -eq 6 ] && [ "$min" -ge 7 ]; }; then
        echo yes
    fi
}
ip_of() { echo 198.18.1.1; }
GUEST_JOB=$JOB
guest_log() { echo "$TEST_DIR/$1/state/run/$JOB-g1.log"; }
T_LAB=$SECONDS

test_expect_success 'a lab of co, h1, h2: the packaged configuration, set up, a key from vmckpt keygen' '
    "$top_srcdir/scripts/vmckpt-lab-image" "$top_builddir" >/dev/null &&
    mkdir -p "$ROOT/srv/lab" &&
    cp -L "$IMG/vmlinux" "$IMG/initrd.img" "$ROOT/srv/lab/" &&
    "$LAB_CMD" up "$LAB" 2 &&
    accel=$(lab_accel) &&
    for h in co h1 h2; do
        mkdir -p $TEST_DIR/$h/etc $TEST_DIR/$h/state &&
        chmod 700 $TEST_DIR/$h/state &&
        cp "$ROOT/etc/vmckpt/vmckpt.conf" $TEST_DIR/$h/etc/ &&
        conf_set $TEST_DIR/$h/etc/vmckpt.conf cluster coordinator $CO_IP:7470 || exit 1
    done &&
    c=$TEST_DIR/co/etc/vmckpt.conf &&
    conf_set $c coordinator heartbeat_timeout_ms 3000 &&
    conf_set $c coordinator max_precopy_ms 15000 &&
    conf_set $c coordinator checkpoint_timeout_ms 60000 &&
    for h in h1 h2; do
        conf_set $TEST_DIR/$h/etc/vmckpt.conf agent name $h &&
        conf_set $TEST_DIR/$h/etc/vmckpt.conf agent accel $accel || exit 1
    done &&
    cat $TEST_DIR/h1/etc/vmckpt.conf | grep -v "^[#;]" &&
    vmckpt keygen | grep -q "wrote a new" &&
    test "$(stat -c %a $TEST_DIR/co/etc/cluster.key)" = 600 &&
    for h in h1 h2; do cp -p $TEST_DIR/co/etc/cluster.key $TEST_DIR/$h/etc/ || exit 1; done
'

test_expect_success 'the coordinator and the agents start as their units would; the hosts are up' '
    note_exec=$(exec_start vmckpt-agent) && echo "ExecStart: $note_exec" &&
    start_unit co vmckpt-coordinator &&
    wait_until 20 "test -s $TEST_DIR/co/state/coordinator.addr" &&
    start_unit h1 vmckpt-agent && start_unit h2 vmckpt-agent &&
    wait_until 20 "hosts_up h1 h2"
'

test_expect_success 'vmckpt vm start: the agent of h1 launches the guest with the root'"'"'s QEMU' '
    vmckpt vm start --job $JOB --name g1 --host h1 \
        --kernel /srv/lab/vmlinux --initrd /srv/lab/initrd.img --ip 198.18.1.1/16 \
        --append "vmckpt.run=memwriter,-m,64,-r,2000,-p,1" >$TEST_DIR/start.out &&
    cat $TEST_DIR/start.out && grep -q "$JOB/g1 started on h1" $TEST_DIR/start.out &&
    wait_until 90 "grep -aq \"memwriter: gen=\" $(guest_log h1)" &&
    pid=$(qemu_pids g1 h1) && test -n "$pid" &&
    test "$(readlink /proc/$pid/root)" = "$ROOT" &&
    if [ "$(uffd_wp)" = yes ]; then
        grep -q /usr/libexec/vmckpt/libvmckpt-uffd.so /proc/$pid/maps
    fi
'

test_expect_success 'vmckpt checkpoint: the epoch is committed on h2' '
    vmckpt checkpoint --vm g1 --job $JOB >$TEST_DIR/c1.out && cat $TEST_DIR/c1.out &&
    grep -q "epoch 1 committed (full, on h2)" $TEST_DIR/c1.out &&
    test -n "$(ls $TEST_DIR/h2/state/store/$JOB/g1/)"
'

test_expect_success 'h1 dies; vmckpt restore brings g1 back on h2; memwriter verifies' '
    "$LAB_CMD" kill-host $LAB h1 &&
    wait_until 20 "test \"\$(host_state h1)\" = lost" &&
    vmckpt restore --vm g1 --job $JOB --host h2 >$TEST_DIR/r.out && cat $TEST_DIR/r.out &&
    grep -q "$JOB/g1 restored from epoch 1 on h2" $TEST_DIR/r.out &&
    wait_until 60 "grep -aq \"memwriter: gen=\" $(guest_log h2)" &&
    in_guest g1 "killall -USR1 memwriter" &&
    wait_until 30 "grep -aq \"memwriter: verify PASS\" $(guest_log h2)" &&
    ! grep -aq "verify FAIL" $(guest_log h2)
'

test_expect_success 'vm stop; the daemons stop on SIGTERM, as systemctl stop does' '
    vmckpt vm stop --name g1 --job $JOB | grep -q stopped &&
    pid=$(cat $TEST_DIR/h2/state/agent.pid) && kill -TERM $pid &&
    wait_until 10 "! alive $pid" &&
    wait_until 10 "test \"\$(host_state h2)\" = down" &&
    pid=$(cat $TEST_DIR/co/state/coordinator.pid) && kill -TERM $pid &&
    wait_until 10 "! alive $pid" &&
    test ! -e $TEST_DIR/co/state/coordinator.pid
'
echo $((SECONDS - T_LAB)) >$TEST_DIR/lab.s
note "lab, daemons, checkpoint and restore in $(cat $TEST_DIR/lab.s) s"

purge_check
test_done
