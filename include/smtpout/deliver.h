/*
 * smtpout — the blocking delivery driver.
 *
 * smtpout_delivery delivers one message to one server in one blocking call:
 * it resolves the server name, connects to each address in turn (with the
 * connect timeout), runs a session over the socket with poll(), makes the
 * plaintext fallback that the policy permits (once, on a new connection),
 * and keeps one result per recipient and one record per attempt.
 *
 * It is the convenience layer for tools and scripts; mail servers with an
 * event loop drive smtpout_session directly.
 */
#ifndef SMTPOUT_DELIVER_H
#define SMTPOUT_DELIVER_H

#include <smtpout/common.h>
#include <smtpout/config.h>
#include <smtpout/session.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smtpout_delivery smtpout_delivery;
typedef struct smtpout_attempt smtpout_attempt;

/*
 * Creates a delivery.  `config` may be NULL (built-in defaults); the
 * delivery takes its own reference.
 * Errors: SMTPOUT_ERR_INVALID_ARGUMENT, SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_delivery_new(smtpout_delivery **pdelivery,
                                        smtpout_config *config);

/* Frees a delivery and its results.  NULL-safe. */
SMTPOUT_EXTERN void smtpout_delivery_free(smtpout_delivery *delivery);

/*
 * The server to connect to: a host name or IP address, and a TCP port
 * (0 means 25).  Required.  Errors: INVALID_ARGUMENT, NOMEM.
 */
SMTPOUT_EXTERN int smtpout_delivery_set_server(smtpout_delivery *delivery,
                                               const char *host,
                                               uint16_t port);

/* The MX name used for the policy lookup, SNI and certificate check
 * (default: the server host).  Errors: INVALID_ARGUMENT, NOMEM. */
SMTPOUT_EXTERN int smtpout_delivery_set_mx_name(smtpout_delivery *delivery,
                                                const char *name);

/* The EHLO name (default: the configuration's, else the local host name):
 * a host name (U-labels allowed) or an IP address.  Errors:
 * INVALID_ARGUMENT, BAD_NAME (not a valid name: nothing is sent), NOMEM. */
SMTPOUT_EXTERN int smtpout_delivery_set_helo_name(smtpout_delivery *delivery,
                                                  const char *name);

/* Trust anchors from this PEM file instead of the configuration's.
 * Errors: INVALID_ARGUMENT, NOMEM. */
SMTPOUT_EXTERN int smtpout_delivery_set_ca_file(smtpout_delivery *delivery,
                                                const char *path);

/* Fixes the TLS policy instead of resolving it from the configuration.
 * Errors: INVALID_ARGUMENT. */
SMTPOUT_EXTERN int smtpout_delivery_set_tls_policy(smtpout_delivery *delivery,
                                                   int starttls,
                                                   int allow_invalid_certs);

/* Overrides timeout `which` (enum smtpout_timeout) in milliseconds (> 0)
 * for this delivery's connections, instead of the configuration's.
 * Errors: INVALID_ARGUMENT. */
SMTPOUT_EXTERN int smtpout_delivery_set_timeout(smtpout_delivery *delivery,
                                                int which, uint32_t ms);

/* The envelope sender ("" for <>).  Required.
 * Errors: INVALID_ARGUMENT, BAD_ADDRESS, NOMEM. */
SMTPOUT_EXTERN int smtpout_delivery_set_sender(smtpout_delivery *delivery,
                                               const char *sender);

/*
 * Adds a recipient.  An address that cannot be sent safely is accepted
 * here and bounced locally (5.1.3) without a byte of it reaching the
 * server.  Errors: INVALID_ARGUMENT, NOMEM.
 */
SMTPOUT_EXTERN int
smtpout_delivery_add_recipient(smtpout_delivery *delivery,
                               const char *recipient);

/* The body from memory (not copied: it must stay valid until
 * smtpout_delivery_run() returns).  Errors: INVALID_ARGUMENT. */
SMTPOUT_EXTERN int smtpout_delivery_set_body(smtpout_delivery *delivery,
                                             const uint8_t *data,
                                             size_t len);

/* The body from a file descriptor that supports pread() (a regular file),
 * read from offset 0 once to scan it and again on each attempt; it must
 * not change meanwhile.  The delivery does not close it.
 * Errors: INVALID_ARGUMENT. */
SMTPOUT_EXTERN int smtpout_delivery_set_body_fd(smtpout_delivery *delivery,
                                                int fd);

/* SMTPOUT_MESSAGE_* flags, added to those the delivery finds itself: it
 * scans the body (smtpout_message_scan) for 8-bit data, a non-ASCII
 * header and whether a 7-bit conversion is possible, and declares the
 * scan's size on the wire.  Set SMTPOUT_MESSAGE_SMTPUTF8 to require
 * SMTPUTF8 for an ASCII message.  Errors: INVALID_ARGUMENT. */
SMTPOUT_EXTERN int smtpout_delivery_set_flags(smtpout_delivery *delivery,
                                              uint32_t flags);

/* The trace callback of the sessions the delivery runs (see
 * smtpout_on_trace_callback; its session argument is the attempt's
 * session).  Errors: INVALID_ARGUMENT. */
SMTPOUT_EXTERN int
smtpout_delivery_set_trace(smtpout_delivery *delivery,
                           smtpout_on_trace_callback cb, void *user_data);

/*
 * Runs the delivery, blocking.  Returns 0 when every recipient has a
 * result (whatever its status: read them with smtpout_delivery_result()),
 * or a negative error when nothing could be attempted:
 * SMTPOUT_ERR_INVALID_ARGUMENT (NULL delivery),
 * SMTPOUT_ERR_INVALID_STATE (no server, no sender, no recipients, no body,
 * or run twice), SMTPOUT_ERR_BAD_NAME (the MX name), SMTPOUT_ERR_IO (the
 * body file could not be read whole), SMTPOUT_ERR_NOMEM.
 * Unreachable servers are not errors of this call: the recipients are
 * deferred and the attempts say why.  Recipients a connection failed for
 * (refused, timed out, lost, the TLS policy, a 421) or a server refused
 * whole (a 4xx or 5xx greeting, EHLO and HELO both refused, as Postfix's
 * smtp_skip_5xx_greeting) are tried on the server's next address, and stay
 * deferred when none is left; recipients a reply to their own commands
 * decided, or possibly delivered, are not.
 */
SMTPOUT_EXTERN int smtpout_delivery_run(smtpout_delivery *delivery);

/* The number of recipients added. */
SMTPOUT_EXTERN size_t
smtpout_delivery_recipient_count(const smtpout_delivery *delivery);

/* The result of recipient `index` (in the order added) after run, or NULL.
 * Owned by the delivery. */
SMTPOUT_EXTERN const smtpout_result *
smtpout_delivery_result(const smtpout_delivery *delivery, size_t index);

/* The number of connection attempts made. */
SMTPOUT_EXTERN size_t
smtpout_delivery_attempt_count(const smtpout_delivery *delivery);

/* Attempt `index`, or NULL.  Owned by the delivery. */
SMTPOUT_EXTERN const smtpout_attempt *
smtpout_delivery_attempt(const smtpout_delivery *delivery, size_t index);

/* The policy the delivery's sessions enforce, with its sources, or NULL
 * before run: the strictest over the recipients' domains (a domain that
 * is not a valid name matches no domain rule and counts as the MX host
 * alone, as in the session), or the one smtpout_delivery_set_tls_policy()
 * fixed (source and rule "host" / "smtpout_delivery_set_tls_policy").
 * Owned by the delivery. */
SMTPOUT_EXTERN const smtpout_policy *
smtpout_delivery_policy(const smtpout_delivery *delivery);

/* The address connected to, "IP:PORT" ("[IPv6]:PORT").  Never NULL. */
SMTPOUT_EXTERN const char *
smtpout_attempt_address(const smtpout_attempt *attempt);

/* 1 when this attempt was the plaintext fallback. */
SMTPOUT_EXTERN int
smtpout_attempt_plaintext_fallback(const smtpout_attempt *attempt);

/* The TLS outcome of the attempt.  Never NULL. */
SMTPOUT_EXTERN const smtpout_tls_info *
smtpout_attempt_tls_info(const smtpout_attempt *attempt);

/* What ended the attempt badly (connect failure, timeout, protocol error,
 * TLS policy), or NULL when it ended normally. */
SMTPOUT_EXTERN const char *
smtpout_attempt_error(const smtpout_attempt *attempt);

#ifdef __cplusplus
}
#endif

#endif /* SMTPOUT_DELIVER_H */
