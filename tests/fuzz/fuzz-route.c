/*
 * fuzz-route — libFuzzer target for routes (lib/route.c) with a hostile
 * resolver, cache and policy server: the input is what a host hands the
 * route, in the order the route asks for it.
 *
 *   octet 0      options: bit 0 SMTPOUT_ROUTE_NO_DNSSEC; bits 1-2 the
 *                configuration (none, dane = require, ipv6 first with no
 *                address limit, dane = disable on mx1); bit 3 the domain
 *                (secure.test, alias.test); bit 4 MTA-STS on (off
 *                otherwise, so that the DNS-only seeds keep their shape);
 *                bit 5 SMTPOUT_ROUTE_REQUIRETLS; bit 6
 *                SMTPOUT_ROUTE_TLS_REQUIRED_NO; bit 7 a relay route to
 *                mx1.secure.test (port 587, AUTH) instead of the domain
 *   then, for each DNS question:
 *                one octet: bits 0-1 the verdict, bit 7 "failed" (then
 *                bits 2-6 are the rcode and nothing else is read);
 *                two octets of length (big-endian), then the response
 *   for each cache read: one octet, bit 7 a miss, else two octets of
 *                length and the stored value
 *   for each HTTPS fetch: one octet, the outcome (mod 6); for OK one
 *                octet of status (0: 200, else 300 + the octet), one of
 *                content type (bit 0: text/plain, else text/html), two
 *                of length and the body
 *   and, for each hop, one octet: bits 0-2 the outcome (mod 6), bits 3-7
 *                an RFC 8460 result type for its TLS-RPT event (0: a
 *                success)
 *
 * When the input runs out, every question fails (indeterminate), every
 * cache read misses, every fetch fails and every hop fails to connect, so
 * the route must end.  Checked (abort() otherwise): it ends within a
 * bounded number of steps; questions are well-formed (a final dot, a
 * known type); HTTPS requests carry a URL, a host and 1 to 8 addresses;
 * puts carry a key and a bounded value; hops never exceed the address
 * limit, carry a parseable address, a DANE hop has TLSA records, a base
 * domain and at most four reference names, a DANE or PKIX hop requires
 * STARTTLS and verified certificates; the verdict's class matches its
 * status; every TLS-RPT event line is one the report builder reads.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "smtpout/smtpout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static smtpout_config *configs[8];

static void load_configs(void)
{
  static const char *const ini[4] = {
    "",
    "[queue.outbound.tls]\ndane = require\n",
    ("[queue.outbound]\naddress-preference = ipv6\nmx-address-limit = 0\n"
     "mx-session-limit = 0\n"),
    "[destination \"x\"]\nmx = mx1.secure.test\ndane = disable\n",
  };
  /* A secret file for the relay's AUTH (a regular file, mode 0600). */
  char secret[] = "/tmp/fuzz-route-secret-XXXXXX";
  int fd = mkstemp(secret);
  if (fd < 0 || write(fd, "pw\n", 3) != 3 || fchmod(fd, 0600) != 0)
    abort();
  close(fd);
  /* configs[i]: MTA-STS off; configs[4 + i]: on, also for the relay. */
  for (int i = 0; i < 8; i++) {
    char text[1024];
    snprintf(text, sizeof(text),
             "%s\n[queue.outbound.tls]\nmta-sts = %s\n"
             "[relay \"r\"]\nhost = mx1.secure.test\nport = 587\n"
             "auth-username = u\nauth-password-file = %s\n"
             "mta-sts = %s\n",
             ini[i % 4], i < 4 ? "disable" : "optional", secret,
             i < 4 ? "disable" : "optional");
    if (smtpout_config_load_string(&configs[i], text, "f.ini", NULL, 0))
      abort();
  }
  unlink(secret); /* the configuration keeps its name, not the file */
}

static void check_hop(const smtpout_hop *h)
{
  uint8_t addr[16];
  const char *a = smtpout_hop_address(h);
  if (inet_pton(AF_INET, a, addr) != 1 && inet_pton(AF_INET6, a, addr) != 1)
    abort();
  if (smtpout_hop_mx(h) == NULL || smtpout_hop_explain(h) == NULL ||
      (smtpout_hop_port(h) != 25 && smtpout_hop_port(h) != 587))
    abort();
  int req = smtpout_hop_tls_requirement(h);
  size_t n = smtpout_hop_tlsa_count(h);
  if (smtpout_tls_requirement_name(req) == NULL ||
      smtpout_dane_status_name(smtpout_hop_dane_status(h)) == NULL)
    abort();
  if (req == SMTPOUT_TLS_REQUIREMENT_DANE &&
      (n == 0 || smtpout_hop_tlsa_base(h) == NULL ||
       smtpout_hop_dane_name_count(h) == 0))
    abort();
  if (smtpout_hop_dane_name_count(h) > 4 || n > 64)
    abort();
  if ((req == SMTPOUT_TLS_REQUIREMENT_DANE ||
       req == SMTPOUT_TLS_REQUIREMENT_PKIX) &&
      (smtpout_hop_starttls(h) != SMTPOUT_STARTTLS_REQUIRE ||
       smtpout_hop_allow_invalid_certs(h) ||
       smtpout_hop_plaintext_fallback(h)))
    abort();
  if (smtpout_tls_source_name(smtpout_hop_tls_source(h)) == NULL)
    abort();
  for (size_t i = 0; i < n; i++) {
    const uint8_t *d;
    size_t len;
    if (smtpout_hop_tlsa(h, i, NULL, NULL, NULL, &d, &len) != 0 ||
        (len && d == NULL) || len > 65535)
      abort();
  }
  for (size_t i = 0; i < smtpout_hop_dane_name_count(h); i++)
    if (smtpout_hop_dane_name(h, i)[0] == '\0')
      abort();
}

/* Every event line must be one the report builder reads. */
static void check_events(smtpout_route *r)
{
  smtpout_tlsrpt_report *rep;
  if (smtpout_tlsrpt_report_new(&rep, NULL, 1699920000000ull) != 0)
    abort();
  const char *j;
  size_t n;
  while (smtpout_route_next_event(r, &j, &n) == 1) {
    if (strlen(j) != n)
      abort();
    int rv = smtpout_tlsrpt_report_add_event_json(rep, j, n);
    if (rv != 0 && rv != 1 && rv != SMTPOUT_ERR_NOMEM)
      abort();
  }
  smtpout_tlsrpt_report_free(rep);
}

static uint16_t take16(const uint8_t *data, size_t size, size_t *pos)
{
  uint16_t v = 0;
  if (*pos + 2 <= size) {
    v = (uint16_t)(data[*pos] << 8 | data[*pos + 1]);
    *pos += 2;
  }
  return v;
}

/* Answers a cache or HTTPS request from the input; returns 0 for a DNS
 * request, which the caller answers. */
static int web_request(smtpout_route *r, const smtpout_request *q,
                       const uint8_t *data, size_t size, size_t *pos)
{
  int id = smtpout_request_id(q);
  switch (smtpout_request_kind(q)) {
  case SMTPOUT_REQUEST_DNS:
    return 0;
  case SMTPOUT_REQUEST_CACHE_PUT: {
    size_t len;
    const uint8_t *v = smtpout_request_cache_value(q, &len);
    if (v == NULL || len == 0 || len > 66048 ||
        strncmp(smtpout_request_cache_key(q), "sts:", 4) != 0)
      abort();
    return 1;
  }
  case SMTPOUT_REQUEST_CACHE_GET: {
    if (smtpout_request_cache_key(q) == NULL)
      abort();
    size_t len = 0;
    if (*pos < size && !(data[(*pos)++] & 0x80))
      len = take16(data, size, pos);
    if (len > size - *pos)
      len = size - *pos;
    if (smtpout_route_cache_answer(r, id, len ? data + *pos : NULL, len,
                                   0) != 0)
      abort();
    *pos += len;
    return 1;
  }
  case SMTPOUT_REQUEST_HTTPS: {
    size_t na = smtpout_request_address_count(q);
    if (smtpout_request_url(q) == NULL || smtpout_request_host(q) == NULL ||
        na == 0 || na > 8 || smtpout_request_max_bytes(q) == 0)
      abort();
    for (size_t i = 0; i < na; i++) {
      uint8_t a[16];
      const char *s = smtpout_request_address(q, i);
      if (inet_pton(AF_INET, s, a) != 1 && inet_pton(AF_INET6, s, a) != 1)
        abort();
    }
    int outcome = *pos < size ? data[(*pos)++] % 6 : SMTPOUT_FETCH_FAILED;
    int status = 0;
    const char *ctype = NULL;
    size_t len = 0;
    if (outcome == SMTPOUT_FETCH_OK) {
      uint8_t st = *pos < size ? data[(*pos)++] : 0;
      uint8_t ct = *pos < size ? data[(*pos)++] : 1;
      status = st ? 300 + st : 200;
      ctype = ct & 1 ? "text/plain" : "text/html";
      len = take16(data, size, pos);
      if (len > size - *pos)
        len = size - *pos;
    }
    if (smtpout_route_https_answer(r, id, outcome, status, ctype,
                                   len ? data + *pos : NULL, len, 0) != 0)
      abort();
    *pos += len;
    return 1;
  }
  default:
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (configs[1] == NULL)
    load_configs();
  if (size == 0)
    return 0;
  uint8_t opt = data[0];
  size_t pos = 1;
  uint32_t limit = ((opt >> 1) & 3) == 2 ? 0 : 5;
  smtpout_config *cfg = configs[((opt >> 1) & 3) + (opt & 0x10 ? 4 : 0)];
  uint32_t flags = (opt & 1) | (opt & 0x20 ? SMTPOUT_ROUTE_REQUIRETLS : 0) |
                   (opt & 0x40 ? SMTPOUT_ROUTE_TLS_REQUIRED_NO : 0);
  smtpout_route *r;
  int rv = opt & 0x80 ? smtpout_route_new_relay(&r, cfg, "r", flags, 0,
                                                1700000000000ull)
                      : smtpout_route_new(&r, cfg,
                                          opt & 8 ? "alias.test"
                                                  : "secure.test",
                                          flags, 0, 1700000000000ull);
  if (rv)
    abort();
  smtpout_route_set_seed(r, 42);
  uint32_t hops = 0;
  int steps = 0;
  for (; steps < 2000; steps++) {
    int want = smtpout_route_want(r);
    if (want == SMTPOUT_ROUTE_WANT_REQUEST) {
      const smtpout_request *q;
      if (smtpout_route_next_request(r, &q, 0) != 1)
        abort();
      if (web_request(r, q, data, size, &pos) != 0)
        continue;
      const char *name = smtpout_request_qname(q);
      size_t nl = strlen(name);
      int t = smtpout_request_qtype(q);
      if (nl < 2 || name[nl - 1] != '.' ||
          (t != 1 && t != 15 && t != 16 && t != 28 && t != 52))
        abort();
      int id = smtpout_request_id(q);
      if (pos >= size) {
        if (smtpout_route_dns_failed(r, id, SMTPOUT_DNSSEC_INDETERMINATE, 0,
                                     0) != 0)
          abort();
        continue;
      }
      uint8_t b = data[pos++];
      if (b & 0x80) {
        if (smtpout_route_dns_failed(r, id, b & 3, (b >> 2) & 31, 0) != 0)
          abort();
        continue;
      }
      size_t len = 0;
      if (pos + 2 <= size) {
        len = (size_t)data[pos] << 8 | data[pos + 1];
        pos += 2;
      }
      if (len > size - pos)
        len = size - pos;
      if (smtpout_route_dns_answer(r, id, b & 3, data + pos, len, 0) != 0)
        abort();
      pos += len;
    } else if (want == SMTPOUT_ROUTE_WANT_HOP) {
      const smtpout_hop *h;
      if (smtpout_route_next_hop(r, &h, 0) != 1)
        abort();
      check_hop(h);
      if (++hops > limit && limit)
        abort();
      uint8_t b = pos < size ? data[pos++] : SMTPOUT_HOP_CONNECT_FAILED;
      static const char *const types[] = {
        "starttls-not-supported", "certificate-host-mismatch",
        "certificate-expired", "certificate-not-trusted",
        "validation-failure", "tlsa-invalid", "dnssec-invalid",
        "dane-required"};
      unsigned t = b >> 3;
      rv = smtpout_route_hop_tlsrpt(r, h, t ? types[t % 8] : NULL,
                                    "192.0.2.1", "mx ESMTP", NULL, 0);
      if (rv != 0 && rv != SMTPOUT_ERR_NOMEM)
        abort();
      if (smtpout_route_hop_done(r, h, (b & 7) % 6, "fuzz", 0) != 0)
        abort();
    } else if (want == SMTPOUT_ROUTE_DONE) {
      break;
    } else {
      abort(); /* every question is answered at once: nothing to wait for */
    }
  }
  if (smtpout_route_want(r) != SMTPOUT_ROUTE_DONE)
    abort();
  check_events(r);
  int status = smtpout_route_status(r);
  const char *e = smtpout_route_enhanced(r);
  if ((status == 0 && e[0] != '\0') ||
      (status == SMTPOUT_STATUS_DEFERRED && e[0] != '4') ||
      (status == SMTPOUT_STATUS_BOUNCED && e[0] != '5') ||
      (status != 0 && status != SMTPOUT_STATUS_DEFERRED &&
       status != SMTPOUT_STATUS_BOUNCED))
    abort();
  smtpout_route_free(r);
  return 0;
}
