/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The text of a scrape: metric families (HELP, TYPE, UNIT) and their
 * samples, in the Prometheus text format 0.0.4 or OpenMetrics 1.0.0, and
 * the fixed-bucket histograms the daemons keep. Nothing here allocates
 * but the text buffer; nothing is locked (callers that share a histogram
 * between threads hold their own lock). */
#ifndef VMCKPT_MTEXT_H
#define VMCKPT_MTEXT_H

#include <stddef.h>
#include <stdint.h>

enum mtext_format {
    MTEXT_PROMETHEUS,  /* text/plain; version=0.0.4 */
    MTEXT_OPENMETRICS, /* application/openmetrics-text; version=1.0.0 */
};

enum mtext_type {
    MTEXT_COUNTER,   /* samples NAME_total */
    MTEXT_GAUGE,     /* samples NAME */
    MTEXT_HISTOGRAM, /* NAME_bucket{le=...}, NAME_sum, NAME_count */
    MTEXT_INFO,      /* NAME_info{...} 1 (a gauge in the Prometheus text) */
};

/* A text being built. After any mistake of the caller (a bad metric or
 * label name, a unit the name does not end with, a sample outside a
 * family) or out of memory, 'failed' is set, the text stops growing and
 * mtext_finish() fails: a scrape then answers 500 instead of a text a
 * scraper would reject. */
struct mtext {
    enum mtext_format fmt;
    char *buf;
    size_t len, cap;
    int failed;
    char why[128];    /* what failed first */
    char family[128]; /* the family samples belong to ("" none) */
    enum mtext_type type;
};

/* A label list: pairs of name and value, ended by a NULL name. NULL or
 * {NULL} is no label. */
typedef const char *const mtext_labels[];

#define MHIST_MAX_BUCKETS 24

/* A histogram of non-negative observations with upper bounds bounds[0..n)
 * (increasing; +Inf is implicit). Embedded; 'bounds' must outlive it. */
struct mhist {
    const double *bounds;
    size_t n;
    uint64_t counts[MHIST_MAX_BUCKETS + 1]; /* per bucket, +Inf last */
    uint64_t count;
    double sum;
};

/* Start an empty text in 'fmt'. */
void mtext_init(struct mtext *t, enum mtext_format fmt);
/* Free the text (idempotent). */
void mtext_dispose(struct mtext *t);

/* A new family 'name' (without _total, _info or the histogram suffixes)
 * of 'type'; 'unit' (NULL: none) must be the name's last word, as
 * OpenMetrics requires ("seconds" for NAME_seconds). 'help' is one line
 * of prose (escaped here). */
void mtext_family(struct mtext *t, const char *name, enum mtext_type type,
                  const char *unit, const char *help);
/* A sample of the current counter, gauge or info family. */
void mtext_uint(struct mtext *t, mtext_labels labels, uint64_t value);
void mtext_double(struct mtext *t, mtext_labels labels, double value);
/* The samples of one histogram of the current histogram family. */
void mtext_hist(struct mtext *t, mtext_labels labels, const struct mhist *h);

/* Fail the text on purpose (the renderer cannot produce it): the scrape
 * is answered 500 and 'why' logged. */
void mtext_fail(struct mtext *t, const char *why);

/* End the text (OpenMetrics: '# EOF'). Returns the text (NUL-terminated,
 * owned by 't') and its length in *len, or NULL when the text failed (the
 * reason in t->why). */
const char *mtext_finish(struct mtext *t, size_t *len);

/* Set up an empty histogram with 'n' (<= MHIST_MAX_BUCKETS) bounds; more
 * are ignored. */
void mhist_init(struct mhist *h, const double *bounds, size_t n);
/* Count one observation (negative ones count as 0). */
void mhist_observe(struct mhist *h, double v);

/* Bucket bounds in seconds both daemons use: pauses (1 ms to 10 s) and
 * longer operations such as restores (100 ms to 10 min). */
#define MHIST_PAUSE_N 13
#define MHIST_LONG_N  12
extern const double mhist_pause_bounds[MHIST_PAUSE_N];
extern const double mhist_long_bounds[MHIST_LONG_N];

/* A valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or label name
 * ([a-zA-Z_][a-zA-Z0-9_]*): 1 or 0. */
int mtext_valid_name(const char *s, int label);

#endif
