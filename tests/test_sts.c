/*
 * test_sts.c — MTA-STS (RFC 8461): the policy parser (with the vectors of
 * postfix-mta-sts-resolver's test suite), MX matching, the `_mta-sts` TXT
 * record, the Content-Type check, cache entries and the discovery state
 * machine over them, with wall-clock time passed in.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sts_int.h"
#include "tls_int.h"
#include "tlsrpt_int.h"
#include "smtpout/smtpout.h"

/* 2023-11-14T22:13:20Z, a wall-clock time in ms. */
#define T0 1700000000000ULL
#define SEC 1000ULL

static smtpout_sts_policy *parse_ok(const char *text)
{
  smtpout_sts_policy *p = NULL;
  char err[256];
  int rc = smtpout_sts_policy_parse(&p, text, strlen(text), err, sizeof(err));
  if (rc != 0)
    fail_msg("policy refused (%s): %s", smtpout_strerror(rc), err);
  return p;
}

/* Returns the error text. */
static const char *parse_bad(const char *text, size_t len)
{
  static char err[256];
  smtpout_sts_policy *p = NULL;
  int rc = smtpout_sts_policy_parse(&p, text, len, err, sizeof(err));
  if (rc != SMTPOUT_ERR_SYNTAX)
    fail_msg("policy \"%.*s\" accepted (rc %d)", (int)len, text, rc);
  assert_null(p);
  assert_true(err[0] != '\0');
  return err;
}

#define BAD(text) parse_bad(text, strlen(text))

/* ------------------------------------------------------------------ */
/* Policy files                                                         */

/* postfix-mta-sts-resolver tests/nginx.conf: each body and the verdict
 * test_resolver.py expects (bad-policyN are FETCH_ERROR there, i.e. no
 * valid policy). */
static void test_policy_vectors_from_postfix_mta_sts_resolver(void **state)
{
  (void)state;
  smtpout_sts_policy *p =
      parse_ok("version: STSv1\nmode: enforce\nmx: mail.loc\nmax_age: 86400");
  assert_int_equal(smtpout_sts_policy_mode(p), SMTPOUT_STS_MODE_ENFORCE);
  assert_int_equal(smtpout_sts_policy_max_age(p), 86400);
  assert_int_equal(smtpout_sts_policy_mx_count(p), 1);
  assert_string_equal(smtpout_sts_policy_mx(p, 0), "mail.loc");
  assert_null(smtpout_sts_policy_mx(p, 1));
  smtpout_sts_policy_free(p);

  BAD("garbage");                                                /* 1 */
  assert_non_null(strstr(BAD("version: STSv1\nmode: enforce\nmax_age: 86400"),
                         "no mx"));                              /* 2 */
  assert_non_null(strstr(
      BAD("version: STSv1\nmode: enforce\nmx: mail.loc\nmax_age: xxx"),
      "line 4: max_age"));                                       /* 5 */
  BAD("version: STSv1\nmode: enforce\nmx: mail.loc\nmax_age: 31557601"); /* 6 */
  assert_non_null(strstr(BAD("version: STSv1\nmx: mail.loc\nmax_age: 86400"),
                         "no mode"));                            /* 7 */
  BAD("version: STSv1\nmode: doubt\nmx: mail.loc\nmax_age: 86400"); /* 8 */

  p = parse_ok("version: STSv1\nmode: none\nmax_age: 86400"); /* valid-none */
  assert_int_equal(smtpout_sts_policy_mode(p), SMTPOUT_STS_MODE_NONE);
  assert_int_equal(smtpout_sts_policy_mx_count(p), 0);
  smtpout_sts_policy_free(p);

  p = parse_ok("version: STSv1\nmode: testing\nmax_age: 86400\nmx: mail.loc\n");
  assert_int_equal(smtpout_sts_policy_mode(p), SMTPOUT_STS_MODE_TESTING);
  smtpout_sts_policy_free(p);

  p = parse_ok("version: STSv1\nmode: enforce\nmax_age: 1\nmx: mail.loc\n");
  assert_int_equal(smtpout_sts_policy_max_age(p), 1); /* fast-expire */
  smtpout_sts_policy_free(p);
}

static void test_policy_lines_end_in_lf_or_crlf(void **state)
{
  (void)state;
  smtpout_sts_policy *p = parse_ok(
      "version: STSv1\r\nmode: enforce\r\nmx: a.example\nmx: *.b.example\r\n"
      "max_age: 604800\r\n");
  assert_int_equal(smtpout_sts_policy_mx_count(p), 2);
  assert_string_equal(smtpout_sts_policy_mx(p, 1), "*.b.example");
  const char *const *lines;
  const size_t *lens;
  assert_int_equal(sts_policy_lines(p, &lines, &lens), 5);
  assert_int_equal(lens[0], strlen("version: STSv1"));
  assert_memory_equal(lines[3], "mx: *.b.example", lens[3]);
  smtpout_sts_policy_free(p);
}

static void test_policy_blank_lines_and_stray_cr_are_refused(void **state)
{
  (void)state;
  const char *base = "version: STSv1\nmode: none\nmax_age: 1";
  char t[128];
  snprintf(t, sizeof(t), "%s\n\n", base);
  assert_non_null(strstr(BAD(t), "line 4: empty line"));
  snprintf(t, sizeof(t), "\n%s", base);
  BAD(t);
  snprintf(t, sizeof(t), "%s\r\n\r\n", base);
  BAD(t);
  BAD("version: STSv1\rmode: none\nmax_age: 1");
  BAD("version: STSv1\nmode: none\r\r\nmax_age: 1");
  BAD("version: STSv1\nmode: none\nmax_age: 1\r"); /* CR without LF */
  assert_non_null(strstr(parse_bad("version: STSv1\nmode: none\0\nmax_age: 1",
                                   37),
                         "NUL"));
  BAD("");
  BAD(" version: STSv1\nmode: none\nmax_age: 1"); /* no leading space */
}

static void test_policy_unknown_keys_are_ignored_when_well_formed(void **state)
{
  (void)state;
  smtpout_sts_policy *p = parse_ok(
      "version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: 60\n"
      "x-note: any text, with spaces and UTF-8 \xc3\xa9\ndraft.v2_k-y: 1\n");
  assert_int_equal(smtpout_sts_policy_mode(p), SMTPOUT_STS_MODE_ENFORCE);
  smtpout_sts_policy_free(p);
  BAD("version: STSv1\nmode: none\nmax_age: 1\nx-note:");        /* empty */
  BAD("version: STSv1\nmode: none\nmax_age: 1\nx-note: a\tb");   /* tab */
  BAD("version: STSv1\nmode: none\nmax_age: 1\nx-note: \x01");   /* CTL */
  BAD("version: STSv1\nmode: none\nmax_age: 1\nx-note: \xc3");   /* UTF-8 */
  BAD("version: STSv1\nmode: none\nmax_age: 1\n_x: 1");      /* name start */
  BAD("version: STSv1\nmode: none\nmax_age: 1\n"
      "abcdefghijabcdefghijabcdefghijabc: 1"); /* a 33-character name */
  BAD("version: STSv1\nmode: none\nmax_age: 1\nno colon here");
}

static void test_policy_first_of_a_repeated_key_counts(void **state)
{
  (void)state;
  smtpout_sts_policy *p = parse_ok(
      "version: STSv1\nmode: testing\nmode: enforce\nmax_age: 10\n"
      "max_age: 20\nversion: STSv2\nmx: a.example\nmx: b.example\n");
  assert_int_equal(smtpout_sts_policy_mode(p), SMTPOUT_STS_MODE_TESTING);
  assert_int_equal(smtpout_sts_policy_max_age(p), 10);
  assert_int_equal(smtpout_sts_policy_mx_count(p), 2); /* mx repeats */
  smtpout_sts_policy_free(p);
  /* A repeated key is ignored, but still has to be a field. */
  BAD("version: STSv1\nmode: testing\nmode:\nmax_age: 10\nmx: a.example");
}

static void test_policy_keys_and_values_are_case_sensitive(void **state)
{
  (void)state;
  assert_non_null(
      strstr(BAD("version: STSv1\nMode: enforce\nmx: a.example\nmax_age: 1"),
             "no mode"));
  BAD("version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1");
  BAD("version: stsv1\nmode: enforce\nmx: a.example\nmax_age: 1");
  BAD("mode: none\nmax_age: 1"); /* no version */
}

static void test_policy_white_space_around_values(void **state)
{
  (void)state;
  smtpout_sts_policy *p =
      parse_ok("version:STSv1\nmode:\t enforce \t\nmx:a.example  \nmax_age: 5");
  assert_int_equal(smtpout_sts_policy_mode(p), SMTPOUT_STS_MODE_ENFORCE);
  assert_string_equal(smtpout_sts_policy_mx(p, 0), "a.example");
  smtpout_sts_policy_free(p);
  BAD("version: STSv1\nmode : enforce\nmx: a.example\nmax_age: 5");
  BAD("version: STSv1\nmode: enforce\nmx: a .example\nmax_age: 5");
  BAD("version: STSv1\nmode: enforce now\nmx: a.example\nmax_age: 5");
}

static void test_policy_max_age_is_1_to_10_digits_up_to_a_year(void **state)
{
  (void)state;
  static const struct {
    const char *v;
    long want; /* -1: refused */
  } cases[] = {
    {"0", 0}, {"31557600", 31557600}, {"0000000001", 1},
    {"31557601", -1}, {"00000000001", -1}, {"-1", -1}, {"+1", -1},
    {"1 2", -1}, {"1.5", -1}, {"99999999999", -1}, {"4294967297", -1},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char t[128];
    snprintf(t, sizeof(t), "version: STSv1\nmode: none\nmax_age: %s",
             cases[i].v);
    if (cases[i].want < 0) {
      BAD(t);
    } else {
      smtpout_sts_policy *p = parse_ok(t);
      assert_int_equal(smtpout_sts_policy_max_age(p), cases[i].want);
      smtpout_sts_policy_free(p);
    }
  }
}

static void test_policy_mx_patterns(void **state)
{
  (void)state;
  static const struct {
    const char *mx, *want; /* want NULL: refused */
  } cases[] = {
    {"*.example.com", "*.example.com"},
    {"MX1.Example.COM", "mx1.example.com"},
    {"mx1.example.com.", "mx1.example.com"},
    {"mx.b\xc3\xbc" "cher.example", "mx.xn--bcher-kva.example"},
    {"*.b\xc3\xbc" "cher.example", "*.xn--bcher-kva.example"},
    {"*", NULL}, {"*.", NULL}, {"mx.*.example", NULL}, {"**.example", NULL},
    {"*example.com", NULL}, {"*.*.example", NULL}, {"mx_1.example", NULL},
    {"-mx.example", NULL}, {"mx..example", NULL}, {".", NULL},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char t[256];
    snprintf(t, sizeof(t), "version: STSv1\nmode: enforce\nmx: %s\nmax_age: 1",
             cases[i].mx);
    if (cases[i].want == NULL) {
      assert_non_null(strstr(BAD(t), "line 3: mx"));
    } else {
      smtpout_sts_policy *p = parse_ok(t);
      assert_string_equal(smtpout_sts_policy_mx(p, 0), cases[i].want);
      smtpout_sts_policy_free(p);
    }
  }
}

/* A valid policy of exactly `size` bytes (an extension line pads it). */
static char *policy_of_size(size_t size)
{
  static const char head[] = "version: STSv1\nmode: none\nmax_age: 1\nx: ";
  char *t = malloc(size + 1);
  memcpy(t, head, sizeof(head) - 1);
  memset(t + sizeof(head) - 1, 'a', size - (sizeof(head) - 1));
  t[size] = '\0';
  return t;
}

static void test_policy_larger_than_64_kib_is_refused(void **state)
{
  (void)state;
  char *t = policy_of_size(SMTPOUT_STS_POLICY_MAX_BYTES);
  smtpout_sts_policy_free(parse_ok(t));
  free(t);
  t = policy_of_size(SMTPOUT_STS_POLICY_MAX_BYTES + 1);
  assert_non_null(strstr(BAD(t), "larger than 65536"));
  free(t);
}

static void test_policy_parse_arguments(void **state)
{
  (void)state;
  smtpout_sts_policy *p = NULL;
  assert_int_equal(smtpout_sts_policy_parse(NULL, "x", 1, NULL, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_sts_policy_parse(&p, NULL, 1, NULL, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  /* No error buffer: the code alone. */
  assert_int_equal(smtpout_sts_policy_parse(&p, "x", 1, NULL, 0),
                   SMTPOUT_ERR_SYNTAX);
  char tiny[4];
  assert_int_equal(smtpout_sts_policy_parse(&p, "x", 1, tiny, sizeof(tiny)),
                   SMTPOUT_ERR_SYNTAX);
  assert_int_equal(strlen(tiny), 3);
  assert_null(p);
  smtpout_sts_policy_free(NULL);
  assert_int_equal(smtpout_sts_policy_mode(NULL), SMTPOUT_STS_MODE_NONE);
  assert_string_equal(smtpout_sts_mode_name(SMTPOUT_STS_MODE_ENFORCE),
                      "enforce");
  assert_null(smtpout_sts_mode_name(7));
}

/* ------------------------------------------------------------------ */
/* MX matching (RFC 8461 section 4.1)                                   */

static void test_mx_matching(void **state)
{
  (void)state;
  smtpout_sts_policy *p = parse_ok(
      "version: STSv1\nmode: enforce\nmx: mail.example.com\n"
      "mx: *.mx.example.net\nmx: *.xn--bcher-kva.example\nmax_age: 1");
  static const struct {
    const char *mx;
    int want;
  } cases[] = {
    {"mail.example.com", 1},
    {"MAIL.Example.Com.", 1},          /* case, trailing dot */
    {"mx1.mail.example.com", 0},       /* not a wildcard */
    {"example.com", 0},
    {"a.mx.example.net", 1},
    {"A.MX.EXAMPLE.NET.", 1},
    {"mx.example.net", 0},             /* the wildcard needs a label */
    {"a.b.mx.example.net", 0},         /* exactly one label */
    {"mx1.b\xc3\xbc" "cher.example", 1}, /* U-label MX, A-label pattern */
    {"mx1.xn--bcher-kva.example", 1},
    {"mx1.bucher.example", 0},
    {"mail.example.com.evil.example", 0},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int got = smtpout_sts_policy_mx_allowed(p, cases[i].mx);
    if (got != cases[i].want)
      fail_msg("%s: got %d, want %d", cases[i].mx, got, cases[i].want);
  }
  assert_int_equal(smtpout_sts_policy_mx_allowed(p, "bad_name.example"),
                   SMTPOUT_ERR_BAD_NAME);
  assert_int_equal(smtpout_sts_policy_mx_allowed(p, ""), SMTPOUT_ERR_BAD_NAME);
  assert_int_equal(smtpout_sts_policy_mx_allowed(NULL, "a.example"),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_sts_policy_mx_allowed(p, NULL),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  smtpout_sts_policy_free(p);

  /* mode none: no pattern, nothing matches (the mode makes it harmless). */
  p = parse_ok("version: STSv1\nmode: none\nmax_age: 1");
  assert_int_equal(smtpout_sts_policy_mx_allowed(p, "a.example"), 0);
  smtpout_sts_policy_free(p);
}

/* ------------------------------------------------------------------ */
/* The _mta-sts TXT record (RFC 8461 section 3.1)                       */

static void assert_txt(const char *txt, const char *want_id)
{
  char id[STS_ID_MAX + 1];
  const char *why = NULL;
  int rc = sts_txt_parse(txt, strlen(txt), id, &why);
  if (want_id == NULL) {
    if (rc != SMTPOUT_ERR_SYNTAX)
      fail_msg("TXT \"%s\" accepted", txt);
    assert_non_null(why);
  } else {
    if (rc != 0)
      fail_msg("TXT \"%s\" refused: %s", txt, why);
    assert_string_equal(id, want_id);
  }
}

static void test_txt_record_syntax(void **state)
{
  (void)state;
  assert_txt("v=STSv1;id=20180907T090909;", "20180907T090909"); /* [MSR] */
  assert_txt("v=STSv1; id=20160831085700Z;", "20160831085700Z"); /* RFC */
  assert_txt("v=STSv1; id=abc", "abc");
  assert_txt("v=STSv1 ;\tid=abc ; ", "abc");
  assert_txt("v=STSv1; ext=value; id=A1; x.y-z_9=!#$%", "A1");
  assert_txt("v=STSv1; id=12345678901234567890123456789012", /* 32 */
             "12345678901234567890123456789012");
  assert_txt("v=STSv1; id=123456789012345678901234567890123", NULL); /* 33 */
  assert_txt("id=20180907T090909; v=STSv1;", NULL); /* bad-record1 */
  assert_txt("azazaza;asdasdasdasd", NULL);         /* bad-record2 */
  assert_txt("v=STSv12;id=20180907T090909;", NULL); /* bad-record3 */
  assert_txt("v=STSv1", NULL);
  assert_txt("v=STSv1;", NULL);
  assert_txt("v=STSv1; id=", NULL);
  assert_txt("v=STSv1; id=ab-cd", NULL);
  assert_txt("v=STSv1; id=a; id=b", NULL);
  assert_txt("v=STSv1; ID=abc", NULL); /* an extension, and no id */
  assert_txt("v=STSv1; id=abc ", NULL);  /* white space, no ";" */
  assert_txt("v=STSv1; id=abc;;", NULL);
  assert_txt("v=STSv1; x=a=b; id=abc", NULL);
  assert_txt("v=STSv1; x=; id=abc", NULL);
  assert_txt(" v=STSv1; id=abc", NULL);
  assert_txt("V=STSv1; id=abc", NULL);
}

static int select_txt(const char *const *recs, size_t n, char *id,
                      const char **why)
{
  size_t lens[8];
  for (size_t i = 0; i < n; i++)
    lens[i] = strlen(recs[i]);
  return sts_txt_select(recs, lens, n, id, why);
}

static void test_txt_record_selection(void **state)
{
  (void)state;
  char id[STS_ID_MAX + 1];
  const char *why;
  const char *one[] = {"v=spf1 -all", "v=STSv1; id=x1", "hello"};
  assert_int_equal(select_txt(one, 3, id, &why), STS_TXT_FOUND);
  assert_string_equal(id, "x1");
  const char *two[] = {"v=STSv1; id=x1", "v=STSv1; id=x2"};
  assert_int_equal(select_txt(two, 2, id, &why), STS_TXT_UNUSABLE);
  assert_non_null(strstr(why, "more than one"));
  const char *none[] = {"v=spf1 -all", "id=1; v=STSv1;", "v=STSv12; id=1;"};
  assert_int_equal(select_txt(none, 3, id, &why), STS_TXT_ABSENT);
  assert_int_equal(select_txt(NULL, 0, id, &why), STS_TXT_ABSENT);
  /* Discarded first, then counted: a v=STSv12 record does not make two. */
  const char *mixed[] = {"v=STSv12; id=1;", "v=STSv1; id=2;"};
  assert_int_equal(select_txt(mixed, 2, id, &why), STS_TXT_FOUND);
  assert_string_equal(id, "2");
  const char *broken[] = {"v=STSv1; id=has-dash"};
  assert_int_equal(select_txt(broken, 1, id, &why), STS_TXT_UNUSABLE);
}

static void test_content_type_must_be_text_plain(void **state)
{
  (void)state;
  assert_true(sts_content_type_ok("text/plain"));
  assert_true(sts_content_type_ok("TEXT/Plain"));
  assert_true(sts_content_type_ok("text/plain; charset=utf-8"));
  assert_true(sts_content_type_ok(" text/plain ;charset=us-ascii"));
  assert_true(sts_content_type_ok("text/plain;"));
  assert_false(sts_content_type_ok("text/html"));
  assert_false(sts_content_type_ok("text/plainx"));
  assert_false(sts_content_type_ok("text/plain x"));
  assert_false(sts_content_type_ok("application/octet-stream"));
  assert_false(sts_content_type_ok(""));
  assert_false(sts_content_type_ok(NULL));
}

/* ------------------------------------------------------------------ */
/* Cache entries                                                        */

static const char POLICY_A[] =
    "version: STSv1\nmode: enforce\nmx: mx1.example.org\nmax_age: 86400\n";
static const char POLICY_B[] =
    "version: STSv1\nmode: testing\nmx: *.example.org\nmax_age: 600\n";

static struct buf entry_text(const char *id, uint64_t fetched,
                             const char *policy, const char *retry_id,
                             uint64_t retry_until, int retry_failure)
{
  struct sts_cache_entry e;
  memset(&e, 0, sizeof(e));
  if (policy != NULL) {
    e.policy = parse_ok(policy);
    snprintf(e.id, sizeof(e.id), "%s", id);
    e.fetched_ms = fetched;
    e.expires_ms = fetched + smtpout_sts_policy_max_age(e.policy) * SEC;
  } else {
    e.fetched_ms = fetched;
    e.expires_ms = retry_until;
  }
  if (retry_id != NULL) {
    snprintf(e.retry_id, sizeof(e.retry_id), "%s", retry_id);
    e.retry_until_ms = retry_until;
    e.retry_failure = retry_failure;
  }
  struct buf b = {0};
  assert_int_equal(sts_cache_entry_write(&e, &b), 0);
  smtpout_sts_policy_free(e.policy);
  return b;
}

static void test_cache_entry_round_trip(void **state)
{
  (void)state;
  struct buf b = entry_text("id1", T0, POLICY_A, NULL, 0, 0);
  char want[512];
  snprintf(want, sizeof(want),
           "v=1; id=id1; fetched=%llu; expires=%llu\n%s",
           (unsigned long long)T0, (unsigned long long)(T0 + 86400 * SEC),
           POLICY_A);
  assert_int_equal(buf_len(&b), strlen(want));
  assert_memory_equal(buf_head(&b), want, strlen(want));
  struct sts_cache_entry e;
  const char *why;
  assert_int_equal(sts_cache_entry_parse(&e, buf_head(&b), buf_len(&b), &why),
                   0);
  assert_string_equal(e.id, "id1");
  assert_true(e.fetched_ms == T0);
  assert_true(e.expires_ms == T0 + 86400 * SEC);
  assert_int_equal(smtpout_sts_policy_mode(e.policy), SMTPOUT_STS_MODE_ENFORCE);
  assert_string_equal(e.retry_id, "");
  sts_cache_entry_clear(&e);
  buf_free(&b);

  /* With a failed refetch remembered, and a negative entry. */
  b = entry_text("id1", T0, POLICY_A, "id2", T0 + 300 * SEC,
                 TLSRPT_STS_WEBPKI_INVALID);
  assert_int_equal(sts_cache_entry_parse(&e, buf_head(&b), buf_len(&b), &why),
                   0);
  assert_string_equal(e.retry_id, "id2");
  assert_int_equal(e.retry_failure, TLSRPT_STS_WEBPKI_INVALID);
  sts_cache_entry_clear(&e);
  buf_free(&b);
  b = entry_text(NULL, T0, NULL, "id2", T0 + 300 * SEC,
                 TLSRPT_STS_POLICY_FETCH_ERROR);
  snprintf(want, sizeof(want),
           "v=1; fetched=%llu; expires=%llu; retry-id=id2; retry-until=%llu; "
           "retry-failure=sts-policy-fetch-error\n",
           (unsigned long long)T0, (unsigned long long)(T0 + 300 * SEC),
           (unsigned long long)(T0 + 300 * SEC));
  assert_int_equal(buf_len(&b), strlen(want));
  assert_memory_equal(buf_head(&b), want, strlen(want));
  assert_int_equal(sts_cache_entry_parse(&e, buf_head(&b), buf_len(&b), &why),
                   0);
  assert_null(e.policy);
  sts_cache_entry_clear(&e);
  buf_free(&b);
}

static void assert_entry_refused(const char *text, size_t len)
{
  struct sts_cache_entry e;
  const char *why = NULL;
  if (sts_cache_entry_parse(&e, (const uint8_t *)text, len, &why) !=
      SMTPOUT_ERR_SYNTAX)
    fail_msg("corrupt entry accepted: %.*s", (int)len, text);
  assert_non_null(why);
  assert_null(e.policy);
}

static void test_corrupt_cache_entries_are_refused(void **state)
{
  (void)state;
  char t[1024];
  const unsigned long long f = T0, x = T0 + 86400 * SEC;
#define REFUSE(...)                                                         \
  do {                                                                      \
    snprintf(t, sizeof(t), __VA_ARGS__);                                    \
    assert_entry_refused(t, strlen(t));                                     \
  } while (0)
  REFUSE("v=2; id=a; fetched=%llu; expires=%llu\n%s", f, x, POLICY_A);
  REFUSE("v=1; id=a; fetched=%llu; expires=%llu\n%s", f, x + 1, POLICY_A);
  REFUSE("v=1; id=a; fetched=%llu; expires=%llu %s", f, x, POLICY_A);
  REFUSE("v=1; id=a; fetched=0%llu; expires=%llu\n%s", f, x, POLICY_A);
  REFUSE("v=1; id=a-b; fetched=%llu; expires=%llu\n%s", f, x, POLICY_A);
  REFUSE("v=1; id=a; expires=%llu; fetched=%llu\n%s", x, f, POLICY_A);
  REFUSE("v=1; id=a; fetched=%llu; expires=%llu; extra=1\n%s", f, x, POLICY_A);
  REFUSE("v=1;id=a; fetched=%llu; expires=%llu\n%s", f, x, POLICY_A);
  REFUSE("v=1; id=a; fetched=%llu; expires=%llu\n%s", f, x, "mode: enforce\n");
  REFUSE("v=1; id=a; fetched=%llu; expires=%llu\n", f, x);
  REFUSE("v=1; id=a; fetched=99999999999999999999; expires=%llu\n%s", x,
         POLICY_A);
  REFUSE("v=1; id=a; fetched=%llu; expires=%llu; retry-id=b; "
         "retry-until=1; retry-failure=certificate-expired\n%s", f, x,
         POLICY_A);
  REFUSE("v=1; fetched=%llu; expires=%llu\n", f, x); /* negative, no retry */
  REFUSE("v=1; fetched=%llu; expires=%llu; retry-id=b; retry-until=%llu; "
         "retry-failure=sts-policy-invalid\n%s", f, x, x, POLICY_A);
  REFUSE("garbage");
  assert_entry_refused("", 0);
  /* Truncated anywhere: refused, never half-read. */
  struct buf b = entry_text("id1", T0, POLICY_A, NULL, 0, 0);
  size_t cut_ok = 0;
  for (size_t n = 0; n < buf_len(&b); n++) {
    struct sts_cache_entry e;
    const char *why;
    if (sts_cache_entry_parse(&e, buf_head(&b), n, &why) == 0) {
      /* Only a cut of the final LF still parses (the same policy). */
      cut_ok++;
      assert_int_equal(n, buf_len(&b) - 1);
      sts_cache_entry_clear(&e);
    }
  }
  assert_int_equal(cut_ok, 1);
  buf_free(&b);
#undef REFUSE
}

/* ------------------------------------------------------------------ */
/* Discovery                                                            */

struct run {
  struct sts_discovery d;
  int state;
};

/* Starts a discovery for example.org with a cache entry (NULL: none) and
 * the TXT records (lookup_failed, or n records). */
static void start(struct run *r, const struct buf *cache, bool lookup_failed,
                  const char *const *txt, size_t n, uint64_t now,
                  uint64_t backoff)
{
  size_t lens[4];
  for (size_t i = 0; i < n; i++)
    lens[i] = strlen(txt[i]);
  assert_int_equal(sts_discovery_init(&r->d, "Example.ORG.", backoff), 0);
  assert_int_equal(sts_discovery_next(&r->d, now), SMTPOUT_ERR_INVALID_STATE);
  assert_int_equal(sts_discovery_cache(&r->d, cache ? buf_head(cache) : NULL,
                                       cache ? buf_len(cache) : 0),
                   0);
  assert_int_equal(sts_discovery_txt(&r->d, lookup_failed, txt, lens, n), 0);
  r->state = sts_discovery_next(&r->d, now);
}

static void fetched(struct run *r, int outcome, int status, const char *ct,
                    const char *body, uint64_t now)
{
  assert_int_equal(r->state, STS_STATE_NEED_FETCH);
  r->state = sts_discovery_fetched(&r->d, outcome, status, ct,
                                   (const uint8_t *)body,
                                   body ? strlen(body) : 0, now);
  assert_int_equal(r->state, STS_STATE_DONE);
}

/* The entry the discovery asks the host to store (copied, with a NUL
 * after it that the length does not count). */
static struct buf put_of(const struct run *r)
{
  const uint8_t *data;
  size_t len;
  uint64_t expires;
  struct buf b = {0};
  assert_int_equal(sts_discovery_cache_put(&r->d, &data, &len, &expires), 1);
  assert_int_equal(buf_append(&b, data, len), 0);
  *buf_reserve(&b, 1) = '\0';
  return b;
}

static const char *TXT_ID1[] = {"v=STSv1; id=id1"};
static const char *TXT_ID2[] = {"v=STSv1; id=id2"};

static void test_same_id_uses_the_cache_without_fetching(void **state)
{
  (void)state;
  struct buf cache = entry_text("id1", T0, POLICY_A, NULL, 0, 0);
  struct run r;
  start(&r, &cache, false, TXT_ID1, 1, T0 + 3600 * SEC, 0);
  assert_int_equal(r.state, STS_STATE_DONE);
  assert_int_equal(sts_discovery_source(&r.d), STS_SOURCE_CACHE);
  assert_int_equal(smtpout_sts_policy_mode(sts_discovery_policy(&r.d)),
                   SMTPOUT_STS_MODE_ENFORCE);
  assert_string_equal(sts_discovery_policy_id(&r.d), "id1");
  assert_int_equal(sts_discovery_failure(&r.d), TLSRPT_NONE);
  const uint8_t *data;
  size_t len;
  uint64_t exp;
  assert_int_equal(sts_discovery_cache_put(&r.d, &data, &len, &exp), 0);
  /* Fetching now would be a bug in the caller. */
  assert_int_equal(sts_discovery_fetched(&r.d, STS_FETCH_OK, 200, "text/plain",
                                         NULL, 0, T0),
                   SMTPOUT_ERR_INVALID_STATE);
  sts_discovery_clear(&r.d);
  buf_free(&cache);
}

static void test_changed_id_fetches_and_replaces_the_policy(void **state)
{
  (void)state;
  struct buf cache = entry_text("id1", T0, POLICY_A, NULL, 0, 0);
  struct run r;
  uint64_t now = T0 + 3600 * SEC;
  start(&r, &cache, false, TXT_ID2, 1, now, 0);
  char url[300];
  assert_int_equal(sts_discovery_url(&r.d, url, sizeof(url)), 0);
  assert_string_equal(url, "https://mta-sts.example.org/.well-known/mta-sts.txt");
  fetched(&r, STS_FETCH_OK, 200, "text/plain; charset=utf-8", POLICY_B, now);
  assert_int_equal(sts_discovery_source(&r.d), STS_SOURCE_FETCHED);
  assert_int_equal(smtpout_sts_policy_mode(sts_discovery_policy(&r.d)),
                   SMTPOUT_STS_MODE_TESTING);
  assert_string_equal(sts_discovery_policy_id(&r.d), "id2");
  struct buf put = put_of(&r);
  struct buf want = entry_text("id2", now, POLICY_B, NULL, 0, 0);
  assert_int_equal(buf_len(&put), buf_len(&want));
  assert_memory_equal(buf_head(&put), buf_head(&want), buf_len(&want));
  const uint8_t *data;
  size_t len;
  uint64_t exp;
  sts_discovery_cache_put(&r.d, &data, &len, &exp);
  assert_true(exp == now + 600 * SEC);
  sts_discovery_clear(&r.d);
  buf_free(&put);
  buf_free(&want);
  buf_free(&cache);
}

/* id changed and the refetch fails, whatever the way: the cached policy
 * stays (Stalwart drops it here), the failure is reported. */
static void test_changed_id_and_failed_fetch_keep_the_cached_policy(void **state)
{
  (void)state;
  static const struct {
    int outcome, status;
    const char *ct, *body;
    int type;
  } fails[] = {
    {STS_FETCH_OK, 404, "text/plain", POLICY_B, TLSRPT_STS_POLICY_FETCH_ERROR},
    {STS_FETCH_OK, 301, "text/plain", "", TLSRPT_STS_POLICY_FETCH_ERROR},
    {STS_FETCH_OK, 200, "text/html", POLICY_B, TLSRPT_STS_POLICY_INVALID},
    {STS_FETCH_OK, 200, NULL, POLICY_B, TLSRPT_STS_POLICY_INVALID},
    {STS_FETCH_OK, 200, "text/plain", "garbage", TLSRPT_STS_POLICY_INVALID},
    {STS_FETCH_TLS_NOT_VERIFIED, 0, NULL, NULL, TLSRPT_STS_WEBPKI_INVALID},
    {STS_FETCH_CONNECT_FAILED, 0, NULL, NULL, TLSRPT_STS_POLICY_FETCH_ERROR},
    {STS_FETCH_TIMEOUT, 0, NULL, NULL, TLSRPT_STS_POLICY_FETCH_ERROR},
    {STS_FETCH_TOO_LARGE, 0, NULL, NULL, TLSRPT_STS_POLICY_FETCH_ERROR},
    {STS_FETCH_FAILED, 0, NULL, NULL, TLSRPT_STS_POLICY_FETCH_ERROR},
  };
  struct buf cache = entry_text("id1", T0, POLICY_A, NULL, 0, 0);
  uint64_t now = T0 + 3600 * SEC;
  for (size_t i = 0; i < sizeof(fails) / sizeof(fails[0]); i++) {
    struct run r;
    start(&r, &cache, false, TXT_ID2, 1, now, 0);
    fetched(&r, fails[i].outcome, fails[i].status, fails[i].ct, fails[i].body,
            now);
    assert_int_equal(sts_discovery_source(&r.d), STS_SOURCE_CACHE);
    assert_string_equal(sts_discovery_policy_id(&r.d), "id1");
    assert_int_equal(smtpout_sts_policy_mode(sts_discovery_policy(&r.d)),
                     SMTPOUT_STS_MODE_ENFORCE);
    if (sts_discovery_failure(&r.d) != fails[i].type)
      fail_msg("case %zu: failure %s, want %s", i,
               tlsrpt_type_name(sts_discovery_failure(&r.d)),
               tlsrpt_type_name(fails[i].type));
    assert_non_null(strstr(sts_discovery_reason(&r.d), "id1 applies"));
    /* No backoff: nothing to store, the next message tries again. */
    const uint8_t *data;
    size_t len;
    uint64_t exp;
    assert_int_equal(sts_discovery_cache_put(&r.d, &data, &len, &exp), 0);
    sts_discovery_clear(&r.d);
  }
  buf_free(&cache);
}

/* RFC 8461 sections 3.1 and 8.3: a record that disappears, breaks or
 * cannot be looked up does not end a cached, unexpired policy. */
static void test_txt_gone_keeps_enforcing_the_cached_policy(void **state)
{
  (void)state;
  struct buf cache = entry_text("id1", T0, POLICY_A, NULL, 0, 0);
  const char *two[] = {"v=STSv1; id=a", "v=STSv1; id=b"};
  uint64_t now = T0 + 86400 * SEC - 1; /* the last millisecond */
  struct run r;
  start(&r, &cache, false, NULL, 0, now, 0); /* NXDOMAIN or NODATA */
  assert_int_equal(r.state, STS_STATE_DONE);
  assert_int_equal(sts_discovery_source(&r.d), STS_SOURCE_CACHE);
  assert_non_null(strstr(sts_discovery_reason(&r.d), "no _mta-sts record"));
  sts_discovery_clear(&r.d);
  start(&r, &cache, false, two, 2, now, 0);
  assert_int_equal(sts_discovery_source(&r.d), STS_SOURCE_CACHE);
  sts_discovery_clear(&r.d);
  start(&r, &cache, true, NULL, 0, now, 0); /* SERVFAIL */
  assert_int_equal(r.state, STS_STATE_DONE);
  assert_int_equal(sts_discovery_source(&r.d), STS_SOURCE_CACHE);
  assert_int_equal(sts_discovery_failure(&r.d), TLSRPT_NONE);
  sts_discovery_clear(&r.d);
  /* Once expired, nothing is left. */
  start(&r, &cache, false, NULL, 0, T0 + 86400 * SEC, 0);
  assert_int_equal(r.state, STS_STATE_DONE);
  assert_int_equal(sts_discovery_source(&r.d), STS_SOURCE_NONE);
  assert_null(sts_discovery_policy(&r.d));
  sts_discovery_clear(&r.d);
  buf_free(&cache);
}

/* max_age ends a policy even when the id never changes. */
static void test_expiry_by_max_age_refetches_the_same_id(void **state)
{
  (void)state;
  struct buf cache = entry_text("id1", T0, POLICY_B, NULL, 0, 0); /* 600 s */
  struct run r;
  start(&r, &cache, false, TXT_ID1, 1, T0 + 600 * SEC - 1, 0);
  assert_int_equal(r.state, STS_STATE_DONE);
  sts_discovery_clear(&r.d);
  start(&r, &cache, false, TXT_ID1, 1, T0 + 600 * SEC, 0);
  assert_int_equal(r.state, STS_STATE_NEED_FETCH);
  fetched(&r, STS_FETCH_CONNECT_FAILED, 0, NULL, NULL, T0 + 600 * SEC);
  assert_int_equal(sts_discovery_source(&r.d), STS_SOURCE_NONE);
  assert_int_equal(sts_discovery_failure(&r.d), TLSRPT_STS_POLICY_FETCH_ERROR);
  sts_discovery_clear(&r.d);
  buf_free(&cache);
}

static void test_max_age_zero_applies_once(void **state)
{
  (void)state;
  struct run r;
  start(&r, NULL, false, TXT_ID1, 1, T0, 0);
  fetched(&r, STS_FETCH_OK, 200, "text/plain",
          "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 0", T0);
  assert_int_equal(sts_discovery_source(&r.d), STS_SOURCE_FETCHED);
  struct buf put = put_of(&r);
  sts_discovery_clear(&r.d);
  start(&r, &put, false, TXT_ID1, 1, T0, 0);
  assert_int_equal(r.state, STS_STATE_NEED_FETCH); /* already expired */
  sts_discovery_clear(&r.d);
  buf_free(&put);
}

static void test_without_cache(void **state)
{
  (void)state;
  struct run r;
  /* No record, no cache: no policy, nothing fetched, nothing reported. */
  start(&r, NULL, false, NULL, 0, T0, 0);
  assert_int_equal(r.state, STS_STATE_DONE);
  assert_int_equal(sts_discovery_source(&r.d), STS_SOURCE_NONE);
  assert_int_equal(sts_discovery_failure(&r.d), TLSRPT_NONE);
  sts_discovery_clear(&r.d);
  /* Lookup failure on first contact: proceed without (wave2 §10). */
  start(&r, NULL, true, NULL, 0, T0, 0);
  assert_int_equal(r.state, STS_STATE_DONE);
  assert_int_equal(sts_discovery_source(&r.d), STS_SOURCE_NONE);
  assert_int_equal(sts_discovery_failure(&r.d), TLSRPT_NONE);
  assert_non_null(strstr(sts_discovery_reason(&r.d), "lookup failed"));
  sts_discovery_clear(&r.d);
  /* A record and a failing fetch: no policy, reported. */
  start(&r, NULL, false, TXT_ID1, 1, T0, 0);
  fetched(&r, STS_FETCH_OK, 200, "text/plain", "version: STSv1\n", T0);
  assert_int_equal(sts_discovery_source(&r.d), STS_SOURCE_NONE);
  assert_int_equal(sts_discovery_failure(&r.d), TLSRPT_STS_POLICY_INVALID);
  assert_non_null(strstr(sts_discovery_reason(&r.d), "no policy applies"));
  sts_discovery_clear(&r.d);
}

static void test_corrupt_cache_entry_is_a_miss(void **state)
{
  (void)state;
  struct buf cache = entry_text("id1", T0, POLICY_A, NULL, 0, 0);
  cache.data[cache.end - 5] = 'X'; /* "max_age: 864X0" */
  struct run r;
  start(&r, &cache, false, TXT_ID1, 1, T0 + SEC, 0);
  assert_int_equal(r.state, STS_STATE_NEED_FETCH);
  fetched(&r, STS_FETCH_OK, 200, "text/plain", POLICY_A, T0 + SEC);
  assert_int_equal(sts_discovery_source(&r.d), STS_SOURCE_FETCHED);
  assert_non_null(strstr(sts_discovery_reason(&r.d), "cache entry ignored"));
  sts_discovery_clear(&r.d);
  buf_free(&cache);
}

/* A failing policy host is not fetched for every message: the failed id
 * is remembered for the backoff, and each message meanwhile is reported
 * with the same failure. */
static void test_backoff_after_a_failed_fetch(void **state)
{
  (void)state;
  const uint64_t backoff = 300 * SEC;
  struct buf cache = entry_text("id1", T0, POLICY_A, NULL, 0, 0);
  struct run r;
  uint64_t now = T0 + 60 * SEC;
  start(&r, &cache, false, TXT_ID2, 1, now, backoff);
  fetched(&r, STS_FETCH_TLS_NOT_VERIFIED, 0, NULL, NULL, now);
  assert_int_equal(sts_discovery_source(&r.d), STS_SOURCE_CACHE);
  struct buf put = put_of(&r);
  sts_discovery_clear(&r.d);

  /* Within the backoff: no fetch, the cached policy, the same failure. */
  start(&r, &put, false, TXT_ID2, 1, now + backoff - 1, backoff);
  assert_int_equal(r.state, STS_STATE_DONE);
  assert_int_equal(sts_discovery_source(&r.d), STS_SOURCE_CACHE);
  assert_string_equal(sts_discovery_policy_id(&r.d), "id1");
  assert_int_equal(sts_discovery_failure(&r.d), TLSRPT_STS_WEBPKI_INVALID);
  sts_discovery_clear(&r.d);
  /* The old id still applies without a fetch. */
  start(&r, &put, false, TXT_ID1, 1, now + 1, backoff);
  assert_int_equal(r.state, STS_STATE_DONE);
  assert_int_equal(sts_discovery_failure(&r.d), TLSRPT_NONE);
  sts_discovery_clear(&r.d);
  /* A third id is fetched at once. */
  const char *id3[] = {"v=STSv1; id=id3"};
  start(&r, &put, false, id3, 1, now + 1, backoff);
  assert_int_equal(r.state, STS_STATE_NEED_FETCH);
  sts_discovery_clear(&r.d);
  /* After the backoff: fetched again, and this time it works. */
  start(&r, &put, false, TXT_ID2, 1, now + backoff, backoff);
  assert_int_equal(r.state, STS_STATE_NEED_FETCH);
  fetched(&r, STS_FETCH_OK, 200, "text/plain", POLICY_B, now + backoff);
  assert_int_equal(sts_discovery_source(&r.d), STS_SOURCE_FETCHED);
  struct buf fresh = put_of(&r);
  assert_null(strstr((const char *)buf_head(&fresh), "retry"));
  sts_discovery_clear(&r.d);
  buf_free(&fresh);
  buf_free(&put);

  /* No policy to fall back on: a negative entry. */
  start(&r, NULL, false, TXT_ID1, 1, T0, backoff);
  fetched(&r, STS_FETCH_TIMEOUT, 0, NULL, NULL, T0);
  put = put_of(&r);
  const uint8_t *data;
  size_t len;
  uint64_t exp;
  sts_discovery_cache_put(&r.d, &data, &len, &exp);
  assert_true(exp == T0 + backoff);
  sts_discovery_clear(&r.d);
  start(&r, &put, false, TXT_ID1, 1, T0 + 1, backoff);
  assert_int_equal(r.state, STS_STATE_DONE);
  assert_int_equal(sts_discovery_source(&r.d), STS_SOURCE_NONE);
  assert_int_equal(sts_discovery_failure(&r.d), TLSRPT_STS_POLICY_FETCH_ERROR);
  sts_discovery_clear(&r.d);
  buf_free(&put);
  buf_free(&cache);
}

static void test_discovery_misuse(void **state)
{
  (void)state;
  struct sts_discovery d;
  assert_int_equal(sts_discovery_init(&d, "bad_name", 0), SMTPOUT_ERR_BAD_NAME);
  sts_discovery_clear(&d);
  assert_int_equal(sts_discovery_init(&d, "example.org", 0), 0);
  assert_int_equal(sts_discovery_cache(&d, NULL, 0), 0);
  assert_int_equal(sts_discovery_cache(&d, NULL, 0),
                   SMTPOUT_ERR_INVALID_STATE);
  assert_int_equal(sts_discovery_fetched(&d, STS_FETCH_OK, 200, "text/plain",
                                         NULL, 0, T0),
                   SMTPOUT_ERR_INVALID_STATE);
  assert_int_equal(sts_discovery_txt(&d, false, TXT_ID1,
                                     (const size_t[]){15}, 1),
                   0);
  assert_int_equal(sts_discovery_next(&d, T0), STS_STATE_NEED_FETCH);
  assert_int_equal(sts_discovery_next(&d, T0), STS_STATE_NEED_FETCH);
  assert_null(sts_discovery_policy(&d));
  assert_int_equal(sts_discovery_fetched(&d, 99, 200, "text/plain", NULL, 0,
                                         T0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  sts_discovery_clear(&d);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_policy_vectors_from_postfix_mta_sts_resolver),
    cmocka_unit_test(test_policy_lines_end_in_lf_or_crlf),
    cmocka_unit_test(test_policy_blank_lines_and_stray_cr_are_refused),
    cmocka_unit_test(test_policy_unknown_keys_are_ignored_when_well_formed),
    cmocka_unit_test(test_policy_first_of_a_repeated_key_counts),
    cmocka_unit_test(test_policy_keys_and_values_are_case_sensitive),
    cmocka_unit_test(test_policy_white_space_around_values),
    cmocka_unit_test(test_policy_max_age_is_1_to_10_digits_up_to_a_year),
    cmocka_unit_test(test_policy_mx_patterns),
    cmocka_unit_test(test_policy_larger_than_64_kib_is_refused),
    cmocka_unit_test(test_policy_parse_arguments),
    cmocka_unit_test(test_mx_matching),
    cmocka_unit_test(test_txt_record_syntax),
    cmocka_unit_test(test_txt_record_selection),
    cmocka_unit_test(test_content_type_must_be_text_plain),
    cmocka_unit_test(test_cache_entry_round_trip),
    cmocka_unit_test(test_corrupt_cache_entries_are_refused),
    cmocka_unit_test(test_same_id_uses_the_cache_without_fetching),
    cmocka_unit_test(test_changed_id_fetches_and_replaces_the_policy),
    cmocka_unit_test(test_changed_id_and_failed_fetch_keep_the_cached_policy),
    cmocka_unit_test(test_txt_gone_keeps_enforcing_the_cached_policy),
    cmocka_unit_test(test_expiry_by_max_age_refetches_the_same_id),
    cmocka_unit_test(test_max_age_zero_applies_once),
    cmocka_unit_test(test_without_cache),
    cmocka_unit_test(test_corrupt_cache_entry_is_a_miss),
    cmocka_unit_test(test_backoff_after_a_failed_fetch),
    cmocka_unit_test(test_discovery_misuse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
