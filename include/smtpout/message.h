/*
 * smtpout — what a message needs from the server, learned from its body.
 *
 * smtpout_session_submit() takes the size of a message and flags that say
 * what the message needs: 8-bit transport (BODY=8BITMIME, RFC 6152),
 * UTF-8 header fields (SMTPUTF8, RFC 6531), and whether its 8-bit content
 * could be converted to 7-bit for a server that offers neither.  A scan
 * reads the body once, raw, as read_body would hand it over, and gives
 * both:
 *
 *   smtpout_message_scan *scan;
 *   smtpout_message_scan_new(&scan);
 *   while ((n = read(fd, buf, sizeof buf)) > 0)
 *     smtpout_message_scan_update(scan, buf, n);
 *   smtpout_message_scan_end(scan, &size, &flags);
 *   smtpout_message_scan_free(scan);
 *   smtpout_session_submit(s, from, rcpts, nrcpts, size, flags | mine);
 *
 * or, for a body in memory, smtpout_message_inspect().  The blocking
 * driver (smtpout_delivery_run()) scans its body itself.
 *
 * A scan holds about 7 KiB whatever the body's size, reads no clock,
 * does no I/O, and is used by one thread at a time.
 */
#ifndef SMTPOUT_MESSAGE_H
#define SMTPOUT_MESSAGE_H

#include <smtpout/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smtpout_message_scan smtpout_message_scan;

/*
 * Creates a scan for one message body.
 * Errors: SMTPOUT_ERR_INVALID_ARGUMENT, SMTPOUT_ERR_NOMEM.
 */
SMTPOUT_EXTERN int smtpout_message_scan_new(smtpout_message_scan **pscan);

/* Frees a scan.  NULL-safe. */
SMTPOUT_EXTERN void smtpout_message_scan_free(smtpout_message_scan *scan);

/*
 * Feeds the next `len` bytes of the body, in chunks of any size (a line,
 * a header field or a MIME boundary may be split anywhere).
 * Errors: SMTPOUT_ERR_INVALID_ARGUMENT (NULL scan, or NULL data with
 * len > 0), SMTPOUT_ERR_INVALID_STATE (after smtpout_message_scan_end()).
 */
SMTPOUT_EXTERN int smtpout_message_scan_update(smtpout_message_scan *scan,
                                               const uint8_t *data,
                                               size_t len);

/*
 * Ends the body and reports what the message needs.  Either pointer may be
 * NULL.  Calling it again reports the same values.
 *
 * *psize: the size to give smtpout_session_submit(), exactly the size on
 * the wire as RFC 1870 section 3 defines it: every line end counted as the
 * CRLF the library sends (an LF-only file is one octet per line larger
 * than the file), a CRLF added to a last line without one, the dots added
 * for transparency and the final ".CRLF" not counted.
 *
 * *pflags: SMTPOUT_MESSAGE_* flags (<smtpout/session.h>):
 *   SMTPOUT_MESSAGE_8BITMIME when any byte has its high bit set;
 *   SMTPOUT_MESSAGE_SMTPUTF8 when the message's header (the lines up to
 *     the first empty line, or the first line that is not a header
 *     field) has one: UTF-8 header fields need SMTPUTF8 (RFC 6532); any
 *     non-ASCII octet counts, valid UTF-8 or not;
 *   SMTPOUT_MESSAGE_NO_7BIT_CONVERSION when 8-bit data sits where the
 *     7-bit conversion cannot carry it (docs/policy.md, "Message
 *     content"): a header field, a MIME part declared 7bit,
 *     quoted-printable or base64, a multipart preamble or epilogue, a
 *     structure the converter does not follow.
 *
 * Errors: SMTPOUT_ERR_INVALID_ARGUMENT (NULL scan).
 */
SMTPOUT_EXTERN int smtpout_message_scan_end(smtpout_message_scan *scan,
                                            uint64_t *psize,
                                            uint32_t *pflags);

/*
 * The whole scan in one call, for `len` bytes in memory, without an
 * allocation.  Either output pointer may be NULL.  Errors:
 * SMTPOUT_ERR_INVALID_ARGUMENT (NULL data with len > 0).
 */
SMTPOUT_EXTERN int smtpout_message_inspect(const uint8_t *data, size_t len,
                                           uint64_t *psize, uint32_t *pflags);

#ifdef __cplusplus
}
#endif

#endif /* SMTPOUT_MESSAGE_H */
