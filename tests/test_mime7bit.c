/*
 * test_mime7bit.c — the 7-bit conversion (RFC 2045, 2046, 6152) and the
 * scan of a message body (smtpout_message_scan): sizes on the wire, flags,
 * re-encoded parts that decode to what an 8BITMIME server would get.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mime7bit_int.h"
#include "smtpout/smtpout.h"

/* ---- helpers ---- */

struct conv {
  char *out; /* NUL-terminated */
  size_t len;
  int error;
};

/* Converts `len` bytes fed `chunk` at a time (0: all at once), checking
 * every call against its output bound. */
static struct conv convert_n(const char *in, size_t len, size_t chunk)
{
  struct mime7 m;
  struct conv c;
  mime7_init(&m, 0);
  size_t cap = mime7_bound(len) + MIME7_FINISH_MAX + 1;
  c.out = malloc(cap);
  assert_non_null(c.out);
  c.len = 0;
  if (chunk == 0)
    chunk = len ? len : 1;
  for (size_t i = 0; i < len; i += chunk) {
    size_t k = len - i < chunk ? len - i : chunk;
    size_t n = mime7_encode(&m, (const uint8_t *)in + i, k,
                            (uint8_t *)c.out + c.len);
    assert_true(n <= mime7_bound(k));
    c.len += n;
  }
  size_t n = mime7_finish(&m, (uint8_t *)c.out + c.len);
  assert_true(n <= MIME7_FINISH_MAX);
  c.len += n;
  c.out[c.len] = '\0';
  c.error = m.error;
  return c;
}

static struct conv convert(const char *in) { return convert_n(in, strlen(in), 0); }

/* The converted text of `in` (must convert), freed by the caller. */
static char *converted(const char *in)
{
  struct conv c = convert(in);
  assert_int_equal(c.error, MIME7_OK);
  return c.out;
}

static int unhex(int c)
{
  return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                               : -1;
}

/* Decodes quoted-printable lines [p, end) (wire form: CRLF, dot-stuffed)
 * into out; returns the length.  Fails the test on anything RFC 2045
 * 6.7 does not allow an encoder to write. */
static size_t qp_decode(const char *p, const char *end, char *out)
{
  size_t n = 0;
  while (p < end) {
    const char *eol = strstr(p, "\r\n");
    assert_non_null(eol);
    assert_true(eol <= end);
    if (*p == '.') {
      assert_true(p[1] == '.'); /* dot-stuffed */
      p++;
    }
    assert_true(eol - p <= 76);
    int soft = 0;
    if (eol > p && (eol[-1] == ' ' || eol[-1] == '\t'))
      fail_msg("trailing whitespace on an encoded line");
    for (const char *q = p; q < eol; q++) {
      assert_true((*q >= 32 && *q <= 126) || *q == '\t');
      if (*q != '=') {
        out[n++] = *q;
        continue;
      }
      if (q + 1 == eol) {
        soft = 1;
        break;
      }
      assert_true(q + 2 < eol);
      int h = unhex(q[1]), l = unhex(q[2]);
      assert_true(h >= 0 && l >= 0);
      out[n++] = (char)(h * 16 + l);
      q += 2;
    }
    if (!soft) {
      out[n++] = '\r';
      out[n++] = '\n';
    }
    p = eol + 2;
  }
  return n;
}

static size_t b64_decode(const char *p, const char *end, char *out)
{
  static const char a[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  unsigned acc = 0;
  int bits = 0;
  size_t n = 0;
  for (; p < end; p++) {
    if (*p == '\r' || *p == '\n' || *p == '=')
      continue;
    const char *k = strchr(a, *p);
    assert_non_null(k);
    acc = acc << 6 | (unsigned)(k - a);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (char)(acc >> bits);
    }
  }
  return n;
}

/* The body of the part whose header block contains `marker`: from after
 * its empty line to the CRLF before `until` (or the final ".\r\n"). */
static void part_body(const char *text, const char *marker, const char *until,
                      const char **start, const char **end)
{
  const char *h = strstr(text, marker);
  assert_non_null(h);
  *start = strstr(h, "\r\n\r\n") + 4;
  const char *e = until ? strstr(*start, until) : strstr(*start, "\r\n.\r\n");
  assert_non_null(e);
  *end = until ? e : e + 2;
}

static int has_8bit(const char *p, size_t n)
{
  return mime7_has_8bit((const uint8_t *)p, n);
}

/* ---- the message's own body ---- */

static void test_message_without_mime_headers_becomes_quoted_printable(
    void **st)
{
  (void)st;
  char *out = converted("Subject: hi\nFrom: a@example\n\n"
                        "H\xc3\xa9llo = world  \n.dot line\nlast");
  assert_string_equal(out, "Subject: hi\r\nFrom: a@example\r\n"
                           "Content-Transfer-Encoding: quoted-printable\r\n"
                           "MIME-Version: 1.0\r\n"
                           "\r\n"
                           "H=C3=A9llo =3D world =20\r\n"
                           "..dot line\r\n"
                           "last\r\n"
                           ".\r\n");
  free(out);
}

static void test_declared_encoding_is_replaced_not_added(void **st)
{
  (void)st;
  char *out = converted("MIME-Version: 1.0\r\n"
                        "Content-Transfer-Encoding: 8bit\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n"
                        "\r\n\xe2\x9c\x93\r\n");
  assert_string_equal(out, "MIME-Version: 1.0\r\n"
                           "Content-Type: text/plain; charset=utf-8\r\n"
                           "Content-Transfer-Encoding: quoted-printable\r\n"
                           "\r\n=E2=9C=93\r\n.\r\n");
  free(out);
}

static void test_qp_escapes_equals_controls_and_trailing_whitespace(void **st)
{
  (void)st;
  static const char in[] = "Content-Type: text/plain\n\n"
                           "a=b\tc\t\n"
                           "nul\0x\x7f\n"
                           " \n"
                           "\xff \t";
  struct conv c = convert_n(in, sizeof(in) - 1, 0);
  assert_int_equal(c.error, MIME7_OK);
  const char *b = strstr(c.out, "\r\n\r\n") + 4;
  assert_string_equal(b, "a=3Db\tc=09\r\n"
                         "nul=00x=7F\r\n"
                         "=20\r\n"
                         "=FF =09\r\n"
                         ".\r\n");
  free(c.out);
}

static void test_qp_soft_breaks_keep_lines_within_76(void **st)
{
  (void)st;
  /* Long lines of literals, of escapes, of mixtures, with spaces where a
   * soft break falls, and a line of dots. */
  char in[20000];
  size_t n = (size_t)snprintf(in, sizeof(in), "Subject: long\n\n");
  for (int i = 0; i < 300; i++)
    in[n++] = 'a';
  in[n++] = '\n';
  for (int i = 0; i < 300; i++)
    in[n++] = (char)0xe9;
  in[n++] = '\n';
  for (int i = 0; i < 600; i++)
    in[n++] = " =x\xc3\t."[i % 6];
  in[n++] = '\n';
  for (int i = 0; i < 200; i++)
    in[n++] = '.';
  in[n++] = '\n';
  in[n] = '\0';
  struct conv c = convert_n(in, n, 0);
  assert_int_equal(c.error, MIME7_OK);
  const char *b = strstr(c.out, "\r\n\r\n") + 4;
  const char *e = c.out + c.len - 3; /* before ".\r\n" */
  char *dec = malloc(c.len);
  size_t dn = qp_decode(b, e, dec);
  /* The decoded body is the input's, with CRLF line ends. */
  const char *orig = strstr(in, "\n\n") + 2;
  size_t on = 0;
  char *canon = malloc(2 * n);
  for (const char *p = orig; p < in + n; p++) {
    if (*p == '\n')
      canon[on++] = '\r';
    canon[on++] = *p;
  }
  assert_int_equal(dn, on);
  assert_memory_equal(dec, canon, on);
  free(dec);
  free(canon);
  free(c.out);
}

static void test_crlf_lf_and_cr_input_convert_alike(void **st)
{
  (void)st;
  char *lf = converted("Content-Type: text/plain\n\n\xe9t\xe9\nb\n");
  char *crlf = converted("Content-Type: text/plain\r\n\r\n\xe9t\xe9\r\nb\r\n");
  char *cr = converted("Content-Type: text/plain\r\r\xe9t\xe9\rb\r");
  assert_string_equal(lf, crlf);
  assert_string_equal(lf, cr);
  assert_string_equal(strstr(lf, "\r\n\r\n"), "\r\n\r\n=E9t=E9\r\nb\r\n.\r\n");
  free(lf);
  free(crlf);
  free(cr);
}

static void test_output_is_dot_stuffed_and_ended_once(void **st)
{
  (void)st;
  char *out = converted("Content-Type: text/plain\n\n.\n..x\xe9\n.\r\n");
  assert_string_equal(strstr(out, "\r\n\r\n"),
                      "\r\n\r\n..\r\n...x=E9\r\n..\r\n.\r\n");
  free(out);
  /* A line a soft break starts with a dot is stuffed too. */
  char in[200] = "Subject: x\n\n";
  size_t n = strlen(in);
  memset(in + n, 'a', 75);
  memcpy(in + n + 75, ".b\xe9\n", 5);
  out = converted(in);
  assert_non_null(strstr(out, "=\r\n..b=E9\r\n.\r\n"));
  free(out);
}

/* ---- MIME structure ---- */

static const char multipart[] =
    "From: a@example\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed;\n"
    " boundary=\"b1\"\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "preamble\n"
    "--b1\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "caf\xc3\xa9 \n"
    "--b1\n"
    "Content-Type: application/octet-stream\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "bin\xc3\xa9\n"
    "two\n"
    "--b1\n"
    "Content-Type: text/plain\n"
    "\n"
    "plain = ascii  \n"
    "--b1--\n"
    "epilogue\n";

static void test_multipart_reencodes_only_its_8bit_parts(void **st)
{
  (void)st;
  char *out = converted(multipart);
  assert_string_equal(out,
                      "From: a@example\r\n"
                      "MIME-Version: 1.0\r\n"
                      "Content-Type: multipart/mixed;\r\n"
                      " boundary=\"b1\"\r\n"
                      "Content-Transfer-Encoding: 7bit\r\n"
                      "\r\n"
                      "preamble\r\n"
                      "--b1\r\n"
                      "Content-Type: text/plain; charset=utf-8\r\n"
                      "Content-Transfer-Encoding: quoted-printable\r\n"
                      "\r\n"
                      "caf=C3=A9=20\r\n"
                      "--b1\r\n"
                      "Content-Type: application/octet-stream\r\n"
                      "Content-Transfer-Encoding: base64\r\n"
                      "\r\n"
                      "Ymluw6kNCnR3bw==\r\n" /* "bin\xc3\xa9\r\ntwo" */
                      "--b1\r\n"
                      "Content-Type: text/plain\r\n"
                      "\r\n"
                      "plain = ascii  \r\n" /* 7-bit: untouched */
                      "--b1--\r\n"
                      "epilogue\r\n"
                      ".\r\n");
  free(out);
}

static void test_nested_message_is_followed(void **st)
{
  (void)st;
  char *out = converted("Content-Type: multipart/mixed; boundary=outer\n\n"
                        "--outer\n"
                        "Content-Type: message/rfc822\n"
                        "Content-Transfer-Encoding: 8bit\n"
                        "\n"
                        "Subject: inner\n"
                        "Content-Type: multipart/alternative; boundary=inner\n"
                        "\n"
                        "--inner\n"
                        "Content-Type: text/plain\n"
                        "Content-Transfer-Encoding: 8bit\n"
                        "\n"
                        "\xc3\xa9\n"
                        "--inner--\n"
                        "--outer--\n");
  assert_string_equal(strstr(out, "--outer\r\n"),
                      "--outer\r\n"
                      "Content-Type: message/rfc822\r\n"
                      "Content-Transfer-Encoding: 7bit\r\n"
                      "\r\n"
                      "Subject: inner\r\n"
                      "Content-Type: multipart/alternative; boundary=inner\r\n"
                      "\r\n"
                      "--inner\r\n"
                      "Content-Type: text/plain\r\n"
                      "Content-Transfer-Encoding: quoted-printable\r\n"
                      "\r\n"
                      "=C3=A9\r\n"
                      "--inner--\r\n"
                      "--outer--\r\n"
                      ".\r\n");
  free(out);
}

static void test_binary_part_keeps_its_own_line_ends(void **st)
{
  (void)st;
  static const char in[] = "Content-Type: multipart/mixed; boundary=b\n\n"
                           "--b\n"
                           "Content-Type: image/png\n"
                           "Content-Transfer-Encoding: binary\n"
                           "\n"
                           "\x89PNG\r\n\x1a\n\0\r\xff\n"
                           "--b--\n";
  static const char raw[] = "\x89PNG\r\n\x1a\n\0\r\xff";
  struct conv c = convert_n(in, sizeof(in) - 1, 0);
  assert_int_equal(c.error, MIME7_OK);
  const char *s, *e;
  part_body(c.out, "image/png", "\r\n--b--", &s, &e);
  char dec[64];
  size_t n = b64_decode(s, e, dec);
  assert_int_equal(n, sizeof(raw) - 1);
  assert_memory_equal(dec, raw, n);
  free(c.out);
}

static void test_8bit_leaf_that_is_not_text_becomes_base64(void **st)
{
  (void)st;
  char *out = converted("Content-Type: application/json\n"
                        "Content-Transfer-Encoding: 8bit\n\n"
                        "{\"a\": \"\xc3\xa9\"}\n");
  const char *s, *e;
  part_body(out, "application/json", NULL, &s, &e);
  char dec[64];
  size_t n = b64_decode(s, e, dec);
  /* The top-level body ends with its line end: it is content there. */
  assert_int_equal(n, 13);
  assert_memory_equal(dec, "{\"a\": \"\xc3\xa9\"}\r\n", 13);
  assert_non_null(strstr(out, "Content-Transfer-Encoding: base64\r\n"));
  free(out);
}

/* A message whose structure crosses every chunk boundary. */
static const char folded[] =
    "Subject: folded\r\n"
    "Content-Type: multipart/mixed;\r\n"
    "\tcharset=\"x\";\r\n"
    "  boundary=\r\n"
    "   \"=_split (across) lines_=\"\r\n"
    "Content-Transfer-Encoding:\r\n"
    " 8bit (folded too)\r\n"
    "\r\n"
    "--=_split (across) lines_=\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "\xc3\xa9t\xc3\xa9\r\n"
    "--=_split (across) lines_=--\r\n";

static void test_every_chunking_gives_the_same_output(void **st)
{
  (void)st;
  const char *inputs[] = {multipart, folded};
  for (size_t i = 0; i < 2; i++) {
    size_t len = strlen(inputs[i]);
    struct conv whole = convert_n(inputs[i], len, 0);
    assert_int_equal(whole.error, MIME7_OK);
    for (size_t chunk = 1; chunk < 40; chunk++) {
      struct conv c = convert_n(inputs[i], len, chunk);
      assert_int_equal(c.error, MIME7_OK);
      assert_string_equal(c.out, whole.out);
      free(c.out);
    }
    free(whole.out);
  }
}

static void test_header_folded_across_chunks_is_understood(void **st)
{
  (void)st;
  /* Fed a byte at a time: the boundary on the fourth line of the folded
   * Content-Type is found, and the part is re-encoded. */
  struct conv c = convert_n(folded, strlen(folded), 1);
  assert_int_equal(c.error, MIME7_OK);
  assert_null(strstr(c.out, "8bit (folded too)")); /* replaced */
  assert_non_null(strstr(c.out, "Content-Transfer-Encoding: 7bit\r\n\r\n"
                                "--=_split (across) lines_=\r\n"));
  assert_non_null(strstr(c.out, "\r\n\r\n=C3=A9t=C3=A9\r\n"
                                "--=_split (across) lines_=--\r\n"));
  free(c.out);
}

/* Copies `text` to `dst` and returns its length: sprintf()'s int, cast,
 * led gcc with UBSan to think the offsets after it could be anything. */
static size_t put(char *dst, const char *text)
{
  size_t len = strlen(text);
  memcpy(dst, text, len);
  return len;
}

static void test_long_lines_are_handled_in_pieces(void **st)
{
  (void)st;
  size_t big = 3 * MIME7_LINE_MAX + 17;
  char *in = malloc(2 * big + 4096);
  assert_non_null(in);
  size_t n = 0;
  /* A header field longer than a piece, a body line of 8-bit bytes
   * longer than a piece, a boundary line with a long tail. */
  n += put(in + n, "X-Long: ");
  memset(in + n, 'h', big);
  n += big;
  n += put(in + n, "\nContent-Type: multipart/mixed; "
                   "boundary=zz\n\n--zz\n"
                   "Content-Transfer-Encoding: 8bit\n\n");
  memset(in + n, 0xe9, big);
  n += big;
  n += put(in + n, "\n--zz");
  memset(in + n, ' ', big);
  n += big;
  n += put(in + n, "\nContent-Type: text/plain\n\nok\n--zz--\n");
  struct conv c = convert_n(in, n, 0);
  assert_int_equal(c.error, MIME7_OK);
  assert_false(has_8bit(c.out, c.len));
  const char *s, *e;
  part_body(c.out, "Content-Transfer-Encoding: quoted-printable", "\r\n--zz",
            &s, &e);
  char *dec = malloc(3 * big);
  size_t dn = qp_decode(s, e + 2, dec);
  assert_int_equal(dn, big + 2);
  for (size_t i = 0; i < big; i++)
    assert_int_equal((unsigned char)dec[i], 0xe9);
  /* The third part was found after the long boundary line. */
  assert_non_null(strstr(c.out, "\r\n\r\nok\r\n--zz--\r\n.\r\n"));
  free(dec);
  free(in);
  free(c.out);
}

static void test_delimiter_is_the_boundary_then_only_white_space(void **st)
{
  (void)st;
  /* "--b1x" and "--b1-" are text; "--b1 \t" and "--b1-- " delimiters. */
  char *out = converted("Content-Type: multipart/mixed; boundary=b1\n\n"
                        "--b1 \t\n"
                        "Content-Transfer-Encoding: 8bit\n\n"
                        "\xe9\n--b1x\n--b1-\n--b10\n"
                        "--b1-- \n");
  assert_non_null(strstr(out, "\r\n\r\n=E9\r\n--b1x\r\n--b1-\r\n--b10\r\n"
                              "--b1-- \r\n.\r\n"));
  free(out);
}

static void test_nesting_is_followed_to_the_limit(void **st)
{
  (void)st;
  for (int depth = MIME7_DEPTH_MAX; depth <= MIME7_DEPTH_MAX + 1; depth++) {
    char in[8192];
    size_t n = 0;
    for (int i = 0; i < depth; i++)
      n += (size_t)sprintf(in + n, "Content-Type: multipart/mixed; "
                                   "boundary=b%d\n\n--b%d\n", i, i);
    n += (size_t)sprintf(in + n, "Content-Transfer-Encoding: 8bit\n\n"
                                 "\xe9\n");
    struct conv c = convert_n(in, n, 0);
    /* One level deeper than it follows, the 8-bit part is out of reach. */
    assert_int_equal(c.error, depth <= MIME7_DEPTH_MAX ? MIME7_OK
                                                       : MIME7_ERR_STRUCTURE);
    free(c.out);
  }
}

/* ---- 8-bit data nothing can carry ---- */

static void test_8bit_where_no_encoding_can_carry_it_is_refused(void **st)
{
  (void)st;
  static const struct {
    const char *in;
    int error;
  } cases[] = {
    {"Subject: caf\xc3\xa9\n\nbody\n", MIME7_ERR_HEADER},
    {"Subject: x\n folded caf\xc3\xa9\n\nbody\n", MIME7_ERR_HEADER},
    {"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
     "Content-Type: text/plain; name=\"\xc3\xa9\"\n"
     "Content-Transfer-Encoding: 8bit\n\nx\n--b--\n",
     MIME7_ERR_PART_HEADER},
    {"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
     "Content-Type: text/plain\n\n\xc3\xa9\n--b--\n",
     MIME7_ERR_7BIT_PART},
    {"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
     "Content-Transfer-Encoding: quoted-printable\n\n\xc3\xa9\n--b--\n",
     MIME7_ERR_7BIT_PART},
    {"Content-Transfer-Encoding: base64\n\n\xc3\xa9\n", MIME7_ERR_7BIT_PART},
    {"Content-Transfer-Encoding: x-uuencode\n\n\xc3\xa9\n",
     MIME7_ERR_7BIT_PART},
    {"Content-Type: multipart/mixed; boundary=b\n\npre\xc3\xa9\n--b--\n",
     MIME7_ERR_STRUCTURE},
    {"Content-Type: multipart/mixed; boundary=b\n\n--b--\nepi\xe9\n",
     MIME7_ERR_STRUCTURE},
    {"Content-Type: multipart/mixed; boundary=b\n\n--b \xe9\n\nx\n--b--\n",
     MIME7_ERR_STRUCTURE},
    {"Content-Type: message/partial; id=1\n"
     "Content-Transfer-Encoding: 8bit\n\n\xe9\n",
     MIME7_ERR_STRUCTURE},
    {"Content-Transfer-Encoding: 8bit\nContent-Transfer-Encoding: base64\n\n"
     "\xe9\n",
     MIME7_ERR_STRUCTURE},
    {"Content-Type: text/plain\nContent-Type: image/png\n"
     "Content-Transfer-Encoding: 8bit\n\n\xe9\n",
     MIME7_ERR_STRUCTURE},
    {"Content-Type: text\nContent-Transfer-Encoding: 8bit\n\n\xe9\n",
     MIME7_ERR_STRUCTURE},
    {"Content-Type: multipart/mixed\n\n--b\n\n\xe9\n", MIME7_ERR_STRUCTURE},
    {"Content-Type: multipart/mixed; boundary=\"unterminated\n\n\xe9\n",
     MIME7_ERR_STRUCTURE},
    {"Content-Type: multipart/mixed; boundary=a; boundary=b\n\n--a\n"
     "Content-Transfer-Encoding: 8bit\n\n\xe9\n",
     MIME7_ERR_STRUCTURE},
    {"Content-Type: multipart/mixed; boundary=b\n"
     "Content-Transfer-Encoding: base64\n\n--b\n"
     "Content-Transfer-Encoding: 8bit\n\n\xe9\n",
     MIME7_ERR_STRUCTURE},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    size_t len = strlen(cases[i].in);
    for (size_t chunk = 0; chunk < 4; chunk++) {
      struct mime7 m;
      uint8_t out[8192];
      size_t n = 0;
      mime7_init(&m, 0);
      size_t step = chunk ? chunk : len;
      for (size_t at = 0; at < len && m.error == MIME7_OK; at += step) {
        size_t k = len - at < step ? len - at : step;
        size_t w = mime7_encode(&m, (const uint8_t *)cases[i].in + at, k,
                                out + n);
        /* Whatever a call writes before it fails is 7-bit. */
        assert_false(mime7_has_8bit(out + n, w));
        n += w;
      }
      if (m.error == MIME7_OK)
        mime7_finish(&m, out + n);
      if (m.error != cases[i].error)
        fail_msg("case %zu (chunk %zu): error %d, want %d", i, chunk, m.error,
                 cases[i].error);
    }
  }
}

static void test_7bit_message_always_converts(void **st)
{
  (void)st;
  /* Errors come from 8-bit bytes only: whatever the structure, a 7-bit
   * message converts, and parts that were not 8-bit pass unchanged. */
  static const char in[] = "Content-Type: multipart/mixed; boundary=a\n\n"
                           "--a\nContent-Type: message/partial\n\nx\n"
                           "--a\nContent-Transfer-Encoding: base64\n\nQQ==\n"
                           "--a\nContent-Type: garbage\n\nx\n--a--\n";
  char *out = converted(in);
  assert_non_null(strstr(out, "\r\n\r\nQQ==\r\n--a\r\n"));
  free(out);
}

/* ---- the scan: size and flags ---- */

static void scan(const char *in, size_t len, uint64_t *size, uint32_t *flags)
{
  assert_int_equal(smtpout_message_inspect((const uint8_t *)in, len, size,
                                           flags),
                   0);
}

static void test_scan_size_counts_each_line_end_as_crlf(void **st)
{
  (void)st;
  static const struct {
    const char *in;
    uint64_t size;
  } cases[] = {
    {"", 0},
    {"a\nb\n", 6},        /* LF-only: one more octet per line */
    {"a\r\nb\r\n", 6},
    {"a\rb\r", 6},        /* bare CR is a line end too */
    {"no newline", 12},   /* a CRLF is added to the last line */
    {"a\r", 3},
    {".\n..\n", 7},       /* the dots added for transparency do not count */
    {"x\r\r\ny", 8},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint64_t size;
    uint32_t flags;
    scan(cases[i].in, strlen(cases[i].in), &size, &flags);
    assert_int_equal(size, cases[i].size);
    assert_int_equal(flags, 0);
  }
}

static void test_scan_flags_what_the_message_needs(void **st)
{
  (void)st;
  static const struct {
    const char *in;
    uint32_t flags;
  } cases[] = {
    {"Subject: ascii\n\nbody\n", 0},
    {"Subject: x\n\nbody caf\xc3\xa9\n", SMTPOUT_MESSAGE_8BITMIME},
    {"Subject: caf\xc3\xa9\n\nbody\n",
     SMTPOUT_MESSAGE_8BITMIME | SMTPOUT_MESSAGE_SMTPUTF8 |
         SMTPOUT_MESSAGE_NO_7BIT_CONVERSION},
    /* A first line that is no header field starts the body. */
    {"caf\xc3\xa9 au lait\n", SMTPOUT_MESSAGE_8BITMIME},
    {"Content-Type: multipart/mixed; boundary=b\n\n--b\n\n\xc3\xa9\n--b--\n",
     SMTPOUT_MESSAGE_8BITMIME | SMTPOUT_MESSAGE_NO_7BIT_CONVERSION},
    {multipart, SMTPOUT_MESSAGE_8BITMIME},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint32_t flags;
    scan(cases[i].in, strlen(cases[i].in), NULL, &flags);
    if (flags != cases[i].flags)
      fail_msg("case %zu: flags %#x, want %#x", i, flags, cases[i].flags);
  }
}

static void test_scan_in_chunks_equals_one_shot(void **st)
{
  (void)st;
  const char *inputs[] = {multipart, folded, "Subject: \xc3\xa9\r\n\r\nx\r"};
  for (size_t i = 0; i < 3; i++) {
    size_t len = strlen(inputs[i]);
    uint64_t size1, size2;
    uint32_t flags1, flags2;
    scan(inputs[i], len, &size1, &flags1);
    for (size_t chunk = 1; chunk < 20; chunk++) {
      smtpout_message_scan *sc;
      assert_int_equal(smtpout_message_scan_new(&sc), 0);
      for (size_t at = 0; at < len; at += chunk)
        assert_int_equal(smtpout_message_scan_update(
                             sc, (const uint8_t *)inputs[i] + at,
                             len - at < chunk ? len - at : chunk),
                         0);
      assert_int_equal(smtpout_message_scan_end(sc, &size2, &flags2), 0);
      assert_int_equal(size1, size2);
      assert_int_equal(flags1, flags2);
      /* Ended: the same answer again, and no more input. */
      assert_int_equal(smtpout_message_scan_end(sc, &size2, NULL), 0);
      assert_int_equal(size1, size2);
      assert_int_equal(smtpout_message_scan_update(sc, (const uint8_t *)"x",
                                                   1),
                       SMTPOUT_ERR_INVALID_STATE);
      smtpout_message_scan_free(sc);
    }
  }
}

static void test_scan_refuses_bad_arguments(void **st)
{
  (void)st;
  smtpout_message_scan *sc;
  assert_int_equal(smtpout_message_scan_new(NULL),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_message_scan_new(&sc), 0);
  assert_int_equal(smtpout_message_scan_update(sc, NULL, 1),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_message_scan_update(sc, NULL, 0), 0);
  assert_int_equal(smtpout_message_scan_update(NULL, (const uint8_t *)"x", 1),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_message_scan_end(NULL, NULL, NULL),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  smtpout_message_scan_free(sc);
  smtpout_message_scan_free(NULL);
  assert_int_equal(smtpout_message_inspect(NULL, 1, NULL, NULL),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  uint64_t size = 1;
  uint32_t flags = 1;
  assert_int_equal(smtpout_message_inspect(NULL, 0, &size, &flags), 0);
  assert_int_equal(size, 0);
  assert_int_equal(flags, 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_message_without_mime_headers_becomes_quoted_printable),
    cmocka_unit_test(test_declared_encoding_is_replaced_not_added),
    cmocka_unit_test(test_qp_escapes_equals_controls_and_trailing_whitespace),
    cmocka_unit_test(test_qp_soft_breaks_keep_lines_within_76),
    cmocka_unit_test(test_crlf_lf_and_cr_input_convert_alike),
    cmocka_unit_test(test_output_is_dot_stuffed_and_ended_once),
    cmocka_unit_test(test_multipart_reencodes_only_its_8bit_parts),
    cmocka_unit_test(test_nested_message_is_followed),
    cmocka_unit_test(test_binary_part_keeps_its_own_line_ends),
    cmocka_unit_test(test_8bit_leaf_that_is_not_text_becomes_base64),
    cmocka_unit_test(test_every_chunking_gives_the_same_output),
    cmocka_unit_test(test_header_folded_across_chunks_is_understood),
    cmocka_unit_test(test_long_lines_are_handled_in_pieces),
    cmocka_unit_test(test_delimiter_is_the_boundary_then_only_white_space),
    cmocka_unit_test(test_nesting_is_followed_to_the_limit),
    cmocka_unit_test(test_8bit_where_no_encoding_can_carry_it_is_refused),
    cmocka_unit_test(test_7bit_message_always_converts),
    cmocka_unit_test(test_scan_size_counts_each_line_end_as_crlf),
    cmocka_unit_test(test_scan_flags_what_the_message_needs),
    cmocka_unit_test(test_scan_in_chunks_equals_one_shot),
    cmocka_unit_test(test_scan_refuses_bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
