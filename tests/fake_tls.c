/*
 * fake_tls.c — see fake_tls.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf_int.h"
#include "dane_int.h"
#include "fake_tls.h"
#include "smtpout/common.h"

struct fake_tls_script fake_tls;

/* One connection: what the peer sent and the session has not read yet. */
struct fake_conn {
  int client_cert;
  struct buf input;
  struct buf *wire;
  int eof;
  int hello_sent;
  int done; /* the handshake is complete */
  char error[128];
};

void fake_tls_reset(void) { memset(&fake_tls, 0, sizeof(fake_tls)); }

/* The backend's functions take the session's opaque struct tls_conn: it
 * is always one of ours. */
static struct fake_conn *fc(struct tls_conn *c) { return (struct fake_conn *)c; }

static int conn_new(struct tls_conn **out, const struct tls_conn_params *p,
                    struct buf *wire_out)
{
  fake_tls.conns++;
  snprintf(fake_tls.sni, sizeof(fake_tls.sni), "%s", p->sni ? p->sni : "");
  fake_tls.resume = p->resume;
  fake_tls.dane_conn = p->dane != NULL;
  fake_tls.dane_records = p->dane ? p->dane->nrecords : 0;
  fake_tls.dane_names = p->dane ? p->dane->nnames : 0;
  fake_tls.client_cert = p->client != NULL;
  if (fake_tls.conn_new_error != 0)
    return fake_tls.conn_new_error;
  struct fake_conn *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return SMTPOUT_ERR_NOMEM;
  c->wire = wire_out;
  c->client_cert = p->client != NULL;
  *out = (struct tls_conn *)c;
  return 0;
}

static void conn_free(struct tls_conn *conn)
{
  if (conn == NULL)
    return;
  buf_free(&fc(conn)->input);
  free(conn);
}

static int feed_input(struct tls_conn *conn, const uint8_t *data, size_t len)
{
  return buf_append(&fc(conn)->input, data, len);
}

static void feed_eof(struct tls_conn *conn) { fc(conn)->eof = 1; }

static int handshake(struct tls_conn *conn)
{
  struct fake_conn *c = fc(conn);
  static const char hello[] = FAKE_SERVER_HELLO;
  size_t n = buf_len(&c->input), want = sizeof(hello) - 1;
  /* The first call sends the ClientHello, as GnuTLS's does. */
  if (!c->hello_sent) {
    if (buf_append(c->wire, FAKE_CLIENT_HELLO, sizeof(FAKE_CLIENT_HELLO) - 1))
      return TLS_FAILED;
    c->hello_sent = 1;
  }
  if (n > 0 && memcmp(buf_head(&c->input), hello, n < want ? n : want)) {
    snprintf(c->error, sizeof(c->error), "TLS handshake failed: garbage");
    return TLS_FAILED;
  }
  if (n < want) {
    if (!c->eof)
      return TLS_AGAIN;
    snprintf(c->error, sizeof(c->error),
             "TLS handshake failed: connection closed by the server");
    return TLS_FAILED;
  }
  buf_consume(&c->input, want);
  if (fake_tls.handshake == FAKE_HANDSHAKE_ALERT) {
    snprintf(c->error, sizeof(c->error),
             "TLS handshake failed: a fatal alert (Handshake failed)");
    return TLS_FAILED;
  }
  c->done = 1;
  return TLS_OK;
}

static int verify(struct tls_conn *conn, const char *name, int *tlsrpt,
                  char *reason, size_t reasonlen)
{
  (void)conn;
  fake_tls.verify_calls++;
  snprintf(fake_tls.verified_name, sizeof(fake_tls.verified_name), "%s",
           name ? name : "");
  int cert = name == NULL ? FAKE_CERT_WRONG_NAME : fake_tls.cert;
  switch (cert) {
  case FAKE_CERT_VALID:
    *tlsrpt = TLSRPT_NONE;
    reason[0] = '\0';
    return 1;
  case FAKE_CERT_EXPIRED:
    *tlsrpt = TLSRPT_CERTIFICATE_EXPIRED;
    snprintf(reason, reasonlen, "The certificate has expired.");
    return 0;
  case FAKE_CERT_UNTRUSTED:
    *tlsrpt = TLSRPT_CERTIFICATE_NOT_TRUSTED;
    snprintf(reason, reasonlen, "The certificate issuer is unknown.");
    return 0;
  default:
    *tlsrpt = TLSRPT_CERTIFICATE_HOST_MISMATCH;
    snprintf(reason, reasonlen,
             "The name in the certificate does not match the expected.");
    return 0;
  }
}

static int verify_dane(struct tls_conn *conn, const struct tls_dane *dane,
                       struct dane_result *res)
{
  static const struct {
    int status;
    const char *matched, *reason;
  } verdicts[] = {
    [FAKE_DANE_EE] = {DANE_MATCHED, "3 1 1", "TLSA 3 1 1 matched"},
    [FAKE_DANE_TA] = {DANE_MATCHED, "2 0 1", "TLSA 2 0 1 matched"},
    [FAKE_DANE_NO_MATCH] = {DANE_NO_MATCH, "",
                            "no TLSA record matches the chain"},
    [FAKE_DANE_NAME_MISMATCH] = {DANE_NAME_MISMATCH, "",
                                 "the certificate names other.example"},
    [FAKE_DANE_EXPIRED] = {DANE_EXPIRED, "", "a certificate has expired"},
  };
  (void)conn;
  (void)dane;
  fake_tls.dane_calls++;
  memset(res, 0, sizeof(*res));
  res->status = verdicts[fake_tls.dane].status;
  res->record = res->status == DANE_MATCHED ? 0 : -1;
  res->usage = fake_tls.dane == FAKE_DANE_TA ? 2 : 3;
  res->usable = 1;
  snprintf(res->matched, sizeof(res->matched), "%s",
           verdicts[fake_tls.dane].matched);
  snprintf(res->reason, sizeof(res->reason), "%s",
           verdicts[fake_tls.dane].reason);
  return res->status == DANE_MATCHED;
}

static int resumed(struct tls_conn *conn)
{
  (void)conn;
  return 0;
}

static long read_plain(struct tls_conn *conn, uint8_t *out, size_t len)
{
  struct fake_conn *c = fc(conn);
  size_t n = buf_len(&c->input);
  if (n == 0) {
    if (!c->eof)
      return TLS_AGAIN;
    snprintf(c->error, sizeof(c->error),
             "connection closed without TLS close_notify");
    return TLS_EOF;
  }
  if (n > len)
    n = len;
  memcpy(out, buf_head(&c->input), n);
  buf_consume(&c->input, n);
  return (long)n;
}

static int write_plain(struct tls_conn *conn, const uint8_t *data, size_t len)
{
  return buf_append(fc(conn)->wire, data, len) == 0 ? TLS_OK : TLS_FAILED;
}

static void close_notify(struct tls_conn *conn)
{
  buf_append(fc(conn)->wire, FAKE_CLOSE_NOTIFY,
             sizeof(FAKE_CLOSE_NOTIFY) - 1);
}

static const char *version(struct tls_conn *conn)
{
  (void)conn;
  return fake_tls.version ? fake_tls.version : "TLS1.3";
}

static const char *cipher(struct tls_conn *conn)
{
  (void)conn;
  return "FAKE_NULL_CIPHER";
}

static const char *error_text(struct tls_conn *conn)
{
  return fc(conn)->error[0] ? fc(conn)->error : "TLS failure";
}

/* The scripted peer presents no certificate anyone could describe. */
static size_t peer_count(struct tls_conn *conn)
{
  (void)conn;
  return 0;
}

static int peer_certificate(struct tls_conn *conn, size_t index,
                            struct smtpout_certificate **out)
{
  (void)conn;
  (void)index;
  (void)out;
  return SMTPOUT_ERR_INVALID_ARGUMENT;
}

static int channel_binding(struct tls_conn *conn, uint8_t *out, size_t *len)
{
  if (!fc(conn)->done || fake_tls.channel_binding == TLS_CB_NONE)
    return TLS_CB_NONE;
  *len = sizeof(FAKE_CHANNEL_BINDING) - 1;
  memcpy(out, FAKE_CHANNEL_BINDING, *len);
  return fake_tls.channel_binding;
}

static int client_cert_sent(struct tls_conn *conn)
{
  return fc(conn)->done && fc(conn)->client_cert && fake_tls.ask_client_cert;
}

const struct tls_backend fake_tls_backend = {
  .conn_new = conn_new,
  .conn_free = conn_free,
  .feed_input = feed_input,
  .feed_eof = feed_eof,
  .handshake = handshake,
  .verify = verify,
  .dane_verify = verify_dane,
  .resumed = resumed,
  .read = read_plain,
  .write = write_plain,
  .close_notify = close_notify,
  .version = version,
  .cipher = cipher,
  .error_text = error_text,
  .peer_count = peer_count,
  .peer_certificate = peer_certificate,
  .channel_binding = channel_binding,
  .client_cert_sent = client_cert_sent,
};
