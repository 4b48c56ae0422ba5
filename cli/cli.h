/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The console's shared layer (cli.c): the settings every command gets and
 * the calls to the coordinator. Command files use this and nothing of
 * each other; the command table in vmckpt.c calls the command files. */
#ifndef VMCKPT_CLI_H
#define VMCKPT_CLI_H

#include "lib/client/client.h"
#include "lib/util/conf.h"

struct cli {
    struct conf *conf;
    const char *config_path;
    const char *coordinator;
    const char *key_file;
    int timeout_ms;
};

/* Print "vmckpt: <fmt % arg>" and the --help hint to stderr; returns 2,
 * the exit status of a usage error. */
int cli_usage_error(const char *fmt, const char *arg);

/* Connect to the coordinator and authenticate as admin with the cluster
 * key. NULL after printing why; close with client_close(). */
struct client *cli_connect(struct cli *cli);

/* Send one request of 'type' and expect 'reply_type'; the reply is stored
 * in *env (free with wire_free()). Returns 0, or 1 after printing
 * "vmckpt WHAT: why" (1 is the console's exit status for a failure). */
int cli_call(struct cli *cli, const char *what, int type, const void *payload,
             int reply_type, Vmckpt__Envelope **env);

/* The same for a request answered with Ack: print its text; 0 or 1. */
int cli_call_ack(struct cli *cli, const char *what, int type,
                 const void *payload);

/* The jobs the coordinator knows, or only 'job' (NULL: all); as
 * cli_call(). */
int cli_fetch_jobs(struct cli *cli, const char *job, Vmckpt__Envelope **env);

/* The epochs of 'job' as the catalog holds them, one row per VM and
 * epoch; as cli_call(). */
int cli_fetch_epochs(struct cli *cli, const char *job, Vmckpt__Envelope **env);

#endif
