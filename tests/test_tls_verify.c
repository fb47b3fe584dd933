/*
 * test_tls_verify.c — tls_conn_verify() after real handshakes, run in
 * memory against a GnuTLS server in this process, with a wall clock the
 * test moves (tls_set_time_function): what a remembered verification or a
 * resumed session may still vouch for (lib/tls_int.h).  The certificates and
 * OCSP responses are made at test time by tests/certs/mkcerts.sh (the
 * first argument).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "buf_int.h"
#include "tls_int.h"

#define MX "mx.test.example"
#define DAY (24 * 3600)

static const char *mkcerts;
static char dir[256];
static time_t clock_now;

static time_t test_clock(time_t *t)
{
  if (t)
    *t = clock_now;
  return clock_now;
}

static void path(char *out, size_t len, const char *file)
{
  snprintf(out, len, "%s/%s", dir, file);
}

/* ---- a server in memory ---- */

struct server {
  gnutls_certificate_credentials_t cred;
  gnutls_datum_t staple;     /* empty: none */
  gnutls_datum_t ticket_key; /* shared by every handshake of a test */
  const char *priority;
};

static int staple_cb(gnutls_session_t session, void *ptr,
                     gnutls_datum_t *resp)
{
  const gnutls_datum_t *staple = ptr;
  (void)session;
  resp->data = gnutls_malloc(staple->size);
  if (resp->data == NULL)
    return GNUTLS_E_MEMORY_ERROR;
  memcpy(resp->data, staple->data, staple->size);
  resp->size = staple->size;
  return 0;
}

/* The server presents CERT (a file of mkcerts.sh: the leaf alone, or a
 * chain) and staples STAPLE (NULL: nothing). */
static void server_init(struct server *srv, const char *cert,
                        const char *key, const char *staple)
{
  char c[512], k[512];
  memset(srv, 0, sizeof(*srv));
  srv->priority = "NORMAL";
  path(c, sizeof(c), cert);
  path(k, sizeof(k), key);
  assert_int_equal(gnutls_certificate_allocate_credentials(&srv->cred), 0);
  assert_int_equal(gnutls_certificate_set_x509_key_file(
                       srv->cred, c, k, GNUTLS_X509_FMT_PEM),
                   0);
  if (staple) {
    path(c, sizeof(c), staple);
    assert_int_equal(gnutls_load_file(c, &srv->staple), 0);
    assert_int_equal(gnutls_certificate_set_ocsp_status_request_function2(
                         srv->cred, 0, staple_cb, &srv->staple),
                     0);
  }
  assert_int_equal(gnutls_session_ticket_key_generate(&srv->ticket_key), 0);
}

static void server_free(struct server *srv)
{
  gnutls_certificate_free_credentials(srv->cred);
  gnutls_free(srv->staple.data);
  gnutls_free(srv->ticket_key.data);
}

/* One connection: the client's ciphertext (the session's wire buffer)
 * and the server's. */
struct link {
  gnutls_session_t server;
  struct buf c2s, s2c;
};

static ssize_t server_push(gnutls_transport_ptr_t p, const void *d, size_t n)
{
  struct link *l = p;
  return buf_append(&l->s2c, d, n) == 0 ? (ssize_t)n : -1;
}

static ssize_t server_pull(gnutls_transport_ptr_t p, void *d, size_t n)
{
  struct link *l = p;
  if (buf_len(&l->c2s) == 0) {
    gnutls_transport_set_errno(l->server, EAGAIN);
    return -1;
  }
  if (n > buf_len(&l->c2s))
    n = buf_len(&l->c2s);
  memcpy(d, buf_head(&l->c2s), n);
  buf_consume(&l->c2s, n);
  return (ssize_t)n;
}

/* Hands the server's ciphertext to the client. */
static void deliver_to_client(struct link *l, struct tls_conn *conn)
{
  if (buf_len(&l->s2c) > 0) {
    assert_int_equal(tls_conn_feed_input(conn, buf_head(&l->s2c),
                                         buf_len(&l->s2c)),
                     0);
    buf_clear(&l->s2c);
  }
}

struct outcome {
  int handshake; /* TLS_OK or TLS_FAILED */
  char error[256];
  int verified, resumed, tlsrpt;
  char reason[512];
};

/*
 * Connects a client of `cache` (with `creds`) to `srv`, verifies the
 * certificate for MX, and lets the client read what follows the
 * handshake (a TLS 1.3 ticket).  `resume`: offer and keep tickets.
 */
static struct outcome connect_once(struct tls_cache *cache,
                                   struct tls_creds *creds, struct server *srv,
                                   const char *client_priority, int resume)
{
  struct outcome o;
  memset(&o, 0, sizeof(o));
  struct link l;
  memset(&l, 0, sizeof(l));
  struct tls_conn *conn = NULL;
  struct tls_conn_params p = {creds, cache, client_priority, MX, resume,
                              NULL, NULL};
  assert_int_equal(tls_conn_new(&conn, &p, &l.c2s), 0);
  assert_int_equal(gnutls_init(&l.server, GNUTLS_SERVER | GNUTLS_NONBLOCK),
                   0);
  assert_int_equal(gnutls_priority_set_direct(l.server, srv->priority, NULL),
                   0);
  assert_int_equal(gnutls_credentials_set(l.server, GNUTLS_CRD_CERTIFICATE,
                                          srv->cred),
                   0);
  assert_int_equal(
      gnutls_session_ticket_enable_server(l.server, &srv->ticket_key), 0);
  /* Tickets live a week (TLS 1.3's most), so the clock can move days. */
  gnutls_db_set_cache_expiration(l.server, 7 * DAY);
  gnutls_transport_set_ptr(l.server, &l);
  gnutls_transport_set_push_function(l.server, server_push);
  gnutls_transport_set_pull_function(l.server, server_pull);

  int client = TLS_AGAIN, server = GNUTLS_E_AGAIN;
  for (int round = 0; round < 50 && client == TLS_AGAIN; round++) {
    client = tls_conn_handshake(conn);
    if (server < 0 && !gnutls_error_is_fatal(server))
      server = gnutls_handshake(l.server);
    deliver_to_client(&l, conn); /* an alert too */
  }
  if (client == TLS_AGAIN) { /* the server gave up without a word */
    tls_conn_feed_eof(conn);
    client = tls_conn_handshake(conn);
  }
  o.handshake = client;
  snprintf(o.error, sizeof(o.error), "%s", tls_conn_error_text(conn));
  if (client == TLS_OK) {
    o.resumed = tls_conn_resumed(conn);
    o.verified = tls_conn_verify(conn, MX, &o.tlsrpt, o.reason,
                                 sizeof(o.reason));
    /* What the server sent after its handshake: the TLS 1.3 tickets. */
    uint8_t tmp[256];
    deliver_to_client(&l, conn);
    assert_int_equal(tls_conn_read(conn, tmp, sizeof(tmp)), TLS_AGAIN);
  }
  tls_conn_free(conn);
  gnutls_deinit(l.server);
  buf_free(&l.c2s);
  buf_free(&l.s2c);
  return o;
}

/* ---- what the cache holds ---- */

/* The not-after of the first certificate in FILE. */
static time_t not_after_of(const char *file)
{
  char p[512];
  gnutls_datum_t pem;
  gnutls_x509_crt_t crt;
  path(p, sizeof(p), file);
  assert_int_equal(gnutls_load_file(p, &pem), 0);
  assert_int_equal(gnutls_x509_crt_init(&crt), 0);
  assert_int_equal(gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM), 0);
  time_t t = gnutls_x509_crt_get_expiration_time(crt);
  gnutls_x509_crt_deinit(crt);
  gnutls_free(pem.data);
  return t;
}

static void hash_field(gnutls_hash_hd_t h, const void *data, size_t len)
{
  uint8_t n[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
                  (uint8_t)(len >> 8), (uint8_t)len};
  assert_int_equal(gnutls_hash(h, n, sizeof(n)), 0);
  assert_int_equal(gnutls_hash(h, data, len), 0);
}

/* Whether the cache holds a PKIX verdict on the chain in FILE (as a
 * server loaded from it presents it) for MX at the test's clock, and
 * until when.  The key is tls_gnutls.c's chain_key(): SHA-256 over the
 * mode "pkix", the name and each certificate, each prefixed with its
 * length. */
static int cached(struct tls_cache *cache, const char *file, int64_t *until)
{
  char p[512];
  gnutls_datum_t pem;
  gnutls_x509_crt_t *crts;
  unsigned n = 0;
  gnutls_hash_hd_t h;
  uint8_t key[TLS_CHAIN_KEY_LEN];
  path(p, sizeof(p), file);
  assert_int_equal(gnutls_load_file(p, &pem), 0);
  assert_int_equal(gnutls_x509_crt_list_import2(&crts, &n, &pem,
                                                GNUTLS_X509_FMT_PEM, 0),
                   0);
  assert_int_equal(gnutls_hash_init(&h, GNUTLS_DIG_SHA256), 0);
  hash_field(h, "pkix", 4);
  hash_field(h, MX, strlen(MX));
  for (unsigned i = 0; i < n; i++) {
    gnutls_datum_t der;
    assert_int_equal(gnutls_x509_crt_export2(crts[i], GNUTLS_X509_FMT_DER,
                                             &der),
                     0);
    hash_field(h, der.data, der.size);
    gnutls_free(der.data);
    gnutls_x509_crt_deinit(crts[i]);
  }
  gnutls_hash_deinit(h, key);
  gnutls_free(crts);
  gnutls_free(pem.data);
  return tls_cache_verified_get(cache, key, (int64_t)clock_now, until, NULL);
}

/* ---- fixtures ---- */

struct fixture {
  struct tls_creds *creds;
  struct tls_cache *cache;
};

/* Every test starts at the real time with an empty cache whose anchors
 * are ca.pem and short-ca.pem. */
static int setup(void **st)
{
  struct fixture *f = calloc(1, sizeof(*f));
  char anchors[512];
  path(anchors, sizeof(anchors), "anchors.pem");
  clock_now = time(NULL);
  if (f == NULL || tls_creds_new(&f->creds, anchors) != 0 ||
      tls_cache_new(&f->cache) != 0)
    return -1;
  tls_cache_seed(f->cache, f->creds);
  *st = f;
  return 0;
}

static int teardown(void **st)
{
  struct fixture *f = *st;
  tls_cache_free(f->cache);
  tls_creds_unref(f->creds);
  free(f);
  return 0;
}

static int group_setup(void **st)
{
  (void)st;
  char cmd[1024];
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof(dir), "%s/smtpout-tls-verify-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp(dir) == NULL)
    return -1;
  snprintf(cmd, sizeof(cmd),
           "bash '%s' '%s' >/dev/null && "
           "cd '%s' && cat ca.pem short-ca.pem >anchors.pem",
           mkcerts, dir, dir);
  if (system(cmd) != 0)
    return -1;
  tls_set_time_function(test_clock);
  return 0;
}

static int group_teardown(void **st)
{
  (void)st;
  char cmd[512];
  tls_set_time_function(NULL);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void assert_verified(const struct outcome *o)
{
  if (o->handshake != TLS_OK)
    fail_msg("handshake failed: %s", o->error);
  if (!o->verified)
    fail_msg("not verified: %s", o->reason);
}

static void assert_not_verified(const struct outcome *o, int tlsrpt,
                                const char *reason)
{
  if (o->handshake != TLS_OK)
    fail_msg("handshake failed: %s", o->error);
  if (o->verified)
    fail_msg("verified%s", o->resumed ? " (resumed)" : "");
  assert_int_equal(o->tlsrpt, tlsrpt);
  if (strstr(o->reason, reason) == NULL)
    fail_msg("reason \"%s\" lacks \"%s\"", o->reason, reason);
}

/* ---- the tests ---- */

static void test_anchor_expiring_first_ends_a_remembered_verification(void **st)
{
  struct fixture *f = *st;
  struct server srv;
  /* The leaf alone: the CA that expires first is never sent, only
   * trusted. */
  server_init(&srv, "shortlived.pem", "shortlived.key", NULL);
  struct outcome o = connect_once(f->cache, f->creds, &srv, "NORMAL", 0);
  assert_verified(&o);
  /* Remembered until the earliest expiry on the path: the anchor's. */
  int64_t until = 0;
  assert_true(cached(f->cache, "shortlived.pem", &until));
  assert_int_equal(until, not_after_of("short-ca.pem"));
  assert_true(until < not_after_of("shortlived.pem"));
  /* A day later: the same chain, remembered. */
  clock_now += DAY;
  o = connect_once(f->cache, f->creds, &srv, "NORMAL", 0);
  assert_verified(&o);
  /* Three days later short-ca has expired; the leaf has years left. */
  clock_now += 2 * DAY;
  o = connect_once(f->cache, f->creds, &srv, "NORMAL", 0);
  assert_not_verified(&o, TLSRPT_CERTIFICATE_EXPIRED, "expired");
  server_free(&srv);
}

static void test_anchor_expiring_first_ends_a_resumed_session(void **st)
{
  struct fixture *f = *st;
  struct server srv;
  server_init(&srv, "shortlived.pem", "shortlived.key", NULL);
  struct outcome o = connect_once(f->cache, f->creds, &srv, "NORMAL", 1);
  assert_verified(&o);
  assert_false(o.resumed);
  o = connect_once(f->cache, f->creds, &srv, "NORMAL", 1);
  assert_verified(&o);
  assert_true(o.resumed); /* resumption works in this setup */
  clock_now += 3 * DAY;
  o = connect_once(f->cache, f->creds, &srv, "NORMAL", 1);
  assert_not_verified(&o, TLSRPT_CERTIFICATE_EXPIRED, "expired");
  server_free(&srv);
}

static void test_must_staple_without_staple_fails_after_a_good_one(void **st)
{
  struct fixture *f = *st;
  struct server stapled, bare;
  server_init(&stapled, "muststaple-chain.pem", "muststaple.key",
              "muststaple-ocsp-good.der");
  server_init(&bare, "muststaple-chain.pem", "muststaple.key", NULL);
  struct outcome o = connect_once(f->cache, f->creds, &stapled, "NORMAL", 0);
  assert_verified(&o);
  int64_t until;
  assert_false(cached(f->cache, "muststaple-chain.pem", &until));
  /* The same chain for the same name, without the staple it demands. */
  o = connect_once(f->cache, f->creds, &bare, "NORMAL", 0);
  assert_not_verified(&o, TLSRPT_VALIDATION_FAILURE, "status");
  /* ...and with it again. */
  o = connect_once(f->cache, f->creds, &stapled, "NORMAL", 0);
  assert_verified(&o);
  server_free(&stapled);
  server_free(&bare);
}

static void test_revoked_staple_fails_after_a_verified_chain(void **st)
{
  struct fixture *f = *st;
  struct server plain, revoked;
  server_init(&plain, "valid-chain.pem", "valid.key", NULL);
  server_init(&revoked, "valid-chain.pem", "valid.key",
              "valid-ocsp-revoked.der");
  struct outcome o = connect_once(f->cache, f->creds, &plain, "NORMAL", 0);
  assert_verified(&o);
  int64_t until;
  assert_true(cached(f->cache, "valid-chain.pem", &until));
  o = connect_once(f->cache, f->creds, &revoked, "NORMAL", 0);
  assert_not_verified(&o, TLSRPT_CERTIFICATE_NOT_TRUSTED, "revoked");
  /* A good staple of the same chain verifies. */
  server_free(&revoked);
  server_init(&revoked, "valid-chain.pem", "valid.key",
              "valid-ocsp-good.der");
  o = connect_once(f->cache, f->creds, &revoked, "NORMAL", 0);
  assert_verified(&o);
  server_free(&plain);
  server_free(&revoked);
}

static void test_verdict_resting_on_a_staple_leaves_no_ticket(void **st)
{
  struct fixture *f = *st;
  struct server srv;
  server_init(&srv, "muststaple-chain.pem", "muststaple.key",
              "muststaple-ocsp-good.der");
  for (int i = 0; i < 3; i++) {
    struct outcome o = connect_once(f->cache, f->creds, &srv, "NORMAL", 1);
    assert_verified(&o);
    /* A resumed handshake would carry no staple: never resumed. */
    assert_false(o.resumed);
  }
  server_free(&srv);
}

static void test_texts_end_without_a_space(void **st)
{
  struct fixture *f = *st;
  struct server srv;
  /* other-ca signed it: GnuTLS's status text ends "...unknown. ". */
  server_init(&srv, "untrusted-chain.pem", "untrusted.key", NULL);
  struct outcome o = connect_once(f->cache, f->creds, &srv, "NORMAL", 0);
  assert_not_verified(&o, TLSRPT_CERTIFICATE_NOT_TRUSTED, "issuer");
  size_t n = strlen(o.reason);
  assert_true(n > 0);
  if (o.reason[n - 1] == ' ')
    fail_msg("reason ends with a space: \"%s\"", o.reason);
  /* A handshake failure's text too. */
  srv.priority = "NORMAL:-VERS-ALL:+VERS-TLS1.2";
  o = connect_once(f->cache, f->creds, &srv, "NORMAL:-VERS-ALL:+VERS-TLS1.3",
                   0);
  assert_int_equal(o.handshake, TLS_FAILED);
  n = strlen(o.error);
  assert_true(n > 0);
  if (o.error[n - 1] == ' ')
    fail_msg("error ends with a space: \"%s\"", o.error);
  server_free(&srv);
}

/* The input a read leaves to GnuTLS is lent, not copied: what the call
 * does not read must be kept before it returns, for the host's buffer is
 * its own again.  Two records fed at once, the first read three bytes at
 * a time: the second record is still unread when the call returns, and
 * the fed bytes are overwritten and freed before the next read. */
static void test_input_left_unread_is_kept_past_the_call(void **st)
{
  struct fixture *f = *st;
  struct server srv;
  server_init(&srv, "valid-chain.pem", "valid.key", NULL);
  struct link l;
  memset(&l, 0, sizeof(l));
  struct tls_conn *conn = NULL;
  struct tls_conn_params p = {f->creds, f->cache, "NORMAL", MX, 0, NULL, NULL};
  assert_int_equal(tls_conn_new(&conn, &p, &l.c2s), 0);
  assert_int_equal(gnutls_init(&l.server, GNUTLS_SERVER | GNUTLS_NONBLOCK),
                   0);
  assert_int_equal(gnutls_priority_set_direct(l.server, srv.priority, NULL),
                   0);
  assert_int_equal(gnutls_credentials_set(l.server, GNUTLS_CRD_CERTIFICATE,
                                          srv.cred),
                   0);
  gnutls_transport_set_ptr(l.server, &l);
  gnutls_transport_set_push_function(l.server, server_push);
  gnutls_transport_set_pull_function(l.server, server_pull);
  int client = TLS_AGAIN, server = GNUTLS_E_AGAIN;
  for (int round = 0; round < 50 && (client == TLS_AGAIN || server < 0);
       round++) {
    if (client == TLS_AGAIN)
      client = tls_conn_handshake(conn);
    if (server < 0 && !gnutls_error_is_fatal(server))
      server = gnutls_handshake(l.server);
    deliver_to_client(&l, conn);
  }
  assert_int_equal(client, TLS_OK);
  assert_int_equal(server, 0);
  assert_int_equal(gnutls_record_send(l.server, "first", 5), 5);
  assert_int_equal(gnutls_record_send(l.server, "second", 6), 6);
  size_t n = buf_len(&l.s2c);
  uint8_t *fed = malloc(n);
  assert_non_null(fed);
  memcpy(fed, buf_head(&l.s2c), n);
  buf_clear(&l.s2c);
  assert_int_equal(tls_conn_feed_input(conn, fed, n), 0);
  char got[16];
  size_t len = 0;
  long r = tls_conn_read(conn, (uint8_t *)got, 3);
  assert_int_equal(r, 3);
  len += (size_t)r;
  memset(fed, 0xaa, n); /* the host reuses its buffer */
  free(fed);
  while (len + 3 <= sizeof(got) &&
         (r = tls_conn_read(conn, (uint8_t *)got + len, 3)) > 0)
    len += (size_t)r;
  assert_int_equal(r, TLS_AGAIN);
  assert_int_equal(len, 11);
  assert_memory_equal(got, "firstsecond", 11);
  tls_conn_free(conn);
  gnutls_deinit(l.server);
  buf_free(&l.c2s);
  buf_free(&l.s2c);
  server_free(&srv);
}

#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: %s MKCERTS\n", argv[0]);
    return 64;
  }
  mkcerts = argv[1];
  const struct CMUnitTest tests[] = {
    T(test_anchor_expiring_first_ends_a_remembered_verification),
    T(test_anchor_expiring_first_ends_a_resumed_session),
    T(test_must_staple_without_staple_fails_after_a_good_one),
    T(test_revoked_staple_fails_after_a_verified_chain),
    T(test_verdict_resting_on_a_staple_leaves_no_ticket),
    T(test_texts_end_without_a_space),
    T(test_input_left_unread_is_kept_past_the_call),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
