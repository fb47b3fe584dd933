/*
 * test_deliver_route — the blocking driver's route mode without a DNS:
 * what its setters accept, what run refuses, and a route to an address
 * literal (one hop, no question asked) over real loopback sockets: a port
 * nobody listens on, and a one-shot SMTP server in a thread.  The DNS lab
 * tests (tests/integration/test_domain_lab.py) do the rest.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smtpout/smtpout.h"

static const uint8_t body[] = "Subject: t\r\n\r\nhello\r\n";

/* A loopback port nothing listens on (bound, then closed). */
static uint16_t closed_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  close(fd);
  return ntohs(sa.sin_port);
}

static smtpout_config *config_with_port(uint16_t port)
{
  char ini[128];
  char err[1024];
  smtpout_config *c = NULL;
  snprintf(ini, sizeof(ini), "[queue.outbound]\nsmtp-port = %u\n",
           (unsigned)port);
  assert_int_equal(smtpout_config_load_string(&c, ini, "t.ini", err,
                                              sizeof(err)),
                   0);
  return c;
}

static smtpout_delivery *new_delivery(smtpout_config *c, const char *domain,
                                      const char *rcpt)
{
  smtpout_delivery *d;
  assert_int_equal(smtpout_delivery_new(&d, c), 0);
  assert_int_equal(smtpout_delivery_set_domain(d, domain), 0);
  assert_int_equal(smtpout_delivery_set_sender(d, "s@sender.test"), 0);
  assert_int_equal(smtpout_delivery_add_recipient(d, rcpt), 0);
  assert_int_equal(smtpout_delivery_set_body(d, body, sizeof(body) - 1), 0);
  return d;
}

static void test_setters_refuse_what_they_cannot_use(void **state)
{
  (void)state;
  smtpout_delivery *d;
  assert_int_equal(smtpout_delivery_new(&d, NULL), 0);
  assert_int_equal(smtpout_delivery_set_domain(NULL, "a.test"),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_delivery_set_domain(d, ""),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_delivery_set_route_flags(d, 0x80),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_delivery_set_route_flags(
                       d, SMTPOUT_ROUTE_REQUIRETLS |
                              SMTPOUT_ROUTE_TLS_REQUIRED_NO),
                   0);
  /* Nameservers are parsed now, by the resolver's own parser. */
  assert_int_equal(smtpout_delivery_set_resolver(d, "dns.example"),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_delivery_set_resolver(d, "127.0.0.1:0"),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_delivery_set_resolver(d, NULL),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_delivery_set_resolver(d, "127.0.0.1:3535 [::1]"),
                   0);
  assert_int_equal(smtpout_delivery_set_dnssec_mode(d, 3),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_delivery_set_dnssec_mode(d, -1),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_delivery_set_dnssec_mode(
                       d, SMTPOUT_DNSSEC_MODE_OFF),
                   0);
  /* The two store callbacks go together. */
  assert_int_equal(smtpout_delivery_set_store(d, NULL, NULL, NULL), 0);
  assert_int_equal(smtpout_delivery_set_tlsrpt_events(d, NULL, NULL), 0);
  assert_int_equal(smtpout_delivery_set_tlsrpt_events(NULL, NULL, NULL),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  smtpout_delivery_free(d);
}

static int get_nothing(const char *key, uint8_t *buf, size_t buflen,
                       size_t *plen, void *ud)
{
  (void)key;
  (void)buf;
  (void)buflen;
  (void)ud;
  *plen = 0;
  return 0;
}

static void test_store_callbacks_go_together(void **state)
{
  (void)state;
  smtpout_delivery *d;
  assert_int_equal(smtpout_delivery_new(&d, NULL), 0);
  assert_int_equal(smtpout_delivery_set_store(d, get_nothing, NULL, NULL),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_delivery_set_store(NULL, NULL, NULL, NULL),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  smtpout_delivery_free(d);
}

/* A route gives each hop its name and TLS requirement: a fixed MX name
 * or policy would contradict it; route flags without a route mean
 * nothing. */
static void test_run_refuses_what_contradicts_the_route(void **state)
{
  (void)state;
  smtpout_delivery *d = new_delivery(NULL, "a.test", "r@a.test");
  assert_int_equal(smtpout_delivery_set_mx_name(d, "mx.a.test"), 0);
  assert_int_equal(smtpout_delivery_run(d), SMTPOUT_ERR_INVALID_STATE);
  smtpout_delivery_free(d);

  d = new_delivery(NULL, "a.test", "r@a.test");
  assert_int_equal(smtpout_delivery_set_tls_policy(
                       d, SMTPOUT_STARTTLS_REQUIRE, 0),
                   0);
  assert_int_equal(smtpout_delivery_run(d), SMTPOUT_ERR_INVALID_STATE);
  smtpout_delivery_free(d);

  /* set_server replaces the domain, and the flags then have no route. */
  d = new_delivery(NULL, "a.test", "r@a.test");
  assert_int_equal(smtpout_delivery_set_server(d, "127.0.0.1", 1), 0);
  assert_int_equal(smtpout_delivery_set_route_flags(
                       d, SMTPOUT_ROUTE_REQUIRETLS),
                   0);
  assert_int_equal(smtpout_delivery_run(d), SMTPOUT_ERR_INVALID_STATE);
  assert_null(smtpout_delivery_route(d));
  smtpout_delivery_free(d);

  /* Not a name: the route says so, nothing is attempted. */
  d = new_delivery(NULL, "bad_name..test", "r@a.test");
  assert_int_equal(smtpout_delivery_run(d), SMTPOUT_ERR_BAD_NAME);
  smtpout_delivery_free(d);

  /* resolve needs a domain, and runs once. */
  assert_int_equal(smtpout_delivery_new(&d, NULL), 0);
  assert_int_equal(smtpout_delivery_resolve(d), SMTPOUT_ERR_INVALID_STATE);
  assert_int_equal(smtpout_delivery_resolve(NULL),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  smtpout_delivery_free(d);
}

/* An address literal is one hop and no DNS: a refused connection is one
 * attempt, and the route's verdict defers the recipient. */
static void test_literal_with_nobody_listening_defers(void **state)
{
  (void)state;
  uint16_t port = closed_port();
  smtpout_config *c = config_with_port(port);
  smtpout_delivery *d = new_delivery(c, "[127.0.0.1]", "r@[127.0.0.1]");
  smtpout_config_unref(c);
  assert_int_equal(smtpout_delivery_run(d), 0);
  assert_int_equal(smtpout_delivery_attempt_count(d), 1);
  const smtpout_attempt *a = smtpout_delivery_attempt(d, 0);
  char want[64];
  snprintf(want, sizeof(want), "127.0.0.1:%u", (unsigned)port);
  assert_string_equal(smtpout_attempt_address(a), want);
  assert_string_equal(smtpout_attempt_mx(a), "127.0.0.1");
  assert_int_equal(smtpout_attempt_hop_outcome(a),
                   SMTPOUT_HOP_CONNECT_FAILED);
  assert_int_equal(smtpout_attempt_tls_requirement(a),
                   SMTPOUT_TLS_REQUIREMENT_LOCAL);
  assert_int_equal(smtpout_attempt_dane_status(a),
                   SMTPOUT_DANE_STATUS_ADDRESS_LITERAL);
  assert_non_null(smtpout_attempt_explain(a));
  assert_null(smtpout_attempt_tlsrpt_event(a));
  assert_null(smtpout_attempt_tlsrpt_result(a));
  assert_non_null(strstr(smtpout_attempt_error(a), "Connection refused"));
  const smtpout_result *r = smtpout_delivery_result(d, 0);
  assert_int_equal(smtpout_result_status(r), SMTPOUT_STATUS_DEFERRED);
  assert_string_equal(smtpout_result_enhanced(r), "4.4.1");
  const smtpout_route *route = smtpout_delivery_route(d);
  assert_non_null(route);
  assert_string_equal(smtpout_route_domain(route), "127.0.0.1");
  assert_int_equal(smtpout_route_status(route), SMTPOUT_STATUS_DEFERRED);
  assert_int_equal(smtpout_delivery_tlsrpt_events_lost(d), 0);
  /* Once. */
  assert_int_equal(smtpout_delivery_run(d), SMTPOUT_ERR_INVALID_STATE);
  smtpout_delivery_free(d);
}

static void test_resolve_only_connects_to_nothing(void **state)
{
  (void)state;
  smtpout_config *c = config_with_port(closed_port());
  smtpout_delivery *d;
  assert_int_equal(smtpout_delivery_new(&d, c), 0);
  smtpout_config_unref(c);
  assert_int_equal(smtpout_delivery_set_domain(d, "[127.0.0.1]"), 0);
  assert_int_equal(smtpout_delivery_resolve(d), 0);
  assert_int_equal(smtpout_delivery_attempt_count(d), 1);
  const smtpout_attempt *a = smtpout_delivery_attempt(d, 0);
  assert_string_equal(smtpout_attempt_error(a),
                      "not connected (resolve only)");
  assert_int_equal(smtpout_tls_info_outcome(smtpout_attempt_tls_info(a)),
                   SMTPOUT_TLS_OUTCOME_NONE);
  assert_int_equal(smtpout_delivery_run(d), SMTPOUT_ERR_INVALID_STATE);
  smtpout_delivery_free(d);
}

/* ---- a one-shot SMTP server ---- */

struct server {
  int fd;
  char mail[256]; /* the MAIL command it got */
};

static void say(int fd, const char *s)
{
  ssize_t n = send(fd, s, strlen(s), MSG_NOSIGNAL);
  (void)n;
}

/* Reads one CRLF line (at most len - 1 bytes) into buf; 0 at EOF. */
static int line(int fd, char *buf, size_t len)
{
  size_t n = 0;
  char c;
  while (n + 1 < len && recv(fd, &c, 1, 0) == 1) {
    if (c == '\n') {
      buf[n > 0 && buf[n - 1] == '\r' ? n - 1 : n] = '\0';
      return 1;
    }
    buf[n++] = c;
  }
  return 0;
}

static void *serve(void *arg)
{
  struct server *srv = arg;
  int c = accept(srv->fd, NULL, NULL);
  if (c < 0)
    return NULL;
  char buf[1024];
  say(c, "220 t ESMTP\r\n");
  while (line(c, buf, sizeof(buf))) {
    if (strncmp(buf, "EHLO", 4) == 0) {
      say(c, "250-t\r\n250 PIPELINING\r\n");
    } else if (strncmp(buf, "MAIL", 4) == 0) {
      snprintf(srv->mail, sizeof(srv->mail), "%.200s", buf);
      say(c, "250 ok\r\n");
    } else if (strncmp(buf, "RCPT", 4) == 0) {
      say(c, "250 ok\r\n");
    } else if (strcmp(buf, "DATA") == 0) {
      say(c, "354 go\r\n");
      while (line(c, buf, sizeof(buf)) && strcmp(buf, ".") != 0)
        ;
      say(c, "250 2.0.0 queued\r\n");
    } else if (strcmp(buf, "QUIT") == 0) {
      say(c, "221 bye\r\n");
      break;
    } else {
      say(c, "500 what\r\n");
    }
  }
  close(c);
  return NULL;
}

/* Delivered over the hop's session, in plaintext since the server offers
 * no STARTTLS and the local policy is optional: no TLS, so no TLS-RPT
 * event (RFC 8460 counts TLS sessions). */
static void test_literal_delivers_through_its_hop(void **state)
{
  (void)state;
  struct server srv = {.fd = socket(AF_INET, SOCK_STREAM, 0)};
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  assert_int_equal(bind(srv.fd, (struct sockaddr *)&sa, len), 0);
  assert_int_equal(listen(srv.fd, 1), 0);
  assert_int_equal(getsockname(srv.fd, (struct sockaddr *)&sa, &len), 0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, serve, &srv), 0);

  smtpout_config *c = config_with_port(ntohs(sa.sin_port));
  smtpout_delivery *d = new_delivery(c, "[127.0.0.1]", "r@[127.0.0.1]");
  smtpout_config_unref(c);
  assert_int_equal(smtpout_delivery_run(d), 0);
  pthread_join(t, NULL);
  close(srv.fd);
  const smtpout_result *r = smtpout_delivery_result(d, 0);
  assert_int_equal(smtpout_result_status(r), SMTPOUT_STATUS_DELIVERED);
  assert_int_equal(smtpout_result_code(r), 250);
  assert_int_equal(smtpout_delivery_attempt_count(d), 1);
  const smtpout_attempt *a = smtpout_delivery_attempt(d, 0);
  assert_int_equal(smtpout_attempt_hop_outcome(a), SMTPOUT_HOP_DONE);
  assert_null(smtpout_attempt_error(a));
  assert_null(smtpout_attempt_tlsrpt_event(a));
  assert_string_equal(srv.mail, "MAIL FROM:<s@sender.test>");
  assert_int_equal(smtpout_route_status(smtpout_delivery_route(d)), 0);
  smtpout_delivery_free(d);
}

/* Relay mode: a relay the configuration has, the delivery-level options
 * its section sets refused by run, and a relay whose password file was
 * opened to others after the load: one attempt with that error, the
 * recipient deferred, no connection. */
static void test_relay_mode(void **state)
{
  (void)state;
  char pw[] = "/tmp/smtpout-relay-pw-XXXXXX";
  int fd = mkstemp(pw);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "s3cret\n", 7), 7);
  close(fd);
  assert_int_equal(chmod(pw, 0600), 0);
  char ini[512], err[256];
  snprintf(ini, sizeof(ini),
           "[queue.outbound]\nrelay = sub\n"
           "[relay \"sub\"]\nhost = 127.0.0.1\nport = %u\n"
           "auth-username = u\nauth-password-file = %s\n",
           (unsigned)closed_port(), pw);
  smtpout_config *c;
  if (smtpout_config_load_string(&c, ini, "t.ini", err, sizeof(err)) != 0)
    fail_msg("%s", err);
  smtpout_delivery *d;
  assert_int_equal(smtpout_delivery_new(&d, c), 0);
  assert_int_equal(smtpout_delivery_set_relay(NULL, "sub"),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_delivery_set_relay(d, ""),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_delivery_set_relay(d, "nosuch"),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_delivery_set_relay(d, NULL), 0); /* the default */
  assert_int_equal(smtpout_delivery_set_sender(d, "s@sender.test"), 0);
  assert_int_equal(smtpout_delivery_add_recipient(d, "r@any.example"), 0);
  assert_int_equal(smtpout_delivery_set_body(d, body, sizeof(body) - 1), 0);
  assert_int_equal(smtpout_delivery_set_implicit_tls(d, 1), 0);
  assert_int_equal(smtpout_delivery_run(d), SMTPOUT_ERR_INVALID_STATE);
  smtpout_delivery_free(d);

  assert_int_equal(smtpout_delivery_new(&d, c), 0);
  assert_int_equal(smtpout_delivery_set_relay(d, "sub"), 0);
  assert_int_equal(smtpout_delivery_set_sender(d, "s@sender.test"), 0);
  assert_int_equal(smtpout_delivery_add_recipient(d, "r@any.example"), 0);
  assert_int_equal(smtpout_delivery_set_body(d, body, sizeof(body) - 1), 0);
  assert_int_equal(chmod(pw, 0644), 0);
  assert_int_equal(smtpout_delivery_run(d), 0);
  assert_int_equal(smtpout_delivery_attempt_count(d), 1);
  const smtpout_attempt *a = smtpout_delivery_attempt(d, 0);
  assert_non_null(strstr(smtpout_attempt_error(a),
                         "AUTH password file of relay sub"));
  assert_int_equal(smtpout_attempt_auth_outcome(a),
                   SMTPOUT_AUTH_OUTCOME_NONE);
  const smtpout_result *r = smtpout_delivery_result(d, 0);
  assert_int_equal(smtpout_result_status(r), SMTPOUT_STATUS_DEFERRED);
  assert_string_equal(smtpout_route_domain(smtpout_delivery_route(d)),
                      "127.0.0.1");
  smtpout_delivery_free(d);
  smtpout_config_unref(c);
  unlink(pw);
}

static void test_attempt_getters_take_null(void **state)
{
  (void)state;
  assert_string_equal(smtpout_attempt_mx(NULL), "");
  assert_int_equal(smtpout_attempt_hop_outcome(NULL), -1);
  assert_int_equal(smtpout_attempt_dane_status(NULL), -1);
  assert_int_equal(smtpout_attempt_tlsa_count(NULL), 0);
  assert_int_equal(smtpout_attempt_sts_mode(NULL), 0);
  assert_null(smtpout_attempt_explain(NULL));
  assert_null(smtpout_attempt_tlsrpt_event(NULL));
  assert_null(smtpout_attempt_tlsrpt_result(NULL));
  assert_null(smtpout_delivery_route(NULL));
  assert_int_equal(smtpout_delivery_tlsrpt_events_lost(NULL), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_setters_refuse_what_they_cannot_use),
    cmocka_unit_test(test_store_callbacks_go_together),
    cmocka_unit_test(test_run_refuses_what_contradicts_the_route),
    cmocka_unit_test(test_literal_with_nobody_listening_defers),
    cmocka_unit_test(test_resolve_only_connects_to_nothing),
    cmocka_unit_test(test_literal_delivers_through_its_hop),
    cmocka_unit_test(test_relay_mode),
    cmocka_unit_test(test_attempt_getters_take_null),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
