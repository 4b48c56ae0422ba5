/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The characters a name from outside may use (name.h). */
#include "config.h"

#include <string.h>

#include "name.h"

int name_is_plain(const char *s, size_t max)
{
    size_t i, n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > max)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}
