/*
 * fuzz-policy-map — libFuzzer target for the policy-map parser
 * (lib/config_map.c) and lookups in the table it builds.
 *
 * Input: the text of a map file.  It is written to an anonymous memory
 * file (memfd) that a one-line configuration names as its policy-map
 * through /proc/self/fd/N, so the real loader reads it from a real file.
 *
 * Besides "no crash, no leak, no undefined behaviour", a map that loads
 * must mean what it says: for every line whose pattern is an exact domain
 * and whose starttls value is spelt plainly, looking that domain up must
 * give that value (an exact domain rule is the first hit without an MX).
 * A map that does not load must say why, as FILE:LINE.
 *
 * Build and run: see docs/security.md ("Fuzzing").
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                         \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "fuzz-policy-map: invariant failed at line %d: %s\n", \
              __LINE__, #cond);                                             \
      abort();                                                              \
    }                                                                       \
  } while (0)

static int blank(char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* The starttls value of one map line if it is spelt plainly, else -1. */
static int line_starttls(const char *s, size_t len, char *name, size_t namelen)
{
  size_t i = 0, start;
  while (i < len && blank(s[i]))
    i++;
  if (i == len || s[i] == '#')
    return -1;
  start = i;
  while (i < len && !blank(s[i]))
    i++;
  size_t n = i - start;
  /* Only exact domains: no ".parent", no "mx:", no wildcard, no literal. */
  if (n == 0 || n >= namelen || s[start] == '.' || s[start] == '[' ||
      memchr(s + start, ':', n) || memchr(s + start, '*', n) ||
      memchr(s + start, '\0', n))
    return -1;
  memcpy(name, s + start, n);
  name[n] = '\0';
  int value = -1;
  for (;;) {
    while (i < len && blank(s[i]))
      i++;
    if (i == len || s[i] == '#')
      break;
    start = i;
    while (i < len && !blank(s[i]))
      i++;
    const char *t = s + start;
    size_t tn = i - start;
    if (tn > 9 && memcmp(t, "starttls=", 9) == 0) {
      t += 9;
      tn -= 9;
      if (tn >= 2 && (t[0] == '"' || t[0] == '\'') && t[tn - 1] == t[0]) {
        t++;
        tn -= 2;
      }
      if (tn == 7 && memcmp(t, "disable", 7) == 0)
        value = SMTPOUT_STARTTLS_DISABLE;
      else if (tn == 8 && memcmp(t, "optional", 8) == 0)
        value = SMTPOUT_STARTTLS_OPTIONAL;
      else if (tn == 7 && memcmp(t, "require", 7) == 0)
        value = SMTPOUT_STARTTLS_REQUIRE;
    }
  }
  return value;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static int fd = -1;
  if (fd < 0) {
    fd = memfd_create("fuzz-policy-map", MFD_CLOEXEC);
    if (fd < 0)
      abort();
  }
  if (ftruncate(fd, 0) != 0 ||
      (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size))
    abort();

  char ini[128], err[8192];
  snprintf(ini, sizeof(ini), "[queue.outbound.tls]\npolicy-map = /proc/self/fd/%d\n",
           fd);
  smtpout_config *c = NULL;
  err[0] = '\0';
  int rv = smtpout_config_load_string(&c, ini, "fuzz.ini", err, sizeof(err));
  if (rv != 0) {
    CHECK(rv == SMTPOUT_ERR_CONFIG || rv == SMTPOUT_ERR_IO);
    CHECK(err[0] != '\0');
    return 0;
  }

  const char *text = (const char *)data;
  const char *end = text + size;
  char name[512];
  for (const char *p = text; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *eol = nl ? nl : end;
    int want = line_starttls(p, (size_t)(eol - p), name, sizeof(name));
    if (want >= 0) {
      int st = -1, allow = -1;
      CHECK(config_policy_lookup(c, name, NULL, &st, &allow) == 0);
      CHECK(st == want);
      CHECK(allow == 0 || allow == 1);
      smtpout_policy *pol = NULL;
      const char *names[] = {name};
      if (smtpout_policy_resolve(&pol, c, names, 1, name) == 0) {
        CHECK(smtpout_policy_explain(pol) != NULL);
        CHECK(smtpout_policy_source(pol, SMTPOUT_KNOB_STARTTLS) != NULL);
        smtpout_policy_free(pol);
      }
    }
    p = eol + 1;
  }
  smtpout_config_unref(c);
  return 0;
}
