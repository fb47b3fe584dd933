/*
 * test_session.c — the plaintext SMTP session against scripted servers:
 * transactions, pipelining, every failure reply, malformed replies,
 * disconnects and timeouts at each phase, connection reuse, local checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "session_int.h"

#define BODY_DOT "Subject: t\r\n\r\nhello\r\n.\r\n"

static const char *const A = "a@test.example";
static const char *const B = "b@test.example";
static const char *const C = "c@test.example";

static void assert_result(const struct h *h, const char *rcpt, int status,
                          int code, const char *enhanced)
{
  const struct h_result *r = h_find(h, rcpt);
  assert_non_null(r);
  assert_int_equal(r->status, status);
  assert_int_equal(r->code, code);
  assert_string_equal(r->enhanced, enhanced);
}

/* ---- complete transactions ---- */

static void test_delivers_without_pipelining_one_command_at_a_time(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, B, NULL);
  smtpout_session_quit(h.s);
  h_open(&h, "250 ENHANCEDSTATUSCODES\r\n");
  assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n");
  h_server(&h, "250 2.1.0 ok\r\n");
  assert_string_equal(h_client(&h), "RCPT TO:<a@test.example>\r\n");
  h_server(&h, "250 2.1.5 ok\r\n");
  assert_string_equal(h_client(&h), "RCPT TO:<b@test.example>\r\n");
  h_server(&h, "250 2.1.5 ok\r\n");
  assert_string_equal(h_client(&h), "DATA\r\n");
  assert_int_equal(h.nres, 0);
  h_server(&h, "354 go ahead\r\n");
  assert_string_equal(h_client(&h), BODY_DOT);
  /* Accepted at RCPT is not delivered: only the end-of-data 2xx is. */
  assert_int_equal(h.nres, 0);
  h_server(&h, "250 2.0.0 queued as X\r\n");
  assert_result(&h, A, SMTPOUT_STATUS_DELIVERED, 250, "2.0.0");
  assert_result(&h, B, SMTPOUT_STATUS_DELIVERED, 250, "2.0.0");
  assert_string_equal(h_find(&h, A)->text, "queued as X");
  assert_int_equal(h.ndone, 1);
  assert_string_equal(h_client(&h), "QUIT\r\n");
  h_server(&h, "221 bye\r\n");
  assert_true(smtpout_session_is_done(h.s));
  assert_int_equal(smtpout_session_close_reason(h.s), 0);
  h_free(&h);
}

static void test_pipelines_mail_rcpt_data_when_advertised(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, B, C, NULL);
  smtpout_session_quit(h.s);
  h_open(&h, "250-PIPELINING\r\n250 8BITMIME\r\n");
  assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n"
                                    "RCPT TO:<a@test.example>\r\n"
                                    "RCPT TO:<b@test.example>\r\n"
                                    "RCPT TO:<c@test.example>\r\n"
                                    "DATA\r\n");
  h_server(&h, "250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n"
               "450 4.2.0 try later\r\n354 go\r\n");
  assert_result(&h, B, SMTPOUT_STATUS_BOUNCED, 550, "5.1.1");
  assert_result(&h, C, SMTPOUT_STATUS_DEFERRED, 450, "4.2.0");
  /* QUIT closes the group the data opens (RFC 2920 3.1). */
  assert_string_equal(h_client(&h), BODY_DOT "QUIT\r\n");
  assert_int_equal(h.nres, 2);
  h_server(&h, "250 ok\r\n");
  assert_result(&h, A, SMTPOUT_STATUS_DELIVERED, 250, "");
  assert_int_equal(h.nres, 3);
  assert_int_equal(h.ndone, 1);
  assert_string_equal(h_client(&h), "");
  h_server(&h, "221 bye\r\n");
  assert_true(smtpout_session_is_done(h.s));
  assert_int_equal(smtpout_session_close_reason(h.s), 0);
  h_free(&h);
}

static void test_quit_follows_only_the_last_end_of_data(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_submit(&h, B, NULL);
  smtpout_session_quit(h.s);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  /* Another message waits: no QUIT behind this dot. */
  assert_string_equal(h_client(&h), BODY_DOT);
  h_server(&h, "250 ok\r\n");
  assert_result(&h, A, SMTPOUT_STATUS_DELIVERED, 250, "");
  assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n"
                                    "RCPT TO:<b@test.example>\r\n"
                                    "DATA\r\n");
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  assert_string_equal(h_client(&h), BODY_DOT "QUIT\r\n");
  /* A refused end of data is still that message's result, and the QUIT
   * already sent is not sent again. */
  h_server(&h, "451 4.3.0 try later\r\n");
  assert_result(&h, B, SMTPOUT_STATUS_DEFERRED, 451, "4.3.0");
  assert_int_equal(h.ndone, 2);
  assert_string_equal(h_client(&h), "");
  h_server(&h, "221 bye\r\n");
  assert_true(smtpout_session_is_done(h.s));
  assert_int_equal(h.nres, 2);
  h_free(&h);
}

static void test_pipelined_replies_split_across_reads(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  const char *replies = "250 ok\r\n250 ok\r\n354 go\r\n";
  for (size_t i = 0; replies[i]; i++)
    h_server_n(&h, replies + i, 1);
  assert_string_equal(h_client(&h), BODY_DOT);
  h_server(&h, "250 ok\r\n");
  assert_result(&h, A, SMTPOUT_STATUS_DELIVERED, 250, "");
  h_free(&h);
}

static void test_helo_fallback_when_ehlo_gets_5xx(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_start(&h);
  h_server(&h, "220 old server\r\n");
  assert_string_equal(h_client(&h), "EHLO client.example\r\n");
  h_server(&h, "500 5.5.1 what is EHLO\r\n");
  assert_string_equal(h_client(&h), "HELO client.example\r\n");
  h_server(&h, "250 hello\r\n");
  assert_int_equal(smtpout_session_capabilities(h.s), 0);
  assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n");
  h_server(&h, "250 ok\r\n");
  assert_string_equal(h_client(&h), "RCPT TO:<a@test.example>\r\n");
  h_server(&h, "250 ok\r\n");
  assert_string_equal(h_client(&h), "DATA\r\n");
  h_server(&h, "354 go\r\n");
  assert_string_equal(h_client(&h), BODY_DOT);
  h_server(&h, "250 ok\r\n");
  assert_result(&h, A, SMTPOUT_STATUS_DELIVERED, 250, "");
  h_free(&h);
}

static void test_parses_ehlo_capabilities_case_insensitively(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_open(&h, "250-pipelining\r\n250-Size 1000\r\n250-8BITMIME\r\n"
             "250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n"
             "250-DSN\r\n250-AUTH PLAIN LOGIN\r\n250 X-UNKNOWN\r\n");
  uint32_t want = SMTPOUT_CAP_PIPELINING | SMTPOUT_CAP_SIZE |
                  SMTPOUT_CAP_8BITMIME | SMTPOUT_CAP_SMTPUTF8 |
                  SMTPOUT_CAP_ENHANCEDSTATUSCODES | SMTPOUT_CAP_CHUNKING |
                  SMTPOUT_CAP_DSN | SMTPOUT_CAP_AUTH;
  assert_int_equal(smtpout_session_capabilities(h.s), want);
  h_free(&h);
}

static void test_mail_parameters_size_body_smtputf8(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  const char *rcpts[] = {"jörg@test.example"};
  assert_true(smtpout_session_submit(h.s, "s@test.example", rcpts, 1, 1234,
                                     SMTPOUT_MESSAGE_8BITMIME) > 0);
  h_open(&h, "250-SIZE 100000\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n");
  assert_string_equal(h_client(&h), "MAIL FROM:<s@test.example> SIZE=1234 "
                                    "BODY=8BITMIME SMTPUTF8\r\n");
  h_free(&h);
}

static void test_no_parameters_the_server_did_not_offer(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  const char *rcpts[] = {A};
  assert_true(smtpout_session_submit(h.s, "s@test.example", rcpts, 1, 1234,
                                     SMTPOUT_MESSAGE_8BITMIME) > 0);
  h_open(&h, NULL);
  assert_string_equal(h_client(&h), "MAIL FROM:<s@test.example>\r\n");
  h_free(&h);
}

static void test_null_sender_is_sent_as_empty_path(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  const char *rcpts[] = {A};
  assert_true(smtpout_session_submit(h.s, "", rcpts, 1, 0, 0) > 0);
  h_open(&h, NULL);
  assert_string_equal(h_client(&h), "MAIL FROM:<>\r\n");
  h_free(&h);
}

/* ---- failure replies at each command ---- */

static void test_greeting_421_defers_everything(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, B, NULL);
  h_start(&h);
  h_server(&h, "421 4.3.2 too busy\r\n");
  assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, 421, "4.3.2");
  assert_result(&h, B, SMTPOUT_STATUS_DEFERRED, 421, "4.3.2");
  assert_string_equal(h_client(&h), "");
  assert_true(smtpout_session_is_done(h.s));
  assert_int_equal(smtpout_session_close_reason(h.s),
                   SMTPOUT_CLOSE_SERVICE_UNAVAILABLE);
  h_free(&h);
}

/* A 5xx greeting says this server will not talk to us, not that the
 * recipients are bad: as Postfix's smtp_skip_5xx_greeting, deferred (4.X.Y
 * from the server's 5.X.Y, code 0: a deferral never carries a 5xx) and left
 * to the deliver driver for the next address. */
static void test_greeting_5xx_defers_for_the_next_address(void **st)
{
  const char *greetings[] = {"554 5.7.1 no service for you\r\n",
                             "554 no service for you\r\n"};
  const char *enhanced[] = {"4.7.1", "4.0.0"};
  (void)st;
  for (size_t i = 0; i < 2; i++) {
    struct h h;
    h_init(&h, "mx.test.example", NULL);
    h_submit(&h, A, B, NULL);
    h_start(&h);
    h_server(&h, greetings[i]);
    assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, 0, enhanced[i]);
    assert_result(&h, B, SMTPOUT_STATUS_DEFERRED, 0, enhanced[i]);
    assert_non_null(strstr(h_find(&h, A)->text, "554"));
    assert_non_null(strstr(h_find(&h, A)->text, "no service for you"));
    assert_int_equal(h_find(&h, A)->try_another_address, 1);
    assert_int_equal(h_find(&h, B)->try_another_address, 1);
    assert_int_equal(smtpout_session_close_reason(h.s),
                     SMTPOUT_CLOSE_SERVICE_UNAVAILABLE);
    assert_string_equal(h_client(&h), "QUIT\r\n");
    h_server(&h, "221 bye\r\n");
    assert_true(smtpout_session_is_done(h.s));
    h_free(&h);
  }
}

static void test_ehlo_4xx_defers_and_quits(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_start(&h);
  h_server(&h, "220 hi\r\n");
  h_client(&h);
  h_server(&h, "451 4.3.0 later\r\n");
  assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, 451, "4.3.0");
  assert_string_equal(h_client(&h), "QUIT\r\n");
  h_free(&h);
}

static void test_helo_refused_after_ehlo_refused(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_start(&h);
  h_server(&h, "220 hi\r\n");
  h_client(&h);
  h_server(&h, "502 no ehlo\r\n");
  assert_string_equal(h_client(&h), "HELO client.example\r\n");
  h_server(&h, "550 go away\r\n");
  /* Both refused: as a 5xx greeting, the server is skipped. */
  assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, 0, "4.0.0");
  assert_int_equal(h_find(&h, A)->try_another_address, 1);
  assert_non_null(strstr(h_find(&h, A)->text, "550 go away"));
  assert_string_equal(h_client(&h), "QUIT\r\n");
  h_free(&h);
}

static void test_mail_refused_gives_every_recipient_its_reply(void **st)
{
  int codes[] = {451, 550};
  int status[] = {SMTPOUT_STATUS_DEFERRED, SMTPOUT_STATUS_BOUNCED};
  (void)st;
  for (int i = 0; i < 2; i++) {
    struct h h;
    h_init(&h, "mx.test.example", NULL);
    h_submit(&h, A, B, NULL);
    smtpout_session_quit(h.s);
    h_open(&h, NULL);
    h_client(&h);
    char reply[64];
    snprintf(reply, sizeof(reply), "%d sender refused\r\n", codes[i]);
    h_server(&h, reply);
    assert_result(&h, A, status[i], codes[i], "");
    assert_result(&h, B, status[i], codes[i], "");
    /* No RCPT after a refused MAIL; straight to QUIT. */
    assert_string_equal(h_client(&h), "QUIT\r\n");
    h_free(&h);
  }
}

static void test_pipelined_mail_refused_ignores_rcpt_replies(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, B, NULL);
  smtpout_session_quit(h.s);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "550 5.7.1 sender blocked\r\n503 5.5.1 need MAIL\r\n"
               "503 5.5.1 need MAIL\r\n503 5.5.1 need RCPT\r\n");
  assert_result(&h, A, SMTPOUT_STATUS_BOUNCED, 550, "5.7.1");
  assert_result(&h, B, SMTPOUT_STATUS_BOUNCED, 550, "5.7.1");
  assert_int_equal(h.nres, 2);
  assert_string_equal(h_client(&h), "QUIT\r\n");
  h_free(&h);
}

static void test_all_recipients_refused_sends_no_data(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, B, NULL);
  smtpout_session_quit(h.s);
  h_open(&h, NULL);
  h_client(&h);
  h_server(&h, "250 ok\r\n");
  assert_string_equal(h_client(&h), "RCPT TO:<a@test.example>\r\n");
  h_server(&h, "550 no\r\n");
  assert_string_equal(h_client(&h), "RCPT TO:<b@test.example>\r\n");
  h_server(&h, "451 later\r\n");
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_result(&h, A, SMTPOUT_STATUS_BOUNCED, 550, "");
  assert_result(&h, B, SMTPOUT_STATUS_DEFERRED, 451, "");
  assert_int_equal(h.body_reads, 0);
  h_free(&h);
}

static void test_pipelined_all_refused_and_data_354_sends_lone_dot(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  smtpout_session_quit(h.s);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n550 no\r\n354 go anyway\r\n");
  /* RFC 2920 3.1: end the data with a lone dot; no body is sent. */
  assert_string_equal(h_client(&h), ".\r\n");
  assert_int_equal(h.body_reads, 0);
  h_server(&h, "554 no valid recipients\r\n");
  assert_result(&h, A, SMTPOUT_STATUS_BOUNCED, 550, "");
  assert_int_equal(h.nres, 1);
  assert_string_equal(h_client(&h), "QUIT\r\n");
  h_free(&h);
}

static void test_data_refused_gives_accepted_recipients_its_reply(void **st)
{
  int codes[] = {451, 554};
  int status[] = {SMTPOUT_STATUS_DEFERRED, SMTPOUT_STATUS_BOUNCED};
  (void)st;
  for (int i = 0; i < 2; i++) {
    struct h h;
    h_init(&h, "mx.test.example", NULL);
    h_submit(&h, A, B, NULL);
    smtpout_session_quit(h.s);
    h_open(&h, "250 PIPELINING\r\n");
    h_client(&h);
    char replies[128];
    snprintf(replies, sizeof(replies), "250 ok\r\n250 ok\r\n550 no\r\n"
             "%d not now\r\n", codes[i]);
    h_server(&h, replies);
    assert_result(&h, A, status[i], codes[i], "");
    assert_result(&h, B, SMTPOUT_STATUS_BOUNCED, 550, "");
    assert_string_equal(h_client(&h), "QUIT\r\n");
    h_free(&h);
  }
}

static void test_end_of_data_refused(void **st)
{
  int codes[] = {452, 552};
  int status[] = {SMTPOUT_STATUS_DEFERRED, SMTPOUT_STATUS_BOUNCED};
  (void)st;
  for (int i = 0; i < 2; i++) {
    struct h h;
    h_init(&h, "mx.test.example", NULL);
    h_submit(&h, A, NULL);
    h_open(&h, "250 PIPELINING\r\n");
    h_client(&h);
    h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
    h_client(&h);
    char reply[64];
    snprintf(reply, sizeof(reply), "%d 4.3.1 full\r\n", codes[i]);
    h_server(&h, reply);
    const struct h_result *r = h_find(&h, A);
    assert_non_null(r);
    assert_int_equal(r->status, status[i]);
    assert_int_equal(r->code, codes[i]);
    /* "552 4.3.1": the class disagrees with the code, the code wins
     * and the enhanced code is dropped. */
    assert_string_equal(r->enhanced, i == 0 ? "4.3.1" : "");
    assert_int_equal(r->possibly_delivered, 0);
    h_free(&h);
  }
}

static void test_multiline_reply_text_is_joined(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n550-5.1.1 mailbox unknown\r\n550-5.1.1 see "
               "https://x\r\n550 5.1.1 bye\r\n503 no rcpt\r\n");
  const struct h_result *r = h_find(&h, A);
  assert_non_null(r);
  assert_int_equal(r->code, 550);
  assert_string_equal(r->enhanced, "5.1.1");
  assert_string_equal(r->text, "mailbox unknown see https://x bye");
  h_free(&h);
}

/* ---- malformed and hostile replies ---- */

static void run_malformed(const char *bad, const char *why_fragment)
{
  struct h h;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_open(&h, NULL);
  assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n");
  h_server(&h, bad);
  assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, 0, "4.5.0");
  assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_PROTOCOL);
  assert_non_null(strstr(smtpout_session_close_text(h.s), why_fragment));
  assert_true(smtpout_session_is_done(h.s));
  assert_string_equal(h_client(&h), "");
  h_free(&h);
}

static void test_malformed_reply_codes_are_protocol_errors(void **st)
{
  (void)st;
  run_malformed("600 six hundred\r\n", "malformed reply code");
  run_malformed("099 low\r\n", "malformed reply code");
  run_malformed("25O letter O\r\n", "malformed reply code");
  run_malformed("2500 four digits\r\n", "malformed reply line");
  run_malformed("ok\r\n", "malformed reply code");
  run_malformed("\r\n", "malformed reply code");
}

static void test_multiline_codes_that_disagree_are_rejected(void **st)
{
  (void)st;
  run_malformed("250-ok\r\n550 no\r\n", "disagreeing codes");
}

static void test_unexpected_intermediate_reply_is_protocol_error(void **st)
{
  (void)st;
  run_malformed("354 what\r\n", "unexpected reply to MAIL FROM");
}

static void test_overlong_reply_line_is_bounded(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_open(&h, NULL);
  h_client(&h);
  char line[512];
  memset(line, 'x', sizeof(line));
  h_server(&h, "250 ");
  /* 8 KiB of one line without an end: refused before it is complete. */
  for (int i = 0; i < 16 && !smtpout_session_is_done(h.s); i++)
    h_server_n(&h, line, sizeof(line));
  assert_true(smtpout_session_is_done(h.s));
  assert_non_null(strstr(smtpout_session_close_text(h.s), "too long"));
  assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, 0, "4.5.0");
  h_free(&h);
}

static void test_endless_multiline_reply_is_bounded(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_start(&h);
  h_server(&h, "220 hi\r\n");
  h_client(&h);
  for (int i = 0; i < 1000 && !smtpout_session_is_done(h.s); i++)
    h_server(&h, "250-X-PADDING\r\n");
  assert_true(smtpout_session_is_done(h.s));
  assert_non_null(strstr(smtpout_session_close_text(h.s), "too long"));
  assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, 0, "4.5.0");
  h_free(&h);
}

static void test_nul_and_8bit_in_reply_text_are_sanitised(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_open(&h, NULL);
  h_client(&h);
  h_server(&h, "250 ok\r\n");
  h_client(&h);
  static const char reply[] = "550 bad\0user \xff\xfe\r\n";
  h_server_n(&h, reply, sizeof(reply) - 1);
  const struct h_result *r = h_find(&h, A);
  assert_non_null(r);
  assert_int_equal(r->status, SMTPOUT_STATUS_BOUNCED);
  assert_string_equal(r->text, "bad?user ??");
  h_free(&h);
}

static void test_unsolicited_reply_is_protocol_error(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_open(&h, NULL);
  /* Idle: no command is outstanding, so any reply is out of turn. */
  h_server(&h, "250 surprise\r\n");
  assert_true(smtpout_session_is_done(h.s));
  assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_PROTOCOL);
  assert_int_equal(smtpout_session_submit(h.s, "s@x.example",
                                          (const char *[]){A}, 1, 0, 0),
                   SMTPOUT_ERR_INVALID_STATE);
  h_free(&h);
}

static void test_unsolicited_421_when_idle_ends_session(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_open(&h, NULL);
  h_server(&h, "421 4.3.2 shutting down\r\n");
  assert_true(smtpout_session_is_done(h.s));
  assert_int_equal(smtpout_session_close_reason(h.s),
                   SMTPOUT_CLOSE_SERVICE_UNAVAILABLE);
  h_free(&h);
}

static void test_421_mid_transaction_defers_the_undecided(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, B, C, NULL);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n550 no\r\n421 4.4.2 shutting down\r\n");
  assert_result(&h, A, SMTPOUT_STATUS_BOUNCED, 550, "");
  assert_result(&h, B, SMTPOUT_STATUS_DEFERRED, 421, "4.4.2");
  assert_result(&h, C, SMTPOUT_STATUS_DEFERRED, 421, "4.4.2");
  assert_true(smtpout_session_is_done(h.s));
  h_free(&h);
}

/* A reply while the data is still being written answers nothing (RFC
 * 5321 4.1.1.4: the reply comes after the end of data): a protocol error,
 * deferred 4.5.0 with code 0, never the reply's own 2xx or 5xx on a
 * deferral.  A 421 is the server closing: deferred with the 421. */
static void test_reply_during_body_ends_the_connection(void **st)
{
  static const struct {
    const char *reply;
    int code;
    const char *enhanced;
    int error;
  } cases[] = {
    {"554 5.3.4 too big, go away\r\n", 0, "4.5.0", SMTPOUT_CLOSE_PROTOCOL},
    {"250 2.0.0 ok, got it\r\n", 0, "4.5.0", SMTPOUT_CLOSE_PROTOCOL},
    {"451 4.3.0 later\r\n", 0, "4.5.0", SMTPOUT_CLOSE_PROTOCOL},
    {"421 4.3.2 going down\r\n", 421, "4.3.2",
     SMTPOUT_CLOSE_SERVICE_UNAVAILABLE},
  };
  static char big[200000];
  memset(big, 'a', sizeof(big));
  (void)st;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct h h;
    h_init(&h, "mx.test.example", NULL);
    h_body(&h, big, sizeof(big));
    h_submit(&h, A, NULL);
    h_open(&h, "250 PIPELINING\r\n");
    h_client(&h);
    h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
    const uint8_t *p;
    size_t n;
    assert_int_equal(smtpout_session_peek_output(h.s, &p, &n, h.now), 0);
    assert_true(n > 0);
    smtpout_session_consume_output(h.s, n, h.now);
    h_server(&h, cases[i].reply);
    assert_true(smtpout_session_is_done(h.s));
    assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, cases[i].code,
                  cases[i].enhanced);
    assert_int_equal(h_find(&h, A)->possibly_delivered, 0);
    assert_int_equal(smtpout_session_close_reason(h.s), cases[i].error);
    h_free(&h);
  }
}

/* A 421 in the place of the reply to the end of data is that reply: the
 * server refused the message.  A reply came, so the recipients are
 * deferred with it, not flagged possibly delivered (that is for a reply
 * that never came), and the deliver driver may try another address. */
static void test_421_to_end_of_data_is_not_possibly_delivered(void **st)
{
  (void)st;
  for (int quit_behind = 0; quit_behind < 2; quit_behind++) {
    struct h h;
    h_init(&h, "mx.test.example", NULL);
    h_submit(&h, A, B, NULL);
    if (quit_behind)
      smtpout_session_quit(h.s);
    h_open(&h, "250 PIPELINING\r\n");
    h_client(&h);
    h_server(&h, "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
    assert_string_equal(h_client(&h),
                        quit_behind ? BODY_DOT "QUIT\r\n" : BODY_DOT);
    h_server(&h, "421 4.3.2 shutting down\r\n");
    assert_true(smtpout_session_is_done(h.s));
    assert_int_equal(smtpout_session_close_reason(h.s),
                     SMTPOUT_CLOSE_SERVICE_UNAVAILABLE);
    assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, 421, "4.3.2");
    assert_result(&h, B, SMTPOUT_STATUS_DEFERRED, 421, "4.3.2");
    assert_int_equal(h_find(&h, A)->possibly_delivered, 0);
    assert_int_equal(h_find(&h, B)->possibly_delivered, 0);
    assert_int_equal(h_find(&h, A)->try_another_address, 1);
    h_free(&h);
  }
}

/* ---- disconnects ---- */

static void test_disconnect_at_each_phase_defers(void **st)
{
  (void)st;
  /* Replies that bring the session to each phase before the close. */
  const char *before[] = {
    "",                                          /* greeting */
    "220 hi\r\n",                                /* EHLO */
    "220 hi\r\n250 ok\r\n",                      /* MAIL */
    "220 hi\r\n250 ok\r\n250 ok\r\n",            /* RCPT */
    "220 hi\r\n250 ok\r\n250 ok\r\n250 ok\r\n",  /* DATA */
  };
  for (size_t i = 0; i < sizeof(before) / sizeof(before[0]); i++) {
    struct h h;
    h_init(&h, "mx.test.example", NULL);
    h_submit(&h, A, NULL);
    h_start(&h);
    for (const char *p = before[i]; *p;) {
      const char *e = strstr(p, "\r\n") + 2;
      h_server_n(&h, p, (size_t)(e - p));
      h_client(&h);
      p = e;
    }
    assert_int_equal(h.nres, 0);
    assert_int_equal(smtpout_session_feed_eof(h.s, h.now), 0);
    assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, 0, "4.4.2");
    assert_int_equal(h_find(&h, A)->possibly_delivered, 0);
    assert_int_equal(smtpout_session_close_reason(h.s),
                     SMTPOUT_CLOSE_CONNECTION_CLOSED);
    assert_true(smtpout_session_is_done(h.s));
    h_free(&h);
  }
}

static void test_disconnect_after_dot_is_possibly_delivered(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, B, NULL);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n250 ok\r\n550 no\r\n354 go\r\n");
  assert_string_equal(h_client(&h), BODY_DOT);
  smtpout_session_feed_eof(h.s, h.now);
  const struct h_result *r = h_find(&h, A);
  assert_non_null(r);
  assert_int_equal(r->status, SMTPOUT_STATUS_DEFERRED);
  assert_int_equal(r->possibly_delivered, 1);
  /* The refused one keeps its own result, not flagged. */
  assert_result(&h, B, SMTPOUT_STATUS_BOUNCED, 550, "");
  assert_int_equal(h_find(&h, B)->possibly_delivered, 0);
  h_free(&h);
}

static void test_disconnect_before_dot_left_the_buffer_is_not_delivered(
    void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  /* Write all but the last byte of the data: the server cannot have seen
   * the end of data. */
  const uint8_t *p;
  size_t n;
  smtpout_session_peek_output(h.s, &p, &n, h.now);
  assert_int_equal(n, strlen(BODY_DOT));
  smtpout_session_consume_output(h.s, n - 1, h.now);
  smtpout_session_feed_eof(h.s, h.now);
  assert_int_equal(h_find(&h, A)->possibly_delivered, 0);
  h_free(&h);
}

/* A reply that arrives before its command was written answers nothing
 * the client sent: here an "unsolicited" 250 in the greeting's packet,
 * which used to be taken as the reply to the EHLO queued a moment later,
 * so the client sent MAIL without ever hearing the real EHLO reply. */
static void test_reply_before_its_command_was_written_is_refused(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, B, NULL);
  h_start(&h);
  h_server(&h, "220 mx ESMTP\r\n250 2.0.0 unsolicited reply\r\n");
  assert_true(smtpout_session_is_done(h.s) ||
              !smtpout_session_want_read(h.s));
  assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_PROTOCOL);
  assert_non_null(strstr(smtpout_session_close_text(h.s),
                         "replied to EHLO before it was sent"));
  assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, 0, "4.5.0");
  assert_result(&h, B, SMTPOUT_STATUS_DEFERRED, 0, "4.5.0");
  assert_string_equal(h_client(&h), ""); /* not even the EHLO */
  h_free(&h);

  /* Replies to pipelined commands still in the buffer: the same. */
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_open(&h, "250 PIPELINING\r\n");
  h_server(&h, "250 2.1.0 ok\r\n"); /* MAIL FROM not written yet */
  assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_PROTOCOL);
  assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, 0, "4.5.0");
  h_free(&h);
}

/* Found by fuzz-session: a 2xx that arrived while the end of data was
 * still queued (peeked, partly written) was taken as its reply, and the
 * recipient reported delivered before the message had left. */
static void test_reply_to_dot_not_yet_written_never_delivers(void **st)
{
  (void)st;
  /* k = how much of the data the host writes before the early 2xx. */
  for (size_t k = 0; k < strlen(BODY_DOT); k++) {
    struct h h;
    h_init(&h, "mx.test.example", NULL);
    h_submit(&h, A, NULL);
    h_open(&h, "250 PIPELINING\r\n");
    h_client(&h);
    h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
    const uint8_t *p;
    size_t n;
    smtpout_session_peek_output(h.s, &p, &n, h.now);
    assert_int_equal(n, strlen(BODY_DOT));
    if (k > 0)
      smtpout_session_consume_output(h.s, k, h.now);
    h_server(&h, "250 2.0.0 queued\r\n");
    assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, 0, "4.5.0");
    assert_int_equal(h_find(&h, A)->possibly_delivered, 0);
    assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_PROTOCOL);
    assert_non_null(strstr(smtpout_session_close_text(h.s),
                           "before it was sent"));
    h_free(&h);
  }
  /* Once the last byte is written, the same reply delivers. */
  struct h h;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  assert_string_equal(h_client(&h), BODY_DOT);
  h_server(&h, "250 2.0.0 queued\r\n");
  assert_result(&h, A, SMTPOUT_STATUS_DELIVERED, 250, "2.0.0");
  h_free(&h);
}

/* With QUIT pipelined behind the dot, the dot has left once no more than
 * the QUIT line is unsent. */
static void disconnect_with_unsent(size_t unsent, int possibly)
{
  struct h h;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  smtpout_session_quit(h.s);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  const uint8_t *p;
  size_t n;
  smtpout_session_peek_output(h.s, &p, &n, h.now);
  assert_int_equal(n, strlen(BODY_DOT "QUIT\r\n"));
  smtpout_session_consume_output(h.s, n - unsent, h.now);
  smtpout_session_feed_eof(h.s, h.now);
  const struct h_result *r = h_find(&h, A);
  assert_non_null(r);
  assert_int_equal(r->status, SMTPOUT_STATUS_DEFERRED);
  assert_int_equal(r->possibly_delivered, possibly);
  h_free(&h);
}

static void test_disconnect_with_quit_behind_dot_is_possibly_delivered(
    void **st)
{
  (void)st;
  disconnect_with_unsent(0, 1);
  disconnect_with_unsent(strlen("QUIT\r\n"), 1);
  disconnect_with_unsent(1, 1);
  /* One byte of the dot's line still here: not seen by the server. */
  disconnect_with_unsent(strlen("\nQUIT\r\n"), 0);
}

/* ---- timeouts ---- */

static void test_each_timeout_defers_with_its_phase(void **st)
{
  (void)st;
  struct {
    const char *before;
    int which;
    const char *phase;
  } cases[] = {
    {"", SMTPOUT_TIMEOUT_GREETING, "greeting"},
    {"220 hi\r\n", SMTPOUT_TIMEOUT_EHLO, "EHLO"},
    {"220 hi\r\n250 ok\r\n", SMTPOUT_TIMEOUT_MAIL_FROM, "MAIL FROM"},
    {"220 hi\r\n250 ok\r\n250 ok\r\n", SMTPOUT_TIMEOUT_RCPT_TO, "RCPT TO"},
    {"220 hi\r\n250 ok\r\n250 ok\r\n250 ok\r\n", SMTPOUT_TIMEOUT_DATA,
     "DATA"},
    {"220 hi\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n",
     SMTPOUT_TIMEOUT_DATA, "end of data"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct h h;
    h_init(&h, "mx.test.example", NULL);
    for (int t = 0; t < SMTPOUT_TIMEOUT_COUNT; t++)
      smtpout_session_set_timeout(h.s, t, 60000);
    smtpout_session_set_timeout(h.s, cases[i].which, 5000);
    h_submit(&h, A, NULL);
    h_start(&h);
    for (const char *p = cases[i].before; *p;) {
      const char *e = strstr(p, "\r\n") + 2;
      h_server_n(&h, p, (size_t)(e - p));
      h_client(&h);
      p = e;
    }
    assert_int_equal(smtpout_session_expiry(h.s), h.now + 5000);
    h_tick(&h, 4999);
    assert_int_equal(h.nres, 0);
    h_tick(&h, 1);
    assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, 0, "4.4.2");
    assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_TIMEOUT);
    assert_non_null(strstr(smtpout_session_close_text(h.s), cases[i].phase));
    /* Only a timeout after the whole data left is a possible delivery. */
    assert_int_equal(h_find(&h, A)->possibly_delivered,
                     strcmp(cases[i].phase, "end of data") == 0);
    assert_true(smtpout_session_is_done(h.s));
    h_free(&h);
  }
}

static void test_dripped_reply_does_not_extend_the_deadline(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  smtpout_session_set_timeout(h.s, SMTPOUT_TIMEOUT_GREETING, 3000);
  h_submit(&h, A, NULL);
  h_start(&h);
  const char *g = "220 a slow greeting that never ends\r\n";
  for (int i = 0; i < 30; i++) {
    h.now += 100;
    h_server_n(&h, g + i, 1);
    smtpout_session_handle_expiry(h.s, h.now);
  }
  assert_int_equal(h.nres, 1);
  assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, 0, "4.4.2");
  assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_TIMEOUT);
  h_free(&h);
}

static void test_data_timeout_is_capped_for_the_data_command(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  /* RFC 5321 4.5.3.2: DATA initiation 2 minutes, even with a 10 minute
   * data timeout. */
  h_submit(&h, A, NULL);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n250 ok\r\n");
  assert_int_equal(smtpout_session_expiry(h.s), h.now + 2 * 60 * 1000);
  h_server(&h, "354 go\r\n");
  h_client(&h);
  assert_int_equal(smtpout_session_expiry(h.s), h.now + 10 * 60 * 1000);
  h_free(&h);
}

static void test_quit_timeout_ends_quietly(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  smtpout_session_quit(h.s);
  h_open(&h, NULL);
  assert_string_equal(h_client(&h), "QUIT\r\n");
  h_tick(&h, 5 * 60 * 1000);
  assert_true(smtpout_session_is_done(h.s));
  assert_int_equal(h.nres, 0);
  h_free(&h);
}

/* ---- data on the wire ---- */

#define RUN_BODY(body, wire, chunk) run_body(body, sizeof(body) - 1, wire, chunk)

/* Not inlined: under AddressSanitizer each inlined copy would keep its own
 * 1 MiB struct h on the stack, and 44 of them overflow it. */
static __attribute__((noinline)) void run_body(const char *body, size_t len,
                                               const char *wire, size_t chunk)
{
  struct h h;
  h_init(&h, "mx.test.example", NULL);
  h_body(&h, body, len);
  h.chunk = chunk;
  h_submit(&h, A, NULL);
  /* 8BITMIME: 8-bit bodies go as they are (see the conversion tests). */
  h_open(&h, "250-8BITMIME\r\n250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  assert_string_equal(h_client(&h), wire);
  h_free(&h);
}

static void test_body_is_canonicalised(void **st)
{
  (void)st;
  size_t chunks[] = {0, 1, 2, 3};
  for (size_t c = 0; c < 4; c++) {
    RUN_BODY("", ".\r\n", chunks[c]);
    RUN_BODY(".", "..\r\n.\r\n", chunks[c]);
    RUN_BODY("..\r\n", "...\r\n.\r\n", chunks[c]);
    RUN_BODY("a\nb\n", "a\r\nb\r\n.\r\n", chunks[c]);
    RUN_BODY("a\rb\r", "a\r\nb\r\n.\r\n", chunks[c]);
    RUN_BODY("a\n.\nb", "a\r\n..\r\nb\r\n.\r\n", chunks[c]);
    RUN_BODY("a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n", chunks[c]);
    RUN_BODY("no final newline", "no final newline\r\n.\r\n", chunks[c]);
    RUN_BODY("x\r\r\ny", "x\r\n\r\ny\r\n.\r\n", chunks[c]);
    RUN_BODY("\xc3\xa9t\xe9\n", "\xc3\xa9t\xe9\r\n.\r\n", chunks[c]);
    RUN_BODY("a\r\n.\r", "a\r\n..\r\n.\r\n", chunks[c]);
  }
}

static void test_large_body_streams_with_bounded_output(void **st)
{
  struct h h;
  (void)st;
  size_t len = 8 << 20;
  char *big = malloc(len);
  assert_non_null(big);
  for (size_t i = 0; i < len; i++)
    big[i] = (i % 100 == 99) ? '\n' : 'x';
  h_init(&h, "mx.test.example", NULL);
  h_body(&h, big, len);
  h_submit(&h, A, NULL);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  size_t total = 0, max_peek = 0;
  for (;;) {
    const uint8_t *p;
    size_t n;
    smtpout_session_peek_output(h.s, &p, &n, h.now);
    if (n == 0)
      break;
    if (n > max_peek)
      max_peek = n;
    total += n;
    smtpout_session_consume_output(h.s, n, h.now);
  }
  /* every '\n' became CRLF, the unterminated last line got one, then
   * ".\r\n" */
  assert_int_equal(total, len + len / 100 + 2 + 3);
  assert_true(max_peek < 128 * 1024);
  h_server(&h, "250 ok\r\n");
  assert_result(&h, A, SMTPOUT_STATUS_DELIVERED, 250, "");
  free(big);
  h_free(&h);
}

static void test_body_wouldblock_then_resume(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h.chunk = 4;
  h.body_block_at = 8;
  h_submit(&h, A, NULL);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  assert_string_equal(h_client(&h), "Subject:");
  assert_false(smtpout_session_want_write(h.s));
  smtpout_session_resume_body(h.s);
  assert_true(smtpout_session_want_write(h.s));
  assert_string_equal(h_client(&h), " t\r\n\r\nhello\r\n.\r\n");
  h_free(&h);
}

/* read_body returning 0 bytes without the end means "nothing now", as
 * WOULDBLOCK does: the session waits for resume_body() instead of asking
 * again in a loop that no deadline could interrupt, and the data-block
 * timeout still ends a body that never comes. */
static void test_body_empty_read_waits_like_wouldblock(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  smtpout_session_set_timeout(h.s, SMTPOUT_TIMEOUT_DATA, 60000);
  h.chunk = 8;
  h.body_empty = 1;
  h_submit(&h, A, NULL);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  assert_string_equal(h_client(&h), "");
  assert_int_equal(h.body_reads, 1);
  assert_false(smtpout_session_want_write(h.s));
  assert_int_equal(smtpout_session_expiry(h.s), h.now + 60000);
  /* Resumed: the body goes out whole. */
  smtpout_session_resume_body(h.s);
  assert_true(smtpout_session_want_write(h.s));
  assert_string_equal(h_client(&h), BODY_DOT);
  h_server(&h, "250 ok\r\n");
  assert_result(&h, A, SMTPOUT_STATUS_DELIVERED, 250, "");
  h_free(&h);

  /* Never resumed: the deadline fires. */
  h_init(&h, "mx.test.example", NULL);
  smtpout_session_set_timeout(h.s, SMTPOUT_TIMEOUT_DATA, 60000);
  h.body_empty = 1000;
  h_submit(&h, A, NULL);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  assert_string_equal(h_client(&h), "");
  h_tick(&h, 60000);
  assert_true(smtpout_session_is_done(h.s));
  assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_TIMEOUT);
  assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, 0, "4.4.2");
  h_free(&h);
}

static void test_body_callback_failure_drops_without_dot(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h.body_fail = 1;
  h_submit(&h, A, NULL);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  assert_string_equal(h_client(&h), "");
  assert_true(smtpout_session_is_done(h.s));
  assert_int_equal(smtpout_session_close_reason(h.s),
                   SMTPOUT_CLOSE_CALLBACK_FAILURE);
  assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, 0, "4.3.0");
  assert_int_equal(h_find(&h, A)->possibly_delivered, 0);
  h_free(&h);
}

/* ---- several messages on one connection ---- */

/* ---- 8-bit content and servers without 8BITMIME (RFC 6152 3) ---- */

static const char mixed8[] =
    "Subject: m\n"
    "Content-Type: multipart/mixed; boundary=\"=b=\"\n"
    "\n"
    "--=b=\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "\xc3\xa9t\xc3\xa9 = summer\n"
    ".\n"
    "--=b=\n"
    "Content-Type: application/octet-stream\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "\xff\xfe\n"
    "--=b=--\n";

static const char mixed8_wire[] =
    "Subject: m\r\n"
    "Content-Type: multipart/mixed; boundary=\"=b=\"\r\n"
    "\r\n"
    "--=b=\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "=C3=A9t=C3=A9 =3D summer\r\n"
    "..\r\n"
    "--=b=\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "//4=\r\n"
    "--=b=--\r\n"
    ".\r\n";

/* Runs mixed8 through a session to a server without 8BITMIME, its body
 * read `chunk` bytes at a time; returns the data written. */
static __attribute__((noinline)) void run_converted(size_t chunk)
{
  struct h h;
  h_init(&h, "mx.test.example", NULL);
  h_body(&h, mixed8, sizeof(mixed8) - 1);
  h.chunk = chunk;
  const char *rcpts[] = {A};
  assert_true(smtpout_session_submit(h.s, "s@test.example", rcpts, 1, 1234,
                                     SMTPOUT_MESSAGE_8BITMIME) > 0);
  h_open(&h, "250-SIZE 100000\r\n250 PIPELINING\r\n");
  /* No BODY=8BITMIME (not offered), and no SIZE=: the size given was the
   * 8-bit one (Postfix does not announce a size when it downgrades). */
  assert_string_equal(h_client(&h), "MAIL FROM:<s@test.example>\r\n"
                                    "RCPT TO:<a@test.example>\r\n"
                                    "DATA\r\n");
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  assert_string_equal(h_client(&h), mixed8_wire);
  h_server(&h, "250 ok\r\n");
  assert_result(&h, A, SMTPOUT_STATUS_DELIVERED, 250, "");
  h_free(&h);
}

static void test_8bit_body_is_converted_for_a_server_without_8bitmime(
    void **st)
{
  (void)st;
  /* Read whole, and in pieces that split the boundary, the folded
   * header and the CRLFs across read_body calls. */
  size_t chunks[] = {0, 1, 2, 3, 5, 7, 64};
  for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++)
    run_converted(chunks[i]);
}

static void test_unflagged_8bit_body_is_never_sent_raw(void **st)
{
  struct h h;
  (void)st;
  static const char body[] = "Subject: t\r\n\r\nascii first\r\n"
                             "then caf\xc3\xa9\r\nmore\r\n";
  h_init(&h, "mx.test.example", NULL);
  h_body(&h, body, sizeof(body) - 1);
  h.chunk = 8;
  h_submit(&h, A, NULL); /* no SMTPOUT_MESSAGE_8BITMIME */
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  const char *out = h_client(&h);
  /* What went out is 7-bit and never ends the data. */
  for (size_t i = 0; i < h.outlen; i++)
    assert_true((unsigned char)out[i] < 0x80);
  assert_null(strstr(out, "\r\n.\r\n"));
  assert_true(smtpout_session_is_done(h.s));
  assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_CONTENT);
  assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, 0, "4.6.3");
  assert_int_equal(h_find(&h, A)->possibly_delivered, 0);
  assert_non_null(strstr(h_find(&h, A)->text, "not flagged 8BITMIME"));
  h_free(&h);
}

static void test_unflagged_7bit_body_is_sent_as_it_is(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  assert_string_equal(h_client(&h), BODY_DOT);
  h_free(&h);
}

static void test_unconvertible_8bit_message_is_bounced_before_mail(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  const char *rcpts[] = {A, B};
  assert_true(smtpout_session_submit(
                  h.s, "s@test.example", rcpts, 2, 0,
                  SMTPOUT_MESSAGE_8BITMIME |
                      SMTPOUT_MESSAGE_NO_7BIT_CONVERSION) > 0);
  smtpout_session_quit(h.s);
  h_open(&h, "250 PIPELINING\r\n");
  assert_result(&h, A, SMTPOUT_STATUS_BOUNCED, 0, "5.6.3");
  assert_result(&h, B, SMTPOUT_STATUS_BOUNCED, 0, "5.6.3");
  assert_string_equal(h_client(&h), "QUIT\r\n");
  h_free(&h);
}

static void test_conversion_that_fails_midway_drops_the_connection(void **st)
{
  struct h h;
  (void)st;
  /* Flagged 8-bit but not scanned: 8-bit data in a part declared 7bit
   * shows up only while sending. */
  static const char body[] = "Content-Type: multipart/mixed; boundary=b\r\n"
                             "\r\n--b\r\n\r\nca\xc3\xa9\r\n--b--\r\n";
  h_init(&h, "mx.test.example", NULL);
  h_body(&h, body, sizeof(body) - 1);
  const char *rcpts[] = {A};
  assert_true(smtpout_session_submit(h.s, "s@test.example", rcpts, 1, 0,
                                     SMTPOUT_MESSAGE_8BITMIME) > 0);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  const char *out = h_client(&h);
  for (size_t i = 0; i < h.outlen; i++)
    assert_true((unsigned char)out[i] < 0x80);
  assert_null(strstr(out, "\r\n.\r\n"));
  assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_CONTENT);
  assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, 0, "4.6.3");
  assert_non_null(strstr(h_find(&h, A)->text, "declared 7bit"));
  h_free(&h);
}

static void test_8bit_goes_as_it_is_to_a_server_with_smtputf8(void **st)
{
  struct h h;
  (void)st;
  /* RFC 6531 3.1: a server offering SMTPUTF8 takes 8-bit data, even one
   * that forgets to say 8BITMIME. */
  static const char body[] = "Subject: caf\xc3\xa9\r\n\r\n\xc3\xa9\r\n";
  h_init(&h, "mx.test.example", NULL);
  h_body(&h, body, sizeof(body) - 1);
  const char *rcpts[] = {A};
  assert_true(smtpout_session_submit(
                  h.s, "s@test.example", rcpts, 1, 0,
                  SMTPOUT_MESSAGE_8BITMIME | SMTPOUT_MESSAGE_SMTPUTF8 |
                      SMTPOUT_MESSAGE_NO_7BIT_CONVERSION) > 0);
  h_open(&h, "250-SMTPUTF8\r\n250 PIPELINING\r\n");
  assert_string_equal(h_client(&h), "MAIL FROM:<s@test.example> SMTPUTF8\r\n"
                                    "RCPT TO:<a@test.example>\r\n"
                                    "DATA\r\n");
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  assert_string_equal(h_client(&h), "Subject: caf\xc3\xa9\r\n\r\n"
                                    "\xc3\xa9\r\n.\r\n");
  h_free(&h);
}

static void test_size_is_sent_as_given_when_nothing_is_converted(void **st)
{
  struct h h;
  (void)st;
  /* The size a scan reports for an LF-only body: one CRLF per line. */
  static const char body[] = "Subject: t\n\nline\n";
  uint64_t size;
  uint32_t flags;
  assert_int_equal(smtpout_message_inspect((const uint8_t *)body,
                                           sizeof(body) - 1, &size, &flags),
                   0);
  assert_int_equal(size, sizeof(body) - 1 + 3);
  h_init(&h, "mx.test.example", NULL);
  h_body(&h, body, sizeof(body) - 1);
  const char *rcpts[] = {A};
  assert_true(smtpout_session_submit(h.s, "s@test.example", rcpts, 1, size,
                                     flags) > 0);
  h_open(&h, "250-SIZE 1000\r\n250 PIPELINING\r\n");
  assert_string_equal(h_client(&h), "MAIL FROM:<s@test.example> SIZE=20\r\n"
                                    "RCPT TO:<a@test.example>\r\n"
                                    "DATA\r\n");
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  const char *data = h_client(&h);
  /* SIZE= is exactly what goes out before the final ".\r\n". */
  assert_int_equal(h.outlen - 3, size);
  assert_string_equal(data, "Subject: t\r\n\r\nline\r\n.\r\n");
  h_free(&h);
}

static void test_reuses_connection_with_rset_only_when_needed(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  int m1 = h_submit(&h, A, NULL);
  int m2 = h_submit(&h, B, NULL);
  int m3 = h_submit(&h, C, NULL);
  smtpout_session_quit(h.s);
  h_open(&h, NULL);
  /* message 1: delivered; no RSET needed after a completed transaction */
  assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n");
  h_server(&h, "250 ok\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n");
  h_client(&h);
  h_server(&h, "354 go\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n");
  /* message 2: its only recipient refused; the transaction stays open */
  assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n");
  h_server(&h, "250 ok\r\n");
  h_client(&h);
  h_server(&h, "550 no\r\n");
  /* message 3: RSET first */
  assert_string_equal(h_client(&h), "RSET\r\n");
  h_server(&h, "250 reset\r\n");
  assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n");
  h_server(&h, "250 ok\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n");
  h_client(&h);
  h_server(&h, "354 go\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n");
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_result(&h, A, SMTPOUT_STATUS_DELIVERED, 250, "");
  assert_result(&h, B, SMTPOUT_STATUS_BOUNCED, 550, "");
  assert_result(&h, C, SMTPOUT_STATUS_DELIVERED, 250, "");
  assert_int_equal(h.ndone, 3);
  assert_int_equal(h.done_ids[0], m1);
  assert_int_equal(h.done_ids[1], m2);
  assert_int_equal(h.done_ids[2], m3);
  h_free(&h);
}

/* RSET cannot fail (RFC 5321 4.1.1.5): a 5xx to it is a protocol error,
 * deferred 4.5.0 with code 0, not a deferral carrying a 5xx; a 4xx keeps
 * its own codes. */
static void test_refused_rset_defers_with_codes_of_a_deferral(void **st)
{
  const char *replies[] = {"550 5.5.1 no reset for you\r\n",
                           "452 4.3.1 busy\r\n"};
  int codes[] = {0, 452};
  const char *enhanced[] = {"4.5.0", "4.3.1"};
  (void)st;
  for (size_t i = 0; i < 2; i++) {
    struct h h;
    h_init(&h, "mx.test.example", NULL);
    h_submit(&h, A, NULL);
    h_submit(&h, B, NULL);
    h_open(&h, NULL);
    assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n");
    h_server(&h, "250 ok\r\n");
    h_client(&h);
    h_server(&h, "550 no\r\n"); /* the transaction stays open */
    assert_string_equal(h_client(&h), "RSET\r\n");
    h_server(&h, replies[i]);
    assert_result(&h, A, SMTPOUT_STATUS_BOUNCED, 550, "");
    assert_result(&h, B, SMTPOUT_STATUS_DEFERRED, codes[i], enhanced[i]);
    assert_int_equal(smtpout_session_close_reason(h.s), SMTPOUT_CLOSE_PROTOCOL);
    assert_string_equal(h_client(&h), "QUIT\r\n");
    h_free(&h);
  }
}

static void test_pipelined_rset_precedes_next_mail(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_submit(&h, B, NULL);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h);
  h_server(&h, "250 ok\r\n250 ok\r\n451 not now\r\n");
  assert_string_equal(h_client(&h), "RSET\r\n"
                                    "MAIL FROM:<sender@test.example>\r\n"
                                    "RCPT TO:<b@test.example>\r\n"
                                    "DATA\r\n");
  h_free(&h);
}

static void test_idle_session_takes_messages_later(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_open(&h, NULL);
  assert_string_equal(h_client(&h), "");
  assert_true(smtpout_session_want_read(h.s));
  assert_int_equal(smtpout_session_expiry(h.s), SMTPOUT_NO_EXPIRY);
  h_submit(&h, A, NULL);
  assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n");
  h_free(&h);
}

/* An idle session keeps no buffer (docs/performance.md, memory per idle
 * session), and one that is still reading a reply is not idle. */
static void test_idle_session_releases_its_buffers(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_open(&h, "250 PIPELINING\r\n");
  assert_true(session_held_bytes(h.s) > 0);
  h_client(&h);
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  h_client(&h);
  h_server_n(&h, "250 o", 5);
  assert_int_equal(h.nres, 0);
  assert_true(session_held_bytes(h.s) > 0); /* the split line */
  h_server(&h, "k\r\n");
  assert_result(&h, A, SMTPOUT_STATUS_DELIVERED, 250, "");
  assert_int_equal(session_held_bytes(h.s), 0);
  /* The next message finds its buffers again. */
  h_submit(&h, B, NULL);
  assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n"
                                    "RCPT TO:<b@test.example>\r\n"
                                    "DATA\r\n");
  assert_true(session_held_bytes(h.s) > 0);
  h_server(&h, "250 ok\r\n250 ok\r\n354 go\r\n");
  assert_string_equal(h_client(&h), BODY_DOT);
  h_server(&h, "250 ok\r\n");
  assert_result(&h, B, SMTPOUT_STATUS_DELIVERED, 250, "");
  assert_int_equal(session_held_bytes(h.s), 0);
  h_free(&h);
}

/* Found by fuzz-session: a message submitted to an idle session was
 * started inside submit(), so a local bounce reached on_result before the
 * host knew the message's id, and the MAIL deadline counted from the last
 * I/O call, not from when the command went out. */
static void test_submit_runs_no_callback_and_times_from_the_next_peek(
    void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_open(&h, NULL); /* no SMTPUTF8 */
  assert_string_equal(h_client(&h), "");
  assert_false(smtpout_session_want_write(h.s));
  h.now += 3600 * 1000; /* an hour idle: nothing was due */
  const char *utf8[] = {"j\xc3\xb6rg@test.example"};
  int id = smtpout_session_submit(h.s, "s@test.example", utf8, 1, 0, 0);
  assert_true(id > 0);
  assert_int_equal(h.nres, 0); /* nothing reported inside submit */
  assert_true(smtpout_session_want_write(h.s));
  assert_string_equal(h_client(&h), "");
  assert_int_equal(h.nres, 1);
  assert_int_equal(h.res[0].message_id, id);
  assert_result(&h, utf8[0], SMTPOUT_STATUS_BOUNCED, 0, "5.6.7");

  h.now += 3600 * 1000;
  h_submit(&h, A, NULL);
  assert_int_equal(h.nres, 1);
  assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n");
  assert_int_equal(smtpout_session_expiry(h.s),
                   h.now + smtpout_config_timeout(NULL,
                                                  SMTPOUT_TIMEOUT_MAIL_FROM));
  h_tick(&h, 1000);
  assert_int_equal(h.nres, 1); /* not timed out: the wait has just begun */

  /* QUIT on an idle session also waits for the next peek. */
  h_server(&h, "550 5.7.1 no\r\n");
  assert_int_equal(h.nres, 2);
  assert_string_equal(h_client(&h), "");
  h.now += 3600 * 1000;
  assert_int_equal(smtpout_session_quit(h.s), 0);
  assert_true(smtpout_session_want_write(h.s));
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_int_equal(smtpout_session_expiry(h.s),
                   h.now + smtpout_config_timeout(NULL, SMTPOUT_TIMEOUT_EHLO));
  h_free(&h);
}

static void test_abort_defers_everything_and_sends_nothing(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  h_submit(&h, A, NULL);
  h_submit(&h, B, NULL);
  h_open(&h, NULL);
  assert_int_equal(smtpout_session_abort(h.s, h.now), 0);
  assert_string_equal(h_client(&h), "");
  assert_result(&h, A, SMTPOUT_STATUS_DEFERRED, 0, "4.3.0");
  assert_result(&h, B, SMTPOUT_STATUS_DEFERRED, 0, "4.3.0");
  assert_int_equal(smtpout_session_submit(h.s, "x@y.example",
                                          (const char *[]){A}, 1, 0, 0),
                   SMTPOUT_ERR_INVALID_STATE);
  h_free(&h);
}

/* ---- calls from inside callbacks ---- */

/* What a misbehaving host does from its on_result callback. */
struct reenter {
  smtpout_session *s;
  int results;
  int free_at;       /* free the session at this result (1-based), or 0 */
  int rv[8];         /* what each I/O call returned at the first result */
  const uint8_t *peeked;
};

static void reenter_on_result(smtpout_session *s, const smtpout_result *r,
                              void *ud)
{
  struct reenter *x = ud;
  (void)r;
  x->results++;
  if (x->results == 1 && x->free_at == 0) {
    /* The header forbids each of these from a callback: each is refused,
     * and none may free or move what the caller up the stack is using
     * (an abort here used to free the message being reported). */
    size_t n = 1;
    x->rv[0] = smtpout_session_abort(s, 1);
    x->rv[1] = smtpout_session_feed(s, (const uint8_t *)"250 ok\r\n", 8, 1);
    x->rv[2] = smtpout_session_feed_eof(s, 1);
    x->rv[3] = smtpout_session_peek_output(s, &x->peeked, &n, 1);
    x->rv[4] = smtpout_session_consume_output(s, 1, 1);
    x->rv[5] = smtpout_session_handle_expiry(s, UINT64_MAX - 1);
    x->rv[6] = smtpout_session_start(s, 1);
  }
  if (x->results == x->free_at)
    smtpout_session_free(s);
}

/* Brings a session to where its next results come from a reply, `how`:
 * 0 a 421 (fail), 1 a timeout, 2 the host's abort, 3 a refused MAIL (one
 * result per recipient from the transaction's own loop). */
static void reenter_drive(smtpout_session *s, int how)
{
  const uint8_t *p;
  size_t n;
  switch (how) {
  case 0:
    assert_int_equal(
        smtpout_session_feed(s, (const uint8_t *)"421 4.3.2 bye\r\n", 15, 2),
        0);
    break;
  case 1:
    assert_int_equal(smtpout_session_handle_expiry(s, UINT64_MAX - 1), 0);
    break;
  case 2:
    assert_int_equal(smtpout_session_abort(s, 2), 0);
    break;
  default:
    assert_int_equal(
        smtpout_session_feed(s, (const uint8_t *)"220 hi\r\n", 8, 2), 0);
    assert_int_equal(smtpout_session_peek_output(s, &p, &n, 2), 0);
    assert_int_equal(smtpout_session_consume_output(s, n, 2), 0);
    assert_int_equal(
        smtpout_session_feed(s, (const uint8_t *)"250 mx\r\n", 8, 3), 0);
    assert_int_equal(smtpout_session_peek_output(s, &p, &n, 3), 0);
    assert_true(n > 0 && memcmp(p, "MAIL FROM:", 10) == 0);
    assert_int_equal(smtpout_session_consume_output(s, n, 3), 0);
    assert_int_equal(
        smtpout_session_feed(s, (const uint8_t *)"550 5.7.1 no\r\n", 14, 4),
        0);
  }
}

static smtpout_session *reenter_session(struct reenter *x,
                                        smtpout_callbacks **cbs)
{
  assert_int_equal(smtpout_callbacks_new(cbs), 0);
  smtpout_callbacks_set_on_result(*cbs, reenter_on_result);
  assert_int_equal(smtpout_session_new(&x->s, "mx.test.example", NULL, *cbs,
                                       x),
                   0);
  const char *rcpts[] = {A, B, C};
  assert_true(smtpout_session_submit(x->s, "s@test.example", rcpts, 3, 0, 0) >
              0);
  assert_int_equal(smtpout_session_start(x->s, 1), 0);
  return x->s;
}

static void test_io_calls_from_a_callback_are_refused(void **st)
{
  (void)st;
  /* Results reported from a reply (feed), from a timeout (handle_expiry),
   * from the host's own abort, and from the loop over a refused MAIL's
   * recipients: the nested calls are refused each time, and every
   * recipient still gets exactly one result.  The refused MAIL first: an
   * abort from that loop used to free the message under it. */
  static const int hows[] = {3, 0, 1, 2};
  for (size_t k = 0; k < 4; k++) {
    int how = hows[k];
    struct reenter x;
    smtpout_callbacks *cbs;
    memset(&x, 0, sizeof(x));
    smtpout_session *s = reenter_session(&x, &cbs);
    reenter_drive(s, how);
    assert_int_equal(x.results, 3);
    for (int i = 0; i < 7; i++)
      assert_int_equal(x.rv[i], SMTPOUT_ERR_INVALID_STATE);
    /* After a refused MAIL the connection stays up for more messages. */
    assert_int_equal(smtpout_session_is_done(s), how < 3);
    smtpout_session_free(s);
    smtpout_callbacks_free(cbs);
  }
}

/* smtpout_session_free() from a callback returns nothing to refuse with:
 * it is deferred to the end of the outermost call, no callback runs after
 * it, and nothing touches freed memory (the unit tests run under ASan). */
static void test_free_from_a_callback_takes_effect_on_return(void **st)
{
  (void)st;
  for (int how = 0; how < 4; how++) {
    struct reenter x;
    smtpout_callbacks *cbs;
    memset(&x, 0, sizeof(x));
    x.free_at = 1;
    smtpout_session *s = reenter_session(&x, &cbs);
    reenter_drive(s, how);
    /* The session is gone: no result after the free. */
    assert_int_equal(x.results, 1);
    smtpout_callbacks_free(cbs);
  }
  /* From a result reported inside peek_output (a local bounce before
   * MAIL, of a message submitted to the idle session): the peek then has
   * nothing to write. */
  struct reenter x;
  smtpout_callbacks *cbs;
  memset(&x, 0, sizeof(x));
  x.free_at = 1;
  assert_int_equal(smtpout_callbacks_new(&cbs), 0);
  smtpout_callbacks_set_on_result(cbs, reenter_on_result);
  assert_int_equal(smtpout_session_new(&x.s, "mx.test.example", NULL, cbs, &x),
                   0);
  assert_int_equal(smtpout_session_start(x.s, 1), 0);
  const uint8_t *p;
  size_t n;
  assert_int_equal(smtpout_session_feed(
                       x.s, (const uint8_t *)"220 hi\r\n", 8, 2),
                   0);
  assert_int_equal(smtpout_session_peek_output(x.s, &p, &n, 2), 0);
  assert_int_equal(smtpout_session_consume_output(x.s, n, 2), 0);
  assert_int_equal(smtpout_session_feed(
                       x.s, (const uint8_t *)"250 mx\r\n", 8, 3),
                   0);
  const char *rcpts[] = {"j\xc3\xb6rg@test.example", A};
  assert_true(smtpout_session_submit(x.s, "s@test.example", rcpts, 2, 0, 0) >
              0);
  assert_int_equal(x.results, 0);
  /* No SMTPUTF8: the first recipient bounces inside this peek. */
  assert_int_equal(smtpout_session_peek_output(x.s, &p, &n, 3), 0);
  assert_null(p);
  assert_int_equal(n, 0);
  assert_int_equal(x.results, 1);
  smtpout_callbacks_free(cbs);
}

/* ---- local checks ---- */

static void test_addresses_that_could_inject_are_refused(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  const char *bad[] = {
    "a@test.example\r\nRCPT TO:<evil@x>", "a@test.example\n", "a\r@x.example",
    "a@x.example>", "<a@x.example", "a b@x.example", "a@", "@x.example",
    "no-at-sign", "a\x01@x.example", "a@x\x7f.example", "\xff@x.example",
    "\"unterminated@x.example",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    const char *r[] = {bad[i]};
    assert_int_equal(smtpout_session_submit(h.s, "s@x.example", r, 1, 0, 0),
                     SMTPOUT_ERR_BAD_ADDRESS);
    const char *ok[] = {A};
    assert_int_equal(smtpout_session_submit(h.s, bad[i], ok, 1, 0, 0),
                     SMTPOUT_ERR_BAD_ADDRESS);
  }
  char longaddr[300];
  memset(longaddr, 'a', sizeof(longaddr));
  strcpy(longaddr + 243, "@x.example"); /* 253 octets: the limit is 254 */
  const char *r1[] = {longaddr};
  assert_true(smtpout_session_submit(h.s, "s@x.example", r1, 1, 0, 0) > 0);
  strcpy(longaddr + 245, "@x.example"); /* 255 octets */
  assert_int_equal(smtpout_session_submit(h.s, "s@x.example", r1, 1, 0, 0),
                   SMTPOUT_ERR_BAD_ADDRESS);
  assert_int_equal(smtpout_address_check("\"john doe\"@x.example"), 0);
  assert_int_equal(smtpout_address_check("j\xc3\xb6rg@b\xc3\xbc" "cher.example"),
                   0);
  assert_int_equal(smtpout_address_check(NULL), SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_session_submit(h.s, "s@x.example", NULL, 1, 0, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_session_submit(h.s, "s@x.example", r1, 0, 0, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_session_submit(h.s, "s@x.example", r1, 1, 0, 0x80),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  h_free(&h);
}

static void test_smtputf8_recipient_bounced_when_not_offered(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  const char *rcpts[] = {"j\xc3\xb6rg@test.example", A};
  assert_true(smtpout_session_submit(h.s, "s@test.example", rcpts, 2, 0, 0) >
              0);
  h_open(&h, "250 PIPELINING\r\n");
  assert_result(&h, "j\xc3\xb6rg@test.example", SMTPOUT_STATUS_BOUNCED, 0,
                "5.6.7");
  /* Not a byte of the UTF-8 address on the wire; the other one goes. */
  assert_string_equal(h_client(&h), "MAIL FROM:<s@test.example>\r\n"
                                    "RCPT TO:<a@test.example>\r\n"
                                    "DATA\r\n");
  h_free(&h);
}

static void test_smtputf8_sender_bounces_whole_message(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  const char *rcpts[] = {A, B};
  assert_true(smtpout_session_submit(h.s, "s\xc3\xa9@test.example", rcpts, 2,
                                     0, 0) > 0);
  smtpout_session_quit(h.s);
  h_open(&h, NULL);
  assert_result(&h, A, SMTPOUT_STATUS_BOUNCED, 0, "5.6.7");
  assert_result(&h, B, SMTPOUT_STATUS_BOUNCED, 0, "5.6.7");
  assert_string_equal(h_client(&h), "QUIT\r\n");
  h_free(&h);
}

static void test_size_over_server_limit_bounces_before_mail(void **st)
{
  struct h h;
  (void)st;
  h_init(&h, "mx.test.example", NULL);
  const char *rcpts[] = {A};
  assert_true(smtpout_session_submit(h.s, "s@test.example", rcpts, 1, 5000,
                                     0) > 0);
  smtpout_session_quit(h.s);
  h_open(&h, "250 SIZE 4000\r\n");
  assert_result(&h, A, SMTPOUT_STATUS_BOUNCED, 0, "5.3.4");
  assert_string_equal(h_client(&h), "QUIT\r\n");
  h_free(&h);
}

static void test_exactly_one_result_per_recipient_under_chaos(void **st)
{
  (void)st;
  /* Every way a pipelined transaction can be cut, each recipient gets
   * exactly one result (h_find asserts uniqueness). */
  const char *scripts[] = {
    "250 ok\r\n250 ok\r\n",
    "250 ok\r\n250 ok\r\n550 no\r\n",
    "250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n",
    "250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n354 go\r\n",
    "550 no\r\n",
    "421 bye\r\n",
    "250 ok\r\n421 bye\r\n",
    "250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n354 go\r\n250 yes\r\n",
  };
  for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
    struct h h;
    h_init(&h, "mx.test.example", NULL);
    h_submit(&h, A, B, C, NULL);
    h_open(&h, "250 PIPELINING\r\n");
    h_client(&h);
    h_server(&h, scripts[i]);
    h_client(&h);
    smtpout_session_feed_eof(h.s, h.now);
    assert_int_equal(h.nres, 3);
    assert_non_null(h_find(&h, A));
    assert_non_null(h_find(&h, B));
    assert_non_null(h_find(&h, C));
    for (int k = 0; k < h.nres; k++)
      if (h.res[k].status == SMTPOUT_STATUS_DELIVERED)
        assert_int_equal(i, sizeof(scripts) / sizeof(scripts[0]) - 1);
    h_free(&h);
  }
}

static void test_mx_ip_literal_and_bad_names(void **st)
{
  smtpout_callbacks *cbs;
  smtpout_session *s;
  (void)st;
  assert_int_equal(smtpout_callbacks_new(&cbs), 0);
  assert_int_equal(smtpout_session_new(&s, "[192.0.2.1]", NULL, cbs, NULL), 0);
  smtpout_session_free(s);
  assert_int_equal(smtpout_session_new(&s, "2001:db8::1", NULL, cbs, NULL), 0);
  smtpout_session_free(s);
  /* An address with a root dot is the address; a numeric "name" a
   * resolver would read as an address is neither. */
  assert_int_equal(smtpout_session_new(&s, "127.0.0.1.", NULL, cbs, NULL), 0);
  smtpout_session_free(s);
  assert_int_equal(smtpout_session_new(&s, "127.1", NULL, cbs, NULL),
                   SMTPOUT_ERR_BAD_NAME);
  assert_int_equal(smtpout_session_new(&s, "[127.0.0.1].", NULL, cbs, NULL),
                   SMTPOUT_ERR_BAD_NAME);
  assert_int_equal(smtpout_session_new(&s, "", NULL, cbs, NULL),
                   SMTPOUT_ERR_BAD_NAME);
  assert_int_equal(smtpout_session_new(&s, NULL, NULL, cbs, NULL),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  smtpout_session_free(NULL);
  smtpout_callbacks_free(cbs);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_delivers_without_pipelining_one_command_at_a_time),
    cmocka_unit_test(test_pipelines_mail_rcpt_data_when_advertised),
    cmocka_unit_test(test_quit_follows_only_the_last_end_of_data),
    cmocka_unit_test(test_pipelined_replies_split_across_reads),
    cmocka_unit_test(test_helo_fallback_when_ehlo_gets_5xx),
    cmocka_unit_test(test_parses_ehlo_capabilities_case_insensitively),
    cmocka_unit_test(test_mail_parameters_size_body_smtputf8),
    cmocka_unit_test(test_no_parameters_the_server_did_not_offer),
    cmocka_unit_test(test_null_sender_is_sent_as_empty_path),
    cmocka_unit_test(test_greeting_421_defers_everything),
    cmocka_unit_test(test_greeting_5xx_defers_for_the_next_address),
    cmocka_unit_test(test_ehlo_4xx_defers_and_quits),
    cmocka_unit_test(test_helo_refused_after_ehlo_refused),
    cmocka_unit_test(test_mail_refused_gives_every_recipient_its_reply),
    cmocka_unit_test(test_pipelined_mail_refused_ignores_rcpt_replies),
    cmocka_unit_test(test_all_recipients_refused_sends_no_data),
    cmocka_unit_test(test_pipelined_all_refused_and_data_354_sends_lone_dot),
    cmocka_unit_test(test_data_refused_gives_accepted_recipients_its_reply),
    cmocka_unit_test(test_end_of_data_refused),
    cmocka_unit_test(test_multiline_reply_text_is_joined),
    cmocka_unit_test(test_malformed_reply_codes_are_protocol_errors),
    cmocka_unit_test(test_multiline_codes_that_disagree_are_rejected),
    cmocka_unit_test(test_unexpected_intermediate_reply_is_protocol_error),
    cmocka_unit_test(test_overlong_reply_line_is_bounded),
    cmocka_unit_test(test_endless_multiline_reply_is_bounded),
    cmocka_unit_test(test_nul_and_8bit_in_reply_text_are_sanitised),
    cmocka_unit_test(test_unsolicited_reply_is_protocol_error),
    cmocka_unit_test(test_unsolicited_421_when_idle_ends_session),
    cmocka_unit_test(test_421_mid_transaction_defers_the_undecided),
    cmocka_unit_test(test_reply_during_body_ends_the_connection),
    cmocka_unit_test(test_421_to_end_of_data_is_not_possibly_delivered),
    cmocka_unit_test(test_disconnect_at_each_phase_defers),
    cmocka_unit_test(test_disconnect_after_dot_is_possibly_delivered),
    cmocka_unit_test(
        test_disconnect_with_quit_behind_dot_is_possibly_delivered),
    cmocka_unit_test(
        test_disconnect_before_dot_left_the_buffer_is_not_delivered),
    cmocka_unit_test(test_reply_before_its_command_was_written_is_refused),
    cmocka_unit_test(test_reply_to_dot_not_yet_written_never_delivers),
    cmocka_unit_test(test_each_timeout_defers_with_its_phase),
    cmocka_unit_test(test_dripped_reply_does_not_extend_the_deadline),
    cmocka_unit_test(test_data_timeout_is_capped_for_the_data_command),
    cmocka_unit_test(test_quit_timeout_ends_quietly),
    cmocka_unit_test(test_body_is_canonicalised),
    cmocka_unit_test(test_large_body_streams_with_bounded_output),
    cmocka_unit_test(test_body_wouldblock_then_resume),
    cmocka_unit_test(test_body_empty_read_waits_like_wouldblock),
    cmocka_unit_test(test_body_callback_failure_drops_without_dot),
    cmocka_unit_test(test_8bit_body_is_converted_for_a_server_without_8bitmime),
    cmocka_unit_test(test_unflagged_8bit_body_is_never_sent_raw),
    cmocka_unit_test(test_unflagged_7bit_body_is_sent_as_it_is),
    cmocka_unit_test(test_unconvertible_8bit_message_is_bounced_before_mail),
    cmocka_unit_test(test_conversion_that_fails_midway_drops_the_connection),
    cmocka_unit_test(test_8bit_goes_as_it_is_to_a_server_with_smtputf8),
    cmocka_unit_test(test_size_is_sent_as_given_when_nothing_is_converted),
    cmocka_unit_test(test_reuses_connection_with_rset_only_when_needed),
    cmocka_unit_test(test_refused_rset_defers_with_codes_of_a_deferral),
    cmocka_unit_test(test_pipelined_rset_precedes_next_mail),
    cmocka_unit_test(test_idle_session_takes_messages_later),
    cmocka_unit_test(test_idle_session_releases_its_buffers),
    cmocka_unit_test(
        test_submit_runs_no_callback_and_times_from_the_next_peek),
    cmocka_unit_test(test_abort_defers_everything_and_sends_nothing),
    cmocka_unit_test(test_io_calls_from_a_callback_are_refused),
    cmocka_unit_test(test_free_from_a_callback_takes_effect_on_return),
    cmocka_unit_test(test_addresses_that_could_inject_are_refused),
    cmocka_unit_test(test_smtputf8_recipient_bounced_when_not_offered),
    cmocka_unit_test(test_smtputf8_sender_bounces_whole_message),
    cmocka_unit_test(test_size_over_server_limit_bounces_before_mail),
    cmocka_unit_test(test_exactly_one_result_per_recipient_under_chaos),
    cmocka_unit_test(test_mx_ip_literal_and_bad_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
