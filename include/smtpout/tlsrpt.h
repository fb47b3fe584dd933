/*
 * smtpout — TLS-RPT aggregate reports (RFC 8460).
 *
 * Every delivery attempt can be recorded as one TLS-RPT event: a line of
 * JSON the host appends wherever it likes (a file, a socket, Redis), from
 * any number of processes and machines.  A report builder merges such
 * lines into the RFC 8460 aggregate report JSON, one report per report
 * domain and UTC day.  The event format is described in docs/tlsrpt.md;
 * the tool smtpout-tlsrpt is the builder on the command line.
 *
 * A builder is used by one thread at a time; distinct builders share
 * nothing.
 */
#ifndef SMTPOUT_TLSRPT_H
#define SMTPOUT_TLSRPT_H

#include <smtpout/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smtpout_tlsrpt_report smtpout_tlsrpt_report;

/* The longest event line read, in bytes (longer lines are skipped). */
#define SMTPOUT_TLSRPT_EVENT_MAX_BYTES 262144

/* What a builder counted, for smtpout_tlsrpt_report_counter(). */
enum smtpout_tlsrpt_counter {
  /* Events merged into a report. */
  SMTPOUT_TLSRPT_COUNTER_EVENTS = 0,
  /* Lines skipped: not a well-formed event, or longer than
   * SMTPOUT_TLSRPT_EVENT_MAX_BYTES (blank lines are not counted). */
  SMTPOUT_TLSRPT_COUNTER_MALFORMED = 1,
  /* Well-formed events of another UTC day. */
  SMTPOUT_TLSRPT_COUNTER_OTHER_DAY = 2,
  /* Well-formed events for another report domain. */
  SMTPOUT_TLSRPT_COUNTER_OTHER_DOMAIN = 3,
  /* Well-formed events dropped because the builder reached its memory
   * bound (too many distinct policies or failure details). */
  SMTPOUT_TLSRPT_COUNTER_DROPPED = 4
};

/*
 * Creates a builder for the UTC day starting at `day_start_wall_ms`
 * (milliseconds since the Unix epoch; must be a multiple of 86400000).
 * With a `report_domain`, only events for that domain are merged (the
 * domain is normalised: case, U-labels, a trailing dot do not matter);
 * with NULL, events for every domain are, one report per domain.
 *
 * An event's report domain is its `report-domain`, else its
 * `policy-domain` (docs/tlsrpt.md).
 *
 * On success stores the builder in *preport and returns 0.  Errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT (NULL `preport`, a day that does not start
 * at midnight UTC or lies past the year 9999), SMTPOUT_ERR_BAD_NAME,
 * SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_tlsrpt_report_new(smtpout_tlsrpt_report **preport,
                                             const char *report_domain,
                                             uint64_t day_start_wall_ms);

/* Frees a builder and everything it returned.  NULL-safe. */
SMTPOUT_EXTERN void smtpout_tlsrpt_report_free(smtpout_tlsrpt_report *report);

/*
 * Merges one event line (`len` bytes; a final LF or CRLF is allowed).
 * Returns 1 when the event was merged, 0 when it is well-formed but for
 * another day or domain, or was dropped at the memory bound (the counters
 * say which); SMTPOUT_ERR_SYNTAX when the line is not a well-formed event
 * (counted as malformed; nothing else changes); SMTPOUT_ERR_INVALID_ARGUMENT
 * for a NULL argument; SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_tlsrpt_report_add_event_json(smtpout_tlsrpt_report *report,
                                                        const char *json,
                                                        size_t len);

/*
 * Feeds `len` bytes of a stream of event lines (a file read in chunks of
 * any size).  Complete lines are merged as by
 * smtpout_tlsrpt_report_add_event_json(); a malformed line is counted and
 * skipped; an over-long line is skipped without being held in memory.
 * Call smtpout_tlsrpt_report_feed_eof() at the end of each stream.
 * Returns 0, SMTPOUT_ERR_INVALID_ARGUMENT or SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_tlsrpt_report_feed(smtpout_tlsrpt_report *report,
                                              const char *data, size_t len);

/*
 * Ends a stream: a last line without a line end is merged like the
 * others.  The next smtpout_tlsrpt_report_feed() starts a new stream.
 * Returns 0, SMTPOUT_ERR_INVALID_ARGUMENT or SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_tlsrpt_report_feed_eof(smtpout_tlsrpt_report *report);

/* Returns counter `which` (enum smtpout_tlsrpt_counter); 0 for NULL or
 * an unknown counter. */
SMTPOUT_EXTERN uint64_t
smtpout_tlsrpt_report_counter(const smtpout_tlsrpt_report *report, int which);

/*
 * Returns how many report domains have merged events: one report each.
 */
SMTPOUT_EXTERN size_t
smtpout_tlsrpt_report_domain_count(const smtpout_tlsrpt_report *report);

/*
 * Returns report domain number `index`, in lexicographic order of the
 * A-label names; NULL when out of range (or out of memory for sorting
 * them).  Owned by the builder; the numbering holds until the next call
 * that merges events.
 */
SMTPOUT_EXTERN const char *
smtpout_tlsrpt_report_domain(smtpout_tlsrpt_report *report, size_t index);

/*
 * Renders the RFC 8460 aggregate report (section 4.4) of report domain
 * number `index`: `organization-name` `org`, `date-range` the builder's
 * day (00:00:00Z to 23:59:59Z), `contact-info` `contact`, `report-id`
 * `report_id`, and one `policies` entry per distinct policy (type,
 * strings, policy domain, `mx-host` array as RFC 8460 errata 6241 has it)
 * with its `summary` counts and `failure-details` (counts per result type
 * and the addresses and names involved).  Policies and failure details
 * are sorted, so the same events give the same report in any order.
 *
 * On success stores the compact JSON (NUL-terminated, no line end) in
 * *pjson and its length in *plen, owned by the builder until the next
 * render or the free, and returns 0.  Errors: SMTPOUT_ERR_INVALID_ARGUMENT
 * (NULL argument, `index` out of range, a string that is empty, not UTF-8
 * or holds a control character), SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_tlsrpt_report_render(smtpout_tlsrpt_report *report,
                                                size_t index, const char *org,
                                                const char *contact,
                                                const char *report_id,
                                                const char **pjson,
                                                size_t *plen);

#ifdef __cplusplus
}
#endif

#endif /* SMTPOUT_TLSRPT_H */
