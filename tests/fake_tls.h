/*
 * fake_tls.h — a scripted TLS backend for the session's unit tests.
 *
 * In the manner of ngtcp2's null crypto: no cryptography at all.  The
 * ClientHello is the bytes FAKE_CLIENT_HELLO, the server's whole flight
 * FAKE_SERVER_HELLO; whether the handshake then succeeds, and what the
 * certificate check says, is what the test put in `fake_tls` before.
 * Records are the plaintext itself, so after the handshake a test talks
 * to the session as it did before it, and every row of the policy table
 * runs in microseconds.  The real backend (GnuTLS) has tests of its own.
 */
#ifndef SMTPOUT_TEST_FAKE_TLS_H
#define SMTPOUT_TEST_FAKE_TLS_H

#include <stddef.h>

#include "tls_int.h"

#define FAKE_CLIENT_HELLO "<client-hello>"
#define FAKE_SERVER_HELLO "<server-hello>"
#define FAKE_CLOSE_NOTIFY "<close-notify>"

enum fake_handshake {
  FAKE_HANDSHAKE_OK,    /* FAKE_SERVER_HELLO completes it */
  FAKE_HANDSHAKE_ALERT  /* FAKE_SERVER_HELLO is answered by a fatal alert */
};

enum fake_cert {
  FAKE_CERT_VALID,
  FAKE_CERT_EXPIRED,
  FAKE_CERT_UNTRUSTED,
  FAKE_CERT_WRONG_NAME
};

/* What the TLSA records of a DANE hop say of the server's chain. */
enum fake_dane {
  FAKE_DANE_EE,            /* the DANE-EE record "3 1 1" matches */
  FAKE_DANE_TA,            /* the DANE-TA record "2 0 1" matches */
  FAKE_DANE_NO_MATCH,      /* no record matches */
  FAKE_DANE_NAME_MISMATCH, /* a DANE-TA path naming another host */
  FAKE_DANE_EXPIRED        /* a DANE-TA path expired below its anchor */
};

/* What the next connections do, and what the session asked of them. */
struct fake_tls_script {
  int conn_new_error; /* what conn_new returns: 0, SMTPOUT_ERR_TLS_SETUP... */
  int handshake;      /* enum fake_handshake */
  int cert;           /* enum fake_cert: the PKIX verdict */
  int dane;           /* enum fake_dane: the DANE verdict */
  const char *version; /* the protocol negotiated; NULL: "TLS1.3" */
  /* Seen: connections made, the last SNI ("" for none), whether it was
   * to resume, whether it was made for DANE (and with how many records
   * and names), the name the certificate was checked against, and how
   * often each verdict was asked for. */
  int conns;
  char sni[256];
  int resume;
  int dane_conn;
  size_t dane_records, dane_names;
  char verified_name[256];
  int verify_calls, dane_calls;
  /* Whether the last connection was given a client certificate, and
   * whether the scripted server asks for one (then it is "sent"). */
  int client_cert;
  int ask_client_cert;
  /* The channel binding the connections offer: TLS_CB_NONE (the
   * default) or TLS_CB_EXPORTER with FAKE_CHANNEL_BINDING. */
  int channel_binding;
};

#define FAKE_CHANNEL_BINDING "0123456789abcdef0123456789abcdef"

extern struct fake_tls_script fake_tls;
extern const struct tls_backend fake_tls_backend;

/* Back to a valid certificate and a handshake that succeeds. */
void fake_tls_reset(void);

#endif
