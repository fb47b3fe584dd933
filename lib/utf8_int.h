/*
 * utf8_int.h — length-bounded UTF-8 validation, the one decoder of the
 * library: for mail addresses (address.c) and the parsers of text that
 * comes from outside (MTA-STS policies, TLS-RPT events).
 */
#ifndef SMTPOUT_UTF8_INT_H
#define SMTPOUT_UTF8_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The length of the well-formed UTF-8 sequence for one code point of at
 * least two bytes at `s` (`avail` bytes readable), or 0: an overlong form,
 * a surrogate, a code point past U+10FFFF or a truncated sequence is not
 * well-formed (RFC 3629 section 4).  `*cp` gets the code point.
 */
static inline size_t utf8_multibyte(const unsigned char *s, size_t avail,
                                    uint32_t *cp)
{
  unsigned char c = s[0];
  size_t n;
  uint32_t v, min;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2; v = c & 0x1f; min = 0x80;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3; v = c & 0x0f; min = 0x800;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4; v = c & 0x07; min = 0x10000;
  } else {
    return 0;
  }
  if (avail < n)
    return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    v = (v << 6) | (s[i] & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
    return 0;
  *cp = v;
  return n;
}

/* True for `n` bytes of UTF-8 without any control character (C0 or DEL). */
static inline bool utf8_text_ok(const char *s, size_t n)
{
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    uint32_t cp;
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f)
        return false;
      i++;
    } else {
      size_t k = utf8_multibyte((const unsigned char *)s + i, n - i, &cp);
      if (k == 0)
        return false;
      i += k;
    }
  }
  return true;
}

#endif
