/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of page batches: round trip with zero pages, LZ4, and every
 * corruption the receiver must refuse; the decoder without a copy agrees
 * with protobuf-c's on every batch and refuses every cut or bad encoding;
 * runs of pages land where they belong. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/wire/batch.h"

static uint8_t pages[3][BATCH_PAGE];
static uint8_t scratch[BATCH_MAX_PAGES * BATCH_PAGE];

static void make_pages(void)
{
    size_t i;

    memset(pages, 0, sizeof(pages));
    for (i = 0; i < BATCH_PAGE; i++)
        pages[0][i] = (uint8_t)(i * 7);
    /* page 1 stays zero */
    memset(pages[2], 'x', BATCH_PAGE); /* compresses well */
}

static void build(struct batch_builder *b, Vmckpt__PageBatch *m, int lz4)
{
    ck_assert_int_eq(batch_builder_init(b, lz4), 0);
    batch_reset(b, 3);
    ck_assert_int_eq(batch_add(b, 10, pages[0]), 0);
    ck_assert_int_eq(batch_add(b, 11, pages[1]), 0);
    ck_assert_int_eq(batch_add(b, 12, pages[2]), 0);
    vmckpt__page_batch__init(m);
    batch_finish(b, m);
}

/* Pages come back as sent; zero pages carry no data. */
START_TEST(round_trip)
{
    struct batch_builder b;
    struct batch_view v;
    struct vmckpt_error err;
    Vmckpt__PageBatch m;
    int lz4;

    make_pages();
    for (lz4 = 0; lz4 <= 1; lz4++) {
        build(&b, &m, lz4);
        ck_assert_int_eq(m.lz4, lz4);
        ck_assert_uint_eq(m.raw_len, 2 * BATCH_PAGE);
        if (lz4)
            ck_assert_uint_lt(m.data.len, m.raw_len);
        ck_assert_int_eq(batch_open(&m, 100, scratch, &v, &err), 0);
        ck_assert_uint_eq(v.n, 3);
        ck_assert_uint_eq(v.pages[1], 11);
        ck_assert_ptr_null(batch_view_page(&v, 1));
        ck_assert_mem_eq(batch_view_page(&v, 0), pages[0], BATCH_PAGE);
        ck_assert_mem_eq(batch_view_page(&v, 2), pages[2], BATCH_PAGE);
        batch_builder_dispose(&b);
    }
}
END_TEST

/* A flipped bit anywhere, a page number out of range, or inconsistent
 * lengths are refused. */
START_TEST(corruption)
{
    struct batch_builder b;
    struct batch_view v;
    struct vmckpt_error err;
    Vmckpt__PageBatch m;
    uint8_t copy[2 * BATCH_PAGE];

    make_pages();
    build(&b, &m, 0);
    memcpy(copy, m.data.data, m.data.len);
    m.data.data = copy;
    copy[5000] ^= 1;
    ck_assert_int_eq(batch_open(&m, 100, scratch, &v, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "checksum mismatch"));
    copy[5000] ^= 1;
    ck_assert_int_eq(batch_open(&m, 100, scratch, &v, &err), 0);
    ck_assert_int_eq(batch_open(&m, 12, scratch, &v, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "beyond the guest"));
    m.raw_len = BATCH_PAGE;
    ck_assert_int_eq(batch_open(&m, 100, scratch, &v, &err), -1);
    batch_builder_dispose(&b);

    build(&b, &m, 1);
    memcpy(copy, m.data.data, m.data.len);
    m.data.data = copy;
    copy[m.data.len / 2] ^= 0x40;
    ck_assert_int_eq(batch_open(&m, 100, scratch, &v, &err), -1);
    batch_builder_dispose(&b);
}
END_TEST

/* batch_decode reads what protobuf-c packs, fields in any order and
 * unknown ones skipped, with pointers into the buffer; every prefix of a
 * batch and a bad wire type are refused. */
START_TEST(decode)
{
    struct batch_builder b;
    struct batch_view v;
    struct vmckpt_error err;
    Vmckpt__PageBatch m, d, *ref;
    uint64_t nums[BATCH_MAX_PAGES];
    uint8_t *buf, extra[2 * BATCH_PAGE + 64];
    size_t len, cut;
    int lz4;

    make_pages();
    for (lz4 = 0; lz4 <= 1; lz4++) {
        build(&b, &m, lz4);
        len = vmckpt__page_batch__get_packed_size(&m);
        buf = malloc(len);
        vmckpt__page_batch__pack(&m, buf);
        ref = vmckpt__page_batch__unpack(NULL, len, buf);
        ck_assert_ptr_nonnull(ref);
        ck_assert_int_eq(batch_decode(buf, len, &d, nums, &err), 0);
        ck_assert_uint_eq(d.round, ref->round);
        ck_assert_uint_eq(d.n_pages, ref->n_pages);
        ck_assert_mem_eq(d.pages, ref->pages, d.n_pages * sizeof(uint64_t));
        ck_assert_uint_eq(d.zero.len, ref->zero.len);
        ck_assert_mem_eq(d.zero.data, ref->zero.data, d.zero.len);
        ck_assert_uint_eq(d.data.len, ref->data.len);
        ck_assert_int_eq(d.data.data >= buf && d.data.data < buf + len, 1);
        ck_assert_mem_eq(d.data.data, ref->data.data, d.data.len);
        ck_assert_int_eq(d.lz4, ref->lz4);
        ck_assert_uint_eq(d.raw_len, ref->raw_len);
        ck_assert_uint_eq(d.xxh64, ref->xxh64);
        ck_assert_int_eq(batch_open(&d, 100, scratch, &v, &err), 0);
        ck_assert_mem_eq(batch_view_page(&v, 2), pages[2], BATCH_PAGE);
        /* an unknown field first (fixed64 field 9, then bytes field 10) */
        extra[0] = 9 << 3 | 1;
        memset(extra + 1, 7, 8);
        extra[9] = 10 << 3 | 2;
        extra[10] = 2;
        extra[11] = extra[12] = 0;
        ck_assert_uint_le(len + 13, sizeof(extra));
        memcpy(extra + 13, buf, len);
        ck_assert_int_eq(batch_decode(extra, len + 13, &d, nums, &err), 0);
        ck_assert_int_eq(batch_open(&d, 100, scratch, &v, &err), 0);
        /* every cut inside a field is refused by the decoder or the
         * checks; none is read past its end */
        for (cut = 0; cut < len; cut++) {
            uint8_t *p = malloc(cut ? cut : 1);

            memcpy(p, buf, cut);
            ck_assert_int_eq(batch_decode(p, cut, &d, nums, &err) < 0 ||
                                 batch_open(&d, 100, scratch, &v, &err) < 0,
                             1);
            free(p);
        }
        /* wire types 3 and 4 (groups) are not ours */
        extra[0] = 1 << 3 | 3;
        ck_assert_int_eq(batch_decode(extra, 1, &d, nums, &err), -1);
        ck_assert_ptr_nonnull(strstr(err.text, "bad encoding"));
        vmckpt__page_batch__free_unpacked(ref, NULL);
        free(buf);
        batch_builder_dispose(&b);
    }
}
END_TEST

/* A sealed batch (nonce set) as protobuf-c packs it decodes in place with
 * its nonce; batch_open checks it without a key, checksum over the sealed
 * bytes, and gives a view without contents. */
START_TEST(decode_sealed)
{
    static uint8_t sealed[2 * BATCH_PAGE + BATCH_TAG_BYTES];
    uint8_t nonce[BATCH_NONCE_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    struct batch_builder b;
    struct batch_view v;
    struct vmckpt_error err;
    Vmckpt__PageBatch m, d, *ref;
    uint64_t nums[BATCH_MAX_PAGES];
    uint8_t *buf;
    size_t len, i;

    make_pages();
    build(&b, &m, 0);
    /* stand-in ciphertext and tag: batch.c does not look inside */
    memset(sealed, 0x5a, sizeof(sealed));
    m.data.data = sealed;
    m.data.len = sizeof(sealed);
    m.nonce.data = nonce;
    m.nonce.len = sizeof(nonce);
    m.xxh64 = batch_checksum(m.pages, m.n_pages, m.zero.data, m.zero.len,
                             sealed, sizeof(sealed));
    len = vmckpt__page_batch__get_packed_size(&m);
    buf = malloc(len);
    vmckpt__page_batch__pack(&m, buf);
    ref = vmckpt__page_batch__unpack(NULL, len, buf);
    ck_assert_ptr_nonnull(ref);
    ck_assert_int_eq(batch_decode(buf, len, &d, nums, &err), 0);
    ck_assert_uint_eq(d.nonce.len, ref->nonce.len);
    ck_assert_mem_eq(d.nonce.data, nonce, sizeof(nonce));
    ck_assert_int_eq(d.nonce.data >= buf && d.nonce.data < buf + len, 1);
    ck_assert_uint_eq(d.data.len, sizeof(sealed));
    ck_assert_msg(batch_open(&d, 100, scratch, &v, &err) == 0, "%s", err.text);
    ck_assert_int_eq(v.sealed, 1);
    ck_assert_ptr_null(v.data);
    ck_assert_uint_eq(v.n, 3);
    ck_assert_uint_eq(v.pages[2], 12);
    for (i = 0; i < v.n; i++)
        ck_assert_ptr_null(batch_view_page(&v, i));
    ck_assert_int_eq(batch_view_write(&v, -1, scratch), -1);
    ck_assert_int_eq(batch_open(&d, 12, scratch, &v, &err), -1);
    /* a flipped sealed byte fails the checksum */
    ((uint8_t *)d.data.data)[100] ^= 1;
    ck_assert_int_eq(batch_open(&d, 100, scratch, &v, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "checksum mismatch"));
    ((uint8_t *)d.data.data)[100] ^= 1;
    /* a nonce of another size, data not raw_len plus the tag */
    d.nonce.len = 11;
    ck_assert_int_eq(batch_open(&d, 100, scratch, &v, &err), -1);
    d.nonce.len = BATCH_NONCE_BYTES;
    d.data.len--;
    ck_assert_int_eq(batch_open(&d, 100, scratch, &v, &err), -1);
    d.data.len = BATCH_TAG_BYTES - 1;
    d.lz4 = 1;
    ck_assert_int_eq(batch_open(&d, 100, scratch, &v, &err), -1);
    /* a clear batch after a sealed one: a view with contents again */
    batch_builder_dispose(&b);
    build(&b, &m, 0);
    ck_assert_int_eq(batch_open(&m, 100, scratch, &v, &err), 0);
    ck_assert_int_eq(v.sealed, 0);
    ck_assert_mem_eq(batch_view_page(&v, 0), pages[0], BATCH_PAGE);
    vmckpt__page_batch__free_unpacked(ref, NULL);
    free(buf);
    batch_builder_dispose(&b);
}
END_TEST

/* A batch of zero pages only has no data field at all: it decodes and
 * opens, and a wrong checksum is refused with a reason. */
START_TEST(all_zero)
{
    struct batch_builder b;
    struct batch_view v;
    struct vmckpt_error err;
    Vmckpt__PageBatch m, d;
    uint64_t nums[BATCH_MAX_PAGES];
    uint8_t buf[64];
    size_t len;

    make_pages();
    ck_assert_int_eq(batch_builder_init(&b, 1), 0);
    batch_reset(&b, 0);
    batch_add(&b, 4, pages[1]);
    batch_add(&b, 5, pages[1]);
    vmckpt__page_batch__init(&m);
    batch_finish(&b, &m);
    ck_assert_uint_eq(m.data.len, 0);
    len = vmckpt__page_batch__get_packed_size(&m);
    ck_assert_uint_le(len, sizeof(buf));
    vmckpt__page_batch__pack(&m, buf);
    ck_assert_int_eq(batch_decode(buf, len, &d, nums, &err), 0);
    ck_assert_ptr_null(d.data.data);
    ck_assert_int_eq(batch_open(&d, 100, scratch, &v, &err), 0);
    ck_assert_ptr_null(batch_view_page(&v, 1));
    d.xxh64++;
    err.text[0] = '\0';
    ck_assert_int_eq(batch_open(&d, 100, scratch, &v, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "checksum mismatch"));
    batch_builder_dispose(&b);
}
END_TEST

/* batch_view_write puts runs and single pages, zero or not, in place. */
START_TEST(write_runs)
{
    static const uint64_t nums[] = {3, 4, 5, 9, 10, 20};
    static uint8_t zero[BATCH_PAGE], out[24 * BATCH_PAGE];
    struct batch_builder b;
    struct batch_view v;
    struct vmckpt_error err;
    Vmckpt__PageBatch m;
    char path[] = "/tmp/batch_test.XXXXXX";
    int fd = mkstemp(path);
    size_t i;

    ck_assert_int_ge(fd, 0);
    unlink(path);
    make_pages();
    ck_assert_int_eq(batch_builder_init(&b, 0), 0);
    batch_reset(&b, 0);
    for (i = 0; i < 6; i++)
        batch_add(&b, nums[i], pages[i % 3]);
    vmckpt__page_batch__init(&m);
    batch_finish(&b, &m);
    ck_assert_int_eq(batch_open(&m, 24, scratch, &v, &err), 0);
    memset(out, 0xee, sizeof(out));
    ck_assert_int_eq(pwrite(fd, out, sizeof(out), 0), (ssize_t)sizeof(out));
    ck_assert_int_eq(batch_view_write(&v, fd, zero), 0);
    ck_assert_int_eq(pread(fd, out, sizeof(out), 0), (ssize_t)sizeof(out));
    for (i = 0; i < 6; i++)
        ck_assert_mem_eq(out + nums[i] * BATCH_PAGE, pages[i % 3], BATCH_PAGE);
    ck_assert_uint_eq(out[6 * BATCH_PAGE], 0xee); /* not in the batch */
    ck_assert_uint_eq(out[19 * BATCH_PAGE + 4095], 0xee);
    close(fd);
    batch_builder_dispose(&b);
}
END_TEST

/* A batch is full at BATCH_MAX_PAGES. */
START_TEST(full)
{
    struct batch_builder b;
    unsigned i;

    make_pages();
    ck_assert_int_eq(batch_builder_init(&b, 0), 0);
    batch_reset(&b, 0);
    for (i = 0; i + 1 < BATCH_MAX_PAGES; i++)
        ck_assert_int_eq(batch_add(&b, i, pages[i % 3]), 0);
    ck_assert_int_eq(batch_add(&b, i, pages[0]), 1);
    batch_builder_dispose(&b);
}
END_TEST

/* Zero tests of any length: a disk chunk's tail is not whole pages. */
START_TEST(zero_bytes)
{
    static uint8_t buf[(1u << 20) + 7];

    ck_assert(batch_bytes_are_zero(buf, 0));
    ck_assert(batch_bytes_are_zero(buf, sizeof(buf)));
    buf[sizeof(buf) - 1] = 1;
    ck_assert(!batch_bytes_are_zero(buf, sizeof(buf)));
    ck_assert(batch_bytes_are_zero(buf, sizeof(buf) - 1));
    buf[0] = 2;
    ck_assert(!batch_bytes_are_zero(buf, 1));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("batch");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, corruption);
    tcase_add_test(tc, full);
    tcase_add_test(tc, decode);
    tcase_add_test(tc, decode_sealed);
    tcase_add_test(tc, all_zero);
    tcase_add_test(tc, write_runs);
    tcase_add_test(tc, zero_bytes);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
