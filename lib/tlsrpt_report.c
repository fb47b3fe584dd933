/*
 * tlsrpt_report.c — the TLS-RPT report builder (RFC 8460 section 4):
 * event lines from any number of files and processes merged into one
 * aggregate report per report domain and UTC day.
 *
 * Events are grouped by report domain, then by policy (type, strings,
 * policy domain, MX patterns), then by failure detail, in hash tables
 * keyed by a canonical encoding of those fields.  Memory is bounded by a
 * byte budget: past it, new groups are refused (counted as dropped) while
 * events for existing groups are still counted.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw_int.h"
#include "names_int.h"
#include "tlsrpt_int.h"
#include "utf8_int.h"
#include "smtpout/common.h"

/* The memory bound: keys and the arrays that point into them. */
#define REPORT_MAX_BYTES (64u << 20)
#define REPORT_MAX_GROUPS (1u << 20)
#define MS_PER_DAY 86400000ULL

/*
 * A hash table of byte-string keys; an item's index is its position in
 * `items`.  Keys are canonical encodings whose fields are NUL-terminated
 * (see policy_key(), detail_key()), so the payloads point into them.
 */
struct keyed {
  char *key;
  size_t len;
  uint64_t hash;
};

struct table {
  struct keyed *items;
  size_t n, cap;
  size_t *slots; /* index + 1; 0 is empty */
  size_t nslots; /* a power of two */
};

struct rpolicy {
  size_t domain;
  int type;
  const char *policy_domain;
  const char **strings; /* then the mx patterns */
  size_t nstrings, nmx;
  uint64_t ok, failed;
};

/* The optional fields of a failure detail, in key (and sort) order. */
enum { D_MX_HOSTNAME, D_RECEIVING_IP, D_SENDING_IP, D_HELO, D_INFO, D_CODE,
       D_COUNT };

struct rdetail {
  size_t policy;
  const char *type;
  const char *f[D_COUNT]; /* NULL when absent */
  uint64_t count;
};

struct smtpout_tlsrpt_report {
  char only[NAME_MAX_LEN]; /* "" for every domain */
  uint64_t day_start;
  uint64_t seed;
  struct table domains, policies, details;
  size_t *domain_order; /* domain indices, sorted by name when !unsorted */
  bool unsorted;
  struct rpolicy *pol; /* parallel to policies.items */
  struct rdetail *det; /* parallel to details.items */
  size_t pol_cap, det_cap;
  size_t bytes;
  uint64_t counters[SMTPOUT_TLSRPT_COUNTER_DROPPED + 1];
  struct buf line; /* the partial line of a stream */
  bool skipping;   /* dropping the rest of an over-long line */
  struct buf out;  /* the last rendering */
};

static uint64_t hash_key(uint64_t seed, const char *s, size_t n)
{
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 0x100000001b3ULL;
  }
  return h ^ (h >> 29);
}

static void table_free(struct table *t)
{
  for (size_t i = 0; i < t->n; i++)
    free(t->items[i].key);
  free(t->items);
  free(t->slots);
  memset(t, 0, sizeof(*t));
}

static int table_rehash(struct table *t, size_t nslots)
{
  size_t *slots = calloc(nslots, sizeof(*slots));
  if (slots == NULL)
    return SMTPOUT_ERR_NOMEM;
  for (size_t i = 0; i < t->n; i++) {
    size_t s = t->items[i].hash & (nslots - 1);
    while (slots[s] != 0)
      s = (s + 1) & (nslots - 1);
    slots[s] = i + 1;
  }
  free(t->slots);
  t->slots = slots;
  t->nslots = nslots;
  return 0;
}

/* Finds `key`; returns its index, or SIZE_MAX. */
static size_t table_find(const struct table *t, const char *key, size_t len,
                         uint64_t h)
{
  if (t->nslots == 0)
    return SIZE_MAX;
  for (size_t s = h & (t->nslots - 1); t->slots[s] != 0;
       s = (s + 1) & (t->nslots - 1)) {
    const struct keyed *k = &t->items[t->slots[s] - 1];
    if (k->hash == h && k->len == len && memcmp(k->key, key, len) == 0)
      return t->slots[s] - 1;
  }
  return SIZE_MAX;
}

/* Adds `key` (copied), known to be absent; its index is t->n - 1. */
static int table_add(struct table *t, const char *key, size_t len, uint64_t h)
{
  if ((t->n + 1) * 2 > t->nslots &&
      table_rehash(t, t->nslots ? t->nslots * 2 : 64) != 0)
    return SMTPOUT_ERR_NOMEM;
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    struct keyed *items = realloc(t->items, cap * sizeof(*items));
    if (items == NULL)
      return SMTPOUT_ERR_NOMEM;
    t->items = items;
    t->cap = cap;
  }
  char *copy = malloc(len);
  if (copy == NULL)
    return SMTPOUT_ERR_NOMEM;
  memcpy(copy, key, len);
  t->items[t->n] = (struct keyed){copy, len, h};
  size_t s = h & (t->nslots - 1);
  while (t->slots[s] != 0)
    s = (s + 1) & (t->nslots - 1);
  t->slots[s] = ++t->n;
  return 0;
}

/* Grows a payload array to hold `n` items of `size` bytes. */
static int grow(void **arr, size_t n, size_t size, size_t *cap)
{
  if (n <= *cap)
    return 0;
  size_t c = *cap ? *cap : 16;
  while (c < n)
    c *= 2;
  void *a = realloc(*arr, c * size);
  if (a == NULL)
    return SMTPOUT_ERR_NOMEM;
  *arr = a;
  *cap = c;
  return 0;
}

/* Days since 1970-01-01 to a civil date (H. Hinnant's algorithm). */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t yy = (int64_t)yoe + era * 400;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int)(yy + (*m <= 2));
}

int smtpout_tlsrpt_report_new(smtpout_tlsrpt_report **preport,
                              const char *report_domain,
                              uint64_t day_start_wall_ms)
{
  if (preport == NULL || day_start_wall_ms % MS_PER_DAY != 0 ||
      day_start_wall_ms > TLSRPT_TIME_MAX)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  smtpout_tlsrpt_report *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return SMTPOUT_ERR_NOMEM;
  if (report_domain != NULL) {
    int rc = name_normalize(report_domain, r->only, sizeof(r->only));
    if (rc != 0) {
      free(r);
      return rc;
    }
  }
  r->day_start = day_start_wall_ms;
  /* Not a secret, only not fixed: colliding keys cannot be prepared
   * ahead for every builder. */
  r->seed = (uint64_t)(uintptr_t)r * 0x9e3779b97f4a7c15ULL;
  *preport = r;
  return 0;
}

void smtpout_tlsrpt_report_free(smtpout_tlsrpt_report *r)
{
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->policies.n; i++)
    free(r->pol[i].strings);
  table_free(&r->domains);
  table_free(&r->policies);
  table_free(&r->details);
  free(r->domain_order);
  free(r->pol);
  free(r->det);
  buf_free(&r->line);
  buf_free(&r->out);
  free(r);
}

/* Appends a field and its NUL; NULL is encoded as "\x01". */
static void key_field(struct jw *w, const char *s)
{
  if (s == NULL)
    jw_raw(w, "\x01", 2);
  else
    jw_raw(w, s, strlen(s) + 1);
}

static void key_count(struct jw *w, size_t n)
{
  char num[24];
  snprintf(num, sizeof(num), "%zu", n);
  key_field(w, num);
}

/* Report domain, policy domain, type, strings, MX patterns. */
static void policy_key(struct jw *w, const char *rdomain,
                       const struct tlsrpt_event *ev)
{
  key_field(w, rdomain);
  key_field(w, ev->policy_domain);
  key_field(w, tlsrpt_policy_type_name(ev->policy_type));
  key_count(w, ev->npolicy_strings);
  for (size_t i = 0; i < ev->npolicy_strings; i++)
    key_field(w, ev->policy_strings[i]);
  key_count(w, ev->nmx_hosts);
  for (size_t i = 0; i < ev->nmx_hosts; i++)
    key_field(w, ev->mx_hosts[i]);
}

/* The policy's index, the result type, then the D_* fields. */
static void detail_key(struct jw *w, size_t policy,
                       const struct tlsrpt_event *ev)
{
  jw_raw(w, (const char *)&policy, sizeof(policy));
  key_field(w, tlsrpt_type_name(ev->result_type));
  key_field(w, ev->receiving_mx_hostname);
  key_field(w, ev->receiving_ip);
  key_field(w, ev->sending_mta_ip);
  key_field(w, ev->receiving_mx_helo);
  key_field(w, ev->additional_information);
  key_field(w, ev->failure_reason_code);
}

/* Walks the NUL-terminated fields of a key. */
static const char *key_next(const char **p)
{
  const char *s = *p;
  *p += strlen(s) + 1;
  return s[0] == '\x01' && s[1] == '\0' ? NULL : s;
}

static bool over_budget(const smtpout_tlsrpt_report *r, size_t more,
                        const struct table *t)
{
  return r->bytes + more > REPORT_MAX_BYTES || t->n >= REPORT_MAX_GROUPS;
}

static int domain_index(smtpout_tlsrpt_report *r, const char *name,
                        size_t *idx)
{
  size_t len = strlen(name) + 1;
  uint64_t h = hash_key(r->seed, name, len);
  *idx = table_find(&r->domains, name, len, h);
  if (*idx != SIZE_MAX)
    return 1;
  if (over_budget(r, len + sizeof(size_t), &r->domains))
    return 0;
  size_t n = r->domains.n, cap = n;
  if (grow((void **)&r->domain_order, n + 1, sizeof(size_t), &cap) != 0 ||
      table_add(&r->domains, name, len, h) != 0)
    return SMTPOUT_ERR_NOMEM;
  /* Sorted when asked for (smtpout_tlsrpt_report_domain()). */
  r->domain_order[n] = n;
  r->unsorted = true;
  r->bytes += len + sizeof(size_t);
  *idx = n;
  return 1;
}

/* The key being built in `w`: its bytes and hash. */
static int key_of(const smtpout_tlsrpt_report *r, const struct jw *w,
                  const char **key, size_t *len, uint64_t *h)
{
  if (w->oom)
    return SMTPOUT_ERR_NOMEM;
  *key = (const char *)buf_head(w->b);
  *len = buf_len(w->b);
  *h = hash_key(r->seed, *key, *len);
  return 0;
}

/*
 * Finds the policy group whose key is in `w`, or makes it: 1, 0 over the
 * budget, or SMTPOUT_ERR_NOMEM.  Everything a new group needs is allocated
 * before it enters the table, so the table and the payloads never
 * disagree.
 */
static int policy_group(smtpout_tlsrpt_report *r, const struct jw *w,
                        size_t domain, const struct tlsrpt_event *ev,
                        size_t *idx)
{
  const char *key;
  size_t len;
  uint64_t h;
  if (key_of(r, w, &key, &len, &h) != 0)
    return SMTPOUT_ERR_NOMEM;
  if ((*idx = table_find(&r->policies, key, len, h)) != SIZE_MAX)
    return 1;
  size_t n = ev->npolicy_strings + ev->nmx_hosts;
  size_t extra = (n + 1) * sizeof(char *) + sizeof(struct rpolicy);
  if (over_budget(r, len + extra, &r->policies))
    return 0;
  const char **strings = calloc(n + 1, sizeof(*strings));
  if (strings == NULL ||
      grow((void **)&r->pol, r->policies.n + 1, sizeof(*r->pol),
           &r->pol_cap) != 0 ||
      table_add(&r->policies, key, len, h) != 0) {
    free(strings);
    return SMTPOUT_ERR_NOMEM;
  }
  *idx = r->policies.n - 1;
  struct rpolicy *p = &r->pol[*idx];
  memset(p, 0, sizeof(*p));
  p->domain = domain;
  p->type = ev->policy_type;
  p->nstrings = ev->npolicy_strings;
  p->nmx = ev->nmx_hosts;
  p->strings = strings;
  const char *k = r->policies.items[*idx].key;
  key_next(&k); /* report domain */
  p->policy_domain = key_next(&k);
  key_next(&k); /* type */
  key_next(&k); /* count */
  for (size_t i = 0; i < p->nstrings; i++)
    p->strings[i] = key_next(&k);
  key_next(&k); /* count */
  for (size_t i = 0; i < p->nmx; i++)
    p->strings[p->nstrings + i] = key_next(&k);
  r->bytes += len + extra;
  return 1;
}

/* The same for a failure detail of policy `policy`. */
static int detail_group(smtpout_tlsrpt_report *r, const struct jw *w,
                        size_t policy, size_t *idx)
{
  const char *key;
  size_t len;
  uint64_t h;
  if (key_of(r, w, &key, &len, &h) != 0)
    return SMTPOUT_ERR_NOMEM;
  if ((*idx = table_find(&r->details, key, len, h)) != SIZE_MAX)
    return 1;
  if (over_budget(r, len + sizeof(struct rdetail), &r->details))
    return 0;
  if (grow((void **)&r->det, r->details.n + 1, sizeof(*r->det),
           &r->det_cap) != 0 ||
      table_add(&r->details, key, len, h) != 0)
    return SMTPOUT_ERR_NOMEM;
  *idx = r->details.n - 1;
  struct rdetail *d = &r->det[*idx];
  memset(d, 0, sizeof(*d));
  d->policy = policy;
  const char *k = r->details.items[*idx].key + sizeof(size_t);
  d->type = key_next(&k);
  for (int i = 0; i < D_COUNT; i++)
    d->f[i] = key_next(&k);
  r->bytes += len + sizeof(struct rdetail);
  return 1;
}

/* Counts `ev` into its groups, made as needed: 1, 0 over the budget, or
 * SMTPOUT_ERR_NOMEM. */
static int merge_groups(smtpout_tlsrpt_report *r, const char *rdomain,
                        const struct tlsrpt_event *ev)
{
  size_t domain, pidx, didx = 0;
  int rc = domain_index(r, rdomain, &domain);
  if (rc <= 0)
    return rc;
  struct buf key = {0};
  struct jw w = {&key, false, true};
  policy_key(&w, rdomain, ev);
  rc = policy_group(r, &w, domain, ev, &pidx);
  if (rc > 0 && !ev->success) {
    buf_clear(&key);
    detail_key(&w, pidx, ev);
    rc = detail_group(r, &w, pidx, &didx);
  }
  buf_free(&key);
  if (rc > 0) {
    if (ev->success) {
      r->pol[pidx].ok++;
    } else {
      r->pol[pidx].failed++;
      r->det[didx].count++;
    }
  }
  return rc;
}

/* Merges one parsed event: 1 counted, 0 not (counters say why). */
static int merge(smtpout_tlsrpt_report *r, const struct tlsrpt_event *ev)
{
  if (ev->time_ms < r->day_start || ev->time_ms - r->day_start >= MS_PER_DAY) {
    r->counters[SMTPOUT_TLSRPT_COUNTER_OTHER_DAY]++;
    return 0;
  }
  const char *rdomain = ev->report_domain ? ev->report_domain
                                          : ev->policy_domain;
  if (r->only[0] != '\0' && strcmp(r->only, rdomain) != 0) {
    r->counters[SMTPOUT_TLSRPT_COUNTER_OTHER_DOMAIN]++;
    return 0;
  }
  int rc = merge_groups(r, rdomain, ev);
  if (rc == 0)
    r->counters[SMTPOUT_TLSRPT_COUNTER_DROPPED]++;
  if (rc > 0)
    r->counters[SMTPOUT_TLSRPT_COUNTER_EVENTS]++;
  return rc;
}

int smtpout_tlsrpt_report_add_event_json(smtpout_tlsrpt_report *r,
                                         const char *json, size_t len)
{
  if (r == NULL || (json == NULL && len > 0))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (len > 0 && json[len - 1] == '\n')
    len--;
  if (len > 0 && json[len - 1] == '\r')
    len--;
  struct tlsrpt_parsed p;
  int rc = tlsrpt_event_parse(json, len, &p, NULL);
  if (rc == 0)
    rc = merge(r, &p.ev);
  else if (rc == SMTPOUT_ERR_SYNTAX)
    r->counters[SMTPOUT_TLSRPT_COUNTER_MALFORMED]++;
  tlsrpt_parsed_clear(&p);
  return rc;
}

/* One complete line of a stream; blank lines are not events. */
static int stream_line(smtpout_tlsrpt_report *r, const char *s, size_t n)
{
  if (n > 0 && s[n - 1] == '\r')
    n--;
  if (n == 0)
    return 0;
  int rc = smtpout_tlsrpt_report_add_event_json(r, s, n);
  return rc == SMTPOUT_ERR_NOMEM ? rc : 0;
}

int smtpout_tlsrpt_report_feed(smtpout_tlsrpt_report *r, const char *data,
                               size_t len)
{
  if (r == NULL || (data == NULL && len > 0))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  const char *end = data + len;
  while (data < end) {
    const char *lf = memchr(data, '\n', (size_t)(end - data));
    size_t n = (size_t)((lf ? lf : end) - data);
    /* The line's bytes, a CR that may end it included, must fit. */
    if (!r->skipping &&
        buf_len(&r->line) + n > SMTPOUT_TLSRPT_EVENT_MAX_BYTES + 1) {
      r->skipping = true;
      r->counters[SMTPOUT_TLSRPT_COUNTER_MALFORMED]++;
      buf_clear(&r->line);
    }
    if (!r->skipping && n > 0) {
      if (lf != NULL && buf_len(&r->line) == 0) {
        int rc = stream_line(r, data, n); /* no copy for whole lines */
        if (rc != 0)
          return rc;
        data = lf + 1;
        continue;
      }
      if (buf_append(&r->line, data, n) != 0)
        return SMTPOUT_ERR_NOMEM;
    }
    if (lf == NULL)
      break;
    if (!r->skipping) {
      int rc = stream_line(r, (const char *)buf_head(&r->line),
                           buf_len(&r->line));
      if (rc != 0)
        return rc;
    }
    buf_clear(&r->line);
    r->skipping = false;
    data = lf + 1;
  }
  return 0;
}

int smtpout_tlsrpt_report_feed_eof(smtpout_tlsrpt_report *r)
{
  if (r == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  int rc = 0;
  if (!r->skipping)
    rc = stream_line(r, (const char *)buf_head(&r->line), buf_len(&r->line));
  buf_clear(&r->line);
  buf_trim(&r->line, 0);
  r->skipping = false;
  return rc;
}

uint64_t smtpout_tlsrpt_report_counter(const smtpout_tlsrpt_report *r,
                                       int which)
{
  if (r == NULL || which < 0 || which > SMTPOUT_TLSRPT_COUNTER_DROPPED)
    return 0;
  return r->counters[which];
}

size_t smtpout_tlsrpt_report_domain_count(const smtpout_tlsrpt_report *r)
{
  return r ? r->domains.n : 0;
}

/* Sorting by key without a context argument: items are pointers into a
 * table's key array, and a detail also carries its policy's rank. */
struct sortee {
  size_t rank;
  const struct keyed *k;
};

static int cmp_sortee(const void *a, const void *b)
{
  const struct sortee *x = a, *y = b;
  if (x->rank != y->rank)
    return x->rank < y->rank ? -1 : 1;
  size_t n = x->k->len < y->k->len ? x->k->len : y->k->len;
  int c = memcmp(x->k->key, y->k->key, n);
  if (c != 0)
    return c;
  return x->k->len < y->k->len ? -1 : x->k->len > y->k->len;
}

static int sort_domains(smtpout_tlsrpt_report *r)
{
  if (!r->unsorted)
    return 0;
  size_t n = r->domains.n;
  struct sortee *v = calloc(n + 1, sizeof(*v));
  if (v == NULL)
    return SMTPOUT_ERR_NOMEM;
  for (size_t i = 0; i < n; i++)
    v[i] = (struct sortee){0, &r->domains.items[i]};
  qsort(v, n, sizeof(*v), cmp_sortee);
  for (size_t i = 0; i < n; i++)
    r->domain_order[i] = (size_t)(v[i].k - r->domains.items);
  free(v);
  r->unsorted = false;
  return 0;
}

const char *smtpout_tlsrpt_report_domain(smtpout_tlsrpt_report *r,
                                         size_t index)
{
  if (r == NULL || index >= r->domains.n || sort_domains(r) != 0)
    return NULL;
  return r->domains.items[r->domain_order[index]].key;
}

static bool render_text_ok(const char *s)
{
  size_t n = s ? strlen(s) : 0;
  return n > 0 && n <= 1024 && utf8_text_ok(s, n);
}

static void render_opt(struct jw *w, const char *key, const char *value)
{
  if (value == NULL)
    return;
  jw_key(w, key);
  jw_str(w, value, strlen(value));
}

static void render_policy(struct jw *w, const smtpout_tlsrpt_report *r,
                          size_t p, const struct sortee *dets, size_t ndets)
{
  const struct rpolicy *pol = &r->pol[p];
  jw_lit(w, "{\"policy\":{");
  w->first = true;
  jw_key(w, "policy-type");
  jw_str(w, tlsrpt_policy_type_name(pol->type),
         strlen(tlsrpt_policy_type_name(pol->type)));
  if (pol->nstrings > 0) {
    jw_key(w, "policy-string");
    jw_lit(w, "[");
    for (size_t i = 0; i < pol->nstrings; i++) {
      if (i > 0)
        jw_lit(w, ",");
      jw_str(w, pol->strings[i], strlen(pol->strings[i]));
    }
    jw_lit(w, "]");
  }
  jw_key(w, "policy-domain");
  jw_str(w, pol->policy_domain, strlen(pol->policy_domain));
  if (pol->nmx > 0) {
    jw_key(w, "mx-host");
    jw_lit(w, "[");
    for (size_t i = 0; i < pol->nmx; i++) {
      const char *m = pol->strings[pol->nstrings + i];
      if (i > 0)
        jw_lit(w, ",");
      jw_str(w, m, strlen(m));
    }
    jw_lit(w, "]");
  }
  jw_lit(w, "},\"summary\":{\"total-successful-session-count\":");
  jw_u64(w, pol->ok);
  jw_lit(w, ",\"total-failure-session-count\":");
  jw_u64(w, pol->failed);
  jw_lit(w, "},\"failure-details\":[");
  for (size_t i = 0; i < ndets; i++) {
    const struct rdetail *d = &r->det[dets[i].k - r->details.items];
    jw_lit(w, i > 0 ? ",{" : "{");
    w->first = true;
    render_opt(w, "result-type", d->type);
    render_opt(w, "sending-mta-ip", d->f[D_SENDING_IP]);
    render_opt(w, "receiving-mx-hostname", d->f[D_MX_HOSTNAME]);
    render_opt(w, "receiving-mx-helo", d->f[D_HELO]);
    render_opt(w, "receiving-ip", d->f[D_RECEIVING_IP]);
    jw_key(w, "failed-session-count");
    jw_u64(w, d->count);
    render_opt(w, "additional-information", d->f[D_INFO]);
    render_opt(w, "failure-reason-code", d->f[D_CODE]);
    jw_lit(w, "}");
  }
  jw_lit(w, "]}");
}

int smtpout_tlsrpt_report_render(smtpout_tlsrpt_report *r, size_t index,
                                 const char *org, const char *contact,
                                 const char *report_id, const char **pjson,
                                 size_t *plen)
{
  if (r == NULL || pjson == NULL || plen == NULL ||
      index >= r->domains.n || !render_text_ok(org) ||
      !render_text_ok(contact) || !render_text_ok(report_id))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (sort_domains(r) != 0)
    return SMTPOUT_ERR_NOMEM;
  size_t domain = r->domain_order[index];

  /* This domain's policies, sorted; then its failure details, grouped by
   * their policy's rank and sorted within. */
  size_t np = 0, nd = 0;
  for (size_t i = 0; i < r->policies.n; i++)
    np += r->pol[i].domain == domain;
  for (size_t i = 0; i < r->details.n; i++)
    nd += r->pol[r->det[i].policy].domain == domain;
  struct sortee *ps = calloc(np + 1, sizeof(*ps));
  struct sortee *ds = calloc(nd + 1, sizeof(*ds));
  size_t *rank = calloc(r->policies.n + 1, sizeof(*rank));
  if (ps == NULL || ds == NULL || rank == NULL) {
    free(ps);
    free(ds);
    free(rank);
    return SMTPOUT_ERR_NOMEM;
  }
  np = 0;
  for (size_t i = 0; i < r->policies.n; i++)
    if (r->pol[i].domain == domain)
      ps[np++] = (struct sortee){0, &r->policies.items[i]};
  qsort(ps, np, sizeof(*ps), cmp_sortee);
  for (size_t i = 0; i < np; i++)
    rank[ps[i].k - r->policies.items] = i;
  nd = 0;
  for (size_t i = 0; i < r->details.n; i++)
    if (r->pol[r->det[i].policy].domain == domain)
      ds[nd++] = (struct sortee){rank[r->det[i].policy],
                                 &r->details.items[i]};
  qsort(ds, nd, sizeof(*ds), cmp_sortee);

  int y;
  unsigned m, d;
  civil_from_days((int64_t)(r->day_start / MS_PER_DAY), &y, &m, &d);
  char date[64];
  snprintf(date, sizeof(date), "%04d-%02u-%02u", y, m, d);

  buf_clear(&r->out);
  struct jw w = {&r->out, false, true};
  jw_lit(&w, "{");
  jw_key(&w, "organization-name");
  jw_str(&w, org, strlen(org));
  jw_key(&w, "date-range");
  jw_lit(&w, "{\"start-datetime\":\"");
  jw_lit(&w, date);
  jw_lit(&w, "T00:00:00Z\",\"end-datetime\":\"");
  jw_lit(&w, date);
  jw_lit(&w, "T23:59:59Z\"}");
  jw_key(&w, "contact-info");
  jw_str(&w, contact, strlen(contact));
  jw_key(&w, "report-id");
  jw_str(&w, report_id, strlen(report_id));
  jw_key(&w, "policies");
  jw_lit(&w, "[");
  size_t di = 0;
  for (size_t i = 0; i < np; i++) {
    size_t start = di;
    while (di < nd && ds[di].rank == i)
      di++;
    if (i > 0)
      jw_lit(&w, ",");
    render_policy(&w, r, (size_t)(ps[i].k - r->policies.items), ds + start,
                  di - start);
  }
  jw_lit(&w, "]}");
  jw_raw(&w, "", 1); /* the NUL, not counted in the length */
  free(ps);
  free(ds);
  free(rank);
  if (w.oom)
    return SMTPOUT_ERR_NOMEM;
  *pjson = (const char *)buf_head(&r->out);
  *plen = buf_len(&r->out) - 1;
  return 0;
}
