/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The simulated back end (scale tests only, docs/scale.md): its guests'
 * shape from a spec's name, and the lazy rate model. */
#include "config.h"

#include <check.h>
#include <string.h>
#include <unistd.h>

#include "agent/hv/hv_sim.h"
#include "lib/wire/batch.h"

START_TEST(sim_adopt_spec)
{
    /* the back end's adopt reads its config from the spec's name, and
     * refuses what it does not know */
    struct hv_vm_spec spec = {.name = "pages=128,hot=8+16,seed=3"};
    struct vmckpt_error err;
    struct hv_vm *vm;
    const uint8_t *ram;
    uint64_t len, bm[2] = {0, 0};

    vm = hv_sim_ops.vm_adopt(&spec, 1, &err);
    ck_assert_msg(vm != NULL, "%s", err.text);
    ck_assert_int_eq(hv_sim_ops.ram_map(vm, &ram, &len, &err), 0);
    ck_assert_uint_eq(len, 128 * BATCH_PAGE);
    ck_assert_int_eq(hv_sim_writes(vm, 40, &err), 0);
    ck_assert_int_ge(hv_sim_ops.dirty_harvest(vm, bm, &err), 1);
    /* only the hot set [8, 24) was written */
    ck_assert_uint_eq(bm[0] & ~(0xffffULL << 8), 0);
    ck_assert_uint_eq(bm[1], 0);
    hv_sim_ops.vm_release(vm);
    spec.name = "pages=128,colour=blue";
    ck_assert_ptr_null(hv_sim_ops.vm_adopt(&spec, 1, &err));
    ck_assert_ptr_nonnull(strstr(err.text, "colour=blue"));
    spec.name = "pages=16,hot=10+10";
    ck_assert_ptr_null(hv_sim_ops.vm_adopt(&spec, 1, &err));
}
END_TEST

START_TEST(sim_lazy_rate)
{
    /* a lazy simulated guest has no writer thread: the pages due at its
     * rate are written when it is harvested, none while it is paused, and
     * a restore target starts paused */
    struct hv_sim_config cfg;
    struct hv_sim_stats st;
    struct vmckpt_error err;
    struct hv_vm *vm;
    uint64_t bm[1] = {0};

    ck_assert_int_eq(hv_sim_parse("pages=64,rate=2000,lazy", &cfg, &err), 0);
    ck_assert_int_eq(cfg.lazy, 1);
    vm = hv_sim_create(&cfg, &err);
    ck_assert_msg(vm != NULL, "%s", err.text);
    usleep(20000); /* 40 writes due, at 2000 pages/s */
    ck_assert_int_ge(hv_sim_ops.dirty_harvest(vm, bm, &err), 16);
    ck_assert_int_eq(hv_sim_ops.pause(vm, &err), 0);
    ck_assert_int_ge(hv_sim_ops.dirty_harvest(vm, bm, &err), 0);
    usleep(20000);
    ck_assert_int_eq(hv_sim_ops.dirty_harvest(vm, bm, &err), 0);
    hv_sim_stats(vm, &st);
    ck_assert_int_eq(st.paused, 1);
    ck_assert_uint_ge(st.writes, 40);
    hv_sim_ops.vm_release(vm);
    ck_assert_int_eq(hv_sim_parse("pages=8,paused", &cfg, &err), 0);
    vm = hv_sim_create(&cfg, &err);
    hv_sim_stats(vm, &st);
    ck_assert_int_eq(st.paused, 1);
    hv_sim_ops.vm_release(vm);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sim");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sim_adopt_spec);
    tcase_add_test(tc, sim_lazy_rate);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
