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
  SEC_DEST      /* [destination "label"] */
};

static const char *const outbound_keys[] = {
  "hostname", "smtp-port", "mx-address-limit", "mx-session-limit",
  "address-preference",
};
enum { OKEY_HOSTNAME, OKEY_SMTP_PORT, OKEY_ADDRESS_LIMIT,
       OKEY_SESSION_LIMIT, OKEY_ADDRESS_PREFERENCE };

static const char *const tls_keys[] = {
  "starttls", "allow-invalid-certs", "ca-file", "priority", "policy-map",
  "dane",
};
enum { KEY_STARTTLS, KEY_ALLOW, KEY_CA_FILE, KEY_PRIORITY, KEY_POLICY_MAP,
       KEY_DANE };

static const char *const dns_keys[] = {
  "resolver", "dnssec", "trust-anchor-file", "timeout",
};
enum { NKEY_RESOLVER, NKEY_DNSSEC, NKEY_TRUST_ANCHOR, NKEY_TIMEOUT };

/* Indexed by enum smtpout_timeout. */
static const char *const timeout_keys[SMTPOUT_TIMEOUT_COUNT] = {
  "connect", "greeting", "tls", "ehlo", "mail-from", "rcpt-to", "data",
};

static const char *const dest_keys[] = {
  "domains", "mx", "starttls", "allow-invalid-certs", "dane",
};
enum { DKEY_DOMAINS, DKEY_MX, DKEY_STARTTLS, DKEY_ALLOW, DKEY_DANE };

#define NKEYS(a) (sizeof(a) / sizeof((a)[0]))
#define DEST_NKEYS NKEYS(dest_keys)

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
  int starttls, allow, dane; /* KNOB_UNSET when absent */
  unsigned bad_patterns;     /* patterns refused (and reported) */
  struct ini_pattern *pats;
  size_t npats, pats_cap;
};

struct ini_parser {
  struct config_load *ld;
  const char *text;
  size_t len, pos;
  uint32_t lineno;
  enum section sec;
  size_t dest; /* index of the current destination (SEC_DEST) */
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
  case SEC_DEST:
    snprintf(buf, len, "[destination \"%s\"]", p->ld->dests[p->dest].label);
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
  case SEC_DEST:
    keys = dest_keys;
    nkeys = NKEYS(dest_keys);
    seen = p->ld->dests[p->dest].seen;
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
  case SEC_DEST: on_dest_key(p, k, v, len); break;
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
  d->starttls = d->allow = d->dane = KNOB_UNSET;
  p->dest = ld->ndests++;
  p->sec = SEC_DEST;
}

/* Enters the section `name` (not NUL-terminated), or SEC_SKIP. */
static void open_section(struct ini_parser *p, const char *name, size_t len)
{
  static const char prefix[] = "destination";
  char q[QUOTE_MAX + 16];
  size_t pl = sizeof(prefix) - 1;
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
  } else if (len > pl && memcmp(name, prefix, pl) == 0 &&
             (name[pl] == ' ' || name[pl] == '\t' || name[pl] == '"')) {
    const char *s = name + pl, *end = name + len;
    while (s < end && (*s == ' ' || *s == '\t'))
      s++;
    const char *close = s + 1 < end ? memchr(s + 1, '"', (size_t)(end - s - 1))
                                    : NULL;
    if (s >= end || *s != '"' || close != end - 1 || close == s + 1) {
      ERR(p, "bad section header: write [destination \"LABEL\"] with a "
             "non-empty label in double quotes");
      return;
    }
    for (const char *c = s + 1; c < close; c++) {
      if ((unsigned char)*c < 0x20 || *c == 0x7f) {
        ERR(p, "control character in the label of [destination]");
        return;
      }
    }
    open_dest(p, s + 1, (size_t)(close - s - 1));
  } else {
    ERR(p, "unknown section %s (accepted: [queue.outbound], "
           "[queue.outbound.tls], [queue.outbound.timeouts], "
           "[queue.outbound.dns], [destination \"LABEL\"])", q);
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
      d->seen[DKEY_DANE] == 0) {
    diag_add(&ld->diag, ld->file, d->line,
             "[destination \"%s\"] sets none of starttls, "
             "allow-invalid-certs, dane", d->label);
    return;
  }
  if (d->npats == 0) /* every pattern was bad, and reported */
    return;
  struct ruleset *rs = ld->cfg->rules;
  struct rule r = {
    .starttls = (int8_t)d->starttls,
    .allow_invalid_certs = (int8_t)d->allow,
    .dane = (int8_t)d->dane,
    .starttls_line = d->seen[DKEY_STARTTLS],
    .allow_line = d->seen[DKEY_ALLOW],
    .dane_line = d->seen[DKEY_DANE],
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

void config_ini_free(struct config_load *ld)
{
  for (size_t i = 0; i < ld->ndests; i++) {
    free(ld->dests[i].label);
    free(ld->dests[i].pats);
  }
  free(ld->dests);
  ld->dests = NULL;
  ld->ndests = ld->dests_cap = 0;
}
