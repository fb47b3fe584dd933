/*
 * test_names.c — name normalisation: IDNA equivalences, invalid labels,
 * the ASCII fast path agreeing with libidn2, IP literals.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "names_int.h"
#include "smtpout/common.h"

static void assert_normal(const char *in, const char *want)
{
  char out[NAME_MAX_LEN];
  const char *why = NULL;
  int rv = name_normalize_why(in, out, sizeof(out), &why);
  if (rv != 0)
    fail_msg("name_normalize(\"%s\") failed: %s", in, why ? why : "?");
  assert_string_equal(out, want);
}

static void assert_bad(const char *in)
{
  char out[NAME_MAX_LEN];
  if (name_normalize(in, out, sizeof(out)) != SMTPOUT_ERR_BAD_NAME)
    fail_msg("name_normalize(\"%s\") accepted it as \"%s\"", in, out);
}

static void test_ascii_is_lowercased_without_root_dot(void **state)
{
  (void)state;
  assert_normal("Example.COM", "example.com");
  assert_normal("mx1.Example.net.", "mx1.example.net");
  assert_normal("localhost", "localhost");
  assert_normal("a-b.c0.example", "a-b.c0.example");
}

static void test_idna_spellings_are_one_name(void **state)
{
  (void)state;
  assert_normal("BÜCHER.example", "xn--bcher-kva.example");
  assert_normal("bücher.example", "xn--bcher-kva.example");
  assert_normal("xn--bcher-kva.example", "xn--bcher-kva.example");
  assert_normal("XN--BCHER-KVA.EXAMPLE.", "xn--bcher-kva.example");
  /* NFC: "e" + COMBINING ACUTE ACCENT is "é". */
  assert_normal("e\xcc\x81.example", "xn--9ca.example");
  assert_normal("\xc3\xa9.example", "xn--9ca.example");
  /* UTS#46 maps full-width letters and the ideographic full stop. */
  assert_normal("ｂücher。example", "xn--bcher-kva.example");
}

static void test_sharp_s_stays_sharp_s(void **state)
{
  (void)state;
  /* Non-transitional: "faß.de" is not "fass.de". */
  assert_normal("faß.de", "xn--fa-hia.de");
  assert_normal("straße.example", "xn--strae-oqa.example");
}

static void test_invalid_names_are_refused(void **state)
{
  (void)state;
  assert_bad("");
  assert_bad(".");
  assert_bad("a..example");
  assert_bad(".example");
  assert_bad("example..");
  assert_bad("-a.example");
  assert_bad("a-.example");
  assert_bad("ab--c.example");     /* reserved R-LDH label */
  assert_bad("a_b.example");       /* not a host name */
  assert_bad("a b.example");
  assert_bad("a!.example");
  assert_bad("☃.net");             /* disallowed code point */
  assert_bad("xn--n3h.net");       /* the same, as an A-label */
  assert_bad("xn--.example");      /* bad Punycode */
  assert_bad("xn--a.example");
  assert_bad("\xff.example");      /* not UTF-8 */
  assert_bad("a\xe2\x80\x8d" "b.example"); /* ZWJ outside its context */
}

static void test_length_limits(void **state)
{
  (void)state;
  char label63[64], label64[65], name[300];
  memset(label63, 'a', 63);
  label63[63] = '\0';
  memset(label64, 'a', 64);
  label64[64] = '\0';
  snprintf(name, sizeof(name), "%s.example", label63);
  assert_normal(name, name);
  snprintf(name, sizeof(name), "%s.example", label64);
  assert_bad(name);

  /* 4 x 63 + 3 dots = 255 > 253; 3 x 63 + 61 + 3 dots = 253. */
  snprintf(name, sizeof(name), "%s.%s.%s.%s", label63, label63, label63,
           label63);
  assert_bad(name);
  char label61[62];
  memset(label61, 'b', 61);
  label61[61] = '\0';
  snprintf(name, sizeof(name), "%s.%s.%s.%s", label63, label63, label63,
           label61);
  assert_int_equal(strlen(name), 253);
  assert_normal(name, name);
  strcat(name, ".");
  char out[NAME_MAX_LEN];
  assert_int_equal(name_normalize(name, out, sizeof(out)), 0);
  /* An output buffer too small is refused, not overrun. */
  assert_int_equal(name_normalize("example.com", out, 5),
                   SMTPOUT_ERR_BAD_NAME);
}

/* The fast path must give libidn2's answer for every ASCII name. */
static void test_ascii_fast_path_agrees_with_libidn2(void **state)
{
  (void)state;
  static const char *const corpus[] = {
    "example.com", "EXAMPLE.COM", "Mx1.Example.Net.", "a", "a.b.c.d.e.f",
    "0.example", "1-2.example", "a-b-c.example", "ab--c.example",
    "-ab.example", "ab-.example", "a..b", ".a", "a.", "a_b.example",
    "a b.example", "a!.example", "xn--bcher-kva.example", "XN--BCHER-KVA.x",
    "xn--.example", "xn--a.example", "xn--zca.example", "abcd--e.example",
    "r1---sn-x.example", "a.-b", "123", "1.2.3", "x.0", "..",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.x",
  };
  for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
    char fast[NAME_MAX_LEN] = "", slow[NAME_MAX_LEN] = "";
    int a = name_normalize(corpus[i], fast, sizeof(fast));
    int b = name_normalize_idn(corpus[i], slow, sizeof(slow), NULL);
    if (a != b || (a == 0 && strcmp(fast, slow) != 0))
      fail_msg("\"%s\": fast path %d \"%s\", libidn2 %d \"%s\"", corpus[i], a,
               fast, b, slow);
  }
}

static void assert_ip(const char *in, const char *want)
{
  char out[64];
  if (!name_ip_literal(in, out, sizeof(out)))
    fail_msg("\"%s\" not taken as an IP literal", in);
  assert_string_equal(out, want);
}

static void assert_not_ip(const char *in)
{
  char out[64];
  assert_int_equal(name_ip_literal(in, out, sizeof(out)), 0);
}

static void test_ip_literals_are_canonical(void **state)
{
  (void)state;
  assert_ip("192.0.2.1", "192.0.2.1");
  assert_ip("[192.0.2.1]", "192.0.2.1");
  assert_ip("2001:DB8:0:0::1", "2001:db8::1");
  assert_ip("[IPv6:2001:db8::1]", "2001:db8::1");
  assert_ip("[ipv6:2001:0db8::0001]", "2001:db8::1");
  assert_not_ip("[IPv6:192.0.2.1]"); /* the tag announces IPv6 */
  assert_not_ip("1.2.3");
  assert_not_ip("example.com");
  assert_not_ip("[]");
  assert_not_ip("256.1.1.1");
}

static void test_ip_literal_with_root_dot_is_the_address(void **state)
{
  (void)state;
  /* An MX record or a typed name may end in the root dot: the address,
   * not a host name (which would get SNI and a certificate check). */
  assert_ip("127.0.0.1.", "127.0.0.1");
  assert_ip("192.0.2.1.", "192.0.2.1");
  assert_ip("::1.", "::1");
  assert_ip("2001:DB8::1.", "2001:db8::1");
  /* One dot only, and not after brackets: those are neither. */
  assert_not_ip("127.0.0.1..");
  assert_not_ip("[127.0.0.1].");
  assert_not_ip("[IPv6:::1].");
  assert_bad("[127.0.0.1].");
  assert_bad("127.0.0.1..");
}

static void test_numeric_names_are_neither_names_nor_literals(void **state)
{
  (void)state;
  /* Spellings inet_aton() reads as 127.0.0.1: a host connecting by the
   * "name" reaches the address.  Not canonical literals either. */
  static const char *const numeric[] = {
    "127.1", "127.0.1", "0x7f.0.0.1", "0177.0.0.1", "2130706433",
    "0x7f000001", "127.0.0.0x1", "127.1.", "1.2.3", "123", "x.0",
    "mail.example.123", "1.2.3.4.5",
  };
  for (size_t i = 0; i < sizeof(numeric) / sizeof(numeric[0]); i++) {
    assert_bad(numeric[i]);
    char out[NAME_MAX_LEN];
    assert_int_equal(name_normalize_idn(numeric[i], out, sizeof(out), NULL),
                     SMTPOUT_ERR_BAD_NAME);
    assert_not_ip(numeric[i]);
  }
  /* Digits elsewhere are fine. */
  assert_normal("0.example", "0.example");
  assert_normal("123.example", "123.example");
  assert_normal("1.2.3.4.example", "1.2.3.4.example");
  assert_normal("mx1.example.c0m", "mx1.example.c0m");
  assert_normal("0x7f.example", "0x7f.example");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_ascii_is_lowercased_without_root_dot),
    cmocka_unit_test(test_idna_spellings_are_one_name),
    cmocka_unit_test(test_sharp_s_stays_sharp_s),
    cmocka_unit_test(test_invalid_names_are_refused),
    cmocka_unit_test(test_length_limits),
    cmocka_unit_test(test_ascii_fast_path_agrees_with_libidn2),
    cmocka_unit_test(test_ip_literals_are_canonical),
    cmocka_unit_test(test_ip_literal_with_root_dot_is_the_address),
    cmocka_unit_test(test_numeric_names_are_neither_names_nor_literals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
