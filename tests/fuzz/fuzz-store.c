/*
 * fuzz-store — libFuzzer target for the driver's file store
 * (lib/store_file.c): whatever a damaged or foreign file holds, reading it
 * never crashes, never returns more than the caller's buffer or an expired
 * entry, and the next writer replaces it with a file that reads back.
 *
 * The input is written as the store file; then a few keys are looked up,
 * one is put, and every key the input named is looked up again:
 *
 *   - a value read back is at most the buffer and at most
 *     SMTPOUT_STORE_VALUE_MAX bytes;
 *   - the value just put reads back exactly, at any later time before
 *     its expiry, and is a miss at its expiry;
 *   - after the put the file starts with the store's magic line.
 *
 * Build and run: see docs/security.md ("Fuzzing").
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtpout/deliver.h"
#include "store_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                         \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "fuzz-store: invariant failed at line %d: %s\n",      \
              __LINE__, #cond);                                             \
      abort();                                                              \
    }                                                                       \
  } while (0)

static char path[256];

static void write_file(const uint8_t *data, size_t size)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  CHECK(fd >= 0);
  while (size > 0) {
    ssize_t w = write(fd, data, size);
    CHECK(w > 0);
    data += w;
    size -= (size_t)w;
  }
  close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static uint8_t buf[SMTPOUT_STORE_VALUE_MAX];
  if (path[0] == '\0') {
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%s/fuzz-store-%ld",
             tmp && *tmp ? tmp : "/tmp", (long)getpid());
  }
  write_file(data, size);
  static const char *const keys[] = {"k", "sts:example.org", "a", "x y"};
  size_t len;
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    for (size_t cap = 0; cap <= 16; cap += 16) {
      int rv = store_file_get(path, keys[i], buf, cap ? cap : sizeof(buf),
                              &len, 5000);
      CHECK(rv == 0 || rv == SMTPOUT_ERR_INVALID_ARGUMENT);
      CHECK(len <= (cap ? cap : sizeof(buf)));
    }
  }
  /* A value made from the input, under a key the input may also hold. */
  size_t vlen = size < 300 ? size : 300;
  CHECK(store_file_put(path, "k", data, vlen, 9000, 5000) == 0);
  CHECK(store_file_get(path, "k", buf, sizeof(buf), &len, 8999) == 0);
  CHECK(len == vlen && (vlen == 0 || memcmp(buf, data, vlen) == 0));
  CHECK(store_file_get(path, "k", buf, sizeof(buf), &len, 9000) == 0);
  CHECK(len == 0);
  FILE *f = fopen(path, "rb");
  CHECK(f != NULL);
  char head[17] = "";
  CHECK(fread(head, 1, 16, f) == 16);
  fclose(f);
  CHECK(memcmp(head, "smtpout-store 1\n", 16) == 0);
  unlink(path);
  char lock[300];
  snprintf(lock, sizeof(lock), "%s.lock", path);
  unlink(lock);
  return 0;
}
