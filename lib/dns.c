/*
 * dns.c — see dns_int.h.
 *
 * The packet is hostile until proven otherwise: every read is checked
 * against its length before it happens, names are decompressed into a
 * fixed buffer with pointers that may only point backwards, and every
 * count the header claims is only an upper bound on a loop that also
 * stops at the end of the packet or at DNS_MAX_RRS.
 */
#include <string.h>

#include "dns_int.h"

const char *dns_strerror(int error)
{
  switch (error) {
  case 0: return "success";
  case DNS_ERR_TRUNCATED: return "DNS message truncated";
  case DNS_ERR_NAME: return "malformed domain name in DNS message";
  case DNS_ERR_TOO_MANY: return "too many records in DNS message";
  case DNS_ERR_RDATA: return "malformed record data in DNS message";
  case DNS_ERR_NOT_RESPONSE: return "DNS message is not a response to a query";
  case DNS_ERR_FORMAT: return "malformed EDNS0 data in DNS message";
  case DNS_ERR_CNAME: return "CNAME chain too long, looping or ambiguous";
  case DNS_ERR_ARGUMENT: return "invalid domain name or buffer";
  default: return "unknown DNS error";
  }
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint32_t get32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

/* ---- names ---- */

/*
 * Reads the name at `off` into `out`, following compression pointers
 * (RFC 1035 4.1.4).  *end is the offset just past the name where it
 * starts (after its first pointer, or its root label).  A pointer must
 * point before the start of the run of labels it ends (a name written
 * earlier, as every compressor does): the runs then start ever earlier,
 * so every name ends whatever the packet says, and DNS_MAX_POINTERS is
 * only a second fence.  (Pointing merely before the pointer itself is not
 * enough: a run at 10 ending in a pointer at 12 back to 10 loops.)  The
 * label types 01 and 10 (RFC 6891 5, extended labels) are refused.
 */
static int read_name(const uint8_t *pkt, size_t len, size_t off,
                     struct dns_name *out, size_t *end)
{
  size_t pos = off, run = off, n = 0;
  unsigned pointers = 0;
  int jumped = 0;
  for (;;) {
    if (pos >= len)
      return DNS_ERR_TRUNCATED;
    uint8_t b = pkt[pos];
    if ((b & 0xc0) == 0xc0) {
      if (pos + 1 >= len)
        return DNS_ERR_TRUNCATED;
      size_t target = (size_t)(b & 0x3f) << 8 | pkt[pos + 1];
      if (target >= run || ++pointers > DNS_MAX_POINTERS)
        return DNS_ERR_NAME;
      if (!jumped)
        *end = pos + 2;
      jumped = 1;
      pos = run = target;
      continue;
    }
    if (b & 0xc0)
      return DNS_ERR_NAME;
    if (b == 0) {
      /* Room for it: every label was taken only with room for a root
       * after it. */
      out->wire[n++] = 0;
      out->len = (uint8_t)n;
      if (!jumped)
        *end = pos + 1;
      return 0;
    }
    if (pos + 1 + b > len)
      return DNS_ERR_TRUNCATED;
    /* This label, and at least the root after it, must fit. */
    if (n + 1 + b + 1 > DNS_NAME_WIRE_MAX)
      return DNS_ERR_NAME;
    memcpy(out->wire + n, pkt + pos, 1 + (size_t)b);
    n += 1 + (size_t)b;
    pos += 1 + (size_t)b;
  }
}

int dns_name_from_text(struct dns_name *out, const char *text)
{
  if (!out || !text)
    return DNS_ERR_ARGUMENT;
  size_t tlen = strlen(text);
  if (tlen == 1 && text[0] == '.') {
    out->wire[0] = 0;
    out->len = 1;
    return 0;
  }
  if (tlen > 0 && text[tlen - 1] == '.')
    tlen--;
  if (tlen == 0)
    return DNS_ERR_ARGUMENT;
  size_t n = 0, i = 0;
  while (i <= tlen) {
    size_t start = i;
    while (i < tlen && text[i] != '.') {
      unsigned char c = (unsigned char)text[i];
      if (c <= 0x20 || c >= 0x7f || c == '\\')
        return DNS_ERR_ARGUMENT;
      i++;
    }
    size_t l = i - start;
    if (l == 0 || l > 63 || n + 1 + l + 1 > DNS_NAME_WIRE_MAX)
      return DNS_ERR_ARGUMENT;
    out->wire[n++] = (uint8_t)l;
    memcpy(out->wire + n, text + start, l);
    n += l;
    i++; /* past the dot, or past the end */
  }
  out->wire[n++] = 0;
  out->len = (uint8_t)n;
  return 0;
}

int dns_name_to_text(const struct dns_name *name, char *out, size_t outlen)
{
  if (!name || !out || outlen == 0)
    return DNS_ERR_ARGUMENT;
  size_t o = 0, i = 0;
  if (name->len <= 1) {
    if (outlen < 2)
      return DNS_ERR_ARGUMENT;
    out[0] = '.';
    out[1] = '\0';
    return 1;
  }
  while (i < name->len && name->wire[i] != 0) {
    uint8_t l = name->wire[i++];
    if (l > 63 || i + l >= name->len)
      return DNS_ERR_ARGUMENT; /* not a name dns.c made */
    if (o > 0) {
      if (o + 1 >= outlen)
        return DNS_ERR_ARGUMENT;
      out[o++] = '.';
    }
    for (uint8_t k = 0; k < l; k++) {
      uint8_t c = name->wire[i++];
      char esc[5];
      size_t el;
      if (c == '.' || c == '\\') {
        esc[0] = '\\';
        esc[1] = (char)c;
        el = 2;
      } else if (c <= 0x20 || c >= 0x7f) {
        esc[0] = '\\';
        esc[1] = (char)('0' + c / 100);
        esc[2] = (char)('0' + c / 10 % 10);
        esc[3] = (char)('0' + c % 10);
        el = 4;
      } else {
        esc[0] = (char)c;
        el = 1;
      }
      if (o + el >= outlen)
        return DNS_ERR_ARGUMENT;
      memcpy(out + o, esc, el);
      o += el;
    }
  }
  out[o] = '\0';
  return (int)o;
}

static uint8_t lower(uint8_t c)
{
  return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

int dns_name_equal(const struct dns_name *a, const struct dns_name *b)
{
  if (a->len != b->len)
    return 0;
  /* Length octets are at the same places in both (equal prefixes), and
   * never letters (at most 63), so one comparison does for both. */
  for (size_t i = 0; i < a->len; i++)
    if (lower(a->wire[i]) != lower(b->wire[i]))
      return 0;
  return 1;
}

int dns_name_is_root(const struct dns_name *name)
{
  return name->len == 1 && name->wire[0] == 0;
}

int dns_name_is_hostname(const struct dns_name *name)
{
  size_t i = 0;
  if (dns_name_is_root(name))
    return 0;
  while (i < name->len && name->wire[i] != 0) {
    uint8_t l = name->wire[i++];
    if (l > 63 || i + l >= name->len)
      return 0;
    for (uint8_t k = 0; k < l; k++) {
      uint8_t c = lower(name->wire[i + k]);
      int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               (c == '-' && k != 0 && k != l - 1);
      if (!ok)
        return 0;
    }
    i += l;
  }
  return 1;
}

/* ---- parsing ---- */

/* Skips a name without copying it out: the same checks as read_name. */
static int skip_name(const uint8_t *pkt, size_t len, size_t off, size_t *end)
{
  struct dns_name scratch;
  return read_name(pkt, len, off, &scratch, end);
}

/* Reads a name that must occupy exactly [off, limit) of the RDATA.  Its
 * labels are read with `limit` as the end of the packet: pointers lead
 * backwards, out of the RDATA, but nothing may run past its end. */
static int rdata_name(const uint8_t *pkt, size_t off, size_t limit,
                      struct dns_name *out)
{
  size_t end;
  int rv = read_name(pkt, limit, off, out, &end);
  if (rv != 0)
    return rv == DNS_ERR_TRUNCATED ? DNS_ERR_RDATA : rv;
  return end == limit ? 0 : DNS_ERR_RDATA;
}

/* Checks the RDATA of the types the route reads, so the accessors cannot
 * fail later.  Other types are opaque. */
static int check_rdata(const uint8_t *pkt, uint16_t type, size_t off,
                       size_t rdlen)
{
  struct dns_name scratch;
  size_t end = off + rdlen, name_end;
  switch (type) {
  case DNS_TYPE_A:
    return rdlen == 4 ? 0 : DNS_ERR_RDATA;
  case DNS_TYPE_AAAA:
    return rdlen == 16 ? 0 : DNS_ERR_RDATA;
  case DNS_TYPE_CNAME:
    return rdata_name(pkt, off, end, &scratch);
  case DNS_TYPE_MX:
    if (rdlen < 3)
      return DNS_ERR_RDATA;
    return rdata_name(pkt, off + 2, end, &scratch);
  case DNS_TYPE_SOA: {
    /* MNAME, RNAME, then five 32-bit fields, filling the RDATA. */
    int rv = read_name(pkt, end, off, &scratch, &name_end);
    if (rv == 0)
      rv = read_name(pkt, end, name_end, &scratch, &name_end);
    if (rv != 0)
      return rv == DNS_ERR_TRUNCATED ? DNS_ERR_RDATA : rv;
    return name_end + 20 == end ? 0 : DNS_ERR_RDATA;
  }
  case DNS_TYPE_TXT: {
    /* One or more character-strings filling the RDATA exactly. */
    size_t p = off;
    if (rdlen == 0)
      return DNS_ERR_RDATA;
    while (p < end) {
      p += 1 + (size_t)pkt[p];
      if (p > end)
        return DNS_ERR_RDATA;
    }
    return 0;
  }
  case DNS_TYPE_TLSA:
    /* Usage, selector, matching type, and data (RFC 6698 2.1; empty data
     * is allowed on the wire, and unusable to DANE). */
    return rdlen >= 3 ? 0 : DNS_ERR_RDATA;
  default:
    return 0;
  }
}

/* Reads the EDNS0 OPT record (RFC 6891 6.1.2) at the RR fields `f`. */
static int read_opt(struct dns_msg *m, const uint8_t *f, size_t rdata_off,
                    size_t rdlen)
{
  if (m->has_edns)
    return DNS_ERR_FORMAT;
  m->has_edns = 1;
  m->edns_udp_size = get16(f + 2);
  uint32_t ttl = get32(f + 4);
  m->rcode = (uint16_t)((ttl >> 24) << 4 | (m->rcode & 0x0f));
  m->edns_version = (uint8_t)(ttl >> 16);
  m->edns_do = (ttl & 0x8000) != 0;
  size_t p = rdata_off, end = rdata_off + rdlen;
  while (p < end) {
    if (end - p < 4)
      return DNS_ERR_FORMAT;
    uint16_t code = get16(m->pkt + p), olen = get16(m->pkt + p + 2);
    p += 4;
    if (olen > end - p)
      return DNS_ERR_FORMAT;
    /* RFC 8914 2: EXTENDED-ERROR, an INFO-CODE and optional text. */
    if (code == 15) {
      if (olen < 2)
        return DNS_ERR_FORMAT;
      if (m->ede < 0)
        m->ede = get16(m->pkt + p);
    }
    p += olen;
  }
  return 0;
}

int dns_parse(struct dns_msg *m, const uint8_t *pkt, size_t len)
{
  if (!m || (!pkt && len > 0))
    return DNS_ERR_ARGUMENT;
  memset(m, 0, offsetof(struct dns_msg, rr));
  m->ede = -1;
  m->pkt = pkt;
  m->len = len;
  if (len > 65535)
    return DNS_ERR_TOO_MANY;
  if (len < 12)
    return DNS_ERR_TRUNCATED;
  m->id = get16(pkt);
  uint8_t f1 = pkt[2], f2 = pkt[3];
  m->qr = f1 >> 7;
  m->opcode = (f1 >> 3) & 0x0f;
  m->aa = (f1 >> 2) & 1;
  m->tc = (f1 >> 1) & 1;
  m->rd = f1 & 1;
  m->ra = f2 >> 7;
  m->ad = (f2 >> 5) & 1;
  m->cd = (f2 >> 4) & 1;
  m->rcode = f2 & 0x0f;
  m->qdcount = get16(pkt + 4);
  m->ancount = get16(pkt + 6);
  m->nscount = get16(pkt + 8);
  m->arcount = get16(pkt + 10);
  if (!m->qr || m->opcode != 0)
    return DNS_ERR_NOT_RESPONSE;
  if (m->qdcount > 1)
    return DNS_ERR_TOO_MANY;

  size_t pos = 12;
  if (m->qdcount == 1) {
    int rv = read_name(pkt, len, pos, &m->qname, &pos);
    if (rv != 0)
      return rv;
    if (len - pos < 4)
      return DNS_ERR_TRUNCATED;
    m->qtype = get16(pkt + pos);
    m->qclass = get16(pkt + pos + 2);
    m->has_question = 1;
    pos += 4;
  }
  if (m->tc)
    return 0;

  /* Three sections; the counts only bound the loops. */
  const uint16_t counts[3] = {m->ancount, m->nscount, m->arcount};
  for (int s = 0; s < 3; s++) {
    for (uint32_t i = 0; i < counts[s]; i++) {
      size_t name_off = pos;
      int rv = skip_name(pkt, len, pos, &pos);
      if (rv != 0)
        return rv;
      if (len - pos < 10)
        return DNS_ERR_TRUNCATED;
      const uint8_t *f = pkt + pos;
      uint16_t type = get16(f), rdlen = get16(f + 8);
      size_t rdata_off = pos + 10;
      if (rdlen > len - rdata_off)
        return DNS_ERR_TRUNCATED;
      pos = rdata_off + rdlen;
      if (type == DNS_TYPE_OPT) {
        /* Only in the additional section, owned by the root. */
        if (s != 2 || pkt[name_off] != 0)
          return DNS_ERR_FORMAT;
        rv = read_opt(m, f, rdata_off, rdlen);
        if (rv != 0)
          return rv;
        continue;
      }
      if (s == 2)
        continue; /* additional data is not used */
      rv = check_rdata(pkt, type, rdata_off, rdlen);
      if (rv != 0)
        return rv;
      if (m->nrr == DNS_MAX_RRS)
        return DNS_ERR_TOO_MANY;
      struct dns_rr *rr = &m->rr[m->nrr++];
      uint32_t ttl = get32(f + 4);
      rr->name_off = (uint16_t)name_off;
      rr->type = type;
      rr->rclass = get16(f + 2);
      rr->section = s == 0 ? DNS_SECTION_ANSWER : DNS_SECTION_AUTHORITY;
      rr->ttl = ttl > 0x7fffffffu ? 0 : ttl;
      rr->rdata_off = (uint16_t)rdata_off;
      rr->rdlen = rdlen;
      if (s == 0)
        m->nanswer = m->nrr;
    }
  }
  return 0;
}

int dns_msg_answers(const struct dns_msg *m, uint16_t id,
                    const struct dns_name *qname, uint16_t qtype)
{
  return m->id == id && m->has_question && m->qtype == qtype &&
         m->qclass == DNS_CLASS_IN && dns_name_equal(&m->qname, qname);
}

void dns_rr_owner(const struct dns_msg *m, const struct dns_rr *rr,
                  struct dns_name *out)
{
  size_t end;
  if (read_name(m->pkt, m->len, rr->name_off, out, &end) != 0) {
    /* Unreachable for an indexed record: dns_parse read it. */
    out->len = 1;
    out->wire[0] = 0;
  }
}

/* 1 when an indexed record is owned by `name`. */
static int owner_is(const struct dns_msg *m, const struct dns_rr *rr,
                    const struct dns_name *name)
{
  struct dns_name owner;
  dns_rr_owner(m, rr, &owner);
  return dns_name_equal(&owner, name);
}

int dns_find(const struct dns_msg *m, size_t *pos, int section,
             uint16_t type, const struct dns_name *owner)
{
  size_t first = section == DNS_SECTION_ANSWER ? 0 : m->nanswer;
  size_t last = section == DNS_SECTION_ANSWER ? m->nanswer : m->nrr;
  size_t i = *pos < first ? first : *pos;
  for (; i < last; i++) {
    const struct dns_rr *rr = &m->rr[i];
    if (rr->type != type || rr->rclass != DNS_CLASS_IN)
      continue;
    if (owner && !owner_is(m, rr, owner))
      continue;
    *pos = i + 1;
    return (int)i;
  }
  *pos = last;
  return -1;
}

/* ---- RDATA accessors ---- */

int dns_rr_a(const struct dns_msg *m, const struct dns_rr *rr,
             uint8_t addr[4])
{
  if (rr->type != DNS_TYPE_A)
    return DNS_ERR_ARGUMENT;
  memcpy(addr, m->pkt + rr->rdata_off, 4);
  return 0;
}

int dns_rr_aaaa(const struct dns_msg *m, const struct dns_rr *rr,
                uint8_t addr[16])
{
  if (rr->type != DNS_TYPE_AAAA)
    return DNS_ERR_ARGUMENT;
  memcpy(addr, m->pkt + rr->rdata_off, 16);
  return 0;
}

int dns_rr_cname(const struct dns_msg *m, const struct dns_rr *rr,
                 struct dns_name *target)
{
  size_t end;
  if (rr->type != DNS_TYPE_CNAME)
    return DNS_ERR_ARGUMENT;
  return read_name(m->pkt, m->len, rr->rdata_off, target, &end);
}

int dns_rr_mx(const struct dns_msg *m, const struct dns_rr *rr,
              uint16_t *preference, struct dns_name *exchange)
{
  size_t end;
  if (rr->type != DNS_TYPE_MX)
    return DNS_ERR_ARGUMENT;
  *preference = get16(m->pkt + rr->rdata_off);
  return read_name(m->pkt, m->len, rr->rdata_off + 2u, exchange, &end);
}

int dns_rr_soa(const struct dns_msg *m, const struct dns_rr *rr,
               struct dns_soa *soa)
{
  size_t p;
  if (rr->type != DNS_TYPE_SOA)
    return DNS_ERR_ARGUMENT;
  int rv = read_name(m->pkt, m->len, rr->rdata_off, &soa->mname, &p);
  if (rv == 0)
    rv = read_name(m->pkt, m->len, p, &soa->rname, &p);
  if (rv != 0)
    return rv;
  const uint8_t *f = m->pkt + p;
  soa->serial = get32(f);
  soa->refresh = get32(f + 4);
  soa->retry = get32(f + 8);
  soa->expire = get32(f + 12);
  soa->minimum = get32(f + 16);
  return 0;
}

int dns_rr_tlsa(const struct dns_msg *m, const struct dns_rr *rr,
                struct dns_tlsa *t)
{
  if (rr->type != DNS_TYPE_TLSA)
    return DNS_ERR_ARGUMENT;
  const uint8_t *p = m->pkt + rr->rdata_off;
  t->usage = p[0];
  t->selector = p[1];
  t->mtype = p[2];
  t->data = p + 3;
  t->len = (size_t)rr->rdlen - 3;
  return 0;
}

int dns_rr_txt(const struct dns_msg *m, const struct dns_rr *rr, char *out,
               size_t outlen)
{
  if (rr->type != DNS_TYPE_TXT || !out)
    return DNS_ERR_ARGUMENT;
  const uint8_t *p = m->pkt + rr->rdata_off, *end = p + rr->rdlen;
  size_t o = 0;
  while (p < end) {
    size_t l = *p++;
    if (o + l >= outlen)
      return DNS_ERR_ARGUMENT;
    memcpy(out + o, p, l);
    o += l;
    p += l;
  }
  out[o] = '\0';
  return (int)o;
}

/* ---- answers ---- */

int dns_cname_target(const struct dns_msg *m, const struct dns_name *name,
                     struct dns_name *target, unsigned *links)
{
  struct dns_name cur = *name;
  unsigned n = 0;
  for (;;) {
    size_t pos = 0;
    int i = dns_find(m, &pos, DNS_SECTION_ANSWER, DNS_TYPE_CNAME, &cur);
    if (i < 0)
      break;
    struct dns_name next;
    if (dns_rr_cname(m, &m->rr[i], &next) != 0)
      return DNS_ERR_CNAME;
    /* RFC 2181 10.1: one CNAME per name.  The same one twice is only
     * redundant; two different ones leave the answer ambiguous. */
    int j;
    while ((j = dns_find(m, &pos, DNS_SECTION_ANSWER, DNS_TYPE_CNAME,
                         &cur)) >= 0) {
      struct dns_name other;
      if (dns_rr_cname(m, &m->rr[j], &other) != 0 ||
          !dns_name_equal(&other, &next))
        return DNS_ERR_CNAME;
    }
    /* A loop never ends at a name without a CNAME: the bound ends it. */
    if (++n > DNS_MAX_CNAME_CHAIN)
      return DNS_ERR_CNAME;
    cur = next;
  }
  *target = cur;
  if (links)
    *links = n;
  return 0;
}

int dns_outcome(const struct dns_msg *m, struct dns_name *target)
{
  if (!m->has_question || m->tc)
    return DNS_OUTCOME_FAILED;
  if (m->rcode != DNS_RCODE_NOERROR && m->rcode != DNS_RCODE_NXDOMAIN)
    return DNS_OUTCOME_FAILED;
  struct dns_name end = m->qname;
  /* A query for the CNAME itself is answered by it, not through it. */
  if (m->qtype != DNS_TYPE_CNAME) {
    int rv = dns_cname_target(m, &m->qname, &end, NULL);
    if (rv != 0)
      return rv;
  }
  if (target)
    *target = end;
  /* RFC 6604 3: with CNAMEs, the rcode describes the chain's last name. */
  if (m->rcode == DNS_RCODE_NXDOMAIN)
    return DNS_OUTCOME_NXDOMAIN;
  size_t pos = 0;
  if (dns_find(m, &pos, DNS_SECTION_ANSWER, m->qtype, &end) >= 0)
    return DNS_OUTCOME_DATA;
  return DNS_OUTCOME_NODATA;
}

int dns_negative_ttl(const struct dns_msg *m, uint32_t *ttl)
{
  size_t pos = 0;
  int i = dns_find(m, &pos, DNS_SECTION_AUTHORITY, DNS_TYPE_SOA, NULL);
  if (i < 0)
    return -1;
  struct dns_soa soa;
  if (dns_rr_soa(m, &m->rr[i], &soa) != 0)
    return -1;
  uint32_t t = m->rr[i].ttl;
  *ttl = soa.minimum < t ? soa.minimum : t;
  return 0;
}

int dns_mx_set(const struct dns_msg *m, const struct dns_name *qname,
               struct dns_mx_set *set)
{
  struct dns_name owner;
  int rv = dns_cname_target(m, qname, &owner, NULL);
  if (rv != 0)
    return rv;
  set->n = 0;
  set->null_mx = set->root_target = set->truncated = 0;
  set->ttl = 0;
  size_t pos = 0, total = 0;
  int i;
  while ((i = dns_find(m, &pos, DNS_SECTION_ANSWER, DNS_TYPE_MX, &owner)) >=
         0) {
    struct dns_mx mx;
    if (dns_rr_mx(m, &m->rr[i], &mx.preference, &mx.exchange) != 0)
      continue;
    if (total == 0 || m->rr[i].ttl < set->ttl)
      set->ttl = m->rr[i].ttl;
    total++;
    if (dns_name_is_root(&mx.exchange))
      set->root_target = 1;
    if (set->n < DNS_MAX_MX) {
      set->mx[set->n++] = mx;
      continue;
    }
    /* Full: the record with the highest preference gives way, so the
     * ones tried first are never the ones lost. */
    set->truncated = 1;
    size_t worst = 0;
    for (size_t k = 1; k < set->n; k++)
      if (set->mx[k].preference > set->mx[worst].preference)
        worst = k;
    if (mx.preference < set->mx[worst].preference)
      set->mx[worst] = mx;
  }
  /* RFC 7505 3: a single record, preference 0, target the root. */
  set->null_mx = total == 1 && set->mx[0].preference == 0 &&
                 dns_name_is_root(&set->mx[0].exchange);
  return (int)(total > (size_t)0x7fffffff ? 0x7fffffff : total);
}

int dns_addresses(const struct dns_msg *m, const struct dns_name *qname,
                  uint16_t type, struct dns_addr *out, size_t max, int *more)
{
  if (type != DNS_TYPE_A && type != DNS_TYPE_AAAA)
    return DNS_ERR_ARGUMENT;
  struct dns_name owner;
  int rv = dns_cname_target(m, qname, &owner, NULL);
  if (rv != 0)
    return rv;
  size_t pos = 0, n = 0;
  int i;
  if (more)
    *more = 0;
  while ((i = dns_find(m, &pos, DNS_SECTION_ANSWER, type, &owner)) >= 0) {
    if (n == max) {
      if (more)
        *more = 1;
      break;
    }
    struct dns_addr *a = &out[n++];
    memset(a->addr, 0, sizeof(a->addr));
    a->ttl = m->rr[i].ttl;
    if (type == DNS_TYPE_A) {
      a->family = 4;
      dns_rr_a(m, &m->rr[i], a->addr);
    } else {
      a->family = 6;
      dns_rr_aaaa(m, &m->rr[i], a->addr);
    }
  }
  return (int)n;
}

int dns_tlsa_set(const struct dns_msg *m, const struct dns_name *qname,
                 struct dns_tlsa *out, size_t max, int *more)
{
  struct dns_name owner;
  int rv = dns_cname_target(m, qname, &owner, NULL);
  if (rv != 0)
    return rv;
  size_t pos = 0, n = 0;
  int i;
  if (more)
    *more = 0;
  while ((i = dns_find(m, &pos, DNS_SECTION_ANSWER, DNS_TYPE_TLSA, &owner)) >=
         0) {
    if (n == max) {
      if (more)
        *more = 1;
      break;
    }
    dns_rr_tlsa(m, &m->rr[i], &out[n++]);
  }
  return (int)n;
}

/* ---- queries ---- */

int dns_query_encode(uint8_t *out, size_t outlen, uint16_t id,
                     const struct dns_name *qname, uint16_t qtype,
                     unsigned flags)
{
  if (!out || !qname || qname->len == 0 ||
      qname->wire[qname->len - 1] != 0)
    return DNS_ERR_ARGUMENT;
  int edns = (flags & (DNS_QUERY_DO | DNS_QUERY_EDNS)) != 0;
  size_t need = 12 + (size_t)qname->len + 4 + (edns ? 11 : 0);
  if (outlen < need)
    return DNS_ERR_ARGUMENT;
  memset(out, 0, 12);
  put16(out, id);
  out[2] = (flags & DNS_QUERY_RD) ? 0x01 : 0x00;
  out[3] = (uint8_t)(((flags & DNS_QUERY_AD) ? 0x20 : 0) |
                     ((flags & DNS_QUERY_CD) ? 0x10 : 0));
  put16(out + 4, 1);
  put16(out + 10, edns ? 1 : 0);
  size_t p = 12;
  memcpy(out + p, qname->wire, qname->len);
  p += qname->len;
  put16(out + p, qtype);
  put16(out + p + 2, DNS_CLASS_IN);
  p += 4;
  if (edns) {
    /* RFC 6891 6.1.2: root owner, type OPT, class = UDP payload size,
     * TTL = extended rcode 0, version 0, DO, no options. */
    out[p++] = 0;
    put16(out + p, DNS_TYPE_OPT);
    put16(out + p + 2, DNS_EDNS_UDP_SIZE);
    out[p + 4] = 0;
    out[p + 5] = 0;
    out[p + 6] = (flags & DNS_QUERY_DO) ? 0x80 : 0x00;
    out[p + 7] = 0;
    put16(out + p + 8, 0);
    p += 10;
  }
  return (int)p;
}
