/*
 * jsonw_int.h — the JSON writer of the TLS-RPT event lines and reports: values
 * appended to a byte buffer, an allocation failure remembered (`oom`) and
 * checked once at the end.  Strings given to jw_str() are already known to
 * be UTF-8 without control characters (tlsrpt.c checks or makes them so),
 * so only the quote and the backslash need escaping.
 */
#ifndef SMTPOUT_JSONW_INT_H
#define SMTPOUT_JSONW_INT_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "buf_int.h"

struct jw {
  struct buf *b;
  bool oom;
  bool first; /* no key written yet in the current object */
};

static inline void jw_raw(struct jw *w, const char *s, size_t n)
{
  if (!w->oom && buf_append(w->b, s, n) != 0)
    w->oom = true;
}

static inline void jw_lit(struct jw *w, const char *s)
{
  jw_raw(w, s, strlen(s));
}

static inline void jw_str(struct jw *w, const char *s, size_t n)
{
  jw_raw(w, "\"", 1);
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '"' || s[i] == '\\') {
      jw_raw(w, s + start, i - start);
      jw_raw(w, "\\", 1);
      start = i;
    }
  }
  jw_raw(w, s + start, n - start);
  jw_raw(w, "\"", 1);
}

static inline void jw_u64(struct jw *w, uint64_t v)
{
  char num[24];
  int n = snprintf(num, sizeof(num), "%" PRIu64, v);
  jw_raw(w, num, (size_t)n);
}

/* `"key":`, after a comma unless it is the object's first key. */
static inline void jw_key(struct jw *w, const char *key)
{
  if (!w->first)
    jw_raw(w, ",", 1);
  w->first = false;
  jw_str(w, key, strlen(key));
  jw_raw(w, ":", 1);
}

#endif
