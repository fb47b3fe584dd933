/*
 * hopkit.c — see hopkit.h.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "hopkit.h"

#include "dnsenc.h"

/* ---- a DNS response encoder ---- */


/* The name exists: it owns records, or names below it do. */
static int name_exists(const struct hk_rec *recs, const char *name)
{
  size_t nl = strlen(name);
  for (const struct hk_rec *r = recs; r->owner; r++) {
    size_t ol = strlen(r->owner);
    if (strcasecmp(r->owner, name) == 0 ||
        (ol > nl && r->owner[ol - nl - 1] == '.' &&
         strcasecmp(r->owner + ol - nl, name) == 0))
      return 1;
  }
  return 0;
}

/* The response a resolver would give: the records, after CNAMEs (each in
 * the answer, as a recursive resolver puts them), NODATA or NXDOMAIN. */
static void answer_dns(struct dnsenc *p, const struct hk_rec *recs,
                       const char *qname, int qtype)
{
  const struct hk_rec *an[64];
  size_t nan = 0;
  const char *cur = qname;
  for (int links = 0; links < 8 && qtype != 5; links++) {
    const struct hk_rec *cname = NULL;
    for (const struct hk_rec *r = recs; r->owner && !cname; r++)
      if (strcasecmp(r->owner, cur) == 0 && strcmp(r->type, "CNAME") == 0)
        cname = r;
    if (cname == NULL)
      break;
    an[nan++] = cname;
    cur = cname->rdata;
  }
  for (const struct hk_rec *r = recs; r->owner; r++)
    if (strcasecmp(r->owner, cur) == 0 && dnsenc_type_code(r->type) == qtype) {
      assert_true(nan < 64);
      an[nan++] = r;
    }
  dnsenc_response(p, 0x8180 | (name_exists(recs, cur) ? 0 : 3), nan, qname,
                  qtype);
  for (size_t i = 0; i < nan; i++)
    dnsenc_rr(p, an[i]->owner, an[i]->type, an[i]->rdata);
}

static int verdict_of(const struct hk_zone *z, const char *qname)
{
  size_t ql = strlen(qname);
  for (const char *const *s = z->secure; s && *s; s++) {
    size_t sl = strlen(*s);
    if (sl <= ql && strcasecmp(qname + ql - sl, *s) == 0 &&
        (sl == ql || qname[ql - sl - 1] == '.'))
      return SMTPOUT_DNSSEC_SECURE;
  }
  return SMTPOUT_DNSSEC_INSECURE;
}

static void answer(smtpout_route *r, const struct hk_zone *z,
                   const smtpout_request *q)
{
  static struct dnsenc p;
  int id = smtpout_request_id(q);
  switch (smtpout_request_kind(q)) {
  case SMTPOUT_REQUEST_DNS: {
    char qname[300];
    snprintf(qname, sizeof(qname), "%s", smtpout_request_qname(q));
    qname[strlen(qname) - 1] = '\0'; /* the final dot */
    answer_dns(&p, z->recs, qname, smtpout_request_qtype(q));
    assert_int_equal(smtpout_route_dns_answer(r, id, verdict_of(z, qname),
                                              p.b, p.n, 0),
                     0);
    return;
  }
  case SMTPOUT_REQUEST_CACHE_GET:
    assert_int_equal(smtpout_route_cache_answer(r, id, NULL, 0, 0), 0);
    return;
  case SMTPOUT_REQUEST_CACHE_PUT:
    return;
  case SMTPOUT_REQUEST_HTTPS: {
    const char *body = z->sts_policy;
    assert_int_equal(
        smtpout_route_https_answer(
            r, id, body ? SMTPOUT_FETCH_OK : SMTPOUT_FETCH_CONNECT_FAILED,
            body ? 200 : 0, body ? "text/plain" : NULL,
            (const uint8_t *)body, body ? strlen(body) : 0, 0),
        0);
    return;
  }
  default:
    fail_msg("hopkit: unexpected request kind");
  }
}

const smtpout_hop *hk_route(struct hopkit *k, smtpout_config *config,
                            const char *domain, uint32_t flags,
                            const struct hk_zone *zone)
{
  memset(k, 0, sizeof(*k));
  /* A fixed wall clock: MTA-STS ages its cache by it. */
  assert_int_equal(smtpout_route_new(&k->route, config, domain, flags, 0,
                                     1700000000000ull),
                   0);
  assert_int_equal(smtpout_route_set_seed(k->route, 1), 0);
  for (int i = 0; i < 100; i++) {
    int want = smtpout_route_want(k->route);
    if (want == SMTPOUT_ROUTE_WANT_REQUEST) {
      const smtpout_request *q;
      assert_int_equal(smtpout_route_next_request(k->route, &q, 0), 1);
      answer(k->route, zone, q);
    } else if (want == SMTPOUT_ROUTE_WANT_HOP) {
      assert_int_equal(smtpout_route_next_hop(k->route, &k->hop, 0), 1);
      return k->hop;
    } else {
      fail_msg("hopkit: the route to %s wants %d, not a hop (%s %s)", domain,
               want, smtpout_route_enhanced(k->route),
               smtpout_route_text(k->route));
    }
  }
  fail_msg("hopkit: the route to %s never handed out a hop", domain);
  return NULL;
}

/* 32 octets in hex: the data of a TLSA record nothing will match but the
 * scripted TLS backend, which matches whatever it is told to. */
#define SOME_DIGEST                                                         \
  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const char *const secure_zones[] = {"dane.test", "encrypt.test", NULL};

static const struct hk_rec plain_recs[] = {
  {"plain.test", "MX", "10 mx.plain.test"},
  {"mx.plain.test", "A", "192.0.2.1"},
  {NULL, NULL, NULL},
};

static const struct hk_rec dane_recs[] = {
  {"dane.test", "MX", "10 mx.dane.test"},
  {"mx.dane.test", "A", "192.0.2.2"},
  {"_25._tcp.mx.dane.test", "TLSA", "3 1 1 " SOME_DIGEST},
  {NULL, NULL, NULL},
};

static const struct hk_rec encrypt_recs[] = {
  {"encrypt.test", "MX", "10 mx.encrypt.test"},
  {"mx.encrypt.test", "A", "192.0.2.3"},
  /* PKIX-EE: unusable for SMTP (RFC 7672 3.1.3). */
  {"_25._tcp.mx.encrypt.test", "TLSA", "1 1 1 " SOME_DIGEST},
  {NULL, NULL, NULL},
};

static const struct hk_rec sts_recs[] = {
  {"sts.test", "MX", "10 mx.sts.test"},
  {"mx.sts.test", "A", "192.0.2.4"},
  {"_mta-sts.sts.test", "TXT", "v=STSv1; id=20240101"},
  {"mta-sts.sts.test", "A", "192.0.2.5"},
  {NULL, NULL, NULL},
};

static const char sts_policy[] = "version: STSv1\r\n"
                                 "mode: enforce\r\n"
                                 "mx: mx.sts.test\r\n"
                                 "max_age: 86400\r\n";

const smtpout_hop *hk_hop(struct hopkit *k, smtpout_config *config,
                          int kind, uint32_t flags)
{
  static const struct {
    const char *domain;
    struct hk_zone zone;
    uint32_t flags;
    int requirement;
  } kinds[] = {
    [HK_LOCAL] = {"plain.test", {plain_recs, secure_zones, NULL}, 0,
                  SMTPOUT_TLS_REQUIREMENT_LOCAL},
    [HK_DANE] = {"dane.test", {dane_recs, secure_zones, NULL}, 0,
                 SMTPOUT_TLS_REQUIREMENT_DANE},
    [HK_ENCRYPT] = {"encrypt.test", {encrypt_recs, secure_zones, NULL}, 0,
                    SMTPOUT_TLS_REQUIREMENT_ENCRYPT},
    [HK_PKIX] = {"sts.test", {sts_recs, secure_zones, sts_policy}, 0,
                 SMTPOUT_TLS_REQUIREMENT_PKIX},
    [HK_RELAXED] = {"plain.test", {plain_recs, secure_zones, NULL},
                    SMTPOUT_ROUTE_TLS_REQUIRED_NO,
                    SMTPOUT_TLS_REQUIREMENT_RELAXED},
  };
  const smtpout_hop *hop = hk_route(k, config, kinds[kind].domain,
                                    kinds[kind].flags | flags,
                                    &kinds[kind].zone);
  /* The kit is only as good as the requirement it makes. */
  assert_int_equal(smtpout_hop_tls_requirement(hop), kinds[kind].requirement);
  return hop;
}

void hk_free(struct hopkit *k)
{
  smtpout_route_free(k->route);
  k->route = NULL;
  k->hop = NULL;
}
