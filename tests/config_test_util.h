/*
 * config_test_util.h — helpers shared by the configuration tests:
 * loading INI text, checking the reported problems line by line, and a
 * scratch directory for files (maps, CA files, configs).
 */
#ifndef SMTPOUT_CONFIG_TEST_UTIL_H
#define SMTPOUT_CONFIG_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtpout/smtpout.h"

#define ERRBUF_SIZE 16384

/* Loads `text` as "t.ini"; fails the test (with the errors) otherwise. */
static inline smtpout_config *load_ok(const char *text)
{
  static char err[ERRBUF_SIZE];
  smtpout_config *c = NULL;
  int rv = smtpout_config_load_string(&c, text, "t.ini", err, sizeof(err));
  if (rv != 0)
    fail_msg("load failed (%s):\n%s", smtpout_strerror(rv), err);
  return c;
}

/*
 * Checks that loading `text` (as "t.ini") fails with SMTPOUT_ERR_CONFIG
 * and reports exactly the given problems, in order: each reported line
 * must start with the corresponding expected string (give the whole
 * message, or "t.ini:LINE: " and its beginning).  NULL ends the list.
 */
static inline void check_problems(smtpout_config *c, int rv, const char *err,
                                  const char *const *want)
{
  if (rv != SMTPOUT_ERR_CONFIG)
    fail_msg("expected SMTPOUT_ERR_CONFIG, got %d (%s)", rv,
             smtpout_strerror(rv));
  assert_null(c);
  const char *line = err;
  size_t i = 0;
  for (; want[i] != NULL; i++) {
    const char *nl = strchr(line, '\n');
    if (nl == NULL)
      fail_msg("problem %zu missing; expected \"%s\"; got:\n%s", i + 1,
               want[i], err);
    if (strncmp(line, want[i], strlen(want[i])) != 0)
      fail_msg("problem %zu: expected \"%s\"; got:\n%s", i + 1, want[i], err);
    line = nl + 1;
  }
  if (*line != '\0')
    fail_msg("unexpected problems after %zu:\n%s", i, line);
}

#define expect_problems(text, ...)                                          \
  do {                                                                      \
    static const char *const want_[] = {__VA_ARGS__, NULL};                 \
    char err_[ERRBUF_SIZE];                                                 \
    smtpout_config *c_ = NULL;                                              \
    int rv_ = smtpout_config_load_string(&c_, (text), "t.ini", err_,        \
                                         sizeof(err_));                     \
    check_problems(c_, rv_, err_, want_);                                   \
  } while (0)

/* A fresh scratch directory (removed by scratch_remove). */
static inline char *scratch_new(void)
{
  const char *base = getenv("TMPDIR");
  char tmpl[512];
  snprintf(tmpl, sizeof(tmpl), "%s/smtpout-test-XXXXXX",
           base && *base ? base : "/tmp");
  char *dir = mkdtemp(tmpl);
  assert_non_null(dir);
  return strdup(dir);
}

/* Writes `text` to dir/name; returns the malloc'd path. */
static inline char *scratch_write(const char *dir, const char *name,
                                  const char *text)
{
  char *path = malloc(strlen(dir) + strlen(name) + 2);
  assert_non_null(path);
  sprintf(path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
  assert_int_equal(fclose(f), 0);
  return path;
}

static inline void scratch_remove(char *dir)
{
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
  free(dir);
}

/* Resolves (one domain or none, MX or NULL) and returns the policy. */
static inline smtpout_policy *resolve(const smtpout_config *c,
                                      const char *domain, const char *mx)
{
  smtpout_policy *p = NULL;
  int rv = smtpout_policy_resolve(&p, c, domain ? &domain : NULL,
                                  domain ? 1 : 0, mx);
  if (rv != 0)
    fail_msg("resolve(%s, %s): %s", domain ? domain : "-", mx ? mx : "-",
             smtpout_strerror(rv));
  return p;
}

#endif
