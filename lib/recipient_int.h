/*
 * recipient_int.h — the messages a session carries, their recipients, and
 * the one final result each recipient gets.
 *
 * A recipient is undecided (pending, or accepted by RCPT) until this
 * module gives it its result, and it gets exactly one: rcpt_settle() is
 * the only function that makes a result, and it makes none for a
 * recipient that already has one.  How a result was decided travels with
 * it: by a reply to the recipient's own commands (or a local check of the
 * recipient), or by the connection or the server as a whole, which says
 * nothing about the recipient and lets the host try another address
 * (smtpout_result_try_another_address()).
 *
 * The module never calls into the session: a function that decides a
 * recipient fills in the result and returns, and the session hands it to
 * the host.  In the manner of Postfix's smtp_rcpt.c (recipient
 * bookkeeping) beside smtp_proto.c (the protocol).
 */
#ifndef SMTPOUT_RECIPIENT_INT_H
#define SMTPOUT_RECIPIENT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "reply_int.h"
#include "smtpout/config.h"
#include "smtpout/session.h"

/* How a result was decided. */
enum verdict_scope {
  /* A reply to this recipient's own MAIL, RCPT, DATA or end of data, or a
   * local check of it (SIZE, SMTPUTF8, 8-bit conversion, its syntax). */
  SCOPE_RECIPIENT = 0,
  /* The connection or the server as a whole: a failure, a timeout, a
   * 421, the TLS policy, a refused session. */
  SCOPE_CONNECTION = 1
};

struct smtpout_result {
  int message_id;
  size_t index;
  const char *recipient;
  int status;
  int code;
  char enhanced[12];
  char text[REPLY_TEXT_MAX + 1];
  int possibly_delivered;
  int scope; /* enum verdict_scope */
  /* RFC 3461: the NOTIFY the host asked for (0: none), and whether it
   * went to the server with the recipient's RCPT. */
  uint32_t notify;
  int dsn_sent;
};

/* A decision for one or more recipients.  `enhanced` and `text` are
 * copied (truncated) into each result. */
struct verdict {
  int status; /* enum smtpout_status */
  int code;   /* the reply code, or 0 */
  const char *enhanced;
  const char *text;
  int scope; /* enum verdict_scope */
  /* The end of data has left the client: every byte up to it was written
   * to the socket.  Only then can the server have read it, and a
   * connection-level deferral of an accepted recipient of a message whose
   * end of data was sent be "possibly delivered". */
  int dot_written;
};

/* The verdict of a reply to a recipient's own command. */
struct verdict verdict_of_reply(const struct reply *r);

/* Fills `res` in: the one way a result is made, for the session
 * (rcpt_settle) and for the blocking driver's local decisions (a
 * recipient never tried, an address it refused). */
void result_set(struct smtpout_result *res, int message_id, size_t index,
                const char *recipient, const struct verdict *v,
                int possibly_delivered);

enum rcpt_state {
  RCPT_PENDING,  /* no RCPT reply yet */
  RCPT_ACCEPTED, /* RCPT answered 2xx; waits for the end of data */
  RCPT_FINAL     /* has its result */
};

struct rcpt {
  char *addr;
  unsigned char state; /* enum rcpt_state */
  unsigned char utf8;  /* the address has non-ASCII octets */
  unsigned char sent;  /* its RCPT was queued */
  uint32_t notify;     /* SMTPOUT_DSN_NOTIFY_*, or 0 */
  char *orcpt;         /* "type;xtext", or NULL */
};

struct message {
  struct message *next;
  int id;
  char *sender;
  struct rcpt *rcpts;
  size_t nrcpts;
  size_t naccepted; /* recipients in RCPT_ACCEPTED */
  uint64_t size;
  uint32_t flags;           /* SMTPOUT_MESSAGE_* */
  int starttls;             /* this message's own policy */
  int allow_invalid_certs;
  unsigned char body_mode;  /* enum body_mode (session.c) */
  unsigned char mail_ok;    /* MAIL FROM accepted */
  /* DSN (RFC 3461): RET and ENVID for MAIL, whether anything at all was
   * asked, and whether the MAIL went to a server that offers DSN (then
   * the parameters went with it). */
  unsigned char dsn_ret;    /* enum smtpout_dsn_ret */
  unsigned char dsn_wanted;
  unsigned char dsn_offered;
  char *envid;              /* xtext, or NULL */
  /* BDAT (RFC 3030): a chunk was refused, so no more are sent. */
  unsigned char bdat_failed;
  /* The end of data is in the output and no reply to it has arrived: if
   * the connection is lost now, the message may have been delivered. */
  unsigned char dot_queued;
};

/*
 * Makes a message: the sender ("" for <>) and `n` recipients, every one
 * checked (smtpout_address_check()) before anything is copied.  Returns 0,
 * SMTPOUT_ERR_INVALID_ARGUMENT (NULL recipient), SMTPOUT_ERR_BAD_ADDRESS
 * or SMTPOUT_ERR_NOMEM.
 */
int message_new(struct message **pm, const char *sender,
                const char *const *recipients, size_t n, uint64_t size,
                uint32_t flags);
void message_free(struct message *m);

/* Copies the DSN request `dsn` (NULL: none) of a message of `m->nrcpts`
 * recipients into it.  Returns 0, SMTPOUT_ERR_INVALID_ARGUMENT (`dsn`
 * describes a recipient past the last) or SMTPOUT_ERR_NOMEM. */
int message_set_dsn(struct message *m, const smtpout_dsn *dsn);

/* The strictest TLS policy over the message's recipient domains through
 * `mx` (a domain that is no valid name counts as the MX host alone). */
void message_policy(struct message *m, const smtpout_config *config,
                    const char *mx);

/* 1 when the message needs SMTPUTF8: flagged so, or an undecided
 * recipient's address (or the sender's) is not ASCII. */
int message_needs_smtputf8(const struct message *m);

/* 1 while some recipient has no result. */
int message_undecided(const struct message *m);

/* The recipients a settle applies to. */
enum rcpt_which {
  RCPT_UNDECIDED,     /* pending or accepted */
  RCPT_ONLY_ACCEPTED, /* accepted by RCPT, waiting for the end of data */
};

/*
 * Gives recipient `i` of `m` its final result, when it is in `which` and
 * has none yet: returns 1 and fills `res` (valid until the message is
 * freed), else 0.  `possibly delivered` is decided here and only here.
 */
int rcpt_settle(struct message *m, size_t i, enum rcpt_which which,
                const struct verdict *v, struct smtpout_result *res);

/* RCPT answered 2xx: recipient `i` waits for the end of data. */
void rcpt_accept(struct message *m, size_t i);

/* The messages of a session, oldest first; the head is the one in a
 * transaction, if any. */
struct msg_queue {
  struct message *head, *tail;
  int next_id;
};

void msgq_init(struct msg_queue *q);
/* Appends `m` and gives it the next id (> 0), which it returns, or
 * SMTPOUT_ERR_INVALID_STATE when ids are exhausted (`m` is not taken). */
int msgq_add(struct msg_queue *q, struct message *m);
/* Removes and frees the head; returns its id. */
int msgq_pop(struct msg_queue *q);
/* Frees every message, decided or not. */
void msgq_free(struct msg_queue *q);

#endif
