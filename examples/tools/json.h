/*
 * json.h — a minimal streaming JSON writer for the command-line tools.
 */
#ifndef SMTPOUT_EXAMPLES_JSON_H
#define SMTPOUT_EXAMPLES_JSON_H

#include <stdio.h>

struct json {
  FILE *f;
  int depth;
  int first[32]; /* no element written yet at this depth */
  int after_key;
};

void json_init(struct json *j, FILE *f);
void json_object_begin(struct json *j);
void json_object_end(struct json *j);
void json_array_begin(struct json *j);
void json_array_end(struct json *j);
void json_key(struct json *j, const char *key);
/* NULL writes null.  Bytes that are not well-formed UTF-8 (stray
 * continuation bytes, overlong forms, surrogates, code points past
 * U+10FFFF) become U+FFFD, one per byte; controls are escaped.  The
 * output is always valid UTF-8 JSON. */
void json_string(struct json *j, const char *s);
void json_int(struct json *j, long long v);
void json_bool(struct json *j, int v);
void json_null(struct json *j);

#endif
