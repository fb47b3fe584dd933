/*
 * config_diag.c — collecting configuration problems.
 *
 * Loading never stops at the first problem: an operator fixing a config
 * wants every bad line at once.  Messages are kept up to DIAG_MAX_SHOWN
 * (a broken million-line map must not produce a million-line report).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_impl.h"

static void append(struct diag *d, const char *s, size_t n)
{
  if (d->nomem)
    return;
  if (d->len + n + 1 > d->cap) {
    size_t cap = d->cap ? d->cap : 256;
    while (cap < d->len + n + 1)
      cap *= 2;
    char *t = realloc(d->text, cap);
    if (t == NULL) {
      d->nomem = true;
      return;
    }
    d->text = t;
    d->cap = cap;
  }
  memcpy(d->text + d->len, s, n);
  d->len += n;
  d->text[d->len] = '\0';
}

void diag_add(struct diag *d, const char *file, uint32_t line,
              const char *fmt, ...)
{
  d->count++;
  if (d->shown >= DIAG_MAX_SHOWN)
    return;
  d->shown++;
  char msg[1024];
  int n = line ? snprintf(msg, sizeof(msg), "%s:%u: ", file, (unsigned)line)
               : snprintf(msg, sizeof(msg), "%s: ", file);
  if (n < 0)
    n = 0;
  if ((size_t)n >= sizeof(msg))
    n = (int)sizeof(msg) - 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
  va_end(ap);
  append(d, msg, strlen(msg));
  append(d, "\n", 1);
}

void diag_write(const struct diag *d, const char *file, char *errbuf,
                size_t errlen)
{
  if (errbuf == NULL || errlen == 0)
    return;
  char more[256] = "";
  if (d->count > d->shown)
    snprintf(more, sizeof(more), "%s: %u more problems not shown\n", file,
             d->count - d->shown);
  else if (d->nomem)
    snprintf(more, sizeof(more), "%s: out of memory while reporting\n",
             file);
  snprintf(errbuf, errlen, "%s%s", d->text ? d->text : "", more);
}

void diag_free(struct diag *d)
{
  free(d->text);
  memset(d, 0, sizeof(*d));
}
