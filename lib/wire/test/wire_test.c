/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of the wire: framing, envelope checks and every kind of bad
 * input the decoder must refuse with a clear error. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/wire/wire.h"

/* A connected non-blocking pair: [0] is read through a wire_conn. */
static void pair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
}

static void put_u32(uint8_t *p, uint32_t n)
{
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
}

/* Frame an arbitrary envelope (which may break the rules on purpose). */
static size_t frame_env(const Vmckpt__Envelope *env, uint8_t *buf)
{
    size_t n = vmckpt__envelope__get_packed_size(env);

    put_u32(buf, (uint32_t)n);
    vmckpt__envelope__pack(env, buf + 4);
    return n + 4;
}

/* Read everything available and take the next frame. */
static int next(struct wire_conn *c, Vmckpt__Envelope **env,
                enum wire_fault *fault, struct vmckpt_error *err)
{
    (void)wire_conn_fill(c, NULL);
    return wire_conn_next(c, env, fault, err);
}

/* Every type in the table encodes and decodes to itself. */
START_TEST(table_round_trip)
{
    Vmckpt__HostsQuery q = VMCKPT__HOSTS_QUERY__INIT;
    Vmckpt__Error e = VMCKPT__ERROR__INIT;
    struct vmckpt_error err;
    enum wire_fault fault;
    Vmckpt__Envelope *env;
    uint8_t *buf;
    size_t len;
    int t, known = 0;

    for (t = 0; t < 100; t++) {
        const struct wire_type *wt = wire_type_lookup(t);

        if (wt == NULL)
            continue;
        known++;
        ck_assert_int_eq((int)wt->type, t);
        ck_assert_ptr_nonnull(protobuf_c_message_descriptor_get_field(
            &vmckpt__envelope__descriptor, (unsigned)t));
    }
    /* every MsgType but MSG_NONE has its entry, and nothing else has one */
    ck_assert_int_eq(known, (int)vmckpt__msg_type__descriptor.n_values - 1);
    ck_assert_int_eq(known, 54);
    ck_assert_str_eq(wire_type_name(999), "type 999");

    ck_assert_int_eq(wire_encode(VMCKPT__MSG_TYPE__MSG_HOSTS_QUERY, 42, &q,
                                 &buf, &len, &err),
                     0);
    env = wire_decode(buf + 4, len - 4, &fault, &err);
    ck_assert_ptr_nonnull(env);
    ck_assert_int_eq(env->type, VMCKPT__MSG_TYPE__MSG_HOSTS_QUERY);
    ck_assert_uint_eq(env->request_id, 42);
    ck_assert_ptr_nonnull(wire_payload(env));
    wire_free(env);
    free(buf);

    /* a payload of the wrong message type is refused at encode time */
    ck_assert_int_eq(
        wire_encode(VMCKPT__MSG_TYPE__MSG_HOSTS_QUERY, 1, &e, &buf, &len, &err),
        -1);
    ck_assert_ptr_nonnull(strstr(err.text, "payload is a"));
}
END_TEST

/* A frame delivered one byte at a time comes out whole, once. */
START_TEST(partial_delivery)
{
    Vmckpt__Error e = VMCKPT__ERROR__INIT;
    struct vmckpt_error err;
    struct wire_conn c;
    enum wire_fault fault;
    Vmckpt__Envelope *env;
    uint8_t *buf;
    size_t len, i;
    int sv[2];

    pair(sv);
    wire_conn_init(&c, sv[0], 0);
    e.code = VMCKPT__ERROR_CODE__ERR_BUSY;
    e.text = "busy now";
    ck_assert_int_eq(
        wire_encode(VMCKPT__MSG_TYPE__MSG_ERROR, 7, &e, &buf, &len, &err), 0);
    for (i = 0; i < len; i++) {
        ck_assert_int_eq(write(sv[1], buf + i, 1), 1);
        if (i + 1 < len)
            ck_assert_int_eq(next(&c, &env, &fault, &err), 0);
    }
    ck_assert_int_eq(next(&c, &env, &fault, &err), 1);
    ck_assert_str_eq(env->error->text, "busy now");
    ck_assert_int_eq(env->error->code, VMCKPT__ERROR_CODE__ERR_BUSY);
    wire_free(env);
    ck_assert_int_eq(next(&c, &env, &fault, &err), 0);
    free(buf);
    wire_conn_dispose(&c);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* A length prefix above the maximum is refused before any body is read. */
START_TEST(oversized_length)
{
    struct vmckpt_error err;
    struct wire_conn c;
    enum wire_fault fault;
    Vmckpt__Envelope *env;
    uint8_t hdr[4];
    int sv[2];

    pair(sv);
    wire_conn_init(&c, sv[0], 4096);
    put_u32(hdr, 4097);
    ck_assert_int_eq(write(sv[1], hdr, 4), 4);
    ck_assert_int_eq(next(&c, &env, &fault, &err), -1);
    ck_assert_int_eq(fault, WIRE_EPROTO);
    ck_assert_int_eq(errno, EMSGSIZE);
    ck_assert_ptr_nonnull(strstr(err.text, "exceeds the maximum"));
    wire_conn_dispose(&c);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* A stream that ends inside a frame yields no message and reports EOF. */
START_TEST(truncated_frame)
{
    Vmckpt__HostsQuery q = VMCKPT__HOSTS_QUERY__INIT;
    struct vmckpt_error err;
    struct wire_conn c;
    enum wire_fault fault;
    Vmckpt__Envelope *env;
    uint8_t *buf;
    size_t len;
    int sv[2];

    pair(sv);
    wire_conn_init(&c, sv[0], 0);
    ck_assert_int_eq(
        wire_encode(VMCKPT__MSG_TYPE__MSG_HOSTS_QUERY, 3, &q, &buf, &len, &err),
        0);
    ck_assert_int_eq(write(sv[1], buf, len - 1), (ssize_t)(len - 1));
    close(sv[1]);
    ck_assert_int_eq(next(&c, &env, &fault, &err), 0);
    ck_assert(c.eof);
    ck_assert_uint_gt(c.rlen, 0);
    ck_assert_int_eq(wire_conn_recv_wait(&c, &env, 100, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "closed"));
    free(buf);
    wire_conn_dispose(&c);
    close(sv[0]);
}
END_TEST

/* Bytes that are not a protobuf Envelope are refused as malformed. */
START_TEST(garbage_protobuf)
{
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x07};
    struct vmckpt_error err;
    enum wire_fault fault;

    ck_assert_ptr_null(wire_decode(junk, sizeof(junk), &fault, &err));
    ck_assert_int_eq(fault, WIRE_EPROTO);
    ck_assert_ptr_nonnull(strstr(err.text, "malformed envelope"));
}
END_TEST

/* Another protocol version is refused and the error names both. */
START_TEST(wrong_version)
{
    Vmckpt__Envelope env = VMCKPT__ENVELOPE__INIT;
    Vmckpt__HostsQuery q = VMCKPT__HOSTS_QUERY__INIT;
    struct vmckpt_error err;
    enum wire_fault fault;
    uint8_t buf[256];
    size_t n;

    env.version = WIRE_VERSION + 1;
    env.type = VMCKPT__MSG_TYPE__MSG_HOSTS_QUERY;
    env.payload_case = VMCKPT__ENVELOPE__PAYLOAD_HOSTS_QUERY;
    env.hosts_query = &q;
    n = frame_env(&env, buf);
    ck_assert_ptr_null(wire_decode(buf + 4, n - 4, &fault, &err));
    ck_assert_int_eq(fault, WIRE_EVERSION);
    ck_assert_ptr_nonnull(strstr(err.text, "version 2 not supported"));
}
END_TEST

/* A type number outside the table is refused as unknown. */
START_TEST(unknown_type)
{
    Vmckpt__Envelope env = VMCKPT__ENVELOPE__INIT;
    struct vmckpt_error err;
    enum wire_fault fault;
    uint8_t buf[256];
    size_t n;

    env.version = WIRE_VERSION;
    env.type = (Vmckpt__MsgType)99;
    n = frame_env(&env, buf);
    ck_assert_ptr_null(wire_decode(buf + 4, n - 4, &fault, &err));
    ck_assert_int_eq(fault, WIRE_ETYPE);
    ck_assert_ptr_nonnull(strstr(err.text, "unknown message type 99"));
}
END_TEST

/* A type whose payload is missing, or is another type's, is refused. */
START_TEST(payload_mismatch)
{
    Vmckpt__Envelope env = VMCKPT__ENVELOPE__INIT;
    Vmckpt__HostsQuery q = VMCKPT__HOSTS_QUERY__INIT;
    struct vmckpt_error err;
    enum wire_fault fault;
    uint8_t buf[256];
    size_t n;

    env.version = WIRE_VERSION;
    env.type = VMCKPT__MSG_TYPE__MSG_HEARTBEAT;
    n = frame_env(&env, buf);
    ck_assert_ptr_null(wire_decode(buf + 4, n - 4, &fault, &err));
    ck_assert_ptr_nonnull(strstr(err.text, "no payload"));

    env.payload_case = VMCKPT__ENVELOPE__PAYLOAD_HOSTS_QUERY;
    env.hosts_query = &q;
    n = frame_env(&env, buf);
    ck_assert_ptr_null(wire_decode(buf + 4, n - 4, &fault, &err));
    ck_assert_int_eq(fault, WIRE_EPROTO);
    ck_assert_ptr_nonnull(strstr(err.text, "payload of another type"));
}
END_TEST

/* Queued frames are all written by flush, in order. */
/* wire_peek_batch finds a page batch's bytes in its envelope, and leaves
 * every other frame (another type, another version, cut short) to the
 * decoder. */
START_TEST(peek_batch)
{
    uint64_t pages[2] = {5, 6}, rid;
    uint8_t zero = 0, data[8] = "abcdefg", *buf, *packed;
    Vmckpt__PageBatch b = VMCKPT__PAGE_BATCH__INIT;
    Vmckpt__Error e = VMCKPT__ERROR__INIT;
    struct vmckpt_error err;
    const uint8_t *raw;
    size_t len, raw_len, plen;

    b.n_pages = 2;
    b.pages = pages;
    b.zero.data = &zero;
    b.zero.len = 1;
    b.data.data = data;
    b.data.len = sizeof(data);
    b.xxh64 = 99;
    ck_assert_int_eq(
        wire_encode(VMCKPT__MSG_TYPE__MSG_PAGE_BATCH, 77, &b, &buf, &len, &err),
        0);
    ck_assert_int_eq(wire_peek_batch(buf + 4, len - 4, &rid, &raw, &raw_len),
                     1);
    ck_assert_uint_eq(rid, 77);
    ck_assert_int_eq(wire_pack(&b, &packed, &plen, &err), 0);
    ck_assert_uint_eq(raw_len, plen);
    ck_assert_mem_eq(raw, packed, plen);
    ck_assert_int_eq(wire_peek_batch(buf + 4, len - 5, &rid, &raw, &raw_len),
                     0);
    buf[5] = 2; /* version 2 */
    ck_assert_int_eq(wire_peek_batch(buf + 4, len - 4, &rid, &raw, &raw_len),
                     0);
    free(buf);
    free(packed);
    e.text = "no";
    ck_assert_int_eq(
        wire_encode(VMCKPT__MSG_TYPE__MSG_ERROR, 7, &e, &buf, &len, &err), 0);
    ck_assert_int_eq(wire_peek_batch(buf + 4, len - 4, &rid, &raw, &raw_len),
                     0);
    free(buf);
}
END_TEST

START_TEST(send_and_flush)
{
    Vmckpt__Heartbeat hb = VMCKPT__HEARTBEAT__INIT;
    struct vmckpt_error err;
    struct wire_conn w, r;
    Vmckpt__Envelope *env;
    int sv[2], i;

    pair(sv);
    wire_conn_init(&w, sv[1], 0);
    wire_conn_init(&r, sv[0], 0);
    for (i = 1; i <= 100; i++) {
        hb.seq = (uint64_t)i;
        ck_assert_int_eq(
            wire_conn_send(&w, VMCKPT__MSG_TYPE__MSG_HEARTBEAT, 0, &hb, &err),
            0);
    }
    ck_assert(wire_conn_pending(&w));
    ck_assert_int_eq(wire_conn_flush_wait(&w, 1000, &err), 0);
    ck_assert(!wire_conn_pending(&w));
    for (i = 1; i <= 100; i++) {
        ck_assert_int_eq(wire_conn_recv_wait(&r, &env, 1000, &err), 0);
        ck_assert_uint_eq(env->heartbeat->seq, (uint64_t)i);
        wire_free(env);
    }
    wire_conn_dispose(&w);
    wire_conn_dispose(&r);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, table_round_trip);
    tcase_add_test(tc, partial_delivery);
    tcase_add_test(tc, oversized_length);
    tcase_add_test(tc, truncated_frame);
    tcase_add_test(tc, garbage_protobuf);
    tcase_add_test(tc, wrong_version);
    tcase_add_test(tc, unknown_type);
    tcase_add_test(tc, payload_mismatch);
    tcase_add_test(tc, peek_batch);
    tcase_add_test(tc, send_and_flush);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
