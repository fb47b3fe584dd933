/*
 * harness.h — drives an smtpout_session with a scripted server, for the
 * cmocka unit tests.  No sockets, no sleeps: the "server" is the test
 * feeding reply bytes, the clock is a variable the test moves.
 */
#ifndef SMTPOUT_TEST_HARNESS_H
#define SMTPOUT_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include <smtpout/smtpout.h>

#define H_MAX_RESULTS 256

struct h_result {
  int message_id;
  size_t index;
  char recipient[300];
  int status;
  int code;
  char enhanced[16];
  char text[1200];
  int possibly_delivered;
  /* smtpout_result_try_another_address(): what a host reads to take the
   * recipient to the next address. */
  int try_another_address;
  /* RFC 3461: what was asked, whether it went, what the host owes. */
  uint32_t dsn_notify;
  int dsn_sent;
  int dsn_action;
};

struct h {
  smtpout_session *s;
  smtpout_callbacks *cbs;
  uint64_t now;
  struct h_result res[H_MAX_RESULTS];
  int nres;
  int done_ids[64];
  int ndone;
  int tls_calls;
  const smtpout_tls_info *tls;
  /* Body source: the same bytes for every message. */
  const uint8_t *body;
  size_t body_len;
  size_t body_off;
  size_t chunk;       /* at most this many bytes per read_body call */
  int body_block_at;  /* return WOULDBLOCK once when body_off reaches it */
  int body_fail;      /* return CALLBACK_FAILURE on the first read */
  int body_empty;     /* return 0 bytes, not at the end, this many times */
  size_t empty_streak; /* empty reads in a row: a spinning caller fails */
  size_t body_reads;
  char out[1 << 20];  /* what h_client() drained last */
  size_t outlen;
  /* Every trace line so far, "C: ", "S: " or "-- " and the line, one a
   * line (truncated when full). */
  char trace[1 << 16];
  size_t tracelen;
};

/* Creates a session for `mx` (config may be NULL: the built-in defaults,
 * one configuration shared by the program's sessions) with EHLO name
 * "client.example"; the body is "Subject: t\r\n\r\nhello\r\n". */
void h_init(struct h *h, const char *mx, smtpout_config *config);
/* The same for a session made for `hop` (smtpout_session_new_for_hop()). */
void h_init_hop(struct h *h, const smtpout_hop *hop, smtpout_config *config);
void h_free(struct h *h);
void h_body(struct h *h, const char *body, size_t len);
void h_start(struct h *h);
/* The server sends `text`. */
void h_server(struct h *h, const char *text);
void h_server_n(struct h *h, const void *data, size_t len);
/* Drains everything the client wants to send; returns it NUL-terminated. */
const char *h_client(struct h *h);
/* Moves the clock by `ms` and runs the expiry handler. */
void h_tick(struct h *h, uint64_t ms);
/* Queues one message from sender@test.example to the NULL-terminated
 * recipients; returns its id (asserts success). */
int h_submit(struct h *h, ...);
/* The result for recipient `addr`, or NULL. */
const struct h_result *h_find(const struct h *h, const char *addr);
/* Runs the usual opening: greeting, EHLO with the given capability lines
 * (e.g. "250-PIPELINING\r\n250 8BITMIME\r\n", or NULL for "250 ok"). */
void h_open(struct h *h, const char *ehlo_caps);

#endif
