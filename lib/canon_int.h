/*
 * canon_int.h — message data on the wire (RFC 5321 4.1.4, 4.5.2).
 *
 * Turns a raw body, delivered in chunks of any size, into canonical SMTP
 * data: every line ends in CRLF (bare LF and bare CR become CRLF), a line
 * starting with '.' gets a second '.', and the data ends with exactly one
 * CRLF.CRLF.  Because every CR and every LF is rewritten into a CRLF pair,
 * no body can contain "<CRLF>.<CRLF>" before the real end, nor the
 * "<LF>.<LF>" / "<CR>.<CR>" variants that SMTP smuggling relies on.
 */
#ifndef SMTPOUT_CANON_INT_H
#define SMTPOUT_CANON_INT_H

#include <stddef.h>
#include <stdint.h>

struct canon {
  unsigned char at_bol;     /* the next byte starts a line */
  unsigned char pending_cr; /* a CR was seen; its LF may follow */
  /* BDAT data (RFC 3030 2): the length of each chunk says where the data
   * ends, so no dot is doubled and no ".\r\n" ends it. */
  unsigned char chunked;
};

/* Starts a body as DATA sends it (dot-stuffed, ended by ".\r\n");
 * canon_set_chunked() then makes it BDAT's. */
void canon_init(struct canon *c);
static inline void canon_set_chunked(struct canon *c) { c->chunked = 1; }

/* The most bytes canon_encode() can write for `n` input bytes. */
static inline size_t canon_bound(size_t n) { return 2 * n + 2; }

/* Encodes `n` bytes into `out` (at least canon_bound(n) bytes); returns
 * the number written. */
size_t canon_encode(struct canon *c, const uint8_t *in, size_t n,
                    uint8_t *out);

/* Ends the data: a pending CR, a final CRLF if the last line lacks one,
 * and ".\r\n" (not for chunked data).  `out` needs CANON_FINISH_MAX
 * bytes. */
#define CANON_FINISH_MAX 7
size_t canon_finish(struct canon *c, uint8_t *out);

/* The size of the message on the wire as RFC 1870 3 defines it: the
 * octets canon_encode() writes for `n` input bytes, CRLFs included, the
 * dots it doubles not (the server removes them).  canon_count_finish()
 * adds what canon_finish() writes before the final ".\r\n". */
uint64_t canon_count(struct canon *c, const uint8_t *in, size_t n);
uint64_t canon_count_finish(struct canon *c);

#endif
