/*
 * address.c — smtpout_address_check() and helpers.
 *
 * The check is about safety on the wire, not about RFC 5322 purity: an
 * address must not be able to end its command line early (CR, LF), carry
 * control characters, break out of its angle brackets, or exceed the path
 * limit.  The server judges everything else.
 */
#include <string.h>

#include "address_int.h"
#include "smtpout/session.h"
#include "utf8_int.h"

/* 1 for the bytes the check must look at: controls, space, DEL, '"',
 * '<', '>', '\\' and every non-ASCII byte.  Any other byte is printable
 * ASCII that may stand anywhere in an address. */
static const unsigned char special[256] = {
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

int address_scan(const char *address, size_t *plen, int *putf8)
{
  size_t len = strlen(address);
  if (len == 0 || len > ADDRESS_MAX_LEN)
    return SMTPOUT_ERR_BAD_ADDRESS;

  const char *at = strrchr(address, '@');
  if (at == NULL || at == address || at[1] == '\0')
    return SMTPOUT_ERR_BAD_ADDRESS;

  int quoted = 0, utf8 = 0;
  const unsigned char *s = (const unsigned char *)address;
  for (size_t i = 0; i < len;) {
    unsigned char c = s[i];
    if (!special[c]) {
      i++;
      continue;
    }
    if (c >= 0x80) {
      uint32_t cp;
      size_t n = utf8_multibyte(s + i, len - i, &cp);
      if (n == 0)
        return SMTPOUT_ERR_BAD_ADDRESS;
      utf8 = 1;
      i += n;
      continue;
    }
    /* CR, LF, NUL (impossible here), every other control and DEL. */
    if (c < 0x20 || c == 0x7f)
      return SMTPOUT_ERR_BAD_ADDRESS;
    if (c == '<' || c == '>')
      return SMTPOUT_ERR_BAD_ADDRESS;
    if (c == '\\' && quoted) {
      /* RFC 5321 4.1.2 quoted-pairSMTP: a backslash and one printable
       * ASCII character (RFC 6531 does not extend it to UTF-8).  The
       * escaped character is checked as any other: an escaped '<' or '>'
       * stays refused, since a server that finds the end of the path by
       * the first '>' would end it there. */
      unsigned char e = s[i + 1];
      if (e < 0x20 || e > 0x7e || e == '<' || e == '>')
        return SMTPOUT_ERR_BAD_ADDRESS;
      i += 2;
      continue;
    }
    if (c == '"' && (const char *)s + i < at)
      quoted = !quoted;
    else if (c == ' ' && !quoted)
      return SMTPOUT_ERR_BAD_ADDRESS;
    i++;
  }
  if (quoted)
    return SMTPOUT_ERR_BAD_ADDRESS;
  *plen = len;
  *putf8 = utf8;
  return 0;
}

int smtpout_address_check(const char *address)
{
  if (address == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  size_t len;
  int utf8;
  return address_scan(address, &len, &utf8);
}

const char *address_domain(const char *address)
{
  const char *at = strrchr(address, '@');
  return at ? at + 1 : address;
}
