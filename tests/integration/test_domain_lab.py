#!/usr/bin/python3
"""smtpout-send --domain on the DNS lab: real MX hosts behind real DNSSEC.

The lab (tests/servers/dnslab.py) serves signed zones through a validating
unbound; every MX host of the zones below has its own loopback address
(127.A.B.x, A and B drawn per run so that two runs on one machine do not
meet on the policy host's fixed port 443), all on one port P (the configuration's smtp-port, so TLSA
records sit at _P._tcp).  One private Postfix (tests/servers/postfix.py)
listens on most of them, each listener with its own certificate (or no
STARTTLS) and its own log name, so a test can tell which host was
contacted; an aiosmtpd that offers REQUIRETLS after STARTTLS
(tests/servers/aiosmtpd-sink.py --requiretls) is one more; the MTA-STS
policy host (tests/servers/sts-https.py) listens on 127.A.B.250:443.
Certificates come from the lab's PKI (tests/certs/mkdane.sh) and leaves
issued by its CA at test time; the configuration trusts that CA for SMTP
and for policy fetches.

  secure.test     MX 10 mx1 (DANE-EE, self-signed), MX 20 mx2 (DANE-TA)
  ta              MX mx2: DANE-TA, the right name
  tawrong         MX mxtawrong: DANE-TA record, certificate for other.example
  mismatch        MX mxmis: TLSA of another key; a certificate PKIX accepts
  notls           MX mxnotls: TLSA, no STARTTLS
  dead            MX 10 mxdead (nobody listens), MX 20 mxalive (plaintext)
  implicit        no MX: its own A record (plaintext)
  insecure.test   unsigned: its TLSA records must be ignored
  bogus.test      DNSSEC bogus; nullmx: MX 0 .
  stsok           MTA-STS enforce, listed MX with a valid certificate
  stsbad          enforce, MX certificate for another name
  stsmx           enforce listing mx-listed (20) but not mx-unlisted (10)
  ststest         testing, MX without STARTTLS
  stsfail         TXT id changed, policy host answers 500; the cache holds
                  the old policy, listing mx-stsfail-b (20) only
  both            DANE on both MX hosts, enforce listing mx-both1 only;
                  mx-both1's certificate is self-signed (PKIX would fail)
  rt              DANE host (aiosmtpd) offering REQUIRETLS after STARTTLS
  relay           A only (no TLSA): a smarthost for [relay] sections, an
                  aiosmtpd with AUTH after STARTTLS and a certificate for
                  relay.secure.test from the lab CA; relay-othername the
                  same with a certificate for other.secure.test;
                  relay-465 the same under implicit TLS

Sessions are made for each hop (smtpout_session_new_for_hop()), so the
hop's TLS requirement is enforced: DANE matching, PKIX under MTA-STS,
REQUIRETLS.
"""
import base64
import ctypes
import datetime
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "servers"))
sys.path.insert(0, HERE)
import dnslab  # noqa: E402
import postfix  # noqa: E402
import stslab  # noqa: E402
import testlib  # noqa: E402

# Every address of the lab is on loopback (127/8 is all lo's on Linux);
# SMTPOUT_LAB_NET ("127.0.71.") fixes it for a reproduction.
NET = os.environ.get("SMTPOUT_LAB_NET") or "127.%d.%d." % (
    random.SystemRandom().randint(72, 254), random.SystemRandom().randint(1, 254))
TLSRPT = os.path.join(testlib.BUILD, "examples", "tools", "smtpout-tlsrpt")
POLICY_TOOL = os.path.join(testlib.BUILD, "examples", "tools",
                           "smtpout-policy")

# Host label -> last octet.
HOSTS = {
    "mx1": 1, "mx2": 2, "mxtawrong": 3, "mxmis": 4, "mxnotls": 5,
    "mxdead": 6, "mxalive": 7, "implicit": 7, "insecure-mx": 8,
    "mx-stsok": 10, "mx-stsbad": 11, "mx-unlisted": 12, "mx-listed": 13,
    "mx-ststest": 14, "mx-stsfail-a": 15, "mx-stsfail-b": 16,
    "mx-both0": 17, "mx-both1": 18, "mx-rt": 20,
    "relay": 30, "relay-othername": 31, "relay-465": 32,
}
STS_DOMAINS = ("stsok", "stsbad", "stsmx", "ststest", "stsfail", "both")


def free_port(addresses):
    """A TCP port free on every address (and on the wildcard, so that no
    one holds it anywhere)."""
    for _ in range(100):
        probe = socket.socket()
        probe.bind(("0.0.0.0", 0))
        port = probe.getsockname()[1]
        probe.close()
        held = []
        try:
            for a in addresses:
                s = socket.socket()
                s.bind((a, port))
                held.append(s)
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
        return port
    raise RuntimeError("no common free port")


def zone_records(lab, net=NET):
    """The lab's extra secure.test records (with TLSA data from its PKI),
    the hosts on `net`."""
    ee = lambda label: lab.tlsa_records(label, "ee", 3)  # noqa: E731
    ta = lambda label: lab.tlsa_records(label, "ca", 2)  # noqa: E731
    r = []
    for label, octet in HOSTS.items():
        if label not in ("mx1", "mx2", "implicit", "insecure-mx"):
            r.append("%s A %s%d" % (label, net, octet))
    r += ["ta MX 10 mx2",
          "tawrong MX 10 mxtawrong"] + ta("mxtawrong")
    r += ["mismatch MX 10 mxmis"] + ee("mxmis")
    r += ["notls MX 10 mxnotls"] + ee("mxnotls")
    r += ["dead MX 10 mxdead", "dead MX 20 mxalive"]
    r += ["stsok MX 10 mx-stsok",
          "stsbad MX 10 mx-stsbad",
          "stsmx MX 10 mx-unlisted", "stsmx MX 20 mx-listed",
          "ststest MX 10 mx-ststest",
          "stsfail MX 10 mx-stsfail-a", "stsfail MX 20 mx-stsfail-b",
          "both MX 10 mx-both0", "both MX 20 mx-both1"]
    r += ee("mx-both0") + ee("mx-both1")
    r += ["rt MX 10 mx-rt"] + ee("mx-rt")
    for d in STS_DOMAINS:
        r.append('_mta-sts.%s TXT "v=STSv1; id=%s1;"' % (
            d, "new" if d == "stsfail" else d))
        r.append("mta-sts.%s A %s250" % (d, net))
    return {"secure.test": r}


def policy(mode, *mx, max_age=86400):
    return ("version: STSv1\nmode: %s\n%smax_age: %d\n"
            % (mode, "".join("mx: %s.secure.test\n" % m for m in mx),
               max_age))


POLICIES = {
    "stsok": policy("enforce", "mx-stsok"),
    "stsbad": policy("enforce", "mx-stsbad"),
    "stsmx": policy("enforce", "mx-listed"),
    "ststest": policy("testing", "mx-ststest"),
    "both": policy("enforce", "mx-both1"),
}

MESSAGE = b"Subject: smtpout route test\r\n\r\nhello\r\n"

_env = None
_env_error = None


class Lab:
    """DNS, Postfix, aiosmtpd and the policy host, for the whole module;
    every address on `net` (another test module can run its own lab beside
    this one on another net: the policy host's port 443 is per address)."""

    def __init__(self, net=NET):
        self.net = net
        self.tmp = tempfile.mkdtemp(prefix="smtpout-domainlab-")
        os.chmod(self.tmp, 0o755)
        addresses = sorted({net + str(o) for o in HOSTS.values()}
                           | {net + "250"})
        self.port = free_port(addresses)
        self.dns = self.postfix = self.rt = self.sts = None
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        net = self.net
        self.dns = dnslab.DnsLab(
            os.path.join(self.tmp, "lab"), ports=(self.port,),
            addresses={"mx1": [net + "1"], "mx2": [net + "2"],
                       "implicit": [net + "7"],
                       "insecure-mx": [net + "8"],
                       "mta-sts": [net + "250"]},
            extra_records=lambda lab: zone_records(lab, net)).start()
        pki = self.pki = self.dns.pki
        os.chmod(pki, 0o755)
        leaf = lambda name, *dns: stslab.leaf(pki, name, "ca",  # noqa: E731
                                              list(dns))
        chain = lambda name: (os.path.join(pki, name + "-chain.pem"),  # noqa
                              os.path.join(pki, name + ".key"))
        self.ca = os.path.join(pki, "ca.pem")
        certs = {
            "mx1": chain("ee"),             # self-signed: DANE-EE only
            "mx2": chain("mx2"),            # under ica under ca: DANE-TA
            "tawrong": chain("wrongname"),  # other.example under ica
            "mis": leaf("mxmis", "mxmis.secure.test"),
            "insecure": chain("mx2"),       # not mx.insecure.test
            "stsok": leaf("mx-stsok", "mx-stsok.secure.test"),
            "stsbad": chain("wrongname"),
            "unlisted": leaf("mx-unlisted", "mx-unlisted.secure.test"),
            "listed": leaf("mx-listed", "mx-listed.secure.test"),
            "stsfaila": leaf("mx-stsfail-a", "mx-stsfail-a.secure.test"),
            "stsfailb": leaf("mx-stsfail-b", "mx-stsfail-b.secure.test"),
            "both0": chain("ee"),
            "both1": chain("ee"),
        }
        plain = {"notls": 5, "alive": 7, "ststest": 14}
        octets = {"mx1": 1, "mx2": 2, "tawrong": 3, "mis": 4, "insecure": 8,
                  "stsok": 10, "stsbad": 11, "unlisted": 12, "listed": 13,
                  "stsfaila": 15, "stsfailb": 16, "both0": 17, "both1": 18}
        listeners = [postfix.Listener(n, net + str(o), self.port, certs[n])
                     for n, o in octets.items()]
        listeners += [postfix.Listener(n, net + str(o), self.port)
                      for n, o in plain.items()]
        self.listener_address = {l.name: l.address for l in listeners}
        self.postfix = postfix.Postfix(
            os.path.join(self.tmp, "postfix"), listeners=listeners,
            domains=["secure.test", "insecure.test"] +
                    ["%s.secure.test" % d for d in
                     ("ta", "tawrong", "mismatch", "notls", "dead",
                      "implicit", "rt") + STS_DOMAINS]).start()
        # REQUIRETLS: aiosmtpd, which can offer it (Postfix 3.7 cannot).
        self.rt_spool = os.path.join(self.tmp, "rt-spool")
        os.makedirs(self.rt_spool)
        ee = chain("ee")
        self.rt = testlib.ServerProcess([
            testlib.PYTHON, os.path.join(testlib.SOURCE, "tests", "servers",
                                         "aiosmtpd-sink.py"),
            "--spool", self.rt_spool, "--host", net + "20", "--port",
            str(self.port), "--tls-cert", ee[0], "--tls-key", ee[1],
            "--requiretls"])
        # The policy host, port 443 of its own address (root only, as
        # Postfix is).
        sts_cert = leaf("mta-sts", *["mta-sts.%s.secure.test" % d
                                     for d in STS_DOMAINS])
        hosts = {"mta-sts.%s.secure.test" % d: {"policy": p}
                 for d, p in POLICIES.items()}
        hosts["mta-sts.stsfail.secure.test"] = {"policy": "down",
                                                "status": 500}
        self.sts = stslab.StsHttps(self.tmp, hosts, sts_cert,
                                   bind=net + "250", port=443)

    def stop(self):
        for s in (self.sts, self.rt):
            if s is not None:
                s.stop()
        if self.postfix is not None:
            self.postfix.stop()
        if self.dns is not None:
            self.dns.stop()
        shutil.rmtree(self.tmp, True)


def lab():
    """The module's lab, started by the first test that needs it; if it
    cannot start, every test fails with that first error."""
    global _env, _env_error
    if _env_error is not None:
        raise _env_error
    if _env is None:
        try:
            _env = Lab()
        except Exception as e:
            _env_error = e
            raise
    return _env


def tearDownModule():
    if _env is not None:
        _env.stop()


def available():
    return dnslab.available() and postfix.available()


def settled_sessions(L, name):
    """The finished connections of one Postfix listener of lab `L`, once
    everything it did before now is in the log: Postfix logs through
    postlogd, a moment later, so a probe connection's own disconnect line
    is the barrier (the probe itself, which sends no command, is not
    counted)."""
    pat = re.compile(r"postfix-%s/smtpd\[\d+\]: disconnect from"
                     % re.escape(name))
    seen = len(pat.findall(L.postfix.log()))
    socket.create_connection((L.listener_address[name], L.port), 5).close()
    deadline = time.monotonic() + 30  # a safety net, not a measure
    while (len(pat.findall(L.postfix.log())) <= seen and
           time.monotonic() < deadline):
        time.sleep(0.05)
    return L.postfix.sessions(count=0, timeout=0, name=name)


class DomainTest(testlib.TempDirTest):
    """One smtpout-send --domain per call, with its own cache and events
    files unless given."""

    def config(self, extra="", cache=None, events=None):
        L = lab()
        text = ("[queue.outbound]\nsmtp-port = %d\n"
                "[queue.outbound.dns]\nresolver = %s\n"
                "[queue.outbound.tls]\nca-file = %s\n"
                "[queue.outbound.mta-sts]\ncache = %s\nca-file = %s\n"
                "[queue.outbound.tls-rpt]\nevents = %s\n"
                % (L.port, L.dns.resolver, L.ca,
                   cache or self.path("sts.cache"), L.ca,
                   events or self.path("events")))
        return self.write("smtpout.ini", (text + extra).encode())

    def send(self, domain, *args, to=None, config=None, extra=""):
        data = self.write("msg.eml", MESSAGE)
        cfg = config or self.config(extra)
        argv = ["--domain", domain, "--from", "s@sender.test",
                "--to", to or ("a@" + domain), "--data", data,
                "--config", cfg, "--timeout", "20s"] + list(args)
        return testlib.send(argv)

    def events(self, path=None):
        path = path or self.path("events")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f]

    def status(self, doc):
        return [(r["status"], r["enhanced"]) for r in doc["recipients"]]

    def sessions(self, name):
        return settled_sessions(lab(), name)


@unittest.skipUnless(available(), "needs nsd, unbound, ldnsutils and root "
                                  "(Postfix, port 443)")
class DnsRules(DomainTest):

    def test_null_mx_bounces_without_a_connection(self):
        rc, doc, err = self.send("nullmx.secure.test")
        self.assertEqual(rc, testlib.EX_UNAVAILABLE, err)
        self.assertEqual(self.status(doc), [("bounced", "5.1.10")])
        self.assertEqual(doc["attempts"], [])
        self.assertEqual(doc["route"]["mx"], [])
        self.assertEqual(doc["route"]["verdict"]["enhanced"], "5.1.10")

    def test_bogus_zone_defers_without_a_connection(self):
        rc, doc, err = self.send("bogus.test")
        self.assertEqual(rc, testlib.EX_TEMPFAIL, err)
        self.assertEqual(self.status(doc), [("deferred", "4.4.3")])
        self.assertEqual(doc["route"]["dnssec"], "bogus")
        self.assertEqual(doc["attempts"], [])

    def test_implicit_mx_is_the_domain_itself(self):
        before = len(self.sessions("alive"))
        rc, doc, err = self.send("implicit.secure.test")
        self.assertEqual(rc, 0, err)
        self.assertTrue(doc["route"]["implicit_mx"])
        a = doc["attempts"]
        self.assertEqual([(x["mx"], x["address"], x["tls_requirement"])
                          for x in a],
                         [("implicit.secure.test",
                           "%s7:%d" % (lab().net, lab().port), "local")])
        self.assertEqual(a[0]["dane"]["status"], "no-tlsa")
        self.assertEqual(len(self.sessions("alive")), before + 1)

    def test_a_dead_first_mx_gives_way_to_the_next(self):
        rc, doc, err = self.send("dead.secure.test")
        self.assertEqual(rc, 0, err)
        a = doc["attempts"]
        self.assertEqual([(x["mx"], x["outcome"]) for x in a],
                         [("mxdead.secure.test", "connect-failed"),
                          ("mxalive.secure.test", "done")])
        self.assertIn("Connection refused", a[0]["error"])
        self.assertEqual(self.status(doc), [("delivered", "2.0.0")])

    def test_insecure_zone_ignores_its_tlsa_records(self):
        # mx.insecure.test publishes a TLSA record for a key its server
        # does not have; unsigned, it means nothing: the local policy
        # (here allowing any certificate) decides.
        rc, doc, err = self.send(
            "insecure.test", extra='[destination "insecure"]\n'
                                   "domains = insecure.test\n"
                                   "allow-invalid-certs = true\n")
        self.assertEqual(rc, 0, err)
        a = doc["attempts"][0]
        self.assertEqual((a["tls_requirement"], a["dane"]["status"],
                          a["dane"]["used"]),
                         ("local", "mx-insecure", False))
        self.assertEqual(doc["route"]["dnssec"], "insecure")
        self.assertTrue(a["tls"]["used"])
        self.assertFalse(a["tls"]["verified"])

    def test_policy_resolve_shows_hops_and_what_decided_them(self):
        cfg = self.config()
        r = subprocess.run([POLICY_TOOL, "--config", cfg, "--domain",
                            "stsmx.secure.test", "--resolve", "--json"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        d = json.loads(r.stdout)
        self.assertEqual(d["dnssec"], "secure")
        self.assertEqual([m["name"] for m in d["mx"]],
                         ["mx-unlisted.secure.test", "mx-listed.secure.test"])
        self.assertEqual((d["sts"]["mode"], d["sts"]["id"]),
                         ("enforce", "stsmx1"))
        self.assertEqual([(h["mx"], h["tls_requirement"], h["tls_source"],
                           h["dane"]) for h in d["hops"]],
                         [("mx-listed.secure.test", "pkix", "mta-sts",
                           "no-tlsa")])
        self.assertIn("precedence rank 3", d["hops"][0]["explain"])
        # Nothing was contacted, nothing written.
        self.assertEqual(self.sessions("listed"), [])
        self.assertEqual(self.events(), [])
        # The text form names the same.
        r = subprocess.run([POLICY_TOOL, "--config", cfg, "--domain",
                            "secure.test", "--resolve"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("DNSSEC: secure", r.stdout)
        self.assertIn("hop 1: mx1.secure.test %s1:%d: dane" % (
            lab().net, lab().port), r.stdout)
        self.assertIn("DANE: TLSA _%d._tcp.mx1.secure.test: secure, "
                      "1 record (3 1 1), 1 usable" % lab().port, r.stdout)


@unittest.skipUnless(available(), "needs nsd, unbound, ldnsutils and root "
                                  "(Postfix, port 443)")
class Dane(DomainTest):

    def test_secure_zone_delivers_by_dane_ee_to_a_self_signed_host(self):
        rc, doc, err = self.send("secure.test",
                                 extra="[queue.outbound.tls]\n"
                                       "mta-sts = disable\n")
        self.assertEqual(rc, 0, err)
        a = doc["attempts"]
        self.assertEqual(len(a), 1)
        self.assertEqual((a[0]["mx"], a[0]["tls_requirement"],
                          a[0]["auth"]), ("mx1.secure.test", "dane",
                                          "dane-ee"))
        self.assertEqual(a[0]["dane"], {"status": "usable", "used": True,
                                        "records": 1, "matched": "3 1 1"})
        self.assertEqual(doc["route"]["dnssec"], "secure")

    def test_dane_ta_with_the_right_name_delivers(self):
        rc, doc, err = self.send("ta.secure.test")
        self.assertEqual(rc, 0, err)
        a = doc["attempts"]
        self.assertEqual([(x["mx"], x["tls_requirement"]) for x in a],
                         [("mx2.secure.test", "dane")])
        self.assertEqual(a[0]["auth"], "dane-ta")
        self.assertEqual(a[0]["dane"]["matched"], "2 1 1")

    def test_dane_ta_with_a_wrong_name_defers(self):
        rc, doc, err = self.send("tawrong.secure.test")
        self.assertEqual(rc, testlib.EX_TEMPFAIL, err)
        self.assertEqual(self.status(doc), [("deferred", "4.7.5")])
        a = doc["attempts"]
        self.assertEqual(len(a), 1, a)
        self.assertFalse(a[0]["plaintext_fallback"])
        self.assertEqual(a[0]["outcome"], "tls-failed")

    def test_tlsa_mismatch_defers_never_plaintext_never_pkix(self):
        # mxmis's certificate is valid for its name under the CA the
        # configuration trusts: PKIX would accept it.  Its TLSA record is
        # another key's.
        rc, doc, err = self.send("mismatch.secure.test")
        self.assertEqual(rc, testlib.EX_TEMPFAIL, err)
        self.assertEqual(self.status(doc), [("deferred", "4.7.5")])
        a = doc["attempts"]
        self.assertEqual(len(a), 1, a)
        self.assertEqual((a[0]["tls_requirement"], a[0]["outcome"],
                          a[0]["plaintext_fallback"], a[0]["auth"]),
                         ("dane", "tls-failed", False, "none"))
        self.assertIsNone(a[0]["dane"]["matched"])
        self.assertTrue(self.sessions("mis"))
        self.assertNotIn("mail", self.sessions("mis")[-1])

    def test_dane_host_without_starttls_defers_even_with_starttls_disable(
            self):
        before = len(self.sessions("notls"))
        rc, doc, err = self.send("notls.secure.test",
                                 extra="[queue.outbound.tls]\n"
                                       "starttls = disable\n")
        self.assertEqual(rc, testlib.EX_TEMPFAIL, err)
        self.assertEqual(self.status(doc), [("deferred", "4.7.5")])
        a = doc["attempts"]
        self.assertEqual(len(a), 1, a)
        self.assertEqual((a[0]["tls_requirement"], a[0]["starttls"],
                          a[0]["plaintext_fallback"]),
                         ("dane", "not-offered", False))
        s = self.sessions("notls")
        self.assertEqual(len(s), before + 1)
        self.assertNotIn("mail", s[-1])
        ev = self.events()
        self.assertEqual([(e["policy-type"], e["result"],
                           e.get("result-type")) for e in ev],
                         [("tlsa", "failure", "starttls-not-supported")])


@unittest.skipUnless(available(), "needs nsd, unbound, ldnsutils and root "
                                  "(Postfix, port 443)")
class MtaSts(DomainTest):

    def fetches(self, domain):
        return lab().sts.fetches("mta-sts.%s.secure.test" % domain)

    def test_enforce_with_a_valid_certificate_delivers_and_is_fetched_once(
            self):
        before = len(self.fetches("stsok"))
        cache = self.path("shared.cache")
        rc, doc, err = self.send("stsok.secure.test",
                                 config=self.config(cache=cache))
        self.assertEqual(rc, 0, err)
        self.assertEqual(doc["route"]["sts"], {"mode": "enforce",
                                               "id": "stsok1"})
        a = doc["attempts"]
        self.assertEqual([(x["mx"], x["tls_requirement"], x["tls_source"],
                           x["sts_mode"], x["auth"]) for x in a],
                         [("mx-stsok.secure.test", "pkix", "mta-sts",
                           "enforce", "pkix")])
        self.assertTrue(a[0]["tls"]["verified"])
        self.assertEqual(len(self.fetches("stsok")), before + 1)
        # The id has not changed: the next delivery uses the cache.
        rc, doc, err = self.send("stsok.secure.test",
                                 config=self.config(cache=cache))
        self.assertEqual(rc, 0, err)
        self.assertEqual(doc["route"]["sts"]["mode"], "enforce")
        self.assertEqual(len(self.fetches("stsok")), before + 1)
        ev = [e for e in self.events() if e["policy-type"] == "sts"]
        self.assertEqual([e["result"] for e in ev], ["success", "success"])

    def test_enforce_defers_a_wrong_name_whatever_allow_invalid_certs(self):
        rc, doc, err = self.send("stsbad.secure.test",
                                 extra="[queue.outbound.tls]\n"
                                       "allow-invalid-certs = true\n")
        self.assertEqual(rc, testlib.EX_TEMPFAIL, err)
        self.assertEqual(self.status(doc), [("deferred", "4.7.5")])
        a = doc["attempts"]
        self.assertEqual(len(a), 1, a)
        # The session enforcing the hop reports the MTA-STS type (RFC 8460
        # sts-webpki-invalid), not the certificate's own.
        want = "sts-webpki-invalid"
        self.assertEqual((a[0]["tls_requirement"], a[0]["plaintext_fallback"],
                          a[0]["tlsrpt_result"]), ("pkix", False, want))
        self.assertNotIn("mail", self.sessions("stsbad")[-1])
        ev = self.events()
        self.assertEqual([(e["policy-type"], e["result-type"])
                          for e in ev], [("sts", want)])

    def test_enforce_never_contacts_an_unlisted_mx(self):
        before = len(self.sessions("unlisted"))
        rc, doc, err = self.send("stsmx.secure.test")
        self.assertEqual(rc, 0, err)
        self.assertEqual([x["mx"] for x in doc["attempts"]],
                         ["mx-listed.secure.test"])
        self.assertEqual(len(self.sessions("unlisted")), before)
        ev = self.events()
        self.assertEqual(sorted((e["receiving-mx-hostname"], e["result"],
                                 e.get("result-type")) for e in ev),
                         [("mx-listed.secure.test", "success", None),
                          ("mx-unlisted.secure.test", "failure",
                           "validation-failure")])

    def test_testing_delivers_without_starttls_and_reports_it(self):
        rc, doc, err = self.send("ststest.secure.test")
        self.assertEqual(rc, 0, err)
        a = doc["attempts"]
        self.assertEqual([(x["tls_requirement"], x["sts_mode"],
                           x["starttls"], x["tlsrpt_result"]) for x in a],
                         [("local", "testing", "not-offered",
                           "starttls-not-supported")])
        self.assertEqual(self.status(doc), [("delivered", "2.0.0")])
        ev = self.events()
        self.assertEqual([(e["policy-type"], e["policy-domain"], e["result"],
                           e["result-type"]) for e in ev],
                         [("sts", "ststest.secure.test", "failure",
                           "starttls-not-supported")])
        self.assertIn("mode: testing", ev[0]["policy-string"])

    def test_changed_id_with_a_failing_fetch_keeps_the_cached_policy(self):
        # The cache holds policy "old1" (enforce, mx-stsfail-b only); the
        # TXT record now says "new1", and the policy host answers 500.
        now = int(time.time() * 1000)
        text = policy("enforce", "mx-stsfail-b")
        entry = ("v=1; id=old1; fetched=%d; expires=%d\n%s"
                 % (now, now + 86400000, text)).encode()
        cache = self.path("stsfail.cache")
        with open(cache, "wb") as f:
            f.write(b"smtpout-store 1\n%d sts:stsfail.secure.test %d\n"
                    % (now + 86400000, len(entry)) + entry + b"\n")
        before = len(self.fetches("stsfail"))
        before_a = len(self.sessions("stsfaila"))
        rc, doc, err = self.send("stsfail.secure.test",
                                 config=self.config(cache=cache))
        self.assertEqual(rc, 0, err)
        self.assertEqual(doc["route"]["sts"], {"mode": "enforce",
                                               "id": "old1"})
        self.assertEqual([x["mx"] for x in doc["attempts"]],
                         ["mx-stsfail-b.secure.test"])
        self.assertEqual(len(self.sessions("stsfaila")), before_a)
        self.assertEqual(len(self.fetches("stsfail")), before + 1)
        types = [e.get("result-type") for e in self.events()]
        self.assertIn("sts-policy-fetch-error", types)
        with open(cache, "rb") as f:
            self.assertIn(b"id=old1", f.read())

    def test_dane_and_mta_sts_on_one_domain(self):
        # mx-both0 has TLSA records but the policy does not list it: never
        # contacted.  mx-both1 is listed; its certificate is self-signed,
        # so only DANE can authenticate it.
        before = len(self.sessions("both0"))
        rc, doc, err = self.send("both.secure.test")
        self.assertEqual(rc, 0, err)
        a = doc["attempts"]
        self.assertEqual([(x["mx"], x["tls_requirement"], x["auth"])
                          for x in a],
                         [("mx-both1.secure.test", "dane", "dane-ee")])
        self.assertEqual(len(self.sessions("both0")), before)


@unittest.skipUnless(available(), "needs nsd, unbound, ldnsutils and root "
                                  "(Postfix, port 443)")
class RequireTls(DomainTest):

    def test_dane_host_that_offers_it_gets_mail_with_the_parameter(self):
        rc, doc, err = self.send("rt.secure.test", "--requiretls")
        self.assertEqual(rc, 0, err)
        a = doc["attempts"]
        self.assertEqual([(x["mx"], x["tls_source"], x["requiretls"])
                          for x in a],
                         [("mx-rt.secure.test", "requiretls", True)])
        with open(os.path.join(lab().rt_spool, "mail.log")) as f:
            mails = [json.loads(line) for line in f]
        self.assertTrue(mails[-1]["requiretls"])
        self.assertTrue(mails[-1]["tls"])

    def test_pkix_only_host_bounces_5_7_30_and_gets_nothing(self):
        # stsok's MX is authenticated (MTA-STS enforce, PKIX) but Postfix
        # does not offer REQUIRETLS.
        before = len(self.sessions("stsok"))
        rc, doc, err = self.send("stsok.secure.test", "--requiretls")
        self.assertEqual(rc, testlib.EX_UNAVAILABLE, err)
        self.assertEqual(self.status(doc), [("bounced", "5.7.30")])
        s = self.sessions("stsok")
        self.assertEqual(len(s), before + 1)
        self.assertNotIn("mail", s[-1])

    def test_host_neither_dane_nor_mta_sts_authenticates_bounces_5_7_10(
            self):
        before = len(self.sessions("alive"))
        rc, doc, err = self.send("implicit.secure.test", "--requiretls")
        self.assertEqual(rc, testlib.EX_UNAVAILABLE, err)
        self.assertEqual(self.status(doc), [("bounced", "5.7.10")])
        self.assertEqual(doc["attempts"], [])
        self.assertEqual(len(self.sessions("alive")), before)


RELAY_USER, RELAY_PASSWORD = "alice", "wonder land"


@unittest.skipUnless(available(), "needs nsd, unbound, ldnsutils and root "
                                  "(Postfix, port 443)")
class RelayByName(DomainTest):
    """The default relay path end to end: [relay "r"] names its host, the
    name is resolved through the lab's validating unbound (--resolver), the
    certificate is verified by PKIX for that name against the lab CA, and
    so AUTH goes out under the default auth-tls = verified, with no
    allow-invalid-certs anywhere (tests/integration/test_relay.py's relays
    are addresses, which no certificate can verify)."""

    def sink(self, host, cert, *extra):
        """An aiosmtpd with AUTH (required) on host's lab address and the
        lab's port, presenting `cert` (chain, key)."""
        L = lab()
        self.spooldir = self.spool(host)
        users = self.write("users", "%s:%s\n" % (RELAY_USER,
                                                  RELAY_PASSWORD), "w")
        return testlib.ServerProcess([
            testlib.PYTHON, os.path.join(testlib.SOURCE, "tests", "servers",
                                         "aiosmtpd-sink.py"),
            "--spool", self.spooldir,
            "--host", L.net + str(HOSTS[host]), "--port", str(L.port),
            "--tls-cert", cert[0], "--tls-key", cert[1],
            "--auth-users", users, "--auth-required"] + list(extra))

    def leaf(self, name, dns_name):
        return stslab.leaf(lab().pki, name, "ca", [dns_name])

    def via_relay(self, host, *keys):
        """smtpout-send --relay r --resolver <lab> with [relay "r"] at
        host.secure.test; returns (exit status, JSON, stderr), having
        checked the password is in none of the output."""
        L = lab()
        secret = self.write("password", RELAY_PASSWORD + "\n", "w")
        os.chmod(secret, 0o600)
        text = ("[queue.outbound.tls]\nca-file = %s\n"
                '[relay "r"]\nhost = %s.secure.test\nport = %d\n'
                "auth-mechanisms = PLAIN\nauth-username = %s\n"
                "auth-password-file = %s\n"
                % (L.ca, host, L.port, RELAY_USER, secret))
        config = self.write("relay.ini", text + "".join(
            k + "\n" for k in keys), "w")
        self.assertNotIn("auth-tls", text + "".join(keys))
        self.assertNotIn("allow-invalid-certs", text + "".join(keys))
        rc, doc, err = testlib.send([
            "--relay", "r", "--config", config,
            "--resolver", L.dns.resolver, "--from", "s@sender.test",
            "--to", "a@elsewhere.test", "--data",
            self.write("msg.eml", MESSAGE), "--timeout", "20s",
            "--verbose"])
        out = json.dumps(doc) + err
        for form in (RELAY_PASSWORD, base64.b64encode(
                ("\0%s\0%s" % (RELAY_USER, RELAY_PASSWORD)).encode())
                .decode()):
            self.assertNotIn(form, out)
        return rc, doc, err

    def auth_log(self):
        path = os.path.join(self.spooldir, "auth.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f]

    def stored(self):
        return sorted(n for n in os.listdir(self.spooldir)
                      if n.endswith(".eml"))

    def assert_verified_delivery(self, host, rc, doc, err, implicit):
        L = lab()
        self.assertEqual(rc, 0, err)
        self.assertEqual(doc["relay"], "r")
        self.assertEqual(self.status(doc), [("delivered", "2.0.0")])
        (a,) = doc["attempts"]
        self.assertEqual((a["mx"], a["address"], a["tls_requirement"]),
                         ("%s.secure.test" % host,
                          "%s%d:%d" % (L.net, HOSTS[host], L.port), "local"))
        # The name came from the lab's unbound (DNSSEC-secure, no TLSA:
        # no DANE), the certificate verified by PKIX for that name.
        self.assertIn("-- dns A %s.secure.test.: secure\n" % host, err)
        self.assertEqual(a["dane"]["status"], "no-tlsa")
        self.assertIn("SNI %s.secure.test" % host, err)
        self.assertEqual((a["tls"]["verified"], a["auth"]), (True, "pkix"))
        self.assertEqual(a["tls"]["implicit"], implicit)
        self.assertEqual(a["smtp_auth"], {"outcome": "ok",
                                          "mechanism": "PLAIN"})
        self.assertIn("C: AUTH PLAIN ****\n", err)
        self.assertLess(err.index("C: AUTH PLAIN"), err.index("C: MAIL"))
        self.assertEqual([(e["mechanism"], e["user"], e["success"], e["tls"])
                          for e in self.auth_log()],
                         [("PLAIN", RELAY_USER, True, True)])
        self.assertEqual(self.stored(), ["1.eml"])
        with open(os.path.join(self.spooldir, "1.json")) as f:
            meta = json.load(f)
        self.assertEqual((meta["auth_user"], meta["tls"]), (RELAY_USER, True))
        with open(os.path.join(self.spooldir, "1.eml"), "rb") as f:
            self.assertIn(b"hello", f.read())

    def test_starttls_verified_for_the_name_carries_auth(self):
        with self.sink("relay", self.leaf("relay", "relay.secure.test")):
            rc, doc, err = self.via_relay("relay")
        self.assert_verified_delivery("relay", rc, doc, err, False)
        self.assertLess(err.index("C: STARTTLS"), err.index("C: AUTH"))

    def test_implicit_tls_verified_for_the_name_carries_auth(self):
        with self.sink("relay-465", self.leaf("relay-465",
                                              "relay-465.secure.test"),
                       "--implicit-tls"):
            rc, doc, err = self.via_relay("relay-465", "implicit-tls = true")
        self.assert_verified_delivery("relay-465", rc, doc, err, True)
        self.assertNotIn("C: STARTTLS", err)

    def test_certificate_for_another_name_gets_neither_auth_nor_mail(self):
        # relay-othername.secure.test's server holds a certificate the lab
        # CA issued, for other.secure.test: the chain verifies, the name
        # does not.
        with self.sink("relay-othername",
                       self.leaf("relay-othername", "other.secure.test")):
            rc, doc, err = self.via_relay("relay-othername")
        self.assertEqual(rc, testlib.EX_TEMPFAIL, err)
        (r,) = doc["recipients"]
        self.assertEqual((r["status"], r["enhanced"]), ("deferred", "4.7.5"))
        self.assertIn("does not match", r["text"])
        (a,) = doc["attempts"]
        self.assertEqual((a["address"], a["outcome"]), ("%s%d:%d" % (
            lab().net, HOSTS["relay-othername"], lab().port), "tls-failed"))
        self.assertFalse(a["tls"]["verified"])
        self.assertEqual(a["tlsrpt_result"], "certificate-host-mismatch")
        # The session refused the unverified TLS before AUTH could be
        # considered: the password never left.
        self.assertEqual(a["smtp_auth"]["outcome"], "no-tls")
        self.assertIn("C: STARTTLS", err)
        self.assertNotIn("C: AUTH", err)
        self.assertNotIn("C: MAIL", err)
        self.assertEqual(self.auth_log(), [])
        self.assertEqual(self.stored(), [])


@unittest.skipUnless(available(), "needs nsd, unbound, ldnsutils and root "
                                  "(Postfix, port 443)")
@unittest.skipIf(testlib.SANITIZED, "ctypes cannot load a sanitizer build's "
                                    "library")
class HostStoreThroughCtypes(DomainTest):
    """A host's own store and event sink, in Python through ctypes alone
    (examples/python/smtpout/_lib.py's prototypes): the callbacks need
    nothing but plain types."""

    def test_a_python_store_and_event_sink(self):
        sys.path.insert(0, os.path.join(testlib.SOURCE, "examples", "python"))
        from smtpout import _lib
        lib = _lib.lib
        store, events, calls = {}, [], []

        def get(key, buf, buflen, plen, ud):
            calls.append(("get", key.decode()))
            v = store.get(key.decode(), b"")
            if len(v) > buflen:
                return -1
            ctypes.memmove(buf, v, len(v))
            plen[0] = len(v)
            return 0

        def put(key, value, length, expires, ud):
            calls.append(("put", key.decode()))
            store[key.decode()] = ctypes.string_at(value, length)
            return 0

        def event(json_line, length, ud):
            events.append(json.loads(ctypes.string_at(json_line, length)))
            return 0

        cbs = (_lib.STORE_GET(get), _lib.STORE_PUT(put),
               _lib.TLSRPT_EVENT(event))
        # A configuration with neither cache file nor events file.
        L = lab()
        cfg_text = ("[queue.outbound]\nsmtp-port = %d\n"
                    "[queue.outbound.dns]\nresolver = %s\n"
                    "[queue.outbound.tls]\nca-file = %s\n"
                    "[queue.outbound.mta-sts]\nca-file = %s\n"
                    % (L.port, L.dns.resolver, L.ca, L.ca)).encode()

        def deliver():
            cfg = _lib.ConfigP()
            err = ctypes.create_string_buffer(4096)
            self.assertEqual(lib.smtpout_config_load_string(
                ctypes.byref(cfg), cfg_text, b"py.ini", err, 4096), 0,
                err.value)
            d = _lib.DeliveryP()
            self.assertEqual(lib.smtpout_delivery_new(ctypes.byref(d), cfg),
                             0)
            lib.smtpout_config_unref(cfg)
            body = (ctypes.c_uint8 * len(MESSAGE)).from_buffer_copy(MESSAGE)
            for rv in (lib.smtpout_delivery_set_domain(d,
                                                       b"stsok.secure.test"),
                       lib.smtpout_delivery_set_store(d, cbs[0], cbs[1],
                                                      None),
                       lib.smtpout_delivery_set_tlsrpt_events(d, cbs[2],
                                                              None),
                       lib.smtpout_delivery_set_sender(d, b"s@sender.test"),
                       lib.smtpout_delivery_add_recipient(
                           d, b"py@stsok.secure.test"),
                       lib.smtpout_delivery_set_body(d, body, len(MESSAGE)),
                       lib.smtpout_delivery_run(d)):
                self.assertEqual(rv, 0)
            r = lib.smtpout_delivery_result(d, 0)
            status = lib.smtpout_status_name(lib.smtpout_result_status(r))
            route = lib.smtpout_delivery_route(d)
            sts = lib.smtpout_sts_mode_name(lib.smtpout_route_sts_mode(route))
            a = lib.smtpout_delivery_attempt(d, 0)
            mx = lib.smtpout_attempt_mx(a)
            lib.smtpout_delivery_free(d)
            return status, sts, mx

        before = len(lab().sts.fetches("mta-sts.stsok.secure.test"))
        self.assertEqual(deliver(), (b"delivered", b"enforce",
                                     b"mx-stsok.secure.test"))
        self.assertEqual(calls, [("get", "sts:stsok.secure.test"),
                                 ("put", "sts:stsok.secure.test")])
        self.assertTrue(store["sts:stsok.secure.test"].startswith(b"v=1; "))
        # The second delivery reads the Python store: no fetch, no put.
        self.assertEqual(deliver()[:2], (b"delivered", b"enforce"))
        self.assertEqual(calls[2:], [("get", "sts:stsok.secure.test")])
        self.assertEqual(len(lab().sts.fetches("mta-sts.stsok.secure.test")),
                         before + 1)
        self.assertEqual([(e["policy-type"], e["result"]) for e in events],
                         [("sts", "success"), ("sts", "success")])


@unittest.skipUnless(available(), "needs nsd, unbound, ldnsutils and root "
                                  "(Postfix, port 443)")
class TlsRptReport(DomainTest):

    def test_one_report_from_two_processes_events(self):
        # Two smtpout-send at once, appending to one events file: each
        # records the unlisted MX (validation-failure) and its delivery to
        # the listed one (success).
        events = self.path("shared.events")
        cfg = self.config(events=events)
        data = self.write("msg.eml", MESSAGE)
        procs = [subprocess.Popen(
            [testlib.SEND, "--domain", "stsmx.secure.test", "--from",
             "s@sender.test", "--to", "a%d@stsmx.secure.test" % i, "--data",
             data, "--config", cfg, "--json"], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE) for i in range(2)]
        for p in procs:
            out, errout = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, errout)
        with open(events) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 4)
        day = datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d")
        r = subprocess.run([TLSRPT, "--events", events, "--organization",
                            "smtpout tests", "--contact",
                            "tlsrpt@sender.test", "--date", day, "--domain",
                            "stsmx.secure.test"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        report = json.loads(r.stdout)
        pol = report["policies"]
        self.assertEqual(len(pol), 1)
        self.assertEqual(pol[0]["policy"]["policy-type"], "sts")
        self.assertEqual(pol[0]["policy"]["mx-host"],
                         ["mx-listed.secure.test"])
        self.assertEqual(pol[0]["summary"],
                         {"total-successful-session-count": 2,
                          "total-failure-session-count": 2})
        self.assertEqual([(f["result-type"], f["receiving-mx-hostname"],
                           f["failed-session-count"])
                          for f in pol[0]["failure-details"]],
                         [("validation-failure", "mx-unlisted.secure.test",
                           2)])


if __name__ == "__main__":
    testlib.main()
