/*
 * policy.c — TEMPORARY development stub (issue 4 replaces it).
 */
#include <stdlib.h>

#include "config.h"

struct smtpout_policy {
  int starttls;
  int allow_invalid_certs;
};

int smtpout_policy_resolve(smtpout_policy **ppolicy,
                           const smtpout_config *config,
                           const char *const *domains, size_t ndomains,
                           const char *mx_host)
{
  if (ppolicy == NULL || (ndomains > 0 && domains == NULL))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  smtpout_policy *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return SMTPOUT_ERR_NOMEM;
  config_policy_lookup(config, ndomains ? domains[0] : NULL, mx_host,
                       &p->starttls, &p->allow_invalid_certs);
  *ppolicy = p;
  return 0;
}

void smtpout_policy_free(smtpout_policy *policy) { free(policy); }
int smtpout_policy_starttls(const smtpout_policy *p) { return p->starttls; }
int smtpout_policy_allow_invalid_certs(const smtpout_policy *p)
{
  return p->allow_invalid_certs;
}
const char *smtpout_policy_source(const smtpout_policy *p, int knob)
{
  (void)p;
  return knob == 0 || knob == 1 ? "default" : NULL;
}
const char *smtpout_policy_rule(const smtpout_policy *p, int knob)
{
  (void)p;
  return knob == 0 || knob == 1 ? "default" : NULL;
}
const char *smtpout_policy_explain(const smtpout_policy *p)
{
  (void)p;
  return "built-in defaults\n";
}
