/*
 * base64.c — see base64_int.h.
 */
#include "base64_int.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encode(const uint8_t *in, size_t n, char *out)
{
  char *o = out;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    *o++ = alphabet[v >> 18];
    *o++ = alphabet[(v >> 12) & 63];
    *o++ = alphabet[(v >> 6) & 63];
    *o++ = alphabet[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)in[i + 1] << 8;
    *o++ = alphabet[v >> 18];
    *o++ = alphabet[(v >> 12) & 63];
    *o++ = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  return (size_t)(o - out);
}

/* The value of a base64 character, or -1. */
static int value(char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

long base64_decode(const char *in, size_t n, uint8_t *out)
{
  if (n % 4 != 0)
    return -1;
  uint8_t *o = out;
  for (size_t i = 0; i < n; i += 4) {
    int last = i + 4 == n;
    /* Padding: "xx==" or "xxx=", and only in the last quantum. */
    size_t pad = 0;
    if (last && in[i + 3] == '=')
      pad = in[i + 2] == '=' ? 2 : 1;
    int v[4] = {0, 0, 0, 0};
    for (size_t k = 0; k < 4 - pad; k++) {
      v[k] = value(in[i + k]);
      if (v[k] < 0)
        return -1;
    }
    uint32_t q = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                 (uint32_t)v[2] << 6 | (uint32_t)v[3];
    /* The bits under the padding must be zero (RFC 4648 section 3.5):
     * otherwise several texts would decode to the same bytes. */
    if ((pad == 2 && (q & 0xffff) != 0) || (pad == 1 && (q & 0xff) != 0))
      return -1;
    *o++ = (uint8_t)(q >> 16);
    if (pad < 2)
      *o++ = (uint8_t)(q >> 8);
    if (pad < 1)
      *o++ = (uint8_t)q;
  }
  return (long)(o - out);
}
