/*
 * mime7bit_int.h — 8-bit message content made 7-bit, for a server that does
 * not offer 8BITMIME (RFC 6152 3: a client sends 8-bit data only to a
 * server that offers it).
 *
 * Like canon_int.h, it turns a raw body delivered in chunks of any size into
 * SMTP data (CRLF line ends, dot-stuffed, ended by exactly one CRLF.CRLF),
 * and on the way follows the MIME structure (RFC 2045, 2046) the way
 * Postfix's mime_state.c does:
 *
 *   - a leaf part declared 8bit or binary is re-encoded, quoted-printable
 *     for a text type, base64 for any other (a binary part keeps its own
 *     line ends, byte for byte), and its Content-Transfer-Encoding header
 *     is replaced;
 *   - a multipart or message/rfc822 entity declared 8bit or binary is
 *     relabelled 7bit, and its parts are followed;
 *   - the top-level body of a message that is not multipart is re-encoded
 *     whatever it declares: the host flagged the message 8-bit, and this is
 *     where a message without MIME headers carries its 8-bit text; a
 *     MIME-Version header is added when the message has none;
 *   - everything else passes unchanged, and must be 7-bit already.
 *
 * Decoding a re-encoded part gives what an 8BITMIME server would have
 * received: the canonical (CRLF) text, or a binary part's original bytes.
 *
 * 8-bit data where nothing can carry it (a header field, a part declared
 * 7bit, quoted-printable or base64, a preamble or epilogue, a boundary
 * line, a structure it does not follow) is an error, and nothing of the
 * offending piece is written: the caller must not end the data.  Errors
 * come only from 8-bit bytes, so a 7-bit message always converts.
 *
 * Memory is fixed: a line is handled in pieces of MIME7_LINE_MAX bytes,
 * header fields are never held whole (Content-Type is kept up to
 * MIME7_CTYPE_MAX bytes for parsing, Content-Transfer-Encoding up to
 * MIME7_CTE_MAX for replacing), multiparts are followed MIME7_DEPTH_MAX
 * deep.
 *
 * In dry-run mode nothing is written and the encoders are skipped: the
 * scan of a message (smtpout_message_scan) learns whether the conversion
 * would succeed, at the cost of parsing the MIME structure.
 */
#ifndef SMTPOUT_MIME7BIT_INT_H
#define SMTPOUT_MIME7BIT_INT_H

#include <stddef.h>
#include <stdint.h>

#define MIME7_LINE_MAX 1024
/* RFC 2046 5.1.1 says 70; longer ones are not followed. */
#define MIME7_BOUNDARY_MAX 200
#define MIME7_DEPTH_MAX 16
#define MIME7_CTYPE_MAX 1024
#define MIME7_CTE_MAX 256

/* Why a conversion failed: where the 8-bit byte was. */
enum mime7_error {
  MIME7_OK = 0,
  MIME7_ERR_HEADER,      /* the message's own header (needs SMTPUTF8) */
  MIME7_ERR_PART_HEADER, /* the header of a MIME part or nested message */
  MIME7_ERR_7BIT_PART,   /* a part declared 7bit, quoted-printable, base64
                            or an unknown encoding */
  MIME7_ERR_STRUCTURE    /* a preamble, epilogue or boundary line, or an
                            entity it does not follow (message/partial,
                            ambiguous or unparsable headers, too deep) */
};

struct mime7_level {
  size_t len;
  unsigned char digest; /* multipart/digest: parts default to message/rfc822 */
  char boundary[MIME7_BOUNDARY_MAX];
};

struct mime7 {
  unsigned char dry;
  /* BDAT data (RFC 3030 2): no dot is doubled, no ".\r\n" ends it. */
  unsigned char chunked;
  int error; /* enum mime7_error; sticky */

  /* Input: the line being assembled. */
  unsigned char pending_cr; /* a CR ended the line; is it CRLF? */
  unsigned char line_cont;  /* the line's first piece is already handled */
  size_t line_len;
  uint8_t line[MIME7_LINE_MAX];

  /* Where the parser is. */
  unsigned char in_header;     /* else in a body */
  unsigned char boundary_rest; /* the rest of an over-long boundary line */
  unsigned char region;        /* a body's treatment (mime7bit.c) */
  unsigned char region_error;  /* the error 8-bit data gives in it */
  struct mime7_level levels[MIME7_DEPTH_MAX];
  size_t depth;

  /* The entity whose header is being read. */
  unsigned char primary;     /* the message's own header */
  unsigned char field;       /* the header field being read */
  unsigned char ctype;       /* its Content-Type, as mime7bit.c classifies */
  unsigned char digest;      /* ... multipart/digest */
  unsigned char cte;         /* its Content-Transfer-Encoding */
  unsigned char seen_ctype, seen_cte, seen_version;
  unsigned char ambiguous;   /* duplicate or unparsable MIME headers */
  size_t ctype_len;
  char ctype_text[MIME7_CTYPE_MAX];
  size_t boundary_len;       /* 0: none (or unusable) */
  char boundary[MIME7_BOUNDARY_MAX];
  size_t hold_len;           /* the Content-Transfer-Encoding field, held */
  uint8_t hold[MIME7_CTE_MAX];

  /* Encoders. */
  unsigned char qp_ws;       /* a space or tab not yet known not to trail */
  size_t qp_col;
  unsigned char b64_raw;     /* binary: encode the line ends as they came */
  unsigned char b64_break;   /* the line end not yet known to be content */
  unsigned char b64_n;
  uint8_t b64_acc[3];
  size_t b64_col;

  /* Output. */
  unsigned char at_bol;
  uint8_t *o;
};

void mime7_init(struct mime7 *m, int dry_run);

/* The most bytes one mime7_encode() call writes for `n` input bytes, and
 * the most mime7_finish() writes.  The slack covers what earlier calls
 * held back: a line piece and the Content-Transfer-Encoding field. */
#define MIME7_SLACK (4 * MIME7_LINE_MAX + 2 * MIME7_CTE_MAX + 256)
static inline size_t mime7_bound(size_t n) { return 4 * n + MIME7_SLACK; }
#define MIME7_FINISH_MAX MIME7_SLACK

/* Converts `n` bytes into `out` (mime7_bound(n) bytes; NULL in dry-run
 * mode) and returns the number written.  After an error (m->error) it
 * writes nothing more; the bytes of the failing call must not be sent. */
size_t mime7_encode(struct mime7 *m, const uint8_t *in, size_t n,
                    uint8_t *out);

/* Ends the data: the last line, the encoders' tails and ".\r\n" (not
 * for chunked data).  `out` needs MIME7_FINISH_MAX bytes (NULL in
 * dry-run mode). */
size_t mime7_finish(struct mime7 *m, uint8_t *out);

/* A phrase for an error ("8-bit data in a MIME part header"). */
const char *mime7_error_text(int error);

/* 1 when any of the `n` bytes has its high bit set. */
int mime7_has_8bit(const uint8_t *p, size_t n);

#endif
