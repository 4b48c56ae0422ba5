/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The rank's channel to the coordinator (channel.h). All socket I/O is in
 * one thread; the application's thread only reads the pending epoch and,
 * in a barrier with a cut pending, waits on a condition variable. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "hooks_log.h"
#include "lib/util/clock.h"
#include "lib/client/client.h"

/* ---- where the job is ------------------------------------------------- */

static int unhex(const char *hex, uint8_t *out, size_t max, size_t *len)
{
    size_t n = strlen(hex), i;

    if (n == 0 || n % 2 || n / 2 > max)
        return -1;
    for (i = 0; i < n / 2; i++) {
        unsigned v;

        if (sscanf(hex + 2 * i, "%2x", &v) != 1 ||
            strchr("0123456789abcdefABCDEF", hex[2 * i]) == NULL ||
            strchr("0123456789abcdefABCDEF", hex[2 * i + 1]) == NULL)
            return -1;
        out[i] = (uint8_t)v;
    }
    *len = n / 2;
    return 0;
}

/* vmckpt.KEY=VALUE from the kernel command line into 'out'; 1 if found. */
static int from_cmdline(const char *key, char *out, size_t len)
{
    char buf[4096], want[64], *p;
    FILE *f = fopen("/proc/cmdline", "re");
    size_t n;

    if (f == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    snprintf(want, sizeof(want), "vmckpt.%s=", key);
    for (p = strtok(buf, " \n"); p != NULL; p = strtok(NULL, " \n"))
        if (strncmp(p, want, strlen(want)) == 0) {
            snprintf(out, len, "%s", p + strlen(want));
            return 1;
        }
    return 0;
}

/* The firmware configuration file opt/vmckpt/KEY (a QEMU guest's rank
 * token: root's only in the guest, on no command line) into 'out'; 1 if
 * found. */
static int from_fw_cfg(const char *key, char *out, size_t len)
{
    char path[128];
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path),
             "/sys/firmware/qemu_fw_cfg/by_name/opt/vmckpt/%s/raw", key);
    f = fopen(path, "re");
    if (f == NULL)
        return 0;
    n = fread(out, 1, len - 1, f);
    fclose(f);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\0'))
        n--;
    out[n] = '\0';
    return n > 0;
}

/* KEY from the environment (ENV), the firmware configuration (a QEMU
 * guest's token) or the kernel command line; 1 if found. */
static int get_one(const char *env, const char *key, char *out, size_t len)
{
    const char *v = getenv(env);

    if (v != NULL && v[0] != '\0') {
        snprintf(out, len, "%s", v);
        return 1;
    }
    return from_fw_cfg(key, out, len) || from_cmdline(key, out, len);
}

int chan_target_get(struct chan_target *t, struct vmckpt_error *err)
{
    char hex[2 * AUTH_KEY_MAX + 1];
    uint8_t raw[AUTH_KEY_MAX];
    size_t n;
    int have;

    memset(t, 0, sizeof(*t));
    have = get_one("VMCKPT_JOB", "job", t->job, sizeof(t->job));
    have +=
        get_one("VMCKPT_COORDINATOR", "coordinator", t->addr, sizeof(t->addr));
    have += get_one("VMCKPT_TOKEN", "token", hex, sizeof(hex));
    if (have == 0)
        return 0;
    if (have < 3) {
        errno = EINVAL;
        return errprintf(err,
                         "%s%s%s not set (neither in the environment, "
                         "nor from the firmware, nor on the kernel command "
                         "line)",
                         t->job[0] ? "" : "VMCKPT_JOB ",
                         t->addr[0] ? "" : "VMCKPT_COORDINATOR ",
                         hex[0] ? "" : "VMCKPT_TOKEN");
    }
    if (unhex(hex, raw, sizeof(raw), &n) < 0 || n < AUTH_KEY_MIN) {
        errno = EINVAL;
        return errprintf(err,
                         "VMCKPT_TOKEN: not a job token (%d or more "
                         "hex digits)",
                         2 * AUTH_KEY_MIN);
    }
    if (auth_key_set(&t->token, raw, n) < 0)
        return errprintf_errno(err, "token");
    return 1;
}

void chan_target_dispose(struct chan_target *t)
{
    auth_key_dispose(&t->token);
}

/* ---- the channel ------------------------------------------------------ */

static struct {
    struct chan_target t;
    struct chan_rank r;
    pthread_t thread;
    int running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int wake[2];
    /* under mu */
    int stop, connected, first_done, refused;
    uint64_t pending, released, restored_from;
    /* pending if above released, else 0: what every barrier reads, kept
     * in step under mu and read without it */
    uint64_t cut;
    uint64_t wait_epoch, wait_count; /* the application waits */
    int ready_sent;
    uint64_t lost_since; /* monotonic ms; 0 while connected */
    char first_error[256];
} ch = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = {-1, -1}};

/* Unreachable this long while a rank waits: it goes on unaligned. */
#define GIVE_UP_MS 60000

/* With mu held: after pending or released changed. */
static void set_cut(void)
{
    __atomic_store_n(&ch.cut, ch.pending > ch.released ? ch.pending : 0,
                     __ATOMIC_RELEASE);
}

static void poke(void)
{
    char b = 1;

    if (write(ch.wake[1], &b, 1) < 0)
        (void)0; /* already poked */
}

static int send_ready(struct client *cl, struct vmckpt_error *err)
{
    Vmckpt__RankReady r = VMCKPT__RANK_READY__INIT;

    r.job = ch.t.job;
    r.rank = ch.r.rank;
    pthread_mutex_lock(&ch.mu);
    r.epoch = ch.wait_epoch;
    r.barrier_count = ch.wait_count;
    ch.ready_sent = 1;
    pthread_mutex_unlock(&ch.mu);
    return client_send(cl, VMCKPT__MSG_TYPE__MSG_RANK_READY, &r, err);
}

static struct client *connect_register(struct vmckpt_error *err)
{
    Vmckpt__RankRegister reg = VMCKPT__RANK_REGISTER__INIT;
    Vmckpt__Envelope *reply;
    struct client *cl;
    uint64_t restored;

    cl = client_open(ch.t.addr, &ch.t.token, VMCKPT__ROLE__ROLE_RANK, ch.t.job,
                     3000, err);
    if (cl == NULL)
        return NULL;
    {
        /* a rank restored from a checkpoint holds a connection the
         * coordinator no longer has: keepalive probes find that out within
         * seconds even when the rank has nothing to say */
        int on = 1, idle = 3, intvl = 2, cnt = 2;

        setsockopt(cl->fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
        setsockopt(cl->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        setsockopt(cl->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
        setsockopt(cl->fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    }
    reg.job = ch.t.job;
    reg.rank = ch.r.rank;
    reg.size = ch.r.size;
    reg.host = ch.r.host;
    reg.vm = ch.r.vm;
    reg.pid = (uint32_t)getpid();
    reg.run = ch.r.run;
    pthread_mutex_lock(&ch.mu);
    reg.waiting_epoch = ch.wait_epoch > ch.released ? ch.wait_epoch : 0;
    pthread_mutex_unlock(&ch.mu);
    if (client_call(cl, VMCKPT__MSG_TYPE__MSG_RANK_REGISTER, &reg,
                    VMCKPT__MSG_TYPE__MSG_RANK_REGISTERED, &reply, err) < 0) {
        if (errno == EREMOTEIO) {
            /* refused, not unreachable: asking again will not help */
            pthread_mutex_lock(&ch.mu);
            ch.refused = 1;
            pthread_mutex_unlock(&ch.mu);
        }
        client_close(cl);
        return NULL;
    }
    restored = reply->rank_registered->restored_epoch;
    wire_free(reply);
    pthread_mutex_lock(&ch.mu);
    ch.connected = 1;
    ch.lost_since = 0;
    ch.ready_sent = 0;
    if (restored != 0 && restored == reg.waiting_epoch) {
        /* this rank is a restored copy, held at the barrier of the cut it
         * came from: it goes on from there */
        ch.restored_from = restored;
        if (restored > ch.released)
            ch.released = restored;
        set_cut();
        pthread_cond_broadcast(&ch.cv);
    }
    pthread_mutex_unlock(&ch.mu);
    return cl;
}

static void handle(const Vmckpt__Envelope *env)
{
    pthread_mutex_lock(&ch.mu);
    switch (env->type) {
    case VMCKPT__MSG_TYPE__MSG_CKPT_ALIGN:
        if (env->ckpt_align->epoch > ch.released &&
            env->ckpt_align->epoch > ch.pending)
            ch.pending = env->ckpt_align->epoch;
        set_cut();
        hooks_debug("cut %llu asked", (unsigned long long)ch.pending);
        break;
    case VMCKPT__MSG_TYPE__MSG_RANK_RELEASE:
        if (env->rank_release->epoch > ch.released)
            ch.released = env->rank_release->epoch;
        if (ch.pending <= ch.released)
            ch.pending = 0;
        set_cut();
        hooks_debug("epoch %llu released",
                    (unsigned long long)env->rank_release->epoch);
        pthread_cond_broadcast(&ch.cv);
        break;
    case VMCKPT__MSG_TYPE__MSG_ERROR:
        hooks_log("the coordinator refused: %s", env->error->text);
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&ch.mu);
}

/* Serve one connection until it dies or the channel stops. */
static void serve(struct client *cl)
{
    struct vmckpt_error err;
    int ended = 0; /* the stream ended: handle what came, then stop */

    for (;;) {
        struct pollfd pf[2] = {{.fd = cl->fd, .events = POLLIN},
                               {.fd = ch.wake[0], .events = POLLIN}};
        Vmckpt__Envelope *env;
        enum wire_fault fault;
        int rc, stop, want_ready;
        char b[64];

        /* what arrived with an earlier reply is handled first */
        while ((rc = wire_conn_next(&cl->conn, &env, &fault, &err)) > 0) {
            handle(env);
            wire_free(env);
        }
        if (rc < 0)
            break;
        pthread_mutex_lock(&ch.mu);
        stop = ch.stop;
        want_ready = ch.wait_epoch > ch.released && !ch.ready_sent;
        pthread_mutex_unlock(&ch.mu);
        if (stop)
            return;
        if (want_ready && send_ready(cl, &err) < 0)
            break;
        rc = poll(pf, 2, 1000);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc == 0) {
            /* while waiting, say READY again: on a restored guest this is
             * what finds the old connection dead */
            pthread_mutex_lock(&ch.mu);
            if (ch.wait_epoch > ch.released)
                ch.ready_sent = 0;
            pthread_mutex_unlock(&ch.mu);
            continue;
        }
        if (pf[1].revents & POLLIN)
            while (read(ch.wake[0], b, sizeof(b)) > 0)
                ;
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (wire_conn_fill(&cl->conn, &err) < 0 && cl->conn.eof) {
                /* a frame cut short never completes: stop once the whole
                 * ones before it are handled, rather than poll an ended
                 * stream forever */
                if (cl->conn.rlen == 0 || cl->conn.failed || ended)
                    break;
                ended = 1;
            }
        }
    }
    hooks_debug("connection lost");
}

static void *chan_main(void *arg)
{
    struct vmckpt_error err;
    struct client *cl;
    unsigned backoff = 250;
    int first = 1, refusals = 0;

    (void)arg;
    for (;; first = 0) {
        pthread_mutex_lock(&ch.mu);
        if (ch.stop) {
            pthread_mutex_unlock(&ch.mu);
            break;
        }
        pthread_mutex_unlock(&ch.mu);
        cl = connect_register(&err);
        pthread_mutex_lock(&ch.mu);
        if (!ch.first_done) {
            ch.first_done = 1;
            if (cl == NULL)
                snprintf(ch.first_error, sizeof(ch.first_error), "%s",
                         err.text);
            pthread_cond_broadcast(&ch.cv);
        }
        pthread_mutex_unlock(&ch.mu);
        if (cl != NULL) {
            backoff = 250;
            serve(cl);
            client_close(cl);
        }
        pthread_mutex_lock(&ch.mu);
        ch.connected = 0;
        if (ch.lost_since == 0)
            ch.lost_since = clock_mono_ms();
        if (ch.refused && !ch.stop) {
            if (++refusals > 1 || !first)
                hooks_log("the coordinator refused this rank: %s; it runs "
                          "unprotected",
                          err.text);
            ch.stop = 1;
            ch.released = UINT64_MAX; /* nothing to wait for any more */
            set_cut();
        }
        pthread_cond_broadcast(&ch.cv);
        if (!ch.stop) {
            struct timespec until = clock_deadline(CLOCK_REALTIME, backoff);

            pthread_cond_timedwait(&ch.cv, &ch.mu, &until);
        }
        pthread_mutex_unlock(&ch.mu);
        if (backoff < 4000)
            backoff *= 2;
    }
    return NULL;
}

int chan_start(const struct chan_target *t, const struct chan_rank *r,
               int timeout_ms, struct vmckpt_error *err)
{
    struct timespec until;
    int ok;

    snprintf(ch.t.job, sizeof(ch.t.job), "%s", t->job);
    snprintf(ch.t.addr, sizeof(ch.t.addr), "%s", t->addr);
    if (auth_key_set(&ch.t.token, t->token.bytes, t->token.len) < 0)
        return errprintf_errno(err, "token");
    ch.r = *r;
    if (pipe2(ch.wake, O_CLOEXEC | O_NONBLOCK) < 0)
        return errprintf_errno(err, "pipe");
    pthread_cond_init(&ch.cv, NULL);
    if (pthread_create(&ch.thread, NULL, chan_main, NULL) != 0) {
        close(ch.wake[0]);
        close(ch.wake[1]);
        errno = EAGAIN;
        return errprintf_errno(err, "thread");
    }
    ch.running = 1;
    until = clock_deadline(CLOCK_REALTIME, (unsigned)timeout_ms);
    pthread_mutex_lock(&ch.mu);
    while (!ch.first_done)
        if (pthread_cond_timedwait(&ch.cv, &ch.mu, &until) == ETIMEDOUT)
            break;
    ok = ch.connected;
    if (!ok)
        errprintf(err, "%s", ch.first_done ? ch.first_error : "no answer");
    pthread_mutex_unlock(&ch.mu);
    return ok ? 0 : -1;
}

uint64_t chan_pending(void)
{
    /* every barrier asks: no lock on this path */
    return ch.running ? __atomic_load_n(&ch.cut, __ATOMIC_ACQUIRE) : 0;
}

int chan_refused(void)
{
    int r;

    pthread_mutex_lock(&ch.mu);
    r = ch.refused;
    pthread_mutex_unlock(&ch.mu);
    return r;
}

uint64_t chan_wait(uint64_t epoch, uint64_t count)
{
    uint64_t restored = 0;

    if (!ch.running)
        return 0;
    pthread_mutex_lock(&ch.mu);
    if (epoch <= ch.released || !ch.connected) {
        /* nothing to wait for, or nobody to tell: this rank goes on (the
         * coordinator cuts unaligned after its timeout) */
        pthread_mutex_unlock(&ch.mu);
        return 0;
    }
    ch.wait_epoch = epoch;
    ch.wait_count = count;
    ch.ready_sent = 0;
    ch.restored_from = 0;
    pthread_mutex_unlock(&ch.mu);
    poke();
    pthread_mutex_lock(&ch.mu);
    while (ch.released < epoch && !ch.stop) {
        struct timespec until;

        if (!ch.connected && ch.lost_since != 0 &&
            clock_mono_ms() - ch.lost_since > GIVE_UP_MS) {
            hooks_log("no coordinator for %d s while held at a barrier: "
                      "going on without the cut",
                      GIVE_UP_MS / 1000);
            ch.released = epoch;
            break;
        }
        until = clock_deadline(CLOCK_REALTIME, 1000);
        pthread_cond_timedwait(&ch.cv, &ch.mu, &until);
    }
    restored = ch.restored_from;
    ch.restored_from = 0;
    if (ch.pending <= ch.released)
        ch.pending = 0;
    set_cut();
    pthread_mutex_unlock(&ch.mu);
    return restored;
}

void chan_stop(void)
{
    if (!ch.running)
        return;
    pthread_mutex_lock(&ch.mu);
    ch.stop = 1;
    pthread_cond_broadcast(&ch.cv);
    pthread_mutex_unlock(&ch.mu);
    poke();
    pthread_join(ch.thread, NULL);
    ch.running = 0;
    close(ch.wake[0]);
    close(ch.wake[1]);
    pthread_cond_destroy(&ch.cv);
    auth_key_dispose(&ch.t.token);
}
