/*
 * policy.c — resolving the TLS policy of a destination.
 *
 * Per knob, the first step of this order that sets it wins (DESIGN
 * section 4):
 *
 *   1. a rule for the exact MX host           mx = mx1.example.net
 *   2. a rule for the exact recipient domain  domains = example.com
 *   3. the longest parent-domain rule         domains = .example.com
 *   4. the longest MX wildcard/suffix rule    mx = *.example.net, .net
 *   5. [queue.outbound.tls]
 *   6. the built-in default (optional, false)
 *
 * A rule that sets only one knob leaves the other to the next steps.
 * Each step is one hash probe per candidate name (steps 3 and 4 probe each
 * suffix once), so a resolution costs O(labels), never a scan of the
 * rules.  When a session carries several recipient domains, each one is
 * resolved and the strictest value of each knob applies.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config_impl.h"

#define KNOBS 2

static const char *const knob_names[KNOBS] = {"starttls",
                                              "allow-invalid-certs"};

/* A pattern that could decide a knob, in resolution order. */
struct candidate {
  uint8_t tier, kind;
  const char *name;
  size_t len;
  uint32_t hash;
};

/* Exact MX, exact domain, up to 127 parents, 1 wildcard, 127 suffixes. */
#define MAX_CANDIDATES 260

struct candidates {
  const struct ruleset *rs;
  struct candidate c[MAX_CANDIDATES];
  size_t n;
};

static unsigned count_labels(const char *name)
{
  unsigned n = 1;
  for (; *name; name++)
    n += *name == '.';
  return n;
}

/* Adds a candidate if a pattern of its kind and size can exist, and
 * starts fetching its slot. */
static void add_candidate(struct candidates *cs, int tier, int kind,
                          const char *name, unsigned labels)
{
  if (cs->n == MAX_CANDIDATES || !ruleset_may_have(cs->rs, kind, labels))
    return;
  struct candidate *c = &cs->c[cs->n++];
  c->tier = (uint8_t)tier;
  c->kind = (uint8_t)kind;
  c->name = name;
  c->len = strlen(name);
  c->hash = ruleset_hash(kind, name, c->len);
  ruleset_prefetch(cs->rs, c->hash);
}

/* Lists the patterns that could match, in the order of the file comment.
 * IP literals have neither parents nor wildcards. */
static void list_candidates(struct candidates *cs, const char *domain,
                            bool domain_ip, const char *mx, bool mx_ip)
{
  unsigned dl = domain ? count_labels(domain) : 0;
  unsigned ml = mx ? count_labels(mx) : 0;
  if (mx)
    add_candidate(cs, TIER_MX_EXACT, PAT_MX, mx, ml);
  if (domain)
    add_candidate(cs, TIER_DOMAIN_EXACT, PAT_DOMAIN, domain, dl);
  if (domain && !domain_ip) {
    unsigned labels = dl;
    for (const char *s = strchr(domain, '.'); s; s = strchr(s + 1, '.'))
      add_candidate(cs, TIER_DOMAIN_PARENT, PAT_DOMAIN_PARENT, s + 1,
                    --labels);
  }
  if (mx && !mx_ip) {
    /* Longest first; for the same parent, "*.x" (one label) is more
     * specific than ".x" (any depth) and comes first. */
    unsigned labels = ml;
    const char *s = strchr(mx, '.');
    if (s)
      add_candidate(cs, TIER_MX_WILDCARD, PAT_MX_WILDCARD, s + 1, ml - 1);
    for (; s; s = strchr(s + 1, '.'))
      add_candidate(cs, TIER_MX_WILDCARD, PAT_MX_SUFFIX, s + 1, --labels);
  }
}

void policy_decide(const smtpout_config *config, const char *domain,
                   bool domain_ip, const char *mx, bool mx_ip,
                   struct knob_decision d[2])
{
  for (int k = 0; k < KNOBS; k++)
    d[k] = (struct knob_decision){.tier = TIER_DEFAULT, .rule = RULE_NONE};
  int pending = KNOBS;

  if (config != NULL && config->rules != NULL) {
    struct candidates cs; /* not zeroed: 8 KiB per lookup otherwise */
    cs.rs = config->rules;
    cs.n = 0;
    list_candidates(&cs, domain, domain_ip, mx, mx_ip);
    for (size_t i = 0; i < cs.n; i++)
      ruleset_prefetch_key(cs.rs, cs.c[i].hash);
    for (size_t i = 0; i < cs.n && pending > 0; i++) {
      const struct candidate *c = &cs.c[i];
      struct rule_match m;
      if (!ruleset_find(cs.rs, c->kind, c->name, c->len, c->hash, &m))
        continue;
      const int values[KNOBS] = {m.starttls, m.allow_invalid_certs};
      for (int k = 0; k < KNOBS; k++) {
        if (d[k].tier != TIER_DEFAULT || values[k] == KNOB_UNSET)
          continue;
        d[k] = (struct knob_decision){.value = values[k], .tier = c->tier,
                                      .rule = m.rule, .key = m.key};
        pending--;
      }
    }
  }

  if (config != NULL) {
    const struct global_knob *g[KNOBS] = {&config->starttls,
                                          &config->allow_invalid_certs};
    for (int k = 0; k < KNOBS; k++) {
      if (d[k].tier == TIER_DEFAULT && g[k]->value != KNOB_UNSET)
        d[k] = (struct knob_decision){.value = g[k]->value,
                                      .tier = TIER_GLOBAL,
                                      .rule = RULE_NONE};
    }
  }
  if (d[0].tier == TIER_DEFAULT)
    d[0].value = SMTPOUT_STARTTLS_OPTIONAL;
  if (d[1].tier == TIER_DEFAULT)
    d[1].value = 0;
}

/* The line of the key that set knob `k` (0 for the default). */
static uint32_t decision_line(const smtpout_config *config,
                              const struct knob_decision *d, int k)
{
  if (d->tier == TIER_GLOBAL)
    return k == 0 ? config->starttls.line : config->allow_invalid_certs.line;
  if (d->tier == TIER_DEFAULT)
    return 0;
  const struct rule *r = ruleset_rule(config->rules, d->rule);
  return k == 0 ? r->starttls_line : r->allow_line;
}

int policy_normalize(const char *in, char out[NAME_MAX_LEN], bool *is_ip,
                     const char **why)
{
  *is_ip = name_ip_literal(in, out, NAME_MAX_LEN) != 0;
  if (*is_ip)
    return 0;
  return name_normalize_why(in, out, NAME_MAX_LEN, why);
}

int config_policy_lookup(const smtpout_config *config, const char *domain,
                         const char *mx_host, int *starttls,
                         int *allow_invalid_certs)
{
  char dn[NAME_MAX_LEN], mn[NAME_MAX_LEN];
  bool dip = false, mip = false;
  int rv;
  if (domain && (rv = policy_normalize(domain, dn, &dip, NULL)) != 0)
    return rv;
  if (mx_host && (rv = policy_normalize(mx_host, mn, &mip, NULL)) != 0)
    return rv;
  struct knob_decision d[KNOBS];
  policy_decide(config, domain ? dn : NULL, dip, mx_host ? mn : NULL, mip, d);
  *starttls = d[0].value;
  *allow_invalid_certs = d[1].value;
  return 0;
}

/* ---- the policy object: values, sources, explanation ---- */

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
  return knob == 0 ? smtpout_starttls_name(value)
                   : value ? "true" : "false";
}

/* Is `a` stricter than `b`?  require > optional > disable; certificates
 * required (false) > allowed (true). */
static bool stricter(int knob, int a, int b)
{
  return knob == 0 ? a > b : a < b;
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
  char name[NAME_MAX_LEN];
  bool ip;
  struct knob_decision d[KNOBS];
};

static void explain_name(struct buf *b, int *err, const char *what,
                         const char *given, const char *name)
{
  if (strcmp(given, name) == 0)
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
      if (!err)
        addf(&b, &err, "  %s%s%s%s: starttls = %s (%s), "
                       "allow-invalid-certs = %s (%s)\n",
             rd[i].given, same ? "" : " (as ", same ? "" : rd[i].name,
             same ? "" : ")", value_name(0, rd[i].d[0].value), src[0],
             value_name(1, rd[i].d[1].value), src[1]);
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
             rd[winner[k]].name);
      else
        addf(&b, &err, "  strictest, from recipient domain %s\n",
             rd[winner[k]].name);
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

int smtpout_policy_resolve(smtpout_policy **ppolicy,
                           const smtpout_config *config,
                           const char *const *domains, size_t ndomains,
                           const char *mx_host)
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
  size_t winner[KNOBS] = {0, 0};
  for (size_t i = 0; i < n; i++) {
    const char *name = NULL;
    if (ndomains) {
      rd[i].given = domains[i];
      rv = policy_normalize(domains[i], rd[i].name, &rd[i].ip, NULL);
      if (rv != 0)
        goto fail;
      name = rd[i].name;
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

int smtpout_policy_starttls(const smtpout_policy *policy)
{
  return policy ? policy->value[0] : SMTPOUT_STARTTLS_OPTIONAL;
}

int smtpout_policy_allow_invalid_certs(const smtpout_policy *policy)
{
  return policy ? policy->value[1] : 0;
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
