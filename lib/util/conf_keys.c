/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The sections of vmckpt.conf shared by every program, and the check and
 * listing of the keys a program accepts. */
#include "config.h"

#include "conf_keys.h"

/* [slurm] is read by vmckpt-slurm (slurm/), the daemons leave it alone */
const char *const conf_sections[] = {"cluster", "tls",   "coordinator", "agent",
                                     "launch",  "slurm", NULL};

const char *const conf_cluster_keys[] = {"key_file", "coordinator",
                                         "timeout_ms", "ca_dir", NULL};

const char *const conf_tls_keys[] = {"ca",           "cert",      "key",
                                     "admin_cert",   "admin_key", "crl",
                                     "ciphersuites", "ktls",      NULL};

int conf_check_sections(const struct conf *conf,
                        const struct conf_section own[],
                        struct vmckpt_error *err)
{
    size_t i;

    for (i = 0; own[i].name != NULL; i++) {
        if (conf_check(conf, conf_sections, own[i].name, own[i].keys, err) < 0)
            return -1;
    }
    return 0;
}

void conf_print_keys(FILE *out, const struct conf_section own[])
{
    size_t i, k;

    for (i = 0; own[i].name != NULL; i++) {
        for (k = 0; own[i].keys[k] != NULL; k++)
            fprintf(out, "%s.%s\n", own[i].name, own[i].keys[k]);
    }
}
