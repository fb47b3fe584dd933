/*
 * test_error_lists.c — the error lists of <smtpout/session.h> are a
 * contract: this test drives every session function into each code its
 * comment lists.  tests/abi/check-error-lists.py reads the ERR() and
 * NOMEM_CASE() lines below and holds them to the header (every listed
 * code reached here, nothing reached that is not listed), and checks,
 * from the library's source, that no function can return a code its
 * comment does not list.
 *
 * Out of memory is made, not waited for: in a build without sanitizers
 * this program replaces malloc() (glibc lets a program do that, and its
 * own functions, libidn2's and GnuTLS's then allocate through it too) and
 * makes the n-th allocation of a call fail, for every n until the call
 * makes no allocation that could fail; every result must be one the
 * header lists.  A sanitizer's runtime owns malloc(): there, those cases
 * are skipped.
 */
#define _GNU_SOURCE /* dladdr() */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/gnutls.h>

#include "memtls.h"
#include "smtpout/smtpout.h"

/* The call returns `code`, which the header lists for `fn` (the function
 * the contract is about; check-error-lists.py reads it). */
#define ERR(fn, code, call)                                                  \
  do {                                                                       \
    (void)fn;                                                                \
    assert_int_equal((call), (code));                                        \
  } while (0)

/* ------------------------------------------------------------------ */
/* Failing allocations                                                  */

#ifdef ERRTEST_FAULTY_MALLOC
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);
/* The linker's bounds of this program's code, which holds the library's
 * (the tests link it statically). */
extern char __executable_start[], etext[];

/* -1: every allocation succeeds; else the number of allocations to let
 * through before one fails (and `failed` says it happened). */
static long countdown = -1;
static int failed;

/*
 * Only the library's own allocations fail, and libidn2's (it maps a
 * failed one to an error code the library turns into NOMEM): GnuTLS's
 * ASN.1 parser does not survive a NULL from malloc() (a crash in
 * libtasn1), and what such a library does then is not smtpout's
 * contract.  dladdr() may allocate: the flag keeps that from recursing.
 */
static int may_fail(const void *caller)
{
  static int checking;
  if ((const char *)caller >= __executable_start &&
      (const char *)caller < etext)
    return 1;
  if (checking)
    return 0;
  checking = 1;
  Dl_info di;
  int idn = dladdr(caller, &di) && di.dli_fname &&
            strstr(di.dli_fname, "libidn2") != NULL;
  checking = 0;
  return idn;
}

static int fail_now(const void *caller)
{
  if (countdown < 0 || !may_fail(caller))
    return 0;
  if (countdown-- > 0)
    return 0;
  failed = 1;
  return 1;
}

#define CALLER __builtin_return_address(0)
void *malloc(size_t n) { return fail_now(CALLER) ? NULL : __libc_malloc(n); }
void *calloc(size_t n, size_t size)
{
  return fail_now(CALLER) ? NULL : __libc_calloc(n, size);
}
void *realloc(void *p, size_t n)
{
  return fail_now(CALLER) ? NULL : __libc_realloc(p, n);
}
void free(void *p) { __libc_free(p); }
/* The library's strdup() and strndup() allocate in libc, which may not
 * fail: these make their allocations the library's. */
char *strdup(const char *s)
{
  size_t n = strlen(s) + 1;
  char *d = fail_now(CALLER) ? NULL : __libc_malloc(n);
  return d ? memcpy(d, s, n) : NULL;
}
char *strndup(const char *s, size_t max)
{
  size_t n = strnlen(s, max);
  char *d = fail_now(CALLER) ? NULL : __libc_malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}
#endif

/* ------------------------------------------------------------------ */
/* Fixtures                                                             */

/* A one-certificate trust store (a self-signed ECDSA CA), written to a
 * temporary file by main(): small, so that the out-of-memory sweep of
 * smtpout_session_set_ca_file() stays short. */
static const char ca_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBjjCCATSgAwIBAgIUbnXEimtzkQyd/NnjevNEH+5ywP0wCgYIKoZIzj0EAwIw\n"
    "JTEjMCEGA1UEAxMac210cG91dCBlcnJvci1saXN0IHRlc3QgQ0EwHhcNMjYxMjAx\n"
    "MTk1MjM4WhcNMzYxMTI4MTk1MjM4WjAlMSMwIQYDVQQDExpzbXRwb3V0IGVycm9y\n"
    "LWxpc3QgdGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGqzYlC+x8gI\n"
    "BfUN8Ul+ynpYvqCIbNtADlAeCXKWW9BNV/t2S0WxQlMYhJKdOrsnIxLNsZScVRo4\n"
    "W9hud/C++bGjQjBAMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgIEMB0G\n"
    "A1UdDgQWBBT2qLW6rUU+DmmfR1S2L+VE5zxdYDAKBggqhkjOPQQDAgNIADBFAiAU\n"
    "Vo6nTNA2li0NDA4BikcwHKgc5+NeDs/SSUlvMTZOBAIhAPeOmLHD81VXlb1L+n5i\n"
    "XBHP1poVgBwKQ9T9dTuxMiGM\n"
    "-----END CERTIFICATE-----\n";
static char ca_file[] = "/tmp/smtpout-errtest-ca-XXXXXX";
/* A client certificate and its key, made by certtool in main(). */
static char cert_dir[] = "/tmp/smtpout-errtest-cert-XXXXXX";
static char client_pem[128], client_key[128];
#define CA_FILE ca_file

struct fx {
  smtpout_callbacks *cbs;
  smtpout_session *s;
  uint64_t now;
  int in_callback_rv[8]; /* what the I/O calls returned from a callback */
  int callback_ran;
  int big_body; /* the body fills the first read: the output must grow */
  int tls;      /* the in-memory TLS server below is up for this session */
  smtpout_route *route; /* the route of a session made for a hop */
  const smtpout_hop *hop; /* its hop */
};

static const char body[] = "Subject: t\r\n\r\nhello\r\n";

static int read_body(smtpout_session *s, int id, uint8_t *buf, size_t len,
                     size_t *nread, int *eof, void *ud)
{
  struct fx *f = ud;
  (void)s;
  (void)id;
  size_t n = sizeof(body) - 1 < len ? sizeof(body) - 1 : len;
  memcpy(buf, body, n);
  if (f->big_body) {
    memset(buf + n, 'x', len - n);
    n = len;
  }
  *nread = n;
  *eof = 1;
  return 0;
}

/* Calls every I/O function from inside a callback: each is refused. */
static void on_result(smtpout_session *s, const smtpout_result *r, void *ud)
{
  struct fx *f = ud;
  const uint8_t *p;
  size_t n;
  (void)r;
  if (f->callback_ran++)
    return;
  f->in_callback_rv[0] = smtpout_session_start(s, f->now);
  f->in_callback_rv[1] = smtpout_session_feed(s, (const uint8_t *)"x", 1,
                                              f->now);
  f->in_callback_rv[2] = smtpout_session_feed_eof(s, f->now);
  f->in_callback_rv[3] = smtpout_session_peek_output(s, &p, &n, f->now);
  f->in_callback_rv[4] = smtpout_session_consume_output(s, 1, f->now);
  f->in_callback_rv[5] = smtpout_session_handle_expiry(s, f->now);
  f->in_callback_rv[6] = smtpout_session_abort(s, f->now);
}

static void fx_new(struct fx *f)
{
  memset(f, 0, sizeof(*f));
  f->now = 1000;
  assert_int_equal(smtpout_callbacks_new(&f->cbs), 0);
  smtpout_callbacks_set_read_body(f->cbs, read_body);
  smtpout_callbacks_set_on_result(f->cbs, on_result);
  assert_int_equal(smtpout_session_new(&f->s, "mx.test.example", NULL, f->cbs,
                                       f),
                   0);
  assert_int_equal(smtpout_session_set_helo_name(f->s, "client.example"), 0);
}

static void srv_free(void);

static void fx_free(struct fx *f)
{
  if (f->tls)
    srv_free();
  smtpout_session_free(f->s);
  smtpout_callbacks_free(f->cbs);
  smtpout_route_free(f->route);
  f->s = NULL;
  f->cbs = NULL;
  f->route = NULL;
  f->hop = NULL;
}

/* A route to an address literal: its one hop, without DNS. */
static const smtpout_hop *literal_hop(struct fx *f)
{
  const smtpout_hop *hop;
  assert_int_equal(smtpout_route_new(&f->route, NULL, "[192.0.2.1]", 0,
                                     f->now, 0),
                   0);
  assert_int_equal(smtpout_route_next_hop(f->route, &hop, f->now), 1);
  f->hop = hop;
  return hop;
}

static void server(struct fx *f, const char *text)
{
  assert_int_equal(smtpout_session_feed(f->s, (const uint8_t *)text,
                                        strlen(text), f->now),
                   0);
}

/* Drains what the session has to send. */
static void client(struct fx *f)
{
  const uint8_t *p;
  size_t n;
  do {
    assert_int_equal(smtpout_session_peek_output(f->s, &p, &n, f->now), 0);
    if (n > 0)
      assert_int_equal(smtpout_session_consume_output(f->s, n, f->now), 0);
  } while (n > 0);
}

static int submit_one(struct fx *f)
{
  const char *rcpt[] = {"a@test.example"};
  return smtpout_session_submit(f->s, "s@test.example", rcpt, 1, 0, 0);
}

/* Started, greeted, EHLO answered without STARTTLS under a policy that
 * does not need it: ready for a transaction. */
static void fx_ready(struct fx *f)
{
  fx_new(f);
  assert_int_equal(smtpout_session_set_tls_policy(f->s,
                                                  SMTPOUT_STARTTLS_OPTIONAL, 1),
                   0);
  assert_int_equal(smtpout_session_start(f->s, f->now), 0);
  server(f, "220 mx ESMTP\r\n");
  client(f);
  server(f, "250 mx\r\n");
  client(f);
}

/* ------------------------------------------------------------------ */
/* A TLS server in memory, for the functions that need TLS up           */

/* The server (memtls.h): one at a time; its allocations are GnuTLS's,
 * which never fail here (see may_fail()).  A self-signed certificate:
 * verification is not what these tests are about (the session accepts
 * it unverified). */
static struct memtls srv;

static void srv_init(void)
{
  memtls_init_self_signed(&srv, 0, NULL, "mx.test.example", 0, NULL);
}

static void srv_free(void)
{
  memtls_free(&srv);
}

/* Moves what the session wrote to the server. */
static void client_to_srv(struct fx *f)
{
  const uint8_t *p;
  size_t n;
  do {
    assert_int_equal(smtpout_session_peek_output(f->s, &p, &n, f->now), 0);
    assert_true(srv.in_len + n <= sizeof(srv.in));
    memcpy(srv.in + srv.in_len, p, n);
    srv.in_len += n;
    if (n > 0)
      assert_int_equal(smtpout_session_consume_output(f->s, n, f->now), 0);
  } while (n > 0);
}

/* A session with TLS up: greeted, STARTTLS accepted, the handshake run
 * to its end on both sides (the certificate accepted unverified). */
static void fx_tls(struct fx *f)
{
  fx_new(f);
  srv_init();
  f->tls = 1;
  assert_int_equal(smtpout_session_set_tls_policy(f->s,
                                                  SMTPOUT_STARTTLS_REQUIRE, 1),
                   0);
  assert_int_equal(smtpout_session_start(f->s, f->now), 0);
  server(f, "220 mx ESMTP\r\n");
  client(f);
  server(f, "250-mx\r\n250 STARTTLS\r\n");
  client(f);
  server(f, "220 go ahead\r\n");
  int rv = GNUTLS_E_AGAIN;
  for (int round = 0; round < 8 && rv != GNUTLS_E_SUCCESS; round++) {
    client_to_srv(f);
    do
      rv = gnutls_handshake(srv.tls);
    while (rv == GNUTLS_E_INTERRUPTED);
    assert_true(rv == GNUTLS_E_SUCCESS || rv == GNUTLS_E_AGAIN);
    if (srv.out_len > 0) {
      assert_int_equal(smtpout_session_feed(f->s, srv.out, srv.out_len,
                                            f->now),
                       0);
      srv.out_len = 0;
    }
  }
  assert_int_equal(rv, GNUTLS_E_SUCCESS);
  client_to_srv(f); /* the client's Finished, if it had not gone yet */
  assert_true(smtpout_tls_info_used(smtpout_session_tls_info(f->s)));
  assert_int_equal(smtpout_session_peer_certificate_count(f->s), 1);
}

/* ------------------------------------------------------------------ */
/* Each function into each listed code                                  */

static void test_callbacks_new(void **st)
{
  (void)st;
  ERR(smtpout_callbacks_new, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_callbacks_new(NULL));
}

static void test_session_new(void **st)
{
  smtpout_callbacks *cbs;
  smtpout_session *s;
  (void)st;
  assert_int_equal(smtpout_callbacks_new(&cbs), 0);
  ERR(smtpout_session_new, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_new(NULL, "mx.test.example", NULL, cbs, NULL));
  ERR(smtpout_session_new, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_new(&s, NULL, NULL, cbs, NULL));
  ERR(smtpout_session_new, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_new(&s, "mx.test.example", NULL, NULL, NULL));
  ERR(smtpout_session_new, SMTPOUT_ERR_BAD_NAME,
      smtpout_session_new(&s, "bad..name.example", NULL, cbs, NULL));
  ERR(smtpout_session_new, SMTPOUT_ERR_BAD_NAME,
      smtpout_session_new(&s, "127.1", NULL, cbs, NULL));
  smtpout_callbacks_free(cbs);
}

/* A relay hop whose files fail when the session reads them: a password
 * file opened to others since the load (SMTPOUT_ERR_IO), a client
 * certificate that is no PEM (SMTPOUT_ERR_TLS_SETUP). */
static void relay_hop_file_errors(void)
{
  char dir[] = "/tmp/smtpout-errlists-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char pw[64], junk[64], ini[512], err[256];
  snprintf(pw, sizeof(pw), "%s/pw", dir);
  snprintf(junk, sizeof(junk), "%s/junk", dir);
  FILE *fp = fopen(pw, "w");
  assert_non_null(fp);
  fputs("s3cret\n", fp);
  fclose(fp);
  assert_int_equal(chmod(pw, 0600), 0);
  fp = fopen(junk, "w");
  assert_non_null(fp);
  fputs("not a certificate\n", fp);
  fclose(fp);
  assert_int_equal(chmod(junk, 0600), 0);
  snprintf(ini, sizeof(ini),
           "[relay \"pw\"]\nhost = 192.0.2.7\nport = 587\n"
           "auth-username = u\nauth-password-file = %s\n"
           "[relay \"cert\"]\nhost = 192.0.2.8\nclient-cert = %s\n"
           "client-key = %s\n",
           pw, junk, junk);
  smtpout_config *cfg;
  if (smtpout_config_load_string(&cfg, ini, "t.ini", err, sizeof(err)) != 0)
    fail_msg("%s", err);
  smtpout_callbacks *cbs;
  assert_int_equal(smtpout_callbacks_new(&cbs), 0);
  static const struct {
    const char *label;
    int code;
  } cases[] = {{"pw", SMTPOUT_ERR_IO}, {"cert", SMTPOUT_ERR_TLS_SETUP}};
  assert_int_equal(chmod(pw, 0644), 0);
  for (size_t i = 0; i < 2; i++) {
    smtpout_route *r;
    const smtpout_hop *hop;
    smtpout_session *s = NULL;
    assert_int_equal(smtpout_route_new_relay(&r, cfg, cases[i].label, 0, 0,
                                             0),
                     0);
    assert_int_equal(smtpout_route_next_hop(r, &hop, 0), 1);
    if (cases[i].code == SMTPOUT_ERR_IO)
      ERR(smtpout_session_new_for_hop, SMTPOUT_ERR_IO,
          smtpout_session_new_for_hop(&s, hop, cfg, cbs, NULL));
    else
      ERR(smtpout_session_new_for_hop, SMTPOUT_ERR_TLS_SETUP,
          smtpout_session_new_for_hop(&s, hop, cfg, cbs, NULL));
    assert_null(s);
    smtpout_route_free(r);
  }
  smtpout_callbacks_free(cbs);
  smtpout_config_unref(cfg);
  unlink(pw);
  unlink(junk);
  rmdir(dir);
}

static void test_session_new_for_hop(void **st)
{
  struct fx f;
  smtpout_session *s;
  (void)st;
  memset(&f, 0, sizeof(f));
  assert_int_equal(smtpout_callbacks_new(&f.cbs), 0);
  const smtpout_hop *hop = literal_hop(&f);
  ERR(smtpout_session_new_for_hop, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_new_for_hop(NULL, hop, NULL, f.cbs, NULL));
  ERR(smtpout_session_new_for_hop, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_new_for_hop(&s, NULL, NULL, f.cbs, NULL));
  ERR(smtpout_session_new_for_hop, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_new_for_hop(&s, hop, NULL, NULL, NULL));
  assert_int_equal(smtpout_session_new_for_hop(&f.s, hop, NULL, f.cbs, &f), 0);
  /* The hop's policy is the session's. */
  ERR(smtpout_session_set_tls_policy, SMTPOUT_ERR_INVALID_STATE,
      smtpout_session_set_tls_policy(f.s, SMTPOUT_STARTTLS_DISABLE, 0));
  fx_free(&f);
  relay_hop_file_errors();
}

static void test_hop_outcome(void **st)
{
  struct fx f;
  (void)st;
  ERR(smtpout_session_hop_outcome, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_hop_outcome(NULL));
  fx_new(&f);
  ERR(smtpout_session_hop_outcome, SMTPOUT_ERR_INVALID_STATE,
      smtpout_session_hop_outcome(f.s));
  assert_int_equal(smtpout_session_start(f.s, f.now), 0);
  ERR(smtpout_session_hop_outcome, SMTPOUT_ERR_INVALID_STATE,
      smtpout_session_hop_outcome(f.s));
  /* Over: a 554 greeting is the server's refusal. */
  server(&f, "554 go away\r\n");
  client(&f);
  server(&f, "221 bye\r\n");
  assert_int_equal(smtpout_session_hop_outcome(f.s), SMTPOUT_HOP_HOST_FAILED);
  fx_free(&f);
}

static void test_setters(void **st)
{
  struct fx f;
  (void)st;
  fx_new(&f);
  ERR(smtpout_session_set_helo_name, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_set_helo_name(NULL, "client.example"));
  ERR(smtpout_session_set_helo_name, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_set_helo_name(f.s, NULL));
  ERR(smtpout_session_set_helo_name, SMTPOUT_ERR_BAD_NAME,
      smtpout_session_set_helo_name(f.s, "bad name"));
  ERR(smtpout_session_set_tls_policy, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_set_tls_policy(f.s, 7, 0));
  ERR(smtpout_session_set_tls_policy, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_set_tls_policy(f.s, SMTPOUT_STARTTLS_OPTIONAL, 2));
  ERR(smtpout_session_set_plaintext_fallback, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_set_plaintext_fallback(NULL));
  ERR(smtpout_session_set_ca_file, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_set_ca_file(f.s, NULL));
  ERR(smtpout_session_set_ca_file, SMTPOUT_ERR_TLS_SETUP,
      smtpout_session_set_ca_file(f.s, "/nonexistent/ca.pem"));
  ERR(smtpout_session_set_ca_file, SMTPOUT_ERR_TLS_SETUP,
      smtpout_session_set_ca_file(f.s, "/dev/zero"));
  ERR(smtpout_session_set_tls_resumption, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_set_tls_resumption(f.s, 2));
  ERR(smtpout_session_set_timeout, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_set_timeout(f.s, SMTPOUT_TIMEOUT_COUNT, 1000));
  ERR(smtpout_session_set_timeout, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_set_timeout(f.s, SMTPOUT_TIMEOUT_EHLO, 0));
  ERR(smtpout_session_set_auth, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_set_auth(f.s, NULL, NULL, "pw", 0));
  ERR(smtpout_session_set_auth, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_set_auth(f.s, "PLAIN CRAM-MD5", "u", "pw", 0));
  ERR(smtpout_session_set_implicit_tls, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_set_implicit_tls(f.s, 2));
  ERR(smtpout_session_set_client_cert, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_set_client_cert(f.s, client_pem, NULL));
  ERR(smtpout_session_set_client_cert, SMTPOUT_ERR_TLS_SETUP,
      smtpout_session_set_client_cert(f.s, client_key, client_pem));
  ERR(smtpout_session_set_chunking, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_set_chunking(NULL, 1));
  /* A plaintext fallback is no implicit-TLS session. */
  assert_int_equal(smtpout_session_set_plaintext_fallback(f.s), 0);
  ERR(smtpout_session_set_implicit_tls, SMTPOUT_ERR_INVALID_STATE,
      smtpout_session_set_implicit_tls(f.s, 1));

  /* Once started, the options that shape the connection are closed. */
  assert_int_equal(smtpout_session_start(f.s, f.now), 0);
  ERR(smtpout_session_set_helo_name, SMTPOUT_ERR_INVALID_STATE,
      smtpout_session_set_helo_name(f.s, "other.example"));
  ERR(smtpout_session_set_plaintext_fallback, SMTPOUT_ERR_INVALID_STATE,
      smtpout_session_set_plaintext_fallback(f.s));
  ERR(smtpout_session_set_ca_file, SMTPOUT_ERR_INVALID_STATE,
      smtpout_session_set_ca_file(f.s, "/etc/hostname"));
  ERR(smtpout_session_set_tls_resumption, SMTPOUT_ERR_INVALID_STATE,
      smtpout_session_set_tls_resumption(f.s, 1));
  ERR(smtpout_session_set_auth, SMTPOUT_ERR_INVALID_STATE,
      smtpout_session_set_auth(f.s, NULL, "u", "pw", 0));
  ERR(smtpout_session_set_client_cert, SMTPOUT_ERR_INVALID_STATE,
      smtpout_session_set_client_cert(f.s, client_pem, client_key));
  /* The policy is fixed by the first EHLO reply. */
  server(&f, "220 mx ESMTP\r\n");
  client(&f);
  server(&f, "250 mx\r\n");
  ERR(smtpout_session_set_tls_policy, SMTPOUT_ERR_INVALID_STATE,
      smtpout_session_set_tls_policy(f.s, SMTPOUT_STARTTLS_REQUIRE, 0));
  fx_free(&f);
}

/* A regular file without a certificate is no trust store either. */
static void test_ca_file_without_certificate(void **st)
{
  struct fx f;
  char path[] = "/tmp/smtpout-errtest-XXXXXX";
  (void)st;
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "not a certificate\n", 18), 18);
  close(fd);
  fx_new(&f);
  ERR(smtpout_session_set_ca_file, SMTPOUT_ERR_TLS_SETUP,
      smtpout_session_set_ca_file(f.s, path));
  unlink(path);
  fx_free(&f);
}

static void test_start(void **st)
{
  struct fx f;
  (void)st;
  ERR(smtpout_session_start, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_start(NULL, 0));
  fx_new(&f);
  assert_int_equal(smtpout_session_start(f.s, f.now), 0);
  ERR(smtpout_session_start, SMTPOUT_ERR_INVALID_STATE,
      smtpout_session_start(f.s, f.now));
  fx_free(&f);
}

static void test_submit(void **st)
{
  struct fx f;
  const char *rcpt[] = {"a@test.example"};
  const char *bad[] = {"a\r\nRSET@test.example"};
  const char *none[] = {NULL};
  (void)st;
  fx_new(&f);
  ERR(smtpout_session_submit, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_submit(NULL, "s@test.example", rcpt, 1, 0, 0));
  ERR(smtpout_session_submit, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_submit(f.s, "s@test.example", rcpt, 0, 0, 0));
  ERR(smtpout_session_submit, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_submit(f.s, "s@test.example", rcpt, 1, 0, 0x80));
  ERR(smtpout_session_submit, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_submit(f.s, "s@test.example", none, 1, 0, 0));
  ERR(smtpout_session_submit, SMTPOUT_ERR_BAD_ADDRESS,
      smtpout_session_submit(f.s, "s@test.example", bad, 1, 0, 0));
  ERR(smtpout_session_submit, SMTPOUT_ERR_BAD_ADDRESS,
      smtpout_session_submit(f.s, "s\n@test.example", rcpt, 1, 0, 0));
  /* The same through smtpout_session_submit_dsn(), and a DSN request
   * for a recipient past the last. */
  smtpout_dsn *dsn;
  assert_int_equal(smtpout_dsn_new(&dsn), 0);
  assert_int_equal(smtpout_dsn_set_notify(dsn, 1, SMTPOUT_DSN_NOTIFY_DELAY),
                   0);
  ERR(smtpout_session_submit_dsn, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_submit_dsn(f.s, "s@test.example", rcpt, 1, 0, 0, dsn));
  ERR(smtpout_session_submit_dsn, SMTPOUT_ERR_BAD_ADDRESS,
      smtpout_session_submit_dsn(f.s, "s@test.example", bad, 1, 0, 0, NULL));
  assert_int_equal(smtpout_session_quit(f.s), 0);
  ERR(smtpout_session_submit, SMTPOUT_ERR_INVALID_STATE,
      smtpout_session_submit(f.s, "s@test.example", rcpt, 1, 0, 0));
  ERR(smtpout_session_submit_dsn, SMTPOUT_ERR_INVALID_STATE,
      smtpout_session_submit_dsn(f.s, "s@test.example", rcpt, 1, 0, 0, NULL));
  smtpout_dsn_free(dsn);
  fx_free(&f);

  /* A connection that settled for optional TLS without certificates
   * checked cannot take a message whose domain requires STARTTLS. */
  smtpout_config *cfg;
  char err[512];
  assert_int_equal(smtpout_config_load_string(
                       &cfg,
                       "[queue.outbound.tls]\nstarttls = optional\n"
                       "allow-invalid-certs = true\n"
                       "[destination \"strict\"]\ndomains = strict.example\n"
                       "starttls = require\n",
                       "strict.ini", err, sizeof(err)),
                   0);
  smtpout_callbacks *cbs;
  smtpout_session *s;
  assert_int_equal(smtpout_callbacks_new(&cbs), 0);
  assert_int_equal(smtpout_session_new(&s, "mx.test.example", cfg, cbs, NULL),
                   0);
  assert_int_equal(smtpout_session_start(s, 0), 0);
  assert_int_equal(smtpout_session_feed(s, (const uint8_t *)"220 hi\r\n", 8, 0),
                   0);
  const uint8_t *p;
  size_t n;
  assert_int_equal(smtpout_session_peek_output(s, &p, &n, 0), 0);
  assert_int_equal(smtpout_session_consume_output(s, n, 0), 0);
  assert_int_equal(smtpout_session_feed(s, (const uint8_t *)"250 mx\r\n", 8, 0),
                   0);
  const char *strict[] = {"a@strict.example"};
  ERR(smtpout_session_submit, SMTPOUT_ERR_POLICY_CONFLICT,
      smtpout_session_submit(s, "s@test.example", strict, 1, 0, 0));
  ERR(smtpout_session_submit_dsn, SMTPOUT_ERR_POLICY_CONFLICT,
      smtpout_session_submit_dsn(s, "s@test.example", strict, 1, 0, 0,
                                 NULL));
  smtpout_session_free(s);
  smtpout_callbacks_free(cbs);
  smtpout_config_unref(cfg);
}

static void test_quit_resume_and_null_arguments(void **st)
{
  const uint8_t *p;
  size_t n;
  struct fx f;
  (void)st;
  ERR(smtpout_session_quit, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_quit(NULL));
  ERR(smtpout_session_resume_body, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_resume_body(NULL));
  ERR(smtpout_session_abort, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_abort(NULL, 0));
  ERR(smtpout_session_feed, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_feed(NULL, (const uint8_t *)"x", 1, 0));
  ERR(smtpout_session_feed_eof, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_feed_eof(NULL, 0));
  ERR(smtpout_session_peek_output, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_peek_output(NULL, &p, &n, 0));
  ERR(smtpout_session_consume_output, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_consume_output(NULL, 0, 0));
  ERR(smtpout_session_handle_expiry, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_handle_expiry(NULL, 0));
  ERR(smtpout_session_policy_starttls, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_policy_starttls(NULL));
  ERR(smtpout_session_policy_allow_invalid_certs, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_policy_allow_invalid_certs(NULL));
  ERR(smtpout_address_check, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_address_check(NULL));
  ERR(smtpout_address_check, SMTPOUT_ERR_BAD_ADDRESS,
      smtpout_address_check("a>b@test.example"));

  fx_new(&f);
  ERR(smtpout_session_feed, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_feed(f.s, NULL, 1, 0));
  ERR(smtpout_session_peek_output, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_peek_output(f.s, NULL, &n, 0));
  ERR(smtpout_session_consume_output, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_consume_output(f.s, 1, 0));
  /* Before start there is nothing to read from. */
  ERR(smtpout_session_feed, SMTPOUT_ERR_INVALID_STATE,
      smtpout_session_feed(f.s, (const uint8_t *)"220 hi\r\n", 8, 0));
  ERR(smtpout_session_feed_eof, SMTPOUT_ERR_INVALID_STATE,
      smtpout_session_feed_eof(f.s, 0));
  fx_free(&f);
}

/* Called from a callback of the same session, every I/O call is
 * refused. */
static void test_peer_certificate(void **st)
{
  struct fx f;
  smtpout_certificate *c = NULL;
  (void)st;
  fx_ready(&f); /* no TLS: no certificate at all */
  ERR(smtpout_session_peer_certificate, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_peer_certificate(f.s, 0, &c));
  fx_free(&f);
  fx_tls(&f);
  ERR(smtpout_session_peer_certificate, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_peer_certificate(NULL, 0, &c));
  ERR(smtpout_session_peer_certificate, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_peer_certificate(f.s, 0, NULL));
  ERR(smtpout_session_peer_certificate, SMTPOUT_ERR_INVALID_ARGUMENT,
      smtpout_session_peer_certificate(f.s, 1, &c));
  assert_int_equal(smtpout_session_peer_certificate(f.s, 0, &c), 0);
  assert_string_equal(smtpout_certificate_subject(c), "CN=mx.test.example");
  smtpout_certificate_free(c);
  fx_free(&f);
}

static void test_io_calls_from_a_callback(void **st)
{
  struct fx f;
  (void)st;
  fx_ready(&f);
  assert_true(submit_one(&f) > 0);
  client(&f);
  server(&f, "250 ok\r\n");
  client(&f);
  server(&f, "550 5.1.1 no such user\r\n"); /* on_result runs here */
  assert_int_equal(f.callback_ran, 1);
  ERR(smtpout_session_start, SMTPOUT_ERR_INVALID_STATE, f.in_callback_rv[0]);
  ERR(smtpout_session_feed, SMTPOUT_ERR_INVALID_STATE, f.in_callback_rv[1]);
  ERR(smtpout_session_feed_eof, SMTPOUT_ERR_INVALID_STATE,
      f.in_callback_rv[2]);
  ERR(smtpout_session_peek_output, SMTPOUT_ERR_INVALID_STATE,
      f.in_callback_rv[3]);
  ERR(smtpout_session_consume_output, SMTPOUT_ERR_INVALID_STATE,
      f.in_callback_rv[4]);
  ERR(smtpout_session_handle_expiry, SMTPOUT_ERR_INVALID_STATE,
      f.in_callback_rv[5]);
  ERR(smtpout_session_abort, SMTPOUT_ERR_INVALID_STATE, f.in_callback_rv[6]);
  fx_free(&f);
}

/* ------------------------------------------------------------------ */
/* Out of memory                                                        */

#ifdef ERRTEST_FAULTY_MALLOC

/*
 * One call made to run out of memory: `setup` builds what the call needs
 * (allocating freely), then `call` runs with the n-th allocation failing,
 * for n = 0, 1, ... until it makes no allocation that fails.  Every
 * result must be 0, SMTPOUT_ERR_NOMEM or one of `also` (codes a failed
 * allocation inside the TLS or IDNA library may turn into), and
 * SMTPOUT_ERR_NOMEM must come at least once.  NOMEM_CASE(fn, ...) names
 * the function the contract is about; check-error-lists.py reads it, and
 * checks `also` against the header too.
 */
struct nomem_case {
  const char *fn;
  void (*setup)(struct fx *f);
  int (*call)(struct fx *f);
  int also[4];
};
#define NOMEM_CASE(fn, setup, call, ...)                                     \
  { #fn, setup, call, { __VA_ARGS__ } }

static void setup_callbacks(struct fx *f)
{
  memset(f, 0, sizeof(*f));
  assert_int_equal(smtpout_callbacks_new(&f->cbs), 0);
}
static void setup_nothing(struct fx *f) { memset(f, 0, sizeof(*f)); }
static void setup_new(struct fx *f) { fx_new(f); }
static void setup_started(struct fx *f)
{
  fx_new(f);
  assert_int_equal(smtpout_session_start(f->s, f->now), 0);
}
/* The server said 354: the next peek pulls a body that does not fit the
 * output buffer as it is. */
static void setup_data(struct fx *f)
{
  fx_ready(f);
  f->big_body = 1;
  assert_true(submit_one(f) > 0);
  client(f);
  server(f, "250 ok\r\n");
  client(f);
  server(f, "250 ok\r\n");
  client(f);
  server(f, "354 go\r\n");
}

static int call_callbacks_new(struct fx *f)
{
  return smtpout_callbacks_new(&f->cbs);
}
static int call_session_new(struct fx *f)
{
  return smtpout_session_new(&f->s, "mx.test.example", NULL, f->cbs, f);
}
static void setup_hop(struct fx *f)
{
  setup_callbacks(f);
  literal_hop(f);
}
static int call_session_new_for_hop(struct fx *f)
{
  return smtpout_session_new_for_hop(&f->s, f->hop, NULL, f->cbs, f);
}
/* An internationalised name goes through libidn2, which allocates. */
static int call_set_helo_name(struct fx *f)
{
  return smtpout_session_set_helo_name(f->s, "b\xc3\xbc" "cher.example");
}
static int call_set_ca_file(struct fx *f)
{
  return smtpout_session_set_ca_file(f->s, CA_FILE);
}
static int call_start(struct fx *f)
{
  return smtpout_session_start(f->s, f->now);
}
static int call_submit(struct fx *f) { return submit_one(f); }
/* A DSN request makes copies of its encoded values. */
static int call_submit_dsn(struct fx *f)
{
  const char *rcpt[] = {"a@test.example"};
  smtpout_dsn *dsn;
  if (smtpout_dsn_new(&dsn) != 0)
    return SMTPOUT_ERR_NOMEM;
  int rv = smtpout_dsn_set_envid(dsn, "env-1");
  if (rv == 0)
    rv = smtpout_dsn_set_orcpt(dsn, 0, "rfc822;a@test.example");
  if (rv == 0)
    rv = smtpout_session_submit_dsn(f->s, "s@test.example", rcpt, 1, 0, 0,
                                    dsn);
  smtpout_dsn_free(dsn);
  return rv;
}
static int call_set_auth(struct fx *f)
{
  return smtpout_session_set_auth(f->s, "PLAIN", "user", "secret", 0);
}
static int call_set_client_cert(struct fx *f)
{
  return smtpout_session_set_client_cert(f->s, client_pem, client_key);
}
/* The greeting makes the session write EHLO. */
static int call_feed(struct fx *f)
{
  return smtpout_session_feed(f->s, (const uint8_t *)"220 mx ESMTP\r\n", 14,
                              f->now);
}
static int call_peer_certificate(struct fx *f)
{
  smtpout_certificate *c = NULL;
  int rv = smtpout_session_peer_certificate(f->s, 0, &c);
  smtpout_certificate_free(c);
  return rv;
}
/* Part of a line: the parser needs a buffer to keep it. */
static int call_feed_split_line(struct fx *f)
{
  return smtpout_session_feed(f->s, (const uint8_t *)"220 mx ES", 9, f->now);
}
static int call_peek_output(struct fx *f)
{
  const uint8_t *p;
  size_t n;
  return smtpout_session_peek_output(f->s, &p, &n, f->now);
}

static const struct nomem_case nomem_cases[] = {
  NOMEM_CASE(smtpout_callbacks_new, setup_nothing, call_callbacks_new, 0),
  NOMEM_CASE(smtpout_session_new, setup_callbacks, call_session_new, 0),
  NOMEM_CASE(smtpout_session_new_for_hop, setup_hop, call_session_new_for_hop,
             0),
  NOMEM_CASE(smtpout_session_set_helo_name, setup_new, call_set_helo_name,
             SMTPOUT_ERR_BAD_NAME),
  NOMEM_CASE(smtpout_session_set_ca_file, setup_new, call_set_ca_file,
             SMTPOUT_ERR_TLS_SETUP),
  NOMEM_CASE(smtpout_session_start, setup_new, call_start, 0),
  NOMEM_CASE(smtpout_session_submit, setup_started, call_submit, 0),
  NOMEM_CASE(smtpout_session_submit_dsn, setup_started, call_submit_dsn, 0),
  NOMEM_CASE(smtpout_session_set_auth, setup_new, call_set_auth, 0),
  NOMEM_CASE(smtpout_session_set_client_cert, setup_new,
             call_set_client_cert, SMTPOUT_ERR_TLS_SETUP),
  NOMEM_CASE(smtpout_session_feed, setup_started, call_feed, 0),
  NOMEM_CASE(smtpout_session_feed, setup_started, call_feed_split_line, 0),
  NOMEM_CASE(smtpout_session_peek_output, setup_data, call_peek_output, 0),
  NOMEM_CASE(smtpout_session_peer_certificate, fx_tls, call_peer_certificate,
             0),
};

static void test_out_of_memory(void **st)
{
  (void)st;
  for (size_t k = 0; k < sizeof(nomem_cases) / sizeof(nomem_cases[0]); k++) {
    const struct nomem_case *c = &nomem_cases[k];
    int seen = 0;
    for (long n = 0;; n++) {
      struct fx f;
      c->setup(&f);
      failed = 0;
      countdown = n;
      int rv = c->call(&f);
      countdown = -1;
      int ok = rv >= 0 || rv == SMTPOUT_ERR_NOMEM;
      for (size_t i = 0; i < 4 && !ok; i++)
        ok = c->also[i] != 0 && rv == c->also[i];
      if (!ok)
        fail_msg("%s, allocation %ld failing: %s (%d), not in its list",
                 c->fn, n, smtpout_strerror(rv), rv);
      seen |= rv == SMTPOUT_ERR_NOMEM;
      fx_free(&f);
      if (!failed)
        break; /* the call made no n-th allocation: all of them tried */
    }
    if (!seen)
      fail_msg("%s never returned SMTPOUT_ERR_NOMEM", c->fn);
  }
}
#endif /* ERRTEST_FAULTY_MALLOC: a sanitizer's runtime owns malloc() */

int main(void)
{
  int fd = mkstemp(ca_file);
  if (fd < 0 || write(fd, ca_pem, sizeof(ca_pem) - 1) !=
                    (ssize_t)(sizeof(ca_pem) - 1)) {
    perror("test_error_lists: temporary CA file");
    return 1;
  }
  close(fd);
  if (mkdtemp(cert_dir) == NULL) {
    perror("test_error_lists: temporary directory");
    return 1;
  }
  snprintf(client_pem, sizeof(client_pem), "%s/client.pem", cert_dir);
  snprintf(client_key, sizeof(client_key), "%s/client.key", cert_dir);
  char cmd[1024];
  snprintf(cmd, sizeof(cmd),
           "cd %s && printf 'cn = client\\nexpiration_days = 2\\n' > tmpl "
           "&& certtool --generate-privkey --key-type ecdsa --outfile "
           "client.key >/dev/null 2>&1 && certtool --generate-self-signed "
           "--load-privkey client.key --template tmpl --outfile client.pem "
           ">/dev/null 2>&1",
           cert_dir);
  if (system(cmd) != 0) {
    fprintf(stderr, "test_error_lists: certtool failed\n");
    return 1;
  }
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_callbacks_new),
    cmocka_unit_test(test_session_new),
    cmocka_unit_test(test_session_new_for_hop),
    cmocka_unit_test(test_hop_outcome),
    cmocka_unit_test(test_setters),
    cmocka_unit_test(test_ca_file_without_certificate),
    cmocka_unit_test(test_start),
    cmocka_unit_test(test_submit),
    cmocka_unit_test(test_quit_resume_and_null_arguments),
    cmocka_unit_test(test_io_calls_from_a_callback),
    cmocka_unit_test(test_peer_certificate),
#ifdef ERRTEST_FAULTY_MALLOC
    cmocka_unit_test(test_out_of_memory),
#endif
  };
  int rv = cmocka_run_group_tests(tests, NULL, NULL);
  unlink(ca_file);
  snprintf(cmd, sizeof(cmd), "rm -rf %s", cert_dir);
  if (system(cmd) != 0)
    rv = 1;
  return rv;
}
