/*
 * tls-floor — the least a STARTTLS client can do per message: the floor
 * smtpout-bench's TLS figures are held against (docs/performance.md).
 *
 *   tls-floor [-m MESSAGES] [-d] [-H] [-l LENGTH] --ca-file CA
 *             --mx-name NAME [--priority STRING] HOST:PORT
 *
 * One blocking connection at a time, GnuTLS straight on the socket, no
 * parsing beyond the reply code, commands as fixed strings: greeting,
 * EHLO, STARTTLS, a full handshake (credentials and priority built once,
 * as any client would), the same certificate verification smtpout does
 * (gnutls_certificate_verify_peers3 against the MX name), EHLO again, then
 * MAIL, RCPT and DATA pipelined, the message smtpout-bench sends, QUIT and
 * close_notify.  -d sends every message on one connection; -H stops after
 * the second EHLO (the handshake alone).  Exits 1 if anything is refused.
 * Every handshake verifies the chain from scratch: smtpout's cache of
 * verified chains (lib/tls_int.h) is exactly what the floor leaves out.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

/* smtpout's default priority string (lib/config_int.h). */
#define DEFAULT_PRIORITY                                                      \
  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-GROUP-ALL:+GROUP-X25519:"      \
  "+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1:+GROUP-X448:"           \
  "+GROUP-FFDHE2048:+GROUP-FFDHE3072:+GROUP-FFDHE4096:+GROUP-FFDHE6144:"      \
  "+GROUP-FFDHE8192"

static gnutls_session_t tls; /* NULL before STARTTLS */
static int fd = -1;
static char rbuf[8192];
static size_t rlen;

static void die(const char *what, const char *why)
{
  fprintf(stderr, "tls-floor: %s: %s\n", what, why);
  exit(1);
}

static void put(const void *p, size_t n)
{
  const char *c = p;
  while (n > 0) {
    ssize_t w = tls ? gnutls_record_send(tls, c, n) : send(fd, c, n, 0);
    if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED)
      continue;
    if (w <= 0)
      die("write", tls ? gnutls_strerror((int)w) : strerror(errno));
    c += w;
    n -= (size_t)w;
  }
}

static void puts_(const char *s) { put(s, strlen(s)); }

/* Reads one complete reply and returns its code. */
static int reply(void)
{
  for (;;) {
    /* A reply is complete once a line with a space after the code ends. */
    size_t start = 0;
    for (size_t i = 0; i < rlen; i++) {
      if (rbuf[i] != '\n')
        continue;
      if (i - start >= 3 && (i - start == 4 || rbuf[start + 3] == ' ' ||
                             rbuf[start + 3] == '\r')) {
        int code = atoi(rbuf + start);
        memmove(rbuf, rbuf + i + 1, rlen - i - 1);
        rlen -= i + 1;
        return code;
      }
      start = i + 1;
    }
    if (rlen == sizeof(rbuf))
      die("reply", "too long");
    ssize_t n = tls ? gnutls_record_recv(tls, rbuf + rlen, sizeof(rbuf) - rlen)
                    : recv(fd, rbuf + rlen, sizeof(rbuf) - rlen, 0);
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
      continue;
    if (n <= 0)
      die("read", tls ? gnutls_strerror((int)n) : "connection closed");
    rlen += (size_t)n;
  }
}

static void expect(int want, const char *what)
{
  int code = reply();
  if (code != want) {
    char b[64];
    snprintf(b, sizeof(b), "reply %d", code);
    die(what, b);
  }
}

int main(int argc, char **argv)
{
  long messages = 1, length = 0;
  int reuse = 0, handshake_only = 0;
  const char *ca = NULL, *mx = NULL, *priority = DEFAULT_PRIORITY;
  static const struct option lopts[] = {
    {"ca-file", required_argument, NULL, 'C'},
    {"mx-name", required_argument, NULL, 'X'},
    {"priority", required_argument, NULL, 'P'},
    {NULL, 0, NULL, 0},
  };
  int c;
  while ((c = getopt_long(argc, argv, "m:dHl:", lopts, NULL)) != -1) {
    switch (c) {
    case 'm': messages = atol(optarg); break;
    case 'd': reuse = 1; break;
    case 'H': handshake_only = 1; break;
    case 'l': length = atol(optarg); break;
    case 'C': ca = optarg; break;
    case 'X': mx = optarg; break;
    case 'P': priority = optarg; break;
    default: return 64;
    }
  }
  if (argc - optind != 1 || ca == NULL || mx == NULL || messages <= 0)
    die("usage", "tls-floor [-m N] [-d] [-H] [-l LENGTH] --ca-file CA "
                 "--mx-name NAME [--priority P] HOST:PORT");

  char host[256];
  const char *colon = strrchr(argv[optind], ':');
  if (colon == NULL || (size_t)(colon - argv[optind]) >= sizeof(host))
    die("usage", "HOST:PORT");
  memcpy(host, argv[optind], (size_t)(colon - argv[optind]));
  host[colon - argv[optind]] = '\0';
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
  if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
    die(argv[optind], "cannot resolve");

  /* The same message smtpout-bench sends (smtp-source's shape). */
  char *body;
  size_t body_len;
  {
    char hdr[512];
    int hn = snprintf(hdr, sizeof(hdr),
                      "From: <foo@vm>\r\nTo: <foo@vm>\r\nDate: Mon, 1 Jan "
                      "2024 00:00:00 +0000\r\nMessage-Id: "
                      "<0001.0002.0003@vm>\r\n\r\n");
    const char *la = "La de da de da 1.\r\nLa de da de da 2.\r\n"
                     "La de da de da 3.\r\nLa de da de da 4.\r\n";
    size_t pl = length > 0 ? (size_t)length : strlen(la);
    body = malloc((size_t)hn + pl + 8);
    memcpy(body, hdr, (size_t)hn);
    if (length > 0) {
      memset(body + hn, 'X', pl);
      for (long i = 80; i < length; i += 80) {
        body[hn + i - 80] = "0123456789"[(i / 80) % 10];
        body[hn + i - 2] = '\r';
        body[hn + i - 1] = '\n';
      }
      memcpy(body + hn + pl, "\r\n", 2);
      pl += 2;
    } else {
      memcpy(body + hn, la, pl);
    }
    memcpy(body + hn + pl, ".\r\n", 3);
    body_len = (size_t)hn + pl + 3;
  }

  gnutls_certificate_credentials_t cred;
  gnutls_priority_t prio;
  gnutls_certificate_allocate_credentials(&cred);
  if (gnutls_certificate_set_x509_trust_file(cred, ca, GNUTLS_X509_FMT_PEM) <=
      0)
    die(ca, "no certificate");
  if (gnutls_priority_init(&prio, priority, NULL) < 0)
    die(priority, "bad priority");

  struct timespec t0, t1;
  struct rusage r0, r1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  getrusage(RUSAGE_SELF, &r0);
  long sent = 0, conns = 0;
  while (sent < messages) {
    fd = socket(ai->ai_family, SOCK_STREAM, 0);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    /* GnuTLS writes each handshake flight and record as it comes: without
     * this, Nagle holds the EHLO behind the Finished until the server's
     * delayed ACK (40 ms). */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
      die("connect", strerror(errno));
    conns++;
    expect(220, "greeting");
    puts_("EHLO vm\r\n");
    expect(250, "EHLO");
    puts_("STARTTLS\r\n");
    expect(220, "STARTTLS");

    /* One key share, as smtpout sends: GnuTLS's default of two would
     * put an unused key generation into the floor. */
    gnutls_init(&tls, GNUTLS_CLIENT | GNUTLS_KEY_SHARE_TOP);
    gnutls_priority_set(tls, prio);
    gnutls_credentials_set(tls, GNUTLS_CRD_CERTIFICATE, cred);
    gnutls_server_name_set(tls, GNUTLS_NAME_DNS, mx, strlen(mx));
    gnutls_transport_set_int(tls, fd);
    int rv;
    do
      rv = gnutls_handshake(tls);
    while (rv < 0 && !gnutls_error_is_fatal(rv));
    if (rv < 0)
      die("handshake", gnutls_strerror(rv));
    unsigned status;
    if (gnutls_certificate_verify_peers3(tls, mx, &status) < 0 || status)
      die("certificate", "not verified");
    puts_("EHLO vm\r\n");
    expect(250, "EHLO over TLS");

    do {
      if (handshake_only) {
        sent++;
        break;
      }
      puts_("MAIL FROM:<foo@vm>\r\nRCPT TO:<foo@vm>\r\nDATA\r\n");
      expect(250, "MAIL");
      expect(250, "RCPT");
      expect(354, "DATA");
      put(body, body_len);
      expect(250, "end of data");
      sent++;
    } while (reuse && sent < messages);

    puts_("QUIT\r\n");
    expect(221, "QUIT");
    gnutls_bye(tls, GNUTLS_SHUT_WR);
    gnutls_deinit(tls);
    tls = NULL;
    rlen = 0;
    close(fd);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  getrusage(RUSAGE_SELF, &r1);
  double wall = (double)(t1.tv_sec - t0.tv_sec) +
                (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  double cpu =
      (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) +
      (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e6 +
      (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
      (double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
  printf("%ld %s over %ld connections in %.3f s: %.0f/s, client CPU %.1f "
         "us each\n",
         sent, handshake_only ? "handshakes" : "messages", conns, wall,
         (double)sent / wall, cpu * 1e6 / (double)sent);
  printf("RESULT messages=%ld wall=%.4f mps=%.1f cpu_us_per_msg=%.2f\n", sent,
         wall, (double)sent / wall, cpu * 1e6 / (double)sent);
  gnutls_priority_deinit(prio);
  gnutls_certificate_free_credentials(cred);
  freeaddrinfo(ai);
  free(body);
  return 0;
}
