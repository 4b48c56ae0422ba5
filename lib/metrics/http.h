/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The little of HTTP/1.0 and 1.1 a metrics endpoint needs: parse a
 * request head (untrusted, bounded), choose the text format from its
 * Accept header, and write a response head. No I/O here (httpd.c does it),
 * so every rule can be unit tested. */
#ifndef VMCKPT_HTTP_H
#define VMCKPT_HTTP_H

#include <stddef.h>

#define HTTP_MAX_METHOD 16
#define HTTP_MAX_PATH   256
#define HTTP_MAX_ACCEPT 1024

/* A parsed request head. */
struct http_request {
    char method[HTTP_MAX_METHOD];
    char path[HTTP_MAX_PATH]; /* the path, without a query */
    int minor;                /* HTTP/1.<minor> */
    int has_host;
    char accept[HTTP_MAX_ACCEPT]; /* every Accept header, joined by ',' */
};

/* Parse the request head at the start of buf[0..len). Returns the length
 * of the head (through its empty line) when it is complete and well
 * formed; 0 when more bytes are needed (and 'len' is below 'max_head');
 * -1 when it must be refused: *status is then the HTTP status to answer
 * (400 malformed, 431 head too large, 505 version) and *why says why in
 * a few words. Line ends may be CRLF or LF. */
long http_parse(const char *buf, size_t len, size_t max_head,
                struct http_request *req, int *status, const char **why);

/* Whether an Accept header value asks for OpenMetrics text 1.0.0 rather
 * than the Prometheus text: 1 when an application/openmetrics-text range
 * (of version 1.0.0, 0.0.1 or none) has a q above 0 and at least that of
 * the best text/plain range ("" or NULL: 0). */
int http_wants_openmetrics(const char *accept);

/* The reason phrase of 'status' ("Unknown" for a code this file does not
 * use). */
const char *http_reason(int status);

/* Write a response head for 'status' into buf[0..len): HTTP/1.1, the
 * content type and length, 'Connection: close', and 'extra' (whole
 * header lines, or NULL). Returns its length, or -1 if it does not fit. */
int http_head(char *buf, size_t len, int status, const char *content_type,
              size_t content_length, const char *extra);

#endif
