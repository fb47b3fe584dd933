/*
 * test_esmtp.c — the session's smarthost and ESMTP features against a
 * scripted server and the scripted TLS backend (fake_tls.h): SMTP AUTH
 * (RFC 4954) and every rule of docs/relay.md (never in clear, only over
 * a verified certificate unless the host accepts any, failures deferred
 * with the server's text, the secret never shown), implicit TLS (RFC
 * 8314), client certificates, CHUNKING/BDAT (RFC 3030) and DSN (RFC
 * 3461).  The same features run against real servers in
 * tests/integration/test_relay.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base64_int.h"
#include "fake_tls.h"
#include "harness.h"
#include "plan.h"
#include "sasl_int.h"
#include "scram_ref.h"
#include "session_int.h"

static const char *const A = "a@test.example";
static const char *const B = "b@test.example";

#define USER "relay@test.example"
#define SECRET "s3cret-Pa55"
/* base64("\0relay@test.example\0s3cret-Pa55") */
static char plain_ir[128];

#define EHLO_TLS "250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"
#define EHLO_AFTER "250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
#define TRANSACTION                                                          \
  "MAIL FROM:<sender@test.example>\r\nRCPT TO:<a@test.example>\r\nDATA\r\n"

static void make_plain_ir(void)
{
  static const char raw[] = "\0" USER "\0" SECRET;
  size_t n = base64_encode((const uint8_t *)raw, sizeof(raw) - 1, plain_ir);
  plain_ir[n] = '\0';
}

/* A session on the fake backend with credentials (`mechs` NULL: the
 * default list), one message to A, QUIT when done. */
static void init(struct h *h, const char *mechs, uint32_t flags)
{
  fake_tls_reset();
  h_init(h, "relay.test.example", NULL);
  session_set_tls_backend(h->s, &fake_tls_backend);
  assert_int_equal(smtpout_session_set_auth(h->s, mechs, USER, SECRET, flags),
                   0);
  h_submit(h, A, NULL);
  assert_int_equal(smtpout_session_quit(h->s), 0);
}

/* Greeting, EHLO with `caps`, STARTTLS accepted, the client's hello out
 * and the fake server's flight in: whatever fake_tls was set to do with
 * it (fail, present a bad certificate) has happened. */
static void to_handshake_end(struct h *h, const char *caps)
{
  h_open(h, caps);
  assert_string_equal(h_client(h), "STARTTLS\r\n");
  h_server(h, "220 2.0.0 ready\r\n");
  assert_string_equal(h_client(h), FAKE_CLIENT_HELLO);
  h_server(h, FAKE_SERVER_HELLO);
}

/* to_handshake_end(), the handshake done; the second EHLO is answered
 * with `caps_after`. */
static void through_starttls(struct h *h, const char *caps,
                             const char *caps_after)
{
  to_handshake_end(h, caps);
  assert_string_equal(h_client(h), "EHLO client.example\r\n");
  h_server(h, "250-relay.test.example\r\n");
  h_server(h, caps_after);
}

/* The rest of a delivery after AUTH: MAIL, RCPT, DATA, body, 250. */
static void deliver_rest(struct h *h)
{
  assert_string_equal(h_client(h), TRANSACTION);
  h_server(h, "250 ok\r\n250 ok\r\n354 go\r\n");
  assert_string_equal(h_client(h), "Subject: t\r\n\r\nhello\r\n.\r\nQUIT\r\n");
  h_server(h, "250 2.0.0 queued\r\n221 bye\r\n");
  h_client(h);
  assert_true(smtpout_session_is_done(h->s));
}

static const struct h_result *result(const struct h *h, const char *who)
{
  const struct h_result *r = h_find(h, who);
  assert_non_null(r);
  return r;
}

/* Nothing the session showed the host holds the secret, in clear or as
 * the base64 of PLAIN's response. */
static void assert_secret_hidden(const struct h *h)
{
  assert_null(strstr(h->trace, SECRET));
  assert_null(strstr(h->trace, plain_ir));
  for (int i = 0; i < h->nres; i++) {
    assert_null(strstr(h->res[i].text, SECRET));
    assert_null(strstr(h->res[i].text, plain_ir));
  }
  assert_null(strstr(smtpout_session_close_text(h->s), SECRET));
}

static void assert_deferred(const struct h *h, const char *enhanced,
                            const char *fragment)
{
  const struct h_result *r = result(h, A);
  assert_int_equal(r->status, SMTPOUT_STATUS_DEFERRED);
  assert_string_equal(r->enhanced, enhanced);
  if (fragment)
    assert_non_null(strstr(r->text, fragment));
}

/* ------------------------------------------------------------------ */
/* AUTH                                                                 */

static void test_auth_plain_after_starttls(void **st)
{
  (void)st;
  struct h h;
  init(&h, NULL, 0);
  through_starttls(&h, EHLO_TLS, EHLO_AFTER);
  char want[256];
  snprintf(want, sizeof(want), "AUTH PLAIN %s\r\n", plain_ir);
  assert_string_equal(h_client(&h), want);
  /* The trace shows the command, never the response. */
  assert_non_null(strstr(h.trace, "C: AUTH PLAIN ****\n"));
  h_server(&h, "235 2.7.0 Authentication successful\r\n");
  deliver_rest(&h);
  assert_int_equal(result(&h, A)->status, SMTPOUT_STATUS_DELIVERED);
  assert_int_equal(smtpout_session_auth_outcome(h.s),
                   SMTPOUT_AUTH_OUTCOME_OK);
  assert_string_equal(smtpout_session_auth_mechanism(h.s), "PLAIN");
  assert_secret_hidden(&h);
  h_free(&h);
}

static void test_auth_login_answers_each_challenge(void **st)
{
  (void)st;
  struct h h;
  init(&h, "LOGIN", 0);
  through_starttls(&h, EHLO_TLS, EHLO_AFTER);
  assert_string_equal(h_client(&h), "AUTH LOGIN\r\n");
  h_server(&h, "334 VXNlcm5hbWU6\r\n");
  assert_string_equal(h_client(&h), "cmVsYXlAdGVzdC5leGFtcGxl\r\n");
  h_server(&h, "334 UGFzc3dvcmQ6\r\n");
  assert_string_equal(h_client(&h), "czNjcmV0LVBhNTU=\r\n");
  h_server(&h, "235 ok\r\n");
  deliver_rest(&h);
  assert_int_equal(result(&h, A)->status, SMTPOUT_STATUS_DELIVERED);
  assert_string_equal(smtpout_session_auth_mechanism(h.s), "LOGIN");
  assert_null(strstr(h.trace, "czNjcmV0LVBhNTU="));
  assert_non_null(strstr(h.trace, "C: ****\n"));
  h_free(&h);
}

/* A server offering AUTH without STARTTLS: no AUTH, deferred; the
 * credentials made the default optional policy require. */
static void test_auth_never_sent_without_tls(void **st)
{
  (void)st;
  struct h h;
  init(&h, NULL, 0);
  h_open(&h, "250-AUTH PLAIN LOGIN\r\n250 PIPELINING\r\n");
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_deferred(&h, "4.7.4", "AUTH credentials are never sent in clear");
  assert_int_equal(smtpout_session_policy_starttls(h.s),
                   SMTPOUT_STARTTLS_REQUIRE);
  assert_int_equal(smtpout_session_auth_outcome(h.s),
                   SMTPOUT_AUTH_OUTCOME_NO_TLS);
  assert_null(strstr(h.trace, "C: AUTH"));
  h_free(&h);
}

/* Even a policy the host fixed as optional: credentials mean TLS. */
static void test_auth_makes_optional_policy_require(void **st)
{
  (void)st;
  struct h h;
  fake_tls_reset();
  h_init(&h, "relay.test.example", NULL);
  session_set_tls_backend(h.s, &fake_tls_backend);
  assert_int_equal(smtpout_session_set_tls_policy(
                       h.s, SMTPOUT_STARTTLS_OPTIONAL, 0), 0);
  assert_int_equal(smtpout_session_set_auth(h.s, "PLAIN", USER, SECRET, 0),
                   0);
  h_submit(&h, A, NULL);
  h_open(&h, "250 AUTH PLAIN\r\n");
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_deferred(&h, "4.7.4", NULL);
  assert_int_equal(smtpout_session_close_reason(h.s),
                   SMTPOUT_CLOSE_TLS_POLICY);
  h_free(&h);
}

static void test_auth_with_starttls_disabled_defers(void **st)
{
  (void)st;
  struct h h;
  fake_tls_reset();
  h_init(&h, "relay.test.example", NULL);
  session_set_tls_backend(h.s, &fake_tls_backend);
  assert_int_equal(smtpout_session_set_tls_policy(
                       h.s, SMTPOUT_STARTTLS_DISABLE, 0), 0);
  assert_int_equal(smtpout_session_set_auth(h.s, NULL, USER, SECRET, 0), 0);
  h_submit(&h, A, NULL);
  h_open(&h, EHLO_TLS);
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_deferred(&h, "4.7.4", "never sent in clear");
  assert_int_equal(smtpout_session_auth_outcome(h.s),
                   SMTPOUT_AUTH_OUTCOME_NO_TLS);
  h_free(&h);
}

/* STARTTLS refused (a man in the middle can forge that): no plaintext. */
static void test_auth_starttls_refused_defers(void **st)
{
  (void)st;
  struct h h;
  init(&h, NULL, 0);
  h_open(&h, EHLO_TLS);
  assert_string_equal(h_client(&h), "STARTTLS\r\n");
  h_server(&h, "454 4.7.0 TLS not available\r\n");
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_deferred(&h, "4.7.4", "TLS not available");
  assert_int_equal(smtpout_session_auth_outcome(h.s),
                   SMTPOUT_AUTH_OUTCOME_NO_TLS);
  h_free(&h);
}

/* A failed handshake with credentials: never the plaintext fallback. */
static void test_auth_handshake_failure_forbids_fallback(void **st)
{
  (void)st;
  struct h h;
  init(&h, NULL, 0);
  fake_tls.handshake = FAKE_HANDSHAKE_ALERT;
  to_handshake_end(&h, EHLO_TLS);
  assert_true(smtpout_session_is_done(h.s));
  assert_deferred(&h, "4.7.5", NULL);
  assert_int_equal(smtpout_tls_info_fallback_permitted(h.tls), 0);
  assert_int_equal(smtpout_session_auth_outcome(h.s),
                   SMTPOUT_AUTH_OUTCOME_NO_TLS);
  h_free(&h);
}

/* A plaintext fallback session with credentials is refused at EHLO. */
static void test_auth_refuses_plaintext_fallback_session(void **st)
{
  (void)st;
  struct h h;
  fake_tls_reset();
  h_init(&h, "relay.test.example", NULL);
  session_set_tls_backend(h.s, &fake_tls_backend);
  assert_int_equal(smtpout_session_set_plaintext_fallback(h.s), 0);
  assert_int_equal(smtpout_session_set_auth(h.s, NULL, USER, SECRET, 0), 0);
  h_submit(&h, A, NULL);
  h_open(&h, "250 AUTH PLAIN\r\n");
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_deferred(&h, "4.7.5", "never sent in clear");
  h_free(&h);
}

/* An unverified certificate the TLS policy refuses: no AUTH either. */
static void test_auth_unverified_certificate_refused_by_policy(void **st)
{
  (void)st;
  struct h h;
  init(&h, NULL, 0);
  fake_tls.cert = FAKE_CERT_UNTRUSTED;
  to_handshake_end(&h, EHLO_TLS);
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_deferred(&h, "4.7.5", "not verified");
  assert_int_equal(smtpout_session_auth_outcome(h.s),
                   SMTPOUT_AUTH_OUTCOME_NO_TLS);
  h_free(&h);
}

/* allow-invalid-certs lets the mail go over an unverified certificate,
 * but not the credentials, unless the host accepts any (auth-tls = any).
 */
static void test_auth_withheld_from_unverified_certificate(void **st)
{
  (void)st;
  for (int any = 0; any < 2; any++) {
    struct h h;
    fake_tls_reset();
    h_init(&h, "relay.test.example", NULL);
    session_set_tls_backend(h.s, &fake_tls_backend);
    assert_int_equal(smtpout_session_set_tls_policy(
                         h.s, SMTPOUT_STARTTLS_REQUIRE, 1), 0);
    assert_int_equal(smtpout_session_set_auth(
                         h.s, "PLAIN", USER, SECRET,
                         any ? SMTPOUT_AUTH_TLS_ANY : 0), 0);
    h_submit(&h, A, NULL);
    assert_int_equal(smtpout_session_quit(h.s), 0);
    fake_tls.cert = FAKE_CERT_EXPIRED;
    through_starttls(&h, EHLO_TLS, EHLO_AFTER);
    const char *out = h_client(&h);
    if (!any) {
      assert_string_equal(out, "QUIT\r\n");
      assert_deferred(&h, "4.7.5", "its certificate did not verify");
      assert_int_equal(smtpout_session_auth_outcome(h.s),
                       SMTPOUT_AUTH_OUTCOME_UNVERIFIED);
      assert_int_equal(smtpout_session_close_reason(h.s),
                       SMTPOUT_CLOSE_AUTH);
    } else {
      assert_non_null(strstr(out, "AUTH PLAIN "));
      h_server(&h, "235 ok\r\n");
      deliver_rest(&h);
      assert_int_equal(result(&h, A)->status, SMTPOUT_STATUS_DELIVERED);
    }
    h_free(&h);
  }
}

/* 535: deferred (never bounced), the server's words kept, its 5.7.8 made
 * a 4.7.8 as a deferral's codes must be. */
static void test_auth_535_defers_with_the_server_text(void **st)
{
  (void)st;
  struct h h;
  init(&h, NULL, 0);
  through_starttls(&h, EHLO_TLS, EHLO_AFTER);
  assert_non_null(strstr(h_client(&h), "AUTH PLAIN"));
  h_server(&h, "535 5.7.8 Error: authentication failed: bad password\r\n");
  assert_string_equal(h_client(&h), "QUIT\r\n");
  const struct h_result *r = result(&h, A);
  assert_int_equal(r->status, SMTPOUT_STATUS_DEFERRED);
  assert_int_equal(r->code, 0);
  assert_string_equal(r->enhanced, "4.7.8");
  assert_non_null(strstr(r->text, "535 Error: authentication failed"));
  assert_int_equal(r->try_another_address, 1);
  assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_AUTH);
  assert_int_equal(smtpout_session_auth_outcome(h.s),
                   SMTPOUT_AUTH_OUTCOME_FAILED);
  assert_secret_hidden(&h);
  h_free(&h);
}

static void test_auth_454_keeps_its_code(void **st)
{
  (void)st;
  struct h h;
  init(&h, NULL, 0);
  through_starttls(&h, EHLO_TLS, EHLO_AFTER);
  h_client(&h);
  h_server(&h, "454 4.7.0 Temporary authentication failure\r\n");
  const struct h_result *r = result(&h, A);
  assert_int_equal(r->code, 454);
  assert_string_equal(r->enhanced, "4.7.0");
  h_free(&h);
}

/* A server echoing the secret: never repeated in a trace or a result. */
static void test_auth_reply_quoting_the_secret_is_withheld(void **st)
{
  (void)st;
  struct h h;
  init(&h, NULL, 0);
  through_starttls(&h, EHLO_TLS, EHLO_AFTER);
  h_client(&h);
  h_server(&h, "535 5.7.8 wrong password " SECRET "\r\n");
  assert_deferred(&h, "4.7.8", "withheld");
  assert_secret_hidden(&h);
  h_free(&h);
}

static void test_auth_not_offered_defers(void **st)
{
  (void)st;
  struct h h;
  init(&h, NULL, 0);
  through_starttls(&h, EHLO_TLS, "250 PIPELINING\r\n");
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_deferred(&h, "4.7.0", "does not offer AUTH");
  assert_int_equal(smtpout_session_auth_outcome(h.s),
                   SMTPOUT_AUTH_OUTCOME_NOT_OFFERED);
  h_free(&h);
}

/* Never a mechanism the server did not offer, nor one not allowed. */
static void test_auth_no_common_mechanism_defers(void **st)
{
  (void)st;
  struct h h;
  init(&h, "PLAIN", 0);
  through_starttls(&h, EHLO_TLS, "250-AUTH CRAM-MD5 LOGIN\r\n250 8BITMIME\r\n");
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_deferred(&h, "4.7.0", "CRAM-MD5 LOGIN");
  h_free(&h);
}

/* Capabilities learned in clear are forgotten: an AUTH offered only
 * before STARTTLS counts for nothing. */
static void test_auth_offer_before_tls_is_forgotten(void **st)
{
  (void)st;
  struct h h;
  init(&h, NULL, 0);
  through_starttls(&h, EHLO_TLS, "250 PIPELINING\r\n");
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_int_equal(smtpout_session_auth_outcome(h.s),
                   SMTPOUT_AUTH_OUTCOME_NOT_OFFERED);
  h_free(&h);
}

/* The old "AUTH=" form is read too. */
static void test_auth_old_equals_form(void **st)
{
  (void)st;
  struct h h;
  init(&h, "LOGIN", 0);
  through_starttls(&h, EHLO_TLS, "250-AUTH=LOGIN\r\n250 8BITMIME\r\n");
  assert_string_equal(h_client(&h), "AUTH LOGIN\r\n");
  h_free(&h);
}

/* A challenge that is not base64: "*" cancels, the 501 that follows
 * ends the connection with our reason. */
static void test_auth_bad_challenge_cancels(void **st)
{
  (void)st;
  struct h h;
  init(&h, "LOGIN", 0);
  through_starttls(&h, EHLO_TLS, EHLO_AFTER);
  assert_string_equal(h_client(&h), "AUTH LOGIN\r\n");
  h_server(&h, "334 !!!not base64!!!\r\n");
  assert_string_equal(h_client(&h), "*\r\n");
  h_server(&h, "501 5.7.0 cancelled\r\n");
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_deferred(&h, "4.7.0", "cancelled");
  assert_int_equal(smtpout_session_auth_outcome(h.s),
                   SMTPOUT_AUTH_OUTCOME_ERROR);
  h_free(&h);
}

/* AUTH is never pipelined: nothing follows it before its reply. */
static void test_auth_is_not_pipelined(void **st)
{
  (void)st;
  struct h h;
  init(&h, NULL, 0);
  through_starttls(&h, EHLO_TLS, EHLO_AFTER);
  const char *out = h_client(&h);
  assert_non_null(strstr(out, "AUTH PLAIN"));
  assert_null(strstr(out, "MAIL FROM"));
  assert_string_equal(h_client(&h), "");
  h_free(&h);
}

/* A reply other than 334, 235, 4xx, 5xx breaks the protocol. */
static void test_auth_unexpected_reply_is_a_protocol_error(void **st)
{
  (void)st;
  struct h h;
  init(&h, NULL, 0);
  through_starttls(&h, EHLO_TLS, EHLO_AFTER);
  h_client(&h);
  h_server(&h, "250 ok\r\n");
  assert_int_equal(smtpout_session_close_reason(h.s),
                   SMTPOUT_CLOSE_PROTOCOL);
  assert_deferred(&h, "4.5.0", NULL);
  h_free(&h);
}

/* AUTH unanswered, or answered 421: the connection goes, the recipients
 * are deferred as for any host failure, and a new connection may try. */
static void test_auth_timeout_and_421(void **st)
{
  (void)st;
  for (int closing = 0; closing < 2; closing++) {
    struct h h;
    init(&h, NULL, 0);
    smtpout_session_set_timeout(h.s, SMTPOUT_TIMEOUT_EHLO, 1000);
    through_starttls(&h, EHLO_TLS, EHLO_AFTER);
    assert_non_null(strstr(h_client(&h), "AUTH PLAIN"));
    if (closing) {
      h_server(&h, "421 4.3.2 shutting down\r\n");
      assert_deferred(&h, "4.3.2", "421");
    } else {
      h_tick(&h, 1001);
      assert_deferred(&h, "4.4.2", "timed out waiting for the reply to AUTH");
    }
    assert_true(smtpout_session_is_done(h.s));
    assert_int_equal(result(&h, A)->try_another_address, 1);
    assert_int_equal(smtpout_session_auth_outcome(h.s),
                     SMTPOUT_AUTH_OUTCOME_NONE);
    h_free(&h);
  }
}

/* A full SCRAM-SHA-256 exchange against the reference server. */
static int scram_run(struct h *h, struct scram_ref *ref, const char *offer,
                     const char *mechs)
{
  char caps[256];
  snprintf(caps, sizeof(caps), "250-AUTH %s\r\n250 PIPELINING\r\n", offer);
  init(h, mechs, 0);
  if (ref->cb_len > 0)
    fake_tls.channel_binding = TLS_CB_EXPORTER;
  through_starttls(h, EHLO_TLS, caps);
  const char *line = h_client(h);
  const char *sp = strchr(line + 5, ' ');
  assert_non_null(sp);
  uint8_t raw[SCRAM_REF_MSG];
  long n = base64_decode(sp + 1, strcspn(sp + 1, "\r"), raw);
  assert_true(n > 0);
  raw[n] = '\0';
  char first[SCRAM_REF_MSG], b64[2 * SCRAM_REF_MSG], reply[2 * SCRAM_REF_MSG + 8];
  if (scram_ref_server_first(ref, (const char *)raw, first) != 0)
    return -1;
  b64[base64_encode((const uint8_t *)first, strlen(first), b64)] = '\0';
  snprintf(reply, sizeof(reply), "334 %s\r\n", b64);
  h_server(h, reply);
  return 0;
}

/* The client-final message to the reference server, its server-final
 * back, the 235 and the mail. */
static void scram_finish(struct h *h, struct scram_ref *ref)
{
  const char *final = h_client(h);
  uint8_t raw[SCRAM_REF_MSG];
  long n = base64_decode(final, strcspn(final, "\r"), raw);
  assert_true(n > 0);
  raw[n] = '\0';
  char srv[SCRAM_REF_MSG], b64[2 * SCRAM_REF_MSG],
      reply[2 * SCRAM_REF_MSG + 8];
  assert_int_equal(scram_ref_server_final(ref, (const char *)raw, srv), 0);
  b64[base64_encode((const uint8_t *)srv, strlen(srv), b64)] = '\0';
  snprintf(reply, sizeof(reply), "334 %s\r\n", b64);
  h_server(h, reply);
  assert_string_equal(h_client(h), "\r\n");
  h_server(h, "235 2.7.0 ok\r\n");
  deliver_rest(h);
  assert_int_equal(result(h, A)->status, SMTPOUT_STATUS_DELIVERED);
}

static void test_auth_scram_sha256_against_reference_server(void **st)
{
  (void)st;
  if (!sasl_mech_built(SASL_MECH_SCRAM_SHA_256))
    skip();
  struct h h;
  struct scram_ref ref = {.password = SECRET, .server_nonce = "srvNonce",
                          .salt = "saltsaltsalt", .salt_len = 12,
                          .iter = 4096};
  assert_int_equal(scram_run(&h, &ref, "SCRAM-SHA-256 PLAIN", NULL), 0);
  scram_finish(&h, &ref);
  assert_string_equal(smtpout_session_auth_mechanism(h.s), "SCRAM-SHA-256");
  assert_string_equal(ref.gs2_header, "n,,");
  h_free(&h);
}

/* The server's iteration count above the cap: cancelled before any key
 * derivation, in well under a second whatever the count. */
static void test_auth_scram_huge_iteration_count_refused(void **st)
{
  (void)st;
  if (!sasl_mech_built(SASL_MECH_SCRAM_SHA_256))
    skip();
  struct h h;
  struct scram_ref ref = {.password = SECRET, .server_nonce = "srvNonce",
                          .salt = "saltsaltsalt", .salt_len = 12,
                          .iter = 2000000000u};
  assert_int_equal(scram_run(&h, &ref, "SCRAM-SHA-256", "SCRAM-SHA-256"), 0);
  assert_string_equal(h_client(&h), "*\r\n");
  h_server(&h, "501 5.5.2 cancelled\r\n");
  assert_deferred(&h, "4.7.0", "iteration");
  assert_int_equal(smtpout_session_auth_outcome(h.s),
                   SMTPOUT_AUTH_OUTCOME_ERROR);
  h_free(&h);
}

/* A 235 before the server proved it knows the password is not believed. */
static void test_auth_scram_early_235_not_believed(void **st)
{
  (void)st;
  if (!sasl_mech_built(SASL_MECH_SCRAM_SHA_256))
    skip();
  struct h h;
  init(&h, "SCRAM-SHA-256", 0);
  through_starttls(&h, EHLO_TLS, "250 AUTH SCRAM-SHA-256\r\n");
  assert_non_null(strstr(h_client(&h), "AUTH SCRAM-SHA-256 "));
  h_server(&h, "235 2.7.0 welcome\r\n");
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_deferred(&h, "4.7.0", "too early");
  assert_int_equal(smtpout_session_auth_outcome(h.s),
                   SMTPOUT_AUTH_OUTCOME_ERROR);
  h_free(&h);
}

/* -PLUS is chosen when offered and the channel can be bound, and binds
 * it: the reference server checks the binding data. */
static void test_auth_scram_plus_binds_the_channel(void **st)
{
  (void)st;
  if (!sasl_mech_built(SASL_MECH_SCRAM_SHA_256_PLUS))
    skip();
  struct h h;
  struct scram_ref ref = {.password = SECRET, .server_nonce = "srvNonce",
                          .salt = "saltsaltsalt", .salt_len = 12,
                          .iter = 4096,
                          .cb_data = (const uint8_t *)FAKE_CHANNEL_BINDING,
                          .cb_len = sizeof(FAKE_CHANNEL_BINDING) - 1};
  assert_int_equal(scram_run(&h, &ref,
                             "PLAIN SCRAM-SHA-256 SCRAM-SHA-256-PLUS", NULL),
                   0);
  assert_string_equal(ref.gs2_header, "p=tls-exporter,,");
  scram_finish(&h, &ref);
  assert_string_equal(smtpout_session_auth_mechanism(h.s),
                      "SCRAM-SHA-256-PLUS");
  h_free(&h);
}

/* ------------------------------------------------------------------ */
/* Implicit TLS                                                         */

static void implicit_init(struct h *h, int allow_invalid)
{
  fake_tls_reset();
  h_init(h, "relay.test.example", NULL);
  session_set_tls_backend(h->s, &fake_tls_backend);
  assert_int_equal(smtpout_session_set_implicit_tls(h->s, 1), 0);
  if (allow_invalid)
    assert_int_equal(smtpout_session_set_tls_policy(
                         h->s, SMTPOUT_STARTTLS_OPTIONAL, 1), 0);
  h_submit(h, A, NULL);
  assert_int_equal(smtpout_session_quit(h->s), 0);
}

/* TLS from the first byte; the greeting comes inside it; STARTTLS
 * advertised there is ignored. */
static void test_implicit_tls_handshake_before_greeting(void **st)
{
  (void)st;
  struct h h;
  implicit_init(&h, 0);
  assert_int_equal(smtpout_session_set_auth(h.s, NULL, USER, SECRET, 0), 0);
  h_start(&h);
  assert_string_equal(h_client(&h), FAKE_CLIENT_HELLO);
  assert_string_equal(fake_tls.sni, "relay.test.example");
  h_server(&h, FAKE_SERVER_HELLO);
  assert_int_equal(h.tls_calls, 1);
  assert_int_equal(smtpout_tls_info_outcome(h.tls), SMTPOUT_TLS_OUTCOME_OK);
  assert_int_equal(smtpout_tls_info_implicit(h.tls), 1);
  assert_string_equal(h_client(&h), "");
  h_server(&h, "220 relay.test.example ESMTP\r\n");
  assert_string_equal(h_client(&h), "EHLO client.example\r\n");
  h_server(&h, "250-relay.test.example\r\n250-STARTTLS\r\n"
               "250-AUTH PLAIN\r\n250 PIPELINING\r\n");
  char want[256];
  snprintf(want, sizeof(want), "AUTH PLAIN %s\r\n", plain_ir);
  assert_string_equal(h_client(&h), want);
  h_server(&h, "235 ok\r\n");
  deliver_rest(&h);
  assert_int_equal(result(&h, A)->status, SMTPOUT_STATUS_DELIVERED);
  h_free(&h);
}

/* The greeting timeout runs from the end of the handshake. */
static void test_implicit_tls_greeting_timeout(void **st)
{
  (void)st;
  struct h h;
  implicit_init(&h, 0);
  smtpout_session_set_timeout(h.s, SMTPOUT_TIMEOUT_TLS, 1000);
  smtpout_session_set_timeout(h.s, SMTPOUT_TIMEOUT_GREETING, 5000);
  h_start(&h);
  h_client(&h);
  h_tick(&h, 900);
  h_server(&h, FAKE_SERVER_HELLO);
  h_tick(&h, 4000);
  assert_false(smtpout_session_is_done(h.s));
  h_tick(&h, 1100);
  assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_TIMEOUT);
  h_free(&h);
}

/* A failed handshake: deferred 4.7.5, never a plaintext retry. */
static void test_implicit_tls_handshake_failure_never_falls_back(void **st)
{
  (void)st;
  struct h h;
  implicit_init(&h, 0);
  fake_tls.handshake = FAKE_HANDSHAKE_ALERT;
  h_start(&h);
  h_client(&h);
  h_server(&h, FAKE_SERVER_HELLO);
  assert_true(smtpout_session_is_done(h.s));
  assert_deferred(&h, "4.7.5", "TLS handshake");
  assert_int_equal(smtpout_tls_info_outcome(h.tls),
                   SMTPOUT_TLS_OUTCOME_HANDSHAKE_FAILED);
  assert_int_equal(smtpout_tls_info_fallback_permitted(h.tls), 0);
  h_free(&h);
}

/* The certificate is judged as after STARTTLS. */
static void test_implicit_tls_certificate_policy(void **st)
{
  (void)st;
  for (int allow = 0; allow < 2; allow++) {
    struct h h;
    implicit_init(&h, allow);
    fake_tls.cert = FAKE_CERT_WRONG_NAME;
    h_start(&h);
    h_client(&h);
    h_server(&h, FAKE_SERVER_HELLO);
    assert_int_equal(smtpout_tls_info_verified(h.tls), 0);
    assert_string_equal(smtpout_tls_info_tlsrpt_result(h.tls),
                        "certificate-host-mismatch");
    if (!allow) {
      assert_string_equal(h_client(&h), "QUIT\r\n");
      assert_deferred(&h, "4.7.5", "not verified");
    } else {
      h_server(&h, "220 hi\r\n");
      assert_string_equal(h_client(&h), "EHLO client.example\r\n");
    }
    h_free(&h);
  }
}

static void test_implicit_tls_and_plaintext_fallback_exclude(void **st)
{
  (void)st;
  struct h h;
  h_init(&h, "relay.test.example", NULL);
  assert_int_equal(smtpout_session_set_implicit_tls(h.s, 1), 0);
  assert_int_equal(smtpout_session_set_plaintext_fallback(h.s),
                   SMTPOUT_ERR_INVALID_STATE);
  assert_int_equal(smtpout_session_set_implicit_tls(h.s, 0), 0);
  assert_int_equal(smtpout_session_set_plaintext_fallback(h.s), 0);
  assert_int_equal(smtpout_session_set_implicit_tls(h.s, 1),
                   SMTPOUT_ERR_INVALID_STATE);
  assert_int_equal(smtpout_session_set_implicit_tls(h.s, 2),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  h_free(&h);
}

/* ------------------------------------------------------------------ */
/* Client certificates                                                  */

static char certdir[] = "/tmp/smtpout-esmtp-XXXXXX";
static char cert_pem[128], key_pem[128], other_key[128];

static int make_certs(void **st)
{
  (void)st;
  assert_non_null(mkdtemp(certdir));
  snprintf(cert_pem, sizeof(cert_pem), "%s/client.pem", certdir);
  snprintf(key_pem, sizeof(key_pem), "%s/client.key", certdir);
  snprintf(other_key, sizeof(other_key), "%s/other.key", certdir);
  char cmd[1024];
  snprintf(cmd, sizeof(cmd),
           "cd %s && printf 'cn = client.test.example\\nexpiration_days = "
           "2\\ntls_www_client\\nsigning_key\\n' > tmpl && "
           "certtool --generate-privkey --key-type ecdsa --outfile client.key "
           ">/dev/null 2>&1 && "
           "certtool --generate-privkey --key-type ecdsa --outfile other.key "
           ">/dev/null 2>&1 && "
           "certtool --generate-self-signed --load-privkey client.key "
           "--template tmpl --outfile client.pem >/dev/null 2>&1",
           certdir);
  assert_int_equal(system(cmd), 0);
  return 0;
}

static int remove_certs(void **st)
{
  (void)st;
  char cmd[256];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", certdir);
  return system(cmd) == 0 ? 0 : -1;
}

static void test_client_certificate_presented_when_asked(void **st)
{
  (void)st;
  struct h h;
  init(&h, NULL, 0);
  assert_int_equal(smtpout_session_set_client_cert(h.s, cert_pem, key_pem), 0);
  fake_tls.ask_client_cert = 1;
  through_starttls(&h, EHLO_TLS, EHLO_AFTER);
  assert_int_equal(fake_tls.client_cert, 1);
  assert_int_equal(smtpout_tls_info_client_certificate(h.tls), 1);
  h_free(&h);
}

static void test_client_certificate_load_errors(void **st)
{
  (void)st;
  struct h h;
  h_init(&h, "relay.test.example", NULL);
  assert_int_equal(smtpout_session_set_client_cert(h.s, "/nonexistent",
                                                   key_pem),
                   SMTPOUT_ERR_TLS_SETUP);
  assert_int_equal(smtpout_session_set_client_cert(h.s, cert_pem, "/dev/zero"),
                   SMTPOUT_ERR_TLS_SETUP);
  /* A key that is not the certificate's. */
  assert_int_equal(smtpout_session_set_client_cert(h.s, cert_pem, other_key),
                   SMTPOUT_ERR_TLS_SETUP);
  /* Swapped: the key file holds no certificate. */
  assert_int_equal(smtpout_session_set_client_cert(h.s, key_pem, cert_pem),
                   SMTPOUT_ERR_TLS_SETUP);
  assert_int_equal(smtpout_session_set_client_cert(h.s, cert_pem, key_pem), 0);
  h_start(&h);
  assert_int_equal(smtpout_session_set_client_cert(h.s, cert_pem, key_pem),
                   SMTPOUT_ERR_INVALID_STATE);
  h_free(&h);
}

/* ------------------------------------------------------------------ */
/* Relay hops (smtpout_route_new_relay(), smtpout_session_new_for_hop()) */

struct relay {
  smtpout_config *cfg;
  smtpout_route *route;
  char pw[160];
};

/* A configuration with [relay "r"] at 192.0.2.7 (an address: the fake
 * backend verifies no certificate for it) with `extra` keys, the password
 * SECRET in a private file, and the session of its hop on the fake
 * backend, one message to A, QUIT when done. */
static void relay_open(struct h *h, struct relay *rl, const char *extra)
{
  snprintf(rl->pw, sizeof(rl->pw), "%s/relay.secret", certdir);
  FILE *fp = fopen(rl->pw, "w");
  assert_non_null(fp);
  fputs(SECRET "\n", fp);
  fclose(fp);
  assert_int_equal(chmod(rl->pw, 0600), 0);
  char ini[1024], err[256];
  snprintf(ini, sizeof(ini),
           "[relay \"r\"]\nhost = 192.0.2.7\nauth-username = " USER "\n"
           "auth-password-file = %s\n%s",
           rl->pw, extra);
  if (smtpout_config_load_string(&rl->cfg, ini, "t.ini", err, sizeof(err)) !=
      0)
    fail_msg("%s", err);
  const smtpout_hop *hop;
  assert_int_equal(smtpout_route_new_relay(&rl->route, rl->cfg, "r", 0, 0, 0),
                   0);
  assert_int_equal(smtpout_route_next_hop(rl->route, &hop, 0), 1);
  fake_tls_reset();
  h_init_hop(h, hop, rl->cfg);
  session_set_tls_backend(h->s, &fake_tls_backend);
  h_submit(h, A, NULL);
  assert_int_equal(smtpout_session_quit(h->s), 0);
}

static void relay_close(struct h *h, struct relay *rl)
{
  h_free(h);
  smtpout_route_free(rl->route);
  smtpout_config_unref(rl->cfg);
  unlink(rl->pw);
}

/* Implicit TLS, a client certificate and AUTH, all from the relay's
 * section: TLS first, the certificate when asked, AUTH inside TLS
 * (auth-tls = any, allow-invalid-certs = true: the address has no name
 * to verify). */
static void test_relay_hop_implicit_tls_cert_and_auth(void **st)
{
  (void)st;
  struct h h;
  struct relay rl;
  char extra[512];
  snprintf(extra, sizeof(extra),
           "implicit-tls = true\nallow-invalid-certs = true\nauth-tls = any\n"
           "auth-mechanisms = PLAIN\n"
           "client-cert = %s\nclient-key = %s\n",
           cert_pem, key_pem);
  relay_open(&h, &rl, extra);
  assert_int_equal(smtpout_session_policy_starttls(h.s),
                   SMTPOUT_STARTTLS_REQUIRE);
  fake_tls.ask_client_cert = 1;
  h_start(&h);
  assert_string_equal(h_client(&h), FAKE_CLIENT_HELLO);
  h_server(&h, FAKE_SERVER_HELLO);
  assert_int_equal(smtpout_tls_info_implicit(h.tls), 1);
  assert_int_equal(smtpout_tls_info_client_certificate(h.tls), 1);
  assert_int_equal(smtpout_tls_info_fallback_permitted(h.tls), 0);
  h_server(&h, "220 relay ESMTP\r\n");
  assert_string_equal(h_client(&h), "EHLO client.example\r\n");
  h_server(&h, "250-relay\r\n250-AUTH LOGIN PLAIN\r\n250 PIPELINING\r\n");
  char want[256];
  snprintf(want, sizeof(want), "AUTH PLAIN %s\r\n", plain_ir);
  assert_string_equal(h_client(&h), want);
  h_server(&h, "235 2.7.0 ok\r\n");
  deliver_rest(&h);
  assert_int_equal(result(&h, A)->status, SMTPOUT_STATUS_DELIVERED);
  assert_int_equal(smtpout_session_auth_outcome(h.s),
                   SMTPOUT_AUTH_OUTCOME_OK);
  assert_secret_hidden(&h);
  relay_close(&h, &rl);
}

/* A relay with credentials on the submission port: STARTTLS is required
 * (not offered: deferred, no AUTH, no fallback), and by default the
 * certificate must verify before the password goes. */
static void test_relay_hop_auth_rules(void **st)
{
  (void)st;
  struct h h;
  struct relay rl;
  relay_open(&h, &rl, "port = 587\n");
  h_open(&h, "250-AUTH PLAIN\r\n250 PIPELINING\r\n");
  assert_null(strstr(h_client(&h), "AUTH"));
  assert_deferred(&h, "4.7.4", "AUTH credentials are never sent in clear");
  assert_int_equal(smtpout_session_auth_outcome(h.s),
                   SMTPOUT_AUTH_OUTCOME_NO_TLS);
  relay_close(&h, &rl);

  /* allow-invalid-certs lets the unverified server carry mail, but not
   * the password (auth-tls = verified). */
  relay_open(&h, &rl, "port = 587\nallow-invalid-certs = true\n");
  through_starttls(&h, EHLO_TLS, EHLO_AFTER);
  const char *out = h_client(&h);
  assert_null(strstr(out, "AUTH"));
  assert_null(strstr(out, "MAIL FROM"));
  assert_deferred(&h, "4.7.5", "did not verify");
  assert_int_equal(smtpout_session_auth_outcome(h.s),
                   SMTPOUT_AUTH_OUTCOME_UNVERIFIED);
  assert_secret_hidden(&h);
  relay_close(&h, &rl);
}

/* ------------------------------------------------------------------ */
/* BDAT                                                                 */

#define EHLO_CHUNKING "250-PIPELINING\r\n250-8BITMIME\r\n250 CHUNKING\r\n"

/* MAIL, RCPT and the whole message as "BDAT n LAST" in one flight:
 * canonical, neither dot-stuffed nor ended by a dot. */
static void test_bdat_one_flight_with_pipelining(void **st)
{
  (void)st;
  struct h h;
  h_init(&h, "mx.test.example", NULL);
  static const char body[] = ".leading dot\n..two\nlast line";
  h_body(&h, body, sizeof(body) - 1);
  /* 28 bytes; on the wire 32 (two LFs and the last line end as CRLF):
   * SIZE= and the chunk agree, no dot added or taken away. */
  int id = smtpout_session_submit(h.s, "sender@test.example", &A, 1, 32, 0);
  assert_true(id > 0);
  assert_int_equal(smtpout_session_quit(h.s), 0);
  h_open(&h, "250-PIPELINING\r\n250-SIZE 1000\r\n250 CHUNKING\r\n");
  assert_string_equal(h_client(&h),
                      "MAIL FROM:<sender@test.example> SIZE=32\r\n"
                      "RCPT TO:<a@test.example>\r\n"
                      "BDAT 32 LAST\r\n"
                      ".leading dot\r\n..two\r\nlast line\r\n"
                      "QUIT\r\n");
  assert_non_null(strstr(h.trace, "C: BDAT 32 LAST\n"));
  assert_null(strstr(h.trace, "DATA"));
  h_server(&h, "250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n221 bye\r\n");
  h_client(&h);
  assert_int_equal(result(&h, A)->status, SMTPOUT_STATUS_DELIVERED);
  assert_int_equal(result(&h, A)->code, 250);
  assert_true(smtpout_session_is_done(h.s));
  h_free(&h);
}

/* A body of `n` bytes of text lines. */
static char *big_body(size_t n)
{
  char *b = malloc(n);
  assert_non_null(b);
  for (size_t i = 0; i < n; i++)
    b[i] = (i % 64 == 63) ? '\n' : (char)('a' + i % 26);
  return b;
}

/* Parses the client's output into BDAT chunks: checks each header and
 * size, appends the data to `data`.  Returns the number of chunks;
 * *last says whether the final one was LAST. */
static size_t parse_chunks(const char *out, size_t len, char *data,
                           size_t *dlen, int *last)
{
  size_t i = 0, chunks = 0;
  *last = 0;
  while (i < len) {
    if (strncmp(out + i, "BDAT ", 5) != 0)
      break;
    char *end;
    unsigned long n = strtoul(out + i + 5, &end, 10);
    assert_true(n <= 64 * 1024);
    assert_false(*last);
    *last = strncmp(end, " LAST\r\n", 7) == 0;
    const char *p = strstr(end, "\r\n") + 2;
    memcpy(data + *dlen, p, n);
    *dlen += n;
    i = (size_t)(p - out) + n;
    chunks++;
  }
  return chunks;
}

/* A message larger than a chunk goes as several, each at most 64 KiB,
 * the last one LAST; delivered only by the LAST chunk's reply. */
static void test_bdat_large_message_in_bounded_chunks(void **st)
{
  (void)st;
  struct h h;
  h_init(&h, "mx.test.example", NULL);
  size_t n = 300 * 1024;
  char *body = big_body(n);
  h_body(&h, body, n);
  h_submit(&h, A, NULL);
  h_open(&h, EHLO_CHUNKING);
  char *data = malloc(2 * n);
  size_t dlen = 0;
  int last = 0;
  /* The host writes as fast as the session gives: every chunk goes
   * without waiting for a reply. */
  const char *out = h_client(&h);
  const char *p = strstr(out, "BDAT ");
  assert_non_null(p);
  size_t chunks =
      parse_chunks(p, h.outlen - (size_t)(p - out), data, &dlen, &last);
  assert_true(chunks >= 5);
  assert_true(last);
  /* The data is the body with CRLF line ends, nothing more. */
  assert_int_equal(dlen, n + n / 64);
  h_server(&h, "250 ok\r\n250 ok\r\n");
  for (size_t i = 0; i + 1 < chunks; i++) {
    h_server(&h, "250 2.0.0 chunk ok\r\n");
    assert_null(h_find(&h, A));
  }
  h_server(&h, "250 2.0.0 queued as X\r\n");
  assert_int_equal(result(&h, A)->status, SMTPOUT_STATUS_DELIVERED);
  free(data);
  free(body);
  h_free(&h);
}

/* One write of what the session offers. */
static size_t write_once(struct h *h)
{
  const uint8_t *p;
  size_t n;
  assert_int_equal(smtpout_session_peek_output(h->s, &p, &n, h->now), 0);
  assert_int_equal(smtpout_session_consume_output(h->s, n, h->now), 0);
  return n;
}

/* The connection lost after the LAST chunk left and before its reply:
 * possibly delivered, never delivered. */
static void test_bdat_lost_after_last_is_possibly_delivered(void **st)
{
  (void)st;
  struct h h;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_open(&h, EHLO_CHUNKING);
  assert_non_null(strstr(h_client(&h), "BDAT 21 LAST\r\n"));
  h_server(&h, "250 ok\r\n250 ok\r\n");
  assert_int_equal(smtpout_session_feed_eof(h.s, h.now), 0);
  const struct h_result *r = result(&h, A);
  assert_int_equal(r->status, SMTPOUT_STATUS_DEFERRED);
  assert_int_equal(r->possibly_delivered, 1);
  h_free(&h);
}

/* Every RCPT refused: the LAST chunk's refusal delivers nothing; each
 * recipient keeps its RCPT reply. */
static void test_bdat_all_recipients_refused(void **st)
{
  (void)st;
  struct h h;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, B, NULL);
  h_open(&h, EHLO_CHUNKING);
  h_client(&h);
  h_server(&h, "250 ok\r\n550 5.1.1 no such user a\r\n"
               "450 4.2.1 busy b\r\n554 5.5.1 no valid recipients\r\n");
  assert_int_equal(result(&h, A)->status, SMTPOUT_STATUS_BOUNCED);
  assert_int_equal(result(&h, A)->code, 550);
  assert_int_equal(result(&h, B)->code, 450);
  h_free(&h);
}

/* A refused chunk ends the data: no chunk follows it, the accepted
 * recipients get its reply, and RSET precedes the next message. */
static void test_bdat_refused_chunk_stops_the_data(void **st)
{
  (void)st;
  struct h h;
  h_init(&h, "mx.test.example", NULL);
  size_t n = 300 * 1024;
  char *body = big_body(n);
  h_body(&h, body, n);
  h_submit(&h, A, NULL);
  h_open(&h, EHLO_CHUNKING);
  /* MAIL, RCPT and the first chunk; the socket takes no more yet. */
  assert_true(write_once(&h) > 64 * 1024);
  h_server(&h, "250 ok\r\n250 ok\r\n452 4.3.1 insufficient storage\r\n");
  const struct h_result *r = result(&h, A);
  assert_int_equal(r->status, SMTPOUT_STATUS_DEFERRED);
  assert_int_equal(r->code, 452);
  /* No chunk follows the refused one; those already written get their
   * replies (which change nothing). */
  assert_string_equal(h_client(&h), "");
  assert_int_equal(h.ndone, 0);
  h_server(&h, "503 5.5.1 no transaction\r\n");
  assert_int_equal(h.ndone, 1);
  assert_int_equal(result(&h, A)->code, 452);
  /* Another message: RSET first (whatever replies remain). */
  h_body(&h, "x\r\n", 3);
  h_submit(&h, B, NULL);
  const char *next = h_client(&h);
  assert_true(strncmp(next, "RSET\r\nMAIL FROM:", 16) == 0);
  free(body);
  h_free(&h);
}

/* Without PIPELINING every command waits for its reply, and so does each
 * chunk. */
static void test_bdat_without_pipelining(void **st)
{
  (void)st;
  struct h h;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_open(&h, "250 CHUNKING\r\n");
  assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n");
  h_server(&h, "250 ok\r\n");
  assert_string_equal(h_client(&h), "RCPT TO:<a@test.example>\r\n");
  h_server(&h, "250 ok\r\n");
  assert_string_equal(h_client(&h),
                      "BDAT 21 LAST\r\nSubject: t\r\n\r\nhello\r\n");
  h_server(&h, "250 2.0.0 queued\r\n");
  assert_int_equal(result(&h, A)->status, SMTPOUT_STATUS_DELIVERED);
  h_free(&h);
}

static void test_bdat_can_be_turned_off(void **st)
{
  (void)st;
  struct h h;
  h_init(&h, "mx.test.example", NULL);
  assert_int_equal(smtpout_session_set_chunking(h.s, 0), 0);
  assert_int_equal(smtpout_session_set_chunking(h.s, 7),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  h_submit(&h, A, NULL);
  h_open(&h, EHLO_CHUNKING);
  assert_string_equal(h_client(&h), TRANSACTION);
  h_free(&h);
}

/* [queue.outbound] chunking = false: DATA for every session of the
 * configuration; a bad value is a configuration error naming the line. */
static void test_bdat_off_in_the_configuration(void **st)
{
  (void)st;
  smtpout_config *cfg;
  char err[512];
  assert_int_equal(smtpout_config_load_string(
                       &cfg, "[queue.outbound]\nchunking = maybe\n",
                       "bad.ini", err, sizeof(err)),
                   SMTPOUT_ERR_CONFIG);
  assert_non_null(strstr(err, "bad.ini:2: bad value \"maybe\" for chunking"));
  assert_int_equal(smtpout_config_load_string(
                       &cfg, "[queue.outbound]\nchunking = false\n",
                       "off.ini", err, sizeof(err)),
                   0);
  struct h h;
  h_init(&h, "mx.test.example", cfg);
  h_submit(&h, A, NULL);
  h_open(&h, EHLO_CHUNKING);
  assert_string_equal(h_client(&h), TRANSACTION);
  h_free(&h);
  /* The setter still decides for its session. */
  h_init(&h, "mx.test.example", cfg);
  assert_int_equal(smtpout_session_set_chunking(h.s, 1), 0);
  h_submit(&h, A, NULL);
  h_open(&h, EHLO_CHUNKING);
  assert_non_null(strstr(h_client(&h), "BDAT 21 LAST"));
  h_free(&h);
  smtpout_config_unref(cfg);
}

/* 8-bit data to a server with CHUNKING but without 8BITMIME is still
 * converted to 7-bit, and still not dot-stuffed. */
static void test_bdat_keeps_the_7bit_conversion(void **st)
{
  (void)st;
  struct h h;
  h_init(&h, "mx.test.example", NULL);
  static const char body[] = "Subject: t\r\n\r\n.caf\xc3\xa9\r\n";
  h_body(&h, body, sizeof(body) - 1);
  assert_true(smtpout_session_submit(h.s, "sender@test.example", &A, 1, 0,
                                     SMTPOUT_MESSAGE_8BITMIME) > 0);
  h_open(&h, "250-PIPELINING\r\n250 CHUNKING\r\n");
  const char *out = h_client(&h);
  assert_non_null(strstr(out, "Content-Transfer-Encoding: quoted-printable"));
  assert_non_null(strstr(out, "\r\n.caf=C3=A9\r\n"));
  assert_null(strstr(out, "\r\n.\r\n"));
  assert_null(strstr(out, "..caf"));
  h_free(&h);
}

/* A reply to a chunk before the host wrote it answers nothing. */
static void test_bdat_reply_before_the_chunk_left(void **st)
{
  (void)st;
  struct h h;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_open(&h, EHLO_CHUNKING);
  const uint8_t *p;
  size_t n;
  assert_int_equal(smtpout_session_peek_output(h.s, &p, &n, h.now), 0);
  assert_true(n > 10);
  /* Only MAIL and RCPT have left. */
  const char *bdat = strstr((const char *)p, "BDAT");
  assert_int_equal(smtpout_session_consume_output(
                       h.s, (size_t)(bdat - (const char *)p), h.now), 0);
  h_server(&h, "250 ok\r\n250 ok\r\n250 queued\r\n");
  assert_int_equal(smtpout_session_close_reason(h.s),
                   SMTPOUT_CLOSE_PROTOCOL);
  assert_int_equal(result(&h, A)->status, SMTPOUT_STATUS_DEFERRED);
  h_free(&h);
}

/* The body source blocks: the chunk waits, then goes. */
static void test_bdat_waits_for_the_body(void **st)
{
  (void)st;
  struct h h;
  h_init(&h, "mx.test.example", NULL);
  h.body_block_at = 5;
  h.chunk = 5;
  h_submit(&h, A, NULL);
  h_open(&h, EHLO_CHUNKING);
  const char *out = h_client(&h);
  assert_null(strstr(out, "BDAT"));
  assert_false(smtpout_session_want_write(h.s));
  assert_int_equal(smtpout_session_resume_body(h.s), 0);
  assert_true(smtpout_session_want_write(h.s));
  assert_string_equal(h_client(&h),
                      "BDAT 21 LAST\r\nSubject: t\r\n\r\nhello\r\n");
  h_free(&h);
}

/* ------------------------------------------------------------------ */
/* DSN                                                                  */

static smtpout_dsn *dsn_for_two(void)
{
  smtpout_dsn *d;
  assert_int_equal(smtpout_dsn_new(&d), 0);
  assert_int_equal(smtpout_dsn_set_ret(d, SMTPOUT_DSN_RET_HDRS), 0);
  assert_int_equal(smtpout_dsn_set_envid(d, "QQ314159 +=x"), 0);
  assert_int_equal(smtpout_dsn_set_notify(d, 0, SMTPOUT_DSN_NOTIFY_SUCCESS |
                                                    SMTPOUT_DSN_NOTIFY_FAILURE),
                   0);
  assert_int_equal(smtpout_dsn_set_orcpt(d, 0, "rfc822;Orig+1@test.example"),
                   0);
  assert_int_equal(smtpout_dsn_set_notify(d, 1, SMTPOUT_DSN_NOTIFY_NEVER), 0);
  return d;
}

static void test_dsn_parameters_go_to_a_server_that_offers_dsn(void **st)
{
  (void)st;
  struct h h;
  h_init(&h, "mx.test.example", NULL);
  smtpout_dsn *d = dsn_for_two();
  const char *rcpts[] = {A, B};
  assert_true(smtpout_session_submit_dsn(h.s, "sender@test.example", rcpts,
                                         2, 0, 0, d) > 0);
  smtpout_dsn_free(d); /* copied */
  h_open(&h, "250-PIPELINING\r\n250 DSN\r\n");
  assert_string_equal(
      h_client(&h),
      "MAIL FROM:<sender@test.example> RET=HDRS ENVID=QQ314159+20+2B+3Dx\r\n"
      "RCPT TO:<a@test.example> NOTIFY=SUCCESS,FAILURE "
      "ORCPT=rfc822;Orig+2B1@test.example\r\n"
      "RCPT TO:<b@test.example> NOTIFY=NEVER\r\n"
      "DATA\r\n");
  h_server(&h, "250 ok\r\n250 ok\r\n550 5.1.1 no\r\n354 go\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n");
  const struct h_result *a = result(&h, A), *b = result(&h, B);
  assert_int_equal(a->status, SMTPOUT_STATUS_DELIVERED);
  assert_int_equal(a->dsn_sent, 1);
  assert_int_equal(a->dsn_notify,
                   SMTPOUT_DSN_NOTIFY_SUCCESS | SMTPOUT_DSN_NOTIFY_FAILURE);
  /* The server took the request: it owes the success notice. */
  assert_int_equal(a->dsn_action, SMTPOUT_DSN_ACTION_NONE);
  /* Bounced with NEVER: no notice at all. */
  assert_int_equal(b->status, SMTPOUT_STATUS_BOUNCED);
  assert_int_equal(b->dsn_action, SMTPOUT_DSN_ACTION_NONE);
  h_free(&h);
}

/* A server without DSN: the parameters are left out, the results say so,
 * and what the host owes follows RFC 3461 6.2 (a "relayed" notice for
 * SUCCESS, no failure notice under NEVER). */
static void test_dsn_left_out_without_dsn(void **st)
{
  (void)st;
  struct h h;
  h_init(&h, "mx.test.example", NULL);
  smtpout_dsn *d = dsn_for_two();
  const char *rcpts[] = {A, B, "c@test.example"};
  assert_true(smtpout_session_submit_dsn(h.s, "sender@test.example", rcpts,
                                         3, 0, 0, d) > 0);
  smtpout_dsn_free(d);
  h_open(&h, "250 PIPELINING\r\n");
  assert_string_equal(h_client(&h),
                      "MAIL FROM:<sender@test.example>\r\n"
                      "RCPT TO:<a@test.example>\r\n"
                      "RCPT TO:<b@test.example>\r\n"
                      "RCPT TO:<c@test.example>\r\n"
                      "DATA\r\n");
  assert_non_null(strstr(h.trace, "does not offer DSN"));
  h_server(&h, "250 ok\r\n250 ok\r\n550 no b\r\n550 no c\r\n354 go\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n");
  const struct h_result *a = result(&h, A), *b = result(&h, B),
                        *c = result(&h, "c@test.example");
  assert_int_equal(a->dsn_sent, 0);
  assert_int_equal(a->dsn_action, SMTPOUT_DSN_ACTION_RELAYED);
  assert_int_equal(b->dsn_action, SMTPOUT_DSN_ACTION_NONE);
  /* No NOTIFY: the default, a failure notice. */
  assert_int_equal(c->dsn_notify, 0);
  assert_int_equal(c->dsn_action, SMTPOUT_DSN_ACTION_FAILED);
  assert_string_equal(smtpout_dsn_action_name(SMTPOUT_DSN_ACTION_RELAYED),
                      "relayed");
  h_free(&h);
}

static void test_dsn_values_are_checked(void **st)
{
  (void)st;
  smtpout_dsn *d;
  assert_int_equal(smtpout_dsn_new(&d), 0);
  assert_int_equal(smtpout_dsn_set_ret(d, 3), SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_dsn_set_envid(d, ""), SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_dsn_set_envid(d, "a\r\nRCPT"),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  char long_id[102];
  memset(long_id, 'x', 101);
  long_id[101] = '\0';
  assert_int_equal(smtpout_dsn_set_envid(d, long_id),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  long_id[100] = '\0';
  assert_int_equal(smtpout_dsn_set_envid(d, long_id), 0);
  assert_int_equal(smtpout_dsn_set_notify(d, 0, SMTPOUT_DSN_NOTIFY_NEVER |
                                                    SMTPOUT_DSN_NOTIFY_DELAY),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_dsn_set_notify(d, 0, 0x10),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_dsn_set_notify(d, 1u << 20, 1),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_dsn_set_orcpt(d, 0, "a@b"),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_dsn_set_orcpt(d, 0, "rfc822;"),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_dsn_set_orcpt(d, 0, "rfc 822;a@b"),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_dsn_set_orcpt(d, 0, "rfc822;j\xc3\xb6rg@b"),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_dsn_set_orcpt(d, 0, "rfc822;a@b\r\nQUIT"),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  /* 500 characters once encoded, no more. */
  char o[600] = "rfc822;";
  memset(o + 7, '+', 164); /* 7 + 164 * 3 = 499 */
  o[171] = '\0';
  assert_int_equal(smtpout_dsn_set_orcpt(d, 0, o), 0);
  o[171] = 'x';
  o[172] = 'y';
  o[173] = '\0';
  assert_int_equal(smtpout_dsn_set_orcpt(d, 0, o),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  /* An index past the recipients submitted. */
  assert_int_equal(smtpout_dsn_set_notify(d, 3, SMTPOUT_DSN_NOTIFY_DELAY), 0);
  struct h h;
  h_init(&h, "mx.test.example", NULL);
  assert_int_equal(smtpout_session_submit_dsn(h.s, "s@test.example", &A, 1, 0,
                                              0, d),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_dsn_set_notify(d, 3, 0), 0);
  assert_true(smtpout_session_submit_dsn(h.s, "s@test.example", &A, 1, 0, 0,
                                         d) > 0);
  h_free(&h);
  smtpout_dsn_free(d);
  smtpout_dsn_free(NULL);
}

/* ------------------------------------------------------------------ */

static void test_setters_refuse_bad_arguments(void **st)
{
  (void)st;
  struct h h;
  h_init(&h, "relay.test.example", NULL);
  assert_int_equal(smtpout_session_set_auth(h.s, NULL, "", SECRET, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_session_set_auth(h.s, NULL, USER, "", 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_session_set_auth(h.s, "PLAIN NOSUCH", USER, SECRET,
                                            0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_session_set_auth(h.s, "PLAIN", USER, SECRET, 0x80),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_session_set_auth(h.s, "plain, login", USER, SECRET,
                                            0), 0);
  assert_string_equal(smtpout_auth_outcome_name(SMTPOUT_AUTH_OUTCOME_UNVERIFIED),
                      "unverified");
  assert_null(smtpout_auth_outcome_name(7));
  assert_string_equal(smtpout_close_reason_name(SMTPOUT_CLOSE_AUTH), "auth");
  h_free(&h);
}

int main(void)
{
  make_plain_ir();
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_auth_plain_after_starttls),
    cmocka_unit_test(test_auth_login_answers_each_challenge),
    cmocka_unit_test(test_auth_never_sent_without_tls),
    cmocka_unit_test(test_auth_makes_optional_policy_require),
    cmocka_unit_test(test_auth_with_starttls_disabled_defers),
    cmocka_unit_test(test_auth_starttls_refused_defers),
    cmocka_unit_test(test_auth_handshake_failure_forbids_fallback),
    cmocka_unit_test(test_auth_refuses_plaintext_fallback_session),
    cmocka_unit_test(test_auth_unverified_certificate_refused_by_policy),
    cmocka_unit_test(test_auth_withheld_from_unverified_certificate),
    cmocka_unit_test(test_auth_535_defers_with_the_server_text),
    cmocka_unit_test(test_auth_454_keeps_its_code),
    cmocka_unit_test(test_auth_reply_quoting_the_secret_is_withheld),
    cmocka_unit_test(test_auth_not_offered_defers),
    cmocka_unit_test(test_auth_no_common_mechanism_defers),
    cmocka_unit_test(test_auth_offer_before_tls_is_forgotten),
    cmocka_unit_test(test_auth_old_equals_form),
    cmocka_unit_test(test_auth_bad_challenge_cancels),
    cmocka_unit_test(test_auth_is_not_pipelined),
    cmocka_unit_test(test_auth_unexpected_reply_is_a_protocol_error),
    cmocka_unit_test(test_auth_timeout_and_421),
    cmocka_unit_test(test_auth_scram_sha256_against_reference_server),
    cmocka_unit_test(test_auth_scram_huge_iteration_count_refused),
    cmocka_unit_test(test_auth_scram_early_235_not_believed),
    cmocka_unit_test(test_auth_scram_plus_binds_the_channel),
    cmocka_unit_test(test_implicit_tls_handshake_before_greeting),
    cmocka_unit_test(test_implicit_tls_greeting_timeout),
    cmocka_unit_test(test_implicit_tls_handshake_failure_never_falls_back),
    cmocka_unit_test(test_implicit_tls_certificate_policy),
    cmocka_unit_test(test_implicit_tls_and_plaintext_fallback_exclude),
    cmocka_unit_test(test_client_certificate_presented_when_asked),
    cmocka_unit_test(test_client_certificate_load_errors),
    cmocka_unit_test(test_relay_hop_implicit_tls_cert_and_auth),
    cmocka_unit_test(test_relay_hop_auth_rules),
    cmocka_unit_test(test_bdat_one_flight_with_pipelining),
    cmocka_unit_test(test_bdat_large_message_in_bounded_chunks),
    cmocka_unit_test(test_bdat_lost_after_last_is_possibly_delivered),
    cmocka_unit_test(test_bdat_all_recipients_refused),
    cmocka_unit_test(test_bdat_refused_chunk_stops_the_data),
    cmocka_unit_test(test_bdat_without_pipelining),
    cmocka_unit_test(test_bdat_can_be_turned_off),
    cmocka_unit_test(test_bdat_off_in_the_configuration),
    cmocka_unit_test(test_bdat_keeps_the_7bit_conversion),
    cmocka_unit_test(test_bdat_reply_before_the_chunk_left),
    cmocka_unit_test(test_bdat_waits_for_the_body),
    cmocka_unit_test(test_dsn_parameters_go_to_a_server_that_offers_dsn),
    cmocka_unit_test(test_dsn_left_out_without_dsn),
    cmocka_unit_test(test_dsn_values_are_checked),
    cmocka_unit_test(test_setters_refuse_bad_arguments),
  };
  /* Without GNU SASL (-Dgsasl) there is no SCRAM (tests/plan.h). */
  return plan_run_group(tests, sizeof(tests) / sizeof(tests[0]), "scram",
                        !sasl_mech_built(SASL_MECH_SCRAM_SHA_256),
                        "SCRAM, built without GNU SASL", make_certs, remove_certs);
}
