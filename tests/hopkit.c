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

/* ---- a DNS response encoder ---- */

struct pkt {
  uint8_t b[8192];
  size_t n;
};

static void u8(struct pkt *p, unsigned v)
{
  assert_true(p->n < sizeof(p->b));
  p->b[p->n++] = (uint8_t)v;
}

static void u16(struct pkt *p, unsigned v)
{
  u8(p, v >> 8);
  u8(p, v & 0xff);
}

static void put_name(struct pkt *p, const char *name)
{
  for (const char *s = name; *s;) {
    const char *dot = strchr(s, '.');
    size_t l = dot ? (size_t)(dot - s) : strlen(s);
    u8(p, (unsigned)l);
    for (size_t i = 0; i < l; i++)
      u8(p, (uint8_t)s[i]);
    s += l;
    if (*s == '.')
      s++;
  }
  u8(p, 0);
}

static int type_code(const char *t)
{
  static const struct {
    const char *name;
    int code;
  } types[] = {{"A", 1}, {"CNAME", 5}, {"MX", 15}, {"TXT", 16},
               {"AAAA", 28}, {"TLSA", 52}};
  for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
    if (strcmp(types[i].name, t) == 0)
      return types[i].code;
  fail_msg("hopkit: unknown type %s", t);
  return 0;
}

static unsigned hexval(char c)
{
  return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

static void put_rr(struct pkt *p, const struct hk_rec *r)
{
  int type = type_code(r->type);
  put_name(p, r->owner);
  u16(p, (unsigned)type);
  u16(p, 1);    /* IN */
  u16(p, 0);
  u16(p, 300);  /* TTL */
  size_t at = p->n;
  u16(p, 0);    /* RDLENGTH, below */
  if (type == 1 || type == 28) {
    uint8_t a[16];
    assert_int_equal(inet_pton(type == 1 ? AF_INET : AF_INET6, r->rdata, a),
                     1);
    for (int i = 0; i < (type == 1 ? 4 : 16); i++)
      u8(p, a[i]);
  } else if (type == 5) {
    put_name(p, r->rdata);
  } else if (type == 15) {
    unsigned pref;
    char host[256];
    assert_int_equal(sscanf(r->rdata, "%u %255s", &pref, host), 2);
    u16(p, pref);
    put_name(p, host);
  } else if (type == 16) {
    size_t len = strlen(r->rdata);
    assert_true(len < 256);
    u8(p, (unsigned)len);
    for (size_t i = 0; i < len; i++)
      u8(p, (uint8_t)r->rdata[i]);
  } else {
    unsigned u, s, m;
    char hex[4200];
    assert_int_equal(sscanf(r->rdata, "%u %u %u %4199s", &u, &s, &m, hex), 4);
    u8(p, u);
    u8(p, s);
    u8(p, m);
    for (size_t i = 0; hex[i] && hex[i + 1]; i += 2)
      u8(p, hexval(hex[i]) << 4 | hexval(hex[i + 1]));
  }
  size_t len = p->n - at - 2;
  p->b[at] = (uint8_t)(len >> 8);
  p->b[at + 1] = (uint8_t)len;
}

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
static void answer_dns(struct pkt *p, const struct hk_rec *recs,
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
    if (strcasecmp(r->owner, cur) == 0 && type_code(r->type) == qtype) {
      assert_true(nan < 64);
      an[nan++] = r;
    }
  p->n = 0;
  u16(p, 0x4242);
  u8(p, 0x81);
  u8(p, 0x80 | (name_exists(recs, cur) ? 0 : 3));
  u16(p, 1);
  u16(p, (unsigned)nan);
  u16(p, 0);
  u16(p, 0);
  put_name(p, qname);
  u16(p, (unsigned)qtype);
  u16(p, 1);
  for (size_t i = 0; i < nan; i++)
    put_rr(p, an[i]);
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
  static struct pkt p;
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
