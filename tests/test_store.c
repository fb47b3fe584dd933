/*
 * test_store — the blocking driver's file store (lib/store_file.c): what
 * a put leaves is what a get finds, expiry, the bounds, corrupt files,
 * and writers in several processes at once losing nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "smtpout/deliver.h"
#include "store_int.h"

struct scratch {
  char dir[256];
  char path[300];
};

static int setup(void **state)
{
  struct scratch *s = calloc(1, sizeof(*s));
  const char *base = getenv("TMPDIR");
  snprintf(s->dir, sizeof(s->dir), "%s/smtpout-store-XXXXXX",
           base && *base ? base : "/tmp");
  if (mkdtemp(s->dir) == NULL)
    return -1;
  snprintf(s->path, sizeof(s->path), "%s/sts.cache", s->dir);
  *state = s;
  return 0;
}

static int teardown(void **state)
{
  struct scratch *s = *state;
  char cmd[400];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
  if (system(cmd) != 0)
    return -1;
  free(s);
  return 0;
}

static void put(const char *path, const char *key, const char *value,
                uint64_t expires, uint64_t now)
{
  assert_int_equal(store_file_put(path, key, (const uint8_t *)value,
                                  strlen(value), expires, now),
                   0);
}

/* The value under `key` at `now` as a string ("" for a miss). */
static const char *get(const char *path, const char *key, uint64_t now)
{
  static uint8_t buf[SMTPOUT_STORE_VALUE_MAX + 1];
  size_t len = 99;
  assert_int_equal(store_file_get(path, key, buf, SMTPOUT_STORE_VALUE_MAX,
                                  &len, now),
                   0);
  buf[len] = '\0';
  return (const char *)buf;
}

static void test_put_then_get_finds_the_value(void **state)
{
  struct scratch *s = *state;
  assert_string_equal(get(s->path, "sts:a.example", 1000), "");
  put(s->path, "sts:a.example", "v=1; id=1\nversion: STSv1\n", 5000, 1000);
  put(s->path, "sts:b.example", "b", 5000, 1000);
  assert_string_equal(get(s->path, "sts:a.example", 1000),
                      "v=1; id=1\nversion: STSv1\n");
  assert_string_equal(get(s->path, "sts:b.example", 1000), "b");
  /* Replaced, not repeated. */
  put(s->path, "sts:a.example", "second", 6000, 1000);
  assert_string_equal(get(s->path, "sts:a.example", 1000), "second");
  struct stat st;
  assert_int_equal(stat(s->path, &st), 0);
  FILE *f = fopen(s->path, "r");
  char text[512];
  size_t n = fread(text, 1, sizeof(text) - 1, f);
  fclose(f);
  text[n] = '\0';
  assert_string_equal(text, "smtpout-store 1\n"
                            "5000 sts:b.example 1\nb\n"
                            "6000 sts:a.example 6\nsecond\n");
  /* Binary values, a newline and a NUL included, come back whole. */
  const uint8_t bin[] = {0, '\n', 0xff, 'x', '\n'};
  assert_int_equal(store_file_put(s->path, "bin", bin, sizeof(bin), 9000,
                                  1000),
                   0);
  uint8_t out[16];
  size_t len;
  assert_int_equal(store_file_get(s->path, "bin", out, sizeof(out), &len,
                                  1000),
                   0);
  assert_int_equal(len, sizeof(bin));
  assert_memory_equal(out, bin, sizeof(bin));
}

static void test_expired_entries_are_misses_and_dropped(void **state)
{
  struct scratch *s = *state;
  put(s->path, "old", "x", 2000, 1000);
  put(s->path, "new", "y", 9000, 1000);
  assert_string_equal(get(s->path, "old", 1999), "x");
  assert_string_equal(get(s->path, "old", 2000), "");
  /* The next writer drops it. */
  put(s->path, "other", "z", 9000, 3000);
  FILE *f = fopen(s->path, "r");
  char text[512];
  size_t n = fread(text, 1, sizeof(text) - 1, f);
  fclose(f);
  text[n] = '\0';
  assert_null(strstr(text, " old "));
  assert_non_null(strstr(text, " new "));
}

static void test_bad_keys_and_values_are_refused(void **state)
{
  struct scratch *s = *state;
  uint8_t buf[8];
  size_t len;
  char longkey[STORE_KEY_MAX + 2];
  memset(longkey, 'k', sizeof(longkey) - 1);
  longkey[sizeof(longkey) - 1] = '\0';
  const char *bad[] = {"", "a b", "a\nb", longkey};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(store_file_put(s->path, bad[i], buf, 1, 9, 1),
                     SMTPOUT_ERR_INVALID_ARGUMENT);
    assert_int_equal(store_file_get(s->path, bad[i], buf, 8, &len, 1),
                     SMTPOUT_ERR_INVALID_ARGUMENT);
  }
  uint8_t *big = calloc(1, SMTPOUT_STORE_VALUE_MAX + 1);
  assert_int_equal(store_file_put(s->path, "k", big,
                                  SMTPOUT_STORE_VALUE_MAX + 1, 9, 1),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(store_file_put(s->path, "k", big, SMTPOUT_STORE_VALUE_MAX,
                                  9, 1),
                   0);
  /* A value larger than the caller's buffer is a miss, not a cut. */
  assert_int_equal(store_file_get(s->path, "k", buf, sizeof(buf), &len, 1),
                   0);
  assert_int_equal(len, 0);
  free(big);
}

static void write_raw(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* A file someone else wrote, or a write cut short: the entries before the
 * damage are read, nothing after it, nothing crashes; the next writer
 * replaces the file with a good one. */
static void test_corrupt_files_are_misses(void **state)
{
  struct scratch *s = *state;
  static const char *const cases[] = {
    "",
    "not a store\n5000 k 1\nv\n",
    "smtpout-store 2\n5000 k 1\nv\n",
    "smtpout-store 1\n5000 k 5\nv\n",       /* shorter than it says */
    "smtpout-store 1\n05000 k 1\nv\n",      /* leading zero */
    "smtpout-store 1\n5000 k 1\nvX",        /* no LF after the value */
    "smtpout-store 1\n5000  k 1\nv\n",      /* two spaces */
    "smtpout-store 1\n99999999999999999999 k 1\nv\n", /* overflow */
    "smtpout-store 1\n5000 k 70000\nv\n",   /* over the value bound */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    write_raw(s->path, cases[i]);
    assert_string_equal(get(s->path, "k", 1000), "");
  }
  write_raw(s->path, "smtpout-store 1\n5000 good 2\nok\n5000 k 9\nbroken");
  assert_string_equal(get(s->path, "good", 1000), "ok");
  assert_string_equal(get(s->path, "k", 1000), "");
  put(s->path, "k", "fixed", 5000, 1000);
  assert_string_equal(get(s->path, "k", 1000), "fixed");
  assert_string_equal(get(s->path, "good", 1000), "ok");
  /* A directory where the file should be: get says so, put fails without
   * touching anything. */
  char dir[400];
  snprintf(dir, sizeof(dir), "%s/d", s->dir);
  assert_int_equal(mkdir(dir, 0700), 0);
  uint8_t buf[8];
  size_t len;
  assert_int_equal(store_file_get(dir, "k", buf, sizeof(buf), &len, 1),
                   SMTPOUT_ERR_IO);
  assert_int_equal(store_file_put(dir, "k", buf, 1, 9, 1), SMTPOUT_ERR_IO);
}

/* At most STORE_FILE_MAX_ENTRIES entries: a full file loses the entry
 * that expires first to the new one. */
static void test_the_file_is_bounded(void **state)
{
  struct scratch *s = *state;
  FILE *f = fopen(s->path, "w");
  assert_non_null(f);
  fputs("smtpout-store 1\n", f);
  /* Written in reverse, so that file order is not expiry order. */
  for (unsigned i = STORE_FILE_MAX_ENTRIES; i-- > 0;)
    fprintf(f, "%u k%u 1\nv\n", 100000 + i, i);
  fclose(f);
  assert_string_equal(get(s->path, "k0", 1), "v");
  put(s->path, "new", "n", 200000, 1);
  assert_string_equal(get(s->path, "new", 1), "n");
  assert_string_equal(get(s->path, "k0", 1), "");
  assert_string_equal(get(s->path, "k1", 1), "v");
  char key[32];
  snprintf(key, sizeof(key), "k%u", STORE_FILE_MAX_ENTRIES - 1);
  assert_string_equal(get(s->path, key, 1), "v");
  /* A file over the byte bound is not ours: read as empty, and replaced
   * by the next writer. */
  f = fopen(s->path, "w");
  fputs("smtpout-store 1\n9000 big 1\nv\n", f);
  assert_int_equal(ftruncate(fileno(f), STORE_FILE_MAX_BYTES + 1), 0);
  fclose(f);
  assert_string_equal(get(s->path, "big", 1), "");
  put(s->path, "after", "a", 9000, 1);
  struct stat st;
  assert_int_equal(stat(s->path, &st), 0);
  assert_true(st.st_size < 100);
}

/* Four processes put 50 keys each at the same time: the lock makes every
 * one of the 200 survive (without it, a writer would replace the file
 * with a copy that misses the others' latest entries). */
static void test_concurrent_writers_lose_nothing(void **state)
{
  struct scratch *s = *state;
  enum { WRITERS = 4, KEYS = 50 };
  pid_t pids[WRITERS];
  for (int w = 0; w < WRITERS; w++) {
    pids[w] = fork();
    assert_true(pids[w] >= 0);
    if (pids[w] == 0) {
      char key[32];
      for (int k = 0; k < KEYS; k++) {
        snprintf(key, sizeof(key), "w%d-k%d", w, k);
        if (store_file_put(s->path, key, (const uint8_t *)key, strlen(key),
                           9000, 1) != 0)
          _exit(1);
      }
      _exit(0);
    }
  }
  for (int w = 0; w < WRITERS; w++) {
    int status;
    assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  char key[32];
  for (int w = 0; w < WRITERS; w++)
    for (int k = 0; k < KEYS; k++) {
      snprintf(key, sizeof(key), "w%d-k%d", w, k);
      assert_string_equal(get(s->path, key, 1), key);
    }
  /* No temporary file is left behind. */
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "test $(ls '%s' | wc -l) -eq 2", s->dir);
  assert_int_equal(system(cmd), 0); /* sts.cache and sts.cache.lock */
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_put_then_get_finds_the_value, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(
        test_expired_entries_are_misses_and_dropped, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad_keys_and_values_are_refused,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_corrupt_files_are_misses, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_the_file_is_bounded, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_concurrent_writers_lose_nothing,
                                    setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
