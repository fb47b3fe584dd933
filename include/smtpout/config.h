/*
 * smtpout — configuration and the per-destination policy engine.
 *
 * A configuration is loaded once from an INI file (or string), is immutable
 * afterwards and is shared by reference count: any number of sessions, on
 * any number of threads, may hold it.  To reload, load a new configuration
 * and hand it to new sessions; running sessions keep the one they started
 * with until they are freed.
 */
#ifndef SMTPOUT_CONFIG_H
#define SMTPOUT_CONFIG_H

#include <smtpout/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smtpout_config smtpout_config;
typedef struct smtpout_policy smtpout_policy;

/*
 * Creates a configuration holding only built-in defaults (starttls =
 * optional, allow-invalid-certs = false, RFC 5321 timeouts, the system trust
 * store).  On success stores a new reference in *pconfig and returns 0.
 * Errors: SMTPOUT_ERR_INVALID_ARGUMENT, SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_config_new(smtpout_config **pconfig);

/*
 * Loads a configuration from the INI file at `path` (see
 * docs/configuration.md).  On success stores a new reference in *pconfig and
 * returns 0; *pconfig is untouched on failure.
 *
 * On SMTPOUT_ERR_CONFIG (or SMTPOUT_ERR_IO for an unreadable file), when
 * `errbuf` is not NULL, a NUL-terminated description of every problem found
 * is written to it, one per line, each as "FILE:LINE: message" (truncated to
 * `errlen` bytes).  Other errors: SMTPOUT_ERR_INVALID_ARGUMENT,
 * SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_config_load_file(smtpout_config **pconfig,
                                            const char *path, char *errbuf,
                                            size_t errlen);

/*
 * Like smtpout_config_load_file(), from the NUL-terminated INI text `text`.
 * `name` is used in place of a file name in error messages and policy
 * sources (NULL gives "<string>").  Map files referenced by the text are
 * opened relative to the current directory (one that cannot be read is
 * a problem of the configuration, as in a file).  Returns 0, or
 * SMTPOUT_ERR_CONFIG (described in `errbuf`), SMTPOUT_ERR_INVALID_ARGUMENT
 * (NULL `pconfig` or `text`), SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_config_load_string(smtpout_config **pconfig,
                                              const char *text,
                                              const char *name, char *errbuf,
                                              size_t errlen);

/*
 * Takes one more reference to `config` and returns it.  NULL-safe.
 */
SMTPOUT_EXTERN smtpout_config *smtpout_config_ref(smtpout_config *config);

/*
 * Drops one reference; the configuration is freed with its last reference.
 * NULL-safe.
 */
SMTPOUT_EXTERN void smtpout_config_unref(smtpout_config *config);

/*
 * Returns the timeout `which` (enum smtpout_timeout) in milliseconds.
 * A NULL config gives the built-in default.  Returns 0 for an unknown
 * `which`.
 */
SMTPOUT_EXTERN uint32_t smtpout_config_timeout(const smtpout_config *config,
                                               int which);

/*
 * Returns the line of the configuration file (or string) that set timeout
 * `which` (enum smtpout_timeout), or 0 when it has its built-in default: a
 * host can then tell a timeout the operator chose from one nobody did (the
 * tools apply a default of their own to the latter).  0 also for a NULL
 * config and an unknown `which`.
 */
SMTPOUT_EXTERN uint32_t
smtpout_config_timeout_line(const smtpout_config *config, int which);

/*
 * Returns the configured HELO/EHLO name, or NULL when unset (sessions then
 * use the local host name).  The string is owned by the configuration.
 */
SMTPOUT_EXTERN const char *
smtpout_config_helo_name(const smtpout_config *config);

/*
 * Returns the configured CA file, or NULL when the system trust store is
 * used.  The string is owned by the configuration.
 */
SMTPOUT_EXTERN const char *smtpout_config_ca_file(const smtpout_config *config);

/*
 * Returns the GnuTLS priority string sessions use.  Never NULL (a NULL
 * config gives the default).  The string is owned by the configuration.
 */
SMTPOUT_EXTERN const char *
smtpout_config_tls_priority(const smtpout_config *config);

/*
 * Returns the label of the relay that [queue.outbound] relay names (every
 * message goes through it: smtpout_route_new_relay()), or NULL when mail
 * goes to the MX hosts of each recipient domain.  Owned by the
 * configuration.
 */
SMTPOUT_EXTERN const char *smtpout_config_relay(const smtpout_config *config);

/* The policy knobs, for smtpout_policy_source()/_rule(). */
enum smtpout_knob {
  SMTPOUT_KNOB_STARTTLS = 0,
  SMTPOUT_KNOB_ALLOW_INVALID_CERTS = 1,
  SMTPOUT_KNOB_DANE = 2,
  SMTPOUT_KNOB_MTA_STS = 3
};

/*
 * Resolves the policy of one delivery: the recipient domains `domains`
 * (`ndomains` of them; may be 0) reached through the MX host `mx_host`
 * (may be NULL).  When several domains are given the strictest policy of
 * any of them applies (require > optional > disable, for starttls and for
 * dane; certificates required > allowed).  `config` may be NULL (built-in
 * defaults).
 *
 * On success stores a new policy in *ppolicy (free it with
 * smtpout_policy_free()) and returns 0.  Errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT, SMTPOUT_ERR_BAD_NAME (a name is not a valid
 * domain name), SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_policy_resolve(smtpout_policy **ppolicy,
                                          const smtpout_config *config,
                                          const char *const *domains,
                                          size_t ndomains,
                                          const char *mx_host);

/* Frees a policy.  NULL-safe. */
SMTPOUT_EXTERN void smtpout_policy_free(smtpout_policy *policy);

/* Returns the resolved starttls mode (enum smtpout_starttls). */
SMTPOUT_EXTERN int smtpout_policy_starttls(const smtpout_policy *policy);

/* Returns 1 if invalid certificates are accepted, 0 if not. */
SMTPOUT_EXTERN int
smtpout_policy_allow_invalid_certs(const smtpout_policy *policy);

/* Returns the resolved dane mode (enum smtpout_dane); what it does to a
 * hop is the route's business (<smtpout/route.h>). */
SMTPOUT_EXTERN int smtpout_policy_dane(const smtpout_policy *policy);

/* Returns the resolved mta-sts mode (enum smtpout_mta_sts); what it does
 * to a hop is the route's business (docs/mta-sts.md). */
SMTPOUT_EXTERN int smtpout_policy_mta_sts(const smtpout_policy *policy);

/*
 * Returns where knob `knob` (enum smtpout_knob) was decided: "FILE:LINE" of
 * the key that set it, or "default" for the built-in default.  Owned by the
 * policy; NULL for an unknown knob.
 */
SMTPOUT_EXTERN const char *smtpout_policy_source(const smtpout_policy *policy,
                                                 int knob);

/*
 * Returns the name of the rule that decided knob `knob`: the label of a
 * [destination "label"] section, "map:FILE:LINE" for a map entry,
 * "queue.outbound.tls", or "default".  Owned by the policy.
 */
SMTPOUT_EXTERN const char *smtpout_policy_rule(const smtpout_policy *policy,
                                               int knob);

/*
 * Returns a human-readable, multi-line explanation of the resolution: the
 * normalised names, each knob with the rule and line that decided it, and
 * which domain made the policy strictest when several were given.  Owned
 * by the policy.
 */
SMTPOUT_EXTERN const char *smtpout_policy_explain(const smtpout_policy *policy);

#ifdef __cplusplus
}
#endif

#endif /* SMTPOUT_CONFIG_H */
