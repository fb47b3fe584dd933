/*
 * smtpout — routes: the next hops for one recipient domain (RFC 5321
 * section 5.1, RFC 7505 null MX, RFC 7672 DANE), without I/O.
 *
 * A route turns a recipient domain into hops: one address of one MX host,
 * with the port and the TLS requirement DANE puts on it.  Like the
 * session, it does no I/O and reads no clock.  It asks its host for DNS
 * answers (smtpout_route_next_request()), the host answers each question
 * with the raw response and the DNSSEC verdict of its resolver
 * (smtpout_route_dns_answer()), or says the lookup failed
 * (smtpout_route_dns_failed()); the route hands out hops
 * (smtpout_route_next_hop()), the host connects and delivers, and reports
 * how each hop went (smtpout_route_hop_done()), which decides the next
 * address or MX host.  When nothing is left to try, smtpout_route_status()
 * and friends give the verdict for the recipients still undelivered.
 *
 * Typical loop (docs/routing.md has the whole story):
 *
 *   smtpout_route_new(&r, config, "example.org", 0, now);
 *   for (;;) {
 *     int want = smtpout_route_want(r);
 *     if (want == SMTPOUT_ROUTE_WANT_REQUEST) {
 *       smtpout_route_next_request(r, &q, now);
 *       start a query for smtpout_request_qname(q), _qtype(q), keep _id(q);
 *     } else if (want == SMTPOUT_ROUTE_WANT_HOP) {
 *       smtpout_route_next_hop(r, &hop, now);
 *       connect to _address(hop) port _port(hop), deliver under the hop's
 *       TLS requirement, then smtpout_route_hop_done(r, hop, outcome, ...);
 *     } else if (want == SMTPOUT_ROUTE_WAIT) {
 *       wait for a DNS answer, at most until smtpout_route_expiry(r);
 *       smtpout_route_dns_answer(r, id, verdict, packet, len, now), or
 *       smtpout_route_handle_expiry(r, now);
 *     } else {
 *       break;   (SMTPOUT_ROUTE_DONE: read smtpout_route_status(r))
 *     }
 *   }
 *   smtpout_route_free(r);
 *
 * Requests are pulled, not pushed through callbacks: nothing runs inside
 * the host's code, a host may run the queries of several routes at once,
 * and Python needs no C callbacks.  MTA-STS (a later addition) will ask
 * for HTTPS fetches and cache entries through the same pull, as more
 * request kinds.
 *
 * Threads: a route must be used by one thread at a time; distinct routes
 * share nothing but the reference-counted configuration.  No function
 * here calls back into the host.
 *
 * Every getter accepts NULL and then returns 0, NULL or "" as documented.
 */
#ifndef SMTPOUT_ROUTE_H
#define SMTPOUT_ROUTE_H

#include <smtpout/common.h>
#include <smtpout/config.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smtpout_route smtpout_route;
typedef struct smtpout_request smtpout_request;
typedef struct smtpout_hop smtpout_hop;

/* ------------------------------------------------------------------ */
/* DNSSEC verdicts                                                      */

/*
 * The verdict a host gives with every DNS answer (RFC 4035 section 4.3).
 * The library never decides it from the packet (an AD bit is only as
 * trustworthy as the path it came over): it is the host's resolver's
 * (docs/routing.md, "DNSSEC verdicts").
 */
enum smtpout_dnssec {
  /* Provably unsigned, or from a resolver whose AD bit is not trusted. */
  SMTPOUT_DNSSEC_INSECURE = 0,
  /* Validated by a validator the host trusts. */
  SMTPOUT_DNSSEC_SECURE = 1,
  /* Signed, but validation failed: an error, never "no records". */
  SMTPOUT_DNSSEC_BOGUS = 2,
  /* No usable answer: a timeout, a SERVFAIL nobody explained. */
  SMTPOUT_DNSSEC_INDETERMINATE = 3
};

/* Returns "insecure", "secure", "bogus" or "indeterminate"; NULL for any
 * other value. */
SMTPOUT_EXTERN const char *smtpout_dnssec_name(int verdict);

/* ------------------------------------------------------------------ */
/* The route                                                            */

/* Flags for smtpout_route_new(). */
/* The host's resolver cannot give DNSSEC verdicts (for example glibc's
 * stub resolver talking to a resolver that is not on this machine): every
 * verdict it passes is INSECURE, and the route reports DANE as
 * unavailable instead of reading that as "no TLSA records".  A
 * configuration with [queue.outbound.dns] dnssec = off has the same
 * effect. */
#define SMTPOUT_ROUTE_NO_DNSSEC 0x1u

/*
 * Creates a route to the recipient domain `domain`: a domain name in any
 * case, U-labels allowed (converted to A-labels with IDNA2008), with or
 * without a trailing dot; or an address literal ("[192.0.2.1]",
 * "[IPv6:2001:db8::1]"), which is one hop to that address with no DNS
 * (RFC 5321 section 5.1).  `config` may be NULL (built-in defaults); the
 * route takes its own reference and reads from it smtp-port, the MX
 * limits, address-preference, the DNS timeout and the dane knob of each
 * MX host (docs/configuration.md).  `flags`: 0 or SMTPOUT_ROUTE_*.  `now`
 * is the host's monotonic time in milliseconds.
 *
 * Equal MX preferences and addresses are shuffled from a seed taken from
 * GnuTLS's random generator; smtpout_route_set_seed() fixes it.
 *
 * On success stores the route in *proute (free it with
 * smtpout_route_free()) and returns 0; the route then wants its first
 * request (or, for an address literal, its hop).  Errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT (NULL `proute` or `domain`, an unknown
 * flag), SMTPOUT_ERR_BAD_NAME (`domain` is neither a valid domain name
 * nor an address literal), SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_route_new(smtpout_route **proute,
                                     smtpout_config *config,
                                     const char *domain, uint32_t flags,
                                     uint64_t now);

/*
 * Frees a route, its requests and its hop, and drops its configuration
 * reference.  Answers to its requests still in flight must not be given
 * to it afterwards.  NULL-safe.
 */
SMTPOUT_EXTERN void smtpout_route_free(smtpout_route *route);

/*
 * Fixes the seed of the shuffles (equal MX preferences, the addresses of
 * a host, the first address family with address-preference = any), so
 * that a test sees the same order every time.  The shuffles happen when
 * the MX answer arrives: call this right after smtpout_route_new().
 * Returns 0; SMTPOUT_ERR_INVALID_ARGUMENT (NULL route);
 * SMTPOUT_ERR_INVALID_STATE once the MX hosts are ordered.
 */
SMTPOUT_EXTERN int smtpout_route_set_seed(smtpout_route *route,
                                          uint64_t seed);

/* What the route needs next, from smtpout_route_want(). */
enum smtpout_route_want {
  /* A request is ready: call smtpout_route_next_request(). */
  SMTPOUT_ROUTE_WANT_REQUEST = 1,
  /* A hop is ready: call smtpout_route_next_hop(). */
  SMTPOUT_ROUTE_WANT_HOP = 2,
  /* Waiting for DNS answers (at most until smtpout_route_expiry()) or for
   * the outcome of the hop handed out. */
  SMTPOUT_ROUTE_WAIT = 3,
  /* Finished: nothing left to try (smtpout_route_status() says what to do
   * with the recipients still undelivered), or the last hop was
   * SMTPOUT_HOP_DONE. */
  SMTPOUT_ROUTE_DONE = 4
};

/*
 * Returns what the route needs next (enum smtpout_route_want): requests
 * come first when there are both.  SMTPOUT_ERR_INVALID_ARGUMENT for a NULL
 * route.
 */
SMTPOUT_EXTERN int smtpout_route_want(const smtpout_route *route);

/* ------------------------------------------------------------------ */
/* Requests                                                             */

/* What a request asks for.  Only DNS questions exist today; MTA-STS will
 * add HTTPS fetches and cache reads and writes. */
enum smtpout_request_kind {
  SMTPOUT_REQUEST_DNS = 1
};

/*
 * Takes the next request.  Returns 1 and stores it in *preq, or 0 (and
 * NULL) when there is none now.  From then on the route waits for its
 * answer, until `now` plus the request's timeout at most
 * (smtpout_route_expiry()).  The request is owned by the route and valid
 * until it is answered, failed, expired, or the route is freed.  Errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT (NULL argument).
 */
SMTPOUT_EXTERN int smtpout_route_next_request(smtpout_route *route,
                                              const smtpout_request **preq,
                                              uint64_t now);

/* The request's id (> 0, unique within its route): pass it back with the
 * answer. */
SMTPOUT_EXTERN int smtpout_request_id(const smtpout_request *request);

/* enum smtpout_request_kind. */
SMTPOUT_EXTERN int smtpout_request_kind(const smtpout_request *request);

/*
 * The name a DNS request asks about: lower-case A-labels with a trailing
 * dot ("example.org.", "_25._tcp.mx1.example.org."), so that no resolver
 * applies a search list to it.  Owned by the request.
 */
SMTPOUT_EXTERN const char *
smtpout_request_qname(const smtpout_request *request);

/* The record type of a DNS request: 1 (A), 15 (MX), 28 (AAAA) or 52
 * (TLSA), class IN. */
SMTPOUT_EXTERN int smtpout_request_qtype(const smtpout_request *request);

/* How long the route waits for the answer, in milliseconds
 * ([queue.outbound.dns] timeout): a host's resolver should give up
 * before. */
SMTPOUT_EXTERN uint32_t
smtpout_request_timeout_ms(const smtpout_request *request);

/*
 * The answer to DNS request `id`: the whole response message as the
 * resolver received it (`len` octets, at most 65535; any rcode: NXDOMAIN
 * and NODATA are answers too) and its DNSSEC verdict (enum
 * smtpout_dnssec).  The packet is read during the call and not kept.
 *
 * The packet comes from outside and is never trusted: a message that
 * does not parse (lib/dns.c's bounded parser), that is truncated (TC),
 * that does not answer the request's question (name, type, class IN;
 * the id in the packet is the resolver's and is not compared), or whose
 * rcode is neither NOERROR nor NXDOMAIN is a failed lookup, as
 * smtpout_route_dns_failed() would make it.  A BOGUS or INDETERMINATE
 * verdict makes any answer a failed lookup (RFC 7672 section 2.1.1).
 *
 * Returns 0 (the route may now want more requests or a hop).  Errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT (NULL route, NULL packet with a non-zero
 * length, a length over 65535, an unknown verdict),
 * SMTPOUT_ERR_INVALID_STATE (no request `id` is waiting for an answer:
 * never issued, already answered, expired, or the route is done); the
 * route is unchanged by an error.
 */
SMTPOUT_EXTERN int smtpout_route_dns_answer(smtpout_route *route, int id,
                                            int dnssec,
                                            const uint8_t *packet,
                                            size_t len, uint64_t now);

/*
 * DNS request `id` got no usable response: `dnssec` is BOGUS when the
 * resolver says validation failed, INDETERMINATE otherwise (SECURE and
 * INSECURE are read as INDETERMINATE: a failure is never a negative
 * answer); `rcode` is the response's rcode (2 SERVFAIL, 5 REFUSED, ...)
 * or 0 when none arrived (timeout, unreachable), for the explanation
 * only.  A negative answer (NXDOMAIN, NODATA) must be given with its
 * packet to smtpout_route_dns_answer().
 *
 * Returns 0.  Errors: SMTPOUT_ERR_INVALID_ARGUMENT (NULL route, an unknown
 * verdict), SMTPOUT_ERR_INVALID_STATE (as for smtpout_route_dns_answer()).
 */
SMTPOUT_EXTERN int smtpout_route_dns_failed(smtpout_route *route, int id,
                                            int dnssec, int rcode,
                                            uint64_t now);

/* The earliest deadline of the requests waiting for an answer, or
 * SMTPOUT_NO_EXPIRY when none is. */
SMTPOUT_EXTERN uint64_t smtpout_route_expiry(const smtpout_route *route);

/*
 * Call when `now` reached smtpout_route_expiry(): every request whose
 * deadline has passed fails as an INDETERMINATE lookup (its late answer
 * is then refused with SMTPOUT_ERR_INVALID_STATE).  Returns 0;
 * SMTPOUT_ERR_INVALID_ARGUMENT for a NULL route.
 */
SMTPOUT_EXTERN int smtpout_route_handle_expiry(smtpout_route *route,
                                               uint64_t now);

/* ------------------------------------------------------------------ */
/* Hops                                                                 */

/* What TLS a hop must have, whatever the local starttls and
 * allow-invalid-certs say (precedence: docs/routing.md). */
enum smtpout_tls_requirement {
  /* No DANE for this hop: the local policy (starttls,
   * allow-invalid-certs) applies. */
  SMTPOUT_TLS_REQUIREMENT_LOCAL = 0,
  /* DANE (RFC 7672 section 2.2): STARTTLS is mandatory and the server's
   * certificate chain must match one of the hop's TLSA records
   * (smtpout_hop_tlsa()); SNI is the TLSA base domain; no plaintext, no
   * PKIX fallback, allow-invalid-certs does not apply.  Only dane =
   * disable turns this off. */
  SMTPOUT_TLS_REQUIREMENT_DANE = 1,
  /* The secure TLSA RRset has no usable record (RFC 7672 section 3):
   * STARTTLS is mandatory, the certificate is not authenticated. */
  SMTPOUT_TLS_REQUIREMENT_ENCRYPT = 2
};

/* Returns "local", "dane" or "encrypt"; NULL for any other value. */
SMTPOUT_EXTERN const char *smtpout_tls_requirement_name(int requirement);

/* Why a hop has the TLS requirement it has, as far as DANE goes. */
enum smtpout_dane_status {
  /* dane = disable for this domain and MX host: no TLSA lookup. */
  SMTPOUT_DANE_STATUS_DISABLED = 0,
  /* The resolver gives no DNSSEC verdicts (SMTPOUT_ROUTE_NO_DNSSEC, or
   * dnssec = off): DANE is unavailable, not absent. */
  SMTPOUT_DANE_STATUS_UNAVAILABLE = 1,
  /* An address literal: no DNS, no DANE. */
  SMTPOUT_DANE_STATUS_ADDRESS_LITERAL = 2,
  /* The MX RRset (or, for an implicit MX, the MX NODATA answer) is not
   * DNSSEC-secure (RFC 7672 section 2.2.1). */
  SMTPOUT_DANE_STATUS_MX_INSECURE = 3,
  /* The MX host's addresses are not DNSSEC-secure: no TLSA lookup (RFC
   * 7672 section 2.2.3). */
  SMTPOUT_DANE_STATUS_HOST_INSECURE = 4,
  /* No TLSA records: a denial, secure or insecure. */
  SMTPOUT_DANE_STATUS_NO_TLSA = 5,
  /* TLSA records exist, but are not DNSSEC-secure: ignored. */
  SMTPOUT_DANE_STATUS_TLSA_INSECURE = 6,
  /* Secure TLSA records, at least one usable: SMTPOUT_TLS_REQUIREMENT_DANE. */
  SMTPOUT_DANE_STATUS_USABLE = 7,
  /* Secure TLSA records, none usable: SMTPOUT_TLS_REQUIREMENT_ENCRYPT. */
  SMTPOUT_DANE_STATUS_UNUSABLE = 8
};

/* Returns "disabled", "unavailable", "address-literal", "mx-insecure",
 * "host-insecure", "no-tlsa", "tlsa-insecure", "usable" or "unusable";
 * NULL for any other value. */
SMTPOUT_EXTERN const char *smtpout_dane_status_name(int status);

/*
 * Takes the next hop.  Returns 1 and stores it in *phop, or 0 (and NULL)
 * when there is none now (smtpout_route_want() is not
 * SMTPOUT_ROUTE_WANT_HOP).  One hop is out at a time: the route waits for
 * its outcome (smtpout_route_hop_done()) before it offers another.  The
 * hop is owned by the route and valid until its outcome is reported or
 * the route is freed.  Errors: SMTPOUT_ERR_INVALID_ARGUMENT (NULL
 * argument).
 */
SMTPOUT_EXTERN int smtpout_route_next_hop(smtpout_route *route,
                                          const smtpout_hop **phop,
                                          uint64_t now);

/*
 * The MX host name: lower-case A-labels, no trailing dot, as the MX
 * record names it (before any CNAME); the recipient domain for an
 * implicit MX; the address for an address literal.  It is the name the
 * local policy is resolved for and, without DANE, the SNI and the name
 * the certificate must carry.  Owned by the hop.
 */
SMTPOUT_EXTERN const char *smtpout_hop_mx(const smtpout_hop *hop);

/* The MX preference; 0 for an implicit MX (RFC 5321 section 5.1) and for
 * an address literal. */
SMTPOUT_EXTERN int smtpout_hop_preference(const smtpout_hop *hop);

/* The address to connect to, as text: "192.0.2.1", "2001:db8::1".  Owned
 * by the hop. */
SMTPOUT_EXTERN const char *smtpout_hop_address(const smtpout_hop *hop);

/* The port to connect to ([queue.outbound] smtp-port, 25). */
SMTPOUT_EXTERN uint16_t smtpout_hop_port(const smtpout_hop *hop);

/* enum smtpout_tls_requirement. */
SMTPOUT_EXTERN int smtpout_hop_tls_requirement(const smtpout_hop *hop);

/* enum smtpout_dane_status. */
SMTPOUT_EXTERN int smtpout_hop_dane_status(const smtpout_hop *hop);

/*
 * The TLSA base domain (RFC 7672 section 2.2.3): the name whose
 * _PORT._tcp TLSA records the hop carries, which is also the SNI under
 * DANE (section 8.1): the CNAME-expanded MX host name when it has TLSA
 * records, else the MX host name.  NULL when the hop carries no TLSA
 * record.  Owned by the hop.
 */
SMTPOUT_EXTERN const char *smtpout_hop_tlsa_base(const smtpout_hop *hop);

/* The number of TLSA records the hop carries (all of the secure RRset,
 * usable or not; at most 64); 0 without DANE. */
SMTPOUT_EXTERN size_t smtpout_hop_tlsa_count(const smtpout_hop *hop);

/*
 * TLSA record `index` (from 0): its usage, selector and matching type,
 * and its association data in *pdata (*plen octets, owned by the hop).
 * Any output pointer may be NULL.  Returns 0, or
 * SMTPOUT_ERR_INVALID_ARGUMENT (NULL hop, index out of range).
 */
SMTPOUT_EXTERN int smtpout_hop_tlsa(const smtpout_hop *hop, size_t index,
                                    int *usage, int *selector, int *mtype,
                                    const uint8_t **pdata, size_t *plen);

/* The number of reference identifiers for DANE-TA(2) records (RFC 7672
 * section 3.2.2: the TLSA base domain, the MX host name, the recipient
 * domain and its CNAME-expanded name, without repeats; at most 4); 0
 * without DANE. */
SMTPOUT_EXTERN size_t smtpout_hop_dane_name_count(const smtpout_hop *hop);

/* Reference identifier `index` (from 0): A-labels, no trailing dot.
 * NULL when out of range.  Owned by the hop. */
SMTPOUT_EXTERN const char *smtpout_hop_dane_name(const smtpout_hop *hop,
                                                 size_t index);

/*
 * A human-readable, multi-line explanation of the hop: the MX host and
 * the DNSSEC state of its records, the address, which rule decided dane
 * (and starttls, allow-invalid-certs), what the TLSA lookup found, and
 * the TLS requirement that follows, with the rule of precedence that
 * decided it.  For smtpout-policy --resolve and logs.  Owned by the hop.
 */
SMTPOUT_EXTERN const char *smtpout_hop_explain(const smtpout_hop *hop);

/* How a hop went, for smtpout_route_hop_done(). */
enum smtpout_hop_outcome {
  /* Every recipient got its final result from this server (delivered,
   * bounced, or deferred by a reply to its own command): the route is
   * done. */
  SMTPOUT_HOP_DONE = 0,
  /* No connection (refused, unreachable, timed out): next address. */
  SMTPOUT_HOP_CONNECT_FAILED = 1,
  /* Connected, but the server did not complete the SMTP handshake: a
   * 421 or 5xx greeting, EHLO and HELO refused, the connection lost or
   * timed out before the mail transaction (as Postfix's
   * smtp_skip_5xx_greeting): next address. */
  SMTPOUT_HOP_HOST_FAILED = 2,
  /* The TLS the hop requires could not be had: STARTTLS not offered or
   * refused, the handshake failed, the certificate did not match the
   * TLSA records or did not verify: next address. */
  SMTPOUT_HOP_TLS_FAILED = 3,
  /* The session got through the handshake, then ended with recipients
   * left without a final reply (a 421, a lost connection, a timeout):
   * next address; counts toward mx-session-limit. */
  SMTPOUT_HOP_SESSION_FAILED = 4
};

/* Returns "done", "connect-failed", "host-failed", "tls-failed" or
 * "session-failed"; NULL for any other value. */
SMTPOUT_EXTERN const char *smtpout_hop_outcome_name(int outcome);

/*
 * Reports how the hop handed out last went (enum smtpout_hop_outcome).
 * `detail` (may be NULL) says what happened in words, for the final
 * verdict's text (the server's reply, "connection refused"); it is
 * copied, at most 512 bytes.  The hop is invalid afterwards.  A hop may
 * be connected more than once before its outcome is reported (the
 * plaintext fallback of docs/policy.md reconnects to the same address),
 * never for a hop whose TLS requirement is not LOCAL.
 *
 * Any outcome but SMTPOUT_HOP_DONE moves to the next address of the MX
 * host, then to the next MX host, within mx-address-limit and
 * mx-session-limit; when nothing is left the route is done with a
 * verdict.  Returns 0.  Errors: SMTPOUT_ERR_INVALID_ARGUMENT (NULL route,
 * an unknown outcome, a hop that is not the one out).
 */
SMTPOUT_EXTERN int smtpout_route_hop_done(smtpout_route *route,
                                          const smtpout_hop *hop,
                                          int outcome, const char *detail,
                                          uint64_t now);

/* ------------------------------------------------------------------ */
/* The verdict, and what the route found                                */

/*
 * Once the route is done, the verdict for the recipients still
 * undelivered: SMTPOUT_STATUS_BOUNCED (the domain does not exist,
 * accepts no mail, or has no usable MX host) or SMTPOUT_STATUS_DEFERRED
 * (anything that may pass: DNS failures, hosts that failed, DANE that
 * could not be satisfied).  0 while the route is not done, and when its
 * last hop was SMTPOUT_HOP_DONE.
 */
SMTPOUT_EXTERN int smtpout_route_status(const smtpout_route *route);

/* The RFC 3463 code of the verdict: "5.1.10" null MX (RFC 7505), "5.1.2"
 * no such domain, "5.4.4" no usable MX host, "4.4.3" DNS failure, "4.4.1"
 * no connection, "4.4.2" host failures, "4.7.5" TLS or DANE; "" without a
 * verdict.  Never NULL. */
SMTPOUT_EXTERN const char *smtpout_route_enhanced(const smtpout_route *route);

/* The verdict in words (the domain, what failed last, the limit that
 * ended the route); "" without a verdict.  Never NULL. */
SMTPOUT_EXTERN const char *smtpout_route_text(const smtpout_route *route);

/* The recipient domain as the route uses it: lower-case A-labels, no
 * trailing dot; for an address literal, the address in canonical form
 * ("192.0.2.1", "2001:db8::1").  Owned by the route. */
SMTPOUT_EXTERN const char *smtpout_route_domain(const smtpout_route *route);

/* The DNSSEC verdict of the MX answer (enum smtpout_dnssec), or -1 while
 * there is none (not answered yet, or an address literal). */
SMTPOUT_EXTERN int smtpout_route_dnssec(const smtpout_route *route);

/* 1 when the domain has no MX records and is its own MX host (RFC 5321
 * section 5.1, implicit MX), else 0. */
SMTPOUT_EXTERN int smtpout_route_implicit_mx(const smtpout_route *route);

/* The number of MX hosts the route will consider, in the order it tries
 * them (preference, equal preferences shuffled); 0 before the MX answer,
 * and for a null MX. */
SMTPOUT_EXTERN size_t smtpout_route_mx_count(const smtpout_route *route);

/* MX host `index` (from 0): its name (as smtpout_hop_mx()) and its
 * preference; NULL and -1 when out of range. */
SMTPOUT_EXTERN const char *smtpout_route_mx_name(const smtpout_route *route,
                                                 size_t index);
SMTPOUT_EXTERN int smtpout_route_mx_preference(const smtpout_route *route,
                                               size_t index);

#ifdef __cplusplus
}
#endif

#endif /* SMTPOUT_ROUTE_H */
