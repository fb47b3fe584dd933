/*
 * config_int.h — the library-internal view of smtpout_config.
 */
#ifndef SMTPOUT_CONFIG_INT_H
#define SMTPOUT_CONFIG_INT_H

#include <stdbool.h>

#include "smtpout/config.h"
#include "smtpout/sts.h"

struct tls_cache;
struct tls_creds;

/*
 * The dane knob for one recipient domain and MX host (either may be
 * NULL), without allocating: what a route reads per MX host.  `config`
 * may be NULL.  Returns 0 or SMTPOUT_ERR_BAD_NAME.
 */
int config_dane_lookup(const smtpout_config *config, const char *domain,
                       const char *mx_host, int *dane);
/* The same for the mta-sts knob. */
int config_mta_sts_lookup(const smtpout_config *config, const char *domain,
                          const char *mx_host, int *mta_sts);

/* [queue.outbound] address-preference: which address family a route
 * tries first at each MX host (docs/routing.md). */
enum config_address_preference {
  ADDRESS_PREFERENCE_ANY = 0, /* chosen per host from the route's seed */
  ADDRESS_PREFERENCE_IPV6 = 1,
  ADDRESS_PREFERENCE_IPV4 = 2,
};

/* What routes read from a configuration: [queue.outbound] and
 * [queue.outbound.dns] (docs/configuration.md). */
struct config_routing {
  uint16_t smtp_port;         /* smtp-port, 25 */
  uint32_t mx_address_limit;  /* addresses tried per route, 0: no limit */
  uint32_t mx_session_limit;  /* sessions past the handshake, 0: none */
  int address_preference;     /* enum config_address_preference */
  int dnssec;                 /* enum resolver_mode (resolve_int.h) */
  uint32_t dns_timeout_ms;    /* one DNS question, retries included */
};

#define CONFIG_DEFAULT_SMTP_PORT 25
#define CONFIG_DEFAULT_MX_ADDRESS_LIMIT 5 /* Postfix smtp_mx_address_limit */
#define CONFIG_DEFAULT_MX_SESSION_LIMIT 2 /* Postfix smtp_mx_session_limit */
#define CONFIG_DEFAULT_DNS_TIMEOUT_MS 10000

/* The routing settings of `config` (NULL: the built-in defaults). */
const struct config_routing *config_routing(const smtpout_config *config);

/* [queue.outbound.dns] resolver (NULL: /etc/resolv.conf) and
 * trust-anchor-file (NULL: the resolver's default), for the blocking
 * driver.  Owned by the configuration. */
const char *config_dns_resolver(const smtpout_config *config);
const char *config_dns_trust_anchor(const smtpout_config *config);

/* [queue.outbound.mta-sts] (docs/mta-sts.md): what the blocking driver
 * needs to fetch and keep policies, and what routes read. */
struct config_sts {
  const char *cache_file;      /* cache = FILE; NULL: kept in memory */
  const char *ca_file;         /* ca-file = FILE; NULL: the system store */
  uint32_t fetch_timeout_ms;   /* fetch-timeout */
  uint32_t max_size;           /* max-size, bytes (at most 64 KiB) */
  uint32_t failure_backoff_ms; /* failure-backoff: a failed fetch of one
                                  policy id is not retried before */
};

#define CONFIG_DEFAULT_STS_FETCH_TIMEOUT_MS 60000   /* mox: one minute */
#define CONFIG_DEFAULT_STS_FAILURE_BACKOFF_MS 300000 /* mox: five minutes */

/* The MTA-STS settings of `config` (NULL: the built-in defaults). */
const struct config_sts *config_sts(const smtpout_config *config);

/* [queue.outbound.tls-rpt] events: the file the blocking driver and the
 * tools append TLS-RPT event lines to, or NULL.  Owned by the
 * configuration. */
const char *config_tlsrpt_events(const smtpout_config *config);

/* auth-tls of a relay: what TLS AUTH needs (docs/relay.md). */
enum config_auth_tls {
  AUTH_TLS_VERIFIED = 0, /* a certificate that verified (or DANE) */
  AUTH_TLS_ANY = 1       /* any TLS, even with an unverified certificate */
};

/* One [relay "label"] section (docs/relay.md).  Knobs the section does
 * not set are KNOB_UNSET (ruleset.h): [queue.outbound.tls] or the
 * built-in default applies, except mta-sts, off unless set (RFC 8461
 * section 3.4). */
struct config_relay {
  const char *label;
  const char *file;            /* where the section is, for explain */
  uint32_t line;
  const char *host;            /* lower-case A-labels, or an IP address */
  bool host_is_ip;
  uint16_t port;
  bool implicit_tls;
  const char *auth_mechanisms; /* upper case, one space between; NULL */
  const char *auth_username;   /* NULL: no AUTH */
  const char *auth_password_file;
  int auth_tls;                /* enum config_auth_tls */
  const char *client_cert, *client_key;
  int starttls, allow_invalid_certs, dane, mta_sts;
  uint32_t starttls_line, allow_line, dane_line, mta_sts_line;
};

/* The relay labelled `label`, or NULL. */
const struct config_relay *config_relay_find(const smtpout_config *config,
                                             const char *label);

/*
 * Reads a relay's secret from its auth-password-file into `out` (the
 * first line, without its line end; NUL-terminated): the file is opened
 * now, checked again (a regular file, not readable or writable by group
 * or others) and never kept in memory beyond `out`.  Returns the length,
 * or SMTPOUT_ERR_IO (cannot read, not a regular file, permissions, empty),
 * SMTPOUT_ERR_INVALID_ARGUMENT (no file, or `out` too small).
 */
int config_relay_secret(const struct config_relay *relay, char *out,
                        size_t outlen);

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

/* 0 when [queue.outbound] says chunking = false: sessions send DATA even
 * where BDAT is offered (smtpout_session_set_chunking()). */
int config_chunking(const smtpout_config *config);

/*
 * The shared TLS credentials cache of a configuration (created with it,
 * freed with it).  Never NULL for a valid config; NULL for config == NULL.
 */
struct tls_cache *config_tls_cache(const smtpout_config *config);

/*
 * A new reference to the configuration's trust anchors in *out: its
 * ca-file (loaded when the configuration was), else the system store,
 * loaded by the first call and shared by every later one (a session
 * calls it when it starts).  Returns 0, SMTPOUT_ERR_TLS_SETUP or
 * SMTPOUT_ERR_NOMEM.
 */
int config_trust(const smtpout_config *config, struct tls_creds **out);

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
 * Makes (*starttls, *allow_invalid_certs) the stricter of itself and
 * (starttls2, allow_invalid_certs2), knob by knob: the one rule of "the
 * strictest policy applies" (require > optional > disable; certificates
 * required > allowed), for the resolver and for sessions alike.
 */
void policy_tighten(int *starttls, int *allow_invalid_certs, int starttls2,
                    int allow_invalid_certs2);

/*
 * smtpout_policy_resolve() as sessions enforce it (recipient.c
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

/* AUTH credentials are never sent in clear: a policy whose starttls is
 * optional becomes require, with source "auth", as the session enforces
 * it (smtpout_session_set_auth()).  Returns 0 or SMTPOUT_ERR_NOMEM. */
int policy_require_for_auth(smtpout_policy *policy);

#endif
