/*
 * fuzz-tlsrpt — libFuzzer target for TLS-RPT (lib/tlsrpt.c): the event
 * reader, the report builder fed a stream of lines, and the `_smtp._tls`
 * record.
 *
 * Besides "no crash, no leak, no undefined behaviour":
 *
 *   - an event the reader accepts, written again, is read back to the same
 *     line (the writer writes only what the reader accepts, and reading is
 *     canonical);
 *   - the builder counts every non-blank line exactly once, as merged,
 *     malformed, another day or dropped, and renders every domain;
 *   - an accepted record starts with v=TLSRPTv1 and has 1 to 32 URIs.
 *
 * Build and run: see docs/security.md ("Fuzzing").
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsrpt_int.h"
#include "smtpout/smtpout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                         \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "fuzz-tlsrpt: invariant failed at line %d: %s\n",     \
              __LINE__, #cond);                                             \
      abort();                                                              \
    }                                                                       \
  } while (0)

/* Each line through the reader, and the writer after it. */
static size_t fuzz_events(const char *s, size_t size)
{
  size_t lines = 0;
  const char *end = s + size;
  while (s < end) {
    const char *lf = memchr(s, '\n', (size_t)(end - s));
    size_t n = (size_t)((lf ? lf : end) - s);
    size_t m = n > 0 && s[n - 1] == '\r' ? n - 1 : n;
    lines += m > 0;
    struct tlsrpt_parsed p;
    const char *why = NULL;
    if (tlsrpt_event_parse(s, m, &p, &why) == 0) {
      struct buf once = {0}, twice = {0};
      CHECK(tlsrpt_event_write(&p.ev, &once) == 0);
      struct tlsrpt_parsed q;
      CHECK(tlsrpt_event_parse((const char *)buf_head(&once),
                               buf_len(&once) - 1, &q, &why) == 0);
      CHECK(tlsrpt_event_write(&q.ev, &twice) == 0);
      CHECK(buf_len(&once) == buf_len(&twice) &&
            memcmp(buf_head(&once), buf_head(&twice), buf_len(&once)) == 0);
      tlsrpt_parsed_clear(&q);
      buf_free(&once);
      buf_free(&twice);
    } else {
      CHECK(why != NULL);
    }
    tlsrpt_parsed_clear(&p);
    if (lf == NULL)
      break;
    s = lf + 1;
  }
  return lines;
}

static void fuzz_report(const uint8_t *data, size_t size, size_t lines)
{
  smtpout_tlsrpt_report *r;
  CHECK(smtpout_tlsrpt_report_new(&r, NULL, 0) == 0);
  /* Fed in two pieces, split where the first byte says. */
  size_t cut = size > 0 ? data[0] % (size + 1) : 0;
  CHECK(smtpout_tlsrpt_report_feed(r, (const char *)data, cut) == 0);
  CHECK(smtpout_tlsrpt_report_feed(r, (const char *)data + cut, size - cut) ==
        0);
  CHECK(smtpout_tlsrpt_report_feed_eof(r) == 0);
  uint64_t total = 0;
  for (int c = 0; c <= SMTPOUT_TLSRPT_COUNTER_DROPPED; c++)
    total += smtpout_tlsrpt_report_counter(r, c);
  CHECK(total == lines);
  for (size_t i = 0; i < smtpout_tlsrpt_report_domain_count(r); i++) {
    const char *json;
    size_t len;
    CHECK(smtpout_tlsrpt_report_domain(r, i) != NULL);
    CHECK(smtpout_tlsrpt_report_render(r, i, "org", "c@example", "id", &json,
                                       &len) == 0);
    CHECK(len > 0 && json[0] == '{' && json[len - 1] == '}' &&
          strlen(json) == len);
  }
  smtpout_tlsrpt_report_free(r);
}

static void fuzz_record(const uint8_t *data, size_t size)
{
  struct tlsrpt_record rec;
  const char *why = NULL;
  if (tlsrpt_txt_parse((const char *)data, size, &rec, &why) == 0) {
    CHECK(size >= 10 && memcmp(data, "v=TLSRPTv1", 10) == 0);
    CHECK(rec.nrua >= 1 && rec.nrua <= TLSRPT_RUA_MAX);
    for (size_t i = 0; i < rec.nrua; i++)
      CHECK(rec.rua[i].len > 0 && memchr(rec.rua[i].s, ':', rec.rua[i].len));
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  size_t lines = fuzz_events((const char *)data, size);
  fuzz_report(data, size, lines);
  fuzz_record(data, size);
  return 0;
}
