/*
 * hopkit.h — hops from scripted routes, for the session's tests.
 *
 * A session made for a hop (smtpout_session_new_for_hop()) needs a hop,
 * and a route hands one out only once the DNS (and, for MTA-STS, a
 * policy fetch) has answered.  hk_route() runs a route for one domain
 * against a table of records, answering every question with a real DNS
 * message (encoded here, independently of lib/dns.c) whose DNSSEC verdict
 * is that of its zone, every MTA-STS cache read with a miss and every
 * policy fetch with the zone's policy, until the route hands out its
 * first hop.  hk_hop() has a ready-made zone for each TLS requirement.
 */
#ifndef SMTPOUT_TEST_HOPKIT_H
#define SMTPOUT_TEST_HOPKIT_H

#include <stdint.h>

#include <smtpout/smtpout.h>

struct hk_rec {
  const char *owner, *type, *rdata; /* "mx.dane.test", "TLSA", "3 1 1 ab" */
};

struct hk_zone {
  const struct hk_rec *recs;  /* ends with an owner NULL */
  const char *const *secure;  /* names under these are DNSSEC-secure;
                                 ends with NULL; NULL: none */
  const char *sts_policy;     /* the policy body served; NULL: none */
};

struct hopkit {
  smtpout_route *route;
  const smtpout_hop *hop;
};

/* Runs a route to `domain` (route flags `flags`) over `zone` until its
 * first hop, which it returns (the route keeps it). */
const smtpout_hop *hk_route(struct hopkit *k, smtpout_config *config,
                            const char *domain, uint32_t flags,
                            const struct hk_zone *zone);

/* Ready-made hops, one per requirement.  The MX hosts: mx.plain.test
 * (LOCAL, and RELAXED with SMTPOUT_ROUTE_TLS_REQUIRED_NO), mx.dane.test
 * (DANE: TLSA 3 1 1, base domain mx.dane.test), mx.encrypt.test (ENCRYPT:
 * one PKIX-EE record), mx.sts.test (PKIX: an MTA-STS enforce policy). */
enum hk_kind { HK_LOCAL, HK_DANE, HK_ENCRYPT, HK_PKIX, HK_RELAXED };
const smtpout_hop *hk_hop(struct hopkit *k, smtpout_config *config,
                          int kind, uint32_t flags);

/* Frees the route (the hop with it). */
void hk_free(struct hopkit *k);

#endif
