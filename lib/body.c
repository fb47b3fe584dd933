/*
 * body.c — see body_int.h.
 */
#include <stdlib.h>

#include "body_int.h"
#include "buf_int.h"
#include "mime7bit_int.h"
#include "smtpout/common.h"

/* The body is pulled from the host in chunks of this size. */
#define BODY_CHUNK (16 * 1024)

int body_start(struct body *b, enum body_mode mode, int chunked)
{
  b->mode = (unsigned char)mode;
  if (b->chunk == NULL && (b->chunk = malloc(BODY_CHUNK)) == NULL)
    return SMTPOUT_ERR_NOMEM;
  if (mode == BODY_CONVERT) {
    if (b->mime == NULL && (b->mime = malloc(sizeof(*b->mime))) == NULL)
      return SMTPOUT_ERR_NOMEM;
    mime7_init(b->mime, 0);
    b->mime->chunked = (unsigned char)(chunked != 0);
  }
  canon_init(&b->canon);
  if (chunked)
    canon_set_chunked(&b->canon);
  return 0;
}

size_t body_chunk_size(const struct body *b)
{
  return b->mode == BODY_CONVERT ? BODY_CHUNK / 4 : BODY_CHUNK;
}

size_t body_write_bound(const struct body *b, size_t n)
{
  return b->mode == BODY_CONVERT ? mime7_bound(n) + MIME7_FINISH_MAX
                                 : canon_bound(n) + CANON_FINISH_MAX;
}

size_t body_chunk_fit(const struct body *b, size_t room)
{
  size_t fixed = body_write_bound(b, 0);
  if (room <= fixed)
    return 0;
  /* The bound is linear: 4n + fixed converting, 2n + fixed else. */
  size_t n = (room - fixed) / (b->mode == BODY_CONVERT ? 4 : 2);
  size_t max = body_chunk_size(b);
  return n < max ? n : max;
}

enum body_result body_write(struct body *b, size_t n, int eof,
                            struct buf *out, const char **why)
{
  int convert = b->mode == BODY_CONVERT;
  if (b->mode == BODY_7BIT_ONLY && mime7_has_8bit(b->chunk, n)) {
    *why = "8-bit data in a message not flagged 8BITMIME";
    return BODY_REFUSED;
  }
  uint8_t *o = buf_reserve(out, body_write_bound(b, n));
  if (o == NULL)
    return BODY_NOMEM;
  size_t k;
  if (convert) {
    k = mime7_encode(b->mime, b->chunk, n, o);
    if (eof)
      k += mime7_finish(b->mime, o + k);
    if (b->mime->error != MIME7_OK) {
      *why = mime7_error_text(b->mime->error);
      return BODY_REFUSED; /* nothing of this chunk is committed */
    }
  } else {
    k = canon_encode(&b->canon, b->chunk, n, o);
    if (eof)
      k += canon_finish(&b->canon, o + k);
  }
  buf_commit(out, k);
  return BODY_OK;
}

void body_end(struct body *b)
{
  free(b->chunk);
  b->chunk = NULL;
  free(b->mime);
  b->mime = NULL;
}

size_t body_held(const struct body *b)
{
  return (b->chunk ? BODY_CHUNK : 0) + (b->mime ? sizeof(*b->mime) : 0);
}
