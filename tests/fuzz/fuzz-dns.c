/*
 * fuzz-dns — libFuzzer target for the DNS message parser (lib/dns.c): the
 * input is a response as a resolver would hand it to the route.  Parsing
 * must never crash or read out of bounds, and what it accepts must be
 * consistent: indexed records inside the packet, names of 1 to 255
 * octets that print and read back, every helper either answering within
 * its limits or returning an error (abort() otherwise, which the fuzzer
 * reports).  The question name, when there is one, also goes through the
 * query encoder and back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dns_msg msg, echo;
static struct dns_mx_set set;

/* A name prints, and when it needed no escapes, reads back as itself. */
static void check_name(const struct dns_name *n)
{
  char text[DNS_NAME_TEXT_MAX];
  if (n->len < 1 || n->wire[n->len - 1] != 0)
    abort();
  int len = dns_name_to_text(n, text, sizeof(text));
  if (len <= 0 || (size_t)len != strlen(text))
    abort();
  if (strchr(text, '\\'))
    return;
  struct dns_name back;
  if (dns_name_from_text(&back, text) != 0 || back.len != n->len ||
      memcmp(back.wire, n->wire, n->len) != 0)
    abort();
}

static void check_helpers(const struct dns_name *name)
{
  struct dns_name end;
  unsigned links = 0;
  int rv = dns_cname_target(&msg, name, &end, &links);
  if (rv == 0) {
    if (links > DNS_MAX_CNAME_CHAIN)
      abort();
    check_name(&end);
  } else if (rv != DNS_ERR_CNAME) {
    abort();
  }
  rv = dns_mx_set(&msg, name, &set);
  if (rv >= 0) {
    if (set.n > DNS_MAX_MX || set.n > (size_t)rv ||
        (set.null_mx && (rv != 1 || !set.root_target)) ||
        (set.truncated != (rv > DNS_MAX_MX)))
      abort();
    for (size_t i = 0; i < set.n; i++)
      check_name(&set.mx[i].exchange);
  }
  struct dns_addr addrs[8];
  int more;
  rv = dns_addresses(&msg, name, DNS_TYPE_A, addrs, 8, &more);
  if (rv > 8 || (rv >= 0 && more && rv != 8))
    abort();
  rv = dns_addresses(&msg, name, DNS_TYPE_AAAA, addrs, 8, &more);
  if (rv > 8)
    abort();
  struct dns_tlsa tlsa[8];
  rv = dns_tlsa_set(&msg, name, tlsa, 8, &more);
  for (int i = 0; i < rv; i++)
    if (tlsa[i].data < msg.pkt || tlsa[i].data + tlsa[i].len > msg.pkt + msg.len)
      abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (dns_parse(&msg, data, size) != 0)
    return 0;
  if (msg.nrr > DNS_MAX_RRS || msg.nanswer > msg.nrr)
    abort();
  static char text[65536];
  for (size_t i = 0; i < msg.nrr; i++) {
    const struct dns_rr *rr = &msg.rr[i];
    if ((size_t)rr->rdata_off + rr->rdlen > size)
      abort();
    struct dns_name owner;
    dns_rr_owner(&msg, rr, &owner);
    check_name(&owner);
    /* The accessors of the checked types cannot fail. */
    uint8_t a[16];
    uint16_t pref;
    struct dns_name target;
    struct dns_soa soa;
    struct dns_tlsa t;
    int rv = 0;
    switch (rr->type) {
    case DNS_TYPE_A: rv = dns_rr_a(&msg, rr, a); break;
    case DNS_TYPE_AAAA: rv = dns_rr_aaaa(&msg, rr, a); break;
    case DNS_TYPE_CNAME: rv = dns_rr_cname(&msg, rr, &target); break;
    case DNS_TYPE_MX: rv = dns_rr_mx(&msg, rr, &pref, &target); break;
    case DNS_TYPE_SOA: rv = dns_rr_soa(&msg, rr, &soa); break;
    case DNS_TYPE_TLSA: rv = dns_rr_tlsa(&msg, rr, &t); break;
    case DNS_TYPE_TXT:
      rv = dns_rr_txt(&msg, rr, text, sizeof(text));
      rv = rv >= 0 && (size_t)rv < rr->rdlen ? 0 : -1;
      break;
    default: break;
    }
    if (rv != 0)
      abort();
    if (rr->type == DNS_TYPE_CNAME || rr->type == DNS_TYPE_MX)
      check_name(&target);
    if (i < 4)
      check_helpers(&owner);
  }
  int outcome = dns_outcome(&msg, NULL);
  if (outcome != DNS_ERR_CNAME &&
      (outcome < DNS_OUTCOME_DATA || outcome > DNS_OUTCOME_FAILED))
    abort();
  uint32_t ttl;
  dns_negative_ttl(&msg, &ttl);
  if (!msg.has_question)
    return 0;
  check_name(&msg.qname);
  check_helpers(&msg.qname);
  if (!dns_msg_answers(&msg, msg.id, &msg.qname, msg.qtype) !=
      (msg.qclass != DNS_CLASS_IN))
    abort();
  dns_name_is_hostname(&msg.qname);
  /* The question, asked again by the encoder, reads back as itself. */
  uint8_t q[DNS_QUERY_MAX];
  int len = dns_query_encode(q, sizeof(q), msg.id, &msg.qname, msg.qtype,
                             DNS_QUERY_RD | DNS_QUERY_DO);
  if (len <= 0)
    abort();
  q[2] |= 0x80;
  if (dns_parse(&echo, q, (size_t)len) != 0 || !echo.has_edns ||
      !echo.edns_do || echo.qclass != DNS_CLASS_IN ||
      !dns_name_equal(&echo.qname, &msg.qname) || echo.qtype != msg.qtype ||
      echo.id != msg.id)
    abort();
  return 0;
}
