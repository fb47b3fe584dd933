/*
 * fuzz-config — libFuzzer target for the configuration loader (the INI
 * reader, values, patterns, names) and the policy engine on what loaded.
 *
 * Input: INI text.  If it loads, the names in the input's last line are
 * resolved against it, to exercise lookups on whatever rules the fuzzer
 * built.  Build (see tests/meson.build):
 *   CC=clang meson setup build-fuzz -Dfuzzers=true -Db_sanitize=address \
 *     -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link
 *   ninja -C build-fuzz && build-fuzz/tests/fuzz-config -max_total_time=60
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = malloc(size + 1);
  if (text == NULL)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  char err[4096];
  smtpout_config *c = NULL;
  if (smtpout_config_load_string(&c, text, "fuzz.ini", err, sizeof(err)) ==
      0) {
    const char *last = strrchr(text, '\n');
    const char *name = last ? last + 1 : text;
    int st, allow;
    config_policy_lookup(c, name, name, &st, &allow);
    smtpout_policy *p = NULL;
    if (smtpout_policy_resolve(&p, c, &name, 1, name) == 0)
      smtpout_policy_free(p);
    smtpout_config_unref(c);
  }
  free(text);
  return 0;
}
