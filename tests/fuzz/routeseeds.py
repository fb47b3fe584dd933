"""Seeds for fuzz-route (tests/fuzz/fuzz-route.c; imported by
mkseeds.py): what a host hands a route, in the order the route asks, for
the routes the target runs (to secure.test or alias.test).  Each seed is
an options octet, then per DNS question a verdict octet, a two-octet
length and the response (or a "failed" octet), and per hop an outcome
octet.  The responses are built with fuzz-dns's encoder."""
import struct

from dnsseeds import A, AAAA, CNAME, MX, SOA, TLSA, Msg, name, ptr, soa, tlsa

INSECURE, SECURE, BOGUS, INDETERMINATE = 0, 1, 2, 3
DONE, CONNECT_FAILED, HOST_FAILED, TLS_FAILED, SESSION_FAILED = range(5)
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
    return out

