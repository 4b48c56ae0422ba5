/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Encoding and checking of page batches. */
#include "config.h"

#include <errno.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH64_state_t on the stack */
#include <xxhash.h>

#include "batch.h"
#include "lib/util/io.h"

int batch_bytes_are_zero(const void *p, size_t len)
{
    const uint8_t *b = p;

    return len == 0 || (b[0] == 0 && memcmp(b, b + 1, len - 1) == 0);
}

int batch_page_is_zero(const void *p)
{
    const uint64_t *w = p;
    size_t i;

    for (i = 0; i < BATCH_PAGE / 8; i += 4)
        if (w[i] | w[i + 1] | w[i + 2] | w[i + 3])
            return 0;
    return 1;
}

uint64_t batch_xxh64(const void *buf, size_t len)
{
    return XXH64(buf, len, 0);
}

struct batch_hash *batch_hash_new(void)
{
    XXH64_state_t *st = XXH64_createState();

    if (st != NULL)
        XXH64_reset(st, 0);
    return (struct batch_hash *)st;
}

void batch_hash_update(struct batch_hash *h, const void *buf, size_t len)
{
    XXH64_update((XXH64_state_t *)h, buf, len);
}

uint64_t batch_hash_done(struct batch_hash *h)
{
    uint64_t d = XXH64_digest((XXH64_state_t *)h);

    XXH64_freeState((XXH64_state_t *)h);
    return d;
}

int batch_builder_init(struct batch_builder *b, int lz4)
{
    memset(b, 0, sizeof(*b));
    b->lz4 = lz4;
    b->data = malloc((size_t)BATCH_MAX_PAGES * BATCH_PAGE);
    if (b->data == NULL)
        return -1;
    if (lz4) {
        b->packed_cap = (size_t)LZ4_compressBound(BATCH_MAX_PAGES * BATCH_PAGE);
        b->packed = malloc(b->packed_cap);
        if (b->packed == NULL) {
            free(b->data);
            b->data = NULL;
            return -1;
        }
    }
    return 0;
}

void batch_builder_dispose(struct batch_builder *b)
{
    free(b->data);
    free(b->packed);
    b->data = b->packed = NULL;
}

void batch_reset(struct batch_builder *b, uint32_t round)
{
    b->round = round;
    b->n = b->nz = 0;
    memset(b->zero, 0, sizeof(b->zero));
}

int batch_add(struct batch_builder *b, uint64_t page, const void *content)
{
    if (batch_page_is_zero(content)) {
        b->zero[b->n / 8] |= (uint8_t)(1u << (b->n % 8));
    } else {
        memcpy(b->data + b->nz * BATCH_PAGE, content, BATCH_PAGE);
        b->nz++;
    }
    b->pages[b->n++] = page;
    return b->n == BATCH_MAX_PAGES;
}

uint64_t batch_checksum(const uint64_t *pages, size_t n, const uint8_t *zero,
                        size_t zlen, const uint8_t *data, size_t dlen)
{
    XXH64_state_t st;
    size_t i;

    XXH64_reset(&st, 0);
    for (i = 0; i < n; i++) {
        uint8_t le[8];
        int k;

        for (k = 0; k < 8; k++)
            le[k] = (uint8_t)(pages[i] >> (8 * k));
        XXH64_update(&st, le, sizeof(le));
    }
    XXH64_update(&st, zero, zlen);
    XXH64_update(&st, data, dlen);
    return XXH64_digest(&st);
}

size_t batch_finish(struct batch_builder *b, Vmckpt__PageBatch *msg)
{
    size_t raw = b->nz * BATCH_PAGE, zlen = (b->n + 7) / 8;

    msg->round = b->round;
    msg->n_pages = b->n;
    msg->pages = b->pages;
    msg->zero.data = b->zero;
    msg->zero.len = zlen;
    msg->raw_len = (uint32_t)raw;
    msg->xxh64 = batch_checksum(b->pages, b->n, b->zero, zlen, b->data, raw);
    msg->lz4 = 0;
    msg->data.data = b->data;
    msg->data.len = raw;
    if (b->lz4 && raw > 0) {
        int c = LZ4_compress_default((const char *)b->data, (char *)b->packed,
                                     (int)raw, (int)b->packed_cap);

        /* keep the raw pages when compression does not pay */
        if (c > 0 && (size_t)c < raw) {
            msg->lz4 = 1;
            msg->data.data = b->packed;
            msg->data.len = (size_t)c;
        }
    }
    return msg->data.len + zlen + b->n * 8;
}

/* Page count, bitmap size, page numbers below 'npages', raw_len against
 * the non-zero pages: what a batch says of itself, sealed or not. */
static int check_header(const Vmckpt__PageBatch *msg, uint64_t npages,
                        struct vmckpt_error *err)
{
    size_t i, nz = 0;

    errno = EINVAL;
    if (msg->n_pages == 0 || msg->n_pages > BATCH_MAX_PAGES)
        return errprintf(err, "batch of %zu pages (1 to %u)", msg->n_pages,
                         BATCH_MAX_PAGES);
    if (msg->zero.len != (msg->n_pages + 7) / 8)
        return errprintf(err, "zero bitmap of %zu bytes for %zu pages",
                         msg->zero.len, msg->n_pages);
    for (i = 0; i < msg->n_pages; i++) {
        if (msg->pages[i] >= npages)
            return errprintf(err, "page %llu beyond the guest's %llu pages",
                             (unsigned long long)msg->pages[i],
                             (unsigned long long)npages);
        if (!(msg->zero.data[i / 8] & (1u << (i % 8))))
            nz++;
    }
    if (msg->raw_len != nz * BATCH_PAGE)
        return errprintf(err, "batch data is %u bytes, %zu pages expected",
                         msg->raw_len, nz);
    return 0;
}

/* The clear data 'data'/'len' of a checked batch, decompressed into
 * 'scratch' if LZ4: the pages' contents in '*pages' (NULL may do for no
 * pages). 0, or -1 with 'err'. */
static int clear_data(const Vmckpt__PageBatch *msg, const uint8_t *data,
                      size_t len, uint8_t *scratch, const uint8_t **pages,
                      struct vmckpt_error *err)
{
    errno = EINVAL;
    if (msg->lz4) {
        int d;

        if (len > BATCH_MAX_PAGES * BATCH_PAGE)
            return errprintf(err, "batch data of %zu bytes", len);
        d = LZ4_decompress_safe((const char *)data, (char *)scratch, (int)len,
                                (int)(BATCH_MAX_PAGES * BATCH_PAGE));
        if (d < 0 || (size_t)d != msg->raw_len)
            return errprintf(err, "batch data does not decompress");
        *pages = scratch;
        return 0;
    }
    if (len != msg->raw_len)
        return errprintf(err, "batch data is %zu bytes, %u expected", len,
                         msg->raw_len);
    *pages = data;
    return 0;
}

/* The checks of a sealed batch that need no key; a view without data. */
static int open_sealed(const Vmckpt__PageBatch *msg, struct batch_view *v,
                       struct vmckpt_error *err)
{
    size_t i, ct;

    errno = EINVAL;
    if (msg->nonce.len != BATCH_NONCE_BYTES)
        return errprintf(err, "sealed batch with a nonce of %zu bytes",
                         msg->nonce.len);
    if (msg->data.len < BATCH_TAG_BYTES)
        return errprintf(err, "sealed batch data of %zu bytes", msg->data.len);
    /* the sender compresses only what gets smaller */
    ct = msg->data.len - BATCH_TAG_BYTES;
    if (msg->lz4 ? ct > msg->raw_len : ct != msg->raw_len)
        return errprintf(err, "sealed batch data is %zu bytes for %u", ct,
                         msg->raw_len);
    if (batch_checksum(msg->pages, msg->n_pages, msg->zero.data, msg->zero.len,
                       msg->data.data, msg->data.len) != msg->xxh64) {
        errno = EBADMSG;
        return errprintf(err, "batch checksum mismatch");
    }
    v->n = msg->n_pages;
    v->pages = msg->pages;
    v->zero = msg->zero.data;
    v->data = NULL;
    for (i = 0; i < v->n; i++)
        v->offs[i] = (size_t)-1;
    v->sealed = 1;
    errno = 0;
    return 0;
}

int batch_open(const Vmckpt__PageBatch *msg, uint64_t npages, uint8_t *scratch,
               struct batch_view *v, struct vmckpt_error *err)
{
    const uint8_t *data;

    if (check_header(msg, npages, err) < 0)
        return -1;
    if (msg->nonce.len != 0)
        return open_sealed(msg, v, err);
    if (clear_data(msg, msg->data.data, msg->data.len, scratch, &data, err) < 0)
        return -1;
    if (batch_checksum(msg->pages, msg->n_pages, msg->zero.data, msg->zero.len,
                       data, msg->raw_len) != msg->xxh64) {
        errno = EBADMSG;
        return errprintf(err, "batch checksum mismatch");
    }
    batch_view_fill(msg, data, v);
    errno = 0;
    return 0;
}

int batch_open_clear(const Vmckpt__PageBatch *msg, const uint8_t *data,
                     size_t len, uint8_t *scratch, struct batch_view *v,
                     struct vmckpt_error *err)
{
    if (check_header(msg, UINT64_MAX, err) < 0)
        return -1;
    if (clear_data(msg, data, len, scratch, &data, err) < 0)
        return -1;
    batch_view_fill(msg, data, v);
    errno = 0;
    return 0;
}

void batch_view_fill(const Vmckpt__PageBatch *msg, const uint8_t *data,
                     struct batch_view *v)
{
    size_t i, off = 0;

    v->data = data;
    v->n = msg->n_pages;
    v->pages = msg->pages;
    v->zero = msg->zero.data;
    v->sealed = 0;
    for (i = 0; i < v->n; i++) {
        if (v->zero[i / 8] & (1u << (i % 8))) {
            v->offs[i] = (size_t)-1;
        } else {
            v->offs[i] = off;
            off += BATCH_PAGE;
        }
    }
}

/* One run: 'n' pages from entry 'first' of 'v', at page v->pages[first]. */
static int write_run(const struct batch_view *v, size_t first, size_t n, int fd,
                     const uint8_t *zero)
{
    struct iovec iov[BATCH_MAX_PAGES];
    size_t i;

    for (i = 0; i < n; i++) {
        const uint8_t *p = batch_view_page(v, first + i);

        iov[i].iov_base = (void *)(p != NULL ? p : zero);
        iov[i].iov_len = BATCH_PAGE;
    }
    return io_writev_all(fd, iov, (int)n,
                         (int64_t)(v->pages[first] * BATCH_PAGE));
}

int batch_view_write(const struct batch_view *v, int fd, const uint8_t *zero)
{
    size_t i = 0, j;

    if (v->sealed) {
        errno = EINVAL;
        return -1;
    }
    while (i < v->n) {
        for (j = i + 1; j < v->n && v->pages[j] == v->pages[j - 1] + 1; j++)
            ;
        if (write_run(v, i, j - i, fd, zero) < 0)
            return -1;
        i = j;
    }
    return 0;
}

/* ---- decoding without a copy ------------------------------------------ */

/* The packed page numbers (field 2) of [p, end) appended to msg->pages. */
static int get_pages(const uint8_t *p, const uint8_t *end,
                     Vmckpt__PageBatch *msg, uint64_t *pages)
{
    while (p < end) {
        if (msg->n_pages == BATCH_MAX_PAGES ||
            wire_get_varint(&p, end, &pages[msg->n_pages]) < 0)
            return -1;
        msg->n_pages++;
    }
    return 0;
}

/* One field at *p into 'msg'; -1 if the encoding is wrong. */
static int get_field(const uint8_t **p, const uint8_t *end,
                     Vmckpt__PageBatch *msg, uint64_t *pages)
{
    uint64_t key, v, len;
    unsigned field;

    if (wire_get_varint(p, end, &key) < 0 || key >> 3 == 0 || key >> 3 > 0xffff)
        return -1;
    field = (unsigned)(key >> 3);
    switch (key & 7) {
    case 0: /* varint */
        if (wire_get_varint(p, end, &v) < 0)
            return -1;
        if (field == 1)
            msg->round = (uint32_t)v;
        else if (field == 2) {
            if (msg->n_pages == BATCH_MAX_PAGES)
                return -1;
            pages[msg->n_pages++] = v;
        } else if (field == 5)
            msg->lz4 = v != 0;
        else if (field == 6)
            msg->raw_len = (uint32_t)v;
        else if (field == 7)
            msg->xxh64 = v;
        return 0;
    case 1: /* 64-bit */
        if (end - *p < 8)
            return -1;
        *p += 8;
        return 0;
    case 5: /* 32-bit */
        if (end - *p < 4)
            return -1;
        *p += 4;
        return 0;
    case 2: /* length-delimited */
        if (wire_get_varint(p, end, &len) < 0 || len > (uint64_t)(end - *p))
            return -1;
        if (field == 2 && get_pages(*p, *p + len, msg, pages) < 0)
            return -1;
        if (field == 3) {
            msg->zero.data = (uint8_t *)*p;
            msg->zero.len = (size_t)len;
        } else if (field == 4) {
            msg->data.data = (uint8_t *)*p;
            msg->data.len = (size_t)len;
        } else if (field == 8) {
            msg->nonce.data = (uint8_t *)*p;
            msg->nonce.len = (size_t)len;
        }
        *p += len;
        return 0;
    default:
        return -1;
    }
}

int batch_decode(const uint8_t *buf, size_t len, Vmckpt__PageBatch *msg,
                 uint64_t pages[BATCH_MAX_PAGES], struct vmckpt_error *err)
{
    const uint8_t *p = buf, *end = buf + len;

    vmckpt__page_batch__init(msg);
    msg->pages = pages;
    while (p < end)
        if (get_field(&p, end, msg, pages) < 0) {
            errno = EBADMSG;
            return errprintf(err, "page batch: bad encoding at byte %zu of %zu",
                             (size_t)(p - buf), len);
        }
    return 0;
}
