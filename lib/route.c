/*
 * route.c — next hops for one recipient domain: see <smtpout/route.h>
 * and docs/routing.md.
 *
 * The model, in Postfix's smtp_connect.c terms but without blocking: look
 * up the MX RRset of the domain (RFC 5321 5.1; a null MX ends it, RFC
 * 7505; NODATA makes the domain its own MX; a failure defers and never
 * falls back to the implicit MX), order the hosts by preference with
 * equal ones shuffled, then take the hosts one at a time: look up its A
 * and AAAA records together, decide what DANE asks of it (RFC 7672 2.2:
 * a TLSA lookup only when the MX RRset and the host's addresses are
 * secure), and hand out its addresses one by one, both families
 * interleaved, until a hop is done or the limits say stop.  A host is
 * resolved only when the one before it is used up: a domain whose first
 * MX answers costs one MX, two address and at most two TLSA questions.
 *
 * Every answer is parsed while the host hands it over (the packet is
 * not kept) into the route's own fixed-size records; nothing grows with
 * what a resolver sends but the copy of one TLSA RRset, which is bounded
 * by the packet it came in.  Each event has one handler (on_mx(),
 * on_addresses(), on_tlsa(), hop_done), which decides the state that
 * follows from what it learnt; advance() then moves on from that state
 * (next host, next address, the limits, the verdict) until the route
 * needs something from outside.
 *
 * MTA-STS (RFC 8461, docs/mta-sts.md) runs beside the MX lookup: the
 * cache entry and the `_mta-sts` TXT record are asked for with the MX
 * record, lib/sts.c's discovery decides whether to fetch, the policy
 * host's addresses are resolved here and handed to the fetcher, and no
 * MX host is taken before the policy in force is known, so that an
 * enforce policy filters hosts before their addresses are even looked up.
 * Each host's TLS requirement then follows the precedence of
 * docs/routing.md (decide_requirement()); relays (smtpout_route_new_relay)
 * are the same machine started at the host stage.
 */
#include <arpa/inet.h>
#include <gnutls/crypto.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf_int.h"
#include "config_int.h"
#include "dane_int.h"
#include "dns_int.h"
#include "names_int.h"
#include "resolve_int.h"
#include "route_int.h"
#include "sts_int.h"
#include "tls_int.h"
#include "tlsrpt_int.h"
#include "smtpout/session.h"

/* Requests out at once: MX, the MTA-STS cache entry and TXT record, the
 * A and AAAA of one host, those of the policy host, a fetch, a put. */
#define ROUTE_MAX_REQUESTS 10
/* Addresses of the policy host handed to the fetcher. */
#define ROUTE_MAX_FETCH_ADDRS 8
/* TXT records of _mta-sts read (more are ignored; RFC 8461 3.1 wants
 * exactly one that starts with v=STSv1). */
#define ROUTE_MAX_TXT 16
/* TLS-RPT events kept per route, and their bytes. */
#define ROUTE_MAX_EVENTS 256
#define ROUTE_EVENTS_MAX_BYTES (1u << 20)
#define ROUTE_URL_MAX (NAME_MAX_LEN + 48)
/* Addresses kept per family per host; more are ignored (a host with
 * sixteen addresses of one family is already far past any limit). */
#define ROUTE_MAX_FAMILY_ADDRS 16
/* A TLSA question: "_65535._tcp." and a host name. */
#define ROUTE_QNAME_MAX (NAME_MAX_LEN + 16)
#define ROUTE_DETAIL_MAX 512
#define ROUTE_TEXT_MAX 1024
#define ROUTE_WHY_MAX 160

enum route_state {
  RS_MX,        /* the MX question is out */
  RS_NEXT_HOST, /* go on with the next MX host, or finish */
  RS_ADDRESSES, /* the A and AAAA questions of the host are out */
  RS_TLSA,      /* a TLSA question of the host is out */
  RS_HOPS,      /* hand out the host's addresses */
  RS_HOP_OUT,   /* a hop is out: waiting for its outcome */
  RS_DONE,
};

enum purpose {
  Q_MX, Q_A, Q_AAAA, Q_TLSA,             /* DNS, for the MX hosts */
  Q_STS_TXT, Q_STS_A, Q_STS_AAAA,        /* DNS, for MTA-STS */
  Q_STS_GET, Q_STS_FETCH, Q_STS_PUT      /* cache and HTTPS */
};
/* RQ_TAKEN: a CACHE_PUT handed to the host, which answers nothing; freed
 * at the next smtpout_route_next_request(). */
enum request_state { RQ_FREE, RQ_READY, RQ_PENDING, RQ_TAKEN };

struct smtpout_request {
  int id;
  int kind;
  int qtype;
  int purpose;
  int state;
  uint32_t timeout_ms;
  uint64_t deadline;
  struct dns_name wire; /* the question, to check answers against */
  char qname[ROUTE_QNAME_MAX];
  /* HTTPS */
  char url[ROUTE_URL_MAX];
  char host[NAME_MAX_LEN];
  char addrs[ROUTE_MAX_FETCH_ADDRS][INET6_ADDRSTRLEN];
  size_t naddrs;
  uint32_t max_bytes;
  /* cache */
  char key[NAME_MAX_LEN + 8];
  const uint8_t *value; /* CACHE_PUT: the discovery's entry */
  size_t value_len;
  uint64_t expires;
};

/* MTA-STS for the route's policy domain (docs/mta-sts.md). */
struct route_sts {
  bool active;            /* discovery runs */
  bool done;              /* the policy in force is known */
  char domain[NAME_MAX_LEN]; /* the policy domain */
  struct sts_discovery d;
  struct lookup_pair {
    bool done[2];
    struct dns_addr addrs[ROUTE_MAX_FETCH_ADDRS];
    size_t naddrs;
    char why[ROUTE_WHY_MAX];
  } fetch_host;
  const smtpout_sts_policy *policy; /* in force (owned by d), or NULL */
  char note[ROUTE_TEXT_MAX];  /* for explain: why there is no discovery */
};

/* One question's answer, as far as the route cares. */
struct lookup {
  bool done;
  bool failed;          /* no usable answer (why says why) */
  int verdict;          /* enum smtpout_dnssec */
  int outcome;          /* DNS_OUTCOME_*, when not failed */
  char why[ROUTE_WHY_MAX];
};

struct mx_host {
  char name[NAME_MAX_LEN];
  uint16_t preference;
};

/* The MX host being tried. */
struct host {
  size_t index;                 /* into route->mx */
  struct lookup addr[2];        /* [0] A, [1] AAAA */
  struct dns_addr addrs[2][ROUTE_MAX_FAMILY_ADDRS];
  size_t naddrs[2];
  char expanded[2][NAME_MAX_LEN]; /* CNAME target seen in each answer */
  bool addr_secure;
  struct dns_addr order[2 * ROUTE_MAX_FAMILY_ADDRS];
  size_t norder, next;          /* hop order, and the next to hand out */
  int dane_mode;                /* enum smtpout_dane */
  int dane_status;              /* enum smtpout_dane_status */
  int requirement;              /* enum smtpout_tls_requirement */
  int source;                   /* enum smtpout_tls_source */
  int sts_knob;                 /* enum smtpout_mta_sts for this host */
  int sts_mode;                 /* the policy's mode, as it applies */
  int sts_match;                /* 1, 0, -1 without a policy */
  int starttls, allow;          /* what the session applies */
  int local_starttls, local_allow; /* what the knobs say */
  char candidates[2][NAME_MAX_LEN]; /* TLSA base domains to try */
  size_t ncandidates, candidate;
  struct lookup tlsa;
  char tlsa_base[NAME_MAX_LEN];
  struct dns_tlsa records[DANE_MAX_RECORDS];
  size_t nrecords, nusable;
  uint8_t *record_data;         /* the records' data, one allocation */
  char names[DANE_MAX_NAMES][NAME_MAX_LEN];
  const char *name_ptrs[DANE_MAX_NAMES];
  size_t nnames;
  char dane_note[ROUTE_TEXT_MAX]; /* what the TLSA lookup found */
};

struct smtpout_hop {
  smtpout_route *route;
  char address[INET6_ADDRSTRLEN];
  int family;
  char *explain;
};

struct smtpout_route {
  smtpout_config *config;
  struct config_routing settings;
  struct config_sts sts_settings;
  const struct config_relay *relay; /* a relay route; owned by config */
  uint32_t flags;               /* SMTPOUT_ROUTE_* */
  bool relaxed;                 /* TLS-Required: No, without REQUIRETLS */
  uint64_t now0, wall0;         /* the clocks at creation: event times */
  uint64_t now;                 /* the host's time at the latest call */
  struct route_sts sts;
  /* REQUIRETLS outcomes, for the verdict (RFC 8689 4.2.1). */
  uint32_t rt_not_offered, rt_unauthenticated;
  char rt_text[ROUTE_TEXT_MAX];
  /* TLS-RPT event lines, each NUL-terminated. */
  struct buf events;
  uint32_t nevents, events_taken, events_dropped;
  size_t events_off;
  char domain[NAME_MAX_LEN];
  bool literal;                 /* an address literal: no DNS */
  bool dnssec_available;
  uint64_t rng;
  bool ordered;                 /* the MX hosts are sorted: seed fixed */
  int state;
  struct smtpout_request req[ROUTE_MAX_REQUESTS];
  int next_id;
  int mx_verdict;               /* -1 until the MX answer */
  bool implicit;
  char domain_expanded[NAME_MAX_LEN]; /* "" unless a CNAME */
  struct mx_host mx[DNS_MAX_MX];
  size_t nmx, next_mx;
  struct host host;
  struct smtpout_hop hop;
  uint32_t hops_out;            /* addresses handed out */
  uint32_t sessions;            /* SMTPOUT_HOP_SESSION_FAILED outcomes */
  /* The last failure, which becomes the verdict. */
  bool failed_any, temporary;
  char fail_enhanced[8];
  char fail_text[ROUTE_TEXT_MAX];
  /* The verdict. */
  int status;
  char enhanced[8];
  char text[ROUTE_TEXT_MAX];
  /* Scratch space for parsing: too big for a stack frame. */
  struct dns_msg msg;
  struct dns_mx_set mxset;
};

enum { EV_TLSA, EV_STS, EV_NONE };
static int event(smtpout_route *r, int kind, const char *policy_domain,
                 const char *mx, const char *ip, int type,
                 const char *sending_ip, const char *helo,
                 const char *additional, const char *reason_code);
static const char *report_domain(const smtpout_route *r);

/* The public fetch outcomes are lib/sts.c's. */
_Static_assert((int)SMTPOUT_FETCH_OK == (int)STS_FETCH_OK &&
                   (int)SMTPOUT_FETCH_CONNECT_FAILED ==
                       (int)STS_FETCH_CONNECT_FAILED &&
                   (int)SMTPOUT_FETCH_TLS_NOT_VERIFIED ==
                       (int)STS_FETCH_TLS_NOT_VERIFIED &&
                   (int)SMTPOUT_FETCH_TIMEOUT == (int)STS_FETCH_TIMEOUT &&
                   (int)SMTPOUT_FETCH_TOO_LARGE == (int)STS_FETCH_TOO_LARGE &&
                   (int)SMTPOUT_FETCH_FAILED == (int)STS_FETCH_FAILED,
               "fetch outcomes");

/* ---- names of enumerations ---- */

const char *smtpout_dnssec_name(int verdict)
{
  return dnssec_verdict_name(verdict);
}

const char *smtpout_tls_requirement_name(int requirement)
{
  switch (requirement) {
  case SMTPOUT_TLS_REQUIREMENT_LOCAL: return "local";
  case SMTPOUT_TLS_REQUIREMENT_DANE: return "dane";
  case SMTPOUT_TLS_REQUIREMENT_ENCRYPT: return "encrypt";
  case SMTPOUT_TLS_REQUIREMENT_PKIX: return "pkix";
  case SMTPOUT_TLS_REQUIREMENT_RELAXED: return "relaxed";
  default: return NULL;
  }
}

const char *smtpout_tls_source_name(int source)
{
  switch (source) {
  case SMTPOUT_TLS_SOURCE_LOCAL: return "local";
  case SMTPOUT_TLS_SOURCE_REQUIRETLS: return "requiretls";
  case SMTPOUT_TLS_SOURCE_DANE: return "dane";
  case SMTPOUT_TLS_SOURCE_MTA_STS: return "mta-sts";
  case SMTPOUT_TLS_SOURCE_TLS_REQUIRED_NO: return "tls-required-no";
  default: return NULL;
  }
}

const char *smtpout_dane_status_name(int status)
{
  switch (status) {
  case SMTPOUT_DANE_STATUS_DISABLED: return "disabled";
  case SMTPOUT_DANE_STATUS_UNAVAILABLE: return "unavailable";
  case SMTPOUT_DANE_STATUS_ADDRESS_LITERAL: return "address-literal";
  case SMTPOUT_DANE_STATUS_MX_INSECURE: return "mx-insecure";
  case SMTPOUT_DANE_STATUS_HOST_INSECURE: return "host-insecure";
  case SMTPOUT_DANE_STATUS_NO_TLSA: return "no-tlsa";
  case SMTPOUT_DANE_STATUS_TLSA_INSECURE: return "tlsa-insecure";
  case SMTPOUT_DANE_STATUS_USABLE: return "usable";
  case SMTPOUT_DANE_STATUS_UNUSABLE: return "unusable";
  default: return NULL;
  }
}

const char *smtpout_hop_outcome_name(int outcome)
{
  switch (outcome) {
  case SMTPOUT_HOP_DONE: return "done";
  case SMTPOUT_HOP_CONNECT_FAILED: return "connect-failed";
  case SMTPOUT_HOP_HOST_FAILED: return "host-failed";
  case SMTPOUT_HOP_TLS_FAILED: return "tls-failed";
  case SMTPOUT_HOP_SESSION_FAILED: return "session-failed";
  case SMTPOUT_HOP_REQUIRETLS_NOT_OFFERED: return "requiretls-not-offered";
  default: return NULL;
  }
}

/* ---- small helpers ---- */

static void fmt(char *out, size_t len, const char *f, ...)
    __attribute__((format(printf, 3, 4)));

static void fmt(char *out, size_t len, const char *f, ...)
{
  va_list ap;
  va_start(ap, f);
  vsnprintf(out, len, f, ap);
  va_end(ap);
}

/* Copies a NUL-terminated string, cut to fit. */
static void copy(char *out, size_t len, const char *s)
{
  size_t n = strlen(s);
  if (n >= len)
    n = len - 1;
  memcpy(out, s, n);
  out[n] = '\0';
}

/* splitmix64: a seedable generator for the shuffles (tests fix the seed;
 * nothing here needs to be unpredictable, only spread). */
static uint64_t rng_next(smtpout_route *r)
{
  uint64_t z = (r->rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static size_t rng_below(smtpout_route *r, size_t n)
{
  return (size_t)(rng_next(r) % n);
}

/* A DNS name read from a packet, as a host name the route can use:
 * lower-case A-labels, no trailing dot.  False for a name that is not a
 * host name (RFC 1123 2.1), or whose last label is all digits: no
 * top-level domain is, so it is an IPv4 address written where a name
 * belongs (an "MX 10 192.0.2.1" record, against RFC 1035 3.3.9). */
static bool host_name(const struct dns_name *n, char out[NAME_MAX_LEN])
{
  char text[DNS_NAME_TEXT_MAX];
  if (!dns_name_is_hostname(n) || dns_name_to_text(n, text, sizeof(text)) < 0)
    return false;
  const char *last = strrchr(text, '.');
  last = last ? last + 1 : text;
  if (strspn(last, "0123456789") == strlen(last))
    return false;
  return name_normalize(text, out, NAME_MAX_LEN) == 0;
}

/* ---- failures and the verdict ---- */

/* Records a failure: the last one becomes the verdict when nothing is
 * left.  `permanent` failures alone make a bounce. */
static void note_failure(smtpout_route *r, const char *enhanced,
                         bool permanent, const char *f, ...)
    __attribute__((format(printf, 4, 5)));

static void note_failure(smtpout_route *r, const char *enhanced,
                         bool permanent, const char *f, ...)
{
  va_list ap;
  va_start(ap, f);
  vsnprintf(r->fail_text, sizeof(r->fail_text), f, ap);
  va_end(ap);
  copy(r->fail_enhanced, sizeof(r->fail_enhanced), enhanced);
  r->failed_any = true;
  if (!permanent)
    r->temporary = true;
}

static void finish_with(smtpout_route *r, int status, const char *enhanced,
                        const char *text)
{
  r->status = status;
  copy(r->enhanced, sizeof(r->enhanced), enhanced);
  copy(r->text, sizeof(r->text), text);
  r->state = RS_DONE;
}

/* Nothing left to try: the last failure is the verdict, with the reason
 * the route stopped when it was a limit.  Only failures that the DNS
 * made permanent (no such host, no usable name) bounce; anything a hop
 * or a resolver did may pass, and defers. */
static void finish(smtpout_route *r, const char *limit)
{
  char text[ROUTE_TEXT_MAX + 64];
  if ((r->flags & SMTPOUT_ROUTE_REQUIRETLS) &&
      (r->rt_not_offered || r->rt_unauthenticated)) {
    /* RFC 8689 4.2.1 and 5: the message is never sent without
     * REQUIRETLS; after the last MX it bounces, 5.7.30 when an
     * authenticated server lacked the extension, 5.7.10 when no server
     * could be authenticated (Postfix's mapping). */
    bool offered = r->rt_not_offered > 0;
    fmt(text, sizeof(text), "%s: %s (last: %s)", r->domain,
        offered ? "REQUIRETLS support required: no MX host that DANE or "
                  "MTA-STS authenticated offered REQUIRETLS after STARTTLS"
                : "Encryption needed: no MX host could be authenticated by "
                  "DANE or MTA-STS, as REQUIRETLS requires",
        r->rt_text);
    finish_with(r, SMTPOUT_STATUS_BOUNCED, offered ? "5.7.30" : "5.7.10",
                text);
    return;
  }
  if (!r->failed_any)
    note_failure(r, "4.4.3", false, "%s: no usable MX host", r->domain);
  copy(text, sizeof(text), r->fail_text);
  if (limit) {
    size_t n = strlen(text);
    snprintf(text + n, sizeof(text) - n, " (%s reached)", limit);
  }
  int status = r->temporary ? SMTPOUT_STATUS_DEFERRED
                            : SMTPOUT_STATUS_BOUNCED;
  /* RFC 3463: a bounce carries a 5, a deferral a 4, whatever the
   * class of the failure that came last. */
  char enhanced[8];
  copy(enhanced, sizeof(enhanced), r->fail_enhanced);
  enhanced[0] = status == SMTPOUT_STATUS_BOUNCED ? '5' : '4';
  finish_with(r, status, enhanced, text);
}

/* ---- requests ---- */

/* A free request slot, cleared and numbered; NULL when none is free
 * (unreachable: the states never have more out than there are slots). */
static struct smtpout_request *new_request(smtpout_route *r, int purpose,
                                           int kind, uint32_t timeout_ms)
{
  struct smtpout_request *q = NULL;
  for (size_t i = 0; i < ROUTE_MAX_REQUESTS && !q; i++)
    if (r->req[i].state == RQ_FREE)
      q = &r->req[i];
  if (q == NULL)
    return NULL;
  memset(q, 0, sizeof(*q));
  q->id = r->next_id++;
  q->kind = kind;
  q->purpose = purpose;
  q->state = RQ_READY;
  q->timeout_ms = timeout_ms;
  q->deadline = SMTPOUT_NO_EXPIRY;
  return q;
}

/* Queues a question; false when `name` cannot be asked about (a name
 * over 255 octets, which has no records). */
static bool ask(smtpout_route *r, int purpose, const char *name)
{
  static const int qtypes[] = {[Q_MX] = DNS_TYPE_MX, [Q_A] = DNS_TYPE_A,
                               [Q_AAAA] = DNS_TYPE_AAAA,
                               [Q_TLSA] = DNS_TYPE_TLSA,
                               [Q_STS_TXT] = DNS_TYPE_TXT,
                               [Q_STS_A] = DNS_TYPE_A,
                               [Q_STS_AAAA] = DNS_TYPE_AAAA};
  char qname[ROUTE_QNAME_MAX];
  struct dns_name wire;
  if (purpose == Q_TLSA)
    snprintf(qname, sizeof(qname), "_%u._tcp.%s.",
             (unsigned)r->settings.smtp_port, name);
  else if (purpose == Q_STS_TXT)
    snprintf(qname, sizeof(qname), "_mta-sts.%s.", name);
  else if (purpose == Q_STS_A || purpose == Q_STS_AAAA)
    snprintf(qname, sizeof(qname), "mta-sts.%s.", name);
  else
    snprintf(qname, sizeof(qname), "%s.", name);
  if (dns_name_from_text(&wire, qname) != 0)
    return false;
  struct smtpout_request *q = new_request(r, purpose, SMTPOUT_REQUEST_DNS,
                                          r->settings.dns_timeout_ms);
  if (q == NULL)
    return false;
  memcpy(q->qname, qname, sizeof(q->qname));
  q->wire = wire;
  q->qtype = qtypes[purpose];
  return true;
}

/* The request `id` of `kind` waiting for its answer, or NULL (also once
 * the route is done: nothing it asked for matters any more). */
static struct smtpout_request *pending(smtpout_route *r, int id, int kind)
{
  if (r->state == RS_DONE)
    return NULL;
  for (size_t i = 0; i < ROUTE_MAX_REQUESTS; i++)
    if (r->req[i].state == RQ_PENDING && r->req[i].id == id &&
        r->req[i].kind == kind)
      return &r->req[i];
  return NULL;
}

/* ---- the MX answer ---- */

static void sort_and_shuffle(smtpout_route *r)
{
  /* Insertion sort by preference: stable, and n <= 32. */
  for (size_t i = 1; i < r->nmx; i++) {
    struct mx_host h = r->mx[i];
    size_t j = i;
    for (; j > 0 && r->mx[j - 1].preference > h.preference; j--)
      r->mx[j] = r->mx[j - 1];
    r->mx[j] = h;
  }
  /* RFC 5321 5.1: hosts of equal preference in random order
   * (Fisher-Yates within each run). */
  for (size_t start = 0; start < r->nmx;) {
    size_t end = start + 1;
    while (end < r->nmx && r->mx[end].preference == r->mx[start].preference)
      end++;
    for (size_t i = end - 1; i > start; i--) {
      size_t j = start + rng_below(r, i - start + 1);
      struct mx_host t = r->mx[i];
      r->mx[i] = r->mx[j];
      r->mx[j] = t;
    }
    start = end;
  }
  r->ordered = true;
}

/* The MX RRset: a null MX, the hosts, or the implicit MX. */
static void on_mx(smtpout_route *r, const struct lookup *l,
                  const struct dns_msg *m)
{
  r->mx_verdict = l->verdict;
  if (l->failed) {
    /* RFC 5321 5.1 and RFC 7672 2.1.1: a lookup that failed is not an
     * absence of MX records: never the implicit MX (a downgrade an
     * attacker could force). */
    note_failure(r, "4.4.3", false, "MX lookup for %s failed: %s",
                 r->domain, l->why);
    if (l->verdict == SMTPOUT_DNSSEC_BOGUS)
      event(r, EV_NONE, report_domain(r), NULL, NULL, TLSRPT_DNSSEC_INVALID,
            NULL, NULL, l->why, NULL);
    finish(r, NULL);
    return;
  }
  struct dns_name q, target;
  dns_name_from_text(&q, r->domain);
  if (dns_cname_target(m, &q, &target, NULL) == 0 &&
      !dns_name_equal(&q, &target) &&
      !host_name(&target, r->domain_expanded))
    r->domain_expanded[0] = '\0';
  if (l->outcome == DNS_OUTCOME_NXDOMAIN) {
    char text[ROUTE_TEXT_MAX];
    fmt(text, sizeof(text), "%s: no such domain (NXDOMAIN)", r->domain);
    finish_with(r, SMTPOUT_STATUS_BOUNCED, "5.1.2", text);
    return;
  }
  if (l->outcome == DNS_OUTCOME_NODATA) {
    /* RFC 5321 5.1: no MX records, the domain is its own MX host,
     * preference 0. */
    r->implicit = true;
    copy(r->mx[0].name, sizeof(r->mx[0].name), r->domain);
    r->mx[0].preference = 0;
    r->nmx = 1;
    r->ordered = true;
    r->state = RS_NEXT_HOST;
    return;
  }
  int n = dns_mx_set(m, &q, &r->mxset);
  if (n < 0) { /* unreachable: dns_outcome() followed the same chain */
    note_failure(r, "4.4.3", false, "MX lookup for %s failed: %s",
                 r->domain, dns_strerror(n));
    finish(r, NULL);
    return;
  }
  if (r->mxset.root_target) {
    /* RFC 7505 3: "0 ." alone says the domain accepts no mail.  A "."
     * among other records breaks the RFC's rule for publishers; it is
     * read the same way, as Postfix does: the domain said no. */
    char text[ROUTE_TEXT_MAX];
    fmt(text, sizeof(text),
        "%s does not accept mail: null MX (RFC 7505)%s", r->domain,
        r->mxset.null_mx ? "" : ", among other MX records");
    finish_with(r, SMTPOUT_STATUS_BOUNCED, "5.1.10", text);
    return;
  }
  char bad[DNS_NAME_TEXT_MAX] = "";
  for (size_t i = 0; i < r->mxset.n; i++) {
    struct mx_host h;
    if (!host_name(&r->mxset.mx[i].exchange, h.name)) {
      dns_name_to_text(&r->mxset.mx[i].exchange, bad, sizeof(bad));
      continue;
    }
    h.preference = r->mxset.mx[i].preference;
    /* The same host twice: keep its best preference. */
    size_t k = 0;
    while (k < r->nmx && strcmp(r->mx[k].name, h.name) != 0)
      k++;
    if (k < r->nmx) {
      if (h.preference < r->mx[k].preference)
        r->mx[k].preference = h.preference;
      continue;
    }
    r->mx[r->nmx++] = h;
  }
  if (r->nmx == 0) {
    /* RFC 5321 5.1: MX records, none usable: an error, not the implicit
     * MX. */
    note_failure(r, "5.4.4", true,
                 "%s: no MX record names a host (\"%s\" is not a host name)",
                 r->domain, bad);
    finish(r, NULL);
    return;
  }
  sort_and_shuffle(r);
  r->state = RS_NEXT_HOST;
}

/* ---- a host's addresses and DANE ---- */

static const char *host_name_of(const smtpout_route *r)
{
  return r->mx[r->host.index].name;
}

static void host_reset(smtpout_route *r)
{
  free(r->host.record_data);
  memset(&r->host, 0, sizeof(r->host));
}

static void on_addresses(smtpout_route *r, int family,
                         const struct lookup *l, const struct dns_msg *m)
{
  struct host *h = &r->host;
  h->addr[family] = *l;
  if (l->failed || l->outcome != DNS_OUTCOME_DATA)
    return;
  struct dns_name q, target;
  dns_name_from_text(&q, host_name_of(r));
  struct dns_addr found[ROUTE_MAX_FAMILY_ADDRS];
  int n = dns_addresses(m, &q, family ? DNS_TYPE_AAAA : DNS_TYPE_A, found,
                        ROUTE_MAX_FAMILY_ADDRS, NULL);
  for (int i = 0; i < n; i++) {
    static const uint8_t zero[16];
    /* The unspecified address reaches this very machine; never a mail
     * server of the domain. */
    if (memcmp(found[i].addr, zero, family ? 16 : 4) == 0 ||
        (family == 0 && found[i].addr[0] == 0))
      continue;
    bool seen = false;
    for (size_t k = 0; k < h->naddrs[family] && !seen; k++)
      seen = memcmp(h->addrs[family][k].addr, found[i].addr, 16) == 0;
    if (!seen)
      h->addrs[family][h->naddrs[family]++] = found[i];
  }
  if (h->naddrs[family] > 0 && dns_cname_target(m, &q, &target, NULL) == 0 &&
      !dns_name_equal(&q, &target) && !host_name(&target, h->expanded[family]))
    h->expanded[family][0] = '\0';
}

static void shuffle_addrs(smtpout_route *r, struct dns_addr *a, size_t n)
{
  for (size_t i = n; i > 1; i--) {
    size_t j = rng_below(r, i);
    struct dns_addr t = a[i - 1];
    a[i - 1] = a[j];
    a[j] = t;
  }
}

/* The order in which the host's addresses are tried: each family
 * shuffled (as Postfix's smtp_randomize_addresses), then the families
 * interleaved, so that both get a turn within any address limit (as
 * Postfix's smtp_balance_inet_protocols and RFC 8305 4). */
static void order_addresses(smtpout_route *r)
{
  struct host *h = &r->host;
  shuffle_addrs(r, h->addrs[0], h->naddrs[0]);
  shuffle_addrs(r, h->addrs[1], h->naddrs[1]);
  int first; /* 0: IPv4, 1: IPv6 */
  switch (r->settings.address_preference) {
  case ADDRESS_PREFERENCE_IPV6: first = 1; break;
  case ADDRESS_PREFERENCE_IPV4: first = 0; break;
  default: first = (int)rng_below(r, 2); break;
  }
  size_t i[2] = {0, 0};
  h->norder = 0;
  while (i[0] < h->naddrs[0] || i[1] < h->naddrs[1]) {
    for (int k = 0; k < 2; k++) {
      int f = k == 0 ? first : !first;
      if (i[f] < h->naddrs[f])
        h->order[h->norder++] = h->addrs[f][i[f]++];
    }
  }
}

/* ---- TLS-RPT events ---- */

/* The route's report domain: the recipient domain, or for a relay the
 * policy domain of its host; NULL for an address literal (TLS-RPT
 * reports go to domains). */
static const char *report_domain(const smtpout_route *r)
{
  if (r->literal)
    return NULL;
  if (r->relay)
    return r->sts.domain[0] ? r->sts.domain : NULL;
  return r->domain;
}

/* Policy strings, NUL-terminated, for an event. */
struct strs {
  struct buf arena;
  const char *ptrs[DANE_MAX_RECORDS > 64 ? DANE_MAX_RECORDS : 64];
  size_t n;
};

static void strs_add(struct strs *s, const char *p, size_t len)
{
  if (s->n == sizeof(s->ptrs) / sizeof(s->ptrs[0]))
    return;
  s->ptrs[s->n++] = (const char *)(uintptr_t)buf_len(&s->arena);
  buf_append(&s->arena, p, len);
  buf_append(&s->arena, "", 1);
}

/* Turns the offsets strs_add() stored into pointers, once the arena no
 * longer moves; false when memory ran out on the way. */
static bool strs_fix(struct strs *s, size_t expect_bytes)
{
  if (buf_len(&s->arena) != expect_bytes)
    return false;
  for (size_t i = 0; i < s->n; i++)
    s->ptrs[i] = (const char *)buf_head(&s->arena) + (uintptr_t)s->ptrs[i];
  return true;
}

/* The TLSA records as RFC 8460 4.3 policy strings ("3 1 1 HEX"). */
static bool tlsa_strings(const struct host *h, struct strs *s)
{
  size_t bytes = 0;
  for (size_t i = 0; i < h->nrecords; i++) {
    const struct dns_tlsa *t = &h->records[i];
    char *line = malloc(16 + 2 * t->len);
    if (line == NULL)
      return false;
    int n = snprintf(line, 16, "%u %u %u ", t->usage, t->selector, t->mtype);
    for (size_t k = 0; k < t->len; k++)
      n += snprintf(line + n, 3, "%02X", t->data[k]);
    strs_add(s, line, (size_t)n);
    bytes += (size_t)n + 1;
    free(line);
  }
  return strs_fix(s, bytes);
}

static bool sts_strings(const smtpout_sts_policy *p, struct strs *s,
                        const char **mx, size_t *nmx, size_t mxmax)
{
  const char *const *lines;
  const size_t *lens;
  size_t n = p ? sts_policy_lines(p, &lines, &lens) : 0, bytes = 0;
  for (size_t i = 0; i < n; i++) {
    strs_add(s, lines[i], lens[i]);
    bytes += lens[i] + 1;
  }
  *nmx = 0;
  for (size_t i = 0; p && i < smtpout_sts_policy_mx_count(p) && i < mxmax;
       i++)
    mx[(*nmx)++] = smtpout_sts_policy_mx(p, i);
  return strs_fix(s, bytes);
}

/* Appends `ev` (dated by the latest call's time) to the route's events,
 * within the bounds. */
static int add_event(smtpout_route *r, struct tlsrpt_event *ev)
{
  if (report_domain(r) == NULL)
    return 0;
  ev->time_ms = r->wall0 + (r->now > r->now0 ? r->now - r->now0 : 0);
  if (ev->time_ms > TLSRPT_TIME_MAX)
    ev->time_ms = TLSRPT_TIME_MAX;
  ev->report_domain = report_domain(r);
  struct buf line = {0};
  int rv = tlsrpt_event_write(ev, &line);
  if (rv != 0) {
    buf_free(&line);
    return rv;
  }
  if (r->nevents >= ROUTE_MAX_EVENTS ||
      buf_len(&r->events) + buf_len(&line) > ROUTE_EVENTS_MAX_BYTES) {
    r->events_dropped++;
    buf_free(&line);
    return 0;
  }
  /* The line ends in LF: stored NUL-terminated instead. */
  line.data[line.end - 1] = '\0';
  rv = buf_append(&r->events, buf_head(&line), buf_len(&line));
  buf_free(&line);
  if (rv != 0)
    return SMTPOUT_ERR_NOMEM;
  r->nevents++;
  return 0;
}

/*
 * One event: `kind` says which policy it is about (the host's TLSA
 * records, the MTA-STS policy in force, or none); `mx` and `ip` (may be
 * NULL) the receiving side; `type` TLSRPT_NONE for a success.
 * Out of memory loses the event, never the route.
 */
static int event(smtpout_route *r, int kind, const char *policy_domain,
                 const char *mx, const char *ip, int type,
                 const char *sending_ip, const char *helo,
                 const char *additional, const char *reason_code)
{
  struct tlsrpt_event ev;
  struct strs s;
  const char *mxp[64];
  size_t nmx = 0;
  memset(&ev, 0, sizeof(ev));
  memset(&s, 0, sizeof(s));
  bool ok = true;
  if (kind == EV_TLSA) {
    ev.policy_type = TLSRPT_POLICY_TLSA;
    ok = tlsa_strings(&r->host, &s);
  } else if (kind == EV_STS) {
    ev.policy_type = TLSRPT_POLICY_STS;
    ok = sts_strings(r->sts.policy, &s, mxp, &nmx, 64);
  } else {
    ev.policy_type = TLSRPT_POLICY_NONE;
  }
  int rv = SMTPOUT_ERR_NOMEM;
  if (ok) {
    ev.policy_strings = s.ptrs;
    ev.npolicy_strings = s.n;
    ev.policy_domain = policy_domain;
    ev.mx_hosts = mxp;
    ev.nmx_hosts = nmx;
    ev.success = type == TLSRPT_NONE;
    ev.result_type = type;
    ev.sending_mta_ip = sending_ip;
    ev.receiving_mx_hostname = mx;
    ev.receiving_mx_helo = helo;
    ev.receiving_ip = ip;
    ev.additional_information = additional;
    ev.failure_reason_code = reason_code;
    rv = add_event(r, &ev);
  }
  buf_free(&s.arena);
  return rv;
}

/* The policy domain of events about no published policy or MTA-STS. */
static const char *sts_policy_domain(const smtpout_route *r)
{
  return r->sts.domain[0] ? r->sts.domain : report_domain(r);
}

/* ---- the TLS requirement of a host (docs/routing.md, precedence) ---- */

/*
 * Decides the host's TLS requirement from what DANE and MTA-STS found,
 * strongest rank first:
 *
 *   1 REQUIRETLS         only hosts DANE or MTA-STS enforce authenticate
 *   2 DANE               usable TLSA: DANE; unusable: ENCRYPT (2b)
 *   3 MTA-STS enforce    PKIX (the MX matched: unmatched hosts never get
 *                        here)
 *   4 dane/mta-sts = require   the mechanism, or the host is skipped
 *   5 TLS-Required: No   ranks 2-4 (and 6's require) set aside: RELAXED
 *   6 local              starttls, allow-invalid-certs
 *
 * starttls = disable and allow-invalid-certs = true only ever shape rank
 * 6 (and 5): nothing below changes a stronger requirement.
 */
static void decide_requirement(smtpout_route *r)
{
  struct host *h = &r->host;
  const char *name = host_name_of(r);
  bool usable = h->dane_status == SMTPOUT_DANE_STATUS_USABLE;
  bool enforce = h->sts_mode == SMTPOUT_STS_MODE_ENFORCE;
  bool requiretls = r->flags & SMTPOUT_ROUTE_REQUIRETLS;
  int local_starttls = h->starttls;

  if (r->relaxed) {
    h->requirement = SMTPOUT_TLS_REQUIREMENT_RELAXED;
    h->source = SMTPOUT_TLS_SOURCE_TLS_REQUIRED_NO;
    /* RFC 8689 4.2.2: try TLS, but never let it stop the message. */
    h->starttls = local_starttls == SMTPOUT_STARTTLS_DISABLE
                      ? SMTPOUT_STARTTLS_DISABLE
                      : SMTPOUT_STARTTLS_OPTIONAL;
    h->allow = 1;
    r->state = RS_HOPS;
    return;
  }
  if (usable) {
    h->requirement = SMTPOUT_TLS_REQUIREMENT_DANE;
    h->source = SMTPOUT_TLS_SOURCE_DANE;
  } else if (enforce) {
    h->requirement = SMTPOUT_TLS_REQUIREMENT_PKIX;
    h->source = SMTPOUT_TLS_SOURCE_MTA_STS;
  } else if (h->dane_status == SMTPOUT_DANE_STATUS_UNUSABLE) {
    h->requirement = SMTPOUT_TLS_REQUIREMENT_ENCRYPT;
    h->source = SMTPOUT_TLS_SOURCE_DANE;
  } else {
    h->requirement = SMTPOUT_TLS_REQUIREMENT_LOCAL;
    h->source = SMTPOUT_TLS_SOURCE_LOCAL;
  }
  switch (h->requirement) {
  case SMTPOUT_TLS_REQUIREMENT_DANE:
  case SMTPOUT_TLS_REQUIREMENT_PKIX:
    h->starttls = SMTPOUT_STARTTLS_REQUIRE;
    h->allow = 0;
    break;
  case SMTPOUT_TLS_REQUIREMENT_ENCRYPT:
    h->starttls = SMTPOUT_STARTTLS_REQUIRE;
    h->allow = 1;
    break;
  default:
    break;
  }
  if (requiretls) {
    /* RFC 8689 4.2.1: the hop must be authenticated by DANE or by PKIX
     * under an MTA-STS policy the MX matches. */
    if (h->requirement != SMTPOUT_TLS_REQUIREMENT_DANE &&
        h->requirement != SMTPOUT_TLS_REQUIREMENT_PKIX) {
      r->rt_unauthenticated++;
      note_failure(r, "5.7.10", false,
                   "%s: REQUIRETLS needs a host authenticated by DANE or "
                   "an MTA-STS enforce policy; DANE: %s; MTA-STS: %s",
                   name, h->dane_note,
                   r->sts.policy ? smtpout_sts_mode_name(h->sts_mode)
                                 : "no policy");
      copy(r->rt_text, sizeof(r->rt_text), r->fail_text);
      r->state = RS_NEXT_HOST;
      return;
    }
    h->source = SMTPOUT_TLS_SOURCE_REQUIRETLS;
  }
  /* Rank 4: a required mechanism that is absent skips the host. */
  if (h->dane_mode == SMTPOUT_DANE_REQUIRE && !usable) {
    note_failure(r, "4.7.5", false,
                 "%s: dane = require, but DANE cannot authenticate it: %s",
                 name, h->dane_note);
    event(r, EV_NONE, report_domain(r), name, NULL, TLSRPT_DANE_REQUIRED,
          NULL, NULL, h->dane_note, NULL);
    r->state = RS_NEXT_HOST;
    return;
  }
  if (h->sts_knob == SMTPOUT_MTA_STS_REQUIRE && !enforce) {
    note_failure(r, "4.7.5", false,
                 "%s: mta-sts = require, but no MTA-STS policy in enforce "
                 "mode applies (%s)", name,
                 r->sts.policy ? "the policy's mode is not enforce"
                 : r->sts.note[0] ? r->sts.note
                                  : sts_discovery_reason(&r->sts.d));
    r->state = RS_NEXT_HOST;
    return;
  }
  r->state = RS_HOPS;
}

/* The reference identifiers for DANE-TA (RFC 7672 3.2.2): the TLSA base
 * domain, the MX host name as in the secure MX RRset, the recipient
 * domain and its CNAME-expanded name. */
static void dane_names(smtpout_route *r)
{
  struct host *h = &r->host;
  const char *cand[] = {h->tlsa_base, host_name_of(r), r->domain,
                        r->domain_expanded};
  h->nnames = 0;
  for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
    if (cand[i][0] == '\0' || h->nnames == DANE_MAX_NAMES)
      continue;
    bool dup = false;
    for (size_t k = 0; k < h->nnames && !dup; k++)
      dup = strcmp(h->names[k], cand[i]) == 0;
    if (dup)
      continue;
    copy(h->names[h->nnames], NAME_MAX_LEN, cand[i]);
    h->name_ptrs[h->nnames] = h->names[h->nnames];
    h->nnames++;
  }
}

/* Asks for the TLSA records at the next base domain candidate; false
 * when there is none left. */
static bool ask_tlsa(smtpout_route *r)
{
  struct host *h = &r->host;
  while (h->candidate < h->ncandidates) {
    if (ask(r, Q_TLSA, h->candidates[h->candidate]))
      return true;
    /* A name too long to carry _PORT._tcp holds no TLSA record. */
    h->candidate++;
  }
  return false;
}

/* Both address answers are in: give up on the host, or decide DANE. */
static void host_addresses_ready(smtpout_route *r)
{
  struct host *h = &r->host;
  const char *name = host_name_of(r);
  if (h->naddrs[0] + h->naddrs[1] == 0) {
    const struct lookup *f = h->addr[0].failed   ? &h->addr[0]
                             : h->addr[1].failed ? &h->addr[1]
                                                 : NULL;
    if (f)
      note_failure(r, "4.4.3", false, "%s: address lookup failed: %s", name,
                   f->why);
    if (f && f->verdict == SMTPOUT_DNSSEC_BOGUS)
      event(r, EV_NONE, report_domain(r), name, NULL, TLSRPT_DNSSEC_INVALID,
            NULL, NULL, f->why, NULL);
    else if (r->implicit)
      note_failure(r, "5.4.4", true,
                   "%s: no MX record and no address (A or AAAA)", name);
    else
      note_failure(r, "5.4.4", true, "%s: MX host %s has no address "
                   "(A or AAAA)", r->domain, name);
    r->state = RS_NEXT_HOST;
    return;
  }
  /* The addresses in use must all be secure for a TLSA lookup (RFC
   * 7672 2.2.3); a family that failed or has none is not used. */
  h->addr_secure = true;
  for (int f = 0; f < 2; f++)
    if (h->naddrs[f] > 0 && h->addr[f].verdict != SMTPOUT_DNSSEC_SECURE)
      h->addr_secure = false;
  /* Both families normally name the same CNAME target; when they do
   * not, none is used. */
  const char *expanded = h->naddrs[0] ? h->expanded[0] : h->expanded[1];
  if (h->naddrs[0] && h->naddrs[1] &&
      strcmp(h->expanded[0], h->expanded[1]) != 0)
    expanded = "";
  order_addresses(r);

  if (h->dane_mode == SMTPOUT_DANE_DISABLE) {
    h->dane_status = SMTPOUT_DANE_STATUS_DISABLED;
    fmt(h->dane_note, sizeof(h->dane_note), "off: dane = disable, no TLSA "
        "lookup");
  } else if (r->relaxed) {
    h->dane_status = SMTPOUT_DANE_STATUS_DISABLED;
    fmt(h->dane_note, sizeof(h->dane_note), "set aside: the message says "
        "TLS-Required: No (RFC 8689 5), no TLSA lookup");
  } else if (!r->dnssec_available) {
    h->dane_status = SMTPOUT_DANE_STATUS_UNAVAILABLE;
    fmt(h->dane_note, sizeof(h->dane_note),
        "unavailable: the resolver gives no DNSSEC verdicts");
  } else if (r->relay == NULL && r->mx_verdict != SMTPOUT_DNSSEC_SECURE) {
    h->dane_status = SMTPOUT_DANE_STATUS_MX_INSECURE;
    fmt(h->dane_note, sizeof(h->dane_note),
        "not applicable: the %s is %s (RFC 7672 2.2.1)",
        r->implicit ? "MX NODATA answer" : "MX RRset",
        dnssec_verdict_name(r->mx_verdict));
  } else if (!h->addr_secure) {
    h->dane_status = SMTPOUT_DANE_STATUS_HOST_INSECURE;
    fmt(h->dane_note, sizeof(h->dane_note),
        "not applicable: the addresses of %s are not DNSSEC-secure, no "
        "TLSA lookup (RFC 7672 2.2.3)", name);
  } else {
    /* RFC 7672 2.2.3, RFC 7671 7: the CNAME-expanded name first, then
     * the name itself. */
    if (expanded[0] && strcmp(expanded, name) != 0)
      copy(h->candidates[h->ncandidates++], NAME_MAX_LEN, expanded);
    copy(h->candidates[h->ncandidates++], NAME_MAX_LEN, name);
    if (ask_tlsa(r)) {
      r->state = RS_TLSA;
      return;
    }
    h->dane_status = SMTPOUT_DANE_STATUS_NO_TLSA;
    fmt(h->dane_note, sizeof(h->dane_note), "no TLSA records for %s "
        "(the name is too long to hold any)", name);
  }
  decide_requirement(r);
}

/* Keeps the TLSA RRset of a secure answer (all of it: the session's
 * matcher filters what is usable, and reports counts). */
static bool keep_records(smtpout_route *r, const struct dns_msg *m,
                         const struct dns_name *q)
{
  struct host *h = &r->host;
  struct dns_tlsa found[DANE_MAX_RECORDS];
  int n = dns_tlsa_set(m, q, found, DANE_MAX_RECORDS, NULL);
  if (n <= 0)
    return n == 0;
  size_t total = 0;
  for (int i = 0; i < n; i++)
    total += found[i].len;
  h->record_data = malloc(total ? total : 1);
  if (h->record_data == NULL)
    return false;
  size_t off = 0;
  h->nusable = 0;
  for (int i = 0; i < n; i++) {
    h->records[i] = found[i];
    if (found[i].len)
      memcpy(h->record_data + off, found[i].data, found[i].len);
    h->records[i].data = h->record_data + off;
    off += found[i].len;
    if (dane_record_usable(&found[i]))
      h->nusable++;
  }
  h->nrecords = (size_t)n;
  return true;
}

static void on_tlsa(smtpout_route *r, const struct lookup *l,
                    const struct dns_msg *m, const struct dns_name *q,
                    const char *qname)
{
  struct host *h = &r->host;
  const char *base = h->candidates[h->candidate];
  h->tlsa = *l;
  if (l->failed) {
    /* RFC 7672 2.1.1: a TLSA lookup that fails is not "no TLSA": the
     * host cannot be used now, whatever dane says (but disable, which
     * asks nothing). */
    note_failure(r, "4.7.5", false,
                 "%s: TLSA lookup for %.*s failed: %s; the host is skipped "
                 "(RFC 7672 2.1.1)", host_name_of(r),
                 (int)strlen(qname) - 1, qname, l->why);
    /* RFC 8460 4.4.2: no valid records from the resolver.  The policy
     * domain is the TLSA base domain asked about, as Postfix. */
    event(r, EV_TLSA, base, host_name_of(r), NULL, TLSRPT_DNSSEC_INVALID,
          NULL, NULL, l->why, NULL);
    r->state = RS_NEXT_HOST;
    return;
  }
  if (l->outcome == DNS_OUTCOME_DATA && l->verdict == SMTPOUT_DNSSEC_SECURE) {
    if (!keep_records(r, m, q)) {
      note_failure(r, "4.3.0", false, "%s: out of memory keeping its TLSA "
                   "records", host_name_of(r));
      r->state = RS_NEXT_HOST;
      return;
    }
    copy(h->tlsa_base, sizeof(h->tlsa_base), base);
    char list[ROUTE_TEXT_MAX] = "";
    size_t o = 0;
    for (size_t i = 0; i < h->nrecords && o < sizeof(list) - 16; i++)
      o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%u %u %u",
                            i ? ", " : "", h->records[i].usage,
                            h->records[i].selector, h->records[i].mtype);
    h->dane_status = h->nusable ? SMTPOUT_DANE_STATUS_USABLE
                                : SMTPOUT_DANE_STATUS_UNUSABLE;
    fmt(h->dane_note, sizeof(h->dane_note),
        "TLSA %.*s: secure, %zu record%s (%s), %zu usable",
        (int)strlen(qname) - 1, qname, h->nrecords,
        h->nrecords == 1 ? "" : "s", list, h->nusable);
    if (h->nusable)
      dane_names(r);
    decide_requirement(r);
    return;
  }
  /* No secure TLSA records at this name: try the next candidate (the
   * name before CNAME expansion), then conclude there are none. */
  bool insecure = l->outcome == DNS_OUTCOME_DATA;
  h->candidate++;
  if (ask_tlsa(r))
    return;
  h->dane_status = insecure ? SMTPOUT_DANE_STATUS_TLSA_INSECURE
                            : SMTPOUT_DANE_STATUS_NO_TLSA;
  if (insecure)
    fmt(h->dane_note, sizeof(h->dane_note),
        "not applicable: TLSA %.*s is insecure, and ignored",
        (int)strlen(qname) - 1, qname);
  else
    fmt(h->dane_note, sizeof(h->dane_note),
        "no TLSA records (%s %s denial for %.*s)",
        dnssec_verdict_name(l->verdict),
        l->outcome == DNS_OUTCOME_NXDOMAIN ? "NXDOMAIN" : "NODATA",
        (int)strlen(qname) - 1, qname);
  decide_requirement(r);
}

/* ---- MTA-STS discovery (docs/mta-sts.md) ---- */

static uint64_t wall_now(const smtpout_route *r)
{
  return r->wall0 + (r->now > r->now0 ? r->now - r->now0 : 0);
}

/* Discovery is done: the policy in force, the event of a failed fetch,
 * and the cache entry to store. */
static void sts_conclude(smtpout_route *r)
{
  struct route_sts *s = &r->sts;
  s->done = true;
  s->policy = sts_discovery_policy(&s->d);
  int failure = sts_discovery_failure(&s->d);
  if (failure != TLSRPT_NONE)
    event(r, EV_STS, sts_policy_domain(r), NULL, NULL, failure, NULL, NULL,
          sts_discovery_reason(&s->d), NULL);
  const uint8_t *data;
  size_t len;
  uint64_t expires;
  if (sts_discovery_cache_put(&s->d, &data, &len, &expires) == 1) {
    struct smtpout_request *q =
        new_request(r, Q_STS_PUT, SMTPOUT_REQUEST_CACHE_PUT, 0);
    if (q != NULL) {
      snprintf(q->key, sizeof(q->key), "sts:%s", s->domain);
      q->value = data;
      q->value_len = len;
      q->expires = expires;
    }
  }
}

/* Both inputs (cache entry, TXT record) in: done, or resolve the policy
 * host for a fetch. */
static void sts_step(smtpout_route *r)
{
  struct route_sts *s = &r->sts;
  if (!s->d.have_cache || !s->d.have_txt)
    return;
  if (sts_discovery_next(&s->d, wall_now(r)) != STS_STATE_NEED_FETCH) {
    sts_conclude(r);
    return;
  }
  /* The fetcher connects to what the route resolved, through the host's
   * resolver: it never resolves mta-sts.DOMAIN on its own. */
  if (!ask(r, Q_STS_A, s->domain) || !ask(r, Q_STS_AAAA, s->domain)) {
    for (size_t i = 0; i < ROUTE_MAX_REQUESTS; i++)
      if (r->req[i].purpose == Q_STS_A || r->req[i].purpose == Q_STS_AAAA)
        r->req[i].state = RQ_FREE;
    sts_discovery_fetched(&s->d, STS_FETCH_CONNECT_FAILED, 0, NULL, NULL, 0,
                          wall_now(r));
    sts_conclude(r);
  }
}

static void on_sts_cache(smtpout_route *r, const uint8_t *value, size_t len)
{
  /* Out of memory reads as a miss: the cache is an optimisation. */
  if (sts_discovery_cache(&r->sts.d, value, len) != 0)
    r->sts.d.have_cache = true;
  sts_step(r);
}

static void on_sts_txt(smtpout_route *r, const struct lookup *l,
                       const struct dns_msg *m, const struct dns_name *q)
{
  char *recs[ROUTE_MAX_TXT] = {0};
  size_t lens[ROUTE_MAX_TXT] = {0}, n = 0;
  if (!l->failed && l->outcome == DNS_OUTCOME_DATA) {
    struct dns_name target;
    if (dns_cname_target(m, q, &target, NULL) != 0)
      target = *q;
    size_t pos = 0;
    int i;
    while (n < ROUTE_MAX_TXT &&
           (i = dns_find(m, &pos, DNS_SECTION_ANSWER, DNS_TYPE_TXT,
                         &target)) >= 0) {
      size_t cap = (size_t)m->rr[i].rdlen + 1;
      char *t = malloc(cap);
      if (t == NULL)
        break;
      int len = dns_rr_txt(m, &m->rr[i], t, cap);
      if (len < 0) {
        free(t);
        continue;
      }
      recs[n] = t;
      lens[n++] = (size_t)len;
    }
  }
  sts_discovery_txt(&r->sts.d, l->failed, (const char *const *)recs, lens,
                    n);
  for (size_t i = 0; i < n; i++)
    free(recs[i]);
  sts_step(r);
}

static void on_sts_addresses(smtpout_route *r, int family,
                             const struct lookup *l, const struct dns_msg *m)
{
  struct route_sts *s = &r->sts;
  struct lookup_pair *fh = &s->fetch_host;
  fh->done[family] = true;
  if (l->failed)
    fmt(fh->why, sizeof(fh->why), "%s", l->why);
  if (!l->failed && l->outcome == DNS_OUTCOME_DATA) {
    char name[NAME_MAX_LEN + 8];
    struct dns_name q;
    fmt(name, sizeof(name), "mta-sts.%s", s->domain);
    dns_name_from_text(&q, name);
    struct dns_addr found[ROUTE_MAX_FETCH_ADDRS];
    int n = dns_addresses(m, &q, family ? DNS_TYPE_AAAA : DNS_TYPE_A, found,
                          ROUTE_MAX_FETCH_ADDRS, NULL);
    for (int i = 0; i < n && fh->naddrs < ROUTE_MAX_FETCH_ADDRS; i++)
      fh->addrs[fh->naddrs++] = found[i];
  }
  if (!fh->done[0] || !fh->done[1])
    return;
  if (fh->naddrs == 0) {
    /* [MSR]'s vector: no address for mta-sts.DOMAIN is a fetch error. */
    sts_discovery_fetched(&s->d, STS_FETCH_CONNECT_FAILED, 0, NULL, NULL, 0,
                          wall_now(r));
    sts_conclude(r);
    return;
  }
  struct smtpout_request *q =
      new_request(r, Q_STS_FETCH, SMTPOUT_REQUEST_HTTPS,
                  r->sts_settings.fetch_timeout_ms);
  if (q == NULL) {
    sts_discovery_fetched(&s->d, STS_FETCH_FAILED, 0, NULL, NULL, 0,
                          wall_now(r));
    sts_conclude(r);
    return;
  }
  sts_discovery_url(&s->d, q->url, sizeof(q->url));
  fmt(q->host, sizeof(q->host), "mta-sts.%s", s->domain);
  for (size_t i = 0; i < fh->naddrs; i++)
    inet_ntop(fh->addrs[i].family == 6 ? AF_INET6 : AF_INET,
              fh->addrs[i].addr, q->addrs[i], sizeof(q->addrs[i]));
  q->naddrs = fh->naddrs;
  q->max_bytes = r->sts_settings.max_size;
}

static void on_sts_fetched(smtpout_route *r, int outcome, int status,
                           const char *ctype, const uint8_t *body,
                           size_t len)
{
  /* RFC 8461 3.3 caps nothing, but a policy is a few hundred bytes: the
   * cap holds whatever the host's fetcher did. */
  if (outcome == STS_FETCH_OK && len > r->sts_settings.max_size)
    outcome = STS_FETCH_TOO_LARGE;
  sts_discovery_fetched(&r->sts.d, outcome, status, ctype, body, len,
                        wall_now(r));
  sts_conclude(r);
}

/* Starts discovery for r->sts.domain: the cache entry and the TXT
 * record, asked for beside the MX record. */
static void sts_start(smtpout_route *r)
{
  struct route_sts *s = &r->sts;
  if (sts_discovery_init(&s->d, s->domain,
                         r->sts_settings.failure_backoff_ms) != 0) {
    fmt(s->note, sizeof(s->note), "not applicable: %s is not a domain",
        s->domain);
    s->done = true;
    return;
  }
  s->active = true;
  struct smtpout_request *q = new_request(r, Q_STS_GET,
                                          SMTPOUT_REQUEST_CACHE_GET,
                                          r->settings.dns_timeout_ms);
  if (q != NULL)
    snprintf(q->key, sizeof(q->key), "sts:%s", s->domain);
  else
    sts_discovery_cache(&s->d, NULL, 0);
  /* A name too long to carry "_mta-sts." holds no record. */
  if (!ask(r, Q_STS_TXT, s->domain))
    sts_discovery_txt(&s->d, false, NULL, NULL, 0);
  sts_step(r);
}

/* Which knobs apply to the host about to be tried, and whether an
 * MTA-STS enforce policy lets it be tried at all (RFC 8461 4.1, 8.4: an
 * unlisted MX is skipped, the others are still tried in order).  False
 * when the host is skipped. */
static bool host_begin(smtpout_route *r)
{
  struct host *h = &r->host;
  const char *name = host_name_of(r);
  if (r->relay) {
    const struct config_relay *rl = r->relay;
    int st, al, dn, ms;
    /* Unset relay knobs fall back to [queue.outbound.tls] and the
     * built-in defaults, never to a destination rule (those are about
     * recipient domains); mta-sts is off unless the relay sets it. */
    if (config_policy_lookup(r->config, NULL, NULL, &st, &al) != 0) {
      st = SMTPOUT_STARTTLS_OPTIONAL;
      al = 0;
    }
    if (config_dane_lookup(r->config, NULL, NULL, &dn) != 0)
      dn = SMTPOUT_DANE_OPTIONAL;
    ms = SMTPOUT_MTA_STS_DISABLE;
    h->starttls = rl->starttls >= 0 ? rl->starttls : st;
    h->allow = rl->allow_invalid_certs >= 0 ? rl->allow_invalid_certs : al;
    h->dane_mode = rl->dane >= 0 ? rl->dane : dn;
    h->sts_knob = rl->mta_sts >= 0 ? rl->mta_sts : ms;
  } else {
    if (config_policy_lookup(r->config, r->domain, name, &h->starttls,
                             &h->allow) != 0) {
      h->starttls = SMTPOUT_STARTTLS_OPTIONAL;
      h->allow = 0;
    }
    if (config_dane_lookup(r->config, r->domain, name, &h->dane_mode) != 0)
      h->dane_mode = SMTPOUT_DANE_OPTIONAL;
    if (config_mta_sts_lookup(r->config, r->domain, name, &h->sts_knob) != 0)
      h->sts_knob = SMTPOUT_MTA_STS_OPTIONAL;
  }
  h->local_starttls = h->starttls;
  h->local_allow = h->allow;
  h->sts_mode = SMTPOUT_STS_MODE_NONE;
  h->sts_match = -1;
  const smtpout_sts_policy *p = r->sts.policy;
  if (p == NULL || h->sts_knob == SMTPOUT_MTA_STS_DISABLE || r->relaxed ||
      smtpout_sts_policy_mode(p) == SMTPOUT_STS_MODE_NONE)
    return true;
  h->sts_mode = smtpout_sts_policy_mode(p);
  h->sts_match = smtpout_sts_policy_mx_allowed(p, name) == 1;
  if (h->sts_mode != SMTPOUT_STS_MODE_ENFORCE || h->sts_match)
    return true;
  /* RFC 8461 5.1: never deliver to an MX the enforce policy does not
   * list, even when DANE would authenticate it; a deferral, never a
   * bounce (the policy may be refreshed). */
  note_failure(r, "4.7.0", false,
               "%s: MX host %s is not listed by the MTA-STS policy of %s "
               "(id %s, mode enforce), and is not contacted (RFC 8461 4.1)",
               r->domain, name, r->sts.domain,
               sts_discovery_policy_id(&r->sts.d));
  event(r, EV_STS, sts_policy_domain(r), name, NULL,
        TLSRPT_VALIDATION_FAILURE, NULL, NULL,
        "the MX host matches no mx pattern of the policy",
        "mtasts-policy-mx-mismatch");
  return false;
}

/* ---- the state machine ---- */

/* Moves on as far as the route can without the host.  The one place the
 * state changes outside the answer handlers. */
static void advance(smtpout_route *r)
{
  for (;;) {
    switch (r->state) {
    case RS_NEXT_HOST: {
      uint32_t alimit = r->settings.mx_address_limit;
      uint32_t slimit = r->settings.mx_session_limit;
      /* No host before the MTA-STS policy in force is known: an enforce
       * policy filters hosts before their addresses are looked up. */
      if (!r->sts.done)
        return;
      host_reset(r);
      if (alimit && r->hops_out >= alimit) {
        finish(r, "mx-address-limit");
        return;
      }
      if (slimit && r->sessions >= slimit) {
        finish(r, "mx-session-limit");
        return;
      }
      if (r->next_mx >= r->nmx) {
        finish(r, NULL);
        return;
      }
      r->host.index = r->next_mx++;
      if (!host_begin(r))
        continue;
      /* Both families at once; a name that cannot be asked about has no
       * address, and fails like one. */
      if (!ask(r, Q_A, host_name_of(r)) || !ask(r, Q_AAAA, host_name_of(r))) {
        for (size_t i = 0; i < ROUTE_MAX_REQUESTS; i++)
          if (r->req[i].purpose == Q_A || r->req[i].purpose == Q_AAAA)
            r->req[i].state = RQ_FREE;
        note_failure(r, "5.4.4", true, "%s: unusable MX host name %s",
                     r->domain, host_name_of(r));
        continue;
      }
      r->state = RS_ADDRESSES;
      return;
    }
    case RS_ADDRESSES:
      if (!r->host.addr[0].done || !r->host.addr[1].done)
        return;
      host_addresses_ready(r);
      continue;
    case RS_HOPS: {
      uint32_t alimit = r->settings.mx_address_limit;
      uint32_t slimit = r->settings.mx_session_limit;
      if ((alimit && r->hops_out >= alimit) ||
          (slimit && r->sessions >= slimit) ||
          r->host.next >= r->host.norder) {
        r->state = RS_NEXT_HOST;
        continue;
      }
      return;
    }
    default:
      return;
    }
  }
}

/* ---- answers ---- */

static void rcode_text(char *out, size_t len, unsigned rcode)
{
  static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL",
                                      "NXDOMAIN", "NOTIMP", "REFUSED"};
  if (rcode < sizeof(names) / sizeof(names[0]))
    fmt(out, len, "%s", names[rcode]);
  else
    fmt(out, len, "rcode %u", rcode);
}

/* Fills `l` from a response, or marks it failed with the reason. */
static void read_answer(smtpout_route *r, const struct smtpout_request *q,
                        int verdict, const uint8_t *pkt, size_t len,
                        struct lookup *l)
{
  struct dns_msg *m = &r->msg;
  memset(l, 0, sizeof(*l));
  l->done = true;
  l->verdict = verdict;
  int rv = dns_parse(m, pkt, len);
  if (rv != 0) {
    fmt(l->why, sizeof(l->why), "malformed response (%s)", dns_strerror(rv));
  } else if (m->tc) {
    fmt(l->why, sizeof(l->why), "truncated response (TC)");
  } else if (!m->has_question || m->qtype != q->qtype ||
             m->qclass != DNS_CLASS_IN ||
             !dns_name_equal(&m->qname, &q->wire)) {
    fmt(l->why, sizeof(l->why), "the response does not answer the question");
  } else {
    char rc[16];
    rcode_text(rc, sizeof(rc), m->rcode);
    rv = dns_outcome(m, NULL);
    if (verdict == SMTPOUT_DNSSEC_BOGUS)
      fmt(l->why, sizeof(l->why), "DNSSEC bogus (%s)", rc);
    else if (rv == DNS_OUTCOME_FAILED)
      fmt(l->why, sizeof(l->why), "%s", rc);
    else if (rv < 0)
      fmt(l->why, sizeof(l->why), "%s", dns_strerror(rv));
    else if (verdict == SMTPOUT_DNSSEC_INDETERMINATE)
      fmt(l->why, sizeof(l->why), "DNSSEC indeterminate (%s)", rc);
    else {
      l->outcome = rv;
      return;
    }
  }
  l->failed = true;
  if (verdict != SMTPOUT_DNSSEC_BOGUS)
    l->verdict = SMTPOUT_DNSSEC_INDETERMINATE;
}

/* Hands a lookup to the handler of its question; the packet (in
 * r->msg) is only read when the lookup did not fail. */
static void dispatch(smtpout_route *r, struct smtpout_request *q,
                     const struct lookup *l)
{
  char qname[ROUTE_QNAME_MAX];
  struct dns_name wire = q->wire;
  int purpose = q->purpose;
  memcpy(qname, q->qname, sizeof(qname));
  q->state = RQ_FREE;
  switch (purpose) {
  case Q_MX:
    on_mx(r, l, &r->msg);
    break;
  case Q_A:
  case Q_AAAA:
    on_addresses(r, purpose == Q_AAAA, l, &r->msg);
    break;
  case Q_TLSA:
    on_tlsa(r, l, &r->msg, &wire, qname);
    break;
  case Q_STS_TXT:
    on_sts_txt(r, l, &r->msg, &wire);
    break;
  case Q_STS_A:
  case Q_STS_AAAA:
    on_sts_addresses(r, purpose == Q_STS_AAAA, l, &r->msg);
    break;
  }
  advance(r);
}

static bool verdict_ok(int v)
{
  return v >= SMTPOUT_DNSSEC_INSECURE && v <= SMTPOUT_DNSSEC_INDETERMINATE;
}

int smtpout_route_dns_answer(smtpout_route *route, int id, int dnssec,
                             const uint8_t *packet, size_t len, uint64_t now)
{
  if (route == NULL || (packet == NULL && len > 0) || len > 65535 ||
      !verdict_ok(dnssec))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  struct smtpout_request *q = pending(route, id, SMTPOUT_REQUEST_DNS);
  if (q == NULL)
    return SMTPOUT_ERR_INVALID_STATE;
  route->now = now;
  struct lookup l;
  read_answer(route, q, dnssec, packet, len, &l);
  dispatch(route, q, &l);
  return 0;
}

static void fail_request(smtpout_route *r, struct smtpout_request *q,
                         int dnssec, const char *why)
{
  if (q->kind == SMTPOUT_REQUEST_CACHE_GET) {
    q->state = RQ_FREE;
    on_sts_cache(r, NULL, 0); /* a store that does not answer: a miss */
    advance(r);
    return;
  }
  if (q->kind == SMTPOUT_REQUEST_HTTPS) {
    q->state = RQ_FREE;
    on_sts_fetched(r, STS_FETCH_TIMEOUT, 0, NULL, NULL, 0);
    advance(r);
    return;
  }
  struct lookup l;
  memset(&l, 0, sizeof(l));
  l.done = l.failed = true;
  l.verdict = dnssec == SMTPOUT_DNSSEC_BOGUS ? SMTPOUT_DNSSEC_BOGUS
                                             : SMTPOUT_DNSSEC_INDETERMINATE;
  fmt(l.why, sizeof(l.why), "%s", why);
  dispatch(r, q, &l);
}

int smtpout_route_dns_failed(smtpout_route *route, int id, int dnssec,
                             int rcode, uint64_t now)
{
  if (route == NULL || !verdict_ok(dnssec))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  struct smtpout_request *q = pending(route, id, SMTPOUT_REQUEST_DNS);
  if (q == NULL)
    return SMTPOUT_ERR_INVALID_STATE;
  route->now = now;
  char why[64], rc[16];
  const char *v = dnssec == SMTPOUT_DNSSEC_BOGUS ? "bogus" : "indeterminate";
  rcode_text(rc, sizeof(rc), rcode < 0 ? 65535u : (unsigned)rcode);
  if (rcode == 0)
    fmt(why, sizeof(why), "no response (DNSSEC %s)", v);
  else
    fmt(why, sizeof(why), "%s (DNSSEC %s)", rc, v);
  fail_request(route, q, dnssec, why);
  return 0;
}

uint64_t smtpout_route_expiry(const smtpout_route *route)
{
  uint64_t e = SMTPOUT_NO_EXPIRY;
  if (route == NULL || route->state == RS_DONE)
    return e;
  for (size_t i = 0; i < ROUTE_MAX_REQUESTS; i++)
    if (route->req[i].state == RQ_PENDING && route->req[i].deadline < e)
      e = route->req[i].deadline;
  return e;
}

int smtpout_route_handle_expiry(smtpout_route *route, uint64_t now)
{
  if (route == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  route->now = now;
  /* One at a time: a handler may free slots and issue new requests,
   * whose deadlines are later than `now`. */
  for (;;) {
    struct smtpout_request *q = NULL;
    for (size_t i = 0; i < ROUTE_MAX_REQUESTS; i++) {
      struct smtpout_request *c = &route->req[i];
      if (c->state == RQ_PENDING && c->deadline <= now &&
          (q == NULL || c->id < q->id))
        q = c;
    }
    if (q == NULL)
      return 0;
    if (route->state == RS_DONE)
      return 0;
    char why[64];
    fmt(why, sizeof(why), "timed out after %u ms", (unsigned)q->timeout_ms);
    fail_request(route, q, SMTPOUT_DNSSEC_INDETERMINATE, why);
  }
}

/* ---- the route ---- */

#define ROUTE_FLAGS                                                           \
  (SMTPOUT_ROUTE_NO_DNSSEC | SMTPOUT_ROUTE_REQUIRETLS |                       \
   SMTPOUT_ROUTE_TLS_REQUIRED_NO)

static smtpout_route *route_alloc(smtpout_config *config, uint32_t flags,
                                  uint64_t now, uint64_t wall)
{
  smtpout_route *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return NULL;
  r->config = smtpout_config_ref(config);
  r->settings = *config_routing(config);
  r->sts_settings = *config_sts(config);
  r->flags = flags;
  /* RFC 8689 5: REQUIRETLS wins over TLS-Required: No. */
  r->relaxed = (flags & SMTPOUT_ROUTE_TLS_REQUIRED_NO) &&
               !(flags & SMTPOUT_ROUTE_REQUIRETLS);
  r->now0 = r->now = now;
  r->wall0 = wall;
  r->dnssec_available = !(flags & SMTPOUT_ROUTE_NO_DNSSEC) &&
                        r->settings.dnssec != RESOLVER_OFF;
  r->next_id = 1;
  r->mx_verdict = -1;
  r->hop.route = r;
  if (gnutls_rnd(GNUTLS_RND_NONCE, &r->rng, sizeof(r->rng)) != 0)
    r->rng = (uint64_t)(uintptr_t)r ^ now;
  return r;
}

/* RFC 5321 5.1: an address literal is the address; no DNS, so no DANE
 * and no MTA-STS. */
static void start_literal(smtpout_route *r, const char *name)
{
  struct host *h = &r->host;
  struct dns_addr *a = &h->order[0];
  a->family = strchr(name, ':') ? 6 : 4;
  inet_pton(a->family == 6 ? AF_INET6 : AF_INET, name, a->addr);
  h->norder = 1;
  copy(r->mx[0].name, sizeof(r->mx[0].name), name);
  r->nmx = r->next_mx = 1;
  r->ordered = true;
  r->sts.done = true;
  host_begin(r);
  h->dane_status = SMTPOUT_DANE_STATUS_ADDRESS_LITERAL;
  fmt(h->dane_note, sizeof(h->dane_note),
      "not applicable: an address literal has no DNS records");
  decide_requirement(r);
  advance(r);
}

int smtpout_route_new(smtpout_route **proute, smtpout_config *config,
                      const char *domain, uint32_t flags, uint64_t now,
                      uint64_t wall)
{
  if (proute == NULL || domain == NULL || (flags & ~ROUTE_FLAGS))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  char name[NAME_MAX_LEN];
  bool literal = name_ip_literal(domain, name, sizeof(name)) != 0;
  if (!literal) {
    int rv = name_normalize(domain, name, sizeof(name));
    if (rv != 0)
      return rv;
  }
  smtpout_route *r = route_alloc(config, flags, now, wall);
  if (r == NULL)
    return SMTPOUT_ERR_NOMEM;
  copy(r->domain, sizeof(r->domain), name);
  r->literal = literal;
  if (literal) {
    fmt(r->sts.note, sizeof(r->sts.note),
        "not applicable: an address literal");
    start_literal(r, name);
    *proute = r;
    return 0;
  }
  /* RFC 8461 3.1: the policy of the recipient domain itself, never of a
   * CNAME target or a parent. */
  copy(r->sts.domain, sizeof(r->sts.domain), name);
  int sts = SMTPOUT_MTA_STS_OPTIONAL;
  if (config_mta_sts_lookup(config, name, NULL, &sts) != 0)
    sts = SMTPOUT_MTA_STS_OPTIONAL;
  ask(r, Q_MX, r->domain);
  r->state = RS_MX;
  if (r->relaxed) {
    fmt(r->sts.note, sizeof(r->sts.note), "set aside: the message says "
        "TLS-Required: No (RFC 8689 5), no policy lookup");
    r->sts.done = true;
  } else if (sts == SMTPOUT_MTA_STS_DISABLE) {
    fmt(r->sts.note, sizeof(r->sts.note),
        "off: mta-sts = disable for %s, no policy lookup", name);
    r->sts.done = true;
  } else {
    sts_start(r);
  }
  *proute = r;
  return 0;
}

int smtpout_route_new_relay(smtpout_route **proute, smtpout_config *config,
                            const char *label, uint32_t flags, uint64_t now,
                            uint64_t wall)
{
  if (proute == NULL || config == NULL || (flags & ~ROUTE_FLAGS))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  const struct config_relay *rl =
      config_relay_find(config, label ? label : smtpout_config_relay(config));
  if (rl == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  smtpout_route *r = route_alloc(config, flags, now, wall);
  if (r == NULL)
    return SMTPOUT_ERR_NOMEM;
  r->relay = rl;
  r->settings.smtp_port = rl->port;
  copy(r->domain, sizeof(r->domain), rl->host);
  r->literal = rl->host_is_ip;
  if (r->literal) {
    fmt(r->sts.note, sizeof(r->sts.note),
        "not applicable: the relay is an address");
    start_literal(r, rl->host);
    *proute = r;
    return 0;
  }
  /* RFC 8461 3.4: through a smart host, the policy domain is the smart
   * host's domain: here the relay host name without its first label. */
  const char *dot = strchr(rl->host, '.');
  if (dot)
    copy(r->sts.domain, sizeof(r->sts.domain), dot + 1);
  copy(r->mx[0].name, sizeof(r->mx[0].name), rl->host);
  r->nmx = 1;
  r->ordered = true;
  r->state = RS_NEXT_HOST;
  if (rl->mta_sts < 0 || rl->mta_sts == SMTPOUT_MTA_STS_DISABLE) {
    fmt(r->sts.note, sizeof(r->sts.note), "off for this relay (mta-sts is "
        "%s)", rl->mta_sts < 0 ? "off unless the relay sets it"
                               : "disable");
    r->sts.done = true;
  } else if (r->relaxed) {
    fmt(r->sts.note, sizeof(r->sts.note), "set aside: the message says "
        "TLS-Required: No (RFC 8689 5), no policy lookup");
    r->sts.done = true;
  } else {
    sts_start(r);
  }
  advance(r);
  *proute = r;
  return 0;
}

void smtpout_route_free(smtpout_route *route)
{
  if (route == NULL)
    return;
  host_reset(route);
  sts_discovery_clear(&route->sts.d);
  buf_free(&route->events);
  free(route->hop.explain);
  smtpout_config_unref(route->config);
  free(route);
}

int smtpout_route_set_seed(smtpout_route *route, uint64_t seed)
{
  if (route == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (route->ordered)
    return SMTPOUT_ERR_INVALID_STATE;
  route->rng = seed;
  return 0;
}

int smtpout_route_want(const smtpout_route *route)
{
  if (route == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (route->state == RS_DONE)
    return SMTPOUT_ROUTE_DONE;
  for (size_t i = 0; i < ROUTE_MAX_REQUESTS; i++)
    if (route->req[i].state == RQ_READY)
      return SMTPOUT_ROUTE_WANT_REQUEST;
  if (route->state == RS_HOPS)
    return SMTPOUT_ROUTE_WANT_HOP;
  return SMTPOUT_ROUTE_WAIT;
}

int smtpout_route_next_request(smtpout_route *route,
                               const smtpout_request **preq, uint64_t now)
{
  if (route == NULL || preq == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < ROUTE_MAX_REQUESTS; i++)
    if (route->req[i].state == RQ_TAKEN)
      route->req[i].state = RQ_FREE;
  *preq = NULL;
  if (route->state == RS_DONE)
    return 0;
  struct smtpout_request *q = NULL;
  for (size_t i = 0; i < ROUTE_MAX_REQUESTS; i++) {
    struct smtpout_request *c = &route->req[i];
    if (c->state == RQ_READY && (q == NULL || c->id < q->id))
      q = c;
  }
  *preq = q;
  if (q == NULL)
    return 0;
  if (q->kind == SMTPOUT_REQUEST_CACHE_PUT) {
    q->state = RQ_TAKEN; /* no answer; freed at the next call */
    return 1;
  }
  q->state = RQ_PENDING;
  uint64_t t = q->timeout_ms;
  q->deadline = now > SMTPOUT_NO_EXPIRY - t - 1 ? SMTPOUT_NO_EXPIRY - 1
                                                 : now + t;
  return 1;
}

int smtpout_request_id(const smtpout_request *request)
{
  return request ? request->id : 0;
}

int smtpout_request_kind(const smtpout_request *request)
{
  return request ? request->kind : 0;
}

const char *smtpout_request_qname(const smtpout_request *request)
{
  return request ? request->qname : NULL;
}

int smtpout_request_qtype(const smtpout_request *request)
{
  return request ? request->qtype : 0;
}

uint32_t smtpout_request_timeout_ms(const smtpout_request *request)
{
  return request ? request->timeout_ms : 0;
}

static bool is_kind(const smtpout_request *q, int kind)
{
  return q != NULL && q->kind == kind;
}

const char *smtpout_request_url(const smtpout_request *request)
{
  return is_kind(request, SMTPOUT_REQUEST_HTTPS) ? request->url : NULL;
}

const char *smtpout_request_host(const smtpout_request *request)
{
  return is_kind(request, SMTPOUT_REQUEST_HTTPS) ? request->host : NULL;
}

uint16_t smtpout_request_port(const smtpout_request *request)
{
  return is_kind(request, SMTPOUT_REQUEST_HTTPS) ? 443 : 0;
}

size_t smtpout_request_address_count(const smtpout_request *request)
{
  return is_kind(request, SMTPOUT_REQUEST_HTTPS) ? request->naddrs : 0;
}

const char *smtpout_request_address(const smtpout_request *request,
                                    size_t index)
{
  if (!is_kind(request, SMTPOUT_REQUEST_HTTPS) || index >= request->naddrs)
    return NULL;
  return request->addrs[index];
}

uint32_t smtpout_request_max_bytes(const smtpout_request *request)
{
  return is_kind(request, SMTPOUT_REQUEST_HTTPS) ? request->max_bytes : 0;
}

const char *smtpout_request_cache_key(const smtpout_request *request)
{
  if (is_kind(request, SMTPOUT_REQUEST_CACHE_GET) ||
      is_kind(request, SMTPOUT_REQUEST_CACHE_PUT))
    return request->key;
  return NULL;
}

const uint8_t *smtpout_request_cache_value(const smtpout_request *request,
                                           size_t *plen)
{
  bool put = is_kind(request, SMTPOUT_REQUEST_CACHE_PUT);
  if (plen)
    *plen = put ? request->value_len : 0;
  return put ? request->value : NULL;
}

uint64_t smtpout_request_cache_expires(const smtpout_request *request)
{
  return is_kind(request, SMTPOUT_REQUEST_CACHE_PUT) ? request->expires : 0;
}

int smtpout_route_https_answer(smtpout_route *route, int id, int outcome,
                               int http_status, const char *content_type,
                               const uint8_t *body, size_t len, uint64_t now)
{
  if (route == NULL || (body == NULL && len > 0) ||
      sts_fetch_outcome_name(outcome) == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  struct smtpout_request *q = pending(route, id, SMTPOUT_REQUEST_HTTPS);
  if (q == NULL)
    return SMTPOUT_ERR_INVALID_STATE;
  route->now = now;
  q->state = RQ_FREE;
  on_sts_fetched(route, outcome, http_status, content_type, body, len);
  advance(route);
  return 0;
}

int smtpout_route_cache_answer(smtpout_route *route, int id,
                               const uint8_t *value, size_t len,
                               uint64_t now)
{
  if (route == NULL || (value == NULL && len > 0))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  struct smtpout_request *q = pending(route, id, SMTPOUT_REQUEST_CACHE_GET);
  if (q == NULL)
    return SMTPOUT_ERR_INVALID_STATE;
  route->now = now;
  q->state = RQ_FREE;
  on_sts_cache(route, value, len);
  advance(route);
  return 0;
}

/* ---- hops ---- */

static void addf(struct buf *b, const char *f, ...)
    __attribute__((format(printf, 2, 3)));

static void addf(struct buf *b, const char *f, ...)
{
  char tmp[ROUTE_TEXT_MAX + 256];
  va_list ap;
  va_start(ap, f);
  int n = vsnprintf(tmp, sizeof(tmp), f, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n >= sizeof(tmp))
    n = (int)sizeof(tmp) - 1;
  buf_append(b, tmp, (size_t)n); /* out of memory: a shorter text */
}

/* "built-in default", "[destination "x"] at FILE:LINE", ... */
static void knob_origin(char *out, size_t len, const smtpout_policy *p,
                        int knob)
{
  const char *src = smtpout_policy_source(p, knob);
  const char *rule = smtpout_policy_rule(p, knob);
  if (src == NULL || rule == NULL || strcmp(src, "default") == 0)
    fmt(out, len, "built-in default");
  else if (strcmp(rule, "queue.outbound.tls") == 0)
    fmt(out, len, "[queue.outbound.tls] at %s", src);
  else if (strncmp(rule, "map:", 4) == 0)
    fmt(out, len, "the policy map at %s", src);
  else
    fmt(out, len, "[destination \"%s\"] at %s", rule, src);
}

/* The hop's explanation (see smtpout_hop_explain()); NULL when memory
 * ran out. */
static char *explain_hop(smtpout_route *r, const struct dns_addr *a)
{
  const struct host *h = &r->host;
  const char *name = host_name_of(r);
  struct buf b = {0};
  addf(&b, "recipient domain: %s\n", r->domain);
  if (r->literal) {
    addf(&b, "address literal: no DNS, no MX\n");
  } else if (r->implicit) {
    addf(&b, "implicit MX: %s itself (no MX records; the NODATA answer is "
             "%s)\n", name, dnssec_verdict_name(r->mx_verdict));
  } else {
    addf(&b, "MX host: %s, preference %u (%zu of %zu; MX RRset %s)\n", name,
         (unsigned)r->mx[h->index].preference, h->index + 1, r->nmx,
         dnssec_verdict_name(r->mx_verdict));
  }
  int fam = a->family == 6;
  if (!r->literal) {
    if (h->expanded[fam][0])
      addf(&b, "CNAME: %s is an alias of %s\n", name, h->expanded[fam]);
    addf(&b, "address: %s (%s record, %s), port %u; address %zu of %zu "
             "of this host\n", r->hop.address, fam ? "AAAA" : "A",
         dnssec_verdict_name(h->addr[fam].verdict),
         (unsigned)r->settings.smtp_port, h->next, h->norder);
  } else {
    addf(&b, "address: %s, port %u\n", r->hop.address,
         (unsigned)r->settings.smtp_port);
  }

  /* Where each knob came from: the relay's section, or the rules. */
  char st[ROUTE_TEXT_MAX], ai[ROUTE_TEXT_MAX], dn[ROUTE_TEXT_MAX],
      ms[ROUTE_TEXT_MAX];
  smtpout_policy *p = NULL;
  const char *dom = r->domain;
  if (smtpout_policy_resolve(&p, r->config, r->relay ? NULL : &dom,
                             r->relay ? 0 : 1, r->relay ? NULL : name) == 0) {
    knob_origin(st, sizeof(st), p, SMTPOUT_KNOB_STARTTLS);
    knob_origin(ai, sizeof(ai), p, SMTPOUT_KNOB_ALLOW_INVALID_CERTS);
    knob_origin(dn, sizeof(dn), p, SMTPOUT_KNOB_DANE);
    knob_origin(ms, sizeof(ms), p, SMTPOUT_KNOB_MTA_STS);
  } else {
    fmt(st, sizeof(st), "source unknown: out of memory");
    fmt(ai, sizeof(ai), "%s", st);
    fmt(dn, sizeof(dn), "%s", st);
    fmt(ms, sizeof(ms), "%s", st);
  }
  smtpout_policy_free(p);
  if (r->relay) {
    const struct config_relay *rl = r->relay;
    const uint32_t lines[4] = {rl->starttls_line, rl->allow_line,
                               rl->dane_line, rl->mta_sts_line};
    char *outs[4] = {st, ai, dn, ms};
    for (int k = 0; k < 4; k++)
      if (lines[k])
        fmt(outs[k], ROUTE_TEXT_MAX, "[relay \"%s\"] at %s:%u", rl->label,
            rl->file, (unsigned)lines[k]);
    if (rl->mta_sts_line == 0)
      fmt(ms, sizeof(ms), "off for relays unless set (RFC 8461 3.4)");
    addf(&b, "relay: [relay \"%s\"] at %s:%u, %s port %u%s\n", rl->label,
         rl->file, (unsigned)rl->line, rl->host, (unsigned)rl->port,
         rl->implicit_tls ? ", implicit TLS (RFC 8314)" : "");
    if (rl->auth_username)
      addf(&b, "AUTH: as %s, mechanisms %s, over %s TLS; the secret is "
               "read from its file when needed, never shown\n",
           rl->auth_username,
           rl->auth_mechanisms ? rl->auth_mechanisms : "any supported",
           rl->auth_tls == AUTH_TLS_ANY ? "any" : "verified");
    if (rl->client_cert)
      addf(&b, "client certificate: %s (key %s)\n", rl->client_cert,
           rl->client_key);
  }
  if (r->flags & (SMTPOUT_ROUTE_REQUIRETLS | SMTPOUT_ROUTE_TLS_REQUIRED_NO))
    addf(&b, "message: %s%s%s\n",
         r->flags & SMTPOUT_ROUTE_REQUIRETLS ? "REQUIRETLS" : "",
         (r->flags & SMTPOUT_ROUTE_REQUIRETLS) &&
                 (r->flags & SMTPOUT_ROUTE_TLS_REQUIRED_NO)
             ? ", "
             : "",
         r->flags & SMTPOUT_ROUTE_TLS_REQUIRED_NO
             ? (r->relaxed ? "TLS-Required: No"
                           : "TLS-Required: No (ignored: REQUIRETLS wins, "
                             "RFC 8689 5)")
             : "");
  addf(&b, "dane = %s (%s)\n", smtpout_dane_name(h->dane_mode), dn);
  addf(&b, "DANE: %s\n", h->dane_note);
  addf(&b, "mta-sts = %s (%s)\n", smtpout_mta_sts_name(h->sts_knob), ms);
  addf(&b, "MTA-STS: %s\n", smtpout_route_sts_explain(r));
  if (r->sts.policy && h->sts_knob != SMTPOUT_MTA_STS_DISABLE &&
      !r->relaxed)
    addf(&b, "MTA-STS policy of %s: id %s, mode %s; %s %s\n",
         r->sts.domain, sts_discovery_policy_id(&r->sts.d),
         smtpout_sts_mode_name(smtpout_sts_policy_mode(r->sts.policy)), name,
         h->sts_match == 1   ? "matches an mx pattern"
         : h->sts_match == 0 ? "matches no mx pattern (reported to TLS-RPT)"
                             : "is not checked (mode none)");
  const char *why = "";
  switch (h->source) {
  case SMTPOUT_TLS_SOURCE_REQUIRETLS:
    why = "precedence rank 1, REQUIRETLS: MAIL FROM carries REQUIRETLS, which the "
          "server must offer after STARTTLS; nothing relaxes it";
    break;
  case SMTPOUT_TLS_SOURCE_DANE:
    why = "precedence rank 2, DANE: relaxed only by dane = disable or TLS-Required: No";
    break;
  case SMTPOUT_TLS_SOURCE_MTA_STS:
    why = "precedence rank 3, MTA-STS enforce: relaxed only by mta-sts = disable or "
          "TLS-Required: No";
    break;
  case SMTPOUT_TLS_SOURCE_TLS_REQUIRED_NO:
    why = "precedence rank 5, TLS-Required: No: DANE, MTA-STS and dane/mta-sts = "
          "require set aside (RFC 8689 5)";
    break;
  default:
    why = "precedence rank 6, the local policy";
    break;
  }
  int starttls = smtpout_hop_starttls(&r->hop);
  int allow = h->allow;
  switch (h->requirement) {
  case SMTPOUT_TLS_REQUIREMENT_DANE:
    addf(&b, "TLS requirement: dane: STARTTLS and a TLSA match are "
             "mandatory, SNI %s, no plaintext or PKIX fallback (RFC 7672 "
             "2.2; %s)\n",
         h->tlsa_base, why);
    break;
  case SMTPOUT_TLS_REQUIREMENT_ENCRYPT:
    addf(&b, "TLS requirement: encrypt: STARTTLS is mandatory, the "
             "certificate is not authenticated (RFC 7672 3: no usable TLSA "
             "record; precedence rank 2b)\n");
    break;
  case SMTPOUT_TLS_REQUIREMENT_PKIX:
    addf(&b, "TLS requirement: pkix: STARTTLS, TLS 1.2 or later and a "
             "certificate that verifies for %s are mandatory, no plaintext "
             "fallback (RFC 8461 4.2, 5; %s)\n", name, why);
    break;
  case SMTPOUT_TLS_REQUIREMENT_RELAXED:
    addf(&b, "TLS requirement: relaxed: starttls = %s, any certificate, "
             "plaintext fallback %s (%s)\n",
         smtpout_starttls_name(starttls),
         smtpout_hop_plaintext_fallback(&r->hop) ? "allowed" : "not allowed",
         why);
    break;
  default:
    addf(&b, "TLS requirement: local: starttls = %s (%s), "
             "allow-invalid-certs = %s (%s) (%s)\n",
         smtpout_starttls_name(starttls), st, allow ? "true" : "false", ai,
         why);
    if (starttls == SMTPOUT_STARTTLS_REQUIRE && r->relay &&
        (r->relay->auth_username || r->relay->implicit_tls))
      addf(&b, "  starttls = require: %s\n",
           r->relay->implicit_tls ? "implicit TLS"
                                  : "AUTH credentials are never sent "
                                    "without TLS, no plaintext fallback");
    break;
  }
  if (h->requirement != SMTPOUT_TLS_REQUIREMENT_LOCAL &&
      h->requirement != SMTPOUT_TLS_REQUIREMENT_RELAXED &&
      (h->local_starttls != SMTPOUT_STARTTLS_REQUIRE || h->local_allow))
    addf(&b, "  overridden for this hop: starttls = %s (%s), "
             "allow-invalid-certs = %s (%s)\n",
         smtpout_starttls_name(h->local_starttls), st,
         h->local_allow ? "true" : "false", ai);
  if (buf_append(&b, "", 1) != 0) {
    buf_free(&b);
    return NULL;
  }
  return (char *)b.data;
}

int smtpout_route_next_hop(smtpout_route *route, const smtpout_hop **phop,
                           uint64_t now)
{
  (void)now;
  if (route == NULL || phop == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  *phop = NULL;
  if (smtpout_route_want(route) != SMTPOUT_ROUTE_WANT_HOP)
    return 0;
  struct host *h = &route->host;
  struct smtpout_hop *hop = &route->hop;
  const struct dns_addr *a = &h->order[h->next++];
  hop->family = a->family;
  inet_ntop(a->family == 6 ? AF_INET6 : AF_INET, a->addr, hop->address,
            sizeof(hop->address));
  free(hop->explain);
  hop->explain = explain_hop(route, a);
  route->hops_out++;
  route->state = RS_HOP_OUT;
  *phop = hop;
  return 1;
}

int smtpout_route_hop_done(smtpout_route *route, const smtpout_hop *hop,
                           int outcome, const char *detail, uint64_t now)
{
  if (route == NULL || hop != &route->hop || route->state != RS_HOP_OUT ||
      smtpout_hop_outcome_name(outcome) == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  route->now = now;
  if (outcome == SMTPOUT_HOP_DONE) {
    finish_with(route, 0, "", "");
    return 0;
  }
  char where[NAME_MAX_LEN + INET6_ADDRSTRLEN + 16];
  char d[ROUTE_DETAIL_MAX + 1];
  fmt(where, sizeof(where), "%s[%s]:%u", host_name_of(route), hop->address,
      (unsigned)route->settings.smtp_port);
  fmt(d, sizeof(d), "%s", detail ? detail : "");
  /* The detail is the host's words, maybe a server's: one line. */
  for (char *c = d; *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f)
      *c = ' ';
  switch (outcome) {
  case SMTPOUT_HOP_CONNECT_FAILED:
    note_failure(route, "4.4.1", false, "connect to %s: %s", where,
                 d[0] ? d : "connection failed");
    break;
  case SMTPOUT_HOP_HOST_FAILED:
    note_failure(route, "4.4.2", false, "%s: %s", where,
                 d[0] ? d : "the server did not complete the SMTP "
                            "handshake");
    break;
  case SMTPOUT_HOP_TLS_FAILED:
    note_failure(route, "4.7.5", false, "%s: %s", where,
                 d[0] ? d : "the required TLS could not be established");
    break;
  case SMTPOUT_HOP_SESSION_FAILED:
    route->sessions++;
    note_failure(route, "4.4.2", false, "%s: %s", where,
                 d[0] ? d : "the session ended before every recipient "
                            "had a reply");
    break;
  case SMTPOUT_HOP_REQUIRETLS_NOT_OFFERED:
    route->sessions++;
    route->rt_not_offered++;
    note_failure(route, "5.7.30", false, "%s: %s", where,
                 d[0] ? d : "REQUIRETLS was not offered after STARTTLS");
    copy(route->rt_text, sizeof(route->rt_text), route->fail_text);
    break;
  }
  if (outcome == SMTPOUT_HOP_TLS_FAILED &&
      (route->flags & SMTPOUT_ROUTE_REQUIRETLS)) {
    route->rt_unauthenticated++;
    copy(route->rt_text, sizeof(route->rt_text), route->fail_text);
  }
  route->state = RS_HOPS;
  advance(route);
  return 0;
}

const char *smtpout_hop_mx(const smtpout_hop *hop)
{
  return hop ? host_name_of(hop->route) : NULL;
}

int smtpout_hop_preference(const smtpout_hop *hop)
{
  if (hop == NULL)
    return 0;
  const smtpout_route *r = hop->route;
  return r->mx[r->host.index].preference;
}

const char *smtpout_hop_address(const smtpout_hop *hop)
{
  return hop ? hop->address : NULL;
}

uint16_t smtpout_hop_port(const smtpout_hop *hop)
{
  return hop ? hop->route->settings.smtp_port : 0;
}

int smtpout_hop_tls_requirement(const smtpout_hop *hop)
{
  return hop ? hop->route->host.requirement : 0;
}

int smtpout_hop_dane_status(const smtpout_hop *hop)
{
  return hop ? hop->route->host.dane_status : 0;
}

int smtpout_hop_tls_source(const smtpout_hop *hop)
{
  return hop ? hop->route->host.source : 0;
}

static bool hop_auth(const smtpout_hop *hop)
{
  return hop && hop->route->relay && hop->route->relay->auth_username;
}

int smtpout_hop_starttls(const smtpout_hop *hop)
{
  if (hop == NULL)
    return SMTPOUT_STARTTLS_OPTIONAL;
  /* DESIGN 3: credentials never go in clear, whatever rank decided. */
  if (hop_auth(hop) || (hop->route->relay && hop->route->relay->implicit_tls))
    return SMTPOUT_STARTTLS_REQUIRE;
  return hop->route->host.starttls;
}

int smtpout_hop_allow_invalid_certs(const smtpout_hop *hop)
{
  return hop ? hop->route->host.allow : 0;
}

int smtpout_hop_plaintext_fallback(const smtpout_hop *hop)
{
  if (hop == NULL || hop_auth(hop) ||
      (hop->route->relay && hop->route->relay->implicit_tls))
    return 0;
  int req = hop->route->host.requirement;
  return (req == SMTPOUT_TLS_REQUIREMENT_LOCAL ||
          req == SMTPOUT_TLS_REQUIREMENT_RELAXED) &&
         hop->route->host.starttls == SMTPOUT_STARTTLS_OPTIONAL;
}

int smtpout_hop_requiretls(const smtpout_hop *hop)
{
  return hop && (hop->route->flags & SMTPOUT_ROUTE_REQUIRETLS) ? 1 : 0;
}

int smtpout_hop_sts_mode(const smtpout_hop *hop)
{
  return hop ? hop->route->host.sts_mode : SMTPOUT_STS_MODE_NONE;
}

int smtpout_hop_sts_mx_match(const smtpout_hop *hop)
{
  return hop ? hop->route->host.sts_match : -1;
}

const char *smtpout_hop_relay(const smtpout_hop *hop)
{
  return hop && hop->route->relay ? hop->route->relay->label : NULL;
}

int smtpout_hop_implicit_tls(const smtpout_hop *hop)
{
  return hop && hop->route->relay && hop->route->relay->implicit_tls;
}

const char *smtpout_hop_auth_mechanisms(const smtpout_hop *hop)
{
  return hop_auth(hop) ? hop->route->relay->auth_mechanisms : NULL;
}

const char *smtpout_hop_auth_username(const smtpout_hop *hop)
{
  return hop_auth(hop) ? hop->route->relay->auth_username : NULL;
}

int smtpout_hop_auth_tls_any(const smtpout_hop *hop)
{
  return hop_auth(hop) && hop->route->relay->auth_tls == AUTH_TLS_ANY;
}

int smtpout_hop_auth_secret(const smtpout_hop *hop, char *buf, size_t len)
{
  if (!hop_auth(hop) || buf == NULL || len == 0)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  return config_relay_secret(hop->route->relay, buf, len);
}

const char *smtpout_hop_client_cert(const smtpout_hop *hop)
{
  return hop && hop->route->relay ? hop->route->relay->client_cert : NULL;
}

const char *smtpout_hop_client_key(const smtpout_hop *hop)
{
  return hop && hop->route->relay ? hop->route->relay->client_key : NULL;
}

int smtpout_route_hop_tlsrpt(smtpout_route *route, const smtpout_hop *hop,
                             const char *result_type, const char *sending_ip,
                             const char *receiving_helo,
                             const char *additional, uint64_t now)
{
  if (route == NULL || hop != &route->hop || route->state != RS_HOP_OUT)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  int type = TLSRPT_NONE;
  if (result_type != NULL) {
    type = tlsrpt_type_parse(result_type, strlen(result_type));
    if (type <= TLSRPT_NONE)
      return SMTPOUT_ERR_INVALID_ARGUMENT;
  }
  if (sending_ip != NULL) {
    uint8_t a[16];
    if (inet_pton(AF_INET, sending_ip, a) != 1 &&
        inet_pton(AF_INET6, sending_ip, a) != 1)
      return SMTPOUT_ERR_INVALID_ARGUMENT;
  }
  route->now = now;
  /* RFC 8460 3: a TLS-RPT report goes out flagged TLS-Required: No, is
   * delivered despite TLS failures, and its own session is not counted in
   * the next report (or reports would report on reports).  No policy was
   * applied to such a route anyway: nothing to record. */
  if (route->relaxed)
    return 0;
  const struct host *h = &route->host;
  const char *reason = NULL;
  int kind = EV_NONE;
  const char *domain = sts_policy_domain(route);
  if (h->requirement == SMTPOUT_TLS_REQUIREMENT_DANE) {
    kind = EV_TLSA;
    domain = h->tlsa_base;
  } else if (h->sts_mode != SMTPOUT_STS_MODE_NONE) {
    kind = EV_STS;
    /* A testing policy that does not list the MX: the session may have
     * gone well, the policy still failed (RFC 8461 5, mox's reason). */
    if (h->sts_match == 0 && type == TLSRPT_NONE) {
      type = TLSRPT_VALIDATION_FAILURE;
      reason = "mtasts-policy-mx-mismatch";
    }
  }
  if (domain == NULL)
    return 0;
  return event(route, kind, domain, host_name_of(route), hop->address, type,
               sending_ip, receiving_helo, additional, reason);
}

int smtpout_route_next_event(smtpout_route *route, const char **pjson,
                             size_t *plen)
{
  if (route == NULL || pjson == NULL || plen == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  *pjson = NULL;
  *plen = 0;
  if (route->events_taken >= route->nevents)
    return 0;
  const char *s = (const char *)buf_head(&route->events) + route->events_off;
  *pjson = s;
  *plen = strlen(s);
  route->events_off += *plen + 1;
  route->events_taken++;
  return 1;
}

uint32_t smtpout_route_events_dropped(const smtpout_route *route)
{
  return route ? route->events_dropped : 0;
}

int smtpout_route_sts_mode(const smtpout_route *route)
{
  return route && route->sts.done ? smtpout_sts_policy_mode(route->sts.policy)
                                   : SMTPOUT_STS_MODE_NONE;
}

const char *smtpout_route_sts_id(const smtpout_route *route)
{
  if (route == NULL || !route->sts.done || !route->sts.active)
    return "";
  return sts_discovery_policy_id(&route->sts.d);
}

const char *smtpout_route_sts_explain(const smtpout_route *route)
{
  if (route == NULL || !route->sts.done)
    return "";
  if (!route->sts.active)
    return route->sts.note;
  return sts_discovery_reason(&route->sts.d);
}

const char *smtpout_hop_tlsa_base(const smtpout_hop *hop)
{
  if (hop == NULL || hop->route->host.nrecords == 0)
    return NULL;
  return hop->route->host.tlsa_base;
}

size_t smtpout_hop_tlsa_count(const smtpout_hop *hop)
{
  return hop ? hop->route->host.nrecords : 0;
}

int smtpout_hop_tlsa(const smtpout_hop *hop, size_t index, int *usage,
                     int *selector, int *mtype, const uint8_t **pdata,
                     size_t *plen)
{
  if (hop == NULL || index >= hop->route->host.nrecords)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  const struct dns_tlsa *t = &hop->route->host.records[index];
  if (usage)
    *usage = t->usage;
  if (selector)
    *selector = t->selector;
  if (mtype)
    *mtype = t->mtype;
  if (pdata)
    *pdata = t->data;
  if (plen)
    *plen = t->len;
  return 0;
}

size_t smtpout_hop_dane_name_count(const smtpout_hop *hop)
{
  return hop ? hop->route->host.nnames : 0;
}

const char *smtpout_hop_dane_name(const smtpout_hop *hop, size_t index)
{
  if (hop == NULL || index >= hop->route->host.nnames)
    return NULL;
  return hop->route->host.names[index];
}

const char *smtpout_hop_explain(const smtpout_hop *hop)
{
  if (hop == NULL)
    return NULL;
  return hop->explain ? hop->explain : "";
}

void route_hop_dane(const smtpout_hop *hop, const struct dns_tlsa **records,
                    size_t *nrecords, const char *const **names,
                    size_t *nnames)
{
  const struct host *h = &hop->route->host;
  *records = h->nrecords ? h->records : NULL;
  *nrecords = h->nrecords;
  *names = h->nnames ? h->name_ptrs : NULL;
  *nnames = h->nnames;
}

/* ---- the verdict, and what the route found ---- */

int smtpout_route_status(const smtpout_route *route)
{
  return route && route->state == RS_DONE ? route->status : 0;
}

const char *smtpout_route_enhanced(const smtpout_route *route)
{
  return route && route->state == RS_DONE ? route->enhanced : "";
}

const char *smtpout_route_text(const smtpout_route *route)
{
  return route && route->state == RS_DONE ? route->text : "";
}

const char *smtpout_route_domain(const smtpout_route *route)
{
  return route ? route->domain : NULL;
}

int smtpout_route_dnssec(const smtpout_route *route)
{
  return route ? route->mx_verdict : -1;
}

int smtpout_route_implicit_mx(const smtpout_route *route)
{
  return route && route->implicit;
}

size_t smtpout_route_mx_count(const smtpout_route *route)
{
  return route && !route->literal ? route->nmx : 0;
}

const char *smtpout_route_mx_name(const smtpout_route *route, size_t index)
{
  if (route == NULL || route->literal || index >= route->nmx)
    return NULL;
  return route->mx[index].name;
}

int smtpout_route_mx_preference(const smtpout_route *route, size_t index)
{
  if (route == NULL || route->literal || index >= route->nmx)
    return -1;
  return route->mx[index].preference;
}
