/*
 * resolve_int.h — blocking DNS resolvers with DNSSEC verdicts, for the
 * blocking driver and the tools.
 *
 * Internal to the library.  The route (sans-I/O) never resolves: its host
 * answers each question with the raw response and a DNSSEC verdict.  These
 * resolvers are that host for the blocking driver and the CLI:
 *
 *   trust-ad  (resolve_stub.c) queries the configured nameservers itself,
 *             over UDP, over TCP when the answer is truncated, and takes
 *             the AD bit as the verdict only when every nameserver is a
 *             loopback address: the path from a validating resolver on
 *             the same machine cannot be forged, a network path can
 *             (RFC 7672 2.1.3 and wave2-design 1.3, as Postfix).  A
 *             SERVFAIL is "bogus" when the resolver says so with an RFC
 *             8914 extended error, or when the same query with checking
 *             disabled (CD) succeeds; otherwise "indeterminate".
 *   off       the same queries, every verdict insecure or indeterminate:
 *             DANE is unavailable.
 *   validate  (resolve_unbound.c, with -Dunbound) libunbound validates in
 *             the process against a trust-anchor file, forwarding to the
 *             configured nameservers (or /etc/resolv.conf's).
 *
 * Why its own sockets and not glibc's res_nquery with RES_TRUSTAD:
 * res_nquery returns -1 for NXDOMAIN and NODATA, so the AD bit of a
 * negative answer is lost (a secure "no TLSA" and a lookup failure look
 * alike), and res_nsend hides the SERVFAIL packet that carries the
 * extended error telling bogus from a plain failure; a nameserver port
 * other than 53 or an IPv6 server needs writes into struct __res_state's
 * private fields; and the trust decision (which server answered) belongs
 * in code we can read.  What it takes is small: a query from dns.c, a
 * connected UDP socket per try (the kernel drops datagrams from other
 * addresses; the id, the question and the source port — random from the
 * kernel — must match), TCP with a two-octet length prefix.
 *
 * A resolver object is used by one thread at a time; distinct objects are
 * independent.  Queries read the monotonic clock (this is the blocking
 * side of the library, like deliver.c).
 */
#ifndef SMTPOUT_RESOLVE_INT_H
#define SMTPOUT_RESOLVE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "errors_int.h"

/* The verdicts a host hands the route with every answer (wave2-design
 * 1.6, RFC 4035 4.3). */
enum dnssec_verdict {
  DNSSEC_INSECURE = 0,
  DNSSEC_SECURE = 1,
  DNSSEC_BOGUS = 2,
  DNSSEC_INDETERMINATE = 3, /* no answer, or a failure nobody explained */
};

/* "insecure", "secure", "bogus", "indeterminate"; NULL otherwise. */
const char *dnssec_verdict_name(int verdict);

enum resolver_mode {
  RESOLVER_TRUST_AD = 0,
  RESOLVER_VALIDATE = 1,
  RESOLVER_OFF = 2,
};

/* The largest DNS message: query buffers must hold this much. */
#define RESOLVER_MAX_ANSWER 65535
/* Nameservers kept from the configuration or resolv.conf. */
#define RESOLVER_MAX_SERVERS 8
/* Default bound on one query, every server and retry included. */
#define RESOLVER_DEFAULT_TIMEOUT_MS 10000

struct resolver_options {
  int mode;                      /* enum resolver_mode */
  /* "127.0.0.1:3535 [::1]:53 192.0.2.1" (spaces or commas), numeric
   * addresses only; NULL: the nameserver lines of resolv_conf. */
  const char *nameservers;
  const char *resolv_conf;       /* NULL: /etc/resolv.conf */
  const char *trust_anchor_file; /* validate: DS or DNSKEY records;
                                    NULL: /usr/share/dns/root.key */
  const char *unbound_config;    /* validate: an unbound.conf to read
                                    first (e.g. local-zone settings) */
  uint32_t timeout_ms;           /* 0: RESOLVER_DEFAULT_TIMEOUT_MS */
  int trust_remote_ad;           /* trust-ad: also trust AD from
                                    non-loopback servers (a secured
                                    path the operator vouches for) */
};

struct resolver;

/*
 * Creates a resolver.  Returns 0; SMTPOUT_ERR_CONFIG with a message in
 * `err` (a bad nameserver, an unreadable trust anchor, "validate" in a
 * build without libunbound); SMTPOUT_ERR_NOMEM.
 */
int resolver_new(struct resolver **out, const struct resolver_options *opt,
                 char *err, size_t errlen);
void resolver_free(struct resolver *r);

/* 1 when the verdicts mean something: validate, or trust-ad with every
 * nameserver trusted.  0: every answer is insecure (DANE unavailable). */
int resolver_dnssec_capable(const struct resolver *r);

/* "trust-ad", "validate", "off". */
const char *resolver_mode_name(int mode);

/*
 * Asks (qname, qtype, class IN).  On 0, `buf` (at least
 * RESOLVER_MAX_ANSWER octets) holds the response, *len its length, and
 * *verdict the DNSSEC verdict; the response may be any rcode (the caller
 * reads NXDOMAIN, SERVFAIL ... from it).  Without a response:
 * ERR_TIMEOUT (no server answered in time) or ERR_RESOLVE
 * (no server reachable, every answer malformed), with *verdict
 * DNSSEC_INDETERMINATE.  SMTPOUT_ERR_BAD_NAME for a qname that is not a
 * domain name, SMTPOUT_ERR_INVALID_ARGUMENT.  `why` (may be NULL)
 * receives a short English explanation of a bogus or indeterminate
 * verdict, or "".
 */
int resolver_query(struct resolver *r, const char *qname, uint16_t qtype,
                   uint8_t *buf, size_t buflen, size_t *len, int *verdict,
                   char *why, size_t whylen);

/* ---- between resolve.c and its backends ---- */

struct resolver_server {
  struct sockaddr_storage addr;
  socklen_t addrlen;
  int loopback;
  char text[64];    /* "127.0.0.1:3535", "[::1]:53" */
};

struct resolver {
  int mode;
  uint32_t timeout_ms;
  int trust_ad;     /* AD decides the verdict (trust-ad, all trusted) */
  size_t nservers;
  struct resolver_server servers[RESOLVER_MAX_SERVERS];
  void *unbound;    /* struct ub_ctx, validate mode */
};

/* Parses "HOST[:PORT] ..." into r->servers; 0 or -1 with `err`. */
int resolver_parse_servers(struct resolver *r, const char *list,
                           int allow_port, char *err, size_t errlen);
/* Reads the nameserver lines of a resolv.conf into r->servers (port 53);
 * none: 127.0.0.1, as glibc.  0 or -1 with `err`. */
int resolver_read_resolv_conf(struct resolver *r, const char *path,
                              char *err, size_t errlen);

int resolver_stub_query(struct resolver *r, const char *qname,
                        uint16_t qtype, uint8_t *buf, size_t buflen,
                        size_t *len, int *verdict, char *why, size_t whylen);

/* resolve_unbound.c; without libunbound, new fails with a message. */
int resolver_unbound_new(struct resolver *r,
                         const struct resolver_options *opt, char *err,
                         size_t errlen);
void resolver_unbound_free(struct resolver *r);
int resolver_unbound_query(struct resolver *r, const char *qname,
                           uint16_t qtype, uint8_t *buf, size_t buflen,
                           size_t *len, int *verdict, char *why,
                           size_t whylen);

#endif
