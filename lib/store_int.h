/*
 * store_int.h — the blocking driver's default store: a file of key-value
 * entries that several processes share (the MTA-STS cache,
 * [queue.outbound.mta-sts] cache = FILE; docs/routing.md, "The store").
 *
 * The file is replaced, never changed in place: a writer takes an
 * exclusive lock on FILE.lock (flock), reads FILE, writes the new content
 * to a temporary file in the same directory, fsyncs it and renames it over
 * FILE.  A reader opens FILE and reads it without a lock: it sees either
 * the old content or the new, whole.  Two writers never lose each other's
 * entries (the lock), a crash mid-write leaves the old file (the rename),
 * and a corrupt file is a miss, never a crash.
 *
 *   smtpout-store 1 LF
 *   then per entry:  EXPIRES SP KEY SP LENGTH LF VALUE LF
 *
 * EXPIRES is wall-clock milliseconds since the epoch (when the entry may
 * be dropped), KEY 1 to STORE_KEY_MAX printable ASCII characters without
 * a space, LENGTH the value's size in bytes (at most
 * SMTPOUT_STORE_VALUE_MAX), VALUE any bytes.  Numbers are decimal without
 * leading zeros.  The file is bounded: at most STORE_FILE_MAX_ENTRIES
 * entries and STORE_FILE_MAX_BYTES bytes; a writer drops expired entries,
 * then those that expire first, to stay within.
 *
 * Reading the whole file per lookup is the price of a store without a
 * daemon; a deployment with many domains or machines keeps the cache in
 * its own store (smtpout_delivery_set_store(); examples/redis-store/).
 */
#ifndef SMTPOUT_STORE_INT_H
#define SMTPOUT_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#define STORE_KEY_MAX 255
#define STORE_FILE_MAX_ENTRIES 4096
#define STORE_FILE_MAX_BYTES (16u << 20)

/*
 * Looks `key` up in the file at `path`, ignoring an entry expired at
 * `now` (wall-clock ms).  On a hit copies the value into `buf` (`buflen`
 * bytes) and stores its length in *len; on a miss (no file, no entry, an
 * expired or oversized one, a corrupt file) *len is 0.  Returns 0, or
 * SMTPOUT_ERR_IO when the file exists but cannot be read,
 * SMTPOUT_ERR_INVALID_ARGUMENT for a key that cannot be stored,
 * SMTPOUT_ERR_NOMEM.
 */
int store_file_get(const char *path, const char *key, uint8_t *buf,
                   size_t buflen, size_t *len, uint64_t now);

/*
 * Stores `value` (`len` bytes) under `key`, replacing what is there, to be
 * dropped after `expires`; entries expired at `now` are dropped on the
 * way.  Returns 0, SMTPOUT_ERR_IO (the lock, the temporary file or the
 * rename failed: the file is unchanged), SMTPOUT_ERR_INVALID_ARGUMENT (a
 * key that cannot be stored, a value over SMTPOUT_STORE_VALUE_MAX),
 * SMTPOUT_ERR_NOMEM.
 */
int store_file_put(const char *path, const char *key, const uint8_t *value,
                   size_t len, uint64_t expires, uint64_t now);

#endif
