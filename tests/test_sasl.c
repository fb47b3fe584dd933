/*
 * test_sasl.c — the SMTP AUTH client (lib/sasl.c): base64, mechanism
 * choice, the PLAIN/LOGIN/XOAUTH2 encodings against their published
 * examples, SCRAM-SHA-256(-PLUS) against a reference server checked on
 * RFC 7677's example, and what a hostile server can send: bad base64,
 * over-long challenges, iteration counts, forged signatures, early 235s.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64_int.h"
#include "plan.h"
#include "sasl_int.h"
#include "scram_ref.h"
#include "smtpout/common.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                            */

static struct sasl_client *client(enum sasl_mech mech, const char *user,
                                  const char *secret)
{
  struct sasl_params p = {.mech = mech, .username = user, .secret = secret};
  struct sasl_client *c = NULL;
  assert_int_equal(sasl_client_new(&c, &p), 0);
  return c;
}

static void expect_line(const uint8_t *line, size_t len, const char *want)
{
  if (len != strlen(want) || memcmp(line, want, len) != 0)
    fail_msg("line \"%.*s\", expected \"%s\"", (int)len, (const char *)line,
             want);
}

/* The response line for the base64 of `raw`. */
static void expect_b64_line(const uint8_t *line, size_t len, const char *raw)
{
  char want[4096];
  size_t n = base64_encode((const uint8_t *)raw, strlen(raw), want);
  memcpy(want + n, "\r\n", 3);
  expect_line(line, len, want);
}

/* Steps with the base64 of `raw`. */
static int step_raw(struct sasl_client *c, const char *raw, size_t rawlen,
                    const uint8_t **line, size_t *len)
{
  static char b64[8192];
  size_t n = base64_encode((const uint8_t *)raw, rawlen, b64);
  return sasl_client_step(c, b64, n, line, len);
}

static int step_str(struct sasl_client *c, const char *raw,
                    const uint8_t **line, size_t *len)
{
  return step_raw(c, raw, strlen(raw), line, len);
}

/* Decodes a response line (or the argument of an AUTH line) into `out`
 * as a NUL-terminated string. */
static void decode_line(const uint8_t *line, size_t len, char *out,
                        size_t cap)
{
  const char *t = (const char *)line;
  assert_true(len >= 2 && t[len - 2] == '\r' && t[len - 1] == '\n');
  len -= 2;
  if (len > 5 && strncmp(t, "AUTH ", 5) == 0) {
    const char *sp = memchr(t + 5, ' ', len - 5);
    assert_non_null(sp);
    len -= (size_t)(sp + 1 - t);
    t = sp + 1;
  }
  assert_true(base64_decoded_max(len) < cap);
  long n = base64_decode(t, len, (uint8_t *)out);
  assert_true(n >= 0);
  out[n] = '\0';
}

/* Whether `needle` occurs in the `n` bytes at `hay`. */
static int has_bytes(const uint8_t *hay, size_t n, const char *needle)
{
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++)
    if (memcmp(hay + i, needle, k) == 0)
      return 1;
  return 0;
}

static void expect_cancel(int rv, const uint8_t *line, size_t len)
{
  assert_int_equal(rv, ERR_PROTOCOL);
  expect_line(line, len, "*\r\n");
}

/* Evaluates `call` (which sets the local `line` and `len`) first. */
#define EXPECT_CANCEL(call)                                     \
  do {                                                          \
    int rv_ = (call);                                           \
    expect_cancel(rv_, line, len);                              \
  } while (0)

static void expect_error_mentions(const struct sasl_client *c,
                                  const char *what)
{
  if (!strstr(sasl_client_error(c), what))
    fail_msg("error \"%s\" does not mention \"%s\"", sasl_client_error(c),
             what);
}

/* ------------------------------------------------------------------ */
/* base64                                                             */

static void test_base64_matches_rfc4648_vectors(void **state)
{
  (void)state;
  static const char *const v[][2] = {
    {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    char enc[16];
    uint8_t dec[16];
    size_t n = base64_encode((const uint8_t *)v[i][0], strlen(v[i][0]), enc);
    assert_int_equal(n, strlen(v[i][1]));
    assert_memory_equal(enc, v[i][1], n);
    long d = base64_decode(v[i][1], strlen(v[i][1]), dec);
    assert_int_equal(d, (long)strlen(v[i][0]));
    assert_memory_equal(dec, v[i][0], (size_t)d);
  }
}

static void test_base64_refuses_non_canonical_text(void **state)
{
  (void)state;
  static const char *const bad[] = {
    "Zg=", "Zg", "Zh==", "Zm9=", "Zm9v\r\n", "Zm 9v", "Zg==Zg==", "=Zg=",
    "Zm=v", "Z===", "====", "Zm9v!A==", "Zm9-", "Zm9_",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    uint8_t dec[16];
    if (base64_decode(bad[i], strlen(bad[i]), dec) != -1)
      fail_msg("\"%s\" was accepted", bad[i]);
  }
}

/* ------------------------------------------------------------------ */
/* Mechanism names and choice                                         */

static void test_mechanism_names_are_case_insensitive(void **state)
{
  (void)state;
  assert_int_equal(sasl_mech_lookup("plain", 5), SASL_MECH_PLAIN);
  assert_int_equal(sasl_mech_lookup("Scram-Sha-256-Plus", 18),
                   SASL_MECH_SCRAM_SHA_256_PLUS);
  assert_int_equal(sasl_mech_lookup("PLAINX", 6), SASL_MECH_NONE);
  assert_int_equal(sasl_mech_lookup("PLAI", 4), SASL_MECH_NONE);
  assert_string_equal(sasl_mech_name(SASL_MECH_XOAUTH2), "XOAUTH2");
  assert_null(sasl_mech_name(SASL_MECH_NONE));
  assert_null(sasl_mech_name((enum sasl_mech)99));
}

static void test_choice_is_never_a_mechanism_the_server_did_not_offer(
    void **state)
{
  (void)state;
  static const enum sasl_mech plain[] = {SASL_MECH_PLAIN};
  static const enum sasl_mech scram[] = {SASL_MECH_SCRAM_SHA_256};
  const char *o = "LOGIN";
  assert_int_equal(sasl_choose(o, strlen(o), plain, 1, 0), SASL_MECH_NONE);
  /* Words are compared whole: PLAINX is not PLAIN, and -PLUS is not the
   * plain SCRAM. */
  o = "PLAINX LOGIN-X CRAM-MD5";
  assert_int_equal(sasl_choose(o, strlen(o), NULL, 0, 1), SASL_MECH_NONE);
  o = "SCRAM-SHA-256-PLUS";
  assert_int_equal(sasl_choose(o, strlen(o), scram, 1, 1), SASL_MECH_NONE);
  /* XOAUTH2 takes a token: never chosen unless configured. */
  o = "XOAUTH2";
  assert_int_equal(sasl_choose(o, strlen(o), NULL, 0, 0), SASL_MECH_NONE);
  assert_int_equal(sasl_choose("", 0, NULL, 0, 1), SASL_MECH_NONE);
  assert_int_equal(sasl_choose(NULL, 0, NULL, 0, 1), SASL_MECH_NONE);
}

static void test_default_choice_is_the_strongest_offered(void **state)
{
  (void)state;
  int scram = sasl_mech_built(SASL_MECH_SCRAM_SHA_256);
  const char *o = "LOGIN PLAIN";
  assert_int_equal(sasl_choose(o, strlen(o), NULL, 0, 0), SASL_MECH_PLAIN);
  /* The pre-standard "AUTH=LOGIN PLAIN" form and odd case. */
  o = "=login";
  assert_int_equal(sasl_choose(o, strlen(o), NULL, 0, 0), SASL_MECH_LOGIN);
  o = "PLAIN LOGIN SCRAM-SHA-256 SCRAM-SHA-256-PLUS";
  assert_int_equal(sasl_choose(o, strlen(o), NULL, 0, 0),
                   scram ? SASL_MECH_SCRAM_SHA_256 : SASL_MECH_PLAIN);
  /* -PLUS only with channel binding data. */
  assert_int_equal(sasl_choose(o, strlen(o), NULL, 0, 1),
                   scram ? SASL_MECH_SCRAM_SHA_256_PLUS : SASL_MECH_PLAIN);
}

static void test_configured_order_is_the_preference(void **state)
{
  (void)state;
  static const enum sasl_mech prefs[] = {SASL_MECH_LOGIN, SASL_MECH_PLAIN};
  const char *o = "PLAIN LOGIN";
  assert_int_equal(sasl_choose(o, strlen(o), prefs, 2, 0), SASL_MECH_LOGIN);
  o = "PLAIN";
  assert_int_equal(sasl_choose(o, strlen(o), prefs, 2, 0), SASL_MECH_PLAIN);
}

static void test_mechanism_list_errors_name_the_word(void **state)
{
  (void)state;
  enum sasl_mech out[SASL_MECH_COUNT];
  char err[256];
  assert_int_equal(sasl_mech_list_parse("plain, LOGIN  XOAUTH2", out,
                                        SASL_MECH_COUNT, err, sizeof(err)),
                   3);
  assert_int_equal(out[0], SASL_MECH_PLAIN);
  assert_int_equal(out[1], SASL_MECH_LOGIN);
  assert_int_equal(out[2], SASL_MECH_XOAUTH2);
  assert_int_equal(sasl_mech_list_parse("PLAIN CRAM-MD5", out,
                                        SASL_MECH_COUNT, err, sizeof(err)),
                   SMTPOUT_ERR_CONFIG);
  assert_non_null(strstr(err, "\"CRAM-MD5\""));
  assert_int_equal(sasl_mech_list_parse("PLAIN plain", out, SASL_MECH_COUNT,
                                        err, sizeof(err)),
                   SMTPOUT_ERR_CONFIG);
  assert_non_null(strstr(err, "twice"));
  assert_int_equal(sasl_mech_list_parse(" , ", out, SASL_MECH_COUNT, err,
                                        sizeof(err)),
                   SMTPOUT_ERR_CONFIG);
  assert_non_null(strstr(err, "empty"));
  assert_int_equal(sasl_mech_list_parse("PLAIN LOGIN", out, 1, err,
                                        sizeof(err)),
                   SMTPOUT_ERR_CONFIG);
  if (!sasl_mech_built(SASL_MECH_SCRAM_SHA_256)) {
    assert_int_equal(sasl_mech_list_parse("SCRAM-SHA-256", out,
                                          SASL_MECH_COUNT, err, sizeof(err)),
                     SMTPOUT_ERR_CONFIG);
    assert_non_null(strstr(err, "GNU SASL"));
  }
  enum sasl_mech def[SASL_MECH_COUNT];
  size_t n = sasl_mech_default_list(def, SASL_MECH_COUNT);
  assert_int_equal(def[n - 1], SASL_MECH_LOGIN);
  assert_int_equal(def[n - 2], SASL_MECH_PLAIN);
}

/* ------------------------------------------------------------------ */
/* Parameters                                                         */

static void test_new_refuses_what_a_mechanism_cannot_carry(void **state)
{
  (void)state;
  struct sasl_client *c = (struct sasl_client *)1;
  char big[SASL_SECRET_MAX + 2];
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  static const uint8_t cb[32] = {1};
  struct sasl_params bad[] = {
    {.mech = SASL_MECH_NONE, .username = "u", .secret = "s"},
    {.mech = (enum sasl_mech)42, .username = "u", .secret = "s"},
    {.mech = SASL_MECH_PLAIN, .username = "", .secret = "s"},
    {.mech = SASL_MECH_PLAIN, .username = "u", .secret = ""},
    {.mech = SASL_MECH_PLAIN, .username = "u", .secret = NULL},
    {.mech = SASL_MECH_PLAIN, .username = "u", .secret = big},
    {.mech = SASL_MECH_XOAUTH2, .username = "u\x01", .secret = "tok"},
    {.mech = SASL_MECH_XOAUTH2, .username = "u", .secret = "to ken"},
    {.mech = SASL_MECH_XOAUTH2, .username = "u", .secret = "tok\x01"},
    {.mech = SASL_MECH_SCRAM_SHA_256_PLUS, .username = "u", .secret = "s"},
    {.mech = SASL_MECH_PLAIN, .username = "u", .secret = "s",
     .cb_type = SASL_CB_TLS_EXPORTER, .cb_data = cb, .cb_len = 65},
    {.mech = SASL_MECH_PLAIN, .username = "u", .secret = "s",
     .cb_type = (enum sasl_cb_type)7, .cb_data = cb, .cb_len = 32},
    {.mech = SASL_MECH_PLAIN, .username = "u", .secret = "s",
     .scram_iter_min = 10, .scram_iter_max = 5},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rv = sasl_client_new(&c, &bad[i]);
    if (rv != SMTPOUT_ERR_INVALID_ARGUMENT &&
        !(rv == SMTPOUT_ERR_CONFIG &&
          !sasl_mech_built(SASL_MECH_SCRAM_SHA_256)))
      fail_msg("case %zu: %d", i, rv);
    assert_null(c);
  }
  assert_int_equal(sasl_client_new(&c, NULL), SMTPOUT_ERR_INVALID_ARGUMENT);
  sasl_client_free(NULL);
}

/* ------------------------------------------------------------------ */
/* PLAIN                                                              */

static void test_plain_sends_rfc4616_response_with_empty_authzid(
    void **state)
{
  (void)state;
  /* RFC 4616 section 4's example, without its authzid. */
  struct sasl_client *c = client(SASL_MECH_PLAIN, "tim", "tanstaaftanstaaf");
  const uint8_t *line;
  size_t len;
  assert_int_equal(sasl_client_start(c, &line, &len), 0);
  expect_line(line, len, "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n");
  assert_int_equal(sasl_client_start(c, &line, &len),
                   SMTPOUT_ERR_INVALID_STATE);
  assert_int_equal(sasl_client_success(c), 0);
  assert_string_equal(sasl_client_error(c), "");
  sasl_client_free(c);
}

static void test_plain_refuses_a_challenge_after_its_response(void **state)
{
  (void)state;
  struct sasl_client *c = client(SASL_MECH_PLAIN, "tim", "tanstaaf");
  const uint8_t *line;
  size_t len;
  assert_int_equal(sasl_client_start(c, &line, &len), 0);
  EXPECT_CANCEL(sasl_client_step(c, "", 0, &line, &len));
  /* Once failed, nothing more, and a 235 is not believed. */
  assert_int_equal(sasl_client_step(c, "", 0, &line, &len),
                   SMTPOUT_ERR_INVALID_STATE);
  expect_line(line, len, "*\r\n");
  assert_int_equal(sasl_client_success(c), ERR_PROTOCOL);
  sasl_client_free(c);
}

static void test_long_initial_response_waits_for_the_empty_challenge(
    void **state)
{
  (void)state;
  /* 600 bytes of password: the AUTH line would pass 512 octets. */
  char pw[601];
  memset(pw, 'p', 600);
  pw[600] = '\0';
  struct sasl_client *c = client(SASL_MECH_PLAIN, "tim", pw);
  const uint8_t *line;
  size_t len;
  assert_int_equal(sasl_client_start(c, &line, &len), 0);
  expect_line(line, len, "AUTH PLAIN\r\n");
  /* A 235 now would come before the credentials were sent. */
  struct sasl_client *early = client(SASL_MECH_PLAIN, "tim", pw);
  assert_int_equal(sasl_client_start(early, &line, &len), 0);
  assert_int_equal(sasl_client_success(early), ERR_PROTOCOL);
  sasl_client_free(early);

  assert_int_equal(sasl_client_step(c, "", 0, &line, &len), 0);
  char raw[700], dec[700];
  raw[0] = '\0';
  memcpy(raw + 1, "tim", 4);
  memcpy(raw + 5, pw, 601);
  decode_line(line, len, dec, sizeof(dec));
  assert_memory_equal(dec, raw, 605);
  assert_true(len <= SASL_LINE_MAX);
  assert_int_equal(sasl_client_success(c), 0);
  sasl_client_free(c);

  /* A non-empty challenge where the server should ask for the initial
   * response is refused. */
  c = client(SASL_MECH_PLAIN, "tim", pw);
  assert_int_equal(sasl_client_start(c, &line, &len), 0);
  EXPECT_CANCEL(step_str(c, "hello", &line, &len));
  sasl_client_free(c);
}

/* ------------------------------------------------------------------ */
/* LOGIN                                                              */

static void test_login_answers_in_order_whatever_the_prompt(void **state)
{
  (void)state;
  struct sasl_client *c = client(SASL_MECH_LOGIN, "tim", "tanstaaf");
  const uint8_t *line;
  size_t len;
  assert_int_equal(sasl_client_start(c, &line, &len), 0);
  expect_line(line, len, "AUTH LOGIN\r\n");
  /* Prompts in another language, then an empty one: not read. */
  assert_int_equal(step_str(c, "Benutzername:", &line, &len), 0);
  expect_b64_line(line, len, "tim");
  assert_int_equal(sasl_client_step(c, "", 0, &line, &len), 0);
  expect_b64_line(line, len, "tanstaaf");
  assert_int_equal(sasl_client_success(c), 0);
  sasl_client_free(c);

  /* The usual prompts; a third challenge is refused. */
  c = client(SASL_MECH_LOGIN, "tim", "tanstaaf");
  assert_int_equal(sasl_client_start(c, &line, &len), 0);
  assert_int_equal(sasl_client_step(c, "VXNlcm5hbWU6", 12, &line, &len), 0);
  expect_line(line, len, "dGlt\r\n");
  assert_int_equal(sasl_client_step(c, "UGFzc3dvcmQ6", 12, &line, &len), 0);
  expect_line(line, len, "dGFuc3RhYWY=\r\n");
  EXPECT_CANCEL(sasl_client_step(c, "UGFzc3dvcmQ6", 12, &line, &len));
  sasl_client_free(c);
}

static void test_login_success_before_the_password_is_refused(void **state)
{
  (void)state;
  struct sasl_client *c = client(SASL_MECH_LOGIN, "tim", "tanstaaf");
  const uint8_t *line;
  size_t len;
  assert_int_equal(sasl_client_start(c, &line, &len), 0);
  assert_int_equal(sasl_client_success(c), ERR_PROTOCOL);
  sasl_client_free(c);
  c = client(SASL_MECH_LOGIN, "tim", "tanstaaf");
  assert_int_equal(sasl_client_start(c, &line, &len), 0);
  assert_int_equal(step_str(c, "Username:", &line, &len), 0);
  assert_int_equal(sasl_client_success(c), ERR_PROTOCOL);
  expect_error_mentions(c, "before the exchange ended");
  sasl_client_free(c);
}

/* ------------------------------------------------------------------ */
/* XOAUTH2                                                            */

static const char google_token[] = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg";

static void test_xoauth2_matches_the_published_example(void **state)
{
  (void)state;
  /* Google's XOAUTH2 protocol page: user=someuser@example.com, this
   * token, and the base64 it gives. */
  struct sasl_client *c =
      client(SASL_MECH_XOAUTH2, "someuser@example.com", google_token);
  const uint8_t *line;
  size_t len;
  assert_int_equal(sasl_client_start(c, &line, &len), 0);
  expect_line(line, len,
              "AUTH XOAUTH2 dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJl"
              "ciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0"
              "Q2cBAQ==\r\n");
  assert_int_equal(sasl_client_success(c), 0);
  sasl_client_free(c);
}

static void test_xoauth2_error_is_answered_with_an_empty_line(void **state)
{
  (void)state;
  struct sasl_client *c =
      client(SASL_MECH_XOAUTH2, "someuser@example.com", google_token);
  const uint8_t *line;
  size_t len;
  assert_int_equal(sasl_client_start(c, &line, &len), 0);
  const char *json = "{\"status\":\"401\",\"schemes\":\"bearer\","
                     "\"scope\":\"https://mail.google.com/\"}";
  assert_int_equal(step_str(c, json, &line, &len), 0);
  expect_line(line, len, "\r\n");
  assert_string_equal(sasl_client_server_error(c), json);
  /* The server's 535 follows; another challenge is refused. */
  EXPECT_CANCEL(step_str(c, json, &line, &len));
  sasl_client_free(c);
}

static void test_server_text_echoing_the_secret_is_withheld(void **state)
{
  (void)state;
  struct sasl_client *c =
      client(SASL_MECH_XOAUTH2, "someuser@example.com", google_token);
  const uint8_t *line;
  size_t len;
  assert_int_equal(sasl_client_start(c, &line, &len), 0);
  char json[256];
  snprintf(json, sizeof(json), "{\"status\":\"401\",\"token\":\"%s\"}",
           google_token);
  assert_int_equal(step_str(c, json, &line, &len), 0);
  assert_null(strstr(sasl_client_server_error(c), google_token));
  assert_non_null(strstr(sasl_client_server_error(c), "withheld"));
  sasl_client_free(c);
}

/* ------------------------------------------------------------------ */
/* Hostile challenges, every mechanism                                */

static void test_bad_base64_challenge_cancels(void **state)
{
  (void)state;
  static const char *const bad[] = {"VXNlcm5hbWU6=", "VXNlc m5hbWU6",
                                    "VXNlcm5hbWU", "VXNlcm5hbWU6\r",
                                    "334 VXNlcm5hbWU6"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct sasl_client *c = client(SASL_MECH_LOGIN, "tim", "tanstaaf");
    const uint8_t *line;
    size_t len;
    assert_int_equal(sasl_client_start(c, &line, &len), 0);
    EXPECT_CANCEL(sasl_client_step(c, bad[i], strlen(bad[i]), &line, &len));
    expect_error_mentions(c, "base64");
    sasl_client_free(c);
  }
}

static void test_over_long_challenge_cancels(void **state)
{
  (void)state;
  char raw[SASL_CHALLENGE_MAX + 2];
  memset(raw, 'x', sizeof(raw));
  const uint8_t *line;
  size_t len;
  /* Exactly the limit is a prompt like any other. */
  struct sasl_client *c = client(SASL_MECH_LOGIN, "tim", "tanstaaf");
  assert_int_equal(sasl_client_start(c, &line, &len), 0);
  assert_int_equal(step_raw(c, raw, SASL_CHALLENGE_MAX, &line, &len), 0);
  sasl_client_free(c);
  /* One or two octets over: refused after decoding. */
  for (size_t extra = 1; extra <= 2; extra++) {
    c = client(SASL_MECH_LOGIN, "tim", "tanstaaf");
    assert_int_equal(sasl_client_start(c, &line, &len), 0);
    EXPECT_CANCEL(step_raw(c, raw, SASL_CHALLENGE_MAX + extra, &line, &len));
    expect_error_mentions(c, "over the limit");
    sasl_client_free(c);
  }
  /* Far over: refused before decoding, whatever the text. */
  static char huge[100000];
  memset(huge, '!', sizeof(huge));
  c = client(SASL_MECH_LOGIN, "tim", "tanstaaf");
  assert_int_equal(sasl_client_start(c, &line, &len), 0);
  EXPECT_CANCEL(sasl_client_step(c, huge, sizeof(huge), &line, &len));
  expect_error_mentions(c, "over the limit");
  sasl_client_free(c);
}

static void test_step_outside_the_exchange_is_invalid_state(void **state)
{
  (void)state;
  struct sasl_client *c = client(SASL_MECH_LOGIN, "tim", "tanstaaf");
  const uint8_t *line;
  size_t len;
  assert_int_equal(sasl_client_step(c, "", 0, &line, &len),
                   SMTPOUT_ERR_INVALID_STATE);
  expect_line(line, len, "*\r\n");
  assert_int_equal(sasl_client_step(NULL, "", 0, &line, &len),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(sasl_client_step(c, NULL, 4, &line, &len),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  sasl_client_free(c);
}

/* Every error any mechanism reports for a batch of hostile challenges
 * is free of the secret and of its base64. */
static void test_errors_never_contain_the_secret(void **state)
{
  (void)state;
  const char *secret = "Sekr1t-Pencil";
  static const char *const hostile[] = {
    "", "Sekr1t-Pencil", "e=Sekr1t-Pencil", "r=x,s=QUJD,i=9999999999",
    "r=x,s=QUJD,i=4096", "m=Sekr1t-Pencil,r=x", "v=AAAA",
    "{\"status\":\"Sekr1t-Pencil\"}", "\x01\x02\x03",
  };
  for (int m = 1; m < SASL_MECH_COUNT; m++) {
    if (!sasl_mech_built((enum sasl_mech)m))
      continue;
    for (size_t h = 0; h < sizeof(hostile) / sizeof(hostile[0]); h++) {
      static const uint8_t cb[32] = {7};
      struct sasl_params p = {.mech = (enum sasl_mech)m, .username = "tim",
                              .secret = secret,
                              .cb_type = SASL_CB_TLS_EXPORTER,
                              .cb_data = cb, .cb_len = 32};
      struct sasl_client *c;
      assert_int_equal(sasl_client_new(&c, &p), 0);
      const uint8_t *line;
      size_t len;
      assert_int_equal(sasl_client_start(c, &line, &len), 0);
      for (int round = 0; round < 4; round++) {
        step_str(c, hostile[h], &line, &len);
        /* A line either cancels, is empty or is base64: never the
         * secret in clear. */
        assert_false(has_bytes(line, len, secret));
      }
      sasl_client_success(c);
      assert_null(strstr(sasl_client_error(c), secret));
      assert_null(strstr(sasl_client_error(c), "U2VrcjF0LVBlbmNpbA"));
      assert_null(strstr(sasl_client_server_error(c), secret));
      sasl_client_free(c);
    }
  }
}

static void test_redaction_hides_credentials_in_traces(void **state)
{
  (void)state;
  char out[64];
  static const char *const cases[][2] = {
    {"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n", "AUTH PLAIN ****"},
    {"auth xoauth2 dXNlcj1zb21l", "AUTH xoauth2 ****"},
    {"AUTH LOGIN\r\n", "AUTH LOGIN"},
    {"AUTH SCRAM-SHA-256 =\r\n", "AUTH SCRAM-SHA-256 ****"},
    {"dGFuc3RhYWY=\r\n", "****"},
    {"\r\n", ""},
    {"*\r\n", "*"},
    {"AUTH\r\n", "****"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    size_t n = sasl_redact((const uint8_t *)cases[i][0],
                           strlen(cases[i][0]), out, sizeof(out));
    assert_string_equal(out, cases[i][1]);
    assert_int_equal(n, strlen(cases[i][1]));
  }
  /* Truncated to fit, still NUL-terminated. */
  assert_int_equal(sasl_redact((const uint8_t *)"AUTH PLAIN x", 12, out, 8),
                   7);
  assert_string_equal(out, "AUTH PL");
}

/* ------------------------------------------------------------------ */
/* SCRAM-SHA-256                                                      */

#define SKIP_WITHOUT_SCRAM()                                    \
  do {                                                          \
    if (!sasl_mech_built(SASL_MECH_SCRAM_SHA_256))              \
      skip();                                                   \
  } while (0)

/* RFC 7677 section 3. */
static const char rfc_salt64[] = "W22ZaJ0SNY7soEsUEjb6gQ==";
static const char rfc_server_nonce[] = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

static void test_reference_server_reproduces_rfc7677_example(void **state)
{
  (void)state;
  uint8_t salt[16], proof[32], sig[32];
  assert_int_equal(base64_decode(rfc_salt64, strlen(rfc_salt64), salt), 16);
  const char *am =
      "n=user,r=rOprNGfwEbeRWgbNEkqO,"
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
      "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  assert_int_equal(scram_ref_signatures("pencil", salt, 16, 4096, am, proof,
                                        sig), 0);
  char b64[64];
  b64[base64_encode(proof, 32, b64)] = '\0';
  assert_string_equal(b64, "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  b64[base64_encode(sig, 32, b64)] = '\0';
  assert_string_equal(b64, "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");

  /* And as a server, on the example's own client messages. */
  struct scram_ref s = {.password = "pencil",
                        .server_nonce = rfc_server_nonce, .iter = 4096};
  memcpy(s.salt, salt, 16);
  s.salt_len = 16;
  char out[SCRAM_REF_MSG];
  assert_int_equal(scram_ref_server_first(&s, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
                                          out), 0);
  assert_string_equal(out, "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)"
                           "hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
  assert_int_equal(
      scram_ref_server_final(&s,
                             "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfux"
                             "FIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgs"
                             "qmmiz7AndVQ=",
                             out),
      0);
  assert_string_equal(out, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

/* A reference server with RFC 7677's salt, count and server nonce. */
static void rfc_server(struct scram_ref *s, const char *password)
{
  memset(s, 0, sizeof(*s));
  s->password = password;
  s->server_nonce = rfc_server_nonce;
  s->iter = 4096;
  s->salt_len = (size_t)base64_decode(rfc_salt64, strlen(rfc_salt64),
                                      s->salt);
}

/* Runs the client up to its client-final message; returns the client
 * and leaves the client-final (raw) in `cfinal`. */
static struct sasl_client *scram_to_client_final(struct scram_ref *s,
                                                 const struct sasl_params *p,
                                                 char *cfinal, size_t cap)
{
  struct sasl_client *c;
  assert_int_equal(sasl_client_new(&c, p), 0);
  const uint8_t *line;
  size_t len;
  char cfirst[SCRAM_REF_MSG], sfirst[SCRAM_REF_MSG];
  assert_int_equal(sasl_client_start(c, &line, &len), 0);
  assert_true(len > 20 && memcmp(line, "AUTH SCRAM-SHA-256", 18) == 0);
  decode_line(line, len, cfirst, sizeof(cfirst));
  if (scram_ref_server_first(s, cfirst, sfirst) != 0)
    fail_msg("reference server: %s (client-first \"%s\")", s->why, cfirst);
  assert_int_equal(step_str(c, sfirst, &line, &len), 0);
  decode_line(line, len, cfinal, cap);
  return c;
}

static void test_scram_exchange_completes_with_mutual_proof(void **state)
{
  (void)state;
  SKIP_WITHOUT_SCRAM();
  struct scram_ref s;
  rfc_server(&s, "pencil");
  struct sasl_params p = {.mech = SASL_MECH_SCRAM_SHA_256,
                          .username = "user", .secret = "pencil"};
  char cfinal[SCRAM_REF_MSG], sfinal[SCRAM_REF_MSG];
  struct sasl_client *c = scram_to_client_final(&s, &p, cfinal,
                                                sizeof(cfinal));
  assert_string_equal(s.gs2_header, "n,,");
  assert_string_equal(s.username, "user");
  assert_int_equal(strlen(s.client_nonce), 24);
  /* Not yet proven: a 235 here would be a server skipping its proof. */
  if (scram_ref_server_final(&s, cfinal, sfinal) != 0)
    fail_msg("reference server: %s", s.why);
  const uint8_t *line;
  size_t len;
  assert_int_equal(step_str(c, sfinal, &line, &len), 0);
  expect_line(line, len, "\r\n");
  assert_int_equal(sasl_client_success(c), 0);
  assert_int_equal(sasl_client_library_steps(c), 2);
  sasl_client_free(c);
}

static void test_scram_wrong_password_proof_fails_at_the_server(
    void **state)
{
  (void)state;
  SKIP_WITHOUT_SCRAM();
  struct scram_ref s;
  rfc_server(&s, "pencil");
  struct sasl_params p = {.mech = SASL_MECH_SCRAM_SHA_256,
                          .username = "user", .secret = "crayon"};
  char cfinal[SCRAM_REF_MSG], sfinal[SCRAM_REF_MSG];
  struct sasl_client *c = scram_to_client_final(&s, &p, cfinal,
                                                sizeof(cfinal));
  assert_int_equal(scram_ref_server_final(&s, cfinal, sfinal), -1);
  assert_non_null(strstr(s.why, "proof"));
  sasl_client_free(c);
}

static void test_scram_forged_server_signature_is_refused(void **state)
{
  (void)state;
  SKIP_WITHOUT_SCRAM();
  struct scram_ref s;
  rfc_server(&s, "pencil");
  struct sasl_params p = {.mech = SASL_MECH_SCRAM_SHA_256,
                          .username = "user", .secret = "pencil"};
  char cfinal[SCRAM_REF_MSG], sfinal[SCRAM_REF_MSG];
  struct sasl_client *c = scram_to_client_final(&s, &p, cfinal,
                                                sizeof(cfinal));
  assert_int_equal(scram_ref_server_final(&s, cfinal, sfinal), 0);
  /* One character of the signature changed. */
  sfinal[5] = sfinal[5] == 'A' ? 'B' : 'A';
  const uint8_t *line;
  size_t len;
  EXPECT_CANCEL(step_str(c, sfinal, &line, &len));
  expect_error_mentions(c, "server signature");
  assert_int_equal(sasl_client_success(c), ERR_PROTOCOL);
  sasl_client_free(c);

  /* A server signed with another password (a server that does not know
   * this one). */
  struct scram_ref other;
  rfc_server(&other, "pencil");
  c = scram_to_client_final(&other, &p, cfinal, sizeof(cfinal));
  other.password = "not-the-password";
  uint8_t proof[32], sig[32];
  char am[3 * SCRAM_REF_MSG];
  const char *proof_at = strstr(cfinal, ",p=");
  snprintf(am, sizeof(am), "%s,%s,%.*s", other.client_first_bare,
           other.server_first, (int)(proof_at - cfinal), cfinal);
  assert_int_equal(scram_ref_signatures("not-the-password", other.salt,
                                        other.salt_len, 4096, am, proof, sig),
                   0);
  char v[64] = "v=";
  v[2 + base64_encode(sig, 32, v + 2)] = '\0';
  EXPECT_CANCEL(step_str(c, v, &line, &len));
  assert_int_equal(sasl_client_success(c), ERR_PROTOCOL);
  sasl_client_free(c);
}

static void test_scram_success_without_server_final_is_refused(void **state)
{
  (void)state;
  SKIP_WITHOUT_SCRAM();
  struct scram_ref s;
  rfc_server(&s, "pencil");
  struct sasl_params p = {.mech = SASL_MECH_SCRAM_SHA_256,
                          .username = "user", .secret = "pencil"};
  char cfinal[SCRAM_REF_MSG];
  struct sasl_client *c = scram_to_client_final(&s, &p, cfinal,
                                                sizeof(cfinal));
  /* The server answers 235 to the client-final: no proof. */
  assert_int_equal(sasl_client_success(c), ERR_PROTOCOL);
  expect_error_mentions(c, "without proving");
  sasl_client_free(c);
}

static void test_scram_server_error_is_answered_empty(void **state)
{
  (void)state;
  SKIP_WITHOUT_SCRAM();
  struct scram_ref s;
  rfc_server(&s, "pencil");
  struct sasl_params p = {.mech = SASL_MECH_SCRAM_SHA_256,
                          .username = "user", .secret = "crayon"};
  char cfinal[SCRAM_REF_MSG];
  struct sasl_client *c = scram_to_client_final(&s, &p, cfinal,
                                                sizeof(cfinal));
  const uint8_t *line;
  size_t len;
  assert_int_equal(step_str(c, "e=invalid-proof", &line, &len), 0);
  expect_line(line, len, "\r\n");
  assert_string_equal(sasl_client_server_error(c), "invalid-proof");
  /* The server's 535 follows; a 235 would not be believed. */
  assert_int_equal(sasl_client_success(c), ERR_PROTOCOL);
  sasl_client_free(c);
}

/* Starts a SCRAM client and feeds it one server-first message. */
static struct sasl_client *scram_server_first(const char *sfirst_fmt,
                                              uint32_t iter_max, int *rv,
                                              const uint8_t **line,
                                              size_t *len)
{
  struct sasl_params p = {.mech = SASL_MECH_SCRAM_SHA_256,
                          .username = "user", .secret = "pencil",
                          .scram_iter_max = iter_max};
  struct sasl_client *c;
  assert_int_equal(sasl_client_new(&c, &p), 0);
  char cfirst[SCRAM_REF_MSG], sfirst[2 * SCRAM_REF_MSG];
  assert_int_equal(sasl_client_start(c, line, len), 0);
  decode_line(*line, *len, cfirst, sizeof(cfirst));
  const char *nonce = strstr(cfirst, ",r=") + 3;
  /* "@N" in the template is the client's nonce. */
  const char *at = strstr(sfirst_fmt, "@N");
  if (at)
    snprintf(sfirst, sizeof(sfirst), "%.*s%s%s", (int)(at - sfirst_fmt),
             sfirst_fmt, nonce, at + 2);
  else
    snprintf(sfirst, sizeof(sfirst), "%s", sfirst_fmt);
  *rv = step_str(c, sfirst, line, len);
  return c;
}

static void test_scram_huge_iteration_count_is_refused_before_derivation(
    void **state)
{
  (void)state;
  SKIP_WITHOUT_SCRAM();
  /* If any of these reached PBKDF2, the test would run for minutes or
   * years instead of failing: the step count says they did not. */
  static const char *const huge[] = {
    "r=@NSRV,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=100001",
    "r=@NSRV,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=2147483647",
    "r=@NSRV,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4294967295",
    "r=@NSRV,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4294967296",
    "r=@NSRV,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999999999999999999",
  };
  for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
    int rv;
    const uint8_t *line;
    size_t len;
    struct sasl_client *c = scram_server_first(huge[i], 0, &rv, &line, &len);
    expect_cancel(rv, line, len);
    expect_error_mentions(c, "limit of 100000");
    expect_error_mentions(c, "before any key derivation");
    assert_int_equal(sasl_client_library_steps(c), 0);
    sasl_client_free(c);
  }
  /* A lower configured cap holds the same way; at the cap is accepted. */
  int rv;
  const uint8_t *line;
  size_t len;
  struct sasl_client *c = scram_server_first(
      "r=@NSRV,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=5001", 5000, &rv, &line, &len);
  expect_cancel(rv, line, len);
  assert_int_equal(sasl_client_library_steps(c), 0);
  sasl_client_free(c);
  c = scram_server_first("r=@NSRV,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=5000", 5000,
                         &rv, &line, &len);
  assert_int_equal(rv, 0);
  assert_int_equal(sasl_client_library_steps(c), 1);
  sasl_client_free(c);
}

static void test_scram_tiny_or_malformed_iteration_count_is_refused(
    void **state)
{
  (void)state;
  SKIP_WITHOUT_SCRAM();
  static const char *const bad[][2] = {
    {"r=@NSRV,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1", "under the minimum"},
    {"r=@NSRV,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095", "under the minimum"},
    {"r=@NSRV,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0", "positive decimal"},
    {"r=@NSRV,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=04096", "positive decimal"},
    {"r=@NSRV,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-4096", "positive decimal"},
    {"r=@NSRV,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096x", "positive decimal"},
    {"r=@NSRV,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=", "i= attribute"},
    {"r=@NSRV,s=W22ZaJ0SNY7soEsUEjb6gQ==", "i= attribute"},
    {"r=@NSRV,i=4096,s=W22ZaJ0SNY7soEsUEjb6gQ==", "s= attribute"},
    {"s=W22ZaJ0SNY7soEsUEjb6gQ==,r=@NSRV,i=4096", "r= attribute"},
    {"m=ext,r=@NSRV,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "mandatory"},
    {"e=other-error@N", "server error"},
    {"r=@NSRV,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096 ", "printable"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rv;
    const uint8_t *line;
    size_t len;
    struct sasl_client *c = scram_server_first(bad[i][0], 0, &rv, &line, &len);
    expect_cancel(rv, line, len);
    expect_error_mentions(c, bad[i][1]);
    assert_int_equal(sasl_client_library_steps(c), 0);
    sasl_client_free(c);
  }
}

static void test_scram_nul_in_server_first_is_refused(void **state)
{
  (void)state;
  SKIP_WITHOUT_SCRAM();
  struct sasl_params p = {.mech = SASL_MECH_SCRAM_SHA_256,
                          .username = "user", .secret = "pencil"};
  struct sasl_client *c;
  assert_int_equal(sasl_client_new(&c, &p), 0);
  const uint8_t *line;
  size_t len;
  assert_int_equal(sasl_client_start(c, &line, &len), 0);
  /* GNU SASL reading up to the NUL would see another message. */
  static const char m[] = "r=abc,s=QUJD,i=4096\0,i=9999999999";
  EXPECT_CANCEL(step_raw(c, m, sizeof(m) - 1, &line, &len));
  assert_int_equal(sasl_client_library_steps(c), 0);
  sasl_client_free(c);
}

static void test_scram_nonce_not_extending_the_clients_is_refused(
    void **state)
{
  (void)state;
  SKIP_WITHOUT_SCRAM();
  /* RFC 7677's own server-first, whose nonce is not this client's. */
  int rv;
  const uint8_t *line;
  size_t len;
  struct sasl_client *c = scram_server_first(
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
      "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
      0, &rv, &line, &len);
  expect_cancel(rv, line, len);
  expect_error_mentions(c, "nonce");
  assert_int_equal(sasl_client_library_steps(c), 1);
  sasl_client_free(c);
}

static void test_scram_username_is_escaped(void **state)
{
  (void)state;
  SKIP_WITHOUT_SCRAM();
  struct scram_ref s;
  rfc_server(&s, "pencil");
  struct sasl_params p = {.mech = SASL_MECH_SCRAM_SHA_256,
                          .username = "a,b=c", .secret = "pencil"};
  char cfinal[SCRAM_REF_MSG], sfinal[SCRAM_REF_MSG];
  struct sasl_client *c = scram_to_client_final(&s, &p, cfinal,
                                                sizeof(cfinal));
  assert_true(strncmp(s.client_first_bare, "n=a=2Cb=3Dc,", 12) == 0);
  assert_string_equal(s.username, "a,b=c");
  assert_int_equal(scram_ref_server_final(&s, cfinal, sfinal), 0);
  sasl_client_free(c);
}

static const uint8_t exporter[32] = {
  0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
  0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
  0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20,
};

static void test_scram_plus_binds_the_tls_exporter(void **state)
{
  (void)state;
  SKIP_WITHOUT_SCRAM();
  struct scram_ref s;
  rfc_server(&s, "pencil");
  s.cb_data = exporter;
  s.cb_len = sizeof(exporter);
  struct sasl_params p = {.mech = SASL_MECH_SCRAM_SHA_256_PLUS,
                          .username = "user", .secret = "pencil",
                          .cb_type = SASL_CB_TLS_EXPORTER,
                          .cb_data = exporter, .cb_len = sizeof(exporter)};
  char cfinal[SCRAM_REF_MSG], sfinal[SCRAM_REF_MSG];
  struct sasl_client *c = scram_to_client_final(&s, &p, cfinal,
                                                sizeof(cfinal));
  assert_string_equal(s.gs2_header, "p=tls-exporter,,");
  if (scram_ref_server_final(&s, cfinal, sfinal) != 0)
    fail_msg("reference server: %s", s.why);
  const uint8_t *line;
  size_t len;
  assert_int_equal(step_str(c, sfinal, &line, &len), 0);
  assert_int_equal(sasl_client_success(c), 0);
  sasl_client_free(c);

  /* A different channel (a man in the middle's own TLS session) fails
   * at the server. */
  uint8_t other[32];
  memcpy(other, exporter, 32);
  other[0] ^= 0xff;
  rfc_server(&s, "pencil");
  s.cb_data = other;
  s.cb_len = 32;
  c = scram_to_client_final(&s, &p, cfinal, sizeof(cfinal));
  assert_int_equal(scram_ref_server_final(&s, cfinal, sfinal), -1);
  assert_non_null(strstr(s.why, "channel binding"));
  sasl_client_free(c);
}

static void test_plain_scram_says_n_even_with_binding_data(void **state)
{
  (void)state;
  SKIP_WITHOUT_SCRAM();
  /* GNU SASL 2.2 cannot send "y" (sasl_int.h): the data is left out. */
  struct scram_ref s;
  rfc_server(&s, "pencil");
  struct sasl_params p = {.mech = SASL_MECH_SCRAM_SHA_256,
                          .username = "user", .secret = "pencil",
                          .cb_type = SASL_CB_TLS_EXPORTER,
                          .cb_data = exporter, .cb_len = sizeof(exporter)};
  char cfinal[SCRAM_REF_MSG], sfinal[SCRAM_REF_MSG];
  struct sasl_client *c = scram_to_client_final(&s, &p, cfinal,
                                                sizeof(cfinal));
  assert_string_equal(s.gs2_header, "n,,");
  assert_int_equal(scram_ref_server_final(&s, cfinal, sfinal), 0);
  sasl_client_free(c);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_base64_matches_rfc4648_vectors),
    cmocka_unit_test(test_base64_refuses_non_canonical_text),
    cmocka_unit_test(test_mechanism_names_are_case_insensitive),
    cmocka_unit_test(test_choice_is_never_a_mechanism_the_server_did_not_offer),
    cmocka_unit_test(test_default_choice_is_the_strongest_offered),
    cmocka_unit_test(test_configured_order_is_the_preference),
    cmocka_unit_test(test_mechanism_list_errors_name_the_word),
    cmocka_unit_test(test_new_refuses_what_a_mechanism_cannot_carry),
    cmocka_unit_test(test_plain_sends_rfc4616_response_with_empty_authzid),
    cmocka_unit_test(test_plain_refuses_a_challenge_after_its_response),
    cmocka_unit_test(test_long_initial_response_waits_for_the_empty_challenge),
    cmocka_unit_test(test_login_answers_in_order_whatever_the_prompt),
    cmocka_unit_test(test_login_success_before_the_password_is_refused),
    cmocka_unit_test(test_xoauth2_matches_the_published_example),
    cmocka_unit_test(test_xoauth2_error_is_answered_with_an_empty_line),
    cmocka_unit_test(test_server_text_echoing_the_secret_is_withheld),
    cmocka_unit_test(test_bad_base64_challenge_cancels),
    cmocka_unit_test(test_over_long_challenge_cancels),
    cmocka_unit_test(test_step_outside_the_exchange_is_invalid_state),
    cmocka_unit_test(test_errors_never_contain_the_secret),
    cmocka_unit_test(test_redaction_hides_credentials_in_traces),
    cmocka_unit_test(test_reference_server_reproduces_rfc7677_example),
    cmocka_unit_test(test_scram_exchange_completes_with_mutual_proof),
    cmocka_unit_test(test_scram_wrong_password_proof_fails_at_the_server),
    cmocka_unit_test(test_scram_forged_server_signature_is_refused),
    cmocka_unit_test(test_scram_success_without_server_final_is_refused),
    cmocka_unit_test(test_scram_server_error_is_answered_empty),
    cmocka_unit_test(test_scram_huge_iteration_count_is_refused_before_derivation),
    cmocka_unit_test(test_scram_tiny_or_malformed_iteration_count_is_refused),
    cmocka_unit_test(test_scram_nul_in_server_first_is_refused),
    cmocka_unit_test(test_scram_nonce_not_extending_the_clients_is_refused),
    cmocka_unit_test(test_scram_username_is_escaped),
    cmocka_unit_test(test_scram_plus_binds_the_tls_exporter),
    cmocka_unit_test(test_plain_scram_says_n_even_with_binding_data),
  };
  /* Without GNU SASL (-Dgsasl) there is no SCRAM (tests/plan.h). */
  return plan_run_group(tests, sizeof(tests) / sizeof(tests[0]), "scram",
                        !sasl_mech_built(SASL_MECH_SCRAM_SHA_256),
                        "SCRAM, built without GNU SASL", NULL, NULL);
}
