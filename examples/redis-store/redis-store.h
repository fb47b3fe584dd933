/*
 * redis-store.h — smtpout's shared state in Redis: the MTA-STS cache
 * behind smtpout_delivery_set_store(), and TLS-RPT events behind
 * smtpout_delivery_set_tlsrpt_events(), for every process and machine of
 * a sending cluster (docs/routing.md, "The store").
 *
 *   struct redis_store *rs = redis_store_open("unix:/run/redis.sock", &err);
 *   smtpout_delivery_set_store(d, redis_store_get, redis_store_put, rs);
 *   smtpout_delivery_set_tlsrpt_events(d, redis_store_event, rs);
 *   smtpout_delivery_run(d);
 *   redis_store_release(rs);   (after each delivery)
 *   redis_store_close(rs);
 *
 * Keys: the library's own ("sts:example.org") under a prefix
 * ("smtpout:"), with Redis expiring each at the time the library gives;
 * events are appended to one list (RPUSH "smtpout:tlsrpt:events"), from
 * which a report job takes them (LRANGE, or LMOVE to a day's list).
 *
 * A miss takes a lease ("smtpout:lease:sts:example.org", SET NX with a
 * time to live) before it says "miss": the process that gets the lease
 * fetches the policy, and the others, missing at the same moment, wait
 * (redis_store_get() blocks, polling) until its value arrives or its
 * lease ends, so that a cluster fetches a new domain's policy once, not
 * once per process.  The lease ends when the value is put, when the
 * delivery ends (redis_store_release()), or after its time to live.
 */
#ifndef REDIS_STORE_H
#define REDIS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct redis_store;

/* Connects to `where`: "unix:PATH" or "HOST:PORT".  NULL on failure, with
 * *err a static English reason. */
struct redis_store *redis_store_open(const char *where, const char **err);
void redis_store_close(struct redis_store *rs);

/* smtpout_store_get_callback: GET, or the lease and the wait (above). */
int redis_store_get(const char *key, uint8_t *buf, size_t buflen,
                    size_t *plen, void *user_data);
/* smtpout_store_put_callback: SET with the expiry, and the lease let go. */
int redis_store_put(const char *key, const uint8_t *value, size_t len,
                    uint64_t expires, void *user_data);
/* smtpout_tlsrpt_event_callback: RPUSH to the events list. */
int redis_store_event(const char *json, size_t len, void *user_data);

/* Lets go of every lease this store still holds (a delivery that missed
 * and then did not fetch, or whose fetch failed). */
void redis_store_release(struct redis_store *rs);

/* Writes the events list to `out`, one event per line (what
 * smtpout-tlsrpt --events reads).  0, or -1 when Redis failed. */
int redis_store_print_events(struct redis_store *rs, FILE *out);

/* The number of waits that ended with another process's value (for tests
 * and logs). */
unsigned redis_store_waits_served(const struct redis_store *rs);

#endif
