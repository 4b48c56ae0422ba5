/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The CA directory on disk: its lock, files read with a bound and replaced
 * atomically, keys, certificates and CRLs in PEM, and the index of issued
 * certificates (format in cert.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cert_int.h"

#define INDEX_FILE "index"
#define INDEX_HEADER                                                           \
    "# vmckpt CA index (lib/cert/cert.h): SERIAL ROLE NAME NOT_AFTER "         \
    "STATUS REVOKED_AT\n"
#define INDEX_LINE_MAX 255
#define LOCK_WAIT_MS   10000

int cert_path(char *buf, size_t len, const char *dir, const char *file,
              struct vmckpt_error *err)
{
    if (snprintf(buf, len, "%s/%s", dir, file) >= (int)len) {
        errno = ENAMETOOLONG;
        return errprintf_errno(err, "%s/%s", dir, file);
    }
    return 0;
}

int cert_dir_lock(const char *dir, int exclusive, int *fd,
                  struct vmckpt_error *err)
{
    struct timespec nap = {0, 50 * 1000 * 1000};
    int waited_ms = 0;

    *fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*fd < 0) {
        if (errno == ENOENT)
            return errprintf(err,
                             "no CA in %s: the directory does not exist "
                             "(make one with 'vmckpt cert init')",
                             dir);
        return errprintf_errno(err, "cannot open the CA directory %s", dir);
    }
    while (flock(*fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK || waited_ms >= LOCK_WAIT_MS) {
            if (errno == EWOULDBLOCK)
                errprintf(err,
                          "the CA in %s is busy: another 'vmckpt cert' "
                          "held its lock for %d s",
                          dir, LOCK_WAIT_MS / 1000);
            else
                errprintf_errno(err, "cannot lock the CA directory %s", dir);
            close(*fd);
            *fd = -1;
            return -1;
        }
        nanosleep(&nap, NULL);
        waited_ms += 50;
    }
    return 0;
}

void cert_dir_unlock(int fd)
{
    int saved = errno;

    if (fd >= 0)
        close(fd); /* drops the flock */
    errno = saved;
}

int cert_file_read(const char *path, size_t max, char **buf, size_t *len,
                   struct vmckpt_error *err)
{
    struct stat st;
    char *b = NULL;
    size_t off = 0;
    int fd;

    *buf = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errprintf_errno(err, "cannot open %s", path);
    if (fstat(fd, &st) < 0) {
        errprintf_errno(err, "%s", path);
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        errno = EINVAL;
        errprintf(err, "%s is not a regular file of at most %zu bytes", path,
                  max);
        goto fail;
    }
    b = malloc((size_t)st.st_size + 1);
    if (b == NULL) {
        errprintf_errno(err, "%s", path);
        goto fail;
    }
    /* read one byte past the size seen, to notice a file that grew */
    while (off <= (size_t)st.st_size) {
        ssize_t n = read(fd, b + off, (size_t)st.st_size + 1 - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            errprintf_errno(err, "cannot read %s", path);
            goto fail;
        }
        if (n == 0)
            break;
        off += (size_t)n;
    }
    if (off > (size_t)st.st_size) {
        errno = EAGAIN;
        errprintf(err, "%s changed while it was read", path);
        goto fail;
    }
    close(fd);
    b[off] = '\0';
    *buf = b;
    *len = off;
    return 0;
fail:
    free(b);
    close(fd);
    return -1;
}

static int write_all(int fd, const char *buf, size_t len)
{
    size_t off = 0;

    while (off < len) {
        ssize_t n = write(fd, buf + off, len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        off += (size_t)n;
    }
    return 0;
}

/* After a rename: make the directory entry durable too. */
static void sync_dir_of(const char *path)
{
    char dir[4096];
    char *slash;
    int fd;

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int cert_file_write(const char *path, const void *buf, size_t len,
                    unsigned mode, struct vmckpt_error *err)
{
    char tmp[4096];
    int fd;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >=
        (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return errprintf_errno(err, "%s", path);
    }
    unlink(tmp); /* left by a crash of a process with this pid */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
              (mode_t)mode);
    if (fd < 0)
        return errprintf_errno(err, "cannot create %s", tmp);
    /* the umask may have taken bits away; the mode is the contract */
    if (fchmod(fd, (mode_t)mode) < 0 || write_all(fd, buf, len) < 0 ||
        fsync(fd) < 0) {
        errprintf_errno(err, "cannot write %s", tmp);
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) < 0) {
        errprintf_errno(err, "cannot write %s", tmp);
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) < 0) {
        errprintf_errno(err, "cannot rename %s to %s", tmp, path);
        unlink(tmp);
        return -1;
    }
    sync_dir_of(path);
    return 0;
}

void cert_entries_init(struct cert_entries *l)
{
    l->v = NULL;
    l->n = 0;
    l->cap = 0;
}

void cert_entries_dispose(struct cert_entries *l)
{
    int saved = errno;

    if (l == NULL)
        return;
    free(l->v);
    cert_entries_init(l);
    errno = saved;
}

int cert_entries_add(struct cert_entries *l, const struct cert_entry *e)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct cert_entry *v = realloc(l->v, cap * sizeof(*v));

        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *e;
    return 0;
}

static int is_lower_hex(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return 1;
}

int cert_serial_parse(const char *in, char out[CERT_SERIAL_HEX + 1])
{
    char digits[CERT_SERIAL_HEX];
    size_t n = 0, i;

    if (in[0] == '0' && (in[1] == 'x' || in[1] == 'X'))
        in += 2;
    for (; *in != '\0'; in++) {
        char c = *in;

        if (c == ':' && n > 0 && in[1] != '\0' && in[1] != ':')
            continue;
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!is_lower_hex(&c, 1) || n == sizeof(digits))
            return -1;
        digits[n++] = c;
    }
    if (n == 0)
        return -1;
    for (i = 0; i < CERT_SERIAL_HEX - n; i++)
        out[i] = '0';
    memcpy(out + i, digits, n);
    out[CERT_SERIAL_HEX] = '\0';
    return 0;
}

/* A decimal count of seconds of at most 18 digits. */
static int parse_time(const char *s, int64_t *out)
{
    size_t i, n = strlen(s);
    int64_t v = 0;

    if (n == 0 || n > 18)
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* One line, NUL-terminated, into 'e'; NULL, or what is wrong with it. */
static const char *parse_line(char *line, struct cert_entry *e)
{
    char *f[7], *save = NULL;
    int n = 0;

    if (strchr(line, '\t') != NULL || strstr(line, "  ") != NULL ||
        line[0] == ' ' || line[strlen(line) - 1] == ' ')
        return "fields are separated by one space";
    for (f[n] = strtok_r(line, " ", &save); f[n] != NULL && n < 6;
         f[n] = strtok_r(NULL, " ", &save))
        n++;
    if (n != 6 || f[6] != NULL)
        return "not 6 fields";
    if (strlen(f[0]) != CERT_SERIAL_HEX || !is_lower_hex(f[0], CERT_SERIAL_HEX))
        return "the serial is not 32 lower-case hex digits";
    if (!cert_role_valid(f[1]))
        return "unknown role";
    if (!cert_name_valid(f[2]))
        return "bad name";
    if (parse_time(f[3], &e->not_after) < 0)
        return "NOT_AFTER is not a number of seconds";
    if (strcmp(f[4], "valid") != 0 && strcmp(f[4], "revoked") != 0)
        return "STATUS is neither valid nor revoked";
    e->revoked = strcmp(f[4], "revoked") == 0;
    if (parse_time(f[5], &e->revoked_at) < 0 ||
        (e->revoked && e->revoked_at == 0) || (!e->revoked && e->revoked_at))
        return "REVOKED_AT must be 0 when valid, a time when revoked";
    memcpy(e->serial, f[0], CERT_SERIAL_HEX + 1);
    snprintf(e->role, sizeof(e->role), "%s", f[1]);
    snprintf(e->name, sizeof(e->name), "%s", f[2]);
    return NULL;
}

static int serial_seen(const struct cert_entries *l, const char *serial)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        if (strcmp(l->v[i].serial, serial) == 0)
            return 1;
    }
    return 0;
}

/* The text of an index into 'out'; 'path' names it in errors. */
static int parse_index(char *text, size_t len, const char *path,
                       struct cert_entries *out, struct vmckpt_error *err)
{
    char *line = text, *nl;
    size_t lineno = 0;

    if (strlen(text) != len) {
        errno = EINVAL;
        return errprintf(err, "%s is damaged: it holds a NUL byte", path);
    }
    for (; *line != '\0'; line = nl + 1) {
        struct cert_entry e;
        const char *why;

        lineno++;
        nl = strchr(line, '\n');
        if (nl == NULL) {
            errno = EINVAL;
            return errprintf(err, "%s:%zu: damaged: the last line is cut off",
                             path, lineno);
        }
        *nl = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        memset(&e, 0, sizeof(e));
        why = (size_t)(nl - line) > INDEX_LINE_MAX ? "line too long"
                                                   : parse_line(line, &e);
        if (why == NULL && serial_seen(out, e.serial))
            why = "a serial seen before";
        if (why != NULL) {
            errno = EINVAL;
            return errprintf(err,
                             "%s:%zu: damaged index line: %s (expected "
                             "SERIAL ROLE NAME NOT_AFTER valid|revoked "
                             "REVOKED_AT)",
                             path, lineno, why);
        }
        if (cert_entries_add(out, &e) < 0)
            return errprintf_errno(err, "%s", path);
    }
    return 0;
}

int cert_index_load(const char *dir, struct cert_entries *out,
                    struct vmckpt_error *err)
{
    char path[4096], *text;
    size_t len;
    int rc;

    cert_entries_init(out);
    if (cert_path(path, sizeof(path), dir, INDEX_FILE, err) < 0)
        return -1;
    if (access(path, F_OK) < 0 && errno == ENOENT)
        return errprintf(err,
                         "no CA in %s: it has no index (make one with "
                         "'vmckpt cert init')",
                         dir);
    if (cert_file_read(path, CERT_INDEX_MAX_SIZE, &text, &len, err) < 0)
        return -1;
    rc = parse_index(text, len, path, out, err);
    free(text);
    if (rc < 0)
        cert_entries_dispose(out);
    return rc;
}

int cert_index_write(const char *dir, const struct cert_entries *l,
                     struct vmckpt_error *err)
{
    char path[4096], *buf;
    size_t i, off, cap = sizeof(INDEX_HEADER) + l->n * (INDEX_LINE_MAX + 1);
    int rc;

    if (cert_path(path, sizeof(path), dir, INDEX_FILE, err) < 0)
        return -1;
    buf = malloc(cap);
    if (buf == NULL)
        return errprintf_errno(err, "%s", path);
    off = (size_t)snprintf(buf, cap, "%s", INDEX_HEADER);
    for (i = 0; i < l->n; i++) {
        const struct cert_entry *e = &l->v[i];

        off += (size_t)snprintf(
            buf + off, cap - off, "%s %s %s %" PRId64 " %s %" PRId64 "\n",
            e->serial, e->role, e->name, e->not_after,
            e->revoked ? "revoked" : "valid", e->revoked ? e->revoked_at : 0);
    }
    rc = cert_file_write(path, buf, off, 0600, err);
    free(buf);
    return rc;
}

/* ---- PEM files --------------------------------------------------------- */

int cert_ossl_fail(struct vmckpt_error *err, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    errno = EIO;
    return errprintf(err, "%s: %s", what,
                     why != NULL ? why : "OpenSSL gave no reason");
}

/* The PEM a memory BIO holds, to 'path' with 'mode'. Frees 'bio'. */
static int save_bio(const char *path, BIO *bio, unsigned mode,
                    struct vmckpt_error *err)
{
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    int rc = cert_file_write(path, data, len > 0 ? (size_t)len : 0, mode, err);

    BIO_free(bio);
    return rc;
}

int cert_save_key(const char *path, EVP_PKEY *k, struct vmckpt_error *err)
{
    /* secure memory: the key's text is wiped when the BIO is freed */
    BIO *bio = BIO_new(BIO_s_secmem());

    if (bio == NULL ||
        !PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL)) {
        BIO_free(bio);
        return cert_ossl_fail(err, "cannot encode a private key");
    }
    return save_bio(path, bio, 0600, err);
}

int cert_save_crt(const char *path, X509 *x, struct vmckpt_error *err)
{
    BIO *bio = BIO_new(BIO_s_mem());

    if (bio == NULL || !PEM_write_bio_X509(bio, x)) {
        BIO_free(bio);
        return cert_ossl_fail(err, "cannot encode a certificate");
    }
    return save_bio(path, bio, 0644, err);
}

int cert_save_crl(const char *path, X509_CRL *c, struct vmckpt_error *err)
{
    BIO *bio = BIO_new(BIO_s_mem());

    if (bio == NULL || !PEM_write_bio_X509_CRL(bio, c)) {
        BIO_free(bio);
        return cert_ossl_fail(err, "cannot encode the CRL");
    }
    return save_bio(path, bio, 0644, err);
}

/* Never ask a terminal for a pass phrase: an encrypted key is refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)arg;
    return -1;
}

/* One PEM object of 'path' read by 'read' (a PEM_read_bio_* function). */
static void *load_pem(const char *path, const char *what, size_t max,
                      void *(*read)(BIO *bio), struct vmckpt_error *err)
{
    char *text;
    size_t len;
    BIO *bio;
    void *obj = NULL;

    if (cert_file_read(path, max, &text, &len, err) < 0)
        return NULL;
    bio = BIO_new_mem_buf(text, (int)len);
    if (bio != NULL)
        obj = read(bio);
    if (obj == NULL) {
        ERR_clear_error();
        errno = EINVAL;
        errprintf(err, "%s is not a PEM %s (damaged?)", path, what);
    }
    BIO_free(bio);
    OPENSSL_cleanse(text, len);
    free(text);
    return obj;
}

static void *read_x509(BIO *bio)
{
    return PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
}

static void *read_crl(BIO *bio)
{
    return PEM_read_bio_X509_CRL(bio, NULL, no_passphrase, NULL);
}

static void *read_key(BIO *bio)
{
    return PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
}

int cert_load_file(const char *path, X509 **out, struct vmckpt_error *err)
{
    *out = load_pem(path, "certificate", CERT_FILE_MAX, read_x509, err);
    return *out != NULL ? 0 : -1;
}

int cert_load_crl(const char *path, X509_CRL **out, struct vmckpt_error *err)
{
    *out = load_pem(path, "CRL", CERT_CRL_MAX, read_crl, err);
    return *out != NULL ? 0 : -1;
}

int cert_load_key(const char *path, EVP_PKEY **out, struct vmckpt_error *err)
{
    *out = load_pem(path, "private key", CERT_FILE_MAX, read_key, err);
    return *out != NULL ? 0 : -1;
}
