/* SPDX-License-Identifier: GPL-2.0-or-later */
/* AES-256-GCM sealing of page batches and device state records. What is
 * authenticated besides the ciphertext (AAD; integers little endian):
 *
 *   batch:  "vmckpt-batch-1" | job NUL vm NUL | round u32 | raw_len u32 |
 *           lz4 u8 | n u32 | n x page u64 | zero bitmap
 *   state:  "vmckpt-state-1" | job NUL vm NUL | offset u64 | length u64
 *   disk:   "vmckpt-disks-1" | job NUL vm NUL | disk u32 | offset u64 |
 *           length u32
 *
 * so a batch, record or disk chunk moved to another VM, other pages or
 * another place, or records reordered, do not open. Nonces are 96 random bits
 * each. */
#include "config.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "seal.h"

#define LABEL_BATCH "vmckpt-batch-1"
#define LABEL_STATE "vmckpt-state-1"
#define LABEL_DISK  "vmckpt-disks-1"
#define LABEL_LEN   (sizeof(LABEL_BATCH) - 1)
_Static_assert(sizeof(LABEL_BATCH) == sizeof(LABEL_STATE) &&
                   sizeof(LABEL_BATCH) == sizeof(LABEL_DISK),
               "label lengths");

#define NONCE     BATCH_NONCE_BYTES
#define TAG       BATCH_TAG_BYTES
#define BATCH_MAX ((size_t)BATCH_MAX_PAGES * BATCH_PAGE)
/* the batch fields after label and names: round, raw_len, lz4, n, pages,
 * bitmap */
#define AAD_BATCH_MAX                                                          \
    (4 + 4 + 1 + 4 + 8 * BATCH_MAX_PAGES + BATCH_MAX_PAGES / 8)

struct sealer {
    EVP_CIPHER_CTX *enc, *dec; /* cipher and key set once, IV per use */
    uint8_t *aad;              /* label | job NUL vm NUL | fields */
    size_t aad_fixed;          /* length of label | job NUL vm NUL */
    uint8_t nonce[NONCE];      /* of the last sealed batch */
    uint8_t *out;              /* the last sealed batch or record */
    size_t out_cap;
    uint8_t *clr; /* an LZ4 batch decrypted */
    uint8_t *rd;  /* the reader's record, whole or in part */
    size_t rd_cap, rd_len;
    uint64_t wr_off; /* plaintext bytes of state sealed */
    uint64_t rd_off; /* and opened */
    int rd_failed;
};

static void put_u32(uint8_t *p, uint32_t v)
{
    int i;

    for (i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    int i;

    for (i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Grow '*buf' to hold 'need' bytes; buffers only grow, so the data path
 * allocates nothing once warm. */
static int reserve(uint8_t **buf, size_t *cap, size_t need)
{
    uint8_t *n;

    if (*cap >= need)
        return 0;
    n = realloc(*buf, need);
    if (n == NULL)
        return -1;
    *buf = n;
    *cap = need;
    return 0;
}

/* A libcrypto failure: its queue emptied so that it does not show up in a
 * later TLS call of this thread (SSL_get_error reads it). */
static int crypto_fail(struct vmckpt_error *err, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];

    ERR_clear_error();
    ERR_error_string_n(e, buf, sizeof(buf));
    errno = EIO;
    return errprintf(err, "%s: %s", what, e != 0 ? buf : "failed");
}

int seal_key_from_bytes(const void *p, size_t len, struct seal_key *k,
                        struct vmckpt_error *err)
{
    if (len != SEAL_KEY_BYTES) {
        errno = EINVAL;
        return errprintf(err, "a sealing key is %d bytes, not %zu",
                         SEAL_KEY_BYTES, len);
    }
    memcpy(k->k, p, SEAL_KEY_BYTES);
    return 0;
}

int seal_key_random(struct seal_key *k, struct vmckpt_error *err)
{
    if (RAND_bytes(k->k, SEAL_KEY_BYTES) != 1)
        return crypto_fail(err, "no random key");
    return 0;
}

struct sealer *sealer_new(const struct seal_key *k, const char *job,
                          const char *vm, struct vmckpt_error *err)
{
    size_t jl = strlen(job), vl = strlen(vm);
    struct sealer *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        errprintf_errno(err, "sealer");
        return NULL;
    }
    s->aad_fixed = LABEL_LEN + jl + 1 + vl + 1;
    s->aad = malloc(s->aad_fixed + AAD_BATCH_MAX);
    s->enc = EVP_CIPHER_CTX_new();
    s->dec = EVP_CIPHER_CTX_new();
    if (s->aad == NULL || s->enc == NULL || s->dec == NULL) {
        errno = ENOMEM;
        errprintf_errno(err, "sealer");
        goto fail;
    }
    memcpy(s->aad + LABEL_LEN, job, jl + 1);
    memcpy(s->aad + LABEL_LEN + jl + 1, vm, vl + 1);
    if (EVP_EncryptInit_ex(s->enc, EVP_aes_256_gcm(), NULL, k->k, NULL) != 1 ||
        EVP_DecryptInit_ex(s->dec, EVP_aes_256_gcm(), NULL, k->k, NULL) != 1) {
        crypto_fail(err, "AES-256-GCM");
        goto fail;
    }
    return s;
fail:
    sealer_free(s);
    return NULL;
}

void sealer_free(struct sealer *s)
{
    int saved = errno;

    if (s == NULL)
        return;
    /* freeing a context wipes its key schedule */
    EVP_CIPHER_CTX_free(s->enc);
    EVP_CIPHER_CTX_free(s->dec);
    free(s->aad);
    free(s->out);
    free(s->clr);
    free(s->rd);
    free(s);
    errno = saved;
}

/* ---- the cipher -------------------------------------------------------- */

/* 'len' bytes at 'in' sealed into 'out' (may be 'in'; 'len' bytes of
 * ciphertext) and 'tag' (TAG bytes) under 'nonce' with the first 'alen'
 * bytes of s->aad. */
static int gcm_seal(struct sealer *s, const uint8_t *nonce, size_t alen,
                    const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag,
                    struct vmckpt_error *err)
{
    EVP_CIPHER_CTX *c = s->enc;
    int n;

    if (EVP_EncryptInit_ex(c, NULL, NULL, NULL, nonce) != 1 ||
        EVP_EncryptUpdate(c, NULL, &n, s->aad, (int)alen) != 1 ||
        (len > 0 && EVP_EncryptUpdate(c, out, &n, in, (int)len) != 1) ||
        EVP_EncryptFinal_ex(c, out + len, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG, tag) != 1)
        return crypto_fail(err, "AES-256-GCM sealing");
    return 0;
}

/* The 'len' bytes of ciphertext at 'in' with their 'tag', opened into
 * 'out' (may be 'in'). 0, or -1 if they do not open. */
static int gcm_open(struct sealer *s, const uint8_t *nonce, size_t alen,
                    const uint8_t *in, size_t len, const uint8_t *tag,
                    uint8_t *out)
{
    EVP_CIPHER_CTX *c = s->dec;
    int n;

    if (EVP_DecryptInit_ex(c, NULL, NULL, NULL, nonce) != 1 ||
        EVP_DecryptUpdate(c, NULL, &n, s->aad, (int)alen) != 1 ||
        (len > 0 && EVP_DecryptUpdate(c, out, &n, in, (int)len) != 1) ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG, (void *)tag) != 1 ||
        EVP_DecryptFinal_ex(c, out + len, &n) != 1) {
        ERR_clear_error();
        errno = EBADMSG;
        return -1;
    }
    return 0;
}

/* ---- page batches ------------------------------------------------------ */

/* s->aad for batch 'm' (n and bitmap checked); its length. */
static size_t batch_aad(struct sealer *s, const Vmckpt__PageBatch *m)
{
    uint8_t *p = s->aad + s->aad_fixed;
    size_t i;

    memcpy(s->aad, LABEL_BATCH, LABEL_LEN);
    put_u32(p, m->round);
    put_u32(p + 4, m->raw_len);
    p[8] = m->lz4 ? 1 : 0;
    put_u32(p + 9, (uint32_t)m->n_pages);
    p += 13;
    for (i = 0; i < m->n_pages; i++, p += 8)
        put_u64(p, m->pages[i]);
    memcpy(p, m->zero.data, m->zero.len);
    return (size_t)(p - s->aad) + m->zero.len;
}

/* What the AAD needs bounded: the page count and the bitmap. */
static int check_shape(const Vmckpt__PageBatch *m, struct vmckpt_error *err)
{
    errno = EINVAL;
    if (m->n_pages == 0 || m->n_pages > BATCH_MAX_PAGES)
        return errprintf(err, "batch of %zu pages (1 to %u)", m->n_pages,
                         BATCH_MAX_PAGES);
    if (m->zero.len != (m->n_pages + 7) / 8)
        return errprintf(err, "zero bitmap of %zu bytes for %zu pages",
                         m->zero.len, m->n_pages);
    return 0;
}

int sealer_batch(struct sealer *s, Vmckpt__PageBatch *msg,
                 struct vmckpt_error *err)
{
    size_t alen, len = msg->data.len;

    if (check_shape(msg, err) < 0)
        return -1;
    if (msg->nonce.len != 0 || len > BATCH_MAX) {
        errno = EINVAL;
        return errprintf(err, "batch %s",
                         msg->nonce.len != 0 ? "sealed already"
                                             : "data too long to seal");
    }
    if (reserve(&s->out, &s->out_cap, BATCH_MAX + TAG) < 0)
        return errprintf_errno(err, "sealing a batch");
    if (RAND_bytes(s->nonce, NONCE) != 1)
        return crypto_fail(err, "no random nonce");
    alen = batch_aad(s, msg);
    if (gcm_seal(s, s->nonce, alen, msg->data.data, len, s->out, s->out + len,
                 err) < 0)
        return -1;
    msg->data.data = s->out;
    msg->data.len = len + TAG;
    msg->nonce.data = s->nonce;
    msg->nonce.len = NONCE;
    msg->xxh64 = batch_checksum(msg->pages, msg->n_pages, msg->zero.data,
                                msg->zero.len, s->out, len + TAG);
    return 0;
}

int sealer_open_batch(struct sealer *s, const Vmckpt__PageBatch *msg,
                      uint8_t *scratch, struct batch_view *v,
                      struct vmckpt_error *err)
{
    size_t alen, len;
    uint8_t *clear = scratch;

    if (check_shape(msg, err) < 0)
        return -1;
    errno = EINVAL;
    if (msg->nonce.len != NONCE || msg->data.len < TAG ||
        msg->data.len - TAG > BATCH_MAX)
        return errprintf(err,
                         "not a sealed batch (nonce of %zu bytes, "
                         "%zu bytes of data)",
                         msg->nonce.len, msg->data.len);
    len = msg->data.len - TAG;
    if (msg->lz4) {
        /* decrypted beside 'scratch', decompressed into it */
        if (s->clr == NULL && (s->clr = malloc(BATCH_MAX)) == NULL)
            return errprintf_errno(err, "opening a batch");
        clear = s->clr;
    }
    alen = batch_aad(s, msg);
    if (gcm_open(s, msg->nonce.data, alen, msg->data.data, len,
                 msg->data.data + len, clear) < 0)
        return errprintf(err, "sealed batch does not open: wrong key or "
                              "altered");
    if (batch_open_clear(msg, clear, len, scratch, v, err) < 0)
        return errprefix(err, "sealed batch");
    return 0;
}

/* ---- device state ------------------------------------------------------ */

/* s->aad for the state record at plaintext 'off' of 'len' bytes. */
static size_t state_aad(struct sealer *s, uint64_t off, uint64_t len)
{
    memcpy(s->aad, LABEL_STATE, LABEL_LEN);
    put_u64(s->aad + s->aad_fixed, off);
    put_u64(s->aad + s->aad_fixed + 8, len);
    return s->aad_fixed + 16;
}

int sealer_state(struct sealer *s, uint64_t off, const void *data, size_t len,
                 const uint8_t **rec, size_t *rec_len, struct vmckpt_error *err)
{
    size_t alen;

    if (off == 0)
        s->wr_off = 0;
    errno = EINVAL;
    if (off != s->wr_off)
        return errprintf(err, "state to seal at %llu, %llu expected",
                         (unsigned long long)off,
                         (unsigned long long)s->wr_off);
    if (len > SEAL_STATE_MAX)
        return errprintf(err, "state chunk of %zu bytes to seal (at most %u)",
                         len, SEAL_STATE_MAX);
    if (reserve(&s->out, &s->out_cap, SEAL_STATE_HEADER + len + TAG) < 0)
        return errprintf_errno(err, "sealing state");
    memcpy(s->out, SEAL_STATE_MAGIC, 4);
    put_u32(s->out + 4, (uint32_t)len);
    if (RAND_bytes(s->out + 8, NONCE) != 1)
        return crypto_fail(err, "no random nonce");
    alen = state_aad(s, off, len);
    if (gcm_seal(s, s->out + 8, alen, data, len, s->out + SEAL_STATE_HEADER,
                 s->out + SEAL_STATE_HEADER + len, err) < 0)
        return -1;
    s->wr_off += len;
    *rec = s->out;
    *rec_len = SEAL_STATE_HEADER + len + TAG;
    return 0;
}

/* ---- disk chunks ------------------------------------------------------- */

/* s->aad for disk 'disk''s chunk of 'len' bytes at 'off'. */
static size_t disk_aad(struct sealer *s, unsigned disk, uint64_t off,
                       size_t len)
{
    memcpy(s->aad, LABEL_DISK, LABEL_LEN);
    put_u32(s->aad + s->aad_fixed, disk);
    put_u64(s->aad + s->aad_fixed + 4, off);
    put_u32(s->aad + s->aad_fixed + 12, (uint32_t)len);
    return s->aad_fixed + 16;
}

int sealer_disk_chunk(struct sealer *s, unsigned disk, uint64_t off,
                      uint8_t *data, size_t len, uint8_t *seal,
                      struct vmckpt_error *err)
{
    if (len == 0 || len > SEAL_DISK_MAX) {
        errno = EINVAL;
        return errprintf(err, "disk chunk of %zu bytes to seal (1 to %u)", len,
                         SEAL_DISK_MAX);
    }
    if (RAND_bytes(seal, NONCE) != 1)
        return crypto_fail(err, "no random nonce");
    return gcm_seal(s, seal, disk_aad(s, disk, off, len), data, len, data,
                    seal + NONCE, err);
}

const uint8_t *sealer_open_disk_chunk(struct sealer *s, unsigned disk,
                                      uint64_t off, const uint8_t *data,
                                      size_t len, const uint8_t *seal,
                                      struct vmckpt_error *err)
{
    errno = EINVAL;
    if (len == 0 || len > SEAL_DISK_MAX) {
        errprintf(err, "sealed disk chunk of %zu bytes (1 to %u)", len,
                  SEAL_DISK_MAX);
        return NULL;
    }
    if (reserve(&s->out, &s->out_cap, len) < 0) {
        errprintf_errno(err, "opening a disk chunk");
        return NULL;
    }
    if (gcm_open(s, seal, disk_aad(s, disk, off, len), data, len, seal + NONCE,
                 s->out) < 0) {
        errprintf(err,
                  "sealed chunk of disk %u at %llu does not open: wrong key, "
                  "altered or moved",
                  disk, (unsigned long long)off);
        return NULL;
    }
    return s->out;
}

int seal_state_is_sealed(const void *p, size_t len)
{
    return len >= 4 && memcmp(p, SEAL_STATE_MAGIC, 4) == 0;
}

/* The record whose header is at 'hdr' (checked) and whose ciphertext and
 * tag are at 'ct', opened into 'clear' and handed to out(). */
static int open_record(struct sealer *s, const uint8_t *hdr, const uint8_t *ct,
                       uint8_t *clear,
                       int (*out)(void *, uint64_t, const void *, size_t),
                       void *arg, struct vmckpt_error *err)
{
    uint32_t len = get_u32(hdr + 4);
    size_t alen = state_aad(s, s->rd_off, len);

    if (gcm_open(s, hdr + 8, alen, ct, len, ct + len, clear) < 0)
        return errprintf(err,
                         "sealed state at %llu does not open: wrong "
                         "key, altered or out of order",
                         (unsigned long long)s->rd_off);
    if (out(arg, s->rd_off, clear, len) < 0)
        return errprintf_errno(err, "device state at %llu",
                               (unsigned long long)s->rd_off);
    s->rd_off += len;
    return 0;
}

/* The header gathered in s->rd: its record's whole size, or 0 with 'err'
 * if it is not one. */
static size_t record_size(const struct sealer *s, struct vmckpt_error *err)
{
    uint32_t len = get_u32(s->rd + 4);

    errno = EBADMSG;
    if (memcmp(s->rd, SEAL_STATE_MAGIC, 4) != 0) {
        errprintf(err, "sealed state: no record at %llu",
                  (unsigned long long)s->rd_off);
        return 0;
    }
    if (len > SEAL_STATE_MAX) {
        errprintf(err, "sealed state: record of %u bytes at %llu", len,
                  (unsigned long long)s->rd_off);
        return 0;
    }
    return SEAL_STATE_HEADER + (size_t)len + TAG;
}

/* One step of the reader: take what it needs of [*p, *p + *len). */
static int feed_step(struct sealer *s, const uint8_t **p, size_t *len,
                     int (*out)(void *, uint64_t, const void *, size_t),
                     void *arg, struct vmckpt_error *err)
{
    size_t need = SEAL_STATE_HEADER, take;

    if (s->rd_len >= SEAL_STATE_HEADER && (need = record_size(s, err)) == 0)
        return -1;
    if (s->rd_len == 0 && *len >= SEAL_STATE_HEADER) {
        /* a whole record in the input opens from there */
        memcpy(s->rd, *p, SEAL_STATE_HEADER);
        s->rd_len = SEAL_STATE_HEADER;
        if ((need = record_size(s, err)) == 0)
            return -1;
        if (*len >= need) {
            s->rd_len = 0;
            if (reserve(&s->rd, &s->rd_cap, need) < 0)
                return errprintf_errno(err, "reading sealed state");
            if (open_record(s, *p, *p + SEAL_STATE_HEADER, s->rd, out, arg,
                            err) < 0)
                return -1;
            *p += need;
            *len -= need;
            return 0;
        }
        *p += SEAL_STATE_HEADER;
        *len -= SEAL_STATE_HEADER;
    }
    if (reserve(&s->rd, &s->rd_cap, need) < 0)
        return errprintf_errno(err, "reading sealed state");
    take = need - s->rd_len < *len ? need - s->rd_len : *len;
    memcpy(s->rd + s->rd_len, *p, take);
    s->rd_len += take;
    *p += take;
    *len -= take;
    if (s->rd_len < need || need == SEAL_STATE_HEADER)
        return 0;
    /* whole: opened in place */
    s->rd_len = 0;
    return open_record(s, s->rd, s->rd + SEAL_STATE_HEADER,
                       s->rd + SEAL_STATE_HEADER, out, arg, err);
}

int sealer_state_feed(struct sealer *s, const void *data, size_t len,
                      int (*out)(void *arg, uint64_t off, const void *data,
                                 size_t len),
                      void *arg, struct vmckpt_error *err)
{
    const uint8_t *p = data;

    if (s->rd_failed) {
        errno = EINVAL;
        return errprintf(err, "sealed state: the read failed before");
    }
    if (reserve(&s->rd, &s->rd_cap, SEAL_STATE_HEADER) < 0)
        return errprintf_errno(err, "reading sealed state");
    while (len > 0)
        if (feed_step(s, &p, &len, out, arg, err) < 0) {
            s->rd_failed = 1;
            return -1;
        }
    return 0;
}

int sealer_state_end(struct sealer *s, struct vmckpt_error *err)
{
    int failed = s->rd_failed;
    size_t left = s->rd_len;
    uint64_t off = s->rd_off;

    s->rd_failed = 0;
    s->rd_len = 0;
    s->rd_off = 0;
    errno = EBADMSG;
    if (failed)
        return errprintf(err, "sealed state: the read failed");
    if (left != 0)
        return errprintf(err,
                         "sealed state cut: %zu bytes of a record left "
                         "at %llu",
                         left, (unsigned long long)off);
    return 0;
}
