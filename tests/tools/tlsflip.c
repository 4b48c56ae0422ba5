/* SPDX-License-Identifier: GPL-2.0-or-later */
/* tlsflip: a man in the middle for tests. Relays TCP connections from
 * LISTEN to TARGET; in the first connection it alters one byte of the
 * RECORD-th TLS application-data record (type 23, counted from 1) the
 * client sends, and relays everything else unchanged.
 *
 *   tlsflip LISTEN TARGET RECORD
 *
 * Prints "listening on ADDR pid PID" once ready and "flipped record N"
 * when it did, line by line on stdout. Runs until killed. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/util/net.h"

#define MAX_PAIRS 64

/* One relayed connection; the client's records are followed. */
struct pair {
    int client, server;
    int first;      /* the connection that gets the flip */
    uint8_t hdr[5]; /* the client's record header being read */
    unsigned hdr_have;
    size_t body_left;        /* bytes of the current record's body */
    unsigned app_records;    /* type-23 records begun */
    int flip_next_body_byte; /* this record is the one */
};

static unsigned target_record;
static int flipped;

/* Follow the client's records through buf[0..n) and alter the target. */
static void watch(struct pair *p, uint8_t *buf, size_t n)
{
    size_t i = 0;

    while (i < n) {
        if (p->body_left == 0) {
            p->hdr[p->hdr_have++] = buf[i++];
            if (p->hdr_have < 5)
                continue;
            p->hdr_have = 0;
            p->body_left = (size_t)p->hdr[3] << 8 | p->hdr[4];
            if (p->hdr[0] == 23 && ++p->app_records == target_record &&
                p->first && !flipped && p->body_left > 0)
                p->flip_next_body_byte = 1;
            continue;
        }
        if (p->flip_next_body_byte) {
            buf[i] ^= 0x01;
            p->flip_next_body_byte = 0;
            flipped = 1;
            printf("flipped record %u\n", target_record);
        }
        {
            size_t take = n - i < p->body_left ? n - i : p->body_left;

            i += take;
            p->body_left -= take;
        }
    }
}

static void close_pair(struct pair *p)
{
    close(p->client);
    close(p->server);
    p->client = p->server = -1;
}

/* Move what one side has to the other; -1 when the pair is done. */
static int move(struct pair *p, int from_client)
{
    uint8_t buf[65536];
    int from = from_client ? p->client : p->server;
    int to = from_client ? p->server : p->client;
    ssize_t n = read(from, buf, sizeof(buf)), off = 0;

    if (n <= 0)
        return -1;
    if (from_client)
        watch(p, buf, (size_t)n);
    while (off < n) {
        ssize_t w = send(to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        off += w;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct pair pairs[MAX_PAIRS];
    struct vmckpt_error err;
    char bound[128];
    int lfd, npairs = 0, accepted = 0, i;

    if (argc != 4 || (target_record = (unsigned)atoi(argv[3])) == 0) {
        fprintf(stderr, "usage: tlsflip LISTEN TARGET RECORD\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    lfd = net_listen(argv[1], 0, &err);
    if (lfd < 0) {
        fprintf(stderr, "tlsflip: %s\n", err.text);
        return 1;
    }
    net_local_name(lfd, bound, sizeof(bound));
    printf("listening on %s pid %d\n", bound, (int)getpid());
    for (;;) {
        struct pollfd pfd[1 + 2 * MAX_PAIRS];

        pfd[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (i = 0; i < npairs; i++) {
            pfd[1 + 2 * i] =
                (struct pollfd){.fd = pairs[i].client, .events = POLLIN};
            pfd[2 + 2 * i] =
                (struct pollfd){.fd = pairs[i].server, .events = POLLIN};
        }
        if (poll(pfd, (nfds_t)(1 + 2 * npairs), -1) < 0 && errno != EINTR)
            return 1;
        for (i = 0; i < npairs; i++) {
            if (pairs[i].client >= 0 &&
                ((pfd[1 + 2 * i].revents && move(&pairs[i], 1) < 0) ||
                 (pfd[2 + 2 * i].revents && move(&pairs[i], 0) < 0)))
                close_pair(&pairs[i]);
        }
        for (i = 0; i < npairs;) { /* forget the closed ones */
            if (pairs[i].client < 0)
                pairs[i] = pairs[--npairs];
            else
                i++;
        }
        if (pfd[0].revents & POLLIN) {
            int c = accept(lfd, NULL, NULL), s;

            if (c < 0)
                continue;
            s = npairs < MAX_PAIRS ? net_connect(argv[2], 0, 5000, &err) : -1;
            if (s < 0) {
                close(c);
                continue;
            }
            net_set_nonblock(s, 0);
            memset(&pairs[npairs], 0, sizeof(pairs[npairs]));
            pairs[npairs].client = c;
            pairs[npairs].server = s;
            pairs[npairs].first = accepted++ == 0;
            npairs++;
        }
    }
}
