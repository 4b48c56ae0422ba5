/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of libutil: configuration files, addresses, the event loop. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/util/clock.h"
#include "lib/util/conf.h"
#include "lib/util/conf_keys.h"
#include "lib/util/evloop.h"
#include "lib/util/io.h"
#include "lib/util/runcmd.h"
#include "lib/util/name.h"
#include "lib/util/net.h"

static char *write_tmp(const char *text)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof(path), "/tmp/vmckpt-conf-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

/* Typed look-ups return values and defaults; overrides replace values. */
/* io_writev_all: a gather list (an empty buffer in it too) lands whole
 * and in order, at an offset or at the file's position. */
START_TEST(writev_all)
{
    static uint8_t a[100000], b[70001], got[sizeof(a) + sizeof(b)];
    struct iovec iov[3];
    size_t i;
    FILE *f;

    for (i = 0; i < sizeof(a); i++)
        a[i] = (uint8_t)(i * 7);
    for (i = 0; i < sizeof(b); i++)
        b[i] = (uint8_t)(i * 13 + 5);
    f = tmpfile();
    ck_assert_ptr_nonnull(f);
    iov[0].iov_base = a;
    iov[0].iov_len = sizeof(a);
    iov[1].iov_base = a;
    iov[1].iov_len = 0;
    iov[2].iov_base = b;
    iov[2].iov_len = sizeof(b);
    ck_assert_int_eq(io_writev_all(fileno(f), iov, 3, 4096), 0);
    ck_assert_int_eq(pread(fileno(f), got, sizeof(got), 4096),
                     (ssize_t)sizeof(got));
    ck_assert_mem_eq(got, a, sizeof(a));
    ck_assert_mem_eq(got + sizeof(a), b, sizeof(b));
    iov[0].iov_base = b;
    iov[0].iov_len = 10;
    ck_assert_int_eq(io_writev_all(fileno(f), iov, 1, -1), 0);
    ck_assert_int_eq(pread(fileno(f), got, 10, 0), 10);
    ck_assert_mem_eq(got, b, 10);
    fclose(f);
}
END_TEST

START_TEST(conf_values)
{
    char *p = write_tmp("[cluster]\nkey_file = /k\n[agent]\nname = h1\n"
                        "reconnect_min_ms = 250\nflag = yes\n");
    struct vmckpt_error err;
    struct conf *c = conf_load(p, &err);
    uint64_t v;
    bool b;

    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(conf_get(c, "agent", "name", "x"), "h1");
    ck_assert_str_eq(conf_get(c, "agent", "missing", "dflt"), "dflt");
    ck_assert_int_eq(
        conf_get_uint(c, "agent", "reconnect_min_ms", 1, 0, 1000, &v, &err), 0);
    ck_assert_uint_eq(v, 250);
    ck_assert_int_eq(conf_get_uint(c, "agent", "nope", 7, 0, 9, &v, &err), 0);
    ck_assert_uint_eq(v, 7);
    ck_assert_int_eq(conf_get_bool(c, "agent", "flag", false, &b, &err), 0);
    ck_assert(b);
    ck_assert_int_eq(conf_set(c, "agent", "name", "h2"), 0);
    ck_assert_str_eq(conf_get(c, "agent", "name", "x"), "h2");
    conf_destroy(c);
    unlink(p);
}
END_TEST

/* Malformed values and unknown keys are refused with file:line. */
START_TEST(conf_errors)
{
    char *p = write_tmp("[agent]\nreconnect_min_ms = -3\nbogus = 1\n");
    static const char *const sections[] = {"agent", NULL};
    static const char *const keys[] = {"reconnect_min_ms", NULL};
    struct vmckpt_error err;
    struct conf *c = conf_load(p, &err);
    uint64_t v;

    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(
        conf_get_uint(c, "agent", "reconnect_min_ms", 1, 0, 10, &v, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, ":2:"));
    ck_assert_int_eq(conf_check(c, sections, "agent", keys, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "unknown key 'bogus'"));
    conf_destroy(c);
    unlink(p);

    p = write_tmp("[agent\nname = x\n");
    ck_assert_ptr_null(conf_load(p, &err));
    ck_assert_ptr_nonnull(strstr(err.text, "syntax error"));
    unlink(p);
    {
        char text[1000];

        /* a line the INI parser cannot take whole: refused, saying so */
        snprintf(text, sizeof(text), "[launch]\nagent_command = %0400d\n", 7);
        p = write_tmp(text);
        ck_assert_ptr_null(conf_load(p, &err));
        ck_assert_ptr_nonnull(strstr(err.text, ":2: line longer than"));
        unlink(p);
        /* a comment is a comment whatever its length; the next line is
         * read as its own */
        snprintf(text, sizeof(text),
                 "[launch]\n;agent_command = /%0400d\n# %0300d\nagent_command "
                 "= x\n",
                 7, 8);
        p = write_tmp(text);
        c = conf_load(p, &err);
        ck_assert_ptr_nonnull(c);
        ck_assert_str_eq(conf_get(c, "launch", "agent_command", "?"), "x");
        conf_destroy(c);
        unlink(p);
    }
    ck_assert_ptr_null(conf_load("/nonexistent/vmckpt.conf", &err));
    ck_assert_ptr_nonnull(strstr(err.text, "cannot open"));
}
END_TEST

/* A program checks the keys of its own sections only, refuses unknown
 * sections, and lists exactly the keys it checks. */
START_TEST(conf_own_sections)
{
    static const char *const mine[] = {"a", "b", NULL};
    static const struct conf_section own[] = {
        {"cluster", conf_cluster_keys},
        {"agent", mine},
        {NULL, NULL},
    };
    char *p = write_tmp("[cluster]\ntimeout_ms = 9\n[agent]\nb = 1\n"
                        "[launch]\nnot_mine = 1\n");
    struct vmckpt_error err;
    struct conf *c = conf_load(p, &err);
    char *text = NULL;
    size_t len = 0;
    FILE *f;

    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(conf_check_sections(c, own, &err), 0);
    ck_assert_int_eq(conf_set(c, "agent", "c", "1"), 0);
    ck_assert_int_eq(conf_check_sections(c, own, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "unknown key 'c' in [agent]"));
    conf_destroy(c);
    unlink(p);
    c = conf_create();
    ck_assert_int_eq(conf_set(c, "metrics", "x", "1"), 0);
    ck_assert_int_eq(conf_check_sections(c, own, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "unknown section [metrics]"));
    conf_destroy(c);

    f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    conf_print_keys(f, own);
    fclose(f);
    ck_assert_str_eq(text, "cluster.key_file\ncluster.coordinator\n"
                           "cluster.timeout_ms\ncluster.ca_dir\nagent.a\n"
                           "agent.b\n");
    free(text);
}
END_TEST

/* Names from outside: letters, digits, '.', '_', '-', within the length. */
START_TEST(names)
{
    ck_assert(name_is_plain("h1", 63));
    ck_assert(name_is_plain("node-7.rack_2", 63));
    ck_assert(!name_is_plain("", 63));
    ck_assert(!name_is_plain(NULL, 63));
    ck_assert(!name_is_plain("../x", 63));
    ck_assert(!name_is_plain("a;b", 63));
    ck_assert(!name_is_plain("a b", 63));
    ck_assert(!name_is_plain("abcd", 3));
}
END_TEST

/* "host:port" parsing accepts v4, v6 and defaults, refuses junk. */
START_TEST(net_split_forms)
{
    struct vmckpt_error err;
    char host[NET_ADDRSTRLEN];
    unsigned port;

    ck_assert_int_eq(net_split("10.1.2.3:99", 7, host, &port, &err), 0);
    ck_assert_str_eq(host, "10.1.2.3");
    ck_assert_uint_eq(port, 99);
    ck_assert_int_eq(net_split("coord", 7470, host, &port, &err), 0);
    ck_assert_str_eq(host, "coord");
    ck_assert_uint_eq(port, 7470);
    ck_assert_int_eq(net_split("[::1]:5", 7, host, &port, &err), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_uint_eq(port, 5);
    ck_assert_int_eq(net_split("h:70000", 7, host, &port, &err), -1);
    ck_assert_int_eq(net_split("::1", 7, host, &port, &err), -1);
    ck_assert_int_eq(net_split(":5", 7, host, &port, &err), -1);
    ck_assert_int_eq(net_split("h:x", 7, host, &port, &err), -1);
}
END_TEST

static int fired;

static void on_timer(struct evloop *loop, struct ev_timer *t)
{
    fired++;
    if (fired < 3)
        ev_timer_start(loop, t, 5);
    else
        evloop_stop(loop);
}

/* Timers fire, re-arm from their callback, and stop the loop. */
START_TEST(evloop_timers)
{
    struct evloop *loop = evloop_create();
    struct ev_timer t;
    uint64_t t0 = clock_mono_ms();

    ck_assert_ptr_nonnull(loop);
    fired = 0;
    ev_timer_init(&t, on_timer, NULL);
    ev_timer_start(loop, &t, 5);
    ck_assert_int_eq(evloop_run(loop), 0);
    ck_assert_int_eq(fired, 3);
    ck_assert_uint_ge(clock_mono_ms() - t0, 10);
    evloop_destroy(loop);
}
END_TEST

static void on_readable(struct evloop *loop, struct ev_io *io, int revents)
{
    char c;

    ck_assert_int_eq(read(io->fd, &c, 1), 1);
    ck_assert_int_eq(c, 'x');
    ev_io_stop(loop, io);
    evloop_stop(loop);
}

/* A watched descriptor's callback runs when it becomes readable. */
START_TEST(evloop_io)
{
    struct evloop *loop = evloop_create();
    struct ev_io io;
    int p[2];

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    ev_io_init(&io, p[0], 1 /* POLLIN */, on_readable, NULL);
    ck_assert_int_eq(ev_io_start(loop, &io), 0);
    ck_assert_int_eq(evloop_run(loop), 0);
    ck_assert_int_eq(io.slot, -1);
    close(p[0]);
    close(p[1]);
    evloop_destroy(loop);
}
END_TEST

/* Two readable pipes whose callbacks each stop the other watcher, and
 * timers started out of order. */
struct pair {
    struct ev_io io[2];
    int calls;
    char order[4];
    int norder;
};

static void on_either(struct evloop *loop, struct ev_io *io, int revents)
{
    struct pair *p = io->arg;

    (void)revents;
    p->calls++;
    ev_io_stop(loop, &p->io[0]);
    ev_io_stop(loop, &p->io[1]);
}

/* A timer that knows its name (the ev_timer first, so the callback's
 * pointer is the whole). */
struct named_timer {
    struct ev_timer t;
    char id;
};

static void on_ordered(struct evloop *loop, struct ev_timer *t)
{
    struct pair *p = t->arg;

    p->order[p->norder++] = ((struct named_timer *)(void *)t)->id;
    if (p->norder == 3)
        evloop_stop(loop);
}

START_TEST(evloop_stop_in_round)
{
    /* a watcher stopped by another's callback gets no event of that round
     * (both pipes were readable at once); timers fire soonest first,
     * whatever order they were started in */
    struct evloop *loop = evloop_create();
    struct named_timer t[3];
    struct pair p;
    int a[2], b[2], i;
    static const unsigned delay[3] = {30, 10, 20};

    memset(&p, 0, sizeof(p));
    ck_assert_int_eq(pipe(a), 0);
    ck_assert_int_eq(pipe(b), 0);
    ck_assert_int_eq(write(a[1], "x", 1), 1);
    ck_assert_int_eq(write(b[1], "x", 1), 1);
    ev_io_init(&p.io[0], a[0], 1 /* POLLIN */, on_either, &p);
    ev_io_init(&p.io[1], b[0], 1 /* POLLIN */, on_either, &p);
    ck_assert_int_eq(ev_io_start(loop, &p.io[0]), 0);
    ck_assert_int_eq(ev_io_start(loop, &p.io[1]), 0);
    for (i = 0; i < 3; i++) {
        t[i].id = (char)('0' + i);
        ev_timer_init(&t[i].t, on_ordered, &p);
        ev_timer_start(loop, &t[i].t, delay[i]);
    }
    ck_assert_int_eq(evloop_run(loop), 0);
    ck_assert_int_eq(p.calls, 1);
    ck_assert_str_eq(p.order, "120");
    /* a stopped slot serves a new watcher */
    ck_assert_int_eq(ev_io_start(loop, &p.io[0]), 0);
    ck_assert_int_ge(p.io[0].slot, 0);
    ev_io_stop(loop, &p.io[0]);
    for (i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
    evloop_destroy(loop);
}
END_TEST

/* ---- site commands ---- */

struct ran {
    int status, timed_out, calls;
    char out[RUNCMD_OUT_MAX + 1];
    uint64_t ms;
};

static void on_ran(void *arg, int status, int timed_out, const char *output,
                   uint64_t ms)
{
    struct ran *r = arg;

    r->status = status;
    r->timed_out = timed_out;
    r->ms = ms;
    r->calls++;
    snprintf(r->out, sizeof(r->out), "%s", output);
}

static void stop_soon(struct evloop *loop, struct ev_timer *t)
{
    struct ran *r = t->arg;

    if (r->calls > 0)
        evloop_stop(loop);
    else
        ev_timer_start(loop, t, 10);
}

/* Run 'cmd' for 'arg' with 'timeout_ms' until it ends. */
static void run_one(const char *cmd, const char *arg, unsigned timeout_ms,
                    struct ran *r)
{
    struct evloop *loop = evloop_create();
    struct vmckpt_error err;
    struct ev_timer t;

    memset(r, 0, sizeof(*r));
    ck_assert_ptr_nonnull(loop);
    ck_assert_ptr_nonnull(
        runcmd_start(loop, cmd, arg, timeout_ms, on_ran, r, &err));
    ev_timer_init(&t, stop_soon, r);
    ev_timer_start(loop, &t, 10);
    ck_assert_int_eq(evloop_run(loop), 0);
    evloop_destroy(loop);
    ck_assert_int_eq(r->calls, 1);
}

START_TEST(runcmd_runs)
{
    struct ran r;
    char d[64];

    /* its argument as $1, quoted; stdout and stderr; its exit status */
    run_one("f() { printf '%s|' \"$1\"; echo two >&2; return 3; }; f", "a b",
            5000, &r);
    ck_assert_str_eq(r.out, "a b|two");
    ck_assert(!r.timed_out && WIFEXITED(r.status));
    ck_assert_str_eq(runcmd_describe(r.status, 0, 5000, d, sizeof(d)),
                     "exit 3");
    /* stdin is empty */
    run_one("cat; echo end", "x", 5000, &r);
    ck_assert_str_eq(r.out, "end x");
    /* a command that closes its output and runs on is still awaited */
    run_one("f() { exec >/dev/null 2>&1; sleep 0.3; }; f", "x", 5000, &r);
    ck_assert(!r.timed_out && WIFEXITED(r.status) &&
              WEXITSTATUS(r.status) == 0);
    ck_assert_uint_ge(r.ms, 250);
    /* past its time its whole group is killed */
    run_one("f() { sleep 30 & sleep 30; }; f", "x", 300, &r);
    ck_assert(r.timed_out);
    ck_assert_uint_lt(r.ms, 10000);
    ck_assert_str_eq(runcmd_describe(r.status, 1, 300, d, sizeof(d)),
                     "timed out after 300 ms");
    /* output past the limit is cut, not an error */
    run_one("f() { head -c 5000 /dev/zero | tr '\\0' x; }; f", "x", 5000, &r);
    ck_assert_uint_eq(strlen(r.out), RUNCMD_OUT_MAX);
    /* a command the shell cannot find */
    run_one("/nonexistent/fence", "x", 5000, &r);
    ck_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 127);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, conf_values);
    tcase_add_test(tc, conf_errors);
    tcase_add_test(tc, conf_own_sections);
    tcase_add_test(tc, names);
    tcase_add_test(tc, net_split_forms);
    tcase_add_test(tc, evloop_timers);
    tcase_add_test(tc, evloop_io);
    tcase_add_test(tc, evloop_stop_in_round);
    tcase_add_test(tc, runcmd_runs);
    tcase_add_test(tc, writev_all);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
