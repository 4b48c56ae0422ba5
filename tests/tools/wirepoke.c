/* SPDX-License-Identifier: GPL-2.0-or-later */
/* wirepoke: a test client that sends a daemon hand-made, mostly bad,
 * frames and prints what came back, so tests can assert that each kind of
 * bad input is refused with the right error.
 *
 *   wirepoke ADDR KEYFILE CASE
 *
 * CASE rank:JOB authenticates as a rank of JOB (KEYFILE holding the job's
 * token) and tries what a rank may not: an admin request, and a rank
 * message for another job.
 *
 * CASE store-parts speaks to an agent's store (ADDR its store port) as a
 * peer and misuses parallel streams of job "wp", VM "pv": a part joining
 * no epoch, a part joining twice, a part that dies mid-stream, a part
 * ending with wrong totals; then a good two-part epoch, which must become
 * durable. CASE store-tickets writes and fetches without the
 * coordinator's ticket, and with a forged one (all refused); over TLS as
 * the credential's host.
 *
 * KEYFILE tls:CONFIG (tls-admin:CONFIG) runs over TLS with the host's
 * (the administrator's) credential of CONFIG's [tls] instead of a key.
 * With it, CASE claim:ROLE:NAME authenticates as ROLE (agent, admin, peer)
 * named NAME and prints "ok authenticated" or "refused: TEXT"; CASE
 * report:JOB/VM/EPOCH reports checkpoint statistics of that VM as the
 * agent of the credential.
 *
 * Prints "error CODE: TEXT" for each Error reply, "closed" when the daemon
 * hung up, "ok" when an exchange succeeded. Exit 0 unless wirepoke itself
 * failed. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/client/client.h"
#include "lib/util/conf.h"
#include "lib/util/net.h"
#include "lib/wire/auth.h"
#include "lib/wire/batch.h"
#include "lib/wire/tls.h"
#include "lib/wire/tls_conf.h"

static const char *addr;
static struct auth_key key;
/* the name peer() speaks as: over TLS its credential's */
static char peer_name[128] = "wirepoke";

static int dial(void)
{
    struct vmckpt_error err;
    int fd = net_connect(addr, WIRE_DEFAULT_PORT, 3000, &err);

    if (fd < 0) {
        fprintf(stderr, "wirepoke: %s\n", err.text);
        exit(2);
    }
    return fd;
}

static void put_raw(int fd, const void *buf, size_t len)
{
    struct wire_conn c;

    wire_conn_init(&c, fd, 0);
    if (wire_conn_send_raw(&c, buf, len) < 0 ||
        wire_conn_flush_wait(&c, 3000, NULL) < 0) {
        perror("wirepoke: send");
        exit(2);
    }
    wire_conn_dispose(&c);
}

/* Print every reply until the daemon closes the connection (or 3 s). */
static void drain(int fd)
{
    struct wire_conn c;
    struct vmckpt_error err;
    Vmckpt__Envelope *env;

    wire_conn_init(&c, fd, 0);
    for (;;) {
        if (wire_conn_recv_wait(&c, &env, 3000, &err) < 0) {
            printf("%s\n", c.eof ? "closed" : "timeout");
            break;
        }
        if (env->type == VMCKPT__MSG_TYPE__MSG_ERROR)
            printf("error %d: %s\n", env->error->code, env->error->text);
        else
            printf("reply %s\n", wire_type_name(env->type));
        wire_free(env);
    }
    wire_conn_dispose(&c);
    close(fd);
}

static size_t frame(const Vmckpt__Envelope *env, uint8_t *buf)
{
    size_t n = vmckpt__envelope__get_packed_size(env);

    buf[0] = (uint8_t)(n >> 24);
    buf[1] = (uint8_t)(n >> 16);
    buf[2] = (uint8_t)(n >> 8);
    buf[3] = (uint8_t)n;
    vmckpt__envelope__pack(env, buf + 4);
    return n + 4;
}

static size_t hello_frame(uint8_t *buf, uint32_t version, int type)
{
    static uint8_t nonce[AUTH_NONCE_LEN];
    Vmckpt__Envelope env = VMCKPT__ENVELOPE__INIT;
    Vmckpt__Hello h = VMCKPT__HELLO__INIT;

    auth_random(nonce, sizeof(nonce));
    h.role = VMCKPT__ROLE__ROLE_ADMIN;
    h.name = "wirepoke";
    h.nonce.data = nonce;
    h.nonce.len = sizeof(nonce);
    env.version = version;
    env.type = (Vmckpt__MsgType)type;
    env.payload_case = VMCKPT__ENVELOPE__PAYLOAD_HELLO;
    env.hello = &h;
    return frame(&env, buf);
}

/* Relay one authenticated admin handshake, recording what the client
 * sent, then replay those bytes on a fresh connection. */
static void replay(void)
{
    uint8_t rec[4096];
    size_t reclen = 0;
    int sv[2], srv = dial(), status;
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        perror("socketpair");
        exit(2);
    }
    pid = fork();
    if (pid == 0) {
        struct wire_conn c;
        struct vmckpt_error err;

        close(sv[0]);
        net_set_nonblock(sv[1], 1);
        wire_conn_init(&c, sv[1], 0);
        _exit(auth_client(&c, &key, VMCKPT__ROLE__ROLE_ADMIN, "recorded", 3000,
                          NULL, 0, &err) == 0
                  ? 0
                  : 1);
    }
    close(sv[1]);
    net_set_nonblock(srv, 0);
    for (;;) {
        struct pollfd p[2] = {{.fd = sv[0], .events = POLLIN},
                              {.fd = srv, .events = POLLIN}};
        uint8_t buf[4096];
        ssize_t n;

        if (poll(p, 2, 3000) <= 0)
            break;
        if (p[0].revents) {
            n = read(sv[0], buf, sizeof(buf));
            if (n <= 0)
                break;
            if (reclen + (size_t)n > sizeof(rec))
                exit(2);
            memcpy(rec + reclen, buf, (size_t)n);
            reclen += (size_t)n;
            if (write(srv, buf, (size_t)n) != n)
                exit(2);
        }
        if (p[1].revents) {
            n = read(srv, buf, sizeof(buf));
            if (n <= 0)
                break;
            if (write(sv[0], buf, (size_t)n) != n)
                exit(2);
        }
    }
    close(sv[0]);
    close(srv);
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "wirepoke: the recorded handshake failed\n");
        exit(2);
    }
    printf("recorded %zu bytes of a good handshake\n", reclen);
    srv = dial();
    put_raw(srv, rec, reclen);
    drain(srv);
}

static struct client *peer(void)
{
    struct vmckpt_error err;
    struct client *cl =
        client_open(addr, &key, VMCKPT__ROLE__ROLE_PEER, peer_name, 3000, &err);

    if (cl == NULL) {
        fprintf(stderr, "wirepoke: %s\n", err.text);
        exit(2);
    }
    return cl;
}

/* Print "ok WHAT" or "error: TEXT"; 0 or -1. */
static int said(int rc, const char *what, const struct vmckpt_error *err)
{
    if (rc < 0)
        printf("error: %s\n", err->text);
    else
        printf("ok %s\n", what);
    fflush(stdout);
    return rc;
}

static int part_open(struct client *cl, uint64_t epoch, uint64_t parent,
                     unsigned part)
{
    Vmckpt__StreamOpen o = VMCKPT__STREAM_OPEN__INIT;
    Vmckpt__Envelope *env;
    struct vmckpt_error err;
    char what[32];
    int rc;

    o.job = "wp";
    o.vm = "pv";
    o.epoch = epoch;
    o.parent = parent;
    o.ram_bytes = 16 * BATCH_PAGE;
    o.page_size = BATCH_PAGE;
    o.parts = 2;
    o.part = part;
    rc = client_call(cl, VMCKPT__MSG_TYPE__MSG_STREAM_OPEN, &o,
                     VMCKPT__MSG_TYPE__MSG_ACK, &env, &err);
    if (rc == 0)
        wire_free(env);
    snprintf(what, sizeof(what), "open part %u", part);
    return said(rc, what, &err);
}

/* One batch holding page 'pfn' filled with 'seed'. */
static void part_page(struct client *cl, uint64_t pfn, uint8_t seed)
{
    struct batch_builder b;
    Vmckpt__PageBatch msg = VMCKPT__PAGE_BATCH__INIT;
    struct vmckpt_error err;
    uint8_t page[BATCH_PAGE];

    memset(page, seed, sizeof(page));
    if (batch_builder_init(&b, 0) < 0)
        exit(2);
    batch_reset(&b, 0);
    batch_add(&b, pfn, page);
    batch_finish(&b, &msg);
    if (client_send(cl, VMCKPT__MSG_TYPE__MSG_PAGE_BATCH, &msg, &err) < 0)
        printf("error: %s\n", err.text);
    batch_builder_dispose(&b);
}

/* End part 1 (its totals: 'batches' batches of one page) or, part 0,
 * the epoch (with 'batches' in all and a one-byte state). */
static int part_end(struct client *cl, unsigned part, uint64_t batches)
{
    Vmckpt__StreamEnd e = VMCKPT__STREAM_END__INIT;
    Vmckpt__StateChunk c = VMCKPT__STATE_CHUNK__INIT;
    Vmckpt__Envelope *env;
    struct vmckpt_error err;
    int rc;

    e.batches = e.pages = batches;
    if (part == 0) {
        c.data.data = (uint8_t *)"s";
        c.data.len = 1;
        if (client_send(cl, VMCKPT__MSG_TYPE__MSG_STATE_CHUNK, &c, &err) < 0)
            return said(-1, "", &err);
        e.state_bytes = 1;
        e.state_xxh64 = batch_xxh64("s", 1);
    }
    rc = client_call(cl, VMCKPT__MSG_TYPE__MSG_STREAM_END, &e,
                     part ? VMCKPT__MSG_TYPE__MSG_ACK
                          : VMCKPT__MSG_TYPE__MSG_STREAM_DURABLE,
                     &env, &err);
    if (rc == 0)
        wire_free(env);
    return said(rc, part ? "part 1 ended" : "durable", &err);
}

static void store_parts(void)
{
    struct client *c0, *c1, *c1b;
    int i;

    /* a part that joins nothing */
    printf("== no epoch\n");
    c1 = peer();
    part_open(c1, 1, 0, 1);
    client_close(c1);
    /* a part joining twice; a part that dies with its batch sent */
    printf("== twice\n");
    c0 = peer();
    c1 = peer();
    c1b = peer();
    part_open(c0, 1, 0, 0);
    part_open(c1, 1, 0, 1);
    part_open(c1b, 1, 0, 1);
    client_close(c1b);
    printf("== dies\n");
    part_page(c1, 1, 0x11);
    client_close(c1);
    usleep(300000);
    part_page(c0, 0, 0x10);
    part_end(c0, 0, 2);
    client_close(c0);
    /* a good epoch, once the failed one's claim is gone */
    printf("== good\n");
    fflush(stdout);
    for (i = 0; i < 30; i++) {
        c0 = peer();
        if (part_open(c0, 1, 0, 0) == 0)
            break;
        client_close(c0);
        c0 = NULL;
        usleep(100000);
    }
    if (c0 == NULL)
        exit(2);
    c1 = peer();
    part_open(c1, 1, 0, 1);
    part_page(c0, 0, 0x20);
    part_page(c1, 1, 0x21);
    part_page(c1, 5, 0x25);
    part_end(c1, 1, 2);
    part_end(c0, 0, 3);
    client_close(c0);
    client_close(c1);
    /* a part ending with wrong totals */
    printf("== totals\n");
    c0 = peer();
    c1 = peer();
    part_open(c0, 2, 1, 0);
    part_open(c1, 2, 1, 1);
    part_page(c1, 1, 0x31);
    part_end(c1, 1, 5);
    part_end(c0, 0, 1);
    client_close(c0);
    client_close(c1);
}

/* One whole epoch of VM "iv" of job "wp" (one page, one stream) by a
 * writer of incarnation 'inc': "ok durable" or the store's refusal. */
static void inc_epoch(uint64_t epoch, uint64_t inc)
{
    Vmckpt__StreamOpen o = VMCKPT__STREAM_OPEN__INIT;
    Vmckpt__StreamEnd e = VMCKPT__STREAM_END__INIT;
    Vmckpt__StateChunk c = VMCKPT__STATE_CHUNK__INIT;
    struct client *cl = peer();
    Vmckpt__Envelope *env;
    struct vmckpt_error err;
    int rc;

    printf("== epoch %llu, incarnation %llu\n", (unsigned long long)epoch,
           (unsigned long long)inc);
    o.job = "wp";
    o.vm = "iv";
    o.epoch = epoch;
    o.ram_bytes = 16 * BATCH_PAGE;
    o.page_size = BATCH_PAGE;
    o.incarnation = inc;
    rc = client_call(cl, VMCKPT__MSG_TYPE__MSG_STREAM_OPEN, &o,
                     VMCKPT__MSG_TYPE__MSG_ACK, &env, &err);
    if (said(rc, "open", &err) == 0) {
        wire_free(env);
        part_page(cl, 0, (uint8_t)epoch);
        c.data.data = (uint8_t *)"s";
        c.data.len = 1;
        e.batches = e.pages = 1;
        e.state_bytes = 1;
        e.state_xxh64 = batch_xxh64("s", 1);
        rc = client_send(cl, VMCKPT__MSG_TYPE__MSG_STATE_CHUNK, &c, &err);
        if (rc == 0)
            rc = client_call(cl, VMCKPT__MSG_TYPE__MSG_STREAM_END, &e,
                             VMCKPT__MSG_TYPE__MSG_STREAM_DURABLE, &env, &err);
        if (said(rc, "durable", &err) == 0)
            wire_free(env);
    }
    client_close(cl);
}

/* Writers of job incarnations 2, 1 (stale), 3 and 2 (stale again). */
static void store_incarnation(void)
{
    inc_epoch(1, 2);
    inc_epoch(2, 1);
    inc_epoch(2, 3);
    inc_epoch(3, 2);
}

/* One try without the coordinator's ticket ('forged' 0) or with one it
 * did not make: a write of wp/tv epoch 1 or a fetch of wp/pv epoch 1, on
 * a connection of its own. */
static void ticket_try(int fetch, int forged)
{
    static const uint8_t bogus[32] = {0x42};
    struct client *cl = peer();
    Vmckpt__StreamOpen o = VMCKPT__STREAM_OPEN__INIT;
    Vmckpt__FetchEpoch f = VMCKPT__FETCH_EPOCH__INIT;
    ProtobufCBinaryData t = {forged ? sizeof(bogus) : 0,
                             forged ? (uint8_t *)bogus : NULL};
    Vmckpt__Envelope *env;
    struct vmckpt_error err;
    int rc;

    printf("== %s, %s\n", fetch ? "fetch" : "write",
           forged ? "forged ticket" : "no ticket");
    o.job = f.job = "wp";
    o.vm = "tv";
    f.vm = "pv";
    o.epoch = f.epoch = 1;
    o.ram_bytes = 16 * BATCH_PAGE;
    o.page_size = BATCH_PAGE;
    o.ticket = f.ticket = t;
    rc = fetch ? client_call(cl, VMCKPT__MSG_TYPE__MSG_FETCH_EPOCH, &f,
                             VMCKPT__MSG_TYPE__MSG_STREAM_OPEN, &env, &err)
               : client_call(cl, VMCKPT__MSG_TYPE__MSG_STREAM_OPEN, &o,
                             VMCKPT__MSG_TYPE__MSG_ACK, &env, &err);
    if (rc == 0)
        wire_free(env);
    said(rc, fetch ? "fetch" : "open", &err);
    client_close(cl);
}

static void store_tickets(void)
{
    ticket_try(0, 0);
    ticket_try(0, 1);
    ticket_try(1, 0);
    ticket_try(1, 1);
}

/* A peer without the key: it cannot compute the proof, so it sends bytes
 * of the right length that are not the proof. -1 if no challenge came. */
static int wrong_key(void)
{
    struct vmckpt_error err;
    struct wire_conn c;
    Vmckpt__Envelope *env;
    Vmckpt__AuthProof p = VMCKPT__AUTH_PROOF__INIT;
    uint8_t mac[AUTH_MAC_LEN], buf[8192];
    int fd = dial();

    put_raw(fd, buf,
            hello_frame(buf, WIRE_VERSION, VMCKPT__MSG_TYPE__MSG_HELLO));
    wire_conn_init(&c, fd, 0);
    if (wire_conn_recv_wait(&c, &env, 3000, &err) < 0 ||
        env->type != VMCKPT__MSG_TYPE__MSG_CHALLENGE) {
        fprintf(stderr, "wirepoke: no challenge\n");
        return -1;
    }
    wire_free(env);
    auth_random(mac, sizeof(mac));
    p.mac.data = mac;
    p.mac.len = sizeof(mac);
    wire_conn_send(&c, VMCKPT__MSG_TYPE__MSG_AUTH_PROOF, 0, &p, &err);
    wire_conn_flush_wait(&c, 3000, &err);
    wire_conn_dispose(&c);
    drain(fd);
    return 0;
}

/* claim:ROLE:NAME over TLS. */
static int claim(const char *what)
{
    static const struct {
        const char *name;
        Vmckpt__Role role;
    } roles[] = {{"agent", VMCKPT__ROLE__ROLE_AGENT},
                 {"admin", VMCKPT__ROLE__ROLE_ADMIN},
                 {"peer", VMCKPT__ROLE__ROLE_PEER}};
    const char *name = strchr(what, ':');
    struct vmckpt_error err;
    struct client *cl;
    size_t i;

    for (i = 0; name != NULL && i < 3; i++) {
        if (strncmp(what, roles[i].name, (size_t)(name - what)) == 0 &&
            strlen(roles[i].name) == (size_t)(name - what))
            break;
    }
    if (name == NULL || i == 3) {
        fprintf(stderr, "wirepoke: claim:ROLE:NAME, ROLE agent|admin|peer\n");
        return -1;
    }
    cl = client_open(addr, &key, roles[i].role, name + 1, 3000, &err);
    if (cl == NULL)
        printf("refused: %s\n", err.text);
    else
        printf("ok authenticated\n");
    client_close(cl);
    return 0;
}

/* report:JOB/VM/EPOCH: statistics of a checkpoint of that VM, as the
 * agent of this credential. */
static int report(const char *what)
{
    Vmckpt__CkptStats st = VMCKPT__CKPT_STATS__INIT;
    char job[128], vm[128], self[128];
    unsigned long long epoch;
    struct vmckpt_error err;
    enum tls_role role;
    struct client *cl;

    if (sscanf(what, "%127[^/]/%127[^/]/%llu", job, vm, &epoch) != 3 ||
        tls_self(&role, self, sizeof(self)) < 0) {
        fprintf(stderr, "wirepoke: report:JOB/VM/EPOCH needs tls:CONFIG\n");
        return -1;
    }
    cl = client_open(addr, &key, VMCKPT__ROLE__ROLE_AGENT, self, 3000, &err);
    if (cl == NULL) {
        printf("refused: %s\n", err.text);
        return 0;
    }
    printf("ok authenticated as agent %s\n", self);
    st.job = job;
    st.vm = vm;
    st.epoch = epoch;
    if (client_send(cl, VMCKPT__MSG_TYPE__MSG_CKPT_STATS, &st, &err) < 0)
        printf("error: %s\n", err.text);
    else {
        Vmckpt__Envelope *env = NULL;

        if (wire_conn_recv_wait(&cl->conn, &env, 3000, &err) < 0)
            printf("no answer: %s\n", err.text);
        else if (env->type == VMCKPT__MSG_TYPE__MSG_ERROR)
            printf("error %d: %s\n", env->error->code, env->error->text);
        else
            printf("answer: %s\n", wire_type_name(env->type));
        wire_free(env);
    }
    client_close(cl);
    return 0;
}

/* As a rank of 'job': an admin request, and a rank message for another
 * job. -1 if it could not authenticate. */
static int as_rank(const char *job)
{
    struct vmckpt_error err;
    struct client *cl =
        client_open(addr, &key, VMCKPT__ROLE__ROLE_RANK, job, 3000, &err);
    Vmckpt__HostsQuery q = VMCKPT__HOSTS_QUERY__INIT;
    Vmckpt__RankRegister r = VMCKPT__RANK_REGISTER__INIT;
    Vmckpt__Envelope *env;

    if (cl == NULL) {
        fprintf(stderr, "wirepoke: %s\n", err.text);
        return -1;
    }
    printf("ok authenticated\n");
    if (client_call(cl, VMCKPT__MSG_TYPE__MSG_HOSTS_QUERY, &q,
                    VMCKPT__MSG_TYPE__MSG_HOSTS_REPLY, &env, &err) < 0)
        printf("error: %s\n", err.text);
    else
        wire_free(env);
    r.job = "some-other-job";
    r.size = 1;
    if (client_call(cl, VMCKPT__MSG_TYPE__MSG_RANK_REGISTER, &r,
                    VMCKPT__MSG_TYPE__MSG_RANK_REGISTERED, &env, &err) < 0)
        printf("error: %s\n", err.text);
    else
        wire_free(env);
    client_close(cl);
    return 0;
}

/* As an admin: an unknown message type after the handshake
 * ("authed-unknown-type"), or a known one the coordinator does not serve
 * and then a good request. -1 if it could not authenticate. */
static int as_admin(const char *what)
{
    struct vmckpt_error err;
    uint8_t buf[8192];
    struct client *cl = client_open(addr, &key, VMCKPT__ROLE__ROLE_ADMIN,
                                    "wirepoke", 3000, &err);

    if (cl == NULL) {
        fprintf(stderr, "wirepoke: %s\n", err.text);
        return -1;
    }
    printf("ok authenticated\n");
    if (strcmp(what, "authed-unknown-type") == 0) {
        put_raw(cl->fd, buf, hello_frame(buf, WIRE_VERSION, 99));
        net_set_nonblock(cl->fd, 1);
        drain(dup(cl->fd));
    } else {
        Vmckpt__CkptCommit cc = VMCKPT__CKPT_COMMIT__INIT;
        Vmckpt__HostsQuery q = VMCKPT__HOSTS_QUERY__INIT;
        Vmckpt__Envelope *env;

        cc.job = "j";
        if (client_call(cl, VMCKPT__MSG_TYPE__MSG_CKPT_COMMIT, &cc,
                        VMCKPT__MSG_TYPE__MSG_ACK, &env, &err) < 0)
            printf("error: %s\n", err.text);
        /* the connection survives a refused request */
        if (client_call(cl, VMCKPT__MSG_TYPE__MSG_HOSTS_QUERY, &q,
                        VMCKPT__MSG_TYPE__MSG_HOSTS_REPLY, &env, &err) == 0) {
            printf("ok still connected\n");
            wire_free(env);
        }
    }
    client_close(cl);
    return 0;
}

int main(int argc, char **argv)
{
    uint8_t buf[8192];
    struct vmckpt_error err;
    const char *what;
    size_t n;
    int fd;

    if (argc != 4) {
        fprintf(stderr, "usage: wirepoke ADDR KEYFILE CASE\n"
                        "cases: truncated oversize garbage wrong-version "
                        "unknown-type no-hello wrong-key replay "
                        "authed-unknown-type authed-not-served rank:JOB "
                        "store-parts store-incarnation store-tickets "
                        "claim:ROLE:NAME "
                        "report:JOB/VM/EPOCH\n"
                        "KEYFILE: a key file, or tls:CONFIG / "
                        "tls-admin:CONFIG\n");
        return 2;
    }
    addr = argv[1];
    what = argv[3];
    if (strncmp(argv[2], "tls:", 4) == 0 ||
        strncmp(argv[2], "tls-admin:", 10) == 0) {
        int admin = argv[2][3] == '-', rc;
        struct conf *conf = conf_load(argv[2] + (admin ? 10 : 4), &err);

        rc = conf ? tls_setup_conf(conf, admin ? TLS_CONF_ADMIN : 0, &err) : -1;
        if (conf != NULL)
            conf_destroy(conf);
        if (rc <= 0) {
            fprintf(stderr, "wirepoke: %s\n",
                    rc < 0 ? err.text : "no [tls] credential");
            return 2;
        }
        {
            enum tls_role role;

            (void)tls_self(&role, peer_name, sizeof(peer_name));
        }
    } else if (auth_key_load(&key, argv[2], &err) < 0) {
        fprintf(stderr, "wirepoke: %s\n", err.text);
        return 2;
    }
    if (strcmp(what, "truncated") == 0) {
        fd = dial();
        n = hello_frame(buf, WIRE_VERSION, VMCKPT__MSG_TYPE__MSG_HELLO);
        put_raw(fd, buf, n / 2);
        shutdown(fd, SHUT_WR);
        drain(fd);
    } else if (strcmp(what, "oversize") == 0) {
        static const uint8_t big[4] = {0x7f, 0xff, 0xff, 0xff};

        fd = dial();
        put_raw(fd, big, sizeof(big));
        drain(fd);
    } else if (strcmp(what, "garbage") == 0) {
        static const uint8_t junk[] = {0,    0,    0,    7,    0xff, 0xff,
                                       0xff, 0xff, 0xff, 0x0f, 0x07};

        fd = dial();
        put_raw(fd, junk, sizeof(junk));
        drain(fd);
    } else if (strcmp(what, "wrong-version") == 0) {
        fd = dial();
        put_raw(
            fd, buf,
            hello_frame(buf, WIRE_VERSION + 1, VMCKPT__MSG_TYPE__MSG_HELLO));
        drain(fd);
    } else if (strcmp(what, "unknown-type") == 0) {
        fd = dial();
        put_raw(fd, buf, hello_frame(buf, WIRE_VERSION, 99));
        drain(fd);
    } else if (strcmp(what, "no-hello") == 0) {
        Vmckpt__HostsQuery q = VMCKPT__HOSTS_QUERY__INIT;
        uint8_t *f;

        fd = dial();
        if (wire_encode(VMCKPT__MSG_TYPE__MSG_HOSTS_QUERY, 1, &q, &f, &n,
                        &err) < 0)
            return 2;
        put_raw(fd, f, n);
        free(f);
        drain(fd);
    } else if (strcmp(what, "wrong-key") == 0) {
        if (wrong_key() < 0)
            return 2;
    } else if (strcmp(what, "replay") == 0) {
        replay();
    } else if (strcmp(what, "store-parts") == 0) {
        store_parts();
    } else if (strcmp(what, "store-incarnation") == 0) {
        store_incarnation();
    } else if (strcmp(what, "store-tickets") == 0) {
        store_tickets();
    } else if (strncmp(what, "claim:", 6) == 0) {
        if (claim(what + 6) < 0)
            return 2;
    } else if (strncmp(what, "report:", 7) == 0) {
        if (report(what + 7) < 0)
            return 2;
    } else if (strncmp(what, "rank:", 5) == 0) {
        if (as_rank(what + 5) < 0)
            return 2;
    } else if (strcmp(what, "authed-unknown-type") == 0 ||
               strcmp(what, "authed-not-served") == 0) {
        if (as_admin(what) < 0)
            return 2;
    } else {
        fprintf(stderr, "wirepoke: unknown case '%s'\n", what);
        return 2;
    }
    auth_key_dispose(&key);
    return 0;
}
