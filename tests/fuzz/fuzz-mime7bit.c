/*
 * fuzz-mime7bit — libFuzzer target for the 7-bit conversion (mime7bit.c)
 * and the scan of a message (smtpout_message_scan).
 *
 * Input: 2 bytes, the seed of the chunk schedule (a xorshift generator
 * cutting the body into pieces of 1 to 300 bytes); then the body.
 *
 * Invariants, each an abort() the fuzzer reports:
 *  - no call writes more than its bound (mime7_bound(), MIME7_FINISH_MAX);
 *  - the output does not depend on how the body is cut: fed whole and fed
 *    in pieces, the same bytes, or the same error;
 *  - the dry run (what the scan runs) fails exactly when the conversion
 *    does, with the same error: the scan's verdict is the session's;
 *  - whatever is written, failing or not, is 7-bit; a conversion that
 *    succeeds is SMTP data: CRLF line ends only, dot-stuffed, ending with
 *    the one "\r\n.\r\n" (or ".\r\n" alone) and no line "." before it;
 *  - the scan's flags say 8BITMIME exactly when a byte is 8-bit,
 *    NO_7BIT_CONVERSION exactly when the conversion fails, SMTPUTF8 only
 *    with NO_7BIT_CONVERSION; its size is what canon.c writes, less the
 *    dots it doubles and the final ".\r\n".
 *
 * Build and run: see docs/security.md ("Fuzzing").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon_int.h"
#include "mime7bit_int.h"
#include "smtpout/smtpout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                         \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "fuzz-mime7bit: invariant failed at line %d: %s\n", \
              __LINE__, #cond);                                             \
      abort();                                                              \
    }                                                                       \
  } while (0)

static uint32_t next(uint32_t *x)
{
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return *x;
}

struct run {
  uint8_t *out;
  size_t len;
  int error;
};

/* Converts body (dry or not) in pieces from the schedule `seed` (0: whole). */
static struct run convert(const uint8_t *body, size_t n, uint32_t seed,
                          int dry)
{
  struct mime7 m;
  struct run r = {NULL, 0, 0};
  mime7_init(&m, dry);
  if (!dry) {
    r.out = malloc(mime7_bound(n) + MIME7_FINISH_MAX);
    CHECK(r.out != NULL);
  }
  uint32_t x = seed;
  for (size_t at = 0; at < n && m.error == MIME7_OK;) {
    size_t k = seed ? 1 + next(&x) % 300 : n;
    if (k > n - at)
      k = n - at;
    size_t w = mime7_encode(&m, body + at, k, dry ? NULL : r.out + r.len);
    CHECK(w <= mime7_bound(k));
    CHECK(!dry || w == 0);
    if (!dry)
      CHECK(!mime7_has_8bit(r.out + r.len, w));
    r.len += w;
    at += k;
  }
  if (m.error == MIME7_OK) {
    size_t w = mime7_finish(&m, dry ? NULL : r.out + r.len);
    CHECK(w <= MIME7_FINISH_MAX);
    r.len += w;
  }
  r.error = m.error;
  return r;
}

/* SMTP data: CRLF only, no early end, one final ".\r\n". */
static void check_data(const uint8_t *p, size_t n)
{
  CHECK(n >= 3 && memcmp(p + n - 3, ".\r\n", 3) == 0);
  CHECK(n == 3 || (n >= 5 && p[n - 5] == '\r' && p[n - 4] == '\n'));
  int bol = 1;
  for (size_t i = 0; i < n - 3; i++) {
    if (p[i] == '\r') {
      CHECK(i + 1 < n && p[i + 1] == '\n');
      i++;
      bol = 1;
      continue;
    }
    CHECK(p[i] != '\n');
    /* A line starting with '.' was stuffed: never a lone "." line. */
    if (bol && p[i] == '.')
      CHECK(p[i + 1] == '.');
    bol = 0;
  }
}

/* RFC 1870 size of the body, from what canon.c writes. */
static uint64_t canon_size(const uint8_t *body, size_t n)
{
  struct canon c;
  uint8_t *o = malloc(canon_bound(n) + CANON_FINISH_MAX);
  CHECK(o != NULL);
  canon_init(&c);
  size_t len = canon_encode(&c, body, n, o);
  len += canon_finish(&c, o + len);
  uint64_t stuffed = 0;
  for (size_t i = 0; i + 3 < len; i++)
    if ((i == 0 || o[i - 1] == '\n') && o[i] == '.')
      stuffed++;
  free(o);
  return (uint64_t)len - 3 - stuffed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 2)
    return 0;
  uint32_t seed = ((uint32_t)data[0] << 8 | data[1]) + 1;
  const uint8_t *body = data + 2;
  size_t n = size - 2;

  struct run whole = convert(body, n, 0, 0);
  struct run cut = convert(body, n, seed, 0);
  struct run dry = convert(body, n, seed * 7 + 3, 1);
  CHECK(whole.error == cut.error);
  CHECK(whole.error == dry.error);
  if (whole.error == MIME7_OK) {
    CHECK(whole.len == cut.len && memcmp(whole.out, cut.out, cut.len) == 0);
    check_data(whole.out, whole.len);
  }

  uint64_t scan_size;
  uint32_t flags;
  CHECK(smtpout_message_inspect(body, n, &scan_size, &flags) == 0);
  int eightbit = mime7_has_8bit(body, n);
  CHECK(!!(flags & SMTPOUT_MESSAGE_8BITMIME) == eightbit);
  CHECK(!!(flags & SMTPOUT_MESSAGE_NO_7BIT_CONVERSION) ==
        (whole.error != MIME7_OK));
  CHECK(!(flags & SMTPOUT_MESSAGE_SMTPUTF8) ||
        (flags & SMTPOUT_MESSAGE_NO_7BIT_CONVERSION));
  CHECK(whole.error == MIME7_OK || eightbit);
  CHECK(scan_size == canon_size(body, n));

  free(whole.out);
  free(cut.out);
  return 0;
}
