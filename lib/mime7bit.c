/*
 * mime7bit.c — see mime7bit_int.h.
 *
 * The model is Postfix's one-pass MIME processor (src/global/mime_state.c):
 * the input is cut into lines; a header block is read field by field
 * until an empty line (or a line that is not a header field); at its end
 * the entity's Content-Type and Content-Transfer-Encoding decide how its
 * body is treated; in a body, a delimiter line "--boundary" of any
 * enclosing multipart ends the part.  Where Postfix re-encodes only what claims to
 * be 8-bit and sends the rest as it is, this module refuses 8-bit data it
 * cannot re-encode: a server without 8BITMIME never sees an 8-bit byte.
 *
 * Reading order: output and the two encoders; header fields; the end of a
 * header block, where each entity's treatment is decided; bodies and
 * boundaries; the line assembler and the entry points.
 */
#include <string.h>
#include <strings.h>

#include "mime7bit_int.h"

/* How a line ended.  EOL_EOF: the input ended inside it. */
enum eol { EOL_NONE, EOL_CR, EOL_LF, EOL_CRLF, EOL_EOF };

/* How a body is treated. */
enum region { R_PASS, R_QP, R_B64 };

/* The header field being read. */
enum field { F_NONE, F_OTHER, F_CTYPE, F_CTE };

/* Content types, as far as the conversion cares (RFC 2046). */
enum ctype { CT_TEXT, CT_OTHER, CT_MULTIPART, CT_RFC822, CT_MESSAGE };

/* Content-Transfer-Encoding values (RFC 2045 6.1). */
enum cte {
  CTE_NONE,
  CTE_7BIT,
  CTE_8BIT,
  CTE_BINARY,
  CTE_QP,
  CTE_BASE64,
  CTE_UNKNOWN
};

static void dispatch(struct mime7 *m, const uint8_t *p, size_t n, int first,
                     int eol);

static void fail(struct mime7 *m, int error)
{
  if (m->error == MIME7_OK)
    m->error = error;
}

int mime7_has_8bit(const uint8_t *p, size_t n)
{
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    if (w & 0x8080808080808080u)
      return 1;
  }
  for (; i < n; i++)
    if (p[i] & 0x80)
      return 1;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Output                                                               */

static void out(struct mime7 *m, const void *p, size_t n)
{
  if (m->dry || n == 0)
    return;
  /* RFC 5321 4.5.2: a line that starts with '.' gets another one (not
   * in BDAT data, RFC 3030 2). */
  if (m->at_bol && *(const uint8_t *)p == '.' && !m->chunked)
    *m->o++ = '.';
  memcpy(m->o, p, n);
  m->o += n;
  m->at_bol = 0;
}

static void out_eol(struct mime7 *m)
{
  if (m->dry)
    return;
  *m->o++ = '\r';
  *m->o++ = '\n';
  m->at_bol = 1;
}

static void out_line(struct mime7 *m, const char *s)
{
  out(m, s, strlen(s));
  out_eol(m);
}

/* ------------------------------------------------------------------ */
/* Quoted-printable (RFC 2045 6.7)                                      */

/* Characters on an encoded line before a soft break's '=': at most 76 in
 * all, rule (5). */
#define QP_COLS 75

static const char hex[] = "0123456789ABCDEF";

static void qp_unit(struct mime7 *m, const uint8_t *u, size_t w)
{
  if (m->qp_col + w > QP_COLS) {
    out(m, "=", 1);
    out_eol(m);
    m->qp_col = 0;
  }
  out(m, u, w);
  m->qp_col += w;
}

static void qp_escape(struct mime7 *m, uint8_t c)
{
  uint8_t u[3] = {'=', (uint8_t)hex[c >> 4], (uint8_t)hex[c & 15]};
  qp_unit(m, u, 3);
}

static void qp_piece(struct mime7 *m, const uint8_t *p, size_t n, int eol)
{
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (m->qp_ws) {
      uint8_t ws = m->qp_ws;
      m->qp_ws = 0;
      qp_unit(m, &ws, 1);
    }
    if (c == ' ' || c == '\t')
      m->qp_ws = c; /* literal, unless the line ends after it */
    else if (c >= 33 && c <= 126 && c != '=')
      qp_unit(m, &c, 1);
    else
      qp_escape(m, c);
  }
  if (eol != EOL_NONE) {
    /* Rule (3): white space ending a line is encoded, or a gateway may
     * strip it. */
    if (m->qp_ws) {
      qp_escape(m, m->qp_ws);
      m->qp_ws = 0;
    }
    out_eol(m); /* a hard line break: the text's own */
    m->qp_col = 0;
  }
}

/* ------------------------------------------------------------------ */
/* Base64 (RFC 2045 6.8)                                                */

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Emits the k (1..3) bytes in b64_acc as four characters, in lines of 76. */
static void b64_quad(struct mime7 *m, int k)
{
  const uint8_t *a = m->b64_acc;
  uint8_t b = k > 1 ? a[1] : 0, c = k > 2 ? a[2] : 0;
  uint8_t q[4] = {(uint8_t)b64[a[0] >> 2],
                  (uint8_t)b64[((a[0] & 3) << 4) | (b >> 4)],
                  (uint8_t)(k > 1 ? b64[((b & 15) << 2) | (c >> 6)] : '='),
                  (uint8_t)(k > 2 ? b64[c & 63] : '=')};
  if (m->b64_col + 4 > 76) {
    out_eol(m);
    m->b64_col = 0;
  }
  out(m, q, 4);
  m->b64_col += 4;
}

static void b64_bytes(struct mime7 *m, const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    m->b64_acc[m->b64_n++] = p[i];
    if (m->b64_n == 3) {
      b64_quad(m, 3);
      m->b64_n = 0;
    }
  }
}

/* The line end held back is content after all: a line follows it in the
 * same part, or the input ends.  A binary part keeps the bytes it had;
 * any other has CRLF, as its 8bit text would have had on the wire. */
static void b64_break(struct mime7 *m)
{
  static const uint8_t crlf[2] = {'\r', '\n'};
  int kind = m->b64_raw ? m->b64_break : EOL_CRLF;
  m->b64_break = EOL_NONE;
  if (kind == EOL_CR)
    b64_bytes(m, crlf, 1);
  else if (kind == EOL_LF)
    b64_bytes(m, crlf + 1, 1);
  else if (kind == EOL_CRLF)
    b64_bytes(m, crlf, 2);
}

static void b64_end(struct mime7 *m)
{
  if (m->b64_n > 0)
    b64_quad(m, m->b64_n);
  m->b64_n = 0;
  if (m->b64_col > 0)
    out_eol(m);
  m->b64_col = 0;
}

/* ------------------------------------------------------------------ */
/* Header fields                                                        */

/* The length of "name:" (or the obsolete "name :") starting a line, or 0
 * when the line does not start a header field (RFC 5322 2.2: printable
 * ASCII but ':').  *namelen gets the name's own length. */
static size_t field_name(const uint8_t *p, size_t n, size_t *namelen)
{
  size_t i = 0;
  while (i < n && p[i] >= 33 && p[i] <= 126 && p[i] != ':')
    i++;
  *namelen = i;
  if (i == 0)
    return 0;
  while (i < n && (p[i] == ' ' || p[i] == '\t'))
    i++;
  return i < n && p[i] == ':' ? i + 1 : 0;
}

static int name_is(const void *p, size_t n, const char *name)
{
  return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

/* Writes the held Content-Transfer-Encoding field as it came (its lines
 * end in CRLF; a piece of a line still being read does not). */
static void hold_flush(struct mime7 *m)
{
  const uint8_t *p = m->hold, *end = m->hold + m->hold_len;
  while (p < end) {
    const uint8_t *cr = memchr(p, '\r', (size_t)(end - p));
    if (cr == NULL) {
      out(m, p, (size_t)(end - p));
      break;
    }
    out(m, p, (size_t)(cr - p));
    out_eol(m);
    p = cr + 2;
  }
  m->hold_len = 0;
}

static void hold_piece(struct mime7 *m, const uint8_t *p, size_t n, int eol)
{
  size_t need = n + (eol != EOL_NONE ? 2 : 0);
  if (m->hold_len + need > sizeof(m->hold)) {
    /* Too long to be an encoding name: the entity is left as it is. */
    hold_flush(m);
    m->ambiguous = 1;
    m->field = F_OTHER;
    out(m, p, n);
    if (eol != EOL_NONE)
      out_eol(m);
    return;
  }
  memcpy(m->hold + m->hold_len, p, n);
  m->hold_len += n;
  if (eol != EOL_NONE) {
    memcpy(m->hold + m->hold_len, "\r\n", 2);
    m->hold_len += 2;
  }
}

static void field_begin(struct mime7 *m, const uint8_t *name, size_t len)
{
  m->field = F_OTHER;
  if (name_is(name, len, "Content-Type")) {
    /* Two of them: receivers may pick either, so neither is trusted. */
    if (m->seen_ctype)
      m->ambiguous = 1;
    else
      m->field = F_CTYPE;
    m->seen_ctype = 1;
  } else if (name_is(name, len, "Content-Transfer-Encoding")) {
    if (m->seen_cte) {
      hold_flush(m);
      m->ambiguous = 1;
    } else {
      m->field = F_CTE;
    }
    m->seen_cte = 1;
  } else if (m->primary && name_is(name, len, "MIME-Version")) {
    m->seen_version = 1;
  }
}

/* RFC 822 comments and white space, folded line ends included. */
static const char *skip_cfws(const char *p, const char *end)
{
  int depth = 0;
  while (p < end) {
    if (*p == '(')
      depth++;
    else if (depth > 0 && *p == ')')
      depth--;
    else if (depth > 0 && *p == '\\' && p + 1 < end)
      p++;
    else if (depth == 0 && *p != ' ' && *p != '\t' && *p != '\r' &&
             *p != '\n')
      break;
    p++;
  }
  return p;
}

/* An RFC 2045 token: printable ASCII but the tspecials. */
static const char *token(const char *p, const char *end, const char **tok,
                         size_t *len)
{
  const char *start = p;
  while (p < end && *p > 32 && *p < 127 && !strchr("()<>@,;:\\\"/[]?=", *p))
    p++;
  *tok = start;
  *len = (size_t)(p - start);
  return p;
}

/* A parameter value (token or quoted-string) into buf; returns the
 * position after it, or NULL when it is malformed.  *len > size means it
 * did not fit. */
static const char *param_value(const char *p, const char *end, char *buf,
                               size_t size, size_t *len)
{
  *len = 0;
  if (p < end && *p == '"') {
    for (p++; p < end && *p != '"'; p++) {
      if (*p == '\\' && p + 1 < end)
        p++;
      if (*len < size)
        buf[*len] = *p;
      (*len)++;
    }
    return p < end ? p + 1 : NULL;
  }
  const char *v;
  p = token(p, end, &v, len);
  if (*len == 0)
    return NULL;
  memcpy(buf, v, *len < size ? *len : size);
  return p;
}

/* Content-Type: type "/" subtype *(";" attribute "=" value) (RFC 2045
 * 5.1).  Only the type, the subtype and the boundary matter.  What
 * cannot be read with certainty makes the entity ambiguous. */
static void parse_ctype(struct mime7 *m)
{
  const char *p = m->ctype_text, *end = p + m->ctype_len;
  const char *colon = memchr(p, ':', m->ctype_len); /* field_name() saw it */
  const char *type, *sub;
  size_t tl, sl;
  if (m->ambiguous)
    return;
  p = token(skip_cfws(colon ? colon + 1 : end, end), end, &type, &tl);
  p = skip_cfws(p, end);
  if (tl == 0 || p == end || *p != '/') {
    m->ambiguous = 1; /* RFC 2045 5.2 would say text/plain; we say no */
    return;
  }
  p = token(skip_cfws(p + 1, end), end, &sub, &sl);
  if (sl == 0) {
    m->ambiguous = 1;
    return;
  }
  m->digest = 0;
  if (name_is(type, tl, "text")) {
    m->ctype = CT_TEXT;
  } else if (name_is(type, tl, "multipart")) {
    m->ctype = CT_MULTIPART;
    m->digest = name_is(sub, sl, "digest");
  } else if (name_is(type, tl, "message")) {
    /* RFC 6532 3.7 lets message/global (and its kin) be encoded like any
     * leaf; RFC 2046 5.2 forbids it for the others. */
    m->ctype = name_is(sub, sl, "rfc822")                 ? CT_RFC822
               : sl >= 6 && strncasecmp(sub, "global", 6) == 0 ? CT_OTHER
                                                         : CT_MESSAGE;
  } else {
    m->ctype = CT_OTHER;
  }
  int seen_boundary = 0;
  for (;;) {
    const char *attr;
    size_t al, vl;
    char value[MIME7_BOUNDARY_MAX];
    p = skip_cfws(p, end);
    if (p == end || *p != ';')
      break;
    p = token(skip_cfws(p + 1, end), end, &attr, &al);
    p = skip_cfws(p, end);
    if (al == 0 || p == end || *p != '=')
      break; /* a trailing ';', or junk: nothing more to learn */
    p = param_value(skip_cfws(p + 1, end), end, value, sizeof(value), &vl);
    if (p == NULL) {
      m->ambiguous = 1;
      return;
    }
    if (!name_is(attr, al, "boundary"))
      continue;
    if (seen_boundary++) {
      m->ambiguous = 1; /* two boundaries: which one is real? */
      return;
    }
    /* One too long to keep is not followed (RFC 2046 5.1.1 says 70). */
    m->boundary_len = vl <= sizeof(m->boundary) ? vl : 0;
    memcpy(m->boundary, value, m->boundary_len);
  }
}

static void parse_cte(struct mime7 *m)
{
  static const struct {
    const char *name;
    unsigned char cte;
  } names[] = {
    {"7bit", CTE_7BIT},   {"8bit", CTE_8BIT},
    {"binary", CTE_BINARY}, {"quoted-printable", CTE_QP},
    {"base64", CTE_BASE64},
  };
  const char *p = (const char *)m->hold, *end = p + m->hold_len;
  const char *colon = memchr(p, ':', m->hold_len); /* field_name() saw it */
  const char *tok;
  size_t len;
  m->cte = CTE_UNKNOWN;
  token(skip_cfws(colon ? colon + 1 : end, end), end, &tok, &len);
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (name_is(tok, len, names[i].name))
      m->cte = names[i].cte;
}

static void field_end(struct mime7 *m)
{
  if (m->field == F_CTYPE)
    parse_ctype(m);
  else if (m->field == F_CTE)
    parse_cte(m);
  m->field = F_NONE;
}

/* ------------------------------------------------------------------ */
/* Entities                                                             */

/* A header block starts: the message's own, a part's after a boundary
 * (digest parts default to message/rfc822, RFC 2046 5.1.5), or a nested
 * message's. */
static void entity_begin(struct mime7 *m, int primary, int digest)
{
  m->in_header = 1;
  m->primary = (unsigned char)primary;
  m->field = F_NONE;
  m->ctype = digest ? CT_RFC822 : CT_TEXT;
  m->digest = 0;
  m->cte = CTE_NONE;
  m->seen_ctype = m->seen_cte = m->seen_version = 0;
  m->ambiguous = 0;
  m->ctype_len = 0;
  m->boundary_len = 0;
  m->hold_len = 0;
}

static void body_begin(struct mime7 *m, int region, int region_error)
{
  m->in_header = 0;
  m->region = (unsigned char)region;
  m->region_error = (unsigned char)region_error;
  m->qp_ws = 0;
  m->qp_col = 0;
  m->b64_raw = 0;
  m->b64_break = EOL_NONE;
  m->b64_n = 0;
  m->b64_col = 0;
}

enum plan { PLAN_PASS, PLAN_MULTIPART, PLAN_NESTED, PLAN_QP, PLAN_B64 };

/*
 * The header block ended (an empty line, or, with `blank` 0, a line that
 * is not a header field).  Decide how the entity's body is treated and
 * write the Content-Transfer-Encoding field that goes with it: at this
 * point the held field is either replaced or written as it came.
 */
static void headers_end(struct mime7 *m, int blank)
{
  int identity = m->cte == CTE_NONE || m->cte == CTE_7BIT ||
                 m->cte == CTE_8BIT || m->cte == CTE_BINARY;
  int eightbit = m->cte == CTE_8BIT || m->cte == CTE_BINARY;
  enum plan plan = PLAN_PASS;
  int error = MIME7_ERR_STRUCTURE;

  if (!m->ambiguous) {
    switch (m->ctype) {
    case CT_MULTIPART:
      /* RFC 2045 6.4: a composite has an identity encoding.  Without a
       * usable boundary its parts cannot be found. */
      if (identity && m->boundary_len > 0 && m->depth < MIME7_DEPTH_MAX)
        plan = PLAN_MULTIPART;
      break;
    case CT_RFC822:
      if (identity)
        plan = PLAN_NESTED;
      break;
    case CT_MESSAGE:
      break; /* message/partial, external-body...: 7bit only */
    default:
      /* A leaf.  Only a part declared 8-bit may hold 8-bit data, except
       * the body of the message itself (see mime7bit_int.h). */
      if (eightbit || (m->primary && (m->cte == CTE_NONE ||
                                      m->cte == CTE_7BIT)))
        plan = m->ctype == CT_TEXT ? PLAN_QP : PLAN_B64;
      else
        error = MIME7_ERR_7BIT_PART;
    }
  }

  const char *cte = plan == PLAN_QP    ? "quoted-printable"
                    : plan == PLAN_B64 ? "base64"
                    : eightbit && plan != PLAN_PASS ? "7bit"
                                                     : NULL;
  if (cte) {
    m->hold_len = 0; /* replaced */
    out(m, "Content-Transfer-Encoding: ", 27);
    out_line(m, cte);
    /* RFC 2045 4: without it the new encoding means nothing. */
    if (m->primary && !m->seen_version &&
        (plan == PLAN_QP || plan == PLAN_B64))
      out_line(m, "MIME-Version: 1.0");
    if (!blank)
      out_eol(m); /* what follows is body, as it was meant to be */
  } else {
    hold_flush(m);
  }
  if (blank)
    out_eol(m);

  switch (plan) {
  case PLAN_MULTIPART: {
    struct mime7_level *l = &m->levels[m->depth++];
    memcpy(l->boundary, m->boundary, m->boundary_len);
    l->len = m->boundary_len;
    l->digest = m->digest;
    body_begin(m, R_PASS, MIME7_ERR_STRUCTURE); /* the preamble */
    break;
  }
  case PLAN_NESTED:
    entity_begin(m, 0, 0);
    break;
  case PLAN_QP:
    body_begin(m, R_QP, MIME7_OK);
    break;
  case PLAN_B64: {
    int raw = m->cte == CTE_BINARY;
    body_begin(m, R_B64, MIME7_OK);
    m->b64_raw = (unsigned char)raw;
    break;
  }
  case PLAN_PASS:
    body_begin(m, R_PASS, error);
    break;
  }
}

static void header_piece(struct mime7 *m, const uint8_t *p, size_t n,
                         int first, int eol)
{
  if (first) {
    size_t namelen;
    if (n == 0) { /* the empty line */
      field_end(m);
      headers_end(m, 1);
      return;
    }
    if ((p[0] == ' ' || p[0] == '\t') && m->field != F_NONE) {
      /* folded: the field goes on */
    } else if (field_name(p, n, &namelen) > 0) {
      field_end(m);
      field_begin(m, p, namelen);
    } else {
      /* Not a header field: the header ended without its empty line, and
       * this line is the body's (as Postfix reads it). */
      field_end(m);
      headers_end(m, 0);
      dispatch(m, p, n, first, eol);
      return;
    }
  }
  if (mime7_has_8bit(p, n)) {
    fail(m, m->primary ? MIME7_ERR_HEADER : MIME7_ERR_PART_HEADER);
    return;
  }
  if (m->field == F_CTE) {
    hold_piece(m, p, n, eol);
    return;
  }
  if (m->field == F_CTYPE) {
    size_t room = sizeof(m->ctype_text) - m->ctype_len;
    if (n > room)
      m->ambiguous = 1; /* its parameters are out of sight */
    memcpy(m->ctype_text + m->ctype_len, p, n < room ? n : room);
    m->ctype_len += n < room ? n : room;
  }
  out(m, p, n);
  if (eol != EOL_NONE)
    out_eol(m);
}

/* ------------------------------------------------------------------ */
/* Bodies                                                               */

static void pass_piece(struct mime7 *m, const uint8_t *p, size_t n, int eol,
                       int error)
{
  if (mime7_has_8bit(p, n)) {
    fail(m, error);
    return;
  }
  out(m, p, n);
  if (eol != EOL_NONE)
    out_eol(m);
}

/* The innermost enclosing multipart whose delimiter the line is, or -1.
 * RFC 2046 5.1.1: "--" boundary, "--" for the last one, then only white
 * space; so "--b10" is not a delimiter of boundary "b1".  (Postfix takes
 * any line starting with "--" boundary; receivers such as Python's email
 * package follow the grammar, and the conversion must split the message
 * where they will.)  Of a line longer than a piece only the first is
 * looked at. */
static int boundary_match(const struct mime7 *m, const uint8_t *p, size_t n)
{
  for (size_t i = m->depth; i-- > 0;) {
    const struct mime7_level *l = &m->levels[i];
    size_t k = 2 + l->len;
    if (n < k || memcmp(p + 2, l->boundary, l->len) != 0)
      continue;
    if (n >= k + 2 && p[k] == '-' && p[k + 1] == '-')
      k += 2;
    while (k < n && (p[k] == ' ' || p[k] == '\t'))
      k++;
    if (k == n)
      return (int)i;
  }
  return -1;
}

/* The current body ends: at a boundary, the line end before it belongs to
 * the delimiter (RFC 2046 5.1.1); at the end of the input, it is content. */
static void region_end(struct mime7 *m, int at_eof)
{
  if (m->region != R_B64)
    return; /* quoted-printable and plain lines are already complete */
  if (at_eof && m->b64_break != EOL_NONE)
    b64_break(m);
  m->b64_break = EOL_NONE;
  b64_end(m);
}

static void boundary_line(struct mime7 *m, int level, const uint8_t *p,
                          size_t n, int eol)
{
  const struct mime7_level *l = &m->levels[level];
  int close = n >= l->len + 4 && p[l->len + 2] == '-' && p[l->len + 3] == '-';
  region_end(m, 0);
  out(m, p, n);
  if (eol != EOL_NONE)
    out_eol(m);
  else
    m->boundary_rest = 1;
  /* A delimiter of an outer multipart also ends the inner ones. */
  m->depth = (size_t)level + 1;
  if (close) {
    m->depth = (size_t)level;
    body_begin(m, R_PASS, MIME7_ERR_STRUCTURE); /* the epilogue */
  } else {
    entity_begin(m, 0, l->digest);
  }
}

static void body_piece(struct mime7 *m, const uint8_t *p, size_t n,
                       int first, int eol)
{
  if (first && m->depth > 0 && n >= 2 && p[0] == '-' && p[1] == '-') {
    int level = boundary_match(m, p, n);
    if (level >= 0) {
      boundary_line(m, level, p, n, eol);
      return;
    }
  }
  switch (m->region) {
  case R_PASS:
    pass_piece(m, p, n, eol, m->region_error);
    break;
  case R_QP:
    if (!m->dry)
      qp_piece(m, p, n, eol);
    break;
  case R_B64:
    if (m->dry)
      break;
    if (first && m->b64_break != EOL_NONE)
      b64_break(m);
    b64_bytes(m, p, n);
    if (eol != EOL_NONE)
      m->b64_break = (unsigned char)eol;
    break;
  }
}

/* ------------------------------------------------------------------ */
/* Lines                                                                */

/* Hands over a piece of a line: the first of its line or not, ending the
 * line (and how) or not. */
static void dispatch(struct mime7 *m, const uint8_t *p, size_t n, int first,
                     int eol)
{
  if (m->error != MIME7_OK)
    return;
  if (m->boundary_rest) {
    pass_piece(m, p, n, eol, MIME7_ERR_STRUCTURE);
    if (eol != EOL_NONE)
      m->boundary_rest = 0;
    return;
  }
  if (m->in_header)
    header_piece(m, p, n, first, eol);
  else
    body_piece(m, p, n, first, eol);
}

static void line_done(struct mime7 *m, int eol)
{
  dispatch(m, m->line, m->line_len, !m->line_cont, eol);
  m->line_len = 0;
  m->line_cont = 0;
}

/* Finds the first CR or LF in [p, end), or end. */
static const uint8_t *find_eol(const uint8_t *p, const uint8_t *end)
{
  const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
  const uint8_t *stop = lf ? lf : end;
  const uint8_t *cr = memchr(p, '\r', (size_t)(stop - p));
  return cr ? cr : stop;
}

void mime7_init(struct mime7 *m, int dry_run)
{
  memset(m, 0, sizeof(*m));
  m->dry = (unsigned char)(dry_run != 0);
  m->chunked = 0;
  m->at_bol = 1;
  entity_begin(m, 1, 0);
}

size_t mime7_encode(struct mime7 *m, const uint8_t *in, size_t n,
                    uint8_t *out)
{
  const uint8_t *p = in, *end = in + n;
  m->o = out;
  while (p < end && m->error == MIME7_OK) {
    if (m->pending_cr) {
      /* Bare CR and CRLF both end a line, as in canon.c. */
      m->pending_cr = 0;
      if (*p == '\n') {
        p++;
        line_done(m, EOL_CRLF);
      } else {
        line_done(m, EOL_CR);
      }
    } else if (*p == '\r') {
      m->pending_cr = 1;
      p++;
    } else if (*p == '\n') {
      p++;
      line_done(m, EOL_LF);
    } else if (m->line_len == sizeof(m->line)) {
      /* A long line goes on in pieces; its first piece is long enough to
       * tell a header field or a boundary. */
      dispatch(m, m->line, m->line_len, !m->line_cont, EOL_NONE);
      m->line_len = 0;
      m->line_cont = 1;
    } else {
      const uint8_t *stop = find_eol(p, end);
      size_t run = (size_t)(stop - p);
      if (run > sizeof(m->line) - m->line_len)
        run = sizeof(m->line) - m->line_len;
      memcpy(m->line + m->line_len, p, run);
      m->line_len += run;
      p += run;
    }
  }
  return m->dry ? 0 : (size_t)(m->o - out);
}

size_t mime7_finish(struct mime7 *m, uint8_t *out)
{
  m->o = out;
  if (m->pending_cr) {
    m->pending_cr = 0;
    line_done(m, EOL_CR);
  } else if (m->line_len > 0 || m->line_cont) {
    line_done(m, EOL_EOF); /* ended like canon.c: with a CRLF */
  }
  if (m->error != MIME7_OK || m->dry)
    return 0;
  if (m->in_header) {
    field_end(m);
    hold_flush(m);
  } else {
    region_end(m, 1);
  }
  /* Every path above ends its line: the data ends here, once. */
  if (!m->chunked) {
    memcpy(m->o, ".\r\n", 3);
    m->o += 3;
  }
  return (size_t)(m->o - out);
}

const char *mime7_error_text(int error)
{
  switch (error) {
  case MIME7_OK: return "no error";
  case MIME7_ERR_HEADER: return "8-bit data in the message header";
  case MIME7_ERR_PART_HEADER: return "8-bit data in a MIME part header";
  case MIME7_ERR_7BIT_PART:
    return "8-bit data in a MIME part declared 7bit, quoted-printable or "
           "base64";
  default:
    return "8-bit data outside the MIME parts a conversion can re-encode";
  }
}
