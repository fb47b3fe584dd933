/*
 * test_session_dane.c — sessions made for route hops, against a real
 * GnuTLS server held in memory: what DANE, PKIX and REQUIRETLS make of
 * real handshakes and real certificates.
 *
 * The certificates and their TLSA records come from tests/certs/mkdane.sh
 * (certtool and danetool, at test time; never from the code under test);
 * the hops from routes answered by a scripted resolver (hopkit.h), so a
 * TLSA record reaches the session the way it would from the DNS.  The
 * configuration trusts mkdane's CA ("smtpout DANE test CA") by PKIX, so
 * the same chains can be verified both ways: that is what shows a verdict
 * (or a session ticket) of one mode never counting for the other.  No
 * socket, no clock of the test's own: every byte is moved by the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <gnutls/gnutls.h>

#include "harness.h"
#include "hopkit.h"
#include "memtls.h"

static const char *const A = "a@test.example";
static char pki[256];
static smtpout_config *cfg; /* trusts mkdane's CA: PKIX can verify mx2 */
static gnutls_datum_t ticket_key; /* one server: its tickets resume */

/* ---- the server ---- */

/* The server (memtls.h), and whether its handshake is done. */
struct srv {
  struct memtls m;
  int hs_done;
};

/* A TLS 1.3 server presenting NAME-chain.pem (mkdane), issuing tickets
 * with the key every server of the program shares. */
static void srv_init(struct srv *v, const char *name)
{
  char chain[512], key[512];
  memset(v, 0, sizeof(*v));
  snprintf(chain, sizeof(chain), "%s/%s-chain.pem", pki, name);
  snprintf(key, sizeof(key), "%s/%s.key", pki, name);
  memtls_init_files(&v->m, 0, "NORMAL:-VERS-ALL:+VERS-TLS1.3", chain, key);
  assert_int_equal(gnutls_session_ticket_enable_server(v->m.tls, &ticket_key),
                   0);
}

static void srv_free(struct srv *v)
{
  memtls_free(&v->m);
}

/* Moves bytes both ways until neither side has more to say, running the
 * server's handshake while it is not done. */
static void pump(struct h *h, struct srv *v)
{
  for (int round = 0; round < 50; round++) {
    h_client(h);
    int moved = h->outlen > 0;
    if (moved)
      memtls_take(&v->m, h->out, h->outlen);
    if (!v->hs_done) {
      int rv;
      do
        rv = gnutls_handshake(v->m.tls);
      while (rv == GNUTLS_E_INTERRUPTED);
      v->hs_done = rv == GNUTLS_E_SUCCESS;
    }
    if (v->m.out_len > 0) {
      h_server_n(h, v->m.out, v->m.out_len);
      v->m.out_len = 0;
      moved = 1;
    }
    if (!moved)
      return;
  }
  fail_msg("the session and the server never stopped talking");
}

/* The plaintext the server received since the last call. */
static const char *srv_recv(struct srv *v)
{
  static char buf[8192];
  size_t n = 0;
  for (;;) {
    ssize_t r = gnutls_record_recv(v->m.tls, buf + n, sizeof(buf) - 1 - n);
    if (r == GNUTLS_E_AGAIN || r == 0)
      break;
    assert_true(r > 0);
    n += (size_t)r;
  }
  buf[n] = '\0';
  return buf;
}

static void srv_say(struct h *h, struct srv *v, const char *text)
{
  assert_int_equal(gnutls_record_send(v->m.tls, text, strlen(text)),
                   (ssize_t)strlen(text));
  pump(h, v);
}

/* ---- hops ---- */

/* The TLSA record "U S M HEX" of mkdane's NAME.tlsa with selector `sel`
 * and matching type `mt`. */
static const char *tlsa(const char *name, unsigned sel, unsigned mt)
{
  static char rr[4][4300];
  static unsigned next;
  char path[512];
  snprintf(path, sizeof(path), "%s/%s.tlsa", pki, name);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char *out = rr[next++ % 4];
  unsigned u, s, m;
  char hex[4200];
  while (fscanf(f, "%u %u %u %4199s", &u, &s, &m, hex) == 4)
    if (s == sel && m == mt) {
      snprintf(out, sizeof(rr[0]), "%u %u %u %s", u, s, m, hex);
      fclose(f);
      return out;
    }
  fclose(f);
  fail_msg("no %u %u record in %s", sel, mt, path);
  return NULL;
}

/* A hop to `mx` in secure.test (DNSSEC-secure), whose TLSA records are
 * `rr1` and `rr2` (NULL: none).  With no record at all, the hop's
 * requirement is the local policy's. */
static const smtpout_hop *secure_hop(struct hopkit *k, const char *mx,
                                     const char *rr1, const char *rr2,
                                     uint32_t flags)
{
  static const char *const secure[] = {"secure.test", NULL};
  static char mxrr[300], owner[300];
  snprintf(mxrr, sizeof(mxrr), "10 %s", mx);
  snprintf(owner, sizeof(owner), "_25._tcp.%s", mx);
  struct hk_rec recs[] = {
    {"secure.test", "MX", mxrr},
    {mx, "A", "192.0.2.1"},
    {rr1 ? owner : NULL, "TLSA", rr1},
    {rr2 ? owner : NULL, "TLSA", rr2},
    {NULL, NULL, NULL},
  };
  struct hk_zone zone = {recs, secure, NULL};
  return hk_route(k, cfg, "secure.test", flags, &zone);
}

/* A hop to mx2.secure.test under an MTA-STS enforce policy of sts.test
 * (no DNSSEC: no DANE). */
static const smtpout_hop *sts_hop(struct hopkit *k, uint32_t flags)
{
  static const struct hk_rec recs[] = {
    {"sts.test", "MX", "10 mx2.secure.test"},
    {"mx2.secure.test", "A", "192.0.2.2"},
    {"_mta-sts.sts.test", "TXT", "v=STSv1; id=1"},
    {"mta-sts.sts.test", "A", "192.0.2.3"},
    {NULL, NULL, NULL},
  };
  static const struct hk_zone zone = {
    recs, NULL,
    "version: STSv1\nmode: enforce\nmx: mx2.secure.test\nmax_age: 86400\n"};
  const smtpout_hop *hop = hk_route(k, cfg, "sts.test", flags, &zone);
  assert_int_equal(smtpout_hop_tls_requirement(hop),
                   SMTPOUT_TLS_REQUIREMENT_PKIX);
  return hop;
}

/* ---- sessions ---- */

#define EHLO_TLS "250-PIPELINING\r\n250 STARTTLS\r\n"

/* A session for `hop` (one message to A, QUIT when done) against a server
 * presenting `cert`, run through the handshake: the server has the
 * client's first words over TLS in `first` (EHLO, or QUIT when the
 * certificate was refused). */
static const char *open_tls(struct h *h, struct srv *v,
                            const smtpout_hop *hop, const char *cert,
                            int resume)
{
  srv_init(v, cert);
  h_init_hop(h, hop, cfg);
  assert_int_equal(smtpout_session_set_tls_resumption(h->s, resume), 0);
  h_submit(h, A, NULL);
  assert_int_equal(smtpout_session_quit(h->s), 0);
  h_open(h, EHLO_TLS);
  assert_string_equal(h_client(h), "STARTTLS\r\n");
  h_server(h, "220 2.0.0 go ahead\r\n");
  pump(h, v);
  assert_true(v->hs_done);
  return srv_recv(v);
}

/* The rest of a delivery over TLS, from the EHLO reply on. */
static void deliver(struct h *h, struct srv *v, const char *ehlo_reply,
                    const char *mail)
{
  srv_say(h, v, ehlo_reply);
  char want[512];
  snprintf(want, sizeof(want), "%s\r\nRCPT TO:<a@test.example>\r\nDATA\r\n",
           mail);
  assert_string_equal(srv_recv(v), want);
  srv_say(h, v, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n");
  assert_string_equal(srv_recv(v), "Subject: t\r\n\r\nhello\r\n.\r\nQUIT\r\n");
  srv_say(h, v, "250 2.0.0 queued\r\n221 2.0.0 bye\r\n");
  assert_true(smtpout_session_is_done(h->s));
  const struct h_result *r = h_find(h, A);
  assert_non_null(r);
  assert_int_equal(r->status, SMTPOUT_STATUS_DELIVERED);
  assert_int_equal(smtpout_session_hop_outcome(h->s), SMTPOUT_HOP_DONE);
}

#define PLAIN_MAIL "MAIL FROM:<sender@test.example>"

/* The session refused the server after the handshake: QUIT over TLS,
 * deferred 4.7.5. */
static void refused(struct h *h, struct srv *v, const char *first,
                    const char *tlsrpt)
{
  assert_string_equal(first, "QUIT\r\n");
  srv_say(h, v, "221 2.0.0 bye\r\n");
  assert_true(smtpout_session_is_done(h->s));
  const struct h_result *r = h_find(h, A);
  assert_non_null(r);
  assert_int_equal(r->status, SMTPOUT_STATUS_DEFERRED);
  assert_string_equal(r->enhanced, "4.7.5");
  assert_int_equal(smtpout_tls_info_verified(h->tls), 0);
  assert_int_equal(smtpout_tls_info_auth(h->tls), SMTPOUT_TLS_AUTH_NONE);
  assert_string_equal(smtpout_tls_info_tlsrpt_result(h->tls), tlsrpt);
  assert_int_equal(smtpout_session_hop_outcome(h->s), SMTPOUT_HOP_TLS_FAILED);
}

/* The SNI the server received. */
static const char *sni_seen(struct srv *v)
{
  static char name[256];
  size_t len = sizeof(name);
  unsigned type;
  if (gnutls_server_name_get(v->m.tls, name, &len, &type, 0) != 0)
    return "";
  return name;
}

static void finish(struct h *h, struct srv *v, struct hopkit *k)
{
  h_free(h);
  srv_free(v);
  hk_free(k);
}

/* ---- the tests ---- */

/* RFC 7672 3.1.1: a self-signed certificate that PKIX would refuse, and
 * even an expired one, is authenticated by its DANE-EE record. */
static void test_dane_ee_self_signed_is_delivered_and_reported(void **st)
{
  (void)st;
  static const char *const certs[] = {"ee", "ee-expired"};
  for (size_t i = 0; i < 2; i++) {
    struct h h;
    struct srv v;
    struct hopkit k;
    const smtpout_hop *hop =
        secure_hop(&k, "mx1.secure.test", tlsa(certs[i], 1, 1), NULL, 0);
    assert_int_equal(smtpout_hop_tls_requirement(hop),
                     SMTPOUT_TLS_REQUIREMENT_DANE);
    const char *first = open_tls(&h, &v, hop, certs[i], 0);
    assert_string_equal(first, "EHLO client.example\r\n");
    assert_string_equal(sni_seen(&v), "mx1.secure.test");
    deliver(&h, &v, "250-mx1\r\n250 PIPELINING\r\n", PLAIN_MAIL);
    assert_int_equal(smtpout_tls_info_verified(h.tls), 1);
    assert_int_equal(smtpout_tls_info_auth(h.tls), SMTPOUT_TLS_AUTH_DANE_EE);
    assert_string_equal(smtpout_tls_info_tlsa_matched(h.tls), "3 1 1");
    assert_int_equal(smtpout_tls_info_tlsa_records(h.tls), 1);
    assert_null(smtpout_tls_info_tlsrpt_result(h.tls));
    finish(&h, &v, &k);
  }
}

/* A usable TLSA set the chain does not match: QUIT over TLS, deferred
 * 4.7.5, validation-failure (docs/policy.md says why not tlsa-invalid). */
static void test_tlsa_mismatch_is_deferred(void **st)
{
  (void)st;
  struct h h;
  struct srv v;
  struct hopkit k;
  const smtpout_hop *hop =
      secure_hop(&k, "mx1.secure.test", tlsa("mx2", 1, 1), NULL, 0);
  refused(&h, &v, open_tls(&h, &v, hop, "ee", 0), "validation-failure");
  assert_non_null(strstr(smtpout_tls_info_verify_error(h.tls),
                         "no TLSA record matches"));
  assert_non_null(strstr(h_find(&h, A)->text,
                         "server certificate not authenticated by DANE"));
  finish(&h, &v, &k);
}

/* DANE-TA (RFC 7672 3.1.2): the CA's record authenticates a chain to it
 * that names the MX host; the same CA's chain for another name is
 * refused, certificate-host-mismatch. */
static void test_dane_ta_right_and_wrong_name(void **st)
{
  (void)st;
  struct h h;
  struct srv v;
  struct hopkit k;
  const smtpout_hop *hop =
      secure_hop(&k, "mx2.secure.test", tlsa("ca", 0, 1), NULL, 0);
  assert_string_equal(open_tls(&h, &v, hop, "mx2", 0),
                      "EHLO client.example\r\n");
  deliver(&h, &v, "250-mx2\r\n250 PIPELINING\r\n", PLAIN_MAIL);
  assert_int_equal(smtpout_tls_info_auth(h.tls), SMTPOUT_TLS_AUTH_DANE_TA);
  assert_string_equal(smtpout_tls_info_tlsa_matched(h.tls), "2 0 1");
  finish(&h, &v, &k);

  hop = secure_hop(&k, "mx2.secure.test", tlsa("ca", 0, 1), NULL, 0);
  refused(&h, &v, open_tls(&h, &v, hop, "wrongname", 0),
          "certificate-host-mismatch");
  finish(&h, &v, &k);
}

/* The same chains verified both ways: mx2's chain verifies by PKIX (the
 * configuration trusts its CA), and a verdict remembered for PKIX must
 * not let it pass a DANE hop whose records name another key; the
 * self-signed ee verifies by DANE, and that verdict must not let it pass
 * PKIX.  Each way the cache was filled by the first session. */
static void test_pkix_and_dane_verdicts_are_kept_apart(void **st)
{
  (void)st;
  struct h h;
  struct srv v;
  struct hopkit k;
  /* PKIX verifies mx2 (a hop without TLSA records: the local policy). */
  const smtpout_hop *hop = secure_hop(&k, "mx2.secure.test", NULL, NULL, 0);
  assert_int_equal(smtpout_hop_tls_requirement(hop),
                   SMTPOUT_TLS_REQUIREMENT_LOCAL);
  assert_string_equal(open_tls(&h, &v, hop, "mx2", 0),
                      "EHLO client.example\r\n");
  deliver(&h, &v, "250-mx2\r\n250 PIPELINING\r\n", PLAIN_MAIL);
  assert_int_equal(smtpout_tls_info_auth(h.tls), SMTPOUT_TLS_AUTH_PKIX);
  finish(&h, &v, &k);
  /* The same chain, a DANE hop whose record is ee's key. */
  hop = secure_hop(&k, "mx2.secure.test", tlsa("ee", 1, 1), NULL, 0);
  refused(&h, &v, open_tls(&h, &v, hop, "mx2", 0), "validation-failure");
  finish(&h, &v, &k);

  /* DANE-EE authenticates ee... */
  hop = secure_hop(&k, "mx1.secure.test", tlsa("ee", 1, 1), NULL, 0);
  assert_string_equal(open_tls(&h, &v, hop, "ee", 0),
                      "EHLO client.example\r\n");
  deliver(&h, &v, "250-mx1\r\n250 PIPELINING\r\n", PLAIN_MAIL);
  finish(&h, &v, &k);
  /* ...which PKIX still refuses (self-signed). */
  hop = secure_hop(&k, "mx1.secure.test", NULL, NULL, 0);
  refused(&h, &v, open_tls(&h, &v, hop, "ee", 0), "certificate-not-trusted");
  finish(&h, &v, &k);
}

/* Session tickets: a DANE session's ticket resumes a later session of the
 * same TLSA set (reported as the first was: dane-ee, "3 1 1"), and no
 * other: not a set with another record, not a PKIX session to the same
 * name; nor does a PKIX session's ticket resume a DANE one. */
static void test_tickets_are_kept_per_mode_and_tlsa_set(void **st)
{
  (void)st;
  struct h h;
  struct srv v;
  struct hopkit k;
  const char *ee311 = tlsa("ee", 1, 1);
  const char *ee301 = tlsa("ee", 0, 1);

  for (int i = 0; i < 2; i++) {
    const smtpout_hop *hop = secure_hop(&k, "mx1.secure.test", ee311, NULL, 0);
    assert_string_equal(open_tls(&h, &v, hop, "ee", 1),
                        "EHLO client.example\r\n");
    deliver(&h, &v, "250-mx1\r\n250 PIPELINING\r\n", PLAIN_MAIL);
    /* The second one resumed the first's session, and counts as it. */
    assert_int_equal(smtpout_tls_info_resumed(h.tls), i == 1);
    assert_int_equal(smtpout_tls_info_auth(h.tls), SMTPOUT_TLS_AUTH_DANE_EE);
    assert_string_equal(smtpout_tls_info_tlsa_matched(h.tls), "3 1 1");
    finish(&h, &v, &k);
  }
  /* Another set (one more record): a full handshake. */
  const smtpout_hop *hop =
      secure_hop(&k, "mx1.secure.test", ee311, ee301, 0);
  assert_string_equal(open_tls(&h, &v, hop, "ee", 1),
                      "EHLO client.example\r\n");
  deliver(&h, &v, "250-mx1\r\n250 PIPELINING\r\n", PLAIN_MAIL);
  assert_int_equal(smtpout_tls_info_resumed(h.tls), 0);
  finish(&h, &v, &k);
  /* PKIX to the same name (the SNI the DANE tickets are kept under):
   * nothing to resume, and the self-signed certificate is refused. */
  hop = secure_hop(&k, "mx1.secure.test", NULL, NULL, 0);
  refused(&h, &v, open_tls(&h, &v, hop, "ee", 1), "certificate-not-trusted");
  assert_int_equal(smtpout_tls_info_resumed(h.tls), 0);
  finish(&h, &v, &k);

  /* The other way: a PKIX session to mx2 keeps a ticket... */
  for (int i = 0; i < 2; i++) {
    hop = secure_hop(&k, "mx2.secure.test", NULL, NULL, 0);
    assert_string_equal(open_tls(&h, &v, hop, "mx2", 1),
                        "EHLO client.example\r\n");
    deliver(&h, &v, "250-mx2\r\n250 PIPELINING\r\n", PLAIN_MAIL);
    assert_int_equal(smtpout_tls_info_resumed(h.tls), i == 1);
    finish(&h, &v, &k);
  }
  /* ...which a DANE hop to mx2 whose record names another key never
   * resumes. */
  hop = secure_hop(&k, "mx2.secure.test", ee311, NULL, 0);
  refused(&h, &v, open_tls(&h, &v, hop, "mx2", 1), "validation-failure");
  assert_int_equal(smtpout_tls_info_resumed(h.tls), 0);
  finish(&h, &v, &k);
}

/* MTA-STS enforce: PKIX for the MX name over a real handshake. */
static void test_pkix_hop_verifies_the_mx_name(void **st)
{
  (void)st;
  struct h h;
  struct srv v;
  struct hopkit k;
  const smtpout_hop *hop = sts_hop(&k, 0);
  assert_string_equal(open_tls(&h, &v, hop, "mx2", 0),
                      "EHLO client.example\r\n");
  assert_string_equal(sni_seen(&v), "mx2.secure.test");
  deliver(&h, &v, "250-mx2\r\n250 PIPELINING\r\n", PLAIN_MAIL);
  assert_int_equal(smtpout_tls_info_auth(h.tls), SMTPOUT_TLS_AUTH_PKIX);
  finish(&h, &v, &k);
  /* A certificate for another name: sts-webpki-invalid. */
  hop = sts_hop(&k, 0);
  refused(&h, &v, open_tls(&h, &v, hop, "wrongname", 0), "sts-webpki-invalid");
  finish(&h, &v, &k);
}

/* REQUIRETLS over real TLS: sent when DANE authenticated the server and
 * its EHLO over TLS offers it; otherwise nothing is sent. */
static void test_requiretls_sent_or_not_offered(void **st)
{
  (void)st;
  struct h h;
  struct srv v;
  struct hopkit k;
  const smtpout_hop *hop = secure_hop(&k, "mx1.secure.test", tlsa("ee", 1, 1),
                                      NULL, SMTPOUT_ROUTE_REQUIRETLS);
  assert_int_equal(smtpout_hop_requiretls(hop), 1);
  assert_string_equal(open_tls(&h, &v, hop, "ee", 0),
                      "EHLO client.example\r\n");
  deliver(&h, &v, "250-mx1\r\n250-PIPELINING\r\n250 REQUIRETLS\r\n",
          PLAIN_MAIL " REQUIRETLS");
  assert_int_equal(smtpout_tls_info_requiretls(h.tls), 1);
  finish(&h, &v, &k);

  hop = secure_hop(&k, "mx1.secure.test", tlsa("ee", 1, 1), NULL,
                   SMTPOUT_ROUTE_REQUIRETLS);
  assert_string_equal(open_tls(&h, &v, hop, "ee", 0),
                      "EHLO client.example\r\n");
  srv_say(&h, &v, "250-mx1\r\n250 PIPELINING\r\n");
  assert_string_equal(srv_recv(&v), "QUIT\r\n");
  srv_say(&h, &v, "221 2.0.0 bye\r\n");
  const struct h_result *r = h_find(&h, A);
  assert_non_null(r);
  assert_string_equal(r->enhanced, "4.7.30");
  assert_int_equal(smtpout_tls_info_requiretls(h.tls), 0);
  assert_int_equal(smtpout_session_hop_outcome(h.s),
                   SMTPOUT_HOP_REQUIRETLS_NOT_OFFERED);
  finish(&h, &v, &k);
}

/* ---- setup ---- */

static int group_setup(void **st)
{
  (void)st;
  char cmd[1024], ini[600], err[256];
  const char *tmp = getenv("TMPDIR");
  snprintf(pki, sizeof(pki), "%s/smtpout-session-dane-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp(pki) == NULL)
    return -1;
  snprintf(cmd, sizeof(cmd), "bash '%s' '%s'", MKDANE, pki);
  if (system(cmd) != 0)
    return -1;
  snprintf(ini, sizeof(ini), "[queue.outbound.tls]\nca-file = %s/ca.pem\n",
           pki);
  if (smtpout_config_load_string(&cfg, ini, "t.ini", err, sizeof(err)) != 0) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  return gnutls_session_ticket_key_generate(&ticket_key) == 0 ? 0 : -1;
}

static int group_teardown(void **st)
{
  (void)st;
  char cmd[512];
  smtpout_config_unref(cfg);
  gnutls_free(ticket_key.data);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pki);
  return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_dane_ee_self_signed_is_delivered_and_reported),
    cmocka_unit_test(test_tlsa_mismatch_is_deferred),
    cmocka_unit_test(test_dane_ta_right_and_wrong_name),
    cmocka_unit_test(test_pkix_and_dane_verdicts_are_kept_apart),
    cmocka_unit_test(test_tickets_are_kept_per_mode_and_tlsa_set),
    cmocka_unit_test(test_pkix_hop_verifies_the_mx_name),
    cmocka_unit_test(test_requiretls_sent_or_not_offered),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
