/*
 * reply.c — see reply_int.h.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "reply_int.h"
#include "smtpout/session.h"

/* The text of a parser that has none: never written to. */
static char no_text[1];

void reply_parser_init(struct reply_parser *p)
{
  p->partial = NULL;
  p->partial_len = 0;
  p->line = NULL;
  p->line_len = 0;
  p->in_reply = 0;
  p->error = NULL;
  memset(&p->reply, 0, sizeof(p->reply));
  p->reply.text = no_text;
}

void reply_parser_release(struct reply_parser *p)
{
  /* The line last reported may lie in the buffer. */
  if (p->line == p->partial) {
    p->line = NULL;
    p->line_len = 0;
  }
  free(p->partial);
  p->partial = NULL;
  p->partial_len = 0;
  if (p->reply.text != no_text)
    free(p->reply.text);
  p->reply.text = no_text;
  p->reply.text_len = 0;
}

int reply_parser_busy(const struct reply_parser *p)
{
  return p->partial_len > 0 || p->in_reply;
}

size_t reply_parser_held(const struct reply_parser *p)
{
  return (p->partial ? REPLY_MAX_LINE : 0) +
         (p->reply.text != no_text ? REPLY_TEXT_MAX + 1 : 0);
}

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

/*
 * Parses an RFC 3463 enhanced status code at the start of `t` whose class
 * must equal the reply's first digit (a "450 5.7.1" reply is a 4xx reply:
 * the code decides, RFC 5321 4.2, and a mismatched enhanced code is
 * dropped).  Returns its length including the following space, or 0;
 * writes it, terminated, at `out` unless `out` is NULL.
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
  if (out) {
    memcpy(out, t, i);
    out[i] = '\0';
  }
  return i < n ? i + 1 : i;
}

/* Replaces each byte of out[0..n) outside 0x20..0x7e by '?'. */
static void printable_bytes(char *out, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if ((uint8_t)(out[i] - 0x20) > 0x7e - 0x20)
      out[i] = '?';
}

/* Whether the 8 bytes at `p` all lie in 0x20..0x7e: a byte below 0x20
 * borrows into its high bit when 0x20 is taken from it, one above 0x7e has
 * or gets its high bit when 1 is added (the "hasless" and "hasmore" tests
 * of Bit Twiddling Hacks; exact as a yes or no). */
static int printable_word(const char *p)
{
  const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
  uint64_t x;
  memcpy(&x, p, sizeof(x));
  return ((((x - ones * 0x20) & ~x) | ((x + ones) | x)) & high) == 0;
}

/* Appends text to the stored reply text as printable ASCII, truncating. */
static void append_text(struct reply *r, const uint8_t *t, size_t n)
{
  if (r->text_len > 0 && r->text_len < REPLY_TEXT_MAX && n > 0)
    r->text[r->text_len++] = ' ';
  if (n > REPLY_TEXT_MAX - r->text_len)
    n = REPLY_TEXT_MAX - r->text_len;
  char *out = r->text + r->text_len;
  memcpy(out, t, n);
  /* Eight bytes at a time: replies are text, checked on every reply. */
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    if (!printable_word(out + i))
      printable_bytes(out + i, 8);
  printable_bytes(out + i, n - i);
  r->text_len += n;
  r->text[r->text_len] = '\0';
}

static enum reply_event fail(struct reply_parser *p, const char *why)
{
  p->error = why;
  p->partial_len = 0;
  p->line = NULL;
  p->line_len = 0;
  p->in_reply = 0;
  return REPLY_ERROR;
}

/* Interprets the complete line `l` (CRLF already stripped), and makes it
 * the line last reported. */
static enum reply_event parse_line(struct reply_parser *p, const uint8_t *l,
                                   size_t n)
{
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
    /* A new reply: its fields are reset, not the whole text buffer. */
    r->code = code;
    r->enhanced[0] = '\0';
    r->text[0] = '\0';
    r->text_len = 0;
    r->nlines = 0;
  } else if (code != r->code) {
    /* RFC 5321 4.2.1: every line of a multi-line reply has the same
     * code; disagreement means we no longer know what was answered. */
    return fail(p, "multi-line reply with disagreeing codes");
  }
  if (++r->nlines > REPLY_MAX_LINES)
    return fail(p, "multi-line reply too long");

  const uint8_t *t = n > 4 ? l + 4 : l + n;
  size_t tn = n > 4 ? n - 4 : 0;
  /* The first line's code is the reply's; a later line's is skipped. */
  size_t skip = parse_enhanced(t, tn, code,
                               r->nlines == 1 ? r->enhanced : NULL);
  append_text(r, t + skip, tn - skip);

  p->line = l;
  p->line_len = n;
  if (last) {
    p->in_reply = 0;
    return REPLY_COMPLETE;
  }
  p->in_reply = 1;
  return REPLY_LINE;
}

/* The length of line `l` of `n` bytes, its LF included, without its line
 * end: LF, or CRLF (a bare LF is tolerated). */
static size_t strip_eol(const uint8_t *l, size_t n)
{
  n--;
  if (n > 0 && l[n - 1] == '\r')
    n--;
  return n;
}

enum reply_event reply_parse(struct reply_parser *p, const uint8_t *data,
                             size_t len, size_t *consumed)
{
  if (p->reply.text == no_text) {
    char *t = malloc(REPLY_TEXT_MAX + 1);
    if (t == NULL) {
      *consumed = 0;
      return REPLY_NOMEM;
    }
    t[0] = '\0';
    p->reply.text = t;
  }
  const uint8_t *nl = memchr(data, '\n', len);
  size_t take = nl ? (size_t)(nl - data) + 1 : len;
  *consumed = take;
  if (p->partial_len + take > REPLY_MAX_LINE)
    return fail(p, "reply line too long");
  /* The usual case: a whole line in this input, read where it lies. */
  if (nl != NULL && p->partial_len == 0)
    return parse_line(p, data, strip_eol(data, take));
  /* A line split across inputs is assembled in a buffer of its own. */
  if (p->partial == NULL && (p->partial = malloc(REPLY_MAX_LINE)) == NULL) {
    *consumed = 0;
    return REPLY_NOMEM;
  }
  if (p->line == p->partial) {
    p->line = NULL; /* about to be overwritten */
    p->line_len = 0;
  }
  memcpy(p->partial + p->partial_len, data, take);
  p->partial_len += take;
  if (nl == NULL)
    return REPLY_MORE;
  size_t n = p->partial_len;
  p->partial_len = 0;
  return parse_line(p, p->partial, strip_eol(p->partial, n));
}

const uint8_t *reply_line_raw(const struct reply_parser *p, size_t *len)
{
  *len = p->line_len;
  return p->line ? p->line : (const uint8_t *)"";
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
