/*
 * smtpout — MTA-STS policies (RFC 8461).
 *
 * A parsed policy file (https://mta-sts.DOMAIN/.well-known/mta-sts.txt) and
 * the MX check of RFC 8461 section 4.1, for tools, tests and hosts that
 * fetch policies themselves.  Fetching, the `_mta-sts` TXT record and the
 * policy cache are internal (docs/mta-sts.md).
 *
 * A policy is immutable once parsed: any number of threads may read one.
 */
#ifndef SMTPOUT_STS_H
#define SMTPOUT_STS_H

#include <smtpout/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smtpout_sts_policy smtpout_sts_policy;

/* The `mode` of a policy (RFC 8461 section 5). */
enum smtpout_sts_mode {
  /* No MTA-STS: deliver as if the domain published no policy. */
  SMTPOUT_STS_MODE_NONE = 0,
  /* Deliver as without a policy; report failures through TLS-RPT. */
  SMTPOUT_STS_MODE_TESTING = 1,
  /* Deliver only to matching MX hosts over PKIX-verified TLS. */
  SMTPOUT_STS_MODE_ENFORCE = 2
};

/* The largest policy file accepted, in bytes (64 KiB, as
 * postfix-mta-sts-resolver and mox). */
#define SMTPOUT_STS_POLICY_MAX_BYTES 65536

/* The largest max_age (RFC 8461 section 3.2: 31557600 seconds, a year). */
#define SMTPOUT_STS_MAX_AGE_MAX 31557600

/*
 * Parses the policy file `text` (`len` bytes, not necessarily
 * NUL-terminated) strictly by RFC 8461 section 3.2: `key: value` lines
 * ended by LF or CRLF (no blank line, no bare CR); `version: STSv1`,
 * `mode: enforce|testing|none` and `max_age` (1 to 10 digits, at most
 * SMTPOUT_STS_MAX_AGE_MAX) once each and at least one `mx` pattern unless
 * the mode is `none`.  Keys are case-sensitive; unknown keys are ignored
 * when well-formed; of a repeated key other than `mx` the first occurrence
 * counts.  An `mx` pattern is a domain name, or `*.` and a domain name;
 * U-labels are converted to A-labels.  Over SMTPOUT_STS_POLICY_MAX_BYTES
 * is an error.
 *
 * The HTTP side (status 200, `text/plain`, certificate) is the fetcher's to
 * check: this function sees only the body.
 *
 * On success stores a new policy in *ppolicy (free it with
 * smtpout_sts_policy_free()) and returns 0.  On SMTPOUT_ERR_SYNTAX, when
 * `errbuf` is not NULL, writes a NUL-terminated English description with
 * the line number to it (truncated to `errlen` bytes).  Other errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT (NULL `ppolicy`, or NULL `text` with a
 * non-zero `len`), SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_sts_policy_parse(smtpout_sts_policy **ppolicy,
                                            const char *text, size_t len,
                                            char *errbuf, size_t errlen);

/* Frees a policy.  NULL-safe. */
SMTPOUT_EXTERN void smtpout_sts_policy_free(smtpout_sts_policy *policy);

/* Returns the policy's mode (enum smtpout_sts_mode); NONE for NULL. */
SMTPOUT_EXTERN int smtpout_sts_policy_mode(const smtpout_sts_policy *policy);

/*
 * Returns "none", "testing" or "enforce" for a mode, NULL for any other
 * value.
 */
SMTPOUT_EXTERN const char *smtpout_sts_mode_name(int mode);

/* Returns max_age in seconds; 0 for NULL. */
SMTPOUT_EXTERN uint32_t
smtpout_sts_policy_max_age(const smtpout_sts_policy *policy);

/* Returns the number of `mx` patterns; 0 for NULL. */
SMTPOUT_EXTERN size_t smtpout_sts_policy_mx_count(const smtpout_sts_policy *policy);

/*
 * Returns the `mx` pattern number `index` (from 0, in the order of the
 * file) as a lower-case A-label name without a trailing dot, prefixed by
 * "*." for a wildcard; NULL when out of range.  Owned by the policy.
 */
SMTPOUT_EXTERN const char *smtpout_sts_policy_mx(const smtpout_sts_policy *policy,
                                                 size_t index);

/*
 * Tells whether the MX host name `mx` matches one of the policy's `mx`
 * patterns (RFC 8461 section 4.1): equal names, or a `*.` pattern whose
 * suffix follows exactly one leftmost label of `mx` ("*.example.com"
 * matches "mx1.example.com", neither "example.com" nor
 * "a.b.example.com").  `mx` is compared as a lower-case A-label: case,
 * U-labels and a trailing dot do not matter.
 *
 * Returns 1 on a match, 0 otherwise (whatever the mode: what a mismatch
 * means is the mode's business), SMTPOUT_ERR_BAD_NAME when `mx` is not a
 * valid host name, SMTPOUT_ERR_INVALID_ARGUMENT for a NULL argument,
 * SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_sts_policy_mx_allowed(const smtpout_sts_policy *policy,
                                                 const char *mx);

#ifdef __cplusplus
}
#endif

#endif /* SMTPOUT_STS_H */
