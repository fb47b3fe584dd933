/*
 * sasl.c — see sasl_int.h.
 *
 * The exchange, for every mechanism, is: the AUTH line (with the initial
 * response when the mechanism has one and it fits), then one response per
 * 334 challenge, then the server's 235 or 535.  A client counts the
 * messages it has sent; what a challenge means depends only on the
 * mechanism and that count, never on the challenge's text (LOGIN's
 * prompts say "Username:" and "Password:" in many languages and
 * encodings, so they are answered in order, unread).
 *
 * SCRAM runs in GNU SASL, but every server message is checked here first:
 * GNU SASL takes the iteration count from the server-first message
 * straight into PBKDF2, so a count outside the bounds is refused before
 * GNU SASL ever sees the message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifdef HAVE_GSASL
#include <gsasl.h>
#endif

#include "base64_int.h"
#include "sasl_int.h"
#include "smtpout/common.h"

static const char *const mech_names[SASL_MECH_COUNT] = {
  [SASL_MECH_PLAIN] = "PLAIN",
  [SASL_MECH_LOGIN] = "LOGIN",
  [SASL_MECH_XOAUTH2] = "XOAUTH2",
  [SASL_MECH_SCRAM_SHA_256] = "SCRAM-SHA-256",
  [SASL_MECH_SCRAM_SHA_256_PLUS] = "SCRAM-SHA-256-PLUS",
};

/* The default preference, strongest first (sasl_mech_default_list). */
static const enum sasl_mech default_prefs[] = {
  SASL_MECH_SCRAM_SHA_256_PLUS, SASL_MECH_SCRAM_SHA_256,
  SASL_MECH_PLAIN, SASL_MECH_LOGIN,
};

#define ERROR_MAX 256

struct sasl_client {
  enum sasl_mech mech;
  unsigned sent;        /* client messages sent (the initial response too) */
  int started;          /* the AUTH line was produced */
  int ir_pending;       /* AUTH went without its initial response */
  int failed;           /* an error ended the exchange */
  int server_refused;   /* the server refused in-band (XOAUTH2, SCRAM e=) */
  int verified;         /* SCRAM: the server signature verified */
  unsigned sasl_lib_steps; /* messages handed to GNU SASL */
  char *username;
  char *secret;
  size_t secret_len;
  uint8_t *ir;          /* the initial response, raw, until sent */
  size_t ir_len;
  uint32_t iter_min, iter_max;
  char error[ERROR_MAX];
  char server_error[ERROR_MAX];
#ifdef HAVE_GSASL
  Gsasl *gsasl;
  Gsasl_session *gs;
#endif
  size_t out_len;
  uint8_t out[SASL_LINE_MAX];
};

/* ------------------------------------------------------------------ */
/* Mechanism names and choice                                         */

const char *sasl_mech_name(enum sasl_mech mech)
{
  if ((int)mech <= SASL_MECH_NONE || (int)mech >= SASL_MECH_COUNT)
    return NULL;
  return mech_names[mech];
}

enum sasl_mech sasl_mech_lookup(const char *name, size_t len)
{
  for (int m = 1; m < SASL_MECH_COUNT; m++)
    if (strlen(mech_names[m]) == len &&
        strncasecmp(mech_names[m], name, len) == 0)
      return (enum sasl_mech)m;
  return SASL_MECH_NONE;
}

int sasl_mech_built(enum sasl_mech mech)
{
  switch (mech) {
  case SASL_MECH_PLAIN:
  case SASL_MECH_LOGIN:
  case SASL_MECH_XOAUTH2:
    return 1;
  case SASL_MECH_SCRAM_SHA_256:
  case SASL_MECH_SCRAM_SHA_256_PLUS:
#ifdef HAVE_GSASL
    return 1;
#else
    return 0;
#endif
  default:
    return 0;
  }
}

static int is_sep(char ch)
{
  return ch == ' ' || ch == '\t' || ch == ',' || ch == '=';
}

/* Calls `fn` for each word of `text`; stops when it returns non-zero. */
static int each_word(const char *text, size_t len,
                     int (*fn)(const char *w, size_t n, void *arg), void *arg)
{
  size_t i = 0;
  while (i < len) {
    while (i < len && is_sep(text[i]))
      i++;
    size_t start = i;
    while (i < len && !is_sep(text[i]))
      i++;
    if (i > start) {
      int rv = fn(text + start, i - start, arg);
      if (rv != 0)
        return rv;
    }
  }
  return 0;
}

static int match_word(const char *w, size_t n, void *arg)
{
  return sasl_mech_lookup(w, n) == *(enum sasl_mech *)arg;
}

int sasl_mech_offered(const char *offered, size_t len, enum sasl_mech mech)
{
  if (!offered || mech == SASL_MECH_NONE)
    return 0;
  return each_word(offered, len, match_word, &mech);
}

size_t sasl_mech_default_list(enum sasl_mech *out, size_t cap)
{
  size_t n = 0;
  for (size_t i = 0; i < sizeof(default_prefs) / sizeof(default_prefs[0]);
       i++)
    if (sasl_mech_built(default_prefs[i]) && n < cap)
      out[n++] = default_prefs[i];
  return n;
}

struct list_parse {
  enum sasl_mech *out;
  size_t cap, n;
  char *err;
  size_t errlen;
};

/* The word as it may appear in an error: printable, at most 40 bytes. */
static void quote_word(char *dst, size_t cap, const char *w, size_t n)
{
  size_t k = 0;
  for (size_t i = 0; i < n && k + 1 < cap && i < 40; i++)
    dst[k++] = (w[i] > 0x20 && w[i] < 0x7f) ? w[i] : '?';
  dst[k] = '\0';
}

static int list_word(const char *w, size_t n, void *arg)
{
  struct list_parse *lp = arg;
  char q[48];
  quote_word(q, sizeof(q), w, n);
  enum sasl_mech m = sasl_mech_lookup(w, n);
  /* Through the bounds-checked getter: gcc with UBSan, having inlined the
   * lookup's loop, cannot tell that `m` stays inside mech_names[]. */
  const char *name = sasl_mech_name(m);
  if (name == NULL) {
    snprintf(lp->err, lp->errlen,
             "unknown AUTH mechanism \"%s\" (choices: SCRAM-SHA-256-PLUS, "
             "SCRAM-SHA-256, PLAIN, LOGIN, XOAUTH2)", q);
    return SMTPOUT_ERR_CONFIG;
  }
  if (!sasl_mech_built(m)) {
    snprintf(lp->err, lp->errlen,
             "AUTH mechanism %s needs smtpout built with GNU SASL "
             "(-Dgsasl=enabled)", name);
    return SMTPOUT_ERR_CONFIG;
  }
  for (size_t i = 0; i < lp->n; i++)
    if (lp->out[i] == m) {
      snprintf(lp->err, lp->errlen, "AUTH mechanism %s is listed twice",
               name);
      return SMTPOUT_ERR_CONFIG;
    }
  if (lp->n == lp->cap) {
    snprintf(lp->err, lp->errlen, "more than %zu AUTH mechanisms", lp->cap);
    return SMTPOUT_ERR_CONFIG;
  }
  lp->out[lp->n++] = m;
  return 0;
}

int sasl_mech_list_parse(const char *text, enum sasl_mech *out, size_t cap,
                         char *err, size_t errlen)
{
  struct list_parse lp = {out, cap, 0, err, errlen};
  if (errlen > 0)
    err[0] = '\0';
  if (!text || !out)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  int rv = each_word(text, strlen(text), list_word, &lp);
  if (rv != 0)
    return rv;
  if (lp.n == 0) {
    snprintf(err, errlen, "the AUTH mechanism list is empty");
    return SMTPOUT_ERR_CONFIG;
  }
  return (int)lp.n;
}

int sasl_credentials_check(const char *mechanisms, const char *username,
                           const char *secret, enum sasl_mech *prefs,
                           size_t *nprefs, size_t *pslen)
{
  if (username == NULL || secret == NULL)
    return -1;
  size_t ulen = strnlen(username, SASL_USERNAME_MAX + 1);
  size_t slen = strnlen(secret, SASL_SECRET_MAX + 1);
  if (ulen == 0 || ulen > SASL_USERNAME_MAX || slen == 0 ||
      slen > SASL_SECRET_MAX)
    return -1;
  *nprefs = 0;
  if (mechanisms != NULL && mechanisms[0] != '\0') {
    char err[160];
    int n = sasl_mech_list_parse(mechanisms, prefs, SASL_MECH_COUNT, err,
                                 sizeof(err));
    if (n <= 0)
      return -1;
    *nprefs = (size_t)n;
  }
  *pslen = slen;
  return 0;
}

enum sasl_mech sasl_choose(const char *offered, size_t len,
                           const enum sasl_mech *prefs, size_t nprefs,
                           int have_cb)
{
  enum sasl_mech defaults[SASL_MECH_COUNT];
  if (!prefs) {
    nprefs = sasl_mech_default_list(defaults, SASL_MECH_COUNT);
    prefs = defaults;
  }
  for (size_t i = 0; i < nprefs; i++) {
    enum sasl_mech m = prefs[i];
    if (!sasl_mech_built(m) || !sasl_mech_offered(offered, len, m))
      continue;
    if (m == SASL_MECH_SCRAM_SHA_256_PLUS && !have_cb)
      continue;
    return m;
  }
  return SASL_MECH_NONE;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                         */

/* Wipes and frees a string of the client's. */
static void free_secret(char *s, size_t n)
{
  if (!s)
    return;
  explicit_bzero(s, n);
  free(s);
}

static char *dup_bounded(const char *s, size_t max, size_t *len)
{
  size_t n = strnlen(s, max + 1);
  if (n == 0 || n > max)
    return NULL;
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, s, n + 1);
    *len = n;
  }
  return d;
}

static int is_scram(enum sasl_mech m)
{
  return m == SASL_MECH_SCRAM_SHA_256 || m == SASL_MECH_SCRAM_SHA_256_PLUS;
}

/* Checks what each mechanism can carry.  PLAIN separates with NUL, so
 * any other byte goes; XOAUTH2 separates with ^A, and a bearer token is
 * printable ASCII (RFC 6750 section 2.1, b64token). */
static int params_valid(const struct sasl_params *p)
{
  if (p->mech == SASL_MECH_XOAUTH2) {
    if (strchr(p->username, '\x01'))
      return 0;
    for (const char *t = p->secret; *t; t++)
      if (*t <= 0x20 || *t >= 0x7f)
        return 0;
  }
  if (p->mech == SASL_MECH_SCRAM_SHA_256_PLUS &&
      (p->cb_type == SASL_CB_NONE || !p->cb_data || p->cb_len == 0))
    return 0;
  if (p->cb_type != SASL_CB_NONE &&
      (p->cb_type != SASL_CB_TLS_EXPORTER &&
       p->cb_type != SASL_CB_TLS_UNIQUE))
    return 0;
  if (p->cb_type != SASL_CB_NONE &&
      (!p->cb_data || p->cb_len == 0 || p->cb_len > SASL_CB_MAX))
    return 0;
  uint32_t lo = p->scram_iter_min ? p->scram_iter_min : SASL_SCRAM_ITER_MIN;
  uint32_t hi = p->scram_iter_max ? p->scram_iter_max : SASL_SCRAM_ITER_MAX;
  return lo <= hi;
}

#ifdef HAVE_GSASL
/* Overwrites a property GNU SASL holds before it frees it.
 * gsasl_property_fast() returns its own copy, never a callback's. */
static void wipe_property(Gsasl_session *gs, Gsasl_property prop)
{
  char *v = (char *)gsasl_property_fast(gs, prop);
  if (v)
    explicit_bzero(v, strlen(v));
}

static int scram_open(struct sasl_client *c, const struct sasl_params *p)
{
  if (gsasl_init(&c->gsasl) != GSASL_OK) {
    c->gsasl = NULL;
    return SMTPOUT_ERR_NOMEM;
  }
  int rc = gsasl_client_start(c->gsasl, mech_names[c->mech], &c->gs);
  if (rc != GSASL_OK) {
    c->gs = NULL;
    return rc == GSASL_MALLOC_ERROR ? SMTPOUT_ERR_NOMEM : SMTPOUT_ERR_CONFIG;
  }
  if (gsasl_property_set(c->gs, GSASL_AUTHID, c->username) != GSASL_OK ||
      gsasl_property_set(c->gs, GSASL_PASSWORD, c->secret) != GSASL_OK)
    return SMTPOUT_ERR_NOMEM;
  /* Binding data goes to GNU SASL for -PLUS only: given it for plain
   * SCRAM, GNU SASL 2.2 refuses to start instead of sending "y"
   * (sasl_int.h). */
  if (c->mech == SASL_MECH_SCRAM_SHA_256_PLUS) {
    char b64[BASE64_LEN(SASL_CB_MAX) + 1];
    b64[base64_encode(p->cb_data, p->cb_len, b64)] = '\0';
    Gsasl_property prop = p->cb_type == SASL_CB_TLS_EXPORTER
                              ? GSASL_CB_TLS_EXPORTER
                              : GSASL_CB_TLS_UNIQUE;
    if (gsasl_property_set(c->gs, prop, b64) != GSASL_OK)
      return SMTPOUT_ERR_NOMEM;
  }
  return 0;
}

static void scram_close(struct sasl_client *c)
{
  if (c->gs) {
    wipe_property(c->gs, GSASL_PASSWORD);
    wipe_property(c->gs, GSASL_SCRAM_SALTED_PASSWORD);
    gsasl_finish(c->gs);
  }
  if (c->gsasl)
    gsasl_done(c->gsasl);
}
#endif

void sasl_client_free(struct sasl_client *c)
{
  if (!c)
    return;
#ifdef HAVE_GSASL
  scram_close(c);
#endif
  free_secret(c->username, c->username ? strlen(c->username) : 0);
  free_secret(c->secret, c->secret_len);
  free_secret((char *)c->ir, c->ir_len);
  explicit_bzero(c, sizeof(*c));
  free(c);
}

int sasl_client_new(struct sasl_client **out, const struct sasl_params *p)
{
  if (!out)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  *out = NULL;
  if (!p || !sasl_mech_name(p->mech) || !p->username || !p->secret)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (!sasl_mech_built(p->mech))
    return SMTPOUT_ERR_CONFIG;
  size_t ulen = strnlen(p->username, SASL_USERNAME_MAX + 1);
  size_t slen = strnlen(p->secret, SASL_SECRET_MAX + 1);
  if (ulen == 0 || ulen > SASL_USERNAME_MAX || slen == 0 ||
      slen > SASL_SECRET_MAX || !params_valid(p))
    return SMTPOUT_ERR_INVALID_ARGUMENT;

  struct sasl_client *c = calloc(1, sizeof(*c));
  if (!c)
    return SMTPOUT_ERR_NOMEM;
  c->mech = p->mech;
  c->iter_min = p->scram_iter_min ? p->scram_iter_min : SASL_SCRAM_ITER_MIN;
  c->iter_max = p->scram_iter_max ? p->scram_iter_max : SASL_SCRAM_ITER_MAX;
  size_t ignored;
  c->username = dup_bounded(p->username, SASL_USERNAME_MAX, &ignored);
  c->secret = dup_bounded(p->secret, SASL_SECRET_MAX, &c->secret_len);
  if (!c->username || !c->secret) {
    sasl_client_free(c);
    return SMTPOUT_ERR_NOMEM;
  }
#ifdef HAVE_GSASL
  if (is_scram(c->mech)) {
    int rv = scram_open(c, p);
    if (rv != 0) {
      sasl_client_free(c);
      return rv;
    }
  }
#endif
  *out = c;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Errors and output                                                  */

const char *sasl_client_error(const struct sasl_client *c)
{
  return c ? c->error : "";
}

const char *sasl_client_server_error(const struct sasl_client *c)
{
  return c ? c->server_error : "";
}

unsigned sasl_client_library_steps(const struct sasl_client *c)
{
  /* The client-first message comes out of GNU SASL without a server
   * message going in. */
  return c && c->sasl_lib_steps > 0 ? c->sasl_lib_steps - 1 : 0;
}

static void clear_out(struct sasl_client *c)
{
  explicit_bzero(c->out, c->out_len);
  c->out_len = 0;
}

/* Ends the exchange with an error: the output becomes the cancel line. */
static int fail(struct sasl_client *c, int code, const char *why)
{
  snprintf(c->error, sizeof(c->error), "%s", why);
  c->failed = 1;
  clear_out(c);
  memcpy(c->out, "*\r\n", 3);
  c->out_len = 3;
  return code;
}

/* Sets c->out to `prefix` followed by base64(msg) (or by `empty_as` for
 * an empty message) and CRLF. */
static int put_line(struct sasl_client *c, const char *prefix,
                    const uint8_t *msg, size_t n, const char *empty_as)
{
  size_t plen = strlen(prefix);
  size_t blen = n > 0 ? base64_encoded_len(n) : strlen(empty_as);
  clear_out(c);
  if (plen + blen + 2 > SASL_LINE_MAX)
    return fail(c, SMTPOUT_ERR_INVALID_ARGUMENT,
                "the AUTH response would exceed RFC 4954's line limit");
  memcpy(c->out, prefix, plen);
  if (n > 0)
    base64_encode(msg, n, (char *)c->out + plen);
  else
    memcpy(c->out + plen, empty_as, blen);
  memcpy(c->out + plen + blen, "\r\n", 2);
  c->out_len = plen + blen + 2;
  c->sent++;
  return 0;
}

static int respond(struct sasl_client *c, const uint8_t *msg, size_t n)
{
  return put_line(c, "", msg, n, "");
}

/* Whether `needle` occurs in `hay`. */
static int contains(const uint8_t *hay, size_t n, const char *needle,
                    size_t k)
{
  for (size_t i = 0; k > 0 && i + k <= n; i++)
    if (hay[i] == (uint8_t)needle[0] && memcmp(hay + i, needle, k) == 0)
      return 1;
  return 0;
}

int sasl_client_secret_in(const struct sasl_client *c, const uint8_t *text,
                          size_t len)
{
  if (c == NULL)
    return 0;
  if (c->secret && contains(text, len, c->secret, c->secret_len))
    return 1;
  /* A server echoing the response it was sent (PLAIN's, LOGIN's password
   * line: the secret in base64): the last word of the last line, while
   * the reply to it is read. */
  if (c->out_len <= 2)
    return 0;
  size_t n = c->out_len - 2, w = n;
  while (w > 0 && c->out[w - 1] != ' ')
    w--;
  return n - w >= 8 && contains(text, len, (const char *)c->out + w, n - w);
}

/* Keeps the server's in-band refusal as printable ASCII, unless it
 * contains the secret (a server echoing a token back must not get it
 * into a log through us). */
static void keep_server_error(struct sasl_client *c, const uint8_t *t,
                              size_t n)
{
  if (contains(t, n, c->secret, c->secret_len)) {
    snprintf(c->server_error, sizeof(c->server_error),
             "(withheld: the server's text contained the secret)");
    return;
  }
  size_t k = 0;
  for (size_t i = 0; i < n && k + 1 < sizeof(c->server_error); i++)
    c->server_error[k++] = (t[i] >= 0x20 && t[i] < 0x7f) ? (char)t[i] : '?';
  c->server_error[k] = '\0';
}

/* ------------------------------------------------------------------ */
/* Initial responses                                                  */

/* Builds the initial response of PLAIN or XOAUTH2 into c->ir. */
static int build_ir(struct sasl_client *c)
{
  size_t ulen = strlen(c->username), slen = c->secret_len;
  size_t n;
  uint8_t *ir;
  if (c->mech == SASL_MECH_PLAIN) {
    /* RFC 4616 section 2: [authzid] NUL authcid NUL passwd; an empty
     * authzid asks for the identity the credentials give. */
    n = 1 + ulen + 1 + slen;
    if (!(ir = malloc(n)))
      return SMTPOUT_ERR_NOMEM;
    ir[0] = 0;
    memcpy(ir + 1, c->username, ulen);
    ir[1 + ulen] = 0;
    memcpy(ir + 2 + ulen, c->secret, slen);
  } else {
    /* "user=" U ^A "auth=Bearer " T ^A ^A (Google's and Microsoft's
     * XOAUTH2 documentation). */
    static const char a[] = "user=", b[] = "\x01" "auth=Bearer ",
                      e[] = "\x01\x01";
    n = (sizeof(a) - 1) + ulen + (sizeof(b) - 1) + slen + (sizeof(e) - 1);
    if (!(ir = malloc(n)))
      return SMTPOUT_ERR_NOMEM;
    uint8_t *w = ir;
    memcpy(w, a, sizeof(a) - 1);
    w += sizeof(a) - 1;
    memcpy(w, c->username, ulen);
    w += ulen;
    memcpy(w, b, sizeof(b) - 1);
    w += sizeof(b) - 1;
    memcpy(w, c->secret, slen);
    w += slen;
    memcpy(w, e, sizeof(e) - 1);
  }
  c->ir = ir;
  c->ir_len = n;
  return 0;
}

#ifdef HAVE_GSASL
/* The SCRAM client-first message from GNU SASL, into c->ir. */
static int scram_first(struct sasl_client *c)
{
  char *o = NULL;
  size_t n = 0;
  c->sasl_lib_steps++;
  int rc = gsasl_step(c->gs, "", 0, &o, &n);
  if (rc != GSASL_NEEDS_MORE) {
    gsasl_free(o);
    if (rc == GSASL_MALLOC_ERROR)
      return fail(c, SMTPOUT_ERR_NOMEM, "out of memory");
    char why[ERROR_MAX];
    snprintf(why, sizeof(why), "SCRAM cannot start: %s", gsasl_strerror(rc));
    return fail(c, ERR_PROTOCOL, why);
  }
  c->ir = (uint8_t *)malloc(n > 0 ? n : 1);
  if (!c->ir) {
    gsasl_free(o);
    return SMTPOUT_ERR_NOMEM;
  }
  memcpy(c->ir, o, n);
  c->ir_len = n;
  gsasl_free(o);
  return 0;
}
#endif

static void drop_ir(struct sasl_client *c)
{
  free_secret((char *)c->ir, c->ir_len);
  c->ir = NULL;
  c->ir_len = 0;
}

int sasl_client_start(struct sasl_client *c, const uint8_t **line,
                      size_t *len)
{
  if (!c || !line || !len)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (c->started || c->failed)
    return SMTPOUT_ERR_INVALID_STATE;
  c->started = 1;
  int rv = 0;
  switch (c->mech) {
  case SASL_MECH_PLAIN:
  case SASL_MECH_XOAUTH2:
    rv = build_ir(c);
    break;
  case SASL_MECH_LOGIN:
    break;
  default:
#ifdef HAVE_GSASL
    rv = scram_first(c);
#endif
    break;
  }
  if (rv != 0) {
    if (!c->failed)
      fail(c, rv, "out of memory");
    return rv;
  }

  char prefix[64];
  snprintf(prefix, sizeof(prefix), "AUTH %s", mech_names[c->mech]);
  if (!c->ir) {
    memcpy(c->out, prefix, strlen(prefix));
    memcpy(c->out + strlen(prefix), "\r\n", 2);
    c->out_len = strlen(prefix) + 2;
  } else if (strlen(prefix) + 1 + base64_encoded_len(c->ir_len) + 2 <=
             SASL_AUTH_LINE_MAX) {
    /* RFC 4954 section 4: an empty initial response is sent as "=". */
    strcat(prefix, " ");
    rv = put_line(c, prefix, c->ir, c->ir_len, "=");
    drop_ir(c);
    if (rv != 0)
      return rv;
  } else {
    /* Too long for the AUTH line: the server asks for it with an empty
     * challenge (RFC 4954 section 4, RFC 4422 section 5). */
    c->ir_pending = 1;
    memcpy(c->out, prefix, strlen(prefix));
    memcpy(c->out + strlen(prefix), "\r\n", 2);
    c->out_len = strlen(prefix) + 2;
  }
  *line = c->out;
  *len = c->out_len;
  return 0;
}

/* ------------------------------------------------------------------ */
/* SCRAM checks before GNU SASL                                       */

#ifdef HAVE_GSASL
/* RFC 5802 section 7: attribute values are printable ASCII; the whole
 * message is.  A NUL or a control byte would let this parser and GNU
 * SASL's read one message two ways. */
static int scram_printable(const uint8_t *m, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (m[i] < 0x21 || m[i] > 0x7e)
      return 0;
  return n > 0;
}

/* Finds attribute `k` at the start of `m` ("k=value,..."): returns the
 * value's length (up to the next comma) and sets *v, or -1. */
static long scram_attr(const uint8_t *m, size_t n, char k,
                       const uint8_t **v)
{
  if (n < 2 || m[0] != (uint8_t)k || m[1] != '=')
    return -1;
  const uint8_t *comma = memchr(m + 2, ',', n - 2);
  *v = m + 2;
  return comma ? comma - (m + 2) : (long)(n - 2);
}

/*
 * server-first-message = [reserved-mext ","] nonce "," salt ","
 *                        iteration-count ["," extensions]
 * (RFC 5802 section 7).  Checks the shape and the iteration count; the
 * nonce and salt contents are GNU SASL's to check.
 */
static int scram_check_server_first(struct sasl_client *c, const uint8_t *m,
                                    size_t n)
{
  const uint8_t *v;
  long vl;
  char why[ERROR_MAX];
  if (!scram_printable(m, n))
    return fail(c, ERR_PROTOCOL,
                "SCRAM server-first message has a byte outside printable "
                "ASCII");
  if (n >= 2 && m[0] == 'm' && m[1] == '=')
    return fail(c, ERR_PROTOCOL,
                "SCRAM server-first message has a mandatory extension "
                "(m=) this client does not support (RFC 5802 section 5.1)");
  if (n >= 2 && m[0] == 'e' && m[1] == '=') {
    keep_server_error(c, m + 2, n - 2);
    snprintf(why, sizeof(why), "SCRAM server error: %.200s", c->server_error);
    return fail(c, ERR_PROTOCOL, why);
  }
  size_t off = 0;
  static const char order[] = {'r', 's', 'i'};
  for (size_t a = 0; a < sizeof(order); a++) {
    vl = off < n ? scram_attr(m + off, n - off, order[a], &v) : -1;
    if (vl <= 0) {
      snprintf(why, sizeof(why),
               "SCRAM server-first message lacks its %c= attribute where "
               "RFC 5802 section 7 puts it", order[a]);
      return fail(c, ERR_PROTOCOL, why);
    }
    off += 2 + (size_t)vl + 1;
  }
  /* v/vl is the iteration count: posit-number = %x31-39 *DIGIT. */
  uint64_t iter = 0;
  for (long i = 0; i < vl; i++) {
    if (v[i] < '0' || v[i] > '9' || (i == 0 && v[i] == '0'))
      return fail(c, ERR_PROTOCOL,
                  "SCRAM iteration count is not a positive decimal number");
    if (i >= 10) {
      snprintf(why, sizeof(why),
               "SCRAM iteration count has more than 10 digits, over the "
               "limit of %u: refused before any key derivation",
               (unsigned)c->iter_max);
      return fail(c, ERR_PROTOCOL, why);
    }
    iter = iter * 10 + (uint64_t)(v[i] - '0');
  }
  if (iter > c->iter_max) {
    snprintf(why, sizeof(why),
             "SCRAM iteration count %llu is over the limit of %u: refused "
             "before any key derivation", (unsigned long long)iter,
             (unsigned)c->iter_max);
    return fail(c, ERR_PROTOCOL, why);
  }
  if (iter < c->iter_min) {
    snprintf(why, sizeof(why),
             "SCRAM iteration count %llu is under the minimum of %u "
             "(RFC 7677 section 4): a proof that cheap to attack is not "
             "sent", (unsigned long long)iter, (unsigned)c->iter_min);
    return fail(c, ERR_PROTOCOL, why);
  }
  return 0;
}

/* Hands a checked server message to GNU SASL; a non-empty answer goes to
 * the response line. */
static int scram_lib_step(struct sasl_client *c, const uint8_t *m, size_t n,
                          int want)
{
  char *o = NULL;
  size_t olen = 0;
  c->sasl_lib_steps++;
  int rc = gsasl_step(c->gs, (const char *)m, n, &o, &olen);
  if (rc != want) {
    if (o) {
      explicit_bzero(o, olen);
      gsasl_free(o);
    }
    if (rc == GSASL_MALLOC_ERROR)
      return fail(c, SMTPOUT_ERR_NOMEM, "out of memory");
    char why[ERROR_MAX];
    if (want == GSASL_OK && rc == GSASL_AUTHENTICATION_ERROR)
      snprintf(why, sizeof(why),
               "SCRAM server signature does not verify: the server did not "
               "prove it knows the password; not trusted");
    else if (rc == GSASL_AUTHENTICATION_ERROR)
      snprintf(why, sizeof(why),
               "SCRAM server nonce does not extend the client's nonce");
    else
      snprintf(why, sizeof(why), "SCRAM %s message refused: %s",
               want == GSASL_OK ? "server-final" : "server-first",
               gsasl_strerror(rc));
    return fail(c, ERR_PROTOCOL, why);
  }
  int rv = respond(c, (const uint8_t *)o, olen);
  if (o) {
    explicit_bzero(o, olen);
    gsasl_free(o);
  }
  return rv;
}

static int scram_step(struct sasl_client *c, const uint8_t *m, size_t n)
{
  if (c->sent == 1) {
    int rv = scram_check_server_first(c, m, n);
    return rv != 0 ? rv : scram_lib_step(c, m, n, GSASL_NEEDS_MORE);
  }
  if (c->sent == 2) {
    /* server-final-message = (server-error / verifier) ["," extensions] */
    if (!scram_printable(m, n))
      return fail(c, ERR_PROTOCOL,
                  "SCRAM server-final message is empty or has a byte "
                  "outside printable ASCII");
    if (n >= 2 && m[0] == 'e' && m[1] == '=') {
      /* The server refused; it fails the command after our empty
       * response, with its own reply text. */
      const uint8_t *comma = memchr(m, ',', n);
      keep_server_error(c, m + 2, (comma ? (size_t)(comma - m) : n) - 2);
      c->server_refused = 1;
      return respond(c, NULL, 0);
    }
    int rv = scram_lib_step(c, m, n, GSASL_OK);
    if (rv == 0)
      c->verified = 1;
    return rv;
  }
  return fail(c, ERR_PROTOCOL,
              "SCRAM challenge after the server-final message");
}
#endif

/* ------------------------------------------------------------------ */
/* Challenges                                                         */

int sasl_client_step(struct sasl_client *c, const char *text, size_t len,
                     const uint8_t **line, size_t *len_out)
{
  if (!c || (!text && len > 0) || !line || !len_out)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (!c->started || c->failed) {
    *line = (const uint8_t *)"*\r\n";
    *len_out = 3;
    return SMTPOUT_ERR_INVALID_STATE;
  }
  int rv = 0;
  char why[ERROR_MAX];
  /* Room for the longest text allowed, which may decode to two octets
   * over the limit: those are refused after decoding. */
  uint8_t m[BASE64_LEN(SASL_CHALLENGE_MAX) / 4 * 3];
  long n = 0;
  if (len > BASE64_LEN(SASL_CHALLENGE_MAX)) {
    snprintf(why, sizeof(why),
             "AUTH challenge of %zu base64 characters is over the limit "
             "of %d octets", len, SASL_CHALLENGE_MAX);
    rv = fail(c, ERR_PROTOCOL, why);
    goto out;
  }
  if (len > 0 && (n = base64_decode(text, len, m)) < 0) {
    rv = fail(c, ERR_PROTOCOL, "AUTH challenge is not valid base64");
    goto out;
  }
  if (n > SASL_CHALLENGE_MAX) {
    snprintf(why, sizeof(why),
             "AUTH challenge of %ld octets is over the limit of %d", n,
             SASL_CHALLENGE_MAX);
    rv = fail(c, ERR_PROTOCOL, why);
    goto out;
  }

  if (c->ir_pending) {
    if (n != 0) {
      rv = fail(c, ERR_PROTOCOL,
                "the server sent a challenge where it should ask for the "
                "initial response (an empty 334)");
      goto out;
    }
    c->ir_pending = 0;
    rv = respond(c, c->ir, c->ir_len);
    drop_ir(c);
    goto out;
  }

  switch (c->mech) {
  case SASL_MECH_PLAIN:
    rv = fail(c, ERR_PROTOCOL,
              "challenge after PLAIN's initial response");
    break;
  case SASL_MECH_LOGIN:
    /* Answered in order, whatever the prompt says. */
    if (c->sent == 0)
      rv = respond(c, (const uint8_t *)c->username, strlen(c->username));
    else if (c->sent == 1)
      rv = respond(c, (const uint8_t *)c->secret, c->secret_len);
    else
      rv = fail(c, ERR_PROTOCOL,
                "LOGIN challenge after the password was sent");
    break;
  case SASL_MECH_XOAUTH2:
    /* The only challenge is the server's error object; an empty response
     * lets it end the command with its 535 (Google's and Microsoft's
     * XOAUTH2 documentation). */
    if (c->sent == 1 && !c->server_refused) {
      keep_server_error(c, m, (size_t)n);
      c->server_refused = 1;
      rv = respond(c, NULL, 0);
    } else {
      rv = fail(c, ERR_PROTOCOL,
                "XOAUTH2 challenge after the error response");
    }
    break;
  default:
#ifdef HAVE_GSASL
    rv = scram_step(c, m, (size_t)n);
#else
    rv = fail(c, SMTPOUT_ERR_CONFIG, "SCRAM needs GNU SASL");
#endif
    break;
  }
out:
  explicit_bzero(m, sizeof(m));
  *line = c->out;
  *len_out = c->out_len;
  return rv;
}

int sasl_client_success(struct sasl_client *c)
{
  if (!c)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  int done;
  switch (c->mech) {
  case SASL_MECH_PLAIN:
  case SASL_MECH_XOAUTH2:
    done = c->sent >= 1;
    break;
  case SASL_MECH_LOGIN:
    done = c->sent >= 2;
    break;
  default:
    done = c->verified;
    break;
  }
  if (c->failed || !done || c->ir_pending) {
    if (!c->failed)
      snprintf(c->error, sizeof(c->error),
               is_scram(c->mech)
                   ? "the server accepted SCRAM authentication without "
                     "proving it knows the password; not trusted"
                   : "the server accepted authentication before the "
                     "exchange ended");
    c->failed = 1;
    return ERR_PROTOCOL;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Traces                                                             */

size_t sasl_redact(const uint8_t *line, size_t len, char *out, size_t cap)
{
  if (cap == 0)
    return 0;
  if (len >= 2 && line[len - 2] == '\r' && line[len - 1] == '\n')
    len -= 2;
  char tmp[80];
  size_t k = 0;
  if (len >= 5 && strncasecmp((const char *)line, "AUTH ", 5) == 0) {
    memcpy(tmp, "AUTH ", 5);
    k = 5;
    size_t i = 5;
    while (i < len && line[i] != ' ' && k < 5 + 40) {
      tmp[k++] = (line[i] > 0x20 && line[i] < 0x7f) ? (char)line[i] : '?';
      i++;
    }
    while (i < len && line[i] != ' ')
      i++;
    if (i < len) {
      memcpy(tmp + k, " ****", 5);
      k += 5;
    }
  } else if (len == 1 && line[0] == '*') {
    tmp[k++] = '*';
  } else if (len > 0) {
    memcpy(tmp, "****", 4);
    k = 4;
  }
  if (k >= cap)
    k = cap - 1;
  memcpy(out, tmp, k);
  out[k] = '\0';
  return k;
}
