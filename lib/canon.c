/*
 * canon.c — see canon_int.h.
 */
#include <string.h>

#include "canon_int.h"

void canon_init(struct canon *c)
{
  c->at_bol = 1;
  c->pending_cr = 0;
  c->chunked = 0;
}

/* Finds the first CR or LF in [p, end), or end. */
static const uint8_t *find_eol(const uint8_t *p, const uint8_t *end)
{
  const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
  const uint8_t *stop = lf ? lf : end;
  const uint8_t *cr = memchr(p, '\r', (size_t)(stop - p));
  return cr ? cr : stop;
}

/* Writes `k` bytes at *po and moves it on; nothing when counting (po
 * NULL). */
static void emit(uint8_t **po, const void *bytes, size_t k)
{
  if (po) {
    memcpy(*po, bytes, k);
    *po += k;
  }
}

/*
 * The one walk of canon_encode() and canon_count(): turns `n` bytes into
 * canonical data, written at *po (moved past them) unless po is NULL, and
 * returns their size on the wire as RFC 1870 counts it (every line end a
 * CRLF, the transparency dots not counted).
 */
/*
 * The usual body, whole lines ending in CRLF or in a bare LF: from `p`
 * (no CR pending), lines are taken while each is whole and has no other
 * CR and, at the start of a line, no leading dot.  CRLF lines stay as they
 * are and are copied as one run; a bare LF becomes CRLF.  Returns where it
 * stopped: `end`, or the first byte the byte-by-byte walk must see.
 */
static const uint8_t *whole_lines(struct canon *c, const uint8_t *p,
                                  const uint8_t *end, uint8_t **po,
                                  uint64_t *total)
{
  const uint8_t *run = p;
  while (p < end && !(c->at_bol && *p == '.')) {
    const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
    if (lf == NULL)
      break;
    const uint8_t *cr = memchr(p, '\r', (size_t)(lf - p));
    if (cr == NULL) {
      emit(po, run, (size_t)(lf - run));
      emit(po, "\r\n", 2);
      *total += (uint64_t)(lf - run) + 2;
      run = lf + 1;
    } else if (cr + 1 != lf) {
      break; /* a bare CR in the line */
    }
    p = lf + 1;
    c->at_bol = 1;
  }
  emit(po, run, (size_t)(p - run));
  *total += (uint64_t)(p - run);
  return p;
}

static uint64_t walk(struct canon *c, const uint8_t *p, size_t n, uint8_t **po)
{
  const uint8_t *end = p + n;
  uint64_t total = 0;

  while (p < end) {
    if (!c->pending_cr && (p = whole_lines(c, p, end, po, &total)) == end)
      break;
    if (c->pending_cr) {
      /* The CR ends a line whether or not an LF follows it. */
      emit(po, "\r\n", 2);
      total += 2;
      c->pending_cr = 0;
      c->at_bol = 1;
      if (*p == '\n') {
        p++;
        continue;
      }
    }
    if (*p == '\r') {
      c->pending_cr = 1;
      p++;
      continue;
    }
    if (*p == '\n') {
      emit(po, "\r\n", 2);
      total += 2;
      c->at_bol = 1;
      p++;
      continue;
    }
    /* A run of ordinary bytes up to the next CR or LF. */
    if (c->at_bol && *p == '.' && !c->chunked)
      emit(po, ".", 1);
    const uint8_t *stop = find_eol(p, end);
    emit(po, p, (size_t)(stop - p));
    total += (uint64_t)(stop - p);
    p = stop;
    c->at_bol = 0;
  }
  return total;
}

/* Ends the last line: a pending CR, or a CRLF a last line lacks.
 * Returns the bytes written (or counted). */
static uint64_t end_line(struct canon *c, uint8_t **po)
{
  uint64_t total = 0;
  if (c->pending_cr) {
    emit(po, "\r\n", 2);
    total += 2;
    c->pending_cr = 0;
    c->at_bol = 1;
  }
  if (!c->at_bol) {
    emit(po, "\r\n", 2);
    total += 2;
    c->at_bol = 1;
  }
  return total;
}

size_t canon_encode(struct canon *c, const uint8_t *in, size_t n,
                    uint8_t *out)
{
  uint8_t *o = out;
  walk(c, in, n, &o);
  return (size_t)(o - out);
}

size_t canon_finish(struct canon *c, uint8_t *out)
{
  uint8_t *o = out;
  end_line(c, &o);
  if (!c->chunked)
    emit(&o, ".\r\n", 3);
  return (size_t)(o - out);
}

uint64_t canon_count(struct canon *c, const uint8_t *in, size_t n)
{
  return walk(c, in, n, NULL);
}

uint64_t canon_count_finish(struct canon *c) { return end_line(c, NULL); }
