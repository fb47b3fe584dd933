/*
 * scram_ref.h — a reference SCRAM-SHA-256 server (RFC 5802, RFC 7677) for
 * the tests of lib/sasl.c, written from the RFCs on GnuTLS's primitives
 * (PBKDF2, HMAC, SHA-256), independent of GNU SASL.  It checks the RFC
 * 7677 section 3 example before it is trusted (test_sasl.c), then plays
 * the server against smtpout's client: it verifies the client's proof and
 * channel binding and produces the server signature.
 *
 * Messages are raw (not base64), NUL-terminated.
 */
#ifndef SMTPOUT_TEST_SCRAM_REF_H
#define SMTPOUT_TEST_SCRAM_REF_H

#include <stddef.h>
#include <stdint.h>

#define SCRAM_REF_MSG 1024

struct scram_ref {
  /* Set by the test before the exchange. */
  const char *password;
  const char *server_nonce;   /* appended to the client's nonce */
  uint8_t salt[32];
  size_t salt_len;
  unsigned iter;
  const uint8_t *cb_data;     /* expected binding data for "p=" */
  size_t cb_len;
  /* Learned from the exchange. */
  char gs2_header[128];       /* "n,,", "y,,", "p=tls-exporter,," */
  char username[256];         /* unescaped */
  char client_first_bare[SCRAM_REF_MSG];
  char server_first[SCRAM_REF_MSG];
  char client_nonce[256];
  const char *why;            /* why the last call failed */
};

/*
 * RFC 5802 section 3 for one exchange: from the password, salt, count
 * and AuthMessage, the ClientProof and the ServerSignature (32 bytes
 * each).  Returns 0, or -1 when GnuTLS fails.
 */
int scram_ref_signatures(const char *password, const uint8_t *salt,
                         size_t salt_len, unsigned iter,
                         const char *auth_message, uint8_t proof[32],
                         uint8_t server_sig[32]);

/* Reads a client-first message; writes the server-first into `out`.
 * Returns 0, or -1 with s->why. */
int scram_ref_server_first(struct scram_ref *s, const char *client_first,
                           char out[SCRAM_REF_MSG]);

/* Reads a client-final message, checks binding, nonce and proof; writes
 * the server-final ("v=...") into `out`.  Returns 0, or -1 with s->why. */
int scram_ref_server_final(struct scram_ref *s, const char *client_final,
                           char out[SCRAM_REF_MSG]);

#endif
