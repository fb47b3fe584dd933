/*
 * session_int.h — what the deliver driver sees of sessions, results and TLS
 * outcomes beyond the public getters.
 */
#ifndef SMTPOUT_SESSION_INT_H
#define SMTPOUT_SESSION_INT_H

#include "reply_int.h"
#include "smtpout/session.h"

struct smtpout_result {
  int message_id;
  size_t index;
  const char *recipient;
  int status;
  int code;
  char enhanced[12];
  char text[REPLY_TEXT_MAX + 1];
  int possibly_delivered;
  /* Decided without a reply to this recipient's own commands: the
   * connection failed, timed out, or the TLS policy stopped it.  The deliver
   * driver may try such recipients on another address. */
  int connection_level;
};

struct smtpout_tls_info {
  int outcome;
  int used;
  int verified;
  int fallback_permitted;
  int plaintext_fallback;
  int tlsrpt; /* enum tlsrpt_result */
  int resumed;
  char version[16];
  char cipher[64];
  char verify_error[256];
};

#endif
