/*
 * resolve_unbound.c — the validate resolver: libunbound checks the
 * signatures in this process, from a trust-anchor file, forwarding its
 * queries to the configured nameservers (which need not validate, only
 * pass DNSSEC records through; libunbound sets CD upstream).  Built only
 * with -Dunbound (meson feature, auto).
 *
 * Trust-anchor upkeep is the operator's: Debian's
 * /usr/share/dns/root.key (dns-root-data) is a static file; RFC 5011
 * rollover needs unbound-anchor or a writable auto-trust-anchor-file,
 * which an unbound.conf given as `unbound_config` can name.
 */
#include <stdio.h>
#include <string.h>

#include "resolve_int.h"
#include "smtpout/common.h"

#ifdef HAVE_LIBUNBOUND

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unbound.h>
#include <unistd.h>

#define DEFAULT_TRUST_ANCHOR "/usr/share/dns/root.key"

/* "127.0.0.1@3535", "::1@53": libunbound's address syntax. */
static void fwd_text(const struct resolver_server *s, char *out, size_t len)
{
  char host[INET6_ADDRSTRLEN] = "";
  unsigned port;
  if (s->addr.ss_family == AF_INET) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)&s->addr;
    inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
    port = ntohs(v4->sin_port);
  } else {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&s->addr;
    inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
    port = ntohs(v6->sin6_port);
  }
  snprintf(out, len, "%s@%u", host, port);
}

int resolver_unbound_new(struct resolver *r,
                         const struct resolver_options *opt, char *err,
                         size_t errlen)
{
  struct ub_ctx *ctx = ub_ctx_create();
  if (!ctx)
    return SMTPOUT_ERR_NOMEM;
  r->unbound = ctx;
  int rv;
  if (opt->unbound_config &&
      (rv = ub_ctx_config(ctx, opt->unbound_config)) != 0) {
    snprintf(err, errlen, "unbound configuration %s: %s",
             opt->unbound_config, ub_strerror(rv));
    return -1;
  }
  const char *ta = opt->trust_anchor_file ? opt->trust_anchor_file
                                          : DEFAULT_TRUST_ANCHOR;
  if (access(ta, R_OK) != 0) {
    snprintf(err, errlen, "trust anchor file %s cannot be read", ta);
    return -1;
  }
  if ((rv = ub_ctx_add_ta_file(ctx, ta)) != 0) {
    snprintf(err, errlen, "trust anchor file %s: %s", ta, ub_strerror(rv));
    return -1;
  }
  int loopback = 0;
  for (size_t i = 0; i < r->nservers; i++) {
    char fwd[INET6_ADDRSTRLEN + 8];
    fwd_text(&r->servers[i], fwd, sizeof(fwd));
    if ((rv = ub_ctx_set_fwd(ctx, fwd)) != 0) {
      snprintf(err, errlen, "nameserver %s: %s", r->servers[i].text,
               ub_strerror(rv));
      return -1;
    }
    loopback |= r->servers[i].loopback;
  }
  /* libunbound will not send to a loopback address unless told to, and a
   * local caching resolver is the common forwarder. */
  if (loopback &&
      (rv = ub_ctx_set_option(ctx, "do-not-query-localhost:", "no")) != 0) {
    snprintf(err, errlen, "libunbound: %s", ub_strerror(rv));
    return -1;
  }
  return 0;
}

void resolver_unbound_free(struct resolver *r)
{
  ub_ctx_delete(r->unbound);
  r->unbound = NULL;
}

int resolver_unbound_query(struct resolver *r, const char *qname,
                           uint16_t qtype, uint8_t *buf, size_t buflen,
                           size_t *len, int *verdict, char *why,
                           size_t whylen)
{
  struct ub_result *res = NULL;
  int rv = ub_resolve(r->unbound, qname, qtype, 1 /* IN */, &res);
  if (rv != 0) {
    snprintf(why, whylen, "libunbound: %s", ub_strerror(rv));
    return rv == UB_SYNTAX ? SMTPOUT_ERR_BAD_NAME : ERR_RESOLVE;
  }
  if (!res->answer_packet || res->answer_len <= 0 ||
      (size_t)res->answer_len > buflen) {
    snprintf(why, whylen, "libunbound: no answer (rcode %d)", res->rcode);
    ub_resolve_free(res);
    return ERR_RESOLVE;
  }
  memcpy(buf, res->answer_packet, (size_t)res->answer_len);
  *len = (size_t)res->answer_len;
  if (res->secure) {
    *verdict = DNSSEC_SECURE;
  } else if (res->bogus) {
    *verdict = DNSSEC_BOGUS;
    snprintf(why, whylen, "%s",
             res->why_bogus ? res->why_bogus : "validation failed");
  } else if (res->rcode != 0 && res->rcode != 3) {
    *verdict = DNSSEC_INDETERMINATE;
    snprintf(why, whylen, "rcode %d", res->rcode);
  } else {
    *verdict = DNSSEC_INSECURE;
  }
  ub_resolve_free(res);
  return 0;
}

#else /* !HAVE_LIBUNBOUND */

int resolver_unbound_new(struct resolver *r,
                         const struct resolver_options *opt, char *err,
                         size_t errlen)
{
  (void)r;
  (void)opt;
  snprintf(err, errlen, "dnssec = validate needs libunbound, and this "
                        "build has none (meson -Dunbound=enabled)");
  return -1;
}

void resolver_unbound_free(struct resolver *r) { (void)r; }

int resolver_unbound_query(struct resolver *r, const char *qname,
                           uint16_t qtype, uint8_t *buf, size_t buflen,
                           size_t *len, int *verdict, char *why,
                           size_t whylen)
{
  (void)r, (void)qname, (void)qtype, (void)buf, (void)buflen, (void)len;
  (void)verdict;
  snprintf(why, whylen, "no libunbound in this build");
  return ERR_RESOLVE;
}

#endif
