/*
 * routeprobe — runs a route (lib/route.c) to completion, answering its
 * DNS questions with the library's blocking resolvers (lib/resolve_*.c),
 * and prints what it asked, every hop it handed out and its verdict, as
 * one JSON object.  A test tool for the DNS lab
 * (tests/integration/test_route_lab.py), and a model of what the
 * blocking driver will do; not an installed program.
 *
 *   routeprobe [--config INI] [--mode trust-ad|validate|off]
 *              [--server HOST:PORT]... [--trust-anchor FILE]
 *              [--unbound-config FILE] [--timeout MS] [--seed N]
 *              [--outcomes LIST | --connect] [--sts-cache DIR]
 *              [--ca-file F] [--https-port N] [--wall MS] DOMAIN
 *
 * The resolver comes from the configuration's [queue.outbound.dns]
 * (resolver, dnssec, trust-anchor-file, timeout); the options override
 * it.  Each hop's outcome is the next of LIST (done, connect-failed,
 * host-failed, tls-failed, session-failed; connect-failed once LIST is
 * used up), or, with --connect, what a TCP connection to the hop's
 * address and port gives: connected is "done", anything else
 * "connect-failed" with the error as detail.  MTA-STS requests are
 * answered as the blocking driver will: cache entries are files named
 * after their key in --sts-cache DIR (a miss without it), fetches go
 * through lib/fetch_curl.c to the addresses the route resolved, verified
 * against --ca-file (--https-port replaces 443 for the lab's server,
 * which listens on a free port).  The TLS-RPT events come last.  --wall
 * fixes the wall clock (default: the real one).  Exit status 0 when the
 * route finished, 1 otherwise, 64 for bad usage, 78 for a bad
 * configuration.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config_int.h"
#include "fetch_int.h"
#include "resolve_int.h"
#include "smtpout/smtpout.h"

/* `n` bytes as a JSON string (a cache value is not NUL-terminated). */
static void json_strn(const char *s, size_t n)
{
  putchar('"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20 || c >= 0x7f)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

static void json_str(const char *s)
{
  if (s == NULL)
    fputs("null", stdout);
  else
    json_strn(s, strlen(s));
}

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

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

static int outcome_of(const char *name)
{
  for (int o = 0; smtpout_hop_outcome_name(o); o++)
    if (strcmp(smtpout_hop_outcome_name(o), name) == 0)
      return o;
  return -1;
}

/* A TCP connection to the hop, with a timeout: SMTPOUT_HOP_DONE when it
 * connects, else SMTPOUT_HOP_CONNECT_FAILED and the reason. */
static int try_connect(const char *address, uint16_t port, char *why,
                       size_t whylen)
{
  struct sockaddr_storage ss;
  socklen_t sl;
  memset(&ss, 0, sizeof(ss));
  struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, address, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    sl = sizeof(*v4);
  } else if (inet_pton(AF_INET6, address, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    sl = sizeof(*v6);
  } else {
    snprintf(why, whylen, "bad address");
    return SMTPOUT_HOP_CONNECT_FAILED;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(why, whylen, "%s", strerror(errno));
    return SMTPOUT_HOP_CONNECT_FAILED;
  }
  int rv = connect(fd, (struct sockaddr *)&ss, sl);
  int err = rv == 0 ? 0 : errno;
  if (rv != 0 && errno == EINPROGRESS) {
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    err = ETIMEDOUT;
    if (poll(&p, 1, 10000) == 1) {
      socklen_t el = sizeof(err);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    }
  }
  close(fd);
  if (err == 0)
    return SMTPOUT_HOP_DONE;
  snprintf(why, whylen, "%s", strerror(err));
  return SMTPOUT_HOP_CONNECT_FAILED;
}

static void print_hop(const smtpout_hop *h, int outcome, const char *detail)
{
  printf("{\"mx\": ");
  json_str(smtpout_hop_mx(h));
  printf(", \"preference\": %d, \"address\": ", smtpout_hop_preference(h));
  json_str(smtpout_hop_address(h));
  printf(", \"port\": %u, \"tls\": ", (unsigned)smtpout_hop_port(h));
  json_str(smtpout_tls_requirement_name(smtpout_hop_tls_requirement(h)));
  printf(", \"tls_source\": ");
  json_str(smtpout_tls_source_name(smtpout_hop_tls_source(h)));
  printf(", \"sts_mode\": ");
  json_str(smtpout_sts_mode_name(smtpout_hop_sts_mode(h)));
  printf(", \"dane\": ");
  json_str(smtpout_dane_status_name(smtpout_hop_dane_status(h)));
  printf(", \"tlsa_base\": ");
  json_str(smtpout_hop_tlsa_base(h));
  printf(", \"tlsa\": [");
  for (size_t i = 0; i < smtpout_hop_tlsa_count(h); i++) {
    int u, s, m;
    const uint8_t *d;
    size_t len;
    smtpout_hop_tlsa(h, i, &u, &s, &m, &d, &len);
    printf("%s\"%d %d %d ", i ? ", " : "", u, s, m);
    for (size_t k = 0; k < len; k++)
      printf("%02x", d[k]);
    printf("\"");
  }
  printf("], \"dane_names\": [");
  for (size_t i = 0; i < smtpout_hop_dane_name_count(h); i++) {
    printf("%s", i ? ", " : "");
    json_str(smtpout_hop_dane_name(h, i));
  }
  printf("], \"outcome\": ");
  json_str(smtpout_hop_outcome_name(outcome));
  printf(", \"detail\": ");
  json_str(detail[0] ? detail : NULL);
  printf(", \"explain\": ");
  json_str(smtpout_hop_explain(h));
  printf("}");
}

/* The cache file of `key` in `dir` ("sts:example.org" -> DIR/sts_example.org). */
static void cache_path(char *out, size_t len, const char *dir,
                       const char *key)
{
  snprintf(out, len, "%s/", dir);
  size_t n = strlen(out);
  for (const char *k = key; *k && n + 1 < len; k++)
    out[n++] = *k == '/' || *k == ':' ? '_' : *k;
  out[n] = '\0';
}

/* Answers a cache or HTTPS request; prints it as a "query". */
static void web_request(smtpout_route *r, const smtpout_request *q,
                        const char *cache_dir, const char *ca_file,
                        uint16_t https_port)
{
  int id = smtpout_request_id(q);
  char path[1024];
  switch (smtpout_request_kind(q)) {
  case SMTPOUT_REQUEST_CACHE_GET: {
    static uint8_t value[70000];
    size_t len = 0;
    if (cache_dir) {
      cache_path(path, sizeof(path), cache_dir, smtpout_request_cache_key(q));
      FILE *f = fopen(path, "rb");
      if (f) {
        len = fread(value, 1, sizeof(value), f);
        fclose(f);
      }
    }
    printf("{\"kind\": \"cache-get\", \"key\": ");
    json_str(smtpout_request_cache_key(q));
    printf(", \"hit\": %s}", len ? "true" : "false");
    smtpout_route_cache_answer(r, id, value, len, now_ms());
    return;
  }
  case SMTPOUT_REQUEST_CACHE_PUT: {
    size_t len;
    const uint8_t *v = smtpout_request_cache_value(q, &len);
    if (cache_dir) {
      cache_path(path, sizeof(path), cache_dir, smtpout_request_cache_key(q));
      FILE *f = fopen(path, "wb");
      if (f) {
        fwrite(v, 1, len, f);
        fclose(f);
      }
    }
    printf("{\"kind\": \"cache-put\", \"key\": ");
    json_str(smtpout_request_cache_key(q));
    printf(", \"value\": ");
    if (v == NULL)
      json_str(NULL);
    else /* the entry is text, and not NUL-terminated */
      json_strn((const char *)v, len);
    printf("}");
    return;
  }
  case SMTPOUT_REQUEST_HTTPS: {
    struct fetch_response resp;
    memset(&resp, 0, sizeof(resp));
    resp.outcome = SMTPOUT_FETCH_FAILED;
    snprintf(resp.error, sizeof(resp.error), "built without libcurl");
#ifdef HAVE_LIBCURL
    /* The addresses the route resolved, in order, until one answers. */
    for (size_t i = 0; i < smtpout_request_address_count(q); i++) {
      struct fetch_request fr = {
        .url = smtpout_request_url(q),
        .address = smtpout_request_address(q, i),
        .port = https_port ? https_port : smtpout_request_port(q),
        .ca_file = ca_file,
        .timeout_ms = smtpout_request_timeout_ms(q),
        .max_bytes = smtpout_request_max_bytes(q),
      };
      fetch_response_clear(&resp);
      if (fetch_https(&fr, &resp) != 0 ||
          resp.outcome != SMTPOUT_FETCH_CONNECT_FAILED)
        break;
    }
#else
    (void)ca_file;
    (void)https_port;
#endif
    printf("{\"kind\": \"https\", \"url\": ");
    json_str(smtpout_request_url(q));
    printf(", \"address\": ");
    json_str(smtpout_request_address(q, 0));
    printf(", \"outcome\": %d, \"status\": %d, \"error\": ", resp.outcome,
           resp.status);
    json_str(resp.error[0] ? resp.error : NULL);
    printf("}");
    smtpout_route_https_answer(r, id, resp.outcome, resp.status,
                               resp.content_type[0] ? resp.content_type
                                                    : NULL,
                               resp.body, resp.len, now_ms());
    fetch_response_clear(&resp);
    return;
  }
  }
}

static int usage(void)
{
  fprintf(stderr,
          "usage: routeprobe [--config INI] [--mode trust-ad|validate|off] "
          "[--server H:P]... [--trust-anchor F] [--unbound-config F] "
          "[--timeout MS] [--seed N] [--outcomes LIST | --connect] "
          "[--sts-cache DIR] [--ca-file F] [--https-port N] [--wall MS] "
          "DOMAIN\n");
  return 64;
}

int main(int argc, char **argv)
{
  struct resolver_options opt = {.mode = -1};
  static char servers[1024];
  const char *config_path = NULL, *outcomes = NULL, *cache_dir = NULL,
             *ca_file = NULL;
  uint16_t https_port = 0;
  uint64_t wall = 0;
  int connect_mode = 0, have_seed = 0;
  unsigned long long seed = 0;
  int a = 1;
  for (; a < argc && strncmp(argv[a], "--", 2) == 0; a++) {
    const char *o = argv[a];
    if (strcmp(o, "--connect") == 0) {
      connect_mode = 1;
      continue;
    }
    if (a + 1 >= argc)
      return usage();
    const char *v = argv[++a];
    if (strcmp(o, "--config") == 0) {
      config_path = v;
    } else if (strcmp(o, "--mode") == 0) {
      opt.mode = strcmp(v, "validate") == 0   ? RESOLVER_VALIDATE
                 : strcmp(v, "off") == 0      ? RESOLVER_OFF
                 : strcmp(v, "trust-ad") == 0 ? RESOLVER_TRUST_AD
                                              : -2;
      if (opt.mode == -2)
        return usage();
    } else if (strcmp(o, "--server") == 0) {
      size_t l = strlen(servers);
      snprintf(servers + l, sizeof(servers) - l, "%s%s", l ? " " : "", v);
      opt.nameservers = servers;
    } else if (strcmp(o, "--trust-anchor") == 0) {
      opt.trust_anchor_file = v;
    } else if (strcmp(o, "--unbound-config") == 0) {
      opt.unbound_config = v;
    } else if (strcmp(o, "--timeout") == 0) {
      opt.timeout_ms = (uint32_t)strtoul(v, NULL, 10);
    } else if (strcmp(o, "--seed") == 0) {
      seed = strtoull(v, NULL, 10);
      have_seed = 1;
    } else if (strcmp(o, "--outcomes") == 0) {
      outcomes = v;
    } else if (strcmp(o, "--sts-cache") == 0) {
      cache_dir = v;
    } else if (strcmp(o, "--ca-file") == 0) {
      ca_file = v;
    } else if (strcmp(o, "--https-port") == 0) {
      https_port = (uint16_t)strtoul(v, NULL, 10);
    } else if (strcmp(o, "--wall") == 0) {
      wall = strtoull(v, NULL, 10);
    } else {
      return usage();
    }
  }
  if (argc - a != 1)
    return usage();
  const char *domain = argv[a];

  smtpout_config *cfg = NULL;
  char err[4096];
  if (config_path &&
      smtpout_config_load_file(&cfg, config_path, err, sizeof(err)) != 0) {
    fputs(err, stderr);
    return 78;
  }
  /* The resolver as the blocking driver will set it up: from
   * [queue.outbound.dns], options overriding. */
  const struct config_routing *settings = config_routing(cfg);
  if (opt.mode == -1)
    opt.mode = settings->dnssec;
  if (opt.nameservers == NULL)
    opt.nameservers = config_dns_resolver(cfg);
  if (opt.trust_anchor_file == NULL)
    opt.trust_anchor_file = config_dns_trust_anchor(cfg);
  if (opt.timeout_ms == 0)
    opt.timeout_ms = settings->dns_timeout_ms;
  struct resolver *res;
  if (resolver_new(&res, &opt, err, sizeof(err)) != 0) {
    fprintf(stderr, "routeprobe: %s\n", err);
    smtpout_config_unref(cfg);
    return 78;
  }
  uint32_t flags = resolver_dnssec_capable(res) ? 0 : SMTPOUT_ROUTE_NO_DNSSEC;

  smtpout_route *r;
  if (wall == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    wall = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
  }
  int rv = smtpout_route_new(&r, cfg, domain, flags, now_ms(), wall);
  if (rv != 0) {
    printf("{\"rv\": %d, \"error\": ", rv);
    json_str(smtpout_strerror(rv));
    printf("}\n");
    resolver_free(res);
    smtpout_config_unref(cfg);
    return 1;
  }
  if (have_seed)
    smtpout_route_set_seed(r, seed);

  static uint8_t buf[RESOLVER_MAX_ANSWER];
  const char *next_outcome = outcomes;
  int nq = 0, nh = 0;
  printf("{\"rv\": 0, \"domain\": ");
  json_str(smtpout_route_domain(r));
  printf(", \"dnssec_capable\": %s, \"queries\": [",
         flags ? "false" : "true");
  /* Hops are printed after the queries: collect them as text. */
  char *hops = NULL;
  size_t hopslen = 0;
  FILE *hopf = open_memstream(&hops, &hopslen);
  int want;
  while ((want = smtpout_route_want(r)) != SMTPOUT_ROUTE_DONE) {
    if (want == SMTPOUT_ROUTE_WANT_REQUEST) {
      const smtpout_request *q;
      smtpout_route_next_request(r, &q, now_ms());
      if (smtpout_request_kind(q) != SMTPOUT_REQUEST_DNS) {
        printf("%s", nq++ ? ", " : "");
        web_request(r, q, cache_dir, ca_file, https_port);
        continue;
      }
      size_t len = 0;
      int verdict;
      char why[256];
      int id = smtpout_request_id(q);
      int qrv = resolver_query(res, smtpout_request_qname(q),
                               (uint16_t)smtpout_request_qtype(q), buf,
                               sizeof(buf), &len, &verdict, why, sizeof(why));
      printf("%s{\"qname\": ", nq++ ? ", " : "");
      json_str(smtpout_request_qname(q));
      printf(", \"qtype\": ");
      json_str(qtype_name(smtpout_request_qtype(q)));
      printf(", \"rv\": %d, \"verdict\": ", qrv);
      json_str(smtpout_dnssec_name(verdict));
      printf(", \"why\": ");
      json_str(why[0] ? why : NULL);
      printf("}");
      if (qrv == 0)
        smtpout_route_dns_answer(r, id, verdict, buf, len, now_ms());
      else
        smtpout_route_dns_failed(r, id, verdict, 0, now_ms());
    } else if (want == SMTPOUT_ROUTE_WANT_HOP) {
      const smtpout_hop *h;
      smtpout_route_next_hop(r, &h, now_ms());
      char detail[256] = "";
      int outcome = SMTPOUT_HOP_CONNECT_FAILED;
      if (connect_mode) {
        outcome = try_connect(smtpout_hop_address(h), smtpout_hop_port(h),
                              detail, sizeof(detail));
      } else if (next_outcome && *next_outcome) {
        char name[32];
        size_t n = strcspn(next_outcome, ",");
        snprintf(name, sizeof(name), "%.*s", (int)n, next_outcome);
        next_outcome += n + (next_outcome[n] == ',');
        outcome = outcome_of(name);
        if (outcome < 0) {
          fprintf(stderr, "routeprobe: unknown outcome %s\n", name);
          return 64;
        }
      }
      FILE *saved = stdout;
      stdout = hopf;
      printf("%s", nh++ ? ", " : "");
      print_hop(h, outcome, detail);
      stdout = saved;
      smtpout_route_hop_done(r, h, outcome, detail[0] ? detail : NULL,
                             now_ms());
    } else {
      /* A blocking resolver answers every question at once: nothing can
       * be left waiting. */
      fprintf(stderr, "routeprobe: the route waits for nothing\n");
      break;
    }
  }
  fclose(hopf);
  printf("], \"hops\": [%s], \"route_dnssec\": ", hops ? hops : "");
  free(hops);
  json_str(smtpout_dnssec_name(smtpout_route_dnssec(r)));
  printf(", \"implicit_mx\": %s, \"mx\": [",
         smtpout_route_implicit_mx(r) ? "true" : "false");
  for (size_t i = 0; i < smtpout_route_mx_count(r); i++) {
    printf("%s{\"name\": ", i ? ", " : "");
    json_str(smtpout_route_mx_name(r, i));
    printf(", \"preference\": %d}", smtpout_route_mx_preference(r, i));
  }
  printf("], \"sts_mode\": ");
  json_str(smtpout_sts_mode_name(smtpout_route_sts_mode(r)));
  printf(", \"sts_id\": ");
  json_str(smtpout_route_sts_id(r));
  printf(", \"sts_explain\": ");
  json_str(smtpout_route_sts_explain(r));
  printf(", \"events\": [");
  const char *ev;
  size_t evlen;
  for (int i = 0; smtpout_route_next_event(r, &ev, &evlen) == 1; i++)
    printf("%s%s", i ? ", " : "", ev);
  printf("], \"status\": ");
  json_str(smtpout_status_name(smtpout_route_status(r)));
  printf(", \"enhanced\": ");
  json_str(smtpout_route_enhanced(r));
  printf(", \"text\": ");
  json_str(smtpout_route_text(r));
  printf("}\n");
  int finished = smtpout_route_want(r) == SMTPOUT_ROUTE_DONE;
  smtpout_route_free(r);
  resolver_free(res);
  smtpout_config_unref(cfg);
  return finished ? 0 : 1;
}
