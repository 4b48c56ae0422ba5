/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Inside lib/cert: the CA directory on disk and its PEM files
 * (cert_store.c), as cert.c uses them. Not for other parts. */
#ifndef VMCKPT_CERT_INT_H
#define VMCKPT_CERT_INT_H

#include <openssl/evp.h>
#include <stddef.h>

#include "cert.h"

#define CERT_FILE_MAX (1 << 20)  /* a key or certificate file */
#define CERT_CRL_MAX  (64 << 20) /* a CRL: ~20 bytes per revocation */

/* "<dir>/<file>" into 'buf'; -1 (ENAMETOOLONG) with 'err' if too long. */
int cert_path(char *buf, size_t len, const char *dir, const char *file,
              struct vmckpt_error *err);

/* Take the lock of the CA directory 'dir' (exclusive or shared), waiting
 * a few seconds for another command to finish. The descriptor to give
 * cert_dir_unlock() in *fd. 0, or -1 with 'err'. */
int cert_dir_lock(const char *dir, int exclusive, int *fd,
                  struct vmckpt_error *err);
void cert_dir_unlock(int fd);

/* Read all of 'path', a regular file of at most 'max' bytes, into a new
 * NUL-terminated buffer (*buf, freed by the caller; *len without the
 * NUL). 0, or -1 with 'err' naming the file. */
int cert_file_read(const char *path, size_t max, char **buf, size_t *len,
                   struct vmckpt_error *err);

/* Replace 'path' by 'len' bytes of 'buf' with 'mode': a temporary file
 * beside it, fsync, rename, fsync of the directory. 0, or -1 with 'err';
 * 'path' is then as it was. */
int cert_file_write(const char *path, const void *buf, size_t len,
                    unsigned mode, struct vmckpt_error *err);

/* Add a copy of 'e' at the end of 'l'. 0, or -1 (ENOMEM). */
int cert_entries_add(struct cert_entries *l, const struct cert_entry *e);

/* The index of the CA in 'dir' into 'out' (cert.h tells the format). A
 * missing index says there is no CA there; a damaged one names the line.
 * 0, or -1 with 'err'. */
int cert_index_load(const char *dir, struct cert_entries *out,
                    struct vmckpt_error *err);

/* Write 'l' as the index of 'dir', replacing the old one atomically. */
int cert_index_write(const char *dir, const struct cert_entries *l,
                     struct vmckpt_error *err);

/* Fill 'err' with "what: " and the reason of OpenSSL's last error, and
 * empty its queue; returns -1 with errno EIO. */
int cert_ossl_fail(struct vmckpt_error *err, const char *what);

/* Write a private key (PKCS#8, mode 0600), a certificate or a CRL (mode
 * 0644) in PEM to 'path', as cert_file_write(). */
int cert_save_key(const char *path, EVP_PKEY *k, struct vmckpt_error *err);
int cert_save_crt(const char *path, X509 *x, struct vmckpt_error *err);
int cert_save_crl(const char *path, X509_CRL *c, struct vmckpt_error *err);

/* Read a PEM private key (not encrypted; at most CERT_FILE_MAX bytes)
 * into *out, freed by the caller. 0, or -1 with 'err' naming the file. */
int cert_load_key(const char *path, EVP_PKEY **out, struct vmckpt_error *err);

/* A serial as a person gives it (1 to 32 hex digits, either case, an
 * optional 0x, ':' between digits) into the index's form. 0, or -1. */
int cert_serial_parse(const char *in, char out[CERT_SERIAL_HEX + 1]);

#endif
