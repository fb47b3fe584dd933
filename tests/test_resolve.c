/*
 * test_resolve.c — the trust-ad stub resolver (lib/resolve_stub.c) against
 * scripted nameservers on loopback: what it believes (only the answer to
 * its own id and question, from the server it asked), when it moves on
 * (REFUSED, plain SERVFAIL) and when it stops (a DNSSEC extended error),
 * TCP after a truncated answer, and which AD bits it trusts.  The real
 * resolvers (unbound, libunbound) are in tests/integration/test_dnslab.py.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "dns_int.h"
#include "resolve_int.h"
#include "smtpout/common.h"

/* ---- a scripted nameserver ---- */

enum reply_kind {
  R_ANSWER,      /* NOERROR, A 192.0.2.N */
  R_WRONG_ID,    /* the answer with another id */
  R_WRONG_NAME,  /* the answer to another question */
  R_GARBAGE,     /* twelve octets of nonsense with our id */
  R_TRUNCATED,   /* TC, no records (over UDP) */
  R_SERVFAIL,
  R_REFUSED,
  R_SILENT,      /* nothing */
};

struct reply {
  int kind;
  int ad;
  int ede;        /* -1: no OPT record */
  uint8_t last;   /* the A record's last octet */
};

struct server {
  int udp, tcp, stop[2];
  uint16_t port;
  pthread_t thread;
  /* What to send: replies[i] for the i-th UDP query (the last one repeats),
   * cd_reply for a query with CD set, tcp_reply over TCP.  Up to three
   * replies per query, in order. */
  struct reply replies[4][3];
  int nudp;
  struct reply cd_reply, tcp_reply;
  int queries, cd_queries, tcp_queries;
};

static size_t build(const uint8_t *q, size_t qlen, const struct reply *r,
                    uint8_t *out)
{
  /* The query's header and question, then what the reply says. */
  size_t qend = 12;
  while (qend < qlen && q[qend] != 0)
    qend += 1 + (size_t)q[qend];
  qend += 5;
  memcpy(out, q, qend);
  out[2] = (uint8_t)(0x81 | (r->kind == R_TRUNCATED ? 0x02 : 0));
  out[3] = (uint8_t)(0x80 | (r->ad ? 0x20 : 0));
  if (r->kind == R_SERVFAIL)
    out[3] |= DNS_RCODE_SERVFAIL;
  if (r->kind == R_REFUSED)
    out[3] |= DNS_RCODE_REFUSED;
  memset(out + 6, 0, 6);
  if (r->kind == R_WRONG_ID)
    out[1] ^= 0x55;
  if (r->kind == R_WRONG_NAME)
    out[13] ^= 0x20 ^ 0x01; /* another first letter, not just its case */
  size_t n = qend;
  if (r->kind == R_ANSWER || r->kind == R_WRONG_ID ||
      r->kind == R_WRONG_NAME) {
    static const uint8_t a[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4,
                                192,  0,    2};
    memcpy(out + n, a, sizeof(a));
    n += sizeof(a);
    out[n++] = r->last;
    out[7] = 1;
  }
  if (r->ede >= 0) {
    static const uint8_t opt[] = {0, 0, 41, 4, 0xd0, 0, 0, 0x80, 0,
                                  0, 6, 0,  15, 0,    2};
    memcpy(out + n, opt, sizeof(opt));
    n += sizeof(opt);
    out[n++] = (uint8_t)(r->ede >> 8);
    out[n++] = (uint8_t)r->ede;
    out[11] = 1;
  }
  if (r->kind == R_GARBAGE) {
    memset(out + 2, 0xff, 10);
    n = 12;
  }
  return n;
}

static void serve_tcp(struct server *s)
{
  int c = accept(s->tcp, NULL, NULL);
  if (c < 0)
    return;
  uint8_t in[600], out[700];
  size_t got = 0;
  while (got < 2 || got < 2 + (size_t)(in[0] << 8 | in[1])) {
    ssize_t n = recv(c, in + got, sizeof(in) - got, 0);
    if (n <= 0)
      goto out;
    got += (size_t)n;
  }
  s->tcp_queries++;
  size_t n = build(in + 2, got - 2, &s->tcp_reply, out + 2);
  out[0] = (uint8_t)(n >> 8);
  out[1] = (uint8_t)n;
  if (send(c, out, n + 2, MSG_NOSIGNAL) < 0)
    goto out;
out:
  close(c);
}

/* Answers every datagram waiting, so that once the resolver has
 * returned and the server is stopped, the counters are final. */
static void serve_udp(struct server *s)
{
  for (;;) {
    uint8_t q[600], out[700];
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(s->udp, q, sizeof(q), MSG_DONTWAIT,
                         (struct sockaddr *)&from, &fl);
    if (n < 0)
      return;
    if (n < 12)
      continue;
    const struct reply *rs;
    if (q[3] & 0x10) { /* CD */
      s->cd_queries++;
      rs = &s->cd_reply;
    } else {
      int i = s->queries < s->nudp ? s->queries : s->nudp - 1;
      s->queries++;
      rs = s->replies[i];
    }
    for (int k = 0; k < (q[3] & 0x10 ? 1 : 3); k++) {
      if (rs[k].kind == R_SILENT)
        break;
      size_t len = build(q, (size_t)n, &rs[k], out);
      sendto(s->udp, out, len, 0, (struct sockaddr *)&from, fl);
    }
  }
}

static void *serve(void *arg)
{
  struct server *s = arg;
  for (;;) {
    struct pollfd p[3] = {{.fd = s->udp, .events = POLLIN},
                          {.fd = s->tcp, .events = POLLIN},
                          {.fd = s->stop[0], .events = POLLIN}};
    if (poll(p, 3, -1) < 0)
      return NULL;
    if (p[1].revents)
      serve_tcp(s);
    if (p[0].revents)
      serve_udp(s);
    if (p[2].revents) {
      serve_udp(s);
      return NULL;
    }
  }
}

/* A server on 127.0.0.1, UDP and TCP on one port. */
static struct server *server_start(void)
{
  struct server *s = calloc(1, sizeof(*s));
  assert_non_null(s);
  for (int attempt = 0; attempt < 20; attempt++) {
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->udp = socket(AF_INET, SOCK_DGRAM, 0);
    assert_int_equal(bind(s->udp, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    getsockname(s->udp, (struct sockaddr *)&a, &al);
    s->tcp = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s->tcp, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        listen(s->tcp, 4) == 0) {
      s->port = ntohs(a.sin_port);
      break;
    }
    close(s->udp);
    close(s->tcp);
  }
  assert_true(s->port != 0);
  for (int i = 0; i < 4; i++)
    for (int k = 0; k < 3; k++)
      s->replies[i][k] = (struct reply){R_SILENT, 0, -1, 0};
  s->cd_reply = s->tcp_reply = (struct reply){R_SILENT, 0, -1, 0};
  s->nudp = 1;
  assert_int_equal(pipe(s->stop), 0);
  return s;
}

static void server_run(struct server *s)
{
  assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

/* Stops the thread; the counters can be read until free(). */
static void server_stop(struct server *s)
{
  if (write(s->stop[1], "x", 1) != 1)
    fail();
  pthread_join(s->thread, NULL);
  close(s->udp);
  close(s->tcp);
  close(s->stop[0]);
  close(s->stop[1]);
}

static struct resolver *resolver_for(const char *servers, int mode,
                                     uint32_t timeout_ms)
{
  struct resolver_options o = {.mode = mode, .nameservers = servers,
                               .timeout_ms = timeout_ms};
  struct resolver *r;
  char err[200];
  if (resolver_new(&r, &o, err, sizeof(err)) != 0)
    fail_msg("resolver_new: %s", err);
  return r;
}

static char addr_of[2][32];
static const char *server_list(struct server *a, struct server *b)
{
  static char list[80];
  snprintf(addr_of[0], sizeof(addr_of[0]), "127.0.0.1:%u", a->port);
  if (b)
    snprintf(addr_of[1], sizeof(addr_of[1]), "127.0.0.1:%u", b->port);
  snprintf(list, sizeof(list), "%s%s%s", addr_of[0], b ? " " : "",
           b ? addr_of[1] : "");
  return list;
}

static uint8_t buf[RESOLVER_MAX_ANSWER];
static struct dns_msg msg;

/* Queries x.test A; returns the rcode and the A record's last octet
 * (0 when there is none) through *last. */
static int ask(struct resolver *r, int *verdict, int *last, char *why)
{
  size_t len;
  int rv = resolver_query(r, "x.test", DNS_TYPE_A, buf, sizeof(buf), &len,
                          verdict, why, 200);
  if (rv != 0)
    return rv;
  assert_int_equal(dns_parse(&msg, buf, len), 0);
  struct dns_name q;
  struct dns_addr a[1];
  dns_name_from_text(&q, "x.test");
  *last = dns_addresses(&msg, &q, DNS_TYPE_A, a, 1, NULL) == 1 ? a[0].addr[3]
                                                               : 0;
  return 0;
}

/* ---- tests ---- */

static void test_only_the_answer_to_our_question_counts(void **state)
{
  (void)state;
  struct server *s = server_start();
  s->replies[0][0] = (struct reply){R_WRONG_ID, 1, -1, 66};
  s->replies[0][1] = (struct reply){R_WRONG_NAME, 1, -1, 77};
  s->replies[0][2] = (struct reply){R_ANSWER, 1, -1, 3};
  server_run(s);
  struct resolver *r = resolver_for(server_list(s, NULL), RESOLVER_TRUST_AD,
                                    5000);
  int verdict, last;
  char why[200];
  assert_int_equal(ask(r, &verdict, &last, why), 0);
  assert_int_equal(last, 3);
  assert_int_equal(verdict, DNSSEC_SECURE);
  resolver_free(r);
  server_stop(s);
  assert_int_equal(s->queries, 1);
  free(s);
}

static void test_garbage_is_dropped_and_the_wait_goes_on(void **state)
{
  (void)state;
  struct server *s = server_start();
  s->replies[0][0] = (struct reply){R_GARBAGE, 0, -1, 0};
  s->replies[0][1] = (struct reply){R_ANSWER, 0, -1, 9};
  server_run(s);
  struct resolver *r = resolver_for(server_list(s, NULL), RESOLVER_TRUST_AD,
                                    5000);
  int verdict, last;
  char why[200];
  assert_int_equal(ask(r, &verdict, &last, why), 0);
  assert_int_equal(last, 9);
  assert_int_equal(verdict, DNSSEC_INSECURE); /* no AD */
  resolver_free(r);
  server_stop(s);
  free(s);
}

static void test_truncated_answer_is_asked_again_over_tcp(void **state)
{
  (void)state;
  struct server *s = server_start();
  s->replies[0][0] = (struct reply){R_TRUNCATED, 1, -1, 0};
  s->tcp_reply = (struct reply){R_ANSWER, 1, -1, 4};
  server_run(s);
  struct resolver *r = resolver_for(server_list(s, NULL), RESOLVER_TRUST_AD,
                                    5000);
  int verdict, last;
  char why[200];
  assert_int_equal(ask(r, &verdict, &last, why), 0);
  assert_int_equal(last, 4);
  assert_false(msg.tc);
  assert_int_equal(verdict, DNSSEC_SECURE);
  resolver_free(r);
  server_stop(s);
  assert_int_equal(s->tcp_queries, 1);
  free(s);
}

static void test_refused_moves_on_to_the_next_server(void **state)
{
  (void)state;
  struct server *a = server_start(), *b = server_start();
  a->replies[0][0] = (struct reply){R_REFUSED, 0, -1, 0};
  b->replies[0][0] = (struct reply){R_ANSWER, 1, -1, 5};
  server_run(a);
  server_run(b);
  struct resolver *r = resolver_for(server_list(a, b), RESOLVER_TRUST_AD,
                                    5000);
  int verdict, last;
  char why[200];
  assert_int_equal(ask(r, &verdict, &last, why), 0);
  assert_int_equal(last, 5);
  assert_int_equal(verdict, DNSSEC_SECURE);
  resolver_free(r);
  server_stop(a);
  server_stop(b);
  assert_int_equal(a->queries, 1);
  free(a);
  free(b);
}

static void test_dnssec_extended_error_is_bogus_at_once(void **state)
{
  (void)state;
  struct server *a = server_start(), *b = server_start();
  a->replies[0][0] = (struct reply){R_SERVFAIL, 0, 9, 0}; /* DNSKEY Missing */
  b->replies[0][0] = (struct reply){R_ANSWER, 1, -1, 5};
  server_run(a);
  server_run(b);
  struct resolver *r = resolver_for(server_list(a, b), RESOLVER_TRUST_AD,
                                    5000);
  int verdict, last;
  char why[200];
  assert_int_equal(ask(r, &verdict, &last, why), 0);
  assert_int_equal(msg.rcode, DNS_RCODE_SERVFAIL);
  assert_int_equal(verdict, DNSSEC_BOGUS);
  assert_non_null(strstr(why, "DNSKEY Missing"));
  resolver_free(r);
  server_stop(a);
  server_stop(b);
  /* The second server never heard of it: a validation failure is the
   * same everywhere, and its data must not be taken instead. */
  assert_int_equal(b->queries, 0);
  free(a);
  free(b);
}

static void test_plain_servfail_is_bogus_only_if_cd_finds_data(void **state)
{
  (void)state;
  struct server *s = server_start();
  s->replies[0][0] = (struct reply){R_SERVFAIL, 0, -1, 0};
  s->cd_reply = (struct reply){R_ANSWER, 0, -1, 6};
  server_run(s);
  struct resolver *r = resolver_for(server_list(s, NULL), RESOLVER_TRUST_AD,
                                    5000);
  int verdict, last;
  char why[200];
  assert_int_equal(ask(r, &verdict, &last, why), 0);
  assert_int_equal(msg.rcode, DNS_RCODE_SERVFAIL); /* not the CD data */
  assert_int_equal(last, 0);
  assert_int_equal(verdict, DNSSEC_BOGUS);
  assert_non_null(strstr(why, "checking disabled"));
  /* Both SERVFAIL: nobody can say more. */
  s->cd_reply = (struct reply){R_SERVFAIL, 0, -1, 0};
  assert_int_equal(ask(r, &verdict, &last, why), 0);
  assert_int_equal(verdict, DNSSEC_INDETERMINATE);
  /* "DNSSEC Indeterminate" (EDE 5) is just that. */
  s->replies[0][0] = (struct reply){R_SERVFAIL, 0, 5, 0};
  assert_int_equal(ask(r, &verdict, &last, why), 0);
  assert_int_equal(verdict, DNSSEC_INDETERMINATE);
  /* An extended error that is not about DNSSEC (23: Network Error). */
  s->replies[0][0] = (struct reply){R_SERVFAIL, 0, 23, 0};
  assert_int_equal(ask(r, &verdict, &last, why), 0);
  assert_int_equal(verdict, DNSSEC_INDETERMINATE);
  resolver_free(r);
  server_stop(s);
  /* CD was asked after the plain SERVFAILs, not after extended errors. */
  assert_int_equal(s->cd_queries, 2);
  free(s);
}

static void test_ad_is_not_trusted_off_loopback_or_when_off(void **state)
{
  (void)state;
  struct server *s = server_start();
  s->replies[0][0] = (struct reply){R_ANSWER, 1, -1, 7};
  s->replies[0][1] = (struct reply){R_SILENT, 0, -1, 0};
  server_run(s);
  struct resolver *r = resolver_for(server_list(s, NULL), RESOLVER_OFF, 5000);
  int verdict, last;
  char why[200];
  assert_false(resolver_dnssec_capable(r));
  assert_int_equal(ask(r, &verdict, &last, why), 0);
  assert_int_equal(last, 7);
  assert_int_equal(verdict, DNSSEC_INSECURE);
  resolver_free(r);
  /* A loopback server beside a remote one: AD is not believed at all
   * (which one answers is not the caller's to choose). */
  char list[120];
  snprintf(list, sizeof(list), "%s 192.0.2.53", server_list(s, NULL));
  r = resolver_for(list, RESOLVER_TRUST_AD, 5000);
  assert_false(resolver_dnssec_capable(r));
  assert_int_equal(ask(r, &verdict, &last, why), 0);
  assert_int_equal(verdict, DNSSEC_INSECURE);
  resolver_free(r);
  server_stop(s);
  free(s);

  struct resolver_options o = {.mode = RESOLVER_TRUST_AD,
                               .nameservers = "192.0.2.53:53"};
  char err[200];
  assert_int_equal(resolver_new(&r, &o, err, sizeof(err)), 0);
  assert_false(resolver_dnssec_capable(r));
  resolver_free(r);
  o.trust_remote_ad = 1;
  assert_int_equal(resolver_new(&r, &o, err, sizeof(err)), 0);
  assert_true(resolver_dnssec_capable(r));
  resolver_free(r);
  o.trust_remote_ad = 0;
  o.nameservers = "[::1]:5353 127.0.0.53";
  assert_int_equal(resolver_new(&r, &o, err, sizeof(err)), 0);
  assert_true(resolver_dnssec_capable(r));
  assert_string_equal(r->servers[0].text, "[::1]:5353");
  assert_string_equal(r->servers[1].text, "127.0.0.53:53");
  resolver_free(r);
}

static void test_silence_is_a_timeout_and_indeterminate(void **state)
{
  (void)state;
  struct server *s = server_start(); /* answers nothing */
  server_run(s);
  struct resolver *r = resolver_for(server_list(s, NULL), RESOLVER_TRUST_AD,
                                    300);
  int verdict = -1, last;
  char why[200];
  assert_int_equal(ask(r, &verdict, &last, why), ERR_TIMEOUT);
  assert_int_equal(verdict, DNSSEC_INDETERMINATE);
  assert_non_null(strstr(why, "no answer"));
  resolver_free(r);
  server_stop(s);
  assert_int_equal(s->queries, 2); /* two rounds over one server */
  free(s);
}

static void test_nameserver_lists_are_checked(void **state)
{
  (void)state;
  const char *good[] = {"127.0.0.1", "127.0.0.1:3535, ::1",
                        "[2001:db8::1]:53\t192.0.2.1:5300", "[::1]"};
  const char *bad[] = {"", " , ", "localhost", "127.0.0.1:0",
                       "127.0.0.1:65536", "127.0.0.1:x", "[::1",
                       "[::1]x", "1.2.3.4.5",
                       ("1.1.1.1 2.2.2.2 3.3.3.3 4.4.4.4 5.5.5.5 6.6.6.6 "
                        "7.7.7.7 8.8.8.8 9.9.9.9")};
  struct resolver *r;
  char err[200];
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    struct resolver_options o = {.nameservers = good[i]};
    if (resolver_new(&r, &o, err, sizeof(err)) != 0)
      fail_msg("refused \"%s\": %s", good[i], err);
    resolver_free(r);
  }
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct resolver_options o = {.nameservers = bad[i]};
    r = NULL;
    if (resolver_new(&r, &o, err, sizeof(err)) != SMTPOUT_ERR_CONFIG)
      fail_msg("accepted \"%s\"", bad[i]);
    assert_null(r);
    assert_true(err[0] != '\0');
  }
  struct resolver_options o = {.mode = 7, .nameservers = "127.0.0.1"};
  assert_int_equal(resolver_new(&r, &o, err, sizeof(err)), SMTPOUT_ERR_CONFIG);
}

static void test_resolv_conf_is_read(void **state)
{
  (void)state;
  char path[] = "/tmp/smtpout-resolv-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  static const char text[] = "# a comment\n"
                             "search example.org\n"
                             "nameserver 127.0.0.53\n"
                             "nameserver fe80::1%eth0\n"
                             "  nameserver   ::1  \n"
                             "options edns0 trust-ad\n";
  assert_int_equal(write(fd, text, sizeof(text) - 1), sizeof(text) - 1);
  close(fd);
  struct resolver_options o = {.resolv_conf = path};
  struct resolver *r;
  char err[200];
  assert_int_equal(resolver_new(&r, &o, err, sizeof(err)), 0);
  assert_int_equal(r->nservers, 2);
  assert_string_equal(r->servers[0].text, "127.0.0.53:53");
  assert_string_equal(r->servers[1].text, "[::1]:53");
  assert_true(resolver_dnssec_capable(r));
  resolver_free(r);
  /* No nameserver line (or no file): glibc's 127.0.0.1. */
  o.resolv_conf = "/nonexistent/resolv.conf";
  assert_int_equal(resolver_new(&r, &o, err, sizeof(err)), 0);
  assert_int_equal(r->nservers, 1);
  assert_string_equal(r->servers[0].text, "127.0.0.1:53");
  resolver_free(r);
  unlink(path);
}

static void test_bad_questions_and_buffers_are_refused(void **state)
{
  (void)state;
  struct resolver *r = resolver_for("127.0.0.1:9", RESOLVER_TRUST_AD, 100);
  size_t len;
  int verdict;
  static uint8_t small[512];
  assert_int_equal(resolver_query(r, "a..b", 1, buf, sizeof(buf), &len,
                                  &verdict, NULL, 0),
                   SMTPOUT_ERR_BAD_NAME);
  assert_int_equal(resolver_query(r, "x.test", 1, small, sizeof(small), &len,
                                  &verdict, NULL, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  resolver_free(r);
  resolver_free(NULL);
  assert_string_equal(dnssec_verdict_name(DNSSEC_BOGUS), "bogus");
  assert_null(dnssec_verdict_name(9));
}

static void test_validate_needs_a_readable_trust_anchor(void **state)
{
  (void)state;
  struct resolver_options o = {.mode = RESOLVER_VALIDATE,
                               .nameservers = "127.0.0.1",
                               .trust_anchor_file = "/nonexistent/root.key"};
  struct resolver *r;
  char err[200];
  assert_int_equal(resolver_new(&r, &o, err, sizeof(err)), SMTPOUT_ERR_CONFIG);
#ifdef HAVE_LIBUNBOUND
  assert_non_null(strstr(err, "/nonexistent/root.key"));
#else
  assert_non_null(strstr(err, "libunbound"));
#endif
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_only_the_answer_to_our_question_counts),
      cmocka_unit_test(test_garbage_is_dropped_and_the_wait_goes_on),
      cmocka_unit_test(test_truncated_answer_is_asked_again_over_tcp),
      cmocka_unit_test(test_refused_moves_on_to_the_next_server),
      cmocka_unit_test(test_dnssec_extended_error_is_bogus_at_once),
      cmocka_unit_test(test_plain_servfail_is_bogus_only_if_cd_finds_data),
      cmocka_unit_test(test_ad_is_not_trusted_off_loopback_or_when_off),
      cmocka_unit_test(test_silence_is_a_timeout_and_indeterminate),
      cmocka_unit_test(test_nameserver_lists_are_checked),
      cmocka_unit_test(test_resolv_conf_is_read),
      cmocka_unit_test(test_bad_questions_and_buffers_are_refused),
      cmocka_unit_test(test_validate_needs_a_readable_trust_anchor),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
