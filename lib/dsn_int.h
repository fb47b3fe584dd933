/*
 * dsn_int.h — delivery status notification requests (RFC 3461): what a
 * host asks for one message (RET, ENVID) and each of its recipients
 * (NOTIFY, ORCPT), checked when it is set and kept encoded, as the
 * parameters will go on MAIL and RCPT when the server offers DSN.
 *
 * The public object (smtpout_dsn, <smtpout/session.h>) is what the host
 * fills in; submit copies what each recipient needs into its message
 * (recipient_int.h), so the object may be freed or reused at once.
 */
#ifndef SMTPOUT_DSN_INT_H
#define SMTPOUT_DSN_INT_H

#include <stddef.h>
#include <stdint.h>

#include "smtpout/session.h"

/* RFC 3461 4.4: an envelope identifier of at most 100 characters; 4.2:
 * an ORCPT parameter of at most 500.  Encoded (xtext, section 4), each
 * character may take three. */
#define DSN_ENVID_MAX 100
#define DSN_ORCPT_MAX 500
/* The most recipients an smtpout_dsn describes (index + 1). */
#define DSN_RCPTS_MAX (1u << 20)

struct dsn_rcpt {
  uint32_t notify; /* SMTPOUT_DSN_NOTIFY_* bits; 0: not given */
  char *orcpt;     /* "rfc822;xtext", encoded; NULL: not given */
};

struct smtpout_dsn {
  int ret;        /* enum smtpout_dsn_ret */
  char *envid;    /* xtext, encoded; NULL: not given */
  struct dsn_rcpt *rcpts;
  size_t nrcpts;  /* entries allocated: the highest index set + 1 */
};

/* Recipient `i`'s request, or NULL when the object says nothing of it. */
const struct dsn_rcpt *dsn_rcpt(const smtpout_dsn *dsn, size_t i);

/* 1 when the object asks for anything (RET, ENVID, or for any of the
 * first `n` recipients). */
int dsn_any(const smtpout_dsn *dsn, size_t n);

/* A new request holding `src`'s RET and ENVID, and as its recipient `i`
 * (for i < n) `src`'s recipient map[i]: the recipients a driver's attempt
 * submits, in its numbering.  NULL `src` gives NULL.  Returns 0 or
 * SMTPOUT_ERR_NOMEM. */
int dsn_select(smtpout_dsn **out, const smtpout_dsn *src, const size_t *map,
               size_t n);

/* Writes NOTIFY's value for `notify` bits ("SUCCESS,DELAY", "NEVER")
 * into `out` (at least 24 bytes). */
void dsn_notify_text(uint32_t notify, char *out, size_t cap);

#endif
