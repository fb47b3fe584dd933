/*
 * tlsrpt-write — appends TLS-RPT event lines to a file, as a sending
 * process would (for the smtpout-tlsrpt tests).
 *
 *   tlsrpt-write FILE TIME_MS SENDING_IP KIND=COUNT [KIND=COUNT ...]
 *
 * Writes COUNT events of each KIND, taking the kinds in turn (one of each,
 * then the next round), through the library's event writer.  The file is
 * opened with O_APPEND and every line goes out in one write(), so any
 * number of writers can share one file.  Kinds:
 *
 *   sts-ok         example.com, STS enforce, delivered over verified TLS
 *   sts-expired    example.com, certificate-expired at mx1.mail.example.com
 *   sts-nostls     example.com, starttls-not-supported at mx2
 *   sts-fetch      example.com, sts-policy-fetch-error (no MX reached)
 *   tlsa-invalid   DANE at mx.hosting.example, reported to example.com
 *   none-ok        other.example, no policy, delivered
 *
 * Exit status: 0, 64 bad usage, 74 a write error.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlsrpt_int.h"

static const char *sts_strings[] = {"version: STSv1", "mode: enforce",
                                    "mx: *.mail.example.com",
                                    "max_age: 86400"};
static const char *sts_mx[] = {"*.mail.example.com"};
static const char *tlsa_strings[] = {"3 1 1 0123456789ABCDEF0123456789ABCDEF"};

static int make(const char *kind, struct tlsrpt_event *ev)
{
  memset(ev, 0, sizeof(*ev));
  ev->report_record = "v=TLSRPTv1; rua=mailto:tlsrpt@example.com";
  ev->policy_type = TLSRPT_POLICY_STS;
  ev->policy_strings = sts_strings;
  ev->npolicy_strings = 4;
  ev->policy_domain = "example.com";
  ev->mx_hosts = sts_mx;
  ev->nmx_hosts = 1;
  ev->receiving_mx_hostname = "mx1.mail.example.com";
  ev->receiving_ip = "198.51.100.1";
  ev->receiving_mx_helo = "mx1.mail.example.com";
  if (strcmp(kind, "sts-ok") == 0) {
    ev->success = true;
  } else if (strcmp(kind, "sts-expired") == 0) {
    ev->result_type = TLSRPT_CERTIFICATE_EXPIRED;
  } else if (strcmp(kind, "sts-nostls") == 0) {
    ev->result_type = TLSRPT_STARTTLS_NOT_SUPPORTED;
    ev->receiving_mx_hostname = "mx2.mail.example.com";
    ev->receiving_ip = "198.51.100.2";
    ev->receiving_mx_helo = "mx2.mail.example.com";
  } else if (strcmp(kind, "sts-fetch") == 0) {
    ev->result_type = TLSRPT_STS_POLICY_FETCH_ERROR;
    ev->npolicy_strings = 0;
    ev->nmx_hosts = 0;
    ev->receiving_mx_hostname = NULL;
    ev->receiving_ip = NULL;
    ev->receiving_mx_helo = NULL;
    ev->additional_information = "HTTP status 404, not 200";
  } else if (strcmp(kind, "tlsa-invalid") == 0) {
    ev->report_domain = "example.com";
    ev->policy_type = TLSRPT_POLICY_TLSA;
    ev->policy_strings = tlsa_strings;
    ev->npolicy_strings = 1;
    ev->policy_domain = "mx.hosting.example";
    ev->nmx_hosts = 0;
    ev->result_type = TLSRPT_TLSA_INVALID;
    ev->receiving_mx_hostname = "mx.hosting.example";
    ev->receiving_ip = "203.0.113.25";
    ev->receiving_mx_helo = "mx.hosting.example";
  } else if (strcmp(kind, "none-ok") == 0) {
    ev->report_record = NULL;
    ev->policy_type = TLSRPT_POLICY_NONE;
    ev->npolicy_strings = 0;
    ev->policy_domain = "other.example";
    ev->nmx_hosts = 0;
    ev->receiving_mx_hostname = "mx.other.example";
    ev->success = true;
  } else {
    return -1;
  }
  return 0;
}

int main(int argc, char **argv)
{
  if (argc < 5) {
    fprintf(stderr, "usage: tlsrpt-write FILE TIME_MS SENDING_IP "
                    "KIND=COUNT...\n");
    return 64;
  }
  struct kind {
    struct tlsrpt_event ev;
    long left;
  } kinds[16];
  int nkinds = 0;
  uint64_t time_ms = strtoull(argv[2], NULL, 10);
  for (int i = 4; i < argc && nkinds < 16; i++) {
    char name[64];
    long count;
    if (sscanf(argv[i], "%63[a-z-]=%ld", name, &count) != 2 || count < 0 ||
        make(name, &kinds[nkinds].ev) != 0) {
      fprintf(stderr, "tlsrpt-write: bad KIND=COUNT: %s\n", argv[i]);
      return 64;
    }
    kinds[nkinds].ev.time_ms = time_ms;
    kinds[nkinds].ev.sending_mta_ip = argv[3];
    kinds[nkinds].left = count;
    nkinds++;
  }
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    perror(argv[1]);
    return 74;
  }
  for (long round = 0;; round++) {
    int wrote = 0;
    for (int k = 0; k < nkinds; k++) {
      if (kinds[k].left == 0)
        continue;
      kinds[k].left--;
      struct buf line = {0};
      if (tlsrpt_event_write(&kinds[k].ev, &line) != 0 ||
          write(fd, buf_head(&line), buf_len(&line)) != (ssize_t)buf_len(&line)) {
        perror("tlsrpt-write");
        return 74;
      }
      buf_free(&line);
      wrote = 1;
    }
    if (!wrote)
      break;
  }
  return close(fd) == 0 ? 0 : 74;
}
