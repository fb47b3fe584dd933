/*
 * recipient.c — see recipient_int.h.
 *
 * Reading order: results (how one is made, and its getters); messages
 * (made, checked, freed); the one settle every decision goes through;
 * the queue.
 */
#include <stdlib.h>
#include <string.h>

#include "address_int.h"
#include "config_int.h"
#include "dsn_int.h"
#include "recipient_int.h"

/* ------------------------------------------------------------------ */
/* Results                                                              */

static int status_of_code(int code)
{
  return code / 100 == 2   ? SMTPOUT_STATUS_DELIVERED
         : code / 100 == 5 ? SMTPOUT_STATUS_BOUNCED
                           : SMTPOUT_STATUS_DEFERRED;
}

struct verdict verdict_of_reply(const struct reply *r)
{
  struct verdict v = {status_of_code(r->code), r->code, r->enhanced, r->text,
                      SCOPE_RECIPIENT, 0};
  return v;
}

/* Copies src into dst (size bytes), truncating; cheaper than a "%s"
 * format for the few hundred bytes of every result. */
static void copy_str(char *dst, size_t size, const char *src)
{
  size_t n = strnlen(src, size - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

void result_set(struct smtpout_result *res, int message_id, size_t index,
                const char *recipient, const struct verdict *v,
                int possibly_delivered)
{
  res->message_id = message_id;
  res->index = index;
  res->recipient = recipient;
  res->status = v->status;
  res->code = v->code;
  copy_str(res->enhanced, sizeof(res->enhanced), v->enhanced);
  copy_str(res->text, sizeof(res->text), v->text);
  res->possibly_delivered = possibly_delivered;
  res->scope = v->scope;
  res->notify = 0;
  res->dsn_sent = 0;
}

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

/* A deferral that says nothing about the recipient, and whose message
 * cannot have reached the server: another address (another MX host) may
 * take it now.  A possibly delivered message must not be sent again by
 * the same queue run: a retry may duplicate it (RFC 5321 6.1). */
int smtpout_result_try_another_address(const smtpout_result *r)
{
  return r != NULL && r->status == SMTPOUT_STATUS_DEFERRED &&
         r->scope == SCOPE_CONNECTION && !r->possibly_delivered;
}

uint32_t smtpout_result_dsn_notify(const smtpout_result *r)
{
  return r ? r->notify : 0;
}

int smtpout_result_dsn_sent(const smtpout_result *r)
{
  return r ? r->dsn_sent : 0;
}

/*
 * RFC 3461 6.2: who owes the sender a notification.  A recipient the
 * server refused (a reply to its own command, or a local check) never
 * became the server's: the host sends the failure notice, unless NOTIFY
 * said NEVER or asked for other notices only (no NOTIFY means the
 * default, failures).  A delivered one is the server's once it took the
 * DSN parameters; a server without DSN cannot send the success notice
 * asked for, so the host sends a "relayed" one (6.2.1).  A deferral is
 * no notice: when to send "delayed" is the host queue's to decide.
 */
int smtpout_result_dsn_action(const smtpout_result *r)
{
  if (r == NULL)
    return SMTPOUT_DSN_ACTION_NONE;
  switch (r->status) {
  case SMTPOUT_STATUS_BOUNCED:
    return r->notify == 0 || (r->notify & SMTPOUT_DSN_NOTIFY_FAILURE)
               ? SMTPOUT_DSN_ACTION_FAILED
               : SMTPOUT_DSN_ACTION_NONE;
  case SMTPOUT_STATUS_DELIVERED:
    return (r->notify & SMTPOUT_DSN_NOTIFY_SUCCESS) && !r->dsn_sent
               ? SMTPOUT_DSN_ACTION_RELAYED
               : SMTPOUT_DSN_ACTION_NONE;
  default:
    return SMTPOUT_DSN_ACTION_NONE;
  }
}

/* ------------------------------------------------------------------ */
/* Messages                                                             */

void message_free(struct message *m)
{
  if (m == NULL)
    return;
  /* Its recipients and addresses are in the same block; only the DSN
   * strings are apart. */
  for (size_t i = 0; i < m->nrcpts; i++)
    free(m->rcpts[i].orcpt);
  free(m->envid);
  free(m);
}

int message_set_dsn(struct message *m, const smtpout_dsn *dsn)
{
  if (dsn == NULL)
    return 0;
  for (size_t i = m->nrcpts; i < dsn->nrcpts; i++)
    if (dsn->rcpts[i].notify || dsn->rcpts[i].orcpt)
      return SMTPOUT_ERR_INVALID_ARGUMENT;
  m->dsn_wanted = (unsigned char)dsn_any(dsn, m->nrcpts);
  m->dsn_ret = (unsigned char)dsn->ret;
  if (dsn->envid && (m->envid = strdup(dsn->envid)) == NULL)
    return SMTPOUT_ERR_NOMEM;
  for (size_t i = 0; i < m->nrcpts; i++) {
    const struct dsn_rcpt *d = dsn_rcpt(dsn, i);
    if (d == NULL)
      break;
    m->rcpts[i].notify = d->notify;
    if (d->orcpt && (m->rcpts[i].orcpt = strdup(d->orcpt)) == NULL)
      return SMTPOUT_ERR_NOMEM;
  }
  return 0;
}

int message_new(struct message **pm, const char *sender,
                const char *const *recipients, size_t n, uint64_t size,
                uint32_t flags)
{
  /* Every address is checked before anything is copied: an address that
   * could inject a command never reaches a queue.  The check measures
   * each address and notes whether it is UTF-8, so nothing walks it
   * again. */
  size_t sender_len = 0;
  int sender_utf8 = 0;
  if (sender[0] != '\0' &&
      address_scan(sender, &sender_len, &sender_utf8) != 0)
    return SMTPOUT_ERR_BAD_ADDRESS;
  if (n > (SIZE_MAX - sizeof(struct message)) / sizeof(struct rcpt))
    return SMTPOUT_ERR_NOMEM;
  size_t len = sizeof(struct message) + n * sizeof(struct rcpt) +
               sender_len + 1;
  /* What the check found of the first recipients, for the copy below. */
  enum { SEEN = 16 };
  struct { size_t len; int utf8; } seen[SEEN];
  for (size_t i = 0; i < n; i++) {
    size_t k;
    int utf8;
    if (recipients[i] == NULL)
      return SMTPOUT_ERR_INVALID_ARGUMENT;
    if (address_scan(recipients[i], &k, &utf8) != 0)
      return SMTPOUT_ERR_BAD_ADDRESS;
    if (i < SEEN) {
      seen[i].len = k;
      seen[i].utf8 = utf8;
    }
    /* A checked address is at most 256 octets: no overflow. */
    len += k + 1;
  }
  /* One block for the message, its recipients and every address: one
   * allocation per message instead of two and one per address. */
  struct message *m = malloc(len);
  if (m == NULL)
    return SMTPOUT_ERR_NOMEM;
  memset(m, 0, sizeof(*m) + n * sizeof(struct rcpt));
  m->rcpts = (struct rcpt *)(m + 1);
  char *p = (char *)(m->rcpts + n);
  m->sender = memcpy(p, sender, sender_len + 1);
  p += sender_len + 1;
  for (size_t i = 0; i < n; i++) {
    size_t k;
    int utf8;
    if (i < SEEN) {
      k = seen[i].len;
      utf8 = seen[i].utf8;
    } else {
      address_scan(recipients[i], &k, &utf8); /* passed above */
    }
    m->rcpts[i].addr = memcpy(p, recipients[i], k + 1);
    m->rcpts[i].utf8 = (unsigned char)utf8;
    p += k + 1;
  }
  m->nrcpts = n;
  m->size = size;
  m->flags = flags;
  /* RFC 6531 3.4: a UTF-8 envelope needs SMTPUTF8 whatever the body. */
  if (sender_utf8)
    m->flags |= SMTPOUT_MESSAGE_SMTPUTF8;
  *pm = m;
  return 0;
}

void message_policy(struct message *m, const smtpout_config *config,
                    const char *mx)
{
  int st = SMTPOUT_STARTTLS_DISABLE, ai = 1;
  for (size_t i = 0; i < m->nrcpts; i++) {
    int st2, ai2;
    /* A domain that is not a valid name (an address literal, a typo)
     * cannot match a domain rule; the MX and global rules still apply. */
    if (config_policy_lookup(config, address_domain(m->rcpts[i].addr), mx,
                             &st2, &ai2) != 0)
      config_policy_lookup(config, NULL, mx, &st2, &ai2);
    policy_tighten(&st, &ai, st2, ai2);
  }
  m->starttls = st;
  m->allow_invalid_certs = ai;
}

int message_needs_smtputf8(const struct message *m)
{
  if (m->flags & SMTPOUT_MESSAGE_SMTPUTF8)
    return 1;
  for (size_t i = 0; i < m->nrcpts; i++)
    if (m->rcpts[i].state != RCPT_FINAL && m->rcpts[i].utf8)
      return 1;
  return 0;
}

int message_undecided(const struct message *m)
{
  for (size_t i = 0; i < m->nrcpts; i++)
    if (m->rcpts[i].state != RCPT_FINAL)
      return 1;
  return 0;
}

/* ------------------------------------------------------------------ */
/* The settle                                                           */

void rcpt_accept(struct message *m, size_t i)
{
  if (m->rcpts[i].state != RCPT_PENDING)
    return;
  m->rcpts[i].state = RCPT_ACCEPTED;
  m->naccepted++;
}

int rcpt_settle(struct message *m, size_t i, enum rcpt_which which,
                const struct verdict *v, struct smtpout_result *res)
{
  struct rcpt *r = &m->rcpts[i];
  if (r->state == RCPT_FINAL ||
      (which == RCPT_ONLY_ACCEPTED && r->state != RCPT_ACCEPTED))
    return 0; /* exactly one result per recipient */
  /* Possibly delivered: the server may have read the end of data of a
   * message it had accepted this recipient for, and no reply to it came
   * (RFC 5321 6.1: the duplicate risk).  A reply, any reply, settles it;
   * a message whose end of data never left the client was not
   * delivered. */
  int possibly = v->scope == SCOPE_CONNECTION &&
                 v->status == SMTPOUT_STATUS_DEFERRED && m->dot_queued &&
                 v->dot_written && r->state == RCPT_ACCEPTED;
  if (r->state == RCPT_ACCEPTED)
    m->naccepted--;
  r->state = RCPT_FINAL;
  result_set(res, m->id, i, r->addr, v, possibly);
  res->notify = r->notify;
  res->dsn_sent = m->dsn_wanted && m->dsn_offered && r->sent;
  return 1;
}

/* ------------------------------------------------------------------ */
/* The queue                                                            */

void msgq_init(struct msg_queue *q)
{
  q->head = q->tail = NULL;
  q->next_id = 1;
}

int msgq_add(struct msg_queue *q, struct message *m)
{
  if (q->next_id == INT32_MAX)
    return SMTPOUT_ERR_INVALID_STATE;
  m->id = q->next_id++;
  m->next = NULL;
  if (q->tail)
    q->tail->next = m;
  else
    q->head = m;
  q->tail = m;
  return m->id;
}

int msgq_pop(struct msg_queue *q)
{
  struct message *m = q->head;
  q->head = m->next;
  if (q->head == NULL)
    q->tail = NULL;
  int id = m->id;
  message_free(m);
  return id;
}

void msgq_free(struct msg_queue *q)
{
  while (q->head) {
    struct message *m = q->head;
    q->head = m->next;
    message_free(m);
  }
  q->tail = NULL;
}
