/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The cluster CA's operations: make the CA, issue a certificate, revoke,
 * list; and what a peer's certificate says it is. The CA directory's
 * files and index are cert_store.c's. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/clock.h"
#include "lib/util/daemon.h"
#include "lib/util/name.h"

#include "cert_int.h"

#define CA_KEY     "ca.key"
#define CA_CRT     "ca.crt"
#define CA_CRL     "crl.pem"
#define CA_INDEX   "index"
#define SKEW_S     300 /* notBefore this far in the past: clocks differ */
#define SERIAL_LEN 16
#define DAY_S      86400
#define ORG        "vmckpt"

static const char *const roles[] = {"coordinator", "agent", "admin", NULL};

/* The CA as loaded from its directory. */
struct ca {
    X509 *crt;
    EVP_PKEY *key; /* NULL unless asked for */
    int64_t not_after;
};

int cert_role_valid(const char *role)
{
    size_t i;

    for (i = 0; role != NULL && roles[i] != NULL; i++) {
        if (strcmp(role, roles[i]) == 0)
            return 1;
    }
    return 0;
}

int cert_name_valid(const char *name)
{
    return name_is_plain(name, CERT_NAME_MAX) && strcmp(name, "ca") != 0;
}

static int64_t now_s(void)
{
    return (int64_t)(clock_wall_ms() / 1000);
}

static int asn1_to_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* 'days' as given (0: the default), checked against the bound. */
static int check_days(unsigned *days, unsigned dflt, struct vmckpt_error *err)
{
    if (*days == 0)
        *days = dflt;
    if (*days > CERT_DAYS_MAX) {
        errno = EINVAL;
        return errprintf(err, "%u days: at most %d", *days, CERT_DAYS_MAX);
    }
    return 0;
}

/* ---- the CA ------------------------------------------------------------ */

static void ca_dispose(struct ca *ca)
{
    X509_free(ca->crt);
    EVP_PKEY_free(ca->key);
    memset(ca, 0, sizeof(*ca));
}

/* The CA's private key: mode 0600 or stricter, Ed25519, that of ca.crt. */
static int ca_load_key(const char *dir, struct ca *ca, struct vmckpt_error *err)
{
    char path[4096];
    struct stat st;

    if (cert_path(path, sizeof(path), dir, CA_KEY, err) < 0)
        return -1;
    if (stat(path, &st) < 0)
        return errprintf_errno(err, "cannot read the CA key %s", path);
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        errno = EPERM;
        return errprintf(err,
                         "the CA key %s has mode %04o: it must not be "
                         "accessible by group or other (chmod 600 %s)",
                         path, (unsigned)(st.st_mode & 07777), path);
    }
    if (cert_load_key(path, &ca->key, err) < 0)
        return -1;
    if (!EVP_PKEY_is_a(ca->key, "ED25519")) {
        errno = EINVAL;
        return errprintf(err, "the CA key %s is not an Ed25519 key", path);
    }
    if (X509_check_private_key(ca->crt, ca->key) != 1) {
        ERR_clear_error();
        errno = EINVAL;
        return errprintf(err, "the CA key %s is not the key of %s/%s", path,
                         dir, CA_CRT);
    }
    return 0;
}

/* ca.crt of 'dir', and with 'need_key' its key. 0, or -1 with 'err'. */
static int ca_load(const char *dir, int need_key, struct ca *ca,
                   struct vmckpt_error *err)
{
    char path[4096];

    memset(ca, 0, sizeof(*ca));
    if (cert_path(path, sizeof(path), dir, CA_CRT, err) < 0)
        return -1;
    if (access(path, F_OK) < 0 && errno == ENOENT)
        return errprintf(err,
                         "no CA in %s: it has no %s (make one with 'vmckpt "
                         "cert init')",
                         dir, CA_CRT);
    if (cert_load_file(path, &ca->crt, err) < 0)
        return -1;
    if (asn1_to_unix(X509_get0_notAfter(ca->crt), &ca->not_after) < 0) {
        errno = EINVAL;
        errprintf(err, "%s: unreadable end of validity", path);
        goto fail;
    }
    if (need_key && ca_load_key(dir, ca, err) < 0)
        goto fail;
    return 0;
fail:
    ca_dispose(ca);
    return -1;
}

/* The number of the CRL in 'dir'. 0, or -1 with 'err'. */
static int crl_number(const char *dir, long *out, struct vmckpt_error *err)
{
    char path[4096];
    X509_CRL *crl;
    ASN1_INTEGER *num;

    if (cert_path(path, sizeof(path), dir, CA_CRL, err) < 0 ||
        cert_load_crl(path, &crl, err) < 0)
        return -1;
    num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    *out = num != NULL ? ASN1_INTEGER_get(num) : -1;
    ASN1_INTEGER_free(num);
    X509_CRL_free(crl);
    if (*out < 1 || *out == LONG_MAX) {
        errno = EINVAL;
        return errprintf(err,
                         "%s has no usable CRL number (damaged? remove it: "
                         "the next revocation signs a new one)",
                         path);
    }
    return 0;
}

/* ---- building certificates and CRLs ------------------------------------ */

static EVP_PKEY *new_key(struct vmckpt_error *err)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

    if (k == NULL)
        cert_ossl_fail(err, "cannot make an Ed25519 key");
    return k;
}

/* O=vmckpt, OU=<ou>, CN=<cn>, or NULL. */
static X509_NAME *make_name(const char *ou, const char *cn)
{
    X509_NAME *n = X509_NAME_new();
    const unsigned char *org = (const unsigned char *)ORG;

    if (n == NULL ||
        !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, org, -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC,
                                    (const unsigned char *)ou, -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                    (const unsigned char *)cn, -1, -1, 0)) {
        X509_NAME_free(n);
        return NULL;
    }
    return n;
}

/* A random positive serial: the bytes and their index form. */
static int new_serial(unsigned char b[SERIAL_LEN],
                      char hex[CERT_SERIAL_HEX + 1])
{
    static const char digits[] = "0123456789abcdef";
    int i, zero = 1;

    while (zero) {
        if (RAND_bytes(b, SERIAL_LEN) != 1)
            return -1;
        b[0] &= 0x7f; /* positive as a DER INTEGER */
        for (i = 0; i < SERIAL_LEN; i++)
            zero &= b[i] == 0;
    }
    for (i = 0; i < SERIAL_LEN; i++) {
        hex[2 * i] = digits[b[i] >> 4];
        hex[2 * i + 1] = digits[b[i] & 15];
    }
    hex[CERT_SERIAL_HEX] = '\0';
    return 0;
}

static ASN1_INTEGER *serial_from_hex(const char *hex)
{
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai = NULL;

    if (BN_hex2bn(&bn, hex) > 0)
        ai = BN_to_ASN1_INTEGER(bn, NULL);
    BN_free(bn);
    return ai;
}

/* Add extension 'nid' = 'value' (OpenSSL's configuration syntax) to 'x',
 * issued by 'issuer'. */
static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return -1;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* A v3 certificate of 'pub' for 'subject' with 'serial', valid from
 * SKEW_S before 'now' to 'days' days after it; issuer, extensions and
 * signature still to come. NULL on failure. */
static X509 *new_cert(EVP_PKEY *pub, X509_NAME *subject, const char *serial,
                      int64_t now, unsigned days)
{
    X509 *x = X509_new();
    ASN1_INTEGER *sn = serial_from_hex(serial);
    time_t t = (time_t)now;

    if (x == NULL || sn == NULL || !X509_set_version(x, X509_VERSION_3) ||
        !X509_set_serialNumber(x, sn) || !X509_set_subject_name(x, subject) ||
        !X509_set_pubkey(x, pub) ||
        X509_time_adj_ex(X509_getm_notBefore(x), 0, -SKEW_S, &t) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, &t) == NULL) {
        X509_free(x);
        x = NULL;
    }
    ASN1_INTEGER_free(sn);
    return x;
}

/* The CA's self-signed certificate. */
static X509 *build_ca_cert(EVP_PKEY *key, const char *cluster, unsigned days,
                           struct vmckpt_error *err)
{
    unsigned char b[SERIAL_LEN];
    char serial[CERT_SERIAL_HEX + 1], cn[CERT_NAME_MAX + 4];
    X509_NAME *name;
    X509 *x = NULL;

    snprintf(cn, sizeof(cn), "%s CA", cluster);
    name = make_name("ca", cn);
    if (name == NULL || new_serial(b, serial) < 0 ||
        (x = new_cert(key, name, serial, now_s(), days)) == NULL ||
        !X509_set_issuer_name(x, name) ||
        add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
        add_ext(x, x, NID_subject_key_identifier, "hash") < 0 ||
        X509_sign(x, key, NULL) <= 0) {
        cert_ossl_fail(err, "cannot make the CA certificate");
        X509_free(x);
        x = NULL;
    }
    X509_NAME_free(name);
    return x;
}

/* A certificate for 'name' in 'role' of 'pub', signed by the CA. */
static X509 *build_leaf(const struct ca *ca, EVP_PKEY *pub, const char *role,
                        const char *name, const char *serial, int64_t now,
                        unsigned days, struct vmckpt_error *err)
{
    char san[CERT_NAME_MAX + 8];
    X509_NAME *subject = make_name(role, name);
    X509 *x = NULL;

    snprintf(san, sizeof(san), "DNS:%s", name);
    if (subject == NULL ||
        (x = new_cert(pub, subject, serial, now, days)) == NULL ||
        !X509_set_issuer_name(x, X509_get_subject_name(ca->crt)) ||
        add_ext(x, ca->crt, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        add_ext(x, ca->crt, NID_key_usage, "critical,digitalSignature") < 0 ||
        add_ext(x, ca->crt, NID_ext_key_usage, "serverAuth,clientAuth") < 0 ||
        add_ext(x, ca->crt, NID_subject_alt_name, san) < 0 ||
        add_ext(x, ca->crt, NID_subject_key_identifier, "hash") < 0 ||
        add_ext(x, ca->crt, NID_authority_key_identifier, "keyid:always") < 0 ||
        X509_sign(x, ca->key, NULL) <= 0) {
        cert_ossl_fail(err, "cannot make the certificate");
        X509_free(x);
        x = NULL;
    }
    X509_NAME_free(subject);
    return x;
}

/* Add the revoked entries of 'l' to 'crl'. */
static int add_revoked(X509_CRL *crl, const struct cert_entries *l)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        X509_REVOKED *r;
        ASN1_INTEGER *sn;
        ASN1_TIME *t;
        int ok;

        if (!l->v[i].revoked)
            continue;
        r = X509_REVOKED_new();
        sn = serial_from_hex(l->v[i].serial);
        t = ASN1_TIME_set(NULL, (time_t)l->v[i].revoked_at);
        ok = r != NULL && sn != NULL && t != NULL &&
             X509_REVOKED_set_serialNumber(r, sn) &&
             X509_REVOKED_set_revocationDate(r, t) &&
             X509_CRL_add0_revoked(crl, r);
        ASN1_INTEGER_free(sn);
        ASN1_TIME_free(t);
        if (!ok) {
            X509_REVOKED_free(r);
            return -1;
        }
    }
    return 0;
}

/* The CRL numbered 'number' of every revoked entry of 'l', signed by the
 * CA: last update now, next update at the CA's end. */
static X509_CRL *build_crl(const struct ca *ca, const struct cert_entries *l,
                           long number, struct vmckpt_error *err)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *now = ASN1_TIME_set(NULL, (time_t)now_s());
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    X509V3_CTX ctx;
    X509_EXTENSION *akid = NULL;
    int ok;

    X509V3_set_ctx(&ctx, ca->crt, NULL, NULL, crl, 0);
    ok = crl != NULL && now != NULL && num != NULL &&
         X509_CRL_set_version(crl, X509_CRL_VERSION_2) &&
         X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->crt)) &&
         X509_CRL_set1_lastUpdate(crl, now) &&
         X509_CRL_set1_nextUpdate(crl, X509_get0_notAfter(ca->crt)) &&
         add_revoked(crl, l) == 0 && ASN1_INTEGER_set(num, number) &&
         X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) &&
         (akid = X509V3_EXT_nconf_nid(NULL, &ctx, NID_authority_key_identifier,
                                      "keyid:always")) != NULL &&
         X509_CRL_add_ext(crl, akid, -1) && X509_CRL_sort(crl) &&
         X509_CRL_sign(crl, ca->key, NULL) > 0;
    if (!ok) {
        cert_ossl_fail(err, "cannot make the CRL");
        X509_CRL_free(crl);
        crl = NULL;
    }
    X509_EXTENSION_free(akid);
    ASN1_INTEGER_free(num);
    ASN1_TIME_free(now);
    return crl;
}

/* ---- cert_ca_init ------------------------------------------------------ */

/* 'dir' exists (its parents made 0755, itself 0700) and is private. */
static int make_ca_dir(const char *dir, struct vmckpt_error *err)
{
    char parent[4096], *slash;
    struct stat st;

    if (snprintf(parent, sizeof(parent), "%s", dir) >= (int)sizeof(parent)) {
        errno = ENAMETOOLONG;
        return errprintf_errno(err, "%s", dir);
    }
    slash = strrchr(parent, '/');
    if (slash != NULL && slash != parent) {
        *slash = '\0';
        if (daemon_mkdirs(parent, 0755, err) < 0)
            return -1;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return errprintf_errno(err, "cannot create directory %s", dir);
    if (stat(dir, &st) < 0)
        return errprintf_errno(err, "%s", dir);
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return errprintf(err, "%s is not a directory", dir);
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        errno = EPERM;
        return errprintf(err,
                         "%s has mode %04o: the CA's directory must not be "
                         "accessible by group or other (chmod 700 %s)",
                         dir, (unsigned)(st.st_mode & 07777), dir);
    }
    return 0;
}

/* A file of a CA in 'dir' that init would replace, or NULL. */
static const char *existing_ca_file(const char *dir)
{
    static const char *const files[] = {CA_KEY, CA_CRT, CA_INDEX, CA_CRL, NULL};
    char path[4096];
    size_t i;

    for (i = 0; files[i] != NULL; i++) {
        if (cert_path(path, sizeof(path), dir, files[i], NULL) == 0 &&
            access(path, F_OK) == 0)
            return files[i];
    }
    return NULL;
}

/* The CA's four files, 'key' and its certificate made. */
static int write_ca(const char *dir, const char *cluster, unsigned days,
                    EVP_PKEY *key, struct vmckpt_error *err)
{
    struct cert_entries none;
    struct ca ca = {NULL, key, 0};
    X509_CRL *crl = NULL;
    char path[4096];
    int rc = -1;

    cert_entries_init(&none);
    ca.crt = build_ca_cert(key, cluster, days, err);
    if (ca.crt == NULL || (crl = build_crl(&ca, &none, 1, err)) == NULL)
        goto out;
    if (cert_path(path, sizeof(path), dir, CA_KEY, err) < 0 ||
        cert_save_key(path, key, err) < 0 ||
        cert_path(path, sizeof(path), dir, CA_CRT, err) < 0 ||
        cert_save_crt(path, ca.crt, err) < 0 ||
        cert_path(path, sizeof(path), dir, CA_CRL, err) < 0 ||
        cert_save_crl(path, crl, err) < 0 ||
        cert_index_write(dir, &none, err) < 0)
        goto out;
    rc = 0;
out:
    X509_CRL_free(crl);
    X509_free(ca.crt);
    return rc;
}

int cert_ca_init(const char *ca_dir, const char *cluster, unsigned days,
                 int force, struct vmckpt_error *err)
{
    EVP_PKEY *key = NULL;
    const char *old;
    int lock = -1, rc = -1;

    if (!name_is_plain(cluster, CERT_NAME_MAX)) {
        errno = EINVAL;
        return errprintf(err,
                         "bad cluster name '%s': 1 to %d letters, digits, "
                         "'.', '_' or '-'",
                         cluster != NULL ? cluster : "", CERT_NAME_MAX);
    }
    if (check_days(&days, CERT_CA_DAYS, err) < 0 ||
        make_ca_dir(ca_dir, err) < 0 ||
        cert_dir_lock(ca_dir, 1, &lock, err) < 0)
        return -1;
    old = existing_ca_file(ca_dir);
    if (old != NULL && !force) {
        errno = EEXIST;
        errprintf(err,
                  "%s already holds a CA (%s); refusing to replace it "
                  "(--force makes a new CA: no certificate of the old one "
                  "verifies any more)",
                  ca_dir, old);
        goto out;
    }
    key = new_key(err);
    if (key == NULL || write_ca(ca_dir, cluster, days, key, err) < 0)
        goto out;
    rc = 0;
out:
    EVP_PKEY_free(key);
    cert_dir_unlock(lock);
    return rc;
}

/* ---- cert_issue -------------------------------------------------------- */

void cert_issued_dispose(struct cert_issued *out)
{
    if (out != NULL)
        cert_entries_dispose(&out->older);
}

/* A certificate of 'days' from now ends with the CA or before. */
static int check_outlast(const struct ca *ca, unsigned days,
                         struct vmckpt_error *err)
{
    int64_t now = now_s();

    if (now + (int64_t)days * DAY_S <= ca->not_after)
        return 0;
    errno = EINVAL;
    return errprintf(err,
                     "%u days would outlast the CA, which ends in %" PRId64
                     " days: ask for fewer (--days) or make a new CA",
                     days, (ca->not_after - now) / DAY_S);
}

/* The output directory (made if missing) and the three paths in 'out'. */
static int issue_paths(const char *out_dir, const char *name,
                       struct cert_issued *out, struct vmckpt_error *err)
{
    char abs[PATH_MAX], file[CERT_NAME_MAX + 8];

    if (daemon_mkdirs(out_dir, 0755, err) < 0)
        return -1;
    if (realpath(out_dir, abs) == NULL)
        return errprintf_errno(err, "%s", out_dir);
    if (access(abs, W_OK) < 0)
        return errprintf_errno(err, "cannot write in %s", abs);
    snprintf(file, sizeof(file), "%s.crt", name);
    if (cert_path(out->crt_path, sizeof(out->crt_path), abs, file, err) < 0)
        return -1;
    snprintf(file, sizeof(file), "%s.key", name);
    if (cert_path(out->key_path, sizeof(out->key_path), abs, file, err) < 0)
        return -1;
    return cert_path(out->ca_path, sizeof(out->ca_path), abs, CA_CRT, err);
}

/* The valid certificates of 'role' named 'name' into 'older' (another
 * role's of the same name is another identity: a head node's coordinator
 * and agent), and a serial no entry has into 'serial' (with its bytes). */
static int issue_scan(const struct cert_entries *idx, const char *role,
                      const char *name, int64_t now, struct cert_entries *older,
                      char serial[CERT_SERIAL_HEX + 1],
                      struct vmckpt_error *err)
{
    unsigned char b[SERIAL_LEN];
    size_t i;
    int taken = 1;

    for (i = 0; i < idx->n; i++) {
        const struct cert_entry *e = &idx->v[i];

        if (strcmp(e->role, role) == 0 && strcmp(e->name, name) == 0 &&
            !e->revoked && e->not_after > now && cert_entries_add(older, e) < 0)
            return errprintf_errno(err, "cert issue");
    }
    while (taken) {
        if (new_serial(b, serial) < 0)
            return cert_ossl_fail(err, "no random bytes for a serial");
        for (taken = 0, i = 0; i < idx->n && !taken; i++)
            taken = strcmp(idx->v[i].serial, serial) == 0;
    }
    return 0;
}

/* The new certificate, with the CA loaded and the index read: the index
 * first (whatever exists can be revoked), then the host's files. */
static int issue_locked(const char *ca_dir, const struct ca *ca,
                        struct cert_entries *idx, unsigned days,
                        struct cert_issued *out, struct vmckpt_error *err)
{
    struct cert_entry *e = &out->entry;
    int64_t now = now_s();
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    int rc = -1;

    e->not_after = now + (int64_t)days * DAY_S;
    if (issue_scan(idx, e->role, e->name, now, &out->older, e->serial, err) < 0)
        return -1;
    key = new_key(err);
    if (key == NULL || (x = build_leaf(ca, key, e->role, e->name, e->serial,
                                       now, days, err)) == NULL)
        goto out;
    if (cert_entries_add(idx, e) < 0) {
        errprintf_errno(err, "cert issue");
        goto out;
    }
    if (cert_index_write(ca_dir, idx, err) < 0 ||
        cert_save_key(out->key_path, key, err) < 0 ||
        cert_save_crt(out->crt_path, x, err) < 0 ||
        cert_save_crt(out->ca_path, ca->crt, err) < 0)
        goto out;
    rc = 0;
out:
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

int cert_issue(const char *ca_dir, const char *role, const char *name,
               const char *out_dir, unsigned days, struct cert_issued *out,
               struct vmckpt_error *err)
{
    struct cert_entries idx;
    struct ca ca;
    int lock = -1, rc = -1;

    memset(out, 0, sizeof(*out));
    cert_entries_init(&idx);
    errno = EINVAL;
    if (!cert_role_valid(role))
        return errprintf(err, "unknown role '%s': coordinator, agent or admin",
                         role != NULL ? role : "");
    if (!cert_name_valid(name))
        return errprintf(err,
                         "bad name '%s': 1 to %d letters, digits, '.', '_' "
                         "or '-', and not 'ca'",
                         name != NULL ? name : "", CERT_NAME_MAX);
    if (check_days(&days, CERT_DAYS, err) < 0)
        return -1;
    snprintf(out->entry.role, sizeof(out->entry.role), "%s", role);
    snprintf(out->entry.name, sizeof(out->entry.name), "%s", name);
    if (cert_dir_lock(ca_dir, 1, &lock, err) < 0)
        return -1;
    if (ca_load(ca_dir, 1, &ca, err) < 0)
        goto unlock;
    if (check_outlast(&ca, days, err) == 0 &&
        cert_index_load(ca_dir, &idx, err) == 0 &&
        issue_paths(out_dir, name, out, err) == 0 &&
        issue_locked(ca_dir, &ca, &idx, days, out, err) == 0)
        rc = 0;
    ca_dispose(&ca);
unlock:
    cert_dir_unlock(lock);
    cert_entries_dispose(&idx);
    if (rc < 0)
        cert_issued_dispose(out);
    return rc;
}

/* ---- cert_revoke, cert_list, cert_ca_info ------------------------------ */

/* The roles in which 'name' has certificates not revoked yet, as
 * "coordinator, agent" into 'buf'; how many. */
static int name_roles(const struct cert_entries *idx, const char *name,
                      char *buf, size_t len)
{
    size_t i, r, used = 0;
    int n = 0;

    buf[0] = '\0';
    for (r = 0; roles[r] != NULL; r++) {
        for (i = 0; i < idx->n; i++) {
            const struct cert_entry *e = &idx->v[i];

            if (!e->revoked && strcmp(e->role, roles[r]) == 0 &&
                strcmp(e->name, name) == 0)
                break;
        }
        if (i == idx->n)
            continue;
        used += (size_t)snprintf(buf + used, len - used, "%s%s",
                                 n > 0 ? ", " : "", roles[r]);
        n++;
    }
    return n;
}

/* What 'what' (of 'role', when not NULL) names in 'idx' was not found:
 * ENOENT, saying what there is instead. 'other' is an entry the name or
 * serial matched in another role, or NULL. */
static int revoke_none(const char *what, const char *role, int by_name,
                       const char *serial, const struct cert_entry *other,
                       const char *ca_dir, struct vmckpt_error *err)
{
    errno = ENOENT;
    if (other != NULL && by_name)
        return errprintf(err,
                         "no %s certificate named '%s' in %s/%s, only "
                         "another role's (see 'vmckpt cert list')",
                         role, what, ca_dir, CA_INDEX);
    if (other != NULL)
        return errprintf(err,
                         "serial %s is the certificate of %s %s, not of "
                         "role %s",
                         what, other->role, other->name, role);
    return errprintf(err,
                     "no %s%scertificate named '%s'%s in %s/%s (see "
                     "'vmckpt cert list')",
                     role != NULL ? role : "", role != NULL ? " " : "", what,
                     serial[0] ? ", nor with that serial," : "", ca_dir,
                     CA_INDEX);
}

/* Mark what 'what' names in 'idx' revoked at 'now', copies into
 * 'revoked': by name, the certificates of 'role' (NULL: of the one role
 * the name's unrevoked certificates have; more than one is refused), or
 * the serial, when no certificate has that name (checked against 'role'
 * when not NULL). */
static int revoke_mark(struct cert_entries *idx, const char *role,
                       const char *what, const char *ca_dir, int64_t now,
                       struct cert_entries *revoked, struct vmckpt_error *err)
{
    char serial[CERT_SERIAL_HEX + 1] = "", found_roles[64];
    const struct cert_entry *other = NULL;
    size_t i, found = 0;
    int by_name = 0;

    for (i = 0; i < idx->n; i++)
        by_name |= strcmp(idx->v[i].name, what) == 0;
    if (!by_name && cert_serial_parse(what, serial) < 0)
        serial[0] = '\0';
    if (by_name && role == NULL &&
        name_roles(idx, what, found_roles, sizeof(found_roles)) > 1) {
        errno = EINVAL;
        return errprintf(err,
                         "'%s' has valid certificates in more than one role "
                         "(%s): give --role to say whose to revoke",
                         what, found_roles);
    }
    for (i = 0; i < idx->n; i++) {
        struct cert_entry *e = &idx->v[i];

        if (by_name ? strcmp(e->name, what) != 0
                    : strcmp(e->serial, serial) != 0)
            continue;
        if (role != NULL && strcmp(e->role, role) != 0) {
            other = e;
            continue;
        }
        found++;
        if (e->revoked)
            continue;
        e->revoked = 1;
        e->revoked_at = now;
        if (cert_entries_add(revoked, e) < 0)
            return errprintf_errno(err, "cert revoke");
    }
    if (found == 0)
        return revoke_none(what, role, by_name, serial, other, ca_dir, err);
    if (revoked->n == 0) {
        errno = EALREADY;
        if (!by_name)
            return errprintf(err, "serial '%s' was revoked already", what);
        return errprintf(err,
                         "the %s%scertificate%s named '%s' %s revoked "
                         "already",
                         role != NULL ? role : "", role != NULL ? " " : "",
                         found > 1 ? "s" : "", what,
                         found > 1 ? "were all" : "was");
    }
    return 0;
}

/* With the CA loaded: mark, sign the new CRL, then rewrite the index (a
 * failure in between leaves the CRL ahead, never behind). */
static int revoke_locked(const char *ca_dir, const struct ca *ca,
                         const char *role, const char *what,
                         struct cert_entries *revoked, long *number,
                         struct vmckpt_error *err)
{
    struct cert_entries idx;
    X509_CRL *crl = NULL;
    char path[4096];
    int rc = -1;

    if (cert_index_load(ca_dir, &idx, err) < 0)
        return -1;
    if (revoke_mark(&idx, role, what, ca_dir, now_s(), revoked, err) < 0)
        goto out;
    if (crl_number(ca_dir, number, err) < 0) {
        if (errno != ENOENT)
            goto out;
        /* crl.pem was lost: the clock's seconds are above any count of
         * revocations so far, and the next ones count on from there */
        *number = (long)now_s();
    }
    ++*number;
    crl = build_crl(ca, &idx, *number, err);
    if (crl == NULL || cert_path(path, sizeof(path), ca_dir, CA_CRL, err) < 0 ||
        cert_save_crl(path, crl, err) < 0 ||
        cert_index_write(ca_dir, &idx, err) < 0)
        goto out;
    rc = 0;
out:
    X509_CRL_free(crl);
    cert_entries_dispose(&idx);
    return rc;
}

int cert_revoke(const char *ca_dir, const char *role,
                const char *name_or_serial, struct cert_entries *revoked,
                long *crl_number, struct vmckpt_error *err)
{
    struct cert_entries mine;
    struct ca ca;
    long number = 0;
    int lock = -1, rc = -1;

    cert_entries_init(&mine);
    if (name_or_serial == NULL || name_or_serial[0] == '\0') {
        errno = EINVAL;
        return errprintf(err, "name a certificate or a serial to revoke");
    }
    if (role != NULL && !cert_role_valid(role)) {
        errno = EINVAL;
        return errprintf(err, "unknown role '%s': coordinator, agent or admin",
                         role);
    }
    if (cert_dir_lock(ca_dir, 1, &lock, err) < 0)
        return -1;
    if (ca_load(ca_dir, 1, &ca, err) == 0) {
        rc = revoke_locked(ca_dir, &ca, role, name_or_serial, &mine, &number,
                           err);
        ca_dispose(&ca);
    }
    cert_dir_unlock(lock);
    if (rc == 0 && crl_number != NULL)
        *crl_number = number;
    if (rc == 0 && revoked != NULL)
        *revoked = mine;
    else
        cert_entries_dispose(&mine);
    return rc;
}

int cert_list(const char *ca_dir, struct cert_entries *out,
              struct vmckpt_error *err)
{
    int lock, rc;

    cert_entries_init(out);
    if (cert_dir_lock(ca_dir, 0, &lock, err) < 0)
        return -1;
    rc = cert_index_load(ca_dir, out, err);
    cert_dir_unlock(lock);
    return rc;
}

int cert_ca_info(const char *ca_dir, struct cert_ca_info *info,
                 struct vmckpt_error *err)
{
    struct ca ca;
    BIO *bio;
    char *text;
    long len;
    int lock, rc = -1;

    memset(info, 0, sizeof(*info));
    if (cert_dir_lock(ca_dir, 0, &lock, err) < 0)
        return -1;
    if (ca_load(ca_dir, 0, &ca, err) < 0)
        goto unlock;
    info->not_after = ca.not_after;
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL ||
        X509_NAME_print_ex(bio, X509_get_subject_name(ca.crt), 0,
                           XN_FLAG_ONELINE & ~XN_FLAG_SPC_EQ) < 0) {
        cert_ossl_fail(err, "cannot print the CA's subject");
    } else {
        len = BIO_get_mem_data(bio, &text);
        snprintf(info->subject, sizeof(info->subject), "%.*s",
                 (int)(len > 0 ? len : 0), text);
        rc = crl_number(ca_dir, &info->crl_number, err);
        if (rc < 0 && errno == ENOENT) {
            info->crl_number = 0;
            rc = 0;
        }
    }
    BIO_free(bio);
    ca_dispose(&ca);
unlock:
    cert_dir_unlock(lock);
    return rc;
}

/* ---- cert_identity ----------------------------------------------------- */

/* The one entry 'nid' of 'n' as text into 'buf'. 0, or -1 with 'why'. */
static int subject_field(const X509_NAME *n, int nid, char *buf, size_t len,
                         const char **why)
{
    int i = X509_NAME_get_index_by_NID(n, nid, -1);
    const ASN1_STRING *s;
    const unsigned char *d;
    int l;

    if (i < 0) {
        *why = "missing";
        return -1;
    }
    if (X509_NAME_get_index_by_NID(n, nid, i) >= 0) {
        *why = "given twice";
        return -1;
    }
    s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
    d = ASN1_STRING_get0_data(s);
    l = ASN1_STRING_length(s);
    if (d == NULL || l <= 0 || memchr(d, '\0', (size_t)l) != NULL) {
        *why = "empty or not text";
        return -1;
    }
    if ((size_t)l >= len) {
        *why = "too long";
        return -1;
    }
    memcpy(buf, d, (size_t)l);
    buf[l] = '\0';
    return 0;
}

int cert_identity(X509 *x, char *role, size_t role_len, char *name,
                  size_t name_len, struct vmckpt_error *err)
{
    const X509_NAME *n = x != NULL ? X509_get_subject_name(x) : NULL;
    char org[16], r[CERT_ROLE_MAX + 1], cn[CERT_NAME_MAX + 1];
    const char *why = NULL;

    errno = EACCES;
    if (n == NULL)
        return errprintf(err, "no certificate");
    if (subject_field(n, NID_organizationName, org, sizeof(org), &why) < 0 ||
        strcmp(org, ORG) != 0)
        return errprintf(err, "not a vmckpt certificate: its O is %s",
                         why != NULL ? why : "not vmckpt");
    if (subject_field(n, NID_organizationalUnitName, r, sizeof(r), &why) < 0)
        return errprintf(err, "the certificate's OU (its role) is %s", why);
    if (!cert_role_valid(r))
        return errprintf(err,
                         "the certificate's role (OU) '%s' is not "
                         "coordinator, agent or admin",
                         r);
    if (subject_field(n, NID_commonName, cn, sizeof(cn), &why) < 0)
        return errprintf(err, "the certificate's CN (its name) is %s", why);
    if (!cert_name_valid(cn))
        return errprintf(err, "the certificate's name (CN) '%s' is not valid",
                         cn);
    if (strlen(r) >= role_len || strlen(cn) >= name_len) {
        errno = ERANGE;
        return errprintf(err, "no room for the certificate's role and name");
    }
    memcpy(role, r, strlen(r) + 1);
    memcpy(name, cn, strlen(cn) + 1);
    return 0;
}
