/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The hypervisors a host registered, as the catalog keeps them (hosts.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "hosts.h"

/* Hypervisor records as stored in the catalog: one per line,
 * name|version|accel|usable|detail, with separators in fields blanked. */
static void put_field(char **p, char *end, const char *s, char sep)
{
    for (; s != NULL && *s != '\0' && *p < end - 1; s++)
        *(*p)++ = (*s == '|' || *s == '\n') ? ' ' : *s;
    if (*p < end - 1)
        *(*p)++ = sep;
}

char *hv_encode(Vmckpt__Hypervisor **hv, size_t n)
{
    char buf[2048], *p = buf, *end = buf + sizeof(buf);
    size_t i;

    for (i = 0; i < n; i++) {
        put_field(&p, end, hv[i]->name, '|');
        put_field(&p, end, hv[i]->version, '|');
        put_field(&p, end, hv[i]->accel, '|');
        put_field(&p, end, hv[i]->usable ? "1" : "0", '|');
        put_field(&p, end, hv[i]->detail, '\n');
    }
    *p = '\0';
    return strdup(buf);
}

/* Decode into freshly allocated messages; the caller frees them. */
size_t hv_decode(const char *enc, Vmckpt__Hypervisor ***out)
{
    size_t n = 0, i;
    const char *s;
    Vmckpt__Hypervisor **v;
    char *copy, *line, *save = NULL;

    for (s = enc; *s != '\0'; s++)
        n += *s == '\n';
    *out = NULL;
    if (n == 0)
        return 0;
    v = calloc(n, sizeof(*v));
    copy = strdup(enc);
    if (v == NULL || copy == NULL) {
        free(v);
        free(copy);
        return 0;
    }
    i = 0;
    for (line = strtok_r(copy, "\n", &save); line != NULL && i < n;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[5] = {"", "", "", "0", ""};
        int k = 0;
        char *q = line;

        f[0] = q;
        while (k < 4 && (q = strchr(q, '|')) != NULL) {
            *q++ = '\0';
            f[++k] = q;
        }
        v[i] = malloc(sizeof(*v[i]));
        if (v[i] == NULL)
            break;
        vmckpt__hypervisor__init(v[i]);
        v[i]->name = strdup(f[0]);
        v[i]->version = strdup(f[1]);
        v[i]->accel = strdup(f[2]);
        v[i]->usable = f[3][0] == '1';
        v[i]->detail = strdup(f[4]);
        i++;
    }
    free(copy);
    *out = v;
    return i;
}

void hv_free(Vmckpt__Hypervisor **v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (v[i] == NULL)
            continue;
        free(v[i]->name);
        free(v[i]->version);
        free(v[i]->accel);
        free(v[i]->detail);
        free(v[i]);
    }
    free(v);
}
