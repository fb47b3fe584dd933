/*
 * tls_gnutls.c — the TLS backend on GnuTLS, over memory buffers.
 *
 * GnuTLS reads through a pull function that serves the ciphertext the
 * session fed us, and writes through a push function that appends to the
 * session's wire buffer, so the library never touches a socket and never
 * blocks.  The certificate is not checked during the handshake (no
 * gnutls_session_set_verify_cert): a certificate problem must not look
 * like a handshake failure, because a handshake failure may permit a
 * plaintext retry and a certificate problem never does.  tls_conn_verify()
 * runs after the handshake and the policy decides.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "buf_int.h"
#include "dane_int.h"
#include "smtpout/session.h"
#include "tls_int.h"

/* A trust bundle larger than this is not one (Debian's full system bundle
 * is about 200 KiB). */
#define CA_FILE_MAX (64 * 1024 * 1024)

struct tls_creds {
  atomic_int refs;
  gnutls_certificate_credentials_t cred;
};

/* A client certificate file is a chain of a few certificates, and a key
 * file one key: neither needs more than this. */
#define KEYPAIR_FILE_MAX (1024 * 1024)
#define KEYPAIR_CHAIN_MAX 16

struct tls_keypair {
  atomic_int refs;
  gnutls_pcert_st pcerts[KEYPAIR_CHAIN_MAX];
  unsigned npcerts;
  gnutls_privkey_t key;
};

/*
 * Session tickets (RFC 8446 2.2, RFC 5077), kept per SNI name and way of
 * authenticating the server (its scope: PKIX, or DANE with one TLSA set)
 * for the next connection with the same name and scope to resume: a
 * resumed session inherits the authentication of the one that got the
 * ticket, so a ticket from a PKIX-verified session must never stand for
 * DANE, nor one from a DANE session for another TLSA set, or for PKIX.
 * A direct-mapped table: a name and scope hash to one slot, and another
 * hashing there evicts it, so memory is bounded (TICKET_SLOTS x
 * TICKETS_PER_NAME tickets of a few KiB) however many destinations a
 * long-running MTA reaches.  Each ticket is used once (RFC 8446 C.4);
 * several per name let parallel connections resume.
 */
#define TICKET_SLOTS 256
#define TICKETS_PER_NAME 4
/* The expiry of a verdict that no date can end (DANE-EE, RFC 7672
 * 3.1.1): only the TLSA set, part of its key, can. */
#define NEVER INT64_MAX
struct ticket {
  gnutls_datum_t data; /* gnutls_session_get_data2(); gnutls_malloc'd */
  int64_t not_after;   /* the verified path's earliest expiry */
  char detail[TLS_DETAIL_LEN]; /* DANE: the record that matched */
};

/* The scope of a ticket: PKIX (all zero), or DANE and its set's digest. */
struct scope {
  int dane;
  uint8_t digest[TLS_CHAIN_KEY_LEN];
};

struct ticket_slot {
  char name[256];
  struct scope scope;
  unsigned n;
  struct ticket t[TICKETS_PER_NAME]; /* oldest first */
};

/* A verified chain (tls_int.h): the key, when it was verified, the
 * earliest expiry on what was verified (for PKIX its path, trust anchor
 * included), and the record that matched (DANE). */
struct verified {
  uint8_t key[TLS_CHAIN_KEY_LEN];
  int64_t verified_at;
  int64_t not_after; /* 0: an empty slot */
  char detail[TLS_DETAIL_LEN];
};

struct tls_cache {
  pthread_mutex_t lock;
  struct tls_creds *creds; /* for the configuration's ca-file */
  struct ticket_slot *tickets; /* TICKET_SLOTS, allocated by the first put */
  struct verified *verified; /* TLS_VERIFIED_SLOTS, from the first put */
  /* The configuration's priority string, parsed once: parsing it costs
   * about as much per session as the rest of gnutls_init() together. */
  gnutls_priority_t prio;
  char *prio_string;
};

struct tls_conn {
  gnutls_session_t session;
  struct tls_creds *creds;
  struct tls_cache *cache; /* NULL: none */
  /* Ciphertext fed and not yet pulled by GnuTLS: the host's own bytes,
   * lent for the call that reads them (keep_unread()), after what an
   * earlier call left unread, kept here. */
  const uint8_t *lent;
  size_t lent_len;
  struct buf input;
  struct buf *wire_out; /* where GnuTLS's records go */
  int eof;
  int handshake_done;
  /* How the server is to be authenticated: NULL by PKIX, else by DANE
   * against this set (the session's). */
  const struct tls_dane *dane;
  /* Resumption: the cache and SNI name tickets are kept under (NULL when
   * off), with the scope above; whether a ticket was offered; the
   * earliest expiry on what was verified (0: unknown); the record that
   * matched (DANE); whether the server was authenticated in this scope,
   * whether that verdict rested on OCSP (then no ticket is kept: see
   * tls_conn_verify), and whether the server's new ticket was stored. */
  struct tls_cache *tickets;
  const char *ticket_name;
  int offered;
  int64_t not_after;
  char detail[TLS_DETAIL_LEN];
  int verified;
  int ocsp;
  int ticket_stored;
  struct tls_keypair *client; /* presented when the server asks */
  int client_sent;
  char error[256];
};

/*
 * The client certificate, asked for by the server during the handshake.
 * One callback on every trust store (the credentials are the
 * configuration's, shared by all its sessions), answering from the
 * connection's own key pair: a session presents its certificate, and
 * another session on the same credentials presents none.  GnuTLS neither
 * frees nor changes what it is given (gnutls_certificate_set_retrieve_
 * function2()); the connection holds a reference until it is freed.
 */
static int retrieve_client_cert(gnutls_session_t session,
                                const gnutls_datum_t *req_ca_dn, int nreqs,
                                const gnutls_pk_algorithm_t *pk_algos,
                                int pk_algos_length, gnutls_pcert_st **pcert,
                                unsigned int *pcert_length,
                                gnutls_privkey_t *pkey)
{
  (void)req_ca_dn;
  (void)nreqs;
  (void)pk_algos;
  (void)pk_algos_length;
  struct tls_conn *c = gnutls_session_get_ptr(session);
  if (c == NULL || c->client == NULL) {
    *pcert = NULL;
    *pcert_length = 0;
    *pkey = NULL;
    return 0;
  }
  c->client_sent = 1;
  *pcert = c->client->pcerts;
  *pcert_length = c->client->npcerts;
  *pkey = c->client->key;
  return 0;
}

int tls_creds_new(struct tls_creds **out, const char *ca_file)
{
  /* GnuTLS reads a trust file whole: a device or a FIFO (a typo for
   * /dev/zero, say) would be read until memory runs out.  Only a regular
   * file, and of a sane size, can be a PEM bundle. */
  struct stat st;
  if (ca_file != NULL && (stat(ca_file, &st) != 0 || !S_ISREG(st.st_mode) ||
                          st.st_size > CA_FILE_MAX))
    return SMTPOUT_ERR_TLS_SETUP;
  struct tls_creds *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return SMTPOUT_ERR_NOMEM;
  atomic_init(&c->refs, 1);
  if (gnutls_certificate_allocate_credentials(&c->cred) < 0) {
    free(c);
    return SMTPOUT_ERR_NOMEM;
  }
  gnutls_certificate_set_retrieve_function2(c->cred, retrieve_client_cert);
  int n = ca_file ? gnutls_certificate_set_x509_trust_file(
                        c->cred, ca_file, GNUTLS_X509_FMT_PEM)
                  : gnutls_certificate_set_x509_system_trust(c->cred);
  /* A configured CA file without a single anchor is a mistake worth
   * stopping for; an empty system store only makes every certificate
   * "not trusted", which the policy then judges. */
  if (n < 0 || (ca_file != NULL && n == 0)) {
    gnutls_certificate_free_credentials(c->cred);
    free(c);
    return SMTPOUT_ERR_TLS_SETUP;
  }
  *out = c;
  return 0;
}

void tls_creds_ref(struct tls_creds *creds)
{
  atomic_fetch_add(&creds->refs, 1);
}

void tls_creds_unref(struct tls_creds *creds)
{
  if (creds == NULL || atomic_fetch_sub(&creds->refs, 1) != 1)
    return;
  gnutls_certificate_free_credentials(creds->cred);
  free(creds);
}

/* Reads a small regular file whole (GnuTLS's loader would read a device
 * until memory runs out).  Returns 0 or SMTPOUT_ERR_TLS_SETUP. */
static int load_small_file(const char *path, gnutls_datum_t *d)
{
  struct stat st;
  if (path == NULL || stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_size > KEYPAIR_FILE_MAX)
    return SMTPOUT_ERR_TLS_SETUP;
  return gnutls_load_file(path, d) < 0 ? SMTPOUT_ERR_TLS_SETUP : 0;
}

/* 1 when `key` is the private half of `pub`: their public keys export to
 * the same DER. */
static int key_matches(gnutls_privkey_t key, gnutls_pubkey_t pub)
{
  gnutls_pubkey_t mine;
  gnutls_datum_t a = {NULL, 0}, b = {NULL, 0};
  int same = 0;
  if (gnutls_pubkey_init(&mine) < 0)
    return 0;
  if (gnutls_pubkey_import_privkey(mine, key, 0, 0) == 0 &&
      gnutls_pubkey_export2(mine, GNUTLS_X509_FMT_DER, &a) == 0 &&
      gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &b) == 0)
    same = a.size == b.size && memcmp(a.data, b.data, a.size) == 0;
  gnutls_free(a.data);
  gnutls_free(b.data);
  gnutls_pubkey_deinit(mine);
  return same;
}

static void keypair_free(struct tls_keypair *kp)
{
  for (unsigned i = 0; i < kp->npcerts; i++)
    gnutls_pcert_deinit(&kp->pcerts[i]);
  if (kp->key)
    gnutls_privkey_deinit(kp->key);
  free(kp);
}

int tls_keypair_new(struct tls_keypair **out, const char *cert_file,
                    const char *key_file)
{
  gnutls_datum_t cert = {NULL, 0}, key = {NULL, 0};
  struct tls_keypair *kp = calloc(1, sizeof(*kp));
  if (kp == NULL)
    return SMTPOUT_ERR_NOMEM;
  atomic_init(&kp->refs, 1);
  int rv = load_small_file(cert_file, &cert);
  if (rv == 0)
    rv = load_small_file(key_file, &key);
  if (rv == 0) {
    unsigned n = KEYPAIR_CHAIN_MAX;
    int g = gnutls_pcert_list_import_x509_raw(kp->pcerts, &n, &cert,
                                              GNUTLS_X509_FMT_PEM, 0);
    if (g == GNUTLS_E_MEMORY_ERROR)
      rv = SMTPOUT_ERR_NOMEM;
    else if (g < 0 || n == 0)
      rv = SMTPOUT_ERR_TLS_SETUP;
    else
      kp->npcerts = n;
  }
  if (rv == 0) {
    int g = gnutls_privkey_init(&kp->key);
    if (g == 0)
      g = gnutls_privkey_import_x509_raw(kp->key, &key, GNUTLS_X509_FMT_PEM,
                                         NULL, 0);
    if (g == GNUTLS_E_MEMORY_ERROR)
      rv = SMTPOUT_ERR_NOMEM;
    else if (g < 0 || !key_matches(kp->key, kp->pcerts[0].pubkey))
      rv = SMTPOUT_ERR_TLS_SETUP;
  }
  if (key.data) {
    explicit_bzero(key.data, key.size);
    gnutls_free(key.data);
  }
  gnutls_free(cert.data);
  if (rv != 0) {
    keypair_free(kp);
    return rv;
  }
  *out = kp;
  return 0;
}

void tls_keypair_ref(struct tls_keypair *kp)
{
  atomic_fetch_add(&kp->refs, 1);
}

void tls_keypair_unref(struct tls_keypair *kp)
{
  if (kp == NULL || atomic_fetch_sub(&kp->refs, 1) != 1)
    return;
  keypair_free(kp);
}

int tls_cache_new(struct tls_cache **out)
{
  struct tls_cache *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return SMTPOUT_ERR_NOMEM;
  if (pthread_mutex_init(&c->lock, NULL) != 0) {
    free(c);
    return SMTPOUT_ERR_NOMEM;
  }
  *out = c;
  return 0;
}

void tls_cache_free(struct tls_cache *cache)
{
  if (cache == NULL)
    return;
  tls_creds_unref(cache->creds);
  if (cache->prio)
    gnutls_priority_deinit(cache->prio);
  if (cache->tickets) {
    for (size_t i = 0; i < TICKET_SLOTS; i++)
      for (unsigned k = 0; k < cache->tickets[i].n; k++)
        gnutls_free(cache->tickets[i].t[k].data.data);
    free(cache->tickets);
  }
  free(cache->verified);
  free(cache->prio_string);
  pthread_mutex_destroy(&cache->lock);
  free(cache);
}

int tls_cache_get(struct tls_cache *cache, const char *ca_file,
                  struct tls_creds **out)
{
  int rv = 0;
  pthread_mutex_lock(&cache->lock);
  if (cache->creds == NULL)
    rv = tls_creds_new(&cache->creds, ca_file);
  if (rv == 0) {
    tls_creds_ref(cache->creds);
    *out = cache->creds;
  }
  pthread_mutex_unlock(&cache->lock);
  return rv;
}

/* Keeps the credentials a configuration built while checking its
 * ca-file, so the first session does not load the file again. */
void tls_cache_seed(struct tls_cache *cache, struct tls_creds *creds)
{
  pthread_mutex_lock(&cache->lock);
  if (cache->creds == NULL) {
    tls_creds_ref(creds);
    cache->creds = creds;
  }
  pthread_mutex_unlock(&cache->lock);
}

/* The cached priority for `priority`, built on first use; NULL when it
 * cannot be built (the caller then parses the string itself and reports
 * the error).  A configuration has one priority string, so one slot is
 * enough; a different string (never expected) simply is not cached. */
static gnutls_priority_t cache_priority(struct tls_cache *cache,
                                        const char *priority)
{
  gnutls_priority_t p = NULL;
  pthread_mutex_lock(&cache->lock);
  if (cache->prio == NULL && cache->prio_string == NULL) {
    char *copy = strdup(priority);
    if (copy && gnutls_priority_init(&cache->prio, priority, NULL) == 0)
      cache->prio_string = copy;
    else
      free(copy);
  }
  if (cache->prio && strcmp(cache->prio_string, priority) == 0)
    p = cache->prio;
  pthread_mutex_unlock(&cache->lock);
  return p;
}

static struct verified *verified_slot(struct tls_cache *cache,
                                      const uint8_t *key)
{
  /* The key is a SHA-256 digest: any four of its bytes are as good a
   * hash as any. */
  uint32_t h = (uint32_t)key[0] | (uint32_t)key[1] << 8 |
               (uint32_t)key[2] << 16 | (uint32_t)key[3] << 24;
  return &cache->verified[h % TLS_VERIFIED_SLOTS];
}

int tls_cache_verified_get(struct tls_cache *cache,
                           const uint8_t key[TLS_CHAIN_KEY_LEN],
                           int64_t now, int64_t *not_after, char *detail)
{
  int found = 0;
  pthread_mutex_lock(&cache->lock);
  if (cache->verified) {
    struct verified *v = verified_slot(cache, key);
    /* A clock set back to before the verification could hide a chain
     * that is not yet valid: that is a miss too. */
    if (v->not_after != 0 && memcmp(v->key, key, TLS_CHAIN_KEY_LEN) == 0 &&
        v->verified_at <= now && now < v->not_after) {
      *not_after = v->not_after;
      if (detail)
        memcpy(detail, v->detail, TLS_DETAIL_LEN);
      found = 1;
    }
  }
  pthread_mutex_unlock(&cache->lock);
  return found;
}

void tls_cache_verified_put(struct tls_cache *cache,
                            const uint8_t key[TLS_CHAIN_KEY_LEN],
                            int64_t now, int64_t not_after,
                            const char *detail)
{
  if (not_after <= now)
    return;
  pthread_mutex_lock(&cache->lock);
  if (cache->verified == NULL)
    cache->verified = calloc(TLS_VERIFIED_SLOTS, sizeof(*cache->verified));
  if (cache->verified) {
    struct verified *v = verified_slot(cache, key);
    memcpy(v->key, key, TLS_CHAIN_KEY_LEN);
    v->verified_at = now;
    v->not_after = not_after;
    snprintf(v->detail, sizeof(v->detail), "%s", detail ? detail : "");
  }
  pthread_mutex_unlock(&cache->lock);
}

/* Whether `creds` are the cache's own: only chains verified against the
 * cache's anchors are kept there (a session with a ca-file of its own
 * neither reads nor writes them). */
static int cache_anchors(struct tls_cache *cache, struct tls_creds *creds)
{
  pthread_mutex_lock(&cache->lock);
  int same = cache->creds == creds;
  pthread_mutex_unlock(&cache->lock);
  return same;
}

/* Feeds `len` as four bytes, then the bytes: length-prefixed, no two
 * different sequences of fields hash the same input. */
static int hash_field(gnutls_hash_hd_t h, const void *data, size_t len)
{
  uint8_t n[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
                  (uint8_t)(len >> 8), (uint8_t)len};
  return gnutls_hash(h, n, sizeof(n)) < 0 || gnutls_hash(h, data, len) < 0
             ? -1
             : 0;
}

/*
 * The key of the chain the server presented, verified one way against
 * one reference: SHA-256 over the mode ("pkix" or "dane"), the reference
 * (the name for PKIX, the TLSA set's digest for DANE) and every
 * certificate, each field prefixed with its length.  Returns 0, or -1
 * when there is no chain or the digest fails.
 */
static int chain_key(gnutls_session_t session, const char *mode,
                     const void *ref, size_t reflen,
                     uint8_t key[TLS_CHAIN_KEY_LEN])
{
  unsigned n = 0;
  const gnutls_datum_t *der = gnutls_certificate_get_peers(session, &n);
  gnutls_hash_hd_t h;
  if (der == NULL || n == 0 || gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
    return -1;
  int rv = hash_field(h, mode, strlen(mode));
  if (rv == 0)
    rv = hash_field(h, ref, reflen);
  for (unsigned i = 0; i < n && rv == 0; i++)
    rv = hash_field(h, der[i].data, der[i].size);
  gnutls_hash_deinit(h, key);
  return rv;
}

/* The scope of a connection's tickets. */
static struct scope scope_of(const struct tls_dane *dane)
{
  struct scope sc;
  memset(&sc, 0, sizeof(sc));
  if (dane) {
    sc.dane = 1;
    memcpy(sc.digest, dane->digest, sizeof(sc.digest));
  }
  return sc;
}

static int same_scope(const struct scope *a, const struct scope *b)
{
  return a->dane == b->dane && memcmp(a->digest, b->digest,
                                      sizeof(a->digest)) == 0;
}

static struct ticket_slot *ticket_slot(struct tls_cache *cache,
                                       const char *name,
                                       const struct scope *sc)
{
  uint32_t h = 2166136261u; /* FNV-1a */
  for (const char *p = name; *p; p++)
    h = (h ^ (uint8_t)*p) * 16777619u;
  h = (h ^ (uint8_t)sc->dane) * 16777619u;
  for (size_t i = 0; i < sizeof(sc->digest); i++)
    h = (h ^ sc->digest[i]) * 16777619u;
  return &cache->tickets[h % TICKET_SLOTS];
}

/* Keeps `t` (its data's ownership passes) as the newest ticket for
 * `name` in scope `sc`. */
static void ticket_put(struct tls_cache *cache, const char *name,
                       const struct scope *sc, struct ticket t)
{
  pthread_mutex_lock(&cache->lock);
  if (cache->tickets == NULL)
    cache->tickets = calloc(TICKET_SLOTS, sizeof(*cache->tickets));
  if (cache->tickets == NULL || strlen(name) >= sizeof(cache->tickets->name)) {
    pthread_mutex_unlock(&cache->lock);
    gnutls_free(t.data.data);
    return;
  }
  struct ticket_slot *sl = ticket_slot(cache, name, sc);
  if (strcmp(sl->name, name) != 0 || !same_scope(&sl->scope, sc)) {
    for (unsigned k = 0; k < sl->n; k++)
      gnutls_free(sl->t[k].data.data);
    sl->n = 0;
    strcpy(sl->name, name);
    sl->scope = *sc;
  }
  if (sl->n == TICKETS_PER_NAME) {
    gnutls_free(sl->t[0].data.data);
    memmove(sl->t, sl->t + 1, (TICKETS_PER_NAME - 1) * sizeof(sl->t[0]));
    sl->n--;
  }
  sl->t[sl->n++] = t;
  pthread_mutex_unlock(&cache->lock);
}

/* Takes the newest ticket for `name` in scope `sc` into *t; returns 0
 * when there is none. */
static int ticket_take(struct tls_cache *cache, const char *name,
                       const struct scope *sc, struct ticket *t)
{
  int found = 0;
  pthread_mutex_lock(&cache->lock);
  if (cache->tickets) {
    struct ticket_slot *sl = ticket_slot(cache, name, sc);
    if (sl->n > 0 && strcmp(sl->name, name) == 0 &&
        same_scope(&sl->scope, sc)) {
      *t = sl->t[--sl->n];
      found = 1;
    }
  }
  pthread_mutex_unlock(&cache->lock);
  return found;
}

/* Stores the ticket the server sent on this connection, once, and only
 * when the server was authenticated in the connection's scope (for PKIX,
 * verified for the ticket's name): a resumed connection inherits the
 * authentication of the one that got the ticket. */
static void maybe_store_ticket(struct tls_conn *c)
{
  if (c->tickets == NULL || c->ticket_stored || !c->verified || c->ocsp ||
      c->not_after == 0 ||
      !(gnutls_session_get_flags(c->session) & GNUTLS_SFLAGS_SESSION_TICKET))
    return;
  struct ticket t = {{NULL, 0}, c->not_after, ""};
  memcpy(t.detail, c->detail, sizeof(t.detail));
  struct scope sc = scope_of(c->dane);
  c->ticket_stored = 1;
  if (gnutls_session_get_data2(c->session, &t.data) == 0)
    ticket_put(c->tickets, c->ticket_name, &sc, t);
}

/* The wall clock of every validity check: GnuTLS's own (time(), unless
 * a test replaced it with tls_set_time_function()) and the cache's. */
static gnutls_time_func wall_clock = time;

void tls_set_time_function(time_t (*fn)(time_t *))
{
  wall_clock = fn ? fn : time;
  gnutls_global_set_time_function(fn);
}

/*
 * The earliest expiry on the path GnuTLS verified, collected while
 * gnutls_certificate_verify_peers3() runs: it calls path_cb for each
 * certificate of the path it built, with that certificate's issuer, so
 * the trust anchor that ends the path is seen too, although the server
 * need not send it (and certificates the server sent but the path does
 * not use are not).  GnuTLS gives the callback no user pointer, hence a
 * thread-local: verification runs on the caller's thread.  -1 marks an
 * expiry that could not be read.
 */
static _Thread_local time_t path_not_after;

static void path_note(gnutls_x509_crt_t crt)
{
  if (crt == NULL || path_not_after == (time_t)-1)
    return;
  time_t t = gnutls_x509_crt_get_expiration_time(crt);
  if (t == (time_t)-1 || path_not_after == 0 || t < path_not_after)
    path_not_after = t;
}

static int path_cb(gnutls_x509_crt_t cert, gnutls_x509_crt_t issuer,
                   gnutls_x509_crl_t crl, unsigned int verification_output)
{
  (void)crl;
  (void)verification_output;
  path_note(cert);
  path_note(issuer);
  return 0;
}

/* id-pe-tlsfeature (1.3.6.1.5.5.7.1.24, RFC 7633), DER-encoded as the
 * extnID of every certificate that carries a TLS feature extension. */
static const uint8_t tlsfeature_oid[] = {0x06, 0x08, 0x2b, 0x06, 0x01,
                                         0x05, 0x05, 0x07, 0x01, 0x18};

static int contains(const gnutls_datum_t *d, const uint8_t *pat, size_t n)
{
  for (size_t i = 0; i + n <= d->size; i++)
    if (d->data[i] == pat[0] && memcmp(d->data + i, pat, n) == 0)
      return 1;
  return 0;
}

/*
 * Whether the verdict on this handshake's chain can depend on OCSP, which
 * gnutls_certificate_verify_peers3() checks: the server stapled a
 * response (a "revoked" one fails the chain), or a certificate carries
 * the TLS feature extension (must-staple, RFC 7633: no staple fails it).
 * Either makes the verdict depend on more than the chain, the name, the
 * anchors and the time, which is all the cache keys on.  The extension is
 * looked for as its identifier's bytes: DER encodes it only that way, so
 * their absence proves the extension's, and their presence anywhere else
 * only costs a full verification.
 */
static int ocsp_involved(gnutls_session_t session)
{
  unsigned n = 0;
  const gnutls_datum_t *der = gnutls_certificate_get_peers(session, &n);
  for (unsigned i = 0; der && i < n; i++) {
    gnutls_datum_t resp;
    if (gnutls_ocsp_status_request_get2(session, i, &resp) == 0 ||
        contains(&der[i], tlsfeature_oid, sizeof(tlsfeature_oid)))
      return 1;
  }
  return 0;
}

/* GnuTLS's texts may end in a space ("... issuer is unknown. "): a
 * reason ends where its words do. */
static void trim_end(char *s)
{
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t'))
    s[--n] = '\0';
}

int tls_priority_check(const char *priority, size_t *err_offset)
{
  gnutls_priority_t cache;
  const char *err_pos = NULL;
  int rv = gnutls_priority_init(&cache, priority, &err_pos);
  if (rv == GNUTLS_E_MEMORY_ERROR)
    return SMTPOUT_ERR_NOMEM;
  if (rv < 0) {
    *err_offset = err_pos && err_pos >= priority ? (size_t)(err_pos - priority)
                                                 : 0;
    return SMTPOUT_ERR_TLS_SETUP;
  }
  gnutls_priority_deinit(cache);
  return 0;
}

static ssize_t push_cb(gnutls_transport_ptr_t ptr, const void *data,
                       size_t len)
{
  struct tls_conn *c = ptr;
  if (buf_append(c->wire_out, data, len) != 0) {
    gnutls_transport_set_errno(c->session, ENOMEM);
    return -1;
  }
  return (ssize_t)len;
}

/* The ciphertext fed and not yet pulled. */
static size_t unread(const struct tls_conn *c)
{
  return buf_len(&c->input) + c->lent_len;
}

static ssize_t pull_cb(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
  struct tls_conn *c = ptr;
  size_t avail = buf_len(&c->input);
  if (avail > 0) {
    if (len > avail)
      len = avail;
    memcpy(data, buf_head(&c->input), len);
    buf_consume(&c->input, len);
    /* Drained: an idle connection keeps no ciphertext buffer. */
    if (len == avail)
      buf_free(&c->input);
    return (ssize_t)len;
  }
  if (c->lent_len > 0) {
    if (len > c->lent_len)
      len = c->lent_len;
    memcpy(data, c->lent, len);
    c->lent += len;
    c->lent_len -= len;
    return (ssize_t)len;
  }
  if (c->eof)
    return 0;
  gnutls_transport_set_errno(c->session, EAGAIN);
  return -1;
}

static int pull_timeout_cb(gnutls_transport_ptr_t ptr, unsigned int ms)
{
  struct tls_conn *c = ptr;
  (void)ms;
  return (unread(c) > 0 || c->eof) ? 1 : 0;
}

/*
 * Copies what GnuTLS left unread of the lent input into the connection's
 * own buffer: the host's bytes are valid only during the call that fed
 * them.  GnuTLS pulls up to the end of the record it reads, and the
 * session reads until GnuTLS asks for more, so this is rare (a record cut
 * by the host's read, or input left when the connection ended); the usual
 * input is never copied but into GnuTLS.  Returns 0, or TLS_NOMEM.
 */
static int keep_unread(struct tls_conn *c)
{
  if (c->lent_len == 0)
    return 0;
  int rv = buf_append(&c->input, c->lent, c->lent_len);
  c->lent = NULL;
  c->lent_len = 0;
  if (rv != 0) {
    snprintf(c->error, sizeof(c->error), "out of memory");
    return TLS_NOMEM;
  }
  return 0;
}

static void set_error(struct tls_conn *c, const char *what, int err)
{
  if (err == GNUTLS_E_FATAL_ALERT_RECEIVED ||
      err == GNUTLS_E_WARNING_ALERT_RECEIVED)
    snprintf(c->error, sizeof(c->error), "%s: %s (%s)", what,
             gnutls_strerror(err),
             gnutls_alert_get_name(gnutls_alert_get(c->session)));
  else
    snprintf(c->error, sizeof(c->error), "%s: %s", what, gnutls_strerror(err));
  trim_end(c->error);
}

int tls_conn_new(struct tls_conn **out, const struct tls_conn_params *p,
                 struct buf *wire_out)
{
  struct tls_creds *creds = p->creds;
  struct tls_cache *cache = p->cache;
  const char *priority = p->priority;
  const char *sni = p->sni;
  struct tls_conn *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return SMTPOUT_ERR_NOMEM;
  c->wire_out = wire_out;
  /* One TLS 1.3 key share, for the most preferred group, instead of
   * GnuTLS's default two: the second is an ephemeral key generated for
   * nothing whenever the server takes the first, as servers overwhelmingly
   * do; one that takes neither costs a HelloRetryRequest. */
  if (gnutls_init(&c->session,
                  GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_KEY_SHARE_TOP) < 0) {
    free(c);
    return SMTPOUT_ERR_NOMEM;
  }
  gnutls_priority_t prio = cache ? cache_priority(cache, priority) : NULL;
  if ((prio ? gnutls_priority_set(c->session, prio)
            : gnutls_priority_set_direct(c->session, priority, NULL)) < 0 ||
      gnutls_credentials_set(c->session, GNUTLS_CRD_CERTIFICATE,
                             creds->cred) < 0) {
    gnutls_deinit(c->session);
    free(c);
    return SMTPOUT_ERR_TLS_SETUP;
  }
  /* RFC 6066 3: SNI is a DNS name in A-labels, never an IP literal. */
  if (sni != NULL &&
      gnutls_server_name_set(c->session, GNUTLS_NAME_DNS, sni,
                             strlen(sni)) < 0) {
    gnutls_deinit(c->session);
    free(c);
    return SMTPOUT_ERR_TLS_SETUP;
  }
  c->dane = p->dane;
  /* A ticket is kept only under the name and the scope (PKIX, or DANE
   * with this TLSA set) it was authenticated in, and only sessions
   * trusting the same anchors (the cache's) share it.  A connection
   * presenting a client certificate neither takes nor keeps one: a
   * resumed session carries the client identity (or its absence) of the
   * session that made the ticket, not this one's. */
  if (p->resume && cache && sni && p->client == NULL) {
    struct ticket t;
    struct scope sc = scope_of(p->dane);
    c->tickets = cache;
    c->ticket_name = sni;
    /* A ticket whose chain has expired since is of no use; one GnuTLS no
     * longer accepts (too old, another version) only means a full
     * handshake. */
    if (ticket_take(cache, sni, &sc, &t)) {
      if ((int64_t)wall_clock(NULL) < t.not_after &&
          gnutls_session_set_data(c->session, t.data.data, t.data.size) ==
              0) {
        c->offered = 1;
        c->not_after = t.not_after;
        memcpy(c->detail, t.detail, sizeof(c->detail));
      }
      gnutls_free(t.data.data);
    }
  }
  /* The session owns every timeout; GnuTLS must not read a clock. */
  gnutls_handshake_set_timeout(c->session, 0);
  gnutls_session_set_verify_output_function(c->session, path_cb);
  gnutls_session_set_ptr(c->session, c);
  gnutls_transport_set_ptr(c->session, c);
  gnutls_transport_set_push_function(c->session, push_cb);
  gnutls_transport_set_pull_function(c->session, pull_cb);
  gnutls_transport_set_pull_timeout_function(c->session, pull_timeout_cb);
  tls_creds_ref(creds);
  c->creds = creds;
  c->cache = cache;
  if (p->client) {
    tls_keypair_ref(p->client);
    c->client = p->client;
  }
  *out = c;
  return 0;
}

void tls_conn_free(struct tls_conn *conn)
{
  if (conn == NULL)
    return;
  gnutls_deinit(conn->session);
  tls_creds_unref(conn->creds);
  tls_keypair_unref(conn->client);
  buf_free(&conn->input);
  free(conn);
}

int tls_conn_feed_input(struct tls_conn *conn, const uint8_t *data,
                        size_t len)
{
  /* Input left over from an earlier call comes first: the new bytes join
   * it.  Otherwise they are lent until the next handshake or read. */
  if (buf_len(&conn->input) > 0 || conn->lent_len > 0)
    return buf_append(&conn->input, data, len);
  conn->lent = data;
  conn->lent_len = len;
  return 0;
}

void tls_conn_feed_eof(struct tls_conn *conn) { conn->eof = 1; }

static int handshake_step(struct tls_conn *conn)
{
  for (;;) {
    size_t before = unread(conn);
    int rv = gnutls_handshake(conn->session);
    if (rv == GNUTLS_E_SUCCESS) {
      conn->handshake_done = 1;
      return TLS_OK;
    }
    if (rv == GNUTLS_E_AGAIN || rv == GNUTLS_E_INTERRUPTED) {
      if (unread(conn) != before)
        continue; /* as in tls_conn_read(): progress, so go on */
      if (conn->eof && unread(conn) == 0) {
        snprintf(conn->error, sizeof(conn->error),
                 "TLS handshake failed: connection closed by the server");
        return TLS_FAILED;
      }
      return TLS_AGAIN;
    }
    if (!gnutls_error_is_fatal(rv))
      continue; /* a warning alert: the handshake goes on */
    set_error(conn, "TLS handshake failed", rv);
    return TLS_FAILED;
  }
}

int tls_conn_handshake(struct tls_conn *conn)
{
  int rv = handshake_step(conn);
  int kept = keep_unread(conn);
  return kept != 0 ? kept : rv;
}

/* Picks the RFC 8460 result type for GnuTLS verification status bits.  An
 * untrusted chain makes every other finding moot, so it comes first; then
 * validity dates; then the name. */
static int classify(unsigned status)
{
  if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA |
                GNUTLS_CERT_INSECURE_ALGORITHM | GNUTLS_CERT_REVOKED))
    return TLSRPT_CERTIFICATE_NOT_TRUSTED;
  if (status & (GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED))
    return TLSRPT_CERTIFICATE_EXPIRED;
  if (status & GNUTLS_CERT_UNEXPECTED_OWNER)
    return TLSRPT_CERTIFICATE_HOST_MISMATCH;
  return TLSRPT_VALIDATION_FAILURE;
}

/* The certificate verified; `not_after` is the earliest expiry on the
 * verified path (0: unknown).  A chain verified for the ticket name lets
 * the server's ticket be kept. */
static void verified(struct tls_conn *conn, int ticket_name, int64_t not_after,
                     int *tlsrpt, char *reason)
{
  *tlsrpt = TLSRPT_NONE;
  reason[0] = '\0';
  if (ticket_name) {
    conn->verified = 1;
    if (!gnutls_session_is_resumed(conn->session))
      conn->not_after = not_after;
    maybe_store_ticket(conn); /* TLS 1.2 tickets come with the handshake */
  }
}

int tls_conn_verify(struct tls_conn *conn, const char *name, int *tlsrpt,
                    char *reason, size_t reasonlen)
{
  /* Tickets of a connection made for DANE are DANE's: a PKIX verdict
   * neither inherits one nor leaves one. */
  int ticket_name = name && conn->ticket_name && conn->dane == NULL &&
                    strcmp(name, conn->ticket_name) == 0;
  time_t now = wall_clock(NULL);
  /* A resumed session's peer is the chain its ticket was issued under:
   * verified for this name against these anchors (no other ticket is
   * kept), and bound to this connection by the resumption secret (RFC
   * 8446 2.2).  Only time can have changed that verdict, so the earliest
   * expiry on the path verified then, trust anchor included, kept with
   * the ticket, is checked against the clock GnuTLS's own verification
   * reads, instead of the signatures again.  No ticket is kept from a
   * session whose verdict rested on OCSP (below): a staple is as fresh as
   * its handshake, and a resumed handshake carries none. */
  if (conn->offered && ticket_name &&
      gnutls_session_is_resumed(conn->session) &&
      (int64_t)now < conn->not_after) {
    *tlsrpt = TLSRPT_NONE;
    reason[0] = '\0';
    conn->verified = 1;
    maybe_store_ticket(conn);
    return 1;
  }
  /* The same chain verified for the same name against the same anchors
   * earlier, and not expired since, verifies again: skip the signature
   * checks (tls_int.h).  The handshake has already proved the server holds
   * the key of the chain's first certificate.  When OCSP is involved the
   * verdict also depends on this handshake's staple: the cache neither
   * answers nor learns, and GnuTLS checks the staple (or its absence). */
  conn->ocsp = ocsp_involved(conn->session);
  uint8_t key[TLS_CHAIN_KEY_LEN];
  int64_t not_after = 0;
  int keyed = name != NULL && !conn->ocsp && conn->cache != NULL &&
              cache_anchors(conn->cache, conn->creds) &&
              chain_key(conn->session, "pkix", name, strlen(name), key) == 0;
  if (keyed && tls_cache_verified_get(conn->cache, key, (int64_t)now,
                                      &not_after, NULL)) {
    verified(conn, ticket_name, not_after, tlsrpt, reason);
    return 1;
  }
  unsigned status = 0;
  path_not_after = 0;
  int rv = gnutls_certificate_verify_peers3(conn->session, name, &status);
  if (rv < 0) {
    *tlsrpt = TLSRPT_VALIDATION_FAILURE;
    snprintf(reason, reasonlen, "%s", gnutls_strerror(rv));
    trim_end(reason);
    return 0;
  }
  if (status != 0) {
    *tlsrpt = classify(status);
    gnutls_datum_t text = {NULL, 0};
    if (gnutls_certificate_verification_status_print(
            status, GNUTLS_CRT_X509, &text, 0) == 0) {
      snprintf(reason, reasonlen, "%s", (const char *)text.data);
      gnutls_free(text.data);
      trim_end(reason);
    } else {
      snprintf(reason, reasonlen, "verification status 0x%x", status);
    }
    return 0;
  }
  if (name == NULL) {
    /* A chain that verifies says nothing about who we reached when there
     * is no host name to hold it against (an IP literal). */
    *tlsrpt = TLSRPT_CERTIFICATE_HOST_MISMATCH;
    snprintf(reason, reasonlen,
             "no host name to verify the certificate against (IP literal)");
    return 0;
  }
  not_after = path_not_after == (time_t)-1 ? 0 : (int64_t)path_not_after;
  if (keyed)
    tls_cache_verified_put(conn->cache, key, (int64_t)now, not_after, NULL);
  verified(conn, ticket_name, not_after, tlsrpt, reason);
  return 1;
}

/* A DANE verdict from the record string kept with it ("3 1 1"). */
static void dane_matched(struct dane_result *res, const char *detail,
                         const char *how)
{
  unsigned u = 0, sel = 0, m = 0;
  memset(res, 0, sizeof(*res));
  res->status = DANE_MATCHED;
  res->record = -1;
  res->depth = -1;
  if (sscanf(detail, "%u %u %u", &u, &sel, &m) == 3) {
    res->usage = (uint8_t)u;
    res->selector = (uint8_t)sel;
    res->mtype = (uint8_t)m;
  }
  snprintf(res->matched, sizeof(res->matched), "%s", detail);
  snprintf(res->reason, sizeof(res->reason), "TLSA %s %s", detail, how);
}

/*
 * How long a DANE verdict on the presented chain holds: DANE-EE ignores
 * dates (RFC 7672 3.1.1), so until the TLSA set changes, which changes
 * the key; DANE-TA checks the dates of the certificates below the anchor
 * (dane_int.h), so until the earliest expiry among the certificates
 * presented, a bound that may come sooner than needed, never later.  0
 * when an expiry cannot be read: nothing is then kept.
 */
static int64_t dane_not_after(const gnutls_datum_t *der, unsigned n,
                              const struct dane_result *res)
{
  if (res->usage == 3)
    return NEVER;
  int64_t earliest = NEVER;
  for (unsigned i = 0; i < n && i < DANE_MAX_CHAIN; i++) {
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0)
      return 0;
    time_t t = gnutls_x509_crt_import(crt, &der[i], GNUTLS_X509_FMT_DER) < 0
                   ? (time_t)-1
                   : gnutls_x509_crt_get_expiration_time(crt);
    gnutls_x509_crt_deinit(crt);
    if (t == (time_t)-1)
      return 0;
    if ((int64_t)t < earliest)
      earliest = (int64_t)t;
  }
  return earliest;
}

int tls_conn_dane_verify(struct tls_conn *conn, const struct tls_dane *dane,
                         struct dane_result *res)
{
  int64_t now = (int64_t)wall_clock(NULL);
  /* Only a connection made for this very set may use its tickets and
   * leave one (a verdict against another set says nothing here). */
  int scoped = conn->dane != NULL &&
               memcmp(conn->dane->digest, dane->digest,
                      sizeof(dane->digest)) == 0;
  /* Resumed from a ticket kept under this set: the session that got it
   * was authenticated by the record kept with it, and the resumption
   * secret binds this connection to that session (RFC 8446 2.2).  Only
   * time can have changed the verdict (DANE-TA), as for PKIX. */
  if (scoped && conn->offered && gnutls_session_is_resumed(conn->session) &&
      now < conn->not_after && conn->detail[0] != '\0') {
    dane_matched(res, conn->detail, "authenticated the resumed session");
    conn->verified = 1;
    maybe_store_ticket(conn);
    return 1;
  }
  unsigned n = 0;
  const gnutls_datum_t *der = gnutls_certificate_get_peers(conn->session, &n);
  uint8_t key[TLS_CHAIN_KEY_LEN];
  int64_t not_after = 0;
  char detail[TLS_DETAIL_LEN];
  /* The set's digest covers the records and the reference identifiers,
   * all a DANE verdict depends on besides the chain and the time. */
  int keyed = scoped && conn->cache != NULL &&
              chain_key(conn->session, "dane", dane->digest,
                        sizeof(dane->digest), key) == 0;
  if (keyed &&
      tls_cache_verified_get(conn->cache, key, now, &not_after, detail)) {
    dane_matched(res, detail, "matched (remembered)");
    conn->verified = 1;
    conn->not_after = not_after;
    memcpy(conn->detail, detail, sizeof(conn->detail));
    maybe_store_ticket(conn);
    return 1;
  }
  struct dane_cert chain[DANE_MAX_CHAIN];
  size_t nchain = 0;
  for (unsigned i = 0; der && i < n && nchain < DANE_MAX_CHAIN; i++) {
    chain[nchain].der = der[i].data;
    chain[nchain].len = der[i].size;
    nchain++;
  }
  if (dane_verify(dane->records, dane->nrecords, chain, nchain, dane->names,
                  dane->nnames, now, res) != 0) {
    memset(res, 0, sizeof(*res));
    res->status = DANE_NO_MATCH;
    res->record = -1;
    res->depth = -1;
    snprintf(res->reason, sizeof(res->reason),
             "out of memory while matching the TLSA records");
    return 0;
  }
  if (res->status != DANE_MATCHED)
    return 0;
  not_after = dane_not_after(der, n, res);
  if (keyed)
    tls_cache_verified_put(conn->cache, key, now, not_after, res->matched);
  if (scoped) {
    conn->verified = 1;
    conn->not_after = not_after;
    snprintf(conn->detail, sizeof(conn->detail), "%s", res->matched);
    maybe_store_ticket(conn);
  }
  return 1;
}

int tls_conn_resumed(struct tls_conn *conn)
{
  return gnutls_session_is_resumed(conn->session) != 0;
}

static long read_step(struct tls_conn *conn, uint8_t *buf, size_t len)
{
  for (;;) {
    size_t before = unread(conn);
    /* Nothing fed and nothing decrypted waiting: GnuTLS, which pulls no
     * further than the record it reads, could only answer "again", and
     * that answer costs it about a quarter of what reading a record does
     * (callgrind).  At the end of input it is still asked, so that it
     * tells a close_notify from a cut. */
    if (before == 0 && !conn->eof &&
        gnutls_record_check_pending(conn->session) == 0)
      return TLS_AGAIN;
    ssize_t n = gnutls_record_recv(conn->session, buf, len);
    /* A TLS 1.3 ticket arrives after the handshake, inside the records. */
    if (conn->tickets && !conn->ticket_stored)
      maybe_store_ticket(conn);
    if (n > 0)
      return (long)n;
    if (n == 0)
      return TLS_EOF;
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
      /* GnuTLS also says "again" after it consumed a post-handshake
       * message (a TLS 1.3 NewSessionTicket) while further records wait,
       * in our input or already pulled into its own: keep going as long
       * as it makes progress, or the reply behind the ticket would sit
       * unread until the timeout. */
      if (unread(conn) != before)
        continue;
      if (gnutls_record_check_pending(conn->session) > 0)
        continue;
      if (conn->eof && unread(conn) == 0) {
        snprintf(conn->error, sizeof(conn->error),
                 "connection closed without TLS close_notify");
        return TLS_EOF;
      }
      return TLS_AGAIN;
    }
    if (n == GNUTLS_E_REHANDSHAKE) {
      /* TLS 1.2 renegotiation is refused outright: nothing in SMTP needs
       * it, and it has a history (CVE-2009-3555). */
      snprintf(conn->error, sizeof(conn->error),
               "server requested TLS renegotiation");
      return TLS_FAILED;
    }
    if (n == GNUTLS_E_PREMATURE_TERMINATION) {
      snprintf(conn->error, sizeof(conn->error),
               "connection closed without TLS close_notify");
      return TLS_EOF;
    }
    if (!gnutls_error_is_fatal((int)n))
      continue;
    set_error(conn, "TLS record error", (int)n);
    return TLS_FAILED;
  }
}

long tls_conn_read(struct tls_conn *conn, uint8_t *buf, size_t len)
{
  long n = read_step(conn, buf, len);
  int kept = keep_unread(conn);
  return kept != 0 ? kept : n;
}

int tls_conn_write(struct tls_conn *conn, const uint8_t *data, size_t len)
{
  while (len > 0) {
    ssize_t n = gnutls_record_send(conn->session, data, len);
    if (n < 0) {
      if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
        continue; /* cannot happen: push never blocks */
      set_error(conn, "TLS write error", (int)n);
      return TLS_FAILED;
    }
    data += n;
    len -= (size_t)n;
  }
  return TLS_OK;
}

void tls_conn_close_notify(struct tls_conn *conn)
{
  if (conn->handshake_done)
    gnutls_bye(conn->session, GNUTLS_SHUT_WR);
}

/* ------------------------------------------------------------------ */
/* The peer's certificates, described for the host                      */

struct smtpout_certificate {
  char *subject;
  char *issuer;
  int64_t not_after;
  char sha256[2 * 32 + 1];
};

size_t tls_conn_peer_count(struct tls_conn *conn)
{
  unsigned n = 0;
  if (!conn->handshake_done ||
      gnutls_certificate_get_peers(conn->session, &n) == NULL)
    return 0;
  return n;
}

/* A malloc'd copy of a DN GnuTLS formats (RFC 4514); "" for an empty
 * one. */
static char *dn_string(gnutls_x509_crt_t crt, int issuer)
{
  gnutls_datum_t dn = {NULL, 0};
  int rv = issuer ? gnutls_x509_crt_get_issuer_dn3(crt, &dn, 0)
                  : gnutls_x509_crt_get_dn3(crt, &dn, 0);
  char *s = rv < 0 ? strdup("")
                   : strndup(dn.data ? (const char *)dn.data : "", dn.size);
  gnutls_free(dn.data);
  return s;
}

int tls_conn_peer_certificate(struct tls_conn *conn, size_t index,
                              struct smtpout_certificate **out)
{
  unsigned n = 0;
  const gnutls_datum_t *der =
      conn->handshake_done ? gnutls_certificate_get_peers(conn->session, &n)
                           : NULL;
  if (der == NULL || index >= n)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  uint8_t digest[32];
  gnutls_x509_crt_t crt;
  if (gnutls_x509_crt_init(&crt) < 0)
    return SMTPOUT_ERR_NOMEM;
  /* GnuTLS imported every certificate of the peer's list during the
   * handshake, or the handshake failed: importing one again can fail only
   * for want of memory. */
  int rv = SMTPOUT_ERR_NOMEM;
  struct smtpout_certificate *c = NULL;
  if (gnutls_x509_crt_import(crt, &der[index], GNUTLS_X509_FMT_DER) < 0 ||
      gnutls_hash_fast(GNUTLS_DIG_SHA256, der[index].data, der[index].size,
                       digest) < 0)
    goto out;
  if ((c = calloc(1, sizeof(*c))) == NULL ||
      (c->subject = dn_string(crt, 0)) == NULL ||
      (c->issuer = dn_string(crt, 1)) == NULL)
    goto out;
  c->not_after = (int64_t)gnutls_x509_crt_get_expiration_time(crt);
  for (size_t i = 0; i < sizeof(digest); i++)
    snprintf(c->sha256 + 2 * i, 3, "%02x", digest[i]);
  *out = c;
  c = NULL;
  rv = 0;
out:
  smtpout_certificate_free(c);
  gnutls_x509_crt_deinit(crt);
  return rv;
}

void smtpout_certificate_free(smtpout_certificate *cert)
{
  if (cert == NULL)
    return;
  free(cert->subject);
  free(cert->issuer);
  free(cert);
}

const char *smtpout_certificate_subject(const smtpout_certificate *cert)
{
  return cert ? cert->subject : "";
}

const char *smtpout_certificate_issuer(const smtpout_certificate *cert)
{
  return cert ? cert->issuer : "";
}

int64_t smtpout_certificate_not_after(const smtpout_certificate *cert)
{
  return cert ? cert->not_after : 0;
}

const char *smtpout_certificate_sha256(const smtpout_certificate *cert)
{
  return cert ? cert->sha256 : "";
}

const char *tls_conn_version(struct tls_conn *conn)
{
  return gnutls_protocol_get_name(gnutls_protocol_get_version(conn->session));
}

const char *tls_conn_cipher(struct tls_conn *conn)
{
  return gnutls_ciphersuite_get(conn->session);
}

const char *tls_conn_error_text(struct tls_conn *conn)
{
  return conn->error[0] ? conn->error : "TLS failure";
}

int tls_conn_channel_binding(struct tls_conn *conn, uint8_t *out,
                             size_t *len)
{
  gnutls_datum_t cb = {NULL, 0};
  int type = TLS_CB_NONE;
  if (!conn->handshake_done)
    return TLS_CB_NONE;
  if (gnutls_protocol_get_version(conn->session) == GNUTLS_TLS1_3) {
    if (gnutls_session_channel_binding(conn->session, GNUTLS_CB_TLS_EXPORTER,
                                       &cb) == 0)
      type = TLS_CB_EXPORTER;
  } else if (gnutls_session_ext_master_secret_status(conn->session)) {
    /* Without the extended master secret, tls-unique can be made equal
     * on two connections (the triple handshake attack): none then. */
    if (gnutls_session_channel_binding(conn->session, GNUTLS_CB_TLS_UNIQUE,
                                       &cb) == 0)
      type = TLS_CB_UNIQUE;
  }
  if (type != TLS_CB_NONE && (cb.size == 0 || cb.size > TLS_CB_MAX))
    type = TLS_CB_NONE;
  if (type != TLS_CB_NONE) {
    memcpy(out, cb.data, cb.size);
    *len = cb.size;
  }
  gnutls_free(cb.data);
  return type;
}

int tls_conn_client_cert_sent(struct tls_conn *conn)
{
  return conn->client_sent;
}

const struct tls_backend tls_gnutls_backend = {
  .conn_new = tls_conn_new,
  .conn_free = tls_conn_free,
  .feed_input = tls_conn_feed_input,
  .feed_eof = tls_conn_feed_eof,
  .handshake = tls_conn_handshake,
  .verify = tls_conn_verify,
  .dane_verify = tls_conn_dane_verify,
  .resumed = tls_conn_resumed,
  .read = tls_conn_read,
  .write = tls_conn_write,
  .close_notify = tls_conn_close_notify,
  .version = tls_conn_version,
  .cipher = tls_conn_cipher,
  .error_text = tls_conn_error_text,
  .peer_count = tls_conn_peer_count,
  .peer_certificate = tls_conn_peer_certificate,
  .channel_binding = tls_conn_channel_binding,
  .client_cert_sent = tls_conn_client_cert_sent,
};
