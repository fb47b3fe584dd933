/*
 * config.h — the library-internal view of smtpout_config.
 */
#ifndef SMTPOUT_CONFIG_INT_H
#define SMTPOUT_CONFIG_INT_H

#include "smtpout/config.h"

struct tls_cache;

/* RFC 5321 section 4.5.3.2 (and Stalwart) defaults, milliseconds. */
extern const uint32_t config_default_timeouts[SMTPOUT_TIMEOUT_COUNT];

/* The default GnuTLS priority string: TLS 1.2 and 1.3 only, and GnuTLS's
 * groups with X25519 moved first.  X25519 is what servers prefer (it heads
 * OpenSSL's list), it costs less than P-256 in nettle, and the client sends
 * a key share for its first group only (tls_gnutls.c). */
#define CONFIG_DEFAULT_TLS_PRIORITY                                           \
  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-GROUP-ALL:+GROUP-X25519:"      \
  "+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1:+GROUP-X448:"           \
  "+GROUP-FFDHE2048:+GROUP-FFDHE3072:+GROUP-FFDHE4096:+GROUP-FFDHE6144:"      \
  "+GROUP-FFDHE8192"

/*
 * The shared TLS credentials cache of a configuration (created with it,
 * freed with it).  Never NULL for a valid config; NULL for config == NULL.
 */
struct tls_cache *config_tls_cache(const smtpout_config *config);

/*
 * Resolves the two knobs for one recipient domain (may be NULL) and MX host
 * (may be NULL), without allocating and without explaining: the hot path
 * of smtpout_session_submit().  `config` may be NULL.  Returns 0 or
 * SMTPOUT_ERR_BAD_NAME.
 */
int config_policy_lookup(const smtpout_config *config, const char *domain,
                         const char *mx_host, int *starttls,
                         int *allow_invalid_certs);

/*
 * smtpout_policy_resolve() as sessions enforce it (session.c
 * message_policy): a recipient domain that is not a valid name matches no
 * domain rule and resolves as the MX host and global settings alone,
 * instead of failing the whole resolution; the other domains still count.
 * The blocking driver reports this policy, so that what it reports is
 * what its sessions enforce.  Returns 0, SMTPOUT_ERR_BAD_NAME (the MX
 * host), SMTPOUT_ERR_INVALID_ARGUMENT or SMTPOUT_ERR_NOMEM.
 */
int policy_resolve_enforced(smtpout_policy **ppolicy,
                            const smtpout_config *config,
                            const char *const *domains, size_t ndomains,
                            const char *mx_host);

/* A policy the host fixed (smtpout_delivery_set_tls_policy()), reported
 * with source "host".  Returns 0 or SMTPOUT_ERR_NOMEM. */
int policy_fixed(smtpout_policy **ppolicy, int starttls,
                 int allow_invalid_certs);

#endif
