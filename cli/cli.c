/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The console's shared layer: usage errors and the authenticated calls to
 * the coordinator that every command file makes. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/wire/auth.h"
#include "lib/wire/tls.h"
#include "lib/wire/tls_conf.h"

#include "cli.h"

int cli_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "vmckpt: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'vmckpt --help'.\n");
    return 2;
}

/* [tls]: an administrator's credential, set up once. 0 (with or without
 * TLS), -1 after saying why. */
static int cli_credential(struct cli *cli)
{
    static int done;
    struct vmckpt_error err;
    enum tls_role role;
    char name[128];
    int rc;

    if (done)
        return 0;
    rc = tls_setup_conf(cli->conf, TLS_CONF_ADMIN, &err);
    if (rc < 0) {
        fprintf(stderr, "vmckpt: %s\n", err.text);
        return -1;
    }
    if (rc > 0 && tls_self(&role, name, sizeof(name)) == 0 &&
        role != TLS_ROLE_ADMIN) {
        fprintf(stderr,
                "vmckpt: [tls] cert is the credential of %s '%s', not an "
                "administrator's: the console needs one from 'vmckpt cert "
                "issue admin NAME'\n",
                tls_role_name(role), name);
        tls_cleanup();
        return -1;
    }
    done = 1;
    return 0;
}

struct client *cli_connect(struct cli *cli)
{
    struct auth_key key;
    struct vmckpt_error err;
    struct client *cl;
    char name[128], host[64];
    const char *user = getenv("USER");

    key.bytes = NULL;
    key.len = 0;
    if (cli_credential(cli) < 0)
        return NULL;
    if (!tls_enabled() && auth_key_load(&key, cli->key_file, &err) < 0) {
        fprintf(stderr, "vmckpt: %s\n", err.text);
        return NULL;
    }
    if (gethostname(host, sizeof(host) - 1) < 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    snprintf(name, sizeof(name), "%s@%s", user && *user ? user : "admin", host);
    cl = client_open(cli->coordinator, &key, VMCKPT__ROLE__ROLE_ADMIN, name,
                     cli->timeout_ms, &err);
    auth_key_dispose(&key);
    if (cl == NULL)
        fprintf(stderr,
                "vmckpt: cannot reach the coordinator: %s\n"
                "Is vmckpt-coordinator running, and is the %s the "
                "cluster's?\n",
                err.text, tls_enabled() ? "credential" : "key");
    return cl;
}

int cli_call(struct cli *cli, const char *what, int type, const void *payload,
             int reply_type, Vmckpt__Envelope **env)
{
    struct vmckpt_error err;
    struct client *cl = cli_connect(cli);
    int rc;

    if (cl == NULL)
        return 1;
    rc = client_call(cl, type, payload, reply_type, env, &err);
    client_close(cl);
    if (rc < 0) {
        fprintf(stderr, "vmckpt %s: %s\n", what, err.text);
        return 1;
    }
    return 0;
}

int cli_call_ack(struct cli *cli, const char *what, int type,
                 const void *payload)
{
    Vmckpt__Envelope *env;

    if (cli_call(cli, what, type, payload, VMCKPT__MSG_TYPE__MSG_ACK, &env))
        return 1;
    printf("%s\n", env->ack->text);
    wire_free(env);
    return 0;
}

int cli_fetch_jobs(struct cli *cli, const char *job, Vmckpt__Envelope **env)
{
    Vmckpt__JobsQuery q = VMCKPT__JOBS_QUERY__INIT;

    q.job = (char *)(job ? job : "");
    return cli_call(cli, "jobs", VMCKPT__MSG_TYPE__MSG_JOBS_QUERY, &q,
                    VMCKPT__MSG_TYPE__MSG_JOBS_REPLY, env);
}

int cli_fetch_epochs(struct cli *cli, const char *job, Vmckpt__Envelope **env)
{
    Vmckpt__EpochsQuery q = VMCKPT__EPOCHS_QUERY__INIT;
    Vmckpt__EpochsReply *all;
    int rc;

    q.job = (char *)job;
    rc = cli_call(cli, "list", VMCKPT__MSG_TYPE__MSG_EPOCHS_QUERY, &q,
                  VMCKPT__MSG_TYPE__MSG_EPOCHS_REPLY, env);
    if (rc != 0)
        return rc;
    /* a large job's rows come in pages: each next one is asked from the
     * last row so far, and its rows join the first reply's */
    all = (*env)->epochs_reply;
    while (all->more && all->n_epochs > 0) {
        const Vmckpt__EpochInfo *last = all->epochs[all->n_epochs - 1];
        Vmckpt__Envelope *page;
        Vmckpt__EpochsReply *r;
        Vmckpt__EpochInfo **v;

        q.after_epoch = last->epoch;
        q.after_vm = last->vm;
        rc = cli_call(cli, "list", VMCKPT__MSG_TYPE__MSG_EPOCHS_QUERY, &q,
                      VMCKPT__MSG_TYPE__MSG_EPOCHS_REPLY, &page);
        if (rc != 0)
            break;
        r = page->epochs_reply;
        v = realloc(all->epochs, (all->n_epochs + r->n_epochs) * sizeof(*v));
        if (v == NULL) {
            wire_free(page);
            fprintf(stderr, "vmckpt: list: out of memory\n");
            rc = 1;
            break;
        }
        if (r->n_epochs > 0)
            memcpy(v + all->n_epochs, r->epochs, r->n_epochs * sizeof(*v));
        all->epochs = v;
        all->n_epochs += r->n_epochs;
        all->more = r->more && r->n_epochs > 0;
        r->n_epochs = 0; /* the rows moved */
        wire_free(page);
    }
    if (rc != 0) {
        wire_free(*env);
        *env = NULL;
    }
    return rc;
}
