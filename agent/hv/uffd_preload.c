/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libvmckpt-uffd.so: preloaded into the QEMU an agent launches. A
 * userfaultfd belongs to the address space of the process that creates it,
 * so this library creates one inside QEMU, at the descriptor number named
 * by VMCKPT_UFFD_FD. The agent takes a copy with pidfd_getfd() and does
 * everything else (UFFDIO_API, registration, write protection) itself. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

__attribute__((constructor)) static void vmckpt_uffd_init(void)
{
    const char *s = getenv("VMCKPT_UFFD_FD");
    char *end;
    long want;
    int fd;

    /* not inherited by anything QEMU starts */
    unsetenv("LD_PRELOAD");
    if (s == NULL)
        return;
    want = strtol(s, &end, 10);
    unsetenv("VMCKPT_UFFD_FD");
    if (*end != '\0' || want < 3 || want > 65535)
        return;
    fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        /* QEMU runs on; the agent finds no descriptor and says why */
        fprintf(stderr, "vmckpt-uffd: userfaultfd: %m\n");
        return;
    }
    if (fd != want) {
        if (dup3(fd, (int)want, O_CLOEXEC) < 0)
            fprintf(stderr, "vmckpt-uffd: dup3: %m\n");
        close(fd);
    }
}
