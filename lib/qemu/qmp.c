/* SPDX-License-Identifier: GPL-2.0-or-later */
/* QMP over a unix socket: one JSON object per line each way. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/util/clock.h"
#include "lib/util/evloop.h"
#include "qmp.h"

struct qmp {
    int fd;
    int timeout_ms;
    char *buf;
    size_t len, cap;
    unsigned long events;
};

void qmp_close(struct qmp *q)
{
    int saved = errno;

    if (q == NULL)
        return;
    if (q->fd >= 0)
        close(q->fd);
    free(q->buf);
    free(q);
    errno = saved;
}

/* The next JSON object from the socket, or NULL on error/timeout. */
static json_t *read_obj(struct qmp *q, struct vmckpt_error *err)
{
    uint64_t deadline = clock_mono_ms() + (uint64_t)q->timeout_ms;

    for (;;) {
        char *nl = q->len ? memchr(q->buf, '\n', q->len) : NULL;

        if (nl != NULL) {
            json_error_t je;
            size_t n = (size_t)(nl - q->buf) + 1;
            json_t *o = json_loadb(q->buf, n - 1, 0, &je);

            memmove(q->buf, q->buf + n, q->len - n);
            q->len -= n;
            if (o == NULL || !json_is_object(o)) {
                json_decref(o);
                errno = EPROTO;
                errprintf(err, "QMP: malformed reply: %s", je.text);
                return NULL;
            }
            return o;
        }
        if (q->len + 4096 > q->cap) {
            size_t cap = q->cap ? q->cap * 2 : 16384;
            char *b;

            if (cap > (64u << 20)) {
                errno = EMSGSIZE;
                errprintf(err, "QMP: reply too long");
                return NULL;
            }
            b = realloc(q->buf, cap);
            if (b == NULL) {
                errprintf_errno(err, "QMP");
                return NULL;
            }
            q->buf = b;
            q->cap = cap;
        }
        {
            struct pollfd p = {.fd = q->fd, .events = POLLIN};
            uint64_t now = clock_mono_ms();
            ssize_t r;

            if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0) {
                errno = ETIMEDOUT;
                errprintf(err, "QMP: no reply within %d ms", q->timeout_ms);
                return NULL;
            }
            r = read(q->fd, q->buf + q->len, q->cap - q->len);
            if (r <= 0) {
                if (r < 0 && errno == EINTR)
                    continue;
                errno = r == 0 ? ECONNRESET : errno;
                errprintf_errno(err, "QMP: connection lost");
                return NULL;
            }
            q->len += (size_t)r;
        }
    }
}

static int send_cmd(struct qmp *q, const char *cmd, json_t *args, int fd,
                    struct vmckpt_error *err)
{
    json_t *o = json_pack("{s:s}", "execute", cmd);
    char *s, cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov;
    struct msghdr mh;
    size_t n, off = 0;

    if (o == NULL)
        return errprintf(err, "QMP: cannot build %s", cmd);
    if (args != NULL)
        json_object_set(o, "arguments", args);
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s == NULL)
        return errprintf(err, "QMP: cannot encode %s", cmd);
    n = strlen(s);
    s[n++] = '\n'; /* json_dumps leaves room: replace the NUL */
    while (off < n) {
        ssize_t w;

        memset(&mh, 0, sizeof(mh));
        iov.iov_base = s + off;
        iov.iov_len = n - off;
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        if (fd >= 0 && off == 0) {
            struct cmsghdr *c;

            memset(cbuf, 0, sizeof(cbuf));
            mh.msg_control = cbuf;
            mh.msg_controllen = sizeof(cbuf);
            c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        w = sendmsg(q->fd, &mh, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            free(s);
            return errprintf_errno(err, "QMP: send %s", cmd);
        }
        off += (size_t)w;
    }
    free(s);
    return 0;
}

static int reply(struct qmp *q, const char *cmd, json_t **ret,
                 struct vmckpt_error *err)
{
    for (;;) {
        json_t *o = read_obj(q, err), *v;

        if (o == NULL)
            return errprefix(err, "%s", cmd);
        if (json_object_get(o, "event") != NULL) {
            q->events++;
            json_decref(o);
            continue;
        }
        if ((v = json_object_get(o, "error")) != NULL) {
            errprintf(err, "QMP %s failed: %s: %s", cmd,
                      json_string_value(json_object_get(v, "class")),
                      json_string_value(json_object_get(v, "desc")));
            json_decref(o);
            errno = EIO;
            return -1;
        }
        if ((v = json_object_get(o, "return")) != NULL) {
            if (ret != NULL)
                *ret = json_incref(v);
            json_decref(o);
            return 0;
        }
        json_decref(o); /* the greeting, or something unknown: skip */
    }
}

int qmp_execute_fd(struct qmp *q, const char *cmd, json_t *args, int fd,
                   json_t **ret, struct vmckpt_error *err)
{
    if (send_cmd(q, cmd, args, fd, err) < 0)
        return -1;
    return reply(q, cmd, ret, err);
}

int qmp_execute(struct qmp *q, const char *cmd, json_t *args, json_t **ret,
                struct vmckpt_error *err)
{
    return qmp_execute_fd(q, cmd, args, -1, ret, err);
}

struct qmp *qmp_open(const char *path, int timeout_ms, struct vmckpt_error *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct qmp *q = calloc(1, sizeof(*q));
    json_t *greeting;
    int waited;

    if (q == NULL) {
        errprintf_errno(err, "QMP");
        return NULL;
    }
    q->fd = -1;
    q->timeout_ms = timeout_ms;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        errprintf(err, "QMP socket path too long: %s", path);
        goto fail;
    }
    strcpy(sa.sun_path, path);
    /* QEMU binds the socket before it listens: a refusal (or no file
     * yet) right after it started is retried until the timeout */
    for (waited = 0;; waited += 20) {
        q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (q->fd < 0) {
            errprintf_errno(err, "QMP: socket");
            goto fail;
        }
        if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            break;
        if ((errno != ECONNREFUSED && errno != ENOENT) ||
            waited >= timeout_ms) {
            errprintf_errno(err, "QMP: cannot connect to %s", path);
            goto fail;
        }
        close(q->fd);
        q->fd = -1;
        usleep(20000);
    }
    greeting = read_obj(q, err);
    if (greeting == NULL || json_object_get(greeting, "QMP") == NULL) {
        json_decref(greeting);
        if (greeting != NULL)
            errprintf(err, "QMP: %s did not greet", path);
        goto fail;
    }
    json_decref(greeting);
    if (qmp_execute(q, "qmp_capabilities", NULL, NULL, err) < 0)
        goto fail;
    return q;
fail:
    qmp_close(q);
    return NULL;
}
