/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The text formats of a scrape. The two formats differ in little: the
 * names on TYPE and HELP lines of counters (OpenMetrics names the family,
 * the Prometheus text the sample), UNIT lines and the info type (only
 * OpenMetrics has them), the quoting of HELP and the closing '# EOF'. */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtext.h"

void mtext_init(struct mtext *t, enum mtext_format fmt)
{
    memset(t, 0, sizeof(*t));
    t->fmt = fmt;
}

void mtext_dispose(struct mtext *t)
{
    free(t->buf);
    t->buf = NULL;
    t->len = t->cap = 0;
}

static void fail(struct mtext *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(struct mtext *t, const char *fmt, ...)
{
    va_list ap;

    if (t->failed)
        return;
    t->failed = 1;
    va_start(ap, fmt);
    vsnprintf(t->why, sizeof(t->why), fmt, ap);
    va_end(ap);
}

static int grow(struct mtext *t, size_t more)
{
    size_t cap = t->cap ? t->cap : 4096;
    char *b;

    if (t->failed)
        return -1;
    while (cap - t->len < more + 1) /* room for the NUL as well */
        cap *= 2;
    if (cap == t->cap)
        return 0;
    b = realloc(t->buf, cap);
    if (b == NULL) {
        fail(t, "out of memory");
        return -1;
    }
    t->buf = b;
    t->cap = cap;
    return 0;
}

static void put(struct mtext *t, const char *s, size_t n)
{
    if (grow(t, n) < 0)
        return;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void puts_(struct mtext *t, const char *s)
{
    put(t, s, strlen(s));
}

static void putf(struct mtext *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void putf(struct mtext *t, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        fail(t, "a line piece longer than %zu bytes", sizeof(tmp));
        return;
    }
    put(t, tmp, (size_t)n);
}

/* Escape a HELP text or a label value: backslash and newline always, the
 * double quote in label values and in OpenMetrics HELP. */
static void put_escaped(struct mtext *t, const char *s, int quote)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            puts_(t, "\\\\");
        else if (*s == '\n')
            puts_(t, "\\n");
        else if (*s == '"' && quote)
            puts_(t, "\\\"");
        else
            put(t, s, 1);
    }
}

int mtext_valid_name(const char *s, int label)
{
    const char *p;

    if (s == NULL || *s == '\0')
        return 0;
    for (p = s; *p != '\0'; p++) {
        int c = (unsigned char)*p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (!label && c == ':') || (p != s && c >= '0' && c <= '9');

        if (!ok)
            return 0;
    }
    return 1;
}

/* A number as both formats read it: integers without a fraction, others
 * in the shortest form that reads back the same, and the special values
 * by their names. */
static void fmt_double(double v, char *buf, size_t len)
{
    if (isnan(v))
        snprintf(buf, len, "NaN");
    else if (isinf(v))
        snprintf(buf, len, "%sInf", v > 0 ? "+" : "-");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, len, "%.0f", v);
    else {
        snprintf(buf, len, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, len, "%.17g", v);
    }
}

/* A bucket bound in the canonical form OpenMetrics asks for: "1.0",
 * "0.25", "+Inf". */
static void fmt_le(double v, char *buf, size_t len)
{
    fmt_double(v, buf, len);
    if (!isinf(v) && strpbrk(buf, ".eE") == NULL)
        snprintf(buf + strlen(buf), len - strlen(buf), ".0");
}

static const char *type_name(const struct mtext *t, enum mtext_type type)
{
    switch (type) {
    case MTEXT_COUNTER:
        return "counter";
    case MTEXT_HISTOGRAM:
        return "histogram";
    case MTEXT_INFO:
        return t->fmt == MTEXT_OPENMETRICS ? "info" : "gauge";
    case MTEXT_GAUGE:
        break;
    }
    return "gauge";
}

/* The name a family goes by on its HELP and TYPE lines. */
static void meta_name(const struct mtext *t, char *buf, size_t len)
{
    if (t->fmt == MTEXT_OPENMETRICS ||
        (t->type != MTEXT_COUNTER && t->type != MTEXT_INFO))
        snprintf(buf, len, "%s", t->family);
    else
        snprintf(buf, len, "%s_%s", t->family,
                 t->type == MTEXT_COUNTER ? "total" : "info");
}

static int ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);

    return ls > lx && s[ls - lx - 1] == '_' && strcmp(s + ls - lx, suffix) == 0;
}

static int name_checks(struct mtext *t, const char *name, enum mtext_type type,
                       const char *unit)
{
    if (!mtext_valid_name(name, 0) || strlen(name) + 8 > sizeof(t->family)) {
        fail(t, "bad metric name '%.60s'", name ? name : "(null)");
        return -1;
    }
    if (unit != NULL &&
        (!mtext_valid_name(unit, 1) || !ends_with(name, unit))) {
        fail(t, "metric %s: the name must end with its unit '%s'", name, unit);
        return -1;
    }
    if ((type == MTEXT_COUNTER && ends_with(name, "total")) ||
        (type == MTEXT_INFO && ends_with(name, "info"))) {
        fail(t, "metric %s: name given with its sample suffix", name);
        return -1;
    }
    return 0;
}

void mtext_family(struct mtext *t, const char *name, enum mtext_type type,
                  const char *unit, const char *help)
{
    char meta[160];

    if (t->failed || name_checks(t, name, type, unit) < 0)
        return;
    snprintf(t->family, sizeof(t->family), "%s", name);
    t->type = type;
    meta_name(t, meta, sizeof(meta));
    putf(t, "# HELP %s ", meta);
    put_escaped(t, help ? help : "", t->fmt == MTEXT_OPENMETRICS);
    putf(t, "\n# TYPE %s %s\n", meta, type_name(t, type));
    if (unit != NULL && t->fmt == MTEXT_OPENMETRICS)
        putf(t, "# UNIT %s %s\n", meta, unit);
}

/* NAME{labels[,extra="value"]} */
static void series(struct mtext *t, const char *suffix, mtext_labels labels,
                   const char *extra, const char *extra_value)
{
    size_t i;
    int any = 0;

    putf(t, "%s%s", t->family, suffix);
    for (i = 0; labels != NULL && labels[i] != NULL; i += 2) {
        if (!mtext_valid_name(labels[i], 1) || labels[i + 1] == NULL ||
            (extra != NULL && strcmp(labels[i], extra) == 0)) {
            fail(t, "metric %s: bad label '%.40s'", t->family, labels[i]);
            return;
        }
        putf(t, "%s%s=\"", any++ ? "," : "{", labels[i]);
        put_escaped(t, labels[i + 1], 1);
        puts_(t, "\"");
    }
    if (extra != NULL) {
        putf(t, "%s%s=\"", any++ ? "," : "{", extra);
        put_escaped(t, extra_value, 1);
        puts_(t, "\"");
    }
    if (any)
        puts_(t, "}");
}

static int sample_check(struct mtext *t, int histogram)
{
    if (t->failed)
        return -1;
    if (t->family[0] == '\0' || (t->type == MTEXT_HISTOGRAM) != histogram) {
        fail(t, "a sample that does not fit family '%s'", t->family);
        return -1;
    }
    return 0;
}

static const char *sample_suffix(const struct mtext *t)
{
    return t->type == MTEXT_COUNTER ? "_total"
           : t->type == MTEXT_INFO  ? "_info"
                                    : "";
}

void mtext_uint(struct mtext *t, mtext_labels labels, uint64_t value)
{
    if (sample_check(t, 0) < 0)
        return;
    series(t, sample_suffix(t), labels, NULL, NULL);
    putf(t, " %llu\n", (unsigned long long)value);
}

void mtext_double(struct mtext *t, mtext_labels labels, double value)
{
    char num[40];

    if (sample_check(t, 0) < 0)
        return;
    if (t->type == MTEXT_COUNTER && !(value >= 0)) {
        fail(t, "counter %s: negative or NaN value", t->family);
        return;
    }
    fmt_double(value, num, sizeof(num));
    series(t, sample_suffix(t), labels, NULL, NULL);
    putf(t, " %s\n", num);
}

void mtext_hist(struct mtext *t, mtext_labels labels, const struct mhist *h)
{
    char le[40], num[40];
    uint64_t cum = 0;
    size_t i;

    if (sample_check(t, 1) < 0)
        return;
    for (i = 0; i <= h->n; i++) {
        cum += h->counts[i];
        fmt_le(i < h->n ? h->bounds[i] : INFINITY, le, sizeof(le));
        series(t, "_bucket", labels, "le", le);
        putf(t, " %llu\n", (unsigned long long)cum);
    }
    fmt_double(h->sum, num, sizeof(num));
    series(t, "_sum", labels, NULL, NULL);
    putf(t, " %s\n", num);
    series(t, "_count", labels, NULL, NULL);
    putf(t, " %llu\n", (unsigned long long)h->count);
}

void mtext_fail(struct mtext *t, const char *why)
{
    fail(t, "%s", why);
}

const char *mtext_finish(struct mtext *t, size_t *len)
{
    if (t->fmt == MTEXT_OPENMETRICS)
        puts_(t, "# EOF\n");
    else if (t->len == 0)
        put(t, "", 0); /* an empty text is still a buffer */
    if (t->failed)
        return NULL;
    *len = t->len;
    return t->buf;
}

void mhist_init(struct mhist *h, const double *bounds, size_t n)
{
    memset(h, 0, sizeof(*h));
    h->bounds = bounds;
    h->n = n > MHIST_MAX_BUCKETS ? MHIST_MAX_BUCKETS : n;
}

void mhist_observe(struct mhist *h, double v)
{
    size_t i;

    if (!(v >= 0))
        v = 0;
    for (i = 0; i < h->n && v > h->bounds[i]; i++)
        ;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

const double mhist_pause_bounds[MHIST_PAUSE_N] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
const double mhist_long_bounds[MHIST_LONG_N] = {0.1, 0.25, 0.5, 1,   2.5, 5,
                                                10,  25,   60,  120, 300, 600};
