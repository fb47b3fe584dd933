/*
 * json.c — see json.h.
 */
#include "json.h"

void json_init(struct json *j, FILE *f)
{
  j->f = f;
  j->depth = 0;
  j->first[0] = 1;
  j->after_key = 0;
}

/* Writes the separator a new value needs at the current depth. */
static void value_prefix(struct json *j)
{
  if (j->after_key) {
    j->after_key = 0;
    return;
  }
  if (!j->first[j->depth])
    fputs(", ", j->f);
  j->first[j->depth] = 0;
}

static void begin(struct json *j, char c)
{
  value_prefix(j);
  fputc(c, j->f);
  if (j->depth < 31)
    j->depth++;
  j->first[j->depth] = 1;
}

static void end(struct json *j, char c)
{
  if (j->depth > 0)
    j->depth--;
  fputc(c, j->f);
}

void json_object_begin(struct json *j) { begin(j, '{'); }
void json_object_end(struct json *j) { end(j, '}'); }
void json_array_begin(struct json *j) { begin(j, '['); }
void json_array_end(struct json *j) { end(j, ']'); }

/*
 * The length of the well-formed UTF-8 sequence at `s`, or 0 (Unicode
 * section 3.9, table 3-7): the second byte's range excludes overlong forms
 * (E0, F0), UTF-16 surrogates (ED) and code points past U+10FFFF (F4);
 * C0, C1 and F5..FF never start one.  A NUL ends the string, and fails
 * every test, so nothing past it is read.
 */
static size_t utf8_len(const unsigned char *s)
{
  unsigned char c = s[0], lo = 0x80, hi = 0xbf;
  size_t n;
  if (c >= 0xc2 && c <= 0xdf)
    n = 2;
  else if (c >= 0xe0 && c <= 0xef)
    n = 3;
  else if (c >= 0xf0 && c <= 0xf4)
    n = 4;
  else
    return 0;
  if (c == 0xe0)
    lo = 0xa0;
  else if (c == 0xed)
    hi = 0x9f;
  else if (c == 0xf0)
    lo = 0x90;
  else if (c == 0xf4)
    hi = 0x8f;
  if (s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if ((s[i] & 0xc0) != 0x80)
      return 0;
  return n;
}

static void write_string(FILE *f, const char *str)
{
  fputc('"', f);
  for (const unsigned char *s = (const unsigned char *)str; *s;) {
    /* Runs of plain ASCII, most of any string, go out in one call. */
    size_t run = 0;
    while (s[run] >= 0x20 && s[run] < 0x7f && s[run] != '"' &&
           s[run] != '\\')
      run++;
    if (run > 0) {
      fwrite(s, 1, run, f);
      s += run;
      continue;
    }
    unsigned char c = *s;
    if (c == '"' || c == '\\') {
      fputc('\\', f);
      fputc(c, f);
      s++;
    } else if (c == '\n') {
      fputs("\\n", f);
      s++;
    } else if (c == '\t') {
      fputs("\\t", f);
      s++;
    } else if (c < 0x20 || c == 0x7f) {
      fprintf(f, "\\u%04x", c);
      s++;
    } else {
      /* Each byte that does not start a well-formed sequence becomes
       * U+FFFD, as Python's decode(errors="replace") does: the output is
       * always UTF-8 a strict parser accepts. */
      size_t n = utf8_len(s);
      if (n == 0) {
        fputs("\\ufffd", f);
        s++;
      } else {
        fwrite(s, 1, n, f);
        s += n;
      }
    }
  }
  fputc('"', f);
}

void json_key(struct json *j, const char *key)
{
  value_prefix(j);
  write_string(j->f, key);
  fputs(": ", j->f);
  j->after_key = 1;
}

void json_string(struct json *j, const char *s)
{
  if (s == NULL) {
    json_null(j);
    return;
  }
  value_prefix(j);
  write_string(j->f, s);
}

void json_int(struct json *j, long long v)
{
  value_prefix(j);
  fprintf(j->f, "%lld", v);
}

void json_bool(struct json *j, int v)
{
  value_prefix(j);
  fputs(v ? "true" : "false", j->f);
}

void json_null(struct json *j)
{
  value_prefix(j);
  fputs("null", j->f);
}
