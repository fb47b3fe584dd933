#!/usr/bin/python3
"""The DNS lab (tests/servers/dnslab.py): nsd serving DNSSEC-signed zones,
unbound validating them on loopback.  Checks the lab itself with dig (a
tool nobody here wrote), then the library's DNS parser (lib/dns.c), its
blocking resolvers (lib/resolve_*.c) and its TLSA matcher (lib/dane.c)
against it, through tests/dnsprobe.

What must hold: secure answers are secure (AD from the loopback
resolver, or libunbound's own validation), insecure ones insecure, bogus
ones bogus and never data; null MX, NODATA (implicit MX), NXDOMAIN, CNAME
chains, TXT strings and truncated answers read right; the TLSA records
the lab publishes authenticate the lab's certificates, and not others.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "servers"))
sys.path.insert(0, HERE)
import dnslab  # noqa: E402

BUILD = os.environ.get("SMTPOUT_BUILD", "build")
PROBE = os.path.join(BUILD, "tests", "dnsprobe")

_lab = None
_tmp = None


def lab():
    """One lab for the whole module (about a second to make)."""
    global _lab, _tmp
    if _lab is None:
        _tmp = tempfile.mkdtemp(prefix="smtpout-dnslab-")
        _lab = dnslab.DnsLab(os.path.join(_tmp, "lab")).start()
    return _lab


def tearDownModule():
    if _lab is not None:
        _lab.stop()
    if _tmp is not None:
        shutil.rmtree(_tmp, True)


def probe(name, qtype, *args, server=None, mode="trust-ad"):
    argv = [PROBE, "--mode", mode, "--timeout", "20000"]
    if server is not False:
        argv += ["--server", server or lab().resolver]
    argv += list(args) + [name, qtype]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    try:
        return json.loads(r.stdout)
    except ValueError:
        raise AssertionError("dnsprobe: %r %s" % (r.stdout, r.stderr))


def dig(name, qtype):
    r = subprocess.run(["dig", "@127.0.0.1", "-p", str(lab().port),
                        "+dnssec", "+tries=1", "+time=10", name, qtype],
                       capture_output=True, text=True, timeout=60)
    return r.stdout


def dig_flags(out):
    for line in out.splitlines():
        if line.startswith(";; flags:"):
            return line.split(":")[1].split(";")[0].split()
    raise AssertionError("no flags in dig output:\n" + out)


def pki(name):
    return os.path.join(lab().pki, name)


@unittest.skipUnless(dnslab.available(), "needs nsd, unbound, ldnsutils")
class LabAsDigSeesIt(unittest.TestCase):
    """The lab is what the other tests take it for."""

    def test_secure_answer_has_ad(self):
        out = dig("_25._tcp.mx1.secure.test", "TLSA")
        self.assertIn("status: NOERROR", out)
        self.assertIn("ad", dig_flags(out))
        self.assertIn("TLSA\t3 1 1", out)

    def test_insecure_answer_has_no_ad(self):
        out = dig("_25._tcp.mx.insecure.test", "TLSA")
        self.assertIn("status: NOERROR", out)
        self.assertNotIn("ad", dig_flags(out))

    def test_bogus_answer_is_servfail_with_extended_error(self):
        out = dig("_25._tcp.mx.bogus.test", "TLSA")
        self.assertIn("status: SERVFAIL", out)
        self.assertIn("EDE:", out)
        self.assertNotIn("TLSA\t3", out)


@unittest.skipUnless(dnslab.available(), "needs nsd, unbound, ldnsutils")
class ParserOnLabAnswers(unittest.TestCase):
    """lib/dns.c reading real answers, through the trust-ad resolver."""

    def test_secure_mx_set(self):
        r = probe("secure.test", "MX")
        self.assertEqual(r["rv"], 0, r)
        self.assertEqual(r["verdict"], "secure")
        self.assertTrue(r["ad"])
        self.assertTrue(r["dnssec_capable"])
        self.assertEqual(r["outcome"], "data")
        # In the resolver's order (unbound rotates RRsets): the route
        # sorts.
        self.assertEqual(sorted(r["mx"], key=lambda m: m["preference"]), [
            {"preference": 10, "exchange": "mx1.secure.test"},
            {"preference": 20, "exchange": "mx2.secure.test"}])
        self.assertFalse(r["null_mx"])

    def test_null_mx(self):
        r = probe("nullmx.secure.test", "MX")
        self.assertEqual(r["verdict"], "secure")
        self.assertTrue(r["null_mx"])
        self.assertEqual(r["mx"], [{"preference": 0, "exchange": "."}])

    def test_implicit_mx_is_a_secure_nodata(self):
        r = probe("implicit.secure.test", "MX")
        self.assertEqual(r["rcode"], 0)
        self.assertEqual(r["outcome"], "nodata")
        self.assertEqual(r["verdict"], "secure")
        self.assertEqual(r["mx"], [])
        self.assertEqual(r["negative_ttl"], 300)
        a = probe("implicit.secure.test", "A")
        self.assertEqual(a["addresses"], ["127.0.0.1"])

    def test_nxdomain_is_a_secure_denial(self):
        r = probe("nope.secure.test", "MX")
        self.assertEqual(r["rcode"], 3)
        self.assertEqual(r["outcome"], "nxdomain")
        self.assertEqual(r["verdict"], "secure")

    def test_cname_to_the_mx_host_is_followed(self):
        r = probe("mxalias.secure.test", "A")
        self.assertEqual(r["verdict"], "secure")
        self.assertEqual(r["target"], "mx1.secure.test")
        self.assertEqual(r["cname_links"], 1)
        self.assertEqual(r["addresses"], ["127.0.0.1"])

    def test_cname_at_the_domain_gives_its_mx(self):
        r = probe("alias.secure.test", "MX")
        self.assertEqual(r["target"], "secure.test")
        self.assertEqual(sorted(m["exchange"] for m in r["mx"]),
                         ["mx1.secure.test", "mx2.secure.test"])

    def test_a_and_aaaa(self):
        self.assertEqual(probe("dual.secure.test", "AAAA")["addresses"],
                         ["::1"])
        self.assertEqual(probe("dual.secure.test", "A")["addresses"],
                         ["127.0.0.1"])

    def test_txt_strings_are_joined_per_record(self):
        r = probe("_smtp._tls.secure.test", "TXT")
        self.assertEqual(r["txt"], ["v=TLSRPTv1; rua=mailto:tlsrpt@secure.test"])
        r = probe("_mta-sts.secure.test", "TXT")
        self.assertEqual(r["txt"], ["v=STSv1; id=20240101T000000;"])

    def test_truncated_udp_answer_is_asked_again_over_tcp(self):
        # Sixteen 200-octet strings do not fit the 1232 octets the query
        # announces: unbound sets TC, the stub must use TCP.
        out = dig("big.secure.test", "TXT")
        self.assertIn("status: NOERROR", out)
        r = probe("big.secure.test", "TXT")
        self.assertEqual(r["rv"], 0, r)
        self.assertFalse(r["tc"])
        self.assertEqual(r["verdict"], "secure")
        self.assertEqual(len(r["txt"]), 16)
        self.assertTrue(all(len(t) == 203 for t in r["txt"]))

    def test_insecure_zone_is_insecure(self):
        r = probe("_25._tcp.mx.insecure.test", "TLSA")
        self.assertEqual(r["rv"], 0)
        self.assertEqual(r["verdict"], "insecure")
        self.assertFalse(r["ad"])
        # The records are there; a client must not use them for DANE.
        self.assertEqual(len(r["tlsa"]), 1)

    def test_bogus_zone_is_bogus_and_has_no_data(self):
        r = probe("_25._tcp.mx.bogus.test", "TLSA")
        self.assertEqual(r["rv"], 0, r)
        self.assertEqual(r["rcode"], 2)
        self.assertEqual(r["verdict"], "bogus")
        self.assertIsNotNone(r["ede"])
        self.assertIn("extended error", r["why"])
        self.assertEqual(r["tlsa"], [])
        r = probe("bogus.test", "MX")
        self.assertEqual(r["verdict"], "bogus")
        self.assertEqual(r["mx"], [])


@unittest.skipUnless(dnslab.available(), "needs nsd, unbound, ldnsutils")
class DaneOnLabRecords(unittest.TestCase):
    """The TLSA records the lab publishes, read by lib/dns.c and matched
    by lib/dane.c against the lab's certificates."""

    def test_dane_ee_self_signed_certificate(self):
        r = probe("_25._tcp.mx1.secure.test", "TLSA",
                  "--dane-chain", pki("ee-chain.pem"))
        self.assertEqual(r["verdict"], "secure")
        self.assertEqual(r["dane"]["status"], "matched", r["dane"])
        self.assertEqual(r["dane"]["matched"], "3 1 1")
        r = probe("_25._tcp.mx1.secure.test", "TLSA",
                  "--dane-chain", pki("mx1-ca-chain.pem"))
        self.assertEqual(r["dane"]["status"], "no-match")

    def test_dane_ta_needs_the_right_name(self):
        for port in ("25", "2525"):
            r = probe("_%s._tcp.mx2.secure.test" % port, "TLSA",
                      "--dane-chain", pki("mx2-chain.pem"),
                      "--dane-name", "mx2.secure.test")
            self.assertEqual(r["dane"]["status"], "matched", r["dane"])
            self.assertEqual(r["dane"]["matched"], "2 1 1")
        r = probe("_25._tcp.mx2.secure.test", "TLSA",
                  "--dane-chain", pki("wrongname-chain.pem"),
                  "--dane-name", "mx2.secure.test")
        self.assertEqual(r["dane"]["status"], "name-mismatch")
        r = probe("_25._tcp.mx2.secure.test", "TLSA",
                  "--dane-chain", pki("forged-chain.pem"),
                  "--dane-name", "mx2.secure.test")
        self.assertNotEqual(r["dane"]["status"], "matched")


@unittest.skipUnless(dnslab.available(), "needs nsd, unbound, ldnsutils")
class Resolvers(unittest.TestCase):
    """The blocking resolvers' verdicts and failure handling."""

    def test_off_mode_never_reports_secure(self):
        r = probe("secure.test", "MX", mode="off")
        self.assertEqual(r["rv"], 0)
        self.assertFalse(r["dnssec_capable"])
        self.assertEqual(r["verdict"], "insecure")
        self.assertEqual(len(r["mx"]), 2)
        r = probe("_25._tcp.mx.bogus.test", "TLSA", mode="off")
        self.assertEqual(r["verdict"], "indeterminate")

    def test_a_dead_first_server_is_skipped(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        dead = "127.0.0.1:%d" % s.getsockname()[1]
        s.close()  # nothing listens there now: ICMP port unreachable
        r = probe("secure.test", "MX", "--server", lab().resolver,
                  server=dead)
        self.assertEqual(r["rv"], 0, r)
        self.assertEqual(r["verdict"], "secure")

    def test_no_server_answering_is_indeterminate(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))  # bound, never answers
        try:
            r = probe("secure.test", "MX", "--timeout", "300",
                      server="127.0.0.1:%d" % s.getsockname()[1])
        finally:
            s.close()
        self.assertNotEqual(r["rv"], 0)
        self.assertEqual(r["verdict"], "indeterminate")
        self.assertEqual(r["error"], "timed out waiting for the server")

    def test_resolv_conf_names_the_servers(self):
        d = tempfile.mkdtemp(prefix="smtpout-resolv-")
        try:
            conf = os.path.join(d, "resolv.conf")
            with open(conf, "w") as f:
                f.write("# comment\nsearch example\nnameserver 127.0.0.1\n"
                        "nameserver ::1\noptions trust-ad\n")
            # resolv.conf has no ports: both on 53, where the lab is not
            # (whatever answers there, if anything, is not checked).
            r = probe("secure.test", "MX", "--resolv-conf", conf,
                      "--timeout", "300", server=False)
            self.assertEqual(r["servers"], ["127.0.0.1:53", "[::1]:53"])
            self.assertTrue(r["dnssec_capable"])
        finally:
            shutil.rmtree(d, True)

    def test_validate_mode_with_libunbound(self):
        lb = lab()
        args = ("--trust-anchor", lb.anchor, "--unbound-config",
                lb.client_config)
        r = probe("secure.test", "MX", *args, mode="validate")
        if r["rv"] != 0 and "libunbound" in (r.get("error") or ""):
            self.skipTest("built without libunbound")
        self.assertEqual(r["rv"], 0, r)
        self.assertEqual(r["verdict"], "secure")
        self.assertEqual(len(r["mx"]), 2)
        r = probe("_25._tcp.mx.insecure.test", "TLSA", *args, mode="validate")
        self.assertEqual(r["verdict"], "insecure")
        r = probe("_25._tcp.mx.bogus.test", "TLSA", *args, mode="validate")
        self.assertEqual(r["verdict"], "bogus")
        self.assertTrue(r["why"])
        r = probe("implicit.secure.test", "MX", *args, mode="validate")
        self.assertEqual((r["verdict"], r["outcome"]), ("secure", "nodata"))
        r = probe("nope.secure.test", "MX", *args, mode="validate")
        self.assertEqual((r["verdict"], r["outcome"]), ("secure", "nxdomain"))
        r = probe("nullmx.secure.test", "MX", *args, mode="validate")
        self.assertTrue(r["null_mx"])
        r = probe("big.secure.test", "TXT", *args, mode="validate")
        self.assertEqual(len(r["txt"]), 16)

    def test_validate_mode_with_a_wrong_anchor_is_bogus(self):
        lb = lab()
        d = tempfile.mkdtemp(prefix="smtpout-anchor-")
        try:
            wrong = os.path.join(d, "wrong.ds")
            with open(lb.anchor) as f:
                ds = f.read().split()
            ds[-1] = "00" * 32  # the digest of no key
            with open(wrong, "w") as f:
                f.write(" ".join(ds) + "\n")
            r = probe("secure.test", "MX", "--trust-anchor", wrong,
                      "--unbound-config", lb.client_config, mode="validate")
            if r["rv"] != 0 and "libunbound" in (r.get("error") or ""):
                self.skipTest("built without libunbound")
            self.assertEqual(r["verdict"], "bogus", r)
        finally:
            shutil.rmtree(d, True)


@unittest.skipUnless(dnslab.available(), "needs nsd, unbound, ldnsutils")
class ResolverWithoutExtendedErrors(unittest.TestCase):
    """A validating resolver that says only SERVFAIL: the stub asks again
    with checking disabled to tell bogus from a failure."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="smtpout-dnslab-noede-")
        cls.lab = dnslab.DnsLab(os.path.join(cls.tmp, "lab"), ede=False,
                                pki=lab().pki).start()

    @classmethod
    def tearDownClass(cls):
        cls.lab.stop()
        shutil.rmtree(cls.tmp, True)

    def test_bogus_is_found_with_checking_disabled(self):
        r = probe("_25._tcp.mx.bogus.test", "TLSA", server=self.lab.resolver)
        self.assertEqual(r["rcode"], 2)
        self.assertIsNone(r["ede"])
        self.assertEqual(r["verdict"], "bogus", r)
        self.assertIn("checking disabled", r["why"])
        r = probe("secure.test", "MX", server=self.lab.resolver)
        self.assertEqual(r["verdict"], "secure")


if __name__ == "__main__":
    from testlib import main
    main()
