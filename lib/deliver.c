/*
 * deliver.c — the blocking driver: one message, one call; the delivery
 * object, its sessions and sockets, and delivery to one server.  Route
 * mode (a recipient domain) is deliver_route.c, on the same sessions.
 *
 * It owns what the session must not: name resolution, sockets, poll(),
 * the clock, the local host name.  For each address of the server in
 * turn it connects (bounded by the connect timeout) and runs a session
 * over the socket, through the public API alone, as an event-loop host
 * would.  Recipients the connection failed for, or the server refused
 * whole (a 5xx greeting, EHLO and HELO refused: the session defers those,
 * as Postfix's smtp_skip_5xx_greeting), go on to the next address; not
 * ones a reply to their own commands decided: each result says which
 * (smtpout_result_try_another_address()).  When a session reports that its policy
 * permits it — the policy is optional and the TLS handshake, not the
 * certificate, failed — the same address is tried once more, on a new
 * connection, without STARTTLS (the plaintext fallback), and the attempt
 * says so.  Before any of it the body is scanned once, for its size on the
 * wire and the SMTPOUT_MESSAGE_* flags it needs (smtpout_message_scan).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "address_int.h"
#include "config_int.h"
#include "deliver_int.h"
#include "dsn_int.h"
#include "names_int.h"
#include "sasl_int.h"
#include "smtpout/message.h"
#include "tls_int.h"

uint64_t deliver_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int set_string(char **dst, const char *src)
{
  char *copy = strdup(src);
  if (copy == NULL)
    return SMTPOUT_ERR_NOMEM;
  free(*dst);
  *dst = copy;
  return 0;
}

/* Wipes and frees the AUTH secret. */
static void wipe_secret(smtpout_delivery *d)
{
  if (d->auth_secret) {
    explicit_bzero(d->auth_secret, strlen(d->auth_secret));
    free(d->auth_secret);
    d->auth_secret = NULL;
  }
}

int smtpout_delivery_new(smtpout_delivery **pdelivery, smtpout_config *config)
{
  if (pdelivery == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  smtpout_delivery *d = calloc(1, sizeof(*d));
  if (d == NULL)
    return SMTPOUT_ERR_NOMEM;
  if (config) {
    d->config = smtpout_config_ref(config);
  } else if (smtpout_config_new(&d->config) != 0) {
    free(d);
    return SMTPOUT_ERR_NOMEM;
  }
  d->body_fd = -1;
  d->dnssec_mode = -1;
  d->events_fd = -1;
  *pdelivery = d;
  return 0;
}

void smtpout_delivery_free(smtpout_delivery *d)
{
  if (d == NULL)
    return;
  for (size_t i = 0; i < d->nrcpts; i++)
    free(d->rcpts[i].addr);
  free(d->rcpts);
  for (size_t i = 0; i < d->nattempts; i++) {
    free(d->attempts[i].explain);
    free(d->attempts[i].tlsrpt_event);
  }
  free(d->attempts);
  deliver_route_free(d);
  free(d->domain);
  free(d->relay_label);
  free(d->nameservers);
  free(d->map);
  free(d->names);
  free(d->host);
  free(d->mx_name);
  free(d->helo);
  free(d->ca_file);
  free(d->sender);
  free(d->auth_mechs);
  free(d->auth_user);
  wipe_secret(d);
  free(d->client_cert);
  free(d->client_key);
  smtpout_dsn_free(d->dsn);
  smtpout_policy_free(d->policy);
  smtpout_config_unref(d->config);
  free(d);
}

int smtpout_delivery_set_server(smtpout_delivery *d, const char *host,
                                uint16_t port)
{
  if (d == NULL || host == NULL || host[0] == '\0')
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  int rv = set_string(&d->host, host);
  if (rv != 0)
    return rv;
  d->port = port ? port : 25;
  free(d->domain);
  d->domain = NULL;
  free(d->relay_label);
  d->relay_label = NULL;
  d->relay = false;
  return 0;
}

int smtpout_delivery_set_mx_name(smtpout_delivery *d, const char *name)
{
  if (d == NULL || name == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  return set_string(&d->mx_name, name);
}

int smtpout_delivery_set_helo_name(smtpout_delivery *d, const char *name)
{
  if (d == NULL || name == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  /* Checked here, as the session will (smtpout_session_set_helo_name()),
   * so that a name that could not be sent (CR, LF, spaces, an empty
   * string) is a usage error now, not a deferral after connecting. */
  char tmp[NAME_MAX_LEN];
  if (!name_ip_literal(name, tmp, sizeof(tmp)) &&
      name_normalize(name, tmp, sizeof(tmp)) != 0)
    return SMTPOUT_ERR_BAD_NAME;
  return set_string(&d->helo, name);
}

int smtpout_delivery_set_ca_file(smtpout_delivery *d, const char *path)
{
  if (d == NULL || path == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  return set_string(&d->ca_file, path);
}

int smtpout_delivery_set_tls_policy(smtpout_delivery *d, int starttls,
                                    int allow_invalid_certs)
{
  if (d == NULL || smtpout_starttls_name(starttls) == NULL ||
      (allow_invalid_certs != 0 && allow_invalid_certs != 1))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  d->policy_override = 1;
  d->starttls = starttls;
  d->allow_invalid_certs = allow_invalid_certs;
  return 0;
}

int smtpout_delivery_set_timeout(smtpout_delivery *d, int which, uint32_t ms)
{
  if (d == NULL || which < 0 || which >= SMTPOUT_TIMEOUT_COUNT || ms == 0)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  d->timeouts[which] = ms;
  return 0;
}

int smtpout_delivery_set_auth(smtpout_delivery *d, const char *mechanisms,
                              const char *username, const char *secret,
                              uint32_t flags)
{
  /* Checked as the session will check them, so that a mistake is a
   * usage error now rather than a deferral after connecting. */
  enum sasl_mech prefs[SASL_MECH_COUNT];
  size_t nprefs, slen;
  if (d == NULL || (flags & ~SMTPOUT_AUTH_TLS_ANY) ||
      sasl_credentials_check(mechanisms, username, secret, prefs, &nprefs,
                             &slen) != 0)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  int have_mechs = nprefs > 0;
  char *m = have_mechs ? strdup(mechanisms) : NULL;
  char *u = strdup(username);
  char *pw = strdup(secret);
  if ((have_mechs && m == NULL) || u == NULL || pw == NULL) {
    free(m);
    free(u);
    if (pw) {
      explicit_bzero(pw, slen);
      free(pw);
    }
    return SMTPOUT_ERR_NOMEM;
  }
  free(d->auth_mechs);
  free(d->auth_user);
  wipe_secret(d);
  d->auth_mechs = m;
  d->auth_user = u;
  d->auth_secret = pw;
  d->auth_flags = flags;
  return 0;
}

int smtpout_delivery_set_implicit_tls(smtpout_delivery *d, int enable)
{
  if (d == NULL || (enable != 0 && enable != 1))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  d->implicit_tls = enable;
  return 0;
}

int smtpout_delivery_set_client_cert(smtpout_delivery *d,
                                     const char *cert_path,
                                     const char *key_path)
{
  if (d == NULL || cert_path == NULL || key_path == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  /* Read once now, to refuse what cannot be used before any connection;
   * each session reads them again when it is made. */
  struct tls_keypair *kp;
  int rv = tls_keypair_new(&kp, cert_path, key_path);
  if (rv != 0)
    return rv;
  tls_keypair_unref(kp);
  char *c = strdup(cert_path), *k = strdup(key_path);
  if (c == NULL || k == NULL) {
    free(c);
    free(k);
    return SMTPOUT_ERR_NOMEM;
  }
  free(d->client_cert);
  free(d->client_key);
  d->client_cert = c;
  d->client_key = k;
  return 0;
}

int smtpout_delivery_set_chunking(smtpout_delivery *d, int enable)
{
  if (d == NULL || (enable != 0 && enable != 1))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  d->no_chunking = !enable;
  return 0;
}

int smtpout_delivery_set_dsn(smtpout_delivery *d, const smtpout_dsn *dsn)
{
  if (d == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  smtpout_dsn *copy = NULL;
  if (dsn != NULL) {
    /* Every recipient it names, as it names them. */
    size_t n = dsn->nrcpts;
    size_t *map = n ? malloc(n * sizeof(*map)) : NULL;
    if (n && map == NULL)
      return SMTPOUT_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
      map[i] = i;
    int rv = dsn_select(&copy, dsn, map, n);
    free(map);
    if (rv != 0)
      return rv;
  }
  smtpout_dsn_free(d->dsn);
  d->dsn = copy;
  return 0;
}

uint32_t deliver_timeout(const smtpout_delivery *d, int which)
{
  return d->timeouts[which] ? d->timeouts[which]
                            : smtpout_config_timeout(d->config, which);
}

int smtpout_delivery_set_sender(smtpout_delivery *d, const char *sender)
{
  if (d == NULL || sender == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (sender[0] != '\0' && smtpout_address_check(sender) != 0)
    return SMTPOUT_ERR_BAD_ADDRESS;
  return set_string(&d->sender, sender);
}

int smtpout_delivery_add_recipient(smtpout_delivery *d, const char *recipient)
{
  if (d == NULL || recipient == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (d->nrcpts == d->rcpts_cap) {
    size_t cap = d->rcpts_cap ? d->rcpts_cap * 2 : 8;
    struct slot *r = realloc(d->rcpts, cap * sizeof(*r));
    if (r == NULL)
      return SMTPOUT_ERR_NOMEM;
    d->rcpts = r;
    d->rcpts_cap = cap;
  }
  struct slot *s = &d->rcpts[d->nrcpts];
  memset(s, 0, sizeof(*s));
  s->addr = strdup(recipient);
  if (s->addr == NULL)
    return SMTPOUT_ERR_NOMEM;
  d->nrcpts++;
  return 0;
}

int smtpout_delivery_set_body(smtpout_delivery *d, const uint8_t *data,
                              size_t len)
{
  if (d == NULL || (data == NULL && len > 0))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  d->body = data ? data : (const uint8_t *)"";
  d->body_len = len;
  d->body_fd = -1;
  return 0;
}

int smtpout_delivery_set_body_fd(smtpout_delivery *d, int fd)
{
  struct stat st;
  if (d == NULL || fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  d->body_fd = fd;
  d->body = NULL;
  d->body_len = (size_t)st.st_size;
  return 0;
}

int smtpout_delivery_set_flags(smtpout_delivery *d, uint32_t flags)
{
  if (d == NULL ||
      (flags & ~(SMTPOUT_MESSAGE_8BITMIME | SMTPOUT_MESSAGE_SMTPUTF8 |
                 SMTPOUT_MESSAGE_NO_7BIT_CONVERSION)))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  d->flags = flags;
  return 0;
}

int smtpout_delivery_set_trace(smtpout_delivery *d,
                               smtpout_on_trace_callback cb, void *user_data)
{
  if (d == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  d->trace = cb;
  d->trace_ud = user_data;
  return 0;
}

/* ------------------------------------------------------------------ */

void deliver_set_result(smtpout_delivery *d, size_t i, int status,
                        const char *enhanced, const char *text, int scope)
{
  struct verdict v = {status, 0, enhanced, text, scope, 0};
  d->rcpts[i].has_result = 1;
  result_set(&d->rcpts[i].res, 1, i, d->rcpts[i].addr, &v, 0);
  const struct dsn_rcpt *r = dsn_rcpt(d->dsn, i);
  d->rcpts[i].res.notify = r ? r->notify : 0;
}

bool deliver_wants_retry(const smtpout_delivery *d, size_t i)
{
  const struct slot *s = &d->rcpts[i];
  return !s->has_result || smtpout_result_try_another_address(&s->res);
}

size_t deliver_pending(smtpout_delivery *d)
{
  size_t n = 0;
  for (size_t i = 0; i < d->nrcpts; i++)
    if (deliver_wants_retry(d, i)) {
      d->map[n] = i;
      d->names[n++] = d->rcpts[i].addr;
    }
  return n;
}

static int read_body(smtpout_session *s, int id, uint8_t *buf, size_t len,
                     size_t *nread, int *eof, void *ud)
{
  smtpout_delivery *d = ud;
  (void)s;
  (void)id;
  size_t left = d->body_len - (size_t)d->body_off;
  if (len > left)
    len = left;
  if (d->body_fd >= 0 && len > 0) {
    ssize_t n;
    do
      n = pread(d->body_fd, buf, len, (off_t)d->body_off);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
      return SMTPOUT_ERR_CALLBACK_FAILURE; /* the file shrank or failed */
    len = (size_t)n;
  } else if (len > 0) {
    memcpy(buf, d->body + d->body_off, len);
  }
  d->body_off += len;
  *nread = len;
  *eof = d->body_off == d->body_len;
  return 0;
}

/* Keeps the session's result as the recipient's, under the delivery's
 * numbering (one message, the recipients in the order added). */
static void on_result(smtpout_session *s, const smtpout_result *r, void *ud)
{
  smtpout_delivery *d = ud;
  (void)s;
  size_t i = d->map[smtpout_result_recipient_index(r)];
  struct slot *slot = &d->rcpts[i];
  slot->has_result = 1;
  slot->res = *r;
  slot->res.recipient = slot->addr;
  slot->res.message_id = 1;
  slot->res.index = i;
}

/* Sessions get the delivery as user_data; the host's trace callback gets
 * the user_data it registered. */
static void on_trace(smtpout_session *s, int dir, const char *line,
                     size_t len, void *ud)
{
  smtpout_delivery *d = ud;
  d->trace(s, dir, line, len, d->trace_ud);
}

static void format_address(const struct sockaddr *sa, char *out, size_t len)
{
  char host[64], port[8];
  if (getnameinfo(sa, sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                : sizeof(struct sockaddr_in),
                  host, sizeof(host), port, sizeof(port),
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    snprintf(out, len, "?");
    return;
  }
  snprintf(out, len, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host,
           port);
}

int deliver_connect(const struct sockaddr *sa, socklen_t salen, int family,
                    uint32_t timeout_ms)
{
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  if (connect(fd, sa, salen) == 0)
    return fd;
  if (errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  uint64_t deadline = deliver_now() + timeout_ms;
  for (;;) {
    uint64_t now = deliver_now();
    if (now >= deadline) {
      close(fd);
      errno = ETIMEDOUT;
      return -1;
    }
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int n = poll(&p, 1, (int)(deadline - now));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      errno = e;
      return -1;
    }
    if (n == 0)
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

/*
 * Acknowledges at once what was just read, when it left the session with
 * nothing to send.  Left alone, the kernel delays that ACK (40 ms on Linux
 * once a connection looks interactive, as an SMTP dialogue does) hoping to
 * carry it on our next segment, which is not coming.  A server whose small
 * writes wait for the ACK of its previous segment (Nagle) waits with it:
 * Postfix writes its TLS 1.3 session tickets after our Finished, and its
 * reply to the EHLO that came with that Finished stays in its kernel
 * until the tickets are acknowledged.  When the session has something to
 * send, the ACK rides on it and this costs nothing.
 */
static void ack_if_idle(int fd, const smtpout_session *s)
{
#ifdef TCP_QUICKACK
  if (smtpout_session_want_write(s) || smtpout_session_is_done(s))
    return;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
#else
  (void)fd;
  (void)s;
#endif
}

int deliver_record_session(struct smtpout_attempt *a,
                           const smtpout_session *s)
{
  a->tls = *smtpout_session_tls_info(s);
  a->auth_outcome = smtpout_session_auth_outcome(s);
  const char *mech = smtpout_session_auth_mechanism(s);
  snprintf(a->auth_mechanism, sizeof(a->auth_mechanism), "%s",
           mech ? mech : "");
  if (smtpout_session_close_reason(s) != SMTPOUT_CLOSE_NONE) {
    a->has_error = 1;
    snprintf(a->error, sizeof(a->error), "%s", smtpout_session_close_text(s));
    return 1;
  }
  return 0;
}

void deliver_run_session(smtpout_session *s, int fd)
{
  uint8_t buf[65536];
  if (smtpout_session_start(s, deliver_now()) != 0) {
    smtpout_session_abort(s, deliver_now());
    return;
  }
  while (!smtpout_session_is_done(s)) {
    short events = 0;
    if (smtpout_session_want_read(s))
      events |= POLLIN;
    if (smtpout_session_want_write(s))
      events |= POLLOUT;
    if (events == 0)
      break; /* nothing left to do: the session is over */
    uint64_t now = deliver_now();
    uint64_t exp = smtpout_session_expiry(s);
    int wait = -1;
    if (exp != SMTPOUT_NO_EXPIRY)
      wait = exp <= now ? 0 : (exp - now > 60000 ? 60000 : (int)(exp - now));
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, wait);
    now = deliver_now();
    if (n < 0 && errno != EINTR) {
      smtpout_session_feed_eof(s, now);
      break;
    }
    if (n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t r = recv(fd, buf, sizeof(buf), 0);
      if (r > 0) {
        smtpout_session_feed(s, buf, (size_t)r, now);
        ack_if_idle(fd, s);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR))
        smtpout_session_feed_eof(s, now);
    }
    /* Write at once, not after another poll(): a reply usually lets the
     * session send its next commands, and the socket usually has room. */
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
    smtpout_session_handle_expiry(s, deliver_now());
  }
  /* A session that stopped without finishing (out of memory) still owes
   * every recipient a result. */
  if (!smtpout_session_is_done(s))
    smtpout_session_abort(s, deliver_now());
}

struct smtpout_attempt *deliver_new_attempt(smtpout_delivery *d,
                                            const char *address)
{
  struct smtpout_attempt *a =
      realloc(d->attempts, (d->nattempts + 1) * sizeof(*a));
  if (a == NULL)
    return NULL;
  d->attempts = a;
  a = &d->attempts[d->nattempts++];
  memset(a, 0, sizeof(*a));
  snprintf(a->address, sizeof(a->address), "%s", address);
  a->hop_outcome = -1;
  a->dane_status = -1;
  return a;
}

/* The EHLO name when the host gave none: the configuration's (the
 * session's own default), else this machine's name if it is a valid
 * domain name.  Only a driver asks the system: the session does not. */
static void default_helo(const smtpout_delivery *d, char *out, size_t len)
{
  char host[256];
  out[0] = '\0';
  if (smtpout_config_helo_name(d->config) != NULL ||
      gethostname(host, sizeof(host)) != 0)
    return;
  host[sizeof(host) - 1] = '\0';
  if (name_normalize(host, out, len) != 0)
    out[0] = '\0';
}

int deliver_callbacks(smtpout_delivery *d, smtpout_callbacks **pcbs)
{
  smtpout_callbacks *cbs = NULL;
  int rv = smtpout_callbacks_new(&cbs);
  if (rv != 0)
    return rv;
  smtpout_callbacks_set_read_body(cbs, read_body);
  smtpout_callbacks_set_on_result(cbs, on_result);
  if (d->trace)
    smtpout_callbacks_set_on_trace(cbs, on_trace);
  *pcbs = cbs;
  return 0;
}

int deliver_session_setup(smtpout_delivery *d, smtpout_session *s, size_t n,
                          int plaintext_fallback, uint32_t flags)
{
  char helo[NAME_MAX_LEN];
  int rv = 0;
  if (d->helo) {
    rv = smtpout_session_set_helo_name(s, d->helo);
  } else {
    default_helo(d, helo, sizeof(helo));
    if (helo[0])
      rv = smtpout_session_set_helo_name(s, helo);
  }
  if (rv == 0 && d->ca_file)
    rv = smtpout_session_set_ca_file(s, d->ca_file);
  if (rv == 0 && plaintext_fallback)
    rv = smtpout_session_set_plaintext_fallback(s);
  if (rv == 0 && d->implicit_tls)
    rv = smtpout_session_set_implicit_tls(s, 1);
  if (rv == 0 && d->auth_secret)
    rv = smtpout_session_set_auth(s, d->auth_mechs, d->auth_user,
                                  d->auth_secret, d->auth_flags);
  if (rv == 0 && d->client_cert)
    rv = smtpout_session_set_client_cert(s, d->client_cert, d->client_key);
  if (rv == 0 && d->no_chunking)
    rv = smtpout_session_set_chunking(s, 0);
  for (int t = 0; rv == 0 && t < SMTPOUT_TIMEOUT_COUNT; t++)
    if (d->timeouts[t])
      rv = smtpout_session_set_timeout(s, t, d->timeouts[t]);
  smtpout_dsn *dsn = NULL;
  if (rv == 0)
    rv = dsn_select(&dsn, d->dsn, d->map, n);
  if (rv == 0) {
    d->body_off = 0;
    int id = smtpout_session_submit_dsn(s, d->sender, d->names, n,
                                        d->wire_size,
                                        d->flags | d->scan_flags | flags, dsn);
    rv = id < 0 ? id : 0;
  }
  smtpout_dsn_free(dsn);
  if (rv == 0)
    rv = smtpout_session_quit(s);
  return rv;
}

/* A session to the server for one attempt, set up as the delivery says,
 * with the `n` pending recipients submitted.  Returns 0 or an error of the
 * setters (nothing is left allocated then). */
static int new_session(smtpout_delivery *d, smtpout_session **ps, size_t n,
                       int plaintext_fallback)
{
  smtpout_callbacks *cbs = NULL;
  smtpout_session *s = NULL;
  int rv = deliver_callbacks(d, &cbs);
  if (rv == 0)
    rv = smtpout_session_new(&s, d->mx_name ? d->mx_name : d->host,
                             d->config, cbs, d);
  /* The session copied the callbacks. */
  smtpout_callbacks_free(cbs);
  if (rv == 0 && d->policy_override)
    rv = smtpout_session_set_tls_policy(s, d->starttls, d->allow_invalid_certs);
  if (rv == 0)
    rv = deliver_session_setup(d, s, n, plaintext_fallback, 0);
  if (rv != 0) {
    smtpout_session_free(s);
    return rv;
  }
  *ps = s;
  return 0;
}

/* One connection to one address.  Returns 1 when the plaintext fallback
 * is permitted after it. */
static int attempt(smtpout_delivery *d, const struct addrinfo *ai,
                   int plaintext_fallback)
{
  char address[80];
  format_address(ai->ai_addr, address, sizeof(address));
  struct smtpout_attempt *a = deliver_new_attempt(d, address);
  if (a == NULL)
    return 0;
  a->plaintext_fallback = plaintext_fallback;
  a->tls.plaintext_fallback = plaintext_fallback;
  snprintf(a->mx, sizeof(a->mx), "%s", d->mx_name ? d->mx_name : d->host);

  size_t n = deliver_pending(d);
  if (n == 0)
    return 0;

  /* The session first: what it is given (its trust anchors above all) is
   * checked before a connection is opened for nothing. */
  smtpout_session *s;
  int rv = new_session(d, &s, n, plaintext_fallback);
  if (rv != 0) {
    /* A local problem: no other address would fare better. */
    a->has_error = 1;
    if (rv == SMTPOUT_ERR_TLS_SETUP && d->ca_file)
      snprintf(a->error, sizeof(a->error),
               "TLS setup failed: cannot use the CA file %s", d->ca_file);
    else if (rv == SMTPOUT_ERR_TLS_SETUP)
      snprintf(a->error, sizeof(a->error),
               "TLS setup failed: cannot use the client certificate %s",
               d->client_cert ? d->client_cert : "");
    else
      snprintf(a->error, sizeof(a->error), "local error: %s",
               smtpout_strerror(rv));
    for (size_t i = 0; i < n; i++)
      deliver_set_result(d, d->map[i], SMTPOUT_STATUS_DEFERRED,
                         rv == SMTPOUT_ERR_TLS_SETUP ? "4.7.0" : "4.3.0",
                         a->error, SCOPE_RECIPIENT);
    return 0;
  }

  int fd = deliver_connect(ai->ai_addr, ai->ai_addrlen, ai->ai_family,
                           deliver_timeout(d, SMTPOUT_TIMEOUT_CONNECT));
  if (fd < 0) {
    a->has_error = 1;
    snprintf(a->error, sizeof(a->error), "connect to %s: %s", address,
             strerror(errno));
    for (size_t i = 0; i < n; i++)
      deliver_set_result(d, d->map[i], SMTPOUT_STATUS_DEFERRED, "4.4.1",
                         a->error, SCOPE_CONNECTION);
    smtpout_session_free(s);
    return 0;
  }

  deliver_run_session(s, fd);
  close(fd);
  deliver_record_session(a, s);
  int fallback = smtpout_tls_info_fallback_permitted(&a->tls);
  smtpout_session_free(s);
  return fallback;
}

/* Scans the body once: its size on the wire and the flags it needs. */
static int scan_body(smtpout_delivery *d)
{
  if (d->body_fd < 0)
    return smtpout_message_inspect(d->body, d->body_len, &d->wire_size,
                                   &d->scan_flags);
  smtpout_message_scan *scan;
  int rv = smtpout_message_scan_new(&scan);
  if (rv != 0)
    return rv;
  uint8_t buf[16384];
  for (uint64_t off = 0; rv == 0 && off < d->body_len;) {
    size_t want = d->body_len - off < sizeof(buf) ? (size_t)(d->body_len - off)
                                                  : sizeof(buf);
    ssize_t n = pread(d->body_fd, buf, want, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      rv = SMTPOUT_ERR_IO; /* unreadable, or shorter than it was */
      break;
    }
    rv = smtpout_message_scan_update(scan, buf, (size_t)n);
    off += (uint64_t)n;
  }
  if (rv == 0)
    rv = smtpout_message_scan_end(scan, &d->wire_size, &d->scan_flags);
  smtpout_message_scan_free(scan);
  return rv;
}

/* The policy the sessions will enforce, for the report: the host's fixed
 * one, or the strictest over the recipients' domains, where a domain that
 * is not a valid name counts as the MX host alone (as in the session). */
static int resolve_policy(smtpout_delivery *d, const char *mx)
{
  if (d->policy_override) {
    /* No rule is consulted, but the MX name must still be one. */
    char tmp[NAME_MAX_LEN];
    if (!name_ip_literal(mx, tmp, sizeof(tmp)) &&
        name_normalize(mx, tmp, sizeof(tmp)) != 0)
      return SMTPOUT_ERR_BAD_NAME;
    int rv = policy_fixed(&d->policy, d->starttls, d->allow_invalid_certs);
    return rv == 0 && d->auth_secret ? policy_require_for_auth(d->policy)
                                     : rv;
  }
  const char **domains = d->names;
  size_t n = 0;
  for (size_t i = 0; i < d->nrcpts; i++)
    if (!d->rcpts[i].has_result)
      domains[n++] = address_domain(d->rcpts[i].addr);
  int rv = policy_resolve_enforced(&d->policy, d->config, domains, n, mx);
  return rv == 0 && d->auth_secret ? policy_require_for_auth(d->policy) : rv;
}

static int run(smtpout_delivery *d);

int smtpout_delivery_run(smtpout_delivery *d)
{
  if (d == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (d->ran || (d->host == NULL && !deliver_routed(d)) || d->sender == NULL ||
      d->nrcpts == 0 || (d->body == NULL && d->body_fd < 0))
    return SMTPOUT_ERR_INVALID_STATE;
  /* A route gives every hop its MX name and its TLS requirement: a name or
   * a policy fixed for all of them would contradict it.  A relay's
   * implicit TLS, AUTH and client certificate come from its section, and
   * an MX host is given none. */
  if (deliver_routed(d) &&
      (d->mx_name || d->policy_override || d->implicit_tls ||
       d->auth_user || d->client_cert))
    return SMTPOUT_ERR_INVALID_STATE;
  if (!deliver_routed(d) && d->route_flags)
    return SMTPOUT_ERR_INVALID_STATE;
  /* A DSN request for a recipient that was never added. */
  for (size_t i = d->nrcpts; d->dsn && i < d->dsn->nrcpts; i++)
    if (d->dsn->rcpts[i].notify || d->dsn->rcpts[i].orcpt)
      return SMTPOUT_ERR_INVALID_STATE;
  d->ran = 1;
  int rv = run(d);
  /* Every session made has its own copy, wiped with it: the delivery's
   * goes now, not when the host frees the delivery. */
  wipe_secret(d);
  return rv;
}

/* smtpout_delivery_run(), once checked. */
static int run(smtpout_delivery *d)
{
  d->map = calloc(d->nrcpts, sizeof(*d->map));
  d->names = calloc(d->nrcpts, sizeof(*d->names));
  if (d->map == NULL || d->names == NULL)
    return SMTPOUT_ERR_NOMEM;

  /* Addresses that cannot be sent safely never reach a server. */
  for (size_t i = 0; i < d->nrcpts; i++)
    if (smtpout_address_check(d->rcpts[i].addr) != 0)
      deliver_set_result(d, i, SMTPOUT_STATUS_BOUNCED, "5.1.3",
                         "bad recipient address syntax", SCOPE_RECIPIENT);

  int rv = scan_body(d);
  if (rv != 0)
    return rv;
  if (deliver_routed(d)) {
    bool no_resolver;
    return deliver_route_run(d, false, &no_resolver);
  }

  const char *mx = d->mx_name ? d->mx_name : d->host;
  rv = resolve_policy(d, mx);
  if (rv != 0)
    return rv;

  char port[8];
  snprintf(port, sizeof(port), "%u", (unsigned)d->port);
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICSERV};
  struct addrinfo *res = NULL;
  int gai = getaddrinfo(d->host, port, &hints, &res);
  if (gai != 0) {
    char text[256];
    snprintf(text, sizeof(text), "cannot resolve %s: %s", d->host,
             gai_strerror(gai));
    struct smtpout_attempt *a = deliver_new_attempt(d, d->host);
    if (a) {
      a->has_error = 1;
      snprintf(a->error, sizeof(a->error), "%s", text);
    }
    for (size_t i = 0; i < d->nrcpts; i++)
      if (deliver_wants_retry(d, i))
        deliver_set_result(d, i, SMTPOUT_STATUS_DEFERRED, "4.4.4", text,
                   SCOPE_CONNECTION);
    return 0;
  }

  for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    int more = 0;
    for (size_t i = 0; i < d->nrcpts; i++)
      more |= deliver_wants_retry(d, i);
    if (!more)
      break;
    if (attempt(d, ai, 0)) {
      /* Once, on a new connection to the same address, without STARTTLS:
       * never reusing the connection whose handshake failed. */
      attempt(d, ai, 1);
    }
  }
  freeaddrinfo(res);
  /* Every recipient has exactly one result, even when no attempt could
   * be recorded (out of memory): hosts read them without a NULL check. */
  for (size_t i = 0; i < d->nrcpts; i++)
    if (!d->rcpts[i].has_result)
      deliver_set_result(d, i, SMTPOUT_STATUS_DEFERRED, "4.3.0",
                 "no connection attempt could be made", SCOPE_CONNECTION);
  return 0;
}

size_t smtpout_delivery_recipient_count(const smtpout_delivery *d)
{
  return d ? d->nrcpts : 0;
}

const smtpout_result *smtpout_delivery_result(const smtpout_delivery *d,
                                              size_t index)
{
  if (d == NULL || index >= d->nrcpts || !d->rcpts[index].has_result)
    return NULL;
  return &d->rcpts[index].res;
}

size_t smtpout_delivery_attempt_count(const smtpout_delivery *d)
{
  return d ? d->nattempts : 0;
}

const smtpout_attempt *smtpout_delivery_attempt(const smtpout_delivery *d,
                                                size_t index)
{
  if (d == NULL || index >= d->nattempts)
    return NULL;
  return &d->attempts[index];
}

const smtpout_policy *smtpout_delivery_policy(const smtpout_delivery *d)
{
  return d ? d->policy : NULL;
}

int smtpout_delivery_resolve(smtpout_delivery *d)
{
  if (d == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (d->ran || !deliver_routed(d))
    return SMTPOUT_ERR_INVALID_STATE;
  d->ran = 1;
  bool no_resolver;
  int rv = deliver_route_run(d, true, &no_resolver);
  return rv == 0 && no_resolver ? SMTPOUT_ERR_CONFIG : rv;
}

const smtpout_route *smtpout_delivery_route(const smtpout_delivery *d)
{
  return d ? d->route : NULL;
}

uint32_t smtpout_delivery_tlsrpt_events_lost(const smtpout_delivery *d)
{
  return d ? d->events_lost : 0;
}

/* NULL-safe, like every getter. */
const char *smtpout_attempt_address(const smtpout_attempt *a)
{
  return a ? a->address : "";
}

int smtpout_attempt_plaintext_fallback(const smtpout_attempt *a)
{
  return a ? a->plaintext_fallback : 0;
}

const smtpout_tls_info *smtpout_attempt_tls_info(const smtpout_attempt *a)
{
  static const struct smtpout_tls_info none;
  return a ? &a->tls : &none;
}

const char *smtpout_attempt_error(const smtpout_attempt *a)
{
  return a && a->has_error ? a->error : NULL;
}

const char *smtpout_attempt_mx(const smtpout_attempt *a)
{
  return a ? a->mx : "";
}

int smtpout_attempt_hop_outcome(const smtpout_attempt *a)
{
  return a ? a->hop_outcome : -1;
}

int smtpout_attempt_tls_requirement(const smtpout_attempt *a)
{
  return a ? a->requirement : SMTPOUT_TLS_REQUIREMENT_LOCAL;
}

int smtpout_attempt_tls_source(const smtpout_attempt *a)
{
  return a ? a->source : SMTPOUT_TLS_SOURCE_LOCAL;
}

int smtpout_attempt_dane_status(const smtpout_attempt *a)
{
  return a ? a->dane_status : -1;
}

size_t smtpout_attempt_tlsa_count(const smtpout_attempt *a)
{
  return a ? a->tlsa_count : 0;
}

int smtpout_attempt_sts_mode(const smtpout_attempt *a)
{
  return a ? a->sts_mode : 0;
}

const char *smtpout_attempt_explain(const smtpout_attempt *a)
{
  return a ? a->explain : NULL;
}

const char *smtpout_attempt_tlsrpt_event(const smtpout_attempt *a)
{
  return a ? a->tlsrpt_event : NULL;
}

int smtpout_attempt_auth_outcome(const smtpout_attempt *a)
{
  return a ? a->auth_outcome : SMTPOUT_AUTH_OUTCOME_NONE;
}

const char *smtpout_attempt_auth_mechanism(const smtpout_attempt *a)
{
  return a && a->auth_mechanism[0] ? a->auth_mechanism : NULL;
}
