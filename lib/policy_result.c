/*
 * policy_result.c — the smtpout_policy object: the resolved knobs of one
 * delivery (several recipient domains, one MX host), where each came
 * from, and a human-readable explanation.
 *
 * Resolution itself is policy.c's; this file runs it once per recipient
 * domain, keeps the strictest value of each knob (require > optional >
 * disable; certificates required > allowed) and copies every string it
 * reports, so that a policy outlives the configuration it came from.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf_int.h"
#include "config_impl_int.h"

#define KNOBS POLICY_KNOBS

static const char *const knob_names[KNOBS] = {"starttls",
                                              "allow-invalid-certs", "dane",
                                              "mta-sts"};

/* The line of the key that set knob `k` (0 for the default). */
static uint32_t decision_line(const smtpout_config *config,
                              const struct knob_decision *d, int k)
{
  if (d->tier == TIER_GLOBAL)
    return k == 0   ? config->starttls.line
           : k == 1 ? config->allow_invalid_certs.line
           : k == 2 ? config->dane.line
                    : config->mta_sts.line;
  if (d->tier == TIER_DEFAULT)
    return 0;
  const struct rule *r = ruleset_rule(config->rules, d->rule);
  return k == 0   ? r->starttls_line
         : k == 1 ? r->allow_line
         : k == 2 ? r->dane_line
                  : r->mta_sts_line;
}

struct smtpout_policy {
  int value[KNOBS];
  char *source[KNOBS];
  char *rule[KNOBS];
  char *explain;
};

static void addf(struct buf *b, int *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void addf(struct buf *b, int *err, const char *fmt, ...)
{
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n >= sizeof(tmp))
    n = (int)sizeof(tmp) - 1;
  if (buf_append(b, tmp, (size_t)n) != 0)
    *err = SMTPOUT_ERR_NOMEM;
}

static const char *value_name(int knob, int value)
{
  if (knob == 0)
    return smtpout_starttls_name(value);
  if (knob == 2)
    return smtpout_dane_name(value);
  if (knob == 3)
    return smtpout_mta_sts_name(value);
  return value ? "true" : "false";
}

/* Is `a` stricter than `b`?  require > optional > disable (starttls,
 * dane); certificates required (false) > allowed (true). */
static bool stricter(int knob, int a, int b)
{
  return knob == 1 ? a < b : a > b;
}

void policy_tighten(int *starttls, int *allow_invalid_certs, int starttls2,
                    int allow_invalid_certs2)
{
  if (stricter(0, starttls2, *starttls))
    *starttls = starttls2;
  if (stricter(1, allow_invalid_certs2, *allow_invalid_certs))
    *allow_invalid_certs = allow_invalid_certs2;
}

/* "FILE:LINE" or "default"; the rule's name.  Returns 0 or NOMEM. */
static int describe(const smtpout_config *config,
                    const struct knob_decision *d, int k, char **source,
                    char **rule)
{
  char src[1024], name[1024];
  unsigned line = (unsigned)decision_line(config, d, k);
  if (d->tier == TIER_DEFAULT) {
    snprintf(src, sizeof(src), "default");
    snprintf(name, sizeof(name), "default");
  } else if (d->tier == TIER_GLOBAL) {
    snprintf(src, sizeof(src), "%s:%u", config->file, line);
    snprintf(name, sizeof(name), "queue.outbound.tls");
  } else {
    const struct ruleset *rs = config->rules;
    const struct origin *o =
        ruleset_origin(rs, ruleset_rule(rs, d->rule)->origin);
    snprintf(src, sizeof(src), "%s:%u", o->file, line);
    if (o->label)
      snprintf(name, sizeof(name), "%s", o->label);
    else
      snprintf(name, sizeof(name), "map:%s:%u", o->file, line);
  }
  *source = strdup(src);
  *rule = strdup(name);
  return *source && *rule ? 0 : SMTPOUT_ERR_NOMEM;
}

static const char *tier_name(const smtpout_config *config,
                             const struct knob_decision *d)
{
  switch (d->tier) {
  case TIER_MX_EXACT: return "exact MX host rule";
  case TIER_DOMAIN_EXACT: return "exact recipient-domain rule";
  case TIER_DOMAIN_PARENT: return "parent-domain rule";
  case TIER_MX_WILDCARD:
    return ruleset_key_kind(config->rules, d->key) == PAT_MX_WILDCARD
               ? "MX wildcard rule"
               : "MX suffix rule";
  default: return "";
  }
}

/* The lines explaining one knob's decision. */
static void explain_decision(struct buf *b, int *err,
                             const smtpout_config *config,
                             const struct knob_decision *d,
                             const char *source)
{
  if (d->tier == TIER_DEFAULT) {
    addf(b, err, "  built-in default (no rule and no [queue.outbound.tls] "
                 "setting applies)\n");
    return;
  }
  if (d->tier == TIER_GLOBAL) {
    addf(b, err, "  set by [queue.outbound.tls] at %s (no destination rule "
                 "sets it)\n", source);
    return;
  }
  const struct ruleset *rs = config->rules;
  const struct origin *o =
      ruleset_origin(rs, ruleset_rule(rs, d->rule)->origin);
  char pat[NAME_MAX_LEN + 8];
  pattern_format(pat, sizeof(pat), ruleset_key_kind(rs, d->key),
                 ruleset_key_name(rs, d->key), o->label == NULL);
  if (o->label)
    addf(b, err, "  set by [destination \"%s\"] at %s\n", o->label, source);
  else
    addf(b, err, "  set by the policy map at %s\n", source);
  addf(b, err, "  matched: %s, pattern \"%s\"\n", tier_name(config, d), pat);
}

struct resolved_domain {
  const char *given;
  char name[NAME_MAX_LEN]; /* "": not a valid name (policy_resolve_enforced) */
  bool ip;
  struct knob_decision d[KNOBS];
};

/* The name a domain is reported by: its normal form, or as given when it
 * has none. */
static const char *shown(const struct resolved_domain *rd)
{
  return rd->name[0] ? rd->name : rd->given;
}

static void explain_name(struct buf *b, int *err, const char *what,
                         const char *given, const char *name)
{
  if (name[0] == '\0')
    addf(b, err, "%s: %s (not a valid name: no domain rule can match it)\n",
         what, given);
  else if (strcmp(given, name) == 0)
    addf(b, err, "%s: %s\n", what, name);
  else
    addf(b, err, "%s: %s (as %s)\n", what, given, name);
}

static int build_explain(smtpout_policy *p, const smtpout_config *config,
                         const struct resolved_domain *rd, size_t n,
                         const char *mx_given, const char *mx,
                         const size_t winner[KNOBS])
{
  struct buf b = {0};
  int err = 0;
  if (n == 0)
    addf(&b, &err, "recipient domain: none given\n");
  else if (n == 1)
    explain_name(&b, &err, "recipient domain", rd[0].given, rd[0].name);
  if (mx)
    explain_name(&b, &err, "MX host", mx_given, mx);
  else
    addf(&b, &err, "MX host: none given\n");
  if (n > 1) {
    addf(&b, &err, "%zu recipient domains; the strictest value of each "
                   "knob applies:\n", n);
    for (size_t i = 0; i < n; i++) {
      char *src[KNOBS] = {0}, *rule[KNOBS] = {0};
      for (int k = 0; k < KNOBS && !err; k++)
        err = describe(config, &rd[i].d[k], k, &src[k], &rule[k]);
      bool same = strcmp(rd[i].given, rd[i].name) == 0;
      bool bad = rd[i].name[0] == '\0';
      if (!err)
        addf(&b, &err, "  %s%s%s%s: starttls = %s (%s), "
                       "allow-invalid-certs = %s (%s), dane = %s (%s), "
                       "mta-sts = %s (%s)\n",
             rd[i].given, same ? "" : bad ? " (not a valid name" : " (as ",
             same || bad ? "" : rd[i].name, same ? "" : ")",
             value_name(0, rd[i].d[0].value), src[0],
             value_name(1, rd[i].d[1].value), src[1],
             value_name(2, rd[i].d[2].value), src[2],
             value_name(3, rd[i].d[3].value), src[3]);
      for (int k = 0; k < KNOBS; k++) {
        free(src[k]);
        free(rule[k]);
      }
    }
  }
  for (int k = 0; k < KNOBS; k++) {
    const struct knob_decision *d = &rd[winner[k]].d[k];
    addf(&b, &err, "%s = %s\n", knob_names[k], value_name(k, p->value[k]));
    if (n > 1) {
      bool all_same = true;
      for (size_t i = 0; i < n; i++)
        all_same = all_same && rd[i].d[k].value == p->value[k];
      if (all_same)
        addf(&b, &err, "  every recipient domain resolves to %s; shown for "
                       "%s\n", value_name(k, p->value[k]),
             shown(&rd[winner[k]]));
      else
        addf(&b, &err, "  strictest, from recipient domain %s\n",
             shown(&rd[winner[k]]));
    }
    explain_decision(&b, &err, config, d, p->source[k]);
  }
  if (!err && buf_append(&b, "", 1) != 0)
    err = SMTPOUT_ERR_NOMEM;
  if (err) {
    buf_free(&b);
    return err;
  }
  p->explain = (char *)b.data; /* start is 0: nothing was consumed */
  return 0;
}

void smtpout_policy_free(smtpout_policy *policy)
{
  if (policy == NULL)
    return;
  for (int k = 0; k < KNOBS; k++) {
    free(policy->source[k]);
    free(policy->rule[k]);
  }
  free(policy->explain);
  free(policy);
}

/* smtpout_policy_resolve(); with `enforced`, a domain that is not a
 * valid name resolves without a domain (see config_int.h). */
static int resolve(smtpout_policy **ppolicy, const smtpout_config *config,
                   const char *const *domains, size_t ndomains,
                   const char *mx_host, bool enforced)
{
  if (ppolicy == NULL || (ndomains > 0 && domains == NULL))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < ndomains; i++) {
    if (domains[i] == NULL)
      return SMTPOUT_ERR_INVALID_ARGUMENT;
  }
  if (ndomains > SIZE_MAX / sizeof(struct resolved_domain) - 1)
    return SMTPOUT_ERR_INVALID_ARGUMENT;

  char mx[NAME_MAX_LEN];
  bool mx_ip = false;
  int rv;
  if (mx_host && (rv = policy_normalize(mx_host, mx, &mx_ip, NULL)) != 0)
    return rv;

  /* With no domain, the MX alone is resolved (one empty entry). */
  size_t n = ndomains ? ndomains : 1;
  struct resolved_domain *rd = calloc(n, sizeof(*rd));
  smtpout_policy *p = calloc(1, sizeof(*p));
  if (rd == NULL || p == NULL) {
    rv = SMTPOUT_ERR_NOMEM;
    goto fail;
  }
  size_t winner[KNOBS] = {0};
  for (size_t i = 0; i < n; i++) {
    const char *name = NULL;
    if (ndomains) {
      rd[i].given = domains[i];
      rv = policy_normalize(domains[i], rd[i].name, &rd[i].ip, NULL);
      if (rv == SMTPOUT_ERR_BAD_NAME && enforced) {
        rd[i].name[0] = '\0';
        rd[i].ip = false;
      } else if (rv != 0) {
        goto fail;
      } else {
        name = rd[i].name;
      }
    }
    policy_decide(config, name, rd[i].ip, mx_host ? mx : NULL, mx_ip,
                  rd[i].d);
    for (int k = 0; k < KNOBS; k++) {
      if (stricter(k, rd[i].d[k].value, rd[winner[k]].d[k].value))
        winner[k] = i;
    }
  }
  for (int k = 0; k < KNOBS; k++) {
    const struct knob_decision *d = &rd[winner[k]].d[k];
    p->value[k] = d->value;
    if ((rv = describe(config, d, k, &p->source[k], &p->rule[k])) != 0)
      goto fail;
  }
  rv = build_explain(p, config, rd, ndomains, mx_host, mx_host ? mx : NULL,
                     winner);
  if (rv != 0)
    goto fail;
  free(rd);
  *ppolicy = p;
  return 0;

fail:
  free(rd);
  smtpout_policy_free(p);
  return rv;
}

int smtpout_policy_resolve(smtpout_policy **ppolicy,
                           const smtpout_config *config,
                           const char *const *domains, size_t ndomains,
                           const char *mx_host)
{
  return resolve(ppolicy, config, domains, ndomains, mx_host, false);
}

int policy_resolve_enforced(smtpout_policy **ppolicy,
                            const smtpout_config *config,
                            const char *const *domains, size_t ndomains,
                            const char *mx_host)
{
  return resolve(ppolicy, config, domains, ndomains, mx_host, true);
}

int policy_fixed(smtpout_policy **ppolicy, int starttls,
                 int allow_invalid_certs)
{
  static const char what[] = "smtpout_delivery_set_tls_policy";
  smtpout_policy *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return SMTPOUT_ERR_NOMEM;
  p->value[0] = starttls;
  p->value[1] = allow_invalid_certs;
  /* The host fixes the two STARTTLS knobs only; DANE keeps its built-in
   * default, which a fixed policy never consults the rules to change. */
  p->value[2] = SMTPOUT_DANE_OPTIONAL;
  p->value[3] = SMTPOUT_MTA_STS_OPTIONAL;
  struct buf b = {0};
  int err = 0;
  for (int k = 0; k < KNOBS && !err; k++) {
    int fixed = k < 2;
    p->source[k] = strdup(fixed ? "host" : "default");
    p->rule[k] = strdup(fixed ? what : "default");
    if (p->source[k] == NULL || p->rule[k] == NULL)
      err = SMTPOUT_ERR_NOMEM;
    if (fixed)
      addf(&b, &err, "%s = %s\n  fixed by the host (%s); no rule was "
                     "consulted\n",
           knob_names[k], value_name(k, p->value[k]), what);
    else
      addf(&b, &err, "%s = %s\n  built-in default (the host fixed the "
                     "TLS policy; no rule was consulted)\n",
           knob_names[k], value_name(k, p->value[k]));
  }
  if (!err && buf_append(&b, "", 1) != 0)
    err = SMTPOUT_ERR_NOMEM;
  if (err) {
    buf_free(&b);
    smtpout_policy_free(p);
    return err;
  }
  p->explain = (char *)b.data;
  *ppolicy = p;
  return 0;
}

int policy_require_for_auth(smtpout_policy *p)
{
  if (p->value[0] != SMTPOUT_STARTTLS_OPTIONAL)
    return 0;
  static const char why[] =
      "starttls = require\n  AUTH credentials are never sent in clear: "
      "they make optional require\n";
  char *source = strdup("auth");
  char *rule = strdup("smtpout_delivery_set_auth");
  size_t n = strlen(p->explain);
  char *explain = malloc(n + sizeof(why));
  if (source == NULL || rule == NULL || explain == NULL) {
    free(source);
    free(rule);
    free(explain);
    return SMTPOUT_ERR_NOMEM;
  }
  memcpy(explain, p->explain, n);
  memcpy(explain + n, why, sizeof(why));
  free(p->source[0]);
  free(p->rule[0]);
  free(p->explain);
  p->value[0] = SMTPOUT_STARTTLS_REQUIRE;
  p->source[0] = source;
  p->rule[0] = rule;
  p->explain = explain;
  return 0;
}

int smtpout_policy_starttls(const smtpout_policy *policy)
{
  return policy ? policy->value[0] : SMTPOUT_STARTTLS_OPTIONAL;
}

int smtpout_policy_allow_invalid_certs(const smtpout_policy *policy)
{
  return policy ? policy->value[1] : 0;
}

int smtpout_policy_mta_sts(const smtpout_policy *policy)
{
  return policy ? policy->value[3] : SMTPOUT_MTA_STS_OPTIONAL;
}

int smtpout_policy_dane(const smtpout_policy *policy)
{
  return policy ? policy->value[2] : SMTPOUT_DANE_OPTIONAL;
}

const char *smtpout_policy_source(const smtpout_policy *policy, int knob)
{
  if (policy == NULL || knob < 0 || knob >= KNOBS)
    return NULL;
  return policy->source[knob];
}

const char *smtpout_policy_rule(const smtpout_policy *policy, int knob)
{
  if (policy == NULL || knob < 0 || knob >= KNOBS)
    return NULL;
  return policy->rule[knob];
}

const char *smtpout_policy_explain(const smtpout_policy *policy)
{
  return policy ? policy->explain : NULL;
}
