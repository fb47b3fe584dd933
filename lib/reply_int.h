/*
 * reply_int.h — incremental parser for SMTP replies (RFC 5321 section 4.2).
 *
 * Fed raw bytes, it returns one event per line: a continuation line, the
 * final line of a reply (the reply is then complete), or a protocol error.
 * Memory is bounded: a line longer than REPLY_MAX_LINE or a reply of more
 * than REPLY_MAX_LINES lines is an error, never growth.  A line that
 * arrives whole is read where it lies; only one split across inputs is
 * assembled, in a buffer of REPLY_MAX_LINE bytes allocated for it.  That
 * buffer and the reply's text are released by reply_parser_release(): an
 * idle session holds neither.
 */
#ifndef SMTPOUT_REPLY_INT_H
#define SMTPOUT_REPLY_INT_H

#include <stddef.h>
#include <stdint.h>

/* RFC 5321 4.5.3.1.5 allows 512 octets; real servers exceed it, so allow
 * four times that before calling it an attack. */
#define REPLY_MAX_LINE 2048
/* An EHLO reply has about 15 lines; 100 is generous. */
#define REPLY_MAX_LINES 100
/* The text kept for results and error messages. */
#define REPLY_TEXT_MAX 1024

struct reply {
  int code;             /* 200..599 */
  char enhanced[12];    /* "4.7.5", or "" */
  /* Printable ASCII, lines joined by ' ': REPLY_TEXT_MAX + 1 bytes the
   * parser allocates with its first reply ("" before). */
  char *text;
  size_t text_len;
  unsigned nlines;
};

struct reply_parser {
  uint8_t *partial;    /* a line begun in an earlier input, or NULL */
  size_t partial_len;
  const uint8_t *line; /* the line last reported, its CRLF stripped */
  size_t line_len;
  int in_reply;        /* a continuation line has been seen */
  struct reply reply;  /* the reply being assembled / just completed */
  const char *error;   /* static text after REPLY_ERROR */
};

enum reply_event {
  REPLY_MORE = 0,      /* all input consumed, no complete line */
  REPLY_LINE = 1,      /* a continuation line ("250-...") was parsed */
  REPLY_COMPLETE = 2,  /* the final line was parsed: reply is ready */
  REPLY_ERROR = -1,    /* malformed input; see parser->error */
  REPLY_NOMEM = -2     /* no memory for the text or a split line; nothing
                          consumed */
};

void reply_parser_init(struct reply_parser *p);
/* Frees the reply's text and the buffer of a split line (with any part
 * of a line in it): for a parser that is not busy, or done.  The parser
 * stays usable; the reply reads as empty. */
void reply_parser_release(struct reply_parser *p);

/*
 * Consumes bytes up to and including the next line end and reports what
 * that line was.  *consumed says how many of the `len` bytes were used.
 * After REPLY_LINE or REPLY_COMPLETE, reply_line_raw() gives the raw line
 * (for traces and EHLO keywords); it may point into `data`, so it is
 * valid while `data` is and until the next call.  After REPLY_COMPLETE
 * the next call starts a new reply.
 */
enum reply_event reply_parse(struct reply_parser *p, const uint8_t *data,
                             size_t len, size_t *consumed);

/* The text of the last parsed line after the code and separator (raw
 * bytes, not sanitised), and the whole raw line, as reply_parse() says. */
const uint8_t *reply_line_text(const struct reply_parser *p, size_t *len);
const uint8_t *reply_line_raw(const struct reply_parser *p, size_t *len);

/* True when the parser holds part of a line or of a multi-line reply. */
int reply_parser_busy(const struct reply_parser *p);
/* The bytes of the buffers it holds: 0 after reply_parser_release(). */
size_t reply_parser_held(const struct reply_parser *p);

/*
 * Reads one line of an EHLO reply after the first (the text after "250-"
 * or "250 ": RFC 5321 4.1.1.1, keywords are case-insensitive): returns the
 * SMTPOUT_CAP_* bit its keyword names, or 0 for one smtpout does not use.
 * For "SIZE 35882577", *size gets the limit ("SIZE 0": no limit, 0);
 * "SIZE" alone leaves it as it was.
 */
uint32_t reply_ehlo_keyword(const uint8_t *text, size_t len, uint64_t *size);

#endif
