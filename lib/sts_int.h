/*
 * sts_int.h — MTA-STS (RFC 8461) beyond the public policy parser: the
 * `_mta-sts` TXT record, the checks on the HTTPS answer, the cache entry
 * the host stores, and policy discovery as a state machine over them.
 *
 * Nothing here does I/O or reads a clock.  The host (later: the route)
 * looks up the TXT record, reads and writes the cache entry in its own
 * store, fetches the policy over HTTPS and passes wall-clock time in
 * milliseconds since the Unix epoch; cache entries outlive processes, so a
 * monotonic clock cannot age them.
 */
#ifndef SMTPOUT_STS_INT_H
#define SMTPOUT_STS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf_int.h"
#include "names_int.h"
#include "smtpout/sts.h"

/* RFC 8461 section 3.1: 1 to 32 alphanumerics. */
#define STS_ID_MAX 32

/* ------------------------------------------------------------------ */
/* The `_mta-sts` TXT record (RFC 8461 section 3.1)                     */

/*
 * Parses one TXT record (its character-strings concatenated without
 * separators, as section 3.1 says):
 *
 *   v=STSv1 *WSP ";" *WSP id=<1-32 alnum> [ *WSP ";" *WSP ext ]... [";"]
 *
 * `v=STSv1` first, case-sensitive; `id` exactly once; extensions
 * `name=value` (name: alnum then up to 31 of alnum "_-."; value: printable
 * ASCII without "=", ";" or space).  Returns 0 with the id in `id`, or
 * SMTPOUT_ERR_SYNTAX with *why (a static phrase).
 */
int sts_txt_parse(const char *txt, size_t len, char id[STS_ID_MAX + 1],
                  const char **why);

/* The outcome of looking at every TXT record of `_mta-sts.DOMAIN`. */
enum sts_txt_status {
  /* Exactly one STS record, valid: the id is known. */
  STS_TXT_FOUND = 0,
  /* No record, or none that starts with "v=STSv1" (NXDOMAIN, NODATA). */
  STS_TXT_ABSENT = 1,
  /* More than one STS record, or a malformed one: RFC 8461 section 3.1
   * says the domain then has no available policy. */
  STS_TXT_UNUSABLE = 2,
  /* The lookup failed (SERVFAIL, timeout): nothing is known. */
  STS_TXT_LOOKUP_FAILED = 3
};

/*
 * Applies section 3.1 to the `n` records of the answer (`records[i]` of
 * `lens[i]` bytes, strings already concatenated): records that do not
 * begin with "v=STSv1" and a ";" are discarded; exactly one must remain
 * and parse.  Returns STS_TXT_FOUND (id filled), STS_TXT_ABSENT or
 * STS_TXT_UNUSABLE (*why says why).
 */
int sts_txt_select(const char *const *records, const size_t *lens, size_t n,
                   char id[STS_ID_MAX + 1], const char **why);

/* ------------------------------------------------------------------ */
/* The HTTPS answer (RFC 8461 section 3.3)                              */

/* How the fetch went at the transport level (the host's HTTP stack says). */
enum sts_fetch_outcome {
  STS_FETCH_OK = 0,               /* an HTTP response arrived */
  STS_FETCH_CONNECT_FAILED = 1,   /* no connection to the policy host */
  STS_FETCH_TLS_NOT_VERIFIED = 2, /* its certificate failed PKIX */
  STS_FETCH_TIMEOUT = 3,
  STS_FETCH_TOO_LARGE = 4,        /* the body went past the cap */
  STS_FETCH_FAILED = 5            /* anything else (handshake, protocol) */
};

const char *sts_fetch_outcome_name(int outcome);

/*
 * True for a Content-Type of text/plain: type and subtype compared
 * case-insensitively, optional white space, optional parameters after a
 * ";" (RFC 8461 section 3.3, RFC 9110 section 8.3.1).
 */
bool sts_content_type_ok(const char *content_type);

/* ------------------------------------------------------------------ */
/* Policies                                                             */

/*
 * The lines of a parsed policy, in order, without their line ends: the
 * TLS-RPT `policy-string` (RFC 8460 section 4.3).  Returns the number of
 * lines; *plines[i] of (*plens)[i] bytes are owned by the policy.
 */
size_t sts_policy_lines(const smtpout_sts_policy *policy,
                        const char *const **plines, const size_t **plens);

/* The policy file as it was parsed (what a cache entry stores). */
const char *sts_policy_text(const smtpout_sts_policy *policy, size_t *plen);

/* ------------------------------------------------------------------ */
/* Cache entries                                                        */

/*
 * What the library stores per policy domain in the host's store (a file,
 * Redis, SQL...), so every process and machine of a cluster shares one
 * view.  Serialized as one header line, then the policy file verbatim:
 *
 *   v=1; id=ID; fetched=MS; expires=MS[; retry-id=ID; retry-until=MS;
 *   retry-failure=TYPE]\n
 *   <policy text>
 *
 * (one line; MS: decimal milliseconds since the epoch).  `expires` is
 * `fetched` + max_age.  A negative entry (a failed fetch with no policy to
 * fall back on) has no `id`, `fetched` and `expires` equal to
 * `retry-until`, and no policy text.  The retry fields stop a failing
 * policy host from being fetched for every message: the TXT id whose
 * fetch failed, until when not to try it again, and the RFC 8460 result
 * type that failure was reported with.
 */
#define STS_CACHE_VERSION 1
#define STS_CACHE_HEADER_MAX 512
#define STS_CACHE_ENTRY_MAX (STS_CACHE_HEADER_MAX + SMTPOUT_STS_POLICY_MAX_BYTES)

struct sts_cache_entry {
  char id[STS_ID_MAX + 1]; /* "" in a negative entry */
  uint64_t fetched_ms;
  uint64_t expires_ms;
  char retry_id[STS_ID_MAX + 1]; /* "" when no fetch failed */
  uint64_t retry_until_ms;
  int retry_failure;             /* enum tlsrpt_result */
  smtpout_sts_policy *policy;    /* owned; NULL in a negative entry */
};

/*
 * Parses a stored entry defensively: a truncated, corrupt or
 * other-version entry, or one whose policy no longer parses or whose
 * expiry does not follow from its max_age, is refused (the caller treats
 * it as a miss).  Returns 0, SMTPOUT_ERR_SYNTAX with *why, or
 * SMTPOUT_ERR_NOMEM.  Free with sts_cache_entry_clear().
 */
int sts_cache_entry_parse(struct sts_cache_entry *e, const uint8_t *data,
                          size_t len, const char **why);

/* Appends the serialized entry to `out`.  0 or SMTPOUT_ERR_NOMEM. */
int sts_cache_entry_write(const struct sts_cache_entry *e, struct buf *out);

void sts_cache_entry_clear(struct sts_cache_entry *e);

/* ------------------------------------------------------------------ */
/* Discovery: which policy applies to one policy domain now             */

/*
 * One policy domain's discovery, a state machine fed by the host:
 *
 *   NEED_INPUT  --sts_discovery_cache() and _txt(), then _next()-->
 *   NEED_FETCH  --sts_discovery_fetched()-->  DONE
 *            or --_next()-->                  DONE
 *
 * The rules (RFC 8461 sections 3.3, 5.1 and 8.3, and the issue's):
 *
 *   cached policy    TXT                   result
 *   ---------------  --------------------  --------------------------------
 *   unexpired, id X  found, id X           cached policy, no fetch
 *   unexpired, id X  found, id Y           fetch; on failure keep X
 *   unexpired        absent/unusable/fail  cached policy (a removed record
 *                                          does not end a policy)
 *   none or expired  found                 fetch; on failure no policy
 *   none or expired  absent/unusable/fail  no policy, no fetch
 *
 * A failed fetch is reported (RFC 8460 type in _failure()) and, when a
 * backoff is configured, remembered in the entry: the same TXT id is not
 * fetched again before the backoff ends, and each message in between is
 * reported with the same type.  A policy is only ever replaced by a
 * successfully fetched and parsed one.
 */
enum sts_state {
  STS_STATE_NEED_INPUT = 0,
  STS_STATE_NEED_FETCH = 1,
  STS_STATE_DONE = 2
};

/* Where the policy in force came from. */
enum sts_source {
  STS_SOURCE_NONE = 0,    /* no policy applies */
  STS_SOURCE_CACHE = 1,   /* the cached entry, unchanged */
  STS_SOURCE_FETCHED = 2  /* fetched now; the cache should be updated */
};

struct sts_discovery {
  enum sts_state state;
  char domain[NAME_MAX_LEN];
  uint64_t backoff_ms;
  bool have_cache, have_txt;
  bool cache_usable;         /* a parsed entry (maybe negative) */
  struct sts_cache_entry cached;
  int txt_status;            /* enum sts_txt_status */
  char txt_id[STS_ID_MAX + 1];
  /* The outcome. */
  int source;                /* enum sts_source */
  smtpout_sts_policy *fresh; /* owned: a policy fetched now */
  int failure;               /* enum tlsrpt_result */
  char reason[256];
  bool put;                  /* the host should store `entry` */
  struct buf entry;
  uint64_t put_expires_ms;   /* when the host may evict it */
};

/*
 * Starts the discovery of `domain` (normalised; a BAD_NAME otherwise).
 * `backoff_ms` is how long a failed fetch is not retried for the same TXT
 * id (0: retry at every message).  Returns 0, SMTPOUT_ERR_BAD_NAME or
 * SMTPOUT_ERR_INVALID_ARGUMENT.  Free with sts_discovery_clear().
 */
int sts_discovery_init(struct sts_discovery *d, const char *domain,
                       uint64_t backoff_ms);
void sts_discovery_clear(struct sts_discovery *d);

/*
 * The cached entry for the domain (`len` 0: none).  A corrupt entry counts
 * as none (the reason says so); whether it is still fresh is decided by
 * sts_discovery_next() with the time then.
 */
int sts_discovery_cache(struct sts_discovery *d, const uint8_t *value,
                        size_t len);

/*
 * The TXT answer: `lookup_failed` (SERVFAIL, timeout; the records are
 * ignored), or the `n` records of the answer, none for NXDOMAIN or NODATA
 * (sts_txt_select() decides FOUND, ABSENT or UNUSABLE).
 */
int sts_discovery_txt(struct sts_discovery *d, bool lookup_failed,
                      const char *const *records, const size_t *lens,
                      size_t n);

/*
 * Decides, once both inputs are in: returns STS_STATE_NEED_FETCH or
 * STS_STATE_DONE; SMTPOUT_ERR_INVALID_STATE before both inputs.
 */
int sts_discovery_next(struct sts_discovery *d, uint64_t wall_ms);

/* The URL to fetch: https://mta-sts.DOMAIN/.well-known/mta-sts.txt */
int sts_discovery_url(const struct sts_discovery *d, char *out,
                      size_t outlen);

/*
 * The HTTPS answer: `outcome` (enum sts_fetch_outcome); for STS_FETCH_OK
 * the HTTP status, the Content-Type (NULL: none) and the body.  Returns
 * STS_STATE_DONE, SMTPOUT_ERR_INVALID_STATE when no fetch was asked for,
 * SMTPOUT_ERR_NOMEM.
 */
int sts_discovery_fetched(struct sts_discovery *d, int outcome,
                          int http_status, const char *content_type,
                          const uint8_t *body, size_t len, uint64_t wall_ms);

/* Once DONE: the policy in force (NULL: none), owned by the discovery. */
const smtpout_sts_policy *sts_discovery_policy(const struct sts_discovery *d);
/* The TXT id the policy in force was fetched under ("" when none). */
const char *sts_discovery_policy_id(const struct sts_discovery *d);
int sts_discovery_source(const struct sts_discovery *d);
/* The RFC 8460 result type of a failed fetch, or TLSRPT_NONE. */
int sts_discovery_failure(const struct sts_discovery *d);
/* A sentence on what happened and why (for explain and TLS-RPT). */
const char *sts_discovery_reason(const struct sts_discovery *d);
/*
 * When the host should write the cache: 1 with the entry (owned by the
 * discovery) and the wall-clock time it may be evicted after; else 0.
 */
int sts_discovery_cache_put(const struct sts_discovery *d,
                            const uint8_t **pdata, size_t *plen,
                            uint64_t *pexpires_ms);

#endif
