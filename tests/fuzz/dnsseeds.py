"""Seeds for fuzz-dns: DNS responses as a validating resolver sends them
(imported by mkseeds.py).  Built by a small encoder, with the compression
a real server uses, plus a few broken ones (a pointer loop, a truncated
answer, an over-long chain) so the fuzzer starts at the edges."""
import struct

A, NS, CNAME, SOA, MX, TXT, AAAA, OPT, RRSIG, NSEC3, TLSA = (
    1, 2, 5, 6, 15, 16, 28, 41, 46, 50, 52)
AD, TC = 0x20, 0x02


def name(text):
    if text == ".":
        return b"\0"
    return b"".join(bytes([len(lab)]) + lab.encode()
                    for lab in text.rstrip(".").split(".")) + b"\0"


def ptr(off):
    return struct.pack(">H", 0xC000 | off)


class Msg:
    """A response: header fields, the question at offset 12, and
    records appended to the sections in order."""

    def __init__(self, qname, qtype, rcode=0, ad=True, tc=False, id=0x2a2a):
        self.id, self.rcode, self.ad, self.tc = id, rcode, ad, tc
        self.q = name(qname) + struct.pack(">HH", qtype, 1)
        self.sections = [[], [], []]

    def rr(self, section, owner, rtype, rdata, ttl=300, rclass=1):
        self.sections[section].append(
            owner + struct.pack(">HHIH", rtype, rclass, ttl, len(rdata))
            + rdata)
        return self

    def opt(self, do=True, ede=None, ext=0):
        opts = b""
        if ede is not None:
            text = b"validation failure"
            opts = struct.pack(">HHH", 15, 2 + len(text), ede) + text
        self.sections[2].append(
            b"\0" + struct.pack(">HHBBHH", OPT, 1232, ext, 0,
                                0x8000 if do else 0, len(opts)) + opts)
        return self

    def wire(self):
        f1 = 0x81 | (TC if self.tc else 0)
        f2 = 0x80 | (AD if self.ad else 0) | self.rcode
        head = struct.pack(">HBBHHHH", self.id, f1, f2, 1,
                           *(len(s) for s in self.sections))
        return head + self.q + b"".join(b"".join(s) for s in self.sections)


Q = ptr(12)  # the question name


def rrsig(covered):
    return struct.pack(">HBBIIIH", covered, 13, 2, 300, 2000000000,
                       1700000000, 4242) + name("secure.test") + bytes(64)


def soa(minimum=300):
    return (name("ns.test") + name("hostmaster.secure.test")
            + struct.pack(">IIIII", 1, 3600, 600, 86400, minimum))


def tlsa(u, s, m, data):
    return bytes([u, s, m]) + data


def txt(*strings):
    return b"".join(bytes([len(s)]) + s for s in strings)


def seeds():
    out = {}
    m = Msg("secure.test", MX)
    m.rr(0, Q, MX, struct.pack(">H", 10) + name("mx1.secure.test"))
    m.rr(0, Q, MX, struct.pack(">H", 20) + b"\3mx2" + Q)
    m.rr(0, Q, RRSIG, rrsig(MX))
    m.rr(2, b"\3mx1" + Q, A, bytes([127, 0, 0, 2]))
    out["mx-compressed"] = m.opt().wire()

    m = Msg("nullmx.secure.test", MX)
    m.rr(0, Q, MX, struct.pack(">H", 0) + b"\0")
    out["null-mx"] = m.opt().wire()

    m = Msg("implicit.secure.test", MX)
    m.rr(1, ptr(12 + 9), SOA, soa(), ttl=3600)
    m.rr(1, ptr(12 + 9), RRSIG, rrsig(SOA))
    m.rr(1, name("hash.secure.test"), NSEC3,
         bytes([1, 0, 0, 10, 4]) + b"salt" + bytes([20]) + bytes(20)
         + bytes([0, 1, 0x40]))
    out["nodata-nsec3"] = m.opt().wire()

    m = Msg("nope.secure.test", A, rcode=3)
    m.rr(1, ptr(12 + 5), SOA, soa(60), ttl=60)
    out["nxdomain"] = m.opt().wire()

    m = Msg("_25._tcp.mx.bogus.test", TLSA, rcode=2, ad=False)
    out["servfail-ede"] = m.opt(ede=9).wire()

    m = Msg("_25._tcp.mx1.secure.test", TLSA)
    m.rr(0, Q, TLSA, tlsa(3, 1, 1, bytes(range(32))))
    m.rr(0, Q, TLSA, tlsa(2, 0, 2, bytes(range(64))))
    m.rr(0, Q, RRSIG, rrsig(TLSA))
    out["tlsa"] = m.opt().wire()

    m = Msg("mxalias.secure.test", A)
    m.rr(0, Q, CNAME, name("mx1.secure.test"))
    # "mx1.secure.test" starts right after this record's fixed fields
    target = 12 + len(m.q) + 2 + 10
    m.rr(0, ptr(target), A, bytes([127, 0, 0, 2]))
    m.rr(0, ptr(target), AAAA, bytes(15) + b"\1")
    out["cname-a-aaaa"] = m.opt().wire()

    m = Msg("_mta-sts.secure.test", TXT)
    m.rr(0, Q, TXT, txt(b"v=STSv1; ", b"id=20240101T000000;"))
    m.rr(0, Q, TXT, txt(b""))
    out["txt-strings"] = m.opt().wire()

    m = Msg("big.secure.test", A, tc=True, ad=False)
    out["truncated-tc"] = m.wire()

    m = Msg("loop.test", A)
    m.rr(0, b"\1a" + ptr(12 + len(m.q)), A, bytes(4))
    out["pointer-loop"] = m.wire()

    m = Msg("c0.test", A)
    for i in range(18):
        m.rr(0, name("c%d.test" % i), CNAME, name("c%d.test" % (i + 1)))
    out["cname-chain-long"] = m.wire()

    m = Msg("x.test", A, ad=False)
    out["badvers"] = m.opt(ext=1).wire()

    # More MX records than a set keeps (32).
    m = Msg("many-mx.test", MX)
    for i in range(40):
        m.rr(0, Q, MX, struct.pack(">H", 100 - i) + b"\2mx" + Q)
    out["many-mx"] = m.wire()

    # One record more than the parser indexes (257, empty RDATA).
    m = Msg("many.test", A)
    for _ in range(257):
        m.rr(0, Q, 65280, b"")
    out["too-many-records"] = m.wire()

    # Owners that are pointers to pointers, each to the one before: 70
    # deep at the end, over the parser's 64.
    m = Msg("deep.test", A)
    at = 12
    for _ in range(70):
        here = 12 + len(m.q) + 12 * len(m.sections[0])
        m.rr(0, ptr(at), 65280, b"")
        at = here
    out["pointer-chain"] = m.wire()
    return out


DICT = """# libFuzzer dictionary for fuzz-dns: pieces of DNS messages.
"\\xc0\\x0c"
"\\x00\\x00\\x29\\x04\\xd0\\x00\\x00\\x80\\x00\\x00\\x00"
"\\x00\\x0f\\x00\\x01"
"\\x00\\x01\\x00\\x01"
"\\x00\\x05\\x00\\x01"
"\\x00\\x06\\x00\\x01"
"\\x00\\x10\\x00\\x01"
"\\x00\\x1c\\x00\\x01"
"\\x00\\x2e\\x00\\x01"
"\\x00\\x34\\x00\\x01"
"\\x00\\x0f\\x00\\x02"
"\\x03\\x01\\x01"
"\\x02\\x00\\x01"
"\\x06secure\\x04test\\x00"
"\\x00\\x00\\x00\\x00"
"""
