/*
 * memtls.h — the server's end of a real GnuTLS handshake in memory, for
 * unit tests that drive a session against it without a socket: GnuTLS
 * over two buffers, what the client wrote (in) and what the server wrote
 * for it (out).  The tests move the bytes; every failure is a cmocka
 * assertion.
 */
#ifndef SMTPOUT_TESTS_MEMTLS_H
#define SMTPOUT_TESTS_MEMTLS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <gnutls/gnutls.h>

struct memtls {
  gnutls_session_t tls;
  gnutls_certificate_credentials_t cred;
  uint8_t in[1 << 16]; /* ciphertext from the client, not yet pulled */
  size_t in_len, in_off;
  uint8_t out[1 << 16]; /* ciphertext for the client, not yet delivered */
  size_t out_len;
};

/* A non-blocking server (`init_flags` added to GNUTLS_SERVER |
 * GNUTLS_NONBLOCK) with `priority` (NULL: GnuTLS's default) presenting a
 * self-signed ECDSA certificate made here for `cn`, valid from an hour ago
 * for a day (its not-after in *not_after when not NULL), with `cn` as a
 * DNS subjectAltName too when `san` is set. */
void memtls_init_self_signed(struct memtls *m, unsigned init_flags,
                             const char *priority, const char *cn, int san,
                             time_t *not_after);

/* The same presenting the PEM chain and key of two files. */
void memtls_init_files(struct memtls *m, unsigned init_flags,
                       const char *priority, const char *chain,
                       const char *key);

/* Hands the server `len` bytes the client wrote. */
void memtls_take(struct memtls *m, const void *data, size_t len);

void memtls_free(struct memtls *m);

#endif
