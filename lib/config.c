/*
 * config.c — the configuration object: loading, reference counting and
 * the getters sessions use.
 *
 * A configuration is built completely while it loads and never changes
 * afterwards, so any number of threads may read it without locks; the
 * reference count is atomic.  The one mutable part, the TLS credentials
 * cache, has its own mutex (tls_gnutls.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_impl_int.h"
#include "resolve_int.h"
#include "tls_int.h"

const uint32_t config_default_timeouts[SMTPOUT_TIMEOUT_COUNT] = {
  [SMTPOUT_TIMEOUT_CONNECT] = 5 * 60 * 1000,
  [SMTPOUT_TIMEOUT_GREETING] = 5 * 60 * 1000,
  [SMTPOUT_TIMEOUT_TLS] = 3 * 60 * 1000,
  [SMTPOUT_TIMEOUT_EHLO] = 5 * 60 * 1000,
  [SMTPOUT_TIMEOUT_MAIL_FROM] = 5 * 60 * 1000,
  [SMTPOUT_TIMEOUT_RCPT_TO] = 5 * 60 * 1000,
  [SMTPOUT_TIMEOUT_DATA] = 10 * 60 * 1000,
};

static const struct config_sts default_sts = {
  .fetch_timeout_ms = CONFIG_DEFAULT_STS_FETCH_TIMEOUT_MS,
  .max_size = SMTPOUT_STS_POLICY_MAX_BYTES,
  .failure_backoff_ms = CONFIG_DEFAULT_STS_FAILURE_BACKOFF_MS,
};

static const struct config_routing default_routing = {
  .smtp_port = CONFIG_DEFAULT_SMTP_PORT,
  .mx_address_limit = CONFIG_DEFAULT_MX_ADDRESS_LIMIT,
  .mx_session_limit = CONFIG_DEFAULT_MX_SESSION_LIMIT,
  .address_preference = ADDRESS_PREFERENCE_ANY,
  .dnssec = RESOLVER_TRUST_AD,
  .dns_timeout_ms = CONFIG_DEFAULT_DNS_TIMEOUT_MS,
};

/* Configuration files are small; this only stops a wrong path (a disk
 * image, /dev/zero) from being read into memory. */
#define CONFIG_MAX_SIZE (64u << 20)

int smtpout_config_new(smtpout_config **pconfig)
{
  if (pconfig == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  smtpout_config *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return SMTPOUT_ERR_NOMEM;
  atomic_init(&c->refs, 1);
  memcpy(c->timeouts, config_default_timeouts, sizeof(c->timeouts));
  c->starttls.value = KNOB_UNSET;
  c->allow_invalid_certs.value = KNOB_UNSET;
  c->dane.value = KNOB_UNSET;
  c->mta_sts.value = KNOB_UNSET;
  c->routing = default_routing;
  c->sts = default_sts;
  if (tls_cache_new(&c->tls_cache) != 0) {
    free(c);
    return SMTPOUT_ERR_NOMEM;
  }
  *pconfig = c;
  return 0;
}

smtpout_config *smtpout_config_ref(smtpout_config *config)
{
  if (config != NULL)
    atomic_fetch_add_explicit(&config->refs, 1, memory_order_relaxed);
  return config;
}

void smtpout_config_unref(smtpout_config *config)
{
  /* acq_rel: the thread that frees must see every other thread's last
   * use of the object. */
  if (config == NULL ||
      atomic_fetch_sub_explicit(&config->refs, 1, memory_order_acq_rel) != 1)
    return;
  tls_cache_free(config->tls_cache);
  ruleset_free(config->rules);
  free(config->file);
  free(config->helo_name);
  free(config->ca_file);
  free(config->tls_priority);
  free(config->dns_resolver);
  free(config->dns_trust_anchor);
  free(config->sts_cache_file);
  free(config->sts_ca_file);
  free(config->tlsrpt_events);
  config_relays_free(config->relays, config->nrelays);
  free(config->relay);
  free(config);
}

/* The CA file and the priority string are checked now, so that a typo
 * fails the load (and `smtpout-policy --check`), not the first STARTTLS
 * hours later. */
static void check_tls_settings(struct config_load *ld)
{
  smtpout_config *cfg = ld->cfg;
  char q[QUOTE_MAX + 16];
  if (cfg->ca_file != NULL) {
    value_quote(q, sizeof(q), cfg->ca_file, strlen(cfg->ca_file));
    /* stat() and access() first: GnuTLS would not say why a file cannot
     * be used, and opening a FIFO would block. */
    struct stat st;
    if (stat(cfg->ca_file, &st) != 0 || access(cfg->ca_file, R_OK) != 0) {
      diag_add(&ld->diag, ld->file, ld->ca_line, "cannot read ca-file %s: %s",
               q, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
      diag_add(&ld->diag, ld->file, ld->ca_line,
               "ca-file %s is not a regular file", q);
    } else {
      struct tls_creds *creds;
      int rv = tls_creds_new(&creds, cfg->ca_file);
      if (rv == 0) {
        tls_cache_seed(cfg->tls_cache, creds);
        tls_creds_unref(creds);
      }
      else if (rv == SMTPOUT_ERR_NOMEM)
        ld->fatal = rv;
      else
        diag_add(&ld->diag, ld->file, ld->ca_line,
                 "ca-file %s holds no usable PEM certificate", q);
    }
  }
  if (cfg->tls_priority != NULL) {
    size_t off = 0;
    int rv = tls_priority_check(cfg->tls_priority, &off);
    if (rv == SMTPOUT_ERR_NOMEM) {
      ld->fatal = rv;
    } else if (rv != 0) {
      char at[QUOTE_MAX + 16];
      const char *tail = cfg->tls_priority + off;
      value_quote(q, sizeof(q), cfg->tls_priority, strlen(cfg->tls_priority));
      value_quote(at, sizeof(at), tail, strlen(tail));
      diag_add(&ld->diag, ld->file, ld->priority_line,
               "bad value %s for priority: GnuTLS rejects it at %s", q, at);
    }
  }
}

/* The DNS settings that depend on each other, once the whole file (and
 * the map) is read. */
static void check_dns_settings(struct config_load *ld)
{
  smtpout_config *cfg = ld->cfg;
  char q[QUOTE_MAX + 16];
  if (cfg->dns_trust_anchor != NULL) {
    value_quote(q, sizeof(q), cfg->dns_trust_anchor,
                strlen(cfg->dns_trust_anchor));
    struct stat st;
    if (cfg->routing.dnssec != RESOLVER_VALIDATE) {
      /* Validation is what the file is for: a trust anchor next to
       * trust-ad or off would suggest a validation that never happens. */
      diag_add(&ld->diag, ld->file, ld->anchor_line,
               "trust-anchor-file is used only with dnssec = validate "
               "(dnssec is %s here)",
               resolver_mode_name(cfg->routing.dnssec));
    } else if (stat(cfg->dns_trust_anchor, &st) != 0 ||
               access(cfg->dns_trust_anchor, R_OK) != 0) {
      diag_add(&ld->diag, ld->file, ld->anchor_line,
               "cannot read trust-anchor-file %s: %s", q, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
      diag_add(&ld->diag, ld->file, ld->anchor_line,
               "trust-anchor-file %s is not a regular file", q);
    }
  }
  /* wave2-design 8.2: DANE cannot be required of a resolver that gives no
   * DNSSEC verdicts; say so now rather than defer every message. */
  if (cfg->routing.dnssec == RESOLVER_OFF && ld->dane_require_line != 0)
    diag_add(&ld->diag, ld->file, ld->dnssec_line,
             "dnssec = off makes DANE unavailable, but dane = require is "
             "set at %s:%u", ld->dane_require_file,
             (unsigned)ld->dane_require_line);
}

/* [queue.outbound.mta-sts]: the CA file must be usable now; the cache
 * file may not exist yet, but must not be something else. */
static void check_sts_settings(struct config_load *ld)
{
  smtpout_config *cfg = ld->cfg;
  char q[QUOTE_MAX + 16];
  struct stat st;
  if (cfg->sts_ca_file != NULL) {
    value_quote(q, sizeof(q), cfg->sts_ca_file, strlen(cfg->sts_ca_file));
    if (stat(cfg->sts_ca_file, &st) != 0 ||
        access(cfg->sts_ca_file, R_OK) != 0)
      diag_add(&ld->diag, ld->file, ld->sts_ca_line,
               "cannot read ca-file %s: %s", q, strerror(errno));
    else if (!S_ISREG(st.st_mode))
      diag_add(&ld->diag, ld->file, ld->sts_ca_line,
               "ca-file %s is not a regular file", q);
  }
  if (cfg->sts_cache_file != NULL &&
      stat(cfg->sts_cache_file, &st) == 0 && !S_ISREG(st.st_mode)) {
    value_quote(q, sizeof(q), cfg->sts_cache_file,
                strlen(cfg->sts_cache_file));
    diag_add(&ld->diag, ld->file, ld->sts_cache_line,
             "cache %s is not a regular file", q);
  }
  cfg->sts.cache_file = cfg->sts_cache_file;
  cfg->sts.ca_file = cfg->sts_ca_file;
}

/* [queue.outbound.tls-rpt] events: the file may not exist yet (the first
 * event makes it), but must not be a directory, a FIFO or a device. */
static void check_rpt_settings(struct config_load *ld)
{
  smtpout_config *cfg = ld->cfg;
  char q[QUOTE_MAX + 16];
  struct stat st;
  if (cfg->tlsrpt_events != NULL && stat(cfg->tlsrpt_events, &st) == 0 &&
      !S_ISREG(st.st_mode)) {
    value_quote(q, sizeof(q), cfg->tlsrpt_events,
                strlen(cfg->tlsrpt_events));
    diag_add(&ld->diag, ld->file, ld->rpt_events_line,
             "events %s is not a regular file", q);
  }
}

static int load(smtpout_config **pconfig, const char *text, size_t len,
                const char *name, const char *dir, char *errbuf,
                size_t errlen)
{
  smtpout_config *cfg;
  int rv = smtpout_config_new(&cfg);
  if (rv != 0)
    return rv;
  struct config_load ld = {.cfg = cfg};
  cfg->file = strdup(name);
  ld.dir = strdup(dir);
  if (cfg->file == NULL || ld.dir == NULL) {
    free(ld.dir);
    smtpout_config_unref(cfg);
    return SMTPOUT_ERR_NOMEM;
  }
  ld.file = cfg->file;

  config_ini_parse(&ld, text, len);
  if (!ld.fatal && (ld.ndests > 0 || ld.map_path != NULL) &&
      ruleset_new(&cfg->rules) != 0)
    ld.fatal = SMTPOUT_ERR_NOMEM;
  if (!ld.fatal)
    config_ini_build_rules(&ld);
  if (!ld.fatal && ld.map_path != NULL)
    config_map_load(&ld);
  if (!ld.fatal)
    check_tls_settings(&ld);
  if (!ld.fatal)
    check_dns_settings(&ld);
  if (!ld.fatal)
    check_sts_settings(&ld);
  if (!ld.fatal)
    check_rpt_settings(&ld);
  if (!ld.fatal)
    config_ini_build_relays(&ld);

  rv = ld.fatal;
  if (rv == 0 && ld.diag.count > 0) {
    rv = SMTPOUT_ERR_CONFIG;
    diag_write(&ld.diag, ld.file, errbuf, errlen);
  } else if (rv != 0 && errbuf != NULL && errlen > 0) {
    snprintf(errbuf, errlen, "%s: out of memory\n", ld.file);
  }
  config_ini_free(&ld);
  diag_free(&ld.diag);
  free(ld.map_path);
  free(ld.dir);
  if (rv != 0) {
    smtpout_config_unref(cfg);
    return rv;
  }
  *pconfig = cfg;
  return 0;
}

int smtpout_config_load_string(smtpout_config **pconfig, const char *text,
                               const char *name, char *errbuf, size_t errlen)
{
  if (pconfig == NULL || text == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (errbuf != NULL && errlen > 0)
    errbuf[0] = '\0';
  return load(pconfig, text, strlen(text), name ? name : "<string>", "",
              errbuf, errlen);
}

static int read_config(const char *path, char **text, size_t *len)
{
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return errno;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  int e = 0;
  while (buf != NULL) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap)
      break;
    if (cap >= CONFIG_MAX_SIZE) {
      e = EFBIG;
      break;
    }
    char *nb = realloc(buf, cap * 2);
    if (nb == NULL) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = nb;
    cap *= 2;
  }
  if (buf == NULL)
    e = ENOMEM;
  else if (e == 0 && ferror(f))
    e = errno ? errno : EIO;
  fclose(f);
  if (e != 0) {
    free(buf);
    return e;
  }
  *text = buf;
  *len = n;
  return 0;
}

int smtpout_config_load_file(smtpout_config **pconfig, const char *path,
                             char *errbuf, size_t errlen)
{
  if (pconfig == NULL || path == NULL || *path == '\0')
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (errbuf != NULL && errlen > 0)
    errbuf[0] = '\0';
  char *text = NULL;
  size_t len = 0;
  int e = read_config(path, &text, &len);
  if (e == ENOMEM)
    return SMTPOUT_ERR_NOMEM;
  if (e != 0) {
    if (errbuf != NULL && errlen > 0)
      snprintf(errbuf, errlen, "%s: cannot read: %s\n", path, strerror(e));
    return SMTPOUT_ERR_IO;
  }
  /* Relative paths inside the file are relative to its directory. */
  const char *slash = strrchr(path, '/');
  size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
  char *dir = strndup(path, dlen);
  int rv = dir ? load(pconfig, text, len, path, dir, errbuf, errlen)
               : SMTPOUT_ERR_NOMEM;
  free(dir);
  free(text);
  return rv;
}

uint32_t smtpout_config_timeout(const smtpout_config *config, int which)
{
  if (which < 0 || which >= SMTPOUT_TIMEOUT_COUNT)
    return 0;
  return config ? config->timeouts[which] : config_default_timeouts[which];
}

uint32_t smtpout_config_timeout_line(const smtpout_config *config, int which)
{
  if (config == NULL || which < 0 || which >= SMTPOUT_TIMEOUT_COUNT)
    return 0;
  return config->timeout_lines[which];
}

const char *smtpout_config_helo_name(const smtpout_config *config)
{
  return config ? config->helo_name : NULL;
}

const char *smtpout_config_ca_file(const smtpout_config *config)
{
  return config ? config->ca_file : NULL;
}

const char *smtpout_config_relay(const smtpout_config *config)
{
  return config ? config->relay : NULL;
}

int config_chunking(const smtpout_config *config)
{
  return config == NULL || !config->no_chunking;
}

const struct config_sts *config_sts(const smtpout_config *config)
{
  return config ? &config->sts : &default_sts;
}

const char *config_tlsrpt_events(const smtpout_config *config)
{
  return config ? config->tlsrpt_events : NULL;
}

const struct config_relay *config_relay_find(const smtpout_config *config,
                                             const char *label)
{
  if (config == NULL || label == NULL)
    return NULL;
  for (size_t i = 0; i < config->nrelays; i++)
    if (strcmp(config->relays[i].label, label) == 0)
      return &config->relays[i];
  return NULL;
}

int config_relay_secret(const struct config_relay *relay, char *out,
                        size_t outlen)
{
  if (relay == NULL || relay->auth_password_file == NULL || out == NULL ||
      outlen == 0)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  out[0] = '\0';
  /* O_NOFOLLOW is not used: a symbolic link to a private file is fine;
   * fstat() checks what was opened, not what the name pointed to. */
  FILE *f = fopen(relay->auth_password_file, "rbe");
  if (f == NULL)
    return SMTPOUT_ERR_IO;
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
      (st.st_mode & (S_IRWXG | S_IRWXO))) {
    fclose(f);
    return SMTPOUT_ERR_IO;
  }
  size_t n = 0;
  int c;
  int rv = 0;
  while ((c = getc(f)) != EOF && c != '\n') {
    if (n + 1 >= outlen) {
      rv = SMTPOUT_ERR_INVALID_ARGUMENT;
      break;
    }
    out[n++] = (char)c;
  }
  if (rv == 0 && ferror(f))
    rv = SMTPOUT_ERR_IO;
  fclose(f);
  if (rv == 0 && n > 0 && out[n - 1] == '\r')
    n--;
  if (rv == 0 && n == 0)
    rv = SMTPOUT_ERR_IO;
  if (rv != 0) {
    /* Never leave part of a secret behind. */
    memset(out, 0, n < outlen ? n + 1 : outlen);
    return rv;
  }
  out[n] = '\0';
  return (int)n;
}

const char *smtpout_config_tls_priority(const smtpout_config *config)
{
  return config && config->tls_priority ? config->tls_priority
                                        : CONFIG_DEFAULT_TLS_PRIORITY;
}

const struct config_routing *config_routing(const smtpout_config *config)
{
  return config ? &config->routing : &default_routing;
}

const char *config_dns_resolver(const smtpout_config *config)
{
  return config ? config->dns_resolver : NULL;
}

const char *config_dns_trust_anchor(const smtpout_config *config)
{
  return config ? config->dns_trust_anchor : NULL;
}

struct tls_cache *config_tls_cache(const smtpout_config *config)
{
  return config ? config->tls_cache : NULL;
}

int config_trust(const smtpout_config *config, struct tls_creds **out)
{
  return tls_cache_get(config->tls_cache, config->ca_file, out);
}
