/*
 * fuzz-session — libFuzzer target for the SMTP session fed arbitrary
 * server bytes.
 *
 * Input: a 4-byte header, then the bytes "the server" sends.
 *   byte 0  policy: bits 0-1 starttls (3 = optional), bit 2
 *           allow-invalid-certs, bit 3 plaintext fallback, bit 4 fix the
 *           policy through the API (else the configuration decides),
 *           bit 5 null sender, bit 6 a UTF-8 recipient, bit 7 give SIZE
 *   byte 1  bits 0-1: messages queued before start - 1; bits 2-3:
 *           recipients per message - 1; bit 4: an IP-literal MX; bits 5-7
 *           the timeouts (100 ms << n)
 *   bytes 2-3  the seed of the schedule; bits 5-7 of byte 2 also choose
 *           the session: 5 a DANE hop, 6 an ENCRYPT hop (TLSA records
 *           without a usable one), 7 a DANE hop of a REQUIRETLS route
 *           (the hops come from a route answered from canned DNS
 *           records), 4 the smarthost mode: the scripted TLS backend
 *           (tests/fake_tls.c: "<server-hello>" from the server completes
 *           the handshake, and records are plaintext, so everything after
 *           it is checked as before it), AUTH credentials (PLAIN, LOGIN,
 *           XOAUTH2; SCRAM's random nonce would make runs irreproducible,
 *           and fuzz-sasl covers it), and the certificate verdict drawn
 *           from the seed; anything else a session of smtpout_session_new()
 * Messages sometimes carry a DSN request; a server that offers CHUNKING
 * gets BDAT.
 * The schedule (a xorshift generator) chops the server bytes into chunks
 * of random size and interleaves them with what a host does: drain the
 * output (all of it, or a random part), let time pass and fire the
 * expiry, submit another message, ask for QUIT, and rarely abort or lose
 * the connection; the body source sometimes says WOULDBLOCK (resumed
 * later) and rarely fails.  After the input ends the host asks for QUIT and only
 * fires timeouts: the session must then end by itself.
 *
 * Invariants, each an abort() the fuzzer reports:
 *  - every recipient gets exactly one result, never one for a recipient
 *    that does not exist, and every message its done callback once, after
 *    its recipients;
 *  - a recipient is delivered only with a 2xx code, and only when the end
 *    of data ("\r\n.\r\n", or the last byte of a "BDAT n LAST" chunk) is
 *    the last thing the host has written (the client sends nothing after
 *    it until its reply, but a QUIT pipelined with it);
 *  - BDAT chunks are exactly as long as they say, hold the body's lines
 *    neither dot-stuffed nor ended by a dot, and a LAST chunk ends the data;
 *  - AUTH goes only after TLS, and the secret is in no trace line (AUTH
 *    lines are traced redacted);
 *  - a result's code (when not 0) and enhanced code (when not "") are of
 *    its status's class: 2 delivered, 4 deferred, 5 bounced;
 *  - every line the client writes in clear is one of its own commands or a
 *    line of the (known) body: nothing the server sent is echoed, no line
 *    ends early;
 *  - trace lines (raw server bytes) are bounded; the TLS outcome is
 *    reported once, with a verify_error only when TLS is up (a
 *    certificate was judged);
 *  - memory stays bounded: peeked output under 256 KiB, and (under
 *    AddressSanitizer) the heap never grows by more than 4 MiB;
 *  - a deadline is never further away than the longest timeout, a session
 *    asked to QUIT always has one, and firing the deadlines alone ends it;
 *  - REQUIRETLS never goes in clear: no MAIL FROM written in clear carries
 *    it, no message flagged SMTPOUT_MESSAGE_REQUIRETLS is delivered (the
 *    fuzzed server cannot complete a TLS handshake), and on a hop whose
 *    DANE requires TLS no MAIL FROM is written in clear at all: the hop's
 *    outcome is then a TLS or host failure, never done.
 *
 * Build and run: see docs/security.md ("Fuzzing").
 */
#define _GNU_SOURCE /* memmem() */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <smtpout/smtpout.h>

#include "fake_tls.h"
#include "session_int.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_HEAP_CHECK 1
#endif
#endif
#ifdef FUZZ_HEAP_CHECK
#include <sanitizer/allocator_interface.h>
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSGS 8
#define MAX_RCPTS 4
#define OUT_MAX (256 * 1024)
#define HEAP_GROWTH_MAX (4u * 1024 * 1024)

#define CHECK(cond)                                                         \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "fuzz-session: invariant failed at line %d: %s\n",  \
              __LINE__, #cond);                                             \
      abort();                                                              \
    }                                                                       \
  } while (0)

/* The body every message sends: a lone dot (stuffed), a line starting
 * with a dot, a bare LF and no final line end.  Its lines on the wire: */
static const char body[] = "Subject: fuzz\r\n\r\n.\r\n.x\nend";
static const char *const body_lines[] = {
  "Subject: fuzz", "", "..", "..x", "end", ".",
  /* A message flagged 8-bit, to a server without 8BITMIME, is converted:
   * its (7-bit) text stays, quoted-printable, under these headers. */
  "Content-Transfer-Encoding: quoted-printable", "MIME-Version: 1.0"};
/* The same in a BDAT chunk: no dot doubled, none added. */
static const char *const bdat_lines[] = {
  "Subject: fuzz", "", ".", ".x", "end",
  "Content-Transfer-Encoding: quoted-printable", "MIME-Version: 1.0"};
/* The smarthost mode's credentials, and PLAIN's response: neither may
 * appear in a trace. */
#define SECRET "fuzz-Secret-4242"
#define PLAIN_B64 "AGZ1enphdXRoAGZ1enotU2VjcmV0LTQyNDI="
/* The DSN request some messages carry, as it goes on MAIL and RCPT. */
#define DSN_MAIL " RET=FULL ENVID=fz+2B1"
#define DSN_NOTIFY " NOTIFY=SUCCESS,FAILURE"
#define DSN_ORCPT " ORCPT=rfc822;o+2Bx@test.example"

static const char *const addrs[MAX_RCPTS + 1] = {
  "a@test.example", "b@test.example", "c@other.example", "d@test.example",
  "j\xc3\xb6rg@test.example",
};

struct fuzz {
  smtpout_session *s;
  uint64_t now;
  uint32_t rng;
  uint32_t max_timeout;
  /* Submitted messages: id -> recipients, results seen, done seen. */
  int ids[MAX_MSGS];
  size_t nrcpts[MAX_MSGS];
  unsigned char seen[MAX_MSGS][MAX_RCPTS];
  int done[MAX_MSGS];
  int delivered[MAX_MSGS];
  int nmsgs;
  size_t results;
  size_t expected;
  int quit;
  int utf8;
  /* What the host has written, as lines, while it is clear text. */
  char line[1024];
  size_t line_len;
  int line_overflow;
  int clear;           /* 0 once the TLS handshake bytes begin */
  int after_starttls;  /* the last line written was STARTTLS */
  /* The smarthost mode (scripted TLS, credentials): the fake
   * ClientHello's bytes still to skip, whether it went (TLS), and whether
   * the last command was AUTH or a response to its challenge. */
  int fake;
  int server_knows; /* the input holds the secret or PLAIN's response */
  size_t hello_left;
  int tls_sent;
  int in_auth;
  /* BDAT: the chunk data still to come, whether it is the LAST chunk,
   * and where (in bytes written) the last LAST chunk ended. */
  size_t chunk_left;
  int chunk_last;
  uint64_t wpos;
  uint64_t last_end;
  char tail[11];       /* the last 11 bytes written */
  size_t tail_len;
  size_t body_off[MAX_MSGS];
  int blocked;         /* read_body said WOULDBLOCK: resume later */
  int tls_calls;
  int hop;             /* 0, or the hop kind (byte 2, bits 5-7) */
  int tls_mandatory;   /* a DANE or ENCRYPT hop: no MAIL in clear */
  int requiretls[MAX_MSGS]; /* flagged SMTPOUT_MESSAGE_REQUIRETLS */
};

/* FUZZ_SESSION_TRACE=1 in the environment prints what the host does, to
 * read a crashing input: fuzz-session crash-... */
static int tracing = -1;

static void show(const char *what, const uint8_t *p, size_t n)
{
  if (tracing < 0)
    tracing = getenv("FUZZ_SESSION_TRACE") != NULL;
  if (!tracing)
    return;
  fprintf(stderr, "%s %zu: \"", what, n);
  for (size_t i = 0; i < n; i++)
    fprintf(stderr, p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' ? "%c"
                    : p[i] == '\r' ? "\\r" : p[i] == '\n' ? "\\n" : "\\x%02x",
            p[i]);
  fprintf(stderr, "\"\n");
}

static uint32_t next(struct fuzz *f)
{
  uint32_t x = f->rng;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  f->rng = x;
  return x;
}

static int msg_index(const struct fuzz *f, int id)
{
  for (int i = 0; i < f->nmsgs; i++)
    if (f->ids[i] == id)
      return i;
  return -1;
}

static int body_cb(smtpout_session *s, int id, uint8_t *buf, size_t len,
                   size_t *nread, int *eof, void *ud)
{
  struct fuzz *f = ud;
  (void)s;
  int m = msg_index(f, id);
  CHECK(m >= 0);
  CHECK(!f->blocked); /* not called again before resume_body */
  uint32_t r = next(f);
  if (r % 16 == 0) {
    f->blocked = 1;
    return SMTPOUT_ERR_WOULDBLOCK;
  }
  if (r % 509 == 1)
    return SMTPOUT_ERR_CALLBACK_FAILURE; /* the host's file vanished */
  size_t left = sizeof(body) - 1 - f->body_off[m];
  size_t n = 1 + next(f) % 16;
  if (n > left)
    n = left;
  if (n > len)
    n = len;
  memcpy(buf, body + f->body_off[m], n);
  f->body_off[m] += n;
  *nread = n;
  *eof = f->body_off[m] == sizeof(body) - 1;
  if (*eof)
    f->body_off[m] = 0; /* a later connection would read it again */
  return 0;
}

/* The last thing written is the end of data (DATA's dot, or the last
 * byte of a LAST chunk), or that and a QUIT pipelined behind it (RFC 2920
 * 3.1). */
static int ends_with_dot(const struct fuzz *f)
{
  static const char dot[] = "\r\n.\r\n", dotquit[] = "\r\n.\r\nQUIT\r\n";
  size_t n = f->tail_len;
  if (f->last_end > 0 &&
      (f->wpos == f->last_end ||
       (f->wpos == f->last_end + 6 && n >= 6 &&
        memcmp(f->tail + n - 6, "QUIT\r\n", 6) == 0)))
    return 1;
  return (n >= 5 && memcmp(f->tail + n - 5, dot, 5) == 0) ||
         (n == 11 && memcmp(f->tail, dotquit, 11) == 0);
}

static void result_cb(smtpout_session *s, const smtpout_result *r, void *ud)
{
  struct fuzz *f = ud;
  (void)s;
  int m = msg_index(f, smtpout_result_message_id(r));
  CHECK(m >= 0);
  size_t i = smtpout_result_recipient_index(r);
  CHECK(i < f->nrcpts[m]);
  CHECK(!f->seen[m][i]);
  CHECK(!f->done[m]);
  f->seen[m][i] = 1;
  f->results++;
  int st = smtpout_result_status(r);
  CHECK(st == SMTPOUT_STATUS_DELIVERED || st == SMTPOUT_STATUS_DEFERRED ||
        st == SMTPOUT_STATUS_BOUNCED);
  CHECK(smtpout_result_text(r) != NULL && smtpout_result_enhanced(r) != NULL);
  CHECK(strlen(smtpout_result_text(r)) <= 1024);
  if (!f->server_knows)
    CHECK(strstr(smtpout_result_text(r), SECRET) == NULL &&
          strstr(smtpout_result_text(r), PLAIN_B64) == NULL);
  int klass = st == SMTPOUT_STATUS_DELIVERED  ? 2
              : st == SMTPOUT_STATUS_DEFERRED ? 4
                                              : 5;
  int code = smtpout_result_code(r);
  const char *enh = smtpout_result_enhanced(r);
  CHECK(code == 0 || code / 100 == klass);
  CHECK(enh[0] == '\0' || enh[0] == '0' + klass);
  show(smtpout_status_name(st), (const uint8_t *)smtpout_result_text(r),
       strlen(smtpout_result_text(r)));
  if (st == SMTPOUT_STATUS_DELIVERED) {
    CHECK(smtpout_result_code(r) / 100 == 2);
    CHECK(!smtpout_result_possibly_delivered(r));
    /* Only the reply to a dot the host has written can deliver, and the
     * client writes nothing after the dot before that reply. */
    CHECK(f->clear && ends_with_dot(f));
    CHECK(!f->requiretls[m] || f->tls_sent); /* REQUIRETLS only over TLS */
    f->delivered[m] = 1;
  }
  if (smtpout_result_possibly_delivered(r))
    CHECK(st == SMTPOUT_STATUS_DEFERRED);
}

/* Every trace line, raw server bytes included, must be readable in full
 * and bounded. */
static void trace_cb(smtpout_session *s, int dir, const char *line,
                     size_t len, void *ud)
{
  (void)s;
  CHECK(dir == SMTPOUT_TRACE_SENT || dir == SMTPOUT_TRACE_RECEIVED ||
        dir == SMTPOUT_TRACE_INFO);
  CHECK(len <= 4096);
  CHECK(len == 0 || line != NULL);
  /* The secret in no line the client traces as sent (in clear, or as
   * PLAIN's response), and in no trace line at all unless the server
   * itself sent it (its own text is traced as it came). */
  struct fuzz *f = ud;
  if (dir == SMTPOUT_TRACE_SENT || !f->server_knows) {
    CHECK(memmem(line, len, SECRET, sizeof(SECRET) - 1) == NULL);
    CHECK(memmem(line, len, PLAIN_B64, sizeof(PLAIN_B64) - 1) == NULL);
  }
  volatile unsigned sum = 0;
  for (size_t i = 0; i < len; i++)
    sum += (unsigned char)line[i];
  (void)sum;
}

static void tls_cb(smtpout_session *s, const smtpout_tls_info *info,
                   void *ud)
{
  struct fuzz *f = ud;
  (void)s;
  CHECK(info != NULL);
  CHECK(smtpout_tls_outcome_name(smtpout_tls_info_outcome(info)) != NULL);
  const char *e = smtpout_tls_info_verify_error(info);
  CHECK(e == NULL || strlen(e) < 256);
  CHECK(e == NULL || smtpout_tls_info_used(info));
  f->tls_calls++;
  CHECK(f->tls_calls == 1); /* once per session */
}

static void done_cb(smtpout_session *s, int id, void *ud)
{
  struct fuzz *f = ud;
  (void)s;
  int m = msg_index(f, id);
  CHECK(m >= 0);
  CHECK(!f->done[m]);
  for (size_t i = 0; i < f->nrcpts[m]; i++)
    CHECK(f->seen[m][i]);
  f->done[m] = 1;
}

/* Reads "BDAT n" or "BDAT n LAST": the chunk whose data follows. */
static int is_bdat(struct fuzz *f, const char *l)
{
  if (strncmp(l, "BDAT ", 5) != 0 || l[5] < '0' || l[5] > '9')
    return 0;
  char *end;
  unsigned long n = strtoul(l + 5, &end, 10);
  if (*end != '\0' && strcmp(end, " LAST") != 0)
    return 0;
  CHECK(n <= 64 * 1024);
  f->chunk_left = n;
  f->chunk_last = *end != '\0';
  if (n == 0 && f->chunk_last)
    f->last_end = f->wpos;
  return 1;
}

/* An AUTH command, or a response to a challenge while AUTH runs: base64,
 * empty, or the cancelling "*" (RFC 4954 4).  Only ever after TLS. */
static int is_auth(struct fuzz *f, const char *l)
{
  if (strncmp(l, "AUTH ", 5) == 0) {
    CHECK(f->tls_sent);
    f->in_auth = 1;
    return strcmp(l, "AUTH LOGIN") == 0 ||
           strcmp(l, "AUTH PLAIN ****") == 0 ||
           strcmp(l, "AUTH PLAIN " PLAIN_B64) == 0 ||
           strncmp(l, "AUTH XOAUTH2 ", 13) == 0;
  }
  if (!f->in_auth)
    return 0;
  if (strcmp(l, "*") == 0)
    return 1;
  return strspn(l, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789+/=") == strlen(l);
}

/* A command line the client may write: its own commands with its own
 * addresses, nothing else. */
static int is_command(const char *l)
{
  static const char *const fixed[] = {"EHLO client.example",
                                      "HELO client.example", "STARTTLS",
                                      "DATA", "RSET", "QUIT"};
  for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
    if (strcmp(l, fixed[i]) == 0)
      return 1;
  if (strncmp(l, "MAIL FROM:<", 11) == 0) {
    const char *p = l + 11;
    if (strncmp(p, "s@client.example>", 17) == 0)
      p += 17;
    else if (*p == '>')
      p++;
    else
      return 0;
    /* Parameters: only those the client knows. */
    while (*p) {
      if (strncmp(p, " SIZE=", 6) == 0) {
        p += 6;
        while (*p >= '0' && *p <= '9')
          p++;
      } else if (strncmp(p, " BODY=8BITMIME", 14) == 0) {
        p += 14;
      } else if (strncmp(p, " SMTPUTF8", 9) == 0) {
        p += 9;
      } else if (strncmp(p, " REQUIRETLS", 11) == 0) {
        p += 11;
      } else if (strncmp(p, DSN_MAIL, sizeof(DSN_MAIL) - 1) == 0) {
        p += sizeof(DSN_MAIL) - 1;
      } else {
        return 0;
      }
    }
    return 1;
  }
  if (strncmp(l, "RCPT TO:<", 9) == 0) {
    for (size_t i = 0; i <= MAX_RCPTS; i++) {
      size_t n = strlen(addrs[i]);
      if (strncmp(l + 9, addrs[i], n) != 0 || l[9 + n] != '>')
        continue;
      const char *p = l + 10 + n;
      if (strncmp(p, DSN_NOTIFY, sizeof(DSN_NOTIFY) - 1) == 0)
        p += sizeof(DSN_NOTIFY) - 1;
      if (strncmp(p, DSN_ORCPT, sizeof(DSN_ORCPT) - 1) == 0)
        p += sizeof(DSN_ORCPT) - 1;
      if (*p == '\0')
        return 1;
    }
  }
  return 0;
}

static int is_body_line(const char *l, int bdat)
{
  const char *const *lines = bdat ? bdat_lines : body_lines;
  size_t n = bdat ? sizeof(bdat_lines) / sizeof(bdat_lines[0])
                  : sizeof(body_lines) / sizeof(body_lines[0]);
  for (size_t i = 0; i < n; i++)
    if (strcmp(l, lines[i]) == 0)
      return 1;
  return 0;
}

/* Follows what the host wrote to the server. */
static void written(struct fuzz *f, const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (f->tail_len == sizeof(f->tail))
      memmove(f->tail, f->tail + 1, --f->tail_len);
    f->tail[f->tail_len++] = (char)p[i];
    f->wpos++;
    if (!f->clear)
      continue;
    if (f->hello_left > 0) {
      f->hello_left--; /* the scripted ClientHello */
      continue;
    }
    if (f->after_starttls && f->line_len == 0 && f->fake && p[i] == '<') {
      f->hello_left = sizeof(FAKE_CLIENT_HELLO) - 2;
      f->tls_sent = 1;
      f->after_starttls = 0;
      continue;
    }
    if (f->after_starttls && f->line_len == 0 && p[i] == 0x16) {
      f->clear = 0; /* a TLS handshake record: the ClientHello */
      continue;
    }
    int in_chunk = f->chunk_left > 0;
    if (in_chunk && --f->chunk_left == 0 && f->chunk_last)
      f->last_end = f->wpos;
    if (p[i] == '\n') {
      /* Every line ends in CRLF; never a bare LF. */
      CHECK(!f->line_overflow && f->line_len > 0 &&
            f->line[f->line_len - 1] == '\r');
      f->line[f->line_len - 1] = '\0';
      if (in_chunk) {
        CHECK(is_body_line(f->line, 1));
      } else {
        int auth = is_auth(f, f->line);
        if (!auth)
          f->in_auth = 0;
        CHECK(auth || is_bdat(f, f->line) || is_command(f->line) ||
              is_body_line(f->line, 0));
        /* Every line in clear: no MAIL FROM with REQUIRETLS, and none
         * at all where the hop requires TLS. */
        if (!f->tls_sent && strncmp(f->line, "MAIL FROM:<", 11) == 0) {
          CHECK(strstr(f->line, " REQUIRETLS") == NULL);
          CHECK(!f->tls_mandatory);
        }
      }
      f->after_starttls = strcmp(f->line, "STARTTLS") == 0;
      f->line_len = 0;
      /* Our chunks hold whole lines: the body is far below 64 KiB, and
       * its data always ends in CRLF. */
      continue;
    }
    if (in_chunk && f->chunk_left == 0)
      CHECK(!"a BDAT chunk ends inside a line");
    /* No bare CR inside a line, no NUL. */
    CHECK(p[i] != '\0');
    CHECK(f->line_len == 0 || f->line[f->line_len - 1] != '\r');
    if (f->line_len < sizeof(f->line) - 1)
      f->line[f->line_len++] = (char)p[i];
    else
      f->line_overflow = 1;
  }
}

static void drain(struct fuzz *f, int all)
{
  for (int rounds = 0; rounds < 64; rounds++) {
    const uint8_t *p;
    size_t n;
    CHECK(smtpout_session_peek_output(f->s, &p, &n, f->now) == 0);
    CHECK(n <= OUT_MAX);
    if (n == 0)
      return;
    size_t take = all ? n : next(f) % (n + 1);
    show("host writes", p, take);
    written(f, p, take);
    CHECK(smtpout_session_consume_output(f->s, take, f->now) == 0);
    if (!all)
      return;
  }
}

static void check_deadline(struct fuzz *f)
{
  uint64_t e = smtpout_session_expiry(f->s);
  if (e != SMTPOUT_NO_EXPIRY)
    CHECK(e <= f->now + f->max_timeout);
  else if (f->quit)
    CHECK(smtpout_session_is_done(f->s) || !smtpout_session_want_read(f->s) ||
          smtpout_session_want_write(f->s));
}

static void submit(struct fuzz *f, const uint8_t *hdr, size_t nrcpts)
{
  if (f->nmsgs == MAX_MSGS)
    return;
  const char *rcpts[MAX_RCPTS];
  for (size_t i = 0; i < nrcpts; i++)
    rcpts[i] = addrs[(i == 1 && f->utf8) ? MAX_RCPTS : i];
  const char *sender = (hdr[0] & 0x20) ? "" : "s@client.example";
  uint64_t size = (hdr[0] & 0x80) ? sizeof(body) - 1 : 0;
  uint32_t flags = next(f) % 4 == 0 ? SMTPOUT_MESSAGE_8BITMIME : 0;
  if (next(f) % 8 == 0)
    flags |= SMTPOUT_MESSAGE_REQUIRETLS;
  smtpout_dsn *dsn = NULL;
  if (next(f) % 4 == 0 && smtpout_dsn_new(&dsn) == 0) {
    CHECK(smtpout_dsn_set_ret(dsn, SMTPOUT_DSN_RET_FULL) == 0);
    CHECK(smtpout_dsn_set_envid(dsn, "fz+1") == 0);
    CHECK(smtpout_dsn_set_notify(dsn, 0, SMTPOUT_DSN_NOTIFY_SUCCESS |
                                             SMTPOUT_DSN_NOTIFY_FAILURE) == 0);
    CHECK(smtpout_dsn_set_orcpt(dsn, 0, "rfc822;o+x@test.example") == 0);
  }
  int id = smtpout_session_submit_dsn(f->s, sender, rcpts, nrcpts, size,
                                      flags, dsn);
  smtpout_dsn_free(dsn);
  if (id < 0)
    return; /* refused (closing, policy conflict): no results owed */
  f->requiretls[f->nmsgs] = (flags & SMTPOUT_MESSAGE_REQUIRETLS) != 0;
  f->ids[f->nmsgs] = id;
  f->nrcpts[f->nmsgs] = nrcpts;
  f->nmsgs++;
  f->expected += nrcpts;
}

static smtpout_config *config(void)
{
  static smtpout_config *cfg;
  if (cfg == NULL) {
    /* One configuration for every run: the trust store is loaded once.
     * Rules give other.example a stricter policy, so that mixed messages
     * exercise the policy merge and POLICY_CONFLICT. */
    const char *ini = "[destination \"strict\"]\n"
                      "domains = other.example\n"
                      "starttls = require\n";
    char err[512];
    if (smtpout_config_load_string(&cfg, ini, "fuzz.ini", err, sizeof(err)))
      abort();
  }
  return cfg;
}

/* ---- hops: a route answered from canned DNS records ---- */

enum { HOP_DANE = 5, HOP_ENCRYPT = 6, HOP_REQUIRETLS = 7 };

static size_t put_name(uint8_t *p, const char *name)
{
  size_t n = 0;
  for (const char *s = name; *s;) {
    size_t l = strcspn(s, ".");
    p[n++] = (uint8_t)l;
    memcpy(p + n, s, l);
    n += l;
    s += l;
    if (*s == '.')
      s++;
  }
  p[n++] = 0;
  return n;
}

/*
 * The answer to (qname, qtype), every one DNSSEC-secure: dane.test's MX
 * is mx.dane.test, whose A record is 192.0.2.1 and whose TLSA record is
 * a DANE-EE one (or, for ENCRYPT, a PKIX-EE one: unusable for SMTP);
 * anything else is NXDOMAIN.
 */
static size_t canned(uint8_t *p, const char *qname, int qtype, int usage)
{
  static const uint8_t a[4] = {192, 0, 2, 1};
  uint8_t rdata[64];
  size_t rdlen = 0;
  int found = 1;
  if (qtype == 15 && strcmp(qname, "dane.test.") == 0) {
    rdata[0] = 0;
    rdata[1] = 10;
    rdlen = 2 + put_name(rdata + 2, "mx.dane.test");
  } else if (qtype == 1 && strcmp(qname, "mx.dane.test.") == 0) {
    memcpy(rdata, a, 4);
    rdlen = 4;
  } else if (qtype == 52 && strcmp(qname, "_25._tcp.mx.dane.test.") == 0) {
    rdata[0] = (uint8_t)usage;
    rdata[1] = 1;
    rdata[2] = 1;
    memset(rdata + 3, 0xab, 32);
    rdlen = 35;
  } else {
    /* NODATA for the names that exist, NXDOMAIN for the others. */
    found = strcmp(qname, "dane.test.") == 0 ||
            strcmp(qname, "mx.dane.test.") == 0 ? 0 : -1;
  }
  static const uint8_t head[] = {0x42, 0x42, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0,
                                 0};
  size_t n = sizeof(head);
  memcpy(p, head, n);
  p[3] = found < 0 ? 0x83 : 0x80;
  p[7] = found > 0;
  n += put_name(p + n, qname);
  p[n++] = 0;
  p[n++] = (uint8_t)qtype;
  p[n++] = 0;
  p[n++] = 1;
  if (found > 0) {
    n += put_name(p + n, qname);
    uint8_t rr[] = {0, (uint8_t)qtype, 0, 1, 0, 0, 1, 0,
                    (uint8_t)(rdlen >> 8), (uint8_t)rdlen};
    memcpy(p + n, rr, sizeof(rr));
    n += sizeof(rr);
    memcpy(p + n, rdata, rdlen);
    n += rdlen;
  }
  return n;
}

/* A route to dane.test run to its first hop; NULL if it hands out none
 * (which would be a bug of the route, not of the input). */
static const smtpout_hop *canned_hop(smtpout_route **pr, int kind)
{
  uint32_t flags = kind == HOP_REQUIRETLS ? SMTPOUT_ROUTE_REQUIRETLS : 0;
  if (smtpout_route_new(pr, NULL, "dane.test", flags, 0, 0) != 0)
    return NULL;
  for (int i = 0; i < 64; i++) {
    int want = smtpout_route_want(*pr);
    const smtpout_request *q;
    const smtpout_hop *hop;
    if (want == SMTPOUT_ROUTE_WANT_HOP &&
        smtpout_route_next_hop(*pr, &hop, 0) == 1)
      return hop;
    if (want != SMTPOUT_ROUTE_WANT_REQUEST ||
        smtpout_route_next_request(*pr, &q, 0) != 1)
      return NULL;
    int id = smtpout_request_id(q);
    if (smtpout_request_kind(q) == SMTPOUT_REQUEST_DNS) {
      uint8_t pkt[512];
      size_t n = canned(pkt, smtpout_request_qname(q),
                        smtpout_request_qtype(q), kind == HOP_ENCRYPT ? 1 : 3);
      smtpout_route_dns_answer(*pr, id, SMTPOUT_DNSSEC_SECURE, pkt, n, 0);
    } else if (smtpout_request_kind(q) == SMTPOUT_REQUEST_CACHE_GET) {
      smtpout_route_cache_answer(*pr, id, NULL, 0, 0);
    } else if (smtpout_request_kind(q) == SMTPOUT_REQUEST_HTTPS) {
      smtpout_route_https_answer(*pr, id, SMTPOUT_FETCH_CONNECT_FAILED, 0,
                                 NULL, NULL, 0, 0);
    }
  }
  return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 4)
    return 0;
  const uint8_t *hdr = data;
  data += 4;
  size -= 4;

#ifdef FUZZ_HEAP_CHECK
  size_t heap0 = __sanitizer_get_current_allocated_bytes();
#endif
  static struct fuzz fz;
  struct fuzz *f = &fz;
  memset(f, 0, sizeof(*f));
  f->now = 1000;
  f->rng = 0x9e3779b9u ^ ((uint32_t)hdr[2] << 8 | hdr[3]);
  f->clear = 1;
  f->utf8 = (hdr[0] & 0x40) != 0;
  f->max_timeout = 100u << (hdr[1] >> 5);

  smtpout_callbacks *cbs;
  if (smtpout_callbacks_new(&cbs) != 0)
    return 0;
  smtpout_callbacks_set_read_body(cbs, body_cb);
  smtpout_callbacks_set_on_result(cbs, result_cb);
  smtpout_callbacks_set_on_message_done(cbs, done_cb);
  smtpout_callbacks_set_on_trace(cbs, trace_cb);
  smtpout_callbacks_set_on_tls(cbs, tls_cb);
  const char *mx = (hdr[1] & 0x10) ? "[192.0.2.1]" : "mx.test.example";
  smtpout_route *route = NULL;
  f->hop = hdr[2] >> 5 >= HOP_DANE ? hdr[2] >> 5 : 0;
  if (f->hop) {
    const smtpout_hop *hop = canned_hop(&route, f->hop);
    CHECK(hop != NULL);
    int req = smtpout_hop_tls_requirement(hop);
    CHECK(req == (f->hop == HOP_ENCRYPT ? SMTPOUT_TLS_REQUIREMENT_ENCRYPT
                                        : SMTPOUT_TLS_REQUIREMENT_DANE));
    f->tls_mandatory = 1;
    CHECK(smtpout_session_new_for_hop(&f->s, hop, config(), cbs, f) == 0);
    /* The session copied what it needs: the route may go now. */
    smtpout_route_free(route);
  } else if (smtpout_session_new(&f->s, mx, config(), cbs, f) != 0) {
    smtpout_callbacks_free(cbs);
    return 0;
  }
  smtpout_session_set_helo_name(f->s, "client.example");
  f->fake = hdr[2] >> 5 == 4;
  f->server_knows =
      memmem(data, size, SECRET, sizeof(SECRET) - 1) != NULL ||
      memmem(data, size, PLAIN_B64, sizeof(PLAIN_B64) - 1) != NULL;
  if (f->fake) {
    fake_tls_reset();
    uint32_t r = next(f);
    fake_tls.cert = (int)(r % 4); /* valid, expired, untrusted, wrong name */
    fake_tls.handshake = (r >> 2) % 8 == 0 ? FAKE_HANDSHAKE_ALERT
                                           : FAKE_HANDSHAKE_OK;
    session_set_tls_backend(f->s, &fake_tls_backend);
    CHECK(smtpout_session_set_auth(f->s, "PLAIN LOGIN XOAUTH2", "fuzzauth",
                                   SECRET,
                                   (r >> 5) & 1 ? SMTPOUT_AUTH_TLS_ANY : 0) ==
          0);
  }
  for (int t = 0; t < SMTPOUT_TIMEOUT_COUNT; t++)
    smtpout_session_set_timeout(f->s, t, f->max_timeout);
  if (hdr[0] & 0x10) {
    int st = hdr[0] & 3;
    smtpout_session_set_tls_policy(f->s, st == 3 ? 1 : st, (hdr[0] >> 2) & 1);
  }
  if (hdr[0] & 0x08)
    smtpout_session_set_plaintext_fallback(f->s);

  size_t nrcpts = 1 + ((hdr[1] >> 2) & 3);
  for (int i = 0; i <= (hdr[1] & 3); i++)
    submit(f, hdr, nrcpts);
  CHECK(smtpout_session_start(f->s, f->now) == 0);

  size_t off = 0;
  int aborted = 0, eof = 0;
  while (off < size && !eof && !aborted) {
    uint32_t r = next(f);
    switch (r % 16) {
    case 0: case 1: case 2: case 3: case 4: case 5: {
      /* Feed a chunk: often small, sometimes everything left. */
      size_t n = (r >> 8) % 4 == 0 ? size - off : 1 + (r >> 10) % 64;
      if (n > size - off)
        n = size - off;
      show("server sends", data + off, n);
      CHECK(smtpout_session_feed(f->s, data + off, n, f->now) == 0);
      off += n;
      break;
    }
    case 6: case 7: case 8:
      drain(f, 1);
      break;
    case 9:
      if (f->blocked) {
        f->blocked = 0;
        CHECK(smtpout_session_resume_body(f->s) == 0);
      }
      drain(f, 1);
      break;
    case 10:
      drain(f, 0);
      break;
    case 11:
      /* Time passes; sometimes right up to the deadline. */
      if ((r >> 8) & 1 && smtpout_session_expiry(f->s) != SMTPOUT_NO_EXPIRY)
        f->now = smtpout_session_expiry(f->s);
      else
        f->now += (r >> 9) % (f->max_timeout / 2 + 1);
      CHECK(smtpout_session_handle_expiry(f->s, f->now) == 0);
      break;
    case 12:
      if ((r >> 8) % 4 == 0)
        submit(f, hdr, 1 + (r >> 10) % MAX_RCPTS);
      break;
    case 13:
      if ((r >> 8) % 4 == 0) {
        smtpout_session_quit(f->s);
        f->quit = 1;
      }
      break;
    case 14:
      if ((r >> 8) % 64 == 0) {
        smtpout_session_abort(f->s, f->now);
        aborted = 1;
      }
      break;
    case 15:
      if ((r >> 8) % 64 == 0) {
        smtpout_session_feed_eof(f->s, f->now);
        eof = 1;
      }
      break;
    }
    check_deadline(f);
#ifdef FUZZ_HEAP_CHECK
    CHECK(__sanitizer_get_current_allocated_bytes() < heap0 + HEAP_GROWTH_MAX);
#endif
  }

  /* The server goes silent: QUIT, then only timeouts.  The session must
   * end by itself, each recipient having its one result. */
  smtpout_session_quit(f->s);
  f->quit = 1;
  for (int rounds = 0; rounds < 32 && !smtpout_session_is_done(f->s);
       rounds++) {
    if (f->blocked) {
      f->blocked = 0;
      smtpout_session_resume_body(f->s);
    }
    drain(f, 1);
    check_deadline(f);
    if (smtpout_session_is_done(f->s))
      break;
    uint64_t e = smtpout_session_expiry(f->s);
    CHECK(e != SMTPOUT_NO_EXPIRY);
    f->now = e;
    CHECK(smtpout_session_handle_expiry(f->s, f->now) == 0);
  }
  drain(f, 1);
  CHECK(smtpout_session_is_done(f->s));
  CHECK(f->results == f->expected);
  for (int m = 0; m < f->nmsgs; m++)
    CHECK(f->done[m]);
  CHECK(smtpout_session_close_text(f->s) != NULL);
  int outcome = smtpout_session_hop_outcome(f->s);
  CHECK(smtpout_hop_outcome_name(outcome) != NULL &&
        outcome != SMTPOUT_HOP_CONNECT_FAILED);
  if (f->tls_mandatory)
    CHECK(outcome == SMTPOUT_HOP_TLS_FAILED ||
          outcome == SMTPOUT_HOP_HOST_FAILED);
  smtpout_session_free(f->s);
  smtpout_callbacks_free(cbs);
  return 0;
}
