/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of the cluster key and the handshake: right key, wrong key on
 * either side, replayed handshake, key file permissions. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/wire/auth.h"

static void make_key(struct auth_key *k, uint8_t fill)
{
    uint8_t b[48];

    memset(b, fill, sizeof(b));
    ck_assert_int_eq(auth_key_set(k, b, sizeof(b)), 0);
}

/* Frames the server received, re-encoded, for the replay test. */
struct capture {
    uint8_t *frame[4];
    size_t len[4];
    int n;
};

/* How long either side waits for the other: a bound for failures only
 * (a forked sanitizer build on a loaded machine may take seconds). */
#define WAIT_MS 20000

static void record(struct capture *cap, const Vmckpt__Envelope *env)
{
    struct vmckpt_error err;

    ck_assert_int_lt(cap->n, 4);
    ck_assert_int_eq(wire_encode((int)env->type, env->request_id,
                                 wire_payload(env), &cap->frame[cap->n],
                                 &cap->len[cap->n], &err),
                     0);
    cap->n++;
}

/* Run the server side against a forked client; returns the server's step
 * result and the client's exit status (0 = client authenticated). */
static int handshake(const struct auth_key *ckey, const struct auth_key *skey,
                     struct capture *cap, int *client_status, char *server_err,
                     size_t elen)
{
    struct auth_server as;
    struct wire_conn c;
    struct vmckpt_error err;
    Vmckpt__Envelope *env;
    int sv[2], rc = 0;
    pid_t pid;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct wire_conn cc;

        close(sv[0]);
        wire_conn_init(&cc, sv[1], 0);
        _exit(auth_client(&cc, ckey, VMCKPT__ROLE__ROLE_AGENT, "host-1",
                          WAIT_MS, NULL, 0, &err) == 0
                  ? 0
                  : 1);
    }
    close(sv[1]);
    wire_conn_init(&c, sv[0], 0);
    auth_server_init(&as, skey, "coord");
    server_err[0] = '\0';
    while (rc == 0) {
        if (wire_conn_recv_wait(&c, &env, WAIT_MS, &err) < 0) {
            snprintf(server_err, elen, "%s", err.text);
            rc = -2; /* client went away */
            break;
        }
        if (cap != NULL)
            record(cap, env);
        rc = auth_server_step(&as, &c, env, &err);
        wire_free(env);
        if (rc < 0)
            snprintf(server_err, elen, "%s", err.text);
        ck_assert_int_eq(wire_conn_flush_wait(&c, WAIT_MS, NULL), 0);
    }
    ck_assert_int_eq(waitpid(pid, client_status, 0), pid);
    wire_conn_dispose(&c);
    close(sv[0]);
    return rc;
}

/* With the same key both sides authenticate. */
START_TEST(same_key)
{
    struct auth_key k;
    char e[512];
    int st;

    make_key(&k, 1);
    ck_assert_int_eq(handshake(&k, &k, NULL, &st, e, sizeof(e)), 1);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    auth_key_dispose(&k);
}
END_TEST

/* A client with another key is refused by the server, and also refuses
 * the server: neither side can fake the other's proof. */
START_TEST(wrong_key)
{
    struct auth_key a, b;
    char e[512];
    int st;

    make_key(&a, 1);
    make_key(&b, 2);
    /* the client checks the server's proof first and hangs up */
    ck_assert_int_eq(handshake(&b, &a, NULL, &st, e, sizeof(e)), -2);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    auth_key_dispose(&a);
    auth_key_dispose(&b);
}
END_TEST

/* A server without the key cannot even produce a challenge the client
 * accepts; and a client that skips the check is refused at its proof. */
START_TEST(wrong_key_server_side)
{
    struct auth_key a, b;
    struct auth_server as;
    struct wire_conn c;
    struct vmckpt_error err;
    Vmckpt__Envelope *env;
    Vmckpt__Hello h = VMCKPT__HELLO__INIT;
    Vmckpt__AuthProof p = VMCKPT__AUTH_PROOF__INIT;
    uint8_t nonce[AUTH_NONCE_LEN] = {0}, mac[AUTH_MAC_LEN] = {0};
    uint8_t *buf;
    size_t len;
    enum wire_fault fault;
    int sv[2];

    make_key(&a, 1);
    make_key(&b, 2);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
    wire_conn_init(&c, sv[0], 0);
    auth_server_init(&as, &a, "coord");
    h.role = VMCKPT__ROLE__ROLE_ADMIN;
    h.name = "root@x";
    h.nonce.data = nonce;
    h.nonce.len = sizeof(nonce);
    ck_assert_int_eq(
        wire_encode(VMCKPT__MSG_TYPE__MSG_HELLO, 0, &h, &buf, &len, &err), 0);
    env = wire_decode(buf + 4, len - 4, &fault, &err);
    free(buf);
    ck_assert_int_eq(auth_server_step(&as, &c, env, &err), 0);
    wire_free(env);
    p.mac.data = mac;
    p.mac.len = sizeof(mac);
    ck_assert_int_eq(
        wire_encode(VMCKPT__MSG_TYPE__MSG_AUTH_PROOF, 0, &p, &buf, &len, &err),
        0);
    env = wire_decode(buf + 4, len - 4, &fault, &err);
    free(buf);
    ck_assert_int_eq(auth_server_step(&as, &c, env, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "authentication failed"));
    ck_assert_int_eq(as.state, AUTH_FAILED);
    wire_free(env);
    wire_conn_dispose(&c);
    close(sv[0]);
    close(sv[1]);
    auth_key_dispose(&a);
    auth_key_dispose(&b);
}
END_TEST

/* Replaying a recorded good handshake to a new server session fails: the
 * server's fresh nonce makes the old proof worthless. */
START_TEST(replay_refused)
{
    struct auth_key k;
    struct capture cap = {0};
    struct auth_server as;
    struct wire_conn c;
    struct vmckpt_error err;
    enum wire_fault fault;
    Vmckpt__Envelope *env;
    char e[512];
    int st, sv[2], i;

    make_key(&k, 3);
    ck_assert_int_eq(handshake(&k, &k, &cap, &st, e, sizeof(e)), 1);
    ck_assert_int_eq(cap.n, 2); /* hello, auth-proof */

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
    wire_conn_init(&c, sv[0], 0);
    auth_server_init(&as, &k, "coord");
    env = wire_decode(cap.frame[0] + 4, cap.len[0] - 4, &fault, &err);
    ck_assert_int_eq(auth_server_step(&as, &c, env, &err), 0);
    wire_free(env);
    env = wire_decode(cap.frame[1] + 4, cap.len[1] - 4, &fault, &err);
    ck_assert_int_eq(auth_server_step(&as, &c, env, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "replayed"));
    wire_free(env);
    for (i = 0; i < cap.n; i++)
        free(cap.frame[i]);
    wire_conn_dispose(&c);
    close(sv[0]);
    close(sv[1]);
    auth_key_dispose(&k);
}
END_TEST

/* Anything but hello first is refused. */
START_TEST(hello_first)
{
    struct auth_key k;
    struct auth_server as;
    struct wire_conn c;
    struct vmckpt_error err;
    enum wire_fault fault;
    Vmckpt__HostsQuery q = VMCKPT__HOSTS_QUERY__INIT;
    Vmckpt__Envelope *env;
    uint8_t *buf;
    size_t len;
    int sv[2];

    make_key(&k, 4);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
    wire_conn_init(&c, sv[0], 0);
    auth_server_init(&as, &k, "coord");
    ck_assert_int_eq(
        wire_encode(VMCKPT__MSG_TYPE__MSG_HOSTS_QUERY, 0, &q, &buf, &len, &err),
        0);
    env = wire_decode(buf + 4, len - 4, &fault, &err);
    free(buf);
    ck_assert_int_eq(auth_server_step(&as, &c, env, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "authentication required"));
    wire_free(env);
    wire_conn_dispose(&c);
    close(sv[0]);
    close(sv[1]);
    auth_key_dispose(&k);
}
END_TEST

/* keygen writes a 0600 key that loads; it will not replace one without
 * force; a key readable by group or other, or too short, is refused. */
START_TEST(key_files)
{
    char dir[] = "/tmp/vmckpt-key-XXXXXX", path[256], small[256];
    struct vmckpt_error err;
    struct auth_key k;
    struct stat st;
    FILE *f;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/cluster.key", dir);
    ck_assert_int_eq(auth_key_generate(path, 0, &err), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(st.st_size, AUTH_KEY_GEN_LEN);
    ck_assert_int_eq(auth_key_load(&k, path, &err), 0);
    ck_assert_uint_eq(k.len, AUTH_KEY_GEN_LEN);
    auth_key_dispose(&k);

    ck_assert_int_eq(auth_key_generate(path, 0, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "refusing to replace"));
    ck_assert_int_eq(auth_key_generate(path, 1, &err), 0);

    ck_assert_int_eq(chmod(path, 0640), 0);
    ck_assert_int_eq(auth_key_load(&k, path, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "mode 0640"));
    ck_assert_int_eq(chmod(path, 0604), 0);
    ck_assert_int_eq(auth_key_load(&k, path, &err), -1);

    snprintf(small, sizeof(small), "%s/small.key", dir);
    f = fopen(small, "w");
    fputs("short", f);
    fclose(f);
    ck_assert_int_eq(chmod(small, 0600), 0);
    ck_assert_int_eq(auth_key_load(&k, small, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "holds 5 bytes"));

    ck_assert_int_eq(auth_key_load(&k, "/nonexistent/key", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "cannot open"));
    unlink(small);
    unlink(path);
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, same_key);
    tcase_add_test(tc, wrong_key);
    tcase_add_test(tc, wrong_key_server_side);
    tcase_add_test(tc, replay_refused);
    tcase_add_test(tc, hello_first);
    tcase_add_test(tc, key_files);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
