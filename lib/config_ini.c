/*
 * config_ini.c — the INI configuration, read with the system's inih.
 *
 * inih's handler gets no line number, and Debian's inih 55 silently
 * reshapes some input: a line over 199 characters is split and its tail
 * parsed as a line of its own, a section name is cut at 49 characters.
 * So inih reads through our own ini_reader, which sees every raw line
 * first.  The reader
 *   - counts lines (it hands inih exactly one line per call, so the line
 *     the handler is called for is the last one read);
 *   - refuses over-long lines and section names before inih can cut them;
 *   - reports lines inih would reject (no "=", no "]") itself, so that
 *     every bad line is reported, not only the first;
 *   - handles comments and indented continuation lines itself and hands
 *     inih only trimmed "[section]" and "key = value" lines.
 * The last point also makes the result independent of inih's
 * process-wide settings (Debian's ini.h exposes ini_allow_multiline,
 * ini_max_line, ... as globals a host may change; smtpout never writes
 * them): what reaches inih parses the same way under any of them.
 */
#include <ctype.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <errno.h>

#include "config_impl_int.h"
#include "resolve_int.h"

/* Debian's inih 55 reads lines into a 200-byte buffer (INI_MAX_LINE):
 * room for 198 characters, the newline and the NUL. */
#define LINE_MAX_CHARS 198
/* inih keeps section names in a 50-byte buffer (MAX_SECTION). */
#define SECTION_MAX_CHARS 49
/* Longest key name kept for continuation lines (inih: MAX_NAME 50). */
#define KEY_MAX_CHARS 49

enum section {
  SEC_NONE,     /* before the first section header */
  SEC_SKIP,     /* after a rejected header: its keys are not checked */
  SEC_OUTBOUND, /* [queue.outbound] */
  SEC_TLS,      /* [queue.outbound.tls] */
  SEC_TIMEOUTS, /* [queue.outbound.timeouts] */
  SEC_DNS,      /* [queue.outbound.dns] */
  SEC_STS,      /* [queue.outbound.mta-sts] */
  SEC_RPT,      /* [queue.outbound.tls-rpt] */
  SEC_DEST,     /* [destination "label"] */
  SEC_RELAY     /* [relay "label"] */
};

static const char *const outbound_keys[] = {
  "hostname", "smtp-port", "mx-address-limit", "mx-session-limit",
  "address-preference", "relay", "chunking",
};
enum { OKEY_HOSTNAME, OKEY_SMTP_PORT, OKEY_ADDRESS_LIMIT,
       OKEY_SESSION_LIMIT, OKEY_ADDRESS_PREFERENCE, OKEY_RELAY,
       OKEY_CHUNKING };

static const char *const tls_keys[] = {
  "starttls", "allow-invalid-certs", "ca-file", "priority", "policy-map",
  "dane", "mta-sts",
};
enum { KEY_STARTTLS, KEY_ALLOW, KEY_CA_FILE, KEY_PRIORITY, KEY_POLICY_MAP,
       KEY_DANE, KEY_MTA_STS };

static const char *const sts_keys[] = {
  "cache", "ca-file", "fetch-timeout", "max-size", "failure-backoff",
};
enum { SKEY_CACHE, SKEY_CA_FILE, SKEY_FETCH_TIMEOUT, SKEY_MAX_SIZE,
       SKEY_BACKOFF };

static const char *const rpt_keys[] = {
  "events",
};
enum { TKEY_EVENTS };

static const char *const relay_keys[] = {
  "host", "port", "implicit-tls", "auth-mechanisms", "auth-username",
  "auth-password-file", "auth-tls", "client-cert", "client-key",
  "starttls", "allow-invalid-certs", "dane", "mta-sts",
};
enum { RKEY_HOST, RKEY_PORT, RKEY_IMPLICIT_TLS, RKEY_AUTH_MECHANISMS,
       RKEY_AUTH_USERNAME, RKEY_AUTH_PASSWORD_FILE, RKEY_AUTH_TLS,
       RKEY_CLIENT_CERT, RKEY_CLIENT_KEY, RKEY_STARTTLS, RKEY_ALLOW,
       RKEY_DANE, RKEY_MTA_STS };

static const char *const dns_keys[] = {
  "resolver", "dnssec", "trust-anchor-file", "timeout",
};
enum { NKEY_RESOLVER, NKEY_DNSSEC, NKEY_TRUST_ANCHOR, NKEY_TIMEOUT };

/* Indexed by enum smtpout_timeout. */
static const char *const timeout_keys[SMTPOUT_TIMEOUT_COUNT] = {
  "connect", "greeting", "tls", "ehlo", "mail-from", "rcpt-to", "data",
};

static const char *const dest_keys[] = {
  "domains", "mx", "starttls", "allow-invalid-certs", "dane", "mta-sts",
};
enum { DKEY_DOMAINS, DKEY_MX, DKEY_STARTTLS, DKEY_ALLOW, DKEY_DANE,
       DKEY_MTA_STS };

#define NKEYS(a) (sizeof(a) / sizeof((a)[0]))
#define DEST_NKEYS NKEYS(dest_keys)
#define RELAY_NKEYS NKEYS(relay_keys)

struct ini_pattern {
  int kind;
  uint32_t line;
  char name[NAME_MAX_LEN];
};

/* One [destination "label"] section as written. */
struct ini_dest {
  char *label;
  uint32_t line;
  uint32_t seen[DEST_NKEYS]; /* line of each key, 0 when absent */
  int starttls, allow, dane, mta_sts; /* KNOB_UNSET when absent */
  unsigned bad_patterns;     /* patterns refused (and reported) */
  struct ini_pattern *pats;
  size_t npats, pats_cap;
};

/* One [relay "label"] section as written; its strings are owned here
 * until config_ini_build_relays() hands them to the configuration. */
struct ini_relay {
  struct config_relay r;
  uint32_t seen[RELAY_NKEYS]; /* line of each key, 0 when absent */
};

struct ini_parser {
  struct config_load *ld;
  const char *text;
  size_t len, pos;
  uint32_t lineno;
  enum section sec;
  size_t dest; /* index of the current destination (SEC_DEST) */
  size_t relay; /* index of the current relay (SEC_RELAY) */
  /* The key an indented line continues (inih's "prev_name"). */
  char prev_key[KEY_MAX_CHARS + 1];
  bool have_prev; /* a key line was seen in this section */
  bool prev_ok;   /* ... and it accepts continuation lines */
  /* Line of each global key, 0 while unset: duplicates are errors even
   * when the section is opened twice. */
  uint32_t seen_outbound[NKEYS(outbound_keys)];
  uint32_t seen_tls[NKEYS(tls_keys)];
  uint32_t seen_timeouts[SMTPOUT_TIMEOUT_COUNT];
  uint32_t seen_dns[NKEYS(dns_keys)];
  uint32_t seen_sts[NKEYS(sts_keys)];
  uint32_t seen_rpt[NKEYS(rpt_keys)];
};

#define ERR(p, ...) diag_add(&(p)->ld->diag, (p)->ld->file, (p)->lineno, \
                             __VA_ARGS__)

static void nomem(struct ini_parser *p)
{
  p->ld->fatal = SMTPOUT_ERR_NOMEM;
}

static int find_key(const char *const *keys, size_t n, const char *name)
{
  for (size_t i = 0; i < n; i++) {
    if (strcmp(keys[i], name) == 0)
      return (int)i;
  }
  return -1;
}

static void list_keys(char *out, size_t outlen, const char *const *keys,
                      size_t n)
{
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < n && o < outlen; i++) {
    int w = snprintf(out + o, outlen - o, "%s%s", i ? ", " : "", keys[i]);
    if (w < 0)
      break;
    o += (size_t)w;
  }
}

static const char *section_title(const struct ini_parser *p, char *buf,
                                 size_t len)
{
  switch (p->sec) {
  case SEC_OUTBOUND: return "[queue.outbound]";
  case SEC_TLS: return "[queue.outbound.tls]";
  case SEC_TIMEOUTS: return "[queue.outbound.timeouts]";
  case SEC_DNS: return "[queue.outbound.dns]";
  case SEC_STS: return "[queue.outbound.mta-sts]";
  case SEC_RPT: return "[queue.outbound.tls-rpt]";
  case SEC_DEST:
    snprintf(buf, len, "[destination \"%s\"]", p->ld->dests[p->dest].label);
    return buf;
  case SEC_RELAY:
    snprintf(buf, len, "[relay \"%s\"]", p->ld->relays[p->relay].r.label);
    return buf;
  default: return "";
  }
}

/* Cuts an inline comment (";" after whitespace, as inih does on key
 * lines; on continuation lines too, which Debian's inih does not) and
 * surrounding whitespace. */
static void trim_value(const char **v, size_t *len)
{
  const char *s = *v;
  size_t n = *len;
  for (size_t i = 1; i < n; i++) {
    if (s[i] == ';' && isspace((unsigned char)s[i - 1])) {
      n = i;
      break;
    }
  }
  while (n > 0 && isspace((unsigned char)*s)) {
    s++;
    n--;
  }
  while (n > 0 && isspace((unsigned char)s[n - 1]))
    n--;
  *v = s;
  *len = n;
}

/* Path values are relative to the configuration file's directory. */
static char *resolve_path(const struct config_load *ld, const char *v,
                          size_t len)
{
  size_t dl = v[0] == '/' ? 0 : strlen(ld->dir);
  char *s = malloc(dl + len + 1);
  if (s == NULL)
    return NULL;
  memcpy(s, ld->dir, dl);
  memcpy(s + dl, v, len);
  s[dl + len] = '\0';
  return s;
}

static void set_string(struct ini_parser *p, char **slot, const char *v,
                       size_t len, const char *key, bool is_path)
{
  if (len == 0) {
    ERR(p, "empty value for %s", key);
    return;
  }
  char *s = is_path ? resolve_path(p->ld, v, len) : strndup(v, len);
  if (s == NULL) {
    nomem(p);
    return;
  }
  free(*slot);
  *slot = s;
}

static void set_hostname(struct ini_parser *p, const char *v, size_t len)
{
  char q[QUOTE_MAX + 16], in[1024], name[NAME_MAX_LEN], ip[64];
  value_quote(q, sizeof(q), v, len);
  if (len == 0 || len >= sizeof(in)) {
    ERR(p, "bad value %s for hostname (a host name, e.g. mx.example.org)", q);
    return;
  }
  memcpy(in, v, len);
  in[len] = '\0';
  char *s;
  if (name_ip_literal(in, ip, sizeof(ip))) {
    /* RFC 5321 section 4.1.3: an address literal in EHLO. */
    size_t n = strlen(ip) + 8;
    s = malloc(n);
    if (s != NULL)
      snprintf(s, n, strchr(ip, ':') ? "[IPv6:%s]" : "[%s]", ip);
  } else {
    const char *why = "invalid name";
    int rv = name_normalize_why(in, name, sizeof(name), &why);
    if (rv == SMTPOUT_ERR_NOMEM) {
      nomem(p);
      return;
    }
    if (rv != 0) {
      ERR(p, "bad value %s for hostname: %s", q, why);
      return;
    }
    s = strdup(name);
  }
  if (s == NULL) {
    nomem(p);
    return;
  }
  free(p->ld->cfg->helo_name);
  p->ld->cfg->helo_name = s;
}

/* A knob's value, for [queue.outbound.tls] and [destination]: `key` is
 * KEY_STARTTLS, KEY_ALLOW or KEY_DANE. */
static void parse_knob(struct ini_parser *p, int key, const char *v,
                       size_t len, int *out)
{
  char q[QUOTE_MAX + 16];
  const char *accepted;
  int rv;
  value_unquote(&v, &len);
  switch (key) {
  case KEY_STARTTLS:
    rv = value_starttls(v, len, out);
    accepted = STARTTLS_ACCEPTED;
    break;
  case KEY_DANE:
    rv = value_dane(v, len, out);
    accepted = DANE_ACCEPTED;
    break;
  case KEY_MTA_STS:
    rv = value_mta_sts(v, len, out);
    accepted = MTA_STS_ACCEPTED;
    break;
  default:
    rv = value_bool(v, len, out);
    accepted = BOOL_ACCEPTED;
    break;
  }
  if (rv == 0) {
    if (key == KEY_DANE && *out == SMTPOUT_DANE_REQUIRE &&
        p->ld->dane_require_line == 0) {
      p->ld->dane_require_file = p->ld->file;
      p->ld->dane_require_line = p->lineno;
    }
    return;
  }
  value_quote(q, sizeof(q), v, len);
  ERR(p, "bad value %s for %s (accepted: %s)", q, tls_keys[key], accepted);
  *out = KNOB_UNSET;
}

static void on_tls_key(struct ini_parser *p, int key, const char *v,
                       size_t len)
{
  smtpout_config *cfg = p->ld->cfg;
  struct global_knob *knob = NULL;
  switch (key) {
  case KEY_STARTTLS: knob = &cfg->starttls; break;
  case KEY_ALLOW: knob = &cfg->allow_invalid_certs; break;
  case KEY_DANE: knob = &cfg->dane; break;
  case KEY_MTA_STS: knob = &cfg->mta_sts; break;
  case KEY_CA_FILE:
    value_unquote(&v, &len);
    set_string(p, &cfg->ca_file, v, len, "ca-file", true);
    p->ld->ca_line = p->lineno;
    return;
  case KEY_PRIORITY:
    value_unquote(&v, &len);
    set_string(p, &cfg->tls_priority, v, len, "priority", false);
    p->ld->priority_line = p->lineno;
    return;
  case KEY_POLICY_MAP:
    value_unquote(&v, &len);
    set_string(p, &p->ld->map_path, v, len, "policy-map", true);
    p->ld->map_line = p->lineno;
    return;
  }
  int value;
  parse_knob(p, key, v, len, &value);
  if (value != KNOB_UNSET) {
    knob->value = value;
    knob->line = p->lineno;
  }
}

static void on_timeout_key(struct ini_parser *p, int key, const char *v,
                           size_t len)
{
  char q[QUOTE_MAX + 16];
  const char *why;
  uint32_t ms;
  value_unquote(&v, &len);
  if (value_duration(v, len, &ms, &why) == 0) {
    p->ld->cfg->timeouts[key] = ms;
    p->ld->cfg->timeout_lines[key] = p->lineno;
    return;
  }
  value_quote(q, sizeof(q), v, len);
  ERR(p, "bad value %s for %s: %s", q, timeout_keys[key], why);
}

static void on_outbound_key(struct ini_parser *p, int key, const char *v,
                            size_t len)
{
  struct config_routing *r = &p->ld->cfg->routing;
  char q[QUOTE_MAX + 16];
  uint32_t n;
  if (key == OKEY_HOSTNAME) {
    set_hostname(p, v, len);
    return;
  }
  value_unquote(&v, &len);
  value_quote(q, sizeof(q), v, len);
  switch (key) {
  case OKEY_SMTP_PORT:
    if (value_uint(v, len, 1, 65535, &n) == 0)
      r->smtp_port = (uint16_t)n;
    else
      ERR(p, "bad value %s for smtp-port (a port number, 1 to 65535)", q);
    return;
  case OKEY_ADDRESS_LIMIT:
  case OKEY_SESSION_LIMIT:
    if (value_uint(v, len, 0, 65535, &n) != 0) {
      ERR(p, "bad value %s for %s (a number from 0 to 65535; 0 means no "
             "limit)", q, outbound_keys[key]);
      return;
    }
    if (key == OKEY_ADDRESS_LIMIT)
      r->mx_address_limit = n;
    else
      r->mx_session_limit = n;
    return;
  case OKEY_CHUNKING: {
    int on;
    if (value_bool(v, len, &on) == 0)
      p->ld->cfg->no_chunking = !on;
    else
      ERR(p, "bad value %s for chunking (true or false)", q);
    return;
  }
  case OKEY_RELAY:
    /* Checked against the [relay] sections once the file is read: the
     * section may come later. */
    set_string(p, &p->ld->cfg->relay, v, len, "relay", false);
    p->ld->relay_line = p->lineno;
    return;
  case OKEY_ADDRESS_PREFERENCE:
    if (len == 3 && memcmp(v, "any", 3) == 0)
      r->address_preference = ADDRESS_PREFERENCE_ANY;
    else if (len == 4 && memcmp(v, "ipv6", 4) == 0)
      r->address_preference = ADDRESS_PREFERENCE_IPV6;
    else if (len == 4 && memcmp(v, "ipv4", 4) == 0)
      r->address_preference = ADDRESS_PREFERENCE_IPV4;
    else
      ERR(p, "bad value %s for address-preference (accepted: any, ipv6, "
             "ipv4)", q);
    return;
  }
}

static void on_dns_key(struct ini_parser *p, int key, const char *v,
                       size_t len)
{
  smtpout_config *cfg = p->ld->cfg;
  char q[QUOTE_MAX + 16], err[160];
  const char *why;
  uint32_t ms;
  value_unquote(&v, &len);
  value_quote(q, sizeof(q), v, len);
  switch (key) {
  case NKEY_RESOLVER: {
    /* Checked now with the resolver's own parser, so that a typo fails
     * the load and not the first delivery. */
    struct resolver scratch;
    char list[1024];
    memset(&scratch, 0, sizeof(scratch));
    if (len == 0 || len >= sizeof(list)) {
      ERR(p, "bad value %s for resolver (one or more numeric addresses, "
             "HOST or HOST:PORT, [IPv6]:PORT)", q);
      return;
    }
    memcpy(list, v, len);
    list[len] = '\0';
    if (resolver_parse_servers(&scratch, list, 1, err, sizeof(err)) != 0) {
      ERR(p, "bad value %s for resolver: %s", q, err);
      return;
    }
    set_string(p, &cfg->dns_resolver, v, len, "resolver", false);
    return;
  }
  case NKEY_DNSSEC:
    p->ld->dnssec_line = p->lineno;
    if (len == 8 && memcmp(v, "trust-ad", 8) == 0) {
      cfg->routing.dnssec = RESOLVER_TRUST_AD;
    } else if (len == 3 && memcmp(v, "off", 3) == 0) {
      cfg->routing.dnssec = RESOLVER_OFF;
    } else if (len == 8 && memcmp(v, "validate", 8) == 0) {
#ifdef HAVE_LIBUNBOUND
      cfg->routing.dnssec = RESOLVER_VALIDATE;
#else
      ERR(p, "dnssec = validate needs libunbound, which this build of "
             "smtpout lacks (build with -Dunbound=enabled; Debian: "
             "libunbound-dev)");
#endif
    } else {
      ERR(p, "bad value %s for dnssec (accepted: trust-ad, validate, off)",
          q);
    }
    return;
  case NKEY_TRUST_ANCHOR:
    set_string(p, &cfg->dns_trust_anchor, v, len, "trust-anchor-file",
               true);
    p->ld->anchor_line = p->lineno;
    return;
  case NKEY_TIMEOUT:
    if (value_duration(v, len, &ms, &why) == 0)
      cfg->routing.dns_timeout_ms = ms;
    else
      ERR(p, "bad value %s for timeout: %s", q, why);
    return;
  }
}

/* [queue.outbound.tls-rpt]: where the blocking driver and the tools
 * append TLS-RPT event lines (docs/tlsrpt.md). */
static void on_rpt_key(struct ini_parser *p, int key, const char *v,
                       size_t len)
{
  value_unquote(&v, &len);
  switch (key) {
  case TKEY_EVENTS:
    set_string(p, &p->ld->cfg->tlsrpt_events, v, len, "events", true);
    p->ld->rpt_events_line = p->lineno;
    return;
  }
}

static void on_sts_key(struct ini_parser *p, int key, const char *v,
                       size_t len)
{
  smtpout_config *cfg = p->ld->cfg;
  char q[QUOTE_MAX + 16];
  const char *why;
  uint32_t n;
  value_unquote(&v, &len);
  value_quote(q, sizeof(q), v, len);
  switch (key) {
  case SKEY_CACHE:
    set_string(p, &cfg->sts_cache_file, v, len, "cache", true);
    p->ld->sts_cache_line = p->lineno;
    return;
  case SKEY_CA_FILE:
    set_string(p, &cfg->sts_ca_file, v, len, "ca-file", true);
    p->ld->sts_ca_line = p->lineno;
    return;
  case SKEY_FETCH_TIMEOUT:
  case SKEY_BACKOFF:
    if (value_duration(v, len, &n, &why) != 0) {
      ERR(p, "bad value %s for %s: %s", q, sts_keys[key], why);
      return;
    }
    if (key == SKEY_FETCH_TIMEOUT && n == 0) {
      ERR(p, "bad value %s for fetch-timeout: a fetch needs some time", q);
      return;
    }
    if (key == SKEY_FETCH_TIMEOUT)
      cfg->sts.fetch_timeout_ms = n;
    else
      cfg->sts.failure_backoff_ms = n;
    return;
  case SKEY_MAX_SIZE: {
    /* Bytes, or KiB: never above the 64 KiB of RFC 8461 practice. */
    size_t digits = len;
    uint32_t unit = 1;
    if (len > 3 && memcmp(v + len - 3, "KiB", 3) == 0) {
      digits = len - 3;
      unit = 1024;
    }
    if (value_uint(v, digits, 1, SMTPOUT_STS_POLICY_MAX_BYTES, &n) != 0 ||
        (uint64_t)n * unit > SMTPOUT_STS_POLICY_MAX_BYTES) {
      ERR(p, "bad value %s for max-size (a size from 1 to 65536 bytes, "
             "or 1KiB to 64KiB)", q);
      return;
    }
    cfg->sts.max_size = n * unit;
    return;
  }
  }
}

/* A SASL mechanism list (RFC 4422 3.1: 1 to 20 of A-Z 0-9 - _), written
 * with spaces or commas, any case; stored upper case, one space apart. */
static void set_mechanisms(struct ini_parser *p, struct config_relay *r,
                           const char *v, size_t len)
{
  char q[QUOTE_MAX + 16];
  char *out = malloc(len + 1);
  if (out == NULL) {
    nomem(p);
    return;
  }
  size_t o = 0, i = 0;
  while (i < len) {
    while (i < len && (isspace((unsigned char)v[i]) || v[i] == ','))
      i++;
    size_t start = i;
    while (i < len && !isspace((unsigned char)v[i]) && v[i] != ',')
      i++;
    if (i == start)
      break;
    bool ok = i - start <= 20;
    for (size_t k = start; k < i && ok; k++)
      ok = isalnum((unsigned char)v[k]) || v[k] == '-' || v[k] == '_';
    if (!ok) {
      value_quote(q, sizeof(q), v + start, i - start);
      ERR(p, "bad mechanism %s in auth-mechanisms (a SASL mechanism name: "
             "1 to 20 letters, digits, \"-\" or \"_\")", q);
      free(out);
      return;
    }
    if (o)
      out[o++] = ' ';
    for (size_t k = start; k < i; k++)
      out[o++] = (char)toupper((unsigned char)v[k]);
  }
  out[o] = '\0';
  if (o == 0) {
    ERR(p, "empty value for auth-mechanisms");
    free(out);
    return;
  }
  free((char *)r->auth_mechanisms);
  r->auth_mechanisms = out;
}

static void on_relay_key(struct ini_parser *p, int key, const char *v,
                         size_t len)
{
  struct config_relay *r = &p->ld->relays[p->relay].r;
  char q[QUOTE_MAX + 16], in[1024], name[NAME_MAX_LEN];
  uint32_t n;
  int b;
  value_unquote(&v, &len);
  value_quote(q, sizeof(q), v, len);
  switch (key) {
  case RKEY_HOST: {
    const char *why = "invalid name";
    if (len == 0 || len >= sizeof(in)) {
      ERR(p, "bad value %s for host (a host name or an IP address)", q);
      return;
    }
    memcpy(in, v, len);
    in[len] = '\0';
    bool ip = name_ip_literal(in, name, sizeof(name)) != 0;
    if (!ip) {
      int rv = name_normalize_why(in, name, sizeof(name), &why);
      if (rv == SMTPOUT_ERR_NOMEM) {
        nomem(p);
        return;
      }
      if (rv != 0) {
        ERR(p, "bad value %s for host: %s", q, why);
        return;
      }
    }
    char *s = strdup(name);
    if (s == NULL) {
      nomem(p);
      return;
    }
    free((char *)r->host);
    r->host = s;
    r->host_is_ip = ip;
    return;
  }
  case RKEY_PORT:
    if (value_uint(v, len, 1, 65535, &n) == 0)
      r->port = (uint16_t)n;
    else
      ERR(p, "bad value %s for port (a port number, 1 to 65535)", q);
    return;
  case RKEY_IMPLICIT_TLS:
    if (value_bool(v, len, &b) == 0)
      r->implicit_tls = b;
    else
      ERR(p, "bad value %s for implicit-tls (accepted: %s)", q,
          BOOL_ACCEPTED);
    return;
  case RKEY_AUTH_MECHANISMS:
    set_mechanisms(p, r, v, len);
    return;
  case RKEY_AUTH_USERNAME: {
    /* RFC 4616 2: the authentication identity may be any UTF-8 but NUL;
     * a control character here is a typo, and would reach a trace. */
    for (size_t i = 0; i < len; i++) {
      if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
        ERR(p, "control character in auth-username");
        return;
      }
    }
    char *s = NULL;
    set_string(p, &s, v, len, "auth-username", false);
    if (s) {
      free((char *)r->auth_username);
      r->auth_username = s;
    }
    return;
  }
  case RKEY_AUTH_PASSWORD_FILE:
  case RKEY_CLIENT_CERT:
  case RKEY_CLIENT_KEY: {
    char *s = NULL;
    set_string(p, &s, v, len, relay_keys[key], true);
    if (s == NULL)
      return;
    const char **slot = key == RKEY_AUTH_PASSWORD_FILE ? &r->auth_password_file
                        : key == RKEY_CLIENT_CERT      ? &r->client_cert
                                                       : &r->client_key;
    free((char *)*slot);
    *slot = s;
    return;
  }
  case RKEY_AUTH_TLS:
    if (len == 8 && memcmp(v, "verified", 8) == 0)
      r->auth_tls = AUTH_TLS_VERIFIED;
    else if (len == 3 && memcmp(v, "any", 3) == 0)
      r->auth_tls = AUTH_TLS_ANY;
    else
      ERR(p, "bad value %s for auth-tls (accepted: verified, any)", q);
    return;
  case RKEY_STARTTLS: parse_knob(p, KEY_STARTTLS, v, len, &r->starttls); break;
  case RKEY_ALLOW: parse_knob(p, KEY_ALLOW, v, len, &r->allow_invalid_certs);
    break;
  case RKEY_DANE: parse_knob(p, KEY_DANE, v, len, &r->dane); break;
  case RKEY_MTA_STS: parse_knob(p, KEY_MTA_STS, v, len, &r->mta_sts); break;
  }
}

static void add_pattern(struct ini_parser *p, struct ini_dest *d, int list,
                        const char *tok, size_t len)
{
  char why[256];
  struct ini_pattern pat;
  int rv = pattern_parse(tok, len, list, &pat.kind, pat.name, why,
                         sizeof(why));
  if (rv == SMTPOUT_ERR_NOMEM) {
    nomem(p);
    return;
  }
  if (rv != 0) {
    ERR(p, "%s", why);
    d->bad_patterns++;
    return;
  }
  if (d->npats == d->pats_cap) {
    size_t cap = d->pats_cap ? d->pats_cap * 2 : 8;
    struct ini_pattern *n = realloc(d->pats, cap * sizeof(*n));
    if (n == NULL) {
      nomem(p);
      return;
    }
    d->pats = n;
    d->pats_cap = cap;
  }
  pat.line = p->lineno;
  d->pats[d->npats++] = pat;
}

/* A list value: patterns separated by whitespace or commas, each one
 * optionally in double quotes. */
static void add_patterns(struct ini_parser *p, struct ini_dest *d, int list,
                         const char *v, size_t len)
{
  size_t i = 0;
  while (i < len) {
    while (i < len && (isspace((unsigned char)v[i]) || v[i] == ','))
      i++;
    size_t start = i;
    while (i < len && !isspace((unsigned char)v[i]) && v[i] != ',')
      i++;
    if (i > start) {
      const char *tok = v + start;
      size_t n = i - start;
      value_unquote(&tok, &n);
      add_pattern(p, d, list, tok, n);
    }
  }
}

static void on_dest_key(struct ini_parser *p, int key, const char *v,
                        size_t len)
{
  struct ini_dest *d = &p->ld->dests[p->dest];
  switch (key) {
  case DKEY_DOMAINS: add_patterns(p, d, LIST_DOMAINS, v, len); break;
  case DKEY_MX: add_patterns(p, d, LIST_MX, v, len); break;
  case DKEY_STARTTLS: parse_knob(p, KEY_STARTTLS, v, len, &d->starttls); break;
  case DKEY_ALLOW: parse_knob(p, KEY_ALLOW, v, len, &d->allow); break;
  case DKEY_DANE: parse_knob(p, KEY_DANE, v, len, &d->dane); break;
  case DKEY_MTA_STS: parse_knob(p, KEY_MTA_STS, v, len, &d->mta_sts); break;
  }
}

/*
 * One "key = value" line (continuation == false) or an indented line
 * continuing the previous key.  Errors are recorded, never returned to
 * inih, so that it keeps going whatever ini_stop_on_first_error says.
 */
static void on_value(struct ini_parser *p, const char *key, const char *value,
                     bool continuation)
{
  const char *v = value;
  size_t len = strlen(value);
  trim_value(&v, &len);
  if (continuation && !p->prev_ok)
    return; /* the key line was already reported */

  const char *const *keys = NULL;
  size_t nkeys = 0;
  uint32_t *seen = NULL;
  switch (p->sec) {
  case SEC_SKIP:
    return;
  case SEC_NONE:
    ERR(p, "key \"%.*s\" outside any section", KEY_MAX_CHARS, key);
    p->prev_ok = false;
    return;
  case SEC_OUTBOUND:
    keys = outbound_keys;
    nkeys = NKEYS(outbound_keys);
    seen = p->seen_outbound;
    break;
  case SEC_TLS:
    keys = tls_keys;
    nkeys = NKEYS(tls_keys);
    seen = p->seen_tls;
    break;
  case SEC_TIMEOUTS:
    keys = timeout_keys;
    nkeys = NKEYS(timeout_keys);
    seen = p->seen_timeouts;
    break;
  case SEC_DNS:
    keys = dns_keys;
    nkeys = NKEYS(dns_keys);
    seen = p->seen_dns;
    break;
  case SEC_STS:
    keys = sts_keys;
    nkeys = NKEYS(sts_keys);
    seen = p->seen_sts;
    break;
  case SEC_RPT:
    keys = rpt_keys;
    nkeys = NKEYS(rpt_keys);
    seen = p->seen_rpt;
    break;
  case SEC_DEST:
    keys = dest_keys;
    nkeys = NKEYS(dest_keys);
    seen = p->ld->dests[p->dest].seen;
    break;
  case SEC_RELAY:
    keys = relay_keys;
    nkeys = NKEYS(relay_keys);
    seen = p->ld->relays[p->relay].seen;
    break;
  }

  char title[128], q[QUOTE_MAX + 16], accepted[256];
  int k = find_key(keys, nkeys, key);
  if (k < 0) {
    value_quote(q, sizeof(q), key, strlen(key));
    list_keys(accepted, sizeof(accepted), keys, nkeys);
    ERR(p, "unknown key %s in %s (accepted: %s)", q,
        section_title(p, title, sizeof(title)), accepted);
    p->prev_ok = false;
    return;
  }
  bool is_list = p->sec == SEC_DEST && (k == DKEY_DOMAINS || k == DKEY_MX);
  if (continuation && !is_list) {
    ERR(p, "%s takes a single value; indented continuation lines "
           "continue only the domains and mx lists", keys[k]);
    p->prev_ok = false;
    return;
  }
  if (!continuation) {
    if (seen[k] != 0) {
      ERR(p, "duplicate key %s in %s (first set at %s:%u)", keys[k],
          section_title(p, title, sizeof(title)), p->ld->file,
          (unsigned)seen[k]);
      p->prev_ok = false;
      return;
    }
    seen[k] = p->lineno;
    p->prev_ok = true;
  }
  switch (p->sec) {
  case SEC_OUTBOUND: on_outbound_key(p, k, v, len); break;
  case SEC_TLS: on_tls_key(p, k, v, len); break;
  case SEC_TIMEOUTS: on_timeout_key(p, k, v, len); break;
  case SEC_DNS: on_dns_key(p, k, v, len); break;
  case SEC_STS: on_sts_key(p, k, v, len); break;
  case SEC_RPT: on_rpt_key(p, k, v, len); break;
  case SEC_DEST: on_dest_key(p, k, v, len); break;
  case SEC_RELAY: on_relay_key(p, k, v, len); break;
  default: break;
  }
}

static int ini_handler_cb(void *user, const char *section, const char *name,
                          const char *value)
{
  /* The section was already parsed (and validated) by the reader. */
  (void)section;
  on_value(user, name, value, false);
  return 1;
}

static void open_dest(struct ini_parser *p, const char *label, size_t len)
{
  struct config_load *ld = p->ld;
  for (size_t i = 0; i < ld->ndests; i++) {
    if (strlen(ld->dests[i].label) == len &&
        memcmp(ld->dests[i].label, label, len) == 0) {
      ERR(p, "duplicate section [destination \"%.*s\"] (first at %s:%u)",
          (int)len, label, ld->file, (unsigned)ld->dests[i].line);
      p->sec = SEC_SKIP;
      return;
    }
  }
  if (ld->ndests == ld->dests_cap) {
    size_t cap = ld->dests_cap ? ld->dests_cap * 2 : 8;
    struct ini_dest *n = realloc(ld->dests, cap * sizeof(*n));
    if (n == NULL) {
      nomem(p);
      p->sec = SEC_SKIP;
      return;
    }
    ld->dests = n;
    ld->dests_cap = cap;
  }
  struct ini_dest *d = &ld->dests[ld->ndests];
  memset(d, 0, sizeof(*d));
  d->label = strndup(label, len);
  if (d->label == NULL) {
    nomem(p);
    p->sec = SEC_SKIP;
    return;
  }
  d->line = p->lineno;
  d->starttls = d->allow = d->dane = d->mta_sts = KNOB_UNSET;
  p->dest = ld->ndests++;
  p->sec = SEC_DEST;
}

static void open_relay(struct ini_parser *p, const char *label, size_t len)
{
  struct config_load *ld = p->ld;
  for (size_t i = 0; i < ld->nrelays; i++) {
    const struct config_relay *r = &ld->relays[i].r;
    if (strlen(r->label) == len && memcmp(r->label, label, len) == 0) {
      ERR(p, "duplicate section [relay \"%.*s\"] (first at %s:%u)",
          (int)len, label, ld->file, (unsigned)r->line);
      p->sec = SEC_SKIP;
      return;
    }
  }
  if (ld->nrelays == ld->relays_cap) {
    size_t cap = ld->relays_cap ? ld->relays_cap * 2 : 4;
    struct ini_relay *n = realloc(ld->relays, cap * sizeof(*n));
    if (n == NULL) {
      nomem(p);
      p->sec = SEC_SKIP;
      return;
    }
    ld->relays = n;
    ld->relays_cap = cap;
  }
  struct ini_relay *ir = &ld->relays[ld->nrelays];
  memset(ir, 0, sizeof(*ir));
  struct config_relay *r = &ir->r;
  r->label = strndup(label, len);
  if (r->label == NULL) {
    nomem(p);
    p->sec = SEC_SKIP;
    return;
  }
  r->file = ld->file;
  r->line = p->lineno;
  r->auth_tls = AUTH_TLS_VERIFIED;
  r->starttls = r->allow_invalid_certs = r->dane = r->mta_sts = KNOB_UNSET;
  p->relay = ld->nrelays++;
  p->sec = SEC_RELAY;
}

/* "PREFIX" followed by white space or a quote: a labelled section. */
static bool labelled(const char *name, size_t len, const char *prefix)
{
  size_t pl = strlen(prefix);
  return len > pl && memcmp(name, prefix, pl) == 0 &&
         (name[pl] == ' ' || name[pl] == '\t' || name[pl] == '"');
}

/* Enters the section `name` (not NUL-terminated), or SEC_SKIP. */
static void open_section(struct ini_parser *p, const char *name, size_t len)
{
  char q[QUOTE_MAX + 16];
  p->have_prev = false;
  p->sec = SEC_SKIP;
  value_quote(q, sizeof(q), name, len);
  if (len > SECTION_MAX_CHARS) {
    ERR(p, "section name too long (%zu characters; inih keeps at most %d): "
           "%s", len, SECTION_MAX_CHARS, q);
    return;
  }
  if (len == 14 && memcmp(name, "queue.outbound", 14) == 0) {
    p->sec = SEC_OUTBOUND;
  } else if (len == 18 && memcmp(name, "queue.outbound.tls", 18) == 0) {
    p->sec = SEC_TLS;
  } else if (len == 23 && memcmp(name, "queue.outbound.timeouts", 23) == 0) {
    p->sec = SEC_TIMEOUTS;
  } else if (len == 18 && memcmp(name, "queue.outbound.dns", 18) == 0) {
    p->sec = SEC_DNS;
  } else if (len == 22 && memcmp(name, "queue.outbound.mta-sts", 22) == 0) {
    p->sec = SEC_STS;
  } else if (len == 22 && memcmp(name, "queue.outbound.tls-rpt", 22) == 0) {
    p->sec = SEC_RPT;
  } else if (labelled(name, len, "destination") ||
             labelled(name, len, "relay")) {
    const char *prefix = labelled(name, len, "relay") ? "relay"
                                                       : "destination";
    size_t pl = strlen(prefix);
    const char *s = name + pl, *end = name + len;
    while (s < end && (*s == ' ' || *s == '\t'))
      s++;
    const char *close = s + 1 < end ? memchr(s + 1, '"', (size_t)(end - s - 1))
                                    : NULL;
    if (s >= end || *s != '"' || close != end - 1 || close == s + 1) {
      ERR(p, "bad section header: write [%s \"LABEL\"] with a "
             "non-empty label in double quotes", prefix);
      return;
    }
    for (const char *c = s + 1; c < close; c++) {
      if ((unsigned char)*c < 0x20 || *c == 0x7f) {
        ERR(p, "control character in the label of [%s]", prefix);
        return;
      }
    }
    if (prefix[0] == 'r')
      open_relay(p, s + 1, (size_t)(close - s - 1));
    else
      open_dest(p, s + 1, (size_t)(close - s - 1));
  } else {
    ERR(p, "unknown section %s (accepted: [queue.outbound], "
           "[queue.outbound.tls], [queue.outbound.timeouts], "
           "[queue.outbound.dns], [queue.outbound.mta-sts], "
           "[queue.outbound.tls-rpt], [destination \"LABEL\"], "
           "[relay \"LABEL\"])", q);
  }
}

/*
 * A line that was refused and not passed on.  A lost section header must
 * not lend its keys to the section before it, and lines indented below a
 * lost key line must not continue the key before it.
 */
static void skip_line(struct ini_parser *p, bool header)
{
  if (header) {
    p->sec = SEC_SKIP;
    p->have_prev = false;
  } else {
    p->have_prev = true;
    p->prev_ok = false;
  }
}

static char *feed(char *str, const char *s, size_t len)
{
  memcpy(str, s, len);
  str[len] = '\n';
  str[len + 1] = '\0';
  return str;
}

/*
 * The ini_reader: classifies the next raw line as inih (r55, default
 * settings) would, deals with what inih would get wrong or must not see,
 * and hands inih the rest.  See the comment at the top of the file.
 */
static char *ini_reader_cb(char *str, int num, void *stream)
{
  struct ini_parser *p = stream;
  if (p->pos >= p->len)
    return NULL;
  if (num < 3) {
    /* Only if a host set Debian inih's ini_max_line absurdly low. */
    diag_add(&p->ld->diag, p->ld->file, p->lineno + 1,
             "inih's line buffer is too small to read this file");
    return NULL;
  }
  const char *line = p->text + p->pos;
  const char *nl = memchr(line, '\n', p->len - p->pos);
  size_t raw = nl ? (size_t)(nl - line) : p->len - p->pos;
  p->pos += raw + (nl != NULL);
  p->lineno++;
  if (raw > 0 && line[raw - 1] == '\r')
    raw--;
  if (p->lineno == 1 && raw >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
    line += 3; /* a UTF-8 byte order mark, as inih allows */
    raw -= 3;
  }

  size_t lead = 0;
  while (lead < raw && isspace((unsigned char)line[lead]))
    lead++;
  const char *t = line + lead;
  size_t tlen = raw - lead;
  while (tlen > 0 && isspace((unsigned char)t[tlen - 1]))
    tlen--;
  bool continuation = lead > 0 && p->have_prev && tlen > 0 && *t != ';' &&
                      *t != '#';

  size_t limit = (size_t)num - 2 < LINE_MAX_CHARS ? (size_t)num - 2
                                                   : LINE_MAX_CHARS;
  if (raw > limit || memchr(line, '\0', raw) != NULL) {
    if (raw > limit)
      ERR(p, "line too long (%zu characters; inih reads at most %zu): "
             "split long lists over indented continuation lines",
          raw, limit);
    else
      ERR(p, "NUL character in line");
    if (!continuation)
      skip_line(p, tlen > 0 && *t == '[');
    return feed(str, "", 0);
  }
  if (tlen == 0 || *t == ';' || *t == '#')
    return feed(str, "", 0);

  if (continuation && *t == '[') {
    /* inih would read it as a value continuing the previous key. */
    ERR(p, "indented section header (an indented line continues the "
           "previous key; start section headers at the beginning of the "
           "line)");
    skip_line(p, true);
    return feed(str, "", 0);
  }
  if (continuation) {
    char value[LINE_MAX_CHARS + 1];
    memcpy(value, t, tlen);
    value[tlen] = '\0';
    on_value(p, p->prev_key, value, true);
    return feed(str, "", 0);
  }

  if (*t == '[') {
    /* inih ends the name at "]" or at an inline comment. */
    size_t i = 1;
    while (i < tlen && t[i] != ']' &&
           !(t[i] == ';' && isspace((unsigned char)t[i - 1])))
      i++;
    if (i >= tlen || t[i] != ']') {
      ERR(p, "bad section header: missing \"]\"");
      skip_line(p, true);
      return feed(str, "", 0);
    }
    size_t j = i + 1;
    while (j < tlen && isspace((unsigned char)t[j]))
      j++;
    if (j < tlen && t[j] != ';' && t[j] != '#') {
      /* inih would drop it without a word. */
      ERR(p, "unexpected text after \"]\" in section header");
      skip_line(p, true);
      return feed(str, "", 0);
    }
    open_section(p, t + 1, i - 1);
    return feed(str, t, i + 1);
  }

  /* inih ends the key at "=" or ":", unless an inline comment comes
   * first. */
  size_t i = 0;
  while (i < tlen && t[i] != '=' && t[i] != ':' &&
         !(i > 0 && t[i] == ';' && isspace((unsigned char)t[i - 1])))
    i++;
  if (i >= tlen || (t[i] != '=' && t[i] != ':')) {
    ERR(p, "expected \"key = value\", a [section] or an indented "
           "continuation line");
    skip_line(p, false);
    return feed(str, "", 0);
  }
  size_t klen = i;
  while (klen > 0 && isspace((unsigned char)t[klen - 1]))
    klen--;
  if (klen > KEY_MAX_CHARS)
    klen = KEY_MAX_CHARS;
  memcpy(p->prev_key, t, klen);
  p->prev_key[klen] = '\0';
  p->have_prev = true;
  p->prev_ok = false; /* until the handler accepts the key */
  return feed(str, t, tlen);
}

void config_ini_parse(struct config_load *ld, const char *text, size_t len)
{
  struct ini_parser p = {.ld = ld, .text = text, .len = len};
  int rv = ini_parse_stream(ini_reader_cb, &p, ini_handler_cb, &p);
  if (rv == -2) {
    ld->fatal = SMTPOUT_ERR_NOMEM;
  } else if (rv != 0) {
    /* Only reachable if a host changed inih's process-wide settings so
     * that a line we passed on means something else to inih. */
    diag_add(&ld->diag, ld->file, rv > 0 ? (uint32_t)rv : 0,
             "inih rejected this line (are inih's global settings "
             "changed by the host?)");
  }
}

void config_report_conflict(struct config_load *ld, const char *file,
                            uint32_t line, int kind, const char *name,
                            const struct rule_match *prior)
{
  const struct ruleset *rs = ld->cfg->rules;
  const struct origin *o =
      ruleset_origin(rs, ruleset_rule(rs, prior->rule)->origin);
  char pat[NAME_MAX_LEN + 8], where[256];
  pattern_format(pat, sizeof(pat), kind, name, false);
  if (o->label)
    snprintf(where, sizeof(where), "[destination \"%s\"] at %s:%u", o->label,
             o->file, (unsigned)prior->line);
  else
    snprintf(where, sizeof(where), "the policy map at %s:%u", o->file,
             (unsigned)prior->line);
  diag_add(&ld->diag, file, line, "%s pattern \"%s\" is already claimed by %s",
           kind >= PAT_MX ? "MX" : "domain", pat, where);
}

static void build_dest(struct config_load *ld, struct ini_dest *d)
{
  if (d->npats == 0 && d->bad_patterns == 0) {
    diag_add(&ld->diag, ld->file, d->line,
             "[destination \"%s\"] has no domains or mx patterns", d->label);
    return;
  }
  if (d->seen[DKEY_STARTTLS] == 0 && d->seen[DKEY_ALLOW] == 0 &&
      d->seen[DKEY_DANE] == 0 && d->seen[DKEY_MTA_STS] == 0) {
    diag_add(&ld->diag, ld->file, d->line,
             "[destination \"%s\"] sets none of starttls, "
             "allow-invalid-certs, dane, mta-sts", d->label);
    return;
  }
  if (d->npats == 0) /* every pattern was bad, and reported */
    return;
  struct ruleset *rs = ld->cfg->rules;
  struct rule r = {
    .starttls = (int8_t)d->starttls,
    .allow_invalid_certs = (int8_t)d->allow,
    .dane = (int8_t)d->dane,
    .mta_sts = (int8_t)d->mta_sts,
    .starttls_line = d->seen[DKEY_STARTTLS],
    .allow_line = d->seen[DKEY_ALLOW],
    .dane_line = d->seen[DKEY_DANE],
    .mta_sts_line = d->seen[DKEY_MTA_STS],
  };
  uint32_t index;
  if (ruleset_add_origin(rs, ld->file, d->label, d->line, &r.origin) != 0 ||
      ruleset_add_rule(rs, &r, &index) != 0) {
    ld->fatal = SMTPOUT_ERR_NOMEM;
    return;
  }
  for (size_t i = 0; i < d->npats; i++) {
    const struct ini_pattern *pat = &d->pats[i];
    struct rule_match prior;
    int rv = ruleset_claim(rs, pat->kind, pat->name, strlen(pat->name),
                           index, pat->line, &prior);
    if (rv == 1)
      config_report_conflict(ld, ld->file, pat->line, pat->kind, pat->name,
                             &prior);
    else if (rv != 0)
      ld->fatal = rv;
  }
}

void config_ini_build_rules(struct config_load *ld)
{
  for (size_t i = 0; i < ld->ndests && !ld->fatal; i++)
    build_dest(ld, &ld->dests[i]);
}

/* A file the library reads later: it must exist, be readable and be a
 * regular file; a secret must also be closed to group and others (as
 * ssh does with its keys).  Reports at `line` and returns false. */
static bool check_file(struct config_load *ld, const char *what,
                       const char *path, uint32_t line, bool secret)
{
  char q[QUOTE_MAX + 16];
  struct stat st;
  value_quote(q, sizeof(q), path, strlen(path));
  if (stat(path, &st) != 0 || access(path, R_OK) != 0) {
    diag_add(&ld->diag, ld->file, line, "cannot read %s %s: %s", what, q,
             strerror(errno));
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    diag_add(&ld->diag, ld->file, line, "%s %s is not a regular file", what,
             q);
    return false;
  }
  if (secret && (st.st_mode & (S_IRWXG | S_IRWXO))) {
    diag_add(&ld->diag, ld->file, line,
             "%s %s is open to group or others (mode %04o): a secret must "
             "be readable by its owner alone (chmod 600)", what, q,
             (unsigned)(st.st_mode & 07777));
    return false;
  }
  return true;
}

static void check_relay(struct config_load *ld, struct ini_relay *ir)
{
  struct config_relay *r = &ir->r;
  const uint32_t *seen = ir->seen;
  if (r->host == NULL) {
    if (seen[RKEY_HOST] == 0)
      diag_add(&ld->diag, ld->file, r->line, "[relay \"%s\"] has no host",
               r->label);
    return;
  }
  if (r->port == 0)
    r->port = r->implicit_tls ? 465 : 25;
  if (r->auth_username && r->auth_password_file == NULL &&
      seen[RKEY_AUTH_PASSWORD_FILE] == 0)
    diag_add(&ld->diag, ld->file, seen[RKEY_AUTH_USERNAME],
             "[relay \"%s\"]: auth-username needs auth-password-file",
             r->label);
  if (r->auth_password_file && r->auth_username == NULL &&
      seen[RKEY_AUTH_USERNAME] == 0)
    diag_add(&ld->diag, ld->file, seen[RKEY_AUTH_PASSWORD_FILE],
             "[relay \"%s\"]: auth-password-file needs auth-username",
             r->label);
  if (r->auth_mechanisms && seen[RKEY_AUTH_USERNAME] == 0)
    diag_add(&ld->diag, ld->file, seen[RKEY_AUTH_MECHANISMS],
             "[relay \"%s\"]: auth-mechanisms without auth-username",
             r->label);
  if (seen[RKEY_AUTH_TLS] && seen[RKEY_AUTH_USERNAME] == 0)
    diag_add(&ld->diag, ld->file, seen[RKEY_AUTH_TLS],
             "[relay \"%s\"]: auth-tls without auth-username", r->label);
  if (r->auth_password_file)
    check_file(ld, "auth-password-file", r->auth_password_file,
               seen[RKEY_AUTH_PASSWORD_FILE], true);
  /* DESIGN 3: credentials are never sent without TLS. */
  if (seen[RKEY_AUTH_USERNAME] && !r->implicit_tls &&
      r->starttls == SMTPOUT_STARTTLS_DISABLE)
    diag_add(&ld->diag, ld->file, seen[RKEY_STARTTLS],
             "[relay \"%s\"]: starttls = disable with AUTH credentials: "
             "credentials are never sent without TLS", r->label);
  if ((seen[RKEY_CLIENT_CERT] == 0) != (seen[RKEY_CLIENT_KEY] == 0))
    diag_add(&ld->diag, ld->file,
             seen[RKEY_CLIENT_CERT] ? seen[RKEY_CLIENT_CERT]
                                    : seen[RKEY_CLIENT_KEY],
             "[relay \"%s\"]: client-cert and client-key go together",
             r->label);
  if (r->client_cert)
    check_file(ld, "client-cert", r->client_cert, seen[RKEY_CLIENT_CERT],
               false);
  if (r->client_key)
    check_file(ld, "client-key", r->client_key, seen[RKEY_CLIENT_KEY], true);
  if (r->mta_sts != KNOB_UNSET && r->mta_sts != SMTPOUT_MTA_STS_DISABLE &&
      (r->host_is_ip || strchr(r->host, '.') == NULL))
    diag_add(&ld->diag, ld->file, seen[RKEY_MTA_STS],
             "[relay \"%s\"]: mta-sts needs a host name with a parent "
             "domain (the policy domain, RFC 8461 section 3.4)", r->label);
}

static void relay_free(struct config_relay *r)
{
  free((char *)r->label);
  free((char *)r->host);
  free((char *)r->auth_mechanisms);
  free((char *)r->auth_username);
  free((char *)r->auth_password_file);
  free((char *)r->client_cert);
  free((char *)r->client_key);
}

void config_relays_free(struct config_relay *relays, size_t n)
{
  for (size_t i = 0; i < n; i++)
    relay_free(&relays[i]);
  free(relays);
}

void config_ini_build_relays(struct config_load *ld)
{
  smtpout_config *cfg = ld->cfg;
  for (size_t i = 0; i < ld->nrelays; i++)
    check_relay(ld, &ld->relays[i]);
  if (cfg->relay != NULL) {
    bool found = false;
    for (size_t i = 0; i < ld->nrelays && !found; i++)
      found = strcmp(ld->relays[i].r.label, cfg->relay) == 0;
    if (!found) {
      char q[QUOTE_MAX + 16];
      value_quote(q, sizeof(q), cfg->relay, strlen(cfg->relay));
      diag_add(&ld->diag, ld->file, ld->relay_line,
               "relay %s names no [relay \"LABEL\"] section", q);
    }
  }
  if (ld->nrelays == 0)
    return;
  cfg->relays = calloc(ld->nrelays, sizeof(*cfg->relays));
  if (cfg->relays == NULL) {
    ld->fatal = SMTPOUT_ERR_NOMEM;
    return;
  }
  for (size_t i = 0; i < ld->nrelays; i++) {
    cfg->relays[i] = ld->relays[i].r;
    cfg->relays[i].file = cfg->file;
  }
  cfg->nrelays = ld->nrelays;
  ld->nrelays = 0;
}

void config_ini_free(struct config_load *ld)
{
  for (size_t i = 0; i < ld->nrelays; i++)
    relay_free(&ld->relays[i].r);
  free(ld->relays);
  ld->relays = NULL;
  ld->nrelays = ld->relays_cap = 0;
  for (size_t i = 0; i < ld->ndests; i++) {
    free(ld->dests[i].label);
    free(ld->dests[i].pats);
  }
  free(ld->dests);
  ld->dests = NULL;
  ld->ndests = ld->dests_cap = 0;
}
