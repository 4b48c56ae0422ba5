/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The cluster's certificate authority: a directory holding an Ed25519 CA,
 * the certificates it issued to coordinators, agents and admins, and its
 * revocation list; and the reading of a peer certificate's identity for
 * the TLS code. Uses OpenSSL libcrypto. */
#ifndef VMCKPT_CERT_H
#define VMCKPT_CERT_H

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util/error.h"

/* The CA directory (cert_ca_init):
 *
 *   ca.key    the CA's Ed25519 private key, PEM PKCS#8, mode 0600
 *   ca.crt    its self-signed certificate, O=vmckpt, OU=ca,
 *             CN=<cluster> CA
 *   crl.pem   the revocation list, signed by the CA, next update at the
 *             CA's own end of validity, so it never goes stale before it
 *   index     the certificates issued, one line each, in the order issued,
 *             fields separated by one space:
 *
 *     SERIAL ROLE NAME NOT_AFTER STATUS REVOKED_AT
 *
 *     SERIAL      the 128-bit serial, 32 lower-case hex digits
 *     ROLE        coordinator, agent or admin
 *     NAME        as cert_name_valid() allows
 *     NOT_AFTER   end of validity, seconds since 1970-01-01 UTC
 *     STATUS      valid or revoked (an expired certificate stays valid
 *                 here; its NOT_AFTER tells)
 *     REVOKED_AT  seconds since 1970-01-01 UTC; 0 while valid
 *
 *   A line starting with '#' is a comment (init writes one naming the
 *   fields); blank lines are skipped. Any other line that is not exactly
 *   this is an error for the whole file: nothing is issued or revoked from
 *   a damaged index.
 *
 * The directory is 0700. Each command holds a lock on it (flock) while it
 * reads and writes, and every file is replaced by rename, so a reader
 * never sees half a file. */

#define CERT_NAME_MAX       63 /* longest certificate name */
#define CERT_ROLE_MAX       11 /* longest role name ("coordinator") */
#define CERT_SERIAL_HEX     32 /* hex digits of a serial */
#define CERT_CA_DAYS        3650
#define CERT_DAYS           365
#define CERT_DAYS_MAX       36500
#define CERT_INDEX_MAX_SIZE (64 << 20) /* a bigger index is refused */

/* One line of the index. */
struct cert_entry {
    char serial[CERT_SERIAL_HEX + 1];
    char role[CERT_ROLE_MAX + 1];
    char name[CERT_NAME_MAX + 1];
    int64_t not_after;
    int revoked;
    int64_t revoked_at; /* 0 while valid */
};

/* A list of index entries, owned by the caller once filled; starts zeroed
 * (or from cert_entries_init()), freed by cert_entries_dispose(). */
struct cert_entries {
    struct cert_entry *v;
    size_t n;
    size_t cap; /* entries v has room for */
};

void cert_entries_init(struct cert_entries *l);
/* Idempotent; keeps errno. */
void cert_entries_dispose(struct cert_entries *l);

/* Role: "coordinator", "agent" or "admin". Name: 1 to CERT_NAME_MAX of
 * letters, digits, '.', '_' and '-', and not "ca" (its files would be
 * those of the CA). 1 when valid, 0 otherwise. */
int cert_role_valid(const char *role);
int cert_name_valid(const char *name);

/* Create the CA in 'ca_dir' (made with its parents if missing, then mode
 * 0700): ca.key, ca.crt for 'cluster' (a name as cert_name_valid()
 * allows, "ca" included) valid 'days' days (0: CERT_CA_DAYS; at most
 * CERT_DAYS_MAX), an empty index and an empty crl.pem numbered 1. Refuses
 * (EEXIST) a directory that already holds any of them unless 'force',
 * which replaces them all: every certificate of the old CA then fails to
 * verify. 0, or -1 with 'err'. */
int cert_ca_init(const char *ca_dir, const char *cluster, unsigned days,
                 int force, struct vmckpt_error *err);

/* What cert_issue() did: the new certificate's index entry, the files it
 * wrote, and the certificates of the same role and name that were valid
 * (not revoked, not expired) before it, which stay so. Dispose with
 * cert_issued_dispose() (idempotent). */
struct cert_issued {
    struct cert_entry entry;
    char crt_path[4096];
    char key_path[4096];
    char ca_path[4096];
    struct cert_entries older;
};

void cert_issued_dispose(struct cert_issued *out);

/* Issue a certificate for 'name' in 'role', valid 'days' days (0:
 * CERT_DAYS; it may not end after the CA) with a new Ed25519 key: subject
 * O=vmckpt, OU=<role>, CN=<name>, SAN DNS:<name>, CA:FALSE, key usage
 * digitalSignature, extended key usage serverAuth and clientAuth, a random
 * positive 128-bit serial. Writes <out_dir>/<name>.crt, <out_dir>/<name>.key
 * (0600) and <out_dir>/ca.crt (the CA's certificate), each replaced
 * atomically; 'out_dir' is made if missing, and the paths in 'out' are
 * absolute. The entry is added to the index before the files are written,
 * so whatever was handed out can be revoked. A role and name that already
 * have valid certificates get one more (rotation): they are listed in
 * out->older (the same name in another role is another identity, say a
 * head node's coordinator and agent, and is not listed). A bad role or
 * name is refused (EINVAL) before anything is written. 'out' may not be
 * NULL. 0, or -1 with 'err'. */
int cert_issue(const char *ca_dir, const char *role, const char *name,
               const char *out_dir, unsigned days, struct cert_issued *out,
               struct vmckpt_error *err);

/* Revoke the valid (not revoked) certificates named 'name_or_serial' in
 * 'role' or, when no certificate has that name, the one whose serial it
 * is (hex, 1 to 32 digits, an optional 0x and ':' between digits
 * allowed), which must then be of 'role'. 'role' may be NULL: a name's
 * valid certificates are then revoked if they are all of one role, and
 * refused (EINVAL, the message naming the roles) if they span more than
 * one, as a head node's coordinator and agent do; a serial is then
 * revoked whatever its role. Marks them revoked in the index and rewrites
 * crl.pem with every revoked serial and its date, signed by the CA: last
 * update now, next update at the CA's end of validity, a CRL number one
 * above the last. The entries revoked now go to 'revoked' (may be NULL);
 * '*crl_number' (may be NULL) gets the new number. A missing crl.pem is
 * signed anew, numbered from the clock (above any count so far); a
 * damaged one is an error (remove it and revoke again). EINVAL for an
 * unknown role; ENOENT for an unknown name or serial, or one of another
 * role only; EALREADY when all it names are revoked already; none of
 * these refusals writes anything. 0, or -1 with 'err'. */
int cert_revoke(const char *ca_dir, const char *role,
                const char *name_or_serial, struct cert_entries *revoked,
                long *crl_number, struct vmckpt_error *err);

/* Every entry of the index, in the order issued, into 'out'. 0, or -1
 * with 'err'. */
int cert_list(const char *ca_dir, struct cert_entries *out,
              struct vmckpt_error *err);

/* What a CA is: its certificate's subject ("O=vmckpt, OU=ca, CN=x CA")
 * and end of validity, and its CRL's number (0: crl.pem is missing). */
struct cert_ca_info {
    char subject[256];
    int64_t not_after;
    long crl_number;
};

/* Read 'info' from ca.crt and crl.pem of 'ca_dir'. 0, or -1 with 'err'. */
int cert_ca_info(const char *ca_dir, struct cert_ca_info *info,
                 struct vmckpt_error *err);

/* The identity a vmckpt certificate carries: its subject's OU (the role)
 * and CN (the name), each present once, with O=vmckpt. Refused (-1,
 * EACCES, 'err' says why) when the role is not one of the three or the
 * name is not valid (cert_name_valid()), or they do not fit 'role_len' /
 * 'name_len' bytes with their NUL. Checks nothing else: the chain, dates
 * and revocation are the verifier's. */
int cert_identity(X509 *x, char *role, size_t role_len, char *name,
                  size_t name_len, struct vmckpt_error *err);

/* Read one PEM certificate (at most 1 MiB), or CRL (64 MiB), from 'path'
 * (symbolic links followed) into *out,
 * which the caller frees (X509_free(), X509_CRL_free()). 0, or -1 with
 * 'err' naming the file. */
int cert_load_file(const char *path, X509 **out, struct vmckpt_error *err);
int cert_load_crl(const char *path, X509_CRL **out, struct vmckpt_error *err);

#endif
