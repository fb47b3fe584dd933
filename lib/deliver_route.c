/*
 * deliver_route.c — route mode of the blocking driver: a recipient domain
 * instead of a server.
 *
 * The delivery is the host of one route (<smtpout/route.h>), the same way
 * an event-loop host would be, through the public API: it answers every
 * request the route pulls, at once and blocking, and connects to every hop
 * the route hands out.
 *
 *   DNS        lib/resolve*.c, set up from [queue.outbound.dns] (or the
 *              delivery's own nameservers and DNSSEC mode); a resolver
 *              that cannot give DNSSEC verdicts makes the route
 *              SMTPOUT_ROUTE_NO_DNSSEC, so DANE is reported unavailable,
 *              never absent.
 *   HTTPS      lib/fetch_curl.c (an MTA-STS policy), to the addresses the
 *              route resolved, in turn, until one connects; trust anchors
 *              from [queue.outbound.mta-sts] ca-file, else the system's.
 *   CACHE_GET  the host's store callbacks, else the file of
 *   CACHE_PUT  [queue.outbound.mta-sts] cache (lib/store_file.c), else
 *              nothing is kept.
 *   hops       a session made for the hop (it applies the hop's TLS
 *              requirement), the plaintext fallback only where the hop
 *              allows it, the outcome the session gives back to the route.
 *
 * Every TLS-RPT event the route produces (its own failures before any
 * connection, and one per connection that attempted TLS, which this file
 * asks for with smtpout_route_hop_tlsrpt()) goes to the host's callback,
 * else to the [queue.outbound.tls-rpt] events file: appended with O_APPEND,
 * one write() per line, so that any number of processes share one file.
 *
 * Recipients keep the result of the last session that decided them;
 * those no hop decided get the route's verdict when it is done.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config_int.h"
#include "deliver_int.h"
#include "fetch_int.h"
#include "resolve_int.h"
#include "store_int.h"
#include "tlsrpt_int.h"

static int set_string(char **dst, const char *src)
{
  char *copy = strdup(src);
  if (copy == NULL)
    return SMTPOUT_ERR_NOMEM;
  free(*dst);
  *dst = copy;
  return 0;
}

int smtpout_delivery_set_domain(smtpout_delivery *d, const char *domain)
{
  if (d == NULL || domain == NULL || domain[0] == '\0')
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  int rv = set_string(&d->domain, domain);
  if (rv != 0)
    return rv;
  free(d->host);
  d->host = NULL;
  free(d->relay_label);
  d->relay_label = NULL;
  d->relay = false;
  return 0;
}

int smtpout_delivery_set_relay(smtpout_delivery *d, const char *label)
{
  if (d == NULL || (label && label[0] == '\0'))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  /* Checked now: a relay the configuration does not have is the caller's
   * mistake, not a deferral of every recipient. */
  if (config_relay_find(d->config,
                        label ? label : smtpout_config_relay(d->config)) ==
      NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  char *copy = NULL;
  if (label && (copy = strdup(label)) == NULL)
    return SMTPOUT_ERR_NOMEM;
  free(d->relay_label);
  d->relay_label = copy;
  d->relay = true;
  free(d->host);
  d->host = NULL;
  free(d->domain);
  d->domain = NULL;
  return 0;
}

int smtpout_delivery_set_route_flags(smtpout_delivery *d, uint32_t flags)
{
  if (d == NULL || (flags & ~(SMTPOUT_ROUTE_NO_DNSSEC |
                              SMTPOUT_ROUTE_REQUIRETLS |
                              SMTPOUT_ROUTE_TLS_REQUIRED_NO)))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  d->route_flags = flags;
  return 0;
}

int smtpout_delivery_set_resolver(smtpout_delivery *d,
                                  const char *nameservers)
{
  if (d == NULL || nameservers == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  /* Checked now, by the parser the resolver will use, so that a typo is
   * the caller's error here and not a deferral of every recipient. */
  struct resolver *probe = calloc(1, sizeof(*probe));
  if (probe == NULL)
    return SMTPOUT_ERR_NOMEM;
  char err[256];
  int bad = resolver_parse_servers(probe, nameservers, 1, err, sizeof(err));
  free(probe);
  if (bad != 0)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  return set_string(&d->nameservers, nameservers);
}

int smtpout_delivery_set_dnssec_mode(smtpout_delivery *d, int mode)
{
  if (d == NULL || resolver_mode_name(mode) == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
#ifndef HAVE_LIBUNBOUND
  if (mode == SMTPOUT_DNSSEC_MODE_VALIDATE)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
#endif
  d->dnssec_mode = mode;
  return 0;
}

int smtpout_delivery_set_store(smtpout_delivery *d,
                               smtpout_store_get_callback get,
                               smtpout_store_put_callback put,
                               void *user_data)
{
  if (d == NULL || (get == NULL) != (put == NULL))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  d->store_get = get;
  d->store_put = put;
  d->store_ud = user_data;
  return 0;
}

int smtpout_delivery_set_tlsrpt_events(smtpout_delivery *d,
                                       smtpout_tlsrpt_event_callback cb,
                                       void *user_data)
{
  if (d == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  d->on_event = cb;
  d->event_ud = user_data;
  return 0;
}

const char *smtpout_attempt_tlsrpt_result(const smtpout_attempt *a)
{
  return a && a->tlsrpt_event ? tlsrpt_type_name(a->tlsrpt_result) : NULL;
}

void deliver_route_free(smtpout_delivery *d)
{
  smtpout_route_free(d->route);
  d->route = NULL;
  if (d->events_fd >= 0)
    close(d->events_fd);
  d->events_fd = -1;
}

/* ------------------------------------------------------------------ */

/* What one run of route mode holds besides the delivery. */
struct host {
  smtpout_delivery *d;
  smtpout_route *r;
  struct resolver *resolver;
  bool resolve_only;
  uint8_t *buf; /* a DNS answer or a cache value */
};

static uint64_t wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A note in the host's trace (direction INFO, no session). */
static void note(const struct host *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note(const struct host *h, const char *fmt, ...)
{
  if (h->d->trace == NULL)
    return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  h->d->trace(NULL, SMTPOUT_TRACE_INFO, line,
              (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1,
              h->d->trace_ud);
}

/* One TLS-RPT event to wherever the host wants it. */
static void store_event(struct host *h, const char *json, size_t len)
{
  smtpout_delivery *d = h->d;
  if (h->resolve_only)
    return;
  if (d->on_event) {
    if (d->on_event(json, len, d->event_ud) != 0)
      d->events_lost++;
    return;
  }
  const char *path = config_tlsrpt_events(d->config);
  if (path == NULL)
    return;
  if (d->events_fd < 0)
    d->events_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
                                  O_NOCTTY, 0644);
  char *line = malloc(len + 1);
  if (d->events_fd < 0 || line == NULL) {
    free(line);
    d->events_lost++;
    return;
  }
  memcpy(line, json, len);
  line[len] = '\n';
  /* One write() per line: appends of concurrent writers never interleave
   * (O_APPEND, a regular file), so a short write means the disk is full,
   * not that another process got in between. */
  ssize_t w;
  do
    w = write(d->events_fd, line, len + 1);
  while (w < 0 && errno == EINTR);
  if (w != (ssize_t)(len + 1))
    d->events_lost++;
  free(line);
}

/* Passes on every event the route has ready. */
static void drain_events(struct host *h)
{
  const char *json;
  size_t len;
  while (smtpout_route_next_event(h->r, &json, &len) == 1)
    store_event(h, json, len);
}

/* ---- requests ---- */

static const char *qtype_name(int t)
{
  switch (t) {
  case 1: return "A";
  case 15: return "MX";
  case 16: return "TXT";
  case 28: return "AAAA";
  case 52: return "TLSA";
  default: return "?";
  }
}

static void answer_dns(struct host *h, const smtpout_request *q)
{
  size_t len = 0;
  int verdict = DNSSEC_INDETERMINATE;
  char why[256];
  int rv = resolver_query(h->resolver, smtpout_request_qname(q),
                          (uint16_t)smtpout_request_qtype(q), h->buf,
                          RESOLVER_MAX_ANSWER, &len, &verdict, why,
                          sizeof(why));
  note(h, "dns %s %s: %s%s%s", qtype_name(smtpout_request_qtype(q)),
       smtpout_request_qname(q),
       rv == 0 ? dnssec_verdict_name(verdict) : smtpout_strerror(rv),
       why[0] ? ", " : "", why);
  if (rv == 0)
    smtpout_route_dns_answer(h->r, smtpout_request_id(q), verdict, h->buf,
                             len, deliver_now());
  else
    smtpout_route_dns_failed(h->r, smtpout_request_id(q), verdict, 0,
                             deliver_now());
}

static void answer_https(struct host *h, const smtpout_request *q)
{
  struct fetch_response resp;
  memset(&resp, 0, sizeof(resp));
  resp.outcome = SMTPOUT_FETCH_FAILED;
  snprintf(resp.error, sizeof(resp.error),
           "smtpout was built without libcurl (-Dcurl)");
#ifdef HAVE_LIBCURL
  /* The addresses the route resolved, in its order, until one connects:
   * the fetcher never resolves the name itself. */
  for (size_t i = 0; i < smtpout_request_address_count(q); i++) {
    struct fetch_request fr = {
      .url = smtpout_request_url(q),
      .address = smtpout_request_address(q, i),
      .port = smtpout_request_port(q),
      .ca_file = config_sts(h->d->config)->ca_file,
      .timeout_ms = smtpout_request_timeout_ms(q),
      .max_bytes = smtpout_request_max_bytes(q),
    };
    fetch_response_clear(&resp);
    if (fetch_https(&fr, &resp) != 0) {
      resp.outcome = SMTPOUT_FETCH_FAILED;
      snprintf(resp.error, sizeof(resp.error), "the fetch could not start");
      break;
    }
    if (resp.outcome != SMTPOUT_FETCH_CONNECT_FAILED)
      break;
  }
#endif
  if (resp.outcome == SMTPOUT_FETCH_OK)
    note(h, "https %s: status %d, %zu bytes", smtpout_request_url(q),
         resp.status, resp.len);
  else
    note(h, "https %s: %s", smtpout_request_url(q), resp.error);
  smtpout_route_https_answer(h->r, smtpout_request_id(q), resp.outcome,
                             resp.status,
                             resp.content_type[0] ? resp.content_type : NULL,
                             resp.body, resp.len, deliver_now());
  fetch_response_clear(&resp);
}

static void answer_cache_get(struct host *h, const smtpout_request *q)
{
  smtpout_delivery *d = h->d;
  const char *key = smtpout_request_cache_key(q);
  const char *file = config_sts(d->config)->cache_file;
  size_t len = 0;
  int rv = 0;
  if (d->store_get)
    rv = d->store_get(key, h->buf, SMTPOUT_STORE_VALUE_MAX, &len,
                      d->store_ud);
  else if (file)
    rv = store_file_get(file, key, h->buf, SMTPOUT_STORE_VALUE_MAX, &len,
                        wall_ms());
  /* A failing store is a miss: the policy is fetched again. */
  if (rv != 0 || len > SMTPOUT_STORE_VALUE_MAX)
    len = 0;
  note(h, "cache get %s: %s", key, len ? "hit" : "miss");
  smtpout_route_cache_answer(h->r, smtpout_request_id(q), h->buf, len,
                             deliver_now());
}

static void answer_cache_put(struct host *h, const smtpout_request *q)
{
  smtpout_delivery *d = h->d;
  const char *key = smtpout_request_cache_key(q);
  const char *file = config_sts(d->config)->cache_file;
  size_t len;
  const uint8_t *value = smtpout_request_cache_value(q, &len);
  uint64_t expires = smtpout_request_cache_expires(q);
  int rv = 0;
  if (h->resolve_only)
    return;
  if (d->store_put)
    rv = d->store_put(key, value, len, expires, d->store_ud);
  else if (file)
    rv = store_file_put(file, key, value, len, expires, wall_ms());
  note(h, "cache put %s: %s", key,
       !d->store_put && !file ? "not kept (no store)"
       : rv == 0              ? "stored"
                              : "failed");
}

static void answer(struct host *h)
{
  const smtpout_request *q;
  if (smtpout_route_next_request(h->r, &q, deliver_now()) != 1)
    return;
  switch (smtpout_request_kind(q)) {
  case SMTPOUT_REQUEST_DNS: answer_dns(h, q); break;
  case SMTPOUT_REQUEST_HTTPS: answer_https(h, q); break;
  case SMTPOUT_REQUEST_CACHE_GET: answer_cache_get(h, q); break;
  case SMTPOUT_REQUEST_CACHE_PUT: answer_cache_put(h, q); break;
  default: break;
  }
  drain_events(h);
}

/* ---- hops ---- */

/* The hop's address and port as a socket address. */
static int hop_sockaddr(const smtpout_hop *hop, struct sockaddr_storage *ss,
                        socklen_t *len)
{
  memset(ss, 0, sizeof(*ss));
  struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
  const char *a = smtpout_hop_address(hop);
  if (inet_pton(AF_INET, a, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(smtpout_hop_port(hop));
    *len = sizeof(*v4);
    return 0;
  }
  if (inet_pton(AF_INET6, a, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(smtpout_hop_port(hop));
    *len = sizeof(*v6);
    return 0;
  }
  return -1;
}

/* An attempt record for the hop, with what the route says of it. */
static struct smtpout_attempt *hop_attempt(smtpout_delivery *d,
                                           const smtpout_hop *hop,
                                           int plaintext_fallback)
{
  char address[80];
  const char *a = smtpout_hop_address(hop);
  snprintf(address, sizeof(address), strchr(a, ':') ? "[%s]:%u" : "%s:%u", a,
           (unsigned)smtpout_hop_port(hop));
  struct smtpout_attempt *at = deliver_new_attempt(d, address);
  if (at == NULL)
    return NULL;
  snprintf(at->mx, sizeof(at->mx), "%s", smtpout_hop_mx(hop));
  at->plaintext_fallback = plaintext_fallback;
  at->tls.plaintext_fallback = plaintext_fallback;
  at->requirement = smtpout_hop_tls_requirement(hop);
  at->source = smtpout_hop_tls_source(hop);
  at->dane_status = smtpout_hop_dane_status(hop);
  at->tlsa_count = smtpout_hop_tlsa_count(hop);
  at->sts_mode = smtpout_hop_sts_mode(hop);
  const char *explain = smtpout_hop_explain(hop);
  at->explain = explain ? strdup(explain) : NULL;
  return at;
}

/* The sending address of a connected socket, for TLS-RPT. */
static void local_address(int fd, char *out, size_t len)
{
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  out[0] = '\0';
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
    return;
  if (ss.ss_family == AF_INET)
    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out,
              (socklen_t)len);
  else if (ss.ss_family == AF_INET6)
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out,
              (socklen_t)len);
}

/* Whether a connection counts as a TLS session for TLS-RPT (RFC 8460
 * section 4: sessions that negotiated, or tried to negotiate, TLS). */
static bool tls_attempted(const struct smtpout_tls_info *ti)
{
  switch (ti->outcome) {
  case SMTPOUT_TLS_OUTCOME_NOT_OFFERED:
  case SMTPOUT_TLS_OUTCOME_REFUSED:
  case SMTPOUT_TLS_OUTCOME_HANDSHAKE_FAILED:
  case SMTPOUT_TLS_OUTCOME_OK:
    return true;
  default:
    return false;
  }
}

/* Records the TLS-RPT event of one connection and keeps it on the
 * attempt. */
static void hop_event(struct host *h, const smtpout_hop *hop,
                      struct smtpout_attempt *at, const char *sending_ip)
{
  const struct smtpout_tls_info *ti = &at->tls;
  const char *type = smtpout_tls_info_tlsrpt_result(ti);
  const char *additional = NULL;
  if (type != NULL)
    additional = ti->verify_error[0] ? ti->verify_error
                 : ti->failure[0]    ? ti->failure
                                     : NULL;
  /* Events the route had before are not this attempt's. */
  drain_events(h);
  if (smtpout_route_hop_tlsrpt(h->r, hop, type,
                               sending_ip[0] ? sending_ip : NULL, NULL,
                               additional, deliver_now()) != 0)
    return;
  const char *json;
  size_t len;
  if (smtpout_route_next_event(h->r, &json, &len) != 1)
    return;
  free(at->tlsrpt_event);
  at->tlsrpt_event = strdup(json);
  /* Its result type, as the route wrote it (a testing policy that does
   * not list the MX turns a clean session into a failure). */
  struct tlsrpt_parsed p;
  const char *why;
  at->tlsrpt_result = TLSRPT_NONE;
  if (tlsrpt_event_parse(json, len, &p, &why) == 0 && !p.ev.success)
    at->tlsrpt_result = p.ev.result_type;
  tlsrpt_parsed_clear(&p);
  store_event(h, json, len);
}

/*
 * One connection to the hop.  Returns the hop outcome; *fallback says
 * whether the plaintext fallback is permitted after it, *detail what went
 * wrong.
 */
static int hop_connect(struct host *h, const smtpout_hop *hop,
                       int plaintext_fallback, int *fallback, char *detail,
                       size_t detail_len)
{
  smtpout_delivery *d = h->d;
  *fallback = 0;
  detail[0] = '\0';
  struct smtpout_attempt *at = hop_attempt(d, hop, plaintext_fallback);
  if (at == NULL) {
    snprintf(detail, detail_len, "out of memory");
    return SMTPOUT_HOP_HOST_FAILED;
  }
  size_t n = deliver_pending(d);

  /* The session first: what it is given (the hop's requirement, the trust
   * anchors) is checked before a connection is opened for nothing. */
  smtpout_callbacks *cbs = NULL;
  smtpout_session *s = NULL;
  int rv = deliver_callbacks(d, &cbs);
  if (rv == 0)
    rv = smtpout_session_new_for_hop(&s, hop, d->config, cbs, d);
  smtpout_callbacks_free(cbs);
  /* The hop requires REQUIRETLS already; flagging the message too means
   * the session refuses it on any hop that would not. */
  uint32_t flags = d->route_flags & SMTPOUT_ROUTE_REQUIRETLS
                       ? SMTPOUT_MESSAGE_REQUIRETLS
                       : 0;
  if (rv == 0)
    rv = deliver_session_setup(d, s, n, plaintext_fallback, flags);
  if (rv != 0) {
    /* A local problem: no other hop would fare better.  Without a
     * session, the relay's own files were refused (the CA file is read
     * by deliver_session_setup()). */
    bool relay_files = s == NULL && smtpout_hop_relay(hop) != NULL;
    smtpout_session_free(s);
    at->has_error = 1;
    if (rv == SMTPOUT_ERR_TLS_SETUP && relay_files)
      snprintf(at->error, sizeof(at->error),
               "TLS setup failed: cannot use the client certificate %s of "
               "relay %s",
               smtpout_hop_client_cert(hop), smtpout_hop_relay(hop));
    else if (rv == SMTPOUT_ERR_TLS_SETUP)
      snprintf(at->error, sizeof(at->error),
               "TLS setup failed: cannot use the CA file %s",
               d->ca_file ? d->ca_file : "of the configuration");
    else if (rv == SMTPOUT_ERR_IO && relay_files)
      snprintf(at->error, sizeof(at->error),
               "cannot read the AUTH password file of relay %s (missing, "
               "empty, or open to group or others)",
               smtpout_hop_relay(hop));
    else
      snprintf(at->error, sizeof(at->error), "local error: %s",
               smtpout_strerror(rv));
    for (size_t i = 0; i < n; i++)
      deliver_set_result(d, d->map[i], SMTPOUT_STATUS_DEFERRED,
                         rv == SMTPOUT_ERR_TLS_SETUP ? "4.7.0" : "4.3.0",
                         at->error, SCOPE_RECIPIENT);
    at->hop_outcome = SMTPOUT_HOP_DONE;
    return SMTPOUT_HOP_DONE;
  }

  struct sockaddr_storage ss;
  socklen_t sl = 0;
  int fd = -1;
  if (hop_sockaddr(hop, &ss, &sl) == 0)
    fd = deliver_connect((struct sockaddr *)&ss, sl, ss.ss_family,
                         deliver_timeout(d, SMTPOUT_TIMEOUT_CONNECT));
  else
    errno = EINVAL;
  if (fd < 0) {
    snprintf(detail, detail_len, "%s", strerror(errno));
    at->has_error = 1;
    snprintf(at->error, sizeof(at->error), "connect to %s[%s]: %s",
             at->mx, at->address, detail);
    for (size_t i = 0; i < n; i++)
      deliver_set_result(d, d->map[i], SMTPOUT_STATUS_DEFERRED, "4.4.1",
                         at->error, SCOPE_CONNECTION);
    smtpout_session_free(s);
    at->hop_outcome = SMTPOUT_HOP_CONNECT_FAILED;
    return SMTPOUT_HOP_CONNECT_FAILED;
  }
  note(h, "connected to %s[%s] (%s)", at->mx, at->address,
       smtpout_tls_requirement_name(at->requirement));

  char sending_ip[INET6_ADDRSTRLEN];
  local_address(fd, sending_ip, sizeof(sending_ip));
  deliver_run_session(s, fd);
  close(fd);
  if (deliver_record_session(at, s))
    snprintf(detail, detail_len, "%s", at->error);
  int outcome = smtpout_session_hop_outcome(s);
  at->hop_outcome = outcome;
  *fallback = smtpout_hop_plaintext_fallback(hop) &&
              smtpout_tls_info_fallback_permitted(&at->tls);
  smtpout_session_free(s);
  /* The plaintext fallback repeats a session already reported: one event
   * per TLS session, not per connection. */
  if (!plaintext_fallback && tls_attempted(&at->tls))
    hop_event(h, hop, at, sending_ip);
  return outcome;
}

/* Takes the next hop and reports how it went. */
static void take_hop(struct host *h)
{
  smtpout_delivery *d = h->d;
  const smtpout_hop *hop;
  if (smtpout_route_next_hop(h->r, &hop, deliver_now()) != 1)
    return;
  char detail[REPLY_TEXT_MAX + 160];
  int outcome;
  if (h->resolve_only) {
    struct smtpout_attempt *at = hop_attempt(d, hop, 0);
    if (at) {
      at->has_error = 1;
      snprintf(at->error, sizeof(at->error), "not connected (resolve only)");
      at->hop_outcome = SMTPOUT_HOP_CONNECT_FAILED;
    }
    outcome = SMTPOUT_HOP_CONNECT_FAILED;
    snprintf(detail, sizeof(detail), "not connected (resolve only)");
  } else if (deliver_pending(d) == 0) {
    /* Every recipient is decided (bounced by its own RCPT, possibly
     * delivered): nothing to carry to another host. */
    outcome = SMTPOUT_HOP_DONE;
    detail[0] = '\0';
  } else {
    int fallback;
    size_t first = d->nattempts;
    outcome = hop_connect(h, hop, 0, &fallback, detail, sizeof(detail));
    if (fallback && deliver_pending(d) > 0) {
      /* Once, on a new connection to the same address, without STARTTLS:
       * never reusing the connection whose handshake failed, and only
       * where the hop allows it (never under DANE, MTA-STS or
       * REQUIRETLS). */
      outcome = hop_connect(h, hop, 1, &fallback, detail, sizeof(detail));
      if (first < d->nattempts)
        d->attempts[first].hop_outcome = outcome;
    }
  }
  smtpout_route_hop_done(h->r, hop, outcome, detail[0] ? detail : NULL,
                         deliver_now());
  drain_events(h);
}

/* The local policy of the domain, for smtpout_delivery_policy(). */
static void domain_policy(smtpout_delivery *d)
{
  const char *dom = smtpout_route_domain(d->route);
  if (smtpout_policy_resolve(&d->policy, d->config, &dom, 1, NULL) != 0)
    smtpout_policy_resolve(&d->policy, d->config, NULL, 0, dom);
  /* A relay with credentials or implicit TLS: its hops require TLS
   * (smtpout_hop_starttls()), and the report says so. */
  const struct config_relay *rl =
      d->relay ? config_relay_find(d->config,
                                   d->relay_label
                                       ? d->relay_label
                                       : smtpout_config_relay(d->config))
               : NULL;
  if (d->policy && rl && (rl->auth_username || rl->implicit_tls))
    policy_require_for_auth(d->policy);
}

static int setup_resolver(smtpout_delivery *d, struct resolver **out)
{
  const struct config_routing *settings = config_routing(d->config);
  struct resolver_options opt = {
    .mode = d->dnssec_mode >= 0 ? d->dnssec_mode : settings->dnssec,
    .nameservers =
        d->nameservers ? d->nameservers : config_dns_resolver(d->config),
    .trust_anchor_file = config_dns_trust_anchor(d->config),
    .timeout_ms = settings->dns_timeout_ms,
  };
  char err[256];
  return resolver_new(out, &opt, err, sizeof(err));
}

int deliver_route_run(smtpout_delivery *d, bool resolve_only,
                      bool *no_resolver)
{
  struct host h = {.d = d, .resolve_only = resolve_only};
  *no_resolver = false;
  int setup = setup_resolver(d, &h.resolver);
  if (setup == SMTPOUT_ERR_NOMEM)
    return SMTPOUT_ERR_NOMEM;
  if (setup != 0) {
    /* The configuration was checked when it loaded: what fails here is the
     * machine's (an unreadable trust anchor, libunbound refusing). */
    *no_resolver = true;
    for (size_t i = 0; i < d->nrcpts; i++)
      if (deliver_wants_retry(d, i))
        deliver_set_result(d, i, SMTPOUT_STATUS_DEFERRED, "4.3.0",
                           "the DNS resolver could not be set up",
                           SCOPE_CONNECTION);
    return 0;
  }
  uint32_t flags = d->route_flags;
  if (!resolver_dnssec_capable(h.resolver))
    flags |= SMTPOUT_ROUTE_NO_DNSSEC;
  int rv = d->relay ? smtpout_route_new_relay(&d->route, d->config,
                                               d->relay_label, flags,
                                               deliver_now(), wall_ms())
                    : smtpout_route_new(&d->route, d->config, d->domain,
                                        flags, deliver_now(), wall_ms());
  h.buf = malloc(RESOLVER_MAX_ANSWER > SMTPOUT_STORE_VALUE_MAX
                     ? RESOLVER_MAX_ANSWER
                     : SMTPOUT_STORE_VALUE_MAX);
  if (rv == 0 && h.buf == NULL)
    rv = SMTPOUT_ERR_NOMEM;
  if (rv != 0) {
    free(h.buf);
    resolver_free(h.resolver);
    return rv;
  }
  h.r = d->route;
  domain_policy(d);

  for (;;) {
    int want = smtpout_route_want(h.r);
    if (want == SMTPOUT_ROUTE_WANT_REQUEST) {
      answer(&h);
    } else if (want == SMTPOUT_ROUTE_WANT_HOP) {
      take_hop(&h);
    } else if (want == SMTPOUT_ROUTE_WAIT &&
               smtpout_route_expiry(h.r) != SMTPOUT_NO_EXPIRY) {
      /* Every request is answered at once: a route that waits has a
       * request whose answer it refused; let its deadline pass. */
      smtpout_route_handle_expiry(h.r, smtpout_route_expiry(h.r));
    } else {
      break;
    }
  }
  drain_events(&h);
  d->events_lost += smtpout_route_events_dropped(h.r);
  free(h.buf);
  resolver_free(h.resolver);

  if (resolve_only)
    return 0;
  /* The route's verdict for whoever no hop decided. */
  int status = smtpout_route_status(h.r);
  for (size_t i = 0; i < d->nrcpts; i++) {
    if (!deliver_wants_retry(d, i))
      continue;
    if (status != 0)
      deliver_set_result(d, i, status, smtpout_route_enhanced(h.r),
                         smtpout_route_text(h.r),
                         status == SMTPOUT_STATUS_DEFERRED ? SCOPE_CONNECTION
                                                           : SCOPE_RECIPIENT);
    else if (!d->rcpts[i].has_result)
      deliver_set_result(d, i, SMTPOUT_STATUS_DEFERRED, "4.3.0",
                         "no connection attempt could be made",
                         SCOPE_CONNECTION);
  }
  return 0;
}
