/*
 * ruleset_int.h — the table of destination rules: pattern → rule.
 *
 * Every pattern of every [destination] section and of the policy map is
 * one entry of a single open-addressing hash table keyed by (pattern
 * kind, normalised name).  A lookup of one name is one probe; resolving a
 * destination probes each suffix of its names, so it costs O(labels)
 * whatever the number of rules.  The table is built once while a
 * configuration loads and only read afterwards (by any number of threads).
 */
#ifndef SMTPOUT_RULESET_INT_H
#define SMTPOUT_RULESET_INT_H

#include <stddef.h>
#include <stdint.h>

/* What a pattern matches.  The values are stored in the keys. */
enum pattern_kind {
  PAT_DOMAIN = 1,        /* domains = example.com: that recipient domain */
  PAT_DOMAIN_PARENT = 2, /* domains = .example.com: every subdomain of it */
  PAT_MX = 3,            /* mx = mx.example.com: that MX host */
  PAT_MX_WILDCARD = 4,   /* mx = *.example.com: exactly one more label */
  PAT_MX_SUFFIX = 5      /* mx = .example.com: any depth below it */
};

#define RULE_NONE UINT32_MAX
#define KNOB_UNSET (-1)

/* Where rules come from: a [destination "label"] section or a map file. */
struct origin {
  char *file;   /* as given by the user (map: resolved against the config) */
  char *label;  /* the section label; NULL for a map file */
  uint32_t line; /* the section header's line; 0 for a map file */
};

/* What a rule sets; KNOB_UNSET leaves a knob to the next rule in order. */
struct rule {
  int8_t starttls;            /* enum smtpout_starttls or KNOB_UNSET */
  int8_t allow_invalid_certs; /* 0, 1 or KNOB_UNSET */
  int8_t dane;                /* enum smtpout_dane or KNOB_UNSET */
  int8_t mta_sts;             /* enum smtpout_mta_sts or KNOB_UNSET */
  uint32_t origin;            /* index into the origins */
  uint32_t starttls_line;     /* line of the key that set each knob */
  uint32_t allow_line;
  uint32_t dane_line;
  uint32_t mta_sts_line;
};

/* One table entry, as a lookup returns it. */
struct rule_match {
  uint32_t rule;  /* index into the rules */
  uint32_t line;  /* the line where the pattern was written */
  uint32_t key;   /* offset of the key in the key arena */
  int starttls;   /* the rule's knobs (copied next to the key, so that */
  int allow_invalid_certs; /* a lookup need not read the rule) */
  int dane;
  int mta_sts;
};

struct ruleset;

int ruleset_new(struct ruleset **out);
void ruleset_free(struct ruleset *rs);

/* Room for `n` more entries and rules, so that a large map loads without
 * rehashing.  Returns 0 or SMTPOUT_ERR_NOMEM. */
int ruleset_reserve(struct ruleset *rs, size_t n);

/* Adds an origin (strings are copied); returns 0 and its index in *index,
 * or SMTPOUT_ERR_NOMEM. */
int ruleset_add_origin(struct ruleset *rs, const char *file,
                       const char *label, uint32_t line, uint32_t *index);

/* Appends a rule; returns 0 and its index in *index, or NOMEM. */
int ruleset_add_rule(struct ruleset *rs, const struct rule *rule,
                     uint32_t *index);

/*
 * Claims the pattern (kind, name[0..len)) for rule `rule` (already added),
 * written at
 * `line`.  Returns 0 when inserted; 1 when another entry already holds the
 * pattern (that entry is stored in *prior); SMTPOUT_ERR_NOMEM;
 * SMTPOUT_ERR_CONFIG when the table is full (over 2^32 octets of keys).
 */
int ruleset_claim(struct ruleset *rs, int kind, const char *name, size_t len,
                  uint32_t rule, uint32_t line, struct rule_match *prior);

/* The hash of the pattern (kind, name[0..len)), for the calls below. */
uint32_t ruleset_hash(int kind, const char *name, size_t len);

/* Whether a pattern of `kind` with `labels` labels (dots + 1) may exist:
 * lookups skip probes that cannot hit. */
int ruleset_may_have(const struct ruleset *rs, int kind, unsigned labels);

/* Starts loading the slot of `hash` into the cache.  A resolution knows
 * all its candidate patterns up front; prefetching them all lets their
 * cache misses overlap instead of following one another. */
void ruleset_prefetch(const struct ruleset *rs, uint32_t hash);

/* Once the slot of `hash` has arrived: if it holds a key of that hash,
 * starts loading the key (the second cache miss of a hit). */
void ruleset_prefetch_key(const struct ruleset *rs, uint32_t hash);

/* Finds the pattern (kind, name[0..len)) whose hash is `hash`.  Returns 1
 * and fills *match, or 0.  Thread-safe on a table no longer written to. */
int ruleset_find(const struct ruleset *rs, int kind, const char *name,
                 size_t len, uint32_t hash, struct rule_match *match);

const struct rule *ruleset_rule(const struct ruleset *rs, uint32_t index);
const struct origin *ruleset_origin(const struct ruleset *rs,
                                    uint32_t index);
/* The name of a key returned in a match (without its kind). */
const char *ruleset_key_name(const struct ruleset *rs, uint32_t key);
int ruleset_key_kind(const struct ruleset *rs, uint32_t key);
size_t ruleset_count(const struct ruleset *rs);
/* Octets allocated by the table (for the benchmark's memory figure). */
size_t ruleset_memory(const struct ruleset *rs);

#endif
