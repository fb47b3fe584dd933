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
#include "smtpout/session.h"

/* Questions out at once: the A and AAAA of one host. */
#define ROUTE_MAX_REQUESTS 4
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

enum purpose { Q_MX, Q_A, Q_AAAA, Q_TLSA };
enum request_state { RQ_FREE, RQ_READY, RQ_PENDING };

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

/* Queues a question; false when `name` cannot be asked about (a name
 * over 255 octets, which has no records). */
static bool ask(smtpout_route *r, int purpose, const char *name)
{
  static const int qtypes[] = {[Q_MX] = DNS_TYPE_MX, [Q_A] = DNS_TYPE_A,
                               [Q_AAAA] = DNS_TYPE_AAAA,
                               [Q_TLSA] = DNS_TYPE_TLSA};
  struct smtpout_request *q = NULL;
  for (size_t i = 0; i < ROUTE_MAX_REQUESTS && !q; i++)
    if (r->req[i].state == RQ_FREE)
      q = &r->req[i];
  if (q == NULL) /* unreachable: at most two questions are out at once */
    return false;
  if (purpose == Q_TLSA)
    snprintf(q->qname, sizeof(q->qname), "_%u._tcp.%s.",
             (unsigned)r->settings.smtp_port, name);
  else
    snprintf(q->qname, sizeof(q->qname), "%s.", name);
  if (dns_name_from_text(&q->wire, q->qname) != 0)
    return false;
  q->id = r->next_id++;
  q->kind = SMTPOUT_REQUEST_DNS;
  q->qtype = qtypes[purpose];
  q->purpose = purpose;
  q->state = RQ_READY;
  q->timeout_ms = r->settings.dns_timeout_ms;
  q->deadline = SMTPOUT_NO_EXPIRY;
  return true;
}

static struct smtpout_request *pending(smtpout_route *r, int id)
{
  for (size_t i = 0; i < ROUTE_MAX_REQUESTS; i++)
    if (r->req[i].state == RQ_PENDING && r->req[i].id == id)
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

/* What DANE found decides the hop's TLS requirement; dane = require
 * skips a host DANE does not authenticate (wave2-design 2.3, rank 4). */
static void dane_conclude(smtpout_route *r)
{
  struct host *h = &r->host;
  switch (h->dane_status) {
  case SMTPOUT_DANE_STATUS_USABLE:
    h->requirement = SMTPOUT_TLS_REQUIREMENT_DANE;
    break;
  case SMTPOUT_DANE_STATUS_UNUSABLE:
    h->requirement = SMTPOUT_TLS_REQUIREMENT_ENCRYPT;
    break;
  default:
    h->requirement = SMTPOUT_TLS_REQUIREMENT_LOCAL;
    break;
  }
  if (h->dane_mode == SMTPOUT_DANE_REQUIRE &&
      h->dane_status != SMTPOUT_DANE_STATUS_USABLE) {
    note_failure(r, "4.7.5", false,
                 "%s: dane = require, but DANE cannot authenticate it: %s",
                 host_name_of(r), h->dane_note);
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

  if (config_dane_lookup(r->config, r->domain, name, &h->dane_mode) != 0)
    h->dane_mode = SMTPOUT_DANE_OPTIONAL; /* unreachable: names are valid */
  if (h->dane_mode == SMTPOUT_DANE_DISABLE) {
    h->dane_status = SMTPOUT_DANE_STATUS_DISABLED;
    fmt(h->dane_note, sizeof(h->dane_note), "off: dane = disable, no TLSA "
        "lookup");
  } else if (!r->dnssec_available) {
    h->dane_status = SMTPOUT_DANE_STATUS_UNAVAILABLE;
    fmt(h->dane_note, sizeof(h->dane_note),
        "unavailable: the resolver gives no DNSSEC verdicts");
  } else if (r->mx_verdict != SMTPOUT_DNSSEC_SECURE) {
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
  dane_conclude(r);
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
    dane_conclude(r);
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
  dane_conclude(r);
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
      /* Both families at once; a name that cannot be asked about has no
       * address, and fails like one. */
      if (!ask(r, Q_A, host_name_of(r)) || !ask(r, Q_AAAA, host_name_of(r))) {
        for (size_t i = 0; i < ROUTE_MAX_REQUESTS; i++)
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
  (void)now;
  if (route == NULL || (packet == NULL && len > 0) || len > 65535 ||
      !verdict_ok(dnssec))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  struct smtpout_request *q = pending(route, id);
  if (q == NULL)
    return SMTPOUT_ERR_INVALID_STATE;
  struct lookup l;
  read_answer(route, q, dnssec, packet, len, &l);
  dispatch(route, q, &l);
  return 0;
}

static void fail_request(smtpout_route *r, struct smtpout_request *q,
                         int dnssec, const char *why)
{
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
  (void)now;
  if (route == NULL || !verdict_ok(dnssec))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  struct smtpout_request *q = pending(route, id);
  if (q == NULL)
    return SMTPOUT_ERR_INVALID_STATE;
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
  if (route == NULL)
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
    char why[64];
    fmt(why, sizeof(why), "timed out after %u ms",
        (unsigned)route->settings.dns_timeout_ms);
    fail_request(route, q, SMTPOUT_DNSSEC_INDETERMINATE, why);
  }
}

/* ---- the route ---- */

int smtpout_route_new(smtpout_route **proute, smtpout_config *config,
                      const char *domain, uint32_t flags, uint64_t now)
{
  (void)now;
  if (proute == NULL || domain == NULL || (flags & ~SMTPOUT_ROUTE_NO_DNSSEC))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  char name[NAME_MAX_LEN];
  bool literal = name_ip_literal(domain, name, sizeof(name)) != 0;
  if (!literal) {
    int rv = name_normalize(domain, name, sizeof(name));
    if (rv != 0)
      return rv;
  }
  smtpout_route *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return SMTPOUT_ERR_NOMEM;
  r->config = smtpout_config_ref(config);
  r->settings = *config_routing(config);
  copy(r->domain, sizeof(r->domain), name);
  r->literal = literal;
  r->dnssec_available = !(flags & SMTPOUT_ROUTE_NO_DNSSEC) &&
                        r->settings.dnssec != RESOLVER_OFF;
  r->next_id = 1;
  r->mx_verdict = -1;
  r->hop.route = r;
  if (gnutls_rnd(GNUTLS_RND_NONCE, &r->rng, sizeof(r->rng)) != 0)
    r->rng = (uint64_t)(uintptr_t)r ^ now;
  if (literal) {
    /* RFC 5321 5.1: an address literal is the address; no DNS, so no
     * DANE. */
    struct host *h = &r->host;
    struct dns_addr *a = &h->order[0];
    a->family = strchr(name, ':') ? 6 : 4;
    inet_pton(a->family == 6 ? AF_INET6 : AF_INET, name, a->addr);
    h->norder = 1;
    copy(r->mx[0].name, sizeof(r->mx[0].name), name);
    r->nmx = r->next_mx = 1;
    if (config_dane_lookup(config, name, name, &h->dane_mode) != 0)
      h->dane_mode = SMTPOUT_DANE_OPTIONAL;
    h->dane_status = SMTPOUT_DANE_STATUS_ADDRESS_LITERAL;
    fmt(h->dane_note, sizeof(h->dane_note),
        "not applicable: an address literal has no DNS records");
    dane_conclude(r);
    advance(r);
  } else {
    ask(r, Q_MX, r->domain);
    r->state = RS_MX;
  }
  *proute = r;
  return 0;
}

void smtpout_route_free(smtpout_route *route)
{
  if (route == NULL)
    return;
  host_reset(route);
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
  struct smtpout_request *q = NULL;
  for (size_t i = 0; i < ROUTE_MAX_REQUESTS; i++) {
    struct smtpout_request *c = &route->req[i];
    if (c->state == RQ_READY && (q == NULL || c->id < q->id))
      q = c;
  }
  *preq = q;
  if (q == NULL)
    return 0;
  q->state = RQ_PENDING;
  uint64_t t = route->settings.dns_timeout_ms;
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

  smtpout_policy *p = NULL;
  const char *dom = r->domain;
  char st[ROUTE_TEXT_MAX], ai[ROUTE_TEXT_MAX], dn[ROUTE_TEXT_MAX];
  if (smtpout_policy_resolve(&p, r->config, &dom, 1, name) == 0) {
    knob_origin(st, sizeof(st), p, SMTPOUT_KNOB_STARTTLS);
    knob_origin(ai, sizeof(ai), p, SMTPOUT_KNOB_ALLOW_INVALID_CERTS);
    knob_origin(dn, sizeof(dn), p, SMTPOUT_KNOB_DANE);
  } else {
    fmt(st, sizeof(st), "source unknown: out of memory");
    fmt(ai, sizeof(ai), "%s", st);
    fmt(dn, sizeof(dn), "%s", st);
  }
  int starttls = smtpout_policy_starttls(p);
  int allow = smtpout_policy_allow_invalid_certs(p);
  addf(&b, "dane = %s (%s)\n", smtpout_dane_name(h->dane_mode), dn);
  addf(&b, "DANE: %s\n", h->dane_note);
  switch (h->requirement) {
  case SMTPOUT_TLS_REQUIREMENT_DANE:
    addf(&b, "TLS requirement: dane: STARTTLS and a TLSA match are "
             "mandatory, SNI %s, no plaintext or PKIX fallback (RFC 7672 "
             "2.2; precedence rank 2, relaxed only by dane = disable)\n",
         h->tlsa_base);
    break;
  case SMTPOUT_TLS_REQUIREMENT_ENCRYPT:
    addf(&b, "TLS requirement: encrypt: STARTTLS is mandatory, the "
             "certificate is not authenticated (RFC 7672 3: no usable TLSA "
             "record; precedence rank 2b)\n");
    break;
  default:
    addf(&b, "TLS requirement: local: starttls = %s (%s), "
             "allow-invalid-certs = %s (%s) (precedence rank 5)\n",
         smtpout_starttls_name(starttls), st, allow ? "true" : "false", ai);
    break;
  }
  if (h->requirement != SMTPOUT_TLS_REQUIREMENT_LOCAL &&
      (starttls != SMTPOUT_STARTTLS_REQUIRE || allow))
    addf(&b, "  overridden for this hop: starttls = %s (%s), "
             "allow-invalid-certs = %s (%s)\n",
         smtpout_starttls_name(starttls), st, allow ? "true" : "false", ai);
  smtpout_policy_free(p);
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
  (void)now;
  if (route == NULL || hop != &route->hop || route->state != RS_HOP_OUT ||
      smtpout_hop_outcome_name(outcome) == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
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
