/*
 * test_config.c — loading configurations: the seed's snippets, value
 * syntax, continuation lines, the inih limits, every kind of error with
 * its line, files relative to the config, reference counting.
 */
#include "config_test_util.h"

#include <ini.h>
#include <sys/stat.h>

#include "config_int.h"

/* The seed's first snippet, verbatim. */
static const char seed_starttls[] = "[queue.outbound.tls]\n"
                                    "starttls = \"require\"\n";
/* The seed's second snippet, verbatim. */
static const char seed_certs[] = "[queue.outbound.tls]\n"
                                 "allow-invalid-certs = false\n";

/* A public test CA certificate (made with certtool; no key exists). */
static const char test_ca_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBezCCASCgAwIBAgIUJThqREHUgeWPiouc4stwN9Qb9AIwCgYIKoZIzj0EAwIw\n"
    "GjEYMBYGA1UEAxMPc210cG91dCB0ZXN0IENBMCAXDTI2MTEzMDA0MjcxM1oYDzIx\n"
    "MjYxMTA2MDQyNzEzWjAaMRgwFgYDVQQDEw9zbXRwb3V0IHRlc3QgQ0EwWTATBgcq\n"
    "hkjOPQIBBggqhkjOPQMBBwNCAAQE9KdwjOTcUFR7BxpRaksttqRBiSCEbD+UZGdP\n"
    "VBAIfGsOEaL1IFNch02zVL9WLceQEoVP5pekYMVZuuom1vMDo0IwQDAPBgNVHRMB\n"
    "Af8EBTADAQH/MA4GA1UdDwEB/wQEAwICBDAdBgNVHQ4EFgQUBh5n4YdBtvtmII6Z\n"
    "j/jPAzk85X8wCgYIKoZIzj0EAwIDSQAwRgIhALuX/T74FPPWOv4uADRuh9NnhQpP\n"
    "C6ZN9LvksNWglsnoAiEAlWX+VCa/90QgS09xipw7NKVvJ7X2yBImJ+7oSlj08JE=\n"
    "-----END CERTIFICATE-----\n";

static void assert_knobs(const smtpout_config *c, const char *domain,
                         int starttls, int allow, const char *src_starttls,
                         const char *src_allow)
{
  smtpout_policy *p = resolve(c, domain, NULL);
  assert_int_equal(smtpout_policy_starttls(p), starttls);
  assert_int_equal(smtpout_policy_allow_invalid_certs(p), allow);
  assert_string_equal(smtpout_policy_source(p, SMTPOUT_KNOB_STARTTLS),
                      src_starttls);
  assert_string_equal(
      smtpout_policy_source(p, SMTPOUT_KNOB_ALLOW_INVALID_CERTS), src_allow);
  smtpout_policy_free(p);
}

/* ---- the seed ---- */

static void test_seed_starttls_snippet_alone(void **state)
{
  (void)state;
  smtpout_config *c = load_ok(seed_starttls);
  assert_knobs(c, "example.com", SMTPOUT_STARTTLS_REQUIRE, 0, "t.ini:2",
               "default");
  smtpout_policy *p = resolve(c, "example.com", NULL);
  assert_string_equal(smtpout_policy_rule(p, SMTPOUT_KNOB_STARTTLS),
                      "queue.outbound.tls");
  assert_string_equal(
      smtpout_policy_rule(p, SMTPOUT_KNOB_ALLOW_INVALID_CERTS), "default");
  smtpout_policy_free(p);
  smtpout_config_unref(c);
}

static void test_seed_certs_snippet_alone(void **state)
{
  (void)state;
  smtpout_config *c = load_ok(seed_certs);
  assert_knobs(c, "example.com", SMTPOUT_STARTTLS_OPTIONAL, 0, "default",
               "t.ini:2");
  smtpout_config_unref(c);
}

static void test_seed_snippets_together(void **state)
{
  (void)state;
  /* Pasted one after the other: the section header appears twice. */
  char both[256];
  snprintf(both, sizeof(both), "%s\n%s", seed_starttls, seed_certs);
  smtpout_config *c = load_ok(both);
  assert_knobs(c, "example.com", SMTPOUT_STARTTLS_REQUIRE, 0, "t.ini:2",
               "t.ini:5");
  smtpout_config_unref(c);
  /* Merged into one section. */
  c = load_ok("[queue.outbound.tls]\n"
              "starttls = \"require\"\n"
              "allow-invalid-certs = false\n");
  assert_knobs(c, "example.com", SMTPOUT_STARTTLS_REQUIRE, 0, "t.ini:2",
               "t.ini:3");
  smtpout_config_unref(c);
}

static void test_quoted_and_bare_values_are_equal(void **state)
{
  (void)state;
  static const struct {
    const char *text;
    int value;
  } starttls[] = {
    {"optional", SMTPOUT_STARTTLS_OPTIONAL},
    {"\"optional\"", SMTPOUT_STARTTLS_OPTIONAL},
    {"require", SMTPOUT_STARTTLS_REQUIRE},
    {"\"require\"", SMTPOUT_STARTTLS_REQUIRE},
    {"'require'", SMTPOUT_STARTTLS_REQUIRE},
    {"disable", SMTPOUT_STARTTLS_DISABLE},
    {"\"disable\"", SMTPOUT_STARTTLS_DISABLE},
  };
  char text[256];
  for (size_t i = 0; i < sizeof(starttls) / sizeof(starttls[0]); i++) {
    snprintf(text, sizeof(text), "[queue.outbound.tls]\nstarttls = %s\n",
             starttls[i].text);
    smtpout_config *c = load_ok(text);
    assert_knobs(c, "x.example", starttls[i].value, 0, "t.ini:2", "default");
    smtpout_config_unref(c);
  }
  static const struct {
    const char *text;
    int value;
  } bools[] = {
    {"true", 1}, {"\"true\"", 1}, {"false", 0}, {"\"false\"", 0},
  };
  for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
    snprintf(text, sizeof(text),
             "[queue.outbound.tls]\nallow-invalid-certs = %s\n",
             bools[i].text);
    smtpout_config *c = load_ok(text);
    assert_knobs(c, "x.example", SMTPOUT_STARTTLS_OPTIONAL, bools[i].value,
                 "default", "t.ini:2");
    smtpout_config_unref(c);
  }
}

static void test_comments_bom_and_crlf(void **state)
{
  (void)state;
  smtpout_config *c = load_ok("\xEF\xBB\xBF; a comment\r\n"
                              "# another\r\n"
                              "\r\n"
                              "[queue.outbound.tls]   ; trailing comment\r\n"
                              "  ; indented comment\r\n"
                              "starttls = require ; why: policy\r\n"
                              "allow-invalid-certs: true\r\n");
  assert_knobs(c, "x.example", SMTPOUT_STARTTLS_REQUIRE, 1, "t.ini:6",
               "t.ini:7");
  smtpout_config_unref(c);
}

static void test_new_config_has_builtin_defaults(void **state)
{
  (void)state;
  smtpout_config *c = NULL;
  assert_int_equal(smtpout_config_new(&c), 0);
  assert_knobs(c, "x.example", SMTPOUT_STARTTLS_OPTIONAL, 0, "default",
               "default");
  assert_int_equal(smtpout_config_timeout(c, SMTPOUT_TIMEOUT_DATA), 600000);
  assert_null(smtpout_config_helo_name(c));
  assert_null(smtpout_config_ca_file(c));
  assert_string_equal(smtpout_config_tls_priority(c),
                      "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-GROUP-ALL:"
                      "+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:"
                      "+GROUP-SECP521R1:+GROUP-X448:+GROUP-FFDHE2048:"
                      "+GROUP-FFDHE3072:+GROUP-FFDHE4096:+GROUP-FFDHE6144:"
                      "+GROUP-FFDHE8192");
  smtpout_config_unref(c);
  /* An empty file is the same. */
  c = load_ok("");
  assert_knobs(c, "x.example", SMTPOUT_STARTTLS_OPTIONAL, 0, "default",
               "default");
  smtpout_config_unref(c);
  assert_int_equal(smtpout_config_new(NULL), SMTPOUT_ERR_INVALID_ARGUMENT);
}

/* ---- timeouts and other settings ---- */

static void test_timeouts_parse_units(void **state)
{
  (void)state;
  smtpout_config *c = load_ok("[queue.outbound.timeouts]\n"
                              "connect = 30s\n"
                              "greeting = \"5m\"\n"
                              "tls = 1500ms\n"
                              "ehlo = 1h\n"
                              "mail-from = 1d\n"
                              "rcpt-to = 2m\n");
  assert_int_equal(smtpout_config_timeout(c, SMTPOUT_TIMEOUT_CONNECT), 30000);
  assert_int_equal(smtpout_config_timeout(c, SMTPOUT_TIMEOUT_GREETING),
                   300000);
  assert_int_equal(smtpout_config_timeout(c, SMTPOUT_TIMEOUT_TLS), 1500);
  assert_int_equal(smtpout_config_timeout(c, SMTPOUT_TIMEOUT_EHLO), 3600000);
  assert_int_equal(smtpout_config_timeout(c, SMTPOUT_TIMEOUT_MAIL_FROM),
                   86400000);
  assert_int_equal(smtpout_config_timeout(c, SMTPOUT_TIMEOUT_RCPT_TO),
                   120000);
  /* Unset: the RFC 5321 default. */
  assert_int_equal(smtpout_config_timeout(c, SMTPOUT_TIMEOUT_DATA), 600000);
  assert_int_equal(smtpout_config_timeout(c, SMTPOUT_TIMEOUT_COUNT), 0);
  assert_int_equal(smtpout_config_timeout(c, -1), 0);
  assert_int_equal(smtpout_config_timeout(NULL, SMTPOUT_TIMEOUT_TLS), 180000);
  smtpout_config_unref(c);
}

/* A host can tell a timeout the operator chose, even one equal to the
 * default, from one nobody set (smtpout-send bounds the latter by 30 s). */
static void test_timeout_line_tells_set_from_default(void **state)
{
  (void)state;
  smtpout_config *c = load_ok("; timeouts\n"
                              "[queue.outbound.timeouts]\n"
                              "data = 10m\n"
                              "\n"
                              "connect = 30s\n");
  assert_int_equal(smtpout_config_timeout_line(c, SMTPOUT_TIMEOUT_DATA), 3);
  assert_int_equal(smtpout_config_timeout(c, SMTPOUT_TIMEOUT_DATA), 600000);
  assert_int_equal(smtpout_config_timeout_line(c, SMTPOUT_TIMEOUT_CONNECT),
                   5);
  assert_int_equal(smtpout_config_timeout_line(c, SMTPOUT_TIMEOUT_GREETING),
                   0);
  assert_int_equal(smtpout_config_timeout_line(c, SMTPOUT_TIMEOUT_COUNT), 0);
  assert_int_equal(smtpout_config_timeout_line(c, -1), 0);
  assert_int_equal(smtpout_config_timeout_line(NULL, SMTPOUT_TIMEOUT_DATA),
                   0);
  smtpout_config_unref(c);
  assert_int_equal(smtpout_config_new(&c), 0);
  assert_int_equal(smtpout_config_timeout_line(c, SMTPOUT_TIMEOUT_DATA), 0);
  smtpout_config_unref(c);
}

static void test_bad_timeouts_are_refused(void **state)
{
  (void)state;
  expect_problems("[queue.outbound.timeouts]\n"
                  "connect = 30\n"
                  "greeting = 0s\n"
                  "tls = -5s\n"
                  "ehlo = 5 m\n"
                  "mail-from = 50d\n"
                  "rcpt-to = 99999999999999999999ms\n"
                  "data = soon\n"
                  "mta-sts = 1m\n",
                  "t.ini:2: bad value \"30\" for connect: a unit is required",
                  "t.ini:3: bad value \"0s\" for greeting: must be greater "
                  "than zero",
                  "t.ini:4: bad value \"-5s\" for tls: not a number",
                  "t.ini:5: bad value \"5 m\" for ehlo: unknown unit",
                  "t.ini:6: bad value \"50d\" for mail-from: too large",
                  "t.ini:7: bad value \"99999999999999999999ms\" for rcpt-to: "
                  "too large",
                  "t.ini:8: bad value \"soon\" for data: not a number",
                  "t.ini:9: unknown key \"mta-sts\" in [queue.outbound.timeouts]"
                  " (accepted: connect, greeting, tls, ehlo, mail-from, "
                  "rcpt-to, data)");
}

static void test_hostname_is_normalised(void **state)
{
  (void)state;
  smtpout_config *c = load_ok("[queue.outbound]\nhostname = MX.Bücher.example.\n");
  assert_string_equal(smtpout_config_helo_name(c), "mx.xn--bcher-kva.example");
  smtpout_config_unref(c);
  c = load_ok("[queue.outbound]\nhostname = 192.0.2.7\n");
  assert_string_equal(smtpout_config_helo_name(c), "[192.0.2.7]");
  smtpout_config_unref(c);
  c = load_ok("[queue.outbound]\nhostname = [IPv6:2001:DB8::7]\n");
  assert_string_equal(smtpout_config_helo_name(c), "[IPv6:2001:db8::7]");
  smtpout_config_unref(c);
  expect_problems("[queue.outbound]\nhostname = bad_name.example\n",
                  "t.ini:2: bad value \"bad_name.example\" for hostname: "
                  "character not allowed");
}

static void test_ca_file_and_priority(void **state)
{
  (void)state;
  char *dir = scratch_new();
  char *ca = scratch_write(dir, "ca.pem", test_ca_pem);
  char *junk = scratch_write(dir, "junk.pem", "not a certificate\n");
  char *cfg = scratch_write(dir, "smtpout.ini",
                            "[queue.outbound.tls]\n"
                            "ca-file = ca.pem\n"
                            "priority = \"SECURE256:-VERS-TLS1.2\"\n");
  char err[ERRBUF_SIZE];
  smtpout_config *c = NULL;
  assert_int_equal(smtpout_config_load_file(&c, cfg, err, sizeof(err)), 0);
  /* Relative to the configuration file, not to the working directory. */
  assert_string_equal(smtpout_config_ca_file(c), ca);
  assert_string_equal(smtpout_config_tls_priority(c),
                      "SECURE256:-VERS-TLS1.2");
  smtpout_config_unref(c);

  char text[1024];
  snprintf(text, sizeof(text),
           "[queue.outbound.tls]\n"
           "ca-file = %s\n"
           "priority = NORMAL:+NO-SUCH-THING\n",
           junk);
  char want_ca[600];
  snprintf(want_ca, sizeof(want_ca),
           "t.ini:2: ca-file \"%s\" holds no usable PEM certificate", junk);
  static const char *want[3];
  want[0] = want_ca;
  want[1] = "t.ini:3: bad value \"NORMAL:+NO-SUCH-THING\" for priority: "
            "GnuTLS rejects it at \"+NO-SUCH-THING\"";
  want[2] = NULL;
  c = NULL;
  int rv = smtpout_config_load_string(&c, text, "t.ini", err, sizeof(err));
  check_problems(c, rv, err, want);

  expect_problems("[queue.outbound.tls]\nca-file = /nonexistent/ca.pem\n",
                  "t.ini:2: cannot read ca-file \"/nonexistent/ca.pem\": No "
                  "such file or directory");
  /* A device would be read without end: refused before GnuTLS sees it. */
  expect_problems("[queue.outbound.tls]\nca-file = /dev/zero\n",
                  "t.ini:2: ca-file \"/dev/zero\" is not a regular file");
  expect_problems("[queue.outbound.tls]\nca-file =\npriority = \"\"\n",
                  "t.ini:2: empty value for ca-file",
                  "t.ini:3: empty value for priority");
  free(ca);
  free(junk);
  free(cfg);
  scratch_remove(dir);
}

/* ---- destination sections ---- */

static void test_domains_continuation_lines(void **state)
{
  (void)state;
  smtpout_config *c = load_ok("[destination \"banks\"]\n"
                              "domains = a.example, b.example\n"
                              "    c.example  \"d.example\"\n"
                              "\n"
                              "    ; a comment between\n"
                              "\te.example ; inline comment\n"
                              "    .f.example,.g.example\n"
                              "starttls = require\n"
                              "mx =\n"
                              "  mx.h.example\n");
  static const char *const hits[] = {
    "a.example", "b.example", "c.example", "d.example", "e.example",
    "x.f.example", "x.g.example",
  };
  for (size_t i = 0; i < sizeof(hits) / sizeof(hits[0]); i++)
    assert_knobs(c, hits[i], SMTPOUT_STARTTLS_REQUIRE, 0, "t.ini:8",
                 "default");
  assert_knobs(c, "f.example", SMTPOUT_STARTTLS_OPTIONAL, 0, "default",
               "default");
  smtpout_policy *p = resolve(c, NULL, "mx.h.example");
  assert_int_equal(smtpout_policy_starttls(p), SMTPOUT_STARTTLS_REQUIRE);
  assert_string_equal(smtpout_policy_rule(p, 0), "banks");
  smtpout_policy_free(p);
  smtpout_config_unref(c);
}

static void test_errors_in_continuation_lines_name_their_line(void **state)
{
  (void)state;
  expect_problems("[destination \"x\"]\n"
                  "domains = a.example\n"
                  "    b..example\n"
                  "    c.example\n"
                  "    -d.example\n"
                  "starttls = require\n",
                  "t.ini:3: invalid name in pattern \"b..example\": empty "
                  "label",
                  "t.ini:5: invalid name in pattern \"-d.example\": label "
                  "starts or ends with a hyphen");
}

static void test_destination_needs_patterns_and_a_knob(void **state)
{
  (void)state;
  expect_problems("[destination \"empty\"]\n"
                  "starttls = require\n"
                  "[destination \"idle\"]\n"
                  "domains = x.example\n"
                  "[destination \"blank\"]\n"
                  "domains =\n"
                  "allow-invalid-certs = true\n",
                  "t.ini:1: [destination \"empty\"] has no domains or mx "
                  "patterns",
                  "t.ini:3: [destination \"idle\"] sets none of starttls, "
                  "allow-invalid-certs, dane, mta-sts",
                  "t.ini:5: [destination \"blank\"] has no domains or mx "
                  "patterns");
}

static void test_pattern_forms_per_list(void **state)
{
  (void)state;
  expect_problems("[destination \"x\"]\n"
                  "domains = *.a.example\n"
                  "mx = mx:b.example *. .\n"
                  "domains = ok.example\n"
                  "starttls = require\n",
                  "t.ini:2: invalid pattern \"*.a.example\": \"*.\" wildcards "
                  "are for MX hosts",
                  "t.ini:3: invalid pattern \"mx:b.example\": the \"mx:\" "
                  "prefix belongs in the policy map",
                  "t.ini:3: invalid pattern \"*.\"",
                  "t.ini:3: invalid pattern \".\"",
                  "t.ini:4: duplicate key domains in [destination \"x\"] "
                  "(first set at t.ini:2)");
}

/* ---- every error kind, with its line ---- */

static void test_unknown_section_and_key(void **state)
{
  (void)state;
  expect_problems("[queue.outbound.tls]\n"
                  "starttls = require\n"
                  "start-tls = require\n"
                  "[queue.outbound.dane]\n"
                  "dane = require\n"
                  "[destination \"x\"]\n"
                  "domain = x.example\n",
                  "t.ini:3: unknown key \"start-tls\" in [queue.outbound.tls] "
                  "(accepted: starttls, allow-invalid-certs, ca-file, "
                  "priority, policy-map, dane, mta-sts)",
                  "t.ini:4: unknown section \"queue.outbound.dane\" "
                  "(accepted: [queue.outbound], [queue.outbound.tls], "
                  "[queue.outbound.timeouts], [queue.outbound.dns], "
                  "[queue.outbound.mta-sts], [queue.outbound.tls-rpt], "
                  "[destination \"LABEL\"], [relay \"LABEL\"])",
                  "t.ini:6: [destination \"x\"] has no domains or mx "
                  "patterns",
                  "t.ini:7: unknown key \"domain\" in [destination \"x\"] "
                  "(accepted: domains, mx, starttls, allow-invalid-certs, "
                  "dane, mta-sts)");
}

static void test_bad_values_list_the_accepted_ones(void **state)
{
  (void)state;
  expect_problems("[queue.outbound.tls]\n"
                  "starttls = requir\n"
                  "allow-invalid-certs = yes\n"
                  "[destination \"d\"]\n"
                  "domains = d.example\n"
                  "starttls = \"Require\"\n"
                  "allow-invalid-certs = \"false\n",
                  "t.ini:2: bad value \"requir\" for starttls (accepted: "
                  "optional, require, disable)",
                  "t.ini:3: bad value \"yes\" for allow-invalid-certs "
                  "(accepted: true, false)",
                  "t.ini:6: bad value \"Require\" for starttls (accepted: "
                  "optional, require, disable)",
                  "t.ini:7: bad value \"\"false\" for allow-invalid-certs "
                  "(accepted: true, false)");
}

static void test_duplicate_keys_and_sections(void **state)
{
  (void)state;
  expect_problems("[queue.outbound.tls]\n"
                  "starttls = require\n"
                  "[queue.outbound.timeouts]\n"
                  "tls = 1m\n"
                  "[queue.outbound.tls]\n"
                  "starttls = optional\n"
                  "[destination \"a\"]\n"
                  "domains = a.example\n"
                  "starttls = require\n"
                  "starttls = disable\n"
                  "[destination \"a\"]\n"
                  "domains = b.example\n",
                  "t.ini:6: duplicate key starttls in [queue.outbound.tls] "
                  "(first set at t.ini:2)",
                  "t.ini:10: duplicate key starttls in [destination \"a\"] "
                  "(first set at t.ini:9)",
                  "t.ini:11: duplicate section [destination \"a\"] (first at "
                  "t.ini:7)");
}

static void test_syntax_errors_are_all_reported(void **state)
{
  (void)state;
  expect_problems("starttls = require\n"
                  "[queue.outbound.tls\n"
                  "[queue.outbound.tls] trailing\n"
                  "[queue.outbound.tls]\n"
                  "just some words\n"
                  "starttls = require\n"
                  "    continued\n"
                  "[destination x]\n"
                  "[destination \"\"]\n"
                  "[destination \"a\" ]\n",
                  "t.ini:1: key \"starttls\" outside any section",
                  "t.ini:2: bad section header: missing \"]\"",
                  "t.ini:3: unexpected text after \"]\" in section header",
                  "t.ini:5: expected \"key = value\", a [section] or an "
                  "indented continuation line",
                  "t.ini:7: starttls takes a single value; indented "
                  "continuation lines continue only the domains and mx lists",
                  "t.ini:8: bad section header: write [destination "
                  "\"LABEL\"]",
                  "t.ini:9: bad section header: write [destination "
                  "\"LABEL\"]",
                  "t.ini:10: bad section header: write [destination "
                  "\"LABEL\"]");
}

static void test_indented_section_header_is_an_error(void **state)
{
  (void)state;
  expect_problems("[destination \"x\"]\n"
                  "domains = x.example\n"
                  "starttls = require\n"
                  "  [queue.outbound.tls]\n"
                  "starttls = disable\n",
                  "t.ini:4: indented section header");
}

static void test_keys_after_a_bad_header_are_not_misfiled(void **state)
{
  (void)state;
  /* Without the rejected header's keys being skipped, "starttls" would
   * land in [queue.outbound.tls] as a duplicate, or "domains" as an
   * unknown key there. */
  expect_problems("[queue.outbound.tls]\n"
                  "starttls = require\n"
                  "[destination \"oops]\n"
                  "domains = a.example\n"
                  "starttls = disable\n",
                  "t.ini:3: bad section header");
}

/* "domains = a.example ;ccc..." padded to `len` characters. */
static void padded_line(char *out, size_t len, const char *head)
{
  size_t h = strlen(head);
  memcpy(out, head, h);
  memset(out + h, 'c', len - h);
  out[len] = '\0';
}

static void test_line_of_198_characters_is_accepted(void **state)
{
  (void)state;
  char line[256], text[512];
  padded_line(line, 198, "domains = a.example ;");
  snprintf(text, sizeof(text), "[destination \"x\"]\n%s\n"
                               "starttls = require\n", line);
  smtpout_config *c = load_ok(text);
  assert_knobs(c, "a.example", SMTPOUT_STARTTLS_REQUIRE, 0, "t.ini:3",
               "default");
  smtpout_config_unref(c);
}

static void test_over_long_line_is_refused(void **state)
{
  (void)state;
  /* Debian's inih 55 would read the first 199 characters as a line and
   * the tail, "starttls = disable", as a key of its own. */
  char line[256], text[512];
  padded_line(line, 199, "domains = x.example ;");
  snprintf(text, sizeof(text),
           "[destination \"x\"]\n%sstarttls = disable\n"
           "starttls = require\n", line);
  expect_problems(text,
                  "t.ini:1: [destination \"x\"] has no domains or mx "
                  "patterns",
                  "t.ini:2: line too long (217 characters; inih reads "
                  "at most 198): split long lists over indented "
                  "continuation lines");
  /* One character over the limit, in a comment. */
  padded_line(line, 199, "#");
  snprintf(text, sizeof(text), "[queue.outbound.tls]\n%s\n", line);
  expect_problems(text, "t.ini:2: line too long (199 characters");
}

static void test_section_name_limit_is_detected(void **state)
{
  (void)state;
  /* [destination "L"] with a 35-character label: 49 characters. */
  char label[64], text[256];
  memset(label, 'L', 35);
  label[35] = '\0';
  snprintf(text, sizeof(text),
           "[destination \"%s\"]\ndomains = x.example\nstarttls = require\n",
           label);
  smtpout_config *c = load_ok(text);
  smtpout_policy *p = resolve(c, "x.example", NULL);
  assert_string_equal(smtpout_policy_rule(p, 0), label);
  smtpout_policy_free(p);
  smtpout_config_unref(c);

  /* 36 characters: 50, which inih would cut to 49 without a word. */
  label[35] = 'M';
  label[36] = '\0';
  snprintf(text, sizeof(text),
           "[destination \"%s\"]\ndomains = x.example\nstarttls = require\n",
           label);
  expect_problems(text, "t.ini:1: section name too long (50 characters; "
                        "inih keeps at most 49)");
}

static void test_nul_byte_is_an_error(void **state)
{
  (void)state;
  static const char text[] = "[queue.outbound.tls]\nstarttls = re\0quire\n";
  char err[ERRBUF_SIZE];
  /* load_string stops at the NUL; load_file sees it. */
  char *dir = scratch_new();
  char path[600];
  snprintf(path, sizeof(path), "%s/nul.ini", dir);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fwrite(text, 1, sizeof(text) - 1, f);
  fclose(f);
  smtpout_config *c = NULL;
  assert_int_equal(smtpout_config_load_file(&c, path, err, sizeof(err)),
                   SMTPOUT_ERR_CONFIG);
  assert_null(c);
  char want[700];
  snprintf(want, sizeof(want), "%s:2: NUL character in line\n", path);
  assert_string_equal(err, want);
  scratch_remove(dir);
}

static void test_invalid_idn_in_pattern(void **state)
{
  (void)state;
  expect_problems("[destination \"x\"]\n"
                  "domains = ☃.example xn--a.example bücher.example\n"
                  "starttls = require\n",
                  "t.ini:2: invalid name in pattern \"☃.example\":",
                  "t.ini:2: invalid name in pattern \"xn--a.example\":");
}

static void test_pattern_claimed_by_two_sections(void **state)
{
  (void)state;
  expect_problems("[destination \"one\"]\n"
                  "domains = a.example .b.example\n"
                  "mx = *.mx.example\n"
                  "starttls = require\n"
                  "[destination \"two\"]\n"
                  "domains = c.example\n"
                  "    .B.example\n"
                  "mx = *.MX.example. mx.example\n"
                  "starttls = disable\n"
                  "[destination \"three\"]\n"
                  "domains = bücher.example xn--bcher-kva.example\n"
                  "allow-invalid-certs = true\n",
                  "t.ini:7: domain pattern \".b.example\" is already claimed "
                  "by [destination \"one\"] at t.ini:2",
                  "t.ini:8: MX pattern \"*.mx.example\" is already claimed by "
                  "[destination \"one\"] at t.ini:3",
                  "t.ini:11: domain pattern \"xn--bcher-kva.example\" is "
                  "already claimed by [destination \"three\"] at t.ini:11");
}

static void test_same_name_in_different_pattern_kinds_is_no_conflict(
    void **state)
{
  (void)state;
  /* "x.example", ".x.example" as a domain and as an MX are four
   * different patterns. */
  smtpout_config *c = load_ok("[destination \"d\"]\n"
                              "domains = x.example .x.example\n"
                              "starttls = require\n"
                              "[destination \"m\"]\n"
                              "mx = x.example .x.example *.x.example\n"
                              "starttls = disable\n");
  smtpout_config_unref(c);
}

static void test_all_problems_are_collected(void **state)
{
  (void)state;
  /* 150 bad lines: the first 100 are listed, the rest counted. */
  char *text = malloc(150 * 32 + 64);
  assert_non_null(text);
  strcpy(text, "[queue.outbound.tls]\n");
  for (int i = 0; i < 150; i++)
    strcat(text, "nonsense\n");
  char err[ERRBUF_SIZE];
  smtpout_config *c = NULL;
  assert_int_equal(smtpout_config_load_string(&c, text, "t.ini", err,
                                              sizeof(err)),
                   SMTPOUT_ERR_CONFIG);
  size_t lines = 0;
  for (const char *s = err; (s = strchr(s, '\n')); s++)
    lines++;
  assert_int_equal(lines, 101);
  assert_non_null(strstr(err, "t.ini:101: expected"));
  assert_null(strstr(err, "t.ini:102:"));
  assert_non_null(strstr(err, "t.ini: 50 more problems not shown\n"));
  free(text);
}

static void test_errbuf_is_optional_and_truncated(void **state)
{
  (void)state;
  smtpout_config *c = NULL;
  assert_int_equal(smtpout_config_load_string(&c, "[x]\n", NULL, NULL, 0),
                   SMTPOUT_ERR_CONFIG);
  char small[12];
  assert_int_equal(smtpout_config_load_string(&c, "[x]\n", NULL, small,
                                              sizeof(small)),
                   SMTPOUT_ERR_CONFIG);
  assert_string_equal(small, "<string>:1:");
  assert_null(c);
  assert_int_equal(smtpout_config_load_string(NULL, "", NULL, NULL, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_config_load_string(&c, NULL, NULL, NULL, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_config_load_file(&c, NULL, NULL, 0),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
}

static void test_unreadable_config_file(void **state)
{
  (void)state;
  char err[ERRBUF_SIZE];
  smtpout_config *c = NULL;
  assert_int_equal(smtpout_config_load_file(&c, "/nonexistent/smtpout.ini",
                                            err, sizeof(err)),
                   SMTPOUT_ERR_IO);
  assert_null(c);
  assert_string_equal(err, "/nonexistent/smtpout.ini: cannot read: No such "
                           "file or directory\n");
}

static void test_sources_name_the_file_as_given(void **state)
{
  (void)state;
  char *dir = scratch_new();
  char *path = scratch_write(dir, "my.ini",
                             "\n[queue.outbound.tls]\nstarttls = disable\n");
  smtpout_config *c = NULL;
  assert_int_equal(smtpout_config_load_file(&c, path, NULL, 0), 0);
  char want[700];
  snprintf(want, sizeof(want), "%s:3", path);
  assert_knobs(c, "x.example", SMTPOUT_STARTTLS_DISABLE, 0, want, "default");
  smtpout_config_unref(c);
  free(path);
  scratch_remove(dir);
}

/* Debian's inih exposes its settings as process-wide globals.  A host
 * may change them; smtpout must read its files the same way anyway (and
 * never write them, which this test would not notice, but the code has
 * no reference to them). */
static void test_inih_globals_changed_by_the_host_do_not_matter(void **state)
{
  (void)state;
#ifdef HAVE_INIH_GLOBALS
  bool multiline = ini_allow_multiline, inline_c = ini_allow_inline_comments;
  bool stop = ini_stop_on_first_error;
  char *start = ini_start_comment_prefixes;
  ini_allow_multiline = false;
  ini_allow_inline_comments = false;
  ini_stop_on_first_error = true;
  ini_start_comment_prefixes = ";";
#endif
  smtpout_config *c = load_ok("# hash comment\n"
                              "[destination \"x\"]\n"
                              "domains = a.example ; comment\n"
                              "    b.example\n"
                              "starttls = require ; comment\n");
  assert_knobs(c, "b.example", SMTPOUT_STARTTLS_REQUIRE, 0, "t.ini:5",
               "default");
  smtpout_config_unref(c);
  expect_problems("[x]\n[queue.outbound.tls]\nstarttls = no\n",
                  "t.ini:1: unknown section", "t.ini:3: bad value");
#ifdef HAVE_INIH_GLOBALS
  assert_false(ini_allow_multiline);
  ini_allow_multiline = multiline;
  ini_allow_inline_comments = inline_c;
  ini_stop_on_first_error = stop;
  ini_start_comment_prefixes = start;
#endif
}

/* Random byte edits of a valid file: loading must never crash, and a
 * refused file must always say why, in "t.ini:LINE: " form. */
static void test_mutated_configs_are_refused_with_reasons(void **state)
{
  (void)state;
  static const char base[] =
      "[queue.outbound]\nhostname = mx.example.org\n"
      "[queue.outbound.tls]\nstarttls = \"require\"\n"
      "allow-invalid-certs = false ; c\n"
      "[queue.outbound.timeouts]\nconnect = 30s\ndata = 10m\n"
      "[destination \"banks\"]\ndomains = bank.example,\n"
      "    .bank.example bücher.example\nmx = *.mx.example 192.0.2.1\n"
      "starttls = require\n";
  static const char alphabet[] = "[]=:;#\"' \t\n.*,-_aZ0\xc3\xbc\r";
  uint64_t x = 0x9e3779b97f4a7c15ull;
  char text[sizeof(base) + 16], err[ERRBUF_SIZE];
  unsigned refused = 0;
  for (int round = 0; round < 3000; round++) {
    memcpy(text, base, sizeof(base));
    size_t len = sizeof(base) - 1;
    for (int edits = 1 + round % 4; edits > 0; edits--) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      size_t at = (size_t)(x % len);
      char c = alphabet[(x >> 32) % (sizeof(alphabet) - 1)];
      if ((x >> 40) % 3 == 0 && len + 1 < sizeof(text)) { /* insert */
        memmove(text + at + 1, text + at, len - at + 1);
        text[at] = c;
        len++;
      } else if ((x >> 40) % 3 == 1 && len > 1) { /* delete */
        memmove(text + at, text + at + 1, len - at);
        len--;
      } else {
        text[at] = c;
      }
    }
    smtpout_config *c = NULL;
    err[0] = 'X';
    int rv = smtpout_config_load_string(&c, text, "t.ini", err, sizeof(err));
    if (rv == 0) {
      smtpout_config_unref(c);
      continue;
    }
    refused++;
    assert_int_equal(rv, SMTPOUT_ERR_CONFIG);
    assert_null(c);
    if (err[0] == '\0')
      fail_msg("refused without a reason:\n%s", text);
    for (const char *l = err; *l; l = strchr(l, '\n') + 1) {
      unsigned line;
      if (sscanf(l, "t.ini:%u: ", &line) != 1 || line == 0 || line > 40)
        fail_msg("bad problem line \"%.80s\" for:\n%s", l, text);
    }
  }
  /* Most edits break something; the test would prove little otherwise. */
  assert_true(refused > 1000);
}

/* ---- reference counting and reload ---- */

static void test_config_outlives_the_host_reference(void **state)
{
  (void)state;
  /* The host loads a config; a session takes its own reference. */
  smtpout_config *old_cfg = load_ok("[queue.outbound.tls]\nstarttls = require\n");
  smtpout_config *session_ref = smtpout_config_ref(old_cfg);
  assert_ptr_equal(session_ref, old_cfg);
  assert_null(smtpout_config_ref(NULL));
  smtpout_config_unref(NULL);

  /* Reload: the host loads the new config and drops the old one. */
  smtpout_config *new_cfg = load_ok("[queue.outbound.tls]\nstarttls = disable\n");
  smtpout_config_unref(old_cfg);

  /* The session still resolves with the config it started with. */
  assert_knobs(session_ref, "x.example", SMTPOUT_STARTTLS_REQUIRE, 0,
               "t.ini:2", "default");
  assert_knobs(new_cfg, "x.example", SMTPOUT_STARTTLS_DISABLE, 0, "t.ini:2",
               "default");
  int st, allow;
  assert_int_equal(config_policy_lookup(session_ref, "x.example", "mx.example",
                                        &st, &allow),
                   0);
  assert_int_equal(st, SMTPOUT_STARTTLS_REQUIRE);
  assert_int_equal(allow, 0);

  /* A resolved policy does not depend on the config staying alive. */
  smtpout_policy *p = resolve(session_ref, "x.example", NULL);
  smtpout_config_unref(session_ref);
  assert_int_equal(smtpout_policy_starttls(p), SMTPOUT_STARTTLS_REQUIRE);
  assert_string_equal(smtpout_policy_source(p, 0), "t.ini:2");
  assert_non_null(strstr(smtpout_policy_explain(p), "[queue.outbound.tls]"));
  smtpout_policy_free(p);
  smtpout_config_unref(new_cfg);
}


/* ---- routes: [queue.outbound], [queue.outbound.dns], dane ---- */

static void test_routing_settings_and_their_defaults(void **state)
{
  (void)state;
  const struct config_routing *d = config_routing(NULL);
  assert_int_equal(d->smtp_port, 25);
  assert_int_equal(d->mx_address_limit, 5);
  assert_int_equal(d->mx_session_limit, 2);
  assert_int_equal(d->address_preference, ADDRESS_PREFERENCE_ANY);
  assert_int_equal(d->dnssec, 0); /* trust-ad */
  assert_int_equal(d->dns_timeout_ms, 10000);
  assert_null(config_dns_resolver(NULL));
  smtpout_config *c = load_ok("[queue.outbound]\n"
                              "smtp-port = 2525\n"
                              "mx-address-limit = 0\n"
                              "mx-session-limit = \"3\"\n"
                              "address-preference = ipv6\n"
                              "[queue.outbound.dns]\n"
                              "resolver = 127.0.0.1:3535, [::1]:53 192.0.2.1\n"
                              "dnssec = off\n"
                              "timeout = 2500ms\n");
  const struct config_routing *r = config_routing(c);
  assert_int_equal(r->smtp_port, 2525);
  assert_int_equal(r->mx_address_limit, 0);
  assert_int_equal(r->mx_session_limit, 3);
  assert_int_equal(r->address_preference, ADDRESS_PREFERENCE_IPV6);
  assert_int_equal(r->dnssec, 2); /* off */
  assert_int_equal(r->dns_timeout_ms, 2500);
  assert_string_equal(config_dns_resolver(c),
                      "127.0.0.1:3535, [::1]:53 192.0.2.1");
  assert_null(config_dns_trust_anchor(c));
  smtpout_config_unref(c);
  c = load_ok("[queue.outbound]\naddress-preference = ipv4\n");
  assert_int_equal(config_routing(c)->address_preference,
                   ADDRESS_PREFERENCE_IPV4);
  smtpout_config_unref(c);
}

static void test_bad_routing_values_name_their_lines(void **state)
{
  (void)state;
  expect_problems("[queue.outbound]\n"
                  "smtp-port = 0\n"
                  "mx-address-limit = -1\n"
                  "address-preference = ipv5\n"
                  "[queue.outbound.dns]\n"
                  "resolver = dns.example\n"
                  "dnssec = maybe\n"
                  "timeout = 10\n"
                  "colour = red\n"
                  "[queue.outbound.tls]\n"
                  "dane = yes\n"
                  "[queue.outbound]\n"
                  "mx-session-limit = 65536\n"
                  "smtp-port = 25\n",
                  "t.ini:2: bad value \"0\" for smtp-port (a port number, 1 "
                  "to 65535)",
                  "t.ini:3: bad value \"-1\" for mx-address-limit (a number "
                  "from 0 to 65535; 0 means no limit)",
                  "t.ini:4: bad value \"ipv5\" for address-preference "
                  "(accepted: any, ipv6, ipv4)",
                  "t.ini:6: bad value \"dns.example\" for resolver: "
                  "nameserver \"dns.example\" is not a numeric IP address",
                  "t.ini:7: bad value \"maybe\" for dnssec (accepted: "
                  "trust-ad, validate, off)",
                  "t.ini:8: bad value \"10\" for timeout: a unit is required",
                  "t.ini:9: unknown key \"colour\" in [queue.outbound.dns] "
                  "(accepted: resolver, dnssec, trust-anchor-file, timeout)",
                  "t.ini:11: bad value \"yes\" for dane (accepted: optional, "
                  "require, disable)",
                  "t.ini:13: bad value \"65536\" for mx-session-limit",
                  "t.ini:14: duplicate key smtp-port in [queue.outbound] "
                  "(first set at t.ini:2)");
  expect_problems("[queue.outbound.dns]\nresolver = 127.0.0.1:99999\n",
                  "t.ini:2: bad value \"127.0.0.1:99999\" for resolver: "
                  "nameserver \"127.0.0.1:99999\": bad port");
}

static void test_trust_anchor_file_is_checked_at_load(void **state)
{
  (void)state;
  char *dir = scratch_new();
  char *anchor = scratch_write(dir, "root.key",
                               ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65"
                               "D08458E880409BBC683457104237C7F8EC8D\n");
  char ini[2048];
  /* Only validation reads it: next to trust-ad it would mislead. */
  snprintf(ini, sizeof(ini), "[queue.outbound.dns]\ntrust-anchor-file = %s\n",
           anchor);
  expect_problems(ini, "t.ini:2: trust-anchor-file is used only with dnssec "
                       "= validate (dnssec is trust-ad here)");
#ifdef HAVE_LIBUNBOUND
  snprintf(ini, sizeof(ini), "[queue.outbound.dns]\ndnssec = validate\n"
                             "trust-anchor-file = %s\n", anchor);
  smtpout_config *c = load_ok(ini);
  assert_string_equal(config_dns_trust_anchor(c), anchor);
  assert_int_equal(config_routing(c)->dnssec, 1);
  smtpout_config_unref(c);
  snprintf(ini, sizeof(ini), "[queue.outbound.dns]\ndnssec = validate\n"
                             "trust-anchor-file = %s/missing.key\n", dir);
  expect_problems(ini, "t.ini:3: cannot read trust-anchor-file");
  snprintf(ini, sizeof(ini), "[queue.outbound.dns]\ndnssec = validate\n"
                             "trust-anchor-file = %s\n", dir);
  expect_problems(ini, "t.ini:3: trust-anchor-file");
#else
  expect_problems("[queue.outbound.dns]\ndnssec = validate\n",
                  "t.ini:2: dnssec = validate needs libunbound");
#endif
  free(anchor);
  scratch_remove(dir);
}

static void test_dane_require_with_dnssec_off_is_refused(void **state)
{
  (void)state;
  expect_problems("[queue.outbound.tls]\ndane = require\n"
                  "[queue.outbound.dns]\ndnssec = off\n",
                  "t.ini:4: dnssec = off makes DANE unavailable, but dane = "
                  "require is set at t.ini:2");
  expect_problems("[queue.outbound.dns]\ndnssec = off\n"
                  "[destination \"d\"]\ndomains = d.example\n"
                  "dane = require\n",
                  "t.ini:2: dnssec = off makes DANE unavailable, but dane = "
                  "require is set at t.ini:5");
  char *dir = scratch_new();
  char *map = scratch_write(dir, "p.map", "# DANE everywhere\n"
                                          ".example dane=require\n");
  char ini[1024];
  snprintf(ini, sizeof(ini), "[queue.outbound.dns]\ndnssec = off\n"
                             "[queue.outbound.tls]\npolicy-map = %s\n", map);
  char msg[1024];
  snprintf(msg, sizeof(msg), "t.ini:2: dnssec = off makes DANE unavailable, "
                             "but dane = require is set at %s:2", map);
  const char *want[] = {msg, NULL};
  char err[ERRBUF_SIZE];
  smtpout_config *c = NULL;
  int rv = smtpout_config_load_string(&c, ini, "t.ini", err, sizeof(err));
  check_problems(c, rv, err, want);
  /* Optional and disable are fine with dnssec = off. */
  c = load_ok("[queue.outbound.dns]\ndnssec = off\n[queue.outbound.tls]\n"
              "dane = optional\n");
  smtpout_config_unref(c);
  free(map);
  scratch_remove(dir);
}

static void test_mta_sts_knob_and_section(void **state)
{
  (void)state;
  char *dir = scratch_new();
  char *map = scratch_write(dir, "p.map", "mx:*.hosted.example mta-sts=disable\n"
                                          "bad.example mta-sts=maybe\n");
  char *ca = scratch_write(dir, "ca.pem", "not checked here\n");
  char ini[2048];
  snprintf(ini, sizeof(ini),
           "[queue.outbound.tls]\n"
           "mta-sts = require\n"                       /* 2 */
           "[destination \"d\"]\n"
           "domains = lax.example\n"
           "mta-sts = optional\n"                      /* 5 */
           "[queue.outbound.mta-sts]\n"
           "cache = %s/sts.cache\n"
           "ca-file = %s\n"
           "fetch-timeout = 20s\n"
           "max-size = 32KiB\n"
           "failure-backoff = 1m\n",
           dir, ca);
  smtpout_config *c = load_ok(ini);
  smtpout_policy *p = resolve(c, "x.example", NULL);
  assert_int_equal(smtpout_policy_mta_sts(p), SMTPOUT_MTA_STS_REQUIRE);
  assert_string_equal(smtpout_policy_source(p, SMTPOUT_KNOB_MTA_STS),
                      "t.ini:2");
  smtpout_policy_free(p);
  p = resolve(c, "lax.example", NULL);
  assert_int_equal(smtpout_policy_mta_sts(p), SMTPOUT_MTA_STS_OPTIONAL);
  assert_string_equal(smtpout_policy_rule(p, SMTPOUT_KNOB_MTA_STS), "d");
  smtpout_policy_free(p);
  assert_string_equal(smtpout_mta_sts_name(SMTPOUT_MTA_STS_DISABLE),
                      "disable");
  assert_null(smtpout_mta_sts_name(3));
  assert_int_equal(smtpout_policy_mta_sts(NULL), SMTPOUT_MTA_STS_OPTIONAL);
  smtpout_config_unref(c);

  /* Every bad value names its line and the accepted ones. */
  snprintf(ini, sizeof(ini),
           "[queue.outbound.tls]\n"
           "mta-sts = maybe\n"
           "[queue.outbound.mta-sts]\n"
           "max-size = 65KiB\n"
           "fetch-timeout = 0s\n"
           "failure-backoff = soon\n"
           "ca-file = %s/missing.pem\n"
           "cache = %s\n"
           "refresh = 1d\n"
           "[queue.outbound.tls]\n"
           "policy-map = %s\n",
           dir, dir, map);
  char want0[256], want6[256], want7[256], want10[256];
  snprintf(want0, sizeof(want0), "t.ini:2: bad value \"maybe\" for mta-sts "
           "(accepted: optional, require, disable)");
  snprintf(want6, sizeof(want6), "t.ini:7: cannot read ca-file");
  snprintf(want7, sizeof(want7), "t.ini:8: cache \"%s\" is not a regular "
           "file", dir);
  snprintf(want10, sizeof(want10), "%s:2: bad value \"maybe\" for mta-sts "
           "(accepted: optional, require, disable)", map);
  char err[4096];
  c = NULL;
  int rv = smtpout_config_load_string(&c, ini, "t.ini", err, sizeof(err));
  const char *want[] = {
    want0,
    "t.ini:4: bad value \"65KiB\" for max-size",
    "t.ini:5: bad value \"0s\" for fetch-timeout",
    "t.ini:6: bad value \"soon\" for failure-backoff",
    want6,
    want7,
    "t.ini:9: unknown key \"refresh\" in [queue.outbound.mta-sts] "
    "(accepted: cache, ca-file, fetch-timeout, max-size, failure-backoff)",
    want10,
    NULL,
  };
  check_problems(c, rv, err, want);
  free(map);
  free(ca);
  scratch_remove(dir);
}

/* [queue.outbound.tls-rpt] events: a path, relative to the file's
 * directory; a directory is refused, a file that does not exist yet is
 * fine (the first event makes it). */
static void test_tlsrpt_events_section(void **state)
{
  (void)state;
  char *dir = scratch_new();
  char ini[1024];
  snprintf(ini, sizeof(ini), "[queue.outbound.tls-rpt]\nevents = %s/ev\n",
           dir);
  smtpout_config *c = load_ok(ini);
  char want_path[512];
  snprintf(want_path, sizeof(want_path), "%s/ev", dir);
  assert_string_equal(config_tlsrpt_events(c), want_path);
  smtpout_config_unref(c);
  c = load_ok("[queue.outbound]\nsmtp-port = 25\n");
  assert_null(config_tlsrpt_events(c));
  smtpout_config_unref(c);
  assert_null(config_tlsrpt_events(NULL));

  snprintf(ini, sizeof(ini),
           "[queue.outbound.tls-rpt]\n"
           "events = %s\n"
           "organization = x\n"
           "[queue.outbound.tls-rpt]\n"
           "events = %s/ev\n",
           dir, dir);
  char want2[512];
  snprintf(want2, sizeof(want2), "t.ini:2: events \"%s\" is not a regular "
           "file", dir);
  const char *want[] = {
    want2,
    "t.ini:3: unknown key \"organization\" in [queue.outbound.tls-rpt] "
    "(accepted: events)",
    "t.ini:5: duplicate key events in [queue.outbound.tls-rpt] (first set "
    "at t.ini:2)",
    NULL,
  };
  char err[4096];
  c = NULL;
  int rv = smtpout_config_load_string(&c, ini, "t.ini", err, sizeof(err));
  check_problems(c, rv, err, want);
  scratch_remove(dir);
}

static void test_relay_sections(void **state)
{
  (void)state;
  char *dir = scratch_new();
  char *pw = scratch_write(dir, "pw", "secret\n");
  char *open_pw = scratch_write(dir, "open", "secret\n");
  char *cert = scratch_write(dir, "c.pem", "x\n");
  assert_int_equal(chmod(pw, 0600), 0);
  assert_int_equal(chmod(open_pw, 0644), 0);
  char ini[2048];
  snprintf(ini, sizeof(ini),
           "[queue.outbound]\nrelay = \"provider\"\n"
           "[relay \"provider\"]\n"
           "host = SMTP.Provider.Example.\n"
           "port = 465\n"
           "implicit-tls = true\n"
           "auth-mechanisms = SCRAM-SHA-256 PLAIN\n"
           "auth-username = app@example.com\n"
           "auth-password-file = %s\n"
           "auth-tls = any\n"
           "client-cert = %s\n"
           "client-key = %s\n"
           "starttls = require\n"
           "allow-invalid-certs = false\n"
           "dane = disable\n"
           "mta-sts = optional\n"
           "[relay \"plain\"]\nhost = [192.0.2.1]\n",
           pw, cert, pw);
  smtpout_config *c = load_ok(ini);
  assert_string_equal(smtpout_config_relay(c), "provider");
  assert_null(smtpout_config_relay(NULL));
  smtpout_config_unref(c);

  snprintf(ini, sizeof(ini),
           "[queue.outbound]\nrelay = nowhere\n"             /* 2 */
           "[relay \"a\"]\n"                                 /* 3 */
           "port = 0\n"                                      /* 4 */
           "[relay \"b\"]\n"                                 /* 5 */
           "host = bad..name\n"                              /* 6 */
           "[relay \"c\"]\n"                                 /* 7 */
           "host = c.example\n"
           "auth-username = u\n"                             /* 9 */
           "auth-password-file = %s\n"                       /* 10 */
           "starttls = disable\n"                            /* 11 */
           "client-cert = %s\n"                              /* 12 */
           "auth-tls = sometimes\n"                          /* 13 */
           "auth-mechanisms = PLAIN,bad!mech\n"              /* 14 */
           "[relay \"d\"]\n"                                 /* 15 */
           "host = d.example\n"
           "auth-password-file = %s/missing\n"               /* 17 */
           "mta-sts = require\n"                             /* 18 */
           "[relay \"e\"]\n"                                 /* 19 */
           "host = 192.0.2.7\n"
           "mta-sts = optional\n"                            /* 21 */
           "colour = blue\n"                                 /* 22 */
           "[relay \"c\"]\n"                                 /* 23 */
           "[relay c]\n",                                    /* 24 */
           open_pw, cert, dir);
  char err[4096], w10[512], w17[512];
  c = NULL;
  int rv = smtpout_config_load_string(&c, ini, "t.ini", err, sizeof(err));
  snprintf(w10, sizeof(w10), "t.ini:10: auth-password-file \"%s\" is open "
           "to group or others (mode 0644)", open_pw);
  snprintf(w17, sizeof(w17), "t.ini:17: cannot read auth-password-file");
  const char *want[] = {
    "t.ini:2: relay \"nowhere\" names no [relay \"LABEL\"] section",
    "t.ini:3: [relay \"a\"] has no host",
    "t.ini:4: bad value \"0\" for port",
    "t.ini:6: bad value \"bad..name\" for host",
    w10,
    "t.ini:11: [relay \"c\"]: starttls = disable with AUTH credentials",
    "t.ini:12: [relay \"c\"]: client-cert and client-key go together",
    "t.ini:13: bad value \"sometimes\" for auth-tls (accepted: verified, "
    "any)",
    "t.ini:14: bad mechanism \"bad!mech\" in auth-mechanisms",
    "t.ini:17: [relay \"d\"]: auth-password-file needs auth-username",
    w17,
    "t.ini:21: [relay \"e\"]: mta-sts needs a host name",
    "t.ini:22: unknown key \"colour\" in [relay \"e\"] (accepted: host, "
    "port, implicit-tls, auth-mechanisms, auth-username, "
    "auth-password-file, auth-tls, client-cert, client-key, starttls, "
    "allow-invalid-certs, dane, mta-sts)",
    "t.ini:23: duplicate section [relay \"c\"] (first at t.ini:7)",
    "t.ini:24: bad section header: write [relay \"LABEL\"]",
    NULL,
  };
  check_problems(c, rv, err, want);
  free(pw);
  free(open_pw);
  free(cert);
  scratch_remove(dir);
}

static void test_dane_knob_is_resolved_like_the_others(void **state)
{
  (void)state;
  char *dir = scratch_new();
  char *map = scratch_write(dir, "p.map", "mx:*.hosted.example dane=disable\n"
                                          "bad.example dane=maybe\n");
  char ini[1024];
  snprintf(ini, sizeof(ini), "[queue.outbound.tls]\n"
                             "dane = disable\n"
                             "policy-map = %s\n"
                             "[destination \"dane\"]\n"
                             "domains = .bank.example\n"
                             "dane = require\n", map);
  char msg[1024];
  snprintf(msg, sizeof(msg), "%s:2: bad value \"maybe\" for dane (accepted: "
                             "optional, require, disable)", map);
  const char *want[] = {msg, NULL};
  char err[ERRBUF_SIZE];
  smtpout_config *c = NULL;
  int rv = smtpout_config_load_string(&c, ini, "t.ini", err, sizeof(err));
  check_problems(c, rv, err, want);
  free(scratch_write(dir, "p.map", "mx:*.hosted.example dane=disable\n"));
  c = load_ok(ini);
  /* A destination that sets only dane is complete. */
  smtpout_policy *p = resolve(c, "a.bank.example", "mx.hosted.example");
  assert_int_equal(smtpout_policy_dane(p), SMTPOUT_DANE_REQUIRE);
  assert_string_equal(smtpout_policy_source(p, SMTPOUT_KNOB_DANE), "t.ini:6");
  assert_string_equal(smtpout_policy_rule(p, SMTPOUT_KNOB_DANE), "dane");
  assert_non_null(strstr(smtpout_policy_explain(p),
                         "dane = require\n  set by [destination \"dane\"] at "
                         "t.ini:6\n  matched: parent-domain rule, pattern "
                         "\".bank.example\"\n"));
  smtpout_policy_free(p);
  p = resolve(c, "other.example", "mx.hosted.example");
  assert_int_equal(smtpout_policy_dane(p), SMTPOUT_DANE_DISABLE);
  assert_int_equal(strncmp(smtpout_policy_rule(p, SMTPOUT_KNOB_DANE), "map:",
                           4), 0);
  smtpout_policy_free(p);
  p = resolve(c, "other.example", NULL);
  assert_int_equal(smtpout_policy_dane(p), SMTPOUT_DANE_DISABLE);
  assert_string_equal(smtpout_policy_source(p, SMTPOUT_KNOB_DANE), "t.ini:2");
  smtpout_policy_free(p);
  int dane = -1;
  assert_int_equal(config_dane_lookup(c, "x.bank.example", NULL, &dane), 0);
  assert_int_equal(dane, SMTPOUT_DANE_REQUIRE);
  assert_int_equal(config_dane_lookup(c, "bad name", NULL, &dane),
                   SMTPOUT_ERR_BAD_NAME);
  /* Several domains: the strictest dane wins. */
  const char *two[] = {"other.example", "x.bank.example"};
  assert_int_equal(smtpout_policy_resolve(&p, c, two, 2, NULL), 0);
  assert_int_equal(smtpout_policy_dane(p), SMTPOUT_DANE_REQUIRE);
  assert_non_null(strstr(smtpout_policy_explain(p),
                         "dane = require\n  strictest, from recipient domain "
                         "x.bank.example\n"));
  smtpout_policy_free(p);
  smtpout_config_unref(c);
  /* The default, and a NULL policy. */
  p = resolve(NULL, "x.example", NULL);
  assert_int_equal(smtpout_policy_dane(p), SMTPOUT_DANE_OPTIONAL);
  assert_string_equal(smtpout_policy_source(p, SMTPOUT_KNOB_DANE), "default");
  smtpout_policy_free(p);
  assert_int_equal(smtpout_policy_dane(NULL), SMTPOUT_DANE_OPTIONAL);
  free(map);
  scratch_remove(dir);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_seed_starttls_snippet_alone),
    cmocka_unit_test(test_seed_certs_snippet_alone),
    cmocka_unit_test(test_seed_snippets_together),
    cmocka_unit_test(test_quoted_and_bare_values_are_equal),
    cmocka_unit_test(test_comments_bom_and_crlf),
    cmocka_unit_test(test_new_config_has_builtin_defaults),
    cmocka_unit_test(test_timeouts_parse_units),
    cmocka_unit_test(test_timeout_line_tells_set_from_default),
    cmocka_unit_test(test_bad_timeouts_are_refused),
    cmocka_unit_test(test_hostname_is_normalised),
    cmocka_unit_test(test_ca_file_and_priority),
    cmocka_unit_test(test_domains_continuation_lines),
    cmocka_unit_test(test_errors_in_continuation_lines_name_their_line),
    cmocka_unit_test(test_destination_needs_patterns_and_a_knob),
    cmocka_unit_test(test_pattern_forms_per_list),
    cmocka_unit_test(test_unknown_section_and_key),
    cmocka_unit_test(test_bad_values_list_the_accepted_ones),
    cmocka_unit_test(test_duplicate_keys_and_sections),
    cmocka_unit_test(test_syntax_errors_are_all_reported),
    cmocka_unit_test(test_indented_section_header_is_an_error),
    cmocka_unit_test(test_keys_after_a_bad_header_are_not_misfiled),
    cmocka_unit_test(test_line_of_198_characters_is_accepted),
    cmocka_unit_test(test_over_long_line_is_refused),
    cmocka_unit_test(test_section_name_limit_is_detected),
    cmocka_unit_test(test_nul_byte_is_an_error),
    cmocka_unit_test(test_invalid_idn_in_pattern),
    cmocka_unit_test(test_pattern_claimed_by_two_sections),
    cmocka_unit_test(test_same_name_in_different_pattern_kinds_is_no_conflict),
    cmocka_unit_test(test_all_problems_are_collected),
    cmocka_unit_test(test_errbuf_is_optional_and_truncated),
    cmocka_unit_test(test_unreadable_config_file),
    cmocka_unit_test(test_sources_name_the_file_as_given),
    cmocka_unit_test(test_inih_globals_changed_by_the_host_do_not_matter),
    cmocka_unit_test(test_mutated_configs_are_refused_with_reasons),
    cmocka_unit_test(test_config_outlives_the_host_reference),
    cmocka_unit_test(test_routing_settings_and_their_defaults),
    cmocka_unit_test(test_bad_routing_values_name_their_lines),
    cmocka_unit_test(test_trust_anchor_file_is_checked_at_load),
    cmocka_unit_test(test_dane_require_with_dnssec_off_is_refused),
    cmocka_unit_test(test_dane_knob_is_resolved_like_the_others),
    cmocka_unit_test(test_mta_sts_knob_and_section),
    cmocka_unit_test(test_tlsrpt_events_section),
    cmocka_unit_test(test_relay_sections),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
