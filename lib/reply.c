/*
 * reply.c — see reply_int.h.
 */
#include <string.h>
#include <strings.h>

#include "reply_int.h"
#include "smtpout/session.h"

void reply_parser_init(struct reply_parser *p)
{
  p->line_len = 0;
  p->in_reply = 0;
  p->error = NULL;
  memset(&p->reply, 0, sizeof(p->reply));
}

int reply_parser_busy(const struct reply_parser *p)
{
  int partial = p->line_len > 0 && p->line[p->line_len - 1] != '\n';
  return partial || p->in_reply;
}

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

/*
 * Parses an RFC 3463 enhanced status code at the start of `t` whose class
 * must equal the reply's first digit (a "450 5.7.1" reply is a 4xx reply:
 * the code decides, RFC 5321 4.2, and a mismatched enhanced code is
 * dropped).  Returns its length including the following space, or 0.
 */
static size_t parse_enhanced(const uint8_t *t, size_t n, int code,
                             char out[12])
{
  size_t i = 0;
  if (n < 5 || t[0] != (uint8_t)('0' + code / 100) || t[1] != '.')
    return 0;
  i = 2;
  size_t d = 0;
  while (i < n && is_digit(t[i]) && d < 3) {
    i++;
    d++;
  }
  if (d == 0 || i >= n || t[i] != '.')
    return 0;
  i++;
  d = 0;
  while (i < n && is_digit(t[i]) && d < 3) {
    i++;
    d++;
  }
  if (d == 0 || (i < n && t[i] != ' '))
    return 0;
  memcpy(out, t, i);
  out[i] = '\0';
  return i < n ? i + 1 : i;
}

/* Appends text to the stored reply text as printable ASCII, truncating. */
static void append_text(struct reply *r, const uint8_t *t, size_t n)
{
  if (r->text_len > 0 && r->text_len < REPLY_TEXT_MAX && n > 0)
    r->text[r->text_len++] = ' ';
  for (size_t i = 0; i < n && r->text_len < REPLY_TEXT_MAX; i++) {
    uint8_t c = t[i];
    r->text[r->text_len++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  r->text[r->text_len] = '\0';
}

static enum reply_event fail(struct reply_parser *p, const char *why)
{
  p->error = why;
  p->line_len = 0;
  p->in_reply = 0;
  return REPLY_ERROR;
}

/* Interprets the complete line in p->line (CRLF already stripped). */
static enum reply_event parse_line(struct reply_parser *p)
{
  const uint8_t *l = p->line;
  size_t n = p->line_len;

  /* Reply-code = %x32-35 %x30-35 %x30-39 (RFC 5321 4.2); a second digit
   * above 5 is tolerated, anything else ("600", "099", "25O") is not. */
  if (n < 3 || l[0] < '2' || l[0] > '5' || !is_digit(l[1]) || !is_digit(l[2]))
    return fail(p, "malformed reply code");
  if (n > 3 && l[3] != ' ' && l[3] != '-')
    return fail(p, "malformed reply line");
  int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
  int last = (n == 3 || l[3] == ' ');

  struct reply *r = &p->reply;
  if (!p->in_reply) {
    memset(r, 0, sizeof(*r));
    r->code = code;
  } else if (code != r->code) {
    /* RFC 5321 4.2.1: every line of a multi-line reply has the same
     * code; disagreement means we no longer know what was answered. */
    return fail(p, "multi-line reply with disagreeing codes");
  }
  if (++r->nlines > REPLY_MAX_LINES)
    return fail(p, "multi-line reply too long");

  const uint8_t *t = n > 4 ? l + 4 : l + n;
  size_t tn = n > 4 ? n - 4 : 0;
  char enh[12];
  size_t skip = parse_enhanced(t, tn, code, enh);
  if (skip > 0 && r->nlines == 1)
    memcpy(r->enhanced, enh, sizeof(enh));
  append_text(r, t + skip, tn - skip);

  if (last) {
    p->in_reply = 0;
    return REPLY_COMPLETE;
  }
  p->in_reply = 1;
  return REPLY_LINE;
}

enum reply_event reply_parse(struct reply_parser *p, const uint8_t *data,
                             size_t len, size_t *consumed)
{
  /* A new line starts after the previous one was reported. */
  if (p->line_len > 0 && p->line[p->line_len - 1] == '\n')
    p->line_len = 0;

  const uint8_t *nl = memchr(data, '\n', len);
  size_t take = nl ? (size_t)(nl - data) + 1 : len;
  if (p->line_len + take > REPLY_MAX_LINE) {
    *consumed = take;
    return fail(p, "reply line too long");
  }
  memcpy(p->line + p->line_len, data, take);
  p->line_len += take;
  *consumed = take;
  if (nl == NULL)
    return REPLY_MORE;

  /* Strip LF and an optional CR before it (bare LF is tolerated). */
  size_t keep = p->line_len - 1;
  if (keep > 0 && p->line[keep - 1] == '\r')
    keep--;
  size_t saved = p->line_len;
  p->line_len = keep;
  enum reply_event ev = parse_line(p);
  if (ev != REPLY_ERROR)
    p->line_len = saved; /* keeps the '\n' as the "line reported" mark */
  return ev;
}

const uint8_t *reply_line_raw(const struct reply_parser *p, size_t *len)
{
  size_t n = p->line_len;
  if (n > 0 && p->line[n - 1] == '\n')
    n--;
  if (n > 0 && p->line[n - 1] == '\r')
    n--;
  *len = n;
  return p->line;
}

const uint8_t *reply_line_text(const struct reply_parser *p, size_t *len)
{
  size_t n;
  const uint8_t *l = reply_line_raw(p, &n);
  if (n <= 4) {
    *len = 0;
    return l + n;
  }
  *len = n - 4;
  return l + 4;
}

uint32_t reply_ehlo_keyword(const uint8_t *t, size_t n, uint64_t *size)
{
  static const struct {
    const char *kw;
    uint32_t cap;
  } kws[] = {
    {"PIPELINING", SMTPOUT_CAP_PIPELINING},
    {"SIZE", SMTPOUT_CAP_SIZE},
    {"8BITMIME", SMTPOUT_CAP_8BITMIME},
    {"SMTPUTF8", SMTPOUT_CAP_SMTPUTF8},
    {"ENHANCEDSTATUSCODES", SMTPOUT_CAP_ENHANCEDSTATUSCODES},
    {"STARTTLS", SMTPOUT_CAP_STARTTLS},
    {"CHUNKING", SMTPOUT_CAP_CHUNKING},
    {"DSN", SMTPOUT_CAP_DSN},
    {"AUTH", SMTPOUT_CAP_AUTH},
    {"REQUIRETLS", SMTPOUT_CAP_REQUIRETLS},
  };
  size_t kl = 0;
  while (kl < n && t[kl] != ' ' && t[kl] != '=')
    kl++;
  for (size_t i = 0; i < sizeof(kws) / sizeof(kws[0]); i++) {
    if (strlen(kws[i].kw) != kl || strncasecmp((const char *)t, kws[i].kw, kl))
      continue;
    if (kws[i].cap == SMTPOUT_CAP_SIZE && kl < n) {
      /* "SIZE 35882577"; digits past what 64 bits hold are ignored. */
      uint64_t v = 0;
      for (size_t j = kl + 1; j < n && t[j] >= '0' && t[j] <= '9'; j++) {
        if (v > (UINT64_MAX - 9) / 10)
          break;
        v = v * 10 + (uint64_t)(t[j] - '0');
      }
      *size = v;
    }
    return kws[i].cap;
  }
  return 0;
}
