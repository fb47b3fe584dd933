/*
 * send.h — what smtpout-send's two modes share: the delivery
 * (smtpout-send.c) and the probe (probe.c).
 */
#ifndef SMTPOUT_EXAMPLES_SEND_H
#define SMTPOUT_EXAMPLES_SEND_H

#include <stdint.h>
#include <stdio.h>

#include <smtpout/smtpout.h>

enum {
  EX_OK_ = 0,
  EX_USAGE_ = 64,
  EX_NOINPUT_ = 66,
  EX_UNAVAILABLE_ = 69,
  EX_SOFTWARE_ = 70,
  EX_TEMPFAIL_ = 75,
  EX_CONFIG_ = 78
};

/* One knob of the policy as the tool reports it: its value and what
 * decided it ("FILE:LINE", "default", or the option that set it). */
struct knob_view {
  int value;
  char source[256];
};

/* The timeout of one phase and where it came from. */
struct timeout_view {
  uint32_t ms;
  char source[256];
};

/* Everything the command line decided, for either mode. */
struct send_setup {
  const char *server; /* as given: HOST[:PORT] */
  /* --domain: route mode (the MX hosts of DOMAIN) instead of --server. */
  const char *domain;
  /* --relay: route mode through [relay "NAME"] of the configuration. */
  const char *relay;
  const char *resolvers; /* --resolver, space-separated; NULL: config */
  int dnssec;            /* --dnssec, enum smtpout_dnssec_mode; -1 */
  uint32_t route_flags;  /* --requiretls, --tls-required-no */
  char *host;
  uint16_t port;
  const char *mx; /* --mx-name, else the host */
  smtpout_config *config;
  const char *ca_file;
  const char *helo;
  /* The policy: resolved from the configuration, with any knob an option
   * set replaced.  `fixed` says an option set one: the delivery then
   * enforces this policy instead of resolving its own. */
  struct knob_view starttls, allow_invalid_certs;
  int fixed;
  struct timeout_view timeouts[SMTPOUT_TIMEOUT_COUNT];
  int json, verbose, colour;
  /* TLS from the first byte (--implicit-tls), and the client certificate
   * (--client-cert, --client-key). */
  int implicit_tls;
  const char *client_cert, *client_key;
};

/* SGR sequences for the human output. */
#define SGR_RESET "\033[0m"
#define SGR_BOLD "\033[1m"
#define SGR_RED "\033[31m"
#define SGR_GREEN "\033[32m"
#define SGR_YELLOW "\033[33m"

/* Starts colour `sgr` on stdout when colour is on (end it with
 * paint_end()). */
void paint(const struct send_setup *setup, const char *sgr);
void paint_end(const struct send_setup *setup);

/* Writes `s` to stdout with control characters as \xHH: a server's text or
 * an argument must not drive the terminal. */
void print_safe(const char *s);

/* "30s", "5m", "1500ms". */
void format_duration(char *out, size_t outlen, uint32_t ms);

/* The SMTP conversation on stderr (--verbose). */
void trace_line(smtpout_session *s, int dir, const char *line, size_t len,
                void *ud);

/* Connects, greets, secures and quits without a mail transaction, then
 * reports the TLS the server offered (probe.c).  Returns the exit
 * status. */
int probe_run(const struct send_setup *setup);

#endif
