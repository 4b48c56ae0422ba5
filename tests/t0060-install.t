#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# 'make install' from the build tree into a staging directory (DESTDIR),
# with the prefix, sysconfdir and localstatedir moved elsewhere: every
# program, library and file at its place and nothing more (no test or
# noinst program), nothing written outside DESTDIR, the installed programs
# run and accept the installed configuration file, an administrator's
# configuration is never replaced, and 'make uninstall' leaves no file.
. "$top_srcdir/tests/lib/tap.sh"

# The paths of this install: unlike the configured ones, and all of them
# below TEST_DIR, so that a rule ignoring DESTDIR is seen.
P=$TEST_DIR/prefix
ETC=$TEST_DIR/etc
VAR=$TEST_DIR/var
D=$TEST_DIR/dest

# make in the build tree, without what the 'make check' running this test
# passes down to its children (TESTS=..., -n, the jobserver)
bmake() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$top_builddir" "$@"
}
# (the units' directory is systemd's own, outside the prefix: moved too)
inst() {
    bmake prefix="$P" sysconfdir="$ETC" localstatedir="$VAR" DESTDIR="$D" \
        systemdsystemunitdir="$P/lib/systemd/system" "$@"
}
# mkvar VAR: the value of a variable of the build tree's Makefile
mkvar() {
    printf 'print-var:\n\t@echo $(%s)\n' "$1" |
        bmake -s -f Makefile -f - print-var
}
files_in() { (cd "$1" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort); }

test_expect_success 'make install DESTDIR=...: done, and nothing outside DESTDIR' '
    inst install >$TEST_DIR/install.out 2>&1 &&
    test -d "$D$P" &&
    test ! -e "$P" && test ! -e "$ETC" && test ! -e "$VAR" &&
    files_in "$D" >$TEST_DIR/installed &&
    cat $TEST_DIR/installed &&
    ! grep -v -e "^${P#/}/" -e "^${ETC#/}/" -e "^${VAR#/}/" \
        <(cd "$D" && find . -type f | sed "s|^\./||")
'

# every expected file, at its place
expect() { test -f "$D$1" || fail "$1 is not installed"; }
test_expect_success 'programs, libraries, configuration, state directory at their place' '
    for f in bin/vmckpt sbin/vmckpt-coordinator sbin/vmckpt-agent; do
        expect "$P/$f" && test -x "$D$P/$f" || exit 1
    done &&
    expect "$P/libexec/vmckpt/libvmckpt-uffd.so" &&
    expect "$P/libexec/vmckpt/vmckpt-guard" && test -x "$D$P/libexec/vmckpt/vmckpt-guard" &&
    if [ -z "$(mkvar HAVE_MPI_TRUE)" ]; then
        expect "$P/bin/vmckpt-mpirun" &&
        expect "$P/libexec/vmckpt/libvmckpt-mpi.so" || exit 1
    else
        echo "built without MPI: no hooks, no wrapper"
    fi &&
    if [ -z "$(mkvar HAVE_SPANK_TRUE)" ]; then
        expect "$P/libexec/vmckpt/vmckpt.so" || exit 1
    fi &&
    # (made at build time: the configured paths)
    lx=$(mkvar pkglibexecdir) && sc=$(mkvar sysconfdir) &&
    for w in prolog epilog; do
        expect "$P/libexec/vmckpt/vmckpt-slurm-$w" &&
        grep -qx "exec $lx/vmckpt-slurm $w" "$D$P/libexec/vmckpt/vmckpt-slurm-$w" || exit 1
    done &&
    grep -q "^CONF=\${VMCKPT_CONFIG:-$sc/vmckpt/vmckpt.conf}" "$D$P/libexec/vmckpt/vmckpt-slurm" &&
    "$D$P/libexec/vmckpt/vmckpt-slurm" --config-keys | grep -qx slurm.guest_net &&
    expect "$P/share/doc/vmckpt/slurm.md" &&
    expect "$P/share/doc/vmckpt/heat.sbatch" &&
    expect "$ETC/vmckpt/vmckpt.conf" &&
    test "$(stat -c %a "$D$ETC/vmckpt/vmckpt.conf")" = 644 &&
    test -d "$D$VAR/lib/vmckpt" &&
    test "$(stat -c %a "$D$VAR/lib/vmckpt")" = 700 &&
    expect "$P/share/doc/vmckpt/architecture.md" &&
    expect "$P/share/man/man8/vmckpt-agent.8" &&
    expect "$ETC/logrotate.d/vmckpt" &&
    if [ -z "$(mkvar HAVE_SYSTEMD_UNITS_TRUE)" ]; then
        expect "$P/lib/systemd/system/vmckpt-agent.service" &&
        expect "$P/lib/systemd/system/vmckpt-coordinator.service"
    fi
'

test_expect_success 'no test, noinst or check program, no script of the tree is installed' '
    not_installed="$(mkvar noinst_PROGRAMS) $(mkvar check_PROGRAMS) $(mkvar noinst_LIBRARIES) $(mkvar dist_noinst_SCRIPTS) $(mkvar noinst_SCRIPTS) $(mkvar TESTS)" &&
    for f in $not_installed; do echo "${f##*/}"; done | sort -u >$TEST_DIR/not-installed &&
    grep -qx vmckpt-vmtool $TEST_DIR/not-installed &&
    grep -qx wirepoke $TEST_DIR/not-installed &&
    grep -qx util_test $TEST_DIR/not-installed &&
    sed "s|.*/||" $TEST_DIR/installed | sort -u >$TEST_DIR/installed-names &&
    comm -12 $TEST_DIR/not-installed $TEST_DIR/installed-names >$TEST_DIR/wrong &&
    (cd "$top_srcdir/tests" && find . -name "*.dir" -prune -o -type f -print | sed "s|.*/||") | sort -u |
        comm -12 - $TEST_DIR/installed-names >>$TEST_DIR/wrong &&
    cat $TEST_DIR/wrong &&
    test ! -s $TEST_DIR/wrong
'

test_expect_success 'the installed programs run' '
    "$D$P/bin/vmckpt" --version | grep -q "^vmckpt [0-9]" &&
    "$D$P/sbin/vmckpt-coordinator" --version | grep -q "^vmckpt [0-9]" &&
    "$D$P/sbin/vmckpt-agent" --version | grep -q "^vmckpt [0-9]" &&
    if [ -x "$D$P/bin/vmckpt-mpirun" ]; then
        "$D$P/bin/vmckpt-mpirun" --version | grep -q "vmckpt [0-9]"
    fi
'

# The installed file as it is, and with every key uncommented: each
# program reads it and goes on to the next step (the key file), where an
# unknown key or a bad value would have stopped it first.
CONF=$D$ETC/vmckpt/vmckpt.conf
test_expect_success 'the installed configuration: its defaults, and every key, accepted' '
    grep -q "^;key_file = .*/vmckpt/cluster.key$" "$CONF" &&
    ! grep -q "@[a-z]*@" "$CONF" &&
    ! grep -v -e "^#" -e "^;" -e "^\[" -e "^$" "$CONF" &&
    sed "s/^;\([a-z_]* =\)/\1/" "$CONF" >$TEST_DIR/all.conf &&
    test "$(grep -c "^[a-z_]* =" $TEST_DIR/all.conf)" -gt 40 &&
    for c in "$CONF" $TEST_DIR/all.conf; do
        ! "$D$P/sbin/vmckpt-coordinator" -f -c "$c" -o cluster.key_file=$TEST_DIR/nokey 2>$TEST_DIR/err &&
        grep -q "cannot open key file $TEST_DIR/nokey" $TEST_DIR/err &&
        ! "$D$P/sbin/vmckpt-agent" -f -c "$c" -o cluster.key_file=$TEST_DIR/nokey \
            -o cluster.coordinator=127.0.0.1 2>$TEST_DIR/err &&
        grep -q "cannot open key file $TEST_DIR/nokey" $TEST_DIR/err &&
        ! "$D$P/bin/vmckpt" -c "$c" -k $TEST_DIR/nokey hosts 2>$TEST_DIR/err &&
        grep -q "cannot open key file $TEST_DIR/nokey" $TEST_DIR/err || exit 1
    done &&
    ! "$D$P/sbin/vmckpt-agent" -f -c "$CONF" -o cluster.key_file=$TEST_DIR/nokey 2>$TEST_DIR/err &&
    grep -q "set \[cluster\] coordinator" $TEST_DIR/err
'

test_expect_success 'make uninstall leaves no file' '
    inst uninstall >$TEST_DIR/uninstall.out 2>&1 &&
    files_in "$D" >$TEST_DIR/left &&
    cat $TEST_DIR/left &&
    test ! -s $TEST_DIR/left &&
    test ! -e "$D$VAR/lib/vmckpt"
'

test_expect_success 'a changed configuration is kept by install and uninstall' '
    inst install >/dev/null 2>&1 &&
    echo "; mine" >>"$CONF" && cp "$CONF" $TEST_DIR/mine.conf &&
    inst install >$TEST_DIR/reinstall.out 2>&1 &&
    grep -q "keeping .*/vmckpt.conf" $TEST_DIR/reinstall.out &&
    cmp "$CONF" $TEST_DIR/mine.conf &&
    inst uninstall >$TEST_DIR/uninstall2.out 2>&1 &&
    grep -q "keeping .*/vmckpt.conf (changed" $TEST_DIR/uninstall2.out &&
    cmp "$CONF" $TEST_DIR/mine.conf &&
    test "$(files_in "$D")" = "${ETC#/}/vmckpt/vmckpt.conf"
'
rm -rf "$D"

test_done
