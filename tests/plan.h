/*
 * plan.h — running a cmocka group with the tests this build cannot run
 * left out of the plan.
 *
 * cmocka 1.1.5 reports skip() as "not ok N # SKIP", which meson's TAP
 * reader and tests/run.sh count as a failure; a test that needs a part
 * the build lacks (SCRAM without GNU SASL) is therefore left out, and
 * a TAP comment says how many and why.
 */
#ifndef SMTPOUT_TESTS_PLAN_H
#define SMTPOUT_TESTS_PLAN_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs `tests` (n of them) as cmocka_run_group_tests() would, without
 * those whose name contains `marker` when `leave_out` is set. */
static inline int plan_run_group(const struct CMUnitTest *tests, size_t n,
                                 const char *marker, int leave_out,
                                 const char *why, CMFixtureFunction setup,
                                 CMFixtureFunction teardown)
{
  struct CMUnitTest *run = malloc(n * sizeof(*run));
  if (run == NULL)
    return 1;
  size_t kept = 0;
  for (size_t i = 0; i < n; i++)
    if (!leave_out || strstr(tests[i].name, marker) == NULL)
      run[kept++] = tests[i];
  if (kept < n)
    printf("# %zu tests left out: %s\n", n - kept, why);
  int rv = _cmocka_run_group_tests("tests", run, kept, setup, teardown);
  free(run);
  return rv;
}

#endif
