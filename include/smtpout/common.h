/*
 * smtpout — policy-driven outbound SMTP delivery.
 *
 * common.h: export macro, error codes, version and the enumerations every
 * other public header shares.  Include <smtpout/smtpout.h> rather than this
 * file directly.
 */
#ifndef SMTPOUT_COMMON_H
#define SMTPOUT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SMTPOUT_BUILDING) && defined(__GNUC__)
#define SMTPOUT_EXTERN __attribute__((visibility("default")))
#else
#define SMTPOUT_EXTERN
#endif

/*
 * Library error codes: how a call failed.  Every function that can fail
 * returns 0 (or a non-negative value documented with it) on success and
 * one of these negative codes on failure, and its comment lists exactly
 * the codes it can return.  A server's reply is never an error code:
 * replies are reported as data (code, enhanced code, text) through
 * results.  Why a connection ended is not one either: that is a close
 * reason (enum smtpout_close_reason), which the call that ended it does
 * not return.
 */
enum smtpout_error {
  SMTPOUT_OK = 0,
  /* A NULL or malformed argument. */
  SMTPOUT_ERR_INVALID_ARGUMENT = -501,
  /* Out of memory. */
  SMTPOUT_ERR_NOMEM = -502,
  /* The call is not allowed in the object's current state. */
  SMTPOUT_ERR_INVALID_STATE = -503,
  /* Returned by a host callback: no data available now; resume later. */
  SMTPOUT_ERR_WOULDBLOCK = -504,
  /* Returned by a host callback: the callback failed. */
  SMTPOUT_ERR_CALLBACK_FAILURE = -505,
  /* -506 to -511, -516, -517, -519 and -522 are retired, never reused:
   * they named why a connection ended (now enum smtpout_close_reason) or
   * failures no function returned. */
  /* A configuration file or string is invalid (see the error text). */
  SMTPOUT_ERR_CONFIG = -512,
  /* A host name, domain or pattern is not a valid (internationalised) name. */
  SMTPOUT_ERR_BAD_NAME = -513,
  /* A mail address cannot be sent safely (CR, LF, control characters,
   * over 256 octets, missing or misplaced angle brackets). */
  SMTPOUT_ERR_BAD_ADDRESS = -514,
  /* A message's TLS policy is stricter than the one this connection has
   * already negotiated; deliver it on a new session. */
  SMTPOUT_ERR_POLICY_CONFLICT = -515,
  /* A local I/O error: a file could not be read. */
  SMTPOUT_ERR_IO = -518,
  /* Trust anchors could not be loaded (an unreadable CA file, one without
   * a certificate, or not a regular file). */
  SMTPOUT_ERR_TLS_SETUP = -520,
  /* Data that does not follow its syntax: an MTA-STS record or policy, a
   * TLS-RPT record or event, a certificate that cannot be parsed (the
   * error text, where the function has one, says what and where). */
  SMTPOUT_ERR_SYNTAX = -521
};

/*
 * Returns a static, human-readable English description of a library error
 * code (enum smtpout_error).  Unknown codes give "unknown error".  Never
 * NULL.
 */
SMTPOUT_EXTERN const char *smtpout_strerror(int error);

/*
 * Returns the library's version string, e.g. "0.1.0".  Never NULL.
 */
SMTPOUT_EXTERN const char *smtpout_version(void);

/*
 * The `starttls` knob of a destination's policy.
 */
enum smtpout_starttls {
  /* Never send STARTTLS; deliver in plaintext. */
  SMTPOUT_STARTTLS_DISABLE = 0,
  /* Use STARTTLS when the server offers it; plaintext otherwise. */
  SMTPOUT_STARTTLS_OPTIONAL = 1,
  /* Deliver only over TLS; defer otherwise. */
  SMTPOUT_STARTTLS_REQUIRE = 2
};

/*
 * Returns "disable", "optional" or "require" for a starttls mode, NULL for
 * any other value.
 */
SMTPOUT_EXTERN const char *smtpout_starttls_name(int mode);

/*
 * The `dane` knob of a destination's policy: whether DANE (RFC 7672) is
 * used where the DNS publishes it.  Whatever `starttls` and
 * `allow-invalid-certs` say, a hop with DNSSEC-secure, usable TLSA records
 * requires STARTTLS and a TLSA match; only `disable` turns that off
 * (docs/routing.md).
 */
enum smtpout_dane {
  /* Never look up TLSA records; the local policy alone applies. */
  SMTPOUT_DANE_DISABLE = 0,
  /* Use DANE where the DNS publishes it securely (the default). */
  SMTPOUT_DANE_OPTIONAL = 1,
  /* Deliver only to hosts DANE authenticates; defer (4.7.5) otherwise. */
  SMTPOUT_DANE_REQUIRE = 2
};

/*
 * Returns "disable", "optional" or "require" for a dane mode, NULL for any
 * other value.
 */
SMTPOUT_EXTERN const char *smtpout_dane_name(int mode);

/*
 * The `mta-sts` knob of a destination's policy: whether published MTA-STS
 * policies (RFC 8461) are looked up and honoured.  An `enforce` policy
 * filters the MX hosts and requires PKIX-verified TLS whatever
 * `starttls` and `allow-invalid-certs` say; only `disable` turns that off
 * (docs/mta-sts.md).
 */
enum smtpout_mta_sts {
  /* Never look for a policy. */
  SMTPOUT_MTA_STS_DISABLE = 0,
  /* Honour the policy the domain publishes, if any (the default). */
  SMTPOUT_MTA_STS_OPTIONAL = 1,
  /* Deliver only to MX hosts an `enforce` policy lists; defer (4.7.5)
   * when the domain has none. */
  SMTPOUT_MTA_STS_REQUIRE = 2
};

/*
 * Returns "disable", "optional" or "require" for an mta-sts mode, NULL for
 * any other value.
 */
SMTPOUT_EXTERN const char *smtpout_mta_sts_name(int mode);

/*
 * Why a session's connection ended (smtpout_session_close_reason()): a
 * fact about the connection, kept apart from the errors of calls, as
 * ngtcp2 keeps its close reasons.  Every reason but NONE leaves the
 * recipients without a reply deferred; which of them another address may
 * take, each result says (smtpout_result_try_another_address()).
 */
enum smtpout_close_reason {
  /* Not ended, or ended cleanly: QUIT was answered, or the server closed
   * or stayed silent after it, once every result was final. */
  SMTPOUT_CLOSE_NONE = 0,
  /* The server broke the protocol: a malformed, unexpected or early reply,
   * an over-long line or reply, clear text after its STARTTLS 220. */
  SMTPOUT_CLOSE_PROTOCOL = 1,
  /* A reply, the TLS handshake or a stall while the data was written took
   * longer than its timeout. */
  SMTPOUT_CLOSE_TIMEOUT = 2,
  /* The server closed the connection, or the host reported the socket
   * failed (smtpout_session_feed_eof()). */
  SMTPOUT_CLOSE_CONNECTION_CLOSED = 3,
  /* The server refused service: a 421 at any point, a 4xx or 5xx
   * greeting, EHLO and HELO refused. */
  SMTPOUT_CLOSE_SERVICE_UNAVAILABLE = 4,
  /* The TLS handshake or a TLS record failed. */
  SMTPOUT_CLOSE_TLS = 5,
  /* The TLS policy could not be met: STARTTLS required but not offered or
   * refused, a certificate the policy does not accept, a plaintext
   * fallback the policy does not permit. */
  SMTPOUT_CLOSE_TLS_POLICY = 6,
  /* TLS could not be set up locally: the trust anchors could not be
   * loaded, or the TLS library refused the settings. */
  SMTPOUT_CLOSE_TLS_SETUP = 7,
  /* A body contradicted its flags on its way to a server without
   * 8BITMIME: dropped before the end of data. */
  SMTPOUT_CLOSE_CONTENT = 8,
  /* The read_body callback failed (SMTPOUT_ERR_CALLBACK_FAILURE, or more
   * bytes than asked for): dropped before the end of data. */
  SMTPOUT_CLOSE_CALLBACK_FAILURE = 9,
  /* The host called smtpout_session_abort(). */
  SMTPOUT_CLOSE_ABORTED = 10,
  /* A local failure: out of memory. */
  SMTPOUT_CLOSE_LOCAL = 11,
  /* SMTP AUTH (RFC 4954) did not succeed: the server refused the
   * credentials or offered no mechanism allowed, its certificate did not
   * verify for credentials that need it, or it broke the exchange (a
   * malformed challenge, a SCRAM proof that does not verify). */
  SMTPOUT_CLOSE_AUTH = 12
};

/*
 * Returns "none", "protocol", "timeout", "connection-closed",
 * "service-unavailable", "tls", "tls-policy", "tls-setup", "content",
 * "callback-failure", "aborted", "local" or "auth" for a close reason,
 * NULL for any other value.
 */
SMTPOUT_EXTERN const char *smtpout_close_reason_name(int reason);

/*
 * Per-phase timeouts, in Stalwart's vocabulary ([queue.outbound.timeouts]).
 * Each one bounds the whole wait for a reply (or for the TLS handshake, or
 * for the TCP connect), never the gap between two bytes.
 */
enum smtpout_timeout {
  SMTPOUT_TIMEOUT_CONNECT = 0,   /* TCP connect (drivers)          5 min */
  SMTPOUT_TIMEOUT_GREETING = 1,  /* the 220 greeting               5 min */
  SMTPOUT_TIMEOUT_TLS = 2,       /* the TLS handshake              3 min */
  SMTPOUT_TIMEOUT_EHLO = 3,      /* EHLO/HELO/STARTTLS/RSET/QUIT   5 min */
  SMTPOUT_TIMEOUT_MAIL_FROM = 4, /* MAIL FROM                      5 min */
  SMTPOUT_TIMEOUT_RCPT_TO = 5,   /* each RCPT TO                   5 min */
  SMTPOUT_TIMEOUT_DATA = 6       /* final reply after the dot     10 min;
                                    also bounds the DATA command reply (at
                                    most 2 min) and each stall while the
                                    body is written (at most 3 min), the
                                    RFC 5321 section 4.5.3.2 values */
};
#define SMTPOUT_TIMEOUT_COUNT 7

/* "No deadline" for smtpout_session_expiry(). */
#define SMTPOUT_NO_EXPIRY UINT64_MAX

#ifdef __cplusplus
}
#endif

#endif /* SMTPOUT_COMMON_H */
