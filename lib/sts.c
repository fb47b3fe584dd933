/*
 * sts.c — MTA-STS (RFC 8461): the policy file and its MX patterns, the
 * `_mta-sts` TXT record, the cache entry the host stores, and discovery.
 *
 * Both parsers follow the ABNF of RFC 8461 sections 3.1 and 3.2 to the
 * letter, because a lenient parser here is a downgrade: a policy we read
 * differently from its publisher either lets mail go to an MX the
 * publisher did not list or stops mail it did list.  Where the RFC says to
 * ignore something (unknown keys, repeated keys other than `mx`), it is
 * ignored only once it is well-formed.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sts_int.h"
#include "tls_int.h"
#include "tlsrpt_int.h"
#include "utf8_int.h"
#include "smtpout/common.h"

struct smtpout_sts_policy {
  int mode;
  uint32_t max_age;
  char *text; /* the file, with a NUL after it */
  size_t len;
  size_t nlines;
  const char **lines; /* into text */
  size_t *line_lens;
  size_t nmx;
  char **mx; /* "name" or "*.name": lower-case A-labels */
};

static bool is_alnum(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9');
}

static bool is_wsp(unsigned char c) { return c == ' ' || c == '\t'; }

/* RFC 8461's ext-name (both sections): (ALPHA / DIGIT) *31(ALPHA / DIGIT
 * / "_" / "-" / "."), so at most 32 characters.  Returns its length at
 * s[0..n), 0 when there is none. */
static size_t ext_name_len(const char *s, size_t n)
{
  if (n == 0 || !is_alnum((unsigned char)s[0]))
    return 0;
  size_t i = 1;
  while (i < n && i < 32 &&
         (is_alnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-' ||
          s[i] == '.'))
    i++;
  return i;
}

/* ------------------------------------------------------------------ */
/* The policy file (RFC 8461 section 3.2)                               */

struct perr {
  char *buf;
  size_t len;
  unsigned line;
};

__attribute__((format(printf, 2, 3)))
static int perr(struct perr *e, const char *fmt, ...)
{
  if (e->buf == NULL || e->len == 0)
    return SMTPOUT_ERR_SYNTAX;
  int n = 0;
  if (e->line > 0)
    n = snprintf(e->buf, e->len, "line %u: ", e->line);
  if (n < 0 || (size_t)n >= e->len)
    return SMTPOUT_ERR_SYNTAX;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->buf + n, e->len - (size_t)n, fmt, ap);
  va_end(ap);
  return SMTPOUT_ERR_SYNTAX;
}

/*
 * sts-policy-ext-value: VCHAR and UTF-8, spaces inside but not at either
 * end (the caller has trimmed white space around the value), no control
 * character (a tab inside a value is one).
 */
static bool ext_value_ok(const char *v, size_t n)
{
  if (n == 0)
    return false;
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)v[i];
    uint32_t cp;
    if (c >= 0x20 && c <= 0x7e) {
      i++;
    } else if (c >= 0x80) {
      size_t k = utf8_multibyte((const unsigned char *)v + i, n - i, &cp);
      if (k == 0)
        return false;
      i += k;
    } else {
      return false;
    }
  }
  return true;
}

/*
 * An `mx` value: ["*."] Domain.  U-labels are accepted and converted (as
 * Stalwart does; section 3.2 asks publishers for A-labels, and an A-label
 * is what the MX name is compared as).  Writes "name" or "*.name".
 */
static int parse_mx(struct perr *e, const char *v, size_t n, char *out,
                    size_t outlen)
{
  bool wild = n >= 2 && v[0] == '*' && v[1] == '.';
  const char *d = wild ? v + 2 : v;
  size_t dn = wild ? n - 2 : n;
  if (dn == 0)
    return perr(e, "mx: no domain name");
  if (memchr(d, '*', dn) != NULL)
    return perr(e, "mx: a wildcard is \"*.\" before a domain name, "
                   "nowhere else");
  for (size_t i = 0; i < dn; i++) {
    unsigned char c = (unsigned char)d[i];
    if (c <= 0x20 || c == 0x7f)
      return perr(e, "mx: white space or a control character in the name");
  }
  char tmp[1024];
  if (dn >= sizeof(tmp))
    return perr(e, "mx: name too long");
  memcpy(tmp, d, dn);
  tmp[dn] = '\0';
  size_t off = wild ? 2 : 0;
  const char *why = NULL;
  int rc = name_normalize_why(tmp, out + off, outlen - off, &why);
  if (rc == SMTPOUT_ERR_NOMEM)
    return rc;
  if (rc != 0)
    return perr(e, "mx: \"%.*s\" is not a valid host name (%s)", (int)dn,
                d, why ? why : "invalid");
  if (wild)
    memcpy(out, "*.", 2);
  return 0;
}

enum { SEEN_VERSION = 1, SEEN_MODE = 2, SEEN_MAX_AGE = 4 };

static int parse_field(smtpout_sts_policy *p, struct perr *e,
                       const char *line, size_t n, unsigned *seen)
{
  size_t kn = ext_name_len(line, n);
  if (kn == 0 || kn >= n || line[kn] != ':')
    return perr(e, "not \"key: value\" (a key is 1 to 32 letters, digits, "
                   "\"_\", \"-\" or \".\", starting with a letter or digit, "
                   "then \":\")");
  const char *v = line + kn + 1;
  size_t vn = n - kn - 1;
  while (vn > 0 && is_wsp((unsigned char)v[0])) {
    v++;
    vn--;
  }
  while (vn > 0 && is_wsp((unsigned char)v[vn - 1]))
    vn--;

#define KEY(s) (kn == sizeof(s) - 1 && memcmp(line, s, kn) == 0)
  if (KEY("mx")) {
    char name[NAME_MAX_LEN + 2];
    int rc = parse_mx(e, v, vn, name, sizeof(name));
    if (rc != 0)
      return rc;
    if ((p->mx[p->nmx] = strdup(name)) == NULL)
      return SMTPOUT_ERR_NOMEM;
    p->nmx++;
    return 0;
  }
  unsigned bit = KEY("version") ? SEEN_VERSION
                 : KEY("mode")  ? SEEN_MODE
                 : KEY("max_age") ? SEEN_MAX_AGE
                                  : 0;
#undef KEY
  /* An unknown key, or a repeated one (section 3.2: "all entries except
   * for the first SHOULD be ignored"): only its syntax matters. */
  if (bit == 0 || (*seen & bit)) {
    if (!ext_value_ok(v, vn))
      return perr(e, "%.*s: empty value, or a control character or invalid "
                     "UTF-8 in it", (int)kn, line);
    return 0;
  }
  *seen |= bit;
  if (bit == SEEN_VERSION) {
    if (vn != 5 || memcmp(v, "STSv1", 5) != 0)
      return perr(e, "version: \"%.*s\" is not STSv1", (int)(vn > 40 ? 40 : vn),
                  v);
  } else if (bit == SEEN_MODE) {
    if (vn == 7 && memcmp(v, "enforce", 7) == 0)
      p->mode = SMTPOUT_STS_MODE_ENFORCE;
    else if (vn == 7 && memcmp(v, "testing", 7) == 0)
      p->mode = SMTPOUT_STS_MODE_TESTING;
    else if (vn == 4 && memcmp(v, "none", 4) == 0)
      p->mode = SMTPOUT_STS_MODE_NONE;
    else
      return perr(e, "mode: \"%.*s\" is not enforce, testing or none",
                  (int)(vn > 40 ? 40 : vn), v);
  } else {
    /* sts-policy-max-age-value = 1*10(DIGIT), at most 31557600. */
    uint64_t age = 0;
    bool digits = vn >= 1 && vn <= 10;
    for (size_t i = 0; digits && i < vn; i++) {
      if (v[i] < '0' || v[i] > '9')
        digits = false;
      else
        age = age * 10 + (uint64_t)(v[i] - '0');
    }
    if (!digits || age > SMTPOUT_STS_MAX_AGE_MAX)
      return perr(e, "max_age: \"%.*s\" is not a number of seconds from 0 "
                     "to %d", (int)(vn > 40 ? 40 : vn), v,
                  SMTPOUT_STS_MAX_AGE_MAX);
    p->max_age = (uint32_t)age;
  }
  return 0;
}

void smtpout_sts_policy_free(smtpout_sts_policy *p)
{
  if (p == NULL)
    return;
  for (size_t i = 0; i < p->nmx; i++)
    free(p->mx[i]);
  free(p->mx);
  free(p->lines);
  free(p->line_lens);
  free(p->text);
  free(p);
}

static int parse_lines(smtpout_sts_policy *p, struct perr *e)
{
  unsigned seen = 0;
  const char *s = p->text, *end = p->text + p->len;
  /* sts-policy-record: fields separated by LF or CRLF, an optional
   * terminator after the last one, nothing else. */
  while (s < end) {
    e->line++;
    const char *lf = memchr(s, '\n', (size_t)(end - s));
    const char *eol = lf ? lf : end;
    size_t n = (size_t)(eol - s);
    if (lf && n > 0 && s[n - 1] == '\r')
      n--;
    if (n == 0)
      return perr(e, "empty line");
    if (memchr(s, '\r', n) != NULL)
      return perr(e, "CR that does not end a line");
    if (memchr(s, '\0', n) != NULL)
      return perr(e, "NUL byte");
    p->lines[p->nlines] = s;
    p->line_lens[p->nlines] = n;
    p->nlines++;
    int rc = parse_field(p, e, s, n, &seen);
    if (rc != 0)
      return rc;
    s = lf ? lf + 1 : end;
  }
  e->line = 0;
  if (!(seen & SEEN_VERSION))
    return perr(e, "no version field");
  if (!(seen & SEEN_MODE))
    return perr(e, "no mode field");
  if (!(seen & SEEN_MAX_AGE))
    return perr(e, "no max_age field");
  if (p->mode != SMTPOUT_STS_MODE_NONE && p->nmx == 0)
    return perr(e, "no mx field (required unless the mode is none)");
  return 0;
}

int smtpout_sts_policy_parse(smtpout_sts_policy **ppolicy, const char *text,
                             size_t len, char *errbuf, size_t errlen)
{
  struct perr e = {errbuf, errlen, 0};
  if (errbuf != NULL && errlen > 0)
    errbuf[0] = '\0';
  if (ppolicy == NULL || (text == NULL && len > 0))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (len > SMTPOUT_STS_POLICY_MAX_BYTES)
    return perr(&e, "the policy is larger than %d bytes",
                SMTPOUT_STS_POLICY_MAX_BYTES);
  if (len == 0)
    return perr(&e, "empty policy");

  size_t maxlines = 1;
  for (const char *s = text; (s = memchr(s, '\n', len - (size_t)(s - text)));
       s++)
    maxlines++;
  smtpout_sts_policy *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return SMTPOUT_ERR_NOMEM;
  p->text = malloc(len + 1);
  p->lines = calloc(maxlines, sizeof(*p->lines));
  p->line_lens = calloc(maxlines, sizeof(*p->line_lens));
  p->mx = calloc(maxlines, sizeof(*p->mx));
  if (p->text == NULL || p->lines == NULL || p->line_lens == NULL ||
      p->mx == NULL) {
    smtpout_sts_policy_free(p);
    return SMTPOUT_ERR_NOMEM;
  }
  memcpy(p->text, text, len);
  p->text[len] = '\0';
  p->len = len;
  int rc = parse_lines(p, &e);
  if (rc != 0) {
    smtpout_sts_policy_free(p);
    return rc;
  }
  *ppolicy = p;
  return 0;
}

int smtpout_sts_policy_mode(const smtpout_sts_policy *p)
{
  return p ? p->mode : SMTPOUT_STS_MODE_NONE;
}

const char *smtpout_sts_mode_name(int mode)
{
  switch (mode) {
  case SMTPOUT_STS_MODE_NONE: return "none";
  case SMTPOUT_STS_MODE_TESTING: return "testing";
  case SMTPOUT_STS_MODE_ENFORCE: return "enforce";
  default: return NULL;
  }
}

uint32_t smtpout_sts_policy_max_age(const smtpout_sts_policy *p)
{
  return p ? p->max_age : 0;
}

size_t smtpout_sts_policy_mx_count(const smtpout_sts_policy *p)
{
  return p ? p->nmx : 0;
}

const char *smtpout_sts_policy_mx(const smtpout_sts_policy *p, size_t index)
{
  return p && index < p->nmx ? p->mx[index] : NULL;
}

/* RFC 8461 section 4.1: an exact name, or "*." and the name without its
 * leftmost label. */
int smtpout_sts_policy_mx_allowed(const smtpout_sts_policy *p, const char *mx)
{
  if (p == NULL || mx == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  char host[NAME_MAX_LEN];
  int rc = name_normalize(mx, host, sizeof(host));
  if (rc != 0)
    return rc;
  const char *dot = strchr(host, '.');
  const char *parent = dot ? dot + 1 : NULL;
  for (size_t i = 0; i < p->nmx; i++) {
    const char *pat = p->mx[i];
    if (pat[0] == '*') {
      if (parent != NULL && strcmp(pat + 2, parent) == 0)
        return 1;
    } else if (strcmp(pat, host) == 0) {
      return 1;
    }
  }
  return 0;
}

size_t sts_policy_lines(const smtpout_sts_policy *p,
                        const char *const **plines, const size_t **plens)
{
  *plines = p->lines;
  *plens = p->line_lens;
  return p->nlines;
}

const char *sts_policy_text(const smtpout_sts_policy *p, size_t *plen)
{
  *plen = p->len;
  return p->text;
}

/* ------------------------------------------------------------------ */
/* The TXT record (RFC 8461 section 3.1)                                */

static const char sts_v[] = "v=STSv1";
#define STS_V_LEN (sizeof(sts_v) - 1)

/* sts-sep = *WSP ";" *WSP at s[*i]: advances past it, or returns false. */
static bool take_sep(const char *s, size_t n, size_t *i)
{
  size_t j = *i;
  while (j < n && is_wsp((unsigned char)s[j]))
    j++;
  if (j == n || s[j] != ';')
    return false;
  j++;
  while (j < n && is_wsp((unsigned char)s[j]))
    j++;
  *i = j;
  return true;
}

int sts_txt_parse(const char *s, size_t n, char id[STS_ID_MAX + 1],
                  const char **why)
{
  /* sts-text-record = sts-version 1*(sts-sep sts-field) [sts-sep] */
  if (n < STS_V_LEN || memcmp(s, sts_v, STS_V_LEN) != 0) {
    *why = "does not start with v=STSv1";
    return SMTPOUT_ERR_SYNTAX;
  }
  size_t i = STS_V_LEN;
  bool have_id = false;
  size_t fields = 0;
  while (i < n) {
    if (!take_sep(s, n, &i)) {
      *why = fields == 0 ? "v=STSv1 is not followed by \";\""
                         : "a field is not followed by \";\" or the end";
      return SMTPOUT_ERR_SYNTAX;
    }
    if (i == n)
      break; /* the optional final separator */
    size_t kn = ext_name_len(s + i, n - i);
    if (kn == 0 || i + kn >= n || s[i + kn] != '=') {
      *why = "a field is not name=value";
      return SMTPOUT_ERR_SYNTAX;
    }
    const char *v = s + i + kn + 1;
    size_t vmax = n - i - kn - 1, vn = 0;
    if (kn == 2 && memcmp(s + i, "id", 2) == 0) {
      /* sts-id = %s"id=" 1*32(ALPHA / DIGIT) */
      while (vn < vmax && is_alnum((unsigned char)v[vn]))
        vn++;
      if (vn == 0 || vn > STS_ID_MAX) {
        *why = "id is not 1 to 32 letters and digits";
        return SMTPOUT_ERR_SYNTAX;
      }
      if (have_id) {
        *why = "more than one id";
        return SMTPOUT_ERR_SYNTAX;
      }
      memcpy(id, v, vn);
      id[vn] = '\0';
      have_id = true;
    } else {
      /* sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E) */
      while (vn < vmax && v[vn] >= 0x21 && v[vn] <= 0x7e && v[vn] != '=' &&
             v[vn] != ';')
        vn++;
      if (vn == 0) {
        *why = "an extension field has no value";
        return SMTPOUT_ERR_SYNTAX;
      }
    }
    i += kn + 1 + vn;
    fields++;
  }
  if (!have_id) {
    *why = "no id field";
    return SMTPOUT_ERR_SYNTAX;
  }
  return 0;
}

/* "records that do not begin with "v=STSv1;" are discarded" (section
 * 3.1); white space before the ";" is allowed by the ABNF. */
static bool is_sts_record(const char *s, size_t n)
{
  if (n < STS_V_LEN || memcmp(s, sts_v, STS_V_LEN) != 0)
    return false;
  size_t i = STS_V_LEN;
  while (i < n && is_wsp((unsigned char)s[i]))
    i++;
  return i < n && s[i] == ';';
}

int sts_txt_select(const char *const *records, const size_t *lens, size_t n,
                   char id[STS_ID_MAX + 1], const char **why)
{
  size_t found = 0, which = 0;
  for (size_t i = 0; i < n; i++) {
    if (is_sts_record(records[i], lens[i])) {
      found++;
      which = i;
    }
  }
  if (found == 0) {
    *why = "no v=STSv1 record";
    return STS_TXT_ABSENT;
  }
  if (found > 1) {
    *why = "more than one v=STSv1 record";
    return STS_TXT_UNUSABLE;
  }
  if (sts_txt_parse(records[which], lens[which], id, why) != 0)
    return STS_TXT_UNUSABLE;
  return STS_TXT_FOUND;
}

/* ------------------------------------------------------------------ */
/* The HTTPS answer                                                     */

const char *sts_fetch_outcome_name(int outcome)
{
  switch (outcome) {
  case STS_FETCH_OK: return "ok";
  case STS_FETCH_CONNECT_FAILED: return "connect-failed";
  case STS_FETCH_TLS_NOT_VERIFIED: return "tls-not-verified";
  case STS_FETCH_TIMEOUT: return "timeout";
  case STS_FETCH_TOO_LARGE: return "too-large";
  case STS_FETCH_FAILED: return "failed";
  default: return NULL;
  }
}

bool sts_content_type_ok(const char *ct)
{
  if (ct == NULL)
    return false;
  while (is_wsp((unsigned char)*ct))
    ct++;
  if (strncasecmp(ct, "text/plain", 10) != 0)
    return false;
  ct += 10;
  while (is_wsp((unsigned char)*ct))
    ct++;
  return *ct == '\0' || *ct == ';';
}

/* ------------------------------------------------------------------ */
/* Cache entries                                                        */

void sts_cache_entry_clear(struct sts_cache_entry *e)
{
  smtpout_sts_policy_free(e->policy);
  memset(e, 0, sizeof(*e));
  e->retry_failure = TLSRPT_NONE;
}

static bool is_sts_failure(int type)
{
  return type == TLSRPT_STS_POLICY_FETCH_ERROR ||
         type == TLSRPT_STS_POLICY_INVALID ||
         type == TLSRPT_STS_WEBPKI_INVALID;
}

int sts_cache_entry_write(const struct sts_cache_entry *e, struct buf *out)
{
  char head[STS_CACHE_HEADER_MAX];
  int n = snprintf(head, sizeof(head), "v=%d", STS_CACHE_VERSION);
  if (e->policy != NULL)
    n += snprintf(head + n, sizeof(head) - (size_t)n, "; id=%s", e->id);
  n += snprintf(head + n, sizeof(head) - (size_t)n,
                "; fetched=%" PRIu64 "; expires=%" PRIu64, e->fetched_ms,
                e->expires_ms);
  if (e->retry_id[0] != '\0')
    n += snprintf(head + n, sizeof(head) - (size_t)n,
                  "; retry-id=%s; retry-until=%" PRIu64 "; retry-failure=%s",
                  e->retry_id, e->retry_until_ms,
                  tlsrpt_type_name(e->retry_failure));
  n += snprintf(head + n, sizeof(head) - (size_t)n, "\n");
  if (buf_append(out, head, (size_t)n) != 0)
    return SMTPOUT_ERR_NOMEM;
  if (e->policy != NULL && buf_append(out, e->policy->text, e->policy->len))
    return SMTPOUT_ERR_NOMEM;
  return 0;
}

/* The next "; key=value" (or, first, "v=value") of a header. */
struct hdr {
  const char *s, *end;
  const char *key, *val;
  size_t keylen, vallen;
};

static bool hdr_next(struct hdr *h, bool first)
{
  if (h->s == h->end)
    return false;
  if (!first) {
    if (h->end - h->s < 2 || h->s[0] != ';' || h->s[1] != ' ')
      return false;
    h->s += 2;
  }
  const char *eq = memchr(h->s, '=', (size_t)(h->end - h->s));
  if (eq == NULL || eq == h->s)
    return false;
  const char *semi = memchr(eq, ';', (size_t)(h->end - eq));
  const char *vend = semi ? semi : h->end;
  h->key = h->s;
  h->keylen = (size_t)(eq - h->s);
  h->val = eq + 1;
  h->vallen = (size_t)(vend - eq - 1);
  h->s = vend;
  return true;
}

static bool hdr_is(const struct hdr *h, const char *key)
{
  return h->keylen == strlen(key) && memcmp(h->key, key, h->keylen) == 0;
}

static bool parse_ms(const char *v, size_t n, uint64_t *out)
{
  if (n == 0 || n > 20 || (n > 1 && v[0] == '0'))
    return false;
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9')
      return false;
    unsigned d = (unsigned)(v[i] - '0');
    if (x > (UINT64_MAX - d) / 10)
      return false;
    x = x * 10 + d;
  }
  *out = x;
  return true;
}

static bool parse_id(const char *v, size_t n, char id[STS_ID_MAX + 1])
{
  if (n == 0 || n > STS_ID_MAX)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!is_alnum((unsigned char)v[i]))
      return false;
  memcpy(id, v, n);
  id[n] = '\0';
  return true;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int entry_parse(struct sts_cache_entry *e, const uint8_t *data,
                       size_t len, const char **why)
{
  size_t scan = len < STS_CACHE_HEADER_MAX ? len : STS_CACHE_HEADER_MAX;
  const uint8_t *lf = memchr(data, '\n', scan);
  *why = "no header line";
  if (lf == NULL)
    return SMTPOUT_ERR_SYNTAX;
  struct hdr h = {(const char *)data, (const char *)lf, NULL, NULL, 0, 0};
  *why = "not a version 1 entry";
  if (!hdr_next(&h, true) || !hdr_is(&h, "v") || h.vallen != 1 ||
      h.val[0] != '0' + STS_CACHE_VERSION)
    return SMTPOUT_ERR_SYNTAX;
  *why = "malformed header";
  if (!hdr_next(&h, false))
    return SMTPOUT_ERR_SYNTAX;
  bool negative = !hdr_is(&h, "id");
  if (!negative) {
    if (!parse_id(h.val, h.vallen, e->id) || !hdr_next(&h, false))
      return SMTPOUT_ERR_SYNTAX;
  }
  if (!hdr_is(&h, "fetched") || !parse_ms(h.val, h.vallen, &e->fetched_ms) ||
      !hdr_next(&h, false) || !hdr_is(&h, "expires") ||
      !parse_ms(h.val, h.vallen, &e->expires_ms))
    return SMTPOUT_ERR_SYNTAX;
  if (hdr_next(&h, false)) {
    if (!hdr_is(&h, "retry-id") || !parse_id(h.val, h.vallen, e->retry_id) ||
        !hdr_next(&h, false) || !hdr_is(&h, "retry-until") ||
        !parse_ms(h.val, h.vallen, &e->retry_until_ms) ||
        !hdr_next(&h, false) || !hdr_is(&h, "retry-failure"))
      return SMTPOUT_ERR_SYNTAX;
    e->retry_failure = tlsrpt_type_parse(h.val, h.vallen);
    if (!is_sts_failure(e->retry_failure))
      return SMTPOUT_ERR_SYNTAX;
  }
  if (h.s != h.end)
    return SMTPOUT_ERR_SYNTAX;
  const char *body = (const char *)lf + 1;
  size_t blen = len - (size_t)(lf + 1 - data);
  if (negative) {
    *why = "a negative entry that is not one";
    if (blen != 0 || e->retry_id[0] == '\0' ||
        e->expires_ms != e->retry_until_ms || e->fetched_ms > e->expires_ms)
      return SMTPOUT_ERR_SYNTAX;
    return 0;
  }
  int rc = smtpout_sts_policy_parse(&e->policy, body, blen, NULL, 0);
  if (rc != 0) {
    *why = "the stored policy does not parse";
    return rc;
  }
  *why = "the expiry does not follow from max_age";
  if (e->fetched_ms > UINT64_MAX - (uint64_t)e->policy->max_age * 1000 ||
      e->expires_ms != e->fetched_ms + (uint64_t)e->policy->max_age * 1000)
    return SMTPOUT_ERR_SYNTAX;
  return 0;
}

int sts_cache_entry_parse(struct sts_cache_entry *e, const uint8_t *data,
                          size_t len, const char **why)
{
  memset(e, 0, sizeof(*e));
  e->retry_failure = TLSRPT_NONE;
  if (len > STS_CACHE_ENTRY_MAX) {
    *why = "larger than any entry";
    return SMTPOUT_ERR_SYNTAX;
  }
  int rc = entry_parse(e, data, len, why);
  if (rc != 0)
    sts_cache_entry_clear(e);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Discovery                                                            */

int sts_discovery_init(struct sts_discovery *d, const char *domain,
                       uint64_t backoff_ms)
{
  if (d == NULL || domain == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  memset(d, 0, sizeof(*d));
  d->cached.retry_failure = TLSRPT_NONE;
  d->failure = TLSRPT_NONE;
  d->backoff_ms = backoff_ms;
  d->state = STS_STATE_NEED_INPUT;
  return name_normalize(domain, d->domain, sizeof(d->domain));
}

void sts_discovery_clear(struct sts_discovery *d)
{
  if (d == NULL)
    return;
  sts_cache_entry_clear(&d->cached);
  smtpout_sts_policy_free(d->fresh);
  buf_free(&d->entry);
  memset(d, 0, sizeof(*d));
}

int sts_discovery_cache(struct sts_discovery *d, const uint8_t *value,
                        size_t len)
{
  if (d->state != STS_STATE_NEED_INPUT || d->have_cache)
    return SMTPOUT_ERR_INVALID_STATE;
  d->have_cache = true;
  if (len == 0)
    return 0;
  const char *why = NULL;
  int rc = sts_cache_entry_parse(&d->cached, value, len, &why);
  if (rc == SMTPOUT_ERR_NOMEM)
    return rc;
  if (rc != 0) {
    /* Corruption must not stop delivery: the entry counts as a miss, and
     * the next successful fetch overwrites it. */
    snprintf(d->reason, sizeof(d->reason), "cache entry ignored (%s); ",
             why);
    return 0;
  }
  d->cache_usable = true;
  return 0;
}

int sts_discovery_txt(struct sts_discovery *d, bool lookup_failed,
                      const char *const *records, const size_t *lens,
                      size_t n)
{
  if (d->state != STS_STATE_NEED_INPUT || d->have_txt)
    return SMTPOUT_ERR_INVALID_STATE;
  d->have_txt = true;
  if (lookup_failed) {
    d->txt_status = STS_TXT_LOOKUP_FAILED;
    return 0;
  }
  const char *why = NULL;
  d->txt_status = sts_txt_select(records, lens, n, d->txt_id, &why);
  return 0;
}

/* Appends a sentence to the reason (truncated, never overflowing). */
__attribute__((format(printf, 2, 3)))
static void say(struct sts_discovery *d, const char *fmt, ...)
{
  size_t n = strlen(d->reason);
  if (n + 1 >= sizeof(d->reason))
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->reason + n, sizeof(d->reason) - n, fmt, ap);
  va_end(ap);
}

static bool cached_policy_live(const struct sts_discovery *d, uint64_t wall_ms)
{
  return d->cache_usable && d->cached.policy != NULL &&
         wall_ms < d->cached.expires_ms;
}

static const char *txt_words(int status)
{
  switch (status) {
  case STS_TXT_ABSENT: return "no _mta-sts record";
  case STS_TXT_UNUSABLE: return "the _mta-sts record is unusable";
  default: return "the _mta-sts lookup failed";
  }
}

int sts_discovery_next(struct sts_discovery *d, uint64_t wall_ms)
{
  if (d->state != STS_STATE_NEED_INPUT)
    return (int)d->state;
  if (!d->have_cache || !d->have_txt)
    return SMTPOUT_ERR_INVALID_STATE;
  bool live = cached_policy_live(d, wall_ms);
  d->state = STS_STATE_DONE;
  if (d->txt_status != STS_TXT_FOUND) {
    /* Section 3.1: no usable record is "not by itself sufficient to
     * remove a sender's previously cached policy"; section 8.3: a
     * publisher removes one with mode none, not by deleting the record. */
    if (live) {
      d->source = STS_SOURCE_CACHE;
      say(d, "%s; the cached policy id %s applies until it expires",
          txt_words(d->txt_status), d->cached.id);
    } else {
      d->source = STS_SOURCE_NONE;
      say(d, "%s and no cached policy", txt_words(d->txt_status));
    }
    return (int)d->state;
  }
  if (live && strcmp(d->cached.id, d->txt_id) == 0) {
    d->source = STS_SOURCE_CACHE;
    say(d, "cached policy id %s, the id the _mta-sts record still names",
        d->cached.id);
    return (int)d->state;
  }
  if (d->cache_usable && strcmp(d->cached.retry_id, d->txt_id) == 0 &&
      wall_ms < d->cached.retry_until_ms) {
    d->failure = d->cached.retry_failure;
    d->source = live ? STS_SOURCE_CACHE : STS_SOURCE_NONE;
    say(d, "fetching policy id %s failed recently (%s); not retried before "
           "%" PRIu64 "; ", d->txt_id, tlsrpt_type_name(d->failure),
        d->cached.retry_until_ms);
    if (live)
      say(d, "the cached policy id %s applies", d->cached.id);
    else
      say(d, "no policy applies");
    return (int)d->state;
  }
  d->state = STS_STATE_NEED_FETCH;
  return (int)d->state;
}

int sts_discovery_url(const struct sts_discovery *d, char *out, size_t outlen)
{
  int n = snprintf(out, outlen, "https://mta-sts.%s/.well-known/mta-sts.txt",
                   d->domain);
  return n > 0 && (size_t)n < outlen ? 0 : SMTPOUT_ERR_INVALID_ARGUMENT;
}

/*
 * RFC 8461 section 3.3 and RFC 8460 section 4.4.4: what a failed fetch is
 * reported as.  The transport (no connection, timeout, a status other than
 * 200, a body over the cap) is a fetch error; a certificate that fails
 * PKIX is sts-webpki-invalid; an answer that is not a policy (wrong
 * Content-Type, bad syntax) is sts-policy-invalid.
 */
static int judge_fetch(int outcome, int status, const char *ctype,
                       const uint8_t *body, size_t len,
                       smtpout_sts_policy **ppolicy, char *why, size_t whylen)
{
  switch (outcome) {
  case STS_FETCH_OK:
    break;
  case STS_FETCH_TLS_NOT_VERIFIED:
    snprintf(why, whylen, "the certificate of the policy host did not verify");
    return TLSRPT_STS_WEBPKI_INVALID;
  case STS_FETCH_CONNECT_FAILED:
  case STS_FETCH_TIMEOUT:
  case STS_FETCH_TOO_LARGE:
  case STS_FETCH_FAILED:
    snprintf(why, whylen, "fetch failed: %s", sts_fetch_outcome_name(outcome));
    return TLSRPT_STS_POLICY_FETCH_ERROR;
  default:
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  }
  if (status != 200) {
    snprintf(why, whylen, "HTTP status %d, not 200", status);
    return TLSRPT_STS_POLICY_FETCH_ERROR;
  }
  if (!sts_content_type_ok(ctype)) {
    snprintf(why, whylen, "Content-Type \"%.60s\" is not text/plain",
             ctype ? ctype : "");
    return TLSRPT_STS_POLICY_INVALID;
  }
  char err[160];
  int rc = smtpout_sts_policy_parse(ppolicy, (const char *)body, len, err,
                                    sizeof(err));
  if (rc == SMTPOUT_ERR_NOMEM)
    return rc;
  if (rc != 0) {
    snprintf(why, whylen, "invalid policy: %s", err);
    return TLSRPT_STS_POLICY_INVALID;
  }
  return TLSRPT_NONE;
}

int sts_discovery_fetched(struct sts_discovery *d, int outcome,
                          int http_status, const char *content_type,
                          const uint8_t *body, size_t len, uint64_t wall_ms)
{
  if (d->state != STS_STATE_NEED_FETCH)
    return SMTPOUT_ERR_INVALID_STATE;
  if (body == NULL && len > 0)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  char why[200] = "";
  smtpout_sts_policy *fresh = NULL;
  int type = judge_fetch(outcome, http_status, content_type, body, len,
                         &fresh, why, sizeof(why));
  if (type < 0)
    return type;
  struct sts_cache_entry put;
  memset(&put, 0, sizeof(put));
  if (type == TLSRPT_NONE) {
    d->fresh = fresh;
    d->source = STS_SOURCE_FETCHED;
    memcpy(put.id, d->txt_id, sizeof(put.id));
    put.fetched_ms = wall_ms;
    put.expires_ms = add_sat(wall_ms, (uint64_t)fresh->max_age * 1000);
    put.policy = fresh;
    say(d, "fetched policy id %s (mode %s, max_age %" PRIu32 ")", d->txt_id,
        smtpout_sts_mode_name(fresh->mode), fresh->max_age);
  } else {
    /* Downgrade resistance (section 3.3): a policy is only replaced by a
     * fetched and valid one, so a cached policy outlives any failure
     * until it expires. */
    bool live = cached_policy_live(d, wall_ms);
    d->failure = type;
    d->source = live ? STS_SOURCE_CACHE : STS_SOURCE_NONE;
    say(d, "fetching policy id %s failed (%s: %s); ", d->txt_id,
        tlsrpt_type_name(type), why);
    if (live)
      say(d, "the cached policy id %s applies until it expires",
          d->cached.id);
    else
      say(d, "no policy applies");
    if (d->backoff_ms > 0) {
      uint64_t until = add_sat(wall_ms, d->backoff_ms);
      if (live) {
        put = d->cached;
      } else {
        put.fetched_ms = wall_ms;
        put.expires_ms = until;
      }
      memcpy(put.retry_id, d->txt_id, sizeof(put.retry_id));
      put.retry_until_ms = until;
      put.retry_failure = type;
    }
  }
  d->state = STS_STATE_DONE;
  if (type == TLSRPT_NONE || d->backoff_ms > 0) {
    buf_clear(&d->entry);
    if (sts_cache_entry_write(&put, &d->entry) != 0)
      return SMTPOUT_ERR_NOMEM;
    d->put = true;
    d->put_expires_ms = put.expires_ms > put.retry_until_ms
                            ? put.expires_ms
                            : put.retry_until_ms;
  }
  return (int)d->state;
}

const smtpout_sts_policy *sts_discovery_policy(const struct sts_discovery *d)
{
  if (d->state != STS_STATE_DONE)
    return NULL;
  switch (d->source) {
  case STS_SOURCE_FETCHED: return d->fresh;
  case STS_SOURCE_CACHE: return d->cached.policy;
  default: return NULL;
  }
}

const char *sts_discovery_policy_id(const struct sts_discovery *d)
{
  if (d->state != STS_STATE_DONE)
    return "";
  switch (d->source) {
  case STS_SOURCE_FETCHED: return d->txt_id;
  case STS_SOURCE_CACHE: return d->cached.id;
  default: return "";
  }
}

int sts_discovery_source(const struct sts_discovery *d) { return d->source; }

int sts_discovery_failure(const struct sts_discovery *d) { return d->failure; }

const char *sts_discovery_reason(const struct sts_discovery *d)
{
  return d->reason;
}

int sts_discovery_cache_put(const struct sts_discovery *d,
                            const uint8_t **pdata, size_t *plen,
                            uint64_t *pexpires_ms)
{
  if (!d->put)
    return 0;
  *pdata = buf_head(&d->entry);
  *plen = buf_len(&d->entry);
  *pexpires_ms = d->put_expires_ms;
  return 1;
}
