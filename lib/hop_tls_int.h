/*
 * hop_tls_int.h — what a hop requires of a session's TLS, as the session
 * keeps it.
 *
 * A hop belongs to its route and is gone once its outcome is reported
 * (smtpout_route_hop_done()), while the session made for it lives on:
 * smtpout_session_new_for_hop() copies here what the session enforces
 * (docs/routing.md, "Precedence"): the TLS requirement, the starttls and
 * allow-invalid-certs the route resolved for the hop, whether a plaintext
 * fallback is permitted, REQUIRETLS, the SNI, and the DANE material in
 * the form the TLS backend matches (struct tls_dane, tls_int.h).  The
 * rules that turn a requirement into knobs, texts and RFC 8460 result
 * types live here too, so that session.c reads as the protocol.
 */
#ifndef SMTPOUT_HOP_TLS_INT_H
#define SMTPOUT_HOP_TLS_INT_H

#include "names_int.h"
#include "smtpout/route.h"
#include "tls_int.h"

struct dane_result;

struct hop_tls {
  int requirement;         /* enum smtpout_tls_requirement */
  int starttls;            /* enum smtpout_starttls, as enforced */
  int allow_invalid_certs;
  int fallback;            /* a plaintext fallback is permitted */
  int requiretls;          /* MAIL FROM carries REQUIRETLS (RFC 8689) */
  size_t ntlsa;            /* TLSA records the hop carries */
  char sni[NAME_MAX_LEN];  /* "" for none (an IP literal) */
  /* The TLSA records and reference identifiers, for DANE hops; NULL
   * otherwise.  One allocation, owned here. */
  struct tls_dane *dane;
};

/*
 * Copies what the session needs of `hop` into `t`, whose MX host name is
 * `mx` (normalised; `mx_is_ip` for an address).  Under DANE, ENCRYPT and
 * PKIX the knobs are those of the requirement, whatever the hop's
 * accessors say (starttls = require, invalid certificates refused but
 * under ENCRYPT, no plaintext fallback): the session never relaxes a
 * requirement.  Returns 0 or SMTPOUT_ERR_NOMEM (`t` then holds nothing to
 * free).
 */
int hop_tls_copy(struct hop_tls *t, const smtpout_hop *hop, const char *mx,
                 int mx_is_ip);
void hop_tls_clear(struct hop_tls *t);

/* 1 when the requirement makes STARTTLS mandatory whatever the knobs
 * (DANE, ENCRYPT, PKIX). */
int hop_tls_mandatory(int requirement);

/* What mandates TLS, for texts: "DANE", "MTA-STS", "DANE (no usable TLSA
 * record)"; "" for LOCAL and RELAXED. */
const char *hop_tls_mandated_by(int requirement);

/* The RFC 8460 result type (enum tlsrpt_result) of a DANE verdict that
 * did not authenticate the server (docs/policy.md, "TLS-RPT result
 * types"). */
int hop_tls_dane_tlsrpt(const struct dane_result *res);

/* enum smtpout_tls_auth of a DANE verdict that matched. */
int hop_tls_dane_auth(const struct dane_result *res);

/* 1 for a negotiated protocol version MTA-STS accepts (RFC 8461 4.2:
 * TLS 1.2 or later), from its name ("TLS1.2"). */
int hop_tls_version_ok(const char *version);

#endif
