/*
 * dnsprobe — asks one DNS question through the library's blocking
 * resolvers (lib/resolve_*.c) and prints what lib/dns.c reads from the
 * answer, as one JSON object.  A test tool for the DNS lab
 * (tests/integration/test_dnslab.py), not an installed program.
 *
 *   dnsprobe [--mode trust-ad|validate|off] [--server HOST:PORT]...
 *            [--resolv-conf FILE] [--trust-anchor FILE]
 *            [--unbound-config FILE] [--trust-remote] [--timeout MS]
 *            [--dane-chain PEM --dane-name NAME...] NAME TYPE
 *   dnsprobe --packet FILE NAME TYPE     (parse a saved response)
 *
 * TYPE is A, AAAA, MX, TXT, TLSA, CNAME or a number.  With --dane-chain,
 * the TLSA records of the answer are matched (lib/dane.c) against the
 * certificates of the PEM file, the DANE-TA names being the --dane-name
 * values.  Exit status 0 when a response was read, 1 otherwise, 64 for
 * bad usage.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "dane_int.h"
#include "dns_int.h"
#include "resolve_int.h"
#include "smtpout/common.h"

static void json_string(const char *s, size_t len)
{
  putchar('"');
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20 || c >= 0x7f)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

static void json_str(const char *s)
{
  if (s)
    json_string(s, strlen(s));
  else
    fputs("null", stdout);
}

static void json_name(const struct dns_name *n)
{
  char text[DNS_NAME_TEXT_MAX];
  dns_name_to_text(n, text, sizeof(text));
  json_str(text);
}

static int type_of(const char *t)
{
  static const struct {
    const char *name;
    int type;
  } types[] = {{"A", DNS_TYPE_A},     {"AAAA", DNS_TYPE_AAAA},
               {"MX", DNS_TYPE_MX},   {"TXT", DNS_TYPE_TXT},
               {"TLSA", DNS_TYPE_TLSA}, {"CNAME", DNS_TYPE_CNAME},
               {"SOA", DNS_TYPE_SOA}};
  for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
    if (strcmp(types[i].name, t) == 0)
      return types[i].type;
  char *end;
  long n = strtol(t, &end, 10);
  return *end || n <= 0 || n > 65535 ? -1 : (int)n;
}

static const char *outcome_name(int o)
{
  switch (o) {
  case DNS_OUTCOME_DATA: return "data";
  case DNS_OUTCOME_NODATA: return "nodata";
  case DNS_OUTCOME_NXDOMAIN: return "nxdomain";
  case DNS_OUTCOME_FAILED: return "failed";
  default: return "cname-error";
  }
}

static struct dns_msg msg;
static struct dns_mx_set mxset;

/* The certificates of a PEM file, as DER. */
static size_t load_chain(const char *file, gnutls_datum_t *der, size_t max)
{
  gnutls_datum_t pem;
  gnutls_x509_crt_t *crts = NULL;
  unsigned n = 0;
  if (gnutls_load_file(file, &pem) < 0)
    return 0;
  if (gnutls_x509_crt_list_import2(&crts, &n, &pem, GNUTLS_X509_FMT_PEM,
                                   0) < 0)
    n = 0;
  gnutls_free(pem.data);
  size_t k = 0;
  for (unsigned i = 0; i < n; i++) {
    if (k < max && gnutls_x509_crt_export2(crts[i], GNUTLS_X509_FMT_DER,
                                           &der[k]) == 0)
      k++;
    gnutls_x509_crt_deinit(crts[i]);
  }
  gnutls_free(crts);
  return k;
}

static void print_dane(const struct dns_tlsa *t, size_t n, const char *chain,
                       const char *const *names, size_t nnames)
{
  gnutls_datum_t der[DANE_MAX_CHAIN];
  struct dane_cert certs[DANE_MAX_CHAIN];
  size_t nc = load_chain(chain, der, DANE_MAX_CHAIN);
  for (size_t i = 0; i < nc; i++) {
    certs[i].der = der[i].data;
    certs[i].len = der[i].size;
  }
  struct dane_result res;
  int rv = dane_verify(t, n, certs, nc, names, nnames, (int64_t)time(NULL),
                       &res);
  printf(", \"dane\": {\"rv\": %d, \"status\": ", rv);
  json_str(rv == 0 ? dane_status_name(res.status) : NULL);
  printf(", \"matched\": ");
  json_str(rv == 0 && res.matched[0] ? res.matched : NULL);
  printf(", \"usable\": %zu, \"reason\": ", rv == 0 ? res.usable : 0);
  json_str(rv == 0 ? res.reason : NULL);
  printf("}");
  for (size_t i = 0; i < nc; i++)
    gnutls_free(der[i].data);
}

/* Everything dns.c reads from the response, as JSON members. */
static void print_answer(const uint8_t *pkt, size_t len, const char *qname,
                         const char *chain, const char *const *names,
                         size_t nnames)
{
  int rv = dns_parse(&msg, pkt, len);
  printf(", \"parse\": ");
  json_str(rv == 0 ? "ok" : dns_strerror(rv));
  if (rv != 0)
    return;
  printf(", \"rcode\": %u, \"ad\": %s, \"tc\": %s, \"aa\": %s, \"ede\": ",
         (unsigned)msg.rcode, msg.ad ? "true" : "false",
         msg.tc ? "true" : "false", msg.aa ? "true" : "false");
  if (msg.ede >= 0)
    printf("%d", msg.ede);
  else
    printf("null");
  struct dns_name q, target;
  if (dns_name_from_text(&q, qname) != 0)
    return;
  int outcome = dns_outcome(&msg, &target);
  printf(", \"outcome\": ");
  json_str(outcome_name(outcome));
  unsigned links = 0;
  if (dns_cname_target(&msg, &q, &target, &links) == 0) {
    printf(", \"target\": ");
    json_name(&target);
    printf(", \"cname_links\": %u", links);
  }
  uint32_t ttl;
  if (dns_negative_ttl(&msg, &ttl) == 0)
    printf(", \"negative_ttl\": %u", (unsigned)ttl);

  int n = dns_mx_set(&msg, &q, &mxset);
  printf(", \"mx\": [");
  for (size_t i = 0; n > 0 && i < mxset.n; i++) {
    printf("%s{\"preference\": %u, \"exchange\": ", i ? ", " : "",
           (unsigned)mxset.mx[i].preference);
    json_name(&mxset.mx[i].exchange);
    printf("}");
  }
  printf("], \"null_mx\": %s", n > 0 && mxset.null_mx ? "true" : "false");

  struct dns_addr addrs[32];
  printf(", \"addresses\": [");
  int k = 0;
  for (int fam = 0; fam < 2; fam++) {
    int na = dns_addresses(&msg, &q, fam ? DNS_TYPE_AAAA : DNS_TYPE_A, addrs,
                           32, NULL);
    for (int i = 0; i < na; i++) {
      char text[INET6_ADDRSTRLEN];
      inet_ntop(addrs[i].family == 4 ? AF_INET : AF_INET6, addrs[i].addr,
                text, sizeof(text));
      printf("%s", k++ ? ", " : "");
      json_str(text);
    }
  }
  printf("]");

  struct dns_tlsa tlsa[32];
  int nt = dns_tlsa_set(&msg, &q, tlsa, 32, NULL);
  printf(", \"tlsa\": [");
  for (int i = 0; i < nt; i++) {
    printf("%s\"%u %u %u ", i ? ", " : "", tlsa[i].usage, tlsa[i].selector,
           tlsa[i].mtype);
    for (size_t j = 0; j < tlsa[i].len; j++)
      printf("%02x", tlsa[i].data[j]);
    printf("\"");
  }
  printf("]");

  printf(", \"txt\": [");
  size_t pos = 0;
  int i, first = 1;
  static char text[65536];
  while ((i = dns_find(&msg, &pos, DNS_SECTION_ANSWER, DNS_TYPE_TXT,
                       &target)) >= 0) {
    int tl = dns_rr_txt(&msg, &msg.rr[i], text, sizeof(text));
    if (tl < 0)
      continue;
    printf("%s", first ? "" : ", ");
    first = 0;
    json_string(text, (size_t)tl);
  }
  printf("]");
  if (chain)
    print_dane(tlsa, nt > 0 ? (size_t)nt : 0, chain, names, nnames);
}

static int usage(void)
{
  fprintf(stderr,
          "usage: dnsprobe [--mode trust-ad|validate|off] [--server H:P]... "
          "[--resolv-conf F] [--trust-anchor F] [--unbound-config F] "
          "[--trust-remote] [--timeout MS] [--dane-chain PEM "
          "--dane-name N...] NAME TYPE\n"
          "       dnsprobe --packet FILE NAME TYPE\n");
  return 64;
}

int main(int argc, char **argv)
{
  struct resolver_options opt = {.mode = RESOLVER_TRUST_AD};
  static char servers[1024];
  const char *packet = NULL, *chain = NULL;
  const char *names[DANE_MAX_NAMES];
  size_t nnames = 0;
  int a = 1;
  for (; a < argc && strncmp(argv[a], "--", 2) == 0; a++) {
    const char *o = argv[a];
    if (strcmp(o, "--trust-remote") == 0) {
      opt.trust_remote_ad = 1;
      continue;
    }
    if (a + 1 >= argc)
      return usage();
    const char *v = argv[++a];
    if (strcmp(o, "--mode") == 0) {
      opt.mode = strcmp(v, "validate") == 0 ? RESOLVER_VALIDATE
                 : strcmp(v, "off") == 0    ? RESOLVER_OFF
                 : strcmp(v, "trust-ad") == 0 ? RESOLVER_TRUST_AD
                                              : -1;
    } else if (strcmp(o, "--server") == 0) {
      size_t l = strlen(servers);
      snprintf(servers + l, sizeof(servers) - l, "%s%s", l ? " " : "", v);
      opt.nameservers = servers;
    } else if (strcmp(o, "--resolv-conf") == 0) {
      opt.resolv_conf = v;
    } else if (strcmp(o, "--trust-anchor") == 0) {
      opt.trust_anchor_file = v;
    } else if (strcmp(o, "--unbound-config") == 0) {
      opt.unbound_config = v;
    } else if (strcmp(o, "--timeout") == 0) {
      opt.timeout_ms = (uint32_t)strtoul(v, NULL, 10);
    } else if (strcmp(o, "--packet") == 0) {
      packet = v;
    } else if (strcmp(o, "--dane-chain") == 0) {
      chain = v;
    } else if (strcmp(o, "--dane-name") == 0 && nnames < DANE_MAX_NAMES) {
      names[nnames++] = v;
    } else {
      return usage();
    }
  }
  if (argc - a != 2)
    return usage();
  const char *qname = argv[a];
  int qtype = type_of(argv[a + 1]);
  if (qtype < 0)
    return usage();

  static uint8_t buf[RESOLVER_MAX_ANSWER];
  size_t len = 0;
  if (packet) {
    FILE *f = fopen(packet, "rb");
    if (!f)
      return 1;
    len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    printf("{\"rv\": 0");
    print_answer(buf, len, qname, chain, names, nnames);
    printf("}\n");
    return 0;
  }

  char err[256];
  struct resolver *r;
  int rv = resolver_new(&r, &opt, err, sizeof(err));
  if (rv != 0) {
    printf("{\"rv\": %d, \"error\": ", rv);
    json_str(err);
    printf("}\n");
    return 1;
  }
  int verdict;
  char why[256];
  rv = resolver_query(r, qname, (uint16_t)qtype, buf, sizeof(buf), &len,
                      &verdict, why, sizeof(why));
  printf("{\"rv\": %d, \"error\": ", rv);
  json_str(rv ? error_text(rv) : NULL);
  printf(", \"mode\": ");
  json_str(resolver_mode_name(opt.mode));
  printf(", \"servers\": [");
  for (size_t i = 0; i < r->nservers; i++) {
    printf("%s", i ? ", " : "");
    json_str(r->servers[i].text);
  }
  printf("], \"dnssec_capable\": %s, \"verdict\": ",
         resolver_dnssec_capable(r) ? "true" : "false");
  json_str(dnssec_verdict_name(verdict));
  printf(", \"why\": ");
  json_str(why);
  if (rv == 0)
    print_answer(buf, len, qname, chain, names, nnames);
  printf("}\n");
  resolver_free(r);
  return rv == 0 ? 0 : 1;
}
