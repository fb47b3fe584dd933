/*
 * test_route.c — routes (lib/route.c): MX resolution, next hops and DANE
 * decisions, driven by a scripted resolver.
 *
 * The resolver here answers each of the route's questions from a table of
 * records, as a recursive resolver would: CNAME chains followed in the
 * answer, NXDOMAIN for names that do not exist, NODATA otherwise; each
 * answer is a real DNS message, built by this file's own encoder (not
 * lib/dns.c's), and carries the DNSSEC verdict the table gives its zone.
 * Overrides turn any one question into a failure (SERVFAIL, bogus, a
 * malformed or mismatched packet, no answer at all).  Hop outcomes come
 * from a list.  What the route asked and which hops it handed out are
 * recorded as text, so each test reads as the transcript it expects.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dnsenc.h"
#include "route_int.h"
#include "smtpout/smtpout.h"

/* ---- records and zones ---- */

struct rec {
  const char *owner, *type, *rdata;
};

/* The verdict of the answers for names under `suffix` (the longest
 * suffix wins; INSECURE when none matches). */
struct zone_verdict {
  const char *suffix;
  int verdict;
};

enum action {
  ANSWER = 0,     /* answer from the records, with the zone's verdict */
  VERDICT,        /* answer from the records, with `verdict` */
  RCODE,          /* a response with `rcode` and no records, `verdict` */
  FAIL,           /* smtpout_route_dns_failed(verdict, rcode) */
  MALFORMED,      /* a packet cut in the middle of a record */
  WRONG_QUESTION, /* a well-formed answer to another question */
  TRUNCATED,      /* TC set */
  SILENT,         /* never answered */
};

struct override {
  const char *qname; /* without the final dot */
  const char *qtype;
  int action, verdict, rcode;
};

struct zone {
  const struct rec *recs;
  const struct zone_verdict *verdicts;
  const struct override *overrides;
};

#define END {NULL, NULL, NULL}

static const char *type_name(int code)
{
  switch (code) {
  case 1: return "A";
  case 5: return "CNAME";
  case 15: return "MX";
  case 16: return "TXT";
  case 28: return "AAAA";
  case 52: return "TLSA";
  default: return "?";
  }
}

/* ---- a packet encoder (independent of lib/dns.c) ---- */


static int name_eq(const char *a, const char *b)
{
  return strcasecmp(a, b) == 0;
}

/* Does `name` exist: records of its own, or below it (an empty
 * non-terminal)? */
static int name_exists(const struct rec *recs, const char *name)
{
  size_t nl = strlen(name);
  for (const struct rec *r = recs; r->owner; r++) {
    size_t ol = strlen(r->owner);
    if (name_eq(r->owner, name) ||
        (ol > nl && r->owner[ol - nl - 1] == '.' &&
         name_eq(r->owner + ol - nl, name)))
      return 1;
  }
  return 0;
}

/* The response a resolver would give for (qname, qtype). */
static void build_answer(struct dnsenc *p, const struct rec *recs,
                         const char *qname, int qtype, int rcode, int tc)
{
  const struct rec *an[64];
  size_t nan = 0;
  char cur[300];
  snprintf(cur, sizeof(cur), "%s", qname);
  if (rcode < 0) {
    rcode = 0;
    for (int hops = 0; hops < 20; hops++) {
      const struct rec *cn = NULL;
      for (const struct rec *r = recs; r->owner && !cn; r++)
        if (name_eq(r->owner, cur) && strcmp(r->type, "CNAME") == 0)
          cn = r;
      if (cn == NULL || qtype == 5)
        break;
      an[nan++] = cn;
      snprintf(cur, sizeof(cur), "%s", cn->rdata);
    }
    for (const struct rec *r = recs; r->owner; r++)
      if (name_eq(r->owner, cur) && dnsenc_type_code(r->type) == qtype &&
          nan < 64)
        an[nan++] = r;
    if (!name_exists(recs, cur))
      rcode = 3;
  } else {
    nan = 0;
  }
  dnsenc_response(p, 0x8180 | (tc ? 0x0200 : 0) | (unsigned)rcode, nan, qname,
                  qtype);
  for (size_t i = 0; i < nan; i++)
    dnsenc_rr(p, an[i]->owner, an[i]->type, an[i]->rdata);
}

static int zone_verdict(const struct zone *z, const char *qname)
{
  int v = SMTPOUT_DNSSEC_INSECURE;
  size_t best = 0, ql = strlen(qname);
  for (const struct zone_verdict *zv = z->verdicts; zv && zv->suffix; zv++) {
    size_t sl = strlen(zv->suffix);
    if (sl > ql || sl < best || !name_eq(qname + ql - sl, zv->suffix))
      continue;
    if (sl < ql && qname[ql - sl - 1] != '.')
      continue;
    best = sl;
    v = zv->verdict;
  }
  return v;
}

/* ---- running a route ---- */

/* What the host's HTTPS fetcher and cache store answer (MTA-STS). */
struct web {
  int outcome;              /* SMTPOUT_FETCH_*; SILENT: never answered */
  int status;
  const char *ctype;
  const char *body;         /* NULL: none */
  size_t body_len;          /* 0: strlen(body) */
  const char *cache;        /* the stored entry, NULL: a miss */
};

struct run {
  smtpout_route *r;
  const struct zone *zone;
  const struct web *web;    /* NULL: cache misses, fetch fails */
  char sts_log[4096];       /* cache, TXT and fetch requests, in order */
  char put[70000];          /* the last CACHE_PUT value */
  size_t put_len;
  int puts, fetches;
  char fetch_addrs[256];
  uint64_t wall;
  char sources[512];        /* each hop's "requirement/source" */
  /* Called with each hop before its outcome is reported (may be NULL). */
  void (*on_hop)(struct run *t, const smtpout_hop *h);
  char queries[4096];
  char hops[4096];
  char explain[4096]; /* the last hop's */
  const int *outcomes; /* hop outcomes in order; then CONNECT_FAILED */
  size_t nout, iout;
  int silent[8];       /* ids left unanswered */
  size_t nsilent;
  uint64_t now;
};

static void append(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void append(char *buf, size_t len, const char *fmt, ...)
{
  size_t n = strlen(buf);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + n, len - n, fmt, ap);
  va_end(ap);
}

static const struct override *find_override(const struct zone *z,
                                            const char *qname, int qtype)
{
  for (const struct override *o = z->overrides; o && o->qname; o++)
    if (name_eq(o->qname, qname) && dnsenc_type_code(o->qtype) == qtype)
      return o;
  return NULL;
}

static void answer_web(struct run *t, const smtpout_request *q)
{
  int id = smtpout_request_id(q);
  const struct web *w = t->web;
  switch (smtpout_request_kind(q)) {
  case SMTPOUT_REQUEST_CACHE_GET: {
    append(t->sts_log, sizeof(t->sts_log), "GET %s\n",
           smtpout_request_cache_key(q));
    const char *v = w && w->cache ? w->cache : (t->put_len ? t->put : NULL);
    size_t len = v == t->put ? t->put_len : v ? strlen(v) : 0;
    assert_int_equal(smtpout_route_cache_answer(t->r, id, (const uint8_t *)v,
                                                len, t->now), 0);
    return;
  }
  case SMTPOUT_REQUEST_CACHE_PUT: {
    size_t len;
    const uint8_t *v = smtpout_request_cache_value(q, &len);
    assert_non_null(v);
    assert_true(len < sizeof(t->put));
    memcpy(t->put, v, len);
    t->put_len = len;
    t->puts++;
    assert_true(smtpout_request_cache_expires(q) > t->wall);
    append(t->sts_log, sizeof(t->sts_log), "PUT %s\n",
           smtpout_request_cache_key(q));
    return;
  }
  case SMTPOUT_REQUEST_HTTPS: {
    t->fetches++;
    append(t->sts_log, sizeof(t->sts_log), "FETCH %s\n",
           smtpout_request_url(q));
    t->fetch_addrs[0] = '\0';
    for (size_t i = 0; i < smtpout_request_address_count(q); i++)
      append(t->fetch_addrs, sizeof(t->fetch_addrs), "%s%s", i ? " " : "",
             smtpout_request_address(q, i));
    assert_int_equal(smtpout_request_port(q), 443);
    if (w && w->outcome == SILENT) {
      t->silent[t->nsilent++] = id;
      return;
    }
    int outcome = w ? w->outcome : SMTPOUT_FETCH_CONNECT_FAILED;
    const char *body = w ? w->body : NULL;
    size_t len = body ? (w->body_len ? w->body_len : strlen(body)) : 0;
    assert_int_equal(smtpout_route_https_answer(t->r, id, outcome,
                                                w ? w->status : 0,
                                                w ? w->ctype : NULL,
                                                (const uint8_t *)body, len,
                                                t->now), 0);
    return;
  }
  }
}

static void answer(struct run *t, const smtpout_request *q)
{
  char qname[300];
  if (smtpout_request_kind(q) != SMTPOUT_REQUEST_DNS) {
    answer_web(t, q);
    return;
  }
  snprintf(qname, sizeof(qname), "%s", smtpout_request_qname(q));
  size_t l = strlen(qname);
  assert_true(l > 1 && qname[l - 1] == '.');
  qname[l - 1] = '\0';
  int qtype = smtpout_request_qtype(q), id = smtpout_request_id(q);
  /* MTA-STS questions go to their own transcript, so that the DNS one
   * reads as the MX story it always was. */
  bool sts = strncmp(qname, "_mta-sts.", 9) == 0 ||
             strncmp(qname, "mta-sts.", 8) == 0;
  if (sts)
    append(t->sts_log, sizeof(t->sts_log), "%s %s\n", type_name(qtype),
           qname);
  else
    append(t->queries, sizeof(t->queries), "%s %s\n", type_name(qtype),
           qname);
  const struct override *o = find_override(t->zone, qname, qtype);
  int action = o ? o->action : ANSWER;
  int verdict = o && action != ANSWER ? o->verdict
                                      : zone_verdict(t->zone, qname);
  static struct dnsenc p;
  switch (action) {
  case SILENT:
    t->silent[t->nsilent++] = id;
    return;
  case FAIL:
    assert_int_equal(smtpout_route_dns_failed(t->r, id, verdict, o->rcode,
                                              t->now), 0);
    return;
  case RCODE:
    build_answer(&p, t->zone->recs, qname, qtype, o->rcode, 0);
    break;
  case MALFORMED:
    build_answer(&p, t->zone->recs, qname, qtype, -1, 0);
    p.n -= 3;
    break;
  case WRONG_QUESTION:
    build_answer(&p, t->zone->recs, "other.example", qtype, -1, 0);
    break;
  case TRUNCATED:
    build_answer(&p, t->zone->recs, qname, qtype, -1, 1);
    break;
  default:
    build_answer(&p, t->zone->recs, qname, qtype, -1, 0);
    break;
  }
  assert_int_equal(smtpout_route_dns_answer(t->r, id, verdict, p.b, p.n,
                                            t->now), 0);
}

/* Drives the route until it is done or waits for an answer that never
 * comes.  Returns the final want. */
static int drive(struct run *t)
{
  for (int steps = 0; steps < 1000; steps++) {
    int want = smtpout_route_want(t->r);
    if (want == SMTPOUT_ROUTE_WANT_REQUEST) {
      const smtpout_request *q;
      assert_int_equal(smtpout_route_next_request(t->r, &q, t->now), 1);
      answer(t, q);
    } else if (want == SMTPOUT_ROUTE_WANT_HOP) {
      const smtpout_hop *h;
      assert_int_equal(smtpout_route_next_hop(t->r, &h, t->now), 1);
      append(t->hops, sizeof(t->hops), "%s %s %s %s\n", smtpout_hop_mx(h),
             smtpout_hop_address(h),
             smtpout_tls_requirement_name(smtpout_hop_tls_requirement(h)),
             smtpout_dane_status_name(smtpout_hop_dane_status(h)));
      snprintf(t->explain, sizeof(t->explain), "%s", smtpout_hop_explain(h));
      append(t->sources, sizeof(t->sources), "%s/%s ",
             smtpout_tls_requirement_name(smtpout_hop_tls_requirement(h)),
             smtpout_tls_source_name(smtpout_hop_tls_source(h)));
      if (t->on_hop)
        t->on_hop(t, h);
      int outcome = t->iout < t->nout ? t->outcomes[t->iout]
                                      : SMTPOUT_HOP_CONNECT_FAILED;
      t->iout++;
      assert_int_equal(smtpout_route_hop_done(t->r, h, outcome, NULL,
                                              t->now), 0);
    } else {
      return want;
    }
  }
  fail_msg("the route never finished");
  return -1;
}

static smtpout_config *config(const char *ini)
{
  smtpout_config *c = NULL;
  char err[1024];
  if (ini == NULL)
    return NULL;
  int rv = smtpout_config_load_string(&c, ini, "t.ini", err, sizeof(err));
  if (rv != 0)
    fail_msg("config: %s", err);
  return c;
}

/* Starts a route to `domain` with seed 1 and runs it. */
static void run(struct run *t, const struct zone *z, const char *ini,
                const char *domain, uint32_t flags)
{
  memset(t, 0, sizeof(*t));
  t->zone = z;
  t->now = 1000;
  smtpout_config *c = config(ini);
  assert_int_equal(smtpout_route_new(&t->r, c, domain, flags, t->now, 0), 0);
  smtpout_config_unref(c); /* the route holds its own reference */
  smtpout_route_set_seed(t->r, 1);
  drive(t);
}

static void run_with(struct run *t, const struct zone *z, const char *ini,
                     const char *domain, const int *outcomes, size_t n)
{
  memset(t, 0, sizeof(*t));
  t->zone = z;
  t->now = 1000;
  t->outcomes = outcomes;
  t->nout = n;
  smtpout_config *c = config(ini);
  assert_int_equal(smtpout_route_new(&t->r, c, domain, 0, t->now, 0), 0);
  smtpout_config_unref(c);
  smtpout_route_set_seed(t->r, 1);
  drive(t);
}

static void assert_verdict(const struct run *t, int status,
                           const char *enhanced, const char *text_part)
{
  assert_int_equal(smtpout_route_want(t->r), SMTPOUT_ROUTE_DONE);
  assert_int_equal(smtpout_route_status(t->r), status);
  assert_string_equal(smtpout_route_enhanced(t->r), enhanced);
  if (strstr(smtpout_route_text(t->r), text_part) == NULL)
    fail_msg("verdict text \"%s\" lacks \"%s\"", smtpout_route_text(t->r),
             text_part);
}

static void contains(const char *text, const char *part)
{
  if (strstr(text, part) == NULL)
    fail_msg("\"%s\" lacks \"%s\"", text, part);
}

static void done(struct run *t)
{
  smtpout_route_free(t->r);
  t->r = NULL;
}

/* ---- a domain with two MX hosts, insecure ---- */

static const struct rec plain[] = {
  {"example.org", "MX", "20 mx2.example.org"},
  {"example.org", "MX", "10 mx1.example.org"},
  {"mx1.example.org", "A", "192.0.2.1"},
  {"mx2.example.org", "A", "192.0.2.2"},
  {"mx2.example.org", "AAAA", "2001:db8::2"},
  END,
};
static const struct zone plain_zone = {plain, NULL, NULL};

static void test_mx_hosts_are_tried_in_preference_order(void **state)
{
  (void)state;
  struct run t;
  run(&t, &plain_zone, "[queue.outbound]\naddress-preference = ipv4\n",
      "example.org", 0);
  assert_string_equal(t.queries, "MX example.org\n"
                                 "A mx1.example.org\n"
                                 "AAAA mx1.example.org\n"
                                 "A mx2.example.org\n"
                                 "AAAA mx2.example.org\n");
  assert_string_equal(t.hops,
                      "mx1.example.org 192.0.2.1 local mx-insecure\n"
                      "mx2.example.org 192.0.2.2 local mx-insecure\n"
                      "mx2.example.org 2001:db8::2 local mx-insecure\n");
  assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.4.1",
                 "connect to mx2.example.org[2001:db8::2]:25");
  assert_int_equal(smtpout_route_mx_count(t.r), 2);
  assert_string_equal(smtpout_route_mx_name(t.r, 0), "mx1.example.org");
  assert_int_equal(smtpout_route_mx_preference(t.r, 1), 20);
  assert_int_equal(smtpout_route_dnssec(t.r), SMTPOUT_DNSSEC_INSECURE);
  assert_int_equal(smtpout_route_implicit_mx(t.r), 0);
  done(&t);
}

static void test_next_mx_after_a_dead_first_mx(void **state)
{
  (void)state;
  static const int outcomes[] = {SMTPOUT_HOP_CONNECT_FAILED,
                                 SMTPOUT_HOP_DONE};
  struct run t;
  run_with(&t, &plain_zone, "[queue.outbound]\naddress-preference = ipv4\n",
           "example.org", outcomes, 2);
  assert_string_equal(t.hops,
                      "mx1.example.org 192.0.2.1 local mx-insecure\n"
                      "mx2.example.org 192.0.2.2 local mx-insecure\n");
  /* Done: nothing left for the route to decide. */
  assert_int_equal(smtpout_route_want(t.r), SMTPOUT_ROUTE_DONE);
  assert_int_equal(smtpout_route_status(t.r), 0);
  assert_string_equal(smtpout_route_enhanced(t.r), "");
  done(&t);
}

static void test_host_failures_move_on_and_say_what_failed(void **state)
{
  (void)state;
  static const int outcomes[] = {SMTPOUT_HOP_HOST_FAILED,
                                 SMTPOUT_HOP_TLS_FAILED,
                                 SMTPOUT_HOP_SESSION_FAILED};
  struct run t;
  run_with(&t, &plain_zone, "[queue.outbound]\naddress-preference = ipv6\n",
           "example.org", outcomes, 3);
  assert_string_equal(t.hops,
                      "mx1.example.org 192.0.2.1 local mx-insecure\n"
                      "mx2.example.org 2001:db8::2 local mx-insecure\n"
                      "mx2.example.org 192.0.2.2 local mx-insecure\n");
  assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.4.2",
                 "mx2.example.org[192.0.2.2]:25: the session ended");
  done(&t);

  /* The host's own words go into the verdict, on one line. */
  smtpout_route *r;
  assert_int_equal(smtpout_route_new(&r, NULL, "[192.0.2.1]", 0, 0, 0), 0);
  const smtpout_hop *h;
  assert_int_equal(smtpout_route_next_hop(r, &h, 0), 1);
  assert_int_equal(smtpout_route_hop_done(r, h, SMTPOUT_HOP_TLS_FAILED,
                                          "certificate\r\nnot verified", 0),
                   0);
  assert_int_equal(smtpout_route_status(r), SMTPOUT_STATUS_DEFERRED);
  assert_string_equal(smtpout_route_enhanced(r), "4.7.5");
  assert_string_equal(smtpout_route_text(r),
                      "192.0.2.1[192.0.2.1]:25: certificate  not verified");
  smtpout_route_free(r);
}

/* ---- MX rules ---- */

static void test_equal_preferences_are_shuffled_by_seed(void **state)
{
  (void)state;
  static const struct rec recs[] = {
    {"shuffle.example", "MX", "10 a.shuffle.example"},
    {"shuffle.example", "MX", "10 b.shuffle.example"},
    {"shuffle.example", "MX", "10 c.shuffle.example"},
    {"shuffle.example", "MX", "10 d.shuffle.example"},
    {"shuffle.example", "MX", "5 first.shuffle.example"},
    {"shuffle.example", "MX", "50 last.shuffle.example"},
    END,
  };
  static const struct zone z = {recs, NULL, NULL};
  char orders[8][512];
  for (uint64_t seed = 0; seed < 8; seed++) {
    struct run t;
    memset(&t, 0, sizeof(t));
    t.zone = &z;
    assert_int_equal(smtpout_route_new(&t.r, NULL, "shuffle.example", 0, 0, 0),
                     0);
    assert_int_equal(smtpout_route_set_seed(t.r, seed), 0);
    const smtpout_request *q;
    assert_int_equal(smtpout_route_next_request(t.r, &q, 0), 1);
    answer(&t, q);
    /* Ordered now: the seed can no longer change anything. */
    assert_int_equal(smtpout_route_set_seed(t.r, 99),
                     SMTPOUT_ERR_INVALID_STATE);
    orders[seed][0] = '\0';
    assert_int_equal(smtpout_route_mx_count(t.r), 6);
    for (size_t i = 0; i < 6; i++)
      append(orders[seed], sizeof(orders[seed]), "%s ",
             smtpout_route_mx_name(t.r, i));
    assert_string_equal(smtpout_route_mx_name(t.r, 0),
                        "first.shuffle.example");
    assert_string_equal(smtpout_route_mx_name(t.r, 5),
                        "last.shuffle.example");
    smtpout_route_free(t.r);
  }
  /* The same seed gives the same order... */
  for (uint64_t seed = 0; seed < 2; seed++) {
    smtpout_route *r;
    struct run t;
    memset(&t, 0, sizeof(t));
    t.zone = &z;
    assert_int_equal(smtpout_route_new(&r, NULL, "shuffle.example", 0, 0, 0), 0);
    t.r = r;
    smtpout_route_set_seed(r, seed);
    const smtpout_request *q;
    smtpout_route_next_request(r, &q, 0);
    answer(&t, q);
    char again[512] = "";
    for (size_t i = 0; i < 6; i++)
      append(again, sizeof(again), "%s ", smtpout_route_mx_name(r, i));
    assert_string_equal(again, orders[seed]);
    smtpout_route_free(r);
  }
  /* ... and the seeds do not all give one order. */
  int distinct = 0;
  for (int i = 1; i < 8; i++)
    distinct += strcmp(orders[i], orders[0]) != 0;
  assert_true(distinct > 0);
}

static void test_null_mx_bounces_without_any_address_lookup(void **state)
{
  (void)state;
  static const struct rec recs[] = {
    {"nomail.example", "MX", "0 ."},
    {"nomail.example", "A", "192.0.2.9"},
    END,
  };
  static const struct zone z = {recs, NULL, NULL};
  struct run t;
  run(&t, &z, NULL, "nomail.example", 0);
  assert_string_equal(t.queries, "MX nomail.example\n");
  assert_string_equal(t.hops, "");
  assert_verdict(&t, SMTPOUT_STATUS_BOUNCED, "5.1.10",
                 "nomail.example does not accept mail: null MX (RFC 7505)");
  assert_int_equal(smtpout_route_mx_count(t.r), 0);
  done(&t);
}

static void test_null_mx_among_other_records_still_bounces(void **state)
{
  (void)state;
  static const struct rec recs[] = {
    {"mixed.example", "MX", "0 ."},
    {"mixed.example", "MX", "10 mx.mixed.example"},
    {"mx.mixed.example", "A", "192.0.2.9"},
    END,
  };
  static const struct zone z = {recs, NULL, NULL};
  struct run t;
  run(&t, &z, NULL, "mixed.example", 0);
  assert_string_equal(t.hops, "");
  assert_verdict(&t, SMTPOUT_STATUS_BOUNCED, "5.1.10",
                 "among other MX records");
  done(&t);
}

static void test_nxdomain_bounces_with_5_1_2(void **state)
{
  (void)state;
  struct run t;
  run(&t, &plain_zone, NULL, "nowhere.example", 0);
  assert_string_equal(t.queries, "MX nowhere.example\n");
  assert_verdict(&t, SMTPOUT_STATUS_BOUNCED, "5.1.2",
                 "nowhere.example: no such domain (NXDOMAIN)");
  done(&t);
}

static void test_nodata_makes_the_domain_its_own_mx(void **state)
{
  (void)state;
  static const struct rec recs[] = {
    {"implicit.example", "A", "192.0.2.7"},
    {"implicit.example", "TXT", "v=spf1 -all"},
    END,
  };
  static const struct zone z = {recs, NULL, NULL};
  struct run t;
  run(&t, &z, NULL, "implicit.example", 0);
  assert_string_equal(t.queries, "MX implicit.example\n"
                                 "A implicit.example\n"
                                 "AAAA implicit.example\n");
  assert_string_equal(t.hops, "implicit.example 192.0.2.7 local "
                              "mx-insecure\n");
  assert_int_equal(smtpout_route_implicit_mx(t.r), 1);
  assert_int_equal(smtpout_route_mx_count(t.r), 1);
  assert_int_equal(smtpout_route_mx_preference(t.r, 0), 0);
  contains(t.explain, "implicit MX: implicit.example itself");
  done(&t);
}

static void test_implicit_mx_without_address_bounces(void **state)
{
  (void)state;
  static const struct rec recs[] = {
    {"empty.example", "TXT", "nothing here"},
    END,
  };
  static const struct zone z = {recs, NULL, NULL};
  struct run t;
  run(&t, &z, NULL, "empty.example", 0);
  assert_string_equal(t.hops, "");
  assert_verdict(&t, SMTPOUT_STATUS_BOUNCED, "5.4.4",
                 "empty.example: no MX record and no address");
  done(&t);
}

static void test_failed_mx_lookup_defers_and_never_uses_the_implicit_mx(
    void **state)
{
  (void)state;
  /* The domain has an address: an implicit MX would be a downgrade. */
  static const struct rec recs[] = {
    {"flaky.example", "A", "192.0.2.8"},
    END,
  };
  static const struct override servfail[] = {
    {"flaky.example", "MX", RCODE, SMTPOUT_DNSSEC_INDETERMINATE, 2},
    {NULL, NULL, 0, 0, 0},
  };
  static const struct override bogus_packet[] = {
    {"flaky.example", "MX", VERDICT, SMTPOUT_DNSSEC_BOGUS, 0},
    {NULL, NULL, 0, 0, 0},
  };
  static const struct override bogus_failed[] = {
    {"flaky.example", "MX", FAIL, SMTPOUT_DNSSEC_BOGUS, 2},
    {NULL, NULL, 0, 0, 0},
  };
  static const struct override refused[] = {
    {"flaky.example", "MX", RCODE, SMTPOUT_DNSSEC_INSECURE, 5},
    {NULL, NULL, 0, 0, 0},
  };
  const struct override *cases[] = {servfail, bogus_packet, bogus_failed,
                                    refused};
  const char *why[] = {"SERVFAIL", "DNSSEC bogus (NOERROR)",
                       "SERVFAIL (DNSSEC bogus)", "REFUSED"};
  for (size_t i = 0; i < 4; i++) {
    struct zone z = {recs, NULL, cases[i]};
    struct run t;
    run(&t, &z, NULL, "flaky.example", 0);
    assert_string_equal(t.queries, "MX flaky.example\n");
    assert_string_equal(t.hops, "");
    assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.4.3",
                   "MX lookup for flaky.example failed");
    assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.4.3", why[i]);
    assert_int_equal(smtpout_route_dnssec(t.r),
                     i == 1 || i == 2 ? SMTPOUT_DNSSEC_BOGUS
                                      : SMTPOUT_DNSSEC_INDETERMINATE);
    done(&t);
  }
}

static void test_cname_at_the_domain_is_followed(void **state)
{
  (void)state;
  static const struct rec recs[] = {
    {"alias.example", "CNAME", "real.example"},
    {"real.example", "MX", "10 mx.real.example"},
    {"mx.real.example", "A", "192.0.2.30"},
    END,
  };
  static const struct zone z = {recs, NULL, NULL};
  struct run t;
  run(&t, &z, NULL, "alias.example", 0);
  assert_string_equal(t.hops, "mx.real.example 192.0.2.30 local "
                              "mx-insecure\n");
  assert_string_equal(smtpout_route_domain(t.r), "alias.example");
  done(&t);
}

static void test_mx_names_that_are_not_host_names_are_skipped(void **state)
{
  (void)state;
  static const struct rec recs[] = {
    {"odd.example", "MX", "5 192.0.2.40"},
    {"odd.example", "MX", "6 bad_name.odd.example"},
    {"odd.example", "MX", "10 MX.Odd.Example"},
    {"odd.example", "MX", "20 mx.odd.example"},
    {"mx.odd.example", "A", "192.0.2.41"},
    {"192.0.2.40", "A", "192.0.2.40"},
    END,
  };
  static const struct zone z = {recs, NULL, NULL};
  struct run t;
  run(&t, &z, NULL, "odd.example", 0);
  /* The numeric and the underscore names are never looked up; the same
   * host twice (in another case) is tried once, at its best
   * preference. */
  assert_string_equal(t.queries, "MX odd.example\n"
                                 "A mx.odd.example\n"
                                 "AAAA mx.odd.example\n");
  assert_string_equal(t.hops, "mx.odd.example 192.0.2.41 local "
                              "mx-insecure\n");
  assert_int_equal(smtpout_route_mx_count(t.r), 1);
  assert_int_equal(smtpout_route_mx_preference(t.r, 0), 10);
  done(&t);

  static const struct rec none[] = {
    {"odd.example", "MX", "5 192.0.2.40"},
    END,
  };
  static const struct zone z2 = {none, NULL, NULL};
  run(&t, &z2, NULL, "odd.example", 0);
  assert_verdict(&t, SMTPOUT_STATUS_BOUNCED, "5.4.4",
                 "no MX record names a host (\"192.0.2.40\"");
  done(&t);
}

static void test_mx_host_without_address(void **state)
{
  (void)state;
  static const struct rec recs[] = {
    {"gone.example", "MX", "10 mx.gone.example"},
    {"gone.example", "MX", "20 mx2.gone.example"},
    {"mx2.gone.example", "TXT", "exists, no address"},
    END,
  };
  static const struct zone z = {recs, NULL, NULL};
  struct run t;
  run(&t, &z, NULL, "gone.example", 0);
  assert_string_equal(t.hops, "");
  /* Both hosts are gone for good: a bounce. */
  assert_verdict(&t, SMTPOUT_STATUS_BOUNCED, "5.4.4",
                 "MX host mx2.gone.example has no address");
  done(&t);

  /* One lookup that failed makes it temporary. */
  static const struct override ov[] = {
    {"mx.gone.example", "AAAA", RCODE, SMTPOUT_DNSSEC_INDETERMINATE, 2},
    {NULL, NULL, 0, 0, 0},
  };
  static const struct zone z2 = {recs, NULL, ov};
  run(&t, &z2, NULL, "gone.example", 0);
  assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.4.4",
                 "MX host mx2.gone.example has no address");
  done(&t);
}

static void test_a_failed_family_leaves_the_other(void **state)
{
  (void)state;
  static const struct override ov[] = {
    {"mx2.example.org", "A", RCODE, SMTPOUT_DNSSEC_INDETERMINATE, 2},
    {NULL, NULL, 0, 0, 0},
  };
  static const struct zone z = {plain, NULL, ov};
  struct run t;
  run(&t, &z, NULL, "example.org", 0);
  assert_string_equal(t.hops,
                      "mx1.example.org 192.0.2.1 local mx-insecure\n"
                      "mx2.example.org 2001:db8::2 local mx-insecure\n");
  done(&t);
}

static void test_unspecified_addresses_are_never_hops(void **state)
{
  (void)state;
  static const struct rec recs[] = {
    {"zero.example", "A", "0.0.0.0"},
    {"zero.example", "AAAA", "::"},
    {"zero.example", "A", "192.0.2.50"},
    {"zero.example", "A", "192.0.2.50"},
    END,
  };
  static const struct zone z = {recs, NULL, NULL};
  struct run t;
  run(&t, &z, NULL, "zero.example", 0);
  assert_string_equal(t.hops, "zero.example 192.0.2.50 local mx-insecure\n");
  done(&t);
}

/* ---- addresses: families and limits ---- */

static const struct rec dual[] = {
  {"dual.example", "MX", "10 mx.dual.example"},
  {"mx.dual.example", "A", "192.0.2.61"},
  {"mx.dual.example", "A", "192.0.2.62"},
  {"mx.dual.example", "A", "192.0.2.63"},
  {"mx.dual.example", "AAAA", "2001:db8::61"},
  {"mx.dual.example", "AAAA", "2001:db8::62"},
  END,
};
static const struct zone dual_zone = {dual, NULL, NULL};

static int family_of(const char *address)
{
  return strchr(address, ':') ? 6 : 4;
}

static int count_lines(const char *s)
{
  int n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

static void test_families_are_interleaved(void **state)
{
  (void)state;
  const char *ini[] = {
    "[queue.outbound]\naddress-preference = ipv6\nmx-address-limit = 0\n",
    "[queue.outbound]\naddress-preference = ipv4\nmx-address-limit = 0\n",
  };
  for (int k = 0; k < 2; k++) {
    struct run t;
    run(&t, &dual_zone, ini[k], "dual.example", 0);
    /* v6 v4 v6 v4 v4, or v4 v6 v4 v6 v4 */
    int want[2][5] = {{6, 4, 6, 4, 4}, {4, 6, 4, 6, 4}};
    const char *line = t.hops;
    for (int i = 0; i < 5; i++) {
      assert_non_null(line);
      const char *addr = strchr(line, ' ') + 1;
      const char *end = strchr(addr, ' ');
      char a[64];
      snprintf(a, sizeof(a), "%.*s", (int)(end - addr), addr);
      assert_int_equal(family_of(a), want[k][i]);
      line = strchr(line, '\n') + 1;
    }
    assert_string_equal(line, "");
    done(&t);
  }
}

static void test_address_limit_keeps_both_families(void **state)
{
  (void)state;
  /* The default limit is 5; with 2, the first two tries are one of each
   * family, whatever the seed picks first. */
  for (uint64_t seed = 0; seed < 4; seed++) {
    struct run t;
    memset(&t, 0, sizeof(t));
    t.zone = &dual_zone;
    smtpout_config *c = config("[queue.outbound]\nmx-address-limit = 2\n");
    assert_int_equal(smtpout_route_new(&t.r, c, "dual.example", 0, 0, 0), 0);
    smtpout_config_unref(c);
    smtpout_route_set_seed(t.r, seed);
    drive(&t);
    char first[64], second[64];
    assert_int_equal(sscanf(t.hops, "%*s %63s %*s %*s\n%*s %63s", first,
                            second), 2);
    assert_int_not_equal(family_of(first), family_of(second));
    assert_int_equal(count_lines(t.hops), 2);
    assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.4.1",
                   "(mx-address-limit reached)");
    done(&t);
  }
}

static void test_address_limit_counts_across_mx_hosts(void **state)
{
  (void)state;
  struct run t;
  run(&t, &plain_zone, "[queue.outbound]\nmx-address-limit = 2\n",
      "example.org", 0);
  assert_int_equal(count_lines(t.hops), 2);
  assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.4.1",
                 "(mx-address-limit reached)");
  done(&t);
}

static void test_session_limit_counts_sessions_past_the_handshake(
    void **state)
{
  (void)state;
  static const int outcomes[] = {
    SMTPOUT_HOP_SESSION_FAILED, SMTPOUT_HOP_CONNECT_FAILED,
    SMTPOUT_HOP_HOST_FAILED, SMTPOUT_HOP_SESSION_FAILED,
    SMTPOUT_HOP_DONE};
  struct run t;
  run_with(&t, &dual_zone,
           "[queue.outbound]\nmx-session-limit = 2\nmx-address-limit = 0\n",
           "dual.example", outcomes, 5);
  /* Two sessions failed after the handshake: the fifth address is not
   * tried. */
  assert_int_equal(t.iout, 4);
  assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.4.2",
                 "(mx-session-limit reached)");
  done(&t);
}

/* ---- DANE ---- */

#define EE_HASH                                                               \
  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const struct rec signed_recs[] = {
  {"secure.example", "MX", "10 mx1.secure.example"},
  {"secure.example", "MX", "20 mx2.secure.example"},
  {"mx1.secure.example", "A", "192.0.2.101"},
  {"mx1.secure.example", "AAAA", "2001:db8::101"},
  {"_25._tcp.mx1.secure.example", "TLSA", "3 1 1 " EE_HASH},
  {"_25._tcp.mx1.secure.example", "TLSA", "2 0 1 " EE_HASH},
  {"mx2.secure.example", "A", "192.0.2.102"},
  /* a host in an unsigned zone, named by a secure MX */
  {"secure2.example", "MX", "10 mx.unsigned.example"},
  {"mx.unsigned.example", "A", "192.0.2.103"},
  {"_25._tcp.mx.unsigned.example", "TLSA", "3 1 1 " EE_HASH},
  /* only PKIX records: none usable for SMTP */
  {"pkix.example", "MX", "10 mx.pkix.example"},
  {"mx.pkix.example", "A", "192.0.2.104"},
  {"_25._tcp.mx.pkix.example", "TLSA", "1 1 1 " EE_HASH},
  {"_25._tcp.mx.pkix.example", "TLSA", "0 0 1 " EE_HASH},
  /* an MX name that is a CNAME, TLSA at the target */
  {"alias.example", "MX", "10 mx.alias.example"},
  {"mx.alias.example", "CNAME", "mx1.secure.example"},
  /* ... and one whose target has none, but the alias has */
  {"alias2.example", "MX", "10 mx.alias2.example"},
  {"mx.alias2.example", "CNAME", "mx2.secure.example"},
  {"_25._tcp.mx.alias2.example", "TLSA", "3 1 1 " EE_HASH},
  /* an unsigned domain whose host is in a signed zone */
  {"unsigned.example", "MX", "10 mx1.secure.example"},
  /* a secure implicit MX */
  {"solo.secure.example", "A", "192.0.2.105"},
  {"_25._tcp.solo.secure.example", "TLSA", "3 1 1 " EE_HASH},
  /* TLSA records in an unsigned subzone of a signed host */
  {"odd.secure.example", "MX", "10 mx.odd.secure.example"},
  {"mx.odd.secure.example", "A", "192.0.2.106"},
  {"_25._tcp.mx.odd.secure.example", "TLSA", "3 1 1 " EE_HASH},
  END,
};

static const struct zone_verdict signed_verdicts[] = {
  {"secure.example", SMTPOUT_DNSSEC_SECURE},
  {"secure2.example", SMTPOUT_DNSSEC_SECURE},
  {"pkix.example", SMTPOUT_DNSSEC_SECURE},
  {"alias.example", SMTPOUT_DNSSEC_SECURE},
  {"alias2.example", SMTPOUT_DNSSEC_SECURE},
  {"_tcp.mx.odd.secure.example", SMTPOUT_DNSSEC_INSECURE},
  {NULL, 0},
};
static const struct zone signed_zone = {signed_recs, signed_verdicts, NULL};

static void test_secure_usable_tlsa_requires_dane(void **state)
{
  (void)state;
  static const int outcomes[] = {SMTPOUT_HOP_DONE};
  struct run t;
  run_with(&t, &signed_zone, "[queue.outbound]\naddress-preference = ipv4\n",
           "secure.example", outcomes, 1);
  assert_string_equal(t.queries, "MX secure.example\n"
                                 "A mx1.secure.example\n"
                                 "AAAA mx1.secure.example\n"
                                 "TLSA _25._tcp.mx1.secure.example\n");
  assert_string_equal(t.hops, "mx1.secure.example 192.0.2.101 dane usable\n");
  contains(t.explain, "MX RRset secure");
  contains(t.explain, "TLSA _25._tcp.mx1.secure.example: secure, 2 records "
                      "(3 1 1, 2 0 1), 2 usable");
  contains(t.explain, "TLS requirement: dane: STARTTLS and a TLSA match are "
                      "mandatory, SNI mx1.secure.example");
  contains(t.explain, "precedence rank 2");
  done(&t);

  /* What the hop carries: the records and the DANE-TA names. */
  memset(&t, 0, sizeof(t));
  t.zone = &signed_zone;
  assert_int_equal(smtpout_route_new(&t.r, NULL, "secure.example", 0, 0, 0), 0);
  const smtpout_hop *h = NULL;
  while (smtpout_route_want(t.r) == SMTPOUT_ROUTE_WANT_REQUEST) {
    const smtpout_request *q;
    smtpout_route_next_request(t.r, &q, 0);
    answer(&t, q);
  }
  assert_int_equal(smtpout_route_next_hop(t.r, &h, 0), 1);
  assert_int_equal(smtpout_hop_tls_requirement(h),
                   SMTPOUT_TLS_REQUIREMENT_DANE);
  assert_string_equal(smtpout_hop_tlsa_base(h), "mx1.secure.example");
  assert_int_equal(smtpout_hop_tlsa_count(h), 2);
  int u, s, m;
  const uint8_t *data;
  size_t len;
  assert_int_equal(smtpout_hop_tlsa(h, 0, &u, &s, &m, &data, &len), 0);
  assert_int_equal(u * 100 + s * 10 + m, 311);
  assert_int_equal(len, 32);
  assert_int_equal(data[0], 0x01);
  assert_int_equal(data[31], 0xef);
  assert_int_equal(smtpout_hop_tlsa(h, 2, NULL, NULL, NULL, NULL, NULL),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_hop_dane_name_count(h), 2);
  assert_string_equal(smtpout_hop_dane_name(h, 0), "mx1.secure.example");
  assert_string_equal(smtpout_hop_dane_name(h, 1), "secure.example");
  assert_null(smtpout_hop_dane_name(h, 2));
  const struct dns_tlsa *records;
  const char *const *names;
  size_t nrec, nnames;
  route_hop_dane(h, &records, &nrec, &names, &nnames);
  assert_int_equal(nrec, 2);
  assert_int_equal(records[1].usage, 2);
  assert_int_equal(nnames, 2);
  assert_string_equal(names[1], "secure.example");
  assert_int_equal(smtpout_hop_port(h), 25);
  assert_int_equal(smtpout_hop_preference(h), 10);
  smtpout_route_free(t.r);
}

static void test_tlsa_name_follows_the_port(void **state)
{
  (void)state;
  static const struct rec recs[] = {
    {"port.example", "MX", "10 mx.port.example"},
    {"mx.port.example", "A", "192.0.2.110"},
    {"_2525._tcp.mx.port.example", "TLSA", "3 1 1 " EE_HASH},
    END,
  };
  static const struct zone_verdict v[] = {
    {"port.example", SMTPOUT_DNSSEC_SECURE}, {NULL, 0}};
  static const struct zone z = {recs, v, NULL};
  struct run t;
  run(&t, &z, "[queue.outbound]\nsmtp-port = 2525\n", "port.example", 0);
  contains(t.queries, "TLSA _2525._tcp.mx.port.example\n");
  assert_string_equal(t.hops, "mx.port.example 192.0.2.110 dane usable\n");
  contains(t.explain, "port 2525");
  done(&t);
}

static void test_secure_unusable_tlsa_requires_encryption(void **state)
{
  (void)state;
  struct run t;
  run(&t, &signed_zone, NULL, "pkix.example", 0);
  assert_string_equal(t.hops,
                      "mx.pkix.example 192.0.2.104 encrypt unusable\n");
  contains(t.explain, "0 usable");
  contains(t.explain, "TLS requirement: encrypt: STARTTLS is mandatory");
  done(&t);
}

static void test_insecure_mx_gets_no_tlsa_lookup(void **state)
{
  (void)state;
  struct run t;
  run(&t, &signed_zone, NULL, "unsigned.example", 0);
  assert_true(strstr(t.queries, "TLSA") == NULL);
  contains(t.hops, "mx1.secure.example 192.0.2.101 local mx-insecure\n");
  contains(t.explain, "DANE: not applicable: the MX RRset is insecure (RFC "
                      "7672 2.2.1)");
  contains(t.explain, "TLS requirement: local: starttls = optional "
                      "(built-in default)");
  done(&t);
}

static void test_insecure_host_gets_no_tlsa_lookup(void **state)
{
  (void)state;
  struct run t;
  run(&t, &signed_zone, NULL, "secure2.example", 0);
  assert_true(strstr(t.queries, "TLSA") == NULL);
  assert_string_equal(t.hops,
                      "mx.unsigned.example 192.0.2.103 local host-insecure\n");
  done(&t);
}

static void test_cname_mx_target_uses_the_expanded_tlsa_base(void **state)
{
  (void)state;
  struct run t;
  memset(&t, 0, sizeof(t));
  t.zone = &signed_zone;
  smtpout_config *c = config("[queue.outbound]\naddress-preference = ipv4\n");
  assert_int_equal(smtpout_route_new(&t.r, c, "alias.example", 0, 0, 0), 0);
  smtpout_config_unref(c);
  while (smtpout_route_want(t.r) == SMTPOUT_ROUTE_WANT_REQUEST) {
    const smtpout_request *q;
    smtpout_route_next_request(t.r, &q, 0);
    answer(&t, q);
  }
  assert_string_equal(t.queries, "MX alias.example\n"
                                 "A mx.alias.example\n"
                                 "AAAA mx.alias.example\n"
                                 "TLSA _25._tcp.mx1.secure.example\n");
  const smtpout_hop *h;
  assert_int_equal(smtpout_route_next_hop(t.r, &h, 0), 1);
  /* The hop is named as the MX record names it; TLSA base, SNI and the
   * first DANE-TA name are the expanded name (RFC 7672 2.2.3). */
  assert_string_equal(smtpout_hop_mx(h), "mx.alias.example");
  assert_string_equal(smtpout_hop_address(h), "192.0.2.101");
  assert_string_equal(smtpout_hop_tlsa_base(h), "mx1.secure.example");
  assert_int_equal(smtpout_hop_dane_name_count(h), 3);
  assert_string_equal(smtpout_hop_dane_name(h, 0), "mx1.secure.example");
  assert_string_equal(smtpout_hop_dane_name(h, 1), "mx.alias.example");
  assert_string_equal(smtpout_hop_dane_name(h, 2), "alias.example");
  contains(smtpout_hop_explain(h),
           "CNAME: mx.alias.example is an alias of mx1.secure.example");
  smtpout_route_free(t.r);
}

static void test_tlsa_falls_back_to_the_unexpanded_name(void **state)
{
  (void)state;
  struct run t;
  run(&t, &signed_zone, NULL, "alias2.example", 0);
  assert_string_equal(t.queries, "MX alias2.example\n"
                                 "A mx.alias2.example\n"
                                 "AAAA mx.alias2.example\n"
                                 "TLSA _25._tcp.mx2.secure.example\n"
                                 "TLSA _25._tcp.mx.alias2.example\n");
  assert_string_equal(t.hops, "mx.alias2.example 192.0.2.102 dane usable\n");
  contains(t.explain, "SNI mx.alias2.example");
  done(&t);
}

static void test_secure_implicit_mx_gets_dane(void **state)
{
  (void)state;
  struct run t;
  run(&t, &signed_zone, NULL, "solo.secure.example", 0);
  assert_string_equal(t.hops,
                      "solo.secure.example 192.0.2.105 dane usable\n");
  contains(t.explain, "the NODATA answer is secure");
  done(&t);
}

static void test_insecure_tlsa_is_ignored(void **state)
{
  (void)state;
  struct run t;
  run(&t, &signed_zone, NULL, "odd.secure.example", 0);
  contains(t.queries, "TLSA _25._tcp.mx.odd.secure.example\n");
  assert_string_equal(t.hops, "mx.odd.secure.example 192.0.2.106 local "
                              "tlsa-insecure\n");
  done(&t);
}

static void test_no_tlsa_leaves_the_local_policy(void **state)
{
  (void)state;
  static const int outcomes[] = {SMTPOUT_HOP_CONNECT_FAILED,
                                 SMTPOUT_HOP_CONNECT_FAILED,
                                 SMTPOUT_HOP_CONNECT_FAILED};
  struct run t;
  run_with(&t, &signed_zone, NULL, "secure.example", outcomes, 3);
  contains(t.queries, "TLSA _25._tcp.mx2.secure.example\n");
  contains(t.hops, "mx2.secure.example 192.0.2.102 local no-tlsa\n");
  contains(t.explain, "no TLSA records (secure NXDOMAIN denial for "
                      "_25._tcp.mx2.secure.example)");
  done(&t);
}

static void test_failed_tlsa_lookup_skips_the_host(void **state)
{
  (void)state;
  const struct override bogus[] = {
    {"_25._tcp.mx1.secure.example", "TLSA", RCODE, SMTPOUT_DNSSEC_BOGUS, 2},
    {NULL, NULL, 0, 0, 0},
  };
  const struct override servfail[] = {
    {"_25._tcp.mx1.secure.example", "TLSA", FAIL,
     SMTPOUT_DNSSEC_INDETERMINATE, 2},
    {NULL, NULL, 0, 0, 0},
  };
  const struct override malformed[] = {
    {"_25._tcp.mx1.secure.example", "TLSA", MALFORMED,
     SMTPOUT_DNSSEC_SECURE, 0},
    {NULL, NULL, 0, 0, 0},
  };
  const struct override *cases[] = {bogus, servfail, malformed};
  for (size_t i = 0; i < 3; i++) {
    struct zone z = {signed_recs, signed_verdicts, cases[i]};
    struct run t;
    run(&t, &z, NULL, "secure.example", 0);
    /* mx1 is never contacted; mx2 (no TLSA) is. */
    assert_string_equal(t.hops,
                        "mx2.secure.example 192.0.2.102 local no-tlsa\n");
    assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.4.1",
                   "mx2.secure.example[192.0.2.102]");
    done(&t);
  }
  /* When it was the only host: 4.7.5. */
  struct zone z = {signed_recs, signed_verdicts, bogus};
  struct run t;
  run(&t, &z, NULL, "alias.example", 0);
  assert_string_equal(t.hops, "");
  assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.7.5",
                 "mx.alias.example: TLSA lookup for "
                 "_25._tcp.mx1.secure.example failed: DNSSEC bogus");
  contains(smtpout_route_text(t.r), "the host is skipped");
  done(&t);
}

static void test_tlsa_that_never_comes_expires(void **state)
{
  (void)state;
  const struct override silent[] = {
    {"_25._tcp.mx1.secure.example", "TLSA", SILENT, 0, 0},
    {NULL, NULL, 0, 0, 0},
  };
  struct zone z = {signed_recs, signed_verdicts, silent};
  struct run t;
  memset(&t, 0, sizeof(t));
  t.zone = &z;
  t.now = 5000;
  smtpout_config *c = config("[queue.outbound.dns]\ntimeout = 3s\n");
  assert_int_equal(smtpout_route_new(&t.r, c, "alias.example", 0, t.now, 0), 0);
  smtpout_config_unref(c);
  assert_int_equal(drive(&t), SMTPOUT_ROUTE_WAIT);
  assert_int_equal(t.nsilent, 1);
  assert_int_equal(smtpout_route_expiry(t.r), 8000);
  assert_int_equal(smtpout_route_handle_expiry(t.r, 7999), 0);
  assert_int_equal(smtpout_route_want(t.r), SMTPOUT_ROUTE_WAIT);
  assert_int_equal(smtpout_route_handle_expiry(t.r, 8000), 0);
  assert_int_equal(smtpout_route_expiry(t.r), SMTPOUT_NO_EXPIRY);
  assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.7.5",
                 "failed: timed out after 3000 ms");
  /* The late answer is refused, and changes nothing. */
  static const uint8_t late[12] = {0x42, 0x42, 0x81, 0x80};
  assert_int_equal(smtpout_route_dns_answer(t.r, t.silent[0],
                                            SMTPOUT_DNSSEC_SECURE, late,
                                            sizeof(late), 9000),
                   SMTPOUT_ERR_INVALID_STATE);
  assert_int_equal(smtpout_route_status(t.r), SMTPOUT_STATUS_DEFERRED);
  done(&t);
}

static void test_dane_require_defers_where_dane_cannot_authenticate(
    void **state)
{
  (void)state;
  const char *ini = "[queue.outbound.tls]\ndane = require\n"
                    "[queue.outbound]\naddress-preference = ipv4\n";
  struct run t;
  run(&t, &signed_zone, ini, "unsigned.example", 0);
  assert_string_equal(t.hops, "");
  assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.7.5",
                 "mx1.secure.example: dane = require, but DANE cannot "
                 "authenticate it: not applicable: the MX RRset is "
                 "insecure");
  done(&t);
  /* Unusable records are not enough either. */
  run(&t, &signed_zone, ini, "pkix.example", 0);
  assert_string_equal(t.hops, "");
  assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.7.5", "0 usable");
  done(&t);
  /* A secure usable host is used; the one without TLSA is skipped. */
  run(&t, &signed_zone, ini, "secure.example", 0);
  assert_string_equal(t.hops,
                      "mx1.secure.example 192.0.2.101 dane usable\n"
                      "mx1.secure.example 2001:db8::101 dane usable\n");
  assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.7.5",
                 "mx2.secure.example: dane = require");
  done(&t);
  /* An address literal has no DNS to prove anything. */
  run(&t, &signed_zone, ini, "[192.0.2.1]", 0);
  assert_string_equal(t.hops, "");
  assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.7.5", "address literal");
  done(&t);
}

static void test_dane_disable_asks_no_tlsa(void **state)
{
  (void)state;
  struct run t;
  run(&t, &signed_zone, "[queue.outbound.tls]\ndane = disable\n",
      "secure.example", 0);
  assert_true(strstr(t.queries, "TLSA") == NULL);
  contains(t.hops, "mx1.secure.example 192.0.2.101 local disabled\n");
  contains(t.explain, "dane = disable ([queue.outbound.tls] at t.ini:2)");
  done(&t);
}

static void test_dane_knob_per_destination_and_explain(void **state)
{
  (void)state;
  const char *ini = "[queue.outbound.tls]\n"
                    "starttls = disable\n"
                    "allow-invalid-certs = true\n"
                    "[destination \"legacy\"]\n"
                    "mx = mx1.secure.example\n"
                    "dane = disable\n";
  static const int outcomes[] = {SMTPOUT_HOP_CONNECT_FAILED,
                                 SMTPOUT_HOP_CONNECT_FAILED,
                                 SMTPOUT_HOP_CONNECT_FAILED};
  struct run t;
  run_with(&t, &signed_zone, ini, "secure.example", outcomes, 3);
  /* The exact MX rule turns DANE off for mx1 only. */
  assert_string_equal(t.queries, "MX secure.example\n"
                                 "A mx1.secure.example\n"
                                 "AAAA mx1.secure.example\n"
                                 "A mx2.secure.example\n"
                                 "AAAA mx2.secure.example\n"
                                 "TLSA _25._tcp.mx2.secure.example\n");
  contains(t.hops, "mx1.secure.example 192.0.2.101 local disabled\n");
  contains(t.hops, "mx2.secure.example 192.0.2.102 local no-tlsa\n");
  done(&t);

  /* DANE overrides a local starttls = disable and allow-invalid-certs =
   * true, and the explanation says so. */
  static const int first_done[] = {SMTPOUT_HOP_DONE};
  run_with(&t, &signed_zone,
           "[queue.outbound.tls]\nstarttls = disable\nallow-invalid-certs = "
           "true\n", "secure.example", first_done, 1);
  contains(t.hops, "mx1.secure.example ");
  contains(t.hops, " dane usable\n");
  contains(t.explain, "dane = optional (built-in default)");
  contains(t.explain, "overridden for this hop: starttls = disable "
                      "([queue.outbound.tls] at t.ini:2), allow-invalid-certs "
                      "= true ([queue.outbound.tls] at t.ini:3)");
  done(&t);
}

static void test_dane_is_unavailable_without_dnssec_verdicts(void **state)
{
  (void)state;
  struct run t;
  run(&t, &signed_zone, NULL, "secure.example", SMTPOUT_ROUTE_NO_DNSSEC);
  assert_true(strstr(t.queries, "TLSA") == NULL);
  contains(t.hops, "mx1.secure.example 192.0.2.101 local unavailable\n");
  contains(t.explain, "DANE: unavailable: the resolver gives no DNSSEC "
                      "verdicts");
  done(&t);
  run(&t, &signed_zone, "[queue.outbound.dns]\ndnssec = off\n",
      "secure.example", 0);
  contains(t.hops, "mx1.secure.example 192.0.2.101 local unavailable\n");
  done(&t);
}

/* ---- the literal, the answers, the API ---- */

static void test_address_literal_is_one_hop_without_dns(void **state)
{
  (void)state;
  const char *lit[] = {"[192.0.2.1]", "[IPv6:2001:DB8::1]"};
  const char *addr[] = {"192.0.2.1", "2001:db8::1"};
  for (int i = 0; i < 2; i++) {
    struct run t;
    run(&t, &plain_zone, NULL, lit[i], 0);
    assert_string_equal(t.queries, "");
    char want[128];
    snprintf(want, sizeof(want), "%s %s local address-literal\n", addr[i],
             addr[i]);
    assert_string_equal(t.hops, want);
    assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.4.1", "connect to");
    assert_int_equal(smtpout_route_mx_count(t.r), 0);
    assert_int_equal(smtpout_route_dnssec(t.r), -1);
    done(&t);
  }
}

static void test_answers_must_answer_the_question(void **state)
{
  (void)state;
  const int actions[] = {WRONG_QUESTION, MALFORMED, TRUNCATED};
  const char *why[] = {"does not answer the question", "malformed response",
                       "truncated response"};
  for (int i = 0; i < 3; i++) {
    struct override ov[] = {
      {"example.org", "MX", actions[i], SMTPOUT_DNSSEC_INSECURE, 0},
      {NULL, NULL, 0, 0, 0},
    };
    struct zone z = {plain, NULL, ov};
    struct run t;
    run(&t, &z, NULL, "example.org", 0);
    assert_string_equal(t.hops, "");
    assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.4.3", why[i]);
    done(&t);
  }
}

static void test_api_refuses_what_it_cannot_do(void **state)
{
  (void)state;
  smtpout_route *r = NULL;
  assert_int_equal(smtpout_route_new(NULL, NULL, "a.example", 0, 0, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_route_new(&r, NULL, NULL, 0, 0, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_route_new(&r, NULL, "a.example", 0x80, 0, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_route_new(&r, NULL, "bad name.example", 0, 0, 0),
                   SMTPOUT_ERR_BAD_NAME);
  assert_null(r);
  /* With MTA-STS off, the MX question is the only one. */
  smtpout_config *nosts = config("[queue.outbound.tls]\nmta-sts = disable\n");
  assert_int_equal(smtpout_route_new(&r, nosts, "BÜCHER.example.", 0, 0, 0),
                   0);
  smtpout_config_unref(nosts);
  assert_string_equal(smtpout_route_domain(r), "xn--bcher-kva.example");
  assert_int_equal(smtpout_route_want(r), SMTPOUT_ROUTE_WANT_REQUEST);
  /* No hop before the MX answer; unknown ids are refused. */
  const smtpout_hop *h = (const smtpout_hop *)1;
  assert_int_equal(smtpout_route_next_hop(r, &h, 0), 0);
  assert_null(h);
  assert_int_equal(smtpout_route_dns_failed(r, 1, SMTPOUT_DNSSEC_BOGUS, 2,
                                            0),
                   SMTPOUT_ERR_INVALID_STATE); /* not taken yet */
  const smtpout_request *q;
  assert_int_equal(smtpout_route_next_request(r, &q, 100), 1);
  assert_string_equal(smtpout_request_qname(q), "xn--bcher-kva.example.");
  assert_int_equal(smtpout_request_qtype(q), 15);
  assert_int_equal(smtpout_request_timeout_ms(q), 10000);
  assert_int_equal(smtpout_route_expiry(r), 10100);
  assert_int_equal(smtpout_route_next_request(r, &q, 0), 0);
  assert_null(q);
  assert_int_equal(smtpout_route_want(r), SMTPOUT_ROUTE_WAIT);
  assert_int_equal(smtpout_route_dns_answer(r, 7, 0, NULL, 0, 0),
                   SMTPOUT_ERR_INVALID_STATE);
  assert_int_equal(smtpout_route_dns_answer(r, 1, 4, NULL, 0, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_route_dns_answer(r, 1, 0, NULL, 3, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  static uint8_t big[65536];
  assert_int_equal(smtpout_route_dns_answer(r, 1, 0, big, sizeof(big), 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_route_dns_failed(r, 1, -1, 0, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_route_hop_done(r, NULL, 0, NULL, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  /* An empty packet is a failed lookup, not an error. */
  assert_int_equal(smtpout_route_dns_answer(r, 1, 0, NULL, 0, 0), 0);
  assert_int_equal(smtpout_route_status(r), SMTPOUT_STATUS_DEFERRED);
  assert_int_equal(smtpout_route_dns_answer(r, 1, 0, NULL, 0, 0),
                   SMTPOUT_ERR_INVALID_STATE);
  smtpout_route_free(r);

  /* NULL everywhere. */
  smtpout_route_free(NULL);
  assert_int_equal(smtpout_route_want(NULL), SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_route_set_seed(NULL, 1),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_route_next_request(NULL, &q, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_route_handle_expiry(NULL, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_route_expiry(NULL), SMTPOUT_NO_EXPIRY);
  assert_int_equal(smtpout_route_status(NULL), 0);
  assert_string_equal(smtpout_route_enhanced(NULL), "");
  assert_string_equal(smtpout_route_text(NULL), "");
  assert_null(smtpout_route_domain(NULL));
  assert_int_equal(smtpout_route_dnssec(NULL), -1);
  assert_null(smtpout_route_mx_name(NULL, 0));
  assert_int_equal(smtpout_route_mx_preference(NULL, 0), -1);
  assert_int_equal(smtpout_request_id(NULL), 0);
  assert_null(smtpout_request_qname(NULL));
  assert_null(smtpout_hop_mx(NULL));
  assert_null(smtpout_hop_address(NULL));
  assert_null(smtpout_hop_tlsa_base(NULL));
  assert_null(smtpout_hop_explain(NULL));
  assert_int_equal(smtpout_hop_tlsa_count(NULL), 0);
  assert_int_equal(smtpout_hop_port(NULL), 0);
  assert_null(smtpout_dnssec_name(4));
  assert_string_equal(smtpout_dnssec_name(SMTPOUT_DNSSEC_BOGUS), "bogus");
  assert_null(smtpout_dane_status_name(9));
  assert_string_equal(smtpout_dane_status_name(8), "unusable");
  assert_null(smtpout_tls_requirement_name(5));
  assert_string_equal(smtpout_tls_requirement_name(3), "pkix");
  assert_null(smtpout_hop_outcome_name(6));
  assert_string_equal(smtpout_hop_outcome_name(5), "requiretls-not-offered");
  assert_null(smtpout_tls_source_name(4));
  assert_string_equal(smtpout_tls_source_name(3), "mta-sts");
  assert_string_equal(smtpout_hop_outcome_name(4), "session-failed");
  assert_null(smtpout_dane_name(3));
  assert_string_equal(smtpout_dane_name(SMTPOUT_DANE_REQUIRE), "require");
}

static void test_hop_done_takes_only_the_hop_out(void **state)
{
  (void)state;
  struct run t;
  memset(&t, 0, sizeof(t));
  t.zone = &plain_zone;
  assert_int_equal(smtpout_route_new(&t.r, NULL, "example.org", 0, 0, 0), 0);
  while (smtpout_route_want(t.r) == SMTPOUT_ROUTE_WANT_REQUEST) {
    const smtpout_request *q;
    smtpout_route_next_request(t.r, &q, 0);
    answer(&t, q);
  }
  const smtpout_hop *h, *again;
  assert_int_equal(smtpout_route_next_hop(t.r, &h, 0), 1);
  /* One hop at a time. */
  assert_int_equal(smtpout_route_want(t.r), SMTPOUT_ROUTE_WAIT);
  assert_int_equal(smtpout_route_next_hop(t.r, &again, 0), 0);
  assert_int_equal(smtpout_route_hop_done(t.r, h, 9, NULL, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  smtpout_route *other;
  assert_int_equal(smtpout_route_new(&other, NULL, "[192.0.2.1]", 0, 0, 0), 0);
  const smtpout_hop *oh;
  assert_int_equal(smtpout_route_next_hop(other, &oh, 0), 1);
  assert_int_equal(smtpout_route_hop_done(t.r, oh, SMTPOUT_HOP_DONE, NULL, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_route_hop_done(t.r, h, SMTPOUT_HOP_DONE, NULL, 0),
                   0);
  assert_int_equal(smtpout_route_hop_done(t.r, h, SMTPOUT_HOP_DONE, NULL, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  smtpout_route_free(other);
  smtpout_route_free(t.r);
}

/* ---- hostile resolvers ---- */

static uint32_t lcg(uint32_t *s)
{
  *s = *s * 1103515245u + 12345u;
  return *s >> 8;
}

/* Every question answered with a mutation of the right answer, with any
 * verdict: the route always ends, within its bounds, without crashing
 * (ASan and UBSan watch), and never hands out more hops than its limit. */
static void test_hostile_answers_never_break_the_route(void **state)
{
  (void)state;
  uint32_t seed = 1;
  static struct dnsenc p;
  int total_hops = 0, dane_hops = 0, bounced = 0;
  for (int round = 0; round < 3000; round++) {
    smtpout_route *r;
    assert_int_equal(smtpout_route_new(&r, NULL, round % 2 ? "secure.example"
                                                           : "alias.example",
                                       0, 0, 0),
                     0);
    int hops = 0, steps = 0;
    for (; steps < 200; steps++) {
      int want = smtpout_route_want(r);
      if (want == SMTPOUT_ROUTE_WANT_REQUEST) {
        const smtpout_request *q;
        assert_int_equal(smtpout_route_next_request(r, &q, 0), 1);
        if (smtpout_request_kind(q) == SMTPOUT_REQUEST_CACHE_GET) {
          assert_int_equal(smtpout_route_cache_answer(
                               r, smtpout_request_id(q), NULL, 0, 0), 0);
          continue;
        }
        char qname[300];
        snprintf(qname, sizeof(qname), "%s", smtpout_request_qname(q));
        qname[strlen(qname) - 1] = '\0';
        build_answer(&p, signed_recs, qname, smtpout_request_qtype(q), -1, 0);
        /* Half the answers intact, the rest with a few octets changed
         * or cut short; verdicts mostly secure, so that every stage is
         * reached. */
        if (lcg(&seed) % 2) {
          int flips = 1 + (int)(lcg(&seed) % 3);
          for (int f = 0; f < flips; f++)
            p.b[lcg(&seed) % p.n] = (uint8_t)lcg(&seed);
          if (lcg(&seed) % 4 == 0)
            p.n = lcg(&seed) % (p.n + 1);
        }
        int verdict = lcg(&seed) % 4 ? SMTPOUT_DNSSEC_SECURE
                                     : (int)(lcg(&seed) % 4);
        assert_int_equal(smtpout_route_dns_answer(r, smtpout_request_id(q),
                                                  verdict, p.b, p.n, 0),
                         0);
      } else if (want == SMTPOUT_ROUTE_WANT_HOP) {
        const smtpout_hop *h;
        assert_int_equal(smtpout_route_next_hop(r, &h, 0), 1);
        hops++;
        dane_hops += smtpout_hop_tls_requirement(h) ==
                     SMTPOUT_TLS_REQUIREMENT_DANE;
        assert_non_null(smtpout_hop_explain(h));
        assert_int_equal(smtpout_route_hop_done(r, h, (int)(lcg(&seed) % 5),
                                                "x", 0),
                         0);
      } else {
        break;
      }
    }
    assert_int_equal(smtpout_route_want(r), SMTPOUT_ROUTE_DONE);
    assert_true(hops <= 5);
    total_hops += hops;
    bounced += smtpout_route_status(r) == SMTPOUT_STATUS_BOUNCED;
    smtpout_route_free(r);
  }
  /* The mutations left enough intact to reach every stage. */
  print_message("# %d hops, %d under DANE, %d bounces\n", total_hops,
                dane_hops, bounced);
  assert_true(total_hops > 300);
  assert_true(dane_hops > 30);
}

/* ---- MTA-STS, precedence, REQUIRETLS, relays ---- */

#define WALL 1700000000000ull
#define POLICY_ENFORCE                                                        \
  "version: STSv1\nmode: enforce\nmx: mx1.sts.example\nmax_age: 86400\n"

static const struct rec sts_recs[] = {
  /* the preferred MX is not in the policy: an attacker's, say */
  {"sts.example", "MX", "5 mx.attacker.example"},
  {"sts.example", "MX", "10 mx1.sts.example"},
  {"mx.attacker.example", "A", "198.51.100.66"},
  {"mx1.sts.example", "A", "192.0.2.11"},
  {"_mta-sts.sts.example", "TXT", "v=STSv1; id=20240101;"},
  {"_mta-sts.sts.example", "TXT", "some other text record"},
  {"mta-sts.sts.example", "A", "192.0.2.80"},
  {"mta-sts.sts.example", "AAAA", "2001:db8::80"},
  /* the same domain after the publisher changed the id */
  {"new.example", "MX", "10 mx1.sts.example"},
  {"_mta-sts.new.example", "TXT", "v=STSv1; id=20250202"},
  {"mta-sts.new.example", "A", "192.0.2.81"},
  /* ... and after it deleted the record */
  {"gone.example", "MX", "10 mx1.sts.example"},
  {"gone.example", "MX", "20 mx.attacker.example"},
  /* DANE and MTA-STS on one signed domain */
  {"both.secure.example", "MX", "5 mx2.secure.example"},
  {"both.secure.example", "MX", "10 mx1.secure.example"},
  {"mx1.secure.example", "A", "192.0.2.101"},
  {"mx2.secure.example", "A", "192.0.2.102"},
  {"_25._tcp.mx1.secure.example", "TLSA", "3 1 1 " EE_HASH},
  {"_25._tcp.mx2.secure.example", "TLSA", "3 1 1 " EE_HASH},
  {"_mta-sts.both.secure.example", "TXT", "v=STSv1; id=1"},
  {"mta-sts.both.secure.example", "A", "192.0.2.82"},
  /* a relay host, signed, with TLSA at port 587 */
  {"smtp.relay.secure.example", "A", "192.0.2.120"},
  {"_587._tcp.smtp.relay.secure.example", "TLSA", "3 1 1 " EE_HASH},
  END,
};
static const struct zone_verdict sts_verdicts[] = {
  {"secure.example", SMTPOUT_DNSSEC_SECURE},
  {NULL, 0},
};
static const struct zone sts_zone = {sts_recs, sts_verdicts, NULL};

static const struct web enforce_web = {SMTPOUT_FETCH_OK, 200,
                                       "text/plain; charset=utf-8",
                                       POLICY_ENFORCE, 0, NULL};

/* Runs a route with MTA-STS answers from `w`, a wall clock, flags. */
static void run_sts(struct run *t, const char *ini, const char *domain,
                    uint32_t flags, const struct web *w, const int *outcomes,
                    size_t n)
{
  memset(t, 0, sizeof(*t));
  t->zone = &sts_zone;
  t->web = w;
  t->now = 1000;
  t->wall = WALL;
  t->outcomes = outcomes;
  t->nout = n;
  smtpout_config *c = config(ini);
  assert_int_equal(smtpout_route_new(&t->r, c, domain, flags, t->now,
                                     t->wall), 0);
  smtpout_config_unref(c);
  smtpout_route_set_seed(t->r, 1);
  drive(t);
}

/* The events of a route, one per line. */
static void events(struct run *t, char *out, size_t len)
{
  const char *j;
  size_t n;
  out[0] = '\0';
  while (smtpout_route_next_event(t->r, &j, &n) == 1) {
    assert_int_equal(strlen(j), n);
    append(out, len, "%s\n", j);
  }
}

static void test_sts_enforce_never_hands_out_an_unlisted_mx(void **state)
{
  (void)state;
  static const int outcomes[] = {SMTPOUT_HOP_DONE};
  struct run t;
  run_sts(&t, NULL, "sts.example", 0, &enforce_web, outcomes, 1);
  /* The policy came first, then the listed host alone was resolved. */
  assert_string_equal(t.sts_log, "GET sts:sts.example\n"
                                 "TXT _mta-sts.sts.example\n"
                                 "A mta-sts.sts.example\n"
                                 "AAAA mta-sts.sts.example\n"
                                 "FETCH https://mta-sts.sts.example/"
                                 ".well-known/mta-sts.txt\n"
                                 "PUT sts:sts.example\n");
  assert_string_equal(t.fetch_addrs, "192.0.2.80 2001:db8::80");
  assert_string_equal(t.queries, "MX sts.example\n"
                                 "A mx1.sts.example\n"
                                 "AAAA mx1.sts.example\n");
  assert_string_equal(t.hops, "mx1.sts.example 192.0.2.11 pkix mx-insecure\n");
  assert_string_equal(t.sources, "pkix/mta-sts ");
  contains(t.explain, "MTA-STS policy of sts.example: id 20240101, mode "
                      "enforce; mx1.sts.example matches an mx pattern");
  contains(t.explain, "precedence rank 3, MTA-STS enforce");
  assert_int_equal(smtpout_route_sts_mode(t.r), SMTPOUT_STS_MODE_ENFORCE);
  assert_string_equal(smtpout_route_sts_id(t.r), "20240101");
  char ev[4096];
  events(&t, ev, sizeof(ev));
  contains(ev, "\"policy-type\":\"sts\"");
  contains(ev, "\"policy-domain\":\"sts.example\"");
  contains(ev, "\"mx-host\":[\"mx1.sts.example\"]");
  contains(ev, "\"result-type\":\"validation-failure\"");
  contains(ev, "\"receiving-mx-hostname\":\"mx.attacker.example\"");
  contains(ev, "mtasts-policy-mx-mismatch");
  assert_int_equal(smtpout_route_status(t.r), 0);
  done(&t);

  /* Only unlisted hosts: deferred 4.7.0, never bounced, none contacted. */
  static const char *only_attacker =
      "[destination \"x\"]\nmx = mx1.sts.example\nstarttls = require\n";
  (void)only_attacker;
  static const struct web other = {SMTPOUT_FETCH_OK, 200, "text/plain",
                                   "version: STSv1\nmode: enforce\n"
                                   "mx: *.elsewhere.example\nmax_age: 60\n",
                                   0, NULL};
  run_sts(&t, NULL, "sts.example", 0, &other, NULL, 0);
  assert_string_equal(t.hops, "");
  assert_string_equal(t.queries, "MX sts.example\n");
  assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.7.0",
                 "is not listed by the MTA-STS policy");
  done(&t);
}

static void check_testing_hop(struct run *t, const smtpout_hop *h)
{
  /* The session went well; an unlisted MX still fails the policy. */
  assert_int_equal(smtpout_hop_sts_mode(h), SMTPOUT_STS_MODE_TESTING);
  assert_int_equal(smtpout_route_hop_tlsrpt(t->r, h, NULL, "192.0.2.200",
                                            "mx.example ESMTP", NULL,
                                            t->now), 0);
  assert_int_equal(smtpout_route_hop_tlsrpt(t->r, h, "no-such-type", NULL,
                                            NULL, NULL, t->now),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
}

static void test_sts_testing_and_none_leave_the_local_policy(void **state)
{
  (void)state;
  static const struct web testing = {SMTPOUT_FETCH_OK, 200, "text/plain",
                                     "version: STSv1\nmode: testing\n"
                                     "mx: mx1.sts.example\nmax_age: 60\n",
                                     0, NULL};
  static const int outcomes[] = {SMTPOUT_HOP_HOST_FAILED, SMTPOUT_HOP_DONE};
  struct run t;
  memset(&t, 0, sizeof(t));
  run_sts(&t, NULL, "sts.example", 0, &testing, outcomes, 2);
  assert_string_equal(t.hops, "mx.attacker.example 198.51.100.66 local "
                              "mx-insecure\n"
                              "mx1.sts.example 192.0.2.11 local mx-insecure\n");
  assert_string_equal(t.sources, "local/local local/local ");
  done(&t);
  /* The same with a hook that records what the sessions did. */
  memset(&t, 0, sizeof(t));
  t.zone = &sts_zone;
  t.web = &testing;
  t.now = 1000;
  t.wall = WALL;
  t.outcomes = outcomes;
  t.nout = 2;
  t.on_hop = check_testing_hop;
  assert_int_equal(smtpout_route_new(&t.r, NULL, "sts.example", 0, t.now,
                                     t.wall), 0);
  smtpout_route_set_seed(t.r, 1);
  drive(&t);
  char ev[4096];
  events(&t, ev, sizeof(ev));
  /* Two events: the unlisted host failed, the listed one succeeded. */
  const char *second = strchr(ev, '\n') + 1;
  contains(ev, "\"receiving-mx-hostname\":\"mx.attacker.example\"");
  contains(ev, "\"result\":\"failure\",\"result-type\":\"validation-failure\"");
  contains(second, "\"result\":\"success\"");
  contains(second, "\"sending-mta-ip\":\"192.0.2.200\"");
  contains(second, "\"receiving-ip\":\"192.0.2.11\"");
  contains(second, "\"policy-string\":[\"version: STSv1\",\"mode: testing\"");
  done(&t);

  static const struct web none = {SMTPOUT_FETCH_OK, 200, "text/plain",
                                  "version: STSv1\nmode: none\n"
                                  "max_age: 60\n", 0, NULL};
  run_sts(&t, NULL, "sts.example", 0, &none, outcomes, 2);
  assert_string_equal(t.sources, "local/local local/local ");
  contains(t.explain, "MTA-STS: fetched policy id 20240101 (mode none");
  done(&t);
}

static void test_sts_cache_id_rules(void **state)
{
  (void)state;
  static const int outcomes[] = {SMTPOUT_HOP_DONE};
  struct run t;
  run_sts(&t, NULL, "sts.example", 0, &enforce_web, outcomes, 1);
  assert_int_equal(t.fetches, 1);
  static char entry[70000];
  memcpy(entry, t.put, t.put_len);
  entry[t.put_len] = '\0';
  done(&t);

  /* The same id: the cached policy, no fetch, no put. */
  struct web cached = {SMTPOUT_FETCH_CONNECT_FAILED, 0, NULL, NULL, 0,
                       entry};
  run_sts(&t, NULL, "sts.example", 0, &cached, outcomes, 1);
  assert_int_equal(t.fetches, 0);
  assert_int_equal(t.puts, 0);
  assert_string_equal(t.hops, "mx1.sts.example 192.0.2.11 pkix mx-insecure\n");
  contains(smtpout_route_sts_explain(t.r), "cached policy id 20240101");
  done(&t);

  /* The id changed and the refetch fails: the cached policy is kept,
   * and the failure reported. */
  char *renamed = strdup(entry); /* the entry is for the policy domain */
  run_sts(&t, NULL, "new.example", 0, &cached, outcomes, 1);
  assert_int_equal(t.fetches, 1);
  assert_string_equal(t.fetch_addrs, "192.0.2.81");
  assert_string_equal(t.hops, "mx1.sts.example 192.0.2.11 pkix mx-insecure\n");
  assert_int_equal(smtpout_route_sts_mode(t.r), SMTPOUT_STS_MODE_ENFORCE);
  assert_string_equal(smtpout_route_sts_id(t.r), "20240101");
  char ev[8192];
  events(&t, ev, sizeof(ev));
  contains(ev, "\"result-type\":\"sts-policy-fetch-error\"");
  contains(ev, "\"policy-domain\":\"new.example\"");
  /* With the failure backoff the entry is rewritten with a retry mark. */
  assert_int_equal(t.puts, 1);
  contains(t.put, "retry-id=20250202");
  done(&t);
  free(renamed);

  /* The TXT record is gone, the policy unexpired: still enforced. */
  run_sts(&t, NULL, "gone.example", 0, &cached, outcomes, 1);
  assert_int_equal(t.fetches, 0);
  assert_string_equal(t.hops, "mx1.sts.example 192.0.2.11 pkix mx-insecure\n");
  contains(smtpout_route_sts_explain(t.r), "no _mta-sts record; the cached "
                                            "policy id 20240101 applies");
  done(&t);

  /* ... but not once it expired (max_age 86400 s). */
  memset(&t, 0, sizeof(t));
  t.zone = &sts_zone;
  t.web = &cached;
  t.now = 1000;
  t.wall = WALL + 86400ull * 1000 + 1;
  static const int two[] = {SMTPOUT_HOP_DONE};
  t.outcomes = two;
  t.nout = 1;
  assert_int_equal(smtpout_route_new(&t.r, NULL, "gone.example", 0, t.now,
                                     t.wall), 0);
  smtpout_route_set_seed(t.r, 1);
  drive(&t);
  assert_string_equal(t.sources, "local/local ");
  done(&t);
}

static void test_sts_fetch_failures_are_typed(void **state)
{
  (void)state;
  static char big[SMTPOUT_STS_POLICY_MAX_BYTES + 100];
  memset(big, 'x', sizeof(big) - 1);
  memcpy(big, POLICY_ENFORCE, strlen(POLICY_ENFORCE));
  const struct {
    struct web w;
    const char *type;
  } cases[] = {
    {{SMTPOUT_FETCH_OK, 200, "text/plain", big, sizeof(big) - 1, NULL},
     "sts-policy-fetch-error"},
    {{SMTPOUT_FETCH_OK, 404, "text/plain", POLICY_ENFORCE, 0, NULL},
     "sts-policy-fetch-error"},
    {{SMTPOUT_FETCH_OK, 200, "text/html", POLICY_ENFORCE, 0, NULL},
     "sts-policy-invalid"},
    {{SMTPOUT_FETCH_OK, 200, "text/plain", "garbage", 0, NULL},
     "sts-policy-invalid"},
    {{SMTPOUT_FETCH_TLS_NOT_VERIFIED, 0, NULL, NULL, 0, NULL},
     "sts-webpki-invalid"},
    {{SMTPOUT_FETCH_TIMEOUT, 0, NULL, NULL, 0, NULL},
     "sts-policy-fetch-error"},
    {{SILENT, 0, NULL, NULL, 0, NULL}, NULL},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    static const int outcomes[] = {SMTPOUT_HOP_HOST_FAILED, SMTPOUT_HOP_DONE};
    struct run t;
    run_sts(&t, NULL, "sts.example", 0, &cases[i].w, outcomes, 2);
    if (cases[i].type == NULL) {
      /* A fetch that never comes ends at the fetch timeout. */
      assert_int_equal(smtpout_route_want(t.r), SMTPOUT_ROUTE_WAIT);
      assert_int_equal(smtpout_route_expiry(t.r), 1000 + 60000);
      assert_int_equal(smtpout_route_handle_expiry(t.r, 61000), 0);
      assert_int_equal(smtpout_route_https_answer(t.r, t.silent[0],
                                                  SMTPOUT_FETCH_OK, 200,
                                                  "text/plain", NULL, 0,
                                                  61001),
                       SMTPOUT_ERR_INVALID_STATE);
      drive(&t);
    }
    /* No policy: both hosts, under the local policy. */
    assert_string_equal(t.sources, "local/local local/local ");
    char ev[4096];
    events(&t, ev, sizeof(ev));
    contains(ev, "\"policy-type\":\"sts\"");
    contains(ev, cases[i].type ? cases[i].type : "sts-policy-fetch-error");
    done(&t);
  }
}

static void test_dane_and_sts_on_one_domain(void **state)
{
  (void)state;
  static const int outcomes[] = {SMTPOUT_HOP_DONE};
  static const struct web w = {SMTPOUT_FETCH_OK, 200, "text/plain",
                               "version: STSv1\nmode: enforce\n"
                               "mx: mx1.secure.example\nmax_age: 600\n",
                               0, NULL};
  struct run t;
  /* mx2 has usable TLSA, but the policy does not list it: skipped. */
  run_sts(&t, NULL, "both.secure.example", 0, &w, outcomes, 1);
  assert_string_equal(t.hops, "mx1.secure.example 192.0.2.101 dane usable\n");
  assert_string_equal(t.sources, "dane/dane ");
  assert_string_equal(t.queries, "MX both.secure.example\n"
                                 "A mx1.secure.example\n"
                                 "AAAA mx1.secure.example\n"
                                 "TLSA _25._tcp.mx1.secure.example\n");
  done(&t);
  /* starttls = disable and allow-invalid-certs = true relax neither. */
  run_sts(&t, "[queue.outbound.tls]\nstarttls = disable\n"
              "allow-invalid-certs = true\ndane = disable\n",
          "both.secure.example", 0, &w, outcomes, 1);
  assert_string_equal(t.hops, "mx1.secure.example 192.0.2.101 pkix "
                              "disabled\n");
  contains(t.explain, "overridden for this hop: starttls = disable");
  done(&t);
  /* mta-sts = disable for the domain: DANE alone, both hosts. */
  static const int fail_then_done[] = {SMTPOUT_HOP_TLS_FAILED,
                                       SMTPOUT_HOP_DONE};
  run_sts(&t, "[destination \"b\"]\ndomains = both.secure.example\n"
              "mta-sts = disable\n",
          "both.secure.example", 0, &w, fail_then_done, 2);
  assert_string_equal(t.sts_log, "");
  assert_string_equal(t.sources, "dane/dane dane/dane ");
  done(&t);
}

static void check_local_hop(struct run *t, const smtpout_hop *h)
{
  (void)t;
  if (smtpout_hop_tls_requirement(h) == SMTPOUT_TLS_REQUIREMENT_PKIX) {
    assert_int_equal(smtpout_hop_starttls(h), SMTPOUT_STARTTLS_REQUIRE);
    assert_int_equal(smtpout_hop_allow_invalid_certs(h), 0);
    assert_int_equal(smtpout_hop_plaintext_fallback(h), 0);
  }
  if (smtpout_hop_tls_requirement(h) == SMTPOUT_TLS_REQUIREMENT_RELAXED) {
    assert_int_equal(smtpout_hop_starttls(h), SMTPOUT_STARTTLS_OPTIONAL);
    assert_int_equal(smtpout_hop_allow_invalid_certs(h), 1);
    assert_int_equal(smtpout_hop_plaintext_fallback(h), 1);
  }
}

static void test_local_knobs_never_relax_mta_sts(void **state)
{
  (void)state;
  static const int outcomes[] = {SMTPOUT_HOP_DONE};
  struct run t;
  memset(&t, 0, sizeof(t));
  run_sts(&t, "[queue.outbound.tls]\nstarttls = disable\n"
              "allow-invalid-certs = true\n",
          "sts.example", 0, &enforce_web, outcomes, 1);
  assert_string_equal(t.sources, "pkix/mta-sts ");
  done(&t);
  /* mta-sts = require without a policy: every host deferred 4.7.5. */
  run_sts(&t, "[queue.outbound.tls]\nmta-sts = require\n", "sts.example", 0,
          NULL, outcomes, 1);
  assert_string_equal(t.hops, "");
  assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.7.5", "mta-sts = require");
  done(&t);
}

static void check_relaxed_hop_not_reported(struct run *t, const smtpout_hop *h)
{
  check_local_hop(t, h);
  assert_int_equal(smtpout_route_hop_tlsrpt(t->r, h, "starttls-not-supported",
                                            "192.0.2.200", "mx.example ESMTP",
                                            NULL, t->now), 0);
}

static void test_tls_required_no_relaxes_ranks_2_to_4(void **state)
{
  (void)state;
  static const int outcomes[] = {SMTPOUT_HOP_HOST_FAILED, SMTPOUT_HOP_DONE};
  struct run t;
  memset(&t, 0, sizeof(t));
  /* Enforce policy, dane = require and starttls = require: all set aside;
   * the unlisted host is tried, no policy is even fetched. */
  t.on_hop = check_relaxed_hop_not_reported;
  run_sts(&t, "[queue.outbound.tls]\ndane = require\nstarttls = require\n",
          "sts.example", SMTPOUT_ROUTE_TLS_REQUIRED_NO, &enforce_web,
          outcomes, 2);
  assert_string_equal(t.sts_log, "");
  assert_string_equal(t.sources, "relaxed/tls-required-no "
                                 "relaxed/tls-required-no ");
  contains(t.explain, "precedence rank 5, TLS-Required: No");
  /* A report mail (TLS-Required: No) is not counted in the next report
   * (RFC 8460 3): the failures its hops report make no event. */
  char ev[1024];
  events(&t, ev, sizeof(ev));
  assert_string_equal(ev, "");
  done(&t);
  /* DANE is set aside too: no TLSA lookup. */
  run_sts(&t, NULL, "both.secure.example", SMTPOUT_ROUTE_TLS_REQUIRED_NO,
          NULL, outcomes, 2);
  assert_string_equal(t.queries, "MX both.secure.example\n"
                                 "A mx2.secure.example\n"
                                 "AAAA mx2.secure.example\n"
                                 "A mx1.secure.example\n"
                                 "AAAA mx1.secure.example\n");
  done(&t);
  /* ... but never REQUIRETLS. */
  static const int offered[] = {SMTPOUT_HOP_DONE};
  run_sts(&t, NULL, "sts.example",
          SMTPOUT_ROUTE_TLS_REQUIRED_NO | SMTPOUT_ROUTE_REQUIRETLS,
          &enforce_web, offered, 1);
  assert_string_equal(t.hops, "mx1.sts.example 192.0.2.11 pkix mx-insecure\n");
  assert_string_equal(t.sources, "pkix/requiretls ");
  contains(t.explain, "TLS-Required: No (ignored: REQUIRETLS wins");
  done(&t);
}

static void check_requiretls_hop(struct run *t, const smtpout_hop *h)
{
  (void)t;
  assert_int_equal(smtpout_hop_requiretls(h), 1);
  assert_int_equal(smtpout_hop_tls_source(h), SMTPOUT_TLS_SOURCE_REQUIRETLS);
}

static void test_requiretls_verdicts(void **state)
{
  (void)state;
  struct run t;
  /* No MX authenticated by DANE or MTA-STS: bounced 5.7.10, nothing
   * handed out. */
  run_sts(&t, NULL, "sts.example", SMTPOUT_ROUTE_REQUIRETLS, NULL, NULL, 0);
  assert_string_equal(t.hops, "");
  assert_verdict(&t, SMTPOUT_STATUS_BOUNCED, "5.7.10", "Encryption needed");
  done(&t);
  /* DANE hosts that do not offer REQUIRETLS after STARTTLS: 5.7.30. */
  static const int not_offered[] = {SMTPOUT_HOP_REQUIRETLS_NOT_OFFERED,
                                    SMTPOUT_HOP_REQUIRETLS_NOT_OFFERED};
  memset(&t, 0, sizeof(t));
  t.on_hop = check_requiretls_hop;
  run_sts(&t, "[queue.outbound.tls]\nmta-sts = disable\n",
          "both.secure.example", SMTPOUT_ROUTE_REQUIRETLS, NULL, not_offered,
          2);
  assert_string_equal(t.sources, "dane/requiretls dane/requiretls ");
  assert_verdict(&t, SMTPOUT_STATUS_BOUNCED, "5.7.30",
                 "REQUIRETLS support required");
  done(&t);
  /* An MTA-STS enforce host that does offer it: done. */
  static const int ok[] = {SMTPOUT_HOP_DONE};
  run_sts(&t, NULL, "sts.example", SMTPOUT_ROUTE_REQUIRETLS, &enforce_web,
          ok, 1);
  assert_int_equal(smtpout_route_status(t.r), 0);
  done(&t);
  /* Connect failures alone are not REQUIRETLS failures: deferred. */
  run_sts(&t, NULL, "sts.example", SMTPOUT_ROUTE_REQUIRETLS, &enforce_web,
          NULL, 0);
  assert_verdict(&t, SMTPOUT_STATUS_DEFERRED, "4.4.1", "connect");
  done(&t);
}

static void test_relay_route_carries_what_the_session_needs(void **state)
{
  (void)state;
  char dir[] = "/tmp/smtpout-relay-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char secret[512], ini[2048];
  snprintf(secret, sizeof(secret), "%s/pw", dir);
  FILE *f = fopen(secret, "w");
  assert_non_null(f);
  fputs("s3cret-Value\n", f);
  fclose(f);
  assert_int_equal(chmod(secret, 0600), 0);
  snprintf(ini, sizeof(ini),
           "[queue.outbound]\nrelay = provider\n"
           "[relay \"provider\"]\nhost = smtp.relay.secure.example\n"
           "port = 587\nauth-mechanisms = plain, scram-sha-256\n"
           "auth-username = app@example.com\n"
           "auth-password-file = %s\n", secret);
  smtpout_config *c = config(ini);
  assert_string_equal(smtpout_config_relay(c), "provider");
  struct run t;
  memset(&t, 0, sizeof(t));
  t.zone = &sts_zone;
  t.now = 1000;
  t.wall = WALL;
  static const int outcomes[] = {SMTPOUT_HOP_DONE};
  t.outcomes = outcomes;
  t.nout = 1;
  assert_int_equal(smtpout_route_new_relay(&t.r, c, NULL, 0, t.now, t.wall),
                   0);
  /* The relay's one host: its addresses, then its TLSA at port 587. */
  const smtpout_hop *h = NULL;
  while (smtpout_route_want(t.r) == SMTPOUT_ROUTE_WANT_REQUEST) {
    const smtpout_request *q;
    smtpout_route_next_request(t.r, &q, t.now);
    answer(&t, q);
  }
  assert_string_equal(t.queries, "A smtp.relay.secure.example\n"
                                 "AAAA smtp.relay.secure.example\n"
                                 "TLSA _587._tcp.smtp.relay.secure.example\n");
  assert_string_equal(t.sts_log, "");
  assert_int_equal(smtpout_route_next_hop(t.r, &h, t.now), 1);
  assert_string_equal(smtpout_hop_relay(h), "provider");
  assert_string_equal(smtpout_hop_mx(h), "smtp.relay.secure.example");
  assert_int_equal(smtpout_hop_port(h), 587);
  assert_int_equal(smtpout_hop_tls_requirement(h),
                   SMTPOUT_TLS_REQUIREMENT_DANE);
  assert_int_equal(smtpout_hop_starttls(h), SMTPOUT_STARTTLS_REQUIRE);
  assert_int_equal(smtpout_hop_plaintext_fallback(h), 0);
  assert_int_equal(smtpout_hop_implicit_tls(h), 0);
  assert_string_equal(smtpout_hop_auth_mechanisms(h), "PLAIN SCRAM-SHA-256");
  assert_string_equal(smtpout_hop_auth_username(h), "app@example.com");
  assert_int_equal(smtpout_hop_auth_tls_any(h), 0);
  assert_null(smtpout_hop_client_cert(h));
  char buf[64];
  assert_int_equal(smtpout_hop_auth_secret(h, buf, sizeof(buf)), 12);
  assert_string_equal(buf, "s3cret-Value");
  assert_int_equal(smtpout_hop_auth_secret(h, buf, 5),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  /* The secret is never in the explanation. */
  assert_null(strstr(smtpout_hop_explain(h), "s3cret"));
  contains(smtpout_hop_explain(h), "AUTH: as app@example.com, mechanisms "
                                   "PLAIN SCRAM-SHA-256, over verified TLS");
  /* A file opened to others after the load is refused when read. */
  assert_int_equal(chmod(secret, 0640), 0);
  assert_int_equal(smtpout_hop_auth_secret(h, buf, sizeof(buf)),
                   SMTPOUT_ERR_IO);
  assert_int_equal(smtpout_route_hop_done(t.r, h, SMTPOUT_HOP_DONE, NULL,
                                          t.now), 0);
  done(&t);
  assert_int_equal(smtpout_route_new_relay(&t.r, c, "nope", 0, 0, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  smtpout_config_unref(c);

  /* Implicit TLS to an address, no AUTH: one hop, no DNS; a local hop
   * whose TLS is still mandatory. */
  c = config("[relay \"lit\"]\nhost = 192.0.2.9\nimplicit-tls = true\n"
             "allow-invalid-certs = true\n");
  assert_int_equal(smtpout_route_new_relay(&t.r, c, "lit", 0, 0, WALL), 0);
  assert_int_equal(smtpout_route_next_hop(t.r, &h, 0), 1);
  assert_string_equal(smtpout_hop_address(h), "192.0.2.9");
  assert_int_equal(smtpout_hop_port(h), 465);
  assert_int_equal(smtpout_hop_implicit_tls(h), 1);
  assert_int_equal(smtpout_hop_starttls(h), SMTPOUT_STARTTLS_REQUIRE);
  assert_int_equal(smtpout_hop_allow_invalid_certs(h), 1);
  assert_int_equal(smtpout_hop_plaintext_fallback(h), 0);
  assert_null(smtpout_hop_auth_username(h));
  assert_int_equal(smtpout_hop_auth_secret(h, buf, sizeof(buf)),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  done(&t);
  smtpout_config_unref(c);
  unlink(secret);
  rmdir(dir);
}

static void test_route_failures_become_events(void **state)
{
  (void)state;
  static const struct override bogus_tlsa[] = {
    {"_25._tcp.mx1.secure.example", "TLSA", FAIL, SMTPOUT_DNSSEC_BOGUS, 2},
    {NULL, NULL, 0, 0, 0},
  };
  static const struct zone z = {sts_recs, sts_verdicts, bogus_tlsa};
  struct run t;
  memset(&t, 0, sizeof(t));
  t.zone = &z;
  t.now = 1000;
  t.wall = WALL;
  smtpout_config *c = config("[queue.outbound.tls]\nmta-sts = disable\n");
  assert_int_equal(smtpout_route_new(&t.r, c, "both.secure.example", 0,
                                     t.now, t.wall), 0);
  smtpout_config_unref(c);
  smtpout_route_set_seed(t.r, 1);
  drive(&t);
  char ev[4096];
  events(&t, ev, sizeof(ev));
  /* One event for the TLSA failure, with the TLSA base domain as policy
   * domain (as Postfix) and the recipient domain as report domain. */
  contains(ev, "\"time\":1700000000000");
  contains(ev, "\"report-domain\":\"both.secure.example\"");
  contains(ev, "\"policy-type\":\"tlsa\"");
  contains(ev, "\"policy-domain\":\"mx1.secure.example\"");
  contains(ev, "\"result-type\":\"dnssec-invalid\"");
  /* Each line is an event the report builder reads. */
  smtpout_tlsrpt_report *rep;
  assert_int_equal(smtpout_tlsrpt_report_new(&rep, NULL,
                                             WALL - WALL % 86400000), 0);
  assert_int_equal(smtpout_tlsrpt_report_feed(rep, ev, strlen(ev)), 0);
  assert_int_equal(smtpout_tlsrpt_report_counter(
                       rep, SMTPOUT_TLSRPT_COUNTER_MALFORMED), 0);
  assert_true(smtpout_tlsrpt_report_counter(
                  rep, SMTPOUT_TLSRPT_COUNTER_EVENTS) >= 1);
  smtpout_tlsrpt_report_free(rep);
  assert_int_equal(smtpout_route_events_dropped(t.r), 0);
  done(&t);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sts_enforce_never_hands_out_an_unlisted_mx),
    cmocka_unit_test(test_sts_testing_and_none_leave_the_local_policy),
    cmocka_unit_test(test_sts_cache_id_rules),
    cmocka_unit_test(test_sts_fetch_failures_are_typed),
    cmocka_unit_test(test_dane_and_sts_on_one_domain),
    cmocka_unit_test(test_local_knobs_never_relax_mta_sts),
    cmocka_unit_test(test_tls_required_no_relaxes_ranks_2_to_4),
    cmocka_unit_test(test_requiretls_verdicts),
    cmocka_unit_test(test_relay_route_carries_what_the_session_needs),
    cmocka_unit_test(test_route_failures_become_events),
    cmocka_unit_test(test_mx_hosts_are_tried_in_preference_order),
    cmocka_unit_test(test_next_mx_after_a_dead_first_mx),
    cmocka_unit_test(test_host_failures_move_on_and_say_what_failed),
    cmocka_unit_test(test_equal_preferences_are_shuffled_by_seed),
    cmocka_unit_test(test_null_mx_bounces_without_any_address_lookup),
    cmocka_unit_test(test_null_mx_among_other_records_still_bounces),
    cmocka_unit_test(test_nxdomain_bounces_with_5_1_2),
    cmocka_unit_test(test_nodata_makes_the_domain_its_own_mx),
    cmocka_unit_test(test_implicit_mx_without_address_bounces),
    cmocka_unit_test(
        test_failed_mx_lookup_defers_and_never_uses_the_implicit_mx),
    cmocka_unit_test(test_cname_at_the_domain_is_followed),
    cmocka_unit_test(test_mx_names_that_are_not_host_names_are_skipped),
    cmocka_unit_test(test_mx_host_without_address),
    cmocka_unit_test(test_a_failed_family_leaves_the_other),
    cmocka_unit_test(test_unspecified_addresses_are_never_hops),
    cmocka_unit_test(test_families_are_interleaved),
    cmocka_unit_test(test_address_limit_keeps_both_families),
    cmocka_unit_test(test_address_limit_counts_across_mx_hosts),
    cmocka_unit_test(test_session_limit_counts_sessions_past_the_handshake),
    cmocka_unit_test(test_secure_usable_tlsa_requires_dane),
    cmocka_unit_test(test_tlsa_name_follows_the_port),
    cmocka_unit_test(test_secure_unusable_tlsa_requires_encryption),
    cmocka_unit_test(test_insecure_mx_gets_no_tlsa_lookup),
    cmocka_unit_test(test_insecure_host_gets_no_tlsa_lookup),
    cmocka_unit_test(test_cname_mx_target_uses_the_expanded_tlsa_base),
    cmocka_unit_test(test_tlsa_falls_back_to_the_unexpanded_name),
    cmocka_unit_test(test_secure_implicit_mx_gets_dane),
    cmocka_unit_test(test_insecure_tlsa_is_ignored),
    cmocka_unit_test(test_no_tlsa_leaves_the_local_policy),
    cmocka_unit_test(test_failed_tlsa_lookup_skips_the_host),
    cmocka_unit_test(test_tlsa_that_never_comes_expires),
    cmocka_unit_test(test_dane_require_defers_where_dane_cannot_authenticate),
    cmocka_unit_test(test_dane_disable_asks_no_tlsa),
    cmocka_unit_test(test_dane_knob_per_destination_and_explain),
    cmocka_unit_test(test_dane_is_unavailable_without_dnssec_verdicts),
    cmocka_unit_test(test_address_literal_is_one_hop_without_dns),
    cmocka_unit_test(test_answers_must_answer_the_question),
    cmocka_unit_test(test_api_refuses_what_it_cannot_do),
    cmocka_unit_test(test_hop_done_takes_only_the_hop_out),
    cmocka_unit_test(test_hostile_answers_never_break_the_route),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
