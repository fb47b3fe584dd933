/*
 * smtpout-send — deliver one message to one SMTP server, or to the MX
 * hosts of a domain, under the configured TLS policy, and say what
 * happened (docs/tools.md); or, with --probe, connect, secure the
 * connection and show the server's TLS without sending mail (probe.c).
 *
 *   smtpout-send --server HOST[:PORT] --from ADDR --to ADDR [--to ADDR ...]
 *                [--data FILE|-] [options]
 *   smtpout-send --domain DOMAIN --from ADDR --to ADDR [--to ADDR ...]
 *                [--data FILE|-] [--resolver HOST:PORT] [--dnssec MODE]
 *                [--requiretls] [--tls-required-no] [options]
 *   smtpout-send --probe --server HOST[:PORT] [--to ADDR ...] [options]
 *
 * With --domain the delivery runs a route (docs/routing.md): MX hosts,
 * DNSSEC, DANE, MTA-STS and REQUIRETLS decide each hop's TLS, the
 * configuration's [queue.outbound.dns], [queue.outbound.mta-sts] and
 * [queue.outbound.tls-rpt] say how to resolve, where policies are cached
 * and where TLS-RPT events go.
 *
 * The delivery scans the message for what it needs (8BITMIME, SMTPUTF8,
 * its size on the wire); --smtputf8 requires SMTPUTF8 for an ASCII one.
 * The TLS policy is the configuration's, except for the knobs --starttls
 * and --allow-invalid-certs set.  Every wait is bounded: by --timeout, else
 * by the configuration's timeout for that phase when the file sets one,
 * else by 30 seconds (docs/tools.md).
 *
 * Exit status (sysexits.h): 0 every recipient delivered (the probe: the
 * policy was met); 75 any deferred (the probe: the connection or the policy
 * failed); 69 otherwise any bounced; 64 bad usage; 66 unreadable data or
 * --ca-file; 78 bad configuration; 70 internal error.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "send.h"

/* Without --timeout and a configured value, each wait is bounded by this:
 * an operator at a terminal should not wait RFC 5321's 5 or 10 minutes
 * for a silent server. */
#define CLI_DEFAULT_TIMEOUT_MS 30000u

static const char *const timeout_keys[SMTPOUT_TIMEOUT_COUNT] = {
  "connect", "greeting", "tls", "ehlo", "mail-from", "rcpt-to", "data",
};

/* Route mode: a domain's MX hosts, or a configured relay. */
static int routed(const struct send_setup *setup)
{
  return setup->domain != NULL || setup->relay != NULL;
}

static void usage(FILE *f)
{
  fputs(
    "usage: smtpout-send --server HOST[:PORT] --from ADDR --to ADDR "
    "[--to ADDR ...]\n"
    "                    [--data FILE|-] [OPTIONS]\n"
    "       smtpout-send --domain DOMAIN --from ADDR --to ADDR "
    "[--to ADDR ...]\n"
    "                    [--data FILE|-] [OPTIONS]\n"
    "       smtpout-send --relay NAME --config FILE --from ADDR --to ADDR "
    "[--to ADDR ...]\n"
    "                    [--data FILE|-] [OPTIONS]\n"
    "       smtpout-send --probe --server HOST[:PORT] [--to ADDR ...] "
    "[OPTIONS]\n"
    "\n"
    "Delivers one message to one SMTP server, or to the MX hosts of a "
    "domain, under\nthe TLS policy and reports each recipient's result; "
    "--probe connects, secures\nthe connection and shows the server's TLS "
    "and certificates without sending mail.\n"
    "\n"
    "  --server HOST[:PORT]   the server (port 25 by default)\n"
    "  --domain DOMAIN        the recipients' domain: its MX hosts, with "
    "DNSSEC, DANE,\n"
    "                         MTA-STS (port: the configuration's "
    "smtp-port)\n"
    "  --relay NAME           through [relay \"NAME\"] of --config: its host, "
    "port, implicit\n"
    "                         TLS, AUTH and client certificate\n"
    "  --resolver HOST:PORT   with --domain or --relay: a nameserver instead "
    "of the\n"
    "                         configuration's; repeat for more\n"
    "  --dnssec MODE          with --domain or --relay: trust-ad, validate or "
    "off\n"
    "  --requiretls           with --domain: REQUIRETLS (RFC 8689): DANE or "
    "MTA-STS\n"
    "                         authenticated hops only, bounced when none "
    "qualifies\n"
    "  --tls-required-no      with --domain: the message says "
    "\"TLS-Required: No\"\n"
    "  --mx-name NAME         name for the policy, SNI and certificate "
    "check (default HOST)\n"
    "  --from ADDR            envelope sender (\"\" for <>)\n"
    "  --to ADDR              a recipient; repeat for more\n"
    "  --data FILE|-          the message (standard input with \"-\", or "
    "when omitted\n"
    "                         and standard input is not a terminal)\n"
    "  --probe                EHLO, STARTTLS and QUIT: no mail is sent\n"
    "  --config FILE          policy and timeouts (docs/configuration.md)\n"
    "  --starttls MODE        optional, require or disable, whatever the "
    "policy says\n"
    "  --allow-invalid-certs  deliver over TLS whose certificate did not "
    "verify\n"
    "  --ca-file FILE         PEM trust anchors instead of the system's\n"
    "  --timeout DUR          bound every wait (30s, 2m, 1500ms; default "
    "30s)\n"
    "  --helo NAME            the EHLO name\n"
    "  --smtputf8             require SMTPUTF8 even for an ASCII message\n"
    "  --implicit-tls         TLS from the first byte (RFC 8314, port 465)\n"
    "  --client-cert FILE     PEM certificate presented when the server asks\n"
    "  --client-key FILE      its PEM private key\n"
    "  --auth-user USER       authenticate (SMTP AUTH, only ever over TLS)\n"
    "  --auth-password-file FILE  the password, first line of FILE (mode "
    "600)\n"
    "  --auth-mech LIST       allowed mechanisms, strongest first "
    "(SCRAM-SHA-256 PLAIN)\n"
    "  --auth-tls any         AUTH also over a certificate that did not "
    "verify\n"
    "  --notify WHEN          DSN: SUCCESS,FAILURE,DELAY (any of them) or "
    "NEVER\n"
    "  --ret FULL|HDRS        DSN: what a failure notice returns\n"
    "  --envid ID             DSN: the envelope identifier\n"
    "  --orcpt TYPE;ADDR      DSN: the original recipient of the next --to\n"
    "  --no-chunking          DATA, never BDAT\n"
    "  --json                 one JSON object instead of text\n"
    "  --verbose              the SMTP conversation on standard error\n"
    "  --version              print the version and exit\n"
    "  --help                 print this help and exit\n",
    f);
}

/* ------------------------------------------------------------------ */
/* Output helpers (shared with probe.c)                                 */

void paint(const struct send_setup *setup, const char *sgr)
{
  if (setup->colour)
    fputs(sgr, stdout);
}

void paint_end(const struct send_setup *setup)
{
  if (setup->colour)
    fputs(SGR_RESET, stdout);
}

void print_safe(const char *s)
{
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p < 0x20 || *p == 0x7f)
      printf("\\x%02X", *p);
    else
      putchar(*p);
  }
}

void format_duration(char *out, size_t outlen, uint32_t ms)
{
  static const struct {
    const char *unit;
    uint32_t ms;
  } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
    if (ms % units[i].ms == 0) {
      snprintf(out, outlen, "%lu%s", (unsigned long)(ms / units[i].ms),
               units[i].unit);
      return;
    }
  }
  snprintf(out, outlen, "%lums", (unsigned long)ms);
}

void trace_line(smtpout_session *s, int dir, const char *line, size_t len,
                void *ud)
{
  static const char *const prefix[] = {"C: ", "S: ", "-- "};
  (void)s;
  (void)ud;
  fputs(prefix[dir], stderr);
  fwrite(line, 1, len, stderr);
  fputc('\n', stderr);
}

/* ------------------------------------------------------------------ */
/* Command line                                                         */

/* Splits "host", "host:port", "[v6]:port" or "[v6]". */
static int parse_server(const char *arg, char **host, uint16_t *port)
{
  const char *colon = NULL;
  const char *hs = arg, *he;
  if (arg[0] == '[') {
    he = strchr(arg, ']');
    if (he == NULL)
      return -1;
    hs = arg + 1;
    if (he[1] == ':')
      colon = he + 1;
    else if (he[1] != '\0')
      return -1;
  } else {
    colon = strrchr(arg, ':');
    if (colon && strchr(arg, ':') != colon)
      colon = NULL; /* a bare IPv6 address: no port */
    he = colon ? colon : arg + strlen(arg);
  }
  *port = 25;
  if (colon) {
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p <= 0 || p > 65535)
      return -1;
    *port = (uint16_t)p;
  }
  if (he == hs)
    return -1;
  *host = strndup(hs, (size_t)(he - hs));
  return *host ? 0 : -1;
}

/* A duration as [queue.outbound.timeouts] writes one (docs/
 * configuration.md): a positive whole number and a unit, ms, s, m, h or
 * d; at most 2^32 - 1 ms.  The same rules and the same words as the
 * configuration's (tests/integration/test_send_cli.py holds them
 * together). */
static int parse_duration(const char *s, uint32_t *ms, const char **why)
{
  static const struct {
    const char *unit;
    uint64_t ms;
  } units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
  };
  uint64_t n = 0;
  size_t i = 0;
  while (s[i] >= '0' && s[i] <= '9') {
    n = n * 10 + (uint64_t)(s[i] - '0');
    if (n > UINT32_MAX) {
      *why = "too large (at most 49 days)";
      return -1;
    }
    i++;
  }
  if (i == 0) {
    *why = "not a number followed by a unit (ms, s, m, h, d), e.g. 30s";
    return -1;
  }
  if (s[i] == '\0') {
    *why = "a unit is required (ms, s, m, h, d), e.g. 30s";
    return -1;
  }
  for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
    if (strcmp(s + i, units[u].unit) == 0) {
      if (n == 0) {
        *why = "must be greater than zero";
        return -1;
      }
      if (n > UINT32_MAX / units[u].ms) {
        *why = "too large (at most 49 days)";
        return -1;
      }
      *ms = (uint32_t)(n * units[u].ms);
      return 0;
    }
  }
  *why = "unknown unit (accepted: ms, s, m, h, d), e.g. 30s";
  return -1;
}

static int parse_starttls(const char *arg, int *mode)
{
  static const int modes[] = {SMTPOUT_STARTTLS_OPTIONAL,
                              SMTPOUT_STARTTLS_REQUIRE,
                              SMTPOUT_STARTTLS_DISABLE};
  for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
    if (strcmp(arg, smtpout_starttls_name(modes[i])) == 0) {
      *mode = modes[i];
      return 0;
    }
  }
  return -1;
}

/* Checks --ca-file now, naming it, rather than after a connection and a
 * STARTTLS (where the library reads it).  A device or a FIFO is refused,
 * as the library refuses it. */
static int check_ca_file(const char *path)
{
  struct stat st;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &st) != 0) {
    fprintf(stderr, "smtpout-send: --ca-file %s: %s\n", path,
            strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  close(fd);
  if (!S_ISREG(st.st_mode)) {
    fprintf(stderr, "smtpout-send: --ca-file %s: not a regular file\n",
            path);
    return -1;
  }
  return 0;
}

/* Checks a file an option names can be read (a regular file), naming the
 * option: --client-cert, --client-key. */
static int check_readable(const char *option, const char *path)
{
  struct stat st;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &st) != 0) {
    fprintf(stderr, "smtpout-send: %s %s: %s\n", option, path,
            strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  close(fd);
  if (!S_ISREG(st.st_mode)) {
    fprintf(stderr, "smtpout-send: %s %s: not a regular file\n", option,
            path);
    return -1;
  }
  return 0;
}

/* Reads the password: the first line of `path`, a regular file that
 * group and others can neither read nor write, as the configuration's
 * auth-password-file (docs/relay.md).  Returns 0, or -1 after saying
 * why. */
static int read_password(const char *path, char *out, size_t cap)
{
  struct stat st;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 || fstat(fd, &st) != 0) {
    fprintf(stderr, "smtpout-send: --auth-password-file %s: %s\n", path,
            strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode) || (st.st_mode & 077)) {
    fprintf(stderr,
            "smtpout-send: --auth-password-file %s: %s\n", path,
            !S_ISREG(st.st_mode) ? "not a regular file"
                                 : "group or others may read or write it "
                                   "(chmod 600 it)");
    close(fd);
    return -1;
  }
  ssize_t n = read(fd, out, cap - 1);
  close(fd);
  if (n < 0) {
    fprintf(stderr, "smtpout-send: --auth-password-file %s: %s\n", path,
            strerror(errno));
    return -1;
  }
  out[n] = '\0';
  out[strcspn(out, "\r\n")] = '\0';
  if (out[0] == '\0') {
    fprintf(stderr, "smtpout-send: --auth-password-file %s: the first line "
                    "is empty\n", path);
    return -1;
  }
  return 0;
}

/* --notify: NEVER, or a comma-separated list of SUCCESS, FAILURE and
 * DELAY (any case).  Returns the SMTPOUT_DSN_NOTIFY_* bits, or 0. */
static uint32_t parse_notify(const char *arg)
{
  static const struct {
    const char *word;
    uint32_t bit;
  } words[] = {
    {"SUCCESS", SMTPOUT_DSN_NOTIFY_SUCCESS},
    {"FAILURE", SMTPOUT_DSN_NOTIFY_FAILURE},
    {"DELAY", SMTPOUT_DSN_NOTIFY_DELAY},
    {"NEVER", SMTPOUT_DSN_NOTIFY_NEVER},
  };
  uint32_t bits = 0;
  const char *p = arg;
  for (;;) {
    size_t n = strcspn(p, ",");
    uint32_t bit = 0;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
      if (strlen(words[i].word) == n && strncasecmp(p, words[i].word, n) == 0)
        bit = words[i].bit;
    if (bit == 0 || (bits & bit))
      return 0;
    bits |= bit;
    if (p[n] == '\0')
      break;
    p += n + 1;
  }
  /* NEVER stands alone (RFC 3461 4.1). */
  if ((bits & SMTPOUT_DSN_NOTIFY_NEVER) && bits != SMTPOUT_DSN_NOTIFY_NEVER)
    return 0;
  return bits;
}

/* ------------------------------------------------------------------ */
/* The policy and the timeouts in force                                 */

/* Copies the value and source of `knob` from `p` into *v, or, when `p`
 * is stricter than what *v holds, replaces it. */
static void knob_merge(struct knob_view *v, int have, const smtpout_policy *p,
                       int knob)
{
  int value = knob == SMTPOUT_KNOB_STARTTLS
                ? smtpout_policy_starttls(p)
                : smtpout_policy_allow_invalid_certs(p);
  /* Stricter: require > optional > disable; certificates refused (0) >
   * allowed (1). */
  int stricter = knob == SMTPOUT_KNOB_STARTTLS ? value > v->value
                                               : value < v->value;
  if (have && !stricter)
    return;
  v->value = value;
  snprintf(v->source, sizeof(v->source), "%s", smtpout_policy_source(p, knob));
}

/* Resolves the policy as the delivery does: the strictest over the
 * recipients' domains through the MX, where a domain that is not a valid
 * name counts as the MX alone, and recipients the delivery bounces locally
 * (a bad address) count for nothing.  With no domain, the MX alone.
 * Returns 0 or SMTPOUT_ERR_BAD_NAME (the MX) or another error. */
static int resolve_policy(struct send_setup *setup, const char *const *to,
                          size_t nto)
{
  const char **domains = calloc(nto ? nto : 1, sizeof(*domains));
  if (domains == NULL)
    return SMTPOUT_ERR_NOMEM;
  size_t n = 0;
  int mx_alone = 0, rv = 0;
  smtpout_policy *p = NULL;
  for (size_t i = 0; i < nto && rv == 0; i++) {
    if (smtpout_address_check(to[i]) != 0)
      continue;
    const char *dom = strrchr(to[i], '@') + 1;
    rv = smtpout_policy_resolve(&p, setup->config, &dom, 1, setup->mx);
    smtpout_policy_free(p);
    p = NULL;
    if (rv == SMTPOUT_ERR_BAD_NAME &&
        smtpout_policy_resolve(&p, setup->config, NULL, 0, setup->mx) == 0) {
      smtpout_policy_free(p); /* the domain was the bad name, not the MX */
      p = NULL;
      mx_alone = 1;
      rv = 0;
    } else if (rv == 0) {
      domains[n++] = dom;
    }
  }
  int have = 0;
  if (rv == 0 && n > 0 &&
      (rv = smtpout_policy_resolve(&p, setup->config, domains, n,
                                   setup->mx)) == 0) {
    knob_merge(&setup->starttls, have, p, SMTPOUT_KNOB_STARTTLS);
    knob_merge(&setup->allow_invalid_certs, have, p,
               SMTPOUT_KNOB_ALLOW_INVALID_CERTS);
    have = 1;
    smtpout_policy_free(p);
    p = NULL;
  }
  if (rv == 0 && (n == 0 || mx_alone) &&
      (rv = smtpout_policy_resolve(&p, setup->config, NULL, 0, setup->mx)) ==
        0) {
    knob_merge(&setup->starttls, have, p, SMTPOUT_KNOB_STARTTLS);
    knob_merge(&setup->allow_invalid_certs, have, p,
               SMTPOUT_KNOB_ALLOW_INVALID_CERTS);
    smtpout_policy_free(p);
  }
  free(domains);
  return rv;
}

/* The timeout of each phase: --timeout, else the configuration's when the
 * file sets it, else CLI_DEFAULT_TIMEOUT_MS. */
static void choose_timeouts(struct send_setup *setup, const char *config_path,
                            uint32_t cli_ms)
{
  for (int w = 0; w < SMTPOUT_TIMEOUT_COUNT; w++) {
    struct timeout_view *t = &setup->timeouts[w];
    uint32_t line = smtpout_config_timeout_line(setup->config, w);
    if (cli_ms) {
      t->ms = cli_ms;
      snprintf(t->source, sizeof(t->source), "--timeout");
    } else if (line) {
      t->ms = smtpout_config_timeout(setup->config, w);
      snprintf(t->source, sizeof(t->source), "%s:%lu", config_path,
               (unsigned long)line);
    } else {
      t->ms = CLI_DEFAULT_TIMEOUT_MS;
      snprintf(t->source, sizeof(t->source), "smtpout-send default");
    }
  }
}

static void note_timeouts(const struct send_setup *setup)
{
  fputs("-- timeouts:", stderr);
  for (int w = 0; w < SMTPOUT_TIMEOUT_COUNT; w++) {
    char d[32];
    format_duration(d, sizeof(d), setup->timeouts[w].ms);
    fprintf(stderr, "%s %s %s (%s)", w ? "," : "", timeout_keys[w], d,
            setup->timeouts[w].source);
  }
  fputc('\n', stderr);
}

/* ------------------------------------------------------------------ */
/* The message                                                          */

/* What the command line asks of the delivery beyond the setup. */
struct send_options {
  const char *from;
  const char *const *to;
  size_t nto;
  const char *data;
  int smtputf8;
  int no_chunking;
  /* AUTH: the user, the password read from its file, the mechanisms. */
  const char *auth_user;
  char *password;
  const char *auth_mech;
  int auth_tls_any;
  smtpout_dsn *dsn; /* NULL: no DSN option */
};

/* Copies everything readable from `in` into a new temporary file. */
static int spool(int in)
{
  FILE *tmp = tmpfile();
  if (tmp == NULL)
    return -1;
  int fd = dup(fileno(tmp));
  fclose(tmp);
  if (fd < 0)
    return -1;
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof(buf))) > 0)
    if (write(fd, buf, (size_t)n) != n) {
      close(fd);
      return -1;
    }
  if (n < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* The body must be re-readable (a fallback or another address sends it
 * again) and its size known: standard input, pipes and devices are
 * spooled to a temporary file; regular files are read in place. */
static int open_body(const char *path)
{
  int fd;
  if (path == NULL || strcmp(path, "-") == 0) {
    fd = spool(STDIN_FILENO);
  } else {
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
      close(fd);
      return -1;
    }
    if (!S_ISREG(st.st_mode)) {
      int copy = spool(fd);
      close(fd);
      fd = copy;
    }
  }
  return fd;
}

/* ------------------------------------------------------------------ */
/* Reports                                                              */

static void print_tls_json(struct json *j, const smtpout_tls_info *ti)
{
  json_object_begin(j);
  json_key(j, "used");
  json_bool(j, smtpout_tls_info_used(ti));
  json_key(j, "version");
  json_string(j, smtpout_tls_info_version(ti));
  json_key(j, "cipher");
  json_string(j, smtpout_tls_info_cipher(ti));
  json_key(j, "verified");
  json_bool(j, smtpout_tls_info_verified(ti));
  json_key(j, "verify_error");
  json_string(j, smtpout_tls_info_verify_error(ti));
  json_key(j, "tlsrpt_result");
  json_string(j, smtpout_tls_info_tlsrpt_result(ti));
  json_key(j, "implicit");
  json_bool(j, smtpout_tls_info_implicit(ti));
  json_key(j, "client_certificate");
  json_bool(j, smtpout_tls_info_client_certificate(ti));
  json_object_end(j);
}

/* The policy the delivery enforced: its own report, or, when an option
 * fixed a knob, the tool's (the delivery would call it "host"). */
static void policy_of(const struct send_setup *setup,
                      const smtpout_delivery *d, struct knob_view *st,
                      struct knob_view *ai)
{
  const smtpout_policy *p = smtpout_delivery_policy(d);
  *st = setup->starttls;
  *ai = setup->allow_invalid_certs;
  if (setup->fixed || p == NULL)
    return;
  st->value = smtpout_policy_starttls(p);
  snprintf(st->source, sizeof(st->source), "%s",
           smtpout_policy_source(p, SMTPOUT_KNOB_STARTTLS));
  ai->value = smtpout_policy_allow_invalid_certs(p);
  snprintf(ai->source, sizeof(ai->source), "%s",
           smtpout_policy_source(p, SMTPOUT_KNOB_ALLOW_INVALID_CERTS));
}

/* "route": what the route found (docs/tools.md, JSON OUTPUT). */
static void print_route_json(struct json *j, const smtpout_route *r)
{
  if (r == NULL) { /* the resolver could not be set up */
    json_null(j);
    return;
  }
  json_object_begin(j);
  json_key(j, "domain");
  json_string(j, smtpout_route_domain(r));
  json_key(j, "mx");
  json_array_begin(j);
  for (size_t i = 0; i < smtpout_route_mx_count(r); i++) {
    json_object_begin(j);
    json_key(j, "name");
    json_string(j, smtpout_route_mx_name(r, i));
    json_key(j, "preference");
    json_int(j, smtpout_route_mx_preference(r, i));
    json_object_end(j);
  }
  json_array_end(j);
  json_key(j, "implicit_mx");
  json_bool(j, smtpout_route_implicit_mx(r));
  json_key(j, "dnssec");
  json_string(j, smtpout_dnssec_name(smtpout_route_dnssec(r)));
  json_key(j, "sts");
  json_object_begin(j);
  json_key(j, "mode");
  json_string(j, smtpout_sts_mode_name(smtpout_route_sts_mode(r)));
  json_key(j, "id");
  json_string(j, smtpout_route_sts_id(r)[0] ? smtpout_route_sts_id(r) : NULL);
  json_object_end(j);
  json_key(j, "verdict");
  if (smtpout_route_status(r)) {
    json_object_begin(j);
    json_key(j, "status");
    json_string(j, smtpout_status_name(smtpout_route_status(r)));
    json_key(j, "enhanced");
    json_string(j, smtpout_route_enhanced(r));
    json_key(j, "text");
    json_string(j, smtpout_route_text(r));
    json_object_end(j);
  } else {
    json_null(j);
  }
  json_object_end(j);
}

/* One attempt of route mode: the hop and what its session proved. */
static void print_route_attempt_json(struct json *j, const smtpout_attempt *a,
                                     int relay)
{
  const smtpout_tls_info *ti = smtpout_attempt_tls_info(a);
  int requirement = smtpout_attempt_tls_requirement(a);
  json_object_begin(j);
  json_key(j, "address");
  json_string(j, smtpout_attempt_address(a));
  json_key(j, "mx");
  json_string(j, smtpout_attempt_mx(a));
  json_key(j, "outcome");
  json_string(j, smtpout_hop_outcome_name(smtpout_attempt_hop_outcome(a)));
  json_key(j, "tls_requirement");
  json_string(j, smtpout_tls_requirement_name(requirement));
  json_key(j, "tls_source");
  json_string(j, smtpout_tls_source_name(smtpout_attempt_tls_source(a)));
  json_key(j, "starttls");
  json_string(j, smtpout_tls_outcome_name(smtpout_tls_info_outcome(ti)));
  json_key(j, "plaintext_fallback");
  json_bool(j, smtpout_attempt_plaintext_fallback(a));
  json_key(j, "tls");
  print_tls_json(j, ti);
  json_key(j, "dane");
  json_object_begin(j);
  json_key(j, "status");
  json_string(j, smtpout_dane_status_name(smtpout_attempt_dane_status(a)));
  json_key(j, "used");
  json_bool(j, requirement == SMTPOUT_TLS_REQUIREMENT_DANE);
  json_key(j, "records");
  json_int(j, (long long)smtpout_attempt_tlsa_count(a));
  json_key(j, "matched");
  json_string(j, smtpout_tls_info_tlsa_matched(ti));
  json_object_end(j);
  json_key(j, "sts_mode");
  json_string(j, smtpout_sts_mode_name(smtpout_attempt_sts_mode(a)));
  json_key(j, "auth");
  json_string(j, smtpout_tls_auth_name(smtpout_tls_info_auth(ti)));
  json_key(j, "requiretls");
  json_bool(j, smtpout_tls_info_requiretls(ti));
  json_key(j, "tlsrpt_result");
  json_string(j, smtpout_attempt_tlsrpt_result(a));
  if (relay) {
    /* SMTP AUTH with the relay's credentials ("auth" above is how TLS
     * authenticated the server). */
    json_key(j, "smtp_auth");
    json_object_begin(j);
    json_key(j, "outcome");
    json_string(j, smtpout_auth_outcome_name(smtpout_attempt_auth_outcome(a)));
    json_key(j, "mechanism");
    json_string(j, smtpout_attempt_auth_mechanism(a));
    json_object_end(j);
  }
  json_key(j, "error");
  json_string(j, smtpout_attempt_error(a));
  json_object_end(j);
}

/* NOTIFY bits as --notify writes them ("SUCCESS,DELAY"). */
static void notify_text(uint32_t bits, char *out, size_t cap)
{
  static const struct {
    uint32_t bit;
    const char *word;
  } words[] = {
    {SMTPOUT_DSN_NOTIFY_NEVER, "NEVER"},
    {SMTPOUT_DSN_NOTIFY_SUCCESS, "SUCCESS"},
    {SMTPOUT_DSN_NOTIFY_FAILURE, "FAILURE"},
    {SMTPOUT_DSN_NOTIFY_DELAY, "DELAY"},
  };
  size_t k = 0;
  out[0] = '\0';
  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
    if ((bits & words[i].bit) && k + strlen(words[i].word) + 2 < cap)
      k += (size_t)snprintf(out + k, cap - k, "%s%s", k ? "," : "",
                            words[i].word);
}

static void print_json(const struct send_setup *setup,
                       const struct send_options *o,
                       const smtpout_delivery *d)
{
  struct knob_view st, ai;
  policy_of(setup, d, &st, &ai);
  struct json j;
  json_init(&j, stdout);
  json_object_begin(&j);
  if (setup->relay) {
    json_key(&j, "relay");
    json_string(&j, setup->relay);
    json_key(&j, "route");
    print_route_json(&j, smtpout_delivery_route(d));
  } else if (setup->domain) {
    json_key(&j, "domain");
    json_string(&j, setup->domain);
    json_key(&j, "route");
    print_route_json(&j, smtpout_delivery_route(d));
  } else {
    json_key(&j, "mx");
    json_string(&j, setup->mx);
    json_key(&j, "server");
    json_string(&j, setup->server);
  }

  json_key(&j, "policy");
  json_object_begin(&j);
  json_key(&j, "starttls");
  json_string(&j, smtpout_starttls_name(st.value));
  json_key(&j, "allow_invalid_certs");
  json_bool(&j, ai.value);
  json_key(&j, "source");
  json_object_begin(&j);
  json_key(&j, "starttls");
  json_string(&j, st.source);
  json_key(&j, "allow_invalid_certs");
  json_string(&j, ai.source);
  json_object_end(&j);
  json_object_end(&j);

  json_key(&j, "attempts");
  json_array_begin(&j);
  for (size_t i = 0; i < smtpout_delivery_attempt_count(d); i++) {
    const smtpout_attempt *a = smtpout_delivery_attempt(d, i);
    const smtpout_tls_info *ti = smtpout_attempt_tls_info(a);
    if (routed(setup)) {
      print_route_attempt_json(&j, a, setup->relay != NULL);
      continue;
    }
    json_object_begin(&j);
    json_key(&j, "address");
    json_string(&j, smtpout_attempt_address(a));
    json_key(&j, "starttls");
    json_string(&j, smtpout_tls_outcome_name(smtpout_tls_info_outcome(ti)));
    json_key(&j, "plaintext_fallback");
    json_bool(&j, smtpout_attempt_plaintext_fallback(a));
    json_key(&j, "tls");
    print_tls_json(&j, ti);
    json_key(&j, "auth");
    if (o->auth_user) {
      json_object_begin(&j);
      json_key(&j, "outcome");
      json_string(&j,
                  smtpout_auth_outcome_name(smtpout_attempt_auth_outcome(a)));
      json_key(&j, "mechanism");
      json_string(&j, smtpout_attempt_auth_mechanism(a));
      json_key(&j, "username");
      json_string(&j, o->auth_user);
      json_object_end(&j);
    } else {
      json_null(&j);
    }
    json_key(&j, "error");
    json_string(&j, smtpout_attempt_error(a));
    json_object_end(&j);
  }
  json_array_end(&j);

  json_key(&j, "recipients");
  json_array_begin(&j);
  for (size_t i = 0; i < smtpout_delivery_recipient_count(d); i++) {
    const smtpout_result *r = smtpout_delivery_result(d, i);
    json_object_begin(&j);
    json_key(&j, "address");
    json_string(&j, smtpout_result_recipient(r));
    json_key(&j, "status");
    json_string(&j, smtpout_status_name(smtpout_result_status(r)));
    json_key(&j, "code");
    if (smtpout_result_code(r))
      json_int(&j, smtpout_result_code(r));
    else
      json_null(&j);
    json_key(&j, "enhanced");
    json_string(&j, smtpout_result_enhanced(r)[0] ? smtpout_result_enhanced(r)
                                                  : NULL);
    json_key(&j, "text");
    json_string(&j, smtpout_result_text(r));
    json_key(&j, "possibly_delivered");
    json_bool(&j, smtpout_result_possibly_delivered(r));
    json_key(&j, "dsn");
    if (o->dsn) {
      char notify[64] = "";
      notify_text(smtpout_result_dsn_notify(r), notify, sizeof(notify));
      json_object_begin(&j);
      json_key(&j, "notify");
      json_string(&j, notify[0] ? notify : NULL);
      json_key(&j, "sent");
      json_bool(&j, smtpout_result_dsn_sent(r));
      json_key(&j, "action");
      json_string(&j, smtpout_dsn_action_name(smtpout_result_dsn_action(r)));
      json_object_end(&j);
    } else {
      json_null(&j);
    }
    json_object_end(&j);
  }
  json_array_end(&j);
  if (routed(setup)) {
    json_key(&j, "tlsrpt_events_lost");
    json_int(&j, smtpout_delivery_tlsrpt_events_lost(d));
  }
  json_object_end(&j);
  fputc('\n', stdout);
}

/* "route      secure.test: MX mx1.secure.test (10), mx2.secure.test (20);
 * DNSSEC secure; MTA-STS enforce (id 2024)" */
static void print_route_line(const struct send_setup *setup,
                             const smtpout_route *r)
{
  printf("%-10s ", "route");
  if (r == NULL) {
    print_safe(setup->relay ? setup->relay : setup->domain);
    fputs(": not resolved\n", stdout);
    return;
  }
  print_safe(smtpout_route_domain(r));
  fputs(": ", stdout);
  size_t n = smtpout_route_mx_count(r);
  if (smtpout_route_implicit_mx(r))
    fputs("no MX records, the domain itself (implicit MX)", stdout);
  else if (n == 0)
    fputs("no MX host", stdout);
  else
    fputs("MX ", stdout);
  for (size_t i = 0; i < n && !smtpout_route_implicit_mx(r); i++) {
    printf("%s", i ? ", " : "");
    print_safe(smtpout_route_mx_name(r, i));
    printf(" (%d)", smtpout_route_mx_preference(r, i));
  }
  const char *dnssec = smtpout_dnssec_name(smtpout_route_dnssec(r));
  printf("; DNSSEC %s; MTA-STS ", dnssec ? dnssec : "unknown");
  paint(setup, SGR_BOLD);
  fputs(smtpout_sts_mode_name(smtpout_route_sts_mode(r)), stdout);
  paint_end(setup);
  if (smtpout_route_sts_id(r)[0]) {
    fputs(" (id ", stdout);
    print_safe(smtpout_route_sts_id(r));
    putchar(')');
  }
  putchar('\n');
}

/* "policy  starttls = require (policy.ini:5), allow-invalid-certs = false
 * (default)" */
static void print_policy_line(const struct send_setup *setup,
                              const struct knob_view *st,
                              const struct knob_view *ai)
{
  printf("%-10s starttls = ", "policy");
  paint(setup, SGR_BOLD);
  fputs(smtpout_starttls_name(st->value), stdout);
  paint_end(setup);
  fputs(" (", stdout);
  print_safe(st->source);
  fputs("), allow-invalid-certs = ", stdout);
  paint(setup, SGR_BOLD);
  fputs(ai->value ? "true" : "false", stdout);
  paint_end(setup);
  fputs(" (", stdout);
  print_safe(ai->source);
  fputs(")\n", stdout);
}

/* One line per connection: where, and what TLS (and AUTH) it had. */
static void print_attempt_line(const struct send_setup *setup,
                               const struct send_options *o,
                               const smtpout_attempt *a)
{
  const smtpout_tls_info *ti = smtpout_attempt_tls_info(a);
  const char *err = smtpout_attempt_error(a);
  printf("%-10s ", "tls");
  if (routed(setup)) {
    /* mx1.example.org[192.0.2.1:25] (dane) */
    print_safe(smtpout_attempt_mx(a));
    putchar('[');
    print_safe(smtpout_attempt_address(a));
    printf("] (%s)", smtpout_tls_requirement_name(
                         smtpout_attempt_tls_requirement(a)));
  } else {
    print_safe(smtpout_attempt_address(a));
  }
  fputs("  ", stdout);
  if (smtpout_tls_info_used(ti)) {
    int ok = smtpout_tls_info_verified(ti);
    paint(setup, ok ? SGR_GREEN : SGR_YELLOW);
    printf("%s%s %s, certificate %s",
           smtpout_tls_info_implicit(ti) ? "implicit " : "",
           smtpout_tls_info_version(ti), smtpout_tls_info_cipher(ti),
           ok ? "verified" : "NOT verified");
    if (routed(setup))
      printf(" (%s)", smtpout_tls_auth_name(smtpout_tls_info_auth(ti)));
    if (!ok && smtpout_tls_info_verify_error(ti)) {
      fputs(": ", stdout);
      print_safe(smtpout_tls_info_verify_error(ti));
    }
    if (smtpout_tls_info_client_certificate(ti))
      fputs(", client certificate sent", stdout);
    paint_end(setup);
  } else {
    static const char *const why[] = {
      [SMTPOUT_TLS_OUTCOME_NONE] = "the connection ended first",
      [SMTPOUT_TLS_OUTCOME_DISABLED] = "disabled by the policy",
      [SMTPOUT_TLS_OUTCOME_NOT_OFFERED] = "STARTTLS not offered",
      [SMTPOUT_TLS_OUTCOME_REFUSED] = "STARTTLS refused",
      [SMTPOUT_TLS_OUTCOME_HANDSHAKE_FAILED] = "handshake failed",
      [SMTPOUT_TLS_OUTCOME_OK] = "",
    };
    int outcome = smtpout_tls_info_outcome(ti);
    paint(setup, err ? SGR_RED : SGR_YELLOW);
    printf("no TLS: %s", smtpout_attempt_plaintext_fallback(a)
                           ? "plaintext fallback after the failed handshake"
                           : why[outcome]);
    paint_end(setup);
  }
  if (o->auth_user ||
      (setup->relay &&
       smtpout_attempt_auth_outcome(a) != SMTPOUT_AUTH_OUTCOME_NONE)) {
    int ao = smtpout_attempt_auth_outcome(a);
    const char *mech = smtpout_attempt_auth_mechanism(a);
    fputs(", AUTH", stdout);
    if (mech)
      printf(" %s", mech);
    printf(" %s", smtpout_auth_outcome_name(ao));
  }
  if (err) {
    fputs(" - ", stdout);
    paint(setup, SGR_RED);
    print_safe(err);
    paint_end(setup);
  }
  putchar('\n');
}

static void print_text(const struct send_setup *setup,
                       const struct send_options *o,
                       const smtpout_delivery *d)
{
  struct knob_view st, ai;
  policy_of(setup, d, &st, &ai);
  if (routed(setup))
    print_route_line(setup, smtpout_delivery_route(d));
  print_policy_line(setup, &st, &ai);
  for (size_t i = 0; i < smtpout_delivery_attempt_count(d); i++)
    print_attempt_line(setup, o, smtpout_delivery_attempt(d, i));

  size_t n = smtpout_delivery_recipient_count(d), width = 0;
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(smtpout_result_recipient(smtpout_delivery_result(d, i)));
    if (len > width)
      width = len;
  }
  if (width > 40)
    width = 40;
  size_t count[4] = {0};
  for (size_t i = 0; i < n; i++) {
    const smtpout_result *r = smtpout_delivery_result(d, i);
    int status = smtpout_result_status(r);
    count[status & 3]++;
    paint(setup, status == SMTPOUT_STATUS_DELIVERED  ? SGR_GREEN
                 : status == SMTPOUT_STATUS_DEFERRED ? SGR_YELLOW
                                                     : SGR_RED);
    printf("%-10s", smtpout_status_name(status));
    paint_end(setup);
    putchar(' ');
    const char *rcpt = smtpout_result_recipient(r);
    print_safe(rcpt);
    printf("%*s  ", (int)(width > strlen(rcpt) ? width - strlen(rcpt) : 0),
           "");
    if (smtpout_result_code(r))
      printf("%d", smtpout_result_code(r));
    else
      fputs("---", stdout);
    printf(" %-7s ",
           smtpout_result_enhanced(r)[0] ? smtpout_result_enhanced(r) : "-");
    print_safe(smtpout_result_text(r));
    if (smtpout_result_possibly_delivered(r))
      fputs(" (possibly delivered: the end of data was sent, no reply came)",
            stdout);
    if (o->dsn && smtpout_result_dsn_action(r) != SMTPOUT_DSN_ACTION_NONE)
      printf(" (DSN: a %s notice is owed to the sender)",
             smtpout_dsn_action_name(smtpout_result_dsn_action(r)));
    putchar('\n');
  }
  if (n > 1)
    printf("%zu delivered, %zu deferred, %zu bounced\n",
           count[SMTPOUT_STATUS_DELIVERED], count[SMTPOUT_STATUS_DEFERRED],
           count[SMTPOUT_STATUS_BOUNCED]);
}

/* ------------------------------------------------------------------ */

static int deliver(const struct send_setup *setup,
                   const struct send_options *o)
{
  const char *from = o->from, *data = o->data;
  const char *const *to = o->to;
  size_t nto = o->nto;
  int ex = EX_NOINPUT_, rv;
  smtpout_delivery *d = NULL;
  int fd = open_body(data);
  if (fd < 0) {
    fprintf(stderr, "smtpout-send: cannot read message %s: %s\n",
            data ? data : "from standard input", strerror(errno));
    return ex;
  }
  ex = EX_SOFTWARE_;
  if ((rv = smtpout_delivery_new(&d, setup->config)) != 0) {
    fprintf(stderr, "smtpout-send: %s\n", smtpout_strerror(rv));
    goto out;
  }
  if (setup->helo &&
      smtpout_delivery_set_helo_name(d, setup->helo) == SMTPOUT_ERR_BAD_NAME) {
    fprintf(stderr, "smtpout-send: bad --helo name \"%s\"\n", setup->helo);
    ex = EX_USAGE_;
    goto out;
  }
  if (setup->relay) {
    rv = smtpout_delivery_set_relay(d, setup->relay);
    if (rv == SMTPOUT_ERR_INVALID_ARGUMENT) {
      fprintf(stderr, "smtpout-send: --config has no [relay \"%s\"]\n",
              setup->relay);
      ex = EX_USAGE_;
      goto out;
    }
  }
  if (routed(setup)) {
    if (setup->domain)
      rv = smtpout_delivery_set_domain(d, setup->domain);
    if (rv == 0 && setup->resolvers &&
        smtpout_delivery_set_resolver(d, setup->resolvers) != 0) {
      fprintf(stderr, "smtpout-send: bad --resolver \"%s\" (numeric "
                      "addresses with an optional port: 127.0.0.1:53, "
                      "[::1]:53)\n", setup->resolvers);
      ex = EX_USAGE_;
      goto out;
    }
    if (rv == 0 && setup->dnssec >= 0 &&
        smtpout_delivery_set_dnssec_mode(d, setup->dnssec) != 0) {
      fputs("smtpout-send: --dnssec validate needs a build with libunbound\n",
            stderr);
      ex = EX_USAGE_;
      goto out;
    }
    if (rv == 0)
      rv = smtpout_delivery_set_route_flags(d, setup->route_flags);
  } else {
    rv = smtpout_delivery_set_server(d, setup->host, setup->port);
    if (rv == 0)
      rv = smtpout_delivery_set_mx_name(d, setup->mx);
    if (rv == 0 && setup->fixed)
      rv = smtpout_delivery_set_tls_policy(d, setup->starttls.value,
                                           setup->allow_invalid_certs.value);
  }
  if (rv == 0 && setup->ca_file)
    rv = smtpout_delivery_set_ca_file(d, setup->ca_file);
  for (int w = 0; rv == 0 && w < SMTPOUT_TIMEOUT_COUNT; w++)
    rv = smtpout_delivery_set_timeout(d, w, setup->timeouts[w].ms);
  if (rv == 0)
    rv = smtpout_delivery_set_sender(d, from);
  for (size_t i = 0; rv == 0 && i < nto; i++)
    rv = smtpout_delivery_add_recipient(d, to[i]);
  if (rv == 0)
    rv = smtpout_delivery_set_body_fd(d, fd);
  if (rv == 0 && o->smtputf8)
    rv = smtpout_delivery_set_flags(d, SMTPOUT_MESSAGE_SMTPUTF8);
  if (rv == 0 && setup->implicit_tls)
    rv = smtpout_delivery_set_implicit_tls(d, 1);
  if (rv == 0 && setup->client_cert)
    rv = smtpout_delivery_set_client_cert(d, setup->client_cert,
                                          setup->client_key);
  if (rv == SMTPOUT_ERR_TLS_SETUP) {
    fprintf(stderr, "smtpout-send: cannot use --client-cert %s with "
                    "--client-key %s (not PEM, or a key that is not the "
                    "certificate's)\n",
            setup->client_cert, setup->client_key);
    ex = EX_NOINPUT_;
    goto out;
  }
  if (rv == 0 && o->auth_user) {
    rv = smtpout_delivery_set_auth(d, o->auth_mech, o->auth_user,
                                   o->password,
                                   o->auth_tls_any ? SMTPOUT_AUTH_TLS_ANY : 0);
    if (rv == SMTPOUT_ERR_INVALID_ARGUMENT) {
      fprintf(stderr, "smtpout-send: bad --auth-mech \"%s\" (accepted: "
                      "SCRAM-SHA-256-PLUS, SCRAM-SHA-256, PLAIN, LOGIN, "
                      "XOAUTH2; SCRAM needs a build with GNU SASL), or a "
                      "user name or password over 255 or 8192 bytes\n",
              o->auth_mech ? o->auth_mech : "");
      ex = EX_USAGE_;
      goto out;
    }
  }
  if (rv == 0 && o->no_chunking)
    rv = smtpout_delivery_set_chunking(d, 0);
  if (rv == 0 && o->dsn)
    rv = smtpout_delivery_set_dsn(d, o->dsn);
  if (rv == 0 && setup->verbose)
    rv = smtpout_delivery_set_trace(d, trace_line, NULL);
  if (rv == 0)
    rv = smtpout_delivery_run(d);
  if (rv == SMTPOUT_ERR_BAD_NAME) {
    if (setup->domain)
      fprintf(stderr, "smtpout-send: bad --domain \"%s\"\n", setup->domain);
    else
      fprintf(stderr, "smtpout-send: bad MX name \"%s\"\n", setup->mx);
    ex = EX_USAGE_;
    goto out;
  }
  if (rv == SMTPOUT_ERR_IO) {
    fprintf(stderr, "smtpout-send: cannot read message %s\n",
            data ? data : "from standard input");
    ex = EX_NOINPUT_;
    goto out;
  }
  if (rv != 0) {
    fprintf(stderr, "smtpout-send: %s\n", smtpout_strerror(rv));
    goto out;
  }

  if (setup->json)
    print_json(setup, o, d);
  else
    print_text(setup, o, d);

  int deferred = 0, bounced = 0;
  for (size_t i = 0; i < smtpout_delivery_recipient_count(d); i++) {
    int st = smtpout_result_status(smtpout_delivery_result(d, i));
    deferred |= st == SMTPOUT_STATUS_DEFERRED;
    bounced |= st == SMTPOUT_STATUS_BOUNCED;
  }
  ex = deferred ? EX_TEMPFAIL_ : bounced ? EX_UNAVAILABLE_ : EX_OK_;
out:
  smtpout_delivery_free(d);
  close(fd);
  return ex;
}

static int use_colour(void)
{
  const char *no = getenv("NO_COLOR"), *term = getenv("TERM");
  return isatty(STDOUT_FILENO) && (no == NULL || no[0] == '\0') &&
         (term == NULL || strcmp(term, "dumb") != 0);
}

int main(int argc, char **argv)
{
  enum {
    O_STARTTLS = 256, O_ALLOW_INVALID, O_TIMEOUT, O_PROBE, O_VERSION,
    O_DOMAIN, O_RELAY, O_RESOLVER, O_DNSSEC, O_REQUIRETLS, O_TLS_REQUIRED_NO,
    O_IMPLICIT_TLS, O_CLIENT_CERT, O_CLIENT_KEY, O_AUTH_USER, O_AUTH_PWFILE,
    O_AUTH_MECH, O_AUTH_TLS, O_NOTIFY, O_RET, O_ENVID, O_ORCPT, O_NO_CHUNKING
  };
  static const struct option opts[] = {
    {"server", required_argument, NULL, 's'},
    {"domain", required_argument, NULL, O_DOMAIN},
    {"relay", required_argument, NULL, O_RELAY},
    {"resolver", required_argument, NULL, O_RESOLVER},
    {"dnssec", required_argument, NULL, O_DNSSEC},
    {"requiretls", no_argument, NULL, O_REQUIRETLS},
    {"tls-required-no", no_argument, NULL, O_TLS_REQUIRED_NO},
    {"mx-name", required_argument, NULL, 'm'},
    {"from", required_argument, NULL, 'f'},
    {"to", required_argument, NULL, 't'},
    {"data", required_argument, NULL, 'd'},
    {"config", required_argument, NULL, 'c'},
    {"ca-file", required_argument, NULL, 'C'},
    {"helo", required_argument, NULL, 'H'},
    {"smtputf8", no_argument, NULL, 'U'},
    {"starttls", required_argument, NULL, O_STARTTLS},
    {"allow-invalid-certs", no_argument, NULL, O_ALLOW_INVALID},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"probe", no_argument, NULL, O_PROBE},
    {"implicit-tls", no_argument, NULL, O_IMPLICIT_TLS},
    {"client-cert", required_argument, NULL, O_CLIENT_CERT},
    {"client-key", required_argument, NULL, O_CLIENT_KEY},
    {"auth-user", required_argument, NULL, O_AUTH_USER},
    {"auth-password-file", required_argument, NULL, O_AUTH_PWFILE},
    {"auth-mech", required_argument, NULL, O_AUTH_MECH},
    {"auth-tls", required_argument, NULL, O_AUTH_TLS},
    {"notify", required_argument, NULL, O_NOTIFY},
    {"ret", required_argument, NULL, O_RET},
    {"envid", required_argument, NULL, O_ENVID},
    {"orcpt", required_argument, NULL, O_ORCPT},
    {"no-chunking", no_argument, NULL, O_NO_CHUNKING},
    {"json", no_argument, NULL, 'j'},
    {"verbose", no_argument, NULL, 'v'},
    {"version", no_argument, NULL, O_VERSION},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  struct send_setup setup = {.dnssec = -1};
  const char *from = NULL, *data = NULL, *config_path = NULL;
  const char *starttls_arg = NULL, *timeout_arg = NULL, *dnssec_arg = NULL;
  const char **to = calloc((size_t)argc, sizeof(*to));
  /* --resolver values, joined by spaces (at most argc of them). */
  size_t resolvers_len = 1;
  for (int i = 1; i < argc; i++)
    resolvers_len += strlen(argv[i]) + 1;
  char *resolvers = calloc(resolvers_len, 1);
  int route_options = 0;
  /* --orcpt of each --to (NULL: none), and the one waiting for its --to. */
  const char **orcpt = calloc((size_t)argc, sizeof(*orcpt));
  const char *orcpt_next = NULL;
  const char *pwfile = NULL, *auth_tls = NULL, *notify_arg = NULL;
  const char *ret_arg = NULL, *envid = NULL;
  /* The password, read from its file: wiped on every way out. */
  static char password[8192 + 2];
  struct send_options o = {0};
  size_t nto = 0;
  int smtputf8 = 0, allow_invalid = 0, probe = 0, c, rv;
  uint32_t timeout_ms = 0;
  /* Everything below is released at `out`, on every path: the tool runs
   * under valgrind in the tests, leaks on error paths included. */
  int ex = EX_SOFTWARE_;

  if (to == NULL || resolvers == NULL || orcpt == NULL) {
    free(to);
    free(resolvers);
    free(orcpt);
    return EX_SOFTWARE_;
  }
  while ((c = getopt_long(argc, argv, "s:m:f:t:d:c:C:H:Ujvh", opts, NULL)) !=
         -1) {
    switch (c) {
    case 's': setup.server = optarg; break;
    case O_DOMAIN: setup.domain = optarg; break;
    case O_RELAY: setup.relay = optarg; break;
    case O_RESOLVER:
      if (resolvers[0])
        strcat(resolvers, " ");
      strcat(resolvers, optarg);
      route_options = 1;
      break;
    case O_DNSSEC: dnssec_arg = optarg; route_options = 1; break;
    case O_REQUIRETLS:
      setup.route_flags |= SMTPOUT_ROUTE_REQUIRETLS;
      route_options = 1;
      break;
    case O_TLS_REQUIRED_NO:
      setup.route_flags |= SMTPOUT_ROUTE_TLS_REQUIRED_NO;
      route_options = 1;
      break;
    case 'm': setup.mx = optarg; break;
    case 'f': from = optarg; break;
    case 't':
      orcpt[nto] = orcpt_next;
      orcpt_next = NULL;
      to[nto++] = optarg;
      break;
    case 'd': data = optarg; break;
    case 'c': config_path = optarg; break;
    case 'C': setup.ca_file = optarg; break;
    case 'H': setup.helo = optarg; break;
    case 'U': smtputf8 = 1; break;
    case O_STARTTLS: starttls_arg = optarg; break;
    case O_ALLOW_INVALID: allow_invalid = 1; break;
    case O_TIMEOUT: timeout_arg = optarg; break;
    case O_PROBE: probe = 1; break;
    case O_IMPLICIT_TLS: setup.implicit_tls = 1; break;
    case O_CLIENT_CERT: setup.client_cert = optarg; break;
    case O_CLIENT_KEY: setup.client_key = optarg; break;
    case O_AUTH_USER: o.auth_user = optarg; break;
    case O_AUTH_PWFILE: pwfile = optarg; break;
    case O_AUTH_MECH: o.auth_mech = optarg; break;
    case O_AUTH_TLS: auth_tls = optarg; break;
    case O_NOTIFY: notify_arg = optarg; break;
    case O_RET: ret_arg = optarg; break;
    case O_ENVID: envid = optarg; break;
    case O_ORCPT: orcpt_next = optarg; break;
    case O_NO_CHUNKING: o.no_chunking = 1; break;
    case 'j': setup.json = 1; break;
    case 'v': setup.verbose = 1; break;
    case O_VERSION:
      printf("smtpout-send %s\n", smtpout_version());
      ex = EX_OK_;
      goto out;
    case 'h': usage(stdout); ex = EX_OK_; goto out;
    default: usage(stderr); ex = EX_USAGE_; goto out;
    }
  }
  ex = EX_USAGE_;
  if (optind != argc ||
      (setup.server != NULL) + (setup.domain != NULL) +
              (setup.relay != NULL) != 1 ||
      (!probe && (from == NULL || nto == 0))) {
    usage(stderr);
    goto out;
  }
  if (setup.relay &&
      (probe || setup.mx || starttls_arg || allow_invalid ||
       setup.implicit_tls || setup.client_cert || setup.client_key ||
       o.auth_user || pwfile || o.auth_mech || auth_tls || !config_path)) {
    /* The relay's section says where, how (implicit TLS, the TLS knobs)
     * and with which credentials: an option saying it again could only
     * contradict it. */
    fputs("smtpout-send: --relay needs --config, and does not go with "
          "--probe, --mx-name, --starttls, --allow-invalid-certs, "
          "--implicit-tls, --client-cert, --client-key or --auth-*: the "
          "relay's section sets them\n", stderr);
    goto out;
  }
  if (setup.domain &&
      (probe || setup.mx || starttls_arg || allow_invalid)) {
    /* A route gives each hop its MX name and its TLS requirement (DANE,
     * MTA-STS, the configuration's rules for that MX): one name or policy
     * for all of them would contradict it. */
    fputs("smtpout-send: --domain does not go with --probe, --mx-name, "
          "--starttls or --allow-invalid-certs: the policy comes from "
          "--config and the DNS\n", stderr);
    goto out;
  }
  if (!routed(&setup) && route_options) {
    fputs("smtpout-send: --resolver, --dnssec, --requiretls and "
          "--tls-required-no need --domain or --relay\n", stderr);
    goto out;
  }
  if (dnssec_arg) {
    static const char *const modes[] = {"trust-ad", "validate", "off"};
    for (int m = 0; m < 3; m++)
      if (strcmp(dnssec_arg, modes[m]) == 0)
        setup.dnssec = m; /* enum smtpout_dnssec_mode's order */
    if (setup.dnssec < 0) {
      fprintf(stderr, "smtpout-send: bad --dnssec \"%s\" (accepted: "
                      "trust-ad, validate, off)\n", dnssec_arg);
      goto out;
    }
  }
  setup.resolvers = resolvers[0] ? resolvers : NULL;
  for (size_t i = 0; setup.domain && i < nto; i++) {
    /* Each recipient goes through the route's MX hosts: one of another
     * domain would be sent to the wrong ones. */
    const char *at = strrchr(to[i], '@');
    size_t dl = strlen(setup.domain);
    if (dl > 1 && setup.domain[dl - 1] == '.')
      dl--;
    if (at && smtpout_address_check(to[i]) == 0 &&
        (strlen(at + 1) != dl || strncasecmp(at + 1, setup.domain, dl) != 0)) {
      fprintf(stderr, "smtpout-send: --to %s is not in --domain %s\n", to[i],
              setup.domain);
      goto out;
    }
  }
  if (probe && (from || data || smtputf8 || o.auth_user || pwfile ||
                notify_arg || ret_arg || envid || orcpt_next ||
                o.no_chunking)) {
    fputs("smtpout-send: --probe sends no message: --from, --data, "
          "--smtputf8, --auth-*, --notify, --ret, --envid, --orcpt and "
          "--no-chunking do not go with it\n",
          stderr);
    goto out;
  }
  if (orcpt_next) {
    fputs("smtpout-send: --orcpt names the original recipient of the --to "
          "that follows it: give it before that --to\n", stderr);
    goto out;
  }
  if (!o.auth_user != !pwfile) {
    fputs("smtpout-send: --auth-user and --auth-password-file go "
          "together\n", stderr);
    goto out;
  }
  if ((o.auth_mech || auth_tls) && !o.auth_user) {
    fputs("smtpout-send: --auth-mech and --auth-tls need --auth-user\n",
          stderr);
    goto out;
  }
  if (auth_tls && strcmp(auth_tls, "any") != 0 &&
      strcmp(auth_tls, "verified") != 0) {
    fprintf(stderr, "smtpout-send: bad --auth-tls \"%s\" (accepted: "
                    "verified, any)\n", auth_tls);
    goto out;
  }
  o.auth_tls_any = auth_tls && strcmp(auth_tls, "any") == 0;
  if (!setup.client_cert != !setup.client_key) {
    fputs("smtpout-send: --client-cert and --client-key go together\n",
          stderr);
    goto out;
  }
  if (o.auth_user && starttls_arg && strcmp(starttls_arg, "disable") == 0) {
    fputs("smtpout-send: credentials are never sent in clear: --starttls "
          "disable does not go with --auth-user\n", stderr);
    goto out;
  }
  if (notify_arg || ret_arg || envid) {
    uint32_t notify = notify_arg ? parse_notify(notify_arg) : 0;
    if (notify_arg && notify == 0) {
      fprintf(stderr, "smtpout-send: bad --notify \"%s\" (SUCCESS, FAILURE "
                      "and DELAY, comma-separated, or NEVER alone)\n",
              notify_arg);
      goto out;
    }
    int ret = SMTPOUT_DSN_RET_NONE;
    if (ret_arg && strcasecmp(ret_arg, "FULL") == 0)
      ret = SMTPOUT_DSN_RET_FULL;
    else if (ret_arg && strcasecmp(ret_arg, "HDRS") == 0)
      ret = SMTPOUT_DSN_RET_HDRS;
    else if (ret_arg) {
      fprintf(stderr, "smtpout-send: bad --ret \"%s\" (accepted: FULL, "
                      "HDRS)\n", ret_arg);
      goto out;
    }
    if (smtpout_dsn_new(&o.dsn) != 0) {
      ex = EX_SOFTWARE_;
      goto out;
    }
    smtpout_dsn_set_ret(o.dsn, ret);
    if (envid && smtpout_dsn_set_envid(o.dsn, envid) != 0) {
      fprintf(stderr, "smtpout-send: bad --envid \"%s\" (1 to 100 "
                      "printable ASCII characters)\n", envid);
      goto out;
    }
    for (size_t i = 0; i < nto && notify; i++)
      smtpout_dsn_set_notify(o.dsn, i, notify);
  }
  for (size_t i = 0; i < nto; i++) {
    if (orcpt[i] == NULL)
      continue;
    if (o.dsn == NULL && smtpout_dsn_new(&o.dsn) != 0) {
      ex = EX_SOFTWARE_;
      goto out;
    }
    if (smtpout_dsn_set_orcpt(o.dsn, i, orcpt[i]) != 0) {
      fprintf(stderr, "smtpout-send: bad --orcpt \"%s\" (TYPE;ADDRESS, "
                      "e.g. rfc822;user@example.org: printable ASCII, at "
                      "most 500 characters encoded)\n", orcpt[i]);
      goto out;
    }
  }
  /* Said at once: waiting silently for a message to be typed, and sending
   * an empty one at Ctrl-D, helps nobody. */
  if (!probe && data == NULL && isatty(STDIN_FILENO)) {
    fputs("smtpout-send: no message: give --data FILE, or --data - to "
          "type it on the terminal\n",
          stderr);
    goto out;
  }
  if (from && from[0] != '\0' && smtpout_address_check(from) != 0) {
    fprintf(stderr, "smtpout-send: bad sender address\n");
    goto out;
  }
  if (setup.server &&
      parse_server(setup.server, &setup.host, &setup.port) != 0) {
    fprintf(stderr, "smtpout-send: bad --server \"%s\" (HOST[:PORT])\n",
            setup.server);
    goto out;
  }
  if (setup.mx == NULL && setup.server)
    setup.mx = setup.host;
  int starttls = -1;
  if (starttls_arg && parse_starttls(starttls_arg, &starttls) != 0) {
    fprintf(stderr, "smtpout-send: bad --starttls \"%s\" (accepted: "
                    "optional, require, disable)\n", starttls_arg);
    goto out;
  }
  const char *why;
  if (timeout_arg && parse_duration(timeout_arg, &timeout_ms, &why) != 0) {
    fprintf(stderr, "smtpout-send: bad --timeout \"%s\": %s\n", timeout_arg,
            why);
    goto out;
  }
  if (setup.ca_file && check_ca_file(setup.ca_file) != 0) {
    ex = EX_NOINPUT_;
    goto out;
  }
  if (setup.client_cert &&
      (check_readable("--client-cert", setup.client_cert) != 0 ||
       check_readable("--client-key", setup.client_key) != 0)) {
    ex = EX_NOINPUT_;
    goto out;
  }
  if (pwfile) {
    if (read_password(pwfile, password, sizeof(password)) != 0) {
      ex = EX_NOINPUT_;
      goto out;
    }
    o.password = password;
  }

  if (config_path) {
    char err[4096];
    rv = smtpout_config_load_file(&setup.config, config_path, err,
                                  sizeof(err));
    if (rv != 0) {
      fprintf(stderr, "%s", err);
      if (err[0] && err[strlen(err) - 1] != '\n')
        fputc('\n', stderr);
      ex = EX_CONFIG_;
      goto out;
    }
  } else if ((rv = smtpout_config_new(&setup.config)) != 0) {
    fprintf(stderr, "smtpout-send: %s\n", smtpout_strerror(rv));
    ex = EX_SOFTWARE_;
    goto out;
  }

  /* In route mode the delivery reports the policy it resolved. */
  rv = routed(&setup) ? 0 : resolve_policy(&setup, to, nto);
  if (rv == SMTPOUT_ERR_BAD_NAME) {
    fprintf(stderr, "smtpout-send: bad MX name \"%s\"\n", setup.mx);
    goto out;
  }
  if (rv != 0) {
    fprintf(stderr, "smtpout-send: %s\n", smtpout_strerror(rv));
    ex = EX_SOFTWARE_;
    goto out;
  }
  if (starttls >= 0) {
    setup.starttls.value = starttls;
    snprintf(setup.starttls.source, sizeof(setup.starttls.source),
             "--starttls");
    setup.fixed = 1;
  }
  if (allow_invalid) {
    setup.allow_invalid_certs.value = 1;
    snprintf(setup.allow_invalid_certs.source,
             sizeof(setup.allow_invalid_certs.source),
             "--allow-invalid-certs");
    setup.fixed = 1;
  }
  /* Credentials make optional require, as the delivery will. */
  if (o.auth_user && setup.starttls.value == SMTPOUT_STARTTLS_OPTIONAL) {
    setup.starttls.value = SMTPOUT_STARTTLS_REQUIRE;
    snprintf(setup.starttls.source, sizeof(setup.starttls.source), "%s",
             setup.fixed ? "--auth-user" : "auth");
  }
  choose_timeouts(&setup, config_path, timeout_ms);
  if (setup.verbose)
    note_timeouts(&setup);
  setup.colour = !setup.json && use_colour();

  if (probe) {
    ex = probe_run(&setup);
  } else {
    o.from = from;
    o.to = to;
    o.nto = nto;
    o.data = data;
    o.smtputf8 = smtputf8;
    ex = deliver(&setup, &o);
  }

out:
  explicit_bzero(password, sizeof(password));
  smtpout_dsn_free(o.dsn);
  smtpout_config_unref(setup.config);
  free(setup.host);
  free(to);
  free(resolvers);
  free(orcpt);
  return ex;
}
