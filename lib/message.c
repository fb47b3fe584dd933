/*
 * message.c — the scan of a message body (smtpout_message_scan): its size
 * on the wire and the SMTPOUT_MESSAGE_* flags it needs.
 *
 * The size is counted as canon.c would send the body; the flags come from
 * the 7-bit converter run dry (mime7bit.c), so the scan says a message
 * converts exactly when the session's conversion would succeed.
 */
#include <stdlib.h>

#include "canon_int.h"
#include "mime7bit_int.h"
#include "smtpout/message.h"
#include "smtpout/session.h"

struct smtpout_message_scan {
  struct canon canon;
  uint64_t size;
  int eightbit;
  int ended;
  struct mime7 mime;
};

static void scan_init(smtpout_message_scan *sc)
{
  canon_init(&sc->canon);
  sc->size = 0;
  sc->eightbit = 0;
  sc->ended = 0;
  mime7_init(&sc->mime, 1);
}

/* The next `len` bytes of a body whose scan has not ended. */
static void scan_feed(smtpout_message_scan *sc, const uint8_t *data,
                      size_t len)
{
  if (len == 0)
    return;
  sc->size += canon_count(&sc->canon, data, len);
  if (!sc->eightbit)
    sc->eightbit = mime7_has_8bit(data, len);
  /* Once the converter has failed, the flags are known: it fails only on
   * an 8-bit byte, and the first failure says where the header ended. */
  if (sc->mime.error == MIME7_OK)
    mime7_encode(&sc->mime, data, len, NULL);
}

int smtpout_message_scan_new(smtpout_message_scan **pscan)
{
  if (pscan == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  smtpout_message_scan *sc = malloc(sizeof(*sc));
  if (sc == NULL)
    return SMTPOUT_ERR_NOMEM;
  scan_init(sc);
  *pscan = sc;
  return 0;
}

void smtpout_message_scan_free(smtpout_message_scan *scan) { free(scan); }

int smtpout_message_scan_update(smtpout_message_scan *sc, const uint8_t *data,
                                size_t len)
{
  if (sc == NULL || (data == NULL && len > 0))
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (sc->ended)
    return SMTPOUT_ERR_INVALID_STATE;
  scan_feed(sc, data, len);
  return 0;
}

int smtpout_message_scan_end(smtpout_message_scan *sc, uint64_t *psize,
                             uint32_t *pflags)
{
  if (sc == NULL)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  if (!sc->ended) {
    sc->ended = 1;
    sc->size += canon_count_finish(&sc->canon);
    if (sc->mime.error == MIME7_OK)
      mime7_finish(&sc->mime, NULL);
  }
  uint32_t flags = 0;
  if (sc->eightbit)
    flags |= SMTPOUT_MESSAGE_8BITMIME;
  if (sc->mime.error == MIME7_ERR_HEADER)
    flags |= SMTPOUT_MESSAGE_SMTPUTF8;
  if (sc->mime.error != MIME7_OK)
    flags |= SMTPOUT_MESSAGE_NO_7BIT_CONVERSION;
  if (psize)
    *psize = sc->size;
  if (pflags)
    *pflags = flags;
  return 0;
}

int smtpout_message_inspect(const uint8_t *data, size_t len, uint64_t *psize,
                            uint32_t *pflags)
{
  if (data == NULL && len > 0)
    return SMTPOUT_ERR_INVALID_ARGUMENT;
  /* On the stack: a body in memory is scanned without an allocation. */
  smtpout_message_scan sc;
  scan_init(&sc);
  scan_feed(&sc, data, len);
  return smtpout_message_scan_end(&sc, psize, pflags);
}
