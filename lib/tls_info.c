/*
 * tls_info.c — the getters of a TLS outcome (tls_info_int.h).
 */
#include "tls_info_int.h"
#include "tlsrpt_int.h"

/* NULL-safe, like every getter. */
int smtpout_tls_info_outcome(const smtpout_tls_info *i)
{
  return i ? i->outcome : SMTPOUT_TLS_OUTCOME_NONE;
}

int smtpout_tls_info_used(const smtpout_tls_info *i) { return i ? i->used : 0; }

const char *smtpout_tls_info_version(const smtpout_tls_info *i)
{
  return i && i->used && i->version[0] ? i->version : NULL;
}

const char *smtpout_tls_info_cipher(const smtpout_tls_info *i)
{
  return i && i->used && i->cipher[0] ? i->cipher : NULL;
}

int smtpout_tls_info_verified(const smtpout_tls_info *i)
{
  return i ? i->verified : 0;
}

const char *smtpout_tls_info_verify_error(const smtpout_tls_info *i)
{
  return i && i->verify_error[0] ? i->verify_error : NULL;
}

const char *smtpout_tls_info_failure(const smtpout_tls_info *i)
{
  return i && i->failure[0] ? i->failure : NULL;
}

const char *smtpout_tls_info_tlsrpt_result(const smtpout_tls_info *i)
{
  return i ? tlsrpt_type_name(i->tlsrpt) : NULL;
}

int smtpout_tls_info_fallback_permitted(const smtpout_tls_info *i)
{
  return i ? i->fallback_permitted : 0;
}

int smtpout_tls_info_resumed(const smtpout_tls_info *i)
{
  return i ? i->resumed : 0;
}

int smtpout_tls_info_plaintext_fallback(const smtpout_tls_info *i)
{
  return i ? i->plaintext_fallback : 0;
}

const char *smtpout_tls_auth_name(int auth)
{
  switch (auth) {
  case SMTPOUT_TLS_AUTH_NONE: return "none";
  case SMTPOUT_TLS_AUTH_PKIX: return "pkix";
  case SMTPOUT_TLS_AUTH_DANE_EE: return "dane-ee";
  case SMTPOUT_TLS_AUTH_DANE_TA: return "dane-ta";
  default: return NULL;
  }
}

int smtpout_tls_info_auth(const smtpout_tls_info *i)
{
  return i ? i->auth : SMTPOUT_TLS_AUTH_NONE;
}

const char *smtpout_tls_info_tlsa_matched(const smtpout_tls_info *i)
{
  return i && i->tlsa_matched[0] ? i->tlsa_matched : NULL;
}

size_t smtpout_tls_info_tlsa_records(const smtpout_tls_info *i)
{
  return i ? i->tlsa_records : 0;
}

int smtpout_tls_info_requirement(const smtpout_tls_info *i)
{
  return i ? i->requirement : 0;
}

int smtpout_tls_info_requiretls(const smtpout_tls_info *i)
{
  return i ? i->requiretls : 0;
}

int smtpout_tls_info_implicit(const smtpout_tls_info *i)
{
  return i ? i->implicit : 0;
}

int smtpout_tls_info_client_certificate(const smtpout_tls_info *i)
{
  return i ? i->client_certificate : 0;
}
