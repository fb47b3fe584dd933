/*
 * test_fake_tls.c — the whole table of docs/policy.md ("What the session
 * does"), row by row, in each mode (disable, optional, require), against
 * a scripted server and a scripted TLS backend (fake_tls.h): the
 * handshake and the certificate verdict are what each row says, so every
 * row, the certificate rows included, runs in microseconds.  The same
 * table runs against real handshakes in tests/integration/
 * test_tls_matrix.py and test_tls_faults.py.
 *
 * Then the same rows for sessions made for a route's hop
 * (smtpout_session_new_for_hop()), one per TLS requirement (DANE,
 * ENCRYPT, PKIX, RELAXED, LOCAL), the hops coming from scripted routes
 * (hopkit.h): what each requirement makes of each row
 * (docs/policy.md, "Sessions made for a hop"), that starttls = disable
 * and allow-invalid-certs = true relax none of DANE and PKIX, and
 * REQUIRETLS.  Real handshakes against TLSA records are in
 * tests/test_session_dane.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_tls.h"
#include "harness.h"
#include "hopkit.h"
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

/* ------------------------------------------------------------------ */
/* Sessions made for a hop                                              */

/* What the server does, row by row (docs/policy.md). */
enum row { ROW_OK, ROW_NOT_OFFERED, ROW_REFUSED, ROW_HANDSHAKE, ROW_BAD_CERT, NROWS };

/* What the client does about it. */
enum act {
  TLS_DELIVERED,   /* delivered over TLS */
  PLAIN_DELIVERED, /* delivered in plaintext on the same connection */
  QUIT_CLEAR,      /* QUIT in clear, recipients deferred */
  QUIT_TLS,        /* QUIT over TLS, recipients deferred */
  DROPPED          /* the connection dropped, recipients deferred */
};

struct cell {
  int act;          /* enum act */
  const char *tlsrpt;
  int auth;         /* enum smtpout_tls_auth */
  int fallback;     /* smtpout_tls_info_fallback_permitted() */
};

#define SNS "starttls-not-supported"
#define VF "validation-failure"
#define NONE SMTPOUT_TLS_AUTH_NONE
#define PKIX SMTPOUT_TLS_AUTH_PKIX

static const struct {
  int kind; /* enum hk_kind */
  const char *mx;
  struct cell rows[NROWS];
} table[] = {
  {HK_DANE, "mx.dane.test",
   {{TLS_DELIVERED, NULL, SMTPOUT_TLS_AUTH_DANE_EE, 0},
    {QUIT_CLEAR, SNS, NONE, 0},
    {QUIT_CLEAR, SNS, NONE, 0},
    {DROPPED, VF, NONE, 0},
    {QUIT_TLS, VF, NONE, 0}}},
  {HK_ENCRYPT, "mx.encrypt.test",
   {{TLS_DELIVERED, "tlsa-invalid", PKIX, 0},
    {QUIT_CLEAR, SNS, NONE, 0},
    {QUIT_CLEAR, SNS, NONE, 0},
    {DROPPED, VF, NONE, 0},
    /* Not judged: the TLSA set authenticates nothing (RFC 7672 3). */
    {TLS_DELIVERED, "tlsa-invalid", NONE, 0}}},
  {HK_PKIX, "mx.sts.test",
   {{TLS_DELIVERED, NULL, PKIX, 0},
    {QUIT_CLEAR, SNS, NONE, 0},
    {QUIT_CLEAR, SNS, NONE, 0},
    {DROPPED, VF, NONE, 0},
    {QUIT_TLS, "sts-webpki-invalid", NONE, 0}}},
  /* TLS-Required: No: STARTTLS when offered, any certificate, the
   * plaintext fallback allowed (RFC 8689 5). */
  {HK_RELAXED, "mx.plain.test",
   {{TLS_DELIVERED, NULL, PKIX, 0},
    {PLAIN_DELIVERED, SNS, NONE, 0},
    {PLAIN_DELIVERED, SNS, NONE, 0},
    {DROPPED, VF, NONE, 1},
    {TLS_DELIVERED, "certificate-not-trusted", NONE, 0}}},
  /* The local policy: the built-in optional, invalid certificates
   * refused. */
  {HK_LOCAL, "mx.plain.test",
   {{TLS_DELIVERED, NULL, PKIX, 0},
    {PLAIN_DELIVERED, SNS, NONE, 0},
    {PLAIN_DELIVERED, SNS, NONE, 0},
    {DROPPED, VF, NONE, 1},
    {QUIT_TLS, "certificate-not-trusted", NONE, 0}}},
};

/* A session on the fake backend for a hop of `kind`, one message to A,
 * QUIT when done, greeted with `caps`. */
static void open_hop(struct h *h, struct hopkit *k, smtpout_config *cfg,
                     int kind, uint32_t flags, const char *caps)
{
  const smtpout_hop *hop = hk_hop(k, cfg, kind, flags);
  h_init_hop(h, hop, cfg);
  session_set_tls_backend(h->s, &fake_tls_backend);
  h_submit(h, A, NULL);
  assert_int_equal(smtpout_session_quit(h->s), 0);
  h_open(h, caps);
}

/* Plays row `row` against a hop session of `kind` under `cfg`, and checks
 * what the cell says, down to the hop's outcome. */
static void play(smtpout_config *cfg, size_t t, int row)
{
  const struct cell *c = &table[t].rows[row];
  struct h h;
  struct hopkit k;
  fake_tls_reset();
  if (row == ROW_HANDSHAKE)
    fake_tls.handshake = FAKE_HANDSHAKE_ALERT;
  if (row == ROW_BAD_CERT) {
    fake_tls.cert = FAKE_CERT_UNTRUSTED;
    fake_tls.dane = FAKE_DANE_NO_MATCH;
  }
  open_hop(&h, &k, cfg, table[t].kind, 0,
           row == ROW_NOT_OFFERED ? EHLO_PLAIN : EHLO_TLS);
  if (row == ROW_REFUSED) {
    assert_string_equal(h_client(&h), "STARTTLS\r\n");
    h_server(&h, "454 4.7.0 TLS not available\r\n");
  } else if (row != ROW_NOT_OFFERED) {
    go_ahead(&h);
    server_hello(&h);
  }
  switch (c->act) {
  case TLS_DELIVERED:
    deliver(&h, "250-mx\r\n250 PIPELINING\r\n");
    break;
  case PLAIN_DELIVERED:
    deliver(&h, NULL);
    break;
  case QUIT_CLEAR:
  case QUIT_TLS:
    assert_string_equal(h_client(&h), "QUIT\r\n");
    h_server(&h, "221 bye\r\n");
    assert_string_equal(h_client(&h),
                        c->act == QUIT_TLS ? FAKE_CLOSE_NOTIFY : "");
    break;
  default:
    assert_string_equal(h_client(&h), "");
  }
  assert_true(smtpout_session_is_done(h.s));
  int delivered = c->act == TLS_DELIVERED || c->act == PLAIN_DELIVERED;
  if (delivered) {
    assert_result(&h, SMTPOUT_STATUS_DELIVERED, 250, "2.0.0");
  } else {
    /* Every TLS failure on a hop is 4.7.5, and another address may take
     * the recipient. */
    assert_result(&h, SMTPOUT_STATUS_DEFERRED, 0, "4.7.5");
    assert_int_equal(result(&h)->try_another_address, 1);
  }
  static const int outcomes[] = {
    [ROW_OK] = SMTPOUT_TLS_OUTCOME_OK,
    [ROW_NOT_OFFERED] = SMTPOUT_TLS_OUTCOME_NOT_OFFERED,
    [ROW_REFUSED] = SMTPOUT_TLS_OUTCOME_REFUSED,
    [ROW_HANDSHAKE] = SMTPOUT_TLS_OUTCOME_HANDSHAKE_FAILED,
    [ROW_BAD_CERT] = SMTPOUT_TLS_OUTCOME_OK};
  assert_tls(&h, outcomes[row], c->tlsrpt);
  assert_int_equal(smtpout_tls_info_auth(h.tls), c->auth);
  assert_int_equal(smtpout_tls_info_fallback_permitted(h.tls), c->fallback);
  assert_int_equal(smtpout_tls_info_requirement(h.tls),
                   smtpout_hop_tls_requirement(k.hop));
  /* The certificate carries the MX host name; under DANE nothing is
   * judged by PKIX, elsewhere nothing by DANE. */
  int dane = table[t].kind == HK_DANE;
  int judged = row == ROW_OK || row == ROW_BAD_CERT;
  assert_int_equal(fake_tls.dane_calls, dane && judged);
  assert_int_equal(fake_tls.verify_calls, !dane && judged);
  if (!dane && judged)
    assert_string_equal(fake_tls.verified_name, table[t].mx);
  if (fake_tls.conns > 0) {
    assert_string_equal(fake_tls.sni, table[t].mx);
    assert_int_equal(fake_tls.dane_conn, dane);
    if (dane)
      assert_int_equal(fake_tls.dane_records, 1);
  }
  assert_int_equal(smtpout_session_hop_outcome(h.s),
                   delivered ? SMTPOUT_HOP_DONE : SMTPOUT_HOP_TLS_FAILED);
  h_free(&h);
  hk_free(&k);
}

/* The five rows under each requirement, with the built-in defaults. */
static void test_hop_requirements_row_by_row(void **st)
{
  (void)st;
  for (size_t t = 0; t < sizeof(table) / sizeof(table[0]); t++)
    for (int row = 0; row < NROWS; row++)
      play(NULL, t, row);
}

/* starttls = disable and allow-invalid-certs = true, everywhere: DANE and
 * PKIX (and ENCRYPT) do not move; only the local hop follows the knobs. */
static void test_disable_and_allow_invalid_never_relax_dane_or_pkix(void **st)
{
  (void)st;
  char err[256];
  smtpout_config *cfg;
  assert_int_equal(smtpout_config_load_string(&cfg,
                                              "[queue.outbound.tls]\n"
                                              "starttls = disable\n"
                                              "allow-invalid-certs = true\n",
                                              "t.ini", err, sizeof(err)),
                   0);
  for (size_t t = 0; t < 3; t++)
    for (int row = 0; row < NROWS; row++)
      play(cfg, t, row);
  /* The local hop takes the knobs: no STARTTLS at all. */
  struct h h;
  struct hopkit k;
  fake_tls_reset();
  open_hop(&h, &k, cfg, HK_LOCAL, 0, EHLO_TLS);
  deliver(&h, NULL);
  assert_tls(&h, SMTPOUT_TLS_OUTCOME_DISABLED, NULL);
  assert_int_equal(fake_tls.conns, 0);
  assert_int_equal(smtpout_session_policy_starttls(h.s),
                   SMTPOUT_STARTTLS_DISABLE);
  h_free(&h);
  hk_free(&k);
  smtpout_config_unref(cfg);
}

/* DANE's texts name what requires TLS; its failures are reported to the
 * route as TLS failures, and defer (4.7.5) after the last MX. */
static void test_dane_failure_texts_and_the_route_verdict(void **st)
{
  (void)st;
  struct h h;
  struct hopkit k;
  fake_tls_reset();
  open_hop(&h, &k, NULL, HK_DANE, 0, EHLO_PLAIN);
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_string_equal(result(&h)->text,
                      "TLS is required by DANE, but was not offered by "
                      "host mx.dane.test");
  assert_int_equal(smtpout_session_close_reason(h.s),
                   SMTPOUT_CLOSE_TLS_POLICY);
  h_server(&h, "221 bye\r\n");
  h_client(&h);
  int outcome = smtpout_session_hop_outcome(h.s);
  assert_int_equal(outcome, SMTPOUT_HOP_TLS_FAILED);
  assert_int_equal(smtpout_route_hop_done(k.route, k.hop, outcome,
                                          smtpout_session_close_text(h.s), 0),
                   0);
  assert_int_equal(smtpout_route_want(k.route), SMTPOUT_ROUTE_DONE);
  assert_int_equal(smtpout_route_status(k.route), SMTPOUT_STATUS_DEFERRED);
  assert_string_equal(smtpout_route_enhanced(k.route), "4.7.5");
  h_free(&h);
  hk_free(&k);

  /* A refusal names DANE too; a mismatch says why no record matched. */
  fake_tls_reset();
  open_hop(&h, &k, NULL, HK_DANE, 0, EHLO_TLS);
  h_client(&h);
  h_server(&h, "554 5.7.0 no\r\n");
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_non_null(strstr(result(&h)->text, "TLS is required by DANE, but "
                                           "host mx.dane.test refused"));
  h_free(&h);
  hk_free(&k);
  for (int v = FAKE_DANE_NO_MATCH; v <= FAKE_DANE_EXPIRED; v++) {
    static const char *const types[] = {
      [FAKE_DANE_NO_MATCH] = VF,
      [FAKE_DANE_NAME_MISMATCH] = "certificate-host-mismatch",
      [FAKE_DANE_EXPIRED] = "certificate-expired"};
    fake_tls_reset();
    fake_tls.dane = v;
    open_hop(&h, &k, NULL, HK_DANE, 0, EHLO_TLS);
    go_ahead(&h);
    server_hello(&h);
    assert_string_equal(h_client(&h), "QUIT\r\n");
    assert_tls(&h, SMTPOUT_TLS_OUTCOME_OK, types[v]);
    assert_int_equal(smtpout_tls_info_verified(h.tls), 0);
    assert_null(smtpout_tls_info_tlsa_matched(h.tls));
    assert_non_null(smtpout_tls_info_verify_error(h.tls));
    assert_non_null(strstr(result(&h)->text,
                           "server certificate not authenticated by DANE"));
    h_free(&h);
    hk_free(&k);
  }
}

/* DANE-TA reported as such, with the record that matched and the size of
 * the set. */
static void test_dane_ta_is_reported_with_its_record(void **st)
{
  (void)st;
  struct h h;
  struct hopkit k;
  fake_tls_reset();
  fake_tls.dane = FAKE_DANE_TA;
  open_hop(&h, &k, NULL, HK_DANE, 0, EHLO_TLS);
  go_ahead(&h);
  server_hello(&h);
  deliver(&h, "250-mx\r\n250 PIPELINING\r\n");
  assert_int_equal(smtpout_tls_info_verified(h.tls), 1);
  assert_int_equal(smtpout_tls_info_auth(h.tls), SMTPOUT_TLS_AUTH_DANE_TA);
  assert_string_equal(smtpout_tls_auth_name(smtpout_tls_info_auth(h.tls)),
                      "dane-ta");
  assert_string_equal(smtpout_tls_info_tlsa_matched(h.tls), "2 0 1");
  assert_int_equal(smtpout_tls_info_tlsa_records(h.tls), 1);
  assert_int_equal(smtpout_tls_info_requiretls(h.tls), 0);
  assert_null(smtpout_tls_info_verify_error(h.tls));
  h_free(&h);
  hk_free(&k);
}

/* RFC 7672 8.1: under DANE the SNI is the TLSA base domain (here the
 * CNAME-expanded MX name), while texts and results keep the MX name. */
static void test_dane_sni_is_the_tlsa_base_domain(void **st)
{
  (void)st;
  static const char *const secure[] = {"dane.test", "hosting.test", NULL};
  static const struct hk_rec recs[] = {
    {"dane.test", "MX", "10 mx.dane.test"},
    {"mx.dane.test", "CNAME", "mail.hosting.test"},
    {"mail.hosting.test", "A", "192.0.2.9"},
    {"_25._tcp.mail.hosting.test", "TLSA",
     "3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
    {NULL, NULL, NULL},
  };
  static const struct hk_zone zone = {recs, secure, NULL};
  struct h h;
  struct hopkit k;
  fake_tls_reset();
  const smtpout_hop *hop = hk_route(&k, NULL, "dane.test", 0, &zone);
  assert_int_equal(smtpout_hop_tls_requirement(hop),
                   SMTPOUT_TLS_REQUIREMENT_DANE);
  assert_string_equal(smtpout_hop_tlsa_base(hop), "mail.hosting.test");
  h_init_hop(&h, hop, NULL);
  session_set_tls_backend(h.s, &fake_tls_backend);
  h_submit(&h, A, NULL);
  smtpout_session_quit(h.s);
  /* The route's hop may go: the session keeps what it needs. */
  assert_int_equal(smtpout_route_hop_done(k.route, hop, SMTPOUT_HOP_DONE,
                                          NULL, 0),
                   0);
  h_open(&h, EHLO_TLS);
  go_ahead(&h);
  server_hello(&h);
  deliver(&h, "250-mx\r\n250 PIPELINING\r\n");
  assert_string_equal(fake_tls.sni, "mail.hosting.test");
  assert_int_equal(fake_tls.dane_records, 1);
  /* The reference identifiers: the base domain, the MX name, the
   * recipient domain. */
  assert_int_equal(fake_tls.dane_names, 3);
  h_free(&h);
  hk_free(&k);
}

/* A handshake failure under DANE permits no plaintext retry, and a
 * plaintext fallback session for a DANE hop refuses to run. */
static void test_no_plaintext_fallback_on_a_dane_hop(void **st)
{
  (void)st;
  for (int kind = HK_LOCAL; kind <= HK_RELAXED; kind++) {
    struct h h;
    struct hopkit k;
    fake_tls_reset();
    const smtpout_hop *hop = hk_hop(&k, NULL, kind, 0);
    h_init_hop(&h, hop, NULL);
    session_set_tls_backend(h.s, &fake_tls_backend);
    assert_int_equal(smtpout_session_set_plaintext_fallback(h.s), 0);
    h_submit(&h, A, NULL);
    smtpout_session_quit(h.s);
    h_open(&h, EHLO_TLS);
    if (smtpout_hop_plaintext_fallback(hop)) {
      deliver(&h, NULL);
    } else {
      assert_string_equal(h_client(&h), "QUIT\r\n");
      assert_result(&h, SMTPOUT_STATUS_DEFERRED, 0, "4.7.5");
      assert_int_equal(smtpout_session_close_reason(h.s),
                       SMTPOUT_CLOSE_TLS_POLICY);
    }
    assert_int_equal(smtpout_hop_plaintext_fallback(hop),
                     kind == HK_LOCAL || kind == HK_RELAXED);
    assert_int_equal(fake_tls.conns, 0);
    h_free(&h);
    hk_free(&k);
  }
}

/* TLS below 1.2 fails MTA-STS (RFC 8461 4.2), whatever the certificate. */
static void test_pkix_hop_refuses_tls_below_1_2(void **st)
{
  (void)st;
  struct h h;
  struct hopkit k;
  fake_tls_reset();
  fake_tls.version = "TLS1.1";
  open_hop(&h, &k, NULL, HK_PKIX, 0, EHLO_TLS);
  go_ahead(&h);
  server_hello(&h);
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_result(&h, SMTPOUT_STATUS_DEFERRED, 0, "4.7.5");
  assert_tls(&h, SMTPOUT_TLS_OUTCOME_OK, VF);
  assert_non_null(strstr(result(&h)->text, "TLS 1.2 or later"));
  h_free(&h);
  hk_free(&k);
  /* The same version is fine where MTA-STS does not apply. */
  fake_tls_reset();
  fake_tls.version = "TLS1.1";
  open_hop(&h, &k, NULL, HK_LOCAL, 0, EHLO_TLS);
  go_ahead(&h);
  server_hello(&h);
  deliver(&h, "250-mx\r\n250 PIPELINING\r\n");
  h_free(&h);
  hk_free(&k);
}

/* The hop's policy is the session's: no lookup, no conflict for any
 * message, the host cannot change it. */
static void test_hop_policy_is_fixed(void **st)
{
  (void)st;
  struct h h;
  struct hopkit k;
  fake_tls_reset();
  const smtpout_hop *hop = hk_hop(&k, NULL, HK_DANE, 0);
  h_init_hop(&h, hop, NULL);
  assert_int_equal(smtpout_session_policy_starttls(h.s),
                   SMTPOUT_STARTTLS_REQUIRE);
  assert_int_equal(smtpout_session_policy_allow_invalid_certs(h.s), 0);
  assert_int_equal(smtpout_session_set_tls_policy(
                       h.s, SMTPOUT_STARTTLS_OPTIONAL, 1),
                   SMTPOUT_ERR_INVALID_STATE);
  const char *rcpt = "x@elsewhere.example";
  assert_true(smtpout_session_submit(h.s, "s@test.example", &rcpt, 1, 0, 0) >
              0);
  /* A REQUIRETLS message belongs to a route made for REQUIRETLS. */
  assert_int_equal(smtpout_session_submit(h.s, "s@test.example", &rcpt, 1, 0,
                                          SMTPOUT_MESSAGE_REQUIRETLS),
                   SMTPOUT_ERR_POLICY_CONFLICT);
  h_free(&h);
  hk_free(&k);
}

/* ---- REQUIRETLS (RFC 8689) ---- */

#define EHLO_REQUIRETLS "250-mx\r\n250-PIPELINING\r\n250 REQUIRETLS\r\n"

/* An authenticated hop (DANE, PKIX) whose post-TLS EHLO offers
 * REQUIRETLS: MAIL FROM carries it. */
static void test_requiretls_sent_over_authenticated_tls(void **st)
{
  (void)st;
  for (int kind = HK_DANE; kind <= HK_PKIX; kind += HK_PKIX - HK_DANE) {
    struct h h;
    struct hopkit k;
    fake_tls_reset();
    open_hop(&h, &k, NULL, kind, SMTPOUT_ROUTE_REQUIRETLS, EHLO_TLS);
    go_ahead(&h);
    server_hello(&h);
    assert_string_equal(h_client(&h), "EHLO client.example\r\n");
    h_server(&h, EHLO_REQUIRETLS);
    assert_string_equal(h_client(&h),
                        "MAIL FROM:<sender@test.example> REQUIRETLS\r\n"
                        "RCPT TO:<a@test.example>\r\nDATA\r\n");
    h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
    h_client(&h);
    h_server(&h, "250 2.0.0 queued\r\n221 bye\r\n");
    h_client(&h);
    assert_result(&h, SMTPOUT_STATUS_DELIVERED, 250, "2.0.0");
    assert_int_equal(smtpout_tls_info_requiretls(h.tls), 1);
    assert_true(smtpout_session_capabilities(h.s) & SMTPOUT_CAP_REQUIRETLS);
    assert_int_equal(smtpout_session_hop_outcome(h.s), SMTPOUT_HOP_DONE);
    h_free(&h);
    hk_free(&k);
  }
}

/* REQUIRETLS offered only before STARTTLS counts for nothing: nothing is
 * sent, the recipients are deferred 4.7.30, and the route bounces 5.7.30
 * after the last MX. */
static void test_requiretls_not_offered_after_tls_sends_nothing(void **st)
{
  (void)st;
  struct h h;
  struct hopkit k;
  fake_tls_reset();
  open_hop(&h, &k, NULL, HK_DANE, SMTPOUT_ROUTE_REQUIRETLS,
           "250-STARTTLS\r\n250 REQUIRETLS\r\n");
  go_ahead(&h);
  server_hello(&h);
  assert_string_equal(h_client(&h), "EHLO client.example\r\n");
  h_server(&h, "250-mx\r\n250 PIPELINING\r\n");
  assert_string_equal(h_client(&h), "QUIT\r\n");
  h_server(&h, "221 bye\r\n");
  h_client(&h);
  assert_result(&h, SMTPOUT_STATUS_DEFERRED, 0, "4.7.30");
  assert_int_equal(result(&h)->try_another_address, 1);
  assert_non_null(strstr(result(&h)->text, "did not offer REQUIRETLS"));
  assert_int_equal(smtpout_tls_info_requiretls(h.tls), 0);
  int outcome = smtpout_session_hop_outcome(h.s);
  assert_int_equal(outcome, SMTPOUT_HOP_REQUIRETLS_NOT_OFFERED);
  assert_int_equal(smtpout_route_hop_done(k.route, k.hop, outcome, NULL, 0),
                   0);
  assert_int_equal(smtpout_route_status(k.route), SMTPOUT_STATUS_BOUNCED);
  assert_string_equal(smtpout_route_enhanced(k.route), "5.7.30");
  h_free(&h);
  hk_free(&k);
}

/* A REQUIRETLS hop whose TLS fails defers 4.7.5; the route bounces
 * 5.7.10 (RFC 8689 5, Postfix's mapping) after the last MX. */
static void test_requiretls_hop_with_failed_tls_bounces_5_7_10(void **st)
{
  (void)st;
  struct h h;
  struct hopkit k;
  fake_tls_reset();
  fake_tls.dane = FAKE_DANE_NO_MATCH;
  open_hop(&h, &k, NULL, HK_DANE, SMTPOUT_ROUTE_REQUIRETLS, EHLO_TLS);
  go_ahead(&h);
  server_hello(&h);
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_result(&h, SMTPOUT_STATUS_DEFERRED, 0, "4.7.5");
  h_server(&h, "221 bye\r\n");
  h_client(&h);
  int outcome = smtpout_session_hop_outcome(h.s);
  assert_int_equal(outcome, SMTPOUT_HOP_TLS_FAILED);
  assert_int_equal(smtpout_route_hop_done(k.route, k.hop, outcome, NULL, 0),
                   0);
  assert_string_equal(smtpout_route_enhanced(k.route), "5.7.10");
  h_free(&h);
  hk_free(&k);
}

/* The message flag on a session made without a hop: sent over TLS whose
 * certificate verified, offered REQUIRETLS; else deferred before MAIL
 * (4.7.10 unverified, 4.7.30 not offered), other messages unaffected. */
static void test_requiretls_message_flag_on_a_plain_session(void **st)
{
  (void)st;
  for (int c = 0; c < 3; c++) {
    struct h h;
    fake_tls_reset();
    if (c == 1)
      fake_tls.cert = FAKE_CERT_EXPIRED;
    h_init(&h, "mx.test.example", NULL);
    session_set_tls_backend(h.s, &fake_tls_backend);
    /* allow-invalid-certs, so that an unverified session goes on. */
    assert_int_equal(smtpout_session_set_tls_policy(
                         h.s, SMTPOUT_STARTTLS_REQUIRE, 1),
                     0);
    const char *rcpt = A;
    assert_true(smtpout_session_submit(h.s, "sender@test.example", &rcpt, 1,
                                       0, SMTPOUT_MESSAGE_REQUIRETLS) > 0);
    smtpout_session_quit(h.s);
    h_open(&h, EHLO_TLS);
    go_ahead(&h);
    server_hello(&h);
    assert_string_equal(h_client(&h), "EHLO client.example\r\n");
    h_server(&h, c == 2 ? "250-mx\r\n250 PIPELINING\r\n" : EHLO_REQUIRETLS);
    if (c == 0) {
      assert_string_equal(h_client(&h),
                          "MAIL FROM:<sender@test.example> REQUIRETLS\r\n"
                          "RCPT TO:<a@test.example>\r\nDATA\r\n");
      h_free(&h);
      continue;
    }
    /* Nothing for the message: straight to QUIT. */
    assert_string_equal(h_client(&h), "QUIT\r\n");
    assert_result(&h, SMTPOUT_STATUS_DEFERRED, 0, c == 1 ? "4.7.10" : "4.7.30");
    h_server(&h, "221 bye\r\n");
    h_client(&h);
    assert_int_equal(smtpout_session_hop_outcome(h.s),
                     c == 1 ? SMTPOUT_HOP_TLS_FAILED
                            : SMTPOUT_HOP_REQUIRETLS_NOT_OFFERED);
    h_free(&h);
  }
  /* Without a fixed policy, the flag makes the message's policy require
   * verified TLS: a session fixed at optional cannot take it. */
  struct h h;
  fake_tls_reset();
  h_init(&h, "mx.test.example", NULL);
  session_set_tls_backend(h.s, &fake_tls_backend);
  h_submit(&h, A, NULL);
  h_open(&h, EHLO_PLAIN);
  const char *rcpt = "b@test.example";
  assert_int_equal(smtpout_session_submit(h.s, "sender@test.example", &rcpt,
                                          1, 0, SMTPOUT_MESSAGE_REQUIRETLS),
                   SMTPOUT_ERR_POLICY_CONFLICT);
  h_free(&h);
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
    cmocka_unit_test(test_hop_requirements_row_by_row),
    cmocka_unit_test(test_disable_and_allow_invalid_never_relax_dane_or_pkix),
    cmocka_unit_test(test_dane_failure_texts_and_the_route_verdict),
    cmocka_unit_test(test_dane_ta_is_reported_with_its_record),
    cmocka_unit_test(test_dane_sni_is_the_tlsa_base_domain),
    cmocka_unit_test(test_no_plaintext_fallback_on_a_dane_hop),
    cmocka_unit_test(test_pkix_hop_refuses_tls_below_1_2),
    cmocka_unit_test(test_hop_policy_is_fixed),
    cmocka_unit_test(test_requiretls_sent_over_authenticated_tls),
    cmocka_unit_test(test_requiretls_not_offered_after_tls_sends_nothing),
    cmocka_unit_test(test_requiretls_hop_with_failed_tls_bounces_5_7_10),
    cmocka_unit_test(test_requiretls_message_flag_on_a_plain_session),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
