/*
 * sts-fetch — runs the library's MTA-STS fetcher (lib/fetch_curl.c) once
 * and prints what it returned, then what policy discovery makes of it,
 * as one JSON object (for tests/integration/test_sts_fetch.py).
 *
 *   sts-fetch URL ADDRESS PORT CA_FILE [TIMEOUT_MS [MAX_BYTES]]
 *
 * {"outcome": "ok", "status": 200, "content_type": "text/plain",
 *  "len": 70, "body": "...", "error": "",
 *  "judged": {"source": "fetched", "failure": null, "mode": "enforce"}}
 *
 * "judged" is discovery with no cached policy and the TXT record
 * "v=STSv1; id=t1" fed this answer.  The body is printed when it is text
 * of at most 1 KiB.  Exit status: 0, 64 bad usage, 70 the fetcher
 * refused its arguments (the JSON then has only "error").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch_int.h"
#include "sts_int.h"
#include "tlsrpt_int.h"
#include "smtpout/smtpout.h"

static void json_str(const char *s, size_t n)
{
  putchar('"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20 || c >= 0x7f)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

int main(int argc, char **argv)
{
  if (argc < 5 || argc > 7) {
    fprintf(stderr, "usage: sts-fetch URL ADDRESS PORT CA_FILE "
                    "[TIMEOUT_MS [MAX_BYTES]]\n");
    return 64;
  }
  struct fetch_request req = {
    .url = argv[1],
    .address = argv[2],
    .port = (uint16_t)atoi(argv[3]),
    .ca_file = argv[4][0] ? argv[4] : NULL,
    .timeout_ms = argc > 5 ? (uint32_t)atoi(argv[5]) : 0,
    .max_bytes = argc > 6 ? (size_t)atol(argv[6]) : 0,
  };
  struct fetch_response resp;
  int rc = fetch_https(&req, &resp);
  if (rc != 0) {
    printf("{\"error\": \"%s\"}\n", smtpout_strerror(rc));
    return 70;
  }
  printf("{\"outcome\": \"%s\", \"status\": %d, \"content_type\": ",
         sts_fetch_outcome_name(resp.outcome), resp.status);
  json_str(resp.content_type, strlen(resp.content_type));
  printf(", \"len\": %zu, \"body\": ", resp.len);
  if (resp.len <= 1024 && (resp.body == NULL ||
                           strlen((const char *)resp.body) == resp.len))
    json_str((const char *)resp.body, resp.len);
  else
    printf("null");
  printf(", \"error\": ");
  json_str(resp.error, strlen(resp.error));

  struct sts_discovery d;
  const char *txt[] = {"v=STSv1; id=t1"};
  const size_t lens[] = {14};
  if (sts_discovery_init(&d, "example.org", 0) != 0 ||
      sts_discovery_cache(&d, NULL, 0) != 0 ||
      sts_discovery_txt(&d, false, txt, lens, 1) != 0 ||
      sts_discovery_next(&d, 0) != STS_STATE_NEED_FETCH ||
      sts_discovery_fetched(&d, resp.outcome, resp.status,
                            resp.content_type[0] ? resp.content_type : NULL,
                            resp.body, resp.len, 0) != STS_STATE_DONE) {
    fprintf(stderr, "sts-fetch: discovery failed\n");
    return 70;
  }
  static const char *const sources[] = {"none", "cache", "fetched"};
  const char *failure = tlsrpt_type_name(sts_discovery_failure(&d));
  printf(", \"judged\": {\"source\": \"%s\", \"failure\": ",
         sources[sts_discovery_source(&d)]);
  if (failure)
    printf("\"%s\"", failure);
  else
    printf("null");
  const smtpout_sts_policy *p = sts_discovery_policy(&d);
  printf(", \"mode\": ");
  if (p)
    printf("\"%s\"", smtpout_sts_mode_name(smtpout_sts_policy_mode(p)));
  else
    printf("null");
  printf("}}\n");
  sts_discovery_clear(&d);
  fetch_response_clear(&resp);
  return 0;
}
