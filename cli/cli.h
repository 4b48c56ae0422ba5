/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by the console's command files. */
#ifndef VMCKPT_CLI_H
#define VMCKPT_CLI_H

#include <stdint.h>

#include "lib/client/client.h"
#include "lib/util/conf.h"

struct cli {
    struct conf *conf;
    const char *config_path;
    const char *coordinator;
    const char *key_file;
    int timeout_ms;
};

/* Print "vmckpt: <fmt % arg>" and the --help hint; returns 2. */
int usage_error(const char *fmt, const char *arg);
/* Connect and authenticate as admin; prints why on failure. */
struct client *connect_coord(struct cli *cli);
/* "1.2s ago" and the like. */
void fmt_age(int64_t ms, char *buf, size_t len);

/* Send one request, expect 'reply_type'; prints the error and returns 1
 * on failure. */
int cli_call(struct cli *cli, const char *what, int type, const void *payload,
             int reply_type, Vmckpt__Envelope **env);

/* The same for a request answered with Ack: print its text; 0 or 1. */
int cli_call_ack(struct cli *cli, const char *what, int type,
                 const void *payload);

/* cmd_job.c */
int cmd_jobs(struct cli *cli, int argc, char **argv);
int cmd_job(struct cli *cli, int argc, char **argv);
int cmd_list(struct cli *cli, int argc, char **argv);
int cmd_restart(struct cli *cli, int argc, char **argv);
int cmd_cancel(struct cli *cli, int argc, char **argv);
int cmd_gc(struct cli *cli, int argc, char **argv);
/* 'streams': per VM, 0 for each agent's setting. */
int cmd_checkpoint_job(struct cli *cli, const char *job, int wait,
                       unsigned streams);
struct json_t;
int status_job(struct cli *cli, const char *job, int json, struct json_t **out);

/* cmd_vm.c */
/* --streams N: 1 to WIRE_MAX_STREAMS; -1 after saying what is wrong. */
int cli_parse_streams(const char *arg, uint32_t *out);
int cmd_vm(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_checkpoint(struct cli *cli, int argc, char **argv);
int cmd_restore(struct cli *cli, int argc, char **argv);

/* cmd_cluster.c */
int cmd_cluster(struct cli *cli, int argc, char **argv);

#endif
