/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of what the daemons do for a service manager: notification
 * datagrams and their address, the log file reopened, the reload. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/util/conf.h"
#include "lib/util/daemon.h"
#include "lib/util/log.h"
#include "lib/util/notify.h"

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/vmckpt-daemon-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* The whole of a small file, NUL-terminated, in a static buffer. */
static const char *slurp(const char *path)
{
    static char buf[8192];
    FILE *f = fopen(path, "re");
    size_t n;

    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void spew(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* A path, an abstract name, and every malformed value. */
START_TEST(notify_addresses)
{
    struct vmckpt_error err;
    struct sockaddr_un sa;
    socklen_t len;
    char longname[200];

    ck_assert_int_eq(notify_address("/run/systemd/notify", &sa, &len, &err), 0);
    ck_assert_int_eq(sa.sun_family, AF_UNIX);
    ck_assert_str_eq(sa.sun_path, "/run/systemd/notify");
    ck_assert_uint_eq(len, offsetof(struct sockaddr_un, sun_path) + 20);

    /* '@' is the abstract namespace: a leading NUL, no terminating one */
    ck_assert_int_eq(notify_address("@vm/notify", &sa, &len, &err), 0);
    ck_assert_int_eq(sa.sun_path[0], '\0');
    ck_assert_int_eq(memcmp(sa.sun_path + 1, "vm/notify", 9), 0);
    ck_assert_uint_eq(len, offsetof(struct sockaddr_un, sun_path) + 10);

    ck_assert_int_eq(notify_address("run/notify", &sa, &len, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "absolute path"));
    ck_assert_int_eq(notify_address("", &sa, &len, &err), -1);
    ck_assert_int_eq(notify_address("@", &sa, &len, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "no abstract name"));

    /* a path fills sun_path with its NUL; an abstract name without */
    memset(longname, 'a', sizeof(longname));
    longname[0] = '/';
    longname[sizeof(sa.sun_path) - 1] = '\0';
    ck_assert_int_eq(notify_address(longname, &sa, &len, &err), 0);
    longname[sizeof(sa.sun_path) - 1] = 'a';
    longname[sizeof(sa.sun_path)] = '\0';
    ck_assert_int_eq(notify_address(longname, &sa, &len, &err), -1);
    ck_assert_int_eq(errno, ENAMETOOLONG);
    ck_assert_ptr_nonnull(strstr(err.text, "over the 108"));
    longname[0] = '@';
    ck_assert_int_eq(notify_address(longname, &sa, &len, &err), 0);
    ck_assert_uint_eq(len, sizeof(sa));
    longname[sizeof(sa.sun_path)] = 'a';
    longname[sizeof(sa.sun_path) + 1] = '\0';
    ck_assert_int_eq(notify_address(longname, &sa, &len, &err), -1);
}
END_TEST

/* Lines end in newlines; a status stays one line and is cut to fit. */
START_TEST(notify_formats)
{
    char buf[64];
    size_t n;

    n = notify_format(buf, sizeof(buf), "READY=1", "listening on 1.2.3.4:7470");
    ck_assert_str_eq(buf, "READY=1\nSTATUS=listening on 1.2.3.4:7470\n");
    ck_assert_uint_eq(n, strlen(buf));
    notify_format(buf, sizeof(buf), "STOPPING=1", NULL);
    ck_assert_str_eq(buf, "STOPPING=1\n");
    notify_format(buf, sizeof(buf), "", "two\nlines\r");
    ck_assert_str_eq(buf, "STATUS=two lines \n");
    notify_format(buf, 24, "READY=1", "a long status that cannot fit");
    ck_assert_str_eq(buf, "READY=1\nSTATUS=a long \n");
    ck_assert_uint_eq(notify_format(buf, 4, "READY=1", NULL), 0);
}
END_TEST

/* Bind a datagram socket at 'addr' (a path or @name); its descriptor. */
static int listener(const char *addr)
{
    struct vmckpt_error err;
    struct sockaddr_un sa;
    socklen_t len;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(notify_address(addr, &sa, &len, &err), 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, len), 0);
    return fd;
}

static const char *receive(int fd)
{
    static char buf[1024];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    return buf;
}

/* NOTIFY_SOCKET is taken out of the environment and each message arrives
 * as one datagram, at a path and at an abstract name; a reload shows the
 * daemon's status again when done. */
START_TEST(notify_sends)
{
    char path[128], abstract[64];
    int fd;

    ck_assert_int_eq(notify_init(), 0);
    ck_assert_int_eq(notify_send("READY=1", NULL), 0); /* none: nothing */

    make_tmpdir();
    snprintf(path, sizeof(path), "%s/notify", tmpdir);
    fd = listener(path);
    setenv("NOTIFY_SOCKET", path, 1);
    ck_assert_int_eq(notify_init(), 1);
    ck_assert_ptr_null(getenv("NOTIFY_SOCKET"));
    notify_ready("serving");
    ck_assert_str_eq(receive(fd), "READY=1\nSTATUS=serving\n");
    notify_reloading();
    ck_assert_int_eq(strncmp(receive(fd), "RELOADING=1\nMONOTONIC_USEC=", 27),
                     0);
    notify_ready(NULL);
    ck_assert_str_eq(receive(fd), "READY=1\nSTATUS=serving\n");
    notify_stopping("shutting down");
    ck_assert_str_eq(receive(fd), "STOPPING=1\nSTATUS=shutting down\n");
    close(fd);
    unlink(path);
    /* nobody listens any more: an error, not a crash */
    ck_assert_int_eq(notify_send("READY=1", NULL), -1);

    snprintf(abstract, sizeof(abstract), "@vmckpt-test-%d", (int)getpid());
    fd = listener(abstract);
    setenv("NOTIFY_SOCKET", abstract, 1);
    ck_assert_int_eq(notify_init(), 1);
    notify_status("busy");
    ck_assert_str_eq(receive(fd), "STATUS=busy\n");
    close(fd);

    setenv("NOTIFY_SOCKET", "relative", 1);
    ck_assert_int_eq(notify_init(), 1);
    ck_assert_int_eq(notify_send("READY=1", NULL), -1);
    rmdir(tmpdir);
}
END_TEST

/* After a rotation (the file renamed), reopening logs to a new file at
 * the old name. */
START_TEST(log_reopens)
{
    char path[128], rotated[140];

    make_tmpdir();
    snprintf(path, sizeof(path), "%s/d.log", tmpdir);
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    ck_assert_int_eq(log_reopen_file(path), -1); /* not logging to a file */
    ck_assert_int_eq(log_init_file("t", path, LOG_INFO), 0);
    ck_assert_str_eq(log_file_path(), path);
    log_info("before");
    ck_assert_int_eq(rename(path, rotated), 0);
    ck_assert_int_eq(log_reopen_file(path), 0);
    log_info("after");
    ck_assert_ptr_nonnull(strstr(slurp(rotated), "before"));
    ck_assert_ptr_null(strstr(slurp(rotated), "after"));
    ck_assert_ptr_nonnull(strstr(slurp(path), "after"));
    ck_assert_int_eq(log_reopen_file("/nonexistent/dir/x.log"), -1);
    log_info("still here");
    ck_assert_ptr_nonnull(strstr(slurp(path), "still here"));
    log_fini();
    unlink(path);
    unlink(rotated);
    rmdir(tmpdir);
}
END_TEST

static const char *const d_keys[] = {"log", "log_level", "port", NULL};
/* "launch" stands for a daemon's own section: one of conf_sections */
static const struct conf_section checked[] = {{"launch", d_keys}, {NULL, NULL}};

static int check_port(const struct conf *conf, struct vmckpt_error *err)
{
    uint64_t v;

    return conf_get_uint(conf, "launch", "port", 1, 1, 65535, &v, err);
}

static const struct daemon_reload desc = {
    .ident = "t",
    .section = "launch",
    .checked = checked,
    .check = check_port,
};

/* A reload reopens the log file, applies log_level, names the other keys
 * that changed; a broken file changes nothing. */
START_TEST(reload_applies_or_keeps)
{
    char conf_path[128], log_path[128], text[512];
    struct daemon_opts o;
    struct vmckpt_error err;

    make_tmpdir();
    snprintf(conf_path, sizeof(conf_path), "%s/d.conf", tmpdir);
    snprintf(log_path, sizeof(log_path), "%s/d.log", tmpdir);
    snprintf(text, sizeof(text), "[launch]\nlog = %s\nport = 1\n", log_path);
    spew(conf_path, text);
    memset(&o, 0, sizeof(o));
    o.config_path = conf_path;
    o.conf = conf_load(conf_path, &err);
    ck_assert_ptr_nonnull(o.conf);
    ck_assert_int_eq(log_init_file("t", log_path, LOG_INFO), 0);

    snprintf(text, sizeof(text),
             "[launch]\nlog = %s\nlog_level = debug\nport = 2\n", log_path);
    spew(conf_path, text);
    ck_assert_int_eq(daemon_reload(&desc, &o), 0);
    ck_assert_int_eq(log_get_priority(), LOG_DEBUG);
    ck_assert_ptr_nonnull(strstr(slurp(log_path),
                                 "log_level info -> debug; changed, for the "
                                 "next start: [launch] port"));

    /* another kind of destination waits for the next start */
    spew(conf_path, "[launch]\nlog = syslog\nlog_level = debug\nport = 1\n");
    ck_assert_int_eq(daemon_reload(&desc, &o), 0);
    ck_assert_int_eq(log_get_dest(), LOG_DEST_FILE);
    ck_assert_ptr_nonnull(strstr(slurp(log_path),
                                 "reloaded: changed, for the next start: log "
                                 "(syslog; a file until then)\n"));

    snprintf(text, sizeof(text), "[launch]\nlog = %s\nlog_level = loud\n",
             log_path);
    spew(conf_path, text);
    ck_assert_int_eq(daemon_reload(&desc, &o), -1);
    ck_assert_int_eq(log_get_priority(), LOG_DEBUG);
    ck_assert_ptr_nonnull(strstr(slurp(log_path), "log_level = 'loud'"));

    spew(conf_path, "[launch]\nport = many\n");
    ck_assert_int_eq(daemon_reload(&desc, &o), -1);
    ck_assert_ptr_nonnull(strstr(slurp(log_path), "'many'"));
    spew(conf_path, "[d\n");
    ck_assert_int_eq(daemon_reload(&desc, &o), -1);
    ck_assert_ptr_nonnull(strstr(slurp(log_path), "syntax error"));
    ck_assert_int_eq(log_get_priority(), LOG_DEBUG);
    log_fini();
    conf_destroy(o.conf);
    unlink(conf_path);
    unlink(log_path);
    rmdir(tmpdir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("daemon");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, notify_addresses);
    tcase_add_test(tc, notify_formats);
    tcase_add_test(tc, notify_sends);
    tcase_add_test(tc, log_reopens);
    tcase_add_test(tc, reload_applies_or_keeps);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
