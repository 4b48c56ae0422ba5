/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of the cluster CA: the files init makes, issued certificates
 * verifying against the CA with the right identity and extensions,
 * revocation seen by OpenSSL's own CRL check, rotation, one name in two
 * roles kept apart, and damaged CA files refused with a clear error. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cert/cert.h"

static char top[256];
static char ca_dir[300], out_dir[300];

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(top, sizeof(top), "%s/cert_test.XXXXXX", tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(top));
    snprintf(ca_dir, sizeof(ca_dir), "%s/ca", top);
    snprintf(out_dir, sizeof(out_dir), "%s/out", top);
}

static void teardown(void)
{
    nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static unsigned mode_of(const char *dir, const char *file)
{
    char path[600];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    ck_assert_msg(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
    return (unsigned)(st.st_mode & 07777);
}

static X509 *load(const char *dir, const char *file)
{
    struct vmckpt_error err;
    char path[600];
    X509 *x;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    ck_assert_msg(cert_load_file(path, &x, &err) == 0, "%s", err.text);
    return x;
}

static long crl_number_of(const char *dir)
{
    struct vmckpt_error err;
    char path[600];
    X509_CRL *crl;
    ASN1_INTEGER *n;
    long v;

    snprintf(path, sizeof(path), "%s/crl.pem", dir);
    ck_assert_msg(cert_load_crl(path, &crl, &err) == 0, "%s", err.text);
    n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    ck_assert_ptr_nonnull(n);
    v = ASN1_INTEGER_get(n);
    ASN1_INTEGER_free(n);
    X509_CRL_free(crl);
    return v;
}

/* OpenSSL's verdict on 'leaf' against the CA of 'ca_dir', with its CRL
 * checked when 'crl' is set: X509_V_OK or the error. */
static int verify(const char *leaf_dir, const char *leaf, int crl)
{
    struct vmckpt_error err;
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509 *ca = load(ca_dir, "ca.crt"), *x = load(leaf_dir, leaf);
    char path[600];
    int rc;

    ck_assert_int_eq(X509_STORE_add_cert(st, ca), 1);
    if (crl) {
        X509_CRL *c;

        snprintf(path, sizeof(path), "%s/crl.pem", ca_dir);
        ck_assert_msg(cert_load_crl(path, &c, &err) == 0, "%s", err.text);
        ck_assert_int_eq(X509_STORE_add_crl(st, c), 1);
        X509_CRL_free(c);
        X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
    }
    ck_assert_int_eq(X509_STORE_CTX_init(ctx, st, x, NULL), 1);
    rc = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    X509_free(ca);
    X509_free(x);
    return rc;
}

static void init_ca(void)
{
    struct vmckpt_error err;

    ck_assert_msg(cert_ca_init(ca_dir, "lab", 0, 0, &err) == 0, "%s", err.text);
}

static void issue(const char *role, const char *name, struct cert_issued *out)
{
    struct vmckpt_error err;

    ck_assert_msg(cert_issue(ca_dir, role, name, out_dir, 0, out, &err) == 0,
                  "%s", err.text);
}

/* issue() into 'dir' under 'top' (its path into 'path'), for two roles
 * of one name, whose files would replace each other in one directory. */
static void issue_in(const char *dir, const char *role, const char *name,
                     char *path, size_t len, struct cert_issued *out)
{
    struct vmckpt_error err;

    snprintf(path, len, "%s/%s", top, dir);
    ck_assert_msg(cert_issue(ca_dir, role, name, path, 0, out, &err) == 0, "%s",
                  err.text);
}

static void read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n;

    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void append(const char *path, const char *text)
{
    FILE *f = fopen(path, "a");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* init makes a 0700 directory, a 0600 Ed25519 key, a self-signed CA
 * certificate with the CA extensions, and an empty CRL numbered 1 whose
 * next update is the CA's end. */
START_TEST(init_makes_files)
{
    struct vmckpt_error err;
    struct cert_ca_info info;
    struct cert_entries l;
    char path[600];
    X509 *ca;
    X509_CRL *crl;
    BASIC_CONSTRAINTS *bc;

    init_ca();
    ck_assert_uint_eq(mode_of(top, "ca"), 0700);
    ck_assert_uint_eq(mode_of(ca_dir, "ca.key"), 0600);
    ca = load(ca_dir, "ca.crt");
    ck_assert_int_eq(X509_check_ca(ca), 1);
    ck_assert_int_eq(
        X509_NAME_cmp(X509_get_subject_name(ca), X509_get_issuer_name(ca)), 0);
    bc = X509_get_ext_d2i(ca, NID_basic_constraints, NULL, NULL);
    ck_assert(bc != NULL && bc->ca);
    BASIC_CONSTRAINTS_free(bc);
    ck_assert_ptr_nonnull(X509_get0_subject_key_id(ca));
    ck_assert_uint_eq(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    ck_assert_int_eq(X509_get_signature_nid(ca), NID_ED25519);
    ck_assert_msg(cert_ca_info(ca_dir, &info, &err) == 0, "%s", err.text);
    ck_assert_str_eq(info.subject, "O=vmckpt, OU=ca, CN=lab CA");
    ck_assert_int_eq(info.crl_number, 1);
    /* 3650 days, give or take the second the test started in */
    ck_assert(info.not_after - time(NULL) > 3650L * 86400 - 60);
    snprintf(path, sizeof(path), "%s/crl.pem", ca_dir);
    ck_assert_int_eq(cert_load_crl(path, &crl, &err), 0);
    ck_assert_int_le(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 0);
    ck_assert_int_eq(ASN1_TIME_compare(X509_CRL_get0_nextUpdate(crl),
                                       X509_get0_notAfter(ca)),
                     0);
    ck_assert_int_eq(X509_CRL_verify(crl, X509_get0_pubkey(ca)), 1);
    X509_CRL_free(crl);
    X509_free(ca);
    ck_assert_int_eq(cert_list(ca_dir, &l, &err), 0);
    ck_assert_uint_eq(l.n, 0);
    cert_entries_dispose(&l);
}
END_TEST

/* A second init refuses to replace the CA; --force replaces it. */
START_TEST(init_refuses_existing)
{
    struct vmckpt_error err;
    char path[600], before[4096], after[4096];

    init_ca();
    snprintf(path, sizeof(path), "%s/ca.key", ca_dir);
    read_file(path, before, sizeof(before));
    ck_assert_int_eq(cert_ca_init(ca_dir, "lab", 0, 0, &err), -1);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_msg(strstr(err.text, "already holds a CA") != NULL, "%s",
                  err.text);
    read_file(path, after, sizeof(after));
    ck_assert_str_eq(before, after);
    ck_assert_int_eq(cert_ca_init(ca_dir, "lab", 10, 1, &err), 0);
    read_file(path, after, sizeof(after));
    ck_assert_str_ne(before, after);
    ck_assert_int_eq(cert_ca_init(ca_dir, "bad name", 0, 1, &err), -1);
    ck_assert_int_eq(cert_ca_init(ca_dir, "lab", CERT_DAYS_MAX + 1, 1, &err),
                     -1);
}
END_TEST

/* An issued certificate verifies against ca.crt and carries the identity,
 * SAN, EKU and CA:FALSE; its key is its own and private. */
START_TEST(issue_verifies)
{
    struct vmckpt_error err;
    struct cert_issued out;
    struct cert_entries l;
    char role[16], name[64];
    GENERAL_NAMES *san;
    const GENERAL_NAME *gn;
    EVP_PKEY *key;
    FILE *f;
    X509 *x;

    init_ca();
    issue("agent", "node-1.lab", &out);
    ck_assert_uint_eq(out.older.n, 0);
    ck_assert_uint_eq(strlen(out.entry.serial), CERT_SERIAL_HEX);
    ck_assert_str_eq(out.crt_path + strlen(out.crt_path) - 15,
                     "/node-1.lab.crt");
    ck_assert_uint_eq(mode_of(out_dir, "node-1.lab.key"), 0600);
    ck_assert_int_eq(verify(out_dir, "node-1.lab.crt", 0), X509_V_OK);
    ck_assert_int_eq(verify(out_dir, "node-1.lab.crt", 1), X509_V_OK);
    x = load(out_dir, "node-1.lab.crt");
    ck_assert_int_eq(
        cert_identity(x, role, sizeof(role), name, sizeof(name), &err), 0);
    ck_assert_str_eq(role, "agent");
    ck_assert_str_eq(name, "node-1.lab");
    ck_assert_int_eq(X509_check_ca(x), 0);
    ck_assert_uint_eq(X509_get_extended_key_usage(x),
                      XKU_SSL_SERVER | XKU_SSL_CLIENT);
    ck_assert_uint_eq(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    ck_assert(san != NULL && sk_GENERAL_NAME_num(san) == 1);
    gn = sk_GENERAL_NAME_value(san, 0);
    ck_assert_int_eq(gn->type, GEN_DNS);
    ck_assert_str_eq((const char *)ASN1_STRING_get0_data(gn->d.dNSName),
                     "node-1.lab");
    GENERAL_NAMES_free(san);
    ck_assert_int_eq(X509_check_host(x, "node-1.lab", 0, 0, NULL), 1);
    f = fopen(out.key_path, "r");
    ck_assert_ptr_nonnull(f);
    key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    ck_assert_ptr_nonnull(key);
    ck_assert_int_eq(X509_check_private_key(x, key), 1);
    EVP_PKEY_free(key);
    X509_free(x);
    ck_assert_int_eq(cert_list(ca_dir, &l, &err), 0);
    ck_assert_uint_eq(l.n, 1);
    ck_assert_str_eq(l.v[0].serial, out.entry.serial);
    ck_assert_str_eq(l.v[0].role, "agent");
    ck_assert(!l.v[0].revoked && l.v[0].not_after == out.entry.not_after);
    cert_entries_dispose(&l);
    cert_issued_dispose(&out);
}
END_TEST

/* A bad role or name is refused before anything is written; so is a
 * certificate that would outlast its CA. */
START_TEST(issue_refuses_bad_input)
{
    static const char *const names[] = {
        "",
        "a/b",
        "ca",
        "x y",
        "../x",
        "0123456789012345678901234567890123456789012345678901234567890123",
    };
    struct vmckpt_error err;
    struct cert_issued out;
    struct cert_entries l;
    size_t i;

    init_ca();
    ck_assert_int_eq(
        cert_issue(ca_dir, "root", "node1", out_dir, 0, &out, &err), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_msg(strstr(err.text, "unknown role 'root'") != NULL, "%s",
                  err.text);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        ck_assert_int_eq(
            cert_issue(ca_dir, "agent", names[i], out_dir, 0, &out, &err), -1);
        ck_assert_int_eq(errno, EINVAL);
    }
    ck_assert_int_eq(
        cert_issue(ca_dir, "agent", "node1", out_dir, 4000, &out, &err), -1);
    ck_assert_msg(strstr(err.text, "outlast the CA") != NULL, "%s", err.text);
    ck_assert_int_eq(access(out_dir, F_OK), -1);
    ck_assert_int_eq(cert_list(ca_dir, &l, &err), 0);
    ck_assert_uint_eq(l.n, 0);
    cert_entries_dispose(&l);
    /* the largest name is fine */
    issue("admin", names[5] + 1, &out);
    cert_issued_dispose(&out);
}
END_TEST

/* After a revocation, OpenSSL's CRL check fails the revoked certificate
 * as revoked and still passes another host's. */
START_TEST(revoke_seen_by_crl_check)
{
    struct vmckpt_error err;
    struct cert_issued a, b;
    struct cert_entries rev, l;
    long number;

    init_ca();
    issue("agent", "node1", &a);
    issue("coordinator", "head", &b);
    ck_assert_msg(cert_revoke(ca_dir, NULL, "node1", &rev, &number, &err) == 0,
                  "%s", err.text);
    ck_assert_uint_eq(rev.n, 1);
    ck_assert_str_eq(rev.v[0].serial, a.entry.serial);
    ck_assert_int_eq(number, 2);
    ck_assert_int_eq(verify(out_dir, "node1.crt", 1), X509_V_ERR_CERT_REVOKED);
    ck_assert_int_eq(verify(out_dir, "node1.crt", 0), X509_V_OK);
    ck_assert_int_eq(verify(out_dir, "head.crt", 1), X509_V_OK);
    ck_assert_int_eq(cert_list(ca_dir, &l, &err), 0);
    ck_assert(l.n == 2 && l.v[0].revoked && l.v[0].revoked_at > 0);
    ck_assert(!l.v[1].revoked);
    cert_entries_dispose(&l);
    cert_entries_dispose(&rev);
    /* again: nothing left to revoke; an unknown name is an error too */
    ck_assert_int_eq(cert_revoke(ca_dir, NULL, "node1", NULL, NULL, &err), -1);
    ck_assert_int_eq(errno, EALREADY);
    ck_assert_int_eq(cert_revoke(ca_dir, NULL, "node9", NULL, NULL, &err), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_msg(strstr(err.text, "no certificate named 'node9'") != NULL,
                  "%s", err.text);
    ck_assert_int_eq(crl_number_of(ca_dir), 2);
    cert_issued_dispose(&a);
    cert_issued_dispose(&b);
}
END_TEST

/* Each revocation signs a CRL with a higher number; a serial revokes
 * one certificate, given in any case, with 0x or colons. */
START_TEST(revoke_by_serial_numbers_increase)
{
    struct vmckpt_error err;
    struct cert_issued a, b;
    char colons[64], upper[40];
    long number;
    size_t i, k = 0;

    init_ca();
    issue("agent", "node1", &a);
    issue("agent", "node2", &b);
    for (i = 0; i < CERT_SERIAL_HEX; i++) {
        if (i > 0 && i % 2 == 0)
            colons[k++] = ':';
        colons[k++] = a.entry.serial[i];
    }
    colons[k] = '\0';
    ck_assert_int_eq(cert_revoke(ca_dir, NULL, colons, NULL, &number, &err), 0);
    ck_assert_int_eq(number, 2);
    ck_assert_int_eq(crl_number_of(ca_dir), 2);
    snprintf(upper, sizeof(upper), "0x%s", b.entry.serial);
    for (i = 2; upper[i]; i++)
        if (upper[i] >= 'a' && upper[i] <= 'f')
            upper[i] = (char)(upper[i] - 'a' + 'A');
    ck_assert_int_eq(cert_revoke(ca_dir, NULL, upper, NULL, &number, &err), 0);
    ck_assert_int_eq(number, 3);
    ck_assert_int_eq(crl_number_of(ca_dir), 3);
    ck_assert_int_eq(verify(out_dir, "node1.crt", 1), X509_V_ERR_CERT_REVOKED);
    ck_assert_int_eq(verify(out_dir, "node2.crt", 1), X509_V_ERR_CERT_REVOKED);
    cert_issued_dispose(&a);
    cert_issued_dispose(&b);
}
END_TEST

/* A second certificate of a name is issued and names the first, which
 * stays valid until the name is revoked, then both are. */
START_TEST(rotation_reports_older)
{
    struct vmckpt_error err;
    struct cert_issued a, b, c;
    struct cert_entries rev;
    char first[CERT_SERIAL_HEX + 1];

    init_ca();
    issue("agent", "node1", &a);
    snprintf(first, sizeof(first), "%s", a.entry.serial);
    issue("agent", "node1", &b);
    ck_assert_uint_eq(b.older.n, 1);
    ck_assert_str_eq(b.older.v[0].serial, first);
    ck_assert_str_ne(b.entry.serial, first);
    issue("agent", "node1", &c);
    ck_assert_uint_eq(c.older.n, 2);
    ck_assert_int_eq(cert_revoke(ca_dir, NULL, "node1", &rev, NULL, &err), 0);
    ck_assert_uint_eq(rev.n, 3);
    cert_entries_dispose(&rev);
    cert_issued_dispose(&c);
    /* after the revocation there is no older valid one */
    issue("agent", "node1", &c);
    ck_assert_uint_eq(c.older.n, 0);
    cert_issued_dispose(&a);
    cert_issued_dispose(&b);
    cert_issued_dispose(&c);
}
END_TEST

/* A head node's coordinator and agent share a name: revoking the name
 * without a role is refused and changes nothing; with a role only that
 * role's certificate is revoked, and the other still verifies against
 * the new CRL. A serial given with the wrong role is refused. */
START_TEST(revoke_name_in_two_roles)
{
    struct vmckpt_error err;
    struct cert_issued co, ag;
    struct cert_entries rev, l;
    char co_dir[600], ag_dir[600], path[600], crl_path[600];
    char index_before[4096], crl_before[4096], text[4096];
    long number;

    init_ca();
    issue_in("co", "coordinator", "head", co_dir, sizeof(co_dir), &co);
    issue_in("ag", "agent", "head", ag_dir, sizeof(ag_dir), &ag);
    ck_assert_uint_eq(ag.older.n, 0);
    snprintf(path, sizeof(path), "%s/index", ca_dir);
    snprintf(crl_path, sizeof(crl_path), "%s/crl.pem", ca_dir);
    read_file(path, index_before, sizeof(index_before));
    read_file(crl_path, crl_before, sizeof(crl_before));

    /* no role: refused, naming the roles, nothing written */
    ck_assert_int_eq(cert_revoke(ca_dir, NULL, "head", &rev, &number, &err),
                     -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_msg(strstr(err.text, "(coordinator, agent)") != NULL &&
                      strstr(err.text, "--role") != NULL,
                  "%s", err.text);
    read_file(path, text, sizeof(text));
    ck_assert_str_eq(text, index_before);
    read_file(crl_path, text, sizeof(text));
    ck_assert_str_eq(text, crl_before);
    ck_assert_int_eq(crl_number_of(ca_dir), 1);
    ck_assert_int_eq(verify(co_dir, "head.crt", 1), X509_V_OK);
    ck_assert_int_eq(verify(ag_dir, "head.crt", 1), X509_V_OK);

    /* a bad role; a role the name has no certificate in; the coordinator's
     * serial as an agent's: refused, nothing written */
    ck_assert_int_eq(cert_revoke(ca_dir, "root", "head", NULL, NULL, &err), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(cert_revoke(ca_dir, "admin", "head", NULL, NULL, &err),
                     -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_msg(strstr(err.text, "no admin certificate named 'head'") != NULL,
                  "%s", err.text);
    ck_assert_int_eq(
        cert_revoke(ca_dir, "agent", co.entry.serial, NULL, NULL, &err), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_msg(strstr(err.text, "certificate of coordinator head") != NULL,
                  "%s", err.text);
    read_file(path, text, sizeof(text));
    ck_assert_str_eq(text, index_before);
    ck_assert_int_eq(crl_number_of(ca_dir), 1);

    /* --role agent: the agent's only */
    ck_assert_msg(cert_revoke(ca_dir, "agent", "head", &rev, &number, &err) ==
                      0,
                  "%s", err.text);
    ck_assert_uint_eq(rev.n, 1);
    ck_assert_str_eq(rev.v[0].serial, ag.entry.serial);
    ck_assert_str_eq(rev.v[0].role, "agent");
    ck_assert_int_eq(number, 2);
    cert_entries_dispose(&rev);
    ck_assert_int_eq(verify(ag_dir, "head.crt", 1), X509_V_ERR_CERT_REVOKED);
    ck_assert_int_eq(verify(co_dir, "head.crt", 1), X509_V_OK);
    ck_assert_int_eq(cert_list(ca_dir, &l, &err), 0);
    ck_assert_uint_eq(l.n, 2);
    ck_assert(!l.v[0].revoked && strcmp(l.v[0].role, "coordinator") == 0);
    ck_assert(l.v[1].revoked && strcmp(l.v[1].role, "agent") == 0);
    cert_entries_dispose(&l);
    ck_assert_int_eq(cert_revoke(ca_dir, "agent", "head", NULL, NULL, &err),
                     -1);
    ck_assert_int_eq(errno, EALREADY);
    ck_assert_int_eq(crl_number_of(ca_dir), 2);

    /* the name's valid certificates are now of one role: no role needed */
    ck_assert_msg(cert_revoke(ca_dir, NULL, "head", &rev, NULL, &err) == 0,
                  "%s", err.text);
    ck_assert_uint_eq(rev.n, 1);
    ck_assert_str_eq(rev.v[0].serial, co.entry.serial);
    cert_entries_dispose(&rev);
    ck_assert_int_eq(verify(co_dir, "head.crt", 1), X509_V_ERR_CERT_REVOKED);
    cert_issued_dispose(&co);
    cert_issued_dispose(&ag);
}
END_TEST

/* Issuing an admin h1 next to an agent h1 reports no older certificate:
 * another role's is another identity. Issuing agent h1 again reports the
 * agent's only. */
START_TEST(issue_older_same_role_only)
{
    struct cert_issued ag, adm, ag2;
    char dir[600];

    init_ca();
    issue_in("ag", "agent", "h1", dir, sizeof(dir), &ag);
    issue_in("adm", "admin", "h1", dir, sizeof(dir), &adm);
    ck_assert_uint_eq(adm.older.n, 0);
    issue_in("ag", "agent", "h1", dir, sizeof(dir), &ag2);
    ck_assert_uint_eq(ag2.older.n, 1);
    ck_assert_str_eq(ag2.older.v[0].serial, ag.entry.serial);
    ck_assert_str_eq(ag2.older.v[0].role, "agent");
    cert_issued_dispose(&ag);
    cert_issued_dispose(&adm);
    cert_issued_dispose(&ag2);
}
END_TEST

/* A damaged index names its file and line, and nothing is issued or
 * revoked from it. */
START_TEST(damaged_index)
{
    static const char *const bad[] = {
        "garbage\n",
        "0000000000000000000000000000000g agent n 1 valid 0\n",
        "00000000000000000000000000000001 root n 1 valid 0\n",
        "00000000000000000000000000000001 agent n 1 revoked 0\n",
        "00000000000000000000000000000001 agent n 1 valid 0 extra\n",
        "00000000000000000000000000000001 agent n 1 valid 0",
    };
    struct vmckpt_error err;
    struct cert_issued out;
    struct cert_entries l;
    char path[600], good[4096], text[4096];
    size_t i;

    init_ca();
    issue("agent", "node1", &out);
    cert_issued_dispose(&out);
    snprintf(path, sizeof(path), "%s/index", ca_dir);
    read_file(path, good, sizeof(good));
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        FILE *f = fopen(path, "w");

        ck_assert_ptr_nonnull(f);
        fputs(good, f);
        fclose(f);
        append(path, bad[i]);
        ck_assert_int_eq(cert_list(ca_dir, &l, &err), -1);
        ck_assert_msg(strstr(err.text, "/index:3: damaged") != NULL,
                      "case %zu: %s", i, err.text);
        ck_assert_int_eq(
            cert_issue(ca_dir, "agent", "node2", out_dir, 0, &out, &err), -1);
        ck_assert_int_eq(cert_revoke(ca_dir, NULL, "node1", NULL, NULL, &err),
                         -1);
        read_file(path, text, sizeof(text));
        ck_assert_uint_eq(strlen(text), strlen(good) + strlen(bad[i]));
    }
    ck_assert_int_eq(access(out_dir, F_OK), 0);
    snprintf(path, sizeof(path), "%s/node2.crt", out_dir);
    ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

/* A damaged, loose or foreign ca.key is refused with a clear error. */
START_TEST(damaged_ca_key)
{
    struct vmckpt_error err;
    struct cert_issued out;
    char path[600], other[600];
    FILE *f;

    init_ca();
    snprintf(path, sizeof(path), "%s/ca.key", ca_dir);
    chmod(path, 0644);
    ck_assert_int_eq(
        cert_issue(ca_dir, "agent", "node1", out_dir, 0, &out, &err), -1);
    ck_assert_msg(strstr(err.text, "must not be accessible by group") != NULL,
                  "%s", err.text);
    chmod(path, 0600);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n", f);
    fclose(f);
    ck_assert_int_eq(
        cert_issue(ca_dir, "agent", "node1", out_dir, 0, &out, &err), -1);
    ck_assert_msg(strstr(err.text, "ca.key is not a PEM private key") != NULL,
                  "%s", err.text);
    ck_assert_int_eq(cert_revoke(ca_dir, NULL, "x", NULL, NULL, &err), -1);
    ck_assert_msg(strstr(err.text, "not a PEM private key") != NULL, "%s",
                  err.text);
    /* the key of another CA */
    snprintf(other, sizeof(other), "%s/other", top);
    ck_assert_int_eq(cert_ca_init(other, "x", 0, 0, &err), 0);
    snprintf(other, sizeof(other), "%s/other/ca.key", top);
    ck_assert_int_eq(rename(other, path), 0);
    ck_assert_int_eq(
        cert_issue(ca_dir, "agent", "node1", out_dir, 0, &out, &err), -1);
    ck_assert_msg(strstr(err.text, "is not the key of") != NULL, "%s",
                  err.text);
    /* no CA at all */
    ck_assert_int_eq(
        cert_issue(out_dir, "agent", "node1", out_dir, 0, &out, &err), -1);
    ck_assert_msg(strstr(err.text, "make one with 'vmckpt cert init'") != NULL,
                  "%s", err.text);
}
END_TEST

/* A lost crl.pem is signed anew by the next revocation, with a number
 * above any before; a damaged one is refused, saying how to recover. A
 * certificate is read through a symbolic link. */
START_TEST(lost_or_damaged_crl)
{
    struct vmckpt_error err;
    struct cert_issued a, b;
    struct cert_ca_info info;
    char path[600], link[600];
    long number;
    FILE *f;

    init_ca();
    issue("agent", "node1", &a);
    issue("agent", "node2", &b);
    snprintf(path, sizeof(path), "%s/crl.pem", ca_dir);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_msg(cert_ca_info(ca_dir, &info, &err) == 0, "%s", err.text);
    ck_assert_int_eq(info.crl_number, 0);
    ck_assert_msg(cert_revoke(ca_dir, NULL, "node1", NULL, &number, &err) == 0,
                  "%s", err.text);
    ck_assert(number > 1000000000L);
    ck_assert_int_eq(crl_number_of(ca_dir), number);
    ck_assert_int_eq(verify(out_dir, "node1.crt", 1), X509_V_ERR_CERT_REVOKED);
    ck_assert_int_eq(verify(out_dir, "node2.crt", 1), X509_V_OK);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("-----BEGIN X509 CRL-----\nbroken\n", f);
    fclose(f);
    ck_assert_int_eq(cert_revoke(ca_dir, NULL, "node2", NULL, NULL, &err), -1);
    ck_assert_msg(strstr(err.text, "crl.pem is not a PEM CRL") != NULL, "%s",
                  err.text);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(cert_revoke(ca_dir, NULL, "node2", NULL, &number, &err),
                     0);
    ck_assert_int_eq(verify(out_dir, "node1.crt", 1), X509_V_ERR_CERT_REVOKED);
    ck_assert_int_eq(verify(out_dir, "node2.crt", 1), X509_V_ERR_CERT_REVOKED);
    snprintf(link, sizeof(link), "%s/link.crt", top);
    ck_assert_int_eq(symlink(a.crt_path, link), 0);
    ck_assert_int_eq(verify(top, "link.crt", 0), X509_V_OK);
    cert_issued_dispose(&a);
    cert_issued_dispose(&b);
}
END_TEST

/* cert_identity refuses certificates that are not a host's: the CA's
 * (OU=ca) and a name too long for the caller's buffer. */
START_TEST(identity_refuses)
{
    struct vmckpt_error err;
    struct cert_issued out;
    char role[16], name[64];
    X509 *x;

    init_ca();
    x = load(ca_dir, "ca.crt");
    ck_assert_int_eq(
        cert_identity(x, role, sizeof(role), name, sizeof(name), &err), -1);
    ck_assert_int_eq(errno, EACCES);
    ck_assert_msg(strstr(err.text, "role (OU) 'ca'") != NULL, "%s", err.text);
    X509_free(x);
    issue("coordinator", "head", &out);
    x = load(out_dir, "head.crt");
    ck_assert_int_eq(cert_identity(x, role, 5, name, sizeof(name), &err), -1);
    ck_assert_int_eq(cert_identity(x, role, 12, name, 5, &err), 0);
    ck_assert_str_eq(role, "coordinator");
    ck_assert_str_eq(name, "head");
    ck_assert_int_eq(cert_identity(NULL, role, 12, name, 5, &err), -1);
    X509_free(x);
    cert_issued_dispose(&out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cert");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, init_makes_files);
    tcase_add_test(tc, init_refuses_existing);
    tcase_add_test(tc, issue_verifies);
    tcase_add_test(tc, issue_refuses_bad_input);
    tcase_add_test(tc, revoke_seen_by_crl_check);
    tcase_add_test(tc, revoke_by_serial_numbers_increase);
    tcase_add_test(tc, rotation_reports_older);
    tcase_add_test(tc, revoke_name_in_two_roles);
    tcase_add_test(tc, issue_older_same_role_only);
    tcase_add_test(tc, damaged_index);
    tcase_add_test(tc, damaged_ca_key);
    tcase_add_test(tc, lost_or_damaged_crl);
    tcase_add_test(tc, identity_refuses);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
