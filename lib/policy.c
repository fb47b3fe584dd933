/*
 * policy.c — resolving the TLS policy of a destination.
 *
 * Per knob, the first step of this order that sets it wins
 * (docs/configuration.md, "Resolution"):
 *
 *   1. a rule for the exact MX host           mx = mx1.example.net
 *   2. a rule for the exact recipient domain  domains = example.com
 *   3. the longest parent-domain rule         domains = .example.com
 *   4. the longest MX wildcard/suffix rule    mx = *.example.net, .net
 *   5. [queue.outbound.tls]
 *   6. the built-in default (starttls optional, allow-invalid-certs
 *      false, dane optional)
 *
 * A rule that sets only one knob leaves the other to the next steps.
 * Each step is one hash probe per candidate name (steps 3 and 4 probe each
 * suffix once), so a resolution costs O(labels), never a scan of the
 * rules.  (Several recipient domains, sources and explanations:
 * policy_result.c.)
 */
#include <string.h>

#include "config_impl_int.h"

#define KNOBS POLICY_KNOBS

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
                   struct knob_decision d[KNOBS])
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
      const int values[KNOBS] = {m.starttls, m.allow_invalid_certs, m.dane,
                                   m.mta_sts};
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
    const struct global_knob *g[KNOBS] = {
        &config->starttls, &config->allow_invalid_certs, &config->dane,
        &config->mta_sts};
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
  if (d[2].tier == TIER_DEFAULT)
    d[2].value = SMTPOUT_DANE_OPTIONAL;
  if (d[3].tier == TIER_DEFAULT)
    d[3].value = SMTPOUT_MTA_STS_OPTIONAL;
}

int policy_normalize(const char *in, char out[NAME_MAX_LEN], bool *is_ip,
                     const char **why)
{
  *is_ip = name_ip_literal(in, out, NAME_MAX_LEN) != 0;
  if (*is_ip)
    return 0;
  return name_normalize_why(in, out, NAME_MAX_LEN, why);
}

/* Normalises the names and resolves every knob; 0 or BAD_NAME. */
static int lookup(const smtpout_config *config, const char *domain,
                  const char *mx_host, struct knob_decision d[KNOBS])
{
  char dn[NAME_MAX_LEN], mn[NAME_MAX_LEN];
  bool dip = false, mip = false;
  int rv;
  if (domain && (rv = policy_normalize(domain, dn, &dip, NULL)) != 0)
    return rv;
  if (mx_host && (rv = policy_normalize(mx_host, mn, &mip, NULL)) != 0)
    return rv;
  policy_decide(config, domain ? dn : NULL, dip, mx_host ? mn : NULL, mip, d);
  return 0;
}

int config_dane_lookup(const smtpout_config *config, const char *domain,
                       const char *mx_host, int *dane)
{
  struct knob_decision d[KNOBS];
  int rv = lookup(config, domain, mx_host, d);
  if (rv == 0)
    *dane = d[SMTPOUT_KNOB_DANE].value;
  return rv;
}

int config_mta_sts_lookup(const smtpout_config *config, const char *domain,
                          const char *mx_host, int *mta_sts)
{
  struct knob_decision d[KNOBS];
  int rv = lookup(config, domain, mx_host, d);
  if (rv == 0)
    *mta_sts = d[SMTPOUT_KNOB_MTA_STS].value;
  return rv;
}

int config_policy_lookup(const smtpout_config *config, const char *domain,
                         const char *mx_host, int *starttls,
                         int *allow_invalid_certs)
{
  struct knob_decision d[KNOBS];
  int rv = lookup(config, domain, mx_host, d);
  if (rv != 0)
    return rv;
  *starttls = d[0].value;
  *allow_invalid_certs = d[1].value;
  return 0;
}
