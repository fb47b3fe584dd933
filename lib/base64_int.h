/*
 * base64_int.h — RFC 4648 section 4 base64, strict, for SMTP AUTH.
 *
 * RFC 4954 section 4 carries every SASL challenge and response in base64.
 * The decoder accepts only the canonical encoding: the standard alphabet,
 * a length that is a multiple of four, '=' padding only at the end and
 * zero bits under it, no white space.  Anything else is refused rather
 * than guessed at, so that two parsers can never read one challenge two
 * ways.
 */
#ifndef SMTPOUT_BASE64_INT_H
#define SMTPOUT_BASE64_INT_H

#include <stddef.h>
#include <stdint.h>

/* The encoded length of `n` bytes (no NUL); the macro for array sizes. */
#define BASE64_LEN(n) (((n) + 2) / 3 * 4)
static inline size_t base64_encoded_len(size_t n) { return BASE64_LEN(n); }

/* The most bytes base64_decode() can write for `n` characters. */
static inline size_t base64_decoded_max(size_t n) { return n / 4 * 3; }

/* Encodes `n` bytes into `out` (base64_encoded_len(n) bytes, no NUL);
 * returns the length written. */
size_t base64_encode(const uint8_t *in, size_t n, char *out);

/* Decodes `n` characters into `out` (base64_decoded_max(n) bytes).
 * Returns the decoded length, or -1 when the text is not canonical
 * base64. */
long base64_decode(const char *in, size_t n, uint8_t *out);

#endif
