/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Finding a back end by name in the list the program was built with
 * (hv_list.c for the agent that ships, hv_list_simulated.c for the
 * simulated agent of the scale tests). */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "hv.h"

const struct hv_ops *hv_find(const char *name)
{
    const struct hv_ops *const *b;

    for (b = hv_backends(); *b != NULL; b++)
        if (strcmp((*b)->name, name) == 0)
            return *b;
    return NULL;
}
