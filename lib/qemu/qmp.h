/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A blocking QMP client: connect to a guest's QMP socket, negotiate, run
 * commands. Asynchronous events that arrive while waiting for a reply are
 * counted and dropped. */
#ifndef VMCKPT_QMP_H
#define VMCKPT_QMP_H

#include <jansson.h>

#include "lib/util/error.h"

struct qmp;

/* Connect to the unix socket 'path', read the greeting and enter command
 * mode, within 'timeout_ms'. NULL with 'err' on failure. */
struct qmp *qmp_open(const char *path, int timeout_ms,
                     struct vmckpt_error *err);
void qmp_close(struct qmp *q);

/* Execute 'cmd' with 'args' (a JSON object or NULL; not stolen). On success
 * returns 0 and, if 'ret' is not NULL, the "return" value (caller
 * decrefs). A QMP error reply fails with its class and description in
 * 'err'. */
int qmp_execute(struct qmp *q, const char *cmd, json_t *args, json_t **ret,
                struct vmckpt_error *err);

/* Same, passing file descriptor 'fd' with the command (SCM_RIGHTS), as
 * getfd and add-fd expect. */
int qmp_execute_fd(struct qmp *q, const char *cmd, json_t *args, int fd,
                   json_t **ret, struct vmckpt_error *err);

#endif
