/* SPDX-License-Identifier: GPL-2.0-or-later */
/* TLS 1.3 under the wire: contexts, per-connection layer, identities
 * (tls.h). */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lib/util/clock.h"
#include "tls.h"
#include "tls_int.h"

#define EXPORT_LABEL "EXPORTER-vmckpt-1 handshake"
#define PSK_LABEL    "vmckpt-1 rank psk"

/* The process's contexts. The verify store (CA + revocation list) is per
 * connection so that a new list applies to new connections at once. */
static struct {
    int on;
    SSL_CTX *server, *client;
    pthread_once_t psk_once;
    SSL_CTX *psk_server, *psk_client;
    pthread_mutex_t mu;
    X509_STORE *store; /* current; its own reference */
    char ca[4096], crl[4096];
    struct stat crl_sb; /* of the list loaded */
    uint8_t *crl_pem;   /* tls_crl_get()'s copy of the file */
    size_t crl_len;
    uint64_t crl_version;
    enum tls_role self_role;
    char self_name[128];
    int ktls, bulk;
} g = {.psk_once = PTHREAD_ONCE_INIT, .mu = PTHREAD_MUTEX_INITIALIZER};

static const char *const role_names[] = {"none", "coordinator", "agent",
                                         "admin", "job"};

const char *tls_role_name(enum tls_role role)
{
    return (unsigned)role < 5 ? role_names[role] : "?";
}

enum tls_role tls_role_parse(const char *s)
{
    int i;

    for (i = TLS_ROLE_COORDINATOR; i <= TLS_ROLE_ADMIN; i++) {
        if (s != NULL && strcmp(s, role_names[i]) == 0)
            return (enum tls_role)i;
    }
    return TLS_ROLE_NONE;
}

/* The text of OpenSSL's last error (and clear the queue). */
const char *ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();

    if (e == 0)
        snprintf(buf, len, "unknown TLS error");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

static int ssl_fail(struct vmckpt_error *err, const char *what, ...)
    __attribute__((format(printf, 2, 3)));
static int ssl_fail(struct vmckpt_error *err, const char *what, ...)
{
    char ctx[512], reason[256];
    va_list ap;

    va_start(ap, what);
    vsnprintf(ctx, sizeof(ctx), what, ap);
    va_end(ap);
    errno = EPROTO;
    return errprintf(err, "%s: %s", ctx, ssl_reason(reason, sizeof(reason)));
}

/* ---- contexts ---- */

static SSL_CTX *new_ctx(int server, const char *suites,
                        struct vmckpt_error *err)
{
    SSL_CTX *ctx =
        SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

    if (ctx == NULL) {
        ssl_fail(err, "TLS context");
        return NULL;
    }
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
        (suites != NULL && !SSL_CTX_set_ciphersuites(ctx, suites))) {
        ssl_fail(err, "TLS 1.3 ciphersuites '%s'", suites ? suites : "");
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* no resumption: every connection proves its credential again */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (server)
        (void)SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (g.ktls)
        SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
    return ctx;
}

/* The CA and the revocation list as they are on disk now. */
static X509_STORE *load_store(struct vmckpt_error *err)
{
    X509_STORE *st = X509_STORE_new();

    if (st == NULL) {
        ssl_fail(err, "certificate store");
        return NULL;
    }
    if (!X509_STORE_load_file(st, g.ca)) {
        ssl_fail(err, "the cluster CA %s", g.ca);
        goto fail;
    }
    if (g.crl[0] != '\0') {
        X509_LOOKUP *lk = X509_STORE_add_lookup(st, X509_LOOKUP_file());

        if (lk == NULL ||
            X509_load_crl_file(lk, g.crl, X509_FILETYPE_PEM) <= 0) {
            ssl_fail(err, "the revocation list %s", g.crl);
            goto fail;
        }
        X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
    }
    return st;
fail:
    X509_STORE_free(st);
    return NULL;
}

/* Whether the revocation list's file is another than the one loaded: a
 * new file renamed over it, or one written in place (a copy that kept the
 * time stamp still changes its inode or its change time). */
static int crl_changed(const struct stat *sb)
{
    const struct stat *o = &g.crl_sb;

    return sb->st_ino != o->st_ino || sb->st_dev != o->st_dev ||
           sb->st_size != o->st_size ||
           sb->st_mtim.tv_sec != o->st_mtim.tv_sec ||
           sb->st_mtim.tv_nsec != o->st_mtim.tv_nsec ||
           sb->st_ctim.tv_sec != o->st_ctim.tv_sec ||
           sb->st_ctim.tv_nsec != o->st_ctim.tv_nsec;
}

/* The verify store for a new connection: reloaded when the revocation
 * list's file changed. A list that cannot be read refuses connections
 * (failing open would let a revoked host back in). */
static X509_STORE *current_store(struct vmckpt_error *err)
{
    X509_STORE *st = NULL;
    struct stat sb;

    pthread_mutex_lock(&g.mu);
    if (g.crl[0] != '\0') {
        if (stat(g.crl, &sb) < 0) {
            errprintf_errno(err, "the revocation list %s", g.crl);
            goto out;
        }
        if (sb.st_size > (off_t)TLS_CRL_MAX) {
            errno = EFBIG;
            errprintf(err, "the revocation list %s is larger than %u MiB",
                      g.crl, TLS_CRL_MAX >> 20);
            goto out;
        }
        if (crl_changed(&sb) || g.store == NULL) {
            X509_STORE *n = load_store(err);

            if (n == NULL)
                goto out;
            X509_STORE_free(g.store);
            g.store = n;
            g.crl_sb = sb;
        }
    }
    if (g.store != NULL && X509_STORE_up_ref(g.store))
        st = g.store;
    else
        errprintf(err, "no certificate store");
out:
    pthread_mutex_unlock(&g.mu);
    return st;
}

static int cert_ctx(SSL_CTX *ctx, const struct tls_files *f,
                    struct vmckpt_error *err)
{
    if (SSL_CTX_use_certificate_chain_file(ctx, f->cert) != 1)
        return ssl_fail(err, "this host's certificate %s", f->cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, f->key, SSL_FILETYPE_PEM) != 1)
        return ssl_fail(err, "this host's key %s", f->key);
    if (SSL_CTX_check_private_key(ctx) != 1)
        return ssl_fail(err, "%s does not belong to %s", f->key, f->cert);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    return 0;
}

/* The one entry of 'nid' in 'subj' as text into buf[len]: -1 if there is
 * none, more than one, or it does not fit or holds a NUL. */
static int one_entry(X509_NAME *subj, int nid, char *buf, size_t len)
{
    int at = X509_NAME_get_index_by_NID(subj, nid, -1), n;
    const ASN1_STRING *v;

    if (at < 0 || X509_NAME_get_index_by_NID(subj, nid, at) >= 0)
        return -1;
    v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, at));
    n = v ? ASN1_STRING_length(v) : -1;
    if (n <= 0 || (size_t)n >= len ||
        memchr(ASN1_STRING_get0_data(v), '\0', (size_t)n) != NULL)
        return -1;
    memcpy(buf, ASN1_STRING_get0_data(v), (size_t)n);
    buf[n] = '\0';
    return 0;
}

/* Role (OU) and name (CN) of a vmckpt credential: O = vmckpt, exactly one
 * OU among the roles and one CN. */
static int identity_of(X509 *x, enum tls_role *role, char *name, size_t len)
{
    X509_NAME *subj = X509_get_subject_name(x);
    char o[16], ou[16];

    if (subj == NULL || one_entry(subj, NID_organizationName, o, sizeof(o)) ||
        strcmp(o, "vmckpt") != 0 ||
        one_entry(subj, NID_organizationalUnitName, ou, sizeof(ou)) ||
        one_entry(subj, NID_commonName, name, len))
        return -1;
    *role = tls_role_parse(ou);
    return *role == TLS_ROLE_NONE ? -1 : 0;
}

/* A private key's file: a regular file nobody but its owner may read. */
static int private_file(const char *path, struct vmckpt_error *err)
{
    struct stat sb;

    if (stat(path, &sb) < 0)
        return errprintf_errno(err, "this host's key %s", path);
    if (!S_ISREG(sb.st_mode)) {
        errno = EINVAL;
        return errprintf(err, "this host's key %s is not a regular file", path);
    }
    if (sb.st_mode & 077) {
        errno = EACCES;
        return errprintf(err,
                         "this host's key %s may be read by others (mode "
                         "%03o): chmod 600 it",
                         path, (unsigned)(sb.st_mode & 0777));
    }
    return 0;
}

int tls_setup(const struct tls_files *f, struct vmckpt_error *err)
{
    X509 *self;

    if (f->ca == NULL || f->cert == NULL || f->key == NULL) {
        errno = EINVAL;
        return errprintf(err, "TLS needs the CA's certificate, this host's "
                              "certificate and its key ([tls] ca, cert, key)");
    }
    if (private_file(f->key, err) < 0)
        return -1;
    tls_sock_init();
    g.ktls = f->ktls;
    g.bulk = f->bulk;
    snprintf(g.ca, sizeof(g.ca), "%s", f->ca);
    snprintf(g.crl, sizeof(g.crl), "%s", f->crl ? f->crl : "");
    g.store = load_store(err);
    if (g.store == NULL)
        return -1;
    if (g.crl[0] != '\0')
        (void)stat(g.crl, &g.crl_sb);
    g.server = new_ctx(1, f->ciphersuites, err);
    g.client = g.server ? new_ctx(0, f->ciphersuites, err) : NULL;
    if (g.client == NULL || cert_ctx(g.server, f, err) < 0 ||
        cert_ctx(g.client, f, err) < 0)
        goto fail;
    self = SSL_CTX_get0_certificate(g.server);
    if (self == NULL ||
        identity_of(self, &g.self_role, g.self_name, sizeof(g.self_name)) < 0) {
        errno = EINVAL;
        errprintf(err,
                  "%s: not a vmckpt credential (its subject needs OU = "
                  "coordinator, agent or admin and a CN)",
                  f->cert);
        goto fail;
    }
    g.on = 1;
    return 0;
fail:
    tls_cleanup();
    return -1;
}

int tls_enabled(void)
{
    return g.on;
}

int tls_self(enum tls_role *role, char *name, size_t len)
{
    if (!g.on)
        return -1;
    *role = g.self_role;
    snprintf(name, len, "%s", g.self_name);
    return 0;
}

void tls_cleanup(void)
{
    SSL_CTX_free(g.server);
    SSL_CTX_free(g.client);
    X509_STORE_free(g.store);
    free(g.crl_pem);
    g.crl_pem = NULL;
    g.crl_len = 0;
    g.crl_version = 0;
    g.server = g.client = NULL;
    g.store = NULL;
    g.on = 0;
}

/* ---- jobs' tokens as PSKs ---- */

/* A TLS 1.3 session holding the PSK derived from 'token'. */
static SSL_SESSION *psk_session(SSL *ssl, const struct auth_key *token)
{
    static const unsigned char aes128gcm[2] = {0x13, 0x01};
    unsigned char psk[32];
    unsigned int n = sizeof(psk);
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, aes128gcm);
    SSL_SESSION *s;
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    if (md == NULL || cipher == NULL ||
        !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
        !EVP_DigestUpdate(md, PSK_LABEL, sizeof(PSK_LABEL)) ||
        !EVP_DigestUpdate(md, token->bytes, token->len) ||
        !EVP_DigestFinal_ex(md, psk, &n)) {
        EVP_MD_CTX_free(md);
        return NULL;
    }
    EVP_MD_CTX_free(md);
    s = SSL_SESSION_new();
    if (s == NULL || !SSL_SESSION_set1_master_key(s, psk, n) ||
        !SSL_SESSION_set_cipher(s, cipher) ||
        !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
        SSL_SESSION_free(s);
        s = NULL;
    }
    OPENSSL_cleanse(psk, sizeof(psk));
    return s;
}

static int psk_find(SSL *ssl, const unsigned char *id, size_t len,
                    SSL_SESSION **sess)
{
    struct tls_conn *t = SSL_get_app_data(ssl);
    const struct auth_key *key;
    size_t i;

    *sess = NULL;
    if (len == 0 || len >= sizeof(t->job))
        return 1; /* no such job: the handshake fails */
    for (i = 0; i < len; i++) {
        if (id[i] <= ' ' || id[i] > '~')
            return 1;
    }
    memcpy(t->job, id, len);
    t->job[len] = '\0';
    key = t->key_for(t->key_arg, VMCKPT__ROLE__ROLE_RANK, t->job);
    if (key == NULL || key->bytes == NULL) {
        snprintf(t->why, sizeof(t->why), "no running job '%s'", t->job);
        return 1;
    }
    *sess = psk_session(ssl, key);
    return *sess != NULL;
}

static int psk_use(SSL *ssl, const EVP_MD *md, const unsigned char **id,
                   size_t *idlen, SSL_SESSION **sess)
{
    struct tls_conn *t = SSL_get_app_data(ssl);

    *sess = NULL;
    if (md != NULL && md != EVP_sha256())
        return 1;
    *sess = psk_session(ssl, t->token);
    *id = (const unsigned char *)t->job;
    *idlen = strlen(t->job);
    return *sess != NULL;
}

static void make_psk_ctx(void)
{
    struct vmckpt_error err;

    tls_sock_init();
    g.psk_server = new_ctx(1, "TLS_AES_128_GCM_SHA256", &err);
    g.psk_client = new_ctx(0, "TLS_AES_128_GCM_SHA256", &err);
    if (g.psk_server != NULL)
        SSL_CTX_set_psk_find_session_callback(g.psk_server, psk_find);
    if (g.psk_client != NULL) {
        SSL_CTX_set_psk_use_session_callback(g.psk_client, psk_use);
        /* only the token proves the server: a certificate instead of the
         * PSK fails verification against this empty store */
        SSL_CTX_set_verify(g.psk_client, SSL_VERIFY_PEER, NULL);
    }
}

static struct tls_conn *attach(struct wire_conn *c, SSL_CTX *ctx, int server,
                               struct vmckpt_error *err)
{
    struct tls_conn *t = calloc(1, sizeof(*t));
    BIO *b = NULL;

    if (t == NULL) {
        errprintf_errno(err, "TLS");
        return NULL;
    }
    t->ssl = ctx ? SSL_new(ctx) : NULL;
    if (t->ssl != NULL && !g.ktls)
        b = tls_sock_bio(c->fd);
    if (t->ssl == NULL || (!g.ktls && b == NULL) ||
        (g.ktls && !SSL_set_fd(t->ssl, c->fd))) {
        ssl_fail(err, "TLS connection");
        BIO_free(b);
        SSL_free(t->ssl);
        free(t);
        return NULL;
    }
    if (b != NULL)
        SSL_set_bio(t->ssl, b, b);
    if (g.bulk && !g.ktls) { /* before the handshake allocates the buffer;
                              * not with kernel TLS, which reads itself */
        SSL_set_read_ahead(t->ssl, 1);
        SSL_set_default_read_buffer_len(t->ssl, TLS_BULK_READ);
    }
    SSL_set_app_data(t->ssl, t);
    if (server)
        SSL_set_accept_state(t->ssl);
    else
        SSL_set_connect_state(t->ssl);
    c->io = &tls_io;
    c->io_arg = t;
    return t;
}

/* Certificates: the CA and revocation list of the moment. */
static int attach_store(struct wire_conn *c, struct tls_conn *t,
                        struct vmckpt_error *err)
{
    X509_STORE *st = current_store(err);
    int ok;

    if (st == NULL) {
        wire_conn_dispose(c); /* frees the layer, keeps the fd */
        return -1;
    }
    ok = SSL_set1_verify_cert_store(t->ssl, st);
    X509_STORE_free(st);
    if (!ok) {
        wire_conn_dispose(c);
        return ssl_fail(err, "TLS verify store");
    }
    return 0;
}

int tls_server_attach(struct wire_conn *c, struct vmckpt_error *err)
{
    struct tls_conn *t;

    if (!g.on) {
        errno = EINVAL;
        return errprintf(err, "TLS is not set up");
    }
    t = attach(c, g.server, 1, err);
    return t == NULL ? -1 : attach_store(c, t, err);
}

int tls_server_attach_psk(struct wire_conn *c,
                          const struct auth_key *(*key_for)(void *arg,
                                                            Vmckpt__Role role,
                                                            const char *name),
                          void *arg, struct vmckpt_error *err)
{
    struct tls_conn *t;

    pthread_once(&g.psk_once, make_psk_ctx);
    t = attach(c, g.psk_server, 1, err);
    if (t == NULL)
        return -1;
    t->key_for = key_for;
    t->key_arg = arg;
    return 0;
}

/* Run the handshake to its end within 'timeout_ms'. */
static int handshake_wait(struct wire_conn *c, struct tls_conn *t,
                          int timeout_ms, struct vmckpt_error *err)
{
    uint64_t deadline = clock_mono_ms() + (uint64_t)timeout_ms;

    for (;;) {
        struct pollfd pfd = {.fd = c->fd};
        uint64_t now;
        int rc, e;

        ERR_clear_error();
        rc = SSL_do_handshake(t->ssl);
        if (rc == 1) {
            /* the last flight may still wait in the socket BIO */
            BIO *b = SSL_get_wbio(t->ssl);

            if (BIO_flush(b) > 0)
                return 0;
            if (!BIO_should_retry(b))
                return errprintf_errno(err, "TLS handshake");
            e = SSL_ERROR_WANT_WRITE;
        } else {
            e = SSL_get_error(t->ssl, rc);
        }
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            tls_note_failure(t, e);
            errno = EPROTO;
            return errprintf(err, "%s", t->why);
        }
        pfd.events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        now = clock_mono_ms();
        if (timeout_ms >= 0 && now >= deadline) {
            errno = ETIMEDOUT;
            return errprintf(err, "TLS: no handshake within %d ms", timeout_ms);
        }
        rc = poll(&pfd, 1, timeout_ms < 0 ? -1 : (int)(deadline - now));
        if (rc < 0 && errno != EINTR)
            return errprintf_errno(err, "poll");
    }
}

int tls_client_attach(struct wire_conn *c, enum tls_role want,
                      const char *want_name, int timeout_ms,
                      struct vmckpt_error *err)
{
    struct tls_conn *t;
    enum tls_role role;
    char name[128];

    if (!g.on) {
        errno = EINVAL;
        return errprintf(err, "TLS is not set up");
    }
    t = attach(c, g.client, 0, err);
    if (t == NULL || attach_store(c, t, err) < 0)
        return -1;
    if (handshake_wait(c, t, timeout_ms, err) < 0)
        goto fail;
    if (tls_peer(c, &role, name, sizeof(name)) < 0) {
        errno = EACCES;
        errprintf(err, "TLS: the server's certificate names no vmckpt role");
        goto fail;
    }
    if (role != want || (want_name != NULL && strcmp(name, want_name) != 0)) {
        errno = EACCES;
        errprintf(err,
                  "TLS: the server proved the credential of %s '%s', "
                  "not of %s%s%s",
                  tls_role_name(role), name, tls_role_name(want),
                  want_name ? " " : "", want_name ? want_name : "");
        goto fail;
    }
    return 0;
fail:
    wire_conn_dispose(c);
    return -1;
}

int tls_client_attach_psk(struct wire_conn *c, const char *job,
                          const struct auth_key *token, int timeout_ms,
                          struct vmckpt_error *err)
{
    struct tls_conn *t;
    int rc, saved;

    pthread_once(&g.psk_once, make_psk_ctx);
    t = attach(c, g.psk_client, 0, err);
    if (t == NULL)
        return -1;
    t->token = token;
    snprintf(t->job, sizeof(t->job), "%s", job);
    rc = handshake_wait(c, t, timeout_ms, err);
    if (rc == 0 && SSL_session_reused(t->ssl))
        return 0;
    if (rc == 0) {
        errno = EACCES;
        errprintf(err, "TLS: the server did not use the job's token");
    }
    saved = errno;
    wire_conn_dispose(c);
    errno = saved;
    if (saved == ETIMEDOUT)
        return -1;
    return errprefix(err,
                     "authentication failed: the server does not take the "
                     "token of job '%s' (wrong token, or another job's?)",
                     job);
}

static struct tls_conn *layer(const struct wire_conn *c)
{
    return c->io == &tls_io ? c->io_arg : NULL;
}

int tls_on(const struct wire_conn *c)
{
    return layer(c) != NULL;
}

int tls_peer(const struct wire_conn *c, enum tls_role *role, char *name,
             size_t len)
{
    struct tls_conn *t = layer(c);
    X509 *x;
    int rc;

    if (t == NULL || !SSL_is_init_finished(t->ssl))
        return -1;
    if (t->key_for != NULL || t->token != NULL) {
        if (!SSL_session_reused(t->ssl))
            return -1; /* not the token's PSK */
        *role = TLS_ROLE_JOB;
        snprintf(name, len, "%s", t->job);
        return 0;
    }
    if (SSL_get_verify_result(t->ssl) != X509_V_OK)
        return -1;
    x = SSL_get1_peer_certificate(t->ssl);
    if (x == NULL)
        return -1;
    rc = identity_of(x, role, name, len);
    X509_free(x);
    return rc;
}

int tls_binding(const struct wire_conn *c, uint8_t out[TLS_BINDING_LEN])
{
    struct tls_conn *t = layer(c);

    if (t == NULL ||
        SSL_export_keying_material(t->ssl, out, TLS_BINDING_LEN, EXPORT_LABEL,
                                   strlen(EXPORT_LABEL), NULL, 0, 0) != 1) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

const char *tls_cipher(const struct wire_conn *c)
{
    struct tls_conn *t = layer(c);

    return t ? SSL_get_cipher_name(t->ssl) : "none";
}

int tls_kernel(const struct wire_conn *c, int *send, int *recv)
{
    struct tls_conn *t = layer(c);

    *send = *recv = 0;
    if (t == NULL)
        return -1;
    *send = BIO_get_ktls_send(SSL_get_wbio(t->ssl)) > 0;
    *recv = BIO_get_ktls_recv(SSL_get_rbio(t->ssl)) > 0;
    return 0;
}

/* ---- the revocation list from hand to hand ---- */

int tls_crl_get(uint64_t known, uint8_t **pem, size_t *len, uint64_t *version)
{
    struct stat sb;
    uint64_t v;
    int rc = -1;

    *pem = NULL;
    *len = 0;
    *version = 0;
    pthread_mutex_lock(&g.mu);
    if (g.crl[0] == '\0' || stat(g.crl, &sb) < 0 || sb.st_size > TLS_CRL_MAX) {
        rc = g.crl[0] == '\0' ? 0 : -1;
        goto out;
    }
    /* any of these changes with a new file (crl_changed()) */
    v = ((uint64_t)sb.st_mtim.tv_sec * 1000000000u +
         (uint64_t)sb.st_mtim.tv_nsec) ^
        ((uint64_t)sb.st_ctim.tv_sec * 1000000000u +
         (uint64_t)sb.st_ctim.tv_nsec) *
            3 ^
        (uint64_t)sb.st_ino * 0x9e3779b97f4a7c15u ^ (uint64_t)sb.st_size << 40;
    if (v == 0)
        v = 1; /* 0 is "never sent" */
    if (v != g.crl_version) {
        FILE *f = fopen(g.crl, "re");
        uint8_t *b = malloc((size_t)sb.st_size + 1);
        size_t n = f && b ? fread(b, 1, (size_t)sb.st_size, f) : 0;

        if (f != NULL)
            fclose(f);
        if (b == NULL || n != (size_t)sb.st_size) {
            free(b);
            goto out;
        }
        free(g.crl_pem);
        g.crl_pem = b;
        g.crl_len = n;
        g.crl_version = v;
    }
    *version = g.crl_version;
    rc = 0;
    if (known == g.crl_version)
        goto out; /* what the caller has */
    *pem = malloc(g.crl_len ? g.crl_len : 1);
    if (*pem == NULL) {
        rc = -1;
        goto out;
    }
    memcpy(*pem, g.crl_pem, g.crl_len);
    *len = g.crl_len;
    *version = g.crl_version;
    rc = 0;
out:
    pthread_mutex_unlock(&g.mu);
    return rc;
}

int tls_peer_revoked(const struct wire_conn *c)
{
    struct tls_conn *t = layer(c);
    struct vmckpt_error err;
    X509_STORE_CTX *ctx;
    X509_STORE *st;
    X509 *x;
    int revoked = 0;

    if (t == NULL || t->key_for != NULL || t->token != NULL)
        return 0;
    x = SSL_get1_peer_certificate(t->ssl);
    st = x ? current_store(&err) : NULL;
    ctx = st ? X509_STORE_CTX_new() : NULL;
    if (ctx != NULL &&
        X509_STORE_CTX_init(ctx, st, x, SSL_get_peer_cert_chain(t->ssl)) &&
        X509_verify_cert(ctx) != 1)
        revoked = X509_STORE_CTX_get_error(ctx) == X509_V_ERR_CERT_REVOKED;
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    X509_free(x);
    ERR_clear_error();
    return revoked;
}

/* 0 if 'crl' is signed by one of the CAs in g.ca. */
static int crl_signed_by_ca(X509_CRL *crl)
{
    STACK_OF(X509_INFO) *infos = NULL;
    BIO *in = BIO_new_file(g.ca, "r");
    int i, rc = -1;

    if (in != NULL)
        infos = PEM_X509_INFO_read_bio(in, NULL, NULL, NULL);
    for (i = 0; infos != NULL && i < sk_X509_INFO_num(infos) && rc < 0; i++) {
        X509 *ca = sk_X509_INFO_value(infos, i)->x509;

        if (ca != NULL &&
            X509_NAME_cmp(X509_CRL_get_issuer(crl),
                          X509_get_subject_name(ca)) == 0 &&
            X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1)
            rc = 0;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    BIO_free(in);
    ERR_clear_error();
    return rc;
}

int tls_crl_install(const uint8_t *pem, size_t len, const char *path,
                    struct vmckpt_error *err)
{
    BIO *in = BIO_new_mem_buf(pem, (int)len);
    X509_CRL *crl = in ? PEM_read_bio_X509_CRL(in, NULL, NULL, NULL) : NULL;
    char tmp[4200];
    FILE *f;
    int ok;

    BIO_free(in);
    if (crl == NULL || crl_signed_by_ca(crl) < 0) {
        X509_CRL_free(crl);
        ERR_clear_error();
        errno = EINVAL;
        return errprintf(err, "a revocation list not signed by the cluster "
                              "CA: ignored");
    }
    X509_CRL_free(crl);
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    f = fopen(tmp, "we");
    ok = f != NULL && fwrite(pem, 1, len, f) == len && fflush(f) == 0 &&
         fsync(fileno(f)) == 0;
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) < 0) {
        (void)unlink(tmp);
        return errprintf_errno(err, "revocation list %s", path);
    }
    pthread_mutex_lock(&g.mu);
    snprintf(g.crl, sizeof(g.crl), "%s", path);
    memset(&g.crl_sb, 0, sizeof(g.crl_sb)); /* reread it */
    pthread_mutex_unlock(&g.mu);
    return 0;
}
