/*
 * fuzz-names — libFuzzer target for name normalisation: it must never
 * crash, the ASCII fast path must agree with libidn2 on every input, and
 * what comes out must be a plain host name, never an address in disguise
 * (abort() otherwise, which the fuzzer reports).
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "names_int.h"

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
  if (a == 0) {
    /* What is compared and sent is a lower-case A-label host name: LDH
     * characters and dots only (never a CR, LF, space or NUL that could
     * end a command line or a TLS name early), no trailing dot, at most
     * 253 octets, and normalising it again changes nothing. */
    size_t n = strlen(fast);
    if (n == 0 || n > 253 || fast[n - 1] == '.' ||
        strspn(fast, "abcdefghijklmnopqrstuvwxyz0123456789-.") != n)
      abort();
    char again[NAME_MAX_LEN];
    if (name_normalize(fast, again, sizeof(again)) != 0 ||
        strcmp(fast, again) != 0)
      abort();
    /* ...and never an address a resolver would read in it ("127.1"). */
    struct in_addr addr;
    if (inet_aton(fast, &addr) != 0 || name_ip_literal(fast, ip, sizeof(ip)))
      abort();
  }
  if (name_ip_literal(in, ip, sizeof(ip)) &&
      strspn(ip, "0123456789abcdef:.") != strlen(ip))
    abort();
  return 0;
}
