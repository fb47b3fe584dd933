/*
 * store_file.c — see store_int.h: a key-value file shared by processes,
 * replaced atomically under a lock, read without one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf_int.h"
#include "smtpout/deliver.h"
#include "store_int.h"

#define MAGIC "smtpout-store 1\n"

struct entry {
  uint64_t expires;
  const char *key; /* into the file's bytes, not NUL-terminated */
  size_t keylen;
  const uint8_t *value;
  size_t len;
};

static bool key_ok(const char *key)
{
  size_t n = strlen(key);
  if (n == 0 || n > STORE_KEY_MAX)
    return false;
  for (size_t i = 0; i < n; i++)
    if (key[i] <= ' ' || key[i] > '~')
      return false;
  return true;
}

/* Reads the whole file at `path` into `out` (at most
 * STORE_FILE_MAX_BYTES).  A missing file is empty.  Returns 0,
 * SMTPOUT_ERR_IO or SMTPOUT_ERR_NOMEM; a file over the bound is read as
 * empty (it cannot be ours). */
static int read_file(const char *path, struct buf *out)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return errno == ENOENT ? 0 : SMTPOUT_ERR_IO;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return SMTPOUT_ERR_IO;
  }
  if ((uint64_t)st.st_size > STORE_FILE_MAX_BYTES) {
    close(fd);
    return 0;
  }
  uint8_t chunk[16384];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      close(fd);
      return SMTPOUT_ERR_IO;
    }
    if (n == 0)
      break;
    if (buf_len(out) + (size_t)n > STORE_FILE_MAX_BYTES) {
      /* It grew past the bound while we read: not a file we wrote. */
      buf_free(out);
      close(fd);
      return 0;
    }
    if (buf_append(out, chunk, (size_t)n) != 0) {
      close(fd);
      return SMTPOUT_ERR_NOMEM;
    }
  }
  close(fd);
  return 0;
}

/* A decimal number without leading zeros, ending at `stop`. */
static bool number(const uint8_t **p, const uint8_t *end, char stop,
                   uint64_t max, uint64_t *out)
{
  const uint8_t *s = *p;
  uint64_t v = 0;
  size_t digits = 0;
  while (s < end && *s >= '0' && *s <= '9') {
    if (digits == 1 && v == 0)
      return false; /* a leading zero */
    unsigned d = (unsigned)(*s - '0');
    if (v > (max - d) / 10)
      return false;
    v = v * 10 + d;
    digits++;
    s++;
  }
  if (digits == 0 || s == end || *s != stop)
    return false;
  *p = s + 1;
  *out = v;
  return true;
}

/*
 * Parses the entries of a file's bytes into `e` (at most `max`), in file
 * order.  The first malformed entry ends the list: what came before it is
 * kept, what follows is lost (a corrupt tail cannot be trusted to say
 * where entries begin).  A file without the magic line has no entries.
 */
static size_t parse(const struct buf *b, struct entry *e, size_t max)
{
  size_t n = 0, magic = sizeof(MAGIC) - 1;
  if (buf_len(b) < magic || memcmp(buf_head(b), MAGIC, magic) != 0)
    return 0;
  const uint8_t *p = buf_head(b), *end = p + buf_len(b);
  p += magic;
  while (p < end && n < max) {
    struct entry x;
    uint64_t len;
    if (!number(&p, end, ' ', UINT64_MAX, &x.expires))
      break;
    const uint8_t *k = p;
    while (p < end && *p > ' ' && *p <= '~')
      p++;
    x.key = (const char *)k;
    x.keylen = (size_t)(p - k);
    if (p == end || *p != ' ' || x.keylen == 0 || x.keylen > STORE_KEY_MAX)
      break;
    p++;
    if (!number(&p, end, '\n', SMTPOUT_STORE_VALUE_MAX, &len) ||
        (size_t)(end - p) < len + 1 || p[len] != '\n')
      break;
    x.value = p;
    x.len = (size_t)len;
    p += len + 1;
    e[n++] = x;
  }
  return n;
}

static bool same_key(const struct entry *e, const char *key)
{
  return e->keylen == strlen(key) && memcmp(e->key, key, e->keylen) == 0;
}

int store_file_get(const char *path, const char *key, uint8_t *buf,
                   size_t buflen, size_t *len, uint64_t now)
{
  *len = 0;
  if (!key_ok(key))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  struct buf file = {0};
  int rv = read_file(path, &file);
  if (rv != 0) {
    buf_free(&file);
    return rv;
  }
  struct entry *e = malloc(STORE_FILE_MAX_ENTRIES * sizeof(*e));
  if (e == NULL) {
    buf_free(&file);
    return SMTPOUT_ERR_NOMEM;
  }
  size_t n = parse(&file, e, STORE_FILE_MAX_ENTRIES);
  /* The last entry for a key wins (a writer never leaves two, but a
   * reader does not rely on it). */
  for (size_t i = n; i-- > 0;) {
    if (!same_key(&e[i], key))
      continue;
    if (e[i].expires > now && e[i].len <= buflen) {
      memcpy(buf, e[i].value, e[i].len);
      *len = e[i].len;
    }
    break;
  }
  free(e);
  buf_free(&file);
  return 0;
}

/* Orders entries by expiry, latest first: what a full file keeps. */
static int later_first(const void *a, const void *b)
{
  uint64_t x = ((const struct entry *)a)->expires;
  uint64_t y = ((const struct entry *)b)->expires;
  return x < y ? 1 : x > y ? -1 : 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int append_entry(struct buf *out, uint64_t expires, const char *key,
                        size_t keylen, const uint8_t *value, size_t len)
{
  char head[STORE_KEY_MAX + 64];
  int n = snprintf(head, sizeof(head), "%llu %.*s %zu\n",
                   (unsigned long long)expires, (int)keylen, key, len);
  if (buf_append(out, head, (size_t)n) != 0 ||
      buf_append(out, value, len) != 0 || buf_append(out, "\n", 1) != 0)
    return SMTPOUT_ERR_NOMEM;
  return 0;
}

/* Writes `content` to a new file beside `path` and renames it over
 * `path`: readers see the old file or the new one, never a mix. */
static int replace_file(const char *path, const struct buf *content)
{
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 16);
  if (tmp == NULL)
    return SMTPOUT_ERR_NOMEM;
  snprintf(tmp, plen + 16, "%s.XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    free(tmp);
    return SMTPOUT_ERR_IO;
  }
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  /* Policies are public data; other local tools may read the cache. */
  int rv = fchmod(fd, 0644) == 0 &&
                   write_all(fd, buf_head(content), buf_len(content)) == 0 &&
                   fsync(fd) == 0
               ? 0
               : SMTPOUT_ERR_IO;
  if (close(fd) != 0)
    rv = SMTPOUT_ERR_IO;
  if (rv == 0 && rename(tmp, path) != 0)
    rv = SMTPOUT_ERR_IO;
  if (rv != 0)
    unlink(tmp);
  free(tmp);
  return rv;
}

int store_file_put(const char *path, const char *key, const uint8_t *value,
                   size_t len, uint64_t expires, uint64_t now)
{
  if (!key_ok(key) || len > SMTPOUT_STORE_VALUE_MAX ||
      (value == NULL && len > 0))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  size_t plen = strlen(path);
  char *lock_path = malloc(plen + 6);
  if (lock_path == NULL)
    return SMTPOUT_ERR_NOMEM;
  snprintf(lock_path, plen + 6, "%s.lock", path);
  /* The lock is a file of its own: FILE itself is replaced by every
   * writer, so a lock on it would guard an inode nobody reads next. */
  int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
  free(lock_path);
  if (lock < 0)
    return SMTPOUT_ERR_IO;
  int rv;
  while ((rv = flock(lock, LOCK_EX)) != 0 && errno == EINTR)
    ;
  if (rv != 0) {
    close(lock);
    return SMTPOUT_ERR_IO;
  }

  struct buf file = {0}, out = {0};
  struct entry *e = NULL;
  rv = read_file(path, &file);
  if (rv == SMTPOUT_ERR_IO)
    rv = 0; /* unreadable: replaced by what we write */
  if (rv == 0 && (e = malloc(STORE_FILE_MAX_ENTRIES * sizeof(*e))) == NULL)
    rv = SMTPOUT_ERR_NOMEM;
  if (rv == 0) {
    /* The other entries still current, the latest-expiring first, for as
     * long as they fit beside the new one. */
    size_t n = parse(&file, e, STORE_FILE_MAX_ENTRIES), keep = 0;
    for (size_t i = 0; i < n; i++)
      if (e[i].expires > now && !same_key(&e[i], key))
        e[keep++] = e[i];
    qsort(e, keep, sizeof(*e), later_first);
    size_t bytes = sizeof(MAGIC) - 1 + STORE_KEY_MAX + 64 + len;
    rv = buf_append(&out, MAGIC, sizeof(MAGIC) - 1) != 0 ? SMTPOUT_ERR_NOMEM
                                                          : 0;
    for (size_t i = 0; rv == 0 && i < keep && i + 1 < STORE_FILE_MAX_ENTRIES;
         i++) {
      bytes += e[i].keylen + e[i].len + 64;
      if (bytes > STORE_FILE_MAX_BYTES)
        break;
      rv = append_entry(&out, e[i].expires, e[i].key, e[i].keylen,
                        e[i].value, e[i].len);
    }
    if (rv == 0)
      rv = append_entry(&out, expires, key, strlen(key), value, len);
    if (rv == 0)
      rv = replace_file(path, &out);
  }
  free(e);
  buf_free(&out);
  buf_free(&file);
  flock(lock, LOCK_UN);
  close(lock);
  return rv;
}
