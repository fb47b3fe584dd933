/*
 * memtls.c — see memtls.h.
 */
#include "memtls.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <string.h>
#include <sys/types.h>

#include <cmocka.h>
#include <gnutls/x509.h>

static ssize_t push(gnutls_transport_ptr_t p, const void *data, size_t len)
{
  struct memtls *m = p;
  assert_true(m->out_len + len <= sizeof(m->out));
  memcpy(m->out + m->out_len, data, len);
  m->out_len += len;
  return (ssize_t)len;
}

static ssize_t pull(gnutls_transport_ptr_t p, void *data, size_t len)
{
  struct memtls *m = p;
  size_t avail = m->in_len - m->in_off;
  if (avail == 0) {
    gnutls_transport_set_errno(m->tls, EAGAIN);
    return -1;
  }
  if (len > avail)
    len = avail;
  memcpy(data, m->in + m->in_off, len);
  m->in_off += len;
  return (ssize_t)len;
}

/* The session over m's buffers, once m->cred holds the certificate. */
static void session_init(struct memtls *m, unsigned init_flags,
                         const char *priority)
{
  assert_int_equal(
      gnutls_init(&m->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK | init_flags), 0);
  if (priority != NULL)
    assert_int_equal(gnutls_priority_set_direct(m->tls, priority, NULL), 0);
  else
    assert_int_equal(gnutls_set_default_priority(m->tls), 0);
  assert_int_equal(
      gnutls_credentials_set(m->tls, GNUTLS_CRD_CERTIFICATE, m->cred), 0);
  gnutls_transport_set_ptr(m->tls, m);
  gnutls_transport_set_push_function(m->tls, push);
  gnutls_transport_set_pull_function(m->tls, pull);
}

void memtls_init_self_signed(struct memtls *m, unsigned init_flags,
                             const char *priority, const char *cn, int san,
                             time_t *not_after)
{
  gnutls_x509_privkey_t key;
  gnutls_x509_crt_t crt;
  time_t now = time(NULL);
  memset(m, 0, sizeof(*m));
  assert_int_equal(gnutls_x509_privkey_init(&key), 0);
  assert_int_equal(gnutls_x509_privkey_generate(
                       key, GNUTLS_PK_ECDSA,
                       GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                   0);
  assert_int_equal(gnutls_x509_crt_init(&crt), 0);
  assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
  assert_int_equal(gnutls_x509_crt_set_serial(crt, "\x01", 1), 0);
  assert_int_equal(gnutls_x509_crt_set_activation_time(crt, now - 3600), 0);
  assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, now + 86400), 0);
  if (not_after != NULL)
    *not_after = now + 86400;
  assert_int_equal(gnutls_x509_crt_set_dn_by_oid(
                       crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, strlen(cn)),
                   0);
  if (san)
    assert_int_equal(gnutls_x509_crt_set_subject_alt_name(
                         crt, GNUTLS_SAN_DNSNAME, cn, strlen(cn),
                         GNUTLS_FSAN_SET),
                     0);
  assert_int_equal(gnutls_x509_crt_set_key(crt, key), 0);
  assert_int_equal(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0),
                   0);
  assert_int_equal(gnutls_certificate_allocate_credentials(&m->cred), 0);
  assert_int_equal(gnutls_certificate_set_x509_key(m->cred, &crt, 1, key), 0);
  gnutls_x509_crt_deinit(crt);
  gnutls_x509_privkey_deinit(key);
  session_init(m, init_flags, priority);
}

void memtls_init_files(struct memtls *m, unsigned init_flags,
                       const char *priority, const char *chain,
                       const char *key)
{
  memset(m, 0, sizeof(*m));
  assert_int_equal(gnutls_certificate_allocate_credentials(&m->cred), 0);
  assert_int_equal(gnutls_certificate_set_x509_key_file(m->cred, chain, key,
                                                        GNUTLS_X509_FMT_PEM),
                   0);
  session_init(m, init_flags, priority);
}

void memtls_take(struct memtls *m, const void *data, size_t len)
{
  if (m->in_off == m->in_len)
    m->in_off = m->in_len = 0;
  assert_true(m->in_len + len <= sizeof(m->in));
  memcpy(m->in + m->in_len, data, len);
  m->in_len += len;
}

void memtls_free(struct memtls *m)
{
  gnutls_deinit(m->tls);
  gnutls_certificate_free_credentials(m->cred);
}
