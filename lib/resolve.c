/*
 * resolve.c — see resolve_int.h: the resolver object, its nameservers,
 * and the dispatch to a backend (resolve_stub.c, resolve_unbound.c).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolve_int.h"
#include "smtpout/common.h"

const char *dnssec_verdict_name(int verdict)
{
  switch (verdict) {
  case DNSSEC_INSECURE: return "insecure";
  case DNSSEC_SECURE: return "secure";
  case DNSSEC_BOGUS: return "bogus";
  case DNSSEC_INDETERMINATE: return "indeterminate";
  default: return NULL;
  }
}

const char *resolver_mode_name(int mode)
{
  switch (mode) {
  case RESOLVER_TRUST_AD: return "trust-ad";
  case RESOLVER_VALIDATE: return "validate";
  case RESOLVER_OFF: return "off";
  default: return NULL;
  }
}

/* Adds one numeric address with a port; -1 when it is not one. */
static int add_server(struct resolver *r, const char *host, unsigned port,
                      char *err, size_t errlen)
{
  if (r->nservers == RESOLVER_MAX_SERVERS) {
    snprintf(err, errlen, "more than %d nameservers", RESOLVER_MAX_SERVERS);
    return -1;
  }
  struct resolver_server *s = &r->servers[r->nservers];
  memset(s, 0, sizeof(*s));
  struct sockaddr_in *v4 = (struct sockaddr_in *)&s->addr;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&s->addr;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    s->addrlen = sizeof(*v4);
    /* 127.0.0.0/8 (RFC 1122 3.2.1.3) */
    s->loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    snprintf(s->text, sizeof(s->text), "%s:%u", host, port);
  } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    s->addrlen = sizeof(*v6);
    s->loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
    snprintf(s->text, sizeof(s->text), "[%s]:%u", host, port);
  } else {
    snprintf(err, errlen, "nameserver \"%s\" is not a numeric IP address",
             host);
    return -1;
  }
  r->nservers++;
  return 0;
}

int resolver_parse_servers(struct resolver *r, const char *list,
                           int allow_port, char *err, size_t errlen)
{
  const char *p = list;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    if (!*p)
      break;
    size_t n = strcspn(p, " \t,");
    char item[64], host[64];
    if (n >= sizeof(item)) {
      snprintf(err, errlen, "nameserver \"%.40s...\" is too long", p);
      return -1;
    }
    memcpy(item, p, n);
    item[n] = '\0';
    p += n;
    unsigned long port = 53;
    const char *colon = strrchr(item, ':');
    const char *port_text = NULL;
    if (item[0] == '[') {
      /* [v6]:port or [v6] */
      char *close = strchr(item, ']');
      if (!close || (close[1] != '\0' && close[1] != ':')) {
        snprintf(err, errlen, "nameserver \"%s\": bad brackets", item);
        return -1;
      }
      *close = '\0';
      snprintf(host, sizeof(host), "%.62s", item + 1);
      if (close[1] == ':')
        port_text = close + 2;
    } else if (colon && strchr(item, ':') == colon) {
      /* a.b.c.d:port (one colon: never a bare IPv6 address) */
      snprintf(host, sizeof(host), "%.*s", (int)(colon - item), item);
      port_text = colon + 1;
    } else {
      snprintf(host, sizeof(host), "%.63s", item);
    }
    if (port_text) {
      char *end;
      if (!allow_port || !isdigit((unsigned char)*port_text)) {
        snprintf(err, errlen, "nameserver \"%s\": bad port", item);
        return -1;
      }
      port = strtoul(port_text, &end, 10);
      if (*end || port == 0 || port > 65535) {
        snprintf(err, errlen, "nameserver \"%s\": bad port", item);
        return -1;
      }
    }
    if (add_server(r, host, (unsigned)port, err, errlen) != 0)
      return -1;
  }
  if (r->nservers == 0) {
    snprintf(err, errlen, "no nameserver given");
    return -1;
  }
  return 0;
}

int resolver_read_resolv_conf(struct resolver *r, const char *path,
                              char *err, size_t errlen)
{
  FILE *f = fopen(path, "r");
  if (f) {
    char line[512];
    while (fgets(line, sizeof(line), f)) {
      char word[16], addr[64];
      if (sscanf(line, " %15s %63s", word, addr) != 2 ||
          strcmp(word, "nameserver") != 0)
        continue;
      /* A link-local address with a zone (fe80::1%eth0) cannot be
       * written as host:port here; skip it, as it is rare. */
      if (strchr(addr, '%'))
        continue;
      if (r->nservers < RESOLVER_MAX_SERVERS &&
          add_server(r, addr, 53, err, errlen) != 0) {
        fclose(f);
        return -1;
      }
    }
    fclose(f);
  }
  /* glibc's default when resolv.conf names none (resolv.conf(5)). */
  if (r->nservers == 0)
    return add_server(r, "127.0.0.1", 53, err, errlen);
  return 0;
}

int resolver_new(struct resolver **out, const struct resolver_options *opt,
                 char *err, size_t errlen)
{
  char dummy[1];
  if (!err || errlen == 0) {
    err = dummy;
    errlen = sizeof(dummy);
  }
  err[0] = '\0';
  if (!out || !opt)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  *out = NULL;
  if (!resolver_mode_name(opt->mode)) {
    snprintf(err, errlen, "unknown DNSSEC mode %d", opt->mode);
    return SMTPOUT_ERR_CONFIG;
  }
  struct resolver *r = calloc(1, sizeof(*r));
  if (!r)
    return SMTPOUT_ERR_NOMEM;
  r->mode = opt->mode;
  r->timeout_ms = opt->timeout_ms ? opt->timeout_ms
                                  : RESOLVER_DEFAULT_TIMEOUT_MS;
  int rv = opt->nameservers
               ? resolver_parse_servers(r, opt->nameservers, 1, err, errlen)
               : resolver_read_resolv_conf(
                     r, opt->resolv_conf ? opt->resolv_conf
                                         : "/etc/resolv.conf",
                     err, errlen);
  if (rv == 0 && r->mode == RESOLVER_VALIDATE)
    rv = resolver_unbound_new(r, opt, err, errlen);
  if (rv != 0) {
    resolver_free(r);
    return rv == SMTPOUT_ERR_NOMEM ? rv : SMTPOUT_ERR_CONFIG;
  }
  if (r->mode == RESOLVER_TRUST_AD) {
    /* AD is believed only when no answer can come over the network
     * (RFC 7672 2.1.3): every server on loopback, or the operator's
     * word for the path. */
    r->trust_ad = 1;
    for (size_t i = 0; i < r->nservers; i++)
      if (!r->servers[i].loopback && !opt->trust_remote_ad)
        r->trust_ad = 0;
  }
  *out = r;
  return 0;
}

void resolver_free(struct resolver *r)
{
  if (!r)
    return;
  if (r->unbound)
    resolver_unbound_free(r);
  free(r);
}

int resolver_dnssec_capable(const struct resolver *r)
{
  return r->mode == RESOLVER_VALIDATE || r->trust_ad;
}

int resolver_query(struct resolver *r, const char *qname, uint16_t qtype,
                   uint8_t *buf, size_t buflen, size_t *len, int *verdict,
                   char *why, size_t whylen)
{
  char dummy[1];
  if (!why || whylen == 0) {
    why = dummy;
    whylen = sizeof(dummy);
  }
  why[0] = '\0';
  if (!r || !qname || !buf || !len || !verdict ||
      buflen < RESOLVER_MAX_ANSWER)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  *len = 0;
  *verdict = DNSSEC_INDETERMINATE;
  if (r->mode == RESOLVER_VALIDATE)
    return resolver_unbound_query(r, qname, qtype, buf, buflen, len, verdict,
                                  why, whylen);
  return resolver_stub_query(r, qname, qtype, buf, buflen, len, verdict, why,
                             whylen);
}
