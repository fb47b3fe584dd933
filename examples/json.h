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
/* NULL writes null.  Invalid UTF-8 becomes U+FFFD; controls are escaped. */
void json_string(struct json *j, const char *s);
void json_int(struct json *j, long long v);
void json_bool(struct json *j, int v);
void json_null(struct json *j);

#endif
