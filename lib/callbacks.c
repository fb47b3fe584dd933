/*
 * callbacks.c — the callbacks object and its setters (callbacks_int.h).
 */
#include <stdlib.h>

#include "callbacks_int.h"

int smtpout_callbacks_new(smtpout_callbacks **pcallbacks)
{
  if (pcallbacks == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  *pcallbacks = calloc(1, sizeof(**pcallbacks));
  return *pcallbacks ? 0 : SMTPOUT_ERR_NOMEM;
}

void smtpout_callbacks_free(smtpout_callbacks *callbacks) { free(callbacks); }

/* The setters accept a NULL object and do nothing, as they return
 * nothing to say so. */
void smtpout_callbacks_set_read_body(smtpout_callbacks *cbs,
                                     smtpout_read_body_callback cb)
{
  if (cbs)
    cbs->read_body = cb;
}

void smtpout_callbacks_set_on_result(smtpout_callbacks *cbs,
                                     smtpout_on_result_callback cb)
{
  if (cbs)
    cbs->on_result = cb;
}

void smtpout_callbacks_set_on_message_done(
    smtpout_callbacks *cbs, smtpout_on_message_done_callback cb)
{
  if (cbs)
    cbs->on_message_done = cb;
}

void smtpout_callbacks_set_on_tls(smtpout_callbacks *cbs,
                                  smtpout_on_tls_callback cb)
{
  if (cbs)
    cbs->on_tls = cb;
}

void smtpout_callbacks_set_on_trace(smtpout_callbacks *cbs,
                                    smtpout_on_trace_callback cb)
{
  if (cbs)
    cbs->on_trace = cb;
}
