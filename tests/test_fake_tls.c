/*
 * test_fake_tls.c — the whole table of docs/policy.md ("What the session
 * does"), row by row, in each mode (disable, optional, require), against
 * a scripted server and a scripted TLS backend (fake_tls.h): the
 * handshake and the certificate verdict are what each row says, so every
 * row, the certificate rows included, runs in microseconds.  The same
 * table runs against real handshakes in tests/integration/
 * test_tls_matrix.py and test_tls_faults.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fake_tls.h"
#include "harness.h"
#include "session_int.h"

static const char *const A = "a@test.example";

#define EHLO_TLS "250-PIPELINING\r\n250 STARTTLS\r\n"
#define EHLO_PLAIN "250 PIPELINING\r\n"
#define TRANSACTION                                                          \
  "MAIL FROM:<sender@test.example>\r\nRCPT TO:<a@test.example>\r\nDATA\r\n"

static const int modes[] = {SMTPOUT_STARTTLS_DISABLE,
                            SMTPOUT_STARTTLS_OPTIONAL,
                            SMTPOUT_STARTTLS_REQUIRE};
#define NMODES 3

/* A session on the fake backend under `mode` (and allow-invalid-certs),
 * one message to A, QUIT when done, greeted with `caps`. */
static void open_row(struct h *h, const char *mx, int mode, int allow,
                     const char *caps)
{
  h_init(h, mx, NULL);
  session_set_tls_backend(h->s, &fake_tls_backend);
  assert_int_equal(smtpout_session_set_tls_policy(h->s, mode, allow), 0);
  h_submit(h, A, NULL);
  assert_int_equal(smtpout_session_quit(h->s), 0);
  h_open(h, caps);
}

/* The server's 220 to STARTTLS; the fake ClientHello follows at once. */
static void go_ahead(struct h *h)
{
  assert_string_equal(h_client(h), "STARTTLS\r\n");
  h_server(h, "220 2.0.0 ready\r\n");
  assert_string_equal(h_client(h), FAKE_CLIENT_HELLO);
}

/* The server's flight; with a handshake that succeeds and a certificate
 * the policy takes, the session greets again over TLS. */
static void server_hello(struct h *h)
{
  h_server(h, FAKE_SERVER_HELLO);
}

/* The rest of a delivery: MAIL, RCPT, DATA, the body, the 250. */
static void deliver(struct h *h, const char *caps_after)
{
  if (caps_after) {
    assert_string_equal(h_client(h), "EHLO client.example\r\n");
    h_server(h, caps_after);
  }
  assert_string_equal(h_client(h), TRANSACTION);
  h_server(h, "250 ok\r\n250 ok\r\n354 go\r\n");
  assert_string_equal(h_client(h), "Subject: t\r\n\r\nhello\r\n.\r\nQUIT\r\n");
  h_server(h, "250 2.0.0 queued\r\n221 bye\r\n");
  h_client(h);
  assert_true(smtpout_session_is_done(h->s));
}

static const struct h_result *result(const struct h *h)
{
  const struct h_result *r = h_find(h, A);
  assert_non_null(r);
  return r;
}

static void assert_result(const struct h *h, int status, int code,
                          const char *enhanced)
{
  const struct h_result *r = result(h);
  assert_int_equal(r->status, status);
  assert_int_equal(r->code, code);
  assert_string_equal(r->enhanced, enhanced);
}

/* The TLS outcome the host was told, once, and its RFC 8460 type. */
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

static void assert_failure_says(const struct h *h, const char *fragment)
{
  const char *f = smtpout_tls_info_failure(h->tls);
  assert_non_null(f);
  assert_non_null(strstr(f, fragment));
}

/* Row: the server advertises STARTTLS (and the handshake and the
 * certificate are good: the last row). */
static void test_starttls_advertised(void **st)
{
  (void)st;
  for (int i = 0; i < NMODES; i++) {
    struct h h;
    fake_tls_reset();
    open_row(&h, "mx.test.example", modes[i], 0, EHLO_TLS);
    if (modes[i] == SMTPOUT_STARTTLS_DISABLE) {
      /* STARTTLS never sent; plaintext. */
      deliver(&h, NULL);
      assert_tls(&h, SMTPOUT_TLS_OUTCOME_DISABLED, NULL);
      assert_int_equal(fake_tls.conns, 0);
    } else {
      go_ahead(&h);
      server_hello(&h);
      deliver(&h, "250-mx.test.example\r\n250 PIPELINING\r\n");
      assert_tls(&h, SMTPOUT_TLS_OUTCOME_OK, NULL);
      assert_int_equal(smtpout_tls_info_used(h.tls), 1);
      assert_int_equal(smtpout_tls_info_verified(h.tls), 1);
      assert_string_equal(smtpout_tls_info_version(h.tls), "TLS1.3");
      assert_null(smtpout_tls_info_failure(h.tls));
      /* SNI and the reference identity are the MX name. */
      assert_string_equal(fake_tls.sni, "mx.test.example");
      assert_string_equal(fake_tls.verified_name, "mx.test.example");
    }
    assert_result(&h, SMTPOUT_STATUS_DELIVERED, 250, "2.0.0");
    assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_NONE);
    h_free(&h);
  }
}

/* Row: STARTTLS not advertised (or EHLO refused and HELO used). */
static void test_starttls_not_advertised(void **st)
{
  (void)st;
  for (int helo = 0; helo < 2; helo++)
    for (int i = 0; i < NMODES; i++) {
      struct h h;
      fake_tls_reset();
      if (helo) {
        h_init(&h, "mx.test.example", NULL);
        session_set_tls_backend(h.s, &fake_tls_backend);
        smtpout_session_set_tls_policy(h.s, modes[i], 0);
        h_submit(&h, A, NULL);
        smtpout_session_quit(h.s);
        h_start(&h);
        h_server(&h, "220 hi\r\n");
        h_client(&h);
        h_server(&h, "502 no EHLO here\r\n");
        assert_string_equal(h_client(&h), "HELO client.example\r\n");
        h_server(&h, "250 hello\r\n");
      } else {
        open_row(&h, "mx.test.example", modes[i], 0, EHLO_PLAIN);
      }
      if (modes[i] == SMTPOUT_STARTTLS_REQUIRE) {
        /* No MAIL; QUIT; deferred 4.7.4. */
        assert_string_equal(h_client(&h), "QUIT\r\n");
        assert_result(&h, SMTPOUT_STATUS_DEFERRED, 0, "4.7.4");
        assert_string_equal(result(&h)->text,
                            "TLS is required, but was not offered by host "
                            "mx.test.example");
        assert_int_equal(result(&h)->try_another_address, 1);
        assert_int_equal(smtpout_session_close_reason(h.s),
                         SMTPOUT_CLOSE_TLS_POLICY);
      } else if (helo) {
        /* Plaintext, one command at a time (no PIPELINING after HELO). */
        assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n");
      } else {
        deliver(&h, NULL);
        assert_result(&h, SMTPOUT_STATUS_DELIVERED, 250, "2.0.0");
      }
      if (modes[i] == SMTPOUT_STARTTLS_DISABLE) {
        assert_tls(&h, SMTPOUT_TLS_OUTCOME_DISABLED, NULL);
        assert_null(smtpout_tls_info_failure(h.tls));
      } else {
        assert_tls(&h, SMTPOUT_TLS_OUTCOME_NOT_OFFERED,
                   "starttls-not-supported");
        assert_failure_says(&h, "did not offer STARTTLS");
      }
      assert_int_equal(fake_tls.conns, 0);
      h_free(&h);
    }
}

/* Row: STARTTLS answered 4xx or 5xx (not 421). */
static void test_starttls_refused(void **st)
{
  static const char *const refusals[] = {"454 4.7.0 TLS not available\r\n",
                                         "554 5.7.0 no\r\n"};
  (void)st;
  for (size_t k = 0; k < 2; k++)
    for (int i = 1; i < NMODES; i++) {
      struct h h;
      fake_tls_reset();
      open_row(&h, "mx.test.example", modes[i], 0, EHLO_TLS);
      assert_string_equal(h_client(&h), "STARTTLS\r\n");
      h_server(&h, refusals[k]);
      assert_tls(&h, SMTPOUT_TLS_OUTCOME_REFUSED, "starttls-not-supported");
      /* The reply, which only the trace had before: the failure text. */
      assert_failure_says(&h, k ? "554 no" : "454 TLS not available");
      assert_null(smtpout_tls_info_verify_error(h.tls));
      if (modes[i] == SMTPOUT_STARTTLS_OPTIONAL) {
        /* Plaintext on the same connection. */
        deliver(&h, NULL);
        assert_result(&h, SMTPOUT_STATUS_DELIVERED, 250, "2.0.0");
      } else {
        /* Deferred even for a 5xx: an attacker can forge it. */
        assert_string_equal(h_client(&h), "QUIT\r\n");
        assert_result(&h, SMTPOUT_STATUS_DEFERRED, 0, "4.7.4");
        assert_non_null(strstr(result(&h)->text, "refused to start TLS"));
        assert_int_equal(smtpout_session_close_reason(h.s),
                         SMTPOUT_CLOSE_TLS_POLICY);
      }
      assert_int_equal(fake_tls.conns, 0);
      h_free(&h);
    }
}

/* Row: STARTTLS answered 421. */
static void test_starttls_421(void **st)
{
  (void)st;
  for (int i = 1; i < NMODES; i++) {
    struct h h;
    fake_tls_reset();
    open_row(&h, "mx.test.example", modes[i], 0, EHLO_TLS);
    h_client(&h);
    h_server(&h, "421 4.3.2 going down\r\n");
    assert_string_equal(h_client(&h), "");
    assert_true(smtpout_session_is_done(h.s));
    assert_result(&h, SMTPOUT_STATUS_DEFERRED, 421, "4.3.2");
    assert_int_equal(result(&h)->try_another_address, 1);
    assert_tls(&h, SMTPOUT_TLS_OUTCOME_REFUSED, "starttls-not-supported");
    assert_failure_says(&h, "421 going down");
    assert_int_equal(smtpout_session_close_reason(h.s),
                     SMTPOUT_CLOSE_SERVICE_UNAVAILABLE);
    h_free(&h);
  }
}

/* Row: STARTTLS answered 3xx, another 2xx, 221, or a malformed reply:
 * never a go-ahead. */
static void test_starttls_odd_reply(void **st)
{
  static const char *const odd[] = {"354 go on\r\n", "334 VXNlcm5hbWU6\r\n",
                                    "250 sure\r\n", "221 bye\r\n",
                                    "hello\r\n"};
  (void)st;
  for (size_t k = 0; k < sizeof(odd) / sizeof(odd[0]); k++)
    for (int i = 1; i < NMODES; i++) {
      struct h h;
      fake_tls_reset();
      open_row(&h, "mx.test.example", modes[i], 1, EHLO_TLS);
      h_client(&h);
      h_server(&h, odd[k]);
      assert_string_equal(h_client(&h), "");
      assert_true(smtpout_session_is_done(h.s));
      assert_result(&h, SMTPOUT_STATUS_DEFERRED, 0, "4.5.0");
      assert_tls(&h, SMTPOUT_TLS_OUTCOME_REFUSED, "starttls-not-supported");
      assert_int_equal(smtpout_session_close_reason(h.s),
                       SMTPOUT_CLOSE_PROTOCOL);
      assert_int_equal(fake_tls.conns, 0);
      h_free(&h);
    }
}

/* Row: the connection closes, or the STARTTLS reply times out. */
static void test_starttls_unanswered(void **st)
{
  (void)st;
  for (int timeout = 0; timeout < 2; timeout++)
    for (int i = 1; i < NMODES; i++) {
      struct h h;
      fake_tls_reset();
      open_row(&h, "mx.test.example", modes[i], 0, EHLO_TLS);
      h_client(&h);
      if (timeout)
        h_tick(&h, 5 * 60 * 1000);
      else
        assert_int_equal(smtpout_session_feed_eof(h.s, h.now), 0);
      assert_true(smtpout_session_is_done(h.s));
      assert_result(&h, SMTPOUT_STATUS_DEFERRED, 0, "4.4.2");
      assert_tls(&h, SMTPOUT_TLS_OUTCOME_REFUSED, "starttls-not-supported");
      assert_failure_says(&h, timeout ? "timed out" : "connection closed");
      assert_int_equal(smtpout_session_close_reason(h.s),
                       timeout ? SMTPOUT_CLOSE_TIMEOUT
                               : SMTPOUT_CLOSE_CONNECTION_CLOSED);
      h_free(&h);
    }
}

/* Row: clear text after the 220 in the same read: response injection. */
static void test_clear_text_after_220_is_injection(void **st)
{
  (void)st;
  for (int i = 1; i < NMODES; i++) {
    struct h h;
    fake_tls_reset();
    open_row(&h, "mx.test.example", modes[i], 1, EHLO_TLS);
    h_client(&h);
    h_server(&h, "220 go\r\n250-evil.example\r\n250 AUTH PLAIN\r\n");
    assert_true(smtpout_session_is_done(h.s));
    assert_string_equal(h_client(&h), "");
    assert_result(&h, SMTPOUT_STATUS_DEFERRED, 0, "4.7.5");
    assert_tls(&h, SMTPOUT_TLS_OUTCOME_HANDSHAKE_FAILED,
               "validation-failure");
    assert_failure_says(&h, "response injection");
    /* An attack, not a broken server: no plaintext retry. */
    assert_int_equal(smtpout_tls_info_fallback_permitted(h.tls), 0);
    assert_int_equal(smtpout_session_close_reason(h.s),
                     SMTPOUT_CLOSE_PROTOCOL);
    h_free(&h);
  }
}

/* Row: the handshake fails (an alert, garbage, EOF, a timeout). */
static void test_handshake_failure(void **st)
{
  enum { ALERT, GARBAGE, CLOSED, TIMEOUT, NKINDS };
  (void)st;
  for (int kind = 0; kind < NKINDS; kind++)
    for (int i = 1; i < NMODES; i++) {
      struct h h;
      fake_tls_reset();
      fake_tls.handshake = FAKE_HANDSHAKE_ALERT;
      open_row(&h, "mx.test.example", modes[i], 0, EHLO_TLS);
      go_ahead(&h);
      if (kind == ALERT)
        server_hello(&h);
      else if (kind == GARBAGE)
        h_server(&h, "HTTP/1.1 400 Bad Request\r\n\r\n");
      else if (kind == CLOSED)
        assert_int_equal(smtpout_session_feed_eof(h.s, h.now), 0);
      else
        h_tick(&h, 3 * 60 * 1000);
      assert_true(smtpout_session_is_done(h.s));
      assert_string_equal(h_client(&h), "");
      /* Every handshake failure is 4.7.5, a timeout included. */
      assert_result(&h, SMTPOUT_STATUS_DEFERRED, 0, "4.7.5");
      assert_tls(&h, SMTPOUT_TLS_OUTCOME_HANDSHAKE_FAILED,
                 "validation-failure");
      /* No certificate was judged: the reason is the failure text. */
      assert_null(smtpout_tls_info_verify_error(h.tls));
      assert_failure_says(&h, "TLS handshake with host mx.test.example");
      /* A new connection without STARTTLS, under optional only. */
      assert_int_equal(smtpout_tls_info_fallback_permitted(h.tls),
                       modes[i] == SMTPOUT_STARTTLS_OPTIONAL);
      assert_int_equal(smtpout_session_close_reason(h.s),
                       kind == TIMEOUT ? SMTPOUT_CLOSE_TIMEOUT
                                       : SMTPOUT_CLOSE_TLS);
      h_free(&h);
    }
}

/* Rows: the certificate is invalid, with allow-invalid-certs false (QUIT
 * over TLS, 4.7.5, never a fallback) and true (delivered, unverified). */
static void test_invalid_certificate(void **st)
{
  static const struct {
    int cert;
    const char *mx;
    const char *tlsrpt;
  } certs[] = {
    {FAKE_CERT_EXPIRED, "mx.test.example", "certificate-expired"},
    {FAKE_CERT_UNTRUSTED, "mx.test.example", "certificate-not-trusted"},
    {FAKE_CERT_WRONG_NAME, "mx.test.example", "certificate-host-mismatch"},
    /* An IP literal has no name to verify against. */
    {FAKE_CERT_VALID, "192.0.2.1", "certificate-host-mismatch"},
  };
  (void)st;
  for (size_t k = 0; k < sizeof(certs) / sizeof(certs[0]); k++)
    for (int allow = 0; allow < 2; allow++)
      for (int i = 1; i < NMODES; i++) {
        struct h h;
        fake_tls_reset();
        fake_tls.cert = certs[k].cert;
        open_row(&h, certs[k].mx, modes[i], allow, EHLO_TLS);
        go_ahead(&h);
        server_hello(&h);
        assert_tls(&h, SMTPOUT_TLS_OUTCOME_OK, certs[k].tlsrpt);
        assert_int_equal(smtpout_tls_info_used(h.tls), 1);
        assert_int_equal(smtpout_tls_info_verified(h.tls), 0);
        assert_non_null(smtpout_tls_info_verify_error(h.tls));
        assert_null(smtpout_tls_info_failure(h.tls));
        assert_int_equal(smtpout_tls_info_fallback_permitted(h.tls), 0);
        if (allow) {
          deliver(&h, "250-mx.test.example\r\n250 PIPELINING\r\n");
          assert_result(&h, SMTPOUT_STATUS_DELIVERED, 250, "2.0.0");
        } else {
          /* QUIT goes out over TLS (RFC 3207 4.1): through the fake
           * records, then the close_notify after its reply. */
          assert_string_equal(h_client(&h), "QUIT\r\n");
          assert_result(&h, SMTPOUT_STATUS_DEFERRED, 0, "4.7.5");
          assert_non_null(
              strstr(result(&h)->text, "server certificate not verified"));
          assert_int_equal(smtpout_session_close_reason(h.s),
                           SMTPOUT_CLOSE_TLS_POLICY);
          h_server(&h, "221 bye\r\n");
          assert_string_equal(h_client(&h), FAKE_CLOSE_NOTIFY);
        }
        h_free(&h);
      }
}

/* Not a row of the server's: the trust anchors could not be loaded.  A
 * local problem: 4.7.0, no TLS outcome, no plaintext retry. */
static void test_trust_anchors_that_cannot_be_loaded_defer_4_7_0(void **st)
{
  (void)st;
  for (int i = 1; i < NMODES; i++) {
    struct h h;
    fake_tls_reset();
    fake_tls.conn_new_error = SMTPOUT_ERR_TLS_SETUP;
    open_row(&h, "mx.test.example", modes[i], 0, EHLO_TLS);
    assert_string_equal(h_client(&h), "STARTTLS\r\n");
    h_server(&h, "220 go ahead\r\n");
    assert_true(smtpout_session_is_done(h.s));
    assert_result(&h, SMTPOUT_STATUS_DEFERRED, 0, "4.7.0");
    assert_int_equal(smtpout_session_close_reason(h.s),
                     SMTPOUT_CLOSE_TLS_SETUP);
    assert_int_equal(h.tls_calls, 0);
    assert_int_equal(smtpout_tls_info_fallback_permitted(
                         smtpout_session_tls_info(h.s)),
                     0);
    h_free(&h);
  }
}

/* A plaintext fallback session never sends STARTTLS, and runs only
 * under optional. */
static void test_plaintext_fallback_session(void **st)
{
  (void)st;
  for (int i = 0; i < NMODES; i++) {
    struct h h;
    fake_tls_reset();
    h_init(&h, "mx.test.example", NULL);
    session_set_tls_backend(h.s, &fake_tls_backend);
    smtpout_session_set_tls_policy(h.s, modes[i], 0);
    assert_int_equal(smtpout_session_set_plaintext_fallback(h.s), 0);
    h_submit(&h, A, NULL);
    smtpout_session_quit(h.s);
    h_open(&h, EHLO_TLS);
    if (modes[i] == SMTPOUT_STARTTLS_OPTIONAL) {
      deliver(&h, NULL);
      assert_result(&h, SMTPOUT_STATUS_DELIVERED, 250, "2.0.0");
    } else {
      assert_string_equal(h_client(&h), "QUIT\r\n");
      assert_result(&h, SMTPOUT_STATUS_DEFERRED, 0, "4.7.5");
      assert_int_equal(smtpout_session_close_reason(h.s),
                       SMTPOUT_CLOSE_TLS_POLICY);
    }
    assert_tls(&h, SMTPOUT_TLS_OUTCOME_DISABLED, NULL);
    assert_int_equal(smtpout_tls_info_plaintext_fallback(h.tls), 1);
    assert_int_equal(fake_tls.conns, 0);
    h_free(&h);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_starttls_advertised),
    cmocka_unit_test(test_starttls_not_advertised),
    cmocka_unit_test(test_starttls_refused),
    cmocka_unit_test(test_starttls_421),
    cmocka_unit_test(test_starttls_odd_reply),
    cmocka_unit_test(test_starttls_unanswered),
    cmocka_unit_test(test_clear_text_after_220_is_injection),
    cmocka_unit_test(test_handshake_failure),
    cmocka_unit_test(test_invalid_certificate),
    cmocka_unit_test(test_trust_anchors_that_cannot_be_loaded_defer_4_7_0),
    cmocka_unit_test(test_plaintext_fallback_session),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
