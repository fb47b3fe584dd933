/*
 * command.c — see command_int.h.
 */
#include <stdlib.h>
#include <string.h>

#include "command_int.h"
#include "smtpout/common.h"

const char *cmd_name(enum cmd c)
{
  static const char *const names[] = {
    [CMD_GREETING] = "greeting", [CMD_EHLO] = "EHLO",
    [CMD_HELO] = "HELO",         [CMD_STARTTLS] = "STARTTLS",
    [CMD_RSET] = "RSET",         [CMD_MAIL] = "MAIL FROM",
    [CMD_RCPT] = "RCPT TO",      [CMD_DATA] = "DATA",
    [CMD_DOT] = "end of data",   [CMD_QUIT] = "QUIT",
    [CMD_AUTH] = "AUTH",         [CMD_BDAT] = "BDAT",
    [CMD_BDAT_LAST] = "BDAT LAST",
  };
  return names[c];
}

int cmdq_push(struct cmdq *q, enum cmd c, size_t rcpt, uint64_t sent_at)
{
  if (q->tail == q->cap) {
    if (q->head > 0) {
      memmove(q->e, q->e + q->head, (q->tail - q->head) * sizeof(*q->e));
      q->tail -= q->head;
      q->head = 0;
    } else {
      size_t cap = q->cap ? q->cap * 2 : 8;
      struct expect *e = realloc(q->e, cap * sizeof(*e));
      if (e == NULL)
        return SMTPOUT_ERR_NOMEM;
      q->e = e;
      q->cap = cap;
    }
  }
  q->e[q->tail].cmd = (unsigned char)c;
  q->e[q->tail].rcpt = rcpt;
  q->e[q->tail].sent_at = sent_at;
  q->tail++;
  return 0;
}

const struct expect *cmdq_last(const struct cmdq *q)
{
  return q->tail > q->head ? &q->e[q->tail - 1] : NULL;
}

void cmdq_pop(struct cmdq *q)
{
  q->head++;
  if (q->head == q->tail)
    q->head = q->tail = 0;
}

void cmdq_clear(struct cmdq *q) { q->head = q->tail = 0; }

void cmdq_place(struct cmdq *q, uint64_t end)
{
  /* Unknown ends are always the newest entries. */
  for (size_t i = q->tail; i > q->head; i--) {
    if (q->e[i - 1].sent_at != SENT_UNKNOWN)
      break;
    q->e[i - 1].sent_at = end;
  }
}

void cmdq_free(struct cmdq *q)
{
  free(q->e);
  q->e = NULL;
  q->head = q->tail = q->cap = 0;
}
