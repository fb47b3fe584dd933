#!/usr/bin/python3
"""Routes on the DNS lab (tests/servers/dnslab.py): nsd serving signed
zones, unbound validating them on loopback, and the library's blocking
resolvers answering a route's questions, through tests/routeprobe.

What must hold: MX hosts in preference order; null MX and NXDOMAIN bounce
without an address lookup; a bogus MX defers and never becomes an implicit
MX; NODATA is the implicit MX; CNAMEs at the domain and at the MX host
are followed, and DANE uses the expanded name; TLSA records make a hop
require DANE only where the MX and the host's addresses are secure;
insecure TLSA records are ignored; unusable ones require encryption; the
dane knob and [queue.outbound.dns] decide as documented; a dead first MX
gives way to the next one over real TCP.  With MTA-STS (the lab's
_mta-sts record and tests/servers/sts-https.py, certificate from the lab
CA): the policy is fetched through lib/fetch_curl.c from the address the
route resolved, kept in a file-backed cache, not fetched again while its
id holds, and an unlisted MX is never handed out.
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
import stslab  # noqa: E402

BUILD = os.environ.get("SMTPOUT_BUILD", "build")
PROBE = os.path.join(BUILD, "tests", "routeprobe")

_lab = None
_tmp = None


def lab():
    """One lab for the whole module."""
    global _lab, _tmp
    if _lab is None:
        _tmp = tempfile.mkdtemp(prefix="smtpout-routelab-")
        _lab = dnslab.DnsLab(os.path.join(_tmp, "lab")).start()
    return _lab


def tearDownModule():
    if _lab is not None:
        _lab.stop()
    if _tmp is not None:
        shutil.rmtree(_tmp, True)


def write_config(text):
    fd, path = tempfile.mkstemp(suffix=".ini", dir=_tmp)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def route(domain, *args, config=None, server=None, the_lab=None,
          expect_rc=0):
    """Runs routeprobe; the resolver comes from [queue.outbound.dns]
    resolver = the lab, unless `config` says otherwise."""
    the_lab = the_lab or lab()
    if config is None:
        config = ""
    if "resolver =" not in config:
        config = ("[queue.outbound.dns]\nresolver = %s\n" % the_lab.resolver
                  + config)
    # The DNS tests leave MTA-STS out (the lab publishes an _mta-sts
    # record, whose policy host only StsOnTheLab serves).
    if "mta-sts" not in config:
        config += "\n[queue.outbound.tls]\nmta-sts = disable\n"
    argv = [PROBE, "--config", write_config(config), "--seed", "1"]
    argv += list(args) + [domain]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if r.returncode != expect_rc:
        raise AssertionError("routeprobe exit %d: %s %s" % (
            r.returncode, r.stdout, r.stderr))
    if expect_rc != 0:
        return r
    try:
        return json.loads(r.stdout)
    except ValueError:
        raise AssertionError("routeprobe: %r %s" % (r.stdout, r.stderr))


def queries(doc):
    return ["%s %s" % (q["qtype"], q["qname"]) for q in doc["queries"]
            if "qtype" in q]


def hops(doc):
    return [(h["mx"], h["address"], h["tls"], h["dane"]) for h in doc["hops"]]


@unittest.skipUnless(dnslab.available(), "needs nsd, unbound, ldnsutils")
class MxRules(unittest.TestCase):

    def test_secure_domain_tries_its_mx_in_order_with_dane(self):
        d = route("secure.test")
        self.assertEqual(d["route_dnssec"], "secure")
        self.assertEqual(d["mx"], [{"name": "mx1.secure.test",
                                    "preference": 10},
                                   {"name": "mx2.secure.test",
                                    "preference": 20}])
        self.assertEqual(hops(d), [
            ("mx1.secure.test", "127.0.0.1", "dane", "usable"),
            ("mx2.secure.test", "127.0.0.1", "dane", "usable")])
        # The records are the lab's, as ldns-dane/danetool made them.
        self.assertEqual(d["hops"][0]["tlsa"],
                         [lab().tlsa("ee", 3, 1, 1)])
        self.assertEqual(d["hops"][1]["tlsa"],
                         [lab().tlsa("ca", 2, 1, 1)])
        self.assertEqual(d["hops"][0]["tlsa_base"], "mx1.secure.test")
        self.assertEqual(d["hops"][0]["dane_names"],
                         ["mx1.secure.test", "secure.test"])
        self.assertIn("precedence rank 2", d["hops"][0]["explain"])
        self.assertEqual((d["status"], d["enhanced"]), ("deferred", "4.4.1"))
        self.assertIn("mx2.secure.test[127.0.0.1]:25", d["text"])

    def test_null_mx_bounces_without_an_address_lookup(self):
        d = route("nullmx.secure.test")
        self.assertEqual(queries(d), ["MX nullmx.secure.test."])
        self.assertEqual(d["hops"], [])
        self.assertEqual((d["status"], d["enhanced"]), ("bounced", "5.1.10"))

    def test_nxdomain_bounces(self):
        d = route("nothing.secure.test")
        self.assertEqual(queries(d), ["MX nothing.secure.test."])
        self.assertEqual((d["status"], d["enhanced"]), ("bounced", "5.1.2"))

    def test_bogus_mx_defers_and_never_falls_back_to_addresses(self):
        d = route("bogus.test")
        self.assertEqual(queries(d), ["MX bogus.test."])
        self.assertEqual(d["queries"][0]["verdict"], "bogus")
        self.assertEqual(d["route_dnssec"], "bogus")
        self.assertEqual(d["hops"], [])
        self.assertEqual((d["status"], d["enhanced"]), ("deferred", "4.4.3"))
        self.assertIn("MX lookup for bogus.test failed: DNSSEC bogus",
                      d["text"])

    def test_nodata_is_the_implicit_mx(self):
        d = route("implicit.secure.test")
        self.assertTrue(d["implicit_mx"])
        self.assertEqual(hops(d), [("implicit.secure.test", "127.0.0.1",
                                    "local", "no-tlsa")])
        self.assertEqual(d["hops"][0]["preference"], 0)
        self.assertIn("secure NXDOMAIN denial", d["hops"][0]["explain"])

    def test_cname_at_the_domain_is_followed(self):
        d = route("alias.secure.test")
        self.assertEqual([m["name"] for m in d["mx"]],
                         ["mx1.secure.test", "mx2.secure.test"])
        self.assertEqual(d["hops"][0]["tls"], "dane")

    def test_both_families_interleaved(self):
        d = route("dual.secure.test",
                  config="[queue.outbound]\naddress-preference = ipv6\n")
        self.assertEqual(hops(d), [
            ("dual.secure.test", "::1", "local", "no-tlsa"),
            ("dual.secure.test", "127.0.0.1", "local", "no-tlsa")])
        d = route("dual.secure.test",
                  config="[queue.outbound]\naddress-preference = ipv4\n"
                         "mx-address-limit = 1\n")
        self.assertEqual(hops(d), [
            ("dual.secure.test", "127.0.0.1", "local", "no-tlsa")])
        self.assertIn("(mx-address-limit reached)", d["text"])

    def test_outcomes_choose_the_next_hop(self):
        d = route("secure.test", "--outcomes", "connect-failed,done")
        self.assertEqual([h["outcome"] for h in d["hops"]],
                         ["connect-failed", "done"])
        self.assertIsNone(d["status"])
        d = route("secure.test", "--outcomes", "session-failed,host-failed",
                  config="[queue.outbound]\nmx-session-limit = 1\n")
        self.assertEqual(len(d["hops"]), 1)
        self.assertIn("(mx-session-limit reached)", d["text"])


@unittest.skipUnless(dnslab.available(), "needs nsd, unbound, ldnsutils")
class DaneDecisions(unittest.TestCase):

    def test_insecure_zone_tlsa_is_never_asked_for(self):
        d = route("insecure.test")
        self.assertEqual(queries(d), ["MX insecure.test.",
                                      "A mx.insecure.test.",
                                      "AAAA mx.insecure.test."])
        self.assertEqual(hops(d), [("mx.insecure.test", "127.0.0.1",
                                    "local", "mx-insecure")])

    def test_mx_name_that_is_a_cname_uses_the_expanded_tlsa_base(self):
        d = route("cnamemx.secure.test")
        self.assertIn("TLSA _25._tcp.mx1.secure.test.", queries(d))
        h = d["hops"][0]
        self.assertEqual((h["mx"], h["tls"], h["tlsa_base"]),
                         ("mxalias.secure.test", "dane", "mx1.secure.test"))
        self.assertEqual(h["dane_names"], ["mx1.secure.test",
                                           "mxalias.secure.test",
                                           "cnamemx.secure.test"])
        self.assertIn("CNAME: mxalias.secure.test is an alias of "
                      "mx1.secure.test", h["explain"])

    def test_unusable_tlsa_requires_encryption(self):
        d = route("pkix.secure.test")
        self.assertEqual(hops(d), [("mxpkix.secure.test", "127.0.0.1",
                                    "encrypt", "unusable")])

    def test_tlsa_name_follows_smtp_port(self):
        d = route("secure.test", config="[queue.outbound]\nsmtp-port = 2525\n")
        self.assertIn("TLSA _2525._tcp.mx1.secure.test.", queries(d))
        self.assertEqual(d["hops"][0]["port"], 2525)
        self.assertEqual(d["hops"][0]["tls"], "dane")

    def test_dane_require_defers_what_dane_cannot_authenticate(self):
        cfg = "[queue.outbound.tls]\ndane = require\n"
        d = route("insecure.test", config=cfg)
        self.assertEqual(d["hops"], [])
        self.assertEqual((d["status"], d["enhanced"]), ("deferred", "4.7.5"))
        self.assertIn("dane = require", d["text"])
        d = route("implicit.secure.test", config=cfg)
        self.assertEqual(d["hops"], [])
        self.assertIn("no TLSA records", d["text"])
        d = route("secure.test", config=cfg)
        self.assertEqual([h["tls"] for h in d["hops"]], ["dane", "dane"])

    def test_dane_disable_for_one_mx_and_explain_names_the_rule(self):
        # Line 5: route() puts two lines of [queue.outbound.dns] first.
        cfg = ('[destination "legacy"]\nmx = mx1.secure.test\n'
               "dane = disable\n")
        d = route("secure.test", config=cfg)
        self.assertNotIn("TLSA _25._tcp.mx1.secure.test.", queries(d))
        self.assertEqual(hops(d), [
            ("mx1.secure.test", "127.0.0.1", "local", "disabled"),
            ("mx2.secure.test", "127.0.0.1", "dane", "usable")])
        self.assertRegex(d["hops"][0]["explain"],
                         r'dane = disable \(\[destination "legacy"\] at '
                         r'.*\.ini:5\)')

    def test_dnssec_off_makes_dane_unavailable_not_absent(self):
        d = route("secure.test", config="[queue.outbound.dns]\n"
                                        "resolver = %s\ndnssec = off\n"
                  % lab().resolver)
        self.assertFalse(d["dnssec_capable"])
        self.assertFalse([q for q in d["queries"] if q["qtype"] == "TLSA"])
        self.assertEqual([h["dane"] for h in d["hops"]],
                         ["unavailable", "unavailable"])
        self.assertIn("DANE: unavailable", d["hops"][0]["explain"])

    def test_dane_require_with_dnssec_off_is_a_configuration_error(self):
        r = route("secure.test", config="[queue.outbound.dns]\n"
                  "resolver = %s\ndnssec = off\n[queue.outbound.tls]\n"
                  "dane = require\n" % lab().resolver, expect_rc=78)
        self.assertIn("dnssec = off makes DANE unavailable, but dane = "
                      "require is set at", r.stderr)

    def test_validate_mode_with_libunbound_decides_alike(self):
        cfg = ("[queue.outbound.dns]\nresolver = %s\ndnssec = validate\n"
               "trust-anchor-file = %s\n" % (lab().resolver, lab().anchor))
        argv = [PROBE, "--config", write_config(cfg)]
        probe = subprocess.run(argv + ["--unbound-config",
                                       lab().client_config, "secure.test"],
                               capture_output=True, text=True, timeout=300)
        if probe.returncode == 78 and "libunbound" in probe.stderr:
            self.skipTest("built without libunbound")
        d = route("secure.test", "--unbound-config", lab().client_config,
                  config=cfg)
        self.assertEqual(hops(d), [
            ("mx1.secure.test", "127.0.0.1", "dane", "usable"),
            ("mx2.secure.test", "127.0.0.1", "dane", "usable")])
        d = route("bogus.test", "--unbound-config", lab().client_config,
                  config=cfg)
        self.assertEqual(d["queries"][0]["verdict"], "bogus")
        self.assertEqual((d["status"], d["enhanced"]), ("deferred", "4.4.3"))


@unittest.skipUnless(dnslab.available(), "needs nsd, unbound, ldnsutils")
class DeadFirstMx(unittest.TestCase):
    """mx1 on an address nobody listens on, mx2 listening: real TCP."""

    @classmethod
    def setUpClass(cls):
        cls.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cls.listener.bind(("127.0.13.2", 0))
        cls.listener.listen(8)
        cls.port = cls.listener.getsockname()[1]
        cls.tmp = tempfile.mkdtemp(prefix="smtpout-routelab-dead-")
        cls.lab = dnslab.DnsLab(
            os.path.join(cls.tmp, "lab"), ports=(cls.port,), pki=lab().pki,
            addresses={"mx1": ["127.0.13.1"], "mx2": ["127.0.13.2"]}).start()

    @classmethod
    def tearDownClass(cls):
        cls.lab.stop()
        cls.listener.close()
        shutil.rmtree(cls.tmp, True)

    def test_dead_first_mx_gives_way_to_the_next(self):
        d = route("secure.test", "--connect", the_lab=self.lab,
                  config="[queue.outbound]\nsmtp-port = %d\n" % self.port)
        self.assertEqual(
            [(h["mx"], h["address"], h["port"], h["tls"], h["outcome"])
             for h in d["hops"]],
            [("mx1.secure.test", "127.0.13.1", self.port, "dane",
              "connect-failed"),
             ("mx2.secure.test", "127.0.13.2", self.port, "dane", "done")])
        self.assertEqual(d["hops"][0]["detail"], "Connection refused")
        self.assertIsNone(d["status"])


POLICY = ("version: STSv1\nmode: enforce\nmx: mx1.secure.test\n"
          "max_age: 86400\n")


@unittest.skipUnless(dnslab.available(), "needs nsd, unbound, ldnsutils")
@unittest.skipUnless(os.environ.get("SMTPOUT_HAVE_CURL", "1") == "1",
                     "needs -Dcurl")
class StsOnTheLab(unittest.TestCase):
    """A route to secure.test with MTA-STS on: mx1 and mx2 have DANE, the
    policy lists mx1 only."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="smtpout-routelab-sts-")
        cls.pki = stslab.sts_pki(os.path.join(cls.tmp, "pki"),
                                 ["mta-sts.secure.test"])
        cls.server = stslab.StsHttps(cls.tmp, {
            "mta-sts.secure.test": {"policy": POLICY}}, cls.pki["sts"])

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, True)

    def sts_route(self, cache, config="[queue.outbound.tls]\n"
                                       "mta-sts = optional\n",
                  outcomes="done"):
        return route("secure.test", "--sts-cache", cache, "--ca-file",
                     self.pki["ca"], "--https-port", str(self.server.port),
                     "--outcomes", outcomes, config=config)

    def test_policy_fetched_once_and_enforced_from_the_cache(self):
        cache = tempfile.mkdtemp(dir=self.tmp)
        before = len(self.server.fetches("mta-sts.secure.test"))
        d = self.sts_route(cache)
        kinds = [q.get("kind", "dns") for q in d["queries"]]
        self.assertEqual(kinds.count("https"), 1, d["queries"])
        fetch = [q for q in d["queries"] if q.get("kind") == "https"][0]
        self.assertEqual(fetch["url"],
                         "https://mta-sts.secure.test/.well-known/mta-sts.txt")
        self.assertEqual(fetch["address"], "127.0.0.1")
        self.assertEqual((fetch["outcome"], fetch["status"]), (0, 200))
        # The policy host was resolved through the route, like the MX.
        self.assertIn("A mta-sts.secure.test.", queries(d))
        self.assertEqual(d["sts_mode"], "enforce")
        self.assertEqual(d["sts_id"], "20240101T000000")
        # mx2 has DANE, but the policy does not list it: never a hop.
        self.assertEqual(hops(d), [("mx1.secure.test", "127.0.0.1", "dane",
                                    "usable")])
        self.assertEqual(d["hops"][0]["tls_source"], "dane")
        self.assertEqual(d["hops"][0]["sts_mode"], "enforce")
        self.assertIsNone(d["status"])
        self.assertTrue(os.path.exists(os.path.join(cache,
                                                    "sts_secure.test")))
        self.assertEqual(len(self.server.fetches("mta-sts.secure.test")),
                         before + 1)
        # The second route reads the cache: no fetch, the same hops.
        d = self.sts_route(cache)
        self.assertNotIn("https", [q.get("kind") for q in d["queries"]])
        self.assertIn({"kind": "cache-get", "key": "sts:secure.test",
                       "hit": True}, d["queries"])
        self.assertEqual(hops(d), [("mx1.secure.test", "127.0.0.1", "dane",
                                    "usable")])
        self.assertIn("cached policy id 20240101T000000", d["sts_explain"])
        self.assertEqual(len(self.server.fetches("mta-sts.secure.test")),
                         before + 1)

    def test_without_dane_the_policy_requires_pkix(self):
        cache = tempfile.mkdtemp(dir=self.tmp)
        d = self.sts_route(cache, "[queue.outbound.tls]\nmta-sts = optional\n"
                                  "dane = disable\nstarttls = disable\n",
                           outcomes="connect-failed")
        self.assertEqual([(h["mx"], h["tls"], h["tls_source"])
                          for h in d["hops"]],
                         [("mx1.secure.test", "pkix", "mta-sts")])
        self.assertIn("overridden for this hop: starttls = disable",
                      d["hops"][0]["explain"])
        # mx2 was skipped and reported.
        skipped = [e for e in d["events"]
                   if e.get("receiving-mx-hostname") == "mx2.secure.test"]
        self.assertEqual(len(skipped), 1)
        self.assertEqual(skipped[0]["result-type"], "validation-failure")
        self.assertEqual(skipped[0]["policy-type"], "sts")

    def test_untrusted_policy_host_is_sts_webpki_invalid(self):
        cache = tempfile.mkdtemp(dir=self.tmp)
        self.server.set_hosts({"mta-sts.secure.test": {
            "policy": POLICY, "cert": self.pki["sts-untrusted"][0],
            "key": self.pki["sts-untrusted"][1]}})
        try:
            d = self.sts_route(cache)
        finally:
            self.server.set_hosts({"mta-sts.secure.test": {"policy": POLICY}})
        self.assertEqual(d["sts_mode"], "none")
        # No policy: both MX hosts, under DANE.
        self.assertEqual([h["mx"] for h in d["hops"]], ["mx1.secure.test"])
        types = [e.get("result-type") for e in d["events"]]
        self.assertIn("sts-webpki-invalid", types)


if __name__ == "__main__":
    from testlib import main
    main()
