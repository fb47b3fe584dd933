/*
 * dnsenc.c — see dnsenc.h.
 */
#include "dnsenc.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

void dnsenc_u8(struct dnsenc *p, unsigned v)
{
  assert_true(p->n < sizeof(p->b));
  p->b[p->n++] = (uint8_t)v;
}

void dnsenc_u16(struct dnsenc *p, unsigned v)
{
  dnsenc_u8(p, v >> 8);
  dnsenc_u8(p, v & 0xff);
}

static void put_bytes(struct dnsenc *p, const void *data, size_t len)
{
  assert_true(len <= sizeof(p->b) - p->n);
  memcpy(p->b + p->n, data, len);
  p->n += len;
}

void dnsenc_name(struct dnsenc *p, const char *text)
{
  const char *s = text;
  while (*s && strcmp(s, ".") != 0) {
    const char *dot = strchr(s, '.');
    size_t l = dot ? (size_t)(dot - s) : strlen(s);
    assert_true(l > 0 && l < 64);
    dnsenc_u8(p, (unsigned)l);
    put_bytes(p, s, l);
    s += l;
    if (*s == '.')
      s++;
  }
  dnsenc_u8(p, 0);
}

int dnsenc_type_code(const char *type)
{
  static const struct {
    const char *name;
    int code;
  } types[] = {{"A", 1}, {"CNAME", 5}, {"MX", 15}, {"TXT", 16},
               {"AAAA", 28}, {"TLSA", 52}};
  for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
    if (strcmp(types[i].name, type) == 0)
      return types[i].code;
  fail_msg("dnsenc: unknown type %s", type);
  return 0;
}

void dnsenc_response(struct dnsenc *p, unsigned flags, size_t ancount,
                     const char *qname, int qtype)
{
  p->n = 0;
  dnsenc_u16(p, 0x4242);
  dnsenc_u16(p, flags);
  dnsenc_u16(p, 1);
  dnsenc_u16(p, (unsigned)ancount);
  dnsenc_u16(p, 0);
  dnsenc_u16(p, 0);
  dnsenc_name(p, qname);
  dnsenc_u16(p, (unsigned)qtype);
  dnsenc_u16(p, 1);
}

static unsigned hexval(char c)
{
  return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

void dnsenc_rr(struct dnsenc *p, const char *owner, const char *type_name,
               const char *rdata)
{
  int type = dnsenc_type_code(type_name);
  dnsenc_name(p, owner);
  dnsenc_u16(p, (unsigned)type);
  dnsenc_u16(p, 1);   /* IN */
  dnsenc_u16(p, 0);
  dnsenc_u16(p, 300); /* TTL */
  size_t at = p->n;
  dnsenc_u16(p, 0);   /* RDLENGTH, below */
  if (type == 1 || type == 28) {
    uint8_t a[16];
    assert_int_equal(inet_pton(type == 1 ? AF_INET : AF_INET6, rdata, a), 1);
    put_bytes(p, a, type == 1 ? 4 : 16);
  } else if (type == 5) {
    dnsenc_name(p, rdata);
  } else if (type == 15) {
    unsigned pref;
    char host[300];
    assert_int_equal(sscanf(rdata, "%u %299s", &pref, host), 2);
    dnsenc_u16(p, pref);
    dnsenc_name(p, host);
  } else if (type == 16) {
    /* One character-string per 255 octets, as a zone file would. */
    size_t len = strlen(rdata);
    for (size_t off = 0; off < len || off == 0; off += 255) {
      size_t n = len - off > 255 ? 255 : len - off;
      dnsenc_u8(p, (unsigned)n);
      put_bytes(p, rdata + off, n);
      if (len == 0)
        break;
    }
  } else {
    unsigned u, s, m;
    char hex[4200];
    assert_int_equal(sscanf(rdata, "%u %u %u %4199s", &u, &s, &m, hex), 4);
    dnsenc_u8(p, u);
    dnsenc_u8(p, s);
    dnsenc_u8(p, m);
    for (size_t i = 0; hex[i] && hex[i + 1]; i += 2)
      dnsenc_u8(p, hexval(hex[i]) << 4 | hexval(hex[i + 1]));
  }
  size_t len = p->n - at - 2;
  p->b[at] = (uint8_t)(len >> 8);
  p->b[at + 1] = (uint8_t)len;
}
