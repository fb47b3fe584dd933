/*
 * test_tlsrpt.c — TLS-RPT (RFC 8460): the event writer and its strict
 * reader, the `_smtp._tls` record, and aggregate reports built from event
 * lines with exact counts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsrpt_int.h"
#include "smtpout/smtpout.h"

/* 2024-02-29T00:00:00Z (a leap day) in ms. */
#define DAY 1709164800000ULL
#define MS_PER_DAY 86400000ULL

static const char *STS_STRINGS[] = {"version: STSv1", "mode: enforce",
                                    "mx: *.mail.example.com",
                                    "max_age: 86400"};
static const char *STS_MX[] = {"*.mail.example.com"};

static struct tlsrpt_event sts_event(bool success, int type)
{
  struct tlsrpt_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.time_ms = DAY + 3600000;
  ev.policy_type = TLSRPT_POLICY_STS;
  ev.policy_strings = STS_STRINGS;
  ev.npolicy_strings = 4;
  ev.policy_domain = "example.com";
  ev.mx_hosts = STS_MX;
  ev.nmx_hosts = 1;
  ev.success = success;
  ev.result_type = success ? TLSRPT_NONE : type;
  ev.sending_mta_ip = "192.0.2.10";
  ev.receiving_mx_hostname = "mx1.mail.example.com";
  ev.receiving_ip = "198.51.100.7";
  ev.receiving_mx_helo = "mx1.mail.example.com ESMTP";
  return ev;
}

/* Writes `ev` and returns the line, NUL-terminated (static). */
static const char *line_of(const struct tlsrpt_event *ev)
{
  static char text[8192];
  struct buf b = {0};
  int rc = tlsrpt_event_write(ev, &b);
  if (rc != 0)
    fail_msg("write: %s", smtpout_strerror(rc));
  assert_true(buf_len(&b) < sizeof(text));
  memcpy(text, buf_head(&b), buf_len(&b));
  text[buf_len(&b)] = '\0';
  buf_free(&b);
  return text;
}

/* ------------------------------------------------------------------ */
/* Events                                                               */

static void test_event_line_has_the_documented_shape(void **state)
{
  (void)state;
  struct tlsrpt_event ev = sts_event(false, TLSRPT_CERTIFICATE_EXPIRED);
  ev.report_record = "v=TLSRPTv1; rua=mailto:tlsrpt@example.com";
  ev.additional_information = "not after 2024-01-01";
  assert_string_equal(
      line_of(&ev),
      "{\"v\":1,\"time\":1709168400000,"
      "\"report-record\":\"v=TLSRPTv1; rua=mailto:tlsrpt@example.com\","
      "\"policy-type\":\"sts\",\"policy-string\":[\"version: STSv1\","
      "\"mode: enforce\",\"mx: *.mail.example.com\",\"max_age: 86400\"],"
      "\"policy-domain\":\"example.com\",\"mx-host\":[\"*.mail.example.com\"],"
      "\"result\":\"failure\",\"result-type\":\"certificate-expired\","
      "\"sending-mta-ip\":\"192.0.2.10\","
      "\"receiving-mx-hostname\":\"mx1.mail.example.com\","
      "\"receiving-mx-helo\":\"mx1.mail.example.com ESMTP\","
      "\"receiving-ip\":\"198.51.100.7\","
      "\"additional-information\":\"not after 2024-01-01\"}\n");
}

static void test_event_round_trip_is_canonical(void **state)
{
  (void)state;
  struct tlsrpt_event ev = sts_event(false, TLSRPT_STS_WEBPKI_INVALID);
  ev.policy_domain = "EXAMPLE.com.";
  ev.report_domain = "B\xc3\xbc" "cher.example";
  ev.sending_mta_ip = "2001:DB8:0:0::1";
  ev.receiving_mx_hostname = "[IPv6:2001:db8::25]";
  ev.receiving_mx_helo = "quote \" back\\slash \xe2\x82\xac";
  ev.failure_reason_code = "X509_V_ERR";
  const char *line = line_of(&ev);
  struct tlsrpt_parsed p;
  const char *why = NULL;
  size_t len = strlen(line) - 1;
  if (tlsrpt_event_parse(line, len, &p, &why) != 0)
    fail_msg("own line refused: %s", why);
  assert_string_equal(p.ev.policy_domain, "example.com");
  assert_string_equal(p.ev.report_domain, "xn--bcher-kva.example");
  assert_string_equal(p.ev.sending_mta_ip, "2001:db8::1");
  assert_string_equal(p.ev.receiving_mx_hostname, "2001:db8::25");
  assert_string_equal(p.ev.receiving_mx_helo,
                      "quote \" back\\slash \xe2\x82\xac");
  assert_int_equal(p.ev.result_type, TLSRPT_STS_WEBPKI_INVALID);
  assert_false(p.ev.success);
  assert_int_equal(p.ev.npolicy_strings, 4);
  assert_string_equal(p.ev.policy_strings[2], "mx: *.mail.example.com");
  assert_int_equal(p.ev.nmx_hosts, 1);
  assert_string_equal(p.ev.mx_hosts[0], "*.mail.example.com");
  assert_true(p.ev.time_ms == DAY + 3600000);
  /* Written again, the line is the same. */
  char first[8192];
  snprintf(first, sizeof(first), "%s", line);
  assert_string_equal(line_of(&p.ev), first);
  tlsrpt_parsed_clear(&p);
}

/* What a hostile server says (its EHLO name) never breaks the line. */
static void test_writer_makes_free_text_safe(void **state)
{
  (void)state;
  struct tlsrpt_event ev = sts_event(false, TLSRPT_VALIDATION_FAILURE);
  ev.receiving_mx_helo = "evil\r\n\"},{\"x\":1\x01\xff\xc3";
  const char *line = line_of(&ev);
  assert_null(strchr(line, '\r'));
  assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
  struct tlsrpt_parsed p;
  const char *why = NULL;
  assert_int_equal(tlsrpt_event_parse(line, strlen(line) - 1, &p, &why), 0);
  assert_string_equal(p.ev.receiving_mx_helo,
                      "evil\xef\xbf\xbd\xef\xbf\xbd\"},{\"x\":1\xef\xbf\xbd"
                      "\xef\xbf\xbd\xef\xbf\xbd");
  tlsrpt_parsed_clear(&p);
  /* Over-long free text is cut at TLSRPT_STRING_MAX, on a character. */
  size_t n = TLSRPT_STRING_MAX + 10;
  char *big = malloc(n + 1);
  for (size_t i = 0; i < n; i += 2)
    memcpy(big + i, "\xc3\xa9", 2);
  big[n] = '\0';
  ev.receiving_mx_helo = big;
  struct buf b = {0};
  assert_int_equal(tlsrpt_event_write(&ev, &b), 0);
  assert_int_equal(tlsrpt_event_parse((const char *)buf_head(&b),
                                      buf_len(&b) - 1, &p, &why),
                   0);
  assert_int_equal(strlen(p.ev.receiving_mx_helo), TLSRPT_STRING_MAX);
  tlsrpt_parsed_clear(&p);
  buf_free(&b);
  free(big);
}

static void test_writer_refuses_invalid_events(void **state)
{
  (void)state;
  struct buf b = {0};
  struct tlsrpt_event ev = sts_event(true, TLSRPT_NONE);
  ev.result_type = TLSRPT_CERTIFICATE_EXPIRED; /* success with a type */
  assert_int_equal(tlsrpt_event_write(&ev, &b), SMTPOUT_ERR_INVALID_ARGUMENT);
  ev = sts_event(false, TLSRPT_NONE); /* failure without a type */
  assert_int_equal(tlsrpt_event_write(&ev, &b), SMTPOUT_ERR_INVALID_ARGUMENT);
  ev = sts_event(true, TLSRPT_NONE);
  ev.policy_domain = NULL;
  assert_int_equal(tlsrpt_event_write(&ev, &b), SMTPOUT_ERR_INVALID_ARGUMENT);
  ev.policy_domain = "bad_name.example";
  assert_int_equal(tlsrpt_event_write(&ev, &b), SMTPOUT_ERR_BAD_NAME);
  ev = sts_event(true, TLSRPT_NONE);
  ev.sending_mta_ip = "192.0.2.300";
  assert_int_equal(tlsrpt_event_write(&ev, &b), SMTPOUT_ERR_INVALID_ARGUMENT);
  ev = sts_event(true, TLSRPT_NONE);
  ev.policy_type = 9;
  assert_int_equal(tlsrpt_event_write(&ev, &b), SMTPOUT_ERR_INVALID_ARGUMENT);
  ev = sts_event(true, TLSRPT_NONE);
  ev.time_ms = TLSRPT_TIME_MAX + 1;
  assert_int_equal(tlsrpt_event_write(&ev, &b), SMTPOUT_ERR_INVALID_ARGUMENT);
  const char *bad_mx[] = {"*.*.example"};
  ev = sts_event(true, TLSRPT_NONE);
  ev.mx_hosts = bad_mx;
  assert_int_equal(tlsrpt_event_write(&ev, &b), SMTPOUT_ERR_BAD_NAME);
  assert_int_equal(buf_len(&b), 0); /* nothing half-written */
  buf_free(&b);
}

static void assert_line_refused(const char *line, const char *why_part)
{
  struct tlsrpt_parsed p;
  const char *why = NULL;
  int rc = tlsrpt_event_parse(line, strlen(line), &p, &why);
  tlsrpt_parsed_clear(&p);
  if (rc != SMTPOUT_ERR_SYNTAX)
    fail_msg("accepted: %s", line);
  if (why_part != NULL && strstr(why, why_part) == NULL)
    fail_msg("%s: refused for \"%s\", expected \"%s\"", line, why, why_part);
}

#define MIN_OK "\"v\":1,\"time\":5,\"policy-type\":\"no-policy-found\"," \
               "\"policy-domain\":\"a.example\",\"result\":\"success\""

static void test_reader_is_strict(void **state)
{
  (void)state;
  struct tlsrpt_parsed p;
  const char *why;
  assert_int_equal(tlsrpt_event_parse("{" MIN_OK "}", strlen("{" MIN_OK "}"),
                                      &p, &why),
                   0);
  tlsrpt_parsed_clear(&p);
  assert_line_refused("", "not a JSON object");
  assert_line_refused("[]", "not a JSON object");
  assert_line_refused("{}", "empty");
  assert_line_refused("{" MIN_OK "} x", "after the object");
  assert_line_refused("{" MIN_OK ",}", "expected a string");
  assert_line_refused("{" MIN_OK ",\"v\":1}", "twice");
  assert_line_refused("{\"v\":1,\"time\":5,\"policy-type\":\"sts\","
                      "\"result\":\"success\"}", "missing");
  assert_line_refused("{\"v\":2,\"time\":5}", "version 1");
  assert_line_refused("{\"v\":1,\"time\":5.0}", "integer");
  assert_line_refused("{\"v\":1,\"time\":-5}", "integer");
  assert_line_refused("{\"v\":1,\"time\":05}", "integer");
  assert_line_refused("{\"v\":1,\"time\":\"5\"}", "integer");
  assert_line_refused("{\"v\":1,\"time\":253402300800000}", "range");
  assert_line_refused("{\"v\":1,\"time\":99999999999999999999999}", "range");
  assert_line_refused("{\"v\":1,\"policy-type\":\"dane\"}", "policy-type");
  assert_line_refused("{\"v\":1,\"result\":\"ok\"}", "result");
  assert_line_refused("{" MIN_OK ",\"result-type\":\"certificate-expired\"}",
                      "exactly");
  assert_line_refused("{\"v\":1,\"time\":5,\"policy-type\":\"sts\","
                      "\"policy-domain\":\"a.example\","
                      "\"result\":\"failure\"}", "exactly");
  assert_line_refused("{" MIN_OK ",\"result-type\":\"tls-failed\"}",
                      "result-type");
  assert_line_refused("{" MIN_OK ",\"receiving-mx-helo\":\"a\\nb\"}",
                      "control");
  assert_line_refused("{" MIN_OK ",\"receiving-mx-helo\":\"a\tb\"}",
                      "control");
  assert_line_refused("{" MIN_OK ",\"receiving-mx-helo\":\"\\u0000\"}",
                      "control");
  assert_line_refused("{" MIN_OK ",\"receiving-mx-helo\":\"\\u007f\"}",
                      "control");
  assert_line_refused("{" MIN_OK ",\"receiving-mx-helo\":\"\\ud800\"}",
                      "surrogate");
  assert_line_refused("{" MIN_OK ",\"receiving-mx-helo\":\"\\udc00\"}",
                      "surrogate");
  assert_line_refused("{" MIN_OK ",\"receiving-mx-helo\":\"\\u12\"}", "\\u");
  assert_line_refused("{" MIN_OK ",\"receiving-mx-helo\":\"\xc3(\"}",
                      "UTF-8");
  assert_line_refused("{" MIN_OK ",\"receiving-mx-helo\":\"\xed\xa0\x80\"}",
                      "UTF-8"); /* an encoded surrogate */
  assert_line_refused("{" MIN_OK ",\"receiving-mx-helo\":\"\\x\"}", "escape");
  assert_line_refused("{" MIN_OK ",\"receiving-mx-helo\":\"abc", "unterminated");
  assert_line_refused("{" MIN_OK ",\"receiving-ip\":\"mx.example\"}",
                      "IP address");
  assert_line_refused("{" MIN_OK ",\"receiving-mx-hostname\":\"a b\"}",
                      "host name");
  assert_line_refused("{" MIN_OK ",\"policy-string\":\"one\"}", "array");
  assert_line_refused("{" MIN_OK ",\"policy-string\":[1]}", "string");
  assert_line_refused("{" MIN_OK ",\"mx-host\":[\"*.*.example\"]}",
                      "host name");
  assert_line_refused("{" MIN_OK ",\"future\":{\"a\":1}}", NULL);
  assert_line_refused("{" MIN_OK ",\"future\":[[1]]}", NULL);
  assert_line_refused("{" MIN_OK ",\"future\":tru}", NULL);
  assert_line_refused("{" MIN_OK ",\"future\":1.}", "number");
  assert_line_refused("{" MIN_OK ",\"future\":-}", NULL);
}

static void test_reader_skips_unknown_keys_and_decodes_escapes(void **state)
{
  (void)state;
  static const char line[] =
      "{\"future\":[\"x\",1,-2.5e3,true,null],\"v\":1,\"time\":0,"
      "\"other\":\"\\\"\",\"policy-type\":\"tlsa\","
      "\"policy-domain\":\"MX.Example.NET\",\"result\":\"failure\","
      "\"result-type\":\"tlsa-invalid\",\"receiving-mx-helo\":"
      "\"\\u00e9\\ud83d\\ude00\\/\\\\\\\"\",\"empty\":[]}";
  struct tlsrpt_parsed p;
  const char *why = NULL;
  if (tlsrpt_event_parse(line, strlen(line), &p, &why) != 0)
    fail_msg("refused: %s", why);
  assert_string_equal(p.ev.policy_domain, "mx.example.net");
  assert_int_equal(p.ev.policy_type, TLSRPT_POLICY_TLSA);
  assert_string_equal(p.ev.receiving_mx_helo,
                      "\xc3\xa9\xf0\x9f\x98\x80/\\\"");
  assert_int_equal(p.ev.npolicy_strings, 0);
  assert_null(p.ev.sending_mta_ip);
  tlsrpt_parsed_clear(&p);
}

static void test_reader_bounds_the_line(void **state)
{
  (void)state;
  size_t n = SMTPOUT_TLSRPT_EVENT_MAX_BYTES + 1;
  char *line = malloc(n);
  memset(line, ' ', n);
  struct tlsrpt_parsed p;
  const char *why = NULL;
  assert_int_equal(tlsrpt_event_parse(line, n, &p, &why), SMTPOUT_ERR_SYNTAX);
  assert_string_equal(why, "line too long");
  tlsrpt_parsed_clear(&p);
  free(line);
}

/* ------------------------------------------------------------------ */
/* The _smtp._tls record                                                */

static void test_tlsrpt_record(void **state)
{
  (void)state;
  struct tlsrpt_record r;
  const char *why = NULL;
#define OK(t)                                                               \
  do {                                                                      \
    if (tlsrpt_txt_parse(t, strlen(t), &r, &why) != 0)                      \
      fail_msg("refused \"%s\": %s", t, why);                               \
  } while (0)
#define NO(t)                                                               \
  do {                                                                      \
    if (tlsrpt_txt_parse(t, strlen(t), &r, &why) != SMTPOUT_ERR_SYNTAX)     \
      fail_msg("accepted \"%s\"", t);                                       \
  } while (0)
  OK("v=TLSRPTv1; rua=mailto:tlsrpt@example.com");
  assert_int_equal(r.nrua, 1);
  assert_int_equal(r.rua[0].scheme, TLSRPT_URI_MAILTO);
  assert_memory_equal(r.rua[0].s, "mailto:tlsrpt@example.com", r.rua[0].len);
  OK("v=TLSRPTv1;rua=mailto:a@example.com , https://reports.example.com/v1;");
  assert_int_equal(r.nrua, 2);
  assert_int_equal(r.rua[1].scheme, TLSRPT_URI_HTTPS);
  assert_int_equal(r.rua[1].len, strlen("https://reports.example.com/v1"));
  OK("v=TLSRPTv1 ; ext=1; rua=MAILTO:a%2Cb@example.com");
  OK("v=TLSRPTv1; rua=ftp://x.example/r");
  assert_int_equal(r.rua[0].scheme, TLSRPT_URI_OTHER);
  NO("v=TLSRPTv1");
  NO("v=TLSRPTv1;");
  NO("v=TLSRPTv1; ext=1");
  NO("v=TLSRPTv1; rua=");
  NO("v=TLSRPTv1; rua=mailto:a@x.example; rua=mailto:b@x.example");
  NO("v=TLSRPTv1; rua=mailto:nobody");
  NO("v=TLSRPTv1; rua=https:reports.example.com");
  NO("v=TLSRPTv1; rua=https:///path");
  NO("v=TLSRPTv1; rua=mailto:a%2@example.com");
  NO("v=TLSRPTv1; rua=mailto:a!b@example.com");
  NO("v=TLSRPTv1; rua=example.com");
  NO("v=TLSRPTv1; rua=mailto:a@example.com,");
  NO("v=TLSRPTv1; rua=mailto:a@example.com ");
  NO("V=TLSRPTv1; rua=mailto:a@example.com");
  NO("v=TLSRPTv2; rua=mailto:a@example.com");
#undef OK
#undef NO
  const char *recs[] = {"v=spf1 -all", "v=TLSRPTv1; rua=mailto:a@example.com"};
  size_t lens[] = {strlen(recs[0]), strlen(recs[1])};
  assert_int_equal(tlsrpt_txt_select(recs, lens, 2, &r, &why),
                   TLSRPT_TXT_FOUND);
  const char *twice[] = {recs[1], recs[1]};
  size_t lens2[] = {lens[1], lens[1]};
  assert_int_equal(tlsrpt_txt_select(twice, lens2, 2, &r, &why),
                   TLSRPT_TXT_UNUSABLE);
  assert_int_equal(tlsrpt_txt_select(recs, lens, 1, &r, &why),
                   TLSRPT_TXT_ABSENT);
}

/* ------------------------------------------------------------------ */
/* Reports                                                              */

/* Adds `ev` `times` times; each is merged (1) or, in a builder for
 * another domain, not (0). */
static void add(smtpout_tlsrpt_report *r, const struct tlsrpt_event *ev,
                int times)
{
  for (int i = 0; i < times; i++) {
    int rc = smtpout_tlsrpt_report_add_event_json(r, line_of(ev),
                                                  strlen(line_of(ev)));
    assert_true(rc == 0 || rc == 1);
  }
}

static struct tlsrpt_event none_event(const char *domain)
{
  struct tlsrpt_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.time_ms = DAY + 1;
  ev.policy_type = TLSRPT_POLICY_NONE;
  ev.policy_domain = domain;
  ev.success = true;
  return ev;
}

static void add_example_day(smtpout_tlsrpt_report *r, bool reverse)
{
  struct tlsrpt_event ok = sts_event(true, TLSRPT_NONE);
  struct tlsrpt_event expired = sts_event(false, TLSRPT_CERTIFICATE_EXPIRED);
  struct tlsrpt_event nostls = sts_event(false, TLSRPT_STARTTLS_NOT_SUPPORTED);
  nostls.receiving_mx_hostname = "mx2.mail.example.com";
  nostls.receiving_ip = "2001:db8::2";
  nostls.receiving_mx_helo = NULL;
  /* DANE for the MX of another domain, reported to example.com. */
  static const char *tlsa[] = {"3 1 1 0123456789ABCDEF"};
  struct tlsrpt_event dane = sts_event(false, TLSRPT_TLSA_INVALID);
  dane.report_domain = "example.com";
  dane.policy_type = TLSRPT_POLICY_TLSA;
  dane.policy_strings = tlsa;
  dane.npolicy_strings = 1;
  dane.policy_domain = "mx.hosting.example";
  dane.mx_hosts = NULL;
  dane.nmx_hosts = 0;
  dane.receiving_mx_hostname = "mx.hosting.example";
  dane.failure_reason_code = "tlsa-mismatch";
  struct tlsrpt_event other = none_event("other.example");
  if (!reverse) {
    add(r, &ok, 5);
    add(r, &expired, 2);
    add(r, &nostls, 1);
    add(r, &dane, 3);
    add(r, &other, 4);
  } else {
    add(r, &other, 4);
    add(r, &dane, 3);
    add(r, &nostls, 1);
    add(r, &expired, 2);
    add(r, &ok, 5);
  }
}

static const char REPORT_EXAMPLE_COM[] =
    "{\"organization-name\":\"Example Sender\","
    "\"date-range\":{\"start-datetime\":\"2024-02-29T00:00:00Z\","
    "\"end-datetime\":\"2024-02-29T23:59:59Z\"},"
    "\"contact-info\":\"tlsrpt@sender.example\","
    "\"report-id\":\"2024-02-29.example.com\","
    "\"policies\":["
    "{\"policy\":{\"policy-type\":\"sts\",\"policy-string\":"
    "[\"version: STSv1\",\"mode: enforce\",\"mx: *.mail.example.com\","
    "\"max_age: 86400\"],\"policy-domain\":\"example.com\","
    "\"mx-host\":[\"*.mail.example.com\"]},"
    "\"summary\":{\"total-successful-session-count\":5,"
    "\"total-failure-session-count\":3},"
    "\"failure-details\":["
    "{\"result-type\":\"certificate-expired\","
    "\"sending-mta-ip\":\"192.0.2.10\","
    "\"receiving-mx-hostname\":\"mx1.mail.example.com\","
    "\"receiving-mx-helo\":\"mx1.mail.example.com ESMTP\","
    "\"receiving-ip\":\"198.51.100.7\",\"failed-session-count\":2},"
    "{\"result-type\":\"starttls-not-supported\","
    "\"sending-mta-ip\":\"192.0.2.10\","
    "\"receiving-mx-hostname\":\"mx2.mail.example.com\","
    "\"receiving-ip\":\"2001:db8::2\",\"failed-session-count\":1}]},"
    "{\"policy\":{\"policy-type\":\"tlsa\",\"policy-string\":"
    "[\"3 1 1 0123456789ABCDEF\"],\"policy-domain\":\"mx.hosting.example\"},"
    "\"summary\":{\"total-successful-session-count\":0,"
    "\"total-failure-session-count\":3},"
    "\"failure-details\":[{\"result-type\":\"tlsa-invalid\","
    "\"sending-mta-ip\":\"192.0.2.10\","
    "\"receiving-mx-hostname\":\"mx.hosting.example\","
    "\"receiving-mx-helo\":\"mx1.mail.example.com ESMTP\","
    "\"receiving-ip\":\"198.51.100.7\",\"failed-session-count\":3,"
    "\"failure-reason-code\":\"tlsa-mismatch\"}]}]}";

static const char *render(smtpout_tlsrpt_report *r, size_t i, const char *id)
{
  const char *json;
  size_t len;
  assert_int_equal(smtpout_tlsrpt_report_render(r, i, "Example Sender",
                                                "tlsrpt@sender.example", id,
                                                &json, &len),
                   0);
  assert_int_equal(strlen(json), len);
  return json;
}

static void test_report_has_exact_counts_and_rfc_names(void **state)
{
  (void)state;
  smtpout_tlsrpt_report *r;
  assert_int_equal(smtpout_tlsrpt_report_new(&r, NULL, DAY), 0);
  add_example_day(r, false);
  assert_int_equal(smtpout_tlsrpt_report_counter(r,
                                                 SMTPOUT_TLSRPT_COUNTER_EVENTS),
                   15);
  assert_int_equal(smtpout_tlsrpt_report_domain_count(r), 2);
  assert_string_equal(smtpout_tlsrpt_report_domain(r, 0), "example.com");
  assert_string_equal(smtpout_tlsrpt_report_domain(r, 1), "other.example");
  assert_null(smtpout_tlsrpt_report_domain(r, 2));
  assert_string_equal(render(r, 0, "2024-02-29.example.com"),
                      REPORT_EXAMPLE_COM);
  assert_string_equal(
      render(r, 1, "x"),
      "{\"organization-name\":\"Example Sender\",\"date-range\":"
      "{\"start-datetime\":\"2024-02-29T00:00:00Z\","
      "\"end-datetime\":\"2024-02-29T23:59:59Z\"},"
      "\"contact-info\":\"tlsrpt@sender.example\",\"report-id\":\"x\","
      "\"policies\":[{\"policy\":{\"policy-type\":\"no-policy-found\","
      "\"policy-domain\":\"other.example\"},\"summary\":"
      "{\"total-successful-session-count\":4,"
      "\"total-failure-session-count\":0},\"failure-details\":[]}]}");
  smtpout_tlsrpt_report_free(r);
}

/* Merged from any number of files in any order: the same report. */
static void test_report_does_not_depend_on_event_order(void **state)
{
  (void)state;
  smtpout_tlsrpt_report *r;
  assert_int_equal(smtpout_tlsrpt_report_new(&r, "Example.COM.", DAY), 0);
  add_example_day(r, true);
  assert_int_equal(smtpout_tlsrpt_report_domain_count(r), 1);
  assert_int_equal(smtpout_tlsrpt_report_counter(
                       r, SMTPOUT_TLSRPT_COUNTER_OTHER_DOMAIN),
                   4);
  assert_string_equal(render(r, 0, "2024-02-29.example.com"),
                      REPORT_EXAMPLE_COM);
  smtpout_tlsrpt_report_free(r);
}

static void test_report_keeps_to_its_day(void **state)
{
  (void)state;
  smtpout_tlsrpt_report *r;
  assert_int_equal(smtpout_tlsrpt_report_new(&r, NULL, DAY), 0);
  struct tlsrpt_event ev = none_event("a.example");
  uint64_t times[] = {DAY - 1, DAY, DAY + MS_PER_DAY - 1, DAY + MS_PER_DAY};
  int want[] = {0, 1, 1, 0};
  for (size_t i = 0; i < 4; i++) {
    ev.time_ms = times[i];
    assert_int_equal(smtpout_tlsrpt_report_add_event_json(
                         r, line_of(&ev), strlen(line_of(&ev))),
                     want[i]);
  }
  assert_int_equal(
      smtpout_tlsrpt_report_counter(r, SMTPOUT_TLSRPT_COUNTER_OTHER_DAY), 2);
  assert_int_equal(
      smtpout_tlsrpt_report_counter(r, SMTPOUT_TLSRPT_COUNTER_EVENTS), 2);
  smtpout_tlsrpt_report_free(r);
}

/* A stream fed in pieces of any size: the same counts as whole lines;
 * corrupt and over-long lines skipped and counted, the rest kept. */
static void test_feed_splits_lines_and_skips_bad_ones(void **state)
{
  (void)state;
  struct tlsrpt_event ok = none_event("a.example");
  struct tlsrpt_event fail = sts_event(false, TLSRPT_DANE_REQUIRED);
  fail.policy_domain = "a.example";
  fail.mx_hosts = NULL;
  fail.nmx_hosts = 0;
  struct buf stream = {0};
  char okline[1024];
  snprintf(okline, sizeof(okline), "%s", line_of(&ok));
  buf_append(&stream, okline, strlen(okline));
  buf_append(&stream, "not json\n", 9);
  buf_append(&stream, "\n\r\n", 3); /* blank lines: not counted */
  const char *f = line_of(&fail);
  buf_append(&stream, f, strlen(f) - 1);
  buf_append(&stream, "\r\n", 2); /* CRLF */
  buf_append(&stream, "{\"v\":1,\"time\":", 14); /* cut by a crash */
  buf_append(&stream, "\n", 1);
  size_t big = SMTPOUT_TLSRPT_EVENT_MAX_BYTES + 100;
  char *pad = malloc(big);
  memset(pad, 'x', big);
  buf_append(&stream, pad, big);
  buf_append(&stream, "\n", 1);
  free(pad);
  buf_append(&stream, okline, strlen(okline) - 1); /* no final LF */

  const size_t chunks[] = {1, 7, 4096, 65536, buf_len(&stream)};
  for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
    smtpout_tlsrpt_report *r;
    assert_int_equal(smtpout_tlsrpt_report_new(&r, NULL, DAY), 0);
    const char *p = (const char *)buf_head(&stream);
    size_t left = buf_len(&stream);
    while (left > 0) {
      size_t n = left < chunks[c] ? left : chunks[c];
      assert_int_equal(smtpout_tlsrpt_report_feed(r, p, n), 0);
      p += n;
      left -= n;
    }
    assert_int_equal(smtpout_tlsrpt_report_feed_eof(r), 0);
    assert_int_equal(
        smtpout_tlsrpt_report_counter(r, SMTPOUT_TLSRPT_COUNTER_EVENTS), 3);
    assert_int_equal(
        smtpout_tlsrpt_report_counter(r, SMTPOUT_TLSRPT_COUNTER_MALFORMED), 3);
    const char *json = render(r, 0, "id");
    assert_non_null(strstr(json, "\"total-successful-session-count\":2,"
                                 "\"total-failure-session-count\":0"));
    assert_non_null(strstr(json, "\"result-type\":\"dane-required\""));
    smtpout_tlsrpt_report_free(r);
  }
  buf_free(&stream);
}

static void test_report_arguments(void **state)
{
  (void)state;
  smtpout_tlsrpt_report *r = NULL;
  assert_int_equal(smtpout_tlsrpt_report_new(&r, NULL, DAY + 1),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_tlsrpt_report_new(NULL, NULL, DAY),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_tlsrpt_report_new(&r, "bad_domain", DAY),
                   SMTPOUT_ERR_BAD_NAME);
  assert_int_equal(smtpout_tlsrpt_report_new(&r, NULL, 0), 0); /* 1970 */
  const char *json;
  size_t len;
  assert_int_equal(smtpout_tlsrpt_report_render(r, 0, "o", "c", "i", &json,
                                                &len),
                   SMTPOUT_ERR_INVALID_ARGUMENT); /* no domain yet */
  struct tlsrpt_event ev = none_event("a.example");
  ev.time_ms = 5;
  add(r, &ev, 1);
  assert_int_equal(smtpout_tlsrpt_report_render(r, 0, "", "c", "i", &json,
                                                &len),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_tlsrpt_report_render(r, 0, "o\n", "c", "i", &json,
                                                &len),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_tlsrpt_report_render(r, 0, "o", "c", "\xff", &json,
                                                &len),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_tlsrpt_report_render(r, 0, "O \"Q\"", "c", "i",
                                                &json, &len),
                   0);
  assert_non_null(strstr(json, "\"organization-name\":\"O \\\"Q\\\"\""));
  assert_non_null(strstr(json, "\"1970-01-01T00:00:00Z\""));
  assert_int_equal(smtpout_tlsrpt_report_add_event_json(r, NULL, 1),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
  assert_int_equal(smtpout_tlsrpt_report_add_event_json(r, "{", 1),
                   SMTPOUT_ERR_SYNTAX);
  assert_int_equal(smtpout_tlsrpt_report_counter(r, 99), 0);
  assert_int_equal(smtpout_tlsrpt_report_counter(NULL, 0), 0);
  smtpout_tlsrpt_report_free(r);
  smtpout_tlsrpt_report_free(NULL);
  /* The last representable day. */
  assert_int_equal(smtpout_tlsrpt_report_new(&r, NULL, 253402214400000ULL), 0);
  smtpout_tlsrpt_report_free(r);
  assert_int_equal(smtpout_tlsrpt_report_new(&r, NULL, 253402300800000ULL),
                   SMTPOUT_ERR_INVALID_ARGUMENT);
}

static void test_type_names(void **state)
{
  (void)state;
  static const char *const all[] = {
    "starttls-not-supported", "certificate-host-mismatch",
    "certificate-expired", "certificate-not-trusted", "validation-failure",
    "tlsa-invalid", "dnssec-invalid", "dane-required",
    "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid",
  };
  for (int i = 0; i < 11; i++) {
    assert_int_equal(tlsrpt_type_parse(all[i], strlen(all[i])), i + 1);
    assert_string_equal(tlsrpt_type_name(i + 1), all[i]);
  }
  assert_null(tlsrpt_type_name(TLSRPT_NONE));
  assert_null(tlsrpt_type_name(TLSRPT_RESULT_COUNT));
  assert_int_equal(tlsrpt_type_parse("none", 4), -1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_event_line_has_the_documented_shape),
    cmocka_unit_test(test_event_round_trip_is_canonical),
    cmocka_unit_test(test_writer_makes_free_text_safe),
    cmocka_unit_test(test_writer_refuses_invalid_events),
    cmocka_unit_test(test_reader_is_strict),
    cmocka_unit_test(test_reader_skips_unknown_keys_and_decodes_escapes),
    cmocka_unit_test(test_reader_bounds_the_line),
    cmocka_unit_test(test_tlsrpt_record),
    cmocka_unit_test(test_report_has_exact_counts_and_rfc_names),
    cmocka_unit_test(test_report_does_not_depend_on_event_order),
    cmocka_unit_test(test_report_keeps_to_its_day),
    cmocka_unit_test(test_feed_splits_lines_and_skips_bad_ones),
    cmocka_unit_test(test_report_arguments),
    cmocka_unit_test(test_type_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
