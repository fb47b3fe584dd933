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

static size_t utf8_len(const unsigned char *s)
{
  unsigned char c = s[0];
  size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
  if (c >= 0xf8)
    n = 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80)
      return 0;
  return n;
}

static void write_string(FILE *f, const char *str)
{
  fputc('"', f);
  for (const unsigned char *s = (const unsigned char *)str; *s;) {
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
    } else if (c < 0x80) {
      fputc(c, f);
      s++;
    } else {
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
