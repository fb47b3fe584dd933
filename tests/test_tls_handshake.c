/*
 * test_tls_handshake.c — the session's STARTTLS against a real GnuTLS
 * server held in memory: what goes on the wire, in which order, around
 * the TLS 1.3 handshake.
 *
 * A TLS 1.3 server may send session tickets (NewSessionTicket) after the
 * handshake, whenever it likes; Postfix (OpenSSL) sends two right after
 * reading the client's Finished.  The post-TLS EHLO must go out with the
 * Finished, without waiting for them: here the server holds its tickets
 * back (GNUTLS_NO_AUTO_SEND_TICKET) and the EHLO must still arrive, and
 * when the tickets do come, alone or in front of a reply, the session
 * must go on.  No sockets and no clock: the test moves every byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "harness.h"
#include "memtls.h"

static const char *const A = "a@test.example";

/* The server's end (memtls.h), with the key of its tickets. */
struct srv {
  struct memtls m;
  gnutls_datum_t ticket_key;
  time_t not_after; /* of its certificate */
};

/* A TLS 1.3 server that issues tickets only when told to, presenting a
 * self-signed certificate for mx.test.example made here: the test needs
 * no file, and the policy below accepts an unverified certificate
 * (verification has tests of its own). */
static void srv_init(struct srv *v)
{
  memset(v, 0, sizeof(*v));
  memtls_init_self_signed(&v->m, GNUTLS_NO_AUTO_SEND_TICKET,
                          "NORMAL:-VERS-ALL:+VERS-TLS1.3", "mx.test.example",
                          1, &v->not_after);
  assert_int_equal(gnutls_session_ticket_key_generate(&v->ticket_key), 0);
  assert_int_equal(
      gnutls_session_ticket_enable_server(v->m.tls, &v->ticket_key), 0);
}

static void srv_free(struct srv *v)
{
  memtls_free(&v->m);
  gnutls_free(v->ticket_key.data);
}

/* Hands the server what the client wrote. */
static void srv_take(struct srv *v, const char *data, size_t len)
{
  memtls_take(&v->m, data, len);
}

/* Delivers everything the server wrote to the client. */
static void srv_send_out(struct srv *v, struct h *h)
{
  h_server_n(h, v->m.out, v->m.out_len);
  v->m.out_len = 0;
}

/* Runs the server's handshake on what it has; returns its status. */
static int srv_handshake(struct srv *v)
{
  int rv;
  do
    rv = gnutls_handshake(v->m.tls);
  while (rv == GNUTLS_E_INTERRUPTED);
  return rv;
}

/* The plaintext the server received since the last call, NUL-terminated
 * in `buf`. */
static const char *srv_recv(struct srv *v, char *buf, size_t size)
{
  size_t n = 0;
  for (;;) {
    ssize_t r = gnutls_record_recv(v->m.tls, buf + n, size - 1 - n);
    if (r == GNUTLS_E_AGAIN || r == 0) /* 0: the client's close_notify */
      break;
    assert_true(r > 0);
    n += (size_t)r;
  }
  buf[n] = '\0';
  return buf;
}

/* The server sends `text` inside TLS (not yet delivered). */
static void srv_write(struct srv *v, const char *text)
{
  assert_int_equal(gnutls_record_send(v->m.tls, text, strlen(text)),
                   (ssize_t)strlen(text));
}

/* Opens a session under require (certificate not verified, accepted)
 * with resumption asked for, so the session wants the tickets the server
 * will send; runs it to the server's 220 to STARTTLS and returns with the
 * ClientHello handed to the server. */
static void open_tls(struct h *h, struct srv *v)
{
  srv_init(v);
  h_init(h, "mx.test.example", NULL);
  assert_int_equal(
      smtpout_session_set_tls_policy(h->s, SMTPOUT_STARTTLS_REQUIRE, 1), 0);
  assert_int_equal(smtpout_session_set_tls_resumption(h->s, 1), 0);
  h_submit(h, A, NULL);
  assert_int_equal(smtpout_session_quit(h->s), 0);
  h_open(h, "250-PIPELINING\r\n250 STARTTLS\r\n");
  assert_string_equal(h_client(h), "STARTTLS\r\n");
  /* docs/policy.md: nothing is written between STARTTLS and its reply. */
  assert_string_equal(h_client(h), "");
  h_server(h, "220 2.0.0 Ready to start TLS\r\n");
  h_client(h);
  assert_true(h->outlen > 0); /* the ClientHello */
  srv_take(v, h->out, h->outlen);
  assert_int_equal(srv_handshake(v), GNUTLS_E_AGAIN);
  assert_true(v->m.out_len > 0); /* ServerHello ... server Finished */
}

/* Completes the handshake: the server's flight goes to the client, and
 * the client's answer to the server.  Asserts the EHLO came with the
 * client's Finished, while the server had sent nothing after its own
 * Finished: no ticket. */
static void finish_handshake_expect_ehlo(struct h *h, struct srv *v)
{
  char buf[4096];
  srv_send_out(v, h);
  h_client(h);
  assert_int_equal(h->tls_calls, 1);
  assert_true(smtpout_tls_info_used(h->tls));
  srv_take(v, h->out, h->outlen);
  assert_int_equal(srv_handshake(v), GNUTLS_E_SUCCESS);
  assert_int_equal(gnutls_protocol_get_version(v->m.tls), GNUTLS_TLS1_3);
  assert_string_equal(srv_recv(v, buf, sizeof(buf)), "EHLO client.example\r\n");
  assert_int_equal(v->m.out_len, 0); /* no ticket went out */
}

static void finish_transaction(struct h *h, struct srv *v)
{
  char buf[4096];
  srv_write(v, "250 2.0.0 Ok: queued\r\n221 2.0.0 Bye\r\n");
  srv_send_out(v, h);
  h_client(h);
  const struct h_result *r = h_find(h, A);
  assert_non_null(r);
  assert_int_equal(r->status, SMTPOUT_STATUS_DELIVERED);
  srv_take(v, h->out, h->outlen);
  assert_string_equal(srv_recv(v, buf, sizeof(buf)), ""); /* close_notify */
  assert_true(smtpout_session_is_done(h->s));
}

static void test_ehlo_goes_with_finished_while_tickets_are_held_back(void **st)
{
  (void)st;
  struct h h;
  struct srv v;
  char buf[4096];
  open_tls(&h, &v);
  finish_handshake_expect_ehlo(&h, &v);
  /* The reply comes first and the tickets only after it: the session
   * never needed them. */
  srv_write(&v, "250-mx.test.example\r\n250 PIPELINING\r\n");
  srv_send_out(&v, &h);
  h_client(&h);
  srv_take(&v, h.out, h.outlen);
  assert_string_equal(srv_recv(&v, buf, sizeof(buf)),
                      "MAIL FROM:<sender@test.example>\r\n"
                      "RCPT TO:<a@test.example>\r\n"
                      "DATA\r\n");
  assert_int_equal(gnutls_session_ticket_send(v.m.tls, 2, 0), 0);
  srv_write(&v, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data\r\n");
  srv_send_out(&v, &h);
  h_client(&h);
  srv_take(&v, h.out, h.outlen);
  assert_string_equal(srv_recv(&v, buf, sizeof(buf)),
                      "Subject: t\r\n\r\nhello\r\n.\r\nQUIT\r\n");
  finish_transaction(&h, &v);
  h_free(&h);
  srv_free(&v);
}

/* Postfix's order: the tickets right after the handshake, in a segment of
 * their own, then the EHLO reply. */
static void test_tickets_alone_then_reply(void **st)
{
  (void)st;
  struct h h;
  struct srv v;
  char buf[4096];
  open_tls(&h, &v);
  finish_handshake_expect_ehlo(&h, &v);
  assert_int_equal(gnutls_session_ticket_send(v.m.tls, 2, 0), 0);
  srv_send_out(&v, &h);
  /* Nothing to say to a ticket; the session waits for the reply. */
  assert_string_equal(h_client(&h), "");
  assert_false(smtpout_session_want_write(h.s));
  assert_true(smtpout_session_want_read(h.s));
  srv_write(&v, "250-mx.test.example\r\n250 PIPELINING\r\n");
  srv_send_out(&v, &h);
  h_client(&h);
  srv_take(&v, h.out, h.outlen);
  assert_string_equal(srv_recv(&v, buf, sizeof(buf)),
                      "MAIL FROM:<sender@test.example>\r\n"
                      "RCPT TO:<a@test.example>\r\n"
                      "DATA\r\n");
  srv_write(&v, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data\r\n");
  srv_send_out(&v, &h);
  h_client(&h);
  srv_take(&v, h.out, h.outlen);
  assert_string_equal(srv_recv(&v, buf, sizeof(buf)),
                      "Subject: t\r\n\r\nhello\r\n.\r\nQUIT\r\n");
  finish_transaction(&h, &v);
  h_free(&h);
  srv_free(&v);
}

/* Tickets and the reply behind them in one read: the reply is parsed at
 * once, not left in GnuTLS's buffers until the timeout. */
static void test_reply_behind_tickets_in_one_read_is_answered(void **st)
{
  (void)st;
  struct h h;
  struct srv v;
  char buf[4096];
  open_tls(&h, &v);
  finish_handshake_expect_ehlo(&h, &v);
  assert_int_equal(gnutls_session_ticket_send(v.m.tls, 2, 0), 0);
  srv_write(&v, "250-mx.test.example\r\n250 PIPELINING\r\n");
  srv_send_out(&v, &h);
  h_client(&h);
  srv_take(&v, h.out, h.outlen);
  assert_string_equal(srv_recv(&v, buf, sizeof(buf)),
                      "MAIL FROM:<sender@test.example>\r\n"
                      "RCPT TO:<a@test.example>\r\n"
                      "DATA\r\n");
  srv_write(&v, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data\r\n");
  srv_send_out(&v, &h);
  h_client(&h);
  srv_take(&v, h.out, h.outlen);
  assert_string_equal(srv_recv(&v, buf, sizeof(buf)),
                      "Subject: t\r\n\r\nhello\r\n.\r\nQUIT\r\n");
  finish_transaction(&h, &v);
  h_free(&h);
  srv_free(&v);
}

/* A server may put any number of bytes in a record: one or two bytes of
 * plaintext are data, never "again" or "end of file" (the read's status
 * codes once were the numbers 1 and 2). */
static void test_reply_in_records_of_one_and_two_bytes_is_read(void **st)
{
  (void)st;
  struct h h;
  struct srv v;
  char buf[4096];
  open_tls(&h, &v);
  finish_handshake_expect_ehlo(&h, &v);
  const char *reply = "250-mx.test.example\r\n250 PIPELINING\r\n";
  for (size_t i = 0; reply[i]; i += i % 2 ? 2 : 1) {
    size_t n = i % 2 ? 2 : 1;
    assert_int_equal(gnutls_record_send(v.m.tls, reply + i, n), (ssize_t)n);
  }
  srv_send_out(&v, &h);
  h_client(&h);
  assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_NONE);
  srv_take(&v, h.out, h.outlen);
  assert_string_equal(srv_recv(&v, buf, sizeof(buf)),
                      "MAIL FROM:<sender@test.example>\r\n"
                      "RCPT TO:<a@test.example>\r\n"
                      "DATA\r\n");
  h_free(&h);
  srv_free(&v);
}

/* The certificate the server presented, described for the host: none
 * before the handshake, then the server's own, whose description outlives
 * the session. */
static void test_peer_certificate_is_described_after_the_handshake(void **st)
{
  (void)st;
  struct h h;
  struct srv v;
  smtpout_certificate *c = NULL;
  open_tls(&h, &v);
  assert_int_equal(smtpout_session_peer_certificate_count(h.s), 0);
  assert_int_equal(smtpout_session_peer_certificate(h.s, 0, &c),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  finish_handshake_expect_ehlo(&h, &v);
  assert_int_equal(smtpout_session_peer_certificate_count(h.s), 1);
  assert_int_equal(smtpout_session_peer_certificate(h.s, 1, &c),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_session_peer_certificate(NULL, 0, &c),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_session_peer_certificate(h.s, 0, NULL),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_session_peer_certificate(h.s, 0, &c), 0);

  /* The digest of the DER the server sent, as TLSA 3 0 1 carries it. */
  const gnutls_datum_t *ours = gnutls_certificate_get_ours(v.m.tls);
  assert_non_null(ours);
  uint8_t digest[32];
  char hex[65];
  assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA256, ours->data, ours->size,
                                    digest),
                   0);
  for (size_t i = 0; i < sizeof(digest); i++)
    snprintf(hex + 2 * i, 3, "%02x", digest[i]);
  h_free(&h); /* the description does not refer to the session */
  srv_free(&v);
  assert_string_equal(smtpout_certificate_sha256(c), hex);
  assert_string_equal(smtpout_certificate_subject(c), "CN=mx.test.example");
  assert_string_equal(smtpout_certificate_issuer(c), "CN=mx.test.example");
  assert_int_equal(smtpout_certificate_not_after(c), (int64_t)v.not_after);
  smtpout_certificate_free(c);
  smtpout_certificate_free(NULL);
  assert_string_equal(smtpout_certificate_sha256(NULL), "");
  assert_int_equal(smtpout_session_peer_certificate_count(NULL), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(
          test_ehlo_goes_with_finished_while_tickets_are_held_back),
      cmocka_unit_test(test_tickets_alone_then_reply),
      cmocka_unit_test(test_reply_behind_tickets_in_one_read_is_answered),
      cmocka_unit_test(test_reply_in_records_of_one_and_two_bytes_is_read),
    cmocka_unit_test(test_peer_certificate_is_described_after_the_handshake),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
