/*
 * fetch_int.h — the HTTPS GET the blocking driver and the CLI use to fetch
 * MTA-STS policies (fetch_curl.c, built with -Dcurl=enabled or auto when
 * libcurl is found; HAVE_LIBCURL says so).
 *
 * The fetcher never resolves a name: the caller hands it the address the
 * configured resolver found for the URL's host, and the connection goes
 * there while TLS (SNI, certificate name) and HTTP (Host) still use the
 * host name.  Event-loop hosts use their own HTTP stack instead and pass
 * the same facts to sts_discovery_fetched().
 */
#ifndef SMTPOUT_FETCH_INT_H
#define SMTPOUT_FETCH_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct fetch_request {
  const char *url;       /* https://HOST[:PORT]/PATH */
  const char *address;   /* where to connect: "192.0.2.1", "2001:db8::1" */
  uint16_t port;         /* 0: the URL's port (443 by default) */
  const char *ca_file;   /* PEM trust anchors; NULL: the system store */
  uint32_t timeout_ms;   /* the whole transfer; 0: 60 s */
  size_t max_bytes;      /* the body cap; 0: SMTPOUT_STS_POLICY_MAX_BYTES */
};

struct fetch_response {
  int outcome;           /* enum sts_fetch_outcome (sts_int.h) */
  int status;            /* HTTP status when outcome is STS_FETCH_OK */
  char content_type[256];/* "" when the response had none */
  uint8_t *body;         /* malloc'd, NUL after it; NULL when empty */
  size_t len;
  char error[256];       /* what went wrong, in English ("" when OK) */
};

/*
 * Runs one GET: HTTPS only, no redirect followed (a 3xx is returned as
 * such), TLS 1.2 or later, the peer's certificate verified against
 * `ca_file` for the URL's host name, no proxy (the environment's
 * https_proxy included), no cookies, no content encoding, at most
 * `max_bytes` of body (enforced while receiving, chunked bodies too).
 *
 * Returns 0 with `resp` filled (its `outcome` says whether an HTTP
 * response arrived), SMTPOUT_ERR_INVALID_ARGUMENT (no URL, an address that
 * is not an IP address, a URL that is not https) or SMTPOUT_ERR_NOMEM.
 * Free with fetch_response_clear().
 */
int fetch_https(const struct fetch_request *req, struct fetch_response *resp);

/* Frees the body and zeroes `resp`: here, not in fetch_curl.c, because a
 * build without libcurl still answers the route's HTTPS requests (with
 * "built without libcurl") through a fetch_response. */
static inline void fetch_response_clear(struct fetch_response *resp)
{
  free(resp->body);
  memset(resp, 0, sizeof(*resp));
}

#endif
