/*
 * fuzz-route — libFuzzer target for routes (lib/route.c) with a hostile
 * resolver: the input is what a host hands the route, in the order the
 * route asks for it.
 *
 *   octet 0      options: bit 0 SMTPOUT_ROUTE_NO_DNSSEC; bits 1-2 the
 *                configuration (none, dane = require, ipv6 first with no
 *                address limit, dane = disable on mx1); bit 3 the domain
 *                (secure.test, alias.test)
 *   then, for each DNS question:
 *                one octet: bits 0-1 the verdict, bit 7 "failed" (then
 *                bits 2-6 are the rcode and nothing else is read);
 *                two octets of length (big-endian), then the response
 *   and, for each hop, one octet: the outcome (mod 5)
 *
 * When the input runs out, every question fails (indeterminate) and
 * every hop fails to connect, so the route must end.  Checked (abort()
 * otherwise): it ends within a bounded number of steps; questions are
 * well-formed (a final dot, a known type); hops never exceed the address
 * limit, carry a parseable address, and a DANE hop has TLSA records, a
 * base domain and at most four reference names; the verdict's class
 * matches its status.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpout/smtpout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static smtpout_config *configs[4];

static void load_configs(void)
{
  static const char *const ini[4] = {
    NULL,
    "[queue.outbound.tls]\ndane = require\n",
    "[queue.outbound]\naddress-preference = ipv6\nmx-address-limit = 0\n"
    "mx-session-limit = 0\n",
    "[destination \"x\"]\nmx = mx1.secure.test\ndane = disable\n",
  };
  for (int i = 1; i < 4; i++)
    if (smtpout_config_load_string(&configs[i], ini[i], "f.ini", NULL, 0))
      abort();
}

static void check_hop(const smtpout_hop *h)
{
  uint8_t addr[16];
  const char *a = smtpout_hop_address(h);
  if (inet_pton(AF_INET, a, addr) != 1 && inet_pton(AF_INET6, a, addr) != 1)
    abort();
  if (smtpout_hop_mx(h) == NULL || smtpout_hop_explain(h) == NULL ||
      smtpout_hop_port(h) != 25)
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (configs[1] == NULL)
    load_configs();
  if (size == 0)
    return 0;
  uint8_t opt = data[0];
  size_t pos = 1;
  uint32_t limit = ((opt >> 1) & 3) == 2 ? 0 : 5;
  smtpout_route *r;
  if (smtpout_route_new(&r, configs[(opt >> 1) & 3],
                        opt & 8 ? "alias.test" : "secure.test", opt & 1, 0, 0))
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
      const char *name = smtpout_request_qname(q);
      size_t nl = strlen(name);
      int t = smtpout_request_qtype(q);
      if (nl < 2 || name[nl - 1] != '.' ||
          (t != 1 && t != 15 && t != 28 && t != 52))
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
      int outcome = pos < size ? data[pos++] % 5 : SMTPOUT_HOP_CONNECT_FAILED;
      if (smtpout_route_hop_done(r, h, outcome, "fuzz", 0) != 0)
        abort();
    } else if (want == SMTPOUT_ROUTE_DONE) {
      break;
    } else {
      abort(); /* every question is answered at once: nothing to wait for */
    }
  }
  if (smtpout_route_want(r) != SMTPOUT_ROUTE_DONE)
    abort();
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
