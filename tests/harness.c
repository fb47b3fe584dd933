/*
 * harness.c — see harness.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static const char default_body[] = "Subject: t\r\n\r\nhello\r\n";

static int read_body(smtpout_session *s, int id, uint8_t *buf, size_t len,
                     size_t *nread, int *eof, void *ud)
{
  struct h *h = ud;
  (void)s;
  (void)id;
  h->body_reads++;
  if (h->body_fail)
    return SMTPOUT_ERR_CALLBACK_FAILURE;
  if (h->body_block_at >= 0 && h->body_off >= (size_t)h->body_block_at) {
    h->body_block_at = -1;
    return SMTPOUT_ERR_WOULDBLOCK;
  }
  if (h->body_empty > 0) {
    /* "Nothing now", said with 0 bytes instead of WOULDBLOCK.  A session
     * that asked again at once would spin: fail the test instead of
     * hanging it. */
    assert_true(++h->empty_streak < 100);
    h->body_empty--;
    *nread = 0;
    *eof = 0;
    return 0;
  }
  h->empty_streak = 0;
  size_t n = h->body_len - h->body_off;
  if (n > len)
    n = len;
  if (h->chunk && n > h->chunk)
    n = h->chunk;
  memcpy(buf, h->body + h->body_off, n);
  h->body_off += n;
  *nread = n;
  *eof = h->body_off == h->body_len;
  if (*eof)
    h->body_off = 0; /* the next message reads it again */
  return 0;
}

static void on_result(smtpout_session *s, const smtpout_result *r, void *ud)
{
  struct h *h = ud;
  (void)s;
  assert_true(h->nres < H_MAX_RESULTS);
  struct h_result *o = &h->res[h->nres++];
  o->message_id = smtpout_result_message_id(r);
  o->index = smtpout_result_recipient_index(r);
  snprintf(o->recipient, sizeof(o->recipient), "%s",
           smtpout_result_recipient(r));
  o->status = smtpout_result_status(r);
  o->code = smtpout_result_code(r);
  snprintf(o->enhanced, sizeof(o->enhanced), "%s", smtpout_result_enhanced(r));
  snprintf(o->text, sizeof(o->text), "%s", smtpout_result_text(r));
  o->possibly_delivered = smtpout_result_possibly_delivered(r);
  o->try_another_address = smtpout_result_try_another_address(r);
  o->dsn_notify = smtpout_result_dsn_notify(r);
  o->dsn_sent = smtpout_result_dsn_sent(r);
  o->dsn_action = smtpout_result_dsn_action(r);
  /* Every result, in every test: its code and enhanced code agree with
   * its status (a deferral never carries a 2xx or 5xx, a bounce never a
   * 2xx or 4xx), and only a reply delivers. */
  int klass = o->status == SMTPOUT_STATUS_DELIVERED  ? 2
              : o->status == SMTPOUT_STATUS_DEFERRED ? 4
                                                     : 5;
  if (o->code != 0 || o->status == SMTPOUT_STATUS_DELIVERED)
    assert_int_equal(o->code / 100, klass);
  if (o->enhanced[0] != '\0')
    assert_int_equal(o->enhanced[0], '0' + klass);
  if (o->possibly_delivered)
    assert_int_equal(o->status, SMTPOUT_STATUS_DEFERRED);
  /* Only a deferral that cannot have reached the server goes elsewhere. */
  if (o->try_another_address)
    assert_true(o->status == SMTPOUT_STATUS_DEFERRED &&
                !o->possibly_delivered);
}

static void on_done(smtpout_session *s, int id, void *ud)
{
  struct h *h = ud;
  (void)s;
  assert_true(h->ndone < 64);
  h->done_ids[h->ndone++] = id;
}

static void on_trace(smtpout_session *s, int dir, const char *line,
                     size_t len, void *ud)
{
  static const char *const prefix[] = {"C: ", "S: ", "-- "};
  struct h *h = ud;
  (void)s;
  size_t room = sizeof(h->trace) - h->tracelen;
  int n = snprintf(h->trace + h->tracelen, room, "%s%.*s\n", prefix[dir],
                   (int)len, line);
  if (n > 0)
    h->tracelen += (size_t)n < room ? (size_t)n : room - 1;
}

static void on_tls(smtpout_session *s, const smtpout_tls_info *info, void *ud)
{
  struct h *h = ud;
  (void)s;
  h->tls_calls++;
  h->tls = info;
}

/* The built-in defaults, made once for every session of a test program
 * that passes no configuration: a configuration loads the system trust
 * store with its first session, and a host running many sessions shares
 * one, as the tests do.  Never freed: it lives as long as the program. */
static smtpout_config *defaults(void)
{
  static smtpout_config *cfg;
  if (cfg == NULL)
    assert_int_equal(smtpout_config_new(&cfg), 0);
  return cfg;
}

static void h_prepare(struct h *h)
{
  memset(h, 0, sizeof(*h));
  h->now = 1000000;
  h->body_block_at = -1;
  h_body(h, default_body, sizeof(default_body) - 1);
  assert_int_equal(smtpout_callbacks_new(&h->cbs), 0);
  smtpout_callbacks_set_read_body(h->cbs, read_body);
  smtpout_callbacks_set_on_result(h->cbs, on_result);
  smtpout_callbacks_set_on_message_done(h->cbs, on_done);
  smtpout_callbacks_set_on_tls(h->cbs, on_tls);
  smtpout_callbacks_set_on_trace(h->cbs, on_trace);
}

void h_init(struct h *h, const char *mx, smtpout_config *config)
{
  h_prepare(h);
  assert_int_equal(smtpout_session_new(&h->s, mx, config ? config : defaults(),
                                       h->cbs, h),
                   0);
  assert_int_equal(smtpout_session_set_helo_name(h->s, "client.example"), 0);
}

void h_init_hop(struct h *h, const smtpout_hop *hop, smtpout_config *config)
{
  h_prepare(h);
  assert_int_equal(smtpout_session_new_for_hop(&h->s, hop,
                                               config ? config : defaults(),
                                               h->cbs, h),
                   0);
  assert_int_equal(smtpout_session_set_helo_name(h->s, "client.example"), 0);
}

void h_free(struct h *h)
{
  smtpout_session_free(h->s);
  smtpout_callbacks_free(h->cbs);
}

void h_body(struct h *h, const char *body, size_t len)
{
  h->body = (const uint8_t *)body;
  h->body_len = len;
  h->body_off = 0;
}

void h_start(struct h *h)
{
  assert_int_equal(smtpout_session_start(h->s, h->now), 0);
}

void h_server_n(struct h *h, const void *data, size_t len)
{
  assert_int_equal(smtpout_session_feed(h->s, data, len, h->now), 0);
}

void h_server(struct h *h, const char *text)
{
  h_server_n(h, text, strlen(text));
}

const char *h_client(struct h *h)
{
  h->outlen = 0;
  for (;;) {
    const uint8_t *p;
    size_t n;
    assert_int_equal(smtpout_session_peek_output(h->s, &p, &n, h->now), 0);
    if (n == 0)
      break;
    assert_true(h->outlen + n < sizeof(h->out));
    memcpy(h->out + h->outlen, p, n);
    h->outlen += n;
    assert_int_equal(smtpout_session_consume_output(h->s, n, h->now), 0);
  }
  h->out[h->outlen] = '\0';
  return h->out;
}

void h_tick(struct h *h, uint64_t ms)
{
  h->now += ms;
  assert_int_equal(smtpout_session_handle_expiry(h->s, h->now), 0);
}

int h_submit(struct h *h, ...)
{
  const char *rcpts[64];
  size_t n = 0;
  va_list ap;
  va_start(ap, h);
  const char *r;
  while ((r = va_arg(ap, const char *)) != NULL && n < 64)
    rcpts[n++] = r;
  va_end(ap);
  int id = smtpout_session_submit(h->s, "sender@test.example", rcpts, n, 0, 0);
  assert_true(id > 0);
  return id;
}

const struct h_result *h_find(const struct h *h, const char *addr)
{
  const struct h_result *found = NULL;
  for (int i = 0; i < h->nres; i++)
    if (strcmp(h->res[i].recipient, addr) == 0) {
      /* exactly one result per recipient */
      assert_null(found);
      found = &h->res[i];
    }
  return found;
}

void h_open(struct h *h, const char *ehlo_caps)
{
  h_start(h);
  assert_string_equal(h_client(h), "");
  h_server(h, "220 mx.test.example ESMTP\r\n");
  assert_string_equal(h_client(h), "EHLO client.example\r\n");
  if (ehlo_caps == NULL) {
    h_server(h, "250 mx.test.example\r\n");
  } else {
    h_server(h, "250-mx.test.example\r\n");
    h_server(h, ehlo_caps);
  }
}
