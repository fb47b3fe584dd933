/*
 * config.c — TEMPORARY development stub: built-in defaults only.
 * Replaced by the inih-based loader (issue 4).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "tls.h"

const uint32_t config_default_timeouts[SMTPOUT_TIMEOUT_COUNT] = {
  [SMTPOUT_TIMEOUT_CONNECT] = 5 * 60 * 1000,
  [SMTPOUT_TIMEOUT_GREETING] = 5 * 60 * 1000,
  [SMTPOUT_TIMEOUT_TLS] = 3 * 60 * 1000,
  [SMTPOUT_TIMEOUT_EHLO] = 5 * 60 * 1000,
  [SMTPOUT_TIMEOUT_MAIL_FROM] = 5 * 60 * 1000,
  [SMTPOUT_TIMEOUT_RCPT_TO] = 5 * 60 * 1000,
  [SMTPOUT_TIMEOUT_DATA] = 10 * 60 * 1000,
};

struct smtpout_config {
  atomic_int refs;
  uint32_t timeouts[SMTPOUT_TIMEOUT_COUNT];
  int starttls;
  int allow_invalid_certs;
  struct tls_cache *tls_cache;
};

int smtpout_config_new(smtpout_config **pconfig)
{
  if (pconfig == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  smtpout_config *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return SMTPOUT_ERR_NOMEM;
  atomic_init(&c->refs, 1);
  memcpy(c->timeouts, config_default_timeouts, sizeof(c->timeouts));
  c->starttls = SMTPOUT_STARTTLS_OPTIONAL;
  if (tls_cache_new(&c->tls_cache) != 0) {
    free(c);
    return SMTPOUT_ERR_NOMEM;
  }
  *pconfig = c;
  return 0;
}

int smtpout_config_load_file(smtpout_config **pconfig, const char *path,
                             char *errbuf, size_t errlen)
{
  (void)pconfig; (void)path; (void)errbuf; (void)errlen;
  return SMTPOUT_ERR_CONFIG;
}

int smtpout_config_load_string(smtpout_config **pconfig, const char *text,
                               const char *name, char *errbuf, size_t errlen)
{
  (void)pconfig; (void)text; (void)name; (void)errbuf; (void)errlen;
  return SMTPOUT_ERR_CONFIG;
}

smtpout_config *smtpout_config_ref(smtpout_config *config)
{
  if (config != NULL)
    atomic_fetch_add(&config->refs, 1);
  return config;
}

void smtpout_config_unref(smtpout_config *config)
{
  if (config == NULL || atomic_fetch_sub(&config->refs, 1) != 1)
    return;
  tls_cache_free(config->tls_cache);
  free(config);
}

uint32_t smtpout_config_timeout(const smtpout_config *config, int which)
{
  if (which < 0 || which >= SMTPOUT_TIMEOUT_COUNT)
    return 0;
  return config ? config->timeouts[which] : config_default_timeouts[which];
}

const char *smtpout_config_helo_name(const smtpout_config *config)
{
  (void)config;
  return NULL;
}

const char *smtpout_config_ca_file(const smtpout_config *config)
{
  (void)config;
  return NULL;
}

const char *smtpout_config_tls_priority(const smtpout_config *config)
{
  (void)config;
  return CONFIG_DEFAULT_TLS_PRIORITY;
}

struct tls_cache *config_tls_cache(const smtpout_config *config)
{
  return config ? config->tls_cache : NULL;
}

int config_policy_lookup(const smtpout_config *config, const char *domain,
                         const char *mx_host, int *starttls,
                         int *allow_invalid_certs)
{
  (void)domain; (void)mx_host;
  *starttls = config ? config->starttls : SMTPOUT_STARTTLS_OPTIONAL;
  *allow_invalid_certs = config ? config->allow_invalid_certs : 0;
  return 0;
}
