/*
 * dnsenc.h — DNS messages encoded for the tests from zone-file text,
 * independently of lib/dns.c (which they test): names, and resource
 * records of the types routes ask for (A, AAAA, CNAME, MX, TXT, TLSA).
 * Every overflow is a cmocka assertion.
 */
#ifndef SMTPOUT_TESTS_DNSENC_H
#define SMTPOUT_TESTS_DNSENC_H

#include <stddef.h>
#include <stdint.h>

struct dnsenc {
  uint8_t b[8192];
  size_t n;
};

void dnsenc_u8(struct dnsenc *p, unsigned v);
void dnsenc_u16(struct dnsenc *p, unsigned v);

/* "mx.example.org" (a trailing dot, or "." for the root, allowed) as
 * uncompressed labels. */
void dnsenc_name(struct dnsenc *p, const char *text);

/* The code of "A", "CNAME", "MX", "TXT", "AAAA" or "TLSA"; another name
 * fails the test. */
int dnsenc_type_code(const char *type);

/* Starts `p` over with a response: id 0x4242, the 16 flag bits `flags`
 * (QR, RD, RA, TC, RCODE...), one question (`qname`, `qtype`, IN) and
 * `ancount` answers, which dnsenc_rr() appends; no other section. */
void dnsenc_response(struct dnsenc *p, unsigned flags, size_t ancount,
                     const char *qname, int qtype);

/* One IN record, TTL 300, from its zone-file rdata: "192.0.2.1",
 * "10 mx.example.org", "v=STSv1; id=1" (split into character-strings of
 * 255 octets), "3 1 1 ABCD..." (hex), a name for CNAME. */
void dnsenc_rr(struct dnsenc *p, const char *owner, const char *type,
               const char *rdata);

#endif
