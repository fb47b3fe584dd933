/*
 * dns_int.h — DNS messages: a bounded parser for responses and an encoder
 * for queries (RFC 1035, RFC 6891 EDNS0, RFC 8914 extended errors).
 *
 * Internal to the library.  The route (MX resolution, DANE) reads the raw
 * responses its host hands it through this module, and the blocking
 * resolvers (resolve_*.c) build their queries with it.  Nothing here does
 * I/O or allocates: a parsed message is a fixed-size index into the
 * caller's packet, every name is copied into a fixed 255-octet buffer, and
 * a packet that breaks any rule or any limit below is an error code, never
 * a crash, a loop or growth.
 *
 * What is read: the header (id, flags, rcode), the question, the answer
 * and authority sections (indexed, at most DNS_MAX_RRS records between
 * them), and from the additional section only the EDNS0 OPT record
 * (extended rcode, DO bit, the first extended DNS error).  The RDATA of
 * the types the route uses (A, AAAA, CNAME, MX, TXT, SOA, TLSA) is
 * checked when the message is parsed, so the accessors below cannot fail
 * on a record dns_parse() accepted; other types (RRSIG, NSEC3, ...) are
 * only bounds-checked and skipped by the helpers.
 */
#ifndef SMTPOUT_DNS_INT_H
#define SMTPOUT_DNS_INT_H

#include <stddef.h>
#include <stdint.h>

/* RFC 1035 2.3.4: a name is at most 255 octets in wire form. */
#define DNS_NAME_WIRE_MAX 255
/* The longest text form dns_name_to_text() writes, with its NUL: every
 * octet of a 255-octet name escaped as \DDD, plus the dots. */
#define DNS_NAME_TEXT_MAX 1024
/* Records indexed in the answer and authority sections together.  A real
 * answer for the types the route asks has a few dozen (records and their
 * RRSIGs); more is refused, not truncated. */
#define DNS_MAX_RRS 256
/* Compression pointers followed while reading one name.  Pointers must
 * point backwards, which already bounds a chain; this is a second fence. */
#define DNS_MAX_POINTERS 64
/* CNAME records followed from the question name within one answer
 * (wave2-design 1.6: chains of at most 16). */
#define DNS_MAX_CNAME_CHAIN 16
/* A query: header, question (name at most 255), OPT record. */
#define DNS_QUERY_MAX (12 + DNS_NAME_WIRE_MAX + 4 + 11)
/* The EDNS0 UDP payload size queries announce (DNS flag day 2020). */
#define DNS_EDNS_UDP_SIZE 1232

enum dns_error {
  DNS_ERR_TRUNCATED = -1,     /* the packet ends inside a field */
  DNS_ERR_NAME = -2,          /* bad label, name over 255 octets, or a
                                 compression pointer that does not point
                                 backwards (a loop) or goes too deep */
  DNS_ERR_TOO_MANY = -3,      /* more than DNS_MAX_RRS records, or more than
                                 one question */
  DNS_ERR_RDATA = -4,         /* RDATA of a known type has the wrong shape */
  DNS_ERR_NOT_RESPONSE = -5,  /* QR clear, or an opcode other than QUERY */
  DNS_ERR_FORMAT = -6,        /* more than one OPT record, an OPT record
                                 outside the additional section or not owned
                                 by the root, a malformed EDNS option */
  DNS_ERR_CNAME = -7,         /* a CNAME chain longer than
                                 DNS_MAX_CNAME_CHAIN (or a loop), or a name
                                 with two different CNAMEs */
  DNS_ERR_ARGUMENT = -8,      /* a text name that is not a domain name, a
                                 buffer too small */
};

/* Static English text for a dns_error; "unknown DNS error" otherwise. */
const char *dns_strerror(int error);

enum dns_rcode {
  DNS_RCODE_NOERROR = 0,
  DNS_RCODE_FORMERR = 1,
  DNS_RCODE_SERVFAIL = 2,
  DNS_RCODE_NXDOMAIN = 3,
  DNS_RCODE_NOTIMP = 4,
  DNS_RCODE_REFUSED = 5,
};

enum dns_type {
  DNS_TYPE_A = 1,
  DNS_TYPE_NS = 2,
  DNS_TYPE_CNAME = 5,
  DNS_TYPE_SOA = 6,
  DNS_TYPE_MX = 15,
  DNS_TYPE_TXT = 16,
  DNS_TYPE_AAAA = 28,
  DNS_TYPE_OPT = 41,
  DNS_TYPE_DS = 43,
  DNS_TYPE_RRSIG = 46,
  DNS_TYPE_NSEC = 47,
  DNS_TYPE_DNSKEY = 48,
  DNS_TYPE_NSEC3 = 50,
  DNS_TYPE_TLSA = 52,
};

#define DNS_CLASS_IN 1

/* A domain name in uncompressed wire form: labels, each prefixed by its
 * length, ending with the root's zero octet.  Case as received. */
struct dns_name {
  uint8_t len; /* octets in `wire`, 1 (the root) to 255 */
  uint8_t wire[DNS_NAME_WIRE_MAX];
};

/* Text to wire: "mx1.example.org", with or without the final dot, or "."
 * for the root.  Labels of 1 to 63 printable ASCII octets other than '.'
 * and '\' (no escapes: the names the route asks for are A-labels, service
 * labels like "_25._tcp" included).  0 or DNS_ERR_ARGUMENT. */
int dns_name_from_text(struct dns_name *out, const char *text);

/* Wire to text, without the final dot ("." for the root).  Octets that
 * are not printable ASCII, and '.' or '\' inside a label, are escaped as
 * in master files (\DDD, \., \\), so two different names never print
 * alike.  `outlen` of DNS_NAME_TEXT_MAX always suffices.  Returns the
 * length, or DNS_ERR_ARGUMENT when `out` is too small. */
int dns_name_to_text(const struct dns_name *name, char *out, size_t outlen);

/* 1 when the names are equal, ASCII letters compared without case
 * (RFC 4343), else 0. */
int dns_name_equal(const struct dns_name *a, const struct dns_name *b);

/* 1 when `name` is the root (the null MX target, RFC 7505). */
int dns_name_is_root(const struct dns_name *name);

/* 1 when every label is letters, digits and hyphens, not starting or
 * ending with a hyphen (RFC 1123 2.1 host names), else 0.  The root is not
 * a host name. */
int dns_name_is_hostname(const struct dns_name *name);

enum dns_section { DNS_SECTION_ANSWER = 1, DNS_SECTION_AUTHORITY = 2 };

/* One indexed record: offsets into the packet, never pointers. */
struct dns_rr {
  uint16_t name_off;  /* owner name (possibly compressed) */
  uint16_t type;
  uint16_t rclass;
  uint8_t section;    /* enum dns_section */
  uint32_t ttl;       /* RFC 2181 8: values over 2^31-1 read as 0 */
  uint16_t rdata_off;
  uint16_t rdlen;
};

/* A parsed response.  It points into the packet given to dns_parse(),
 * which must outlive it. */
struct dns_msg {
  const uint8_t *pkt;
  size_t len;
  uint16_t id;
  unsigned qr : 1, aa : 1, tc : 1, rd : 1, ra : 1, ad : 1, cd : 1;
  uint8_t opcode;
  uint16_t rcode;        /* with the EDNS0 extended bits when present */
  uint16_t qdcount, ancount, nscount, arcount; /* as the header says */
  int has_question;
  struct dns_name qname;
  uint16_t qtype, qclass;
  int has_edns;
  uint8_t edns_version;
  unsigned edns_do : 1;
  uint16_t edns_udp_size;
  int ede;               /* the first RFC 8914 info-code, or -1 */
  size_t nrr;            /* indexed records, answer first */
  size_t nanswer;        /* rr[0 .. nanswer) are the answer section */
  struct dns_rr rr[DNS_MAX_RRS];
};

/*
 * Parses a DNS response of `len` octets (at most 65535).  Returns 0 or a
 * dns_error.  A response with TC set is parsed up to its question only
 * (nrr is 0): RFC 2181 9 says a truncated answer must not be used, the
 * resolver retries over TCP.  Octets after the additional section are
 * ignored.
 */
int dns_parse(struct dns_msg *msg, const uint8_t *pkt, size_t len);

/* 1 when `msg` answers the query (id, qname, qtype, class IN), else 0.
 * What a resolver checks before it believes a UDP datagram. */
int dns_msg_answers(const struct dns_msg *msg, uint16_t id,
                    const struct dns_name *qname, uint16_t qtype);

/* The owner name of a record.  Cannot fail for an indexed record. */
void dns_rr_owner(const struct dns_msg *msg, const struct dns_rr *rr,
                  struct dns_name *out);

/*
 * The index of the next record at or after *pos in the answer section
 * (DNS_SECTION_ANSWER) or the authority section, of class IN, of `type`
 * and owned by `owner` (NULL: any owner); *pos moves past it.  Returns -1
 * when there is none.  Loop with `size_t pos = 0`.
 */
int dns_find(const struct dns_msg *msg, size_t *pos, int section,
             uint16_t type, const struct dns_name *owner);

/* RDATA accessors.  Each expects a record of its type (else
 * DNS_ERR_ARGUMENT) and cannot otherwise fail on a parsed message. */
int dns_rr_a(const struct dns_msg *msg, const struct dns_rr *rr,
             uint8_t addr[4]);
int dns_rr_aaaa(const struct dns_msg *msg, const struct dns_rr *rr,
                uint8_t addr[16]);
int dns_rr_cname(const struct dns_msg *msg, const struct dns_rr *rr,
                 struct dns_name *target);
int dns_rr_mx(const struct dns_msg *msg, const struct dns_rr *rr,
              uint16_t *preference, struct dns_name *exchange);

struct dns_soa {
  struct dns_name mname, rname;
  uint32_t serial, refresh, retry, expire, minimum;
};
int dns_rr_soa(const struct dns_msg *msg, const struct dns_rr *rr,
               struct dns_soa *soa);

/* A TLSA record (RFC 6698 2.1).  `data` points into the packet. */
struct dns_tlsa {
  uint8_t usage, selector, mtype;
  const uint8_t *data;
  size_t len;
};
int dns_rr_tlsa(const struct dns_msg *msg, const struct dns_rr *rr,
                struct dns_tlsa *tlsa);

/* The character-strings of a TXT record joined without separator (as
 * RFC 7208 3.3 and RFC 8461 3.1 read them) into `out`, NUL-terminated;
 * octets are copied as they are (a NUL inside shows in the length).
 * Returns the length, or DNS_ERR_ARGUMENT when `outlen` is too small
 * (a TXT record's text is shorter than its RDATA, at most 65535). */
int dns_rr_txt(const struct dns_msg *msg, const struct dns_rr *rr,
               char *out, size_t outlen);

/*
 * Follows CNAME records in the answer section from `name` (RFC 1034
 * 3.6.2, RFC 5321 5.1): writes the name at the end of the chain to
 * `target` (`name` itself when there is no CNAME) and the number of links
 * to *links (may be NULL).  DNS_ERR_CNAME on a loop, a chain over
 * DNS_MAX_CNAME_CHAIN, or two different CNAMEs for one name.
 */
int dns_cname_target(const struct dns_msg *msg, const struct dns_name *name,
                     struct dns_name *target, unsigned *links);

/* What a response says about its question, after CNAMEs (RFC 2308). */
enum dns_outcome {
  DNS_OUTCOME_DATA = 0,     /* records of the type at the chain's end */
  DNS_OUTCOME_NODATA = 1,   /* NOERROR, the name exists, no such records */
  DNS_OUTCOME_NXDOMAIN = 2, /* the name (the chain's end) does not exist */
  DNS_OUTCOME_FAILED = 3,   /* SERVFAIL, REFUSED, any other rcode, or a
                               response without a question */
};
/* Classifies `msg` as the answer to its own question.  Returns an
 * enum dns_outcome, or DNS_ERR_CNAME.  `target` (may be NULL) receives
 * the CNAME-expanded question name. */
int dns_outcome(const struct dns_msg *msg, struct dns_name *target);

/* The negative-caching TTL of a NODATA or NXDOMAIN response: the SOA in
 * the authority section, min(its TTL, its MINIMUM) (RFC 2308 5).
 * Returns 0 and *ttl, or -1 when there is no SOA. */
int dns_negative_ttl(const struct dns_msg *msg, uint32_t *ttl);

/* The MX RRset of a name (RFC 5321 5.1, RFC 7505). */
#define DNS_MAX_MX 32
struct dns_mx {
  uint16_t preference;
  struct dns_name exchange;
};
struct dns_mx_set {
  size_t n;               /* records kept in mx[] */
  struct dns_mx mx[DNS_MAX_MX];
  int null_mx;            /* exactly one record, "0 ." (RFC 7505 3) */
  int root_target;        /* some record's exchange is "." */
  int truncated;          /* more than DNS_MAX_MX records: the ones with
                             the lowest preferences were kept */
  uint32_t ttl;           /* the lowest TTL of the set */
};
/*
 * Collects the MX records of the answer to `qname` (after CNAMEs), in
 * packet order.  Returns the number found (0: none), DNS_ERR_CNAME.
 * Neither sorts nor shuffles: the route does (equal preferences are
 * shuffled from a seed it owns).
 */
int dns_mx_set(const struct dns_msg *msg, const struct dns_name *qname,
               struct dns_mx_set *set);

/* An address from an A (family 4) or AAAA (family 6) record. */
struct dns_addr {
  int family;
  uint8_t addr[16];
  uint32_t ttl;
};
/* Up to `max` addresses of `qname` (after CNAMEs) of `type` (A or AAAA)
 * into out[].  Returns the number stored, or DNS_ERR_CNAME /
 * DNS_ERR_ARGUMENT (another type).  *more (may be NULL) is set when more
 * records were present than `max`. */
int dns_addresses(const struct dns_msg *msg, const struct dns_name *qname,
                  uint16_t type, struct dns_addr *out, size_t max,
                  int *more);

/* Up to `max` TLSA records of `qname` (after CNAMEs, RFC 7671 7) into
 * out[]; their data points into the packet.  Returns the number stored,
 * or DNS_ERR_CNAME.  *more as for dns_addresses(). */
int dns_tlsa_set(const struct dns_msg *msg, const struct dns_name *qname,
                 struct dns_tlsa *out, size_t max, int *more);

/* Query flags for dns_query_encode(). */
enum {
  DNS_QUERY_RD = 1 << 0,   /* recursion desired */
  DNS_QUERY_DO = 1 << 1,   /* EDNS0 with the DNSSEC OK bit (RFC 3225) */
  DNS_QUERY_AD = 1 << 2,   /* AD in the query: "tell me if it validated"
                              (RFC 6840 5.7) */
  DNS_QUERY_CD = 1 << 3,   /* checking disabled (RFC 4035 3.2.2) */
  DNS_QUERY_EDNS = 1 << 4, /* EDNS0 without DO */
};

/* Writes a query for (qname, qtype, class IN) with `id` and `flags` into
 * `out` (DNS_QUERY_MAX octets always suffice).  Returns its length, or
 * DNS_ERR_ARGUMENT. */
int dns_query_encode(uint8_t *out, size_t outlen, uint16_t id,
                     const struct dns_name *qname, uint16_t qtype,
                     unsigned flags);

#endif
