/*
 * names.c — TEMPORARY development stub: ASCII lower-casing only (issue 4
 * replaces it with the libidn2 normaliser).
 */
#include <arpa/inet.h>
#include <string.h>

#include "names.h"
#include "smtpout/common.h"

int name_normalize(const char *in, char *out, size_t outlen)
{
  size_t n = strlen(in);
  if (n > 0 && in[n - 1] == '.')
    n--;
  if (n == 0 || n + 1 > outlen || n > 253)
    return SMTPOUT_ERR_BAD_NAME;
  for (size_t i = 0; i < n; i++) {
    char c = in[i];
    if (c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    out[i] = c;
  }
  out[n] = '\0';
  return 0;
}

int name_ip_literal(const char *in, char *out, size_t outlen)
{
  char tmp[64];
  size_t n = strlen(in);
  if (n >= sizeof(tmp))
    return 0;
  if (in[0] == '[' && n > 2 && in[n - 1] == ']') {
    in++;
    n -= 2;
    if (n > 5 && strncasecmp(in, "IPv6:", 5) == 0) {
      in += 5;
      n -= 5;
    }
  }
  memcpy(tmp, in, n);
  tmp[n] = '\0';
  unsigned char addr[16];
  int af = strchr(tmp, ':') ? AF_INET6 : AF_INET;
  if (inet_pton(af, tmp, addr) != 1)
    return 0;
  return inet_ntop(af, addr, out, (socklen_t)outlen) != NULL;
}
