/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Cluster key files and the mutual challenge/response handshake.
 *
 *   client                                   server
 *   Hello{role, name, Nc}  ----------------->
 *                          <-----------------  Challenge{Ns, Ms, sname}
 *   check Ms; AuthProof{Mc} ----------------->  check Mc
 *                          <-----------------  AuthOk
 *
 *   T  = role | len|name | Nc | Ns | len|sname      (transcript)
 *   Ms = HMAC-SHA256(K, "vmckpt-1 server" | T)
 *   Mc = HMAC-SHA256(K, "vmckpt-1 client" | T)
 *
 * Both sides contribute a fresh nonce, so no old message proves anything
 * in a new handshake; the labels keep one side's proof from serving as the
 * other's. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "tls.h"

#define LABEL_SERVER "vmckpt-1 server"
#define LABEL_CLIENT "vmckpt-1 client"
#define NAME_MAX_LEN 127

const char *auth_role_name(Vmckpt__Role role)
{
    switch (role) {
    case VMCKPT__ROLE__ROLE_AGENT:
        return "agent";
    case VMCKPT__ROLE__ROLE_ADMIN:
        return "admin";
    case VMCKPT__ROLE__ROLE_PEER:
        return "peer";
    case VMCKPT__ROLE__ROLE_RANK:
        return "rank";
    default:
        return "none";
    }
}

int auth_random(void *buf, size_t len)
{
    if (RAND_bytes(buf, (int)len) != 1) {
        errno = EIO;
        return -1;
    }
    return 0;
}

int auth_key_set(struct auth_key *key, const void *bytes, size_t len)
{
    key->bytes = malloc(len ? len : 1);
    if (key->bytes == NULL)
        return -1;
    memcpy(key->bytes, bytes, len);
    key->len = len;
    return 0;
}

void auth_key_dispose(struct auth_key *key)
{
    if (key->bytes != NULL) {
        OPENSSL_cleanse(key->bytes, key->len);
        free(key->bytes);
    }
    key->bytes = NULL;
    key->len = 0;
}

int auth_key_load(struct auth_key *key, const char *path,
                  struct vmckpt_error *err)
{
    struct stat st;
    uint8_t buf[AUTH_KEY_MAX + 1];
    ssize_t n;
    size_t len = 0;
    int fd, rc = -1;

    key->bytes = NULL;
    key->len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errprintf_errno(err, "cannot open key file %s", path);
    if (fstat(fd, &st) < 0) {
        errprintf_errno(err, "key file %s", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        errprintf(err, "key file %s is not a regular file", path);
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        errno = EPERM;
        errprintf(err,
                  "key file %s has mode %04o: it must not be accessible by "
                  "group or other (chmod 600 %s)",
                  path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    while (len < sizeof(buf)) {
        n = read(fd, buf + len, sizeof(buf) - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            errprintf_errno(err, "read key file %s", path);
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len < AUTH_KEY_MIN || len > AUTH_KEY_MAX) {
        errno = EINVAL;
        errprintf(err,
                  "key file %s holds %s%zu bytes; a key has %d to %d bytes "
                  "(make one with 'vmckpt keygen')",
                  path, len > AUTH_KEY_MAX ? "more than " : "",
                  len > AUTH_KEY_MAX ? (size_t)AUTH_KEY_MAX : len, AUTH_KEY_MIN,
                  AUTH_KEY_MAX);
        goto out;
    }
    if (auth_key_set(key, buf, len) < 0) {
        errprintf_errno(err, "key file %s", path);
        goto out;
    }
    rc = 0;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    close(fd);
    return rc;
}

int auth_key_generate(const char *path, int force, struct vmckpt_error *err)
{
    uint8_t buf[AUTH_KEY_GEN_LEN];
    char tmp[4096];
    size_t off = 0;
    int fd;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >=
        (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return errprintf_errno(err, "%s", path);
    }
    if (!force && access(path, F_OK) == 0) {
        errno = EEXIST;
        return errprintf(err,
                         "%s exists; refusing to replace a cluster key "
                         "(use --force to replace it)",
                         path);
    }
    if (auth_random(buf, sizeof(buf)) < 0)
        return errprintf(err, "no random bytes available for the key");
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errprintf_errno(err, "cannot create %s", tmp);
    while (off < sizeof(buf)) {
        ssize_t n = write(fd, buf + off, sizeof(buf) - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail;
        off += (size_t)n;
    }
    if (fsync(fd) < 0)
        goto fail;
    close(fd);
    OPENSSL_cleanse(buf, sizeof(buf));
    if (rename(tmp, path) < 0) {
        errprintf_errno(err, "cannot rename %s to %s", tmp, path);
        unlink(tmp);
        return -1;
    }
    return 0;
fail:
    errprintf_errno(err, "cannot write %s", tmp);
    close(fd);
    unlink(tmp);
    OPENSSL_cleanse(buf, sizeof(buf));
    return -1;
}

/* HMAC over label | transcript. */
static void compute_mac(const struct auth_key *key, const char *label,
                        Vmckpt__Role role, const char *cname, const uint8_t *nc,
                        const uint8_t *ns, const char *sname,
                        uint8_t mac[AUTH_MAC_LEN])
{
    uint8_t
        t[32 + 1 + 2 + NAME_MAX_LEN + 2 * AUTH_NONCE_LEN + 2 + NAME_MAX_LEN];
    size_t off = 0, cl = strlen(cname), sl = strlen(sname);
    unsigned maclen = AUTH_MAC_LEN;

    if (cl > NAME_MAX_LEN)
        cl = NAME_MAX_LEN;
    if (sl > NAME_MAX_LEN)
        sl = NAME_MAX_LEN;
    memcpy(t + off, label, strlen(label));
    off += strlen(label);
    t[off++] = (uint8_t)role;
    t[off++] = (uint8_t)(cl >> 8);
    t[off++] = (uint8_t)cl;
    memcpy(t + off, cname, cl);
    off += cl;
    memcpy(t + off, nc, AUTH_NONCE_LEN);
    off += AUTH_NONCE_LEN;
    memcpy(t + off, ns, AUTH_NONCE_LEN);
    off += AUTH_NONCE_LEN;
    t[off++] = (uint8_t)(sl >> 8);
    t[off++] = (uint8_t)sl;
    memcpy(t + off, sname, sl);
    off += sl;
    HMAC(EVP_sha256(), key->bytes, (int)key->len, t, off, mac, &maclen);
}

static int valid_name(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > NAME_MAX_LEN)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch < 0x21 || ch > 0x7e)
            return 0;
    }
    return 1;
}

void auth_server_init(struct auth_server *as, const struct auth_key *key,
                      const char *server_name)
{
    memset(as, 0, sizeof(*as));
    as->state = AUTH_WAIT_HELLO;
    as->key = key;
    as->server_name = server_name;
}

static int refuse(struct auth_server *as, struct wire_conn *c, uint64_t req,
                  Vmckpt__ErrorCode code, const char *text,
                  struct vmckpt_error *err)
{
    as->state = AUTH_FAILED;
    wire_conn_send_error(c, req, code, text);
    errno = EACCES;
    return errprintf(err, "%s", text);
}

/* What a credential may speak as: an agent's as itself (to the
 * coordinator, and to stores as a peer), an administrator's as an
 * administrator, a job's token as that job's ranks. */
static int credential_allows(enum tls_role cred, const char *cred_name,
                             Vmckpt__Role role, const char *name)
{
    switch (cred) {
    case TLS_ROLE_AGENT:
        return (role == VMCKPT__ROLE__ROLE_AGENT ||
                role == VMCKPT__ROLE__ROLE_PEER) &&
               strcmp(name, cred_name) == 0;
    case TLS_ROLE_ADMIN:
        return role == VMCKPT__ROLE__ROLE_ADMIN;
    case TLS_ROLE_JOB:
        return role == VMCKPT__ROLE__ROLE_RANK && strcmp(name, cred_name) == 0;
    default:
        return 0;
    }
}

/* The key of the handshake over TLS: the session's exported bytes, under
 * the cluster key or the job's token when the side has one (both sides
 * have the same: none with credentials, the token on the ranks'
 * endpoint). 0 or -1. */
static int session_key(const struct wire_conn *c, const struct auth_key *k,
                       uint8_t out[TLS_BINDING_LEN])
{
    uint8_t exp[TLS_BINDING_LEN];
    unsigned int n = TLS_BINDING_LEN;
    int rc = 0;

    if (tls_binding(c, exp) < 0)
        return -1;
    if (k == NULL || k->bytes == NULL || k->len == 0)
        memcpy(out, exp, sizeof(exp));
    else if (HMAC(EVP_sha256(), k->bytes, (int)k->len, exp, sizeof(exp), out,
                  &n) == NULL)
        rc = -1;
    OPENSSL_cleanse(exp, sizeof(exp));
    return rc;
}

/* Over TLS: check the Hello against the peer's credential and take the
 * session's exported key. 0, or -1 with 'why'. */
static int bound_key(struct auth_server *as, const struct wire_conn *c,
                     char *why, size_t len)
{
    enum tls_role cred;

    if (tls_peer(c, &cred, as->credential_name, sizeof(as->credential_name)) <
        0) {
        snprintf(why, len, "authentication failed: no proven credential");
        return -1;
    }
    as->credential = cred;
    if (!credential_allows(cred, as->credential_name, as->role,
                           as->peer_name)) {
        snprintf(why, len,
                 "not allowed: the credential of %s '%s' cannot speak as "
                 "%s '%s'",
                 tls_role_name(cred), as->credential_name,
                 auth_role_name(as->role), as->peer_name);
        return -1;
    }
    if (session_key(c,
                    as->key_for
                        ? as->key_for(as->key_arg, as->role, as->peer_name)
                        : as->key,
                    as->bound) < 0) {
        snprintf(why, len, "authentication failed: no TLS keying material");
        return -1;
    }
    as->bound_key.bytes = as->bound;
    as->bound_key.len = sizeof(as->bound);
    as->key = &as->bound_key;
    return 0;
}

int auth_server_step(struct auth_server *as, struct wire_conn *c,
                     const Vmckpt__Envelope *env, struct vmckpt_error *err)
{
    if (as->state == AUTH_WAIT_HELLO) {
        const Vmckpt__Hello *h = env->hello;
        Vmckpt__Challenge ch = VMCKPT__CHALLENGE__INIT;
        uint8_t mac[AUTH_MAC_LEN];

        if (env->type != VMCKPT__MSG_TYPE__MSG_HELLO)
            return refuse(as, c, env->request_id, VMCKPT__ERROR_CODE__ERR_AUTH,
                          "authentication required: first message must be "
                          "hello",
                          err);
        if (h->nonce.len != AUTH_NONCE_LEN || !valid_name(h->name))
            return refuse(as, c, env->request_id,
                          VMCKPT__ERROR_CODE__ERR_INVALID,
                          "hello: bad nonce length or name", err);
        if (h->role < VMCKPT__ROLE__ROLE_AGENT ||
            h->role > VMCKPT__ROLE__ROLE_RANK)
            return refuse(as, c, env->request_id,
                          VMCKPT__ERROR_CODE__ERR_INVALID,
                          "hello: unknown role", err);
        as->role = h->role;
        snprintf(as->peer_name, sizeof(as->peer_name), "%s", h->name);
        if (tls_on(c)) {
            char why[300];

            if (bound_key(as, c, why, sizeof(why)) < 0)
                return refuse(as, c, env->request_id,
                              VMCKPT__ERROR_CODE__ERR_AUTH, why, err);
        } else if (as->key_for != NULL &&
                   (as->key = as->key_for(as->key_arg, as->role,
                                          as->peer_name)) == NULL)
            return refuse(as, c, env->request_id, VMCKPT__ERROR_CODE__ERR_AUTH,
                          "authentication failed: no such job, or this role "
                          "is not served on this endpoint",
                          err);
        memcpy(as->nonce_c, h->nonce.data, AUTH_NONCE_LEN);
        if (auth_random(as->nonce_s, AUTH_NONCE_LEN) < 0)
            return refuse(as, c, env->request_id,
                          VMCKPT__ERROR_CODE__ERR_INTERNAL,
                          "server has no random bytes", err);
        compute_mac(as->key, LABEL_SERVER, as->role, as->peer_name, as->nonce_c,
                    as->nonce_s, as->server_name, mac);
        ch.nonce.data = as->nonce_s;
        ch.nonce.len = AUTH_NONCE_LEN;
        ch.mac.data = mac;
        ch.mac.len = AUTH_MAC_LEN;
        ch.server_name = (char *)as->server_name;
        if (wire_conn_send(c, VMCKPT__MSG_TYPE__MSG_CHALLENGE, env->request_id,
                           &ch, err) < 0) {
            as->state = AUTH_FAILED;
            return -1;
        }
        as->state = AUTH_WAIT_PROOF;
        return 0;
    }
    if (as->state == AUTH_WAIT_PROOF) {
        Vmckpt__AuthOk ok = VMCKPT__AUTH_OK__INIT;
        uint8_t want[AUTH_MAC_LEN];

        if (env->type != VMCKPT__MSG_TYPE__MSG_AUTH_PROOF)
            return refuse(as, c, env->request_id, VMCKPT__ERROR_CODE__ERR_AUTH,
                          "authentication: expected auth-proof", err);
        compute_mac(as->key, LABEL_CLIENT, as->role, as->peer_name, as->nonce_c,
                    as->nonce_s, as->server_name, want);
        if (env->auth_proof->mac.len != AUTH_MAC_LEN ||
            CRYPTO_memcmp(want, env->auth_proof->mac.data, AUTH_MAC_LEN) != 0)
            return refuse(as, c, env->request_id, VMCKPT__ERROR_CODE__ERR_AUTH,
                          "authentication failed: proof does not match "
                          "(wrong cluster key, or a replayed handshake)",
                          err);
        ok.server_name = (char *)as->server_name;
        if (wire_conn_send(c, VMCKPT__MSG_TYPE__MSG_AUTH_OK, env->request_id,
                           &ok, err) < 0) {
            as->state = AUTH_FAILED;
            return -1;
        }
        as->state = AUTH_DONE;
        if (as->credential == TLS_ROLE_ADMIN &&
            strcmp(as->peer_name, as->credential_name) != 0) {
            /* from now on the logs name the credential, then what the
             * console called itself */
            char hello[sizeof(as->peer_name)];

            snprintf(hello, sizeof(hello), "%s", as->peer_name);
            snprintf(as->peer_name, sizeof(as->peer_name), "%.63s:%.63s",
                     as->credential_name, hello);
        }
        return 1;
    }
    errno = EINVAL;
    return errprintf(err, "handshake already finished");
}

/* The reply must be 'type'; an Error reply becomes the error text. */
static int expect(Vmckpt__Envelope *env, int type, struct vmckpt_error *err)
{
    if (env->type == VMCKPT__MSG_TYPE__MSG_ERROR) {
        errno = EACCES;
        return errprintf(err, "refused by server: %s", env->error->text);
    }
    if ((int)env->type != type) {
        errno = EPROTO;
        return errprintf(err, "handshake: expected %s, got %s",
                         wire_type_name(type), wire_type_name(env->type));
    }
    return 0;
}

int auth_client(struct wire_conn *c, const struct auth_key *key,
                Vmckpt__Role role, const char *name, int timeout_ms,
                char *server_name, size_t server_name_len,
                struct vmckpt_error *err)
{
    Vmckpt__Hello h = VMCKPT__HELLO__INIT;
    Vmckpt__AuthProof p = VMCKPT__AUTH_PROOF__INIT;
    Vmckpt__Envelope *env = NULL;
    uint8_t nc[AUTH_NONCE_LEN], ns[AUTH_NONCE_LEN], mac[AUTH_MAC_LEN];
    char sname[NAME_MAX_LEN + 1];
    uint8_t bound[TLS_BINDING_LEN];
    struct auth_key bkey = {.bytes = bound, .len = sizeof(bound)};
    int rc = -1;

    if (tls_on(c)) {
        if (session_key(c, key, bound) < 0) {
            errno = EPROTO;
            return errprintf(err, "no TLS keying material");
        }
        key = &bkey;
    }
    if (auth_random(nc, sizeof(nc)) < 0)
        return errprintf(err, "no random bytes for the handshake");
    h.role = role;
    h.name = (char *)name;
    h.nonce.data = nc;
    h.nonce.len = sizeof(nc);
    h.software = PACKAGE_STRING;
    if (wire_conn_send(c, VMCKPT__MSG_TYPE__MSG_HELLO, 0, &h, err) < 0 ||
        wire_conn_flush_wait(c, timeout_ms, err) < 0 ||
        wire_conn_recv_wait(c, &env, timeout_ms, err) < 0 ||
        expect(env, VMCKPT__MSG_TYPE__MSG_CHALLENGE, err) < 0)
        goto out;
    if (env->challenge->nonce.len != AUTH_NONCE_LEN ||
        env->challenge->mac.len != AUTH_MAC_LEN) {
        errno = EPROTO;
        errprintf(err, "handshake: malformed challenge");
        goto out;
    }
    memcpy(ns, env->challenge->nonce.data, AUTH_NONCE_LEN);
    snprintf(sname, sizeof(sname), "%s", env->challenge->server_name);
    compute_mac(key, LABEL_SERVER, role, name, nc, ns, sname, mac);
    if (CRYPTO_memcmp(mac, env->challenge->mac.data, AUTH_MAC_LEN) != 0) {
        errno = EACCES;
        errprintf(err,
                  role == VMCKPT__ROLE__ROLE_RANK
                      ? "authentication failed: server '%s' does not know "
                        "this job's token (wrong token, or another job's?)"
                      : "server '%s' failed to prove the cluster key "
                        "(wrong key on one side?)",
                  sname);
        goto out;
    }
    wire_free(env);
    env = NULL;
    compute_mac(key, LABEL_CLIENT, role, name, nc, ns, sname, mac);
    p.mac.data = mac;
    p.mac.len = sizeof(mac);
    if (wire_conn_send(c, VMCKPT__MSG_TYPE__MSG_AUTH_PROOF, 0, &p, err) < 0 ||
        wire_conn_flush_wait(c, timeout_ms, err) < 0 ||
        wire_conn_recv_wait(c, &env, timeout_ms, err) < 0 ||
        expect(env, VMCKPT__MSG_TYPE__MSG_AUTH_OK, err) < 0)
        goto out;
    if (server_name != NULL)
        snprintf(server_name, server_name_len, "%s", sname);
    rc = 0;
out:
    wire_free(env);
    return rc;
}
