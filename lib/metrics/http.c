/* SPDX-License-Identifier: GPL-2.0-or-later */
/* HTTP request heads (RFC 9112) as a metrics endpoint reads them: strict
 * where a mistake could be exploited (bounds, control bytes, folded or
 * unnamed header lines, several Host headers), lenient where clients
 * differ harmlessly (LF alone as a line end, empty lines before the
 * request). */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

/* RFC 9110 token characters */
static int tchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c != 0 && strchr("!#$%&'*+-.^_`|~", c));
}

/* A refusal: *status and *why set, -1 returned. */
static long refuse(int *status, const char **why, int code, const char *text)
{
    *status = code;
    *why = text;
    return -1;
}

/* The target's path: origin form "/p?q", absolute form "http://a/p", or
 * "*". 0, or -1 when it is none of these. */
static int take_path(struct http_request *req, const char *t, size_t n)
{
    const char *end = t + n, *q;

    if (n == 1 && t[0] == '*') {
        snprintf(req->path, sizeof(req->path), "*");
        return 0;
    }
    if (n > 7 && strncasecmp(t, "http://", 7) == 0) {
        t = memchr(t + 7, '/', (size_t)(end - t - 7));
        if (t == NULL) {
            snprintf(req->path, sizeof(req->path), "/");
            return 0;
        }
    }
    if (t[0] != '/')
        return -1;
    q = memchr(t, '?', (size_t)(end - t));
    if (q != NULL)
        end = q;
    memcpy(req->path, t, (size_t)(end - t));
    req->path[end - t] = '\0';
    return 0;
}

/* "METHOD SP TARGET SP HTTP/1.x" */
static long request_line(struct http_request *req, const char *l, size_t n,
                         int *status, const char **why)
{
    const char *sp1 = memchr(l, ' ', n), *sp2, *v;
    size_t i, vlen;

    if (sp1 == NULL || sp1 == l)
        return refuse(status, why, 400, "malformed request line");
    sp2 = memchr(sp1 + 1, ' ', (size_t)(l + n - sp1 - 1));
    if (sp2 == NULL || sp2 == sp1 + 1)
        return refuse(status, why, 400, "malformed request line");
    if ((size_t)(sp1 - l) >= HTTP_MAX_METHOD)
        return refuse(status, why, 400, "method too long");
    for (i = 0; l + i < sp1; i++)
        if (!tchar((unsigned char)l[i]))
            return refuse(status, why, 400, "bad method");
    memcpy(req->method, l, (size_t)(sp1 - l));
    req->method[sp1 - l] = '\0';
    for (v = sp1 + 1; v < sp2; v++)
        if ((unsigned char)*v <= 0x20 || (unsigned char)*v >= 0x7f)
            return refuse(status, why, 400, "bad request target");
    if ((size_t)(sp2 - sp1 - 1) >= HTTP_MAX_PATH)
        return refuse(status, why, 414, "request target too long");
    if (take_path(req, sp1 + 1, (size_t)(sp2 - sp1 - 1)) < 0)
        return refuse(status, why, 400, "bad request target");
    v = sp2 + 1;
    vlen = (size_t)(l + n - v);
    if (vlen != 8 || strncmp(v, "HTTP/", 5) != 0 ||
        !isdigit((unsigned char)v[5]) || v[6] != '.' ||
        !isdigit((unsigned char)v[7]))
        return refuse(status, why, 400, "malformed HTTP version");
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return refuse(status, why, 505, "only HTTP/1.0 and 1.1 are served");
    req->minor = v[7] - '0';
    return 0;
}

/* Append an Accept value to req->accept. */
static long add_accept(struct http_request *req, const char *v, size_t n,
                       int *status, const char **why)
{
    size_t have = strlen(req->accept), sep = have ? 1 : 0;

    if (have + sep + n >= sizeof(req->accept))
        return refuse(status, why, 431, "Accept header too large");
    if (sep)
        req->accept[have++] = ',';
    memcpy(req->accept + have, v, n);
    req->accept[have + n] = '\0';
    return 0;
}

/* "Name: value" */
static long header_line(struct http_request *req, const char *l, size_t n,
                        int *status, const char **why)
{
    const char *colon = memchr(l, ':', n), *v, *e;
    size_t i;

    if (l[0] == ' ' || l[0] == '\t')
        return refuse(status, why, 400, "folded header line");
    if (colon == NULL || colon == l)
        return refuse(status, why, 400, "malformed header line");
    for (i = 0; l + i < colon; i++)
        if (!tchar((unsigned char)l[i]))
            return refuse(status, why, 400, "bad header name");
    for (v = colon + 1; v < l + n; v++)
        if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f)
            return refuse(status, why, 400, "control byte in a header");
    v = colon + 1;
    e = l + n;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if (colon - l == 4 && strncasecmp(l, "host", 4) == 0) {
        if (req->has_host)
            return refuse(status, why, 400, "more than one Host header");
        req->has_host = 1;
    } else if (colon - l == 6 && strncasecmp(l, "accept", 6) == 0) {
        return add_accept(req, v, (size_t)(e - v), status, why);
    }
    return 0;
}

long http_parse(const char *buf, size_t len, size_t max_head,
                struct http_request *req, int *status, const char **why)
{
    size_t off = 0, scan = len < max_head ? len : max_head;
    int first = 1;

    memset(req, 0, sizeof(*req));
    if (memchr(buf, '\0', scan) != NULL)
        return refuse(status, why, 400, "NUL byte in the request");
    for (;;) {
        const char *nl = memchr(buf + off, '\n', scan - off);
        size_t n;

        if (nl == NULL)
            return len >= max_head
                       ? refuse(status, why, 431, "request head too large")
                       : 0;
        n = (size_t)(nl - (buf + off));
        if (n > 0 && buf[off + n - 1] == '\r')
            n--;
        if (memchr(buf + off, '\r', n) != NULL)
            return refuse(status, why, 400, "bare CR in the request");
        if (n == 0 && first) { /* empty lines before the request line */
            off = (size_t)(nl - buf) + 1;
            continue;
        }
        if (n == 0) {
            if (req->minor == 1 && !req->has_host)
                return refuse(status, why, 400, "HTTP/1.1 without Host");
            return (long)(nl - buf) + 1;
        }
        if ((first ? request_line(req, buf + off, n, status, why)
                   : header_line(req, buf + off, n, status, why)) < 0)
            return -1;
        first = 0;
        off = (size_t)(nl - buf) + 1;
    }
}

/* One media range of an Accept value: its type, q and version. */
struct range {
    char type[64];
    double q;
    char version[16];
};

static void trim(const char **s, const char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t'))
        (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
        (*e)--;
}

static void parse_range(const char *s, const char *e, struct range *r)
{
    const char *semi = memchr(s, ';', (size_t)(e - s)), *te = semi ? semi : e;
    const char *ts = s;

    memset(r, 0, sizeof(*r));
    r->q = 1;
    trim(&ts, &te);
    snprintf(r->type, sizeof(r->type), "%.*s", (int)(te - ts), ts);
    while (semi != NULL) {
        const char *ps = semi + 1, *pe;

        semi = memchr(ps, ';', (size_t)(e - ps));
        pe = semi ? semi : e;
        trim(&ps, &pe);
        if (pe - ps > 2 && strncasecmp(ps, "q=", 2) == 0)
            r->q = strtod(ps + 2, NULL);
        else if (pe - ps > 8 && strncasecmp(ps, "version=", 8) == 0)
            snprintf(r->version, sizeof(r->version), "%.*s", (int)(pe - ps - 8),
                     ps + 8);
    }
    if (!(r->q >= 0) || r->q > 1)
        r->q = 0;
}

int http_wants_openmetrics(const char *accept)
{
    double om = 0, text = 0;
    const char *s = accept;

    while (s != NULL && *s != '\0') {
        const char *e = strchr(s, ',');
        struct range r;

        if (e == NULL)
            e = s + strlen(s);
        parse_range(s, e, &r);
        if (strcasecmp(r.type, "application/openmetrics-text") == 0) {
            if ((r.version[0] == '\0' || strcmp(r.version, "1.0.0") == 0 ||
                 strcmp(r.version, "0.0.1") == 0) &&
                r.q > om)
                om = r.q;
        } else if (strcasecmp(r.type, "text/plain") == 0 && r.q > text) {
            text = r.q;
        }
        s = *e ? e + 1 : e;
    }
    return om > 0 && om >= text;
}

const char *http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    }
    return "Unknown";
}

int http_head(char *buf, size_t len, int status, const char *content_type,
              size_t content_length, const char *extra)
{
    int n = snprintf(buf, len,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "Connection: close\r\n"
                     "Cache-Control: no-store\r\n"
                     "%s\r\n",
                     status, http_reason(status), content_type, content_length,
                     extra ? extra : "");

    return n < 0 || (size_t)n >= len ? -1 : n;
}
