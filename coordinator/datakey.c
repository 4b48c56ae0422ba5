/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The coordinator's data-key secret and the per-job keys derived from it
 * (datakey.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "catalog.h"
#include "datakey.h"
#include "lib/util/io.h"
#include "lib/util/log.h"
#include "lib/wire/auth.h"
#include "server.h"

/* Make the secret file: written under a temporary name, fsynced, then
 * linked into place (never a half-written key under the real name). */
static int make_secret(const char *dir, const char *path,
                       uint8_t key[DATAKEY_BYTES], struct vmckpt_error *err)
{
    char tmp[4200];
    int fd, rc = -1;

    if (auth_random(key, DATAKEY_BYTES) < 0)
        return errprintf(err, "%s: no random bytes", path);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return errprintf_errno(err, "%s", tmp);
    if (write(fd, key, DATAKEY_BYTES) == DATAKEY_BYTES && fsync(fd) == 0)
        rc = 0;
    close(fd);
    /* link, not rename: a secret made meanwhile by another start wins */
    if (rc == 0 && link(tmp, path) < 0)
        rc = -1;
    if (rc == 0 && fsync_dir(dir) < 0) /* the name is durable too */
        rc = -1;
    if (rc < 0)
        errprintf_errno(err, "%s", path);
    unlink(tmp);
    return rc;
}

static int read_secret(const char *path, uint8_t key[DATAKEY_BYTES],
                       struct vmckpt_error *err)
{
    struct stat st;
    uint8_t extra;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0)
        return errno == ENOENT ? 0 : errprintf_errno(err, "%s", path);
    if (fstat(fd, &st) < 0) {
        close(fd);
        return errprintf_errno(err, "%s", path);
    }
    if (st.st_mode & 077) {
        close(fd);
        errno = EPERM;
        return errprintf(err,
                         "%s is readable by others (mode %03o): it opens "
                         "every sealed image; chmod 600 it",
                         path, (unsigned)(st.st_mode & 0777));
    }
    n = read(fd, key, DATAKEY_BYTES);
    if (n == DATAKEY_BYTES && read(fd, &extra, 1) == 0) {
        close(fd);
        return 1;
    }
    close(fd);
    OPENSSL_cleanse(key, DATAKEY_BYTES);
    errno = EINVAL;
    return errprintf(err, "%s is not a data key (32 bytes)", path);
}

/* The check value of secret 'key' (HMAC-SHA256 over a label, 8 bytes in
 * hex): what the catalog records, which does not give the key away. */
static int check_value(const uint8_t key[DATAKEY_BYTES], char out[17])
{
    static const char label[] = "vmckpt-data-key-check-1";
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int len = sizeof(mac), i;

    if (HMAC(EVP_sha256(), key, DATAKEY_BYTES, (const uint8_t *)label,
             sizeof(label) - 1, mac, &len) == NULL ||
        len < 8)
        return -1;
    for (i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    return 0;
}

/* The secret read or made ('have' 1) against the catalog's check value,
 * while committed epochs are sealed (n > 0): another key is refused, and
 * a missing file ('have' 0) when sealing would make a new one (it would
 * not open them; with sealing off that is a warning). With no sealed
 * epoch the key's check value is recorded. A catalog with sealed epochs
 * and no check value (older than the check) records none: its key cannot
 * be told right or wrong. */
static int check_catalog(struct coord *co, const char *path, int have,
                         struct vmckpt_error *err)
{
    char want[64], mine[17];
    uint64_t n = 0;
    int got;

    got = catalog_meta_get(co->cat, "data_key_check", want, sizeof(want), err);
    if (got < 0 || catalog_sealed_count(co->cat, &n, err) < 0)
        return -1;
    if (got == 0)
        snprintf(want, sizeof(want), "not recorded");
    if (!have) {
        if (n == 0)
            return 0;
        if (!co->seal_images) { /* nothing would be made: say so, go on */
            log_warn("%s is missing: the catalog's %" PRIu64 " sealed "
                     "epochs cannot be restored until it is back (its check "
                     "value: %s)",
                     path, n, want);
            return 0;
        }
        errno = ENOENT;
        return errprintf(err,
                         "%s is missing, and the catalog holds %" PRIu64
                         " sealed epochs that only the key that sealed them "
                         "opens (its check value: %s): put that file back "
                         "from its backup (a new key would not open them)",
                         path, n, want);
    }
    if (check_value(co->datakey, mine) < 0) {
        errno = EIO;
        return errprintf(err, "%s: no check value (HMAC failed)", path);
    }
    if (got == 1 && strcmp(want, mine) == 0)
        return 0;
    if (n > 0 && got == 0) {
        log_warn("%s: the catalog holds %" PRIu64 " sealed epochs and no "
                 "check value of the key that sealed them; this key's (%s) "
                 "is recorded once none is left",
                 path, n, mine);
        return 0;
    }
    if (n > 0) {
        errno = EKEYREJECTED;
        return errprintf(err,
                         "%s is not the data key that sealed the catalog's "
                         "%" PRIu64 " sealed epochs (its check value is %s, "
                         "theirs %s): put the right file back",
                         path, n, mine, want);
    }
    if (catalog_meta_put(co->cat, "data_key_check", mine, err) < 0)
        return -1;
    log_info("%s: check value %s recorded in the catalog", path, mine);
    return 0;
}

int datakey_open(struct coord *co, const char *state_dir, int seal,
                 struct vmckpt_error *err)
{
    char path[4200];
    int rc;

    snprintf(path, sizeof(path), "%s/data.key", state_dir);
    co->seal_images = seal;
    rc = read_secret(path, co->datakey, err);
    if (rc < 0)
        return -1;
    /* a missing secret that sealed epochs need is not made anew */
    if (rc == 0 && check_catalog(co, path, 0, err) < 0)
        return -1;
    if (rc == 0 && seal) {
        if (make_secret(state_dir, path, co->datakey, err) < 0) {
            if (errno != EEXIST || read_secret(path, co->datakey, err) != 1) {
                OPENSSL_cleanse(co->datakey, sizeof(co->datakey));
                return -1;
            }
        } else {
            log_warn("%s: the data key of sealed images made; back it up "
                     "with the catalog (without it no sealed epoch "
                     "restores)",
                     path);
        }
        rc = 1;
    }
    if (rc == 1 && check_catalog(co, path, 1, err) < 0) {
        OPENSSL_cleanse(co->datakey, sizeof(co->datakey));
        return -1;
    }
    co->have_datakey = rc == 1;
    return 0;
}

void datakey_close(struct coord *co)
{
    OPENSSL_cleanse(co->datakey, sizeof(co->datakey));
    co->have_datakey = 0;
}

static int derive(const struct coord *co, const char *job,
                  uint8_t out[DATAKEY_BYTES])
{
    static const char label[] = "vmckpt-data-key-1";
    uint8_t msg[sizeof(label) + 65];
    size_t jl = strnlen(job, 64);
    unsigned int len = DATAKEY_BYTES;

    if (!co->have_datakey)
        return -1;
    memcpy(msg, label, sizeof(label)); /* with its NUL: label | 0 | job */
    memcpy(msg + sizeof(label), job, jl);
    if (HMAC(EVP_sha256(), co->datakey, DATAKEY_BYTES, msg, sizeof(label) + jl,
             out, &len) == NULL ||
        len != DATAKEY_BYTES) {
        OPENSSL_cleanse(out, DATAKEY_BYTES);
        return -1;
    }
    return 1;
}

int datakey_for(const struct coord *co, const char *job,
                uint8_t out[DATAKEY_BYTES])
{
    return co->seal_images ? derive(co, job, out) : 0;
}

int datakey_open_for(const struct coord *co, const char *job,
                     uint8_t out[DATAKEY_BYTES])
{
    return derive(co, job, out);
}
