/*
 * session_int.h — what the library's tests reach inside a session.
 *
 * The session's struct is private to session.c; its results and TLS
 * outcome are records of their own (recipient_int.h, tls_info_int.h), and
 * the blocking driver drives it through the public API alone.
 */
#ifndef SMTPOUT_SESSION_INT_H
#define SMTPOUT_SESSION_INT_H

#include "smtpout/session.h"

struct tls_backend;

/* Runs the session's TLS on `backend` instead of GnuTLS (the unit tests'
 * scripted backend, tests/fake_tls.c).  Before smtpout_session_start(). */
void session_set_tls_backend(smtpout_session *session,
                             const struct tls_backend *backend);

/* The bytes of the buffers the session holds beside its struct: output,
 * ciphertext, the command queue, the reply parser's, the body chunk.  0
 * for an idle session (release_idle() in session.c). */
size_t session_held_bytes(const smtpout_session *session);

#endif
