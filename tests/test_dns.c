/*
 * test_dns.c — the DNS message parser and query encoder (lib/dns.c).
 *
 * Packets are built here by a small encoder (struct pkt), independent of
 * the library's: plain and compressed names, hand-made pointers, loops,
 * oversized counts, and every prefix of a real-looking answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dns_int.h"

/* ---- a packet builder ---- */

struct pkt {
  uint8_t b[70000];
  size_t n;
};

static void u8(struct pkt *p, unsigned v) { p->b[p->n++] = (uint8_t)v; }
static void u16(struct pkt *p, unsigned v)
{
  u8(p, v >> 8);
  u8(p, v & 0xff);
}
static void u32(struct pkt *p, uint32_t v)
{
  u16(p, v >> 16);
  u16(p, v & 0xffff);
}
static void bytes(struct pkt *p, const void *d, size_t n)
{
  memcpy(p->b + p->n, d, n);
  p->n += n;
}

/* Flags: QR RD RA, and the given extra bits of the second flags octet. */
enum { F_AD = 0x20, F_CD = 0x10 };
static void header(struct pkt *p, unsigned id, unsigned flags2,
                   unsigned rcode, unsigned qd, unsigned an, unsigned ns,
                   unsigned ar)
{
  p->n = 0;
  u16(p, id);
  u8(p, 0x81); /* QR, opcode 0, RD */
  u8(p, 0x80 | flags2 | rcode);
  u16(p, qd);
  u16(p, an);
  u16(p, ns);
  u16(p, ar);
}

/* An uncompressed name from text ("." for the root); returns its
 * offset. */
static size_t name(struct pkt *p, const char *text)
{
  size_t at = p->n;
  if (strcmp(text, ".") != 0) {
    const char *s = text;
    while (*s) {
      const char *dot = strchr(s, '.');
      size_t l = dot ? (size_t)(dot - s) : strlen(s);
      u8(p, (unsigned)l);
      bytes(p, s, l);
      s += l;
      if (*s == '.')
        s++;
    }
  }
  u8(p, 0);
  return at;
}

/* Labels from text followed by a pointer to `target`. */
static size_t name_ptr(struct pkt *p, const char *labels, size_t target)
{
  size_t at = p->n;
  const char *s = labels;
  while (*s) {
    const char *dot = strchr(s, '.');
    size_t l = dot ? (size_t)(dot - s) : strlen(s);
    u8(p, (unsigned)l);
    bytes(p, s, l);
    s += l;
    if (*s == '.')
      s++;
  }
  u16(p, 0xc000 | (unsigned)target);
  return at;
}

static void question(struct pkt *p, const char *qname, unsigned qtype)
{
  name(p, qname);
  u16(p, qtype);
  u16(p, DNS_CLASS_IN);
}

/* The fixed part of a record after its owner; returns where RDLENGTH
 * is, for rdlen_fix(). */
static size_t rr_fixed(struct pkt *p, unsigned type, uint32_t ttl)
{
  u16(p, type);
  u16(p, DNS_CLASS_IN);
  u32(p, ttl);
  size_t at = p->n;
  u16(p, 0);
  return at;
}

static void rdlen_fix(struct pkt *p, size_t at)
{
  size_t len = p->n - at - 2;
  p->b[at] = (uint8_t)(len >> 8);
  p->b[at + 1] = (uint8_t)len;
}

/* A record owned by a pointer to `owner`. */
static size_t rr_at(struct pkt *p, size_t owner, unsigned type, uint32_t ttl)
{
  u16(p, 0xc000 | (unsigned)owner);
  return rr_fixed(p, type, ttl);
}

static void rr_a(struct pkt *p, size_t owner, unsigned a, unsigned b,
                 unsigned c, unsigned d)
{
  size_t l = rr_at(p, owner, DNS_TYPE_A, 300);
  u8(p, a);
  u8(p, b);
  u8(p, c);
  u8(p, d);
  rdlen_fix(p, l);
}

static void rr_mx(struct pkt *p, size_t owner, unsigned pref,
                  const char *exchange)
{
  size_t l = rr_at(p, owner, DNS_TYPE_MX, 3600);
  u16(p, pref);
  name(p, exchange);
  rdlen_fix(p, l);
}

static size_t rr_cname(struct pkt *p, size_t owner, const char *target)
{
  size_t l = rr_at(p, owner, DNS_TYPE_CNAME, 300);
  size_t at = name(p, target);
  rdlen_fix(p, l);
  return at;
}

static void rr_soa(struct pkt *p, size_t owner, uint32_t ttl,
                   uint32_t minimum)
{
  size_t l = rr_at(p, owner, DNS_TYPE_SOA, ttl);
  name(p, "ns.example.org");
  name(p, "hostmaster.example.org");
  u32(p, 2024010101);
  u32(p, 3600);
  u32(p, 600);
  u32(p, 86400);
  u32(p, minimum);
  rdlen_fix(p, l);
}

static void rr_rrsig(struct pkt *p, size_t owner, unsigned covered)
{
  size_t l = rr_at(p, owner, DNS_TYPE_RRSIG, 300);
  u16(p, covered);
  u8(p, 13);
  u8(p, 3);
  u32(p, 300);
  u32(p, 2000000000);
  u32(p, 1700000000);
  u16(p, 12345);
  name(p, "example.org");
  for (int i = 0; i < 64; i++)
    u8(p, (unsigned)i);
  rdlen_fix(p, l);
}

/* An OPT record: DO bit, extended rcode bits, and an EDE option when
 * `ede` >= 0. */
static void rr_opt(struct pkt *p, unsigned ext_rcode, int do_bit, int ede)
{
  u8(p, 0);
  u16(p, DNS_TYPE_OPT);
  u16(p, 1232);
  u8(p, ext_rcode);
  u8(p, 0);
  u16(p, do_bit ? 0x8000 : 0);
  size_t l = p->n;
  u16(p, 0);
  if (ede >= 0) {
    u16(p, 15);
    u16(p, 2 + 11);
    u16(p, (unsigned)ede);
    bytes(p, "DNSKEY miss", 11);
  }
  rdlen_fix(p, l);
}

static struct dns_name dn(const char *text)
{
  struct dns_name n;
  if (dns_name_from_text(&n, text) != 0)
    fail_msg("bad test name %s", text);
  return n;
}

static const char *txt(const struct dns_name *n)
{
  static char buf[DNS_NAME_TEXT_MAX];
  assert_true(dns_name_to_text(n, buf, sizeof(buf)) >= 0);
  return buf;
}

static struct dns_msg msg; /* large: keep it off the stack */

static void parse_ok(const struct pkt *p)
{
  int rv = dns_parse(&msg, p->b, p->n);
  if (rv != 0)
    fail_msg("dns_parse: %s", dns_strerror(rv));
}

/* secure.example MX: two MX with compression into the question, their
 * RRSIG, an A record in the additional section and an OPT with DO. */
static void build_mx_answer(struct pkt *p)
{
  header(p, 0x1234, F_AD, 0, 1, 3, 0, 2);
  question(p, "secure.example", DNS_TYPE_MX);
  rr_mx(p, 12, 10, "mx1.secure.example");
  size_t l = rr_at(p, 12, DNS_TYPE_MX, 3600);
  u16(p, 20);
  name_ptr(p, "mx2", 12); /* mx2 + pointer to "secure.example" */
  rdlen_fix(p, l);
  rr_rrsig(p, 12, DNS_TYPE_MX);
  /* additional: mx1's address (not used) and the OPT record */
  name_ptr(p, "mx1", 12);
  size_t al = rr_fixed(p, DNS_TYPE_A, 300);
  u8(p, 192);
  u8(p, 0);
  u8(p, 2);
  u8(p, 1);
  rdlen_fix(p, al);
  rr_opt(p, 0, 1, -1);
}

/* ---- names ---- */

static void test_text_names_convert_to_wire_and_back(void **state)
{
  (void)state;
  struct dns_name n;
  char out[DNS_NAME_TEXT_MAX];
  assert_int_equal(dns_name_from_text(&n, "Mx1.Example.org."), 0);
  assert_int_equal(n.len, 17);
  assert_memory_equal(n.wire, "\3Mx1\7Example\3org", 17);
  assert_int_equal(dns_name_to_text(&n, out, sizeof(out)), 15);
  assert_string_equal(out, "Mx1.Example.org");
  assert_int_equal(dns_name_from_text(&n, "."), 0);
  assert_true(dns_name_is_root(&n));
  assert_string_equal(txt(&n), ".");
  assert_int_equal(dns_name_from_text(&n, "_25._tcp.mx.example"), 0);
  assert_false(dns_name_is_hostname(&n));
}

static void test_text_names_that_are_not_names_are_refused(void **state)
{
  (void)state;
  struct dns_name n;
  char label64[80], long_name[300];
  memset(label64, 'a', 64);
  strcpy(label64 + 64, ".example");
  const char *bad[] = {"", "..", "a..b", ".a", "a b.example", "a\\.b",
                       "tab\t.example", "\x80.example", label64};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (dns_name_from_text(&n, bad[i]) != DNS_ERR_ARGUMENT)
      fail_msg("accepted \"%s\"", bad[i]);
  /* 253 characters of text are 255 octets of wire: the limit. */
  size_t o = 0;
  for (int i = 0; i < 4; i++) {
    size_t l = i < 3 ? 63 : 61;
    memset(long_name + o, 'a' + i, l);
    o += l;
    long_name[o++] = '.';
  }
  long_name[--o] = '\0';
  assert_int_equal(strlen(long_name), 253);
  assert_int_equal(dns_name_from_text(&n, long_name), 0);
  assert_int_equal(n.len, 255);
  strcpy(long_name + o, ".b");
  assert_int_equal(dns_name_from_text(&n, long_name), DNS_ERR_ARGUMENT);
}

static void test_odd_octets_print_escaped(void **state)
{
  (void)state;
  struct dns_name n = {.len = 12,
                       .wire = {3, 'a', '.', 'b', 2, 0, '\\', 3, 'o', 'r',
                                'g', 0}};
  char out[DNS_NAME_TEXT_MAX], small[8];
  assert_int_equal(dns_name_to_text(&n, out, sizeof(out)), 15);
  assert_string_equal(out, "a\\.b.\\000\\\\.org");
  assert_false(dns_name_is_hostname(&n));
  assert_int_equal(dns_name_to_text(&n, small, sizeof(small)),
                   DNS_ERR_ARGUMENT);
  /* The worst case fits DNS_NAME_TEXT_MAX. */
  struct dns_name w = {.len = 255};
  size_t i = 0;
  for (int l = 0; l < 4; l++) {
    unsigned len = l < 3 ? 63 : 61;
    w.wire[i++] = (uint8_t)len;
    memset(w.wire + i, 0xff, len);
    i += len;
  }
  w.wire[i] = 0;
  assert_int_equal(dns_name_to_text(&w, out, sizeof(out)), 250 * 4 + 3);
}

static void test_names_compare_without_case(void **state)
{
  (void)state;
  struct dns_name a = dn("MX1.example.ORG"), b = dn("mx1.EXAMPLE.org."),
                  c = dn("mx2.example.org");
  assert_true(dns_name_equal(&a, &b));
  assert_false(dns_name_equal(&a, &c));
  struct dns_name h = dn("a-b.c0.example"), bad = dn("-a.example"),
                  bad2 = dn("a-.example");
  assert_true(dns_name_is_hostname(&h));
  assert_false(dns_name_is_hostname(&bad));
  assert_false(dns_name_is_hostname(&bad2));
}

/* ---- whole answers ---- */

static void test_mx_answer_with_compression_parses(void **state)
{
  (void)state;
  static struct pkt p;
  build_mx_answer(&p);
  parse_ok(&p);
  assert_int_equal(msg.id, 0x1234);
  assert_true(msg.qr && msg.rd && msg.ra && msg.ad);
  assert_false(msg.tc || msg.aa || msg.cd);
  assert_int_equal(msg.rcode, DNS_RCODE_NOERROR);
  assert_true(msg.has_question);
  assert_string_equal(txt(&msg.qname), "secure.example");
  assert_int_equal(msg.qtype, DNS_TYPE_MX);
  assert_true(msg.has_edns && msg.edns_do);
  assert_int_equal(msg.edns_udp_size, 1232);
  assert_int_equal(msg.ede, -1);
  /* The additional A record is not indexed; the RRSIG is. */
  assert_int_equal(msg.nrr, 3);
  assert_int_equal(msg.nanswer, 3);

  struct dns_name q = dn("Secure.Example");
  assert_int_equal(dns_outcome(&msg, NULL), DNS_OUTCOME_DATA);
  static struct dns_mx_set set;
  assert_int_equal(dns_mx_set(&msg, &q, &set), 2);
  assert_int_equal(set.n, 2);
  assert_false(set.null_mx || set.root_target || set.truncated);
  assert_int_equal(set.mx[0].preference, 10);
  assert_string_equal(txt(&set.mx[0].exchange), "mx1.secure.example");
  assert_int_equal(set.mx[1].preference, 20);
  assert_string_equal(txt(&set.mx[1].exchange), "mx2.secure.example");
  assert_int_equal(set.ttl, 3600);
  assert_true(dns_name_is_hostname(&set.mx[1].exchange));
  /* The RRSIG is there, and ignored by the helpers. */
  size_t pos = 0;
  assert_true(dns_find(&msg, &pos, DNS_SECTION_ANSWER, DNS_TYPE_RRSIG,
                       &q) >= 0);
  struct dns_name other = dn("other.example");
  assert_int_equal(dns_mx_set(&msg, &other, &set), 0);
  /* The answer really answers our query, not a look-alike. */
  assert_true(dns_msg_answers(&msg, 0x1234, &q, DNS_TYPE_MX));
  assert_false(dns_msg_answers(&msg, 0x1235, &q, DNS_TYPE_MX));
  assert_false(dns_msg_answers(&msg, 0x1234, &q, DNS_TYPE_A));
  assert_false(dns_msg_answers(&msg, 0x1234, &other, DNS_TYPE_MX));
}

static void test_null_mx_is_recognised(void **state)
{
  (void)state;
  static struct pkt p;
  static struct dns_mx_set set;
  struct dns_name q = dn("nullmx.example");
  header(&p, 1, F_AD, 0, 1, 1, 0, 0);
  question(&p, "nullmx.example", DNS_TYPE_MX);
  rr_mx(&p, 12, 0, ".");
  parse_ok(&p);
  assert_int_equal(dns_mx_set(&msg, &q, &set), 1);
  assert_true(set.null_mx && set.root_target);
  assert_string_equal(txt(&set.mx[0].exchange), ".");

  /* "." with a preference other than 0, or beside another MX, is not a
   * null MX (RFC 7505 3), but the root target is reported. */
  header(&p, 1, 0, 0, 1, 1, 0, 0);
  question(&p, "nullmx.example", DNS_TYPE_MX);
  rr_mx(&p, 12, 10, ".");
  parse_ok(&p);
  assert_int_equal(dns_mx_set(&msg, &q, &set), 1);
  assert_false(set.null_mx);
  assert_true(set.root_target);
  header(&p, 1, 0, 0, 1, 2, 0, 0);
  question(&p, "nullmx.example", DNS_TYPE_MX);
  rr_mx(&p, 12, 0, ".");
  rr_mx(&p, 12, 10, "mx.example");
  parse_ok(&p);
  assert_int_equal(dns_mx_set(&msg, &q, &set), 2);
  assert_false(set.null_mx);
  assert_true(set.root_target);
}

static void test_many_mx_keep_the_lowest_preferences(void **state)
{
  (void)state;
  static struct pkt p;
  static struct dns_mx_set set;
  struct dns_name q = dn("many.example");
  header(&p, 1, 0, 0, 1, 40, 0, 0);
  question(&p, "many.example", DNS_TYPE_MX);
  for (unsigned i = 0; i < 40; i++) {
    char host[32];
    snprintf(host, sizeof(host), "mx%u.many.example", i);
    rr_mx(&p, 12, 1000 - i * 10, host); /* worst first */
  }
  parse_ok(&p);
  assert_int_equal(dns_mx_set(&msg, &q, &set), 40);
  assert_int_equal(set.n, DNS_MAX_MX);
  assert_true(set.truncated);
  for (size_t i = 0; i < set.n; i++)
    assert_true(set.mx[i].preference <= 1000 - 8 * 10);
}

static void test_cname_chain_is_followed(void **state)
{
  (void)state;
  static struct pkt p;
  struct dns_name q = dn("alias.example"), end;
  header(&p, 7, F_AD, 0, 1, 4, 0, 0);
  question(&p, "alias.example", DNS_TYPE_A);
  size_t t1 = rr_cname(&p, 12, "alias2.example");
  size_t t2 = rr_cname(&p, t1, "mx1.example");
  rr_a(&p, t2, 192, 0, 2, 1);
  rr_a(&p, t2, 192, 0, 2, 2);
  parse_ok(&p);
  unsigned links = 0;
  assert_int_equal(dns_cname_target(&msg, &q, &end, &links), 0);
  assert_int_equal(links, 2);
  assert_string_equal(txt(&end), "mx1.example");
  assert_int_equal(dns_outcome(&msg, &end), DNS_OUTCOME_DATA);
  struct dns_addr a[4];
  int more = -1;
  assert_int_equal(dns_addresses(&msg, &q, DNS_TYPE_A, a, 4, &more), 2);
  assert_int_equal(more, 0);
  assert_int_equal(a[0].family, 4);
  assert_memory_equal(a[0].addr, "\xc0\x00\x02\x01", 4);
  assert_memory_equal(a[1].addr, "\xc0\x00\x02\x02", 4);
  assert_int_equal(dns_addresses(&msg, &q, DNS_TYPE_A, a, 1, &more), 1);
  assert_int_equal(more, 1);
  assert_int_equal(dns_addresses(&msg, &q, DNS_TYPE_AAAA, a, 4, NULL), 0);
  assert_int_equal(dns_addresses(&msg, &q, DNS_TYPE_MX, a, 4, NULL),
                   DNS_ERR_ARGUMENT);
  /* Asking for the CNAME itself does not follow it. */
  header(&p, 7, 0, 0, 1, 1, 0, 0);
  question(&p, "alias.example", DNS_TYPE_CNAME);
  rr_cname(&p, 12, "alias2.example");
  parse_ok(&p);
  assert_int_equal(dns_outcome(&msg, &end), DNS_OUTCOME_DATA);
  assert_string_equal(txt(&end), "alias.example");
}

/* A chain of `n` CNAMEs c0 -> c1 -> ... -> cn, then an A record. */
static void build_chain(struct pkt *p, unsigned n, int loop)
{
  header(p, 9, 0, 0, 1, (n + 1) & 0xffff, 0, 0);
  question(p, "c0.example", DNS_TYPE_A);
  size_t owner = 12;
  for (unsigned i = 1; i <= n; i++) {
    char t[32];
    snprintf(t, sizeof(t), "c%u.example", loop && i == n ? 0 : i);
    owner = rr_cname(p, owner, t);
  }
  rr_a(p, owner, 192, 0, 2, 9);
}

static void test_cname_chains_are_bounded_and_loops_refused(void **state)
{
  (void)state;
  static struct pkt p;
  struct dns_name q = dn("c0.example"), end;
  struct dns_addr a[2];
  build_chain(&p, DNS_MAX_CNAME_CHAIN, 0);
  parse_ok(&p);
  assert_int_equal(dns_addresses(&msg, &q, DNS_TYPE_A, a, 2, NULL), 1);
  build_chain(&p, DNS_MAX_CNAME_CHAIN + 1, 0);
  parse_ok(&p);
  assert_int_equal(dns_cname_target(&msg, &q, &end, NULL), DNS_ERR_CNAME);
  assert_int_equal(dns_addresses(&msg, &q, DNS_TYPE_A, a, 2, NULL),
                   DNS_ERR_CNAME);
  assert_int_equal(dns_outcome(&msg, NULL), DNS_ERR_CNAME);
  build_chain(&p, 3, 1); /* c0 -> c1 -> c2 -> c0 */
  parse_ok(&p);
  assert_int_equal(dns_cname_target(&msg, &q, &end, NULL), DNS_ERR_CNAME);
  /* A name with two different CNAMEs is ambiguous; the same twice is
   * only redundant. */
  header(&p, 9, 0, 0, 1, 2, 0, 0);
  question(&p, "c0.example", DNS_TYPE_A);
  rr_cname(&p, 12, "x.example");
  rr_cname(&p, 12, "y.example");
  parse_ok(&p);
  assert_int_equal(dns_cname_target(&msg, &q, &end, NULL), DNS_ERR_CNAME);
  header(&p, 9, 0, 0, 1, 2, 0, 0);
  question(&p, "c0.example", DNS_TYPE_A);
  rr_cname(&p, 12, "x.example");
  rr_cname(&p, 12, "X.example");
  parse_ok(&p);
  assert_int_equal(dns_cname_target(&msg, &q, &end, NULL), 0);
  assert_string_equal(txt(&end), "x.example");
}

static void test_negative_answers_and_their_ttl(void **state)
{
  (void)state;
  static struct pkt p;
  uint32_t ttl = 0;
  /* NODATA: NOERROR, SOA in the authority section. */
  header(&p, 2, F_AD, 0, 1, 0, 2, 0);
  question(&p, "implicit.example", DNS_TYPE_MX);
  u16(&p, 0xc000 | 21); /* owner "example", inside the question name */
  size_t l = rr_fixed(&p, DNS_TYPE_SOA, 3600);
  name(&p, "ns.example");
  name(&p, "hostmaster.example");
  for (int i = 0; i < 4; i++)
    u32(&p, 1000);
  u32(&p, 300);
  rdlen_fix(&p, l);
  rr_rrsig(&p, 21, DNS_TYPE_SOA);
  parse_ok(&p);
  assert_int_equal(msg.nanswer, 0);
  assert_int_equal(msg.nrr, 2);
  assert_int_equal(dns_outcome(&msg, NULL), DNS_OUTCOME_NODATA);
  assert_int_equal(dns_negative_ttl(&msg, &ttl), 0);
  assert_int_equal(ttl, 300);
  struct dns_soa soa;
  size_t pos = 0;
  int i = dns_find(&msg, &pos, DNS_SECTION_AUTHORITY, DNS_TYPE_SOA, NULL);
  assert_true(i >= 0);
  assert_int_equal(dns_rr_soa(&msg, &msg.rr[i], &soa), 0);
  assert_string_equal(txt(&soa.mname), "ns.example");
  assert_int_equal(soa.minimum, 300);
  /* An answer-section search does not see authority records. */
  pos = 0;
  assert_int_equal(
      dns_find(&msg, &pos, DNS_SECTION_ANSWER, DNS_TYPE_SOA, NULL), -1);

  /* NXDOMAIN, the SOA's TTL lower than its MINIMUM. */
  header(&p, 3, F_AD, DNS_RCODE_NXDOMAIN, 1, 0, 1, 0);
  question(&p, "nope.example", DNS_TYPE_MX);
  rr_soa(&p, 17, 60, 3600);
  parse_ok(&p);
  assert_int_equal(dns_outcome(&msg, NULL), DNS_OUTCOME_NXDOMAIN);
  assert_int_equal(dns_negative_ttl(&msg, &ttl), 0);
  assert_int_equal(ttl, 60);

  /* NOERROR without SOA is still NODATA, without a negative TTL. */
  header(&p, 4, 0, 0, 1, 0, 0, 0);
  question(&p, "x.example", DNS_TYPE_TLSA);
  parse_ok(&p);
  assert_int_equal(dns_outcome(&msg, NULL), DNS_OUTCOME_NODATA);
  assert_int_equal(dns_negative_ttl(&msg, &ttl), -1);

  /* A CNAME to a name with no data: NODATA at the target. */
  header(&p, 5, 0, 0, 1, 1, 0, 0);
  question(&p, "alias.example", DNS_TYPE_MX);
  rr_cname(&p, 12, "target.example");
  parse_ok(&p);
  struct dns_name end;
  assert_int_equal(dns_outcome(&msg, &end), DNS_OUTCOME_NODATA);
  assert_string_equal(txt(&end), "target.example");
}

static void test_servfail_carries_the_extended_error(void **state)
{
  (void)state;
  static struct pkt p;
  header(&p, 6, 0, DNS_RCODE_SERVFAIL, 1, 0, 0, 1);
  question(&p, "_25._tcp.mx.bogus.example", DNS_TYPE_TLSA);
  rr_opt(&p, 0, 1, 9); /* RFC 8914: DNSKEY Missing */
  parse_ok(&p);
  assert_int_equal(msg.rcode, DNS_RCODE_SERVFAIL);
  assert_int_equal(msg.ede, 9);
  assert_int_equal(dns_outcome(&msg, NULL), DNS_OUTCOME_FAILED);
  /* The extended rcode bits (RFC 6891 6.1.3): BADVERS is 16. */
  header(&p, 6, 0, 0, 1, 0, 0, 1);
  question(&p, "x.example", DNS_TYPE_A);
  rr_opt(&p, 1, 0, -1);
  parse_ok(&p);
  assert_int_equal(msg.rcode, 16);
  assert_false(msg.edns_do);
  assert_int_equal(dns_outcome(&msg, NULL), DNS_OUTCOME_FAILED);
  /* REFUSED */
  header(&p, 6, 0, DNS_RCODE_REFUSED, 1, 0, 0, 0);
  question(&p, "x.example", DNS_TYPE_A);
  parse_ok(&p);
  assert_int_equal(dns_outcome(&msg, NULL), DNS_OUTCOME_FAILED);
}

static void test_tlsa_txt_aaaa_records_are_read(void **state)
{
  (void)state;
  static struct pkt p;
  header(&p, 8, F_AD, 0, 1, 5, 0, 0);
  question(&p, "_25._tcp.mx1.example", DNS_TYPE_TLSA);
  uint8_t digest[32];
  for (int i = 0; i < 32; i++)
    digest[i] = (uint8_t)(0xa0 + i);
  size_t l = rr_at(&p, 12, DNS_TYPE_TLSA, 300);
  u8(&p, 3);
  u8(&p, 1);
  u8(&p, 1);
  bytes(&p, digest, 32);
  rdlen_fix(&p, l);
  l = rr_at(&p, 12, DNS_TYPE_TLSA, 300);
  u8(&p, 2);
  u8(&p, 0);
  u8(&p, 0); /* empty data: legal on the wire */
  rdlen_fix(&p, l);
  rr_rrsig(&p, 12, DNS_TYPE_TLSA);
  /* TXT and AAAA under other owners, same packet. */
  size_t owner = p.n;
  name(&p, "_mta-sts.example");
  l = rr_fixed(&p, DNS_TYPE_TXT, 300);
  u8(&p, 8);
  bytes(&p, "v=STSv1;", 8);
  u8(&p, 0);
  u8(&p, 9);
  bytes(&p, " id=2024;", 9);
  rdlen_fix(&p, l);
  l = rr_at(&p, owner + 9, DNS_TYPE_AAAA, 300); /* "example" */
  bytes(&p, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\1", 16);
  rdlen_fix(&p, l);
  parse_ok(&p);

  struct dns_name q = dn("_25._TCP.mx1.example");
  struct dns_tlsa t[4];
  int more = -1;
  assert_int_equal(dns_tlsa_set(&msg, &q, t, 4, &more), 2);
  assert_int_equal(more, 0);
  assert_int_equal(t[0].usage, 3);
  assert_int_equal(t[0].selector, 1);
  assert_int_equal(t[0].mtype, 1);
  assert_int_equal(t[0].len, 32);
  assert_memory_equal(t[0].data, digest, 32);
  assert_int_equal(t[1].usage, 2);
  assert_int_equal(t[1].len, 0);

  struct dns_name sts = dn("_mta-sts.example");
  size_t pos = 0;
  int i = dns_find(&msg, &pos, DNS_SECTION_ANSWER, DNS_TYPE_TXT, &sts);
  assert_true(i >= 0);
  char text[64], tiny[8];
  assert_int_equal(dns_rr_txt(&msg, &msg.rr[i], text, sizeof(text)), 17);
  assert_string_equal(text, "v=STSv1; id=2024;");
  assert_int_equal(dns_rr_txt(&msg, &msg.rr[i], tiny, sizeof(tiny)),
                   DNS_ERR_ARGUMENT);
  assert_int_equal(dns_rr_a(&msg, &msg.rr[i], (uint8_t[4]){0}),
                   DNS_ERR_ARGUMENT);

  struct dns_name ex = dn("example");
  struct dns_addr a[2];
  assert_int_equal(dns_addresses(&msg, &ex, DNS_TYPE_AAAA, a, 2, NULL), 1);
  assert_int_equal(a[0].family, 6);
  assert_memory_equal(a[0].addr, "\x20\x01\x0d\xb8", 4);
}

static void test_ttl_with_the_top_bit_reads_as_zero(void **state)
{
  (void)state;
  static struct pkt p;
  header(&p, 1, 0, 0, 1, 1, 0, 0);
  question(&p, "x.example", DNS_TYPE_A);
  size_t l = rr_at(&p, 12, DNS_TYPE_A, 0x80000001u);
  u32(&p, 0x7f000001);
  rdlen_fix(&p, l);
  parse_ok(&p);
  assert_int_equal(msg.rr[0].ttl, 0); /* RFC 2181 8 */
}

static void test_records_of_other_classes_are_skipped(void **state)
{
  (void)state;
  static struct pkt p;
  header(&p, 1, 0, 0, 1, 1, 0, 0);
  question(&p, "x.example", DNS_TYPE_A);
  u16(&p, 0xc00c);
  u16(&p, DNS_TYPE_A);
  u16(&p, 3); /* CHAOS */
  u32(&p, 60);
  u16(&p, 4);
  u32(&p, 0x7f000001);
  parse_ok(&p);
  struct dns_name q = dn("x.example");
  struct dns_addr a[1];
  assert_int_equal(dns_addresses(&msg, &q, DNS_TYPE_A, a, 1, NULL), 0);
  assert_int_equal(dns_outcome(&msg, NULL), DNS_OUTCOME_NODATA);
}

/* ---- malformed packets ---- */

static void expect(const struct pkt *p, int want)
{
  int rv = dns_parse(&msg, p->b, p->n);
  if (rv != want)
    fail_msg("dns_parse: got %d (%s), want %d (%s)", rv, dns_strerror(rv),
             want, dns_strerror(want));
}

static void test_every_prefix_of_an_answer_is_an_error(void **state)
{
  (void)state;
  static struct pkt p;
  build_mx_answer(&p);
  expect(&p, 0);
  for (size_t n = 0; n < p.n; n++) {
    int rv = dns_parse(&msg, p.b, n);
    if (rv >= 0)
      fail_msg("a %zu-octet prefix of %zu parsed", n, p.n);
  }
  /* Octets after the last section are ignored. */
  p.b[p.n++] = 0xff;
  expect(&p, 0);
}

static void test_compression_pointers_must_point_backwards(void **state)
{
  (void)state;
  static struct pkt p;
  /* The question name is a pointer to itself. */
  header(&p, 1, 0, 0, 1, 0, 0, 0);
  u16(&p, 0xc00c);
  u16(&p, 1);
  u16(&p, 1);
  expect(&p, DNS_ERR_NAME);
  /* A pointer forwards, to a valid name further on. */
  header(&p, 1, 0, 0, 1, 0, 0, 0);
  u16(&p, 0xc000 | 18);
  u16(&p, 1);
  u16(&p, 1);
  name(&p, "x.example");
  expect(&p, DNS_ERR_NAME);
  /* A loop through a label: "a" at 27 then a pointer back to 27, each
   * pointer before itself. */
  header(&p, 1, 0, 0, 1, 1, 0, 0);
  question(&p, "x.example", DNS_TYPE_A);
  size_t at = p.n;
  assert_int_equal(at, 27);
  u8(&p, 1);
  u8(&p, 'a');
  u16(&p, 0xc000 | 27);
  size_t l = rr_fixed(&p, DNS_TYPE_A, 1);
  u32(&p, 1);
  rdlen_fix(&p, l);
  expect(&p, DNS_ERR_NAME);
  /* A pointer beyond the end of the packet. */
  header(&p, 1, 0, 0, 1, 0, 0, 0);
  u16(&p, 0xc000 | 0x3fff);
  u16(&p, 1);
  u16(&p, 1);
  expect(&p, DNS_ERR_NAME);
  /* A pointer cut in half by the end of the packet. */
  header(&p, 1, 0, 0, 1, 0, 0, 0);
  u8(&p, 0xc0);
  expect(&p, DNS_ERR_TRUNCATED);
}

static void test_pointer_chains_are_bounded(void **state)
{
  (void)state;
  static struct pkt p;
  /* Record owners each a pointer to the previous owner, which is a
   * pointer too: backwards every time, 70 deep at the end. */
  header(&p, 1, 0, 0, 1, 70, 0, 0);
  question(&p, "x.example", DNS_TYPE_A);
  size_t prev = 12;
  for (int i = 0; i < 70; i++) {
    size_t here = p.n;
    u16(&p, 0xc000 | (unsigned)prev);
    size_t l = rr_fixed(&p, DNS_TYPE_A, 1);
    u32(&p, 1);
    rdlen_fix(&p, l);
    prev = here;
  }
  expect(&p, DNS_ERR_NAME);
  /* 60 deep is fine. */
  header(&p, 1, 0, 0, 1, 60, 0, 0);
  question(&p, "x.example", DNS_TYPE_A);
  prev = 12;
  for (int i = 0; i < 60; i++) {
    size_t here = p.n;
    u16(&p, 0xc000 | (unsigned)prev);
    size_t l = rr_fixed(&p, DNS_TYPE_A, 1);
    u32(&p, 1);
    rdlen_fix(&p, l);
    prev = here;
  }
  expect(&p, 0);
  struct dns_name q = dn("x.example");
  struct dns_addr a[64];
  assert_int_equal(dns_addresses(&msg, &q, DNS_TYPE_A, a, 64, NULL), 60);
}

static void test_names_over_255_octets_are_refused(void **state)
{
  (void)state;
  static struct pkt p;
  /* Four 63-octet labels and the root: 257 octets, built with pointers
   * from a 127-octet name in the question. */
  header(&p, 1, 0, 0, 1, 1, 0, 0);
  char lab[64];
  memset(lab, 'a', 63);
  lab[63] = '\0';
  char two[140];
  snprintf(two, sizeof(two), "%s.%s", lab, lab);
  question(&p, two, DNS_TYPE_A);
  name_ptr(&p, two, 12); /* 128 octets, then the 129 of the question */
  size_t l = rr_fixed(&p, DNS_TYPE_A, 1);
  u32(&p, 1);
  rdlen_fix(&p, l);
  expect(&p, DNS_ERR_NAME);
  /* ... while three labels and a 61-octet one make exactly 255. */
  header(&p, 1, 0, 0, 1, 1, 0, 0);
  question(&p, two, DNS_TYPE_A);
  char last[80];
  memset(last, 'b', 61);
  last[61] = '\0';
  memcpy(two + 64, last, 62);
  name_ptr(&p, two, 12);
  l = rr_fixed(&p, DNS_TYPE_A, 1);
  u32(&p, 1);
  rdlen_fix(&p, l);
  expect(&p, 0);
  struct dns_name owner;
  dns_rr_owner(&msg, &msg.rr[0], &owner);
  assert_int_equal(owner.len, 255);
}

static void test_extended_label_types_are_refused(void **state)
{
  (void)state;
  static struct pkt p;
  for (unsigned t = 0x40; t <= 0x80; t += 0x40) {
    header(&p, 1, 0, 0, 1, 0, 0, 0);
    u8(&p, t | 1);
    u8(&p, 'a');
    u8(&p, 0);
    u16(&p, 1);
    u16(&p, 1);
    expect(&p, DNS_ERR_NAME);
  }
}

static void test_oversized_counts_are_errors(void **state)
{
  (void)state;
  static struct pkt p;
  /* The header claims 65535 answers; one is there. */
  header(&p, 1, 0, 0, 1, 65535, 65535, 65535);
  question(&p, "x.example", DNS_TYPE_A);
  rr_a(&p, 12, 127, 0, 0, 1);
  expect(&p, DNS_ERR_TRUNCATED);
  /* Two questions. */
  header(&p, 1, 0, 0, 2, 0, 0, 0);
  question(&p, "x.example", DNS_TYPE_A);
  question(&p, "y.example", DNS_TYPE_A);
  expect(&p, DNS_ERR_TOO_MANY);
  /* More real records than the index holds: refused, not truncated. */
  header(&p, 1, 0, 0, 1, DNS_MAX_RRS + 1, 0, 0);
  question(&p, "x.example", DNS_TYPE_A);
  for (int i = 0; i <= DNS_MAX_RRS; i++)
    rr_a(&p, 12, 127, 0, (unsigned)i >> 8, (unsigned)i & 0xff);
  expect(&p, DNS_ERR_TOO_MANY);
  /* Exactly as many is fine, and the additional section is not
   * indexed, so it may hold more. */
  header(&p, 1, 0, 0, 1, DNS_MAX_RRS, 0, 300);
  question(&p, "x.example", DNS_TYPE_A);
  for (int i = 0; i < DNS_MAX_RRS + 300; i++)
    rr_a(&p, 12, 127, 0, (unsigned)i >> 8, (unsigned)i & 0xff);
  expect(&p, 0);
  assert_int_equal(msg.nrr, DNS_MAX_RRS);
  /* RDLENGTH past the end. */
  header(&p, 1, 0, 0, 1, 1, 0, 0);
  question(&p, "x.example", DNS_TYPE_A);
  u16(&p, 0xc00c);
  u16(&p, DNS_TYPE_A);
  u16(&p, 1);
  u32(&p, 1);
  u16(&p, 0xffff);
  u32(&p, 1);
  expect(&p, DNS_ERR_TRUNCATED);
  /* Over 64 KiB. */
  static uint8_t big[70000];
  memcpy(big, p.b, p.n);
  assert_int_equal(dns_parse(&msg, big, sizeof(big)), DNS_ERR_TOO_MANY);
}

static void test_rdata_of_the_wrong_shape_is_refused(void **state)
{
  (void)state;
  static struct pkt p;
  struct {
    unsigned type;
    const char *rdata;
    size_t len;
  } cases[] = {
      {DNS_TYPE_A, "\1\2\3\4\5", 5},
      {DNS_TYPE_A, "\1\2\3", 3},
      {DNS_TYPE_AAAA, "\1\2\3\4", 4},
      {DNS_TYPE_MX, "\0\1", 2},                  /* no exchange */
      {DNS_TYPE_MX, "\0\1\1x\0\0", 6},           /* trailing octet */
      {DNS_TYPE_MX, "\0\1\2x", 4},               /* name runs out */
      {DNS_TYPE_CNAME, "\1x\0\7", 4},            /* trailing octet */
      {DNS_TYPE_TXT, "", 0},                     /* no string */
      {DNS_TYPE_TXT, "\5abc", 4},                /* string overruns */
      {DNS_TYPE_TLSA, "\3\1", 2},                /* no matching type */
      {DNS_TYPE_SOA, "\0\0\0\0\0\0", 6},         /* fields missing */
      {DNS_TYPE_SOA, "\0", 1},                   /* RNAME missing */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    header(&p, 1, 0, 0, 1, 1, 0, 0);
    question(&p, "x.example", DNS_TYPE_A);
    size_t l = rr_at(&p, 12, cases[i].type, 1);
    bytes(&p, cases[i].rdata, cases[i].len);
    rdlen_fix(&p, l);
    /* Another record after it, so a name that runs out of its RDATA
     * would find octets to read. */
    rr_a(&p, 12, 1, 2, 3, 4);
    p.b[7] = 2;
    int rv = dns_parse(&msg, p.b, p.n);
    if (rv != DNS_ERR_RDATA)
      fail_msg("case %zu (type %u): got %d (%s)", i, cases[i].type, rv,
               dns_strerror(rv));
  }
  /* Unknown types are opaque: any RDATA goes. */
  header(&p, 1, 0, 0, 1, 1, 0, 0);
  question(&p, "x.example", DNS_TYPE_A);
  size_t l = rr_at(&p, 12, 65280, 1);
  bytes(&p, "\xff\xc0", 2);
  rdlen_fix(&p, l);
  expect(&p, 0);
}

static void test_opt_records_follow_the_rules(void **state)
{
  (void)state;
  static struct pkt p;
  /* Two OPT records. */
  header(&p, 1, 0, 0, 1, 0, 0, 2);
  question(&p, "x.example", DNS_TYPE_A);
  rr_opt(&p, 0, 1, -1);
  rr_opt(&p, 0, 1, -1);
  expect(&p, DNS_ERR_FORMAT);
  /* OPT in the answer section. */
  header(&p, 1, 0, 0, 1, 1, 0, 0);
  question(&p, "x.example", DNS_TYPE_A);
  rr_opt(&p, 0, 1, -1);
  expect(&p, DNS_ERR_FORMAT);
  /* OPT owned by a name other than the root. */
  header(&p, 1, 0, 0, 1, 0, 0, 1);
  question(&p, "x.example", DNS_TYPE_A);
  size_t l = rr_at(&p, 12, DNS_TYPE_OPT, 0);
  rdlen_fix(&p, l);
  expect(&p, DNS_ERR_FORMAT);
  /* An option longer than the RDATA. */
  header(&p, 1, 0, 0, 1, 0, 0, 1);
  question(&p, "x.example", DNS_TYPE_A);
  u8(&p, 0);
  l = rr_fixed(&p, DNS_TYPE_OPT, 0);
  u16(&p, 15);
  u16(&p, 9); /* 9 octets announced, 2 present */
  u16(&p, 0);
  rdlen_fix(&p, l);
  expect(&p, DNS_ERR_FORMAT);
  /* An EDE option without its INFO-CODE. */
  header(&p, 1, 0, 0, 1, 0, 0, 1);
  question(&p, "x.example", DNS_TYPE_A);
  u8(&p, 0);
  l = rr_fixed(&p, DNS_TYPE_OPT, 0);
  u16(&p, 15);
  u16(&p, 1);
  u8(&p, 0);
  rdlen_fix(&p, l);
  expect(&p, DNS_ERR_FORMAT);
  /* Unknown options are skipped. */
  header(&p, 1, 0, 0, 1, 0, 0, 1);
  question(&p, "x.example", DNS_TYPE_A);
  u8(&p, 0);
  l = rr_fixed(&p, DNS_TYPE_OPT, 0);
  u16(&p, 65001);
  u16(&p, 3);
  bytes(&p, "abc", 3);
  rdlen_fix(&p, l);
  expect(&p, 0);
  assert_true(msg.has_edns);
  assert_int_equal(msg.ede, -1);
}

static void test_queries_and_odd_headers_are_not_responses(void **state)
{
  (void)state;
  static struct pkt p;
  header(&p, 1, 0, 0, 1, 0, 0, 0);
  question(&p, "x.example", DNS_TYPE_A);
  p.b[2] &= 0x7f; /* QR clear: a query */
  expect(&p, DNS_ERR_NOT_RESPONSE);
  p.b[2] = 0x80 | (5 << 3); /* UPDATE */
  expect(&p, DNS_ERR_NOT_RESPONSE);
  header(&p, 1, 0, 0, 0, 0, 0, 0);
  expect(&p, 0);
  assert_false(msg.has_question);
  assert_int_equal(dns_outcome(&msg, NULL), DNS_OUTCOME_FAILED);
}

static void test_truncated_response_is_read_to_its_question(void **state)
{
  (void)state;
  static struct pkt p;
  build_mx_answer(&p);
  p.b[2] |= 0x02; /* TC */
  p.n = 12 + 16 + 4 + 5; /* and cut inside the answer */
  expect(&p, 0);
  assert_true(msg.tc);
  assert_true(msg.has_question);
  assert_int_equal(msg.nrr, 0);
  assert_int_equal(dns_outcome(&msg, NULL), DNS_OUTCOME_FAILED);
}

/* A deterministic mutation run: any octet of a valid answer changed, cut
 * or duplicated must give 0 or an error, never a crash or an
 * out-of-bounds read (the sanitizer build checks that). */
static void test_mutated_answers_never_crash(void **state)
{
  (void)state;
  static struct pkt good, p;
  static struct dns_mx_set set;
  build_mx_answer(&good);
  uint64_t x = 0x9e3779b97f4a7c15u;
  struct dns_name q = dn("secure.example");
  unsigned parsed = 0;
  for (int iter = 0; iter < 200000; iter++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p = good;
    unsigned k = 1 + (unsigned)(x >> 60) % 4;
    for (unsigned j = 0; j < k; j++) {
      size_t at = (size_t)((x >> (8 * j)) % p.n);
      p.b[at] = (uint8_t)(x >> (8 * j + 32));
    }
    if (x & 1)
      p.n -= (size_t)(x >> 20) % 8;
    if (dns_parse(&msg, p.b, p.n) != 0)
      continue;
    parsed++;
    dns_outcome(&msg, NULL);
    dns_mx_set(&msg, &q, &set);
    for (size_t i = 0; i < msg.nrr; i++) {
      struct dns_name o;
      dns_rr_owner(&msg, &msg.rr[i], &o);
      assert_true(o.len >= 1);
      assert_true((size_t)msg.rr[i].rdata_off + msg.rr[i].rdlen <= p.n);
    }
  }
  assert_true(parsed > 0);
}

/* ---- queries ---- */

static void test_query_encoder_writes_what_a_server_expects(void **state)
{
  (void)state;
  uint8_t q[DNS_QUERY_MAX];
  struct dns_name n = dn("_25._tcp.mx1.secure.test");
  int len = dns_query_encode(q, sizeof(q), 0xbeef, &n, DNS_TYPE_TLSA,
                             DNS_QUERY_RD | DNS_QUERY_DO | DNS_QUERY_AD);
  assert_int_equal(len, 12 + n.len + 4 + 11);
  static const uint8_t head[] = {0xbe, 0xef, 0x01, 0x20, 0, 1, 0, 0,
                                 0,    0,    0,    1};
  assert_memory_equal(q, head, sizeof(head));
  assert_memory_equal(q + 12, n.wire, n.len);
  static const uint8_t tail[] = {0, 52, 0, 1, /* TLSA IN */
                                 0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0,
                                 0};
  assert_memory_equal(q + 12 + n.len, tail, sizeof(tail));

  /* Read back as a response (QR set), it answers itself. */
  q[2] |= 0x80;
  assert_int_equal(dns_parse(&msg, q, (size_t)len), 0);
  assert_true(msg.has_edns && msg.edns_do);
  assert_true(dns_msg_answers(&msg, 0xbeef, &n, DNS_TYPE_TLSA));

  /* No EDNS, checking disabled. */
  len = dns_query_encode(q, sizeof(q), 1, &n, DNS_TYPE_A, DNS_QUERY_CD);
  assert_int_equal(len, 12 + n.len + 4);
  assert_int_equal(q[2], 0);
  assert_int_equal(q[3], 0x10);
  assert_int_equal(q[11], 0);
  /* Too small a buffer, or a name that is not one. */
  assert_int_equal(dns_query_encode(q, 20, 1, &n, DNS_TYPE_A, 0),
                   DNS_ERR_ARGUMENT);
  struct dns_name broken = {.len = 2, .wire = {1, 'a'}};
  assert_int_equal(dns_query_encode(q, sizeof(q), 1, &broken, 1, 0),
                   DNS_ERR_ARGUMENT);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_text_names_convert_to_wire_and_back),
      cmocka_unit_test(test_text_names_that_are_not_names_are_refused),
      cmocka_unit_test(test_odd_octets_print_escaped),
      cmocka_unit_test(test_names_compare_without_case),
      cmocka_unit_test(test_mx_answer_with_compression_parses),
      cmocka_unit_test(test_null_mx_is_recognised),
      cmocka_unit_test(test_many_mx_keep_the_lowest_preferences),
      cmocka_unit_test(test_cname_chain_is_followed),
      cmocka_unit_test(test_cname_chains_are_bounded_and_loops_refused),
      cmocka_unit_test(test_negative_answers_and_their_ttl),
      cmocka_unit_test(test_servfail_carries_the_extended_error),
      cmocka_unit_test(test_tlsa_txt_aaaa_records_are_read),
      cmocka_unit_test(test_ttl_with_the_top_bit_reads_as_zero),
      cmocka_unit_test(test_records_of_other_classes_are_skipped),
      cmocka_unit_test(test_every_prefix_of_an_answer_is_an_error),
      cmocka_unit_test(test_compression_pointers_must_point_backwards),
      cmocka_unit_test(test_pointer_chains_are_bounded),
      cmocka_unit_test(test_names_over_255_octets_are_refused),
      cmocka_unit_test(test_extended_label_types_are_refused),
      cmocka_unit_test(test_oversized_counts_are_errors),
      cmocka_unit_test(test_rdata_of_the_wrong_shape_is_refused),
      cmocka_unit_test(test_opt_records_follow_the_rules),
      cmocka_unit_test(test_queries_and_odd_headers_are_not_responses),
      cmocka_unit_test(test_truncated_response_is_read_to_its_question),
      cmocka_unit_test(test_mutated_answers_never_crash),
      cmocka_unit_test(test_query_encoder_writes_what_a_server_expects),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
