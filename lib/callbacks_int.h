/*
 * callbacks_int.h — the callbacks object: what the host lends a session.
 *
 * A session copies it when it is made (smtpout_session_new()), so the host
 * may free or reuse the object at once; nghttp2 keeps its callbacks the
 * same way (nghttp2_callbacks.c).
 */
#ifndef SMTPOUT_CALLBACKS_INT_H
#define SMTPOUT_CALLBACKS_INT_H

#include "smtpout/session.h"

struct smtpout_callbacks {
  smtpout_read_body_callback read_body;
  smtpout_on_result_callback on_result;
  smtpout_on_message_done_callback on_message_done;
  smtpout_on_tls_callback on_tls;
  smtpout_on_trace_callback on_trace;
};

#endif
