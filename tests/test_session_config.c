/*
 * test_session_config.c — sessions under real configurations: the policy
 * of the queued messages' domains, conflicts with a connection's settled
 * TLS, reload while sessions run, and the configuration's EHLO name and
 * timeouts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static smtpout_config *load(const char *text)
{
  smtpout_config *cfg = NULL;
  char err[1024];
  int rv = smtpout_config_load_string(&cfg, text, "test.ini", err, sizeof(err));
  if (rv != 0)
    fail_msg("config: %s", err);
  return cfg;
}

static const char *const SECURE = "[queue.outbound.tls]\n"
                                  "starttls = optional\n"
                                  "[destination \"secure\"]\n"
                                  "domains = secure.example\n"
                                  "starttls = \"require\"\n";

static void test_session_keeps_its_config_after_reload(void **st)
{
  struct h old_s, new_s;
  (void)st;
  smtpout_config *a = load(SECURE);
  h_init(&old_s, "mx.test.example", a);
  /* The host reloads: drops its reference, loads a config that turns
   * TLS off for the domain, and gives it to new sessions. */
  smtpout_config_unref(a);
  smtpout_config *b = load("[destination \"secure\"]\n"
                           "domains = secure.example\n"
                           "starttls = disable\n");
  h_init(&new_s, "mx.test.example", b);
  smtpout_config_unref(b);

  h_submit(&old_s, "x@secure.example", NULL);
  h_submit(&new_s, "x@secure.example", NULL);
  h_open(&old_s, "250 STARTTLS\r\n");
  h_open(&new_s, "250 STARTTLS\r\n");
  /* The old session still applies the old rule: require. */
  assert_int_equal(smtpout_session_policy_starttls(old_s.s),
                   SMTPOUT_STARTTLS_REQUIRE);
  assert_string_equal(h_client(&old_s), "STARTTLS\r\n");
  /* The new one the new rule. */
  assert_int_equal(smtpout_session_policy_starttls(new_s.s),
                   SMTPOUT_STARTTLS_DISABLE);
  assert_string_equal(h_client(&new_s), "MAIL FROM:<sender@test.example>\r\n");
  h_free(&old_s);
  h_free(&new_s);
}

static void test_strictest_policy_of_queued_messages_applies(void **st)
{
  struct h h;
  (void)st;
  smtpout_config *cfg = load(SECURE);
  h_init(&h, "mx.test.example", cfg);
  smtpout_config_unref(cfg);
  h_submit(&h, "a@plain.example", NULL);
  h_submit(&h, "b@plain.example", "c@secure.example", NULL);
  h_open(&h, "250 PIPELINING\r\n");
  /* secure.example requires TLS and the server offers none: nothing goes
   * out, not even the plain.example message queued first. */
  assert_string_equal(h_client(&h), "QUIT\r\n");
  assert_int_equal(h.nres, 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(h.res[i].status, SMTPOUT_STATUS_DEFERRED);
    assert_string_equal(h.res[i].enhanced, "4.7.4");
  }
  h_free(&h);
}

static void test_stricter_message_is_refused_on_settled_connection(void **st)
{
  struct h h;
  (void)st;
  smtpout_config *cfg = load(SECURE);
  h_init(&h, "mx.test.example", cfg);
  smtpout_config_unref(cfg);
  h_submit(&h, "a@plain.example", NULL);
  h_open(&h, "250 PIPELINING\r\n");
  /* The connection went plaintext (optional, STARTTLS not offered). */
  assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n"
                                    "RCPT TO:<a@plain.example>\r\n"
                                    "DATA\r\n");
  const char *secure[] = {"x@secure.example"};
  assert_int_equal(smtpout_session_submit(h.s, "s@test.example", secure, 1,
                                          0, 0),
                   SMTPOUT_ERR_POLICY_CONFLICT);
  const char *plain[] = {"y@plain.example"};
  assert_true(smtpout_session_submit(h.s, "s@test.example", plain, 1, 0, 0) >
              0);
  h_free(&h);
}

/* The session remembers the last domain's policy (policy_of() in
 * session.c): a message to another domain, or to several, or to the same
 * domain spelt otherwise, is still looked up as its own. */
static void test_each_message_gets_its_domains_policy(void **st)
{
  struct h h;
  (void)st;
  smtpout_config *cfg = load(SECURE);
  h_init(&h, "mx.test.example", cfg);
  smtpout_config_unref(cfg);
  h_submit(&h, "a@plain.example", NULL);
  h_open(&h, "250 PIPELINING\r\n");
  h_client(&h); /* settled in plaintext */
  const char *sender = "s@test.example";
  const char *plain[] = {"y@plain.example"};
  const char *secure[] = {"x@secure.example"};
  const char *upper[] = {"x@SECURE.example"};
  const char *mixed[] = {"z@plain.example", "w@secure.example"};
  const char *two_plain[] = {"z@plain.example", "w@plain.example"};
  for (int round = 0; round < 2; round++) {
    assert_true(smtpout_session_submit(h.s, sender, plain, 1, 0, 0) > 0);
    assert_true(smtpout_session_submit(h.s, sender, plain, 1, 0, 0) > 0);
    assert_int_equal(smtpout_session_submit(h.s, sender, secure, 1, 0, 0),
                     SMTPOUT_ERR_POLICY_CONFLICT);
    assert_int_equal(smtpout_session_submit(h.s, sender, secure, 1, 0, 0),
                     SMTPOUT_ERR_POLICY_CONFLICT);
    assert_true(smtpout_session_submit(h.s, sender, two_plain, 2, 0, 0) > 0);
    assert_int_equal(smtpout_session_submit(h.s, sender, upper, 1, 0, 0),
                     SMTPOUT_ERR_POLICY_CONFLICT);
    assert_true(smtpout_session_submit(h.s, sender, plain, 1, 0, 0) > 0);
    assert_int_equal(smtpout_session_submit(h.s, sender, mixed, 2, 0, 0),
                     SMTPOUT_ERR_POLICY_CONFLICT);
  }
  h_free(&h);
}

static void test_mx_rule_applies_to_every_domain(void **st)
{
  struct h h;
  (void)st;
  smtpout_config *cfg = load("[destination \"legacy-mx\"]\n"
                             "mx = *.legacy.example\n"
                             "starttls = disable\n");
  h_init(&h, "MX1.Legacy.Example.", cfg);
  smtpout_config_unref(cfg);
  h_submit(&h, "a@any.example", NULL);
  h_open(&h, "250 STARTTLS\r\n");
  assert_int_equal(smtpout_session_policy_starttls(h.s),
                   SMTPOUT_STARTTLS_DISABLE);
  assert_string_equal(h_client(&h), "MAIL FROM:<sender@test.example>\r\n");
  h_free(&h);
}

static void test_helo_name_and_timeouts_from_config(void **st)
{
  smtpout_callbacks *cbs;
  smtpout_session *s;
  const uint8_t *p;
  size_t n;
  (void)st;
  smtpout_config *cfg = load("[queue.outbound]\n"
                             "hostname = Relay.B\xc3\xbc" "cher.example\n"
                             "[queue.outbound.timeouts]\n"
                             "greeting = 2s\n"
                             "ehlo = 1500ms\n");
  assert_int_equal(smtpout_callbacks_new(&cbs), 0);
  assert_int_equal(smtpout_session_new(&s, "mx.test.example", cfg, cbs, NULL),
                   0);
  smtpout_config_unref(cfg);
  assert_int_equal(smtpout_session_start(s, 1000), 0);
  assert_int_equal(smtpout_session_expiry(s), 3000);
  assert_int_equal(smtpout_session_feed(s, (const uint8_t *)"220 hi\r\n", 8,
                                        1100),
                   0);
  assert_int_equal(smtpout_session_peek_output(s, &p, &n, 1100), 0);
  assert_int_equal(n, strlen("EHLO relay.xn--bcher-kva.example\r\n"));
  assert_memory_equal(p, "EHLO relay.xn--bcher-kva.example\r\n", n);
  assert_int_equal(smtpout_session_expiry(s), 2600);
  smtpout_session_free(s);

  cfg = load("[queue.outbound]\nhostname = 192.0.2.7\n");
  assert_int_equal(smtpout_session_new(&s, "mx.test.example", cfg, cbs, NULL),
                   0);
  smtpout_config_unref(cfg);
  smtpout_session_start(s, 0);
  smtpout_session_feed(s, (const uint8_t *)"220 hi\r\n", 8, 0);
  smtpout_session_peek_output(s, &p, &n, 0);
  assert_int_equal(n, strlen("EHLO [192.0.2.7]\r\n"));
  assert_memory_equal(p, "EHLO [192.0.2.7]\r\n", n);
  smtpout_session_free(s);
  smtpout_callbacks_free(cbs);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_session_keeps_its_config_after_reload),
    cmocka_unit_test(test_strictest_policy_of_queued_messages_applies),
    cmocka_unit_test(test_stricter_message_is_refused_on_settled_connection),
    cmocka_unit_test(test_each_message_gets_its_domains_policy),
    cmocka_unit_test(test_mx_rule_applies_to_every_domain),
    cmocka_unit_test(test_helo_name_and_timeouts_from_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
