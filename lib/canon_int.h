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
};

void canon_init(struct canon *c);

/* The most bytes canon_encode() can write for `n` input bytes. */
static inline size_t canon_bound(size_t n) { return 2 * n + 2; }

/* Encodes `n` bytes into `out` (at least canon_bound(n) bytes); returns
 * the number written. */
size_t canon_encode(struct canon *c, const uint8_t *in, size_t n,
                    uint8_t *out);

/* Ends the data: a pending CR, a final CRLF if the last line lacks one,
 * and ".\r\n".  `out` needs CANON_FINISH_MAX bytes. */
#define CANON_FINISH_MAX 7
size_t canon_finish(struct canon *c, uint8_t *out);

/* The size of the message on the wire as RFC 1870 3 defines it: the
 * octets canon_encode() writes for `n` input bytes, CRLFs included, the
 * dots it doubles not (the server removes them).  canon_count_finish()
 * adds what canon_finish() writes before the final ".\r\n". */
uint64_t canon_count(struct canon *c, const uint8_t *in, size_t n);
uint64_t canon_count_finish(struct canon *c);

#endif
