/*
 * tls_priority.c — validating a GnuTLS priority string at load time.
 *
 * Kept apart from tls_gnutls.c (the connection code) because only the
 * configuration loader needs it; like that file, it keeps every GnuTLS
 * type to itself.
 */
#include <gnutls/gnutls.h>

#include "smtpout/common.h"
#include "tls.h"

int tls_priority_check(const char *priority, size_t *err_offset)
{
  gnutls_priority_t cache;
  const char *err_pos = NULL;
  int rv = gnutls_priority_init(&cache, priority, &err_pos);
  if (rv == GNUTLS_E_MEMORY_ERROR)
    return SMTPOUT_ERR_NOMEM;
  if (rv < 0) {
    *err_offset = err_pos && err_pos >= priority ? (size_t)(err_pos - priority)
                                                 : 0;
    return SMTPOUT_ERR_TLS_SETUP;
  }
  gnutls_priority_deinit(cache);
  return 0;
}
