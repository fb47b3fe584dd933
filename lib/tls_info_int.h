/*
 * tls_info_int.h — what happened to STARTTLS on one connection.
 *
 * The session fills one in as the TLS outcome is decided and hands it to
 * the host (on_tls, smtpout_session_tls_info()); the blocking driver keeps
 * a copy per attempt.  A plain record: tls_info.c holds its getters.
 */
#ifndef SMTPOUT_TLS_INFO_INT_H
#define SMTPOUT_TLS_INFO_INT_H

#include "reply_int.h"
#include "smtpout/session.h"

struct smtpout_tls_info {
  int outcome; /* enum smtpout_tls_outcome */
  int used;
  int verified;
  int fallback_permitted;
  int plaintext_fallback;
  int tlsrpt; /* enum tlsrpt_result (tls_int.h) */
  int resumed;
  int auth;        /* enum smtpout_tls_auth */
  int requirement; /* enum smtpout_tls_requirement the session enforced */
  int requiretls;  /* a MAIL FROM carried REQUIRETLS */
  size_t tlsa_records;
  char tlsa_matched[12]; /* "3 1 1", or "" */
  int implicit;           /* TLS before the greeting (RFC 8314) */
  int client_certificate; /* asked for, and presented */
  char version[16];
  char cipher[64];
  /* Why the certificate did not verify; "" when it did or none was
   * judged. */
  char verify_error[256];
  /* Why TLS did not come up: the STARTTLS reply that refused it, that it
   * was not offered, why the handshake failed; "" otherwise. */
  char failure[REPLY_TEXT_MAX + 320];
};

#endif
