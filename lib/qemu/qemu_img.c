/* SPDX-License-Identifier: GPL-2.0-or-later */
/* qemu-img runs (qemu_img.h). Each run opens three pipes, close-on-exec
 * in this process: the child's stdout, its stderr, and one that brings
 * execvp()'s errno back when the program cannot be started (it closes
 * unwritten when the exec succeeds). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qemu_img.h"

#define ERR_KEEP 1024          /* stderr bytes kept for the message */
#define OUT_MAX  (1024 * 1024) /* stdout bytes accepted (info's JSON) */
#define WHAT_MAX 512           /* "qemu-img info /x", for messages */
#define ARGS_MAX 20            /* arguments of one run */

/* What one run printed. */
struct capture {
    char *out; /* stdout, NUL terminated; NULL when it printed nothing */
    size_t out_len;
    int out_big; /* printed more than OUT_MAX (the rest is dropped) */
    int oom;
    char err[ERR_KEEP + 1]; /* the first ERR_KEEP bytes of stderr */
    size_t err_len;
};

/* The started program: its pid and the read ends of its pipes. */
struct child {
    pid_t pid;
    int out, err, exec;
};

/* A command line; the calls below never pass ARGS_MAX arguments. */
struct args {
    const char *v[ARGS_MAX + 1];
    size_t n;
};

static void args_add(struct args *a, ...) __attribute__((sentinel));

/* Append the strings up to a NULL, keeping v NULL-terminated. */
static void args_add(struct args *a, ...)
{
    const char *s;
    va_list ap;

    va_start(ap, a);
    while ((s = va_arg(ap, const char *)) != NULL)
        if (a->n < ARGS_MAX)
            a->v[a->n++] = s;
    va_end(ap);
    a->v[a->n] = NULL;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* In the child: a copy of 'fd' above the standard descriptors, so that
 * placing one pipe on 0-2 cannot close another that happens to be there
 * (when the parent runs with a standard descriptor closed). */
static int lift(int fd)
{
    return fd > 2 ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

/* In the child, between fork and exec: async-signal-safe calls only
 * (glibc's execvp searches PATH on the stack, without malloc). Never
 * returns. */
static void child(char *const argv[], int null_fd, int out_fd, int err_fd,
                  int exec_fd)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigset_t none;
    ssize_t n;
    int e;

    /* a daemon blocks the signals its loop takes and ignores SIGPIPE:
     * qemu-img gets the defaults */
    sigaction(SIGPIPE, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    null_fd = lift(null_fd);
    out_fd = lift(out_fd);
    err_fd = lift(err_fd);
    exec_fd = lift(exec_fd);
    /* dup2 clears close-on-exec on 0-2 only; every other descriptor of
     * this process, ours included, was opened close-on-exec */
    if (null_fd < 0 || out_fd < 0 || err_fd < 0 || dup2(null_fd, 0) < 0 ||
        dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) {
        e = errno;
    } else {
        execvp(argv[0], argv);
        e = errno;
    }
    n = write(exec_fd, &e, sizeof(e));
    (void)n;
    _exit(127);
}

/* Start argv[0] with 'argv'; -1 with errno when no process could be
 * started (whether the program runs is told by exec_errno()). */
static int spawn(char *const argv[], struct child *c)
{
    int o[2] = {-1, -1}, e[2] = {-1, -1}, x[2] = {-1, -1};
    int null_fd, rc = -1, saved;

    c->pid = -1;
    c->out = c->err = c->exec = -1;
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0 ||
        pipe2(x, O_CLOEXEC) < 0)
        goto out;
    c->pid = fork();
    if (c->pid < 0)
        goto out;
    if (c->pid == 0)
        child(argv, null_fd, o[1], e[1], x[1]);
    c->out = o[0];
    c->err = e[0];
    c->exec = x[0];
    o[0] = e[0] = x[0] = -1;
    rc = 0;
out:
    saved = errno;
    close_fd(&null_fd);
    close_fd(&o[0]);
    close_fd(&o[1]);
    close_fd(&e[0]);
    close_fd(&e[1]);
    close_fd(&x[0]);
    close_fd(&x[1]);
    errno = saved;
    return rc;
}

/* 0 once the child has exec'd, else the errno of its failed execvp. */
static int exec_errno(int fd)
{
    int e = 0;
    ssize_t n;

    do
        n = read(fd, &e, sizeof(e));
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof(e) && e != 0 ? e : 0;
}

static void keep_out(struct capture *cap, const char *buf, size_t n)
{
    char *p;

    if (n > OUT_MAX - cap->out_len) {
        n = OUT_MAX - cap->out_len;
        cap->out_big = 1;
    }
    if (n == 0 || cap->oom)
        return;
    p = realloc(cap->out, cap->out_len + n + 1);
    if (p == NULL) {
        cap->oom = 1;
        return;
    }
    memcpy(p + cap->out_len, buf, n);
    cap->out = p;
    cap->out_len += n;
    p[cap->out_len] = '\0';
}

static void keep_err(struct capture *cap, const char *buf, size_t n)
{
    if (n > ERR_KEEP - cap->err_len)
        n = ERR_KEEP - cap->err_len;
    memcpy(cap->err + cap->err_len, buf, n);
    cap->err_len += n;
    cap->err[cap->err_len] = '\0';
}

/* Read what is there on '*fd' into 'cap'; the descriptor is closed (-1)
 * at its end. */
static void pump(int *fd, struct capture *cap, int is_err)
{
    char buf[4096];
    ssize_t n = read(*fd, buf, sizeof(buf));

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        close_fd(fd);
        return;
    }
    if (is_err)
        keep_err(cap, buf, (size_t)n);
    else
        keep_out(cap, buf, (size_t)n);
}

/* Everything the child prints, until it closes both outputs. Both are
 * drained together: a child blocked on a full stderr pipe would never
 * finish its stdout. */
static void collect(struct child *c, struct capture *cap)
{
    while (c->out >= 0 || c->err >= 0) {
        struct pollfd p[2] = {{.fd = c->out, .events = POLLIN},
                              {.fd = c->err, .events = POLLIN}};

        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            close_fd(&c->out);
            close_fd(&c->err);
            break;
        }
        if (c->out >= 0 && p[0].revents != 0)
            pump(&c->out, cap, 0);
        if (c->err >= 0 && p[1].revents != 0)
            pump(&c->err, cap, 1);
    }
}

/* The wait status of our one child; -1 with errno when it is lost (a
 * SIGCHLD handler of the process reaped it). */
static int reap(pid_t pid, int *status)
{
    pid_t p;

    do
        p = waitpid(pid, status, 0);
    while (p < 0 && errno == EINTR);
    return p == pid ? 0 : -1;
}

/* If the line 'p'/'*n' starts "X: X: ", drop the first "X: " (QEMU says
 * "Could not open 'x': Could not open 'x': why"). */
static const char *undouble(const char *p, size_t *n)
{
    const char *colon = memchr(p, ':', *n);
    size_t head;

    while (colon != NULL) {
        head = (size_t)(colon - p) + 2;
        if (head * 2 > *n || colon[1] != ' ' || memcmp(p, p + head, head))
            break;
        p += head;
        *n -= head;
        colon = memchr(p, ':', *n);
    }
    return p;
}

/* qemu-img's output as one line into 'buf': its "qemu-img: " prefixes
 * dropped, lines joined with "; ". */
static void tidy(const char *text, const char *prog, char *buf, size_t size)
{
    const char *base = strrchr(prog, '/');
    size_t blen, used = 0;

    base = base != NULL ? base + 1 : prog;
    blen = strlen(base);
    buf[0] = '\0';
    while (*text != '\0' && used < size - 1) {
        const char *end = strchr(text, '\n');
        const char *line = text;
        size_t n = end != NULL ? (size_t)(end - text) : strlen(text);

        text += n + (end != NULL);
        if (n > blen + 2 && strncmp(line, base, blen) == 0 &&
            line[blen] == ':' && line[blen + 1] == ' ') {
            line += blen + 2;
            n -= blen + 2;
        }
        line = undouble(line, &n);
        while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\r' ||
                         line[n - 1] == '\t'))
            n--;
        if (n > 0)
            used += (size_t)snprintf(buf + used, size - used, "%s%.*s",
                                     used ? "; " : "", (int)n, line);
    }
}

/* 'err' for a run that did not exit 0: "<what>: [<meaning> (exit N): ]
 * <what it printed>". */
static int failed(const char *prog, const char *what, int status,
                  const struct capture *cap, const char *(*meaning)(int code),
                  struct vmckpt_error *err)
{
    char said[ERR_KEEP + 1], how[128] = "";
    const char *m = NULL;

    tidy(cap->err, prog, said, sizeof(said));
    if (said[0] == '\0' && cap->out != NULL)
        tidy(cap->out, prog, said, sizeof(said));
    if (WIFEXITED(status) && meaning != NULL)
        m = meaning(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        snprintf(how, sizeof(how), "killed by signal %d",
                 (int)WTERMSIG(status));
    else if (m != NULL)
        snprintf(how, sizeof(how), "%s (exit %d)", m, WEXITSTATUS(status));
    else if (said[0] == '\0')
        snprintf(how, sizeof(how), "exit %d", WEXITSTATUS(status));
    errno = EIO;
    return errprintf(err, "%s: %s%s%s", what, how,
                     how[0] != '\0' && said[0] != '\0' ? ": " : "", said);
}

/* Run 'a' (a->v[0] the program) and wait for it; 0 when it exited 0,
 * with what it printed in 'cap' (free cap->out). 'what' names the run in
 * messages; 'meaning' (may be NULL) names exit codes. */
static int run(const struct args *a, const char *what, struct capture *cap,
               const char *(*meaning)(int code), struct vmckpt_error *err)
{
    const char *prog = a->v[0];
    struct child c;
    int e, status = 0, lost;

    memset(cap, 0, sizeof(*cap));
    /* execvp's argv is char *const[]: the strings are not written */
    if (spawn((char *const *)a->v, &c) < 0)
        return errprintf_errno(err, "%s: cannot start %s", what, prog);
    e = exec_errno(c.exec);
    close_fd(&c.exec);
    collect(&c, cap);
    lost = reap(c.pid, &status);
    if (e == ENOENT) {
        errno = ENOENT;
        return errprintf(err, "%s not found (install qemu-utils)", prog);
    }
    if (e != 0) {
        errno = e;
        return errprintf_errno(err, "%s: cannot run %s", what, prog);
    }
    if (lost < 0)
        return errprintf_errno(err, "%s: its exit status was lost", what);
    if (cap->oom) {
        errno = ENOMEM;
        return errprintf(err, "%s: out of memory for its output", what);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    return failed(prog, what, status, cap, meaning, err);
}

/* Run and drop the output. */
static int run_quiet(const struct args *a, const char *what,
                     const char *(*meaning)(int code), struct vmckpt_error *err)
{
    struct capture cap;
    int rc = run(a, what, &cap, meaning, err);

    free(cap.out);
    return rc;
}

/* Copy a JSON string member into buf; 0, or -1 when it is no string,
 * holds a NUL or does not fit. Absent: "" when 'optional'. */
static int get_string(json_t *o, const char *key, int optional, char *buf,
                      size_t size)
{
    json_t *v = json_object_get(o, key);
    const char *s;

    if (v == NULL && optional) {
        buf[0] = '\0';
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    s = json_string_value(v);
    if (strlen(s) != json_string_length(v) || strlen(s) >= size)
        return -1;
    memcpy(buf, s, strlen(s) + 1);
    return 0;
}

/* A non-negative JSON integer member; absent: 0 when 'optional'. */
static int get_size(json_t *o, const char *key, int optional, uint64_t *out)
{
    json_t *v = json_object_get(o, key);

    if (v == NULL && optional) {
        *out = 0;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* The fields of info's JSON; -1 with 'why' set when it is not the shape
 * qemu-img prints. */
static int parse_info(const char *text, size_t len, struct qemu_img_info *out,
                      const char **why)
{
    json_error_t je;
    json_t *o = json_loadb(text, len, 0, &je);
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(o))
        *why = "not a JSON object";
    else if (get_string(o, "format", 0, out->format, sizeof(out->format)) < 0 ||
             out->format[0] == '\0')
        *why = "no format, or one longer than 15 characters";
    else if (get_size(o, "virtual-size", 0, &out->virtual_size) < 0)
        *why = "no virtual-size";
    else if (get_string(o, "backing-filename", 1, out->backing,
                        sizeof(out->backing)) < 0)
        *why = "backing-filename is no string of less than 4096 bytes";
    else if (get_size(o, "cluster-size", 1, &out->cluster_size) < 0)
        *why = "cluster-size is no size";
    else
        rc = 0;
    json_decref(o);
    return rc;
}

int qemu_img_info(const char *prog, const char *img, const char *fmt,
                  struct qemu_img_info *out, struct vmckpt_error *err)
{
    struct args a = {.n = 0};
    const char *why = NULL;
    char what[WHAT_MAX];
    struct capture cap;
    int rc;

    args_add(&a, prog, "info", "-U", "--output=json", (char *)NULL);
    if (fmt != NULL)
        args_add(&a, "-f", fmt, (char *)NULL);
    args_add(&a, "--", img, (char *)NULL);
    snprintf(what, sizeof(what), "%s info %s", prog, img);
    rc = run(&a, what, &cap, NULL, err);
    if (rc == 0 && (cap.out == NULL || cap.out_big ||
                    parse_info(cap.out, cap.out_len, out, &why) < 0)) {
        errno = EPROTO;
        rc = errprintf(err, "%s: unexpected output (%s)", what,
                       why != NULL ? why : "none, or more than 1 MiB");
    }
    free(cap.out);
    return rc;
}

int qemu_img_create_overlay(const char *prog, const char *path,
                            const char *backing, const char *backing_fmt,
                            uint64_t vsize, struct vmckpt_error *err)
{
    struct args a = {.n = 0};
    char size[24], what[WHAT_MAX];

    snprintf(what, sizeof(what), "%s create %s", prog, path);
    /* -u: the backing is not opened, so it cannot tell the size */
    if (vsize == 0) {
        errno = EINVAL;
        return errprintf(err, "%s: the virtual size must be given", what);
    }
    snprintf(size, sizeof(size), "%" PRIu64, vsize);
    args_add(&a, prog, "create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F",
             backing_fmt, "-o", "cluster_size=65536,extended_l2=on", "--", path,
             size, (char *)NULL);
    return run_quiet(&a, what, NULL, err);
}

static int rebase(const char *prog, const char *img, const char *backing,
                  const char *backing_fmt, int unsafe, struct vmckpt_error *err)
{
    struct args a = {.n = 0};
    char what[WHAT_MAX];

    args_add(&a, prog, "rebase", "-q", "-f", "qcow2", "-b", backing, "-F",
             backing_fmt, (char *)NULL);
    if (unsafe)
        args_add(&a, "-u", (char *)NULL);
    args_add(&a, "--", img, (char *)NULL);
    snprintf(what, sizeof(what), "%s rebase%s %s onto %s", prog,
             unsafe ? " -u" : "", img, backing);
    return run_quiet(&a, what, NULL, err);
}

int qemu_img_rebase_unsafe(const char *prog, const char *img,
                           const char *backing, const char *backing_fmt,
                           struct vmckpt_error *err)
{
    return rebase(prog, img, backing, backing_fmt, 1, err);
}

int qemu_img_rebase_safe(const char *prog, const char *img, const char *backing,
                         const char *backing_fmt, struct vmckpt_error *err)
{
    return rebase(prog, img, backing, backing_fmt, 0, err);
}

int qemu_img_commit(const char *prog, const char *img, struct vmckpt_error *err)
{
    struct args a = {.n = 0};
    char what[WHAT_MAX];

    args_add(&a, prog, "commit", "-q", "-d", "-f", "qcow2", "--", img,
             (char *)NULL);
    snprintf(what, sizeof(what), "%s commit %s", prog, img);
    return run_quiet(&a, what, NULL, err);
}

/* qemu-img check's exit codes (its manual, "check"). */
static const char *check_meaning(int code)
{
    switch (code) {
    case 2:
        return "image corrupted";
    case 3:
        return "leaked clusters (no data lost)";
    case 63:
        return "format without checks";
    default:
        return NULL;
    }
}

int qemu_img_check(const char *prog, const char *img, const char *fmt,
                   struct vmckpt_error *err)
{
    struct args a = {.n = 0};
    char what[WHAT_MAX];

    args_add(&a, prog, "check", "-q", (char *)NULL);
    if (fmt != NULL)
        args_add(&a, "-f", fmt, (char *)NULL);
    args_add(&a, "--", img, (char *)NULL);
    snprintf(what, sizeof(what), "%s check %s", prog, img);
    return run_quiet(&a, what, check_meaning, err);
}
