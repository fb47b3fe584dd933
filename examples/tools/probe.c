/*
 * probe.c — smtpout-send --probe: what a server's STARTTLS looks like,
 * as posttls-finger shows it, without a mail transaction.
 *
 * It drives a session directly (the delivery needs a message): the
 * session, started and told to quit before anything is submitted, reads
 * the greeting, sends EHLO, applies the policy (STARTTLS, the handshake,
 * the certificate check, EHLO again) and sends QUIT.  The addresses of the
 * server are tried in turn until one accepts the connection.  While the
 * session is alive the certificates the server presented can be read
 * (smtpout_session_peer_certificate()); they are read once it is done.
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
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "json.h"
#include "send.h"

/* The keywords of one EHLO reply, as the server wrote them ("SIZE
 * 10240000"), at most EHLO_MAX of them. */
#define EHLO_MAX 32
struct ehlo {
  int seen;
  size_t n;
  char kw[EHLO_MAX][128];
};

/* What the probe learned; strings are the probe's own copies. */
struct probe {
  char address[80];  /* the address connected to (or last tried) */
  char greeting[512]; /* the first line of the greeting */
  /* The EHLO replies before and after STARTTLS; `in_ehlo` points at the
   * one being read. */
  struct ehlo ehlo[2];
  struct ehlo *in_ehlo;
  int tls_started;
  int connected;
  char error[1024]; /* what went wrong, "" when nothing did */
  int verbose;
};

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void format_address(const struct sockaddr *sa, char *out, size_t len)
{
  char ip[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
    snprintf(out, len, "[%s]:%u", ip, (unsigned)ntohs(s6->sin6_port));
  } else {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
    snprintf(out, len, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
  }
}

/* A non-blocking connect bounded by `timeout_ms`.  Returns the socket, or
 * -1 with errno set. */
static int connect_timed(const struct addrinfo *ai, uint32_t timeout_ms)
{
  int fd = socket(ai->ai_family,
                  ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  ai->ai_protocol);
  if (fd < 0)
    return -1;
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
    return fd;
  if (errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  uint64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    uint64_t now = now_ms();
    if (now >= deadline) {
      close(fd);
      errno = ETIMEDOUT;
      return -1;
    }
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    uint64_t wait = deadline - now;
    int n = poll(&p, 1, wait > INT_MAX ? INT_MAX : (int)wait);
    if (n < 0 && errno != EINTR) {
      int e = errno;
      close(fd);
      errno = e;
      return -1;
    }
    if (n <= 0)
      continue;
    int err = 0;
    socklen_t elen = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
    if (err != 0) {
      close(fd);
      errno = err;
      return -1;
    }
    return fd;
  }
}

static void copy_line(char *dst, size_t dstlen, const char *line, size_t len)
{
  snprintf(dst, dstlen, "%.*s", (int)(len < dstlen - 1 ? len : dstlen - 1),
           line);
}

/* Keeps the greeting's first line and the keywords of each EHLO reply
 * (the session reads the capabilities it knows; the probe shows what the
 * server said, before TLS too); passes everything on under --verbose. */
static void on_trace(smtpout_session *s, int dir, const char *line,
                     size_t len, void *ud)
{
  struct probe *pr = ud;
  if (dir == SMTPOUT_TRACE_SENT) {
    pr->in_ehlo = NULL;
    if (len >= 5 && strncmp(line, "EHLO ", 5) == 0) {
      pr->in_ehlo = &pr->ehlo[pr->tls_started];
      pr->in_ehlo->seen = 1;
      pr->in_ehlo->n = 0;
    } else if (len == 8 && strncmp(line, "STARTTLS", 8) == 0) {
      pr->tls_started = 1;
    }
  } else if (dir == SMTPOUT_TRACE_RECEIVED) {
    if (pr->greeting[0] == '\0')
      copy_line(pr->greeting, sizeof(pr->greeting), line, len);
    /* "250-name greets", then "250-KEYWORD ..." up to "250 KEYWORD". */
    struct ehlo *e = pr->in_ehlo;
    if (e && len > 4 && strncmp(line, "250", 3) == 0) {
      if (e->seen++ > 1 && e->n < EHLO_MAX)
        copy_line(e->kw[e->n++], sizeof(e->kw[0]), line + 4, len - 4);
      if (line[3] == ' ')
        pr->in_ehlo = NULL;
    }
  }
  if (pr->verbose)
    trace_line(s, dir, line, len, NULL);
}

/* The poll() loop of a session over a connected socket, as the library's
 * own blocking driver runs it (lib/deliver.c). */
static void run_session(smtpout_session *s, int fd)
{
  uint8_t buf[16384];
  smtpout_session_start(s, now_ms());
  while (!smtpout_session_is_done(s)) {
    short events = 0;
    if (smtpout_session_want_read(s))
      events |= POLLIN;
    if (smtpout_session_want_write(s))
      events |= POLLOUT;
    if (events == 0)
      break;
    uint64_t now = now_ms(), exp = smtpout_session_expiry(s);
    int wait = -1;
    if (exp != SMTPOUT_NO_EXPIRY)
      wait = exp <= now ? 0 : (exp - now > 60000 ? 60000 : (int)(exp - now));
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, wait);
    now = now_ms();
    if (n < 0 && errno != EINTR) {
      smtpout_session_feed_eof(s, now);
      break;
    }
    if (n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t r = recv(fd, buf, sizeof(buf), 0);
      if (r > 0)
        smtpout_session_feed(s, buf, (size_t)r, now);
      else if (r == 0 || (errno != EAGAIN && errno != EINTR))
        smtpout_session_feed_eof(s, now);
    }
    if (smtpout_session_want_write(s)) {
      const uint8_t *data;
      size_t len;
      smtpout_session_peek_output(s, &data, &len, now);
      if (len > 0) {
        ssize_t w = send(fd, data, len, MSG_NOSIGNAL);
        if (w > 0)
          smtpout_session_consume_output(s, (size_t)w, now);
        else if (w < 0 && errno != EAGAIN && errno != EINTR)
          smtpout_session_feed_eof(s, now);
      }
    }
    smtpout_session_handle_expiry(s, now_ms());
  }
}

/* A new session for the probe, with the policy fixed to the one the tool
 * reports, and every timeout the tool chose. */
static int new_session(const struct send_setup *setup, struct probe *pr,
                       smtpout_session **ps)
{
  smtpout_callbacks *cbs = NULL;
  int rv = smtpout_callbacks_new(&cbs);
  if (rv != 0)
    return rv;
  smtpout_callbacks_set_on_trace(cbs, on_trace);
  rv = smtpout_session_new(ps, setup->mx, setup->config, cbs, pr);
  smtpout_callbacks_free(cbs);
  if (rv != 0)
    return rv;
  smtpout_session *s = *ps;
  if (setup->helo)
    rv = smtpout_session_set_helo_name(s, setup->helo);
  if (rv == 0 && setup->ca_file)
    rv = smtpout_session_set_ca_file(s, setup->ca_file);
  if (rv == 0 && setup->implicit_tls)
    rv = smtpout_session_set_implicit_tls(s, 1);
  if (rv == 0 && setup->client_cert)
    rv = smtpout_session_set_client_cert(s, setup->client_cert,
                                         setup->client_key);
  if (rv == 0)
    rv = smtpout_session_set_tls_policy(s, setup->starttls.value,
                                        setup->allow_invalid_certs.value);
  for (int w = 0; rv == 0 && w < SMTPOUT_TIMEOUT_COUNT; w++)
    if (w != SMTPOUT_TIMEOUT_CONNECT)
      rv = smtpout_session_set_timeout(s, w, setup->timeouts[w].ms);
  /* No message will come: greet, secure, QUIT. */
  if (rv == 0)
    rv = smtpout_session_quit(s);
  return rv;
}

/* Connects to the first address that answers and runs the session there.
 * Returns 0, or an error for which no session ran (*ps stays NULL, and
 * pr->error says why when it is a network one). */
static int probe_connect(const struct send_setup *setup, struct probe *pr,
                         smtpout_session **ps)
{
  char port[8];
  snprintf(port, sizeof(port), "%u", (unsigned)setup->port);
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICSERV};
  struct addrinfo *res = NULL;
  int gai = getaddrinfo(setup->host, port, &hints, &res);
  if (gai != 0) {
    snprintf(pr->error, sizeof(pr->error), "cannot resolve %s: %s",
             setup->host, gai_strerror(gai));
    return 0;
  }
  int rv = 0;
  for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    format_address(ai->ai_addr, pr->address, sizeof(pr->address));
    int fd = connect_timed(ai, setup->timeouts[SMTPOUT_TIMEOUT_CONNECT].ms);
    if (fd < 0) {
      snprintf(pr->error, sizeof(pr->error), "connect to %s: %s",
               pr->address, strerror(errno));
      continue;
    }
    pr->connected = 1;
    pr->error[0] = '\0';
    rv = new_session(setup, pr, ps);
    if (rv == 0)
      run_session(*ps, fd);
    close(fd);
    break;
  }
  freeaddrinfo(res);
  return rv;
}

static void format_time(char *out, size_t len, int64_t t)
{
  time_t tt = (time_t)t;
  struct tm tm;
  if (gmtime_r(&tt, &tm) == NULL ||
      strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(out, len, "%lld", (long long)t);
}

static void json_ehlo(struct json *j, const struct ehlo *e)
{
  if (!e->seen) {
    json_null(j);
    return;
  }
  json_array_begin(j);
  for (size_t i = 0; i < e->n; i++)
    json_string(j, e->kw[i]);
  json_array_end(j);
}

static void print_json(const struct send_setup *setup, const struct probe *pr,
                       smtpout_session *s)
{
  const smtpout_tls_info *ti = s ? smtpout_session_tls_info(s) : NULL;
  struct json j;
  json_init(&j, stdout);
  json_object_begin(&j);
  json_key(&j, "mx");
  json_string(&j, setup->mx);
  json_key(&j, "server");
  json_string(&j, setup->server);
  json_key(&j, "address");
  json_string(&j, pr->address[0] ? pr->address : NULL);
  json_key(&j, "policy");
  json_object_begin(&j);
  json_key(&j, "starttls");
  json_string(&j, smtpout_starttls_name(setup->starttls.value));
  json_key(&j, "allow_invalid_certs");
  json_bool(&j, setup->allow_invalid_certs.value);
  json_key(&j, "source");
  json_object_begin(&j);
  json_key(&j, "starttls");
  json_string(&j, setup->starttls.source);
  json_key(&j, "allow_invalid_certs");
  json_string(&j, setup->allow_invalid_certs.source);
  json_object_end(&j);
  json_object_end(&j);
  json_key(&j, "greeting");
  json_string(&j, pr->greeting[0] ? pr->greeting : NULL);
  json_key(&j, "ehlo");
  json_ehlo(&j, &pr->ehlo[0]);
  json_key(&j, "ehlo_tls");
  json_ehlo(&j, &pr->ehlo[1]);
  json_key(&j, "starttls");
  json_string(&j, smtpout_tls_outcome_name(smtpout_tls_info_outcome(ti)));
  json_key(&j, "tls");
  json_object_begin(&j);
  json_key(&j, "used");
  json_bool(&j, smtpout_tls_info_used(ti));
  json_key(&j, "version");
  json_string(&j, smtpout_tls_info_version(ti));
  json_key(&j, "cipher");
  json_string(&j, smtpout_tls_info_cipher(ti));
  json_key(&j, "verified");
  json_bool(&j, smtpout_tls_info_verified(ti));
  json_key(&j, "verify_error");
  json_string(&j, smtpout_tls_info_verify_error(ti));
  json_key(&j, "tlsrpt_result");
  json_string(&j, smtpout_tls_info_tlsrpt_result(ti));
  json_key(&j, "certificates");
  json_array_begin(&j);
  size_t n = s ? smtpout_session_peer_certificate_count(s) : 0;
  for (size_t i = 0; i < n; i++) {
    smtpout_certificate *c = NULL;
    if (smtpout_session_peer_certificate(s, i, &c) != 0)
      break;
    char when[64];
    format_time(when, sizeof(when), smtpout_certificate_not_after(c));
    json_object_begin(&j);
    json_key(&j, "subject");
    json_string(&j, smtpout_certificate_subject(c));
    json_key(&j, "issuer");
    json_string(&j, smtpout_certificate_issuer(c));
    json_key(&j, "not_after");
    json_string(&j, when);
    json_key(&j, "sha256");
    json_string(&j, smtpout_certificate_sha256(c));
    json_object_end(&j);
    smtpout_certificate_free(c);
  }
  json_array_end(&j);
  json_object_end(&j);
  json_key(&j, "error");
  json_string(&j, pr->error[0] ? pr->error : NULL);
  json_object_end(&j);
  fputc('\n', stdout);
}

static void label(const char *l)
{
  printf("%-12s", l);
}

static void print_certificates(smtpout_session *s)
{
  size_t n = smtpout_session_peer_certificate_count(s);
  for (size_t i = 0; i < n; i++) {
    smtpout_certificate *c = NULL;
    if (smtpout_session_peer_certificate(s, i, &c) != 0) {
      label("certificate");
      printf("%zu cannot be read\n", i);
      continue;
    }
    char when[64];
    format_time(when, sizeof(when), smtpout_certificate_not_after(c));
    label("certificate");
    printf("%zu subject   ", i);
    print_safe(smtpout_certificate_subject(c));
    printf("\n%-12s  issuer    ", "");
    print_safe(smtpout_certificate_issuer(c));
    printf("\n%-12s  not after %s\n", "", when);
    printf("%-12s  sha256    %s\n", "", smtpout_certificate_sha256(c));
    smtpout_certificate_free(c);
  }
}

static void print_text(const struct send_setup *setup, const struct probe *pr,
                       smtpout_session *s)
{
  const smtpout_tls_info *ti = s ? smtpout_session_tls_info(s) : NULL;
  label("server");
  print_safe(pr->address[0] ? pr->address : setup->server);
  fputs(" (", stdout);
  print_safe(setup->mx);
  fputs(")\n", stdout);
  label("policy");
  paint(setup, SGR_BOLD);
  printf("starttls = %s", smtpout_starttls_name(setup->starttls.value));
  paint_end(setup);
  fputs(" (", stdout);
  print_safe(setup->starttls.source);
  fputs("), ", stdout);
  paint(setup, SGR_BOLD);
  printf("allow-invalid-certs = %s",
         setup->allow_invalid_certs.value ? "true" : "false");
  paint_end(setup);
  fputs(" (", stdout);
  print_safe(setup->allow_invalid_certs.source);
  fputs(")\n", stdout);
  if (pr->greeting[0]) {
    label("greeting");
    print_safe(pr->greeting);
    putchar('\n');
  }
  for (int i = 0; i < 2; i++) {
    if (!pr->ehlo[i].seen)
      continue;
    label(i ? "ehlo (tls)" : "ehlo");
    for (size_t k = 0; k < pr->ehlo[i].n; k++) {
      fputs(k ? ", " : "", stdout);
      print_safe(pr->ehlo[i].kw[k]);
    }
    putchar('\n');
  }
  if (pr->connected) {
    label("starttls");
    printf("%s\n", smtpout_tls_outcome_name(smtpout_tls_info_outcome(ti)));
  }
  if (smtpout_tls_info_used(ti)) {
    label("tls");
    printf("%s %s%s\n", smtpout_tls_info_version(ti),
           smtpout_tls_info_cipher(ti),
           smtpout_tls_info_resumed(ti) ? " (resumed)" : "");
    print_certificates(s);
    label("verified");
    if (smtpout_tls_info_verified(ti)) {
      paint(setup, SGR_GREEN);
      printf("yes: the chain reaches a trust anchor, is current and names ");
      print_safe(setup->mx);
    } else {
      paint(setup, setup->allow_invalid_certs.value ? SGR_YELLOW : SGR_RED);
      fputs("NO: ", stdout);
      print_safe(smtpout_tls_info_verify_error(ti)
                   ? smtpout_tls_info_verify_error(ti)
                   : "not verified");
      if (setup->allow_invalid_certs.value)
        fputs(" (accepted: allow-invalid-certs = true)", stdout);
    }
    paint_end(setup);
    putchar('\n');
  }
  label("result");
  if (pr->error[0]) {
    paint(setup, SGR_RED);
    fputs("FAILED: ", stdout);
    print_safe(pr->error);
  } else {
    paint(setup, SGR_GREEN);
    fputs("OK: the policy is met (mail would go on; QUIT sent)", stdout);
  }
  paint_end(setup);
  putchar('\n');
}

int probe_run(const struct send_setup *setup)
{
  struct probe pr = {.verbose = setup->verbose};
  smtpout_session *s = NULL;
  int rv = probe_connect(setup, &pr, &s);
  if (rv == SMTPOUT_ERR_BAD_NAME) {
    fprintf(stderr, "smtpout-send: bad --helo name \"%s\"\n",
            setup->helo ? setup->helo : "");
    smtpout_session_free(s);
    return EX_USAGE_;
  }
  if (rv != 0) {
    fprintf(stderr, "smtpout-send: %s\n", smtpout_strerror(rv));
    smtpout_session_free(s);
    return EX_SOFTWARE_;
  }
  if (s && smtpout_session_close_reason(s) != SMTPOUT_CLOSE_NONE)
    snprintf(pr.error, sizeof(pr.error), "%s",
             smtpout_session_close_text(s));
  if (setup->json)
    print_json(setup, &pr, s);
  else
    print_text(setup, &pr, s);
  smtpout_session_free(s);
  return pr.error[0] ? EX_TEMPFAIL_ : EX_OK_;
}
