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
 * and Python needs no C callbacks.  MTA-STS (RFC 8461) asks for cache
 * entries and HTTPS fetches through the same pull, as more request kinds
 * (docs/mta-sts.md); TLS-RPT events (RFC 8460) are pulled the same way
 * (smtpout_route_next_event()).
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
/* The message asks for REQUIRETLS (RFC 8689): a hop qualifies only when
 * DANE or an MTA-STS enforce policy authenticates it, its MAIL FROM must
 * carry REQUIRETLS, and after the last MX the route bounces (5.7.30 or
 * 5.7.10) instead of deferring.  Nothing relaxes it. */
#define SMTPOUT_ROUTE_REQUIRETLS 0x2u
/* The message has a `TLS-Required: No` header field (RFC 8689 section
 * 5): DANE, MTA-STS and local dane/mta-sts = require are ignored, TLS is
 * attempted but neither required nor verified.  Ignored together with
 * SMTPOUT_ROUTE_REQUIRETLS. */
#define SMTPOUT_ROUTE_TLS_REQUIRED_NO 0x4u

/*
 * Creates a route to the recipient domain `domain`: a domain name in any
 * case, U-labels allowed (converted to A-labels with IDNA2008), with or
 * without a trailing dot; or an address literal ("[192.0.2.1]",
 * "[IPv6:2001:db8::1]"), which is one hop to that address with no DNS
 * (RFC 5321 section 5.1).  `config` may be NULL (built-in defaults); the
 * route takes its own reference and reads from it smtp-port, the MX
 * limits, address-preference, the DNS timeout, [queue.outbound.mta-sts]
 * and the knobs of each MX host (docs/configuration.md).  `flags`: 0 or
 * SMTPOUT_ROUTE_*.  `now` is the host's monotonic time in milliseconds;
 * `wall` its wall-clock time in milliseconds since the Unix epoch, which
 * ages MTA-STS cache entries (they outlive processes) and dates TLS-RPT
 * events.
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
                                     uint64_t now, uint64_t wall);

/*
 * Creates a route through the relay `label` of `config` ([relay "label"];
 * NULL: the one [queue.outbound] relay names): one fixed host, no MX
 * lookup (docs/relay.md).  A host name is resolved (A and AAAA) through
 * the route; DANE applies to it when its addresses and TLSA records are
 * DNSSEC-secure and its dane knob allows (RFC 7672 section 2.2.2);
 * MTA-STS only when the relay sets mta-sts, with the host's parent domain
 * as policy domain (RFC 8461 section 3.4).  Its hops carry what the
 * session needs: port, implicit TLS, AUTH, client certificate.  `flags`,
 * `now` and `wall` as for smtpout_route_new().
 *
 * Returns 0 and the route in *proute.  Errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT (NULL `proute` or `config`, an unknown
 * flag, no such relay), SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_route_new_relay(smtpout_route **proute,
                                           smtpout_config *config,
                                           const char *label, uint32_t flags,
                                           uint64_t now, uint64_t wall);

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

/* What a request asks for. */
enum smtpout_request_kind {
  /* A DNS question: smtpout_request_qname(), _qtype(); answer with
   * smtpout_route_dns_answer() or smtpout_route_dns_failed(). */
  SMTPOUT_REQUEST_DNS = 1,
  /* An HTTPS GET of smtpout_request_url() (an MTA-STS policy): connect to
   * one of smtpout_request_address() on smtpout_request_port(), verify
   * the server's certificate by PKIX against smtpout_request_host()
   * (also the SNI and the Host header), follow no redirect, read at most
   * smtpout_request_max_bytes(); answer with
   * smtpout_route_https_answer().  The fetcher never resolves the name
   * itself: the route did, through the host's resolver. */
  SMTPOUT_REQUEST_HTTPS = 2,
  /* Read smtpout_request_cache_key() from the host's store (a file,
   * Redis, SQL: shared by every process that sends); answer with
   * smtpout_route_cache_answer(), a length of 0 for a miss. */
  SMTPOUT_REQUEST_CACHE_GET = 3,
  /* Store smtpout_request_cache_value() under smtpout_request_cache_key()
   * (replacing what is there), evictable after
   * smtpout_request_cache_expires().  Wants no answer: the request stays
   * valid until the next smtpout_route_next_request() or
   * smtpout_route_free(). */
  SMTPOUT_REQUEST_CACHE_PUT = 4
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

/* The record type of a DNS request: 1 (A), 15 (MX), 16 (TXT), 28 (AAAA)
 * or 52 (TLSA), class IN; 0 for other kinds. */
SMTPOUT_EXTERN int smtpout_request_qtype(const smtpout_request *request);

/* How long the route waits for the answer, in milliseconds
 * ([queue.outbound.dns] timeout; for an HTTPS fetch [queue.outbound.mta-sts]
 * fetch-timeout): a host's resolver or fetcher should give up before. */
SMTPOUT_EXTERN uint32_t
smtpout_request_timeout_ms(const smtpout_request *request);

/* An HTTPS request's URL ("https://mta-sts.example.org/.well-known/
 * mta-sts.txt"); NULL for other kinds.  Owned by the request. */
SMTPOUT_EXTERN const char *smtpout_request_url(const smtpout_request *request);

/* An HTTPS request's host name ("mta-sts.example.org"): the name the
 * certificate must carry, the SNI and the Host header; NULL for other
 * kinds.  Owned by the request. */
SMTPOUT_EXTERN const char *
smtpout_request_host(const smtpout_request *request);

/* An HTTPS request's port (443); 0 for other kinds. */
SMTPOUT_EXTERN uint16_t smtpout_request_port(const smtpout_request *request);

/* The number of addresses an HTTPS request may connect to (at least 1,
 * at most 8): those of smtpout_request_host(), as the route resolved
 * them; 0 for other kinds. */
SMTPOUT_EXTERN size_t
smtpout_request_address_count(const smtpout_request *request);

/* Address `index` (from 0) of an HTTPS request, as text ("192.0.2.1",
 * "2001:db8::1"); NULL out of range.  Owned by the request. */
SMTPOUT_EXTERN const char *
smtpout_request_address(const smtpout_request *request, size_t index);

/* The largest body an HTTPS request accepts, in bytes
 * ([queue.outbound.mta-sts] max-size, at most 65536); a fetcher stops
 * reading past it and answers SMTPOUT_FETCH_TOO_LARGE.  0 for other
 * kinds. */
SMTPOUT_EXTERN uint32_t
smtpout_request_max_bytes(const smtpout_request *request);

/* A cache request's key ("sts:example.org"); NULL for other kinds.
 * Owned by the request. */
SMTPOUT_EXTERN const char *
smtpout_request_cache_key(const smtpout_request *request);

/* A CACHE_PUT request's value (*plen bytes, opaque, not NUL-terminated;
 * at most 66048); NULL (and 0) for other kinds.  Owned by the request. */
SMTPOUT_EXTERN const uint8_t *
smtpout_request_cache_value(const smtpout_request *request, size_t *plen);

/* A CACHE_PUT request's expiry: wall-clock milliseconds since the epoch
 * after which the host may evict the value; 0 for other kinds. */
SMTPOUT_EXTERN uint64_t
smtpout_request_cache_expires(const smtpout_request *request);

/* How an HTTPS fetch went, for smtpout_route_https_answer(). */
enum smtpout_fetch_outcome {
  /* An HTTP response arrived (any status). */
  SMTPOUT_FETCH_OK = 0,
  /* No connection to any address. */
  SMTPOUT_FETCH_CONNECT_FAILED = 1,
  /* The server's certificate did not verify by PKIX for the host name. */
  SMTPOUT_FETCH_TLS_NOT_VERIFIED = 2,
  SMTPOUT_FETCH_TIMEOUT = 3,
  /* The body went past smtpout_request_max_bytes(). */
  SMTPOUT_FETCH_TOO_LARGE = 4,
  /* Anything else: a handshake or protocol failure. */
  SMTPOUT_FETCH_FAILED = 5
};

/*
 * The answer to HTTPS request `id`: `outcome` (enum
 * smtpout_fetch_outcome) and, for SMTPOUT_FETCH_OK, the HTTP status, the
 * Content-Type header (NULL: none) and the body (`len` bytes, read during
 * the call).  The route itself requires status 200, text/plain and at
 * most smtpout_request_max_bytes() (RFC 8461 section 3.3), and parses the
 * policy strictly; a failure is reported as sts-policy-fetch-error,
 * sts-policy-invalid or sts-webpki-invalid (RFC 8460) and keeps the
 * cached policy, if any.  Returns 0.  Errors: SMTPOUT_ERR_INVALID_ARGUMENT
 * (NULL route, NULL body with a non-zero length, an unknown outcome),
 * SMTPOUT_ERR_INVALID_STATE (no HTTPS request `id` is waiting).
 */
SMTPOUT_EXTERN int smtpout_route_https_answer(smtpout_route *route, int id,
                                              int outcome, int http_status,
                                              const char *content_type,
                                              const uint8_t *body, size_t len,
                                              uint64_t now);

/*
 * The answer to CACHE_GET request `id`: the value stored under its key
 * (`len` bytes, read during the call), or `len` 0 for a miss.  A value
 * that is corrupt, of another version, or for another policy counts as a
 * miss.  Returns 0.  Errors: SMTPOUT_ERR_INVALID_ARGUMENT (NULL route,
 * NULL value with a non-zero length), SMTPOUT_ERR_INVALID_STATE (no
 * CACHE_GET request `id` is waiting).
 */
SMTPOUT_EXTERN int smtpout_route_cache_answer(smtpout_route *route, int id,
                                              const uint8_t *value,
                                              size_t len, uint64_t now);

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
  SMTPOUT_TLS_REQUIREMENT_ENCRYPT = 2,
  /* MTA-STS enforce (RFC 8461 sections 4.2, 5 and 7.2): STARTTLS is
   * mandatory, TLS 1.2 or later, the certificate must verify by PKIX
   * for the MX host name (smtpout_hop_mx(), also the SNI); no plaintext
   * fallback, allow-invalid-certs and starttls = disable do not apply. */
  SMTPOUT_TLS_REQUIREMENT_PKIX = 3,
  /* TLS-Required: No (RFC 8689 section 5): STARTTLS when offered (unless
   * starttls = disable), any certificate, the plaintext fallback allowed;
   * smtpout_hop_starttls() and _allow_invalid_certs() say it. */
  SMTPOUT_TLS_REQUIREMENT_RELAXED = 4
};

/* Returns "local", "dane", "encrypt", "pkix" or "relaxed"; NULL for any
 * other value. */
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

/* Which mechanism decided a hop's TLS requirement: the rank of the
 * precedence table of docs/routing.md that won. */
enum smtpout_tls_source {
  /* Rank 6: the local starttls and allow-invalid-certs (for a relay with
   * AUTH credentials, starttls = require). */
  SMTPOUT_TLS_SOURCE_LOCAL = 0,
  /* Rank 1: REQUIRETLS; the requirement says which mechanism
   * authenticates the hop (DANE or PKIX). */
  SMTPOUT_TLS_SOURCE_REQUIRETLS = 1,
  /* Rank 2: DANE (usable TLSA: DANE; unusable: ENCRYPT). */
  SMTPOUT_TLS_SOURCE_DANE = 2,
  /* Rank 3: an MTA-STS policy in enforce mode. */
  SMTPOUT_TLS_SOURCE_MTA_STS = 3,
  /* Rank 5: TLS-Required: No relaxed ranks 2 to 4 (and 6). */
  SMTPOUT_TLS_SOURCE_TLS_REQUIRED_NO = 5
};

/* Returns "local", "requiretls", "dane", "mta-sts" or "tls-required-no";
 * NULL for any other value. */
SMTPOUT_EXTERN const char *smtpout_tls_source_name(int source);

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

/* enum smtpout_tls_source: which rank decided the requirement. */
SMTPOUT_EXTERN int smtpout_hop_tls_source(const smtpout_hop *hop);

/*
 * The starttls mode (enum smtpout_starttls) the session must apply to
 * this hop: REQUIRE under DANE, ENCRYPT and PKIX, and for a relay with
 * AUTH credentials; the local knob capped at OPTIONAL under RELAXED; the
 * local knob (or the relay's) otherwise.
 */
SMTPOUT_EXTERN int smtpout_hop_starttls(const smtpout_hop *hop);

/* 1 when an unverified certificate is acceptable on this hop: ENCRYPT
 * and RELAXED, or allow-invalid-certs under LOCAL; 0 otherwise (never
 * under DANE or PKIX, whatever the knob says). */
SMTPOUT_EXTERN int smtpout_hop_allow_invalid_certs(const smtpout_hop *hop);

/* 1 when the driver may reconnect once without STARTTLS after a failed
 * handshake (docs/policy.md): starttls OPTIONAL under LOCAL or RELAXED,
 * no implicit TLS and no AUTH credentials; else 0. */
SMTPOUT_EXTERN int smtpout_hop_plaintext_fallback(const smtpout_hop *hop);

/* 1 when the MAIL FROM of this hop must carry REQUIRETLS (RFC 8689
 * section 4.2.1), and the post-TLS EHLO must offer it: otherwise the
 * session sends nothing and reports SMTPOUT_HOP_REQUIRETLS_NOT_OFFERED. */
SMTPOUT_EXTERN int smtpout_hop_requiretls(const smtpout_hop *hop);

/* The MTA-STS mode (enum smtpout_sts_mode) of the policy that applies to
 * this hop; 0 (none) when there is none, it is disabled for the hop, or
 * TLS-Required: No set it aside. */
SMTPOUT_EXTERN int smtpout_hop_sts_mode(const smtpout_hop *hop);

/* 1 when the hop's MX host matches an `mx` pattern of the policy that
 * applies, 0 when it does not (testing mode only: enforce never hands
 * such a host out), -1 without a policy. */
SMTPOUT_EXTERN int smtpout_hop_sts_mx_match(const smtpout_hop *hop);

/* The relay's label for a hop of smtpout_route_new_relay(); NULL for an
 * MX hop.  Owned by the hop. */
SMTPOUT_EXTERN const char *smtpout_hop_relay(const smtpout_hop *hop);

/* 1 when the connection starts with TLS (RFC 8314 implicit TLS, port
 * 465): the handshake comes before the greeting, no STARTTLS. */
SMTPOUT_EXTERN int smtpout_hop_implicit_tls(const smtpout_hop *hop);

/* The SASL mechanisms the relay allows, upper case, space-separated
 * ("SCRAM-SHA-256 PLAIN"), or NULL: any the session supports.  NULL
 * without AUTH.  Owned by the hop. */
SMTPOUT_EXTERN const char *
smtpout_hop_auth_mechanisms(const smtpout_hop *hop);

/* The AUTH username, or NULL when the hop authenticates nowhere.  Owned
 * by the hop. */
SMTPOUT_EXTERN const char *smtpout_hop_auth_username(const smtpout_hop *hop);

/* 1 when AUTH may go over TLS whose certificate did not verify (auth-tls
 * = any), 0 when it needs a verified one (the default). */
SMTPOUT_EXTERN int smtpout_hop_auth_tls_any(const smtpout_hop *hop);

/*
 * Reads the AUTH secret from the relay's auth-password-file into `buf`
 * (`len` bytes; NUL-terminated): the file's first line, read now and kept
 * nowhere else, so that it never appears in an explanation, a trace or
 * JSON.  The file is checked again when opened (a regular file closed to
 * group and others).  Wipe `buf` after use.  Returns the secret's length;
 * SMTPOUT_ERR_INVALID_ARGUMENT (NULL argument, a hop without AUTH, `buf`
 * too small), SMTPOUT_ERR_IO (unreadable, empty, or the permissions
 * changed since the configuration was loaded).
 */
SMTPOUT_EXTERN int smtpout_hop_auth_secret(const smtpout_hop *hop, char *buf,
                                           size_t len);

/* The client certificate and key files (PEM) the hop presents when the
 * server asks, or NULL.  Owned by the hop. */
SMTPOUT_EXTERN const char *smtpout_hop_client_cert(const smtpout_hop *hop);
SMTPOUT_EXTERN const char *smtpout_hop_client_key(const smtpout_hop *hop);

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
  SMTPOUT_HOP_SESSION_FAILED = 4,
  /* A REQUIRETLS hop (smtpout_hop_requiretls()) whose authenticated TLS
   * session did not offer REQUIRETLS after STARTTLS: nothing was sent;
   * next address; after the last one the route bounces 5.7.30. */
  SMTPOUT_HOP_REQUIRETLS_NOT_OFFERED = 5
};

/* Returns "done", "connect-failed", "host-failed", "tls-failed",
 * "session-failed" or "requiretls-not-offered"; NULL for any other
 * value. */
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

/*
 * Records the TLS-RPT event (RFC 8460) of one connection to the hop out,
 * before its smtpout_route_hop_done(): the policy (tlsa with the TLSA
 * base domain as policy domain, as Postfix; sts with the policy's lines
 * and mx patterns; or no-policy-found), the MX host and address come
 * from the hop; `result_type` is the RFC 8460 result type of a failure
 * ("starttls-not-supported", "certificate-host-mismatch", ...; what
 * smtpout_tls_info_tlsrpt_result() says), or NULL for a success;
 * `sending_ip`, `receiving_helo` and `additional` may be NULL.  A hop to
 * an MX host an MTA-STS testing policy does not list is a failure
 * (validation-failure) whatever the connection did.  The event is then
 * pulled with smtpout_route_next_event().  A route made with
 * SMTPOUT_ROUTE_TLS_REQUIRED_NO (without REQUIRETLS) records none: that
 * is how a TLS-RPT report goes out, and a report's own delivery is not
 * counted in the next report (RFC 8460 3).  Returns 0.  Errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT (NULL route, a hop that is not the one
 * out, an unknown result type, a `sending_ip` that is not an address),
 * SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_route_hop_tlsrpt(smtpout_route *route,
                                            const smtpout_hop *hop,
                                            const char *result_type,
                                            const char *sending_ip,
                                            const char *receiving_helo,
                                            const char *additional,
                                            uint64_t now);

/* ------------------------------------------------------------------ */
/* TLS-RPT events                                                       */

/*
 * Takes the next TLS-RPT event line: one JSON object (docs/tlsrpt.md,
 * what smtpout_tlsrpt_report_add_event_json() reads), NUL-terminated,
 * without a line end, in *pjson (*plen bytes; owned by the route, valid
 * until the next call that changes the route: store it at once).  Events come from route failures before any
 * connection (an MTA-STS policy that could not be fetched or parsed, a
 * TLSA or DNSSEC failure, an MX host an enforce policy does not list,
 * dane = require unmet) and from smtpout_route_hop_tlsrpt().  Returns 1,
 * or 0 (and NULL) when there is none left; SMTPOUT_ERR_INVALID_ARGUMENT
 * for a NULL argument.
 */
SMTPOUT_EXTERN int smtpout_route_next_event(smtpout_route *route,
                                            const char **pjson,
                                            size_t *plen);

/* Events not kept because the route's bound (256 events, 1 MiB) was
 * reached. */
SMTPOUT_EXTERN uint32_t
smtpout_route_events_dropped(const smtpout_route *route);

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
 * no connection, "4.4.2" host failures, "4.7.5" TLS, DANE or MTA-STS,
 * "4.7.0" an MX host an MTA-STS enforce policy does not list; with
 * REQUIRETLS, "5.7.30" (an authenticated MX did not offer REQUIRETLS)
 * and "5.7.10" (no MX could be authenticated by DANE or MTA-STS), which
 * bounce; "" without a verdict.  Never NULL. */
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

/* The MTA-STS mode (enum smtpout_sts_mode) of the policy in force for
 * the route's policy domain once discovery is done (0 before, and
 * without a policy). */
SMTPOUT_EXTERN int smtpout_route_sts_mode(const smtpout_route *route);

/* The id of that policy (its TXT record's id when fetched), or "".
 * Never NULL. */
SMTPOUT_EXTERN const char *smtpout_route_sts_id(const smtpout_route *route);

/* What MTA-STS discovery did and why ("cached policy id X, the id the
 * _mta-sts record still names"); "" before.  Never NULL. */
SMTPOUT_EXTERN const char *
smtpout_route_sts_explain(const smtpout_route *route);

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
