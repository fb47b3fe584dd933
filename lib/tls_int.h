/*
 * tls_int.h — the seam between the session and TLS.
 *
 * A session drives TLS through a struct tls_backend: a tls_conn runs over
 * memory, fed the ciphertext the host received (feed_input) and appending
 * the ciphertext it produces to a byte buffer the session owns (the wire
 * output).  Nothing here blocks, touches a socket or reads a clock but the
 * wall clock of certificate validity.  The library's backend is GnuTLS
 * (tls_gnutls.c; no GnuTLS type leaves that file); the unit tests run the
 * whole policy table against a scripted one instead (tests/fake_tls.c), as
 * ngtcp2's connection tests run against its null crypto.
 *
 * The rest of this header is the GnuTLS side's own: trust anchors, the
 * per-configuration cache (session tickets, verified chains, the parsed
 * priority string), and the tls_conn_* functions its backend is made of,
 * which its tests call directly.
 */
#ifndef SMTPOUT_TLS_INT_H
#define SMTPOUT_TLS_INT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct buf;
struct dane_result;
struct dns_tlsa;
struct smtpout_certificate;
struct tls_creds;
struct tls_cache;
struct tls_conn;
struct tls_keypair;

/* Certificate trust: the system store (ca_file == NULL) or a PEM file,
 * read now (a path that is not a regular file of a sane size is refused
 * unread).  Returns 0, SMTPOUT_ERR_TLS_SETUP (unreadable, or a ca-file
 * without a certificate) or SMTPOUT_ERR_NOMEM.  Reference-counted. */
int tls_creds_new(struct tls_creds **out, const char *ca_file);
void tls_creds_ref(struct tls_creds *creds);
void tls_creds_unref(struct tls_creds *creds);

/*
 * A client certificate (its chain, PEM, the client's own first) and its
 * private key (PEM, unencrypted), presented when a server asks for one
 * (RFC 8446 4.3.2).  Read now: both must be regular files of a sane size,
 * and the key must belong to the first certificate.  Returns 0,
 * SMTPOUT_ERR_TLS_SETUP (unreadable, not PEM, no certificate, a key that
 * does not match) or SMTPOUT_ERR_NOMEM.  Reference-counted; shared by
 * any number of connections on any threads.
 */
int tls_keypair_new(struct tls_keypair **out, const char *cert_file,
                    const char *key_file);
void tls_keypair_ref(struct tls_keypair *kp);
void tls_keypair_unref(struct tls_keypair *kp);

/* A per-configuration cache holding the trust anchors of its ca-file (or
 * of the system store), loaded once, under a mutex (configurations are
 * shared across threads). */
int tls_cache_new(struct tls_cache **out);
void tls_cache_free(struct tls_cache *cache);
/* Returns a new reference to the configuration's trust anchors in *out,
 * loading them on the first call (tls_creds_new()'s errors); called when
 * a session starts, never while it reads the network. */
int tls_cache_get(struct tls_cache *cache, const char *ca_file,
                  struct tls_creds **out);
/* Stores trust anchors already loaded for the configuration's ca-file. */
void tls_cache_seed(struct tls_cache *cache, struct tls_creds *creds);

/*
 * Verified chains.  A verification that succeeded without OCSP (no
 * stapled response, no certificate carrying the TLS feature extension) is
 * a function of the chain the server presented, what it was verified
 * against, and the time, and nothing else.  What it was verified against
 * is the authentication mode with its reference: PKIX, the name and the
 * trust anchors (the cache's own); DANE, the TLSA set and its reference
 * identifiers (their digest, struct tls_dane).  The cache remembers all
 * but the anchors as a SHA-256 key (tls_conn_verify and
 * tls_conn_dane_verify build it, each starting with its mode, so that a
 * chain verified one way never answers for the other) with the time of
 * the verification, the earliest expiry on what was verified, and for
 * DANE the record that matched, so the next connection presenting the
 * same chain against the same reference skips the signature checks in
 * between.  A PKIX verdict involving OCSP is always verified in full, and
 * never remembered: it also depends on the staple (DANE consults no
 * OCSP).  Failures are never kept.  Bounded: a direct-mapped table of
 * TLS_VERIFIED_SLOTS.
 *
 * tls_cache_verified_get() returns 1, the expiry in *not_after and, when
 * `detail` is not NULL, what was stored with the entry (TLS_DETAIL_LEN
 * bytes, NUL-terminated: the TLSA record that matched, "" for PKIX) when
 * `key` was verified at or before `now` and expires after it;
 * tls_cache_verified_put() records it (`detail` NULL: "").  Exposed for
 * the unit tests.
 */
#define TLS_CHAIN_KEY_LEN 32
#define TLS_VERIFIED_SLOTS 1024
#define TLS_DETAIL_LEN 12
int tls_cache_verified_get(struct tls_cache *cache,
                           const uint8_t key[TLS_CHAIN_KEY_LEN],
                           int64_t now, int64_t *not_after, char *detail);
void tls_cache_verified_put(struct tls_cache *cache,
                            const uint8_t key[TLS_CHAIN_KEY_LEN],
                            int64_t now, int64_t not_after,
                            const char *detail);

/* Replaces the wall clock of every certificate validity check (GnuTLS's
 * and the caches'); NULL restores time().  Process-wide, for the unit
 * tests: gnutls_global_set_time_function() is global too. */
void tls_set_time_function(time_t (*fn)(time_t *));

/*
 * Checks a GnuTLS priority string without opening a connection, so that a
 * bad `priority` fails when the configuration loads, not at the first
 * STARTTLS.  Returns 0, or SMTPOUT_ERR_TLS_SETUP with the offset of the
 * offending part in *err_offset.
 */
int tls_priority_check(const char *priority, size_t *err_offset);

/* RFC 8460 result types (section 4.4); tlsrpt_type_name() (tlsrpt_int.h)
 * names them. */
enum tlsrpt_result {
  TLSRPT_NONE = 0,
  TLSRPT_STARTTLS_NOT_SUPPORTED,
  TLSRPT_CERTIFICATE_HOST_MISMATCH,
  TLSRPT_CERTIFICATE_EXPIRED,
  TLSRPT_CERTIFICATE_NOT_TRUSTED,
  TLSRPT_VALIDATION_FAILURE,
  TLSRPT_TLSA_INVALID,
  TLSRPT_DNSSEC_INVALID,
  TLSRPT_DANE_REQUIRED,
  TLSRPT_STS_POLICY_FETCH_ERROR,
  TLSRPT_STS_POLICY_INVALID,
  TLSRPT_STS_WEBPKI_INVALID
};
#define TLSRPT_RESULT_COUNT (TLSRPT_STS_WEBPKI_INVALID + 1)

/*
 * What DANE authenticates a server against (RFC 7672 3): the TLSA records
 * of its hop, the reference identifiers for DANE-TA names, and a digest
 * of both (dane_set_digest(), dane_int.h), under which the cache keeps
 * verified chains and session tickets: a verdict or a ticket is only
 * ever reused for the same set.  The session owns it; it outlives the
 * connection.
 */
struct tls_dane {
  const struct dns_tlsa *records;
  size_t nrecords;
  const char *const *names;
  size_t nnames;
  uint8_t digest[TLS_CHAIN_KEY_LEN];
};

/* What a connection is made with. */
struct tls_conn_params {
  struct tls_creds *creds; /* the trust anchors */
  struct tls_cache *cache; /* the configuration's, or NULL */
  const char *priority;    /* a GnuTLS priority string */
  /* The SNI and the name tickets are kept under (A-label, no trailing
   * dot), or NULL for an IP literal; must outlive the connection. */
  const char *sni;
  int resume; /* offer and keep session tickets (needs cache and sni) */
  /* How the server will be authenticated: NULL by PKIX
   * (tls_conn_verify), else by DANE against this set
   * (tls_conn_dane_verify).  Tickets are kept and offered per mode, and
   * under DANE per set; must outlive the connection. */
  const struct tls_dane *dane;
  /* The client certificate to present when the server asks, or NULL. */
  struct tls_keypair *client;
};

/* Channel binding types (sasl_int.h has the same values). */
enum { TLS_CB_NONE = 0, TLS_CB_EXPORTER = 1, TLS_CB_UNIQUE = 2 };
#define TLS_CB_MAX 64

/* Results of the handshake and of reads: a read returns the number of
 * bytes it read, or one of these, so none but TLS_OK is positive (a
 * record may carry a single byte).  TLS_NOMEM: no memory to keep input
 * not read yet (a local failure, not the peer's). */
enum { TLS_OK = 0, TLS_FAILED = -1, TLS_NOMEM = -2, TLS_AGAIN = -3,
       TLS_EOF = -4 };

/* What a session needs of TLS: one connection's life, over memory. */
struct tls_backend {
  /* A client connection whose records go to `wire_out`.  Returns 0,
   * SMTPOUT_ERR_TLS_SETUP or SMTPOUT_ERR_NOMEM. */
  int (*conn_new)(struct tls_conn **out, const struct tls_conn_params *p,
                  struct buf *wire_out);
  void (*conn_free)(struct tls_conn *conn);
  /* Ciphertext the peer sent (0 or SMTPOUT_ERR_NOMEM); its end.  The
   * bytes may be lent, not copied: the caller calls handshake() or read()
   * before `data` goes, and that call keeps what it leaves unread. */
  int (*feed_input)(struct tls_conn *conn, const uint8_t *data, size_t len);
  void (*feed_eof)(struct tls_conn *conn);
  /* TLS_OK when done, TLS_AGAIN for more input, TLS_FAILED, TLS_NOMEM. */
  int (*handshake)(struct tls_conn *conn);
  /* After the handshake: 1 when the certificate verifies for `name`
   * (NULL: none can); else 0, an enum tlsrpt_result in *tlsrpt and the
   * reason in `reason`.  Never ends the connection: the policy decides. */
  int (*verify)(struct tls_conn *conn, const char *name, int *tlsrpt,
                char *reason, size_t reasonlen);
  /* After the handshake, on a connection made with params->dane: 1 when
   * a TLSA record authenticates the server's chain; else 0.  `res`
   * (dane_int.h) says which record matched, or why none did.  Never ends
   * the connection. */
  int (*dane_verify)(struct tls_conn *conn, const struct tls_dane *dane,
                     struct dane_result *res);
  int (*resumed)(struct tls_conn *conn);
  /* Plaintext: > 0 bytes, TLS_AGAIN, TLS_EOF, TLS_FAILED, TLS_NOMEM. */
  long (*read)(struct tls_conn *conn, uint8_t *buf, size_t len);
  /* TLS_OK or TLS_FAILED. */
  int (*write)(struct tls_conn *conn, const uint8_t *data, size_t len);
  void (*close_notify)(struct tls_conn *conn);
  const char *(*version)(struct tls_conn *conn);
  const char *(*cipher)(struct tls_conn *conn);
  /* The last failure in words; never NULL. */
  const char *(*error_text)(struct tls_conn *conn);
  /* The peer's certificates, as tls_conn_peer_count() and
   * tls_conn_peer_certificate() below describe them. */
  size_t (*peer_count)(struct tls_conn *conn);
  int (*peer_certificate)(struct tls_conn *conn, size_t index,
                          struct smtpout_certificate **out);
  /* After the handshake: the channel binding data of the connection
   * (RFC 9266 tls-exporter under TLS 1.3; RFC 5929 tls-unique under TLS
   * 1.2 with the extended master secret, RFC 7627, without which it is
   * not unique), at most TLS_CB_MAX bytes into `out`.  Returns its type
   * (TLS_CB_EXPORTER, TLS_CB_UNIQUE) and its length in *len, or
   * TLS_CB_NONE when the connection has none. */
  int (*channel_binding)(struct tls_conn *conn, uint8_t *out, size_t *len);
  /* 1 when the server asked for a client certificate and one was sent. */
  int (*client_cert_sent)(struct tls_conn *conn);
};

/* The library's backend: the tls_conn_* functions below. */
extern const struct tls_backend tls_gnutls_backend;

/*
 * Creates a client TLS connection on GnuTLS.  The priority string is
 * parsed once per cache and shared.  With `resume` (and a cache and an SNI
 * name), the connection offers a session ticket the cache holds for
 * `sni` under the same authentication (PKIX, or DANE with the same TLSA
 * set), and once the server is authenticated that way (tls_conn_verify
 * against `sni`, or tls_conn_dane_verify) it leaves the server's new
 * ticket there.
 */
int tls_conn_new(struct tls_conn **out, const struct tls_conn_params *p,
                 struct buf *wire_out);
void tls_conn_free(struct tls_conn *conn);

/* Queues ciphertext received from the peer: lent, unless earlier input
 * waits (see the backend's feed_input); the next tls_conn_handshake() or
 * tls_conn_read() reads it and keeps what it leaves unread. */
int tls_conn_feed_input(struct tls_conn *conn, const uint8_t *data,
                        size_t len);
/* The peer closed the TCP connection: reads past the queued input see
 * end-of-file. */
void tls_conn_feed_eof(struct tls_conn *conn);

/* Advances the handshake: TLS_OK when done, TLS_AGAIN when it needs more
 * input, TLS_FAILED (see tls_conn_error_text()), TLS_NOMEM. */
int tls_conn_handshake(struct tls_conn *conn);

/*
 * Verifies the peer certificate against the trust anchors and `name`
 * (NULL: no name can match, e.g. an IP literal), a stapled OCSP response
 * included (a must-staple certificate without one fails).  Returns 1 when
 * valid; 0 with *tlsrpt (enum tlsrpt_result) and a reason in `reason`
 * (`reasonlen` bytes, no trailing space) otherwise.  Never aborts the
 * connection.  A resumed session counts as verified while the path its
 * ticket's session verified is unexpired (tickets are kept only from
 * verifications without OCSP).
 */
int tls_conn_verify(struct tls_conn *conn, const char *name, int *tlsrpt,
                    char *reason, size_t reasonlen);

/*
 * Authenticates the peer by DANE (RFC 7672 3) against `dane`, the set the
 * connection was made with (params->dane): its chain as
 * gnutls_certificate_get_peers() gives it, matched by lib/dane.c at the
 * wall clock's time.  Returns 1 with the matching record in `res`, or 0
 * with the reason (res->status and res->reason; out of memory is a
 * failure to authenticate).  A chain verified against the same set
 * earlier (the cache) verifies again without the signature checks; a
 * session resumed from a ticket kept under the same set counts as the
 * session that got it did, until the earliest expiry of the certificates
 * it presented (never, for DANE-EE, which ignores dates).  PKIX verdicts
 * and tickets never count here, nor these for PKIX.
 */
int tls_conn_dane_verify(struct tls_conn *conn, const struct tls_dane *dane,
                         struct dane_result *res);

/* 1 when the handshake resumed an earlier session (a ticket). */
int tls_conn_resumed(struct tls_conn *conn);

/* Decrypts available input into `buf`: >0 bytes, TLS_AGAIN (0 bytes, need
 * input), TLS_EOF (close_notify), TLS_FAILED, TLS_NOMEM. */
long tls_conn_read(struct tls_conn *conn, uint8_t *buf, size_t len);

/* Encrypts `len` bytes into the wire buffer.  Returns TLS_OK or
 * TLS_FAILED. */
int tls_conn_write(struct tls_conn *conn, const uint8_t *data, size_t len);

/* Queues a close_notify alert into the wire buffer. */
void tls_conn_close_notify(struct tls_conn *conn);

/* The number of certificates the peer presented: 0 before the handshake is
 * complete; after a resumed one, those of the session the ticket came from
 * (GnuTLS keeps them with the ticket; none is sent on the wire). */
size_t tls_conn_peer_count(struct tls_conn *conn);

/* Describes certificate `index` of the peer's list (0: its own) as a new
 * smtpout_certificate (<smtpout/session.h>).  Returns 0,
 * SMTPOUT_ERR_INVALID_ARGUMENT (no such certificate), or SMTPOUT_ERR_NOMEM. */
int tls_conn_peer_certificate(struct tls_conn *conn, size_t index,
                              struct smtpout_certificate **out);

/* See struct tls_backend. */
int tls_conn_channel_binding(struct tls_conn *conn, uint8_t *out,
                             size_t *len);
int tls_conn_client_cert_sent(struct tls_conn *conn);

/* "TLS1.3", the cipher suite name, and the last error's text. */
const char *tls_conn_version(struct tls_conn *conn);
const char *tls_conn_cipher(struct tls_conn *conn);
const char *tls_conn_error_text(struct tls_conn *conn);

#endif
