/*
 * command_int.h — the commands a session has sent and the replies they
 * wait for, in order (RFC 2920: with PIPELINING several are out at once,
 * and replies come back in the order of their commands).
 *
 * Each entry remembers how many bytes the host had to write before the
 * command was on the wire: a reply that arrives before then answers
 * nothing the server can have read (session.c refuses it).
 */
#ifndef SMTPOUT_COMMAND_INT_H
#define SMTPOUT_COMMAND_INT_H

#include <stddef.h>
#include <stdint.h>

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
  CMD_QUIT,
  CMD_AUTH,     /* the AUTH line, and each response to a 334 */
  CMD_BDAT,     /* a chunk of data that is not the last (RFC 3030) */
  CMD_BDAT_LAST /* the last chunk: its reply is the end of data's */
};

/* "greeting", "EHLO", ..., "end of data": for error texts. */
const char *cmd_name(enum cmd c);

struct expect {
  unsigned char cmd; /* enum cmd */
  size_t rcpt;       /* CMD_RCPT: which recipient of the message */
  /* The count of bytes written once this command has left; SENT_UNKNOWN
   * while it waits in the clear-text buffer for TLS to encrypt it. */
  uint64_t sent_at;
};
#define SENT_UNKNOWN UINT64_MAX

struct cmdq {
  struct expect *e;
  size_t head, tail, cap;
};

/* Appends a command.  Returns 0 or SMTPOUT_ERR_NOMEM. */
int cmdq_push(struct cmdq *q, enum cmd c, size_t rcpt, uint64_t sent_at);
/* The oldest command without its reply, the newest one, or NULL. */
static inline const struct expect *cmdq_head(const struct cmdq *q)
{
  return q->tail > q->head ? &q->e[q->head] : NULL;
}
const struct expect *cmdq_last(const struct cmdq *q);
/* Drops the oldest (its reply came), or all of them. */
void cmdq_pop(struct cmdq *q);
void cmdq_clear(struct cmdq *q);
/* The commands whose end was SENT_UNKNOWN were just encrypted: they end
 * at byte `end` of the stream. */
void cmdq_place(struct cmdq *q, uint64_t end);
void cmdq_free(struct cmdq *q);

#endif
