/*
 * fetch_curl.c — fetch_int.h on libcurl (Debian's libcurl3-gnutls: the same
 * TLS library as the rest of smtpout).
 *
 * Every option that could widen what a policy fetch does is set
 * explicitly rather than left to libcurl's defaults or the environment:
 * the protocol (https only, redirects not followed), the address (handed
 * in; libcurl resolves nothing), proxies (none, whatever https_proxy
 * says: a proxy would resolve the name itself), the TLS floor (1.2, RFC
 * 8461 section 7.2), and the size cap, which is enforced in the write
 * callback because libcurl before 8.4 ignores CURLOPT_MAXFILESIZE_LARGE
 * for a body of unknown length (chunked).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf_int.h"
#include "fetch_int.h"
#include "sts_int.h"
#include "smtpout/common.h"

#define DEFAULT_TIMEOUT_MS 60000

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

struct sink {
  struct buf body;
  size_t max;
  bool too_large;
  bool oom;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
  struct sink *s = ud;
  size_t n = size * nmemb;
  if (n > s->max - buf_len(&s->body)) {
    s->too_large = true;
    return 0; /* CURLE_WRITE_ERROR: the transfer stops here */
  }
  if (buf_append(&s->body, data, n) != 0) {
    s->oom = true;
    return 0;
  }
  return n;
}

/* The URL's host and port, from libcurl's own parser (the one that will
 * use them), with the scheme checked. */
static int url_host_port(const char *url, char *host, size_t hostlen,
                         long *port)
{
  CURLU *u = curl_url();
  if (u == NULL)
    return SMTPOUT_ERR_NOMEM;
  char *scheme = NULL, *h = NULL, *p = NULL;
  int rc = SMTPOUT_ERR_INVALID_ARGUMENT;
  if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      strcmp(scheme, "https") == 0 &&
      curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) == CURLUE_OK &&
      strlen(h) < hostlen) {
    strcpy(host, h);
    *port = strtol(p, NULL, 10);
    rc = *port > 0 && *port < 65536 ? 0 : SMTPOUT_ERR_INVALID_ARGUMENT;
  }
  curl_free(scheme);
  curl_free(h);
  curl_free(p);
  curl_url_cleanup(u);
  return rc;
}

static int outcome_of(CURLcode rc, const struct sink *s)
{
  switch (rc) {
  case CURLE_OK:
    return STS_FETCH_OK;
  case CURLE_WRITE_ERROR:
  case CURLE_FILESIZE_EXCEEDED:
    return s->too_large || rc == CURLE_FILESIZE_EXCEEDED ? STS_FETCH_TOO_LARGE
                                                         : STS_FETCH_FAILED;
  case CURLE_OPERATION_TIMEDOUT:
    return STS_FETCH_TIMEOUT;
  case CURLE_COULDNT_CONNECT:
  case CURLE_COULDNT_RESOLVE_HOST:
    return STS_FETCH_CONNECT_FAILED;
  case CURLE_PEER_FAILED_VERIFICATION:
    return STS_FETCH_TLS_NOT_VERIFIED;
  default:
    return STS_FETCH_FAILED;
  }
}

#define SET(opt, val)                                                       \
  do {                                                                      \
    if (rc == CURLE_OK)                                                     \
      rc = curl_easy_setopt(h, opt, val);                                   \
  } while (0)

int fetch_https(const struct fetch_request *req, struct fetch_response *resp)
{
  memset(resp, 0, sizeof(*resp));
  if (req == NULL || req->url == NULL || req->address == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  unsigned char ip[16];
  bool v6 = strchr(req->address, ':') != NULL;
  if (inet_pton(v6 ? AF_INET6 : AF_INET, req->address, ip) != 1)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  pthread_once(&curl_once, curl_init);
  if (curl_init_rc != CURLE_OK)
    return SMTPOUT_ERR_NOMEM;

  char host[256];
  long port;
  int err = url_host_port(req->url, host, sizeof(host), &port);
  if (err != 0)
    return err;
  /* HOST:PORT:ADDRESS:CPORT sends the connection for HOST:PORT to the
   * address; TLS and HTTP still see HOST. */
  char connect_to[400];
  snprintf(connect_to, sizeof(connect_to), v6 ? "%s:%ld:[%s]:%u" : "%s:%ld:%s:%u",
           host, port, req->address,
           req->port ? (unsigned)req->port : (unsigned)port);
  struct curl_slist *targets = curl_slist_append(NULL, connect_to);
  CURL *h = curl_easy_init();
  if (targets == NULL || h == NULL) {
    curl_slist_free_all(targets);
    curl_easy_cleanup(h);
    return SMTPOUT_ERR_NOMEM;
  }

  struct sink sink = {{0}, req->max_bytes ? req->max_bytes
                                          : SMTPOUT_STS_POLICY_MAX_BYTES,
                      false, false};
  long timeout = req->timeout_ms ? (long)req->timeout_ms : DEFAULT_TIMEOUT_MS;
  char errbuf[CURL_ERROR_SIZE] = "";
  CURLcode rc = CURLE_OK;
  SET(CURLOPT_URL, req->url);
  SET(CURLOPT_PROTOCOLS_STR, "https");
  SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_CONNECT_TO, targets);
  SET(CURLOPT_PROXY, "");
  SET(CURLOPT_NOPROXY, "*");
  SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
  SET(CURLOPT_SSL_VERIFYPEER, 1L);
  SET(CURLOPT_SSL_VERIFYHOST, 2L);
  if (req->ca_file != NULL) {
    SET(CURLOPT_CAINFO, req->ca_file);
    SET(CURLOPT_CAPATH, (char *)NULL);
  }
  SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  SET(CURLOPT_TIMEOUT_MS, timeout);
  SET(CURLOPT_CONNECTTIMEOUT_MS, timeout);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)sink.max);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, &sink);
  SET(CURLOPT_ERRORBUFFER, errbuf);
  SET(CURLOPT_USERAGENT, "smtpout/" SMTPOUT_VERSION_STRING);
  if (rc != CURLE_OK) {
    /* An option this libcurl does not know: refuse rather than fetch
     * with a wider behaviour than documented. */
    snprintf(resp->error, sizeof(resp->error), "libcurl: %s",
             curl_easy_strerror(rc));
    resp->outcome = STS_FETCH_FAILED;
  } else {
    rc = curl_easy_perform(h);
    resp->outcome = outcome_of(rc, &sink);
    if (rc != CURLE_OK)
      snprintf(resp->error, sizeof(resp->error), "%s",
               sink.too_large ? "the body is larger than the limit"
               : errbuf[0]    ? errbuf
                              : curl_easy_strerror(rc));
  }
  if (resp->outcome == STS_FETCH_OK) {
    long status = 0;
    char *ct = NULL;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    resp->status = (int)status;
    snprintf(resp->content_type, sizeof(resp->content_type), "%s",
             ct ? ct : "");
    if (buf_len(&sink.body) > 0) {
      resp->len = buf_len(&sink.body);
      resp->body = malloc(resp->len + 1);
      if (resp->body == NULL) {
        sink.oom = true;
      } else {
        memcpy(resp->body, buf_head(&sink.body), resp->len);
        resp->body[resp->len] = '\0';
      }
    }
  }
  buf_free(&sink.body);
  curl_easy_cleanup(h);
  curl_slist_free_all(targets);
  if (sink.oom) {
    fetch_response_clear(resp);
    return SMTPOUT_ERR_NOMEM;
  }
  return 0;
}
