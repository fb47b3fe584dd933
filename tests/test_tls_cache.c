/*
 * test_tls_cache.c — the cache of verified chains (lib/tls_int.h): what is a
 * hit, what is not, and that it stays bounded.  The handshakes that fill
 * it for real are in tests/integration/test_python.py
 * (test_verified_chain_is_bound_to_its_name).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tls_int.h"

/* A distinct digest-like key for each seed (splitmix64). */
static void key_of(uint8_t key[TLS_CHAIN_KEY_LEN], unsigned seed)
{
  uint64_t x = seed;
  for (unsigned i = 0; i < TLS_CHAIN_KEY_LEN; i += 8) {
    uint64_t z = (x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    memcpy(key + i, &z, 8);
  }
}

static int new_cache(void **st)
{
  struct tls_cache *c;
  if (tls_cache_new(&c) != 0)
    return -1;
  *st = c;
  return 0;
}

static int free_cache(void **st)
{
  tls_cache_free(*st);
  return 0;
}

static void test_verified_chain_hits_until_it_expires(void **st)
{
  struct tls_cache *c = *st;
  uint8_t k[TLS_CHAIN_KEY_LEN];
  int64_t na = -1;
  key_of(k, 1);
  assert_int_equal(tls_cache_verified_get(c, k, 1000, &na, NULL), 0);
  tls_cache_verified_put(c, k, 1000, 5000, NULL);
  assert_int_equal(tls_cache_verified_get(c, k, 1000, &na, NULL), 1);
  assert_int_equal(na, 5000);
  assert_int_equal(tls_cache_verified_get(c, k, 4999, &na, NULL), 1);
  /* The chain's earliest expiry ends it. */
  assert_int_equal(tls_cache_verified_get(c, k, 5000, &na, NULL), 0);
  assert_int_equal(tls_cache_verified_get(c, k, 9000, &na, NULL), 0);
}

static void test_clock_set_back_is_a_miss(void **st)
{
  struct tls_cache *c = *st;
  uint8_t k[TLS_CHAIN_KEY_LEN];
  int64_t na;
  key_of(k, 2);
  tls_cache_verified_put(c, k, 1000, 5000, NULL);
  /* Before the verification the chain may not have been valid yet. */
  assert_int_equal(tls_cache_verified_get(c, k, 999, &na, NULL), 0);
  assert_int_equal(tls_cache_verified_get(c, k, 1000, &na, NULL), 1);
}

static void test_expired_or_unknown_expiry_is_not_kept(void **st)
{
  struct tls_cache *c = *st;
  uint8_t k[TLS_CHAIN_KEY_LEN];
  int64_t na;
  key_of(k, 3);
  tls_cache_verified_put(c, k, 1000, 0, NULL); /* expiry unreadable */
  assert_int_equal(tls_cache_verified_get(c, k, 1000, &na, NULL), 0);
  tls_cache_verified_put(c, k, 1000, 1000, NULL); /* expires now */
  assert_int_equal(tls_cache_verified_get(c, k, 1000, &na, NULL), 0);
}

static void test_only_the_exact_key_hits(void **st)
{
  struct tls_cache *c = *st;
  uint8_t k[TLS_CHAIN_KEY_LEN], other[TLS_CHAIN_KEY_LEN];
  int64_t na;
  key_of(k, 4);
  tls_cache_verified_put(c, k, 1000, 5000, NULL);
  /* Same slot (same first bytes), one bit different at the end. */
  memcpy(other, k, sizeof(other));
  other[TLS_CHAIN_KEY_LEN - 1] ^= 1;
  assert_int_equal(tls_cache_verified_get(c, other, 1000, &na, NULL), 0);
  /* A key that takes the slot evicts the first. */
  tls_cache_verified_put(c, other, 1000, 6000, NULL);
  assert_int_equal(tls_cache_verified_get(c, other, 1000, &na, NULL), 1);
  assert_int_equal(na, 6000);
  assert_int_equal(tls_cache_verified_get(c, k, 1000, &na, NULL), 0);
}

static void test_many_chains_stay_bounded_and_recent_ones_hit(void **st)
{
  struct tls_cache *c = *st;
  uint8_t k[TLS_CHAIN_KEY_LEN];
  int64_t na;
  /* Far more chains than slots: each put replaces at most one entry, so
   * the table never grows, and the last one put is always there. */
  for (unsigned i = 0; i < 50 * TLS_VERIFIED_SLOTS; i++) {
    key_of(k, i);
    tls_cache_verified_put(c, k, 1000, 5000, NULL);
    assert_int_equal(tls_cache_verified_get(c, k, 1000, &na, NULL), 1);
  }
  /* A key never put is not found, however full the table. */
  memset(k, 0xee, sizeof(k));
  assert_int_equal(tls_cache_verified_get(c, k, 1000, &na, NULL), 0);
}

#define WITH_CACHE(t) cmocka_unit_test_setup_teardown(t, new_cache, free_cache)

int main(void)
{
  const struct CMUnitTest tests[] = {
    WITH_CACHE(test_verified_chain_hits_until_it_expires),
    WITH_CACHE(test_clock_set_back_is_a_miss),
    WITH_CACHE(test_expired_or_unknown_expiry_is_not_kept),
    WITH_CACHE(test_only_the_exact_key_hits),
    WITH_CACHE(test_many_chains_stay_bounded_and_recent_ones_hit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
