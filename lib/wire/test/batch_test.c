/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of page batches: round trip with zero pages, LZ4, and every
 * corruption the receiver must refuse. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
    Suite *s = suite_create("batch");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, corruption);
    tcase_add_test(tc, full);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
