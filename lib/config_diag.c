/*
 * config_diag.c — collecting configuration problems.
 *
 * Loading never stops at the first problem: an operator fixing a config
 * wants every bad line at once, in file order, although some problems
 * (a pattern claimed twice, an empty section) are only found after the
 * whole file was read.  Messages are kept up to DIAG_MAX_SHOWN (a broken
 * million-line map must not produce a million-line report).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_impl_int.h"

struct diag_entry {
  unsigned file_rank; /* index into diag.files */
  uint32_t line;
  unsigned seq; /* order of discovery, to keep the sort stable */
  char *text;   /* "FILE:LINE: message" */
};

static unsigned file_rank(struct diag *d, const char *file)
{
  for (unsigned i = 0; i < d->nfiles; i++) {
    if (strcmp(d->files[i], file) == 0)
      return i;
  }
  unsigned max = sizeof(d->files) / sizeof(d->files[0]);
  if (d->nfiles == max)
    return max; /* after every named file */
  d->files[d->nfiles] = file;
  return d->nfiles++;
}

void diag_add(struct diag *d, const char *file, uint32_t line,
              const char *fmt, ...)
{
  d->count++;
  if (d->len >= DIAG_MAX_SHOWN || d->nomem)
    return;
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

  if (d->len == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 16;
    struct diag_entry *e = realloc(d->entries, cap * sizeof(*e));
    if (e == NULL) {
      d->nomem = true;
      return;
    }
    d->entries = e;
    d->cap = cap;
  }
  char *text = strdup(msg);
  if (text == NULL) {
    d->nomem = true;
    return;
  }
  d->entries[d->len] = (struct diag_entry){
    .file_rank = file_rank(d, file), .line = line,
    .seq = (unsigned)d->len, .text = text,
  };
  d->len++;
}

static int entry_cmp(const void *a, const void *b)
{
  const struct diag_entry *x = a, *y = b;
  if (x->file_rank != y->file_rank)
    return x->file_rank < y->file_rank ? -1 : 1;
  if (x->line != y->line)
    return x->line < y->line ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void diag_write(struct diag *d, const char *file, char *errbuf,
                size_t errlen)
{
  if (errbuf == NULL || errlen == 0)
    return;
  errbuf[0] = '\0';
  qsort(d->entries, d->len, sizeof(*d->entries), entry_cmp);
  size_t o = 0;
  for (size_t i = 0; i < d->len && o + 1 < errlen; i++) {
    int n = snprintf(errbuf + o, errlen - o, "%s\n", d->entries[i].text);
    if (n < 0)
      break;
    o += (size_t)n;
  }
  if (o + 1 >= errlen)
    return;
  if (d->count > d->len)
    snprintf(errbuf + o, errlen - o, "%s: %u more problems not shown\n",
             file, d->count - (unsigned)d->len);
  else if (d->nomem)
    snprintf(errbuf + o, errlen - o, "%s: out of memory while reporting\n",
             file);
}

void diag_free(struct diag *d)
{
  for (size_t i = 0; i < d->len; i++)
    free(d->entries[i].text);
  free(d->entries);
  memset(d, 0, sizeof(*d));
}
