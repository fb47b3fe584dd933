/*
 * ruleset.c — open-addressing hash table of (kind, name) → rule.
 *
 * Keys live in one arena ("kind byte, knobs byte, name, NUL" each) so
 * that a million map entries cost a few large allocations rather than a
 * million small ones.  A slot holds the key's hash, so a probe touches
 * the arena only when the hashes agree, and the rule's knobs sit
 * beside the key, so a hit costs two cache lines (slot, key) and never a
 * third for the rule.  Linear probing, capacity a power of two, load
 * factor at most 1/2.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ruleset_int.h"
#include "smtpout/common.h"

struct slot {
  uint32_t hash;
  uint32_t key;  /* arena offset */
  uint32_t rule; /* RULE_NONE: empty slot */
  uint32_t line;
};

struct ruleset {
  struct slot *slots;
  size_t cap;   /* power of two, or 0 */
  size_t count;
  char *arena;
  size_t arena_len, arena_cap;
  struct rule *rules;
  size_t nrules, rules_cap;
  struct origin *origins;
  size_t norigins, origins_cap;
  /* Per pattern kind, bit n set when a pattern of n labels exists
   * (bit 63: 63 labels or more). */
  uint64_t labels[PAT_MX_SUFFIX + 1];
};

/* The knobs byte: starttls + 1 in bits 0-1 (0: unset), allow + 1 in
 * bits 2-3, dane + 1 in bits 4-5, mta-sts + 1 in bits 6-7. */
static uint8_t knobs_pack(const struct rule *r)
{
  return (uint8_t)((r->starttls + 1) | ((r->allow_invalid_certs + 1) << 2) |
                   ((r->dane + 1) << 4) | ((r->mta_sts + 1) << 6));
}

static unsigned label_bit(unsigned labels)
{
  return labels < 63 ? labels : 63;
}

static unsigned count_labels(const char *name, size_t len)
{
  unsigned n = 1;
  for (size_t i = 0; i < len; i++)
    n += name[i] == '.';
  return n;
}

/* FNV-1a over the kind byte and the name, then a murmur3-style
 * finaliser: FNV's low bits alone (the slot index) cluster on names that
 * differ only in their last characters. */
uint32_t ruleset_hash(int kind, const char *name, size_t len)
{
  uint32_t h = 2166136261u;
  h = (h ^ (uint8_t)kind) * 16777619u;
  for (size_t i = 0; i < len; i++)
    h = (h ^ (uint8_t)name[i]) * 16777619u;
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

static bool key_equal(const struct ruleset *rs, uint32_t key, int kind,
                      const char *name, size_t len)
{
  const char *k = rs->arena + key;
  return (uint8_t)k[0] == (uint8_t)kind && memcmp(k + 2, name, len) == 0 &&
         k[2 + len] == '\0';
}

/*
 * Large tables are probed at random: with 4 KiB pages nearly every probe
 * of a million-entry table also misses the TLB.  Huge pages (where the
 * kernel offers them on request, Linux's transparent huge pages in
 * "madvise" mode) remove most of those misses.
 */
#define HUGE_PAGE ((size_t)2 << 20)

static void *big_alloc(size_t size)
{
  if (size < 2 * HUGE_PAGE)
    return malloc(size);
  void *p;
  if (posix_memalign(&p, HUGE_PAGE, size) != 0)
    return NULL;
#ifdef MADV_HUGEPAGE
  madvise(p, size, MADV_HUGEPAGE); /* a hint: failure changes nothing */
#endif
  return p;
}

/* realloc() for big_alloc() memory holding `used` octets. */
static void *big_realloc(void *old, size_t used, size_t size)
{
  if (size < 2 * HUGE_PAGE)
    return realloc(old, size);
  void *p = big_alloc(size);
  if (p != NULL) {
    memcpy(p, old, used);
    free(old);
  }
  return p;
}

/* Grows `*p` (of `*cap` elements of `size`) to hold `need` elements. */
static int grow(void **p, size_t *cap, size_t need, size_t size)
{
  if (need <= *cap)
    return 0;
  size_t n = *cap ? *cap : 16;
  while (n < need)
    n *= 2;
  if (n > SIZE_MAX / size)
    return SMTPOUT_ERR_NOMEM;
  void *q = realloc(*p, n * size);
  if (q == NULL)
    return SMTPOUT_ERR_NOMEM;
  *p = q;
  *cap = n;
  return 0;
}

int ruleset_new(struct ruleset **out)
{
  struct ruleset *rs = calloc(1, sizeof(*rs));
  if (rs == NULL)
    return SMTPOUT_ERR_NOMEM;
  *out = rs;
  return 0;
}

void ruleset_free(struct ruleset *rs)
{
  if (rs == NULL)
    return;
  for (size_t i = 0; i < rs->norigins; i++) {
    free(rs->origins[i].file);
    free(rs->origins[i].label);
  }
  free(rs->origins);
  free(rs->rules);
  free(rs->arena);
  free(rs->slots);
  free(rs);
}

static void place(struct slot *slots, size_t cap, const struct slot *s)
{
  size_t i = s->hash & (cap - 1);
  while (slots[i].rule != RULE_NONE)
    i = (i + 1) & (cap - 1);
  slots[i] = *s;
}

static int rehash(struct ruleset *rs, size_t cap)
{
  struct slot *slots = big_alloc(cap * sizeof(*slots));
  if (slots == NULL)
    return SMTPOUT_ERR_NOMEM;
  for (size_t i = 0; i < cap; i++)
    slots[i].rule = RULE_NONE;
  for (size_t i = 0; i < rs->cap; i++) {
    if (rs->slots[i].rule != RULE_NONE)
      place(slots, cap, &rs->slots[i]);
  }
  free(rs->slots);
  rs->slots = slots;
  rs->cap = cap;
  return 0;
}

/* Makes room for `n` more entries at a load factor of at most 1/2. */
static int reserve_slots(struct ruleset *rs, size_t n)
{
  size_t need = rs->count + n;
  if (need > SIZE_MAX / 4)
    return SMTPOUT_ERR_NOMEM;
  if (need * 2 <= rs->cap)
    return 0;
  size_t cap = rs->cap ? rs->cap : 64;
  while (cap < need * 2)
    cap *= 2;
  return rehash(rs, cap);
}

static int grow_arena(struct ruleset *rs, size_t need)
{
  if (need <= rs->arena_cap)
    return 0;
  size_t cap = rs->arena_cap ? rs->arena_cap : 256;
  while (cap < need)
    cap *= 2;
  char *a = big_realloc(rs->arena, rs->arena_len, cap);
  if (a == NULL)
    return SMTPOUT_ERR_NOMEM;
  rs->arena = a;
  rs->arena_cap = cap;
  return 0;
}

int ruleset_reserve(struct ruleset *rs, size_t n)
{
  int rv = reserve_slots(rs, n);
  if (rv == 0)
    rv = grow((void **)&rs->rules, &rs->rules_cap, rs->nrules + n,
              sizeof(*rs->rules));
  /* Typical map keys are 20-30 octets. */
  if (rv == 0 && n <= SIZE_MAX / 32)
    rv = grow_arena(rs, rs->arena_len + n * 24);
  return rv;
}

int ruleset_add_origin(struct ruleset *rs, const char *file,
                       const char *label, uint32_t line, uint32_t *index)
{
  if (grow((void **)&rs->origins, &rs->origins_cap, rs->norigins + 1,
           sizeof(*rs->origins)) != 0)
    return SMTPOUT_ERR_NOMEM;
  struct origin *o = &rs->origins[rs->norigins];
  o->file = strdup(file);
  o->label = label ? strdup(label) : NULL;
  o->line = line;
  if (o->file == NULL || (label && o->label == NULL)) {
    free(o->file);
    free(o->label);
    return SMTPOUT_ERR_NOMEM;
  }
  *index = (uint32_t)rs->norigins++;
  return 0;
}

int ruleset_add_rule(struct ruleset *rs, const struct rule *rule,
                     uint32_t *index)
{
  if (rs->nrules >= RULE_NONE)
    return SMTPOUT_ERR_CONFIG;
  if (grow((void **)&rs->rules, &rs->rules_cap, rs->nrules + 1,
           sizeof(*rs->rules)) != 0)
    return SMTPOUT_ERR_NOMEM;
  rs->rules[rs->nrules] = *rule;
  *index = (uint32_t)rs->nrules++;
  return 0;
}

static struct slot *find_slot(const struct ruleset *rs, uint32_t h, int kind,
                              const char *name, size_t len)
{
  if (rs->cap == 0)
    return NULL;
  size_t i = h & (rs->cap - 1);
  for (;;) {
    struct slot *s = &rs->slots[i];
    if (s->rule == RULE_NONE)
      return s;
    if (s->hash == h && key_equal(rs, s->key, kind, name, len))
      return s;
    i = (i + 1) & (rs->cap - 1);
  }
}

int ruleset_claim(struct ruleset *rs, int kind, const char *name, size_t len,
                  uint32_t rule, uint32_t line, struct rule_match *prior)
{
  int rv = reserve_slots(rs, 1);
  if (rv != 0)
    return rv;
  uint32_t h = ruleset_hash(kind, name, len);
  struct slot *s = find_slot(rs, h, kind, name, len);
  if (s->rule != RULE_NONE) {
    prior->rule = s->rule;
    prior->line = s->line;
    prior->key = s->key;
    return 1;
  }
  size_t need = len + 3;
  if (rs->arena_len + need > UINT32_MAX)
    return SMTPOUT_ERR_CONFIG;
  if (grow_arena(rs, rs->arena_len + need) != 0)
    return SMTPOUT_ERR_NOMEM;
  char *k = rs->arena + rs->arena_len;
  k[0] = (char)kind;
  k[1] = (char)knobs_pack(&rs->rules[rule]);
  memcpy(k + 2, name, len);
  k[2 + len] = '\0';
  s->hash = h;
  s->key = (uint32_t)rs->arena_len;
  s->rule = rule;
  s->line = line;
  rs->arena_len += need;
  rs->count++;
  rs->labels[kind] |= 1ull << label_bit(count_labels(name, len));
  return 0;
}

int ruleset_may_have(const struct ruleset *rs, int kind, unsigned labels)
{
  return rs != NULL && (rs->labels[kind] >> label_bit(labels) & 1) != 0;
}

void ruleset_prefetch(const struct ruleset *rs, uint32_t hash)
{
  __builtin_prefetch(&rs->slots[hash & (rs->cap - 1)]);
}

void ruleset_prefetch_key(const struct ruleset *rs, uint32_t hash)
{
  const struct slot *s = &rs->slots[hash & (rs->cap - 1)];
  if (s->rule != RULE_NONE && s->hash == hash)
    __builtin_prefetch(rs->arena + s->key);
}

int ruleset_find(const struct ruleset *rs, int kind, const char *name,
                 size_t len, uint32_t hash, struct rule_match *match)
{
  if (rs == NULL || rs->cap == 0)
    return 0;
  const struct slot *s = find_slot(rs, hash, kind, name, len);
  if (s->rule == RULE_NONE)
    return 0;
  uint8_t knobs = (uint8_t)rs->arena[s->key + 1];
  match->rule = s->rule;
  match->line = s->line;
  match->key = s->key;
  match->starttls = (knobs & 3) - 1;
  match->allow_invalid_certs = (knobs >> 2 & 3) - 1;
  match->dane = (knobs >> 4 & 3) - 1;
  match->mta_sts = (knobs >> 6 & 3) - 1;
  return 1;
}

const struct rule *ruleset_rule(const struct ruleset *rs, uint32_t index)
{
  return &rs->rules[index];
}

const struct origin *ruleset_origin(const struct ruleset *rs, uint32_t index)
{
  return &rs->origins[index];
}

const char *ruleset_key_name(const struct ruleset *rs, uint32_t key)
{
  return rs->arena + key + 2;
}

int ruleset_key_kind(const struct ruleset *rs, uint32_t key)
{
  return (uint8_t)rs->arena[key];
}

size_t ruleset_count(const struct ruleset *rs)
{
  return rs ? rs->count : 0;
}

size_t ruleset_memory(const struct ruleset *rs)
{
  if (rs == NULL)
    return 0;
  return sizeof(*rs) + rs->cap * sizeof(struct slot) + rs->arena_cap +
         rs->rules_cap * sizeof(struct rule) +
         rs->origins_cap * sizeof(struct origin);
}
