/*
 * delaylink — a point-to-point link between two network namespaces that
 * delays every packet, for the latency lab (tests/bench/latency-lab.sh).
 *
 *   delaylink [-d MS] NETNS_A IFNAME_A NETNS_B IFNAME_B
 *
 * The kernel here has no netem qdisc, so the delay is done in user space:
 * delaylink creates a TUN device IFNAME_A in the named namespace NETNS_A
 * (ip netns add) and IFNAME_B in NETNS_B, prints "READY" once both exist,
 * and forwards every IP packet read from one to the other exactly MS
 * milliseconds later (default 10: 20 ms round trip), in order, until it
 * is killed; the devices go with it.  Addresses and routes are the
 * caller's (ip -n NETNS ...).  Each direction holds up to QUEUE_SLOTS
 * packets in flight; beyond that a packet is dropped, as a full router
 * queue would.  The link has no bandwidth limit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_SLOTS 4096
#define SLOT_BYTES 2048 /* more than the TUN device's MTU (1500) */

struct packet {
  uint64_t due_ns;
  size_t len;
  uint8_t data[SLOT_BYTES];
};

/* The packets in flight in one direction, oldest first: with one fixed
 * delay, the order they arrive in is the order they are due in. */
struct queue {
  struct packet *slots;
  size_t head, count;
  unsigned long dropped;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
  (void)sig;
  stop = 1;
}

static uint64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Creates TUN device `name` inside the named network namespace and
 * returns its descriptor (non-blocking), or -1.  The device belongs to
 * the namespace the process is in when it is created; the descriptor
 * keeps working from anywhere. */
static int tun_in_netns(const char *netns, const char *name, int home)
{
  char path[256];
  snprintf(path, sizeof(path), "/var/run/netns/%s", netns);
  int ns = open(path, O_RDONLY | O_CLOEXEC);
  if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
    fprintf(stderr, "delaylink: namespace %s: %s\n", netns, strerror(errno));
    if (ns >= 0)
      close(ns);
    return -1;
  }
  close(ns);
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
  if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) != 0) {
    fprintf(stderr, "delaylink: TUN device %s in %s: %s\n", name, netns,
            strerror(errno));
    if (fd >= 0)
      close(fd);
    fd = -1;
  }
  if (setns(home, CLONE_NEWNET) != 0) {
    perror("delaylink: back to the original namespace");
    if (fd >= 0)
      close(fd);
    return -1;
  }
  return fd;
}

/* Reads every packet waiting on `fd` into `q`, due `delay` from now. */
static void take(int fd, struct queue *q, uint64_t delay)
{
  for (;;) {
    struct packet *p = &q->slots[(q->head + q->count) % QUEUE_SLOTS];
    uint8_t scratch[SLOT_BYTES];
    int full = q->count == QUEUE_SLOTS;
    ssize_t n = read(fd, full ? scratch : p->data, SLOT_BYTES);
    if (n <= 0)
      return; /* EAGAIN: nothing more for now */
    if (full) {
      q->dropped++;
      continue;
    }
    p->len = (size_t)n;
    p->due_ns = now_ns() + delay;
    q->count++;
  }
}

/* Writes the packets of `q` that are due to `fd`. */
static void deliver(int fd, struct queue *q, uint64_t now)
{
  while (q->count > 0 && q->slots[q->head].due_ns <= now) {
    struct packet *p = &q->slots[q->head];
    /* A TUN write takes the whole packet or fails: a failure (the
     * device going down) loses it, as a link would. */
    if (write(fd, p->data, p->len) < 0 && errno != EAGAIN)
      q->dropped++;
    q->head = (q->head + 1) % QUEUE_SLOTS;
    q->count--;
  }
}

static void usage(void)
{
  fprintf(stderr,
          "usage: delaylink [-d MS] NETNS_A IFNAME_A NETNS_B IFNAME_B\n");
  exit(64);
}

int main(int argc, char **argv)
{
  long delay_ms = 10;
  int c;
  while ((c = getopt(argc, argv, "d:")) != -1) {
    if (c != 'd')
      usage();
    char *end;
    delay_ms = strtol(optarg, &end, 10);
    if (*end != '\0' || delay_ms < 0 || delay_ms > 10000)
      usage();
  }
  if (argc - optind != 4)
    usage();

  /* Wake-ups on time: the default timer slack (50 us) is noise next to
   * 10 ms, but costs nothing to remove. */
  prctl(PR_SET_TIMERSLACK, 1UL);
  int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) {
    perror("delaylink: /proc/self/ns/net");
    return 71;
  }
  int fd[2];
  fd[0] = tun_in_netns(argv[optind], argv[optind + 1], home);
  fd[1] = fd[0] < 0 ? -1 : tun_in_netns(argv[optind + 2], argv[optind + 3],
                                          home);
  if (fd[0] < 0 || fd[1] < 0)
    return 71;
  struct queue q[2]; /* q[i]: read from fd[i], written to fd[1 - i] */
  for (int i = 0; i < 2; i++) {
    q[i].slots = calloc(QUEUE_SLOTS, sizeof(struct packet));
    q[i].head = q[i].count = q[i].dropped = 0;
    if (q[i].slots == NULL) {
      perror("delaylink");
      return 71;
    }
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  printf("READY\n");
  fflush(stdout);

  uint64_t delay = (uint64_t)delay_ms * 1000000u;
  while (!stop) {
    uint64_t now = now_ns();
    deliver(fd[1], &q[0], now);
    deliver(fd[0], &q[1], now);
    /* Sleep until a packet arrives or the next one is due. */
    struct timespec ts, *tmo = NULL;
    uint64_t next = UINT64_MAX;
    for (int i = 0; i < 2; i++)
      if (q[i].count > 0 && q[i].slots[q[i].head].due_ns < next)
        next = q[i].slots[q[i].head].due_ns;
    if (next != UINT64_MAX) {
      uint64_t wait = next > now ? next - now : 0;
      ts.tv_sec = (time_t)(wait / 1000000000u);
      ts.tv_nsec = (long)(wait % 1000000000u);
      tmo = &ts;
    }
    struct pollfd pfd[2] = {{.fd = fd[0], .events = POLLIN},
                            {.fd = fd[1], .events = POLLIN}};
    if (ppoll(pfd, 2, tmo, NULL) < 0 && errno != EINTR) {
      perror("delaylink: ppoll");
      return 71;
    }
    for (int i = 0; i < 2; i++)
      if (pfd[i].revents & POLLIN)
        take(fd[i], &q[i], delay);
  }
  if (q[0].dropped || q[1].dropped)
    fprintf(stderr, "delaylink: dropped %lu and %lu packets\n", q[0].dropped,
            q[1].dropped);
  return 0;
}
