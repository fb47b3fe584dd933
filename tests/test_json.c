/*
 * test_json.c — the tools' JSON writer (examples/tools/json.c) prints valid
 * UTF-8 whatever bytes it is given: every well-formed sequence passes
 * through unchanged, every other byte becomes U+FFFD.  Checked against an
 * independent decoder over every sequence of up to three bytes and every
 * four-byte sequence around the edges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"

/* json_string(s) as written, without the quotes. */
static char *written(const char *s)
{
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  assert_non_null(f);
  struct json j;
  json_init(&j, f);
  json_string(&j, s);
  fclose(f);
  assert_true(len >= 2 && out[0] == '"' && out[len - 1] == '"');
  memmove(out, out + 1, len - 2);
  out[len - 2] = '\0';
  return out;
}

/*
 * The reference: decodes the code point at s by the bit pattern alone and
 * then applies the rules (shortest form, no surrogates, at most
 * U+10FFFF).  Returns its length, or 0 when it is not well-formed.
 */
static size_t reference_len(const unsigned char *s, size_t avail)
{
  size_t n;
  uint32_t cp;
  if (s[0] < 0x80)
    return 1;
  if ((s[0] & 0xe0) == 0xc0) {
    n = 2;
    cp = s[0] & 0x1f;
  } else if ((s[0] & 0xf0) == 0xe0) {
    n = 3;
    cp = s[0] & 0x0f;
  } else if ((s[0] & 0xf8) == 0xf0) {
    n = 4;
    cp = s[0] & 0x07;
  } else {
    return 0;
  }
  if (n > avail)
    return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (s[i] & 0x3f);
  }
  static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min[n] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
    return 0;
  return n;
}

/* What the writer must make of `in` (no controls, quotes or backslashes
 * in it): well-formed sequences kept, each other byte "\ufffd". */
static void expected(const unsigned char *in, size_t len, char *out)
{
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    size_t n = reference_len(in + i, len - i);
    if (n == 0) {
      memcpy(out + o, "\\ufffd", 6);
      o += 6;
      i++;
    } else {
      memcpy(out + o, in + i, n);
      o += n;
      i += n;
    }
  }
  out[o] = '\0';
}

static void check(const unsigned char *in, size_t len)
{
  char s[8], want[64];
  memcpy(s, in, len);
  s[len] = '\0';
  expected(in, len, want);
  char *got = written(s);
  if (strcmp(got, want) != 0) {
    char hex[32] = "";
    for (size_t i = 0; i < len; i++)
      sprintf(hex + 3 * i, "%02x ", in[i]);
    fail_msg("bytes %s: wrote \"%s\", want \"%s\"", hex, got, want);
  }
  free(got);
}

/* Bytes after which no control, quote or backslash is written, so the
 * only transformation is the UTF-8 repair. */
static int plain(unsigned b)
{
  return b >= 0x20 && b != '"' && b != '\\' && b != 0x7f;
}

static void test_every_short_sequence_is_kept_or_replaced(void **st)
{
  (void)st;
  unsigned char b[3];
  for (unsigned x = 0x20; x < 0x100; x++) {
    if (!plain(x))
      continue;
    b[0] = (unsigned char)x;
    check(b, 1);
    for (unsigned y = 0x20; y < 0x100; y++) {
      if (!plain(y))
        continue;
      b[1] = (unsigned char)y;
      check(b, 2);
      /* A third byte matters only after a three- or four-byte lead and a
       * continuation byte; otherwise the first two bytes decided, and
       * (y, z) is a two-byte case. */
      if (x < 0xe0 || y < 0x80 || y > 0xbf)
        continue;
      for (unsigned z = 0x20; z < 0x100; z++) {
        if (!plain(z))
          continue;
        b[2] = (unsigned char)z;
        check(b, 3);
      }
    }
  }
}

static void test_four_byte_edges(void **st)
{
  (void)st;
  /* Every lead F0..FF with second bytes around each limit, and the last
   * bytes valid or not. */
  static const unsigned char seconds[] = {0x7e, 0x80, 0x8f, 0x90,
                                          0xbf, 0xc0, 0x41};
  static const unsigned char tails[] = {0x80, 0xbf, 0x41, 0xc0};
  for (unsigned lead = 0xf0; lead < 0x100; lead++)
    for (size_t i = 0; i < sizeof(seconds); i++)
      for (size_t j = 0; j < sizeof(tails); j++)
        for (size_t k = 0; k < sizeof(tails); k++) {
          unsigned char b[4] = {(unsigned char)lead, seconds[i], tails[j],
                                tails[k]};
          check(b, 4);
        }
}

static void test_the_classic_bad_forms(void **st)
{
  (void)st;
  /* A surrogate (U+D800), overlong "/" and NUL, U+110000, a 5-byte
   * form, a lone continuation byte, a truncated sequence at the end. */
  char *got = written("a\xed\xa0\x80" "b\xc0\xaf" "c\xe0\x80\xaf"
                      "d\xc0\x80" "e\xf4\x90\x80\x80" "f\xf8\x88\x80\x80\x80"
                      "g\x80" "h\xc3\xa9" "i\xe2\x82");
  assert_string_equal(got, "a\\ufffd\\ufffd\\ufffd"
                           "b\\ufffd\\ufffd"
                           "c\\ufffd\\ufffd\\ufffd"
                           "d\\ufffd\\ufffd"
                           "e\\ufffd\\ufffd\\ufffd\\ufffd"
                           "f\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd"
                           "g\\ufffd"
                           "h\xc3\xa9"
                           "i\\ufffd\\ufffd");
  free(got);
  /* The largest code points of each length pass. */
  got = written("\xdf\xbf \xef\xbf\xbf \xf4\x8f\xbf\xbf \xed\x9f\xbf");
  assert_string_equal(got,
                      "\xdf\xbf \xef\xbf\xbf \xf4\x8f\xbf\xbf \xed\x9f\xbf");
  free(got);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_every_short_sequence_is_kept_or_replaced),
    cmocka_unit_test(test_four_byte_edges),
    cmocka_unit_test(test_the_classic_bad_forms),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
