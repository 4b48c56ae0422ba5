/* SPDX-License-Identifier: GPL-2.0-or-later */
/* QEMU/KVM back end: finds the QEMU binary and whether KVM can be used. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hv.h"

/* 1 if /proc/cpuinfo lists hardware virtualisation (vmx or svm). */
static int cpu_has_virt(void)
{
    FILE *f = fopen("/proc/cpuinfo", "re");
    char line[4096];
    int found = 0;

    if (f == NULL)
        return 0;
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "flags", 5) == 0 &&
            (strstr(line, " vmx") != NULL || strstr(line, " svm") != NULL))
            found = 1;
    }
    fclose(f);
    return found;
}

/* Run "QEMU --version" and keep the version number. 0 or -1. */
static int qemu_version(const char *qemu, char *out, size_t len)
{
    char cmd[512], line[256];
    FILE *p;
    const char *v;
    int status;

    if (strchr(qemu, '\'') != NULL)
        return -1;
    snprintf(cmd, sizeof(cmd), "'%s' --version 2>/dev/null", qemu);
    p = popen(cmd, "re");
    if (p == NULL)
        return -1;
    line[0] = '\0';
    if (fgets(line, sizeof(line), p) == NULL)
        line[0] = '\0';
    status = pclose(p);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    v = strstr(line, "version ");
    if (v == NULL)
        return -1;
    v += strlen("version ");
    snprintf(out, len, "%.*s", (int)strcspn(v, " \n("), v);
    return 0;
}

static void qemu_probe(const struct conf *conf, struct hv_probe *out)
{
    const char *qemu = conf_get(conf, "agent", "qemu", "qemu-system-x86_64");
    int fd;

    memset(out, 0, sizeof(*out));
    snprintf(out->accel, sizeof(out->accel), "tcg");
    if (qemu_version(qemu, out->version, sizeof(out->version)) < 0) {
        snprintf(out->detail, sizeof(out->detail),
                 "%s not found or not runnable (apt-get install "
                 "qemu-system-x86)",
                 qemu);
        return;
    }
    out->usable = 1;
    fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(out->detail, sizeof(out->detail),
                 "/dev/kvm: %s; guests run under TCG", strerror(errno));
        return;
    }
    close(fd);
    if (!cpu_has_virt()) {
        snprintf(out->detail, sizeof(out->detail),
                 "/dev/kvm present but the CPU shows no vmx/svm (nested "
                 "software KVM); guests run under TCG");
        return;
    }
    snprintf(out->accel, sizeof(out->accel), "kvm");
}

const struct hv_ops hv_qemu_ops = {
    .name = "qemu",
    .probe = qemu_probe,
};
