/*
 * smtpout — the blocking delivery driver.
 *
 * smtpout_delivery delivers one message in one blocking call, to one
 * server (smtpout_delivery_set_server()) or to a recipient domain
 * (smtpout_delivery_set_domain(), route mode).  To a server it resolves
 * the name, connects to each address in turn (with the connect timeout),
 * runs a session over the socket with poll(), makes the plaintext fallback
 * that the policy permits (once, on a new connection), and keeps one
 * result per recipient and one record per attempt.  To a domain it runs a
 * route (<smtpout/route.h>) and is its host: it answers the route's DNS
 * questions with its own resolver ([queue.outbound.dns]), its HTTPS
 * fetches of MTA-STS policies with libcurl, its cache requests with a
 * store (a file by default, or the host's own through callbacks), and
 * connects to the hops it hands out under their TLS requirement (DANE,
 * MTA-STS, REQUIRETLS); TLS-RPT events go to a file or to the host
 * (docs/routing.md, "The blocking driver").
 *
 * It is the convenience layer for tools and scripts; mail servers with an
 * event loop drive smtpout_session (and smtpout_route) directly.
 */
#ifndef SMTPOUT_DELIVER_H
#define SMTPOUT_DELIVER_H

#include <smtpout/common.h>
#include <smtpout/config.h>
#include <smtpout/route.h>
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
 * (0 means 25).  This or smtpout_delivery_set_domain() is required; the
 * later call replaces the earlier.  Errors: INVALID_ARGUMENT, NOMEM.
 */
SMTPOUT_EXTERN int smtpout_delivery_set_server(smtpout_delivery *delivery,
                                               const char *host,
                                               uint16_t port);

/*
 * Route mode: deliver through the MX hosts of the recipient domain
 * `domain` (a domain name, U-labels allowed, or an address literal such
 * as "[192.0.2.1]"), as smtpout_route_new() finds them, instead of to one
 * server.  Every recipient goes through that domain's MX hosts whatever
 * its own domain: grouping recipients by domain is the host's business,
 * as it is a queue's.  The port is [queue.outbound] smtp-port; each hop's
 * TLS requirement comes from the route (DANE, MTA-STS, REQUIRETLS, the
 * local policy; docs/routing.md), so smtpout_delivery_set_mx_name() and
 * smtpout_delivery_set_tls_policy() do not go with it (run refuses
 * them).  Replaces an earlier smtpout_delivery_set_server().  The name
 * is checked when the delivery runs.  Errors: INVALID_ARGUMENT, NOMEM.
 */
SMTPOUT_EXTERN int smtpout_delivery_set_domain(smtpout_delivery *delivery,
                                               const char *domain);

/*
 * Route mode through a relay: deliver every recipient to the relay
 * `label` of the configuration ([relay "label"]; NULL: the one
 * [queue.outbound] relay names), as smtpout_route_new_relay() hands it
 * out: one fixed host and port, resolved by the driver's resolver, with
 * the relay's implicit TLS, AUTH (the secret read from its
 * auth-password-file when each session is made, never kept by the
 * delivery), client certificate, and TLS knobs (DANE and MTA-STS only as
 * its section says; docs/relay.md).  smtpout_delivery_set_mx_name(),
 * _set_tls_policy(), _set_auth(), _set_implicit_tls() and
 * _set_client_cert() do not go with it (run refuses them: the relay's
 * section says all of that).  Replaces an earlier
 * smtpout_delivery_set_server() or _set_domain().  Errors:
 * INVALID_ARGUMENT (NULL delivery, an empty label, no such relay in the
 * configuration), NOMEM.
 */
SMTPOUT_EXTERN int smtpout_delivery_set_relay(smtpout_delivery *delivery,
                                              const char *label);

/*
 * Flags for the route of route mode: SMTPOUT_ROUTE_REQUIRETLS (the
 * message asks for REQUIRETLS, RFC 8689: only hops DANE or MTA-STS
 * authenticates, MAIL FROM with REQUIRETLS, a bounce 5.7.30 or 5.7.10
 * when no MX qualifies), SMTPOUT_ROUTE_TLS_REQUIRED_NO (the message
 * carries "TLS-Required: No") and SMTPOUT_ROUTE_NO_DNSSEC (treat the
 * resolver as one without DNSSEC verdicts; the delivery sets it itself
 * when its resolver cannot give any).  Without a domain, run refuses
 * them.  Errors: INVALID_ARGUMENT (NULL delivery, an unknown flag).
 */
SMTPOUT_EXTERN int smtpout_delivery_set_route_flags(smtpout_delivery *delivery,
                                                    uint32_t flags);

/* The DNSSEC modes of the driver's resolver, as [queue.outbound.dns]
 * dnssec names them (docs/routing.md, "Resolvers"). */
enum smtpout_dnssec_mode {
  /* A stub resolver that believes the AD bit, and only from nameservers
   * on a loopback address. */
  SMTPOUT_DNSSEC_MODE_TRUST_AD = 0,
  /* libunbound validates in the process, from a trust-anchor file. */
  SMTPOUT_DNSSEC_MODE_VALIDATE = 1,
  /* No verdicts: DANE is unavailable. */
  SMTPOUT_DNSSEC_MODE_OFF = 2
};

/*
 * The nameservers of route mode, instead of [queue.outbound.dns] resolver
 * (default: /etc/resolv.conf's): numeric addresses with an optional port,
 * separated by spaces or commas ("127.0.0.1:3535 [::1]:53"), at most 8.
 * Errors: INVALID_ARGUMENT (NULL, or not such a list), NOMEM.
 */
SMTPOUT_EXTERN int smtpout_delivery_set_resolver(smtpout_delivery *delivery,
                                                 const char *nameservers);

/* The DNSSEC mode of route mode (enum smtpout_dnssec_mode), instead of
 * [queue.outbound.dns] dnssec.  Errors: INVALID_ARGUMENT (NULL delivery,
 * an unknown mode, or SMTPOUT_DNSSEC_MODE_VALIDATE in a build without
 * libunbound). */
SMTPOUT_EXTERN int smtpout_delivery_set_dnssec_mode(smtpout_delivery *delivery,
                                                    int mode);

/* The largest value a store is asked to keep, in bytes: an MTA-STS cache
 * entry (a 64 KiB policy and its header). */
#define SMTPOUT_STORE_VALUE_MAX 66048

/*
 * Reads the value stored under `key` (printable ASCII without spaces, at
 * most 255 characters, e.g. "sts:example.org") into `buf` (`buflen` bytes,
 * SMTPOUT_STORE_VALUE_MAX) and stores its length in *plen; *plen 0 is a
 * miss.  Return 0, or any negative value for a failure (read as a miss).
 * The value is opaque: the library checks it when it reads it, so a
 * corrupt or stale one costs a fetch, nothing more.
 */
typedef int (*smtpout_store_get_callback)(const char *key, uint8_t *buf,
                                          size_t buflen, size_t *plen,
                                          void *user_data);

/*
 * Stores `value` (`len` bytes, at most SMTPOUT_STORE_VALUE_MAX) under
 * `key`, replacing what is there; the store may drop it after `expires`
 * (wall-clock milliseconds since the Unix epoch).  Return 0, or any
 * negative value for a failure (the delivery goes on: the value is fetched
 * again next time).
 */
typedef int (*smtpout_store_put_callback)(const char *key,
                                          const uint8_t *value, size_t len,
                                          uint64_t expires, void *user_data);

/*
 * The store route mode keeps MTA-STS policies in, instead of the file of
 * [queue.outbound.mta-sts] cache (without either, nothing is kept between
 * deliveries): the host's shared store, so that every process and machine
 * that sends uses one cache (Redis, SQL, memcached; examples/redis-store/
 * is one on Redis).  The callbacks run inside smtpout_delivery_run(), on
 * its thread; `get` may block (to wait for another process's fetch, for
 * instance).  Both NULL: back to the default.  Errors: INVALID_ARGUMENT
 * (NULL delivery, one callback without the other).
 */
SMTPOUT_EXTERN int smtpout_delivery_set_store(smtpout_delivery *delivery,
                                              smtpout_store_get_callback get,
                                              smtpout_store_put_callback put,
                                              void *user_data);

/*
 * Takes one TLS-RPT event (RFC 8460; docs/tlsrpt.md): one JSON object,
 * `len` bytes, NUL-terminated, without a line end, valid during the call.
 * Return 0 once it is stored, or any negative value for a failure
 * (counted, smtpout_delivery_tlsrpt_events_lost()).
 */
typedef int (*smtpout_tlsrpt_event_callback)(const char *json, size_t len,
                                             void *user_data);

/*
 * Where route mode's TLS-RPT events go, instead of the file of
 * [queue.outbound.tls-rpt] events (without either, they are dropped):
 * one per connection that negotiated or attempted TLS, and one per
 * failure of the route before any connection (an MTA-STS policy that
 * could not be fetched, a TLSA lookup that failed, an MX host an enforce
 * policy does not list).  The callback runs inside
 * smtpout_delivery_run(); NULL: back to the default.  Errors:
 * INVALID_ARGUMENT (NULL delivery).
 */
SMTPOUT_EXTERN int
smtpout_delivery_set_tlsrpt_events(smtpout_delivery *delivery,
                                   smtpout_tlsrpt_event_callback cb,
                                   void *user_data);

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

/* Authenticates every connection with SMTP AUTH, as
 * smtpout_session_set_auth() describes (the same arguments, checked now):
 * credentials never go without TLS, make the policy's optional require
 * (the policy report says so: source "auth"), and forbid the plaintext
 * fallback.  The secret is copied and wiped when smtpout_delivery_run()
 * returns.  Errors: INVALID_ARGUMENT, NOMEM. */
SMTPOUT_EXTERN int smtpout_delivery_set_auth(smtpout_delivery *delivery,
                                             const char *mechanisms,
                                             const char *username,
                                             const char *secret,
                                             uint32_t flags);

/* With `enable` 1, every connection starts with TLS (RFC 8314 implicit
 * TLS, usually port 465; smtpout_session_set_implicit_tls()); a failed
 * handshake is never retried in plaintext.  Errors: INVALID_ARGUMENT. */
SMTPOUT_EXTERN int
smtpout_delivery_set_implicit_tls(smtpout_delivery *delivery, int enable);

/* The client certificate (PEM chain) and key (PEM) presented when a
 * server asks (smtpout_session_set_client_cert()).  Read now to check
 * them, and again by each connection's session.  Errors:
 * INVALID_ARGUMENT, TLS_SETUP (unreadable, not PEM, a key that does not
 * match), NOMEM. */
SMTPOUT_EXTERN int
smtpout_delivery_set_client_cert(smtpout_delivery *delivery,
                                 const char *cert_path, const char *key_path);

/* With `enable` 0, DATA even where the server offers CHUNKING
 * (smtpout_session_set_chunking()).  Errors: INVALID_ARGUMENT. */
SMTPOUT_EXTERN int smtpout_delivery_set_chunking(smtpout_delivery *delivery,
                                                 int enable);

/* The DSN request of the message (copied; NULL: none), its recipients
 * numbered in the order they are added (smtpout_dsn_new(),
 * smtpout_session_submit_dsn()).  Errors: INVALID_ARGUMENT, NOMEM. */
SMTPOUT_EXTERN int smtpout_delivery_set_dsn(smtpout_delivery *delivery,
                                            const smtpout_dsn *dsn);

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
 * session).  In route mode the delivery also notes its route's steps (DNS
 * questions and their verdicts, fetches, cache reads and writes,
 * connections) with direction SMTPOUT_TRACE_INFO and a NULL session.
 * Errors: INVALID_ARGUMENT. */
SMTPOUT_EXTERN int
smtpout_delivery_set_trace(smtpout_delivery *delivery,
                           smtpout_on_trace_callback cb, void *user_data);

/*
 * Runs the delivery, blocking.  Returns 0 when every recipient has a
 * result (whatever its status: read them with smtpout_delivery_result()),
 * or a negative error when nothing could be attempted:
 * SMTPOUT_ERR_INVALID_ARGUMENT (NULL delivery),
 * SMTPOUT_ERR_INVALID_STATE (no server or domain, no sender, no
 * recipients, no body, run twice; a domain with an MX name or a fixed TLS
 * policy, route flags without a domain; a DSN request for a recipient
 * never added), SMTPOUT_ERR_BAD_NAME (the MX name, or the domain),
 * SMTPOUT_ERR_IO (the body file could not be read whole),
 * SMTPOUT_ERR_NOMEM.
 * Unreachable servers are not errors of this call: the recipients are
 * deferred and the attempts say why.  Recipients a connection failed for
 * (refused, timed out, lost, the TLS policy, a 421) or a server refused
 * whole (a 4xx or 5xx greeting, EHLO and HELO both refused, as Postfix's
 * smtp_skip_5xx_greeting) are tried on the server's next address, and stay
 * deferred when none is left; recipients a reply to their own commands
 * decided, or possibly delivered, are not.
 *
 * In route mode the route decides the next address and MX host from each
 * hop's outcome; recipients no hop delivered or decided get the route's
 * verdict (smtpout_route_status(), _enhanced(), _text()): bounced for a
 * null MX (5.1.10), a domain that does not exist (5.1.2) or, with
 * REQUIRETLS, no MX that qualifies (5.7.30, 5.7.10); deferred otherwise.
 * A hop whose connection fails, or that cannot be set up here (the
 * resolver, the trust anchors), is an attempt with its error, never an
 * error of this call.
 */
SMTPOUT_EXTERN int smtpout_delivery_run(smtpout_delivery *delivery);

/*
 * Runs route mode without connecting: the route resolves the domain (MX,
 * addresses, DNSSEC, TLSA, the MTA-STS policy, fetched if need be; the
 * store is read but not written, no TLS-RPT event is kept) and every hop
 * it would hand out becomes an attempt that made no connection, with its
 * explanation (smtpout_attempt_explain()): what smtpout-policy --resolve
 * shows.  Needs only a domain.  Returns 0;
 * SMTPOUT_ERR_INVALID_ARGUMENT (NULL delivery),
 * SMTPOUT_ERR_INVALID_STATE (no domain, or run or resolved already),
 * SMTPOUT_ERR_BAD_NAME (the domain), SMTPOUT_ERR_CONFIG (the resolver
 * could not be set up: an unreadable trust anchor, libunbound refusing;
 * there is no route then), SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_delivery_resolve(smtpout_delivery *delivery);

/* Route mode, after run or resolve: the route, for what it found
 * (smtpout_route_domain(), _dnssec(), _mx_count(), _mx_name(),
 * _sts_mode(), _sts_id(), _status() ...); NULL before, and to a server.
 * Owned by the delivery. */
SMTPOUT_EXTERN const smtpout_route *
smtpout_delivery_route(const smtpout_delivery *delivery);

/* TLS-RPT events route mode could not store: the callback failed, the
 * events file could not be written, or the route's own bound was
 * reached. */
SMTPOUT_EXTERN uint32_t
smtpout_delivery_tlsrpt_events_lost(const smtpout_delivery *delivery);

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
 * fixed (source and rule "host" / "smtpout_delivery_set_tls_policy").  In
 * route mode: the local policy of the domain, before any MX host's rule
 * and before DANE, MTA-STS and REQUIRETLS (each attempt's explanation
 * says what applied to its hop).  Owned by the delivery. */
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

/* The MX host name the attempt's policy, SNI (without DANE) and
 * certificate check used: the hop's (smtpout_hop_mx()) in route mode, the
 * MX name (or server) otherwise.  Never NULL. */
SMTPOUT_EXTERN const char *smtpout_attempt_mx(const smtpout_attempt *attempt);

/* Route mode: how the attempt's hop went (enum smtpout_hop_outcome, as
 * reported to the route); -1 to a server.  A plaintext fallback and the
 * attempt before it share their hop: the outcome is the last one's. */
SMTPOUT_EXTERN int
smtpout_attempt_hop_outcome(const smtpout_attempt *attempt);

/* Route mode: the hop's TLS requirement (enum smtpout_tls_requirement),
 * which rank decided it (enum smtpout_tls_source), its DANE status (enum
 * smtpout_dane_status), the number of TLSA records it carried, and the
 * MTA-STS mode that applied to it (enum smtpout_sts_mode).  To a server:
 * LOCAL, LOCAL, -1, 0 and 0. */
SMTPOUT_EXTERN int
smtpout_attempt_tls_requirement(const smtpout_attempt *attempt);
SMTPOUT_EXTERN int smtpout_attempt_tls_source(const smtpout_attempt *attempt);
SMTPOUT_EXTERN int
smtpout_attempt_dane_status(const smtpout_attempt *attempt);
SMTPOUT_EXTERN size_t
smtpout_attempt_tlsa_count(const smtpout_attempt *attempt);
SMTPOUT_EXTERN int smtpout_attempt_sts_mode(const smtpout_attempt *attempt);

/* Route mode: the hop's explanation (smtpout_hop_explain()); NULL to a
 * server. */
SMTPOUT_EXTERN const char *
smtpout_attempt_explain(const smtpout_attempt *attempt);

/* Route mode: the TLS-RPT event of the attempt (one JSON line, as the
 * events file holds it), and its RFC 8460 result type ("starttls-not-
 * supported", "validation-failure" for an MX an MTA-STS testing policy
 * does not list, ...); NULL without an event (a connection that failed,
 * TLS not attempted, to a server) and, for the type, on a success. */
SMTPOUT_EXTERN const char *
smtpout_attempt_tlsrpt_event(const smtpout_attempt *attempt);
SMTPOUT_EXTERN const char *
smtpout_attempt_tlsrpt_result(const smtpout_attempt *attempt);

/* The attempt's AUTH outcome (enum smtpout_auth_outcome;
 * smtpout_session_auth_outcome()). */
SMTPOUT_EXTERN int
smtpout_attempt_auth_outcome(const smtpout_attempt *attempt);

/* The SASL mechanism the attempt used or tried, or NULL.  Owned by the
 * delivery. */
SMTPOUT_EXTERN const char *
smtpout_attempt_auth_mechanism(const smtpout_attempt *attempt);

#ifdef __cplusplus
}
#endif

#endif /* SMTPOUT_DELIVER_H */
