/*
 * config_value.c — the values a configuration holds: knob values,
 * durations and destination patterns, for the INI file and the map file
 * alike, so both spell them the same way.
 */
#include <stdio.h>
#include <string.h>

#include "config_impl_int.h"

void value_quote(char *out, size_t outlen, const char *s, size_t len)
{
  size_t o = 0;
  if (outlen < 8) {
    if (outlen)
      out[0] = '\0';
    return;
  }
  out[o++] = '"';
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (i == QUOTE_MAX || o + 8 >= outlen) {
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    if (c < 0x20 || c == 0x7f) {
      /* Control characters would break the one-line-per-problem report. */
      int n = snprintf(out + o, outlen - o, "\\x%02x", c);
      o += (size_t)n;
    } else {
      out[o++] = (char)c;
    }
  }
  out[o++] = '"';
  out[o] = '\0';
}

void value_unquote(const char **s, size_t *len)
{
  /* Double quotes as the seed writes them; single quotes are TOML's
   * literal strings, which Stalwart configs also use. */
  char q = *len >= 2 ? (*s)[0] : 0;
  if ((q == '"' || q == '\'') && (*s)[*len - 1] == q) {
    (*s)++;
    *len -= 2;
  }
}

static int equals(const char *s, size_t len, const char *word)
{
  return strlen(word) == len && memcmp(s, word, len) == 0;
}

int value_starttls(const char *s, size_t len, int *out)
{
  if (equals(s, len, "optional"))
    *out = SMTPOUT_STARTTLS_OPTIONAL;
  else if (equals(s, len, "require"))
    *out = SMTPOUT_STARTTLS_REQUIRE;
  else if (equals(s, len, "disable"))
    *out = SMTPOUT_STARTTLS_DISABLE;
  else
    return -1;
  return 0;
}

int value_bool(const char *s, size_t len, int *out)
{
  if (equals(s, len, "true"))
    *out = 1;
  else if (equals(s, len, "false"))
    *out = 0;
  else
    return -1;
  return 0;
}

int value_dane(const char *s, size_t len, int *out)
{
  if (equals(s, len, "optional"))
    *out = SMTPOUT_DANE_OPTIONAL;
  else if (equals(s, len, "require"))
    *out = SMTPOUT_DANE_REQUIRE;
  else if (equals(s, len, "disable"))
    *out = SMTPOUT_DANE_DISABLE;
  else
    return -1;
  return 0;
}

int value_mta_sts(const char *s, size_t len, int *out)
{
  if (equals(s, len, "optional"))
    *out = SMTPOUT_MTA_STS_OPTIONAL;
  else if (equals(s, len, "require"))
    *out = SMTPOUT_MTA_STS_REQUIRE;
  else if (equals(s, len, "disable"))
    *out = SMTPOUT_MTA_STS_DISABLE;
  else
    return -1;
  return 0;
}

int value_uint(const char *s, size_t len, uint32_t min, uint32_t max,
               uint32_t *out)
{
  uint64_t n = 0;
  if (len == 0 || len > 10)
    return -1;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    n = n * 10 + (uint64_t)(s[i] - '0');
  }
  if (n < min || n > max)
    return -1;
  *out = (uint32_t)n;
  return 0;
}

int value_duration(const char *s, size_t len, uint32_t *ms, const char **why)
{
  static const struct {
    const char *unit;
    uint64_t ms;
  } units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
  };
  uint64_t n = 0;
  size_t i = 0;
  while (i < len && s[i] >= '0' && s[i] <= '9') {
    n = n * 10 + (uint64_t)(s[i] - '0');
    if (n > UINT32_MAX) {
      *why = "too large (at most 49 days)";
      return -1;
    }
    i++;
  }
  if (i == 0) {
    *why = "not a number followed by a unit (ms, s, m, h, d), e.g. 30s";
    return -1;
  }
  if (i == len) {
    /* Seconds or milliseconds?  Both readings occur in MTA configs, so a
     * bare number is refused rather than guessed. */
    *why = "a unit is required (ms, s, m, h, d), e.g. 30s";
    return -1;
  }
  for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
    if (equals(s + i, len - i, units[u].unit)) {
      if (n == 0) {
        *why = "must be greater than zero";
        return -1;
      }
      if (n > UINT32_MAX / units[u].ms) {
        *why = "too large (at most 49 days)";
        return -1;
      }
      *ms = (uint32_t)(n * units[u].ms);
      return 0;
    }
  }
  *why = "unknown unit (accepted: ms, s, m, h, d), e.g. 30s";
  return -1;
}

void pattern_format(char *out, size_t outlen, int kind, const char *name,
                    bool in_map)
{
  const char *mx = in_map && kind >= PAT_MX ? "mx:" : "";
  const char *prefix = "";
  if (kind == PAT_DOMAIN_PARENT || kind == PAT_MX_SUFFIX)
    prefix = ".";
  else if (kind == PAT_MX_WILDCARD)
    prefix = "*.";
  snprintf(out, outlen, "%s%s%s", mx, prefix, name);
}

int pattern_parse(const char *tok, size_t len, int list, int *kind,
                  char *name, char *why, size_t whylen)
{
  char q[QUOTE_MAX + 16];
  bool mx = list == LIST_MX;
  const char *s = tok;
  size_t n = len;
  value_quote(q, sizeof(q), tok, len);
  if (list == LIST_MAP && n > 3 && memcmp(s, "mx:", 3) == 0) {
    mx = true;
    s += 3;
    n -= 3;
  }
  if (list != LIST_MAP && n > 3 && memcmp(s, "mx:", 3) == 0) {
    snprintf(why, whylen, "invalid pattern %s: the \"mx:\" prefix belongs "
             "in the policy map; in a section, use the mx = key", q);
    return SMTPOUT_ERR_BAD_NAME;
  }
  int k = mx ? PAT_MX : PAT_DOMAIN;
  if (n >= 2 && s[0] == '*' && s[1] == '.') {
    if (!mx) {
      snprintf(why, whylen,
               "invalid pattern %s: \"*.\" wildcards are for MX hosts "
               "(%s); \".example.com\" covers every subdomain",
               q, list == LIST_MAP ? "write mx:*.example.com" : "mx =");
      return SMTPOUT_ERR_BAD_NAME;
    }
    k = PAT_MX_WILDCARD;
    s += 2;
    n -= 2;
  } else if (n >= 1 && s[0] == '.') {
    k = mx ? PAT_MX_SUFFIX : PAT_DOMAIN_PARENT;
    s++;
    n--;
  }
  if (n == 0 || n >= 1024 || memchr(s, '\0', n) != NULL) {
    snprintf(why, whylen, "invalid pattern %s", q);
    return SMTPOUT_ERR_BAD_NAME;
  }
  char buf[1024];
  memcpy(buf, s, n);
  buf[n] = '\0';
  if (name_ip_literal(buf, name, NAME_MAX_LEN)) {
    if (k != PAT_DOMAIN && k != PAT_MX) {
      snprintf(why, whylen,
               "invalid pattern %s: an IP address can only be matched "
               "exactly", q);
      return SMTPOUT_ERR_BAD_NAME;
    }
    *kind = k;
    return 0;
  }
  const char *reason = "invalid name";
  int rv = name_normalize_why(buf, name, NAME_MAX_LEN, &reason);
  if (rv == SMTPOUT_ERR_NOMEM)
    return rv;
  if (rv != 0) {
    snprintf(why, whylen, "invalid name in pattern %s: %s", q, reason);
    return SMTPOUT_ERR_BAD_NAME;
  }
  *kind = k;
  return 0;
}
