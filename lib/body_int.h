/*
 * body_int.h — a message's data on its way out: the body as the host
 * hands it over, chunk by chunk, made canonical SMTP data (canon_int.h) or
 * converted to 7-bit MIME (mime7bit_int.h) for a server without 8BITMIME,
 * and an 8-bit byte refused where the server must not get one.
 *
 * The session decides the mode before MAIL, pulls the chunks through the
 * host's read_body callback into body_chunk(), and lets this module write
 * them to its output.  Its chunk stays from one message to the next
 * until body_end(), which the session calls when it goes idle.
 */
#ifndef SMTPOUT_BODY_INT_H
#define SMTPOUT_BODY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "canon_int.h"

struct buf;
struct mime7;

/* How a message's body goes on the wire, decided before its MAIL. */
enum body_mode {
  BODY_RAW,       /* as it is: the server takes 8-bit data, or needs none */
  BODY_7BIT_ONLY, /* not flagged 8-bit: any 8-bit byte stops the data */
  BODY_CONVERT    /* flagged 8-bit, for a server without 8BITMIME */
};

struct body {
  unsigned char mode; /* enum body_mode */
  struct canon canon;
  struct mime7 *mime; /* the conversion of a BODY_CONVERT body */
  uint8_t *chunk;     /* what the host's next chunk is read into */
};

/* Starts a body in `mode`, as DATA sends it (dot-stuffed, ended by
 * ".\r\n") or, `chunked`, as BDAT does (RFC 3030 2: neither).  Returns 0
 * or SMTPOUT_ERR_NOMEM. */
int body_start(struct body *b, enum body_mode mode, int chunked);

/* Where the next chunk goes, and how much of it may come: a fourth of it
 * when converting, which may write four bytes for one. */
static inline uint8_t *body_chunk(const struct body *b) { return b->chunk; }
size_t body_chunk_size(const struct body *b);

/* The most bytes body_write() writes for a chunk of `n` bytes, the end
 * of data included; and the largest chunk (at most body_chunk_size())
 * whose bound fits `room` bytes, or 0. */
size_t body_write_bound(const struct body *b, size_t n);
size_t body_chunk_fit(const struct body *b, size_t room);

enum body_result {
  BODY_OK = 0,
  BODY_NOMEM = 1,
  /* The chunk contradicts the message's flags: 8-bit data in a message
   * not flagged 8-bit, or where the conversion cannot carry it (*why
   * says which).  Nothing of it was written. */
  BODY_REFUSED = 2
};

/* Writes the `n` bytes read into body_chunk() to `out` as data, and the
 * end of data after them when `eof`. */
enum body_result body_write(struct body *b, size_t n, int eof,
                            struct buf *out, const char **why);

/* Releases what the body held (after its end, or when the connection
 * goes). */
void body_end(struct body *b);
/* The bytes it holds: 0 after body_end(). */
size_t body_held(const struct body *b);

#endif
