/*
 * buf.c — see buf_int.h.
 */
#include <stdlib.h>
#include <string.h>

#include "buf_int.h"
#include "smtpout/common.h"

void buf_free(struct buf *b)
{
  free(b->data);
  b->data = NULL;
  b->start = b->end = b->cap = 0;
}

uint8_t *buf_reserve(struct buf *b, size_t n)
{
  if (b->cap - b->end >= n)
    return b->data + b->end;
  size_t live = b->end - b->start;
  /* Reclaim the consumed prefix before growing. */
  if (b->start > 0 && b->cap - live >= n) {
    memmove(b->data, b->data + b->start, live);
    b->start = 0;
    b->end = live;
    return b->data + b->end;
  }
  size_t want = live + n;
  size_t cap = b->cap ? b->cap : 512;
  while (cap < want) {
    if (cap > SIZE_MAX / 2)
      return NULL;
    cap *= 2;
  }
  uint8_t *d = malloc(cap);
  if (d == NULL)
    return NULL;
  if (live > 0)
    memcpy(d, b->data + b->start, live);
  free(b->data);
  b->data = d;
  b->cap = cap;
  b->start = 0;
  b->end = live;
  return b->data + b->end;
}

int buf_append(struct buf *b, const void *data, size_t n)
{
  uint8_t *p = buf_reserve(b, n);
  if (p == NULL)
    return SMTPOUT_ERR_NOMEM;
  if (n > 0)
    memcpy(p, data, n);
  b->end += n;
  return 0;
}

void buf_consume(struct buf *b, size_t n)
{
  b->start += n;
  if (b->start >= b->end)
    b->start = b->end = 0;
}

void buf_clear(struct buf *b) { b->start = b->end = 0; }

void buf_trim(struct buf *b, size_t keep)
{
  if (b->start == b->end && b->cap > keep)
    buf_free(b);
}
