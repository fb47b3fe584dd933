/*
 * fuzz-sts — libFuzzer target for MTA-STS (lib/sts.c): the policy parser,
 * the `_mta-sts` TXT record, cache entries and discovery over them.
 *
 * The input is tried as all of them at once: a policy file, TXT records
 * (one per line), a stored cache entry, and the body of a policy fetch.
 * Besides "no crash, no leak, no undefined behaviour":
 *
 *   - an accepted policy means what it says: a known mode, max_age in
 *     range, an mx pattern unless the mode is none, every pattern a
 *     lower-case A-label name (with "*." for a wildcard) that the MX check
 *     matches, and a cache entry holding it reads back the same;
 *   - an accepted TXT record starts with v=STSv1 and has a 1-32
 *     alphanumeric id;
 *   - discovery ends in a consistent state, and any entry it asks to store
 *     reads back.
 *
 * Build and run: see docs/security.md ("Fuzzing").
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sts_int.h"
#include "tls_int.h"
#include "smtpout/smtpout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                         \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "fuzz-sts: invariant failed at line %d: %s\n",        \
              __LINE__, #cond);                                             \
      abort();                                                              \
    }                                                                       \
  } while (0)

#define NOW 1700000000000ULL

static void check_pattern(const smtpout_sts_policy *p, const char *pat)
{
  const char *name = pat[0] == '*' ? pat + 2 : pat;
  if (pat[0] == '*')
    CHECK(pat[1] == '.');
  size_t n = strlen(name);
  CHECK(n > 0 && n <= 253 && name[n - 1] != '.');
  CHECK(strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-.") == n);
  char host[300];
  if (pat[0] == '*')
    snprintf(host, sizeof(host), "x.%s", name);
  else
    snprintf(host, sizeof(host), "%s", name);
  int rc = smtpout_sts_policy_mx_allowed(p, host);
  /* "x." may push a 252-253 octet name over the limit. */
  CHECK(rc == 1 || (pat[0] == '*' && rc == SMTPOUT_ERR_BAD_NAME));
}

static void fuzz_policy(const uint8_t *data, size_t size)
{
  smtpout_sts_policy *p = NULL;
  char err[256];
  err[0] = '\0';
  int rc = smtpout_sts_policy_parse(&p, (const char *)data, size, err,
                                    sizeof(err));
  if (rc != 0) {
    CHECK(rc == SMTPOUT_ERR_SYNTAX && p == NULL && err[0] != '\0');
    return;
  }
  int mode = smtpout_sts_policy_mode(p);
  CHECK(smtpout_sts_mode_name(mode) != NULL);
  CHECK(smtpout_sts_policy_max_age(p) <= SMTPOUT_STS_MAX_AGE_MAX);
  CHECK(mode == SMTPOUT_STS_MODE_NONE || smtpout_sts_policy_mx_count(p) > 0);
  for (size_t i = 0; i < smtpout_sts_policy_mx_count(p); i++)
    check_pattern(p, smtpout_sts_policy_mx(p, i));
  const char *const *lines;
  const size_t *lens;
  CHECK(sts_policy_lines(p, &lines, &lens) >= 3);

  struct sts_cache_entry e, back;
  memset(&e, 0, sizeof(e));
  strcpy(e.id, "fz1");
  e.fetched_ms = NOW;
  e.expires_ms = NOW + (uint64_t)smtpout_sts_policy_max_age(p) * 1000;
  e.policy = p;
  struct buf b = {0};
  CHECK(sts_cache_entry_write(&e, &b) == 0);
  const char *why = NULL;
  CHECK(sts_cache_entry_parse(&back, buf_head(&b), buf_len(&b), &why) == 0);
  CHECK(strcmp(back.id, "fz1") == 0 && back.expires_ms == e.expires_ms);
  CHECK(smtpout_sts_policy_mode(back.policy) == mode);
  CHECK(smtpout_sts_policy_mx_count(back.policy) ==
        smtpout_sts_policy_mx_count(p));
  sts_cache_entry_clear(&back);
  buf_free(&b);
  smtpout_sts_policy_free(p);
}

static void fuzz_txt(const uint8_t *data, size_t size)
{
  const char *recs[16];
  size_t lens[16], n = 0;
  const char *s = (const char *)data, *end = s + size;
  while (s <= end && n < 16) {
    const char *lf = memchr(s, '\n', (size_t)(end - s));
    recs[n] = s;
    lens[n] = (size_t)((lf ? lf : end) - s);
    n++;
    if (lf == NULL)
      break;
    s = lf + 1;
  }
  char id[STS_ID_MAX + 1];
  const char *why = NULL;
  if (sts_txt_parse((const char *)data, size, id, &why) == 0) {
    CHECK(size >= 7 && memcmp(data, "v=STSv1", 7) == 0);
    size_t idn = strlen(id);
    CHECK(idn >= 1 && idn <= STS_ID_MAX);
  }
  int st = sts_txt_select(recs, lens, n, id, &why);
  CHECK(st == STS_TXT_FOUND || st == STS_TXT_ABSENT || st == STS_TXT_UNUSABLE);
}

static void fuzz_discovery(const uint8_t *data, size_t size)
{
  struct sts_discovery d;
  CHECK(sts_discovery_init(&d, "example.org", 300000) == 0);
  CHECK(sts_discovery_cache(&d, data, size) == 0);
  const char *txt[] = {"v=STSv1; id=fz2"};
  const size_t lens[] = {15};
  CHECK(sts_discovery_txt(&d, false, txt, lens, 1) == 0);
  int st = sts_discovery_next(&d, NOW);
  if (st == STS_STATE_NEED_FETCH)
    st = sts_discovery_fetched(&d, STS_FETCH_OK, 200, "text/plain", data,
                               size, NOW);
  CHECK(st == STS_STATE_DONE);
  const smtpout_sts_policy *p = sts_discovery_policy(&d);
  CHECK((p != NULL) == (sts_discovery_source(&d) != STS_SOURCE_NONE));
  CHECK((p != NULL) == (sts_discovery_policy_id(&d)[0] != '\0'));
  const uint8_t *put;
  size_t plen;
  uint64_t expires;
  if (sts_discovery_cache_put(&d, &put, &plen, &expires)) {
    struct sts_cache_entry e;
    const char *why = NULL;
    CHECK(sts_cache_entry_parse(&e, put, plen, &why) == 0);
    sts_cache_entry_clear(&e);
  }
  sts_discovery_clear(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fuzz_policy(data, size);
  fuzz_txt(data, size);
  fuzz_discovery(data, size);
  return 0;
}
