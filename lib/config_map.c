/*
 * config_map.c — the policy map: one destination per line, for tables
 * too large for INI sections (a million entries).
 *
 *   # comment
 *   bank.example            starttls=require
 *   .bank.example           starttls=require allow-invalid-certs=false
 *   mx:*.mail.example.net   allow-invalid-certs=true
 *   .dnssec.example         dane=require
 *
 * The file is read whole and parsed in place: no line-length limit, no
 * per-line allocation, and the hash table is sized once from the number
 * of lines that can hold an entry, so loading stays linear in the file
 * size and what stays allocated is linear in the entries: blank and
 * comment lines cost only their bytes in the transient read buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_impl_int.h"

#define MAP_MAX_SIZE ((size_t)1 << 32)

static int read_file(const char *path, char **data, size_t *len)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    int e = errno;
    if (e == 0 || S_ISDIR(st.st_mode))
      e = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    close(fd);
    return e;
  }
  if ((uint64_t)st.st_size >= MAP_MAX_SIZE) {
    close(fd);
    return EFBIG;
  }
  size_t size = (size_t)st.st_size;
  char *buf = malloc(size + 1);
  if (buf == NULL) {
    close(fd);
    return ENOMEM;
  }
  size_t got = 0;
  while (got < size) {
    ssize_t n = read(fd, buf + got, size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      int e = n < 0 ? errno : EIO; /* shrank while reading */
      free(buf);
      close(fd);
      return e;
    }
    got += (size_t)n;
  }
  close(fd);
  buf[size] = '\0';
  *data = buf;
  *len = size;
  return 0;
}

static bool is_blank(char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

struct map_line {
  struct config_load *ld;
  const char *file;
  uint32_t lineno;
  uint32_t origin;
};

#define MERR(m, ...) diag_add(&(m)->ld->diag, (m)->file, (m)->lineno, \
                              __VA_ARGS__)

/* Parses the "key=value" token tok[0..len); `rest` is what follows it
 * on the line.  Returns false (reported) on a bad token. */
static bool map_setting(struct map_line *m, const char *tok, size_t len,
                        const char *rest, size_t restlen, struct rule *r)
{
  char q[QUOTE_MAX + 16];
  const char *eq = memchr(tok, '=', len);
  if (eq == NULL || eq == tok) {
    size_t i = 0;
    while (i < restlen && is_blank(rest[i]))
      i++;
    bool spaced = eq == tok || (i < restlen && rest[i] == '=');
    value_quote(q, sizeof(q), tok, len);
    MERR(m, "expected KEY=VALUE after the pattern, got %s%s", q,
         spaced ? " (no spaces around \"=\": write starttls=require)"
                : " (keys: starttls, allow-invalid-certs, dane, "
                  "mta-sts)");
    return false;
  }
  size_t klen = (size_t)(eq - tok);
  const char *v = eq + 1;
  size_t vlen = len - klen - 1;
  value_unquote(&v, &vlen);
  int value;
  if (klen == 8 && memcmp(tok, "starttls", 8) == 0) {
    if (r->starttls != KNOB_UNSET) {
      MERR(m, "duplicate key starttls");
      return false;
    }
    if (value_starttls(v, vlen, &value) != 0) {
      value_quote(q, sizeof(q), v, vlen);
      MERR(m, "bad value %s for starttls (accepted: %s)", q,
           STARTTLS_ACCEPTED);
      return false;
    }
    r->starttls = (int8_t)value;
    r->starttls_line = m->lineno;
  } else if (klen == 19 && memcmp(tok, "allow-invalid-certs", 19) == 0) {
    if (r->allow_invalid_certs != KNOB_UNSET) {
      MERR(m, "duplicate key allow-invalid-certs");
      return false;
    }
    if (value_bool(v, vlen, &value) != 0) {
      value_quote(q, sizeof(q), v, vlen);
      MERR(m, "bad value %s for allow-invalid-certs (accepted: %s)", q,
           BOOL_ACCEPTED);
      return false;
    }
    r->allow_invalid_certs = (int8_t)value;
    r->allow_line = m->lineno;
  } else if (klen == 4 && memcmp(tok, "dane", 4) == 0) {
    if (r->dane != KNOB_UNSET) {
      MERR(m, "duplicate key dane");
      return false;
    }
    if (value_dane(v, vlen, &value) != 0) {
      value_quote(q, sizeof(q), v, vlen);
      MERR(m, "bad value %s for dane (accepted: %s)", q, DANE_ACCEPTED);
      return false;
    }
    r->dane = (int8_t)value;
    r->dane_line = m->lineno;
    if (value == SMTPOUT_DANE_REQUIRE && m->ld->dane_require_line == 0) {
      m->ld->dane_require_file = m->file;
      m->ld->dane_require_line = m->lineno;
    }
  } else if (klen == 7 && memcmp(tok, "mta-sts", 7) == 0) {
    if (r->mta_sts != KNOB_UNSET) {
      MERR(m, "duplicate key mta-sts");
      return false;
    }
    if (value_mta_sts(v, vlen, &value) != 0) {
      value_quote(q, sizeof(q), v, vlen);
      MERR(m, "bad value %s for mta-sts (accepted: %s)", q,
           MTA_STS_ACCEPTED);
      return false;
    }
    r->mta_sts = (int8_t)value;
    r->mta_sts_line = m->lineno;
  } else {
    value_quote(q, sizeof(q), tok, klen);
    MERR(m, "unknown key %s (accepted: starttls, allow-invalid-certs, "
            "dane, mta-sts)", q);
    return false;
  }
  return true;
}

static void map_parse_line(struct map_line *m, const char *s, size_t len)
{
  struct config_load *ld = m->ld;
  size_t i = 0;
  while (i < len && is_blank(s[i]))
    i++;
  if (i == len || s[i] == '#')
    return;
  if (memchr(s, '\0', len) != NULL) {
    MERR(m, "NUL character in line");
    return;
  }

  size_t start = i;
  while (i < len && !is_blank(s[i]))
    i++;
  char name[NAME_MAX_LEN], why[256];
  int kind;
  int rv = pattern_parse(s + start, i - start, LIST_MAP, &kind, name, why,
                         sizeof(why));
  if (rv == SMTPOUT_ERR_NOMEM) {
    ld->fatal = rv;
    return;
  }
  bool ok = rv == 0;
  if (!ok)
    MERR(m, "%s", why);

  struct rule r = {
    .starttls = KNOB_UNSET,
    .allow_invalid_certs = KNOB_UNSET,
    .dane = KNOB_UNSET,
    .mta_sts = KNOB_UNSET,
    .origin = m->origin,
  };
  bool any = false;
  for (;;) {
    while (i < len && is_blank(s[i]))
      i++;
    if (i == len || s[i] == '#')
      break;
    start = i;
    while (i < len && !is_blank(s[i]))
      i++;
    if (map_setting(m, s + start, i - start, s + i, len - i, &r)) {
      any = true;
    } else {
      ok = false;
      /* After a token that is not KEY=VALUE, the rest of the line cannot
       * be read reliably: one report is enough. */
      if (memchr(s + start, '=', i - start) == NULL || s[start] == '=')
        break;
    }
  }
  if (!any && ok) {
    MERR(m, "sets none of starttls, allow-invalid-certs, dane, mta-sts");
    return;
  }
  if (!ok)
    return;

  uint32_t index;
  struct rule_match prior;
  rv = ruleset_add_rule(ld->cfg->rules, &r, &index);
  if (rv == 0)
    rv = ruleset_claim(ld->cfg->rules, kind, name, strlen(name), index,
                       m->lineno, &prior);
  if (rv == 1)
    config_report_conflict(ld, m->file, m->lineno, kind, name, &prior);
  else if (rv == SMTPOUT_ERR_NOMEM)
    ld->fatal = rv;
  else if (rv != 0)
    MERR(m, "too many rules (the table holds at most 4 GiB of names)");
}

void config_map_load(struct config_load *ld)
{
  char *data = NULL;
  size_t len = 0;
  int e = read_file(ld->map_path, &data, &len);
  if (e == ENOMEM) {
    ld->fatal = SMTPOUT_ERR_NOMEM;
    return;
  }
  if (e != 0) {
    char q[QUOTE_MAX + 16];
    value_quote(q, sizeof(q), ld->map_path, strlen(ld->map_path));
    diag_add(&ld->diag, ld->file, ld->map_line,
             "cannot read policy-map %s: %s", q, strerror(e));
    return;
  }

  struct map_line m = {.ld = ld, .file = ld->map_path};
  /* Room for the lines that can hold an entry: blank and comment lines
   * must cost nothing (a file of blank lines once reserved a table slot,
   * a rule and key space for each). */
  size_t entries = 0;
  for (const char *p = data, *end = data + len; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *eol = nl ? nl : end;
    while (p < eol && is_blank(*p))
      p++;
    entries += p < eol && *p != '#';
    p = eol + 1;
  }
  if (ruleset_reserve(ld->cfg->rules, entries) != 0 ||
      ruleset_add_origin(ld->cfg->rules, ld->map_path, NULL, 0, &m.origin)) {
    ld->fatal = SMTPOUT_ERR_NOMEM;
    free(data);
    return;
  }
  const char *p = data, *end = data + len;
  while (p < end && !ld->fatal) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *eol = nl ? nl : end;
    m.lineno++;
    map_parse_line(&m, p, (size_t)(eol - p));
    p = eol + 1;
  }
  free(data);
}
