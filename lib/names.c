/*
 * names.c — one spelling per name: lower-case A-labels, no trailing dot.
 *
 * Names containing non-ASCII characters (or an "xn--" label, whose
 * Punycode must be checked) go through libidn2: IDNA2008 lookup,
 * non-transitional UTS#46 mapping (so "ß" stays "ß" and becomes an
 * A-label of its own), NFC.  Plain ASCII names, the overwhelming majority
 * and the whole of a large policy map, take a fast path that applies
 * exactly the checks libidn2 applies to ASCII labels (lower-casing,
 * hyphen rules, label length); tests compare both paths.
 *
 * On top of IDNA, both paths require host-name syntax (RFC 1123 LDH
 * labels): libidn2 without STD3 rules lets "_" or "!" through, which
 * never name a mail host.  And a name must not be an address in
 * disguise: "127.1", "0x7f.0.0.1" or "2130706433" are LDH, but a resolver
 * (inet_aton) reads them as 127.0.0.1, so a host that connects by the
 * name reaches an address while SNI and the certificate check would use
 * a "host name".  They are refused, as is any name whose last label is
 * all digits (RFC 1123 section 2.1: a top-level label is alphabetic).
 * The canonical spellings of an address are IP literals
 * (name_ip_literal()), never names.
 */
#include <arpa/inet.h>
#include <idn2.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "names_int.h"
#include "smtpout/common.h"

#define LABEL_MAX 63
#define NAME_MAX_OCTETS 253

static bool is_ldh(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static bool has_alabel_prefix(const char *label, size_t len)
{
  /* "| 0x20" lower-cases an ASCII letter (and leaves '-' alone). */
  return len >= 4 && (label[0] | 0x20) == 'x' && (label[1] | 0x20) == 'n' &&
         label[2] == '-' && label[3] == '-';
}

/*
 * Checks a lower-case ASCII name of `len` octets label by label.  The
 * hyphen rules are UTS#46's CheckHyphens (RFC 5891 section 4.2.3.1), which
 * libidn2 applies to every label: no leading or trailing hyphen, and
 * "--" in the third and fourth positions only in an "xn--" A-label
 * (whose Punycode libidn2 has already decoded when we get here).
 */
static int check_labels(const char *name, size_t len, const char **why)
{
  if (len > NAME_MAX_OCTETS) {
    *why = "name longer than 253 octets";
    return SMTPOUT_ERR_BAD_NAME;
  }
  const char *p = name, *end = name + len;
  while (p <= end) {
    const char *dot = memchr(p, '.', (size_t)(end - p));
    size_t n = (size_t)((dot ? dot : end) - p);
    if (n == 0) {
      *why = "empty label";
      return SMTPOUT_ERR_BAD_NAME;
    }
    if (n > LABEL_MAX) {
      *why = "label longer than 63 octets";
      return SMTPOUT_ERR_BAD_NAME;
    }
    for (size_t i = 0; i < n; i++) {
      if (!is_ldh(p[i])) {
        *why = "character not allowed in a host name "
               "(letters, digits and hyphens only)";
        return SMTPOUT_ERR_BAD_NAME;
      }
    }
    if (p[0] == '-' || p[n - 1] == '-') {
      *why = "label starts or ends with a hyphen";
      return SMTPOUT_ERR_BAD_NAME;
    }
    if (n >= 4 && p[2] == '-' && p[3] == '-' && !has_alabel_prefix(p, n)) {
      *why = "hyphens in the third and fourth positions of a label";
      return SMTPOUT_ERR_BAD_NAME;
    }
    if (dot == NULL)
      break;
    p = dot + 1;
  }
  return 0;
}

/* Length of `in` without one trailing dot; 0 for "" and ".". */
static size_t strip_root(const char *in)
{
  size_t n = strlen(in);
  if (n > 0 && in[n - 1] == '.')
    n--;
  return n;
}

/*
 * Refuses a normalised name `name` (`len` octets) that is an address in
 * disguise (see the file comment): every spelling inet_aton() accepts
 * (dotted quad, fewer parts, octal, hex, one number), and any name whose
 * last label is all digits.
 */
static int check_not_numeric(const char *name, size_t len, const char **why)
{
  const char *last = name + len;
  while (last > name && last[-1] != '.')
    last--;
  bool digits = last < name + len;
  for (const char *p = last; p < name + len; p++)
    digits = digits && *p >= '0' && *p <= '9';
  struct in_addr a;
  if (digits || inet_aton(name, &a) != 0) {
    *why = "a numeric name (an IPv4 address a resolver would read in it); "
           "write an address as an IP literal, e.g. 192.0.2.1";
    return SMTPOUT_ERR_BAD_NAME;
  }
  return 0;
}

enum { FAST_OK = 0, FAST_NEEDS_IDN = 1 };

/*
 * The fast path, in one pass: lower-cases `in[0..n)` into `out` and
 * checks it as check_labels() would.  Returns FAST_OK,
 * FAST_NEEDS_IDN (a non-ASCII byte or an "xn--" label: only libidn2 can
 * judge those), or SMTPOUT_ERR_BAD_NAME with *why.
 */
static int normalize_ascii(const char *in, size_t n, char *out,
                           size_t outlen, const char **why)
{
  if (n > NAME_MAX_OCTETS || n + 1 > outlen) {
    /* Unless libidn2 might shorten it (full-width characters, ...). */
    for (size_t i = 0; i < n; i++) {
      if ((unsigned char)in[i] >= 0x80)
        return FAST_NEEDS_IDN;
    }
    *why = "name longer than 253 octets";
    return SMTPOUT_ERR_BAD_NAME;
  }
  int rv = FAST_OK;
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    char c = i < n ? in[i] : '.';
    if ((unsigned char)c >= 0x80)
      return FAST_NEEDS_IDN;
    if (c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    if (c != '.') {
      out[i] = c;
      continue;
    }
    /* End of the label out[start..i). */
    const char *l = out + start;
    size_t len = i - start;
    if (has_alabel_prefix(l, len))
      return FAST_NEEDS_IDN;
    /* Keep going after a bad label: a later non-ASCII byte means
     * libidn2 must decide (its message may differ). */
    if (rv == FAST_OK)
      rv = check_labels(l, len, why);
    if (i < n)
      out[i] = '.';
    start = i + 1;
  }
  out[n] = '\0';
  return rv;
}

int name_normalize_idn(const char *in, char *out, size_t outlen,
                       const char **why)
{
  const char *dummy;
  if (why == NULL)
    why = &dummy;
  if (strip_root(in) == 0) {
    *why = "empty name";
    return SMTPOUT_ERR_BAD_NAME;
  }
  char *alabels = NULL;
  int rc = idn2_lookup_u8((const uint8_t *)in, (uint8_t **)&alabels,
                          IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
  if (rc == IDN2_MALLOC)
    return SMTPOUT_ERR_NOMEM;
  if (rc != IDN2_OK) {
    *why = idn2_strerror(rc);
    return SMTPOUT_ERR_BAD_NAME;
  }
  /* UTS#46 maps the ideographic full stop and its kin to ".", so the root
   * dot is stripped after the mapping. */
  size_t n = strip_root(alabels);
  int ret = SMTPOUT_ERR_BAD_NAME;
  if (n == 0) {
    *why = "empty name";
  } else if (n > NAME_MAX_OCTETS || n + 1 > outlen) {
    *why = "name longer than 253 octets";
  } else {
    memcpy(out, alabels, n);
    out[n] = '\0';
    ret = check_labels(out, n, why);
    if (ret == 0)
      ret = check_not_numeric(out, n, why);
  }
  idn2_free(alabels);
  return ret;
}

int name_normalize_why(const char *in, char *out, size_t outlen,
                       const char **why)
{
  const char *dummy;
  if (why == NULL)
    why = &dummy;
  size_t n = strip_root(in);
  if (n == 0) {
    *why = "empty name";
    return SMTPOUT_ERR_BAD_NAME;
  }
  int rv = normalize_ascii(in, n, out, outlen, why);
  if (rv == FAST_NEEDS_IDN)
    return name_normalize_idn(in, out, outlen, why);
  if (rv == FAST_OK)
    rv = check_not_numeric(out, n, why);
  return rv;
}

int name_normalize(const char *in, char *out, size_t outlen)
{
  return name_normalize_why(in, out, outlen, NULL);
}

int name_ip_literal(const char *in, char *out, size_t outlen)
{
  char tmp[64];
  /* Most names are not addresses: an IPv4 address starts with a digit,
   * an IPv6 address holds a colon. */
  if (in[0] != '[' && !(in[0] >= '0' && in[0] <= '9') &&
      strchr(in, ':') == NULL)
    return 0;
  size_t n = strlen(in);
  bool tagged = false;
  if (n >= sizeof(tmp))
    return 0;
  if (n > 2 && in[0] == '[' && in[n - 1] == ']') {
    in++;
    n -= 2;
    if (n > 5 && strncasecmp(in, "IPv6:", 5) == 0) {
      in += 5;
      n -= 5;
      tagged = true;
    }
  } else if (n > 1 && in[n - 1] == '.') {
    /* "192.0.2.1." is the address with a root dot, as an MX record or a
     * typed name may carry one: still the address, never a host name
     * (which would get SNI and a certificate check against an IP). */
    n--;
  }
  memcpy(tmp, in, n);
  tmp[n] = '\0';
  unsigned char addr[16];
  int af = strchr(tmp, ':') ? AF_INET6 : AF_INET;
  /* RFC 5321 section 4.1.3: the "IPv6:" tag announces an IPv6 address. */
  if ((tagged && af != AF_INET6) || inet_pton(af, tmp, addr) != 1)
    return 0;
  return inet_ntop(af, addr, out, (socklen_t)outlen) != NULL;
}
