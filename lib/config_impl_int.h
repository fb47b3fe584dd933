/*
 * config_impl_int.h — inside the configuration module (config*.c, policy.c).
 *
 * config_int.h is what the rest of the library sees; this header is shared by
 * the files that build and read a configuration: the INI reader
 * (config_ini.c), the map loader (config_map.c), value parsing
 * (config_value.c), diagnostics (config_diag.c), the rule engine
 * (policy.c) and the policy object (policy_result.c).
 */
#ifndef SMTPOUT_CONFIG_IMPL_INT_H
#define SMTPOUT_CONFIG_IMPL_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config_int.h"
#include "names_int.h"
#include "ruleset_int.h"

/* A knob set by [queue.outbound.tls]: value (or KNOB_UNSET) and line. */
struct global_knob {
  int value;
  uint32_t line;
};

struct smtpout_config {
  atomic_int refs;
  uint32_t timeouts[SMTPOUT_TIMEOUT_COUNT];
  uint32_t timeout_lines[SMTPOUT_TIMEOUT_COUNT]; /* 0: the default */
  char *file;         /* the config file as the user named it (sources) */
  char *helo_name;    /* NULL: the session's default */
  char *ca_file;      /* NULL: the system trust store */
  char *tls_priority; /* NULL: CONFIG_DEFAULT_TLS_PRIORITY */
  struct global_knob starttls, allow_invalid_certs, dane, mta_sts;
  struct ruleset *rules; /* NULL when there is no destination rule */
  struct config_routing routing; /* [queue.outbound], [queue.outbound.dns] */
  char *dns_resolver;     /* NULL: the nameservers of /etc/resolv.conf */
  char *dns_trust_anchor; /* NULL: the resolver's default */
  struct tls_cache *tls_cache;
  /* [queue.outbound.mta-sts] */
  struct config_sts sts;
  char *sts_cache_file, *sts_ca_file; /* what sts points to */
  /* [queue.outbound.tls-rpt] events: NULL when not set */
  char *tlsrpt_events;
  /* [relay "label"] sections, and [queue.outbound] relay */
  struct config_relay *relays;
  size_t nrelays;
  char *relay; /* the label, or NULL */
  int no_chunking; /* [queue.outbound] chunking = false */
};

/* ---- diagnostics: every problem, as "FILE:LINE: message" ---- */

/* At most this many messages are kept; the rest are only counted. */
#define DIAG_MAX_SHOWN 100

struct diag_entry;

/* Problems are reported sorted by file (in order of first mention) and
 * line, whichever pass found them. */
struct diag {
  struct diag_entry *entries;
  size_t len, cap;
  const char *files[4]; /* file names in order of first mention */
  unsigned nfiles;
  unsigned count; /* all problems, kept or not */
  bool nomem;
};

/* Records a problem at FILE:LINE (line 0: "FILE: message"). */
void diag_add(struct diag *d, const char *file, uint32_t line,
              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Writes every kept message (and how many were left out) to errbuf, one
 * per line. */
void diag_write(struct diag *d, const char *file, char *errbuf,
                size_t errlen);
void diag_free(struct diag *d);

/* ---- values shared by the INI file and the map file ---- */

/* The largest number of characters an echoed value keeps in a message. */
#define QUOTE_MAX 60

/* Writes `s[0..len)` in double quotes to `out`, escaping control
 * characters as \xHH and shortening it to QUOTE_MAX characters. */
void value_quote(char *out, size_t outlen, const char *s, size_t len);

/* Strips one pair of enclosing double (or single) quotes, in place on
 * (*s, *len). */
void value_unquote(const char **s, size_t *len);

/* Parses "optional", "require", "disable"; returns 0 or -1. */
int value_starttls(const char *s, size_t len, int *out);
/* Parses "true", "false"; returns 0 or -1. */
int value_bool(const char *s, size_t len, int *out);
/* Parses "optional", "require", "disable" for dane; returns 0 or -1. */
int value_dane(const char *s, size_t len, int *out);
/* The same words for mta-sts. */
int value_mta_sts(const char *s, size_t len, int *out);
/* Parses a decimal number from `min` to `max`; returns 0 or -1. */
int value_uint(const char *s, size_t len, uint32_t min, uint32_t max,
               uint32_t *out);
/* Parses a duration ("1500ms", "30s", "5m", "1h", "1d") into
 * milliseconds; returns 0, or -1 with a reason in *why. */
int value_duration(const char *s, size_t len, uint32_t *ms,
                   const char **why);

#define STARTTLS_ACCEPTED "optional, require, disable"
#define BOOL_ACCEPTED "true, false"
#define DANE_ACCEPTED "optional, require, disable"
#define MTA_STS_ACCEPTED "optional, require, disable"

/* Which list a pattern comes from decides which forms it may take. */
enum pattern_list { LIST_DOMAINS, LIST_MX, LIST_MAP };

/*
 * Parses one pattern token of `list`: for LIST_DOMAINS "x" and ".x", for
 * LIST_MX "x", "*.x" and ".x", for LIST_MAP any of those with MX patterns
 * written "mx:PATTERN".  IP literals are accepted as exact patterns.
 * The normalised name goes to `name` (NAME_MAX_LEN bytes) and its kind to
 * *kind.  Returns 0; SMTPOUT_ERR_NOMEM; or SMTPOUT_ERR_BAD_NAME with a
 * message in `why` (`whylen` bytes).
 */
int pattern_parse(const char *tok, size_t len, int list, int *kind,
                  char *name, char *why, size_t whylen);

/* The pattern as the user would write it ("*.example.com", "mx:x"),
 * for messages and explanations. */
void pattern_format(char *out, size_t outlen, int kind, const char *name,
                    bool in_map);

/* ---- loading ---- */

/* State while one configuration loads; discarded afterwards. */
struct config_load {
  smtpout_config *cfg;
  struct diag diag;
  const char *file; /* name used in messages and sources */
  char *dir;        /* prefix for relative paths: "" or "dir/" */
  char *map_path;   /* resolved policy-map path, or NULL */
  uint32_t map_line;
  uint32_t ca_line, priority_line;
  uint32_t dnssec_line, anchor_line; /* [queue.outbound.dns] keys */
  /* The first `dane = require`, in the file or the map: it cannot be met
   * with dnssec = off. */
  const char *dane_require_file;
  uint32_t dane_require_line;
  struct ini_dest *dests; /* [destination] sections (config_ini.c) */
  uint32_t relay_line;    /* [queue.outbound] relay */
  uint32_t sts_cache_line, sts_ca_line;
  uint32_t rpt_events_line;
  struct ini_relay *relays; /* [relay] sections (config_ini.c) */
  size_t nrelays, relays_cap;
  size_t ndests, dests_cap;
  int fatal; /* SMTPOUT_ERR_NOMEM once memory ran out */
};

/* Parses the INI text (config_ini.c): global settings into ld->cfg, the
 * destinations into ld->dests.  Problems go to ld->diag. */
void config_ini_parse(struct config_load *ld, const char *text, size_t len);
/* Turns the parsed destinations into rules of ld->cfg->rules, reporting
 * patterns claimed twice. */
void config_ini_build_rules(struct config_load *ld);
/* Checks the [relay] sections and [queue.outbound] relay once the whole
 * file is read (files, permissions, keys that need each other) and moves
 * the relays into ld->cfg. */
void config_ini_build_relays(struct config_load *ld);
void config_ini_free(struct config_load *ld);
void config_relays_free(struct config_relay *relays, size_t n);

/* Loads the policy map at ld->map_path into ld->cfg->rules
 * (config_map.c). */
void config_map_load(struct config_load *ld);

/* Reports a pattern that `rule` (from `file`:`line`) claims but another
 * rule already holds (config_map.c and config_ini.c share the text). */
void config_report_conflict(struct config_load *ld, const char *file,
                            uint32_t line, int kind, const char *name,
                            const struct rule_match *prior);

/* ---- resolution (policy.c) ---- */

/* The steps of the resolution order, first hit wins
 * (docs/configuration.md, "Resolution"). */
enum policy_tier {
  TIER_MX_EXACT = 0,
  TIER_DOMAIN_EXACT,
  TIER_DOMAIN_PARENT,
  TIER_MX_WILDCARD, /* *.x and .x MX patterns, longest first */
  TIER_GLOBAL,      /* [queue.outbound.tls] */
  TIER_DEFAULT
};

/* The knobs, in the order of enum smtpout_knob. */
#define POLICY_KNOBS 4

/* How one knob was decided for one (domain, MX). */
struct knob_decision {
  int value;
  int tier;
  uint32_t rule; /* TIER_MX_EXACT..TIER_MX_WILDCARD: index into rules */
  uint32_t key;  /* the key that matched */
};

/* Resolves the knobs for one normalised domain (may be NULL) and MX
 * (may be NULL); `*_ip` says the name is an IP literal (exact rules
 * only).  d[] is indexed by enum smtpout_knob. */
void policy_decide(const smtpout_config *config, const char *domain,
                   bool domain_ip, const char *mx, bool mx_ip,
                   struct knob_decision d[POLICY_KNOBS]);

/* Normalises a domain or MX host: IP literal or name.  Returns 0 with
 * *is_ip set, or SMTPOUT_ERR_BAD_NAME / SMTPOUT_ERR_NOMEM. */
int policy_normalize(const char *in, char out[NAME_MAX_LEN], bool *is_ip,
                     const char **why);

#endif
