/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of sealing: batches and state records round trip and hide
 * their contents; a store checks sealed batches without the key; a wrong
 * key, another VM, altered data or header, moved or cut records are
 * refused. */
#define _GNU_SOURCE /* memmem */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/wire/seal.h"

static uint8_t pages[3][BATCH_PAGE];
static uint8_t scratch[BATCH_MAX_PAGES * BATCH_PAGE];
static uint8_t pattern[64];
static struct seal_key key;

static void setup(void)
{
    size_t i;

    memset(pages, 0, sizeof(pages));
    for (i = 0; i < sizeof(pattern); i++)
        pattern[i] = (uint8_t)(0xa5 ^ (i * 37));
    for (i = 0; i < BATCH_PAGE; i++)
        pages[0][i] = (uint8_t)(i * 7);
    memcpy(pages[0] + 1000, pattern, sizeof(pattern));
    /* page 1 stays zero */
    memset(pages[2], 'x', BATCH_PAGE); /* compresses well */
    memcpy(pages[2] + 3000, pattern, sizeof(pattern));
    for (i = 0; i < SEAL_KEY_BYTES; i++)
        key.k[i] = (uint8_t)i;
}

static struct sealer *new_sealer(const struct seal_key *k, const char *vm)
{
    struct vmckpt_error err;
    struct sealer *s = sealer_new(k, "job1", vm, &err);

    ck_assert_msg(s != NULL, "%s", err.text);
    return s;
}

/* Batch of pages 10, 11 (zero), 12 in 'b', sealed into 'm' by 's'. */
static void build_sealed(struct batch_builder *b, Vmckpt__PageBatch *m, int lz4,
                         struct sealer *s)
{
    struct vmckpt_error err;

    ck_assert_int_eq(batch_builder_init(b, lz4), 0);
    batch_reset(b, 3);
    batch_add(b, 10, pages[0]);
    batch_add(b, 11, pages[1]);
    batch_add(b, 12, pages[2]);
    vmckpt__page_batch__init(m);
    batch_finish(b, m);
    ck_assert_int_eq(m->lz4, lz4);
    ck_assert_msg(sealer_batch(s, m, &err) == 0, "%s", err.text);
}

static void rechecksum(Vmckpt__PageBatch *m)
{
    m->xxh64 = batch_checksum(m->pages, m->n_pages, m->zero.data, m->zero.len,
                              m->data.data, m->data.len);
}

/* Sealed batches, LZ4 or not, pass through protobuf-c and the in-place
 * decoder, are checked without the key, hide the pages and open to them. */
START_TEST(batch_round_trip)
{
    struct sealer *tx = new_sealer(&key, "vm1"), *rx = new_sealer(&key, "vm1");
    struct batch_builder b;
    struct batch_view v;
    struct vmckpt_error err;
    Vmckpt__PageBatch m, d;
    uint64_t nums[BATCH_MAX_PAGES];
    uint8_t *buf;
    size_t len;
    int lz4;

    setup();
    for (lz4 = 0; lz4 <= 1; lz4++) {
        build_sealed(&b, &m, lz4, tx);
        ck_assert_uint_eq(m.nonce.len, BATCH_NONCE_BYTES);
        ck_assert_uint_eq(m.raw_len, 2 * BATCH_PAGE);
        len = vmckpt__page_batch__get_packed_size(&m);
        buf = malloc(len);
        vmckpt__page_batch__pack(&m, buf);
        ck_assert_ptr_null(memmem(buf, len, pattern, sizeof(pattern)));
        ck_assert_int_eq(batch_decode(buf, len, &d, nums, &err), 0);
        ck_assert_uint_eq(d.nonce.len, BATCH_NONCE_BYTES);
        ck_assert_mem_eq(d.nonce.data, m.nonce.data, BATCH_NONCE_BYTES);
        ck_assert_msg(batch_open(&d, 100, scratch, &v, &err) == 0, "%s",
                      err.text);
        ck_assert_int_eq(v.sealed, 1);
        ck_assert_ptr_null(v.data);
        ck_assert_uint_eq(v.n, 3);
        ck_assert_uint_eq(v.pages[2], 12);
        ck_assert_int_eq(batch_view_write(&v, -1, scratch), -1);
        ck_assert_int_eq(batch_open(&d, 12, scratch, &v, &err), -1);
        ck_assert_msg(sealer_open_batch(rx, &d, scratch, &v, &err) == 0, "%s",
                      err.text);
        ck_assert_int_eq(v.sealed, 0);
        ck_assert_uint_eq(v.n, 3);
        ck_assert_ptr_null(batch_view_page(&v, 1));
        ck_assert_mem_eq(batch_view_page(&v, 0), pages[0], BATCH_PAGE);
        ck_assert_mem_eq(batch_view_page(&v, 2), pages[2], BATCH_PAGE);
        free(buf);
        batch_builder_dispose(&b);
    }
    sealer_free(tx);
    sealer_free(rx);
}
END_TEST

/* The clear form does hold the pattern: the test above would see it. */
START_TEST(pattern_visible_in_clear)
{
    struct batch_builder b;
    Vmckpt__PageBatch m;

    setup();
    ck_assert_int_eq(batch_builder_init(&b, 0), 0);
    batch_reset(&b, 0);
    batch_add(&b, 1, pages[0]);
    vmckpt__page_batch__init(&m);
    batch_finish(&b, &m);
    ck_assert_ptr_nonnull(
        memmem(m.data.data, m.data.len, pattern, sizeof(pattern)));
    batch_builder_dispose(&b);
}
END_TEST

/* A batch of zero pages only is sealed too: its header is authenticated. */
START_TEST(batch_all_zero)
{
    struct sealer *s = new_sealer(&key, "vm1");
    struct batch_builder b;
    struct batch_view v;
    struct vmckpt_error err;
    Vmckpt__PageBatch m;

    setup();
    ck_assert_int_eq(batch_builder_init(&b, 1), 0);
    batch_reset(&b, 0);
    batch_add(&b, 5, pages[1]);
    batch_add(&b, 6, pages[1]);
    vmckpt__page_batch__init(&m);
    batch_finish(&b, &m);
    ck_assert_int_eq(sealer_batch(s, &m, &err), 0);
    ck_assert_uint_eq(m.data.len, BATCH_TAG_BYTES);
    ck_assert_int_eq(batch_open(&m, 100, scratch, &v, &err), 0);
    ck_assert_int_eq(sealer_open_batch(s, &m, scratch, &v, &err), 0);
    ck_assert_ptr_null(batch_view_page(&v, 0));
    ck_assert_ptr_null(batch_view_page(&v, 1));
    m.pages[1] = 7;
    rechecksum(&m);
    ck_assert_int_eq(sealer_open_batch(s, &m, scratch, &v, &err), -1);
    ck_assert_int_eq(sealer_batch(s, &m, &err), -1); /* sealed already */
    batch_builder_dispose(&b);
    sealer_free(s);
}
END_TEST

/* A flipped sealed byte fails the checksum; with the checksum made to
 * match (an attacker), the tag. */
START_TEST(batch_altered_data)
{
    struct sealer *s = new_sealer(&key, "vm1");
    struct batch_builder b;
    struct batch_view v;
    struct vmckpt_error err;
    Vmckpt__PageBatch m;
    static uint8_t copy[2 * BATCH_PAGE + BATCH_TAG_BYTES];
    int lz4;
    size_t at;

    setup();
    for (lz4 = 0; lz4 <= 1; lz4++) {
        build_sealed(&b, &m, lz4, s);
        memcpy(copy, m.data.data, m.data.len);
        m.data.data = copy;
        for (at = 0; at < m.data.len; at += m.data.len / 7 + 1) {
            copy[at] ^= 0x10;
            ck_assert_int_eq(batch_open(&m, 100, scratch, &v, &err), -1);
            ck_assert_ptr_nonnull(strstr(err.text, "checksum mismatch"));
            rechecksum(&m);
            ck_assert_int_eq(batch_open(&m, 100, scratch, &v, &err), 0);
            ck_assert_int_eq(sealer_open_batch(s, &m, scratch, &v, &err), -1);
            ck_assert_ptr_nonnull(strstr(err.text, "does not open"));
            copy[at] ^= 0x10;
            rechecksum(&m);
            ck_assert_int_eq(sealer_open_batch(s, &m, scratch, &v, &err), 0);
        }
        /* the tag itself */
        copy[m.data.len - 1] ^= 1;
        rechecksum(&m);
        ck_assert_int_eq(sealer_open_batch(s, &m, scratch, &v, &err), -1);
        batch_builder_dispose(&b);
    }
    sealer_free(s);
}
END_TEST

/* Header fields are authenticated: page numbers, round, raw_len, bitmap. */
START_TEST(batch_altered_header)
{
    struct sealer *s = new_sealer(&key, "vm1");
    struct batch_builder b;
    struct batch_view v;
    struct vmckpt_error err;
    Vmckpt__PageBatch m;
    uint8_t zero;

    setup();
    build_sealed(&b, &m, 0, s);
    m.pages[0] = 13;
    rechecksum(&m);
    ck_assert_int_eq(batch_open(&m, 100, scratch, &v, &err), 0);
    ck_assert_int_eq(sealer_open_batch(s, &m, scratch, &v, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "wrong key or altered"));
    m.pages[0] = 10;
    rechecksum(&m);
    ck_assert_int_eq(sealer_open_batch(s, &m, scratch, &v, &err), 0);
    m.round = 4;
    ck_assert_int_eq(sealer_open_batch(s, &m, scratch, &v, &err), -1);
    m.round = 3;
    /* page 0 said zero and page 1 not: lengths still agree */
    zero = m.zero.data[0];
    m.zero.data[0] = 0x1;
    rechecksum(&m);
    ck_assert_int_eq(batch_open(&m, 100, scratch, &v, &err), 0);
    ck_assert_int_eq(sealer_open_batch(s, &m, scratch, &v, &err), -1);
    m.zero.data[0] = zero;
    rechecksum(&m);
    ck_assert_int_eq(sealer_open_batch(s, &m, scratch, &v, &err), 0);
    /* a clear batch or a bad nonce is refused */
    m.nonce.len = 11;
    ck_assert_int_eq(batch_open(&m, 100, scratch, &v, &err), -1);
    ck_assert_int_eq(sealer_open_batch(s, &m, scratch, &v, &err), -1);
    m.nonce.len = 0;
    ck_assert_int_eq(sealer_open_batch(s, &m, scratch, &v, &err), -1);
    batch_builder_dispose(&b);
    sealer_free(s);
}
END_TEST

/* Another key, another VM, another job: nothing opens. */
START_TEST(batch_wrong_key_or_vm)
{
    struct sealer *s = new_sealer(&key, "vm1");
    struct sealer *other_vm = new_sealer(&key, "vm2"), *other_key, *other_job;
    struct seal_key k2;
    struct batch_builder b;
    struct batch_view v;
    struct vmckpt_error err;
    Vmckpt__PageBatch m;
    int lz4;

    setup();
    ck_assert_int_eq(seal_key_random(&k2, &err), 0);
    other_key = new_sealer(&k2, "vm1");
    other_job = sealer_new(&key, "job2", "vm1", &err);
    ck_assert_ptr_nonnull(other_job);
    for (lz4 = 0; lz4 <= 1; lz4++) {
        build_sealed(&b, &m, lz4, s);
        ck_assert_int_eq(sealer_open_batch(other_key, &m, scratch, &v, &err),
                         -1);
        ck_assert_ptr_nonnull(strstr(err.text, "sealed batch does not open"));
        ck_assert_int_eq(sealer_open_batch(other_vm, &m, scratch, &v, &err),
                         -1);
        ck_assert_int_eq(sealer_open_batch(other_job, &m, scratch, &v, &err),
                         -1);
        batch_builder_dispose(&b);
    }
    sealer_free(s);
    sealer_free(other_vm);
    sealer_free(other_key);
    sealer_free(other_job);
}
END_TEST

/* Keys are 32 bytes; two random keys differ. */
START_TEST(keys)
{
    struct seal_key a, b;
    struct vmckpt_error err;
    uint8_t raw[SEAL_KEY_BYTES + 1] = {1, 2, 3};

    ck_assert_int_eq(seal_key_from_bytes(raw, SEAL_KEY_BYTES, &a, &err), 0);
    ck_assert_mem_eq(a.k, raw, SEAL_KEY_BYTES);
    ck_assert_int_eq(seal_key_from_bytes(raw, sizeof(raw), &a, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "32 bytes"));
    ck_assert_int_eq(seal_key_from_bytes(raw, 16, &a, &err), -1);
    ck_assert_int_eq(seal_key_random(&a, &err), 0);
    ck_assert_int_eq(seal_key_random(&b, &err), 0);
    ck_assert_int_ne(memcmp(a.k, b.k, SEAL_KEY_BYTES), 0);
    sealer_free(NULL);
}
END_TEST

/* ---- device state ------------------------------------------------------ */

#define STATE_BYTES (1 + 5000 + 70001)
static const size_t chunk_len[3] = {5000, 1, 70001};
static uint8_t state[STATE_BYTES], got[STATE_BYTES];
static uint8_t *records;
static size_t rec_off[4]; /* where record i starts; [3] the total */

struct collect {
    uint64_t next;
    int calls;
};

static int collect(void *arg, uint64_t off, const void *data, size_t len)
{
    struct collect *c = arg;

    ck_assert_uint_eq(off, c->next);
    ck_assert_uint_le(off + len, STATE_BYTES);
    memcpy(got + off, data, len);
    c->next += len;
    c->calls++;
    return 0;
}

/* The three chunks of 'state' sealed into 'records'. */
static void seal_state(struct sealer *s)
{
    struct vmckpt_error err;
    const uint8_t *rec;
    size_t i, off = 0, rlen;

    for (i = 0; i < STATE_BYTES; i++)
        state[i] = (uint8_t)(i * 13 + (i >> 8));
    memcpy(state + 100, pattern, sizeof(pattern));
    free(records);
    records = malloc(STATE_BYTES + 3 * (SEAL_STATE_HEADER + 16));
    rec_off[0] = 0;
    for (i = 0; i < 3; i++) {
        ck_assert_msg(sealer_state(s, off, state + off, chunk_len[i], &rec,
                                   &rlen, &err) == 0,
                      "%s", err.text);
        ck_assert_uint_eq(rlen, SEAL_STATE_HEADER + chunk_len[i] + 16);
        ck_assert(seal_state_is_sealed(rec, rlen));
        memcpy(records + rec_off[i], rec, rlen);
        rec_off[i + 1] = rec_off[i] + rlen;
        off += chunk_len[i];
    }
}

/* Feed 'len' bytes of 'p' in pieces of 'piece'; the result of the feeds. */
static int feed(struct sealer *s, const uint8_t *p, size_t len, size_t piece,
                struct collect *c, struct vmckpt_error *err)
{
    size_t at, n;

    for (at = 0; at < len; at += n) {
        n = len - at < piece ? len - at : piece;
        if (sealer_state_feed(s, p + at, n, collect, c, err) < 0)
            return -1;
    }
    return 0;
}

/* Records fed back in pieces of any size give the state at its offsets. */
START_TEST(state_round_trip)
{
    static const size_t piece[] = {1, 7, 100000};
    struct sealer *tx = new_sealer(&key, "vm1"), *rx = new_sealer(&key, "vm1");
    struct vmckpt_error err;
    size_t i;

    setup();
    seal_state(tx);
    ck_assert_ptr_null(memmem(records, rec_off[3], pattern, sizeof(pattern)));
    ck_assert(!seal_state_is_sealed(state, sizeof(state)));
    ck_assert(!seal_state_is_sealed(records, 3));
    for (i = 0; i < 3; i++) {
        struct collect c = {0, 0};

        memset(got, 0, sizeof(got));
        ck_assert_msg(feed(rx, records, rec_off[3], piece[i], &c, &err) == 0,
                      "%s", err.text);
        ck_assert_msg(sealer_state_end(rx, &err) == 0, "%s", err.text);
        ck_assert_int_eq(c.calls, 3);
        ck_assert_uint_eq(c.next, STATE_BYTES);
        ck_assert_mem_eq(got, state, STATE_BYTES);
    }
    sealer_free(tx);
    sealer_free(rx);
}
END_TEST

/* A cut record, swapped records, another VM's records, a bad magic, and
 * sealing at a wrong offset are refused; the reader then starts anew. */
START_TEST(state_refused)
{
    struct sealer *tx = new_sealer(&key, "vm1"), *rx = new_sealer(&key, "vm1");
    struct sealer *other = new_sealer(&key, "vm2");
    struct vmckpt_error err;
    struct collect c = {0, 0};
    uint8_t *swapped;
    const uint8_t *rec;
    size_t rlen, l0, l1;

    setup();
    seal_state(tx);
    /* cut inside the last record, and inside a header */
    ck_assert_int_eq(feed(rx, records, rec_off[3] - 1, 7, &c, &err), 0);
    ck_assert_int_eq(sealer_state_end(rx, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "cut"));
    c.next = 0;
    ck_assert_int_eq(feed(rx, records, rec_off[1] + 5, 100000, &c, &err), 0);
    ck_assert_int_eq(sealer_state_end(rx, &err), -1);
    /* the first two records swapped */
    l0 = rec_off[1];
    l1 = rec_off[2] - rec_off[1];
    swapped = malloc(rec_off[3]);
    memcpy(swapped, records + l0, l1);
    memcpy(swapped + l1, records, l0);
    memcpy(swapped + l0 + l1, records + rec_off[2], rec_off[3] - rec_off[2]);
    c.next = 0;
    ck_assert_int_eq(feed(rx, swapped, rec_off[3], 100000, &c, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "does not open"));
    ck_assert_int_eq(sealer_state_feed(rx, records, 1, collect, &c, &err), -1);
    ck_assert_int_eq(sealer_state_end(rx, &err), -1);
    /* the reader starts again at 0 */
    c.next = 0;
    ck_assert_int_eq(feed(rx, records, rec_off[3], 1000, &c, &err), 0);
    ck_assert_int_eq(sealer_state_end(rx, &err), 0);
    /* another VM */
    c.next = 0;
    ck_assert_int_eq(feed(other, records, rec_off[3], 100000, &c, &err), -1);
    ck_assert_int_eq(sealer_state_end(other, &err), -1);
    /* a flipped byte in the second record's ciphertext, or magic */
    records[rec_off[1] + SEAL_STATE_HEADER] ^= 1;
    c.next = 0;
    ck_assert_int_eq(feed(rx, records, rec_off[3], 100000, &c, &err), -1);
    ck_assert_int_eq(sealer_state_end(rx, &err), -1);
    records[rec_off[1] + SEAL_STATE_HEADER] ^= 1;
    records[0] = 'X';
    c.next = 0;
    ck_assert_int_eq(feed(rx, records, rec_off[3], 3, &c, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "no record"));
    ck_assert_int_eq(sealer_state_end(rx, &err), -1);
    /* a length beyond the limit */
    records[0] = 'S';
    records[7] = 0x7f;
    c.next = 0;
    ck_assert_int_eq(feed(rx, records, 100, 100, &c, &err), -1);
    ck_assert_int_eq(sealer_state_end(rx, &err), -1);
    /* sealing at a wrong offset: not where the state ends */
    ck_assert_int_eq(sealer_state(tx, 10, state, 5, &rec, &rlen, &err), -1);
    ck_assert_int_eq(
        sealer_state(tx, STATE_BYTES + 1, state, 5, &rec, &rlen, &err), -1);
    ck_assert_int_eq(sealer_state(tx, STATE_BYTES, state, 5, &rec, &rlen, &err),
                     0);
    free(swapped);
    free(records);
    records = NULL;
    sealer_free(tx);
    sealer_free(rx);
    sealer_free(other);
}
END_TEST

/* A disk chunk sealed in place (as long as it was clear) opens only
 * with its disk, offset, VM and key, and not once a byte of it or of its
 * tag is altered. */
START_TEST(disk_chunk)
{
    static uint8_t clear[1u << 20], c[1u << 20];
    struct seal_key other = key;
    struct sealer *s = new_sealer(&key, "vm1"), *o = new_sealer(&key, "vm1"),
                  *vm2 = new_sealer(&key, "vm2"), *wrong;
    uint8_t seal[SEAL_DISK_BYTES];
    struct vmckpt_error err;
    const uint8_t *p;
    size_t i;

    other.k[0] ^= 1;
    wrong = new_sealer(&other, "vm1");
    for (i = 0; i < sizeof(clear); i++)
        clear[i] = (uint8_t)(i * 13 + (i >> 12));
    memcpy(c, clear, sizeof(c));
    ck_assert_int_eq(
        sealer_disk_chunk(s, 0, 1u << 20, c, sizeof(c), seal, &err), 0);
    ck_assert_int_ne(memcmp(c, clear, sizeof(c)), 0);
    ck_assert_ptr_null(
        sealer_open_disk_chunk(o, 0, 0, c, sizeof(c), seal, &err)); /* moved */
    ck_assert_ptr_nonnull(strstr(err.text, "does not open"));
    ck_assert_ptr_null(
        sealer_open_disk_chunk(o, 1, 1u << 20, c, sizeof(c), seal, &err));
    ck_assert_ptr_null(
        sealer_open_disk_chunk(vm2, 0, 1u << 20, c, sizeof(c), seal, &err));
    ck_assert_ptr_null(
        sealer_open_disk_chunk(wrong, 0, 1u << 20, c, sizeof(c), seal, &err));
    ck_assert_ptr_null(
        sealer_open_disk_chunk(o, 0, 1u << 20, c, sizeof(c) - 1, seal, &err));
    c[5000] ^= 1;
    ck_assert_ptr_null(
        sealer_open_disk_chunk(o, 0, 1u << 20, c, sizeof(c), seal, &err));
    c[5000] ^= 1;
    seal[SEAL_DISK_BYTES - 1] ^= 1;
    ck_assert_ptr_null(
        sealer_open_disk_chunk(o, 0, 1u << 20, c, sizeof(c), seal, &err));
    seal[SEAL_DISK_BYTES - 1] ^= 1;
    p = sealer_open_disk_chunk(o, 0, 1u << 20, c, sizeof(c), seal, &err);
    ck_assert_msg(p != NULL, "%s", err.text);
    ck_assert_mem_eq(p, clear, sizeof(clear));
    /* bounds: nothing, or more than a chunk */
    ck_assert_int_ne(sealer_disk_chunk(s, 0, 0, c, 0, seal, &err), 0);
    ck_assert_int_ne(
        sealer_disk_chunk(s, 0, 0, c, SEAL_DISK_MAX + 1, seal, &err), 0);
    sealer_free(s);
    sealer_free(o);
    sealer_free(vm2);
    sealer_free(wrong);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("seal");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, batch_round_trip);
    tcase_add_test(tc, pattern_visible_in_clear);
    tcase_add_test(tc, batch_all_zero);
    tcase_add_test(tc, batch_altered_data);
    tcase_add_test(tc, batch_altered_header);
    tcase_add_test(tc, batch_wrong_key_or_vm);
    tcase_add_test(tc, keys);
    tcase_add_test(tc, state_round_trip);
    tcase_add_test(tc, state_refused);
    tcase_add_test(tc, disk_chunk);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
