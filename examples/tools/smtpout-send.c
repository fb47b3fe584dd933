/*
 * smtpout-send — deliver one message to one SMTP server under the
 * configured TLS policy, and say what happened (DESIGN section 5).
 *
 *   smtpout-send --server HOST[:PORT] [--mx-name NAME] --from ADDR
 *                --to ADDR [--to ADDR ...] [--data FILE|-] [--config FILE]
 *                [--ca-file FILE] [--helo NAME] [--smtputf8] [--json]
 *                [--verbose]
 *
 * The delivery scans the message for what it needs (8BITMIME, SMTPUTF8,
 * its size on the wire); --smtputf8 requires SMTPUTF8 for an ASCII one.
 *
 * Exit status (sysexits.h): 0 every recipient delivered; 75 any deferred;
 * 69 otherwise any bounced; 64 bad usage; 66 unreadable data; 78 bad
 * configuration; 70 internal error.
 */
/* POSIX.1-2008 (clock_gettime, getaddrinfo, strndup, ...) and the BSD/Linux
 * extras (TCP_QUICKACK, SOCK_NONBLOCK) under a strict `cc -std=c11`. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <smtpout/smtpout.h>

#include "json.h"

enum {
  EX_OK_ = 0,
  EX_USAGE_ = 64,
  EX_NOINPUT_ = 66,
  EX_UNAVAILABLE_ = 69,
  EX_SOFTWARE_ = 70,
  EX_TEMPFAIL_ = 75,
  EX_CONFIG_ = 78
};

static void usage(FILE *f)
{
  fputs("usage: smtpout-send --server HOST[:PORT] [--mx-name NAME] "
        "--from ADDR --to ADDR [--to ADDR ...]\n"
        "                    [--data FILE|-] [--config FILE] "
        "[--ca-file FILE] [--helo NAME] [--smtputf8]\n"
        "                    [--json] [--verbose]\n"
        "Delivers one message (read from FILE, or standard input) to one "
        "SMTP server\nunder the TLS policy of the configuration, and reports "
        "each recipient's result.\n",
        f);
}

/* Splits "host", "host:port", "[v6]:port" or "[v6]". */
static int parse_server(const char *arg, char **host, uint16_t *port)
{
  const char *colon = NULL;
  const char *hs = arg, *he;
  if (arg[0] == '[') {
    he = strchr(arg, ']');
    if (he == NULL)
      return -1;
    hs = arg + 1;
    if (he[1] == ':')
      colon = he + 1;
    else if (he[1] != '\0')
      return -1;
  } else {
    colon = strrchr(arg, ':');
    if (colon && strchr(arg, ':') != colon)
      colon = NULL; /* a bare IPv6 address: no port */
    he = colon ? colon : arg + strlen(arg);
  }
  *port = 25;
  if (colon) {
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p <= 0 || p > 65535)
      return -1;
    *port = (uint16_t)p;
  }
  if (he == hs)
    return -1;
  *host = strndup(hs, (size_t)(he - hs));
  return *host ? 0 : -1;
}

/* Copies everything readable from `in` into a new temporary file. */
static int spool(int in)
{
  FILE *tmp = tmpfile();
  if (tmp == NULL)
    return -1;
  int fd = dup(fileno(tmp));
  fclose(tmp);
  if (fd < 0)
    return -1;
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof(buf))) > 0)
    if (write(fd, buf, (size_t)n) != n) {
      close(fd);
      return -1;
    }
  if (n < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* The body must be re-readable (a fallback or another address sends it
 * again) and its size known: standard input, pipes and devices are
 * spooled to a temporary file; regular files are read in place. */
static int open_body(const char *path)
{
  int fd;
  if (path == NULL || strcmp(path, "-") == 0) {
    fd = spool(STDIN_FILENO);
  } else {
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
      close(fd);
      return -1;
    }
    if (!S_ISREG(st.st_mode)) {
      int copy = spool(fd);
      close(fd);
      fd = copy;
    }
  }
  return fd;
}

static void trace(smtpout_session *s, int dir, const char *line, size_t len,
                  void *ud)
{
  static const char *const prefix[] = {"C: ", "S: ", "-- "};
  (void)s;
  (void)ud;
  fputs(prefix[dir], stderr);
  fwrite(line, 1, len, stderr);
  fputc('\n', stderr);
}

static void print_tls(struct json *j, const smtpout_tls_info *ti)
{
  json_object_begin(j);
  json_key(j, "used");
  json_bool(j, smtpout_tls_info_used(ti));
  json_key(j, "version");
  json_string(j, smtpout_tls_info_version(ti));
  json_key(j, "cipher");
  json_string(j, smtpout_tls_info_cipher(ti));
  json_key(j, "verified");
  json_bool(j, smtpout_tls_info_verified(ti));
  json_key(j, "verify_error");
  json_string(j, smtpout_tls_info_verify_error(ti));
  json_key(j, "tlsrpt_result");
  json_string(j, smtpout_tls_info_tlsrpt_result(ti));
  json_object_end(j);
}

static void print_json(const smtpout_delivery *d, const char *mx,
                       const char *server)
{
  struct json j;
  json_init(&j, stdout);
  json_object_begin(&j);
  json_key(&j, "mx");
  json_string(&j, mx);
  json_key(&j, "server");
  json_string(&j, server);

  const smtpout_policy *p = smtpout_delivery_policy(d);
  json_key(&j, "policy");
  json_object_begin(&j);
  json_key(&j, "starttls");
  json_string(&j, smtpout_starttls_name(smtpout_policy_starttls(p)));
  json_key(&j, "allow_invalid_certs");
  json_bool(&j, smtpout_policy_allow_invalid_certs(p));
  json_key(&j, "source");
  json_object_begin(&j);
  json_key(&j, "starttls");
  json_string(&j, smtpout_policy_source(p, SMTPOUT_KNOB_STARTTLS));
  json_key(&j, "allow_invalid_certs");
  json_string(&j, smtpout_policy_source(p, SMTPOUT_KNOB_ALLOW_INVALID_CERTS));
  json_object_end(&j);
  json_object_end(&j);

  json_key(&j, "attempts");
  json_array_begin(&j);
  for (size_t i = 0; i < smtpout_delivery_attempt_count(d); i++) {
    const smtpout_attempt *a = smtpout_delivery_attempt(d, i);
    const smtpout_tls_info *ti = smtpout_attempt_tls_info(a);
    json_object_begin(&j);
    json_key(&j, "address");
    json_string(&j, smtpout_attempt_address(a));
    json_key(&j, "starttls");
    json_string(&j, smtpout_tls_outcome_name(smtpout_tls_info_outcome(ti)));
    json_key(&j, "plaintext_fallback");
    json_bool(&j, smtpout_attempt_plaintext_fallback(a));
    json_key(&j, "tls");
    print_tls(&j, ti);
    json_key(&j, "error");
    json_string(&j, smtpout_attempt_error(a));
    json_object_end(&j);
  }
  json_array_end(&j);

  json_key(&j, "recipients");
  json_array_begin(&j);
  for (size_t i = 0; i < smtpout_delivery_recipient_count(d); i++) {
    const smtpout_result *r = smtpout_delivery_result(d, i);
    json_object_begin(&j);
    json_key(&j, "address");
    json_string(&j, smtpout_result_recipient(r));
    json_key(&j, "status");
    json_string(&j, smtpout_status_name(smtpout_result_status(r)));
    json_key(&j, "code");
    if (smtpout_result_code(r))
      json_int(&j, smtpout_result_code(r));
    else
      json_null(&j);
    json_key(&j, "enhanced");
    json_string(&j, smtpout_result_enhanced(r)[0] ? smtpout_result_enhanced(r)
                                                  : NULL);
    json_key(&j, "text");
    json_string(&j, smtpout_result_text(r));
    json_key(&j, "possibly_delivered");
    json_bool(&j, smtpout_result_possibly_delivered(r));
    json_object_end(&j);
  }
  json_array_end(&j);
  json_object_end(&j);
  fputc('\n', stdout);
}

static void print_text(const smtpout_delivery *d)
{
  for (size_t i = 0; i < smtpout_delivery_attempt_count(d); i++) {
    const smtpout_attempt *a = smtpout_delivery_attempt(d, i);
    const smtpout_tls_info *ti = smtpout_attempt_tls_info(a);
    printf("attempt %zu: %s starttls=%s%s", i + 1, smtpout_attempt_address(a),
           smtpout_tls_outcome_name(smtpout_tls_info_outcome(ti)),
           smtpout_attempt_plaintext_fallback(a) ? " (plaintext fallback)"
                                                 : "");
    if (smtpout_tls_info_used(ti))
      printf(" %s %s %s", smtpout_tls_info_version(ti),
             smtpout_tls_info_cipher(ti),
             smtpout_tls_info_verified(ti) ? "verified" : "unverified");
    if (smtpout_attempt_error(a))
      printf(" error: %s", smtpout_attempt_error(a));
    putchar('\n');
  }
  for (size_t i = 0; i < smtpout_delivery_recipient_count(d); i++) {
    const smtpout_result *r = smtpout_delivery_result(d, i);
    printf("%s: %s", smtpout_result_recipient(r),
           smtpout_status_name(smtpout_result_status(r)));
    if (smtpout_result_code(r))
      printf(" %d", smtpout_result_code(r));
    if (smtpout_result_enhanced(r)[0])
      printf(" %s", smtpout_result_enhanced(r));
    printf(" %s%s\n", smtpout_result_text(r),
           smtpout_result_possibly_delivered(r) ? " (possibly delivered)"
                                                : "");
  }
}

int main(int argc, char **argv)
{
  static const struct option opts[] = {
    {"server", required_argument, NULL, 's'},
    {"mx-name", required_argument, NULL, 'm'},
    {"from", required_argument, NULL, 'f'},
    {"to", required_argument, NULL, 't'},
    {"data", required_argument, NULL, 'd'},
    {"config", required_argument, NULL, 'c'},
    {"ca-file", required_argument, NULL, 'C'},
    {"helo", required_argument, NULL, 'H'},
    {"smtputf8", no_argument, NULL, 'U'},
    {"json", no_argument, NULL, 'j'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  const char *server = NULL, *mx = NULL, *from = NULL, *data = NULL;
  const char *config_path = NULL, *ca_file = NULL, *helo = NULL;
  const char **to = calloc((size_t)argc, sizeof(*to));
  size_t nto = 0;
  int json = 0, verbose = 0, smtputf8 = 0, c;
  /* Everything below is released at `out`, on every path: the tool runs
   * under valgrind in the tests, leaks on error paths included. */
  int ex = EX_SOFTWARE_, fd = -1, rv;
  char *host = NULL;
  smtpout_config *config = NULL;
  smtpout_delivery *d = NULL;

  if (to == NULL)
    return EX_SOFTWARE_;
  while ((c = getopt_long(argc, argv, "s:m:f:t:d:c:C:H:Ujvh", opts, NULL)) !=
         -1) {
    switch (c) {
    case 's': server = optarg; break;
    case 'm': mx = optarg; break;
    case 'f': from = optarg; break;
    case 't': to[nto++] = optarg; break;
    case 'd': data = optarg; break;
    case 'c': config_path = optarg; break;
    case 'C': ca_file = optarg; break;
    case 'H': helo = optarg; break;
    case 'U': smtputf8 = 1; break;
    case 'j': json = 1; break;
    case 'v': verbose = 1; break;
    case 'h': usage(stdout); ex = EX_OK_; goto out;
    default: usage(stderr); ex = EX_USAGE_; goto out;
    }
  }
  ex = EX_USAGE_;
  if (optind != argc || server == NULL || from == NULL || nto == 0) {
    usage(stderr);
    goto out;
  }
  if (from[0] != '\0' && smtpout_address_check(from) != 0) {
    fprintf(stderr, "smtpout-send: bad sender address\n");
    goto out;
  }
  uint16_t port;
  if (parse_server(server, &host, &port) != 0) {
    fprintf(stderr, "smtpout-send: bad --server \"%s\" (HOST[:PORT])\n",
            server);
    goto out;
  }

  if (config_path) {
    char err[4096];
    rv = smtpout_config_load_file(&config, config_path, err, sizeof(err));
    if (rv != 0) {
      fprintf(stderr, "%s", err);
      if (err[0] && err[strlen(err) - 1] != '\n')
        fputc('\n', stderr);
      ex = EX_CONFIG_;
      goto out;
    }
  } else if ((rv = smtpout_config_new(&config)) != 0) {
    fprintf(stderr, "smtpout-send: %s\n", smtpout_strerror(rv));
    ex = EX_SOFTWARE_;
    goto out;
  }

  fd = open_body(data);
  if (fd < 0) {
    fprintf(stderr, "smtpout-send: cannot read message %s: %s\n",
            data ? data : "from standard input", strerror(errno));
    ex = EX_NOINPUT_;
    goto out;
  }

  ex = EX_SOFTWARE_;
  if ((rv = smtpout_delivery_new(&d, config)) != 0) {
    fprintf(stderr, "smtpout-send: %s\n", smtpout_strerror(rv));
    goto out;
  }

  if (helo && smtpout_delivery_set_helo_name(d, helo) ==
                  SMTPOUT_ERR_BAD_NAME) {
    fprintf(stderr, "smtpout-send: bad --helo name \"%s\"\n", helo);
    ex = EX_USAGE_;
    goto out;
  }
  rv = smtpout_delivery_set_server(d, host, port);
  if (rv == 0 && mx)
    rv = smtpout_delivery_set_mx_name(d, mx);
  if (rv == 0 && ca_file)
    rv = smtpout_delivery_set_ca_file(d, ca_file);
  if (rv == 0)
    rv = smtpout_delivery_set_sender(d, from);
  for (size_t i = 0; rv == 0 && i < nto; i++)
    rv = smtpout_delivery_add_recipient(d, to[i]);
  if (rv == 0)
    rv = smtpout_delivery_set_body_fd(d, fd);
  if (rv == 0 && smtputf8)
    rv = smtpout_delivery_set_flags(d, SMTPOUT_MESSAGE_SMTPUTF8);
  if (rv == 0 && verbose)
    rv = smtpout_delivery_set_trace(d, trace, NULL);
  if (rv == 0)
    rv = smtpout_delivery_run(d);
  if (rv == SMTPOUT_ERR_BAD_NAME) {
    fprintf(stderr, "smtpout-send: bad MX name \"%s\"\n", mx ? mx : host);
    ex = EX_USAGE_;
    goto out;
  }
  if (rv == SMTPOUT_ERR_IO) {
    fprintf(stderr, "smtpout-send: cannot read message %s\n",
            data ? data : "from standard input");
    ex = EX_NOINPUT_;
    goto out;
  }
  if (rv != 0) {
    fprintf(stderr, "smtpout-send: %s\n", smtpout_strerror(rv));
    goto out;
  }

  if (json)
    print_json(d, mx ? mx : host, server);
  else
    print_text(d);

  int deferred = 0, bounced = 0;
  for (size_t i = 0; i < smtpout_delivery_recipient_count(d); i++) {
    int st = smtpout_result_status(smtpout_delivery_result(d, i));
    deferred |= st == SMTPOUT_STATUS_DEFERRED;
    bounced |= st == SMTPOUT_STATUS_BOUNCED;
  }
  ex = deferred ? EX_TEMPFAIL_ : bounced ? EX_UNAVAILABLE_ : EX_OK_;

out:
  smtpout_delivery_free(d);
  smtpout_config_unref(config); /* the delivery held its own reference */
  if (fd >= 0)
    close(fd);
  free(host);
  free(to);
  return ex;
}
