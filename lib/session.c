/*
 * session.c — the SMTP client state machine, without I/O.
 *
 * The host feeds received bytes in, takes bytes to send out, and passes
 * the time.  Everything that happens on the connection is decided here:
 * greeting, EHLO (HELO fallback), the TLS policy (STARTTLS, handshake,
 * certificate verdict), one transaction per submitted message (pipelined
 * when the server offers it, RFC 2920), and one final result for every
 * recipient.
 *
 * Reading order: the state enum and structures; results and failure
 * paths; the command queue; the transaction; the negotiation (greeting,
 * EHLO, STARTTLS, TLS); reply dispatch; the input and output paths; the
 * public API.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "address_int.h"
#include "buf_int.h"
#include "canon_int.h"
#include "config_int.h"
#include "mime7bit_int.h"
#include "names_int.h"
#include "reply_int.h"
#include "session_int.h"
#include "tls_int.h"

/* Stop pulling the body while this much output is waiting for the socket:
 * a 100 MB message never sits in memory. */
#define OUT_HIGH_WATER (64 * 1024)
/* The body is pulled from the host in chunks of this size; a fourth of
 * it when converting to 7-bit, which may write four bytes for one. */
#define BODY_CHUNK (16 * 1024)
/* Once drained outside a body, an output buffer larger than this is
 * released: a large message must not leave ~128 KiB on every cached idle
 * connection, while the few KiB a small message needs stay for the next
 * one without another allocation. */
#define IDLE_BUF_MAX (16 * 1024)
/* RFC 5321 4.5.3.2.2 and 4.5.3.2.3: DATA initiation 2 min, data block 3
 * min.  The `data` timeout bounds them too, but cannot raise them. */
#define DATA_INIT_MAX_MS (2u * 60 * 1000)
#define DATA_BLOCK_MAX_MS (3u * 60 * 1000)

struct smtpout_callbacks {
  smtpout_read_body_callback read_body;
  smtpout_on_result_callback on_result;
  smtpout_on_message_done_callback on_message_done;
  smtpout_on_tls_callback on_tls;
  smtpout_on_trace_callback on_trace;
};

/* The connection, as a state machine.  advance() moves it forward when
 * nothing is outstanding; on_reply() when a reply arrives. */
enum state {
  ST_INIT,        /* created; the host has not connected yet */
  ST_GREETING,    /* waiting for the 220 greeting */
  ST_EHLO,        /* EHLO sent */
  ST_HELO,        /* HELO sent, after EHLO was refused */
  ST_STARTTLS,    /* STARTTLS sent (alone: never pipelined) */
  ST_HANDSHAKE,   /* TLS handshake running */
  ST_READY,       /* greeted and secured as the policy says; idle */
  ST_TRANSACTION, /* a message's commands and replies are in flight */
  ST_BODY,        /* writing a message's data */
  ST_QUIT,        /* QUIT sent; results are final */
  ST_DONE         /* over: nothing more will be read */
};

/* What each outstanding reply answers. */
enum cmd {
  CMD_GREETING,
  CMD_EHLO,
  CMD_HELO,
  CMD_STARTTLS,
  CMD_RSET,
  CMD_MAIL,
  CMD_RCPT,
  CMD_DATA,
  CMD_DOT,
  CMD_QUIT
};

static const char *const cmd_names[] = {
  [CMD_GREETING] = "greeting", [CMD_EHLO] = "EHLO",
  [CMD_HELO] = "HELO",         [CMD_STARTTLS] = "STARTTLS",
  [CMD_RSET] = "RSET",         [CMD_MAIL] = "MAIL FROM",
  [CMD_RCPT] = "RCPT TO",      [CMD_DATA] = "DATA",
  [CMD_DOT] = "end of data",   [CMD_QUIT] = "QUIT",
};

struct expect {
  unsigned char cmd;
  size_t rcpt; /* CMD_RCPT: which recipient */
  /* The count of bytes written (smtpout_session.written) once this
   * command has left; SENT_UNKNOWN while it waits in `out` for TLS to
   * encrypt it.  A reply that comes earlier answers nothing we sent. */
  uint64_t sent_at;
};
#define SENT_UNKNOWN UINT64_MAX

/* Where a transaction stands in sending its commands. */
enum txn_pos { TXN_RSET, TXN_MAIL, TXN_RCPT, TXN_DATA, TXN_WAIT, TXN_END };

enum rcpt_state { RCPT_PENDING, RCPT_ACCEPTED, RCPT_FINAL };

/* How a message's body goes on the wire, decided before its MAIL. */
enum body_mode {
  BODY_RAW,       /* as it is: the server takes 8-bit data, or needs none */
  BODY_7BIT_ONLY, /* not flagged 8-bit: any 8-bit byte stops the data */
  BODY_CONVERT    /* flagged 8-bit, for a server without 8BITMIME */
};

struct rcpt {
  char *addr;
  unsigned char state;
};

struct message {
  struct message *next;
  int id;
  char *sender;
  struct rcpt *rcpts;
  size_t nrcpts;
  size_t naccepted;
  uint64_t size;
  uint32_t flags;
  int starttls;             /* this message's own policy */
  int allow_invalid_certs;
  unsigned char body_mode;  /* enum body_mode */
  unsigned char mail_ok;    /* MAIL FROM accepted */
  /* The end of data is in the output and no reply to it has arrived: if
   * the connection is lost now, the message may have been delivered. */
  unsigned char dot_queued;
};

struct smtpout_session {
  enum state state;
  smtpout_callbacks cb;
  void *user_data;
  smtpout_config *config;

  char mx[NAME_MAX_LEN];    /* normalised MX name or canonical IP */
  int mx_is_ip;
  char helo[NAME_MAX_LEN + 2];
  char *ca_file;            /* per-session trust override */
  int tls_resume;           /* smtpout_session_set_tls_resumption() */
  uint32_t timeouts[SMTPOUT_TIMEOUT_COUNT];

  /* Policy: fixed at the first EHLO reply, or by the host. */
  int policy_fixed;
  int policy_override;
  int starttls;
  int allow_invalid_certs;
  int plaintext_fallback;

  uint32_t caps;
  uint32_t caps_pending; /* collected while an EHLO reply is parsed */
  uint64_t max_size;
  uint64_t max_size_pending;

  struct tls_conn *tls;
  int tls_active;
  struct smtpout_tls_info tls_info;

  struct reply_parser rp;
  struct buf out;  /* plaintext: the wire before TLS, TLS input after */
  struct buf wire; /* ciphertext for the socket once TLS is started */
  const struct buf *peeked;
  size_t peeked_len;
  uint64_t written; /* bytes the host has written (consumed), in all */

  struct expect *exp;
  size_t exp_head, exp_tail, exp_cap;

  struct message *msgs; /* FIFO; the head is the one in a transaction */
  struct message *msgs_tail;
  struct message *cur;
  enum txn_pos txn_pos;
  size_t txn_rcpt;      /* the next recipient to send RCPT for */
  int need_rset;
  struct canon canon;
  struct mime7 *mime;   /* the 7-bit conversion of a BODY_CONVERT body */
  int body_blocked;
  uint8_t *body_chunk;

  uint64_t now;
  uint64_t deadline;
  int quit_requested;
  /* Inside a public I/O call, hence inside any callback it runs: defer
   * advance(), and refuse the I/O calls a callback must not make. */
  int busy;
  /* smtpout_session_free() was called from a callback: the outermost call
   * frees the session on its way out (leave()). */
  int free_requested;
  int next_id;
  int error;
  char error_text[REPLY_TEXT_MAX + 128];
};

static void advance(smtpout_session *s);
static void txn_step(smtpout_session *s);

/* ------------------------------------------------------------------ */
/* Tracing                                                              */

static void trace(smtpout_session *s, int dir, const char *line, size_t len)
{
  if (s->cb.on_trace)
    s->cb.on_trace(s, dir, line, len, s->user_data);
}

static void note(smtpout_session *s, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));
static void note(smtpout_session *s, const char *fmt, ...)
{
  if (s->cb.on_trace == NULL)
    return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  trace(s, SMTPOUT_TRACE_INFO, line,
        (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* ------------------------------------------------------------------ */
/* Results                                                              */

static int status_of_code(int code)
{
  return code / 100 == 2 ? SMTPOUT_STATUS_DELIVERED
         : code / 100 == 5 ? SMTPOUT_STATUS_BOUNCED
                           : SMTPOUT_STATUS_DEFERRED;
}

/* Copies src into dst (size bytes), truncating; cheaper than a "%s"
 * format for the few hundred bytes of every result. */
static void copy_str(char *dst, size_t size, const char *src)
{
  size_t n = strnlen(src, size - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* Gives recipient i of m its one final result. */
static void report(smtpout_session *s, struct message *m, size_t i,
                   int status, int code, const char *enhanced,
                   const char *text, int possibly, int connection_level)
{
  struct rcpt *r = &m->rcpts[i];
  if (r->state == RCPT_FINAL)
    return;
  if (r->state == RCPT_ACCEPTED)
    m->naccepted--;
  r->state = RCPT_FINAL;

  struct smtpout_result res;
  res.message_id = m->id;
  res.index = i;
  res.recipient = r->addr;
  res.status = status;
  res.code = code;
  copy_str(res.enhanced, sizeof(res.enhanced), enhanced);
  copy_str(res.text, sizeof(res.text), text);
  res.possibly_delivered = possibly;
  res.connection_level = connection_level;
  if (s->cb.on_result)
    s->cb.on_result(s, &res, s->user_data);
}

static void report_reply(smtpout_session *s, struct message *m, size_t i,
                         const struct reply *r)
{
  report(s, m, i, status_of_code(r->code), r->code, r->enhanced, r->text, 0,
         0);
}

static void message_free(struct message *m)
{
  for (size_t i = 0; i < m->nrcpts; i++)
    free(m->rcpts[i].addr);
  free(m->rcpts);
  free(m->sender);
  free(m);
}

/* Removes the head message (all its recipients are final) and tells the
 * host. */
static void message_pop(smtpout_session *s)
{
  struct message *m = s->msgs;
  s->msgs = m->next;
  if (s->msgs == NULL)
    s->msgs_tail = NULL;
  if (s->cur == m)
    s->cur = NULL;
  int id = m->id;
  message_free(m);
  if (s->cb.on_message_done)
    s->cb.on_message_done(s, id, s->user_data);
}

static int exp_pending(const smtpout_session *s);

/* The QUIT command line, as send_cmd() writes it. */
#define QUIT_LINE "QUIT\r\n"

/* True when a QUIT was sent behind the end of data of a message that has
 * no reply yet: with messages queued, QUIT is otherwise never sent (see
 * advance() and give_up(), which report every message first). */
static int quit_behind_dot(const smtpout_session *s)
{
  return s->msgs != NULL && exp_pending(s) &&
         s->exp[s->exp_tail - 1].cmd == CMD_QUIT;
}

/* Every recipient without a result, in every queued message, gets this
 * one; then the messages go.  The caller has set the state first, so that
 * submissions from the callbacks are refused. */
static void defer_all(smtpout_session *s, int code, const char *enhanced,
                      const char *text)
{
  /* Only when every byte up to the end of data has left the buffers can
   * the server have seen the dot: then a lost reply means the message may
   * have been delivered (RFC 5321 6.1 duplicate risk), and we say so.  A
   * QUIT pipelined behind the dot (body_fill) may still wait there; under
   * TLS it shares the dot's record, so this errs towards "possibly". */
  size_t behind = quit_behind_dot(s) ? sizeof(QUIT_LINE) - 1 : 0;
  int dot_out = buf_len(&s->out) + buf_len(&s->wire) <= behind;
  while (s->msgs) {
    struct message *m = s->msgs;
    for (size_t i = 0; i < m->nrcpts; i++) {
      int possibly = m->dot_queued && dot_out &&
                     m->rcpts[i].state == RCPT_ACCEPTED;
      report(s, m, i, SMTPOUT_STATUS_DEFERRED, code, enhanced, text, possibly,
             1);
    }
    message_pop(s);
  }
}

static void set_error(smtpout_session *s, int error, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));
static void set_error(smtpout_session *s, int error, const char *fmt, ...)
{
  if (s->error != 0)
    return; /* the first cause is the one worth reporting */
  s->error = error;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->error_text, sizeof(s->error_text), fmt, ap);
  va_end(ap);
  note(s, "%s", s->error_text);
}

/*
 * The connection is unusable (timeout, lost, protocol violation, TLS
 * failure, 421): drop it without another command.  Undecided recipients
 * are deferred with `code` (the server's 421, or 0) and the error text.
 */
static void fail(smtpout_session *s, int code, const char *enhanced)
{
  if (s->state == ST_DONE)
    return;
  s->state = ST_DONE;
  s->deadline = SMTPOUT_NO_EXPIRY;
  defer_all(s, code, enhanced, s->error_text);
  buf_clear(&s->out);
  buf_clear(&s->wire);
}

/* ------------------------------------------------------------------ */
/* The command queue                                                    */

static int exp_pending(const smtpout_session *s)
{
  return s->exp_tail > s->exp_head;
}

static const struct expect *exp_head(const smtpout_session *s)
{
  return exp_pending(s) ? &s->exp[s->exp_head] : NULL;
}

/* The longest stall allowed while the body is written. */
static uint32_t data_block_timeout(const smtpout_session *s)
{
  uint32_t t = s->timeouts[SMTPOUT_TIMEOUT_DATA];
  return t < DATA_BLOCK_MAX_MS ? t : DATA_BLOCK_MAX_MS;
}

static uint32_t timeout_for(const smtpout_session *s, enum cmd c)
{
  uint32_t data = s->timeouts[SMTPOUT_TIMEOUT_DATA];
  switch (c) {
  case CMD_GREETING: return s->timeouts[SMTPOUT_TIMEOUT_GREETING];
  case CMD_MAIL:
  case CMD_RSET: return s->timeouts[SMTPOUT_TIMEOUT_MAIL_FROM];
  case CMD_RCPT: return s->timeouts[SMTPOUT_TIMEOUT_RCPT_TO];
  case CMD_DATA: return data < DATA_INIT_MAX_MS ? data : DATA_INIT_MAX_MS;
  case CMD_DOT: return data;
  default: return s->timeouts[SMTPOUT_TIMEOUT_EHLO];
  }
}

/* Arms the deadline for the reply now at the head of the queue: each
 * timeout bounds the whole wait for one reply, counted from when the
 * previous one arrived (or the command was queued), never reset by
 * partial input. */
static void arm_head_deadline(smtpout_session *s)
{
  const struct expect *e = exp_head(s);
  s->deadline =
      e ? s->now + timeout_for(s, (enum cmd)e->cmd) : SMTPOUT_NO_EXPIRY;
}

static int exp_push(smtpout_session *s, enum cmd c, size_t rcpt)
{
  if (s->exp_tail == s->exp_cap) {
    if (s->exp_head > 0) {
      memmove(s->exp, s->exp + s->exp_head,
              (s->exp_tail - s->exp_head) * sizeof(*s->exp));
      s->exp_tail -= s->exp_head;
      s->exp_head = 0;
    } else {
      size_t cap = s->exp_cap ? s->exp_cap * 2 : 8;
      struct expect *e = realloc(s->exp, cap * sizeof(*e));
      if (e == NULL)
        return SMTPOUT_ERR_NOMEM;
      s->exp = e;
      s->exp_cap = cap;
    }
  }
  int was_empty = !exp_pending(s);
  s->exp[s->exp_tail].cmd = (unsigned char)c;
  s->exp[s->exp_tail].rcpt = rcpt;
  /* The command's bytes were just queued: in clear text they end at the
   * end of `out`; under TLS only the next peek knows (exp_place). */
  s->exp[s->exp_tail].sent_at =
      s->tls ? SENT_UNKNOWN : s->written + buf_len(&s->out);
  s->exp_tail++;
  if (was_empty)
    arm_head_deadline(s);
  return 0;
}

/* `out` has just been encrypted into `wire`: the commands it held end at
 * the end of `wire`.  Unknown ones are always the newest. */
static void exp_place(smtpout_session *s)
{
  for (size_t i = s->exp_tail; i > s->exp_head; i--) {
    if (s->exp[i - 1].sent_at != SENT_UNKNOWN)
      break;
    s->exp[i - 1].sent_at = s->written + buf_len(&s->wire);
  }
}

static void exp_pop(smtpout_session *s)
{
  s->exp_head++;
  if (s->exp_head == s->exp_tail)
    s->exp_head = s->exp_tail = 0;
  arm_head_deadline(s);
}

/* Queues one command line and the reply it expects.  A failed allocation
 * ends the connection: a command that cannot be queued cannot be half
 * sent. */
static int send_cmd(smtpout_session *s, enum cmd c, size_t rcpt,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int send_cmd(smtpout_session *s, enum cmd c, size_t rcpt,
                    const char *fmt, ...)
{
  char line[600];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof(line) - 2) {
    set_error(s, SMTPOUT_ERR_INVALID_ARGUMENT, "command line too long");
    fail(s, 0, "4.3.0");
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  }
  trace(s, SMTPOUT_TRACE_SENT, line, (size_t)n);
  line[n++] = '\r';
  line[n++] = '\n';
  if (buf_append(&s->out, line, (size_t)n) != 0 || exp_push(s, c, rcpt) != 0) {
    set_error(s, SMTPOUT_ERR_NOMEM, "out of memory");
    fail(s, 0, "4.3.0");
    return SMTPOUT_ERR_NOMEM;
  }
  return 0;
}

/*
 * Stop delivering on this connection, politely: every undecided recipient
 * is deferred with `code` (0 or a 4xx) and `enhanced` (4.x.x), and may be
 * tried on another address (connection_level); QUIT goes out, over TLS if
 * TLS is up (RFC 3207 4.1 after a certificate the policy refuses).  Nothing
 * that ends a whole session bounces: see refused_session().
 */
static void give_up(smtpout_session *s, int code, const char *enhanced)
{
  if (s->state == ST_DONE || s->state == ST_QUIT)
    return;
  s->state = ST_QUIT;
  /* Pending replies belong to commands we no longer care about. */
  s->exp_head = s->exp_tail = 0;
  while (s->msgs) {
    struct message *m = s->msgs;
    for (size_t i = 0; i < m->nrcpts; i++)
      report(s, m, i, SMTPOUT_STATUS_DEFERRED, code, enhanced, s->error_text,
             0, 1);
    message_pop(s);
  }
  send_cmd(s, CMD_QUIT, 0, "QUIT");
}

/*
 * The server refused the whole session: a 4xx or 5xx greeting, or both
 * EHLO and HELO refused.  That says this server will not talk to us, not
 * that the recipients are bad, so every recipient is deferred, never
 * bounced, and the deliver driver takes them to the next address; with
 * none left they stay deferred.  Postfix does the same by default
 * (smtp_skip_5xx_greeting): one misconfigured MX of several must not bounce
 * mail another would take.  A result's codes always agree with its status,
 * so a 5xx becomes code 0 and 4.X.Y (the server's subject and detail, as
 * Postfix turns 5.X.Y into 4.X.Y; 4.0.0 without one); the reply stays in
 * the text.
 */
static void refused_session(smtpout_session *s, const struct reply *r)
{
  if (r->code / 100 == 4) {
    give_up(s, r->code, r->enhanced);
    return;
  }
  char enhanced[sizeof(r->enhanced)];
  copy_str(enhanced, sizeof(enhanced), r->enhanced[0] ? r->enhanced : "4.0.0");
  enhanced[0] = '4';
  give_up(s, 0, enhanced);
}

/* ------------------------------------------------------------------ */
/* Policy                                                               */

/* Makes (*st, *ai) the stricter of itself and (st2, ai2). */
static void policy_merge(int *st, int *ai, int st2, int ai2)
{
  if (st2 > *st)
    *st = st2;
  if (!ai2)
    *ai = 0;
}

static void message_policy(smtpout_session *s, struct message *m)
{
  int st = SMTPOUT_STARTTLS_DISABLE, ai = 1;
  for (size_t i = 0; i < m->nrcpts; i++) {
    int st2, ai2;
    /* A domain that is not a valid name (an address literal, a typo)
     * cannot match a domain rule; the MX and global rules still apply. */
    if (config_policy_lookup(s->config, address_domain(m->rcpts[i].addr),
                             s->mx, &st2, &ai2) != 0)
      config_policy_lookup(s->config, NULL, s->mx, &st2, &ai2);
    policy_merge(&st, &ai, st2, ai2);
  }
  m->starttls = st;
  m->allow_invalid_certs = ai;
}

/* Fixes the session's policy before STARTTLS is decided: the strictest of
 * the queued messages' policies (or the MX's, with none queued). */
static void policy_fix(smtpout_session *s)
{
  if (s->policy_fixed)
    return;
  s->policy_fixed = 1;
  if (s->policy_override)
    return;
  int st, ai;
  if (s->msgs == NULL) {
    config_policy_lookup(s->config, NULL, s->mx, &st, &ai);
  } else {
    st = SMTPOUT_STARTTLS_DISABLE;
    ai = 1;
    for (struct message *m = s->msgs; m; m = m->next)
      policy_merge(&st, &ai, m->starttls, m->allow_invalid_certs);
  }
  s->starttls = st;
  s->allow_invalid_certs = ai;
}

static void tls_decided(smtpout_session *s, int outcome, int tlsrpt)
{
  s->tls_info.outcome = outcome;
  s->tls_info.tlsrpt = tlsrpt;
  if (s->cb.on_tls)
    s->cb.on_tls(s, &s->tls_info, s->user_data);
}

/* ------------------------------------------------------------------ */
/* The transaction                                                      */

static int message_needs_smtputf8(const struct message *m)
{
  if (m->flags & SMTPOUT_MESSAGE_SMTPUTF8)
    return 1;
  for (size_t i = 0; i < m->nrcpts; i++)
    if (m->rcpts[i].state != RCPT_FINAL && address_is_utf8(m->rcpts[i].addr))
      return 1;
  return 0;
}

/* The transaction asks for SMTPUTF8 (RFC 6531 3.4). */
static int uses_smtputf8(const smtpout_session *s, const struct message *m)
{
  return (s->caps & SMTPOUT_CAP_SMTPUTF8) &&
         (message_needs_smtputf8(m) || address_is_utf8(m->sender));
}

/*
 * How the body goes (enum body_mode).  RFC 6152 3: 8-bit data only to a
 * server that offers 8BITMIME; RFC 6531 3.1 makes a server offering
 * SMTPUTF8 take it too.  Otherwise a message flagged 8-bit is converted,
 * and any other must be 7-bit already: flags are the host's word, and
 * the body is checked against it on the way out.
 */
static enum body_mode body_mode_for(const smtpout_session *s,
                                    const struct message *m)
{
  if ((s->caps & SMTPOUT_CAP_8BITMIME) || uses_smtputf8(s, m))
    return BODY_RAW;
  return (m->flags & SMTPOUT_MESSAGE_8BITMIME) ? BODY_CONVERT
                                               : BODY_7BIT_ONLY;
}

/*
 * Checks the server can take the message at all, before MAIL: a message
 * that needs SMTPUTF8 (RFC 6531 3.2), exceeds the announced SIZE
 * (RFC 1870), or is 8-bit, cannot be converted and meets a server
 * without 8BITMIME (RFC 6152 3, RFC 3463 5.6.3) is bounced locally, as
 * Postfix does; no command is wasted.  Returns 1 when recipients remain
 * to be tried.
 */
static int message_precheck(smtpout_session *s, struct message *m)
{
  char text[512];
  if (!(s->caps & SMTPOUT_CAP_SMTPUTF8)) {
    int whole = (m->flags & SMTPOUT_MESSAGE_SMTPUTF8) != 0;
    /* Most servers lack SMTPUTF8 and most messages do not need it: the
     * text is formatted only for a recipient that gets it. */
    text[0] = '\0';
    for (size_t i = 0; i < m->nrcpts; i++) {
      if (!whole && !address_is_utf8(m->rcpts[i].addr))
        continue;
      if (text[0] == '\0')
        snprintf(text, sizeof(text),
                 "SMTPUTF8 is required, but was not offered by host %s",
                 s->mx);
      report(s, m, i, SMTPOUT_STATUS_BOUNCED, 0, "5.6.7", text, 0, 0);
    }
  }
  if (s->max_size > 0 && m->size > s->max_size) {
    snprintf(text, sizeof(text),
             "message size %llu exceeds size limit %llu of host %s",
             (unsigned long long)m->size, (unsigned long long)s->max_size,
             s->mx);
    for (size_t i = 0; i < m->nrcpts; i++)
      report(s, m, i, SMTPOUT_STATUS_BOUNCED, 0, "5.3.4", text, 0, 0);
  }
  m->body_mode = (unsigned char)body_mode_for(s, m);
  if (m->body_mode == BODY_CONVERT &&
      (m->flags & SMTPOUT_MESSAGE_NO_7BIT_CONVERSION)) {
    snprintf(text, sizeof(text),
             "message has 8-bit data that cannot be converted to 7-bit, "
             "and host %s does not offer 8BITMIME",
             s->mx);
    for (size_t i = 0; i < m->nrcpts; i++)
      report(s, m, i, SMTPOUT_STATUS_BOUNCED, 0, "5.6.3", text, 0, 0);
  }
  for (size_t i = 0; i < m->nrcpts; i++)
    if (m->rcpts[i].state != RCPT_FINAL)
      return 1;
  return 0;
}

static void send_mail(smtpout_session *s, struct message *m)
{
  char params[96] = "";
  size_t n = 0;
  /* A converted message grows by an amount only its end will tell: no
   * size is better than a wrong one (Postfix does the same). */
  if ((s->caps & SMTPOUT_CAP_SIZE) && m->size > 0 &&
      m->body_mode != BODY_CONVERT)
    n += (size_t)snprintf(params + n, sizeof(params) - n, " SIZE=%llu",
                          (unsigned long long)m->size);
  if ((s->caps & SMTPOUT_CAP_8BITMIME) &&
      (m->flags & SMTPOUT_MESSAGE_8BITMIME))
    n += (size_t)snprintf(params + n, sizeof(params) - n, " BODY=8BITMIME");
  if (uses_smtputf8(s, m))
    snprintf(params + n, sizeof(params) - n, " SMTPUTF8");
  send_cmd(s, CMD_MAIL, 0, "MAIL FROM:<%s>%s", m->sender, params);
}

/* True while replies to the transaction's commands are due.  A QUIT sent
 * behind the end of data (body_fill) is not one of them. */
static int txn_replies_due(const smtpout_session *s)
{
  return exp_pending(s) && exp_head(s)->cmd != CMD_QUIT;
}

/* Sends whatever the transaction may send now: one command at a time
 * without PIPELINING, everything up to DATA with it (RFC 2920 3.1: DATA
 * ends a command group).  Ends the transaction when nothing is left. */
static void txn_step(smtpout_session *s)
{
  struct message *m = s->cur;
  int pipelining = (s->caps & SMTPOUT_CAP_PIPELINING) != 0;

  while (s->state == ST_TRANSACTION) {
    if (txn_replies_due(s) && (!pipelining || s->txn_pos >= TXN_WAIT))
      return;
    switch (s->txn_pos) {
    case TXN_RSET:
      s->txn_pos = TXN_MAIL;
      if (s->need_rset) {
        s->need_rset = 0;
        send_cmd(s, CMD_RSET, 0, "RSET");
      }
      break;
    case TXN_MAIL:
      s->txn_pos = TXN_RCPT;
      s->txn_rcpt = 0;
      send_mail(s, m);
      break;
    case TXN_RCPT:
      if (!pipelining && !m->mail_ok) {
        s->txn_pos = TXN_END;
        break;
      }
      while (s->txn_rcpt < m->nrcpts &&
             m->rcpts[s->txn_rcpt].state != RCPT_PENDING)
        s->txn_rcpt++;
      if (s->txn_rcpt == m->nrcpts) {
        s->txn_pos = TXN_DATA;
        break;
      }
      send_cmd(s, CMD_RCPT, s->txn_rcpt, "RCPT TO:<%s>",
               m->rcpts[s->txn_rcpt].addr);
      s->txn_rcpt++;
      break;
    case TXN_DATA:
      /* Without PIPELINING we know the outcome of every RCPT by now: no
       * DATA for a transaction without recipients (it stays open on the
       * server, hence the RSET before the next one). */
      if (!pipelining && (!m->mail_ok || m->naccepted == 0)) {
        if (m->mail_ok)
          s->need_rset = 1;
        s->txn_pos = TXN_END;
        break;
      }
      s->txn_pos = TXN_WAIT;
      send_cmd(s, CMD_DATA, 0, "DATA");
      break;
    case TXN_WAIT:
      return;
    case TXN_END: {
      if (txn_replies_due(s))
        return; /* pipelined replies still due */
      /* What may remain is a QUIT sent behind the end of data: the
       * connection is closing. */
      int closing = exp_pending(s);
      message_pop(s);
      s->state = closing ? ST_QUIT : ST_READY;
      return;
    }
    }
  }
}

/* Starts the body: the server said 354 (RFC 5321 4.1.1.4). */
static void body_start(smtpout_session *s)
{
  if (s->body_chunk == NULL) {
    s->body_chunk = malloc(BODY_CHUNK);
    if (s->body_chunk == NULL) {
      set_error(s, SMTPOUT_ERR_NOMEM, "out of memory");
      fail(s, 0, "4.3.0");
      return;
    }
  }
  if (s->cur->body_mode == BODY_CONVERT) {
    if (s->mime == NULL && (s->mime = malloc(sizeof(*s->mime))) == NULL) {
      set_error(s, SMTPOUT_ERR_NOMEM, "out of memory");
      fail(s, 0, "4.3.0");
      return;
    }
    mime7_init(s->mime, 0);
    note(s, "converting message %d to 7-bit: host %s does not offer "
         "8BITMIME", s->cur->id, s->mx);
  }
  canon_init(&s->canon);
  s->body_blocked = 0;
  s->state = ST_BODY;
  s->deadline = s->now + data_block_timeout(s);
}

/*
 * The body contradicts its flags on its way to a server without 8BITMIME:
 * 8-bit data in a message not flagged 8-bit, or where the conversion
 * cannot carry it.  Nothing of it has been written, but the data cannot
 * be ended without delivering a truncated message: the connection is
 * dropped (as Postfix does on a MIME error while downgrading).  Deferred,
 * not bounced: the flags are the host's to fix, and another server may
 * take the message as it is.
 */
static void body_refused(smtpout_session *s, struct message *m,
                         const char *why)
{
  set_error(s, SMTPOUT_ERR_CONTENT,
            "message %d: %s, and host %s does not offer 8BITMIME: "
            "connection dropped before the end of data",
            m->id, why, s->mx);
  fail(s, 0, "4.6.3");
}

/* Queues `nread` bytes of body as data (ending it at eof).  Returns 0, or
 * -1 when the connection failed. */
static int body_encode(smtpout_session *s, struct message *m, size_t nread,
                       int eof)
{
  int convert = m->body_mode == BODY_CONVERT;
  if (m->body_mode == BODY_7BIT_ONLY &&
      mime7_has_8bit(s->body_chunk, nread)) {
    body_refused(s, m, "8-bit data in a message not flagged 8BITMIME");
    return -1;
  }
  uint8_t *o = buf_reserve(&s->out,
                           convert ? mime7_bound(nread) + MIME7_FINISH_MAX
                                   : canon_bound(nread) + CANON_FINISH_MAX);
  if (o == NULL) {
    set_error(s, SMTPOUT_ERR_NOMEM, "out of memory");
    fail(s, 0, "4.3.0");
    return -1;
  }
  size_t n;
  if (convert) {
    n = mime7_encode(s->mime, s->body_chunk, nread, o);
    if (eof)
      n += mime7_finish(s->mime, o + n);
    if (s->mime->error != MIME7_OK) {
      body_refused(s, m, mime7_error_text(s->mime->error));
      return -1; /* nothing of this chunk is committed */
    }
  } else {
    n = canon_encode(&s->canon, s->body_chunk, nread, o);
    if (eof)
      n += canon_finish(&s->canon, o + n);
  }
  buf_commit(&s->out, n);
  return 0;
}

/* Pulls body from the host while the output has room. */
static void body_fill(smtpout_session *s)
{
  struct message *m = s->cur;
  size_t chunk = m->body_mode == BODY_CONVERT ? BODY_CHUNK / 4 : BODY_CHUNK;
  while (s->state == ST_BODY && !s->body_blocked &&
         buf_len(&s->out) + buf_len(&s->wire) < OUT_HIGH_WATER) {
    size_t nread = 0;
    int eof = 0;
    int rv = s->cb.read_body ? s->cb.read_body(s, m->id, s->body_chunk,
                                               chunk, &nread, &eof,
                                               s->user_data)
                             : SMTPOUT_ERR_CALLBACK_FAILURE;
    /* No bytes and no end is "nothing now", whatever the callback
     * returned: asking again at once would spin here forever, and no
     * deadline could ever fire.  The host calls
     * smtpout_session_resume_body(); the data-block timeout bounds the
     * wait. */
    if (rv == SMTPOUT_ERR_WOULDBLOCK || (rv == 0 && nread == 0 && !eof)) {
      s->body_blocked = 1;
      return;
    }
    if (rv != 0 || nread > chunk) {
      /* The data cannot be ended without delivering a truncated message,
       * so the connection is dropped instead. */
      set_error(s, SMTPOUT_ERR_CALLBACK_FAILURE,
                "local error reading the message body");
      fail(s, 0, "4.3.0");
      return;
    }
    if (body_encode(s, m, nread, eof) != 0)
      return;
    if (eof) {
      /* An idle connection holds no body buffer. */
      free(s->body_chunk);
      s->body_chunk = NULL;
      free(s->mime);
      s->mime = NULL;
      m->dot_queued = 1;
      s->state = ST_TRANSACTION;
      exp_push(s, CMD_DOT, 0);
      /* RFC 2920 3.1: message content may open a command group and QUIT
       * may close one.  When the host has asked to quit and no other
       * message waits, QUIT leaves with the end of data, saving the
       * connection a round trip, as Postfix does. */
      if ((s->caps & SMTPOUT_CAP_PIPELINING) && s->quit_requested &&
          m->next == NULL)
        send_cmd(s, CMD_QUIT, 0, "QUIT");
      return;
    }
    if (nread > 0)
      s->deadline = s->now + data_block_timeout(s);
  }
}

/* ------------------------------------------------------------------ */
/* Negotiation                                                          */

static void send_ehlo(smtpout_session *s)
{
  s->caps_pending = 0;
  s->max_size_pending = 0;
  s->state = ST_EHLO;
  send_cmd(s, CMD_EHLO, 0, "EHLO %s", s->helo);
}

/* Records one EHLO keyword line (RFC 5321 4.1.1.1; keywords are
 * case-insensitive). */
static void ehlo_keyword(smtpout_session *s, const uint8_t *t, size_t n)
{
  static const struct {
    const char *kw;
    uint32_t cap;
  } kws[] = {
    {"PIPELINING", SMTPOUT_CAP_PIPELINING},
    {"SIZE", SMTPOUT_CAP_SIZE},
    {"8BITMIME", SMTPOUT_CAP_8BITMIME},
    {"SMTPUTF8", SMTPOUT_CAP_SMTPUTF8},
    {"ENHANCEDSTATUSCODES", SMTPOUT_CAP_ENHANCEDSTATUSCODES},
    {"STARTTLS", SMTPOUT_CAP_STARTTLS},
    {"CHUNKING", SMTPOUT_CAP_CHUNKING},
    {"DSN", SMTPOUT_CAP_DSN},
    {"AUTH", SMTPOUT_CAP_AUTH},
  };
  size_t kl = 0;
  while (kl < n && t[kl] != ' ' && t[kl] != '=')
    kl++;
  for (size_t i = 0; i < sizeof(kws) / sizeof(kws[0]); i++) {
    if (strlen(kws[i].kw) != kl || strncasecmp((const char *)t, kws[i].kw, kl))
      continue;
    s->caps_pending |= kws[i].cap;
    if (kws[i].cap == SMTPOUT_CAP_SIZE && kl < n) {
      /* "SIZE 35882577"; "SIZE" or "SIZE 0" mean no fixed limit. */
      uint64_t v = 0;
      for (size_t j = kl + 1; j < n && t[j] >= '0' && t[j] <= '9'; j++) {
        if (v > (UINT64_MAX - 9) / 10)
          break;
        v = v * 10 + (uint64_t)(t[j] - '0');
      }
      s->max_size_pending = v;
    }
    return;
  }
}

/* The server is greeted (EHLO or HELO answered 2xx).  Before TLS this is
 * where the policy is fixed and STARTTLS decided (DESIGN section 3). */
static void greeted(smtpout_session *s, uint32_t caps, uint64_t max_size)
{
  s->caps = caps;
  s->max_size = max_size;
  if (s->tls_active) {
    /* A STARTTLS advertised again after TLS is ignored: the state is
     * ST_READY, and only the path below ever sends STARTTLS. */
    s->state = ST_READY;
    return;
  }
  policy_fix(s);
  if (s->plaintext_fallback) {
    s->tls_info.plaintext_fallback = 1;
    if (s->starttls != SMTPOUT_STARTTLS_OPTIONAL) {
      set_error(s, SMTPOUT_ERR_TLS_POLICY,
                "plaintext fallback refused: the policy for %s is not "
                "optional",
                s->mx);
      tls_decided(s, SMTPOUT_TLS_OUTCOME_DISABLED, TLSRPT_NONE);
      give_up(s, 0, "4.7.5");
      return;
    }
    s->state = ST_READY;
    tls_decided(s, SMTPOUT_TLS_OUTCOME_DISABLED, TLSRPT_NONE);
    return;
  }
  if (s->starttls == SMTPOUT_STARTTLS_DISABLE) {
    s->state = ST_READY;
    tls_decided(s, SMTPOUT_TLS_OUTCOME_DISABLED, TLSRPT_NONE);
    return;
  }
  if (caps & SMTPOUT_CAP_STARTTLS) {
    /* Sent alone: nothing may follow STARTTLS before its reply. */
    s->state = ST_STARTTLS;
    send_cmd(s, CMD_STARTTLS, 0, "STARTTLS");
    return;
  }
  if (s->starttls == SMTPOUT_STARTTLS_OPTIONAL) {
    s->state = ST_READY;
    tls_decided(s, SMTPOUT_TLS_OUTCOME_NOT_OFFERED,
                TLSRPT_STARTTLS_NOT_SUPPORTED);
    return;
  }
  set_error(s, SMTPOUT_ERR_TLS_POLICY,
            "TLS is required, but was not offered by host %s", s->mx);
  tls_decided(s, SMTPOUT_TLS_OUTCOME_NOT_OFFERED,
              TLSRPT_STARTTLS_NOT_SUPPORTED);
  give_up(s, 0, "4.7.4");
}

static int tls_creds_for(smtpout_session *s, struct tls_creds **creds)
{
  if (s->ca_file)
    return tls_creds_new(creds, s->ca_file);
  return tls_cache_get(config_tls_cache(s->config),
                       smtpout_config_ca_file(s->config), creds);
}

/* The server said 220 to STARTTLS: start the handshake. */
static void tls_start(smtpout_session *s)
{
  struct tls_creds *creds = NULL;
  int rv = tls_creds_for(s, &creds);
  if (rv == 0) {
    /* Tickets in the configuration's cache were verified against its
     * trust anchors: a session with anchors of its own takes none and
     * gives none. */
    rv = tls_conn_new(&s->tls, creds, config_tls_cache(s->config),
                      smtpout_config_tls_priority(s->config),
                      s->mx_is_ip ? NULL : s->mx,
                      s->tls_resume && s->ca_file == NULL, &s->wire);
    tls_creds_unref(creds);
  }
  if (rv != 0) {
    set_error(s, SMTPOUT_ERR_TLS_SETUP,
              "TLS setup failed (trust anchors or priority string): %s",
              smtpout_strerror(rv));
    fail(s, 0, "4.7.0");
    return;
  }
  /* Clear text still queued (the tail of "STARTTLS\r\n" when the server
   * answered before we finished writing it) precedes the ClientHello. */
  if (buf_len(&s->out) > 0) {
    if (buf_append(&s->wire, buf_head(&s->out), buf_len(&s->out)) != 0) {
      set_error(s, SMTPOUT_ERR_NOMEM, "out of memory");
      fail(s, 0, "4.3.0");
      return;
    }
    buf_clear(&s->out);
  }
  /* RFC 3207 4.2: the protocol restarts from scratch over TLS. */
  s->caps = 0;
  s->max_size = 0;
  s->state = ST_HANDSHAKE;
  s->deadline = s->now + s->timeouts[SMTPOUT_TIMEOUT_TLS];
  note(s, "starting TLS (SNI %s)", s->mx_is_ip ? "none" : s->mx);
}

/* The handshake failed (`error` and `why` say how), or the connection
 * ended during it.  No certificate was judged, so verify_error stays
 * empty: the failure is the session's error text. */
static void handshake_failed(smtpout_session *s, int error, const char *why)
{
  /* A failed handshake leaves the connection in an unknown state: it is
   * dropped.  Under optional the host may retry without STARTTLS on a new
   * connection (never this one); under require never. */
  s->tls_info.fallback_permitted = s->starttls == SMTPOUT_STARTTLS_OPTIONAL;
  set_error(s, error, "TLS handshake with host %s failed: %s", s->mx, why);
  tls_decided(s, SMTPOUT_TLS_OUTCOME_HANDSHAKE_FAILED,
              TLSRPT_VALIDATION_FAILURE);
  /* Every handshake failure is 4.7.5, a timeout included (DESIGN 3). */
  fail(s, 0, "4.7.5");
}

/* The connection ends while STARTTLS waits for its reply (a malformed
 * reply, a timeout, a close): the server did not start TLS, which RFC 8460
 * 4.3.1 calls starttls-not-supported, as any answer but 220. */
static void starttls_unanswered(smtpout_session *s)
{
  if (s->state == ST_STARTTLS)
    tls_decided(s, SMTPOUT_TLS_OUTCOME_REFUSED,
                TLSRPT_STARTTLS_NOT_SUPPORTED);
}

/* The handshake is complete: judge the certificate, then EHLO again. */
static void handshake_done(smtpout_session *s)
{
  struct smtpout_tls_info *ti = &s->tls_info;
  s->tls_active = 1;
  ti->used = 1;
  ti->resumed = tls_conn_resumed(s->tls);
  snprintf(ti->version, sizeof(ti->version), "%s",
           tls_conn_version(s->tls) ? tls_conn_version(s->tls) : "");
  snprintf(ti->cipher, sizeof(ti->cipher), "%s",
           tls_conn_cipher(s->tls) ? tls_conn_cipher(s->tls) : "");
  int tlsrpt = TLSRPT_NONE;
  /* The reference identity is the MX host name, never the recipient
   * domain and never an IP literal. */
  ti->verified = tls_conn_verify(s->tls, s->mx_is_ip ? NULL : s->mx, &tlsrpt,
                                 ti->verify_error, sizeof(ti->verify_error));
  note(s, "TLS established%s: %s %s, certificate %s%s%s",
       ti->resumed ? " (resumed)" : "", ti->version, ti->cipher,
       ti->verified ? "verified" : "NOT verified", ti->verified ? "" : ": ",
       ti->verified ? "" : ti->verify_error);
  if (!ti->verified && !s->allow_invalid_certs) {
    set_error(s, SMTPOUT_ERR_TLS_POLICY,
              "server certificate not verified: %s", ti->verify_error);
    tls_decided(s, SMTPOUT_TLS_OUTCOME_OK, tlsrpt);
    give_up(s, 0, "4.7.5");
    return;
  }
  tls_decided(s, SMTPOUT_TLS_OUTCOME_OK, tlsrpt);
  send_ehlo(s);
}

/* ------------------------------------------------------------------ */
/* Replies                                                              */

/* A reply with no command outstanding, or a 421 to anything: the server
 * is closing (RFC 5321 3.8), or speaking out of turn. */
static void on_unexpected(smtpout_session *s, const struct reply *r)
{
  const struct expect *e = exp_head(s);
  if (r->code == 421) {
    set_error(s, SMTPOUT_ERR_SERVICE_UNAVAILABLE,
              "host %s closed the session: %d %s", s->mx, r->code, r->text);
    if (e && e->cmd == CMD_STARTTLS)
      /* The server did not start TLS: RFC 8460 4.3.1, as any answer to
       * STARTTLS but 220. */
      tls_decided(s, SMTPOUT_TLS_OUTCOME_REFUSED,
                  TLSRPT_STARTTLS_NOT_SUPPORTED);
    if (e && e->cmd == CMD_DOT && e->sent_at <= s->written && s->cur)
      /* A 421 in the place of the reply to an end of data the server has
       * read is that reply: it refused the message (RFC 5321 3.8).  A
       * reply came, so the message is deferred, not "possibly
       * delivered", and the deliver driver may take it to another
       * address. */
      s->cur->dot_queued = 0;
    /* The reply parser keeps an enhanced code only of the reply's class:
     * a 421 carries a 4.x.x or none. */
    fail(s, r->code, r->enhanced[0] ? r->enhanced : "4.3.2");
    return;
  }
  if (s->state == ST_BODY) {
    /* RFC 5321 4.1.1.4: the server replies once the data has ended.  A
     * reply before that answers nothing we sent, whatever its code (a 250
     * here must never read as a delivery, nor a 5xx as a bounce): a
     * protocol error, and the connection cannot go on. */
    set_error(s, SMTPOUT_ERR_PROTOCOL,
              "host %s replied while the message data was being sent: %d %s",
              s->mx, r->code, r->text);
    fail(s, 0, "4.5.0");
    return;
  }
  set_error(s, SMTPOUT_ERR_PROTOCOL, "unexpected reply from host %s: %d %s",
            s->mx, r->code, r->text);
  fail(s, 0, "4.5.0");
}

static void protocol_error(smtpout_session *s, enum cmd c,
                           const struct reply *r)
{
  set_error(s, SMTPOUT_ERR_PROTOCOL, "unexpected reply to %s from host %s: "
            "%d %s", cmd_names[c], s->mx, r->code, r->text);
  fail(s, 0, "4.5.0");
}

static void on_reply(smtpout_session *s, const struct reply *r)
{
  const struct expect *e = exp_head(s);
  if (e == NULL || (r->code == 421 && e->cmd != CMD_QUIT)) {
    on_unexpected(s, r);
    return;
  }
  enum cmd c = (enum cmd)e->cmd;
  size_t ri = e->rcpt;
  if (e->sent_at > s->written) {
    /* The server cannot have read a command the host has not written
     * yet (a reply pipelined ahead of its command, an unsolicited one):
     * taking it would shift every later reply, and a 2xx "to" an end of
     * data still in our buffers would report a message delivered before
     * it left. */
    set_error(s, SMTPOUT_ERR_PROTOCOL, "host %s replied to %s before it was "
              "sent: %d %s", s->mx, cmd_names[c], r->code, r->text);
    fail(s, 0, "4.5.0");
    return;
  }
  exp_pop(s);
  int klass = r->code / 100;
  struct message *m = s->cur;

  switch (c) {
  case CMD_GREETING:
    if (r->code == 220) {
      send_ehlo(s);
    } else if (klass == 4 || klass == 5) {
      set_error(s, SMTPOUT_ERR_SERVICE_UNAVAILABLE,
                "host %s refused service: %d %s", s->mx, r->code, r->text);
      refused_session(s, r);
    } else {
      protocol_error(s, c, r);
    }
    break;

  case CMD_EHLO:
    if (klass == 2) {
      greeted(s, s->caps_pending, s->max_size_pending);
    } else if (klass == 5) {
      /* RFC 5321 4.1.4: a server that does not know EHLO gets HELO. */
      s->state = ST_HELO;
      send_cmd(s, CMD_HELO, 0, "HELO %s", s->helo);
    } else if (klass == 4) {
      set_error(s, SMTPOUT_ERR_SERVICE_UNAVAILABLE,
                "host %s refused EHLO: %d %s", s->mx, r->code, r->text);
      refused_session(s, r);
    } else {
      protocol_error(s, c, r);
    }
    break;

  case CMD_HELO:
    if (klass == 2) {
      greeted(s, 0, 0);
    } else if (klass == 4 || klass == 5) {
      set_error(s, SMTPOUT_ERR_SERVICE_UNAVAILABLE,
                "host %s refused HELO: %d %s", s->mx, r->code, r->text);
      refused_session(s, r);
    } else {
      protocol_error(s, c, r);
    }
    break;

  case CMD_STARTTLS:
    if (r->code == 220) {
      tls_start(s);
    } else if (klass == 4 || klass == 5) {
      /* RFC 3207 4: after a refusal the client decides.  Under optional
       * we go on in plaintext on this connection; under require a
       * refusal (which a network attacker can forge) defers.  No
       * certificate was seen, so verify_error stays empty: the reply is
       * in the trace, and in the error text when it ends the session. */
      if (s->starttls == SMTPOUT_STARTTLS_OPTIONAL) {
        note(s, "host %s refused STARTTLS (%d); going on without TLS, as "
             "the policy permits", s->mx, r->code);
        s->state = ST_READY;
        tls_decided(s, SMTPOUT_TLS_OUTCOME_REFUSED,
                    TLSRPT_STARTTLS_NOT_SUPPORTED);
      } else {
        set_error(s, SMTPOUT_ERR_TLS_POLICY,
                  "TLS is required, but host %s refused to start TLS: %d %s",
                  s->mx, r->code, r->text);
        tls_decided(s, SMTPOUT_TLS_OUTCOME_REFUSED,
                    TLSRPT_STARTTLS_NOT_SUPPORTED);
        give_up(s, 0, "4.7.4");
      }
    } else {
      /* Anything else (a 3xx, a 2xx other than 220) is never taken as a
       * go-ahead, in any mode.  Whatever the server meant, it did not
       * start TLS: starttls-not-supported (RFC 8460 4.3.1), like every
       * answer to STARTTLS but 220. */
      tls_decided(s, SMTPOUT_TLS_OUTCOME_REFUSED,
                  TLSRPT_STARTTLS_NOT_SUPPORTED);
      protocol_error(s, c, r);
    }
    break;

  case CMD_RSET:
    if (klass != 2) {
      /* RFC 5321 4.1.1.5: RSET cannot fail.  A 4xx keeps its codes; any
       * other reply is a protocol error, deferred 4.5.0 (a deferral never
       * carries a 5xx code). */
      set_error(s, SMTPOUT_ERR_PROTOCOL, "host %s refused RSET: %d %s",
                s->mx, r->code, r->text);
      if (klass == 4)
        give_up(s, r->code, r->enhanced);
      else
        give_up(s, 0, "4.5.0");
      return;
    }
    txn_step(s);
    break;

  case CMD_MAIL:
    if (klass == 2) {
      m->mail_ok = 1;
    } else if (klass == 4 || klass == 5) {
      for (size_t i = 0; i < m->nrcpts; i++)
        report_reply(s, m, i, r);
    } else {
      protocol_error(s, c, r);
      return;
    }
    txn_step(s);
    break;

  case CMD_RCPT:
    if (klass != 2 && klass != 4 && klass != 5) {
      protocol_error(s, c, r);
      return;
    }
    /* After a refused MAIL the server answers RCPT with 503s that say
     * nothing about the recipient: those recipients already have the MAIL
     * reply. */
    if (m->mail_ok && m->rcpts[ri].state == RCPT_PENDING) {
      if (klass == 2) {
        m->rcpts[ri].state = RCPT_ACCEPTED;
        m->naccepted++;
      } else {
        report_reply(s, m, ri, r);
      }
    }
    txn_step(s);
    break;

  case CMD_DATA:
    if (r->code == 354) {
      if (m->mail_ok && m->naccepted > 0) {
        body_start(s);
      } else {
        /* RFC 2920 3.1: pipelined DATA accepted although every RCPT
         * failed; end it with a lone dot, delivering nothing. */
        buf_append(&s->out, ".\r\n", 3);
        trace(s, SMTPOUT_TRACE_SENT, ".", 1);
        exp_push(s, CMD_DOT, 0);
      }
      return;
    }
    if (klass != 4 && klass != 5) {
      protocol_error(s, c, r);
      return;
    }
    for (size_t i = 0; i < m->nrcpts; i++)
      if (m->rcpts[i].state == RCPT_ACCEPTED)
        report_reply(s, m, i, r);
    if (m->mail_ok)
      s->need_rset = 1;
    s->txn_pos = TXN_END;
    txn_step(s);
    break;

  case CMD_DOT:
    if (klass != 2 && klass != 4 && klass != 5) {
      protocol_error(s, c, r);
      return;
    }
    /* The only place a recipient becomes delivered: a 2xx to the end of
     * data (RFC 5321 4.1.1.4). */
    for (size_t i = 0; i < m->nrcpts; i++)
      if (m->rcpts[i].state == RCPT_ACCEPTED)
        report_reply(s, m, i, r);
    s->txn_pos = TXN_END;
    txn_step(s);
    break;

  case CMD_QUIT:
    s->state = ST_DONE;
    s->deadline = SMTPOUT_NO_EXPIRY;
    if (s->tls_active)
      tls_conn_close_notify(s->tls);
    break;
  }
}

/* ------------------------------------------------------------------ */
/* Input                                                                */

/* Parses plaintext from the server.  Returns 0, or 1 when the caller must
 * stop feeding (the connection ended or TLS starts). */
static int input_plain(smtpout_session *s, const uint8_t *p, size_t n)
{
  while (n > 0 && s->state != ST_DONE) {
    size_t used = 0;
    enum reply_event ev = reply_parse(&s->rp, p, n, &used);
    p += used;
    n -= used;
    if (ev == REPLY_MORE)
      return 0;
    if (ev == REPLY_ERROR) {
      set_error(s, SMTPOUT_ERR_PROTOCOL, "%s from host %s", s->rp.error,
                s->mx);
      starttls_unanswered(s);
      fail(s, 0, "4.5.0");
      return 1;
    }
    size_t ln;
    const uint8_t *line = reply_line_raw(&s->rp, &ln);
    trace(s, SMTPOUT_TRACE_RECEIVED, (const char *)line, ln);
    const struct expect *e = exp_head(s);
    if (e && e->cmd == CMD_EHLO && s->rp.reply.nlines > 1) {
      const uint8_t *t = reply_line_text(&s->rp, &ln);
      ehlo_keyword(s, t, ln);
    }
    if (ev == REPLY_LINE)
      continue;
    on_reply(s, &s->rp.reply);
    if (s->state == ST_HANDSHAKE) {
      /* The bytes after "220 Ready to start TLS" in the same read came in
       * clear and claim to be from inside TLS: response injection
       * (CVE-2011-0411's mirror image).  Never parse them; abort. */
      if (n > 0) {
        set_error(s, SMTPOUT_ERR_PROTOCOL,
                  "host %s sent %zu bytes of clear text after its STARTTLS "
                  "reply (response injection)",
                  s->mx, n);
        s->tls_info.fallback_permitted = 0;
        /* TLS negotiation was tampered with after the go-ahead: no
         * category of RFC 8460 4.3.1 names it, so validation-failure
         * (4.3.3), as for a failed handshake. */
        tls_decided(s, SMTPOUT_TLS_OUTCOME_HANDSHAKE_FAILED,
                    TLSRPT_VALIDATION_FAILURE);
        fail(s, 0, "4.7.5");
      }
      return 1;
    }
  }
  return 0;
}

static void input_tls(smtpout_session *s)
{
  uint8_t plain[16384];
  if (s->state == ST_HANDSHAKE) {
    int rv = tls_conn_handshake(s->tls);
    if (rv == TLS_AGAIN)
      return;
    if (rv != TLS_OK) {
      handshake_failed(s, SMTPOUT_ERR_TLS, tls_conn_error_text(s->tls));
      return;
    }
    handshake_done(s);
  }
  while (s->state != ST_DONE) {
    long n = tls_conn_read(s->tls, plain, sizeof(plain));
    if (n == TLS_AGAIN)
      return;
    if (n == TLS_EOF || n == TLS_FAILED) {
      if (s->state == ST_QUIT) {
        s->state = ST_DONE;
        s->deadline = SMTPOUT_NO_EXPIRY;
        return;
      }
      /* A TLS failure after the handshake ends the connection; nothing
       * continues in clear. */
      set_error(s, n == TLS_EOF ? SMTPOUT_ERR_CONNECTION_CLOSED
                                : SMTPOUT_ERR_TLS,
                "%s (host %s)", tls_conn_error_text(s->tls), s->mx);
      fail(s, 0, n == TLS_EOF ? "4.4.2" : "4.7.5");
      return;
    }
    input_plain(s, plain, (size_t)n);
  }
}

static void lost_connection(smtpout_session *s)
{
  switch (s->state) {
  case ST_QUIT:
  case ST_DONE:
    s->state = ST_DONE;
    s->deadline = SMTPOUT_NO_EXPIRY;
    buf_clear(&s->out);
    buf_clear(&s->wire);
    return;
  case ST_HANDSHAKE:
    handshake_failed(s, SMTPOUT_ERR_TLS, "connection closed by the server");
    return;
  default: {
    const struct expect *e = exp_head(s);
    set_error(s, SMTPOUT_ERR_CONNECTION_CLOSED,
              "connection closed by host %s %s %s", s->mx,
              e ? "while waiting for the reply to" : "during",
              e ? cmd_names[e->cmd]
                : s->state == ST_BODY ? "message data" : "an idle session");
    starttls_unanswered(s);
    fail(s, 0, "4.4.2");
  }
  }
}

/* ------------------------------------------------------------------ */
/* The driver                                                           */

/* Moves the state machine forward when nothing outstanding blocks it:
 * starts the next transaction, or QUIT once asked and idle. */
static void advance(smtpout_session *s)
{
  if (s->busy)
    return; /* the outer call advances on its way out */
  s->busy++;
  while (s->state == ST_READY) {
    if (s->msgs != NULL) {
      struct message *m = s->msgs;
      if (!message_precheck(s, m)) {
        message_pop(s);
        continue;
      }
      s->cur = m;
      s->txn_pos = TXN_RSET;
      s->state = ST_TRANSACTION;
      txn_step(s);
      continue;
    }
    if (s->quit_requested) {
      s->state = ST_QUIT;
      send_cmd(s, CMD_QUIT, 0, "QUIT");
    }
    break;
  }
  s->busy--;
}

static void session_destroy(smtpout_session *s);

/* Wraps every public entry point that can run callbacks.  Each of them
 * refuses to run while `busy` says a call is already under way: that is
 * a callback calling back in, and the state it would change is in use up
 * the stack (an abort from on_result would free the message whose
 * recipients are being reported). */
static void enter(smtpout_session *s, uint64_t now)
{
  if (now > s->now)
    s->now = now;
  s->busy++;
  /* A consume must directly follow its peek: anything in between may
   * change which buffer feeds the socket. */
  s->peeked_len = 0;
}

/* Returns 1 when the session is gone: smtpout_session_free() was called
 * from a callback, and the outermost call frees it here, once nothing up
 * the stack uses it.  The caller must not touch it then. */
static int leave(smtpout_session *s)
{
  if (--s->busy > 0)
    return 0;
  if (!s->free_requested)
    advance(s);
  if (!s->free_requested)
    return 0;
  session_destroy(s);
  return 1;
}

/* ------------------------------------------------------------------ */
/* Public API                                                           */

int smtpout_callbacks_new(smtpout_callbacks **pcallbacks)
{
  if (pcallbacks == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  *pcallbacks = calloc(1, sizeof(**pcallbacks));
  return *pcallbacks ? 0 : SMTPOUT_ERR_NOMEM;
}

void smtpout_callbacks_free(smtpout_callbacks *callbacks) { free(callbacks); }

void smtpout_callbacks_set_read_body(smtpout_callbacks *cbs,
                                     smtpout_read_body_callback cb)
{
  if (cbs)
    cbs->read_body = cb;
}

void smtpout_callbacks_set_on_result(smtpout_callbacks *cbs,
                                     smtpout_on_result_callback cb)
{
  if (cbs)
    cbs->on_result = cb;
}

void smtpout_callbacks_set_on_message_done(
    smtpout_callbacks *cbs, smtpout_on_message_done_callback cb)
{
  if (cbs)
    cbs->on_message_done = cb;
}

void smtpout_callbacks_set_on_tls(smtpout_callbacks *cbs,
                                  smtpout_on_tls_callback cb)
{
  if (cbs)
    cbs->on_tls = cb;
}

void smtpout_callbacks_set_on_trace(smtpout_callbacks *cbs,
                                    smtpout_on_trace_callback cb)
{
  if (cbs)
    cbs->on_trace = cb;
}

/* The EHLO name: the configuration's (already an A-label or a bracketed
 * address literal), else the host name if it is a valid domain name, else
 * "localhost". */
static void default_helo(smtpout_session *s)
{
  const char *cfg = smtpout_config_helo_name(s->config);
  char host[256];
  if (cfg) {
    snprintf(s->helo, sizeof(s->helo), "%s", cfg);
    return;
  }
  if (gethostname(host, sizeof(host)) == 0) {
    host[sizeof(host) - 1] = '\0';
    if (name_normalize(host, s->helo, sizeof(s->helo)) == 0)
      return;
  }
  snprintf(s->helo, sizeof(s->helo), "localhost");
}

int smtpout_session_new(smtpout_session **psession, const char *mx_host,
                        smtpout_config *config,
                        const smtpout_callbacks *callbacks, void *user_data)
{
  if (psession == NULL || mx_host == NULL || callbacks == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  smtpout_session *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return SMTPOUT_ERR_NOMEM;
  if (name_ip_literal(mx_host, s->mx, sizeof(s->mx))) {
    s->mx_is_ip = 1;
  } else {
    int rv = name_normalize(mx_host, s->mx, sizeof(s->mx));
    if (rv != 0) {
      free(s);
      return rv;
    }
  }
  if (config) {
    s->config = smtpout_config_ref(config);
  } else {
    /* A private default configuration; hosts running many sessions pass
     * one shared configuration so the trust store is loaded once. */
    int rv = smtpout_config_new(&s->config);
    if (rv != 0) {
      free(s);
      return rv;
    }
  }
  s->cb = *callbacks;
  s->user_data = user_data;
  for (int i = 0; i < SMTPOUT_TIMEOUT_COUNT; i++)
    s->timeouts[i] = smtpout_config_timeout(s->config, i);
  s->starttls = SMTPOUT_STARTTLS_OPTIONAL;
  s->state = ST_INIT;
  s->deadline = SMTPOUT_NO_EXPIRY;
  s->next_id = 1;
  reply_parser_init(&s->rp);
  default_helo(s);
  *psession = s;
  return 0;
}

void smtpout_session_free(smtpout_session *session)
{
  if (session == NULL)
    return;
  if (session->busy) {
    /* Called from a callback: the session is in use up the stack.  The
     * outermost call frees it on its way out (leave()); until then no
     * callback runs, since the host has let go of it. */
    session->free_requested = 1;
    memset(&session->cb, 0, sizeof(session->cb));
    return;
  }
  session_destroy(session);
}

static void session_destroy(smtpout_session *session)
{
  while (session->msgs) {
    struct message *m = session->msgs;
    session->msgs = m->next;
    message_free(m);
  }
  tls_conn_free(session->tls);
  buf_free(&session->out);
  buf_free(&session->wire);
  free(session->exp);
  free(session->body_chunk);
  free(session->mime);
  free(session->ca_file);
  smtpout_config_unref(session->config);
  free(session);
}

int smtpout_session_set_helo_name(smtpout_session *s, const char *name)
{
  if (s == NULL || name == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (s->state != ST_INIT)
    return SMTPOUT_ERR_INVALID_STATE;
  char ip[64];
  if (name_ip_literal(name, ip, sizeof(ip))) {
    /* RFC 5321 4.1.3 address literal. */
    snprintf(s->helo, sizeof(s->helo), strchr(ip, ':') ? "[IPv6:%s]" : "[%s]",
             ip);
    return 0;
  }
  return name_normalize(name, s->helo, sizeof(s->helo));
}

int smtpout_session_set_tls_policy(smtpout_session *s, int starttls,
                                   int allow_invalid_certs)
{
  if (s == NULL || smtpout_starttls_name(starttls) == NULL ||
      (allow_invalid_certs != 0 && allow_invalid_certs != 1))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (s->policy_fixed)
    return SMTPOUT_ERR_INVALID_STATE;
  s->policy_override = 1;
  s->starttls = starttls;
  s->allow_invalid_certs = allow_invalid_certs;
  return 0;
}

int smtpout_session_set_plaintext_fallback(smtpout_session *s)
{
  if (s == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (s->state != ST_INIT)
    return SMTPOUT_ERR_INVALID_STATE;
  s->plaintext_fallback = 1;
  return 0;
}

int smtpout_session_set_ca_file(smtpout_session *s, const char *path)
{
  if (s == NULL || path == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (s->state != ST_INIT)
    return SMTPOUT_ERR_INVALID_STATE;
  char *copy = strdup(path);
  if (copy == NULL)
    return SMTPOUT_ERR_NOMEM;
  free(s->ca_file);
  s->ca_file = copy;
  return 0;
}

int smtpout_session_set_tls_resumption(smtpout_session *s, int enable)
{
  if (s == NULL || (enable != 0 && enable != 1))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (s->state != ST_INIT)
    return SMTPOUT_ERR_INVALID_STATE;
  s->tls_resume = enable;
  return 0;
}

int smtpout_session_set_timeout(smtpout_session *s, int which, uint32_t ms)
{
  if (s == NULL || which < 0 || which >= SMTPOUT_TIMEOUT_COUNT || ms == 0)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  s->timeouts[which] = ms;
  return 0;
}

int smtpout_session_start(smtpout_session *s, uint64_t now)
{
  if (s == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (s->state != ST_INIT || s->busy)
    return SMTPOUT_ERR_INVALID_STATE;
  enter(s, now);
  s->state = ST_GREETING;
  exp_push(s, CMD_GREETING, 0);
  leave(s);
  return 0;
}

int smtpout_session_submit(smtpout_session *s, const char *sender,
                           const char *const *recipients, size_t nrecipients,
                           uint64_t size, uint32_t flags)
{
  if (s == NULL || sender == NULL || recipients == NULL || nrecipients == 0 ||
      (flags & ~(SMTPOUT_MESSAGE_8BITMIME | SMTPOUT_MESSAGE_SMTPUTF8 |
                 SMTPOUT_MESSAGE_NO_7BIT_CONVERSION)))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (s->state == ST_QUIT || s->state == ST_DONE || s->quit_requested)
    return SMTPOUT_ERR_INVALID_STATE;
  if (s->next_id == INT32_MAX)
    return SMTPOUT_ERR_INVALID_STATE;
  /* Every address is checked before anything is queued: an address that
   * could inject a command never reaches the output. */
  if (sender[0] != '\0' && smtpout_address_check(sender) != 0)
    return SMTPOUT_ERR_BAD_ADDRESS;
  for (size_t i = 0; i < nrecipients; i++) {
    if (recipients[i] == NULL)
      return SMTPOUT_ERR_INVALID_ARGUMENT;
    if (smtpout_address_check(recipients[i]) != 0)
      return SMTPOUT_ERR_BAD_ADDRESS;
  }

  struct message *m = calloc(1, sizeof(*m));
  if (m == NULL)
    return SMTPOUT_ERR_NOMEM;
  m->sender = strdup(sender);
  m->rcpts = calloc(nrecipients, sizeof(*m->rcpts));
  if (m->sender == NULL || m->rcpts == NULL) {
    message_free(m);
    return SMTPOUT_ERR_NOMEM;
  }
  for (size_t i = 0; i < nrecipients; i++) {
    m->rcpts[i].addr = strdup(recipients[i]);
    m->nrcpts = i + 1;
    if (m->rcpts[i].addr == NULL) {
      message_free(m);
      return SMTPOUT_ERR_NOMEM;
    }
  }
  m->size = size;
  m->flags = flags;
  if (address_is_utf8(sender))
    m->flags |= SMTPOUT_MESSAGE_SMTPUTF8;
  if (!s->policy_override)
    message_policy(s, m);
  /* Once the connection has settled its TLS, a message wanting more than
   * it got must go elsewhere; one wanting less rides along. */
  if (s->policy_fixed && !s->policy_override &&
      (m->starttls > s->starttls ||
       (!m->allow_invalid_certs && s->allow_invalid_certs))) {
    message_free(m);
    return SMTPOUT_ERR_POLICY_CONFLICT;
  }
  m->id = s->next_id++;
  if (s->msgs_tail)
    s->msgs_tail->next = m;
  else
    s->msgs = m;
  s->msgs_tail = m;
  /* No advance() here: it could report results (a local bounce) for an
   * id the host has not been given yet, and would arm the reply deadline
   * from the time of the last I/O call, not from now.  An idle session
   * says it wants to write, and starts the transaction in the next
   * smtpout_session_peek_output(). */
  return m->id;
}

int smtpout_session_quit(smtpout_session *s)
{
  if (s == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  s->quit_requested = 1; /* sent by the next peek, as submit explains */
  return 0;
}

int smtpout_session_abort(smtpout_session *s, uint64_t now)
{
  if (s == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (s->busy)
    return SMTPOUT_ERR_INVALID_STATE;
  enter(s, now);
  if (s->state != ST_DONE) {
    set_error(s, SMTPOUT_ERR_ABORTED, "session aborted by the host");
    fail(s, 0, "4.3.0");
  }
  leave(s);
  return 0;
}

int smtpout_session_resume_body(smtpout_session *s)
{
  if (s == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  s->body_blocked = 0;
  return 0;
}

int smtpout_session_feed(smtpout_session *s, const uint8_t *data, size_t len,
                         uint64_t now)
{
  if (s == NULL || (data == NULL && len > 0))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (s->state == ST_INIT || s->busy)
    return SMTPOUT_ERR_INVALID_STATE;
  if (s->state == ST_DONE || len == 0)
    return 0;
  enter(s, now);
  if (s->tls) {
    if (tls_conn_feed_input(s->tls, data, len) != 0) {
      set_error(s, SMTPOUT_ERR_NOMEM, "out of memory");
      fail(s, 0, "4.3.0");
    } else {
      input_tls(s);
    }
  } else {
    input_plain(s, data, len);
    if (s->state == ST_HANDSHAKE)
      input_tls(s); /* STARTTLS accepted: the ClientHello goes out now */
  }
  int rv = s->error == SMTPOUT_ERR_NOMEM ? SMTPOUT_ERR_NOMEM : 0;
  leave(s);
  return rv;
}

int smtpout_session_feed_eof(smtpout_session *s, uint64_t now)
{
  if (s == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (s->state == ST_INIT || s->busy)
    return SMTPOUT_ERR_INVALID_STATE;
  if (s->state == ST_DONE)
    return 0;
  enter(s, now);
  if (s->tls) {
    tls_conn_feed_eof(s->tls);
    input_tls(s);
  }
  if (s->state != ST_DONE)
    lost_connection(s);
  buf_clear(&s->out);
  buf_clear(&s->wire);
  leave(s);
  return 0;
}

int smtpout_session_peek_output(smtpout_session *s, const uint8_t **pdata,
                                size_t *plen, uint64_t now)
{
  if (s == NULL || pdata == NULL || plen == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (s->busy)
    return SMTPOUT_ERR_INVALID_STATE;
  /* Messages or a QUIT queued while idle start here, timed from `now`. */
  if (now > s->now)
    s->now = now;
  advance(s);
  enter(s, now);
  if (s->state == ST_BODY)
    body_fill(s);
  const struct buf *b = &s->out;
  if (s->tls) {
    /* Plaintext queued since the last peek goes out as TLS records, as
     * few as possible: a pipelined batch is one record, not one per
     * command. */
    if (buf_len(&s->out) > 0 && s->state != ST_DONE) {
      if (tls_conn_write(s->tls, buf_head(&s->out), buf_len(&s->out)) !=
          TLS_OK) {
        set_error(s, SMTPOUT_ERR_TLS, "%s", tls_conn_error_text(s->tls));
        fail(s, 0, "4.7.5");
      }
      buf_clear(&s->out);
      exp_place(s);
      if (s->state != ST_BODY)
        buf_trim(&s->out, IDLE_BUF_MAX);
    }
    b = &s->wire;
  }
  s->peeked = b;
  s->peeked_len = buf_len(b);
  *pdata = buf_head(b);
  *plen = buf_len(b);
  if (leave(s)) {
    /* Freed from a callback: nothing to write, the bytes are gone. */
    *pdata = NULL;
    *plen = 0;
  }
  /* leave() may have queued more; the host sees it on the next peek. */
  return 0;
}

int smtpout_session_consume_output(smtpout_session *s, size_t n, uint64_t now)
{
  if (s == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (s->busy)
    return SMTPOUT_ERR_INVALID_STATE;
  if (n > s->peeked_len)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (n == 0)
    return 0;
  size_t left = s->peeked_len - n;
  enter(s, now);
  buf_consume((struct buf *)s->peeked, n);
  if (s->state != ST_BODY)
    buf_trim((struct buf *)s->peeked, IDLE_BUF_MAX);
  s->peeked_len = left;
  s->written += n;
  if (s->state == ST_BODY)
    s->deadline = s->now + data_block_timeout(s);
  leave(s);
  return 0;
}

int smtpout_session_want_read(const smtpout_session *s)
{
  return s != NULL && s->state != ST_INIT && s->state != ST_DONE;
}

int smtpout_session_want_write(const smtpout_session *s)
{
  if (s == NULL || s->state == ST_INIT)
    return 0;
  if (buf_len(&s->out) > 0 || buf_len(&s->wire) > 0)
    return 1;
  if (s->state == ST_READY && (s->msgs != NULL || s->quit_requested))
    return 1; /* the next peek starts a transaction or sends QUIT */
  return s->state == ST_BODY && !s->body_blocked;
}

uint64_t smtpout_session_expiry(const smtpout_session *s)
{
  return s ? s->deadline : SMTPOUT_NO_EXPIRY;
}

int smtpout_session_handle_expiry(smtpout_session *s, uint64_t now)
{
  if (s == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (s->busy)
    return SMTPOUT_ERR_INVALID_STATE;
  if (s->deadline == SMTPOUT_NO_EXPIRY || now < s->deadline)
    return 0;
  enter(s, now);
  if (s->state == ST_QUIT) {
    /* Results are final; the server just did not say goodbye. */
    s->state = ST_DONE;
    s->deadline = SMTPOUT_NO_EXPIRY;
    buf_clear(&s->out);
    buf_clear(&s->wire);
  } else {
    const struct expect *e = exp_head(s);
    const char *what = s->state == ST_HANDSHAKE ? "the TLS handshake"
                       : s->state == ST_BODY    ? "sending message data"
                       : e                      ? cmd_names[e->cmd]
                                                : "the server";
    if (s->state == ST_HANDSHAKE) {
      handshake_failed(s, SMTPOUT_ERR_TIMEOUT, "timed out");
    } else {
      set_error(s, SMTPOUT_ERR_TIMEOUT, "timed out %s %s (host %s)",
                s->state == ST_BODY ? "during" : "waiting for the reply to",
                what, s->mx);
      starttls_unanswered(s);
      fail(s, 0, "4.4.2");
    }
  }
  leave(s);
  return 0;
}

int smtpout_session_is_done(const smtpout_session *s)
{
  return s != NULL && s->state == ST_DONE && buf_len(&s->out) == 0 &&
         buf_len(&s->wire) == 0;
}

int smtpout_session_error(const smtpout_session *s)
{
  return s ? s->error : SMTPOUT_ERR_INVALID_ARGUMENT;
}

const char *smtpout_session_error_text(const smtpout_session *s)
{
  return s ? s->error_text : "";
}

const smtpout_tls_info *smtpout_session_tls_info(const smtpout_session *s)
{
  return s ? &s->tls_info : NULL;
}

/* The TLS connection keeps the peer's certificates until the session is
 * freed; they are described only when asked, so a session costs nothing
 * more for them. */
size_t smtpout_session_peer_certificate_count(const smtpout_session *s)
{
  return s && s->tls ? tls_conn_peer_count(s->tls) : 0;
}

int smtpout_session_peer_certificate(const smtpout_session *s, size_t index,
                                     smtpout_certificate **pcert)
{
  if (s == NULL || pcert == NULL || s->tls == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  return tls_conn_peer_certificate(s->tls, index, pcert);
}

uint32_t smtpout_session_capabilities(const smtpout_session *s)
{
  return s ? s->caps : 0;
}

int smtpout_session_policy_starttls(const smtpout_session *s)
{
  return s ? s->starttls : SMTPOUT_ERR_INVALID_ARGUMENT;
}

int smtpout_session_policy_allow_invalid_certs(const smtpout_session *s)
{
  return s ? s->allow_invalid_certs : SMTPOUT_ERR_INVALID_ARGUMENT;
}

/* ------------------------------------------------------------------ */
/* Result and TLS info getters                                          */

/* NULL-safe, like every getter: a careless host gets 0 or "" (a NULL
 * where the header says so), never a crash. */
int smtpout_result_message_id(const smtpout_result *r)
{
  return r ? r->message_id : 0;
}
size_t smtpout_result_recipient_index(const smtpout_result *r)
{
  return r ? r->index : 0;
}
const char *smtpout_result_recipient(const smtpout_result *r)
{
  return r ? r->recipient : "";
}
int smtpout_result_status(const smtpout_result *r) { return r ? r->status : 0; }
int smtpout_result_code(const smtpout_result *r) { return r ? r->code : 0; }
const char *smtpout_result_enhanced(const smtpout_result *r)
{
  return r ? r->enhanced : "";
}
const char *smtpout_result_text(const smtpout_result *r)
{
  return r ? r->text : "";
}
int smtpout_result_possibly_delivered(const smtpout_result *r)
{
  return r ? r->possibly_delivered : 0;
}

int smtpout_tls_info_outcome(const smtpout_tls_info *i)
{
  return i ? i->outcome : SMTPOUT_TLS_OUTCOME_NONE;
}
int smtpout_tls_info_used(const smtpout_tls_info *i) { return i ? i->used : 0; }
const char *smtpout_tls_info_version(const smtpout_tls_info *i)
{
  return i && i->used && i->version[0] ? i->version : NULL;
}
const char *smtpout_tls_info_cipher(const smtpout_tls_info *i)
{
  return i && i->used && i->cipher[0] ? i->cipher : NULL;
}
int smtpout_tls_info_verified(const smtpout_tls_info *i)
{
  return i ? i->verified : 0;
}
const char *smtpout_tls_info_verify_error(const smtpout_tls_info *i)
{
  return i && i->verify_error[0] ? i->verify_error : NULL;
}
const char *smtpout_tls_info_tlsrpt_result(const smtpout_tls_info *i)
{
  return i ? tlsrpt_result_name(i->tlsrpt) : NULL;
}
int smtpout_tls_info_fallback_permitted(const smtpout_tls_info *i)
{
  return i ? i->fallback_permitted : 0;
}
int smtpout_tls_info_resumed(const smtpout_tls_info *i)
{
  return i ? i->resumed : 0;
}
int smtpout_tls_info_plaintext_fallback(const smtpout_tls_info *i)
{
  return i ? i->plaintext_fallback : 0;
}
