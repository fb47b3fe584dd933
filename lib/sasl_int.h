/*
 * sasl_int.h — the client side of SMTP AUTH (RFC 4954), sans I/O.
 *
 * A sasl_client runs one authentication exchange.  It writes the command
 * lines (the "AUTH MECH initial-response" line, then one response line per
 * 334 challenge) and reads only what the caller hands it: the text of each
 * 334 reply, still in base64.  It never touches a socket or a clock, and
 * it does not decide whether AUTH may be sent at all (never without TLS,
 * by default only over a verified certificate: docs/relay.md); that is
 * the session's job.
 *
 * Built in: PLAIN (RFC 4616, empty authorisation identity), LOGIN (the
 * undocumented but universal "Username:"/"Password:" exchange) and XOAUTH2
 * (Google's and Microsoft's bearer-token format).  SCRAM-SHA-256 and
 * SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677; channel binding RFC 5929 /
 * RFC 9266) run through GNU SASL when smtpout is built with it
 * (-Dgsasl=auto); sasl_mech_built() says which are available.
 *
 * What a hostile server can and cannot do:
 *   - a challenge longer than SASL_CHALLENGE_MAX octets, or one that is
 *     not canonical base64, ends the exchange with an error;
 *   - a SCRAM iteration count outside the client's bounds is refused
 *     before any key derivation runs (GNU SASL would run PBKDF2 with
 *     whatever count the server names);
 *   - a SCRAM server that cannot prove it knows the password (a wrong or
 *     missing server signature) is an error, and sasl_client_success()
 *     refuses a 235 that arrives before the proof.
 *
 * Secrets.  The client keeps its own copy of the secret and wipes it, and
 * every buffer that held it or its base64, with explicit_bzero() when it
 * is done with it.  Error texts never contain the secret (server text
 * quoted in an error is dropped if it does).  Lines the caller copies out
 * of the client are the caller's to wipe; sasl_redact() gives the form of
 * a line that may be traced.
 *
 * Not thread-safe per object; distinct objects are independent (GNU SASL
 * is used through a context of each client's own, no global state).
 */
#ifndef SMTPOUT_SASL_INT_H
#define SMTPOUT_SASL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "errors_int.h"

enum sasl_mech {
  SASL_MECH_NONE = 0,
  SASL_MECH_PLAIN = 1,
  SASL_MECH_LOGIN = 2,
  SASL_MECH_XOAUTH2 = 3,
  SASL_MECH_SCRAM_SHA_256 = 4,
  SASL_MECH_SCRAM_SHA_256_PLUS = 5
};
#define SASL_MECH_COUNT 6

/* Channel binding types for SCRAM-SHA-256-PLUS. */
enum sasl_cb_type {
  SASL_CB_NONE = 0,
  /* RFC 9266: 32 bytes exported with the label "EXPORTER-Channel-Binding"
   * and no context (GnuTLS: gnutls_session_channel_binding(...,
   * GNUTLS_CB_TLS_EXPORTER, ...)).  The one to use with TLS 1.3. */
  SASL_CB_TLS_EXPORTER = 1,
  /* RFC 5929: the first Finished message of TLS 1.2 and earlier. */
  SASL_CB_TLS_UNIQUE = 2
};

/* The longest challenge accepted, decoded.  A SCRAM server-first message
 * is about 100 octets and an XOAUTH2 error object about 200. */
#define SASL_CHALLENGE_MAX 1024
/* RFC 4954 section 4: the AUTH command line keeps SMTP's 512-octet limit
 * (RFC 5321 section 4.5.3.1.4, CRLF included); an initial response that
 * would break it is sent instead in answer to the server's empty 334.
 * Responses may be longer: the RFC calls 12288 octets sufficient, and
 * Postfix's smtpd_sasl_response_limit is that; nothing longer is ever
 * written (CRLF included). */
#define SASL_AUTH_LINE_MAX 512
#define SASL_LINE_MAX 12288
/* Identity and secret limits (an OAuth 2 access token runs to a few
 * kilobytes; 8 KiB keeps an XOAUTH2 response inside SASL_LINE_MAX). */
#define SASL_USERNAME_MAX 255
#define SASL_SECRET_MAX 8192
#define SASL_CB_MAX 64
/* SCRAM iteration counts accepted by default.  RFC 7677 section 4: at
 * least 4096; below that a server (or whoever holds an unverified
 * certificate) gets a proof that is cheap to attack offline.  Above the
 * cap, the key derivation would let a server make the client burn CPU:
 * 100000 rounds of HMAC-SHA-256 take some tens of milliseconds. */
#define SASL_SCRAM_ITER_MIN 4096
#define SASL_SCRAM_ITER_MAX 100000

/* The registered name ("SCRAM-SHA-256"), or NULL for an unknown value. */
const char *sasl_mech_name(enum sasl_mech mech);

/* The mechanism named by `len` bytes of `name` (case-insensitive), or
 * SASL_MECH_NONE. */
enum sasl_mech sasl_mech_lookup(const char *name, size_t len);

/* 1 when this build can run `mech` (SCRAM needs GNU SASL), else 0. */
int sasl_mech_built(enum sasl_mech mech);

/* 1 when the AUTH parameters of an EHLO reply (the text after "AUTH" or
 * the old "AUTH=", e.g. "PLAIN LOGIN SCRAM-SHA-256") name `mech`. */
int sasl_mech_offered(const char *offered, size_t len, enum sasl_mech mech);

/*
 * Parses a configured mechanism list ("SCRAM-SHA-256 PLAIN"; white space
 * or commas between names, any case) into `out` (`cap` entries), in the
 * order given: the order is the preference, strongest first.  Returns the
 * number of entries, or SMTPOUT_ERR_CONFIG with a sentence in `err`
 * (`errlen` bytes) naming the offending word: an unknown mechanism, one
 * listed twice, one this build cannot run, an empty list.
 */
int sasl_mech_list_parse(const char *text, enum sasl_mech *out, size_t cap,
                         char *err, size_t errlen);

/*
 * What smtpout_session_set_auth() and smtpout_delivery_set_auth() accept,
 * checked in one place so that the driver refuses at once what a session
 * would refuse after connecting: a user name of 1..SASL_USERNAME_MAX
 * bytes, a secret of 1..SASL_SECRET_MAX, and a mechanism list that
 * sasl_mech_list_parse() takes (NULL or "" for the default list).
 * Returns 0 with the list in `prefs` (`*nprefs` entries, 0 for the
 * default; `prefs` has SASL_MECH_COUNT entries) and the secret's length
 * in `*pslen`, or -1.
 */
int sasl_credentials_check(const char *mechanisms, const char *username,
                           const char *secret, enum sasl_mech *prefs,
                           size_t *nprefs, size_t *pslen);

/* The list used when none is configured, strongest first:
 * SCRAM-SHA-256-PLUS, SCRAM-SHA-256 (when built), PLAIN, LOGIN.  XOAUTH2
 * takes a token, not a password, so it is only ever used when listed. */
size_t sasl_mech_default_list(enum sasl_mech *out, size_t cap);

/*
 * The mechanism to use: the first of `prefs` (`nprefs` entries; NULL for
 * the default list) that the server offers, this build can run and, for
 * a -PLUS mechanism, that has channel binding data (`have_cb`).  Never a
 * mechanism the server did not offer.  SASL_MECH_NONE when there is none.
 */
enum sasl_mech sasl_choose(const char *offered, size_t len,
                           const enum sasl_mech *prefs, size_t nprefs,
                           int have_cb);

/* What a client is made from.  Strings are NUL-terminated and copied. */
struct sasl_params {
  enum sasl_mech mech;
  const char *username;  /* authentication identity */
  const char *secret;    /* the password, or XOAUTH2's bearer token */
  /* Channel binding, for SCRAM-SHA-256-PLUS (required there, ignored by
   * the other mechanisms).  Plain SCRAM-SHA-256 always sends the "n"
   * flag: RFC 5802 section 6's "y" (the client could bind, the server
   * seems not to) would catch a man in the middle who removed -PLUS from
   * the EHLO reply, but GNU SASL 2.2 fails the exchange when given
   * binding data for plain SCRAM.  sasl_choose() prefers -PLUS whenever
   * it is offered and binding data exists, which leaves that attack
   * only to whoever can also pass the TLS certificate check. */
  enum sasl_cb_type cb_type;
  const uint8_t *cb_data;
  size_t cb_len;
  /* SCRAM iteration bounds; 0 means SASL_SCRAM_ITER_MIN / _MAX. */
  uint32_t scram_iter_min;
  uint32_t scram_iter_max;
};

struct sasl_client;

/*
 * Creates a client.  Returns 0, SMTPOUT_ERR_INVALID_ARGUMENT (no or an
 * unknown mechanism, an empty or over-long username or secret, a byte the
 * mechanism cannot carry, -PLUS without channel binding data, bounds
 * min > max), SMTPOUT_ERR_CONFIG (a SCRAM mechanism in a build without
 * GNU SASL) or SMTPOUT_ERR_NOMEM.  On failure *out is NULL; the reason
 * is the return value (no secret is involved in it).
 */
int sasl_client_new(struct sasl_client **out, const struct sasl_params *p);

/* Wipes every secret the client holds and frees it.  NULL is allowed. */
void sasl_client_free(struct sasl_client *c);

/*
 * The AUTH command line, CRLF included, in *line / *len (valid until the
 * next call on the client).  The initial response goes on the line unless
 * the line would exceed SASL_AUTH_LINE_MAX (RFC 4954 section 4); then it
 * is sent in answer to the server's empty 334.  Returns 0, or a negative
 * error (SMTPOUT_ERR_INVALID_STATE when called twice; SMTPOUT_ERR_NOMEM;
 * ERR_PROTOCOL when GNU SASL refuses the identity, e.g. one
 * SASLprep prohibits); sasl_client_error() then says why.
 */
int sasl_client_start(struct sasl_client *c, const uint8_t **line,
                      size_t *len);

/*
 * Answers a 334 challenge.  `text`/`len` is what followed "334 " on the
 * reply line (base64; empty for an empty challenge).  On success returns
 * 0 and the response line (CRLF included; an empty line where the
 * mechanism answers nothing) in *line / *len.  On error returns a
 * negative code and *line is the cancel line "*\r\n" (RFC 4954 section 4:
 * the server then fails the command with 501); sasl_client_error() says
 * why:
 *   ERR_PROTOCOL  the challenge is over SASL_CHALLENGE_MAX, not
 *                         base64, unexpected at this point, malformed, a
 *                         SCRAM iteration count out of bounds, a nonce
 *                         the client did not start, or a server signature
 *                         that does not verify;
 *   SMTPOUT_ERR_INVALID_STATE  before sasl_client_start(), or after the
 *                         exchange ended;
 *   SMTPOUT_ERR_NOMEM.
 */
int sasl_client_step(struct sasl_client *c, const char *text, size_t len,
                     const uint8_t **line, size_t *len_out);

/*
 * Called when the server answers 235.  Returns 0 when the exchange really
 * ended: the initial response (PLAIN, XOAUTH2) or the password (LOGIN)
 * was sent, or, for SCRAM, the server proved it knows the password.
 * Otherwise ERR_PROTOCOL: a server that says "authenticated"
 * without that proof must not be trusted (RFC 5802 section 5).
 */
int sasl_client_success(struct sasl_client *c);

/* The reason for the last error, an English sentence without the
 * secret; "" when there was none. */
const char *sasl_client_error(const struct sasl_client *c);

/* What the server said when it refused in-band (an XOAUTH2 error object,
 * a SCRAM "e=" attribute), printable ASCII, "" when it did not.  The
 * server's 535 follows; this only adds detail to it. */
const char *sasl_client_server_error(const struct sasl_client *c);

/* 1 when `len` bytes of `text` contain the client's secret, or the
 * base64 response it last sent (a server quoting either back in a reply
 * must not get it into a trace or an error through the caller). */
int sasl_client_secret_in(const struct sasl_client *c, const uint8_t *text,
                          size_t len);

/* How many server messages the client handed to GNU SASL (0 without
 * SCRAM).  The tests use it to show that a refused iteration count never
 * reached the key derivation. */
unsigned sasl_client_library_steps(const struct sasl_client *c);

/*
 * The traceable form of a line written during AUTH, into `out` (`cap`
 * bytes, NUL-terminated, truncated to fit): "AUTH PLAIN dGVzd..." becomes
 * "AUTH PLAIN ****"; "AUTH LOGIN" stays; a response line becomes "****",
 * except the empty line and the cancel "*", which stay.  A trailing CRLF
 * is dropped.  Returns the length written.
 */
size_t sasl_redact(const uint8_t *line, size_t len, char *out, size_t cap);

#endif
