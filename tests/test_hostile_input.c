/*
 * test_hostile_input.c — a careless host: NULL and empty arguments to
 * every public function, addresses that would inject commands (CR, LF,
 * NUL, controls, brackets), paths over 256 octets, invalid UTF-8, non-ASCII
 * addresses for a server without SMTPUTF8, and names that could not be
 * sent.  Each is a clear API error or a per-recipient result, and not a
 * byte of it ever reaches the wire (the sessions' output is checked).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define INVALID SMTPOUT_ERR_INVALID_ARGUMENT
#define BAD_ADDRESS SMTPOUT_ERR_BAD_ADDRESS

static const char *const A = "a@test.example";

/* Addresses that must never be sent, and the marker each would put on the
 * wire if it were. */
static const char *const injections[] = {
  "a@test.example\r\nRCPT TO:<evil1@x.example>",
  "a@test.example\nRCPT TO:<evil2@x.example>",
  "a@test.example\rRCPT TO:<evil3@x.example>",
  "evil4@x.example>\r\nDATA",
  "<evil5@x.example",
  "evil6@x.example> SIZE=1",
  "evil7 @x.example",
  "evil8\t@x.example",
  "evil9\x01@x.example",
  "evil10\x7f@x.example",
  "\"evil11\r\n\"@x.example",
  "\"evil12\\\r\"@x.example",
  "evil13\xff@x.example",         /* not UTF-8 */
  "evil14\xc3@x.example",         /* truncated sequence */
  "evil15\xed\xa0\x80@x.example", /* a surrogate */
  "evil16\xc0\xae@x.example",     /* overlong '.' */
  "evil19\xe0\x80\xae@x.example", /* overlong '.' in three bytes */
  "evil20\xf4\x90\x80\x80@x.example", /* past U+10FFFF */
  "evil21\xf5\x80\x80\x80@x.example", /* no such lead byte */
  "evil22\x80@x.example",         /* a lone continuation byte */
  "evil23\xe2\x82@x.example",     /* truncated three-byte sequence */
  /* A backslash in a quoted local part escapes one printable ASCII
   * character, and never hides what follows from the check. */
  "\"evil24\\>\"@x.example",       /* an escaped '>' ends a naive path */
  "\"evil25\\<\"@x.example",
  "\"evil26\\>\r\nRSET\"@x.example",
  "\"evil27\\\xff\"@x.example",     /* an escaped invalid byte */
  "\"evil28\\\xc3\xb6\"@x.example", /* an escaped UTF-8 character */
  "\"evil29\\\xed\xa0\x80\"@x.example", /* an escaped surrogate */
  "\"evil30\\\x01\"@x.example",
  "\"evil31\\\"@x.example",         /* the escape ends the quote */
  "",
  "evil17",
  "@x.example",
  "evil18@",
};

/* A path of `len` octets: "aaa...@x.example". */
static char *long_address(size_t len)
{
  char *a = malloc(len + 1);
  assert_non_null(a);
  memset(a, 'a', len);
  memcpy(a + len - 10, "@x.example", 10);
  a[len] = '\0';
  return a;
}

static void test_injecting_addresses_are_refused_before_queuing(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  for (size_t i = 0; i < sizeof(injections) / sizeof(injections[0]); i++) {
    const char *bad[] = {injections[i]};
    const char *mixed[] = {A, injections[i]};
    const char *good[] = {A};
    assert_int_equal(smtpout_address_check(injections[i]), BAD_ADDRESS);
    assert_int_equal(smtpout_session_submit(h.s, "s@x.example", bad, 1, 0, 0),
                     BAD_ADDRESS);
    /* One bad recipient refuses the whole message: nothing is queued. */
    assert_int_equal(
        smtpout_session_submit(h.s, "s@x.example", mixed, 2, 0, 0),
        BAD_ADDRESS);
    if (injections[i][0] != '\0')
      assert_int_equal(
          smtpout_session_submit(h.s, injections[i], good, 1, 0, 0),
          BAD_ADDRESS);
  }
  /* Then one good message: the only one on the wire. */
  h_submit(&h, A, NULL);
  smtpout_session_quit(h.s);
  h_open(&h, "250 PIPELINING\r\n");
  const char *out = h_client(&h);
  assert_string_equal(out, "MAIL FROM:<sender@test.example>\r\n"
                           "RCPT TO:<a@test.example>\r\n"
                           "DATA\r\n");
  assert_null(strstr(out, "evil"));
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  /* The data, and the QUIT pipelined behind its end (RFC 2920 3.1). */
  out = h_client(&h);
  assert_string_equal(out, "Subject: t\r\n\r\nhello\r\n.\r\nQUIT\r\n");
  h_server(&h, "250 ok\r\n");
  assert_string_equal(h_client(&h), "");
  assert_int_equal(h.nres, 1);
  h_free(&h);
}

static void test_nul_ends_a_c_string_so_nothing_after_it_is_sent(void **st)
{
  struct h h;
  (void)st;
  /* A C string stops at its NUL: "a@test.example\0\r\nRSET" is the
   * address a@test.example, and what follows the NUL cannot reach the
   * library, let alone the wire. */
  static const char buf[] = "a@test.example\0\r\nRCPT TO:<evil@x.example>";
  h_init(&h, "mx.test.example", NULL);
  const char *r[] = {buf};
  assert_true(smtpout_session_submit(h.s, "s@test.example", r, 1, 0, 0) > 0);
  h_open(&h, "250 PIPELINING\r\n");
  const char *out = h_client(&h);
  assert_string_equal(out, "MAIL FROM:<s@test.example>\r\n"
                           "RCPT TO:<a@test.example>\r\n"
                           "DATA\r\n");
  h_free(&h);
}

static void test_paths_over_256_octets_are_refused(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  /* RFC 5321 4.5.3.1.3: 256 octets with the brackets, 254 without. */
  char *ok = long_address(254), *over = long_address(255);
  char *huge = long_address(100000);
  assert_int_equal(smtpout_address_check(ok), 0);
  assert_int_equal(smtpout_address_check(over), BAD_ADDRESS);
  assert_int_equal(smtpout_address_check(huge), BAD_ADDRESS);
  const char *r[] = {over};
  assert_int_equal(smtpout_session_submit(h.s, "s@x.example", r, 1, 0, 0),
                   BAD_ADDRESS);
  const char *good[] = {A};
  assert_int_equal(smtpout_session_submit(h.s, huge, good, 1, 0, 0),
                   BAD_ADDRESS);
  r[0] = ok;
  assert_true(smtpout_session_submit(h.s, ok, r, 1, 0, 0) > 0);
  h_open(&h, NULL);
  const char *out = h_client(&h);
  /* The longest allowed path fits in one command line. */
  assert_int_equal(strlen(out), strlen("MAIL FROM:<>\r\n") + 254);
  free(ok);
  free(over);
  free(huge);
  h_free(&h);
}

static void test_non_ascii_without_smtputf8_is_bounced_off_the_wire(
    void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  const char *rcpts[] = {"j\xc3\xb6rg@test.example", A,
                         "x@b\xc3\xbc" "cher.example"};
  assert_true(smtpout_session_submit(h.s, "s@test.example", rcpts, 3, 0, 0) >
              0);
  const char *one[] = {A};
  assert_true(smtpout_session_submit(h.s, "s\xc3\xa9@test.example", one, 1,
                                     0, 0) > 0);
  smtpout_session_quit(h.s);
  h_open(&h, "250 PIPELINING\r\n"); /* no SMTPUTF8 */
  const char *out = h_client(&h);
  for (const char *p = out; *p; p++)
    assert_true((unsigned char)*p < 0x80);
  const struct h_result *r = h_find(&h, rcpts[0]);
  assert_non_null(r);
  assert_int_equal(r->status, SMTPOUT_STATUS_BOUNCED);
  assert_string_equal(r->enhanced, "5.6.7");
  r = h_find(&h, rcpts[2]);
  assert_non_null(r);
  assert_string_equal(r->enhanced, "5.6.7");
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n");
  out = h_client(&h);
  /* The second message, from a UTF-8 sender, never got a MAIL FROM. */
  assert_string_equal(out, "QUIT\r\n");
  assert_int_equal(h.nres, 4);
  h_free(&h);
}

static void test_names_that_could_not_be_sent_are_refused(void **st)
{
  smtpout_callbacks *cbs;
  smtpout_session *s;
  (void)st;
  assert_int_equal(smtpout_callbacks_new(&cbs), 0);
  static const char *const bad[] = {
    "", ".", "mx.example\r\nQUIT", "mx example", "mx\x01.example",
    "mx_.example", "-mx.example", "mx..example", "\xff.example",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(smtpout_session_new(&s, bad[i], NULL, cbs, NULL),
                     SMTPOUT_ERR_BAD_NAME);
    assert_int_equal(smtpout_session_new(&s, "mx.test.example", NULL, cbs,
                                         NULL),
                     0);
    assert_int_equal(smtpout_session_set_helo_name(s, bad[i]),
                     SMTPOUT_ERR_BAD_NAME);
    smtpout_session_free(s);

    smtpout_delivery *d;
    assert_int_equal(smtpout_delivery_new(&d, NULL), 0);
    assert_int_equal(smtpout_delivery_set_helo_name(d, bad[i]),
                     SMTPOUT_ERR_BAD_NAME);
    smtpout_delivery_free(d);
  }
  smtpout_callbacks_free(cbs);
}

static void test_null_and_empty_arguments_session_api(void **st)
{
  smtpout_callbacks *cbs;
  smtpout_session *s;
  (void)st;
  assert_int_equal(smtpout_callbacks_new(NULL), INVALID);
  assert_int_equal(smtpout_callbacks_new(&cbs), 0);
  smtpout_callbacks_set_read_body(NULL, NULL);
  smtpout_callbacks_set_on_result(NULL, NULL);
  smtpout_callbacks_set_on_message_done(NULL, NULL);
  smtpout_callbacks_set_on_tls(NULL, NULL);
  smtpout_callbacks_set_on_trace(NULL, NULL);
  smtpout_callbacks_free(NULL);

  assert_int_equal(smtpout_session_new(NULL, "mx.example", NULL, cbs, NULL),
                   INVALID);
  assert_int_equal(smtpout_session_new(&s, NULL, NULL, cbs, NULL), INVALID);
  assert_int_equal(smtpout_session_new(&s, "mx.example", NULL, NULL, NULL),
                   INVALID);
  assert_int_equal(smtpout_session_new(&s, "", NULL, cbs, NULL),
                   SMTPOUT_ERR_BAD_NAME);

  /* Every entry point with a NULL session. */
  const uint8_t *p;
  size_t n;
  const char *r[] = {A};
  assert_int_equal(smtpout_session_set_helo_name(NULL, "x.example"), INVALID);
  assert_int_equal(smtpout_session_set_tls_policy(NULL, 1, 0), INVALID);
  assert_int_equal(smtpout_session_set_plaintext_fallback(NULL), INVALID);
  assert_int_equal(smtpout_session_set_ca_file(NULL, "x"), INVALID);
  assert_int_equal(smtpout_session_set_timeout(NULL, 0, 1), INVALID);
  assert_int_equal(smtpout_session_start(NULL, 0), INVALID);
  assert_int_equal(smtpout_session_submit(NULL, "", r, 1, 0, 0), INVALID);
  assert_int_equal(smtpout_session_quit(NULL), INVALID);
  assert_int_equal(smtpout_session_abort(NULL, 0), INVALID);
  assert_int_equal(smtpout_session_resume_body(NULL), INVALID);
  assert_int_equal(smtpout_session_feed(NULL, (const uint8_t *)"x", 1, 0),
                   INVALID);
  assert_int_equal(smtpout_session_feed_eof(NULL, 0), INVALID);
  assert_int_equal(smtpout_session_peek_output(NULL, &p, &n, 0), INVALID);
  assert_int_equal(smtpout_session_consume_output(NULL, 0, 0), INVALID);
  assert_int_equal(smtpout_session_handle_expiry(NULL, 0), INVALID);
  assert_false(smtpout_session_want_read(NULL));
  assert_false(smtpout_session_want_write(NULL));
  assert_false(smtpout_session_is_done(NULL));
  assert_int_equal(smtpout_session_expiry(NULL), SMTPOUT_NO_EXPIRY);
  assert_int_equal(smtpout_session_close_reason(NULL), SMTPOUT_CLOSE_NONE);
  assert_string_equal(smtpout_session_close_text(NULL), "");
  assert_null(smtpout_session_tls_info(NULL));
  assert_int_equal(smtpout_session_capabilities(NULL), 0);
  smtpout_session_free(NULL);

  /* NULL and out-of-range arguments on a live session. */
  assert_int_equal(smtpout_session_new(&s, "mx.example", NULL, cbs, NULL), 0);
  assert_int_equal(smtpout_session_set_helo_name(s, NULL), INVALID);
  assert_int_equal(smtpout_session_set_tls_policy(s, 3, 0), INVALID);
  assert_int_equal(smtpout_session_set_tls_policy(s, -1, 0), INVALID);
  assert_int_equal(smtpout_session_set_tls_policy(s, 1, 2), INVALID);
  assert_int_equal(smtpout_session_set_ca_file(s, NULL), INVALID);
  assert_int_equal(smtpout_session_set_timeout(s, -1, 1), INVALID);
  assert_int_equal(smtpout_session_set_timeout(s, SMTPOUT_TIMEOUT_COUNT, 1),
                   INVALID);
  assert_int_equal(smtpout_session_set_timeout(s, 0, 0), INVALID);
  assert_int_equal(smtpout_session_submit(s, NULL, r, 1, 0, 0), INVALID);
  assert_int_equal(smtpout_session_submit(s, "", NULL, 1, 0, 0), INVALID);
  assert_int_equal(smtpout_session_submit(s, "", r, 0, 0, 0), INVALID);
  const char *nulls[] = {A, NULL};
  assert_int_equal(smtpout_session_submit(s, "", nulls, 2, 0, 0), INVALID);
  assert_int_equal(smtpout_session_submit(s, "", r, 1, 0, 0x100), INVALID);
  /* Before start: no I/O. */
  assert_int_equal(smtpout_session_feed(s, (const uint8_t *)"220 x\r\n", 7,
                                        0),
                   SMTPOUT_ERR_INVALID_STATE);
  assert_int_equal(smtpout_session_feed_eof(s, 0), SMTPOUT_ERR_INVALID_STATE);
  assert_int_equal(smtpout_session_start(s, 0), 0);
  assert_int_equal(smtpout_session_start(s, 0), SMTPOUT_ERR_INVALID_STATE);
  assert_int_equal(smtpout_session_feed(s, NULL, 1, 0), INVALID);
  assert_int_equal(smtpout_session_feed(s, NULL, 0, 0), 0);
  assert_int_equal(smtpout_session_peek_output(s, NULL, &n, 0), INVALID);
  assert_int_equal(smtpout_session_peek_output(s, &p, NULL, 0), INVALID);
  assert_int_equal(smtpout_session_peek_output(s, &p, &n, 0), 0);
  assert_int_equal(n, 0);
  assert_int_equal(smtpout_session_consume_output(s, 1, 0), INVALID);
  assert_int_equal(smtpout_session_set_helo_name(s, "x.example"),
                   SMTPOUT_ERR_INVALID_STATE);
  smtpout_session_free(s);
  smtpout_callbacks_free(cbs);

  /* Getters of results and TLS information. */
  assert_int_equal(smtpout_result_message_id(NULL), 0);
  assert_int_equal(smtpout_result_recipient_index(NULL), 0);
  assert_string_equal(smtpout_result_recipient(NULL), "");
  assert_int_equal(smtpout_result_status(NULL), 0);
  assert_int_equal(smtpout_result_code(NULL), 0);
  assert_string_equal(smtpout_result_enhanced(NULL), "");
  assert_string_equal(smtpout_result_text(NULL), "");
  assert_int_equal(smtpout_result_possibly_delivered(NULL), 0);
  assert_int_equal(smtpout_tls_info_outcome(NULL), SMTPOUT_TLS_OUTCOME_NONE);
  assert_int_equal(smtpout_tls_info_used(NULL), 0);
  assert_null(smtpout_tls_info_version(NULL));
  assert_null(smtpout_tls_info_cipher(NULL));
  assert_int_equal(smtpout_tls_info_verified(NULL), 0);
  assert_null(smtpout_tls_info_verify_error(NULL));
  assert_null(smtpout_tls_info_tlsrpt_result(NULL));
  assert_int_equal(smtpout_tls_info_fallback_permitted(NULL), 0);
  assert_int_equal(smtpout_tls_info_plaintext_fallback(NULL), 0);
  assert_int_equal(smtpout_address_check(NULL), INVALID);
  assert_int_equal(smtpout_address_check(""), BAD_ADDRESS);
  assert_string_equal(smtpout_strerror(12345), "unknown error");
  assert_null(smtpout_status_name(0));
  assert_null(smtpout_starttls_name(-1));
  assert_null(smtpout_tls_outcome_name(99));
}

static void test_null_and_empty_arguments_config_api(void **st)
{
  smtpout_config *c;
  smtpout_policy *p;
  char err[64];
  (void)st;
  assert_int_equal(smtpout_config_new(NULL), INVALID);
  assert_int_equal(smtpout_config_load_file(NULL, "x", err, sizeof(err)),
                   INVALID);
  assert_int_equal(smtpout_config_load_file(&c, NULL, err, sizeof(err)),
                   INVALID);
  assert_int_equal(smtpout_config_load_file(&c, "", err, sizeof(err)),
                   INVALID);
  assert_int_equal(smtpout_config_load_string(NULL, "", NULL, err,
                                              sizeof(err)),
                   INVALID);
  assert_int_equal(smtpout_config_load_string(&c, NULL, NULL, err,
                                              sizeof(err)),
                   INVALID);
  /* An empty text is a valid, empty configuration; no error buffer is
   * fine too. */
  assert_int_equal(smtpout_config_load_string(&c, "", NULL, NULL, 0), 0);
  smtpout_config_unref(c);
  /* A bad one with a tiny error buffer: truncated, still terminated. */
  assert_int_equal(smtpout_config_load_string(&c, "[nonsense]\n", NULL, err,
                                              8),
                   SMTPOUT_ERR_CONFIG);
  assert_true(strlen(err) < 8);
  assert_null(smtpout_config_ref(NULL));
  smtpout_config_unref(NULL);
  assert_true(smtpout_config_timeout(NULL, SMTPOUT_TIMEOUT_DATA) > 0);
  assert_int_equal(smtpout_config_timeout(NULL, -1), 0);
  assert_int_equal(smtpout_config_timeout(NULL, SMTPOUT_TIMEOUT_COUNT), 0);
  assert_null(smtpout_config_helo_name(NULL));
  assert_null(smtpout_config_ca_file(NULL));
  assert_non_null(smtpout_config_tls_priority(NULL));

  const char *d[] = {"x.example"};
  const char *bad[] = {"x.example\r\nQUIT"};
  assert_int_equal(smtpout_policy_resolve(NULL, NULL, d, 1, NULL), INVALID);
  assert_int_equal(smtpout_policy_resolve(&p, NULL, NULL, 1, NULL), INVALID);
  assert_int_equal(smtpout_policy_resolve(&p, NULL, bad, 1, NULL),
                   SMTPOUT_ERR_BAD_NAME);
  assert_int_equal(smtpout_policy_resolve(&p, NULL, d, 1, "mx\nx"),
                   SMTPOUT_ERR_BAD_NAME);
  assert_int_equal(smtpout_policy_resolve(&p, NULL, NULL, 0, NULL), 0);
  smtpout_policy_free(p);
  smtpout_policy_free(NULL);
  assert_null(smtpout_policy_source(NULL, 0));
  assert_null(smtpout_policy_rule(NULL, 0));
  assert_null(smtpout_policy_explain(NULL));
}

static void test_null_and_empty_arguments_delivery_api(void **st)
{
  smtpout_delivery *d;
  (void)st;
  assert_int_equal(smtpout_delivery_new(NULL, NULL), INVALID);
  assert_int_equal(smtpout_delivery_set_server(NULL, "x", 25), INVALID);
  assert_int_equal(smtpout_delivery_set_mx_name(NULL, "x"), INVALID);
  assert_int_equal(smtpout_delivery_set_helo_name(NULL, "x"), INVALID);
  assert_int_equal(smtpout_delivery_set_ca_file(NULL, "x"), INVALID);
  assert_int_equal(smtpout_delivery_set_tls_policy(NULL, 1, 0), INVALID);
  assert_int_equal(smtpout_delivery_set_sender(NULL, ""), INVALID);
  assert_int_equal(smtpout_delivery_add_recipient(NULL, A), INVALID);
  assert_int_equal(smtpout_delivery_set_body(NULL, NULL, 0), INVALID);
  assert_int_equal(smtpout_delivery_set_body_fd(NULL, 0), INVALID);
  assert_int_equal(smtpout_delivery_set_flags(NULL, 0), INVALID);
  assert_int_equal(smtpout_delivery_set_trace(NULL, NULL, NULL), INVALID);
  assert_int_equal(smtpout_delivery_run(NULL), INVALID);
  assert_int_equal(smtpout_delivery_recipient_count(NULL), 0);
  assert_null(smtpout_delivery_result(NULL, 0));
  assert_int_equal(smtpout_delivery_attempt_count(NULL), 0);
  assert_null(smtpout_delivery_attempt(NULL, 0));
  assert_null(smtpout_delivery_policy(NULL));
  assert_string_equal(smtpout_attempt_address(NULL), "");
  assert_int_equal(smtpout_attempt_plaintext_fallback(NULL), 0);
  assert_non_null(smtpout_attempt_tls_info(NULL));
  assert_null(smtpout_attempt_error(NULL));
  smtpout_delivery_free(NULL);

  assert_int_equal(smtpout_delivery_new(&d, NULL), 0);
  assert_int_equal(smtpout_delivery_set_server(d, NULL, 25), INVALID);
  assert_int_equal(smtpout_delivery_set_server(d, "", 25), INVALID);
  assert_int_equal(smtpout_delivery_set_mx_name(d, NULL), INVALID);
  assert_int_equal(smtpout_delivery_set_helo_name(d, NULL), INVALID);
  assert_int_equal(smtpout_delivery_set_helo_name(d, ""),
                   SMTPOUT_ERR_BAD_NAME);
  assert_int_equal(smtpout_delivery_set_helo_name(d, "[192.0.2.1]"), 0);
  assert_int_equal(smtpout_delivery_set_ca_file(d, NULL), INVALID);
  assert_int_equal(smtpout_delivery_set_tls_policy(d, 7, 0), INVALID);
  assert_int_equal(smtpout_delivery_set_sender(d, NULL), INVALID);
  assert_int_equal(smtpout_delivery_set_sender(d, "s@x\r\nRSET"),
                   BAD_ADDRESS);
  assert_int_equal(smtpout_delivery_add_recipient(d, NULL), INVALID);
  assert_int_equal(smtpout_delivery_set_body(d, NULL, 5), INVALID);
  assert_int_equal(smtpout_delivery_set_body_fd(d, -1), INVALID);
  assert_int_equal(smtpout_delivery_set_flags(d, 0x80), INVALID);
  /* Nothing to deliver yet: refused before any connection. */
  assert_int_equal(smtpout_delivery_run(d), SMTPOUT_ERR_INVALID_STATE);
  assert_null(smtpout_delivery_result(d, 0));
  assert_null(smtpout_delivery_attempt(d, 0));
  smtpout_delivery_free(d);
}

/* The delivery driver bounces an unsafe recipient locally, without
 * connecting for it: with only unsafe recipients, no connection at all
 * (the server port is 1 on loopback, which nobody serves). */
static void test_delivery_bounces_unsafe_recipients_without_connecting(
    void **st)
{
  smtpout_delivery *d;
  (void)st;
  assert_int_equal(smtpout_delivery_new(&d, NULL), 0);
  assert_int_equal(smtpout_delivery_set_server(d, "127.0.0.1", 1), 0);
  assert_int_equal(smtpout_delivery_set_sender(d, "s@x.example"), 0);
  assert_int_equal(smtpout_delivery_add_recipient(d, injections[0]), 0);
  assert_int_equal(smtpout_delivery_add_recipient(d, ""), 0);
  assert_int_equal(smtpout_delivery_set_body(d, (const uint8_t *)"x\n", 2),
                   0);
  assert_int_equal(smtpout_delivery_run(d), 0);
  for (size_t i = 0; i < 2; i++) {
    const smtpout_result *r = smtpout_delivery_result(d, i);
    assert_non_null(r);
    assert_int_equal(smtpout_result_status(r), SMTPOUT_STATUS_BOUNCED);
    assert_string_equal(smtpout_result_enhanced(r), "5.1.3");
  }
  assert_int_equal(smtpout_delivery_attempt_count(d), 0);
  assert_int_equal(smtpout_delivery_run(d), SMTPOUT_ERR_INVALID_STATE);
  smtpout_delivery_free(d);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_injecting_addresses_are_refused_before_queuing),
    cmocka_unit_test(test_nul_ends_a_c_string_so_nothing_after_it_is_sent),
    cmocka_unit_test(test_paths_over_256_octets_are_refused),
    cmocka_unit_test(test_non_ascii_without_smtputf8_is_bounced_off_the_wire),
    cmocka_unit_test(test_names_that_could_not_be_sent_are_refused),
    cmocka_unit_test(test_null_and_empty_arguments_session_api),
    cmocka_unit_test(test_null_and_empty_arguments_config_api),
    cmocka_unit_test(test_null_and_empty_arguments_delivery_api),
    cmocka_unit_test(
        test_delivery_bounces_unsafe_recipients_without_connecting),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
