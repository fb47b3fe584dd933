/*
 * dsn.c — see dsn_int.h.
 *
 * Every value is checked and xtext-encoded when the host sets it, so that
 * what reaches a MAIL or RCPT line is known to be safe there: xtext
 * (RFC 3461 4) writes "+", "=", the space and every byte outside "!".."~"
 * as "+" and two upper-case hex digits, so no value can end a parameter
 * or a command early.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsn_int.h"

#define NOTIFY_ALL                                                           \
  (SMTPOUT_DSN_NOTIFY_SUCCESS | SMTPOUT_DSN_NOTIFY_FAILURE |                 \
   SMTPOUT_DSN_NOTIFY_DELAY | SMTPOUT_DSN_NOTIFY_NEVER)

/* RFC 3461 4.2, 4.4: the values, before encoding, are printable US-ASCII
 * (graphic characters and the space). */
static int printable(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
      return 0;
  return 1;
}

/* The xtext of `n` bytes of `s` into `out`, which has room for 3n + 1. */
static void xtext(const char *s, size_t n, char *out)
{
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c > ' ' && c <= '~' && c != '+' && c != '=') {
      *out++ = (char)c;
    } else {
      *out++ = '+';
      *out++ = hex[c >> 4];
      *out++ = hex[c & 15];
    }
  }
  *out = '\0';
}

/* RFC 3461 4.2: addr-type is an atom (RFC 5322 3.2.3 atext). */
static int atext(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

int smtpout_dsn_new(smtpout_dsn **pdsn)
{
  if (pdsn == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  smtpout_dsn *d = calloc(1, sizeof(*d));
  if (d == NULL)
    return SMTPOUT_ERR_NOMEM;
  *pdsn = d;
  return 0;
}

void smtpout_dsn_free(smtpout_dsn *dsn)
{
  if (dsn == NULL)
    return;
  for (size_t i = 0; i < dsn->nrcpts; i++)
    free(dsn->rcpts[i].orcpt);
  free(dsn->rcpts);
  free(dsn->envid);
  free(dsn);
}

int smtpout_dsn_set_ret(smtpout_dsn *dsn, int ret)
{
  if (dsn == NULL || (ret != SMTPOUT_DSN_RET_NONE &&
                      ret != SMTPOUT_DSN_RET_FULL &&
                      ret != SMTPOUT_DSN_RET_HDRS))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  dsn->ret = ret;
  return 0;
}

int smtpout_dsn_set_envid(smtpout_dsn *dsn, const char *envid)
{
  if (dsn == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  char *enc = NULL;
  if (envid != NULL) {
    size_t n = strnlen(envid, DSN_ENVID_MAX + 1);
    if (n == 0 || n > DSN_ENVID_MAX || !printable(envid, n))
      return SMTPOUT_ERR_INVALID_ARGUMENT;
    if ((enc = malloc(3 * n + 1)) == NULL)
      return SMTPOUT_ERR_NOMEM;
    xtext(envid, n, enc);
  }
  free(dsn->envid);
  dsn->envid = enc;
  return 0;
}

/* Makes room for recipient `index`.  Returns 0, or
 * SMTPOUT_ERR_INVALID_ARGUMENT (past DSN_RCPTS_MAX), SMTPOUT_ERR_NOMEM. */
static int grow(smtpout_dsn *dsn, size_t index)
{
  if (index >= DSN_RCPTS_MAX)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (index < dsn->nrcpts)
    return 0;
  size_t n = index + 1;
  size_t cap = dsn->nrcpts ? dsn->nrcpts : 8;
  while (cap < n)
    cap *= 2;
  struct dsn_rcpt *r = realloc(dsn->rcpts, cap * sizeof(*r));
  if (r == NULL)
    return SMTPOUT_ERR_NOMEM;
  memset(r + dsn->nrcpts, 0, (cap - dsn->nrcpts) * sizeof(*r));
  dsn->rcpts = r;
  dsn->nrcpts = cap;
  return 0;
}

int smtpout_dsn_set_notify(smtpout_dsn *dsn, size_t index, uint32_t notify)
{
  /* NEVER stands alone (RFC 3461 4.1). */
  if (dsn == NULL || (notify & ~(uint32_t)NOTIFY_ALL) ||
      ((notify & SMTPOUT_DSN_NOTIFY_NEVER) &&
       notify != SMTPOUT_DSN_NOTIFY_NEVER))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  int rv = grow(dsn, index);
  if (rv != 0)
    return rv;
  dsn->rcpts[index].notify = notify;
  return 0;
}

int smtpout_dsn_set_orcpt(smtpout_dsn *dsn, size_t index, const char *orcpt)
{
  if (dsn == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  char *enc = NULL;
  if (orcpt != NULL) {
    size_t n = strnlen(orcpt, DSN_ORCPT_MAX + 1);
    const char *semi = memchr(orcpt, ';', n);
    if (n > DSN_ORCPT_MAX || semi == NULL || semi == orcpt ||
        semi + 1 == orcpt + n || !printable(orcpt, n))
      return SMTPOUT_ERR_INVALID_ARGUMENT;
    size_t tlen = (size_t)(semi - orcpt);
    for (size_t i = 0; i < tlen; i++)
      if (!atext(orcpt[i]))
        return SMTPOUT_ERR_INVALID_ARGUMENT;
    size_t alen = n - tlen - 1;
    /* The parameter, encoded, is what RFC 3461 bounds. */
    size_t elen = tlen + 1;
    for (size_t i = 0; i < alen; i++) {
      unsigned char c = (unsigned char)semi[1 + i];
      elen += (c > ' ' && c <= '~' && c != '+' && c != '=') ? 1 : 3;
    }
    if (elen > DSN_ORCPT_MAX)
      return SMTPOUT_ERR_INVALID_ARGUMENT;
    if ((enc = malloc(elen + 1)) == NULL)
      return SMTPOUT_ERR_NOMEM;
    memcpy(enc, orcpt, tlen + 1);
    xtext(semi + 1, alen, enc + tlen + 1);
  }
  int rv = grow(dsn, index);
  if (rv != 0) {
    free(enc);
    return rv;
  }
  free(dsn->rcpts[index].orcpt);
  dsn->rcpts[index].orcpt = enc;
  return 0;
}

const struct dsn_rcpt *dsn_rcpt(const smtpout_dsn *dsn, size_t i)
{
  return dsn && i < dsn->nrcpts ? &dsn->rcpts[i] : NULL;
}

int dsn_any(const smtpout_dsn *dsn, size_t n)
{
  if (dsn == NULL)
    return 0;
  if (dsn->ret != SMTPOUT_DSN_RET_NONE || dsn->envid)
    return 1;
  for (size_t i = 0; i < n && i < dsn->nrcpts; i++)
    if (dsn->rcpts[i].notify || dsn->rcpts[i].orcpt)
      return 1;
  return 0;
}

int dsn_select(smtpout_dsn **out, const smtpout_dsn *src, const size_t *map,
               size_t n)
{
  *out = NULL;
  if (src == NULL)
    return 0;
  smtpout_dsn *d = calloc(1, sizeof(*d));
  if (d == NULL)
    return SMTPOUT_ERR_NOMEM;
  d->ret = src->ret;
  if (src->envid && (d->envid = strdup(src->envid)) == NULL)
    goto nomem;
  if (n > 0 && (d->rcpts = calloc(n, sizeof(*d->rcpts))) == NULL)
    goto nomem;
  d->nrcpts = n;
  for (size_t i = 0; i < n; i++) {
    const struct dsn_rcpt *r = dsn_rcpt(src, map[i]);
    if (r == NULL)
      continue;
    d->rcpts[i].notify = r->notify;
    if (r->orcpt && (d->rcpts[i].orcpt = strdup(r->orcpt)) == NULL)
      goto nomem;
  }
  *out = d;
  return 0;
nomem:
  smtpout_dsn_free(d);
  return SMTPOUT_ERR_NOMEM;
}

void dsn_notify_text(uint32_t notify, char *out, size_t cap)
{
  static const struct {
    uint32_t bit;
    const char *word;
  } words[] = {
    {SMTPOUT_DSN_NOTIFY_NEVER, "NEVER"},
    {SMTPOUT_DSN_NOTIFY_SUCCESS, "SUCCESS"},
    {SMTPOUT_DSN_NOTIFY_FAILURE, "FAILURE"},
    {SMTPOUT_DSN_NOTIFY_DELAY, "DELAY"},
  };
  size_t k = 0;
  out[0] = '\0';
  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
    if (notify & words[i].bit) {
      int n = snprintf(out + k, cap - k, "%s%s", k ? "," : "", words[i].word);
      if (n < 0 || (size_t)n >= cap - k)
        return;
      k += (size_t)n;
    }
}

const char *smtpout_dsn_action_name(int action)
{
  switch (action) {
  case SMTPOUT_DSN_ACTION_NONE: return "none";
  case SMTPOUT_DSN_ACTION_FAILED: return "failed";
  case SMTPOUT_DSN_ACTION_RELAYED: return "relayed";
  default: return NULL;
  }
}
