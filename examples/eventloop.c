/*
 * eventloop.c — many concurrent deliveries in one thread, with epoll.
 *
 * This is the shape of a mail server's outbound side built on smtpout's
 * sans-I/O session: the host owns the sockets, the event loop and the
 * clock; each smtpout_session only turns the bytes received into bytes to
 * send and per-recipient results.  The program opens --sessions
 * connections to one server at once, queues --messages-per-session
 * messages on each, and runs them all from one epoll loop with one timer
 * heap.  Recipients a connection could not deliver and another address
 * may (a failed connect, or a result that says so:
 * smtpout_result_try_another_address()) go on to the server's next
 * address (the addresses of every --server, in order), as an MTA takes
 * them to the next MX.  docs/event-loop.md explains the contract this
 * file follows.
 *
 *   eventloop --server HOST[:PORT] [--server HOST[:PORT] ...]
 *             --from ADDR --to ADDR [--to ADDR ...]
 *             [--sessions N] [--messages-per-session M] [--size BYTES]
 *             [--mx-name NAME] [--helo NAME] [--config FILE]
 *             [--ca-file FILE] [--starttls disable|optional|require]
 *             [--allow-invalid-certs] [--timeout MS] [--verbose]
 *
 * It prints a summary and exits 0 when every recipient of every message was
 * delivered, 75 when any was deferred, 69 when the others were bounced;
 * 64 for bad usage, 78 for a bad configuration, 71 for a system error.
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

enum {
  EX_USAGE_ = 64,
  EX_UNAVAILABLE_ = 69,
  EX_OSERR_ = 71,
  EX_TEMPFAIL_ = 75,
  EX_CONFIG_ = 78
};

/* Failures printed one by one; beyond this many they are only counted. */
#define MAX_PRINTED_FAILURES 20

/* ------------------------------------------------------------------ */
/* Options                                                              */

/* One --server: a name (or address) and a port. */
struct server {
  char *host;
  char port[24];
};

struct options {
  struct server *servers; /* in the order given: their addresses in turn */
  size_t nservers;
  const char *host;       /* the first server's: the default MX name */
  const char *mx_name;
  const char *helo;
  const char *config;
  const char *ca_file;
  const char *from;
  const char **to;
  size_t nto;
  long sessions;
  long messages;
  long size;
  long timeout;  /* ms for every phase; 0: the configuration's */
  int starttls; /* -1: whatever the configuration resolves */
  int allow_invalid_certs;
  int verbose;
};

/* ------------------------------------------------------------------ */
/* Messages                                                             */

/* One message.  Its body is generated on the fly (a header naming the
 * session and message, then filler lines up to --size), so a large --size
 * costs no memory. */
struct message {
  int session_no, message_no;
  int id;        /* what smtpout_session_submit() returned */
  size_t off;    /* how much of the body read_body has handed out */
  size_t size;   /* the body size */
  uint64_t wire_size; /* what a scan says submit needs */
  uint32_t flags;
  char header[192];
  size_t header_len;
  int *status;   /* enum smtpout_status per recipient; 0 = no result yet */
  size_t *sent;  /* the recipients submitted on the current connection */
  size_t nsent;
};

/* A recipient's status while it waits for the server's next address: a
 * connection deferred it for a reason that says nothing about it. */
#define STATUS_NEXT_ADDRESS (-1)

static const char filler[] =
    "The quick brown fox jumps over the lazy dog, again and again. 0123\r\n";

/* Copies the next `len` body bytes of `m` into `buf`. */
static void body_copy(struct message *m, uint8_t *buf, size_t len)
{
  const size_t fl = sizeof(filler) - 1;
  while (len > 0) {
    size_t n;
    if (m->off < m->header_len) {
      n = m->header_len - m->off;
      if (n > len)
        n = len;
      memcpy(buf, m->header + m->off, n);
    } else {
      size_t in = (m->off - m->header_len) % fl;
      n = fl - in;
      if (n > len)
        n = len;
      memcpy(buf, filler + in, n);
    }
    buf += n;
    len -= n;
    m->off += n;
  }
}

/* ------------------------------------------------------------------ */
/* Connections and the loop                                             */

enum conn_state {
  CONN_CONNECTING, /* non-blocking connect() in progress; no session yet */
  CONN_RUNNING     /* connected; the session drives the socket */
};

struct loop;

struct conn {
  struct loop *loop;
  int fd;
  enum conn_state state;
  smtpout_session *session;
  struct message *msgs; /* this connection's messages */
  size_t nmsgs;
  int no;               /* session number, for messages */
  const struct addrinfo *ai; /* the server's address this one connects to */
  int plaintext_fallback;
  uint64_t connect_deadline;
  uint32_t events;      /* the epoll interest currently registered */
  size_t heap_index;    /* position in the timer heap */
  char error[160];      /* why the connect failed */
};

struct totals {
  long connections, connect_failed, tls, verified, fallbacks, next_address;
  long running, peak; /* sessions connected at the same time */
  long delivered, deferred, bounced, printed;
};

struct loop {
  int epfd;
  const struct options *opt;
  smtpout_config *config;       /* shared by every session */
  smtpout_callbacks *callbacks; /* one object serves every session */
  struct addrinfo *server;      /* the server's addresses, in order */
  char *helo;                   /* --helo, else this machine's name */
  const char **rcpts;           /* room for one message's recipients */
  struct conn **heap;           /* min-heap on conn_deadline() */
  size_t nheap;
  struct totals t;
};

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The one deadline of a connection: the connect timeout while connecting,
 * then whatever the session says (a reply, the handshake, a stalled body),
 * possibly SMTPOUT_NO_EXPIRY. */
static uint64_t conn_deadline(const struct conn *c)
{
  return c->state == CONN_CONNECTING ? c->connect_deadline
                                     : smtpout_session_expiry(c->session);
}

/* ------------------------------------------------------------------ */
/* The timer heap.  One entry per connection, keyed on its deadline and
 * re-keyed after every event on it: the loop sleeps exactly until the
 * earliest deadline, and finding the expired connections costs O(log n)
 * each instead of a scan of all of them. */

static void heap_swap(struct loop *L, size_t a, size_t b)
{
  struct conn *t = L->heap[a];
  L->heap[a] = L->heap[b];
  L->heap[b] = t;
  L->heap[a]->heap_index = a;
  L->heap[b]->heap_index = b;
}

/* Restores the heap order around entry i after its key changed. */
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

/* ------------------------------------------------------------------ */
/* Session callbacks.  They run inside smtpout_session_feed(),
 * _peek_output() and the other I/O calls.  They only record: a callback
 * may call submit, quit and the getters, never the I/O calls themselves
 * nor smtpout_session_free() (docs/event-loop.md, "Re-entrancy"). */

static struct message *find_message(struct conn *c, int id)
{
  for (size_t i = 0; i < c->nmsgs; i++)
    if (c->msgs[i].id == id)
      return &c->msgs[i];
  return NULL;
}

static int read_body(smtpout_session *s, int message_id, uint8_t *buf,
                     size_t buflen, size_t *nread, int *eof, void *user_data)
{
  (void)s;
  struct message *m = find_message(user_data, message_id);
  if (m == NULL)
    return SMTPOUT_ERR_CALLBACK_FAILURE;
  size_t n = m->size - m->off;
  if (n > buflen)
    n = buflen;
  body_copy(m, buf, n);
  *nread = n;
  *eof = m->off == m->size;
  return 0;
}

static void on_result(smtpout_session *s, const smtpout_result *r,
                      void *user_data)
{
  struct conn *c = user_data;
  struct message *m = find_message(c, smtpout_result_message_id(r));
  if (m == NULL)
    return;
  int status = smtpout_result_status(r);
  /* The result's index is in the list this connection submitted. */
  size_t k = smtpout_result_recipient_index(r);
  if (k >= m->nsent)
    return;
  /* A deferral that says nothing about the recipient goes to the next
   * address when there is one (conn_finish), as an MTA takes it to the
   * next MX; a possibly delivered one never does (the library says 0). */
  int next = smtpout_result_try_another_address(r) && c->ai->ai_next != NULL;
  m->status[m->sent[k]] = next ? STATUS_NEXT_ADDRESS : status;
  if (status == SMTPOUT_STATUS_DELIVERED)
    return;
  /* A deferral that the plaintext fallback or the next address will
   * retry (conn_finish) is not a failure yet: shown only with --verbose.
   * The getters may be called from a callback. */
  int fallback = !c->plaintext_fallback &&
                 smtpout_tls_info_fallback_permitted(
                     smtpout_session_tls_info(s));
  int retried = fallback || next;
  struct loop *L = c->loop;
  if (L->opt->verbose || (!retried && L->t.printed < MAX_PRINTED_FAILURES)) {
    L->t.printed++;
    /* `r` is valid only during this call: print (or copy) it now. */
    fprintf(stderr, "session %d message %d <%s>: %s %d %s %s%s\n", c->no,
            m->message_no, smtpout_result_recipient(r),
            smtpout_status_name(status), smtpout_result_code(r),
            smtpout_result_enhanced(r), smtpout_result_text(r),
            fallback ? " (retrying without STARTTLS)"
            : next   ? " (trying the next address)"
            : smtpout_result_possibly_delivered(r) ? " (possibly delivered)"
                                                   : "");
  }
}

/* ------------------------------------------------------------------ */
/* Connection life cycle                                                */

/* Registers the epoll interest the session asks for, when it changed. */
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

/* Starts a connection to address `ai` for `nmsgs` messages: a
 * non-blocking connect whose completion (or failure) epoll reports as
 * writability. */
static int conn_open(struct loop *L, int no, struct message *msgs,
                     size_t nmsgs, int plaintext_fallback,
                     const struct addrinfo *ai)
{
  struct conn *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return -1;
  c->loop = L;
  c->no = no;
  c->msgs = msgs;
  c->nmsgs = nmsgs;
  c->plaintext_fallback = plaintext_fallback;
  c->ai = ai;
  c->state = CONN_CONNECTING;
  c->connect_deadline =
      now_ms() + (L->opt->timeout > 0 ? (uint64_t)L->opt->timeout
                  : smtpout_config_timeout(L->config, SMTPOUT_TIMEOUT_CONNECT));
  c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                 ai->ai_protocol);
  if (c->fd < 0) {
    free(c);
    return -1;
  }
  /* EINPROGRESS is the normal answer.  An immediate success is picked up
   * through EPOLLOUT like a delayed one, on one path. */
  if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
      errno != EINPROGRESS) {
    /* Failed at once: not watched (epoll would report the unconnected
     * socket as writable); the first timer check finishes it. */
    snprintf(c->error, sizeof(c->error), "connect: %s", strerror(errno));
    c->connect_deadline = 0;
  } else if (conn_watch(L, c, EPOLLOUT) != 0) {
    close(c->fd);
    free(c);
    return -1;
  }
  heap_push(L, c);
  return 0;
}

/* The TCP connection is up: create the session, queue the messages, and
 * say that no more will come (QUIT once they are done).  Returns 0, or -1
 * when the session cannot be set up (the connection is then finished). */
static int conn_established(struct loop *L, struct conn *c, uint64_t now)
{
  const struct options *o = L->opt;
  int rv = smtpout_session_new(&c->session,
                               o->mx_name ? o->mx_name : o->host, L->config,
                               L->callbacks, c);
  /* The session knows no name of this machine: the host gives it.  This
   * machine's own name, when it is no domain name, leaves the session's
   * default; --helo must be one. */
  if (rv == 0 && L->helo) {
    int h = smtpout_session_set_helo_name(c->session, L->helo);
    if (h != 0 && (o->helo || h != SMTPOUT_ERR_BAD_NAME))
      rv = h;
  }
  /* A per-session CA file is loaded by each session: fine for a test,
   * but a server with many sessions sets ca-file in the configuration so
   * that the trust store is read once. */
  if (rv == 0 && o->ca_file)
    rv = smtpout_session_set_ca_file(c->session, o->ca_file);
  if (rv == 0 && o->starttls >= 0)
    rv = smtpout_session_set_tls_policy(c->session, o->starttls,
                                        o->allow_invalid_certs);
  if (rv == 0 && c->plaintext_fallback)
    rv = smtpout_session_set_plaintext_fallback(c->session);
  for (int t = 0; rv == 0 && o->timeout > 0 && t < SMTPOUT_TIMEOUT_COUNT; t++)
    rv = smtpout_session_set_timeout(c->session, t, (uint32_t)o->timeout);
  if (rv == 0)
    rv = smtpout_session_start(c->session, now);
  for (size_t i = 0; rv == 0 && i < c->nmsgs; i++) {
    /* The recipients still without a result, or sent on from an earlier
     * address. */
    struct message *m = &c->msgs[i];
    m->off = 0;
    m->id = 0;
    m->nsent = 0;
    for (size_t r = 0; r < o->nto; r++)
      if (m->status[r] == 0 || m->status[r] == STATUS_NEXT_ADDRESS) {
        m->status[r] = 0;
        m->sent[m->nsent] = r;
        L->rcpts[m->nsent++] = o->to[r];
      }
    if (m->nsent == 0)
      continue;
    int id = smtpout_session_submit(c->session, o->from, L->rcpts, m->nsent,
                                    m->wire_size, m->flags);
    if (id < 0)
      rv = id;
    m->id = id;
  }
  if (rv == 0)
    rv = smtpout_session_quit(c->session);
  if (rv != 0) {
    snprintf(c->error, sizeof(c->error), "session setup: %s",
             smtpout_strerror(rv));
    /* Messages already submitted get their (deferred) results. */
    if (c->session)
      smtpout_session_abort(c->session, now);
    return -1;
  }
  c->state = CONN_RUNNING;
  if (++L->t.running > L->t.peak)
    L->t.peak = L->t.running;
  return 0;
}

/* Whether some recipient of the connection's messages is still to be
 * sent: it never got a result (the connect failed), or its result said
 * another address may take it. */
static int conn_pending(const struct loop *L, const struct conn *c)
{
  for (size_t i = 0; i < c->nmsgs; i++)
    for (size_t r = 0; r < L->opt->nto; r++)
      if (c->msgs[i].status[r] == 0 ||
          c->msgs[i].status[r] == STATUS_NEXT_ADDRESS)
        return 1;
  return 0;
}

/* The connection is over: retry it once without STARTTLS when its
 * session says the policy permits that, take what is left to the
 * server's next address, or tally the results. */
static void conn_finish(struct loop *L, struct conn *c)
{
  const struct options *o = L->opt;
  heap_remove(L, c);
  conn_watch(L, c, 0);
  close(c->fd);
  if (c->state == CONN_RUNNING)
    L->t.running--;

  const smtpout_tls_info *tls =
      c->session ? smtpout_session_tls_info(c->session) : NULL;
  if (tls && smtpout_tls_info_used(tls)) {
    L->t.tls++;
    L->t.verified += smtpout_tls_info_verified(tls);
  }
  /* The host's own reason (connect, setup) first, else the session's. */
  const char *why = c->error[0] || c->session == NULL
                        ? c->error
                        : smtpout_session_close_text(c->session);
  int retry = tls && smtpout_tls_info_fallback_permitted(tls) &&
              !c->plaintext_fallback;
  if (why[0] &&
      (o->verbose || (!retry && L->t.printed < MAX_PRINTED_FAILURES))) {
    L->t.printed++;
    fprintf(stderr, "session %d: %s\n", c->no, why);
  }

  /* The plaintext fallback is the host's job: only the host can open a
   * new connection.  The session permits it when the handshake (not the
   * certificate) failed under an optional policy; every recipient was then
   * deferred 4.7.5 before any transaction, and all of them go again on a
   * NEW connection, never this one.  Their deferrals are not counted. */
  if (retry) {
    L->t.fallbacks++;
    for (size_t i = 0; i < c->nmsgs; i++)
      for (size_t k = 0; k < c->msgs[i].nsent; k++)
        c->msgs[i].status[c->msgs[i].sent[k]] = 0;
    if (conn_open(L, c->no, c->msgs, c->nmsgs, 1, c->ai) == 0) {
      smtpout_session_free(c->session);
      free(c);
      return;
    }
    /* No retry possible: the recipients are counted deferred below. */
  }

  /* The next address, for what this one could not deliver and another
   * may.  Recipients a reply decided, or possibly delivered, stay as
   * they are. */
  if (!retry && c->ai->ai_next != NULL && conn_pending(L, c)) {
    L->t.next_address++;
    if (conn_open(L, c->no, c->msgs, c->nmsgs, 0, c->ai->ai_next) == 0) {
      smtpout_session_free(c->session);
      free(c);
      return;
    }
  }

  for (size_t i = 0; i < c->nmsgs; i++) {
    for (size_t r = 0; r < o->nto; r++) {
      int st = c->msgs[i].status[r];
      if (st == SMTPOUT_STATUS_DELIVERED) {
        L->t.delivered++;
        continue;
      }
      if (st == SMTPOUT_STATUS_BOUNCED)
        L->t.bounced++;
      else
        L->t.deferred++; /* deferred, or never reached a session */
      /* Results the session reported were printed by on_result. */
      if (st == 0 &&
          (o->verbose || L->t.printed < MAX_PRINTED_FAILURES)) {
        L->t.printed++;
        fprintf(stderr, "session %d message %d <%s>: deferred (no "
                "session)\n", c->no, c->msgs[i].message_no, o->to[r]);
      }
    }
  }
  smtpout_session_free(c->session);
  free(c);
}

/*
 * Writes what the session has to send until it has nothing more or the
 * socket is full.  Each consume follows its peek directly: the peeked
 * pointer is only valid until the next call on the session.  A write
 * error is the connection's end, reported to the session as end of file.
 */
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
        return; /* epoll says when the socket drains */
      smtpout_session_feed_eof(c->session, now);
      return;
    }
    smtpout_session_consume_output(c->session, (size_t)n, now);
    if ((size_t)n < len)
      return; /* the socket buffer is full */
  }
}

/* Acknowledges at once what was just read when it left the session with
 * nothing to send: the kernel would otherwise hold the ACK back (40 ms on
 * Linux) for a reply that is not coming, and a server whose next small
 * write waits for that ACK (Nagle) would wait with it.  Postfix does: its
 * answer to the EHLO sent right behind our TLS Finished stays in its
 * kernel until its TLS 1.3 session tickets are acknowledged.  When the
 * session has something to send, the ACK rides on it for free. */
static void ack_if_idle(struct conn *c)
{
#ifdef TCP_QUICKACK
  if (smtpout_session_want_write(c->session) ||
      smtpout_session_is_done(c->session))
    return;
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
#else
  (void)c;
#endif
}

/* Reads once from the socket into the session.  One buffer serves every
 * connection: smtpout_session_feed() consumes all the bytes it is given. */
static void conn_read(struct conn *c, uint64_t now)
{
  static uint8_t buf[64 * 1024];
  ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
  if (n > 0) {
    smtpout_session_feed(c->session, buf, (size_t)n, now);
    ack_if_idle(c);
  } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK &&
                        errno != EINTR))
    smtpout_session_feed_eof(c->session, now); /* closed, or reset */
}

/* After any call into the session: finish the connection when the session
 * is done, otherwise register what it wants and its new deadline. */
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
  if (events == 0) {
    /* Not done, yet waiting for nothing: cannot happen with a started
     * session; end it rather than leak it. */
    smtpout_session_abort(s, now_ms());
    conn_finish(L, c);
    return;
  }
  if (conn_watch(L, c, events) != 0) {
    smtpout_session_abort(s, now_ms());
    conn_finish(L, c);
    return;
  }
  heap_fix(L, c->heap_index);
}

/* One epoll event on a connection. */
static void conn_event(struct loop *L, struct conn *c, uint32_t ev)
{
  uint64_t now = now_ms();
  if (c->state == CONN_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
      err = errno;
    if (err != 0) {
      snprintf(c->error, sizeof(c->error), "connect: %s", strerror(err));
      L->t.connect_failed++;
      conn_finish(L, c);
      return;
    }
    L->t.connections++;
    if (conn_established(L, c, now) != 0) {
      conn_finish(L, c);
      return;
    }
    /* The server speaks first: nothing to write until the greeting. */
    conn_update(L, c);
    return;
  }
  if (ev & EPOLLIN)
    conn_read(c, now);
  else if (ev & (EPOLLERR | EPOLLHUP))
    /* An error while only writing is wanted: the connection is gone. */
    smtpout_session_feed_eof(c->session, now);
  /* Write right away rather than wait for EPOLLOUT: a reply usually lets
   * the session send its next commands, and the socket usually has room,
   * so this saves a loop iteration and two epoll_ctl calls per round
   * trip.  EPOLLOUT is only registered when the socket is full. */
  conn_flush(c, now);
  conn_update(L, c);
}

/* Deadlines reached: connect timeouts, and the sessions' own. */
static void run_timers(struct loop *L)
{
  uint64_t now = now_ms();
  while (L->nheap > 0 && conn_deadline(L->heap[0]) <= now) {
    struct conn *c = L->heap[0];
    if (c->state == CONN_CONNECTING) {
      if (c->error[0] == '\0')
        snprintf(c->error, sizeof(c->error), "connect: timed out");
      L->t.connect_failed++;
      conn_finish(L, c);
      continue;
    }
    /* A timed-out wait ends the session (recipients deferred); one that
     * only waited for QUIT's reply ends cleanly.  Either way the deadline
     * moves, so this loop ends. */
    smtpout_session_handle_expiry(c->session, now);
    conn_flush(c, now);
    conn_update(L, c);
  }
}

static int run(struct loop *L)
{
  struct epoll_event evs[256];
  while (L->nheap > 0) {
    int timeout = -1;
    uint64_t next = conn_deadline(L->heap[0]);
    if (next != SMTPOUT_NO_EXPIRY) {
      uint64_t now = now_ms();
      timeout = next <= now ? 0 : next - now > 60000 ? 60000
                                                     : (int)(next - now);
    }
    int n = epoll_wait(L->epfd, evs, 256, timeout);
    if (n < 0 && errno != EINTR) {
      perror("epoll_wait");
      return -1;
    }
    /* A connection finished by one event is freed at once; epoll never
     * reports it again because it was removed from the set, and each
     * conn appears at most once per epoll_wait batch. */
    for (int i = 0; i < n; i++)
      conn_event(L, evs[i].data.ptr, evs[i].events);
    run_timers(L);
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Setup                                                                */

static void usage(FILE *f)
{
  fputs("usage: eventloop --server HOST[:PORT] [--server HOST[:PORT] ...] "
        "--from ADDR\n"
        "                 --to ADDR [--to ADDR ...]\n"
        "                 [--sessions N] [--messages-per-session M] "
        "[--size BYTES]\n"
        "                 [--mx-name NAME] [--helo NAME] [--config FILE] "
        "[--ca-file FILE]\n"
        "                 [--starttls disable|optional|require] "
        "[--allow-invalid-certs]\n"
        "                 [--timeout MS] [--verbose]\n"
        "Delivers N x M messages over N concurrent SMTP sessions from one "
        "thread;\n"
        "what a connection cannot deliver and another address may goes to "
        "the next\n"
        "address of the servers, in order.\n",
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

/* "host", "host:port" or "[v6]:port". */
static int parse_server(const char *arg, struct server *sv)
{
  const char *colon;
  if (arg[0] == '[') {
    const char *rb = strchr(arg, ']');
    if (rb == NULL || (rb[1] != '\0' && rb[1] != ':'))
      return -1;
    sv->host = strndup(arg + 1, (size_t)(rb - arg - 1));
    colon = rb[1] == ':' ? rb + 1 : NULL;
  } else {
    colon = strchr(arg, ':');
    sv->host = strndup(arg, colon ? (size_t)(colon - arg) : strlen(arg));
  }
  if (sv->host == NULL || sv->host[0] == '\0')
    return -1;
  long port = colon ? parse_count(colon + 1, 1, 65535) : 25;
  if (port < 0)
    return -1;
  snprintf(sv->port, sizeof(sv->port), "%ld", port);
  return 0;
}

static void free_options(struct options *o)
{
  for (size_t i = 0; i < o->nservers; i++)
    free(o->servers[i].host);
  free(o->servers);
  free(o->to);
}

/* Every address of every server, in order, as one list: the addresses a
 * recipient a connection could not deliver moves on to.  `heads` keeps
 * each getaddrinfo() result, to free them one by one. */
static int resolve_servers(const struct options *o, struct addrinfo **list,
                           struct addrinfo **heads)
{
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICSERV};
  struct addrinfo *tail = NULL;
  *list = NULL;
  for (size_t i = 0; i < o->nservers; i++) {
    int gai = getaddrinfo(o->servers[i].host, o->servers[i].port, &hints,
                          &heads[i]);
    if (gai != 0) {
      fprintf(stderr, "eventloop: %s: %s\n", o->servers[i].host,
              gai_strerror(gai));
      heads[i] = NULL;
      return -1;
    }
    if (tail)
      tail->ai_next = heads[i];
    else
      *list = heads[i];
    for (tail = heads[i]; tail->ai_next; tail = tail->ai_next)
      ;
  }
  return 0;
}

/* Undoes the links resolve_servers() made, and frees each result. */
static void free_servers(const struct options *o, struct addrinfo **heads)
{
  for (size_t i = 0; i < o->nservers; i++) {
    struct addrinfo *a = heads[i];
    if (a == NULL)
      continue;
    while (a->ai_next && (i + 1 == o->nservers || a->ai_next != heads[i + 1]))
      a = a->ai_next;
    a->ai_next = NULL;
  }
  for (size_t i = 0; i < o->nservers; i++)
    if (heads[i])
      freeaddrinfo(heads[i]);
}

static int parse_options(int argc, char **argv, struct options *o)
{
  static const struct option longopts[] = {
    {"server", required_argument, NULL, 's'},
    {"from", required_argument, NULL, 'f'},
    {"to", required_argument, NULL, 't'},
    {"sessions", required_argument, NULL, 'n'},
    {"messages-per-session", required_argument, NULL, 'm'},
    {"size", required_argument, NULL, 'l'},
    {"mx-name", required_argument, NULL, 'x'},
    {"helo", required_argument, NULL, 'H'},
    {"config", required_argument, NULL, 'c'},
    {"ca-file", required_argument, NULL, 'a'},
    {"starttls", required_argument, NULL, 'S'},
    {"allow-invalid-certs", no_argument, NULL, 'I'},
    {"timeout", required_argument, NULL, 'T'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  memset(o, 0, sizeof(*o));
  o->sessions = 1;
  o->messages = 1;
  o->size = 1024;
  o->starttls = -1;
  o->to = calloc((size_t)argc, sizeof(*o->to));
  o->servers = calloc((size_t)argc, sizeof(*o->servers));
  if (o->to == NULL || o->servers == NULL)
    return -1;
  int ch;
  while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (ch) {
    case 's':
      if (parse_server(optarg, &o->servers[o->nservers++]) != 0)
        return -1;
      o->host = o->servers[0].host;
      break;
    case 'f': o->from = optarg; break;
    case 't': o->to[o->nto++] = optarg; break;
    case 'n': o->sessions = parse_count(optarg, 1, 1000000); break;
    case 'm': o->messages = parse_count(optarg, 1, 1000000); break;
    case 'l': o->size = parse_count(optarg, 0, 1L << 40); break;
    case 'x': o->mx_name = optarg; break;
    case 'H': o->helo = optarg; break;
    case 'c': o->config = optarg; break;
    case 'a': o->ca_file = optarg; break;
    case 'S':
      o->starttls = -2;
      for (int m = 0; m <= SMTPOUT_STARTTLS_REQUIRE; m++)
        if (strcmp(optarg, smtpout_starttls_name(m)) == 0)
          o->starttls = m;
      if (o->starttls == -2)
        return -1;
      break;
    case 'I': o->allow_invalid_certs = 1; break;
    case 'T': o->timeout = parse_count(optarg, 1, 24L * 3600 * 1000); break;
    case 'v': o->verbose = 1; break;
    case 'h': usage(stdout); exit(0);
    default: return -1;
    }
  }
  if (optind != argc || o->host == NULL || o->from == NULL || o->nto == 0 ||
      o->sessions < 0 || o->messages < 0 || o->size < 0 || o->timeout < 0)
    return -1;
  if (o->allow_invalid_certs && o->starttls < 0)
    o->starttls = SMTPOUT_STARTTLS_OPTIONAL;
  return 0;
}

/* Every connection needs a descriptor: raise the soft limit as far as the
 * hard one allows (1,000 sessions exceed the usual soft limit of 1,024
 * with stdio and epoll counted). */
static int raise_nofile(rlim_t need)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return -1;
  if (rl.rlim_cur >= need)
    return 0;
  rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need
                    ? need
                    : rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
    return -1;
  return rl.rlim_cur >= need ? 0 : -1;
}

/* The EHLO name: --helo, else none when the configuration has one (the
 * session uses it), else this machine's name.  The session never asks
 * the system: the host knows who it is.  A name the session refuses (not
 * a domain name) leaves its default, "localhost". */
static char *host_name(const struct options *o, const smtpout_config *cfg)
{
  char host[256];
  if (o->helo)
    return strdup(o->helo);
  if (smtpout_config_helo_name(cfg) != NULL ||
      gethostname(host, sizeof(host)) != 0)
    return NULL;
  host[sizeof(host) - 1] = '\0';
  return strdup(host);
}

/* Scans a body once, as read_body will hand it over, for what submit
 * needs: its size on the wire (the last filler line may be cut short, and
 * is sent with a CRLF) and its flags (none for this ASCII text). */
static int scan_message(struct message *m)
{
  smtpout_message_scan *scan;
  uint8_t buf[4096];
  int rv = smtpout_message_scan_new(&scan);
  for (m->off = 0; rv == 0 && m->off < m->size;) {
    size_t n = m->size - m->off < sizeof(buf) ? m->size - m->off
                                              : sizeof(buf);
    body_copy(m, buf, n);
    rv = smtpout_message_scan_update(scan, buf, n);
  }
  if (rv == 0)
    rv = smtpout_message_scan_end(scan, &m->wire_size, &m->flags);
  smtpout_message_scan_free(scan);
  m->off = 0;
  return rv;
}

/* Allocates the messages and their result slots, and fills the headers. */
static struct message *make_messages(const struct options *o)
{
  size_t count = (size_t)o->sessions * (size_t)o->messages;
  struct message *msgs = calloc(count, sizeof(*msgs));
  int *status = calloc(count * o->nto, sizeof(int));
  size_t *sent = calloc(count * o->nto, sizeof(size_t));
  if (msgs == NULL || status == NULL || sent == NULL) {
    free(msgs);
    free(status);
    free(sent);
    return NULL;
  }
  for (size_t i = 0; i < count; i++) {
    struct message *m = &msgs[i];
    m->session_no = (int)(i / (size_t)o->messages);
    m->message_no = (int)(i % (size_t)o->messages);
    m->status = status + i * o->nto;
    m->sent = sent + i * o->nto;
    /* The subject names the message, so a test can check that each one
     * arrived exactly once. */
    int n = snprintf(m->header, sizeof(m->header),
                     "From: <%s>\r\nSubject: eventloop session %d message "
                     "%d\r\nMessage-ID: <el.%d.%d@eventloop.invalid>\r\n\r\n",
                     o->from, m->session_no, m->message_no, m->session_no,
                     m->message_no);
    m->header_len = n < 0 ? 0
                    : (size_t)n < sizeof(m->header) ? (size_t)n
                                                    : sizeof(m->header) - 1;
    m->size = (size_t)o->size > m->header_len ? (size_t)o->size
                                              : m->header_len;
    if (scan_message(m) != 0) {
      free(msgs);
      free(status);
      free(sent);
      return NULL;
    }
  }
  return msgs;
}

int main(int argc, char **argv)
{
  struct options o;
  if (parse_options(argc, argv, &o) != 0) {
    usage(stderr);
    free_options(&o);
    return EX_USAGE_;
  }

  struct loop L = {.opt = &o};
  char err[4096] = "";
  int rv = o.config ? smtpout_config_load_file(&L.config, o.config, err,
                                               sizeof(err))
                    : smtpout_config_new(&L.config);
  if (rv != 0) {
    fprintf(stderr, "eventloop: %s\n%s", smtpout_strerror(rv), err);
    free_options(&o);
    return EX_CONFIG_;
  }

  struct addrinfo **heads = calloc(o.nservers, sizeof(*heads));
  if (heads == NULL || resolve_servers(&o, &L.server, heads) != 0) {
    if (heads)
      free_servers(&o, heads);
    free(heads);
    smtpout_config_unref(L.config);
    free_options(&o);
    return EX_UNAVAILABLE_;
  }

  struct message *msgs = make_messages(&o);
  L.heap = calloc((size_t)o.sessions, sizeof(*L.heap));
  L.rcpts = calloc(o.nto, sizeof(*L.rcpts));
  L.helo = host_name(&o, L.config);
  L.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (msgs == NULL || L.heap == NULL || L.rcpts == NULL || L.epfd < 0 ||
      smtpout_callbacks_new(&L.callbacks) != 0) {
    perror("eventloop: setup");
    return EX_OSERR_;
  }
  if (raise_nofile((rlim_t)o.sessions + 64) != 0)
    fprintf(stderr, "eventloop: warning: cannot raise the descriptor limit "
            "to %ld; some connects may fail\n", o.sessions + 64);
  smtpout_callbacks_set_read_body(L.callbacks, read_body);
  smtpout_callbacks_set_on_result(L.callbacks, on_result);

  uint64_t t0 = now_ms();
  for (long i = 0; i < o.sessions; i++)
    if (conn_open(&L, (int)i, msgs + i * o.messages, (size_t)o.messages,
                  0, L.server) != 0) {
      perror("eventloop: socket");
      return EX_OSERR_;
    }
  if (run(&L) != 0)
    return EX_OSERR_;
  double secs = (double)(now_ms() - t0) / 1000.0;

  long total = o.sessions * o.messages * (long)o.nto;
  printf("sessions %ld connections %ld connect-failed %ld tls %ld "
         "verified %ld fallbacks %ld next-address %ld\n",
         o.sessions, L.t.connections, L.t.connect_failed, L.t.tls,
         L.t.verified, L.t.fallbacks, L.t.next_address);
  printf("messages %ld recipients %ld delivered %ld deferred %ld "
         "bounced %ld\n",
         o.sessions * o.messages, total, L.t.delivered, L.t.deferred,
         L.t.bounced);
  printf("peak %ld concurrent sessions; elapsed %.3f s (%.0f messages/s)\n",
         L.t.peak, secs,
         secs > 0 ? (double)(o.sessions * o.messages) / secs : 0.0);

  smtpout_callbacks_free(L.callbacks);
  smtpout_config_unref(L.config);
  free_servers(&o, heads);
  free(heads);
  close(L.epfd);
  free(L.heap);
  free(L.rcpts);
  free(L.helo);
  free(msgs[0].status);
  free(msgs[0].sent);
  free(msgs);
  free_options(&o);
  if (L.t.deferred > 0)
    return EX_TEMPFAIL_;
  return L.t.bounced > 0 ? EX_UNAVAILABLE_ : 0;
}
