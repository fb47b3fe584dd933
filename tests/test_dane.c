/*
 * test_dane.c — TLSA matching (lib/dane.c) against certificates made at
 * test time by tests/certs/mkdane.sh (certtool), with TLSA data from
 * danetool and certtool's DER output, never from the code under test.
 *
 * The seven cases wave2-design 2.4 measured against libgnutls-dane are
 * here, with the verdicts RFC 7672 asks for, plus the DANE-TA pitfalls
 * Postfix's and Stalwart's suites cover (2.5): the forged issuer name,
 * a chain through a non-CA, a path length violation, clientAuth-only
 * EKU, the CN with DNS SANs present, expired certificates below the
 * anchor, anchors carried by the record, digest agility.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "dane_int.h"
#include "smtpout/common.h"

static char pki[256];

/* A chain from NAME-chain.pem, as DER. */
struct chain {
  gnutls_datum_t der[DANE_MAX_CHAIN];
  struct dane_cert certs[DANE_MAX_CHAIN];
  size_t n;
};

static void read_file(const char *path, gnutls_datum_t *out)
{
  if (gnutls_load_file(path, out) < 0)
    fail_msg("cannot read %s", path);
}

static void chain_add_pem(struct chain *c, const char *name)
{
  char path[512];
  snprintf(path, sizeof(path), "%s/%s.pem", pki, name);
  gnutls_datum_t pem;
  read_file(path, &pem);
  gnutls_x509_crt_t crt;
  assert_int_equal(gnutls_x509_crt_init(&crt), 0);
  assert_int_equal(gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM), 0);
  assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER,
                                           &c->der[c->n]), 0);
  c->certs[c->n].der = c->der[c->n].data;
  c->certs[c->n].len = c->der[c->n].size;
  c->n++;
  gnutls_x509_crt_deinit(crt);
  gnutls_free(pem.data);
}

/* chain_of("mx2", "ica", "ca", NULL) */
static struct chain *chain_of(const char *first, ...)
{
  static struct chain c;
  for (size_t i = 0; i < c.n; i++)
    gnutls_free(c.der[i].data);
  memset(&c, 0, sizeof(c));
  va_list ap;
  va_start(ap, first);
  for (const char *n = first; n; n = va_arg(ap, const char *))
    chain_add_pem(&c, n);
  va_end(ap);
  return &c;
}

/* The records of NAME.tlsa ("U S M HEX" lines). */
struct recs {
  struct dns_tlsa r[8];
  uint8_t data[8][2048];
  size_t n;
};

static int hexval(int c)
{
  return c <= '9' ? c - '0' : c - 'a' + 10;
}

static void load_tlsa(const char *name, struct recs *out)
{
  char path[512], line[8192];
  snprintf(path, sizeof(path), "%s/%s.tlsa", pki, name);
  FILE *f = fopen(path, "r");
  if (!f)
    fail_msg("cannot read %s", path);
  out->n = 0;
  unsigned u, s, m;
  char hex[8000];
  while (fgets(line, sizeof(line), f) &&
         sscanf(line, "%u %u %u %7999s", &u, &s, &m, hex) == 4) {
    struct dns_tlsa *r = &out->r[out->n];
    size_t len = strlen(hex) / 2;
    assert_true(len <= sizeof(out->data[0]));
    for (size_t i = 0; i < len; i++)
      out->data[out->n][i] =
          (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
    r->usage = (uint8_t)u;
    r->selector = (uint8_t)s;
    r->mtype = (uint8_t)m;
    r->data = out->data[out->n];
    r->len = len;
    out->n++;
  }
  fclose(f);
  assert_int_equal(out->n, 6);
}

/* One record of NAME.tlsa: "3 1 1" -> its data. */
static struct dns_tlsa rec(const char *name, unsigned u, unsigned s,
                           unsigned m)
{
  static struct recs cache[8];
  static unsigned next;
  struct recs *r = &cache[next++ % 8];
  load_tlsa(name, r);
  for (size_t i = 0; i < r->n; i++)
    if (r->r[i].selector == s && r->r[i].mtype == m) {
      struct dns_tlsa t = r->r[i];
      t.usage = (uint8_t)u; /* tests ask for other usages on purpose */
      return t;
    }
  fail_msg("no %u %u %u record for %s", u, s, m, name);
  return r->r[0];
}

static const char *mx2_names[] = {"mx2.secure.test", "secure.test"};

static struct dane_result verify(const struct dns_tlsa *records, size_t n,
                                 const struct chain *c,
                                 const char *const *names, size_t nnames,
                                 int64_t now)
{
  struct dane_result res;
  assert_int_equal(dane_verify(records, n, c->certs, c->n, names, nnames,
                               now, &res),
                   0);
  return res;
}

static void expect(const struct dane_result *res, int status)
{
  if (res->status != status)
    fail_msg("status %s, want %s (%s)", dane_status_name(res->status),
             dane_status_name(status), res->reason);
}

static int64_t now(void) { return (int64_t)time(NULL); }

/* ---- DANE-EE ---- */

static void test_dane_ee_matches_the_leaf_by_every_selector_and_type(
    void **state)
{
  (void)state;
  struct recs r;
  load_tlsa("ee", &r);
  struct chain *c = chain_of("ee", NULL);
  const char *unrelated[] = {"unrelated.example"};
  for (size_t i = 0; i < r.n; i++) {
    struct dane_result res = verify(&r.r[i], 1, c, unrelated, 1, now());
    expect(&res, DANE_MATCHED);
    char want[12];
    snprintf(want, sizeof(want), "3 %u %u", r.r[i].selector, r.r[i].mtype);
    assert_string_equal(res.matched, want);
    assert_int_equal(res.depth, 0);
    assert_int_equal(res.record, 0);
    assert_int_equal(res.usable, 1);
  }
}

static void test_dane_ee_ignores_names_and_dates(void **state)
{
  (void)state;
  /* wave2-design 2.4 case 5: expired self-signed leaf, unrelated name. */
  struct dns_tlsa t = rec("ee-expired", 3, 1, 1);
  struct chain *c = chain_of("ee-expired", NULL);
  const char *unrelated[] = {"unrelated.example"};
  struct dane_result res = verify(&t, 1, c, unrelated, 1, now());
  expect(&res, DANE_MATCHED);
  /* A CA-issued leaf matched by DANE-EE needs neither its chain nor a
   * valid date nor the right name. */
  t = rec("expired", 3, 0, 1);
  c = chain_of("expired", NULL);
  res = verify(&t, 1, c, unrelated, 1, now());
  expect(&res, DANE_MATCHED);
}

static void test_dane_ee_for_another_key_does_not_match(void **state)
{
  (void)state;
  struct dns_tlsa t[2] = {rec("mx2", 3, 1, 1), rec("mx2", 3, 0, 0)};
  struct chain *c = chain_of("ee", NULL);
  struct dane_result res = verify(t, 2, c, mx2_names, 2, now());
  expect(&res, DANE_NO_MATCH);
  assert_int_equal(res.usable, 2);
  assert_string_equal(res.matched, "");
  assert_true(strstr(res.reason, "no TLSA record matches") != NULL);
  /* DANE-EE never looks past the leaf: the issuer's key does not do. */
  struct dns_tlsa ica = rec("ica", 3, 1, 1);
  c = chain_of("mx2", "ica", "ca", NULL);
  res = verify(&ica, 1, c, mx2_names, 2, now());
  expect(&res, DANE_NO_MATCH);
}

/* ---- DANE-TA ---- */

static void test_dane_ta_matches_root_or_intermediate_in_the_chain(
    void **state)
{
  (void)state;
  struct chain *c = chain_of("mx2", "ica", "ca", NULL);
  const char *anchors[] = {"ca", "ica"};
  for (int a = 0; a < 2; a++) {
    struct recs r;
    load_tlsa(anchors[a], &r);
    assert_int_equal(r.r[0].usage, 2);
    for (size_t i = 0; i < r.n; i++) {
      struct dane_result res = verify(&r.r[i], 1, c, mx2_names, 1, now());
      expect(&res, DANE_MATCHED);
      assert_int_equal(res.usage, 2);
      assert_int_equal(res.depth, a == 0 ? 2 : 1);
    }
  }
}

static void test_dane_ta_requires_the_mx_or_base_domain_name(void **state)
{
  (void)state;
  /* wave2-design 2.4 case 2: right anchor, other name. */
  struct dns_tlsa t = rec("ca", 2, 1, 1);
  struct chain *c = chain_of("wrongname", "ica", "ca", NULL);
  struct dane_result res = verify(&t, 1, c, mx2_names, 2, now());
  expect(&res, DANE_NAME_MISMATCH);
  assert_true(strstr(res.reason, "mx2.secure.test") != NULL);
  /* The same chain is fine when its name is a reference identifier (the
   * TLSA base domain, say). */
  const char *names[] = {"mx2.secure.test", "other.example"};
  res = verify(&t, 1, c, names, 2, now());
  expect(&res, DANE_MATCHED);
  /* No reference identifier at all: nothing can match. */
  res = verify(&t, 1, c, NULL, 0, now());
  expect(&res, DANE_NAME_MISMATCH);
}

static void test_dane_ta_name_rules_wildcard_and_cn(void **state)
{
  (void)state;
  struct dns_tlsa t = rec("ica", 2, 0, 1);
  struct chain *c = chain_of("wildcard", "ica", "ca", NULL);
  const char *one[1];
  one[0] = "mx2.secure.test";
  struct dane_result res = verify(&t, 1, c, one, 1, now());
  expect(&res, DANE_MATCHED);
  one[0] = "secure.test"; /* "*" is one whole label, never none */
  res = verify(&t, 1, c, one, 1, now());
  expect(&res, DANE_NAME_MISMATCH);
  one[0] = "a.mx2.secure.test"; /* ... and never two */
  res = verify(&t, 1, c, one, 1, now());
  expect(&res, DANE_NAME_MISMATCH);
  /* RFC 7672 3.2.3: with a DNS SAN present, the CN is not a name. */
  c = chain_of("cnonly", "ica", "ca", NULL);
  res = verify(&t, 1, c, mx2_names, 1, now());
  expect(&res, DANE_NAME_MISMATCH);
}

static void test_forged_issuer_name_does_not_match(void **state)
{
  (void)state;
  /* The leaf names the genuine CA as its issuer and is followed by it,
   * but was signed by another key with the same name. */
  struct chain *c = chain_of("forged", "ca", NULL);
  for (unsigned s = 0; s <= 1; s++)
    for (unsigned m = 0; m <= 2; m++) {
      struct dns_tlsa t = rec("ca", 2, s, m);
      struct dane_result res = verify(&t, 1, c, mx2_names, 2, now());
      if (res.status == DANE_MATCHED)
        fail_msg("forged chain matched 2 %u %u", s, m);
      expect(&res, DANE_CHAIN_INVALID);
    }
  /* Without the genuine CA in the chain, through the anchors a record
   * carries itself. */
  c = chain_of("forged", NULL);
  struct dns_tlsa oob[2] = {rec("ca", 2, 0, 0), rec("ca", 2, 1, 0)};
  for (int i = 0; i < 2; i++) {
    struct dane_result res = verify(&oob[i], 1, c, mx2_names, 2, now());
    if (res.status == DANE_MATCHED)
      fail_msg("forged leaf matched an out-of-band anchor (%d)", i);
  }
}

static void test_leaf_not_signed_by_its_named_issuer_does_not_match(
    void **state)
{
  (void)state;
  /* The forged chain above is caught by its key identifier already: the
   * path never reaches the genuine CA.  A forger can leave it out; what
   * remains is the signature.  Change one octet of the leaf's serial
   * number: issuer name and key identifier still point at the genuine
   * intermediate, the signature no longer verifies. */
  struct chain *c = chain_of("mx2", "ica", "ca", NULL);
  static const uint8_t serial_at[] = {0xa0, 0x03, 0x02, 0x01, 0x02, 0x02};
  uint8_t *der = c->der[0].data;
  size_t i;
  for (i = 0; i + sizeof(serial_at) + 2 < c->der[0].size; i++)
    if (memcmp(der + i, serial_at, sizeof(serial_at)) == 0)
      break;
  assert_true(i + sizeof(serial_at) + 2 < c->der[0].size);
  der[i + sizeof(serial_at) + 2] ^= 0x01;
  const char *anchors[] = {"ca", "ica"};
  for (int a = 0; a < 2; a++) {
    struct dns_tlsa t = rec(anchors[a], 2, 1, 1);
    struct dane_result res = verify(&t, 1, c, mx2_names, 2, now());
    expect(&res, DANE_CHAIN_INVALID);
    assert_true(strstr(res.reason, "signature") != NULL);
  }
  /* DANE-EE by key still matches: the handshake, not the certificate's
   * signature, proves the server holds the key. */
  struct dns_tlsa ee = rec("mx2", 3, 1, 1);
  struct dane_result res = verify(&ee, 1, c, mx2_names, 2, now());
  expect(&res, DANE_MATCHED);
}

static void test_attacker_ca_padded_with_the_genuine_one_does_not_match(
    void **state)
{
  (void)state;
  /* wave2-design 2.4 case 3: [forged leaf, attacker CA, genuine CA]. */
  struct dns_tlsa t = rec("ca", 2, 1, 1);
  struct chain *c = chain_of("evil", "evil-ca", "ca", NULL);
  struct dane_result res = verify(&t, 1, c, mx2_names, 2, now());
  expect(&res, DANE_CHAIN_INVALID);
  assert_true(strstr(res.reason, "does not issue") != NULL);
}

static void test_dane_ta_checks_dates_below_the_anchor(void **state)
{
  (void)state;
  struct dns_tlsa t = rec("ica", 2, 1, 1);
  struct chain *c = chain_of("expired", "ica", "ca", NULL);
  struct dane_result res = verify(&t, 1, c, mx2_names, 2, now());
  expect(&res, DANE_EXPIRED);
  assert_true(strstr(res.reason, "expired") != NULL);
  /* Time is the caller's: the valid chain ten years on, and before its
   * leaf existed. */
  c = chain_of("mx2", "ica", "ca", NULL);
  res = verify(&t, 1, c, mx2_names, 2, now() + 11 * 366 * 86400LL);
  expect(&res, DANE_EXPIRED);
  res = verify(&t, 1, c, mx2_names, 2, now() - 86400);
  expect(&res, DANE_EXPIRED);
  assert_true(strstr(res.reason, "not yet valid") != NULL);
  res = verify(&t, 1, c, mx2_names, 2, now());
  expect(&res, DANE_MATCHED);
  /* notBefore and notAfter are both inside the validity period (RFC 5280
   * 4.1.2.5). */
  gnutls_x509_crt_t leaf;
  gnutls_datum_t d = {c->der[0].data, c->der[0].size};
  assert_int_equal(gnutls_x509_crt_init(&leaf), 0);
  assert_int_equal(gnutls_x509_crt_import(leaf, &d, GNUTLS_X509_FMT_DER), 0);
  int64_t from = gnutls_x509_crt_get_activation_time(leaf);
  int64_t until = gnutls_x509_crt_get_expiration_time(leaf);
  gnutls_x509_crt_deinit(leaf);
  res = verify(&t, 1, c, mx2_names, 2, from);
  expect(&res, DANE_MATCHED);
  res = verify(&t, 1, c, mx2_names, 2, from - 1);
  expect(&res, DANE_EXPIRED);
  res = verify(&t, 1, c, mx2_names, 2, until);
  expect(&res, DANE_MATCHED);
  res = verify(&t, 1, c, mx2_names, 2, until + 1);
  expect(&res, DANE_EXPIRED);
}

static void test_dane_ta_path_must_hold_ca_rules(void **state)
{
  (void)state;
  /* A leaf (CA:FALSE) cannot issue. */
  struct dns_tlsa t = rec("ica", 2, 1, 1);
  struct chain *c = chain_of("undernotca", "notca", "ica", "ca", NULL);
  struct dane_result res = verify(&t, 1, c, mx2_names, 2, now());
  expect(&res, DANE_CHAIN_INVALID);
  /* A clientAuth-only leaf is not a server certificate. */
  c = chain_of("clientonly", "ica", "ca", NULL);
  res = verify(&t, 1, c, mx2_names, 2, now());
  expect(&res, DANE_CHAIN_INVALID);
  /* Path length 0 under the root forbids the CA below it... */
  t = rec("ca", 2, 1, 1);
  c = chain_of("plen", "plen0-sub", "plen0", "ca", NULL);
  res = verify(&t, 1, c, mx2_names, 2, now());
  expect(&res, DANE_CHAIN_INVALID);
  /* ... but not what that CA issued, anchored at it. */
  t = rec("plen0-sub", 2, 1, 1);
  res = verify(&t, 1, c, mx2_names, 2, now());
  expect(&res, DANE_MATCHED);
}

static void test_dane_ta_record_for_the_leaf_is_not_an_anchor(void **state)
{
  (void)state;
  /* Postfix's "depth 0 TA" and "non-TA" cases. */
  struct dns_tlsa t = rec("mx2", 2, 1, 1);
  struct chain *c = chain_of("mx2", "ica", "ca", NULL);
  struct dane_result res = verify(&t, 1, c, mx2_names, 2, now());
  expect(&res, DANE_CHAIN_INVALID);
  assert_true(strstr(res.reason, "itself") != NULL);
  t = rec("ee", 2, 0, 1);
  c = chain_of("ee", NULL);
  const char *mx1[] = {"mx1.secure.test"};
  res = verify(&t, 1, c, mx1, 1, now());
  assert_true(res.status != DANE_MATCHED);
}

static void test_anchor_carried_by_the_record(void **state)
{
  (void)state;
  /* wave2-design 2.4 case 4 ("2 1 0", anchor not sent), and "2 0 0". */
  struct chain *c = chain_of("mx2", "ica", NULL);
  struct dns_tlsa t[2] = {rec("ca", 2, 1, 0), rec("ca", 2, 0, 0)};
  for (int i = 0; i < 2; i++) {
    struct dane_result res = verify(&t[i], 1, c, mx2_names, 2, now());
    expect(&res, DANE_MATCHED);
    assert_int_equal(res.depth, -1);
  }
  /* The intermediate as the carried anchor, only the leaf sent. */
  c = chain_of("mx2", NULL);
  struct dns_tlsa it[2] = {rec("ica", 2, 1, 0), rec("ica", 2, 0, 0)};
  for (int i = 0; i < 2; i++) {
    struct dane_result res = verify(&it[i], 1, c, mx2_names, 2, now());
    expect(&res, DANE_MATCHED);
  }
  /* The name and the dates still count. */
  c = chain_of("wrongname", NULL);
  struct dane_result res = verify(&it[0], 1, c, mx2_names, 2, now());
  expect(&res, DANE_NAME_MISMATCH);
  c = chain_of("expired", NULL);
  res = verify(&it[1], 1, c, mx2_names, 2, now());
  expect(&res, DANE_EXPIRED);
  /* The root's key does not vouch for a leaf the intermediate issued
   * when the intermediate is missing... */
  c = chain_of("mx2", NULL);
  res = verify(&t[0], 1, c, mx2_names, 2, now());
  expect(&res, DANE_NO_MATCH);
  /* ... and a digest cannot stand in for an anchor that was not sent
   * (RFC 7671 5.2.2). */
  struct dns_tlsa digest = rec("ca", 2, 1, 1);
  c = chain_of("mx2", "ica", NULL);
  res = verify(&digest, 1, c, mx2_names, 2, now());
  expect(&res, DANE_NO_MATCH);
}

static void test_unordered_and_padded_chains_still_match(void **state)
{
  (void)state;
  struct dns_tlsa t = rec("ca", 2, 1, 1);
  struct chain *c = chain_of("mx2", "ca", "evil-ca", "ica", NULL);
  struct dane_result res = verify(&t, 1, c, mx2_names, 2, now());
  expect(&res, DANE_MATCHED);
  assert_int_equal(res.depth, 1); /* the root's place as presented */
}

static void test_unusable_records_make_an_unusable_set(void **state)
{
  (void)state;
  struct chain *c = chain_of("ee", NULL);
  struct dns_tlsa t[7] = {
      rec("ee", 0, 1, 1), /* PKIX-TA: unusable for SMTP (case 6) */
      rec("ee", 1, 1, 1), /* PKIX-EE */
      rec("ee", 4, 1, 1), /* unknown usage */
      rec("ee", 3, 1, 1), rec("ee", 3, 1, 1), rec("ee", 3, 1, 1),
      rec("ee", 3, 1, 0),
  };
  t[3].selector = 2;      /* unknown selector */
  t[4].mtype = 3;         /* unknown matching type */
  t[5].len = 31;          /* a SHA-256 of the wrong length */
  t[6].len = 0;           /* "full" but empty */
  for (int i = 0; i < 7; i++)
    assert_false(dane_record_usable(&t[i]));
  struct dane_result res = verify(t, 7, c, NULL, 0, now());
  expect(&res, DANE_NO_USABLE);
  assert_int_equal(res.usable, 0);
  res = verify(NULL, 0, c, NULL, 0, now());
  expect(&res, DANE_NO_USABLE);
  /* One usable record among them decides. */
  struct dns_tlsa ok[2] = {t[0], rec("ee", 3, 1, 1)};
  res = verify(ok, 2, c, NULL, 0, now());
  expect(&res, DANE_MATCHED);
  assert_int_equal(res.record, 1);
  assert_int_equal(res.usable, 1);
}

static void test_sha512_records_outrank_sha256_ones(void **state)
{
  (void)state;
  struct chain *c = chain_of("ee", NULL);
  uint8_t wrong[64] = {0};
  struct dns_tlsa t[2] = {rec("ee", 3, 1, 1), rec("ee", 3, 1, 2)};
  /* A right SHA-512 wins over a wrong SHA-256 ... */
  t[0].data = wrong;
  struct dane_result res = verify(t, 2, c, NULL, 0, now());
  expect(&res, DANE_MATCHED);
  assert_string_equal(res.matched, "3 1 2");
  /* ... and a right SHA-256 does not count beside a SHA-512 (RFC 7671
   * 9), even a wrong one. */
  t[0] = rec("ee", 3, 1, 1);
  t[1].data = wrong;
  res = verify(t, 2, c, NULL, 0, now());
  expect(&res, DANE_NO_MATCH);
  assert_int_equal(res.usable, 1);
  /* Other selectors are not affected. */
  struct dns_tlsa u[2] = {rec("ee", 3, 0, 1), t[1]};
  res = verify(u, 2, c, NULL, 0, now());
  expect(&res, DANE_MATCHED);
  assert_string_equal(res.matched, "3 0 1");
}

static void test_no_or_unreadable_certificate(void **state)
{
  (void)state;
  struct dns_tlsa t = rec("ee", 3, 1, 1);
  struct dane_result res;
  assert_int_equal(dane_verify(&t, 1, NULL, 0, NULL, 0, now(), &res), 0);
  expect(&res, DANE_NO_CERTIFICATE);
  static const uint8_t junk[] = {0x30, 0x82, 0xff, 0xff, 1, 2, 3};
  struct dane_cert bad[2] = {{junk, sizeof(junk)}, {junk, 2}};
  assert_int_equal(dane_verify(&t, 1, bad, 2, NULL, 0, now(), &res), 0);
  expect(&res, DANE_NO_CERTIFICATE);
  /* Every prefix of a real certificate: no crash, no match. */
  struct chain *c = chain_of("ee", NULL);
  for (size_t n = 0; n < c->certs[0].len; n++) {
    struct dane_cert cut = {c->certs[0].der, n};
    assert_int_equal(dane_verify(&t, 1, &cut, 1, NULL, 0, now(), &res), 0);
    assert_int_not_equal(res.status, DANE_MATCHED);
  }
  assert_int_equal(dane_verify(&t, 1, NULL, 1, NULL, 0, now(), &res),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(dane_verify(&t, 1, c->certs, 1, NULL, 0, now(), NULL),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
}

static void test_ee_and_ta_records_together(void **state)
{
  (void)state;
  /* The set a site rolling keys publishes: an old EE, the CA. */
  struct dns_tlsa t[2] = {rec("ee", 3, 1, 1), rec("ca", 2, 0, 1)};
  struct chain *c = chain_of("mx2", "ica", "ca", NULL);
  struct dane_result res = verify(t, 2, c, mx2_names, 2, now());
  expect(&res, DANE_MATCHED);
  assert_string_equal(res.matched, "2 0 1"); /* case 7 */
  assert_int_equal(res.record, 1);
  c = chain_of("ee", NULL);
  res = verify(t, 2, c, mx2_names, 2, now());
  expect(&res, DANE_MATCHED);
  assert_string_equal(res.matched, "3 1 1");
}

static int make_pki(void **state)
{
  (void)state;
  snprintf(pki, sizeof(pki), "%s/smtpout-dane-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(pki))
    return -1;
  char cmd[1024];
  snprintf(cmd, sizeof(cmd), "bash '%s' '%s'", MKDANE, pki);
  return system(cmd) == 0 ? 0 : -1;
}

static int remove_pki(void **state)
{
  (void)state;
  char cmd[1024];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pki);
  chain_of(NULL); /* frees the last chain */
  return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(
          test_dane_ee_matches_the_leaf_by_every_selector_and_type),
      cmocka_unit_test(test_dane_ee_ignores_names_and_dates),
      cmocka_unit_test(test_dane_ee_for_another_key_does_not_match),
      cmocka_unit_test(test_dane_ta_matches_root_or_intermediate_in_the_chain),
      cmocka_unit_test(test_dane_ta_requires_the_mx_or_base_domain_name),
      cmocka_unit_test(test_dane_ta_name_rules_wildcard_and_cn),
      cmocka_unit_test(test_forged_issuer_name_does_not_match),
      cmocka_unit_test(
          test_leaf_not_signed_by_its_named_issuer_does_not_match),
      cmocka_unit_test(
          test_attacker_ca_padded_with_the_genuine_one_does_not_match),
      cmocka_unit_test(test_dane_ta_checks_dates_below_the_anchor),
      cmocka_unit_test(test_dane_ta_path_must_hold_ca_rules),
      cmocka_unit_test(test_dane_ta_record_for_the_leaf_is_not_an_anchor),
      cmocka_unit_test(test_anchor_carried_by_the_record),
      cmocka_unit_test(test_unordered_and_padded_chains_still_match),
      cmocka_unit_test(test_unusable_records_make_an_unusable_set),
      cmocka_unit_test(test_sha512_records_outrank_sha256_ones),
      cmocka_unit_test(test_no_or_unreadable_certificate),
      cmocka_unit_test(test_ee_and_ta_records_together),
  };
  return cmocka_run_group_tests(tests, make_pki, remove_pki);
}
