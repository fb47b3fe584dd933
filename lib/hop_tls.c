/*
 * hop_tls.c — see hop_tls_int.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dane_int.h"
#include "hop_tls_int.h"
#include "route_int.h"
#include "smtpout/session.h"

/* The DANE material in one allocation: the struct the backend reads, the
 * records, the name pointers, the names, then the records' data. */
struct dane_copy {
  struct tls_dane pub;
  struct dns_tlsa records[DANE_MAX_RECORDS];
  const char *name_ptrs[DANE_MAX_NAMES];
  char names[DANE_MAX_NAMES][NAME_MAX_LEN];
  uint8_t data[];
};

static int copy_dane(struct hop_tls *t, const smtpout_hop *hop)
{
  const struct dns_tlsa *records;
  const char *const *names;
  size_t nrecords, nnames;
  route_hop_dane(hop, &records, &nrecords, &names, &nnames);
  if (nrecords > DANE_MAX_RECORDS)
    nrecords = DANE_MAX_RECORDS;
  if (nnames > DANE_MAX_NAMES)
    nnames = DANE_MAX_NAMES;
  size_t data = 0;
  for (size_t i = 0; i < nrecords; i++)
    data += records[i].len;
  struct dane_copy *c = calloc(1, sizeof(*c) + data);
  if (c == NULL)
    return SMTPOUT_ERR_NOMEM;
  uint8_t *p = c->data;
  for (size_t i = 0; i < nrecords; i++) {
    c->records[i] = records[i];
    if (records[i].len > 0)
      memcpy(p, records[i].data, records[i].len);
    c->records[i].data = p;
    p += records[i].len;
  }
  for (size_t i = 0; i < nnames; i++) {
    snprintf(c->names[i], sizeof(c->names[i]), "%s", names[i]);
    c->name_ptrs[i] = c->names[i];
  }
  c->pub.records = c->records;
  c->pub.nrecords = nrecords;
  c->pub.names = c->name_ptrs;
  c->pub.nnames = nnames;
  if (dane_set_digest(c->records, nrecords, c->name_ptrs, nnames,
                      c->pub.digest) != 0) {
    free(c);
    return SMTPOUT_ERR_NOMEM;
  }
  t->dane = &c->pub;
  return 0;
}

int hop_tls_copy(struct hop_tls *t, const smtpout_hop *hop, const char *mx,
                 int mx_is_ip)
{
  memset(t, 0, sizeof(*t));
  t->requirement = smtpout_hop_tls_requirement(hop);
  t->requiretls = smtpout_hop_requiretls(hop);
  t->ntlsa = smtpout_hop_tlsa_count(hop);
  switch (t->requirement) {
  case SMTPOUT_TLS_REQUIREMENT_DANE:
  case SMTPOUT_TLS_REQUIREMENT_PKIX:
    /* Ranks 2 and 3 of the precedence: the knobs cannot relax them, so
     * the session takes nothing from them, even if a hop said otherwise. */
    t->starttls = SMTPOUT_STARTTLS_REQUIRE;
    t->allow_invalid_certs = 0;
    break;
  case SMTPOUT_TLS_REQUIREMENT_ENCRYPT:
    /* RFC 7672 3: TLS is still mandatory, unauthenticated. */
    t->starttls = SMTPOUT_STARTTLS_REQUIRE;
    t->allow_invalid_certs = 1;
    break;
  default:
    t->starttls = smtpout_hop_starttls(hop);
    t->allow_invalid_certs = smtpout_hop_allow_invalid_certs(hop);
    t->fallback = smtpout_hop_plaintext_fallback(hop);
    break;
  }
  /* RFC 7672 8.1: under DANE the SNI is the TLSA base domain; otherwise
   * the MX host name, as for any session; never an address (RFC 6066 3). */
  const char *base = smtpout_hop_tlsa_base(hop);
  if (t->requirement == SMTPOUT_TLS_REQUIREMENT_DANE && base != NULL)
    snprintf(t->sni, sizeof(t->sni), "%s", base);
  else if (!mx_is_ip)
    snprintf(t->sni, sizeof(t->sni), "%s", mx);
  if (t->requirement == SMTPOUT_TLS_REQUIREMENT_DANE)
    return copy_dane(t, hop);
  return 0;
}

void hop_tls_clear(struct hop_tls *t)
{
  /* The struct tls_dane is the first member of its allocation. */
  free(t->dane);
  t->dane = NULL;
}

int hop_tls_mandatory(int requirement)
{
  return requirement == SMTPOUT_TLS_REQUIREMENT_DANE ||
         requirement == SMTPOUT_TLS_REQUIREMENT_ENCRYPT ||
         requirement == SMTPOUT_TLS_REQUIREMENT_PKIX;
}

const char *hop_tls_mandated_by(int requirement)
{
  switch (requirement) {
  case SMTPOUT_TLS_REQUIREMENT_DANE: return "DANE";
  case SMTPOUT_TLS_REQUIREMENT_ENCRYPT: return "DANE (no usable TLSA record)";
  case SMTPOUT_TLS_REQUIREMENT_PKIX: return "MTA-STS";
  default: return "";
  }
}

/*
 * RFC 8460 4.3 read closely.  "tlsa-invalid" (4.3.2.1) is "a validation
 * error in the TLSA record ... None of the records in the RRset were
 * found to be valid": a set without a usable record, which a DANE hop
 * never has (the route makes such a hop ENCRYPT).  A usable set that
 * names another certificate is no fault of the records: the chain did
 * not satisfy them, which 4.3.1 names where it can (a DANE-TA path whose
 * leaf names another host is "certificate-host-mismatch", "did not
 * adhere to the constraints specified in the ... DANE policy"; one
 * expired below its anchor "certificate-expired") and 4.3.3 calls
 * "validation-failure" otherwise (no record matched, a broken path to a
 * matched anchor, no certificate), as mox does ("dane-no-match").
 */
int hop_tls_dane_tlsrpt(const struct dane_result *res)
{
  switch (res->status) {
  case DANE_NO_USABLE: return TLSRPT_TLSA_INVALID;
  case DANE_EXPIRED: return TLSRPT_CERTIFICATE_EXPIRED;
  case DANE_NAME_MISMATCH: return TLSRPT_CERTIFICATE_HOST_MISMATCH;
  default: return TLSRPT_VALIDATION_FAILURE;
  }
}

int hop_tls_dane_auth(const struct dane_result *res)
{
  return res->usage == 2 ? SMTPOUT_TLS_AUTH_DANE_TA : SMTPOUT_TLS_AUTH_DANE_EE;
}

int hop_tls_version_ok(const char *version)
{
  /* GnuTLS names them "SSL3.0", "TLS1.0" ... "TLS1.3". */
  if (version == NULL || strncmp(version, "TLS1.", 5) != 0)
    return 0;
  return version[5] >= '2' && version[5] <= '9';
}
