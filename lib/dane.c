/*
 * dane.c — see dane_int.h.
 *
 * The order of the checks: usable records first (a set with none is a
 * verdict of its own); DANE-EE against the leaf; then DANE-TA, walking the
 * presented chain from the leaf towards its root by issuer name, and for
 * each certificate on that path that a record matches, verifying the path
 * below it with that certificate as the only anchor; then the anchors the
 * records carry themselves.  When several attempts fail, the reason kept
 * is the one that got furthest (a path that verified but named another
 * host says more than "no match").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "dane_int.h"
#include "smtpout/common.h"

const char *dane_status_name(int status)
{
  switch (status) {
  case DANE_MATCHED: return "matched";
  case DANE_NO_USABLE: return "no-usable-records";
  case DANE_NO_CERTIFICATE: return "no-certificate";
  case DANE_NO_MATCH: return "no-match";
  case DANE_CHAIN_INVALID: return "chain-invalid";
  case DANE_EXPIRED: return "expired";
  case DANE_NAME_MISMATCH: return "name-mismatch";
  default: return NULL;
  }
}

int dane_record_usable(const struct dns_tlsa *r)
{
  if (r->usage != 2 && r->usage != 3)
    return 0;
  if (r->selector > 1)
    return 0;
  switch (r->mtype) {
  case 0: return r->len > 0;
  case 1: return r->len == 32;
  case 2: return r->len == 64;
  default: return 0;
  }
}

/* ---- DER: just enough to find a certificate's parts ---- */

/*
 * Reads one DER TLV at p[0..len): its tag, where its contents start
 * (*hdr) and their length (*clen).  Definite lengths of at most four
 * octets; returns 0, or -1 when it does not fit.
 */
static int der_tlv(const uint8_t *p, size_t len, uint8_t *tag, size_t *hdr,
                   size_t *clen)
{
  if (len < 2)
    return -1;
  *tag = p[0];
  if ((p[0] & 0x1f) == 0x1f)
    return -1; /* high tag numbers: not in a certificate's outer parts */
  size_t n = p[1], h = 2;
  if (n & 0x80) {
    size_t k = n & 0x7f;
    if (k == 0 || k > 4 || len < 2 + k)
      return -1;
    n = 0;
    for (size_t i = 0; i < k; i++)
      n = n << 8 | p[2 + i];
    h += k;
  }
  if (n > len - h)
    return -1;
  *hdr = h;
  *clen = n;
  return 0;
}

/*
 * The TBSCertificate (whole TLV) and the SubjectPublicKeyInfo (whole TLV)
 * of a DER certificate (RFC 5280 4.1): Certificate is a SEQUENCE of
 * tbsCertificate, signatureAlgorithm, signatureValue; tbsCertificate a
 * SEQUENCE of [0] version (optional), serialNumber, signature, issuer,
 * validity, subject, subjectPublicKeyInfo, ...
 */
static int cert_parts(const uint8_t *der, size_t len, const uint8_t **tbs,
                      size_t *tbs_len, const uint8_t **spki,
                      size_t *spki_len)
{
  uint8_t tag;
  size_t hdr, clen;
  if (der_tlv(der, len, &tag, &hdr, &clen) != 0 || tag != 0x30)
    return -1;
  const uint8_t *p = der + hdr;
  size_t left = clen;
  if (der_tlv(p, left, &tag, &hdr, &clen) != 0 || tag != 0x30)
    return -1;
  *tbs = p;
  *tbs_len = hdr + clen;
  p += hdr;
  left = clen;
  /* Skip [0] version if present, then serial, signature, issuer,
   * validity, subject: the next TLV is the SubjectPublicKeyInfo. */
  for (int field = 0; field < 6; field++) {
    if (der_tlv(p, left, &tag, &hdr, &clen) != 0)
      return -1;
    if (field == 0 && tag != 0xa0)
      field++; /* no version: this is already the serial number */
    p += hdr + clen;
    left -= hdr + clen;
  }
  if (der_tlv(p, left, &tag, &hdr, &clen) != 0 || tag != 0x30)
    return -1;
  *spki = p;
  *spki_len = hdr + clen;
  return 0;
}

/* ---- matching ---- */

/* 1 when `data` (a certificate or a key, by the record's selector)
 * matches the record's association data. */
static int data_matches(const struct dns_tlsa *r, const uint8_t *data,
                        size_t len)
{
  uint8_t digest[64];
  switch (r->mtype) {
  case 0:
    return r->len == len && memcmp(r->data, data, len) == 0;
  case 1:
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, digest) < 0)
      return 0;
    return memcmp(r->data, digest, 32) == 0;
  case 2:
    if (gnutls_hash_fast(GNUTLS_DIG_SHA512, data, len, digest) < 0)
      return 0;
    return memcmp(r->data, digest, 64) == 0;
  default:
    return 0;
  }
}

/* A presented certificate: its DER and parts, and GnuTLS's view. */
struct cert {
  const uint8_t *der;
  size_t len;
  const uint8_t *tbs, *spki;
  size_t tbs_len, spki_len;
  gnutls_x509_crt_t crt;
};

static int cert_matches(const struct dns_tlsa *r, const struct cert *c)
{
  return r->selector == 0 ? data_matches(r, c->der, c->len)
                          : data_matches(r, c->spki, c->spki_len);
}

/* The verification state: usable records, the chain, the best failure. */
struct ctx {
  const struct dns_tlsa *records;
  size_t nrecords;
  unsigned char use[DANE_MAX_RECORDS]; /* usable, after digest agility */
  struct cert certs[DANE_MAX_CHAIN];
  size_t ncerts;
  const char *const *names;
  size_t nnames;
  int64_t now;
  struct dane_result *res;
};

/* Keeps a failure when it got further than the one kept (the first of
 * equals stays: it comes from the likelier path). */
static void fail_with(struct ctx *x, int status, const char *reason)
{
  if (x->res->status != DANE_NO_MATCH && status <= x->res->status)
    return;
  x->res->status = status;
  snprintf(x->res->reason, sizeof(x->res->reason), "%s", reason);
}

static void matched(struct ctx *x, size_t rec, int depth, const char *what)
{
  const struct dns_tlsa *r = &x->records[rec];
  struct dane_result *res = x->res;
  res->status = DANE_MATCHED;
  res->record = (int)rec;
  res->usage = r->usage;
  res->selector = r->selector;
  res->mtype = r->mtype;
  res->depth = depth;
  snprintf(res->matched, sizeof(res->matched), "%u %u %u", r->usage,
           r->selector, r->mtype);
  snprintf(res->reason, sizeof(res->reason), "%s %s %s", r->usage == 3 ?
           "DANE-EE" : "DANE-TA", res->matched, what);
}

/* RFC 7671 9: within one usage and selector, a SHA-512 record makes the
 * SHA-256 ones irrelevant. */
static void select_usable(struct ctx *x)
{
  int has512[4][2] = {{0}};
  size_t n = x->nrecords < sizeof(x->use) ? x->nrecords : sizeof(x->use);
  for (size_t i = 0; i < n; i++) {
    const struct dns_tlsa *r = &x->records[i];
    x->use[i] = (unsigned char)dane_record_usable(r);
    if (x->use[i] && r->mtype == 2)
      has512[r->usage][r->selector] = 1;
  }
  for (size_t i = 0; i < n; i++) {
    const struct dns_tlsa *r = &x->records[i];
    if (x->use[i] && r->mtype == 1 && has512[r->usage][r->selector])
      x->use[i] = 0;
    x->res->usable += x->use[i];
  }
}

/* The index of the first usable record of `usage` matching `c`, or -1. */
static int find_record(const struct ctx *x, unsigned usage,
                       const struct cert *c)
{
  for (size_t i = 0; i < x->nrecords && i < sizeof(x->use); i++)
    if (x->use[i] && x->records[i].usage == usage &&
        cert_matches(&x->records[i], c))
      return (int)i;
  return -1;
}

/* Describes a certificate for a reason: its subject, cut to fit. */
static const char *subject_of(const struct cert *c, char *buf, size_t len)
{
  gnutls_datum_t dn = {NULL, 0};
  if (gnutls_x509_crt_get_dn3(c->crt, &dn, 0) < 0)
    snprintf(buf, len, "(unreadable subject)");
  else
    snprintf(buf, len, "%s", (const char *)dn.data);
  gnutls_free(dn.data);
  return buf;
}

/* Checks the dates of path[0..n) at x->now: valid from notBefore through
 * notAfter, both included (RFC 5280 4.1.2.5). */
static int dates_ok(struct ctx *x, struct cert *const *path, size_t n)
{
  char subject[120], why[256];
  for (size_t i = 0; i < n; i++) {
    time_t from = gnutls_x509_crt_get_activation_time(path[i]->crt);
    time_t until = gnutls_x509_crt_get_expiration_time(path[i]->crt);
    const char *what = NULL;
    if (from == (time_t)-1 || until == (time_t)-1)
      what = "without a readable validity period";
    else if (x->now < (int64_t)from)
      what = "not yet valid";
    else if (x->now > (int64_t)until)
      what = "expired";
    if (what) {
      snprintf(why, sizeof(why), "certificate \"%s\" at depth %zu is %s",
               subject_of(path[i], subject, sizeof(subject)), i, what);
      fail_with(x, DANE_EXPIRED, why);
      return 0;
    }
  }
  return 1;
}

static int name_ok(struct ctx *x, const struct cert *leaf)
{
  for (size_t i = 0; i < x->nnames; i++)
    if (x->names[i] && gnutls_x509_crt_check_hostname2(
                           leaf->crt, x->names[i],
                           GNUTLS_VERIFY_DO_NOT_ALLOW_IP_MATCHES))
      return 1;
  char subject[120], why[256];
  snprintf(why, sizeof(why),
           "the server certificate \"%s\" names none of the reference "
           "identifiers (%s%s%s)",
           subject_of(leaf, subject, sizeof(subject)),
           x->nnames > 0 && x->names[0] ? x->names[0] : "none",
           x->nnames > 1 && x->names[1] ? ", " : "",
           x->nnames > 1 && x->names[1] ? x->names[1] : "");
  fail_with(x, DANE_NAME_MISMATCH, why);
  return 0;
}

/*
 * Verifies path[0..n) (leaf first, each issued by the next) up to
 * `anchor`, the only trust anchor, then dates and names.  `anchor` is a
 * new certificate the trust list takes over.  Returns 1 when all hold.
 */
static int path_ok(struct ctx *x, struct cert *const *path, size_t n,
                   gnutls_x509_crt_t anchor)
{
  gnutls_x509_trust_list_t tl;
  if (gnutls_x509_trust_list_init(&tl, 0) < 0) {
    gnutls_x509_crt_deinit(anchor);
    return -1;
  }
  if (gnutls_x509_trust_list_add_cas(tl, &anchor, 1, 0) != 1) {
    gnutls_x509_crt_deinit(anchor);
    gnutls_x509_trust_list_deinit(tl, 1);
    return -1;
  }
  gnutls_x509_crt_t list[DANE_MAX_CHAIN];
  for (size_t i = 0; i < n; i++)
    list[i] = path[i]->crt;
  /* Dates are checked against the host's `now` below, not GnuTLS's
   * clock.  The path is already sorted: GnuTLS must not pick another. */
  gnutls_typed_vdata_st purpose = {
      .type = GNUTLS_DT_KEY_PURPOSE_OID,
      .data = (void *)GNUTLS_KP_TLS_WWW_SERVER,
  };
  unsigned status = 0;
  int rv = gnutls_x509_trust_list_verify_crt2(
      tl, list, (unsigned)n, &purpose, 1,
      GNUTLS_VERIFY_DISABLE_TIME_CHECKS |
          GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS |
          GNUTLS_VERIFY_DO_NOT_ALLOW_UNSORTED_CHAIN,
      &status, NULL);
  gnutls_x509_trust_list_deinit(tl, 1);
  if (rv < 0 || status != 0) {
    gnutls_datum_t text = {NULL, 0};
    char why[256];
    if (rv >= 0)
      gnutls_certificate_verification_status_print(
          status, GNUTLS_CRT_X509, &text, 0);
    snprintf(why, sizeof(why),
             "the chain does not verify up to the DANE-TA anchor: %s",
             text.data ? (const char *)text.data : gnutls_strerror(rv));
    gnutls_free(text.data);
    fail_with(x, DANE_CHAIN_INVALID, why);
    return 0;
  }
  return dates_ok(x, path, n) && name_ok(x, path[0]);
}

/* Imports DER into a new GnuTLS certificate, or NULL. */
static gnutls_x509_crt_t import(const uint8_t *der, size_t len)
{
  gnutls_x509_crt_t crt;
  gnutls_datum_t d = {(unsigned char *)der, (unsigned)len};
  if (len > UINT32_MAX || gnutls_x509_crt_init(&crt) < 0)
    return NULL;
  if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) < 0) {
    gnutls_x509_crt_deinit(crt);
    return NULL;
  }
  return crt;
}

/*
 * The path from the leaf towards its root through the presented
 * certificates, by issuer name (and key identifiers, where present:
 * gnutls_x509_crt_check_issuer), each certificate used once, stopping at a
 * self-issued one.  Servers may send their chain out of order or padded
 * (RFC 8446 4.4.2 allows it); this finds the path whatever the order.
 */
static size_t build_path(struct ctx *x, struct cert **path)
{
  unsigned char used[DANE_MAX_CHAIN] = {0};
  size_t n = 1;
  path[0] = &x->certs[0];
  used[0] = 1;
  while (n < x->ncerts) {
    struct cert *cur = path[n - 1];
    if (gnutls_x509_crt_check_issuer(cur->crt, cur->crt))
      break;
    size_t j;
    for (j = 1; j < x->ncerts; j++)
      if (!used[j] && x->certs[j].crt &&
          gnutls_x509_crt_check_issuer(cur->crt, x->certs[j].crt))
        break;
    if (j == x->ncerts)
      break;
    used[j] = 1;
    path[n++] = &x->certs[j];
  }
  return n;
}

static size_t index_of(const struct ctx *x, const struct cert *c)
{
  return (size_t)(c - x->certs);
}

/* DANE-TA with the anchor in the presented chain, above the leaf. */
static int try_ta_in_chain(struct ctx *x, struct cert **path, size_t n)
{
  for (size_t d = 1; d < n; d++) {
    int rec = find_record(x, 2, path[d]);
    if (rec < 0)
      continue;
    gnutls_x509_crt_t anchor = import(path[d]->der, path[d]->len);
    if (!anchor)
      return -1;
    int ok = path_ok(x, path, d, anchor);
    if (ok < 0)
      return -1;
    if (ok) {
      matched(x, (size_t)rec, (int)index_of(x, path[d]),
              "matched a CA certificate of the chain");
      return 1;
    }
  }
  /* A record matching the leaf itself, or a certificate off the leaf's
   * path, anchors nothing: an anchor issues the chain (RFC 7671 5.2). */
  unsigned char on_path[DANE_MAX_CHAIN] = {0};
  for (size_t d = 1; d < n; d++)
    on_path[index_of(x, path[d])] = 1;
  for (size_t i = 0; i < x->ncerts; i++) {
    if (on_path[i] || !x->certs[i].crt || find_record(x, 2, &x->certs[i]) < 0)
      continue;
    fail_with(x, DANE_CHAIN_INVALID,
              i == 0 ? "a DANE-TA record matches the server certificate "
                       "itself, which anchors nothing"
                     : "a DANE-TA record matches a certificate that does "
                       "not issue the server certificate's chain");
    break;
  }
  return 0;
}

/* 1 when `key` signed `c` (its TBSCertificate). */
static int signed_by(const struct cert *c, gnutls_pubkey_t key)
{
  uint8_t sig[1024];
  size_t sig_len = sizeof(sig);
  if (gnutls_x509_crt_get_signature(c->crt, (char *)sig, &sig_len) < 0)
    return 0;
  int algo = gnutls_x509_crt_get_signature_algorithm(c->crt);
  if (algo < 0)
    return 0;
  gnutls_datum_t tbs = {(unsigned char *)c->tbs, (unsigned)c->tbs_len};
  gnutls_datum_t s = {sig, (unsigned)sig_len};
  return gnutls_pubkey_verify_data2(key, (gnutls_sign_algorithm_t)algo, 0,
                                    &tbs, &s) >= 0;
}

/*
 * DANE-TA with the anchor in the record (RFC 7671 5.2.2, 5.2.3): "2 0 0"
 * carries the anchor certificate, "2 1 0" its public key; either may be
 * absent from the handshake.  A digest cannot stand in for an anchor.
 */
static int try_ta_out_of_band(struct ctx *x, struct cert **path, size_t n)
{
  for (size_t i = 0; i < x->nrecords && i < sizeof(x->use); i++) {
    const struct dns_tlsa *r = &x->records[i];
    if (!x->use[i] || r->usage != 2 || r->mtype != 0)
      continue;
    if (r->selector == 0) {
      gnutls_x509_crt_t anchor = import(r->data, r->len);
      if (!anchor)
        continue;
      /* The path ends at the first certificate the anchor issued. */
      size_t top = 0;
      while (top < n && !gnutls_x509_crt_check_issuer(path[top]->crt, anchor))
        top++;
      if (top == n) {
        gnutls_x509_crt_deinit(anchor);
        continue;
      }
      int ok = path_ok(x, path, top + 1, anchor);
      if (ok < 0)
        return -1;
      if (ok) {
        matched(x, i, -1, "is the anchor of the chain");
        return 1;
      }
      continue;
    }
    gnutls_pubkey_t key;
    gnutls_datum_t spki = {(unsigned char *)r->data, (unsigned)r->len};
    if (gnutls_pubkey_init(&key) < 0)
      return -1;
    if (gnutls_pubkey_import(key, &spki, GNUTLS_X509_FMT_DER) < 0) {
      gnutls_pubkey_deinit(key);
      continue;
    }
    for (size_t d = 0; d < n; d++) {
      if (!signed_by(path[d], key))
        continue;
      /* path[d] was signed by the anchor key: it is the top of the path,
       * and the rest verifies with it as the anchor.  Its own dates
       * count (it is not the anchor). */
      int ok;
      if (d == 0) {
        ok = dates_ok(x, path, 1) && name_ok(x, path[0]);
      } else {
        gnutls_x509_crt_t top = import(path[d]->der, path[d]->len);
        ok = top ? path_ok(x, path, d, top) : -1;
        if (ok > 0)
          ok = dates_ok(x, path + d, 1);
      }
      if (ok < 0) {
        gnutls_pubkey_deinit(key);
        return -1;
      }
      if (ok) {
        gnutls_pubkey_deinit(key);
        matched(x, i, -1, "is the key that signed the chain");
        return 1;
      }
      break;
    }
    gnutls_pubkey_deinit(key);
  }
  return 0;
}

int dane_verify(const struct dns_tlsa *records, size_t nrecords,
                const struct dane_cert *chain, size_t nchain,
                const char *const *names, size_t nnames, int64_t now,
                struct dane_result *res)
{
  if (!res || (nrecords > 0 && !records) || (nchain > 0 && !chain) ||
      (nnames > 0 && !names))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  struct ctx x;
  memset(&x, 0, sizeof(x));
  memset(res, 0, sizeof(*res));
  res->status = DANE_NO_MATCH;
  res->record = -1;
  res->depth = -1;
  x.records = records;
  x.nrecords = nrecords;
  x.names = names;
  x.nnames = nnames;
  x.now = now;
  x.res = res;

  select_usable(&x);
  if (res->usable == 0) {
    res->status = DANE_NO_USABLE;
    snprintf(res->reason, sizeof(res->reason),
             "none of the %zu TLSA records is usable for SMTP", nrecords);
    return 0;
  }
  x.ncerts = nchain < DANE_MAX_CHAIN ? nchain : DANE_MAX_CHAIN;
  int rv = 0;
  for (size_t i = 0; i < x.ncerts; i++) {
    struct cert *c = &x.certs[i];
    c->der = chain[i].der;
    c->len = chain[i].len;
    /* An unreadable certificate above the leaf is as good as absent. */
    if (!c->der || cert_parts(c->der, c->len, &c->tbs, &c->tbs_len, &c->spki,
                              &c->spki_len) != 0)
      continue;
    c->crt = import(c->der, c->len);
  }
  if (x.ncerts == 0 || !x.certs[0].crt) {
    res->status = DANE_NO_CERTIFICATE;
    snprintf(res->reason, sizeof(res->reason), "%s",
             x.ncerts == 0 ? "the server sent no certificate"
                           : "the server certificate cannot be read");
    goto out;
  }

  /* DANE-EE: the leaf, nothing else (RFC 7672 3.1.1). */
  int rec = find_record(&x, 3, &x.certs[0]);
  if (rec >= 0) {
    matched(&x, (size_t)rec, 0, "matched the server certificate");
    goto out;
  }

  struct cert *path[DANE_MAX_CHAIN];
  size_t n = build_path(&x, path);
  rv = try_ta_in_chain(&x, path, n);
  if (rv == 0)
    rv = try_ta_out_of_band(&x, path, n);
  if (rv == 0 && res->reason[0] == '\0')
    snprintf(res->reason, sizeof(res->reason),
             "no TLSA record matches the server's certificate chain "
             "(%zu usable records, %zu certificates)",
             res->usable, x.ncerts);
  rv = rv < 0 ? SMTPOUT_ERR_NOMEM : 0;
out:
  for (size_t i = 0; i < x.ncerts; i++)
    if (x.certs[i].crt)
      gnutls_x509_crt_deinit(x.certs[i].crt);
  return rv;
}

/* ---- the digest of a set ---- */

static int cmp_digest(const void *a, const void *b)
{
  return memcmp(a, b, 32);
}

/* SHA-256 over `n` length-prefixed fields. */
static int digest_fields(const void *const *data, const size_t *len, size_t n,
                         uint8_t out[32])
{
  gnutls_hash_hd_t h;
  if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
    return SMTPOUT_ERR_NOMEM;
  int rv = 0;
  for (size_t i = 0; i < n && rv == 0; i++) {
    uint8_t l[4] = {(uint8_t)(len[i] >> 24), (uint8_t)(len[i] >> 16),
                    (uint8_t)(len[i] >> 8), (uint8_t)len[i]};
    if (gnutls_hash(h, l, sizeof(l)) < 0 ||
        (len[i] > 0 && gnutls_hash(h, data[i], len[i]) < 0))
      rv = SMTPOUT_ERR_NOMEM;
  }
  gnutls_hash_deinit(h, out);
  return rv;
}

int dane_set_digest(const struct dns_tlsa *records, size_t nrecords,
                    const char *const *names, size_t nnames,
                    uint8_t digest[32])
{
  /* Each record and each name is digested alone, the digests sorted, and
   * the sorted list digested: the order of an RRset means nothing (RFC
   * 2181 5), and a resolver may shuffle it between two answers. */
  uint8_t parts[DANE_MAX_RECORDS + DANE_MAX_NAMES][32];
  size_t np = 0;
  for (size_t i = 0; i < nrecords && i < DANE_MAX_RECORDS; i++) {
    uint8_t usm[3] = {records[i].usage, records[i].selector,
                      records[i].mtype};
    const void *d[2] = {usm, records[i].data};
    size_t l[2] = {sizeof(usm), records[i].len};
    if (digest_fields(d, l, 2, parts[np++]) != 0)
      return SMTPOUT_ERR_NOMEM;
  }
  qsort(parts, np, 32, cmp_digest);
  size_t nrec = np;
  for (size_t i = 0; i < nnames && i < DANE_MAX_NAMES; i++) {
    const void *d[1] = {names[i]};
    size_t l[1] = {strlen(names[i])};
    if (digest_fields(d, l, 1, parts[np++]) != 0)
      return SMTPOUT_ERR_NOMEM;
  }
  qsort(parts + nrec, np - nrec, 32, cmp_digest);
  /* The count of records first: no list of names can pass for records. */
  const void *d[DANE_MAX_RECORDS + DANE_MAX_NAMES + 1];
  size_t l[DANE_MAX_RECORDS + DANE_MAX_NAMES + 1];
  uint8_t count[4] = {(uint8_t)(nrec >> 24), (uint8_t)(nrec >> 16),
                      (uint8_t)(nrec >> 8), (uint8_t)nrec};
  d[0] = count;
  l[0] = sizeof(count);
  for (size_t i = 0; i < np; i++) {
    d[i + 1] = parts[i];
    l[i + 1] = 32;
  }
  return digest_fields(d, l, np + 1, digest);
}
