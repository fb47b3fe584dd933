/*
 * fuzz-names — libFuzzer target for name normalisation: it must never
 * crash, and the ASCII fast path must agree with libidn2 on every input
 * (abort() otherwise, which the fuzzer reports).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char in[512];
  if (size >= sizeof(in))
    return 0;
  memcpy(in, data, size);
  in[size] = '\0';
  char fast[NAME_MAX_LEN], slow[NAME_MAX_LEN], ip[64];
  int a = name_normalize(in, fast, sizeof(fast));
  int b = name_normalize_idn(in, slow, sizeof(slow), NULL);
  if (a != b || (a == 0 && strcmp(fast, slow) != 0))
    abort();
  name_ip_literal(in, ip, sizeof(ip));
  return 0;
}
