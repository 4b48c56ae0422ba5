/* SPDX-License-Identifier: GPL-2.0-or-later */
/* INI configuration: a flat list of (section, key, value, line) filled by
 * inih's callback. Files are small, so look-ups scan the list. */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"

struct conf_entry {
    char *section;
    char *key;
    char *value;
    int line;
};

struct conf {
    char *path;
    FILE *f;    /* while parsing */
    int lineno; /* line last handed to inih */
    struct conf_entry *v;
    size_t n, cap;
    int oom;
    int too_long; /* the line number of a line inih cannot take whole */
    int max_len;  /* inih's line buffer */
};

struct conf *conf_create(void)
{
    return calloc(1, sizeof(struct conf));
}

void conf_destroy(struct conf *conf)
{
    int saved = errno;
    size_t i;

    if (conf == NULL)
        return;
    for (i = 0; i < conf->n; i++) {
        free(conf->v[i].section);
        free(conf->v[i].key);
        free(conf->v[i].value);
    }
    free(conf->v);
    free(conf->path);
    free(conf);
    errno = saved;
}

static struct conf_entry *find(const struct conf *conf, const char *section,
                               const char *key)
{
    size_t i;

    /* last one wins, as with repeated keys in most INI readers */
    for (i = conf->n; i-- > 0;) {
        if (strcmp(conf->v[i].section, section) == 0 &&
            strcmp(conf->v[i].key, key) == 0)
            return &conf->v[i];
    }
    return NULL;
}

static int add(struct conf *conf, const char *section, const char *key,
               const char *value, int line)
{
    struct conf_entry *e;

    if (conf->n == conf->cap) {
        size_t cap = conf->cap ? conf->cap * 2 : 16;
        struct conf_entry *v = realloc(conf->v, cap * sizeof(*v));

        if (v == NULL)
            return -1;
        conf->v = v;
        conf->cap = cap;
    }
    e = &conf->v[conf->n];
    e->section = strdup(section);
    e->key = strdup(key);
    e->value = strdup(value);
    e->line = line;
    if (e->section == NULL || e->key == NULL || e->value == NULL) {
        free(e->section);
        free(e->key);
        free(e->value);
        return -1;
    }
    conf->n++;
    return 0;
}

int conf_set(struct conf *conf, const char *section, const char *key,
             const char *value)
{
    struct conf_entry *e = find(conf, section, key);

    if (e != NULL) {
        char *v = strdup(value);

        if (v == NULL)
            return -1;
        free(e->value);
        e->value = v;
        e->line = 0;
        return 0;
    }
    return add(conf, section, key, value, 0);
}

/* inih as packaged calls handlers without a line number; the reader
 * counts the lines it hands over instead. */
static char *read_line(char *buf, int len, void *arg)
{
    struct conf *conf = arg;
    char *s = fgets(buf, len, conf->f);
    size_t n;

    if (s == NULL)
        return NULL;
    conf->lineno++;
    n = strlen(s);
    /* a line that filled the buffer without its end: inih would take the
     * rest for a line of its own. A comment (a default shown commented
     * out may hold a long path) is a comment whatever its length: the
     * rest is skipped. Anything else stops here, saying why. */
    if (n == (size_t)len - 1 && s[n - 1] != '\n' && !feof(conf->f)) {
        const char *t = s + strspn(s, " \t");
        int c;

        if (*t == ';' || *t == '#') {
            while ((c = fgetc(conf->f)) != EOF && c != '\n')
                ;
            return s;
        }
        conf->too_long = conf->lineno;
        conf->max_len = len - 2;
        return NULL;
    }
    return s;
}

static int on_entry(void *arg, const char *section, const char *key,
                    const char *value)
{
    struct conf *conf = arg;

    if (add(conf, section, key, value, conf->lineno) < 0) {
        conf->oom = 1;
        return 0;
    }
    return 1;
}

struct conf *conf_load(const char *path, struct vmckpt_error *err)
{
    struct conf *conf = conf_create();
    FILE *f = NULL;
    int rc;

    if (conf == NULL || (conf->path = strdup(path)) == NULL) {
        errprintf_errno(err, "%s", path);
        goto fail;
    }
    f = fopen(path, "re");
    if (f == NULL) {
        errprintf_errno(err, "cannot open configuration %s", path);
        goto fail;
    }
    conf->f = f;
    rc = ini_parse_stream(read_line, conf, on_entry, conf);
    conf->f = NULL;
    fclose(f);
    if (conf->too_long) {
        errprintf(err,
                  "%s:%d: line longer than %d characters, the most the INI "
                  "parser takes: shorten it (a wrapper script for a long "
                  "command, shorter paths)",
                  path, conf->too_long, conf->max_len);
        errno = EINVAL;
        goto fail;
    }
    if (conf->oom) {
        errno = ENOMEM;
        errprintf_errno(err, "%s", path);
        goto fail;
    }
    if (rc != 0) {
        errprintf(err,
                  "%s:%d: syntax error (expected [section] or key = value)",
                  path, rc);
        errno = EINVAL;
        goto fail;
    }
    return conf;
fail:
    conf_destroy(conf);
    return NULL;
}

const char *conf_path(const struct conf *conf)
{
    return conf->path ? conf->path : "(defaults)";
}

const char *conf_get(const struct conf *conf, const char *section,
                     const char *key, const char *def)
{
    struct conf_entry *e = find(conf, section, key);

    return e ? e->value : def;
}

static int bad_value(const struct conf *conf, const struct conf_entry *e,
                     struct vmckpt_error *err, const char *what)
{
    errno = EINVAL;
    if (e->line > 0)
        return errprintf(err, "%s:%d: [%s] %s = '%s': %s", conf_path(conf),
                         e->line, e->section, e->key, e->value, what);
    return errprintf(err, "[%s] %s = '%s': %s", e->section, e->key, e->value,
                     what);
}

int conf_get_uint(const struct conf *conf, const char *section, const char *key,
                  uint64_t def, uint64_t min, uint64_t max, uint64_t *out,
                  struct vmckpt_error *err)
{
    struct conf_entry *e = find(conf, section, key);
    unsigned long long v;
    char *end;
    char what[96];

    if (e == NULL) {
        *out = def;
        return 0;
    }
    errno = 0;
    if (e->value[0] == '-' || e->value[0] == '\0')
        return bad_value(conf, e, err, "not a non-negative integer");
    v = strtoull(e->value, &end, 10);
    if (errno != 0 || *end != '\0')
        return bad_value(conf, e, err, "not a non-negative integer");
    if (v < min || v > max) {
        snprintf(what, sizeof(what), "must be between %llu and %llu",
                 (unsigned long long)min, (unsigned long long)max);
        return bad_value(conf, e, err, what);
    }
    *out = v;
    return 0;
}

int conf_get_bool(const struct conf *conf, const char *section, const char *key,
                  bool def, bool *out, struct vmckpt_error *err)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    struct conf_entry *e = find(conf, section, key);
    size_t i;

    if (e == NULL) {
        *out = def;
        return 0;
    }
    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(e->value, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(e->value, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return bad_value(conf, e, err, "expected yes or no");
}

static int listed(const char *const list[], const char *s)
{
    size_t i;

    for (i = 0; list[i] != NULL; i++) {
        if (strcmp(list[i], s) == 0)
            return 1;
    }
    return 0;
}

int conf_check(const struct conf *conf, const char *const sections[],
               const char *section, const char *const allowed[],
               struct vmckpt_error *err)
{
    size_t i;

    for (i = 0; i < conf->n; i++) {
        const struct conf_entry *e = &conf->v[i];

        if (!listed(sections, e->section)) {
            errno = EINVAL;
            return errprintf(err, "%s:%d: unknown section [%s]",
                             conf_path(conf), e->line, e->section);
        }
        if (strcmp(e->section, section) == 0 && !listed(allowed, e->key)) {
            errno = EINVAL;
            return errprintf(err, "%s:%d: unknown key '%s' in [%s]",
                             conf_path(conf), e->line, e->key, section);
        }
    }
    return 0;
}
