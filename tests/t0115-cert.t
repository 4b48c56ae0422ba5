#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The cluster's certificate authority through the console: vmckpt cert
# init, issue, revoke and list in a private directory, their files and
# output, and OpenSSL's own verdict on what they made (openssl verify
# with the CA and its CRL). No daemon is started.
. "$top_srcdir/tests/lib/tap.sh"

CLI_BIN="$top_builddir/cli/vmckpt"
CA=$TEST_DIR/ca
OUT=$TEST_DIR/out
command -v openssl >/dev/null || skip_all "no openssl command (Debian package openssl)"
command -v jq >/dev/null || skip_all "no jq (Debian package jq)"
# the console's own file must not come from this machine's /etc
printf '' >"$TEST_DIR/empty.conf"
export VMCKPT_CONFIG="$TEST_DIR/empty.conf"

# check CERT [CRL]: openssl's verdict on CERT against the CA, with the CA's
# CRL checked when CRL is given; prints openssl's output
check() {
    if [ -n "${2:-}" ]; then
        openssl verify -CAfile "$CA/ca.crt" -crl_check -CRLfile "$CA/crl.pem" "$1" 2>&1
    else
        openssl verify -CAfile "$CA/ca.crt" "$1" 2>&1
    fi
}

# the CA's CRL number, as openssl prints it (crlNumber=0x02 -> 02)
crl_number() { openssl crl -in "$CA/crl.pem" -noout -crlnumber | sed 's/^crlNumber=0x//'; }

# exits STATUS COMMAND...: COMMAND ends with exactly STATUS
exits() {
    local want=$1 rc
    shift
    "$@"
    rc=$?
    test $rc = "$want" || { echo "FAIL: exit status $rc of $*, not $want"; return 1; }
}

test_expect_success 'cert init makes a private CA directory and refuses to replace it' '
    "$CLI_BIN" cert init --ca $CA --cluster lab >$TEST_DIR/init.out &&
    grep -q "made the certificate authority of cluster .lab. in $CA" $TEST_DIR/init.out &&
    test "$(stat -c %a $CA)" = 700 &&
    test "$(stat -c %a $CA/ca.key)" = 600 &&
    test -s $CA/ca.crt && test -s $CA/crl.pem && test -f $CA/index &&
    openssl x509 -in $CA/ca.crt -noout -subject -nameopt RFC2253 >$TEST_DIR/subj &&
    grep -qx "subject=CN=lab CA,OU=ca,O=vmckpt" $TEST_DIR/subj &&
    openssl x509 -in $CA/ca.crt -noout -ext basicConstraints,keyUsage >$TEST_DIR/ext &&
    grep -q "CA:TRUE" $TEST_DIR/ext &&
    grep -q "Certificate Sign, CRL Sign" $TEST_DIR/ext &&
    test "$(crl_number)" = 01 &&
    cp $CA/ca.key $TEST_DIR/ca.key.orig &&
    ! "$CLI_BIN" cert init --ca $CA 2>$TEST_DIR/err &&
    grep -q "^vmckpt cert: $CA already holds a CA (ca.key); refusing to replace it" $TEST_DIR/err &&
    test $(wc -l <$TEST_DIR/err) = 1 &&
    cmp $CA/ca.key $TEST_DIR/ca.key.orig
'

test_expect_success 'cert issue writes a certificate that verifies, with the [tls] lines' '
    "$CLI_BIN" cert issue --ca $CA --out $OUT agent node1 >$TEST_DIR/issue.out &&
    cat $TEST_DIR/issue.out &&
    test "$(stat -c %a $OUT/node1.key)" = 600 &&
    cmp $OUT/ca.crt $CA/ca.crt &&
    grep -q "^wrote $OUT/node1.crt$" $TEST_DIR/issue.out &&
    sed -n "/^\[tls\]$/,\$p" $TEST_DIR/issue.out >$TEST_DIR/tls.conf &&
    printf "[tls]\nca = %s\ncert = %s\nkey = %s\n" $OUT/ca.crt $OUT/node1.crt $OUT/node1.key >$TEST_DIR/tls.want &&
    cmp $TEST_DIR/tls.conf $TEST_DIR/tls.want &&
    check $OUT/node1.crt | grep -qx "$OUT/node1.crt: OK" &&
    check $OUT/node1.crt crl | grep -qx "$OUT/node1.crt: OK" &&
    openssl x509 -in $OUT/node1.crt -noout -subject -nameopt RFC2253 | grep -qx "subject=CN=node1,OU=agent,O=vmckpt" &&
    openssl x509 -in $OUT/node1.crt -noout -ext subjectAltName,extendedKeyUsage,basicConstraints >$TEST_DIR/ext &&
    grep -q "DNS:node1" $TEST_DIR/ext &&
    grep -q "TLS Web Server Authentication, TLS Web Client Authentication" $TEST_DIR/ext &&
    grep -q "CA:FALSE" $TEST_DIR/ext &&
    test "$(openssl pkey -in $OUT/node1.key -pubout)" = "$(openssl x509 -in $OUT/node1.crt -noout -pubkey)"
'

test_expect_success 'the CA directory defaults to [cluster] ca_dir; --out to the current directory' '
    printf "[cluster]\nca_dir = %s\n" $CA >$TEST_DIR/ca.conf &&
    mkdir -p $TEST_DIR/here &&
    (cd $TEST_DIR/here && "$CLI_BIN" -c $TEST_DIR/ca.conf cert issue coordinator head >/dev/null) &&
    test -s $TEST_DIR/here/head.crt && test -s $TEST_DIR/here/head.key &&
    check $TEST_DIR/here/head.crt | grep -q ": OK$" &&
    "$CLI_BIN" -c $TEST_DIR/ca.conf cert list >$TEST_DIR/list.out &&
    grep -q " coordinator  head " $TEST_DIR/list.out
'

test_expect_success 'issuing again to a name names the older certificate, which stays valid' '
    old=$(openssl x509 -in $OUT/node1.crt -noout -serial | sed "s/^serial=//" | tr A-F a-f) &&
    cp $OUT/node1.crt $TEST_DIR/node1-old.crt &&
    "$CLI_BIN" cert issue --ca $CA --out $OUT agent node1 >$TEST_DIR/rotate.out &&
    grep -q "^agent node1 has 1 older valid certificate(s): 0*$old$" $TEST_DIR/rotate.out &&
    grep -q "stay valid until revoked" $TEST_DIR/rotate.out &&
    ! cmp -s $OUT/node1.crt $TEST_DIR/node1-old.crt &&
    check $TEST_DIR/node1-old.crt crl | grep -q ": OK$" &&
    check $OUT/node1.crt crl | grep -q ": OK$"
'

test_expect_success 'cert revoke: openssl then refuses the revoked certificates, not the others' '
    cp $OUT/node1.crt $TEST_DIR/node1-new.crt &&
    "$CLI_BIN" cert issue --ca $CA --out $OUT agent node2 >/dev/null &&
    "$CLI_BIN" cert revoke --ca $CA node1 >$TEST_DIR/revoke.out &&
    cat $TEST_DIR/revoke.out &&
    test $(grep -c "^revoked serial [0-9a-f]\{32\} (agent node1) at " $TEST_DIR/revoke.out) = 2 &&
    grep -q "picks up the new $CA/crl.pem without a restart" $TEST_DIR/revoke.out &&
    test "$(crl_number)" = 02 &&
    ! check $TEST_DIR/node1-old.crt crl >$TEST_DIR/v1 &&
    grep -q "certificate revoked" $TEST_DIR/v1 &&
    ! check $TEST_DIR/node1-new.crt crl >$TEST_DIR/v2 &&
    grep -q "certificate revoked" $TEST_DIR/v2 &&
    check $TEST_DIR/node1-new.crt | grep -q ": OK$" &&
    check $OUT/node2.crt crl | grep -q ": OK$" &&
    check $TEST_DIR/here/head.crt crl | grep -q ": OK$"
'

test_expect_success 'revoke by serial, as openssl prints it; the CRL number grows' '
    serial=$(openssl x509 -in $OUT/node2.crt -noout -serial | sed "s/^serial=//") &&
    "$CLI_BIN" cert revoke --ca $CA "$serial" | grep -q "(agent node2)" &&
    test "$(crl_number)" = 03 &&
    check $OUT/node2.crt crl | grep -q "certificate revoked" &&
    ! "$CLI_BIN" cert revoke --ca $CA "$serial" 2>$TEST_DIR/err &&
    grep -q "revoked already" $TEST_DIR/err &&
    test "$(crl_number)" = 03
'

test_expect_success 'cert list --json: every certificate with its state' '
    "$CLI_BIN" cert list --ca $CA --json >$TEST_DIR/list.json &&
    test "$(jq -r .ca.subject $TEST_DIR/list.json)" = "O=vmckpt, OU=ca, CN=lab CA" &&
    test "$(jq .ca.crl_number $TEST_DIR/list.json)" = 3 &&
    test "$(jq ".certificates | length" $TEST_DIR/list.json)" = 4 &&
    test "$(jq -r "[.certificates[].name] | join(\",\")" $TEST_DIR/list.json)" = node1,head,node1,node2 &&
    test "$(jq -r "[.certificates[].status] | join(\",\")" $TEST_DIR/list.json)" = revoked,valid,revoked,revoked &&
    test "$(jq -r ".certificates[1].role" $TEST_DIR/list.json)" = coordinator &&
    test "$(jq ".certificates[1].revoked_at" $TEST_DIR/list.json)" = null &&
    jq -e "[.certificates[] | select(.status == \"revoked\" and .revoked_at > 0)] | length == 3" $TEST_DIR/list.json >/dev/null &&
    jq -e "[.certificates[] | select(.expired or .not_after < now)] | length == 0" $TEST_DIR/list.json >/dev/null &&
    test "$(jq -r ".certificates[1].serial" $TEST_DIR/list.json)" = \
        "$(openssl x509 -in $TEST_DIR/here/head.crt -noout -serial | sed "s/^serial=//" | tr A-F a-f | sed -e :a -e "s/^.\{0,31\}$/0&/;ta")"
'

test_expect_success 'usage errors exit 2 and write nothing; failures exit 1 with one line' '
    cp $CA/index $TEST_DIR/index.before &&
    exits 2 "$CLI_BIN" cert issue --ca $CA --out $TEST_DIR/none root x 2>$TEST_DIR/err &&
    grep -q "unknown role .root." $TEST_DIR/err &&
    exits 2 "$CLI_BIN" cert issue --ca $CA --out $TEST_DIR/none agent "a/b" 2>$TEST_DIR/err &&
    grep -q "bad name .a/b." $TEST_DIR/err &&
    exits 2 "$CLI_BIN" cert issue --ca $CA --out $TEST_DIR/none agent ca 2>/dev/null &&
    exits 2 "$CLI_BIN" cert issue --ca $CA --json agent x 2>$TEST_DIR/err &&
    grep -q "cert issue: unknown option .--json." $TEST_DIR/err &&
    exits 2 "$CLI_BIN" cert issue --ca $CA --days 0 agent x 2>/dev/null &&
    exits 2 "$CLI_BIN" cert init --ca $CA --days 2>/dev/null &&
    exits 2 "$CLI_BIN" cert frob 2>/dev/null &&
    test ! -e $TEST_DIR/none &&
    cmp $CA/index $TEST_DIR/index.before &&
    exits 1 "$CLI_BIN" cert revoke --ca $CA nobody 2>$TEST_DIR/err &&
    grep -q "^vmckpt cert: no certificate named .nobody." $TEST_DIR/err &&
    exits 1 "$CLI_BIN" cert list --ca $TEST_DIR/nothere 2>$TEST_DIR/err &&
    grep -q "^vmckpt cert: no CA in $TEST_DIR/nothere" $TEST_DIR/err &&
    exits 1 "$CLI_BIN" cert issue --ca $CA --days 5000 agent x 2>$TEST_DIR/err &&
    grep -q "outlast the CA" $TEST_DIR/err
'

test_expect_success 'a damaged index or CA key is refused with a clear error' '
    cp $CA/index $TEST_DIR/index.good &&
    echo "not an index line" >>$CA/index &&
    exits 1 "$CLI_BIN" cert list --ca $CA 2>$TEST_DIR/err &&
    cat $TEST_DIR/err &&
    grep -q "^vmckpt cert: $CA/index:6: damaged index line: not 6 fields" $TEST_DIR/err &&
    exits 1 "$CLI_BIN" cert issue --ca $CA --out $OUT agent node3 2>/dev/null &&
    test ! -e $OUT/node3.crt &&
    cp $TEST_DIR/index.good $CA/index &&
    cp $CA/ca.key $TEST_DIR/ca.key.good &&
    echo garbage >$CA/ca.key &&
    exits 1 "$CLI_BIN" cert revoke --ca $CA head 2>$TEST_DIR/err &&
    grep -q "^vmckpt cert: $CA/ca.key is not a PEM private key" $TEST_DIR/err &&
    cp $TEST_DIR/ca.key.good $CA/ca.key && chmod 644 $CA/ca.key &&
    exits 1 "$CLI_BIN" cert issue --ca $CA --out $OUT agent node3 2>$TEST_DIR/err &&
    grep -q "must not be accessible by group or other (chmod 600" $TEST_DIR/err &&
    chmod 600 $CA/ca.key &&
    "$CLI_BIN" cert issue --ca $CA --out $OUT agent node3 >/dev/null &&
    check $OUT/node3.crt crl | grep -q ": OK$"
'

test_expect_success 'a name in two roles (a head node): revoke refuses without --role, revokes one role with it' '
    "$CLI_BIN" cert issue --ca $CA --out $TEST_DIR/head-agent agent head >$TEST_DIR/issue-ha.out &&
    ! grep -q "older valid" $TEST_DIR/issue-ha.out &&
    check $TEST_DIR/head-agent/head.crt crl | grep -q ": OK$" &&
    cp $CA/index $TEST_DIR/index.before && cp $CA/crl.pem $TEST_DIR/crl.before &&
    { "$CLI_BIN" cert revoke --ca $CA head 2>$TEST_DIR/err; test $? = 1; } &&
    cat $TEST_DIR/err &&
    grep -q "^vmckpt cert: .head. has valid certificates in more than one role (coordinator, agent): give --role" $TEST_DIR/err &&
    test $(wc -l <$TEST_DIR/err) = 1 &&
    exits 2 "$CLI_BIN" cert revoke --ca $CA --role root head 2>$TEST_DIR/err &&
    grep -q "unknown role .root." $TEST_DIR/err &&
    exits 1 "$CLI_BIN" cert revoke --ca $CA --role admin head 2>$TEST_DIR/err &&
    grep -q "no admin certificate named .head." $TEST_DIR/err &&
    cmp $CA/index $TEST_DIR/index.before && cmp $CA/crl.pem $TEST_DIR/crl.before &&
    "$CLI_BIN" cert revoke --ca $CA --role agent head >$TEST_DIR/revoke-ha.out &&
    cat $TEST_DIR/revoke-ha.out &&
    test $(grep -c "^revoked serial " $TEST_DIR/revoke-ha.out) = 1 &&
    grep -q "^revoked serial [0-9a-f]\{32\} (agent head) at " $TEST_DIR/revoke-ha.out &&
    test "$(crl_number)" = 04 &&
    check $TEST_DIR/head-agent/head.crt crl | grep -q "certificate revoked" &&
    check $TEST_DIR/here/head.crt crl | grep -q ": OK$" &&
    "$CLI_BIN" cert revoke --help | grep -q "^  --role ROLE "
'

test_expect_success 'init --force makes a new CA: the old certificates no longer verify' '
    "$CLI_BIN" cert init --ca $CA --cluster lab2 --force >/dev/null &&
    ! cmp -s $CA/ca.key $TEST_DIR/ca.key.orig &&
    ! check $OUT/node3.crt >/dev/null &&
    test "$("$CLI_BIN" cert list --ca $CA --json | jq ".certificates | length")" = 0
'

test_expect_success 'every cert subcommand has its --help' '
    for s in init issue revoke list; do
        "$CLI_BIN" cert $s --help >$TEST_DIR/help.$s &&
        grep -q "^Usage: vmckpt cert $s" $TEST_DIR/help.$s || exit 1
    done &&
    "$CLI_BIN" cert --help | grep -q "^Usage: vmckpt cert init" &&
    "$CLI_BIN" help --commands | grep -qx cert
'

test_done
