/*
 * soak-host.c — the host of the soak test (tests/bench/soak.py): an
 * outbound queue with retries in front of smtpout sessions, all driven
 * from one epoll loop, pointed at faultsrv --soak.
 *
 * Its event loop is examples/eventloop.c's (one epoll set, one timer heap
 * on smtpout_session_expiry(), feed/flush/update after every event) and it
 * uses only the public API.  What it adds is what that example leaves to a
 * mail server, and what a soak needs:
 *
 *  - a queue: at most --concurrency connections at a time, opened as long
 *    as messages wait; each takes from 1 to --per-conn messages over its
 *    life, --window at a time, the next ones submitted from the session's
 *    on_message_done callback as earlier ones finish.  Connections are
 *    thus new and reused all through the run.
 *  - retries, as an MTA queue does: a recipient deferred (possibly
 *    delivered or not) goes back to the queue and is tried again on
 *    another connection after --retry-delay ms, at most --attempts times.
 *  - a record, --results: one JSON line per submission (an attempt) and
 *    per result, one per connection, samples of its own RSS and open
 *    descriptors every --sample-every finished attempts, and totals.
 *    soak.py checks it against the server's events.
 *
 * Message N (0-based) has 1 to 3 recipients mN.rJ@test.example and a
 * header X-Soak-Id: N; attempt A of it is sent from sN.A@soak.example, so
 * the server's events name the attempt of everything they record.
 *
 *   soak-host --server HOST:PORT --messages N [--mx-name NAME]
 *             [--ca-file FILE] [--starttls MODE] [--resume]
 *             [--concurrency C] [--per-conn M] [--window W]
 *             [--attempts A] [--retry-delay MS] [--timeout MS]
 *             [--seed S] [--sample-every K] --results FILE
 *
 * Exits 0 when the run completed and every submitted recipient had exactly
 * one result; 1 otherwise (the totals say what went wrong); 64 on bad
 * usage, 71 on a system error.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <smtpout/smtpout.h>

enum { MAX_RCPTS = 3, HEADER_MAX = 320 };

/* ------------------------------------------------------------------ */
/* Options                                                              */

static struct options {
  char *host;
  char port[24];
  const char *mx_name;
  const char *ca_file;
  const char *results;
  int starttls; /* enum smtpout_starttls */
  int resume;
  long messages, concurrency, per_conn, window, attempts, retry_delay;
  long timeout, sample_every;
  unsigned long long seed;
} O = {
  .mx_name = "mx.test.example",
  .starttls = SMTPOUT_STARTTLS_OPTIONAL,
  .concurrency = 100,
  .per_conn = 20,
  .window = 2,
  .attempts = 5,
  .retry_delay = 50,
  .timeout = 500,
  .sample_every = 1000,
  .seed = 1,
};

/* ------------------------------------------------------------------ */
/* Randomness: the host's choices (recipients, sizes, messages per
 * connection) follow from --seed. */

static unsigned long long rng_state;

static unsigned long rng_below(unsigned long n)
{
  unsigned long long z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return (unsigned long)((z ^ (z >> 31)) % n);
}

/* ------------------------------------------------------------------ */
/* Messages and the queue                                               */

struct msg {
  struct msg *next;     /* in the fresh or the retry queue */
  uint64_t not_before;  /* a retry waits until then */
  uint64_t wire_size;   /* what the scan says submit needs; 0: not yet */
  uint32_t flags;
  uint32_t id;
  uint32_t size;        /* body bytes */
  unsigned char nrcpt;
  unsigned char attempts; /* made so far */
  unsigned char pending;  /* bit j: recipient j has no final result yet */
};

struct queue {
  struct msg *head, *tail;
};

static void queue_push(struct queue *q, struct msg *m)
{
  m->next = NULL;
  if (q->tail)
    q->tail->next = m;
  else
    q->head = m;
  q->tail = m;
}

static void queue_push_front(struct queue *q, struct msg *m)
{
  m->next = q->head;
  q->head = m;
  if (q->tail == NULL)
    q->tail = m;
}

static struct msg *queue_pop(struct queue *q)
{
  struct msg *m = q->head;
  if (m) {
    q->head = m->next;
    if (q->head == NULL)
      q->tail = NULL;
  }
  return m;
}

/* A body being read: the header, then filler lines up to the size.  It is
 * the same for every attempt of a message, as read_body requires of one
 * submission (and as a queue file would be). */
struct body {
  char header[HEADER_MAX];
  size_t header_len, size, off;
};

static const char filler[] =
    "The quick brown fox jumps over the lazy dog, again and again. 0123\r\n";

static void body_init(struct body *b, const struct msg *m)
{
  int n = snprintf(b->header, sizeof(b->header),
                   "From: <soak@soak.example>\r\n"
                   "To: <m%u.r0@test.example>\r\n"
                   "Subject: soak message %u\r\n"
                   "Message-ID: <%u@soak.example>\r\n"
                   "X-Soak-Id: %u\r\n\r\n",
                   m->id, m->id, m->id, m->id);
  b->header_len = n > 0 && (size_t)n < sizeof(b->header) ? (size_t)n : 0;
  b->size = m->size > b->header_len ? m->size : b->header_len;
  b->off = 0;
}

static void body_copy(struct body *b, uint8_t *buf, size_t len)
{
  const size_t fl = sizeof(filler) - 1;
  while (len > 0) {
    size_t n;
    if (b->off < b->header_len) {
      n = b->header_len - b->off;
      if (n > len)
        n = len;
      memcpy(buf, b->header + b->off, n);
    } else {
      size_t in = (b->off - b->header_len) % fl;
      n = fl - in;
      if (n > len)
        n = len;
      memcpy(buf, filler + in, n);
    }
    buf += n;
    len -= n;
    b->off += n;
  }
}

/* The first attempt scans the body once for its size on the wire and its
 * flags, as a queue manager does when the message is queued. */
static int scan_message(struct msg *m)
{
  struct body b;
  smtpout_message_scan *scan;
  uint8_t buf[4096];
  body_init(&b, m);
  int rv = smtpout_message_scan_new(&scan);
  while (rv == 0 && b.off < b.size) {
    size_t n = b.size - b.off < sizeof(buf) ? b.size - b.off : sizeof(buf);
    body_copy(&b, buf, n);
    rv = smtpout_message_scan_update(scan, buf, n);
  }
  if (rv == 0)
    rv = smtpout_message_scan_end(scan, &m->wire_size, &m->flags);
  smtpout_message_scan_free(scan);
  return rv;
}

/* ------------------------------------------------------------------ */
/* Connections, attempts, the loop                                      */

struct conn;

/* One submission of a message on a connection. */
struct attempt {
  struct attempt *next; /* the connection's attempts in flight */
  struct msg *m;
  int sid;              /* what smtpout_session_submit() returned */
  int no;               /* 1 for the first attempt of the message */
  unsigned char nr;     /* recipients submitted ... */
  unsigned char rcpt[MAX_RCPTS]; /* ... and which of the message's */
  unsigned char results; /* bit i: submitted recipient i has its result */
  struct body body;
};

enum conn_state { CONN_CONNECTING, CONN_RUNNING };

struct conn {
  struct loop *loop;
  int fd;
  enum conn_state state;
  smtpout_session *session;
  long no;
  struct msg *reserved;      /* taken from the queue when opened */
  struct attempt *inflight;
  int ninflight, submitted, quota, quitting;
  uint64_t connect_deadline;
  uint32_t events;
  size_t heap_index;
};

struct totals {
  long connections, connect_failed, tls, verified, resumed;
  long attempts, finished, results, delivered, deferred, bounced, possibly;
  long final_delivered, final_bounced, expired, messages_done;
  long anomalies;            /* results the library owed or doubled */
};

struct loop {
  int epfd;
  smtpout_config *config;
  smtpout_callbacks *callbacks;
  struct addrinfo *server;
  struct conn **heap;
  size_t nheap;
  struct queue fresh, retry;
  long nconns, next_conn_no;
  long failing;              /* connects failed in a row */
  FILE *out;
  long next_sample;
  int fds_start;
  uint64_t t0;
  struct totals t;
};

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Writes `s` as a JSON string: printable ASCII as is, the rest escaped
 * (reply texts come from a hostile server). */
static void json_str(FILE *f, const char *s)
{
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p < 0x20 || *p >= 0x7f)
      fprintf(f, "\\u%04x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}

/* Open descriptors, from /proc/self/fd (less the one that reads it). */
static int count_fds(void)
{
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL)
    return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1;
}

/* Resident set size in KiB, from /proc/self/statm. */
static long rss_kib(void)
{
  long pages = -1, resident = -1;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL)
    return -1;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
    resident = -1;
  fclose(f);
  return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void sample(struct loop *L)
{
  fprintf(L->out,
          "{\"ev\": \"sample\", \"finished\": %ld, \"rss_kib\": %ld, "
          "\"fds\": %d, \"conns\": %ld, \"t\": %.3f}\n",
          L->t.finished, rss_kib(), count_fds(), L->nconns,
          (double)(now_ms() - L->t0) / 1000.0);
}

/* ---- the timer heap (eventloop.c's) ---------------------------------- */

static uint64_t conn_deadline(const struct conn *c)
{
  return c->state == CONN_CONNECTING ? c->connect_deadline
                                     : smtpout_session_expiry(c->session);
}

static void heap_swap(struct loop *L, size_t a, size_t b)
{
  struct conn *t = L->heap[a];
  L->heap[a] = L->heap[b];
  L->heap[b] = t;
  L->heap[a]->heap_index = a;
  L->heap[b]->heap_index = b;
}

static void heap_fix(struct loop *L, size_t i)
{
  while (i > 0 &&
         conn_deadline(L->heap[i]) < conn_deadline(L->heap[(i - 1) / 2])) {
    heap_swap(L, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < L->nheap && conn_deadline(L->heap[l]) < conn_deadline(L->heap[m]))
      m = l;
    if (r < L->nheap && conn_deadline(L->heap[r]) < conn_deadline(L->heap[m]))
      m = r;
    if (m == i)
      return;
    heap_swap(L, i, m);
    i = m;
  }
}

static void heap_push(struct loop *L, struct conn *c)
{
  c->heap_index = L->nheap;
  L->heap[L->nheap++] = c;
  heap_fix(L, c->heap_index);
}

static void heap_remove(struct loop *L, struct conn *c)
{
  size_t i = c->heap_index;
  L->nheap--;
  if (i != L->nheap) {
    heap_swap(L, i, L->nheap);
    heap_fix(L, i);
  }
}

/* ---- the queue manager ------------------------------------------------ */

/* The next message a connection may take now: a retry that is due first
 * (the oldest deferral), else a fresh one. */
static struct msg *take_message(struct loop *L, uint64_t now)
{
  if (L->retry.head && L->retry.head->not_before <= now)
    return queue_pop(&L->retry);
  return queue_pop(&L->fresh);
}

static int message_waiting(const struct loop *L, uint64_t now)
{
  return L->fresh.head != NULL ||
         (L->retry.head != NULL && L->retry.head->not_before <= now);
}

/* Gives back a message that was never submitted: it keeps its place. */
static void untake_message(struct loop *L, struct msg *m)
{
  queue_push_front(m->attempts > 0 ? &L->retry : &L->fresh, m);
}

static struct attempt *find_attempt(struct conn *c, int sid)
{
  for (struct attempt *a = c->inflight; a; a = a->next)
    if (a->sid == sid)
      return a;
  return NULL;
}

/* Submits message `m` (its recipients still pending) on the connection.
 * Returns 0, or the library's error: the message then goes back to the
 * queue untried. */
static int submit(struct loop *L, struct conn *c, struct msg *m)
{
  char sender[64];
  char addrs[MAX_RCPTS][48];
  const char *rcpts[MAX_RCPTS];
  struct attempt *a = calloc(1, sizeof(*a));
  if (a == NULL)
    return SMTPOUT_ERR_NOMEM;
  if (m->wire_size == 0 && scan_message(m) != 0) {
    free(a);
    return SMTPOUT_ERR_NOMEM;
  }
  a->m = m;
  a->no = m->attempts + 1;
  for (int j = 0; j < m->nrcpt; j++) {
    if (!(m->pending & (1u << j)))
      continue;
    snprintf(addrs[a->nr], sizeof(addrs[a->nr]), "m%u.r%d@test.example",
             m->id, j);
    rcpts[a->nr] = addrs[a->nr];
    a->rcpt[a->nr++] = (unsigned char)j;
  }
  snprintf(sender, sizeof(sender), "s%u.%d@soak.example", m->id, a->no);
  body_init(&a->body, m);
  int sid = smtpout_session_submit(c->session, sender, rcpts, a->nr,
                                   m->wire_size, m->flags);
  if (sid < 0) {
    free(a);
    return sid;
  }
  a->sid = sid;
  m->attempts++;
  a->next = c->inflight;
  c->inflight = a;
  c->ninflight++;
  c->submitted++;
  L->t.attempts++;
  fprintf(L->out, "{\"ev\": \"submit\", \"m\": %u, \"a\": %d, \"c\": %ld, "
          "\"rcpt\": [", m->id, a->no, c->no);
  for (int i = 0; i < a->nr; i++)
    fprintf(L->out, "%s%d", i ? ", " : "", a->rcpt[i]);
  fputs("]}\n", L->out);
  return 0;
}

/* Submits what the connection may still take, or says no more will come.
 * Called when the session starts and from on_message_done. */
static void top_up(struct loop *L, struct conn *c, uint64_t now)
{
  if (c->quitting)
    return;
  while (c->ninflight < O.window && c->submitted < c->quota) {
    struct msg *m = c->reserved;
    c->reserved = NULL;
    if (m == NULL && (m = take_message(L, now)) == NULL)
      break;
    if (submit(L, c, m) != 0) {
      untake_message(L, m); /* the session is closing: another will */
      break;
    }
  }
  if (c->submitted >= c->quota || c->ninflight == 0) {
    c->quitting = 1;
    smtpout_session_quit(c->session);
  }
}

/* ---- session callbacks -------------------------------------------------- */

static int read_body(smtpout_session *s, int message_id, uint8_t *buf,
                     size_t buflen, size_t *nread, int *eof, void *user_data)
{
  (void)s;
  struct attempt *a = find_attempt(user_data, message_id);
  if (a == NULL)
    return SMTPOUT_ERR_CALLBACK_FAILURE;
  size_t n = a->body.size - a->body.off;
  if (n > buflen)
    n = buflen;
  body_copy(&a->body, buf, n);
  *nread = n;
  *eof = a->body.off == a->body.size;
  return 0;
}

static void on_result(smtpout_session *s, const smtpout_result *r,
                      void *user_data)
{
  (void)s;
  struct conn *c = user_data;
  struct loop *L = c->loop;
  struct attempt *a = find_attempt(c, smtpout_result_message_id(r));
  size_t i = smtpout_result_recipient_index(r);
  L->t.results++;
  if (a == NULL || i >= a->nr || (a->results & (1u << i))) {
    L->t.anomalies++; /* a result for nothing, or a second one */
    fprintf(L->out, "{\"ev\": \"anomaly\", \"c\": %ld, \"sid\": %d, "
            "\"index\": %zu}\n", c->no, smtpout_result_message_id(r), i);
    return;
  }
  a->results |= (unsigned char)(1u << i);
  int status = smtpout_result_status(r);
  int pd = smtpout_result_possibly_delivered(r);
  int j = a->rcpt[i];
  if (status == SMTPOUT_STATUS_DELIVERED) {
    L->t.delivered++;
    L->t.final_delivered++;
    a->m->pending &= (unsigned char)~(1u << j);
  } else if (status == SMTPOUT_STATUS_BOUNCED) {
    L->t.bounced++;
    L->t.final_bounced++;
    a->m->pending &= (unsigned char)~(1u << j);
  } else {
    L->t.deferred++;
  }
  L->t.possibly += pd;
  fprintf(L->out, "{\"ev\": \"result\", \"m\": %u, \"a\": %d, \"c\": %ld, "
          "\"rcpt\": %d, \"status\": \"%s\", \"code\": %d, \"enh\": ",
          a->m->id, a->no, c->no, j, smtpout_status_name(status),
          smtpout_result_code(r));
  json_str(L->out, smtpout_result_enhanced(r));
  fprintf(L->out, ", \"pd\": %s, \"text\": ", pd ? "true" : "false");
  json_str(L->out, smtpout_result_text(r));
  fputs("}\n", L->out);
}

/* An attempt is over: the message is done, or goes back to the queue for
 * its deferred recipients, or has had its last attempt. */
static void finish_attempt(struct loop *L, struct conn *c, struct attempt *a,
                           uint64_t now)
{
  struct msg *m = a->m;
  if (a->results != (1u << a->nr) - 1) {
    L->t.anomalies++; /* a recipient the library never reported */
    fprintf(L->out, "{\"ev\": \"anomaly\", \"c\": %ld, \"m\": %u, "
            "\"a\": %d, \"missing\": %d}\n", c->no, m->id, a->no,
            (1 << a->nr) - 1 - a->results);
  }
  struct attempt **pp = &c->inflight;
  while (*pp != a)
    pp = &(*pp)->next;
  *pp = a->next;
  c->ninflight--;
  free(a);
  if (++L->t.finished >= L->next_sample) {
    sample(L);
    L->next_sample += O.sample_every;
  }
  if (m->pending == 0) {
    L->t.messages_done++;
  } else if (m->attempts >= O.attempts) {
    L->t.expired++;
    L->t.messages_done++;
    fprintf(L->out, "{\"ev\": \"expired\", \"m\": %u, \"pending\": %d}\n",
            m->id, m->pending);
  } else {
    m->not_before = now + (uint64_t)O.retry_delay;
    queue_push(&L->retry, m);
  }
}

static void on_message_done(smtpout_session *s, int message_id,
                            void *user_data)
{
  (void)s;
  struct conn *c = user_data;
  struct attempt *a = find_attempt(c, message_id);
  uint64_t now = now_ms();
  if (a == NULL) {
    c->loop->t.anomalies++;
    return;
  }
  finish_attempt(c->loop, c, a, now);
  top_up(c->loop, c, now);
}

/* ---- connection life cycle ---------------------------------------------- */

static int conn_watch(struct loop *L, struct conn *c, uint32_t events)
{
  if (events == c->events)
    return 0;
  struct epoll_event ev = {.events = events, .data.ptr = c};
  int op = c->events == 0 ? EPOLL_CTL_ADD
           : events == 0  ? EPOLL_CTL_DEL
                          : EPOLL_CTL_MOD;
  if (epoll_ctl(L->epfd, op, c->fd, &ev) != 0)
    return -1;
  c->events = events;
  return 0;
}

/* Opens a connection for message `m` and whatever waits when it is up. */
static int conn_open(struct loop *L, struct msg *m, uint64_t now)
{
  struct conn *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return -1;
  c->loop = L;
  c->no = L->next_conn_no++;
  c->reserved = m;
  c->quota = 1 + (int)rng_below((unsigned long)O.per_conn);
  c->state = CONN_CONNECTING;
  c->connect_deadline = now + (uint64_t)O.timeout;
  const struct addrinfo *ai = L->server;
  c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                 ai->ai_protocol);
  if (c->fd < 0) {
    free(c);
    return -1;
  }
  if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
      errno != EINPROGRESS)
    c->connect_deadline = 0; /* the first timer check finishes it */
  else if (conn_watch(L, c, EPOLLOUT) != 0) {
    close(c->fd);
    free(c);
    return -1;
  }
  heap_push(L, c);
  L->nconns++;
  return 0;
}

static int conn_established(struct loop *L, struct conn *c, uint64_t now)
{
  int rv = smtpout_session_new(&c->session, O.mx_name, L->config,
                               L->callbacks, c);
  if (rv == 0)
    rv = smtpout_session_set_helo_name(c->session, "client.soak.example");
  if (rv == 0 && O.resume)
    rv = smtpout_session_set_tls_resumption(c->session, 1);
  for (int t = 0; rv == 0 && t < SMTPOUT_TIMEOUT_COUNT; t++)
    rv = smtpout_session_set_timeout(c->session, t, (uint32_t)O.timeout);
  if (rv == 0)
    rv = smtpout_session_start(c->session, now);
  if (rv != 0) {
    fprintf(stderr, "soak-host: session setup: %s\n", smtpout_strerror(rv));
    return -1;
  }
  c->state = CONN_RUNNING;
  top_up(L, c, now);
  return 0;
}

/* The connection is over.  The session reported every submitted
 * recipient (it is done); a message reserved but never submitted goes back
 * to the queue. */
static void conn_finish(struct loop *L, struct conn *c)
{
  heap_remove(L, c);
  conn_watch(L, c, 0);
  close(c->fd);
  L->nconns--;
  if (c->reserved)
    untake_message(L, c->reserved);
  const smtpout_tls_info *tls =
      c->session ? smtpout_session_tls_info(c->session) : NULL;
  int used = tls && smtpout_tls_info_used(tls);
  int verified = used && smtpout_tls_info_verified(tls);
  int resumed = used && smtpout_tls_info_resumed(tls);
  L->t.tls += used;
  L->t.verified += verified;
  L->t.resumed += resumed;
  if (c->session) {
    L->t.connections++;
    fprintf(L->out, "{\"ev\": \"conn\", \"c\": %ld, \"submitted\": %d, "
            "\"tls\": %s, \"verified\": %s, \"resumed\": %s, \"error\": ",
            c->no, c->submitted, used ? "true" : "false",
            verified ? "true" : "false", resumed ? "true" : "false");
    json_str(L->out, smtpout_session_close_text(c->session));
    fputs("}\n", L->out);
  }
  /* Attempts without on_message_done: the library owed it. */
  uint64_t now = now_ms();
  while (c->inflight) {
    L->t.anomalies++;
    finish_attempt(L, c, c->inflight, now);
  }
  smtpout_session_free(c->session);
  free(c);
}

static void conn_flush(struct conn *c, uint64_t now)
{
  while (smtpout_session_want_write(c->session)) {
    const uint8_t *data;
    size_t len;
    if (smtpout_session_peek_output(c->session, &data, &len, now) != 0 ||
        len == 0)
      return;
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return;
      smtpout_session_feed_eof(c->session, now);
      return;
    }
    smtpout_session_consume_output(c->session, (size_t)n, now);
    if ((size_t)n < len)
      return;
  }
}

static void conn_read(struct conn *c, uint64_t now)
{
  static uint8_t buf[64 * 1024];
  ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
  if (n > 0)
    smtpout_session_feed(c->session, buf, (size_t)n, now);
  else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK &&
                      errno != EINTR))
    smtpout_session_feed_eof(c->session, now);
}

static void conn_update(struct loop *L, struct conn *c)
{
  smtpout_session *s = c->session;
  if (smtpout_session_is_done(s)) {
    conn_finish(L, c);
    return;
  }
  uint32_t events = 0;
  if (smtpout_session_want_read(s))
    events |= EPOLLIN;
  if (smtpout_session_want_write(s))
    events |= EPOLLOUT;
  if (events == 0 || conn_watch(L, c, events) != 0) {
    smtpout_session_abort(s, now_ms());
    conn_finish(L, c);
    return;
  }
  heap_fix(L, c->heap_index);
}

static void conn_event(struct loop *L, struct conn *c, uint32_t ev)
{
  uint64_t now = now_ms();
  if (c->state == CONN_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
      err = errno;
    if (err != 0 || conn_established(L, c, now) != 0) {
      L->t.connect_failed++;
      L->failing++;
      conn_finish(L, c);
      return;
    }
    L->failing = 0;
    conn_update(L, c);
    return;
  }
  if (ev & EPOLLIN)
    conn_read(c, now);
  else if (ev & (EPOLLERR | EPOLLHUP))
    smtpout_session_feed_eof(c->session, now);
  conn_flush(c, now);
  conn_update(L, c);
}

static void run_timers(struct loop *L)
{
  uint64_t now = now_ms();
  while (L->nheap > 0 && conn_deadline(L->heap[0]) <= now) {
    struct conn *c = L->heap[0];
    if (c->state == CONN_CONNECTING) {
      L->t.connect_failed++;
      L->failing++;
      conn_finish(L, c);
      continue;
    }
    smtpout_session_handle_expiry(c->session, now);
    conn_flush(c, now);
    conn_update(L, c);
  }
}

/* Opens connections while messages wait and the limit allows. */
static int fill(struct loop *L)
{
  uint64_t now = now_ms();
  while (L->nconns < O.concurrency && message_waiting(L, now)) {
    struct msg *m = take_message(L, now);
    if (conn_open(L, m, now) != 0) {
      untake_message(L, m);
      return -1;
    }
  }
  return 0;
}

static int run(struct loop *L)
{
  struct epoll_event evs[256];
  for (;;) {
    /* A server that refuses every connection would spin forever (a reset
     * at the greeting can fail a connect now and then). */
    if (L->failing > 100) {
      fprintf(stderr, "soak-host: too many failed connects\n");
      return -1;
    }
    if (fill(L) != 0) {
      perror("soak-host: socket");
      return -1;
    }
    if (L->nheap == 0 && L->retry.head == NULL && L->fresh.head == NULL)
      return 0;
    uint64_t now = now_ms(), next = SMTPOUT_NO_EXPIRY;
    if (L->nheap > 0)
      next = conn_deadline(L->heap[0]);
    if (L->nconns < O.concurrency && L->retry.head &&
        L->retry.head->not_before < next)
      next = L->retry.head->not_before;
    int timeout = -1;
    if (next != SMTPOUT_NO_EXPIRY)
      timeout = next <= now ? 0 : next - now > 60000 ? 60000
                                                     : (int)(next - now);
    int n = epoll_wait(L->epfd, evs, 256, timeout);
    if (n < 0 && errno != EINTR) {
      perror("soak-host: epoll_wait");
      return -1;
    }
    for (int i = 0; i < n; i++)
      conn_event(L, evs[i].data.ptr, evs[i].events);
    run_timers(L);
  }
}

/* ------------------------------------------------------------------ */
/* Setup                                                                */

static void usage(FILE *f)
{
  fputs("usage: soak-host --server HOST:PORT --messages N --results FILE\n"
        "                 [--mx-name NAME] [--ca-file FILE] "
        "[--starttls disable|optional|require]\n"
        "                 [--resume] [--concurrency C] [--per-conn M] "
        "[--window W]\n"
        "                 [--attempts A] [--retry-delay MS] [--timeout MS]\n"
        "                 [--seed S] [--sample-every K]\n",
        f);
}

static long parse_count(const char *s, long min, long max)
{
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || end == s || v < min || v > max)
    return -1;
  return v;
}

static int parse_options(int argc, char **argv)
{
  static const struct option longopts[] = {
    {"server", required_argument, NULL, 's'},
    {"messages", required_argument, NULL, 'n'},
    {"results", required_argument, NULL, 'r'},
    {"mx-name", required_argument, NULL, 'x'},
    {"ca-file", required_argument, NULL, 'a'},
    {"starttls", required_argument, NULL, 'S'},
    {"resume", no_argument, NULL, 'R'},
    {"concurrency", required_argument, NULL, 'c'},
    {"per-conn", required_argument, NULL, 'p'},
    {"window", required_argument, NULL, 'w'},
    {"attempts", required_argument, NULL, 'A'},
    {"retry-delay", required_argument, NULL, 'd'},
    {"timeout", required_argument, NULL, 'T'},
    {"seed", required_argument, NULL, 'e'},
    {"sample-every", required_argument, NULL, 'k'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  const char *server = NULL;
  int ch;
  while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (ch) {
    case 's': server = optarg; break;
    case 'n': O.messages = parse_count(optarg, 1, 10000000); break;
    case 'r': O.results = optarg; break;
    case 'x': O.mx_name = optarg; break;
    case 'a': O.ca_file = optarg; break;
    case 'S':
      O.starttls = -1;
      for (int m = 0; m <= SMTPOUT_STARTTLS_REQUIRE; m++)
        if (strcmp(optarg, smtpout_starttls_name(m)) == 0)
          O.starttls = m;
      if (O.starttls < 0)
        return -1;
      break;
    case 'R': O.resume = 1; break;
    case 'c': O.concurrency = parse_count(optarg, 1, 10000); break;
    case 'p': O.per_conn = parse_count(optarg, 1, 100000); break;
    case 'w': O.window = parse_count(optarg, 1, 1000); break;
    case 'A': O.attempts = parse_count(optarg, 1, 100); break;
    case 'd': O.retry_delay = parse_count(optarg, 0, 3600000); break;
    case 'T': O.timeout = parse_count(optarg, 1, 3600000); break;
    case 'e': O.seed = strtoull(optarg, NULL, 10); break;
    case 'k': O.sample_every = parse_count(optarg, 1, 10000000); break;
    case 'h': usage(stdout); exit(0);
    default: return -1;
    }
  }
  if (optind != argc || server == NULL || O.results == NULL ||
      O.messages <= 0 || O.concurrency < 0 || O.per_conn < 0 ||
      O.window < 0 || O.attempts < 0 || O.retry_delay < 0 || O.timeout < 0 ||
      O.sample_every < 0)
    return -1;
  const char *colon = strrchr(server, ':');
  if (colon == NULL || parse_count(colon + 1, 1, 65535) < 0)
    return -1;
  O.host = strndup(server, (size_t)(colon - server));
  snprintf(O.port, sizeof(O.port), "%s", colon + 1);
  return O.host ? 0 : -1;
}

/* One configuration for every session: the trust store is read once. */
static int make_config(smtpout_config **pc)
{
  char ini[4096], err[4096] = "";
  int n = snprintf(ini, sizeof(ini), "[queue.outbound.tls]\nstarttls = %s\n",
                   smtpout_starttls_name(O.starttls));
  if (O.ca_file)
    snprintf(ini + n, sizeof(ini) - (size_t)n, "ca-file = %s\n", O.ca_file);
  int rv = smtpout_config_load_string(pc, ini, "soak-host", err, sizeof(err));
  if (rv != 0)
    fprintf(stderr, "soak-host: %s\n%s", smtpout_strerror(rv), err);
  return rv;
}

int main(int argc, char **argv)
{
  if (parse_options(argc, argv) != 0) {
    usage(stderr);
    return 64;
  }
  rng_state = O.seed;
  struct loop L = {.next_sample = O.sample_every};
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST};
  if (getaddrinfo(O.host, O.port, &hints, &L.server) != 0) {
    fprintf(stderr, "soak-host: bad server address %s\n", O.host);
    return 64;
  }
  struct msg *msgs = calloc((size_t)O.messages, sizeof(*msgs));
  L.heap = calloc((size_t)O.concurrency, sizeof(*L.heap));
  L.epfd = epoll_create1(EPOLL_CLOEXEC);
  L.out = fopen(O.results, "w");
  if (msgs == NULL || L.heap == NULL || L.epfd < 0 || L.out == NULL ||
      smtpout_callbacks_new(&L.callbacks) != 0) {
    perror("soak-host: setup");
    return 71;
  }
  if (make_config(&L.config) != 0)
    return 64;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  smtpout_callbacks_set_read_body(L.callbacks, read_body);
  smtpout_callbacks_set_on_result(L.callbacks, on_result);
  smtpout_callbacks_set_on_message_done(L.callbacks, on_message_done);

  /* Mostly small messages, a few of tens of KiB, one in a thousand of
   * most of a MiB: enough to fill socket buffers and meet slow reads. */
  for (long i = 0; i < O.messages; i++) {
    struct msg *m = &msgs[i];
    m->id = (uint32_t)i;
    m->nrcpt = (unsigned char)(1 + rng_below(MAX_RCPTS));
    m->pending = (unsigned char)((1u << m->nrcpt) - 1);
    unsigned long r = rng_below(1000);
    m->size = (uint32_t)(r == 0    ? 512 * 1024 + rng_below(512 * 1024)
                         : r < 20 ? 16 * 1024 + rng_below(112 * 1024)
                                  : 400 + rng_below(2600));
    queue_push(&L.fresh, m);
  }

  L.fds_start = count_fds();
  L.t0 = now_ms();
  sample(&L);
  long rss_start = rss_kib();
  if (run(&L) != 0)
    return 71;
  double secs = (double)(now_ms() - L.t0) / 1000.0;
  sample(&L);
  int fds_end = count_fds();
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  struct totals *t = &L.t;
  fprintf(L.out,
          "{\"ev\": \"end\", \"messages\": %ld, \"attempts\": %ld, "
          "\"connections\": %ld, \"connect_failed\": %ld, \"tls\": %ld, "
          "\"verified\": %ld, \"resumed\": %ld, \"results\": %ld, "
          "\"delivered\": %ld, \"deferred\": %ld, \"bounced\": %ld, "
          "\"possibly_delivered\": %ld, \"final_delivered\": %ld, "
          "\"final_bounced\": %ld, \"expired\": %ld, \"messages_done\": %ld, "
          "\"anomalies\": %ld, \"fds_start\": %d, \"fds_end\": %d, "
          "\"rss_start_kib\": %ld, \"rss_end_kib\": %ld, "
          "\"max_rss_kib\": %ld, \"seconds\": %.3f, \"user_s\": %.3f, "
          "\"sys_s\": %.3f}\n",
          O.messages, t->attempts, t->connections, t->connect_failed, t->tls,
          t->verified, t->resumed, t->results, t->delivered, t->deferred,
          t->bounced, t->possibly, t->final_delivered, t->final_bounced,
          t->expired, t->messages_done, t->anomalies, L.fds_start, fds_end,
          rss_start, rss_kib(), ru.ru_maxrss, secs,
          (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
          (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
  printf("messages %ld attempts %ld connections %ld delivered %ld "
         "deferred %ld bounced %ld possibly-delivered %ld expired %ld "
         "anomalies %ld fds %d->%d elapsed %.1f s\n",
         O.messages, t->attempts, t->connections, t->final_delivered,
         t->deferred, t->final_bounced, t->possibly, t->expired, t->anomalies,
         L.fds_start, fds_end, secs);
  int ok = t->anomalies == 0 && t->messages_done == O.messages &&
           fds_end == L.fds_start;
  fclose(L.out);
  smtpout_callbacks_free(L.callbacks);
  smtpout_config_unref(L.config);
  freeaddrinfo(L.server);
  close(L.epfd);
  free(L.heap);
  free(msgs);
  free(O.host);
  return ok ? 0 : 1;
}
