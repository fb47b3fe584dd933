/*
 * ruleset.c — open-addressing hash table of (kind, name) → rule.
 *
 * Keys live in one arena ("kind byte, name, NUL" each) so that a million
 * map entries cost three large allocations rather than a million small
 * ones; a slot holds the key's hash, so a probe touches the arena only
 * when the hashes agree.  Linear probing, capacity a power of two, load
 * factor at most 1/2.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ruleset.h"
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
  unsigned kinds; /* bit per pattern kind present */
};

/* FNV-1a, 32 bits, over the kind byte and the name. */
static uint32_t key_hash(int kind, const char *name, size_t len)
{
  uint32_t h = 2166136261u;
  h = (h ^ (uint8_t)kind) * 16777619u;
  for (size_t i = 0; i < len; i++)
    h = (h ^ (uint8_t)name[i]) * 16777619u;
  return h;
}

static bool key_equal(const struct ruleset *rs, uint32_t key, int kind,
                      const char *name, size_t len)
{
  const char *k = rs->arena + key;
  return (uint8_t)k[0] == (uint8_t)kind && memcmp(k + 1, name, len) == 0 &&
         k[1 + len] == '\0';
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
  struct slot *slots = malloc(cap * sizeof(*slots));
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

int ruleset_reserve(struct ruleset *rs, size_t n)
{
  int rv = reserve_slots(rs, n);
  if (rv == 0)
    rv = grow((void **)&rs->rules, &rs->rules_cap, rs->nrules + n,
              sizeof(*rs->rules));
  /* Typical map keys are 20-30 octets. */
  if (rv == 0 && n <= SIZE_MAX / 32)
    rv = grow((void **)&rs->arena, &rs->arena_cap, rs->arena_len + n * 24,
              1);
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
  uint32_t h = key_hash(kind, name, len);
  struct slot *s = find_slot(rs, h, kind, name, len);
  if (s->rule != RULE_NONE) {
    prior->rule = s->rule;
    prior->line = s->line;
    prior->key = s->key;
    return 1;
  }
  size_t need = len + 2;
  if (rs->arena_len + need > UINT32_MAX)
    return SMTPOUT_ERR_CONFIG;
  if (grow((void **)&rs->arena, &rs->arena_cap, rs->arena_len + need, 1) != 0)
    return SMTPOUT_ERR_NOMEM;
  char *k = rs->arena + rs->arena_len;
  k[0] = (char)kind;
  memcpy(k + 1, name, len);
  k[1 + len] = '\0';
  s->hash = h;
  s->key = (uint32_t)rs->arena_len;
  s->rule = rule;
  s->line = line;
  rs->arena_len += need;
  rs->count++;
  rs->kinds |= 1u << kind;
  return 0;
}

int ruleset_find(const struct ruleset *rs, int kind, const char *name,
                 size_t len, struct rule_match *match)
{
  if (rs == NULL || !(rs->kinds & (1u << kind)))
    return 0;
  const struct slot *s = find_slot(rs, key_hash(kind, name, len), kind, name,
                                   len);
  if (s->rule == RULE_NONE)
    return 0;
  match->rule = s->rule;
  match->line = s->line;
  match->key = s->key;
  return 1;
}

int ruleset_has_kind(const struct ruleset *rs, int kind)
{
  return rs != NULL && (rs->kinds & (1u << kind)) != 0;
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
  return rs->arena + key + 1;
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
