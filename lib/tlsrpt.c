/*
 * tlsrpt.c — TLS-RPT (RFC 8460): result and policy type names, event lines
 * (writer and reader) and the `_smtp._tls` record.  The report builder is
 * tlsrpt_report.c.
 *
 * Events cross process and machine boundaries as text, so the reader
 * treats every line as hostile: bounded length, a strict JSON subset, no
 * control characters, names and addresses re-normalised.  A bad line is
 * refused with the reason; the builder skips and counts it.  The writer
 * produces only what the reader accepts.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw_int.h"
#include "names_int.h"
#include "tlsrpt_int.h"
#include "utf8_int.h"
#include "smtpout/common.h"

/* ------------------------------------------------------------------ */
/* Names                                                                */

static const char *const type_names[TLSRPT_RESULT_COUNT] = {
  [TLSRPT_STARTTLS_NOT_SUPPORTED] = "starttls-not-supported",
  [TLSRPT_CERTIFICATE_HOST_MISMATCH] = "certificate-host-mismatch",
  [TLSRPT_CERTIFICATE_EXPIRED] = "certificate-expired",
  [TLSRPT_CERTIFICATE_NOT_TRUSTED] = "certificate-not-trusted",
  [TLSRPT_VALIDATION_FAILURE] = "validation-failure",
  [TLSRPT_TLSA_INVALID] = "tlsa-invalid",
  [TLSRPT_DNSSEC_INVALID] = "dnssec-invalid",
  [TLSRPT_DANE_REQUIRED] = "dane-required",
  [TLSRPT_STS_POLICY_FETCH_ERROR] = "sts-policy-fetch-error",
  [TLSRPT_STS_POLICY_INVALID] = "sts-policy-invalid",
  [TLSRPT_STS_WEBPKI_INVALID] = "sts-webpki-invalid",
};

const char *tlsrpt_type_name(int result)
{
  return result > TLSRPT_NONE && result < TLSRPT_RESULT_COUNT
             ? type_names[result]
             : NULL;
}

int tlsrpt_type_parse(const char *name, size_t len)
{
  for (int i = TLSRPT_NONE + 1; i < TLSRPT_RESULT_COUNT; i++) {
    if (strlen(type_names[i]) == len && memcmp(type_names[i], name, len) == 0)
      return i;
  }
  return -1;
}

static const char *const policy_names[] = {
  [TLSRPT_POLICY_TLSA] = "tlsa",
  [TLSRPT_POLICY_STS] = "sts",
  [TLSRPT_POLICY_NONE] = "no-policy-found",
};
#define POLICY_TYPES ((int)(sizeof(policy_names) / sizeof(policy_names[0])))

const char *tlsrpt_policy_type_name(int type)
{
  return type >= 0 && type < POLICY_TYPES ? policy_names[type] : NULL;
}

static int policy_type_parse(const char *name, size_t len)
{
  for (int i = 0; i < POLICY_TYPES; i++) {
    if (strlen(policy_names[i]) == len &&
        memcmp(policy_names[i], name, len) == 0)
      return i;
  }
  return -1;
}

/* ------------------------------------------------------------------ */
/* Values shared by the writer and the reader                           */

static bool is_control(uint32_t cp) { return cp < 0x20 || cp == 0x7f; }

/* An IP address in inet_ntop() form, or false. */
static bool ip_canonical(const char *in, char *out, size_t outlen)
{
  unsigned char addr[16];
  int af = strchr(in, ':') ? AF_INET6 : AF_INET;
  return inet_pton(af, in, addr) == 1 &&
         inet_ntop(af, addr, out, (socklen_t)outlen) != NULL;
}

/* A host name (A-labels) or an address literal (a relay given by its
 * address has no name). */
static int host_canonical(const char *in, char *out, size_t outlen)
{
  if (name_ip_literal(in, out, outlen))
    return 0;
  return name_normalize(in, out, outlen);
}

/* An MX pattern of a policy: a name, or "*." and a name. */
static int pattern_canonical(const char *in, char *out, size_t outlen)
{
  bool wild = in[0] == '*' && in[1] == '.';
  int rc = name_normalize(wild ? in + 2 : in, out + (wild ? 2 : 0),
                          outlen - 2);
  if (rc == 0 && wild)
    memcpy(out, "*.", 2);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Free text in event lines                                              */

/*
 * Free text from outside (an EHLO name, a policy line): invalid UTF-8 and
 * control characters become U+FFFD, and the string is cut, at a character
 * boundary, at TLSRPT_STRING_MAX bytes.
 */
static void jw_text(struct jw *w, const char *s)
{
  static const char fffd[] = "\xef\xbf\xbd";
  jw_raw(w, "\"", 1);
  size_t n = strlen(s), out = 0;
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    uint32_t cp = c;
    size_t k = c < 0x80 ? 1
                        : utf8_multibyte((const unsigned char *)s + i, n - i,
                                         &cp);
    bool bad = k == 0 || is_control(cp);
    size_t width = bad ? 3 : (c == '"' || c == '\\') ? 1 : k;
    if (out + width > TLSRPT_STRING_MAX)
      break;
    if (bad)
      jw_raw(w, fffd, 3);
    else if (c == '"' || c == '\\')
      jw_raw(w, c == '"' ? "\\\"" : "\\\\", 2);
    else
      jw_raw(w, s + i, k);
    out += width;
    i += k == 0 ? 1 : k;
  }
  jw_raw(w, "\"", 1);
}

/* ------------------------------------------------------------------ */
/* The event writer                                                     */

int tlsrpt_event_write(const struct tlsrpt_event *ev, struct buf *out)
{
  if (ev == NULL || out == NULL || ev->policy_domain == NULL ||
      ev->time_ms > TLSRPT_TIME_MAX ||
      tlsrpt_policy_type_name(ev->policy_type) == NULL ||
      ev->npolicy_strings > TLSRPT_ARRAY_MAX ||
      ev->nmx_hosts > TLSRPT_ARRAY_MAX ||
      (ev->npolicy_strings > 0 && ev->policy_strings == NULL) ||
      (ev->nmx_hosts > 0 && ev->mx_hosts == NULL))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (ev->success ? ev->result_type != TLSRPT_NONE
                  : tlsrpt_type_name(ev->result_type) == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;

  char pdomain[NAME_MAX_LEN], rdomain[NAME_MAX_LEN], mxhost[NAME_MAX_LEN];
  char sip[INET6_ADDRSTRLEN], rip[INET6_ADDRSTRLEN];
  int rc = name_normalize(ev->policy_domain, pdomain, sizeof(pdomain));
  if (rc == 0 && ev->report_domain)
    rc = name_normalize(ev->report_domain, rdomain, sizeof(rdomain));
  if (rc == 0 && ev->receiving_mx_hostname)
    rc = host_canonical(ev->receiving_mx_hostname, mxhost, sizeof(mxhost));
  if (rc != 0)
    return rc;
  if ((ev->sending_mta_ip && !ip_canonical(ev->sending_mta_ip, sip, sizeof(sip))) ||
      (ev->receiving_ip && !ip_canonical(ev->receiving_ip, rip, sizeof(rip))))
    return SMTPOUT_ERR_INVALID_ARGUMENT;

  struct buf line = {0};
  struct jw w = {&line, false, true};
  jw_lit(&w, "{");
  jw_key(&w, "v");
  jw_lit(&w, "1");
  jw_key(&w, "time");
  jw_u64(&w, ev->time_ms);
  if (ev->report_domain) {
    jw_key(&w, "report-domain");
    jw_str(&w, rdomain, strlen(rdomain));
  }
  if (ev->report_record) {
    jw_key(&w, "report-record");
    jw_text(&w, ev->report_record);
  }
  jw_key(&w, "policy-type");
  jw_lit(&w, "\"");
  jw_lit(&w, tlsrpt_policy_type_name(ev->policy_type));
  jw_lit(&w, "\"");
  if (ev->npolicy_strings > 0) {
    jw_key(&w, "policy-string");
    jw_lit(&w, "[");
    for (size_t i = 0; i < ev->npolicy_strings; i++) {
      if (ev->policy_strings[i] == NULL) {
        buf_free(&line);
        return SMTPOUT_ERR_INVALID_ARGUMENT;
      }
      if (i > 0)
        jw_lit(&w, ",");
      jw_text(&w, ev->policy_strings[i]);
    }
    jw_lit(&w, "]");
  }
  jw_key(&w, "policy-domain");
  jw_str(&w, pdomain, strlen(pdomain));
  if (ev->nmx_hosts > 0) {
    jw_key(&w, "mx-host");
    jw_lit(&w, "[");
    for (size_t i = 0; i < ev->nmx_hosts; i++) {
      char pat[NAME_MAX_LEN + 2];
      rc = ev->mx_hosts[i] ? pattern_canonical(ev->mx_hosts[i], pat,
                                               sizeof(pat))
                           : SMTPOUT_ERR_INVALID_ARGUMENT;
      if (rc != 0) {
        buf_free(&line);
        return rc;
      }
      if (i > 0)
        jw_lit(&w, ",");
      jw_str(&w, pat, strlen(pat));
    }
    jw_lit(&w, "]");
  }
  jw_key(&w, "result");
  jw_lit(&w, ev->success ? "\"success\"" : "\"failure\"");
  if (!ev->success) {
    jw_key(&w, "result-type");
    jw_lit(&w, "\"");
    jw_lit(&w, tlsrpt_type_name(ev->result_type));
    jw_lit(&w, "\"");
  }
  if (ev->sending_mta_ip) {
    jw_key(&w, "sending-mta-ip");
    jw_str(&w, sip, strlen(sip));
  }
  if (ev->receiving_mx_hostname) {
    jw_key(&w, "receiving-mx-hostname");
    jw_str(&w, mxhost, strlen(mxhost));
  }
  if (ev->receiving_mx_helo) {
    jw_key(&w, "receiving-mx-helo");
    jw_text(&w, ev->receiving_mx_helo);
  }
  if (ev->receiving_ip) {
    jw_key(&w, "receiving-ip");
    jw_str(&w, rip, strlen(rip));
  }
  if (ev->additional_information) {
    jw_key(&w, "additional-information");
    jw_text(&w, ev->additional_information);
  }
  if (ev->failure_reason_code) {
    jw_key(&w, "failure-reason-code");
    jw_text(&w, ev->failure_reason_code);
  }
  jw_lit(&w, "}");
  /* What the reader would refuse is not written. */
  rc = buf_len(&line) > SMTPOUT_TLSRPT_EVENT_MAX_BYTES
           ? SMTPOUT_ERR_INVALID_ARGUMENT
           : 0;
  jw_lit(&w, "\n");
  if (rc == 0 && w.oom)
    rc = SMTPOUT_ERR_NOMEM;
  if (rc == 0 && buf_append(out, buf_head(&line), buf_len(&line)) != 0)
    rc = SMTPOUT_ERR_NOMEM;
  buf_free(&line);
  return rc;
}

/* ------------------------------------------------------------------ */
/* JSON reading: the subset events use                                  */

struct jr {
  const char *p, *end;
  struct buf *arena;
  const char *why;
};

static bool jr_fail(struct jr *r, const char *why)
{
  if (r->why == NULL)
    r->why = why;
  return false;
}

static void jr_ws(struct jr *r)
{
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\r'))
    r->p++;
}

static bool jr_char(struct jr *r, char c)
{
  jr_ws(r);
  if (r->p < r->end && *r->p == c) {
    r->p++;
    return true;
  }
  return false;
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static bool jr_hex4(struct jr *r, uint32_t *v)
{
  if (r->end - r->p < 4)
    return jr_fail(r, "truncated \\u escape");
  *v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(r->p[i]);
    if (h < 0)
      return jr_fail(r, "bad \\u escape");
    *v = (*v << 4) | (uint32_t)h;
  }
  r->p += 4;
  return true;
}

static bool put_cp(struct jr *r, uint32_t cp)
{
  char u[4];
  size_t n;
  if (cp < 0x80) {
    u[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xc0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3f));
    n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xe0 | (cp >> 12));
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    u[2] = (char)(0x80 | (cp & 0x3f));
    n = 3;
  } else {
    u[0] = (char)(0xf0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    u[3] = (char)(0x80 | (cp & 0x3f));
    n = 4;
  }
  if (buf_append(r->arena, u, n) != 0)
    return jr_fail(r, "out of memory");
  return true;
}

/*
 * A string, decoded into the arena with a NUL after it; *off is where it
 * starts.  Control characters (raw or escaped), invalid UTF-8, lone
 * surrogates and strings over TLSRPT_STRING_MAX are refused.
 */
static bool jr_string(struct jr *r, size_t *off)
{
  if (!jr_char(r, '"'))
    return jr_fail(r, "expected a string");
  *off = buf_len(r->arena);
  for (;;) {
    if (r->p >= r->end)
      return jr_fail(r, "unterminated string");
    if (buf_len(r->arena) - *off > TLSRPT_STRING_MAX)
      return jr_fail(r, "string too long");
    unsigned char c = (unsigned char)*r->p;
    if (c == '"') {
      r->p++;
      break;
    }
    if (c < 0x20 || c == 0x7f)
      return jr_fail(r, "control character in a string");
    if (c >= 0x80) {
      uint32_t cp;
      size_t k = utf8_multibyte((const unsigned char *)r->p,
                                (size_t)(r->end - r->p), &cp);
      if (k == 0)
        return jr_fail(r, "invalid UTF-8");
      if (buf_append(r->arena, r->p, k) != 0)
        return jr_fail(r, "out of memory");
      r->p += k;
      continue;
    }
    if (c != '\\') {
      if (!put_cp(r, c))
        return false;
      r->p++;
      continue;
    }
    if (++r->p >= r->end)
      return jr_fail(r, "unterminated string");
    char e = *r->p++;
    uint32_t cp;
    switch (e) {
    case '"': cp = '"'; break;
    case '\\': cp = '\\'; break;
    case '/': cp = '/'; break;
    case 'u':
      if (!jr_hex4(r, &cp))
        return false;
      if (cp >= 0xdc00 && cp <= 0xdfff)
        return jr_fail(r, "lone surrogate");
      if (cp >= 0xd800 && cp <= 0xdbff) {
        uint32_t lo;
        if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u')
          return jr_fail(r, "lone surrogate");
        r->p += 2;
        if (!jr_hex4(r, &lo))
          return false;
        if (lo < 0xdc00 || lo > 0xdfff)
          return jr_fail(r, "lone surrogate");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      }
      break;
    default:
      /* \b \f \n \r \t are control characters, refused like raw ones. */
      return jr_fail(r, "control character or bad escape in a string");
    }
    if (is_control(cp))
      return jr_fail(r, "control character in a string");
    if (!put_cp(r, cp))
      return false;
  }
  if (buf_append(r->arena, "", 1) != 0)
    return jr_fail(r, "out of memory");
  return true;
}

static const char *arena_str(const struct jr *r, size_t off)
{
  return (const char *)buf_head(r->arena) + off;
}

/* A non-negative integer without sign, fraction or exponent. */
static bool jr_uint(struct jr *r, uint64_t max, uint64_t *out)
{
  jr_ws(r);
  const char *s = r->p;
  uint64_t v = 0;
  while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
    unsigned d = (unsigned)(*r->p - '0');
    if (v > (max - d) / 10)
      return jr_fail(r, "number out of range");
    v = v * 10 + d;
    r->p++;
  }
  if (r->p == s || (r->p - s > 1 && s[0] == '0'))
    return jr_fail(r, "expected a plain integer");
  if (r->p < r->end && (*r->p == '.' || *r->p == 'e' || *r->p == 'E'))
    return jr_fail(r, "expected a plain integer");
  *out = v;
  return true;
}

/* Any JSON number, checked for syntax only. */
static bool jr_skip_number(struct jr *r)
{
  const char *p = r->p;
  if (p < r->end && *p == '-')
    p++;
  if (p >= r->end || *p < '0' || *p > '9')
    return jr_fail(r, "bad value");
  if (*p == '0')
    p++;
  else
    while (p < r->end && *p >= '0' && *p <= '9')
      p++;
  if (p < r->end && *p == '.') {
    const char *d = ++p;
    while (p < r->end && *p >= '0' && *p <= '9')
      p++;
    if (p == d)
      return jr_fail(r, "bad number");
  }
  if (p < r->end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < r->end && (*p == '+' || *p == '-'))
      p++;
    const char *d = p;
    while (p < r->end && *p >= '0' && *p <= '9')
      p++;
    if (p == d)
      return jr_fail(r, "bad number");
  }
  r->p = p;
  return true;
}

static bool jr_skip_scalar(struct jr *r)
{
  jr_ws(r);
  if (r->p >= r->end)
    return jr_fail(r, "missing value");
  if (*r->p == '"') {
    size_t mark = buf_len(r->arena), off;
    bool ok = jr_string(r, &off);
    r->arena->end = r->arena->start + mark; /* not kept */
    return ok;
  }
  static const char *const words[] = {"true", "false", "null"};
  for (size_t i = 0; i < 3; i++) {
    size_t n = strlen(words[i]);
    if ((size_t)(r->end - r->p) >= n && memcmp(r->p, words[i], n) == 0) {
      r->p += n;
      return true;
    }
  }
  return jr_skip_number(r);
}

/* The value of an unknown key: a scalar or an array of scalars. */
static bool jr_skip_value(struct jr *r)
{
  if (!jr_char(r, '['))
    return jr_skip_scalar(r);
  if (jr_char(r, ']'))
    return true;
  size_t n = 0;
  do {
    if (++n > TLSRPT_ARRAY_MAX)
      return jr_fail(r, "array too long");
    if (!jr_skip_scalar(r))
      return false;
  } while (jr_char(r, ','));
  return jr_char(r, ']') || jr_fail(r, "expected \",\" or \"]\"");
}

/* ------------------------------------------------------------------ */
/* The event reader                                                     */

enum ev_key {
  K_V, K_TIME, K_REPORT_DOMAIN, K_REPORT_RECORD, K_POLICY_TYPE,
  K_POLICY_STRING, K_POLICY_DOMAIN, K_MX_HOST, K_RESULT, K_RESULT_TYPE,
  K_SENDING_IP, K_MX_HOSTNAME, K_MX_HELO, K_RECEIVING_IP, K_INFO, K_CODE,
  K_COUNT
};

static const char *const ev_keys[K_COUNT] = {
  "v", "time", "report-domain", "report-record", "policy-type",
  "policy-string", "policy-domain", "mx-host", "result", "result-type",
  "sending-mta-ip", "receiving-mx-hostname", "receiving-mx-helo",
  "receiving-ip", "additional-information", "failure-reason-code",
};

#define NO_OFF SIZE_MAX

struct offs {
  size_t *v;
  size_t n, cap;
};

static bool offs_push(struct jr *r, struct offs *o, size_t off)
{
  if (o->n == o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 8;
    size_t *v = realloc(o->v, cap * sizeof(*v));
    if (v == NULL)
      return jr_fail(r, "out of memory");
    o->v = v;
    o->cap = cap;
  }
  o->v[o->n++] = off;
  return true;
}

/* Replaces the string at `off` (the arena's last) by its canonical
 * form, which is never longer. */
static void arena_replace_last(struct jr *r, size_t off, const char *canon)
{
  size_t n = strlen(canon);
  memcpy((char *)buf_head(r->arena) + off, canon, n + 1);
  r->arena->end = r->arena->start + off + n + 1;
}

enum canon { C_TEXT, C_NAME, C_HOST, C_IP, C_PATTERN };

static bool jr_string_as(struct jr *r, size_t *off, enum canon how)
{
  if (!jr_string(r, off))
    return false;
  if (how == C_TEXT)
    return true;
  const char *s = arena_str(r, *off);
  char canon[NAME_MAX_LEN + 2];
  bool ok;
  if (how == C_IP)
    ok = ip_canonical(s, canon, sizeof(canon));
  else if (how == C_HOST)
    ok = host_canonical(s, canon, sizeof(canon)) == 0;
  else if (how == C_PATTERN)
    ok = pattern_canonical(s, canon, sizeof(canon)) == 0;
  else
    ok = name_normalize(s, canon, sizeof(canon)) == 0;
  if (!ok)
    return jr_fail(r, how == C_IP ? "not an IP address" : "not a host name");
  /* The canonical form is never longer than what it came from, except
   * where libidn2 turns a U-label into a longer A-label: append then. */
  size_t n = strlen(canon);
  if (n <= strlen(s)) {
    arena_replace_last(r, *off, canon);
  } else {
    *off = buf_len(r->arena);
    if (buf_append(r->arena, canon, n + 1) != 0)
      return jr_fail(r, "out of memory");
  }
  return true;
}

static bool jr_string_array(struct jr *r, struct offs *o, enum canon how)
{
  if (!jr_char(r, '['))
    return jr_fail(r, "expected an array");
  if (jr_char(r, ']'))
    return true;
  do {
    size_t off;
    if (o->n >= TLSRPT_ARRAY_MAX)
      return jr_fail(r, "array too long");
    if (!jr_string_as(r, &off, how) || !offs_push(r, o, off))
      return false;
  } while (jr_char(r, ','));
  return jr_char(r, ']') || jr_fail(r, "expected \",\" or \"]\"");
}

struct ev_fields {
  size_t str[K_COUNT]; /* arena offsets of string fields */
  struct offs strings, mx;
  uint64_t version, time;
  int policy_type, result_type;
  int success;
};

static bool read_field(struct jr *r, struct ev_fields *f, int k)
{
  size_t off;
  switch (k) {
  case K_V:
    return jr_uint(r, UINT64_MAX, &f->version) &&
           (f->version == 1 || jr_fail(r, "not a version 1 event"));
  case K_TIME:
    return jr_uint(r, TLSRPT_TIME_MAX, &f->time);
  case K_POLICY_STRING:
    return jr_string_array(r, &f->strings, C_TEXT);
  case K_MX_HOST:
    return jr_string_array(r, &f->mx, C_PATTERN);
  case K_POLICY_TYPE:
    if (!jr_string(r, &off))
      return false;
    f->policy_type = policy_type_parse(arena_str(r, off),
                                       strlen(arena_str(r, off)));
    return f->policy_type >= 0 || jr_fail(r, "unknown policy-type");
  case K_RESULT:
    if (!jr_string(r, &off))
      return false;
    f->success = strcmp(arena_str(r, off), "success") == 0   ? 1
                 : strcmp(arena_str(r, off), "failure") == 0 ? 0
                                                             : -1;
    return f->success >= 0 || jr_fail(r, "result is not success or failure");
  case K_RESULT_TYPE:
    if (!jr_string(r, &off))
      return false;
    f->result_type = tlsrpt_type_parse(arena_str(r, off),
                                       strlen(arena_str(r, off)));
    return f->result_type > 0 || jr_fail(r, "unknown result-type");
  case K_REPORT_DOMAIN:
  case K_POLICY_DOMAIN:
    return jr_string_as(r, &f->str[k], C_NAME);
  case K_MX_HOSTNAME:
    return jr_string_as(r, &f->str[k], C_HOST);
  case K_SENDING_IP:
  case K_RECEIVING_IP:
    return jr_string_as(r, &f->str[k], C_IP);
  default:
    return jr_string_as(r, &f->str[k], C_TEXT);
  }
}

static bool read_object(struct jr *r, struct ev_fields *f)
{
  bool seen[K_COUNT] = {false};
  if (!jr_char(r, '{'))
    return jr_fail(r, "not a JSON object");
  if (jr_char(r, '}'))
    return jr_fail(r, "empty object");
  do {
    size_t koff;
    if (!jr_string(r, &koff))
      return false;
    int k = 0;
    while (k < K_COUNT && strcmp(ev_keys[k], arena_str(r, koff)) != 0)
      k++;
    r->arena->end = r->arena->start + koff; /* keys are not kept */
    if (!jr_char(r, ':'))
      return jr_fail(r, "expected \":\"");
    if (k == K_COUNT) {
      if (!jr_skip_value(r))
        return false;
      continue;
    }
    if (seen[k])
      return jr_fail(r, "a key appears twice");
    seen[k] = true;
    if (!read_field(r, f, k))
      return false;
  } while (jr_char(r, ','));
  if (!jr_char(r, '}'))
    return jr_fail(r, "expected \",\" or \"}\"");
  jr_ws(r);
  if (r->p != r->end)
    return jr_fail(r, "text after the object");
  if (!seen[K_V] || !seen[K_TIME] || !seen[K_POLICY_TYPE] ||
      !seen[K_POLICY_DOMAIN] || !seen[K_RESULT])
    return jr_fail(r, "a required key is missing");
  if (seen[K_RESULT_TYPE] == (f->success == 1))
    return jr_fail(r, "result-type must be given exactly for a failure");
  return true;
}

void tlsrpt_parsed_clear(struct tlsrpt_parsed *p)
{
  buf_free(&p->arena);
  free(p->ptrs);
  memset(p, 0, sizeof(*p));
}

int tlsrpt_event_parse(const char *line, size_t len, struct tlsrpt_parsed *out,
                       const char **why)
{
  memset(out, 0, sizeof(*out));
  const char *dummy;
  if (why == NULL)
    why = &dummy;
  if (len > SMTPOUT_TLSRPT_EVENT_MAX_BYTES) {
    *why = "line too long";
    return SMTPOUT_ERR_SYNTAX;
  }
  struct ev_fields f;
  memset(&f, 0, sizeof(f));
  for (int k = 0; k < K_COUNT; k++)
    f.str[k] = NO_OFF;
  f.result_type = TLSRPT_NONE;
  struct jr r = {line, line + len, &out->arena, NULL};
  bool ok = read_object(&r, &f);
  int rc = 0;
  if (!ok) {
    *why = r.why ? r.why : "malformed";
    rc = strcmp(*why, "out of memory") == 0 ? SMTPOUT_ERR_NOMEM
                                            : SMTPOUT_ERR_SYNTAX;
  } else if ((out->ptrs = calloc(f.strings.n + f.mx.n + 1,
                                 sizeof(*out->ptrs))) == NULL) {
    rc = SMTPOUT_ERR_NOMEM;
  } else {
    const char *base = (const char *)buf_head(&out->arena);
    struct tlsrpt_event *ev = &out->ev;
#define STR(k) (f.str[k] == NO_OFF ? NULL : base + f.str[k])
    ev->time_ms = f.time;
    ev->report_domain = STR(K_REPORT_DOMAIN);
    ev->report_record = STR(K_REPORT_RECORD);
    ev->policy_type = f.policy_type;
    ev->policy_domain = STR(K_POLICY_DOMAIN);
    ev->success = f.success == 1;
    ev->result_type = f.result_type;
    ev->sending_mta_ip = STR(K_SENDING_IP);
    ev->receiving_mx_hostname = STR(K_MX_HOSTNAME);
    ev->receiving_mx_helo = STR(K_MX_HELO);
    ev->receiving_ip = STR(K_RECEIVING_IP);
    ev->additional_information = STR(K_INFO);
    ev->failure_reason_code = STR(K_CODE);
#undef STR
    for (size_t i = 0; i < f.strings.n; i++)
      out->ptrs[i] = base + f.strings.v[i];
    for (size_t i = 0; i < f.mx.n; i++)
      out->ptrs[f.strings.n + i] = base + f.mx.v[i];
    ev->policy_strings = out->ptrs;
    ev->npolicy_strings = f.strings.n;
    ev->mx_hosts = out->ptrs + f.strings.n;
    ev->nmx_hosts = f.mx.n;
  }
  free(f.strings.v);
  free(f.mx.v);
  return rc;
}

/* ------------------------------------------------------------------ */
/* The `_smtp._tls` TXT record (RFC 8460 section 3)                     */

static const char tlsrpt_v[] = "v=TLSRPTv1";
#define TLSRPT_V_LEN (sizeof(tlsrpt_v) - 1)

static bool is_wsp(char c) { return c == ' ' || c == '\t'; }

static bool is_alnum(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9');
}

static void skip_wsp(const char *s, size_t n, size_t *i)
{
  while (*i < n && is_wsp(s[*i]))
    (*i)++;
}

/* field-delim = *WSP ";" *WSP */
static bool take_delim(const char *s, size_t n, size_t *i)
{
  size_t j = *i;
  skip_wsp(s, n, &j);
  if (j == n || s[j] != ';')
    return false;
  j++;
  skip_wsp(s, n, &j);
  *i = j;
  return true;
}

/*
 * A URI character of RFC 3986 (unreserved, reserved, "%"), less what the
 * record uses as separators: "," and ";" (and "!", which section 3 says
 * must be encoded).
 */
static bool uri_char(char c)
{
  return is_alnum(c) || (c != '\0' && strchr("-._~:/?#[]@$&'()*+=%", c));
}

/* One URI at s[*i]: scheme ":" rest, percent-encoding well-formed. */
static bool take_uri(const char *s, size_t n, size_t *i, struct tlsrpt_uri *u)
{
  size_t j = *i;
  while (j < n && uri_char(s[j]))
    j++;
  const char *t = s + *i;
  size_t tn = j - *i;
  /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
  size_t k = 0;
  if (tn == 0 || !((t[0] | 0x20) >= 'a' && (t[0] | 0x20) <= 'z'))
    return false;
  while (k < tn && (is_alnum(t[k]) || t[k] == '+' || t[k] == '-' ||
                    t[k] == '.'))
    k++;
  if (k == tn || t[k] != ':' || k + 1 == tn)
    return false;
  for (size_t p = 0; p < tn; p++) {
    if (t[p] == '%' && (p + 2 >= tn || hexval(t[p + 1]) < 0 ||
                        hexval(t[p + 2]) < 0))
      return false;
  }
  const char *rest = t + k + 1;
  size_t rn = tn - k - 1;
  if (k == 6 && strncasecmp(t, "mailto", 6) == 0) {
    if (memchr(rest, '@', rn) == NULL)
      return false;
    u->scheme = TLSRPT_URI_MAILTO;
  } else if (k == 5 && strncasecmp(t, "https", 5) == 0) {
    if (rn < 3 || rest[0] != '/' || rest[1] != '/' || rest[2] == '/')
      return false;
    u->scheme = TLSRPT_URI_HTTPS;
  } else {
    u->scheme = TLSRPT_URI_OTHER;
  }
  u->s = t;
  u->len = tn;
  *i = j;
  return true;
}

int tlsrpt_txt_parse(const char *s, size_t n, struct tlsrpt_record *rec,
                     const char **why)
{
  memset(rec, 0, sizeof(*rec));
  if (n < TLSRPT_V_LEN || memcmp(s, tlsrpt_v, TLSRPT_V_LEN) != 0) {
    *why = "does not start with v=TLSRPTv1";
    return SMTPOUT_ERR_SYNTAX;
  }
  size_t i = TLSRPT_V_LEN;
  bool have_rua = false;
  while (i < n) {
    if (!take_delim(s, n, &i)) {
      *why = "a field is not followed by \";\" or the end";
      return SMTPOUT_ERR_SYNTAX;
    }
    if (i == n)
      break;
    size_t kn = 0;
    if (is_alnum(s[i])) {
      kn = 1;
      while (i + kn < n && kn < 32 &&
             (is_alnum(s[i + kn]) || s[i + kn] == '_' || s[i + kn] == '-' ||
              s[i + kn] == '.'))
        kn++;
    }
    if (kn == 0 || i + kn >= n || s[i + kn] != '=') {
      *why = "a field is not name=value";
      return SMTPOUT_ERR_SYNTAX;
    }
    size_t v = i + kn + 1;
    if (kn == 3 && memcmp(s + i, "rua", 3) == 0) {
      if (have_rua) {
        *why = "more than one rua field";
        return SMTPOUT_ERR_SYNTAX;
      }
      have_rua = true;
      for (;;) {
        if (rec->nrua == TLSRPT_RUA_MAX) {
          *why = "too many rua URIs";
          return SMTPOUT_ERR_SYNTAX;
        }
        if (!take_uri(s, n, &v, &rec->rua[rec->nrua])) {
          *why = "a rua URI is malformed";
          return SMTPOUT_ERR_SYNTAX;
        }
        rec->nrua++;
        size_t j = v;
        skip_wsp(s, n, &j);
        if (j == n || s[j] != ',')
          break;
        j++;
        skip_wsp(s, n, &j);
        v = j;
      }
    } else {
      /* tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E) */
      size_t v0 = v;
      while (v < n && s[v] >= 0x21 && s[v] <= 0x7e && s[v] != ';' &&
             s[v] != '=')
        v++;
      if (v == v0) {
        *why = "an extension field has no value";
        return SMTPOUT_ERR_SYNTAX;
      }
    }
    i = v;
  }
  if (!have_rua) {
    *why = "no rua field";
    return SMTPOUT_ERR_SYNTAX;
  }
  return 0;
}

static bool is_tlsrpt_record(const char *s, size_t n)
{
  if (n < TLSRPT_V_LEN || memcmp(s, tlsrpt_v, TLSRPT_V_LEN) != 0)
    return false;
  size_t i = TLSRPT_V_LEN;
  skip_wsp(s, n, &i);
  return i < n && s[i] == ';';
}

int tlsrpt_txt_select(const char *const *records, const size_t *lens,
                      size_t n, struct tlsrpt_record *r, const char **why)
{
  size_t found = 0, which = 0;
  memset(r, 0, sizeof(*r));
  for (size_t i = 0; i < n; i++) {
    if (is_tlsrpt_record(records[i], lens[i])) {
      found++;
      which = i;
    }
  }
  if (found == 0) {
    *why = "no v=TLSRPTv1 record";
    return TLSRPT_TXT_ABSENT;
  }
  if (found > 1) {
    *why = "more than one v=TLSRPTv1 record";
    return TLSRPT_TXT_UNUSABLE;
  }
  if (tlsrpt_txt_parse(records[which], lens[which], r, why) != 0)
    return TLSRPT_TXT_UNUSABLE;
  return TLSRPT_TXT_FOUND;
}
