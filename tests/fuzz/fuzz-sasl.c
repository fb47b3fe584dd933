/*
 * fuzz-sasl — libFuzzer target for the SMTP AUTH client (lib/sasl.c) fed
 * hostile 334 challenges, for every mechanism.
 *
 * Input: one header byte, then the server's challenges, each ended by
 * '\n' (the last one may lack it; at most 8).
 *   byte 0  bits 0-2: the mechanism (value % 5 + 1: PLAIN, LOGIN,
 *           XOAUTH2, SCRAM-SHA-256, SCRAM-SHA-256-PLUS; SCRAM only when
 *           built with GNU SASL); bit 3: the challenges are the 334 text
 *           itself (else the harness base64-encodes them); bit 4: a
 *           600-byte password, which keeps PLAIN's and XOAUTH2's initial
 *           response off the AUTH line; bit 5: the server answers 235
 *           after the last challenge.
 * When the harness encodes, "@N" in a challenge becomes the client's
 * SCRAM nonce and "@V" the correct server signature (computed by the
 * reference server of tests/scram_ref.c from what was exchanged), so that
 * the fuzzer reaches every SCRAM state.  SCRAM iteration bounds are 1..64
 * here, to keep executions fast.
 *
 * Invariants, each an abort() the fuzzer reports:
 *  - every line ends in CRLF, is at most SASL_LINE_MAX octets, and is the
 *    AUTH line, the cancel "*", an empty line or base64; an error always
 *    comes with the cancel line;
 *  - the secret never appears in clear in a line, an error text or the
 *    server's kept text;
 *  - LOGIN answers the username first, then the password, nothing else;
 *  - GNU SASL is handed a server-first message only when its iteration
 *    count is within the bounds (parsed here independently);
 *  - SCRAM reports success on a 235 only if the server-final message
 *    carried the signature the reference server computes for this
 *    exchange.
 *
 * Build and run: see docs/security.md ("Fuzzing").
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64_int.h"
#include "sasl_int.h"
#include "scram_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CHALLENGES 8
#define MSG 4096

static const char username[] = "fuzz@example.org";
static const char short_secret[] = "Sekr1t-Pencil";
static char long_secret[601];

static const uint8_t exporter[32] = {
  0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
  13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
};

/* What the harness learned of a SCRAM exchange, raw. */
struct view {
  char client_first_bare[MSG];
  char server_first[MSG];
  char client_final_wo_proof[MSG];
  int have_first, have_server_first, have_final;
};

static int has(const void *hay, size_t n, const char *needle)
{
  size_t k = strlen(needle);
  for (size_t i = 0; k > 0 && i + k <= n; i++)
    if (memcmp((const char *)hay + i, needle, k) == 0)
      return 1;
  return 0;
}

static int is_b64(const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z') ||
          (p[i] >= '0' && p[i] <= '9') || p[i] == '+' || p[i] == '/' ||
          p[i] == '='))
      return 0;
  return 1;
}

/* Checks a line and decodes its base64 part into `out` (NUL-terminated;
 * empty for the AUTH line without a response, the cancel and an empty
 * line).  Returns the decoded length. */
static size_t check_line(const uint8_t *line, size_t len, const char *secret,
                         char *out)
{
  if (len < 2 || len > SASL_LINE_MAX || line[len - 2] != '\r' ||
      line[len - 1] != '\n')
    abort();
  if (has(line, len, secret))
    abort();
  len -= 2;
  out[0] = '\0';
  if (len >= 5 && memcmp(line, "AUTH ", 5) == 0) {
    const uint8_t *sp = memchr(line + 5, ' ', len - 5);
    if (!sp)
      return 0;
    len -= (size_t)(sp + 1 - line);
    line = sp + 1;
  }
  if (len == 1 && line[0] == '*')
    return 0;
  if (!is_b64(line, len) || base64_decoded_max(len) >= MSG)
    abort();
  long n = base64_decode((const char *)line, len, (uint8_t *)out);
  if (n < 0)
    abort();
  out[n] = '\0';
  return (size_t)n;
}

/* The iteration count of a server-first message as RFC 5802 spells it
 * (r=, s=, i= in that order), or -1. */
static long long iteration_count(const uint8_t *m, size_t n)
{
  if (n >= 2 && m[0] == 'm' && m[1] == '=')
    return -1;
  const char order[] = "rsi";
  size_t off = 0;
  for (int a = 0; a < 3; a++) {
    if (off + 2 > n || m[off] != (uint8_t)order[a] || m[off + 1] != '=')
      return -1;
    size_t end = off + 2;
    while (end < n && m[end] != ',')
      end++;
    if (a == 2) {
      long long v = 0;
      if (end == off + 2 || end - off - 2 > 12)
        return -1;
      for (size_t i = off + 2; i < end; i++) {
        if (m[i] < '0' || m[i] > '9')
          return -1;
        v = v * 10 + (m[i] - '0');
      }
      return v;
    }
    off = end + 1;
  }
  return -1;
}

/* The correct "v=" value for the exchange so far, base64, or "" when the
 * server-first message does not give a usable salt and count. */
static void expected_signature(const struct view *v, const char *secret,
                               char out[64])
{
  out[0] = '\0';
  if (!v->have_first || !v->have_server_first || !v->have_final)
    return;
  const char *s = strstr(v->server_first, ",s=");
  long long iter = iteration_count((const uint8_t *)v->server_first,
                                   strlen(v->server_first));
  if (!s || iter < 1 || iter > 64)
    return;
  s += 3;
  size_t slen = strcspn(s, ",");
  uint8_t salt[MSG];
  long saltn = base64_decode(s, slen, salt);
  if (saltn <= 0)
    return;
  char am[3 * MSG + 3];
  snprintf(am, sizeof(am), "%s,%s,%s", v->client_first_bare,
           v->server_first, v->client_final_wo_proof);
  uint8_t proof[32], sig[32];
  if (scram_ref_signatures(secret, salt, (size_t)saltn, (unsigned)iter, am,
                           proof, sig) != 0)
    abort();
  out[base64_encode(sig, 32, out)] = '\0';
}

/* Replaces "@N" and "@V" in a challenge (harness-encoded mode). */
static size_t substitute(const uint8_t *in, size_t n, const struct view *v,
                         const char *secret, uint8_t *out, size_t cap)
{
  char nonce[MSG] = "", sig[64];
  const char *r = v->have_first ? strstr(v->client_first_bare, "r=") : NULL;
  if (r)
    snprintf(nonce, sizeof(nonce), "%s", r + 2);
  size_t k = 0;
  for (size_t i = 0; i < n;) {
    const char *rep = NULL;
    if (i + 1 < n && in[i] == '@' && in[i + 1] == 'N') {
      rep = nonce;
    } else if (i + 1 < n && in[i] == '@' && in[i + 1] == 'V') {
      expected_signature(v, secret, sig);
      rep = sig;
    }
    if (rep) {
      size_t rl = strlen(rep);
      if (k + rl > cap)
        break;
      memcpy(out + k, rep, rl);
      k += rl;
      i += 2;
    } else {
      if (k == cap)
        break;
      out[k++] = in[i++];
    }
  }
  return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  if (!long_secret[0])
    memset(long_secret, 'P', sizeof(long_secret) - 1);
  uint8_t flags = data[0];
  enum sasl_mech mech = (enum sasl_mech)(flags % 8 % 5 + 1);
  int raw = flags & 0x08, success = flags & 0x20;
  const char *secret = (flags & 0x10) ? long_secret : short_secret;
  if (!sasl_mech_built(mech))
    return 0;
  int scram = mech == SASL_MECH_SCRAM_SHA_256 ||
              mech == SASL_MECH_SCRAM_SHA_256_PLUS;

  struct sasl_params p = {.mech = mech, .username = username,
                          .secret = secret,
                          .cb_type = SASL_CB_TLS_EXPORTER,
                          .cb_data = exporter, .cb_len = sizeof(exporter),
                          .scram_iter_min = 1, .scram_iter_max = 64};
  struct sasl_client *c;
  if (sasl_client_new(&c, &p) != 0)
    abort();
  const uint8_t *line;
  size_t len;
  static char dec[MSG];
  static struct view v;
  memset(&v, 0, sizeof(v));
  if (sasl_client_start(c, &line, &len) != 0)
    abort();
  size_t dn = check_line(line, len, secret, dec);
  if (scram && dn > 0) {
    /* client-first: gs2 header "n,," or "p=tls-exporter,," then bare */
    const char *bare = strstr(dec, ",,");
    if (!bare)
      abort();
    snprintf(v.client_first_bare, MSG, "%s", bare + 2);
    v.have_first = 1;
  }

  const uint8_t *p0 = data + 1, *end = data + size;
  int responses = 0, failed = 0, last_was_sig = 0;
  static uint8_t chal[MSG + 512];
  static char b64[2 * MSG + 1024];
  for (int k = 0; k < MAX_CHALLENGES && p0 < end; k++) {
    const uint8_t *nl = memchr(p0, '\n', (size_t)(end - p0));
    size_t seg = nl ? (size_t)(nl - p0) : (size_t)(end - p0);
    int rv;
    size_t steps_before = sasl_client_library_steps(c);
    size_t cn = 0;
    if (raw) {
      rv = sasl_client_step(c, (const char *)p0, seg, &line, &len);
    } else {
      cn = substitute(p0, seg, &v, secret, chal, sizeof(chal));
      size_t bn = base64_encode(chal, cn, b64);
      rv = sasl_client_step(c, b64, bn, &line, &len);
    }
    dn = check_line(line, len, secret, dec);
    if (rv != 0) {
      if (len != 3 || memcmp(line, "*\r\n", 3) != 0)
        abort();
      failed = 1;
    } else if (mech == SASL_MECH_LOGIN) {
      /* The username, then the password, whatever the prompts were. */
      const char *want = responses == 0 ? username : secret;
      if (responses > 1 || dn != strlen(want) || memcmp(dec, want, dn) != 0)
        abort();
    }
    if (rv == 0)
      responses++;

    if (scram && !raw) {
      /* GNU SASL saw this message as a server-first: its count must be
       * in bounds. */
      if (sasl_client_library_steps(c) > steps_before && !v.have_server_first) {
        long long it = iteration_count(chal, cn);
        if (it < 1 || it > 64)
          abort();
      }
      if (rv == 0 && v.have_first && !v.have_server_first && dn > 0) {
        size_t m = cn < MSG - 1 ? cn : MSG - 1;
        memcpy(v.server_first, chal, m);
        v.server_first[m] = '\0';
        v.have_server_first = memchr(chal, 0, cn) == NULL;
        const char *pp = strstr(dec, ",p=");
        if (pp) {
          snprintf(v.client_final_wo_proof, MSG, "%.*s", (int)(pp - dec), dec);
          v.have_final = 1;
        }
      } else if (v.have_final) {
        char sig[64], want[80];
        expected_signature(&v, secret, sig);
        snprintf(want, sizeof(want), "v=%s", sig);
        last_was_sig = sig[0] && cn >= strlen(want) &&
                       memcmp(chal, want, strlen(want)) == 0 &&
                       (cn == strlen(want) || chal[strlen(want)] == ',');
      }
    }
    p0 = nl ? nl + 1 : end;
  }

  if (success) {
    int rv = sasl_client_success(c);
    if (rv == 0 && failed)
      abort();
    if (rv == 0 && scram && (raw || !last_was_sig))
      abort();
  }
  if (has(sasl_client_error(c), strlen(sasl_client_error(c)), secret) ||
      has(sasl_client_server_error(c), strlen(sasl_client_server_error(c)),
          secret))
    abort();
  sasl_client_free(c);
  return 0;
}
