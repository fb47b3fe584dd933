/*
 * session.c — the SMTP client state machine, without I/O.
 *
 * The host feeds received bytes in, takes bytes to send out, and passes
 * the time; the session reads no clock and no host name, and no file
 * while it runs (trust anchors are read when the session starts, or when
 * the host gives it its own).
 *
 * The model.  A session joins two queues with a state: the commands sent
 * and the replies they wait for (command_int.h), and the messages queued
 * with their recipients (recipient_int.h).  Commands go out as the state
 * allows: EHLO, STARTTLS alone, then each message's MAIL, RCPT and DATA,
 * together when the server offers PIPELINING (RFC 2920).  Each reply is
 * matched to the oldest command still waiting for one and handed to that
 * command's handler (on_greeting() ... on_quit()).  A handler decides
 * recipients through the message queue, which makes every result, and
 * moves the state only through set_state().  advance() starts what comes
 * next when nothing is outstanding.  The connection ends one of three
 * ways: QUIT answered; give_up(), which stops delivering politely (every
 * undecided recipient deferred, QUIT sent, over TLS if TLS is up); or
 * fail(), which drops it at once (deferred too, and "possibly delivered"
 * where an end of data may have been read).  Why it ended is a close
 * reason, kept apart from the errors of the calls.  TLS is reached
 * through a backend (tls_int.h) the tests can replace.
 *
 * A session made for a route's hop (smtpout_session_new_for_hop())
 * carries a copy of what the hop requires (hop_tls_int.h) and enforces it
 * at the three places TLS is decided: STARTTLS (greeted(), on_starttls()),
 * the handshake's failure (handshake_failed()) and the verdict on the
 * server (judge_server()); REQUIRETLS is checked once the EHLO over TLS
 * is answered, and again for each message (message_precheck()).
 *
 * Reading order: the structures and set_state(); tracing and results;
 * the ways out; commands; the negotiation (greeting, EHLO, STARTTLS,
 * handshake); the transaction and the body; the reply handlers; input;
 * advance(); the public API.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address_int.h"
#include "body_int.h"
#include "buf_int.h"
#include "callbacks_int.h"
#include "command_int.h"
#include "config_int.h"
#include "dane_int.h"
#include "hop_tls_int.h"
#include "dsn_int.h"
#include "names_int.h"
#include "recipient_int.h"
#include "reply_int.h"
#include "sasl_int.h"
#include "session_int.h"
#include "tls_info_int.h"
#include "tls_int.h"

/* Stop pulling the body while this much output is waiting for the socket:
 * a 100 MB message never sits in memory. */
#define OUT_HIGH_WATER (64 * 1024)
/* Once drained outside a body, an output buffer larger than this is
 * released: a large message must not leave ~128 KiB on every cached idle
 * connection, while the few KiB a small message needs stay for the next
 * one without another allocation. */
#define IDLE_BUF_MAX (16 * 1024)
/* RFC 5321 4.5.3.2.2 and 4.5.3.2.3: DATA initiation 2 min, data block 3
 * min.  The `data` timeout bounds them too, but cannot raise them. */
#define DATA_INIT_MAX_MS (2u * 60 * 1000)
#define DATA_BLOCK_MAX_MS (3u * 60 * 1000)
/* Room for a close text: a server's reply text and what frames it. */
#define CLOSE_TEXT_MAX (REPLY_TEXT_MAX + 320)
/* The QUIT command line, as send_cmd() writes it. */
#define QUIT_LINE "QUIT\r\n"
/* RFC 3030: BDAT chunks are at most this long, so that a chunk is staged
 * whole (its length goes before it) in bounded memory.  A chunk is sent
 * once the next read could overflow it and less than BDAT_READ_MIN would
 * fit. */
#define BDAT_CHUNK_MAX (64 * 1024)
#define BDAT_READ_MIN (4 * 1024)
/* The AUTH parameters of an EHLO reply kept ("PLAIN LOGIN SCRAM-SHA-256"):
 * whole words only, so a list cut short names no mechanism it did not. */
#define AUTH_OFFER_MAX 256

/* The connection, as a state machine: set_state() is the only writer. */
enum state {
  ST_INIT,        /* created; the host has not connected yet */
  ST_GREETING,    /* waiting for the 220 greeting */
  ST_EHLO,        /* EHLO sent */
  ST_HELO,        /* HELO sent, after EHLO was refused */
  ST_STARTTLS,    /* STARTTLS sent (alone: never pipelined) */
  ST_HANDSHAKE,   /* TLS handshake running (before the greeting under
                     implicit TLS) */
  ST_AUTH,        /* AUTH exchange running (never pipelined) */
  ST_READY,       /* greeted, secured and authenticated as asked; idle */
  ST_TRANSACTION, /* a message's commands and replies are in flight */
  ST_BODY,        /* writing a message's data after DATA's 354 */
  ST_BDAT,        /* writing a message's data in BDAT chunks; replies to
                     its MAIL, RCPT and earlier chunks may arrive */
  ST_QUIT,        /* QUIT sent; results are final */
  ST_DONE         /* over: nothing more will be read */
};

/* Where a transaction stands in sending its commands. */
enum txn_pos { TXN_RSET, TXN_MAIL, TXN_RCPT, TXN_DATA, TXN_WAIT, TXN_END };

struct smtpout_session {
  enum state state;
  smtpout_callbacks cb;
  void *user_data;
  smtpout_config *config;

  char mx[NAME_MAX_LEN];    /* normalised MX name or canonical IP */
  int mx_is_ip;
  char helo[NAME_MAX_LEN + 2];
  int tls_resume;           /* smtpout_session_set_tls_resumption() */
  int implicit_tls;         /* smtpout_session_set_implicit_tls() */
  int no_chunking;          /* smtpout_session_set_chunking(s, 0) */
  uint32_t timeouts[SMTPOUT_TIMEOUT_COUNT];

  /* Policy: fixed at the first EHLO reply, by the host, or by the hop. */
  int policy_fixed;
  int policy_override;
  int starttls;
  int allow_invalid_certs;
  int plaintext_fallback;
  /* The hop the session was made for (smtpout_session_new_for_hop()):
   * what it requires, enforced whatever the knobs say. */
  int for_hop;
  struct hop_tls hop;

  /* The policy of the last message whose recipients all had one domain
   * (policy_of()): the domain (malloc'd, or NULL) and its knobs. */
  char *memo_domain;
  int memo_starttls;
  int memo_allow_invalid_certs;

  uint32_t caps;
  uint32_t caps_pending; /* collected while an EHLO reply is parsed */
  uint64_t max_size;
  uint64_t max_size_pending;
  /* The mechanisms of the EHLO reply's AUTH lines, and while parsed. */
  char auth_offer[AUTH_OFFER_MAX];
  char auth_offer_pending[AUTH_OFFER_MAX];

  /* AUTH (RFC 4954): what smtpout_session_set_auth() gave, the client
   * of the exchange once it starts (which then holds the only copy of
   * the secret), and how it went. */
  struct {
    int wanted;
    uint32_t flags;
    enum sasl_mech prefs[SASL_MECH_COUNT];
    size_t nprefs;    /* 0: the default list */
    char *username;
    char *secret;
    size_t secret_len;
    struct sasl_client *client;
    enum sasl_mech mech;
    char mech_name[24]; /* its name, "" before one is chosen */
    int outcome;      /* enum smtpout_auth_outcome */
    int cancelled;    /* we answered a challenge with "*" */
    char why[256];    /* why we cancelled */
  } auth;
  /* `out` holds an AUTH line: wiped as soon as it is encrypted. */
  int out_secret;

  /* TLS.  The trust anchors are the configuration's, taken when the
   * session starts, or the session's own (smtpout_session_set_ca_file()):
   * loaded before any byte is fed, never while the network is read. */
  const struct tls_backend *tls_be;
  struct tls_creds *trust;
  struct tls_keypair *client_cert; /* smtpout_session_set_client_cert() */
  int trust_error;  /* why the configuration's could not be taken */
  int own_trust;    /* the session's own: no tickets, no chain cache */
  struct tls_conn *tls;
  int tls_active;
  struct smtpout_tls_info tls_info;

  struct reply_parser rp;
  struct buf out;  /* plaintext: the wire before TLS, TLS input after */
  struct buf wire; /* ciphertext for the socket once TLS is started */
  const struct buf *peeked;
  size_t peeked_len;
  uint64_t written; /* bytes the host has written (consumed), in all */

  struct cmdq cmds;
  struct msg_queue msgs; /* the head is the one in a transaction */
  struct message *cur;   /* the message in a transaction, or NULL */
  enum txn_pos txn_pos;
  size_t txn_rcpt;       /* the next recipient to send RCPT for */
  int need_rset;
  struct body body;      /* the data of the message in ST_BODY, ST_BDAT */
  int body_blocked;
  struct buf chunk;      /* ST_BDAT: the chunk staged before its BDAT */

  uint64_t now;
  uint64_t deadline;
  int quit_requested;
  /* Inside a public I/O call, hence inside any callback it runs: defer
   * advance(), and refuse the I/O calls a callback must not make. */
  int busy;
  /* smtpout_session_free() was called from a callback: the outermost call
   * frees the session on its way out (leave()). */
  int free_requested;
  /* This call ran out of memory (the connection is then over): the public
   * call that ran it returns SMTPOUT_ERR_NOMEM. */
  int nomem;
  int close_reason; /* enum smtpout_close_reason */
  /* Why, in words (CLOSE_TEXT_MAX bytes), allocated by set_close(): a
   * connection that ends with QUIT never needs it, and an idle one should
   * not carry 1.3 KiB of empty text.  Read through close_text(). */
  char *close_text;
  /* How the connection went, for smtpout_session_hop_outcome(): the SMTP
   * handshake was complete (ST_READY reached, TLS up where required);
   * results another address may take; what REQUIRETLS found wanting. */
  int smtp_ready;
  uint32_t retry_elsewhere;
  enum { RT_OK, RT_NOT_OFFERED, RT_UNAUTHENTICATED } requiretls_failed;
};

static void advance(smtpout_session *s);
static void txn_step(smtpout_session *s);
static void auth_begin(smtpout_session *s);
static void auth_end(smtpout_session *s);
static void bdat_start(smtpout_session *s);
static void bdat_abandon(smtpout_session *s, struct message *m);

static const char *close_text(const smtpout_session *s)
{
  if (s->close_text)
    return s->close_text;
  /* set_close() could not allocate it: the reason stands, its words are
   * lost. */
  return s->close_reason != SMTPOUT_CLOSE_NONE ? "out of memory for the text"
                                               : "";
}

/* The longest stall allowed while the body is written. */
static uint32_t data_block_timeout(const smtpout_session *s)
{
  uint32_t t = s->timeouts[SMTPOUT_TIMEOUT_DATA];
  return t < DATA_BLOCK_MAX_MS ? t : DATA_BLOCK_MAX_MS;
}

/*
 * The one place the state changes (curl's smtp_state()).  Entering a
 * state that waits on something other than a reply arms its deadline:
 * the handshake, and the writing of the body, whose stalls are bounded.
 * Reply deadlines follow the command queue (arm_head_deadline()).
 */
static void set_state(smtpout_session *s, enum state st)
{
  s->state = st;
  switch (st) {
  case ST_READY:
    s->smtp_ready = 1;
    break;
  case ST_HANDSHAKE:
    s->deadline = s->now + s->timeouts[SMTPOUT_TIMEOUT_TLS];
    break;
  case ST_BODY:
    s->deadline = s->now + data_block_timeout(s);
    break;
  case ST_BDAT:
    /* Replies to MAIL and RCPT may still be due: their deadline stands
     * (arm_head_deadline() arms the stall's when none is). */
    if (cmdq_head(&s->cmds) == NULL)
      s->deadline = s->now + data_block_timeout(s);
    break;
  case ST_INIT:
  case ST_DONE:
    s->deadline = SMTPOUT_NO_EXPIRY;
    break;
  default:
    break;
  }
}

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

/* A result is made: count what another address may take, and tell the
 * host. */
static void report(smtpout_session *s, const struct smtpout_result *res)
{
  if (smtpout_result_try_another_address(res))
    s->retry_elsewhere++;
  if (s->cb.on_result)
    s->cb.on_result(s, res, s->user_data);
}

/* Settles every recipient of `m` in `which` with `v`, and reports each
 * result to the host. */
static void settle(smtpout_session *s, struct message *m,
                   enum rcpt_which which, const struct verdict *v)
{
  struct smtpout_result res;
  for (size_t i = 0; i < m->nrcpts; i++)
    if (rcpt_settle(m, i, which, v, &res))
      report(s, &res);
}

static void settle_one(smtpout_session *s, struct message *m, size_t i,
                       const struct verdict *v)
{
  struct smtpout_result res;
  if (rcpt_settle(m, i, RCPT_UNDECIDED, v, &res))
    report(s, &res);
}

/* The head message is over (every recipient has its result): tell the
 * host, which may now release its body. */
static void message_done(smtpout_session *s)
{
  if (s->cur == s->msgs.head)
    s->cur = NULL;
  int id = msgq_pop(&s->msgs);
  if (s->cb.on_message_done)
    s->cb.on_message_done(s, id, s->user_data);
}

/* True when a QUIT was sent behind the end of data of a message that has
 * no reply yet: with messages queued, QUIT is otherwise never sent (see
 * advance() and give_up(), which settle every message first). */
static int quit_behind_dot(const smtpout_session *s)
{
  const struct expect *last = cmdq_last(&s->cmds);
  return s->msgs.head != NULL && last != NULL && last->cmd == CMD_QUIT;
}

/* Every recipient without a result, in every queued message, gets `v`
 * (a connection-level deferral); then the messages go.  The caller has
 * set the state first, so that submissions from the callbacks are
 * refused. */
static void defer_undecided(smtpout_session *s, int code, const char *enhanced)
{
  /* Only when every byte up to the end of data has left the buffers can
   * the server have read the dot.  A QUIT pipelined behind it (body_fill)
   * may still wait there; under TLS it shares the dot's record, so this
   * errs towards "possibly". */
  size_t behind = quit_behind_dot(s) ? sizeof(QUIT_LINE) - 1 : 0;
  struct verdict v = {SMTPOUT_STATUS_DEFERRED, code, enhanced, close_text(s),
                      SCOPE_CONNECTION,
                      buf_len(&s->out) + buf_len(&s->wire) <= behind};
  while (s->msgs.head) {
    settle(s, s->msgs.head, RCPT_UNDECIDED, &v);
    message_done(s);
  }
}

/* ------------------------------------------------------------------ */
/* The ways out                                                         */

/* Records why the connection ends.  The first cause is the one worth
 * reporting: later ones are consequences. */
static void set_close(smtpout_session *s, int reason, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));
static void set_close(smtpout_session *s, int reason, const char *fmt, ...)
{
  if (s->close_reason != SMTPOUT_CLOSE_NONE)
    return;
  s->close_reason = reason;
  if ((s->close_text = malloc(CLOSE_TEXT_MAX)) != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->close_text, CLOSE_TEXT_MAX, fmt, ap);
    va_end(ap);
  }
  note(s, "%s", close_text(s));
}

/*
 * The connection is unusable (timeout, lost, protocol violation, TLS
 * failure, 421): drop it without another command.  Undecided recipients
 * are deferred with `code` (the server's 421, or 0) and the close text.
 */
static void fail(smtpout_session *s, int code, const char *enhanced)
{
  if (s->state == ST_DONE)
    return;
  /* An AUTH exchange cut short: its client and secret go now. */
  auth_end(s);
  set_state(s, ST_DONE);
  defer_undecided(s, code, enhanced);
  buf_clear(&s->out);
  buf_clear(&s->wire);
}

/* Out of memory: nothing half-built can be sent, so the connection goes,
 * and the public call returns SMTPOUT_ERR_NOMEM. */
static void out_of_memory(smtpout_session *s)
{
  s->nomem = 1;
  set_close(s, SMTPOUT_CLOSE_LOCAL, "out of memory");
  fail(s, 0, "4.3.0");
}

/* The connection ended after QUIT, or the server went quiet after it:
 * the results are final, nothing more will be written. */
static void closed_after_quit(smtpout_session *s)
{
  set_state(s, ST_DONE);
  buf_clear(&s->out);
  buf_clear(&s->wire);
}

/* ------------------------------------------------------------------ */
/* Commands                                                             */

static uint32_t timeout_for(const smtpout_session *s, enum cmd c)
{
  uint32_t data = s->timeouts[SMTPOUT_TIMEOUT_DATA];
  switch (c) {
  case CMD_GREETING: return s->timeouts[SMTPOUT_TIMEOUT_GREETING];
  case CMD_MAIL:
  case CMD_RSET: return s->timeouts[SMTPOUT_TIMEOUT_MAIL_FROM];
  case CMD_RCPT: return s->timeouts[SMTPOUT_TIMEOUT_RCPT_TO];
  case CMD_DATA: return data < DATA_INIT_MAX_MS ? data : DATA_INIT_MAX_MS;
  case CMD_DOT:
  case CMD_BDAT:
  case CMD_BDAT_LAST: return data;
  default: return s->timeouts[SMTPOUT_TIMEOUT_EHLO];
  }
}

/* Arms the deadline for the reply now at the head of the queue: each
 * timeout bounds the whole wait for one reply, counted from when the
 * previous one arrived (or the command was queued), never reset by
 * partial input. */
static void arm_head_deadline(smtpout_session *s)
{
  const struct expect *e = cmdq_head(&s->cmds);
  if (e)
    s->deadline = s->now + timeout_for(s, (enum cmd)e->cmd);
  else if (s->state == ST_BDAT)
    s->deadline = s->now + data_block_timeout(s); /* a stalled body */
  else
    s->deadline = SMTPOUT_NO_EXPIRY;
}

/* Expects a reply to command `c`, whose bytes were just queued: in clear
 * text they end at the end of `out`; under TLS only the next peek knows
 * (cmdq_place()).  Returns 0, or -1 when the connection failed. */
static int expect(smtpout_session *s, enum cmd c, size_t rcpt)
{
  int was_empty = cmdq_head(&s->cmds) == NULL;
  uint64_t sent_at = s->tls ? SENT_UNKNOWN : s->written + buf_len(&s->out);
  if (cmdq_push(&s->cmds, c, rcpt, sent_at) != 0) {
    out_of_memory(s);
    return -1;
  }
  if (was_empty)
    arm_head_deadline(s);
  return 0;
}

static void reply_done(smtpout_session *s)
{
  cmdq_pop(&s->cmds);
  arm_head_deadline(s);
}

/* The longest command line, CRLF excluded: checked addresses (256
 * octets), names (255) and the parameters always fit; the longest, an
 * RCPT with NOTIFY and a 500-character ORCPT (RFC 3461 4.2), is about
 * 800. */
#define CMD_LINE_MAX 1021

/* Queues the command line made of the `n` strings `parts` (its CRLF
 * added), written straight into the output, and the reply it expects. */
static int queue_cmd(smtpout_session *s, enum cmd c, size_t rcpt,
                     const char *const *parts, size_t n)
{
  size_t lens[8], len = 0;
  for (size_t i = 0; i < n; i++)
    len += lens[i] = strlen(parts[i]);
  if (len > CMD_LINE_MAX) {
    set_close(s, SMTPOUT_CLOSE_LOCAL, "%s command line too long",
              cmd_name(c));
    fail(s, 0, "4.3.0");
    return -1;
  }
  uint8_t *line = buf_reserve(&s->out, len + 2);
  if (line == NULL) {
    out_of_memory(s);
    return -1;
  }
  uint8_t *p = line;
  for (size_t i = 0; i < n; i++) {
    memcpy(p, parts[i], lens[i]);
    p += lens[i];
  }
  p[0] = '\r';
  p[1] = '\n';
  buf_commit(&s->out, len + 2);
  trace(s, SMTPOUT_TRACE_SENT, (const char *)line, len);
  return expect(s, c, rcpt);
}

/* Queues one command line and the reply it expects.  A failed allocation
 * ends the connection: a command that cannot be queued cannot be half
 * sent.  Returns 0, or -1 when the connection failed. */
static int send_cmd(smtpout_session *s, enum cmd c, size_t rcpt,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int send_cmd(smtpout_session *s, enum cmd c, size_t rcpt,
                    const char *fmt, ...)
{
  char line[CMD_LINE_MAX + 2];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof(line)) {
    set_close(s, SMTPOUT_CLOSE_LOCAL, "%s command line too long",
              cmd_name(c));
    fail(s, 0, "4.3.0");
    return -1;
  }
  const char *parts[] = {line};
  return queue_cmd(s, c, rcpt, parts, 1);
}

/* send_cmd() for the commands of every message, made of strings that are
 * only copied (NULL ends them, at most 8): a format costs more than all
 * the rest of queueing a command. */
static int send_words(smtpout_session *s, enum cmd c, size_t rcpt, ...)
{
  const char *parts[8];
  size_t n = 0;
  va_list ap;
  va_start(ap, rcpt);
  for (const char *w; n < 8 && (w = va_arg(ap, const char *)) != NULL;)
    parts[n++] = w;
  va_end(ap);
  return queue_cmd(s, c, rcpt, parts, n);
}

/*
 * Stop delivering on this connection, politely: every undecided recipient
 * is deferred with `code` (0 or a 4xx) and `enhanced` (4.x.x), and may be
 * tried on another address; QUIT goes out, over TLS if TLS is up (RFC
 * 3207 4.1 after a certificate the policy refuses).  Nothing that ends a
 * whole session bounces: see session_refused().
 */
static void give_up(smtpout_session *s, int code, const char *enhanced)
{
  if (s->state == ST_DONE || s->state == ST_QUIT)
    return;
  set_state(s, ST_QUIT);
  /* Pending replies belong to commands we no longer care about. */
  cmdq_clear(&s->cmds);
  defer_undecided(s, code, enhanced);
  send_cmd(s, CMD_QUIT, 0, "QUIT");
}

/* ------------------------------------------------------------------ */
/* Negotiation                                                          */

/* TLS is mandatory because the hop's DANE, ENCRYPT or PKIX says so, not
 * because of a local knob: its failures are 4.7.5 (docs/routing.md). */
static int hop_mandates_tls(const smtpout_session *s)
{
  return s->for_hop && hop_tls_mandatory(s->hop.requirement);
}

/* The enhanced code when STARTTLS is required and not to be had: 4.7.4
 * under the local starttls = require (DESIGN 3), 4.7.5 for a hop whose
 * DANE or MTA-STS requires it. */
static const char *tls_unavailable_code(const smtpout_session *s)
{
  return hop_mandates_tls(s) ? "4.7.5" : "4.7.4";
}

/* " by DANE": what requires TLS, for texts; "" for the local knob. */
static const char *required_by(const smtpout_session *s, char *buf,
                               size_t len)
{
  if (!hop_mandates_tls(s))
    return "";
  snprintf(buf, len, " by %s", hop_tls_mandated_by(s->hop.requirement));
  return buf;
}

/* A plaintext retry of this destination is permitted after a failed
 * handshake: under optional, or as the hop says (never under DANE,
 * ENCRYPT or PKIX), and never under implicit TLS (RFC 8314 3.3 knows no
 * plaintext on that port) nor with credentials: they never go in clear. */
static int fallback_allowed(const smtpout_session *s)
{
  if (s->implicit_tls || s->auth.wanted)
    return 0;
  return s->for_hop ? s->hop.fallback
                    : s->starttls == SMTPOUT_STARTTLS_OPTIONAL;
}

/* Fixes the session's policy before STARTTLS is decided: the strictest of
 * the queued messages' policies (or the MX's, with none queued). */
static void policy_fix(smtpout_session *s)
{
  if (s->policy_fixed)
    return;
  s->policy_fixed = 1;
  if (!s->policy_override) {
    int st, ai;
    if (s->msgs.head == NULL) {
      config_policy_lookup(s->config, NULL, s->mx, &st, &ai);
    } else {
      st = SMTPOUT_STARTTLS_DISABLE;
      ai = 1;
      for (struct message *m = s->msgs.head; m; m = m->next)
        policy_tighten(&st, &ai, m->starttls, m->allow_invalid_certs);
    }
    s->starttls = st;
    s->allow_invalid_certs = ai;
  }
  /* Credentials never go in clear: with them, optional means require (a
   * disable policy stays, and greeted() defers). */
  if (s->auth.wanted && s->starttls == SMTPOUT_STARTTLS_OPTIONAL)
    s->starttls = SMTPOUT_STARTTLS_REQUIRE;
}

/* The credentials are not sent on this connection: why, for the host.
 * The first reason is the one kept. */
static void auth_withheld(smtpout_session *s, int outcome)
{
  if (s->auth.wanted && s->auth.outcome == SMTPOUT_AUTH_OUTCOME_NONE)
    s->auth.outcome = outcome;
}

/* " (AUTH credentials are never sent in clear)" when the session has
 * some: why TLS was required, for the texts that say it was. */
static const char *auth_clause(const smtpout_session *s)
{
  return s->auth.wanted ? " (AUTH credentials are never sent in clear)" : "";
}

/* The TLS outcome is known: record it and tell the host, once. */
static void tls_decided(smtpout_session *s, int outcome, int tlsrpt)
{
  s->tls_info.outcome = outcome;
  s->tls_info.tlsrpt = tlsrpt;
  if (s->cb.on_tls)
    s->cb.on_tls(s, &s->tls_info, s->user_data);
}

/* STARTTLS was not used: why, for the TLS info (and the host's TLS-RPT
 * report), as the trace says it. */
static void tls_failure_text(smtpout_session *s, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));
static void tls_failure_text(smtpout_session *s, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->tls_info.failure, sizeof(s->tls_info.failure), fmt, ap);
  va_end(ap);
}

/* The server did not start TLS after STARTTLS: any answer but 220 (`r`),
 * a 421, silence or a close (`r` NULL: the close text says which).  RFC
 * 8460 4.3.1 calls all of them starttls-not-supported. */
static void starttls_refused(smtpout_session *s, const struct reply *r)
{
  if (r)
    tls_failure_text(s, "host %s answered STARTTLS with %d %s", s->mx,
                     r->code, r->text);
  else
    tls_failure_text(s, "%s", close_text(s));
  tls_decided(s, SMTPOUT_TLS_OUTCOME_REFUSED, TLSRPT_STARTTLS_NOT_SUPPORTED);
}

static void send_ehlo(smtpout_session *s)
{
  s->caps_pending = 0;
  s->max_size_pending = 0;
  s->auth_offer_pending[0] = '\0';
  set_state(s, ST_EHLO);
  send_cmd(s, CMD_EHLO, 0, "EHLO %s", s->helo);
}

/* The server is authenticated as RFC 8689 4.2.1 wants it for REQUIRETLS:
 * by DANE on a DANE hop, by PKIX for the MX name on an MTA-STS (PKIX) hop;
 * on a session not made for a hop, by PKIX (the host vouches for the
 * name). */
static int requiretls_authenticated(const smtpout_session *s)
{
  int auth = s->tls_info.auth;
  if (!s->tls_active)
    return 0;
  if (!s->for_hop)
    return auth == SMTPOUT_TLS_AUTH_PKIX;
  if (s->hop.requirement == SMTPOUT_TLS_REQUIREMENT_DANE)
    return auth == SMTPOUT_TLS_AUTH_DANE_EE ||
           auth == SMTPOUT_TLS_AUTH_DANE_TA;
  return s->hop.requirement == SMTPOUT_TLS_REQUIREMENT_PKIX &&
         auth == SMTPOUT_TLS_AUTH_PKIX;
}

/*
 * Whether REQUIRETLS mail may go on this connection (RFC 8689 4.2.1):
 * returns the enhanced code of the deferral when it may not, 4.7.10 for
 * a server not authenticated as REQUIRETLS needs, 4.7.30 for REQUIRETLS
 * not offered after STARTTLS (the EHLO before TLS counts for nothing:
 * every capability learned in clear is forgotten), with the reason in
 * `text`; NULL when it may.  The route turns the last such deferral into
 * the 5.7.10 or 5.7.30 bounce.
 */
static const char *requiretls_refusal(smtpout_session *s, char *text,
                                      size_t len)
{
  if (!requiretls_authenticated(s)) {
    s->requiretls_failed = RT_UNAUTHENTICATED;
    snprintf(text, len,
             "REQUIRETLS needs TLS that authenticates host %s (DANE, or "
             "PKIX under MTA-STS), which this connection %s",
             s->mx, s->tls_active ? "did not" : "lacks (no TLS)");
    return "4.7.10";
  }
  if (!(s->caps & SMTPOUT_CAP_REQUIRETLS)) {
    s->requiretls_failed = RT_NOT_OFFERED;
    snprintf(text, len,
             "REQUIRETLS support required, but host %s did not offer "
             "REQUIRETLS after STARTTLS",
             s->mx);
    return "4.7.30";
  }
  return NULL;
}

/* The message's MAIL FROM carries REQUIRETLS: it asks for it, or the hop
 * does for every message. */
static int needs_requiretls(const smtpout_session *s, const struct message *m)
{
  return (m->flags & SMTPOUT_MESSAGE_REQUIRETLS) ||
         (s->for_hop && s->hop.requiretls);
}

/* The server is greeted (EHLO or HELO answered 2xx).  Before TLS this is
 * where the policy is fixed and STARTTLS decided (docs/policy.md, "What
 * the session does"). */
static void greeted(smtpout_session *s, uint32_t caps, uint64_t max_size,
                    const char *auth_offer)
{
  char by[64];
  s->caps = caps;
  s->max_size = max_size;
  snprintf(s->auth_offer, sizeof(s->auth_offer), "%s", auth_offer);
  if (s->tls_active) {
    /* A REQUIRETLS hop carries nothing without REQUIRETLS: none of its
     * messages could go (RFC 8689 4.2.1), so the connection ends. */
    if (s->for_hop && s->hop.requiretls) {
      char text[NAME_MAX_LEN + 160];
      const char *code = requiretls_refusal(s, text, sizeof(text));
      if (code) {
        set_close(s, SMTPOUT_CLOSE_TLS_POLICY, "%s", text);
        give_up(s, 0, code);
        return;
      }
    }
    /* A STARTTLS advertised again after TLS is ignored: the state moves
     * on, and only the path below ever sends STARTTLS.  RFC 4954 4: AUTH
     * comes after this EHLO, before any mail. */
    if (s->auth.wanted)
      auth_begin(s);
    else
      set_state(s, ST_READY);
    return;
  }
  policy_fix(s);
  if (s->plaintext_fallback) {
    s->tls_info.plaintext_fallback = 1;
    if (!fallback_allowed(s)) {
      if (hop_mandates_tls(s))
        set_close(s, SMTPOUT_CLOSE_TLS_POLICY,
                  "plaintext fallback refused: TLS to host %s is required "
                  "by %s%s",
                  s->mx, hop_tls_mandated_by(s->hop.requirement),
                  auth_clause(s));
      else
        set_close(s, SMTPOUT_CLOSE_TLS_POLICY,
                  "plaintext fallback refused: the policy for %s is not "
                  "optional%s",
                  s->mx, auth_clause(s));
      auth_withheld(s, SMTPOUT_AUTH_OUTCOME_NO_TLS);
      tls_decided(s, SMTPOUT_TLS_OUTCOME_DISABLED, TLSRPT_NONE);
      give_up(s, 0, "4.7.5");
      return;
    }
    set_state(s, ST_READY);
    tls_decided(s, SMTPOUT_TLS_OUTCOME_DISABLED, TLSRPT_NONE);
    return;
  }
  if (s->starttls == SMTPOUT_STARTTLS_DISABLE) {
    if (s->auth.wanted) {
      set_close(s, SMTPOUT_CLOSE_TLS_POLICY,
                "AUTH credentials are never sent in clear, and the TLS "
                "policy for %s disables STARTTLS",
                s->mx);
      auth_withheld(s, SMTPOUT_AUTH_OUTCOME_NO_TLS);
      tls_decided(s, SMTPOUT_TLS_OUTCOME_DISABLED, TLSRPT_NONE);
      give_up(s, 0, "4.7.4");
      return;
    }
    set_state(s, ST_READY);
    tls_decided(s, SMTPOUT_TLS_OUTCOME_DISABLED, TLSRPT_NONE);
    return;
  }
  if (caps & SMTPOUT_CAP_STARTTLS) {
    /* Sent alone: nothing may follow STARTTLS before its reply. */
    set_state(s, ST_STARTTLS);
    send_cmd(s, CMD_STARTTLS, 0, "STARTTLS");
    return;
  }
  tls_failure_text(s, "host %s did not offer STARTTLS", s->mx);
  if (s->starttls == SMTPOUT_STARTTLS_OPTIONAL) {
    set_state(s, ST_READY);
    tls_decided(s, SMTPOUT_TLS_OUTCOME_NOT_OFFERED,
                TLSRPT_STARTTLS_NOT_SUPPORTED);
    return;
  }
  set_close(s, SMTPOUT_CLOSE_TLS_POLICY,
            "TLS is required%s%s, but was not offered by host %s",
            required_by(s, by, sizeof(by)), auth_clause(s), s->mx);
  auth_withheld(s, SMTPOUT_AUTH_OUTCOME_NO_TLS);
  tls_decided(s, SMTPOUT_TLS_OUTCOME_NOT_OFFERED,
              TLSRPT_STARTTLS_NOT_SUPPORTED);
  give_up(s, 0, tls_unavailable_code(s));
}

/* The SNI (RFC 6066 3): the MX host name, or under DANE the TLSA base
 * domain (RFC 7672 8.1); NULL for an address. */
static const char *sni(const smtpout_session *s)
{
  if (s->for_hop)
    return s->hop.sni[0] ? s->hop.sni : NULL;
  return s->mx_is_ip ? NULL : s->mx;
}

/* The TLSA set the server is to be authenticated against, or NULL: it is
 * authenticated by PKIX (or not judged). */
static const struct tls_dane *dane_set(const smtpout_session *s)
{
  return s->for_hop && s->hop.requirement == SMTPOUT_TLS_REQUIREMENT_DANE
             ? s->hop.dane
             : NULL;
}

/* Makes the TLS connection (its records go to `wire`).  Returns 0, or -1
 * when the connection failed: a local problem, not the server's, so no
 * TLS outcome to report, and no plaintext retry. */
static int tls_open(smtpout_session *s)
{
  /* No anchors and no error: the session started as a plaintext fallback
   * and yet got here, which greeted() never allows. */
  int rv = s->trust ? 0 : s->trust_error ? s->trust_error
                                         : SMTPOUT_ERR_TLS_SETUP;
  if (rv == 0) {
    /* Tickets and verified chains in the configuration's cache were
     * verified against its trust anchors: a session with anchors of its
     * own takes none and gives none. */
    struct tls_conn_params p = {s->trust, config_tls_cache(s->config),
                                smtpout_config_tls_priority(s->config),
                                sni(s), s->tls_resume && !s->own_trust,
                                dane_set(s), s->client_cert};
    rv = s->tls_be->conn_new(&s->tls, &p, &s->wire);
  }
  if (rv == SMTPOUT_ERR_NOMEM) {
    out_of_memory(s);
    return -1;
  }
  if (rv != 0) {
    set_close(s, SMTPOUT_CLOSE_TLS_SETUP,
              "TLS setup failed: %s", smtpout_strerror(rv));
    fail(s, 0, "4.7.0");
    return -1;
  }
  return 0;
}

/* The server said 220 to STARTTLS: start the handshake. */
static void tls_start(smtpout_session *s)
{
  if (tls_open(s) != 0)
    return;
  /* Clear text still queued (the tail of "STARTTLS\r\n" when the server
   * answered before we finished writing it) precedes the ClientHello. */
  if (buf_len(&s->out) > 0) {
    if (buf_append(&s->wire, buf_head(&s->out), buf_len(&s->out)) != 0) {
      out_of_memory(s);
      return;
    }
    buf_clear(&s->out);
  }
  /* RFC 3207 4.2: the protocol restarts from scratch over TLS. */
  s->caps = 0;
  s->max_size = 0;
  set_state(s, ST_HANDSHAKE);
  note(s, "starting TLS (SNI %s)", sni(s) ? sni(s) : "none");
}

/*
 * The one handshake-failure path: TLS did not come up after the server's
 * 220, because the handshake failed, timed out or lost the connection,
 * or because clear text followed the 220 (response injection).  No
 * certificate was judged, so verify_error stays empty; `text` says what
 * happened.  The connection is in an unknown state and is dropped; every
 * such failure is 4.7.5 (docs/policy.md).  Under optional the host may
 * retry without STARTTLS on a new connection (never this one), unless
 * the failure was an attack (`fallback_ok` 0); under require never.
 */
static void handshake_failed(smtpout_session *s, int reason, int fallback_ok,
                             const char *text)
{
  s->tls_info.fallback_permitted = fallback_ok && fallback_allowed(s);
  auth_withheld(s, SMTPOUT_AUTH_OUTCOME_NO_TLS);
  set_close(s, reason, "%s", text);
  tls_failure_text(s, "%s", text);
  /* The negotiation failed after the go-ahead: RFC 8460 4.3.1 has no
   * category for it, so validation-failure (4.3.3). */
  tls_decided(s, SMTPOUT_TLS_OUTCOME_HANDSHAKE_FAILED,
              TLSRPT_VALIDATION_FAILURE);
  fail(s, 0, "4.7.5");
}

static void handshake_error(smtpout_session *s, int reason, const char *why)
{
  char text[NAME_MAX_LEN + 320];
  snprintf(text, sizeof(text), "TLS handshake with host %s failed: %s",
           s->mx, why);
  handshake_failed(s, reason, 1, text);
}

/* A DANE hop: the chain must match one of the hop's TLSA records (RFC
 * 7672 3); PKIX is not consulted, and nothing tolerates a mismatch.
 * Returns 1 when it does. */
static int judge_dane(smtpout_session *s, int *tlsrpt)
{
  struct smtpout_tls_info *ti = &s->tls_info;
  struct dane_result res;
  ti->verified = s->tls_be->dane_verify(s->tls, s->hop.dane, &res);
  note(s, "TLS established%s: %s %s, %s", ti->resumed ? " (resumed)" : "",
       ti->version, ti->cipher, res.reason);
  if (ti->verified) {
    ti->auth = hop_tls_dane_auth(&res);
    snprintf(ti->tlsa_matched, sizeof(ti->tlsa_matched), "%s", res.matched);
    return 1;
  }
  *tlsrpt = hop_tls_dane_tlsrpt(&res);
  snprintf(ti->verify_error, sizeof(ti->verify_error), "%s", res.reason);
  set_close(s, SMTPOUT_CLOSE_TLS_POLICY,
            "server certificate not authenticated by DANE: %s",
            ti->verify_error);
  return 0;
}

/*
 * Judges the server once the handshake is complete, as the session's
 * requirement says (docs/policy.md): fills the TLS info's verdict and
 * RFC 8460 result type, and returns 1 when the connection may carry mail
 * (else the close reason is set).
 */
static int judge_server(smtpout_session *s, int *tlsrpt)
{
  struct smtpout_tls_info *ti = &s->tls_info;
  int req = s->for_hop ? s->hop.requirement : SMTPOUT_TLS_REQUIREMENT_LOCAL;
  if (req == SMTPOUT_TLS_REQUIREMENT_DANE)
    return judge_dane(s, tlsrpt);
  /* PKIX.  The reference identity is the MX host name, never the
   * recipient domain and never an IP literal. */
  ti->verified = s->tls_be->verify(s->tls, s->mx_is_ip ? NULL : s->mx,
                                   tlsrpt, ti->verify_error,
                                   sizeof(ti->verify_error));
  if (ti->verified)
    ti->auth = SMTPOUT_TLS_AUTH_PKIX;
  note(s, "TLS established%s: %s %s, certificate %s%s%s",
       ti->resumed ? " (resumed)" : "", ti->version, ti->cipher,
       ti->verified ? "verified" : "NOT verified", ti->verified ? "" : ": ",
       ti->verified ? "" : ti->verify_error);
  switch (req) {
  case SMTPOUT_TLS_REQUIREMENT_PKIX:
    /* RFC 8461 4.2: TLS 1.2 or later, and a certificate that verifies
     * for the MX name, whatever allow-invalid-certs says.  A failure is
     * the policy's (RFC 8460 4.3.2.2), not a negotiation failure. */
    if (!hop_tls_version_ok(ti->version)) {
      *tlsrpt = TLSRPT_VALIDATION_FAILURE;
      set_close(s, SMTPOUT_CLOSE_TLS_POLICY,
                "MTA-STS requires TLS 1.2 or later, host %s negotiated %s",
                s->mx, ti->version[0] ? ti->version : "an unknown version");
      return 0;
    }
    if (!ti->verified) {
      *tlsrpt = TLSRPT_STS_WEBPKI_INVALID;
      set_close(s, SMTPOUT_CLOSE_TLS_POLICY,
                "server certificate not verified (required by MTA-STS): %s",
                ti->verify_error);
      return 0;
    }
    return 1;
  case SMTPOUT_TLS_REQUIREMENT_ENCRYPT:
    /* RFC 7672 3: a TLSA set without a usable record still makes TLS
     * mandatory, but authenticates nothing: the certificate is not
     * judged, and the attempt is degraded (RFC 8460 4.3.2.1). */
    *tlsrpt = TLSRPT_TLSA_INVALID;
    return 1;
  default:
    if (!ti->verified && !s->allow_invalid_certs) {
      set_close(s, SMTPOUT_CLOSE_TLS_POLICY,
                "server certificate not verified: %s", ti->verify_error);
      return 0;
    }
    return 1;
  }
}

/* The handshake is complete: judge the certificate, then EHLO again (or,
 * under implicit TLS, wait for the greeting). */
static void handshake_done(smtpout_session *s)
{
  struct smtpout_tls_info *ti = &s->tls_info;
  const struct tls_backend *be = s->tls_be;
  /* Under implicit TLS the certificate is the first thing judged. */
  policy_fix(s);
  s->tls_active = 1;
  ti->used = 1;
  ti->resumed = be->resumed(s->tls);
  ti->client_certificate = be->client_cert_sent(s->tls);
  snprintf(ti->version, sizeof(ti->version), "%s",
           be->version(s->tls) ? be->version(s->tls) : "");
  snprintf(ti->cipher, sizeof(ti->cipher), "%s",
           be->cipher(s->tls) ? be->cipher(s->tls) : "");
  int tlsrpt = TLSRPT_NONE;
  int ok = judge_server(s, &tlsrpt);
  if (!ok)
    auth_withheld(s, SMTPOUT_AUTH_OUTCOME_NO_TLS);
  tls_decided(s, SMTPOUT_TLS_OUTCOME_OK, tlsrpt);
  if (!ok) {
    give_up(s, 0, "4.7.5");
  } else if (s->implicit_tls) {
    set_state(s, ST_GREETING);
    arm_head_deadline(s); /* the greeting's, from now */
  } else {
    send_ehlo(s);
  }
}

/* ------------------------------------------------------------------ */
/* AUTH (RFC 4954)                                                      */

/* Keeps the mechanisms of an EHLO "AUTH" (or old "AUTH=") line, `len`
 * bytes of `t` after the keyword: whole words, printable, one space
 * apart, as long as they fit. */
static void auth_offer_add(smtpout_session *s, const uint8_t *t, size_t len)
{
  char *o = s->auth_offer_pending;
  size_t k = strlen(o);
  size_t i = 0;
  while (i < len) {
    while (i < len && (t[i] == ' ' || t[i] == '='))
      i++;
    size_t w = i;
    while (i < len && t[i] > ' ' && t[i] < 0x7f)
      i++;
    if (i == w) {
      i++; /* a byte no mechanism name has */
      continue;
    }
    if (k + (k > 0) + (i - w) + 1 > sizeof(s->auth_offer_pending))
      return;
    if (k > 0)
      o[k++] = ' ';
    memcpy(o + k, t + w, i - w);
    k += i - w;
    o[k] = '\0';
  }
}

/* Wipes and frees the session's copy of the secret. */
static void auth_forget_secret(smtpout_session *s)
{
  if (s->auth.secret) {
    explicit_bzero(s->auth.secret, s->auth.secret_len);
    free(s->auth.secret);
    s->auth.secret = NULL;
    s->auth.secret_len = 0;
  }
}

/* The exchange is over: the client (and the secret it holds) goes. */
static void auth_end(smtpout_session *s)
{
  sasl_client_free(s->auth.client);
  s->auth.client = NULL;
  auth_forget_secret(s);
}

/* Queues a line the AUTH client wrote (CRLF included) and its reply;
 * the trace shows it redacted ("AUTH PLAIN ****"). */
static void auth_send(smtpout_session *s, const uint8_t *line, size_t len)
{
  char shown[128];
  size_t n = sasl_redact(line, len, shown, sizeof(shown));
  trace(s, SMTPOUT_TRACE_SENT, shown, n);
  if (buf_append(&s->out, line, len) != 0) {
    out_of_memory(s);
    return;
  }
  s->out_secret = 1;
  expect(s, CMD_AUTH, 0);
}

/* AUTH did not succeed: the connection goes, its recipients deferred,
 * `code` (0 or a 4xx) and `enhanced` (4.x.x) in their results. */
static void auth_failed(smtpout_session *s, int outcome, int code,
                        const char *enhanced)
{
  s->auth.outcome = outcome;
  auth_end(s);
  give_up(s, code, enhanced);
}

/*
 * After the EHLO that followed TLS: sends AUTH, or says why not.  Only
 * over TLS (greeted() comes here only then), only to a server whose
 * certificate verified unless the host accepts any (Postfix's
 * smtp_sasl_tls_verified_security_options), and only with a mechanism
 * the server offers and the host allows.  A server that offers no
 * mechanism allowed is deferred, not tried without AUTH: a relay that
 * wants credentials would refuse the mail with a 530, and that would
 * bounce it.
 */
static void auth_begin(smtpout_session *s)
{
  if (!s->tls_info.verified && !(s->auth.flags & SMTPOUT_AUTH_TLS_ANY)) {
    set_close(s, SMTPOUT_CLOSE_AUTH,
              "AUTH credentials are not sent to host %s: its certificate "
              "did not verify (%s)",
              s->mx, s->tls_info.verify_error);
    auth_failed(s, SMTPOUT_AUTH_OUTCOME_UNVERIFIED, 0, "4.7.5");
    return;
  }
  uint8_t cb[TLS_CB_MAX];
  size_t cblen = 0;
  int cbtype = s->tls_be->channel_binding(s->tls, cb, &cblen);
  size_t olen = strlen(s->auth_offer);
  enum sasl_mech mech =
      (s->caps & SMTPOUT_CAP_AUTH)
          ? sasl_choose(s->auth_offer, olen, s->auth.nprefs ? s->auth.prefs
                                                            : NULL,
                        s->auth.nprefs, cbtype != TLS_CB_NONE)
          : SASL_MECH_NONE;
  if (mech == SASL_MECH_NONE) {
    if (!(s->caps & SMTPOUT_CAP_AUTH))
      set_close(s, SMTPOUT_CLOSE_AUTH,
                "host %s does not offer AUTH, and credentials are set",
                s->mx);
    else
      set_close(s, SMTPOUT_CLOSE_AUTH,
                "host %s offers AUTH %s: no mechanism the credentials allow",
                s->mx, s->auth_offer);
    auth_failed(s, SMTPOUT_AUTH_OUTCOME_NOT_OFFERED, 0, "4.7.0");
    return;
  }
  s->auth.mech = mech;
  snprintf(s->auth.mech_name, sizeof(s->auth.mech_name), "%s",
           sasl_mech_name(mech));
  struct sasl_params p = {
    .mech = mech,
    .username = s->auth.username,
    .secret = s->auth.secret,
    .cb_type = (enum sasl_cb_type)cbtype,
    .cb_data = cbtype != TLS_CB_NONE ? cb : NULL,
    .cb_len = cbtype != TLS_CB_NONE ? cblen : 0,
  };
  int rv = sasl_client_new(&s->auth.client, &p);
  /* The client holds its own copy now: the session's goes. */
  auth_forget_secret(s);
  const uint8_t *line = NULL;
  size_t len = 0;
  if (rv == 0)
    rv = sasl_client_start(s->auth.client, &line, &len);
  if (rv == SMTPOUT_ERR_NOMEM) {
    auth_end(s);
    out_of_memory(s);
    return;
  }
  if (rv != 0) {
    set_close(s, SMTPOUT_CLOSE_AUTH, "AUTH %s cannot be used: %s",
              sasl_mech_name(mech),
              s->auth.client ? sasl_client_error(s->auth.client)
                             : "the credentials do not fit the mechanism");
    auth_failed(s, SMTPOUT_AUTH_OUTCOME_ERROR, 0, "4.7.0");
    return;
  }
  set_state(s, ST_AUTH);
  auth_send(s, line, len);
}

/* A 334: the next challenge.  Its text is the raw reply line's, still
 * base64 (the reply parser's text is for people). */
static void auth_challenge(smtpout_session *s)
{
  size_t tlen = 0;
  const uint8_t *t = reply_line_text(&s->rp, &tlen);
  const uint8_t *line;
  size_t len;
  int rv;
  if (s->rp.reply.nlines != 1) {
    /* A challenge is one line (RFC 4954 4). */
    line = (const uint8_t *)"*\r\n";
    len = 3;
    rv = ERR_PROTOCOL;
  } else {
    rv = sasl_client_step(s->auth.client, (const char *)t, tlen, &line,
                          &len);
  }
  if (rv == SMTPOUT_ERR_NOMEM) {
    auth_end(s);
    out_of_memory(s);
    return;
  }
  if (rv != 0) {
    /* RFC 4954 4: "*" cancels; the server answers 501, and the
     * connection then goes with our reason. */
    s->auth.cancelled = 1;
    snprintf(s->auth.why, sizeof(s->auth.why), "%s",
             s->rp.reply.nlines == 1 ? sasl_client_error(s->auth.client)
                                     : "a multi-line 334 challenge");
    note(s, "cancelling AUTH %s: %s", sasl_mech_name(s->auth.mech),
         s->auth.why);
  }
  auth_send(s, line, len);
}

static void on_auth(smtpout_session *s, size_t ri, const struct reply *r)
{
  (void)ri;
  const char *mech = sasl_mech_name(s->auth.mech);
  /* A reply quoting the secret is never repeated in a text. */
  const char *text = sasl_client_secret_in(s->auth.client,
                                           (const uint8_t *)r->text,
                                           r->text_len)
                         ? "(reply text withheld: it contained the secret)"
                         : r->text;
  if (r->code == 334 && !s->auth.cancelled) {
    auth_challenge(s);
    return;
  }
  if (r->code == 235 && !s->auth.cancelled) {
    /* SCRAM's server must have proved it knows the password (RFC 5802
     * 5): a 235 without that proof is not believed. */
    if (sasl_client_success(s->auth.client) != 0) {
      set_close(s, SMTPOUT_CLOSE_AUTH,
                "host %s accepted AUTH %s too early: %s", s->mx, mech,
                sasl_client_error(s->auth.client));
      auth_failed(s, SMTPOUT_AUTH_OUTCOME_ERROR, 0, "4.7.0");
      return;
    }
    note(s, "authenticated to host %s as %s with %s", s->mx,
         s->auth.username, mech);
    s->auth.outcome = SMTPOUT_AUTH_OUTCOME_OK;
    auth_end(s);
    set_state(s, ST_READY);
    return;
  }
  if (s->auth.cancelled) {
    set_close(s, SMTPOUT_CLOSE_AUTH, "AUTH %s with host %s cancelled: %s",
              mech, s->mx, s->auth.why);
    auth_failed(s, SMTPOUT_AUTH_OUTCOME_ERROR, 0, "4.7.0");
    return;
  }
  if (r->code / 100 != 4 && r->code / 100 != 5) {
    set_close(s, SMTPOUT_CLOSE_PROTOCOL,
              "unexpected reply to AUTH from host %s: %d %s", s->mx, r->code,
              text);
    s->auth.outcome = SMTPOUT_AUTH_OUTCOME_ERROR;
    auth_end(s);
    fail(s, 0, "4.5.0");
    return;
  }
  /* Refused: deferred with the server's text, as Postfix's
   * smtp_sasl_auth_soft_bounce; a wrong password is the operator's to
   * fix, not a reason to bounce mail.  A deferral never carries a 5xx:
   * 535 5.7.8 becomes code 0 and 4.7.8. */
  const char *detail = sasl_client_server_error(s->auth.client);
  set_close(s, SMTPOUT_CLOSE_AUTH, "host %s refused AUTH %s: %d %s%s%s%s",
            s->mx, mech, r->code, text, detail[0] ? " (" : "", detail,
            detail[0] ? ")" : "");
  if (r->code / 100 == 4) {
    auth_failed(s, SMTPOUT_AUTH_OUTCOME_FAILED, r->code, r->enhanced);
    return;
  }
  char enhanced[sizeof(r->enhanced)];
  snprintf(enhanced, sizeof(enhanced), "%s",
           r->enhanced[0] ? r->enhanced : "4.7.0");
  enhanced[0] = '4';
  auth_failed(s, SMTPOUT_AUTH_OUTCOME_FAILED, 0, enhanced);
}

/* ------------------------------------------------------------------ */
/* The transaction                                                      */

/* The transaction asks for SMTPUTF8 (RFC 6531 3.4). */
static int uses_smtputf8(const smtpout_session *s, const struct message *m)
{
  return (s->caps & SMTPOUT_CAP_SMTPUTF8) && message_needs_smtputf8(m);
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

/* Bounces every recipient of `m` in `which` locally, before MAIL. */
static void bounce_locally(smtpout_session *s, struct message *m,
                           enum rcpt_which which, const char *enhanced,
                           const char *text)
{
  struct verdict v = {SMTPOUT_STATUS_BOUNCED, 0, enhanced, text,
                      SCOPE_RECIPIENT, 0};
  settle(s, m, which, &v);
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
  /* Deferred before anything else: without REQUIRETLS the message must
   * not go at all, and another address may take it. */
  const char *code;
  if (needs_requiretls(s, m) &&
      (code = requiretls_refusal(s, text, sizeof(text))) != NULL) {
    struct verdict v = {SMTPOUT_STATUS_DEFERRED, 0, code, text,
                        SCOPE_CONNECTION, 0};
    settle(s, m, RCPT_UNDECIDED, &v);
    return 0;
  }
  /* Most servers lack SMTPUTF8 and most messages do not need it: the text
   * is made only for a message that does. */
  if (!(s->caps & SMTPOUT_CAP_SMTPUTF8) && message_needs_smtputf8(m)) {
    snprintf(text, sizeof(text),
             "SMTPUTF8 is required, but was not offered by host %s", s->mx);
    if (m->flags & SMTPOUT_MESSAGE_SMTPUTF8) {
      bounce_locally(s, m, RCPT_UNDECIDED, "5.6.7", text);
    } else {
      struct verdict v = {SMTPOUT_STATUS_BOUNCED, 0, "5.6.7", text,
                          SCOPE_RECIPIENT, 0};
      for (size_t i = 0; i < m->nrcpts; i++)
        if (m->rcpts[i].utf8)
          settle_one(s, m, i, &v);
    }
  }
  if (s->max_size > 0 && m->size > s->max_size) {
    snprintf(text, sizeof(text),
             "message size %llu exceeds size limit %llu of host %s",
             (unsigned long long)m->size, (unsigned long long)s->max_size,
             s->mx);
    bounce_locally(s, m, RCPT_UNDECIDED, "5.3.4", text);
  }
  m->body_mode = (unsigned char)body_mode_for(s, m);
  if (m->body_mode == BODY_CONVERT &&
      (m->flags & SMTPOUT_MESSAGE_NO_7BIT_CONVERSION)) {
    snprintf(text, sizeof(text),
             "message has 8-bit data that cannot be converted to 7-bit, "
             "and host %s does not offer 8BITMIME",
             s->mx);
    bounce_locally(s, m, RCPT_UNDECIDED, "5.6.3", text);
  }
  return message_undecided(m);
}

/* Writes " SIZE=" and `v` in decimal at `p`; returns the length. */
static size_t put_size(char *p, uint64_t v)
{
  char digits[20];
  size_t nd = 0;
  do
    digits[nd++] = (char)('0' + v % 10);
  while ((v /= 10) > 0);
  memcpy(p, " SIZE=", 6);
  for (size_t i = 0; i < nd; i++)
    p[6 + i] = digits[nd - 1 - i];
  p[6 + nd] = '\0';
  return 6 + nd;
}

/* True when the message's data goes in BDAT chunks (RFC 3030). */
static int uses_bdat(const smtpout_session *s)
{
  return (s->caps & SMTPOUT_CAP_CHUNKING) && !s->no_chunking;
}

static void send_mail(smtpout_session *s, struct message *m)
{
  char params[96 + 3 * DSN_ENVID_MAX] = "";
  size_t n = 0;
  /* A converted message grows by an amount only its end will tell: no
   * size is better than a wrong one (Postfix does the same). */
  if ((s->caps & SMTPOUT_CAP_SIZE) && m->size > 0 &&
      m->body_mode != BODY_CONVERT)
    n += put_size(params + n, m->size);
  if ((s->caps & SMTPOUT_CAP_8BITMIME) &&
      (m->flags & SMTPOUT_MESSAGE_8BITMIME))
    n += (size_t)snprintf(params + n, sizeof(params) - n, " BODY=8BITMIME");
  if (uses_smtputf8(s, m))
    n += (size_t)snprintf(params + n, sizeof(params) - n, " SMTPUTF8");
  /* RFC 8689 4.2.1: message_precheck() let it through only over TLS that
   * authenticated the server and offered REQUIRETLS. */
  if (needs_requiretls(s, m)) {
    n += (size_t)snprintf(params + n, sizeof(params) - n, " REQUIRETLS");
    s->tls_info.requiretls = 1;
  }
  /* RFC 3461 4.3, 4.4: only to a server that offers DSN.  To one that
   * does not, every DSN parameter is left out (a server must refuse
   * parameters it did not announce), and the results say so. */
  m->dsn_offered = (s->caps & SMTPOUT_CAP_DSN) != 0;
  if (m->dsn_offered && m->dsn_ret)
    n += (size_t)snprintf(params + n, sizeof(params) - n, " RET=%s",
                          m->dsn_ret == SMTPOUT_DSN_RET_FULL ? "FULL"
                                                             : "HDRS");
  if (m->dsn_offered && m->envid)
    n += (size_t)snprintf(params + n, sizeof(params) - n, " ENVID=%s",
                          m->envid);
  if (m->dsn_wanted && !m->dsn_offered)
    note(s, "host %s does not offer DSN: message %d goes without its "
         "NOTIFY, ORCPT, RET and ENVID", s->mx, m->id);
  send_words(s, CMD_MAIL, 0, "MAIL FROM:<", m->sender, ">", params,
             (const char *)NULL);
}

/* RCPT for recipient `i`, with its DSN parameters where they go. */
static void send_rcpt(smtpout_session *s, struct message *m, size_t i)
{
  struct rcpt *r = &m->rcpts[i];
  char notify[32] = "";
  if (m->dsn_offered && r->notify)
    dsn_notify_text(r->notify, notify, sizeof(notify));
  int orcpt = m->dsn_offered && r->orcpt;
  r->sent = 1;
  send_words(s, CMD_RCPT, i, "RCPT TO:<", r->addr, ">",
             notify[0] ? " NOTIFY=" : "", notify, orcpt ? " ORCPT=" : "",
             orcpt ? r->orcpt : "", (const char *)NULL);
}

/* True while replies to the transaction's commands are due.  A QUIT sent
 * behind the end of data (body_fill) is not one of them. */
static int txn_replies_due(const smtpout_session *s)
{
  const struct expect *e = cmdq_head(&s->cmds);
  return e != NULL && e->cmd != CMD_QUIT;
}

/* Sends whatever the transaction may send now: one command at a time
 * without PIPELINING, everything up to DATA with it (RFC 2920 3.1: DATA
 * ends a command group).  Ends the transaction when nothing is left. */
static void txn_step(smtpout_session *s)
{
  struct message *m = s->cur;
  int pipelining = (s->caps & SMTPOUT_CAP_PIPELINING) != 0;

  /* While chunks go out, a reply may leave no recipient to deliver: the
   * data stops then, not when the body next has bytes. */
  if (s->state == ST_BDAT) {
    if (!message_undecided(m) || m->bdat_failed)
      bdat_abandon(s, m);
    return;
  }

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
      send_rcpt(s, m, s->txn_rcpt);
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
      if (uses_bdat(s))
        bdat_start(s); /* the chunks follow at once (bdat_fill()) */
      else
        send_words(s, CMD_DATA, 0, "DATA", (const char *)NULL);
      break;
    case TXN_WAIT:
      return;
    case TXN_END: {
      if (txn_replies_due(s))
        return; /* pipelined replies still due */
      /* What may remain is a QUIT sent behind the end of data: the
       * connection is closing. */
      int closing = cmdq_head(&s->cmds) != NULL;
      message_done(s);
      set_state(s, closing ? ST_QUIT : ST_READY);
      return;
    }
    }
  }
}

/* Starts the body: the server said 354 (RFC 5321 4.1.1.4). */
static void data_start(smtpout_session *s)
{
  if (body_start(&s->body, (enum body_mode)s->cur->body_mode, 0) != 0) {
    out_of_memory(s);
    return;
  }
  if (s->cur->body_mode == BODY_CONVERT)
    note(s, "converting message %d to 7-bit: host %s does not offer "
         "8BITMIME", s->cur->id, s->mx);
  s->body_blocked = 0;
  set_state(s, ST_BODY);
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
  set_close(s, SMTPOUT_CLOSE_CONTENT,
            "message %d: %s, and host %s does not offer 8BITMIME: "
            "connection dropped before the end of data",
            m->id, why, s->mx);
  fail(s, 0, "4.6.3");
}

/* The data has ended: the end of data is queued, and its reply due. */
static void data_end(smtpout_session *s, struct message *m)
{
  /* The body buffer stays for the next message: release_idle() frees it
   * when none follows. */
  m->dot_queued = 1;
  set_state(s, ST_TRANSACTION);
  if (expect(s, CMD_DOT, 0) != 0)
    return;
  /* RFC 2920 3.1: message content may open a command group and QUIT may
   * close one.  When the host has asked to quit and no other message
   * waits, QUIT leaves with the end of data, saving the connection a
   * round trip, as Postfix does. */
  if ((s->caps & SMTPOUT_CAP_PIPELINING) && s->quit_requested &&
      m->next == NULL)
    send_cmd(s, CMD_QUIT, 0, "QUIT");
}

/*
 * Asks the host for at most `want` bytes of the current message's body
 * and writes them, canonical, into `into` (the output with DATA, the
 * chunk being staged with BDAT).  Returns 1 when bytes or the end came
 * (*pnread, *peof); 0 when the session must stop pulling: the host has
 * nothing now (body_blocked), or the message or the connection has
 * failed, already reported.
 */
static int body_pull(smtpout_session *s, struct message *m, size_t want,
                     struct buf *into, size_t *pnread, int *peof)
{
  size_t nread = 0;
  int eof = 0;
  int rv = s->cb.read_body ? s->cb.read_body(s, m->id, body_chunk(&s->body),
                                             want, &nread, &eof,
                                             s->user_data)
                           : SMTPOUT_ERR_CALLBACK_FAILURE;
  /* No bytes and no end is "nothing now", whatever the callback
   * returned: asking again at once would spin here forever, and no
   * deadline could ever fire.  The host calls
   * smtpout_session_resume_body(); the data-block timeout bounds the
   * wait. */
  if (rv == SMTPOUT_ERR_WOULDBLOCK || (rv == 0 && nread == 0 && !eof)) {
    s->body_blocked = 1;
    return 0;
  }
  if (rv != 0 || nread > want) {
    /* The data cannot be ended without delivering a truncated message
     * (a dot, or a LAST chunk), so the connection is dropped instead. */
    set_close(s, SMTPOUT_CLOSE_CALLBACK_FAILURE,
              "local error reading the message body");
    fail(s, 0, "4.3.0");
    return 0;
  }
  const char *why = NULL;
  enum body_result br = body_write(&s->body, nread, eof, into, &why);
  if (br == BODY_NOMEM) {
    out_of_memory(s);
    return 0;
  }
  if (br == BODY_REFUSED) {
    body_refused(s, m, why);
    return 0;
  }
  *pnread = nread;
  *peof = eof;
  return 1;
}

/* Pulls body from the host while the output has room. */
static void body_fill(smtpout_session *s)
{
  struct message *m = s->cur;
  size_t chunk = body_chunk_size(&s->body);
  while (s->state == ST_BODY && !s->body_blocked &&
         buf_len(&s->out) + buf_len(&s->wire) < OUT_HIGH_WATER) {
    size_t nread;
    int eof;
    if (!body_pull(s, m, chunk, &s->out, &nread, &eof))
      return;
    if (eof) {
      data_end(s, m);
      return;
    }
    if (nread > 0)
      s->deadline = s->now + data_block_timeout(s);
  }
}

/*
 * BDAT (RFC 3030).  The data goes in chunks whose length precedes them,
 * so each chunk is staged whole (s->chunk, at most BDAT_CHUNK_MAX) before
 * its "BDAT n" is written; canonical like DATA's (CRLF line ends, the
 * 7-bit conversion where the server needs it) but neither dot-stuffed nor
 * ended by a dot.  With PIPELINING the chunks follow MAIL and RCPT at
 * once, and each other, without waiting for replies (RFC 3030 4.2);
 * without it each waits for the reply to the one before.  A recipient is
 * delivered only by the 2xx to the LAST chunk (on_bdat_last()), as by
 * the end of data's.
 */
static void bdat_start(smtpout_session *s)
{
  if (body_start(&s->body, (enum body_mode)s->cur->body_mode, 1) != 0) {
    out_of_memory(s);
    return;
  }
  if (s->cur->body_mode == BODY_CONVERT)
    note(s, "converting message %d to 7-bit: host %s does not offer "
         "8BITMIME", s->cur->id, s->mx);
  buf_clear(&s->chunk);
  s->body_blocked = 0;
  set_state(s, ST_BDAT);
}

/* Writes the staged chunk out behind its BDAT command. */
static int bdat_emit(smtpout_session *s, int last)
{
  size_t n = buf_len(&s->chunk);
  char line[48];
  int k = snprintf(line, sizeof(line), "BDAT %zu%s", n, last ? " LAST" : "");
  trace(s, SMTPOUT_TRACE_SENT, line, (size_t)k);
  line[k++] = '\r';
  line[k++] = '\n';
  if (buf_append(&s->out, line, (size_t)k) != 0 ||
      (n > 0 && buf_append(&s->out, buf_head(&s->chunk), n) != 0)) {
    out_of_memory(s);
    return -1;
  }
  buf_clear(&s->chunk);
  /* The reply can only come once the chunk has left: it is expected
   * after its last byte. */
  return expect(s, last ? CMD_BDAT_LAST : CMD_BDAT, 0);
}

/* The transaction stops sending data: the LAST chunk is out, or no
 * recipient can be delivered any more. */
static void bdat_done(smtpout_session *s)
{
  body_end(&s->body);
  buf_free(&s->chunk); /* an idle connection holds no chunk buffer */
  set_state(s, ST_TRANSACTION);
}

/*
 * No recipient is left to deliver (MAIL or every RCPT refused, a chunk
 * refused): the data stops, without its LAST chunk (RFC 3030 2: no
 * chunk after a refused one).  The server may hold the transaction open
 * with the chunks it took, so RSET goes before the next one.
 */
static void bdat_abandon(smtpout_session *s, struct message *m)
{
  if (m->mail_ok)
    s->need_rset = 1;
  bdat_done(s);
  s->txn_pos = TXN_END;
  txn_step(s);
}

/* The LAST chunk is queued: the end of data's reply is due. */
static void bdat_end(smtpout_session *s, struct message *m)
{
  m->dot_queued = 1;
  bdat_done(s);
  /* QUIT may follow the last chunk, as it follows DATA's dot. */
  if ((s->caps & SMTPOUT_CAP_PIPELINING) && s->quit_requested &&
      m->next == NULL)
    send_cmd(s, CMD_QUIT, 0, "QUIT");
}

/* True when the session may add a chunk now: the body is not blocked,
 * and without PIPELINING the chunk before has its reply. */
static int bdat_may_write(const smtpout_session *s)
{
  return s->state == ST_BDAT && !s->body_blocked &&
         ((s->caps & SMTPOUT_CAP_PIPELINING) || !txn_replies_due(s));
}

/* Pulls body from the host into chunks while the output has room. */
static void bdat_fill(smtpout_session *s)
{
  struct message *m = s->cur;
  while (bdat_may_write(s) &&
         buf_len(&s->out) + buf_len(&s->wire) < OUT_HIGH_WATER) {
    if (!message_undecided(m) || m->bdat_failed) {
      bdat_abandon(s, m);
      return;
    }
    /* As much as surely fits the chunk; when that is little, the chunk
     * goes first. */
    size_t want = body_chunk_fit(&s->body,
                                 BDAT_CHUNK_MAX - buf_len(&s->chunk));
    if (want < BDAT_READ_MIN && buf_len(&s->chunk) > 0) {
      if (bdat_emit(s, 0) != 0)
        return;
      continue;
    }
    size_t nread;
    int eof;
    if (!body_pull(s, m, want, &s->chunk, &nread, &eof))
      return;
    if (eof) {
      if (bdat_emit(s, 1) == 0)
        bdat_end(s, m);
      return;
    }
    if (nread > 0 && cmdq_head(&s->cmds) == NULL)
      s->deadline = s->now + data_block_timeout(s);
  }
}

/* ------------------------------------------------------------------ */
/* Replies                                                              */

/* A reply whose class the command does not allow: the server said
 * something that cannot answer it. */
static void protocol_error(smtpout_session *s, enum cmd c,
                           const struct reply *r)
{
  set_close(s, SMTPOUT_CLOSE_PROTOCOL, "unexpected reply to %s from host "
            "%s: %d %s", cmd_name(c), s->mx, r->code, r->text);
  fail(s, 0, "4.5.0");
}

/*
 * The server refused the whole session: a 4xx or 5xx greeting, or both
 * EHLO and HELO refused.  That says this server will not talk to us, not
 * that the recipients are bad, so every recipient is deferred, never
 * bounced, and the host takes them to the next address; with none left
 * they stay deferred.  Postfix does the same by default
 * (smtp_skip_5xx_greeting): one misconfigured MX of several must not bounce
 * mail another would take.  A result's codes always agree with its status,
 * so a 5xx becomes code 0 and 4.X.Y (the server's subject and detail, as
 * Postfix turns 5.X.Y into 4.X.Y; 4.0.0 without one); the reply stays in
 * the text.
 */
static void session_refused(smtpout_session *s, enum cmd c,
                            const struct reply *r)
{
  set_close(s, SMTPOUT_CLOSE_SERVICE_UNAVAILABLE, "host %s refused %s: %d %s",
            s->mx, c == CMD_GREETING ? "service" : cmd_name(c), r->code,
            r->text);
  if (r->code / 100 == 4) {
    give_up(s, r->code, r->enhanced);
    return;
  }
  char enhanced[sizeof(r->enhanced)];
  snprintf(enhanced, sizeof(enhanced), "%s",
           r->enhanced[0] ? r->enhanced : "4.0.0");
  enhanced[0] = '4';
  give_up(s, 0, enhanced);
}

static void on_greeting(smtpout_session *s, size_t ri, const struct reply *r)
{
  (void)ri;
  if (r->code == 220)
    send_ehlo(s);
  else if (r->code / 100 == 4 || r->code / 100 == 5)
    session_refused(s, CMD_GREETING, r);
  else
    protocol_error(s, CMD_GREETING, r);
}

static void on_ehlo(smtpout_session *s, size_t ri, const struct reply *r)
{
  (void)ri;
  switch (r->code / 100) {
  case 2:
    greeted(s, s->caps_pending, s->max_size_pending, s->auth_offer_pending);
    break;
  case 5:
    /* RFC 5321 4.1.4: a server that does not know EHLO gets HELO. */
    set_state(s, ST_HELO);
    send_cmd(s, CMD_HELO, 0, "HELO %s", s->helo);
    break;
  case 4:
    session_refused(s, CMD_EHLO, r);
    break;
  default:
    protocol_error(s, CMD_EHLO, r);
  }
}

static void on_helo(smtpout_session *s, size_t ri, const struct reply *r)
{
  (void)ri;
  if (r->code / 100 == 2)
    greeted(s, 0, 0, "");
  else if (r->code / 100 == 4 || r->code / 100 == 5)
    session_refused(s, CMD_HELO, r);
  else
    protocol_error(s, CMD_HELO, r);
}

static void on_starttls(smtpout_session *s, size_t ri, const struct reply *r)
{
  (void)ri;
  if (r->code == 220) {
    tls_start(s);
    return;
  }
  if (r->code / 100 != 4 && r->code / 100 != 5) {
    /* Anything else (a 3xx, a 2xx other than 220) is never taken as a
     * go-ahead, in any mode.  Whatever the server meant, it did not
     * start TLS. */
    starttls_refused(s, r);
    protocol_error(s, CMD_STARTTLS, r);
    return;
  }
  /* RFC 3207 4: after a refusal the client decides.  Under optional we go
   * on in plaintext on this connection; under require a refusal (which a
   * network attacker can forge) defers, never bounces.  No certificate
   * was seen, so verify_error stays empty: the reply is the TLS info's
   * failure text. */
  if (s->starttls == SMTPOUT_STARTTLS_OPTIONAL) {
    note(s, "host %s refused STARTTLS (%d); going on without TLS, as the "
         "policy permits", s->mx, r->code);
    set_state(s, ST_READY);
    starttls_refused(s, r);
    return;
  }
  char by[64];
  set_close(s, SMTPOUT_CLOSE_TLS_POLICY,
            "TLS is required%s%s, but host %s refused to start TLS: %d %s",
            required_by(s, by, sizeof(by)), auth_clause(s), s->mx, r->code,
            r->text);
  auth_withheld(s, SMTPOUT_AUTH_OUTCOME_NO_TLS);
  starttls_refused(s, r);
  give_up(s, 0, tls_unavailable_code(s));
}

static void on_rset(smtpout_session *s, size_t ri, const struct reply *r)
{
  (void)ri;
  if (r->code / 100 == 2) {
    txn_step(s);
    return;
  }
  /* RFC 5321 4.1.1.5: RSET cannot fail.  A 4xx keeps its codes; any other
   * reply is a protocol error, deferred 4.5.0 (a deferral never carries a
   * 5xx code). */
  set_close(s, SMTPOUT_CLOSE_PROTOCOL, "host %s refused RSET: %d %s", s->mx,
            r->code, r->text);
  if (r->code / 100 == 4)
    give_up(s, r->code, r->enhanced);
  else
    give_up(s, 0, "4.5.0");
}

static void on_mail(smtpout_session *s, size_t ri, const struct reply *r)
{
  (void)ri;
  struct message *m = s->cur;
  if (r->code / 100 == 2) {
    m->mail_ok = 1;
  } else if (r->code / 100 == 4 || r->code / 100 == 5) {
    struct verdict v = verdict_of_reply(r);
    settle(s, m, RCPT_UNDECIDED, &v);
  } else {
    protocol_error(s, CMD_MAIL, r);
    return;
  }
  txn_step(s);
}

static void on_rcpt(smtpout_session *s, size_t ri, const struct reply *r)
{
  struct message *m = s->cur;
  int klass = r->code / 100;
  if (klass != 2 && klass != 4 && klass != 5) {
    protocol_error(s, CMD_RCPT, r);
    return;
  }
  /* After a refused MAIL the server answers RCPT with 503s that say
   * nothing about the recipient: those recipients already have the MAIL
   * reply. */
  if (m->mail_ok) {
    if (klass == 2) {
      rcpt_accept(m, ri);
    } else {
      struct verdict v = verdict_of_reply(r);
      settle_one(s, m, ri, &v);
    }
  }
  txn_step(s);
}

static void on_data(smtpout_session *s, size_t ri, const struct reply *r)
{
  (void)ri;
  struct message *m = s->cur;
  if (r->code == 354) {
    if (m->mail_ok && m->naccepted > 0) {
      data_start(s);
      return;
    }
    /* RFC 2920 3.1: pipelined DATA accepted although every RCPT failed;
     * end it with a lone dot, delivering nothing. */
    if (buf_append(&s->out, ".\r\n", 3) != 0) {
      out_of_memory(s);
      return;
    }
    trace(s, SMTPOUT_TRACE_SENT, ".", 1);
    expect(s, CMD_DOT, 0);
    return;
  }
  if (r->code / 100 != 4 && r->code / 100 != 5) {
    protocol_error(s, CMD_DATA, r);
    return;
  }
  struct verdict v = verdict_of_reply(r);
  settle(s, m, RCPT_ONLY_ACCEPTED, &v);
  if (m->mail_ok)
    s->need_rset = 1;
  s->txn_pos = TXN_END;
  txn_step(s);
}

static void on_dot(smtpout_session *s, size_t ri, const struct reply *r)
{
  (void)ri;
  int klass = r->code / 100;
  if (klass != 2 && klass != 4 && klass != 5) {
    protocol_error(s, CMD_DOT, r);
    return;
  }
  /* The only place a recipient becomes delivered: a 2xx to the end of
   * data (RFC 5321 4.1.1.4). */
  struct verdict v = verdict_of_reply(r);
  settle(s, s->cur, RCPT_ONLY_ACCEPTED, &v);
  s->txn_pos = TXN_END;
  txn_step(s);
}

/* The reply to a chunk that is not the last.  A refusal ends the data:
 * the transaction failed (RFC 3030 2), and the recipients accepted so
 * far get the reply, as from the end of data. */
static void on_bdat(smtpout_session *s, size_t ri, const struct reply *r)
{
  (void)ri;
  struct message *m = s->cur;
  int klass = r->code / 100;
  if (klass != 2 && klass != 4 && klass != 5) {
    protocol_error(s, CMD_BDAT, r);
    return;
  }
  if (klass != 2) {
    struct verdict v = verdict_of_reply(r);
    settle(s, m, RCPT_ONLY_ACCEPTED, &v);
    m->bdat_failed = 1;
  }
  txn_step(s);
}

/* The reply to the LAST chunk: the end of data's (on_dot()), the only
 * other place a recipient becomes delivered. */
static void on_bdat_last(smtpout_session *s, size_t ri, const struct reply *r)
{
  (void)ri;
  struct message *m = s->cur;
  int klass = r->code / 100;
  if (klass != 2 && klass != 4 && klass != 5) {
    protocol_error(s, CMD_BDAT_LAST, r);
    return;
  }
  struct verdict v = verdict_of_reply(r);
  settle(s, m, RCPT_ONLY_ACCEPTED, &v);
  /* After a refused chunk the server may still hold the transaction. */
  if (klass != 2 && m->mail_ok)
    s->need_rset = 1;
  s->txn_pos = TXN_END;
  txn_step(s);
}

static void on_quit(smtpout_session *s, size_t ri, const struct reply *r)
{
  (void)ri;
  (void)r;
  set_state(s, ST_DONE);
  if (s->tls_active)
    s->tls_be->close_notify(s->tls);
}

/* One handler per command, for the reply that answers it. */
typedef void reply_handler(smtpout_session *s, size_t rcpt,
                           const struct reply *r);
static reply_handler *const handlers[] = {
  [CMD_GREETING] = on_greeting, [CMD_EHLO] = on_ehlo,
  [CMD_HELO] = on_helo,         [CMD_STARTTLS] = on_starttls,
  [CMD_RSET] = on_rset,         [CMD_MAIL] = on_mail,
  [CMD_RCPT] = on_rcpt,         [CMD_DATA] = on_data,
  [CMD_DOT] = on_dot,           [CMD_QUIT] = on_quit,
  [CMD_AUTH] = on_auth,         [CMD_BDAT] = on_bdat,
  [CMD_BDAT_LAST] = on_bdat_last,
};

/* A 421 to anything but QUIT: the server is closing (RFC 5321 3.8). */
static void on_421(smtpout_session *s, const struct expect *e,
                   const struct reply *r)
{
  set_close(s, SMTPOUT_CLOSE_SERVICE_UNAVAILABLE,
            "host %s closed the session: %d %s", s->mx, r->code, r->text);
  if (e && e->cmd == CMD_STARTTLS)
    starttls_refused(s, r);
  if (e && e->cmd == CMD_DOT && e->sent_at <= s->written && s->cur)
    /* A 421 in the place of the reply to an end of data the server has
     * read is that reply: it refused the message (RFC 5321 3.8).  A
     * reply came, so the message is deferred, not "possibly delivered",
     * and the host may take it to another address. */
    s->cur->dot_queued = 0;
  /* The reply parser keeps an enhanced code only of the reply's class: a
   * 421 carries a 4.x.x or none. */
  fail(s, r->code, r->enhanced[0] ? r->enhanced : "4.3.2");
}

/* A complete reply: to its command's handler, unless it cannot answer
 * one. */
static void on_reply(smtpout_session *s, const struct reply *r)
{
  const struct expect *e = cmdq_head(&s->cmds);
  if (r->code == 421 && (e == NULL || e->cmd != CMD_QUIT)) {
    on_421(s, e, r);
    return;
  }
  if (s->state == ST_BODY) {
    /* RFC 5321 4.1.1.4: the server replies once the data has ended.  A
     * reply before that answers nothing we sent, whatever its code (a
     * 250 here must never read as a delivery, nor a 5xx as a bounce). */
    set_close(s, SMTPOUT_CLOSE_PROTOCOL,
              "host %s replied while the message data was being sent: %d %s",
              s->mx, r->code, r->text);
    fail(s, 0, "4.5.0");
    return;
  }
  if (e == NULL) {
    set_close(s, SMTPOUT_CLOSE_PROTOCOL,
              "unexpected reply from host %s: %d %s", s->mx, r->code,
              r->text);
    fail(s, 0, "4.5.0");
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
    set_close(s, SMTPOUT_CLOSE_PROTOCOL, "host %s replied to %s before it "
              "was sent: %d %s", s->mx, cmd_name(c), r->code, r->text);
    fail(s, 0, "4.5.0");
    return;
  }
  reply_done(s);
  handlers[c](s, ri, r);
}

/* ------------------------------------------------------------------ */
/* Input                                                                */

/* The connection ends while STARTTLS waits for its reply (a malformed
 * reply, a timeout, a close): the server did not start TLS. */
static void starttls_unanswered(smtpout_session *s)
{
  if (s->state == ST_STARTTLS)
    starttls_refused(s, NULL);
}

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
    if (ev == REPLY_NOMEM) {
      out_of_memory(s);
      return 1;
    }
    if (ev == REPLY_ERROR) {
      set_close(s, SMTPOUT_CLOSE_PROTOCOL, "%s from host %s", s->rp.error,
                s->mx);
      starttls_unanswered(s);
      fail(s, 0, "4.5.0");
      return 1;
    }
    size_t ln;
    const uint8_t *line = reply_line_raw(&s->rp, &ln);
    const struct expect *e = cmdq_head(&s->cmds);
    if (e && e->cmd == CMD_AUTH &&
        sasl_client_secret_in(s->auth.client, line, ln)) {
      static const char withheld[] =
          "(reply line withheld: it contains the AUTH secret)";
      trace(s, SMTPOUT_TRACE_INFO, withheld, sizeof(withheld) - 1);
    } else {
      trace(s, SMTPOUT_TRACE_RECEIVED, (const char *)line, ln);
    }
    if (e && e->cmd == CMD_EHLO && s->rp.reply.nlines > 1) {
      const uint8_t *t = reply_line_text(&s->rp, &ln);
      uint32_t cap = reply_ehlo_keyword(t, ln, &s->max_size_pending);
      s->caps_pending |= cap;
      if (cap == SMTPOUT_CAP_AUTH && ln > 4)
        auth_offer_add(s, t + 4, ln - 4);
    }
    if (ev == REPLY_LINE)
      continue;
    on_reply(s, &s->rp.reply);
    if (s->state == ST_HANDSHAKE) {
      /* The bytes after "220 Ready to start TLS" in the same read came in
       * clear and claim to be from inside TLS: response injection
       * (CVE-2011-0411's mirror image).  Never parse them; abort, with no
       * plaintext retry: this is an attack, not a broken server. */
      if (n > 0) {
        char text[NAME_MAX_LEN + 128];
        snprintf(text, sizeof(text),
                 "host %s sent %zu bytes of clear text after its STARTTLS "
                 "reply (response injection)", s->mx, n);
        handshake_failed(s, SMTPOUT_CLOSE_PROTOCOL, 0, text);
      }
      return 1;
    }
  }
  return 0;
}

static void input_tls(smtpout_session *s)
{
  uint8_t plain[16384];
  const struct tls_backend *be = s->tls_be;
  if (s->state == ST_HANDSHAKE) {
    int rv = be->handshake(s->tls);
    if (rv == TLS_AGAIN)
      return;
    if (rv == TLS_NOMEM) {
      out_of_memory(s);
      return;
    }
    if (rv != TLS_OK) {
      handshake_error(s, SMTPOUT_CLOSE_TLS, be->error_text(s->tls));
      return;
    }
    handshake_done(s);
  }
  while (s->state != ST_DONE) {
    long n = be->read(s->tls, plain, sizeof(plain));
    if (n == TLS_AGAIN)
      return;
    if (n == TLS_NOMEM) {
      out_of_memory(s);
      return;
    }
    if (n == TLS_EOF || n == TLS_FAILED) {
      if (s->state == ST_QUIT) {
        set_state(s, ST_DONE); /* the results are final */
        return;
      }
      /* A TLS failure after the handshake ends the connection; nothing
       * continues in clear. */
      set_close(s, n == TLS_EOF ? SMTPOUT_CLOSE_CONNECTION_CLOSED
                                : SMTPOUT_CLOSE_TLS,
                "%s (host %s)", be->error_text(s->tls), s->mx);
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
    closed_after_quit(s);
    return;
  case ST_HANDSHAKE:
    handshake_error(s, SMTPOUT_CLOSE_TLS, "connection closed by the server");
    return;
  default: {
    const struct expect *e = cmdq_head(&s->cmds);
    set_close(s, SMTPOUT_CLOSE_CONNECTION_CLOSED,
              "connection closed by host %s %s %s", s->mx,
              e ? "while waiting for the reply to" : "during",
              e ? cmd_name((enum cmd)e->cmd)
                : (s->state == ST_BODY || s->state == ST_BDAT)
                    ? "message data"
                    : "an idle session");
    starttls_unanswered(s);
    fail(s, 0, "4.4.2");
  }
  }
}

static void timed_out(smtpout_session *s)
{
  if (s->state == ST_QUIT) {
    /* Results are final; the server just did not say goodbye. */
    closed_after_quit(s);
    return;
  }
  if (s->state == ST_HANDSHAKE) {
    /* A handshake failure like any other: 4.7.5, not 4.4.2. */
    handshake_error(s, SMTPOUT_CLOSE_TIMEOUT, "timed out");
    return;
  }
  const struct expect *e = cmdq_head(&s->cmds);
  /* In ST_BDAT a reply may be what is late, or the body. */
  int body = s->state == ST_BODY || (s->state == ST_BDAT && e == NULL);
  const char *what = body ? "sending message data"
                     : e  ? cmd_name((enum cmd)e->cmd)
                          : "the server";
  set_close(s, SMTPOUT_CLOSE_TIMEOUT, "timed out %s %s (host %s)",
            body ? "during" : "waiting for the reply to", what, s->mx);
  starttls_unanswered(s);
  fail(s, 0, "4.4.2");
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
    if (s->msgs.head != NULL) {
      struct message *m = s->msgs.head;
      if (!message_precheck(s, m)) {
        message_done(s);
        continue;
      }
      s->cur = m;
      s->txn_pos = TXN_RSET;
      set_state(s, ST_TRANSACTION);
      txn_step(s);
      continue;
    }
    if (s->quit_requested) {
      set_state(s, ST_QUIT);
      send_cmd(s, CMD_QUIT, 0, "QUIT");
    }
    break;
  }
  s->busy--;
}

static void session_destroy(smtpout_session *s);

/* An idle connection (greeted and secured, nothing queued, nothing in
 * flight, every byte written) holds no buffer: a host keeping thousands of
 * connections open for their next message pays for their sessions and TLS
 * state, not for the body chunk (16 KiB) and the few KiB of buffers each
 * message grew.  They come back with the next message; a session that
 * goes from one message to the next without a pause (one submitted from
 * on_message_done) never gets here, and allocates none of them again. */
static void release_idle(smtpout_session *s)
{
  if (s->state != ST_READY || s->msgs.head != NULL || s->quit_requested ||
      cmdq_head(&s->cmds) != NULL || buf_len(&s->out) > 0 ||
      buf_len(&s->wire) > 0 || reply_parser_busy(&s->rp))
    return;
  buf_free(&s->out);
  buf_free(&s->wire);
  cmdq_free(&s->cmds);
  reply_parser_release(&s->rp);
  body_end(&s->body);
}

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

/*
 * Ends a public call: the outermost one advances the state machine.
 * Stores in *rv (when not NULL) what the call returns: SMTPOUT_ERR_NOMEM
 * when it ran out of memory (the connection is then over), else 0.
 * Returns 1 when the session is gone: smtpout_session_free() was called
 * from a callback, and the outermost call frees it here, once nothing up
 * the stack uses it.  The caller must not touch it then.
 */
static int leave(smtpout_session *s, int *rv)
{
  int gone = 0;
  if (--s->busy == 0) {
    if (!s->free_requested) {
      advance(s);
      release_idle(s);
    }
    gone = s->free_requested;
  }
  if (rv)
    *rv = s->nomem ? SMTPOUT_ERR_NOMEM : 0;
  if (gone)
    session_destroy(s);
  return gone;
}

/* ------------------------------------------------------------------ */
/* Public API                                                           */

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
  s->no_chunking = !config_chunking(s->config);
  s->tls_be = &tls_gnutls_backend;
  set_state(s, ST_INIT);
  msgq_init(&s->msgs);
  reply_parser_init(&s->rp);
  /* The EHLO name: the configuration's (already an A-label or a bracketed
   * address literal), else "localhost" until the host says (the session
   * does not ask the system for its name: the host knows it). */
  const char *helo = smtpout_config_helo_name(s->config);
  snprintf(s->helo, sizeof(s->helo), "%s", helo ? helo : "localhost");
  *psession = s;
  return 0;
}

/*
 * A relay hop's implicit TLS, AUTH and client certificate, through the
 * session's own setters (docs/relay.md): what a host would call, with the
 * secret read from the relay's auth-password-file now and wiped from the
 * stack at once (the session keeps its one copy until AUTH starts).
 * Credentials or implicit TLS make TLS mandatory and bar the plaintext
 * fallback whatever the hop's knobs say (the route says so already:
 * smtpout_hop_starttls(), _plaintext_fallback()).
 */
static int relay_setup(smtpout_session *s, const smtpout_hop *hop)
{
  int rv = 0;
  if (smtpout_hop_implicit_tls(hop))
    rv = smtpout_session_set_implicit_tls(s, 1);
  const char *user = smtpout_hop_auth_username(hop);
  if (rv == 0 && user) {
    /* Room for SASL_SECRET_MAX bytes, a CR and the NUL; a secret longer
     * than the session takes is the file's fault, as an unreadable one. */
    char secret[SASL_SECRET_MAX + 2];
    int n = smtpout_hop_auth_secret(hop, secret, sizeof(secret));
    if (n < 0 || n > SASL_SECRET_MAX) {
      rv = n == SMTPOUT_ERR_INVALID_ARGUMENT || n > SASL_SECRET_MAX
               ? SMTPOUT_ERR_IO
               : n;
    } else {
      rv = smtpout_session_set_auth(s, smtpout_hop_auth_mechanisms(hop),
                                    user, secret,
                                    smtpout_hop_auth_tls_any(hop)
                                        ? SMTPOUT_AUTH_TLS_ANY
                                        : 0);
    }
    explicit_bzero(secret, sizeof(secret));
  }
  if (rv == 0 && smtpout_hop_client_cert(hop))
    rv = smtpout_session_set_client_cert(s, smtpout_hop_client_cert(hop),
                                         smtpout_hop_client_key(hop));
  if (rv == 0 && (s->implicit_tls || s->auth.wanted)) {
    if (s->starttls == SMTPOUT_STARTTLS_OPTIONAL)
      s->starttls = SMTPOUT_STARTTLS_REQUIRE;
    s->hop.fallback = 0;
  }
  return rv;
}

int smtpout_session_new_for_hop(smtpout_session **psession,
                                const smtpout_hop *hop,
                                smtpout_config *config,
                                const smtpout_callbacks *callbacks,
                                void *user_data)
{
  if (psession == NULL || hop == NULL || callbacks == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  smtpout_session *s;
  int rv = smtpout_session_new(&s, smtpout_hop_mx(hop), config, callbacks,
                               user_data);
  if (rv != 0)
    return rv;
  rv = hop_tls_copy(&s->hop, hop, s->mx, s->mx_is_ip);
  if (rv != 0) {
    session_destroy(s);
    return rv;
  }
  /* The route resolved the policy for this domain and MX host, with the
   * precedence applied: the session looks nothing up, and no host call
   * changes it (smtpout_session_set_tls_policy() is refused). */
  s->for_hop = 1;
  s->policy_fixed = 1;
  s->policy_override = 1;
  s->starttls = s->hop.starttls;
  s->allow_invalid_certs = s->hop.allow_invalid_certs;
  s->tls_info.requirement = s->hop.requirement;
  s->tls_info.tlsa_records = s->hop.ntlsa;
  rv = relay_setup(s, hop);
  if (rv != 0) {
    session_destroy(s);
    return rv;
  }
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
  hop_tls_clear(&session->hop);
  msgq_free(&session->msgs);
  if (session->tls)
    session->tls_be->conn_free(session->tls);
  tls_creds_unref(session->trust);
  tls_keypair_unref(session->client_cert);
  auth_end(session);
  free(session->auth.username);
  /* What is left of AUTH lines in the buffer's storage, too. */
  if (session->out.data)
    explicit_bzero(session->out.data, session->out.cap);
  buf_free(&session->out);
  buf_free(&session->wire);
  buf_free(&session->chunk);
  cmdq_free(&session->cmds);
  reply_parser_release(&session->rp);
  body_end(&session->body);
  free(session->close_text);
  free(session->memo_domain);
  smtpout_config_unref(session->config);
  free(session);
}

size_t session_held_bytes(const smtpout_session *s)
{
  return s->out.cap + s->wire.cap + s->cmds.cap * sizeof(*s->cmds.e) +
         reply_parser_held(&s->rp) + body_held(&s->body);
}

void session_set_tls_backend(smtpout_session *s,
                             const struct tls_backend *backend)
{
  s->tls_be = backend;
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
  char helo[sizeof(s->helo)];
  int rv = name_normalize(name, helo, sizeof(helo));
  if (rv == 0)
    memcpy(s->helo, helo, sizeof(helo));
  return rv;
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
  if (s->state != ST_INIT || s->implicit_tls)
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
  /* Read now, at the host's call: never while the network is read. */
  struct tls_creds *creds;
  int rv = tls_creds_new(&creds, path);
  if (rv != 0)
    return rv;
  tls_creds_unref(s->trust);
  s->trust = creds;
  s->own_trust = 1;
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

int smtpout_session_set_auth(smtpout_session *s, const char *mechanisms,
                             const char *username, const char *secret,
                             uint32_t flags)
{
  enum sasl_mech prefs[SASL_MECH_COUNT];
  size_t nprefs, slen;
  if (s == NULL || (flags & ~SMTPOUT_AUTH_TLS_ANY) ||
      sasl_credentials_check(mechanisms, username, secret, prefs, &nprefs,
                             &slen) != 0)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (s->state != ST_INIT)
    return SMTPOUT_ERR_INVALID_STATE;
  char *u = strdup(username);
  char *pw = malloc(slen + 1);
  if (u == NULL || pw == NULL) {
    free(u);
    free(pw);
    return SMTPOUT_ERR_NOMEM;
  }
  memcpy(pw, secret, slen + 1);
  auth_forget_secret(s);
  free(s->auth.username);
  s->auth.username = u;
  s->auth.secret = pw;
  s->auth.secret_len = slen;
  memcpy(s->auth.prefs, prefs, sizeof(prefs));
  s->auth.nprefs = nprefs;
  s->auth.flags = flags;
  s->auth.wanted = 1;
  return 0;
}

int smtpout_session_set_implicit_tls(smtpout_session *s, int enable)
{
  if (s == NULL || (enable != 0 && enable != 1))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (s->state != ST_INIT || (enable && s->plaintext_fallback))
    return SMTPOUT_ERR_INVALID_STATE;
  s->implicit_tls = enable;
  return 0;
}

int smtpout_session_set_client_cert(smtpout_session *s, const char *cert_path,
                                    const char *key_path)
{
  if (s == NULL || cert_path == NULL || key_path == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (s->state != ST_INIT)
    return SMTPOUT_ERR_INVALID_STATE;
  /* Read now, at the host's call: never while the network is read. */
  struct tls_keypair *kp;
  int rv = tls_keypair_new(&kp, cert_path, key_path);
  if (rv != 0)
    return rv;
  tls_keypair_unref(s->client_cert);
  s->client_cert = kp;
  return 0;
}

int smtpout_session_set_chunking(smtpout_session *s, int enable)
{
  if (s == NULL || (enable != 0 && enable != 1))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  s->no_chunking = !enable;
  return 0;
}

int smtpout_session_start(smtpout_session *s, uint64_t now)
{
  if (s == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (s->state != ST_INIT || s->busy)
    return SMTPOUT_ERR_INVALID_STATE;
  /* The greeting's deadline runs from now. */
  if (now > s->now)
    s->now = now;
  if (cmdq_push(&s->cmds, CMD_GREETING, 0, 0) != 0)
    return SMTPOUT_ERR_NOMEM; /* nothing changed: still not started */
  /* The trust anchors, unless the session has its own or will never use
   * TLS: the configuration's, loaded with its first session and shared
   * (tls_cache_get()).  A failure is not this call's: it ends the
   * connection at STARTTLS time (close reason tls-setup, 4.7.0), and a
   * session that never gets there is not held back by it.  A plaintext
 * fallback never sends STARTTLS. */
  if (s->trust == NULL && !s->plaintext_fallback)
    s->trust_error = config_trust(s->config, &s->trust);
  enter(s, now);
  if (s->implicit_tls) {
    /* RFC 8314 3.3: TLS from the first byte; the greeting comes inside
     * it.  The ClientHello goes out with the next peek. */
    s->tls_info.implicit = 1;
    if (tls_open(s) == 0) {
      set_state(s, ST_HANDSHAKE);
      note(s, "starting implicit TLS (SNI %s)", s->mx_is_ip ? "none" : s->mx);
      input_tls(s);
    }
  } else {
    set_state(s, ST_GREETING);
    arm_head_deadline(s);
  }
  leave(s, NULL);
  return 0;
}

/* The domain every recipient of `m` shares, or NULL. */
static const char *one_domain(const struct message *m)
{
  const char *d = address_domain(m->rcpts[0].addr);
  for (size_t i = 1; i < m->nrcpts; i++)
    if (strcmp(address_domain(m->rcpts[i].addr), d) != 0)
      return NULL;
  return d;
}

/*
 * Sets the policy of `m` (message_policy()), remembering it for the last
 * recipient domain: a connection to one MX mostly carries mail for one
 * domain, and a lookup (the domain and the MX normalised, the rules
 * probed) costs more than the rest of a submission.  The answer is a
 * function of the domain's bytes, the MX and the configuration, and a
 * session changes neither of the last two.
 */
static void policy_of(smtpout_session *s, struct message *m)
{
  const char *d = one_domain(m);
  if (d && s->memo_domain && strcmp(d, s->memo_domain) == 0) {
    m->starttls = s->memo_starttls;
    m->allow_invalid_certs = s->memo_allow_invalid_certs;
    return;
  }
  message_policy(m, s->config, s->mx);
  if (d == NULL)
    return;
  free(s->memo_domain);
  /* Without memory for it, the next message looks its policy up. */
  s->memo_domain = strdup(d);
  s->memo_starttls = m->starttls;
  s->memo_allow_invalid_certs = m->allow_invalid_certs;
}

int smtpout_session_submit(smtpout_session *s, const char *sender,
                           const char *const *recipients, size_t nrecipients,
                           uint64_t size, uint32_t flags)
{
  return smtpout_session_submit_dsn(s, sender, recipients, nrecipients, size,
                                    flags, NULL);
}

int smtpout_session_submit_dsn(smtpout_session *s, const char *sender,
                               const char *const *recipients,
                               size_t nrecipients, uint64_t size,
                               uint32_t flags, const smtpout_dsn *dsn)
{
  if (s == NULL || sender == NULL || recipients == NULL || nrecipients == 0 ||
      (flags & ~(SMTPOUT_MESSAGE_8BITMIME | SMTPOUT_MESSAGE_SMTPUTF8 |
                 SMTPOUT_MESSAGE_NO_7BIT_CONVERSION |
                 SMTPOUT_MESSAGE_REQUIRETLS)))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (s->state == ST_QUIT || s->state == ST_DONE || s->quit_requested)
    return SMTPOUT_ERR_INVALID_STATE;
  struct message *m;
  int rv = message_new(&m, sender, recipients, nrecipients, size, flags);
  if (rv != 0)
    return rv;
  if ((rv = message_set_dsn(m, dsn)) != 0) {
    message_free(m);
    return rv;
  }
  /* A REQUIRETLS message belongs to a route made for it: only its hops
   * are authenticated as RFC 8689 asks, and only its verdict bounces. */
  if ((flags & SMTPOUT_MESSAGE_REQUIRETLS) && s->for_hop &&
      !s->hop.requiretls) {
    message_free(m);
    return SMTPOUT_ERR_POLICY_CONFLICT;
  }
  if (!s->policy_override) {
    policy_of(s, m);
    /* REQUIRETLS cannot go in clear or to an unverified server. */
    if (flags & SMTPOUT_MESSAGE_REQUIRETLS)
      policy_tighten(&m->starttls, &m->allow_invalid_certs,
                     SMTPOUT_STARTTLS_REQUIRE, 0);
  }
  /* Once the connection has settled its TLS, a message wanting more than
   * it got must go elsewhere; one wanting less rides along. */
  if (s->policy_fixed && !s->policy_override &&
      (m->starttls > s->starttls ||
       (!m->allow_invalid_certs && s->allow_invalid_certs))) {
    message_free(m);
    return SMTPOUT_ERR_POLICY_CONFLICT;
  }
  int id = msgq_add(&s->msgs, m);
  if (id < 0)
    message_free(m);
  /* No advance() here: it could report results (a local bounce) for an
   * id the host has not been given yet, and would arm the reply deadline
   * from the time of the last I/O call, not from now.  An idle session
   * says it wants to write, and starts the transaction in the next
   * smtpout_session_peek_output(). */
  return id;
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
    set_close(s, SMTPOUT_CLOSE_ABORTED, "session aborted by the host");
    fail(s, 0, "4.3.0");
  }
  leave(s, NULL);
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
  s->nomem = 0;
  enter(s, now);
  if (s->tls) {
    if (s->tls_be->feed_input(s->tls, data, len) != 0)
      out_of_memory(s);
    else
      input_tls(s);
  } else {
    input_plain(s, data, len);
    if (s->state == ST_HANDSHAKE)
      input_tls(s); /* STARTTLS accepted: the ClientHello goes out now */
  }
  int rv;
  leave(s, &rv);
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
    s->tls_be->feed_eof(s->tls);
    input_tls(s);
  }
  if (s->state != ST_DONE)
    lost_connection(s);
  buf_clear(&s->out);
  buf_clear(&s->wire);
  leave(s, NULL);
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
  s->nomem = 0;
  advance(s);
  enter(s, now);
  if (s->state == ST_BODY)
    body_fill(s);
  else if (s->state == ST_BDAT)
    bdat_fill(s);
  const struct buf *b = &s->out;
  if (s->tls) {
    /* Plaintext queued since the last peek goes out as TLS records, as
     * few as possible: a pipelined batch is one record, not one per
     * command. */
    if (buf_len(&s->out) > 0 && s->state != ST_DONE) {
      if (s->tls_be->write(s->tls, buf_head(&s->out), buf_len(&s->out)) !=
          TLS_OK) {
        set_close(s, SMTPOUT_CLOSE_TLS, "%s",
                  s->tls_be->error_text(s->tls));
        fail(s, 0, "4.7.5");
      }
      /* An AUTH line is in the clear-text buffer only until it is
       * encrypted. */
      if (s->out_secret && s->out.data) {
        explicit_bzero(s->out.data, s->out.cap);
        s->out_secret = 0;
      }
      buf_clear(&s->out);
      cmdq_place(&s->cmds, s->written + buf_len(&s->wire));
      if (s->state != ST_BODY && s->state != ST_BDAT)
        buf_trim(&s->out, IDLE_BUF_MAX);
    }
    b = &s->wire;
  }
  s->peeked = b;
  s->peeked_len = buf_len(b);
  *pdata = buf_head(b);
  *plen = buf_len(b);
  int rv;
  if (leave(s, &rv)) {
    /* Freed from a callback: nothing to write, the bytes are gone. */
    *pdata = NULL;
    *plen = 0;
  }
  /* leave() may have queued more; the host sees it on the next peek. */
  return rv;
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
  if (s->state != ST_BODY && s->state != ST_BDAT)
    buf_trim((struct buf *)s->peeked, IDLE_BUF_MAX);
  s->peeked_len = left;
  s->written += n;
  if (s->state == ST_BODY ||
      (s->state == ST_BDAT && cmdq_head(&s->cmds) == NULL))
    s->deadline = s->now + data_block_timeout(s);
  leave(s, NULL);
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
  if (s->state == ST_READY && (s->msgs.head != NULL || s->quit_requested))
    return 1; /* the next peek starts a transaction or sends QUIT */
  return (s->state == ST_BODY && !s->body_blocked) || bdat_may_write(s);
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
  timed_out(s);
  leave(s, NULL);
  return 0;
}

int smtpout_session_is_done(const smtpout_session *s)
{
  return s != NULL && s->state == ST_DONE && buf_len(&s->out) == 0 &&
         buf_len(&s->wire) == 0;
}

int smtpout_session_hop_outcome(const smtpout_session *s)
{
  if (s == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (s->state != ST_DONE)
    return SMTPOUT_ERR_INVALID_STATE;
  if (s->requiretls_failed == RT_NOT_OFFERED)
    return SMTPOUT_HOP_REQUIRETLS_NOT_OFFERED;
  if (s->requiretls_failed == RT_UNAUTHENTICATED)
    return SMTPOUT_HOP_TLS_FAILED;
  if (!s->smtp_ready) {
    /* It ended before any mail transaction could start: TLS failed, or
     * the server did (Postfix's smtp_skip_5xx_greeting reasoning). */
    int r = s->close_reason;
    if (r == SMTPOUT_CLOSE_TLS || r == SMTPOUT_CLOSE_TLS_POLICY ||
        r == SMTPOUT_CLOSE_TLS_SETUP ||
        s->tls_info.outcome == SMTPOUT_TLS_OUTCOME_HANDSHAKE_FAILED)
      return SMTPOUT_HOP_TLS_FAILED;
    return SMTPOUT_HOP_HOST_FAILED;
  }
  return s->retry_elsewhere > 0 ? SMTPOUT_HOP_SESSION_FAILED
                                : SMTPOUT_HOP_DONE;
}

int smtpout_session_close_reason(const smtpout_session *s)
{
  return s ? s->close_reason : SMTPOUT_CLOSE_NONE;
}

const char *smtpout_session_close_text(const smtpout_session *s)
{
  return s ? close_text(s) : "";
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
  return s && s->tls ? s->tls_be->peer_count(s->tls) : 0;
}

int smtpout_session_peer_certificate(const smtpout_session *s, size_t index,
                                     smtpout_certificate **pcert)
{
  if (s == NULL || pcert == NULL || s->tls == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  return s->tls_be->peer_certificate(s->tls, index, pcert);
}

uint32_t smtpout_session_capabilities(const smtpout_session *s)
{
  return s ? s->caps : 0;
}

int smtpout_session_auth_outcome(const smtpout_session *s)
{
  return s ? s->auth.outcome : SMTPOUT_AUTH_OUTCOME_NONE;
}

const char *smtpout_session_auth_mechanism(const smtpout_session *s)
{
  return s && s->auth.mech_name[0] ? s->auth.mech_name : NULL;
}

int smtpout_session_policy_starttls(const smtpout_session *s)
{
  return s ? s->starttls : SMTPOUT_ERR_INVALID_ARGUMENT;
}

int smtpout_session_policy_allow_invalid_certs(const smtpout_session *s)
{
  return s ? s->allow_invalid_certs : SMTPOUT_ERR_INVALID_ARGUMENT;
}
