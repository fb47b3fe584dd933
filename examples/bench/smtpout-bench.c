/*
 * smtpout-bench — an SMTP load generator on the sans-I/O session API,
 * shaped like Postfix's smtp-source so that the two swap in one command
 * line (docs/tools.md, docs/performance.md).
 *
 *   smtpout-bench [-d] [-s SESSIONS] [-m MESSAGES] [-l LENGTH] [-f FROM]
 *                 [-t TO] [-r RECIPIENTS] [-M HOSTNAME] [-S SUBJECT] [-N]
 *                 [--starttls MODE] [--ca-file FILE] [--mx-name NAME]
 *                 [--allow-invalid-certs] [--resume] [--no-chunking]
 *                 [--idle[=fresh|used]] [-q] HOST[:PORT]
 *
 * As in smtp-source, -s runs that many sessions in parallel, -m is the
 * total number of messages across all of them, and each message travels on
 * a new connection unless -d keeps a session's connection for its next
 * message.  Everything runs in one thread around one epoll set; each
 * connection is one smtpout_session fed and drained by the loop below,
 * which is also the shortest complete example of an event-driven host.
 *
 * It prints messages/s, client CPU per message (getrusage), peak RSS and
 * memory per session, and exits 1 if any recipient was not accepted
 * (64 bad usage, 78 bad TLS settings, 71 a local system error).
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
#include <limits.h>
#include <malloc.h>
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

enum { EX_FAILED = 1, EX_USAGE_ = 64, EX_OSERR_ = 71, EX_CONFIG_ = 78 };

/* At most this many connections wait for their greeting at once.  Like
 * smtp-source, which connects one at a time, the bench paces new
 * connections: a burst of them costs the server more than it needs to (a
 * dropped SYN is a one-second retransmit; smtp-sink allocates and clears
 * large buffers per connection, and twenty of them at once fall out of the
 * cache).  Measured against smtp-sink at -s 20 without -d, on a loaded
 * machine: a window of 2-4 delivered about twice the messages per second of
 * a window of 64; against faultsrv it made no difference.  --idle, which
 * measures memory and not speed, opens its thousands of sessions faster
 * with a wide window. */
#define CONNECT_WINDOW 4
#define IDLE_CONNECT_WINDOW 64
static int max_connecting = CONNECT_WINDOW;

/* Options, as smtp-source names them. */
static struct {
  int sessions;
  long messages;
  long length;          /* -l: payload bytes; 0 = smtp-source's 4 lines */
  const char *from;
  const char *to;
  int rcpts;            /* -r */
  int numbered;         /* -N or -r: numbered recipients, as smtp-source */
  int reuse;            /* -d */
  const char *myhostname;
  const char *subject;
  const char *starttls; /* NULL: the library's default (optional) */
  const char *ca_file;
  const char *mx_name;
  int allow_invalid;
  int resume;           /* --resume: TLS session resumption */
  int no_chunking;      /* --no-chunking: DATA even where BDAT is offered */
  int idle;             /* --idle: connect, greet, measure, quit;
                           2: deliver one message first (--idle=used) */
  int quiet;
} opt = {.sessions = 1, .messages = 1, .rcpts = 1};

/* One of the -s parallel sessions: a chain of connections (one per message
 * without -d), each driven by its own smtpout_session. */
struct slot {
  int fd;
  uint32_t events;      /* the epoll interest registered for fd */
  smtpout_session *s;
  int connecting;       /* counted in g.connecting until its greeting */
  int ready;            /* --idle: greeted (and secured) */
  int dead;             /* --idle: the connection failed */
  int delivered;        /* --idle=used: its message is done */
  int tls_decided;
  /* The body being read: header block, then the shared payload. */
  size_t hdr_len, off;
  char *hdr;            /* HDR_MAX bytes, allocated with the first message
                           (idle sessions hold only the fields above) */
};

#define HDR_MAX 1400
/* The three numbers of the Message-Id ("%04x.%04x.%04x"). */
#define HDR_NUMBERS 14

static struct {
  struct sockaddr_storage addr;
  socklen_t addrlen;
  smtpout_config *config;
  smtpout_callbacks *cbs;
  int ep;
  struct slot *slots;
  const uint8_t *payload;
  size_t payload_len;
  char rcpt_local[256], rcpt_domain[256];
  char date[64];
  unsigned pid;
  /* The header around the Message-Id numbers, for a fixed recipient. */
  char hdr_prefix[HDR_MAX], hdr_suffix[400], rcpt_fixed[540];
  size_t hdr_prefix_len, hdr_suffix_len;
  long to_start;        /* messages not yet submitted */
  long rcpt_counter;    /* -N / -r numbering, global as in smtp-source */
  long msgs_done, msgs_ok;
  long rcpts_ok, rcpts_failed;
  long connections;
  long tls_sessions, tls_resumed;
  int active;           /* slots with a connection */
  int connecting;
  int need_fill;        /* a slot waits for room in the connect window */
  int ready, failed;    /* --idle: slots greeted, slots that failed */
  long reported;        /* failures printed so far */
  int rv;
} g;

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* A line of /proc/self/status in KiB: the resident set size now
 * ("VmRSS") or its peak ("VmHWM", which unlike ru_maxrss is current). */
static long status_kib(const char *key)
{
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  size_t kl = strlen(key);
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f))
    if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
      kib = strtol(line + kl + 1, NULL, 10);
      break;
    }
  fclose(f);
  return kib;
}

static size_t heap_bytes(void)
{
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

/* ------------------------------------------------------------------ */
/* The message, as smtp-source writes it                                */

/* smtp-source's -l payload: LENGTH bytes of 'X' in 80-byte lines, each
 * starting with a digit and ending in CRLF, the last one without; without
 * -l, four "La de da" lines.  The library adds the CRLF and the dot. */
static int make_payload(void)
{
  static const char la[] = "La de da de da 1.\r\nLa de da de da 2.\r\n"
                           "La de da de da 3.\r\nLa de da de da 4.\r\n";
  if (opt.length == 0) {
    g.payload = (const uint8_t *)la;
    g.payload_len = sizeof(la) - 1;
    return 0;
  }
  uint8_t *p = malloc((size_t)opt.length);
  if (p == NULL)
    return -1;
  memset(p, 'X', (size_t)opt.length);
  for (long i = 80; i < opt.length; i += 80) {
    p[i - 80] = (uint8_t)"0123456789"[(i / 80) % 10];
    p[i - 2] = '\r';
    p[i - 1] = '\n';
  }
  g.payload = p;
  g.payload_len = (size_t)opt.length;
  return 0;
}

/* The recipient of number n (or the fixed one). */
static void rcpt_name(char *out, size_t len, long n)
{
  if (opt.numbered)
    snprintf(out, len, "%s%ld%s", g.rcpt_local, n, g.rcpt_domain);
  else
    snprintf(out, len, "%s%s", g.rcpt_local, g.rcpt_domain);
}

/* Writes v (at most 0xffff) as four hex digits, as "%04x" would. */
static char *hex4(char *p, unsigned v)
{
  static const char x[] = "0123456789abcdef";
  for (int sh = 12; sh >= 0; sh -= 4)
    *p++ = x[(v >> sh) & 15];
  return p;
}

/* Queues the next message on the slot's session.  The header is
 * smtp-source's; its fixed parts are formatted once (g.hdr_prefix,
 * g.hdr_suffix), only the numbers per message: this is the host's share of
 * the CPU per message the bench reports. */
static int submit_next(struct slot *sl)
{
  char names[64][540];
  const char *rcpts[64];
  if (sl->hdr == NULL && (sl->hdr = malloc(HDR_MAX)) == NULL) {
    fprintf(stderr, "smtpout-bench: out of memory\n");
    exit(EX_OSERR_);
  }
  char *p = sl->hdr;
  if (opt.numbered) {
    long first = g.rcpt_counter;
    for (int i = 0; i < opt.rcpts; i++) {
      rcpt_name(names[i], sizeof(names[i]), g.rcpt_counter++);
      rcpts[i] = names[i];
    }
    char to[540];
    rcpt_name(to, sizeof(to), first);
    int n = snprintf(p, HDR_MAX, "From: <%s>\r\nTo: <%s>\r\nDate: %s\r\n"
                     "Message-Id: <", opt.from, to, g.date);
    p += n > 0 && n < HDR_MAX - HDR_NUMBERS ? n : 0;
  } else {
    rcpts[0] = g.rcpt_fixed;
    memcpy(p, g.hdr_prefix, g.hdr_prefix_len);
    p += g.hdr_prefix_len;
  }
  p = hex4(p, g.pid & 0xffff);
  *p++ = '.';
  p = hex4(p, (unsigned)sl->fd & 0xffff);
  *p++ = '.';
  p = hex4(p, (unsigned)g.to_start & 0xffff);
  memcpy(p, g.hdr_suffix, g.hdr_suffix_len);
  p += g.hdr_suffix_len;
  sl->hdr_len = (size_t)(p - sl->hdr);
  sl->off = 0;
  g.to_start--;
  int id = smtpout_session_submit(sl->s, opt.from, rcpts, (size_t)opt.rcpts,
                                  sl->hdr_len + g.payload_len, 0);
  if (id < 0) {
    fprintf(stderr, "smtpout-bench: submit: %s\n", smtpout_strerror(id));
    g.rcpts_failed += opt.rcpts;
    g.msgs_done++;
    g.rv = EX_FAILED;
    return id;
  }
  /* Saying so before the data goes out lets QUIT travel with the last
   * end of data (PIPELINING). */
  if (g.to_start <= 0 && !opt.idle)
    smtpout_session_quit(sl->s);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Callbacks                                                            */

static int read_body(smtpout_session *s, int id, uint8_t *buf, size_t len,
                     size_t *nread, int *eof, void *ud)
{
  struct slot *sl = ud;
  size_t n = 0;
  (void)s;
  (void)id;
  if (sl->off < sl->hdr_len) {
    size_t k = sl->hdr_len - sl->off;
    if (k > len)
      k = len;
    memcpy(buf, sl->hdr + sl->off, k);
    sl->off += k;
    n = k;
  }
  if (n < len && sl->off >= sl->hdr_len) {
    size_t p = sl->off - sl->hdr_len;
    size_t k = g.payload_len - p;
    if (k > len - n)
      k = len - n;
    memcpy(buf + n, g.payload + p, k);
    sl->off += k;
    n += k;
  }
  *nread = n;
  *eof = sl->off == sl->hdr_len + g.payload_len;
  return 0;
}

static void on_result(smtpout_session *s, const smtpout_result *r, void *ud)
{
  (void)s;
  (void)ud;
  if (smtpout_result_status(r) == SMTPOUT_STATUS_DELIVERED) {
    g.rcpts_ok++;
    return;
  }
  g.rcpts_failed++;
  g.rv = EX_FAILED;
  if (g.reported++ < 5)
    fprintf(stderr, "smtpout-bench: %s: %s %d %s %s\n",
            smtpout_result_recipient(r),
            smtpout_status_name(smtpout_result_status(r)),
            smtpout_result_code(r), smtpout_result_enhanced(r),
            smtpout_result_text(r));
}

static void on_message_done(smtpout_session *s, int id, void *ud)
{
  struct slot *sl = ud;
  (void)id;
  g.msgs_done++;
  sl->delivered = 1;
  /* --idle=used measures what an idle session costs: its host holds
   * nothing for a message that is done. */
  if (opt.idle) {
    free(sl->hdr);
    sl->hdr = NULL;
  }
  /* -d: the next message rides on this connection (smtp-source sends the
   * next MAIL FROM right away); otherwise QUIT was asked for already. */
  if (opt.reuse) {
    if (g.to_start > 0)
      submit_next(sl);
    else
      smtpout_session_quit(s);
  }
}

static void on_tls(smtpout_session *s, const smtpout_tls_info *info,
                   void *ud)
{
  struct slot *sl = ud;
  (void)s;
  sl->tls_decided = 1;
  if (smtpout_tls_info_used(info)) {
    g.tls_sessions++;
    g.tls_resumed += smtpout_tls_info_resumed(info);
  }
  if (opt.starttls && strcmp(opt.starttls, "disable") != 0 &&
      !smtpout_tls_info_used(info) && g.reported++ < 5)
    fprintf(stderr, "smtpout-bench: TLS %s\n",
            smtpout_tls_outcome_name(smtpout_tls_info_outcome(info)));
}

/* ------------------------------------------------------------------ */
/* The event loop                                                       */

static void set_events(struct slot *sl, uint32_t ev)
{
  if (ev == sl->events)
    return;
  struct epoll_event e = {.events = ev, .data.ptr = sl};
  epoll_ctl(g.ep, EPOLL_CTL_MOD, sl->fd, &e);
  sl->events = ev;
}

static void slot_next(struct slot *sl, uint64_t now);

/* Opens a connection and starts its session.  The session is told it is
 * connected right away: it only waits for the greeting, which cannot come
 * before the TCP handshake completes, and a failed connect shows as a read
 * error, so no separate "connected" event (and epoll_ctl) is needed. */
static int slot_connect(struct slot *sl, uint64_t now)
{
  int fd = socket(g.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  0);
  if (fd < 0) {
    perror("smtpout-bench: socket");
    return -1;
  }
  /* As smtp-source: close with a reset, so that tens of thousands of
   * short connections leave no TIME_WAIT behind. */
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  /* Each peek hands over every byte the session has queued, so Nagle has
   * nothing left to merge; it only holds TLS records back (measured: half
   * the STARTTLS throughput without this, no change in plaintext). */
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, (struct sockaddr *)&g.addr, g.addrlen) != 0 &&
      errno != EINPROGRESS) {
    perror("smtpout-bench: connect");
    close(fd);
    return -1;
  }
  int rv = smtpout_session_new(&sl->s, opt.mx_name, g.config, g.cbs, sl);
  if (rv == 0 && opt.resume)
    rv = smtpout_session_set_tls_resumption(sl->s, 1);
  if (rv == 0 && opt.no_chunking)
    rv = smtpout_session_set_chunking(sl->s, 0);
  if (rv != 0) {
    fprintf(stderr, "smtpout-bench: session: %s\n", smtpout_strerror(rv));
    close(fd);
    return -1;
  }
  sl->fd = fd;
  sl->events = EPOLLIN;
  sl->tls_decided = 0;
  sl->ready = 0;
  struct epoll_event e = {.events = EPOLLIN, .data.ptr = sl};
  epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &e);
  sl->connecting = 1;
  g.connecting++;
  g.active++;
  g.connections++;
  smtpout_session_start(sl->s, now);
  return 0;
}

static void slot_close(struct slot *sl)
{
  if (sl->connecting) {
    sl->connecting = 0;
    g.connecting--;
  }
  if (opt.idle && !sl->ready) {
    sl->dead = 1;
    g.failed++;
    g.rv = EX_FAILED;
  }
  close(sl->fd); /* also leaves the epoll set */
  smtpout_session_free(sl->s);
  sl->s = NULL;
  sl->fd = -1;
  g.active--;
}

/* Writes what the session has to say until it has nothing or the socket
 * is full; then closes a finished connection. */
static void slot_flush(struct slot *sl, uint64_t now)
{
  uint32_t ev = EPOLLIN;
  while (smtpout_session_want_write(sl->s)) {
    const uint8_t *p;
    size_t len;
    smtpout_session_peek_output(sl->s, &p, &len, now);
    if (len == 0)
      break;
    ssize_t n = send(sl->fd, p, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        ev |= EPOLLOUT;
        break;
      }
      smtpout_session_feed_eof(sl->s, now);
      break;
    }
    smtpout_session_consume_output(sl->s, (size_t)n, now);
    if ((size_t)n < len) {
      ev |= EPOLLOUT;
      break;
    }
  }
  if (smtpout_session_is_done(sl->s)) {
    if (smtpout_session_close_reason(sl->s) != SMTPOUT_CLOSE_NONE &&
        g.reported++ < 5)
      fprintf(stderr, "smtpout-bench: connection ended: %s\n",
              smtpout_session_close_text(sl->s));
    slot_close(sl);
    slot_next(sl, now);
    return;
  }
  set_events(sl, ev);
}

/* Acknowledges at once a read that left the session with nothing to send
 * (docs/event-loop.md): without it Postfix's reply to the post-TLS EHLO
 * waits, behind its unacknowledged session tickets, for the kernel's
 * delayed ACK (40 ms a message). */
static void ack_if_idle(struct slot *sl)
{
  if (smtpout_session_want_write(sl->s) || smtpout_session_is_done(sl->s))
    return;
  int one = 1;
  setsockopt(sl->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

static void slot_read(struct slot *sl, uint64_t now)
{
  static uint8_t buf[65536];
  ssize_t n = recv(sl->fd, buf, sizeof(buf), 0);
  if (n > 0) {
    if (sl->connecting) {
      sl->connecting = 0;
      g.connecting--;
    }
    smtpout_session_feed(sl->s, buf, (size_t)n, now);
    ack_if_idle(sl);
  } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK &&
                        errno != EINTR)) {
    if (n < 0 && g.reported++ < 5)
      fprintf(stderr, "smtpout-bench: recv: %s\n", strerror(errno));
    smtpout_session_feed_eof(sl->s, now);
  }
  if (opt.idle && !sl->ready && sl->tls_decided &&
      smtpout_session_capabilities(sl->s) != 0 &&
      !smtpout_session_want_write(sl->s) &&
      (opt.idle == 1 || sl->delivered)) {
    sl->ready = 1;
    g.ready++;
  }
}

/* Starts the slot's next message: on its open connection (-d), or on a
 * new one. */
static void slot_next(struct slot *sl, uint64_t now)
{
  if (opt.idle || g.to_start <= 0)
    return;
  if (sl->s == NULL) {
    if (g.connecting >= max_connecting) {
      g.need_fill = 1; /* picked up once a greeting arrives */
      return;
    }
    if (slot_connect(sl, now) != 0) {
      g.rcpts_failed += opt.rcpts;
      g.msgs_done++;
      g.to_start--;
      g.rv = EX_FAILED;
      return;
    }
  }
  if (submit_next(sl) == 0 && !opt.reuse)
    smtpout_session_quit(sl->s);
}

/* Connects the slots that wait for a connection, while the connect window
 * has room. */
static void fill_slots(uint64_t now)
{
  if (!g.need_fill)
    return;
  g.need_fill = 0;
  for (int i = 0; i < opt.sessions; i++) {
    struct slot *sl = &g.slots[i];
    if (sl->s != NULL || sl->dead || (opt.idle && sl->ready))
      continue;
    if (!opt.idle && g.to_start <= 0)
      break;
    if (g.connecting >= max_connecting) {
      g.need_fill = 1;
      break;
    }
    if (opt.idle) {
      if (slot_connect(sl, now) != 0) {
        sl->dead = 1;
        g.failed++;
        g.rv = EX_OSERR_;
      } else if (opt.idle == 2) {
        submit_next(sl);
      }
    } else {
      slot_next(sl, now);
    }
  }
}

/* Timeouts are minutes long: checking every session once a second is
 * plenty, and keeps the loop free of a timer structure. */
static void check_expiries(uint64_t now)
{
  for (int i = 0; i < opt.sessions; i++) {
    struct slot *sl = &g.slots[i];
    if (sl->s && smtpout_session_expiry(sl->s) <= now) {
      smtpout_session_handle_expiry(sl->s, now);
      slot_flush(sl, now);
    }
  }
}

static void run_loop(int (*finished)(void))
{
  struct epoll_event evs[256];
  uint64_t last_check = now_ms();
  while (!finished()) {
    int n = epoll_wait(g.ep, evs, 256, 1000);
    uint64_t now = now_ms();
    for (int i = 0; i < n; i++) {
      struct slot *sl = evs[i].data.ptr;
      if (sl->s == NULL)
        continue; /* closed earlier in this batch */
      if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        slot_read(sl, now);
      slot_flush(sl, now);
    }
    if (g.need_fill && g.connecting < max_connecting)
      fill_slots(now);
    if (now - last_check >= 1000) {
      check_expiries(now);
      last_check = now;
    }
  }
}

static int all_done(void) { return g.active == 0 && g.to_start <= 0; }
static int all_ready(void) { return g.ready + g.failed >= opt.sessions; }

/* ------------------------------------------------------------------ */
/* Setup                                                                */

static int parse_target(const char *arg)
{
  char host[512];
  const char *port = "25";
  if (strncmp(arg, "inet:", 5) == 0)
    arg += 5;
  if (arg[0] == '[') {
    const char *e = strchr(arg, ']');
    if (e == NULL || (size_t)(e - arg - 1) >= sizeof(host))
      return -1;
    memcpy(host, arg + 1, (size_t)(e - arg - 1));
    host[e - arg - 1] = '\0';
    if (e[1] == ':')
      port = e + 2;
    else if (e[1] != '\0')
      return -1;
  } else {
    const char *c = strrchr(arg, ':');
    size_t hl = c ? (size_t)(c - arg) : strlen(arg);
    if (hl >= sizeof(host))
      return -1;
    memcpy(host, arg, hl);
    host[hl] = '\0';
    if (c)
      port = c + 1;
  }
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
  int rv = getaddrinfo(host, port, &hints, &res);
  if (rv != 0) {
    fprintf(stderr, "smtpout-bench: %s: %s\n", arg, gai_strerror(rv));
    return -1;
  }
  memcpy(&g.addr, res->ai_addr, res->ai_addrlen);
  g.addrlen = res->ai_addrlen;
  freeaddrinfo(res);
  if (opt.mx_name == NULL) {
    static char mx[512];
    snprintf(mx, sizeof(mx), "%s", host);
    opt.mx_name = mx;
  }
  return 0;
}

/* The configuration the options describe, as INI text: the policy is
 * resolved by the library for every message, as in a real MTA. */
static int make_config(void)
{
  char ini[4096], ca[PATH_MAX], err[2048];
  size_t n = (size_t)snprintf(ini, sizeof(ini),
                              "[queue.outbound]\nhostname = %s\n"
                              "[queue.outbound.tls]\n",
                              opt.myhostname);
  if (opt.starttls)
    n += (size_t)snprintf(ini + n, sizeof(ini) - n, "starttls = %s\n",
                          opt.starttls);
  if (opt.allow_invalid)
    n += (size_t)snprintf(ini + n, sizeof(ini) - n,
                          "allow-invalid-certs = true\n");
  if (opt.ca_file) {
    if (realpath(opt.ca_file, ca) == NULL) {
      fprintf(stderr, "smtpout-bench: %s: %s\n", opt.ca_file,
              strerror(errno));
      return -1;
    }
    n += (size_t)snprintf(ini + n, sizeof(ini) - n, "ca-file = %s\n", ca);
  }
  if (n >= sizeof(ini))
    return -1;
  if (smtpout_config_load_string(&g.config, ini, "smtpout-bench", err,
                                 sizeof(err)) != 0) {
    fprintf(stderr, "smtpout-bench: %s", err);
    return -1;
  }
  return 0;
}

static void usage(FILE *f)
{
  fputs(
      "usage: smtpout-bench [-d] [-s sessions] [-m messages] [-l length] "
      "[-f from] [-t to]\n"
      "                     [-r recipients] [-M myhostname] [-S subject] "
      "[-N] [-q]\n"
      "                     [--starttls disable|optional|require] "
      "[--ca-file FILE]\n"
      "                     [--mx-name NAME] [--allow-invalid-certs] "
      "[--resume]\n"
      "                     [--no-chunking] [--idle[=fresh|used]] "
      "HOST[:PORT]\n"
      "Sends -m messages over -s parallel sessions, a new connection per "
      "message\nunless -d, as Postfix's smtp-source does, and reports "
      "messages/s, CPU per\nmessage and memory per session.  --idle opens "
      "-s sessions, waits until every\none is greeted (and secured), "
      "measures memory, and quits;\n--idle=used first "
      "delivers one message on each.\n",
      f);
}

static long parse_num(const char *s, const char *what)
{
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v <= 0) {
    fprintf(stderr, "smtpout-bench: bad %s: %s\n", what, s);
    exit(EX_USAGE_);
  }
  return v;
}

int main(int argc, char **argv)
{
  enum {
    O_STARTTLS = 256, O_CA, O_MX, O_ALLOW, O_RESUME, O_NO_CHUNKING, O_IDLE,
    O_HELP
  };
  static const struct option lopts[] = {
    {"starttls", required_argument, NULL, O_STARTTLS},
    {"ca-file", required_argument, NULL, O_CA},
    {"mx-name", required_argument, NULL, O_MX},
    {"allow-invalid-certs", no_argument, NULL, O_ALLOW},
    {"resume", no_argument, NULL, O_RESUME},
    {"no-chunking", no_argument, NULL, O_NO_CHUNKING},
    {"idle", optional_argument, NULL, O_IDLE},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
  };
  int c;
  while ((c = getopt_long(argc, argv, "ds:m:l:f:t:r:M:S:Nq", lopts, NULL)) !=
         -1) {
    switch (c) {
    case 'd': opt.reuse = 1; break;
    case 's': opt.sessions = (int)parse_num(optarg, "session count"); break;
    case 'm': opt.messages = parse_num(optarg, "message count"); break;
    case 'l': opt.length = parse_num(optarg, "message length"); break;
    case 'f': opt.from = optarg; break;
    case 't': opt.to = optarg; break;
    case 'r':
      opt.rcpts = (int)parse_num(optarg, "recipient count");
      opt.numbered = 1;
      break;
    case 'M': opt.myhostname = optarg; break;
    case 'S': opt.subject = optarg; break;
    case 'N': opt.numbered = 1; break;
    case 'q': opt.quiet = 1; break;
    case O_STARTTLS: opt.starttls = optarg; break;
    case O_CA: opt.ca_file = optarg; break;
    case O_MX: opt.mx_name = optarg; break;
    case O_ALLOW: opt.allow_invalid = 1; break;
    case O_RESUME: opt.resume = 1; break;
    case O_NO_CHUNKING: opt.no_chunking = 1; break;
    case O_IDLE:
      if (optarg && strcmp(optarg, "used") == 0) {
        opt.idle = 2;
      } else if (optarg && strcmp(optarg, "fresh") != 0) {
        usage(stderr);
        return EX_USAGE_;
      } else {
        opt.idle = 1;
      }
      break;
    case O_HELP: usage(stdout); return 0;
    default: usage(stderr); return EX_USAGE_;
    }
  }
  if (argc - optind != 1 || opt.rcpts > 64 || opt.sessions > 1000000) {
    usage(stderr);
    return EX_USAGE_;
  }
  if (opt.starttls && strcmp(opt.starttls, "disable") && strcmp(opt.starttls, "optional") &&
      strcmp(opt.starttls, "require")) {
    fprintf(stderr, "smtpout-bench: --starttls: disable, optional or "
                    "require\n");
    return EX_USAGE_;
  }

  static char host[256], defaddr[300];
  if (opt.myhostname == NULL) {
    if (gethostname(host, sizeof(host)) != 0)
      snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    opt.myhostname = host;
  }
  snprintf(defaddr, sizeof(defaddr), "foo@%s", opt.myhostname);
  if (opt.from == NULL)
    opt.from = defaddr;
  if (opt.to == NULL)
    opt.to = defaddr;
  const char *at = strrchr(opt.to, '@');
  size_t ll = at ? (size_t)(at - opt.to) : strlen(opt.to);
  if (ll >= sizeof(g.rcpt_local) || strlen(opt.to + ll) >= sizeof(g.rcpt_domain))
    return EX_USAGE_;
  memcpy(g.rcpt_local, opt.to, ll);
  snprintf(g.rcpt_domain, sizeof(g.rcpt_domain), "%s", opt.to + ll);
  g.pid = (unsigned)getpid();
  time_t t = time(NULL);
  struct tm tm;
  strftime(g.date, sizeof(g.date), "%a, %d %b %Y %H:%M:%S %z",
           localtime_r(&t, &tm));

  rcpt_name(g.rcpt_fixed, sizeof(g.rcpt_fixed), 0);
  int np = snprintf(g.hdr_prefix, sizeof(g.hdr_prefix),
                    "From: <%s>\r\nTo: <%s>\r\nDate: %s\r\nMessage-Id: <",
                    opt.from, g.rcpt_fixed, g.date);
  int ns = snprintf(g.hdr_suffix, sizeof(g.hdr_suffix), "@%s>\r\n%s%s%s\r\n",
                    opt.myhostname, opt.subject ? "Subject: " : "",
                    opt.subject ? opt.subject : "", opt.subject ? "\r\n" : "");
  /* Room for the longest numbered recipient too. */
  if (np < 0 || ns < 0 || (size_t)ns >= sizeof(g.hdr_suffix) ||
      (size_t)np + 40 + HDR_NUMBERS + (size_t)ns >= HDR_MAX) {
    fprintf(stderr, "smtpout-bench: -f, -t, -M or -S too long\n");
    return EX_USAGE_;
  }
  g.hdr_prefix_len = (size_t)np;
  g.hdr_suffix_len = (size_t)ns;

  if (parse_target(argv[optind]) != 0)
    return EX_USAGE_;
  if (make_config() != 0)
    return EX_CONFIG_;
  if (make_payload() != 0)
    return EX_OSERR_;
  /* Each connection needs a descriptor: raise the soft limit as far as
   * the hard one allows. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  smtpout_callbacks_new(&g.cbs);
  smtpout_callbacks_set_read_body(g.cbs, read_body);
  smtpout_callbacks_set_on_result(g.cbs, on_result);
  smtpout_callbacks_set_on_message_done(g.cbs, on_message_done);
  smtpout_callbacks_set_on_tls(g.cbs, on_tls);
  g.ep = epoll_create1(EPOLL_CLOEXEC);
  g.slots = calloc((size_t)opt.sessions, sizeof(*g.slots));
  if (g.ep < 0 || g.slots == NULL || g.cbs == NULL)
    return EX_OSERR_;
  for (int i = 0; i < opt.sessions; i++)
    g.slots[i].fd = -1;
  g.to_start = opt.idle == 1 ? 0 : opt.idle == 2 ? opt.sessions : opt.messages;

  long rss0 = status_kib("VmRSS");
  size_t heap0 = heap_bytes();
  double cpu0 = cpu_s(), t0 = now_s();

  if (opt.idle)
    max_connecting = IDLE_CONNECT_WINDOW;
  g.need_fill = 1;
  if (opt.idle) {
    fill_slots(now_ms());
    run_loop(all_ready);
    long rss1 = status_kib("VmRSS");
    size_t heap1 = heap_bytes();
    double secs = now_s() - t0;
    printf("idle sessions: %d (%s, %s) ready in %.2f s\n", g.ready,
           opt.starttls ? opt.starttls : "optional",
           opt.idle == 2 ? "after one message each" : "fresh", secs);
    printf("memory per idle session: %.0f bytes RSS, %.0f bytes heap "
           "(RSS %ld -> %ld KiB)\n",
           (double)(rss1 - rss0) * 1024.0 / (g.ready ? g.ready : 1),
           (double)(heap1 - heap0) / (g.ready ? g.ready : 1), rss0, rss1);
    printf("RESULT idle_sessions=%d rss_per_session=%.0f "
           "heap_per_session=%.0f\n",
           g.ready, (double)(rss1 - rss0) * 1024.0 / (g.ready ? g.ready : 1),
           (double)(heap1 - heap0) / (g.ready ? g.ready : 1));
    for (int i = 0; i < opt.sessions; i++)
      if (g.slots[i].s)
        smtpout_session_quit(g.slots[i].s);
    for (int i = 0; i < opt.sessions; i++)
      if (g.slots[i].s)
        slot_flush(&g.slots[i], now_ms());
    run_loop(all_done);
    if (g.ready < opt.sessions)
      g.rv = g.rv ? g.rv : EX_FAILED;
  } else {
    fill_slots(now_ms());
    run_loop(all_done);
    double secs = now_s() - t0;
    double cpu = cpu_s() - cpu0;
    long hwm = status_kib("VmHWM");
    long msgs = g.msgs_done;
    if (!opt.quiet) {
      printf("%ld messages (%ld recipients accepted, %ld not) over %ld "
             "connections in %.3f s\n",
             msgs, g.rcpts_ok, g.rcpts_failed, g.connections, secs);
      printf("%.0f messages/s, client CPU %.1f us per message "
             "(%.3f s), peak RSS %ld KiB, %.0f bytes per session\n",
             msgs / secs, cpu * 1e6 / (msgs ? msgs : 1), cpu, hwm,
             (double)(hwm - rss0) * 1024.0 / opt.sessions);
      if (g.tls_sessions)
        printf("%ld TLS sessions, %ld resumed\n", g.tls_sessions,
               g.tls_resumed);
    }
    printf("RESULT messages=%ld ok_rcpts=%ld failed_rcpts=%ld wall=%.4f "
           "mps=%.1f cpu_us_per_msg=%.2f maxrss_kib=%ld tls=%ld "
           "resumed=%ld\n",
           msgs, g.rcpts_ok, g.rcpts_failed, secs, msgs / secs,
           cpu * 1e6 / (msgs ? msgs : 1), hwm, g.tls_sessions,
           g.tls_resumed);
    if (g.rcpts_ok != opt.messages * opt.rcpts)
      g.rv = g.rv ? g.rv : EX_FAILED;
  }
  close(g.ep);
  for (int i = 0; i < opt.sessions; i++)
    free(g.slots[i].hdr);
  free(g.slots);
  smtpout_callbacks_free(g.cbs);
  smtpout_config_unref(g.config);
  return g.rv;
}
