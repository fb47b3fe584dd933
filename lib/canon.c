/*
 * canon.c — see canon_int.h.
 */
#include <string.h>

#include "canon_int.h"

void canon_init(struct canon *c)
{
  c->at_bol = 1;
  c->pending_cr = 0;
}

/* Finds the first CR or LF in [p, end), or end. */
static const uint8_t *find_eol(const uint8_t *p, const uint8_t *end)
{
  const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
  const uint8_t *stop = lf ? lf : end;
  const uint8_t *cr = memchr(p, '\r', (size_t)(stop - p));
  return cr ? cr : stop;
}

size_t canon_encode(struct canon *c, const uint8_t *in, size_t n,
                    uint8_t *out)
{
  const uint8_t *p = in, *end = in + n;
  uint8_t *o = out;

  while (p < end) {
    if (c->pending_cr) {
      /* The CR ends a line whether or not an LF follows it. */
      *o++ = '\r';
      *o++ = '\n';
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
      *o++ = '\r';
      *o++ = '\n';
      c->at_bol = 1;
      p++;
      continue;
    }
    /* A run of ordinary bytes up to the next CR or LF. */
    if (c->at_bol && *p == '.')
      *o++ = '.';
    const uint8_t *stop = find_eol(p, end);
    size_t run = (size_t)(stop - p);
    memcpy(o, p, run);
    o += run;
    p = stop;
    c->at_bol = 0;
  }
  return (size_t)(o - out);
}

size_t canon_finish(struct canon *c, uint8_t *out)
{
  uint8_t *o = out;
  if (c->pending_cr) {
    *o++ = '\r';
    *o++ = '\n';
    c->pending_cr = 0;
    c->at_bol = 1;
  }
  if (!c->at_bol) {
    *o++ = '\r';
    *o++ = '\n';
  }
  memcpy(o, ".\r\n", 3);
  o += 3;
  c->at_bol = 1;
  return (size_t)(o - out);
}

uint64_t canon_count(struct canon *c, const uint8_t *in, size_t n)
{
  const uint8_t *p = in, *end = in + n;
  uint64_t total = 0;

  /* The same walk as canon_encode(), counting instead of copying. */
  while (p < end) {
    if (c->pending_cr) {
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
      total += 2;
      c->at_bol = 1;
      p++;
      continue;
    }
    const uint8_t *stop = find_eol(p, end);
    total += (uint64_t)(stop - p);
    p = stop;
    c->at_bol = 0;
  }
  return total;
}

uint64_t canon_count_finish(struct canon *c)
{
  uint64_t total = 0;
  if (c->pending_cr) {
    total += 2;
    c->pending_cr = 0;
    c->at_bol = 1;
  }
  if (!c->at_bol) {
    total += 2;
    c->at_bol = 1;
  }
  return total;
}
