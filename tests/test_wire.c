/*
 * test_wire.c — the two byte-level codecs: the reply parser (RFC 5321 4.2,
 * RFC 3463) and the data canonicaliser (RFC 5321 4.1.4, 4.5.2).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "canon_int.h"
#include "reply_int.h"

/* Feeds all of `text` and returns the last event. */
static enum reply_event parse_all(struct reply_parser *p, const char *text,
                                  size_t len, int *ncomplete)
{
  enum reply_event ev = REPLY_MORE;
  *ncomplete = 0;
  while (len > 0) {
    size_t used;
    ev = reply_parse(p, (const uint8_t *)text, len, &used);
    text += used;
    len -= used;
    if (ev == REPLY_ERROR)
      return ev;
    if (ev == REPLY_COMPLETE)
      (*ncomplete)++;
  }
  return ev;
}

static void test_reply_single_line_with_enhanced_code(void **st)
{
  struct reply_parser p;
  int n;
  (void)st;
  reply_parser_init(&p);
  assert_int_equal(parse_all(&p, "250 2.1.5 Ok\r\n", 14, &n), REPLY_COMPLETE);
  assert_int_equal(p.reply.code, 250);
  assert_string_equal(p.reply.enhanced, "2.1.5");
  assert_string_equal(p.reply.text, "Ok");
  reply_parser_release(&p);
}

static void test_reply_code_only_and_bare_lf(void **st)
{
  struct reply_parser p;
  int n;
  (void)st;
  reply_parser_init(&p);
  assert_int_equal(parse_all(&p, "250\n", 4, &n), REPLY_COMPLETE);
  assert_int_equal(p.reply.code, 250);
  assert_string_equal(p.reply.text, "");
  reply_parser_release(&p);
}

static void test_reply_enhanced_code_forms(void **st)
{
  struct {
    const char *line;
    const char *enhanced;
    const char *text;
  } cases[] = {
    {"550 5.1.1 no\r\n", "5.1.1", "no"},
    {"550 5.123.456 x\r\n", "5.123.456", "x"},
    {"550 5.1234.5 x\r\n", "", "5.1234.5 x"},  /* too many digits */
    {"450 5.7.1 x\r\n", "", "5.7.1 x"},        /* class disagrees */
    {"550 5.1.1\r\n", "5.1.1", ""},
    {"550 5.1.1x\r\n", "", "5.1.1x"},
    {"550 5..1 x\r\n", "", "5..1 x"},
    {"250 2.0.0 ok\r\n", "2.0.0", "ok"},
  };
  (void)st;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct reply_parser p;
    int n;
    reply_parser_init(&p);
    assert_int_equal(parse_all(&p, cases[i].line, strlen(cases[i].line), &n),
                     REPLY_COMPLETE);
    assert_string_equal(p.reply.enhanced, cases[i].enhanced);
    assert_string_equal(p.reply.text, cases[i].text);
    reply_parser_release(&p);
  }
}

static void test_reply_multiline_reports_each_line(void **st)
{
  struct reply_parser p;
  (void)st;
  reply_parser_init(&p);
  const char *t = "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 10\r\n";
  size_t len = strlen(t), used;
  assert_int_equal(reply_parse(&p, (const uint8_t *)t, len, &used),
                   REPLY_LINE);
  t += used;
  len -= used;
  assert_int_equal(reply_parse(&p, (const uint8_t *)t, len, &used),
                   REPLY_LINE);
  size_t tl;
  const uint8_t *text = reply_line_text(&p, &tl);
  assert_int_equal(tl, 10);
  assert_memory_equal(text, "PIPELINING", 10);
  assert_true(reply_parser_busy(&p));
  t += used;
  len -= used;
  assert_int_equal(reply_parse(&p, (const uint8_t *)t, len, &used),
                   REPLY_COMPLETE);
  assert_false(reply_parser_busy(&p));
  assert_int_equal(p.reply.nlines, 3);
  assert_string_equal(p.reply.text, "mx.example PIPELINING SIZE 10");
  reply_parser_release(&p);
}

static void test_reply_malformed_lines(void **st)
{
  const char *bad[] = {"600 x\r\n", "199 x\r\n", "099 x\r\n", "25O x\r\n",
                       "2500 x\r\n", "25\r\n", "250x\r\n", " 250 x\r\n",
                       "250-a\r\n251 b\r\n"};
  (void)st;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct reply_parser p;
    int n;
    reply_parser_init(&p);
    assert_int_equal(parse_all(&p, bad[i], strlen(bad[i]), &n), REPLY_ERROR);
    assert_non_null(p.error);
    reply_parser_release(&p);
  }
}

static void test_reply_line_limit(void **st)
{
  struct reply_parser p;
  static char line[REPLY_MAX_LINE + 8];
  int n;
  (void)st;
  /* Exactly at the limit (CRLF included) is accepted... */
  memset(line, 'a', sizeof(line));
  memcpy(line, "250 ", 4);
  memcpy(line + REPLY_MAX_LINE - 2, "\r\n", 2);
  reply_parser_init(&p);
  assert_int_equal(parse_all(&p, line, REPLY_MAX_LINE, &n), REPLY_COMPLETE);
  assert_int_equal(p.reply.text_len, REPLY_TEXT_MAX); /* text kept bounded */
  reply_parser_release(&p);
  /* ...one byte more is not. */
  memset(line, 'a', sizeof(line));
  memcpy(line, "250 ", 4);
  memcpy(line + REPLY_MAX_LINE - 1, "\r\n", 2);
  reply_parser_init(&p);
  assert_int_equal(parse_all(&p, line, REPLY_MAX_LINE + 1, &n), REPLY_ERROR);
  reply_parser_release(&p);
}

static void test_reply_line_count_limit(void **st)
{
  struct reply_parser p;
  int n;
  (void)st;
  reply_parser_init(&p);
  for (int i = 0; i < REPLY_MAX_LINES - 1; i++)
    assert_int_equal(parse_all(&p, "250-x\r\n", 7, &n), REPLY_LINE);
  assert_int_equal(parse_all(&p, "250 x\r\n", 7, &n), REPLY_COMPLETE);
  reply_parser_release(&p);
  reply_parser_init(&p);
  for (int i = 0; i < REPLY_MAX_LINES; i++)
    assert_int_equal(parse_all(&p, "250-x\r\n", 7, &n), REPLY_LINE);
  assert_int_equal(parse_all(&p, "250-x\r\n", 7, &n), REPLY_ERROR);
  reply_parser_release(&p);
}

/* A reply cut at every byte parses as it does whole: the lines read where
 * they lie and the lines assembled from pieces give the same events, the
 * same raw lines and the same reply; and the buffer of a split line goes
 * with reply_parser_release(). */
static void test_reply_split_at_every_byte_parses_as_whole(void **st)
{
  const char *t = "250-mx.example says hi\r\n250-PIPELINING\r\n"
                  "250 2.0.0 SIZE 10\r\n";
  size_t len = strlen(t);
  (void)st;
  for (size_t cut = 1; cut < len; cut++) {
    struct reply_parser p;
    reply_parser_init(&p);
    char lines[3][64];
    int nlines = 0;
    enum reply_event last = REPLY_MORE;
    size_t parts[2][2] = {{0, cut}, {cut, len - cut}};
    for (int k = 0; k < 2; k++) {
      const uint8_t *d = (const uint8_t *)t + parts[k][0];
      size_t n = parts[k][1];
      while (n > 0) {
        size_t used;
        last = reply_parse(&p, d, n, &used);
        assert_true(last >= 0);
        d += used;
        n -= used;
        if (last == REPLY_LINE || last == REPLY_COMPLETE) {
          size_t ln;
          const uint8_t *l = reply_line_raw(&p, &ln);
          assert_true(nlines < 3 && ln < sizeof(lines[0]));
          memcpy(lines[nlines], l, ln);
          lines[nlines++][ln] = '\0';
        }
      }
    }
    assert_int_equal(last, REPLY_COMPLETE);
    assert_int_equal(nlines, 3);
    assert_string_equal(lines[0], "250-mx.example says hi");
    assert_string_equal(lines[1], "250-PIPELINING");
    assert_string_equal(lines[2], "250 2.0.0 SIZE 10");
    assert_int_equal(p.reply.nlines, 3);
    /* An enhanced code opens the text of every line but the first's
     * is the reply's: this one has none. */
    assert_string_equal(p.reply.text, "mx.example says hi PIPELINING SIZE 10");
    assert_string_equal(p.reply.enhanced, "");
    assert_false(reply_parser_busy(&p));
    reply_parser_release(&p);
    assert_null(p.partial);
    assert_string_equal(p.reply.text, "");
  }
}

/* A partial line is busy until its end comes; the limit counts its
 * pieces together. */
static void test_reply_split_line_limit_counts_every_piece(void **st)
{
  struct reply_parser p;
  static char line[REPLY_MAX_LINE + 8];
  size_t used;
  (void)st;
  memset(line, 'a', sizeof(line));
  memcpy(line, "250 ", 4);
  reply_parser_init(&p);
  assert_int_equal(reply_parse(&p, (const uint8_t *)line, 1000, &used),
                   REPLY_MORE);
  assert_int_equal(used, 1000);
  assert_true(reply_parser_busy(&p));
  memcpy(line + REPLY_MAX_LINE - 1, "\r\n", 2);
  assert_int_equal(reply_parse(&p, (const uint8_t *)line + 1000,
                               REPLY_MAX_LINE + 1 - 1000, &used),
                   REPLY_ERROR);
  assert_false(reply_parser_busy(&p));
  reply_parser_release(&p);
}

/* The stored text keeps printable ASCII and turns every other byte into
 * '?', wherever it stands in a text checked eight bytes at a time: each
 * byte value at each of the first 20 positions (and a multi-line reply's
 * second line, which starts at another offset in the buffer). */
static void test_reply_text_replaces_every_unprintable_byte(void **st)
{
  (void)st;
  for (int v = 0; v < 256; v++) {
    if (v == '\r' || v == '\n')
      continue; /* they end the line */
    for (size_t pos = 0; pos < 20; pos++) {
      char line[64], want[64];
      memcpy(line, "250 2.0.0 ", 10);
      for (size_t i = 0; i < 20; i++)
        line[10 + i] = want[i] = (char)('a' + i % 26);
      line[10 + pos] = (char)v;
      want[pos] = v >= 0x20 && v <= 0x7e ? (char)v : '?';
      want[20] = '\0';
      memcpy(line + 30, "\r\n", 2);
      struct reply_parser p;
      int n;
      reply_parser_init(&p);
      assert_int_equal(parse_all(&p, line, 32, &n), REPLY_COMPLETE);
      assert_string_equal(p.reply.text, want);
      reply_parser_release(&p);

      /* The same text as the second line of a reply. */
      char two[80];
      memcpy(two, "250-x\r\n", 7);
      memcpy(two + 7, line, 32);
      two[7 + 3] = ' ';
      char want2[64] = "x ";
      memcpy(want2 + 2, want, 21);
      reply_parser_init(&p);
      assert_int_equal(parse_all(&p, two, 39, &n), REPLY_COMPLETE);
      assert_string_equal(p.reply.text, want2);
      reply_parser_release(&p);
    }
  }
}

/* ---- canonicaliser ---- */

/* Encodes `in` in chunks of `chunk` bytes (0: all at once). */
static size_t encode(const uint8_t *in, size_t n, size_t chunk, uint8_t *out)
{
  struct canon c;
  size_t o = 0;
  canon_init(&c);
  for (size_t i = 0; i < n;) {
    size_t k = chunk && chunk < n - i ? chunk : n - i;
    o += canon_encode(&c, in + i, k, out + o);
    i += k;
  }
  o += canon_finish(&c, out + o);
  return o;
}

/* Property test: for random bodies made of the dangerous bytes, in random
 * chunkings, the wire form (1) has CR only before LF and LF only after CR,
 * (2) contains "\r\n.\r\n" exactly once, at the end, (3) undoes (by
 * removing the terminator and unstuffing) to the input with every line end
 * made CRLF. */
static void test_canon_properties_on_random_bodies(void **st)
{
  static const uint8_t alphabet[] = {'.', '\r', '\n', 'a', 0xff, ' '};
  uint8_t in[64], out[256], want[256], got[256];
  (void)st;
  srand(12345);
  for (int iter = 0; iter < 20000; iter++) {
    size_t n = (size_t)(rand() % 40);
    for (size_t i = 0; i < n; i++)
      in[i] = alphabet[rand() % sizeof(alphabet)];
    size_t o = encode(in, n, (size_t)(rand() % 5), out);

    for (size_t i = 0; i < o; i++) {
      if (out[i] == '\r')
        assert_true(i + 1 < o && out[i + 1] == '\n');
      if (out[i] == '\n')
        assert_true(i > 0 && out[i - 1] == '\r');
    }
    assert_true(o >= 3 && memcmp(out + o - 3, ".\r\n", 3) == 0);
    assert_true(o == 3 || (o >= 5 && out[o - 5] == '\r'));
    for (size_t i = 0; i + 5 <= o; i++)
      if (memcmp(out + i, "\r\n.\r\n", 5) == 0)
        assert_int_equal(i, o - 5);

    /* The expected lines: each CRLF, CR or LF is one line end. */
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
      if (in[i] == '\r' || in[i] == '\n') {
        want[w++] = '\r';
        want[w++] = '\n';
        if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n')
          i++;
      } else {
        want[w++] = in[i];
      }
    }
    if (w > 0 && !(want[w - 1] == '\n'))
      want[w++] = '\r', want[w++] = '\n';
    /* Undo: drop ".\r\n", unstuff a leading dot on each line. */
    size_t g = 0, end = o - 3;
    int bol = 1;
    for (size_t i = 0; i < end; i++) {
      if (bol && out[i] == '.') {
        assert_true(i + 1 < end && out[i + 1] == '.');
        i++;
      }
      got[g++] = out[i];
      bol = out[i] == '\n';
    }
    assert_int_equal(g, w);
    assert_memory_equal(got, want, w);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_reply_single_line_with_enhanced_code),
    cmocka_unit_test(test_reply_code_only_and_bare_lf),
    cmocka_unit_test(test_reply_enhanced_code_forms),
    cmocka_unit_test(test_reply_multiline_reports_each_line),
    cmocka_unit_test(test_reply_malformed_lines),
    cmocka_unit_test(test_reply_line_limit),
    cmocka_unit_test(test_reply_line_count_limit),
    cmocka_unit_test(test_reply_split_at_every_byte_parses_as_whole),
    cmocka_unit_test(test_reply_text_replaces_every_unprintable_byte),
    cmocka_unit_test(test_reply_split_line_limit_counts_every_piece),
    cmocka_unit_test(test_canon_properties_on_random_bodies),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
