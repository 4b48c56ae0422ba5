/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of store tickets: a ticket checks for exactly what it was
 * made for; every other operation, job, VM, epoch, host or key, a cut or
 * altered ticket, and names that would run into each other are refused;
 * each store host's key is its own. */
#include "config.h"

#include <check.h>
#include <string.h>

#include "lib/wire/ticket.h"

static uint8_t key[TICKET_KEY_LEN];

static void setup(void)
{
    size_t i;

    for (i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(i * 13 + 1);
}

START_TEST(checks_what_it_was_made_for)
{
    uint8_t t[TICKET_LEN];

    ck_assert_int_eq(ticket_make(key, TICKET_WRITE, "j1", "g1", 7, "h1", t), 0);
    ck_assert_int_eq(
        ticket_check(key, TICKET_WRITE, "j1", "g1", 7, "h1", t, sizeof(t)), 0);
}
END_TEST

START_TEST(binds_every_field)
{
    uint8_t t[TICKET_LEN], other[TICKET_KEY_LEN];

    memcpy(other, key, sizeof(other));
    other[31] ^= 1;
    ck_assert_int_eq(ticket_make(key, TICKET_WRITE, "j1", "g1", 7, "h1", t), 0);
    ck_assert_int_eq(
        ticket_check(key, TICKET_FETCH, "j1", "g1", 7, "h1", t, sizeof(t)), -1);
    ck_assert_int_eq(
        ticket_check(key, TICKET_WRITE, "j2", "g1", 7, "h1", t, sizeof(t)), -1);
    ck_assert_int_eq(
        ticket_check(key, TICKET_WRITE, "j1", "g2", 7, "h1", t, sizeof(t)), -1);
    ck_assert_int_eq(
        ticket_check(key, TICKET_WRITE, "j1", "g1", 8, "h1", t, sizeof(t)), -1);
    ck_assert_int_eq(
        ticket_check(key, TICKET_WRITE, "j1", "g1", 7, "h3", t, sizeof(t)), -1);
    ck_assert_int_eq(
        ticket_check(other, TICKET_WRITE, "j1", "g1", 7, "h1", t, sizeof(t)),
        -1);
}
END_TEST

START_TEST(cut_altered_or_missing)
{
    uint8_t t[TICKET_LEN];

    ck_assert_int_eq(ticket_make(key, TICKET_FETCH, "j1", "g1", 7, "h1", t), 0);
    ck_assert_int_eq(
        ticket_check(key, TICKET_FETCH, "j1", "g1", 7, "h1", t, sizeof(t) - 1),
        -1);
    ck_assert_int_eq(
        ticket_check(key, TICKET_FETCH, "j1", "g1", 7, "h1", NULL, 0), -1);
    t[5] ^= 0x40;
    ck_assert_int_eq(
        ticket_check(key, TICKET_FETCH, "j1", "g1", 7, "h1", t, sizeof(t)), -1);
}
END_TEST

/* "j1" + "g12" is not "j1g" + "12": lengths keep names apart */
START_TEST(names_do_not_run_together)
{
    uint8_t a[TICKET_LEN], b[TICKET_LEN];
    char longname[300];

    ck_assert_int_eq(ticket_make(key, TICKET_WRITE, "j1", "g12", 1, "h", a), 0);
    ck_assert_int_eq(ticket_make(key, TICKET_WRITE, "j1g", "12", 1, "h", b), 0);
    ck_assert(memcmp(a, b, TICKET_LEN) != 0);
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ck_assert_int_eq(ticket_make(key, TICKET_WRITE, longname, "g", 1, "h", a),
                     -1);
    ck_assert_int_eq(
        ticket_check(key, TICKET_WRITE, longname, "g", 1, "h", a, sizeof(a)),
        -1);
    ck_assert_str_eq(ticket_op_name(TICKET_FETCH), "fetch");
}
END_TEST

/* one key per store host, the same every time for one secret */
START_TEST(host_keys)
{
    uint8_t a[TICKET_KEY_LEN], b[TICKET_KEY_LEN], c[TICKET_KEY_LEN];
    uint8_t other[TICKET_KEY_LEN];

    memcpy(other, key, sizeof(other));
    other[0] ^= 1;
    ck_assert_int_eq(ticket_key_derive(key, "h1", a), 0);
    ck_assert_int_eq(ticket_key_derive(key, "h1", b), 0);
    ck_assert(memcmp(a, b, sizeof(a)) == 0);
    ck_assert_int_eq(ticket_key_derive(key, "h2", b), 0);
    ck_assert(memcmp(a, b, sizeof(a)) != 0);
    ck_assert_int_eq(ticket_key_derive(other, "h1", c), 0);
    ck_assert(memcmp(a, c, sizeof(a)) != 0);
    ck_assert(memcmp(a, key, sizeof(a)) != 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ticket");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, checks_what_it_was_made_for);
    tcase_add_test(tc, binds_every_field);
    tcase_add_test(tc, cut_altered_or_missing);
    tcase_add_test(tc, names_do_not_run_together);
    tcase_add_test(tc, host_keys);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
