/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of TLS under the wire with credentials from a real cluster CA
 * (lib/cert): who may speak as whom, a revoked or foreign credential, a
 * server of the wrong role, jobs' tokens as PSKs, a record altered on the
 * way, and large frames through the layer. The client of each test is a
 * forked process with its own credential, as a host would be. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/cert/cert.h"
#include "lib/wire/auth.h"
#include "lib/wire/tls.h"

/* a bound for failures only: a sanitizer build on a busy machine is slow */
#define WAIT_MS 20000

static char top[] = "/tmp/vmckpt-tls-test.XXXXXX";

static void issue(const char *ca, const char *role, const char *name,
                  const char *out)
{
    struct cert_issued is;
    struct vmckpt_error err;
    char dir[4200];

    memset(&is, 0, sizeof(is));
    snprintf(dir, sizeof(dir), "%s/%s", top, out);
    if (cert_issue(ca, role, name, dir, 30, &is, &err) < 0) {
        fprintf(stderr, "issue %s %s: %s\n", role, name, err.text);
        exit(1);
    }
    cert_issued_dispose(&is);
}

/* A CA with a coordinator, agents h1 and h2, an administrator, h3
 * revoked; a second CA with its own "h1". */
static void make_cluster(void)
{
    struct vmckpt_error err;
    char ca[4200], ca2[4200];

    if (mkdtemp(top) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(ca, sizeof(ca), "%s/ca", top);
    snprintf(ca2, sizeof(ca2), "%s/ca2", top);
    /* the CAs outlast the 30-day certificates however late in their first
     * second these are issued */
    if (cert_ca_init(ca, "test", 60, 0, &err) < 0 ||
        cert_ca_init(ca2, "other", 60, 0, &err) < 0) {
        fprintf(stderr, "ca: %s\n", err.text);
        exit(1);
    }
    issue(ca, "coordinator", "co", "co");
    issue(ca, "agent", "h1", "h1");
    issue(ca, "agent", "h2", "h2");
    issue(ca, "admin", "root", "adm");
    issue(ca, "agent", "h3", "h3");
    issue(ca2, "agent", "h1", "foreign");
    if (cert_revoke(ca, NULL, "h3", NULL, NULL, &err) < 0) {
        fprintf(stderr, "revoke: %s\n", err.text);
        exit(1);
    }
}

static void remove_cluster(void)
{
    char cmd[4200];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", top);
}

/* Connections read ahead (tls.h, bulk), as an agent's do. */
static int bulk;

/* Set up this process's credential: the one in 'sub' named 'name'. */
static int use_credential(const char *sub, const char *name,
                          struct vmckpt_error *err)
{
    char ca[4200], cert[4200], key[4200], crl[4200];
    struct tls_files f = {
        .ca = ca, .cert = cert, .key = key, .crl = crl, .bulk = bulk};

    snprintf(ca, sizeof(ca), "%s/%s/ca.crt", top, sub);
    snprintf(cert, sizeof(cert), "%s/%s/%s.crt", top, sub, name);
    snprintf(key, sizeof(key), "%s/%s/%s.key", top, sub, name);
    snprintf(crl, sizeof(crl), "%s/ca/crl.pem", top);
    tls_cleanup();
    return tls_setup(&f, err);
}

/* What the client of a test does. */
struct client_plan {
    const char *sub, *cred; /* its credential, NULL for a job's token */
    enum tls_role want;     /* the server's role it expects */
    const char *want_name;  /* and its name (NULL: any) */
    const char *hello;      /* Hello's name if not 'name' */
    Vmckpt__Role role;
    const char *name;  /* Hello's name (the job's for a token) */
    const char *token; /* the token, PSK clients */
    size_t big;        /* after the handshake, send frames of this
                        * many bytes (0: none) */
    int tamper_fd;     /* >= 0: say here when the handshake is done */
    int partial;       /* then send part of a record, and stall */
};

/* The client's exit status: 0 done, 1 no credential, 2 TLS refused, 3
 * our handshake refused, 4 sending failed. */
static int run_client(int fd, const struct client_plan *p)
{
    struct vmckpt_error err;
    struct wire_conn c;
    struct auth_key token = {NULL, 0};
    int rc;

    if (p->cred != NULL && use_credential(p->sub, p->cred, &err) < 0) {
        fprintf(stderr, "client: %s\n", err.text);
        return 1;
    }
    wire_conn_init(&c, fd, 0);
    if (p->token != NULL) {
        (void)auth_key_set(&token, p->token, strlen(p->token));
        rc = tls_client_attach_psk(&c, p->name, &token, WAIT_MS, &err);
    } else {
        rc = tls_client_attach(&c, p->want, p->want_name, WAIT_MS, &err);
    }
    if (rc < 0) {
        fprintf(stderr, "client TLS: %s\n", err.text);
        return 2;
    }
    if (auth_client(&c, p->token ? &token : NULL, p->role,
                    p->hello ? p->hello : p->name, WAIT_MS, NULL, 0,
                    &err) < 0) {
        fprintf(stderr, "client auth: %s\n", err.text);
        return 3;
    }
    if (p->partial) { /* a record's header and 100 of its 16384 bytes */
        uint8_t rec[105] = {0x17, 0x03, 0x03, 0x40, 0x00};

        if (write(fd, rec, sizeof(rec)) != (ssize_t)sizeof(rec))
            return 4;
    }
    if (p->tamper_fd >= 0) {
        char b = 1;

        if (write(p->tamper_fd, &b, 1) != 1 || read(p->tamper_fd, &b, 1) != 1)
            return 4;
    }
    for (rc = 0; p->big > 0 && rc < 8; rc++) {
        uint8_t *f = malloc(p->big + 4);
        size_t i;

        if (f == NULL)
            return 4;
        f[0] = (uint8_t)(p->big >> 24), f[1] = (uint8_t)(p->big >> 16);
        f[2] = (uint8_t)(p->big >> 8), f[3] = (uint8_t)p->big;
        for (i = 0; i < p->big; i++)
            f[4 + i] = (uint8_t)(i * 7 + (size_t)rc);
        if (wire_conn_send_raw(&c, f, p->big + 4) < 0 ||
            wire_conn_flush_wait(&c, WAIT_MS, &err) < 0) {
            Vmckpt__Envelope *env = NULL;

            fprintf(stderr, "client send: %s\n", err.text);
            free(f);
            /* a server that refused said why before it closed */
            if (wire_conn_recv_wait(&c, &env, WAIT_MS, &err) == 0 &&
                env->type == VMCKPT__MSG_TYPE__MSG_ERROR) {
                fprintf(stderr, "client: refused: %s\n", env->error->text);
                wire_free(env);
                return 5;
            }
            wire_free(env);
            return 4;
        }
        free(f);
    }
    /* wait for the server's end so that nothing is cut short */
    for (;;) {
        const uint8_t *frame;
        size_t len;

        if (wire_conn_recv_frame_wait(&c, &frame, &len, WAIT_MS, &err) < 0)
            break;
    }
    auth_key_dispose(&token);
    wire_conn_dispose(&c);
    return 0;
}

static const struct auth_key *job_key(void *arg, Vmckpt__Role role,
                                      const char *name)
{
    static struct auth_key k;

    (void)arg;
    if (role != VMCKPT__ROLE__ROLE_RANK || strcmp(name, "job7") != 0)
        return NULL;
    if (k.bytes == NULL)
        (void)auth_key_set(&k, "the token of job seven, 32 bytes+",
                           strlen("the token of job seven, 32 bytes+"));
    return &k;
}

/* The server refuses what comes after the handshake. */
static int server_refuses;
/* The server waits this long for a frame after the handshake (0: no). */
static int server_waits;

/* What the server side saw. */
struct server_result {
    int rc; /* 0 authenticated, -1 failed before our handshake's end */
    char err[512];
    enum tls_role cred;
    char cred_name[128];
    int frames; /* big frames received intact */
    int silent; /* a wait for the next frame timed out (server_waits) */
};

static void run_server(int fd, int psk, size_t big, struct server_result *r)
{
    struct vmckpt_error err;
    struct auth_server as;
    struct wire_conn c;
    Vmckpt__Envelope *env;
    int rc;

    memset(r, 0, sizeof(*r));
    r->rc = -1;
    wire_conn_init(&c, fd, big ? big + 64 : 0);
    rc = psk ? tls_server_attach_psk(&c, job_key, NULL, &err)
             : tls_server_attach(&c, &err);
    if (rc < 0)
        goto fail;
    auth_server_init(&as, NULL, "co");
    if (psk) /* as the coordinator's ranks' endpoint */
        as.key_for = job_key;
    while (as.state != AUTH_DONE) {
        if (wire_conn_recv_wait(&c, &env, WAIT_MS, &err) < 0)
            goto fail;
        rc = auth_server_step(&as, &c, env, &err);
        wire_free(env);
        (void)wire_conn_flush_wait(&c, WAIT_MS, NULL);
        if (rc < 0)
            goto fail;
    }
    r->rc = 0;
    if (server_refuses) { /* as a full store does: say why, close */
        wire_conn_send_error(&c, 0, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                             "no space left");
        (void)wire_conn_flush_wait(&c, WAIT_MS, NULL);
        wire_conn_dispose(&c);
        close(fd);
        return;
    }
    if (server_waits > 0) {
        const uint8_t *f;
        size_t len;

        r->silent =
            wire_conn_recv_frame_wait(&c, &f, &len, server_waits, &err) < 0 &&
            errno == ETIMEDOUT;
    }
    r->cred = (enum tls_role)as.credential;
    snprintf(r->cred_name, sizeof(r->cred_name), "%s", as.credential_name);
    while (big > 0 && r->frames < 8) {
        const uint8_t *f;
        size_t len, i;

        if (wire_conn_recv_frame_wait(&c, &f, &len, WAIT_MS, &err) < 0)
            goto fail;
        for (i = 0; i < len && f[i] == (uint8_t)(i * 7 + (size_t)r->frames);
             i++)
            ;
        if (len != big || i != len) {
            snprintf(err.text, sizeof(err.text), "frame %d damaged", r->frames);
            goto fail;
        }
        r->frames++;
    }
    wire_conn_dispose(&c);
    close(fd);
    return;
fail:
    snprintf(r->err, sizeof(r->err), "%s", err.text);
    wire_conn_dispose(&c);
    close(fd);
}

/* Between client and server: copies both ways; once the client says its
 * handshake is done (on 'ctl'), flips one byte of the next bytes it
 * sends. */
struct relay {
    int client, server, ctl;
};

static void *relay_main(void *arg)
{
    struct relay *rl = arg;
    int armed = 0, open_c = 1, open_s = 1;
    char buf[65536];

    while (open_c || open_s) {
        struct pollfd p[3] = {
            {.fd = open_c ? rl->client : -1, .events = POLLIN},
            {.fd = open_s ? rl->server : -1, .events = POLLIN},
            {.fd = rl->ctl, .events = POLLIN}};
        ssize_t n;
        int i;

        if (poll(p, 3, WAIT_MS) <= 0)
            break;
        if (p[2].revents & POLLIN && read(rl->ctl, buf, 1) == 1) {
            armed = 1;
            if (write(rl->ctl, buf, 1) != 1)
                break;
        }
        for (i = 0; i < 2; i++) {
            int from = i == 0 ? rl->client : rl->server;
            int to = i == 0 ? rl->server : rl->client;

            if (!(p[i].revents & (POLLIN | POLLHUP)))
                continue;
            n = read(from, buf, sizeof(buf));
            if (n <= 0 && i == 1) {
                /* the server is gone: so is the way to it */
                shutdown(rl->client, SHUT_RDWR);
                open_c = open_s = 0;
                continue;
            }
            if (n <= 0) {
                shutdown(to, SHUT_WR);
                open_c = 0;
                continue;
            }
            if (i == 0 && armed == 1 && n > 8) {
                buf[8] ^= 0x20; /* inside the record, past its header */
                armed = 2;
            }
            if (send(to, buf, (size_t)n, MSG_NOSIGNAL) != n)
                open_c = open_s = 0;
        }
    }
    return NULL;
}

static void nonblock(int fd)
{
    ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

/* Run 'p' in a forked client against a server here (with a credential of
 * 'server_cred' in "co", or the job endpoint when 'psk'); through a
 * tampering relay when p->tamper_fd is asked for (>= 0 on entry). Returns
 * the client's exit status. */
static int pair(struct client_plan p, const char *server_cred, int psk,
                struct server_result *r)
{
    struct vmckpt_error err;
    struct relay rl;
    pthread_t th;
    int a[2], b[2], t[2] = {-1, -1}, status, tamper = p.tamper_fd >= 0;
    pid_t pid;

    if (server_cred != NULL &&
        use_credential(server_cred, server_cred, &err) < 0)
        ck_abort_msg("server credential: %s", err.text);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
    if (tamper) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b),
                         0);
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, t),
                         0);
    }
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(a[0]);
        if (tamper) { /* the server's ends are not the client's */
            close(b[0]);
            close(b[1]);
            close(t[0]);
        }
        nonblock(a[1]);
        p.tamper_fd = t[1];
        _exit(run_client(a[1], &p));
    }
    close(a[1]);
    if (tamper) {
        close(t[1]);
        rl = (struct relay){.client = a[0], .server = b[0], .ctl = t[0]};
        ck_assert_int_eq(pthread_create(&th, NULL, relay_main, &rl), 0);
        nonblock(b[1]);
        run_server(b[1], psk, p.big, r);
        pthread_join(th, NULL);
        close(b[0]);
        close(t[0]);
        close(a[0]);
    } else {
        nonblock(a[0]);
        run_server(a[0], psk, p.big, r);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

static const struct client_plan agent_h1 = {.sub = "h1",
                                            .cred = "h1",
                                            .want = TLS_ROLE_COORDINATOR,
                                            .role = VMCKPT__ROLE__ROLE_AGENT,
                                            .name = "h1",
                                            .tamper_fd = -1};

START_TEST(agent_speaks_as_itself)
{
    struct server_result r;
    struct client_plan p = agent_h1;

    ck_assert_int_eq(pair(p, "co", 0, &r), 0);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(r.cred, TLS_ROLE_AGENT);
    ck_assert_str_eq(r.cred_name, "h1");
    p.role = VMCKPT__ROLE__ROLE_PEER; /* to a store, as itself */
    ck_assert_int_eq(pair(p, "co", 0, &r), 0);
    ck_assert_int_eq(r.rc, 0);
}
END_TEST

START_TEST(agent_cannot_be_another)
{
    struct server_result r;
    struct client_plan p = agent_h1;

    p.name = "h2";
    ck_assert_int_eq(pair(p, "co", 0, &r), 3);
    ck_assert_int_eq(r.rc, -1);
    ck_assert_ptr_nonnull(
        strstr(r.err, "agent 'h1' cannot speak as agent 'h2'"));
    p.name = "h1";
    p.role = VMCKPT__ROLE__ROLE_ADMIN;
    ck_assert_int_eq(pair(p, "co", 0, &r), 3);
    ck_assert_ptr_nonnull(strstr(r.err, "cannot speak as admin"));
}
END_TEST

START_TEST(admin_is_admin)
{
    struct server_result r;
    struct client_plan p = {.sub = "adm",
                            .cred = "root",
                            .want = TLS_ROLE_COORDINATOR,
                            .role = VMCKPT__ROLE__ROLE_ADMIN,
                            .name = "ops@login1",
                            .tamper_fd = -1};

    ck_assert_int_eq(pair(p, "co", 0, &r), 0);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(r.cred, TLS_ROLE_ADMIN);
    p.role = VMCKPT__ROLE__ROLE_AGENT; /* an admin is not a host */
    ck_assert_int_eq(pair(p, "co", 0, &r), 3);
}
END_TEST

START_TEST(revoked_and_foreign_refused)
{
    struct server_result r;
    struct client_plan p = agent_h1;

    p.sub = p.cred = p.name = "h3";
    /* TLS 1.3: the client's handshake ends before the server has judged
     * its certificate; it learns at its first read */
    ck_assert_int_ne(pair(p, "co", 0, &r), 0);
    ck_assert_int_eq(r.rc, -1);
    ck_assert_ptr_nonnull(strstr(r.err, "certificate revoked"));
    p.sub = "foreign";
    p.cred = p.name = "h1";
    ck_assert_int_ne(pair(p, "co", 0, &r), 0);
    ck_assert_int_eq(r.rc, -1);
    ck_assert_msg(strstr(r.err, "TLS") != NULL, "server saw: %s", r.err);
}
END_TEST

START_TEST(server_of_wrong_role)
{
    struct server_result r;
    struct client_plan p = agent_h1;

    /* a host's credential serving where the coordinator is expected */
    ck_assert_int_eq(pair(p, "h1", 0, &r), 2);
    ck_assert_int_eq(r.rc, -1);
}
END_TEST

START_TEST(job_token)
{
    struct server_result r;
    struct client_plan p = {.role = VMCKPT__ROLE__ROLE_RANK,
                            .name = "job7",
                            .token = "the token of job seven, 32 bytes+",
                            .tamper_fd = -1};

    ck_assert_int_eq(pair(p, NULL, 1, &r), 0);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(r.cred, TLS_ROLE_JOB);
    ck_assert_str_eq(r.cred_name, "job7");
    p.token = "the token of job seven, 32 bytes-";
    ck_assert_int_eq(pair(p, NULL, 1, &r), 2);
    ck_assert_int_eq(r.rc, -1);
    p.name = "job8";
    ck_assert_int_eq(pair(p, NULL, 1, &r), 2);
    ck_assert_ptr_nonnull(strstr(r.err, "no running job 'job8'"));
}
END_TEST

START_TEST(server_of_another_name)
{
    struct server_result r;
    struct client_plan p = agent_h1;

    p.want_name = "head2"; /* the coordinator's credential is "co" */
    ck_assert_int_eq(pair(p, "co", 0, &r), 2);
    p.want_name = "co";
    ck_assert_int_eq(pair(p, "co", 0, &r), 0);
}
END_TEST

START_TEST(token_only_for_its_job)
{
    struct server_result r;
    struct client_plan p = {.role = VMCKPT__ROLE__ROLE_RANK,
                            .name = "job7",
                            .token = "the token of job seven, 32 bytes+",
                            .hello = "job8",
                            .tamper_fd = -1};

    /* job 7's PSK, then a Hello naming another job */
    ck_assert_int_eq(pair(p, NULL, 1, &r), 3);
    ck_assert_msg(strstr(r.err, "cannot speak as rank 'job8'") != NULL,
                  "server saw: %s", r.err);
    /* a token offered to a server of certificates: no handshake */
    p.hello = NULL;
    ck_assert_int_ne(pair(p, "co", 0, &r), 0);
    ck_assert_int_eq(r.rc, -1);
}
END_TEST

START_TEST(altered_record_detected)
{
    struct server_result r;
    struct client_plan p = agent_h1;

    p.big = 100000;
    p.tamper_fd = 0; /* through the relay */
    (void)pair(p, "co", 0, &r);
    ck_assert_int_eq(r.frames, 0);
    ck_assert_msg(strstr(r.err, "bad record mac") != NULL, "server saw: %s",
                  r.err);
    p.tamper_fd = -1; /* and without it, everything arrives */
    ck_assert_int_eq(pair(p, "co", 0, &r), 0);
    ck_assert_int_eq(r.frames, 8);
}
END_TEST

START_TEST(refusal_read_after_failed_write)
{
    struct server_result r;
    struct client_plan p = agent_h1;

    p.big = 3u << 20; /* more than the socket buffers hold */
    server_refuses = 1;
    ck_assert_int_eq(pair(p, "co", 0, &r), 5);
    server_refuses = 0;
}
END_TEST

START_TEST(large_frames)
{
    struct server_result r;
    struct client_plan p = agent_h1;

    p.big = 3u << 20; /* many records per frame, partial writes */
    ck_assert_int_eq(pair(p, "co", 0, &r), 0);
    ck_assert_msg(r.frames == 8, "%d frames: %s", r.frames, r.err);
}
END_TEST

/* An agent's connections read ahead: OpenSSL holds records poll does
 * not see; every frame still arrives, the last one too while the sender
 * waits for the end (no stall), big frames and small ones. */
START_TEST(read_ahead)
{
    struct server_result r;
    struct client_plan p = agent_h1;
    size_t sizes[] = {3u << 20, 100000, 5000};
    size_t i;

    bulk = 1;
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        p.big = sizes[i];
        ck_assert_int_eq(pair(p, "co", 0, &r), 0);
        ck_assert_msg(r.frames == 8, "%zu bytes: %d frames: %s", sizes[i],
                      r.frames, r.err);
    }
    bulk = 0;
}
END_TEST

/* Read ahead with part of a record buffered and the peer silent: the
 * wait for the next frame times out (no spin past its deadline). */
START_TEST(read_ahead_partial_record)
{
    struct server_result r;
    struct client_plan p = agent_h1;
    struct timespec t0, t1;

    bulk = 1;
    server_waits = 1500;
    p.partial = 1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(pair(p, "co", 0, &r), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_msg(r.silent, "the wait did not time out: %s", r.err);
    ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 15);
    server_waits = 0;
    bulk = 0;
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("tls");
    SRunner *sr;
    int failed;

    make_cluster();
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, agent_speaks_as_itself);
    tcase_add_test(tc, agent_cannot_be_another);
    tcase_add_test(tc, admin_is_admin);
    tcase_add_test(tc, revoked_and_foreign_refused);
    tcase_add_test(tc, server_of_wrong_role);
    tcase_add_test(tc, job_token);
    tcase_add_test(tc, server_of_another_name);
    tcase_add_test(tc, token_only_for_its_job);
    tcase_add_test(tc, altered_record_detected);
    tcase_add_test(tc, refusal_read_after_failed_write);
    tcase_add_test(tc, large_frames);
    tcase_add_test(tc, read_ahead);
    tcase_add_test(tc, read_ahead_partial_record);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tls_cleanup();
    remove_cluster();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
