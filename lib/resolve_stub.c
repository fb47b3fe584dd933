/*
 * resolve_stub.c — the trust-ad and off resolvers: our own UDP/TCP stub
 * (see resolve_int.h for why not res_nquery).
 *
 * One query: up to two rounds over the nameservers (resolv.conf's default
 * "attempts:2"), each try bounded by an equal share of the time left.
 * A datagram counts only if it comes from the server the socket is
 * connected to, parses, and answers our id, name and type (RFC 5452 9.1);
 * anything else is dropped and the wait goes on.  A truncated answer is
 * asked again over TCP from the same server.  NOERROR and NXDOMAIN end
 * the query; a SERVFAIL, REFUSED or the like moves on to the next server,
 * and the most telling of them is returned when no server does better.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dns_int.h"
#include "resolve_int.h"
#include "smtpout/common.h"

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint16_t random_id(void)
{
  uint16_t id;
  if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id)) {
    /* Only before the kernel's pool is ready (early boot): not the
     * situation a mail queue runs in, but never an unchanging id. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    id = (uint16_t)(ts.tv_nsec ^ (ts.tv_nsec >> 16) ^ getpid());
  }
  return id;
}

/* RFC 8914 4: the INFO-CODEs that report a DNSSEC validation failure. */
static const char *ede_dnssec_name(int ede)
{
  switch (ede) {
  case 1: return "Unsupported DNSKEY Algorithm";
  case 2: return "Unsupported DS Digest Type";
  case 5: return "DNSSEC Indeterminate";
  case 6: return "DNSSEC Bogus";
  case 7: return "Signature Expired";
  case 8: return "Signature Not Yet Valid";
  case 9: return "DNSKEY Missing";
  case 10: return "RRSIGs Missing";
  case 11: return "No Zone Key Bit Set";
  case 12: return "NSEC Missing";
  default: return NULL;
  }
}

enum ask_result { ASK_OK = 0, ASK_TIMEOUT = 1, ASK_FAILED = 2 };

struct ask {
  const struct resolver_server *server;
  const struct dns_name *qname;
  uint16_t qtype;
  unsigned flags;       /* DNS_QUERY_* */
  uint64_t deadline;
  uint8_t *resp;        /* RESOLVER_MAX_ANSWER octets */
  size_t len;
  struct dns_msg *msg;  /* the parsed response after ASK_OK */
  char error[96];       /* after ASK_FAILED */
};

static int wait_fd(int fd, short events, uint64_t deadline)
{
  for (;;) {
    uint64_t now = now_ms();
    if (now >= deadline)
      return 0;
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, (int)(deadline - now > 60000 ? 60000 : deadline - now));
    if (n > 0)
      return 1;
    if (n < 0 && errno != EINTR)
      return -1;
  }
}

/* Over TCP (RFC 1035 4.2.2, RFC 7766): the query and the response each
 * behind a two-octet length. */
static int ask_tcp(struct ask *a, const uint8_t *q, size_t qlen, uint16_t id)
{
  const struct resolver_server *s = a->server;
  int fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                  0);
  if (fd < 0) {
    snprintf(a->error, sizeof(a->error), "socket: %s", strerror(errno));
    return ASK_FAILED;
  }
  int rv = ASK_FAILED;
  if (connect(fd, (const struct sockaddr *)&s->addr, s->addrlen) != 0 &&
      errno != EINPROGRESS) {
    snprintf(a->error, sizeof(a->error), "TCP connect: %s", strerror(errno));
    goto out;
  }
  uint8_t out[2 + DNS_QUERY_MAX];
  out[0] = (uint8_t)(qlen >> 8);
  out[1] = (uint8_t)qlen;
  memcpy(out + 2, q, qlen);
  size_t sent = 0, total = qlen + 2;
  while (sent < total) {
    int w = wait_fd(fd, POLLOUT, a->deadline);
    if (w <= 0) {
      rv = w == 0 ? ASK_TIMEOUT : ASK_FAILED;
      goto out;
    }
    ssize_t n = send(fd, out + sent, total - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      snprintf(a->error, sizeof(a->error), "TCP: %s", strerror(errno));
      goto out;
    }
    if (n > 0)
      sent += (size_t)n;
  }
  uint8_t lenbuf[2];
  size_t want = 2, got = 0;
  uint8_t *dst = lenbuf;
  for (int part = 0; part < 2; part++) {
    while (got < want) {
      int w = wait_fd(fd, POLLIN, a->deadline);
      if (w <= 0) {
        rv = w == 0 ? ASK_TIMEOUT : ASK_FAILED;
        goto out;
      }
      ssize_t n = recv(fd, dst + got, want - got, 0);
      if (n == 0) {
        snprintf(a->error, sizeof(a->error), "TCP: connection closed");
        goto out;
      }
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        snprintf(a->error, sizeof(a->error), "TCP: %s", strerror(errno));
        goto out;
      }
      if (n > 0)
        got += (size_t)n;
    }
    if (part == 0) {
      want = (size_t)lenbuf[0] << 8 | lenbuf[1];
      got = 0;
      dst = a->resp;
    }
  }
  a->len = want;
  if (dns_parse(a->msg, a->resp, a->len) != 0 ||
      !dns_msg_answers(a->msg, id, a->qname, a->qtype) || a->msg->tc) {
    snprintf(a->error, sizeof(a->error), "malformed answer over TCP");
    goto out;
  }
  rv = ASK_OK;
out:
  close(fd);
  return rv;
}

/* One try at one server: UDP, then TCP if the answer is truncated. */
static int ask(struct ask *a)
{
  uint8_t q[DNS_QUERY_MAX];
  uint16_t id = random_id();
  int qlen = dns_query_encode(q, sizeof(q), id, a->qname, a->qtype,
                              a->flags);
  if (qlen < 0) {
    snprintf(a->error, sizeof(a->error), "cannot encode the query");
    return ASK_FAILED;
  }
  const struct resolver_server *s = a->server;
  int fd = socket(s->addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                  0);
  if (fd < 0) {
    snprintf(a->error, sizeof(a->error), "socket: %s", strerror(errno));
    return ASK_FAILED;
  }
  /* Connected: the kernel delivers only datagrams from the server. */
  int rv = ASK_FAILED;
  if (connect(fd, (const struct sockaddr *)&s->addr, s->addrlen) != 0 ||
      send(fd, q, (size_t)qlen, 0) != qlen) {
    snprintf(a->error, sizeof(a->error), "%s", strerror(errno));
    goto out;
  }
  for (;;) {
    int w = wait_fd(fd, POLLIN, a->deadline);
    if (w <= 0) {
      rv = w == 0 ? ASK_TIMEOUT : ASK_FAILED;
      if (w < 0)
        snprintf(a->error, sizeof(a->error), "poll: %s", strerror(errno));
      goto out;
    }
    ssize_t n = recv(fd, a->resp, RESOLVER_MAX_ANSWER, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR)
        continue;
      /* ECONNREFUSED: an ICMP port unreachable, nobody listens there. */
      snprintf(a->error, sizeof(a->error), "%s", strerror(errno));
      goto out;
    }
    a->len = (size_t)n;
    if (dns_parse(a->msg, a->resp, a->len) != 0) {
      snprintf(a->error, sizeof(a->error), "malformed answer");
      continue; /* not ours, or broken: keep waiting */
    }
    if (!dns_msg_answers(a->msg, id, a->qname, a->qtype))
      continue;
    if (a->msg->tc) {
      rv = ask_tcp(a, q, (size_t)qlen, id);
      goto out;
    }
    rv = ASK_OK;
    goto out;
  }
out:
  close(fd);
  return rv;
}

/* How much a response is worth when no server gives NOERROR/NXDOMAIN. */
static int rank(const struct dns_msg *m)
{
  if (m->rcode == DNS_RCODE_SERVFAIL)
    return ede_dnssec_name(m->ede) ? 3 : 2;
  return 1;
}

/* The verdict of a response from a server whose AD the resolver trusts
 * (or not: r->trust_ad). */
static int verdict_of(const struct resolver *r, const struct dns_msg *m,
                      const char *server, char *why, size_t whylen)
{
  if (m->rcode == DNS_RCODE_NOERROR || m->rcode == DNS_RCODE_NXDOMAIN)
    return r->trust_ad && m->ad ? DNSSEC_SECURE : DNSSEC_INSECURE;
  const char *ede = ede_dnssec_name(m->ede);
  if (m->rcode == DNS_RCODE_SERVFAIL && r->trust_ad && ede) {
    snprintf(why, whylen, "%s: SERVFAIL, extended error %d (%s)", server,
             m->ede, ede);
    return m->ede == 5 ? DNSSEC_INDETERMINATE : DNSSEC_BOGUS;
  }
  snprintf(why, whylen, "%s: rcode %u", server, (unsigned)m->rcode);
  return DNSSEC_INDETERMINATE;
}

int resolver_stub_query(struct resolver *r, const char *qname,
                        uint16_t qtype, uint8_t *buf, size_t buflen,
                        size_t *len, int *verdict, char *why, size_t whylen)
{
  struct dns_name name;
  if (dns_name_from_text(&name, qname) != 0)
    return SMTPOUT_ERR_BAD_NAME;
  uint8_t *scratch = malloc(RESOLVER_MAX_ANSWER);
  struct dns_msg *msg = malloc(sizeof(*msg));
  if (!scratch || !msg) {
    free(scratch);
    free(msg);
    return SMTPOUT_ERR_NOMEM;
  }
  (void)buflen; /* resolver_query checked it */
  uint64_t deadline = now_ms() + r->timeout_ms;
  struct ask a = {.qname = &name,
                  .qtype = qtype,
                  .flags = DNS_QUERY_RD | DNS_QUERY_DO | DNS_QUERY_AD,
                  .resp = scratch,
                  .msg = msg};
  int best = 0, timeouts = 0, failures = 0;
  size_t best_server = 0;
  char last_error[64 + 96 + 4] = "";
  const size_t rounds = 2, tries = rounds * r->nservers;
  for (size_t t = 0; t < tries; t++) {
    uint64_t now = now_ms();
    if (now >= deadline)
      break;
    a.server = &r->servers[t % r->nservers];
    a.deadline = now + (deadline - now) / (tries - t);
    int rv = ask(&a);
    if (rv == ASK_TIMEOUT) {
      timeouts++;
      snprintf(last_error, sizeof(last_error), "%s: no answer in time",
               a.server->text);
      continue;
    }
    if (rv == ASK_FAILED) {
      failures++;
      snprintf(last_error, sizeof(last_error), "%s: %s", a.server->text,
               a.error);
      continue;
    }
    int final = msg->rcode == DNS_RCODE_NOERROR ||
                msg->rcode == DNS_RCODE_NXDOMAIN ||
                (msg->rcode == DNS_RCODE_SERVFAIL && ede_dnssec_name(msg->ede));
    int rk = final ? 4 : rank(msg);
    if (rk > best) {
      best = rk;
      best_server = t % r->nservers;
      memcpy(buf, scratch, a.len);
      *len = a.len;
    }
    if (final)
      break;
  }
  int rv = 0;
  if (best == 0) {
    snprintf(why, whylen, "%s", last_error);
    rv = timeouts > 0 && failures == 0 ? ERR_TIMEOUT
                                       : ERR_RESOLVE;
    goto out;
  }
  /* Parse the kept response again (the scratch buffer moved on). */
  dns_parse(msg, buf, *len);
  const struct resolver_server *s = &r->servers[best_server];
  *verdict = verdict_of(r, msg, s->text, why, whylen);
  if (*verdict == DNSSEC_INDETERMINATE && msg->rcode == DNS_RCODE_SERVFAIL &&
      r->trust_ad && msg->ede < 0) {
    /* A validating resolver without extended errors: ask again with
     * checking disabled.  If the data is there then, it failed to
     * validate (RFC 4035 3.2.2), which is "bogus", not a broken path. */
    a.server = s;
    a.flags |= DNS_QUERY_CD;
    uint64_t now = now_ms();
    a.deadline = now < deadline ? deadline : now + 1000;
    if (ask(&a) == ASK_OK && (msg->rcode == DNS_RCODE_NOERROR ||
                              msg->rcode == DNS_RCODE_NXDOMAIN)) {
      *verdict = DNSSEC_BOGUS;
      snprintf(why, whylen,
               "%s: SERVFAIL, but the answer exists with checking disabled "
               "(validation failed)",
               s->text);
    }
  }
out:
  free(scratch);
  free(msg);
  return rv;
}
