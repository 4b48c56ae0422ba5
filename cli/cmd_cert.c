/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmckpt cert: make the cluster's CA, issue host and admin certificates,
 * revoke them, list them. Everything happens in the CA directory
 * (lib/cert); the coordinator is not contacted. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/cert/cert.h"
#include "lib/util/clock.h"

#include "cmd_cert.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CA_DIR SYSCONFDIR "/vmckpt/ca"

static const char cert_usage[] =
    "Usage: vmckpt cert init [--ca DIR] [--cluster NAME] [--days N] "
    "[--force]\n"
    "       vmckpt cert issue [--ca DIR] [--out DIR] [--days N] ROLE NAME\n"
    "       vmckpt cert revoke [--ca DIR] [--role ROLE] NAME|SERIAL\n"
    "       vmckpt cert list [--ca DIR] [--json]\n"
    "The cluster's certificate authority: TLS certificates for the\n"
    "coordinator, the agents and the administrators. The CA lives in the\n"
    "directory DIR (default: [cluster] ca_dir, or " DEFAULT_CA_DIR "),\n"
    "best kept on one admin host only; no coordinator is contacted.\n"
    "\n"
    "  init    make the CA: its Ed25519 key, its certificate, an empty\n"
    "          index and revocation list\n"
    "  issue   a key and certificate for a host or an administrator\n"
    "  revoke  revoke the certificates of a name, or one serial\n"
    "  list    the certificates issued, with their state\n"
    "\n"
    "'vmckpt cert SUBCOMMAND --help' tells more of each.\n";

static const char init_usage[] =
    "Usage: vmckpt cert init [--ca DIR] [--cluster NAME] [--days N] "
    "[--force]\n"
    "Make the cluster's certificate authority in DIR (default: [cluster]\n"
    "ca_dir, or " DEFAULT_CA_DIR "), created with mode 0700:\n"
    "  ca.key   the CA's Ed25519 private key (mode 0600): whoever holds it\n"
    "           can admit any host to the cluster\n"
    "  ca.crt   its self-signed certificate, CN \"NAME CA\", which every\n"
    "           host gets as its [tls] ca\n"
    "  crl.pem  the revocation list, empty for now\n"
    "  index    the certificates issued, one a line\n"
    "\n"
    "  --ca DIR        the CA's directory\n"
    "  --cluster NAME  the cluster's name in the CA's certificate (default\n"
    "                  vmckpt): letters, digits, '.', '_', '-'\n"
    "  --days N        how long the CA is valid, 1 to 36500 days (default\n"
    "                  3650); no certificate it issues outlasts it\n"
    "  --force         replace a CA that is already there: no certificate\n"
    "                  of the old one verifies any more\n";

static const char issue_usage[] =
    "Usage: vmckpt cert issue [--ca DIR] [--out DIR] [--days N] ROLE NAME\n"
    "Issue a certificate for NAME in ROLE, signed by the CA, with a new\n"
    "Ed25519 key. ROLE is coordinator, agent or admin (an administrator's\n"
    "console); NAME has 1 to 63 letters, digits, '.', '_' or '-', and is\n"
    "the name the host goes by in the cluster (its agent's name). Writes\n"
    "NAME.crt, NAME.key (mode 0600) and ca.crt, the CA's certificate, into\n"
    "the output directory, and prints the [tls] lines of the host's\n"
    "vmckpt.conf. Issuing again for a ROLE and NAME is how a certificate\n"
    "is renewed: the older ones stay valid until revoked.\n"
    "\n"
    "  --ca DIR   the CA's directory (default: [cluster] ca_dir, or\n"
    "             " DEFAULT_CA_DIR ")\n"
    "  --out DIR  where to write the three files (default: the current\n"
    "             directory; made if missing)\n"
    "  --days N   how long the certificate is valid (default 365); it may\n"
    "             not end after the CA\n";

static const char revoke_usage[] =
    "Usage: vmckpt cert revoke [--ca DIR] [--role ROLE] NAME|SERIAL\n"
    "Revoke every valid certificate issued to NAME or, when no certificate\n"
    "has that name, the one with serial SERIAL (hex, as 'vmckpt cert list'\n"
    "or 'openssl x509 -serial' show it). A NAME whose valid certificates\n"
    "are of more than one role (a head node's coordinator and agent) is\n"
    "refused without --role. The CA's crl.pem is signed anew with every\n"
    "revoked serial; the coordinator reads it again by itself (copy it\n"
    "there when the CA is kept on another host), and from then on refuses\n"
    "connections made with those certificates.\n"
    "\n"
    "  --ca DIR     the CA's directory (default: [cluster] ca_dir, or\n"
    "               " DEFAULT_CA_DIR ")\n"
    "  --role ROLE  revoke only NAME's certificates of ROLE: coordinator,\n"
    "               agent or admin (with a SERIAL: refuse it unless it is\n"
    "               of ROLE)\n";

static const char list_usage[] =
    "Usage: vmckpt cert list [--ca DIR] [--json]\n"
    "The CA and the certificates it issued, in the order issued: serial,\n"
    "role, name, end of validity (UTC) and state: valid, expired, or\n"
    "revoked with the time of the revocation.\n"
    "\n"
    "  --ca DIR  the CA's directory (default: [cluster] ca_dir, or\n"
    "            " DEFAULT_CA_DIR ")\n"
    "  --json    one JSON object: ca_dir, ca {subject, not_after,\n"
    "            crl_number (0: no crl.pem)} and certificates [{serial,\n"
    "            role, name, not_after, status (valid or revoked),\n"
    "            revoked_at (null while valid), expired}]; times in seconds\n"
    "            since 1970 UTC\n";

/* The options of every subcommand; each accepts those of 'allowed'. */
struct cert_opts {
    const char *ca_dir;
    const char *out_dir;
    const char *cluster;
    const char *role; /* NULL: not given */
    unsigned days;
    int force;
    int json;
};

/* "2027-12-07 08:55 UTC" */
static void fmt_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL ||
        strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        snprintf(buf, len, "@%" PRId64, t);
}

static int parse_days(const char *arg, unsigned *days)
{
    char *end;
    unsigned long v = strtoul(arg, &end, 10);

    if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || v < 1 ||
        v > CERT_DAYS_MAX)
        return cli_usage_error("cert: --days '%s': expected 1 to 36500 days",
                               arg);
    *days = (unsigned)v;
    return 0;
}

/* Options of 'argv' (argv[0] the subcommand) that 'allowed' lists by
 * their short codes. -1 to go on with the operands at argv[optind], or
 * the exit status: 0 after --help (printing 'help'), 2 on a usage
 * error. */
static int parse_opts(struct cli *cli, int argc, char **argv,
                      const char *allowed, const char *help,
                      struct cert_opts *o)
{
    static const struct option lo[] = {
        {"ca", 1, NULL, 'a'},      {"out", 1, NULL, 'o'},
        {"cluster", 1, NULL, 'c'}, {"days", 1, NULL, 'd'},
        {"force", 0, NULL, 'f'},   {"json", 0, NULL, 'j'},
        {"role", 1, NULL, 'r'},    {"help", 0, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    memset(o, 0, sizeof(*o));
    o->ca_dir = conf_get(cli->conf, "cluster", "ca_dir", DEFAULT_CA_DIR);
    o->out_dir = ".";
    o->cluster = "vmckpt";
    opterr = 0;
    optind = 0; /* 0: glibc starts afresh (permuting again) */
    while ((ch = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
        if (ch == 'h') {
            fputs(help, stdout);
            return 0;
        }
        if (ch == ':' || ch == '?' || strchr(allowed, ch) == NULL) {
            char what[256];

            snprintf(what, sizeof(what), "cert %s: %s '%s'%s", argv[0],
                     ch == ':' ? "option" : "unknown option", argv[optind - 1],
                     ch == ':' ? " needs a value" : "");
            return cli_usage_error("%s", what);
        }
        if (ch == 'a')
            o->ca_dir = optarg;
        else if (ch == 'o')
            o->out_dir = optarg;
        else if (ch == 'c')
            o->cluster = optarg;
        else if (ch == 'r')
            o->role = optarg;
        else if (ch == 'd' && parse_days(optarg, &o->days) != 0)
            return 2;
        o->force |= ch == 'f';
        o->json |= ch == 'j';
    }
    return -1;
}

static int cert_init(struct cli *cli, int argc, char **argv)
{
    struct vmckpt_error err;
    struct cert_ca_info info;
    struct cert_opts o;
    char until[64];
    int rc = parse_opts(cli, argc, argv, "acdf", init_usage, &o);

    if (rc >= 0)
        return rc;
    if (optind < argc)
        return cli_usage_error("cert init: unexpected argument '%s'",
                               argv[optind]);
    if (cert_ca_init(o.ca_dir, o.cluster, o.days, o.force, &err) < 0 ||
        cert_ca_info(o.ca_dir, &info, &err) < 0) {
        fprintf(stderr, "vmckpt cert: %s\n", err.text);
        return 1;
    }
    fmt_time(info.not_after, until, sizeof(until));
    printf("made the certificate authority of cluster '%s' in %s\n"
           "  %s, valid until %s\n"
           "  ca.key (mode 0600), ca.crt, crl.pem, index\n"
           "Keep ca.key private: whoever has it can admit hosts to the "
           "cluster.\n"
           "Next: 'vmckpt cert issue coordinator|agent|admin NAME' for each "
           "host\nand administrator.\n",
           o.cluster, o.ca_dir, info.subject, until);
    return 0;
}

/* What issue prints after the files: older certificates of the name, and
 * the lines of the host's configuration. */
static void print_issued(const struct cert_issued *out)
{
    const struct cert_entry *e = &out->entry;
    size_t i;

    if (out->older.n > 0) {
        printf("%s %s has %zu older valid certificate(s):", e->role, e->name,
               out->older.n);
        for (i = 0; i < out->older.n; i++)
            printf(" %s", out->older.v[i].serial);
        printf("\nthe older certificate(s) stay valid until revoked "
               "('vmckpt cert revoke SERIAL'\nonce %s uses the new one)\n",
               e->name);
    }
    printf("Install the three files on %s (at these paths, or change the "
           "lines)\nand add to its vmckpt.conf:\n"
           "\n"
           "[tls]\n"
           "ca = %s\n"
           "cert = %s\n"
           "key = %s\n",
           e->name, out->ca_path, out->crt_path, out->key_path);
}

static int cert_issue_cmd(struct cli *cli, int argc, char **argv)
{
    struct vmckpt_error err;
    struct cert_issued out;
    struct cert_opts o;
    char until[64];
    int rc = parse_opts(cli, argc, argv, "aod", issue_usage, &o);

    if (rc >= 0)
        return rc;
    if (argc - optind != 2)
        return cli_usage_error("cert issue: %s",
                               "give a ROLE (coordinator, agent or admin) "
                               "and a NAME");
    if (!cert_role_valid(argv[optind]))
        return cli_usage_error("cert issue: unknown role '%s': coordinator, "
                               "agent or admin",
                               argv[optind]);
    if (!cert_name_valid(argv[optind + 1]))
        return cli_usage_error("cert issue: bad name '%s': 1 to 63 letters, "
                               "digits, '.', '_' or '-', and not 'ca'",
                               argv[optind + 1]);
    if (cert_issue(o.ca_dir, argv[optind], argv[optind + 1], o.out_dir, o.days,
                   &out, &err) < 0) {
        fprintf(stderr, "vmckpt cert: %s\n", err.text);
        return 1;
    }
    fmt_time(out.entry.not_after, until, sizeof(until));
    printf("issued a certificate for %s %s, serial %s, valid until %s\n"
           "wrote %s\n"
           "wrote %s (mode 0600: the private key, for %s only)\n"
           "wrote %s (the CA's certificate)\n",
           out.entry.role, out.entry.name, out.entry.serial, until,
           out.crt_path, out.key_path, out.entry.name, out.ca_path);
    print_issued(&out);
    cert_issued_dispose(&out);
    return 0;
}

static int cert_revoke_cmd(struct cli *cli, int argc, char **argv)
{
    struct vmckpt_error err;
    struct cert_entries rev;
    struct cert_opts o;
    char when[64];
    long number;
    size_t i;
    int rc = parse_opts(cli, argc, argv, "ar", revoke_usage, &o);

    if (rc >= 0)
        return rc;
    if (argc - optind != 1)
        return cli_usage_error("cert revoke: %s",
                               "name one certificate: NAME or SERIAL");
    if (o.role != NULL && !cert_role_valid(o.role))
        return cli_usage_error("cert revoke: unknown role '%s': coordinator, "
                               "agent or admin",
                               o.role);
    if (cert_revoke(o.ca_dir, o.role, argv[optind], &rev, &number, &err) < 0) {
        fprintf(stderr, "vmckpt cert: %s\n", err.text);
        return 1;
    }
    for (i = 0; i < rev.n; i++) {
        fmt_time(rev.v[i].revoked_at, when, sizeof(when));
        printf("revoked serial %s (%s %s) at %s\n", rev.v[i].serial,
               rev.v[i].role, rev.v[i].name, when);
    }
    printf("wrote %s/crl.pem, CRL number %ld\n"
           "The coordinator picks up the new %s/crl.pem without a restart\n"
           "(its [tls] crl; copy the file there if the CA is kept on another "
           "host).\n",
           o.ca_dir, number, o.ca_dir);
    cert_entries_dispose(&rev);
    return 0;
}

static json_t *entry_json(const struct cert_entry *e, int64_t now)
{
    return json_pack(
        "{s:s, s:s, s:s, s:I, s:s, s:o, s:b}", "serial", e->serial, "role",
        e->role, "name", e->name, "not_after", (json_int_t)e->not_after,
        "status", e->revoked ? "revoked" : "valid", "revoked_at",
        e->revoked ? json_integer((json_int_t)e->revoked_at) : json_null(),
        "expired", e->not_after <= now);
}

static void list_json(const char *ca_dir, const struct cert_ca_info *info,
                      const struct cert_entries *l, int64_t now)
{
    json_t *arr = json_array(), *top;
    size_t i;

    for (i = 0; i < l->n; i++)
        json_array_append_new(arr, entry_json(&l->v[i], now));
    top = json_pack("{s:s, s:{s:s, s:I, s:I}, s:o}", "ca_dir", ca_dir, "ca",
                    "subject", info->subject, "not_after",
                    (json_int_t)info->not_after, "crl_number",
                    (json_int_t)info->crl_number, "certificates", arr);
    json_dumpf(top, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(top);
}

static void list_table(const char *ca_dir, const struct cert_ca_info *info,
                       const struct cert_entries *l, int64_t now)
{
    char until[64], when[64], state[96];
    size_t i;

    fmt_time(info->not_after, until, sizeof(until));
    printf("CA %s: %s, valid until %s, ", ca_dir, info->subject, until);
    if (info->crl_number > 0)
        printf("CRL number %ld\n", info->crl_number);
    else
        printf("no crl.pem (the next revocation signs one)\n");
    if (l->n == 0) {
        printf("No certificate issued yet ('vmckpt cert issue ROLE NAME').\n");
        return;
    }
    printf("%-32s  %-11s  %-20s  %-20s  %s\n", "SERIAL", "ROLE", "NAME",
           "NOT AFTER", "STATE");
    for (i = 0; i < l->n; i++) {
        const struct cert_entry *e = &l->v[i];

        fmt_time(e->not_after, until, sizeof(until));
        if (e->revoked) {
            fmt_time(e->revoked_at, when, sizeof(when));
            snprintf(state, sizeof(state), "revoked %s", when);
        } else {
            snprintf(state, sizeof(state), "%s",
                     e->not_after <= now ? "expired" : "valid");
        }
        printf("%-32s  %-11s  %-20s  %-20s  %s\n", e->serial, e->role, e->name,
               until, state);
    }
}

static int cert_list_cmd(struct cli *cli, int argc, char **argv)
{
    struct vmckpt_error err;
    struct cert_ca_info info;
    struct cert_entries l;
    struct cert_opts o;
    int rc = parse_opts(cli, argc, argv, "aj", list_usage, &o);
    int64_t now = (int64_t)(clock_wall_ms() / 1000);

    if (rc >= 0)
        return rc;
    if (optind < argc)
        return cli_usage_error("cert list: unexpected argument '%s'",
                               argv[optind]);
    if (cert_ca_info(o.ca_dir, &info, &err) < 0 ||
        cert_list(o.ca_dir, &l, &err) < 0) {
        fprintf(stderr, "vmckpt cert: %s\n", err.text);
        return 1;
    }
    if (o.json)
        list_json(o.ca_dir, &info, &l, now);
    else
        list_table(o.ca_dir, &info, &l, now);
    cert_entries_dispose(&l);
    return 0;
}

int cmd_cert(struct cli *cli, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(struct cli *cli, int argc, char **argv);
    } subs[] = {
        {"init", cert_init},
        {"issue", cert_issue_cmd},
        {"revoke", cert_revoke_cmd},
        {"list", cert_list_cmd},
    };
    size_t i;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fputs(cert_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (strcmp(argv[1], subs[i].name) == 0)
            return subs[i].fn(cli, argc - 1, argv + 1);
    }
    return cli_usage_error(
        "cert: unknown subcommand '%s' (init, issue, revoke or list)", argv[1]);
}
