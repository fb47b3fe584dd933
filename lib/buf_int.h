/*
 * buf_int.h — a growable byte buffer with a read offset.
 *
 * Bytes are appended at the end and consumed from the front; consumed
 * space is reclaimed lazily (memmove when the dead prefix outweighs the
 * live bytes), so a steady producer/consumer pair costs no allocation.
 * Callers bound the size: the buffer itself never refuses to grow except on
 * allocation failure.
 */
#ifndef SMTPOUT_BUF_INT_H
#define SMTPOUT_BUF_INT_H

#include <stddef.h>
#include <stdint.h>

struct buf {
  uint8_t *data;
  size_t start; /* first live byte */
  size_t end;   /* one past the last live byte */
  size_t cap;
};

static inline size_t buf_len(const struct buf *b) { return b->end - b->start; }
static inline const uint8_t *buf_head(const struct buf *b)
{
  /* A buffer that never held anything has no storage: NULL + 0 is
   * undefined behaviour in C, so say NULL (with length 0) directly. */
  return b->data ? b->data + b->start : NULL;
}

void buf_free(struct buf *b);
/* Makes room for `n` more bytes; returns a pointer to them, or NULL. */
uint8_t *buf_reserve(struct buf *b, size_t n);
/* Marks `n` reserved bytes as written. */
static inline void buf_commit(struct buf *b, size_t n) { b->end += n; }
int buf_append(struct buf *b, const void *data, size_t n);
void buf_consume(struct buf *b, size_t n);
void buf_clear(struct buf *b);
/* Releases the storage of an empty buffer whose capacity exceeds `keep`. */
void buf_trim(struct buf *b, size_t keep);

#endif
