/*
 * test_tls_policy.c — the STARTTLS decisions of docs/policy.md against
 * scripted servers, with the library's real TLS (GnuTLS): every row that
 * is decided before or around the handshake.  The whole table, the
 * certificate rows included, runs against a scripted TLS backend in
 * test_fake_tls.c, and against real servers in the integration tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static const char *const A = "a@test.example";

#define EHLO_TLS "250-PIPELINING\r\n250 STARTTLS\r\n"

static void open_with(struct h *h, int starttls, int allow_invalid,
                      const char *caps)
{
  h_init(h, "mx.test.example", NULL);
  assert_int_equal(smtpout_session_set_tls_policy(h->s, starttls,
                                                  allow_invalid),
                   0);
  h_submit(h, A, NULL);
  smtpout_session_quit(h->s);
  h_open(h, caps);
}

static void assert_deferred(const struct h *h, int code, const char *enh)
{
  const struct h_result *r = h_find(h, A);
  assert_non_null(r);
  assert_int_equal(r->status, SMTPOUT_STATUS_DEFERRED);
  assert_int_equal(r->code, code);
  assert_string_equal(r->enhanced, enh);
}

static void assert_tls(const struct h *h, int outcome, const char *tlsrpt)
{
  assert_int_equal(h->tls_calls, 1);
  assert_int_equal(smtpout_tls_info_outcome(h->tls), outcome);
  const char *got = smtpout_tls_info_tlsrpt_result(h->tls);
  if (tlsrpt == NULL)
    assert_null(got);
  else
    assert_string_equal(got, tlsrpt);
}

static void test_disable_never_sends_starttls_even_when_offered(void **st)
{
  struct h h;
  (void)st;
  open_with(&h, SMTPOUT_STARTTLS_DISABLE, 0, EHLO_TLS);
  assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n"
                                    "RCPT TO:<a@test.example>\r\nDATA\r\n");
  assert_tls(&h, SMTPOUT_TLS_OUTCOME_DISABLED, NULL);
  assert_int_equal(smtpout_tls_info_used(h.tls), 0);
  h_free(&h);
}

static void test_optional_without_starttls_goes_plaintext(void **st)
{
  struct h h;
  (void)st;
  open_with(&h, SMTPOUT_STARTTLS_OPTIONAL, 0, "250 PIPELINING\r\n");
  assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n"
                                    "RCPT TO:<a@test.example>\r\nDATA\r\n");
  assert_tls(&h, SMTPOUT_TLS_OUTCOME_NOT_OFFERED, "starttls-not-supported");
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n");
  assert_int_equal(h_find(&h, A)->status, SMTPOUT_STATUS_DELIVERED);
  h_free(&h);
}

static void test_require_defers_when_starttls_not_advertised(void **st)
{
  struct h h;
  (void)st;
  open_with(&h, SMTPOUT_STARTTLS_REQUIRE, 1, "250 PIPELINING\r\n");
  /* No MAIL: straight to QUIT. */
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_deferred(&h, 0, "4.7.4");
  assert_string_equal(h_find(&h, A)->text,
                      "TLS is required, but was not offered by host "
                      "mx.test.example");
  assert_tls(&h, SMTPOUT_TLS_OUTCOME_NOT_OFFERED, "starttls-not-supported");
  assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_TLS_POLICY);
  h_free(&h);
}

static void test_require_defers_after_helo_fallback(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  smtpout_session_set_tls_policy(h.s, SMTPOUT_STARTTLS_REQUIRE, 0);
  h_submit(&h, A, NULL);
  h_start(&h);
  h_server(&h, "220 hi\r\n");
  h_client(&h);
  h_server(&h, "500 no EHLO here\r\n");
  assert_string_equal(h_client(&h), "HELO client.example\r\n");
  h_server(&h, "250 hello\r\n");
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_deferred(&h, 0, "4.7.4");
  h_free(&h);
}

static void test_starttls_is_sent_alone_even_with_pipelining(void **st)
{
  struct h h;
  (void)st;
  open_with(&h, SMTPOUT_STARTTLS_OPTIONAL, 0, EHLO_TLS);
  assert_string_equal(h_client(&h), "STARTTLS\r\n");
  /* Nothing else until the reply. */
  assert_string_equal(h_client(&h), "");
  assert_false(smtpout_session_want_write(h.s));
  h_free(&h);
}

static void test_optional_starttls_refused_continues_in_plaintext(void **st)
{
  const char *refusals[] = {"454 4.7.0 TLS not available\r\n",
                            "501 5.5.4 syntax\r\n", "554 5.7.0 no\r\n"};
  (void)st;
  for (size_t i = 0; i < 3; i++) {
    struct h h;
    open_with(&h, SMTPOUT_STARTTLS_OPTIONAL, 0, EHLO_TLS);
    h_client(&h);
    h_server(&h, refusals[i]);
    /* RFC 3207 permits going on in clear on the same connection; the
     * clear-text capabilities still apply. */
    assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n"
                                      "RCPT TO:<a@test.example>\r\nDATA\r\n");
    assert_tls(&h, SMTPOUT_TLS_OUTCOME_REFUSED, "starttls-not-supported");
    /* No certificate was seen: nothing to say in verify_error. */
    assert_null(smtpout_tls_info_verify_error(h.tls));
    h_free(&h);
  }
}

static void test_require_starttls_refused_defers_never_bounces(void **st)
{
  const char *refusals[] = {"454 4.7.0 TLS not available\r\n",
                            "501 5.5.4 syntax\r\n", "554 5.7.0 no\r\n"};
  (void)st;
  for (size_t i = 0; i < 3; i++) {
    struct h h;
    open_with(&h, SMTPOUT_STARTTLS_REQUIRE, 0, EHLO_TLS);
    h_client(&h);
    h_server(&h, refusals[i]);
    /* A network attacker can forge the refusal: never a bounce. */
    assert_string_equal(h_client(&h), "QUIT\r\n");
    assert_deferred(&h, 0, "4.7.4");
    assert_non_null(strstr(h_find(&h, A)->text, "refused to start TLS"));
    assert_tls(&h, SMTPOUT_TLS_OUTCOME_REFUSED, "starttls-not-supported");
    assert_null(smtpout_tls_info_verify_error(h.tls));
    h_free(&h);
  }
}

static void test_starttls_421_is_a_host_failure_in_every_mode(void **st)
{
  int modes[] = {SMTPOUT_STARTTLS_OPTIONAL, SMTPOUT_STARTTLS_REQUIRE};
  (void)st;
  for (size_t i = 0; i < 2; i++) {
    struct h h;
    open_with(&h, modes[i], 0, EHLO_TLS);
    h_client(&h);
    h_server(&h, "421 4.3.2 going down\r\n");
    assert_string_equal(h_client(&h), "");
    assert_deferred(&h, 421, "4.3.2");
    assert_true(smtpout_session_is_done(h.s));
    /* The server did not start TLS: reported as such (RFC 8460 4.3.1). */
    assert_tls(&h, SMTPOUT_TLS_OUTCOME_REFUSED, "starttls-not-supported");
    h_free(&h);
  }
}

static void test_starttls_odd_replies_are_never_a_go_ahead(void **st)
{
  const char *odd[] = {"354 go on\r\n", "250 sure\r\n", "hello\r\n",
                       "220-multi\r\n221 bye\r\n", "221 bye\r\n",
                       "334 VXNlcm5hbWU6\r\n"};
  int modes[] = {SMTPOUT_STARTTLS_OPTIONAL, SMTPOUT_STARTTLS_REQUIRE};
  (void)st;
  for (size_t m = 0; m < 2; m++)
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
      struct h h;
      open_with(&h, modes[m], 1, EHLO_TLS);
      h_client(&h);
      h_server(&h, odd[i]);
      /* Dropped: no plaintext MAIL, no TLS. */
      assert_string_equal(h_client(&h), "");
      assert_true(smtpout_session_is_done(h.s));
      assert_deferred(&h, 0, "4.5.0");
      assert_int_equal(smtpout_tls_info_used(smtpout_session_tls_info(h.s)),
                       0);
      /* Every failed STARTTLS carries its RFC 8460 type: the server did
       * not start TLS. */
      assert_tls(&h, SMTPOUT_TLS_OUTCOME_REFUSED, "starttls-not-supported");
      h_free(&h);
    }
}

/* No reply to STARTTLS at all (a close, a timeout): the server did not
 * start TLS either. */
static void test_starttls_unanswered_is_starttls_not_supported(void **st)
{
  (void)st;
  for (int timeout = 0; timeout < 2; timeout++) {
    struct h h;
    open_with(&h, SMTPOUT_STARTTLS_OPTIONAL, 0, EHLO_TLS);
    assert_string_equal(h_client(&h), "STARTTLS\r\n");
    if (timeout)
      h_tick(&h, 5 * 60 * 1000);
    else
      assert_int_equal(smtpout_session_feed_eof(h.s, h.now), 0);
    assert_true(smtpout_session_is_done(h.s));
    assert_deferred(&h, 0, "4.4.2");
    assert_tls(&h, SMTPOUT_TLS_OUTCOME_REFUSED, "starttls-not-supported");
    assert_int_equal(smtpout_tls_info_fallback_permitted(h.tls), 0);
    h_free(&h);
  }
}

static void test_injected_clear_text_after_220_aborts(void **st)
{
  int modes[] = {SMTPOUT_STARTTLS_OPTIONAL, SMTPOUT_STARTTLS_REQUIRE};
  (void)st;
  for (size_t m = 0; m < 2; m++) {
    struct h h;
    open_with(&h, modes[m], 1, EHLO_TLS);
    h_client(&h);
    /* The injection of EAST test B_1 / CVE-2021-22947. */
    h_server(&h, "220 Ready to start TLS\r\n250-evil.example\r\n"
                 "250 AUTH PLAIN\r\n");
    assert_true(smtpout_session_is_done(h.s));
    assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_PROTOCOL);
    assert_non_null(strstr(smtpout_session_close_text(h.s), "injection"));
    assert_deferred(&h, 0, "4.7.5");
    /* Nothing was parsed: the injected AUTH never became a capability. */
    assert_int_equal(smtpout_session_capabilities(h.s) & SMTPOUT_CAP_AUTH, 0);
    /* And no plaintext retry: this is an attack, not a broken server. */
    assert_int_equal(smtpout_tls_info_fallback_permitted(
                         smtpout_session_tls_info(h.s)),
                     0);
    assert_string_equal(h_client(&h), "");
    /* The negotiation failed after the go-ahead: validation-failure
     * (RFC 8460 4.3.3), as a handshake failure. */
    assert_tls(&h, SMTPOUT_TLS_OUTCOME_HANDSHAKE_FAILED, "validation-failure");
    assert_null(smtpout_tls_info_verify_error(h.tls));
    h_free(&h);
  }
}

static void test_partial_injected_line_after_220_aborts(void **st)
{
  struct h h;
  (void)st;
  open_with(&h, SMTPOUT_STARTTLS_OPTIONAL, 1, EHLO_TLS);
  h_client(&h);
  h_server(&h, "220 go\r\n2");
  assert_true(smtpout_session_is_done(h.s));
  assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_PROTOCOL);
  assert_tls(&h, SMTPOUT_TLS_OUTCOME_HANDSHAKE_FAILED, "validation-failure");
  h_free(&h);
}

static void run_handshake_failure(int mode, int expect_fallback,
                                  const char *garbage)
{
  struct h h;
  open_with(&h, mode, 0, EHLO_TLS);
  h_client(&h);
  h_server(&h, "220 go ahead\r\n");
  /* The ClientHello went out... */
  const char *hello = h_client(&h);
  assert_true(h.outlen > 40);
  assert_int_equal((unsigned char)hello[0], 0x16); /* TLS handshake record */
  /* ...and the server answered with garbage, or closed. */
  if (garbage)
    h_server(&h, garbage);
  else
    smtpout_session_feed_eof(h.s, h.now);
  assert_true(smtpout_session_is_done(h.s));
  assert_deferred(&h, 0, "4.7.5");
  assert_tls(&h, SMTPOUT_TLS_OUTCOME_HANDSHAKE_FAILED, "validation-failure");
  /* No certificate was checked: verify_error says nothing; why the
   * handshake failed is the session's error text. */
  assert_null(smtpout_tls_info_verify_error(h.tls));
  assert_non_null(
      strstr(smtpout_session_close_text(h.s), "TLS handshake with host"));
  assert_int_equal(smtpout_tls_info_fallback_permitted(h.tls),
                   expect_fallback);
  assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_TLS);
  assert_string_equal(h_client(&h), "");
  h_free(&h);
}

static void test_handshake_failure_permits_fallback_only_when_optional(
    void **st)
{
  (void)st;
  run_handshake_failure(SMTPOUT_STARTTLS_OPTIONAL, 1,
                        "HTTP/1.1 400 Bad Request\r\n\r\n");
  run_handshake_failure(SMTPOUT_STARTTLS_REQUIRE, 0,
                        "HTTP/1.1 400 Bad Request\r\n\r\n");
  run_handshake_failure(SMTPOUT_STARTTLS_OPTIONAL, 1, NULL);
  run_handshake_failure(SMTPOUT_STARTTLS_REQUIRE, 0, NULL);
}

static void test_handshake_timeout(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  smtpout_session_set_tls_policy(h.s, SMTPOUT_STARTTLS_OPTIONAL, 0);
  smtpout_session_set_timeout(h.s, SMTPOUT_TIMEOUT_TLS, 2000);
  h_submit(&h, A, NULL);
  h_open(&h, EHLO_TLS);
  h_client(&h);
  h_server(&h, "220 go ahead\r\n");
  h_client(&h);
  assert_int_equal(smtpout_session_expiry(h.s), h.now + 2000);
  h_tick(&h, 2000);
  /* A handshake failure like any other (docs/policy.md): 4.7.5, not
   * 4.4.2. */
  assert_deferred(&h, 0, "4.7.5");
  assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_TIMEOUT);
  assert_non_null(strstr(smtpout_session_close_text(h.s), "timed out"));
  assert_tls(&h, SMTPOUT_TLS_OUTCOME_HANDSHAKE_FAILED, "validation-failure");
  assert_null(smtpout_tls_info_verify_error(h.tls));
  assert_int_equal(smtpout_tls_info_fallback_permitted(h.tls), 1);
  h_free(&h);
}

static void test_plaintext_fallback_session_skips_starttls(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  smtpout_session_set_tls_policy(h.s, SMTPOUT_STARTTLS_OPTIONAL, 0);
  assert_int_equal(smtpout_session_set_plaintext_fallback(h.s), 0);
  h_submit(&h, A, NULL);
  h_open(&h, EHLO_TLS);
  assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n"
                                    "RCPT TO:<a@test.example>\r\nDATA\r\n");
  assert_tls(&h, SMTPOUT_TLS_OUTCOME_DISABLED, NULL);
  assert_int_equal(smtpout_tls_info_plaintext_fallback(h.tls), 1);
  h_free(&h);
}

static void test_plaintext_fallback_refused_under_require(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  smtpout_session_set_tls_policy(h.s, SMTPOUT_STARTTLS_REQUIRE, 0);
  smtpout_session_set_plaintext_fallback(h.s);
  h_submit(&h, A, NULL);
  h_open(&h, EHLO_TLS);
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_deferred(&h, 0, "4.7.5");
  assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_TLS_POLICY);
  h_free(&h);
}

/* A session's own trust anchors are read when the host sets them, never
 * while the network is read: a device is refused unread (GnuTLS would
 * read it until memory ran out), and the session keeps the anchors it
 * had.  That STARTTLS then fails for a local TLS problem with 4.7.0 and
 * no plaintext retry is test_fake_tls's. */
static void test_unusable_ca_file_is_refused_without_reading_it(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  smtpout_session_set_tls_policy(h.s, SMTPOUT_STARTTLS_OPTIONAL, 0);
  assert_int_equal(smtpout_session_set_ca_file(h.s, "/dev/zero"),
                   SMTPOUT_ERR_TLS_SETUP);
  assert_int_equal(smtpout_session_set_ca_file(h.s, "/nonexistent/ca.pem"),
                   SMTPOUT_ERR_TLS_SETUP);
  h_submit(&h, A, NULL);
  h_open(&h, EHLO_TLS);
  assert_string_equal(h_client(&h), "STARTTLS\r\n");
  h_server(&h, "220 go ahead\r\n");
  /* The configuration's anchors are in use: the ClientHello goes out. */
  assert_false(smtpout_session_is_done(h.s));
  assert_int_equal((unsigned char)h_client(&h)[0], 0x16);
  h_free(&h);
}

static void test_policy_is_fixed_once_ehlo_answered(void **st)
{
  struct h h;
  (void)st;
  open_with(&h, SMTPOUT_STARTTLS_OPTIONAL, 0, "250 PIPELINING\r\n");
  assert_int_equal(smtpout_session_set_tls_policy(
                       h.s, SMTPOUT_STARTTLS_REQUIRE, 0),
                   SMTPOUT_ERR_INVALID_STATE);
  assert_int_equal(smtpout_session_policy_starttls(h.s),
                   SMTPOUT_STARTTLS_OPTIONAL);
  h_free(&h);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_disable_never_sends_starttls_even_when_offered),
    cmocka_unit_test(test_optional_without_starttls_goes_plaintext),
    cmocka_unit_test(test_require_defers_when_starttls_not_advertised),
    cmocka_unit_test(test_require_defers_after_helo_fallback),
    cmocka_unit_test(test_starttls_is_sent_alone_even_with_pipelining),
    cmocka_unit_test(test_optional_starttls_refused_continues_in_plaintext),
    cmocka_unit_test(test_require_starttls_refused_defers_never_bounces),
    cmocka_unit_test(test_starttls_421_is_a_host_failure_in_every_mode),
    cmocka_unit_test(test_starttls_odd_replies_are_never_a_go_ahead),
    cmocka_unit_test(test_starttls_unanswered_is_starttls_not_supported),
    cmocka_unit_test(test_injected_clear_text_after_220_aborts),
    cmocka_unit_test(test_partial_injected_line_after_220_aborts),
    cmocka_unit_test(
        test_handshake_failure_permits_fallback_only_when_optional),
    cmocka_unit_test(test_handshake_timeout),
    cmocka_unit_test(test_plaintext_fallback_session_skips_starttls),
    cmocka_unit_test(test_plaintext_fallback_refused_under_require),
    cmocka_unit_test(test_unusable_ca_file_is_refused_without_reading_it),
    cmocka_unit_test(test_policy_is_fixed_once_ehlo_answered),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
