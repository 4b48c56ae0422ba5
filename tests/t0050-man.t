#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The manual pages: each formats without a warning, and they document what
# the code accepts. The lists come from the programs themselves (the
# console's command table, each program's --help and --config-keys) and
# from the names of environment variables in the sources; nothing is
# listed by hand here. No daemon is started.
. "$top_srcdir/tests/lib/tap.sh"

MAN="$top_builddir/docs/man"
CLI_BIN="$top_builddir/cli/vmckpt"
COORD_BIN="$top_builddir/coordinator/vmckpt-coordinator"
AGENT_BIN="$top_builddir/agent/vmckpt-agent"
MPIRUN_BIN="$top_builddir/mpi-hooks/vmckpt-mpirun"
PAGES="vmckpt.1 vmckpt-mpirun.1 vmckpt.conf.5 vmckpt-coordinator.8 vmckpt-agent.8"
export LC_ALL=C
# the console's own file must not come from this machine's /etc
printf '' >"$TEST_DIR/empty.conf"
export VMCKPT_CONFIG="$TEST_DIR/empty.conf"

# The items of a page at the outer level (not inside .RS/.RE) whose tag
# starts with a plain word: that word, or "section.word" under a heading
# '.SS "[section]"'. Only in the .SH section $2 (all sections if empty).
page_items() {
    awk -v want="$2" '
        /^\.SH/ { sh = $0; sub(/^\.SH +"?/, "", sh); sub(/"$/, "", sh);
                  sec = ""; next }
        /^\.SS/ { sec = "";
                  if (match($0, /\[[a-z_]+\]/))
                      sec = substr($0, RSTART + 1, RLENGTH - 2);
                  next }
        /^\.RS/ { depth++; next }
        /^\.RE/ { depth--; next }
        /^\.TP/ { item = depth == 0; next }
        item {
            item = 0
            if (want != "" && sh != want) next
            if ($0 !~ /^\.B[IR]? /) next
            w = $2; gsub(/"/, "", w)
            if (w !~ /^[a-z][a-z0-9_]*$/) next
            print (sec != "" ? sec "." : "") w
        }' "$1" | sort -u
}

# same_lists WHAT CODE_LIST DOC_LIST: the two sorted lists are equal, or
# fail naming what the page lacks and what it has that the code has not.
same_lists() {
    local missing extra
    missing=$(comm -23 "$2" "$3" | tr '\n' ' ')
    extra=$(comm -13 "$2" "$3" | tr '\n' ' ')
    [ -z "$missing" ] || echo "FAIL: $1: in the code, not documented: $missing"
    [ -z "$extra" ] || echo "FAIL: $1: documented, not in the code: $extra"
    [ -z "$missing$extra" ]
}

# long_options FILE: the --options named in a usage text, one a line.
long_options() { grep -o -- '--[a-z][a-z0-9-]*' "$1" | sort -u; }

# page_mentions PAGE OPTION|NAME...: each appears in the page's text (roff
# '\-' read as '-', font changes dropped), not as the start of a longer
# name; fail naming those that do not.
page_mentions() {
    local page=$1 name missing=""
    shift
    sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\f([A-Z][A-Z]//g' \
        "$page" >"$TEST_DIR/page.txt"
    for name in "$@"; do
        grep -Eq -- "(^|[^A-Za-z0-9_-])$name([^A-Za-z0-9_-]|\$)" \
            "$TEST_DIR/page.txt" || missing="$missing $name"
    done
    [ -z "$missing" ] || echo "FAIL: not in $(basename "$page"):$missing"
    [ -z "$missing" ]
}

# env_names DIR...: environment variables the C sources of DIR read by
# name, or name as VMCKPT_ strings (set for children, read indirectly).
env_names() {
    local d
    for d in "$@"; do
        cat "$top_srcdir/$d"/*.c
    done | grep -oE 'getenv\("[A-Z_]+"\)|"VMCKPT_[A-Z_]+"' |
        grep -oE '[A-Z][A-Z_]+' | grep -v '^getenv$' | sort -u
}

if command -v groff >/dev/null; then
    test_expect_success 'every page formats without a warning (groff -man -ww -z)' '
        for p in $PAGES; do
            test -s "$MAN/$p" || { echo "FAIL: $MAN/$p not built"; exit 1; }
            groff -man -ww -z "$MAN/$p" >$TEST_DIR/lint.out 2>&1 ||
                { cat $TEST_DIR/lint.out; exit 1; }
            if test -s $TEST_DIR/lint.out; then
                echo "FAIL: $p:"; cat $TEST_DIR/lint.out; exit 1
            fi
        done
    '
else
    test_skip 'every page formats without a warning' \
        'no groff here (Debian package groff-base, in quickstart PACKAGES)'
fi

test_expect_success 'no placeholder is left, and the paths are those the programs use' '
    ! grep -n "@[A-Z_]*@" $(printf "$MAN/%s " $PAGES) &&
    "$COORD_BIN" --help >$TEST_DIR/help.coord &&
    conf=$(sed -n "s|.*configuration file (default \(/.*\))\$|\1|p" $TEST_DIR/help.coord) &&
    state=$(sed -n "s|^ *state_dir = \(/[^ ]*\) .*|\1|p" $TEST_DIR/help.coord) &&
    test -n "$conf" && test -n "$state" &&
    grep -qxF ".I $conf" "$MAN/vmckpt.conf.5" &&
    grep -qxF ".I $conf" "$MAN/vmckpt-agent.8" &&
    grep -qF "$state" "$MAN/vmckpt-coordinator.8"
'

test_expect_success 'the item parser and the comparison can fail (a key and a command left out)' '
    page_items "$MAN/vmckpt.conf.5" >$TEST_DIR/keys.doc &&
    grep -qx coordinator.keep_epochs $TEST_DIR/keys.doc &&
    grep -qx agent.streams $TEST_DIR/keys.doc &&
    ! grep -qx agent.uffd $TEST_DIR/keys.doc &&
    awk "/^\.BI \"keep_epochs = \"/ { next } { print }" "$MAN/vmckpt.conf.5" >$TEST_DIR/cut.5 &&
    page_items $TEST_DIR/cut.5 >$TEST_DIR/keys.cut &&
    ! same_lists keys $TEST_DIR/keys.doc $TEST_DIR/keys.cut >$TEST_DIR/same.out &&
    grep -q "in the code, not documented: coordinator.keep_epochs $" $TEST_DIR/same.out &&
    ! same_lists keys $TEST_DIR/keys.cut $TEST_DIR/keys.doc >$TEST_DIR/same.out &&
    grep -q "documented, not in the code: coordinator.keep_epochs $" $TEST_DIR/same.out &&
    page_items "$MAN/vmckpt.1" COMMANDS >$TEST_DIR/verbs.doc &&
    grep -qx fence $TEST_DIR/verbs.doc &&
    ! grep -qx json $TEST_DIR/verbs.doc &&
    ! page_mentions "$MAN/vmckpt.1" --no-such-option --config >$TEST_DIR/mention.out &&
    grep -q "not in vmckpt.1: --no-such-option$" $TEST_DIR/mention.out
'

test_expect_success 'every command of the console is an item of COMMANDS in vmckpt.1' '
    "$CLI_BIN" help --commands | sort -u >$TEST_DIR/verbs.code &&
    test $(wc -l <$TEST_DIR/verbs.code) -ge 10 &&
    page_items "$MAN/vmckpt.1" COMMANDS >$TEST_DIR/verbs.doc &&
    same_lists "vmckpt commands" $TEST_DIR/verbs.code $TEST_DIR/verbs.doc
'

test_expect_success 'every option each console command prints in its --help is in vmckpt.1' '
    "$CLI_BIN" --help >$TEST_DIR/help.vmckpt &&
    long_options $TEST_DIR/help.vmckpt >$TEST_DIR/opts &&
    for v in $(cat $TEST_DIR/verbs.code); do
        test $v = help && continue
        "$CLI_BIN" $v --help >$TEST_DIR/help.$v ||
            { echo "FAIL: vmckpt $v --help failed"; exit 1; }
        grep -q "^Usage: vmckpt $v" $TEST_DIR/help.$v ||
            { echo "FAIL: vmckpt $v --help printed no usage"; exit 1; }
        long_options $TEST_DIR/help.$v >>$TEST_DIR/opts
    done &&
    test $(sort -u $TEST_DIR/opts | wc -l) -ge 20 &&
    page_mentions "$MAN/vmckpt.1" $(sort -u $TEST_DIR/opts)
'

test_expect_success 'every configuration key a program accepts is an item of vmckpt.conf.5, and no other' '
    { "$COORD_BIN" --config-keys && "$AGENT_BIN" --config-keys &&
      "$CLI_BIN" --config-keys && "$top_builddir/slurm/vmckpt-slurm" --config-keys; } >$TEST_DIR/keys.all &&
    sort -u $TEST_DIR/keys.all >$TEST_DIR/keys.code &&
    grep -qx coordinator.listen $TEST_DIR/keys.code &&
    grep -qx agent.store_listen $TEST_DIR/keys.code &&
    grep -qx launch.hosts $TEST_DIR/keys.code &&
    ! grep -v "^[a-z]*\.[a-z0-9_]*$" $TEST_DIR/keys.code &&
    page_items "$MAN/vmckpt.conf.5" >$TEST_DIR/keys.doc &&
    same_lists "configuration keys" $TEST_DIR/keys.code $TEST_DIR/keys.doc
'

test_expect_success 'every option of the daemons is in their pages' '
    "$COORD_BIN" --help >$TEST_DIR/help.coord &&
    page_mentions "$MAN/vmckpt-coordinator.8" $(long_options $TEST_DIR/help.coord) &&
    "$AGENT_BIN" --help >$TEST_DIR/help.agent &&
    page_mentions "$MAN/vmckpt-agent.8" $(long_options $TEST_DIR/help.agent) &&
    grep -q -- "--config-keys" $TEST_DIR/help.coord &&
    grep -q -- "--config-keys" $TEST_DIR/help.agent
'

if test -x "$MPIRUN_BIN"; then
    test_expect_success 'every option of vmckpt-mpirun is in its page' '
        "$MPIRUN_BIN" --help >$TEST_DIR/help.mpirun &&
        page_mentions "$MAN/vmckpt-mpirun.1" $(long_options $TEST_DIR/help.mpirun)
    '
else
    test_skip 'every option of vmckpt-mpirun is in its page' \
        'vmckpt-mpirun not built (configured without MPI)'
fi

test_expect_success 'every environment variable the console and the MPI hooks read is in their pages' '
    env_names cli >$TEST_DIR/env.cli &&
    grep -qx VMCKPT_CONFIG $TEST_DIR/env.cli &&
    page_mentions "$MAN/vmckpt.1" $(cat $TEST_DIR/env.cli) &&
    env_names mpi-hooks >$TEST_DIR/env.mpi &&
    grep -qx VMCKPT_TOKEN $TEST_DIR/env.mpi &&
    page_mentions "$MAN/vmckpt-mpirun.1" $(cat $TEST_DIR/env.mpi)
'

test_done
