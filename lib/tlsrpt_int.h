/*
 * tlsrpt_int.h — TLS-RPT (RFC 8460) beyond the public report builder: result
 * and policy type names, the event line (writer and strict reader), and
 * the `_smtp._tls` TXT record.
 *
 * An event line is one JSON object on one line, keys in this order (the
 * writer's; the reader takes any order):
 *
 *   {"v":1,"time":MS,"report-domain":D,"report-record":TXT,
 *    "policy-type":"tlsa"|"sts"|"no-policy-found","policy-string":[...],
 *    "policy-domain":D,"mx-host":[...],"result":"success"|"failure",
 *    "result-type":T,"sending-mta-ip":IP,"receiving-mx-hostname":H,
 *    "receiving-mx-helo":S,"receiving-ip":IP,"additional-information":S,
 *    "failure-reason-code":S}
 *
 * v, time, policy-type, policy-domain and result are required, result-type
 * exactly on failures; the rest may be absent.  Names are stored as
 * lower-case A-labels, addresses in inet_ntop() form.
 */
#ifndef SMTPOUT_TLSRPT_INT_H
#define SMTPOUT_TLSRPT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf_int.h"
#include "tls_int.h"
#include "smtpout/tlsrpt.h"

/* RFC 8460 section 4.4 names of enum tlsrpt_result (tls_int.h); NULL for
 * TLSRPT_NONE and unknown values. */
const char *tlsrpt_type_name(int result);
/* The enum tlsrpt_result for a name of `len` bytes, or -1. */
int tlsrpt_type_parse(const char *name, size_t len);

/* RFC 8460 section 4.3 policy types. */
enum tlsrpt_policy_type {
  TLSRPT_POLICY_TLSA = 0,
  TLSRPT_POLICY_STS = 1,
  TLSRPT_POLICY_NONE = 2 /* "no-policy-found" */
};
const char *tlsrpt_policy_type_name(int type);

/* Bounds the writer keeps and the reader enforces. */
#define TLSRPT_STRING_MAX 65536   /* one string, in bytes */
#define TLSRPT_ARRAY_MAX 4096     /* entries of one array */
#define TLSRPT_TIME_MAX 253402300799999ULL /* 9999-12-31T23:59:59.999Z */

/* One attempt, as the writer takes it and the reader returns it. */
struct tlsrpt_event {
  uint64_t time_ms;            /* wall clock, ms since the epoch */
  const char *report_domain;   /* NULL: the policy domain */
  const char *report_record;   /* the _smtp._tls TXT record, or NULL */
  int policy_type;             /* enum tlsrpt_policy_type */
  const char *const *policy_strings;
  size_t npolicy_strings;
  const char *policy_domain;   /* required */
  const char *const *mx_hosts; /* STS mx patterns (RFC 8460 errata 6241) */
  size_t nmx_hosts;
  bool success;
  int result_type;             /* enum tlsrpt_result; NONE on success */
  const char *sending_mta_ip;
  const char *receiving_mx_hostname;
  const char *receiving_mx_helo;
  const char *receiving_ip;
  const char *additional_information;
  const char *failure_reason_code;
};

/*
 * Appends `ev` to `out` as one line ending in LF.  Domains, host names and
 * addresses must be valid (SMTPOUT_ERR_INVALID_ARGUMENT otherwise, or
 * SMTPOUT_ERR_BAD_NAME); free text (policy strings, the EHLO name, the
 * additional information and reason code) is made safe instead: invalid
 * UTF-8 and control characters become U+FFFD, and a string over
 * TLSRPT_STRING_MAX is cut at a character boundary, so the reader accepts
 * whatever the writer writes.  Returns 0, one of those errors, or
 * SMTPOUT_ERR_NOMEM; `out` is unchanged on error.
 */
int tlsrpt_event_write(const struct tlsrpt_event *ev, struct buf *out);

/* An event read from a line: `ev` points into the storage beside it. */
struct tlsrpt_parsed {
  struct tlsrpt_event ev;
  struct buf arena;
  const char **ptrs;
};

/*
 * Reads one event line (`len` bytes, no line end) strictly: JSON with
 * the keys and types above, no duplicate key, valid UTF-8, no control
 * character in any string, known names only, at most
 * SMTPOUT_TLSRPT_EVENT_MAX_BYTES.  Unknown keys are skipped when their
 * value is a string, number, boolean, null or an array of those (a later
 * writer may add fields).  Returns 0, SMTPOUT_ERR_SYNTAX with *why (a
 * static phrase), or SMTPOUT_ERR_NOMEM.  Free with tlsrpt_parsed_clear()
 * (also after an error).
 */
int tlsrpt_event_parse(const char *line, size_t len, struct tlsrpt_parsed *out,
                       const char **why);
void tlsrpt_parsed_clear(struct tlsrpt_parsed *p);

/* ------------------------------------------------------------------ */
/* The `_smtp._tls` TXT record (RFC 8460 section 3)                     */

#define TLSRPT_RUA_MAX 32

enum tlsrpt_uri_scheme {
  TLSRPT_URI_MAILTO = 0,
  TLSRPT_URI_HTTPS = 1,
  TLSRPT_URI_OTHER = 2 /* well-formed, but no way to deliver to it */
};

struct tlsrpt_uri {
  const char *s; /* into the parsed record, not NUL-terminated */
  size_t len;
  int scheme;    /* enum tlsrpt_uri_scheme */
};

struct tlsrpt_record {
  size_t nrua;
  struct tlsrpt_uri rua[TLSRPT_RUA_MAX];
};

/*
 * Parses one record (strings concatenated):
 *
 *   v=TLSRPTv1 1*(*WSP ";" *WSP field) [*WSP ";" *WSP]
 *   field = "rua=" URI *(*WSP "," *WSP URI) / ext-name "=" ext-value
 *
 * `rua` exactly once, with 1 to TLSRPT_RUA_MAX URIs (RFC 3986 characters
 * except "," "!" ";", a scheme, percent-encoding well-formed); "mailto:"
 * needs an "@", "https:" an authority.  Returns 0 or SMTPOUT_ERR_SYNTAX
 * with *why.
 */
int tlsrpt_txt_parse(const char *txt, size_t len, struct tlsrpt_record *r,
                     const char **why);

/*
 * Section 3: records that do not begin with "v=TLSRPTv1;" are discarded;
 * exactly one must remain and parse.  Returns STS-like statuses: 0 found,
 * 1 absent, 2 unusable (several, or malformed; *why says).
 */
enum { TLSRPT_TXT_FOUND = 0, TLSRPT_TXT_ABSENT = 1, TLSRPT_TXT_UNUSABLE = 2 };
int tlsrpt_txt_select(const char *const *records, const size_t *lens,
                      size_t n, struct tlsrpt_record *r, const char **why);

#endif
