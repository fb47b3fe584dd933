"""Seeds for fuzz-route (tests/fuzz/fuzz-route.c; imported by
mkseeds.py): what a host hands a route, in the order the route asks, for
the routes the target runs (to secure.test or alias.test).  Each seed is
an options octet, then per DNS question a verdict octet, a two-octet
length and the response (or a "failed" octet), and per hop an outcome
octet.  The responses are built with fuzz-dns's encoder."""
import struct

from dnsseeds import (A, AAAA, CNAME, MX, SOA, TLSA, TXT, Msg, name, ptr, soa,
                      tlsa, txt)

INSECURE, SECURE, BOGUS, INDETERMINATE = 0, 1, 2, 3
DONE, CONNECT_FAILED, HOST_FAILED, TLS_FAILED, SESSION_FAILED, \
    REQUIRETLS_NOT_OFFERED = range(6)
FETCH_OK, FETCH_CONNECT_FAILED, FETCH_TLS_NOT_VERIFIED, FETCH_TIMEOUT, \
    FETCH_TOO_LARGE, FETCH_FAILED = range(6)
# Option bits beyond the configuration (fuzz-route.c).
STS, REQUIRETLS, TLS_REQUIRED_NO, RELAY = 0x10, 0x20, 0x40, 0x80
POLICY = (b"version: STSv1\nmode: enforce\nmx: mx1.secure.test\n"
          b"max_age: 86400\n")


def miss():
    return b"\x80"


def cached(value):
    return b"\0" + struct.pack(">H", len(value)) + value


def fetched(body, status=0, ctype=1):
    return (bytes([FETCH_OK, status, ctype]) + struct.pack(">H", len(body))
            + body)


def sts_txt(domain, *records):
    m = Msg("_mta-sts." + domain, TXT)
    for r in records:
        m.rr(0, Q, TXT, txt(r))
    if not records:
        m.rr(1, name("secure.test"), SOA, soa())
    return m
Q = ptr(12)


def answer(msg, verdict=SECURE):
    wire = msg.wire()
    return bytes([verdict]) + struct.pack(">H", len(wire)) + wire


def failed(verdict=INDETERMINATE, rcode=2):
    return bytes([0x80 | verdict | rcode << 2])


def hop(outcome):
    return bytes([outcome])


def mx(domain, *hosts):
    m = Msg(domain, MX)
    for pref, host in hosts:
        m.rr(0, Q, MX, struct.pack(">H", pref) + name(host))
    return m


def addr(host, qtype, *addrs):
    m = Msg(host, qtype)
    for a in addrs:
        m.rr(0, Q, qtype, a)
    if not addrs:
        m.rr(1, name("secure.test"), SOA, soa())
    return m


def tlsa_at(host, *records, rcode=0):
    m = Msg("_25._tcp." + host, TLSA, rcode=rcode)
    for r in records:
        m.rr(0, Q, TLSA, r)
    if not records:
        m.rr(1, name("secure.test"), SOA, soa())
    return m


V4 = bytes([127, 0, 0, 2])
V6 = bytes(15) + b"\1"
EE = tlsa(3, 1, 1, bytes(range(32)))
TA = tlsa(2, 1, 1, bytes(range(32, 64)))


def seeds():
    out = {}
    two = mx("secure.test", (10, "mx1.secure.test"), (20, "mx2.secure.test"))
    mx1 = (answer(addr("mx1.secure.test", A, V4))
           + answer(addr("mx1.secure.test", AAAA))
           + answer(tlsa_at("mx1.secure.test", EE, TA)))
    mx2 = (answer(addr("mx2.secure.test", A, V4))
           + answer(addr("mx2.secure.test", AAAA, V6))
           + answer(tlsa_at("mx2.secure.test", rcode=3)))
    out["dane-then-next-mx"] = (b"\0" + answer(two) + mx1
                                + hop(CONNECT_FAILED) + mx2
                                + hop(TLS_FAILED) + hop(DONE))
    out["dane-require"] = (b"\2" + answer(two) + mx1 + hop(SESSION_FAILED)
                           + mx2)
    out["ipv6-first-no-limit"] = (b"\4" + answer(two) + mx1 + hop(HOST_FAILED)
                                  + mx2 + hop(CONNECT_FAILED)
                                  + hop(CONNECT_FAILED))
    out["dane-disabled-on-mx1"] = (b"\6" + answer(two)
                                   + answer(addr("mx1.secure.test", A, V4))
                                   + answer(addr("mx1.secure.test", AAAA))
                                   + hop(CONNECT_FAILED) + mx2)
    out["no-dnssec"] = (b"\1" + answer(two, INSECURE)
                        + answer(addr("mx1.secure.test", A, V4), INSECURE)
                        + answer(addr("mx1.secure.test", AAAA), INSECURE)
                        + hop(DONE))
    out["null-mx"] = b"\0" + answer(mx("secure.test", (0, ".")))
    m = Msg("secure.test", MX, rcode=3)
    m.rr(1, Q, SOA, soa())
    out["nxdomain"] = b"\0" + answer(m)
    out["servfail-bogus"] = b"\0" + failed(BOGUS, 2)
    m = Msg("secure.test", MX)
    m.rr(1, Q, SOA, soa())
    out["implicit-mx"] = (b"\0" + answer(m)
                          + answer(addr("secure.test", A, V4))
                          + answer(addr("secure.test", AAAA, V6))
                          + answer(tlsa_at("secure.test", EE)) + hop(DONE))
    m = Msg("alias.test", MX)
    m.rr(0, Q, CNAME, name("secure.test"))
    m.rr(0, name("secure.test"), MX, struct.pack(">H", 10)
         + name("mx1.secure.test"))
    out["cname-domain"] = b"\x08" + answer(m) + mx1 + hop(DONE)
    alias = mx("secure.test", (10, "mxalias.secure.test"))
    a = Msg("mxalias.secure.test", A)
    a.rr(0, Q, CNAME, name("mx1.secure.test"))
    a.rr(0, name("mx1.secure.test"), A, V4)
    aaaa = Msg("mxalias.secure.test", AAAA)
    aaaa.rr(0, Q, CNAME, name("mx1.secure.test"))
    out["cname-mx-target"] = (b"\0" + answer(alias) + answer(a) + answer(aaaa)
                              + answer(tlsa_at("mx1.secure.test", EE))
                              + hop(DONE))
    out["tlsa-bogus"] = (b"\0" + answer(two)
                         + answer(addr("mx1.secure.test", A, V4))
                         + answer(addr("mx1.secure.test", AAAA))
                         + failed(BOGUS, 2) + mx2 + hop(CONNECT_FAILED))
    many = (answer(addr("mx1.secure.test", A, V4, bytes([127, 0, 0, 3]),
                        bytes([127, 0, 0, 4])))
            + answer(addr("mx1.secure.test", AAAA, V6, bytes(15) + b"\2"),
                     INSECURE))
    out["address-limit"] = (b"\0" + answer(two) + many
                            + hop(CONNECT_FAILED) * 5)
    # MTA-STS: the MX, cache and TXT questions go out together (in that
    # order), then the policy host's addresses, the fetch, the put.
    record = sts_txt("secure.test", b"v=STSv1; id=1;")
    host = (answer(addr("mta-sts.secure.test", A, V4), INSECURE)
            + answer(addr("mta-sts.secure.test", AAAA), INSECURE))
    out["sts-enforce-fetch"] = (bytes([STS]) + answer(two) + miss()
                                + answer(record, INSECURE) + host
                                + fetched(POLICY) + mx1 + hop(DONE))
    out["sts-html"] = (bytes([STS]) + answer(two) + miss()
                       + answer(record, INSECURE) + host
                       + fetched(POLICY, ctype=0) + mx1 + hop(TLS_FAILED)
                       + mx2 + hop(DONE))
    entry = (b"v=1; id=1; fetched=1700000000000; expires=1700086400000\n"
             + POLICY)
    out["sts-cached-same-id"] = (bytes([STS]) + answer(two) + cached(entry)
                                 + answer(record, INSECURE) + mx1
                                 + hop(REQUIRETLS_NOT_OFFERED))
    out["sts-id-changed-fetch-fails"] = (
        bytes([STS | REQUIRETLS]) + answer(two) + cached(entry)
        + answer(sts_txt("secure.test", b"v=STSv1; id=2"), INSECURE) + host
        + bytes([FETCH_TLS_NOT_VERIFIED]) + mx1
        + hop(REQUIRETLS_NOT_OFFERED | 5 << 3) + mx2)
    out["tls-required-no"] = (bytes([STS | TLS_REQUIRED_NO | 2]) + answer(two)
                              + answer(addr("mx1.secure.test", A, V4))
                              + answer(addr("mx1.secure.test", AAAA))
                              + hop(DONE))
    out["relay"] = (bytes([RELAY]) + answer(addr("mx1.secure.test", A, V4))
                    + answer(addr("mx1.secure.test", AAAA))
                    + answer(Msg("_587._tcp.mx1.secure.test", TLSA))
                    + hop(TLS_FAILED | 3 << 3))
    return out

