/*
 * redis-store.c — see redis-store.h.  hiredis, blocking, one connection
 * per store; a store is used by one thread at a time, like the delivery it
 * serves.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <smtpout/smtpout.h>

#include "redis-store.h"

#define PREFIX "smtpout:"
#define EVENTS_KEY PREFIX "tlsrpt:events"
/* How long a lease lasts if its holder never puts nor releases (it died):
 * above the MTA-STS fetch timeout (60 s), so a slow fetch keeps it. */
#define LEASE_MS 90000
/* How often a waiting process looks again. */
#define POLL_MS 50
/* Leases one delivery can hold: one per domain it routes to. */
#define MAX_LEASES 16

struct redis_store {
  redisContext *c;
  char token[64]; /* this process's lease value */
  char *leases[MAX_LEASES];
  size_t nleases;
  unsigned waits_served;
};

static uint64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct redis_store *redis_store_open(const char *where, const char **err)
{
  struct redis_store *rs = calloc(1, sizeof(*rs));
  if (rs == NULL) {
    *err = "out of memory";
    return NULL;
  }
  struct timeval tv = {10, 0};
  if (strncmp(where, "unix:", 5) == 0) {
    rs->c = redisConnectUnixWithTimeout(where + 5, tv);
  } else {
    char host[256];
    const char *colon = strrchr(where, ':');
    if (colon == NULL || (size_t)(colon - where) >= sizeof(host)) {
      *err = "expected unix:PATH or HOST:PORT";
      free(rs);
      return NULL;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - where), where);
    rs->c = redisConnectWithTimeout(host, atoi(colon + 1), tv);
  }
  if (rs->c == NULL || rs->c->err) {
    *err = "cannot connect to Redis";
    if (rs->c)
      redisFree(rs->c);
    free(rs);
    return NULL;
  }
  redisSetTimeout(rs->c, tv);
  snprintf(rs->token, sizeof(rs->token), "%ld-%llu", (long)getpid(),
           (unsigned long long)wall_ms());
  return rs;
}

void redis_store_close(struct redis_store *rs)
{
  if (rs == NULL)
    return;
  redis_store_release(rs);
  redisFree(rs->c);
  free(rs);
}

/* GET PREFIX KEY into buf: 1 found, 0 absent (or too large), -1 error. */
static int get_value(struct redis_store *rs, const char *key, uint8_t *buf,
                     size_t buflen, size_t *plen)
{
  redisReply *r = redisCommand(rs->c, "GET " PREFIX "%s", key);
  if (r == NULL)
    return -1;
  int found = 0;
  if (r->type == REDIS_REPLY_STRING && r->len > 0 && (size_t)r->len <= buflen) {
    memcpy(buf, r->str, (size_t)r->len);
    *plen = (size_t)r->len;
    found = 1;
  } else if (r->type == REDIS_REPLY_ERROR) {
    found = -1;
  }
  freeReplyObject(r);
  return found;
}

/* SET PREFIX lease:KEY TOKEN NX PX LEASE_MS: 1 taken, 0 held by another,
 * -1 error. */
static int take_lease(struct redis_store *rs, const char *key)
{
  redisReply *r = redisCommand(rs->c, "SET " PREFIX "lease:%s %s NX PX %d",
                               key, rs->token, LEASE_MS);
  if (r == NULL)
    return -1;
  int taken = r->type == REDIS_REPLY_STATUS ? 1
              : r->type == REDIS_REPLY_NIL  ? 0
                                            : -1;
  freeReplyObject(r);
  if (taken == 1 && rs->nleases < MAX_LEASES)
    rs->leases[rs->nleases++] = strdup(key);
  return taken;
}

static int lease_held(struct redis_store *rs, const char *key)
{
  redisReply *r = redisCommand(rs->c, "EXISTS " PREFIX "lease:%s", key);
  if (r == NULL)
    return -1;
  int held = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
  freeReplyObject(r);
  return held;
}

/* Deletes our lease on `key`, only if it is still ours (a lease that
 * expired may have been taken by another process since). */
static void drop_lease(struct redis_store *rs, const char *key)
{
  static const char script[] =
      "if redis.call('GET', KEYS[1]) == ARGV[1] then "
      "return redis.call('DEL', KEYS[1]) end return 0";
  char lkey[512];
  snprintf(lkey, sizeof(lkey), PREFIX "lease:%s", key);
  redisReply *r = redisCommand(rs->c, "EVAL %s 1 %s %s", script, lkey,
                               rs->token);
  if (r)
    freeReplyObject(r);
  for (size_t i = 0; i < rs->nleases; i++) {
    if (strcmp(rs->leases[i], key) == 0) {
      free(rs->leases[i]);
      rs->leases[i] = rs->leases[--rs->nleases];
      break;
    }
  }
}

int redis_store_get(const char *key, uint8_t *buf, size_t buflen,
                    size_t *plen, void *user_data)
{
  struct redis_store *rs = user_data;
  *plen = 0;
  int found = get_value(rs, key, buf, buflen, plen);
  if (found != 0)
    return found > 0 ? 0 : -1;
  int taken = take_lease(rs, key);
  if (taken != 0)
    return taken > 0 ? 0 : -1; /* ours: we fetch (a miss) */
  /* Another process is fetching this policy: wait for its value, or for
   * its lease to end (it fetched nothing, or died). */
  uint64_t deadline = mono_ms() + LEASE_MS;
  while (mono_ms() < deadline) {
    struct timespec pause = {0, POLL_MS * 1000000L};
    nanosleep(&pause, NULL);
    found = get_value(rs, key, buf, buflen, plen);
    if (found > 0) {
      rs->waits_served++;
      return 0;
    }
    if (found < 0 || lease_held(rs, key) != 1)
      break;
  }
  *plen = 0;
  return 0;
}

int redis_store_put(const char *key, const uint8_t *value, size_t len,
                    uint64_t expires, void *user_data)
{
  struct redis_store *rs = user_data;
  uint64_t now = wall_ms();
  int rv = 0;
  if (expires > now) {
    redisReply *r = redisCommand(rs->c, "SET " PREFIX "%s %b PX %llu", key,
                                 value, len,
                                 (unsigned long long)(expires - now));
    rv = r != NULL && r->type == REDIS_REPLY_STATUS ? 0 : -1;
    if (r)
      freeReplyObject(r);
  }
  drop_lease(rs, key);
  return rv;
}

int redis_store_event(const char *json, size_t len, void *user_data)
{
  struct redis_store *rs = user_data;
  redisReply *r = redisCommand(rs->c, "RPUSH %s %b", EVENTS_KEY, json, len);
  int rv = r != NULL && r->type == REDIS_REPLY_INTEGER ? 0 : -1;
  if (r)
    freeReplyObject(r);
  return rv;
}

void redis_store_release(struct redis_store *rs)
{
  while (rs->nleases > 0) {
    char *key = strdup(rs->leases[rs->nleases - 1]);
    if (key == NULL)
      return;
    drop_lease(rs, key);
    free(key);
  }
}

int redis_store_print_events(struct redis_store *rs, FILE *out)
{
  redisReply *r = redisCommand(rs->c, "LRANGE %s 0 -1", EVENTS_KEY);
  int rv = r != NULL && r->type == REDIS_REPLY_ARRAY ? 0 : -1;
  for (size_t i = 0; rv == 0 && i < r->elements; i++)
    fprintf(out, "%.*s\n", (int)r->element[i]->len, r->element[i]->str);
  if (r)
    freeReplyObject(r);
  return rv;
}

unsigned redis_store_waits_served(const struct redis_store *rs)
{
  return rs->waits_served;
}
