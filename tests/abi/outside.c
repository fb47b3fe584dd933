/*
 * An outside program: built against an installed smtpout (pkg-config) or
 * smtpout as a meson subproject, never against the source tree.  It drives
 * one sans-I/O session through a scripted server transcript to a delivered
 * recipient, and says which library file it runs against so the test can
 * check that it is the installed one.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <smtpout/smtpout.h>

static int delivered;
static const char body[] = "Subject: outside\r\n\r\nhello\r\n";

static int read_body(smtpout_session *s, int id, uint8_t *buf, size_t len,
                     size_t *nread, int *eof, void *ud)
{
  (void)s;
  (void)id;
  (void)ud;
  size_t n = sizeof(body) - 1 < len ? sizeof(body) - 1 : len;
  memcpy(buf, body, n);
  *nread = n;
  *eof = 1;
  return 0;
}

static void on_result(smtpout_session *s, const smtpout_result *r, void *ud)
{
  (void)s;
  (void)ud;
  delivered += smtpout_result_status(r) == SMTPOUT_STATUS_DELIVERED;
}

/* Takes everything the session wants to write; returns 1 when the output
 * starts with `expect`. */
static int expect_output(smtpout_session *s, const char *expect)
{
  const uint8_t *p;
  size_t len;
  if (smtpout_session_peek_output(s, &p, &len, 0) != 0)
    return 0;
  int ok = len >= strlen(expect) && memcmp(p, expect, strlen(expect)) == 0;
  if (!ok)
    fprintf(stderr, "expected \"%s\", got \"%.*s\"\n", expect, (int)len,
            (const char *)p);
  smtpout_session_consume_output(s, len, 0);
  return ok;
}

static void reply(smtpout_session *s, const char *text)
{
  smtpout_session_feed(s, (const uint8_t *)text, strlen(text), 0);
}

int main(void)
{
  Dl_info info;
  if (dladdr((void *)smtpout_version, &info) == 0 || info.dli_fname == NULL)
    return 2;
  printf("library %s\nversion %s\n", info.dli_fname, smtpout_version());

  smtpout_callbacks *cbs;
  smtpout_session *s;
  const char *rcpt[] = {"b@test.example"};
  uint64_t size;
  uint32_t flags;
  if (smtpout_message_inspect((const uint8_t *)body, sizeof(body) - 1, &size,
                              &flags) != 0)
    return 2;
  if (smtpout_callbacks_new(&cbs) != 0)
    return 2;
  smtpout_callbacks_set_read_body(cbs, read_body);
  smtpout_callbacks_set_on_result(cbs, on_result);
  if (smtpout_session_new(&s, "mx.test.example", NULL, cbs, NULL) != 0 ||
      smtpout_session_set_helo_name(s, "client.test.example") != 0 ||
      smtpout_session_start(s, 0) != 0 ||
      smtpout_session_submit(s, "a@test.example", rcpt, 1, size, flags) <= 0 ||
      smtpout_session_quit(s) != 0)
    return 2;
  int ok = 1;
  reply(s, "220 mx.test.example ESMTP\r\n");
  ok &= expect_output(s, "EHLO client.test.example\r\n");
  /* No STARTTLS: optional goes on. */
  reply(s, "250-mx.test.example\r\n250 SIZE 1000\r\n");
  ok &= expect_output(s, "MAIL FROM:<a@test.example> SIZE=27\r\n");
  reply(s, "250 ok\r\n");
  ok &= expect_output(s, "RCPT TO:<b@test.example>\r\n");
  reply(s, "250 ok\r\n");
  ok &= expect_output(s, "DATA\r\n");
  reply(s, "354 go\r\n");
  ok &= expect_output(s, "Subject: outside\r\n\r\nhello\r\n.\r\n");
  reply(s, "250 queued\r\n");
  ok &= expect_output(s, "QUIT\r\n");
  reply(s, "221 bye\r\n");
  ok &= smtpout_session_is_done(s) && delivered == 1;
  printf("delivered %d, done %d\n", delivered, smtpout_session_is_done(s));
  smtpout_session_free(s);
  smtpout_callbacks_free(cbs);
  return ok ? 0 : 1;
}
