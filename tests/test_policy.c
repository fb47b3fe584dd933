/*
 * test_policy.c — the rule engine: the resolution order of
 * docs/configuration.md ("Resolution") step by step, per-knob fall-through, wildcard and suffix
 * semantics, IDNA and IP literals in rules, the policy map, several
 * recipient domains, explanations, and concurrent use.
 */
#include "config_test_util.h"

#include <pthread.h>

#include "config_int.h"
#include "config_impl_int.h"
#include "ruleset_int.h"

#define REQ SMTPOUT_STARTTLS_REQUIRE
#define OPT SMTPOUT_STARTTLS_OPTIONAL
#define DIS SMTPOUT_STARTTLS_DISABLE

struct expect {
  const char *domain, *mx;
  int starttls;
  const char *starttls_rule, *starttls_source;
  int allow;
  const char *allow_rule, *allow_source;
};

static void check(const smtpout_config *c, const struct expect *e)
{
  smtpout_policy *p = resolve(c, e->domain, e->mx);
  const char *rule0 = smtpout_policy_rule(p, SMTPOUT_KNOB_STARTTLS);
  const char *src0 = smtpout_policy_source(p, SMTPOUT_KNOB_STARTTLS);
  const char *rule1 = smtpout_policy_rule(p, SMTPOUT_KNOB_ALLOW_INVALID_CERTS);
  const char *src1 =
      smtpout_policy_source(p, SMTPOUT_KNOB_ALLOW_INVALID_CERTS);
  if (smtpout_policy_starttls(p) != e->starttls ||
      strcmp(rule0, e->starttls_rule) != 0 ||
      strcmp(src0, e->starttls_source) != 0 ||
      smtpout_policy_allow_invalid_certs(p) != e->allow ||
      strcmp(rule1, e->allow_rule) != 0 || strcmp(src1, e->allow_source) != 0)
    fail_msg("domain %s, mx %s:\n  got starttls=%s (%s, %s), allow=%d (%s, "
             "%s)\n  want starttls=%s (%s, %s), allow=%d (%s, %s)\n%s",
             e->domain ? e->domain : "-", e->mx ? e->mx : "-",
             smtpout_starttls_name(smtpout_policy_starttls(p)), rule0, src0,
             smtpout_policy_allow_invalid_certs(p), rule1, src1,
             smtpout_starttls_name(e->starttls), e->starttls_rule,
             e->starttls_source, e->allow, e->allow_rule, e->allow_source,
             smtpout_policy_explain(p));
  /* The session's hot path must agree. */
  int st, allow;
  assert_int_equal(config_policy_lookup(c, e->domain, e->mx, &st, &allow), 0);
  assert_int_equal(st, e->starttls);
  assert_int_equal(allow, e->allow);
  smtpout_policy_free(p);
}

/* Every step of the order has a rule; each probe is decided by the step
 * it is meant to reach. */
static const char order_ini[] =
    "[queue.outbound.tls]\n"                 /* 1 */
    "starttls = optional\n"                  /* 2 */
    "allow-invalid-certs = false\n"          /* 3 */
    "[destination \"mx-exact\"]\n"           /* 4 */
    "mx = mx1.provider.example\n"            /* 5 */
    "starttls = disable\n"                   /* 6 */
    "[destination \"domain-exact\"]\n"       /* 7 */
    "domains = shop.example\n"               /* 8 */
    "starttls = require\n"                   /* 9 */
    "[destination \"parent-short\"]\n"       /* 10 */
    "domains = .example\n"                   /* 11 */
    "allow-invalid-certs = true\n"           /* 12 */
    "[destination \"parent-long\"]\n"        /* 13 */
    "domains = .corp.example\n"              /* 14 */
    "starttls = require\n"                   /* 15 */
    "[destination \"mx-wildcard\"]\n"        /* 16 */
    "mx = *.provider.example\n"              /* 17 */
    "starttls = disable\n"                   /* 18 */
    "allow-invalid-certs = true\n"           /* 19 */
    "[destination \"mx-suffix\"]\n"          /* 20 */
    "mx = .net\n"                            /* 21 */
    "allow-invalid-certs = true\n";          /* 22 */

static void test_resolution_order_table(void **state)
{
  (void)state;
  smtpout_config *c = load_ok(order_ini);
  static const struct expect table[] = {
    /* 6. nothing matches, no [queue.outbound.tls]: see the next test. */
    /* 5. nothing matches: [queue.outbound.tls]. */
    {"other.test", "mx.other.test", OPT, "queue.outbound.tls", "t.ini:2", 0,
     "queue.outbound.tls", "t.ini:3"},
    /* 4. MX wildcard, for a domain without rules. */
    {"other.test", "a.provider.example", DIS, "mx-wildcard", "t.ini:18", 1,
     "mx-wildcard", "t.ini:19"},
    /* 4. MX suffix, any depth. */
    {"other.test", "a.b.c.net", OPT, "queue.outbound.tls", "t.ini:2", 1,
     "mx-suffix", "t.ini:22"},
    /* 3. a parent-domain rule beats an MX wildcard rule. */
    {"x.example", "a.provider.example", DIS, "mx-wildcard", "t.ini:18", 1,
     "parent-short", "t.ini:12"},
    /* 3. the longest parent wins (per knob). */
    {"a.corp.example", NULL, REQ, "parent-long", "t.ini:15", 1,
     "parent-short", "t.ini:12"},
    {"a.b.corp.example", NULL, REQ, "parent-long", "t.ini:15", 1,
     "parent-short", "t.ini:12"},
    /* ".corp.example" is not "corp.example" itself. */
    {"corp.example", NULL, OPT, "queue.outbound.tls", "t.ini:2", 1,
     "parent-short", "t.ini:12"},
    /* 2. the exact domain beats parent and MX wildcard rules. */
    {"shop.example", "a.provider.example", REQ, "domain-exact", "t.ini:9", 1,
     "parent-short", "t.ini:12"},
    /* 1. the exact MX beats the exact domain (a domain rule and an MX
     *    rule disagree: the MX rule wins). */
    {"shop.example", "mx1.provider.example", DIS, "mx-exact", "t.ini:6", 1,
     "parent-short", "t.ini:12"},
    /* 1. ... and the MX wildcard, which it also matches. */
    {"other.test", "mx1.provider.example", DIS, "mx-exact", "t.ini:6", 1,
     "mx-wildcard", "t.ini:19"},
    /* No domain at all: MX rules and the global section only. */
    {NULL, "mx1.provider.example", DIS, "mx-exact", "t.ini:6", 1,
     "mx-wildcard", "t.ini:19"},
    {NULL, NULL, OPT, "queue.outbound.tls", "t.ini:2", 0,
     "queue.outbound.tls", "t.ini:3"},
  };
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
    check(c, &table[i]);
  smtpout_config_unref(c);
}

static void test_builtin_default_is_the_last_step(void **state)
{
  (void)state;
  smtpout_config *c = load_ok("[destination \"x\"]\n"
                              "domains = x.example\n"
                              "starttls = require\n");
  const struct expect e[] = {
    {"y.example", "mx.y.example", OPT, "default", "default", 0, "default",
     "default"},
    {"x.example", NULL, REQ, "x", "t.ini:3", 0, "default", "default"},
  };
  check(c, &e[0]);
  check(c, &e[1]);
  check(NULL, &e[0]); /* no config at all */
  smtpout_config_unref(c);
}

static void test_a_rule_setting_one_knob_leaves_the_other(void **state)
{
  (void)state;
  /* The exact MX rule decides allow-invalid-certs only; starttls falls
   * through to the domain rule, and each reports its own source. */
  smtpout_config *c = load_ok("[queue.outbound.tls]\n"
                              "allow-invalid-certs = false\n"
                              "[destination \"mx\"]\n"
                              "mx = mx.example.net\n"
                              "allow-invalid-certs = true\n"
                              "[destination \"dom\"]\n"
                              "domains = example.com\n"
                              "starttls = require\n");
  const struct expect e[] = {
    {"example.com", "mx.example.net", REQ, "dom", "t.ini:8", 1, "mx",
     "t.ini:5"},
    {"example.com", "other.example.net", REQ, "dom", "t.ini:8", 0,
     "queue.outbound.tls", "t.ini:2"},
    {"example.org", "mx.example.net", OPT, "default", "default", 1, "mx",
     "t.ini:5"},
  };
  for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++)
    check(c, &e[i]);
  smtpout_config_unref(c);
}

static int starttls_for_mx(const smtpout_config *c, const char *mx)
{
  int st, allow;
  assert_int_equal(config_policy_lookup(c, NULL, mx, &st, &allow), 0);
  return st;
}

static int starttls_for_domain(const smtpout_config *c, const char *domain)
{
  int st, allow;
  assert_int_equal(config_policy_lookup(c, domain, NULL, &st, &allow), 0);
  return st;
}

static void test_mx_wildcard_covers_exactly_one_label(void **state)
{
  (void)state;
  smtpout_config *c = load_ok("[destination \"w\"]\n"
                              "mx = *.example.com\n"
                              "starttls = require\n");
  assert_int_equal(starttls_for_mx(c, "a.example.com"), REQ);
  assert_int_equal(starttls_for_mx(c, "MX-1.Example.COM."), REQ);
  assert_int_equal(starttls_for_mx(c, "example.com"), OPT);
  assert_int_equal(starttls_for_mx(c, "a.b.example.com"), OPT);
  assert_int_equal(starttls_for_mx(c, "aexample.com"), OPT);
  /* The wildcard matches MX hosts, never recipient domains. */
  assert_int_equal(starttls_for_domain(c, "a.example.com"), OPT);
  smtpout_config_unref(c);
}

static void test_mx_suffix_covers_any_depth_longest_first(void **state)
{
  (void)state;
  smtpout_config *c = load_ok("[destination \"suffix\"]\n"
                              "mx = .example.com\n"
                              "starttls = disable\n"
                              "[destination \"wild\"]\n"
                              "mx = *.b.example.com\n"
                              "starttls = require\n"
                              "[destination \"same-base\"]\n"
                              "mx = .b.example.com\n"
                              "starttls = optional\n"
                              "allow-invalid-certs = true\n");
  assert_int_equal(starttls_for_mx(c, "a.example.com"), DIS);
  assert_int_equal(starttls_for_mx(c, "x.y.z.example.com"), DIS);
  assert_int_equal(starttls_for_mx(c, "example.com"), OPT);
  /* For the same parent, the one-label wildcard is tried first. */
  assert_int_equal(starttls_for_mx(c, "a.b.example.com"), REQ);
  /* Deeper: only the ".b.example.com" suffix matches, and it is longer
   * than ".example.com". */
  smtpout_policy *p = resolve(c, NULL, "x.a.b.example.com");
  assert_int_equal(smtpout_policy_starttls(p), OPT);
  assert_string_equal(smtpout_policy_rule(p, 0), "same-base");
  assert_non_null(strstr(smtpout_policy_explain(p),
                         "matched: MX suffix rule, pattern \".b.example.com\""));
  smtpout_policy_free(p);
  smtpout_config_unref(c);
}

static void test_parent_domain_rule_is_not_the_domain_itself(void **state)
{
  (void)state;
  smtpout_config *c = load_ok("[destination \"p\"]\n"
                              "domains = .example.com\n"
                              "starttls = require\n");
  assert_int_equal(starttls_for_domain(c, "sub.example.com"), REQ);
  assert_int_equal(starttls_for_domain(c, "a.b.example.com"), REQ);
  assert_int_equal(starttls_for_domain(c, "example.com"), OPT);
  assert_int_equal(starttls_for_domain(c, "badexample.com"), OPT);
  /* Domain rules never match the MX host. */
  assert_int_equal(starttls_for_mx(c, "mx.example.com"), OPT);
  smtpout_config_unref(c);
}

static void test_idna_spellings_match_one_rule(void **state)
{
  (void)state;
  smtpout_config *c = load_ok("[destination \"u\"]\n"
                              "domains = bücher.example .xn--strae-oqa.example\n"
                              "mx = *.MX.Bücher.example\n"
                              "starttls = require\n");
  assert_int_equal(starttls_for_domain(c, "BÜCHER.example"), REQ);
  assert_int_equal(starttls_for_domain(c, "bücher.example."), REQ);
  assert_int_equal(starttls_for_domain(c, "xn--bcher-kva.example"), REQ);
  assert_int_equal(starttls_for_domain(c, "a.straße.example"), REQ);
  /* Non-transitional: "strasse" is another name. */
  assert_int_equal(starttls_for_domain(c, "a.strasse.example"), OPT);
  assert_int_equal(starttls_for_mx(c, "a.mx.xn--bcher-kva.example"), REQ);
  assert_int_equal(starttls_for_mx(c, "b.mx.BÜCHER.example"), REQ);
  smtpout_policy *p = resolve(c, "BÜCHER.example", NULL);
  assert_non_null(strstr(smtpout_policy_explain(p),
                         "recipient domain: BÜCHER.example (as "
                         "xn--bcher-kva.example)"));
  smtpout_policy_free(p);
  const char *two[] = {"other.example", "BÜCHER.example"};
  assert_int_equal(smtpout_policy_resolve(&p, c, two, 2, NULL), 0);
  assert_non_null(strstr(smtpout_policy_explain(p),
                         "\n  BÜCHER.example (as xn--bcher-kva.example): "
                         "starttls = require (t.ini:4)"));
  smtpout_policy_free(p);
  smtpout_config_unref(c);
}

static void test_invalid_names_are_refused_at_lookup(void **state)
{
  (void)state;
  smtpout_config *c = load_ok("");
  int st, allow;
  smtpout_policy *p = NULL;
  const char *bad = "bad..example";
  assert_int_equal(config_policy_lookup(c, bad, NULL, &st, &allow),
                   SMTPOUT_ERR_BAD_NAME);
  assert_int_equal(config_policy_lookup(c, NULL, "☃.net", &st, &allow),
                   SMTPOUT_ERR_BAD_NAME);
  assert_int_equal(smtpout_policy_resolve(&p, c, &bad, 1, NULL),
                   SMTPOUT_ERR_BAD_NAME);
  assert_int_equal(smtpout_policy_resolve(&p, c, NULL, 0, ""),
                   SMTPOUT_ERR_BAD_NAME);
  assert_null(p);
  assert_int_equal(smtpout_policy_resolve(NULL, c, NULL, 0, NULL),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_policy_resolve(&p, c, NULL, 2, NULL),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  const char *with_null[2] = {"a.example", NULL};
  assert_int_equal(smtpout_policy_resolve(&p, c, with_null, 2, NULL),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  /* Getters are NULL-safe and refuse unknown knobs. */
  assert_null(smtpout_policy_source(NULL, 0));
  p = resolve(c, NULL, NULL);
  assert_null(smtpout_policy_source(p, 4));
  assert_string_equal(smtpout_policy_source(p, SMTPOUT_KNOB_MTA_STS),
                      "default");
  assert_null(smtpout_policy_rule(p, -1));
  smtpout_policy_free(p);
  smtpout_policy_free(NULL);
  smtpout_config_unref(c);
}

static void test_ip_literals_match_exactly(void **state)
{
  (void)state;
  smtpout_config *c = load_ok("[destination \"ip\"]\n"
                              "mx = [192.0.2.1] 2001:DB8::0:1\n"
                              "domains = [IPv6:2001:db8::99]\n"
                              "starttls = disable\n");
  assert_int_equal(starttls_for_mx(c, "192.0.2.1"), DIS);
  assert_int_equal(starttls_for_mx(c, "192.0.2.1."), DIS);
  assert_int_equal(starttls_for_mx(c, "[192.0.2.1]"), DIS);
  assert_int_equal(starttls_for_mx(c, "[IPv6:2001:db8::1]"), DIS);
  assert_int_equal(starttls_for_domain(c, "[2001:db8::99]"), DIS);
  assert_int_equal(starttls_for_mx(c, "10.0.2.1"), OPT);
  smtpout_config_unref(c);
  /* An address has no parent domain, and no host name ends in a numeric
   * label: ".2.1" or "*.0.2.1" could never match anything, so they are
   * refused rather than silently ignored. */
  expect_problems("[destination \"numeric\"]\n"
                  "domains = .2.1\n"
                  "mx = *.0.2.1 .1\n"
                  "starttls = require\n",
                  "t.ini:2: invalid name in pattern \".2.1\": a numeric name",
                  "t.ini:3: invalid name in pattern \"*.0.2.1\": a numeric",
                  "t.ini:3: invalid name in pattern \".1\": a numeric name");
}

/* ---- several recipient domains ---- */

static void test_strictest_of_several_domains_applies(void **state)
{
  (void)state;
  smtpout_config *c = load_ok("[queue.outbound.tls]\n"
                              "allow-invalid-certs = true\n"
                              "[destination \"banks\"]\n"
                              "domains = bank.example\n"
                              "starttls = require\n"
                              "[destination \"legacy\"]\n"
                              "domains = legacy.example\n"
                              "starttls = disable\n"
                              "allow-invalid-certs = false\n");
  const char *domains[] = {"legacy.example", "other.example", "bank.example"};
  smtpout_policy *p = NULL;
  assert_int_equal(smtpout_policy_resolve(&p, c, domains, 3, "mx.example"), 0);
  assert_int_equal(smtpout_policy_starttls(p), REQ);
  assert_string_equal(smtpout_policy_rule(p, 0), "banks");
  assert_string_equal(smtpout_policy_source(p, 0), "t.ini:5");
  assert_int_equal(smtpout_policy_allow_invalid_certs(p), 0);
  assert_string_equal(smtpout_policy_rule(p, 1), "legacy");
  assert_string_equal(smtpout_policy_source(p, 1), "t.ini:9");
  const char *x = smtpout_policy_explain(p);
  assert_non_null(strstr(x, "3 recipient domains; the strictest value of "
                            "each knob applies:"));
  assert_non_null(strstr(x, "  legacy.example: starttls = disable (t.ini:8), "
                            "allow-invalid-certs = false (t.ini:9), "
                            "dane = optional (default), "
                            "mta-sts = optional (default)\n"));
  assert_non_null(strstr(x, "  other.example: starttls = optional (default), "
                            "allow-invalid-certs = true (t.ini:2), "
                            "dane = optional (default), "
                            "mta-sts = optional (default)\n"));
  assert_non_null(strstr(x, "starttls = require\n"
                            "  strictest, from recipient domain "
                            "bank.example\n"
                            "  set by [destination \"banks\"] at t.ini:5\n"));
  assert_non_null(strstr(x, "allow-invalid-certs = false\n"
                            "  strictest, from recipient domain "
                            "legacy.example\n"));
  smtpout_policy_free(p);

  /* Optional beats disable; when all agree, explain says so. */
  const char *two[] = {"legacy.example", "other.example"};
  assert_int_equal(smtpout_policy_resolve(&p, c, two, 2, NULL), 0);
  assert_int_equal(smtpout_policy_starttls(p), OPT);
  assert_string_equal(smtpout_policy_source(p, 0), "default");
  smtpout_policy_free(p);
  const char *same[] = {"a.bank.example", "b.bank.example"};
  assert_int_equal(smtpout_policy_resolve(&p, c, same, 2, NULL), 0);
  assert_non_null(strstr(smtpout_policy_explain(p),
                         "every recipient domain resolves to optional"));
  smtpout_policy_free(p);
  smtpout_config_unref(c);
}

static void test_explain_names_rule_line_and_pattern(void **state)
{
  (void)state;
  smtpout_config *c = load_ok(order_ini);
  smtpout_policy *p = resolve(c, "a.corp.example", "a.provider.example");
  assert_string_equal(smtpout_policy_explain(p),
                      "recipient domain: a.corp.example\n"
                      "MX host: a.provider.example\n"
                      "starttls = require\n"
                      "  set by [destination \"parent-long\"] at t.ini:15\n"
                      "  matched: parent-domain rule, pattern "
                      "\".corp.example\"\n"
                      "allow-invalid-certs = true\n"
                      "  set by [destination \"parent-short\"] at t.ini:12\n"
                      "  matched: parent-domain rule, pattern \".example\"\n"
                      "dane = optional\n"
                      "  built-in default (no rule and no [queue.outbound.tls] "
                      "setting applies)\n"
                      "mta-sts = optional\n"
                      "  built-in default (no rule and no [queue.outbound.tls] "
                      "setting applies)\n");
  smtpout_policy_free(p);
  p = resolve(c, NULL, NULL);
  assert_string_equal(smtpout_policy_explain(p),
                      "recipient domain: none given\n"
                      "MX host: none given\n"
                      "starttls = optional\n"
                      "  set by [queue.outbound.tls] at t.ini:2 (no "
                      "destination rule sets it)\n"
                      "allow-invalid-certs = false\n"
                      "  set by [queue.outbound.tls] at t.ini:3 (no "
                      "destination rule sets it)\n"
                      "dane = optional\n"
                      "  built-in default (no rule and no [queue.outbound.tls] "
                      "setting applies)\n"
                      "mta-sts = optional\n"
                      "  built-in default (no rule and no [queue.outbound.tls] "
                      "setting applies)\n");
  smtpout_policy_free(p);
  smtpout_config_unref(c);
  p = resolve(NULL, "x.example", NULL);
  assert_non_null(strstr(smtpout_policy_explain(p),
                         "starttls = optional\n  built-in default"));
  smtpout_policy_free(p);
}

/* ---- the policy map ---- */

static const char map_text[] =
    "# TLS policy map\n"                                         /* 1 */
    "\n"                                                         /* 2 */
    "bank.example        starttls=require\n"                     /* 3 */
    "  .bank.example     starttls=\"require\" allow-invalid-certs=false\n"
    "mx:*.mail.example.net  allow-invalid-certs=true  # comment\n" /* 5 */
    "mx:mx.legacy.example   starttls=disable\r\n"                /* 6 */
    "mx:.hosting.example    starttls=require\n"                  /* 7 */
    "mx:[192.0.2.25]        starttls=disable\n"                  /* 8 */
    "\tBÜCHER.example\tstarttls=require\n";                      /* 9 */

static void test_map_entries_resolve(void **state)
{
  (void)state;
  char *dir = scratch_new();
  char *map = scratch_write(dir, "policy.map", map_text);
  char *cfg = scratch_write(dir, "smtpout.ini",
                            "[queue.outbound.tls]\n"
                            "policy-map = policy.map\n"
                            "[destination \"override\"]\n"
                            "domains = shop.bank.example\n"
                            "starttls = optional\n");
  char err[ERRBUF_SIZE];
  smtpout_config *c = NULL;
  if (smtpout_config_load_file(&c, cfg, err, sizeof(err)) != 0)
    fail_msg("%s", err);
  char src[8][700], rule[8][700];
  for (int i = 3; i <= 9; i++) {
    snprintf(src[i - 3 < 8 ? i - 3 : 0], 700, "%s:%d", map, i);
    snprintf(rule[i - 3 < 8 ? i - 3 : 0], 700, "map:%s:%d", map, i);
  }
  const struct expect e[] = {
    {"bank.example", NULL, REQ, rule[0], src[0], 0, "default", "default"},
    {"a.bank.example", NULL, REQ, rule[1], src[1], 0, rule[1], src[1]},
    {"x.example", "a.mail.example.net", OPT, "default", "default", 1, rule[2],
     src[2]},
    {"x.example", "mx.legacy.example", DIS, rule[3], src[3], 0, "default",
     "default"},
    {"x.example", "a.b.hosting.example", REQ, rule[4], src[4], 0, "default",
     "default"},
    {"x.example", "[192.0.2.25]", DIS, rule[5], src[5], 0, "default",
     "default"},
    {"bücher.example", NULL, REQ, rule[6], src[6], 0, "default", "default"},
    /* A section's exact domain beats the map's parent entry. */
    {"shop.bank.example", NULL, OPT, "override", "", 0, "", ""},
  };
  char cfg5[700];
  snprintf(cfg5, sizeof(cfg5), "%s:5", cfg);
  struct expect last = e[7];
  last.starttls_source = cfg5;
  last.allow_rule = rule[1];
  last.allow_source = src[1];
  for (size_t i = 0; i < 7; i++)
    check(c, &e[i]);
  check(c, &last);
  smtpout_policy *p = resolve(c, "x.example", "a.mail.example.net");
  assert_non_null(strstr(smtpout_policy_explain(p),
                         "matched: MX wildcard rule, pattern "
                         "\"mx:*.mail.example.net\""));
  assert_non_null(strstr(smtpout_policy_explain(p),
                         "set by the policy map at"));
  smtpout_policy_free(p);
  smtpout_config_unref(c);
  free(map);
  free(cfg);
  scratch_remove(dir);
}

static void test_map_errors_name_their_lines(void **state)
{
  (void)state;
  char *dir = scratch_new();
  char *map = scratch_write(dir, "bad.map",
                            "ok.example starttls=require\n"          /* 1 */
                            "ok.example starttls=disable\n"          /* 2 */
                            "nothing.example\n"                      /* 3 */
                            "bad.example starttls=requir\n"          /* 4 */
                            "bad.example allow-invalid-certs=maybe\n" /* 5 */
                            "*.wild.example starttls=require\n"      /* 6 */
                            "two.example starttls=require starttls=disable\n"
                            "three.example tls=require\n"            /* 8 */
                            "four.example starttls = require\n"      /* 9 */
                            "bad..example starttls=require\n"        /* 10 */
                            "shared.example starttls=require\n");    /* 11 */
  char text[1024];
  snprintf(text, sizeof(text),
           "[queue.outbound.tls]\n"
           "policy-map = %s\n"
           "[destination \"s\"]\n"
           "domains = shared.example\n"
           "starttls = disable\n",
           map);
  char want[10][800];
  const char *msgs[] = {
    "2: domain pattern \"ok.example\" is already claimed by the policy map "
    "at ",
    "3: sets none of starttls, allow-invalid-certs, dane, mta-sts",
    "4: bad value \"requir\" for starttls (accepted: optional, require, "
    "disable)",
    "5: bad value \"maybe\" for allow-invalid-certs (accepted: true, false)",
    "6: invalid pattern \"*.wild.example\": \"*.\" wildcards are for MX hosts "
    "(write mx:*.example.com)",
    "7: duplicate key starttls",
    "8: unknown key \"tls\" (accepted: starttls, allow-invalid-certs, "
    "dane, mta-sts)",
    "9: expected KEY=VALUE after the pattern, got \"starttls\" (no spaces "
    "around \"=\": write starttls=require)",
    "10: invalid name in pattern \"bad..example\": empty label",
    "11: domain pattern \"shared.example\" is already claimed by "
    "[destination \"s\"] at t.ini:4",
  };
  static const char *wantp[11];
  for (int i = 0; i < 10; i++) {
    snprintf(want[i], sizeof(want[i]), "%s:%s", map, msgs[i]);
    wantp[i] = want[i];
  }
  /* The first problem names the map's first line. */
  size_t n = strlen(want[0]);
  snprintf(want[0] + n, sizeof(want[0]) - n, "%s:1\n", map);
  wantp[10] = NULL;
  char err[ERRBUF_SIZE];
  smtpout_config *c = NULL;
  int rv = smtpout_config_load_string(&c, text, "t.ini", err, sizeof(err));
  check_problems(c, rv, err, wantp);
  free(map);
  scratch_remove(dir);
}

static void test_unreadable_map_is_an_error_at_its_key(void **state)
{
  (void)state;
  expect_problems("[queue.outbound.tls]\n"
                  "starttls = require\n"
                  "policy-map = /nonexistent/policy.map\n",
                  "t.ini:3: cannot read policy-map \"/nonexistent/policy.map\""
                  ": No such file or directory");
  expect_problems("[queue.outbound.tls]\npolicy-map = /\n",
                  "t.ini:2: cannot read policy-map \"/\": Is a directory");
}

static void test_empty_map_is_fine(void **state)
{
  (void)state;
  char *dir = scratch_new();
  char *map = scratch_write(dir, "empty.map", "# nothing yet\n\n");
  char text[700];
  snprintf(text, sizeof(text), "[queue.outbound.tls]\npolicy-map = %s\n",
           map);
  smtpout_config *c = load_ok(text);
  assert_int_equal(starttls_for_domain(c, "x.example"), OPT);
  smtpout_config_unref(c);
  free(map);
  scratch_remove(dir);
}

/* What a configuration with the map `text` keeps allocated for its
 * rules. */
static size_t map_memory(const char *text)
{
  char *dir = scratch_new();
  char *map = scratch_write(dir, "policy.map", text);
  char cfg[700];
  snprintf(cfg, sizeof(cfg), "[queue.outbound.tls]\npolicy-map = %s\n", map);
  smtpout_config *c = load_ok(cfg);
  assert_int_equal(starttls_for_domain(c, "bank.example"), REQ);
  size_t bytes = ruleset_memory(c->rules);
  smtpout_config_unref(c);
  free(map);
  scratch_remove(dir);
  return bytes;
}

static void test_blank_and_comment_lines_cost_no_memory(void **state)
{
  (void)state;
  /* A million blank, whitespace and comment lines around one entry keep
   * exactly what the entry alone keeps (they once reserved a table slot,
   * a rule and key space each: 20 MB of blank lines took 1 GB). */
  static const char *const filler[] = {"\n", " \t\r\n", "# a comment\n",
                                       "   # indented\n"};
  const char entry[] = "bank.example starttls=require\n";
  size_t cap = 16 * 1000000 + sizeof(entry), len = 0;
  char *big = malloc(cap);
  assert_non_null(big);
  for (int i = 0; i < 1000000; i++) {
    const char *f = filler[i % 4];
    if (i == 500000) {
      memcpy(big + len, entry, sizeof(entry) - 1);
      len += sizeof(entry) - 1;
    }
    memcpy(big + len, f, strlen(f));
    len += strlen(f);
  }
  big[len] = '\0';
  size_t alone = map_memory(entry), padded = map_memory(big);
  free(big);
  if (padded != alone)
    fail_msg("one entry keeps %zu bytes; with a million blank and comment "
             "lines %zu", alone, padded);
}

/* ---- sharing across threads ---- */

struct worker {
  smtpout_config *config; /* the worker's own reference */
  int failures;
};

static void *worker_main(void *arg)
{
  struct worker *w = arg;
  for (int i = 0; i < 20000; i++) {
    int st, allow;
    const char *domain = i % 2 ? "a.corp.example" : "shop.example";
    if (config_policy_lookup(w->config, domain, "mx1.provider.example", &st,
                             &allow) != 0 ||
        st != DIS || allow != 1)
      w->failures++;
    if (i % 1000 == 0) {
      smtpout_policy *p = resolve(w->config, domain, NULL);
      if (smtpout_policy_starttls(p) != REQ)
        w->failures++;
      smtpout_policy_free(p);
    }
  }
  smtpout_config_unref(w->config);
  return NULL;
}

static void test_config_is_shared_by_threads(void **state)
{
  (void)state;
  smtpout_config *c = load_ok(order_ini);
  enum { N = 4 };
  pthread_t threads[N];
  struct worker workers[N];
  for (int i = 0; i < N; i++) {
    workers[i] = (struct worker){.config = smtpout_config_ref(c)};
    assert_int_equal(pthread_create(&threads[i], NULL, worker_main,
                                    &workers[i]),
                     0);
  }
  /* The host drops its reference while the workers run. */
  smtpout_config_unref(c);
  for (int i = 0; i < N; i++) {
    assert_int_equal(pthread_join(threads[i], NULL), 0);
    assert_int_equal(workers[i].failures, 0);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_resolution_order_table),
    cmocka_unit_test(test_builtin_default_is_the_last_step),
    cmocka_unit_test(test_a_rule_setting_one_knob_leaves_the_other),
    cmocka_unit_test(test_mx_wildcard_covers_exactly_one_label),
    cmocka_unit_test(test_mx_suffix_covers_any_depth_longest_first),
    cmocka_unit_test(test_parent_domain_rule_is_not_the_domain_itself),
    cmocka_unit_test(test_idna_spellings_match_one_rule),
    cmocka_unit_test(test_invalid_names_are_refused_at_lookup),
    cmocka_unit_test(test_ip_literals_match_exactly),
    cmocka_unit_test(test_strictest_of_several_domains_applies),
    cmocka_unit_test(test_explain_names_rule_line_and_pattern),
    cmocka_unit_test(test_map_entries_resolve),
    cmocka_unit_test(test_map_errors_name_their_lines),
    cmocka_unit_test(test_unreadable_map_is_an_error_at_its_key),
    cmocka_unit_test(test_empty_map_is_fine),
    cmocka_unit_test(test_blank_and_comment_lines_cost_no_memory),
    cmocka_unit_test(test_config_is_shared_by_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
