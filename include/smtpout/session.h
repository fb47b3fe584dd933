/*
 * smtpout — the sans-I/O SMTP session.
 *
 * One smtpout_session is one SMTP connection to one server.  It owns no
 * socket and reads no clock: the host feeds it the bytes it received
 * (smtpout_session_feed), writes the bytes it asks for
 * (smtpout_session_peek_output / smtpout_session_consume_output), and tells
 * it the time (a millisecond timestamp from any monotonic clock, passed to
 * every call that can move a deadline).  The session negotiates EHLO,
 * STARTTLS under the destination's TLS policy, and runs one mail
 * transaction per submitted message, reporting one final result per
 * recipient through the on_result callback.
 *
 * Threads: a session must be used by one thread at a time.  Distinct
 * sessions may run on distinct threads; they share nothing but the
 * reference-counted configuration.
 *
 * Re-entrancy: callbacks run inside smtpout_session_feed(), _peek_output(),
 * _consume_output(), _handle_expiry(), _abort() and _start(); never inside
 * smtpout_session_submit() or _quit(), whose work starts at the next
 * _peek_output().  A callback may call smtpout_session_submit(),
 * smtpout_session_quit(), smtpout_session_resume_body() and the getters.
 * The I/O functions above, called from a callback of the same session,
 * do nothing and return SMTPOUT_ERR_INVALID_STATE.  A callback should not
 * free the session; if it does, see smtpout_session_free().
 *
 * Errors: every function lists the codes it returns.  What the server
 * does is never an error of a call: it ends the connection, and the
 * session says why (smtpout_session_close_reason()).  Out of memory inside
 * an I/O call ends the connection too (close reason "local"), and the call
 * that ran out returns SMTPOUT_ERR_NOMEM where its list says so.
 *
 * Typical loop (see examples/eventloop.c and docs/event-loop.md):
 *
 *   smtpout_session_start(s, now);
 *   while (!smtpout_session_is_done(s)) {
 *     wait for: readable if want_read, writable if want_write,
 *               at most until smtpout_session_expiry(s);
 *     on readable:  n = read(fd, buf); n > 0 ? feed(s, buf, n, now)
 *                                             : feed_eof(s, now);
 *     on writable:  peek_output(s, &p, &len, now); n = write(fd, p, len);
 *                   consume_output(s, n, now);
 *     on timeout:   handle_expiry(s, now);
 *   }
 *   close(fd); smtpout_session_free(s);
 */
#ifndef SMTPOUT_SESSION_H
#define SMTPOUT_SESSION_H

#include <smtpout/common.h>
#include <smtpout/config.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smtpout_session smtpout_session;
typedef struct smtpout_callbacks smtpout_callbacks;
typedef struct smtpout_result smtpout_result;
typedef struct smtpout_tls_info smtpout_tls_info;
typedef struct smtpout_certificate smtpout_certificate;
/* A route's hop (<smtpout/route.h>), for smtpout_session_new_for_hop(). */
typedef struct smtpout_hop smtpout_hop;
typedef struct smtpout_dsn smtpout_dsn;

/* ------------------------------------------------------------------ */
/* Results                                                              */

/* Every getter of a result or a TLS info accepts NULL and then returns 0,
 * "" where a string is never NULL, or NULL where it may be. */

/* The final status of one recipient. */
enum smtpout_status {
  /* The server accepted the message for this recipient (2xx to the end
   * of data). */
  SMTPOUT_STATUS_DELIVERED = 1,
  /* Temporary failure: try again later. */
  SMTPOUT_STATUS_DEFERRED = 2,
  /* Permanent failure: return the message to its sender. */
  SMTPOUT_STATUS_BOUNCED = 3
};

/* Returns "delivered", "deferred" or "bounced"; NULL for other values. */
SMTPOUT_EXTERN const char *smtpout_status_name(int status);

/* The message the result belongs to (the id smtpout_session_submit()
 * returned). */
SMTPOUT_EXTERN int smtpout_result_message_id(const smtpout_result *result);

/* The index of the recipient in the list given to submit. */
SMTPOUT_EXTERN size_t
smtpout_result_recipient_index(const smtpout_result *result);

/* The recipient address as submitted.  Never NULL. */
SMTPOUT_EXTERN const char *
smtpout_result_recipient(const smtpout_result *result);

/* enum smtpout_status. */
SMTPOUT_EXTERN int smtpout_result_status(const smtpout_result *result);

/* The server's reply code behind the result, or 0 when the library decided
 * without a reply (TLS policy, timeout, lost connection, local check) or
 * against its class (a 5xx greeting or a reply during the data, deferred:
 * the reply is in the text).  The code (when not 0) and the enhanced code
 * (when not "") always agree with the status: 2 delivered, 4 deferred,
 * 5 bounced. */
SMTPOUT_EXTERN int smtpout_result_code(const smtpout_result *result);

/* The RFC 3463 enhanced status code ("4.7.5"), or "" when there is none.
 * Never NULL. */
SMTPOUT_EXTERN const char *
smtpout_result_enhanced(const smtpout_result *result);

/* The server's reply text (lines joined with a space, at most 1 KiB), or
 * the library's explanation.  Never NULL. */
SMTPOUT_EXTERN const char *smtpout_result_text(const smtpout_result *result);

/* 1 when the end of data was sent but no reply to it arrived (the
 * connection was lost, timed out or aborted): the status is deferred, and a
 * retry may duplicate the message.  A reply, a 421 included, is never
 * "possibly delivered". */
SMTPOUT_EXTERN int
smtpout_result_possibly_delivered(const smtpout_result *result);

/* 1 when the recipient is deferred for a reason that says nothing about
 * it, and its message cannot have reached the server: the connection
 * failed (refused, lost, timed out, a TLS failure or the TLS policy, a
 * 421 at any point), or the server refused the whole session (a 4xx or
 * 5xx greeting, EHLO and HELO refused).  Try it on the destination's next
 * address, or next MX host, now; with none left it stays deferred.  0
 * for a result a reply to the recipient's own commands decided (or a
 * local check of it), and for one possibly delivered. */
SMTPOUT_EXTERN int
smtpout_result_try_another_address(const smtpout_result *result);

/* The NOTIFY the host asked for this recipient (SMTPOUT_DSN_NOTIFY_*
 * bits; 0 when it asked none: smtpout_session_submit_dsn()). */
SMTPOUT_EXTERN uint32_t
smtpout_result_dsn_notify(const smtpout_result *result);

/* 1 when the message asked for delivery status notifications and the
 * recipient's RCPT went to a server that offers DSN (RFC 3461), with its
 * NOTIFY and ORCPT: that server now sends the notices it owes.  0 when
 * nothing was asked, the server did not offer DSN (the parameters were
 * left out: see docs/api.md), or the recipient's RCPT was never sent. */
SMTPOUT_EXTERN int smtpout_result_dsn_sent(const smtpout_result *result);

/* The notification the host owes the sender for this result (RFC 3461
 * 6.2), from its status, its NOTIFY and smtpout_result_dsn_sent(). */
enum smtpout_dsn_action {
  /* None: delivered to a server that took the DSN parameters (or with no
   * SUCCESS asked), deferred (a "delayed" notice is the host queue's to
   * time), or NOTIFY said NEVER or did not ask for failures. */
  SMTPOUT_DSN_ACTION_NONE = 0,
  /* Bounced, with NOTIFY absent or including FAILURE: a "failed" notice. */
  SMTPOUT_DSN_ACTION_FAILED = 1,
  /* Delivered to a server without DSN, with SUCCESS asked: a "relayed"
   * notice (6.2.1), since no success notice will come from beyond it. */
  SMTPOUT_DSN_ACTION_RELAYED = 2
};

/* enum smtpout_dsn_action; SMTPOUT_DSN_ACTION_NONE for NULL. */
SMTPOUT_EXTERN int smtpout_result_dsn_action(const smtpout_result *result);

/* Returns "none", "failed" or "relayed"; NULL for other values. */
SMTPOUT_EXTERN const char *smtpout_dsn_action_name(int action);

/* ------------------------------------------------------------------ */
/* TLS outcome                                                          */

/* What happened to STARTTLS on a connection. */
enum smtpout_tls_outcome {
  /* The connection ended before TLS was decided. */
  SMTPOUT_TLS_OUTCOME_NONE = 0,
  /* The policy (or the plaintext fallback) said not to use STARTTLS. */
  SMTPOUT_TLS_OUTCOME_DISABLED = 1,
  /* The server did not advertise STARTTLS. */
  SMTPOUT_TLS_OUTCOME_NOT_OFFERED = 2,
  /* The server answered STARTTLS with anything but 220 (an error, a 421,
   * another code, a malformed reply), or closed or timed out instead. */
  SMTPOUT_TLS_OUTCOME_REFUSED = 3,
  /* The TLS handshake failed, timed out, or clear text followed the 220
   * (response injection). */
  SMTPOUT_TLS_OUTCOME_HANDSHAKE_FAILED = 4,
  /* TLS is established (see verified / verify_error). */
  SMTPOUT_TLS_OUTCOME_OK = 5
};

/* Returns "none", "disabled", "not-offered", "refused",
 * "handshake-failed" or "ok"; NULL for other values. */
SMTPOUT_EXTERN const char *smtpout_tls_outcome_name(int outcome);

/* enum smtpout_tls_outcome. */
SMTPOUT_EXTERN int smtpout_tls_info_outcome(const smtpout_tls_info *info);

/* 1 when the connection runs over TLS. */
SMTPOUT_EXTERN int smtpout_tls_info_used(const smtpout_tls_info *info);

/* The protocol version ("TLS1.3"), or NULL without TLS. */
SMTPOUT_EXTERN const char *
smtpout_tls_info_version(const smtpout_tls_info *info);

/* The cipher suite ("TLS_AES_256_GCM_SHA384"), or NULL without TLS. */
SMTPOUT_EXTERN const char *
smtpout_tls_info_cipher(const smtpout_tls_info *info);

/* 1 when the server is authenticated: its certificate chains to a trust
 * anchor, is current and names the MX host (PKIX), or, on a DANE hop, one
 * of the hop's TLSA records matches its chain (smtpout_tls_info_auth()
 * says which). */
SMTPOUT_EXTERN int smtpout_tls_info_verified(const smtpout_tls_info *info);

/* Why the server's certificate did not verify, or NULL: it verified, or
 * none was judged (no TLS, STARTTLS refused, the handshake failed: see
 * smtpout_tls_info_failure()).  On a DANE hop, why no TLSA record
 * matched. */
SMTPOUT_EXTERN const char *
smtpout_tls_info_verify_error(const smtpout_tls_info *info);

/* How the server was authenticated, from smtpout_tls_info_auth(). */
enum smtpout_tls_auth {
  /* Not at all: no TLS, or a certificate that did not verify (delivered
   * anyway where the policy allows it), or none judged. */
  SMTPOUT_TLS_AUTH_NONE = 0,
  /* PKIX: the chain reaches a trust anchor and names the MX host. */
  SMTPOUT_TLS_AUTH_PKIX = 1,
  /* DANE-EE (RFC 7672 3.1.1): a usage-3 TLSA record matched the server's
   * certificate or key; no name, no dates. */
  SMTPOUT_TLS_AUTH_DANE_EE = 2,
  /* DANE-TA (RFC 7672 3.1.2): a usage-2 TLSA record matched a trust
   * anchor the verified path ends in, and the certificate names the
   * host. */
  SMTPOUT_TLS_AUTH_DANE_TA = 3
};

/* Returns "none", "pkix", "dane-ee" or "dane-ta"; NULL for other
 * values. */
SMTPOUT_EXTERN const char *smtpout_tls_auth_name(int auth);

/* enum smtpout_tls_auth: how the server was authenticated.  On a session
 * of a DANE hop (smtpout_session_new_for_hop()) only DANE counts, on any
 * other only PKIX.  A resumed session counts as the one that got its
 * ticket did. */
SMTPOUT_EXTERN int smtpout_tls_info_auth(const smtpout_tls_info *info);

/* The TLSA record that authenticated the server, as "3 1 1" (usage,
 * selector, matching type), or NULL: not a DANE hop, or none matched. */
SMTPOUT_EXTERN const char *
smtpout_tls_info_tlsa_matched(const smtpout_tls_info *info);

/* The number of TLSA records of the session's hop (usable or not), 0
 * without any (and for a session not made for a hop). */
SMTPOUT_EXTERN size_t
smtpout_tls_info_tlsa_records(const smtpout_tls_info *info);

/* The TLS requirement (enum smtpout_tls_requirement, <smtpout/route.h>)
 * the session enforced: its hop's; SMTPOUT_TLS_REQUIREMENT_LOCAL (0) for
 * a session not made for a hop. */
SMTPOUT_EXTERN int
smtpout_tls_info_requirement(const smtpout_tls_info *info);

/* 1 when a MAIL FROM of this connection carried REQUIRETLS (RFC 8689):
 * the connection was authenticated (DANE, or PKIX under MTA-STS) and its
 * EHLO after STARTTLS offered REQUIRETLS. */
SMTPOUT_EXTERN int
smtpout_tls_info_requiretls(const smtpout_tls_info *info);

/* Why TLS did not come up, or NULL: it did (a certificate problem is
 * smtpout_tls_info_verify_error()), it was not tried (disabled by policy,
 * a plaintext fallback), or the connection ended before STARTTLS was
 * decided.  The outcome says which case: not offered ("host H did not
 * offer STARTTLS"), refused (the server's answer to STARTTLS, its 421, or
 * what ended the connection while it was due), handshake failed (why, a
 * response injection included). */
SMTPOUT_EXTERN const char *
smtpout_tls_info_failure(const smtpout_tls_info *info);

/* The RFC 8460 result type of a failed or degraded attempt, or NULL for a
 * clean or TLS-less-by-policy one.  Every attempt that sent STARTTLS and
 * did not get TLS up has one: "starttls-not-supported" when STARTTLS was
 * not offered or got anything but 220 (or no reply); "validation-failure"
 * when the negotiation failed after the 220 (handshake failure or timeout,
 * response injection); "certificate-expired", "certificate-host-mismatch",
 * "certificate-not-trusted" or "validation-failure" for a certificate that
 * did not verify.  On a hop: under DANE, "validation-failure" when no TLSA
 * record matched, "certificate-host-mismatch" or "certificate-expired"
 * for a DANE-TA path that names another host or expired; under PKIX
 * (MTA-STS) "sts-webpki-invalid" for a certificate that did not verify,
 * "validation-failure" for a TLS version below 1.2; under ENCRYPT
 * "tlsa-invalid" once TLS is up (the TLSA set had no usable record)
 * (docs/policy.md). */
SMTPOUT_EXTERN const char *
smtpout_tls_info_tlsrpt_result(const smtpout_tls_info *info);

/* 1 when the policy permits delivering the undecided recipients again over
 * a NEW connection without STARTTLS: the policy is optional (for a
 * session made for a hop: smtpout_hop_plaintext_fallback(), never under
 * DANE, ENCRYPT or PKIX), the handshake (not the certificate) failed, and
 * no credentials would be sent. */
SMTPOUT_EXTERN int
smtpout_tls_info_fallback_permitted(const smtpout_tls_info *info);

/* 1 when the handshake resumed an earlier TLS session from a ticket
 * (smtpout_session_set_tls_resumption()).  Tickets are kept only from
 * connections whose certificate verified for the same MX name against the
 * same trust anchors, without OCSP; a resumed connection proves it holds
 * that session's secret, so it counts as verified while the certification
 * path the ticket was issued under, trust anchor included, has not expired
 * (checked against the wall clock, as certificate validity always is). */
SMTPOUT_EXTERN int smtpout_tls_info_resumed(const smtpout_tls_info *info);

/* 1 when this session is a plaintext fallback
 * (smtpout_session_set_plaintext_fallback()). */
SMTPOUT_EXTERN int
smtpout_tls_info_plaintext_fallback(const smtpout_tls_info *info);

/* 1 when TLS started before the greeting (RFC 8314 implicit TLS,
 * smtpout_session_set_implicit_tls()) rather than with STARTTLS. */
SMTPOUT_EXTERN int smtpout_tls_info_implicit(const smtpout_tls_info *info);

/* 1 when the server asked for a client certificate during the handshake
 * and the session presented one (smtpout_session_set_client_cert()). */
SMTPOUT_EXTERN int
smtpout_tls_info_client_certificate(const smtpout_tls_info *info);

/* ------------------------------------------------------------------ */
/* Callbacks                                                            */

/*
 * Supplies the body of message `message_id`, raw: the library converts bare
 * LF and bare CR to CRLF, dot-stuffs, and terminates it (and converts an
 * 8-bit message to 7-bit for a server without 8BITMIME, see
 * SMTPOUT_MESSAGE_8BITMIME).  The same bytes must come on every
 * connection the message is submitted to.  Copy at most
 * `buflen` bytes into `buf`, store their number in *nread and set *eof to 1
 * with (or after) the last byte.
 * Returns 0, SMTPOUT_ERR_WOULDBLOCK when no data is available now (call
 * smtpout_session_resume_body() when it is), or SMTPOUT_ERR_CALLBACK_FAILURE
 * to give up: the connection is then closed without ending the data, so
 * nothing is delivered, and the message's recipients are deferred.
 * Returning 0 with *nread 0 and *eof 0 is the same as
 * SMTPOUT_ERR_WOULDBLOCK: the session asks again only after
 * smtpout_session_resume_body() (never in a loop), and the data timeout
 * bounds the wait.
 */
typedef int (*smtpout_read_body_callback)(smtpout_session *session,
                                          int message_id, uint8_t *buf,
                                          size_t buflen, size_t *nread,
                                          int *eof, void *user_data);

/*
 * Reports the final result of one recipient.  Called exactly once per
 * submitted recipient.  `result` is valid only during the call.
 */
typedef void (*smtpout_on_result_callback)(smtpout_session *session,
                                           const smtpout_result *result,
                                           void *user_data);

/*
 * Called once every recipient of `message_id` has its result; the host may
 * release the message's body.
 */
typedef void (*smtpout_on_message_done_callback)(smtpout_session *session,
                                                 int message_id,
                                                 void *user_data);

/*
 * Called once per session when the TLS outcome is known (established and
 * verified or not, not offered, refused, failed, disabled).  `info` stays
 * valid for the life of the session.
 */
typedef void (*smtpout_on_tls_callback)(smtpout_session *session,
                                        const smtpout_tls_info *info,
                                        void *user_data);

/* Directions for the trace callback. */
enum smtpout_trace {
  SMTPOUT_TRACE_SENT = 0,     /* a command line the client sent */
  SMTPOUT_TRACE_RECEIVED = 1, /* a reply line the server sent */
  SMTPOUT_TRACE_INFO = 2      /* a note from the library (TLS, errors) */
};

/*
 * Protocol trace: each command and reply line (without CRLF; message data
 * is not traced), and the library's notes.  `line` is not NUL-terminated
 * and may contain any byte the server sent.
 */
typedef void (*smtpout_on_trace_callback)(smtpout_session *session,
                                          int direction, const char *line,
                                          size_t len, void *user_data);

/*
 * Creates an empty callbacks object.  Every callback is optional except
 * read_body when messages are submitted.  One object may serve any number
 * of sessions: sessions copy it.  The setters below do nothing with a
 * NULL object.
 * Errors: SMTPOUT_ERR_INVALID_ARGUMENT, SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_callbacks_new(smtpout_callbacks **pcallbacks);

/* Frees a callbacks object.  NULL-safe. */
SMTPOUT_EXTERN void smtpout_callbacks_free(smtpout_callbacks *callbacks);

SMTPOUT_EXTERN void
smtpout_callbacks_set_read_body(smtpout_callbacks *callbacks,
                                smtpout_read_body_callback cb);
SMTPOUT_EXTERN void
smtpout_callbacks_set_on_result(smtpout_callbacks *callbacks,
                                smtpout_on_result_callback cb);
SMTPOUT_EXTERN void
smtpout_callbacks_set_on_message_done(smtpout_callbacks *callbacks,
                                      smtpout_on_message_done_callback cb);
SMTPOUT_EXTERN void
smtpout_callbacks_set_on_tls(smtpout_callbacks *callbacks,
                             smtpout_on_tls_callback cb);
SMTPOUT_EXTERN void
smtpout_callbacks_set_on_trace(smtpout_callbacks *callbacks,
                               smtpout_on_trace_callback cb);

/* ------------------------------------------------------------------ */
/* AUTH outcome                                                         */

/* What happened to SMTP AUTH (RFC 4954) on a connection with credentials
 * (smtpout_session_set_auth()). */
enum smtpout_auth_outcome {
  /* No credentials, or the connection ended before AUTH was due or
   * answered (a timeout, a 421, a lost connection: the close reason says
   * which). */
  SMTPOUT_AUTH_OUTCOME_NONE = 0,
  /* The server accepted the credentials (235; for SCRAM, it also proved
   * it knows the password). */
  SMTPOUT_AUTH_OUTCOME_OK = 1,
  /* Withheld: TLS did not come up (STARTTLS not offered, refused or
   * disabled, the handshake failed, a certificate the TLS policy
   * refused).  Credentials never go in clear. */
  SMTPOUT_AUTH_OUTCOME_NO_TLS = 2,
  /* Withheld: TLS is up, but the server's certificate did not verify and
   * the credentials need a verified one (no SMTPOUT_AUTH_TLS_ANY). */
  SMTPOUT_AUTH_OUTCOME_UNVERIFIED = 3,
  /* The server offers no AUTH after TLS, or no mechanism the credentials
   * allow. */
  SMTPOUT_AUTH_OUTCOME_NOT_OFFERED = 4,
  /* The server refused: a 4xx or 5xx to AUTH (535 for bad credentials). */
  SMTPOUT_AUTH_OUTCOME_FAILED = 5,
  /* smtpout refused what the server sent: a malformed or unexpected
   * challenge, a SCRAM iteration count out of bounds, a SCRAM server
   * signature that does not verify, a 235 before the exchange ended. */
  SMTPOUT_AUTH_OUTCOME_ERROR = 6
};

/* Returns "none", "ok", "no-tls", "unverified", "not-offered", "failed"
 * or "error"; NULL for other values. */
SMTPOUT_EXTERN const char *smtpout_auth_outcome_name(int outcome);

/* ------------------------------------------------------------------ */
/* Session                                                              */

/* Capability bits of smtpout_session_capabilities() (from the last EHLO). */
#define SMTPOUT_CAP_PIPELINING 0x0001u
#define SMTPOUT_CAP_SIZE 0x0002u
#define SMTPOUT_CAP_8BITMIME 0x0004u
#define SMTPOUT_CAP_SMTPUTF8 0x0008u
#define SMTPOUT_CAP_ENHANCEDSTATUSCODES 0x0010u
#define SMTPOUT_CAP_STARTTLS 0x0020u
#define SMTPOUT_CAP_CHUNKING 0x0040u
#define SMTPOUT_CAP_DSN 0x0080u
#define SMTPOUT_CAP_AUTH 0x0100u
/* RFC 8689 2; counted only from the EHLO after STARTTLS (before it every
 * capability is forgotten anyway). */
#define SMTPOUT_CAP_REQUIRETLS 0x0200u

/* Message flags for smtpout_session_submit(); smtpout_message_scan_end()
 * (<smtpout/message.h>) says which a body needs. */
/* The body contains 8-bit data: sent with BODY=8BITMIME when the server
 * offers it, converted to 7-bit (quoted-printable or base64, MIME
 * structure kept) when it does not (RFC 6152 3).  A message without this
 * flag must be 7-bit: to a server without 8BITMIME, an 8-bit byte in it
 * drops the connection before the end of data and defers the message
 * 4.6.3 (close reason SMTPOUT_CLOSE_CONTENT); it is never sent raw. */
#define SMTPOUT_MESSAGE_8BITMIME 0x1u
/* The message needs SMTPUTF8 (UTF-8 header fields, RFC 6532): bounced
 * 5.6.7 before MAIL by a server that does not offer it.  Implied when an
 * address is not ASCII. */
#define SMTPOUT_MESSAGE_SMTPUTF8 0x2u
/* The 8-bit content must not, or cannot, be converted to 7-bit: bounced
 * 5.6.3 before MAIL by a server that offers neither 8BITMIME nor (for a
 * message that uses it) SMTPUTF8.  Without SMTPOUT_MESSAGE_8BITMIME it
 * means nothing. */
#define SMTPOUT_MESSAGE_NO_7BIT_CONVERSION 0x4u
/* The message asks for REQUIRETLS (RFC 8689): its MAIL FROM carries
 * REQUIRETLS, and it is sent only over TLS that authenticated the server
 * and whose EHLO offered REQUIRETLS; otherwise its recipients are
 * deferred before MAIL (4.7.10: not authenticated; 4.7.30: REQUIRETLS not
 * offered), and may be tried on another address.  On a session made
 * with smtpout_session_new() the library cannot know how the MX host was
 * found: a certificate that verifies by PKIX for the MX name counts as
 * authenticated (the host vouches for the name), and the message's
 * policy is starttls = require with invalid certificates refused.  A
 * domain's mail wants a route instead (SMTPOUT_ROUTE_REQUIRETLS), whose
 * hops DANE or MTA-STS authenticate and whose verdict bounces 5.7.30 or
 * 5.7.10 after the last MX (docs/routing.md, "REQUIRETLS"). */
#define SMTPOUT_MESSAGE_REQUIRETLS 0x8u

/*
 * Creates a session for one connection to the MX host `mx_host` (a domain
 * name in any case, U-labels allowed, or an IP literal such as "192.0.2.1",
 * "192.0.2.1." or "[2001:db8::1]").  The name is used for the policy
 * lookup, as the TLS SNI (never for an IP literal) and as the name the
 * certificate must carry (an IP literal never verifies).  A numeric name
 * that is not a canonical IP literal ("127.1", "0x7f.0.0.1", a last label
 * of digits) is SMTPOUT_ERR_BAD_NAME: a resolver would read it as an
 * address.
 * `config` may be NULL (built-in defaults); the session takes its own
 * reference.  `callbacks` is copied.  `user_data` is passed to callbacks.
 *
 * Returns 0 and stores the session in *psession, or:
 * SMTPOUT_ERR_INVALID_ARGUMENT, SMTPOUT_ERR_BAD_NAME, SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_session_new(smtpout_session **psession,
                                       const char *mx_host,
                                       smtpout_config *config,
                                       const smtpout_callbacks *callbacks,
                                       void *user_data);

/*
 * Creates a session for one connection to `hop` (<smtpout/route.h>), one
 * address of one MX host a route handed out, and makes it enforce what the
 * route decided for that hop (docs/routing.md, "Precedence"), with no
 * policy lookup of its own.  What the session needs is copied: the hop
 * may be reported done (smtpout_route_hop_done(), which invalidates it)
 * while the session lives.  `config`, `callbacks` and `user_data` as for
 * smtpout_session_new(); pass the route's configuration.
 *
 * From the hop the session takes:
 *   - the MX host name (smtpout_hop_mx()): the name the certificate must
 *     carry, the name in texts and results;
 *   - the SNI: the TLSA base domain under DANE (RFC 7672 8.1), the MX
 *     host name otherwise, none for an address;
 *   - the TLS requirement (smtpout_hop_tls_requirement()) and what it
 *     allows:
 *       DANE     STARTTLS mandatory: not offered, refused, or a failed
 *                handshake defers 4.7.5, never in plaintext; after the
 *                handshake the server's chain must match a TLSA record
 *                of the hop (RFC 7672 3; PKIX is not consulted), else
 *                QUIT over TLS, deferred 4.7.5;
 *       ENCRYPT  STARTTLS mandatory, as DANE; the certificate is not
 *                judged (RFC 7672 3: the TLSA set has no usable record);
 *       PKIX     STARTTLS mandatory, as DANE; TLS 1.2 or later, and a
 *                certificate that verifies by PKIX for the MX host name
 *                (RFC 8461 4.2), whatever allow-invalid-certs says;
 *       RELAXED, LOCAL  the hop's starttls and allow-invalid-certs
 *                (smtpout_hop_starttls(), _allow_invalid_certs()), as a
 *                session with smtpout_session_set_tls_policy();
 *     under DANE, ENCRYPT and PKIX the knobs are the requirement's
 *     (starttls = disable and allow-invalid-certs = true relax nothing);
 *   - whether a plaintext fallback is permitted after a failed handshake
 *     (smtpout_hop_plaintext_fallback(): then
 *     smtpout_tls_info_fallback_permitted() can say 1, and a second
 *     session for the same hop with smtpout_session_set_plaintext_fallback()
 *     runs; never under DANE, ENCRYPT or PKIX);
 *   - REQUIRETLS (smtpout_hop_requiretls()): every MAIL FROM carries
 *     REQUIRETLS, and the EHLO after STARTTLS must offer it; when it does
 *     not, nothing is sent, the recipients are deferred 4.7.30 and
 *     smtpout_session_hop_outcome() says
 *     SMTPOUT_HOP_REQUIRETLS_NOT_OFFERED.
 *
 * The hop's policy is the session's: smtpout_session_set_tls_policy() is
 * refused, and messages submitted to it are delivered under it without a
 * policy lookup of their own (the route already resolved the knobs of
 * this domain and MX host): smtpout_session_submit() refuses none of them
 * as a policy conflict, but a message flagged SMTPOUT_MESSAGE_REQUIRETLS
 * on a hop that is not smtpout_hop_requiretls() (its route was not made
 * for REQUIRETLS, so its verdict could not bounce it as RFC 8689 asks).
 *
 * A relay hop's implicit TLS, AUTH and client certificate
 * (smtpout_hop_implicit_tls(), _auth_username(), _client_cert()) are
 * applied here, as smtpout_session_set_implicit_tls(), _set_auth() and
 * _set_client_cert() would: the secret is read from the relay's
 * auth-password-file now (smtpout_hop_auth_secret()), the certificate and
 * key now, and the AUTH rules are the session's (docs/relay.md: only over
 * TLS, by default only over a verified certificate unless the relay says
 * auth-tls = any; never a plaintext fallback).
 *
 * Returns 0 and the session in *psession, or: SMTPOUT_ERR_INVALID_ARGUMENT
 * (NULL pointers), SMTPOUT_ERR_IO (the relay's password file cannot be
 * read, is empty, or was opened to group or others since the
 * configuration was loaded), SMTPOUT_ERR_TLS_SETUP (its client
 * certificate or key cannot be used), SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_session_new_for_hop(
    smtpout_session **psession, const smtpout_hop *hop,
    smtpout_config *config, const smtpout_callbacks *callbacks,
    void *user_data);

/*
 * How the connection went, as its route wants it reported
 * (smtpout_route_hop_done(); enum smtpout_hop_outcome): once the session
 * is over (smtpout_session_is_done()), for any session:
 *   SMTPOUT_HOP_REQUIRETLS_NOT_OFFERED  REQUIRETLS was needed and the EHLO
 *       after STARTTLS did not offer it (nothing was sent for it);
 *   SMTPOUT_HOP_TLS_FAILED  the connection ended before the mail
 *       transactions for want of the TLS required: STARTTLS not offered
 *       or refused under require (or a hop's requirement), a failed
 *       handshake (also a response injection), a certificate or TLSA
 *       verdict the policy refused, TLS that could not be set up, a
 *       plaintext fallback the policy refused; or REQUIRETLS asked for a
 *       server that was not authenticated;
 *   SMTPOUT_HOP_HOST_FAILED  it ended before the mail transactions for
 *       another reason (a 4xx/5xx greeting, EHLO and HELO refused, a 421,
 *       lost, timed out, a protocol error, aborted);
 *   SMTPOUT_HOP_SESSION_FAILED  it got that far, then left recipients
 *       deferred that another address may take
 *       (smtpout_result_try_another_address());
 *   SMTPOUT_HOP_DONE  otherwise: every recipient has its final result
 *       from this server (or a local decision about it, or is possibly
 *       delivered), and a retry elsewhere would not help now.
 * SMTPOUT_HOP_CONNECT_FAILED is the host's: no session ran.  Returns the
 * outcome, or SMTPOUT_ERR_INVALID_ARGUMENT (NULL session),
 * SMTPOUT_ERR_INVALID_STATE (the session is not over).
 */
SMTPOUT_EXTERN int
smtpout_session_hop_outcome(const smtpout_session *session);

/*
 * Frees the session and everything it owns.  Recipients without a result
 * get none: call smtpout_session_abort() first to have them reported.
 * NULL-safe.  Meant to be called outside callbacks.  Called from a callback
 * of this session, it takes effect when the outermost session call (the
 * feed, peek, ... that ran the callback) returns: no callback runs after
 * it, that call returns normally (a peek with no data), and the host must
 * not use the session after it.
 */
SMTPOUT_EXTERN void smtpout_session_free(smtpout_session *session);

/* Sets the name sent with EHLO/HELO: a host name (U-labels are converted
 * to A-labels) or an IP address (sent as an address literal).  Without
 * it the session sends the configuration's helo-name, else "localhost":
 * the session never asks the system for its name (the blocking driver
 * passes the local host name).  Before smtpout_session_start(); a name
 * that is refused leaves the one set before.  Errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT, SMTPOUT_ERR_INVALID_STATE,
 * SMTPOUT_ERR_BAD_NAME, SMTPOUT_ERR_NOMEM. */
SMTPOUT_EXTERN int smtpout_session_set_helo_name(smtpout_session *session,
                                                 const char *name);

/* Fixes the TLS policy of the session, instead of resolving it from the
 * configuration.  Before the first EHLO reply; never on a session made for
 * a hop, whose policy is the hop's.  Errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT, SMTPOUT_ERR_INVALID_STATE. */
SMTPOUT_EXTERN int smtpout_session_set_tls_policy(smtpout_session *session,
                                                  int starttls,
                                                  int allow_invalid_certs);

/* Marks this session as the plaintext retry after a failed handshake: no
 * STARTTLS is sent, and the TLS info says so.  Refused at EHLO time (all
 * recipients deferred 4.7.5) unless the resolved policy is optional (for
 * a session made for a hop: unless smtpout_hop_plaintext_fallback()).
 * Before smtpout_session_start().  Errors: SMTPOUT_ERR_INVALID_ARGUMENT,
 * SMTPOUT_ERR_INVALID_STATE. */
SMTPOUT_EXTERN int
smtpout_session_set_plaintext_fallback(smtpout_session *session);

/* Uses the PEM file `path` as the only trust anchors of this session,
 * instead of the configuration's.  The file is read now, by this call
 * (costly: prefer a configuration's ca-file, read once for every session
 * that shares it); a path that is not a regular file of at most 64 MiB is
 * refused unread.  Before smtpout_session_start().  Errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT, SMTPOUT_ERR_INVALID_STATE,
 * SMTPOUT_ERR_TLS_SETUP (unreadable, not a regular file, or no
 * certificate in it: the session keeps the anchors it had),
 * SMTPOUT_ERR_NOMEM. */
SMTPOUT_EXTERN int smtpout_session_set_ca_file(smtpout_session *session,
                                               const char *path);

/*
 * With `enable` 1, TLS sessions are resumed (RFC 8446 2.2, RFC 5077): when
 * this session's certificate verifies, the session ticket the server sends
 * is kept in the configuration, under the MX name, for a later session of
 * the same configuration to the same name; and this session offers such a
 * ticket if one is kept.  A resumed handshake skips the server's
 * certificate and signature (most of a handshake's public-key work on both
 * sides); the policy is applied as on a full one, and the resumed session
 * counts as verified only while the certification path the ticket was
 * issued under (trust anchor included) is unexpired.  A session whose
 * verdict rested on OCSP (a stapled response, a must-staple certificate)
 * keeps no ticket: a resumed handshake carries no status.  Each ticket is
 * offered once; the configuration keeps a few per name, for at most 256
 * names (a bounded table: a new name may evict another).  Sessions to an
 * IP literal, or with their own trust anchors
 * (smtpout_session_set_ca_file()), neither take nor keep tickets.  Off by
 * default.  Before smtpout_session_start().  Errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT, SMTPOUT_ERR_INVALID_STATE.
 */
SMTPOUT_EXTERN int smtpout_session_set_tls_resumption(smtpout_session *session,
                                                      int enable);

/* Overrides timeout `which` (enum smtpout_timeout) in milliseconds (> 0),
 * at any time; a deadline already running keeps its length.  Errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT. */
SMTPOUT_EXTERN int smtpout_session_set_timeout(smtpout_session *session,
                                               int which, uint32_t ms);

/* smtpout_session_set_auth() flags. */
/* Send the credentials over TLS whose certificate did not verify (a
 * relay with a private or self-signed certificate, `auth-tls = any`):
 * the connection is encrypted, but the server is not authenticated.
 * Without it the credentials go only to a server whose certificate
 * verified. */
#define SMTPOUT_AUTH_TLS_ANY 0x1u

/*
 * Authenticates with SMTP AUTH (RFC 4954) as `username` with `secret`
 * (a password, or an OAuth 2 bearer token for XOAUTH2), after the EHLO
 * that follows TLS and before the first MAIL.  `mechanisms` lists the
 * SASL mechanisms allowed, strongest first, separated by spaces or
 * commas ("SCRAM-SHA-256 PLAIN"); NULL or "" for the default list:
 * SCRAM-SHA-256-PLUS and SCRAM-SHA-256 when the library is built with
 * GNU SASL, then PLAIN and LOGIN (XOAUTH2 only when listed).  The first
 * of them the server offers is used, never one it did not offer.
 *
 * Credentials are never sent without TLS: they make the session's
 * STARTTLS policy `require` (a `disable` policy defers every recipient,
 * 4.7.4), forbid the plaintext fallback, and, unless `flags` has
 * SMTPOUT_AUTH_TLS_ANY, go only to a server whose certificate verified.
 * A server that offers no AUTH (or no mechanism allowed), refuses the
 * credentials (535, or any 4xx or 5xx) or breaks the exchange ends the
 * connection: every recipient is deferred, with the server's reply in
 * the text (close reason SMTPOUT_CLOSE_AUTH; smtpout_session_auth_
 * outcome() says which).  The secret is copied, never traced (AUTH lines
 * are traced as "AUTH PLAIN ****"), and wiped from the session's memory
 * once the exchange has used it.  Strings must be NUL-terminated UTF-8;
 * the username at most 255 bytes, the secret at most 8192.
 * Before smtpout_session_start().  Errors: SMTPOUT_ERR_INVALID_ARGUMENT
 * (NULL session, username or secret, an empty or over-long one, an
 * unknown mechanism, one listed twice, SCRAM in a build without GNU
 * SASL, unknown flags), SMTPOUT_ERR_INVALID_STATE, SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_session_set_auth(smtpout_session *session,
                                            const char *mechanisms,
                                            const char *username,
                                            const char *secret,
                                            uint32_t flags);

/*
 * With `enable` 1, TLS starts as soon as the connection is made, before
 * the greeting (RFC 8314 3.3, "implicit TLS", port 465): no STARTTLS.
 * The certificate is checked and the policy applied as after STARTTLS
 * (allow-invalid-certs decides an unverified one; starttls is moot), and
 * a failed handshake never leads to plaintext
 * (smtpout_tls_info_fallback_permitted() is 0).  Before
 * smtpout_session_start().  Errors: SMTPOUT_ERR_INVALID_ARGUMENT,
 * SMTPOUT_ERR_INVALID_STATE (started, or a plaintext fallback).
 */
SMTPOUT_EXTERN int smtpout_session_set_implicit_tls(smtpout_session *session,
                                                    int enable);

/*
 * Presents the certificate in `cert_path` (PEM: the client's own first,
 * then any intermediates) with the private key in `key_path` (PEM,
 * unencrypted) when the server asks for one during the TLS handshake.
 * Both files are read now, by this call (each a regular file of at most
 * 1 MiB), never while the network is read; the key must belong to the
 * first certificate.  A session with a client certificate neither takes
 * nor keeps TLS session tickets.  Before smtpout_session_start().
 * Errors: SMTPOUT_ERR_INVALID_ARGUMENT, SMTPOUT_ERR_INVALID_STATE,
 * SMTPOUT_ERR_TLS_SETUP (unreadable, not PEM, no certificate, a key that
 * does not match: the session keeps what it had), SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_session_set_client_cert(smtpout_session *session,
                                                   const char *cert_path,
                                                   const char *key_path);

/*
 * With `enable` 0, message data always goes with DATA, even to a server
 * that offers CHUNKING (for servers whose BDAT misbehaves).  By default
 * (1, unless the configuration says `chunking = false` in
 * [queue.outbound]) BDAT is used where offered (RFC 3030): the data goes
 * in chunks of at most 64 KiB, as it is, without dot-stuffing; with
 * PIPELINING the first chunk leaves with MAIL and RCPT, one round trip
 * before DATA's 354 would have come.  At any time; a message whose data
 * has started keeps its way.  Errors: SMTPOUT_ERR_INVALID_ARGUMENT.
 */
SMTPOUT_EXTERN int smtpout_session_set_chunking(smtpout_session *session,
                                                int enable);

/*
 * Tells the session the connection is established at time `now`: it now
 * waits for the greeting.  Unless the session has trust anchors of its own
 * (smtpout_session_set_ca_file()) or is a plaintext fallback, it takes
 * the configuration's now, which the first session of a configuration
 * loads (the system store when the configuration names no ca-file); if
 * they cannot be loaded, STARTTLS ends the connection (close reason
 * tls-setup, recipients deferred 4.7.0), not this call.  Errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT, SMTPOUT_ERR_INVALID_STATE (started
 * already, or from a callback), SMTPOUT_ERR_NOMEM (nothing changed: the
 * session is not started).
 */
SMTPOUT_EXTERN int smtpout_session_start(smtpout_session *session,
                                         uint64_t now);

/*
 * Queues a message: envelope sender `sender` ("" for the null reverse-path
 * <>), `nrecipients` recipient addresses (bare addresses, without angle
 * brackets), the size of the message on the wire (`size`, 0 if unknown:
 * what smtpout_message_scan_end() reports, RFC 1870's size, which counts
 * every line end as CRLF; sent as SIZE= and checked against the server's
 * limit, except for a message converted to 7-bit, whose size is then not
 * known, as Postfix does) and SMTPOUT_MESSAGE_* `flags`.  The body is
 * pulled later through the read_body callback.
 * Strings are copied.  May be called before start, during the session (the
 * connection is reused) and from callbacks.  No callback runs inside this
 * call: on an idle session smtpout_session_want_write() then says 1, and
 * the transaction starts (its reply deadline counted from that call's
 * `now`) in the next smtpout_session_peek_output().
 *
 * Returns the message id (> 0), or: SMTPOUT_ERR_INVALID_ARGUMENT (NULL
 * pointers, no recipients, unknown flags), SMTPOUT_ERR_BAD_ADDRESS (an
 * address that cannot be sent safely: nothing is queued),
 * SMTPOUT_ERR_POLICY_CONFLICT (the message's TLS policy is stricter than
 * the one this connection already applied; on a session made for a hop,
 * only a REQUIRETLS message on a hop without REQUIRETLS),
 * SMTPOUT_ERR_INVALID_STATE (the session is closing or done),
 * SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_session_submit(smtpout_session *session,
                                          const char *sender,
                                          const char *const *recipients,
                                          size_t nrecipients, uint64_t size,
                                          uint32_t flags);

/* ------------------------------------------------------------------ */
/* Delivery status notifications (RFC 3461)                             */

/* NOTIFY bits for smtpout_dsn_set_notify(): when the recipient's sender
 * wants a notice.  NEVER stands alone. */
#define SMTPOUT_DSN_NOTIFY_SUCCESS 0x1u
#define SMTPOUT_DSN_NOTIFY_FAILURE 0x2u
#define SMTPOUT_DSN_NOTIFY_DELAY 0x4u
#define SMTPOUT_DSN_NOTIFY_NEVER 0x8u

/* RET: what of the message a failure notice returns. */
enum smtpout_dsn_ret {
  SMTPOUT_DSN_RET_NONE = 0, /* not given: the server decides */
  SMTPOUT_DSN_RET_FULL = 1, /* the whole message */
  SMTPOUT_DSN_RET_HDRS = 2  /* its header only */
};

/*
 * A message's DSN request: RET and ENVID for the message, NOTIFY and
 * ORCPT for each recipient, by its index in the list given to
 * smtpout_session_submit_dsn().  The parameters are sent only to a
 * server that offers DSN; to one that does not they are left out, and
 * each result says so (smtpout_result_dsn_sent() 0) and what notice the
 * host then owes the sender (smtpout_result_dsn_action()), NOTIFY=NEVER
 * included.  Values are checked and encoded (xtext, RFC 3461 4) when
 * set.  One object may serve any number of submissions (it is copied);
 * one thread at a time.
 * Errors: SMTPOUT_ERR_INVALID_ARGUMENT, SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_dsn_new(smtpout_dsn **pdsn);

/* Frees a DSN request.  NULL-safe. */
SMTPOUT_EXTERN void smtpout_dsn_free(smtpout_dsn *dsn);

/* RET (enum smtpout_dsn_ret).  Errors: SMTPOUT_ERR_INVALID_ARGUMENT. */
SMTPOUT_EXTERN int smtpout_dsn_set_ret(smtpout_dsn *dsn, int ret);

/* ENVID: the envelope identifier, 1 to 100 printable US-ASCII characters
 * (RFC 3461 4.4; the space included), or NULL to give none.  Errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT, SMTPOUT_ERR_NOMEM. */
SMTPOUT_EXTERN int smtpout_dsn_set_envid(smtpout_dsn *dsn,
                                         const char *envid);

/* NOTIFY for recipient `index` (from 0, below 2^20): SMTPOUT_DSN_NOTIFY_*
 * bits, NEVER alone, or 0 to give none.  Errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT, SMTPOUT_ERR_NOMEM. */
SMTPOUT_EXTERN int smtpout_dsn_set_notify(smtpout_dsn *dsn, size_t index,
                                          uint32_t notify);

/* ORCPT for recipient `index`: the original recipient as "TYPE;ADDRESS"
 * ("rfc822;user@example.org"), printable US-ASCII, at most 500
 * characters once encoded (RFC 3461 4.2), or NULL to give none.  Errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT, SMTPOUT_ERR_NOMEM. */
SMTPOUT_EXTERN int smtpout_dsn_set_orcpt(smtpout_dsn *dsn, size_t index,
                                         const char *orcpt);

/*
 * smtpout_session_submit() with a DSN request (NULL: none, which is
 * smtpout_session_submit() itself).  RET and ENVID go on MAIL, NOTIFY and
 * ORCPT on each recipient's RCPT, when the server offers DSN.  Returns
 * the message id (> 0), or what smtpout_session_submit() returns:
 * SMTPOUT_ERR_INVALID_ARGUMENT (also when `dsn` describes a recipient
 * past the last one), SMTPOUT_ERR_BAD_ADDRESS,
 * SMTPOUT_ERR_POLICY_CONFLICT, SMTPOUT_ERR_INVALID_STATE,
 * SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_session_submit_dsn(
    smtpout_session *session, const char *sender,
    const char *const *recipients, size_t nrecipients, uint64_t size,
    uint32_t flags, const smtpout_dsn *dsn);

/*
 * Says no more messages will be submitted: the session sends QUIT once the
 * queued messages are done (on an idle session, in the next
 * smtpout_session_peek_output(); want_write says 1).  When the server
 * offers PIPELINING and the call comes before the last message's data is
 * written, QUIT goes out with that end of data (RFC 2920 3.1), saving a
 * round trip; the results are the same.  Without it the session stays
 * connected and idle, waiting for more messages.  No callback runs inside
 * this call.  Errors: SMTPOUT_ERR_INVALID_ARGUMENT.
 */
SMTPOUT_EXTERN int smtpout_session_quit(smtpout_session *session);

/*
 * Ends the session now, without sending anything: every recipient without
 * a result is deferred ("aborted by the host"; flagged possibly delivered
 * if its end of data was already sent; close reason "aborted").  The host
 * then closes the socket.  On a session that is over already it does
 * nothing.  Errors: SMTPOUT_ERR_INVALID_ARGUMENT,
 * SMTPOUT_ERR_INVALID_STATE (called from a callback: the session is not
 * aborted; abort after the call that ran the callback returns).
 */
SMTPOUT_EXTERN int smtpout_session_abort(smtpout_session *session,
                                         uint64_t now);

/* After read_body returned SMTPOUT_ERR_WOULDBLOCK: the body has data
 * again.  Errors: SMTPOUT_ERR_INVALID_ARGUMENT. */
SMTPOUT_EXTERN int smtpout_session_resume_body(smtpout_session *session);

/*
 * Feeds `len` bytes received from the server (ciphertext once TLS is up;
 * the session decrypts).  All bytes are consumed; once the session is
 * over they are ignored.  Returns 0, or SMTPOUT_ERR_INVALID_ARGUMENT,
 * SMTPOUT_ERR_INVALID_STATE (before smtpout_session_start(), or from a
 * callback: nothing is consumed), SMTPOUT_ERR_NOMEM (the connection is
 * over: close reason "local").  Server misbehaviour is not an error of
 * this call: it ends the connection (smtpout_session_close_reason()).
 */
SMTPOUT_EXTERN int smtpout_session_feed(smtpout_session *session,
                                        const uint8_t *data, size_t len,
                                        uint64_t now);

/* Tells the session the server closed the connection (read returned 0 or
 * failed).  Errors: SMTPOUT_ERR_INVALID_ARGUMENT, SMTPOUT_ERR_INVALID_STATE
 * (before start, or from a callback). */
SMTPOUT_EXTERN int smtpout_session_feed_eof(smtpout_session *session,
                                            uint64_t now);

/*
 * Points *pdata at the bytes to write to the server next and stores their
 * number in *plen (0 when there is nothing to write).  The pointer stays
 * valid until the next call on the session.  May start a transaction and
 * pull more body through read_body.  Returns 0, or
 * SMTPOUT_ERR_INVALID_ARGUMENT, SMTPOUT_ERR_INVALID_STATE (from a
 * callback), SMTPOUT_ERR_NOMEM (the connection is over: close reason
 * "local"; *plen is 0).
 */
SMTPOUT_EXTERN int smtpout_session_peek_output(smtpout_session *session,
                                               const uint8_t **pdata,
                                               size_t *plen, uint64_t now);

/* Says the first `n` bytes of the last peek were written.  Call it right
 * after the write, before feeding anything: a reply to a command the host
 * has not yet consumed answers nothing the server can have read, and ends
 * the connection as a protocol error (never a delivery).  Errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT (n larger than what was peeked, or any
 * other I/O call on the session in between), SMTPOUT_ERR_INVALID_STATE
 * (from a callback). */
SMTPOUT_EXTERN int smtpout_session_consume_output(smtpout_session *session,
                                                  size_t n, uint64_t now);

/* 1 when the session wants to read from the server. */
SMTPOUT_EXTERN int smtpout_session_want_read(const smtpout_session *session);

/* 1 when the session has (or can produce) bytes to write: call
 * smtpout_session_peek_output() when the socket is writable. */
SMTPOUT_EXTERN int
smtpout_session_want_write(const smtpout_session *session);

/* The next deadline (same clock as `now`), or SMTPOUT_NO_EXPIRY. */
SMTPOUT_EXTERN uint64_t smtpout_session_expiry(const smtpout_session *session);

/* Call when `now` has reached the expiry: a timed-out wait ends the
 * connection (recipients deferred, close reason "timeout"; after QUIT,
 * cleanly).  Earlier, it does nothing.  Errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT, SMTPOUT_ERR_INVALID_STATE (from a
 * callback). */
SMTPOUT_EXTERN int smtpout_session_handle_expiry(smtpout_session *session,
                                                 uint64_t now);

/* 1 when the session is over and has nothing left to write: every
 * recipient has its result; close the connection. */
SMTPOUT_EXTERN int smtpout_session_is_done(const smtpout_session *session);

/* Why the connection ended (enum smtpout_close_reason):
 * SMTPOUT_CLOSE_NONE while it runs and after a clean end (QUIT), or for a
 * NULL session.  The first cause is kept: what followed from it is not
 * reported. */
SMTPOUT_EXTERN int
smtpout_session_close_reason(const smtpout_session *session);

/* What ended the connection, in words ("timed out waiting for the reply
 * to RCPT TO (host mx.example)"; "" when nothing did).  Owned by the
 * session.  Never NULL. */
SMTPOUT_EXTERN const char *
smtpout_session_close_text(const smtpout_session *session);

/* The TLS outcome so far.  Owned by the session; never NULL. */
SMTPOUT_EXTERN const smtpout_tls_info *
smtpout_session_tls_info(const smtpout_session *session);

/*
 * The number of certificates the server presented in this session's TLS
 * handshake, in the order it sent them (its own first, then the chain it
 * sent): 0 before the handshake is complete and without TLS.  A resumed
 * handshake carries no certificate: GnuTLS then reports those of the
 * session the ticket was issued in, which it keeps with the ticket.
 * Readable from the on_tls callback on, until the session is freed.
 */
SMTPOUT_EXTERN size_t
smtpout_session_peer_certificate_count(const smtpout_session *session);

/*
 * Describes certificate `index` (0: the server's own) of those counted by
 * smtpout_session_peer_certificate_count(): stores a new object in *pcert,
 * which the caller frees with smtpout_certificate_free(); it does not refer
 * to the session.  Describing costs a parse and a digest, so it is done
 * only here, never for sessions nobody asks about.
 * Errors: SMTPOUT_ERR_INVALID_ARGUMENT (NULL pointers, no such
 * certificate), SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int
smtpout_session_peer_certificate(const smtpout_session *session, size_t index,
                                 smtpout_certificate **pcert);

/* Frees a certificate description.  NULL-safe. */
SMTPOUT_EXTERN void smtpout_certificate_free(smtpout_certificate *cert);

/* The subject's distinguished name as GnuTLS writes it, RFC 4514 order
 * ("CN=mx.example.net,O=Example"); "" when empty.  It is the server's
 * data: it may hold any UTF-8.  Never NULL. */
SMTPOUT_EXTERN const char *
smtpout_certificate_subject(const smtpout_certificate *cert);

/* The issuer's distinguished name, as the subject's.  Never NULL. */
SMTPOUT_EXTERN const char *
smtpout_certificate_issuer(const smtpout_certificate *cert);

/* The end of the validity period, in seconds since 1970-01-01 UTC, or -1
 * when it cannot be read. */
SMTPOUT_EXTERN int64_t
smtpout_certificate_not_after(const smtpout_certificate *cert);

/* The SHA-256 digest of the certificate (its DER encoding) in 64
 * lower-case hex digits: the association data of a TLSA "3 0 1" or
 * "2 0 1" record, and what `gnutls-cli` prints.  Never NULL. */
SMTPOUT_EXTERN const char *
smtpout_certificate_sha256(const smtpout_certificate *cert);

/* SMTPOUT_CAP_* bits from the last EHLO (0 before it, or after HELO). */
SMTPOUT_EXTERN uint32_t
smtpout_session_capabilities(const smtpout_session *session);

/* The AUTH outcome so far (enum smtpout_auth_outcome); NONE for a NULL
 * session. */
SMTPOUT_EXTERN int smtpout_session_auth_outcome(const smtpout_session *session);

/* The SASL mechanism AUTH used or tried ("PLAIN"), or NULL when none was
 * chosen.  Owned by the session. */
SMTPOUT_EXTERN const char *
smtpout_session_auth_mechanism(const smtpout_session *session);

/* Returns the policy the session applies (or will, once fixed): the
 * starttls mode, and whether invalid certificates are allowed; or
 * SMTPOUT_ERR_INVALID_ARGUMENT for a NULL session. */
SMTPOUT_EXTERN int
smtpout_session_policy_starttls(const smtpout_session *session);
SMTPOUT_EXTERN int
smtpout_session_policy_allow_invalid_certs(const smtpout_session *session);

/*
 * Checks that `address` (without angle brackets) can be sent in a MAIL or
 * RCPT command: no CR, LF or other control character, at most 256 octets
 * in the path, an '@' with a non-empty domain, no '<' or '>' (not even
 * escaped with a backslash in a quoted local part, where a backslash may
 * escape only printable ASCII), no unquoted space, quotes balanced.
 * Returns 0, or SMTPOUT_ERR_BAD_ADDRESS, SMTPOUT_ERR_INVALID_ARGUMENT (NULL).
 * Non-ASCII is allowed as well-formed UTF-8 only (no overlong form, no
 * surrogate, nothing past U+10FFFF); it needs SMTPUTF8 on the wire.
 */
SMTPOUT_EXTERN int smtpout_address_check(const char *address);

#ifdef __cplusplus
}
#endif

#endif /* SMTPOUT_SESSION_H */
