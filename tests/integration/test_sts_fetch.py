#!/usr/bin/python3
"""The library's MTA-STS fetcher (lib/fetch_curl.c, libcurl) against the
lab's policy server (tests/servers/sts-https.py), through tests/sts-fetch.

The fetcher is given the address: it must connect there and nowhere else
(the policy host names here exist in no DNS), verify the certificate for
the URL's host against the CA file, follow no redirect, honour no proxy,
and stop reading at the size cap even when the body is chunked (libcurl
7.88 ignores CURLOPT_MAXFILESIZE there).  Each answer is also judged by
policy discovery, to show the RFC 8460 result type it would be reported
with.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stslab  # noqa: E402
import testlib  # noqa: E402

FETCH = os.path.join(testlib.BUILD, "tests", "sts-fetch")
POLICY = "version: STSv1\nmode: enforce\nmx: mail.good.test\nmax_age: 86400\n"
CAP = 65536

HOSTS = ["mta-sts.good.test", "mta-sts.gone.test", "mta-sts.moved.test",
         "mta-sts.html.test", "mta-sts.big.test", "mta-sts.chunked.test",
         "mta-sts.exact.test", "mta-sts.wrong.test",
         "mta-sts.untrusted.test", "mta-sts.stall.test",
         "mta-sts.bad.test"]


class StsFetchTest(testlib.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls.pkidir = tempfile.mkdtemp(prefix="smtpout-sts-pki-")
        cls.pki = stslab.sts_pki(cls.pkidir, HOSTS)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.pkidir, ignore_errors=True)

    def setUp(self):
        super().setUp()
        wrong, untrusted = self.pki["wrongname"], self.pki["sts-untrusted"]
        self.server = stslab.StsHttps(self.tmp, {
            "mta-sts.good.test": {"policy": POLICY,
                                  "content_type": "text/plain; charset=utf-8"},
            "mta-sts.gone.test": {"policy": POLICY, "status": 404},
            "mta-sts.moved.test": {
                "status": 301,
                "location": "https://mta-sts.good.test/.well-known/"
                            "mta-sts.txt"},
            "mta-sts.html.test": {"policy": POLICY,
                                  "content_type": "text/html"},
            "mta-sts.big.test": {"policy": POLICY, "size": CAP + 1},
            "mta-sts.chunked.test": {"policy": POLICY, "size": 200000,
                                     "chunked": True},
            "mta-sts.exact.test": {"policy": POLICY + "x-pad: ",
                                   "size": CAP, "chunked": True},
            "mta-sts.wrong.test": {"policy": POLICY, "cert": wrong[0],
                                   "key": wrong[1]},
            "mta-sts.untrusted.test": {"policy": POLICY,
                                       "cert": untrusted[0],
                                       "key": untrusted[1]},
            "mta-sts.stall.test": {"stall": True},
            "mta-sts.bad.test": {"policy": "garbage"},
        }, self.pki["sts"])

    def tearDown(self):
        self.server.stop()
        super().tearDown()

    def fetch(self, host, port=None, timeout_ms=None, env=None, ca=None,
              address="127.0.0.1"):
        argv = [FETCH, "https://%s/.well-known/mta-sts.txt" % host, address,
                str(port or self.server.port), ca or self.pki["ca"]]
        if timeout_ms is not None:
            argv.append(str(timeout_ms))
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                           env=env)
        self.assertIn(r.returncode, (0, 70), r.stderr)
        return json.loads(r.stdout)

    def test_policy_fetched_from_the_given_address(self):
        r = self.fetch("mta-sts.good.test")
        self.assertEqual((r["outcome"], r["status"], r["content_type"]),
                         ("ok", 200, "text/plain; charset=utf-8"))
        self.assertEqual(r["body"], POLICY)
        self.assertEqual(r["judged"], {"source": "fetched", "failure": None,
                                       "mode": "enforce"})
        self.assertEqual(self.server.fetches(), [
            {"host": "mta-sts.good.test", "sni": "mta-sts.good.test",
             "path": "/.well-known/mta-sts.txt", "status": 200}])

    def test_status_other_than_200_is_a_fetch_error(self):
        r = self.fetch("mta-sts.gone.test")
        self.assertEqual((r["outcome"], r["status"]), ("ok", 404))
        self.assertEqual(r["judged"]["failure"], "sts-policy-fetch-error")
        self.assertIsNone(r["judged"]["mode"])

    def test_redirect_is_not_followed(self):
        r = self.fetch("mta-sts.moved.test")
        self.assertEqual((r["outcome"], r["status"]), ("ok", 301))
        self.assertEqual(r["judged"]["failure"], "sts-policy-fetch-error")
        self.assertEqual(self.server.fetches("mta-sts.good.test"), [])

    def test_content_type_other_than_text_plain_is_invalid(self):
        r = self.fetch("mta-sts.html.test")
        self.assertEqual((r["outcome"], r["content_type"]),
                         ("ok", "text/html"))
        self.assertEqual(r["judged"]["failure"], "sts-policy-invalid")
        r = self.fetch("mta-sts.bad.test")
        self.assertEqual(r["judged"]["failure"], "sts-policy-invalid")

    def test_body_over_64_kib_is_cut_off_static_or_chunked(self):
        r = self.fetch("mta-sts.big.test")
        self.assertEqual(r["outcome"], "too-large")
        self.assertEqual(r["judged"]["failure"], "sts-policy-fetch-error")
        r = self.fetch("mta-sts.chunked.test")
        self.assertEqual(r["outcome"], "too-large")
        self.assertEqual(r["len"], 0)
        # Exactly the cap, chunked, is still a policy.
        r = self.fetch("mta-sts.exact.test")
        self.assertEqual((r["outcome"], r["len"]), ("ok", CAP))
        self.assertEqual(r["judged"]["mode"], "enforce")

    def test_certificate_must_verify_for_the_policy_host(self):
        r = self.fetch("mta-sts.wrong.test")
        self.assertEqual(r["outcome"], "tls-not-verified")
        self.assertEqual(r["judged"]["failure"], "sts-webpki-invalid")
        r = self.fetch("mta-sts.untrusted.test")
        self.assertEqual(r["outcome"], "tls-not-verified")
        # Trusted by its own CA: the CA file is what decides.
        r = self.fetch("mta-sts.untrusted.test",
                       ca=os.path.join(self.pkidir, "other-ca.pem"))
        self.assertEqual(r["outcome"], "ok")
        self.assertEqual([f["host"] for f in self.server.fetches()],
                         ["mta-sts.untrusted.test"])

    def test_connect_failure_and_timeout(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
        s.close()
        r = self.fetch("mta-sts.good.test", port=closed)
        self.assertEqual(r["outcome"], "connect-failed")
        self.assertEqual(r["judged"]["failure"], "sts-policy-fetch-error")
        r = self.fetch("mta-sts.stall.test", timeout_ms=500)
        self.assertEqual(r["outcome"], "timeout")

    def test_ipv6_address(self):
        try:
            socket.socket(socket.AF_INET6).bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback")
        v6 = testlib.ServerProcess([
            testlib.PYTHON, os.path.join(testlib.SOURCE, "tests", "servers",
                                         "sts-https.py"),
            "--hosts", self.server.hosts_path, "--cert", self.pki["sts"][0],
            "--key", self.pki["sts"][1], "--bind", "::1"])
        try:
            r = self.fetch("mta-sts.good.test", port=v6.port, address="::1")
        finally:
            v6.stop()
        self.assertEqual((r["outcome"], r["body"]), ("ok", POLICY))

    def test_environment_proxy_is_not_used(self):
        env = dict(os.environ, https_proxy="http://127.0.0.1:9",
                   HTTPS_PROXY="http://127.0.0.1:9",
                   all_proxy="http://127.0.0.1:9")
        r = self.fetch("mta-sts.good.test", env=env)
        self.assertEqual(r["outcome"], "ok")

    def test_only_an_address_and_only_https(self):
        r = subprocess.run([FETCH, "https://mta-sts.good.test/x",
                            "mta-sts.good.test", "443", self.pki["ca"]],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 70)
        r = subprocess.run([FETCH, "http://mta-sts.good.test/x", "127.0.0.1",
                            str(self.server.port), self.pki["ca"]],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 70)
        self.assertEqual(self.server.fetches(), [])


if __name__ == "__main__":
    testlib.main()
