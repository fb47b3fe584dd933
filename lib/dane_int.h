/*
 * dane_int.h — TLSA matching for SMTP (RFC 7672 3, RFC 7671), on GnuTLS's
 * X.509 and hash functions.
 *
 * Internal to the library.  Not libgnutls-dane: it accepts a DANE-TA
 * record when any certificate of the chain matches and the leaf names any
 * other certificate as issuer, without checking the path to the matched
 * anchor or the name (measured, wave2-design 2.4).  Here:
 *
 *   - Only DANE-TA(2) and DANE-EE(3) are usable (RFC 7672 3.1.3 makes
 *     PKIX-TA(0) and PKIX-EE(1) unusable for SMTP); selectors 0 (the
 *     certificate) and 1 (its SubjectPublicKeyInfo); matching types 0
 *     (exact), 1 (SHA-256, 32 octets) and 2 (SHA-512, 64 octets).  Any
 *     other value, or data of the wrong length, makes a record unusable.
 *     Among records of one usage and selector, SHA-256 ones are ignored
 *     when a SHA-512 one is present (digest agility, RFC 7671 9).
 *   - DANE-EE: the leaf's certificate or key matches, and that is all:
 *     no name, no dates, no chain (RFC 7672 3.1.1).
 *   - DANE-TA: a certificate of the presented chain, above the leaf,
 *     matches (or, RFC 7671 5.2.2/5.2.3, a "2 0 0" record carries the
 *     anchor certificate or a "2 1 0" record its key, and it signed the
 *     top of the chain).  The path from the leaf up to that anchor is
 *     verified by GnuTLS with the anchor as its only trust anchor
 *     (signatures, CA flags, path length, serverAuth), the certificates
 *     below the anchor must be valid at `now` (the anchor's own dates are
 *     not checked, as in OpenSSL and Postfix), and the leaf must name one
 *     of the reference identifiers (RFC 7672 3.2.3: the MX host name, the
 *     TLSA base domain; DNS SANs only, the CN only when there is none;
 *     a wildcard only as the whole leftmost label).
 *
 * The handshake's own signature (CertificateVerify) is checked by GnuTLS
 * during the handshake, so a replayed public certificate fails there.
 */
#ifndef SMTPOUT_DANE_INT_H
#define SMTPOUT_DANE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "dns_int.h"

/* Certificates of a presented chain considered (GnuTLS verifies at most
 * 16 too); any beyond are ignored. */
#define DANE_MAX_CHAIN 16
/* TLSA records considered; any beyond are ignored (a real set has two or
 * three: the current key and the next). */
#define DANE_MAX_RECORDS 64
/* Reference identifiers for DANE-TA name checks. */
#define DANE_MAX_NAMES 4

/* One certificate as the peer sent it (DER), leaf first. */
struct dane_cert {
  const uint8_t *der;
  size_t len;
};

enum dane_status {
  DANE_MATCHED = 0,         /* authenticated by the record in `matched` */
  DANE_NO_USABLE = 1,       /* no usable record: RFC 7672 3 says TLS is
                               still mandatory, but unauthenticated */
  DANE_NO_CERTIFICATE = 2,  /* no certificate, or the leaf is unreadable */
  DANE_NO_MATCH = 3,        /* no record matched any certificate */
  DANE_CHAIN_INVALID = 4,   /* a DANE-TA record matched, but the path from
                               the leaf to it does not verify */
  DANE_EXPIRED = 5,         /* ... verifies, but a certificate below the
                               anchor is expired or not yet valid */
  DANE_NAME_MISMATCH = 6,   /* ... is valid, but the leaf names none of
                               the reference identifiers */
};

struct dane_result {
  int status;          /* enum dane_status */
  int record;          /* index of the matching record in the input, or
                          -1 */
  uint8_t usage, selector, mtype;
  int depth;           /* chain position of the matched certificate (0 for
                          DANE-EE), or -1 for an anchor carried by the
                          record itself */
  char matched[12];    /* "3 1 1", or "" */
  size_t usable;       /* usable records among the input */
  char reason[256];    /* why it did not match (English), or what did */
};

/* 1 when a record is usable for SMTP (see above), ignoring digest
 * agility, which depends on the other records. */
int dane_record_usable(const struct dns_tlsa *record);

/*
 * Authenticates a presented chain (`chain[0]` the leaf, as
 * gnutls_certificate_get_peers gives it) against the TLSA records of the
 * host.  `names` are the reference identifiers (A-labels, no trailing
 * dot) for DANE-TA; `now` is the wall time in seconds since the epoch for
 * the DANE-TA validity checks.  Fills `res` and returns 0 whatever the
 * verdict (res->status); SMTPOUT_ERR_INVALID_ARGUMENT or
 * SMTPOUT_ERR_NOMEM otherwise.
 */
int dane_verify(const struct dns_tlsa *records, size_t nrecords,
                const struct dane_cert *chain, size_t nchain,
                const char *const *names, size_t nnames, int64_t now,
                struct dane_result *res);

/*
 * A digest of a TLSA set and its reference identifiers: SHA-256 over the
 * records (usage, selector, matching type, data) and the names, each
 * taken in sorted order, so the same set gives the same digest whatever
 * order the DNS answer listed it in.  What a DANE verdict depends on
 * besides the chain and the time: the key under which verified chains
 * and session tickets are kept (tls_int.h).  Returns 0, or
 * SMTPOUT_ERR_NOMEM.
 */
int dane_set_digest(const struct dns_tlsa *records, size_t nrecords,
                    const char *const *names, size_t nnames,
                    uint8_t digest[32]);

/* "matched", "no-usable-records", ... for logs and JSON. */
const char *dane_status_name(int status);

#endif
