/*
 * smtpout-redis-send — one message to a domain, with the MTA-STS cache
 * and the TLS-RPT events in Redis (redis-store.c): what each process of a
 * sending cluster would do.  An example, not an installed tool.
 *
 *   smtpout-redis-send --redis unix:PATH|HOST:PORT --config FILE
 *                      --domain D --from ADDR --to ADDR [--to ADDR ...]
 *                      --data FILE
 *   smtpout-redis-send --redis unix:PATH|HOST:PORT --events
 *
 * The first prints one line per recipient ("delivered a@example.org 250
 * 2.0.0 ...") and "cache: waited for another process's fetch" when it
 * did; exit status 0 when every recipient was delivered, 75 when any was
 * deferred, 69 otherwise.  The second prints the TLS-RPT events every
 * process stored, one per line, for smtpout-tlsrpt --events -.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <smtpout/smtpout.h>

#include "redis-store.h"

static int usage(void)
{
  fputs("usage: smtpout-redis-send --redis WHERE --config FILE --domain D "
        "--from ADDR --to ADDR [--to ADDR ...] --data FILE\n"
        "       smtpout-redis-send --redis WHERE --events\n",
        stderr);
  return 64;
}

/* Prints the events list, one line each. */
static int dump_events(const char *where)
{
  const char *err;
  struct redis_store *rs = redis_store_open(where, &err);
  if (rs == NULL) {
    fprintf(stderr, "smtpout-redis-send: %s: %s\n", where, err);
    return 69;
  }
  int rv = redis_store_print_events(rs, stdout) == 0 ? 0 : 69;
  redis_store_close(rs);
  return rv;
}

int main(int argc, char **argv)
{
  const char *where = NULL, *config_path = NULL, *domain = NULL,
             *from = NULL, *data = NULL;
  const char **to = calloc((size_t)argc, sizeof(*to));
  size_t nto = 0;
  int events = 0;
  if (to == NULL)
    return 70;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    if (strcmp(o, "--events") == 0) {
      events = 1;
      continue;
    }
    if (i + 1 == argc) {
      free(to);
      return usage();
    }
    const char *v = argv[++i];
    if (strcmp(o, "--redis") == 0)
      where = v;
    else if (strcmp(o, "--config") == 0)
      config_path = v;
    else if (strcmp(o, "--domain") == 0)
      domain = v;
    else if (strcmp(o, "--from") == 0)
      from = v;
    else if (strcmp(o, "--to") == 0)
      to[nto++] = v;
    else if (strcmp(o, "--data") == 0)
      data = v;
    else {
      free(to);
      return usage();
    }
  }
  if (where && events) {
    free(to);
    return dump_events(where);
  }
  if (!where || !config_path || !domain || !from || !nto || !data) {
    free(to);
    return usage();
  }

  int ex = 70;
  char err[4096];
  smtpout_config *config = NULL;
  smtpout_delivery *d = NULL;
  const char *why;
  struct redis_store *rs = redis_store_open(where, &why);
  int fd = open(data, O_RDONLY | O_CLOEXEC);
  if (rs == NULL || fd < 0) {
    fprintf(stderr, "smtpout-redis-send: %s\n",
            rs == NULL ? why : "cannot open --data");
    goto out;
  }
  if (smtpout_config_load_file(&config, config_path, err, sizeof(err)) != 0) {
    fputs(err, stderr);
    ex = 78;
    goto out;
  }
  int rv = smtpout_delivery_new(&d, config);
  if (rv == 0)
    rv = smtpout_delivery_set_domain(d, domain);
  /* The two lines that make the cluster share its state. */
  if (rv == 0)
    rv = smtpout_delivery_set_store(d, redis_store_get, redis_store_put, rs);
  if (rv == 0)
    rv = smtpout_delivery_set_tlsrpt_events(d, redis_store_event, rs);
  if (rv == 0)
    rv = smtpout_delivery_set_sender(d, from);
  for (size_t i = 0; rv == 0 && i < nto; i++)
    rv = smtpout_delivery_add_recipient(d, to[i]);
  if (rv == 0)
    rv = smtpout_delivery_set_body_fd(d, fd);
  if (rv == 0)
    rv = smtpout_delivery_run(d);
  redis_store_release(rs);
  if (rv != 0) {
    fprintf(stderr, "smtpout-redis-send: %s\n", smtpout_strerror(rv));
    goto out;
  }
  int deferred = 0, bounced = 0;
  for (size_t i = 0; i < smtpout_delivery_recipient_count(d); i++) {
    const smtpout_result *r = smtpout_delivery_result(d, i);
    int st = smtpout_result_status(r);
    printf("%s %s %d %s %s\n", smtpout_status_name(st),
           smtpout_result_recipient(r), smtpout_result_code(r),
           smtpout_result_enhanced(r), smtpout_result_text(r));
    deferred |= st == SMTPOUT_STATUS_DEFERRED;
    bounced |= st == SMTPOUT_STATUS_BOUNCED;
  }
  if (redis_store_waits_served(rs) > 0)
    printf("cache: waited for another process's fetch\n");
  if (smtpout_delivery_tlsrpt_events_lost(d) > 0)
    fprintf(stderr, "smtpout-redis-send: %u TLS-RPT events lost\n",
            (unsigned)smtpout_delivery_tlsrpt_events_lost(d));
  ex = deferred ? 75 : bounced ? 69 : 0;
out:
  smtpout_delivery_free(d);
  smtpout_config_unref(config);
  redis_store_close(rs);
  if (fd >= 0)
    close(fd);
  free(to);
  return ex;
}
