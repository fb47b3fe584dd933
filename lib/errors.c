/*
 * errors.c — error strings, version, enumeration names.
 */
#include "errors_int.h"
#include "smtpout/smtpout.h"

const char *smtpout_strerror(int error)
{
  switch (error) {
  case SMTPOUT_OK: return "success";
  case SMTPOUT_ERR_INVALID_ARGUMENT: return "invalid argument";
  case SMTPOUT_ERR_NOMEM: return "out of memory";
  case SMTPOUT_ERR_INVALID_STATE: return "operation not allowed in this state";
  case SMTPOUT_ERR_WOULDBLOCK: return "operation would block";
  case SMTPOUT_ERR_CALLBACK_FAILURE: return "callback failed";
  case SMTPOUT_ERR_CONFIG: return "invalid configuration";
  case SMTPOUT_ERR_BAD_NAME: return "invalid host or domain name";
  case SMTPOUT_ERR_BAD_ADDRESS: return "mail address cannot be sent safely";
  case SMTPOUT_ERR_POLICY_CONFLICT: return "message needs a stricter TLS policy than this connection";
  case SMTPOUT_ERR_IO: return "local I/O error";
  case SMTPOUT_ERR_TLS_SETUP: return "TLS setup failed (trust anchors)";
  case SMTPOUT_ERR_SYNTAX: return "malformed record, policy or event";
  default: return "unknown error";
  }
}

const char *error_text(int code)
{
  switch (code) {
  case ERR_PROTOCOL: return "protocol violation by the server";
  case ERR_TIMEOUT: return "timed out waiting for the server";
  case ERR_RESOLVE: return "name resolution failed";
  default: return smtpout_strerror(code);
  }
}

const char *smtpout_version(void) { return SMTPOUT_VERSION_STRING; }

const char *smtpout_starttls_name(int mode)
{
  switch (mode) {
  case SMTPOUT_STARTTLS_DISABLE: return "disable";
  case SMTPOUT_STARTTLS_OPTIONAL: return "optional";
  case SMTPOUT_STARTTLS_REQUIRE: return "require";
  default: return NULL;
  }
}

const char *smtpout_dane_name(int mode)
{
  switch (mode) {
  case SMTPOUT_DANE_DISABLE: return "disable";
  case SMTPOUT_DANE_OPTIONAL: return "optional";
  case SMTPOUT_DANE_REQUIRE: return "require";
  default: return NULL;
  }
}

const char *smtpout_mta_sts_name(int mode)
{
  switch (mode) {
  case SMTPOUT_MTA_STS_DISABLE: return "disable";
  case SMTPOUT_MTA_STS_OPTIONAL: return "optional";
  case SMTPOUT_MTA_STS_REQUIRE: return "require";
  default: return NULL;
  }
}

const char *smtpout_status_name(int status)
{
  switch (status) {
  case SMTPOUT_STATUS_DELIVERED: return "delivered";
  case SMTPOUT_STATUS_DEFERRED: return "deferred";
  case SMTPOUT_STATUS_BOUNCED: return "bounced";
  default: return NULL;
  }
}

const char *smtpout_tls_outcome_name(int outcome)
{
  switch (outcome) {
  case SMTPOUT_TLS_OUTCOME_NONE: return "none";
  case SMTPOUT_TLS_OUTCOME_DISABLED: return "disabled";
  case SMTPOUT_TLS_OUTCOME_NOT_OFFERED: return "not-offered";
  case SMTPOUT_TLS_OUTCOME_REFUSED: return "refused";
  case SMTPOUT_TLS_OUTCOME_HANDSHAKE_FAILED: return "handshake-failed";
  case SMTPOUT_TLS_OUTCOME_OK: return "ok";
  default: return NULL;
  }
}

const char *smtpout_auth_outcome_name(int outcome)
{
  switch (outcome) {
  case SMTPOUT_AUTH_OUTCOME_NONE: return "none";
  case SMTPOUT_AUTH_OUTCOME_OK: return "ok";
  case SMTPOUT_AUTH_OUTCOME_NO_TLS: return "no-tls";
  case SMTPOUT_AUTH_OUTCOME_UNVERIFIED: return "unverified";
  case SMTPOUT_AUTH_OUTCOME_NOT_OFFERED: return "not-offered";
  case SMTPOUT_AUTH_OUTCOME_FAILED: return "failed";
  case SMTPOUT_AUTH_OUTCOME_ERROR: return "error";
  default: return NULL;
  }
}

const char *smtpout_close_reason_name(int reason)
{
  static const char *const names[] = {
    [SMTPOUT_CLOSE_NONE] = "none",
    [SMTPOUT_CLOSE_PROTOCOL] = "protocol",
    [SMTPOUT_CLOSE_TIMEOUT] = "timeout",
    [SMTPOUT_CLOSE_CONNECTION_CLOSED] = "connection-closed",
    [SMTPOUT_CLOSE_SERVICE_UNAVAILABLE] = "service-unavailable",
    [SMTPOUT_CLOSE_TLS] = "tls",
    [SMTPOUT_CLOSE_TLS_POLICY] = "tls-policy",
    [SMTPOUT_CLOSE_TLS_SETUP] = "tls-setup",
    [SMTPOUT_CLOSE_CONTENT] = "content",
    [SMTPOUT_CLOSE_CALLBACK_FAILURE] = "callback-failure",
    [SMTPOUT_CLOSE_ABORTED] = "aborted",
    [SMTPOUT_CLOSE_LOCAL] = "local",
    [SMTPOUT_CLOSE_AUTH] = "auth",
  };
  return reason >= 0 && reason < (int)(sizeof(names) / sizeof(names[0]))
             ? names[reason]
             : NULL;
}
