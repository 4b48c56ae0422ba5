/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of libmetrics: the two text formats, histograms, the HTTP
 * request parser (well-formed and malformed heads), content negotiation,
 * and the endpoint on a real loop. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/metrics/http.h"
#include "lib/metrics/httpd.h"
#include "lib/metrics/mtext.h"
#include "lib/util/net.h"

static const double bounds[] = {0.01, 0.1, 1};

/* The families of a small text, used by several cases. */
static void sample_text(struct mtext *t)
{
    struct mhist h;

    mtext_family(t, "x_hosts", MTEXT_GAUGE, NULL, "Hosts \"by\" state\\n.");
    mtext_uint(t, (mtext_labels){"state", "up", NULL}, 2);
    mtext_uint(t, (mtext_labels){"state", "a\"b\\c\nd", NULL}, 0);
    mtext_family(t, "x_epochs", MTEXT_COUNTER, NULL, "Epochs.");
    mtext_uint(t, NULL, 7);
    mtext_family(t, "x_pause_seconds", MTEXT_HISTOGRAM, "seconds", "Pauses.");
    mhist_init(&h, bounds, 3);
    mhist_observe(&h, 0.01);
    mhist_observe(&h, 0.5);
    mhist_observe(&h, 3);
    mtext_hist(t, NULL, &h);
    mtext_family(t, "x_build", MTEXT_INFO, NULL, "Build.");
    mtext_uint(t, (mtext_labels){"version", "1.0", NULL}, 1);
}

/* The Prometheus text: sample names on HELP/TYPE of counters, no UNIT, no
 * EOF, info as a gauge, label values escaped, cumulative buckets. */
START_TEST(text_prometheus)
{
    struct mtext t;
    const char *s;
    size_t len;

    mtext_init(&t, MTEXT_PROMETHEUS);
    sample_text(&t);
    s = mtext_finish(&t, &len);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(len, strlen(s));
    ck_assert_ptr_nonnull(strstr(s, "# HELP x_hosts Hosts \"by\" state\\\\n.\n"
                                    "# TYPE x_hosts gauge\n"
                                    "x_hosts{state=\"up\"} 2\n"
                                    "x_hosts{state=\"a\\\"b\\\\c\\nd\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(s, "# TYPE x_epochs_total counter\n"
                                    "x_epochs_total 7\n"));
    ck_assert_ptr_nonnull(strstr(s, "x_pause_seconds_bucket{le=\"0.01\"} 1\n"
                                    "x_pause_seconds_bucket{le=\"0.1\"} 1\n"
                                    "x_pause_seconds_bucket{le=\"1.0\"} 2\n"
                                    "x_pause_seconds_bucket{le=\"+Inf\"} 3\n"
                                    "x_pause_seconds_sum 3.51\n"
                                    "x_pause_seconds_count 3\n"));
    ck_assert_ptr_nonnull(strstr(s, "# TYPE x_build_info gauge\n"
                                    "x_build_info{version=\"1.0\"} 1\n"));
    ck_assert_ptr_null(strstr(s, "# UNIT"));
    ck_assert_ptr_null(strstr(s, "# EOF"));
    mtext_dispose(&t);
}
END_TEST

/* OpenMetrics: family names on HELP/TYPE, UNIT lines, quotes escaped in
 * HELP, info type, and '# EOF' last. */
START_TEST(text_openmetrics)
{
    struct mtext t;
    const char *s;
    size_t len;

    mtext_init(&t, MTEXT_OPENMETRICS);
    sample_text(&t);
    s = mtext_finish(&t, &len);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(strstr(s, "# HELP x_hosts Hosts \\\"by\\\" state"));
    ck_assert_ptr_nonnull(strstr(s, "# TYPE x_epochs counter\n"
                                    "x_epochs_total 7\n"));
    ck_assert_ptr_nonnull(strstr(s, "# TYPE x_pause_seconds histogram\n"
                                    "# UNIT x_pause_seconds seconds\n"));
    ck_assert_ptr_nonnull(strstr(s, "# TYPE x_build info\n"
                                    "x_build_info{version=\"1.0\"} 1\n"));
    ck_assert_uint_ge(len, 6);
    ck_assert_str_eq(s + len - 6, "# EOF\n");
    mtext_dispose(&t);
}
END_TEST

/* Mistakes of the caller fail the text instead of producing one a scraper
 * would reject. */
START_TEST(text_mistakes)
{
    struct mtext t;
    size_t len;

    mtext_init(&t, MTEXT_OPENMETRICS);
    mtext_family(&t, "bad name", MTEXT_GAUGE, NULL, "x");
    ck_assert_ptr_null(mtext_finish(&t, &len));
    ck_assert_ptr_nonnull(strstr(t.why, "bad metric name"));
    mtext_dispose(&t);

    mtext_init(&t, MTEXT_OPENMETRICS);
    mtext_family(&t, "x_pause", MTEXT_HISTOGRAM, "seconds", "x");
    ck_assert_ptr_null(mtext_finish(&t, &len));
    mtext_dispose(&t);

    mtext_init(&t, MTEXT_PROMETHEUS);
    mtext_family(&t, "x_epochs_total", MTEXT_COUNTER, NULL, "x");
    ck_assert_ptr_null(mtext_finish(&t, &len));
    mtext_dispose(&t);

    mtext_init(&t, MTEXT_PROMETHEUS);
    mtext_uint(&t, NULL, 1); /* no family */
    ck_assert_ptr_null(mtext_finish(&t, &len));
    mtext_dispose(&t);

    mtext_init(&t, MTEXT_PROMETHEUS);
    mtext_family(&t, "x", MTEXT_GAUGE, NULL, "x");
    mtext_uint(&t, (mtext_labels){"0bad", "v", NULL}, 1);
    ck_assert_ptr_null(mtext_finish(&t, &len));
    mtext_dispose(&t);

    mtext_init(&t, MTEXT_PROMETHEUS);
    mtext_family(&t, "x", MTEXT_COUNTER, NULL, "x");
    mtext_double(&t, NULL, -1);
    ck_assert_ptr_null(mtext_finish(&t, &len));
    mtext_dispose(&t);
}
END_TEST

/* Numbers: integers plain, fractions short, specials named. */
START_TEST(text_numbers)
{
    struct mtext t;
    const char *s;
    size_t len;

    mtext_init(&t, MTEXT_PROMETHEUS);
    mtext_family(&t, "g", MTEXT_GAUGE, NULL, "g");
    mtext_double(&t, (mtext_labels){"k", "a", NULL}, 1e6);
    mtext_double(&t, (mtext_labels){"k", "b", NULL}, 0.1);
    mtext_double(&t, (mtext_labels){"k", "c", NULL}, INFINITY);
    mtext_uint(&t, (mtext_labels){"k", "d", NULL}, 18446744073709551615ULL);
    s = mtext_finish(&t, &len);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(strstr(s, "g{k=\"a\"} 1000000\n"));
    ck_assert_ptr_nonnull(strstr(s, "g{k=\"b\"} 0.1\n"));
    ck_assert_ptr_nonnull(strstr(s, "g{k=\"c\"} +Inf\n"));
    ck_assert_ptr_nonnull(strstr(s, "g{k=\"d\"} 18446744073709551615\n"));
    mtext_dispose(&t);
}
END_TEST

static long parse(const char *head, struct http_request *req, int *status,
                  const char **why)
{
    return http_parse(head, strlen(head), 8192, req, status, why);
}

/* Well-formed heads: methods, targets (origin, absolute, query), both
 * versions, several Accept headers joined. */
START_TEST(parse_good)
{
    struct http_request req;
    const char *why = NULL;
    int status = 0;
    const char *h1 = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: a/b\r\n"
                     "accept:  c/d ;q=0.5 \r\n\r\nBODY";

    ck_assert_int_eq(parse(h1, &req, &status, &why), (long)strlen(h1) - 4);
    ck_assert_str_eq(req.method, "GET");
    ck_assert_str_eq(req.path, "/metrics");
    ck_assert_int_eq(req.minor, 1);
    ck_assert_str_eq(req.accept, "a/b,c/d ;q=0.5");
    ck_assert_int_gt(
        parse("HEAD /metrics?x=1 HTTP/1.0\n\n", &req, &status, &why), 0);
    ck_assert_str_eq(req.path, "/metrics");
    ck_assert_int_eq(req.minor, 0);
    ck_assert_int_gt(parse("\r\nGET http://h:1/metrics HTTP/1.0\r\n\r\n", &req,
                           &status, &why),
                     0);
    ck_assert_str_eq(req.path, "/metrics");
    ck_assert_int_gt(parse("POST /x HTTP/1.0\r\n\r\n", &req, &status, &why), 0);
    ck_assert_str_eq(req.method, "POST");
}
END_TEST

/* Incomplete heads ask for more; past the limit they are refused. */
START_TEST(parse_incomplete)
{
    struct http_request req;
    const char *why = NULL;
    char big[300];
    int status = 0;

    ck_assert_int_eq(
        parse("GET /metrics HTTP/1.1\r\nHost: x\r\n", &req, &status, &why), 0);
    ck_assert_int_eq(parse("GET /met", &req, &status, &why), 0);
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /metrics HTTP/1.0\r\nX: ", 26);
    ck_assert_int_eq(http_parse(big, sizeof(big), 256, &req, &status, &why),
                     -1);
    ck_assert_int_eq(status, 431);
}
END_TEST

/* Malformed heads: each refused with its status. */
START_TEST(parse_bad)
{
    static const struct {
        const char *head;
        int status;
    } cases[] = {
        {"GARBAGE\r\n\r\n", 400},
        {"GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET /metrics\r\n\r\n", 400},
        {"GET metrics HTTP/1.0\r\n\r\n", 400},
        {"G(T /metrics HTTP/1.0\r\n\r\n", 400},
        {"GET /metrics HTTP/1.1\r\n\r\n", 400}, /* no Host */
        {"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        {"GET /metrics HTTP/1.0\r\nNoColon\r\n\r\n", 400},
        {"GET /metrics HTTP/1.0\r\n: empty\r\n\r\n", 400},
        {"GET /metrics HTTP/1.0\r\nBad Name: x\r\n\r\n", 400},
        {"GET /metrics HTTP/1.0\r\nA: b\r\n folded\r\n\r\n", 400},
        {"GET /metrics HTTP/1.0\r\nA: b\x01\r\n\r\n", 400},
        {"GET /metrics HTTP/1.0\r\nA: b\rc\r\n\r\n", 400},
        {"GET /metrics HTTP/1.0 \r\n\r\n", 400},
        {"GET /metrics HTTPS/1.0\r\n\r\n", 400},
        {"GET /metrics HTTP/2.0\r\n\r\n", 505},
        {"GET /metrics HTTP/1.2\r\n\r\n", 505},
        {"AVERYVERYLONGMETHOD / HTTP/1.0\r\n\r\n", 400},
    };
    struct http_request req;
    const char *why;
    size_t i;
    int status;
    char nul[] = "GET /metrics HTTP/1.0\r\nA: \0\r\n\r\n";

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        status = 0;
        why = NULL;
        ck_assert_msg(parse(cases[i].head, &req, &status, &why) == -1,
                      "case %zu accepted", i);
        ck_assert_msg(status == cases[i].status, "case %zu: status %d", i,
                      status);
        ck_assert_ptr_nonnull(why);
    }
    ck_assert_int_eq(
        http_parse(nul, sizeof(nul) - 1, 8192, &req, &status, &why), -1);
    ck_assert_int_eq(status, 400);
}
END_TEST

/* Content negotiation: OpenMetrics when asked for at least as much as the
 * Prometheus text; what Prometheus itself sends picks OpenMetrics. */
START_TEST(negotiation)
{
    ck_assert_int_eq(http_wants_openmetrics(NULL), 0);
    ck_assert_int_eq(http_wants_openmetrics(""), 0);
    ck_assert_int_eq(http_wants_openmetrics("*/*"), 0);
    ck_assert_int_eq(http_wants_openmetrics("text/plain"), 0);
    ck_assert_int_eq(http_wants_openmetrics("application/openmetrics-text"), 1);
    ck_assert_int_eq(
        http_wants_openmetrics("application/openmetrics-text;version=1.0.0,"
                               "application/openmetrics-text;version=0.0.1;"
                               "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;"
                               "q=0.1"),
        1);
    ck_assert_int_eq(http_wants_openmetrics("text/plain;q=0.9, "
                                            "application/openmetrics-text;"
                                            "q=0.5"),
                     0);
    ck_assert_int_eq(http_wants_openmetrics("application/openmetrics-text;"
                                            "version=9.9.9"),
                     0);
    ck_assert_int_eq(http_wants_openmetrics("application/openmetrics-text;"
                                            "q=0"),
                     0);
    ck_assert_int_eq(http_wants_openmetrics("Application/OpenMetrics-Text ; "
                                            "q=1"),
                     1);
}
END_TEST

static void render(void *arg, struct mtext *t)
{
    (void)arg;
    mtext_family(t, "x_up", MTEXT_GAUGE, NULL, "Up.");
    mtext_uint(t, NULL, 1);
}

static void stop_loop(struct evloop *loop, struct ev_timer *t)
{
    (void)t;
    evloop_stop(loop);
}

/* Send 'req' to the endpoint, run the loop until it answers, return the
 * answer (static). */
static const char *exchange(struct evloop *loop, const char *addr,
                            const char *req)
{
    static char out[4096];
    struct vmckpt_error err;
    size_t got = 0;
    int fd = net_connect(addr, 0, 1000, &err), i;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    for (i = 0; i < 200; i++) {
        ssize_t n;

        /* one turn of the loop: a timer that stops it soon */
        {
            struct ev_timer t;

            ev_timer_init(&t, stop_loop, NULL);
            ev_timer_start(loop, &t, 5);
            evloop_run(loop);
            ev_timer_stop(loop, &t);
        }
        n = recv(fd, out + got, sizeof(out) - 1 - got, MSG_DONTWAIT);
        if (n == 0)
            break;
        if (n > 0)
            got += (size_t)n;
    }
    close(fd);
    out[got] = '\0';
    return out;
}

/* The endpoint on a loop: 200 in both formats, 404, 405, 400. */
START_TEST(endpoint)
{
    struct evloop *loop = evloop_create();
    struct vmckpt_error err;
    struct httpd *h;
    char addr[NET_ADDRSTRLEN];
    const char *r;

    ck_assert_ptr_nonnull(loop);
    h = httpd_start(loop, "127.0.0.1:0", NULL, render, NULL, &err);
    ck_assert_ptr_nonnull(h);
    httpd_local_name(h, addr, sizeof(addr));
    r = exchange(loop, addr, "GET /metrics HTTP/1.0\r\n\r\n");
    ck_assert_ptr_nonnull(strstr(r, "HTTP/1.1 200 OK\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "text/plain; version=0.0.4"));
    ck_assert_ptr_nonnull(strstr(r, "\r\n\r\n# HELP x_up Up.\n"));
    r = exchange(loop, addr,
                 "GET /metrics HTTP/1.1\r\nHost: h\r\nAccept: "
                 "application/openmetrics-text\r\n\r\n");
    ck_assert_ptr_nonnull(strstr(r, "application/openmetrics-text; "
                                    "version=1.0.0; charset=utf-8"));
    ck_assert_ptr_nonnull(strstr(r, "x_up 1\n# EOF\n"));
    r = exchange(loop, addr, "HEAD /metrics HTTP/1.0\r\n\r\n");
    ck_assert_ptr_nonnull(strstr(r, "200 OK"));
    ck_assert_ptr_null(strstr(r, "# HELP"));
    r = exchange(loop, addr, "GET /other HTTP/1.0\r\n\r\n");
    ck_assert_ptr_nonnull(strstr(r, "HTTP/1.1 404 Not Found\r\n"));
    r = exchange(loop, addr, "DELETE /metrics HTTP/1.0\r\n\r\n");
    ck_assert_ptr_nonnull(strstr(r, "HTTP/1.1 405 Method Not Allowed\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "Allow: GET, HEAD\r\n"));
    r = exchange(loop, addr, "NONSENSE\r\n\r\n");
    ck_assert_ptr_nonnull(strstr(r, "HTTP/1.1 400 Bad Request\r\n"));
    httpd_stop(h);
    evloop_destroy(loop);
}
END_TEST

/* Run the loop for about 'ms'. */
static void spin(struct evloop *loop, unsigned ms)
{
    struct ev_timer t;

    ev_timer_init(&t, stop_loop, NULL);
    ev_timer_start(loop, &t, ms);
    evloop_run(loop);
    ev_timer_stop(loop, &t);
}

/* The limits: a connection over the count gets 503, a head over the size
 * 431, and an idle connection is closed at its deadline. */
START_TEST(endpoint_limits)
{
    struct httpd_limits lim = {
        .max_head = 64, .max_conns = 1, .timeout_ms = 300};
    struct evloop *loop = evloop_create();
    struct vmckpt_error err;
    char addr[NET_ADDRSTRLEN], buf[256];
    struct httpd *h;
    const char *r;
    int idle, extra;
    ssize_t n;

    h = httpd_start(loop, "127.0.0.1:0", &lim, render, NULL, &err);
    ck_assert_ptr_nonnull(h);
    httpd_local_name(h, addr, sizeof(addr));
    idle = net_connect(addr, 0, 1000, &err);
    ck_assert_int_ge(idle, 0);
    spin(loop, 20);
    extra = net_connect(addr, 0, 1000, &err);
    ck_assert_int_ge(extra, 0);
    spin(loop, 20);
    n = recv(extra, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, "HTTP/1.1 503 "));
    close(extra);
    spin(loop, 400); /* past the idle one's deadline */
    ck_assert_int_eq(recv(idle, buf, sizeof(buf), MSG_DONTWAIT), 0);
    close(idle);
    r = exchange(
        loop, addr,
        "GET /metrics HTTP/1.0\r\nX-Long: "
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n");
    ck_assert_ptr_nonnull(strstr(r, "HTTP/1.1 431 "));
    httpd_stop(h);
    evloop_destroy(loop);
}
END_TEST

/* metrics_listen values: off, HOST:PORT; a missing port or junk refused
 * with the key named. */
START_TEST(check_addr)
{
    struct vmckpt_error err;

    ck_assert_int_eq(httpd_check_addr("[agent] metrics_listen", "", &err), 0);
    ck_assert_int_eq(
        httpd_check_addr("[agent] metrics_listen", "10.0.0.1:9471", &err), 0);
    ck_assert_int_eq(
        httpd_check_addr("[agent] metrics_listen", "10.0.0.1", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "[agent] metrics_listen"));
    ck_assert_int_eq(
        httpd_check_addr("[agent] metrics_listen", "h:99999", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "bad port"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    /* the endpoint tests run a loop and clients: seconds on a loaded
     * machine under the sanitizers, past check's default of 4 */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, text_prometheus);
    tcase_add_test(tc, text_openmetrics);
    tcase_add_test(tc, text_mistakes);
    tcase_add_test(tc, text_numbers);
    tcase_add_test(tc, parse_good);
    tcase_add_test(tc, parse_incomplete);
    tcase_add_test(tc, parse_bad);
    tcase_add_test(tc, negotiation);
    tcase_add_test(tc, endpoint);
    tcase_add_test(tc, endpoint_limits);
    tcase_add_test(tc, check_addr);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
